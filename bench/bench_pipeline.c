/*
 * bench_pipeline.c - the attribution pipeline over a real event log and a
 * real LMDB store, as `unmogrowp serve` runs it (one pipeline thread reading
 * every partition in log order).
 *
 *   bench_pipeline [million preload touches] [million mixed records] [dir]
 *                  (default 10, 2, a new directory under /tmp, removed after)
 *
 * 1. Preload: the preload touches are appended to the log (fsync never) and
 *    the pipeline applies them: touches/s, and bytes of store per touch.
 * 2. Mixed: records in the mix (80% touches, 5% installs, 15% in-app
 *    events) are appended after them and the pipeline applies them with the
 *    preloaded touches in the store: records/s, and the install decision time
 *    (p50 / p99 / max) the pipeline measures per install.
 * Touches carry a GAID for 60% of them, an IP and an Android User-Agent
 * always (the probabilistic key), a click id for clicks (70%); half the
 * installs come from devices that were touched, a tenth of those through the
 * referrer's click id. Appending is not timed; only the pipeline is.
 * Prints one line per phase and a JSON summary line for bench/attribution.sh.
 * AB=ROLLUPS or AB=FRAUD: what the report rollups or the fraud rules cost: two
 * pipelines over their own stores and the same log, without and with, taking
 * turns on chunks of the mixed records (AB_CHUNK, default 100,000); see ab_run.
 * AB=NONE: the same with both legs alike (ROLLUPS and FRAUD as set), the
 * method's own noise. AB=BATCH: leg 1 with larger store transactions
 * (attribution.batch BATCH_B, default 100,000 records, and batch_time
 * BATCH_MS_B, default 500 ms) than leg 0 (BATCH and BATCH_MS, else the
 * daemon's defaults). AB=DECODE: leg 1 with the decoder thread (the daemon's default), leg 0 without it
 * (DECODE=0 alone runs without it). AB=DEVCACHE: leg 1 with the store's device cache (the daemon's default,
 * 512 MiB), leg 0 without it (DEVCACHE=0 alone runs without it). AB=SYNC: leg 1 syncing the store on a helper
 * thread (the daemon's default), leg 0 on the pipeline thread (SYNC=0 alone). Between batches each pipeline
 * syncs its store every SYNC_MS (default 1000, attribution.sync_interval), as the daemon's pipeline thread does.
 * BENCH_AB_TRACE=FILE writes each chunk's leg and time span, to split a profile by leg (bench/perf_legs.py). To profile
 * the mixed phase alone: mkfifo /tmp/ctl; BENCH_PERF_CTL=/tmp/ctl perf record -D -1
 * --control fifo:/tmp/ctl -g build/bench/bench_pipeline 2 1
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "umg_bus.h"
#include "umg_event.h"
#include "umg_pipeline.h"
#include "umg_rollup.h"
#include "umg_touch.h"
#include "umg_store.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_rand(void)
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static const char *const sources[] = {"meta",     "google",     "tiktok", "unity",
                                      "applovin", "ironsource", "snap",   "mintegral"};

typedef struct appender_s {
    const umg_bus_ops_t *ops;
    umg_bus_t *bus;
    umg_bus_rec_t recs[1000];
    char *bufs[1000];
    size_t n;
    _Atomic int pending;
} appender_t;

static void on_done(umg_bus_batch_t *b, int status)
{
    appender_t *a = b->data;
    if (status != UMG_OK) {
        fprintf(stderr, "append failed: %s\n", umg_strerror(status));
        exit(1);
    }
    a->pending = 0;
}

static void flush(appender_t *a)
{
    if (a->n == 0) {
        return;
    }
    umg_bus_batch_t b = {.recs = a->recs, .n = a->n, .done = on_done, .data = a};
    a->pending = 1;
    int rc;
    while ((rc = a->ops->submit(a->bus, &b)) == UMG_EFULL) {
        usleep(1000);
    }
    if (rc != UMG_OK) {
        fprintf(stderr, "submit: %s\n", umg_strerror(rc));
        exit(1);
    }
    while (a->pending) {
        usleep(100);
    }
    a->n = 0;
}

static void add(appender_t *a, int kind, int64_t ts, const char *json, int len)
{
    umg_bus_rec_t *r = &a->recs[a->n];
    memset(r, 0, sizeof(*r));
    if (a->bufs[a->n] == NULL) {
        a->bufs[a->n] = malloc(2048);
    }
    memcpy(a->bufs[a->n], json, (size_t)len);
    r->app = 1;
    r->partition = (uint16_t)(next_rand() % 16);
    r->kind = (uint8_t)kind;
    r->event_us = ts;
    r->recv_us = ts;
    umg_uuid_v4(&r->id);
    r->payload = a->bufs[a->n];
    r->len = (uint32_t)len;
    if (++a->n == 1000) {
        flush(a);
    }
}

static void gaid_of(uint64_t dev, char out[37])
{
    snprintf(out, 37, "%08x-%04x-4%03x-8%03x-%012llx", (unsigned)(dev >> 32), (unsigned)(dev >> 16) & 0xffff,
             (unsigned)dev & 0xfff, (unsigned)(dev >> 12) & 0xfff,
             (unsigned long long)(dev * 2654435761u) & 0xffffffffffffull);
}

static void ip_of(uint64_t dev, char out[20])
{
    snprintf(out, 20, "10.%u.%u.%u", (unsigned)(dev >> 16) & 255, (unsigned)(dev >> 8) & 255, (unsigned)dev & 255);
}

static const char *UA = "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/UD1A.230803.041; wv) AppleWebKit/537.36";

/* A touch by device dev at ts; its click id is c<dev> so an install can name it in its referrer. */
static int touch_json(char *out, size_t cap, uint64_t dev, int64_t ts)
{
    char t[32], g[37], ip[20];
    umg_time_format_rfc3339(ts, t);
    gaid_of(dev, g);
    ip_of(dev, ip);
    int click = next_rand() % 10 < 7, with_gaid = next_rand() % 10 < 6;
    const char *src = sources[next_rand() % 8];
    char device[80] = "";
    if (with_gaid) {
        snprintf(device, sizeof(device), ",\"device\":{\"gaid\":\"%s\"}", g);
    }
    char cid[48] = "";
    if (click) {
        snprintf(cid, sizeof(cid), ",\"click_id\":\"c%llx\"", (unsigned long long)dev);
    }
    return snprintf(out, cap,
                    "{\"touch_id\":\"11111111-2222-4333-8444-555555555555\",\"type\":\"%s\",\"ts\":\"%s\","
                    "\"received_at\":\"%s\",\"app_id\":\"app_x\",\"source\":\"%s\",\"campaign\":\"%s_c%u\","
                    "\"adset\":\"as%u\"%s%s,\"ip\":\"%s\",\"user_agent\":\"%s\"}",
                    click ? "click" : "impression", t, t, src, src, (unsigned)(next_rand() % 20),
                    (unsigned)(next_rand() % 50), cid, device, ip, UA);
}

