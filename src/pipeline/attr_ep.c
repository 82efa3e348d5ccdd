/*
 * attr_ep.c - what the pipeline decided, over HTTP:
 *   GET /v1/attribution?app=&device=     one device's attribution (SDKs, deferred deep links)
 *   GET /v1/export/installs?app=&from=&to=  every decision as JSON lines
 *   GET /v1/reports/mta?app=&from=&to=&model=&by=&value=  multi-touch credit
 * All read the attribution store in read transactions (never the writer's).
 */
#include "umg_attr_ep.h"
#include "umg_fraud.h"

#include "umg_admin.h"
#include "umg_pipeline.h"
#include "umg_report.h"
#include "umg_store.h"

#include <pthread.h>
#include <stdlib.h>

/* Finds ?app= and checks the caller may read it with perm (app credentials: only their own app). */
int umg_attr_ep_may(const umg_principal_t *who, uint32_t perm, const umg_app_t *app)
{
    if (who->kind == UMG_PRINCIPAL_APP_KEY || who->kind == UMG_PRINCIPAL_APP_SECRET) {
        return who->app.id == app->id;
    }
    return umg_principal_can(who, perm, app);
}

int umg_attr_ep_app_for(umg_ingest_t *ing, umg_http_req_t *req, int allow_key, uint32_t perm, umg_app_t *app,
                        umg_principal_t *who)
{
    if (!atomic_load_explicit(&ing->ready, memory_order_acquire) || ing->store == NULL) {
        umg_http_error(req, 503, "not_ready", NULL, "the server is still recovering; retry shortly");
        return -1;
    }
    if (umg__ingest_auth(ing, req, allow_key, who) != 0) {
        return -1;
    }
    umg_slice_t v;
    if (umg_http_query_param(req, "app", &v) != UMG_OK || v.len == 0) {
        umg_http_error(req, 400, "required", "app", "the query parameter app (the app id) is required");
        return -1;
    }
    int found = umg_apps_find_id(ing->apps, v, app) == UMG_OK;
    if (!found || !umg_attr_ep_may(who, perm, app)) {
        if (found && umg_principal_can(who, UMG_PERM_APPS_READ, app)) {
            umg_http_error(req, 403, "forbidden", "app", "this needs another permission on this app");
        } else {
            umg_http_error(req, 404, "not_found", "app", "no such app, or no access to it");
        }
        return -1;
    }
    return 0;
}

/* from / to (event time, inclusive / exclusive); answers 400 itself. */
static int period(umg_http_req_t *req, int64_t *from, int64_t *to)
{
    int has_from, has_to;
    *from = INT64_MIN / 2;
    *to = INT64_MAX / 2;
    if (umg__ingest_time_param(req, "from", from, &has_from) != UMG_OK) {
        umg_http_error(req, 400, "invalid_value", "from", "from must be Unix milliseconds or an RFC 3339 time");
        return -1;
    }
    if (umg__ingest_time_param(req, "to", to, &has_to) != UMG_OK) {
        umg_http_error(req, 400, "invalid_value", "to", "to must be Unix milliseconds or an RFC 3339 time");
        return -1;
    }
    if (!has_from) {
        *from = INT64_MIN / 2;
    }
    if (!has_to) {
        *to = INT64_MAX / 2;
    }
    if (*to <= *from) {
        umg_http_error(req, 400, "invalid_value", "to", "to must be later than from");
        return -1;
    }
    return 0;
}

static int put_time(umg_buf_t *o, const char *name, int64_t us)
{
    char t[32];
    umg_time_format_rfc3339(us, t);
    return umg_buf_printf(o, ",\"%s\":\"%s\"", name, t);
}

/* ,"name":"text" for a dictionary id; nothing for 0. */
static int put_str(umg_buf_t *o, umg_store_txn_t *tx, const char *name, uint32_t id)
{
    umg_slice_t s;
    if (id == 0 || umg_store_string(tx, id, &s) != UMG_OK) {
        return UMG_OK;
    }
    int rc = umg_buf_printf(o, ",\"%s\":", name);
    return rc ? rc : umg_buf_json_str(o, s.ptr, s.len);
}

/*
 * The raw click_id of a stored touch, read back from its log record (the
 * store keeps only its hash). The JSON string's content is copied as stored
 * (escapes included), so it can be written back between quotes.
 */
static int click_id_of(umg_ingest_t *ing, uint32_t app, uint64_t touch_id, char *out, size_t cap)
{
    umg_bus_reader_t *r;
    umg_bus_read_opts_t o = {.partition = -1, .from_offset = touch_id, .to_offset = touch_id + 1, .app = app};
    out[0] = '\0';
    if (ing->bus_ops->reader_open(ing->bus, &o, &r) != UMG_OK) {
        return UMG_EIO;
    }
    umg_bus_msg_t m;
    int rc = ing->bus_ops->reader_next(r, &m);
    if (rc == UMG_OK) {
        rc = UMG_ENOENT;
        const char *p = m.kind == UMG_BUS_KIND_TOUCH ? memmem(m.payload, m.len, "\"click_id\":\"", 12) : NULL;
        if (p != NULL) {
            p += 12;
            const char *end = m.payload + m.len;
            size_t n = 0;
            while (p < end && *p != '"' && n + 2 < cap) {
                if (*p == '\\' && p + 1 < end) {
                    out[n++] = *p++;
                }
                out[n++] = *p++;
            }
            out[n] = '\0';
            rc = p < end && *p == '"' ? UMG_OK : UMG_ENOENT;
            if (rc != UMG_OK) {
                out[0] = '\0';
            }
        }
    }
    ing->bus_ops->reader_close(r);
    return rc;
}

