/*
 * test_dedupe.c - the (app, event_id) set: exactness against a reference,
 * expiry by horizon, removal with backward shift, growth, and the early
 * eviction when the configured bound is reached.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "umg_dedupe.h"

#include <stdlib.h>

static void id_of(umg_uuid_t *id, uint64_t n)
{
    memset(id, 0, sizeof(*id));
    /* Deliberately poor ids (small counters) to stress clustering. */
    memcpy(id->b, &n, sizeof(n));
}

static const int64_t T0 = 1800000000ll * 1000000; /* 2027-01-15 */
static const int64_t DAY = 86400ll * 1000000;

static void test_exact_membership(void **state)
{
    (void)state;
    umg_dedupe_t *d;
    assert_int_equal(umg_dedupe_new(1000000, 7 * DAY, &d), UMG_OK);
    umg_uuid_t id;
    for (uint64_t i = 0; i < 200000; i++) {
        id_of(&id, i);
        assert_int_equal(umg_dedupe_check_insert(d, 1, &id, T0), 0);
    }
    assert_int_equal(umg_dedupe_count(d), 200000);
    for (uint64_t i = 0; i < 200000; i++) {
        id_of(&id, i);
        assert_int_equal(umg_dedupe_check_insert(d, 1, &id, T0), 1);
        /* Same id, other app: new. */
        if (i < 1000) {
            assert_int_equal(umg_dedupe_check_insert(d, 2, &id, T0), 0);
        }
    }
    /* Remove every third and check the rest is intact (backward shift is right). */
    for (uint64_t i = 0; i < 200000; i += 3) {
        id_of(&id, i);
        umg_dedupe_remove(d, 1, &id);
    }
    for (uint64_t i = 0; i < 200000; i++) {
        id_of(&id, i);
        int dup = umg_dedupe_check_insert(d, 1, &id, T0);
        assert_int_equal(dup, i % 3 == 0 ? 0 : 1);
    }
    assert_true(umg_dedupe_memory(d) >= umg_dedupe_count(d) * UMG_DEDUPE_SLOT_BYTES);
    umg_dedupe_free(d);
}

/* Right after a growth starts most ids are still in the old table: all must be found. */
static void test_lookup_during_growth(void **state)
{
    (void)state;
    umg_dedupe_t *d;
    assert_int_equal(umg_dedupe_new(1000000, 7 * DAY, &d), UMG_OK);
    umg_uuid_t id;
    uint64_t mem0 = umg_dedupe_memory(d);
    uint64_t n = 0;
    while (umg_dedupe_memory(d) == mem0) { /* insert until the growth begins */
        id_of(&id, n++);
        assert_int_equal(umg_dedupe_check_insert(d, 1, &id, T0), 0);
    }
    assert_true(umg_dedupe_memory(d) > 2 * mem0); /* both tables are alive */
    for (uint64_t i = 0; i < n; i++) {
        id_of(&id, i);
        assert_int_equal(umg_dedupe_check_insert(d, 1, &id, T0), 1);
    }
    /* A refreshed old id is not counted twice once the move ends. */
    id_of(&id, 0);
    assert_int_equal(umg_dedupe_insert(d, 1, &id, T0 + 60000000), UMG_OK);
    umg_dedupe_expire(d, T0 + 60000000); /* finishes the move */
    assert_int_equal(umg_dedupe_count(d), n);
    for (uint64_t i = 0; i < n; i++) {
        id_of(&id, i);
        assert_int_equal(umg_dedupe_check_insert(d, 1, &id, T0), 1);
    }
    umg_dedupe_free(d);
}

/* A set reserved for 10,000 ids: a table of 16,384 slots, large enough that the next one is made ahead. */
static umg_dedupe_t *set_16k(void)
{
    umg_dedupe_t *d;
    assert_int_equal(umg_dedupe_new(1000000, 7 * DAY, &d), UMG_OK);
    assert_int_equal(umg_dedupe_reserve(d, 10000), UMG_OK);
    return d;
}

