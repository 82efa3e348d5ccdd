/*
 * test_bus.c - the embedded log: append and read back, dedupe across
 * restarts, torn writes at every byte offset of the last record, segment
 * rolls and index rebuilds, partition and app and time filters, committed
 * offsets, write failures that must not poison the dedupe set.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "umg_log_int.h"
#include "log_damage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const umg_bus_ops_t *ops = &umg_bus_log_ops;

typedef struct waiter_s {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    int status;
} waiter_t;

static void on_done(umg_bus_batch_t *b, int status)
{
    waiter_t *w = b->data;
    pthread_mutex_lock(&w->mu);
    w->done = 1;
    w->status = status;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static char *tmpdir(void)
{
    char tmpl[] = "/tmp/umg-bus-XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

static void rmrf(const char *path)
{
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    assert_int_equal(system(cmd), 0);
}

static void make_id(umg_uuid_t *id, uint32_t n)
{
    memset(id, 0, sizeof(*id));
    memcpy(id->b, &n, sizeof(n));
    id->b[15] = 0x5a;
}

static int64_t g_retention_bytes, g_dedupe_horizon_ms;
static int g_hold;

static umg_bus_t *open_bus(const char *dir, int64_t seg_bytes)
{
    umg_bus_config_t cfg;
    umg_bus_config_defaults(&cfg);
    cfg.dir = dir;
    cfg.partitions = 4;
    cfg.segment_bytes = seg_bytes;
    cfg.retention_bytes = g_retention_bytes;
    cfg.dedupe_horizon_ms = g_dedupe_horizon_ms ? g_dedupe_horizon_ms : cfg.dedupe_horizon_ms;
    cfg.hold_for_reader = g_hold;
    umg_bus_t *bus = NULL;
    assert_int_equal(ops->open(&cfg, &bus), UMG_OK);
    return bus;
}

/* Appends n records of kind (ids first..first+n-1) for `app`; returns the submit status and fills statuses. */
static int append_kind(umg_bus_t *bus, uint32_t app, uint32_t first, size_t n, int *statuses, uint8_t kind)
{
    umg_bus_rec_t *recs = calloc(n, sizeof(*recs));
    char(*payloads)[64] = calloc(n, 64);
    int64_t now = umg_now_us();
    for (size_t i = 0; i < n; i++) {
        recs[i].app = app;
        recs[i].partition = (uint16_t)((first + i) % 4);
        recs[i].kind = kind;
        recs[i].event_us = now - 1000000 + (int64_t)i;
        recs[i].recv_us = now;
        make_id(&recs[i].id, first + (uint32_t)i);
        int len = snprintf(payloads[i], 64, "{\"n\":%u,\"app\":%u}", first + (unsigned)i, app);
        recs[i].payload = payloads[i];
        recs[i].len = (uint32_t)len;
    }
    waiter_t w = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    umg_bus_batch_t b = {.recs = recs, .n = n, .done = on_done, .data = &w};
    int rc = ops->submit(bus, &b);
    if (rc == UMG_OK) {
        pthread_mutex_lock(&w.mu);
        while (!w.done) {
            pthread_cond_wait(&w.cv, &w.mu);
        }
        pthread_mutex_unlock(&w.mu);
        rc = w.status;
        for (size_t i = 0; statuses && i < n; i++) {
            statuses[i] = recs[i].status;
        }
    }
    free(recs);
    free(payloads);
    return rc;
}

static int append(umg_bus_t *bus, uint32_t app, uint32_t first, size_t n, int *statuses)
{
    return append_kind(bus, app, first, n, statuses, UMG_BUS_KIND_EVENT);
}

static size_t count_all(umg_bus_t *bus, const umg_bus_read_opts_t *o, uint64_t *last_offset)
{
    umg_bus_reader_t *r;
    assert_int_equal(ops->reader_open(bus, o, &r), UMG_OK);
    umg_bus_msg_t m;
    size_t n = 0;
    int rc;
    uint64_t prev = 0;
    while ((rc = ops->reader_next(r, &m)) == UMG_OK) {
        if (n > 0) {
            assert_true(m.offset > prev);
        }
        prev = m.offset;
        n++;
    }
    assert_int_equal(rc, UMG_EAGAIN);
    ops->reader_close(r);
    if (last_offset) {
        *last_offset = prev;
    }
    return n;
}

static const umg_bus_read_opts_t ALL = {.partition = -1};

static void test_append_read_dedupe(void **state)
{
    (void)state;
    char *dir = tmpdir();
    umg_bus_t *bus = open_bus(dir, 1 << 20);
    int st[200];
    assert_int_equal(append(bus, 1, 0, 100, st), UMG_OK);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(st[i], UMG_OK);
    }
    /* Same ids again: all duplicates; other app: all new. */
    assert_int_equal(append(bus, 1, 50, 100, st), UMG_OK);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(st[i], i < 50 ? UMG_EEXIST : UMG_OK);
    }
    assert_int_equal(append(bus, 2, 0, 10, st), UMG_OK);
    assert_int_equal(st[0], UMG_OK);
    assert_int_equal(count_all(bus, &ALL, NULL), 160);
    umg_bus_read_opts_t o = {.partition = 1};
    size_t p1 = count_all(bus, &o, NULL);
    assert_true(p1 > 0 && p1 < 160);
    umg_bus_read_opts_t oa = {.partition = -1, .app = 2};
    assert_int_equal(count_all(bus, &oa, NULL), 10);

    /* Read content back. */
    umg_bus_reader_t *r;
    assert_int_equal(ops->reader_open(bus, &oa, &r), UMG_OK);
    umg_bus_msg_t m;
    assert_int_equal(ops->reader_next(r, &m), UMG_OK);
    assert_int_equal(m.app, 2);
    assert_memory_equal(m.payload, "{\"n\":0,\"app\":2}", m.len);
    ops->reader_close(r);
    ops->close(bus);

    /* Restart: everything is still there and still deduplicated. */
    bus = open_bus(dir, 1 << 20);
    assert_int_equal(count_all(bus, &ALL, NULL), 160);
    assert_int_equal(append(bus, 1, 0, 150, st), UMG_OK);
    for (int i = 0; i < 150; i++) {
        assert_int_equal(st[i], UMG_EEXIST);
    }
    assert_int_equal(count_all(bus, &ALL, NULL), 160);
    ops->close(bus);
    rmrf(dir);
    free(dir);
}

/* A reader with scan_max passes over at most that many records per call (UMG_EBUSY, then goes on where it stopped)
 * and finds what an unbounded one finds; the kind filter. */
