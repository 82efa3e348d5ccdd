/*
 * cache.c - the report worker's copy of recently read cost rows
 * (docs/costs.md, "Reading costs"). Reading 90,000 rows back from meta.db
 * takes tens of milliseconds, more than the rest of an overview; the rows
 * change only when costs are written. So each app's rows of the last period
 * read are kept in memory with the app's cost version (migration 6: triggers
 * on the costs table bump it on every insert, update and delete, whoever
 * writes), and a report whose period lies inside it reads them from there
 * while the version is unchanged. The version is read before the rows: a
 * write in between leaves a copy older than its version says, which the
 * next report finds changed and reads again; never a newer one kept past its
 * version. Each distinct string is kept once and numbered (umg_cost_row_t.sid),
 * so the report engine resolves it once.
 */
#include "cost_int.h"

#define CACHE_APPS 8
#define CACHE_ROWS (1u << 20) /* rows kept over all apps by default; a period with more is read each time */

typedef struct centry_s {
    uint32_t app;
    int used;
    int64_t version;
    int32_t from, to;
    int too_many; /* the period has more rows than the cache keeps: read straight through, not tried again */
    umg_cost_row_t *rows;
    size_t n, cap;
    umg_arena_t arena; /* the strings, each stored once */
    uint32_t *slot;    /* hash of a string -> 1 + index into strs (0: empty) */
    umg_slice_t *strs;
    size_t nstrs, scap, slots;
    uint64_t last_use;
} centry_t;

struct umg_cost_cache_s {
    centry_t e[CACHE_APPS];
    uint64_t tick;
    size_t max_rows;
};

int umg_cost_cache_new(size_t max_rows, umg_cost_cache_t **out)
{
    *out = umg_calloc(1, sizeof(**out));
    if (*out == NULL) {
        return UMG_ENOMEM;
    }
    (*out)->max_rows = max_rows ? max_rows : CACHE_ROWS;
    return UMG_OK;
}

static void entry_clear(centry_t *e)
{
    umg_free(e->rows);
    umg_free(e->slot);
    umg_free(e->strs);
    if (e->used) {
        umg_arena_free(&e->arena);
    }
    memset(e, 0, sizeof(*e));
}

void umg_cost_cache_free(umg_cost_cache_t *k)
{
    for (size_t i = 0; k != NULL && i < CACHE_APPS; i++) {
        entry_clear(&k->e[i]);
    }
    umg_free(k);
}

/* The entry's copy of a string: equal strings share one. */
static int intern(centry_t *e, umg_slice_t s, umg_slice_t *out, uint32_t *sid)
{
    *sid = 0;
    if (s.len == 0) {
        *out = umg_slice("", 0);
        return UMG_OK;
    }
    if ((e->nstrs + 1) * 2 > e->slots) {
        size_t n = e->slots ? e->slots * 2 : 1024;
        uint32_t *t = umg_calloc(n, sizeof(*t));
        if (t == NULL) {
            return UMG_ENOMEM;
        }
        for (size_t i = 0; i < e->nstrs; i++) {
            size_t h = (size_t)umg_hash64(e->strs[i].ptr, e->strs[i].len, 0) & (n - 1);
            while (t[h] != 0) {
                h = (h + 1) & (n - 1);
            }
            t[h] = (uint32_t)i + 1;
        }
        umg_free(e->slot);
        e->slot = t;
        e->slots = n;
    }
    size_t h = (size_t)umg_hash64(s.ptr, s.len, 0) & (e->slots - 1);
    for (; e->slot[h] != 0; h = (h + 1) & (e->slots - 1)) {
        umg_slice_t x = e->strs[e->slot[h] - 1];
        if (x.len == s.len && memcmp(x.ptr, s.ptr, s.len) == 0) {
            *out = x;
            *sid = e->slot[h];
            return UMG_OK;
        }
    }
    if (e->nstrs == e->scap) {
        size_t n = e->scap ? e->scap * 2 : 256;
        umg_slice_t *ns = umg_realloc(e->strs, n * sizeof(*ns));
        if (ns == NULL) {
            return UMG_ENOMEM;
        }
        e->strs = ns;
        e->scap = n;
    }
    char *p = umg_arena_alloc(&e->arena, s.len);
    if (p == NULL) {
        return UMG_ENOMEM;
    }
    memcpy(p, s.ptr, s.len);
    e->strs[e->nstrs++] = umg_slice(p, s.len);
    e->slot[h] = (uint32_t)e->nstrs;
    *out = e->strs[e->nstrs - 1];
    *sid = (uint32_t)e->nstrs;
    return UMG_OK;
}

typedef struct fill_s {
    centry_t *e;
    size_t max_rows;
} fill_t;

