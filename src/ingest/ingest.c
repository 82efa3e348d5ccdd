/*
 * ingest.c - POST /v1/events and the health and metrics endpoints.
 *
 * A request is authenticated by its app key or secret, decoded and validated
 * event by event, and the good events are encoded to their canonical JSON and
 * handed to the bus as one batch. The request is parked until the bus's
 * writer has made the batch durable; the answer then says how many events
 * were accepted, how many were duplicates and which were rejected and why.
 * Per-request memory (records, payloads, rejections) comes from a per-thread
 * free list, so the steady state allocates nothing.
 */
#include "umg_admin.h"
#include "umg_event.h"
#include "umg_fraud_net.h"
#include "umg_ingest.h"
#include "umg_live.h"
#include "umg_privacy.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>

typedef struct ingest_thread_s ingest_thread_t;

typedef struct pending_s {
    umg__pend_t c; /* first */
    ingest_thread_t *t;
    int single;
    umg_event_error_t first_err;
    uint32_t app, org;      /* for giving back limit tokens of events not stored */
    uint64_t recs_key_hash; /* the current event's device key hash, before PII encryption */
} pending_t;

struct ingest_thread_s {
    umg_ingest_t *ing;
    umg_event_decoder_t *dec;
    umg__pend_pool_t pool;
    umg_http_req_t *cur_req;
    umg_app_t cur_app;
    int cur_secret; /* the request is server-to-server (the app secret): the connection is not the device's */
    pending_t *cur;
    umg_buf_t out;   /* response bodies, reused (the server copies what it sends) */
    umg_arena_t pii; /* encrypted PII values of the current request */
};

/* ---------------------------------------------------------------- metrics */

static const char *const reject_codes[] = {"required",     "invalid_type",   "invalid_value", "invalid_utf8",
                                           "too_long",     "unknown_field",  "ts_in_future",  "ts_too_old",
                                           "no_device_id", "too_many_props", "other"};
static umg_metric_t m_rejected[UMG_ARRAY_SIZE(reject_codes)];
static char reject_labels[UMG_ARRAY_SIZE(reject_codes)][48];
static umg_metric_t m_accepted = UMG_COUNTER("umg_events_accepted_total", "Events accepted and stored", NULL);
static umg_metric_t m_duplicate =
    UMG_COUNTER("umg_events_duplicate_total", "Events answered as duplicates of an event_id already stored", NULL);
static umg_metric_t m_rate =
    UMG_COUNTER("umg_ingest_limited_total", "Ingest requests refused with 429, by limit", "limit=\"rate\"");
static umg_metric_t m_quota =
    UMG_COUNTER("umg_ingest_limited_total", "Ingest requests refused with 429, by limit", "limit=\"quota\"");
static umg_metric_t m_overload =
    UMG_COUNTER("umg_ingest_refused_total", "Ingest requests refused with 503 (overload, disk full, log error)", NULL);

static void metrics_init(void)
{
    for (size_t i = 0; i < UMG_ARRAY_SIZE(reject_codes); i++) {
        snprintf(reject_labels[i], sizeof(reject_labels[i]), "reason=\"%s\"", reject_codes[i]);
        m_rejected[i].name = "umg_events_rejected_total";
        m_rejected[i].help = "Events rejected by validation, by reason";
        m_rejected[i].labels = reject_labels[i];
        m_rejected[i].kind = UMG_METRIC_COUNTER;
        umg_metric_register(&m_rejected[i]);
    }
    umg_metric_register(&m_accepted);
    umg_metric_register(&m_duplicate);
    umg_metric_register(&m_overload);
    umg_metric_register(&m_rate);
    umg_metric_register(&m_quota);
}

static void count_reject(const char *code)
{
    size_t n = UMG_ARRAY_SIZE(reject_codes) - 1;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(code, reject_codes[i]) == 0) {
            umg_metric_add(&m_rejected[i], 1);
            return;
        }
    }
    umg_metric_add(&m_rejected[n], 1);
}

/* ---------------------------------------------------------------- threads */

void *umg_ingest_thread_init(void *ingest, int index)
{
    (void)index;
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, metrics_init);
    umg_ingest_t *ing = ingest;
    ingest_thread_t *t = umg_calloc(1, sizeof(*t));
    if (t == NULL) {
        umg_log(UMG_LOG_ERROR, "ingest", "out of memory starting a loop thread");
        abort();
    }
    t->ing = ing;
    umg_arena_init(&t->pii, 16384);
    if (umg_event_decoder_new((size_t)ing->cfg.max_body_bytes, &t->dec) != UMG_OK) {
        umg_log(UMG_LOG_ERROR, "ingest", "cannot create the event decoder");
        abort();
    }
    return t;
}