static void test_scan_budget(void **state)
{
    (void)state;
    char *dir = tmpdir();
    umg_bus_t *bus = open_bus(dir, 64 << 10); /* several segments */
    assert_int_equal(append(bus, 1, 0, 5000, NULL), UMG_OK);
    assert_int_equal(append(bus, 2, 0, 3, NULL), UMG_OK);
    assert_int_equal(append(bus, 1, 5000, 5000, NULL), UMG_OK);
    assert_int_equal(append(bus, 2, 3, 2, NULL), UMG_OK);
    umg_bus_read_opts_t o = {.partition = -1, .app = 2};
    uint64_t last;
    assert_int_equal(count_all(bus, &o, &last), 5);

    o.scan_max = 100;
    umg_bus_reader_t *r;
    assert_int_equal(ops->reader_open(bus, &o, &r), UMG_OK);
    umg_bus_msg_t m;
    size_t found = 0, busy = 0, calls = 0;
    int rc;
    while ((rc = ops->reader_next(r, &m)) != UMG_EAGAIN) {
        assert_true(++calls < 1000);
        if (rc == UMG_EBUSY) {
            busy++;
            continue;
        }
        assert_int_equal(rc, UMG_OK);
        assert_int_equal(m.app, 2);
        assert_int_equal(m.offset, found < 3 ? 5000 + found : 10003 + (found - 3));
        found++;
    }
    assert_int_equal(found, 5);
    assert_int_equal(m.offset, last);
    assert_true(busy >= 100 && busy <= 110); /* 5,000 + 5,000 passed over, 100 at a time (and segment moves) */
    ops->reader_close(r);

    umg_bus_read_opts_t ok = {.partition = -1, .kind = UMG_BUS_KIND_EVENT};
    assert_int_equal(count_all(bus, &ok, NULL), 10005);
    ok.kind = UMG_BUS_KIND_TOUCH;
    assert_int_equal(count_all(bus, &ok, NULL), 0);
    ops->close(bus);
    rmrf(dir);
    free(dir);
}

/* Each pass pads every payload to a length of its own, so the records move within their segment. */
typedef struct pad_rw_s {
    umg_bus_t *bus;
    int passes;
    _Atomic int done;
} pad_rw_t;

static int pad_record(void *ctx, const umg_bus_msg_t *m, umg_buf_t *out)
{
    static const char xs[] =
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
    pad_rw_t *x = ctx;
    /* {"n":N,"app":A} then the pass's padding in place of the last one's */
    const char *end = memmem(m->payload, m->len, ",\"pad\"", 6);
    if (end == NULL) {
        end = memchr(m->payload, '}', m->len);
    }
    size_t head = end ? (size_t)(end - m->payload) : m->len;
    int pad = 1 + x->passes % 5 * 17;
    if (umg_buf_append(out, m->payload, head) != UMG_OK ||
        umg_buf_printf(out, ",\"pad\":\"%.*s\"}", pad, xs) != UMG_OK) {
        return -1;
    }
    return UMG_BUS_REPLACE;
}

static void *rewrite_loop(void *arg)
{
    pad_rw_t *x = arg;
    umg_bus_rewriter_t rw = {.ctx = x, .record = pad_record};
    for (x->passes = 0; x->passes < 12; x->passes++) {
        umg_bus_rewrite_stats_t st;
        assert_int_equal(ops->rewrite(x->bus, &rw, &st), UMG_OK);
        assert_true(st.segments > 0);
    }
    atomic_store(&x->done, 1);
    return NULL;
}

/* Readers that open segments while they are being rewritten read them whole and intact: a segment's records and
 * index are replaced together as readers see them (each rewrite pauses between the two renames here). */
static void test_read_while_rewritten(void **state)
{
    (void)state;
    char *dir = tmpdir();
    umg_bus_t *bus = open_bus(dir, 16 << 10);
    assert_int_equal(append(bus, 1, 0, 2000, NULL), UMG_OK);
    assert_int_equal(append(bus, 1, 2000, 10, NULL), UMG_OK); /* the active segment: not rewritten */
    umg__log_rename_pause_us = 3000;
    pad_rw_t x = {.bus = bus};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, rewrite_loop, &x), 0);
    int reads = 0;
    while (!atomic_load(&x.done)) {
        assert_int_equal(count_all(bus, &ALL, NULL), 2010);
        reads++;
    }
    pthread_join(th, NULL);
    umg__log_rename_pause_us = 0;
    assert_true(reads > 0);
    assert_int_equal(count_all(bus, &ALL, NULL), 2010);
    ops->close(bus);
    rmrf(dir);
    free(dir);
}

typedef struct app_rw_s {
    size_t seen[3]; /* records looked at, by app */
} app_rw_t;

static int count_record(void *ctx, const umg_bus_msg_t *m, umg_buf_t *out)
{
    (void)out;
    ((app_rw_t *)ctx)->seen[m->app < 3 ? m->app : 0]++;
    return UMG_BUS_KEEP;
}

/* A rewrite for some apps (a forget pass) reads only the segments whose index names one of them. */
static void test_rewrite_apps_filter(void **state)
{
    (void)state;
    char *dir = tmpdir();
    umg_bus_t *bus = open_bus(dir, 16 << 10);
    for (uint32_t i = 0; i < 20; i++) { /* about two batches a segment, app 2's in the middle */
        assert_int_equal(append(bus, 1, i * 100, 100, NULL), UMG_OK);
        if (i == 9) {
            assert_int_equal(append(bus, 2, 0, 10, NULL), UMG_OK);
        }
    }
    assert_int_equal(append(bus, 1, 2000, 1, NULL), UMG_OK); /* the active segment */
    app_rw_t all = {{0}}, two = {{0}};
    umg_bus_rewriter_t rw = {.ctx = &all, .record = count_record};
    umg_bus_rewrite_stats_t st;
    assert_int_equal(ops->rewrite(bus, &rw, &st), UMG_OK);
    assert_int_equal(all.seen[2], 10);
    assert_true(all.seen[1] >= 1700);
    static const uint32_t apps[] = {2};
    rw = (umg_bus_rewriter_t){.ctx = &two, .record = count_record, .apps = apps, .napps = 1};
    assert_int_equal(ops->rewrite(bus, &rw, &st), UMG_OK);
    assert_int_equal(two.seen[2], 10);
    assert_true(two.seen[1] <= 200); /* app 1's records in app 2's segment only */
    assert_int_equal(st.records, two.seen[1] + two.seen[2]);
    ops->close(bus);
    rmrf(dir);
    free(dir);
}

/* Tombstones every 7th record from `from` on, and replaces record 250 with a longer payload. */
typedef struct sparse_rw_s {
    uint64_t from;
} sparse_rw_t;

