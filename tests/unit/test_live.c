/*
 * test_live.c - the live feed's broadcast ring: nothing published while nobody watches, items
 * read back in order with their app and kind, a ring that wraps (overwritten items answer
 * UMG_ENOENT), truncation of items over the slot size, ingest's framing helpers, and several
 * publisher threads against a reader: every item read whole and exactly as written.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>

#include "umg_live.h"

static void read_ok(umg_live_t *l, uint64_t seq, uint32_t app, const char *kind, const char *json)
{
    umg_buf_t b = {0};
    uint32_t a = 0;
    char k[16];
    assert_int_equal(umg_live_read(l, seq, &a, k, &b), UMG_OK);
    assert_int_equal(a, app);
    assert_string_equal(k, kind);
    assert_int_equal(b.len, strlen(json));
    assert_memory_equal(b.ptr, json, b.len);
    umg_buf_free(&b);
}

static void test_nobody_watching(void **state)
{
    (void)state;
    umg_live_t *l;
    assert_int_equal(umg_live_new(8, 256, &l), UMG_OK);
    assert_false(umg_live_wanted(l, 7));
    umg_live_publish(l, 7, "event", "{}", 2);
    assert_int_equal(umg_live_head(l), 0);
    assert_false(umg_live_wanted(NULL, 7));
    umg_live_publish(NULL, 7, "event", "{}", 2); /* no feed: nothing happens */
    uint64_t next = umg_live_subscribe(l, 7);
    assert_int_equal(next, 0);
    assert_true(umg_live_wanted(l, 7));
    assert_false(umg_live_wanted(l, 8));
    umg_live_unsubscribe(l, 7);
    assert_false(umg_live_wanted(l, 7));
    umg_live_free(l);
    umg_live_free(NULL);
}

static void test_in_order(void **state)
{
    (void)state;
    umg_live_t *l;
    assert_int_equal(umg_live_new(8, 256, &l), UMG_OK);
    umg_live_subscribe(l, 1);
    umg_live_subscribe(l, 2);
    umg_live_publish(l, 1, "event", "{\"a\":1}\n", 8); /* the trailing newline goes */
    umg_live_publish(l, 2, "decision", "{\"b\":2}", 7);
    umg_live_publish_event(l, 1, "duplicate", "{\"event_id\":\"x\"}\n", 17);
    assert_int_equal(umg_live_head(l), 3);
    read_ok(l, 0, 1, "event", "{\"a\":1}");
    read_ok(l, 1, 2, "decision", "{\"b\":2}");
    read_ok(l, 2, 1, "event", "{\"status\":\"duplicate\",\"event\":{\"event_id\":\"x\"}}");
    umg_buf_t b = {0};
    uint32_t a;
    char k[16];
    assert_int_equal(umg_live_read(l, 3, &a, k, &b), UMG_EAGAIN);
    assert_int_equal(b.len, 0);
    umg_live_free(l);
}

/* A forget request wipes an app's items still in the ring (they may name the device); other apps' stay. */
static void test_forget_app(void **state)
{
    (void)state;
    umg_live_t *l;
    assert_int_equal(umg_live_new(8, 256, &l), UMG_OK);
    umg_live_subscribe(l, 1);
    umg_live_subscribe(l, 2);
    umg_live_publish(l, 1, "event", "{\"gaid\":\"g-1\"}", 14);
    umg_live_publish(l, 2, "event", "{\"b\":2}", 7);
    umg_live_forget_app(l, 1);
    umg_live_forget_app(NULL, 1);
    umg_buf_t b = {0};
    uint32_t a;
    char k[16];
    assert_int_equal(umg_live_read(l, 0, &a, k, &b), UMG_OK);
    assert_int_equal(a, 0); /* no stream's app */
    assert_int_equal(b.len, 0);
    read_ok(l, 1, 2, "event", "{\"b\":2}");
    umg_live_publish(l, 1, "event", "{\"a\":3}", 7); /* the ring goes on */
    read_ok(l, 2, 1, "event", "{\"a\":3}");
    umg_buf_free(&b);
    umg_live_free(l);
}

static void test_wraps(void **state)
{
    (void)state;
    umg_live_t *l;
    assert_int_equal(umg_live_new(4, 128, &l), UMG_OK);
    umg_live_subscribe(l, 3);
    char j[32];
    for (int i = 0; i < 10; i++) {
        int n = snprintf(j, sizeof(j), "{\"i\":%d}", i);
        umg_live_publish(l, 3, "event", j, (size_t)n);
    }
    umg_buf_t b = {0};
    uint32_t a;
    char k[16];
    for (uint64_t s = 0; s < 6; s++) {
        assert_int_equal(umg_live_read(l, s, &a, k, &b), UMG_ENOENT);
    }
    for (int i = 6; i < 10; i++) {
        snprintf(j, sizeof(j), "{\"i\":%d}", i);
        read_ok(l, (uint64_t)i, 3, "event", j);
    }
    assert_int_equal(umg_live_slots(l), 4);
    umg_buf_free(&b);
    umg_live_free(l);
}

