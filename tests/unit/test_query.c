/*
 * test_query.c - the report query engine (src/query): every parameter error
 * (code and field), and reports computed from hand-built rollup columns, a
 * fake dictionary, cost rows and a rate table, compared byte for byte with
 * the answers docs/reports.md defines (exact amounts, ratio formulas, the
 * cost join, currency conversion per (group, day, currency), cohort nulls).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>

#include "umg_query.h"

/* ------------------------------------------------------------- fixtures */

#define MAXR 256
#define D0 20776 /* 2026-11-19 */

typedef struct tbl_s {
    size_t n;
    int32_t day[MAXR];
    uint32_t dim[UMG_RD_N][MAXR];
    uint32_t x[2][MAXR];
    int64_t v[UMG_ROLLUP_MAXV][MAXR];
} tbl_t;

/* The dictionary: id i is words[i] (0 is ""). */
static const char *words[] = {"",    "meta", "google", "c1",  "c2",       "US",       "DE",   "android",
                              "ios", "USD",  "EUR",    "GBP", "purchase", "level_up", "feed", "c3"};
enum {
    W_META = 1,
    W_GOOGLE,
    W_C1,
    W_C2,
    W_US,
    W_DE,
    W_ANDROID,
    W_IOS,
    W_USD,
    W_EUR,
    W_GBP,
    W_PURCHASE,
    W_LEVEL,
    W_FEED,
    W_C3
};
#define NWORDS (sizeof(words) / sizeof(words[0]))

static tbl_t tables[UMG_RT_COUNT];
static umg_query_cost_t costs[32];
static size_t ncosts;
typedef struct rate_s {
    int32_t day;
    const char *from;
    double f;
} rate_t;
static rate_t rates[16];
static size_t nrates;

/* Ids past the direct maps (1 << 22): "big<n>" for BIG0 + n, n < NBIG. */
#define BIG0 ((1u << 22) + 100)
#define NBIG 128
static char bigwords[NBIG][16];

static int fake_string(void *ctx, uint32_t id, umg_slice_t *out)
{
    (void)ctx;
    if (id >= BIG0 && id < BIG0 + NBIG) {
        char *w = bigwords[id - BIG0];
        snprintf(w, sizeof(bigwords[0]), "big%u", id - BIG0);
        *out = umg_slice(w, strlen(w));
        return UMG_OK;
    }
    if (id >= NWORDS) {
        return UMG_ENOENT;
    }
    *out = umg_slice(words[id], strlen(words[id]));
    return UMG_OK;
}

static int fake_lookup(void *ctx, umg_slice_t s, uint32_t *id)
{
    (void)ctx;
    for (uint32_t i = 0; i < NWORDS; i++) {
        if (strlen(words[i]) == s.len && memcmp(words[i], s.ptr, s.len) == 0) {
            *id = i;
            return UMG_OK;
        }
    }
    return UMG_ENOENT;
}

static int fake_costs(void *ctx, int32_t from, int32_t to, umg_query_cost_cb fn, void *fn_ctx)
{
    (void)ctx;
    for (size_t i = 0; i < ncosts; i++) {
        if (costs[i].day >= from && costs[i].day <= to) {
            int rc = fn(fn_ctx, &costs[i]);
            if (rc != 0) {
                return rc;
            }
        }
    }
    return UMG_OK;
}

static int fake_rates(void *ctx, int32_t from_day, size_t ndays, const char *from, const char *to, double *factors)
{
    (void)ctx;
    assert_string_equal(to, "USD");
    for (size_t i = 0; i < nrates; i++) {
        if (rates[i].day >= from_day && (size_t)(rates[i].day - from_day) < ndays && strcmp(rates[i].from, from) == 0) {
            factors[rates[i].day - from_day] = rates[i].f;
        }
    }
    return UMG_OK;
}

static void reset(void)
{
    memset(tables, 0, sizeof(tables));
    ncosts = nrates = 0;
}

/* A row: day offset from D0, dims {source, campaign, adset, ad, site, country, platform}, x0, x1, values. */
static void row(umg_rollup_table_t t, int dayoff, const uint32_t dims[UMG_RD_N], uint32_t x0, uint32_t x1, int64_t a,
                int64_t b)
{
    tbl_t *tb = &tables[t];
    size_t i = tb->n++;
    assert_true(i < MAXR);
    tb->day[i] = D0 + dayoff;
    for (int d = 0; d < UMG_RD_N; d++) {
        tb->dim[d][i] = dims[d];
    }
    tb->x[0][i] = x0;
    tb->x[1][i] = x1;
    tb->v[0][i] = a;
    tb->v[1][i] = b;
}

/* A MAIN row with some counters. */
static void main_row(int dayoff, const uint32_t dims[UMG_RD_N], int64_t impressions, int64_t clicks, int64_t installs,
                     int64_t organic, int64_t active, int64_t paying)
{
    row(UMG_RT_MAIN, dayoff, dims, 0, 0, 0, 0);
    tbl_t *tb = &tables[UMG_RT_MAIN];
    size_t i = tb->n - 1;
    tb->v[UMG_RM_IMPRESSIONS][i] = impressions;
    tb->v[UMG_RM_CLICKS][i] = clicks;
    tb->v[UMG_RM_INSTALLS][i] = installs;
    tb->v[UMG_RM_ORGANIC_INSTALLS][i] = organic;
    tb->v[UMG_RM_ACTIVE][i] = active;
    tb->v[UMG_RM_PAYING][i] = paying;
    tb->v[UMG_RM_SESSIONS][i] = 2 * active;
}

static void cost(int dayoff, const char *source, const char *campaign, const char *country, const char *cur,
                 int64_t micros)
{
    umg_query_cost_t *c = &costs[ncosts++];
    memset(c, 0, sizeof(*c));
    c->day = D0 + dayoff;
    c->source = umg_slice(source, strlen(source));
    c->campaign = umg_slice(campaign, strlen(campaign));
    c->adset = c->ad = umg_slice("", 0);
    c->country = umg_slice(country, strlen(country));
    memcpy(c->currency, cur, 3);
    c->micros = micros;
}

/* One scratch for every report of the tests, as the report worker keeps one: reuse across reports of every
 * shape must not change an answer (the out-of-memory test runs without it). */
static umg_query_scratch_t *scratch;

static int64_t reeng_since_us; /* umg_query_input_t.reeng_since_us of the reports */

static void input(umg_query_input_t *in, int32_t today)
{
    memset(in, 0, sizeof(*in));
    in->reeng_since_us = reeng_since_us;
    in->app = "app_0123456789abcdef";
    in->timezone = "UTC";
    in->currency = "USD";
    in->today = today;
    for (int t = 0; t < UMG_RT_COUNT; t++) {
        tbl_t *tb = &tables[t];
        umg_rollup_view_t *v = &in->tables[t];
        v->n = tb->n;
        v->day = tb->day;
        for (int d = 0; d < UMG_RD_N; d++) {
            v->dim[d] = tb->dim[d];
        }
        v->x[0] = tb->x[0];
        v->x[1] = tb->x[1];
        for (int k = 0; k < UMG_ROLLUP_MAXV; k++) {
            v->v[k] = tb->v[k];
        }
    }
    in->string = fake_string;
    in->lookup = fake_lookup;
    in->costs = fake_costs;
    in->rates = fake_rates;
    in->scratch = scratch;
}