static int sparse_record(void *ctx, const umg_bus_msg_t *m, umg_buf_t *out)
{
    sparse_rw_t *x = ctx;
    if (m->offset == 250) {
        return umg_buf_printf(out, "{\"replaced\":%llu,\"pad\":\"%0200d\"}", (unsigned long long)m->offset, 0) == UMG_OK
                   ? UMG_BUS_REPLACE
                   : -1;
    }
    return m->offset >= x->from && m->offset % 7 == 3 ? UMG_BUS_TOMBSTONE : UMG_BUS_KEEP;
}

/* A rewrite keeps every record it does not change byte for byte, wherever the first change falls, and replaces
 * nothing when nothing changes. */
static void test_rewrite_from_first_change(void **state)
{
    (void)state;
    static const uint64_t firsts[] = {0, 1, 150, 251, 1000};
    for (size_t k = 0; k < UMG_ARRAY_SIZE(firsts); k++) {
        char *dir = tmpdir();
        umg_bus_t *bus = open_bus(dir, 1 << 20);
        assert_int_equal(append(bus, 1, 0, 300, NULL), UMG_OK);
        umg_bus_rewrite_stats_t st;
        sparse_rw_t x = {.from = firsts[k]};
        app_rw_t seen = {{0}};
        umg_bus_rewriter_t rw = {.ctx = &x, .roll_active = 1, .record = sparse_record};
        if (firsts[k] == 1000) { /* nothing changes */
            rw.ctx = &seen;
            rw.record = count_record;
        }
        assert_int_equal(ops->rewrite(bus, &rw, &st), UMG_OK);
        assert_int_equal(st.segments, firsts[k] == 1000 ? 0 : 1);
        umg_bus_reader_t *r;
        assert_int_equal(ops->reader_open(bus, &ALL, &r), UMG_OK);
        umg_bus_msg_t m;
        uint64_t want = 0;
        while (ops->reader_next(r, &m) == UMG_OK) {
            while (firsts[k] != 1000 && want >= firsts[k] && want % 7 == 3 && want != 250) {
                want++; /* tombstoned: readers skip it */
            }
            assert_int_equal(m.offset, want);
            char expect[256];
            if (firsts[k] != 1000 && want == 250) {
                snprintf(expect, sizeof(expect), "{\"replaced\":250,\"pad\":\"%0200d\"}", 0);
            } else {
                snprintf(expect, sizeof(expect), "{\"n\":%llu,\"app\":1}", (unsigned long long)want);
            }
            assert_int_equal(m.len, strlen(expect));
            assert_memory_equal(m.payload, expect, m.len);
            want++;
        }
        assert_int_equal(want, 300);
        ops->reader_close(r);
        ops->close(bus);
        rmrf(dir);
        free(dir);
    }
}

typedef struct info_rw_s {
    int64_t lo_us, hi_us; /* the appends' receive times lie between */
    int segments;
    int bad;
} info_rw_t;

static int check_info(void *ctx, const umg_bus_seg_info_t *seg)
{
    info_rw_t *c = ctx;
    size_t l = seg->aux_path ? strlen(seg->aux_path) : 0;
    c->bad += seg->min_recv_us > c->hi_us || seg->min_recv_us < c->lo_us - 61000000;
    c->bad += l < 4 || strcmp(seg->aux_path + l - 4, ".sum") != 0;
    c->segments++;
    return 0;
}

/* What a rewriter is told of each sealed segment: a bound on its oldest record and a path of its own. */
static void test_rewrite_segment_info(void **state)
{
    (void)state;
    char *dir = tmpdir();
    umg_bus_t *bus = open_bus(dir, 16 << 10);
    info_rw_t c = {.lo_us = umg_now_us()};
    for (uint32_t i = 0; i < 6; i++) {
        assert_int_equal(append(bus, 1, i * 100, 100, NULL), UMG_OK);
    }
    c.hi_us = umg_now_us();
    umg_bus_rewriter_t rw = {.ctx = &c, .want = check_info, .record = count_record};
    umg_bus_rewrite_stats_t st;
    assert_int_equal(ops->rewrite(bus, &rw, &st), UMG_OK);
    assert_true(c.segments >= 2);
    assert_int_equal(c.bad, 0);
    assert_int_equal(st.records, 0);
    ops->close(bus);
    rmrf(dir);
    free(dir);
}

static char *only_segment(const char *dir, const char *ext)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char *found = NULL;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l > 4 && strcmp(de->d_name + l - 4, ext) == 0) {
            char *p = malloc(strlen(dir) + l + 2);
            sprintf(p, "%s/%s", dir, de->d_name);
            free(found);
            found = p;
        }
    }
    closedir(d);
    return found;
}

static void test_torn_tail_every_offset(void **state)
{
    (void)state;
    char *dir = tmpdir();
    umg_bus_t *bus = open_bus(dir, 1 << 20);
    assert_int_equal(append(bus, 7, 0, 5, NULL), UMG_OK);
    ops->close(bus);
    char *seg = only_segment(dir, ".log");
    struct stat st;
    assert_int_equal(stat(seg, &st), 0);
    long full = (long)st.st_size;
    FILE *f = fopen(seg, "rb");
    char *orig = malloc((size_t)full);
    assert_int_equal(fread(orig, 1, (size_t)full, f), (size_t)full);
    fclose(f);
    long rec = full / 5; /* all five records have the same size */
    assert_int_equal(rec * 5, full);
    for (long cut = full - rec; cut < full; cut++) {
        /* A torn write: the file ends at `cut`, inside the last record. */
        f = fopen(seg, "wb");
        assert_int_equal(fwrite(orig, 1, (size_t)cut, f), (size_t)cut);
        fclose(f);
        bus = open_bus(dir, 1 << 20);
        assert_int_equal(count_all(bus, &ALL, NULL), 4);
        /* The lost record's id is not remembered: a retry is accepted, once. */
        int s[5];
        assert_int_equal(append(bus, 7, 0, 5, s), UMG_OK);
        assert_int_equal(s[4], UMG_OK);
        assert_int_equal(s[0], UMG_EEXIST);
        assert_int_equal(count_all(bus, &ALL, NULL), 5);
        ops->close(bus);
    }
    /* A flipped byte anywhere in the last record is caught by the CRC. */
    for (long pos = full - rec; pos < full; pos += 7) {
        char *copy = malloc((size_t)full);
        memcpy(copy, orig, (size_t)full);
        copy[pos] ^= 0x40;
        f = fopen(seg, "wb");
        assert_int_equal(fwrite(copy, 1, (size_t)full, f), (size_t)full);
        fclose(f);
        free(copy);
        bus = open_bus(dir, 1 << 20);
        assert_int_equal(count_all(bus, &ALL, NULL), 4);
        ops->close(bus);
    }
    free(orig);
    free(seg);
    rmrf(dir);
    free(dir);
}