/* Inserts new ids (0, 1, ...) until the memory shows a table made ahead; returns how many. */
static uint64_t fill_until_made_ahead(umg_dedupe_t *d)
{
    uint64_t mem0 = umg_dedupe_memory(d), n = 0;
    umg_uuid_t id;
    while (umg_dedupe_memory(d) == mem0) {
        id_of(&id, n++);
        assert_int_equal(umg_dedupe_check_insert(d, 1, &id, T0), 0);
    }
    return n;
}

/*
 * From 32,768 slots on, the next table is made on a helper thread once the load passes 9/16 and taken at 5/8 (or, when
 * it is not ready yet, by 3/4): memory shows the table made ahead, never a fourth one, and every id stays found whether
 * the growth took it at once or went on in the old table first.
 */
static void test_growth_made_ahead(void **state)
{
    (void)state;
    umg_dedupe_t *d = set_16k();
    uint64_t mem0 = umg_dedupe_memory(d), cap = mem0 / UMG_DEDUPE_SLOT_BYTES;
    assert_int_equal(cap, 16384);
    umg_uuid_t id;
    uint64_t n = 0, made_at = 0;
    while (n < cap * 3 / 4 + 10) {
        id_of(&id, n++);
        assert_int_equal(umg_dedupe_check_insert(d, 1, &id, T0), 0);
        uint64_t mem = umg_dedupe_memory(d);
        /* the table; with the one made ahead or, while moving, the new one beside it; the new one alone */
        assert_true(mem == mem0 || mem == 3 * mem0 || mem == 2 * mem0);
        if (made_at == 0 && mem == 3 * mem0) {
            made_at = n;
        }
    }
    assert_int_equal(made_at, cap * 9 / 16 + 1); /* the first insert past 9/16 of the table */
    for (uint64_t i = 0; i < n; i++) {
        id_of(&id, i);
        assert_int_equal(umg_dedupe_check_insert(d, 1, &id, T0), 1);
    }
    umg_dedupe_expire(d, T0); /* finishes the move: the new table alone */
    assert_int_equal(umg_dedupe_memory(d), 2 * mem0);
    assert_int_equal(umg_dedupe_count(d), n);
    for (uint64_t i = 0; i < n; i++) {
        id_of(&id, i);
        assert_int_equal(umg_dedupe_check_insert(d, 1, &id, T0), 1);
    }
    umg_dedupe_free(d);
}

/* A table made ahead is dropped when expiry brings the load back to half; freeing the set while one is being
 * made waits for it (ASan sees no leak). */
static void test_made_ahead_dropped(void **state)
{
    (void)state;
    umg_dedupe_t *d = set_16k();
    uint64_t mem0 = umg_dedupe_memory(d);
    umg_uuid_t id;
    uint64_t n = fill_until_made_ahead(d);
    assert_int_equal(umg_dedupe_memory(d), 3 * mem0);
    umg_dedupe_expire(d, T0 + 8 * DAY);
    assert_int_equal(umg_dedupe_count(d), 0);
    /* Dropped on an insert once the helper has finished it; each id is removed again, so the load stays low
     * however long the helper takes. */
    uint64_t t0 = umg_mono_ns();
    while (umg_dedupe_memory(d) != mem0) {
        assert_true(umg_mono_ns() - t0 < 30000000000ull);
        id_of(&id, n++);
        assert_int_equal(umg_dedupe_check_insert(d, 1, &id, T0 + 8 * DAY), 0);
        umg_dedupe_remove(d, 1, &id);
    }
    assert_int_equal(umg_dedupe_count(d), 0);
    umg_dedupe_free(d);

    d = set_16k();
    fill_until_made_ahead(d);
    umg_dedupe_free(d); /* at once: the table may still be in the making */
}

