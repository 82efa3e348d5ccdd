/*
 * dedupe.c - the (app, event_id) set behind "retries never double-count".
 *
 * Slots hold the 128-bit id, the app and the minute the id was seen. App 0
 * marks an empty slot. Linear probing at a load of at most 5/8 keeps a miss
 * (the common case: most events are new) to about four slots, two cache
 * lines, which the writer prefetches a few records ahead; deletion shifts the following cluster back so no tombstones
 * build up. Each insert advances a sweep cursor over two slots and drops what is past the horizon, which bounds the
 * work per event and needs no timer.
 *
 * At max_ids the set forgets its oldest ids early, one for each new one, with no pause: a histogram of the live ids
 * by age (NB buckets of w minutes, one minute each for a horizon up to 22 days) gives the cut below which the oldest
 * tenth lie, and a second cursor walks the table from where it stopped, dropping the first id under the cut it meets
 * for each insert. The ids under the cut are spread evenly over the table by their hash, so that takes about sixteen
 * slots per insert; when the cursor has been once round the table, the cut is taken again.
 *
 * Growing: the table twice the size is made ahead of need, on a helper thread, once the load passes 9/16, and each of
 * its pages written once there, so the page faults happen off the writer (zeroing, and on a virtual machine a fault
 * on the host for each first touch: about 2 ms per 2 MiB here, so hundreds of milliseconds for a large table). At 5/8
 * the writer takes it and moves the old slots over a few per insert; if it is not ready yet, the writer goes on in the
 * current table and waits for it only at 3/4 (a probe there is still about eight slots). If the load falls back to 1/2
 * (expiry) the table made ahead is dropped again.
 */
#include "umg_dedupe.h"

#include <stdlib.h>

#define NB 65536 /* buckets of the ids' ages (hist): minutes for a horizon up to 22 days */

typedef struct slot_s {
    uint64_t lo, hi;
    uint32_t app;
    uint32_t minute; /* minutes since the epoch when the id was seen */
} slot_t;

_Static_assert(sizeof(slot_t) == UMG_DEDUPE_SLOT_BYTES, "slot size");

struct umg_dedupe_s {
    slot_t *slots;
    uint64_t mask; /* capacity - 1 */
    uint64_t count;
    uint64_t max_ids;
    uint32_t horizon_min;
    uint64_t cursor;
    uint64_t evicted;
    uint32_t slice; /* where the next cut starts taking ids in its edge bucket, in 1024ths of hash space */
    /* Live ids by age: bucket b (minute / w) at hist[b % NB] for b in [hbase, hbase + NB), older ones in hold. */
    uint32_t *hist; /* NB of them */
    uint64_t hold;
    uint64_t hbase;
    uint32_t w;
    /* Early eviction at max_ids: ids in buckets below cut_b, or in cut_b within thr 1024ths of hash space from
     * slice, are dropped by the eviction cursor; ev_left slots remain before the cut is taken again. */
    int evicting;
    uint64_t cut_b;
    uint32_t thr;
    uint64_t ev_cur, ev_left;
    /* While growing: the previous table, read-only, moved over a few slots per insert. */
    slot_t *old;
    uint64_t old_mask;
    uint64_t mig; /* next old slot to move */
    /* The next table, made ahead on the helper (prepare): next is the job's until umg_helper_wait returned. */
    umg_helper_t *helper; /* made on first use */
    int no_helper;        /* it could not be made: tables are made by the writer */
    int prep_busy;
    _Atomic int prep_done; /* the job has ended: taking next does not wait */
    slot_t *next;
    uint64_t next_cap;
};

static umg_metric_t m_evicted = UMG_COUNTER(
    "umg_dedupe_evicted_total", "Event ids dropped from the dedupe set before the horizon because it was full", NULL);

#define MIN_CAP 1024
#define PREP_MIN_CAP 32768 /* tables of 768 KiB and more are made ahead; smaller ones fault in within a millisecond */
#define PAGE 4096
/* A zeroed slot array: lookups land at random slots, so large ones ask for huge pages (umg_calloc_huge). */
static slot_t *slots_new(uint64_t n)
{
    return umg_calloc_huge(n, sizeof(slot_t));
}

