/*
 * touch_ep.c - ad touches in: click links (GET /c/{app_id}), impression links
 * (GET /v/{app_id}) and server-to-server batches (POST /v1/touches).
 *
 * A touch is written to the same durable log as events (kind touch) and the
 * answer waits for it, like ingest: a click link answers its 302 only once
 * the click is durable under the fsync policy. Links never fail a user's
 * redirect over a bad optional parameter: the parameter is left out, counted
 * in /metrics and named in an X-Dropped-Fields header. The redirect goes to
 * `redirect` only when its host is on the app's allowlist, else to the app's
 * store URL (never an open redirect).
 */
#include "umg_ingest.h"
#include "umg_privacy.h"
#include "umg_touch.h"

#include <pthread.h>
#include <stdlib.h>

enum { MODE_CLICK = 1, MODE_IMPRESSION = 2, MODE_S2S = 3 };

typedef struct tthread_s tthread_t;

typedef struct tpend_s {
    umg__pend_t c; /* first */
    tthread_t *t;
    int mode;
    uint64_t impression[(UMG_TOUCH_MAX_BATCH + 63) / 64]; /* which records are impressions, for the counts */
    /* a store URL may gain the click's id as its Play referrer: 5 bytes per byte of a 256-byte id at most */
    char location[UMG_TOUCH_MAX_URL + 1400];
    /* Location and Cache-Control take sizeof(location) + 40 at most; X-Dropped-Fields every parameter's name */
    char headers[UMG_TOUCH_MAX_URL + 1400 + 512];
} tpend_t;

_Static_assert(sizeof(((tpend_t *)0)->headers) >= sizeof(((tpend_t *)0)->location) + 40 + 64,
               "headers holds Location, Cache-Control and a line of dropped fields");

struct tthread_s {
    umg_ingest_t *ing;
    umg_touch_decoder_t *dec;
    umg__pend_pool_t pool;
    /* the request being decoded */
    tpend_t *cur;
    umg_arena_t pii; /* encrypted PII values of the current request */
    umg_app_t app;
    umg_http_req_t *req;
    int64_t now;
};

static umg_metric_t m_clicks = UMG_COUNTER("umg_touches_accepted_total", "Touches stored, by type", "type=\"click\"");
static umg_metric_t m_impressions =
    UMG_COUNTER("umg_touches_accepted_total", "Touches stored, by type", "type=\"impression\"");
static umg_metric_t m_rejected =
    UMG_COUNTER("umg_touches_rejected_total", "Server-to-server touches rejected by validation", NULL);
static umg_metric_t m_dropped =
    UMG_COUNTER("umg_touch_fields_dropped_total", "Invalid link parameters left out of a recorded touch", NULL);
static umg_metric_t m_refused =
    UMG_COUNTER("umg_touches_refused_total", "Touch requests refused with 503 (overload, disk full, log error)", NULL);

static pthread_key_t tkey;
static pthread_once_t tonce = PTHREAD_ONCE_INIT;

static void tthread_free(void *p)
{
    tthread_t *t = p;
    umg__pend_pool_free(&t->pool);
    umg_touch_decoder_free(t->dec);
    umg_arena_free(&t->pii);
    umg_free(t);
}

static void tinit(void)
{
    pthread_key_create(&tkey, tthread_free);
    umg_metric_register(&m_clicks);
    umg_metric_register(&m_impressions);
    umg_metric_register(&m_rejected);
    umg_metric_register(&m_dropped);
    umg_metric_register(&m_refused);
}

/* The calling loop thread's state, made on first use and freed when the thread ends. */
static tthread_t *tstate(umg_ingest_t *ing)
{
    pthread_once(&tonce, tinit);
    tthread_t *t = pthread_getspecific(tkey);
    if (t == NULL) {
        t = umg_calloc(1, sizeof(*t));
        if (t == NULL || umg_touch_decoder_new((size_t)ing->cfg.max_body_bytes, &t->dec) != UMG_OK) {
            umg_free(t);
            return NULL;
        }
        t->ing = ing;
        umg_arena_init(&t->pii, 8192);
        pthread_setspecific(tkey, t);
    }
    return t;
}

