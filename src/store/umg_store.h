/*
 * umg_store.h - the attribution store of one node, on LMDB: touches by every
 * key an install can reach them with, device state, attribution decisions
 * (installs, reinstalls, re-engagements), a dictionary of the descriptive
 * strings (source, campaign, ...) and the pipeline's next log offset.
 *
 * One writer (the pipeline thread) at a time, any number of readers (the
 * HTTP loops), as LMDB allows. Touches are found through a key index kept
 * in memory (umg_store_gather works in write transactions only). Everything a pipeline batch changes, including
 * the offset it read up to, is one transaction, so a restart resumes exactly
 * where the last committed batch ended and no record is applied twice.
 * Commits are not synced one by one (MDB_NOSYNC); umg_store_sync() flushes,
 * and what a crash of the machine loses is replayed from the event log.
 *
 * The store holds hashes (umg_attr_id_hash, umg_attr_click_hash,
 * umg_attr_ip_hash), never raw identifiers or addresses. Layout and sizes:
 * docs/attribution.md, "The touch store".
 */
#ifndef UMG_STORE_H
#define UMG_STORE_H

#include "umg_attr.h"
#include "umg_core.h"
#include "umg_devcache.h"
#include "umg_rollup.h"

typedef struct umg_store_config_s {
    int64_t map_bytes;          /* the largest the database may grow (virtual address space) */
    int64_t device_cache_bytes; /* the writer's device cache (umg_devcache.h); 0: none */
} umg_store_config_t;

typedef struct umg_store_s umg_store_t;
typedef struct umg_store_txn_s umg_store_txn_t;

/**
 * Opens (creating) the store in dir. The touches' key index is rebuilt in
 * memory from the touch table by the first write transaction (about 0.8 s
 * per million touches), so opening is quick. UMG_EIO with the reason logged.
 */
int umg_store_open(const char *dir, const umg_store_config_t *cfg, umg_store_t **out);
void umg_store_close(umg_store_t *st);
/** Flushes committed transactions to disk. */
int umg_store_sync(umg_store_t *st);

typedef struct umg_store_stats_s {
    uint64_t touches, touch_keys, devices, decisions, strings; /* touch_keys: live entries of the key index */
    uint64_t touch_bytes;                                      /* pages of the touch table, in bytes */
    uint64_t index_bytes;                                      /* memory of the touches' key index */
    uint64_t total_bytes;                                      /* pages in use by every table */
    uint64_t rollup_rows, rollup_bytes;                        /* report rollup rows and their pages */
    uint64_t next_offset;                                      /* the pipeline's next log offset */
    int index_loaded; /* the key index was taken from the file the last close saved, not rebuilt */
} umg_store_stats_t;
int umg_store_stats(umg_store_t *st, umg_store_stats_t *out);

/*
 * Transactions. A write transaction (write = 1) is only ever open on one
 * thread at a time; read transactions may be open on any thread. Slices and
 * strings read through a transaction stay valid until it ends.
 */
int umg_store_begin(umg_store_t *st, int write, umg_store_txn_t **out);
/** Commits (a read transaction just ends). UMG_ENOSPC when the map is full. */
int umg_store_commit(umg_store_txn_t *tx);
void umg_store_abort(umg_store_txn_t *tx);
/*
 * A write transaction that changes more pages than LMDB can hold dirty (2^17,
 * 512 MiB) fails its next put with UMG_ETOOBIG: abort it and do the work in
 * smaller transactions. Tests set umg__store_inject_txn_full to N to have
 * every write transaction fail that way after N touch, device or rollup puts
 * (a device the writer's cache holds counts at its put and again when the
 * commit writes it, where it then fails).
 */
extern long umg__store_inject_txn_full;

/** The next log offset the pipeline has not applied (0 on a new store). */
int umg_store_offset(umg_store_txn_t *tx, uint64_t *next);
int umg_store_set_offset(umg_store_txn_t *tx, uint64_t next);