static int event_json(char *out, size_t cap, const char *type, uint64_t dev, int64_t ts, int referrer)
{
    char t[32], g[37], ip[20], id[37], extra[160] = "";
    umg_uuid_t u;
    umg_uuid_v4(&u);
    umg_uuid_format(&u, id);
    umg_time_format_rfc3339(ts, t);
    gaid_of(dev, g);
    ip_of(dev, ip);
    if (referrer) {
        snprintf(extra, sizeof(extra), ",\"install_referrer\":{\"referrer\":\"utm_source%%3Dx%%26click_id%%3Dc%llx\"}",
                 (unsigned long long)dev);
    }
    if (strcmp(type, "event") == 0) {
        snprintf(extra, sizeof(extra), ",\"name\":\"level_complete\"");
    } else if (strcmp(type, "purchase") == 0) {
        snprintf(extra, sizeof(extra), ",\"name\":\"gems\",\"revenue\":1.99,\"currency\":\"USD\"");
    }
    return snprintf(out, cap,
                    "{\"event_id\":\"%s\",\"type\":\"%s\",\"ts\":\"%s\",\"received_at\":\"%s\",\"app_id\":\"app_x\","
                    "\"device\":{\"gaid\":\"%s\",\"platform\":\"android\",\"os_version\":\"14\",\"model\":\"Pixel 8\","
                    "\"locale\":\"en_US\"},"
                    "\"ip\":\"%s\"%s}",
                    id, type, t, t, g, ip, extra);
}

