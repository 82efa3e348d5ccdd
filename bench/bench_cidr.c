/*
 * bench_cidr.c - the blocked_ip rule's costs (issue #6 targets): lookups per
 * second in a prefix table of 1 million prefixes on one core (target: at
 * least 10 million), its memory and build time, and the longest stall a
 * reader thread sees while the registry reloads 1 million prefixes from a
 * file (target: at most 10 ms).
 *
 *   build/bench/bench_cidr [PREFIXES] [LOOKUPS] [RELOADS]    (defaults 1000000 20000000 5)
 *
 * The prefixes are random, shaped like real lists: 70% IPv4 (half /24, a
 * quarter /16../23, the rest /25../32 hosts mostly), 30% IPv6 (/32../64 and
 * /128), a third of them nested in another. Lookups are of uniformly random
 * IPv4 addresses, of addresses inside listed prefixes (hits), and of IPv6
 * addresses, each from a pre-generated array so only the lookup is timed.
 * The stall figure is also measured without a reload in the same run: the
 * machine's own scheduling noise is the baseline it should be read against.
 */
#include "umg_fraud_net.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static double secs(uint64_t ns)
{
    return (double)ns / 1e9;
}

typedef struct gen_s {
    umg_ip_t *net;
    int *plen;
    size_t n;
} gen_t;

static void gen_prefixes(gen_t *g, size_t n)
{
    g->net = malloc(n * sizeof(*g->net));
    g->plen = malloc(n * sizeof(*g->plen));
    g->n = n;
    for (size_t i = 0; i < n; i++) {
        umg_ip_t ip;
        int plen;
        if (i > 0 && rnd() % 3 == 0) {
            size_t p = rnd() % i;
            ip = g->net[p];
            int extra = 1 + (int)(rnd() % 8);
            plen = g->plen[p] + extra > 128 ? 128 : g->plen[p] + extra;
            for (int k = g->plen[p] / 8; k < 16; k++) {
                ip.b[k] = (uint8_t)rnd();
            }
        } else if (rnd() % 10 < 7) {
            memset(ip.b, 0, 10);
            ip.b[10] = ip.b[11] = 0xff;
            uint32_t a = (uint32_t)rnd();
            memcpy(ip.b + 12, &a, 4);
            int r = (int)(rnd() % 100);
            plen = 96 + (r < 50 ? 24 : r < 75 ? 16 + (int)(rnd() % 8) : r < 85 ? 25 + (int)(rnd() % 7) : 32);
        } else {
            for (int k = 0; k < 16; k++) {
                ip.b[k] = (uint8_t)rnd();
            }
            ip.b[0] = 0x20;
            ip.b[1] = (uint8_t)(rnd() % 16);
            plen = rnd() % 5 == 0 ? 128 : 32 + (int)(rnd() % 33);
        }
        for (int k = 0; k < 16; k++) {
            int keep = plen - k * 8;
            ip.b[k] &= keep >= 8 ? 0xff : keep <= 0 ? 0 : (uint8_t)(0xff00 >> keep);
        }
        g->net[i] = ip;
        g->plen[i] = plen;
    }
}

static volatile uint64_t sink;
static uint64_t stall_result;

/* This thread's CPU time: the machine is shared, and time spent preempted is not the lookup's. */
static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double run_lookups4(const umg_cidr_t *t, const uint32_t *q, size_t nq, size_t total, size_t *hits)
{
    size_t h = 0;
    uint64_t t0 = cpu_ns();
    for (size_t i = 0; i < total; i++) {
        h += umg_cidr_lookup4(t, q[i % nq], NULL) >= 0;
    }
    uint64_t dt = cpu_ns() - t0;
    sink += h;
    *hits = h;
    return (double)total / secs(dt);
}

