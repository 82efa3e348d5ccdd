/*
 * test_login_limit.c - the login limiter: the limit per address and per
 * account, the wait it answers and the window's end, a success clearing only
 * the account, keys that never share a count while the table has room
 * (checked against an exact model over thousands of random steps), sharing
 * that is stricter when the table is full, and out-of-memory. Time is always
 * passed in; nothing sleeps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "umg_login_limit.h"

#define S(x) ((int64_t)(x)*1000000)

static umg_login_limit_t *mk(size_t slots, int64_t window_us, int64_t max)
{
    umg_login_limit_t *l = NULL;
    assert_int_equal(umg_login_limit_new(slots, window_us, max, 0x5eed, &l), UMG_OK);
    return l;
}

static void test_limit_and_wait(void **state)
{
    (void)state;
    umg_login_limit_t *l = mk(4096, S(60), 3);
    int64_t t = S(1000);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(umg_login_limit_wait(l, "10.0.0.1", "a@x", t), 0);
        umg_login_limit_failed(l, "10.0.0.1", "a@x", t + S(i));
    }
    assert_int_equal(umg_login_limit_wait(l, "10.0.0.1", "a@x", t + S(2)), 0);
    umg_login_limit_failed(l, "10.0.0.1", "a@x", t + S(2));
    /* The window began with the first failure: 58 s of it are left. */
    assert_int_equal(umg_login_limit_wait(l, "10.0.0.1", "a@x", t + S(2)), 58);
    assert_int_equal(umg_login_limit_wait(l, "10.0.0.1", "a@x", t + S(29) + 500000), 31);
    assert_int_equal(umg_login_limit_wait(l, "10.0.0.1", "a@x", t + S(60) - 1), 1);
    /* Either key alone refuses. */
    assert_int_equal(umg_login_limit_wait(l, "10.0.0.1", "b@x", t + S(3)), 57);
    assert_int_equal(umg_login_limit_wait(l, "10.0.0.2", "a@x", t + S(3)), 57);
    assert_int_equal(umg_login_limit_wait(l, "10.0.0.2", "b@x", t + S(3)), 0);
    /* The window over, the keys start again from nothing. */
    assert_int_equal(umg_login_limit_wait(l, "10.0.0.1", "a@x", t + S(60)), 0);
    umg_login_limit_failed(l, "10.0.0.1", "a@x", t + S(60));
    umg_login_limit_failed(l, "10.0.0.1", "a@x", t + S(61));
    assert_int_equal(umg_login_limit_wait(l, "10.0.0.1", "a@x", t + S(61)), 0);
    umg_login_limit_free(l);
}

static void test_success_clears_the_account_only(void **state)
{
    (void)state;
    umg_login_limit_t *l = mk(4096, S(60), 3);
    for (int i = 0; i < 2; i++) {
        umg_login_limit_failed(l, "10.0.0.1", "a@x", S(i));
    }
    umg_login_limit_succeeded(l, "a@x", S(2));
    /* The account starts again; the address keeps its two. */
    umg_login_limit_failed(l, "10.0.0.2", "a@x", S(3));
    umg_login_limit_failed(l, "10.0.0.2", "a@x", S(3));
    assert_int_equal(umg_login_limit_wait(l, "10.0.0.3", "a@x", S(3)), 0);
    umg_login_limit_failed(l, "10.0.0.1", "c@x", S(4));
    assert_int_equal(umg_login_limit_wait(l, "10.0.0.1", "d@x", S(4)), 56);
    /* A success for an account with no failures changes nothing. */
    umg_login_limit_succeeded(l, "e@x", S(5));
    assert_int_equal(umg_login_limit_wait(l, "10.0.0.1", "e@x", S(5)), 55);
    umg_login_limit_free(l);
}