static int count_touch(void *ctx, size_t i, umg_touch_t *t, const umg_touch_error_t *e)
{
    (void)i;
    (void)e;
    *(uint64_t *)ctx += t != NULL;
    return 0;
}

static int count_event(void *ctx, size_t i, umg_event_t *ev, const umg_event_error_t *e)
{
    (void)i;
    (void)e;
    *(uint64_t *)ctx += ev != NULL;
    return 0;
}

/*
 * The baseline measured in the same run: reading records [from, to) from the
 * log and decoding their stored JSON, as the pipeline does, without the store
 * or the attribution core. Returns seconds; *decoded counts the records.
 */
static double run_decode_only(const umg_bus_ops_t *ops, umg_bus_t *bus, uint64_t from, uint64_t to, uint64_t *decoded)
{
    umg_event_decoder_t *ed;
    umg_touch_decoder_t *td;
    umg_bus_reader_t *r;
    umg_bus_read_opts_t o = {.partition = -1, .from_offset = from, .to_offset = to};
    if (umg_event_decoder_new(1 << 20, &ed) != UMG_OK || umg_touch_decoder_new(1 << 20, &td) != UMG_OK ||
        ops->reader_open(bus, &o, &r) != UMG_OK) {
        fprintf(stderr, "decode-only setup failed\n");
        exit(1);
    }
    uint64_t t0 = umg_mono_ns();
    umg_bus_msg_t m;
    *decoded = 0;
    while (ops->reader_next(r, &m) == UMG_OK) {
        if (m.kind == UMG_BUS_KIND_TOUCH) {
            umg_touch_limits_t tl = umg_touch_limits_stored(m.recv_us);
            umg_touch_error_t err;
            umg_touch_decode(td, m.payload, m.len, &tl, count_touch, decoded, &err);
        } else {
            size_t n;
            int batch;
            umg_event_limits_t lim = umg_event_limits_stored(m.recv_us);
            if (umg_event_decoder_parse(ed, m.payload, m.len, 1, &n, &batch, NULL) == UMG_OK) {
                umg_event_decoder_foreach(ed, &lim, count_event, decoded);
            }
        }
    }
    double s = (double)(umg_mono_ns() - t0) / 1e9;
    ops->reader_close(r);
    umg_event_decoder_free(ed);
    umg_touch_decoder_free(td);
    return s;
}

/* CPU seconds of the calling thread: steadier than wall time when other work shares the cores. */
static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double last_cpu_s;     /* the CPU time of the last run_pipeline */
static long last_faults;      /* the page faults (minor and major) of the process during the last run_pipeline */
static long long last_wbytes; /* the bytes the process wrote (wchar of /proc/self/io) during the last run_pipeline */

/* The bytes the process has written through write calls so far (wchar), or 0 where /proc is not there. */
static long long wchar_now(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    long long v = 0;
    char line[128];
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "wchar: %lld", &v) == 1) {
            break;
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    return v;
}

static long faults_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt + ru.ru_majflt;
}

/* BENCH_PERF_CTL=FIFO: "enable" / "disable" written to perf's control FIFO around the timed mixed
 * phase, so that `perf record -D -1 --control fifo:FIFO` profiles only that phase. */
static void perf_ctl(const char *cmd)
{
    const char *path = getenv("BENCH_PERF_CTL");
    FILE *f = path != NULL ? fopen(path, "w") : NULL;
    if (f != NULL) {
        fprintf(f, "%s\n", cmd);
        fclose(f);
    }
}

static double run_pipeline(umg_pipeline_t *p, uint64_t until)
{
    uint64_t t0 = umg_mono_ns();
    double c0 = thread_cpu_s();
    long f0 = faults_now();
    long long w0 = wchar_now();
    size_t n;
    while (umg_pipeline_next_offset(p) < until) {
        if (umg_pipeline_step(p, &n) != UMG_OK) {
            fprintf(stderr, "pipeline step failed\n");
            exit(1);
        }
        umg_pipeline_maintain(p); /* the store synced every second, as the daemon's pipeline thread does */
    }
    last_cpu_s = thread_cpu_s() - c0;
    last_faults = faults_now() - f0;
    last_wbytes = wchar_now() - w0;
    return (double)(umg_mono_ns() - t0) / 1e9;
}

/* One pipeline over its own store; rollups and fraud rules as ROLLUPS and FRAUD say, unless ab names one of
 * them: then leg 0 runs without it and leg 1 with it. */