static inline uint64_t slot_hash(uint32_t app, uint64_t lo, uint64_t hi)
{
    /* Ids are random (v4) or client-chosen; mix all of them anyway. */
    uint64_t h = lo * 0x9E3779B97F4A7C15ull ^ hi;
    h ^= (uint64_t)app * 0xC2B2AE3D27D4EB4Full;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 32;
    return h;
}

static inline void id_split(const umg_uuid_t *id, uint64_t *lo, uint64_t *hi)
{
    memcpy(lo, id->b, 8);
    memcpy(hi, id->b + 8, 8);
}

int umg_dedupe_new(uint64_t max_ids, int64_t horizon_us, umg_dedupe_t **out)
{
    umg_dedupe_t *d = umg_calloc(1, sizeof(*d));
    if (d == NULL) {
        return UMG_ENOMEM;
    }
    d->slots = slots_new(MIN_CAP);
    d->hist = umg_calloc(NB, sizeof(*d->hist));
    if (d->slots == NULL || d->hist == NULL) {
        umg_free(d->slots);
        umg_free(d->hist);
        umg_free(d);
        return UMG_ENOMEM;
    }
    umg_metric_register(&m_evicted);
    d->mask = MIN_CAP - 1;
    d->max_ids = max_ids < 16 ? 16 : max_ids;
    d->horizon_min = (uint32_t)(horizon_us / 60000000 + 1);
    d->w = d->horizon_min / (NB / 2) + 1; /* the horizon in half the buckets: room for ids kept past it */
    *out = d;
    return UMG_OK;
}

void umg_dedupe_free(umg_dedupe_t *d)
{
    if (d == NULL) {
        return;
    }
    umg_helper_free(d->helper); /* waits for a table being made */
    umg_free(d->next);
    umg_free(d->slots);
    umg_free(d->old);
    umg_free(d->hist);
    umg_free(d);
}

static inline int expired(const umg_dedupe_t *d, const slot_t *s, uint32_t now_min)
{
    return s->minute + d->horizon_min < now_min;
}

/* An id seen at minute m joins (by = 1) or leaves (by = -1) the histogram. */
static void hist_add(umg_dedupe_t *d, uint32_t m, int by)
{
    uint64_t b = m / d->w;
    if (b >= d->hbase + NB) { /* newer than the window: slide it, folding what falls out into hold */
        uint64_t nbase = b - NB + 1;
        for (uint64_t k = d->hbase; k < nbase && k < d->hbase + NB; k++) {
            d->hold += d->hist[k % NB];
            d->hist[k % NB] = 0;
        }
        d->hbase = nbase;
    }
    if (b < d->hbase) {
        d->hold += (uint64_t)(int64_t)by;
    } else {
        d->hist[b % NB] += (uint32_t)by;
    }
}

/* Removes slot i and shifts the rest of its cluster back (Knuth's algorithm R). */
static void delete_at(umg_dedupe_t *d, uint64_t i)
{
    hist_add(d, d->slots[i].minute, -1);
    uint64_t j = i;
    for (;;) {
        j = (j + 1) & d->mask;
        slot_t *sj = &d->slots[j];
        if (sj->app == 0) {
            break;
        }
        uint64_t home = slot_hash(sj->app, sj->lo, sj->hi) & d->mask;
        /* Move sj into the hole unless its home lies cyclically in (i, j]. */
        int stays = (i <= j) ? (i < home && home <= j) : (i < home || home <= j);
        if (!stays) {
            d->slots[i] = *sj;
            i = j;
        }
    }
    memset(&d->slots[i], 0, sizeof(slot_t));
    d->count--;
}

static slot_t *find_in(slot_t *slots, uint64_t mask, uint32_t app, uint64_t lo, uint64_t hi, uint64_t *idx)
{
    uint64_t i = slot_hash(app, lo, hi) & mask;
    for (;;) {
        slot_t *s = &slots[i];
        if (s->app == 0) {
            *idx = i;
            return NULL;
        }
        if (s->lo == lo && s->hi == hi && s->app == app) {
            *idx = i;
            return s;
        }
        i = (i + 1) & mask;
    }
}

