/*
 * pipeline.c - the attribution pipeline (umg_pipeline.h).
 *
 * For each log record, in log order:
 *   touch   -> decoded from its stored JSON, identifiers hashed, descriptive
 *              fields interned, kept in the touch store under touch_id = the
 *              record's offset (stable on replay).
 *   event   -> an observation (identifier hashes, the install referrer's
 *              click id, the IP + User-Agent fingerprint); the device's state
 *              is read, candidate touches gathered, the core decides, the
 *              state is written back, and installs, reinstalls and
 *              re-engagements are stored as decisions with their candidates.
 * The decision's clock is the record's receive time, so a replay decides the
 * same. One store transaction per batch, with the next offset in it.
 * Reading, decoding and hashing (prep_record) need no store: by default a
 * decoder thread does them ahead of the pipeline thread, in log order
 * (ahead_thread, src_next).
 */
#include "umg_pipeline.h"

#include "umg_event.h"
#include "umg_fraud.h"
#include "umg_privacy.h"
#include "umg_live.h"
#include "umg_rollup.h"
#include "umg_touch.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define GATHER_CAP 256
#define APP_CACHE 64
#define LAT_BINS 4096

static umg_metric_t m_records = UMG_COUNTER("umg_pipeline_records_total", "Log records applied by the pipeline", NULL);
static umg_metric_t m_installs =
    UMG_COUNTER("umg_pipeline_decisions_total", "Attribution decisions with an outcome", "outcome=\"install\"");
static umg_metric_t m_reinstalls =
    UMG_COUNTER("umg_pipeline_decisions_total", "Attribution decisions with an outcome", "outcome=\"reinstall\"");
static umg_metric_t m_reattributed =
    UMG_COUNTER("umg_pipeline_decisions_total", "Attribution decisions with an outcome", "outcome=\"reattributed\"");
static umg_metric_t m_implicit = UMG_COUNTER("umg_pipeline_decisions_total", "Attribution decisions with an outcome",
                                             "outcome=\"implicit_install\"");
static umg_metric_t m_reeng =
    UMG_COUNTER("umg_pipeline_decisions_total", "Attribution decisions with an outcome", "outcome=\"reengagement\"");
static umg_metric_t m_skipped =
    UMG_COUNTER("umg_pipeline_skipped_total", "Log records the pipeline could not decode (logged)", NULL);
static umg_metric_t m_frej_touch = UMG_COUNTER("umg_fraud_decisions_total", "Fraud rule outcomes in the pipeline",
                                               "what=\"touch\",status=\"rejected\"");
static umg_metric_t m_frej_install = UMG_COUNTER("umg_fraud_decisions_total", "Fraud rule outcomes in the pipeline",
                                                 "what=\"install\",status=\"rejected\"");
static umg_metric_t m_fflag_install = UMG_COUNTER("umg_fraud_decisions_total", "Fraud rule outcomes in the pipeline",
                                                  "what=\"install\",status=\"flagged\"");
static umg_metric_t m_lag =
    UMG_GAUGE("umg_pipeline_lag_records", "Acknowledged log records not yet applied by the pipeline", NULL);

enum {
    S_RECORDS,
    S_TOUCHES,
    S_INSTALLS,
    S_REINSTALLS,
    S_REATTR,
    S_IMPLICIT,
    S_REENG,
    S_SESSIONS,
    S_EVENTS,
    S_NODEV,
    S_SKIP,
    S_DUP,
    S_FRAUD_TOUCHES,  /* touches rejected when they arrived */
    S_FRAUD_INSTALLS, /* installs rejected */
    S_FRAUD_FLAGGED,  /* installs flagged */
    S_COUNT
};

typedef struct app_ent_s {
    uint32_t id;
    int known;
    int source_windows; /* the app has per-source click windows */
    umg_attr_settings_t s;
    const umg_tz_t *tz; /* the reporting time zone; NULL: UTC */
    char platform[8];   /* the app's platform, for devices that send none */
    umg_fraud_settings_t fs;
} app_ent_t;

/* A source/site's figures on one local day, for click flooding: kept with the rollups that hold them. */
typedef struct flood_ent_s {
    uint32_t app, source, site;
    int32_t day;
    int64_t clicks, installs, long_installs;
    uint32_t used;
} flood_ent_t;

/* What the fraud rules found for the install being decided. */
typedef struct fraud_s {
    unsigned rej, flag; /* the deciding rejecting / flagging rule */
    uint16_t rules;     /* every rule that fired */
    uint32_t nrej;
    umg_store_rejected_t rejected[UMG_STORE_MAX_REJECTED];
    uint32_t ic[3];  /* observe_install's counts */
    size_t ntouches; /* p->touches holds the install's candidates */
    int has_raw;     /* the click that would have won before any fraud rule */
    umg_attr_touch_t raw;
    float x[UMG_FRAUD_NF];
    double score; /* -1: not scored */
} fraud_t;

/* A row of a fold, in the order the store keeps rows (app, table, key bytes): written in that order, the puts
 * walk the B-tree's pages once instead of at random. */
typedef struct frow_s {
    uint32_t app;
    uint8_t t;
    umg_rollup_key_t k;
    int64_t v[UMG_ROLLUP_MAXV];
} frow_t;

/* Folding the rollup log into the stored rows (roll_persist): the rows the blobs up to `upto` touched, with their
 * values as of that blob, written `chunk` rows per store transaction. */
typedef struct fold_s {
    umg_rollup_delta_t *touched; /* the rows, while the blobs are read */
    umg_buf_t rows;              /* frow_t, sorted */
    size_t at, next;             /* rows stored; stored once the batch commits */
    size_t wrote;                /* rows the batch's transaction writes */
    int active;                  /* a fold is in progress */
    uint64_t upto;               /* the last blob it folds */
    uint64_t bytes;              /* their bytes: gone from the log when it ends */
    int64_t chunk;               /* rows per transaction now: cfg.rollup_fold_rows, less after one outgrew the store */
    int64_t last_ms;             /* when the last one ended */
    frow_t mark;                 /* loading: the last row stored of a fold in progress */
} fold_t;

/* An activity row of the batch: each device's first activity of a day adds to up to ten of them, and a batch has
 * few, so they are summed here and reach the delta once per batch. */
#define ACT_BITS 6
#define ACT_SLOTS (1u << ACT_BITS)
typedef struct act_ent_s {
    uint32_t app;
    int32_t day;
    uint16_t kind; /* UMG_RA_*; 0xffff: a free slot */
    uint16_t vi;
    int64_t by;
} act_ent_t;

/*
 * A log record read and decoded ahead of the store work: the decoded touch or event (its strings copied into the
 * chunk's arena when a decoder thread made it) and the keys computed from it, which need no store.
 */
typedef struct prep_s {
    umg_bus_msg_t m; /* payload and len are not kept */
    int rc;          /* UMG_OK; UMG_EPARSE, UMG_EINVAL, UMG_ERANGE: the record is skipped; else the batch fails */
    int n;           /* 1: u holds the record's touch or event; 0: nothing to apply */
    uint64_t ids[UMG_ATTR_MAX_IDS];
    uint64_t click; /* a touch's click id hash; an install's referrer click id hash */
    umg_attr_fp_t fp;
    union {
        umg_touch_t t;
        umg_event_t ev;
    } u;
} prep_t;

/* Decoding ahead (cfg.decode_thread): the decoder thread fills chunks of records in a ring, the pipeline thread
 * applies them in order. */
#define AHEAD_RECORDS 128
#define AHEAD_CHUNKS 8

typedef struct chunk_s {
    prep_t rec[AHEAD_RECORDS];
    size_t n;
    int end_rc; /* the reader's answer after rec[n - 1]: UMG_OK, UMG_EAGAIN (the log's end) or an error */
    umg_arena_t arena;
} chunk_t;

typedef struct ahead_s {
    pthread_t tid;
    int running;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* under mu: chunks[(head + i) % AHEAD_CHUNKS] for i < count are ready, in log order (the first one is being
     * applied); the decoder fills chunks[(head + count) % AHEAD_CHUNKS], which head and count moving together
     * never changes until a reset (gen) */
    size_t head, count;
    uint64_t gen;       /* a reset: what the decoder made before it is dropped */
    uint64_t from;      /* where the decoder reads from after a reset */
    uint64_t poke;      /* the pipeline found nothing ready and asks for a read */
    uint64_t poke_done; /* the last poke a read that reached the log's end started after */
    int full;           /* the decoder waits for room in the ring */
    int stop;
    /* the pipeline thread's: the chunk it applies and its next record */
    chunk_t *cur;
    size_t pos;
    /* the decoder thread's */
    umg_event_decoder_t *edec;
    umg_touch_decoder_t *tdec;
    chunk_t chunks[AHEAD_CHUNKS];
} ahead_t;

struct umg_pipeline_s {
    umg_pipeline_config_t cfg;
    umg_store_t *store;
    const umg_bus_ops_t *ops;
    umg_bus_t *bus;
    umg_apps_t *apps;
    const umg_pii_t *pii;
    umg_bus_reader_t *reader;
    uint64_t reader_next; /* the offset the reader continues from */
    int64_t batch_max;    /* records per transaction now: cfg.batch, less after one outgrew the store (UMG_ETOOBIG) */
    umg_event_decoder_t *edec;
    umg_touch_decoder_t *tdec;
    umg_arena_t arena;
    ahead_t *ah; /* the decoder thread (cfg.decode_thread), started by the first step */
    /* With the decoder thread: the log's acknowledged end as the bus last said (set_notify; notify_on), the
     * threads waiting for it to move (idle_wait), and the end every record before which the pipeline has read
     * (it found nothing more after a read that started once the log was there). */
    _Atomic uint64_t log_end;
    _Atomic int sleepers;
    int notify_on;
    uint64_t seen_end;
    prep_t one; /* without it: the record being applied */
    app_ent_t apps_cache[APP_CACHE];
    size_t napps;
    int64_t apps_cached_us;
    int64_t last_recv_us;
    int64_t last_expire_ms, last_sync_ms;
    umg_helper_t *syncer;       /* syncs the store beside the pipeline thread (maintain); NULL: on it */
    _Atomic uint64_t sync_upto; /* the offset the syncer's next sync covers (sync_job) */
    umg_attr_touch_t touches[GATHER_CAP];
    /* report rollups (NULL: none): the batch's changes, merged once it committed (merge_start) */
    umg_rollup_t *rollup;
    umg_rollup_delta_t *delta;
    umg_rollup_delta_t *merging; /* the last committed batch's, going into the tables on the merger thread */
    umg_helper_t *merger;        /* NULL: merged on the pipeline thread */
    int merge_busy;
    act_ent_t act[ACT_SLOTS]; /* the batch's activity rows, summed before they go into the delta (act_add) */
    size_t nact;
    umg_tz_cache_t *tzc;
    umg_live_t *live;    /* the live feed (NULL: none), borrowed */
    umg_buf_t live_buf;  /* a decision's JSON for it */
    umg_buf_t rlog;      /* the batch's changes as a rollup log blob */
    uint64_t rlog_bytes; /* in the store's rollup log */
    uint64_t rlog_last;  /* the number of its last blob (when rlog_bytes > 0) */
    uint64_t rlog_new;   /* the batch's blob's */
    fold_t fl;
    /* fraud (docs/fraud.md) */
    umg_pipeline_fraud_t fh;
    umg_fraud_counts_t *fc;
    flood_ent_t *flood;
    size_t flood_cap, flood_n;
    int warmed; /* the counters were rebuilt from the log after start */
    fraud_t fr;
    /* the record being applied */
    umg_store_txn_t *tx;
    const umg_bus_msg_t *msg;
    umg_store_decision_t rec;
    /* thread */
    pthread_t tid;
    int running;
    _Atomic int stop;
    _Atomic uint64_t next_offset;
    _Atomic uint64_t st[S_COUNT];
    uint64_t pend[S_COUNT]; /* the batch's counts, published when it commits (count_publish) */
    /* install decision times: 1 µs bins up to LAT_BINS µs, then the last bin; the max */
    _Atomic uint32_t lat[LAT_BINS + 1];
    _Atomic uint64_t lat_max_us;
    /* what forget requests removed from the log, until the store forgot it too (privacy thread) */
    pthread_mutex_t fmu;
    umg_event_decoder_t *fedec;
    umg_touch_decoder_t *ftdec;
    umg_arena_t farena;
    umg_buf_t f_ids;    /* (uint32 app, uint64 id hash) pairs, packed as 16 bytes */
    umg_buf_t f_touch;  /* uint64 offsets */
    umg_buf_t f_events; /* (uint32 app, uuid) pairs, 20 bytes */
};

static void ahead_stop(umg_pipeline_t *p);

/* Counts for the stats and /metrics are kept per batch and published when it commits: a batch undone and
 * applied again (after an error, or split: UMG_ETOOBIG) counts once. */
static void count(umg_pipeline_t *p, int which)
{
    p->pend[which]++;
}

static void count_publish(umg_pipeline_t *p, int commit)
{
    static umg_metric_t *const metric_of[S_COUNT] = {[S_RECORDS] = &m_records,
                                                     [S_INSTALLS] = &m_installs,
                                                     [S_REINSTALLS] = &m_reinstalls,
                                                     [S_REATTR] = &m_reattributed,
                                                     [S_IMPLICIT] = &m_implicit,
                                                     [S_REENG] = &m_reeng,
                                                     [S_SKIP] = &m_skipped,
                                                     [S_FRAUD_TOUCHES] = &m_frej_touch,
                                                     [S_FRAUD_INSTALLS] = &m_frej_install,
                                                     [S_FRAUD_FLAGGED] = &m_fflag_install};
    for (int i = 0; i < S_COUNT; i++) {
        if (commit && p->pend[i] != 0) {
            atomic_fetch_add_explicit(&p->st[i], p->pend[i], memory_order_relaxed);
            if (metric_of[i] != NULL) {
                umg_metric_add(metric_of[i], (int64_t)p->pend[i]);
            }
        }
        p->pend[i] = 0;
    }
}

void umg_pipeline_config_defaults(umg_pipeline_config_t *cfg)
{
    cfg->batch = 50000;
    cfg->batch_ms = 200;
    cfg->poll_ms = 2;
    cfg->touch_retention_ms = 31ll * 86400000;
    cfg->sync_interval_ms = 1000;
    cfg->nice = 0;
    cfg->decode_thread = 1;
    cfg->sync_beside = 1;
    cfg->rollup_fold_bytes = 128 << 20;
    cfg->rollup_fold_ms = 60000;
    cfg->rollup_fold_rows = 32768;
    cfg->fraud = 1;
    cfg->fraud_horizon_ms = 86400000;
}

void umg_pipeline_app_settings(const umg_app_t *app, umg_attr_settings_t *out)
{
    umg_attr_settings_default(out);
    if (app == NULL) {
        return;
    }
    if (app->click_lookback_days > 0) {
        out->click_lookback_days = app->click_lookback_days;
    }
    if (app->view_lookback_hours > 0) {
        out->view_lookback_hours = app->view_lookback_hours;
    }
    if (app->reattribution_window_days > 0) {
        out->reattribution_window_days = app->reattribution_window_days;
    }
    if (app->probabilistic_window_hours > 0) {
        out->probabilistic_window_hours = app->probabilistic_window_hours;
    }
    if (app->reengagement_lookback_days > 0) {
        out->reengagement_lookback_days = app->reengagement_lookback_days;
    }
    if (app->reengagement_window_days > 0) {
        out->reengagement_window_days = app->reengagement_window_days;
    }
    if (umg_attr_settings_check(out) != UMG_OK) {
        umg_attr_settings_default(out);
    }
}

static const app_ent_t *app_of(umg_pipeline_t *p, uint32_t app)
{
    for (size_t i = 0; i < p->napps; i++) {
        if (p->apps_cache[i].id == app) {
            return &p->apps_cache[i];
        }
    }
    app_ent_t *e = &p->apps_cache[p->napps < APP_CACHE ? p->napps++ : (size_t)(app % APP_CACHE)];
    umg_app_t a;
    e->id = app;
    e->known = p->apps != NULL && umg_apps_find_internal(p->apps, app, &a) == UMG_OK;
    umg_pipeline_app_settings(e->known ? &a : NULL, &e->s);
    e->source_windows = e->known && a.source_windows > 0;
    e->tz = NULL;
    e->platform[0] = '\0';
    umg_fraud_settings_default(&e->fs);
    if (e->known) {
        e->fs = a.fraud;
        memcpy(e->platform, a.platform, sizeof(e->platform));
        if (p->tzc != NULL && umg_tz_cache_get(p->tzc, a.timezone, &e->tz) != UMG_OK) {
            umg_log(UMG_LOG_WARN, "pipeline", "app %s: time zone \"%s\" cannot be loaded; reporting in UTC",
                    a.public_id, a.timezone);
        }
    }
    return e;
}