/* Small groups get zeros written ahead of them in the active segment: a clean close
 * trims them, and after a crash (records, then zeros) recovery keeps every record,
 * drops the zeros and appends after the last record. */
static void test_zeros_written_ahead(void **state)
{
    (void)state;
    char *dir = tmpdir();
    umg_bus_t *bus = open_bus(dir, 64 << 20);
    assert_int_equal(append(bus, 7, 0, 5, NULL), UMG_OK);
    char *seg = only_segment(dir, ".log");
    struct stat st;
    /* Zeros are written ahead after a group went to the syncer: wait for them. */
    for (int i = 0; i < 200; i++) {
        assert_int_equal(stat(seg, &st), 0);
        if (st.st_size >= (256 << 10)) {
            break;
        }
        usleep(10000);
    }
    assert_true(st.st_size >= (256 << 10));
    ops->close(bus);
    assert_int_equal(stat(seg, &st), 0);
    off_t full = st.st_size;
    assert_true(full > 0 && full < 4096);
    assert_int_equal(truncate(seg, full + (1 << 20)), 0); /* what a kill -9 leaves */
    bus = open_bus(dir, 64 << 20);
    assert_int_equal(count_all(bus, &ALL, NULL), 5);
    int s[6];
    assert_int_equal(append(bus, 7, 0, 6, s), UMG_OK);
    assert_int_equal(s[0], UMG_EEXIST);
    assert_int_equal(s[5], UMG_OK);
    assert_int_equal(count_all(bus, &ALL, NULL), 6);
    ops->close(bus);
    assert_int_equal(stat(seg, &st), 0);
    assert_true(st.st_size > full && st.st_size < 4096);
    bus = open_bus(dir, 64 << 20);
    assert_int_equal(count_all(bus, &ALL, NULL), 6);
    ops->close(bus);
    free(seg);
    rmrf(dir);
    free(dir);
}

static void test_roll_and_index_rebuild(void **state)
{
    (void)state;
    char *dir = tmpdir();
    umg_bus_t *bus = open_bus(dir, 4096);
    for (uint32_t k = 0; k < 20; k++) {
        assert_int_equal(append(bus, 3, k * 10, 10, NULL), UMG_OK);
    }
    umg_bus_stats_t st;
    ops->stats(bus, &st);
    assert_true(st.segments > 3);
    assert_int_equal(st.durable_offset, 200);
    uint64_t last;
    assert_int_equal(count_all(bus, &ALL, &last), 200);
    assert_int_equal(last, 199);
    /* Reading from an offset in the middle. */
    umg_bus_read_opts_t o = {.partition = -1, .from_offset = 123};
    assert_int_equal(count_all(bus, &o, NULL), 77);
    umg_bus_read_opts_t ot = {.partition = -1, .from_offset = 123, .to_offset = 150};
    assert_int_equal(count_all(bus, &ot, &last), 27);
    assert_int_equal(last, 149);
    ops->close(bus);
    /* Delete every index: recovery rebuilds them from the segments. */
    DIR *d = opendir(dir);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l > 4 && strcmp(de->d_name + l - 4, ".idx") == 0) {
            char p[4200];
            snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
            unlink(p);
        }
    }
    closedir(d);
    bus = open_bus(dir, 4096);
    assert_int_equal(count_all(bus, &ALL, NULL), 200);
    int s[10];
    assert_int_equal(append(bus, 3, 0, 10, s), UMG_OK);
    assert_int_equal(s[9], UMG_EEXIST);
    ops->close(bus);
    rmrf(dir);
    free(dir);
}

/* Pages of the file at path in the page cache, and its size in pages. */
static size_t resident_pages(const char *path, size_t *pages)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    size_t pg = (size_t)sysconf(_SC_PAGESIZE), n = ((size_t)st.st_size + pg - 1) / pg, in = 0;
    *pages = n;
    if (n > 0) {
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
        assert_true(m != MAP_FAILED);
        unsigned char *v = calloc(n, 1);
        assert_int_equal(mincore(m, (size_t)st.st_size, v), 0);
        for (size_t i = 0; i < n; i++) {
            in += v[i] & 1;
        }
        free(v);
        munmap(m, (size_t)st.st_size);
    }
    close(fd);
    return in;
}

/* Reads the whole log with or without drop_behind; returns the log's resident pages, and its pages in *pages. */
static size_t read_and_count_cached(const char *dir, umg_bus_t *bus, int drop, size_t *pages, size_t *active_in,
                                    size_t *active_pages)
{
    umg_bus_read_opts_t o = {.partition = -1, .drop_behind = drop};
    assert_int_equal(count_all(bus, &o, NULL), 80000);
    size_t in = 0;
    *pages = 0;
    DIR *d = opendir(dir);
    struct dirent *de;
    uint64_t last = 0; /* the active segment: the newest base */
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        int is_log = l > 4 && strcmp(de->d_name + l - 4, ".log") == 0;
        if (is_log || (l > 4 && strcmp(de->d_name + l - 4, ".idx") == 0)) {
            char p[4200];
            snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
            size_t n, r = resident_pages(p, &n);
            uint64_t base = strtoull(de->d_name, NULL, 10);
            in += r;
            *pages += n;
            if (is_log && base >= last) {
                last = base;
                *active_in = r;
                *active_pages = n;
            }
        }
    }
    closedir(d);
    return in;
}

/*
 * A drop_behind reader (the pipeline's) leaves the log's pages it has read out
 * of the page cache: all of a sealed segment it read to the end, the active
 * segment's up to where its read-ahead window last moved from, in steps.
 * Without it they stay cached.
 */
static void test_drop_behind(void **state)
{
    (void)state;
    char *dir = tmpdir();
    uint64_t step = umg__log_drop_step;
    umg__log_drop_step = 64 * 1024;
    umg_bus_t *bus = open_bus(dir, 4 << 20);
    for (uint32_t k = 0; k < 80; k++) {
        assert_int_equal(append(bus, 3, k * 1000, 1000, NULL), UMG_OK);
    }
    umg_bus_stats_t st;
    ops->stats(bus, &st);
    assert_int_equal(st.segments, 2);
    size_t pages, active, active_pages, in = read_and_count_cached(dir, bus, 0, &pages, &active, &active_pages);
    assert_true(in * 10 > pages * 9); /* just written and read: cached */
    assert_true(active_pages > 300);  /* more than the reader's 1 MiB window */
    in = read_and_count_cached(dir, bus, 1, &pages, &active, &active_pages);
    /* Left: the active segment past the last place the reader's window moved from (its index stays, small);
     * at least 256 KiB of it went. */
    assert_true(active + (256 << 10) / 4096 <= active_pages);
    assert_true(in * 2 < pages);
    /* Dropped pages read again from the disk give the same records. */
    assert_int_equal(count_all(bus, &ALL, NULL), 80000);
    ops->close(bus);
    umg__log_drop_step = step;
    rmrf(dir);
    free(dir);
}