/* Parameters from "name=value&..." (no decoding; every value as written). */
static void params_of(const char *qs, umg_query_params_t *p)
{
    memset(p, 0, sizeof(*p));
    struct {
        const char *name;
        umg_slice_t *at;
    } map[] = {{"from", &p->from},     {"to", &p->to},         {"group_by", &p->group_by}, {"metrics", &p->metrics},
               {"filter", &p->filter}, {"sort", &p->sort},     {"limit", &p->limit},       {"format", &p->format},
               {"days", &p->days},     {"metric", &p->metric}, {"credit", &p->credit}};
    const char *s = qs;
    while (*s) {
        const char *e = strchr(s, '&'), *eq = strchr(s, '=');
        e = e ? e : s + strlen(s);
        assert_non_null(eq);
        int found = 0;
        for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
            if (strlen(map[i].name) == (size_t)(eq - s) && memcmp(map[i].name, s, (size_t)(eq - s)) == 0) {
                *map[i].at = umg_slice(eq + 1, (size_t)(e - eq - 1));
                found = 1;
            }
        }
        assert_true(found);
        s = *e ? e + 1 : e;
    }
}

/* Runs a report; returns its text (static buffer). */
static char *report(umg_query_kind_t kind, const char *qs, int32_t today)
{
    static umg_buf_t out;
    umg_query_params_t p;
    umg_query_error_t err;
    umg_query_t *q = NULL;
    params_of(qs, &p);
    int rc = umg_query_parse(kind, &p, &q, &err);
    if (rc != UMG_OK) {
        fail_msg("%s: %s %s %s", qs, err.code, err.field, err.message);
    }
    umg_query_input_t in;
    input(&in, today);
    umg_buf_free(&out);
    assert_int_equal(umg_query_run(q, &in, &out), UMG_OK);
    umg_query_free(q);
    return out.ptr;
}

static char *overview(const char *qs)
{

    return report(UMG_QUERY_OVERVIEW, qs, D0 + 400);
}

static void expect_error(umg_query_kind_t kind, const char *qs, const char *code, const char *field, const char *msg)
{
    umg_query_params_t p;
    umg_query_error_t err;
    umg_query_t *q = NULL;
    params_of(qs, &p);
    int rc = umg_query_parse(kind, &p, &q, &err);
    if (rc != UMG_EINVAL) {
        fail_msg("%s: parsed (rc %d)", qs, rc);
    }
    assert_null(q);
    assert_string_equal(err.code, code);
    assert_string_equal(err.field, field);
    if (msg != NULL) {
        assert_string_equal(err.message, msg);
    }
}

static void expect_eq(const char *got, const char *want)
{

    if (strcmp(got, want) != 0) {
        fail_msg("got:\n%s\nwant:\n%s", got, want);
    }
}

/* ------------------------------------------------------------------ tests */

#define P "from=2026-11-19&to=2026-11-21"

static void test_parse_errors(void **state)
{
    (void)state;
    const umg_query_kind_t O = UMG_QUERY_OVERVIEW, C = UMG_QUERY_COHORTS;
    expect_error(O, "to=2026-11-21", "required", "from", NULL);
    expect_error(O, "from=2026-11-21", "required", "to", NULL);
    expect_error(O, "from=2026-11-21&to=", "required", "to", NULL);
    expect_error(O, "from=2026-13-01&to=2026-11-21", "invalid_value", "from", NULL);
    expect_error(O, "from=2026-11-21&to=2026-02-29", "invalid_value", "to", NULL);
    expect_error(O, "from=2026-11-21&to=2026-11-20", "invalid_value", "to", NULL);
    expect_error(O, "from=2026-01-01&to=2027-01-02", "range_too_large", "to", NULL);
    expect_error(O, P "&metrics=installs,foo", "invalid_value", "metrics", "unknown metric \"foo\"");
    expect_error(O, P "&metrics=", "invalid_value", "metrics", NULL);
    expect_error(O, P "&metrics=installs,", "invalid_value", "metrics", NULL);
    expect_error(O, P "&metrics=installs,installs", "invalid_value", "metrics", NULL);
    expect_error(O, P "&metrics=event:", "invalid_value", "metrics", NULL);
    expect_error(O, P "&group_by=day,os", "invalid_value", "group_by", "unknown dimension \"os\"");
    expect_error(O, P "&group_by=day,day", "invalid_value", "group_by", NULL);
    expect_error(O, P "&group_by=day,", "invalid_value", "group_by", NULL);
    expect_error(O, P "&filter=campaign", "invalid_value", "filter", NULL);
    expect_error(O, P "&filter=os:ios", "invalid_value", "filter", NULL);
    expect_error(O, P "&filter=day:2026-11-19", "invalid_value", "filter", NULL);
    expect_error(O, P "&filter=source:a;source:b", "invalid_value", "filter", NULL);
    expect_error(O, P "&filter=source:a;", "invalid_value", "filter", NULL);
    expect_error(O, P "&sort=clicks&metrics=installs", "invalid_value", "sort", NULL);
    expect_error(O, P "&sort=-country", "invalid_value", "sort", NULL);
    expect_error(O, P "&limit=0", "invalid_value", "limit", NULL);
    expect_error(O, P "&limit=100001", "invalid_value", "limit", NULL);
    expect_error(O, P "&limit=10x", "invalid_value", "limit", NULL);
    expect_error(O, P "&limit=", "invalid_value", "limit", NULL);
    expect_error(O, P "&format=xml", "invalid_value", "format", NULL);
    expect_error(C, P "&days=0,181", "invalid_value", "days", NULL);
    expect_error(C, P "&days=0,1,1", "invalid_value", "days", NULL);
    expect_error(C, P "&days=", "invalid_value", "days", NULL);
    expect_error(C, P "&days=-1", "invalid_value", "days", NULL);
    expect_error(C, P "&days=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32",
                 "invalid_value", "days", NULL);
    expect_error(C, P "&metric=ltv", "invalid_value", "metric", NULL);
    expect_error(C, P "&group_by=site,x", "invalid_value", "group_by", NULL);

    /* good ones */
    umg_query_params_t p;
    umg_query_error_t err;
    umg_query_t *q;
    params_of("from=2026-01-01&to=2026-12-31&group_by=&metrics=event:a b,event_unique:a b&sort=-event:a b&limit=100000",
              &p);
    assert_int_equal(umg_query_parse(O, &p, &q, &err), UMG_OK);
    int32_t f, t;
    umg_query_period(q, &f, &t);
    assert_int_equal(t - f + 1, 365);
    assert_false(umg_query_is_csv(q));
    umg_query_free(q);
    params_of(P "&days=0,180,7&metric=roas&format=csv&filter=country:|US", &p);
    assert_int_equal(umg_query_parse(C, &p, &q, &err), UMG_OK);
    assert_true(umg_query_is_csv(q));
    assert_int_equal(umg_query_rate_days_after(q), 180);
    umg_query_free(q);
}

static const uint32_t M_C1_US[UMG_RD_N] = {W_META, W_C1, 0, 0, W_FEED, W_US, W_ANDROID};
static const uint32_t M_C1_DE[UMG_RD_N] = {W_META, W_C1, 0, 0, 0, W_DE, W_IOS};
static const uint32_t M_C2_US[UMG_RD_N] = {W_META, W_C2, 0, 0, 0, W_US, W_ANDROID};
static const uint32_t G_C3_US[UMG_RD_N] = {W_GOOGLE, W_C3, 0, 0, 0, W_US, W_ANDROID};
static const uint32_t ORGANIC[UMG_RD_N] = {0, 0, 0, 0, 0, W_US, W_ANDROID};