int umg_pipeline_new(const umg_pipeline_config_t *cfg, umg_store_t *store, const umg_bus_ops_t *ops, umg_bus_t *bus,
                     umg_apps_t *apps, const umg_pii_t *pii, umg_pipeline_t **out)
{
    static int registered;
    if (!registered) {
        registered = 1;
        umg_metric_t *ms[] = {&m_records, &m_installs,   &m_reinstalls,   &m_reattributed,  &m_implicit, &m_reeng,
                              &m_skipped, &m_frej_touch, &m_frej_install, &m_fflag_install, &m_lag};
        for (size_t i = 0; i < UMG_ARRAY_SIZE(ms); i++) {
            umg_metric_register(ms[i]);
        }
    }
    umg_pipeline_t *p = umg_calloc(1, sizeof(*p));
    if (p == NULL) {
        return UMG_ENOMEM;
    }
    p->cfg = *cfg;
    p->cfg.batch = p->cfg.batch < 1 ? 1 : p->cfg.batch;
    p->cfg.batch_ms = p->cfg.batch_ms < 1 ? 1 : p->cfg.batch_ms;
    p->cfg.rollup_fold_rows = p->cfg.rollup_fold_rows < 1 ? 1 : p->cfg.rollup_fold_rows;
    p->batch_max = p->cfg.batch;
    p->fl.chunk = p->cfg.rollup_fold_rows;
    p->store = store;
    p->ops = ops;
    p->bus = bus;
    p->apps = apps;
    p->pii = pii;
    umg_arena_init(&p->arena, 8192);
    umg_arena_init(&p->farena, 8192);
    pthread_mutex_init(&p->fmu, NULL);
    int rc = umg_event_decoder_new(1 << 20, &p->edec);
    rc = rc ? rc : umg_touch_decoder_new(1 << 20, &p->tdec);
    rc = rc ? rc : umg_fraud_counts_new(UMG_MAX(p->cfg.fraud_horizon_ms * 1000, UMG_FRAUD_HORIZON_MIN_US), &p->fc);
    umg_store_txn_t *tx = NULL;
    rc = rc ? rc : umg_store_begin(store, 0, &tx);
    uint64_t next = 0;
    if (rc == UMG_OK) {
        rc = umg_store_offset(tx, &next);
        umg_store_abort(tx);
    }
    if (rc != UMG_OK) {
        umg_pipeline_free(p);
        return rc;
    }
    p->reader_next = next;
    atomic_store(&p->next_offset, next);
    umg_bus_stats_t bs;
    ops->stats(bus, &bs);
    if (next > bs.durable_offset) {
        /* The store applied records the log no longer holds (a machine crash took back a tail that was not on
         * disk, or the log was replaced): records getting those offsets now would be passed over. */
        umg_log(UMG_LOG_ERROR, "pipeline",
                "the attribution store has applied the log up to offset %llu, but the log ends at %llu: records "
                "stored at offsets below %llu will not be attributed; remove DATA/attr while stopped to rebuild "
                "the store from the log",
                (unsigned long long)next, (unsigned long long)bs.durable_offset, (unsigned long long)next);
    }
    if (ops->set_floor != NULL) {
        ops->set_floor(bus, next); /* retention may remove what the store already holds */
    }
    *out = p;
    return UMG_OK;
}

/*
 * Merging a committed batch into the tables runs on the merger thread while the pipeline applies the next
 * batch: the deltas take turns (p->delta filling, p->merging going in). Readers still see whole batches. The
 * pipeline waits for the merge before it folds the rollup log (which reads the tables), whenever it has
 * caught up with the log (so the tables hold everything applied), and before it stops.
 */
static void merge_job(void *arg)
{
    umg_pipeline_t *p = arg;
    if (umg_rollup_merge(p->rollup, p->merging) != UMG_OK) {
        umg_log(UMG_LOG_ERROR, "pipeline",
                "out of memory merging report rollups: reports lag the store until a restart reloads them");
    }
    umg_rollup_delta_reset(p->merging);
}

static void merge_wait(umg_pipeline_t *p)
{
    if (p->merge_busy) {
        umg_helper_wait(p->merger);
        p->merge_busy = 0;
    }
}

/* The batch's delta (committed) into the tables: on the merger thread when there is one. */
static void merge_start(umg_pipeline_t *p)
{
    merge_wait(p);
    umg_rollup_delta_t *d = p->merging; /* empty: its merge is done */
    p->merging = p->delta;
    p->delta = d;
    if (p->merger != NULL && umg_helper_run(p->merger, merge_job, p) == UMG_OK) {
        p->merge_busy = 1;
    } else {
        merge_job(p);
    }
}

void umg_pipeline_free(umg_pipeline_t *p)
{
    if (p == NULL) {
        return;
    }
    umg_pipeline_stop(p);
    ahead_stop(p);
    umg_helper_free(p->syncer); /* after a sync that runs */
    if (p->reader != NULL) {
        p->ops->reader_close(p->reader);
    }
    umg_event_decoder_free(p->edec);
    umg_touch_decoder_free(p->tdec);
    umg_arena_free(&p->arena);
    umg_event_decoder_free(p->fedec);
    umg_touch_decoder_free(p->ftdec);
    umg_arena_free(&p->farena);
    umg_buf_free(&p->f_ids);
    umg_buf_free(&p->f_touch);
    umg_buf_free(&p->f_events);
    merge_wait(p);
    umg_helper_free(p->merger);
    umg_rollup_delta_free(p->delta);
    umg_rollup_delta_free(p->merging);
    umg_rollup_delta_free(p->fl.touched);
    umg_buf_free(&p->rlog);
    umg_buf_free(&p->live_buf);
    umg_buf_free(&p->fl.rows);
    umg_fraud_counts_free(p->fc);
    umg_free(p->flood);
    pthread_mutex_destroy(&p->fmu);
    umg_free(p);
}

/* ----------------------------------------------------------------- reports */

/*
 * Persistence: each batch appends its rollup changes to the store's rollup log as one blob, in the batch's
 * transaction. Every cfg.rollup_fold_bytes of log or cfg.rollup_fold_ms, a batch starts a fold of the log's blobs:
 * the rows they touched, with their values as of the last of them, are written in key order, cfg.rollup_fold_rows
 * per batch transaction (so a fold never outgrows one), and the last of those drops the blobs (see umg_store.h).
 * One blob per batch costs far less than rewriting each changed row per batch. A blob row: app (4) | table (1) |
 * key (40) | a 16-bit mask of the counters that changed | those counters (8 each): most rows change one or two
 * of their counters.
 */
#define RROW_HEAD (7 + sizeof(umg_rollup_key_t))

typedef int (*rrow_fn)(umg_pipeline_t *p, uint32_t app, umg_rollup_table_t t, const umg_rollup_key_t *k,
                       const int64_t *v, size_t nv);

/* Calls fn for every row of a rollup log blob. */
static int rlog_rows(umg_pipeline_t *p, const uint8_t *b, size_t len, rrow_fn fn)
{
    int64_t v[UMG_ROLLUP_MAXV];
    for (size_t at = 0; at < len;) {
        if (len - at < RROW_HEAD || b[at + 4] >= UMG_RT_COUNT) {
            return UMG_ECORRUPT;
        }
        umg_rollup_table_t t = (umg_rollup_table_t)b[at + 4];
        size_t nv = umg_rollup_nvalues(t), set = 0;
        uint16_t mask;
        memcpy(&mask, b + at + 5 + sizeof(umg_rollup_key_t), 2);
        for (size_t i = 0; i < nv; i++) {
            set += mask >> i & 1;
        }
        if ((mask >> nv) != 0 || len - at - RROW_HEAD < set * 8) {
            return UMG_ECORRUPT;
        }
        uint32_t app;
        umg_rollup_key_t k;
        memcpy(&app, b + at, 4);
        memcpy(&k, b + at + 5, sizeof(k));
        const uint8_t *vp = b + at + RROW_HEAD;
        for (size_t i = 0; i < nv; i++) {
            v[i] = 0;
            if (mask >> i & 1) {
                memcpy(&v[i], vp, 8);
                vp += 8;
            }
        }
        int rc = fn(p, app, t, &k, v, nv);
        if (rc != UMG_OK) {
            return rc;
        }
        at += RROW_HEAD + set * 8;
    }
    return UMG_OK;
}

/* ------------------------------------------------------------ flood figures */

static flood_ent_t *flood_slot(flood_ent_t *t, size_t cap, uint32_t app, uint32_t source, uint32_t site, int32_t day)
{
    uint64_t h = ((uint64_t)app << 32 | source) * UINT64_C(0x9e3779b97f4a7c15) ^
                 ((uint64_t)site << 32 | (uint32_t)day) * UINT64_C(0xc2b2ae3d27d4eb4f);
    h ^= h >> 29;
    for (size_t i = (size_t)h & (cap - 1);; i = (i + 1) & (cap - 1)) {
        flood_ent_t *e = &t[i];
        if (!e->used || (e->app == app && e->source == source && e->site == site && e->day == day)) {
            return e;
        }
    }
}

static int flood_add(umg_pipeline_t *p, uint32_t app, uint32_t source, uint32_t site, int32_t day, int64_t clicks,
                     int64_t installs, int64_t long_installs)
{
    if ((p->flood_n + 1) * 4 > p->flood_cap * 3) {
        size_t cap = p->flood_cap ? p->flood_cap * 2 : 1024;
        flood_ent_t *t = umg_calloc(cap, sizeof(*t));
        if (t == NULL) {
            return UMG_ENOMEM;
        }
        for (size_t i = 0; i < p->flood_cap; i++) {
            if (p->flood[i].used) {
                flood_ent_t *e = &p->flood[i];
                *flood_slot(t, cap, e->app, e->source, e->site, e->day) = *e;
            }
        }
        umg_free(p->flood);
        p->flood = t;
        p->flood_cap = cap;
    }
    flood_ent_t *e = flood_slot(p->flood, p->flood_cap, app, source, site, day);
    if (!e->used) {
        *e = (flood_ent_t){.app = app, .source = source, .site = site, .day = day, .used = 1};
        p->flood_n++;
    }
    e->clicks += clicks;
    e->installs += installs;
    e->long_installs += long_installs;
    return UMG_OK;
}

/* A source/site's figures over the window days ending on day. */
static void flood_sum(const umg_pipeline_t *p, uint32_t app, uint32_t source, uint32_t site, int32_t day,
                      int32_t window, umg_fraud_flood_t *out)
{
    memset(out, 0, sizeof(*out));
    for (int32_t d = day - window + 1; d <= day && p->flood_cap > 0; d++) {
        const flood_ent_t *e = flood_slot(p->flood, p->flood_cap, app, source, site, d);
        if (e->used) {
            out->clicks += e->clicks;
            out->installs += e->installs;
            out->long_installs += e->long_installs;
        }
    }
}

/* What a rollup change adds to the flood figures: every click (accepted, or rejected when it arrived), and the
 * installs by click-to-install time of the click that would have won. */
static int flood_feed(umg_pipeline_t *p, uint32_t app, umg_rollup_table_t t, const umg_rollup_key_t *k, size_t vi,
                      int64_t by)
{
    int64_t c = 0, i = 0, l = 0;
    if (t == UMG_RT_MAIN && vi == UMG_RM_CLICKS) {
        c = by;
    } else if (t == UMG_RT_FRAUD && vi == 0 && k->x[1] == UMG_RF_CLICK && k->x[0] != UMG_FR_CLICK_INJECTION &&
               k->x[0] != UMG_FR_CLICK_FLOODING) {
        c = by;
    } else if (t == UMG_RT_CTIT) {
        i = by;
        l = vi >= UMG_FRAUD_CTIT_LONG_BUCKET ? by : 0;
    } else {
        return UMG_OK;
    }
    return flood_add(p, app, k->dim[UMG_RD_SOURCE], k->dim[UMG_RD_SITE], k->day, c, i, l);
}

static int add_row(umg_pipeline_t *p, uint32_t app, umg_rollup_table_t t, const umg_rollup_key_t *k, const int64_t *v,
                   size_t nv)
{
    int rc = UMG_OK;
    for (size_t i = 0; i < nv && rc == UMG_OK; i++) {
        rc = flood_feed(p, app, t, k, i, v[i]);
    }
    for (size_t i = 0; i < nv && rc == UMG_OK; i++) {
        rc = umg_rollup_add(p->delta, app, t, k, i, v[i]);
    }
    return rc;
}

static int frow_cmp(const void *a, const void *b)
{
    const frow_t *x = a, *y = b;
    int c = memcmp(&x->app, &y->app, 4);
    c = c ? c : (int)x->t - (int)y->t;
    return c ? c : memcmp(&x->k, &y->k, sizeof(x->k));
}

static int fold_row(void *ctx, uint32_t app, umg_rollup_table_t t, const umg_rollup_key_t *k, const int64_t *v,
                    size_t nv)
{
    frow_t r;
    memset(&r, 0, sizeof(r));
    r.app = app;
    r.t = (uint8_t)t;
    r.k = *k;
    memcpy(r.v, v, nv * sizeof(*v));
    return umg_buf_append(ctx, &r, sizeof(r));
}

/* The rows in fl.touched with the tables' values, sorted, as the fold's rows (none stored yet). */
static int fold_rows(umg_pipeline_t *p)
{
    fold_t *f = &p->fl;
    umg_buf_reset(&f->rows);
    int rc = umg_rollup_delta_each(p->rollup, f->touched, fold_row, &f->rows);
    umg_rollup_delta_reset(f->touched);
    size_t n = f->rows.len / sizeof(frow_t);
    if (rc == UMG_OK && n > 1) {
        qsort(f->rows.ptr, n, sizeof(frow_t), frow_cmp);
    }
    f->at = f->next = 0;
    return rc;
}

static int touch_row(umg_pipeline_t *p, uint32_t app, umg_rollup_table_t t, const umg_rollup_key_t *k, const int64_t *v,
                     size_t nv)
{
    (void)v, (void)nv;
    return umg_rollup_add(p->fl.touched, app, t, k, 0, 0);
}

static int touch_blob(void *ctx, uint64_t seq, const void *data, size_t len)
{
    (void)seq;
    return rlog_rows(ctx, data, len, touch_row);
}

/* Loading while a fold is in progress, a blob it covers: the rows up to its mark hold the blob already; the rows
 * after it do not, and are the rest of the fold. */
static int load_covered_row(umg_pipeline_t *p, uint32_t app, umg_rollup_table_t t, const umg_rollup_key_t *k,
                            const int64_t *v, size_t nv)
{
    frow_t r = {.app = app, .t = (uint8_t)t, .k = *k};
    if (frow_cmp(&r, &p->fl.mark) <= 0) {
        return UMG_OK;
    }
    int rc = touch_row(p, app, t, k, v, nv);
    return rc ? rc : add_row(p, app, t, k, v, nv);
}

typedef struct load_scan_s {
    umg_pipeline_t *p;
    uint64_t bytes;
    int resumed; /* the fold in progress has its rows back */
} load_scan_t;

/* The tables now hold the blobs a fold in progress covers: its remaining rows with their values as of its last. */
static int fold_resume(load_scan_t *s)
{
    umg_pipeline_t *p = s->p;
    s->resumed = 1;
    int rc = umg_rollup_merge(p->rollup, p->delta);
    umg_rollup_delta_reset(p->delta);
    return rc ? rc : fold_rows(p);
}

static int load_blob(void *ctx, uint64_t seq, const void *data, size_t len)
{
    load_scan_t *s = ctx;
    umg_pipeline_t *p = s->p;
    s->bytes += len;
    p->rlog_last = seq;
    if (p->fl.active && seq <= p->fl.upto) {
        p->fl.bytes += len;
        return rlog_rows(p, data, len, load_covered_row);
    }
    int rc = p->fl.active && !s->resumed ? fold_resume(s) : UMG_OK;
    return rc ? rc : rlog_rows(p, data, len, add_row);
}

static int load_row(void *ctx, uint32_t app, int table, const umg_rollup_key_t *k, const int64_t *v, size_t nv)
{
    umg_pipeline_t *p = ctx;
    if (table < 0 || table >= UMG_RT_COUNT || nv != umg_rollup_nvalues((umg_rollup_table_t)table)) {
        return UMG_ECORRUPT;
    }
    int rc = UMG_OK;
    for (size_t i = 0; i < nv && rc == UMG_OK; i++) {
        rc = flood_feed(p, app, (umg_rollup_table_t)table, k, i, v[i]);
    }
    return rc ? rc : umg_rollup_load(p->rollup, app, (umg_rollup_table_t)table, k, v);
}

void umg_pipeline_set_live(umg_pipeline_t *p, umg_live_t *live)
{
    p->live = live;
}