typedef struct notes_s {
    _Atomic uint64_t calls, end;
} notes_t;

static void on_note(void *arg, uint64_t end)
{
    notes_t *n = arg;
    atomic_fetch_add(&n->calls, 1);
    atomic_store(&n->end, end);
}

/* The notification comes after the acknowledgement, from the bus's thread: wait for it (a generous bound). */
static uint64_t note_end(notes_t *n, uint64_t want)
{
    for (int i = 0; i < 5000 && atomic_load(&n->end) < want; i++) {
        usleep(1000);
    }
    return atomic_load(&n->end);
}

/* set_notify: told the new acknowledged end after each group, under fsync=always (the syncer) and never (the
 * writer); nothing once it is cleared. */
static void test_notify(void **state)
{
    (void)state;
    for (int never = 0; never < 2; never++) {
        char *dir = tmpdir();
        umg_bus_config_t cfg;
        umg_bus_config_defaults(&cfg);
        cfg.dir = dir;
        cfg.partitions = 4;
        cfg.fsync_policy = never ? UMG_FSYNC_NEVER : UMG_FSYNC_ALWAYS;
        umg_bus_t *bus = NULL;
        assert_int_equal(ops->open(&cfg, &bus), UMG_OK);
        assert_int_equal(append(bus, 1, 0, 10, NULL), UMG_OK); /* before: nobody is told */
        notes_t n = {0};
        ops->set_notify(bus, on_note, &n);
        assert_int_equal(atomic_load(&n.calls), 0);
        assert_int_equal(append(bus, 1, 100, 5, NULL), UMG_OK);
        assert_int_equal(note_end(&n, 15), 15);
        assert_int_equal(append(bus, 1, 200, 7, NULL), UMG_OK);
        assert_int_equal(note_end(&n, 22), 22);
        umg_bus_stats_t st;
        ops->stats(bus, &st);
        assert_int_equal(st.durable_offset, 22);
        ops->set_notify(bus, NULL, NULL);
        uint64_t calls = atomic_load(&n.calls);
        assert_true(calls >= 2);
        assert_int_equal(append(bus, 1, 300, 3, NULL), UMG_OK);
        ops->close(bus); /* joins the bus's threads: a call after the clear would have happened by now */
        assert_int_equal(atomic_load(&n.calls), calls);
        assert_int_equal(atomic_load(&n.end), 22);
        rmrf(dir);
        free(dir);
    }
}

static void test_write_failure_undoes_dedupe(void **state)
{
    (void)state;
    char *dir = tmpdir();
    umg_bus_t *bus = open_bus(dir, 1 << 20);
    assert_int_equal(append(bus, 1, 0, 3, NULL), UMG_OK);
    umg__log_inject_write_errno = ENOSPC;
    assert_int_equal(append(bus, 1, 100, 3, NULL), UMG_ENOSPC);
    /* Nothing of the failed group is visible, and its ids are not taken. */
    assert_int_equal(count_all(bus, &ALL, NULL), 3);
    int s[3];
    assert_int_equal(append(bus, 1, 100, 3, s), UMG_OK);
    assert_int_equal(s[0], UMG_OK);
    assert_int_equal(count_all(bus, &ALL, NULL), 6);
    ops->close(bus);
    bus = open_bus(dir, 1 << 20);
    assert_int_equal(count_all(bus, &ALL, NULL), 6);
    ops->close(bus);
    rmrf(dir);
    free(dir);
}

/*
 * A failed fdatasync (fsync=always): the group it covered is refused, and a restart must not find it. The kernel
 * may have dropped its pages and marked them clean, so a restart would read back, as stored, records the disk may
 * never hold, and answer the retries of the refused events as duplicates (found in review). The log is cut back
 * to its last durable record; after a restart the refused ids are new and the earlier ones still duplicates.
 */
static void test_failed_fsync_cuts_back(void **state)
{
    (void)state;
    char *dir = tmpdir();
    umg_bus_t *bus = open_bus(dir, 1 << 20);
    assert_int_equal(append(bus, 1, 0, 3, NULL), UMG_OK);
    atomic_store(&umg__log_inject_sync_errno, EIO);
    assert_int_equal(append(bus, 1, 100, 3, NULL), UMG_EIO);
    assert_int_equal(append(bus, 1, 200, 2, NULL), UMG_EIO); /* refused until a restart */
    umg_bus_stats_t st;
    ops->stats(bus, &st);
    assert_int_equal(st.broken, 1); /* GET /readyz says so */
    assert_int_equal(st.durable_offset, 3);
    /* A forget pass cannot have the active segment sealed now: it is told so, not that it covered it. */
    app_rw_t seen = {{0}};
    umg_bus_rewriter_t rw = {.ctx = &seen, .roll_active = 1, .record = count_record};
    umg_bus_rewrite_stats_t rs;
    assert_int_equal(ops->rewrite(bus, &rw, &rs), UMG_EIO);
    ops->close(bus);
    bus = open_bus(dir, 1 << 20);
    assert_int_equal(count_all(bus, &ALL, NULL), 3);
    int s[3];
    assert_int_equal(append(bus, 1, 100, 3, s), UMG_OK);
    assert_int_equal(s[0], UMG_OK);
    assert_int_equal(s[2], UMG_OK);
    assert_int_equal(append(bus, 1, 0, 3, s), UMG_OK);
    assert_int_equal(s[0], UMG_EEXIST);
    assert_int_equal(count_all(bus, &ALL, NULL), 6);
    ops->stats(bus, &st);
    assert_int_equal(st.broken, 0);
    ops->close(bus);
    /* A start whose sync of the active segment fails does not open: readers would see records not on disk. */
    atomic_store(&umg__log_inject_sync_errno, EIO);
    umg_bus_config_t cfg;
    umg_bus_config_defaults(&cfg);
    cfg.dir = dir;
    cfg.partitions = 4;
    assert_int_equal(ops->open(&cfg, &bus), UMG_EIO);
    atomic_store(&umg__log_inject_sync_errno, 0);
    rmrf(dir);
    free(dir);
}

