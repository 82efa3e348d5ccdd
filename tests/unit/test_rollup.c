/*
 * test_rollup.c - the in-memory rollups: add/merge/view round trips for every
 * table, keys that differ in one byte, random batches against a brute-force
 * model (with delta_each giving current + delta), load then deltas, merges
 * that run out of memory at every allocation leaving the tables unchanged,
 * and a reader scanning views while the writer merges.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>

#include "umg_rollup.h"

static uint64_t rng_state = 0x243F6A8885A308D3ull;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static umg_rollup_key_t key(int32_t day, uint32_t campaign, uint32_t country, uint32_t x0)
{
    umg_rollup_key_t k;
    memset(&k, 0, sizeof(k));
    k.day = day;
    k.dim[UMG_RD_SOURCE] = 1;
    k.dim[UMG_RD_CAMPAIGN] = campaign;
    k.dim[UMG_RD_COUNTRY] = country;
    k.dim[UMG_RD_PLATFORM] = 2;
    k.x[0] = x0;
    return k;
}

/* The row of key k in a view, or -1. */
static long view_find(const umg_rollup_view_t *v, const umg_rollup_key_t *k)
{
    for (size_t i = 0; i < v->n; i++) {
        int eq = v->day[i] == k->day && v->x[0][i] == k->x[0] && v->x[1][i] == k->x[1];
        for (int d = 0; eq && d < UMG_RD_N; d++) {
            eq = v->dim[d][i] == k->dim[d];
        }
        if (eq) {
            return (long)i;
        }
    }
    return -1;
}

/* ------------------------------------------------------ brute-force model */

typedef struct mrow_s {
    uint32_t app;
    umg_rollup_table_t t;
    umg_rollup_key_t k;
    int64_t v[UMG_ROLLUP_MAXV];
    int64_t dv[UMG_ROLLUP_MAXV]; /* the pending delta */
    int in_delta, merged;
} mrow_t;

typedef struct model_s {
    mrow_t *rows;
    size_t n, cap;
} model_t;

static mrow_t *model_get(model_t *m, uint32_t app, umg_rollup_table_t t, const umg_rollup_key_t *k)
{
    for (size_t i = 0; i < m->n; i++) {
        if (m->rows[i].app == app && m->rows[i].t == t && memcmp(&m->rows[i].k, k, sizeof(*k)) == 0) {
            return &m->rows[i];
        }
    }
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 256;
        m->rows = realloc(m->rows, m->cap * sizeof(*m->rows));
        assert_non_null(m->rows);
    }
    mrow_t *r = &m->rows[m->n++];
    memset(r, 0, sizeof(*r));
    r->app = app;
    r->t = t;
    r->k = *k;
    return r;
}

static void model_merge(model_t *m)
{
    for (size_t i = 0; i < m->n; i++) {
        mrow_t *r = &m->rows[i];
        if (r->in_delta) {
            for (size_t j = 0; j < UMG_ROLLUP_MAXV; j++) {
                r->v[j] += r->dv[j];
            }
            memset(r->dv, 0, sizeof(r->dv));
            r->in_delta = 0;
            r->merged = 1;
        }
    }
}

/* Every merged model row is in the tables with its values, and the tables hold nothing else. */
static void check_tables(umg_rollup_t *r, const model_t *m, const uint32_t *apps, size_t napps)
{
    umg_rollup_read_begin(r);
    size_t total = 0;
    for (size_t a = 0; a < napps; a++) {
        for (int t = 0; t < UMG_RT_COUNT; t++) {
            umg_rollup_view_t v;
            umg_rollup_view(r, apps[a], (umg_rollup_table_t)t, &v);
            size_t want = 0;
            int32_t lo = INT32_MAX, hi = INT32_MIN;
            for (size_t i = 0; i < m->n; i++) {
                const mrow_t *mr = &m->rows[i];
                if (!mr->merged || mr->app != apps[a] || mr->t != (umg_rollup_table_t)t) {
                    continue;
                }
                want++;
                lo = UMG_MIN(lo, mr->k.day);
                hi = UMG_MAX(hi, mr->k.day);
                long row = view_find(&v, &mr->k);
                assert_true(row >= 0);
                for (size_t j = 0; j < umg_rollup_nvalues((umg_rollup_table_t)t); j++) {
                    assert_int_equal(v.v[j][row], mr->v[j]);
                }
            }
            assert_int_equal(v.n, want);
            if (want == 0) {
                assert_int_equal(v.min_day, 0);
                assert_int_equal(v.max_day, -1);
            } else {
                assert_int_equal(v.min_day, lo);
                assert_int_equal(v.max_day, hi);
            }
            total += want;
        }
    }
    umg_rollup_read_end(r);
    umg_rollup_stats_t st;
    umg_rollup_stats(r, &st);
    uint64_t rows = 0;
    for (int t = 0; t < UMG_RT_COUNT; t++) {
        rows += st.rows[t];
    }
    assert_int_equal(rows, total);
}