typedef struct leg_s {
    umg_store_t *st;
    umg_pipeline_t *p;
    umg_rollup_t *rollup;
    umg_tz_cache_t *tzc;
} leg_t;

static int env_flag(const char *var, const char *ab, int leg, int dflt)
{
    if (ab != NULL && strcmp(ab, var) == 0) {
        return leg;
    }
    const char *v = getenv(var);
    return v == NULL ? dflt : atoi(v) != 0;
}

static int leg_open(leg_t *g, const char *dir, const umg_store_config_t *sc, appender_t *a, const char *ab, int leg)
{
    memset(g, 0, sizeof(*g));
    umg_store_config_t c = *sc;
    /* DEVCACHE=0: without the writer's device cache (attribution.device_cache 0). */
    c.device_cache_bytes = env_flag("DEVCACHE", ab, leg, 1) ? c.device_cache_bytes : 0;
    if (umg_store_open(dir, &c, &g->st) != UMG_OK) {
        return UMG_EIO;
    }
    umg_pipeline_config_t pc;
    umg_pipeline_config_defaults(&pc);
    int big = ab != NULL && strcmp(ab, "BATCH") == 0 && leg == 1;
    const char *b = getenv(big ? "BATCH_B" : "BATCH"), *bms = getenv(big ? "BATCH_MS_B" : "BATCH_MS");
    pc.batch = b != NULL ? atoll(b) : big ? 100000 : pc.batch;
    pc.batch_ms = bms != NULL ? atoll(bms) : big ? 500 : pc.batch_ms;
    /* FRAUD=0: without the fraud rules (they run by default, as in the daemon). */
    pc.fraud = env_flag("FRAUD", ab, leg, 1);
    pc.sync_interval_ms = getenv("SYNC_MS") != NULL ? atoll(getenv("SYNC_MS")) : pc.sync_interval_ms;
    /* SYNC=0: the store synced on the pipeline thread (before 2026-11-29, fourteenth session). */
    pc.sync_beside = env_flag("SYNC", ab, leg, 1);
    /* DECODE=0: the pipeline thread decodes the records itself (attribution.decode_thread=false). */
    pc.decode_thread = env_flag("DECODE", ab, leg, 1);
    if (umg_pipeline_new(&pc, g->st, a->ops, a->bus, NULL, NULL, &g->p) != UMG_OK) {
        return UMG_ENOMEM;
    }
    /* ROLLUPS=1: the pipeline also keeps the report rollups, as the daemon does. */
    if (env_flag("ROLLUPS", ab, leg, 0) &&
        (umg_tz_cache_new(&g->tzc) != UMG_OK || umg_rollup_new(&g->rollup) != UMG_OK ||
         umg_pipeline_set_reports(g->p, g->rollup, g->tzc) != UMG_OK)) {
        return UMG_ENOMEM;
    }
    return UMG_OK;
}

static void leg_close(leg_t *g)
{
    umg_pipeline_free(g->p);
    umg_rollup_free(g->rollup);
    umg_tz_cache_free(g->tzc);
    umg_store_close(g->st);
}

/*
 * The mixed records through both legs, taking turns on chunks of AB_CHUNK records (default 100,000) in the
 * order ABBA ABBA ..., so that the machine's drift (its speed varies by tens of percent over minutes) falls on
 * both alike. A turn ends with the store transaction that reaches its chunk's end, so it may take some records of
 * the next (up to attribution.batch, or batch_time's worth); a chunk of two transactions or more keeps that small.
 * Prints each leg's records/s over all its chunks, what the second costs against the first, and the median of that cost
 * over the pairs of chunks.
 */