/* A group that fails half-way (out of memory growing the write buffer) must not forget
 * the ids of records that were already stored before it. */
static void test_failed_group_keeps_earlier_ids(void **state)
{
    (void)state;
    char *dir = tmpdir();
    umg_bus_t *bus = open_bus(dir, 64 << 20);
    assert_int_equal(append(bus, 1, 7, 1, NULL), UMG_OK); /* X = id 7 */
    size_t big = 3 << 20;
    char *payload = calloc(1, big);
    memset(payload, 'x', big);
    umg_bus_rec_t recs[2];
    memset(recs, 0, sizeof(recs));
    int64_t now = umg_now_us();
    for (int i = 0; i < 2; i++) {
        recs[i].app = 1;
        recs[i].kind = UMG_BUS_KIND_EVENT;
        recs[i].event_us = recs[i].recv_us = now;
    }
    make_id(&recs[0].id, 500);
    recs[0].payload = payload;
    recs[0].len = (uint32_t)big;
    make_id(&recs[1].id, 7);
    recs[1].payload = "{}";
    recs[1].len = 2;
    waiter_t w = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    umg_bus_batch_t b = {.recs = recs, .n = 2, .done = on_done, .data = &w};
    umg_alloc_fail_after(1);
    assert_int_equal(ops->submit(bus, &b), UMG_OK);
    pthread_mutex_lock(&w.mu);
    while (!w.done) {
        pthread_cond_wait(&w.cv, &w.mu);
    }
    pthread_mutex_unlock(&w.mu);
    umg_alloc_fail_after(0);
    assert_int_equal(w.status, UMG_ENOMEM);
    /* X is still known: a retry is a duplicate, and the log holds it once. */
    int st[1];
    assert_int_equal(append(bus, 1, 7, 1, st), UMG_OK);
    assert_int_equal(st[0], UMG_EEXIST);
    assert_int_equal(count_all(bus, &ALL, NULL), 1);
    free(payload);
    ops->close(bus);
    rmrf(dir);
    free(dir);
}

static void test_time_filter_and_offsets(void **state)
{
    (void)state;
    char *dir = tmpdir();
    umg_bus_t *bus = open_bus(dir, 1 << 20);
    assert_int_equal(append(bus, 1, 0, 50, NULL), UMG_OK);
    umg_bus_reader_t *r;
    assert_int_equal(ops->reader_open(bus, &ALL, &r), UMG_OK);
    umg_bus_msg_t m;
    int64_t ts[50];
    for (int i = 0; i < 50; i++) {
        assert_int_equal(ops->reader_next(r, &m), UMG_OK);
        ts[i] = m.event_us;
    }
    ops->reader_close(r);
    umg_bus_read_opts_t o = {.partition = -1, .event_from_us = ts[10], .event_to_us = ts[20]};
    assert_int_equal(count_all(bus, &o, NULL), 10);

    uint64_t off = 99;
    assert_int_equal(ops->committed(bus, "pipeline", 2, &off), UMG_OK);
    assert_int_equal(off, 0);
    assert_int_equal(ops->commit(bus, "pipeline", 2, 42), UMG_OK);
    assert_int_equal(ops->commit(bus, "../evil", 2, 42), UMG_EINVAL);
    assert_int_equal(ops->commit(bus, "pipeline", 9, 42), UMG_EINVAL);
    ops->close(bus);
    bus = open_bus(dir, 1 << 20);
    assert_int_equal(ops->committed(bus, "pipeline", 2, &off), UMG_OK);
    assert_int_equal(off, 42);
    assert_int_equal(ops->partitions(bus), 4);
    ops->close(bus);
    rmrf(dir);
    free(dir);
}

typedef struct conc_s {
    umg_bus_t *bus;
    uint32_t base;
} conc_t;

static void *producer(void *arg)
{
    conc_t *c = arg;
    for (uint32_t k = 0; k < 50; k++) {
        assert_int_equal(append(c->bus, 9, c->base + k * 20, 20, NULL), UMG_OK);
    }
    return NULL;
}

