/*
 * umg_http.h - the HTTP server: h2o event loops (one per thread) serving
 * HTTP/1.1, HTTP/2 (ALPN over TLS, and prior knowledge or Upgrade in clear
 * text), request limits, routing, request ids, JSON errors, per-route
 * metrics, deferred responses completed from other threads, and streamed
 * responses.
 *
 * Handlers never see h2o: they get a umg_http_req_t and answer through the
 * functions below, on the loop thread that called them.
 */
#ifndef UMG_HTTP_H
#define UMG_HTTP_H

#include "umg_core.h"

typedef struct umg_http_req_s umg_http_req_t;
typedef struct umg_http_server_s umg_http_server_t;
typedef struct umg_http_static_s umg_http_static_t;

typedef struct umg_http_config_s {
    char *listen;    /* "HOST:PORT"; port 0 picks one */
    int64_t threads; /* 0: one per core */
    int64_t max_body_bytes;
    int64_t max_header_bytes;
    int64_t idle_timeout_ms;
    int64_t max_connections;
    char *tls_cert, *tls_key; /* both set: TLS on */
    char *trusted_proxies;    /* comma-separated CIDRs whose X-Forwarded-For is believed */
} umg_http_config_t;

/* A handler answers now (umg_http_respond*), or defers / streams. */
typedef void (*umg_http_handler_t)(umg_http_req_t *req, void *thread_data);

typedef struct umg_http_route_s {
    const char *method; /* "GET", "POST"; "*" takes every method (the handler checks) */
    const char *path;   /* exact path, or a prefix ending in '/' when prefix is set */
    int prefix;
    umg_http_handler_t handler;
} umg_http_route_t;

/* Called once on each loop thread before serving, and after it stops. */
typedef void *(*umg_http_thread_init_t)(void *server_data, int thread_index);
typedef void (*umg_http_thread_fini_t)(void *thread_data);

typedef struct umg_http_hooks_s {
    umg_http_thread_init_t thread_init;
    umg_http_thread_fini_t thread_fini;
    void *server_data;
    /* The web dashboard for GET/HEAD paths no route takes (borrowed for the server's life);
     * NULL: those are 404 like any unknown path. */
    const umg_http_static_t *web;
} umg_http_hooks_t;

/**
 * Binds the listeners (so the port is known before run) and prepares the
 * loops. routes are borrowed for the server's life.
 */
int umg_http_server_new(const umg_http_config_t *cfg, const umg_http_route_t *routes, size_t nroutes,
                        const umg_http_hooks_t *hooks, umg_http_server_t **out);
/** The bound address as "HOST:PORT". */
const char *umg_http_server_addr(umg_http_server_t *s);
/** Serves until umg_http_server_stop(); runs the loops on threads and joins them. */
int umg_http_server_run(umg_http_server_t *s);
/** Async-signal-safe: asks every loop to stop. */
void umg_http_server_stop(umg_http_server_t *s);
void umg_http_server_free(umg_http_server_t *s);

/* ---- request accessors (valid on the loop thread while the request lives) */
umg_slice_t umg_http_method(umg_http_req_t *req);
umg_slice_t umg_http_path(umg_http_req_t *req);
umg_slice_t umg_http_query(umg_http_req_t *req); /* after '?', empty when none */
umg_slice_t umg_http_body(umg_http_req_t *req);
/** Header value by lowercase name; len 0 and ptr NULL when absent. */
umg_slice_t umg_http_header(umg_http_req_t *req, const char *lname);
/** The client address as text: the peer, or X-Forwarded-For from a trusted proxy. */
const char *umg_http_client_ip(umg_http_req_t *req);
const char *umg_http_request_id(umg_http_req_t *req);
/** Finds `name` in a query string and URL-decodes it into the request's pool. */
int umg_http_query_param(umg_http_req_t *req, const char *name, umg_slice_t *out);
/** A name=value pair of the query: name as sent, value URL-decoded and NUL-ended (ptr NULL: malformed). */
typedef struct umg_http_param_s {
    umg_slice_t name, value;
} umg_http_param_t;
/**
 * The query split once into its name=value pairs, in order, into the request's pool (*out); returns how many.
 * Parts without '=' are left out. For handlers that read many parameters: one scan instead of one per name.
 */
