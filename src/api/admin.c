/*
 * admin.c - the admin API's plumbing: routes, authentication on the loop
 * thread, the worker thread and its queue, request-body helpers, the login
 * limiter, and the ingest limits kept in step with meta.db. The endpoints
 * themselves are in admin_ep.c.
 */
#include "admin_int.h"
#include "umg_ingest.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>

#define ADMIN_MAX_BODY (64u << 10)
#define ADMIN_MAX_QUEUE 1024 /* waiting requests; more get 503 (at most 64 MiB of bodies) */

/* ---------------------------------------------------------------- routes */

static void route(umg_http_req_t *req, void *thread_data)
{
    umg_admin_handle(req, umg__ingest_of(thread_data)->admin);
}

/* Each path once with every method: the worker answers 405 itself. */
const umg_http_route_t umg_admin_routes[] = {
    {"*", "/v1/auth/", 1, route},   {"*", "/v1/me", 0, route},          {"*", "/v1/me/", 1, route},
    {"*", "/v1/org", 0, route},     {"*", "/v1/apps", 0, route},        {"*", "/v1/apps/", 1, route},
    {"*", "/v1/users", 0, route},   {"*", "/v1/users/", 1, route},      {"*", "/v1/tokens", 0, route},
    {"*", "/v1/tokens/", 1, route}, {"*", "/v1/invitations", 0, route}, {"*", "/v1/invitations/", 1, route},
    {"*", "/v1/audit", 0, route},   {"*", "/v1/privacy/", 1, route},
};
const size_t umg_admin_nroutes = UMG_ARRAY_SIZE(umg_admin_routes);

int umg_api_error_json(umg_buf_t *out, const char *code, const char *field, const char *message)
{
    int rc = umg_buf_append(out, "{\"error\":{\"code\":", 17);
    rc = rc ? rc : umg_buf_json_str(out, code, strlen(code));
    rc = rc ? rc : umg_buf_append(out, ",\"message\":", 11);
    rc = rc ? rc : umg_buf_json_str(out, message, strlen(message));
    if (field != NULL) {
        rc = rc ? rc : umg_buf_append(out, ",\"field\":", 9);
        rc = rc ? rc : umg_buf_json_str(out, field, strlen(field));
    }
    return rc ? rc : umg_buf_append(out, "}}\n", 3);
}

/* ---------------------------------------------------------------- metrics */

static umg_metric_t m_logins_ok = UMG_COUNTER("umg_auth_logins_total", "Logins by outcome", "outcome=\"ok\"");
static umg_metric_t m_logins_failed = UMG_COUNTER("umg_auth_logins_total", "Logins by outcome", "outcome=\"failed\"");
static umg_metric_t m_logins_limited =
    UMG_COUNTER("umg_auth_logins_total", "Logins by outcome", "outcome=\"rate_limited\"");
static umg_metric_t m_denied = UMG_COUNTER("umg_auth_denied_total", "Admin API requests refused with 401 or 403", NULL);
static umg_metric_t m_queue = UMG_GAUGE("umg_admin_queue", "Admin API requests waiting for the worker", NULL);

void umg__admin_count_login(const char *outcome)
{
    umg_metric_add(strcmp(outcome, "ok") == 0        ? &m_logins_ok
                   : strcmp(outcome, "limited") == 0 ? &m_logins_limited
                                                     : &m_logins_failed,
                   1);
}

/* ---------------------------------------------------------------- jobs */

static void job_free(job_t *j)
{
    if (j != NULL) {
        if (j->login != NULL) {
            sodium_memzero(j->login, sizeof(*j->login));
            umg_free(j->login);
        }
        umg_free(j->path);
        umg_free(j->query);
        if (j->body != NULL) {
            sodium_memzero(j->body, j->body_len); /* it may hold a password */
        }
        umg_free(j->body);
        umg_buf_free(&j->out);
        umg_free(j->audit_strs);
        umg_free(j);
    }
}

void umg__job_error(job_t *j, int status, const char *code, const char *field, const char *message)
{
    j->status = status;
    umg_buf_reset(&j->out);
    if (umg_api_error_json(&j->out, code, field, message) != UMG_OK) {
        j->status = 503;
    }
    if (status == 401 || status == 403) {
        umg_metric_add(&m_denied, 1);
    }
}

