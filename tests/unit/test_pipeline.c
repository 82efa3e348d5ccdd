/*
 * test_pipeline.c - the attribution pipeline over a real event log and a
 * real store, with receive times chosen by the test: a restart decides the
 * windowed fraud rules as a replay of the whole log does (the counters a
 * restart rebuilds from the log cover every bucket the next records can
 * fall in, a UTC day's bucket with items received the day before too).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "umg_bus.h"
#include "log_damage.h"
#include "umg_pipeline.h"
#include "umg_store.h"

#define S_ INT64_C(1000000)
#define H_ (3600 * S_)
#define D_ (24 * H_)

static const umg_bus_ops_t *ops = &umg_bus_log_ops;

typedef struct waiter_s {
    _Atomic int done;
    int status;
} waiter_t;

static void on_done(umg_bus_batch_t *b, int status)
{
    waiter_t *w = b->data;
    w->status = status;
    w->done = 1;
}

static char *tmpdir(void)
{
    char *d = strdup("/tmp/umg-test-pipeline-XXXXXX");
    assert_non_null(mkdtemp(d));
    return d;
}

static void rmrf(const char *path)
{
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    assert_int_equal(system(cmd), 0);
}

/* Appends an install of device n, dated ts and received at recv, from ip with a User-Agent; returns its offset. */
static uint64_t install(umg_bus_t *bus, int n, int64_t ts, int64_t recv, const char *ip)
{
    char json[1024], t[40], r[40];
    umg_time_format_rfc3339(ts, t);
    umg_time_format_rfc3339(recv, r);
    int len = snprintf(json, sizeof(json),
                       "{\"event_id\":\"00000000-0000-4000-8000-%012x\",\"type\":\"install\",\"ts\":\"%s\","
                       "\"received_at\":\"%s\",\"app_id\":\"app_x\",\"device\":{\"gaid\":\"11111111-2222-4333-8444-"
                       "%012x\",\"platform\":\"android\",\"os_version\":\"14\"},\"ip\":\"%s\","
                       "\"user_agent\":\"Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8)\"}",
                       n, t, r, n, ip);
    umg_bus_rec_t rec = {.app = 1,
                         .partition = (uint16_t)(n % 4),
                         .kind = UMG_BUS_KIND_EVENT,
                         .event_us = ts,
                         .recv_us = recv,
                         .payload = json,
                         .len = (uint32_t)len};
    memset(&rec.id, 0, sizeof(rec.id));
    memcpy(rec.id.b, &n, sizeof(n));
    rec.id.b[15] = 0x77;
    waiter_t w = {0};
    umg_bus_batch_t b = {.recs = &rec, .n = 1, .done = on_done, .data = &w};
    assert_int_equal(ops->submit(bus, &b), UMG_OK);
    while (!w.done) {
        usleep(100);
    }
    assert_int_equal(w.status, UMG_OK);
    assert_int_equal(rec.status, UMG_OK);
    return rec.offset;
}

/* A log in logdir for these tests (no fsync; segments of segment_bytes, 0: the default). */
static umg_bus_t *open_log(const char *logdir, int64_t segment_bytes, umg_bus_config_t *bc)
{
    umg_bus_config_defaults(bc);
    bc->dir = logdir;
    bc->partitions = 4;
    bc->fsync_policy = UMG_FSYNC_NEVER;
    bc->segment_bytes = segment_bytes ? segment_bytes : bc->segment_bytes;
    umg_bus_t *bus;
    assert_int_equal(ops->open(bc, &bus), UMG_OK);
    return bus;
}

/* A pipeline (a start of the daemon) applies the log up to its end, then stops; returns the records it skipped. */
static uint64_t run_pipeline(umg_bus_t *bus, const char *storedir)
{
    umg_store_config_t sc = {.map_bytes = 1ll << 30, .device_cache_bytes = 1 << 20};
    umg_store_t *st;
    assert_int_equal(umg_store_open(storedir, &sc, &st), UMG_OK);
    umg_pipeline_config_t pc;
    umg_pipeline_config_defaults(&pc);
    pc.fraud = 1;
    pc.decode_thread = 0;
    umg_pipeline_t *p;
    assert_int_equal(umg_pipeline_new(&pc, st, ops, bus, NULL, NULL, &p), UMG_OK);
    umg_bus_stats_t bs;
    ops->stats(bus, &bs);
    for (int i = 0; i < 1000 && umg_pipeline_next_offset(p) < bs.durable_offset; i++) {
        size_t n;
        assert_int_equal(umg_pipeline_step(p, &n), UMG_OK);
    }
    assert_int_equal(umg_pipeline_next_offset(p), bs.durable_offset);
    umg_pipeline_stats_t ps;
    umg_pipeline_stats(p, &ps);
    umg_pipeline_free(p);
    umg_store_close(st);
    return ps.skipped;
}