static tpend_t *tpend_get(tthread_t *t)
{
    tpend_t *p = umg__pend_get(&t->pool, sizeof(*p));
    if (p != NULL) {
        p->t = t;
        p->location[0] = p->headers[0] = '\0';
        memset(p->impression, 0, sizeof(p->impression));
    }
    return p;
}

static void tpend_put(tthread_t *t, tpend_t *p)
{
    umg__pend_put(&t->pool, &p->c);
}

/* A click id the server makes: 32 lower-case hex digits (a v4 UUID's bytes) into out[33]. */
static void new_click_id(char out[40])
{
    umg_uuid_t u;
    umg_uuid_v4(&u);
    umg_hex_encode(u.b, sizeof(u.b), out);
    out[32] = '\0';
}

/* Encodes a touch and adds it to the pending batch. */
static int add_touch(tthread_t *t, tpend_t *p, umg_touch_t *tc)
{
    char click_id[40];
    static const umg_uuid_t nil;
    if (memcmp(&tc->touch_id, &nil, sizeof(nil)) == 0) {
        umg_uuid_v4(&tc->touch_id); /* else the sender's id: a retry is answered as a duplicate */
    }
    tc->received_us = t->now;
    tc->app_id = umg_slice(t->app.public_id, strlen(t->app.public_id));
    if (tc->type == UMG_TOUCH_CLICK && tc->click_id.len == 0) {
        new_click_id(click_id);
        tc->click_id = umg_slice(click_id, 32);
    }
    /* The partition is chosen on the plaintext (below it is only used through h). */
    umg_slice_t key = umg_touch_device_key(tc);
    uint64_t h = key.len ? umg_hash64(key.ptr, key.len, 0)
                         : umg_hash64(tc->user_agent.ptr, tc->user_agent.len, umg_hash64(tc->ip.ptr, tc->ip.len, 0));
    if (t->ing->pii != NULL) {
        int erc = umg_pii_encrypt_touch(t->ing->pii, tc, &t->pii);
        if (erc != UMG_OK) {
            return erc;
        }
    }
    size_t start = p->c.payloads.len;
    int rc = umg_touch_encode_json(tc, &p->c.payloads);
    if (rc != UMG_OK) {
        return rc;
    }
    size_t n = p->c.batch.n;
    umg_bus_rec_t *r = umg__pend_rec(&p->c);
    if (r == NULL) {
        return UMG_ENOMEM;
    }
    if (tc->type == UMG_TOUCH_IMPRESSION && n < UMG_TOUCH_MAX_BATCH) {
        p->impression[n / 64] |= UINT64_C(1) << (n % 64);
    }
    r->app = t->app.id;
    /* By device when there is an identifier, else by IP and User-Agent (a probabilistic match key). */
    r->partition = (uint16_t)(h % (uint64_t)t->ing->bus_ops->partitions(t->ing->bus));
    r->kind = UMG_BUS_KIND_TOUCH;
    r->event_us = tc->ts_us;
    r->recv_us = tc->received_us;
    r->id = tc->touch_id;
    r->payload = (const char *)(uintptr_t)start;
    r->len = (uint32_t)(p->c.payloads.len - start);
    p->c.batch.n = n + 1;
    return UMG_OK;
}

/* A link's answer: 302 to where the click goes, else 204; the headers made with it. */
static void link_answer(umg_http_req_t *req, const tpend_t *p)
{
    if (p->mode == MODE_CLICK && p->location[0] != '\0') {
        umg_http_respond(req, 302, "text/plain", "", 0, p->headers);
    } else {
        umg_http_respond(req, 204, "text/plain", "", 0, p->headers[0] ? p->headers : NULL);
    }
}