int umg_pipeline_set_reports(umg_pipeline_t *p, umg_rollup_t *rollup, umg_tz_cache_t *tzc)
{
    for (size_t i = 0; i < ACT_SLOTS; i++) {
        p->act[i].kind = 0xffff;
    }
    p->nact = 0;
    int rc = umg_rollup_delta_new(&p->delta);
    rc = rc ? rc : umg_rollup_delta_new(&p->merging);
    rc = rc ? rc : umg_rollup_delta_new(&p->fl.touched);
    if (rc == UMG_OK && umg_helper_new(&p->merger) != UMG_OK) {
        p->merger = NULL; /* merged on the pipeline thread */
    }
    umg_store_txn_t *tx = NULL;
    rc = rc ? rc : umg_store_begin(p->store, 0, &tx);
    if (rc == UMG_OK) {
        /* the folded rows, then what the log adds to them */
        load_scan_t sc = {p, 0, 0};
        fold_t *f = &p->fl;
        int table = 0;
        p->rollup = rollup;
        rc = umg_store_rollup_fold_get(tx, &f->upto, &f->mark.app, &table, &f->mark.k);
        f->active = rc == UMG_OK;
        f->mark.t = (uint8_t)table;
        rc = rc == UMG_ENOENT ? UMG_OK : rc;
        rc = rc ? rc : umg_store_rollup_scan(tx, load_row, p);
        rc = rc ? rc : umg_store_rollup_log_scan(tx, load_blob, &sc);
        rc = rc || !f->active || sc.resumed ? rc : fold_resume(&sc);
        rc = rc ? rc : umg_rollup_merge(rollup, p->delta);
        umg_rollup_delta_reset(p->delta);
        umg_store_abort(tx);
        p->rlog_bytes = sc.bytes;
    }
    if (rc != UMG_OK) {
        umg_helper_free(p->merger);
        umg_rollup_delta_free(p->delta);
        umg_rollup_delta_free(p->merging);
        umg_rollup_delta_free(p->fl.touched);
        umg_buf_free(&p->fl.rows);
        memset(&p->fl, 0, sizeof(p->fl));
        p->fl.chunk = p->cfg.rollup_fold_rows;
        p->delta = p->merging = NULL;
        p->merger = NULL;
        p->rollup = NULL;
        umg_free(p->flood);
        p->flood = NULL;
        p->flood_cap = p->flood_n = 0;
        return rc;
    }
    p->tzc = tzc;
    p->napps = 0;
    p->fl.last_ms = (int64_t)(umg_mono_ns() / 1000000);
    return UMG_OK;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static int32_t local_day(const app_ent_t *e, int64_t ts_us)
{
    return e->tz != NULL ? umg_tz_day(e->tz, ts_us) : (int32_t)floor_div(ts_us, INT64_C(86400000000));
}

/* A rollup key: the day, an attribution's five dimensions, the device's country and platform. */
static void rkey(umg_rollup_key_t *k, int32_t day, const umg_attr_attribution_t *a, uint32_t country, uint32_t platform)
{
    memset(k, 0, sizeof(*k));
    k->day = day;
    if (a != NULL) {
        k->dim[UMG_RD_SOURCE] = a->source;
        k->dim[UMG_RD_CAMPAIGN] = a->campaign;
        k->dim[UMG_RD_ADSET] = a->adset;
        k->dim[UMG_RD_AD] = a->ad;
        k->dim[UMG_RD_SITE] = a->site;
    }
    k->dim[UMG_RD_COUNTRY] = country;
    k->dim[UMG_RD_PLATFORM] = platform;
}

static int radd(umg_pipeline_t *p, umg_rollup_table_t t, const umg_rollup_key_t *k, size_t vi, int64_t by)
{
    int rc = umg_rollup_add(p->delta, p->msg->app, t, k, vi, by);
    return rc ? rc : flood_feed(p, p->msg->app, t, k, vi, by);
}

/* The region of a locale ("en_US", "pt-BR", "zh-Hant-TW", "en_US.UTF-8"): the last two-letter subtag after the
 * language, upper-cased into out[3]; "" when there is none. */
static umg_slice_t locale_region(umg_slice_t loc, char out[3])
{
    size_t end = loc.len;
    for (size_t i = 0; i < loc.len; i++) {
        if (loc.ptr[i] == '.' || loc.ptr[i] == '@') {
            end = i;
            break;
        }
    }
    umg_slice_t found = umg_slice("", 0);
    size_t start = 0;
    for (size_t i = 0; i <= end; i++) {
        if (i < end && loc.ptr[i] != '_' && loc.ptr[i] != '-') {
            continue;
        }
        if (start > 0 && i - start == 2) {
            char a = loc.ptr[start], b = loc.ptr[start + 1];
            a = (char)(a >= 'a' && a <= 'z' ? a - 32 : a);
            b = (char)(b >= 'a' && b <= 'z' ? b - 32 : b);
            if (a >= 'A' && a <= 'Z' && b >= 'A' && b <= 'Z') {
                out[0] = a;
                out[1] = b;
                out[2] = '\0';
                found = umg_slice(out, 2);
            }
        }
        start = i + 1;
    }
    return found;
}

/* An amount in micro-units, rounded half up. */
static int64_t revenue_micros(double revenue)
{
    return (int64_t)floor(revenue * 1e6 + 0.5);
}

/* A click's or impression's count on its day, under its own dimensions and its User-Agent's platform. */
static int roll_touch(umg_pipeline_t *p, const umg_attr_touch_t *a)
{
    umg_attr_platform_t pl = (umg_attr_platform_t)(a->fp.os >> 24);
    uint32_t plat;
    int rc = umg_store_intern(p->tx,
                              pl == UMG_ATTR_PLATFORM_IOS       ? UMG_SLICE("ios")
                              : pl == UMG_ATTR_PLATFORM_ANDROID ? UMG_SLICE("android")
                                                                : umg_slice("", 0),
                              &plat);
    if (rc != UMG_OK) {
        return rc;
    }
    umg_attr_attribution_t dims = {
        .source = a->source, .campaign = a->campaign, .adset = a->adset, .ad = a->ad, .site = a->site};
    umg_rollup_key_t k;
    rkey(&k, local_day(app_of(p, a->app), a->ts_us), &dims, 0, plat);
    int fraud = (a->flags & UMG_ATTR_TF_FRAUD) != 0;
    size_t vi = a->type == UMG_ATTR_IMPRESSION ? UMG_RM_IMPRESSIONS : UMG_RM_CLICKS;
    rc = fraud ? UMG_OK : radd(p, UMG_RT_MAIN, &k, vi, 1);
    if (rc == UMG_OK && !fraud && (a->flags & UMG_ATTR_TF_RETARGETING) != 0) {
        rc = radd(p, UMG_RT_REENG_MAIN, &k, vi, 1); /* the re-engagement view's touches */
    }
    if (rc == UMG_OK && a->reason != 0) { /* rejected: not a click of the source's; flagged: both */
        k.x[0] = a->reason;
        k.x[1] = a->type == UMG_ATTR_IMPRESSION ? UMG_RF_IMPRESSION : UMG_RF_CLICK;
        rc = radd(p, UMG_RT_FRAUD, &k, fraud ? 0 : 1, 1);
    }
    return rc;
}

/* The batch's activity rows into the delta; the slots are free again whatever it returns. */
static int act_flush(umg_pipeline_t *p)
{
    int rc = UMG_OK;
    for (size_t i = 0; i < ACT_SLOTS && p->nact > 0; i++) {
        act_ent_t *e = &p->act[i];
        if (e->kind == 0xffff) {
            continue;
        }
        if (rc == UMG_OK) {
            umg_rollup_key_t k;
            memset(&k, 0, sizeof(k));
            k.day = e->day;
            k.x[0] = e->kind;
            rc = umg_rollup_add(p->delta, e->app, UMG_RT_ACTIVITY, &k, e->vi, e->by);
        }
        e->kind = 0xffff;
        p->nact--;
    }
    return rc;
}

static int act_add(umg_pipeline_t *p, int32_t day, uint32_t kind, size_t vi, int64_t by)
{
    uint32_t app = p->msg->app;
    if (p->nact >= ACT_SLOTS / 4 * 3) {
        int rc = act_flush(p);
        if (rc != UMG_OK) {
            return rc;
        }
    }
    size_t j = (size_t)(((uint32_t)day * 0x9E3779B1u ^ app * 0x85EBCA77u ^ kind << 1 ^ (uint32_t)vi) * 0x27D4EB2Fu >>
                        (32 - ACT_BITS));
    for (;; j = (j + 1) % ACT_SLOTS) {
        act_ent_t *e = &p->act[j];
        if (e->kind == 0xffff) {
            *e = (act_ent_t){app, day, (uint16_t)kind, (uint16_t)vi, by};
            p->nact++;
            return UMG_OK;
        }
        if (e->day == day && e->kind == kind && e->vi == vi && e->app == app) {
            e->by += by;
            return UMG_OK;
        }
    }
}

/* The app's activity for a device active on a day it was not active before (before: its active days then). */
static int roll_activity(umg_pipeline_t *p, umg_store_device_t *dev, const umg_store_dayset_t *before, int32_t day)
{
    int rc = act_add(p, day, UMG_RA_DAY, 0, 1);
    /* Trailing windows: the device newly counts on the days D in [day, day + w - 1] whose window [D - w + 1, D]
     * holds no other active day of it, an interval; kept as +1 at its start and -1 after its end. */
    int32_t prev = umg_store_dayset_prev(before, day), next = umg_store_dayset_next(before, day);
    static const struct {
        uint32_t kind;
        int32_t w;
    } win[] = {{UMG_RA_WEEK7, 7}, {UMG_RA_MONTH30, 30}};
    for (size_t i = 0; i < UMG_ARRAY_SIZE(win) && rc == UMG_OK; i++) {
        int64_t lo = prev == INT32_MIN ? day : UMG_MAX((int64_t)day, (int64_t)prev + win[i].w);
        int64_t hi =
            next == INT32_MAX ? (int64_t)day + win[i].w - 1 : UMG_MIN((int64_t)day + win[i].w - 1, (int64_t)next - 1);
        if (lo <= hi) {
            rc = act_add(p, (int32_t)lo, win[i].kind, 0, 1);
            rc = rc ? rc : act_add(p, (int32_t)(hi + 1), win[i].kind, 0, -1);
        }
    }
    int32_t ws = umg_date_week_start(day), ms = umg_date_month_start(day);
    int y, m, d;
    umg_date_civil(day, &y, &m, &d);
    if (rc == UMG_OK && umg_store_dayset_add(&dev->weeks, (int32_t)floor_div((int64_t)ws + 3, 7)) != 0) {
        rc = act_add(p, ws, UMG_RA_WEEK, 0, 1);
    }
    if (rc == UMG_OK && umg_store_dayset_add(&dev->months, y * 12 + m - 1) != 0) {
        rc = act_add(p, ms, UMG_RA_MONTH, 0, 1);
    }
    /* New devices: counted in the periods of their earliest active day, moved when an earlier one arrives. */
    if (rc == UMG_OK && (!dev->has_first || day < dev->first_day)) {
        if (dev->has_first) {
            int32_t f = dev->first_day;
            rc = act_add(p, f, UMG_RA_DAY, 1, -1);
            rc = rc ? rc : act_add(p, umg_date_week_start(f), UMG_RA_WEEK, 1, -1);
            rc = rc ? rc : act_add(p, umg_date_month_start(f), UMG_RA_MONTH, 1, -1);
        }
        rc = rc ? rc : act_add(p, day, UMG_RA_DAY, 1, 1);
        rc = rc ? rc : act_add(p, ws, UMG_RA_WEEK, 1, 1);
        rc = rc ? rc : act_add(p, ms, UMG_RA_MONTH, 1, 1);
        dev->first_day = day;
        dev->has_first = 1;
    }
    return rc;
}

/*
 * Re-engagement credit (rule 5, docs/attribution.md): a session, event or purchase while the device's latest
 * re-engagement runs (from its session, inclusive, for reengagement_window_days) counts again, under the
 * retargeting click, in the re-engagement tables. Distinct devices per day through the device's day sets.
 */
static int roll_reeng(umg_pipeline_t *p, const app_ent_t *e, const umg_event_t *ev, umg_store_device_t *dev,
                      int32_t day)
{
    umg_attr_credit_t cr;
    if (umg_attr_credit_event(&e->s, &dev->attr, ev->ts_us, &cr) != UMG_OK || !cr.reeng_active) {
        return UMG_OK;
    }
    umg_rollup_key_t k;
    rkey(&k, day, &cr.reeng, dev->country, dev->platform);
    int added = 0;
    int rc = umg_store_event_day(p->tx, dev, UMG_STORE_EVDAY_REENG_ACTIVE, day, &added);
    rc = rc ? rc : added ? radd(p, UMG_RT_REENG_MAIN, &k, UMG_RM_ACTIVE, 1) : UMG_OK;
    if (rc == UMG_OK && ev->type == UMG_EV_SESSION) {
        rc = radd(p, UMG_RT_REENG_MAIN, &k, UMG_RM_SESSIONS, 1);
    }
    if (rc == UMG_OK && (ev->type == UMG_EV_EVENT || ev->type == UMG_EV_PURCHASE) && ev->name.len > 0) {
        umg_rollup_key_t ek = k;
        rc = umg_store_intern(p->tx, ev->name, &ek.x[0]);
        rc = rc ? rc : radd(p, UMG_RT_REENG_EVENT, &ek, 0, 1);
        rc = rc ? rc : umg_store_event_day(p->tx, dev, UMG_STORE_EVDAY_REENG | ek.x[0], day, &added);
        rc = rc ? rc : added ? radd(p, UMG_RT_REENG_EVENT, &ek, 1, 1) : UMG_OK;
    }
    if (rc == UMG_OK && ev->has_revenue) {
        int64_t micros = revenue_micros(ev->revenue);
        umg_rollup_key_t rk = k;
        rc = umg_store_intern(p->tx, umg_slice(ev->currency, strnlen(ev->currency, 3)), &rk.x[0]);
        rc = rc ? rc : radd(p, UMG_RT_REENG_REVENUE, &rk, 0, micros);
        rc = rc ? rc : radd(p, UMG_RT_REENG_REVENUE, &rk, 1, 1);
        if (rc == UMG_OK && micros > 0) {
            rc = umg_store_event_day(p->tx, dev, UMG_STORE_EVDAY_REENG_PAYING, day, &added);
            rc = rc ? rc : added ? radd(p, UMG_RT_REENG_MAIN, &k, UMG_RM_PAYING, 1) : UMG_OK;
        }
    }
    return rc;
}

/*
 * What an install, session or event adds to the rollups (docs/reports.md), and the device's report state:
 * called after the decision was applied to dev, before dev is written back.
 */
static int roll_event(umg_pipeline_t *p, const umg_event_t *ev, umg_store_device_t *dev, int known,
                      const umg_attr_decision_t *d)
{
    const app_ent_t *e = app_of(p, p->msg->app);
    int rc;
    if (!known) {
        char reg[3];
        umg_slice_t pl = ev->device.platform.len ? ev->device.platform : umg_slice(e->platform, strlen(e->platform));
        rc = umg_store_intern(p->tx, locale_region(ev->device.locale, reg), &dev->country);
        rc = rc ? rc : umg_store_intern(p->tx, pl, &dev->platform);
        if (rc != UMG_OK) {
            return rc;
        }
    }
    int32_t day = local_day(e, ev->ts_us);
    const umg_attr_attribution_t *ia = &dev->attr.install;
    umg_rollup_key_t k;
    rkey(&k, day, ia, dev->country, dev->platform);
    if (dev->fraud_reason != 0) {
        /* A device whose install was rejected: none of its activity counts, only the rejection. */
        k.x[0] = dev->fraud_reason;
        k.x[1] = ev->type == UMG_EV_INSTALL ? UMG_RF_INSTALL : UMG_RF_EVENT;
        return radd(p, UMG_RT_FRAUD, &k, 0, 1);
    }
    if (p->fr.flag != 0 && ev->type != UMG_EV_INSTALL) {
        umg_rollup_key_t fk = k;
        fk.x[0] = p->fr.flag;
        fk.x[1] = UMG_RF_EVENT;
        rc = radd(p, UMG_RT_FRAUD, &fk, 1, 1);
        if (rc != UMG_OK) {
            return rc;
        }
    }
    int cohort_new = 0;
    switch (d->outcome) {
    case UMG_ATTR_OUT_INSTALL:
    case UMG_ATTR_OUT_IMPLICIT_INSTALL:
        rc = radd(p, UMG_RT_MAIN, &k, ia->match == UMG_ATTR_MATCH_NONE ? UMG_RM_ORGANIC_INSTALLS : UMG_RM_INSTALLS, 1);
        cohort_new = 1;
        break;
    case UMG_ATTR_OUT_REATTRIBUTED:
        rc = radd(p, UMG_RT_MAIN, &k, UMG_RM_REATTRIBUTIONS, 1);
        cohort_new = 1;
        break;
    case UMG_ATTR_OUT_REINSTALL: rc = radd(p, UMG_RT_MAIN, &k, UMG_RM_REINSTALLS, 1); break;
    case UMG_ATTR_OUT_REENGAGEMENT: {
        umg_rollup_key_t rk;
        rkey(&rk, day, &dev->attr.reeng, dev->country, dev->platform);
        rc = radd(p, UMG_RT_MAIN, &rk, UMG_RM_REENGAGEMENTS, 1);
        rc = rc ? rc : radd(p, UMG_RT_REENG_MAIN, &rk, UMG_RM_REENGAGEMENTS, 1);
        break;
    }
    default: rc = UMG_OK; break;
    }
    if (rc != UMG_OK) {
        return rc;
    }
    umg_rollup_key_t ck; /* the cohort's row; x[0] = days since install */
    rkey(&ck, dev->cohort_day, ia, dev->country, dev->platform);
    if (cohort_new) {
        dev->cohort_day = day;
        memset(dev->cohort_bits, 0, sizeof(dev->cohort_bits));
        ck.day = day;
        rc = radd(p, UMG_RT_COHORT, &ck, 0, 1);
    }
    int64_t dsi = dev->attr.install_ts_us != 0 ? (int64_t)day - dev->cohort_day : -1;
    int in_cohort = dsi >= 0 && dsi < UMG_ROLLUP_COHORT_DAYS;
    ck.x[0] = in_cohort ? (uint32_t)dsi : 0;
    umg_store_dayset_t before = dev->active;
    if (rc == UMG_OK && umg_store_dayset_add(&dev->active, day) != 0) {
        rc = radd(p, UMG_RT_MAIN, &k, UMG_RM_ACTIVE, 1);
        rc = rc ? rc : roll_activity(p, dev, &before, day);
    }
    if (rc == UMG_OK && in_cohort) {
        uint64_t bit = UINT64_C(1) << (dsi & 63);
        if (!(dev->cohort_bits[dsi >> 6] & bit)) {
            dev->cohort_bits[dsi >> 6] |= bit;
            rc = radd(p, UMG_RT_COHORT_DAY, &ck, 0, 1);
        }
    }
    if (rc == UMG_OK && ev->type == UMG_EV_SESSION) {
        rc = radd(p, UMG_RT_MAIN, &k, UMG_RM_SESSIONS, 1);
        if (rc == UMG_OK && in_cohort) {
            rc = radd(p, UMG_RT_COHORT_DAY, &ck, 1, 1);
        }
    }
    /* The device's timeline, for funnels: installs (and implicit ones), named events and purchases. */
    if (rc == UMG_OK && (ev->type == UMG_EV_INSTALL || d->outcome == UMG_ATTR_OUT_IMPLICIT_INSTALL)) {
        umg_store_step_t st = {.ts_us = ev->ts_us, .kind = UMG_STORE_STEP_INSTALL};
        rc = umg_store_timeline_add(p->tx, p->msg->app, dev->key, p->msg->offset, &st);
    }
    if (rc == UMG_OK && (ev->type == UMG_EV_EVENT || ev->type == UMG_EV_PURCHASE) && ev->name.len > 0) {
        umg_rollup_key_t ek = k;
        rc = umg_store_intern(p->tx, ev->name, &ek.x[0]);
        umg_store_step_t st = {.ts_us = ev->ts_us,
                               .name = ek.x[0],
                               .kind = ev->type == UMG_EV_PURCHASE ? UMG_STORE_STEP_PURCHASE : UMG_STORE_STEP_EVENT};
        rc = rc ? rc : umg_store_timeline_add(p->tx, p->msg->app, dev->key, p->msg->offset, &st);
        rc = rc ? rc : radd(p, UMG_RT_EVENT, &ek, 0, 1);
        int added = 0;
        rc = rc ? rc : umg_store_event_day(p->tx, dev, ek.x[0], day, &added);
        if (rc == UMG_OK && added != 0) {
            rc = radd(p, UMG_RT_EVENT, &ek, 1, 1);
        }
    }
    if (rc == UMG_OK && ev->has_revenue) {
        int64_t micros = revenue_micros(ev->revenue);
        uint32_t cur;
        rc = umg_store_intern(p->tx, umg_slice(ev->currency, strnlen(ev->currency, 3)), &cur);
        umg_rollup_key_t rk = k;
        rk.x[0] = cur;
        rc = rc ? rc : radd(p, UMG_RT_REVENUE, &rk, 0, micros);
        rc = rc ? rc : radd(p, UMG_RT_REVENUE, &rk, 1, 1);
        if (rc == UMG_OK && in_cohort) {
            ck.x[1] = cur;
            rc = radd(p, UMG_RT_COHORT_REV, &ck, 0, micros);
            rc = rc ? rc : radd(p, UMG_RT_COHORT_REV, &ck, 1, 1);
        }
        if (rc == UMG_OK && micros > 0 && umg_store_dayset_add(&dev->paying, day) != 0) {
            rc = radd(p, UMG_RT_MAIN, &k, UMG_RM_PAYING, 1);
        }
    }
    if (rc == UMG_OK && ev->type != UMG_EV_INSTALL) {
        rc = roll_reeng(p, e, ev, dev, day);
    }
    return rc;
}

/* ------------------------------------------------------------------- fraud */

void umg_pipeline_set_fraud(umg_pipeline_t *p, const umg_pipeline_fraud_t *f)
{
    p->fh = *f;
}

/* A rule fired: the first rejecting one decides, else the first flagging one. */
/* A rule fired: the reason kept is the first such rule in the order of docs/fraud.md's table (the order of the
 * reason codes), whatever order they are checked in. */
static void fhit(fraud_t *fr, const umg_fraud_settings_t *fs, unsigned rule)
{
    fr->rules |= (uint16_t)(1u << rule);
    if (fs->rule[rule].action == UMG_FA_REJECT) {
        fr->rej = fr->rej && fr->rej < rule ? fr->rej : rule;
    } else {
        fr->flag = fr->flag && fr->flag < rule ? fr->flag : rule;
    }
}

static int ip_listed(const umg_pipeline_t *p, umg_slice_t ip)
{
    return ip.len != 0 && p->fh.ip_listed != NULL && p->fh.ip_listed(p->fh.ctx, ip, NULL) == 1;
}

static int bot_ua(const umg_pipeline_t *p, umg_slice_t ua)
{
    return ua.len != 0 && p->fh.bot_ua != NULL && p->fh.bot_ua(p->fh.ctx, ua) == 1;
}

/* The counters a click feeds, the same live and on warm-up: c[0] the device's clicks in its hour, c[1] the IP's
 * clicks in its minute (0 when not counted). */
static void observe_click(umg_pipeline_t *p, uint32_t app, uint64_t dev, uint64_t ip, int64_t ts, int64_t recv,
                          uint32_t c[2])
{
    int oom = 0;
    c[0] = c[1] = 0;
    if (!umg_fraud_in_window(ts, recv, p->cfg.fraud_horizon_ms * 1000)) {
        return;
    }
    c[0] = umg_fraud_counts_add(p->fc, UMG_FW_CLICK_DEVICE_HOUR, app, dev, ts, recv, &oom);
    c[1] = umg_fraud_counts_add(p->fc, UMG_FW_CLICK_IP_MINUTE, app, ip, ts, recv, &oom);
    umg_fraud_counts_add(p->fc, UMG_FW_CLICK_IP_HOUR, app, ip, ts, recv, &oom);
    if (oom) {
        umg_log(UMG_LOG_WARN, "fraud", "out of memory counting clicks: a click went uncounted");
    }
}

/* The counters an install feeds: c[0] installs from its IP in the hour, c[1] from its network, c[2] from its IP +
 * User-Agent in the UTC day (0 when not counted). */
static void observe_install(umg_pipeline_t *p, uint32_t app, umg_slice_t ip, umg_slice_t ua, int64_t ts, int64_t recv,
                            uint32_t c[3])
{
    int oom = 0;
    c[0] = c[1] = c[2] = 0;
    if (!umg_fraud_in_window(ts, recv, p->cfg.fraud_horizon_ms * 1000)) {
        return;
    }
    uint64_t iph = umg_attr_ip_hash(ip);
    c[0] = umg_fraud_counts_add(p->fc, UMG_FW_INSTALL_IP_HOUR, app, iph, ts, recv, &oom);
    c[1] = umg_fraud_counts_add(p->fc, UMG_FW_INSTALL_NET_HOUR, app, umg_fraud_net_key(ip), ts, recv, &oom);
    c[2] = umg_fraud_counts_add(p->fc, UMG_FW_INSTALL_FP_DAY, app, iph ? umg_hash64(ua.ptr, ua.len, iph) : 0, ts, recv,
                                &oom);
    if (oom) {
        umg_log(UMG_LOG_WARN, "fraud", "out of memory counting installs: an install went uncounted");
    }
}

static uint64_t touch_device_key(const umg_touch_t *t)
{
    uint64_t ids[UMG_ATTR_MAX_IDS];
    umg_slice_t v[UMG_ATTR_ID_KINDS] = {t->idfa, t->gaid, t->oaid, t->android_id, t->idfv, t->custom_id};
    umg_attr_ids_collect(ids, v);
    return ids[0];
}

/* The rules a touch meets when it arrives: blocked_ip, bot_user_agent, click_spam. */
static void fraud_touch(umg_pipeline_t *p, const umg_touch_t *t, umg_attr_touch_t *a)
{
    const umg_fraud_settings_t *fs = &app_of(p, a->app)->fs;
    fraud_t fr = {0};
    uint32_t c[2] = {0, 0};
    int click = a->type == UMG_ATTR_CLICK;
    if (click) {
        observe_click(p, a->app, a->ids[0], a->fp.ip, a->ts_us, p->msg->recv_us, c); /* fp.ip: the IP's hash */
    }
    if (fs->rule[UMG_FR_BLOCKED_IP].enabled && ip_listed(p, t->ip)) {
        fhit(&fr, fs, UMG_FR_BLOCKED_IP);
    }
    if (fs->rule[UMG_FR_BOT_USER_AGENT].enabled &&
        (bot_ua(p, t->user_agent) ||
         (click && t->via_link && t->user_agent.len == 0 && fs->p[UMG_FP_BOT_EMPTY_UA] != 0))) {
        fhit(&fr, fs, UMG_FR_BOT_USER_AGENT);
    }
    if (fs->rule[UMG_FR_CLICK_SPAM].enabled && click &&
        (c[0] > fs->p[UMG_FP_SPAM_DEVICE_HOUR] || c[1] > fs->p[UMG_FP_SPAM_IP_MINUTE])) {
        fhit(&fr, fs, UMG_FR_CLICK_SPAM);
    }
    if (fr.rej) {
        a->flags |= UMG_ATTR_TF_FRAUD;
        a->reason = (uint8_t)fr.rej;
        count(p, S_FRAUD_TOUCHES);
    } else if (fr.flag) {
        a->reason = (uint8_t)fr.flag;
    }
}

static void reject_touch(fraud_t *fr, umg_attr_touch_t *t, unsigned reason)
{
    t->flags |= UMG_ATTR_TF_FRAUD;
    if (fr->nrej < UMG_STORE_MAX_REJECTED) {
        fr->rejected[fr->nrej++] = (umg_store_rejected_t){.touch_id = t->touch_id, .reason = (uint8_t)reason};
    }
}

static float flog10s(int64_t us)
{
    return (float)log10(1.0 + (double)(us < 0 ? -us : us) / 1e6);
}

/*
 * Before an install is decided: its counters, the click that would win without the fraud rules (for the
 * click-to-install histogram and the features), click injection (the injected clicks leave the candidates), and
 * the install's own rules: blocked_ip, bot_user_agent, device_farm, time_anomaly. Fills p->fr.
 */
static void fraud_install_pre(umg_pipeline_t *p, const umg_event_t *ev, const umg_attr_obs_t *obs,
                              const umg_attr_settings_t *s, size_t n)
{
    fraud_t *fr = &p->fr;
    const app_ent_t *e = app_of(p, obs->app);
    const umg_fraud_settings_t *fs = &e->fs;
    const umg_bus_msg_t *m = p->msg;
    const uint32_t *c = fr->ic;
    fr->ntouches = n;
    size_t w;
    umg_attr_match_t mt = UMG_ATTR_MATCH_NONE;
    if (umg_attr_select(s, p->touches, n, obs, &w, &mt, NULL) == UMG_OK && p->touches[w].type == UMG_ATTR_CLICK) {
        fr->has_raw = 1;
        fr->raw = p->touches[w];
    }
    int64_t begin = ev->referrer_install_begin_ts_us;
    for (size_t i = 0; i < n && fs->rule[UMG_FR_CLICK_INJECTION].enabled; i++) {
        umg_attr_touch_t *t = &p->touches[i];
        if (t->type != UMG_ATTR_CLICK || (t->flags & UMG_ATTR_TF_FRAUD) ||
            umg_attr_touch_match(s, t, obs) == UMG_ATTR_MATCH_NONE) {
            continue;
        }
        int close = obs->ts_us - t->ts_us < (int64_t)(fs->p[UMG_FP_INJ_MIN_CTIT_S] * 1e6);
        int after = fs->p[UMG_FP_INJ_INSTALL_BEGIN] != 0 && begin != 0 && t->ts_us > begin;
        if (close || after) {
            if (fs->rule[UMG_FR_CLICK_INJECTION].action == UMG_FA_REJECT) {
                fr->rules |= 1u << UMG_FR_CLICK_INJECTION;
                reject_touch(fr, t, UMG_FR_CLICK_INJECTION);
            } else {
                fhit(fr, fs, UMG_FR_CLICK_INJECTION);
            }
        }
    }
    int listed = ip_listed(p, ev->ip), bot = bot_ua(p, ev->user_agent);
    if (fs->rule[UMG_FR_BLOCKED_IP].enabled && listed) {
        fhit(fr, fs, UMG_FR_BLOCKED_IP);
    }
    if (fs->rule[UMG_FR_BOT_USER_AGENT].enabled && bot) {
        fhit(fr, fs, UMG_FR_BOT_USER_AGENT);
    }
    if (fs->rule[UMG_FR_DEVICE_FARM].enabled &&
        (c[0] > fs->p[UMG_FP_FARM_IP_HOUR] || c[2] > fs->p[UMG_FP_FARM_FP_DAY])) {
        fhit(fr, fs, UMG_FR_DEVICE_FARM);
    }
    if (fs->rule[UMG_FR_TIME_ANOMALY].enabled &&
        ev->ts_us - m->recv_us > (int64_t)(fs->p[UMG_FP_TIME_FUTURE_S] * 1e6)) {
        fhit(fr, fs, UMG_FR_TIME_ANOMALY);
    }

    /* The model's features (umg_fraud.h). */
    float *x = fr->x;
    const float nan = NAN;
    for (size_t i = 0; i < UMG_FRAUD_NF; i++) {
        x[i] = nan;
    }
    if (fr->has_raw) {
        x[UMG_FF_CTIT_LOG10_S] = flog10s(obs->ts_us - fr->raw.ts_us);
        x[UMG_FF_MATCH_CLASS] = (float)mt;
        umg_fraud_flood_t f;
        flood_sum(p, obs->app, fr->raw.source, fr->raw.site, local_day(e, obs->ts_us),
                  (int32_t)fs->p[UMG_FP_FLOOD_WINDOW_DAYS], &f);
        if (f.clicks > 0) {
            x[UMG_FF_SOURCE_CTI_RATE] = (float)((double)f.installs / (double)f.clicks);
        }
        if (f.installs > 0) {
            x[UMG_FF_SOURCE_LONG_SHARE] = (float)((double)f.long_installs / (double)f.installs);
        }
        x[UMG_FF_CLICK_AFTER_BEGIN] = begin != 0 ? (float)(fr->raw.ts_us > begin) : nan;
    } else {
        x[UMG_FF_MATCH_CLASS] = 0;
    }
    /* The windowed counters know nothing of an install dated more than fraud.horizon before it came (a
     * backfill): their features are unknown then, not 0 (found in review). An install it counted is at least 1. */
    const int counted = umg_fraud_in_window(obs->ts_us, m->recv_us, p->cfg.fraud_horizon_ms * 1000);
    x[UMG_FF_CLICKS_DEVICE_1H] =
        counted ? (float)umg_fraud_counts_get(p->fc, UMG_FW_CLICK_DEVICE_HOUR, obs->app, obs->ids[0], obs->ts_us) : nan;
    uint32_t day_clicks = 0; /* the device's own clicks among its candidates, in the day before the install */
    for (size_t i = 0; i < n; i++) {
        const umg_attr_touch_t *t = &p->touches[i];
        int mine = 0;
        for (int a = 0; a < UMG_ATTR_MAX_IDS && t->ids[a] != 0 && !mine; a++) {
            for (int b = 0; b < UMG_ATTR_MAX_IDS && obs->ids[b] != 0 && !mine; b++) {
                mine = t->ids[a] == obs->ids[b];
            }
        }
        day_clicks +=
            mine && t->type == UMG_ATTR_CLICK && t->ts_us <= obs->ts_us && obs->ts_us - t->ts_us < INT64_C(86400000000);
    }
    x[UMG_FF_CLICKS_DEVICE_24H] = (float)day_clicks;

    x[UMG_FF_CLICKS_IP_1M] =
        counted ? (float)umg_fraud_counts_get(p->fc, UMG_FW_CLICK_IP_MINUTE, obs->app, obs->fp.ip, obs->ts_us) : nan;
    x[UMG_FF_CLICKS_IP_1H] =
        counted ? (float)umg_fraud_counts_get(p->fc, UMG_FW_CLICK_IP_HOUR, obs->app, obs->fp.ip, obs->ts_us) : nan;
    x[UMG_FF_INSTALLS_IP_1H] = c[0] != 0 ? (float)c[0] : nan;
    x[UMG_FF_INSTALLS_NET_1H] = c[1] != 0 ? (float)c[1] : nan;
    x[UMG_FF_INSTALLS_FP_24H] = c[2] != 0 ? (float)c[2] : nan;
    umg_attr_ua_t ua;
    if (umg_attr_ua_parse(ev->user_agent, &ua) == UMG_OK) {
        umg_attr_platform_t dp = umg_attr_platform_parse(ev->device.platform);
        x[UMG_FF_UA_PLATFORM_MISMATCH] = dp != UMG_ATTR_PLATFORM_UNKNOWN ? (float)(dp != ua.platform) : nan;
        uint32_t um = umg_attr_model_hash(ua.model), dm = umg_attr_model_hash(ev->device.model);
        x[UMG_FF_UA_MODEL_MISMATCH] = um != 0 && dm != 0 ? (float)(um != dm) : nan;
    }
    int64_t day_us = INT64_C(86400000000);
    x[UMG_FF_HOUR_OF_DAY] = (float)(((obs->ts_us % day_us) + day_us) % day_us / INT64_C(3600000000));
    x[UMG_FF_UA_EMPTY] = (float)(ev->user_agent.len == 0);
    x[UMG_FF_IP_LISTED] = (float)listed;
    x[UMG_FF_BOT_UA] = (float)bot;
    x[UMG_FF_TIME_SKEW_LOG10_S] = flog10s(m->recv_us - ev->ts_us);
    x[UMG_FF_REFERRER] = (float)(ev->has_referrer != 0);
}

typedef struct retro_s {
    umg_buf_t hits; /* umg_store_decision_t copies to flag */
    int rc;
} retro_t;

static int is_long_flood_install(const umg_store_decision_t *d)
{
    const umg_attr_attribution_t *x = &d->d.attr;
    return (d->d.outcome == UMG_ATTR_OUT_INSTALL || d->d.outcome == UMG_ATTR_OUT_REATTRIBUTED) &&
           x->touch_type == UMG_ATTR_CLICK &&
           umg_fraud_ctit_bucket(d->d.ts_us - x->touch_ts_us) >= UMG_FRAUD_CTIT_LONG_BUCKET;
}

static int retro_row(void *ctx, const umg_store_decision_t *d)
{
    retro_t *r = ctx;
    if (d->fraud_status == UMG_STORE_FRAUD_CLEAN && is_long_flood_install(d)) {
        r->rc = umg_buf_append(&r->hits, d, sizeof(*d));
    }
    return r->rc != UMG_OK;
}

/*
 * Post-attribution flooding: once a source/site is seen to flood, the long-CTIT installs it won earlier (not
 * looked at before: the store notes up to when it looked; at most the touch retention back) are flagged too. They keep
 * their attribution; only installs decided from now on are rejected when the rule rejects (docs/fraud.md).
 */
static int flood_retro(umg_pipeline_t *p, const umg_attr_attribution_t *a, int64_t ts_us)
{
    const app_ent_t *e = app_of(p, p->msg->app);
    uint8_t key[14] = {'f', 'l'};
    memcpy(key + 2, &p->msg->app, 4);
    memcpy(key + 6, &a->source, 4);
    memcpy(key + 10, &a->site, 4);
    int64_t until = 0;
    int rc = umg_store_note_get(p->tx, key, sizeof(key), &until);
    if (rc != UMG_OK && rc != UMG_ENOENT) {
        return rc;
    }
    /* Back to what was looked at before, at most as far as touches are kept: the source's earlier floods too. */
    int64_t from = UMG_MAX(until, ts_us - p->cfg.touch_retention_ms * 1000);
    if (from >= ts_us) {
        return UMG_OK;
    }
    retro_t r = {0};
    rc = umg_store_click_installs_scan(p->tx, p->msg->app, a->source, a->site, from, ts_us, retro_row, &r);
    rc = rc == 1 ? r.rc : rc;
    size_t nh = r.hits.len / sizeof(umg_store_decision_t);
    for (size_t i = 0; i < nh && rc == UMG_OK; i++) {
        umg_store_decision_t *d = (umg_store_decision_t *)(void *)r.hits.ptr + i;
        d->fraud_status = UMG_STORE_FRAUD_FLAGGED;
        d->fraud_reason = UMG_FR_CLICK_FLOODING;
        d->fraud_rules |= 1u << UMG_FR_CLICK_FLOODING;
        rc = umg_store_decision_put(p->tx, d);
        umg_store_device_t dev;
        if (rc == UMG_OK && p->rollup != NULL && umg_store_device_get(p->tx, d->app, d->device_key, &dev) == UMG_OK) {
            umg_rollup_key_t k;
            rkey(&k, local_day(e, d->d.ts_us), &d->d.attr, dev.country, dev.platform);
            k.x[0] = UMG_FR_CLICK_FLOODING;
            k.x[1] = UMG_RF_INSTALL;
            rc = radd(p, UMG_RT_FRAUD, &k, 1, 1);
        }
    }
    umg_buf_free(&r.hits);
    return rc ? rc : umg_store_note_put(p->tx, key, sizeof(key), ts_us);
}

/*
 * Click flooding, once an install is decided: when the winning click came a day or more before the install
 * and its source/site floods, the install is flagged, or the click leaves the candidates (1: decide again),
 * and the source/site's earlier long-CTIT installs in the window are flagged. Negative: an error.
 */
static int fraud_flood(umg_pipeline_t *p, const umg_attr_decision_t *d, size_t n)
{
    const app_ent_t *e = app_of(p, p->msg->app);
    const umg_fraud_settings_t *fs = &e->fs;
    const umg_attr_attribution_t *a = &d->attr;
    if (!fs->rule[UMG_FR_CLICK_FLOODING].enabled || p->rollup == NULL || a->touch_type != UMG_ATTR_CLICK ||
        (d->outcome != UMG_ATTR_OUT_INSTALL && d->outcome != UMG_ATTR_OUT_REATTRIBUTED &&
         d->outcome != UMG_ATTR_OUT_IMPLICIT_INSTALL) ||
        umg_fraud_ctit_bucket(d->ts_us - a->touch_ts_us) < UMG_FRAUD_CTIT_LONG_BUCKET) {
        return 0;
    }
    umg_fraud_flood_t f;
    flood_sum(p, p->msg->app, a->source, a->site, local_day(e, d->ts_us), (int32_t)fs->p[UMG_FP_FLOOD_WINDOW_DAYS], &f);
    if (!umg_fraud_flood_flagged(fs, &f)) {
        return 0;
    }
    int rc = flood_retro(p, a, d->ts_us);
    if (rc != UMG_OK) {
        return rc;
    }
    fraud_t *fr = &p->fr;
    if (fs->rule[UMG_FR_CLICK_FLOODING].action == UMG_FA_FLAG) {
        fhit(fr, fs, UMG_FR_CLICK_FLOODING);
        return 0;
    }
    fr->rules |= 1u << UMG_FR_CLICK_FLOODING;
    for (size_t i = 0; i < n; i++) {
        if (p->touches[i].touch_id == a->touch_id) {
            reject_touch(fr, &p->touches[i], UMG_FR_CLICK_FLOODING);
            return 1;
        }
    }
    return 0;
}

/* The model, once the rules are done: scores the install (shadow: a sample), and in enforce mode rejects it at
 * or over the threshold. */
static void fraud_score(umg_pipeline_t *p, const umg_event_t *ev)
{
    const umg_fraud_settings_t *fs = &app_of(p, p->msg->app)->fs;
    fraud_t *fr = &p->fr;
    if (fs->model_mode == UMG_FM_OFF || p->fh.score == NULL ||
        (fs->model_mode == UMG_FM_SHADOW && !umg_fraud_in_sample(&ev->event_id, fs->model_shadow_sample))) {
        return;
    }
    double sc;
    if (p->fh.score(p->fh.ctx, p->msg->app, fr->x, UMG_FRAUD_NF, &sc) != UMG_OK) {
        return;
    }
    fr->score = sc;
    if (fs->model_mode == UMG_FM_ENFORCE && sc >= fs->model_threshold) {
        fr->rules |= 1u << UMG_FR_MODEL;
        fr->rej = fr->rej ? fr->rej : UMG_FR_MODEL;
    }
}

/* The fraud rows of an install (before the device's own rows): the click-to-install histogram of the click that
 * would have won, the model's scores, the clicks rejected at decision time, and a flag. */
static int roll_fraud_install(umg_pipeline_t *p, const umg_store_device_t *dev, const umg_attr_decision_t *d,
                              int32_t day)
{
    const fraud_t *fr = &p->fr;
    const app_ent_t *e = app_of(p, p->msg->app);
    umg_rollup_key_t k;
    int rc = UMG_OK;
    int fresh = d->outcome == UMG_ATTR_OUT_INSTALL || d->outcome == UMG_ATTR_OUT_REATTRIBUTED;
    if (fr->has_raw && fresh) {
        umg_attr_attribution_t dims = {.source = fr->raw.source,
                                       .campaign = fr->raw.campaign,
                                       .adset = fr->raw.adset,
                                       .ad = fr->raw.ad,
                                       .site = fr->raw.site};
        rkey(&k, day, &dims, dev->country, dev->platform);
        rc = radd(p, UMG_RT_CTIT, &k, umg_fraud_ctit_bucket(d->ts_us - fr->raw.ts_us), 1);
    }
    for (uint32_t i = 0; i < fr->nrej && rc == UMG_OK; i++) {
        const umg_attr_touch_t *t = NULL;
        for (size_t j = 0; j < fr->ntouches && t == NULL; j++) {
            t = p->touches[j].touch_id == fr->rejected[i].touch_id ? &p->touches[j] : NULL;
        }
        if (t != NULL) {
            umg_attr_attribution_t dims = {
                .source = t->source, .campaign = t->campaign, .adset = t->adset, .ad = t->ad, .site = t->site};
            rkey(&k, local_day(e, t->ts_us), &dims, 0, 0);
            k.x[0] = fr->rejected[i].reason;
            k.x[1] = UMG_RF_CLICK;
            rc = radd(p, UMG_RT_FRAUD, &k, 0, 1);
        }
    }
    rkey(&k, day, &dev->attr.install, dev->country, dev->platform);
    if (rc == UMG_OK && fr->score >= 0) {
        int over = fr->score >= e->fs.model_threshold, ruled = fr->rej != 0 && fr->rej != UMG_FR_MODEL;
        rc = radd(p, UMG_RT_SCORE, &k, umg_fraud_score_bucket(fr->score), 1);
        k.x[0] = 1;
        rc = rc ? rc : radd(p, UMG_RT_SCORE, &k, 0, 1);
        rc = rc ? rc : over ? radd(p, UMG_RT_SCORE, &k, 1, 1) : UMG_OK;
        rc = rc ? rc : ruled ? radd(p, UMG_RT_SCORE, &k, over ? 2 : 3, 1) : UMG_OK;
        k.x[0] = 0;
    }
    if (rc == UMG_OK && fr->flag && !fr->rej) {
        k.x[0] = fr->flag;
        k.x[1] = UMG_RF_INSTALL;
        rc = radd(p, UMG_RT_FRAUD, &k, 1, 1);
    }
    return rc;
}

static int blob_row(void *ctx, uint32_t app, umg_rollup_table_t t, const umg_rollup_key_t *k, const int64_t *v,
                    size_t nv)
{
    umg_buf_t *b = ctx;
    if (umg_buf_reserve(b, RROW_HEAD + nv * 8) != UMG_OK) {
        return UMG_ENOMEM;
    }
    uint8_t *w = (uint8_t *)b->ptr + b->len, *head = w;
    uint16_t mask = 0;
    w += RROW_HEAD;
    for (size_t i = 0; i < nv; i++) {
        if (v[i] != 0) {
            mask |= (uint16_t)(1u << i);
            memcpy(w, &v[i], 8);
            w += 8;
        }
    }
    memcpy(head, &app, 4);
    head[4] = (uint8_t)t;
    memcpy(head + 5, k, sizeof(*k));
    memcpy(head + 5 + sizeof(*k), &mask, 2);
    b->len = (size_t)(w - (uint8_t *)b->ptr);
    return UMG_OK;
}

/* Stores the batch's rollup changes in its transaction, with the next rows of a fold (starting one when due). */
static int roll_persist(umg_pipeline_t *p)
{
    fold_t *f = &p->fl;
    int64_t now = (int64_t)(umg_mono_ns() / 1000000);
    int rc = UMG_OK;
    if (!f->active && p->rlog_bytes > 0 &&
        (p->rlog_bytes >= (uint64_t)p->cfg.rollup_fold_bytes || now - f->last_ms >= p->cfg.rollup_fold_ms)) {
        /* The tables hold every committed batch: the rows' values as of the log's last blob. The rows stay right
         * should this transaction not commit, and the next one stores them instead. */
        merge_wait(p);
        umg_rollup_delta_reset(f->touched);
        rc = umg_store_rollup_log_scan(p->tx, touch_blob, p);
        rc = rc ? rc : fold_rows(p);
        f->active = rc == UMG_OK;
        f->upto = p->rlog_last;
        f->bytes = p->rlog_bytes;
    }
    if (rc == UMG_OK && f->active) {
        const frow_t *rows = (const frow_t *)f->rows.ptr;
        size_t n = f->rows.len / sizeof(frow_t), end = f->at + UMG_MIN(n - f->at, (size_t)f->chunk);
        for (size_t i = f->at; i < end && rc == UMG_OK; i++) {
            rc = umg_store_rollup_put(p->tx, rows[i].app, rows[i].t, &rows[i].k, rows[i].v,
                                      umg_rollup_nvalues((umg_rollup_table_t)rows[i].t));
        }
        f->wrote = end - f->at;
        f->next = end;
        if (rc == UMG_OK) {
            rc = end == n
                     ? umg_store_rollup_fold_done(p->tx, f->upto)
                     : umg_store_rollup_fold_mark(p->tx, f->upto, rows[end - 1].app, rows[end - 1].t, &rows[end - 1].k);
        }
    }
    umg_buf_reset(&p->rlog);
    rc = rc ? rc : umg_rollup_delta_rows(p->delta, blob_row, &p->rlog);
    return rc ? rc : umg_store_rollup_log_append(p->tx, p->rlog.ptr, p->rlog.len, &p->rlog_new);
}

/* The batch with its rollup changes committed. */
static void roll_committed(umg_pipeline_t *p)
{
    fold_t *f = &p->fl;
    p->rlog_bytes += p->rlog.len;
    p->rlog_last = p->rlog_new;
    if (!f->active) {
        return;
    }
    f->at = f->next;
    if (f->chunk < p->cfg.rollup_fold_rows) { /* back towards the configured size after a split */
        f->chunk = UMG_MIN(p->cfg.rollup_fold_rows, f->chunk + f->chunk / 8 + 1);
    }
    if (f->at == f->rows.len / sizeof(frow_t)) {
        f->active = 0;
        p->rlog_bytes -= f->bytes;
        f->last_ms = (int64_t)(umg_mono_ns() / 1000000);
        umg_buf_free(&f->rows);
    }
}

/* ----------------------------------------------------------------- touches */

static int on_touch(umg_pipeline_t *p, prep_t *r)
{
    umg_touch_t *t = &r->u.t;
    const umg_bus_msg_t *m = p->msg;
    umg_attr_touch_t a;
    memset(&a, 0, sizeof(a));
    a.ts_us = t->ts_us;
    a.touch_id = m->offset;
    memcpy(a.ids, r->ids, sizeof(a.ids));
    a.click_id = r->click;
    a.fp = r->fp;
    a.app = m->app;
    a.type = t->type == UMG_TOUCH_IMPRESSION ? UMG_ATTR_IMPRESSION : UMG_ATTR_CLICK;
    a.flags = t->retargeting ? UMG_ATTR_TF_RETARGETING : 0;
    a.lookback_s = t->lookback_s > 0 && t->lookback_s <= UINT32_MAX ? (uint32_t)t->lookback_s : 0;
    int32_t days;
    if (a.lookback_s == 0 && a.type == UMG_ATTR_CLICK && app_of(p, m->app)->source_windows &&
        umg_apps_source_window(p->apps, m->app, t->source, &days) == UMG_OK) {
        a.lookback_s = (uint32_t)days * 86400u; /* the source's window, as if the link had said it */
    }
    if (p->cfg.fraud && a.type == UMG_ATTR_CLICK) { /* the click's counters load while its fields are interned */
        umg_fraud_counts_prefetch(p->fc, UMG_FW_CLICK_DEVICE_HOUR, a.app, a.ids[0], a.ts_us);
        umg_fraud_counts_prefetch(p->fc, UMG_FW_CLICK_IP_MINUTE, a.app, a.fp.ip, a.ts_us);
        umg_fraud_counts_prefetch(p->fc, UMG_FW_CLICK_IP_HOUR, a.app, a.fp.ip, a.ts_us);
    }
    umg_slice_t f[6] = {t->source, t->campaign, t->adset, t->ad, t->site, t->deep_link};
    uint32_t *ids[6] = {&a.source, &a.campaign, &a.adset, &a.ad, &a.site, &a.deep_link};
    for (int i = 0; i < 6; i++) {
        int rc = umg_store_intern(p->tx, f[i], ids[i]);
        if (rc != UMG_OK) {
            return rc;
        }
    }
    if (p->cfg.fraud) {
        fraud_touch(p, t, &a);
    }
    count(p, S_TOUCHES);
    int rc = umg_store_touch_put(p->tx, &a);
    return rc == UMG_OK && p->rollup != NULL ? roll_touch(p, &a) : rc;
}

/* ------------------------------------------------------------------ events */

static int cmp_contrib(const void *a, const void *b)
{
    const umg_store_contrib_t *x = a, *y = b;
    if (x->ts_us != y->ts_us) {
        return x->ts_us < y->ts_us ? -1 : 1;
    }
    return x->touch_id < y->touch_id ? -1 : x->touch_id > y->touch_id;
}

/* The candidates of an install, oldest first, the newest UMG_STORE_MAX_CONTRIB of them. */
static void fill_contrib(umg_store_decision_t *d, const umg_attr_settings_t *s, const umg_attr_touch_t *t, size_t n,
                         const umg_attr_obs_t *obs)
{
    umg_store_contrib_t all[GATHER_CAP];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        umg_attr_match_t mt = umg_attr_touch_match(s, &t[i], obs);
        if (mt == UMG_ATTR_MATCH_NONE) {
            continue;
        }
        all[k++] = (umg_store_contrib_t){.ts_us = t[i].ts_us,
                                         .touch_id = t[i].touch_id,
                                         .source = t[i].source,
                                         .campaign = t[i].campaign,
                                         .type = t[i].type,
                                         .match = (uint8_t)mt};
    }
    qsort(all, k, sizeof(all[0]), cmp_contrib);
    size_t from = k > UMG_STORE_MAX_CONTRIB ? k - UMG_STORE_MAX_CONTRIB : 0;
    d->ncontrib = (uint32_t)(k - from);
    memcpy(d->contrib, all + from, d->ncontrib * sizeof(all[0]));
}

