/*
 * bench_rollup.c - the in-memory rollups (src/rollup) at the size of a large
 * app: 1,000 campaigns x 50 countries x 90 days = 4.5 million rows of
 * UMG_RT_MAIN.
 *
 *   bench_rollup [days] [campaigns] [countries] [records per day]
 *                (default 90 1000 50 100000)
 *
 * 1. add+merge: records arrive day after day; each adds one counter of its
 *    (day, campaign, country) row (clicks 60%, sessions 25%, impressions 10%,
 *    installs 5%) and UMG_RM_ACTIVE, in batches of 1,000 records with one
 *    delta_reset, the adds and one merge per batch. Baseline in the same
 *    run: the same adds into a dense int64 array indexed by the key (what no
 *    hash table can beat). The stream is generated before either is timed.
 * 2. scan: the 4.5 M rows loaded with umg_rollup_load (day by day, the
 *    (campaign, country) pairs of a day in random order, as merges leave
 *    them), then installs summed by (day, campaign) into a dense array
 *    through umg_rollup_view. Baseline: summing a plain int64 array of as
 *    many elements. Best of 5 runs each.
 * 3. memory: umg_rollup_stats bytes per row of the loaded table.
 * Prints one JSON line per measurement.
 */
#include <stdio.h>
#include <stdlib.h>

#include "umg_rollup.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_rand(void)
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

typedef struct op_s {
    uint16_t day;
    uint16_t campaign; /* 0-based */
    uint8_t country;   /* 0-based */
    uint8_t vi;
} op_t;

static int64_t nrec_day;
static uint32_t ndays, ncamp, nctry;

static void die(const char *what, int rc)
{
    fprintf(stderr, "%s: %s\n", what, umg_strerror(rc));
    exit(1);
}

static umg_rollup_key_t make_key(int32_t day0, uint32_t campaign, uint32_t country)
{
    umg_rollup_key_t k;
    memset(&k, 0, sizeof(k));
    k.day = 20000 + day0;
    k.dim[UMG_RD_SOURCE] = 1 + campaign % 8;
    k.dim[UMG_RD_CAMPAIGN] = 1 + campaign;
    k.dim[UMG_RD_ADSET] = 1001 + campaign;
    k.dim[UMG_RD_COUNTRY] = 5001 + country;
    k.dim[UMG_RD_PLATFORM] = 6001 + campaign % 2;
    return k;
}

static uint8_t pick_counter(void)
{
    uint64_t r = next_rand() % 100;
    return r < 60 ? UMG_RM_CLICKS : r < 85 ? UMG_RM_SESSIONS : r < 95 ? UMG_RM_IMPRESSIONS : UMG_RM_INSTALLS;
}