static double run_lookups(const umg_cidr_t *t, const umg_ip_t *q, size_t nq, size_t total, size_t *hits)
{
    size_t h = 0;
    uint64_t t0 = cpu_ns();
    for (size_t i = 0; i < total; i++) {
        h += umg_cidr_lookup(t, &q[i % nq], NULL) >= 0;
    }
    uint64_t dt = cpu_ns() - t0;
    sink += h;
    *hits = h;
    return (double)total / secs(dt);
}

static double run_batch(const umg_cidr_t *t, const umg_ip_t *q, size_t nq, size_t total, size_t *hits)
{
    enum { B = 256 };
    int lists[B];
    size_t h = 0;
    uint64_t t0 = cpu_ns();
    for (size_t i = 0; i < total; i += B) {
        umg_cidr_lookup_batch(t, &q[i % nq], B, lists, NULL);
        for (int k = 0; k < B; k++) {
            h += lists[k] >= 0;
        }
    }
    uint64_t dt = cpu_ns() - t0;
    sink += h;
    *hits = h;
    return (double)total / secs(dt);
}

/* ---------------------------------------------------------------- reload stall */

#define MAX_WINDOWS 64

typedef struct reader_s {
    umg_iplists_t *r;
    const umg_ip_t *q;
    size_t nq;
    _Atomic int stop;
    _Atomic int window; /* even: a reload runs; odd: the same length of time without one */
    uint64_t max_gap[MAX_WINDOWS], over1ms[MAX_WINDOWS], over10ms[MAX_WINDOWS], lookups;
} reader_t;

/* Guarded lookups in a loop; per window, the longest time between two consecutive lookups. */
static void *reader_main(void *arg)
{
    reader_t *rd = arg;
    uint64_t last = umg_mono_ns(), n = 0;
    size_t i = 0;
    while (!atomic_load_explicit(&rd->stop, memory_order_relaxed)) {
        int list;
        umg_iplists_lookup_ip(rd->r, &rd->q[i], &list, NULL);
        sink += (uint64_t)list;
        i = i + 1 == rd->nq ? 0 : i + 1;
        n++;
        uint64_t now = umg_mono_ns(), gap = now - last;
        int w = atomic_load_explicit(&rd->window, memory_order_relaxed);
        if (gap > rd->max_gap[w]) {
            rd->max_gap[w] = gap;
        }
        rd->over1ms[w] += gap > 1000000;
        rd->over10ms[w] += gap > 10000000;
        last = now;
    }
    rd->lookups = n;
    return NULL;
}

