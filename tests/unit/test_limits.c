/*
 * test_limits.c - ingest limits: the per-app token bucket (burst, refill,
 * retry times, batches above the burst and debt, settings changed mid-way),
 * the per-org monthly quota (exact edge, month rollover, restore and export of
 * usage), give-back, the rule that one limit's refusal never charges the
 * other, out-of-memory on set, and four threads taking from one bucket.
 * Time is always passed in; nothing sleeps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdlib.h>

#include "umg_limits.h"

#define S(x) ((int64_t)(x)*1000000)
#define MS(x) ((int64_t)(x)*1000)

static int64_t ts(const char *s)
{
    int64_t us;
    assert_int_equal(umg_time_parse_rfc3339(s, strlen(s), &us), UMG_OK);
    return us;
}

static umg_limits_t *mk(void)
{
    umg_limits_t *l;
    assert_int_equal(umg_limits_new(&l), UMG_OK);
    return l;
}

static umg_limit_verdict_t take(umg_limits_t *l, uint32_t app, uint32_t org, int64_t n, int64_t now)
{
    umg_limit_verdict_t v;
    memset(&v, 0xA5, sizeof(v));
    umg_limits_take(l, app, org, n, now, &v);
    return v;
}

#define assert_ok(v) assert_int_equal((v).ok, 1)
#define assert_refused(v, w, retry)                                                                                    \
    do {                                                                                                               \
        assert_int_equal((v).ok, 0);                                                                                   \
        assert_string_equal((v).which, (w));                                                                           \
        assert_int_equal((v).retry_after_s, (retry));                                                                  \
    } while (0)

/* ---------------------------------------------------------------- calendar */

static void test_month(void **state)
{
    (void)state;
    assert_int_equal(umg_limits_month(0), 197001);
    assert_int_equal(umg_limits_month(-1), 196912);
    assert_int_equal(umg_limits_month(ts("2024-02-29T23:59:59.999999Z")), 202402);
    assert_int_equal(umg_limits_month(ts("2024-03-01T00:00:00Z")), 202403);
    assert_int_equal(umg_limits_month(ts("2026-11-30T23:59:59.999999Z")), 202611);
    assert_int_equal(umg_limits_month(ts("2026-12-01T00:00:00Z")), 202612);
    assert_int_equal(umg_limits_month(ts("2026-12-31T23:59:59.999999Z")), 202612);
    assert_int_equal(umg_limits_month(ts("2027-01-01T00:00:00Z")), 202701);
    assert_int_equal(umg_limits_month(ts("2000-02-29T12:00:00Z")), 200002);
    assert_int_equal(umg_limits_month(ts("2100-03-01T00:00:00Z")), 210003);
    assert_int_equal(umg_limits_month(ts("1900-01-01T00:00:00Z")), 190001);
}

/* ---------------------------------------------------------------- rate */

static void test_unlimited(void **state)
{
    (void)state;
    umg_limits_t *l = mk();
    size_t before = umg_alloc_bytes();
    /* Every allocation would fail: an unknown app and org must not need one. */
    umg_alloc_fail_after(1);
    for (int i = 0; i < 1000; i++) {
        umg_limit_verdict_t v = take(l, 7, 9, 1000000, S(i));
        assert_ok(v);
        assert_null(v.which);
        assert_int_equal(v.limit, 0);
        assert_int_equal(v.retry_after_s, 0);
    }
    umg_limits_give_back(l, 7, 9, 5);
    umg_alloc_fail_after(0);
    assert_int_equal(umg_alloc_bytes(), before);
    assert_int_equal(umg_limits_usage_get(l, 9, umg_limits_month(0)), 0);

    /* Rate 0 is unlimited too, and so is a quota of 0 (which still counts usage). */
    assert_int_equal(umg_limits_set_app(l, 7, (umg_rate_t){0, 0}), UMG_OK);
    assert_int_equal(umg_limits_set_org(l, 9, 0), UMG_OK);
    umg_limit_verdict_t v = take(l, 7, 9, 1000000, S(1));
    assert_ok(v);
    assert_int_equal(v.limit, 0);
    assert_int_equal(umg_limits_usage_get(l, 9, 197001), 1000000);
    /* Other apps stay unlimited after the table exists. */
    for (uint32_t app = 100; app < 200; app++) {
        assert_ok(take(l, app, 1, 1, S(1)));
    }
    umg_limits_free(l);
    umg_limits_free(NULL);
}