static void bench_add_merge(void)
{
    size_t nops = (size_t)ndays * (size_t)nrec_day;
    op_t *ops = malloc(nops * sizeof(*ops));
    if (ops == NULL) {
        die("ops", UMG_ENOMEM);
    }
    for (size_t i = 0; i < nops; i++) {
        ops[i] = (op_t){(uint16_t)(i / (size_t)nrec_day), (uint16_t)(next_rand() % ncamp),
                        (uint8_t)(next_rand() % nctry), pick_counter()};
    }
    umg_rollup_t *r;
    umg_rollup_delta_t *d;
    int rc;
    if ((rc = umg_rollup_new(&r)) != UMG_OK || (rc = umg_rollup_delta_new(&d)) != UMG_OK) {
        die("new", rc);
    }
    const size_t batch = 1000;
    uint64_t add_ns = 0, merge_ns = 0;
    for (size_t b = 0; b < nops; b += batch) {
        size_t end = UMG_MIN(b + batch, nops);
        uint64_t t0 = umg_mono_ns();
        umg_rollup_delta_reset(d);
        for (size_t i = b; i < end; i++) {
            umg_rollup_key_t k = make_key(ops[i].day, ops[i].campaign, ops[i].country);
            if ((rc = umg_rollup_add(d, 1, UMG_RT_MAIN, &k, ops[i].vi, 1)) != UMG_OK ||
                (rc = umg_rollup_add(d, 1, UMG_RT_MAIN, &k, UMG_RM_ACTIVE, 1)) != UMG_OK) {
                die("add", rc);
            }
        }
        if ((rc = umg_rollup_delta_flush(d)) != UMG_OK) { /* the queued adds belong to the adds' time */
            die("add", rc);
        }
        uint64_t t1 = umg_mono_ns();
        if ((rc = umg_rollup_merge(r, d)) != UMG_OK) {
            die("merge", rc);
        }
        merge_ns += umg_mono_ns() - t1;
        add_ns += t1 - t0;
    }
    uint64_t adds = 2 * (uint64_t)nops;
    umg_rollup_stats_t st;
    umg_rollup_stats(r, &st);

    /* The baseline: the same adds into a dense array with one slot per possible row. */
    size_t ncells = (size_t)ndays * ncamp * nctry * UMG_RM_N;
    int64_t *dense = calloc(ncells, sizeof(*dense));
    if (dense == NULL) {
        die("dense", UMG_ENOMEM);
    }
    uint64_t t0 = umg_mono_ns();
    for (size_t i = 0; i < nops; i++) {
        size_t row = ((size_t)ops[i].day * ncamp + ops[i].campaign) * nctry + ops[i].country;
        dense[row * UMG_RM_N + ops[i].vi] += 1;
        dense[row * UMG_RM_N + UMG_RM_ACTIVE] += 1;
    }
    uint64_t base_ns = umg_mono_ns() - t0;
    volatile int64_t sink = dense[ncells / 2];
    (void)sink;
    free(dense);

    double s = (double)(add_ns + merge_ns) / 1e9, base_s = (double)base_ns / 1e9;
    printf("{\"bench\":\"rollup_add_merge\",\"records\":%zu,\"adds\":%llu,\"batch_records\":%zu,\"rows\":%llu,"
           "\"seconds\":%.3f,\"adds_per_s\":%.0f,\"add_ns\":%.1f,\"merge_ns_per_add\":%.1f,"
           "\"baseline_dense_adds_per_s\":%.0f,\"ratio_vs_baseline\":%.3f,\"bytes_per_row\":%.1f}\n",
           nops, (unsigned long long)adds, batch, (unsigned long long)st.rows[UMG_RT_MAIN], s, (double)adds / s,
           (double)add_ns / (double)adds, (double)merge_ns / (double)adds, (double)adds / base_s,
           ((double)adds / s) / ((double)adds / base_s), (double)st.bytes / (double)st.rows[UMG_RT_MAIN]);
    fflush(stdout);
    umg_rollup_delta_free(d);
    umg_rollup_free(r);
    free(ops);
}