static slot_t *find(const umg_dedupe_t *d, uint32_t app, uint64_t lo, uint64_t hi, uint64_t *idx)
{
    return find_in(d->slots, d->mask, app, lo, hi, idx);
}

/*
 * Moves up to n slots of the previous table into the current one. Growing
 * this way, a few slots per insert, keeps the writer from stalling for a
 * whole rehash (tens of milliseconds at millions of ids) in the middle of
 * answering requests. The old table stays intact until the move ends, so
 * lookups in it still follow their probe chains.
 */
static void migrate(umg_dedupe_t *d, uint64_t n)
{
    while (d->old != NULL && n-- > 0) {
        const slot_t *o = &d->old[d->mig];
        if (o->app != 0) {
            uint64_t i;
            if (find(d, o->app, o->lo, o->hi, &i) == NULL) {
                d->slots[i] = *o;
            } else {
                d->count--; /* a newer copy was inserted meanwhile */
                hist_add(d, o->minute, -1);
            }
        }
        if (++d->mig > d->old_mask) {
            umg_free(d->old);
            d->old = NULL;
        }
    }
}

/* On the helper: the next table, every page written once so that none faults in on the writer. */
static void prepare_job(void *arg)
{
    umg_dedupe_t *d = arg;
    slot_t *s = slots_new(d->next_cap);
    if (s != NULL) {
        volatile char *b = (volatile char *)s;
        for (uint64_t off = 0; off < d->next_cap * sizeof(slot_t); off += PAGE) {
            b[off] = 0;
        }
    }
    d->next = s;
    atomic_store_explicit(&d->prep_done, 1, memory_order_release);
}

/* Starts making the table the next growth needs, when the load has passed 9/16 and that growth can still come. */
static void prepare(umg_dedupe_t *d)
{
    uint64_t cap = d->mask + 1;
    if (d->prep_busy || d->next != NULL || d->no_helper || cap * 2 < PREP_MIN_CAP || d->max_ids * 8 <= cap * 5) {
        return;
    }
    if (d->helper == NULL && umg_helper_new(&d->helper) != UMG_OK) {
        d->helper = NULL;
        d->no_helper = 1;
        return; /* grow makes it then */
    }
    d->next_cap = cap * 2;
    atomic_store_explicit(&d->prep_done, 0, memory_order_relaxed);
    d->prep_busy = umg_helper_run(d->helper, prepare_job, d) == UMG_OK;
}

/* The table made ahead if it has ncap slots (waiting for it if it is still being made), else NULL; either way
 * none is kept. */
static slot_t *take_prepared(umg_dedupe_t *d, uint64_t ncap)
{
    if (d->prep_busy) {
        umg_helper_wait(d->helper);
        d->prep_busy = 0;
    }
    slot_t *s = d->next;
    d->next = NULL;
    if (s != NULL && d->next_cap != ncap) {
        umg_free(s);
        s = NULL;
    }
    return s;
}

static int rehash(umg_dedupe_t *d, uint64_t ncap)
{
    migrate(d, UINT64_MAX);
    slot_t *ns = take_prepared(d, ncap);
    ns = ns != NULL ? ns : slots_new(ncap);
    if (ns == NULL) {
        return UMG_ENOMEM;
    }
    slot_t *old = d->slots;
    uint64_t ocap = d->mask + 1;
    d->slots = ns;
    d->mask = ncap - 1;
    for (uint64_t k = 0; k < ocap; k++) {
        if (old[k].app != 0) {
            uint64_t i = slot_hash(old[k].app, old[k].lo, old[k].hi) & d->mask;
            while (ns[i].app != 0) {
                i = (i + 1) & d->mask;
            }
            ns[i] = old[k];
        }
    }
    umg_free(old);
    d->cursor = 0;
    return UMG_OK;
}