static void test_burst_then_refusal(void **state)
{
    (void)state;
    umg_limits_t *l = mk();
    assert_int_equal(umg_limits_set_app(l, 1, (umg_rate_t){10, 20}), UMG_OK);
    int64_t t = S(1000);
    for (int i = 0; i < 20; i++) {
        umg_limit_verdict_t v = take(l, 1, 0, 1, t);
        assert_ok(v);
        assert_null(v.which);
        assert_int_equal(v.limit, 20);
        assert_int_equal(v.remaining, 19 - i);
        /* (i + 1) tokens missing at 10/s: ceil((i + 1) / 10) seconds to full. */
        assert_int_equal(v.reset_s, (i + 1 + 9) / 10);
    }
    umg_limit_verdict_t v = take(l, 1, 0, 1, t);
    assert_refused(v, "rate", 1);
    assert_int_equal(v.limit, 20);
    assert_int_equal(v.remaining, 0);
    assert_int_equal(v.reset_s, 2);
    /* A bigger request against the same empty bucket: still all or nothing. */
    v = take(l, 1, 0, 5, t);
    assert_refused(v, "rate", 1);
    v = take(l, 1, 0, 20, t);
    assert_refused(v, "rate", 2);
    umg_limits_free(l);
}

static void test_refill(void **state)
{
    (void)state;
    umg_limits_t *l = mk();
    assert_int_equal(umg_limits_set_app(l, 1, (umg_rate_t){10, 20}), UMG_OK);
    int64_t t = S(1000);
    assert_ok(take(l, 1, 0, 20, t));
    assert_refused(take(l, 1, 0, 1, t), "rate", 1);
    /* 99.999 ms refill 0.99999 tokens: not one yet. */
    assert_refused(take(l, 1, 0, 1, t + 99999), "rate", 1);
    umg_limit_verdict_t v = take(l, 1, 0, 1, t + MS(100));
    assert_ok(v);
    assert_int_equal(v.remaining, 0);
    /* 1.5 s later: 15 tokens. */
    v = take(l, 1, 0, 15, t + MS(1600));
    assert_ok(v);
    assert_int_equal(v.remaining, 0);
    /* Refill stops at the burst however long the wait. */
    v = take(l, 1, 0, 0, t + S(3600));
    assert_ok(v);
    assert_int_equal(v.remaining, 20);
    assert_int_equal(v.reset_s, 0);
    v = take(l, 1, 0, 20, t + S(3600));
    assert_ok(v);
    assert_int_equal(v.remaining, 0);
    assert_refused(take(l, 1, 0, 1, t + S(3600)), "rate", 1);
    /* A take with an older clock (another thread) refills nothing and breaks nothing. */
    assert_refused(take(l, 1, 0, 1, t + S(3599)), "rate", 1);
    assert_ok(take(l, 1, 0, 1, t + S(3600) + MS(100)));
    umg_limits_free(l);
}

