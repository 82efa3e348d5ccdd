/*
 * umg_pipeline.h - the attribution pipeline: reads the log in order from the
 * store's committed offset, keeps touches in the touch store, decides every
 * install, session and event with the pure core (src/attr), and persists
 * device state and decisions, one store transaction per batch together with
 * the offset it read up to. A restart resumes; a replay of the same log into
 * an empty store gives the same decisions.
 *
 * One pipeline thread per node reads every partition in log order, so a touch
 * is always in the store before any install received after it, whatever
 * partition either landed in (docs/attribution.md, "The pipeline"). A decoder
 * thread of its own reads and decodes the records ahead of it, in the same
 * order (cfg.decode_thread).
 */
#ifndef UMG_PIPELINE_H
#define UMG_PIPELINE_H

#include "umg_apps.h"
#include "umg_bus.h"
#include "umg_store.h"

struct umg_pii_s;

typedef struct umg_pipeline_config_s {
    int64_t batch;              /* log records per store transaction at most */
    int64_t batch_ms;           /* a store transaction ends after this long, even when shorter than batch */
    int64_t poll_ms;            /* idle wait before looking for new records */
    int64_t touch_retention_ms; /* touches older than this (behind the newest record) are expired */
    int64_t sync_interval_ms;   /* how often the store is flushed to disk */
    int sync_beside; /* 1 (default): by a helper thread, so that the pipeline thread never waits for it; 0: on it */
    int64_t nice;    /* the pipeline thread's nice value (0..19); above 0, ingest goes first */
    /* 1 (default): a decoder thread reads and decodes the log's records ahead of the thread that applies them to
     * the store, so the two share the work on two cores; 0: the pipeline thread does both. */
    int decode_thread;
    /* Report rollups: the rollup log is folded into rows when it holds this many bytes, or this long after the
     * last fold (umg_pipeline_set_reports). */
    int64_t rollup_fold_bytes;
    int64_t rollup_fold_ms;
    int64_t rollup_fold_rows; /* rows a fold writes per store transaction at most */
    int fraud;                /* 1 (default): the fraud rules run (docs/fraud.md); 0: none does, nothing is counted */
    int64_t fraud_horizon_ms; /* items dated more than this before they arrive escape the windowed rules (1 d) */
} umg_pipeline_config_t;

void umg_pipeline_config_defaults(umg_pipeline_config_t *cfg);

typedef struct umg_pipeline_s umg_pipeline_t;

typedef struct umg_pipeline_stats_s {
    uint64_t records, touches, installs, reinstalls, reattributed, implicit_installs, reengagements;
    uint64_t sessions, events, no_device, skipped; /* skipped: records that did not decode */
    uint64_t duplicates;                           /* installs and purchases already applied (by event_id) */
    uint64_t next_offset;                          /* the next log offset to apply */
    /* Time to decide one install (read the device, gather touches, decide, write back), since start. */
    uint64_t install_p50_us, install_p99_us, install_max_us;
} umg_pipeline_stats_t;

/* pii (may be NULL) decrypts identifiers stored encrypted. Borrowed: store, bus, apps, pii. */
int umg_pipeline_new(const umg_pipeline_config_t *cfg, umg_store_t *store, const umg_bus_ops_t *ops, umg_bus_t *bus,
                     umg_apps_t *apps, const struct umg_pii_s *pii, umg_pipeline_t **out);
void umg_pipeline_free(umg_pipeline_t *p);

struct umg_rollup_s;
/**
 * Makes the pipeline keep report rollups (src/rollup) in rollup, with days
 * in each app's time zone from tzc: loads the stored rollup rows into rollup
 * first. Call before the first step. Borrowed: rollup, tzc.
 */
int umg_pipeline_set_reports(umg_pipeline_t *p, struct umg_rollup_s *rollup, umg_tz_cache_t *tzc);

struct umg_live_s;
/** Publishes every decision to the live feed (GET /v1/live) while its app is watched. Borrowed; before start. */
void umg_pipeline_set_live(umg_pipeline_t *p, struct umg_live_s *live);

/**
 * Applies one batch: up to cfg.batch records from the log, in one store
 * transaction. *applied (may be NULL) gets how many records were read (0 at
 * the log's acknowledged end). Errors leave the store at the previous batch.
 */
int umg_pipeline_step(umg_pipeline_t *p, size_t *applied);
/**
 * What the pipeline thread does between batches: touch expiry every 10 s and a store sync every
 * cfg.sync_interval_ms (then the log may drop what the sync covers). For a caller of umg_pipeline_step (a bench).
 */
void umg_pipeline_maintain(umg_pipeline_t *p);

/** Runs steps on a thread of its own until umg_pipeline_stop. */
int umg_pipeline_start(umg_pipeline_t *p);
void umg_pipeline_stop(umg_pipeline_t *p);

/** The next log offset not yet applied (any thread). */
uint64_t umg_pipeline_next_offset(const umg_pipeline_t *p);
void umg_pipeline_stats(const umg_pipeline_t *p, umg_pipeline_stats_t *out);

/*
 * Privacy: the privacy runner's hooks (umg_privacy_runner_config_t.forgotten
 * and .done, ctx = the pipeline). forgotten() notes what the store holds of a
 * removed log record (its identifiers' hashes, the touch, the event id);
 * done() waits until the pipeline has read past log_end (so nothing it applies
 * later brings the device back), then deletes all of it in one store
 * transaction. UMG_EAGAIN when the pipeline did not get there within 30 s.
 */
void umg_pipeline_forgotten(void *pipeline, const umg_bus_msg_t *m);
int umg_pipeline_forget_done(void *pipeline, uint64_t log_end);

/*
 * What the fraud rules need from outside the pipeline (docs/fraud.md); each
 * member may be NULL. Called on the pipeline thread only.
 *   ip_listed: 1 when ip is on a blocked list (*list may name it), else 0.
 *   bot_ua:    1 when a User-Agent matches a bot pattern, else 0.
 *   score:     the model's score in [0, 1] of one install's features
 *              (UMG_FRAUD_NF floats); anything but UMG_OK: not scored.
 */
typedef struct umg_pipeline_fraud_s {
    int (*ip_listed)(void *ctx, umg_slice_t ip, const char **list);
    int (*bot_ua)(void *ctx, umg_slice_t ua);
    int (*score)(void *ctx, uint32_t app, const float *x, size_t nf, double *score);
    void *ctx;
} umg_pipeline_fraud_t;

/** Sets the fraud hooks (copied); before umg_pipeline_start. */
void umg_pipeline_set_fraud(umg_pipeline_t *p, const umg_pipeline_fraud_t *f);

/** The settings the pipeline applies for an app (the admin API's windows over the defaults). */
void umg_pipeline_app_settings(const umg_app_t *app, umg_attr_settings_t *out);

#endif
