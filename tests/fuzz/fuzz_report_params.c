/*
 * fuzz_report_params.c - the parsers of the report endpoints' query
 * parameters, fed arbitrary values: overview and cohorts (umg_query_parse:
 * group_by, metrics, credit, the filter language, sort, limit), activity, funnel
 * steps and windows, the fraud report, the shared from/to period, dates, MTA
 * models and options, and fraud reason names. The input is cut at 0x01 bytes
 * into the parameters in the order of each params struct; a piece that is
 * the single byte 0x02 is an absent parameter, and missing pieces are absent
 * too. A refusal must name its code and parameter with a terminated message;
 * an accepted query is freed. Nothing may crash, leak or read outside the
 * values.
 *
 *   build: meson setup build-fuzz -Dfuzz=true (clang); run on a copy of the
 *   seeds (libFuzzer writes into its corpus directory):
 *   cp -r tests/fuzz/corpus/report_params /tmp/rp && build-fuzz/tests/fuzz/fuzz_report_params /tmp/rp
 */
#include <stdlib.h>
#include <string.h>

#include "umg_attr.h"
#include "umg_fraud.h"
#include "umg_query.h"
#include "umg_report.h"

#define MAXP 12

/* The values, each copied into a buffer of its own size so that a read past one is caught. */
typedef struct pieces_s {
    umg_slice_t v[MAXP];
    char *own[MAXP];
} pieces_t;

static void cut(pieces_t *p, const uint8_t *data, size_t size)
{
    memset(p, 0, sizeof(*p));
    size_t at = 0;
    for (int i = 0; i < MAXP && at <= size; i++) {
        const uint8_t *end = memchr(data + at, 0x01, size - at);
        size_t n = end != NULL ? (size_t)(end - (data + at)) : size - at;
        if (!(n == 1 && data[at] == 0x02)) {
            p->own[i] = malloc(n ? n : 1);
            if (p->own[i] != NULL) {
                memcpy(p->own[i], data + at, n);
                p->v[i] = umg_slice(p->own[i], n);
            }
        }
        if (end == NULL) {
            break;
        }
        at += n + 1;
    }
}

static void uncut(pieces_t *p)
{
    for (int i = 0; i < MAXP; i++) {
        free(p->own[i]);
    }
}

static void check_err(int rc, const umg_query_error_t *e)
{
    if (rc == UMG_EINVAL &&
        (e->code == NULL || e->field == NULL || memchr(e->message, '\0', sizeof(e->message)) == NULL)) {
        abort();
    }
    if (rc != UMG_OK && rc != UMG_EINVAL && rc != UMG_ENOMEM) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pieces_t p;
    cut(&p, data, size);
    const umg_slice_t *v = p.v;
    umg_query_error_t err;

    for (int kind = UMG_QUERY_OVERVIEW; kind <= UMG_QUERY_COHORTS; kind++) {
        umg_query_params_t qp = {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10]};
        umg_query_t *q = NULL;
        memset(&err, 0, sizeof(err));
        int rc = umg_query_parse((umg_query_kind_t)kind, &qp, &q, &err);
        check_err(rc, &err);
        if (rc == UMG_OK) {
            umg_query_free(q);
        }
    }

    umg_query_activity_params_t ap = {v[0], v[1], v[2], v[3]};
    umg_query_activity_t *a = NULL;
    memset(&err, 0, sizeof(err));
    int rc = umg_query_activity_parse(&ap, &a, &err);
    check_err(rc, &err);
    if (rc == UMG_OK) {
        umg_query_activity_free(a);
    }

    umg_funnel_params_t fp = {v[0], v[1], v[2], v[3], v[4], v[5]};
    umg_funnel_t *f = NULL;
    memset(&err, 0, sizeof(err));
    rc = umg_funnel_parse(&fp, &f, &err);
    check_err(rc, &err);
    if (rc == UMG_OK) {
        umg_funnel_free(f);
    }

    umg_fraud_report_params_t rp = {v[0], v[1], v[2], v[3]};
    umg_fraud_report_t *r = NULL;
    memset(&err, 0, sizeof(err));
    rc = umg_fraud_report_parse(&rp, &r, &err);
    check_err(rc, &err);
    if (rc == UMG_OK) {
        umg_fraud_report_free(r);
    }

    int32_t from_day, to_day;
    memset(&err, 0, sizeof(err));
    rc = umg_query_parse_period(v[0], v[1], &from_day, &to_day, &err);
    check_err(rc, &err);
    if (rc == UMG_OK && (to_day < from_day || to_day - from_day >= UMG_QUERY_MAX_DAYS)) {
        abort();
    }

    int32_t day;
    if (umg_date_parse(v[0], &day) == UMG_OK) {
        char back[16];
        umg_date_format(day, back);
        if (v[0].len != 10 || memcmp(back, v[0].ptr, 10) != 0) {
            abort(); /* exactly YYYY-MM-DD, and a real date: it formats back to itself */
        }
    }

    umg_mta_model_t model;
    if (umg_mta_model_parse(v[0], &model) == UMG_OK && (int)model >= UMG_MTA_MODELS) {
        abort();
    }
    umg_mta_report_by_t by;
    umg_mta_report_value_t value;
    (void)umg_mta_report_parse_by(v[1], &by);
    (void)umg_mta_report_parse_value(v[2], &value);
    unsigned reason;
    if (umg_fraud_reason_parse(v[3], &reason) == UMG_OK && strlen(umg_fraud_reason_name(reason)) == 0) {
        abort();
    }
    uncut(&p);
    return 0;
}
