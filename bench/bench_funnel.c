/*
 * bench_funnel.c - GET /v1/reports/funnel's engine (src/query/funnel.c) over
 * the device timelines of a real LMDB store, with a baseline measured in the
 * same run.
 *
 *   bench_funnel [million devices] [runs] [dir]
 *                (default 1, 5, a new directory under /tmp, removed after)
 *
 * The store is filled directly (umg_store_timeline_add, umg_store_device_put;
 * not timed): each device installs on one of 30 days, then has a tutorial
 * event (90%), a signup (70%), two level_up events and a purchase of gems
 * (30%) within 3 days: about 4.9 steps per device. Each device's state has
 * one of 8 sources, 100 campaigns and 20 countries.
 *
 * Timed (median of runs), each in its own read transaction as the report
 * worker does (the funnels with a helper thread taking half of the devices,
 * as the worker lends one, and on one thread alone: ms_one_thread):
 * - baseline: umg_store_timeline_scan over the app with an empty callback
 *   (the cursor walk and the decoding of every step);
 * - funnel steps=install,event:tutorial,event:signup,purchase over the 30
 *   days, window 7d, JSON, without group_by and with group_by=source,campaign
 *   (which reads each entering device's state).
 *
 * One JSON line per figure:
 *   {"bench":"funnel","devices":1000000,"group_by":"","ms":612.3,"baseline_ms":480.1,"ratio":1.28,...}
 * Exit status 1 when a target (1 s for 1 M devices) is missed, 2 on an error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "bench_util.h"
#include "umg_query.h"
#include "umg_store.h"

#define DAYS 30
#define D0 20454 /* 2026-01-01 */
#define S INT64_C(1000000)
#define DAY (86400 * S)
#define BATCH 50000

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_rand(void)
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int64_t rnd(int64_t n)
{
    return (int64_t)(next_rand() % (uint64_t)n);
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

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_funnel: %s: %s\n", what, umg_strerror(rc));
    exit(2);
}

/* Dictionary ids of the names the timelines and device states use. */
static struct {
    uint32_t tutorial, signup, level, gems, source[8], campaign[100], country[20];
} ids;

static uint32_t intern(umg_store_txn_t *tx, const char *s)
{
    uint32_t id;
    int rc = umg_store_intern(tx, umg_slice(s, strlen(s)), &id);
    if (rc != UMG_OK) {
        die("intern", rc);
    }
    return id;
}

static void intern_all(umg_store_txn_t *tx)
{
    static const char *const sources[8] = {"meta",     "google",     "tiktok", "unity",
                                           "applovin", "ironsource", "snap",   "mintegral"};
    char t[32];
    ids.tutorial = intern(tx, "tutorial");
    ids.signup = intern(tx, "signup");
    ids.level = intern(tx, "level_up");
    ids.gems = intern(tx, "gems");
    for (int i = 0; i < 8; i++) {
        ids.source[i] = intern(tx, sources[i]);
    }
    for (int i = 0; i < 100; i++) {
        snprintf(t, sizeof(t), "campaign%03d", i);
        ids.campaign[i] = intern(tx, t);
    }
    for (int i = 0; i < 20; i++) {
        snprintf(t, sizeof(t), "%c%c", 'A' + i / 5, 'A' + i % 5);
        ids.country[i] = intern(tx, t);
    }
}

/* One device's timeline and state; *offset numbers the steps as log offsets would. */
static size_t add_device(umg_store_txn_t *tx, uint32_t app, uint64_t i, uint64_t *offset)
{
    uint64_t key = umg_hash64(&i, sizeof(i), 0x4b45) | 1; /* device keys are hashes, as the store makes them */
    int64_t t = (D0 + rnd(DAYS)) * DAY + rnd(DAY);
    umg_store_step_t st[6];
    size_t n = 0;
    st[n++] = (umg_store_step_t){.ts_us = t, .kind = UMG_STORE_STEP_INSTALL};
    int64_t at = t;
    if (rnd(10) < 9) {
        at += rnd(600 * S);
        st[n++] = (umg_store_step_t){.ts_us = at, .name = ids.tutorial, .kind = UMG_STORE_STEP_EVENT};
    }
    if (rnd(10) < 7) {
        at += rnd(3600 * S);
        st[n++] = (umg_store_step_t){.ts_us = at, .name = ids.signup, .kind = UMG_STORE_STEP_EVENT};
    }
    for (int k = 0; k < 2; k++) {
        at += rnd(6 * 3600 * S);
        st[n++] = (umg_store_step_t){.ts_us = at, .name = ids.level, .kind = UMG_STORE_STEP_EVENT};
    }
    if (rnd(10) < 3) {
        at += rnd(3 * DAY);
        st[n++] = (umg_store_step_t){.ts_us = at, .name = ids.gems, .kind = UMG_STORE_STEP_PURCHASE};
    }
    for (size_t k = 0; k < n; k++) {
        int rc = umg_store_timeline_add(tx, app, key, (*offset)++, &st[k]);
        if (rc != UMG_OK) {
            die("timeline add", rc);
        }
    }
    umg_store_device_t d;
    memset(&d, 0, sizeof(d));
    d.key = key;
    d.first_seen_us = t;
    d.attr.install_ts_us = t;
    d.attr.install.source = ids.source[rnd(8)];
    d.attr.install.campaign = ids.campaign[rnd(100)];
    d.country = ids.country[rnd(20)];
    uint64_t dev_ids[UMG_ATTR_MAX_IDS] = {umg_hash64(&key, sizeof(key), 1) | 1};
    int rc = umg_store_device_put(tx, app, dev_ids, &d, NULL);
    if (rc != UMG_OK) {
        die("device put", rc);
    }
    return n;
}