static void test_concurrent_group_commit(void **state)
{
    (void)state;
    char *dir = tmpdir();
    umg_bus_t *bus = open_bus(dir, 64 << 10);
    pthread_t th[4];
    conc_t c[4];
    for (int i = 0; i < 4; i++) {
        c[i].bus = bus;
        c[i].base = (uint32_t)i * 100000;
        pthread_create(&th[i], NULL, producer, &c[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
    }
    assert_int_equal(count_all(bus, &ALL, NULL), 4000);
    ops->close(bus);
    bus = open_bus(dir, 64 << 10);
    assert_int_equal(count_all(bus, &ALL, NULL), 4000);
    ops->close(bus);
    rmrf(dir);
    free(dir);
}

static void test_offset_for_time(void **state)
{
    (void)state;
    char *dir = tmpdir();
    umg_bus_t *bus = open_bus(dir, 4096);
    uint64_t off = 99;
    assert_int_equal(ops->offset_for_time(bus, 0, &off), UMG_OK);
    assert_int_equal(off, 0); /* empty log: the end */
    assert_int_equal(append(bus, 1, 0, 30, NULL), UMG_OK);
    int64_t t_mid = umg_now_us() + 1100000;
    usleep(2100000); /* the index keeps seconds */
    assert_int_equal(append(bus, 1, 100, 30, NULL), UMG_OK);
    assert_int_equal(ops->offset_for_time(bus, 0, &off), UMG_OK);
    assert_int_equal(off, 0);
    assert_int_equal(ops->offset_for_time(bus, t_mid, &off), UMG_OK);
    assert_int_equal(off, 30);
    assert_int_equal(ops->offset_for_time(bus, umg_now_us() + 3600000000ll, &off), UMG_OK);
    assert_int_equal(off, 60);
    ops->close(bus);
    rmrf(dir);
    free(dir);
}

/* The offset of the first record a reader from the start gets. */
static uint64_t first_offset(umg_bus_t *bus)
{
    umg_bus_reader_t *r;
    assert_int_equal(ops->reader_open(bus, &ALL, &r), UMG_OK);
    umg_bus_msg_t m;
    assert_int_equal(ops->reader_next(r, &m), UMG_OK);
    ops->reader_close(r);
    return m.offset;
}

/*
 * Sealed segments of fresh records survive the age rule. The size rule trims the oldest, but never records
 * within the dedupe horizon (a restart rebuilds the dedupe set from the log) nor records past the floor a reader
 * set (the pipeline has not applied them); with hold_for_reader nothing goes before the first floor.
 */
static void test_retention(void **state)
{
    (void)state;
    char *dir = tmpdir();
    umg_bus_t *bus = open_bus(dir, 4096);
    for (uint32_t k = 0; k < 30; k++) {
        assert_int_equal(append(bus, 3, k * 10, 10, NULL), UMG_OK);
    }
    usleep(1300000); /* housekeeping runs about once a second */
    assert_int_equal(count_all(bus, &ALL, NULL), 300);
    ops->close(bus);
    g_retention_bytes = 12000; /* the dedupe horizon at its default (7 days) holds every segment */
    bus = open_bus(dir, 4096);
    assert_int_equal(append(bus, 3, 300, 10, NULL), UMG_OK);
    usleep(1300000);
    assert_int_equal(count_all(bus, &ALL, NULL), 310);
    assert_int_equal(first_offset(bus), 0);
    ops->close(bus);
    g_dedupe_horizon_ms = 1; /* the ids are no longer remembered: the floor alone holds them */
    g_hold = 1;
    usleep(5000);
    bus = open_bus(dir, 4096);
    assert_int_equal(append(bus, 3, 310, 10, NULL), UMG_OK);
    usleep(1300000);
    assert_int_equal(count_all(bus, &ALL, NULL), 320);
    ops->set_floor(bus, 100); /* the segments wholly before offset 100 may go, no other */
    usleep(1300000);
    uint64_t first = first_offset(bus);
    assert_true(first > 0 && first <= 100);
    assert_int_equal(count_all(bus, &ALL, NULL), 320 - first);
    ops->set_floor(bus, UINT64_MAX);
    usleep(1300000);
    umg_bus_stats_t st;
    ops->stats(bus, &st);
    assert_true(st.bytes <= 12000 + 4096);
    uint64_t last;
    size_t left = count_all(bus, &ALL, &last);
    assert_true(left > 0 && left < 320 - first);
    assert_int_equal(last, 319); /* the newest records are kept */
    /* A reader bounded to a removed range gets nothing, never a record after its bound (GET /v1/attribution
     * once gave another touch's click_id so). */
    umg_bus_read_opts_t o = {.partition = -1, .from_offset = 0, .to_offset = 1};
    umg_bus_reader_t *r;
    umg_bus_msg_t m;
    assert_int_equal(ops->reader_open(bus, &o, &r), UMG_OK);
    assert_int_equal(ops->reader_next(r, &m), UMG_EAGAIN);
    ops->reader_close(r);
    ops->close(bus);
    g_retention_bytes = g_dedupe_horizon_ms = 0;
    g_hold = 0;
    rmrf(dir);
    free(dir);
}

typedef struct visit_s {
    umg_bus_t *bus;
    uint64_t bases[64];
    size_t n;
    int drop_at; /* at this segment, let retention remove the ones before it (0: never) */
} visit_t;

static int visit_want(void *ctx, const umg_bus_seg_info_t *seg)
{
    visit_t *v = ctx;
    v->bases[v->n++] = seg->base;
    if (v->drop_at != 0 && (int)v->n == v->drop_at) {
        ops->set_floor(v->bus, UINT64_MAX);
        usleep(1300000); /* housekeeping removes the segments before this one, which is busy */
    }
    return 0; /* looked at, not read */
}

static int keep_record(void *ctx, const umg_bus_msg_t *m, umg_buf_t *out)
{
    (void)ctx, (void)m, (void)out;
    return UMG_BUS_KEEP;
}

/* A pass over the sealed segments (a forget pass) visits every one, even when retention removes segments it
 * has passed while it runs: the list shifts, and a pass that walked it by position skipped as many. */
static void test_rewrite_survives_retention(void **state)
{
    (void)state;
    char *dir = tmpdir();
    g_retention_bytes = 1;
    g_dedupe_horizon_ms = 1;
    g_hold = 1; /* nothing goes before the floor is set */
    umg_bus_t *bus = open_bus(dir, 4096);
    for (uint32_t k = 0; k < 30; k++) {
        assert_int_equal(append(bus, 3, k * 10, 10, NULL), UMG_OK);
    }
    usleep(5000);
    umg_bus_rewriter_t rw = {.want = visit_want, .record = keep_record};
    visit_t all = {.bus = bus};
    rw.ctx = &all;
    umg_bus_rewrite_stats_t st;
    assert_int_equal(ops->rewrite(bus, &rw, &st), UMG_OK);
    assert_true(all.n >= 5);
    visit_t v = {.bus = bus, .drop_at = 3};
    rw.ctx = &v;
    assert_int_equal(ops->rewrite(bus, &rw, &st), UMG_OK);
    assert_int_equal(v.n, all.n);
    for (size_t i = 0; i < v.n; i++) {
        assert_int_equal(v.bases[i], all.bases[i]);
    }
    assert_int_equal(first_offset(bus), all.bases[2]); /* the two before were removed meanwhile */
    ops->close(bus);
    g_retention_bytes = g_dedupe_horizon_ms = 0;
    g_hold = 0;
    rmrf(dir);
    free(dir);
}

static void put_file(const char *dir, uint64_t base, const char *ext, const char *text)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%020llu.%s", dir, (unsigned long long)base, ext);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int has_file(const char *dir, uint64_t base, const char *ext)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%020llu.%s", dir, (unsigned long long)base, ext);
    return access(path, F_OK) == 0;
}

/* 300 records over several small segments; the bases of the sealed ones (a rewrite that reads none visits them). */
static visit_t sealed_segments(umg_bus_t *bus)
{
    for (uint32_t k = 0; k < 30; k++) {
        assert_int_equal(append(bus, 3, k * 10, 10, NULL), UMG_OK);
    }
    visit_t all = {.bus = bus};
    umg_bus_rewriter_t rw = {.ctx = &all, .want = visit_want, .record = keep_record};
    umg_bus_rewrite_stats_t st;
    assert_int_equal(ops->rewrite(bus, &rw, &st), UMG_OK);
    return all;
}

/* What a rewrite stopped by a crash leaves goes at the next open: both temporary files when it had renamed
 * nothing; the index as well when it had renamed the log only (the index is built again from the log). */
