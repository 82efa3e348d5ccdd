/*
 * bench_query.c - the report query engine (src/query) over rollups of the
 * issue's size, with a baseline measured in the same run.
 *
 *   bench_query [runs]   (default 5; the median is printed)
 *
 * Overview: 90 days x 1,000 campaigns (5 sources) x 50 countries = 4.5 M
 * UMG_RT_MAIN rows (every counter filled, rows in day order as the pipeline
 * appends them), 1.35 M UMG_RT_REVENUE rows (5 countries per campaign and
 * day, in USD, EUR and GBP with a rate for EUR and GBP every day) and 90,000
 * cost rows (one per campaign and day, in USD), grouped by day,campaign with
 * the default metrics (installs, organic_installs, clicks, impressions,
 * revenue, cost, roas), answered as JSON. As in the daemon: the costs and
 * rates are read from a meta.db through the report worker's cost cache
 * (ms_costs_uncached: the first report, which fills it), and a helper thread
 * takes part of the scan (ms_one_thread: the same without). The baseline is a plain loop
 * summing the same columns (the four MAIN counters and the revenue micros)
 * of every row, without grouping.
 *
 * Cohorts: 90 install days x 181 days since install x 100 campaigns =
 * 1.63 M UMG_RT_COHORT_DAY rows and as many UMG_RT_COHORT_REV rows (one
 * currency each, rotating), grouped by install day, for metric=retention
 * and metric=cumulative_revenue (the default days 0,1,3,7,14,30,60,90).
 *
 * One JSON line per figure:
 *   {"bench":"query_overview","rows":4500000,"ms":31.2,"baseline_ms":9.8,"ratio":3.18,"target_ms":50,"pass":true}
 * Exit status 1 when a target is missed, 2 on an error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "bench_util.h"
#include "umg_query_ep.h"

#define DAYS 90
#define CAMPAIGNS 1000
#define COUNTRIES 50
#define REV_COUNTRIES 5
#define COHORT_CAMPAIGNS 100
#define D0 20454 /* 2026-01-01 */

/* Dictionary: 1..5 sources, 10.. campaigns, 2000.. countries, 3000.. platforms, 4000.. currencies. */
enum { SRC0 = 1, CAMP0 = 10, CTRY0 = 2000, PLAT0 = 3000, CUR0 = 4000, NIDS = 4010 };
static char names[NIDS][16];

static int dict_string(void *ctx, uint32_t id, umg_slice_t *out)
{
    (void)ctx;
    if (id >= NIDS || names[id][0] == '\0') {
        return UMG_ENOENT;
    }
    *out = umg_slice(names[id], strlen(names[id]));
    return UMG_OK;
}

/* The dictionary's string -> id: a hash table here (the store's is a B-tree; the engine asks once per string). */
#define HCAP 16384
static uint32_t htab[HCAP];

static size_t hslot(umg_slice_t s)
{
    return (size_t)umg_hash64(s.ptr, s.len, 7) & (HCAP - 1);
}

static int dict_lookup(void *ctx, umg_slice_t s, uint32_t *id)
{
    (void)ctx;
    for (size_t h = hslot(s); htab[h] != 0; h = (h + 1) & (HCAP - 1)) {
        const char *n = names[htab[h]];
        if (strlen(n) == s.len && memcmp(n, s.ptr, s.len) == 0) {
            *id = htab[h];
            return UMG_OK;
        }
    }
    return UMG_ENOENT;
}

/*
 * Costs and rates as the daemon's report worker reads them: from a meta.db
 * (in a temporary directory) through the cost cache. One cost row per
 * campaign and day, in USD; a EUR and a GBP rate to USD every day.
 */
static umg_cost_t *cost_db;
static umg_cost_cache_t *cost_cache;
static char cost_dir[32];

static int rates(void *ctx, int32_t from_day, size_t ndays, const char *from, const char *to, double *factors)
{
    (void)ctx;
    return umg_cost_rate_days(cost_db, 1, from_day, ndays, from, to, factors);
}

typedef struct cost_fwd_s {
    umg_query_cost_cb fn;
    void *ctx;
} cost_fwd_t;

static int cost_fwd(void *ctx, const umg_cost_row_t *r)
{
    const cost_fwd_t *f = ctx;
    umg_query_cost_t row;
    umg_query_cost_of(r, &row);
    return f->fn(f->ctx, &row);
}

static int costs(void *ctx, int32_t from, int32_t to, umg_query_cost_cb fn, void *fn_ctx)
{
    (void)ctx;
    cost_fwd_t f = {fn, fn_ctx};
    return umg_cost_cache_each(cost_cache, cost_db, 1, from, to, cost_fwd, &f);
}

