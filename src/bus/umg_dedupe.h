/*
 * umg_dedupe.h - the set of (app, event_id) seen within the dedupe horizon.
 *
 * An open-addressing table with linear probing and backward-shift deletion,
 * grown by doubling up to a configured number of ids. Expiry is incremental:
 * every insert sweeps a few slots and removes ids older than the horizon, so
 * there is never a long pause. Used only from the log writer thread (no
 * locks). The table is a cache of the log: it is rebuilt from the segment
 * indexes on start.
 */
#ifndef UMG_DEDUPE_H
#define UMG_DEDUPE_H

#include "umg_core.h"

typedef struct umg_dedupe_s umg_dedupe_t;

/** Bytes of table memory per slot; the table keeps its load between 5/16 and 5/8. */
#define UMG_DEDUPE_SLOT_BYTES 24

/**
 * max_ids bounds memory: when the table holds max_ids live ids, each new id
 * makes it forget one of its oldest early (counted in
 * umg_dedupe_evicted_total; logged when it starts).
 */
int umg_dedupe_new(uint64_t max_ids, int64_t horizon_us, umg_dedupe_t **out);
void umg_dedupe_free(umg_dedupe_t *d);

/**
 * Looks (app, id) up as of now_us. Returns 1 when present and not expired
 * (a duplicate), 0 when it was absent and is now inserted with time now_us,
 * or UMG_ENOMEM.
 */
int umg_dedupe_check_insert(umg_dedupe_t *d, uint32_t app, const umg_uuid_t *id, int64_t now_us);

/** Grows the table once so that n ids (at most max_ids) fit without rehashing. */
int umg_dedupe_reserve(umg_dedupe_t *d, uint64_t n);

/** Starts loading the memory a lookup of (app, id) will touch; no effect otherwise. */
void umg_dedupe_prefetch(const umg_dedupe_t *d, uint32_t app, const umg_uuid_t *id);

/** Inserts (or refreshes) an id seen at seen_us, as during recovery. */
int umg_dedupe_insert(umg_dedupe_t *d, uint32_t app, const umg_uuid_t *id, int64_t seen_us);

/** Removes an id (used to undo a failed append). */
void umg_dedupe_remove(umg_dedupe_t *d, uint32_t app, const umg_uuid_t *id);

/** Removes every id older than the horizon as of now_us (full sweep). */
void umg_dedupe_expire(umg_dedupe_t *d, int64_t now_us);

uint64_t umg_dedupe_count(const umg_dedupe_t *d);
uint64_t umg_dedupe_memory(const umg_dedupe_t *d);
uint64_t umg_dedupe_evicted(const umg_dedupe_t *d);

#endif
