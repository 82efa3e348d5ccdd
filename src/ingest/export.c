/*
 * export.c - GET /v1/export/events: the raw events of one app, as stored, one
 * JSON object per line in log order, filtered on event time. Streams from a
 * bus reader in chunks so an export of any size holds little memory; it stops
 * at the log's acknowledged end as of the request's start.
 */
#include "umg_admin.h"
#include "umg_ingest.h"
#include "umg_fraud.h"
#include "umg_privacy.h"
#include "umg_store.h"
#include "umg_touch.h"

#include <stdlib.h>

typedef struct export_s {
    const umg_bus_ops_t *ops;
    umg_bus_reader_t *reader;
    uint64_t lines;
    int kind;             /* UMG_BUS_KIND_EVENT or UMG_BUS_KIND_TOUCH */
    const umg_pii_t *pii; /* decrypts PII stored encrypted; NULL when none is */
    umg_event_decoder_t *dec;
    umg_touch_decoder_t *tdec;
    umg_arena_t arena;
    umg_store_t *store; /* for the fraud verdicts of touches; NULL: none */
    char app_public[24];
} export_t;

typedef struct decrypt_ctx_s {
    export_t *x;
    umg_buf_t *out;
} decrypt_ctx_t;

static int on_stored(void *ctx, size_t index, umg_event_t *ev, const umg_event_error_t *err)
{
    decrypt_ctx_t *c = ctx;
    (void)index;
    if (ev == NULL) {
        return UMG_EPARSE;
    }
    int rc = umg_pii_decrypt_event(c->x->pii, ev, &c->x->arena);
    if (rc == UMG_EAUTH) {
        umg_log(UMG_LOG_WARN, "export", "an encrypted field does not decrypt with any key; exported as stored");
    } else if (rc != UMG_OK) {
        return rc;
    }
    return umg_event_encode_json(ev, c->out);
}

typedef struct tdecrypt_ctx_s {
    export_t *x;
    umg_buf_t *out;
} tdecrypt_ctx_t;

static int on_stored_touch(void *ctx, size_t index, umg_touch_t *t, const umg_touch_error_t *err)
{
    tdecrypt_ctx_t *c = ctx;
    int stale = 0;
    (void)index;
    if (t == NULL) {
        return UMG_EPARSE;
    }
    int rc = umg_pii_decrypt_touch(c->x->pii, t, &c->x->arena, &stale);
    if (rc != UMG_OK && rc != UMG_EAUTH) {
        return rc;
    }
    return umg_touch_encode_json(t, c->out);
}

/* Appends a stored payload with its encrypted fields in the clear (as it was sent). */
static int append_decrypted(export_t *x, const umg_bus_msg_t *m, umg_buf_t *out)
{
    if (memmem(m->payload, m->len, "\"enc:v1:", 8) == NULL) {
        return umg_buf_append(out, m->payload, m->len);
    }
    if (m->kind == UMG_BUS_KIND_TOUCH) {
        umg_touch_limits_t tl = umg_touch_limits_stored(m->recv_us);
        tdecrypt_ctx_t c = {x, out};
        umg_touch_error_t err;
        size_t start = out->len;
        umg_arena_reset(&x->arena);
        if (x->tdec == NULL && umg_touch_decoder_new(1 << 20, &x->tdec) != UMG_OK) {
            return UMG_ENOMEM;
        }
        if (umg_touch_decode(x->tdec, m->payload, m->len, &tl, on_stored_touch, &c, &err) != UMG_OK) {
            out->len = start;
            return umg_buf_append(out, m->payload, m->len);
        }
        return UMG_OK;
    }
    size_t n;
    int batch;
    umg_event_limits_t lim = umg_event_limits_stored(m->recv_us);
    umg_arena_reset(&x->arena);
    decrypt_ctx_t c = {x, out};
    size_t start = out->len;
    int rc = umg_event_decoder_parse(x->dec, m->payload, m->len, 1, &n, &batch, NULL);
    rc = rc ? rc : umg_event_decoder_foreach(x->dec, &lim, on_stored, &c);
    if (rc != UMG_OK) {
        /* Undecryptable (a key removed too early): export it as stored rather than fail the export. */
        umg_log(UMG_LOG_WARN, "export", "record %llu: encrypted fields could not be decrypted (%s)",
                (unsigned long long)m->offset, umg_strerror(rc));
        out->len = start;
        return umg_buf_append(out, m->payload, m->len);
    }
    return UMG_OK;
}