/* --------------------------------------------------- the report's inputs */

typedef struct job_s {
    umg_store_t *st;
    umg_store_txn_t *tx, *tx1; /* the second part's, on the helper thread */
    uint32_t app;
    umg_store_devwalk_t *walk, *walk1; /* as the daemon reads device states: in key order through a cursor */
    umg_helper_t *helper;              /* NULL: the report on one thread */
} job_t;

static int j_string(void *ctx, uint32_t id, umg_slice_t *out)
{
    return umg_store_string(((job_t *)ctx)->tx, id, out);
}

static int j_lookup(void *ctx, umg_slice_t s, uint32_t *id)
{
    return umg_store_lookup(((job_t *)ctx)->tx, s, id);
}

static int j_scan(void *ctx, umg_funnel_device_cb fn, void *const fn_ctx[2])
{
    job_t *j = ctx;
    return umg_store_timeline_scan_par(j->tx, j->app, fn, fn_ctx, j->helper,
                                       j->helper != NULL ? umg_helper_beside : NULL, umg_helper_join);
}

static int j_device(void *ctx, int part, uint64_t key, uint32_t dims[UMG_RD_N])
{
    job_t *j = ctx;
    umg_store_txn_t **tx = part == 0 ? &j->tx : &j->tx1;
    umg_store_devwalk_t **walk = part == 0 ? &j->walk : &j->walk1;
    int rc = *tx != NULL ? UMG_OK : umg_store_begin(j->st, 0, tx);
    rc = rc || *walk != NULL ? rc : umg_store_devwalk_open(*tx, walk);
    return rc ? rc : umg_store_devwalk_dims(*walk, key, dims);
}

/* The baseline's callback: nothing but a count, so the walk is not optimised away. */
static int count_steps(void *ctx, uint64_t key, const umg_store_step_t *tl, size_t n)
{
    (void)key, (void)tl;
    *(size_t *)ctx += n;
    return 0;
}

static double time_baseline(umg_store_t *st, uint32_t app, int runs, size_t *steps)
{
    double t[32];
    for (int r = 0; r < runs; r++) {
        umg_store_txn_t *tx;
        size_t n = 0;
        double t0 = now_ms();
        int rc = umg_store_begin(st, 0, &tx);
        rc = rc ? rc : umg_store_timeline_scan(tx, app, count_steps, &n);
        umg_store_abort(tx);
        t[r] = now_ms() - t0;
        if (rc != UMG_OK) {
            die("scan", rc);
        }
        *steps = n;
    }
    return median(t, runs);
}

static double time_funnel(umg_store_t *st, uint32_t app, const umg_tz_t *tz, const char *group_by, int runs,
                          umg_helper_t *helper, umg_buf_t *answer)
{
    char to[11];
    umg_date_format(D0 + DAYS - 1, to);
    umg_funnel_params_t p = {.from = UMG_SLICE("2026-01-01"),
                             .to = umg_slice(to, 10),
                             .steps = UMG_SLICE("install,event:tutorial,event:signup,purchase"),
                             .group_by = umg_slice(group_by, strlen(group_by))};
    umg_funnel_t *f;
    umg_query_error_t err;
    if (umg_funnel_parse(&p, &f, &err) != UMG_OK) {
        fprintf(stderr, "bench_funnel: %s: %s\n", err.field, err.message);
        exit(2);
    }
    double t[32];
    for (int r = 0; r < runs; r++) {
        job_t j = {.st = st, .app = app, .helper = helper};
        umg_funnel_input_t in = {.app = "app_0123456789abcdef",
                                 .timezone = "UTC",
                                 .tz = tz,
                                 .ctx = &j,
                                 .string = j_string,
                                 .lookup = j_lookup,
                                 .scan = j_scan,
                                 .device = j_device};
        umg_buf_reset(answer);
        double t0 = now_ms();
        int rc = umg_store_begin(st, 0, &j.tx);
        rc = rc ? rc : umg_funnel_run(f, &in, answer);
        umg_store_devwalk_close(j.walk);
        umg_store_devwalk_close(j.walk1);
        if (j.tx1 != NULL) {
            umg_store_abort(j.tx1);
        }
        umg_store_abort(j.tx);
        t[r] = now_ms() - t0;
        if (rc != UMG_OK) {
            die("funnel", rc);
        }
    }
    umg_funnel_free(f);
    return median(t, runs);
}