size_t umg_http_query_split(umg_http_req_t *req, umg_http_param_t **out);
/** Memory that lives as long as the request. */
void *umg_http_alloc(umg_http_req_t *req, size_t n);

/* ---- answers */
/**
 * Adds a response header to whatever answer follows (umg_http_respond, umg_http_stream);
 * name and value are copied.
 */
void umg_http_add_header(umg_http_req_t *req, const char *name, const char *value);
/** Sends a whole response; body is copied. extra_headers: "Name: value\r\n" lines or NULL. */
void umg_http_respond(umg_http_req_t *req, int status, const char *content_type, const char *body, size_t len,
                      const char *extra_headers);
/** {"error":{"code":..,"message":..,"field":..}}; field may be NULL. */
void umg_http_error(umg_http_req_t *req, int status, const char *code, const char *field, const char *message);

/*
 * Deferring: umg_http_defer() returns a handle that any thread may pass to
 * umg_http_resume() exactly once; cb then runs on the request's loop thread
 * with the request, or with req == NULL when the client went away meanwhile
 * (cb must still release what `data` holds).
 */
typedef struct umg_http_defer_s umg_http_defer_t;
typedef void (*umg_http_resume_cb)(umg_http_req_t *req, void *data);
umg_http_defer_t *umg_http_defer(umg_http_req_t *req);
void umg_http_resume(umg_http_defer_t *d, umg_http_resume_cb cb, void *data);
/** Gives back a handle that will not be resumed (on the loop thread, before answering). */
void umg_http_defer_cancel(umg_http_defer_t *d);

/*
 * Streaming: pull(data, out, &done) appends the next chunk to out (and sets
 * done at the end); it is called again when the client took the last chunk.
 * A pull that has nothing yet returns UMG_EAGAIN with nothing appended: the
 * stream waits and is pulled again after UMG_HTTP_STREAM_POLL_MS on its loop
 * thread (a live feed). One that stopped after a bounded amount of work with
 * nothing to send yet returns UMG_EBUSY with nothing appended: it is pulled
 * again as soon as the loop has served what else is ready. fini(data) runs
 * once when the stream ends or the client goes away.
 */
#define UMG_HTTP_STREAM_POLL_MS 100
typedef int (*umg_http_pull_t)(void *data, umg_buf_t *out, int *done);
void umg_http_stream(umg_http_req_t *req, int status, const char *content_type, umg_http_pull_t pull,
                     void (*fini)(void *data), void *data);

/* ---- the web dashboard (static.c) */

/**
 * Reads every file under dir (at most 4096 files, 64 MiB) into memory; dir must hold index.html.
 * UMG_ENOENT without it. The caller frees with umg_http_static_free after the server.
 */
int umg_http_static_open(const char *dir, umg_http_static_t **out);
void umg_http_static_free(umg_http_static_t *st);
size_t umg_http_static_count(const umg_http_static_t *st);
int64_t umg_http_static_bytes(const umg_http_static_t *st);
/** The same files as a client taking gzip gets them (text files of 512 bytes or more gzipped at start). */
int64_t umg_http_static_gz_bytes(const umg_http_static_t *st);
/**
 * Answers a GET or HEAD of a dashboard file (hashed assets immutable for a year, the rest
 * no-cache, a strict Content-Security-Policy, nosniff, ETag / 304, gzipped when the client
 * takes it), or index.html for any
 * other path a browser navigates to (Accept: text/html) that is not an API path (/v1/...,
 * /c/, /v/, /healthz, ...) or a missing asset.
 * Returns 1 when it answered, 0 when the request is not the dashboard's.
 */
int umg_http_static_serve(const umg_http_static_t *st, umg_http_req_t *req);

#endif