static void some_rows(void)
{
    reset();
    main_row(0, M_C1_US, 1000, 50, 5, 0, 5, 1);
    main_row(0, M_C1_DE, 500, 20, 2, 0, 2, 0);
    main_row(1, M_C1_US, 800, 40, 4, 0, 7, 2);
    main_row(1, M_C2_US, 100, 0, 0, 0, 0, 0);
    main_row(2, G_C3_US, 300, 30, 3, 0, 3, 0);
    main_row(2, ORGANIC, 0, 0, 0, 9, 9, 1);
    main_row(3, M_C1_US, 9999, 9999, 9999, 0, 0, 0);  /* after to: never counted */
    main_row(-1, M_C1_US, 9999, 9999, 9999, 0, 0, 0); /* before from */
}

static void test_group_filter_sort_limit(void **state)
{
    (void)state;
    some_rows();
    expect_eq(overview(P "&group_by=campaign&metrics=installs,clicks,ctr,conversion_rate"),
              "{\"app\":\"app_0123456789abcdef\",\"from\":\"2026-11-19\",\"to\":\"2026-11-21\",\"timezone\":\"UTC\","
              "\"currency\":\"USD\",\"credit\":\"install\",\"group_by\":[\"campaign\"],\"metrics\":[\"installs\","
              "\"clicks\",\"ctr\","
              "\"conversion_rate\"],\"rows\":["
              "{\"campaign\":\"\",\"installs\":0,\"clicks\":0,\"ctr\":null,\"conversion_rate\":null},"
              "{\"campaign\":\"c1\",\"installs\":11,\"clicks\":110,\"ctr\":0.047826086956521741,"
              "\"conversion_rate\":0.10000000000000001},"
              "{\"campaign\":\"c2\",\"installs\":0,\"clicks\":0,\"ctr\":0,\"conversion_rate\":null},"
              "{\"campaign\":\"c3\",\"installs\":3,\"clicks\":30,\"ctr\":0.10000000000000001,\"conversion_rate\":0."
              "10000000000000001}],"
              "\"totals\":{\"installs\":14,\"clicks\":140,\"ctr\":0.05185185185185185,"
              "\"conversion_rate\":0.10000000000000001},"
              "\"truncated\":false}\n");
    /* filter (two values, one unknown to the dictionary) and sort descending with a limit: totals stay whole */
    expect_eq(
        overview(P "&group_by=source,country&metrics=installs,organic_installs&filter=country:US|FR&sort=-installs"
                   "&limit=2"),
        "{\"app\":\"app_0123456789abcdef\",\"from\":\"2026-11-19\",\"to\":\"2026-11-21\",\"timezone\":\"UTC\","
        "\"currency\":\"USD\",\"credit\":\"install\",\"group_by\":[\"source\",\"country\"],\"metrics\":[\"installs\","
        "\"organic_installs\"],\"rows\":["
        "{\"source\":\"meta\",\"country\":\"US\",\"installs\":9,\"organic_installs\":0},"
        "{\"source\":\"google\",\"country\":\"US\",\"installs\":3,\"organic_installs\":0}],"
        "\"totals\":{\"installs\":12,\"organic_installs\":9},\"truncated\":true}\n");
    /* default order: group_by order, days as dates, strings by bytes; "" first */
    char *o = overview(P "&group_by=day,platform&metrics=active_devices,sessions,paying_devices");
    assert_non_null(strstr(o, "\"rows\":[{\"day\":\"2026-11-19\",\"platform\":\"android\",\"active_devices\":5,"
                              "\"sessions\":10,\"paying_devices\":1},{\"day\":\"2026-11-19\",\"platform\":\"ios\","
                              "\"active_devices\":2,\"sessions\":4,\"paying_devices\":0},{\"day\":\"2026-11-20\""));
    assert_non_null(strstr(o, "\"totals\":{\"active_devices\":26,\"sessions\":52,\"paying_devices\":4}"));
    /* sort by a dimension descending; ties keep the group_by order */
    o = overview(P "&group_by=day,campaign&metrics=installs&sort=-campaign");
    assert_non_null(strstr(o, "\"rows\":[{\"day\":\"2026-11-21\",\"campaign\":\"c3\",\"installs\":3},"
                              "{\"day\":\"2026-11-20\",\"campaign\":\"c2\",\"installs\":0},"
                              "{\"day\":\"2026-11-19\",\"campaign\":\"c1\",\"installs\":7},"
                              "{\"day\":\"2026-11-20\",\"campaign\":\"c1\",\"installs\":4},"
                              "{\"day\":\"2026-11-21\",\"campaign\":\"\",\"installs\":0}]"));
    /* no dimensions: one row, the totals; an unknown filter value matches nothing but still answers one row */
    expect_eq(overview(P "&group_by=&metrics=installs,ctr&filter=source:tiktok"),
              "{\"app\":\"app_0123456789abcdef\",\"from\":\"2026-11-19\",\"to\":\"2026-11-21\",\"timezone\":\"UTC\","
              "\"currency\":\"USD\",\"credit\":\"install\",\"group_by\":[],\"metrics\":[\"installs\",\"ctr\"],\"rows\":"
              "[{\"installs\":0,"
              "\"ctr\":null}],\"totals\":{\"installs\":0,\"ctr\":null},\"truncated\":false}\n");
    /* an empty value filters on "" */
    o = overview(P "&group_by=campaign&metrics=organic_installs&filter=source:");
    assert_non_null(strstr(o, "\"rows\":[{\"campaign\":\"\",\"organic_installs\":9}]"));
    /* events */
    reset();
    row(UMG_RT_EVENT, 0, M_C1_US, W_PURCHASE, 0, 7, 3);
    row(UMG_RT_EVENT, 1, M_C1_US, W_PURCHASE, 0, 5, 4);
    row(UMG_RT_EVENT, 1, M_C1_US, W_LEVEL, 0, 100, 50);
    row(UMG_RT_EVENT, 1, M_C2_US, W_LEVEL, 0, 1, 1);
    o = overview(P "&group_by=campaign&metrics=event:purchase,event_unique:purchase,event:nope");
    assert_non_null(strstr(o, "\"rows\":[{\"campaign\":\"c1\",\"event:purchase\":12,\"event_unique:purchase\":7,"
                              "\"event:nope\":0}],"));
    /* more than 8 event names, asked for in an order that is not their ids' (the set is searched sorted) */
    reset();
    static const uint32_t names[] = {W_C3, W_FEED, W_LEVEL, W_PURCHASE, W_GBP, W_EUR, W_USD, W_IOS, W_ANDROID};
    char q[1024] = P "&group_by=&metrics=", want[1024] = "\"rows\":[{";
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        row(UMG_RT_EVENT, 1, M_C1_US, names[i], 0, (int64_t)(i + 1), 1);
        char m[64];
        snprintf(m, sizeof(m), "%sevent:%s", i ? "," : "", words[names[i]]);
        strcat(q, m);
        snprintf(m, sizeof(m), "%s\"event:%s\":%zu", i ? "," : "", words[names[i]], i + 1);
        strcat(want, m);
    }
    o = overview(q);
    assert_non_null(strstr(o, want));
}