static int decide_event(umg_pipeline_t *p, prep_t *r);

static int live_str(umg_buf_t *o, umg_store_txn_t *tx, const char *name, uint32_t id)
{
    umg_slice_t s;
    if (id == 0 || umg_store_string(tx, id, &s) != UMG_OK) {
        return UMG_OK;
    }
    int rc = umg_buf_printf(o, ",\"%s\":", name);
    return rc ? rc : umg_buf_json_str(o, s.ptr, s.len);
}

/*
 * A decision for the live feed (GET /v1/live), in the form of GET /v1/export/installs without its
 * candidate list. Published as it is made: a batch the store fails to commit is applied again, and
 * its decisions then show twice on the feed (never in the store).
 */
static void live_decision(umg_pipeline_t *p, const umg_event_t *ev, const umg_store_decision_t *rec)
{
    umg_buf_t *o = &p->live_buf;
    umg_buf_reset(o);
    char eid[37], ts[32], dec[32];
    umg_uuid_format(&rec->event_id, eid);
    umg_time_format_rfc3339(rec->d.ts_us, ts);
    umg_time_format_rfc3339(rec->d.decided_us, dec);
    const umg_attr_attribution_t *a = &rec->d.attr;
    int rc = umg_buf_printf(o,
                            "{\"event_id\":\"%s\",\"type\":\"%s\",\"offset\":%llu,\"outcome\":\"%s\",\"ts\":\"%s\","
                            "\"decided_at\":\"%s\",\"candidates\":%u,\"attribution\":",
                            eid, umg_event_type_name(ev->type), (unsigned long long)rec->offset,
                            umg_attr_outcome_name((umg_attr_outcome_t)rec->d.outcome), ts, dec, rec->d.n_candidates);
    if (a->match == UMG_ATTR_MATCH_NONE) {
        rc = rc ? rc : umg_buf_append(o, "null", 4);
    } else {
        char tts[32];
        umg_time_format_rfc3339(a->touch_ts_us, tts);
        rc = rc ? rc
                : umg_buf_printf(o, "{\"match\":\"%s\",\"touch_type\":\"%s\",\"touch_ts\":\"%s\"",
                                 umg_attr_match_name(a->match), umg_attr_touch_type_name(a->touch_type), tts);
        rc = rc ? rc : live_str(o, p->tx, "source", a->source);
        rc = rc ? rc : live_str(o, p->tx, "campaign", a->campaign);
        rc = rc ? rc : live_str(o, p->tx, "adset", a->adset);
        rc = rc ? rc : live_str(o, p->tx, "site", a->site);
        rc = rc ? rc : umg_buf_putc(o, '}');
    }
    if (rc == UMG_OK && rec->fraud_status != UMG_STORE_FRAUD_CLEAN) {
        rc = umg_buf_printf(o, ",\"fraud\":{\"status\":\"%s\",\"reason\":\"%s\"}",
                            rec->fraud_status == UMG_STORE_FRAUD_REJECTED ? "rejected" : "flagged",
                            umg_fraud_reason_name(rec->fraud_reason));
    }
    rc = rc ? rc : umg_buf_putc(o, '}');
    if (rc == UMG_OK) {
        umg_live_publish(p->live, rec->app, "decision", o->ptr, o->len);
    }
}