static void on_resume(umg_http_req_t *req, void *data)
{
    tpend_t *p = data;
    size_t stored = 0, dups = 0, imps = 0;
    for (size_t i = 0; p->c.status == UMG_OK && i < p->c.batch.n; i++) {
        stored += p->c.recs[i].status == UMG_OK;
        dups += p->c.recs[i].status == UMG_EEXIST;
        imps += p->c.recs[i].status == UMG_OK && i < UMG_TOUCH_MAX_BATCH && (p->impression[i / 64] >> (i % 64) & 1);
    }
    if (p->c.status == UMG_OK) {
        umg_metric_add(&m_impressions, (int64_t)imps);
        umg_metric_add(&m_clicks, (int64_t)(stored - imps));
    }
    if (req != NULL) {
        if (p->c.status != UMG_OK || stored + dups < p->c.batch.n) {
            umg_metric_add(&m_refused, 1);
            umg_http_error(req, 503, p->c.status == UMG_ENOSPC ? "disk_full" : "log_unavailable", NULL,
                           "the touch could not be stored; retry later");
        } else if (p->mode == MODE_S2S) {
            char head[64];
            umg_buf_t out = {0};
            int n = snprintf(head, sizeof(head), "{\"accepted\":%zu,\"duplicates\":%zu,\"rejected\":[", stored, dups);
            int rc = umg_buf_append(&out, head, (size_t)n);
            rc = rc ? rc : umg_buf_append(&out, p->c.rejected.ptr ? p->c.rejected.ptr : "", p->c.rejected.len);
            rc = rc ? rc : umg_buf_append(&out, "]}\n", 3);
            if (rc == UMG_OK) {
                umg_http_respond(req, 202, "application/json", out.ptr, out.len, NULL);
            } else {
                umg_http_error(req, 503, "out_of_memory", NULL, "out of memory; retry");
            }
            umg_buf_free(&out);
        } else {
            link_answer(req, p);
        }
    }
    tpend_put(p->t, p);
}

static void on_done(umg_bus_batch_t *b, int status)
{
    tpend_t *p = (tpend_t *)b;
    p->c.status = status;
    umg_http_resume(p->c.defer, on_resume, p);
}

/* Hands the batch to the log and parks the request; answers itself on failure. */
static void submit(tthread_t *t, umg_http_req_t *req, tpend_t *p)
{
    umg_ingest_t *ing = t->ing;
    for (size_t i = 0; i < p->c.batch.n; i++) {
        p->c.recs[i].payload = p->c.payloads.ptr + (uintptr_t)p->c.recs[i].payload;
    }
    p->c.batch.recs = p->c.recs;
    p->c.batch.done = on_done;
    if ((p->c.defer = umg_http_defer(req)) == NULL) {
        tpend_put(t, p);
        umg_http_error(req, 503, "out_of_memory", NULL, "out of memory; retry");
        return;
    }
    int rc = ing->bus_ops->submit(ing->bus, &p->c.batch);
    if (rc != UMG_OK) {
        umg_metric_add(&m_refused, 1);
        umg_http_defer_cancel(p->c.defer);
        tpend_put(t, p);
        umg_http_error(req, 503, rc == UMG_EFULL ? "overloaded" : "log_unavailable", NULL,
                       "the event log cannot take the touch now; retry after the given seconds");
    }
}

/* ---------------------------------------------------------------- links */

/* The query of a link, split once: link_param looks names up in it. */
typedef struct link_query_s {
    umg_http_param_t *p;
    size_t n;
} link_query_t;

/* The first pair named name, as umg_http_query_param would find it. */
static int link_param(void *ctx, const char *name, umg_slice_t *value)
{
    const link_query_t *q = ctx;
    size_t nl = strlen(name);
    for (size_t i = 0; i < q->n; i++) {
        if (q->p[i].name.len == nl && memcmp(q->p[i].name.ptr, name, nl) == 0) {
            *value = q->p[i].value;
            return value->ptr != NULL ? UMG_OK : UMG_EINVAL;
        }
    }
    return UMG_ENOENT;
}

/* 1 for well-formed UTF-8 without control characters (C0, DEL, C1): what a stored touch may hold (surrogates,
 * overlong forms and code points past U+10FFFF were let through once, then refused by every reader). */