/* ------------------------------------------------------------------ tests */

static void test_nvalues(void **state)
{
    (void)state;
    assert_int_equal(umg_rollup_nvalues(UMG_RT_MAIN), UMG_RM_N);
    assert_int_equal(umg_rollup_nvalues(UMG_RT_REVENUE), 2);
    assert_int_equal(umg_rollup_nvalues(UMG_RT_EVENT), 2);
    assert_int_equal(umg_rollup_nvalues(UMG_RT_COHORT), 1);
    assert_int_equal(umg_rollup_nvalues(UMG_RT_COHORT_DAY), 2);
    assert_int_equal(umg_rollup_nvalues(UMG_RT_COHORT_REV), 2);
    assert_int_equal(umg_rollup_nvalues(UMG_RT_COUNT), 0);
}

static int sat_row(void *ctx, uint32_t app, umg_rollup_table_t t, const umg_rollup_key_t *k, const int64_t *v,
                   size_t nv)
{
    (void)app;
    (void)t;
    (void)k;
    (void)nv;
    *(int64_t *)ctx = v[0];
    return 0;
}

static void test_round_trip(void **state)
{
    (void)state;
    umg_rollup_t *r;
    umg_rollup_delta_t *d;
    assert_int_equal(umg_rollup_new(&r), UMG_OK);
    assert_int_equal(umg_rollup_delta_new(&d), UMG_OK);
    assert_true(umg_rollup_delta_empty(d));

    for (int t = 0; t < UMG_RT_COUNT; t++) {
        size_t nv = umg_rollup_nvalues((umg_rollup_table_t)t);
        for (int day = 0; day < 3; day++) {
            umg_rollup_key_t k = key(20000 + day, 7, 3, (uint32_t)t);
            for (size_t j = 0; j < nv; j++) {
                assert_int_equal(umg_rollup_add(d, 5, (umg_rollup_table_t)t, &k, j, (int64_t)(t * 100 + j + 1)),
                                 UMG_OK);
                assert_int_equal(umg_rollup_add(d, 5, (umg_rollup_table_t)t, &k, j, day), UMG_OK);
            }
        }
    }
    umg_rollup_key_t k0 = key(1, 1, 1, 0);
    assert_int_equal(umg_rollup_add(d, 5, UMG_RT_COHORT, &k0, 1, 1), UMG_EINVAL);
    assert_int_equal(umg_rollup_add(d, 5, UMG_RT_COUNT, &k0, 0, 1), UMG_EINVAL);
    assert_false(umg_rollup_delta_empty(d));
    assert_int_equal(umg_rollup_merge(r, d), UMG_OK);
    assert_int_equal(umg_rollup_merge(r, d), UMG_OK); /* twice: every counter doubles */

    umg_rollup_read_begin(r);
    for (int t = 0; t < UMG_RT_COUNT; t++) {
        umg_rollup_view_t v;
        umg_rollup_view(r, 5, (umg_rollup_table_t)t, &v);
        assert_int_equal(v.n, 3);
        assert_int_equal(v.min_day, 20000);
        assert_int_equal(v.max_day, 20002);
        size_t nv = umg_rollup_nvalues((umg_rollup_table_t)t);
        for (int day = 0; day < 3; day++) {
            umg_rollup_key_t k = key(20000 + day, 7, 3, (uint32_t)t);
            long row = view_find(&v, &k);
            assert_true(row >= 0);
            for (size_t j = 0; j < nv; j++) {
                assert_int_equal(v.v[j][row], 2 * (int64_t)(t * 100 + j + 1 + day));
            }
            for (size_t j = nv; j < UMG_ROLLUP_MAXV; j++) {
                assert_null(v.v[j]);
            }
        }
        umg_rollup_view(r, 6, (umg_rollup_table_t)t, &v); /* an unknown app */
        assert_int_equal(v.n, 0);
        assert_int_equal(v.min_day, 0);
        assert_int_equal(v.max_day, -1);
    }
    umg_rollup_read_end(r);

    umg_rollup_stats_t st;
    umg_rollup_stats(r, &st);
    for (int t = 0; t < UMG_RT_COUNT; t++) {
        assert_int_equal(st.rows[t], 3);
    }
    assert_true(st.bytes > 0);

    umg_rollup_delta_reset(d);
    assert_true(umg_rollup_delta_empty(d));
    assert_int_equal(umg_rollup_merge(r, d), UMG_OK);
    umg_rollup_delta_free(d);
    umg_rollup_free(r);
    umg_rollup_free(NULL);
    umg_rollup_delta_free(NULL);
}