static void test_rewrite_leftovers(void **state)
{
    (void)state;
    char *dir = tmpdir();
    umg_bus_t *bus = open_bus(dir, 4096);
    visit_t all = sealed_segments(bus);
    assert_true(all.n >= 2);
    ops->close(bus);
    uint64_t a = all.bases[0], b = all.bases[1];
    put_file(dir, a, "log.new", "half a rewrite");
    put_file(dir, a, "idx.new", "half an index");
    put_file(dir, b, "idx.new", "the new index");
    /* b's log was replaced, its index not: an old index, whole entries, whose last one still fits the log but
     * whose second points elsewhere (recovery would trust it). */
    char path[4096];
    snprintf(path, sizeof(path), "%s/%020llu.idx", dir, (unsigned long long)b);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    uint32_t pos;
    assert_int_equal(fseek(f, 40, SEEK_SET), 0);
    assert_int_equal(fread(&pos, 4, 1, f), 1);
    pos += 7;
    assert_int_equal(fseek(f, 40, SEEK_SET), 0);
    assert_int_equal(fwrite(&pos, 4, 1, f), 1);
    fclose(f);
    bus = open_bus(dir, 4096);
    assert_false(has_file(dir, a, "log.new") || has_file(dir, a, "idx.new") || has_file(dir, b, "idx.new"));
    assert_true(has_file(dir, b, "idx"));
    assert_int_equal(count_all(bus, &ALL, NULL), 300);
    ops->close(bus);
    rmrf(dir);
    free(dir);
}

/* Events and touches are deduplicated apart: a touch_id equal to an event_id is no duplicate (a sender reusing
 * one UUID lost the event once), a repeated touch is, and so it stays after a restart. */
static void test_dedupe_by_kind(void **state)
{
    (void)state;
    char *dir = tmpdir();
    umg_bus_t *bus = open_bus(dir, 1 << 20);
    int st[3];
    assert_int_equal(append_kind(bus, 1, 0, 3, st, UMG_BUS_KIND_EVENT), UMG_OK);
    assert_int_equal(append_kind(bus, 1, 0, 3, st, UMG_BUS_KIND_TOUCH), UMG_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(st[i], UMG_OK);
    }
    assert_int_equal(append_kind(bus, 1, 0, 3, st, UMG_BUS_KIND_TOUCH), UMG_OK);
    assert_int_equal(st[0], UMG_EEXIST);
    ops->close(bus);
    bus = open_bus(dir, 1 << 20);
    assert_int_equal(append_kind(bus, 1, 1, 1, st, UMG_BUS_KIND_TOUCH), UMG_OK);
    assert_int_equal(st[0], UMG_EEXIST);
    assert_int_equal(append_kind(bus, 1, 1, 1, st, UMG_BUS_KIND_EVENT), UMG_OK);
    assert_int_equal(st[0], UMG_EEXIST);
    assert_int_equal(count_all(bus, &ALL, NULL), 6);
    ops->close(bus);
    rmrf(dir);
    free(dir);
}

/* A record damaged in a sealed segment stops a reader with UMG_ECORRUPT, or, with skip_damaged, is returned
 * without its payload and the reader goes on (the pipeline skips it rather than stopping for ever). */
static void test_skip_damaged(void **state)
{
    (void)state;
    char *dir = tmpdir();
    umg_bus_t *bus = open_bus(dir, 4096);
    visit_t all = sealed_segments(bus);
    assert_true(all.n >= 2);
    ops->close(bus);
    damage_record(dir, all.bases[1], 2, 3, 0x20); /* the third record of the second segment */
    uint64_t bad = all.bases[1] + 2;

    bus = open_bus(dir, 4096);
    umg_bus_reader_t *r;
    umg_bus_msg_t m;
    assert_int_equal(ops->reader_open(bus, &ALL, &r), UMG_OK);
    int rc;
    size_t n = 0;
    while ((rc = ops->reader_next(r, &m)) == UMG_OK) {
        n++;
    }
    assert_int_equal(rc, UMG_ECORRUPT);
    assert_int_equal(n, bad);
    ops->reader_close(r);
    umg_bus_read_opts_t o = {.partition = -1, .skip_damaged = 1};
    assert_int_equal(ops->reader_open(bus, &o, &r), UMG_OK);
    n = 0;
    size_t empty = 0;
    while ((rc = ops->reader_next(r, &m)) == UMG_OK) {
        n++;
        if (m.len == 0) {
            empty++;
            assert_int_equal(m.offset, bad);
            assert_int_equal(m.app, 3);
        }
    }
    assert_int_equal(rc, UMG_EAGAIN);
    assert_int_equal(n, 300);
    assert_int_equal(empty, 1);
    ops->reader_close(r);
    ops->close(bus);
    rmrf(dir);
    free(dir);
}

static void test_decode_rejects_garbage(void **state)
{
    (void)state;
    uint8_t buf[UMG_LOG_HDR + 8];
    umg_bus_msg_t m = {.offset = 5, .app = 1, .len = 8, .payload = "abcdefgh"};
    umg__log_encode_hdr(buf, &m);
    memcpy(buf + UMG_LOG_HDR, "abcdefgh", 8);
    umg_bus_msg_t out;
    assert_int_equal(umg__log_decode(buf, sizeof(buf), &out), (long)sizeof(buf));
    assert_int_equal(out.offset, 5);
    assert_int_equal(umg__log_decode(buf, sizeof(buf) - 1, &out), 0);
    assert_int_equal(umg__log_decode(buf, 10, &out), 0);
    buf[UMG_LOG_HDR + 3] ^= 1;
    assert_int_equal(umg__log_decode(buf, sizeof(buf), &out), UMG_ECORRUPT);
}

int main(void)
{
    umg_log_min_level = UMG_LOG_ERROR;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_read_dedupe),
        cmocka_unit_test(test_scan_budget),
        cmocka_unit_test(test_read_while_rewritten),
        cmocka_unit_test(test_rewrite_apps_filter),
        cmocka_unit_test(test_rewrite_segment_info),
        cmocka_unit_test(test_rewrite_from_first_change),
        cmocka_unit_test(test_torn_tail_every_offset),
        cmocka_unit_test(test_zeros_written_ahead),
        cmocka_unit_test(test_roll_and_index_rebuild),
        cmocka_unit_test(test_drop_behind),
        cmocka_unit_test(test_notify),
        cmocka_unit_test(test_write_failure_undoes_dedupe),
        cmocka_unit_test(test_failed_fsync_cuts_back),
        cmocka_unit_test(test_failed_group_keeps_earlier_ids),
        cmocka_unit_test(test_time_filter_and_offsets),
        cmocka_unit_test(test_concurrent_group_commit),
        cmocka_unit_test(test_decode_rejects_garbage),
        cmocka_unit_test(test_offset_for_time),
        cmocka_unit_test(test_retention),
        cmocka_unit_test(test_rewrite_survives_retention),
        cmocka_unit_test(test_rewrite_leftovers),
        cmocka_unit_test(test_dedupe_by_kind),
        cmocka_unit_test(test_skip_damaged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