static void test_retry_after_exact(void **state)
{
    (void)state;
    umg_limits_t *l = mk();
    int64_t t = S(5000);
    /* 2/s, burst 10: 5 tokens take 2.5 s, so retry after 3. */
    assert_int_equal(umg_limits_set_app(l, 1, (umg_rate_t){2, 10}), UMG_OK);
    assert_ok(take(l, 1, 0, 10, t));
    assert_refused(take(l, 1, 0, 5, t), "rate", 3);
    assert_refused(take(l, 1, 0, 5, t + S(2)), "rate", 1);
    assert_refused(take(l, 1, 0, 5, t + MS(2499)), "rate", 1);
    assert_ok(take(l, 1, 0, 5, t + MS(2500)));
    /* Exactly 4.0 s to wait stays 4, not 5. */
    assert_refused(take(l, 1, 0, 8, t + MS(2500)), "rate", 4);

    /* One event every two seconds. */
    assert_int_equal(umg_limits_set_app(l, 2, (umg_rate_t){0.5, 1}), UMG_OK);
    assert_ok(take(l, 2, 0, 1, t));
    umg_limit_verdict_t v = take(l, 2, 0, 1, t);
    assert_refused(v, "rate", 2);
    assert_int_equal(v.reset_s, 2);
    assert_refused(take(l, 2, 0, 1, t + S(2) - 1), "rate", 1);
    assert_ok(take(l, 2, 0, 1, t + S(2)));

    /* A rate that is not a round number: 3/s, one token takes 1/3 s. */
    assert_int_equal(umg_limits_set_app(l, 3, (umg_rate_t){3, 3}), UMG_OK);
    assert_ok(take(l, 3, 0, 3, t));
    assert_refused(take(l, 3, 0, 3, t), "rate", 1);
    assert_refused(take(l, 3, 0, 3, t + MS(999)), "rate", 1);
    v = take(l, 3, 0, 3, t + S(1));
    assert_ok(v);
    assert_int_equal(v.reset_s, 1);
    /* Many small refills add up without drifting past a whole token. */
    for (int i = 1; i <= 1000; i++) {
        take(l, 3, 0, 0, t + S(1) + i);
    }
    assert_ok(take(l, 3, 0, 3, t + S(2)));

    /* 0.1/s: 7 s leave 0.3 tokens to go, 3 s exactly though 0.7 is not exact in binary. */
    assert_int_equal(umg_limits_set_app(l, 4, (umg_rate_t){0.1, 1}), UMG_OK);
    assert_ok(take(l, 4, 0, 1, t));
    assert_refused(take(l, 4, 0, 1, t + S(7)), "rate", 3);
    assert_ok(take(l, 4, 0, 1, t + S(10)));
    umg_limits_free(l);
}

static void test_over_burst_and_debt(void **state)
{
    (void)state;
    umg_limits_t *l = mk();
    assert_int_equal(umg_limits_set_app(l, 1, (umg_rate_t){10, 10}), UMG_OK);
    int64_t t = S(100);
    /* A batch above the burst passes against a full bucket and leaves a debt of 15. */
    umg_limit_verdict_t v = take(l, 1, 0, 25, t);
    assert_ok(v);
    assert_int_equal(v.limit, 10);
    assert_int_equal(v.remaining, 0);
    assert_int_equal(v.reset_s, 3); /* 25 tokens at 10/s: 2.5 s */
    /* One event needs 16 tokens of refill: 1.6 s. */
    v = take(l, 1, 0, 1, t);
    assert_refused(v, "rate", 2);
    assert_int_equal(v.remaining, 0);
    /* 1 s later the bucket is still at -5. */
    assert_refused(take(l, 1, 0, 1, t + S(1)), "rate", 1);
    assert_ok(take(l, 1, 0, 1, t + MS(1600)));
    /* Now at 0: another oversized batch waits for a full bucket (1 s), not for 25 tokens. */
    assert_refused(take(l, 1, 0, 25, t + MS(1600)), "rate", 1);
    assert_refused(take(l, 1, 0, 25, t + MS(2599)), "rate", 1);
    v = take(l, 1, 0, 25, t + MS(2600));
    assert_ok(v);
    assert_int_equal(v.remaining, 0);
    /* A bucket that is not full refuses an oversized batch even with tokens left. */
    assert_ok(take(l, 1, 0, 1, t + S(10)));
    v = take(l, 1, 0, 11, t + S(10));
    assert_refused(v, "rate", 1);
    assert_int_equal(v.remaining, 9);
    umg_limits_free(l);
}