static int on_event(umg_pipeline_t *p, prep_t *r)
{
    umg_event_t *ev = &r->u.ev;
    if (ev->type != UMG_EV_INSTALL) {
        return decide_event(p, r);
    }
    uint64_t t0 = umg_mono_ns();
    int rc = decide_event(p, r);
    uint64_t us = (umg_mono_ns() - t0) / 1000;
    atomic_fetch_add_explicit(&p->lat[us < LAT_BINS ? us : LAT_BINS], 1, memory_order_relaxed);
    if (us > atomic_load_explicit(&p->lat_max_us, memory_order_relaxed)) {
        atomic_store_explicit(&p->lat_max_us, us, memory_order_relaxed);
    }
    return rc;
}

static int decide_event(umg_pipeline_t *p, prep_t *r)
{
    umg_event_t *ev = &r->u.ev;
    const umg_bus_msg_t *m = p->msg;
    umg_attr_obs_t obs;
    memset(&obs, 0, sizeof(obs));
    obs.ts_us = ev->ts_us;
    obs.app = m->app;
    memcpy(obs.ids, r->ids, sizeof(obs.ids));
    if (obs.ids[0] == 0) {
        count(p, S_NODEV);
        return UMG_OK;
    }
    fraud_t *fr = &p->fr;
    memset(fr, 0, sizeof(*fr));
    fr->score = -1;
    if (ev->type == UMG_EV_INSTALL && p->cfg.fraud) { /* counted before the resend check, as the warm-up counts */
        observe_install(p, obs.app, ev->ip, ev->user_agent, ev->ts_us, m->recv_us, fr->ic);
    }
    obs.referrer_click = r->click;
    obs.fp = r->fp;
    obs.kind = ev->type == UMG_EV_INSTALL   ? UMG_ATTR_OBS_INSTALL
               : ev->type == UMG_EV_SESSION ? UMG_ATTR_OBS_SESSION
                                            : UMG_ATTR_OBS_EVENT;

    int rc;
    if (ev->type == UMG_EV_INSTALL || ev->type == UMG_EV_PURCHASE) {
        /* A resent copy the log's dedupe no longer knew (past dedupe.horizon): apply it once. */
        rc = umg_store_seen(p->tx, obs.app, &ev->event_id);
        if (rc == UMG_EEXIST) {
            count(p, S_DUP);
            return UMG_OK;
        }
        if (rc != UMG_OK) {
            return rc;
        }
    }
    umg_store_device_t dev;
    rc = umg_store_device_find(p->tx, obs.app, obs.ids, &dev);
    if (rc != UMG_OK && rc != UMG_ENOENT) {
        return rc;
    }
    int known = rc == UMG_OK;
    uint32_t dims[UMG_RD_N]; /* as read: written again only when they change */
    umg_store_device_dims(&dev, dims);
    const umg_attr_settings_t *s = &app_of(p, obs.app)->s;
    size_t n = 0;
    int installed = known && dev.attr.install_ts_us != 0;
    if (obs.kind != UMG_ATTR_OBS_EVENT || !installed) {
        /* Touches older than the retention at the observation's receive time are never candidates, whether
         * expiry has reached them yet or not: decisions do not depend on when expiry ran (replays agree). */
        rc = umg_store_gather(p->tx, &obs, m->recv_us - p->cfg.touch_retention_ms * 1000, p->touches, GATHER_CAP, &n);
        if (rc != UMG_OK) {
            return rc;
        }
    }
    const app_ent_t *ae = app_of(p, obs.app);
    const umg_fraud_settings_t *fs = &ae->fs;
    int fraud_install = ev->type == UMG_EV_INSTALL && p->cfg.fraud;
    if (fraud_install) {
        fraud_install_pre(p, ev, &obs, s, n);
    } else if (p->cfg.fraud && installed && fs->rule[UMG_FR_TIME_ANOMALY].enabled &&
               (ev->ts_us < dev.attr.install_ts_us - (int64_t)(fs->p[UMG_FP_TIME_BEFORE_INSTALL_S] * 1e6) ||
                ev->ts_us < dev.last_seen_us - (int64_t)(fs->p[UMG_FP_TIME_BACKWARDS_S] * 1e6))) {
        fhit(fr, fs, UMG_FR_TIME_ANOMALY);
        if (fr->rej) { /* a rejected event: counted as such, and nothing else */
            if (p->rollup == NULL) {
                return UMG_OK;
            }
            umg_rollup_key_t k;
            rkey(&k, local_day(ae, ev->ts_us), &dev.attr.install, dev.country, dev.platform);
            /* A device whose install was rejected has all its activity counted under that reason (roll_event). */
            k.x[0] = dev.fraud_reason != 0 ? dev.fraud_reason : UMG_FR_TIME_ANOMALY;
            k.x[1] = UMG_RF_EVENT;
            return radd(p, UMG_RT_FRAUD, &k, 0, 1);
        }
    }
    umg_attr_decision_t d;
    for (int round = 0;; round++) {
        if (obs.kind == UMG_ATTR_OBS_INSTALL) {
            rc = umg_attr_decide_install(s, installed ? &dev.attr : NULL, p->touches, n, &obs, m->recv_us, &d);
        } else {
            rc = umg_attr_on_session(s, installed ? &dev.attr : NULL, p->touches, n, &obs, m->recv_us, &d);
        }
        if (rc != UMG_OK) {
            return rc;
        }
        /* a flooding click rejected: decide again without it */
        int again = fraud_install && round < UMG_STORE_MAX_REJECTED ? fraud_flood(p, &d, n) : 0;
        if (again < 0) {
            return again;
        }
        if (!again) {
            break;
        }
    }
    umg_attr_apply(&dev.attr, &d);
    if (fraud_install) {
        fraud_score(p, ev);
        if (fr->rej) {
            dev.fraud_reason = (uint8_t)fr->rej;
            count(p, S_FRAUD_INSTALLS);
        } else if (d.outcome == UMG_ATTR_OUT_INSTALL || d.outcome == UMG_ATTR_OUT_REATTRIBUTED) {
            dev.fraud_reason = 0; /* a new attribution, judged afresh */
        }
        if (fr->flag && !fr->rej) {
            count(p, S_FRAUD_FLAGGED);
        }
    }
    if (dev.first_seen_us == 0 || obs.ts_us < dev.first_seen_us) {
        dev.first_seen_us = obs.ts_us;
    }
    if (obs.ts_us > dev.last_seen_us) {
        dev.last_seen_us = obs.ts_us;
    }
    if (ev->type == UMG_EV_SESSION) {
        dev.sessions++;
        count(p, S_SESSIONS);
    } else if (ev->type == UMG_EV_EVENT || ev->type == UMG_EV_PURCHASE) {
        dev.events++;
        count(p, S_EVENTS);
        if (ev->type == UMG_EV_PURCHASE) {
            dev.purchases++;
        }
        if (ev->has_revenue) {
            dev.revenue += ev->revenue;
        }
    }
    if (p->rollup != NULL) {
        rc = roll_event(p, ev, &dev, known, &d);
        if (rc == UMG_OK && fraud_install) {
            rc = roll_fraud_install(p, &dev, &d, local_day(ae, ev->ts_us));
        }
        if (rc != UMG_OK) {
            return rc;
        }
    }
    rc = umg_store_device_put(p->tx, obs.app, obs.ids, &dev, known ? dims : NULL);
    if (rc != UMG_OK || d.outcome == UMG_ATTR_OUT_NONE) {
        return rc;
    }
    umg_store_decision_t *rec = &p->rec;
    memset(rec, 0, sizeof(*rec));
    rec->d = d;
    rec->offset = m->offset;
    rec->device_key = dev.key;
    rec->event_id = ev->event_id;
    rec->app = obs.app;
    rec->fraud_status = fr->rej ? UMG_STORE_FRAUD_REJECTED : fr->flag ? UMG_STORE_FRAUD_FLAGGED : UMG_STORE_FRAUD_CLEAN;
    rec->fraud_reason = (uint8_t)(fr->rej ? fr->rej : fr->flag);
    rec->fraud_rules = fr->rules;
    rec->score = (float)fr->score;
    rec->nrejected = fr->nrej;
    memcpy(rec->rejected, fr->rejected, sizeof(rec->rejected));
    if (fraud_install) {
        rec->has_features = 1;
        memcpy(rec->features, fr->x, sizeof(rec->features));
    }
    switch (d.outcome) {
    case UMG_ATTR_OUT_INSTALL: count(p, S_INSTALLS); break;
    case UMG_ATTR_OUT_REINSTALL: count(p, S_REINSTALLS); break;
    case UMG_ATTR_OUT_REATTRIBUTED: count(p, S_REATTR); break;
    case UMG_ATTR_OUT_IMPLICIT_INSTALL: count(p, S_IMPLICIT); break;
    case UMG_ATTR_OUT_REENGAGEMENT: count(p, S_REENG); break;
    default: break;
    }
    if (d.outcome == UMG_ATTR_OUT_INSTALL || d.outcome == UMG_ATTR_OUT_REATTRIBUTED ||
        d.outcome == UMG_ATTR_OUT_IMPLICIT_INSTALL) {
        fill_contrib(rec, s, p->touches, n, &obs);
    }
    rc = umg_store_decision_put(p->tx, rec);
    if (rc == UMG_OK && umg_live_wanted(p->live, obs.app)) {
        live_decision(p, ev, rec);
    }
    return rc;
}