/* ------------------------------------------------------------ requests */

static void pend_free(umg__pend_t *p)
{
    umg_free(p->recs);
    umg_buf_free(&p->payloads);
    umg_buf_free(&p->rejected);
    umg_free(p);
}

void *umg__pend_get(umg__pend_pool_t *pool, size_t size)
{
    umg__pend_t *p = pool->free_list;
    if (p != NULL) {
        pool->free_list = p->next_free;
        pool->nfree--;
    } else if ((p = umg_calloc(1, size)) == NULL) {
        return NULL;
    }
    p->nrejected = 0;
    p->status = UMG_OK;
    p->defer = NULL;
    umg_buf_reset(&p->payloads);
    umg_buf_reset(&p->rejected);
    memset(&p->batch, 0, sizeof(p->batch));
    return p;
}

void umg__pend_put(umg__pend_pool_t *pool, umg__pend_t *p)
{
    /* Keep a bounded pool; shrink buffers a huge request grew. */
    if (pool->nfree >= 256 || p->payloads.cap > (4u << 20)) {
        pend_free(p);
        return;
    }
    p->next_free = pool->free_list;
    pool->free_list = p;
    pool->nfree++;
}

void umg__pend_pool_free(umg__pend_pool_t *pool)
{
    while (pool->free_list != NULL) {
        umg__pend_t *p = pool->free_list;
        pool->free_list = p->next_free;
        pend_free(p);
    }
    pool->nfree = 0;
}

umg_bus_rec_t *umg__pend_rec(umg__pend_t *p)
{
    if (p->batch.n == p->cap) {
        size_t ncap = p->cap ? p->cap * 2 : 16;
        umg_bus_rec_t *nr = umg_realloc(p->recs, ncap * sizeof(*nr));
        if (nr == NULL) {
            return NULL;
        }
        p->recs = nr;
        p->cap = ncap;
    }
    umg_bus_rec_t *r = &p->recs[p->batch.n];
    memset(r, 0, sizeof(*r));
    return r;
}

void umg_ingest_thread_fini(void *thread_data)
{
    ingest_thread_t *t = thread_data;
    if (t == NULL) {
        return;
    }
    umg__pend_pool_free(&t->pool);
    umg_event_decoder_free(t->dec);
    umg_buf_free(&t->out);
    umg_arena_free(&t->pii);
    umg_free(t);
}

umg_ingest_t *umg__ingest_of(void *thread_data)
{
    return ((ingest_thread_t *)thread_data)->ing;
}

static pending_t *pending_get(ingest_thread_t *t)
{
    pending_t *p = umg__pend_get(&t->pool, sizeof(*p));
    if (p != NULL) {
        p->t = t;
        p->single = 0;
    }
    return p;
}

static void pending_put(ingest_thread_t *t, pending_t *p)
{
    umg__pend_put(&t->pool, &p->c);
}

/* ---------------------------------------------------------------- auth */

int umg__ingest_auth(umg_ingest_t *ing, umg_http_req_t *req, int allow_key, umg_principal_t *who)
{
    umg_credentials_t c = {.authorization = umg_http_header(req, "authorization"),
                           .app_secret = umg_http_header(req, "x-app-secret"),
                           .app_key = umg_http_header(req, "x-app-key")};
    umg_authn_error_t err;
    if (umg_auth_authenticate(ing->auth, &c, allow_key, umg_now_us(), who, &err) != UMG_OK) {
        umg_http_error(req, 401, err.code, err.field, err.message);
        return -1;
    }
    return 0;
}

/*
 * The sdk_spoofing rule for an app with settings.require_signature: the request must carry
 * X-Signature and X-Signature-Timestamp signed with the app's signing secret (docs/fraud.md). Answers 401
 * itself and returns non-zero when refused. Server-to-server calls (the app secret) are not
 * checked: the secret itself proves the sender.
 */