/* credit=re_engagement: the same report over the re-engagement tables, and only the metrics they keep. */
static void test_reengagement_credit(void **state)
{
    (void)state;
    const umg_query_kind_t O = UMG_QUERY_OVERVIEW, C = UMG_QUERY_COHORTS;
    expect_error(O, P "&credit=retargeting", "invalid_value", "credit", "credit must be install or re_engagement");
    expect_error(O, P "&credit=", "invalid_value", "credit", NULL);
    expect_error(C, P "&credit=re_engagement", "invalid_value", "credit", NULL);
    static const char *const refused[] = {"installs",   "organic_installs",  "conversion_rate",
                                          "reinstalls", "reattributions",    "cpi",
                                          "ecpi",       "rejected_installs", "rejected_clicks"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        char qs[128];
        snprintf(qs, sizeof(qs), P "&credit=re_engagement&metrics=sessions,%s", refused[i]);
        expect_error(O, qs, "invalid_value", "metrics", NULL);
    }
    some_rows(); /* the install view's rows: none of them may show */
    row(UMG_RT_REENG_MAIN, 0, M_C2_US, 0, 0, 0, 0);
    tables[UMG_RT_REENG_MAIN].v[UMG_RM_CLICKS][0] = 4;
    tables[UMG_RT_REENG_MAIN].v[UMG_RM_IMPRESSIONS][0] = 40;
    row(UMG_RT_REENG_MAIN, 1, M_C2_US, 0, 0, 0, 0);
    tables[UMG_RT_REENG_MAIN].v[UMG_RM_REENGAGEMENTS][1] = 2;
    tables[UMG_RT_REENG_MAIN].v[UMG_RM_SESSIONS][1] = 5;
    tables[UMG_RT_REENG_MAIN].v[UMG_RM_ACTIVE][1] = 2;
    tables[UMG_RT_REENG_MAIN].v[UMG_RM_PAYING][1] = 1;
    row(UMG_RT_REENG_REVENUE, 1, M_C2_US, W_USD, 0, 3000000, 1);
    row(UMG_RT_REENG_EVENT, 1, M_C2_US, W_PURCHASE, 0, 3, 1);
    cost(1, "meta", "c2", "US", "USD", 1500000);
    cost(1, "meta", "c1", "US", "USD", 9000000); /* c1 has no retargeting: not in this view */
    char *o = overview(P "&credit=re_engagement&group_by=campaign&metrics=impressions,clicks,ctr,re_engagements,"
                         "sessions,active_devices,paying_devices,revenue,arpu,arppu,cost,roas,event:purchase,"
                         "event_unique:purchase");
    expect_eq(o, "{\"app\":\"app_0123456789abcdef\",\"from\":\"2026-11-19\",\"to\":\"2026-11-21\",\"timezone\":\"UTC\","
                 "\"currency\":\"USD\",\"credit\":\"re_engagement\",\"group_by\":[\"campaign\"],\"metrics\":["
                 "\"impressions\",\"clicks\",\"ctr\",\"re_engagements\",\"sessions\",\"active_devices\","
                 "\"paying_devices\",\"revenue\",\"arpu\",\"arppu\",\"cost\",\"roas\",\"event:purchase\","
                 "\"event_unique:purchase\"],\"rows\":["
                 "{\"campaign\":\"c2\",\"impressions\":40,\"clicks\":4,\"ctr\":0.10000000000000001,"
                 "\"re_engagements\":2,\"sessions\":5,\"active_devices\":2,\"paying_devices\":1,\"revenue\":3,"
                 "\"arpu\":1.5,\"arppu\":3,\"cost\":1.5,\"roas\":2,\"event:purchase\":3,\"event_unique:purchase\":1}],"
                 "\"totals\":{\"impressions\":40,\"clicks\":4,\"ctr\":0.10000000000000001,\"re_engagements\":2,"
                 "\"sessions\":5,\"active_devices\":2,\"paying_devices\":1,\"revenue\":3,\"arpu\":1.5,\"arppu\":3,"
                 "\"cost\":1.5,\"roas\":2,\"event:purchase\":3,\"event_unique:purchase\":1},\"truncated\":false}\n");
    /* its default metrics; credit=install is the default view */
    o = overview(P "&credit=re_engagement&group_by=");
    assert_non_null(strstr(o, "\"metrics\":[\"re_engagements\",\"sessions\",\"clicks\",\"impressions\","
                              "\"revenue\",\"cost\",\"roas\"],\"rows\":[{\"re_engagements\":2,\"sessions\":5,"
                              "\"clicks\":4,\"impressions\":40,\"revenue\":3,"));
    o = overview(P "&credit=install&group_by=&metrics=sessions");
    assert_non_null(strstr(o, "\"credit\":\"install\""));
    assert_non_null(strstr(o, "\"rows\":[{\"sessions\":52}]"));
    /* a store upgraded in place: the view says since when it is kept (the install view has no such field) */
    reeng_since_us = INT64_C(1764417600) * 1000000 + 250000; /* 2025-11-29T12:00:00.25Z */
    o = overview(P "&credit=re_engagement&group_by=&metrics=sessions");
    assert_non_null(strstr(o, "\"credit\":\"re_engagement\",\"credit_since\":\"2025-11-29T12:00:00.250000Z\","));
    o = overview(P "&group_by=&metrics=sessions");
    assert_null(strstr(o, "credit_since"));
    reeng_since_us = 0;
}

static void test_csv(void **state)
{
    (void)state;
    some_rows();
    expect_eq(overview(P "&group_by=source,campaign&metrics=installs,ctr,revenue&format=csv"),
              "source,campaign,installs,ctr,revenue\n"
              ",,0,,0\n"
              "google,c3,3,0.10000000000000001,0\n"
              "meta,c1,11,0.047826086956521741,0\n"
              "meta,c2,0,0,0\n"
              "total,,14,0.05185185185185185,0\n");
    expect_eq(overview(P "&group_by=&metrics=installs&format=csv"), "installs\n14\n");
    /* quoting (a cost's campaign is any string the user sent) */
    reset();
    cost(0, "meta", "a,\"b\"", "", "USD", 1500000);
    expect_eq(overview(P "&group_by=campaign&metrics=cost&format=csv"),
              "campaign,cost\n\"a,\"\"b\"\"\",1.5\ntotal,1.5\n");
    /* a name a spreadsheet would run as a formula gets an apostrophe first; numbers never do */
    reset();
    cost(0, "meta", "=HYPERLINK(\"http://x\")", "", "USD", 1000000);
    cost(0, "meta", "-2+3", "", "USD", -500000);
    cost(0, "meta", "@sum", "", "USD", 1000000);
    cost(0, "meta", "a-b", "", "USD", 1000000);
    expect_eq(overview(P "&group_by=campaign&metrics=cost&format=csv&sort=campaign"),
              "campaign,cost\n'-2+3,-0.5\n\"'=HYPERLINK(\"\"http://x\"\")\",1\n'@sum,1\na-b,1\ntotal,2.5\n");
}