static int keep_row(void *ctx, const umg_cost_row_t *r)
{
    const fill_t *f = ctx;
    centry_t *e = f->e;
    if (e->n == f->max_rows) {
        return UMG_EFULL;
    }
    if (e->n == e->cap) {
        size_t n = e->cap ? e->cap * 2 : 1024;
        umg_cost_row_t *nr = umg_realloc(e->rows, n * sizeof(*nr));
        if (nr == NULL) {
            return UMG_ENOMEM;
        }
        e->rows = nr;
        e->cap = n;
    }
    umg_cost_row_t *o = &e->rows[e->n];
    *o = *r;
    int rc = intern(e, r->source, &o->source, &o->sid[0]);
    rc = rc ? rc : intern(e, r->campaign, &o->campaign, &o->sid[1]);
    rc = rc ? rc : intern(e, r->adset, &o->adset, &o->sid[2]);
    rc = rc ? rc : intern(e, r->ad, &o->ad, &o->sid[3]);
    rc = rc ? rc : intern(e, r->country, &o->country, &o->sid[4]);
    e->n += rc == UMG_OK;
    return rc;
}

/* An empty entry for the app's rows of a period at a version. */
static void entry_start(centry_t *e, uint32_t app, int64_t version, int32_t from, int32_t to, uint64_t tick)
{
    entry_clear(e);
    *e = (centry_t){.app = app, .used = 1, .version = version, .from = from, .to = to, .last_use = tick};
    umg_arena_init(&e->arena, 65536);
}

/* Rows held by every entry but skip. */
static size_t rows_held(const umg_cost_cache_t *k, const centry_t *skip)
{
    size_t n = 0;
    for (size_t i = 0; i < CACHE_APPS; i++) {
        n += &k->e[i] != skip && k->e[i].used ? k->e[i].n : 0;
    }
    return n;
}

/* The entry the app's rows go into: its own, a free one, or the least recently used. */
static centry_t *entry_for(umg_cost_cache_t *k, uint32_t app)
{
    centry_t *best = NULL;
    for (size_t i = 0; i < CACHE_APPS; i++) {
        centry_t *e = &k->e[i];
        if (e->used && e->app == app) {
            return e;
        }
        if (best == NULL || (best->used && (!e->used || e->last_use < best->last_use))) {
            best = e;
        }
    }
    return best;
}

static int serve(centry_t *e, int32_t from, int32_t to, int (*fn)(void *ctx, const umg_cost_row_t *r), void *ctx)
{
    for (size_t i = 0; i < e->n; i++) {
        const umg_cost_row_t *r = &e->rows[i];
        if (r->day < from || r->day > to) {
            continue;
        }
        int rc = fn(ctx, r);
        if (rc != 0) {
            return rc;
        }
    }
    return UMG_OK;
}

int umg_cost_cache_each(umg_cost_cache_t *k, umg_cost_t *c, uint32_t app, int32_t from_day, int32_t to_day,
                        int (*fn)(void *ctx, const umg_cost_row_t *r), void *ctx)
{
    int64_t version;
    int rc = umg_cost_version(c, app, &version);
    if (rc != UMG_OK) {
        return rc;
    }
    centry_t *e = entry_for(k, app);
    k->tick++;
    if (e->used && e->app == app && e->version == version && e->from <= from_day && to_day <= e->to) {
        e->last_use = k->tick;
        return e->too_many ? umg_cost_each(c, app, from_day, to_day, fn, ctx) : serve(e, from_day, to_day, fn, ctx);
    }
    entry_start(e, app, version, from_day, to_day, k->tick);
    fill_t fill = {e, k->max_rows};
    rc = umg_cost_each(c, app, from_day, to_day, keep_row, &fill);
    if (rc == UMG_OK) {
        /* room for it: the least recently used others go */
        while (rows_held(k, e) + e->n > k->max_rows) {
            centry_t *old = NULL;
            for (size_t i = 0; i < CACHE_APPS; i++) {
                centry_t *x = &k->e[i];
                old = x != e && x->used && (old == NULL || x->last_use < old->last_use) ? x : old;
            }
            entry_clear(old);
        }
        return serve(e, from_day, to_day, fn, ctx);
    }
    if (rc == UMG_EFULL) { /* too many to keep: noted, so the reports of this period read straight through */
        entry_start(e, app, version, from_day, to_day, k->tick);
        e->too_many = 1;
    } else {
        entry_clear(e);
    }
    if (rc == UMG_EFULL || rc == UMG_ENOMEM) {
        return umg_cost_each(c, app, from_day, to_day, fn, ctx);
    }
    return rc;
}