static void ab_run(leg_t *legs, const char *var, uint64_t npre, uint64_t nmix, double decode_per_s)
{
    uint64_t chunk = getenv("AB_CHUNK") != NULL ? (uint64_t)atoll(getenv("AB_CHUNK")) : 100000;
    chunk = chunk < 1000 ? 1000 : chunk;
    size_t npairs = (size_t)((nmix + chunk - 1) / chunk);
    double *cost = calloc(npairs ? npairs : 1, sizeof(double)), secs[2] = {0, 0}, cpu[2] = {0, 0};
    if (npairs == 0 || cost == NULL) {
        fprintf(stderr, "A/B: no mixed records to take turns on\n");
        exit(1);
    }
    long faults[2] = {0, 0};
    long long wbytes[2] = {0, 0};
    uint64_t recs[2] = {0, 0};
    /* BENCH_AB_TRACE=FILE: each chunk's leg and CLOCK_MONOTONIC span in ns, to split a profile by leg
     * (perf record -k CLOCK_MONOTONIC; bench/perf_legs.py). */
    FILE *trace = getenv("BENCH_AB_TRACE") != NULL ? fopen(getenv("BENCH_AB_TRACE"), "w") : NULL;
    perf_ctl("enable");
    for (size_t k = 0; k < npairs; k++) {
        uint64_t until = npre + (k + 1) * chunk < npre + nmix ? npre + (k + 1) * chunk : npre + nmix;
        double rate[2];
        for (int j = 0; j < 2; j++) {
            int l = (int)(k % 2) ^ j; /* ABBA: the pair's first leg alternates */
            uint64_t from = umg_pipeline_next_offset(legs[l].p), t0 = umg_mono_ns();
            double sec = run_pipeline(legs[l].p, until);
            uint64_t n = umg_pipeline_next_offset(legs[l].p) - from;
            if (trace != NULL) {
                fprintf(trace, "%d %llu %llu\n", l, (unsigned long long)t0, (unsigned long long)umg_mono_ns());
            }
            rate[l] = (double)n / sec;
            secs[l] += sec;
            cpu[l] += last_cpu_s;
            faults[l] += last_faults;
            wbytes[l] += last_wbytes;
            recs[l] += n;
        }
        cost[k] = (1 - rate[1] / rate[0]) * 100;
    }
    perf_ctl("disable");
    if (trace != NULL) {
        fclose(trace);
    }
    bench_sort_doubles(cost, npairs);
    double off = (double)recs[0] / secs[0], on = (double)recs[1] / secs[1];
    double med = npairs % 2 ? cost[npairs / 2] : (cost[npairs / 2 - 1] + cost[npairs / 2]) / 2;
    printf("A/B %s, %zu pairs of %llu records: %s=0 %.0f records/s, %s=1 %.0f records/s: %.1f%% slower over all "
           "chunks, %.1f%% at the median pair (pairs %.1f%% to %.1f%%); the pipeline thread's CPU time %.2f s and "
           "%.2f s; page faults %ld and %ld; bytes written per record %.0f and %.0f\n",
           var, npairs, (unsigned long long)chunk, var, off, var, on, (1 - on / off) * 100, med, cost[0],
           cost[npairs - 1], cpu[0], cpu[1], faults[0], faults[1], (double)wbytes[0] / (double)recs[0],
           (double)wbytes[1] / (double)recs[1]);
    printf("{\"ab\":\"%s\",\"ab_pairs\":%zu,\"ab_chunk\":%llu,\"off_records_per_s\":%.0f,\"on_records_per_s\":%.0f,"
           "\"cost_pct\":%.2f,\"pair_cost_median_pct\":%.2f,\"pair_cost_min_pct\":%.2f,\"pair_cost_max_pct\":%.2f,"
           "\"off_cpu_s\":%.3f,\"on_cpu_s\":%.3f,\"off_wbytes_per_record\":%.0f,\"on_wbytes_per_record\":%.0f,"
           "\"decode_only_per_s\":%.0f}\n",
           var, npairs, (unsigned long long)chunk, off, on, (1 - on / off) * 100, med, cost[0], cost[npairs - 1],
           cpu[0], cpu[1], (double)wbytes[0] / (double)recs[0], (double)wbytes[1] / (double)recs[1], decode_per_s);
    free(cost);
    leg_close(&legs[0]);
    leg_close(&legs[1]);
}