/*
 * The dictionary: a non-empty string's 32-bit id (made on first sight, never
 * reused), 0 for an empty one. Strings longer than 4096 bytes are refused
 * (UMG_ERANGE), and new strings once ids reach UMG_STORE_STR_MAX_ID (ids
 * stay out of the day sets' names below). umg_store_string gives the text back.
 */
#define UMG_STORE_STR_MAX_ID 0x7ffffffdu
int umg_store_intern(umg_store_txn_t *tx, umg_slice_t s, uint32_t *id);
int umg_store_string(umg_store_txn_t *tx, uint32_t id, umg_slice_t *out);
/** The id of a string already in the dictionary, in any transaction: UMG_ENOENT when absent (0 for ""). */
int umg_store_lookup(umg_store_txn_t *tx, umg_slice_t s, uint32_t *id);

/* ----------------------------------------------------------- touches */

/** Stores a touch (idempotent on touch_id, the log offset), keyed by its identifiers, click id and fingerprint. */
int umg_store_touch_put(umg_store_txn_t *tx, const umg_attr_touch_t *t);
int umg_store_touch_get(umg_store_txn_t *tx, uint64_t touch_id, umg_attr_touch_t *out);

/* Per key of an observation: at most this many candidates are kept (the latest by time), among at most
 * UMG_STORE_GATHER_WALK entries of the key's list, newest in the log first. */
#define UMG_STORE_GATHER_PER_KEY 64
#define UMG_STORE_GATHER_WALK 256

/**
 * The stored touches of obs's app that one of obs's keys reaches (the
 * referrer's click id, identifier hashes, the fingerprint IP + OS), each
 * once, at most cap in all, the strongest class's keys first. Passed over:
 * touches after obs's time or before oldest_us (never candidates), and
 * through the fingerprint key a click the fraud rules rejected or of another
 * device model. Kept without counting towards a key's
 * UMG_STORE_GATHER_PER_KEY: touches the fraud rules rejected, as many at
 * most (the fraud features count them; the core never picks them). The core applies the
 * windows. Write transactions only (UMG_EINVAL otherwise).
 */
int umg_store_gather(umg_store_txn_t *tx, const umg_attr_obs_t *obs, int64_t oldest_us, umg_attr_touch_t *out,
                     size_t cap, size_t *n);

/**
 * Deletes touches in log order while their time is before before_us, up to
 * max of them; stops at the first one that is not (so a touch stays until
 * every touch before it in the log has expired). *removed may be NULL.
 */
int umg_store_expire(umg_store_txn_t *tx, int64_t before_us, size_t max, size_t *removed);

/** Calls fn for every stored touch of app (0: any) in log order; a non-zero return stops and is returned. */
int umg_store_touches_scan(umg_store_txn_t *tx, uint32_t app, int (*fn)(void *ctx, const umg_attr_touch_t *t),
                           void *ctx);

/* ----------------------------------------------------------- devices */

/*
 * A set of local days, as a window of 128 days ending at the newest day
 * added: enough for the latest events a daemon accepts (ingest.max_age).
 */
typedef struct umg_store_dayset_s {
    int32_t base; /* the day of bit 0 */
    uint32_t reserved;
    uint64_t bits[2];
} umg_store_dayset_t;

#define UMG_STORE_DAYSET_DAYS 128

/**
 * Adds day to the set: 1 when it was not in it, 0 when it was, -1 when it is
 * older than the window (the set cannot say; callers count it as new).
 */
int umg_store_dayset_add(umg_store_dayset_t *s, int32_t day);
/** The latest day of the set before day (INT32_MIN when none is known), and the earliest after (INT32_MAX). */
int32_t umg_store_dayset_prev(const umg_store_dayset_t *s, int32_t day);
int32_t umg_store_dayset_next(const umg_store_dayset_t *s, int32_t day);