static void test_settings_change(void **state)
{
    (void)state;
    umg_limits_t *l = mk();
    int64_t t = S(100);
    assert_int_equal(umg_limits_set_app(l, 1, (umg_rate_t){10, 10}), UMG_OK);
    assert_ok(take(l, 1, 0, 10, t));
    /* A faster, bigger bucket keeps the fill (empty) and refills at the new rate. */
    assert_int_equal(umg_limits_set_app(l, 1, (umg_rate_t){100, 50}), UMG_OK);
    assert_refused(take(l, 1, 0, 1, t), "rate", 1);
    umg_limit_verdict_t v = take(l, 1, 0, 10, t + MS(100));
    assert_ok(v);
    assert_int_equal(v.limit, 50);
    assert_refused(take(l, 1, 0, 1, t + MS(100)), "rate", 1);
    /* Full at 50; shrinking the burst caps the fill at 5. */
    v = take(l, 1, 0, 0, t + S(1));
    assert_int_equal(v.remaining, 50);
    assert_int_equal(umg_limits_set_app(l, 1, (umg_rate_t){1, 5}), UMG_OK);
    v = take(l, 1, 0, 5, t + S(1));
    assert_ok(v);
    assert_int_equal(v.limit, 5);
    assert_int_equal(v.remaining, 0);
    assert_int_equal(v.reset_s, 5);
    assert_refused(take(l, 1, 0, 1, t + S(1)), "rate", 1);
    assert_refused(take(l, 1, 0, 3, t + S(1)), "rate", 3);
    /* Unlimited, then limited again: the new limit starts with a full bucket. */
    assert_int_equal(umg_limits_set_app(l, 1, (umg_rate_t){0, 0}), UMG_OK);
    v = take(l, 1, 0, 1000, t + S(1));
    assert_ok(v);
    assert_int_equal(v.limit, 0);
    assert_int_equal(umg_limits_set_app(l, 1, (umg_rate_t){1, 3}), UMG_OK);
    v = take(l, 1, 0, 3, t + S(1));
    assert_ok(v);
    assert_int_equal(v.limit, 3);
    assert_refused(take(l, 1, 0, 1, t + S(1)), "rate", 1);

    /* Bad settings are refused and change nothing. */
    assert_int_equal(umg_limits_set_app(l, 1, (umg_rate_t){-1, 5}), UMG_EINVAL);
    assert_int_equal(umg_limits_set_app(l, 1, (umg_rate_t){1, 0.5}), UMG_EINVAL);
    assert_int_equal(umg_limits_set_app(l, 1, (umg_rate_t){NAN, 5}), UMG_EINVAL);
    assert_int_equal(umg_limits_set_app(l, 1, (umg_rate_t){1, INFINITY}), UMG_EINVAL);
    assert_int_equal(umg_limits_set_org(l, 1, -1), UMG_EINVAL);
    assert_int_equal(take(l, 1, 0, 1, t + S(1)).limit, 3);
    umg_limits_free(l);
}

/* ---------------------------------------------------------------- quota */

static void test_quota_edge(void **state)
{
    (void)state;
    umg_limits_t *l = mk();
    assert_int_equal(umg_limits_set_org(l, 5, 100), UMG_OK);
    int64_t t = ts("2026-11-30T23:00:00Z");
    umg_limit_verdict_t v = take(l, 1, 5, 60, t);
    assert_ok(v);
    assert_int_equal(v.limit, 100);
    assert_int_equal(v.remaining, 40);
    assert_int_equal(v.reset_s, 3600);
    v = take(l, 1, 5, 41, t);
    assert_refused(v, "quota", 3600);
    assert_int_equal(v.remaining, 40);
    v = take(l, 1, 5, 40, t);
    assert_ok(v);
    assert_int_equal(v.remaining, 0);
    v = take(l, 1, 5, 1, t + 1);
    assert_refused(v, "quota", 3600); /* 3599.999999 s, rounded up */
    assert_int_equal(umg_limits_usage_get(l, 5, 202611), 100);
    /* A size-0 request passes and reports the state. */
    v = take(l, 1, 5, 0, t);
    assert_ok(v);
    assert_int_equal(v.remaining, 0);
    /* Raising the quota mid-month lets more in; usage is kept. */
    assert_int_equal(umg_limits_set_org(l, 5, 150), UMG_OK);
    assert_ok(take(l, 1, 5, 50, t));
    assert_refused(take(l, 1, 5, 1, t), "quota", 3600);
    /* Other orgs are not affected. */
    assert_ok(take(l, 1, 6, 1000, t));
    umg_limits_free(l);
}