/* Starts moving to a table twice the size (finishing any earlier move first). */
static int grow(umg_dedupe_t *d)
{
    migrate(d, UINT64_MAX);
    uint64_t ncap = (d->mask + 1) * 2;
    slot_t *ns = take_prepared(d, ncap);
    ns = ns != NULL ? ns : slots_new(ncap);
    if (ns == NULL) {
        return UMG_ENOMEM;
    }
    d->old = d->slots;
    d->old_mask = d->mask;
    d->mig = 0;
    d->slots = ns;
    d->mask = ncap - 1;
    d->cursor = 0;
    return UMG_OK;
}

int umg_dedupe_reserve(umg_dedupe_t *d, uint64_t n)
{
    n = UMG_MIN(n, d->max_ids);
    uint64_t cap = d->mask + 1;
    while (n * 8 > cap * 5) {
        cap *= 2;
    }
    return cap > d->mask + 1 ? rehash(d, cap) : UMG_OK;
}

static void sweep_step(umg_dedupe_t *d, uint32_t now_min, int n)
{
    while (n-- > 0) {
        uint64_t i = d->cursor & d->mask;
        if (d->slots[i].app != 0 && expired(d, &d->slots[i], now_min)) {
            delete_at(d, i); /* re-examine i next time: a neighbour may have moved in */
        } else {
            d->cursor++;
        }
    }
}

/* Whether slot s is under the current cut (evict_step). */
static inline int under_cut(const umg_dedupe_t *d, const slot_t *s)
{
    uint64_t b = s->minute / d->w;
    return b < d->cut_b || (b == d->cut_b && (((slot_hash(s->app, s->lo, s->hi) >> 54) - d->slice) & 1023) < d->thr);
}

/*
 * Takes the cut under which the oldest tenth of the ids lie, from the histogram: whole buckets from the oldest,
 * and in the bucket where the tenth is reached, about the share still wanted, as slices of hash space (the top 10
 * bits of the ids' hashes), each cut's slice starting where the last one's ended. Taking the ids of one bucket in
 * slot order instead would empty the front of the table and pack the ids kept into one cluster at its back.
 */
static void evict_cut(umg_dedupe_t *d)
{
    if (d->evicting) {
        d->slice = (d->slice + d->thr) & 1023;
    }
    uint64_t want = d->count / 10 + 1, acc = d->hold, b = d->hbase;
    while (b < d->hbase + NB - 1 && acc + d->hist[b % NB] < want) {
        acc += d->hist[b++ % NB];
    }
    uint64_t in = d->hist[b % NB];
    d->cut_b = acc >= want ? d->hbase : b;
    d->thr = acc >= want ? 0 : in == 0 ? 1024 : (uint32_t)UMG_MIN(1024, ((want - acc) * 1024 + in - 1) / in);
    d->ev_left = d->mask + 1;
    if (!d->evicting) {
        d->evicting = 1;
        umg_log(UMG_LOG_WARN, "dedupe",
                "dedupe set full at %llu ids: forgetting its oldest ids early, from those seen before minute "
                "%llu since 1970; raise dedupe.max_ids to keep the whole horizon",
                (unsigned long long)d->max_ids, (unsigned long long)((d->cut_b + 1) * d->w));
    }
}

/* The set is at max_ids: the eviction cursor moves on until it has dropped one id under the cut (at most two
 * rounds of the table, taking the cut again after each: only when no id at all is under a fresh cut). */
static void evict_step(umg_dedupe_t *d)
{
    if (!d->evicting) {
        migrate(d, UINT64_MAX); /* one table from here on: at max_ids it never grows again */
        evict_cut(d);
    }
    uint64_t before = d->count;
    for (uint64_t guard = 0; d->count == before && guard < 2 * (d->mask + 1) + 2; guard++) {
        if (d->ev_left == 0) {
            evict_cut(d);
        }
        uint64_t i = d->ev_cur & d->mask;
        if (d->slots[i].app != 0 && under_cut(d, &d->slots[i])) {
            delete_at(d, i); /* re-examine i: a neighbour may have moved in */
        } else {
            d->ev_cur++;
        }
        d->ev_left--;
    }
    d->evicted += before - d->count;
    umg_metric_add(&m_evicted, (int64_t)(before - d->count));
}