/* The days a device had events of one name (for event_unique: reports). */
typedef struct umg_store_evdays_s {
    uint32_t name; /* dictionary id; 0: a free slot */
    uint32_t reserved;
    umg_store_dayset_t days;
} umg_store_evdays_t;

/* Event names whose days live in the device's own record; more go to a table of their own. */
#define UMG_STORE_EVDAYS_INLINE 6

/* A device of an app: the core's state plus what reports need. */
typedef struct umg_store_device_s {
    umg_attr_device_t attr;
    uint64_t key;              /* the device's canonical key (from its first identifier) */
    int64_t first_seen_us;     /* the first observation's time */
    int64_t last_seen_us;      /* the latest observation's time */
    double revenue;            /* purchases, as sent (currencies are not converted) */
    uint32_t sessions, events; /* sessions; in-app events and purchases */
    uint32_t purchases;
    /* For the report rollups (docs/reports.md). */
    uint32_t country, platform; /* dictionary ids, from the device's first observation */
    int32_t cohort_day;         /* the local day of the install that started the current cohort membership */
    uint64_t cohort_bits[3];    /* days since cohort_day the device was active (0..191) */
    umg_store_dayset_t active;  /* local days the device was active */
    umg_store_dayset_t paying;  /* local days it had revenue > 0 */
    umg_store_dayset_t weeks;   /* calendar weeks (umg_date_week_start / 7) it was active */
    umg_store_dayset_t months;  /* calendar months (year * 12 + month) it was active */
    int32_t first_day;          /* the earliest local day it was active, when has_first */
    uint32_t has_first;
    umg_store_evdays_t evdays[UMG_STORE_EVDAYS_INLINE]; /* its first event names (umg_store_event_day) */
    uint8_t fraud_reason; /* its current install was rejected by this rule: its activity is not counted */
    uint8_t reserved[7];
} umg_store_device_t;

/**
 * Finds the device that one of ids (UMG_ATTR_MAX_IDS hashes, strongest first,
 * zeros absent) belongs to. UMG_ENOENT when none does: *out is zeroed with
 * out->key set to the key a new device gets. UMG_EINVAL when ids holds none.
 */
int umg_store_device_find(umg_store_txn_t *tx, uint32_t app, const uint64_t ids[UMG_ATTR_MAX_IDS],
                          umg_store_device_t *out);
/*
 * Writes the device under d->key and makes each of ids reach it. dims_before: the device's report dimensions
 * as it was read (umg_store_device_dims), so that they are written again only when they changed; NULL for a
 * new device (or unknown: they are written).
 */
int umg_store_device_put(umg_store_txn_t *tx, uint32_t app, const uint64_t ids[UMG_ATTR_MAX_IDS],
                         const umg_store_device_t *d, const uint32_t *dims_before);
/** A device's report dimensions (UMG_RD_*): its install's attribution, country, platform. */
void umg_store_device_dims(const umg_store_device_t *d, uint32_t dims[UMG_RD_N]);
/*
 * Devices read in ascending key order through one cursor (a grouped funnel
 * visits its devices so): a read steps forward from the last one instead of
 * descending the tree again. Keys may also go down (a plain seek then).
 */
typedef struct umg_store_devwalk_s umg_store_devwalk_t;
int umg_store_devwalk_open(umg_store_txn_t *tx, umg_store_devwalk_t **out);
/** The device of key; UMG_ENOENT when there is none. */
int umg_store_devwalk_get(umg_store_devwalk_t *w, uint64_t key, umg_store_device_t *out);
/** The device's report dimensions alone (umg_store_device_dims), from a compact table of their own: a walk over
 *  them reads about a tenth of the pages a walk over whole devices does. */
int umg_store_devwalk_dims(umg_store_devwalk_t *w, uint64_t key, uint32_t dims[UMG_RD_N]);
void umg_store_devwalk_close(umg_store_devwalk_t *w);

/** The device cache's counts (zeros when there is none); on the thread that writes, between transactions. */
void umg_store_device_cache_stats(umg_store_t *st, umg_devcache_stats_t *out);