static void test_conversion(void **state)
{
    (void)state;
    reset();
    main_row(0, M_C1_US, 0, 0, 10, 0, 10, 2);
    main_row(1, M_C1_US, 0, 0, 0, 0, 4, 1);
    row(UMG_RT_REVENUE, 0, M_C1_US, W_USD, 0, 12500000, 3); /* 12.5 USD */
    row(UMG_RT_REVENUE, 0, M_C1_US, W_EUR, 0, 1234567, 1);  /* 1.234567 EUR, rate 1.1 */
    row(UMG_RT_REVENUE, 0, M_C1_DE, W_EUR, 0, 1000000, 1);  /* another group, same rate */
    row(UMG_RT_REVENUE, 1, M_C1_US, W_EUR, 0, 2000000, 1);  /* no rate that day */
    row(UMG_RT_REVENUE, 1, M_C1_US, W_GBP, 0, 333333, 1);   /* rate 1.3 */
    row(UMG_RT_REVENUE, 1, M_C1_US, W_USD, 0, 1, 1);        /* a micro */
    rates[nrates++] = (rate_t){D0, "EUR", 1.1};
    rates[nrates++] = (rate_t){D0 + 1, "GBP", 1.3};
    /* per (group, day, currency): 1234567 * 1.1 = 1358023.7 -> 1358024; 333333 * 1.3 = 433332.9 -> 433333 */
    char *o = overview(P "&group_by=day&metrics=revenue,arpu,arppu");
    assert_non_null(strstr(o, "{\"day\":\"2026-11-19\",\"revenue\":14.958024,\"arpu\":1.4958023999999999,"
                              "\"arppu\":7.479012},"));
    assert_non_null(strstr(o, "{\"day\":\"2026-11-20\",\"revenue\":0.433334,\"arpu\":0.1083335,\"arppu\":0.433334,"
                              "\"revenue_unconverted\":{\"EUR\":2}}"));
    assert_non_null(strstr(o, "\"totals\":{\"revenue\":15.391358,"));
    assert_non_null(strstr(o, "\"revenue_unconverted\":{\"EUR\":2}},\"truncated\":false}"));
    /* grouping without day: still converted per (group, day, currency); DE: 1100000 */
    o = overview(P "&group_by=country&metrics=revenue");
    assert_non_null(strstr(o,
                           "\"rows\":[{\"country\":\"DE\",\"revenue\":1.1},{\"country\":\"US\",\"revenue\":14.291358,"
                           "\"revenue_unconverted\":{\"EUR\":2}}]"));
    o = overview(P "&group_by=country&metrics=revenue&format=csv");
    expect_eq(o, "country,revenue,revenue:EUR\nDE,1.1,\nUS,14.291358,2\ntotal,15.391358,2\n");
    /* a conversion near the 64-bit bound is not cut short of it: floor(1e18 * 9.21 + 0.5) = 9210000000000001024
     * micro-units fit (they were held at the bound from 9.2e18 on) */
    reset();
    main_row(0, M_C1_US, 0, 0, 1, 0, 1, 1);
    row(UMG_RT_REVENUE, 0, M_C1_US, W_EUR, 0, INT64_C(1000000000000000000), 1);
    rates[nrates++] = (rate_t){D0, "EUR", 9.21};
    o = overview(P "&group_by=&metrics=revenue");
    assert_non_null(strstr(o, "\"rows\":[{\"revenue\":9210000000000.001024}]"));
    /* no rate at all: everything but USD stays unconverted */
    reset();
    main_row(0, M_C1_US, 0, 0, 10, 0, 10, 2);
    row(UMG_RT_REVENUE, 0, M_C1_US, W_USD, 0, 12500000, 3);
    row(UMG_RT_REVENUE, 0, M_C1_US, W_EUR, 0, 1234567, 1);
    row(UMG_RT_REVENUE, 0, M_C1_DE, W_EUR, 0, 1000000, 1);
    row(UMG_RT_REVENUE, 1, M_C1_US, W_EUR, 0, 2000000, 1);
    row(UMG_RT_REVENUE, 1, M_C1_US, W_GBP, 0, 333333, 1);
    row(UMG_RT_REVENUE, 1, M_C1_US, W_USD, 0, 1, 1);
    nrates = 0;
    o = overview(P "&group_by=&metrics=revenue");
    assert_non_null(strstr(o, "\"rows\":[{\"revenue\":12.500001,\"revenue_unconverted\":{\"EUR\":4.234567,"
                              "\"GBP\":0.333333}}]"));
}

static void test_cost_join(void **state)
{
    (void)state;
    reset();
    main_row(0, M_C1_US, 1000, 100, 10, 0, 10, 0);
    main_row(0, M_C1_DE, 0, 0, 5, 1, 5, 0);
    main_row(0, ORGANIC, 0, 0, 0, 4, 4, 0);
    row(UMG_RT_REVENUE, 0, M_C1_US, W_USD, 0, 30000000, 3);
    cost(0, "meta", "c1", "US", "USD", 20000000);
    cost(0, "meta", "c1", "", "USD", 5000000);    /* no country: the "" country */
    cost(0, "meta", "c9", "US", "USD", 7000000);  /* a campaign with no installs: its own row */
    cost(0, "meta", "c1", "US", "EUR", 1000000);  /* no rate: unconverted */
    cost(5, "meta", "c1", "US", "USD", 99000000); /* outside the period */
    char *o = overview(P "&group_by=campaign,country&metrics=installs,cost,cpi,ecpi,roas");
    expect_eq(
        strstr(o, "\"rows\":"),
        "\"rows\":[{\"campaign\":\"\",\"country\":\"US\",\"installs\":0,\"cost\":0,\"cpi\":null,\"ecpi\":0,"
        "\"roas\":null},"
        "{\"campaign\":\"c1\",\"country\":\"\",\"installs\":0,\"cost\":5,\"cpi\":null,\"ecpi\":null,\"roas\":0},"
        "{\"campaign\":\"c1\",\"country\":\"DE\",\"installs\":5,\"cost\":0,\"cpi\":0,\"ecpi\":0,\"roas\":null},"
        "{\"campaign\":\"c1\",\"country\":\"US\",\"installs\":10,\"cost\":20,\"cpi\":2,\"ecpi\":2,\"roas\":1.5,"
        "\"cost_unconverted\":{\"EUR\":1}},"
        "{\"campaign\":\"c9\",\"country\":\"US\",\"installs\":0,\"cost\":7,\"cpi\":null,\"ecpi\":null,\"roas\":0}],"
        "\"totals\":{\"installs\":15,\"cost\":32,\"cpi\":2.1333333333333333,\"ecpi\":1.6000000000000001,"
        "\"roas\":0.9375,\"cost_unconverted\":{\"EUR\":1}},\"truncated\":false}\n");
    /* grouping by a dimension costs do not have: their "" group (rows come from what the metrics read) */
    o = overview(P "&group_by=platform&metrics=cost");
    assert_non_null(strstr(o, "\"rows\":[{\"platform\":\"\",\"cost\":32,\"cost_unconverted\":{\"EUR\":1}}]"));
    o = overview(P "&group_by=platform&metrics=cost,installs");
    assert_non_null(
        strstr(o, "\"rows\":[{\"platform\":\"\",\"cost\":32,\"installs\":0,\"cost_unconverted\":{"
                  "\"EUR\":1}},{\"platform\":\"android\",\"cost\":0,\"installs\":10},{\"platform\":\"ios\",\"cost\":0,"
                  "\"installs\":5}]"));
    /* filters apply to costs by their strings: site=feed excludes them (their site is "") */
    o = overview(P "&group_by=&metrics=cost&filter=campaign:c9|c1;country:US");
    assert_non_null(strstr(o, "\"rows\":[{\"cost\":27,\"cost_unconverted\":{\"EUR\":1}}]"));
    o = overview(P "&group_by=&metrics=cost&filter=site:feed");
    assert_non_null(strstr(o, "\"rows\":[{\"cost\":0}]"));
    o = overview(P "&group_by=campaign&metrics=cost&sort=-cost&limit=1");
    assert_non_null(strstr(o, "\"rows\":[{\"campaign\":\"c1\",\"cost\":25,\"cost_unconverted\":{\"EUR\":1}}],"));
    /* the same rows with their strings numbered (as the cost cache numbers them): the same answers */
    static const char *const qs[] = {P "&group_by=campaign,country&metrics=installs,cost,cpi,ecpi,roas",
                                     P "&group_by=&metrics=cost&filter=campaign:c9|c1;country:US",
                                     P "&group_by=source,adset,ad&metrics=cost"};
    for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
        char *plain = strdup(overview(qs[k]));
        const char *seen[16] = {0};
        uint32_t nseen = 0;
        for (size_t i = 0; i < ncosts; i++) {
            umg_slice_t f[5] = {costs[i].source, costs[i].campaign, costs[i].adset, costs[i].ad, costs[i].country};
            for (int j = 0; j < 5; j++) {
                uint32_t n = 0;
                for (uint32_t x = 0; x < nseen && f[j].len > 0 && n == 0; x++) {
                    n = strlen(seen[x]) == f[j].len && memcmp(seen[x], f[j].ptr, f[j].len) == 0 ? x + 1 : 0;
                }
                if (n == 0 && f[j].len > 0) {
                    seen[nseen++] = f[j].ptr;
                    n = nseen;
                }
                costs[i].sid[j] = n + 1000 * (uint32_t)k; /* any numbers, one per string */
            }
        }
        expect_eq(overview(qs[k]), plain);
        free(plain);
        for (size_t i = 0; i < ncosts; i++) {
            memset(costs[i].sid, 0, sizeof(costs[i].sid));
        }
    }
}

