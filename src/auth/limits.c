/*
 * limits.c - ingest limits: a token bucket per app and a monthly event quota
 * per organization, checked on every ingest request by the event-loop threads.
 *
 * Two open-addressing tables (apps, orgs) map an id to an entry. Entries are
 * never freed while the object lives, so a reader that found one may keep
 * using it. Writers (the main thread) serialise on a mutex and grow a table
 * by building a larger slot array and publishing it with a release store; the
 * old array is kept until umg_limits_free because a reader may still be
 * probing it. Readers take no lock to find an entry: one acquire load of the
 * array and a short probe. Each entry carries a tiny spinlock held for a few
 * instructions (never across I/O or a call out), which makes a take exact:
 * the app's lock is taken before the org's (the only place both are held), so
 * a quota refusal leaves the bucket alone and a rate refusal leaves the quota
 * alone. An id with no entry is unlimited and costs one probe.
 *
 * Tokens are doubles refilled lazily from the time of the last take; the
 * clock only moves forward (a take with an older now_us than the last one
 * refills nothing). An org entry keeps one month's counter: the month is the
 * UTC calendar month (YYYYMM) and rolls over on the first take after its end.
 */
#include "umg_limits.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>

#define US_PER_S 1000000
#define US_PER_DAY INT64_C(86400000000)
/* Slack for rounding in token arithmetic: far below one event, far above double error. */
#define TOKEN_EPS 1e-9
/* Bounds that keep every token count and wait representable as int64_t seconds/events. */
#define RATE_MAX 1e15
#define SECS_MAX INT64_C(1000000000000000000)

/* ---------------------------------------------------------------- spinlock */

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Test-and-test-and-set; yields after a while so a preempted holder can finish. */
static inline void spin_lock(atomic_int *s)
{
    for (unsigned spins = 0;; spins++) {
        if (atomic_load_explicit(s, memory_order_relaxed) == 0 &&
            atomic_exchange_explicit(s, 1, memory_order_acquire) == 0) {
            return;
        }
        if (spins < 64) {
            cpu_relax();
        } else {
            sched_yield();
        }
    }
}

static inline void spin_unlock(atomic_int *s)
{
    atomic_store_explicit(s, 0, memory_order_release);
}

/* ---------------------------------------------------------------- entries */

/* An app's bucket. `key` is first: the table reads it through a void pointer. */
typedef struct bucket_s {
    uint32_t key;
    atomic_int lock;
    double rate;     /* tokens per second; 0: unlimited */
    double burst;    /* bucket size */
    double tokens;   /* as of last_us; negative while in debt */
    int64_t last_us; /* INT64_MIN until the first take */
} bucket_t;

/* An organization's quota and its counter for one month. */
typedef struct quota_s {
    uint32_t key;
    atomic_int lock;
    int month;      /* YYYYMM the counter belongs to; 0 before the first use */
    int64_t quota;  /* events per month; 0: unlimited (usage is still counted) */
    int64_t used;   /* events counted in `month` */
    int64_t end_us; /* start of the month after `month`; INT64_MIN when month is 0 */
} quota_t;

/* ---------------------------------------------------------------- tables */

typedef struct slots_s {
    struct slots_s *retired; /* the array this one replaced, freed with the object */
    size_t mask;
    _Atomic(void *) slot[];
} slots_t;

typedef struct table_s {
    _Atomic(slots_t *) cur; /* NULL until the first insert */
    size_t count;           /* entries; written under umg_limits_s.mu */
} table_t;

struct umg_limits_s {
    pthread_mutex_t mu; /* serialises writers (set, usage_set); readers never take it */
    table_t apps, orgs;
};