/** The device one identifier hash reaches. UMG_ENOENT when none. */
int umg_store_device_by_id(umg_store_txn_t *tx, uint32_t app, uint64_t id_hash, umg_store_device_t *out);
int umg_store_device_get(umg_store_txn_t *tx, uint32_t app, uint64_t key, umg_store_device_t *out);

/**
 * Remembers an event id of app: UMG_OK the first time, UMG_EEXIST after (the
 * pipeline applies an install or purchase once, even when the log's dedupe
 * had forgotten its id and stored a resent copy). 64-bit hashes; never expire.
 */
int umg_store_seen(umg_store_txn_t *tx, uint32_t app, const umg_uuid_t *event_id);

/* Names of the sets the re-engagement credit keeps (docs/reports.md): an event name's days within a
 * re-engagement are under (UMG_STORE_EVDAY_REENG | its id); the days with any credited activity and with
 * credited revenue > 0 under the two below; dictionary ids stay at most UMG_STORE_STR_MAX_ID. */
#define UMG_STORE_EVDAY_REENG 0x80000000u
#define UMG_STORE_EVDAY_REENG_ACTIVE 0xffffffffu
#define UMG_STORE_EVDAY_REENG_PAYING 0xfffffffeu

/**
 * Adds day to the set of days a device had an event of one name (name: a
 * non-zero dictionary id, or a set named above); *added as umg_store_dayset_add returns. The sets
 * of the device's first UMG_STORE_EVDAYS_INLINE names are in d itself (write
 * d back with umg_store_device_put), later ones in a table of their own.
 * Forget removes them with the device.
 */
int umg_store_event_day(umg_store_txn_t *tx, umg_store_device_t *d, uint32_t name, int32_t day, int *added);

/* ------------------------------------------------------------ rollups */

/**
 * Since when the store keeps the re-engagement credit's rollups (UMG_RT_REENG_*): 0 when it always has (its
 * every record was applied by a build that keeps them), else the time a store of the format before them was
 * upgraded in place (what it applied before that is not in them).
 */
int umg_store_reeng_since(umg_store_txn_t *tx, int64_t *us);

struct umg_rollup_key_s;
/** Writes one report rollup row (src/rollup): its counters after the batch. */
int umg_store_rollup_put(umg_store_txn_t *tx, uint32_t app, int table, const struct umg_rollup_key_s *k,
                         const int64_t *v, size_t nv);
/** Calls fn for every stored rollup row; a non-zero return stops and is returned. */
int umg_store_rollup_scan(umg_store_txn_t *tx,
                          int (*fn)(void *ctx, uint32_t app, int table, const struct umg_rollup_key_s *k,
                                    const int64_t *v, size_t nv),
                          void *ctx);

/*
 * The rollup log: each batch's rollup changes as one appended blob (cheap to
 * write), numbered in append order. Now and then the pipeline folds the blobs
 * up to some number into the rollup rows: it writes every row they touched,
 * with its value as of that blob, in key order, over as many transactions as
 * it needs. Between them a mark says how far it got (the last row written);
 * the last one ends the fold, which drops those blobs and the mark. Loading,
 * a blob the mark covers is added only to rows after the mark's row.
 */
int umg_store_rollup_log_append(umg_store_txn_t *tx, const void *data, size_t len, uint64_t *seq);
/** Calls fn for every blob in append order; a non-zero return stops and is returned. */
int umg_store_rollup_log_scan(umg_store_txn_t *tx, int (*fn)(void *ctx, uint64_t seq, const void *data, size_t len),
                              void *ctx);
/** Records that the fold of the blobs up to upto has written the rows up to (app, table, k). */
int umg_store_rollup_fold_mark(umg_store_txn_t *tx, uint64_t upto, uint32_t app, int table,
                               const struct umg_rollup_key_s *k);