/* The log closed, and the bench's directory removed when it made it. */
static int finish(appender_t *a, const char *dir, int own_dir)
{
    a->ops->close(a->bus);
    if (own_dir) {
        char cmd[700];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0) {
            fprintf(stderr, "could not remove %s\n", dir);
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    double pre_m = argc > 1 ? atof(argv[1]) : 10.0, mix_m = argc > 2 ? atof(argv[2]) : 2.0;
    char dir[512];
    int own_dir = argc <= 3;
    if (own_dir) {
        char tmpl[] = "/tmp/umg_bench_pipeline_XXXXXX";
        if (mkdtemp(tmpl) == NULL) {
            perror("mkdtemp");
            return 1;
        }
        snprintf(dir, sizeof(dir), "%s", tmpl);
    } else {
        snprintf(dir, sizeof(dir), "%s", argv[3]);
    }
    uint64_t npre = (uint64_t)(pre_m * 1e6), nmix = (uint64_t)(mix_m * 1e6);
    char logdir[600], storedir[600];
    snprintf(logdir, sizeof(logdir), "%s/log", dir);
    snprintf(storedir, sizeof(storedir), "%s/attr", dir);
    umg_log_min_level = UMG_LOG_WARN;

    appender_t *a = calloc(1, sizeof(*a));
    a->ops = &umg_bus_log_ops;
    umg_bus_config_t bc;
    umg_bus_config_defaults(&bc);
    bc.dir = logdir;
    bc.fsync_policy = UMG_FSYNC_NEVER;
    bc.segment_bytes = 1ll << 30;
    if (a->ops->open(&bc, &a->bus) != UMG_OK) {
        fprintf(stderr, "cannot open the log in %s\n", logdir);
        return 1;
    }
    umg_store_config_t sc = {.map_bytes = 64ll << 30, .device_cache_bytes = 512ll << 20}; /* the daemon's */
    /* AB=ROLLUPS or AB=FRAUD: two pipelines, each with its own store, over the same log, one with VAR=0 and
     * one with VAR=1, taking turns on chunks of the mixed records (ab_run). */
    const char *ab = getenv("AB");
    int nlegs = ab != NULL && (strcmp(ab, "ROLLUPS") == 0 || strcmp(ab, "FRAUD") == 0 || strcmp(ab, "NONE") == 0 ||
                               strcmp(ab, "BATCH") == 0 || strcmp(ab, "DECODE") == 0 || strcmp(ab, "DEVCACHE") == 0 ||
                               strcmp(ab, "SYNC") == 0)
                    ? 2
                    : 1;
    if (ab != NULL && nlegs == 1) {
        fprintf(stderr, "AB must be ROLLUPS, FRAUD, DECODE, DEVCACHE, SYNC, BATCH or NONE\n");
        return 1;
    }
    leg_t legs[2];
    for (int l = 0; l < nlegs; l++) {
        char d[620];
        snprintf(d, sizeof(d), "%s%s", storedir, nlegs == 1 ? "" : l == 0 ? "-a" : "-b");
        if (leg_open(&legs[l], d, &sc, a, nlegs == 1 ? NULL : ab, l) != UMG_OK) {
            fprintf(stderr, "cannot set up the pipeline over %s\n", d);
            return 1;
        }
    }
    umg_store_t *st = legs[0].st;
    umg_pipeline_t *p = legs[0].p;
    int rollups = legs[0].rollup != NULL;

    /* Devices 1..ndev; touches spread over the 20 days before T, about 2 per device. */
    const int64_t T = umg_now_us() - 86400ll * 1000000;
    uint64_t ndev = npre / 2 + 1;
    char json[2048];
    fprintf(stderr, "appending %llu preload touches...\n", (unsigned long long)npre);
    for (uint64_t i = 0; i < npre; i++) {
        uint64_t dev = 1 + next_rand() % ndev;
        int64_t ts = T - 20ll * 86400 * 1000000 + (int64_t)(i * (20ull * 86400 * 1000000 / (npre + 1)));
        add(a, UMG_BUS_KIND_TOUCH, ts, json, touch_json(json, sizeof(json), dev, ts));
    }
    flush(a);
    double pre_s = run_pipeline(p, npre);
    for (int l = 1; l < nlegs; l++) {
        run_pipeline(legs[l].p, npre);
    }
    umg_store_stats_t ss;
    umg_store_stats(st, &ss);
    double touches_n = (double)(ss.touches ? ss.touches : 1);
    double disk_per_touch = (double)ss.total_bytes / touches_n, index_per_touch = (double)ss.index_bytes / touches_n;
    double bytes_per_touch = disk_per_touch + index_per_touch;
    printf("preload: %llu touches in %.2f s = %.0f touches/s; store %.1f MB on disk (%.1f bytes/touch) + key index "
           "%.1f MB in memory (%.1f bytes/touch) = %.1f bytes/touch (target <= 128)\n",
           (unsigned long long)ss.touches, pre_s, (double)npre / pre_s, (double)ss.total_bytes / 1e6, disk_per_touch,
           (double)ss.index_bytes / 1e6, index_per_touch, bytes_per_touch);

    /* The installed base: in-app events come from devices that installed (an event of a device without one
     * would be its implicit install, and the mix would hold far more than 5% installs). One install per 16
     * preloaded touches (the mix's 5 to 80), half from touched devices, half from new ones, then the mixed
     * phase's installs join it. EVENTS=implicit: events from touched devices instead, nearly all of them
     * implicit installs (the bench's mix before 2026-11-29). */
    const char *events_env = getenv("EVENTS");
    int implicit = events_env != NULL && strcmp(events_env, "implicit") == 0;
    uint64_t ninst = implicit ? 0 : npre / 16, nbase = 0;
    uint64_t *base = malloc(sizeof(uint64_t) * (ninst + nmix / 10 + 1));
    for (uint64_t i = 0; i < ninst; i++) {
        int64_t ts = T - 20ll * 86400 * 1000000 + (int64_t)(i * (20ull * 86400 * 1000000 / (ninst + 1)));
        int touched = next_rand() % 2 == 0;
        uint64_t dev = touched ? 1 + next_rand() % ndev : ndev + 1 + next_rand() % (ndev * 4);
        add(a, UMG_BUS_KIND_EVENT, ts, json, event_json(json, sizeof(json), "install", dev, ts, 0));
        base[nbase++] = dev;
    }
    if (ninst > 0) {
        flush(a);
        double inst_s = run_pipeline(p, npre + ninst);
        for (int l = 1; l < nlegs; l++) {
            run_pipeline(legs[l].p, npre + ninst);
        }
        printf("installed base: %llu installs in %.2f s = %.0f installs/s\n", (unsigned long long)ninst, inst_s,
               (double)ninst / inst_s);
    }
    uint64_t nlog = npre + ninst; /* records in the log before the mixed ones */

    fprintf(stderr, "appending %llu mixed records...\n", (unsigned long long)nmix);
    uint64_t counts[3] = {0};
    for (uint64_t i = 0; i < nmix; i++) {
        int64_t ts = T + (int64_t)(i * (86400ull * 1000000 / (nmix + 1)));
        uint64_t r = next_rand() % 100;
        int len;
        if (r < 80) {
            len = touch_json(json, sizeof(json), 1 + next_rand() % ndev, ts);
            add(a, UMG_BUS_KIND_TOUCH, ts, json, len);
            counts[0]++;
        } else if (r < 85) {
            /* half from touched devices (a tenth of them by referrer), half from new ones */
            int touched = next_rand() % 2 == 0;
            uint64_t dev = touched ? 1 + next_rand() % ndev : ndev + 1 + next_rand() % (ndev * 4);
            len = event_json(json, sizeof(json), "install", dev, ts, touched && next_rand() % 10 == 0);
            add(a, UMG_BUS_KIND_EVENT, ts, json, len);
            counts[1]++;
            if (!implicit) {
                base[nbase++] = dev;
            }
        } else {
            uint64_t k = next_rand() % 15; /* 2/3 in-app events (a fifth of them purchases), 1/3 sessions */
            len = event_json(json, sizeof(json),
                             k < 8    ? "event"
                             : k < 10 ? "purchase"
                                      : "session",
                             implicit || nbase == 0 ? 1 + next_rand() % ndev : base[next_rand() % nbase], ts, 0);
            add(a, UMG_BUS_KIND_EVENT, ts, json, len);
            counts[2]++;
        }
    }
    flush(a);
    uint64_t decoded;
    double dec_s = run_decode_only(a->ops, a->bus, nlog, nlog + nmix, &decoded);
    if (decoded != nmix) {
        fprintf(stderr, "decode-only: %llu of %llu records decoded\n", (unsigned long long)decoded,
                (unsigned long long)nmix);
        return 1;
    }
    if (nlegs == 2) {
        ab_run(legs, ab, nlog, nmix, (double)nmix / dec_s);
        return finish(a, dir, own_dir);
    }
    umg_pipeline_stats_t ps, ps0;
    umg_pipeline_stats(p, &ps0);
    umg_devcache_stats_t dc0, dc;
    umg_store_device_cache_stats(st, &dc0);
    perf_ctl("enable");
    double mix_s = run_pipeline(p, nlog + nmix), mix_cpu_s = last_cpu_s;
    perf_ctl("disable");
    umg_pipeline_stats(p, &ps);
    umg_store_stats(st, &ss);
    printf("baseline (same records, log read + JSON decode only): %.0f records/s; pipeline / baseline = %.2f\n",
           (double)nmix / dec_s, dec_s / mix_s);
    printf("mixed: %llu records (%llu touches, %llu installs, %llu events) in %.2f s = %.0f records/s (target >= "
           "500000); install decision p50 %llu us, p99 %llu us, max %llu us (target p99 < 1000); installs and implicit "
           "installs decided %llu (%llu install events); store %llu touches\n",
           (unsigned long long)nmix, (unsigned long long)counts[0], (unsigned long long)counts[1],
           (unsigned long long)counts[2], mix_s, (double)nmix / mix_s, (unsigned long long)ps.install_p50_us,
           (unsigned long long)ps.install_p99_us, (unsigned long long)ps.install_max_us,
           (unsigned long long)(ps.installs + ps.implicit_installs - ps0.installs - ps0.implicit_installs),
           (unsigned long long)counts[1], (unsigned long long)ss.touches);
    umg_store_device_cache_stats(st, &dc);
    printf("device cache: %llu of %llu records held; device reads %llu hits, %llu misses; identifier reads %llu hits, "
           "%llu misses; %llu written through\n",
           (unsigned long long)dc.records, (unsigned long long)dc.capacity, (unsigned long long)(dc.hits - dc0.hits),
           (unsigned long long)(dc.misses - dc0.misses), (unsigned long long)(dc.alias_hits - dc0.alias_hits),
           (unsigned long long)(dc.alias_misses - dc0.alias_misses),
           (unsigned long long)(dc.written_through - dc0.written_through));
    printf("{\"preload_touches\":%llu,\"preload_touches_per_s\":%.0f,\"bytes_per_touch\":%.1f,\"disk_bytes_per_touch\":"
           "%.1f,\"mixed_records\":%llu,"
           "\"mixed_records_per_s\":%.0f,\"decode_only_per_s\":%.0f,\"install_p50_us\":%llu,\"install_p99_us\":%llu,"
           "\"install_max_us\":%llu,\"mixed_records_per_cpu_s\":%.0f,\"rollups\":%d,\"rollup_rows\":%llu,\"rollup_disk_"
           "bytes\":%llu}\n",
           (unsigned long long)npre, (double)npre / pre_s, bytes_per_touch, disk_per_touch, (unsigned long long)nmix,
           (double)nmix / mix_s, (double)nmix / dec_s, (unsigned long long)ps.install_p50_us,
           (unsigned long long)ps.install_p99_us, (unsigned long long)ps.install_max_us, (double)nmix / mix_cpu_s,
           rollups, (unsigned long long)ss.rollup_rows, (unsigned long long)ss.rollup_bytes);
    uint64_t t_close = umg_mono_ns();
    leg_close(&legs[0]); /* saves the key index */
    printf("close (key index saved): %.2f s\n", (double)(umg_mono_ns() - t_close) / 1e9);
    /* Restarts: the first write transaction takes the saved key index back; after a crash (no saved index)
     * it rebuilds it from the touch table. */
    for (int crashed = 0; crashed < 2; crashed++) {
        if (crashed) {
            char path[700];
            snprintf(path, sizeof(path), "%s/touch.index", storedir);
            unlink(path);
        }
        uint64_t t_open = umg_mono_ns();
        umg_store_txn_t *tx;
        if (umg_store_open(storedir, &sc, &st) != UMG_OK || umg_store_begin(st, 1, &tx) != UMG_OK) {
            return 1;
        }
        umg_store_abort(tx);
        double open_s = (double)(umg_mono_ns() - t_open) / 1e9;
        umg_store_stats_t rs;
        umg_store_stats(st, &rs);
        printf("reopen with %llu touches (%s): %.2f s\n", (unsigned long long)ss.touches,
               rs.index_loaded ? "key index taken back from the close" : "key index rebuilt, as after a crash", open_s);
        umg_store_close(st);
    }
    return finish(a, dir, own_dir);
}