static int ua_ok(umg_slice_t s)
{
    const unsigned char *p = (const unsigned char *)s.ptr;
    for (size_t i = 0; i < s.len;) {
        size_t bad, n = umg_utf8_seq(p + i, s.len - i, &bad);
        if (n == 0 || (n == 1 && (p[i] < 0x20 || p[i] == 0x7f)) || (n == 2 && p[i] == 0xc2 && p[i + 1] < 0xa0)) {
            return 0;
        }
        i += n;
    }
    return 1;
}

/*
 * A Google Play store URL gets the click's id as its install referrer (`referrer=click_id%3D...`, the id
 * percent-encoded inside the referrer, which is percent-encoded once more): Play hands the referrer to the app
 * at install, and the install's install_referrer.referrer then finds the click by id (docs/attribution.md, rule
 * 2a). An existing referrer keeps its parameters after the id. Another URL, or one the id does not fit in, is
 * left as it is.
 */
static void play_referrer(char *url, size_t cap, umg_slice_t click_id)
{
    static const char play[] = "https://play.google.com/";
    if (click_id.len == 0 || strncasecmp(url, play, sizeof(play) - 1) != 0) {
        return;
    }
    char enc[16 + 5 * 256];
    size_t e = 0;
    memcpy(enc, "click_id%3D", 11);
    e = 11;
    for (size_t i = 0; i < click_id.len && e + 5 < sizeof(enc); i++) {
        unsigned char c = (unsigned char)click_id.ptr[i];
        int unreserved = (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || c == '-' || c == '.' ||
                         c == '_' || c == '~';
        if (unreserved) {
            enc[e++] = (char)c;
        } else {
            e += (size_t)snprintf(enc + e, sizeof(enc) - e, "%%25%02X", c); /* %XX inside, its % encoded */
        }
    }
    size_t len = strlen(url), end = strcspn(url, "#"), q = strcspn(url, "?");
    /* an existing referrer parameter: the id goes first in its value */
    size_t at = SIZE_MAX;
    for (size_t i = q; i < end; i++) {
        if ((url[i] == '?' || url[i] == '&') && strncmp(url + i + 1, "referrer=", 9) == 0) {
            at = i + 10;
            break;
        }
    }
    const char *pre = at != SIZE_MAX ? "" : q < end ? "&referrer=" : "?referrer=";
    const char *post = at != SIZE_MAX ? "%26" : "";
    size_t add = strlen(pre) + e + strlen(post);
    if (at == SIZE_MAX) {
        at = end;
    }
    if (len + add >= cap) {
        return;
    }
    memmove(url + at + add, url + at, len - at + 1);
    memcpy(url + at, pre, strlen(pre));
    memcpy(url + at + strlen(pre), enc, e);
    memcpy(url + at + strlen(pre) + e, post, strlen(post));
}

static void link_touch(umg_http_req_t *req, void *thread_data, int mode)
{
    umg_ingest_t *ing = umg__ingest_of(thread_data);
    if (!atomic_load_explicit(&ing->ready, memory_order_acquire)) {
        umg_http_error(req, 503, "not_ready", NULL, "the server is still recovering its log; retry shortly");
        return;
    }
    tthread_t *t = tstate(ing);
    tpend_t *p = t ? tpend_get(t) : NULL;
    if (t != NULL) {
        umg_arena_reset(&t->pii);
    }
    if (p == NULL) {
        umg_http_error(req, 503, "out_of_memory", NULL, "out of memory; retry");
        return;
    }
    umg_slice_t path = umg_http_path(req);
    umg_slice_t id = umg_slice(path.ptr + 3, path.len - 3); /* after "/c/" or "/v/" */
    for (size_t i = 0; i < id.len; i++) {
        if (id.ptr[i] == '?' || id.ptr[i] == '/') {
            id.len = i;
            break;
        }
    }
    link_query_t q;
    q.n = umg_http_query_split(req, &q.p);
    umg_slice_t redirect = {0};
    if (mode == MODE_CLICK && link_param(&q, "redirect", &redirect) != UMG_OK) {
        redirect = (umg_slice_t){0};
    }
    int to_store = 0;
    if (umg_apps_redirect(ing->apps, id, redirect, &t->app, &to_store, p->location, sizeof(p->location)) != UMG_OK) {
        tpend_put(t, p);
        umg_http_error(req, 404, "not_found", "app", "no such app");
        return;
    }
    p->mode = mode;
    t->now = umg_now_us();
    umg_touch_t tc;
    memset(&tc, 0, sizeof(tc));
    tc.type = mode == MODE_CLICK ? UMG_TOUCH_CLICK : UMG_TOUCH_IMPRESSION;
    tc.via_link = 1;
    tc.ts_us = t->now;
    umg_touch_error_t dropped[UMG_TOUCH_LINK_PARAMS + 1]; /* room for every parameter and the User-Agent */
    size_t ndropped = 0;
    umg_touch_from_params(&tc, link_param, &q, dropped, UMG_ARRAY_SIZE(dropped), &ndropped);
    const char *ip = umg_http_client_ip(req);
    tc.ip = umg_slice(ip, strlen(ip));
    tc.user_agent = umg_http_header(req, "user-agent");
    if (tc.user_agent.len > UMG_TOUCH_MAX_UA) {
        /* Cut on a character boundary. */
        size_t n = UMG_TOUCH_MAX_UA;
        while (n > 0 && ((unsigned char)tc.user_agent.ptr[n] & 0xc0) == 0x80) {
            n--;
        }
        tc.user_agent.len = n;
    }
    if (!ua_ok(tc.user_agent)) {
        /* Control characters or invalid UTF-8: left out, like a bad parameter. */
        tc.user_agent = (umg_slice_t){0};
        dropped[ndropped] = (umg_touch_error_t){.code = "invalid_value"};
        snprintf(dropped[ndropped].field, sizeof(dropped[ndropped].field), "user_agent");
        ndropped++;
    }
    char click_id[40];
    if (mode == MODE_CLICK && tc.click_id.len == 0) { /* made here, so that the store URL can carry it */
        new_click_id(click_id);
        tc.click_id = umg_slice(click_id, 32);
    }
    if (mode == MODE_CLICK && to_store) {
        play_referrer(p->location, sizeof(p->location), tc.click_id);
    }
    /* Answer headers: where to go, and which parameters were left out. */
    size_t hl = 0;
    if (mode == MODE_CLICK && p->location[0] != '\0') {
        static const char loc[] = "Location: ", tail[] = "\r\nCache-Control: no-store\r\n";
        size_t ll = strlen(p->location); /* < sizeof(location): the three fit in headers */
        memcpy(p->headers, loc, sizeof(loc) - 1);
        memcpy(p->headers + sizeof(loc) - 1, p->location, ll);
        memcpy(p->headers + sizeof(loc) - 1 + ll, tail, sizeof(tail));
        hl = sizeof(loc) - 1 + ll + sizeof(tail) - 1;
    }
    int head = umg_slice_eq(umg_http_method(req), "HEAD");
    if (ndropped > 0) {
        umg_metric_add(&m_dropped, head ? 0 : (int64_t)ndropped);
        hl += (size_t)snprintf(p->headers + hl, sizeof(p->headers) - hl, "X-Dropped-Fields: ");
        for (size_t i = 0; i < ndropped && hl < sizeof(p->headers) - 32; i++) { /* all fit: see headers */
            hl += (size_t)snprintf(p->headers + hl, sizeof(p->headers) - hl, "%s%s", i ? "," : "", dropped[i].field);
        }
        snprintf(p->headers + hl, sizeof(p->headers) - hl, "\r\n");
    }
    if (head) { /* link checkers and previews ask with HEAD: the same answer, but no one clicked */
        link_answer(req, p);
        tpend_put(t, p);
        return;
    }
    if (add_touch(t, p, &tc) != UMG_OK) {
        tpend_put(t, p);
        umg_http_error(req, 503, "out_of_memory", NULL, "out of memory; retry");
        return;
    }
    submit(t, req, p);
}

void umg_ingest_click(umg_http_req_t *req, void *thread_data)
{
    link_touch(req, thread_data, MODE_CLICK);
}

void umg_ingest_impression(umg_http_req_t *req, void *thread_data)
{
    link_touch(req, thread_data, MODE_IMPRESSION);
}

/* ---------------------------------------------------------------- server to server */

static int on_touch(void *ctx, size_t index, umg_touch_t *tc, const umg_touch_error_t *err)
{
    tthread_t *t = ctx;
    tpend_t *p = t->cur;
    if (tc == NULL) {
        umg_buf_t *b = &p->c.rejected;
        umg_metric_add(&m_rejected, 1);
        int rc = p->c.nrejected++ ? umg_buf_putc(b, ',') : UMG_OK;
        rc = rc ? rc : umg_buf_printf(b, "{\"index\":%zu,\"code\":", index);
        rc = rc ? rc : umg_buf_json_str(b, err->code, strlen(err->code));
        rc = rc ? rc : umg_buf_append(b, ",\"field\":", 9); /* always there: "" when the item itself is wrong */
        rc = rc ? rc : umg_buf_json_str(b, err->field, strlen(err->field));
        rc = rc ? rc : umg_buf_append(b, ",\"message\":", 11);
        rc = rc ? rc : umg_buf_json_str(b, err->message, strlen(err->message));
        return rc ? rc : umg_buf_putc(b, '}');
    }
    return add_touch(t, p, tc);
}

void umg_ingest_touches(umg_http_req_t *req, void *thread_data)
{
    umg_ingest_t *ing = umg__ingest_of(thread_data);
    if (!atomic_load_explicit(&ing->ready, memory_order_acquire)) {
        umg_http_error(req, 503, "not_ready", NULL, "the server is still recovering its log; retry shortly");
        return;
    }
    umg_principal_t who;
    if (umg__ingest_auth(ing, req, 0, &who) != 0) {
        return;
    }
    if (who.kind != UMG_PRINCIPAL_APP_SECRET) {
        umg_http_error(req, 403, "forbidden", "X-App-Secret", "touches are sent with the app secret (X-App-Secret)");
        return;
    }
    tthread_t *t = tstate(ing);
    tpend_t *p = t ? tpend_get(t) : NULL;
    if (t != NULL) {
        umg_arena_reset(&t->pii);
    }
    if (p == NULL) {
        umg_http_error(req, 503, "out_of_memory", NULL, "out of memory; retry");
        return;
    }
    p->mode = MODE_S2S;
    t->cur = p;
    t->app = who.app;
    t->req = req;
    t->now = umg_now_us();
    umg_touch_limits_t lim = {
        .now_us = t->now, .max_future_us = ing->cfg.max_future_ms * 1000, .max_age_us = ing->cfg.max_age_ms * 1000};
    umg_touch_error_t err;
    memset(&err, 0, sizeof(err));
    umg_slice_t body = umg_http_body(req);
    int rc = umg_touch_decode(t->dec, body.ptr, body.len, &lim, on_touch, t, &err);
    t->cur = NULL;
    if (rc == UMG_EPARSE || rc == UMG_ERANGE) {
        tpend_put(t, p);
        umg_http_error(req, rc == UMG_ERANGE ? 413 : 400, err.code ? err.code : "invalid_json",
                       err.field[0] ? err.field : NULL,
                       err.message[0] ? err.message : "the body must be {\"touches\": [...]}");
        return;
    }
    if (rc != UMG_OK) {
        tpend_put(t, p);
        umg_http_error(req, 503, "out_of_memory", NULL, "out of memory; retry");
        return;
    }
    if (p->c.batch.n == 0) {
        p->c.status = UMG_OK;
        on_resume(req, p);
        return;
    }
    submit(t, req, p);
}
