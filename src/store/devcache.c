/*
 * devcache.c - the store writer's device cache (umg_devcache.h).
 *
 * Records and identifiers each in sets of four ways, a set chosen by the
 * key's high bits (keys are already hashes). In a set, a way is replaced
 * clock-wise: a clean way not used since the hand last passed it goes
 * first. Dirty ways are listed as they become dirty, so a flush touches only
 * them.
 */
#include "umg_devcache.h"

#include <stdlib.h>
#include <string.h>

#define WAYS 4
#define ALIAS_PER_RECORD 2 /* identifier ways per record way: devices often have two ids, and misses are kept */

enum { F_DIRTY = 1, F_USED = 2 };

typedef struct alias_s {
    uint64_t alias; /* 0: empty */
    uint64_t key;   /* 0: reaches no device */
} alias_t;

typedef struct order_s {
    uint64_t key;
    size_t way;
} order_t;

struct umg_devcache_s {
    size_t nsets, nasets, rec_size;
    uint64_t *keys; /* nsets * WAYS; 0: empty */
    uint8_t *flags;
    uint8_t *hand; /* per set: the way the clock looks at first */
    unsigned char *recs;
    alias_t *aliases; /* nasets * WAYS */
    uint8_t *ahand;
    size_t *dirty; /* ways that are dirty, in the order they became so */
    size_t ndirty;
    order_t *order; /* the flush's sort */
    umg_devcache_stats_t st;
};

static inline size_t set_of(uint64_t key, size_t nsets)
{
    return (size_t)(((unsigned __int128)(key * UINT64_C(0x9e3779b97f4a7c15)) * nsets) >> 64);
}

int umg_devcache_new(size_t bytes, size_t rec_size, umg_devcache_t **out)
{
    *out = NULL;
    size_t per_way =
        rec_size + sizeof(uint64_t) + 1 + sizeof(size_t) + sizeof(order_t) + ALIAS_PER_RECORD * sizeof(alias_t) + 1;
    size_t nsets = bytes / per_way / WAYS;
    if (rec_size == 0 || nsets < 64 / WAYS) {
        return UMG_OK;
    }
    umg_devcache_t *c = umg_calloc(1, sizeof(*c));
    if (c == NULL) {
        return UMG_ENOMEM;
    }
    size_t ways = nsets * WAYS;
    c->nsets = nsets;
    c->nasets = nsets * ALIAS_PER_RECORD;
    c->rec_size = rec_size;
    c->keys = umg_calloc(ways, sizeof(uint64_t));
    c->flags = umg_calloc(ways, 1);
    c->hand = umg_calloc(nsets, 1);
    c->recs = umg_calloc(ways, rec_size);
    c->aliases = umg_calloc(c->nasets * WAYS, sizeof(alias_t));
    c->ahand = umg_calloc(c->nasets, 1);
    c->dirty = umg_calloc(ways, sizeof(size_t));
    c->order = umg_calloc(ways, sizeof(order_t));
    if (c->keys == NULL || c->flags == NULL || c->hand == NULL || c->recs == NULL || c->aliases == NULL ||
        c->ahand == NULL || c->dirty == NULL || c->order == NULL) {
        umg_devcache_free(c);
        return UMG_ENOMEM;
    }
    c->st.capacity = ways;
    *out = c;
    return UMG_OK;
}

void umg_devcache_free(umg_devcache_t *c)
{
    if (c == NULL) {
        return;
    }
    umg_free(c->keys);
    umg_free(c->flags);
    umg_free(c->hand);
    umg_free(c->recs);
    umg_free(c->aliases);
    umg_free(c->ahand);
    umg_free(c->dirty);
    umg_free(c->order);
    umg_free(c);
}

static size_t find_way(const umg_devcache_t *c, size_t base, uint64_t key)
{
    for (size_t w = base; w < base + WAYS; w++) {
        if (c->keys[w] == key) {
            return w;
        }
    }
    return SIZE_MAX;
}

const void *umg_devcache_get(umg_devcache_t *c, uint64_t key)
{
    size_t w = find_way(c, set_of(key, c->nsets) * WAYS, key);
    if (w == SIZE_MAX) {
        c->st.misses++;
        return NULL;
    }
    c->st.hits++;
    c->flags[w] |= F_USED;
    return c->recs + w * c->rec_size;
}

/* The way a new record of set s takes: an empty one, else the clock's first clean way not used since it last
 * passed (clearing the use of the clean ways it passes), else its first clean one. SIZE_MAX: all are dirty. */