/* The smallest table (16 slots) holds 16 keys apart; the 17th shares the busiest slot near its hash. */
static void test_full_table_shares_strictly(void **state)
{
    (void)state;
    umg_login_limit_t *l = mk(1, S(60), 3);
    char ip[32], email[32];
    for (int i = 0; i < 8; i++) { /* 8 addresses and 8 accounts, two failures each: none refused */
        snprintf(ip, sizeof(ip), "10.0.0.%d", i);
        snprintf(email, sizeof(email), "u%d@x", i);
        umg_login_limit_failed(l, ip, email, S(i));
        umg_login_limit_failed(l, ip, email, S(i));
    }
    for (int i = 0; i < 8; i++) {
        snprintf(ip, sizeof(ip), "10.0.0.%d", i);
        snprintf(email, sizeof(email), "u%d@x", i);
        assert_int_equal(umg_login_limit_wait(l, ip, email, S(10)), 0);
    }
    /* A new key with no room shares a slot with two failures: its first failure refuses it. */
    assert_int_equal(umg_login_limit_wait(l, "10.9.9.9", "new@x", S(10)), 0);
    umg_login_limit_failed(l, "10.9.9.9", "new@x", S(10));
    assert_true(umg_login_limit_wait(l, "10.9.9.9", "new@x", S(10)) > 0);
    /* Its success clears nothing it shares. */
    umg_login_limit_succeeded(l, "new@x", S(11));
    assert_true(umg_login_limit_wait(l, "10.9.9.9", "new@x", S(11)) > 0);
    /* Once windows end, slots are free again and the new key counts alone. */
    assert_int_equal(umg_login_limit_wait(l, "10.9.9.9", "new@x", S(80)), 0);
    umg_login_limit_failed(l, "10.9.9.9", "new@x", S(80));
    umg_login_limit_failed(l, "10.9.9.9", "new@x", S(80));
    assert_int_equal(umg_login_limit_wait(l, "10.9.9.9", "new@x", S(80)), 0);
    umg_login_limit_free(l);
}

/* An exact model: one count per key, no table. */
#define NKEYS 300
typedef struct {
    int64_t start, failures;
} model_t;

static int64_t model_wait(const model_t *m, int64_t window, int64_t max, int64_t now)
{
    if (m->failures < max || now - m->start >= window) {
        return 0;
    }
    int64_t left = (m->start + window - now + 999999) / 1000000;
    return left < 1 ? 1 : left;
}

static void model_fail(model_t *m, int64_t window, int64_t now)
{
    if (m->failures == 0 || now - m->start >= window) {
        m->start = now;
        m->failures = 0;
    }
    m->failures++;
}

/*
 * 300 addresses and 300 accounts in the production size of table (4096): no two ever share a count, so every
 * answer is the model's. (A table indexed by hash alone, with no probing, shares about 40 pairs here.)
 */
static void test_matches_an_exact_model(void **state)
{
    (void)state;
    const int64_t window = S(60), max = 3;
    umg_login_limit_t *l = mk(4096, window, max);
    static model_t ips[NKEYS], accounts[NKEYS];
    memset(ips, 0, sizeof(ips));
    memset(accounts, 0, sizeof(accounts));
    srand(7);
    int64_t now = S(1);
    int refused = 0;
    for (int step = 0; step < 200000; step++) {
        now += rand() % 2000; /* up to 2 ms a step: windows end along the way */
        int i = rand() % NKEYS, k = rand() % NKEYS, op = rand() % 10;
        char ip[32], email[32];
        snprintf(ip, sizeof(ip), "192.0.2.%d/%d", i, i * 7);
        snprintf(email, sizeof(email), "user%d@example.com", k);
        int64_t want = model_wait(&ips[i], window, max, now), w2 = model_wait(&accounts[k], window, max, now);
        want = want > w2 ? want : w2;
        int64_t got = umg_login_limit_wait(l, ip, email, now);
        if (got != want) {
            fail_msg("step %d: wait %lld, the model %lld", step, (long long)got, (long long)want);
        }
        refused += got > 0;
        if (op < 8) {
            umg_login_limit_failed(l, ip, email, now);
            model_fail(&ips[i], window, now);
            model_fail(&accounts[k], window, now);
        } else if (op == 8) {
            umg_login_limit_succeeded(l, email, now);
            accounts[k].failures = 0;
        }
    }
    assert_true(refused > 1000); /* the limit was reached often, not only missed */
    umg_login_limit_free(l);
}

static void test_oom(void **state)
{
    (void)state;
    umg_login_limit_t *l = NULL;
    for (long k = 1; k <= 2; k++) {
        umg_alloc_fail_after(k);
        assert_int_equal(umg_login_limit_new(64, S(60), 3, 1, &l), UMG_ENOMEM);
        umg_alloc_fail_after(0);
        assert_null(l);
    }
    umg_login_limit_free(NULL);
}

int main(void)
{
    umg_log_min_level = UMG_LOG_ERROR;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limit_and_wait),
        cmocka_unit_test(test_success_clears_the_account_only),
        cmocka_unit_test(test_full_table_shares_strictly),
        cmocka_unit_test(test_matches_an_exact_model),
        cmocka_unit_test(test_oom),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