static void on_done(umg_http_req_t *req, void *data)
{
    job_t *j = data;
    if (req != NULL) {
        if (j->status == 0 || j->out.len == 0) {
            umg_http_error(req, 503, "internal", NULL, "the admin worker could not answer; retry");
        } else {
            umg_http_respond(req, j->status, "application/json", j->out.ptr, j->out.len,
                             j->extra[0] ? j->extra : "Cache-Control: no-store\r\n");
        }
    }
    job_free(j);
}

/* The request waiting for an audit record (umg_admin_audit_then) is refused: the record could not be written. */
static void audit_refuse(umg_http_req_t *req, umg_http_resume_cb cb, void *data)
{
    if (req != NULL) {
        umg_http_error(req, 503, "audit_unavailable", NULL,
                       "the request could not be recorded in the audit log; retry");
    }
    cb(NULL, data);
}

/* An audit record a request waited for is written, or could not be. */
static void on_audited(umg_http_req_t *req, void *data)
{
    job_t *j = data;
    if (j->status != UMG_OK) {
        audit_refuse(req, j->audited, j->audited_data);
    } else {
        j->audited(req, j->audited_data);
    }
    job_free(j);
}

static int enqueue(umg_admin_t *a, job_t *j, int again);

/* The worker's queue and the password thread's: jobs linked through next, under a->mu. */
static void list_push(job_t **head, job_t **tail, job_t *j)
{
    j->next = NULL;
    if (*tail != NULL) {
        (*tail)->next = j;
    } else {
        *head = j;
    }
    *tail = j;
}

/* The next job, waiting for one under a->mu; NULL once stopping and drained. */
static job_t *list_wait_pop(umg_admin_t *a, job_t **head, job_t **tail, pthread_cond_t *cv, const int *stopping)
{
    while (*head == NULL && !*stopping) {
        pthread_cond_wait(cv, &a->mu);
    }
    job_t *j = *head;
    if (j != NULL) {
        *head = j->next;
        if (*head == NULL) {
            *tail = NULL;
        }
    }
    return j;
}

/* A login's password check, on the password thread (or the worker's when that one has stopped). */
static void password_check(login_check_t *l)
{
    l->ok = umg_meta_password_check(l->hash, l->password, l->password_len);
    l->checked = 1;
    sodium_memzero(l->password, sizeof(l->password));
}