static int ingest_signature(umg_ingest_t *ing, umg_http_req_t *req, const umg_app_t *app)
{
    umg_app_secrets_t keys;
    int64_t now_us = umg_now_us();
    umg_sig_result_t r = UMG_SIG_INVALID;
    if (umg_apps_signing_secrets(ing->apps, umg_slice(app->public_id, strlen(app->public_id)), now_us, &keys) ==
        UMG_OK) {
        umg_slice_t secrets[2] = {umg_slice(keys.secret, strlen(keys.secret)),
                                  umg_slice(keys.prev_secret, strlen(keys.prev_secret))};
        r = umg_sig_verify(umg_http_header(req, "x-signature"), umg_http_header(req, "x-signature-timestamp"),
                           umg_http_body(req), secrets, keys.prev_secret[0] ? 2 : 1, now_us / 1000000, UMG_SIG_WINDOW_S,
                           ing->sig_cache);
        sodium_memzero(&keys, sizeof(keys));
    }
    umg_sig_count(r);
    if (r == UMG_SIG_OK) {
        return 0;
    }
    static const char *const why[] = {
        [UMG_SIG_MISSING] = "this app requires signed requests: send X-Signature (v1=HMAC-SHA256 hex) and "
                            "X-Signature-Timestamp (Unix seconds)",
        [UMG_SIG_INVALID] = "X-Signature is malformed or does not match the body, the timestamp and the app's signing "
                            "secret",
        [UMG_SIG_STALE] = "X-Signature-Timestamp is more than 5 minutes away from the server clock; re-sign with "
                          "the current time",
        [UMG_SIG_REPLAYED] = "this exact signature was already accepted; re-sign a retry with a fresh timestamp",
    };
    umg_http_error(req, 401, umg_sig_reason(r), r == UMG_SIG_STALE ? "X-Signature-Timestamp" : "X-Signature", why[r]);
    return -1;
}

/* Rate limit and monthly quota for n events; answers 429 itself and returns non-zero when refused. */
static int ingest_limit(umg_ingest_t *ing, umg_http_req_t *req, const umg_app_t *app, size_t n)
{
    if (ing->limits == NULL || n == 0) {
        return 0;
    }
    umg_limit_verdict_t v;
    umg_limits_take(ing->limits, app->id, app->org, (int64_t)n, umg_now_us(), &v);
    if (v.ok) {
        return 0;
    }
    umg_metric_add(v.which[0] == 'q' ? &m_quota : &m_rate, 1);
    char hdr[256];
    snprintf(hdr, sizeof(hdr),
             "Retry-After: %lld\r\nRateLimit-Limit: %lld\r\nRateLimit-Remaining: %lld\r\nRateLimit-Reset: %lld\r\n",
             (long long)v.retry_after_s, (long long)v.limit, (long long)UMG_MAX(v.remaining, 0), (long long)v.reset_s);
    int quota = v.which[0] == 'q';
    umg_buf_t out = {0};
    int rc = umg_api_error_json(&out, quota ? "quota_exceeded" : "rate_limited", NULL,
                                quota ? "the organization's monthly event quota is used up; nothing was stored"
                                      : "this app is sending events faster than its rate limit; nothing was stored, "
                                        "retry after the given seconds");
    if (rc == UMG_OK) {
        umg_http_respond(req, 429, "application/json", out.ptr, out.len, hdr);
    } else {
        umg_http_error(req, 503, "out_of_memory", NULL, "out of memory; retry");
    }
    umg_buf_free(&out);
    return -1;
}

/* ---------------------------------------------------------------- events */

static int add_rejection(pending_t *p, size_t index, const umg_event_error_t *err)
{
    umg_buf_t *b = &p->c.rejected;
    int rc = p->c.nrejected ? umg_buf_putc(b, ',') : UMG_OK;
    rc = rc ? rc : umg_buf_append(b, "{\"index\":", 9);
    rc = rc ? rc : umg_buf_u64(b, index);
    rc = rc ? rc : umg_buf_append(b, ",\"code\":", 8);
    rc = rc ? rc : umg_buf_json_str(b, err->code, strlen(err->code));
    rc = rc ? rc : umg_buf_append(b, ",\"field\":", 9); /* always there: "" when the item itself is wrong */
    rc = rc ? rc : umg_buf_json_str(b, err->field, strlen(err->field));
    rc = rc ? rc : umg_buf_append(b, ",\"message\":", 11);
    rc = rc ? rc : umg_buf_json_str(b, err->message, strlen(err->message));
    rc = rc ? rc : umg_buf_putc(b, '}');
    if (p->c.nrejected == 0) {
        p->first_err = *err;
    }
    p->c.nrejected++;
    count_reject(err->code);
    return rc;
}