/** The mark of a fold in progress; UMG_ENOENT when none is. */
int umg_store_rollup_fold_get(umg_store_txn_t *tx, uint64_t *upto, uint32_t *app, int *table,
                              struct umg_rollup_key_s *k);
/** Ends a fold: drops the blobs up to upto and the mark. */
int umg_store_rollup_fold_done(umg_store_txn_t *tx, uint64_t upto);

/* ----------------------------------------------------------- timelines */

/* The steps a funnel can name, per device in time order (GET /v1/reports/funnel). */
typedef enum {
    UMG_STORE_STEP_INSTALL = 1,  /* an install event, or the event that was an implicit install */
    UMG_STORE_STEP_EVENT = 2,    /* an in-app event; name: its name's dictionary id */
    UMG_STORE_STEP_PURCHASE = 3, /* a purchase; name as for events */
} umg_store_step_kind_t;

typedef struct umg_store_step_s {
    int64_t ts_us; /* the event's own time */
    uint32_t name; /* dictionary id, 0 for installs */
    uint8_t kind;  /* umg_store_step_kind_t */
    uint8_t reserved[3];
} umg_store_step_t;

/** Adds a step to a device's timeline (offset: the record's log offset, so a replay writes the same key). */
int umg_store_timeline_add(umg_store_txn_t *tx, uint32_t app, uint64_t device_key, uint64_t offset,
                           const umg_store_step_t *step);
/**
 * Calls fn once per device of app with its steps in time order (ties in log order); steps are borrowed
 * until fn returns. A non-zero return from fn stops the scan and is returned.
 */
int umg_store_timeline_scan(umg_store_txn_t *tx, uint32_t app,
                            int (*fn)(void *ctx, uint64_t device_key, const umg_store_step_t *steps, size_t n),
                            void *ctx);
/**
 * The same, with the devices shared between the calling thread and a second one when beside is not NULL:
 * beside(par, job, arg) starts job(arg) on it (0 when it did; else the caller does all), join(par) waits
 * for that job. The caller's devices go to fn(ctx[0], ...), the other thread's to fn(ctx[1], ...),
 * concurrently; every device once, to one of them. Each thread's devices come in key order.
 */
int umg_store_timeline_scan_par(umg_store_txn_t *tx, uint32_t app,
                                int (*fn)(void *ctx, uint64_t device_key, const umg_store_step_t *steps, size_t n),
                                void *const ctx[2], void *par, int (*beside)(void *par, void (*job)(void *), void *arg),
                                void (*join)(void *par));

/* ---------------------------------------------------------- decisions */

/* A touch that was a candidate for an install, for the export and MTA. 32 bytes. */
typedef struct umg_store_contrib_s {
    int64_t ts_us;
    uint64_t touch_id;
    uint32_t source, campaign;
    uint8_t type;  /* umg_attr_touch_type_t */
    uint8_t match; /* umg_attr_match_t it was a candidate in */
    uint8_t reserved[6];
} umg_store_contrib_t;

/* The newest candidates kept per install. */
#define UMG_STORE_MAX_CONTRIB 16

/* A candidate touch the fraud rules took out of an install's attribution (click injection, flooding). */
typedef struct umg_store_rejected_s {
    uint64_t touch_id;
    uint8_t reason; /* umg_fraud_reason_t */
    uint8_t reserved[7];
} umg_store_rejected_t;

#define UMG_STORE_MAX_REJECTED 4
#define UMG_STORE_FEATURES 20 /* UMG_FRAUD_NF: the model's inputs, kept per install for training */

enum { UMG_STORE_FRAUD_CLEAN = 0, UMG_STORE_FRAUD_FLAGGED = 1, UMG_STORE_FRAUD_REJECTED = 2 };

