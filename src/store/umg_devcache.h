/*
 * umg_devcache.h - the store writer's cache of device records and of the
 * identifiers that reach them, in front of LMDB.
 *
 * Installs and in-app events read and write their device; in LMDB each read
 * is two B-tree descents (identifier to device key, then the record) that
 * miss the CPU cache on a large store. The pipeline keeps the devices it
 * touched here: a read is one set of four keys, and a write marks the
 * record dirty. The store writes the dirty records, in key order, into the
 * transaction just before it commits, so LMDB and readers on other threads
 * see exactly what they saw before; an aborted transaction empties the cache.
 *
 * Set-associative (four ways a set): a record evicted is always a clean one;
 * when all four ways of a key's set are dirty the caller writes that record
 * to LMDB itself. Only the store's write transactions use it, under the
 * store's writer mutex (held from before LMDB's writer lock until the cache
 * has been emptied after an abort), so it has no lock of its own.
 */
#ifndef UMG_DEVCACHE_H
#define UMG_DEVCACHE_H

#include "umg_core.h"

typedef struct umg_devcache_s umg_devcache_t;

typedef struct umg_devcache_stats_s {
    uint64_t hits, misses; /* device records found here, and not */
    uint64_t alias_hits, alias_misses;
    uint64_t records, capacity; /* records held, and room for */
    uint64_t written_through;   /* dirty records that found no clean way (written by the caller) */
} umg_devcache_stats_t;

/**
 * A cache of records of rec_size bytes in about bytes of memory. *out is
 * NULL (no cache) when bytes holds fewer than 64 records.
 */
int umg_devcache_new(size_t bytes, size_t rec_size, umg_devcache_t **out);
void umg_devcache_free(umg_devcache_t *c);

/** The record of key (never 0), or NULL when it is not cached. */
const void *umg_devcache_get(umg_devcache_t *c, uint64_t key);
/**
 * Caches rec under key, clean (as read from the store) or dirty (changed in
 * the open transaction, written by umg_devcache_flush). 1 when cached; 0
 * when key was not cached and every way of its set is dirty: the caller
 * writes the record to the store itself.
 */
int umg_devcache_put(umg_devcache_t *c, uint64_t key, const void *rec, int dirty);

/**
 * What the cache knows of the identifier key alias: 1 with *key the device
 * it reaches (0: known to reach none), 0 when it does not know.
 */
int umg_devcache_alias_get(umg_devcache_t *c, uint64_t alias, uint64_t *key);
/** Remembers that alias reaches key (0: none). */
void umg_devcache_alias_put(umg_devcache_t *c, uint64_t alias, uint64_t key);

/**
 * Calls fn for each dirty record in ascending key order, then marks them
 * clean. The first non-zero return stops and is returned (the records stay
 * dirty; the caller then aborts and clears).
 */
int umg_devcache_flush(umg_devcache_t *c, int (*fn)(void *ctx, uint64_t key, const void *rec), void *ctx);
/** Forgets everything (an aborted transaction, a forget pass). */
void umg_devcache_clear(umg_devcache_t *c);
void umg_devcache_stats(const umg_devcache_t *c, umg_devcache_stats_t *out);

#endif