static size_t victim(umg_devcache_t *c, size_t s)
{
    size_t base = s * WAYS, fallback = SIZE_MAX;
    for (size_t i = 0; i < WAYS; i++) {
        if (c->keys[base + i] == 0) {
            return base + i;
        }
    }
    for (size_t i = 0; i < WAYS; i++) {
        size_t w = base + (c->hand[s] + i) % WAYS;
        if (c->flags[w] & F_DIRTY) {
            continue;
        }
        if (!(c->flags[w] & F_USED)) {
            c->hand[s] = (uint8_t)((w - base + 1) % WAYS);
            return w;
        }
        c->flags[w] &= (uint8_t)~F_USED;
        fallback = fallback == SIZE_MAX ? w : fallback;
    }
    if (fallback != SIZE_MAX) {
        c->hand[s] = (uint8_t)((fallback - base + 1) % WAYS);
    }
    return fallback;
}

int umg_devcache_put(umg_devcache_t *c, uint64_t key, const void *rec, int dirty)
{
    size_t s = set_of(key, c->nsets);
    size_t w = find_way(c, s * WAYS, key);
    if (w != SIZE_MAX && !dirty && (c->flags[w] & F_DIRTY)) {
        return 1; /* the cached record is newer than the store's */
    }
    if (w == SIZE_MAX) {
        w = victim(c, s);
        if (w == SIZE_MAX) {
            c->st.written_through += dirty != 0;
            return 0;
        }
        c->st.records += c->keys[w] == 0;
        c->keys[w] = key;
        c->flags[w] = 0;
    }
    memcpy(c->recs + w * c->rec_size, rec, c->rec_size);
    c->flags[w] |= F_USED;
    if (dirty && !(c->flags[w] & F_DIRTY)) {
        c->flags[w] |= F_DIRTY;
        c->dirty[c->ndirty++] = w; /* at most one entry per way: the list cannot overflow */
    }
    return 1;
}

int umg_devcache_alias_get(umg_devcache_t *c, uint64_t alias, uint64_t *key)
{
    alias_t *a = c->aliases + set_of(alias, c->nasets) * WAYS;
    for (size_t i = 0; i < WAYS; i++) {
        if (a[i].alias == alias) {
            *key = a[i].key;
            c->st.alias_hits++;
            return 1;
        }
    }
    c->st.alias_misses++;
    return 0;
}

void umg_devcache_alias_put(umg_devcache_t *c, uint64_t alias, uint64_t key)
{
    size_t s = set_of(alias, c->nasets);
    alias_t *a = c->aliases + s * WAYS;
    size_t w = WAYS;
    for (size_t i = 0; i < WAYS && w == WAYS; i++) {
        if (a[i].alias == alias || a[i].alias == 0) {
            w = i;
        }
    }
    if (w == WAYS) { /* full: round robin */
        w = c->ahand[s];
        c->ahand[s] = (uint8_t)((w + 1) % WAYS);
    }
    a[w].alias = alias;
    a[w].key = key;
}

static int order_cmp(const void *a, const void *b)
{
    uint64_t x = ((const order_t *)a)->key, y = ((const order_t *)b)->key;
    return (x > y) - (x < y);
}

int umg_devcache_flush(umg_devcache_t *c, int (*fn)(void *ctx, uint64_t key, const void *rec), void *ctx)
{
    for (size_t i = 0; i < c->ndirty; i++) {
        c->order[i] = (order_t){c->keys[c->dirty[i]], c->dirty[i]};
    }
    qsort(c->order, c->ndirty, sizeof(order_t), order_cmp);
    for (size_t i = 0; i < c->ndirty; i++) {
        int rc = fn(ctx, c->order[i].key, c->recs + c->order[i].way * c->rec_size);
        if (rc != 0) {
            return rc;
        }
    }
    for (size_t i = 0; i < c->ndirty; i++) {
        c->flags[c->dirty[i]] &= (uint8_t)~F_DIRTY;
    }
    c->ndirty = 0;
    return 0;
}

void umg_devcache_clear(umg_devcache_t *c)
{
    size_t ways = c->nsets * WAYS;
    memset(c->keys, 0, ways * sizeof(uint64_t));
    memset(c->flags, 0, ways);
    memset(c->aliases, 0, c->nasets * WAYS * sizeof(alias_t));
    c->ndirty = 0;
    c->st.records = 0;
}

void umg_devcache_stats(const umg_devcache_t *c, umg_devcache_stats_t *out)
{
    *out = c->st;
}
