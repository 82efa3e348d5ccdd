/*
 * rollup.c - owns the in-memory report rollups: per app, one table per
 * umg_rollup_table_t, each a set of growable columns (day, the seven
 * dimensions, x[2], and one int64 column per counter) so a scan reads only
 * the columns it needs, plus an open-addressing index from a row's key to
 * its row number. Rows are never deleted. Apps sit in a small array sorted
 * by id (apps are few).
 *
 * Locking: one rwlock that prefers writers, so a long report scan cannot
 * starve the pipeline. The pipeline thread is the only writer (load, add,
 * delta_each, merge); readers only see the apps array and the columns. The
 * key indexes and the merge scratch are the writer's alone, so the writer
 * reads and grows them without the lock; only what readers can see (the apps
 * array, the columns, n, min_day/max_day) changes under the write lock.
 *
 * Merge is all-or-nothing on UMG_ENOMEM: it first resolves every delta row
 * to an existing row or a new one, reserves room for the new ones (index,
 * apps array, columns), and only then writes. A failed reservation may leave
 * larger arrays (or an app with no rows) behind, never different rows.
 */
#include <pthread.h>

#include "umg_rollup.h"

#define ROW_NONE UINT32_MAX
#define ROW_MAX (UINT32_MAX - 1u) /* an index slot holds row + 1 in 32 bits */
#define MIN_CAP 16
#define PREFETCH_AHEAD 8 /* delta rows: index slots are fetched this far ahead of their lookup */

/* An index slot: row + 1 (0 = empty) and the top 32 bits of the key's hash, which also place it. */
typedef struct islot_s {
    uint32_t row1;
    uint32_t tag;
} islot_t;

typedef struct rtable_s {
    size_t n, cap; /* rows; capacity of every column */
    size_t nv;     /* counters per row */
    int32_t *day;
    uint32_t *dim[UMG_RD_N];
    uint32_t *x[2];
    int64_t *v[UMG_ROLLUP_MAXV];
    int32_t min_day, max_day;
    /* the writer's own */
    islot_t *slots;
    size_t nslots;
    size_t pending;               /* new rows the current merge adds */
    _Atomic size_t nslots_public; /* nslots, for umg_rollup_stats from any thread */
} rtable_t;

typedef struct rapp_s {
    uint32_t id;
    rtable_t tab[UMG_RT_COUNT];
} rapp_t;

/* Where a delta row goes, resolved by the first pass of a merge. */
typedef struct res_s {
    rtable_t *tb;
    uint32_t row; /* ROW_NONE: a new row */
} res_t;

struct umg_rollup_s {
    pthread_rwlock_t lock;
    rapp_t **apps; /* sorted by id */
    size_t napps, capps;
    /* the writer's merge scratch */
    res_t *res;
    size_t cres;
    rtable_t **touched; /* tables with pending > 0, cres of them at most */
    rapp_t **fresh;     /* apps the current merge creates, not yet in apps[] */
    size_t nfresh, cfresh;
};

/* One row of a delta. hash is the key's hash in its (app, table), as the table's index uses it. */
typedef struct dent_s {
    uint64_t hash;
    uint32_t app;
    uint32_t t;
    umg_rollup_key_t k;
    int64_t v[UMG_ROLLUP_MAXV];
} dent_t;

/* An add not applied yet: one cache line. */
typedef struct qadd_s {
    uint64_t hash; /* filled in when the queue is applied */
    uint32_t app;
    uint16_t t, vi;
    umg_rollup_key_t k;
    int64_t by;
} qadd_t;

/*
 * Adds are queued and applied QUEUE at a time (umg_rollup_delta_flush): the keys are
 * hashed and their slots fetched first, then each entry is fetched a few adds
 * before it is read, so the cache misses of a queue overlap instead of
 * following one another. Everything that reads the delta flushes it first.
 */
#define QUEUE 256
#define ENT_AHEAD 16 /* entries are fetched this many adds ahead */