/* The totals' devices of the answer's first step, as a check that every device entered. */
static long long totals_entered(const umg_buf_t *b)
{
    const char *p = strstr(b->ptr, "\"totals\":{\"steps\":[{\"step\":\"install\",\"devices\":");
    return p != NULL ? atoll(p + strlen("\"totals\":{\"steps\":[{\"step\":\"install\",\"devices\":")) : -1;
}

int main(int argc, char **argv)
{
    double millions = argc > 1 ? atof(argv[1]) : 1.0;
    int runs = argc > 2 ? atoi(argv[2]) : 5;
    if (millions <= 0 || runs < 1 || runs > 31) {
        fprintf(stderr, "usage: bench_funnel [million devices] [runs 1..31] [dir]\n");
        return 2;
    }
    char dir[512];
    int own_dir = argc <= 3;
    if (own_dir) {
        char tmpl[] = "/tmp/umg_bench_funnel_XXXXXX";
        if (mkdtemp(tmpl) == NULL) {
            perror("mkdtemp");
            return 2;
        }
        snprintf(dir, sizeof(dir), "%s", tmpl);
    } else {
        snprintf(dir, sizeof(dir), "%s", argv[3]);
    }
    umg_log_min_level = UMG_LOG_WARN;
    umg_store_config_t sc = {.map_bytes = 64ll << 30};
    umg_store_t *st;
    umg_store_txn_t *tx;
    int rc = umg_store_open(dir, &sc, &st);
    if (rc != UMG_OK) {
        die("open", rc);
    }
    const uint32_t app = 7;
    uint64_t ndev = (uint64_t)(millions * 1e6), offset = 1;
    size_t nsteps = 0;
    double t0 = now_ms();
    for (uint64_t i = 0; i < ndev; i += BATCH) {
        if ((rc = umg_store_begin(st, 1, &tx)) != UMG_OK) {
            die("begin", rc);
        }
        if (i == 0) {
            intern_all(tx);
        }
        for (uint64_t k = i; k < i + BATCH && k < ndev; k++) {
            nsteps += add_device(tx, app, k, &offset);
        }
        if ((rc = umg_store_commit(tx)) != UMG_OK) {
            die("commit", rc);
        }
    }
    double build_s = (now_ms() - t0) / 1000;
    umg_tz_cache_t *tzc;
    const umg_tz_t *tz;
    if ((rc = umg_tz_cache_new(&tzc)) != UMG_OK || (rc = umg_tz_cache_get(tzc, "UTC", &tz)) != UMG_OK) {
        die("time zone", rc);
    }

    size_t scanned = 0;
    double base = time_baseline(st, app, runs, &scanned);
    int fail = scanned != nsteps;
    umg_buf_t answer = {0}, one = {0};
    umg_helper_t *helper; /* as the report worker lends one */
    if ((rc = umg_helper_new(&helper)) != UMG_OK) {
        die("helper", rc);
    }
    static const char *const groupings[2] = {"", "source,campaign"};
    for (int g = 0; g < 2; g++) {
        double ms1 = time_funnel(st, app, tz, groupings[g], runs, NULL, &one);
        double ms = time_funnel(st, app, tz, groupings[g], runs, helper, &answer);
        long long entered = totals_entered(&answer);
        double target = 1000 * millions;
        printf("{\"bench\":\"funnel\",\"devices\":%llu,\"timeline_steps\":%zu,\"funnel_steps\":4,\"group_by\":\"%s\","
               "\"entered\":%lld,\"answer_bytes\":%zu,\"ms\":%.1f,\"ms_one_thread\":%.1f,\"baseline_ms\":%.1f,"
               "\"ratio\":%.2f,\"target_ms\":%.0f,\"pass\":%s,\"build_s\":%.1f}\n",
               (unsigned long long)ndev, nsteps, groupings[g], entered, answer.len, ms, ms1, base, ms / base, target,
               ms < target ? "true" : "false", build_s);
        /* the helper thread changes nothing in the answer */
        fail |= ms >= target || entered != (long long)ndev || one.len != answer.len ||
                memcmp(one.ptr, answer.ptr, one.len) != 0;
    }
    umg_helper_free(helper);
    umg_buf_free(&answer);
    umg_buf_free(&one);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"bench\":\"funnel_rss\",\"max_rss_mb\":%.0f}\n", (double)ru.ru_maxrss / 1024);
    umg_tz_cache_free(tzc);
    umg_store_close(st);
    if (own_dir) {
        char cmd[700];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0) {
            fprintf(stderr, "could not remove %s\n", dir);
        }
    }
    return fail ? 1 : 0;
}
