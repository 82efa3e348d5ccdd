/*
 * fraud_report.c - GET /v1/reports/fraud (docs/fraud.md "Report"): rejected
 * and flagged clicks, installs and events by rule and by the attribution's
 * dimensions, with rejection rates, the click-to-install histogram per
 * source and the model's score distribution, from the fraud rollups.
 */
#include "umg_query.h"

#include "umg_fraud.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Grouping dimensions: the rollup's seven, the day and the rule. */
enum { FD_DAY = UMG_RD_N, FD_REASON, FD_N };
static const char *const fd_names[FD_N] = {"source",  "campaign", "adset", "ad",    "site",
                                           "country", "platform", "day",   "reason"};

/* Counters of a row. */
enum {
    FV_CLICKS = 0, /* accepted clicks (the overview's) */
    FV_INSTALLS,   /* installs not rejected, attributed or organic */
    FV_REJ_CLICKS,
    FV_REJ_IMPRESSIONS,
    FV_REJ_INSTALLS,
    FV_REJ_EVENTS,
    FV_FLAG_CLICKS,
    FV_FLAG_INSTALLS,
    FV_FLAG_EVENTS,
    FV_N
};
static const char *const fv_names[FV_N] = {
    "clicks",          "installs",       "rejected_clicks",  "rejected_impressions", "rejected_installs",
    "rejected_events", "flagged_clicks", "flagged_installs", "flagged_events"};

struct umg_fraud_report_s {
    int32_t from, to;
    int csv;
    int group[FD_N]; /* 1: grouped by */
    int ng;
    int order[FD_N]; /* the grouped dimensions in the order asked */
};

typedef struct frow_s {
    uint32_t k[FD_N];
    int64_t v[FV_N];
    uint32_t used;
} frow_t;

typedef struct fmap_s {
    frow_t *t;
    size_t cap, n;
} fmap_t;

int umg_fraud_report_parse(const umg_fraud_report_params_t *p, umg_fraud_report_t **out, umg_query_error_t *err)
{
    umg_fraud_report_t *r = umg_calloc(1, sizeof(*r));
    if (r == NULL) {
        return UMG_ENOMEM;
    }
    int rc = umg_query_parse_period(p->from, p->to, &r->from, &r->to, err);
    if (rc != UMG_OK) {
        umg_free(r);
        return rc;
    }
    umg_slice_t g = p->group_by.len ? p->group_by : UMG_SLICE("source,reason");
    for (size_t at = 0; at <= g.len;) {
        size_t e = at;
        while (e < g.len && g.ptr[e] != ',') {
            e++;
        }
        umg_slice_t name = umg_slice(g.ptr + at, e - at);
        int d = -1;
        for (int i = 0; i < FD_N && d < 0; i++) {
            d = umg_slice_eq(name, fd_names[i]) ? i : -1;
        }
        if (d < 0 || r->group[d]) {
            err->code = "invalid_value";
            err->field = "group_by";
            snprintf(err->message, sizeof(err->message),
                     "%s \"%.*s\": group_by takes source, campaign, adset, ad, site, country, platform, day and "
                     "reason, each once",
                     d < 0 ? "unknown dimension" : "repeated dimension", (int)UMG_MIN(name.len, 64), name.ptr);
            umg_free(r);
            return UMG_EINVAL;
        }
        r->group[d] = 1;
        r->order[r->ng++] = d;
        at = e + 1;
    }
    if (p->format.len && !umg_slice_eq(p->format, "json") && !umg_slice_eq(p->format, "csv")) {
        err->code = "invalid_value";
        err->field = "format";
        snprintf(err->message, sizeof(err->message), "format must be json or csv");
        umg_free(r);
        return UMG_EINVAL;
    }
    r->csv = umg_slice_eq(p->format, "csv");
    *out = r;
    return UMG_OK;
}

void umg_fraud_report_free(umg_fraud_report_t *r)
{
    umg_free(r);
}