struct umg_rollup_delta_s {
    dent_t *ents;
    size_t n, cap;
    islot_t *slots; /* entry + 1 (0 = empty) and the hash's tag: a probe reads no entry whose tag differs */
    size_t nslots;
    qadd_t *q; /* QUEUE of them */
    size_t nq;
    int failed; /* an apply ran out of memory: the delta lost adds, and says UMG_ENOMEM until reset */
};

_Static_assert(sizeof(qadd_t) == 64, "a queued add is one cache line");
_Static_assert(UMG_RT_COUNT <= 32, "a table fits the 5 bits key_hash gives it");
_Static_assert(sizeof(umg_rollup_key_t) == 40, "the key is 40 bytes without padding: five words to hash");

static const uint8_t nvalues[UMG_RT_COUNT] = {
    [UMG_RT_MAIN] = UMG_RM_N,
    [UMG_RT_REVENUE] = 2,
    [UMG_RT_EVENT] = 2,
    [UMG_RT_COHORT] = 1,
    [UMG_RT_COHORT_DAY] = 2,
    [UMG_RT_COHORT_REV] = 2,
    [UMG_RT_ACTIVITY] = 2,
    [UMG_RT_FRAUD] = 2,
    [UMG_RT_CTIT] = 7,
    [UMG_RT_SCORE] = 10,
    [UMG_RT_REENG_MAIN] = UMG_RM_N,
    [UMG_RT_REENG_REVENUE] = 2,
    [UMG_RT_REENG_EVENT] = 2,
};

size_t umg_rollup_nvalues(umg_rollup_table_t t)
{
    return (unsigned)t < UMG_RT_COUNT ? nvalues[t] : 0;
}

/* ---------------------------------------------------------------- hashing */