static int put(umg_dedupe_t *d, uint32_t app, const umg_uuid_t *id, int64_t now_us, int refresh)
{
    uint64_t lo, hi, i;
    id_split(id, &lo, &hi);
    uint32_t now_min = (uint32_t)(now_us / 60000000);
    migrate(d, 64);
    sweep_step(d, now_min, 2);
    slot_t *s = find(d, app, lo, hi, &i);
    if (s != NULL) {
        if (!expired(d, s, now_min) && !refresh) {
            return 1;
        }
        hist_add(d, s->minute, -1);
        hist_add(d, now_min, 1);
        s->minute = now_min;
        return 0;
    }
    if (d->old != NULL) {
        uint64_t oi;
        const slot_t *os = find_in(d->old, d->old_mask, app, lo, hi, &oi);
        if (os != NULL && !expired(d, os, now_min) && !refresh) {
            return 1;
        }
        /* Absent, expired or refreshed: a fresh entry goes into the new table. */
    }
    if (d->count + 1 > d->max_ids) {
        evict_step(d);
        find(d, app, lo, hi, &i);
    } else {
        d->evicting = 0; /* under the bound again (expiry): a new cut when it is reached */
    }
    uint64_t cap = d->mask + 1;
    if ((d->count + 1) * 16 > cap * 9) {
        prepare(d);
    }
    int ready = !d->prep_busy || atomic_load_explicit(&d->prep_done, memory_order_acquire);
    if (ready && (d->prep_busy || d->next != NULL) && d->count * 2 <= cap) {
        umg_free(take_prepared(d, 0)); /* back to half full (expiry): the table made ahead is not needed soon */
    }
    if ((d->count + 1) * 8 > cap * 5 && (ready || (d->count + 1) * 4 > cap * 3)) {
        int rc = grow(d);
        if (rc != UMG_OK) {
            return rc;
        }
        find(d, app, lo, hi, &i);
    }
    slot_t *n = &d->slots[i];
    n->lo = lo;
    n->hi = hi;
    n->app = app;
    n->minute = now_min;
    d->count++;
    hist_add(d, now_min, 1);
    return 0;
}

void umg_dedupe_prefetch(const umg_dedupe_t *d, uint32_t app, const umg_uuid_t *id)
{
    uint64_t lo, hi;
    id_split(id, &lo, &hi);
    const char *p = (const char *)&d->slots[slot_hash(app, lo, hi) & d->mask];
    __builtin_prefetch(p, 1);
    __builtin_prefetch(p + 64, 1);
}

int umg_dedupe_check_insert(umg_dedupe_t *d, uint32_t app, const umg_uuid_t *id, int64_t now_us)
{
    return put(d, app, id, now_us, 0);
}

int umg_dedupe_insert(umg_dedupe_t *d, uint32_t app, const umg_uuid_t *id, int64_t seen_us)
{
    int rc = put(d, app, id, seen_us, 1);
    return rc < 0 ? rc : UMG_OK;
}

void umg_dedupe_remove(umg_dedupe_t *d, uint32_t app, const umg_uuid_t *id)
{
    migrate(d, UINT64_MAX); /* rare (a failed write): finish any move so one table holds the id */
    uint64_t lo, hi, i;
    id_split(id, &lo, &hi);
    if (find(d, app, lo, hi, &i) != NULL) {
        delete_at(d, i);
    }
}

void umg_dedupe_expire(umg_dedupe_t *d, int64_t now_us)
{
    migrate(d, UINT64_MAX);
    uint32_t now_min = (uint32_t)(now_us / 60000000);
    for (uint64_t i = 0; i <= d->mask;) {
        if (d->slots[i].app != 0 && expired(d, &d->slots[i], now_min)) {
            delete_at(d, i);
        } else {
            i++;
        }
    }
}

uint64_t umg_dedupe_count(const umg_dedupe_t *d)
{
    return d->count;
}

uint64_t umg_dedupe_memory(const umg_dedupe_t *d)
{
    uint64_t next = d->prep_busy || d->next != NULL ? d->next_cap : 0;
    return (d->mask + 1 + (d->old != NULL ? d->old_mask + 1 : 0) + next) * sizeof(slot_t);
}

uint64_t umg_dedupe_evicted(const umg_dedupe_t *d)
{
    return d->evicted;
}