/* ------------------------------------------------------------------- batch */

/* Decodes a stored record and calls on_ev / on_t with what it holds (the decoders are made on first use). */
static int decode_record(umg_event_decoder_t **edec, umg_touch_decoder_t **tdec, const umg_bus_msg_t *m,
                         umg_event_cb on_ev, umg_touch_cb on_t, void *ctx)
{
    if (m->len == 0) {
        return UMG_ECORRUPT; /* damaged in the log, passed over by the reader (skip_damaged): skipped */
    }
    if (m->kind == UMG_BUS_KIND_TOUCH) {
        if (*tdec == NULL && umg_touch_decoder_new(1 << 20, tdec) != UMG_OK) {
            return UMG_ENOMEM;
        }
        umg_touch_limits_t tl = umg_touch_limits_stored(m->recv_us);
        umg_touch_error_t err;
        return umg_touch_decode(*tdec, m->payload, m->len, &tl, on_t, ctx, &err);
    }
    if (m->kind != UMG_BUS_KIND_EVENT) {
        return UMG_EPARSE;
    }
    if (*edec == NULL && umg_event_decoder_new(1 << 20, edec) != UMG_OK) {
        return UMG_ENOMEM;
    }
    size_t n;
    int batch;
    umg_event_limits_t lim = umg_event_limits_stored(m->recv_us);
    int rc = umg_event_decoder_parse(*edec, m->payload, m->len, 1, &n, &batch, NULL);
    return rc ? rc : umg_event_decoder_foreach(*edec, &lim, on_ev, ctx);
}

/* Reading a record ahead of the store work: where the decoded record goes, and the arena for decrypted values
 * and, when own is set (the decoder thread), copies of its strings; without own they stay in the decoders until
 * their next record. */
typedef struct prep_ctx_s {
    const umg_pii_t *pii;
    umg_arena_t *arena;
    int own;
    prep_t *r;
} prep_ctx_t;

static int prep_touch(void *ctx, size_t index, umg_touch_t *t, const umg_touch_error_t *err)
{
    prep_ctx_t *c = ctx;
    prep_t *r = c->r;
    (void)index, (void)err;
    if (t == NULL || r->n != 0) { /* a stored record holds one touch */
        return UMG_EPARSE;
    }
    int stale = 0, rc;
    if (c->pii != NULL && (rc = umg_pii_decrypt_touch(c->pii, t, c->arena, &stale)) != UMG_OK && rc != UMG_EAUTH) {
        return rc;
    }
    if (c->own && umg_touch_own(t, c->arena) != UMG_OK) {
        return UMG_ENOMEM;
    }
    r->u.t = *t;
    r->n = 1;
    umg_slice_t v[UMG_ATTR_ID_KINDS] = {t->idfa, t->gaid, t->oaid, t->android_id, t->idfv, t->custom_id};
    umg_attr_ids_collect(r->ids, v);
    r->click = umg_attr_click_hash(t->click_id);
    umg_slice_t none = umg_slice("", 0);
    umg_attr_fp_make(&r->fp, t->ip, t->user_agent, none, none, none);
    return UMG_OK;
}

static int prep_event(void *ctx, size_t index, umg_event_t *ev, const umg_event_error_t *err)
{
    prep_ctx_t *c = ctx;
    prep_t *r = c->r;
    (void)index, (void)err;
    if (ev == NULL || r->n != 0) { /* a stored record holds one event */
        return UMG_EPARSE;
    }
    int rc;
    if (c->pii != NULL && (rc = umg_pii_decrypt_event(c->pii, ev, c->arena)) != UMG_OK && rc != UMG_EAUTH) {
        return rc;
    }
    if (c->own && umg_event_own(ev, c->arena) != UMG_OK) {
        return UMG_ENOMEM;
    }
    /* the properties in use only: the array is most of the struct */
    int np = ev->nprops < 0 ? 0 : UMG_MIN(ev->nprops, UMG_EVENT_MAX_PROPS);
    memcpy(&r->u.ev, ev, offsetof(umg_event_t, props) + (size_t)np * sizeof(umg_event_prop_t));
    r->u.ev.nprops = ev->nprops;
    r->u.ev.app_id = ev->app_id;
    r->u.ev.received_us = ev->received_us;
    r->n = 1;
    const umg_event_device_t *dv = &ev->device;
    umg_slice_t v[UMG_ATTR_ID_KINDS] = {dv->idfa, dv->gaid, dv->oaid, dv->android_id, dv->idfv, dv->custom_id};
    umg_attr_ids_collect(r->ids, v);
    r->click = 0;
    if (ev->type == UMG_EV_INSTALL && ev->has_referrer) {
        char buf[UMG_EVENT_MAX_REFERRER]; /* the whole referrer decodes into it when it is encoded twice */
        umg_slice_t cid;
        if (umg_attr_referrer_click_id(ev->referrer, buf, sizeof(buf), &cid) == UMG_OK) {
            r->click = umg_attr_click_hash(cid);
        }
    }
    umg_attr_fp_make(&r->fp, ev->ip, ev->user_agent, dv->platform, dv->os_version, dv->model);
    return UMG_OK;
}