/* The members of an attribution (the winning touch), the first one preceded by lead ("," or ""). */
static int put_attribution(umg_buf_t *o, umg_store_txn_t *tx, umg_ingest_t *ing, uint32_t app,
                           const umg_attr_attribution_t *a, const char *lead)
{
    int rc = umg_buf_printf(o, "%s\"match\":\"%s\",\"touch_type\":\"%s\"", lead, umg_attr_match_name(a->match),
                            umg_attr_touch_type_name(a->touch_type));
    rc = rc ? rc : put_time(o, "touch_ts", a->touch_ts_us);
    rc = rc ? rc : umg_buf_printf(o, ",\"touch_id\":%llu", (unsigned long long)a->touch_id);
    rc = rc ? rc : put_str(o, tx, "source", a->source);
    rc = rc ? rc : put_str(o, tx, "campaign", a->campaign);
    rc = rc ? rc : put_str(o, tx, "adset", a->adset);
    rc = rc ? rc : put_str(o, tx, "ad", a->ad);
    rc = rc ? rc : put_str(o, tx, "site", a->site);
    rc = rc ? rc : put_str(o, tx, "deep_link", a->deep_link);
    if (rc == UMG_OK && ing != NULL && a->click_id != 0) {
        char cid[600];
        if (click_id_of(ing, app, a->touch_id, cid, sizeof(cid)) == UMG_OK) {
            rc = umg_buf_printf(o, ",\"click_id\":\"%s\"", cid);
        }
    }
    return rc;
}

/* The fraud verdict of a decision: ,"fraud":null or {"status","reason","rules":[...],"score"}, and the candidate
 * touches the rules took out at decision time. */
static int put_fraud(umg_buf_t *o, umg_ingest_t *ing, uint32_t app, const umg_store_decision_t *r)
{
    static const char *const status[] = {"clean", "flagged", "rejected"};
    int rc;
    if (r->fraud_rules == 0 && r->score < 0) {
        rc = umg_buf_printf(o, ",\"fraud\":null");
    } else {
        rc = umg_buf_printf(o, ",\"fraud\":{\"status\":\"%s\"", status[r->fraud_status <= 2 ? r->fraud_status : 0]);
        if (rc == UMG_OK && r->fraud_reason != 0) {
            rc = umg_buf_printf(o, ",\"reason\":\"%s\"", umg_fraud_reason_name(r->fraud_reason));
        }
        rc = rc ? rc : umg_buf_printf(o, ",\"rules\":[");
        for (unsigned k = 1, n = 0; k < UMG_FR_N && rc == UMG_OK; k++) {
            if (r->fraud_rules >> k & 1) {
                rc = umg_buf_printf(o, "%s\"%s\"", n++ ? "," : "", umg_fraud_reason_name(k));
            }
        }
        rc = rc ? rc : umg_buf_putc(o, ']');
        if (rc == UMG_OK && r->score >= 0) {
            rc = umg_buf_printf(o, ",\"score\":%.6g", (double)r->score);
        }
        rc = rc ? rc : umg_buf_putc(o, '}');
    }
    rc = rc ? rc : umg_buf_printf(o, ",\"rejected_touches\":[");
    for (uint32_t i = 0; i < r->nrejected && i < UMG_STORE_MAX_REJECTED && rc == UMG_OK; i++) {
        rc = umg_buf_printf(o, "%s{\"touch_id\":%llu,\"reason\":\"%s\"", i ? "," : "",
                            (unsigned long long)r->rejected[i].touch_id, umg_fraud_reason_name(r->rejected[i].reason));
        char cid[600];
        if (rc == UMG_OK && ing != NULL && click_id_of(ing, app, r->rejected[i].touch_id, cid, sizeof(cid)) == UMG_OK) {
            rc = umg_buf_printf(o, ",\"click_id\":\"%s\"", cid);
        }
        rc = rc ? rc : umg_buf_putc(o, '}');
    }
    return rc ? rc : umg_buf_putc(o, ']');
}

/* ------------------------------------------------------- GET /v1/attribution */