static void costs_make(void)
{
    char tmpl[] = "/tmp/bench-query-XXXXXX";
    char *dir = mkdtemp(tmpl);
    if (dir == NULL || umg_cost_open(dir, &cost_db) != UMG_OK || umg_cost_cache_new(0, &cost_cache) != UMG_OK ||
        umg_cost_begin(cost_db) != UMG_OK) {
        fprintf(stderr, "bench_query: cannot make the cost database\n");
        exit(2);
    }
    int rep, rc = UMG_OK;
    for (int32_t d = D0; d < D0 + DAYS && rc == UMG_OK; d++) {
        for (uint32_t c = 0; c < CAMPAIGNS && rc == UMG_OK; c++) {
            umg_cost_row_t r = {.day = d, .currency = "USD", .micros = 1000000 + c};
            r.source = umg_slice(names[SRC0 + c % 5], strlen(names[SRC0 + c % 5]));
            r.campaign = umg_slice(names[CAMP0 + c], strlen(names[CAMP0 + c]));
            r.adset = r.ad = r.country = umg_slice("", 0);
            rc = umg_cost_put(cost_db, 1, &r, &rep);
        }
        umg_rate_row_t eur = {.day = d, .currency = "EUR", .base = "USD", .rate = 1.08};
        umg_rate_row_t gbp = {.day = d, .currency = "GBP", .base = "USD", .rate = 1.27};
        rc = rc ? rc : umg_cost_rate_put(cost_db, 1, &eur, &rep);
        rc = rc ? rc : umg_cost_rate_put(cost_db, 1, &gbp, &rep);
    }
    if (rc != UMG_OK || umg_cost_commit(cost_db) != UMG_OK) {
        fprintf(stderr, "bench_query: cannot write the costs\n");
        exit(2);
    }
    snprintf(cost_dir, sizeof(cost_dir), "%s", dir);
}

static void costs_drop(void)
{
    umg_cost_cache_free(cost_cache);
    umg_cost_close(cost_db);
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", cost_dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "bench_query: cannot remove %s\n", cost_dir);
    }
}

typedef struct cols_s {
    size_t n;
    int32_t *day;
    uint32_t *dim[UMG_RD_N], *x[2];
    int64_t *v[UMG_ROLLUP_MAXV];
} cols_t;

static int cols_new(cols_t *c, size_t n, size_t nv)
{
    memset(c, 0, sizeof(*c));
    c->n = n;
    c->day = calloc(n, sizeof(int32_t));
    int ok = c->day != NULL;
    for (int d = 0; d < UMG_RD_N; d++) {
        ok &= (c->dim[d] = calloc(n, sizeof(uint32_t))) != NULL;
    }
    for (int k = 0; k < 2; k++) {
        ok &= (c->x[k] = calloc(n, sizeof(uint32_t))) != NULL;
    }
    for (size_t k = 0; k < nv; k++) {
        ok &= (c->v[k] = calloc(n, sizeof(int64_t))) != NULL;
    }
    return ok ? 0 : -1;
}

static void cols_view(const cols_t *c, umg_rollup_view_t *v)
{
    memset(v, 0, sizeof(*v));
    v->n = c->n;
    v->day = c->day;
    for (int d = 0; d < UMG_RD_N; d++) {
        v->dim[d] = c->dim[d];
    }
    v->x[0] = c->x[0];
    v->x[1] = c->x[1];
    for (int k = 0; k < UMG_ROLLUP_MAXV; k++) {
        v->v[k] = c->v[k];
    }
    v->min_day = D0;
    v->max_day = D0 + DAYS - 1;
}

static uint64_t rng = 42;
static uint32_t rnd(uint32_t n)
{
    rng = rng * 6364136223846793005u + 1442695040888963407u;
    return (uint32_t)((rng >> 33) % n);
}

static void dims(cols_t *c, size_t i, int32_t day, uint32_t camp, uint32_t ctry)
{
    c->day[i] = D0 + day;
    c->dim[UMG_RD_SOURCE][i] = SRC0 + camp % 5;
    c->dim[UMG_RD_CAMPAIGN][i] = CAMP0 + camp;
    c->dim[UMG_RD_COUNTRY][i] = CTRY0 + ctry;
    c->dim[UMG_RD_PLATFORM][i] = PLAT0 + (camp + ctry) % 2;
}

static double now_ms(void)
{
    return (double)umg_mono_ns() / 1e6;
}

static double median(double *v, int n)
{
    bench_sort_doubles(v, (size_t)n);
    return v[n / 2];
}