static void *password_main(void *arg)
{
    umg_admin_t *a = arg;
    umg_thread_name("umg-password");
    pthread_mutex_lock(&a->mu);
    for (;;) {
        job_t *j = list_wait_pop(a, &a->pw_head, &a->pw_tail, &a->pw_cv, &a->pw_stopping);
        if (j == NULL) {
            break;
        }
        pthread_mutex_unlock(&a->mu);
        password_check(j->login);
        enqueue(a, j, 1); /* back to the worker for its second turn */
        pthread_mutex_lock(&a->mu);
    }
    a->pw_running = 0;
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* A login after its first turn: to the password thread, or checked here when that one has stopped. */
static void password_handoff(umg_admin_t *a, job_t *j)
{
    pthread_mutex_lock(&a->mu);
    int running = a->pw_running && !a->pw_stopping;
    if (running) {
        list_push(&a->pw_head, &a->pw_tail, j);
        pthread_cond_signal(&a->pw_cv);
    }
    pthread_mutex_unlock(&a->mu);
    if (!running) {
        password_check(j->login);
        umg__admin_dispatch(a, j);
        umg_http_resume(j->defer, on_done, j);
    }
}

static void *worker_main(void *arg)
{
    umg_admin_t *a = arg;
    umg_thread_name("umg-admin");
    pthread_mutex_lock(&a->mu);
    for (;;) {
        job_t *j = list_wait_pop(a, &a->head, &a->tail, &a->cv, &a->stopping);
        if (j == NULL) {
            break;
        }
        a->queued--;
        umg_metric_add(&m_queue, -1);
        pthread_mutex_unlock(&a->mu);
        if (j->audit_only) {
            int rc = umg_meta_audit(a->db, &j->audit);
            if (j->audited != NULL) {
                j->status = rc;
                umg_http_resume(j->defer, on_audited, j);
            } else {
                job_free(j);
            }
        } else {
            umg__admin_dispatch(a, j);
            if (j->status == 0 && umg__login_waits(j)) {
                password_handoff(a, j);
            } else {
                umg_http_resume(j->defer, on_done, j);
            }
        }
        pthread_mutex_lock(&a->mu);
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* again: a login back from the password thread, which the worker takes even when full or stopping */
static int enqueue(umg_admin_t *a, job_t *j, int again)
{
    pthread_mutex_lock(&a->mu);
    if (!again && (a->stopping || a->queued >= ADMIN_MAX_QUEUE)) {
        pthread_mutex_unlock(&a->mu);
        return UMG_EFULL;
    }
    list_push(&a->head, &a->tail, j);
    a->queued++;
    umg_metric_add(&m_queue, 1);
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
    return UMG_OK;
}

/* Every byte: the body is parsed with its length, so a copy that stopped at a NUL byte would be read past. */
static char *dup_slice(umg_slice_t s)
{
    return umg_memdup(s.ptr ? s.ptr : "", s.len);
}

/* A job holding a copy of rec; NULL when out of memory. */
static job_t *audit_job(const umg_audit_t *rec)
{
    job_t *j = umg_calloc(1, sizeof(*j));
    if (j == NULL) {
        return NULL;
    }
    /* One allocation for all the strings, NUL-separated. */
    const char *src[] = {rec->actor, rec->action, rec->target, rec->outcome, rec->ip, rec->request_id, rec->detail};
    size_t total = 0;
    for (size_t i = 0; i < UMG_ARRAY_SIZE(src); i++) {
        total += src[i] ? strlen(src[i]) + 1 : 0;
    }
    j->audit_strs = umg_malloc(total ? total : 1);
    if (j->audit_strs == NULL) {
        umg_free(j);
        return NULL;
    }
    const char *dst[UMG_ARRAY_SIZE(src)];
    char *p = j->audit_strs;
    for (size_t i = 0; i < UMG_ARRAY_SIZE(src); i++) {
        dst[i] = NULL;
        if (src[i] != NULL) {
            size_t n = strlen(src[i]) + 1;
            memcpy(p, src[i], n);
            dst[i] = p;
            p += n;
        }
    }
    j->audit_only = 1;
    j->audit = (umg_audit_t){.org_id = rec->org_id,
                             .actor = dst[0],
                             .action = dst[1],
                             .target = dst[2],
                             .outcome = dst[3],
                             .ip = dst[4],
                             .request_id = dst[5],
                             .detail = dst[6]};
    return j;
}

void umg_admin_audit_async(umg_admin_t *a, const umg_audit_t *rec)
{
    job_t *j = audit_job(rec);
    if (j == NULL) {
        umg_log(UMG_LOG_ERROR, "audit", "out of memory: audit record %s lost", rec->action);
    } else if (enqueue(a, j, 0) != UMG_OK) {
        umg_log(UMG_LOG_ERROR, "audit", "admin worker stopped or full: audit record %s lost", rec->action);
        job_free(j);
    }
}

void umg_admin_audit_then(umg_admin_t *a, const umg_audit_t *rec, umg_http_req_t *req, umg_http_resume_cb cb,
                          void *data)
{
    job_t *j = audit_job(rec);
    if (j == NULL || (j->defer = umg_http_defer(req)) == NULL) {
        job_free(j);
        audit_refuse(req, cb, data);
        return;
    }
    j->audited = cb;
    j->audited_data = data;
    if (enqueue(a, j, 0) != UMG_OK) {
        umg_http_defer_cancel(j->defer);
        job_free(j);
        audit_refuse(req, cb, data);
    }
}

/* Endpoints that take no credentials (they are the way to get one). */
static int is_anonymous(umg_slice_t method, umg_slice_t path)
{
    if (!umg_slice_eq(method, "POST")) {
        return 0;
    }
    return umg_slice_eq(path, "/v1/auth/login") || umg_slice_eq(path, "/v1/auth/refresh") ||
           umg_slice_eq(path, "/v1/auth/logout") || umg_slice_eq(path, "/v1/invitations/accept");
}

void umg_admin_handle(umg_http_req_t *req, umg_admin_t *a)
{
    umg_slice_t method = umg_http_method(req), full = umg_http_path(req), path = full;
    for (size_t i = 0; i < full.len; i++) {
        if (full.ptr[i] == '?') {
            path.len = i;
            break;
        }
    }
    if (memchr(path.ptr, '\0', path.len) != NULL) {
        umg_http_error(req, 404, "not_found", NULL, "no such endpoint");
        return;
    }
    if (umg_http_body(req).len > ADMIN_MAX_BODY) {
        umg_http_error(req, 413, "body_too_large", NULL, "admin requests take at most 64 KiB");
        return;
    }
    job_t *j = umg_calloc(1, sizeof(*j));
    if (j == NULL) {
        umg_http_error(req, 503, "out_of_memory", NULL, "out of memory; retry");
        return;
    }
    if (!is_anonymous(method, path)) {
        umg_credentials_t c = {.authorization = umg_http_header(req, "authorization"),
                               .app_secret = umg_http_header(req, "x-app-secret"),
                               .app_key = umg_http_header(req, "x-app-key")};
        umg_authn_error_t err;
        if (umg_auth_authenticate(a->auth, &c, 0, umg_now_us(), &j->who, &err) != UMG_OK) {
            umg_metric_add(&m_denied, 1);
            job_free(j);
            umg_http_error(req, 401, err.code, err.field, err.message);
            return;
        }
        if (j->who.kind == UMG_PRINCIPAL_APP_SECRET) {
            /* App secrets are for ingest, touches, exports and reports of their app, not administration. */
            umg_metric_add(&m_denied, 1);
            job_free(j);
            umg_http_error(req, 403, "forbidden", "Authorization",
                           "the admin API needs a user's access token or an API token, not an app secret");
            return;
        }
    }
    snprintf(j->method, sizeof(j->method), "%.*s", (int)UMG_MIN(method.len, sizeof(j->method) - 1), method.ptr);
    umg_slice_t body = umg_http_body(req);
    j->path = umg_strndup(path.ptr, path.len);
    j->query = dup_slice(umg_http_query(req));
    j->body = dup_slice(body);
    j->body_len = body.len;
    snprintf(j->ip, sizeof(j->ip), "%s", umg_http_client_ip(req));
    snprintf(j->request_id, sizeof(j->request_id), "%s", umg_http_request_id(req));
    if (j->path == NULL || j->query == NULL || j->body == NULL || (j->defer = umg_http_defer(req)) == NULL) {
        job_free(j);
        umg_http_error(req, 503, "out_of_memory", NULL, "out of memory; retry");
        return;
    }
    if (enqueue(a, j, 0) != UMG_OK) {
        umg_http_defer_cancel(j->defer);
        job_free(j);
        umg_http_error(req, 503, "overloaded", NULL, "the admin API is busy; retry shortly");
    }
}

/* ---------------------------------------------------------------- lifecycle */

#define LOGIN_SLOTS 4096 /* addresses and accounts with failed logins in one window before they share slots */

static void login_restore(umg_admin_t *a);

int umg_admin_new(const char *data_dir, umg_auth_t *auth, umg_limits_t *limits, const umg_limits_config_t *lcfg,
                  umg_admin_t **out)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    umg_admin_t *a = umg_calloc(1, sizeof(*a));
    if (a == NULL) {
        return UMG_ENOMEM;
    }
    pthread_once(&once, umg__admin_metrics_register);
    a->auth = auth;
    a->limits = limits;
    a->lcfg = *lcfg;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    pthread_cond_init(&a->pw_cv, NULL);
    int rc = umg_meta_open(data_dir, &a->db);
    rc = rc ? rc : umg_meta_privacy_key(data_dir, a->privacy_key);
    rc = rc ? rc : umg_meta_open(data_dir, &a->tick_db);
    rc = rc ? rc : umg_json_parser_new(1 << 20, &a->json) == UMG_JSON_OK ? rc : UMG_ENOMEM;
    if (rc == UMG_OK) {
        const umg_auth_config_t *cfg = umg_auth_config(auth);
        uint64_t seed; /* random per process: collisions cannot be searched for offline */
        umg_random_bytes(&seed, sizeof(seed));
        rc = umg_login_limit_new(LOGIN_SLOTS, cfg->login_window_ms * 1000, cfg->login_max_failures, seed,
                                 &a->login_limit);
    }
    if (rc == UMG_OK) {
        umg__admin_usage_load(a);
        login_restore(a);
        umg_admin_tick(a);
        if (pthread_create(&a->thread, NULL, worker_main, a) != 0) {
            rc = UMG_ENOMEM;
        } else {
            a->started = 1;
        }
        /* without it (cannot start a thread) logins are checked on the worker, as before */
        a->pw_running = rc == UMG_OK && pthread_create(&a->pw_thread, NULL, password_main, a) == 0;
    }
    if (rc != UMG_OK) {
        umg_admin_free(a);
        return rc;
    }
    *out = a;
    return UMG_OK;
}

void umg_admin_free(umg_admin_t *a)
{
    if (a == NULL) {
        return;
    }
    /* The password thread first: what it holds goes back to the worker, which then drains everything. */
    pthread_mutex_lock(&a->mu);
    int pw = a->pw_running;
    a->pw_stopping = 1;
    pthread_cond_broadcast(&a->pw_cv);
    pthread_mutex_unlock(&a->mu);
    if (pw) {
        pthread_join(a->pw_thread, NULL);
    }
    pthread_mutex_lock(&a->mu);
    a->stopping = 1;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    if (a->started) {
        pthread_join(a->thread, NULL);
    }
    if (a->tick_db != NULL) {
        umg__admin_usage_save(a);
    }
    umg_json_parser_free(a->json);
    sqlite3_close(a->db);
    sqlite3_close(a->tick_db);
    umg_login_limit_free(a->login_limit);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    pthread_cond_destroy(&a->pw_cv);
    umg_free(a);
}

void umg__admin_metrics_register(void)
{
    umg_metric_register(&m_logins_ok);
    umg_metric_register(&m_logins_failed);
    umg_metric_register(&m_logins_limited);
    umg_metric_register(&m_denied);
    umg_metric_register(&m_queue);
}

/* ---------------------------------------------------------------- limits */

typedef struct limits_ctx_s {
    umg_admin_t *a;
} limits_ctx_t;

static void apply_app_limits(void *ctx, const umg_app_t *app)
{
    umg_admin_t *a = ((limits_ctx_t *)ctx)->a;
    umg_rate_t r = {.rate = app->rate_eps > 0 ? app->rate_eps : a->lcfg.rate_eps,
                    .burst = app->rate_eps > 0 ? app->rate_burst : a->lcfg.rate_burst};
    if (r.rate > 0 && r.burst < 1) {
        r.burst = r.rate < 1 ? 1 : r.rate;
    }
    umg_limits_set_app(a->limits, app->id, r);
    umg_limits_set_org(a->limits, app->org,
                       app->org_monthly_quota > 0 ? app->org_monthly_quota : a->lcfg.monthly_quota);
}

static void save_one(void *ctx, uint32_t org, int month, int64_t used)
{
    sqlite3_stmt *st = ctx;
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, org);
    sqlite3_bind_int(st, 2, month);
    sqlite3_bind_int64(st, 3, used);
    sqlite3_step(st);
}

void umg__admin_usage_save(umg_admin_t *a)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(a->tick_db,
                           "INSERT INTO org_usage (org_id, month, events) VALUES (?, ?, ?)"
                           " ON CONFLICT (org_id, month) DO UPDATE SET events = excluded.events",
                           -1, &st, NULL) != SQLITE_OK) {
        umg_log(UMG_LOG_ERROR, "limits", "cannot save quota usage: %s", sqlite3_errmsg(a->tick_db));
        return;
    }
    sqlite3_exec(a->tick_db, "BEGIN", NULL, NULL, NULL);
    umg_limits_usage_each(a->limits, umg_now_us(), save_one, st);
    sqlite3_exec(a->tick_db, "COMMIT", NULL, NULL, NULL);
    sqlite3_finalize(st);
}