/* Decodes m into r: everything about a record that needs no store. */
static void prep_record(umg_event_decoder_t **edec, umg_touch_decoder_t **tdec, const umg_bus_msg_t *m, prep_ctx_t *c,
                        prep_t *r)
{
    r->m = *m;
    r->m.payload = NULL;
    r->m.len = 0;
    r->n = 0;
    c->r = r;
    r->rc = decode_record(edec, tdec, m, prep_event, prep_touch, c);
}

static int apply(umg_pipeline_t *p, prep_t *r)
{
    p->msg = &r->m;
    int rc = r->rc;
    if (rc == UMG_OK && r->n != 0) {
        rc = r->m.kind == UMG_BUS_KIND_TOUCH ? on_touch(p, r) : on_event(p, r);
    }
    if (rc == UMG_EPARSE || rc == UMG_EINVAL || rc == UMG_ERANGE || (rc == UMG_ECORRUPT && r->n == 0)) {
        /* A record that cannot be applied would stop the pipeline forever: count it, say so, go on. */
        umg_log(UMG_LOG_WARN, "pipeline", "record %llu (kind %d) cannot be applied (%s); skipped",
                (unsigned long long)r->m.offset, r->m.kind, umg_strerror(rc));
        count(p, S_SKIP);
        rc = UMG_OK;
    }
    return rc;
}

/* ------------------------------------------------------------ decoder thread */

#define IDLE_MAX_MS 100 /* an idle thread looks again this often even if the log never says it moved */

/* Whether a thread in idle_wait has something to do: the pipeline (decoder 0) once chunks are ready, the decoder
 * once the pipeline asks for a read or a reset; both once they stop. Under a->mu. */
static int idle_over(const ahead_t *a, int decoder, uint64_t poke, uint64_t gen)
{
    return a->stop || (decoder ? a->poke != poke || a->gen != gen : a->count > 0);
}

/*
 * Under a->mu, when a thread found nothing more to read: waits poll_ms (less if it gets something to do), then
 * as long as the log holds nothing past seen_end, at most IDLE_MAX_MS more. So under load both threads look
 * every poll_ms, as they did, and an idle daemon does not wake them 500 times a second. Without notifications
 * from the bus they look every poll_ms. The decoder passes the pipeline's poke and the reset it reads for (gen).
 */
static void idle_wait(umg_pipeline_t *p, ahead_t *a, uint64_t seen_end, int decoder, uint64_t poke, uint64_t gen)
{
    struct timespec until;
    umg_deadline_ms(&until, p->cfg.poll_ms);
    int rc = 0;
    while (!idle_over(a, decoder, poke, gen) && rc != ETIMEDOUT) {
        rc = pthread_cond_timedwait(&a->cv, &a->mu, &until);
    }
    if (!p->notify_on) {
        return;
    }
    /* Dekker with on_durable: it stores the end, then reads sleepers; here sleepers goes up, then the end is
     * read (both sequentially consistent), so either it sees a sleeper and wakes it or the end read here is new. */
    atomic_fetch_add(&p->sleepers, 1);
    umg_deadline_ms(&until, IDLE_MAX_MS);
    rc = 0;
    while (!idle_over(a, decoder, poke, gen) && atomic_load(&p->log_end) <= seen_end && rc != ETIMEDOUT) {
        rc = pthread_cond_timedwait(&a->cv, &a->mu, &until);
    }
    atomic_fetch_sub(&p->sleepers, 1);
}

/* The bus's notification (on its writer or syncer thread): the acknowledged end moved. */
static void on_durable(void *arg, uint64_t end)
{
    umg_pipeline_t *p = arg;
    atomic_store(&p->log_end, end);
    if (atomic_load(&p->sleepers) > 0) {
        ahead_t *a = p->ah; /* set before the notification was, cleared after it stopped */
        pthread_mutex_lock(&a->mu);
        pthread_cond_broadcast(&a->cv);
        pthread_mutex_unlock(&a->mu);
    }
}

/*
 * The decoder thread reads the log from where the pipeline applies it, AHEAD_RECORDS records to a chunk, and
 * publishes each chunk when it is full or the reader reached the log's end. At the end it waits (idle_wait):
 * poll_ms, and longer while the log does not grow, or less when the pipeline asks (a poke). After an error it
 * waits for the pipeline's reset.
 */
static void *ahead_thread(void *arg)
{
    umg_pipeline_t *p = arg;
    ahead_t *a = p->ah;
    umg_thread_name("umg-decode");
    umg_bus_reader_t *reader = NULL;
    uint64_t gen = 0, from = a->from;
    int reopen = 1, failed = 0;
    prep_ctx_t pc = {.pii = p->pii, .own = 1};
    pthread_mutex_lock(&a->mu);
    while (!a->stop) {
        if (a->gen != gen) {
            gen = a->gen;
            from = a->from;
            reopen = 1;
            failed = 0;
        }
        if (a->count == AHEAD_CHUNKS || failed) {
            a->full = !failed;
            pthread_cond_wait(&a->cv, &a->mu);
            continue;
        }
        uint64_t poke = a->poke, end = atomic_load(&p->log_end); /* read below, at the least */
        chunk_t *c = &a->chunks[(a->head + a->count) % AHEAD_CHUNKS];
        pthread_mutex_unlock(&a->mu);

        int rc = UMG_OK;
        if (reopen) {
            if (reader != NULL) {
                p->ops->reader_close(reader);
                reader = NULL;
            }
            umg_bus_read_opts_t o = {.partition = -1, .from_offset = from, .drop_behind = 1, .skip_damaged = 1};
            rc = p->ops->reader_open(p->bus, &o, &reader);
            reopen = rc != UMG_OK;
        }
        c->n = 0;
        umg_arena_reset(&c->arena);
        pc.arena = &c->arena;
        while (rc == UMG_OK && c->n < AHEAD_RECORDS) {
            umg_bus_msg_t m;
            rc = p->ops->reader_next(reader, &m);
            if (rc == UMG_OK) {
                prep_record(&a->edec, &a->tdec, &m, &pc, &c->rec[c->n++]);
            }
        }
        c->end_rc = rc;
        int error = rc != UMG_OK && rc != UMG_EAGAIN;
        reopen = reopen || error;

        pthread_mutex_lock(&a->mu);
        if (a->gen != gen) {
            continue; /* a reset meanwhile: the chunk is dropped */
        }
        if (c->n > 0 || error) {
            a->count++;
        }
        if (rc == UMG_EAGAIN) {
            a->poke_done = poke;
        }
        failed = error; /* the pipeline resets the reading */
        pthread_cond_broadcast(&a->cv);
        if (rc == UMG_EAGAIN && a->poke == poke && !a->stop) {
            idle_wait(p, a, end, 1, poke, gen);
        }
    }
    pthread_mutex_unlock(&a->mu);
    if (reader != NULL) {
        p->ops->reader_close(reader);
    }
    return NULL;
}

static void ahead_stop(umg_pipeline_t *p)
{
    ahead_t *a = p->ah;
    if (a == NULL) {
        return;
    }
    if (a->running) {
        pthread_mutex_lock(&a->mu);
        a->stop = 1;
        pthread_cond_broadcast(&a->cv);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->tid, NULL);
    }
    if (p->notify_on) {
        p->ops->set_notify(p->bus, NULL, NULL); /* no call of on_durable runs once this returns */
        p->notify_on = 0;
    }
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    umg_event_decoder_free(a->edec);
    umg_touch_decoder_free(a->tdec);
    for (size_t i = 0; i < AHEAD_CHUNKS; i++) {
        umg_arena_free(&a->chunks[i].arena);
    }
    umg_free(a);
    p->ah = NULL;
}

/* Starts the decoder thread at p->reader_next. */
static int ahead_start(umg_pipeline_t *p)
{
    ahead_t *a = umg_calloc(1, sizeof(*a));
    if (a == NULL) {
        return UMG_ENOMEM;
    }
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    for (size_t i = 0; i < AHEAD_CHUNKS; i++) {
        umg_arena_init(&a->chunks[i].arena, 64 << 10);
    }
    a->from = p->reader_next;
    p->ah = a;
    if (p->ops->set_notify != NULL) { /* before the thread starts: it reads notify_on and log_end */
        p->ops->set_notify(p->bus, on_durable, p);
        p->notify_on = 1;
        umg_bus_stats_t bs; /* the end before the first notification; a notification meanwhile is newer */
        p->ops->stats(p->bus, &bs);
        uint64_t none = 0;
        atomic_compare_exchange_strong(&p->log_end, &none, bs.durable_offset);
    }
    int rc = umg_event_decoder_new(1 << 20, &a->edec);
    rc = rc ? rc : umg_touch_decoder_new(1 << 20, &a->tdec);
    if (rc == UMG_OK && pthread_create(&a->tid, NULL, ahead_thread, p) != 0) {
        rc = UMG_ENOMEM;
    }
    a->running = rc == UMG_OK;
    if (rc != UMG_OK) {
        ahead_stop(p);
    }
    return rc;
}

/* The next record to apply, in log order: UMG_OK, UMG_EAGAIN at the log's acknowledged end, or an error (then
 * src_reset before reading again). *out is the pipeline's until the next call. */
static int src_next(umg_pipeline_t *p, prep_t **out)
{
    if (!p->cfg.decode_thread) {
        if (p->reader == NULL) {
            umg_bus_read_opts_t o = {
                .partition = -1, .from_offset = p->reader_next, .drop_behind = 1, .skip_damaged = 1};
            int rc = p->ops->reader_open(p->bus, &o, &p->reader);
            if (rc != UMG_OK) {
                return rc;
            }
        }
        umg_bus_msg_t m;
        int rc = p->ops->reader_next(p->reader, &m);
        if (rc == UMG_OK) {
            prep_ctx_t pc = {.pii = p->pii, .arena = &p->arena};
            umg_arena_reset(&p->arena);
            prep_record(&p->edec, &p->tdec, &m, &pc, &p->one);
            *out = &p->one;
        }
        return rc;
    }
    if (p->ah == NULL) {
        int rc = ahead_start(p);
        if (rc != UMG_OK) {
            return rc;
        }
    }
    ahead_t *a = p->ah;
    if (a->cur != NULL) {
        if (a->pos < a->cur->n) {
            *out = &a->cur->rec[a->pos++];
            return UMG_OK;
        }
        if (a->cur->end_rc != UMG_OK && a->cur->end_rc != UMG_EAGAIN) {
            return a->cur->end_rc; /* kept until the reset */
        }
    }
    pthread_mutex_lock(&a->mu);
    if (a->cur != NULL) { /* applied: its slot is the decoder's again */
        a->head = (a->head + 1) % AHEAD_CHUNKS;
        a->count--;
        a->cur = NULL;
        if (a->full && a->count <= AHEAD_CHUNKS / 2) { /* woken once per half ring, not per chunk */
            a->full = 0;
            pthread_cond_broadcast(&a->cv);
        }
    }
    uint64_t end = 0;
    if (a->count == 0) {
        /* Nothing ready: the log's end only once a read that started after now reached it, as a reader of our
         * own would say. */
        end = atomic_load(&p->log_end);
        uint64_t want = ++a->poke;
        pthread_cond_broadcast(&a->cv);
        while (a->count == 0 && a->poke_done < want) {
            pthread_cond_wait(&a->cv, &a->mu);
        }
    }
    int rc = UMG_EAGAIN;
    if (a->count > 0) {
        a->cur = &a->chunks[a->head];
        a->pos = 0;
        rc = a->cur->n > 0 ? UMG_OK : a->cur->end_rc;
        if (rc == UMG_OK) {
            *out = &a->cur->rec[a->pos++];
        }
    } else {
        p->seen_end = end; /* a read that started after the log reached it found nothing more */
    }
    pthread_mutex_unlock(&a->mu);
    return rc;
}

/* After a batch was undone: reading starts again at p->reader_next. */
static void src_reset(umg_pipeline_t *p)
{
    if (p->reader != NULL) {
        p->ops->reader_close(p->reader);
        p->reader = NULL;
    }
    ahead_t *a = p->ah;
    if (a != NULL) {
        pthread_mutex_lock(&a->mu);
        a->gen++;
        a->from = p->reader_next;
        a->count = 0;
        a->cur = NULL;
        pthread_cond_broadcast(&a->cv);
        pthread_mutex_unlock(&a->mu);
    }
}

/* The pipeline has caught up with the log: waits for more (idle_wait), or poll_ms without the decoder thread. */
static void src_wait(umg_pipeline_t *p)
{
    ahead_t *a = p->ah;
    if (a == NULL) {
        struct timespec ts = {0, p->cfg.poll_ms * 1000000};
        nanosleep(&ts, NULL);
        return;
    }
    pthread_mutex_lock(&a->mu);
    idle_wait(p, a, p->seen_end, 0, 0, 0);
    pthread_mutex_unlock(&a->mu);
}

static int64_t mono_ms(void)
{
    return (int64_t)(umg_mono_ns() / 1000000);
}

/* Puts the store on disk; then retention may remove what it holds (the store runs without fsync per commit:
 * after a machine crash it goes back to its last sync, and the log must still have what came after). On the
 * syncer (maintain) or the pipeline thread: sync_upto is read before the sync starts, and every commit up to it
 * had ended before it was set, so the sync covers them. */
static void sync_job(void *arg)
{
    umg_pipeline_t *p = arg;
    uint64_t upto = atomic_load(&p->sync_upto);
    if (umg_store_sync(p->store) == UMG_OK && p->ops->set_floor != NULL) {
        p->ops->set_floor(p->bus, upto);
    }
}

/* On the syncer, named for top -H and perf. */
static void sync_beside_job(void *arg)
{
    umg_thread_name("umg-store-sync");
    sync_job(arg);
}

/* The same on the pipeline thread, at once. */
static void store_sync(umg_pipeline_t *p)
{
    atomic_store(&p->sync_upto, p->reader_next);
    sync_job(p);
}

void umg_pipeline_maintain(umg_pipeline_t *p)
{
    int64_t now = mono_ms();
    if (p->last_recv_us != 0 && now - p->last_expire_ms >= 10000) {
        p->last_expire_ms = now;
        umg_store_txn_t *tx;
        size_t removed = 0;
        /* An hour of margin: receive times are not strictly ordered in the log across loop threads. */
        int64_t before = p->last_recv_us - p->cfg.touch_retention_ms * 1000 - 3600ll * 1000000;
        if (umg_store_begin(p->store, 1, &tx) == UMG_OK) {
            int rc = umg_store_expire(tx, before, 100000, &removed);
            rc = rc == UMG_OK ? umg_store_commit(tx) : (umg_store_abort(tx), rc);
            if (rc != UMG_OK) {
                umg_log(UMG_LOG_WARN, "pipeline", "touch expiry failed: %s", umg_strerror(rc));
            } else if (removed > 0) {
                umg_log(UMG_LOG_DEBUG, "pipeline", "expired %zu touches", removed);
            }
        }
    }
    if (now - p->last_sync_ms >= p->cfg.sync_interval_ms) {
        /* Beside the pipeline thread, which would otherwise wait for the disk to take a second of changed pages
         * (docs/STATUS.md); while one sync runs the next waits for it. */
        if (p->cfg.sync_beside && p->syncer == NULL && umg_helper_new(&p->syncer) != UMG_OK) {
            p->syncer = NULL;
        }
        if (p->syncer == NULL) {
            p->last_sync_ms = now;
            store_sync(p);
        } else {
            atomic_store(&p->sync_upto, p->reader_next);
            if (umg_helper_run(p->syncer, sync_beside_job, p) == UMG_OK) {
                p->last_sync_ms = now;
            }
        }
    }
}

/* ----------------------------------------------------------------- warm-up */

static int warm_touch(void *ctx, size_t index, umg_touch_t *t, const umg_touch_error_t *err)
{
    umg_pipeline_t *p = ctx;
    (void)index, (void)err;
    if (t == NULL || t->type != UMG_TOUCH_CLICK) {
        return UMG_OK;
    }
    int stale = 0;
    if (p->pii != NULL && umg_pii_decrypt_touch(p->pii, t, &p->arena, &stale) == UMG_ENOMEM) {
        return UMG_ENOMEM;
    }
    uint32_t c[2];
    observe_click(p, p->msg->app, touch_device_key(t), umg_attr_ip_hash(t->ip), t->ts_us, p->msg->recv_us, c);
    return UMG_OK;
}

static int warm_event(void *ctx, size_t index, umg_event_t *ev, const umg_event_error_t *err)
{
    umg_pipeline_t *p = ctx;
    (void)index, (void)err;
    if (ev == NULL || ev->type != UMG_EV_INSTALL) {
        return UMG_OK;
    }
    if (p->pii != NULL && umg_pii_decrypt_event(p->pii, ev, &p->arena) == UMG_ENOMEM) {
        return UMG_ENOMEM;
    }
    const umg_event_device_t *dv = &ev->device;
    uint64_t ids[UMG_ATTR_MAX_IDS];
    umg_slice_t v[UMG_ATTR_ID_KINDS] = {dv->idfa, dv->gaid, dv->oaid, dv->android_id, dv->idfv, dv->custom_id};
    umg_attr_ids_collect(ids, v);
    if (ids[0] != 0) {
        uint32_t c[3];
        observe_install(p, p->msg->app, ev->ip, ev->user_agent, ev->ts_us, p->msg->recv_us, c);
    }
    return UMG_OK;
}

/*
 * The fraud rules' counters live in memory: after a start they are rebuilt by observing again the records of the
 * log that can still matter (received up to the longest window + 20 minutes before the last applied one), so
 * decisions are the same as without the restart (docs/fraud.md).
 */