typedef struct find_s {
    uint64_t offset;
    int found, status;
} find_t;

static int find_decision(void *ctx, const umg_store_decision_t *d)
{
    find_t *f = ctx;
    if (d->offset == f->offset) {
        f->found = 1;
        f->status = d->fraud_status;
    }
    return 0;
}

/* The fraud status of the install at offset, as storedir decided it. */
static int fraud_status(const char *storedir, uint64_t offset)
{
    umg_store_config_t sc = {.map_bytes = 1ll << 30};
    umg_store_t *st;
    umg_store_txn_t *tx;
    assert_int_equal(umg_store_open(storedir, &sc, &st), UMG_OK);
    assert_int_equal(umg_store_begin(st, 0, &tx), UMG_OK);
    find_t f = {.offset = offset};
    assert_int_equal(umg_store_decisions_scan(tx, 1, INT64_MIN / 2, INT64_MAX / 2, NULL, find_decision, &f), UMG_OK);
    umg_store_abort(tx);
    umg_store_close(st);
    assert_true(f.found);
    return f.status;
}

/*
 * Ten installs from one IP and User-Agent on day D, received at D 10:08; the daemon restarts on D+1 (an
 * unrelated install at 10:38), then an eleventh from them, dated D 20:00 (within the day of horizon), arrives
 * at D+1 10:40: the device-farm rule (more than 10 per IP + User-Agent in a UTC day) rejects it, after the
 * restart as in a replay. The counters rebuilt at the restart once began a horizon before 10:38 and missed the
 * ten.
 */
static void test_restart_decides_as_a_replay(void **state)
{
    (void)state;
    char *dir = tmpdir(), logdir[4200], live[4200], replay[4200];
    snprintf(logdir, sizeof(logdir), "%s/log", dir);
    snprintf(live, sizeof(live), "%s/live", dir);
    snprintf(replay, sizeof(replay), "%s/replay", dir);
    umg_bus_config_t bc;
    umg_bus_t *bus = open_log(logdir, 0, &bc);
    int64_t now = umg_now_us(), day = now - now % D_ - 5 * D_;
    for (int i = 0; i < 10; i++) {
        install(bus, i, day + 10 * H_ + i * S_, day + 10 * H_ + 8 * 60 * S_ + i, "203.0.113.60");
    }
    run_pipeline(bus, live);
    install(bus, 100, day + D_ + 10 * H_ + 38 * 60 * S_, day + D_ + 10 * H_ + 38 * 60 * S_, "198.51.100.9");
    run_pipeline(bus, live);
    uint64_t x = install(bus, 10, day + 20 * H_, day + D_ + 10 * H_ + 40 * 60 * S_, "203.0.113.60");
    run_pipeline(bus, live);
    run_pipeline(bus, replay);
    assert_int_equal(fraud_status(replay, x), UMG_STORE_FRAUD_REJECTED);
    assert_int_equal(fraud_status(live, x), UMG_STORE_FRAUD_REJECTED);
    ops->close(bus);
    rmrf(dir);
    free(dir);
}

/* A record damaged in a sealed segment of the log (a flipped byte) is skipped, counted and logged; the
 * pipeline applies the rest instead of retrying that batch for ever. */
static void test_damaged_record_is_skipped(void **state)
{
    (void)state;
    char *dir = tmpdir(), logdir[4200], storedir[4200];
    snprintf(logdir, sizeof(logdir), "%s/log", dir);
    snprintf(storedir, sizeof(storedir), "%s/attr", dir);
    umg_bus_config_t bc;
    umg_bus_t *bus = open_log(logdir, 4096, &bc);
    int64_t now = umg_now_us();
    for (int i = 0; i < 30; i++) {
        install(bus, i, now - H_ + i * S_, now - H_ + i * S_, "203.0.113.9");
    }
    ops->close(bus);
    damage_record(logdir, 0, 2, 5, 0x01); /* the third record of the first segment (sealed: more follow) */
    assert_int_equal(ops->open(&bc, &bus), UMG_OK);
    assert_int_equal(run_pipeline(bus, storedir), 1);
    ops->close(bus);
    rmrf(dir);
    free(dir);
}

int main(void)
{
    umg_log_min_level = UMG_LOG_ERROR;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restart_decides_as_a_replay),
        cmocka_unit_test(test_damaged_record_is_skipped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