/* Cohorts: install days D0, D0+1, D0+2; today = D0+3, so day 3 is reached only by D0's cohort. */
static void cohort_rows(void)
{
    reset();
    row(UMG_RT_COHORT, 0, M_C1_US, 0, 0, 10, 0);
    row(UMG_RT_COHORT, 1, M_C1_US, 0, 0, 20, 0);
    row(UMG_RT_COHORT, 2, M_C2_US, 0, 0, 5, 0);
    row(UMG_RT_COHORT_DAY, 0, M_C1_US, 0, 0, 10, 12); /* day 0 */
    row(UMG_RT_COHORT_DAY, 0, M_C1_US, 1, 0, 4, 5);
    row(UMG_RT_COHORT_DAY, 0, M_C1_US, 3, 0, 3, 3);
    row(UMG_RT_COHORT_DAY, 1, M_C1_US, 0, 0, 20, 30);
    row(UMG_RT_COHORT_DAY, 1, M_C1_US, 1, 0, 10, 11);
    row(UMG_RT_COHORT_DAY, 2, M_C2_US, 0, 0, 5, 5);
    row(UMG_RT_COHORT_REV, 0, M_C1_US, 0, W_USD, 1000000, 1);
    row(UMG_RT_COHORT_REV, 0, M_C1_US, 1, W_EUR, 2000000, 1); /* EUR on calendar day D0+1: rate 1.5 */
    row(UMG_RT_COHORT_REV, 1, M_C1_US, 0, W_EUR, 2000000, 1); /* the same calendar day D0+1: 1.5 */
    row(UMG_RT_COHORT_REV, 1, M_C1_US, 1, W_EUR, 1000000, 1); /* D0+2: no rate */
    row(UMG_RT_COHORT_REV, 2, M_C2_US, 0, W_USD, 2500000, 1);
    rates[nrates++] = (rate_t){D0 + 1, "EUR", 1.5};
    cost(0, "meta", "c1", "US", "USD", 4000000);
    cost(1, "meta", "c1", "US", "USD", 6000000);
}

static void test_cohorts(void **state)
{
    (void)state;
    cohort_rows();
    const int32_t today = D0 + 3;
    char *o = report(UMG_QUERY_COHORTS, P "&days=0,1,3,7", today);

    expect_eq(o, "{\"app\":\"app_0123456789abcdef\",\"from\":\"2026-11-19\",\"to\":\"2026-11-21\",\"timezone\":\"UTC\","
                 "\"currency\":\"USD\",\"group_by\":[\"day\"],\"today\":\"2026-11-22\",\"metric\":\"retention\","
                 "\"days\":[0,1,3,7],\"rows\":["
                 "{\"day\":\"2026-11-19\",\"size\":10,\"values\":[1,0.40000000000000002,0.29999999999999999,null]},"
                 "{\"day\":\"2026-11-20\",\"size\":20,\"values\":[1,0.5,null,null]},"
                 "{\"day\":\"2026-11-21\",\"size\":5,\"values\":[1,0,null,null]}],"
                 /* the totals: every cohort together, day N over those that reached it (14 of 35 on day 1) */
                 "\"totals\":{\"size\":35,\"values\":[1,0.40000000000000002,0.29999999999999999,null]}}\n");
    /* one group over several install days: day N counts only the cohorts that reached it */
    o = report(UMG_QUERY_COHORTS, P "&days=0,1,3,7&group_by=campaign", today);
    assert_non_null(strstr(o,
                           "\"rows\":[{\"campaign\":\"c1\",\"size\":30,\"values\":[1,0.46666666666666667,"
                           "0.29999999999999999,null]},{\"campaign\":\"c2\",\"size\":5,\"values\":[1,0,null,null]}]"));
    o = report(UMG_QUERY_COHORTS, P "&days=0,1,3&group_by=&metric=sessions", today);
    assert_non_null(strstr(o, "\"rows\":[{\"size\":35,\"values\":[47,16,3]}]"));
    /* revenue: D0 day 1 is 2 EUR * 1.5 = 3; D0+1 day 0 is 3; D0+1 day 1 has no rate; today's day is reached */
    o = report(UMG_QUERY_COHORTS, P "&days=0,1,2&metric=revenue", today);
    assert_non_null(strstr(o, "{\"day\":\"2026-11-19\",\"size\":10,\"values\":[1,3,0]},"
                              "{\"day\":\"2026-11-20\",\"size\":20,\"values\":[3,0,0],\"revenue_unconverted\":{\"EUR\":"
                              "1}},{\"day\":\"2026-11-21\",\"size\":5,\"values\":[2.5,0,null]}"));
    o = report(UMG_QUERY_COHORTS, P "&days=0,1,2&metric=cumulative_revenue&group_by=campaign", today);
    assert_non_null(strstr(o,
                           "{\"campaign\":\"c1\",\"size\":30,\"values\":[4,7,7],\"revenue_unconverted\":{\"EUR\":1}},"
                           "{\"campaign\":\"c2\",\"size\":5,\"values\":[2.5,2.5,null]}"));
    /* roas: cumulative revenue / the cost of the cohorts that reached day N */
    o = report(UMG_QUERY_COHORTS, P "&days=0,1,2&metric=roas&group_by=campaign", today);
    assert_non_null(strstr(o, "{\"campaign\":\"c1\",\"size\":30,\"values\":[0.40000000000000002,0.69999999999999996,"
                              "0.69999999999999996],"
                              "\"revenue_unconverted\":{\"EUR\":1}},{\"campaign\":\"c2\",\"size\":5,\"values\":[null,"
                              "null,null]}"));
    o = report(UMG_QUERY_COHORTS, P "&days=0,1&format=csv&metric=revenue", today);
    expect_eq(o, "day,size,d0,d1,revenue:EUR\n2026-11-19,10,1,3,\n2026-11-20,20,3,0,1\n2026-11-21,5,2.5,0,\n"
                 "total,35,6.5,3,1\n");
    /* filters */
    o = report(UMG_QUERY_COHORTS, P "&days=0&group_by=campaign&filter=campaign:c2", today);
    assert_non_null(strstr(o, "\"rows\":[{\"campaign\":\"c2\",\"size\":5,\"values\":[1]}]"));
    /* cost without a rate is shown apart only for cohorts that reached their install day, as converted cost */
    cost(2, "meta", "c2", "US", "CHF", 5000000);
    o = report(UMG_QUERY_COHORTS, P "&days=0&metric=roas&group_by=campaign", today);
    assert_non_null(strstr(o, "\"cost_unconverted\":{\"CHF\":5}"));
    o = report(UMG_QUERY_COHORTS, P "&days=0&metric=roas&group_by=campaign", D0 + 1);
    assert_null(strstr(o, "CHF"));
}