void umg_attr_ep_attribution(umg_http_req_t *req, void *thread_data)
{
    umg_ingest_t *ing = umg__ingest_of(thread_data);
    umg_principal_t who;
    umg_app_t app;
    if (umg_attr_ep_app_for(ing, req, 1, UMG_PERM_REPORTS_READ, &app, &who) != 0) {
        return;
    }
    umg_slice_t dev;
    if (umg_http_query_param(req, "device", &dev) != UMG_OK || dev.len == 0) {
        umg_http_error(req, 400, "required", "device",
                       "the query parameter device (any identifier of the device: idfa, gaid, idfv, ...) is required");
        return;
    }
    if (dev.len > 256) {
        umg_http_error(req, 400, "too_long", "device", "device is longer than 256 bytes");
        return;
    }
    umg_store_txn_t *tx;
    if (umg_store_begin(ing->store, 0, &tx) != UMG_OK) {
        umg_http_error(req, 503, "store_unavailable", NULL, "cannot read the attribution store; retry");
        return;
    }
    umg_store_device_t d;
    int rc = UMG_ENOENT;
    for (int k = 0; k < UMG_ATTR_ID_KINDS && rc == UMG_ENOENT; k++) {
        rc = umg_store_device_by_id(tx, app.id, umg_attr_id_hash((umg_attr_id_kind_t)k, dev), &d);
    }
    umg_buf_t o = {0};
    int brc = umg_buf_printf(&o, "{\"app\":\"%s\",\"device\":", app.public_id);
    brc = brc ? brc : umg_buf_json_str(&o, dev.ptr, dev.len);
    if (rc == UMG_ENOENT) {
        /* Not in the store: either never seen, or behind the pipeline. */
        umg_bus_stats_t bs;
        ing->bus_ops->stats(ing->bus, &bs);
        int behind = ing->pipeline != NULL && umg_pipeline_next_offset(ing->pipeline) < bs.durable_offset;
        brc = brc ? brc : umg_buf_printf(&o, ",\"status\":\"%s\"}", behind ? "pending" : "not_found");
    } else if (rc != UMG_OK) {
        umg_store_abort(tx);
        umg_buf_free(&o);
        umg_http_error(req, 503, "store_unavailable", NULL, "cannot read the attribution store; retry");
        return;
    } else {
        const umg_attr_attribution_t *a = &d.attr.install;
        int organic = a->match == UMG_ATTR_MATCH_NONE;
        brc = brc ? brc
                  : umg_buf_printf(&o, ",\"status\":\"%s\",\"outcome\":\"%s\"", organic ? "organic" : "attributed",
                                   umg_attr_outcome_name((umg_attr_outcome_t)d.attr.outcome));
        brc = brc ? brc : put_time(&o, "install_ts", d.attr.install_ts_us);
        if (brc == UMG_OK && d.fraud_reason != 0) {
            brc = umg_buf_printf(&o, ",\"fraud\":{\"status\":\"rejected\",\"reason\":\"%s\"}",
                                 umg_fraud_reason_name(d.fraud_reason));
        }
        if (!organic) {
            brc = brc ? brc : put_attribution(&o, tx, ing, app.id, a, ",");
        }
        brc = brc ? brc
                  : umg_buf_printf(&o, ",\"installs\":%u,\"reinstalls\":%u,\"reengagements\":%u", d.attr.installs,
                                   d.attr.reinstalls, d.attr.reengagements);
        umg_attr_credit_t cr;
        umg_attr_settings_t s;
        umg_pipeline_app_settings(&app, &s);
        if (brc == UMG_OK && umg_attr_credit_event(&s, &d.attr, umg_now_us(), &cr) == UMG_OK && cr.reeng_active) {
            brc = umg_buf_printf(&o, ",\"reengagement\":{\"active\":true");
            brc = brc ? brc : put_time(&o, "ts", d.attr.reeng_ts_us);
            brc = brc ? brc : put_time(&o, "until", d.attr.reeng_ts_us + s.reengagement_window_days * 86400000000ll);
            brc = brc ? brc : put_attribution(&o, tx, ing, app.id, &cr.reeng, ",");
            brc = brc ? brc : umg_buf_putc(&o, '}');
        } else if (brc == UMG_OK) {
            brc = umg_buf_printf(&o, ",\"reengagement\":null");
        }
        brc = brc ? brc : umg_buf_putc(&o, '}');
    }
    umg_store_abort(tx);
    if (brc != UMG_OK) {
        umg_http_error(req, 503, "out_of_memory", NULL, "out of memory; retry");
    } else {
        umg_http_respond(req, 200, "application/json", o.ptr, o.len, "Cache-Control: no-store\r\n");
    }
    umg_buf_free(&o);
}

/* ---------------------------------------------------- GET /v1/export/installs */

#define EXPORT_CHUNK (256u << 10)

typedef struct iexport_s {
    umg_ingest_t *ing;
    umg_store_t *store;
    uint32_t app;
    char app_public[24];
    int64_t from, to;
    umg_store_scan_pos_t last; /* the last row sent, when has_last */
    int has_last;
    umg_buf_t *out;
    umg_store_txn_t *tx;
    int rc;
} iexport_t;