/* A pull appends up to EXPORT_CHUNK bytes, for EXPORT_PULL_NS at most, and the reader passes over at most
 * EXPORT_SCAN records of other apps (or kinds, or times) before it returns: a sparse app's export in a large log
 * never holds its loop thread for long. */
#define EXPORT_CHUNK (256u << 10)
#define EXPORT_PULL_NS 2000000
#define EXPORT_SCAN 131072

int umg__ingest_time_param(umg_http_req_t *req, const char *name, int64_t *out, int *present)
{
    umg_slice_t v;
    int rc = umg_http_query_param(req, name, &v);
    *present = 0;
    if (rc == UMG_ENOENT) {
        return UMG_OK;
    }
    if (rc != UMG_OK || v.len == 0) {
        return UMG_EINVAL;
    }
    *present = 1;
    int digits = 1;
    for (size_t i = 0; i < v.len; i++) {
        if (v.ptr[i] < '0' || v.ptr[i] > '9') {
            digits = 0;
            break;
        }
    }
    if (digits) {
        if (v.len > 15) {
            return UMG_EINVAL;
        }
        *out = strtoll(v.ptr, NULL, 10) * 1000;
        return UMG_OK;
    }
    return umg_time_parse_rfc3339(v.ptr, v.len, out);
}

/* A touch the fraud rules rejected or flagged (the touch store says, once the pipeline applied it) gets
 * "fraud":{"status","reason"} as its last member. */
static int touch_fraud(umg_store_txn_t *tx, const umg_bus_msg_t *m, umg_buf_t *out)
{
    umg_attr_touch_t t;
    if (tx == NULL || out->len == 0 || out->ptr[out->len - 1] != '}' ||
        umg_store_touch_get(tx, m->offset, &t) != UMG_OK || t.reason == 0) {
        return UMG_OK;
    }
    out->len--;
    return umg_buf_printf(out, ",\"fraud\":{\"status\":\"%s\",\"reason\":\"%s\"}}",
                          t.flags & UMG_ATTR_TF_FRAUD ? "rejected" : "flagged", umg_fraud_reason_name(t.reason));
}

static int export_pull(void *data, umg_buf_t *out, int *done)
{
    export_t *x = data;
    umg_store_txn_t *tx = NULL;
    if (x->kind == UMG_BUS_KIND_TOUCH && x->store != NULL && umg_store_begin(x->store, 0, &tx) != UMG_OK) {
        tx = NULL;
    }
    int rc = UMG_OK;
    uint64_t t0 = umg_mono_ns();
    while (out->len < EXPORT_CHUNK) {
        umg_bus_msg_t m;
        rc = x->ops->reader_next(x->reader, &m);
        if (rc == UMG_EAGAIN) {
            *done = 1;
            rc = UMG_OK;
            break;
        }
        if (rc == UMG_EBUSY) {
            /* EXPORT_SCAN records passed over: what is ready goes now, else the loop serves others first */
            rc = out->len > 0 ? UMG_OK : UMG_EBUSY;
            break;
        }
        if (rc != UMG_OK) {
            break;
        }
        rc = x->pii ? append_decrypted(x, &m, out) : umg_buf_append(out, m.payload, m.len);
        rc = rc ? rc : x->kind == UMG_BUS_KIND_TOUCH ? touch_fraud(tx, &m, out) : UMG_OK;
        rc = rc ? rc : umg_buf_putc(out, '\n');
        if (rc != UMG_OK) {
            break;
        }
        x->lines++;
        if (umg_mono_ns() - t0 > EXPORT_PULL_NS) {
            break; /* a sparse app: each record may have cost up to EXPORT_SCAN passed over */
        }
    }
    if (tx != NULL) {
        umg_store_abort(tx);
    }
    return rc;
}

static void export_fini(void *data)
{
    export_t *x = data;
    if (x->reader != NULL) {
        x->ops->reader_close(x->reader);
    }
    umg_event_decoder_free(x->dec);
    umg_touch_decoder_free(x->tdec);
    umg_arena_free(&x->arena);
    umg_free(x);
}

/* The export's audit record is written: it starts (req NULL: refused, or the client went away). */
static void export_audited(umg_http_req_t *req, void *data)
{
    export_t *x = data;
    if (req == NULL) {
        export_fini(x);
    } else if (x->reader == NULL) {
        export_fini(x);
        umg_http_respond(req, 200, "application/x-ndjson", "", 0, NULL);
    } else {
        umg_log(UMG_LOG_INFO, "export", "raw export of app %s started (request %s)", x->app_public,
                umg_http_request_id(req));
        umg_http_stream(req, 200, "application/x-ndjson", export_pull, export_fini, x);
    }
}