static inline uint64_t fold_mul(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/* The key's five words and its (app, table), each through a 64x64->128 multiply folded in half with an odd
 * constant: umg_hash64's family, unrolled for the one size of key it is given here and inlined. */
static inline uint64_t key_hash(uint32_t app, umg_rollup_table_t t, const umg_rollup_key_t *k)
{
    uint64_t w[5];
    memcpy(w, k, sizeof(w));
    uint64_t seed = ((uint64_t)app << 5 | (uint64_t)t) ^ UINT64_C(0x5851F42D4C957F2D);
    uint64_t a = fold_mul(w[0] ^ UINT64_C(0x9E3779B97F4A7C15), w[1] ^ seed);
    uint64_t b = fold_mul(w[2] ^ UINT64_C(0xC2B2AE3D27D4EB4F), w[3] ^ UINT64_C(0x165667B19E3779F9));
    return fold_mul(a ^ w[4] ^ UINT64_C(0xD6E8FEB86659FD93), b ^ seed ^ UINT64_C(0xA0761D6478BD642F));
}

/* A slot in [0, cap) for any cap (multiply-shift), so tables can grow by half instead of doubling. */
static inline size_t slot_of(uint32_t tag, size_t cap)
{
    return (size_t)(((uint64_t)tag * cap) >> 32);
}

/* A capacity of at least need, growing by half at a time. */
static size_t grown(size_t cap, size_t need)
{
    size_t c = cap + cap / 2;
    if (c < MIN_CAP) {
        c = MIN_CAP;
    }
    return c < need ? need : c;
}

/* ------------------------------------------------------------- tables */

static void tab_free(rtable_t *tb)
{
    umg_free(tb->day);
    for (int d = 0; d < UMG_RD_N; d++) {
        umg_free(tb->dim[d]);
    }
    umg_free(tb->x[0]);
    umg_free(tb->x[1]);
    for (size_t j = 0; j < UMG_ROLLUP_MAXV; j++) {
        umg_free(tb->v[j]);
    }
    umg_free(tb->slots);
}

/* Whether row r has key k. Branch-free, so the loads from the ten columns overlap their cache misses. */
static int row_eq(const rtable_t *tb, size_t r, const umg_rollup_key_t *k)
{
    uint32_t diff = ((uint32_t)tb->day[r] ^ (uint32_t)k->day) | (tb->x[0][r] ^ k->x[0]) | (tb->x[1][r] ^ k->x[1]);
    for (int d = 0; d < UMG_RD_N; d++) {
        diff |= tb->dim[d][r] ^ k->dim[d];
    }
    return diff == 0;
}

/* Starts loading the index slot where key hash h begins its probe. */
static inline void tab_prefetch(const rtable_t *tb, uint64_t h)
{
    if (tb->nslots != 0) {
        __builtin_prefetch(&tb->slots[slot_of((uint32_t)(h >> 32), tb->nslots)]);
    }
}

/* The row of key k (hash h), or ROW_NONE. */
static uint32_t tab_find(const rtable_t *tb, const umg_rollup_key_t *k, uint64_t h)
{
    if (tb->nslots == 0) {
        return ROW_NONE;
    }
    uint32_t tag = (uint32_t)(h >> 32);
    size_t j = slot_of(tag, tb->nslots);
    for (;;) {
        islot_t s = tb->slots[j];
        if (s.row1 == 0) {
            return ROW_NONE;
        }
        if (s.tag == tag && row_eq(tb, s.row1 - 1, k)) {
            return s.row1 - 1;
        }
        if (++j == tb->nslots) {
            j = 0;
        }
    }
}

/* Puts a row known to be absent into the index, which has room. */
static void idx_put(islot_t *slots, size_t nslots, uint32_t row, uint32_t tag)
{
    size_t j = slot_of(tag, nslots);
    while (slots[j].row1 != 0) {
        if (++j == nslots) {
            j = 0;
        }
    }
    slots[j] = (islot_t){row + 1, tag};
}

/*
 * Makes the index hold `need` rows at a load of at most 3/4. The slots are
 * moved by their tags alone: no key is read back from the columns. The
 * index is the writer's own, so this needs no lock.
 */
static int idx_reserve(rtable_t *tb, size_t need)
{
    if (need <= tb->nslots / 4 * 3) {
        return UMG_OK;
    }
    size_t cap = grown(tb->nslots, need / 3 * 4 + 4);
    islot_t *slots = umg_calloc(cap, sizeof(*slots));
    if (slots == NULL) {
        return UMG_ENOMEM;
    }
    for (size_t j = 0; j < tb->nslots; j++) {
        if (tb->slots[j].row1 != 0) {
            idx_put(slots, cap, tb->slots[j].row1 - 1, tb->slots[j].tag);
        }
    }
    umg_free(tb->slots);
    tb->slots = slots;
    tb->nslots = cap;
    atomic_store_explicit(&tb->nslots_public, cap, memory_order_relaxed);
    return UMG_OK;
}

/* Grows one column to cap elements of width bytes; the column is unchanged on failure. */
static int col_grow(void *col, size_t cap, size_t width, void **out)
{
    void *p = umg_realloc(col, cap * width);
    if (p == NULL) {
        return UMG_ENOMEM;
    }
    *out = p;
    return UMG_OK;
}

/*
 * Makes every column hold `need` rows. Moves the columns, so under the write
 * lock for a published table. On failure the columns grown so far keep their
 * contents and tb->cap stays the old (smaller) capacity.
 */
static int cols_reserve(rtable_t *tb, size_t need)
{
    if (need <= tb->cap) {
        return UMG_OK;
    }
    if (need > ROW_MAX) {
        return UMG_ENOMEM;
    }
    size_t cap = grown(tb->cap, need);
    if (cap > ROW_MAX) {
        cap = ROW_MAX;
    }
    void *p;
    if (col_grow(tb->day, cap, sizeof(*tb->day), &p) != UMG_OK) {
        return UMG_ENOMEM;
    }
    tb->day = p;
    for (int d = 0; d < UMG_RD_N; d++) {
        if (col_grow(tb->dim[d], cap, sizeof(uint32_t), &p) != UMG_OK) {
            return UMG_ENOMEM;
        }
        tb->dim[d] = p;
    }
    for (int i = 0; i < 2; i++) {
        if (col_grow(tb->x[i], cap, sizeof(uint32_t), &p) != UMG_OK) {
            return UMG_ENOMEM;
        }
        tb->x[i] = p;
    }
    for (size_t j = 0; j < tb->nv; j++) {
        if (col_grow(tb->v[j], cap, sizeof(int64_t), &p) != UMG_OK) {
            return UMG_ENOMEM;
        }
        tb->v[j] = p;
    }
    tb->cap = cap;
    return UMG_OK;
}

/* Appends a row into reserved room (columns and index) with zero counters; returns its number. */
static uint32_t tab_append(rtable_t *tb, const umg_rollup_key_t *k, uint64_t h)
{
    size_t r = tb->n;
    tb->day[r] = k->day;
    for (int d = 0; d < UMG_RD_N; d++) {
        tb->dim[d][r] = k->dim[d];
    }
    tb->x[0][r] = k->x[0];
    tb->x[1][r] = k->x[1];
    for (size_t j = 0; j < tb->nv; j++) {
        tb->v[j][r] = 0;
    }
    if (r == 0 || k->day < tb->min_day) {
        tb->min_day = k->day;
    }
    if (r == 0 || k->day > tb->max_day) {
        tb->max_day = k->day;
    }
    idx_put(tb->slots, tb->nslots, (uint32_t)r, (uint32_t)(h >> 32));
    tb->n = r + 1;
    return (uint32_t)r;
}

static size_t tab_bytes(const rtable_t *tb)
{
    size_t row = sizeof(int32_t) + (UMG_RD_N + 2) * sizeof(uint32_t) + tb->nv * sizeof(int64_t);
    return tb->cap * row + atomic_load_explicit(&tb->nslots_public, memory_order_relaxed) * sizeof(islot_t);
}

/* --------------------------------------------------------------- apps */

static rapp_t *app_new(uint32_t id)
{
    rapp_t *a = umg_calloc(1, sizeof(*a));
    if (a == NULL) {
        return NULL;
    }
    a->id = id;
    for (int t = 0; t < UMG_RT_COUNT; t++) {
        a->tab[t].nv = nvalues[t];
        a->tab[t].max_day = -1;
    }
    return a;
}

static void app_free(rapp_t *a)
{
    if (a == NULL) {
        return;
    }
    for (int t = 0; t < UMG_RT_COUNT; t++) {
        tab_free(&a->tab[t]);
    }
    umg_free(a);
}

/* The position of app id in the sorted array, or where it would go. */
static size_t app_pos(const umg_rollup_t *r, uint32_t id)
{
    size_t lo = 0, hi = r->napps;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->apps[mid]->id < id) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static rapp_t *app_find(const umg_rollup_t *r, uint32_t id)
{
    size_t i = app_pos(r, id);
    return i < r->napps && r->apps[i]->id == id ? r->apps[i] : NULL;
}

/* Room for `extra` more apps in the array. Moves it, so under the write lock. */
static int apps_reserve(umg_rollup_t *r, size_t extra)
{
    if (r->napps + extra <= r->capps) {
        return UMG_OK;
    }
    size_t cap = r->capps * 2 > r->napps + extra ? r->capps * 2 : r->napps + extra + 4;
    rapp_t **p = umg_realloc(r->apps, cap * sizeof(*p));
    if (p == NULL) {
        return UMG_ENOMEM;
    }
    r->apps = p;
    r->capps = cap;
    return UMG_OK;
}

/* Inserts an app into reserved room (write lock held). */
static void apps_insert(umg_rollup_t *r, rapp_t *a)
{
    size_t i = app_pos(r, a->id);
    memmove(&r->apps[i + 1], &r->apps[i], (r->napps - i) * sizeof(*r->apps));
    r->apps[i] = a;
    r->napps++;
}

/* ------------------------------------------------------------ lifecycle */

int umg_rollup_new(umg_rollup_t **out)
{
    umg_rollup_t *r = umg_calloc(1, sizeof(*r));
    if (r == NULL) {
        return UMG_ENOMEM;
    }
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    int rc = pthread_rwlock_init(&r->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (rc != 0) {
        umg_free(r);
        return UMG_ENOMEM;
    }
    *out = r;
    return UMG_OK;
}

void umg_rollup_free(umg_rollup_t *r)
{
    if (r == NULL) {
        return;
    }
    for (size_t i = 0; i < r->napps; i++) {
        app_free(r->apps[i]);
    }
    umg_free(r->apps);
    umg_free(r->res);
    umg_free(r->touched);
    umg_free(r->fresh);
    pthread_rwlock_destroy(&r->lock);
    umg_free(r);
}

int umg_rollup_load(umg_rollup_t *r, uint32_t app, umg_rollup_table_t t, const umg_rollup_key_t *k, const int64_t *v)
{
    if ((unsigned)t >= UMG_RT_COUNT) {
        return UMG_EINVAL;
    }
    int rc = UMG_ENOMEM;
    rapp_t *a = app_find(r, app), *fresh = NULL;
    if (a == NULL && (a = fresh = app_new(app)) == NULL) {
        return UMG_ENOMEM;
    }
    rtable_t *tb = &a->tab[t];
    uint64_t h = key_hash(app, t, k);
    uint32_t row = tab_find(tb, k, h);
    if (row == ROW_NONE && idx_reserve(tb, tb->n + 1) != UMG_OK) {
        goto fail;
    }
    pthread_rwlock_wrlock(&r->lock);
    if (row == ROW_NONE && (cols_reserve(tb, tb->n + 1) != UMG_OK || (fresh && apps_reserve(r, 1) != UMG_OK))) {
        pthread_rwlock_unlock(&r->lock);
        goto fail;
    }
    if (fresh) {
        apps_insert(r, fresh);
        fresh = NULL;
    }
    if (row == ROW_NONE) {
        row = tab_append(tb, k, h);
    }
    for (size_t j = 0; j < tb->nv; j++) {
        tb->v[j][row] = v[j];
    }
    pthread_rwlock_unlock(&r->lock);
    rc = UMG_OK;
fail:
    app_free(fresh);
    return rc;
}

/* ---------------------------------------------------------------- deltas */

int umg_rollup_delta_new(umg_rollup_delta_t **out)
{
    umg_rollup_delta_t *d = umg_calloc(1, sizeof(*d));
    if (d == NULL || (d->q = umg_malloc(QUEUE * sizeof(*d->q))) == NULL) {
        umg_free(d);
        return UMG_ENOMEM;
    }
    *out = d;
    return UMG_OK;
}

void umg_rollup_delta_free(umg_rollup_delta_t *d)
{
    if (d == NULL) {
        return;
    }
    umg_free(d->ents);
    umg_free(d->slots);
    umg_free(d->q);
    umg_free(d);
}

void umg_rollup_delta_reset(umg_rollup_delta_t *d)
{
    if (d->n != 0) {
        memset(d->slots, 0, d->nslots * sizeof(*d->slots));
    }
    d->n = 0;
    d->nq = 0;
    d->failed = 0;
}

int umg_rollup_delta_empty(const umg_rollup_delta_t *d)
{
    return d->n == 0 && d->nq == 0 && !d->failed;
}

/* Room for need entries: the entry array and the slots (load at most 3/4). */
static int delta_reserve(umg_rollup_delta_t *d, size_t need)
{
    if (need > d->cap) {
        size_t cap = d->cap < 64 ? 64 : d->cap * 2;
        while (cap < need) {
            cap *= 2;
        }
        dent_t *e = umg_realloc(d->ents, cap * sizeof(*e));
        if (e == NULL) {
            return UMG_ENOMEM;
        }
        d->ents = e;
        d->cap = cap;
    }
    if (need <= d->nslots / 4 * 3) {
        return UMG_OK;
    }
    size_t ns = d->nslots < 128 ? 128 : d->nslots * 2;
    while (need > ns / 4 * 3) {
        ns *= 2;
    }
    islot_t *s = umg_calloc(ns, sizeof(*s));
    if (s == NULL) {
        return UMG_ENOMEM;
    }
    for (size_t j = 0; j < d->nslots; j++) { /* moved by their tags alone */
        if (d->slots[j].row1 != 0) {
            idx_put(s, ns, d->slots[j].row1 - 1, d->slots[j].tag);
        }
    }
    umg_free(d->slots);
    d->slots = s;
    d->nslots = ns;
    return UMG_OK;
}

/* One queued add into the delta, which has room for a new entry. */
static void delta_apply(umg_rollup_delta_t *d, const qadd_t *q)
{
    uint32_t tag = (uint32_t)(q->hash >> 32);
    size_t j = slot_of(tag, d->nslots);
    for (islot_t s; (s = d->slots[j]).row1 != 0; j = j + 1 == d->nslots ? 0 : j + 1) {
        dent_t *e = &d->ents[s.row1 - 1];
        if (s.tag == tag && e->hash == q->hash && e->app == q->app && e->t == q->t &&
            memcmp(&e->k, &q->k, sizeof(q->k)) == 0) {
            e->v[q->vi] = umg_add_sat(e->v[q->vi], q->by);
            return;
        }
    }
    dent_t *e = &d->ents[d->n];
    e->hash = q->hash;
    e->app = q->app;
    e->t = q->t;
    e->k = q->k;
    memset(e->v, 0, sizeof(e->v));
    e->v[q->vi] = q->by;
    d->slots[j] = (islot_t){(uint32_t)++d->n, tag};
}

int umg_rollup_delta_flush(umg_rollup_delta_t *d)
{
    size_t n = d->nq;
    if (n == 0) {
        return d->failed ? UMG_ENOMEM : UMG_OK;
    }
    d->nq = 0;
    if (d->failed || delta_reserve(d, d->n + n) != UMG_OK) {
        d->failed = 1;
        return UMG_ENOMEM;
    }
    qadd_t *q = d->q;
    for (size_t i = 0; i < n; i++) {
        q[i].hash = key_hash(q[i].app, (umg_rollup_table_t)q[i].t, &q[i].k);
        __builtin_prefetch(&d->slots[slot_of((uint32_t)(q[i].hash >> 32), d->nslots)]);
    }
    for (size_t i = 0; i < n; i++) {
        if (i + ENT_AHEAD < n) {
            islot_t s = d->slots[slot_of((uint32_t)(q[i + ENT_AHEAD].hash >> 32), d->nslots)];
            if (s.row1 != 0) {
                __builtin_prefetch(&d->ents[s.row1 - 1]);
            }
        }
        delta_apply(d, &q[i]);
    }
    return UMG_OK;
}

int umg_rollup_add(umg_rollup_delta_t *d, uint32_t app, umg_rollup_table_t t, const umg_rollup_key_t *k, size_t vi,
                   int64_t by)
{
    if ((unsigned)t >= UMG_RT_COUNT || vi >= nvalues[t]) {
        return UMG_EINVAL;
    }
    if (d->failed) {
        return UMG_ENOMEM;
    }
    qadd_t *q = &d->q[d->nq++];
    q->app = app;
    q->t = (uint16_t)t;
    q->vi = (uint16_t)vi;
    q->k = *k;
    q->by = by;
    return d->nq == QUEUE ? umg_rollup_delta_flush(d) : UMG_OK;
}

int umg_rollup_delta_rows(umg_rollup_delta_t *d, umg_rollup_row_cb fn, void *ctx)
{
    int rc = umg_rollup_delta_flush(d);
    for (size_t i = 0; i < d->n && rc == 0; i++) {
        const dent_t *e = &d->ents[i];
        rc = fn(ctx, e->app, (umg_rollup_table_t)e->t, &e->k, e->v, nvalues[e->t]);
    }
    return rc;
}

int umg_rollup_delta_each(umg_rollup_t *r, umg_rollup_delta_t *d, umg_rollup_row_cb fn, void *ctx)
{
    int rc = umg_rollup_delta_flush(d);
    if (rc != UMG_OK) {
        return rc;
    }
    int64_t v[UMG_ROLLUP_MAXV];
    pthread_rwlock_rdlock(&r->lock);
    rapp_t *a = NULL;
    for (size_t i = 0; i < d->n && rc == 0; i++) {
        const dent_t *e = &d->ents[i];
        if (i + PREFETCH_AHEAD < d->n && a != NULL && a->id == e[PREFETCH_AHEAD].app) {
            tab_prefetch(&a->tab[e[PREFETCH_AHEAD].t], e[PREFETCH_AHEAD].hash);
        }
        if (a == NULL || a->id != e->app) {
            a = app_find(r, e->app);
        }
        size_t nv = nvalues[e->t];
        memcpy(v, e->v, nv * sizeof(*v));
        if (a != NULL) {
            const rtable_t *tb = &a->tab[e->t];
            uint32_t row = tab_find(tb, &e->k, e->hash);
            for (size_t j = 0; row != ROW_NONE && j < nv; j++) {
                v[j] = umg_add_sat(v[j], tb->v[j][row]);
            }
        }
        rc = fn(ctx, e->app, (umg_rollup_table_t)e->t, &e->k, v, nv);
    }
    pthread_rwlock_unlock(&r->lock);
    return rc;
}

/* ----------------------------------------------------------------- merge */

/* The app id among those published or created by this merge; creates it (unpublished) if needed. */
static rapp_t *merge_app(umg_rollup_t *r, uint32_t id)
{
    rapp_t *a = app_find(r, id);
    if (a != NULL) {
        return a;
    }
    for (size_t i = 0; i < r->nfresh; i++) {
        if (r->fresh[i]->id == id) {
            return r->fresh[i];
        }
    }
    if (r->nfresh == r->cfresh) {
        size_t cap = r->cfresh ? r->cfresh * 2 : 4;
        rapp_t **p = umg_realloc(r->fresh, cap * sizeof(*p));
        if (p == NULL) {
            return NULL;
        }
        r->fresh = p;
        r->cfresh = cap;
    }
    if ((a = app_new(id)) == NULL) {
        return NULL;
    }
    r->fresh[r->nfresh++] = a;
    return a;
}

/*
 * First pass, without the lock (the writer alone changes what it reads):
 * every delta row to its table and row, counting the new rows per table,
 * then the indexes of the tables that grow. *ntouched: the tables that grow.
 */
static int merge_resolve(umg_rollup_t *r, const umg_rollup_delta_t *d, size_t *ntouched)
{
    size_t nt = 0;
    rapp_t *a = NULL;
    int rc = UMG_OK;
    for (size_t i = 0; i < d->n; i++) {
        const dent_t *e = &d->ents[i];
        if (i + PREFETCH_AHEAD < d->n && a != NULL && a->id == e[PREFETCH_AHEAD].app) {
            tab_prefetch(&a->tab[e[PREFETCH_AHEAD].t], e[PREFETCH_AHEAD].hash);
        }
        if (a == NULL || a->id != e->app) {
            if ((a = merge_app(r, e->app)) == NULL) {
                rc = UMG_ENOMEM;
                break;
            }
        }
        rtable_t *tb = &a->tab[e->t];
        uint32_t row = tab_find(tb, &e->k, e->hash);
        r->res[i] = (res_t){tb, row};
        if (row == ROW_NONE && tb->pending++ == 0) {
            r->touched[nt++] = tb;
        }
    }
    for (size_t i = 0; i < nt && rc == UMG_OK; i++) {
        rc = idx_reserve(r->touched[i], r->touched[i]->n + r->touched[i]->pending);
    }
    *ntouched = nt;
    return rc;
}

static void merge_apply(umg_rollup_t *r, const umg_rollup_delta_t *d)
{
    for (size_t i = 0; i < d->n; i++) {
        const dent_t *e = &d->ents[i];
        rtable_t *tb = r->res[i].tb;
        uint32_t row = r->res[i].row;
        if (row == ROW_NONE) {
            row = tab_append(tb, &e->k, e->hash);
        }
        for (size_t j = 0; j < tb->nv; j++) {
            if (e->v[j] != 0) { /* a column not touched is a cache miss saved */
                tb->v[j][row] = umg_add_sat(tb->v[j][row], e->v[j]);
            }
        }
    }
}

int umg_rollup_merge(umg_rollup_t *r, umg_rollup_delta_t *d)
{
    if (umg_rollup_delta_flush(d) != UMG_OK) {
        return UMG_ENOMEM;
    }
    if (d->n == 0) {
        return UMG_OK;
    }
    if (d->n > r->cres) {
        res_t *res = umg_realloc(r->res, d->n * sizeof(*res));
        if (res == NULL) {
            return UMG_ENOMEM;
        }
        r->res = res;
        rtable_t **tt = umg_realloc(r->touched, d->n * sizeof(*tt));
        if (tt == NULL) {
            return UMG_ENOMEM; /* res grew; cres says the smaller size until both did */
        }
        r->touched = tt;
        r->cres = d->n;
    }
    size_t nt = 0;
    int rc = merge_resolve(r, d, &nt);
    if (rc == UMG_OK) {
        pthread_rwlock_wrlock(&r->lock);
        rc = apps_reserve(r, r->nfresh);
        for (size_t i = 0; i < nt && rc == UMG_OK; i++) {
            rc = cols_reserve(r->touched[i], r->touched[i]->n + r->touched[i]->pending);
        }
        if (rc == UMG_OK) {
            for (size_t i = 0; i < r->nfresh; i++) {
                apps_insert(r, r->fresh[i]);
            }
            r->nfresh = 0;
            merge_apply(r, d);
        }
        pthread_rwlock_unlock(&r->lock);
    }
    for (size_t i = 0; i < nt; i++) {
        r->touched[i]->pending = 0;
    }
    for (size_t i = 0; i < r->nfresh; i++) {
        app_free(r->fresh[i]);
    }
    r->nfresh = 0;
    return rc;
}

/* --------------------------------------------------------------- reading */

void umg_rollup_read_begin(umg_rollup_t *r)
{
    pthread_rwlock_rdlock(&r->lock);
}

void umg_rollup_read_end(umg_rollup_t *r)
{
    pthread_rwlock_unlock(&r->lock);
}

void umg_rollup_view(umg_rollup_t *r, uint32_t app, umg_rollup_table_t t, umg_rollup_view_t *out)
{
    memset(out, 0, sizeof(*out));
    out->max_day = -1;
    const rapp_t *a = (unsigned)t < UMG_RT_COUNT ? app_find(r, app) : NULL;
    if (a == NULL || a->tab[t].n == 0) {
        return;
    }
    const rtable_t *tb = &a->tab[t];
    out->n = tb->n;
    out->day = tb->day;
    for (int d = 0; d < UMG_RD_N; d++) {
        out->dim[d] = tb->dim[d];
    }
    out->x[0] = tb->x[0];
    out->x[1] = tb->x[1];
    for (size_t j = 0; j < tb->nv; j++) {
        out->v[j] = tb->v[j];
    }
    out->min_day = tb->min_day;
    out->max_day = tb->max_day;
}

void umg_rollup_stats(umg_rollup_t *r, umg_rollup_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    pthread_rwlock_rdlock(&r->lock);
    size_t bytes = r->capps * sizeof(*r->apps);
    for (size_t i = 0; i < r->napps; i++) {
        const rapp_t *a = r->apps[i];
        bytes += sizeof(*a);
        for (int t = 0; t < UMG_RT_COUNT; t++) {
            out->rows[t] += a->tab[t].n;
            bytes += tab_bytes(&a->tab[t]);
        }
    }
    out->bytes = bytes;
    pthread_rwlock_unlock(&r->lock);
}