/* Loads every (day, campaign, country) row, a day's pairs in random order. */
static umg_rollup_t *load_main(void)
{
    umg_rollup_t *r;
    int rc;
    if ((rc = umg_rollup_new(&r)) != UMG_OK) {
        die("new", rc);
    }
    size_t npairs = (size_t)ncamp * nctry;
    uint32_t *perm = malloc(npairs * sizeof(*perm));
    if (perm == NULL) {
        die("perm", UMG_ENOMEM);
    }
    for (size_t i = 0; i < npairs; i++) {
        perm[i] = (uint32_t)i;
    }
    int64_t v[UMG_RM_N] = {0};
    for (uint32_t day = 0; day < ndays; day++) {
        for (size_t i = npairs - 1; i > 0; i--) {
            size_t j = next_rand() % (i + 1);
            uint32_t t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        for (size_t i = 0; i < npairs; i++) {
            umg_rollup_key_t k = make_key((int32_t)day, perm[i] / nctry, perm[i] % nctry);
            for (int j = 0; j < UMG_RM_N; j++) {
                v[j] = (int64_t)(next_rand() % 50);
            }
            if ((rc = umg_rollup_load(r, 1, UMG_RT_MAIN, &k, v)) != UMG_OK) {
                die("load", rc);
            }
        }
    }
    free(perm);
    return r;
}

/* Installs by (day, campaign): the dense array has a cell per day and campaign id up to maxc. */
static int64_t scan_main(umg_rollup_t *r, int64_t *sums, uint32_t maxc, size_t *nrows)
{
    umg_rollup_read_begin(r);
    umg_rollup_view_t v;
    umg_rollup_view(r, 1, UMG_RT_MAIN, &v);
    size_t ncell = (size_t)(v.max_day - v.min_day + 1) * (maxc + 1);
    memset(sums, 0, ncell * sizeof(*sums));
    const int32_t *day = v.day;
    const uint32_t *camp = v.dim[UMG_RD_CAMPAIGN];
    const int64_t *inst = v.v[UMG_RM_INSTALLS];
    int32_t min_day = v.min_day;
    for (size_t i = 0; i < v.n; i++) {
        sums[(size_t)(day[i] - min_day) * (maxc + 1) + camp[i]] += inst[i];
    }
    *nrows = v.n;
    umg_rollup_read_end(r);
    int64_t total = 0;
    for (size_t i = 0; i < ncell; i++) {
        total += sums[i];
    }
    return total;
}

static void bench_scan(void)
{
    uint64_t t0 = umg_mono_ns();
    umg_rollup_t *r = load_main();
    double load_s = (double)(umg_mono_ns() - t0) / 1e9;
    umg_rollup_stats_t st;
    umg_rollup_stats(r, &st);
    uint64_t rows = st.rows[UMG_RT_MAIN];

    int64_t *sums = malloc((size_t)ndays * (ncamp + 1) * sizeof(*sums));
    int64_t *plain = malloc(rows * sizeof(*plain));
    if (sums == NULL || plain == NULL) {
        die("scan arrays", UMG_ENOMEM);
    }
    umg_rollup_read_begin(r);
    umg_rollup_view_t v;
    umg_rollup_view(r, 1, UMG_RT_MAIN, &v);
    memcpy(plain, v.v[UMG_RM_INSTALLS], rows * sizeof(*plain));
    umg_rollup_read_end(r);

    uint64_t best_scan = UINT64_MAX, best_base = UINT64_MAX;
    int64_t total = 0, base_total = 0;
    size_t n = 0;
    for (int run = 0; run < 5; run++) {
        t0 = umg_mono_ns();
        total = scan_main(r, sums, ncamp, &n);
        best_scan = UMG_MIN(best_scan, umg_mono_ns() - t0);
        t0 = umg_mono_ns();
        int64_t s = 0;
        for (size_t i = 0; i < rows; i++) {
            s += plain[i];
        }
        base_total = s;
        __asm__ volatile("" : : "r"(base_total) : "memory");
        best_base = UMG_MIN(best_base, umg_mono_ns() - t0);
    }
    if (total != base_total || n != rows) {
        fprintf(stderr, "scan: total %lld, plain %lld\n", (long long)total, (long long)base_total);
        exit(1);
    }
    printf(
        "{\"bench\":\"rollup_scan_main\",\"rows\":%zu,\"groups\":%zu,\"scan_ms\":%.2f,\"baseline_plain_sum_ms\":%.2f,"
        "\"ratio_vs_baseline\":%.2f,\"scan_rows_per_s\":%.0f,\"load_s\":%.2f}\n",
        n, (size_t)ndays * ncamp, (double)best_scan / 1e6, (double)best_base / 1e6,
        (double)best_scan / (double)best_base, (double)n / ((double)best_scan / 1e9), load_s);
    printf("{\"bench\":\"rollup_memory\",\"rows\":%llu,\"bytes\":%llu,\"bytes_per_row\":%.1f,\"key_and_counter_bytes\":"
           "%zu}\n",
           (unsigned long long)rows, (unsigned long long)st.bytes, (double)st.bytes / (double)rows,
           sizeof(umg_rollup_key_t) + UMG_RM_N * sizeof(int64_t));
    free(sums);
    free(plain);
    umg_rollup_free(r);
}

int main(int argc, char **argv)
{
    ndays = argc > 1 ? (uint32_t)atoi(argv[1]) : 90;
    ncamp = argc > 2 ? (uint32_t)atoi(argv[2]) : 1000;
    nctry = argc > 3 ? (uint32_t)atoi(argv[3]) : 50;
    nrec_day = argc > 4 ? atoll(argv[4]) : 100000;
    if (ndays < 1 || ndays > 65535 || ncamp < 1 || ncamp > 65535 || nctry < 1 || nctry > 255 || nrec_day < 1) {
        fprintf(stderr, "usage: bench_rollup [days<=65535] [campaigns<=65535] [countries<=255] [records per day]\n");
        return 2;
    }
    bench_add_merge();
    bench_scan();
    return 0;
}
