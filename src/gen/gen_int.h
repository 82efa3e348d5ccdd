/*
 * gen_int.h - shared between the files of src/gen and its unit test: a
 * minimal JSON reader for small documents (the daemon's answers, app key
 * files), and the two sinks `unmogrowp gen` sends batches to: a blocking
 * HTTP/1.1 keep-alive client (plain TCP, no TLS) and a request-file writer.
 */
#ifndef UMG_GEN_INT_H
#define UMG_GEN_INT_H

#include <signal.h>

#include "umg_gen.h"

/* ------------------------------------------------------------- JSON */

/*
 * Values are raw spans of the document ({...}, [...], "...", numbers,
 * literals), borrowed from it. Only what the callers need: member lookup,
 * array walks, strings and integers. Nesting deeper than 64 is malformed.
 */

/** The member `key` of the object `obj`. UMG_OK, UMG_ENOENT, or UMG_EPARSE when obj is malformed. */
int umg__gen_json_member(umg_slice_t obj, const char *key, umg_slice_t *val);

/**
 * Walks an array: *cur starts as the raw array and is advanced. UMG_OK with
 * *elem, UMG_ENOENT after the last element, UMG_EPARSE when malformed.
 */
int umg__gen_json_next(umg_slice_t *cur, umg_slice_t *elem);

/** Unescapes a raw string into out[cap] (NUL-terminated). UMG_EINVAL when not a string, UMG_ERANGE when too long. */
int umg__gen_json_string(umg_slice_t raw, char *out, size_t cap);

/** A raw integer. UMG_EINVAL when it is not one, UMG_ERANGE when it does not fit. */
int umg__gen_json_int(umg_slice_t raw, int64_t *out);

/* ------------------------------------------------------------- sinks */

/* What one request came to. */
typedef struct umg__gen_result_s {
    uint64_t accepted, duplicates, rejected;
    uint64_t retries;      /* 429, 503, timeouts and reconnects before the answer */
    uint64_t unauthorized; /* items of a request marked `spoof` that the daemon refused with 401 */
} umg__gen_result_t;

/* How a request is signed (X-Signature, X-Signature-Timestamp; docs/gen.md "Signing"). */
typedef enum {
    UMG__GEN_SIGN_NONE = 0, /* no signature headers */
    UMG__GEN_SIGN_OK = 1,   /* v1=HMAC-SHA256(signing secret, timestamp "." body) at the current time */
    UMG__GEN_SIGN_BAD = 2,  /* the same made with another key */
    UMG__GEN_SIGN_STALE = 3 /* right, over a timestamp 10 minutes old */
} umg__gen_sign_t;

/* One request: body is {"touches":[...]} or {"events":[...]} with n items (borrowed for the call). */
typedef struct umg__gen_req_s {
    const char *path;
    const char *body;
    size_t len, n;
    umg__gen_sign_t sign;
    int spoof; /* a 401 answer is counted in res->unauthorized, not an error */
    int link;  /* GET path (a click link with its query; no body): no credentials, no User-Agent; any 2xx
                  or 3xx answer accepts its one item. HTTP sinks only */
} umg__gen_req_t;

/*
 * A sink takes whole requests. post returns UMG_OK once the request was
 * answered (written, for files) and *res is filled, whatever happened to
 * single items; any other return stops the run, with a message in msg.
 * Files take no headers: sign and spoof do not matter there.
 */
typedef struct umg__gen_sink_ops_s {
    int (*post)(void *sink, const umg__gen_req_t *req, umg__gen_result_t *res, char *msg, size_t msglen);
    /* Flushes and frees (accepts NULL); UMG_EIO with msg filled when buffered output could not be written. */
    int (*close)(void *sink, char *msg, size_t msglen);
} umg__gen_sink_ops_t;

extern const umg__gen_sink_ops_t umg__gen_http_ops;
extern const umg__gen_sink_ops_t umg__gen_file_ops;

typedef struct umg__gen_http_config_s {
    const char *host;    /* name or address (IPv6 without brackets) */
    const char *port;    /* decimal */
    const char *prefix;  /* path prefix from --url ("" or "/base"), no trailing slash */
    const char *secret;  /* sent as X-App-Secret */
    const char *key;     /* the app key (may be ""): spoofed installs are sent with it, as an SDK sends */
    const char *signing; /* the signing secret signatures are made with; NULL or "": the app secret (a daemon
                          * from before signing secrets) */
    int timeout_ms;      /* per read or write; default 60000 */
    int max_print;       /* rejected items printed to stderr at most */
} umg__gen_http_config_t;

/**
 * A client for the daemon at host:port (strings copied). Connects at once so
 * that a wrong address fails early. UMG_EIO with msg filled, UMG_ENOMEM.
 */
int umg__gen_http_open(const umg__gen_http_config_t *cfg, void **out, char *msg, size_t msglen);

/** A request-file writer: one "METHOD PATH<TAB>BODY" line per request. path "-" is stdout. */
int umg__gen_file_open(const char *path, void **out, char *msg, size_t msglen);

/**
 * Parses an answer of POST /v1/events or /v1/touches ({"accepted", "duplicates",
 * "rejected": [...]}) into res, checking that the counts add up to n. Prints
 * up to *budget rejections to stderr (each with the item it names, found in
 * body) and lowers *budget. UMG_EPARSE when the answer is not of that form.
 */
int umg__gen_answer_parse(const char *answer, size_t alen, const char *body, size_t blen, size_t n,
                          umg__gen_result_t *res, int *budget);

/**
 * The signature of a request body sent at ts_s (Unix seconds): lowercase hex of
 * HMAC-SHA256(key, decimal ts_s "." body) into out[65]. UMG_EINVAL for an empty key, UMG_ENOMEM.
 */
int umg__gen_sign(const char *key, int64_t ts_s, const char *body, size_t len, char out[65]);

/**
 * Retry-After in milliseconds for a 429/503 answer's header value (delta
 * seconds; an HTTP date or garbage gives dflt_ms); capped at 5 minutes.
 */
int64_t umg__gen_retry_after_ms(const char *value, size_t len, int64_t dflt_ms);

/** Set by gen's SIGINT handler: a sender waiting to retry stops waiting. */
extern volatile sig_atomic_t umg__gen_interrupted;

#endif