/* Sums of client amounts stop at INT64_MAX / INT64_MIN: in the delta, in the tables, and in the rows the
 * delta reports (its values plus the table's), however many maximal purchases come. */
static void test_saturate(void **state)
{
    (void)state;
    assert_int_equal(umg_add_sat(INT64_MAX - 1, 5), INT64_MAX);
    assert_int_equal(umg_add_sat(INT64_MIN + 1, -5), INT64_MIN);
    assert_int_equal(umg_add_sat(40, -2), 38);
    umg_rollup_t *r;
    umg_rollup_delta_t *d;
    assert_int_equal(umg_rollup_new(&r), UMG_OK);
    assert_int_equal(umg_rollup_delta_new(&d), UMG_OK);
    umg_rollup_key_t k = key(20000, 7, 3, 0);
    const int64_t most = INT64_C(999999999999000000); /* the largest revenue one event may carry, in micros */
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 12; i++) {
            assert_int_equal(umg_rollup_add(d, 5, UMG_RT_REVENUE, &k, 0, most), UMG_OK);
        }
        assert_int_equal(umg_rollup_delta_flush(d), UMG_OK);
        int64_t seen = 0;
        assert_int_equal(umg_rollup_delta_rows(d, sat_row, &seen), UMG_OK);
        assert_int_equal(seen, INT64_MAX);
        seen = 0; /* the delta's rows with the table's values added (umg_rollup_delta_each) */
        assert_int_equal(umg_rollup_delta_each(r, d, sat_row, &seen), UMG_OK);
        assert_int_equal(seen, INT64_MAX);
        assert_int_equal(umg_rollup_merge(r, d), UMG_OK); /* the second round adds to a full table */
        umg_rollup_delta_reset(d);
    }
    umg_rollup_read_begin(r);
    umg_rollup_view_t v;
    umg_rollup_view(r, 5, UMG_RT_REVENUE, &v);
    assert_int_equal(v.n, 1);
    assert_int_equal(v.v[0][0], INT64_MAX);
    umg_rollup_read_end(r);
    umg_rollup_delta_free(d);
    umg_rollup_free(r);
}

/* Keys differing in any one of their 40 bytes (or only in the app or table) are different rows. */
static void test_key_bytes(void **state)
{
    (void)state;
    umg_rollup_t *r;
    umg_rollup_delta_t *d;
    assert_int_equal(umg_rollup_new(&r), UMG_OK);
    assert_int_equal(umg_rollup_delta_new(&d), UMG_OK);
    umg_rollup_key_t base = key(19000, 0x01020304, 0x0a0b0c0d, 9);
    model_t m = {0};
    for (int b = -1; b < (int)sizeof(base); b++) {
        umg_rollup_key_t k = base;
        if (b >= 0) {
            ((unsigned char *)&k)[b] ^= 0x10;
        }
        for (uint32_t app = 1; app <= 2; app++) {
            for (int t = UMG_RT_MAIN; t <= UMG_RT_REVENUE; t++) {
                int64_t by = b + 2 + 1000 * app + 100000 * t;
                assert_int_equal(umg_rollup_add(d, app, (umg_rollup_table_t)t, &k, 1, by), UMG_OK);
                mrow_t *mr = model_get(&m, app, (umg_rollup_table_t)t, &k);
                mr->dv[1] += by;
                mr->in_delta = 1;
            }
        }
    }
    assert_int_equal(m.n, 41 * 4);
    assert_int_equal(umg_rollup_merge(r, d), UMG_OK);
    model_merge(&m);
    uint32_t apps[] = {1, 2, 3};
    check_tables(r, &m, apps, 3);
    free(m.rows);
    umg_rollup_delta_free(d);
    umg_rollup_free(r);
}