/* Strings of ids the fake dictionary does not have: "s<id>", kept for the run. */
static int many_string(void *ctx, uint32_t id, umg_slice_t *out)
{
    static char table[5000][8];
    (void)ctx;
    assert_true(id < 5000);
    snprintf(table[id], sizeof(table[id]), "s%u", id);
    *out = umg_slice(table[id], strlen(table[id]));
    return UMG_OK;
}

/* Many distinct values: the group index is a hash of rank tuples instead of direct slots. */
static void test_many_groups(void **state)
{
    (void)state;
    reset();
    for (uint32_t i = 0; i < 200; i++) {
        uint32_t dims[UMG_RD_N] = {i + 1000, i + 2000, (199 - i) + 3000, 0, 0, 0, 0};
        main_row((int)(i % 3), dims, 1, 1, 1, 0, 1, 0);
    }
    umg_query_params_t p;
    umg_query_error_t err;
    umg_query_t *q;
    params_of(P "&group_by=source,campaign,adset&metrics=installs&sort=-adset&limit=3", &p);
    assert_int_equal(umg_query_parse(UMG_QUERY_OVERVIEW, &p, &q, &err), UMG_OK);
    umg_query_input_t in;
    input(&in, D0);
    in.string = many_string;
    umg_buf_t out = {0};
    assert_int_equal(umg_query_run(q, &in, &out), UMG_OK);
    assert_non_null(strstr(out.ptr,
                           "\"rows\":[{\"source\":\"s1000\",\"campaign\":\"s2000\",\"adset\":\"s3199\","
                           "\"installs\":1},{\"source\":\"s1001\",\"campaign\":\"s2001\",\"adset\":\"s3198\","));
    assert_non_null(strstr(out.ptr, "\"totals\":{\"installs\":200},\"truncated\":true}"));
    umg_buf_free(&out);
    umg_query_free(q);
}

/*
 * A large MAIN table (over the engine's threshold for the helper thread):
 * every report the same, byte for byte, whether a helper takes part of the
 * scan or not, over random rows (runs of the same day and campaign of
 * random lengths, days outside the period), for each grouping the one-pass
 * scan serves, one it does not (a filter), and too many cells for it.
 */
#define BIG 300000
typedef struct big_s {
    int32_t *day;
    uint32_t *dim[UMG_RD_N], *x[2];
    int64_t *v[UMG_ROLLUP_MAXV];
} big_t;

static void big_view(big_t *b, size_t n, umg_rollup_view_t *v)
{
    memset(v, 0, sizeof(*v));
    v->n = n;
    v->day = b->day;
    for (int d = 0; d < UMG_RD_N; d++) {
        v->dim[d] = b->dim[d];
    }
    v->x[0] = b->x[0];
    v->x[1] = b->x[1];
    for (int k = 0; k < UMG_ROLLUP_MAXV; k++) {
        v->v[k] = b->v[k];
    }
}

static void big_alloc(big_t *b, size_t n)
{
    b->day = calloc(n, sizeof(int32_t));
    for (int d = 0; d < UMG_RD_N; d++) {
        b->dim[d] = calloc(n, sizeof(uint32_t));
    }
    for (int k = 0; k < 2; k++) {
        b->x[k] = calloc(n, sizeof(uint32_t));
    }
    for (int k = 0; k < UMG_ROLLUP_MAXV; k++) {
        b->v[k] = calloc(n, sizeof(int64_t));
    }
}

static void big_free(big_t *b)
{
    free(b->day);
    for (int d = 0; d < UMG_RD_N; d++) {
        free(b->dim[d]);
    }
    for (int k = 0; k < 2; k++) {
        free(b->x[k]);
    }
    for (int k = 0; k < UMG_ROLLUP_MAXV; k++) {
        free(b->v[k]);
    }
}

static uint64_t big_rng = 7;
static uint32_t big_rnd(uint32_t n)
{
    big_rng = big_rng * 6364136223846793005u + 1442695040888963407u;
    return (uint32_t)((big_rng >> 33) % n);
}

/* A thread for the engine, as the report worker lends one: each job on a thread of its own. */
typedef struct side_s {
    pthread_t t;
    int started;
    int jobs;
} side_t;

typedef struct side_job_s {
    void (*fn)(void *);
    void *arg;
} side_job_t;
static side_job_t side_job;

static void *side_main(void *arg)
{
    (void)arg;
    side_job.fn(side_job.arg);
    return NULL;
}

static int side_beside(void *par, void (*fn)(void *), void *arg)
{
    side_t *s = par;
    side_job = (side_job_t){fn, arg};
    s->started = pthread_create(&s->t, NULL, side_main, NULL) == 0;
    s->jobs += s->started;
    return s->started ? 0 : -1;
}

static void side_join(void *par)
{
    side_t *s = par;
    if (s->started) {
        pthread_join(s->t, NULL);
        s->started = 0;
    }
}