static int install_row(void *ctx, const umg_store_decision_t *r)
{
    iexport_t *x = ctx;
    umg_buf_t *o = x->out;
    char eid[37];
    umg_uuid_format(&r->event_id, eid);
    int rc =
        umg_buf_printf(o, "{\"app\":\"%s\",\"event_id\":\"%s\",\"offset\":%llu,\"outcome\":\"%s\"", x->app_public, eid,
                       (unsigned long long)r->offset, umg_attr_outcome_name((umg_attr_outcome_t)r->d.outcome));
    rc = rc ? rc : put_time(o, r->d.outcome == UMG_ATTR_OUT_REENGAGEMENT ? "ts" : "install_ts", r->d.ts_us);
    rc = rc ? rc : put_time(o, "decided_at", r->d.decided_us);
    rc = rc ? rc
            : umg_buf_printf(o, ",\"device_key\":\"%016llx\",\"candidates\":%u", (unsigned long long)r->device_key,
                             r->d.n_candidates);
    if (r->d.attr.match == UMG_ATTR_MATCH_NONE) {
        rc = rc ? rc : umg_buf_printf(o, ",\"attribution\":null");
    } else {
        rc = rc ? rc : umg_buf_printf(o, ",\"attribution\":{");
        rc = rc ? rc : put_attribution(o, x->tx, x->ing, x->app, &r->d.attr, "");
        rc = rc ? rc : umg_buf_putc(o, '}');
    }
    rc = rc ? rc : umg_buf_printf(o, ",\"touches\":[");
    for (uint32_t i = 0; i < r->ncontrib && rc == UMG_OK; i++) {
        const umg_store_contrib_t *c = &r->contrib[i];
        char t[32];
        umg_time_format_rfc3339(c->ts_us, t);
        rc = umg_buf_printf(o, "%s{\"touch_id\":%llu,\"ts\":\"%s\",\"type\":\"%s\",\"match\":\"%s\"", i ? "," : "",
                            (unsigned long long)c->touch_id, t, umg_attr_touch_type_name(c->type),
                            umg_attr_match_name(c->match));
        rc = rc ? rc : put_str(o, x->tx, "source", c->source);
        rc = rc ? rc : put_str(o, x->tx, "campaign", c->campaign);
        rc = rc ? rc : umg_buf_putc(o, '}');
    }
    rc = rc ? rc : umg_buf_putc(o, ']');
    rc = rc ? rc : put_fraud(o, x->ing, x->app, r);
    rc = rc ? rc : umg_buf_printf(o, "}\n");
    x->last = (umg_store_scan_pos_t){r->d.ts_us, r->offset};
    x->has_last = 1;
    if (rc != UMG_OK) {
        x->rc = rc;
        return 1;
    }
    return o->len >= EXPORT_CHUNK ? 1 : 0;
}

static int iexport_pull(void *data, umg_buf_t *out, int *done)
{
    iexport_t *x = data;
    int rc = umg_store_begin(x->store, 0, &x->tx);
    if (rc != UMG_OK) {
        return rc;
    }
    x->out = out;
    x->rc = UMG_OK;
    rc = umg_store_decisions_scan(x->tx, x->app, x->from, x->to, x->has_last ? &x->last : NULL, install_row, x);
    umg_store_abort(x->tx);
    x->tx = NULL;
    if (rc == 1) {
        return x->rc; /* a full chunk (or an error in a row) */
    }
    if (rc != UMG_OK) {
        return rc;
    }
    *done = 1;
    return UMG_OK;
}

static void iexport_fini(void *data)
{
    umg_free(data);
}

/* The export's audit record is written: it starts (req NULL: refused, or the client went away). */
static void iexport_audited(umg_http_req_t *req, void *data)
{
    if (req == NULL) {
        iexport_fini(data);
        return;
    }
    umg_http_stream(req, 200, "application/x-ndjson", iexport_pull, iexport_fini, data);
}

void umg_attr_ep_export_installs(umg_http_req_t *req, void *thread_data)
{
    umg_ingest_t *ing = umg__ingest_of(thread_data);
    umg_principal_t who;
    umg_app_t app;
    if (umg_attr_ep_app_for(ing, req, 0, UMG_PERM_EXPORT_RAW, &app, &who) != 0) {
        return;
    }
    iexport_t *x = umg_calloc(1, sizeof(*x));
    if (x == NULL) {
        umg_http_error(req, 503, "out_of_memory", NULL, "out of memory");
        return;
    }
    if (period(req, &x->from, &x->to) != 0) {
        umg_free(x);
        return;
    }
    x->ing = ing;
    x->store = ing->store;
    x->app = app.id;
    memcpy(x->app_public, app.public_id, sizeof(x->app_public));
    if (ing->admin != NULL) {
        umg_audit_t rec = {.org_id = app.org,
                           .actor = who.id,
                           .action = "export.installs",
                           .target = app.public_id,
                           .outcome = "ok",
                           .ip = umg_http_client_ip(req),
                           .request_id = umg_http_request_id(req),
                           .detail = NULL};
        umg_admin_audit_then(ing->admin, &rec, req, iexport_audited, x); /* nothing leaves before it is written */
        return;
    }
    iexport_audited(req, x);
}

/* ------------------------------------------------------- GET /v1/reports/mta */

/*
 * The report's journeys are collected first (dictionary ids), so the channels
 * can be counted: above MTA_MAX_CHANNELS distinct ones, the most used keep
 * their names and the rest become "(other)" (Markov and Shapley cost grows
 * with the channels: 1M journeys over 300 channels take seconds).
 */
#define MTA_MAX_CHANNELS 64

typedef struct jtouch_s {
    uint64_t group; /* non-converting: the device (first identifier, else IP); converting: the journey */
    int64_t ts_us;
    uint32_t channel; /* dictionary id */
    uint32_t pad;
} jtouch_t;

typedef struct jconv_s {
    size_t start; /* into conv */
    uint32_t n;
    double value;
} jconv_t;