void umg__admin_usage_load(umg_admin_t *a)
{
    sqlite3_stmt *st = NULL;
    int month = umg_limits_month(umg_now_us());
    if (sqlite3_prepare_v2(a->tick_db, "SELECT org_id, events FROM org_usage WHERE month = ?", -1, &st, NULL) !=
        SQLITE_OK) {
        return;
    }
    sqlite3_bind_int(st, 1, month);
    while (sqlite3_step(st) == SQLITE_ROW) {
        umg_limits_usage_set(a->limits, (uint32_t)sqlite3_column_int64(st, 0), month, sqlite3_column_int64(st, 1));
    }
    sqlite3_finalize(st);
}

void umg_admin_tick(umg_admin_t *a)
{
    limits_ctx_t ctx = {a};
    umg_apps_each(umg_auth_apps(a->auth), apply_app_limits, &ctx);
    int64_t now = umg_now_us();
    if (now - a->usage_saved_us >= 5 * 1000000ll) {
        umg__admin_usage_save(a);
        a->usage_saved_us = now;
    }
}

/* ---------------------------------------------------------------- login limiter */

/*
 * After a restart, the limiter as it stood: the logins of the last window, replayed from the audit log (every
 * login is audited, a failure with the e-mail address tried and the client's address, a success with the
 * user), and the password changes (POST /v1/me/password, audited with the user: a wrong current password counts
 * as a failed login). The audit log only grows and its times grow with its ids, so the window's first row is found by
 * bisecting ids, not by reading the table.
 */