static int on_event(void *ctx, size_t index, umg_event_t *ev, const umg_event_error_t *err)
{
    ingest_thread_t *t = ctx;
    pending_t *p = t->cur;
    if (ev == NULL) {
        return add_rejection(p, index, err);
    }
    if (!ev->has_event_id) {
        umg_uuid_v4(&ev->event_id);
        ev->has_event_id = 1;
    }
    ev->app_id = umg_slice(t->cur_app.public_id, strlen(t->cur_app.public_id));
    if (ev->ip.len == 0 && !t->cur_secret) {
        /* An SDK's request comes from the device. A server's comes from the app's backend: without the body's ip,
         * the device's address is unknown (else every such event would share the backend's address, for the
         * probabilistic match and the fraud rules alike). */
        const char *ip = umg_http_client_ip(t->cur_req);
        ev->ip = umg_slice(ip, strlen(ip));
    }
    if (t->ing->pii != NULL) {
        /* The partition below is chosen on the plaintext device key, so it does not move. */
        umg_slice_t key = umg_event_device_key(ev);
        p->recs_key_hash = umg_hash64(key.ptr, key.len, 0);
        int erc = umg_pii_encrypt_event(t->ing->pii, ev, &t->pii);
        if (erc != UMG_OK) {
            return erc;
        }
    }
    size_t start = p->c.payloads.len;
    int rc = umg_event_encode_json(ev, &p->c.payloads);
    if (rc != UMG_OK) {
        return rc;
    }
    size_t n = p->c.batch.n;
    umg_bus_rec_t *r = umg__pend_rec(&p->c);
    if (r == NULL) {
        return UMG_ENOMEM;
    }
    r->app = t->cur_app.id;
    uint64_t h;
    if (t->ing->pii != NULL) {
        h = p->recs_key_hash;
    } else {
        umg_slice_t key = umg_event_device_key(ev);
        h = umg_hash64(key.ptr, key.len, 0);
    }
    r->partition = (uint16_t)(h % (uint64_t)t->ing->bus_ops->partitions(t->ing->bus));
    r->kind = UMG_BUS_KIND_EVENT;
    r->event_us = ev->ts_us;
    r->recv_us = ev->received_us;
    r->id = ev->event_id;
    r->payload = (const char *)(uintptr_t)start; /* an offset until the buffer stops moving */
    r->len = (uint32_t)(p->c.payloads.len - start);
    p->c.batch.n = n + 1;
    return UMG_OK;
}

static void respond_counts(umg_http_req_t *req, pending_t *p, size_t accepted, size_t dups)
{
    umg_buf_t *out = &p->t->out;
    umg_buf_reset(out);
    int single_bad = p->single && p->c.nrejected > 0;
    int rc = umg_buf_putc(out, '{');
    if (single_bad) {
        const umg_event_error_t *e = &p->first_err;
        rc = rc ? rc : umg_buf_append(out, "\"error\":{\"code\":", 16);
        rc = rc ? rc : umg_buf_json_str(out, e->code, strlen(e->code));
        rc = rc ? rc : umg_buf_append(out, ",\"message\":", 11);
        rc = rc ? rc : umg_buf_json_str(out, e->message, strlen(e->message));
        if (e->field[0] != '\0') {
            rc = rc ? rc : umg_buf_append(out, ",\"field\":", 9);
            rc = rc ? rc : umg_buf_json_str(out, e->field, strlen(e->field));
        }
        rc = rc ? rc : umg_buf_append(out, "},", 2);
    }
    rc = rc ? rc : umg_buf_append(out, "\"accepted\":", 11);
    rc = rc ? rc : umg_buf_u64(out, accepted);
    rc = rc ? rc : umg_buf_append(out, ",\"duplicates\":", 14);
    rc = rc ? rc : umg_buf_u64(out, dups);
    rc = rc ? rc : umg_buf_append(out, ",\"rejected\":[", 13);
    rc = rc ? rc : umg_buf_append(out, p->c.rejected.ptr ? p->c.rejected.ptr : "", p->c.rejected.len);
    rc = rc ? rc : umg_buf_append(out, "]}\n", 3);
    if (rc != UMG_OK) {
        umg_http_error(req, 503, "out_of_memory", NULL, "the server is out of memory; retry");
    } else {
        umg_http_respond(req, single_bad ? 400 : 202, "application/json", out->ptr, out->len, NULL);
    }
}