static void test_reserve(void **state)
{
    (void)state;
    umg_dedupe_t *d;
    assert_int_equal(umg_dedupe_new(1000000, 7 * DAY, &d), UMG_OK);
    assert_int_equal(umg_dedupe_reserve(d, 100000), UMG_OK);
    uint64_t mem = umg_dedupe_memory(d);
    assert_true(mem >= 100000ull * 8 / 5 * UMG_DEDUPE_SLOT_BYTES);
    umg_uuid_t id;
    for (uint64_t i = 0; i < 100000; i++) {
        id_of(&id, i);
        assert_int_equal(umg_dedupe_insert(d, 1, &id, T0), UMG_OK);
    }
    assert_int_equal(umg_dedupe_memory(d), mem); /* no growth after the reservation */
    assert_int_equal(umg_dedupe_count(d), 100000);
    umg_dedupe_free(d);
}

static void test_expiry(void **state)
{
    (void)state;
    umg_dedupe_t *d;
    assert_int_equal(umg_dedupe_new(1000000, 7 * DAY, &d), UMG_OK);
    umg_uuid_t id;
    for (uint64_t i = 0; i < 5000; i++) {
        id_of(&id, i);
        umg_dedupe_check_insert(d, 1, &id, T0);
    }
    /* Within the horizon: still a duplicate. */
    id_of(&id, 42);
    assert_int_equal(umg_dedupe_check_insert(d, 1, &id, T0 + 6 * DAY), 1);
    /* Past it: new again (and the full sweep drops the rest). */
    id_of(&id, 43);
    assert_int_equal(umg_dedupe_check_insert(d, 1, &id, T0 + 8 * DAY), 0);
    umg_dedupe_expire(d, T0 + 8 * DAY);
    assert_int_equal(umg_dedupe_count(d), 1); /* only id 43, seen at T0 + 8 days */
    umg_dedupe_free(d);
}

/* At the bound each new id makes the set forget one old id, from the oldest tenth first, and never more. */
static void test_bound_evicts_oldest(void **state)
{
    (void)state;
    umg_log_min_level = UMG_LOG_ERROR;
    umg_dedupe_t *d;
    assert_int_equal(umg_dedupe_new(10000, 30 * DAY, &d), UMG_OK);
    umg_uuid_t id;
    for (uint64_t i = 0; i < 10000; i++) {
        id_of(&id, i);
        umg_dedupe_check_insert(d, 1, &id, T0 + (int64_t)i * 60000000); /* one per minute */
    }
    assert_int_equal(umg_dedupe_evicted(d), 0);
    for (uint64_t i = 10000; i < 11100; i++) {
        id_of(&id, i);
        assert_int_equal(umg_dedupe_check_insert(d, 1, &id, T0 + (int64_t)i * 60000000), 0);
        assert_int_equal(umg_dedupe_count(d), 10000);
        assert_int_equal(umg_dedupe_evicted(d), i - 9999);
    }
    /* The newest are all still known (a duplicate changes nothing); the oldest tenth is gone, then some more. */
    for (uint64_t i = 2500; i < 11100; i++) {
        id_of(&id, i);
        assert_int_equal(umg_dedupe_check_insert(d, 1, &id, T0 + 11100ll * 60000000), 1);
    }
    for (uint64_t i = 0; i < 900; i++) {
        id_of(&id, i);
        assert_int_equal(umg_dedupe_check_insert(d, 1, &id, T0 + 11100ll * 60000000), 0);
    }
    umg_dedupe_free(d);
}

/* A set that fills within one minute forgets one id per new one, never a large part at once, and loses no id it
 * holds to a broken probe chain. */