static void test_month_rollover(void **state)
{
    (void)state;
    umg_limits_t *l = mk();
    assert_int_equal(umg_limits_set_org(l, 5, 100), UMG_OK);
    int64_t t = ts("2026-11-30T23:59:59Z");
    assert_ok(take(l, 1, 5, 100, t));
    assert_refused(take(l, 1, 5, 1, t), "quota", 1);
    assert_refused(take(l, 1, 5, 1, ts("2026-11-30T23:59:59.999999Z")), "quota", 1);
    umg_limit_verdict_t v = take(l, 1, 5, 30, ts("2026-12-01T00:00:00Z"));
    assert_ok(v);
    assert_int_equal(v.remaining, 70);
    assert_int_equal(v.reset_s, 31 * 86400);
    assert_int_equal(umg_limits_usage_get(l, 5, 202612), 30);
    assert_int_equal(umg_limits_usage_get(l, 5, 202611), 0); /* one month is held */

    /* December to January. */
    assert_ok(take(l, 1, 5, 70, ts("2026-12-31T22:00:00Z")));
    v = take(l, 1, 5, 1, ts("2026-12-31T23:00:00Z"));
    assert_refused(v, "quota", 3600);
    assert_int_equal(v.reset_s, 3600);
    v = take(l, 1, 5, 100, ts("2027-01-01T00:00:00Z"));
    assert_ok(v);
    assert_int_equal(v.remaining, 0);
    assert_int_equal(umg_limits_usage_get(l, 5, 202701), 100);
    /* A late take from December (another thread's clock) counts against January. */
    /* It waits for January's end, 31 days and a millisecond away. */
    assert_refused(take(l, 1, 5, 1, ts("2026-12-31T23:59:59.999Z")), "quota", 31 * 86400 + 1);
    /* Skipping whole months starts from 0 too. */
    v = take(l, 1, 5, 1, ts("2027-05-15T00:00:00Z"));
    assert_ok(v);
    assert_int_equal(v.remaining, 99);
    assert_int_equal(v.reset_s, 17 * 86400);
    umg_limits_free(l);
}

static void test_give_back(void **state)
{
    (void)state;
    umg_limits_t *l = mk();
    assert_int_equal(umg_limits_set_app(l, 1, (umg_rate_t){1, 10}), UMG_OK);
    assert_int_equal(umg_limits_set_org(l, 5, 100), UMG_OK);
    int64_t t = ts("2026-11-10T00:00:00Z");
    assert_ok(take(l, 1, 5, 10, t));
    assert_refused(take(l, 1, 5, 1, t), "rate", 1);
    umg_limits_give_back(l, 1, 5, 4);
    umg_limit_verdict_t v = take(l, 1, 5, 4, t);
    assert_ok(v);
    assert_int_equal(v.remaining, 0);
    assert_int_equal(umg_limits_usage_get(l, 5, 202611), 10);
    /* Tokens are capped at the burst, usage floored at 0. */
    umg_limits_give_back(l, 1, 5, 1000);
    assert_int_equal(umg_limits_usage_get(l, 5, 202611), 0);
    v = take(l, 1, 5, 0, t);
    assert_int_equal(v.remaining, 10);
    assert_ok(take(l, 1, 5, 10, t));
    assert_refused(take(l, 1, 5, 1, t), "rate", 1);
    /* Give-back of nothing, or to unknown ids, is harmless. */
    umg_limits_give_back(l, 1, 5, 0);
    umg_limits_give_back(l, 1, 5, -3);
    umg_limits_give_back(l, 99, 98, 3);
    assert_int_equal(umg_limits_usage_get(l, 5, 202611), 10);
    umg_limits_free(l);
}