/* One decision with an outcome (install, reinstall, reattributed, implicit install, re-engagement). */
typedef struct umg_store_decision_s {
    umg_attr_decision_t d;
    uint64_t offset;     /* the observation's log offset */
    uint64_t device_key; /* umg_store_device_t.key */
    umg_uuid_t event_id;
    uint32_t app;
    /* Fraud (docs/fraud.md): the status, the deciding rule (the first rejecting one, else the first flagging
     * one), every rule that fired (bit 1 << reason), the model's score (-1 when not scored), the candidate
     * touches rejected at decision time and the model's features (installs only; NaN when unknown). */
    uint8_t fraud_status; /* UMG_STORE_FRAUD_* */
    uint8_t fraud_reason;
    uint16_t fraud_rules;
    float score;
    uint32_t nrejected;
    uint32_t has_features;
    umg_store_rejected_t rejected[UMG_STORE_MAX_REJECTED];
    float features[UMG_STORE_FEATURES];
    uint32_t ncontrib; /* candidates, oldest first, the newest UMG_STORE_MAX_CONTRIB of them */
    umg_store_contrib_t contrib[UMG_STORE_MAX_CONTRIB];
} umg_store_decision_t;

/**
 * A small persisted value under a caller's key (1..62 bytes), kept in the same transactions as everything
 * else (the fraud rules keep how far a flood's installs were looked back at). UMG_ENOENT when absent.
 */
int umg_store_note_get(umg_store_txn_t *tx, const void *key, size_t klen, int64_t *value);
int umg_store_note_put(umg_store_txn_t *tx, const void *key, size_t klen, int64_t value);

/** Stores a decision under (app, d.ts_us, offset); idempotent. */
int umg_store_decision_put(umg_store_txn_t *tx, const umg_store_decision_t *d);

/* Where a scan of decisions stopped: the last one it gave, by (ts, offset). */
typedef struct umg_store_scan_pos_s {
    int64_t ts_us;
    uint64_t offset;
} umg_store_scan_pos_t;

/*
 * Calls fn for the decisions of app with from_us <= ts < to_us in (ts, offset)
 * order, from the first one, or from the one after *after when after is not
 * NULL (to resume a scan in a new transaction; any offset, 0 too). A non-zero
 * return from fn stops the scan and is returned.
 */
int umg_store_decisions_scan(umg_store_txn_t *tx, uint32_t app, int64_t from_us, int64_t to_us,
                             const umg_store_scan_pos_t *after, int (*fn)(void *ctx, const umg_store_decision_t *d),
                             void *ctx);

/**
 * Calls fn for the first installs and reattributions of app that a click of source and site won, with
 * from_us <= ts < to_us, in (ts, offset) order, whatever their fraud status: the store lists them by source
 * and site as it stores them, so this reads only theirs. A non-zero return from fn stops and is returned.
 */
int umg_store_click_installs_scan(umg_store_txn_t *tx, uint32_t app, uint32_t source, uint32_t site, int64_t from_us,
                                  int64_t to_us, int (*fn)(void *ctx, const umg_store_decision_t *d), void *ctx);

/* ------------------------------------------------------------- privacy */

/* What a forget request removes from the store (the log records it removed, as the store knows them). */
typedef struct umg_store_forget_s {
    const uint32_t *id_apps; /* (id_apps[i], id_hashes[i]): identifier hashes of the forgotten devices */
    const uint64_t *id_hashes;
    size_t nids;
    const uint64_t *touch_ids; /* the forgotten touch records' offsets */
    size_t ntouches;
    const uint32_t *event_apps; /* (event_apps[i], event_ids[i]): forgotten events */
    const umg_uuid_t *event_ids;
    size_t nevents;
} umg_store_forget_t;

typedef struct umg_store_forget_stats_s {
    uint64_t devices, touches, decisions;
} umg_store_forget_stats_t;

/**
 * Deletes the devices the identifier hashes reach (state and every alias
 * given), their decisions, every touch keyed by those identifiers or listed,
 * and the seen marks of the events. st may be NULL.
 */
int umg_store_forget(umg_store_txn_t *tx, const umg_store_forget_t *f, umg_store_forget_stats_t *st);

#endif