/* What the batch stored, and its rejections, to the live feed (nothing when nobody watches the app). */
static void live_publish(umg_ingest_t *ing, pending_t *p, size_t accepted)
{
    if (!umg_live_wanted(ing->live, p->app)) {
        return;
    }
    for (size_t i = 0; i < p->c.batch.n; i++) {
        int st = p->c.recs[i].status;
        if (st == UMG_OK || st == UMG_EEXIST) {
            umg_live_publish_event(ing->live, p->app, st == UMG_OK ? "accepted" : "duplicate", p->c.recs[i].payload,
                                   p->c.recs[i].len);
        }
    }
    if (p->c.nrejected > 0) {
        umg_live_publish_rejected(ing->live, p->app, accepted, p->c.rejected.ptr, p->c.rejected.len);
    }
}

static void on_resume(umg_http_req_t *req, void *data)
{
    pending_t *p = data;
    ingest_thread_t *t = p->t;
    size_t accepted = 0, dups = 0, failed = 0;
    if (p->c.status == UMG_OK) {
        for (size_t i = 0; i < p->c.batch.n; i++) {
            int st = p->c.recs[i].status;
            accepted += st == UMG_OK;
            dups += st == UMG_EEXIST;
            failed += st != UMG_OK && st != UMG_EEXIST;
        }
        umg_metric_add(&m_accepted, (int64_t)accepted);
        umg_metric_add(&m_duplicate, (int64_t)dups);
        live_publish(t->ing, p, accepted);
    }
    if (t->ing->limits != NULL && accepted < p->c.batch.n) {
        /* Duplicates and events not stored count against no limit. */
        umg_limits_give_back(t->ing->limits, p->app, p->org, (int64_t)(p->c.batch.n - accepted));
    }
    if (req != NULL) {
        if (p->c.status == UMG_ENOSPC) {
            umg_metric_add(&m_overload, 1);
            umg_http_error(req, 503, "disk_full", NULL,
                           "the event log's disk is full; nothing was stored, retry later");
        } else if (p->c.status != UMG_OK) {
            umg_metric_add(&m_overload, 1);
            umg_http_error(req, 503, "log_unavailable", NULL, "the event log could not store the batch; retry later");
        } else if (failed > 0) {
            /* Out of memory for dedupe on some records: those were not stored. */
            umg_metric_add(&m_overload, 1);
            umg_http_error(req, 503, "out_of_memory", NULL,
                           "some events could not be stored; retry the request (stored ones count as duplicates)");
        } else {
            respond_counts(req, p, accepted, dups);
        }
    }
    pending_put(t, p);
}

/* Runs on the bus writer thread. */
static void on_batch_done(umg_bus_batch_t *b, int status)
{
    pending_t *p = (pending_t *)b;
    p->c.status = status;
    umg_http_resume(p->c.defer, on_resume, p);
}