static void test_bound_same_minute(void **state)
{
    (void)state;
    umg_dedupe_t *d;
    assert_int_equal(umg_dedupe_new(1000, 7 * DAY, &d), UMG_OK);
    umg_uuid_t id;
    for (uint64_t i = 0; i < 1000; i++) {
        id_of(&id, i);
        assert_int_equal(umg_dedupe_check_insert(d, 1, &id, T0), 0);
    }
    for (uint64_t i = 1000; i < 50000; i++) {
        id_of(&id, i);
        assert_int_equal(umg_dedupe_check_insert(d, 1, &id, T0), 0);
        assert_int_equal(umg_dedupe_count(d), 1000);
        assert_int_equal(umg_dedupe_evicted(d), i - 999);
    }
    /* every id held is still found: removing them all empties it */
    uint64_t held = umg_dedupe_count(d), found = 0;
    for (uint64_t i = 0; i < 50000; i++) {
        id_of(&id, i);
        uint64_t c = umg_dedupe_count(d);
        umg_dedupe_remove(d, 1, &id);
        found += c - umg_dedupe_count(d);
    }
    assert_int_equal(found, held);
    assert_int_equal(umg_dedupe_count(d), 0);
    umg_dedupe_free(d);
}

/* Below the bound again after expiry, the set keeps every id until it is full again, then forgets the oldest
 * of that time: its ages follow the ids as they come, are refreshed and leave. */
static void test_bound_after_expiry(void **state)
{
    (void)state;
    umg_log_min_level = UMG_LOG_ERROR;
    umg_dedupe_t *d;
    assert_int_equal(umg_dedupe_new(2000, DAY, &d), UMG_OK);
    umg_uuid_t id;
    for (uint64_t i = 0; i < 2500; i++) { /* full, forgetting 500 early */
        id_of(&id, i);
        assert_true(umg_dedupe_check_insert(d, 1, &id, T0 + (int64_t)i * 1000000) >= 0);
    }
    assert_int_equal(umg_dedupe_evicted(d), 500);
    umg_dedupe_expire(d, T0 + 3 * DAY); /* all past the horizon */
    assert_int_equal(umg_dedupe_count(d), 0);
    int64_t t1 = T0 + 3 * DAY;
    for (uint64_t i = 0; i < 2000; i++) { /* an hour apart in halves: the older half first */
        id_of(&id, 10000 + i);
        assert_int_equal(umg_dedupe_check_insert(d, 1, &id, t1 + (i < 1000 ? 0 : 3600000000ll)), 0);
    }
    assert_int_equal(umg_dedupe_evicted(d), 500);
    for (uint64_t i = 0; i < 1000; i++) { /* the older half refreshed: now the newest */
        id_of(&id, 10000 + i);
        assert_int_equal(umg_dedupe_insert(d, 1, &id, t1 + 2 * 3600000000ll), UMG_OK);
    }
    for (uint64_t i = 0; i < 300; i++) {
        id_of(&id, 20000 + i);
        assert_int_equal(umg_dedupe_check_insert(d, 1, &id, t1 + 2 * 3600000000ll), 0);
    }
    assert_int_equal(umg_dedupe_evicted(d), 800);
    assert_int_equal(umg_dedupe_count(d), 2000);
    for (uint64_t i = 0; i < 1000; i++) { /* the refreshed half all kept: the other was the oldest */
        id_of(&id, 10000 + i);
        assert_int_equal(umg_dedupe_check_insert(d, 1, &id, t1 + 2 * 3600000000ll), 1);
    }
    umg_dedupe_free(d);
}

static void test_alloc_failure(void **state)
{
    (void)state;
    umg_dedupe_t *d;
    assert_int_equal(umg_dedupe_new(1000000, 7 * DAY, &d), UMG_OK);
    umg_uuid_t id;
    umg_alloc_fail_after(1);
    int rc = 0;
    for (uint64_t i = 0; i < 5000 && rc == 0; i++) {
        id_of(&id, i);
        rc = umg_dedupe_check_insert(d, 1, &id, T0);
    }
    umg_alloc_fail_after(0);
    assert_int_equal(rc, UMG_ENOMEM); /* growth failed: an error, not a false answer */
    umg_dedupe_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_membership),
        cmocka_unit_test(test_lookup_during_growth),
        cmocka_unit_test(test_growth_made_ahead),
        cmocka_unit_test(test_made_ahead_dropped),
        cmocka_unit_test(test_reserve),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_bound_evicts_oldest),
        cmocka_unit_test(test_bound_same_minute),
        cmocka_unit_test(test_bound_after_expiry),
        cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