/* An open-addressing map of 64-bit keys (never UINT64_MAX) to counts. */
typedef struct idmap_s {
    uint64_t *keys; /* UINT64_MAX: empty */
    uint64_t *vals;
    size_t cap, n;
} idmap_t;

static uint64_t id_slot(uint64_t id)
{
    id ^= id >> 33;
    id *= UINT64_C(0xff51afd7ed558ccd);
    return id ^ (id >> 33);
}

/* The value slot of key, made (0) when new; NULL when out of memory. */
static uint64_t *idmap_at(idmap_t *m, uint64_t key)
{
    if ((m->n + 1) * 2 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 1024;
        uint64_t *nk = umg_malloc(ncap * sizeof(uint64_t)), *nv = umg_calloc(ncap, sizeof(uint64_t));
        if (nk == NULL || nv == NULL) {
            umg_free(nk);
            umg_free(nv);
            return NULL;
        }
        memset(nk, 0xff, ncap * sizeof(uint64_t));
        for (size_t i = 0; i < m->cap; i++) {
            if (m->keys[i] != UINT64_MAX) {
                size_t j = id_slot(m->keys[i]) & (ncap - 1);
                while (nk[j] != UINT64_MAX) {
                    j = (j + 1) & (ncap - 1);
                }
                nk[j] = m->keys[i];
                nv[j] = m->vals[i];
            }
        }
        umg_free(m->keys);
        umg_free(m->vals);
        m->keys = nk;
        m->vals = nv;
        m->cap = ncap;
    }
    size_t j = id_slot(key) & (m->cap - 1);
    while (m->keys[j] != UINT64_MAX && m->keys[j] != key) {
        j = (j + 1) & (m->cap - 1);
    }
    if (m->keys[j] == UINT64_MAX) {
        m->keys[j] = key;
        m->n++;
    }
    return &m->vals[j];
}

static const uint64_t *idmap_get(const idmap_t *m, uint64_t key)
{
    if (m->cap == 0) {
        return NULL;
    }
    size_t j = id_slot(key) & (m->cap - 1);
    while (m->keys[j] != UINT64_MAX) {
        if (m->keys[j] == key) {
            return &m->vals[j];
        }
        j = (j + 1) & (m->cap - 1);
    }
    return NULL;
}

static void idmap_free(idmap_t *m)
{
    umg_free(m->keys);
    umg_free(m->vals);
}

typedef struct mta_ctx_s {
    umg_store_txn_t *tx;
    umg_mta_report_by_t by;
    umg_mta_report_value_t value;
    uint32_t app;
    int64_t from, to;
    idmap_t used;   /* touch ids of converting journeys, and the clicks installs rejected (not journeys at all) */
    idmap_t devs;   /* value=revenue: device key -> its latest conversion's path + 1 (the revenue goes there once) */
    jtouch_t *conv; /* the converting journeys' touches */
    size_t nconv, conv_cap;
    jconv_t *paths; /* converting journeys */
    size_t npaths, paths_cap;
    jtouch_t *free_touches; /* touches no install used */
    size_t nfree, free_cap;
    int rc;
} mta_ctx_t;

static int push(void **arr, size_t *n, size_t *cap, size_t size)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 4096;
        void *a = umg_realloc(*arr, ncap * size);
        if (a == NULL) {
            return UMG_ENOMEM;
        }
        *arr = a;
        *cap = ncap;
    }
    (*n)++;
    return UMG_OK;
}

static int mta_conversion(void *ctx, const umg_store_decision_t *r)
{
    mta_ctx_t *c = ctx;
    uint8_t oc = r->d.outcome;
    if ((oc != UMG_ATTR_OUT_INSTALL && oc != UMG_ATTR_OUT_REATTRIBUTED && oc != UMG_ATTR_OUT_IMPLICIT_INSTALL) ||
        r->fraud_status == UMG_STORE_FRAUD_REJECTED) {
        return 0; /* a rejected install is no conversion of anyone's */
    }
    /* Clicks the install's rules took out (injection, flooding) are nobody's journey, converting or not. */
    for (uint32_t i = 0; i < r->nrejected; i++) {
        if (idmap_at(&c->used, r->rejected[i].touch_id) == NULL) {
            c->rc = UMG_ENOMEM;
            return 1;
        }
    }
    double value = 1;
    if (c->value == UMG_MTA_REPORT_VALUE_REVENUE) {
        umg_store_device_t d;
        value = umg_store_device_get(c->tx, r->app, r->device_key, &d) == UMG_OK ? d.revenue : 0;
        if (!(value >= 0 && value <= UMG_MTA_REPORT_MAX_VALUE)) {
            value = 0; /* a revenue the report cannot take (not finite, over 1e12): counted as none */
        }
        /* A device's revenue counts once, for its latest conversion in the period (the attribution that holds
         * now; conversions come in install time order): an earlier one of the same device is valued 0. */
        uint64_t *at = idmap_at(&c->devs, r->device_key);
        if (at == NULL) {
            c->rc = UMG_ENOMEM;
            return 1;
        }
        if (*at != 0) {
            c->paths[*at - 1].value = 0;
        }
        *at = c->npaths + 1;
    }
    c->rc = push((void **)&c->paths, &c->npaths, &c->paths_cap, sizeof(jconv_t));
    if (c->rc != UMG_OK) {
        return 1;
    }
    c->paths[c->npaths - 1] = (jconv_t){c->nconv, r->ncontrib, value};
    for (uint32_t i = 0; i < r->ncontrib; i++) {
        uint64_t *u = idmap_at(&c->used, r->contrib[i].touch_id);
        c->rc = u == NULL ? UMG_ENOMEM : push((void **)&c->conv, &c->nconv, &c->conv_cap, sizeof(jtouch_t));
        if (c->rc != UMG_OK) {
            return 1;
        }
        uint32_t ch = c->by == UMG_MTA_REPORT_BY_CAMPAIGN ? r->contrib[i].campaign : r->contrib[i].source;
        c->conv[c->nconv - 1] = (jtouch_t){c->npaths, r->contrib[i].ts_us, ch, 0};
    }
    return 0;
}