int umg_fraud_report_is_csv(const umg_fraud_report_t *r)
{
    return r->csv;
}

static uint64_t fhash(const uint32_t *k)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (int i = 0; i < FD_N; i++) {
        h = (h ^ k[i]) * UINT64_C(0x100000001b3);
        h ^= h >> 29;
    }
    return h;
}

static frow_t *fmap_get(fmap_t *m, const uint32_t *k)
{
    if ((m->n + 1) * 4 > m->cap * 3) {
        size_t cap = m->cap ? m->cap * 2 : 256;
        frow_t *t = umg_calloc(cap, sizeof(*t));
        if (t == NULL) {
            return NULL;
        }
        for (size_t i = 0; i < m->cap; i++) {
            if (m->t[i].used) {
                size_t j = (size_t)fhash(m->t[i].k) & (cap - 1);
                while (t[j].used) {
                    j = (j + 1) & (cap - 1);
                }
                t[j] = m->t[i];
            }
        }
        umg_free(m->t);
        m->t = t;
        m->cap = cap;
    }
    size_t j = (size_t)fhash(k) & (m->cap - 1);
    while (m->t[j].used && memcmp(m->t[j].k, k, sizeof(m->t[j].k)) != 0) {
        j = (j + 1) & (m->cap - 1);
    }
    if (!m->t[j].used) {
        memcpy(m->t[j].k, k, sizeof(m->t[j].k));
        m->t[j].used = 1;
        m->n++;
    }
    return &m->t[j];
}

/* The row of a rollup row (NULL: out of the period; *oom on allocation failure). */
static frow_t *row_of(const umg_fraud_report_t *r, fmap_t *m, const umg_rollup_view_t *v, size_t i, uint32_t reason,
                      int *oom)
{
    if (v->day[i] < r->from || v->day[i] > r->to) {
        return NULL;
    }
    uint32_t k[FD_N] = {0};
    for (int d = 0; d < UMG_RD_N; d++) {
        k[d] = r->group[d] ? v->dim[d][i] : 0;
    }
    k[FD_DAY] = r->group[FD_DAY] ? (uint32_t)v->day[i] : 0;
    k[FD_REASON] = r->group[FD_REASON] ? reason : 0;
    frow_t *row = fmap_get(m, k);
    *oom |= row == NULL;
    return row;
}

static int put_dim(const umg_fraud_report_input_t *in, int d, uint32_t v, umg_buf_t *o, int csv)
{
    char day[11];
    umg_slice_t s = UMG_SLICE("");
    if (d == FD_DAY) {
        umg_date_format((int32_t)v, day);
        s = umg_slice(day, 10);
    } else if (d == FD_REASON) {
        const char *n = umg_fraud_reason_name(v);
        s = umg_slice(n, strlen(n));
    } else if (v != 0) {
        int rc = in->string(in->ctx, v, &s);
        if (rc != UMG_OK) {
            return rc;
        }
    }
    if (csv) {
        return umg_buf_csv_field(o, s);
    }
    int rc = umg_buf_printf(o, "\"%s\":", fd_names[d]);
    return rc ? rc : umg_buf_json_str(o, s.ptr, s.len);
}

static int put_counters(umg_buf_t *o, const int64_t *v, int csv)
{
    int rc = UMG_OK;
    for (int i = 0; i < FV_N && rc == UMG_OK; i++) {
        rc = csv ? umg_buf_printf(o, "%s%lld", i ? "," : "", (long long)v[i])
                 : umg_buf_printf(o, ",\"%s\":%lld", fv_names[i], (long long)v[i]);
    }
    int64_t cl = v[FV_CLICKS] + v[FV_REJ_CLICKS], in = v[FV_INSTALLS] + v[FV_REJ_INSTALLS];
    double rates[2] = {cl ? (double)v[FV_REJ_CLICKS] / (double)cl : -1,
                       in ? (double)v[FV_REJ_INSTALLS] / (double)in : -1};
    static const char *const names[2] = {"click_rejection_rate", "install_rejection_rate"};
    for (int i = 0; i < 2 && rc == UMG_OK; i++) {
        if (csv) {
            rc = rates[i] < 0 ? umg_buf_putc(o, ',') : umg_buf_printf(o, ",%.6f", rates[i]);
        } else {
            rc = rates[i] < 0 ? umg_buf_printf(o, ",\"%s\":null", names[i])
                              : umg_buf_printf(o, ",\"%s\":%.6f", names[i], rates[i]);
        }
    }
    return rc;
}

