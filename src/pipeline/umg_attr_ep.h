/*
 * umg_attr_ep.h - the HTTP endpoints over the attribution store:
 * GET /v1/attribution, GET /v1/export/installs, GET /v1/reports/mta
 * (docs/api.md), and the report worker other report endpoints
 * (src/query) queue their jobs on. Handlers run on the loop threads with the ingest module's
 * thread data (umg_ingest_thread_init).
 */
#ifndef UMG_ATTR_EP_H
#define UMG_ATTR_EP_H

#include "umg_ingest.h"

void umg_attr_ep_attribution(umg_http_req_t *req, void *thread_data);
void umg_attr_ep_export_installs(umg_http_req_t *req, void *thread_data);
void umg_attr_ep_report_mta(umg_http_req_t *req, void *thread_data);

/*
 * The worker thread that computes reports (umg_ingest_t.attr_worker): at
 * most 16 queued, more are answered 503 overloaded. Stop it before the HTTP
 * server: what is still queued is answered 503 shutting_down, and later
 * requests too; free it after the server.
 */
typedef struct umg_attr_worker_s umg_attr_worker_t;
int umg_attr_worker_start(umg_attr_worker_t **out);
void umg_attr_worker_stop(umg_attr_worker_t *w);
void umg_attr_worker_free(umg_attr_worker_t *w);

/* What a report job answers: 200 with content_type and body, or an error (umg_http_error). */
typedef struct umg_attr_answer_s {
    int status;
    const char *content_type;           /* for 200 (static) */
    const char *code, *field, *message; /* for errors (static; message NULL: a generic one) */
    umg_buf_t body;                     /* for 200; owned by the worker, freed after the answer */
} umg_attr_answer_t;
/* Computes a report on the worker thread into ans (zeroed before the call). */
typedef void (*umg_attr_job_fn)(void *data, umg_attr_answer_t *ans);

/**
 * Defers req and queues the job fn(data) on the report worker; the request
 * is resumed with its answer. When the queue is full or the worker stops,
 * answers 503 (overloaded, shutting_down) at once. Either way free_fn(data)
 * is called exactly once (on the loop thread, after the answer; also when
 * the client went away): the caller gives data up with this call.
 */
void umg_attr_worker_submit(umg_attr_worker_t *w, umg_http_req_t *req, umg_attr_job_fn fn, void (*free_fn)(void *),
                            void *data);

/** 1 when who may read app with perm (app credentials: their own app only). */
int umg_attr_ep_may(const umg_principal_t *who, uint32_t perm, const umg_app_t *app);
/**
 * The app of ?app= when the caller may read it with perm (the app key only
 * when allow_key; app credentials reach only their own app): 0 with *app and
 * *who, else non-zero after answering 503 not_ready, 401, 400, 403 or 404.
 */
int umg_attr_ep_app_for(umg_ingest_t *ing, umg_http_req_t *req, int allow_key, uint32_t perm, umg_app_t *app,
                        umg_principal_t *who);

#endif