static umg_query_t *parse(umg_query_kind_t kind, const char *group_by, const char *metric)
{
    umg_query_params_t p = {0};
    umg_query_error_t err;
    umg_query_t *q;
    char to[11];
    umg_date_format(D0 + DAYS - 1, to);
    p.from = UMG_SLICE("2026-01-01");
    p.to = umg_slice(to, 10);
    p.group_by = umg_slice(group_by, strlen(group_by));
    if (metric != NULL) {
        p.metric = umg_slice(metric, strlen(metric));
    }
    if (umg_query_parse(kind, &p, &q, &err) != UMG_OK) {
        fprintf(stderr, "bench_query: %s %s\n", err.field, err.message);
        exit(2);
    }
    return q;
}

/* The median time of runs reports; the answer's size in *bytes. */
static double time_run(const umg_query_t *q, const umg_query_input_t *in, int runs, size_t *bytes)
{
    double t[32];
    for (int r = 0; r < runs; r++) {
        umg_buf_t out = {0};
        double t0 = now_ms();
        if (umg_query_run(q, in, &out) != UMG_OK) {
            fprintf(stderr, "bench_query: the report failed\n");
            exit(2);
        }
        t[r] = now_ms() - t0;
        *bytes = out.len;
        umg_buf_free(&out);
    }
    return median(t, runs);
}

static volatile int64_t sink;

static double baseline(const cols_t *m, const cols_t *rev, int runs)
{
    double t[32];
    for (int r = 0; r < runs; r++) {
        double t0 = now_ms();
        int64_t s[5] = {0};
        for (size_t i = 0; i < m->n; i++) {
            s[0] += m->v[UMG_RM_INSTALLS][i];
            s[1] += m->v[UMG_RM_ORGANIC_INSTALLS][i];
            s[2] += m->v[UMG_RM_CLICKS][i];
            s[3] += m->v[UMG_RM_IMPRESSIONS][i];
        }
        for (size_t i = 0; i < rev->n; i++) {
            s[4] += rev->v[0][i];
        }
        sink = s[0] + s[1] + s[2] + s[3] + s[4];
        t[r] = now_ms() - t0;
    }
    return median(t, runs);
}