static void export_kind(umg_http_req_t *req, void *thread_data, int kind);

void umg_ingest_export(umg_http_req_t *req, void *thread_data)
{
    export_kind(req, thread_data, UMG_BUS_KIND_EVENT);
}

void umg_ingest_export_touches(umg_http_req_t *req, void *thread_data)
{
    export_kind(req, thread_data, UMG_BUS_KIND_TOUCH);
}

static void export_kind(umg_http_req_t *req, void *thread_data, int kind)
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
    umg_slice_t app_param;
    if (umg_http_query_param(req, "app", &app_param) != UMG_OK || app_param.len == 0) {
        umg_http_error(req, 400, "required", "app", "the query parameter app (the app id) is required");
        return;
    }
    umg_app_t app;
    int found = umg_apps_find_id(ing->apps, app_param, &app) == UMG_OK;
    if (!found || !umg_principal_can(&who, UMG_PERM_EXPORT_RAW, &app)) {
        if (found && umg_principal_can(&who, UMG_PERM_APPS_READ, &app)) {
            umg_http_error(req, 403, "forbidden", "app", "this needs the export:raw permission on this app");
        } else {
            /* Another tenant's app, or one the caller may not see: the same answer as no app at all. */
            umg_http_error(req, 404, "not_found", "app", "no such app, or no access to it");
        }
        return;
    }
    int64_t from = 0, to = 0;
    int has_from, has_to;
    if (umg__ingest_time_param(req, "from", &from, &has_from) != UMG_OK) {
        umg_http_error(req, 400, "invalid_value", "from", "from must be Unix milliseconds or an RFC 3339 time");
        return;
    }
    if (umg__ingest_time_param(req, "to", &to, &has_to) != UMG_OK) {
        umg_http_error(req, 400, "invalid_value", "to", "to must be Unix milliseconds or an RFC 3339 time");
        return;
    }
    if (has_from && has_to && to <= from) {
        umg_http_error(req, 400, "invalid_value", "to", "to must be later than from");
        return;
    }
    export_t *x = umg_calloc(1, sizeof(*x));
    if (x == NULL) {
        umg_http_error(req, 503, "out_of_memory", NULL, "out of memory");
        return;
    }
    x->ops = ing->bus_ops;
    x->kind = kind;
    x->store = ing->store;
    if (ing->pii != NULL) {
        x->pii = ing->pii;
        umg_arena_init(&x->arena, 8192);
        if (umg_event_decoder_new(1 << 20, &x->dec) != UMG_OK) {
            umg_free(x);
            umg_http_error(req, 503, "out_of_memory", NULL, "out of memory");
            return;
        }
    }
    memcpy(x->app_public, app.public_id, sizeof(x->app_public));
    umg_bus_stats_t st;
    x->ops->stats(ing->bus, &st);
    /* Nothing stored yet, or a `to` at or before 1970 (nothing is dated so; the reader takes a bound of 0 for
     * none): an empty export (to_offset 0 would mean "follow"). */
    if (st.durable_offset > 0 && !(has_to && to <= 0)) {
        umg_bus_read_opts_t o = {.partition = -1,
                                 .from_offset = 0,
                                 .to_offset = st.durable_offset,
                                 .app = app.id,
                                 .kind = kind,
                                 .scan_max = EXPORT_SCAN,
                                 .event_from_us = has_from ? from : 0,
                                 .event_to_us = has_to ? to : 0};
        if (has_from && !has_to) {
            o.event_to_us = INT64_MAX / 2;
        }
        if (!has_from && has_to) {
            o.event_from_us = 1;
        }
        if (x->ops->reader_open(ing->bus, &o, &x->reader) != UMG_OK) {
            export_fini(x);
            umg_http_error(req, 503, "log_unavailable", NULL, "cannot read the event log");
            return;
        }
    }
    if (ing->admin == NULL) {
        export_audited(req, x);
        return;
    }
    /* Nothing leaves before its audit record is written. */
    char detail[160];
    snprintf(detail, sizeof(detail), "{\"from_us\":%lld,\"to_us\":%lld}", (long long)(has_from ? from : 0),
             (long long)(has_to ? to : 0));
    umg_audit_t rec = {.org_id = app.org,
                       .actor = who.id,
                       .action = kind == UMG_BUS_KIND_TOUCH ? "export.touches" : "export.raw",
                       .target = app.public_id,
                       .outcome = "ok",
                       .ip = umg_http_client_ip(req),
                       .request_id = umg_http_request_id(req),
                       .detail = detail};
    umg_admin_audit_then(ing->admin, &rec, req, export_audited, x);
}