static int mta_touch(void *ctx, const umg_attr_touch_t *t)
{
    mta_ctx_t *c = ctx;
    if (t->ts_us < c->from || t->ts_us >= c->to || (t->flags & UMG_ATTR_TF_FRAUD) ||
        idmap_get(&c->used, t->touch_id) != NULL) {
        return 0; /* a touch the rules rejected is no one's journey (docs/fraud.md) */
    }
    c->rc = push((void **)&c->free_touches, &c->nfree, &c->free_cap, sizeof(jtouch_t));
    if (c->rc != UMG_OK) {
        return 1;
    }
    uint64_t group = t->ids[0] ? t->ids[0] : t->fp.ip ? t->fp.ip ^ UINT64_C(0x5bd1e995) : ~t->touch_id;
    c->free_touches[c->nfree - 1] =
        (jtouch_t){group, t->ts_us, c->by == UMG_MTA_REPORT_BY_CAMPAIGN ? t->campaign : t->source, 0};
    return 0;
}

static int cmp_jtouch(const void *a, const void *b)
{
    const jtouch_t *x = a, *y = b;
    if (x->group != y->group) {
        return x->group < y->group ? -1 : 1;
    }
    return x->ts_us < y->ts_us ? -1 : x->ts_us > y->ts_us;
}

typedef struct chcount_s {
    uint32_t id;
    uint64_t touches;
} chcount_t;

static int cmp_chcount(const void *a, const void *b)
{
    const chcount_t *x = a, *y = b;
    if (x->touches != y->touches) {
        return x->touches > y->touches ? -1 : 1;
    }
    return x->id < y->id ? -1 : x->id > y->id;
}

/* The channel names: the most used MTA_MAX_CHANNELS - 1 keep theirs when there are more than MTA_MAX_CHANNELS. */
static int name_channels(mta_ctx_t *c, idmap_t *names, umg_slice_t *slices)
{
    idmap_t counts = {0};
    for (size_t i = 0; i < c->nconv + c->nfree; i++) {
        uint64_t *v = idmap_at(&counts, i < c->nconv ? c->conv[i].channel : c->free_touches[i - c->nconv].channel);
        if (v == NULL) {
            idmap_free(&counts);
            return UMG_ENOMEM;
        }
        (*v)++;
    }
    chcount_t *all = umg_malloc((counts.n ? counts.n : 1) * sizeof(chcount_t));
    if (all == NULL) {
        idmap_free(&counts);
        return UMG_ENOMEM;
    }
    size_t n = 0;
    for (size_t i = 0; i < counts.cap; i++) {
        if (counts.keys[i] != UINT64_MAX) {
            all[n++] = (chcount_t){(uint32_t)counts.keys[i], counts.vals[i]};
        }
    }
    idmap_free(&counts);
    qsort(all, n, sizeof(all[0]), cmp_chcount);
    size_t keep = n > MTA_MAX_CHANNELS ? MTA_MAX_CHANNELS - 1 : n;
    int rc = UMG_OK;
    for (size_t i = 0; i < keep && rc == UMG_OK; i++) {
        uint64_t *v = idmap_at(names, all[i].id);
        if (v == NULL) {
            rc = UMG_ENOMEM;
            break;
        }
        *v = i;
        if (umg_store_string(c->tx, all[i].id, &slices[i]) != UMG_OK || slices[i].len == 0) {
            slices[i] = umg_slice("(none)", 6);
        }
    }
    if (n > MTA_MAX_CHANNELS) {
        slices[MTA_MAX_CHANNELS - 1] = umg_slice("(other)", 7);
    }
    umg_free(all);
    return rc;
}

static umg_slice_t channel_name(const idmap_t *names, const umg_slice_t *slices, uint32_t id)
{
    const uint64_t *v = idmap_get(names, id);
    return slices[v ? *v : MTA_MAX_CHANNELS - 1];
}

/* Feeds the collected journeys to the report: converting ones, then the non-converting, the newest
 * UMG_MTA_REPORT_MAX_TOUCHES touches of each device. */