static void test_no_cross_charge(void **state)
{
    (void)state;
    umg_limits_t *l = mk();
    assert_int_equal(umg_limits_set_app(l, 1, (umg_rate_t){10, 10}), UMG_OK);
    assert_int_equal(umg_limits_set_org(l, 5, 15), UMG_OK);
    int64_t t = ts("2026-11-10T00:00:00Z");
    /* Rate refusal: the quota is not charged. */
    assert_ok(take(l, 1, 5, 10, t));
    assert_refused(take(l, 1, 5, 3, t), "rate", 1);
    assert_int_equal(umg_limits_usage_get(l, 5, 202611), 10);
    /* When both would refuse, the rate answers first. */
    assert_refused(take(l, 1, 5, 8, t), "rate", 1);
    assert_int_equal(umg_limits_usage_get(l, 5, 202611), 10);
    /* Quota refusal: the bucket is not charged. */
    umg_limit_verdict_t v = take(l, 1, 5, 6, t + S(1));
    assert_refused(v, "quota", 21 * 86400 - 1); /* until 2026-12-01: 21 days less a second */
    assert_int_equal(v.limit, 15);
    assert_int_equal(v.remaining, 5);
    /* Seen through an org without a quota, the bucket is full: the refusal took nothing. */
    assert_int_equal(take(l, 1, 99, 0, t + S(1)).remaining, 10);
    v = take(l, 1, 5, 0, t + S(1));
    assert_ok(v);
    /* Both limits apply: the quota (5 left) is tighter than the bucket (10). */
    assert_int_equal(v.limit, 15);
    assert_int_equal(v.remaining, 5);
    v = take(l, 1, 5, 5, t + S(1));
    assert_ok(v);
    /* 5 tokens and 0 quota left: the quota is reported. */
    assert_int_equal(v.limit, 15);
    assert_int_equal(v.remaining, 0);
    /* A fresh month: the bucket is tighter again. */
    v = take(l, 1, 5, 8, ts("2026-12-01T00:00:00Z"));
    assert_ok(v);
    assert_int_equal(v.limit, 10);
    assert_int_equal(v.remaining, 2);
    assert_int_equal(v.reset_s, 1);
    umg_limits_free(l);
}

/* ---------------------------------------------------------------- usage */

typedef struct seen_s {
    int n;
    uint32_t org[16];
    int month[16];
    int64_t used[16];
} seen_t;

static void collect(void *ctx, uint32_t org, int month, int64_t used)
{
    seen_t *s = ctx;
    assert_true(s->n < 16);
    s->org[s->n] = org;
    s->month[s->n] = month;
    s->used[s->n] = used;
    s->n++;
}

static int64_t seen_used(const seen_t *s, uint32_t org)
{
    for (int i = 0; i < s->n; i++) {
        if (s->org[i] == org) {
            return s->used[i];
        }
    }
    return -1;
}