static void login_restore(umg_admin_t *a)
{
    const umg_auth_config_t *cfg = umg_auth_config(a->auth);
    int64_t since = umg_now_us() - cfg->login_window_ms * 1000, lo = 1, hi = 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(a->db, "SELECT COALESCE(MAX(id), 0) FROM audit", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        hi = sqlite3_column_int64(st, 0) + 1;
    }
    sqlite3_finalize(st);
    st = NULL;
    /* the first id whose row is at or after since (hi when none) */
    if (sqlite3_prepare_v2(a->db, "SELECT ts_us FROM audit WHERE id >= ? ORDER BY id LIMIT 1", -1, &st, NULL) !=
        SQLITE_OK) {
        return;
    }
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, mid);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) < since) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(a->db,
                           "SELECT a.ts_us, a.outcome, a.target, COALESCE(a.ip, ''), u.email, a.action FROM audit a"
                           " LEFT JOIN users u ON u.public_id = a.target"
                           " AND (a.outcome = 'ok' OR a.action = 'user.password')"
                           " WHERE a.id >= ? AND a.action IN ('auth.login', 'user.password') ORDER BY a.id",
                           -1, &st, NULL) != SQLITE_OK) {
        umg_log(UMG_LOG_WARN, "admin", "cannot read the logins of the last window: %s", sqlite3_errmsg(a->db));
        return;
    }
    sqlite3_bind_int64(st, 1, lo);
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        int64_t ts = sqlite3_column_int64(st, 0);
        const char *outcome = (const char *)sqlite3_column_text(st, 1),
                   *target = (const char *)sqlite3_column_text(st, 2);
        const char *ip = (const char *)sqlite3_column_text(st, 3), *email = (const char *)sqlite3_column_text(st, 4);
        if (ts < since || outcome == NULL) {
            continue;
        }
        if (strcmp((const char *)sqlite3_column_text(st, 5), "user.password") == 0) {
            target = email; /* a password change names the user; the limiter counts by e-mail address */
        }
        if (strcmp(outcome, "failed") == 0 && target != NULL) {
            umg_login_limit_failed(a->login_limit, ip, target, ts);
            n++;
        } else if (strcmp(outcome, "ok") == 0 && email != NULL) {
            umg_login_limit_succeeded(a->login_limit, email, ts);
        }
    }
    sqlite3_finalize(st);
    if (n > 0) {
        umg_log(UMG_LOG_INFO, "admin", "login limiter: %d failed logins of the last window taken back", n);
    }
}