typedef struct each_ctx_s {
    model_t *m;
    size_t calls;
} each_ctx_t;

static int each_check(void *ctx, uint32_t app, umg_rollup_table_t t, const umg_rollup_key_t *k, const int64_t *v,
                      size_t nv)
{
    each_ctx_t *c = ctx;
    c->calls++;
    mrow_t *mr = model_get(c->m, app, t, k);
    assert_true(mr->in_delta);
    assert_int_equal(nv, umg_rollup_nvalues(t));
    for (size_t j = 0; j < nv; j++) {
        assert_int_equal(v[j], mr->v[j] + mr->dv[j]);
    }
    return 0;
}

static int each_stop(void *ctx, uint32_t app, umg_rollup_table_t t, const umg_rollup_key_t *k, const int64_t *v,
                     size_t nv)
{
    (void)app, (void)t, (void)k, (void)v, (void)nv;
    return ++*(int *)ctx == 3 ? 42 : 0;
}

/* Random adds in a small key space (so rows repeat) over many batches, against the model. */
static void random_batches(umg_rollup_t *r, umg_rollup_delta_t *d, model_t *m, int batches, int adds)
{
    for (int b = 0; b < batches; b++) {
        umg_rollup_delta_reset(d);
        size_t in_delta = 0;
        for (int i = 0; i < adds; i++) {
            uint32_t app = 1 + (uint32_t)(rnd() % 3);
            umg_rollup_table_t t = (umg_rollup_table_t)(rnd() % UMG_RT_COUNT);
            umg_rollup_key_t k =
                key((int32_t)(rnd() % 12), (uint32_t)(rnd() % 6), (uint32_t)(rnd() % 3), (uint32_t)(rnd() % 2));
            k.x[1] = t == UMG_RT_COHORT_REV ? (uint32_t)(rnd() % 2) : 0;
            size_t vi = rnd() % umg_rollup_nvalues(t);
            int64_t by = (int64_t)(rnd() % 1000) - 300;
            assert_int_equal(umg_rollup_add(d, app, t, &k, vi, by), UMG_OK);
            mrow_t *mr = model_get(m, app, t, &k);
            in_delta += !mr->in_delta;
            mr->in_delta = 1;
            mr->dv[vi] += by;
        }
        each_ctx_t c = {m, 0};
        assert_int_equal(umg_rollup_delta_each(r, d, each_check, &c), UMG_OK);
        assert_int_equal(c.calls, in_delta);
        if (b == 0) {
            int n = 0;
            assert_int_equal(umg_rollup_delta_each(r, d, each_stop, &n), 42);
            assert_int_equal(n, 3);
        }
        assert_int_equal(umg_rollup_merge(r, d), UMG_OK);
        model_merge(m);
    }
}

static void test_random(void **state)
{
    (void)state;
    umg_rollup_t *r;
    umg_rollup_delta_t *d;
    assert_int_equal(umg_rollup_new(&r), UMG_OK);
    assert_int_equal(umg_rollup_delta_new(&d), UMG_OK);
    model_t m = {0};
    uint32_t apps[] = {1, 2, 3};
    for (int round = 0; round < 10; round++) {
        random_batches(r, d, &m, 10, 20 + (int)(rnd() % 800));
        check_tables(r, &m, apps, 3);
    }
    free(m.rows);
    umg_rollup_delta_free(d);
    umg_rollup_free(r);
}

