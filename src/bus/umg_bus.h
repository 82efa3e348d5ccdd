/*
 * umg_bus.h - the event bus interface (umg_bus_ops_t) and its embedded
 * backend, a segmented append-only log with group commit, deduplication by
 * (app, event_id) and per-partition readers with committed offsets.
 *
 * Producers submit batches; a single writer thread deduplicates, appends,
 * fsyncs according to policy and then calls each batch's completion. Readers
 * see only records that were acknowledged. A Kafka backend implements the
 * same table.
 */
#ifndef UMG_BUS_H
#define UMG_BUS_H

#include "umg_core.h"

enum { UMG_BUS_KIND_EVENT = 1, UMG_BUS_KIND_TOUCH = 2 };

enum { UMG_FSYNC_ALWAYS = 0, UMG_FSYNC_INTERVAL = 1, UMG_FSYNC_NEVER = 2 };

typedef struct umg_bus_config_s {
    const char *dir;              /* the log directory; created when missing */
    int partitions;               /* fixed when the log is created */
    int fsync_policy;             /* UMG_FSYNC_* */
    int64_t fsync_interval_ms;    /* for UMG_FSYNC_INTERVAL */
    int64_t segment_bytes;        /* roll the active segment past this size */
    int64_t retention_ms;         /* delete sealed segments older than this (0: keep) */
    int64_t retention_bytes;      /* keep the log under this size (0: no limit) */
    int64_t queue_bytes;          /* submitted but unwritten payload bytes before EFULL */
    int64_t dedupe_horizon_ms;    /* how long an event_id is remembered */
    int64_t dedupe_max_ids;       /* bound on ids held in memory */
    int64_t snapshot_interval_ms; /* how often the dedupe snapshot is written */
    int hold_for_reader;          /* retention keeps what set_floor has not passed; until its first call, all */
} umg_bus_config_t;

/* One record handed in by a producer. */
typedef struct umg_bus_rec_s {
    uint32_t app;        /* internal app id (never 0) */
    uint16_t partition;  /* < partitions */
    uint8_t kind;        /* UMG_BUS_KIND_* */
    int64_t event_us;    /* event time */
    int64_t recv_us;     /* server receive time */
    umg_uuid_t id;       /* with app, the dedupe key */
    const char *payload; /* borrowed until the batch completes */
    uint32_t len;
    /* written by the bus before completion */
    uint64_t offset; /* assigned offset when appended */
    int status;      /* UMG_OK appended, UMG_EEXIST duplicate */
} umg_bus_rec_t;

typedef struct umg_bus_batch_s umg_bus_batch_t;
/*
 * Called on the writer thread once every record of the batch is durable
 * under the fsync policy (status UMG_OK; per-record status says appended or
 * duplicate), or failed as a whole (UMG_ENOSPC disk full, UMG_EIO, UMG_ECLOSED).
 * The batch and its payloads belong to the producer again from this call on.
 */
typedef void (*umg_bus_done_cb)(umg_bus_batch_t *b, int status);

struct umg_bus_batch_s {
    umg_bus_rec_t *recs;
    size_t n;
    umg_bus_done_cb done;
    void *data;
    /* internal */
    umg_bus_batch_t *next;
    size_t bytes;
};

/* One record as a consumer sees it. Pointers are valid until the next call
 * on the same reader. */
typedef struct umg_bus_msg_s {
    uint64_t offset;
    uint32_t app;
    uint16_t partition;
    uint8_t kind;
    int64_t event_us;
    int64_t recv_us;
    umg_uuid_t id;
    const char *payload;
    uint32_t len;
} umg_bus_msg_t;

typedef struct umg_bus_read_opts_s {
    int partition;                      /* -1: every partition, in log order */
    uint64_t from_offset;               /* first offset wanted */
    uint64_t to_offset;                 /* stop before this offset; 0: follow the acknowledged end */
    uint32_t app;                       /* 0: any app; otherwise a filter */
    int kind;                           /* 0: any kind; otherwise a filter (UMG_BUS_KIND_*) */
    int64_t event_from_us, event_to_us; /* event-time filter, inclusive/exclusive; 0,0: none */
    /* The log's pages this reader has read past leave the page cache (the
     * pipeline, which reads every record once; ignored where there is no file). */
    int drop_behind;
    /* Non-zero: reader_next passes over at most this many records that do not
     * match the filters, then returns UMG_EBUSY (call again to go on), so a
     * reader on an event-loop thread never scans a large log at once. */
    uint32_t scan_max;
    /* Non-zero: a record of a sealed segment that fails its check (it cannot heal) is returned with its index
     * entry's fields and no payload (payload "", len 0), after an error in the log, instead of UMG_ECORRUPT
     * for ever: the reader goes on past it. Live records (the active segment) never are. */
    int skip_damaged;
} umg_bus_read_opts_t;

typedef struct umg_bus_stats_s {
    uint64_t next_offset;    /* offset the next record gets */
    uint64_t durable_offset; /* records below this are acknowledged */
    uint64_t bytes;          /* on disk, all segments */
    uint64_t segments;
    uint64_t dedupe_ids;  /* ids held */
    uint64_t queue_bytes; /* submitted, not yet written */
    int broken;           /* writes are refused until a restart (a failed fdatasync) */
} umg_bus_stats_t;