static inline size_t slot_of(uint32_t key, size_t mask)
{
    return (size_t)((key * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & mask;
}

static inline uint32_t key_of(const void *e)
{
    return *(const uint32_t *)e;
}

/* Lock-free lookup; the array always has empty slots, so the probe ends. */
static inline void *table_find(table_t *t, uint32_t key)
{
    slots_t *s = atomic_load_explicit(&t->cur, memory_order_acquire);
    if (s == NULL) {
        return NULL;
    }
    for (size_t i = slot_of(key, s->mask);; i = (i + 1) & s->mask) {
        void *e = atomic_load_explicit(&s->slot[i], memory_order_acquire);
        if (e == NULL || key_of(e) == key) {
            return e;
        }
    }
}

static void slots_put(slots_t *s, void *e)
{
    size_t i = slot_of(key_of(e), s->mask);
    while (atomic_load_explicit(&s->slot[i], memory_order_relaxed) != NULL) {
        i = (i + 1) & s->mask;
    }
    /* Release: a reader that sees the pointer sees the initialised entry. */
    atomic_store_explicit(&s->slot[i], e, memory_order_release);
}

/* Adds a fully initialised entry whose key is absent. Caller holds the writer mutex. */
static int table_insert(table_t *t, void *e)
{
    slots_t *s = atomic_load_explicit(&t->cur, memory_order_relaxed);
    size_t cap = s != NULL ? s->mask + 1 : 0;
    if ((t->count + 1) * 2 > cap) {
        size_t ncap = cap != 0 ? cap * 2 : 16;
        slots_t *ns = umg_calloc(1, sizeof(*ns) + ncap * sizeof(ns->slot[0]));
        if (ns == NULL) {
            return UMG_ENOMEM;
        }
        ns->mask = ncap - 1;
        ns->retired = s;
        for (size_t i = 0; i < cap; i++) {
            void *old = atomic_load_explicit(&s->slot[i], memory_order_relaxed);
            if (old != NULL) {
                slots_put(ns, old);
            }
        }
        slots_put(ns, e);
        atomic_store_explicit(&t->cur, ns, memory_order_release);
    } else {
        slots_put(s, e);
    }
    t->count++;
    return UMG_OK;
}

static void table_free(table_t *t)
{
    slots_t *s = atomic_load_explicit(&t->cur, memory_order_relaxed);
    if (s != NULL) {
        for (size_t i = 0; i <= s->mask; i++) {
            umg_free(atomic_load_explicit(&s->slot[i], memory_order_relaxed));
        }
    }
    while (s != NULL) {
        slots_t *next = s->retired;
        umg_free(s);
        s = next;
    }
}

/* ---------------------------------------------------------------- calendar */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

int umg_limits_month(int64_t now_us)
{
    int64_t days = now_us / US_PER_DAY;
    if (now_us % US_PER_DAY < 0) {
        days--;
    }
    int64_t y;
    unsigned m;
    civil_from_days(days, &y, &m);
    return (int)(y * 100 + m);
}

/* The first microsecond of the month after YYYYMM, saturated at INT64_MAX. */
static int64_t month_end_us(int month)
{
    int64_t y = month / 100;
    unsigned m = (unsigned)(month % 100);
    int64_t days = m == 12 ? days_from_civil(y + 1, 1, 1) : days_from_civil(y, m + 1, 1);
    int64_t us;
    if (__builtin_mul_overflow(days, US_PER_DAY, &us)) {
        return INT64_MAX;
    }
    return us;
}

static int month_valid(int month)
{
    return month >= 100 && month <= 999912 && month % 100 >= 1 && month % 100 <= 12;
}

/* Whole seconds from now until end, rounded up; 0 when end has passed. */
static int64_t secs_until(int64_t end_us, int64_t now_us)
{
    if (end_us <= now_us) {
        return 0;
    }
    uint64_t d = (uint64_t)end_us - (uint64_t)now_us; /* exact: the true difference is below 2^64 */
    return (int64_t)(d / US_PER_S + (d % US_PER_S != 0));
}

/* Rounds seconds up, forgiving rounding noise, clamped to [0, SECS_MAX]. */
static int64_t secs_ceil(double s)
{
    double c = ceil(s - TOKEN_EPS);
    if (!(c > 0)) {
        return 0;
    }
    return c >= (double)SECS_MAX ? SECS_MAX : (int64_t)c;
}

/* ---------------------------------------------------------------- object */

int umg_limits_new(umg_limits_t **out)
{
    umg_limits_t *l = umg_calloc(1, sizeof(*l));
    if (l == NULL) {
        return UMG_ENOMEM;
    }
    if (pthread_mutex_init(&l->mu, NULL) != 0) {
        umg_free(l);
        return UMG_ENOMEM;
    }
    *out = l;
    return UMG_OK;
}

void umg_limits_free(umg_limits_t *l)
{
    if (l == NULL) {
        return;
    }
    table_free(&l->apps);
    table_free(&l->orgs);
    pthread_mutex_destroy(&l->mu);
    umg_free(l);
}

/* ---------------------------------------------------------------- settings */

int umg_limits_set_app(umg_limits_t *l, uint32_t app, umg_rate_t r)
{
    /* The negated comparisons also refuse NaN. */
    if (!(r.rate >= 0 && r.rate <= RATE_MAX)) {
        return UMG_EINVAL;
    }
    if (r.rate > 0 && !(r.burst >= 1 && r.burst <= RATE_MAX)) {
        return UMG_EINVAL;
    }
    if (r.rate == 0) {
        r.burst = 0;
    }
    int rc = UMG_OK;
    pthread_mutex_lock(&l->mu);
    bucket_t *b = table_find(&l->apps, app);
    if (b == NULL) {
        b = umg_calloc(1, sizeof(*b));
        if (b == NULL) {
            rc = UMG_ENOMEM;
            goto done;
        }
        *b = (bucket_t){.key = app, .rate = r.rate, .burst = r.burst, .tokens = r.burst, .last_us = INT64_MIN};
        rc = table_insert(&l->apps, b);
        if (rc != UMG_OK) {
            umg_free(b);
        }
        goto done;
    }
    spin_lock(&b->lock);
    if (b->rate == 0) {
        /* An unlimited bucket has no fill to keep: a new limit starts full. */
        b->tokens = r.burst;
        b->last_us = INT64_MIN;
    } else if (b->tokens > r.burst) {
        b->tokens = r.burst;
    }
    b->rate = r.rate;
    b->burst = r.burst;
    spin_unlock(&b->lock);
done:
    pthread_mutex_unlock(&l->mu);
    return rc;
}

/* Finds or adds an org's entry. Caller holds the writer mutex. */
static int org_get(umg_limits_t *l, uint32_t org, quota_t **out)
{
    quota_t *q = table_find(&l->orgs, org);
    if (q == NULL) {
        q = umg_calloc(1, sizeof(*q));
        if (q == NULL) {
            return UMG_ENOMEM;
        }
        *q = (quota_t){.key = org, .end_us = INT64_MIN};
        int rc = table_insert(&l->orgs, q);
        if (rc != UMG_OK) {
            umg_free(q);
            return rc;
        }
    }
    *out = q;
    return UMG_OK;
}

int umg_limits_set_org(umg_limits_t *l, uint32_t org, int64_t monthly_quota)
{
    if (monthly_quota < 0) {
        return UMG_EINVAL;
    }
    pthread_mutex_lock(&l->mu);
    quota_t *q;
    int rc = org_get(l, org, &q);
    if (rc == UMG_OK) {
        spin_lock(&q->lock);
        q->quota = monthly_quota;
        spin_unlock(&q->lock);
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

/* ---------------------------------------------------------------- take */

/* Brings the bucket to now_us. Time never runs backwards for a bucket. */
static inline void bucket_refill(bucket_t *b, int64_t now_us)
{
    if (now_us <= b->last_us) {
        return;
    }
    if (b->last_us != INT64_MIN && b->tokens < b->burst) {
        double t = b->tokens + b->rate * (double)(now_us - b->last_us) / US_PER_S;
        b->tokens = t < b->burst ? t : b->burst;
    }
    b->last_us = now_us;
}

static inline int64_t tokens_floor(double t)
{
    double f = floor(t + TOKEN_EPS);
    return f > 0 ? (int64_t)f : 0;
}

/* The rate part of a verdict for a bucket holding `tokens` at now. */
static inline void rate_state(const bucket_t *b, double tokens, umg_limit_verdict_t *v)
{
    v->limit = (int64_t)b->burst;
    v->remaining = tokens_floor(tokens);
    v->reset_s = secs_ceil((b->burst - tokens) / b->rate);
}

/* Rolls the counter over when now_us is past its month. */
static inline void quota_roll(quota_t *q, int64_t now_us)
{
    if (now_us >= q->end_us) {
        int m = umg_limits_month(now_us);
        if (m > q->month) {
            q->month = m;
            q->used = 0;
            q->end_us = month_end_us(m);
        }
    }
}

static inline void quota_state(const quota_t *q, int64_t now_us, umg_limit_verdict_t *v)
{
    v->limit = q->quota;
    v->remaining = q->used < q->quota ? q->quota - q->used : 0;
    v->reset_s = secs_until(q->end_us, now_us);
}

static inline void refuse(umg_limit_verdict_t *v, const char *which, int64_t retry_after_s)
{
    v->ok = 0;
    v->which = which;
    v->retry_after_s = retry_after_s > 1 ? retry_after_s : 1;
}

/*
 * The rate decision, with the bucket locked: 1 and the fill the take would
 * leave in *left (not stored yet), or 0 and v filled in as a refusal.
 */
static inline int rate_check(bucket_t *b, int64_t n, int64_t now_us, double *left, umg_limit_verdict_t *v)
{
    bucket_refill(b, now_us);
    double dn = (double)n;
    int full = b->tokens + TOKEN_EPS >= b->burst;
    if (b->tokens + TOKEN_EPS < dn && !(full && dn > b->burst)) {
        /* A request above the burst waits for a full bucket, any other for n tokens. */
        double need = dn > b->burst ? b->burst : dn;
        rate_state(b, b->tokens, v);
        refuse(v, "rate", secs_ceil((need - b->tokens) / b->rate));
        return 0;
    }
    *left = b->tokens - dn;
    rate_state(b, *left, v);
    return 1;
}

/* The quota decision, with the org locked: 1 and n counted, or 0 and v filled in as a refusal. */
static inline int quota_check(quota_t *q, int64_t n, int64_t now_us, umg_limit_verdict_t *v)
{
    quota_roll(q, now_us);
    if (q->quota > 0 && n > q->quota - q->used) {
        quota_state(q, now_us, v);
        refuse(v, "quota", v->reset_s);
        return 0;
    }
    q->used = n > INT64_MAX - q->used ? INT64_MAX : q->used + n;
    quota_state(q, now_us, v);
    return 1;
}

void umg_limits_take(umg_limits_t *l, uint32_t app, uint32_t org, int64_t n, int64_t now_us, umg_limit_verdict_t *v)
{
    *v = (umg_limit_verdict_t){.ok = 1};
    n = n > 0 ? n : 0;
    bucket_t *b = table_find(&l->apps, app);
    quota_t *q = table_find(&l->orgs, org);
    umg_limit_verdict_t rv = {.ok = 1}, qv = {.ok = 1};
    double left = 0;
    int has_quota = 0;

    if (b != NULL) {
        spin_lock(&b->lock);
        if (b->rate == 0) {
            spin_unlock(&b->lock);
            b = NULL; /* unlimited */
        } else if (!rate_check(b, n, now_us, &left, &rv)) {
            spin_unlock(&b->lock);
            *v = rv;
            return;
        }
    }
    if (q != NULL) {
        /* Lock order: app, then org; nothing else holds both. The bucket stays locked until the quota agrees. */
        spin_lock(&q->lock);
        has_quota = q->quota > 0;
        int ok = quota_check(q, n, now_us, &qv);
        spin_unlock(&q->lock);
        if (!ok) {
            if (b != NULL) {
                spin_unlock(&b->lock);
            }
            *v = qv;
            return;
        }
    }
    if (b != NULL) {
        b->tokens = left;
        spin_unlock(&b->lock);
    }
    /* Report the tighter limit: the one with less left. */
    const umg_limit_verdict_t *t = has_quota ? &qv : NULL;
    if (b != NULL && (!has_quota || rv.remaining <= qv.remaining)) {
        t = &rv;
    }
    if (t != NULL) {
        v->limit = t->limit;
        v->remaining = t->remaining;
        v->reset_s = t->reset_s;
    }
}

void umg_limits_give_back(umg_limits_t *l, uint32_t app, uint32_t org, int64_t n)
{
    if (n <= 0) {
        return;
    }
    bucket_t *b = table_find(&l->apps, app);
    if (b != NULL) {
        spin_lock(&b->lock);
        if (b->rate > 0) {
            double t = b->tokens + (double)n;
            b->tokens = t < b->burst ? t : b->burst;
        }
        spin_unlock(&b->lock);
    }
    quota_t *q = table_find(&l->orgs, org);
    if (q != NULL) {
        spin_lock(&q->lock);
        q->used = q->used > n ? q->used - n : 0;
        spin_unlock(&q->lock);
    }
}

/* ---------------------------------------------------------------- usage */

/*
 * Restores a counter. The entry holds one month and months only move
 * forward: usage for a month older than the one held is ignored.
 */
int umg_limits_usage_set(umg_limits_t *l, uint32_t org, int month, int64_t used)
{
    if (!month_valid(month) || used < 0) {
        return UMG_EINVAL;
    }
    pthread_mutex_lock(&l->mu);
    quota_t *q;
    int rc = org_get(l, org, &q);
    if (rc == UMG_OK) {
        spin_lock(&q->lock);
        if (month >= q->month) {
            q->month = month;
            q->used = used;
            q->end_us = month_end_us(month);
        }
        spin_unlock(&q->lock);
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int64_t umg_limits_usage_get(umg_limits_t *l, uint32_t org, int month)
{
    quota_t *q = table_find(&l->orgs, org);
    int64_t used = 0;
    if (q != NULL) {
        spin_lock(&q->lock);
        if (q->month == month) {
            used = q->used;
        }
        spin_unlock(&q->lock);
    }
    return used;
}

/*
 * Reports every counter of the current month, including one given back to 0,
 * so a persisted row never keeps a stale value. No lock is held while fn runs.
 */
void umg_limits_usage_each(umg_limits_t *l, int64_t now_us,
                           void (*fn)(void *ctx, uint32_t org, int month, int64_t used), void *ctx)
{
    int month = umg_limits_month(now_us);
    slots_t *s = atomic_load_explicit(&l->orgs.cur, memory_order_acquire);
    if (s == NULL) {
        return;
    }
    for (size_t i = 0; i <= s->mask; i++) {
        quota_t *q = atomic_load_explicit(&s->slot[i], memory_order_acquire);
        if (q == NULL) {
            continue;
        }
        spin_lock(&q->lock);
        int m = q->month;
        int64_t used = q->used;
        spin_unlock(&q->lock);
        if (m == month) {
            fn(ctx, q->key, m, used);
        }
    }
}