static void test_helper_thread_same_answer(void **state)
{
    (void)state;
    static big_t m, rev;
    big_alloc(&m, BIG);
    big_alloc(&rev, BIG / 4);
    for (int pass = 0; pass < 2; pass++) {
        /* pass 0: 60 campaigns; pass 1: 4,000 of them, too many cells for the one pass over a year */
        uint32_t ncamp = pass == 0 ? 60 : 4000;
        size_t i = 0;
        for (int32_t d = -2; i < BIG; d++) {
            for (int k = 0; k < 40 && i < BIG; k++) {
                uint32_t camp = 1000 + big_rnd(ncamp), len = 1 + big_rnd(9);
                for (uint32_t r = 0; r < len && i < BIG; r++, i++) {
                    m.day[i] = D0 + d;
                    m.dim[UMG_RD_SOURCE][i] = 1000 + camp % 3;
                    m.dim[UMG_RD_CAMPAIGN][i] = camp;
                    m.dim[UMG_RD_COUNTRY][i] = 1000 + big_rnd(20);
                    for (int v = 0; v < UMG_RM_N; v++) {
                        m.v[v][i] = big_rnd(50);
                    }
                }
            }
        }
        for (size_t j = 0; j < BIG / 4; j++) {
            rev.day[j] = m.day[j * 4];
            rev.dim[UMG_RD_SOURCE][j] = m.dim[UMG_RD_SOURCE][j * 4];
            rev.dim[UMG_RD_CAMPAIGN][j] = m.dim[UMG_RD_CAMPAIGN][j * 4];
            rev.dim[UMG_RD_COUNTRY][j] = m.dim[UMG_RD_COUNTRY][j * 4];
            rev.x[0][j] = big_rnd(3) == 0 ? W_EUR : W_USD;
            rev.v[0][j] = big_rnd(5000000);
            rev.v[1][j] = 1;
        }
        static const char *const qs[] = {
            "from=2026-11-19&to=2027-11-18&group_by=day,campaign&metrics=installs,clicks,sessions,revenue",
            "from=2026-11-19&to=2027-11-18&group_by=campaign&metrics=installs,revenue,arpu&sort=-installs",
            "from=2026-11-19&to=2027-11-18&group_by=day&metrics=installs,active_devices,revenue",
            "from=2026-11-19&to=2027-11-18&metrics=installs,impressions,revenue",
            "from=2026-11-20&to=2026-12-30&group_by=source,day&metrics=installs,revenue",
            "from=2026-11-19&to=2027-11-18&group_by=day,campaign&filter=country:s1003|s1004&metrics=installs",
        };
        for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
            umg_query_params_t p;
            umg_query_error_t err;
            umg_query_t *q;
            params_of(qs[k], &p);
            if (umg_query_parse(UMG_QUERY_OVERVIEW, &p, &q, &err) != UMG_OK) {
                fail_msg("%s: %s %s", qs[k], err.field, err.message);
            }
            umg_buf_t out[2] = {{0}, {0}};
            side_t side = {0};
            for (int h = 0; h < 2; h++) {
                umg_query_input_t in;
                reset();
                input(&in, D0 + 400);
                big_view(&m, BIG, &in.tables[UMG_RT_MAIN]);
                big_view(&rev, BIG / 4, &in.tables[UMG_RT_REVENUE]);
                in.string = many_string;
                rates[nrates++] = (rate_t){D0, "EUR", 1.1};
                if (h == 1) {
                    in.par = &side;
                    in.beside = side_beside;
                    in.join = side_join;
                }
                assert_int_equal(umg_query_run(q, &in, &out[h]), UMG_OK);
            }
            if (strcmp(out[0].ptr, out[1].ptr) != 0) {
                fail_msg("pass %d, %s: the answers differ (%zu and %zu bytes)", pass, qs[k], out[0].len, out[1].len);
            }
            /* the helper took part in every one-pass scan (in pass 1, for day,campaign and campaign, until the
             * cells grew too many and the report fell back to the two passes) */
            assert_int_equal(side.jobs, k < 5 ? 1 : 0);
            umg_buf_free(&out[0]);
            umg_buf_free(&out[1]);
            umg_query_free(q);
        }
    }
    big_free(&m);
    big_free(&rev);
}

/* Out of memory at every allocation of a run: an error, never a crash or a leak. */
/* Amounts stop at the 64-bit bounds on every path (the plain scans of revenue and of cohort revenue wrapped once,
 * while the fast path held), and a dictionary error is not answered as out of memory. */
static void test_sums_saturate_every_path(void **state)
{
    (void)state;
    reset();
    static const uint32_t a1[UMG_RD_N] = {W_META, W_C1, W_FEED, 0, 0, W_US, W_ANDROID};
    static const uint32_t a2[UMG_RD_N] = {W_META, W_C1, W_LEVEL, 0, 0, W_US, W_ANDROID};
    main_row(0, a1, 0, 0, 1, 0, 1, 1);
    row(UMG_RT_REVENUE, 0, a1, W_USD, 0, INT64_MAX, 1);
    row(UMG_RT_REVENUE, 0, a2, W_USD, 0, INT64_MAX, 1);
    static const char *const qs[] = {P "&group_by=campaign&metrics=revenue",
                                     P "&group_by=source,campaign&metrics=revenue",
                                     P "&group_by=campaign&filter=source:meta&metrics=revenue"};
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        char *o = overview(qs[i]);
        if (strstr(o, "\"totals\":{\"revenue\":9223372036854.775807}") == NULL) {
            fail_msg("%s: %s", qs[i], o);
        }
    }
    reset();
    row(UMG_RT_COHORT, 0, a1, 0, 0, 10, 0);
    row(UMG_RT_COHORT_REV, 0, a1, 0, W_USD, INT64_MAX, 1);
    row(UMG_RT_COHORT_REV, 0, a2, 0, W_USD, INT64_MAX, 1);
    char *o = report(UMG_QUERY_COHORTS, P "&group_by=campaign&metric=revenue&days=0", D0 + 3);
    assert_non_null(strstr(o, "\"values\":[9223372036854.775807]"));
    /* a currency the dictionary cannot name: its error, not "out of memory" (which says retry) */
    reset();
    row(UMG_RT_COHORT, 0, a1, 0, 0, 10, 0);
    row(UMG_RT_COHORT_REV, 0, a1, 0, NWORDS + 5, 1000000, 1);
    umg_query_params_t p;
    umg_query_error_t err;
    umg_query_t *q;
    params_of(P "&group_by=campaign&metric=revenue&days=0", &p);
    assert_int_equal(umg_query_parse(UMG_QUERY_COHORTS, &p, &q, &err), UMG_OK);
    umg_query_input_t in;
    input(&in, D0 + 3);
    umg_buf_t out = {0};
    assert_int_equal(umg_query_run(q, &in, &out), UMG_ENOENT);
    umg_buf_free(&out);
    umg_query_free(q);
}

static void test_out_of_memory(void **state)
{
    (void)state;
    cohort_rows();
    some_rows();
    cost(0, "meta", "c1", "US", "EUR", 1000000);
    row(UMG_RT_REVENUE, 0, M_C1_US, W_EUR, 0, 1000000, 1);
    const char *qs[] = {P "&group_by=campaign,country&metrics=installs,cost,roas,revenue,event:purchase&sort=-cost",
                        P "&group_by=day&filter=country:US|DE", P "&group_by=campaign&metrics=installs"};
    for (size_t k = 0; k < 3; k++) {
        if (k == 2) { /* 96 campaigns with ids past the direct maps: the big map grows while they are ranked */
            reset();
            for (uint32_t i = 0; i < 96; i++) {
                const uint32_t dims[UMG_RD_N] = {W_META, BIG0 + i, 0, 0, 0, W_US, W_ANDROID};
                main_row(0, dims, 0, 0, 1, 0, 1, 0);
            }
        }
        umg_query_params_t p;
        umg_query_error_t err;
        umg_query_t *q;
        params_of(qs[k], &p);
        umg_query_kind_t kind = k == 1 ? UMG_QUERY_COHORTS : UMG_QUERY_OVERVIEW;
        for (long n = 1;; n++) {
            umg_query_input_t in;
            input(&in, D0 + 3);
            in.scratch = NULL;
            umg_buf_t out = {0};
            umg_alloc_fail_after(n);
            q = NULL;
            int rc = umg_query_parse(kind, &p, &q, &err);
            rc = rc ? rc : umg_query_run(q, &in, &out);
            umg_alloc_fail_after(0);
            umg_query_free(q);
            umg_buf_free(&out);
            if (rc == UMG_OK) {
                break;
            }
            assert_int_equal(rc, UMG_ENOMEM);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_group_filter_sort_limit),
        cmocka_unit_test(test_reengagement_credit),
        cmocka_unit_test(test_csv),
        cmocka_unit_test(test_conversion),
        cmocka_unit_test(test_cost_join),
        cmocka_unit_test(test_cohorts),
        cmocka_unit_test(test_many_groups),
        cmocka_unit_test(test_sums_saturate_every_path),
        cmocka_unit_test(test_out_of_memory),
        cmocka_unit_test(test_helper_thread_same_answer),
    };
    if (umg_query_scratch_new(&scratch) != UMG_OK) {
        return 1;
    }
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    umg_query_scratch_free(scratch);
    return failed;
}