static void test_truncates(void **state)
{
    (void)state;
    umg_live_t *l;
    assert_int_equal(umg_live_new(4, 64, &l), UMG_OK);
    umg_live_subscribe(l, 1);
    char big[100];
    memset(big, 'x', sizeof(big));
    umg_live_publish(l, 1, "event", big, sizeof(big));
    read_ok(l, 0, 1, "event", "{\"truncated\":true,\"bytes\":100}");
    /* A long rejection list keeps whole errors and says more were left out. */
    const char *errs = "{\"index\":0,\"code\":\"required\"},{\"index\":1,\"code\":\"required\"},"
                       "{\"index\":2,\"code\":\"required\"},{\"index\":3,\"code\":\"required\"}";
    umg_live_t *l2;
    assert_int_equal(umg_live_new(4, 160, &l2), UMG_OK);
    umg_live_subscribe(l2, 1);
    umg_live_publish_rejected(l2, 1, 5, errs, strlen(errs));
    read_ok(l2, 0, 1, "rejected",
            "{\"accepted\":5,\"rejected\":[{\"index\":0,\"code\":\"required\"},{\"index\":1,\"code\":\"required\"}],"
            "\"more\":true}");
    umg_live_publish_rejected(l2, 1, 0, "{\"index\":0}", 11);
    read_ok(l2, 1, 1, "rejected", "{\"accepted\":0,\"rejected\":[{\"index\":0}]}");
    /* A cut never lands inside a string: a field name may hold "},{" (and escaped quotes). */
    const char *tricky = "{\"index\":0,\"field\":\"a\\\"},{\\\"\"},{\"index\":1,\"field\":\"yyyy},{\\\"q\"},"
                         "{\"index\":2,\"field\":\"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz\"}";
    umg_live_publish_rejected(l2, 1, 0, tricky, strlen(tricky));
    read_ok(l2, 2, 1, "rejected",
            "{\"accepted\":0,\"rejected\":[{\"index\":0,\"field\":\"a\\\"},{\\\"\"},{\"index\":1,\"field\":\"yyyy},"
            "{\\\"q\"}],\"more\":true}");
    assert_int_equal(umg_live_new(1, 64, &l2 /* unchanged on error */), UMG_EINVAL);
    umg_live_free(l2);
    umg_live_free(l);
}

#define THREADS 4
#define PER_THREAD 50000

typedef struct {
    umg_live_t *l;
    int t;
} pub_arg_t;

static void *publisher(void *p)
{
    pub_arg_t *a = p;
    char j[96];
    for (int i = 0; i < PER_THREAD; i++) {
        /* the item's text is a function of its own numbers, so a torn copy shows */
        int n = snprintf(j, sizeof(j), "{\"t\":%d,\"i\":%d,\"pad\":\"%08d%08d%08d\"}", a->t, i, i, a->t, i);
        umg_live_publish(a->l, (uint32_t)a->t, "event", j, (size_t)n);
    }
    return NULL;
}

static void test_concurrent_publishers_and_a_reader(void **state)
{
    (void)state;
    umg_live_t *l;
    assert_int_equal(umg_live_new(256, 128, &l), UMG_OK);
    for (int t = 0; t < THREADS; t++) {
        umg_live_subscribe(l, (uint32_t)t);
    }
    pthread_t th[THREADS];
    pub_arg_t args[THREADS];
    for (int t = 0; t < THREADS; t++) {
        args[t] = (pub_arg_t){l, t};
        assert_int_equal(pthread_create(&th[t], NULL, publisher, &args[t]), 0);
    }
    uint64_t next = 0, ok = 0, gone = 0;
    umg_buf_t b = {0};
    int last_i[THREADS];
    for (int t = 0; t < THREADS; t++) {
        last_i[t] = -1;
    }
    const uint64_t total = (uint64_t)THREADS * PER_THREAD;
    while (next < total) {
        uint64_t head = umg_live_head(l);
        if (next >= head) {
            continue;
        }
        uint32_t app;
        char k[16];
        umg_buf_reset(&b);
        int rc = umg_live_read(l, next, &app, k, &b);
        if (rc == UMG_EAGAIN) {
            if (head - next > 2 * umg_live_slots(l)) {
                next++; /* skipped by its publisher, or lapped */
                gone++;
            }
            continue;
        }
        if (rc == UMG_ENOENT) {
            next++;
            gone++;
            continue;
        }
        assert_int_equal(rc, UMG_OK);
        int t, i, p1, p2, p3;
        char tail[4];
        assert_int_equal(b.len < 120, 1);
        char text[128];
        memcpy(text, b.ptr, b.len);
        text[b.len] = '\0';
        assert_int_equal(sscanf(text, "{\"t\":%d,\"i\":%d,\"pad\":\"%8d%8d%8d\"%3s", &t, &i, &p1, &p2, &p3, tail), 6);
        assert_int_equal((int)app, t);
        assert_int_equal(p1, i);
        assert_int_equal(p2, t);
        assert_int_equal(p3, i);
        assert_string_equal(tail, "}");
        assert_true(i > last_i[t]); /* one publisher's items come in its order */
        last_i[t] = i;
        ok++;
        next++;
    }
    for (int t = 0; t < THREADS; t++) {
        pthread_join(th[t], NULL);
    }
    assert_int_equal(umg_live_head(l), total);
    assert_true(ok > 0);
    assert_int_equal(ok + gone, total);
    umg_buf_free(&b);
    umg_live_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nobody_watching), cmocka_unit_test(test_in_order),
        cmocka_unit_test(test_forget_app),      cmocka_unit_test(test_wraps),
        cmocka_unit_test(test_truncates),       cmocka_unit_test(test_concurrent_publishers_and_a_reader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