static int row_cmp(const void *a, const void *b)
{
    const frow_t *x = *(const frow_t *const *)a, *y = *(const frow_t *const *)b;
    if (x->v[FV_REJ_INSTALLS] != y->v[FV_REJ_INSTALLS]) {
        return x->v[FV_REJ_INSTALLS] > y->v[FV_REJ_INSTALLS] ? -1 : 1;
    }
    if (x->v[FV_REJ_CLICKS] != y->v[FV_REJ_CLICKS]) {
        return x->v[FV_REJ_CLICKS] > y->v[FV_REJ_CLICKS] ? -1 : 1;
    }
    return memcmp(x->k, y->k, sizeof(x->k));
}

int umg_fraud_report_run(const umg_fraud_report_t *r, const umg_fraud_report_input_t *in, umg_buf_t *out)
{
    fmap_t m = {0}, base = {0}, hist = {0};
    int oom = 0, rc = UMG_OK;
    /* accepted clicks and installs (the rule 0) */
    const umg_rollup_view_t *mv = in->main;
    for (size_t i = 0; i < mv->n; i++) {
        frow_t *row = row_of(r, &m, mv, i, 0, &oom);
        if (row != NULL) {
            row->v[FV_CLICKS] += mv->v[UMG_RM_CLICKS][i];
            row->v[FV_INSTALLS] += mv->v[UMG_RM_INSTALLS][i] + mv->v[UMG_RM_ORGANIC_INSTALLS][i];
        }
    }
    const umg_rollup_view_t *fv = in->fraud;
    for (size_t i = 0; i < fv->n; i++) {
        frow_t *row = row_of(r, &m, fv, i, fv->x[0][i], &oom);
        uint32_t kind = fv->x[1][i];
        if (row == NULL || kind > UMG_RF_EVENT) {
            continue;
        }
        static const int rej[] = {FV_REJ_CLICKS, FV_REJ_IMPRESSIONS, FV_REJ_INSTALLS, FV_REJ_EVENTS};
        static const int flag[] = {FV_FLAG_CLICKS, -1, FV_FLAG_INSTALLS, FV_FLAG_EVENTS};
        row->v[rej[kind]] += fv->v[0][i];
        if (flag[kind] >= 0) {
            row->v[flag[kind]] += fv->v[1][i];
        }
    }
    /* grouped by rule: each row's clicks and installs are its group's, whatever the rule */
    if (r->group[FD_REASON]) {
        for (size_t i = 0; i < m.cap && !oom; i++) {
            if (m.t[i].used && m.t[i].k[FD_REASON] == 0) {
                frow_t *b = fmap_get(&base, m.t[i].k);
                oom |= b == NULL;
                if (b != NULL) {
                    b->v[FV_CLICKS] = m.t[i].v[FV_CLICKS];
                    b->v[FV_INSTALLS] = m.t[i].v[FV_INSTALLS];
                }
            }
        }
    }
    /* the click-to-install histogram of the click that would have won, per source */
    const umg_rollup_view_t *cv = in->ctit;
    for (size_t i = 0; i < cv->n && !oom; i++) {
        if (cv->day[i] < r->from || cv->day[i] > r->to) {
            continue;
        }
        uint32_t k[FD_N] = {0};
        k[UMG_RD_SOURCE] = cv->dim[UMG_RD_SOURCE][i];
        frow_t *h = fmap_get(&hist, k);
        oom |= h == NULL;
        for (int b = 0; h != NULL && b < UMG_FRAUD_CTIT_BUCKETS; b++) {
            h->v[b] += cv->v[b][i];
        }
    }
    int64_t deciles[UMG_FRAUD_SCORE_BUCKETS] = {0}, summary[4] = {0};
    const umg_rollup_view_t *sv = in->score;
    for (size_t i = 0; i < sv->n; i++) {
        if (sv->day[i] < r->from || sv->day[i] > r->to) {
            continue;
        }
        for (int b = 0; b < (sv->x[0][i] == 0 ? UMG_FRAUD_SCORE_BUCKETS : 4); b++) {
            (sv->x[0][i] == 0 ? deciles : summary)[b] += sv->v[b][i];
        }
    }
    /* the rows, most rejected installs first */
    frow_t **rows = umg_calloc(m.n + 1, sizeof(*rows));
    size_t n = 0;
    int64_t tot[FV_N] = {0};
    for (size_t i = 0; rows != NULL && i < m.cap; i++) {
        frow_t *row = &m.t[i];
        if (!row->used) {
            continue;
        }
        int64_t any = 0;
        for (int k = 0; k < FV_N; k++) {
            tot[k] += row->v[k];
            any |= row->v[k];
        }
        if (any == 0) { /* sessions or events only */
            continue;
        }
        if (r->group[FD_REASON]) {
            if (row->k[FD_REASON] == 0) {
                continue;
            }
            uint32_t bk[FD_N];
            memcpy(bk, row->k, sizeof(bk));
            bk[FD_REASON] = 0;
            frow_t *b = fmap_get(&base, bk);
            oom |= b == NULL;
            if (b != NULL) {
                row->v[FV_CLICKS] = b->v[FV_CLICKS];
                row->v[FV_INSTALLS] = b->v[FV_INSTALLS];
            }
        }
        rows[n++] = row;
    }
    if (rows == NULL || oom) {
        rc = UMG_ENOMEM;
        goto done;
    }
    qsort(rows, n, sizeof(*rows), row_cmp);
    char f[11], t[11];
    umg_date_format(r->from, f);
    umg_date_format(r->to, t);
    if (r->csv) {
        for (int g = 0; g < r->ng && rc == UMG_OK; g++) {
            rc = umg_buf_printf(out, "%s,", fd_names[r->order[g]]);
        }
        for (int k = 0; k < FV_N && rc == UMG_OK; k++) {
            rc = umg_buf_printf(out, "%s,", fv_names[k]);
        }
        rc = rc ? rc : umg_buf_printf(out, "click_rejection_rate,install_rejection_rate\r\n");
        for (size_t i = 0; i < n && rc == UMG_OK; i++) {
            for (int g = 0; g < r->ng && rc == UMG_OK; g++) {
                rc = put_dim(in, r->order[g], rows[i]->k[r->order[g]], out, 1);
                rc = rc ? rc : umg_buf_putc(out, ',');
            }
            rc = rc ? rc : put_counters(out, rows[i]->v, 1);
            rc = rc ? rc : umg_buf_printf(out, "\r\n");
        }
        for (int g = 0; g < r->ng && rc == UMG_OK; g++) {
            rc = umg_buf_printf(out, "%s,", g == 0 ? "total" : "");
        }
        rc = rc ? rc : put_counters(out, tot, 1);
        rc = rc ? rc : umg_buf_printf(out, "\r\n");
        goto done;
    }
    rc = umg_buf_printf(out, "{\"app\":\"%s\",\"from\":\"%s\",\"to\":\"%s\",\"group_by\":[", in->app, f, t);
    for (int g = 0; g < r->ng && rc == UMG_OK; g++) {
        rc = umg_buf_printf(out, "%s\"%s\"", g ? "," : "", fd_names[r->order[g]]);
    }
    rc = rc ? rc : umg_buf_printf(out, "],\"rows\":[");
    for (size_t i = 0; i < n && rc == UMG_OK; i++) {
        rc = umg_buf_printf(out, "%s{", i ? "," : "");
        for (int g = 0; g < r->ng && rc == UMG_OK; g++) {
            rc = g ? umg_buf_putc(out, ',') : UMG_OK;
            rc = rc ? rc : put_dim(in, r->order[g], rows[i]->k[r->order[g]], out, 0);
        }
        size_t at = out->len;
        rc = rc ? rc : put_counters(out, rows[i]->v, 0);
        if (rc == UMG_OK && r->ng == 0) {
            memmove(out->ptr + at, out->ptr + at + 1, out->len - at - 1); /* no leading comma */
            out->len--;
        }
        rc = rc ? rc : umg_buf_putc(out, '}');
    }
    rc = rc ? rc : umg_buf_printf(out, "],\"totals\":{");
    size_t at = out->len;
    rc = rc ? rc : put_counters(out, tot, 0);
    if (rc == UMG_OK) {
        memmove(out->ptr + at, out->ptr + at + 1, out->len - at - 1);
        out->len--;
    }
    rc = rc ? rc : umg_buf_printf(out, "},\"ctit\":{\"bounds_s\":[");
    for (int b = 0; b + 1 < UMG_FRAUD_CTIT_BUCKETS && rc == UMG_OK; b++) {
        rc = umg_buf_printf(out, "%s%lld", b ? "," : "", (long long)umg_fraud_ctit_bounds_s[b]);
    }
    rc = rc ? rc : umg_buf_printf(out, "],\"rows\":[");
    for (size_t i = 0, k = 0; i < hist.cap && rc == UMG_OK; i++) {
        if (!hist.t[i].used) {
            continue;
        }
        rc = umg_buf_printf(out, "%s{", k++ ? "," : "");
        rc = rc ? rc : put_dim(in, UMG_RD_SOURCE, hist.t[i].k[UMG_RD_SOURCE], out, 0);
        rc = rc ? rc : umg_buf_printf(out, ",\"counts\":[");
        for (int b = 0; b < UMG_FRAUD_CTIT_BUCKETS && rc == UMG_OK; b++) {
            rc = umg_buf_printf(out, "%s%lld", b ? "," : "", (long long)hist.t[i].v[b]);
        }
        rc = rc ? rc : umg_buf_printf(out, "]}");
    }
    static const char *const modes[] = {"off", "shadow", "enforce"};
    rc = rc ? rc
            : umg_buf_printf(out, "]},\"model\":{\"mode\":\"%s\",\"threshold\":%g,\"bounds\":[",
                             modes[in->model_mode % 3], in->model_threshold);
    for (int b = 1; b < UMG_FRAUD_SCORE_BUCKETS && rc == UMG_OK; b++) {
        rc = umg_buf_printf(out, "%s%.1f", b > 1 ? "," : "", b / 10.0);
    }
    rc = rc ? rc : umg_buf_printf(out, "],\"counts\":[");
    for (int b = 0; b < UMG_FRAUD_SCORE_BUCKETS && rc == UMG_OK; b++) {
        rc = umg_buf_printf(out, "%s%lld", b ? "," : "", (long long)deciles[b]);
    }
    rc =
        rc ? rc
           : umg_buf_printf(out,
                            "],\"scored\":%lld,\"over_threshold\":%lld,\"over_and_rejected_by_rules\":%lld,"
                            "\"under_and_rejected_by_rules\":%lld}}\n",
                            (long long)summary[0], (long long)summary[1], (long long)summary[2], (long long)summary[3]);
done:
    umg_free(rows);
    umg_free(m.t);
    umg_free(base.t);
    umg_free(hist.t);
    return rc;
}