static void test_usage_round_trip(void **state)
{
    (void)state;
    umg_limits_t *l = mk();
    int64_t t = ts("2026-11-10T00:00:00Z");
    assert_int_equal(umg_limits_set_org(l, 1, 1000), UMG_OK);
    assert_int_equal(umg_limits_set_org(l, 2, 1000), UMG_OK);
    assert_int_equal(umg_limits_set_org(l, 3, 0), UMG_OK);
    assert_ok(take(l, 9, 1, 10, t));
    assert_ok(take(l, 9, 2, 20, t));
    assert_ok(take(l, 9, 3, 30, t));
    assert_int_equal(umg_limits_usage_set(l, 4, 202610, 7), UMG_OK); /* last month: not exported */
    seen_t s = {0};
    umg_limits_usage_each(l, t, collect, &s);
    assert_int_equal(s.n, 3);
    for (int i = 0; i < s.n; i++) {
        assert_int_equal(s.month[i], 202611);
    }
    assert_int_equal(seen_used(&s, 1), 10);
    assert_int_equal(seen_used(&s, 2), 20);
    assert_int_equal(seen_used(&s, 3), 30);

    /* Restore into a new object (a restart) and go on counting from there. */
    umg_limits_t *r = mk();
    for (int i = 0; i < s.n; i++) {
        assert_int_equal(umg_limits_usage_set(r, s.org[i], s.month[i], s.used[i]), UMG_OK);
    }
    assert_int_equal(umg_limits_set_org(r, 1, 15), UMG_OK); /* after the restore: usage is kept */
    assert_int_equal(umg_limits_usage_get(r, 1, 202611), 10);
    assert_int_equal(umg_limits_usage_get(r, 2, 202611), 20);
    assert_int_equal(umg_limits_usage_get(r, 2, 202610), 0);
    assert_int_equal(umg_limits_usage_get(r, 77, 202611), 0);
    umg_limit_verdict_t v = take(r, 9, 1, 5, t);
    assert_ok(v);
    assert_int_equal(v.remaining, 0);
    assert_refused(take(r, 9, 1, 1, t), "quota", 21 * 86400);
    seen_t s2 = {0};
    umg_limits_usage_each(r, t, collect, &s2);
    assert_int_equal(s2.n, 3);
    assert_int_equal(seen_used(&s2, 1), 15);
    /* A counter given back to 0 is still exported, so a stored row is overwritten. */
    umg_limits_give_back(r, 9, 2, 20);
    seen_t s3 = {0};
    umg_limits_usage_each(r, t, collect, &s3);
    assert_int_equal(seen_used(&s3, 2), 0);
    /* A new month exports nothing until something is counted. */
    seen_t s4 = {0};
    umg_limits_usage_each(r, ts("2026-12-01T00:00:00Z"), collect, &s4);
    assert_int_equal(s4.n, 0);

    /* A stored month older than the one held is ignored; bad input is refused. */
    assert_int_equal(umg_limits_usage_set(r, 1, 202610, 999), UMG_OK);
    assert_int_equal(umg_limits_usage_get(r, 1, 202611), 15);
    assert_int_equal(umg_limits_usage_set(r, 1, 202613, 1), UMG_EINVAL);
    assert_int_equal(umg_limits_usage_set(r, 1, 202600, 1), UMG_EINVAL);
    assert_int_equal(umg_limits_usage_set(r, 1, 202611, -1), UMG_EINVAL);
    /* Usage restored for a later month than the clock: takes count against it. */
    assert_int_equal(umg_limits_usage_set(r, 1, 202612, 14), UMG_OK);
    assert_ok(take(r, 9, 1, 1, t));
    assert_refused(take(r, 9, 1, 1, t), "quota", 52 * 86400);
    umg_limits_free(l);
    umg_limits_free(r);
}

/* ---------------------------------------------------------------- memory */

static void test_oom(void **state)
{
    (void)state;
    size_t base = umg_alloc_bytes();
    umg_limits_t *l = NULL;
    umg_alloc_fail_after(1);
    assert_int_equal(umg_limits_new(&l), UMG_ENOMEM);
    umg_alloc_fail_after(0);
    assert_null(l);
    l = mk();
    /* The first set needs an entry and a table: fail each in turn. */
    for (long k = 1; k <= 2; k++) {
        umg_alloc_fail_after(k);
        assert_int_equal(umg_limits_set_app(l, 1, (umg_rate_t){1, 1}), UMG_ENOMEM);
        assert_int_equal(umg_limits_set_org(l, 1, 10), UMG_ENOMEM);
        assert_int_equal(umg_limits_usage_set(l, 1, 202611, 5), UMG_ENOMEM);
        umg_alloc_fail_after(0);
        /* Nothing half-made: still unlimited. */
        assert_ok(take(l, 1, 1, 1000, S(1)));
        assert_int_equal(take(l, 1, 1, 1000, S(1)).limit, 0);
    }
    /* Fill the app table to just before it grows, then fail the growth. */
    for (uint32_t app = 1; app <= 8; app++) {
        assert_int_equal(umg_limits_set_app(l, app, (umg_rate_t){1, 1}), UMG_OK);
    }
    umg_alloc_fail_after(2);
    assert_int_equal(umg_limits_set_app(l, 9, (umg_rate_t){1, 1}), UMG_ENOMEM);
    /* Changing an existing app needs no memory. */
    assert_int_equal(umg_limits_set_app(l, 3, (umg_rate_t){1, 2}), UMG_OK);
    umg_alloc_fail_after(0);
    assert_int_equal(take(l, 9, 0, 1, S(1)).limit, 0);
    for (uint32_t app = 1; app <= 8; app++) {
        assert_int_equal(take(l, app, 0, 1, S(1)).limit, app == 3 ? 2 : 1);
    }
    /* After the failure it grows fine, and every app is still found. */
    for (uint32_t app = 9; app <= 300; app++) {
        assert_int_equal(umg_limits_set_app(l, app, (umg_rate_t){1, 1}), UMG_OK);
    }
    for (uint32_t app = 1; app <= 300; app++) {
        assert_int_equal(take(l, app, 0, 0, S(1)).limit, app == 3 ? 2 : 1);
    }
    umg_limits_free(l);
    assert_int_equal(umg_alloc_bytes(), base);
}

