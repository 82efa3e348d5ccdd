/*
 * umg_ingest.h - the endpoints that take data in (POST /v1/events) and give
 * raw data back (GET /v1/export/events), plus /healthz, /readyz, /metrics.
 * Glue between the HTTP server, the event codec, the app registry and the
 * bus.
 */
#ifndef UMG_INGEST_H
#define UMG_INGEST_H

#include "umg_apps.h"
#include "umg_auth.h"
#include "umg_limits.h"
#include "umg_bus.h"
#include "umg_http.h"

typedef struct umg_ingest_config_s {
    int64_t max_events;    /* per request */
    int64_t max_future_ms; /* event time ahead of the server */
    int64_t max_age_ms;    /* event time behind the server */
    int64_t max_body_bytes;
} umg_ingest_config_t;

typedef struct umg_ingest_s {
    umg_ingest_config_t cfg;
    umg_apps_t *apps;                      /* borrowed */
    umg_auth_t *auth;                      /* borrowed */
    umg_limits_t *limits;                  /* borrowed; NULL: no ingest limits */
    struct umg_admin_s *admin;             /* borrowed; the admin API and async audit */
    struct umg_pii_s *pii;                 /* borrowed; NULL: no PII encrypted at rest */
    struct umg_store_s *store;             /* borrowed; the attribution store (NULL: attribution off) */
    struct umg_pipeline_s *pipeline;       /* borrowed */
    struct umg_attr_worker_s *attr_worker; /* borrowed; computes reports */
    struct umg_rollup_s *rollup;           /* borrowed; report rollups the pipeline keeps (NULL: none) */
    struct umg_tz_cache_s *tzc;            /* borrowed; the apps' time zones */
    struct umg_sig_cache_s *sig_cache;     /* borrowed; signatures accepted (NULL: no replay check) */
    struct umg_iplists_s *iplists;         /* borrowed; blocked_ip's lists, for the pipeline (NULL: none) */
    struct umg_botua_s *botua;             /* borrowed; bot_user_agent's patterns (NULL: none) */
    struct umg_live_s *live;               /* borrowed; the live feed (GET /v1/live); NULL: none */
    const umg_bus_ops_t *bus_ops;          /* set with bus once recovery finished */
    umg_bus_t *bus;
    _Atomic int ready;
} umg_ingest_t;

/* Per-loop-thread state (the decoder, free request records). */
void *umg_ingest_thread_init(void *ingest, int index);
void umg_ingest_thread_fini(void *thread_data);

/* Route handlers; thread_data is what umg_ingest_thread_init returned. */
void umg_ingest_events(umg_http_req_t *req, void *thread_data);
void umg_ingest_export(umg_http_req_t *req, void *thread_data);
void umg_ingest_export_touches(umg_http_req_t *req, void *thread_data);
/* touch_ep.c: click and impression links, server-to-server touches */
void umg_ingest_click(umg_http_req_t *req, void *thread_data);
void umg_ingest_impression(umg_http_req_t *req, void *thread_data);
void umg_ingest_touches(umg_http_req_t *req, void *thread_data);
void umg_ingest_healthz(umg_http_req_t *req, void *thread_data);
void umg_ingest_readyz(umg_http_req_t *req, void *thread_data);
void umg_ingest_metrics(umg_http_req_t *req, void *thread_data);

/* Shared by the handlers: authenticates the request (Bearer token,
 * X-App-Secret, and X-App-Key when allow_key) into *who; answers 401 itself
 * and returns non-zero on failure. */
int umg__ingest_auth(umg_ingest_t *ing, umg_http_req_t *req, int allow_key, umg_principal_t *who);
umg_ingest_t *umg__ingest_of(void *thread_data);
/* A time query parameter: Unix milliseconds or RFC 3339 into *out (microseconds). *present says whether it was
 * given; UMG_EINVAL when it is malformed. */
int umg__ingest_time_param(umg_http_req_t *req, const char *name, int64_t *out, int *present);

/*
 * A request's records on their way to the log (POST /v1/events and the touch
 * endpoints), at the start of each endpoint's own request type: the bus batch
 * first (its done callback gets the request back from it), the records, their
 * payloads (a record's payload holds an offset into them until the batch is
 * submitted) and the per-item errors. Each loop thread keeps a pool of them.
 */
typedef struct umg__pend_s {
    umg_bus_batch_t batch; /* first */
    umg_bus_rec_t *recs;
    size_t cap;
    umg_buf_t payloads;
    umg_buf_t rejected; /* JSON array elements, comma-separated */
    size_t nrejected;
    umg_http_defer_t *defer;
    int status;
    struct umg__pend_s *next_free;
} umg__pend_t;

typedef struct umg__pend_pool_s {
    umg__pend_t *free_list;
    size_t nfree;
} umg__pend_pool_t;

/* A request of `size` bytes (a type that starts with umg__pend_t; the rest is the caller's to set) with no records
 * and no errors; NULL when out of memory. */
void *umg__pend_get(umg__pend_pool_t *pool, size_t size);
void umg__pend_put(umg__pend_pool_t *pool, umg__pend_t *p);
void umg__pend_pool_free(umg__pend_pool_t *pool);
/* The batch's next record (zeroed; the caller counts it in batch.n once it is complete); NULL when out of memory. */
umg_bus_rec_t *umg__pend_rec(umg__pend_t *p);

#endif
