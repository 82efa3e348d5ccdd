/*
 * test_devcache.c - the store writer's device cache (src/store/devcache.c)
 * against a model of the transaction it sits in front of.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "umg_devcache.h"

typedef struct rec_s {
    uint64_t key, version;
    char pad[40];
} rec_t;

#define KEYS 400

/* The model: what the transaction holds in the store, what it should read, and what the last commit left. */
typedef struct model_s {
    uint64_t store[KEYS], view[KEYS], committed[KEYS];
    uint64_t last_flushed;
    size_t flushed;
} model_t;

static int flush_one(void *ctx, uint64_t key, const void *rec)
{
    model_t *m = ctx;
    const rec_t *r = rec;
    assert_true(key > m->last_flushed); /* ascending, each once */
    m->last_flushed = key;
    assert_int_equal(r->key, key);
    m->store[key] = r->version;
    m->flushed++;
    return 0;
}

/* A read as the store does it: the cache, else the store (then cached clean). Either must be what was last
 * written. */
static void model_read(umg_devcache_t *c, model_t *m, uint64_t key)
{
    const rec_t *r = umg_devcache_get(c, key);
    if (r != NULL) {
        assert_int_equal(r->key, key);
        assert_int_equal(r->version, m->view[key]);
        return;
    }
    assert_int_equal(m->store[key], m->view[key]); /* a dirty record was never dropped */
    if (m->store[key] != 0) {
        rec_t x = {.key = key, .version = m->store[key]};
        umg_devcache_put(c, key, &x, 0);
    }
}

static void test_model(void **state)
{
    (void)state;
    umg_devcache_t *c;
    assert_int_equal(umg_devcache_new(12 << 10, sizeof(rec_t), &c), UMG_OK); /* about 100 records */
    assert_non_null(c);
    model_t *m = calloc(1, sizeof(*m));
    uint64_t rng = 42, version = 0, alias_model[KEYS] = {0};
    size_t through = 0;
    for (int step = 0; step < 400000; step++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t r = rng >> 33, key = 1 + (r >> 8) % (KEYS - 1);
        switch (r % 16) {
        case 0: /* commit */
            m->last_flushed = 0;
            assert_int_equal(umg_devcache_flush(c, flush_one, m), 0);
            assert_memory_equal(m->store, m->view, sizeof(m->store));
            memcpy(m->committed, m->store, sizeof(m->store));
            break;
        case 1: /* abort, now and then */
            if (r % 7 == 0) {
                umg_devcache_clear(c);
                memcpy(m->store, m->committed, sizeof(m->store));
                memcpy(m->view, m->committed, sizeof(m->store));
                memset(alias_model, 0, sizeof(alias_model));
            }
            break;
        case 2:
        case 3: { /* an identifier: what the cache says must be what was last said */
            uint64_t k;
            if (umg_devcache_alias_get(c, key, &k)) {
                assert_int_equal(k, alias_model[key] - 1);
            }
            if (r % 2 == 0) {
                alias_model[key] = 1 + (r >> 20) % 50;
                umg_devcache_alias_put(c, key, alias_model[key] - 1);
            }
            break;
        }
        case 4:
        case 5:
        case 6:
        case 7:
        case 8: { /* a write, as a device put after its read */
            model_read(c, m, key);
            rec_t x = {.key = key, .version = ++version};
            if (!umg_devcache_put(c, key, &x, 1)) {
                m->store[key] = version; /* written through */
                through++;
            }
            m->view[key] = version;
            break;
        }
        default: model_read(c, m, key); break;
        }
    }
    umg_devcache_stats_t s;
    umg_devcache_stats(c, &s);
    assert_true(s.hits > 0 && s.misses > 0 && s.alias_hits > 0);
    assert_int_equal(s.written_through, through);
    assert_true(s.records <= s.capacity);
    free(m);
    umg_devcache_free(c);
}

/* More dirty records than ways: the rest are written through, and every one flushed or written once. */
static void test_full_of_dirty(void **state)
{
    (void)state;
    umg_devcache_t *c;
    assert_int_equal(umg_devcache_new(8 << 10, sizeof(rec_t), &c), UMG_OK);
    umg_devcache_stats_t s;
    umg_devcache_stats(c, &s);
    size_t cached = 0;
    for (uint64_t k = 1; k < KEYS; k++) {
        rec_t x = {.key = k, .version = 1};
        cached += (size_t)umg_devcache_put(c, k, &x, 1);
    }
    assert_int_equal(cached, s.capacity); /* every way taken, none evicted */
    model_t *m = calloc(1, sizeof(*m));
    assert_int_equal(umg_devcache_flush(c, flush_one, m), 0);
    assert_int_equal(m->flushed, cached);
    /* Clean now: new records take every way again. */
    cached = 0;
    for (uint64_t k = KEYS; k < 2 * KEYS; k++) {
        rec_t x = {.key = k, .version = 2};
        cached += (size_t)umg_devcache_put(c, k, &x, 1);
    }
    assert_int_equal(cached, s.capacity);
    free(m);
    umg_devcache_free(c);
    /* Too little memory: no cache. */
    assert_int_equal(umg_devcache_new(1024, sizeof(rec_t), &c), UMG_OK);
    assert_null(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model),
        cmocka_unit_test(test_full_of_dirty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