/* ---------------------------------------------------------------- threads */

enum { NTHREADS = 4, BURST = 100000, TAKES = 60000 };

typedef struct worker_s {
    umg_limits_t *l;
    int64_t now;
    int64_t admitted;
    int64_t bad; /* verdicts that make no sense; cmocka asserts are for the main thread */
} worker_t;

static atomic_int go;

static void *worker(void *arg)
{
    worker_t *w = arg;
    while (!atomic_load(&go)) {
    }
    for (int i = 0; i < TAKES; i++) {
        umg_limit_verdict_t v;
        /* Mostly single events, some small batches, all from one app and one org. */
        int64_t n = i % 7 == 0 ? 3 : 1;
        umg_limits_take(w->l, 42, 7, n, w->now, &v);
        if (v.ok) {
            w->admitted += n;
        } else if (v.which == NULL || strcmp(v.which, "rate") != 0 || v.retry_after_s < 1) {
            w->bad++;
        }
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    umg_limits_t *l = mk();
    /* A slow rate and a fixed clock: nothing refills, so exactly the burst gets in. */
    assert_int_equal(umg_limits_set_app(l, 42, (umg_rate_t){1, BURST}), UMG_OK);
    assert_int_equal(umg_limits_set_org(l, 7, 1000000), UMG_OK);
    int64_t now = ts("2026-11-10T00:00:00Z");
    pthread_t th[NTHREADS];
    worker_t w[NTHREADS];
    atomic_store(&go, 0);
    for (int i = 0; i < NTHREADS; i++) {
        w[i] = (worker_t){.l = l, .now = now};
        assert_int_equal(pthread_create(&th[i], NULL, worker, &w[i]), 0);
    }
    atomic_store(&go, 1);
    /* Meanwhile the main thread changes settings: the same bucket again, and new apps that grow the table. */
    for (uint32_t app = 1000; app < 3000; app++) {
        assert_int_equal(umg_limits_set_app(l, app, (umg_rate_t){5, 5}), UMG_OK);
        if (app % 100 == 0) {
            assert_int_equal(umg_limits_set_app(l, 42, (umg_rate_t){1, BURST}), UMG_OK);
            assert_int_equal(umg_limits_set_org(l, 7, 1000000), UMG_OK);
        }
    }
    int64_t total = 0;
    for (int i = 0; i < NTHREADS; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        total += w[i].admitted;
        assert_int_equal(w[i].bad, 0);
    }
    /* Demand is four times the burst and ends in single events, so the bucket drains to exactly 0. */
    assert_int_equal(total, BURST);
    assert_int_equal(umg_limits_usage_get(l, 7, 202611), BURST);
    umg_limit_verdict_t v = take(l, 42, 7, 1, now);
    assert_refused(v, "rate", 1);
    umg_limits_free(l);
}

int main(void)
{
    umg_log_min_level = UMG_LOG_ERROR;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_month),
        cmocka_unit_test(test_unlimited),
        cmocka_unit_test(test_burst_then_refusal),
        cmocka_unit_test(test_refill),
        cmocka_unit_test(test_retry_after_exact),
        cmocka_unit_test(test_over_burst_and_debt),
        cmocka_unit_test(test_settings_change),
        cmocka_unit_test(test_quota_edge),
        cmocka_unit_test(test_month_rollover),
        cmocka_unit_test(test_give_back),
        cmocka_unit_test(test_no_cross_charge),
        cmocka_unit_test(test_usage_round_trip),
        cmocka_unit_test(test_oom),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