static void fraud_warm(umg_pipeline_t *p)
{
    p->warmed = 1;
    uint64_t end = p->reader_next;
    if (end == 0 || p->ops->offset_for_time == NULL) {
        return;
    }
    int64_t t0 = mono_ms();
    umg_bus_reader_t *r = NULL;
    umg_bus_read_opts_t o = {.partition = -1, .from_offset = end - 1, .skip_damaged = 1};
    umg_bus_msg_t m;
    int64_t last = umg_now_us();
    if (p->ops->reader_open(p->bus, &o, &r) == UMG_OK) {
        if (p->ops->reader_next(r, &m) == UMG_OK && m.offset < end) {
            last = m.recv_us;
        }
        p->ops->reader_close(r);
    }
    /*
     * What the next records' windows can hold: a record is judged by the buckets of its own time, which is at
     * most the horizon before its receipt (later than last); such a bucket began up to its length (a day at
     * most) before, and an item in it was received at most ingest.max_future before its time (20 minutes cover
     * the default 10). Reading from the horizon alone missed the items of a day bucket received the day before.
     */
    int64_t back_us = p->cfg.fraud_horizon_ms * 1000 + umg_fraud_window_us(UMG_FW_INSTALL_FP_DAY) + INT64_C(1200000000);
    uint64_t from;
    if (p->ops->offset_for_time(p->bus, last - back_us, &from) != UMG_OK || from >= end) {
        return;
    }
    o.from_offset = from;
    if (p->ops->reader_open(p->bus, &o, &r) != UMG_OK) {
        umg_log(UMG_LOG_WARN, "fraud", "cannot read the log to rebuild the fraud counters");
        return;
    }
    size_t n = 0;
    int rc;
    while ((rc = p->ops->reader_next(r, &m)) == UMG_OK && m.offset < end) {
        p->msg = &m;
        umg_arena_reset(&p->arena);
        if (decode_record(&p->edec, &p->tdec, &m, warm_event, warm_touch, p) == UMG_ENOMEM) {
            rc = UMG_ENOMEM;
            break;
        }
        n++;
    }
    p->ops->reader_close(r);
    p->msg = NULL;
    size_t entries, bytes;
    umg_fraud_counts_stats(p->fc, &entries, &bytes);
    umg_log(rc == UMG_ENOMEM ? UMG_LOG_WARN : UMG_LOG_INFO, "fraud",
            "counters rebuilt from %zu log records in %lld ms (%zu counters, %zu KiB)%s", n,
            (long long)(mono_ms() - t0), entries, bytes >> 10,
            rc == UMG_ENOMEM ? ": out of memory, some left out" : "");
}

/* umg_pipeline_lag_records: records acknowledged but not applied yet (after every step, so that a backlog or a
 * pipeline stuck on a failing batch shows). */
static void publish_lag(umg_pipeline_t *p)
{
    umg_bus_stats_t bs;
    p->ops->stats(p->bus, &bs);
    umg_metric_set(&m_lag, bs.durable_offset > p->reader_next ? (int64_t)(bs.durable_offset - p->reader_next) : 0);
}

int umg_pipeline_step(umg_pipeline_t *p, size_t *applied)
{
    if (applied != NULL) {
        *applied = 0;
    }
    int64_t now = umg_now_us();
    if (now - p->apps_cached_us > 1000000) { /* app settings are read again each second, not per record */
        p->napps = 0;
        p->apps_cached_us = now;
    }
    if (!p->warmed && p->cfg.fraud) {
        fraud_warm(p);
    }
    prep_t *r;
    int rc = src_next(p, &r);
    if (rc == UMG_EAGAIN) {
        merge_wait(p); /* nothing new: the tables hold everything applied once this returns */
        publish_lag(p);
        return UMG_OK;
    }
    if (rc != UMG_OK) {
        src_reset(p);
        publish_lag(p);
        return rc;
    }
    size_t done = 0;
    p->fl.wrote = 0;
    rc = umg_store_begin(p->store, 1, &p->tx);
    if (rc != UMG_OK) {
        goto reopen;
    }
    int caught_up = 0;
    uint64_t next = p->reader_next, t0 = umg_mono_ns();
    for (;;) {
        rc = apply(p, r);
        if (rc != UMG_OK) {
            break;
        }
        next = r->m.offset + 1;
        p->last_recv_us = r->m.recv_us > p->last_recv_us ? r->m.recv_us : p->last_recv_us;
        if (++done >= (size_t)p->batch_max ||
            (done % 256 == 0 && (int64_t)(umg_mono_ns() - t0) >= p->cfg.batch_ms * 1000000)) {
            break;
        }
        rc = src_next(p, &r);
        if (rc == UMG_EAGAIN) {
            rc = UMG_OK;
            caught_up = 1;
            break;
        }
        if (rc != UMG_OK) {
            break;
        }
    }
    if (p->rollup != NULL) {
        int arc = act_flush(p);
        rc = rc ? rc : arc;
    }
    int rolled = p->rollup != NULL && !umg_rollup_delta_empty(p->delta);
    if (rc == UMG_OK && rolled) {
        rc = roll_persist(p);
    }
    if (rc == UMG_OK) {
        rc = umg_store_set_offset(p->tx, next);
    }
    if (rc == UMG_OK) {
        rc = umg_store_commit(p->tx);
    } else {
        umg_store_abort(p->tx);
    }
    p->tx = NULL;
    if (rolled) {
        /* Readers see the batch once it is stored; the tables and the store hold the same rows. */
        if (rc == UMG_OK) {
            roll_committed(p);
            merge_start(p);
            if (caught_up) {
                merge_wait(p);
            }
        }
        umg_rollup_delta_reset(p->delta);
    }
    if (rc != UMG_OK) {
        goto reopen;
    }
    p->reader_next = next;
    if (p->batch_max < p->cfg.batch) { /* back towards the configured size after a split */
        p->batch_max = UMG_MIN(p->cfg.batch, p->batch_max + p->batch_max / 8 + 1);
    }
    atomic_store_explicit(&p->next_offset, next, memory_order_release);
    p->pend[S_RECORDS] += done;
    count_publish(p, 1);
    publish_lag(p);
    if (applied != NULL) {
        *applied = done;
    }
    return UMG_OK;
reopen:
    /* The batch is undone: read it again from the committed offset next time. */
    count_publish(p, 0);
    publish_lag(p);
    src_reset(p);
    if (rc == UMG_ETOOBIG && ((done > 0 && (int64_t)(done + 1) / 2 < p->batch_max) || p->fl.wrote > 1)) {
        /* It changed more store pages than one transaction holds (many new devices in a large store, or a large
         * fold): about half as many records and fold rows at a time, growing back batch by batch. A batch that
         * cannot shrink stays an error. */
        if (done > 0 && (int64_t)(done + 1) / 2 < p->batch_max) {
            p->batch_max = (int64_t)(done + 1) / 2;
        }
        if (p->fl.wrote > 1) {
            p->fl.chunk = (int64_t)(p->fl.wrote + 1) / 2;
        }
        umg_log(UMG_LOG_WARN, "pipeline",
                "a batch changed more store pages than one transaction holds (%zu records, %zu report rows folded); "
                "at most %lld records and %lld rows per transaction for now",
                done, p->fl.wrote, (long long)p->batch_max, (long long)p->fl.chunk);
        return UMG_OK;
    }
    return rc;
}

static void *pipeline_thread(void *arg)
{
    umg_pipeline_t *p = arg;
    umg_thread_name("umg-pipeline");
    /* A nice value is per thread on Linux; raising it needs no privilege. */
    if (p->cfg.nice != 0 && setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), (int)p->cfg.nice) != 0) {
        umg_log(UMG_LOG_WARN, "pipeline", "cannot set the pipeline thread's nice value to %lld: %s",
                (long long)p->cfg.nice, strerror(errno));
    }
    int64_t backoff_ms = 0;
    while (!atomic_load_explicit(&p->stop, memory_order_acquire)) {
        size_t n = 0;
        int rc = umg_pipeline_step(p, &n);
        if (rc != UMG_OK) {
            backoff_ms = backoff_ms ? (backoff_ms * 2 > 5000 ? 5000 : backoff_ms * 2) : 50;
            umg_log(UMG_LOG_ERROR, "pipeline", "batch failed (%s); retrying in %lld ms", umg_strerror(rc),
                    (long long)backoff_ms);
            struct timespec ts = {backoff_ms / 1000, (backoff_ms % 1000) * 1000000};
            nanosleep(&ts, NULL);
            continue;
        }
        backoff_ms = 0;
        umg_pipeline_maintain(p);
        if (n == 0) {
            src_wait(p);
        }
    }
    merge_wait(p); /* the tables are the caller's once the thread is stopped */
    if (p->syncer != NULL) {
        umg_helper_wait(p->syncer);
    }
    store_sync(p);
    return NULL;
}

int umg_pipeline_start(umg_pipeline_t *p)
{
    atomic_store(&p->stop, 0);
    if (pthread_create(&p->tid, NULL, pipeline_thread, p) != 0) {
        return UMG_ENOMEM;
    }
    p->running = 1;
    return UMG_OK;
}

void umg_pipeline_stop(umg_pipeline_t *p)
{
    if (p == NULL || !p->running) {
        return;
    }
    atomic_store_explicit(&p->stop, 1, memory_order_release);
    pthread_join(p->tid, NULL);
    p->running = 0;
    ahead_stop(p);
}

uint64_t umg_pipeline_next_offset(const umg_pipeline_t *p)
{
    return atomic_load_explicit(&((umg_pipeline_t *)p)->next_offset, memory_order_acquire);
}

void umg_pipeline_stats(const umg_pipeline_t *p, umg_pipeline_stats_t *out)
{
    umg_pipeline_t *q = (umg_pipeline_t *)p;
    uint64_t v[S_COUNT];
    for (int i = 0; i < S_COUNT; i++) {
        v[i] = atomic_load_explicit(&q->st[i], memory_order_relaxed);
    }
    *out = (umg_pipeline_stats_t){.records = v[S_RECORDS],
                                  .touches = v[S_TOUCHES],
                                  .installs = v[S_INSTALLS],
                                  .reinstalls = v[S_REINSTALLS],
                                  .reattributed = v[S_REATTR],
                                  .implicit_installs = v[S_IMPLICIT],
                                  .reengagements = v[S_REENG],
                                  .sessions = v[S_SESSIONS],
                                  .events = v[S_EVENTS],
                                  .no_device = v[S_NODEV],
                                  .skipped = v[S_SKIP],
                                  .duplicates = v[S_DUP],
                                  .next_offset = umg_pipeline_next_offset(p)};
    uint64_t total = 0, run = 0;
    for (int i = 0; i <= LAT_BINS; i++) {
        total += atomic_load_explicit(&q->lat[i], memory_order_relaxed);
    }
    for (int i = 0; i <= LAT_BINS && total > 0; i++) {
        run += atomic_load_explicit(&q->lat[i], memory_order_relaxed);
        if (out->install_p50_us == 0 && run * 2 >= total) {
            out->install_p50_us = (uint64_t)i + 1;
        }
        if (run * 100 >= total * 99) {
            out->install_p99_us = (uint64_t)i + 1; /* the bin's upper edge */
            break;
        }
    }
    out->install_max_us = atomic_load_explicit(&q->lat_max_us, memory_order_relaxed);
}

/* ------------------------------------------------------------------ privacy */

typedef struct fctx_s {
    umg_pipeline_t *p;
    uint32_t app;
} fctx_t;

static void forget_ids(umg_pipeline_t *p, uint32_t app, const umg_slice_t v[UMG_ATTR_ID_KINDS])
{
    for (int k = 0; k < UMG_ATTR_ID_KINDS; k++) {
        uint64_t h = umg_attr_id_hash((umg_attr_id_kind_t)k, v[k]);
        if (h != 0) {
            char rec[16] = {0};
            memcpy(rec, &app, 4);
            memcpy(rec + 8, &h, 8);
            umg_buf_append(&p->f_ids, rec, 16);
        }
    }
}

static int forget_touch(void *ctx, size_t index, umg_touch_t *t, const umg_touch_error_t *err)
{
    fctx_t *c = ctx;
    (void)index;
    (void)err;
    if (t != NULL) {
        int stale = 0;
        if (c->p->pii != NULL) {
            umg_pii_decrypt_touch(c->p->pii, t, &c->p->farena, &stale);
        }
        umg_slice_t v[UMG_ATTR_ID_KINDS] = {t->idfa, t->gaid, t->oaid, t->android_id, t->idfv, t->custom_id};
        forget_ids(c->p, c->app, v);
    }
    return 0;
}

static int forget_event(void *ctx, size_t index, umg_event_t *ev, const umg_event_error_t *err)
{
    fctx_t *c = ctx;
    (void)index;
    (void)err;
    if (ev != NULL) {
        if (c->p->pii != NULL) {
            umg_pii_decrypt_event(c->p->pii, ev, &c->p->farena);
        }
        const umg_event_device_t *d = &ev->device;
        umg_slice_t v[UMG_ATTR_ID_KINDS] = {d->idfa, d->gaid, d->oaid, d->android_id, d->idfv, d->custom_id};
        forget_ids(c->p, c->app, v);
    }
    return 0;
}

void umg_pipeline_forgotten(void *pipeline, const umg_bus_msg_t *m)
{
    umg_pipeline_t *p = pipeline;
    fctx_t c = {p, m->app};
    pthread_mutex_lock(&p->fmu);
    umg_arena_reset(&p->farena);
    if (m->kind == UMG_BUS_KIND_TOUCH) {
        umg_buf_append(&p->f_touch, &m->offset, 8);
    } else if (m->kind == UMG_BUS_KIND_EVENT) {
        char rec[20];
        memcpy(rec, &m->app, 4);
        memcpy(rec + 4, &m->id, 16);
        umg_buf_append(&p->f_events, rec, 20);
    }
    decode_record(&p->fedec, &p->ftdec, m, forget_event, forget_touch, &c);
    pthread_mutex_unlock(&p->fmu);
}

int umg_pipeline_forget_done(void *pipeline, uint64_t log_end)
{
    umg_pipeline_t *p = pipeline;
    for (int i = 0; i < 3000 && umg_pipeline_next_offset(p) < log_end; i++) {
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    if (umg_pipeline_next_offset(p) < log_end) {
        return UMG_EAGAIN;
    }
    pthread_mutex_lock(&p->fmu);
    size_t nids = p->f_ids.len / 16, nt = p->f_touch.len / 8, ne = p->f_events.len / 20;
    uint32_t *id_apps = umg_malloc((nids ? nids : 1) * 4), *ev_apps = umg_malloc((ne ? ne : 1) * 4);
    uint64_t *id_hashes = umg_malloc((nids ? nids : 1) * 8), *touches = umg_malloc((nt ? nt : 1) * 8);
    umg_uuid_t *ev_ids = umg_malloc((ne ? ne : 1) * sizeof(umg_uuid_t));
    int rc = id_apps && ev_apps && id_hashes && touches && ev_ids ? UMG_OK : UMG_ENOMEM;
    for (size_t i = 0; rc == UMG_OK && i < nids; i++) {
        memcpy(&id_apps[i], p->f_ids.ptr + 16 * i, 4);
        memcpy(&id_hashes[i], p->f_ids.ptr + 16 * i + 8, 8);
    }
    for (size_t i = 0; rc == UMG_OK && i < ne; i++) {
        memcpy(&ev_apps[i], p->f_events.ptr + 20 * i, 4);
        memcpy(&ev_ids[i], p->f_events.ptr + 20 * i + 4, 16);
    }
    if (rc == UMG_OK && nt > 0) {
        memcpy(touches, p->f_touch.ptr, nt * 8);
    }
    umg_store_forget_stats_t fs = {0};
    umg_store_txn_t *tx = NULL;
    rc = rc ? rc : umg_store_begin(p->store, 1, &tx);
    if (rc == UMG_OK) {
        umg_store_forget_t f = {.id_apps = id_apps,
                                .id_hashes = id_hashes,
                                .nids = nids,
                                .touch_ids = touches,
                                .ntouches = nt,
                                .event_apps = ev_apps,
                                .event_ids = ev_ids,
                                .nevents = ne};
        rc = umg_store_forget(tx, &f, &fs);
        rc = rc == UMG_OK ? umg_store_commit(tx) : (umg_store_abort(tx), rc);
    }
    if (rc == UMG_OK) {
        rc = umg_store_sync(p->store);
    }
    if (rc == UMG_OK) {
        umg_log(UMG_LOG_INFO, "pipeline",
                "forgotten from the attribution store: %llu devices, %llu touches, %llu decisions",
                (unsigned long long)fs.devices, (unsigned long long)fs.touches, (unsigned long long)fs.decisions);
        /* The live feed's ring still holds the apps' recent items as they came (with the ids): they go, once
         * per app (a pass is one app's, or a few). */
        for (size_t i = 0; i < nids + ne; i++) {
            uint32_t app = i < nids ? id_apps[i] : ev_apps[i - nids];
            int done = 0;
            for (size_t j = 0; j < i && !done; j++) {
                done = (j < nids ? id_apps[j] : ev_apps[j - nids]) == app;
            }
            if (!done) {
                umg_live_forget_app(p->live, app);
            }
        }
        umg_buf_reset(&p->f_ids);
        umg_buf_reset(&p->f_touch);
        umg_buf_reset(&p->f_events);
    }
    pthread_mutex_unlock(&p->fmu);
    umg_free(id_apps);
    umg_free(ev_apps);
    umg_free(id_hashes);
    umg_free(touches);
    umg_free(ev_ids);
    return rc;
}