static int mta_feed(mta_ctx_t *c, umg_mta_report_t *rep)
{
    idmap_t names = {0};
    umg_slice_t slices[MTA_MAX_CHANNELS];
    int rc = name_channels(c, &names, slices);
    umg_slice_t ch[UMG_MTA_REPORT_MAX_TOUCHES];
    int64_t ts[UMG_MTA_REPORT_MAX_TOUCHES];
    for (size_t i = 0; i < c->npaths && rc == UMG_OK; i++) {
        const jconv_t *p = &c->paths[i];
        for (uint32_t k = 0; k < p->n; k++) {
            ch[k] = channel_name(&names, slices, c->conv[p->start + k].channel);
            ts[k] = c->conv[p->start + k].ts_us;
        }
        rc = umg_mta_report_add(rep, ch, ts, p->n, 1, p->value);
    }
    if (rc == UMG_OK && c->nfree > 0) {
        qsort(c->free_touches, c->nfree, sizeof(jtouch_t), cmp_jtouch);
    }
    for (size_t i = 0; i < c->nfree && rc == UMG_OK;) {
        size_t j = i;
        while (j < c->nfree && c->free_touches[j].group == c->free_touches[i].group) {
            j++;
        }
        size_t from = j - i > UMG_MTA_REPORT_MAX_TOUCHES ? j - UMG_MTA_REPORT_MAX_TOUCHES : i;
        uint32_t n = 0;
        for (size_t k = from; k < j; k++, n++) {
            ch[n] = channel_name(&names, slices, c->free_touches[k].channel);
            ts[n] = c->free_touches[k].ts_us;
        }
        rc = umg_mta_report_add(rep, ch, ts, n, 0, 0);
        i = j;
    }
    idmap_free(&names);
    return rc;
}

/*
 * Reports are computed on a worker thread of their own (a million journeys
 * take up to a second), never on an event loop: the handler checks the
 * request, defers it and queues a job; the worker resumes it with the answer.
 */
#define REPORT_QUEUE_MAX 16

/* A queued report: fn computes the answer on the worker; free_fn releases data on the loop thread. */
typedef struct report_job_s {
    struct report_job_s *next;
    umg_http_defer_t *defer;
    umg_attr_job_fn fn;
    void (*free_fn)(void *data);
    void *data;
    umg_attr_answer_t ans;
} report_job_t;

/* The MTA report's job data. */
typedef struct mta_job_s {
    umg_store_t *store;
    umg_app_t app;
    umg_mta_model_t model;
    mta_ctx_t c;
} mta_job_t;

struct umg_attr_worker_s {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    report_job_t *head, *tail;
    size_t queued;
    int stopping;
};

static void mta_compute(void *data, umg_attr_answer_t *ans)
{
    mta_job_t *j = data;
    mta_ctx_t *c = &j->c;
    umg_mta_report_t *rep = NULL;
    int rc = umg_mta_report_new(j->model, NULL, &rep);
    rc = rc ? rc : umg_store_begin(j->store, 0, &c->tx);
    if (rc == UMG_OK) {
        rc = umg_store_decisions_scan(c->tx, j->app.id, c->from, c->to, NULL, mta_conversion, c);
        rc = rc == 1 ? c->rc : rc;
        if (rc == UMG_OK) {
            rc = umg_store_touches_scan(c->tx, j->app.id, mta_touch, c);
            rc = rc == 1 ? c->rc : rc;
        }
        rc = rc ? rc : mta_feed(c, rep);
    }
    umg_buf_t *o = &ans->body;
    if (rc == UMG_OK) {
        rc = umg_buf_printf(o, "{\"app\":\"%s\",\"by\":\"%s\",\"value\":\"%s\"", j->app.public_id,
                            umg_mta_report_by_name(c->by), umg_mta_report_value_name(c->value));
        if (rc == UMG_OK && c->from > INT64_MIN / 2) {
            rc = put_time(o, "from", c->from);
        }
        if (rc == UMG_OK && c->to < INT64_MAX / 2) {
            rc = put_time(o, "to", c->to);
        }
        rc = rc ? rc : umg_buf_printf(o, ",\"report\":");
        rc = rc ? rc : umg_mta_report_json(rep, o);
        rc = rc ? rc : umg_buf_putc(o, '}');
    }
    if (c->tx != NULL) {
        umg_store_abort(c->tx);
        c->tx = NULL;
    }
    umg_mta_report_free(rep);
    idmap_free(&c->used);
    idmap_free(&c->devs);
    umg_free(c->conv);
    umg_free(c->paths);
    umg_free(c->free_touches);
    c->conv = NULL;
    c->paths = NULL;
    c->free_touches = NULL;
    ans->status = rc == UMG_OK ? 200 : rc == UMG_ERANGE ? 422 : 503;
    ans->content_type = "application/json";
    ans->code = rc == UMG_ENOMEM ? "out_of_memory" : rc == UMG_ERANGE ? "too_large" : "store_unavailable";
    if (rc == UMG_ERANGE) {
        ans->field = "value";
        ans->message = "the period's revenue is too large to split exactly (over 2^53 in the currency's smallest "
                       "units); ask for a shorter period or value=installs";
    }
}