static void input_of(umg_query_input_t *in)
{
    memset(in, 0, sizeof(*in));
    in->app = "app_0123456789abcdef";
    in->timezone = "UTC";
    in->currency = "USD";
    in->today = D0 + 200;
    in->string = dict_string;
    in->lookup = dict_lookup;
    in->costs = costs;
    in->rates = rates;
    static umg_query_scratch_t *scratch; /* kept between reports, as the daemon's report worker does */
    if (scratch == NULL && umg_query_scratch_new(&scratch) != UMG_OK) {
        scratch = NULL;
    }
    in->scratch = scratch;
    static umg_helper_t *helper; /* the second thread of a large overview's scan, as the report worker lends */
    if (helper == NULL && umg_helper_new(&helper) != UMG_OK) {
        helper = NULL;
    }
    in->par = helper;
    in->beside = helper != NULL ? umg_helper_beside : NULL;
    in->join = umg_helper_join;
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 5;
    if (runs < 1 || runs > 31) {
        fprintf(stderr, "usage: bench_query [runs 1..31]\n");
        return 2;
    }
    for (int i = 0; i < 5; i++) {
        snprintf(names[SRC0 + i], 16, "source%d", i);
    }
    for (int i = 0; i < CAMPAIGNS; i++) {
        snprintf(names[CAMP0 + i], 16, "campaign%04d", i);
    }
    for (int i = 0; i < COUNTRIES; i++) {
        snprintf(names[CTRY0 + i], 16, "%c%c", 'A' + i / 26, 'A' + i % 26);
    }
    snprintf(names[PLAT0], 16, "android");
    snprintf(names[PLAT0 + 1], 16, "ios");
    static const char *curs[3] = {"USD", "EUR", "GBP"};
    for (int i = 0; i < 3; i++) {
        snprintf(names[CUR0 + i], 16, "%s", curs[i]);
    }

    for (uint32_t id = 1; id < NIDS; id++) {
        if (names[id][0] != '\0') {
            size_t h = hslot(umg_slice(names[id], strlen(names[id])));
            while (htab[h] != 0) {
                h = (h + 1) & (HCAP - 1);
            }
            htab[h] = id;
        }
    }
    cols_t m, rev, cday, crev, csize;
    if (cols_new(&m, (size_t)DAYS * CAMPAIGNS * COUNTRIES, UMG_RM_N) != 0 ||
        cols_new(&rev, (size_t)DAYS * CAMPAIGNS * REV_COUNTRIES * 3, 2) != 0 ||
        cols_new(&csize, (size_t)DAYS * COHORT_CAMPAIGNS, 1) != 0 ||
        cols_new(&cday, (size_t)DAYS * UMG_ROLLUP_COHORT_DAYS * COHORT_CAMPAIGNS, 2) != 0 ||
        cols_new(&crev, (size_t)DAYS * UMG_ROLLUP_COHORT_DAYS * COHORT_CAMPAIGNS, 2) != 0) {
        fprintf(stderr, "bench_query: out of memory\n");
        return 2;
    }
    size_t i = 0, j = 0;
    for (int32_t d = 0; d < DAYS; d++) {
        for (uint32_t c = 0; c < CAMPAIGNS; c++) {
            for (uint32_t k = 0; k < COUNTRIES; k++, i++) {
                dims(&m, i, d, c, k);
                for (int v = 0; v < UMG_RM_N; v++) {
                    m.v[v][i] = rnd(100);
                }
            }
            for (uint32_t k = 0; k < REV_COUNTRIES * 3; k++, j++) {
                dims(&rev, j, d, c, k / 3);
                rev.x[0][j] = CUR0 + k % 3;
                rev.v[0][j] = rnd(100000000);
                rev.v[1][j] = 1 + rnd(10);
            }
        }
    }
    i = j = 0;
    for (int32_t d = 0; d < DAYS; d++) {
        for (uint32_t c = 0; c < COHORT_CAMPAIGNS; c++, j++) {
            dims(&csize, j, d, c, c % COUNTRIES);
            csize.v[0][j] = 1000 + rnd(1000);
            for (uint32_t n = 0; n < UMG_ROLLUP_COHORT_DAYS; n++, i++) {
                dims(&cday, i, d, c, c % COUNTRIES);
                dims(&crev, i, d, c, c % COUNTRIES);
                cday.x[0][i] = crev.x[0][i] = n;
                cday.v[0][i] = rnd(1000);
                cday.v[1][i] = rnd(3000);
                crev.x[1][i] = CUR0 + (n + c) % 3;
                crev.v[0][i] = rnd(10000000);
                crev.v[1][i] = 1;
            }
        }
    }
    costs_make();
    umg_query_input_t in;
    input_of(&in);
    cols_view(&m, &in.tables[UMG_RT_MAIN]);
    cols_view(&rev, &in.tables[UMG_RT_REVENUE]);
    cols_view(&csize, &in.tables[UMG_RT_COHORT]);
    cols_view(&cday, &in.tables[UMG_RT_COHORT_DAY]);
    cols_view(&crev, &in.tables[UMG_RT_COHORT_REV]);

    int fail = 0;
    size_t bytes;
    umg_query_t *q = parse(UMG_QUERY_OVERVIEW, "day,campaign", NULL);
    double base = baseline(&m, &rev, runs);
    double cold = time_run(q, &in, 1, &bytes); /* the first: the costs read from meta.db into the cache */
    umg_query_input_t one = in;                /* the same report without the helper thread */
    one.beside = NULL;
    double ms1 = time_run(q, &one, runs, &bytes);
    double ms = time_run(q, &in, runs, &bytes);
    printf("{\"bench\":\"query_overview\",\"group_by\":\"day,campaign\",\"rows\":%zu,\"revenue_rows\":%zu,"
           "\"cost_rows\":%d,\"answer_bytes\":%zu,\"ms\":%.1f,\"ms_one_thread\":%.1f,\"ms_costs_uncached\":%.1f,"
           "\"baseline_ms\":%.1f,\"ratio\":%.2f,\"target_ms\":50,\"pass\":%s}\n",
           m.n, rev.n, DAYS * CAMPAIGNS, bytes, ms, ms1, cold, base, ms / base, ms < 50 ? "true" : "false");
    fail |= ms >= 50;
    umg_query_free(q);

    static const char *cm[2] = {"retention", "cumulative_revenue"};
    for (int k = 0; k < 2; k++) {
        q = parse(UMG_QUERY_COHORTS, "day", cm[k]);
        ms = time_run(q, &in, runs, &bytes);
        printf("{\"bench\":\"query_cohorts\",\"metric\":\"%s\",\"group_by\":\"day\",\"cohort_day_rows\":%zu,"
               "\"cohort_rev_rows\":%zu,\"answer_bytes\":%zu,\"ms\":%.1f,\"target_ms\":100,\"pass\":%s}\n",
               cm[k], cday.n, crev.n, bytes, ms, ms < 100 ? "true" : "false");
        fail |= ms >= 100;
        umg_query_free(q);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"bench\":\"query_rss\",\"max_rss_mb\":%.0f}\n", (double)ru.ru_maxrss / 1024);
    costs_drop();
    return fail ? 1 : 0;
}