/* Alternates windows with a reload and windows of the same length without one. */
static void stall_run(umg_iplists_t *r, const umg_ip_t *q, size_t nq, int reloads)
{
    static reader_t rd;
    memset(&rd, 0, sizeof(rd));
    rd.r = r;
    rd.q = q;
    rd.nq = nq;
    reloads = reloads > MAX_WINDOWS / 2 ? MAX_WINDOWS / 2 : reloads;
    pthread_t th;
    pthread_create(&th, NULL, reader_main, &rd);
    usleep(50000);
    char err[256];
    double worst_ms = 0;
    for (int k = 0; k < reloads; k++) {
        atomic_store(&rd.window, 2 * k);
        uint64_t t0 = umg_mono_ns();
        if (umg_iplists_reload(r, err, sizeof(err)) != UMG_OK) {
            fprintf(stderr, "reload failed: %s\n", err);
            exit(1);
        }
        uint64_t dt = umg_mono_ns() - t0;
        worst_ms = (double)dt / 1e6 > worst_ms ? (double)dt / 1e6 : worst_ms;
        atomic_store(&rd.window, 2 * k + 1);
        usleep((useconds_t)(dt / 1000));
    }
    atomic_store(&rd.stop, 1);
    pthread_join(th, NULL);
    uint64_t max[2] = {0, 0}, o1[2] = {0, 0}, o10[2] = {0, 0};
    for (int w = 0; w < 2 * reloads; w++) {
        max[w & 1] = rd.max_gap[w] > max[w & 1] ? rd.max_gap[w] : max[w & 1];
        o1[w & 1] += rd.over1ms[w];
        o10[w & 1] += rd.over10ms[w];
    }
    printf("reload of %zu prefixes from a file: %.0f ms at worst (reading, parsing, building on a SCHED_IDLE thread)\n",
           umg_iplists_prefixes(r, 0), worst_ms);
    printf("reader (%llu guarded lookups): longest stall %.3f ms during %d reloads (gaps > 1 ms: %llu, > 10 ms: %llu); "
           "%.3f ms in as long without a reload (> 1 ms: %llu, > 10 ms: %llu) -> target 10 ms: %s\n",
           (unsigned long long)rd.lookups, (double)max[0] / 1e6, reloads, (unsigned long long)o1[0],
           (unsigned long long)o10[0], (double)max[1] / 1e6, (unsigned long long)o1[1], (unsigned long long)o10[1],
           max[0] <= 10000000 ? "met" : "MISSED");
    stall_result = max[0];
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    size_t total = argc > 2 ? strtoull(argv[2], NULL, 10) : 20000000;
    int reloads = argc > 3 ? atoi(argv[3]) : 5;
    umg_log_min_level = UMG_LOG_WARN;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    printf("bench_cidr: %zu prefixes, %zu lookups per figure, %d reloads; %ld cores\n", n, total, reloads, cores);

    gen_t g;
    gen_prefixes(&g, n);
    umg_cidr_builder_t *b;
    umg_cidr_builder_new(&b);
    for (size_t i = 0; i < n; i++) {
        umg_cidr_builder_add(b, &g.net[i], g.plen[i], (unsigned)(i % 4));
    }
    size_t before = umg_alloc_bytes();
    uint64_t t0 = umg_mono_ns();
    umg_cidr_t *t;
    if (umg_cidr_build(b, &t) != UMG_OK) {
        fprintf(stderr, "build failed\n");
        return 1;
    }
    uint64_t build_ns = umg_mono_ns() - t0;
    size_t mem = umg_alloc_bytes() - before;
    umg_cidr_stats_t st;
    umg_cidr_stats(t, &st);
    printf("build: %.0f ms (from %zu prefixes: %zu IPv4 and %zu IPv6 intervals, %zu answers); table memory %.1f MiB "
           "(%.1f bytes a prefix)\n",
           secs(build_ns) * 1e3, st.prefixes, st.intervals4, st.intervals6, st.answers, (double)mem / 1048576.0,
           (double)mem / (double)n);

    size_t nq = 1 << 20;
    uint32_t *q4 = malloc(nq * sizeof(*q4));
    umg_ip_t *qip = malloc(nq * sizeof(*qip)), *qhit = malloc(nq * sizeof(*qhit)), *q6 = malloc(nq * sizeof(*q6));
    umg_ip_t *qhit4 = malloc(nq * sizeof(*qhit4));
    size_t nh4 = 0;
    for (size_t i = 0; i < nq; i++) {
        q4[i] = (uint32_t)rnd();
        memset(qip[i].b, 0, 10);
        qip[i].b[10] = qip[i].b[11] = 0xff;
        qip[i].b[12] = (uint8_t)(q4[i] >> 24);
        qip[i].b[13] = (uint8_t)(q4[i] >> 16);
        qip[i].b[14] = (uint8_t)(q4[i] >> 8);
        qip[i].b[15] = (uint8_t)q4[i];
        size_t p = rnd() % n;
        qhit[i] = g.net[p];
        for (int k = g.plen[p] / 8 + 1; k < 16; k++) {
            qhit[i].b[k] = (uint8_t)rnd();
        }
        if (umg_ip_is_v4(&qhit[i])) {
            qhit4[nh4++] = qhit[i];
        }
        for (int k = 0; k < 16; k++) {
            q6[i].b[k] = (uint8_t)rnd();
        }
        q6[i].b[0] = 0x20;
        q6[i].b[1] = (uint8_t)(rnd() % 16);
    }
    size_t hits;
    double r4 = run_lookups4(t, q4, nq, total, &hits);
    printf("lookup IPv4 (host-order u32, random addresses): %.1f M/s (%.1f%% hits) = %.2fx the 10 M/s target\n",
           r4 / 1e6, 100.0 * (double)hits / (double)total, r4 / 1e7);
    double rip = run_lookups(t, qip, nq, total, &hits);
    printf("lookup IPv4 (umg_ip_t, random addresses):       %.1f M/s (%.1f%% hits) = %.2fx target\n", rip / 1e6,
           100.0 * (double)hits / (double)total, rip / 1e7);
    double rhit = run_lookups(t, qhit, nq, total, &hits);
    printf("lookup inside listed prefixes (v4 and v6):      %.1f M/s (%.1f%% hits) = %.2fx target\n", rhit / 1e6,
           100.0 * (double)hits / (double)total, rhit / 1e7);
    double rh4 = run_lookups(t, qhit4, nh4, total, &hits);
    printf("lookup IPv4 inside listed prefixes:             %.1f M/s (%.1f%% hits) = %.2fx target\n", rh4 / 1e6,
           100.0 * (double)hits / (double)total, rh4 / 1e7);
    double b4 = run_batch(t, qip, nq, total, &hits);
    printf("batched (umg_cidr_lookup_batch), random IPv4:   %.1f M/s (%.1f%% hits) = %.2fx target\n", b4 / 1e6,
           100.0 * (double)hits / (double)total, b4 / 1e7);
    double bhit = run_batch(t, qhit, nq, total, &hits);
    printf("batched, inside listed prefixes (v4 and v6):    %.1f M/s (%.1f%% hits) = %.2fx target\n", bhit / 1e6,
           100.0 * (double)hits / (double)total, bhit / 1e7);
    double r6 = run_lookups(t, q6, nq, total, &hits);
    printf("lookup IPv6 (random in 2000::/12):              %.1f M/s (%.1f%% hits) = %.2fx target\n", r6 / 1e6,
           100.0 * (double)hits / (double)total, r6 / 1e7);
    umg_cidr_free(t);
    umg_cidr_builder_free(b);

    /* The registry: 1M prefixes in a file, reloaded while a reader looks up. */
    char dir[] = "/tmp/umg-bench-cidr-XXXXXX", path[64], spec[96], err[256];
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof(path), "%s/list.txt", dir);
    FILE *f = fopen(path, "w");
    for (size_t i = 0; i < n; i++) {
        umg_ip_t *ip = &g.net[i];
        if (umg_ip_is_v4(ip)) {
            fprintf(f, "%u.%u.%u.%u/%d\n", ip->b[12], ip->b[13], ip->b[14], ip->b[15], g.plen[i] - 96);
        } else {
            for (int k = 0; k < 16; k += 2) {
                fprintf(f, "%x%s", ip->b[k] << 8 | ip->b[k + 1], k < 14 ? ":" : "");
            }
            fprintf(f, "/%d\n", g.plen[i]);
        }
    }
    fclose(f);
    snprintf(spec, sizeof(spec), "bench=%s", path);
    umg_iplists_t *r;
    if (umg_iplists_new(spec, &r, err, sizeof(err)) != UMG_OK || umg_iplists_reload(r, err, sizeof(err)) != UMG_OK) {
        fprintf(stderr, "registry: %s\n", err);
        return 1;
    }
    stall_run(r, qip, nq, reloads);
    umg_iplists_free(r);
    unlink(path);
    rmdir(dir);
    free(q4);
    free(qip);
    free(qhit);
    free(qhit4);
    free(q6);
    free(g.net);
    free(g.plen);
    return r4 >= 1e7 && stall_result <= 10000000 ? 0 : 1;
}