static void test_load(void **state)
{
    (void)state;
    umg_rollup_t *r;
    umg_rollup_delta_t *d;
    assert_int_equal(umg_rollup_new(&r), UMG_OK);
    assert_int_equal(umg_rollup_delta_new(&d), UMG_OK);
    model_t m = {0};
    for (int i = 0; i < 3000; i++) {
        uint32_t app = 1 + (uint32_t)(rnd() % 3);
        umg_rollup_table_t t = (umg_rollup_table_t)(rnd() % UMG_RT_COUNT);
        umg_rollup_key_t k =
            key((int32_t)(rnd() % 12), (uint32_t)(rnd() % 6), (uint32_t)(rnd() % 3), (uint32_t)(rnd() % 2));
        k.x[1] = t == UMG_RT_COHORT_REV ? (uint32_t)(rnd() % 2) : 0;
        int64_t v[UMG_ROLLUP_MAXV];
        for (size_t j = 0; j < UMG_ROLLUP_MAXV; j++) {
            v[j] = (int64_t)(rnd() % 100000);
        }
        assert_int_equal(umg_rollup_load(r, app, t, &k, v), UMG_OK); /* a repeated key replaces the row */
        mrow_t *mr = model_get(&m, app, t, &k);
        memset(mr->v, 0, sizeof(mr->v));
        memcpy(mr->v, v, umg_rollup_nvalues(t) * sizeof(*v));
        mr->merged = 1;
    }
    uint32_t apps[] = {1, 2, 3};
    check_tables(r, &m, apps, 3);
    random_batches(r, d, &m, 20, 300);
    check_tables(r, &m, apps, 3);
    free(m.rows);
    umg_rollup_delta_free(d);
    umg_rollup_free(r);
}

static int row_never(void *ctx, uint32_t app, umg_rollup_table_t t, const umg_rollup_key_t *k, const int64_t *v,
                     size_t nv)
{
    (void)ctx, (void)app, (void)t, (void)k, (void)v, (void)nv;
    fail_msg("a failed delta has no rows to give");
    return 1;
}

/* A merge failing at its n-th allocation, for every n, leaves the tables exactly as they were. */
static void test_merge_enomem(void **state)
{
    (void)state;
    umg_rollup_t *r;
    umg_rollup_delta_t *d;
    assert_int_equal(umg_rollup_new(&r), UMG_OK);
    assert_int_equal(umg_rollup_delta_new(&d), UMG_OK);
    model_t m = {0};
    random_batches(r, d, &m, 3, 200);
    uint32_t apps[] = {1, 2, 3, 4, 9};

    /* A delta with existing rows, many new rows (the columns and indexes grow) and two new apps. */
    umg_rollup_delta_reset(d);
    for (int i = 0; i < 1500; i++) {
        uint32_t app = i % 10 == 0 ? 4 : i % 10 == 1 ? 9 : 1 + (uint32_t)(rnd() % 3);
        umg_rollup_table_t t = (umg_rollup_table_t)(rnd() % UMG_RT_COUNT);
        umg_rollup_key_t k = key((int32_t)(rnd() % 40), (uint32_t)(rnd() % 30), (uint32_t)(rnd() % 3), 0);
        size_t vi = rnd() % umg_rollup_nvalues(t);
        assert_int_equal(umg_rollup_add(d, app, t, &k, vi, 1 + i), UMG_OK);
        mrow_t *mr = model_get(&m, app, t, &k);
        mr->in_delta = 1;
        mr->dv[vi] += 1 + i;
    }
    int ok = 0;
    long fails = 0;
    for (long n = 1; n < 1000 && !ok; n++) {
        umg_alloc_fail_after(n);
        int rc = umg_rollup_merge(r, d);
        umg_alloc_fail_after(0);
        if (rc == UMG_OK) {
            ok = 1;
        } else {
            assert_int_equal(rc, UMG_ENOMEM);
            check_tables(r, &m, apps, 5);
            fails++;
        }
    }
    assert_true(ok);
    assert_true(fails >= 10); /* scratch, two apps, columns and indexes of several tables */
    model_merge(&m);
    check_tables(r, &m, apps, 5);

    /* Adding fails cleanly: once applying the queued adds runs out of memory, the delta says so until it is
     * reset, and nothing of it reaches the tables. */
    umg_rollup_delta_reset(d);
    umg_alloc_fail_after(1);
    umg_rollup_key_t k = key(1, 2, 3, 0);
    assert_int_equal(umg_rollup_add(d, 1, UMG_RT_MAIN, &k, 0, 1), UMG_OK);
    assert_int_equal(umg_rollup_delta_flush(d), UMG_OK); /* memory kept by reset */
    int failed = 0;
    for (int i = 0; i < 100000 && !failed; i++) {
        k.day = 100 + i;
        int rc = umg_rollup_add(d, 1, UMG_RT_MAIN, &k, 0, 1);
        if (rc != UMG_OK) {
            assert_int_equal(rc, UMG_ENOMEM);
            failed = 1;
        }
    }
    assert_true(failed);
    umg_alloc_fail_after(0);
    assert_int_equal(umg_rollup_add(d, 1, UMG_RT_MAIN, &k, 0, 1), UMG_ENOMEM);
    assert_int_equal(umg_rollup_delta_flush(d), UMG_ENOMEM);
    assert_false(umg_rollup_delta_empty(d));
    assert_int_equal(umg_rollup_delta_rows(d, row_never, NULL), UMG_ENOMEM);
    assert_int_equal(umg_rollup_delta_each(r, d, row_never, NULL), UMG_ENOMEM);
    assert_int_equal(umg_rollup_merge(r, d), UMG_ENOMEM);
    check_tables(r, &m, apps, 5);
    umg_rollup_delta_reset(d);
    assert_true(umg_rollup_delta_empty(d));
    k = key(7, 8, 9, 0);
    assert_int_equal(umg_rollup_add(d, 1, UMG_RT_MAIN, &k, 2, 5), UMG_OK);
    assert_int_equal(umg_rollup_merge(r, d), UMG_OK);
    mrow_t *mr = model_get(&m, 1, UMG_RT_MAIN, &k);
    mr->in_delta = 1;
    mr->dv[2] += 5;
    model_merge(&m);
    check_tables(r, &m, apps, 5);
    umg_alloc_fail_after(0);

    free(m.rows);
    umg_rollup_delta_free(d);
    umg_rollup_free(r);
}

