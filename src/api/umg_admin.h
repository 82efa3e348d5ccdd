/*
 * umg_admin.h - the HTTP admin API: login and tokens, the organization, apps
 * with their settings and keys, users, invitations, API tokens, the audit
 * log (docs/api.md, docs/security.md).
 *
 * Requests are authenticated on their loop thread, then run one at a time on
 * the admin worker thread, which owns a connection to DATA/meta.db: password
 * hashing and SQLite writes never stall an event loop. The worker also takes
 * audit records from other modules (umg_admin_audit_async) and keeps the
 * ingest limits in step with meta.db (umg_admin_tick, main thread).
 */
#ifndef UMG_ADMIN_H
#define UMG_ADMIN_H

#include "umg_auth.h"
#include "umg_http.h"
#include "umg_limits.h"
#include "umg_meta.h"

typedef struct umg_admin_s umg_admin_t;

typedef struct umg_limits_config_s {
    double rate_eps;       /* default per-app ingest rate (events/s); 0: unlimited */
    double rate_burst;     /* default burst; 0: one second of rate */
    int64_t monthly_quota; /* default per-organization events per month; 0: unlimited */
} umg_limits_config_t;

/** Starts the worker. auth and limits are borrowed. */
int umg_admin_new(const char *data_dir, umg_auth_t *auth, umg_limits_t *limits, const umg_limits_config_t *lcfg,
                  umg_admin_t **out);
/** Finishes queued work, stops the worker, persists quota usage. */
void umg_admin_free(umg_admin_t *a);

/** Main thread, a few times a second: pushes app/org limits into the limiter, persists quota usage. */
void umg_admin_tick(umg_admin_t *a);

/** The handler for every admin route; thread_data must lead to the admin (see umg_ingest_t.admin). */
void umg_admin_handle(umg_http_req_t *req, umg_admin_t *a);

/** Queues an audit record (copied); never blocks on SQLite. */
void umg_admin_audit_async(umg_admin_t *a, const umg_audit_t *rec);

/*
 * Defers req until the audit record (copied) is written, then calls cb on the
 * request's loop thread to answer it. When the record cannot be written,
 * req is answered 503 audit_unavailable here (nothing unaudited goes out) and
 * cb gets req NULL, as when the client went away meanwhile: it only releases
 * what data holds. cb may run before this returns (queue full, out of memory).
 */
void umg_admin_audit_then(umg_admin_t *a, const umg_audit_t *rec, umg_http_req_t *req, umg_http_resume_cb cb,
                          void *data);

/** The admin routes, for the server's route table. */
/*
 * `unmogrowp admin app settings`: merges the settings JSON object (NULL or ""
 * only reads) into the app's stored settings with the same validation as
 * PATCH /v1/apps/{id}, audits the change, and writes the resulting settings
 * (UMG_OK) or an error body naming the field (UMG_EINVAL, UMG_ENOENT, UMG_EIO)
 * to out. Works while the daemon runs (it reloads settings within a second).
 */
int umg_admin_cli_app_settings(const char *data_dir, const char *app_id, const char *json, umg_buf_t *out);
/**
 * `unmogrowp admin app fraud`: shows (json NULL) or changes (a partial JSON object, as PUT /v1/apps/{id}/fraud)
 * an app's fraud settings; out gets the settings, or the error's JSON. UMG_ENOENT, UMG_EINVAL, UMG_EIO.
 */
int umg_admin_cli_app_fraud(const char *data_dir, const char *app_id, const char *json, umg_buf_t *out);

extern const umg_http_route_t umg_admin_routes[];
extern const size_t umg_admin_nroutes;

/** Writes {"error":{...}} into out (the same shape as umg_http_error). */
int umg_api_error_json(umg_buf_t *out, const char *code, const char *field, const char *message);

#endif