static void report_answer(umg_http_req_t *req, void *data)
{
    report_job_t *j = data;
    umg_attr_answer_t *a = &j->ans;
    if (req != NULL) {
        if (a->status == 200) {
            umg_http_respond(req, 200, a->content_type, a->body.ptr, a->body.len, NULL);
        } else {
            umg_http_error(req, a->status, a->code, a->field,
                           a->message != NULL ? a->message : "the report could not be computed; retry");
        }
    }
    if (j->free_fn != NULL) {
        j->free_fn(j->data);
    }
    umg_buf_free(&a->body);
    umg_free(j);
}

static void *report_worker(void *arg)
{
    umg_attr_worker_t *w = arg;
    umg_thread_name("umg-report");
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->head == NULL && !w->stopping) {
            pthread_cond_wait(&w->cv, &w->mu);
        }
        report_job_t *j = w->head;
        if (j == NULL) {
            break; /* stopping, nothing left */
        }
        w->head = j->next;
        if (w->head == NULL) {
            w->tail = NULL;
        }
        w->queued--;
        int stopping = w->stopping;
        pthread_mutex_unlock(&w->mu);
        if (stopping) {
            j->ans.status = 503; /* shutting down: answer what is queued without computing it */
            j->ans.code = "shutting_down";
        } else {
            j->fn(j->data, &j->ans);
        }
        umg_http_resume(j->defer, report_answer, j);
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int umg_attr_worker_start(umg_attr_worker_t **out)
{
    umg_attr_worker_t *w = umg_calloc(1, sizeof(*w));
    if (w == NULL) {
        return UMG_ENOMEM;
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->thread, NULL, report_worker, w) != 0) {
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        umg_free(w);
        return UMG_ENOMEM;
    }
    *out = w;
    return UMG_OK;
}

void umg_attr_worker_stop(umg_attr_worker_t *w)
{
    if (w == NULL) {
        return;
    }
    pthread_mutex_lock(&w->mu);
    w->stopping = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
}

void umg_attr_worker_free(umg_attr_worker_t *w)
{
    if (w == NULL) {
        return;
    }
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    umg_free(w);
}

void umg_attr_ep_report_mta(umg_http_req_t *req, void *thread_data)
{
    umg_ingest_t *ing = umg__ingest_of(thread_data);
    umg_principal_t who;
    umg_app_t app;
    if (umg_attr_ep_app_for(ing, req, 0, UMG_PERM_REPORTS_READ, &app, &who) != 0) {
        return;
    }
    if (ing->attr_worker == NULL) {
        umg_http_error(req, 503, "not_ready", NULL, "reports are not available yet; retry shortly");
        return;
    }
    mta_ctx_t c = {.app = app.id};
    if (period(req, &c.from, &c.to) != 0) {
        return;
    }
    umg_slice_t v;
    umg_mta_model_t model = UMG_MTA_LAST;
    if (umg_http_query_param(req, "model", &v) == UMG_OK && v.len > 0 && umg_mta_model_parse(v, &model) != UMG_OK) {
        umg_http_error(req, 400, "invalid_value", "model",
                       "model must be first, last, linear, time_decay, position, markov or shapley");
        return;
    }
    c.by = UMG_MTA_REPORT_BY_SOURCE;
    if (umg_http_query_param(req, "by", &v) == UMG_OK && v.len > 0 && umg_mta_report_parse_by(v, &c.by) != UMG_OK) {
        umg_http_error(req, 400, "invalid_value", "by", "by must be source or campaign");
        return;
    }
    c.value = UMG_MTA_REPORT_VALUE_INSTALLS;
    if (umg_http_query_param(req, "value", &v) == UMG_OK && v.len > 0 &&
        umg_mta_report_parse_value(v, &c.value) != UMG_OK) {
        umg_http_error(req, 400, "invalid_value", "value", "value must be installs or revenue");
        return;
    }
    mta_job_t *j = umg_calloc(1, sizeof(*j));
    if (j == NULL) {
        umg_http_error(req, 503, "out_of_memory", NULL, "out of memory; retry");
        return;
    }
    j->store = ing->store;
    j->app = app;
    j->model = model;
    j->c = c;
    umg_attr_worker_submit(ing->attr_worker, req, mta_compute, umg_free, j);
}

void umg_attr_worker_submit(umg_attr_worker_t *w, umg_http_req_t *req, umg_attr_job_fn fn, void (*free_fn)(void *),
                            void *data)
{
    report_job_t *j = umg_calloc(1, sizeof(*j));
    if (j == NULL) {
        if (free_fn != NULL) {
            free_fn(data);
        }
        umg_http_error(req, 503, "out_of_memory", NULL, "out of memory; retry");
        return;
    }
    j->fn = fn;
    j->free_fn = free_fn;
    j->data = data;
    pthread_mutex_lock(&w->mu);
    int stopping = w->stopping, full = w->queued >= REPORT_QUEUE_MAX || stopping;
    if (!full) {
        j->defer = umg_http_defer(req);
        if (w->tail != NULL) {
            w->tail->next = j;
        } else {
            w->head = j;
        }
        w->tail = j;
        w->queued++;
        pthread_cond_signal(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    if (full) {
        if (free_fn != NULL) {
            free_fn(data);
        }
        umg_free(j);
        umg_http_error(req, 503, stopping ? "shutting_down" : "overloaded", NULL,
                       stopping ? "the server is stopping" : "too many reports are being computed; retry shortly");
    }
}