/* -------------------------------------------------------------- concurrency */

typedef struct conc_s {
    umg_rollup_t *r;
    _Atomic int stop;
    uint64_t scans, rows_seen;
    int bad;
} conc_t;

static void *reader(void *arg)
{
    conc_t *c = arg;
    size_t last_n = 0;
    while (!atomic_load(&c->stop)) {
        umg_rollup_read_begin(c->r);
        umg_rollup_view_t v;
        umg_rollup_view(c->r, 7, UMG_RT_MAIN, &v);
        if (v.n < last_n) {
            c->bad++;
        }
        last_n = v.n;
        for (size_t i = 0; i < v.n; i++) {
            if (v.v[0][i] != v.v[1][i] || v.v[0][i] <= 0 || v.day[i] < v.min_day || v.day[i] > v.max_day) {
                c->bad++;
            }
        }
        c->rows_seen += v.n;
        umg_rollup_read_end(c->r);
        c->scans++;
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    (void)state;
    conc_t c = {0};
    umg_rollup_delta_t *d;
    assert_int_equal(umg_rollup_new(&c.r), UMG_OK);
    assert_int_equal(umg_rollup_delta_new(&d), UMG_OK);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, reader, &c), 0);
    for (int b = 0; b < 300; b++) {
        umg_rollup_delta_reset(d);
        for (int i = 0; i < 200; i++) {
            umg_rollup_key_t k = key((int32_t)(rnd() % 90), (uint32_t)(rnd() % 200), (uint32_t)(rnd() % 5), 0);
            int64_t by = 1 + (int64_t)(rnd() % 5);
            assert_int_equal(umg_rollup_add(d, 7, UMG_RT_MAIN, &k, 0, by), UMG_OK);
            assert_int_equal(umg_rollup_add(d, 7, UMG_RT_MAIN, &k, 1, by), UMG_OK);
        }
        assert_int_equal(umg_rollup_merge(c.r, d), UMG_OK);
    }
    atomic_store(&c.stop, 1);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(c.bad, 0);
    assert_true(c.scans > 0);
    umg_rollup_delta_free(d);
    umg_rollup_free(c.r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nvalues),      cmocka_unit_test(test_round_trip), cmocka_unit_test(test_saturate),
        cmocka_unit_test(test_key_bytes),    cmocka_unit_test(test_random),     cmocka_unit_test(test_load),
        cmocka_unit_test(test_merge_enomem), cmocka_unit_test(test_concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