void umg_ingest_events(umg_http_req_t *req, void *thread_data)
{
    ingest_thread_t *t = thread_data;
    umg_ingest_t *ing = t->ing;
    if (!atomic_load_explicit(&ing->ready, memory_order_acquire)) {
        umg_http_error(req, 503, "not_ready", NULL, "the server is still recovering its log; retry shortly");
        return;
    }
    umg_principal_t who;
    if (umg__ingest_auth(ing, req, 1, &who) != 0) {
        return;
    }
    if (who.kind != UMG_PRINCIPAL_APP_KEY && who.kind != UMG_PRINCIPAL_APP_SECRET) {
        umg_http_error(req, 403, "forbidden", "Authorization",
                       "events are sent with the app's key (X-App-Key) or secret (X-App-Secret)");
        return;
    }
    umg_app_t app = who.app;
    int is_secret = who.kind == UMG_PRINCIPAL_APP_SECRET;
    if (!is_secret && app.require_signature && ingest_signature(ing, req, &app) != 0) {
        return;
    }
    umg_slice_t body = umg_http_body(req);
    size_t n_events = 0;
    int is_batch = 0;
    umg_event_error_t perr;
    memset(&perr, 0, sizeof(perr));
    int rc =
        umg_event_decoder_parse(t->dec, body.ptr, body.len, (size_t)ing->cfg.max_events, &n_events, &is_batch, &perr);
    if (rc == UMG_ERANGE) {
        umg_http_error(req, 413, "too_many_events", "events", perr.message[0] ? perr.message : "too many events");
        return;
    }
    if (rc != UMG_OK) {
        umg_http_error(req, 400, perr.code ? perr.code : "invalid_json", perr.field[0] ? perr.field : NULL,
                       perr.message[0] ? perr.message : "the body is not a JSON event or {\"events\": [...]}");
        return;
    }
    pending_t *p = pending_get(t);
    if (p == NULL) {
        umg_http_error(req, 503, "out_of_memory", NULL, "the server is out of memory; retry");
        return;
    }
    p->single = !is_batch;
    umg_event_limits_t lim = {.now_us = umg_now_us(),
                              .max_future_us = ing->cfg.max_future_ms * 1000,
                              .max_age_us = ing->cfg.max_age_ms * 1000,
                              .allow_ip = is_secret};
    t->cur = p;
    t->cur_req = req;
    t->cur_app = app;
    t->cur_secret = is_secret;
    if (ing->pii != NULL) {
        umg_arena_reset(&t->pii);
    }
    rc = umg_event_decoder_foreach(t->dec, &lim, on_event, t);
    t->cur = NULL;
    if (rc != UMG_OK) {
        pending_put(t, p);
        umg_http_error(req, 503, "out_of_memory", NULL, "the server is out of memory; retry");
        return;
    }
    if (p->c.batch.n == 0) {
        if (p->c.nrejected > 0 && umg_live_wanted(ing->live, app.id)) {
            umg_live_publish_rejected(ing->live, app.id, 0, p->c.rejected.ptr, p->c.rejected.len);
        }
        respond_counts(req, p, 0, 0);
        pending_put(t, p);
        return;
    }
    if (ingest_limit(ing, req, &app, p->c.batch.n) != 0) {
        pending_put(t, p);
        return;
    }
    p->app = app.id;
    p->org = app.org;
    for (size_t i = 0; i < p->c.batch.n; i++) {
        p->c.recs[i].payload = p->c.payloads.ptr + (uintptr_t)p->c.recs[i].payload;
    }
    p->c.batch.recs = p->c.recs;
    p->c.batch.done = on_batch_done;
    p->c.defer = umg_http_defer(req);
    if (p->c.defer == NULL) {
        if (ing->limits != NULL) {
            umg_limits_give_back(ing->limits, p->app, p->org, (int64_t)p->c.batch.n);
        }
        pending_put(t, p);
        umg_http_error(req, 503, "out_of_memory", NULL, "the server is out of memory; retry");
        return;
    }
    rc = ing->bus_ops->submit(ing->bus, &p->c.batch);
    if (rc != UMG_OK) {
        /* Not queued: answer now. */
        umg_metric_add(&m_overload, 1);
        if (rc == UMG_EFULL) {
            umg_http_error(req, 503, "overloaded", NULL, "the event log is behind; retry after the given seconds");
        } else {
            umg_http_error(req, 503, "log_unavailable", NULL, "the event log is not accepting writes");
        }
        umg_http_defer_cancel(p->c.defer);
        if (ing->limits != NULL) {
            umg_limits_give_back(ing->limits, p->app, p->org, (int64_t)p->c.batch.n);
        }
        pending_put(t, p);
    }
}

/* ---------------------------------------------------------------- health */

void umg_ingest_healthz(umg_http_req_t *req, void *thread_data)
{
    (void)thread_data;
    umg_http_respond(req, 200, "application/json", "{\"status\":\"ok\"}\n", 16, "Cache-Control: no-store\r\n");
}

void umg_ingest_readyz(umg_http_req_t *req, void *thread_data)
{
    umg_ingest_t *ing = umg__ingest_of(thread_data);
    if (!atomic_load(&ing->ready)) {
        umg_http_error(req, 503, "not_ready", NULL, "recovering the event log");
        return;
    }
    umg_bus_stats_t bs;
    ing->bus_ops->stats(ing->bus, &bs);
    if (bs.broken) { /* a load balancer sends the traffic elsewhere: this node refuses writes until a restart */
        umg_http_error(req, 503, "log_unavailable", NULL,
                       "the event log refuses writes after a failed fdatasync; check the disk, then restart");
        return;
    }
    umg_http_respond(req, 200, "application/json", "{\"status\":\"ready\"}\n", 19, "Cache-Control: no-store\r\n");
}

void umg_ingest_metrics(umg_http_req_t *req, void *thread_data)
{
    (void)thread_data;
    umg_buf_t out = {0};
    if (umg_metrics_render(&out) != UMG_OK) {
        umg_buf_free(&out);
        umg_http_error(req, 503, "out_of_memory", NULL, "out of memory rendering metrics");
        return;
    }
    umg_http_respond(req, 200, "text/plain; version=0.0.4", out.ptr, out.len, NULL);
    umg_buf_free(&out);
}