typedef struct umg_bus_s umg_bus_t;
typedef struct umg_bus_reader_s umg_bus_reader_t;

/*
 * Rewriting stored records (privacy: forgetting devices, truncating IPs).
 * Offsets, apps, ids and times never change; a record's payload may be
 * replaced, or removed (a tombstone: readers skip it, dedupe still knows its
 * id). Only sealed segments are rewritten; roll_active seals the active one
 * first so that everything received so far is covered.
 */
enum { UMG_BUS_KEEP = 0, UMG_BUS_REPLACE = 1, UMG_BUS_TOMBSTONE = 2 };

typedef struct umg_bus_seg_info_s {
    uint64_t base, count, bytes;
    int64_t max_recv_us; /* newest receive time in the segment */
    int64_t min_recv_us; /* at or before the oldest receive time in the segment (0: unknown) */
    uint32_t flags;      /* what an earlier rewrite recorded (rw->flags) */
    /* a file the rewriter may keep beside the segment (its own format), removed with the segment; NULL: none */
    const char *aux_path;
} umg_bus_seg_info_t;

typedef struct umg_bus_rewriter_s {
    void *ctx;
    int roll_active;
    /* 1 to rewrite this segment; NULL: every segment */
    int (*want)(void *ctx, const umg_bus_seg_info_t *seg);
    /* UMG_BUS_KEEP, UMG_BUS_REPLACE (new payload appended to out) or UMG_BUS_TOMBSTONE; < 0 to stop */
    int (*record)(void *ctx, const umg_bus_msg_t *m, umg_buf_t *out);
    /* flags to keep with a segment, asked once it was processed without error (while the segment cannot be
     * removed yet); NULL: unchanged */
    uint32_t (*flags)(void *ctx, const umg_bus_seg_info_t *seg);
    /* napps > 0: only records of these apps can change (a forget pass), so a segment whose index names none of
     * them is passed over unread (want and flags are not asked about it) */
    const uint32_t *apps;
    size_t napps;
} umg_bus_rewriter_t;

typedef struct umg_bus_rewrite_stats_s {
    uint64_t segments;   /* segments replaced */
    uint64_t records;    /* records looked at */
    uint64_t replaced;   /* payloads replaced */
    uint64_t tombstoned; /* records removed */
} umg_bus_rewrite_stats_t;

typedef struct umg_bus_ops_s {
    const char *name;
    /* Opens (and recovers) the bus and starts its writer. */
    int (*open)(const umg_bus_config_t *cfg, umg_bus_t **out);
    /* Stops accepting, completes what was queued, joins the writer. NULL ok. */
    void (*close)(umg_bus_t *bus);
    /* Queues a batch. UMG_EFULL right away when over queue_bytes (answer 503). */
    int (*submit)(umg_bus_t *bus, umg_bus_batch_t *b);
    int (*reader_open)(umg_bus_t *bus, const umg_bus_read_opts_t *opts, umg_bus_reader_t **out);
    /* UMG_OK with a message, UMG_EAGAIN at the acknowledged end, UMG_ECORRUPT. */
    int (*reader_next)(umg_bus_reader_t *r, umg_bus_msg_t *msg);
    void (*reader_close)(umg_bus_reader_t *r);
    /* Committed offsets per consumer group and partition (the next to read). */
    int (*commit)(umg_bus_t *bus, const char *group, int partition, uint64_t next_offset);
    int (*committed)(umg_bus_t *bus, const char *group, int partition, uint64_t *out);
    /* The first offset received at or after recv_us (Kafka's offsetsForTimes);
     * the acknowledged end when there is none. */
    int (*offset_for_time)(umg_bus_t *bus, int64_t recv_us, uint64_t *out);
    void (*stats)(umg_bus_t *bus, umg_bus_stats_t *out);
    int (*partitions)(umg_bus_t *bus);
    /* Rewrites stored records (NULL when the backend cannot: Kafka uses compaction instead). */
    int (*rewrite)(umg_bus_t *bus, const umg_bus_rewriter_t *rw, umg_bus_rewrite_stats_t *st);
    /*
     * fn(arg, end) runs each time the acknowledged end moves, with the new end, on the bus's own thread: it
     * must return at once (wake a reader, no more). One at a time; fn NULL stops it, and once set_notify
     * returns no call of the one before is running. NULL when the backend cannot: readers poll.
     */
    void (*set_notify)(umg_bus_t *bus, void (*fn)(void *arg, uint64_t end), void *arg);
    /*
     * Retention removes no record at or after offset: the next one a reader that must see every record (the
     * attribution pipeline) will read. With cfg.hold_for_reader nothing is removed before the first call. NULL
     * when the backend keeps records by its own rules (Kafka: the consumer group's lag is watched instead).
     */
    void (*set_floor)(umg_bus_t *bus, uint64_t offset);
} umg_bus_ops_t;

/* The embedded segmented log. */
extern const umg_bus_ops_t umg_bus_log_ops;

/* Fills defaults (dir is left NULL). */
void umg_bus_config_defaults(umg_bus_config_t *cfg);

#endif
