/*
 * log.c - the embedded bus: a segmented append-only log with group commit.
 *
 * Producers queue batches; one writer thread takes everything queued,
 * deduplicates it against the (app, event_id) set, appends the new records
 * to the active segment and its index with one write each, issues one
 * fdatasync for the whole group (fsync=always), publishes the new durable
 * offset and completes the batches. Readers follow the published offset, so
 * they never see a record that was not acknowledged.
 *
 * Recovery (on open) trusts sealed segments whose index matches, rebuilds any
 * other index from its segment, truncates a torn tail of the active segment
 * (never a good record) and refills the dedupe set from the indexes of the
 * segments inside the dedupe horizon.
 */
#include "umg_dedupe.h"
#include "umg_log_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

int umg__log_inject_write_errno;
_Atomic int umg__log_inject_sync_errno;
long umg__log_rename_pause_us;

typedef struct seg_s {
    uint64_t base;
    _Atomic uint64_t count;     /* records published (readers may see them) */
    _Atomic uint64_t bytes;     /* bytes of published records */
    _Atomic int64_t max_recv_s; /* newest receive time in the segment (retention) */
    char *log_path, *idx_path;
    _Atomic int busy; /* being rewritten: retention leaves it for now */
} seg_t;

/* A written group waiting for the fdatasync that makes it durable (fsync=always). */
typedef struct sync_job_s {
    umg_bus_batch_t *list;
    seg_t *seg;           /* the active segment it was written to */
    uint64_t next_offset; /* log end after the group */
    uint64_t seg_bytes;   /* segment size after the group */
    size_t nrec;
    struct sync_job_s *next;
} sync_job_t;

typedef struct group_s {
    char *name;
    uint64_t *next; /* per partition */
    struct group_s *link;
} group_t;

struct umg_bus_s {
    umg_bus_config_t cfg;
    char *dir;
    int partitions;

    /* the queue from producers to the writer */
    pthread_mutex_t qlock;
    pthread_cond_t qcond;
    umg_bus_batch_t *qhead, *qtail;
    _Atomic int64_t queued_bytes;
    int stopping;
    _Atomic int broken;      /* a failed fsync (or a write the log could not undo): refuse everything */
    _Atomic int sync_failed; /* ... an fdatasync failed: no later one can be believed */
    int cut;                 /* the writer cut the active segment back to its durable end after that (cut_to_durable) */
    pthread_t writer;
    int writer_started;

    /* segments; the array is guarded by seglock, the active one is written only by the writer */
    pthread_mutex_t seglock;
    seg_t **segs;
    size_t nsegs, capsegs;
    int log_fd, idx_fd;
    uint64_t active_bytes;   /* written to the active segment, published or not */
    uint64_t prepared_bytes; /* the active segment's file size: records, then zeros written ahead */
    uint64_t group_avg;      /* moving average of bytes per written group (prepare()) */
    uint64_t next_offset;
    _Atomic uint64_t durable;
    _Atomic uint64_t floor; /* retention keeps records from here on (set_floor) */
    int retention_held;     /* housekeeping last found a segment due but kept */
    int64_t held_warned_us; /* when that was last said (again every hour while it lasts) */
    _Atomic uint64_t total_bytes;

    /* fsync=always: the syncer thread fsyncs written groups while the writer appends more */
    pthread_t syncer;
    int syncer_started;
    pthread_mutex_t slock;
    pthread_cond_t scond, sidle;
    sync_job_t *shead, *stail;
    int ssyncing, sstop;

    /* set_notify: called under nlock when the durable end moves */
    pthread_mutex_t nlock;
    void (*notify_fn)(void *arg, uint64_t end);
    void *notify_arg;
    _Atomic int notify_on;

    umg_dedupe_t *dedupe;
    umg_buf_t wbuf, ibuf; /* a group's record headers and index entries */
    struct iovec *iov;    /* a group's headers and payloads, in log order */
    size_t iov_cap;
    int64_t last_sync_ns, last_housekeeping_ns;
    int dirty; /* written since the last fdatasync */

    pthread_mutex_t offlock;
    group_t *groups;

    /* the rewriter asks the writer to seal the active segment */
    _Atomic int roll_requested;
    _Atomic uint64_t rolls_done;
    _Atomic int roll_rc; /* how the last requested roll ended (before rolls_done moved): UMG_OK, or why not */
    pthread_mutex_t rwlock_rewrite; /* one rewrite at a time */
};

struct umg_bus_reader_s {
    umg_bus_t *bus;
    umg_bus_read_opts_t opts;
    uint64_t next; /* next offset to consider */
    uint64_t seg_base;
    int log_fd, idx_fd;
    umg_log_idx_t *idx;  /* a chunk of index entries */
    size_t idx_n, idx_i; /* entries in the chunk, position */
    uint64_t idx_first;  /* entry number (offset - base) of idx[0] */
    uint8_t *buf;        /* read-ahead window over the segment */
    size_t buf_cap, buf_len;
    uint64_t buf_pos;                  /* segment position of buf[0] */
    uint64_t log_dropped, idx_dropped; /* drop_behind: bytes of the segment's files dropped from the cache */
};

/* ---------------------------------------------------------------- metrics */

static const double fsync_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0};
static const double group_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384};
static umg_metric_t m_fsync =
    UMG_HISTOGRAM("umg_log_fsync_seconds", "Latency of log fdatasync calls", NULL, fsync_bounds, 12);
static umg_metric_t m_group =
    UMG_HISTOGRAM("umg_log_group_records", "Records made durable per group commit (per fsync)", NULL, group_bounds, 13);
static umg_metric_t m_bytes = UMG_GAUGE("umg_log_bytes", "Bytes in all log segments", NULL);
static umg_metric_t m_segments = UMG_GAUGE("umg_log_segments", "Log segments on disk", NULL);
static umg_metric_t m_appended = UMG_COUNTER("umg_log_records_appended_total", "Records appended to the log", NULL);
static umg_metric_t m_write_errors =
    UMG_COUNTER("umg_log_write_errors_total", "Failed log writes (groups refused)", NULL);
static umg_metric_t m_dedupe_ids = UMG_GAUGE("umg_dedupe_ids", "Event ids held in the dedupe set", NULL);
static umg_metric_t m_dedupe_bytes = UMG_GAUGE("umg_dedupe_bytes", "Memory of the dedupe set", NULL);
static umg_metric_t m_queue_bytes =
    UMG_GAUGE("umg_log_queue_bytes", "Payload bytes submitted but not yet written", NULL);

static void metrics_register(void)
{
    umg_metric_t *all[] = {&m_fsync,        &m_group,      &m_bytes,        &m_segments,   &m_appended,
                           &m_write_errors, &m_dedupe_ids, &m_dedupe_bytes, &m_queue_bytes};
    for (size_t i = 0; i < UMG_ARRAY_SIZE(all); i++) {
        umg_metric_register(all[i]);
    }
}

/* ---------------------------------------------------------------- format */

static inline void put16(uint8_t *p, uint16_t v)
{
    memcpy(p, &v, 2);
}
static inline void put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}
static inline void put64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}
static inline uint16_t get16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}
static inline uint32_t get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static inline uint64_t get64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

void umg__log_encode_hdr(uint8_t hdr[UMG_LOG_HDR], const umg_bus_msg_t *m)
{
    put32(hdr, m->len);
    put64(hdr + 8, m->offset);
    put64(hdr + 16, (uint64_t)m->recv_us);
    put64(hdr + 24, (uint64_t)m->event_us);
    put32(hdr + 32, m->app);
    put16(hdr + 36, m->partition);
    hdr[38] = m->kind;
    hdr[39] = UMG_LOG_RECORD_VERSION;
    memcpy(hdr + 40, m->id.b, 16);
    uint32_t crc = umg_crc32c(0, hdr + 8, UMG_LOG_HDR - 8);
    crc = umg_crc32c(crc, m->payload, m->len);
    put32(hdr + 4, crc);
}

long umg__log_decode(const uint8_t *buf, size_t avail, umg_bus_msg_t *m)
{
    if (avail < UMG_LOG_HDR) {
        return 0;
    }
    uint32_t len = get32(buf);
    if (len > UMG_LOG_MAX_PAYLOAD || buf[39] != UMG_LOG_RECORD_VERSION) {
        return UMG_ECORRUPT;
    }
    if (avail - UMG_LOG_HDR < len) {
        return 0;
    }
    uint32_t crc = umg_crc32c(0, buf + 8, UMG_LOG_HDR - 8);
    crc = umg_crc32c(crc, buf + UMG_LOG_HDR, len);
    if (crc != get32(buf + 4)) {
        return UMG_ECORRUPT;
    }
    m->len = len;
    m->offset = get64(buf + 8);
    m->recv_us = (int64_t)get64(buf + 16);
    m->event_us = (int64_t)get64(buf + 24);
    m->app = get32(buf + 32);
    m->partition = get16(buf + 36);
    m->kind = buf[38];
    memcpy(m->id.b, buf + 40, 16);
    m->payload = (const char *)buf + UMG_LOG_HDR;
    return (long)(UMG_LOG_HDR + len);
}

static void idx_from_msg(umg_log_idx_t *e, const umg_bus_msg_t *m, uint64_t pos)
{
    memset(e, 0, sizeof(*e));
    e->pos = (uint32_t)pos;
    e->app = m->app;
    memcpy(e->id, m->id.b, 16);
    e->recv_s = (uint32_t)(m->recv_us / 1000000);
    e->event_s = m->event_us < 0 ? 0 : (uint32_t)(m->event_us / 1000000);
    e->partition = m->partition;
    e->kind = m->kind;
}

/* ---------------------------------------------------------------- I/O helpers */

/* The log's writes, with a hook for tests to make the next one fail. */
static int write_all(int fd, const void *p, size_t n)
{
    if (umg__log_inject_write_errno != 0) {
        errno = umg__log_inject_write_errno;
        umg__log_inject_write_errno = 0;
        return -1;
    }
    return umg_write_all(fd, p, n);
}

/* fdatasync of a segment's records, with a hook for tests to make the next one fail. */
static int sync_records(int fd)
{
    int e = atomic_exchange(&umg__log_inject_sync_errno, 0);
    if (e != 0) {
        errno = e;
        return -1;
    }
    return fdatasync(fd);
}

/* Writes iov[0..n) whole at pos (iov is modified), in chunks of at most IOV_MAX; same hook as write_all. */
static int pwritev_all(int fd, struct iovec *iov, size_t n, uint64_t pos)
{
    if (umg__log_inject_write_errno != 0) {
        errno = umg__log_inject_write_errno;
        umg__log_inject_write_errno = 0;
        return -1;
    }
    while (n > 0) {
        ssize_t w = pwritev(fd, iov, (int)UMG_MIN(n, (size_t)IOV_MAX), (off_t)pos);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        size_t left = (size_t)w;
        pos += (uint64_t)w;
        while (n > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}

static char *seg_path(const char *dir, uint64_t base, const char *ext)
{
    umg_buf_t b = {0};
    if (umg_buf_printf(&b, "%s/%020" PRIu64 ".%s", dir, base, ext) != UMG_OK) {
        umg_buf_free(&b);
        return NULL;
    }
    return b.ptr;
}

int umg__log_scan_segment(const char *path, uint64_t *valid_len, uint64_t *count, umg_log_idx_t **entries)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return errno == ENOENT ? UMG_ENOENT : UMG_EIO;
    }
    size_t cap = 1 << 20, have = 0;
    uint8_t *buf = umg_malloc(cap);
    umg_log_idx_t *ents = NULL;
    size_t ecap = 0;
    uint64_t pos = 0, n = 0;
    int rc = UMG_OK;
    if (buf == NULL) {
        rc = UMG_ENOMEM;
        goto done;
    }
    for (;;) {
        ssize_t r = umg_pread_full(fd, buf + have, cap - have, pos + have);
        if (r < 0) {
            rc = UMG_EIO;
            goto done;
        }
        have += (size_t)r;
        size_t used = 0;
        for (;;) {
            umg_bus_msg_t m;
            long sz = umg__log_decode(buf + used, have - used, &m);
            if (sz <= 0) {
                if (sz == 0 && have - used >= UMG_LOG_HDR) {
                    /* A record bigger than the window: grow and read on. */
                    uint32_t len = get32(buf + used);
                    if ((size_t)len + UMG_LOG_HDR > cap) {
                        size_t ncap = (size_t)len + UMG_LOG_HDR;
                        memmove(buf, buf + used, have - used);
                        uint8_t *nb = umg_realloc(buf, ncap);
                        if (nb == NULL) {
                            rc = UMG_ENOMEM;
                            goto done;
                        }
                        buf = nb;
                        cap = ncap;
                        pos += used;
                        have -= used;
                        used = 0;
                    }
                }
                if (sz < 0 || r == 0) {
                    pos += used; /* the valid prefix ends here: corrupt, or cut inside a record */
                    goto done;
                }
                break;
            }
            if (entries != NULL) {
                if (n == ecap) {
                    ecap = ecap ? ecap * 2 : 4096;
                    umg_log_idx_t *ne = umg_realloc(ents, ecap * sizeof(*ents));
                    if (ne == NULL) {
                        rc = UMG_ENOMEM;
                        goto done;
                    }
                    ents = ne;
                }
                idx_from_msg(&ents[n], &m, pos + used);
            }
            n++;
            used += (size_t)sz;
        }
        memmove(buf, buf + used, have - used);
        pos += used;
        have -= used;
        if (r == 0) {
            break;
        }
    }
done:
    close(fd);
    umg_free(buf);
    if (rc == UMG_OK) {
        *valid_len = pos;
        *count = n;
        if (entries != NULL) {
            *entries = ents;
        }
    } else {
        umg_free(ents);
    }
    return rc;
}

/* ---------------------------------------------------------------- segments */

static void seg_free(seg_t *s)
{
    if (s == NULL) {
        return;
    }
    umg_free(s->log_path);
    umg_free(s->idx_path);
    umg_free(s);
}

static seg_t *seg_new(const char *dir, uint64_t base)
{
    seg_t *s = umg_calloc(1, sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    s->base = base;
    s->log_path = seg_path(dir, base, "log");
    s->idx_path = seg_path(dir, base, "idx");
    if (s->log_path == NULL || s->idx_path == NULL) {
        seg_free(s);
        return NULL;
    }
    return s;
}

static int segs_push(umg_bus_t *bus, seg_t *s)
{
    pthread_mutex_lock(&bus->seglock);
    if (bus->nsegs == bus->capsegs) {
        size_t ncap = bus->capsegs ? bus->capsegs * 2 : 16;
        seg_t **n = umg_realloc(bus->segs, ncap * sizeof(*n));
        if (n == NULL) {
            pthread_mutex_unlock(&bus->seglock);
            return UMG_ENOMEM;
        }
        bus->segs = n;
        bus->capsegs = ncap;
    }
    bus->segs[bus->nsegs++] = s;
    pthread_mutex_unlock(&bus->seglock);
    umg_metric_set(&m_segments, (int64_t)bus->nsegs);
    return UMG_OK;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Whether bytes [from, to) of a file are all zero (or cannot be read: then no). */
static int tail_is_zero(const char *path, uint64_t from, uint64_t to)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    uint8_t buf[64 << 10];
    int zero = 1;
    while (zero && from < to) {
        size_t want = (size_t)UMG_MIN((uint64_t)sizeof(buf), to - from);
        ssize_t r = umg_pread_full(fd, buf, want, from);
        if (r != (ssize_t)want) {
            zero = 0;
            break;
        }
        for (size_t i = 0; i < want && zero; i++) {
            zero = buf[i] == 0;
        }
        from += want;
    }
    close(fd);
    return zero;
}

/*
 * Brings one segment to a consistent state: the log holds only whole valid
 * records and the index has one entry per record. `active` allows truncating
 * a torn tail; a sealed segment whose index matches is trusted as it is.
 */
static int recover_segment(umg_bus_t *bus, seg_t *s, int active)
{
    struct stat st_log, st_idx;
    if (stat(s->log_path, &st_log) != 0) {
        return UMG_EIO;
    }
    int idx_ok = stat(s->idx_path, &st_idx) == 0 && st_idx.st_size % sizeof(umg_log_idx_t) == 0;
    if (!active && idx_ok && st_idx.st_size > 0) {
        uint64_t n = (uint64_t)st_idx.st_size / sizeof(umg_log_idx_t);
        /* The last entry's record must end exactly at the end of the log. */
        int fd = open(s->idx_path, O_RDONLY | O_CLOEXEC);
        umg_log_idx_t e;
        ssize_t r = fd >= 0 ? umg_pread_full(fd, &e, sizeof(e), (n - 1) * sizeof(e)) : -1;
        if (fd >= 0) {
            close(fd);
        }
        if (r == (ssize_t)sizeof(e)) {
            int lfd = open(s->log_path, O_RDONLY | O_CLOEXEC);
            uint8_t hdr[UMG_LOG_HDR];
            ssize_t hr = lfd >= 0 ? umg_pread_full(lfd, hdr, sizeof(hdr), e.pos) : -1;
            if (lfd >= 0) {
                close(lfd);
            }
            if (hr == UMG_LOG_HDR && e.pos + UMG_LOG_HDR + (uint64_t)get32(hdr) == (uint64_t)st_log.st_size &&
                get64(hdr + 8) == s->base + n - 1) {
                s->count = n;
                s->bytes = (uint64_t)st_log.st_size;
                s->max_recv_s = e.recv_s;
                return UMG_OK;
            }
        }
    }
    uint64_t valid, n;
    umg_log_idx_t *ents = NULL;
    int rc = umg__log_scan_segment(s->log_path, &valid, &n, &ents);
    if (rc != UMG_OK) {
        return rc;
    }
    if (valid != (uint64_t)st_log.st_size) {
        /* Zeros after the last record of the active segment were written ahead by the
         * writer (see prepare()), not torn: say so quietly. */
        int zeros = active && tail_is_zero(s->log_path, valid, (uint64_t)st_log.st_size);
        umg_log(zeros    ? UMG_LOG_INFO
                : active ? UMG_LOG_WARN
                         : UMG_LOG_ERROR,
                "bus", "segment %s: %llu bytes after the last valid record (of %lld) truncated%s", s->log_path,
                (unsigned long long)((uint64_t)st_log.st_size - valid), (long long)st_log.st_size,
                zeros    ? " (zeros written ahead)"
                : active ? " (torn tail)"
                         : " (sealed segment damaged)");
        if (truncate(s->log_path, (off_t)valid) != 0) {
            umg_free(ents);
            return UMG_EIO;
        }
    }
    /* Rewrite the index from the scan. */
    int fd = open(s->idx_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write_all(fd, ents, n * sizeof(*ents)) != 0 || fdatasync(fd) != 0) {
        if (fd >= 0) {
            close(fd);
        }
        umg_free(ents);
        return UMG_EIO;
    }
    close(fd);
    s->count = n;
    s->bytes = valid;
    s->max_recv_s = n ? ents[n - 1].recv_s : 0;
    umg_free(ents);
    return UMG_OK;
}

static int load_meta(umg_bus_t *bus)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/meta", bus->dir);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        char text[128];
        int n = snprintf(text, sizeof(text), "format=%d\npartitions=%d\n", UMG_LOG_FORMAT_VERSION, bus->cfg.partitions);
        bus->partitions = bus->cfg.partitions;
        return umg_write_file_atomic(path, text, (size_t)n);
    }
    int format = 0, parts = 0;
    char line[256];
    while (fgets(line, sizeof(line), f) != NULL) {
        sscanf(line, "format=%d", &format);
        sscanf(line, "partitions=%d", &parts);
    }
    fclose(f);
    if (format != UMG_LOG_FORMAT_VERSION || parts <= 0 || parts > 65535) {
        umg_log(UMG_LOG_ERROR, "bus", "%s: unsupported log format %d or partitions %d", path, format, parts);
        return UMG_ECORRUPT;
    }
    if (parts != bus->cfg.partitions) {
        umg_log(UMG_LOG_WARN, "bus", "log.partitions is %d but the log at %s was created with %d; using %d",
                bus->cfg.partitions, bus->dir, parts, parts);
    }
    bus->partitions = parts;
    return UMG_OK;
}

static int open_active(umg_bus_t *bus, seg_t *s)
{
    /* The log is written at explicit positions (pwritev): its file may run ahead with zeros. */
    bus->log_fd = open(s->log_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    bus->idx_fd = open(s->idx_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (bus->log_fd < 0 || bus->idx_fd < 0) {
        umg_log(UMG_LOG_ERROR, "bus", "cannot open segment %s: %s", s->log_path, strerror(errno));
        return UMG_EIO;
    }
    bus->active_bytes = bus->prepared_bytes = s->bytes;
    return UMG_OK;
}

/* The id a record is deduplicated by: events and touches are apart, so that an event_id equal to some touch_id
 * (a sender reusing one UUID) is not taken for a duplicate of it. */
static inline umg_uuid_t dedupe_id(const uint8_t id[16], int kind)
{
    umg_uuid_t u;
    memcpy(u.b, id, 16);
    if (kind == UMG_BUS_KIND_TOUCH) {
        for (int k = 0; k < 8; k++) {
            u.b[8 + k] ^= (uint8_t)(0x5a + 17 * k);
        }
    }
    return u;
}

/* Fills the dedupe set from the indexes of segments inside the horizon. */
static int refill_dedupe(umg_bus_t *bus)
{
    int64_t now = umg_now_us();
    int64_t oldest_s = (now - bus->cfg.dedupe_horizon_ms * 1000) / 1000000;
    size_t chunk = 8192;
    umg_log_idx_t *buf = umg_malloc(chunk * sizeof(*buf));
    if (buf == NULL) {
        return UMG_ENOMEM;
    }
    int rc = UMG_OK;
    uint64_t total = 0;
    for (size_t k = 0; k < bus->nsegs; k++) {
        if (k + 1 == bus->nsegs || bus->segs[k]->max_recv_s >= oldest_s) {
            total += bus->segs[k]->count;
        }
    }
    /* One allocation instead of a rehash per doubling. */
    if ((rc = umg_dedupe_reserve(bus->dedupe, total)) != UMG_OK) {
        umg_free(buf);
        return rc;
    }
    for (size_t k = 0; k < bus->nsegs && rc == UMG_OK; k++) {
        seg_t *s = bus->segs[k];
        if (s->count == 0 || (k + 1 < bus->nsegs && s->max_recv_s < oldest_s)) {
            continue;
        }
        int fd = open(s->idx_path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            rc = UMG_EIO;
            break;
        }
        for (uint64_t i = 0; i < s->count && rc == UMG_OK; i += chunk) {
            size_t want = (size_t)UMG_MIN((uint64_t)chunk, s->count - i);
            ssize_t r = umg_pread_full(fd, buf, want * sizeof(*buf), i * sizeof(*buf));
            if (r != (ssize_t)(want * sizeof(*buf))) {
                rc = UMG_EIO;
                break;
            }
            for (size_t j = 0; j < want; j++) {
                if (j + 8 < want) {
                    umg_uuid_t ahead = dedupe_id(buf[j + 8].id, buf[j + 8].kind);
                    umg_dedupe_prefetch(bus->dedupe, buf[j + 8].app, &ahead);
                }
                if ((int64_t)buf[j].recv_s >= oldest_s) {
                    umg_uuid_t id = dedupe_id(buf[j].id, buf[j].kind);
                    rc = umg_dedupe_insert(bus->dedupe, buf[j].app, &id, (int64_t)buf[j].recv_s * 1000000);
                    if (rc != UMG_OK) {
                        break;
                    }
                }
            }
        }
        close(fd);
    }
    umg_free(buf);
    return rc;
}

/*
 * What a rewrite that stopped half-way (a crash) left of segment base: it writes <base>.log.new and .idx.new,
 * then renames the log, then the index. Both still there: nothing was replaced, they go. The index alone: the
 * log was replaced but the index not, so the old index goes too and recovery builds it again from the log.
 */
static void rewrite_leftovers(umg_bus_t *bus, uint64_t base)
{
    char *log_new = seg_path(bus->dir, base, "log.new"), *idx_new = seg_path(bus->dir, base, "idx.new");
    char *idx = seg_path(bus->dir, base, "idx");
    if (log_new != NULL && idx_new != NULL && idx != NULL) {
        if (access(idx_new, F_OK) == 0 && access(log_new, F_OK) != 0) {
            umg_log(UMG_LOG_WARN, "bus", "segment %020llu: a rewrite stopped between its renames; index rebuilt",
                    (unsigned long long)base);
            unlink(idx);
        }
        unlink(log_new);
        unlink(idx_new);
    }
    umg_free(log_new);
    umg_free(idx_new);
    umg_free(idx);
}

static int recover(umg_bus_t *bus)
{
    DIR *d = opendir(bus->dir);
    if (d == NULL) {
        return UMG_EIO;
    }
    uint64_t *bases = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    int rc = UMG_OK;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l == 24 && strcmp(de->d_name + 20, ".log") == 0) {
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                uint64_t *nb = umg_realloc(bases, cap * sizeof(*nb));
                if (nb == NULL) {
                    rc = UMG_ENOMEM;
                    break;
                }
                bases = nb;
            }
            bases[n++] = strtoull(de->d_name, NULL, 10);
        } else if ((l == 28 && strcmp(de->d_name + 20, ".log.new") == 0) ||
                   (l == 28 && strcmp(de->d_name + 20, ".idx.new") == 0)) {
            rewrite_leftovers(bus, strtoull(de->d_name, NULL, 10));
        }
    }
    closedir(d);
    if (rc != UMG_OK) {
        goto done;
    }
    if (n > 1) {
        qsort(bases, n, sizeof(*bases), cmp_u64);
    }
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        seg_t *s = seg_new(bus->dir, bases[i]);
        if (s == NULL) {
            rc = UMG_ENOMEM;
            goto done;
        }
        rc = recover_segment(bus, s, i + 1 == n);
        if (rc == UMG_OK) {
            rc = segs_push(bus, s);
        }
        if (rc != UMG_OK) {
            seg_free(s);
            goto done;
        }
        total += s->bytes;
    }
    if (n == 0) {
        seg_t *s = seg_new(bus->dir, 0);
        if (s == NULL || (rc = segs_push(bus, s)) != UMG_OK) {
            seg_free(s);
            rc = rc ? rc : UMG_ENOMEM;
            goto done;
        }
    }
    seg_t *last = bus->segs[bus->nsegs - 1];
    bus->next_offset = last->base + last->count;
    atomic_store(&bus->durable, bus->next_offset);
    atomic_store(&bus->total_bytes, total);
    umg_metric_set(&m_bytes, (int64_t)total);
    rc = open_active(bus, last);
    if (rc == UMG_OK && sync_records(bus->log_fd) != 0) {
        /* Readers are about to see every record the active segment shows, the group written before a crash
         * included: it must be on disk first, or a power loss would take it back after the pipeline applied it,
         * and new records would get its offsets (found in review). */
        umg_log(UMG_LOG_ERROR, "bus", "cannot sync %s at start: %s", last->log_path, strerror(errno));
        rc = UMG_EIO;
    }
    if (rc == UMG_OK) {
        rc = umg_fsync_dir(bus->dir);
    }
    if (rc == UMG_OK) {
        rc = refill_dedupe(bus);
    }
done:
    umg_free(bases);
    return rc;
}

/* ---------------------------------------------------------------- offsets */

static group_t *group_get(umg_bus_t *bus, const char *name, int create)
{
    for (group_t *g = bus->groups; g != NULL; g = g->link) {
        if (strcmp(g->name, name) == 0) {
            return g;
        }
    }
    if (!create) {
        return NULL;
    }
    group_t *g = umg_calloc(1, sizeof(*g));
    if (g == NULL) {
        return NULL;
    }
    g->name = umg_strndup(name, strlen(name));
    g->next = umg_calloc((size_t)bus->partitions, sizeof(uint64_t));
    if (g->name == NULL || g->next == NULL) {
        umg_free(g->name);
        umg_free(g->next);
        umg_free(g);
        return NULL;
    }
    /* Load what was committed before. */
    char path[4096];
    snprintf(path, sizeof(path), "%s/offsets/%s", bus->dir, name);
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        int p;
        unsigned long long off;
        while (fscanf(f, "%d %llu", &p, &off) == 2) {
            if (p >= 0 && p < bus->partitions) {
                g->next[p] = off;
            }
        }
        fclose(f);
    }
    g->link = bus->groups;
    bus->groups = g;
    return g;
}

static int valid_group_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) {
            return 0;
        }
    }
    return 1;
}

static int log_commit(umg_bus_t *bus, const char *group, int partition, uint64_t next_offset)
{
    if (!valid_group_name(group) || partition < 0 || partition >= bus->partitions) {
        return UMG_EINVAL;
    }
    pthread_mutex_lock(&bus->offlock);
    int rc = UMG_ENOMEM;
    group_t *g = group_get(bus, group, 1);
    if (g != NULL) {
        g->next[partition] = next_offset;
        umg_buf_t b = {0};
        rc = UMG_OK;
        for (int p = 0; p < bus->partitions && rc == UMG_OK; p++) {
            rc = umg_buf_printf(&b, "%d %" PRIu64 "\n", p, g->next[p]);
        }
        char path[4096];
        snprintf(path, sizeof(path), "%s/offsets/%s", bus->dir, group);
        if (rc == UMG_OK) {
            rc = umg_write_file_atomic(path, b.ptr, b.len);
        }
        umg_buf_free(&b);
    }
    pthread_mutex_unlock(&bus->offlock);
    return rc;
}

static int log_committed(umg_bus_t *bus, const char *group, int partition, uint64_t *out)
{
    if (!valid_group_name(group) || partition < 0 || partition >= bus->partitions) {
        return UMG_EINVAL;
    }
    pthread_mutex_lock(&bus->offlock);
    group_t *g = group_get(bus, group, 1);
    int rc = g ? UMG_OK : UMG_ENOMEM;
    if (g != NULL) {
        *out = g->next[partition];
    }
    pthread_mutex_unlock(&bus->offlock);
    return rc;
}

/* ---------------------------------------------------------------- writer */

/* Waits until every written group has been fsynced and completed (before a roll closes the fd). */
static void sync_wait_idle(umg_bus_t *bus)
{
    if (!bus->syncer_started) {
        return;
    }
    pthread_mutex_lock(&bus->slock);
    while (bus->shead != NULL || bus->ssyncing) {
        pthread_cond_wait(&bus->sidle, &bus->slock);
    }
    pthread_mutex_unlock(&bus->slock);
}

/*
 * Seals the active segment and starts a new one at next_offset. UMG_EIO (the
 * old segment could not be synced) breaks the log; any other failure (disk
 * full, no file descriptors) leaves the active segment as it was, so only this
 * group is refused and a later one tries again.
 */
static int roll(umg_bus_t *bus)
{
    sync_wait_idle(bus);
    if (atomic_load(&bus->broken)) {
        return UMG_EIO; /* the syncer's fdatasync failed: this segment is not to be sealed as it is */
    }
    /* A sealed segment ends at its last record: drop the zeros written ahead. */
    if (bus->prepared_bytes > bus->active_bytes && ftruncate(bus->log_fd, (off_t)bus->active_bytes) != 0) {
        umg_log(UMG_LOG_ERROR, "bus", "cannot trim the segment before a roll: %s", strerror(errno));
        return UMG_EIO;
    }
    bus->prepared_bytes = bus->active_bytes;
    if (sync_records(bus->log_fd) != 0 || fdatasync(bus->idx_fd) != 0) {
        umg_log(UMG_LOG_ERROR, "bus", "fdatasync before a segment roll failed: %s", strerror(errno));
        atomic_store(&bus->sync_failed, 1);
        return UMG_EIO;
    }
    bus->dirty = 0;
    seg_t *s = seg_new(bus->dir, bus->next_offset);
    if (s == NULL) {
        return UMG_ENOMEM;
    }
    int lfd = open(s->log_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    int ifd = lfd >= 0 ? open(s->idx_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644) : -1;
    int rc = UMG_OK;
    if (lfd < 0 || ifd < 0) {
        rc = (errno == ENOSPC || errno == EDQUOT) ? UMG_ENOSPC : UMG_EAGAIN;
        umg_log(UMG_LOG_ERROR, "bus", "cannot start segment %s: %s", s->log_path, strerror(errno));
    } else if (umg_fsync_dir(bus->dir) != UMG_OK) {
        rc = UMG_EAGAIN;
    }
    if (rc == UMG_OK) {
        rc = segs_push(bus, s);
    }
    if (rc != UMG_OK) {
        if (lfd >= 0) {
            close(lfd);
            unlink(s->log_path);
        }
        if (ifd >= 0) {
            close(ifd);
            unlink(s->idx_path);
        }
        seg_free(s);
        return rc;
    }
    close(bus->log_fd);
    close(bus->idx_fd);
    bus->log_fd = lfd;
    bus->idx_fd = ifd;
    bus->active_bytes = bus->prepared_bytes = 0;
    return UMG_OK;
}

static void complete_all(umg_bus_batch_t *list, int status)
{
    while (list != NULL) {
        umg_bus_batch_t *next = list->next;
        list->done(list, status);
        list = next;
    }
}

/* Undoes the dedupe inserts of a group that could not be written. */
static void undo_group(umg_bus_t *bus, umg_bus_batch_t *list, uint64_t first_offset)
{
    for (umg_bus_batch_t *b = list; b != NULL; b = b->next) {
        for (size_t i = 0; i < b->n; i++) {
            if (b->recs[i].status == UMG_OK) {
                umg_uuid_t id = dedupe_id(b->recs[i].id.b, b->recs[i].kind);
                umg_dedupe_remove(bus->dedupe, b->recs[i].app, &id);
            }
        }
    }
    bus->next_offset = first_offset;
}

static int do_sync(umg_bus_t *bus)
{
    if (!bus->dirty) {
        return UMG_OK;
    }
    uint64_t t0 = umg_mono_ns();
    int rc = sync_records(bus->log_fd);
    uint64_t t1 = umg_mono_ns();
    umg_metric_observe(&m_fsync, (double)(t1 - t0) / 1e9);
    bus->last_sync_ns = (int64_t)t1;
    if (rc != 0) {
        /* After a failed fsync the page cache state is unknown: stop (fsyncgate). */
        umg_log(UMG_LOG_ERROR, "bus", "fdatasync failed: %s; the log refuses writes until restart", strerror(errno));
        atomic_store(&bus->sync_failed, 1);
        atomic_store(&bus->broken, 1);
        return UMG_EIO;
    }
    bus->dirty = 0;
    return UMG_OK;
}

/* Tells the reader that asked (set_notify) that the durable end moved. */
static void notify(umg_bus_t *bus, uint64_t end)
{
    if (!atomic_load_explicit(&bus->notify_on, memory_order_acquire)) {
        return;
    }
    pthread_mutex_lock(&bus->nlock);
    if (bus->notify_fn != NULL) {
        bus->notify_fn(bus->notify_arg, end);
    }
    pthread_mutex_unlock(&bus->nlock);
}

static void log_set_notify(umg_bus_t *bus, void (*fn)(void *arg, uint64_t end), void *arg)
{
    pthread_mutex_lock(&bus->nlock);
    bus->notify_fn = fn;
    bus->notify_arg = arg;
    atomic_store_explicit(&bus->notify_on, fn != NULL, memory_order_release);
    pthread_mutex_unlock(&bus->nlock);
}

static void publish(umg_bus_t *bus)
{
    seg_t *s = bus->segs[bus->nsegs - 1];
    atomic_store_explicit(&s->bytes, bus->active_bytes, memory_order_release);
    atomic_store_explicit(&s->count, bus->next_offset - s->base, memory_order_release);
    atomic_store_explicit(&bus->durable, bus->next_offset, memory_order_release);
    notify(bus, bus->next_offset);
}

/*
 * Zeros written ahead of the records. An fdatasync after an append must commit
 * the file's new size and blocks through the ext4 journal; after an overwrite
 * of blocks that are already allocated and written it only flushes the data,
 * which measured two to three times faster on this disk for the small groups of
 * single-event traffic. So while groups are small the writer keeps the active
 * segment's file PREPARE_AHEAD to PREPARE_AHEAD + PREPARE_CHUNK bytes ahead of
 * its records with zeros (plain page-cache writes, made after a group was
 * handed to the syncer so that no group waits for them; the next fdatasync
 * commits the new size once per chunk) and writes records over them. "Small"
 * is a moving average of group sizes under PREPARE_MAX_GROUP: with batches
 * (tens of KiB per request and more per group) the zeros would double the
 * bytes written for few fsyncs to speed up, so batch traffic skips it. Readers
 * never look past the published end; recovery trims the zeros like a torn
 * tail, a roll or a clean stop truncates them, and a failure here only means
 * that records are appended.
 */
#define PREPARE_CHUNK (256u << 10)
#define PREPARE_AHEAD (128u << 10)
#define PREPARE_MAX_GROUP (16u << 10)

static void prepare_ahead(umg_bus_t *bus)
{
    static const char zeros[64 << 10];
    if (bus->group_avg > PREPARE_MAX_GROUP || bus->prepared_bytes >= bus->active_bytes + PREPARE_AHEAD) {
        return;
    }
    uint64_t target = UMG_MIN(bus->prepared_bytes + PREPARE_CHUNK, (uint64_t)bus->cfg.segment_bytes);
    uint64_t pos = bus->prepared_bytes;
    while (pos < target) {
        size_t n = (size_t)UMG_MIN((uint64_t)sizeof(zeros), target - pos);
        ssize_t w = pwrite(bus->log_fd, zeros, n, (off_t)pos);
        if (w <= 0) {
            if (w < 0 && errno == EINTR) {
                continue;
            }
            /* Disk full or similar: undo the partial extension and append instead. */
            if (ftruncate(bus->log_fd, (off_t)bus->prepared_bytes) != 0) {
                umg_log(UMG_LOG_WARN, "bus", "cannot trim zeros written ahead: %s", strerror(errno));
                bus->prepared_bytes = pos;
            }
            return;
        }
        pos += (uint64_t)w;
    }
    bus->prepared_bytes = target;
}

/*
 * Writes one group: the batches in `list`. Returns the status for their
 * completions. Records are deduplicated and their headers and index entries
 * encoded first, then written with one writev (log) and one write (index).
 */
static int write_group(umg_bus_t *bus, umg_bus_batch_t *list, size_t *nrec)
{
    uint64_t first = bus->next_offset;
    int64_t now = umg_now_us();
    int64_t max_recv_us = 0;
    size_t total = 0;
    umg_buf_reset(&bus->wbuf);
    umg_buf_reset(&bus->ibuf);
    *nrec = 0;
    /* Until the loop below reaches a record it counts as not processed, so that undoing a
     * failed group removes exactly the ids this group inserted. */
    for (umg_bus_batch_t *b = list; b != NULL; b = b->next) {
        for (size_t i = 0; i < b->n; i++) {
            b->recs[i].status = UMG_EAGAIN;
        }
        total += b->n;
    }
    /*
     * Headers go to wbuf and index entries to ibuf, both reserved up front so that
     * they do not move; the payloads are written from the producers' buffers with
     * writev, not copied (a copy of every byte on the busiest thread).
     */
    if (umg_buf_reserve(&bus->wbuf, total * UMG_LOG_HDR) != UMG_OK ||
        umg_buf_reserve(&bus->ibuf, total * sizeof(umg_log_idx_t)) != UMG_OK) {
        return UMG_ENOMEM;
    }
    if (total * 2 > bus->iov_cap) {
        struct iovec *niov = umg_realloc(bus->iov, total * 2 * sizeof(*niov));
        if (niov == NULL) {
            return UMG_ENOMEM;
        }
        bus->iov = niov;
        bus->iov_cap = total * 2;
    }
    size_t niov = 0, bytes = 0;
    enum { AHEAD = 8 }; /* dedupe lookups miss the cache: start them early */
    for (umg_bus_batch_t *b = list; b != NULL; b = b->next) {
        for (size_t i = 0; i < b->n && i < AHEAD; i++) {
            umg_uuid_t id = dedupe_id(b->recs[i].id.b, b->recs[i].kind);
            umg_dedupe_prefetch(bus->dedupe, b->recs[i].app, &id);
        }
        for (size_t i = 0; i < b->n; i++) {
            umg_bus_rec_t *r = &b->recs[i];
            if (i + AHEAD < b->n) {
                umg_uuid_t ahead = dedupe_id(r[AHEAD].id.b, r[AHEAD].kind);
                umg_dedupe_prefetch(bus->dedupe, r[AHEAD].app, &ahead);
            }
            umg_uuid_t id = dedupe_id(r->id.b, r->kind);
            int dup = umg_dedupe_check_insert(bus->dedupe, r->app, &id, now);
            if (dup < 0) {
                r->status = UMG_ENOMEM;
                continue;
            }
            if (dup) {
                r->status = UMG_EEXIST;
                continue;
            }
            r->status = UMG_OK;
            r->offset = bus->next_offset++;
            max_recv_us = UMG_MAX(max_recv_us, r->recv_us);
            umg_bus_msg_t m = {.offset = r->offset,
                               .app = r->app,
                               .partition = r->partition,
                               .kind = r->kind,
                               .event_us = r->event_us,
                               .recv_us = r->recv_us,
                               .id = r->id,
                               .payload = r->payload,
                               .len = r->len};
            uint8_t *hdr = (uint8_t *)bus->wbuf.ptr + bus->wbuf.len;
            umg__log_encode_hdr(hdr, &m);
            idx_from_msg((umg_log_idx_t *)(void *)(bus->ibuf.ptr + bus->ibuf.len), &m, bus->active_bytes + bytes);
            bus->wbuf.len += UMG_LOG_HDR;
            bus->ibuf.len += sizeof(umg_log_idx_t);
            bus->iov[niov++] = (struct iovec){.iov_base = hdr, .iov_len = UMG_LOG_HDR};
            if (r->len > 0) {
                bus->iov[niov++] = (struct iovec){.iov_base = (void *)(uintptr_t)r->payload, .iov_len = r->len};
            }
            bytes += UMG_LOG_HDR + r->len;
            (*nrec)++;
        }
    }
    if (bytes == 0) {
        return UMG_OK;
    }
    /* Moving average of group bytes (prepare_ahead), weight 1/8 for the newest. */
    bus->group_avg = bus->group_avg - bus->group_avg / 8 + bytes / 8;
    if (pwritev_all(bus->log_fd, bus->iov, niov, bus->active_bytes) != 0 ||
        write_all(bus->idx_fd, bus->ibuf.ptr, bus->ibuf.len) != 0) {
        int err = errno;
        umg_metric_add(&m_write_errors, 1);
        umg_log(UMG_LOG_ERROR, "bus", "log write failed: %s; %zu records refused", strerror(err), *nrec);
        seg_t *a = bus->segs[bus->nsegs - 1];
        uint64_t idx_len = (first - a->base) * sizeof(umg_log_idx_t);
        if (ftruncate(bus->log_fd, (off_t)bus->active_bytes) != 0 || ftruncate(bus->idx_fd, (off_t)idx_len) != 0) {
            umg_log(UMG_LOG_ERROR, "bus", "cannot truncate after a failed write: %s", strerror(errno));
            atomic_store(&bus->broken, 1);
        }
        bus->prepared_bytes = bus->active_bytes;
        undo_group(bus, list, first);
        return (err == ENOSPC || err == EDQUOT) ? UMG_ENOSPC : UMG_EIO;
    }
    bus->active_bytes += bytes;
    bus->prepared_bytes = UMG_MAX(bus->prepared_bytes, bus->active_bytes);
    seg_t *act = bus->segs[bus->nsegs - 1];
    if (max_recv_us / 1000000 > atomic_load(&act->max_recv_s)) {
        atomic_store(&act->max_recv_s, max_recv_us / 1000000);
    }
    atomic_fetch_add(&bus->total_bytes, bytes);
    umg_metric_add(&m_appended, (int64_t)*nrec);
    bus->dirty = 1;
    return UMG_OK;
}

/*
 * Retention drops the oldest sealed segments past age or size, but never one that holds records the pipeline
 * has not applied (set_floor), nor one received within the dedupe horizon: after a restart the dedupe set is
 * rebuilt from the log, so its ids would be accepted again. Such a segment is kept, and said so (again every
 * hour while it is).
 */
static void housekeeping(umg_bus_t *bus)
{
    int64_t now = umg_now_us();
    for (;;) {
        pthread_mutex_lock(&bus->seglock);
        seg_t *old = NULL;
        const char *held = NULL;
        uint64_t held_base = 0;
        if (bus->nsegs > 1 && !atomic_load(&bus->segs[0]->busy)) {
            seg_t *s = bus->segs[0];
            int too_old = bus->cfg.retention_ms > 0 && s->max_recv_s * 1000000 < now - bus->cfg.retention_ms * 1000;
            int too_big =
                bus->cfg.retention_bytes > 0 && atomic_load(&bus->total_bytes) > (uint64_t)bus->cfg.retention_bytes;
            if (too_old || too_big) {
                held_base = s->base;
                if (s->base + atomic_load(&s->count) > atomic_load(&bus->floor)) {
                    held = "the attribution pipeline has not applied all of it yet";
                } else if (s->max_recv_s * 1000000 >= now - bus->cfg.dedupe_horizon_ms * 1000) {
                    held = "its event ids are within dedupe.horizon";
                } else {
                    old = s;
                    memmove(bus->segs, bus->segs + 1, (bus->nsegs - 1) * sizeof(*bus->segs));
                    bus->nsegs--;
                }
            }
        }
        pthread_mutex_unlock(&bus->seglock);
        if (held != NULL && (!bus->retention_held || now - bus->held_warned_us >= INT64_C(3600000000))) {
            umg_log(UMG_LOG_WARN, "bus", "retention: segment %020llu is due but kept: %s",
                    (unsigned long long)held_base, held);
            bus->held_warned_us = now;
        }
        bus->retention_held = held != NULL;
        if (old == NULL) {
            break;
        }
        umg_log(UMG_LOG_INFO, "bus", "retention: removing segment %s (%llu records)", old->log_path,
                (unsigned long long)old->count);
        unlink(old->log_path);
        unlink(old->idx_path);
        static const char *const sidecars[] = {"flags", "sum"};
        for (size_t k = 0; k < UMG_ARRAY_SIZE(sidecars); k++) {
            char *path = seg_path(bus->dir, old->base, sidecars[k]);
            if (path != NULL) {
                unlink(path);
                umg_free(path);
            }
        }
        atomic_fetch_sub(&bus->total_bytes, atomic_load(&old->bytes));
        seg_free(old);
    }
    umg_metric_set(&m_segments, (int64_t)bus->nsegs);
    umg_metric_set(&m_bytes, (int64_t)atomic_load(&bus->total_bytes));
    umg_metric_set(&m_dedupe_ids, (int64_t)umg_dedupe_count(bus->dedupe));
    umg_metric_set(&m_dedupe_bytes, (int64_t)umg_dedupe_memory(bus->dedupe));
}

static void sync_push(umg_bus_t *bus, sync_job_t *j)
{
    pthread_mutex_lock(&bus->slock);
    if (bus->stail != NULL) {
        bus->stail->next = j;
    } else {
        bus->shead = j;
    }
    bus->stail = j;
    pthread_cond_signal(&bus->scond);
    pthread_mutex_unlock(&bus->slock);
}

/*
 * The syncer: one fdatasync covers every group written since the last one;
 * then the groups are published to readers and completed, in order. While it
 * waits on the disk the writer goes on appending, so the two overlap.
 */
static void *syncer_main(void *arg)
{
    umg_bus_t *bus = arg;
    umg_thread_name("umg-syncer");
    for (;;) {
        pthread_mutex_lock(&bus->slock);
        while (bus->shead == NULL && !bus->sstop) {
            pthread_cond_wait(&bus->scond, &bus->slock);
        }
        sync_job_t *jobs = bus->shead;
        bus->shead = bus->stail = NULL;
        bus->ssyncing = jobs != NULL;
        pthread_mutex_unlock(&bus->slock);
        if (jobs == NULL) {
            break;
        }
        int rc = UMG_OK;
        if (atomic_load(&bus->broken)) {
            rc = UMG_EIO;
        } else {
            uint64_t t0 = umg_mono_ns();
            if (sync_records(bus->log_fd) != 0) {
                umg_log(UMG_LOG_ERROR, "bus", "fdatasync failed: %s; the log refuses writes until restart",
                        strerror(errno));
                atomic_store(&bus->sync_failed, 1);
                atomic_store(&bus->broken, 1);
                rc = UMG_EIO;
            }
            umg_metric_observe(&m_fsync, (double)(umg_mono_ns() - t0) / 1e9);
        }
        uint64_t end = 0;
        while (jobs != NULL) {
            sync_job_t *j = jobs;
            jobs = j->next;
            if (rc == UMG_OK) {
                atomic_store_explicit(&j->seg->bytes, j->seg_bytes, memory_order_release);
                atomic_store_explicit(&j->seg->count, j->next_offset - j->seg->base, memory_order_release);
                atomic_store_explicit(&bus->durable, j->next_offset, memory_order_release);
                umg_metric_observe(&m_group, (double)j->nrec);
                end = j->next_offset;
            }
            complete_all(j->list, rc);
            umg_free(j);
        }
        if (end != 0) {
            notify(bus, end);
        }
        pthread_mutex_lock(&bus->slock);
        bus->ssyncing = 0;
        pthread_cond_broadcast(&bus->sidle);
        pthread_mutex_unlock(&bus->slock);
    }
    return NULL;
}

/*
 * After a failed fdatasync (fsync=always) the kernel may have dropped the pages it could not write and marked them
 * clean: the file still shows the refused groups, and a restart would read them back as stored (and answer the
 * retries of events refused with 503 as duplicates of them) although the disk may not hold them. So once the
 * syncer is done with the groups in flight, the writer cuts the active segment and its index back to the last
 * durable record (found in review). Writer thread.
 */
static void cut_to_durable(umg_bus_t *bus)
{
    if (bus->cut || bus->cfg.fsync_policy != UMG_FSYNC_ALWAYS) {
        return;
    }
    bus->cut = 1;
    sync_wait_idle(bus);
    seg_t *a = bus->segs[bus->nsegs - 1];
    uint64_t bytes = atomic_load(&a->bytes), count = atomic_load(&a->count);
    if (ftruncate(bus->log_fd, (off_t)bytes) != 0 ||
        ftruncate(bus->idx_fd, (off_t)(count * sizeof(umg_log_idx_t))) != 0) {
        umg_log(UMG_LOG_ERROR, "bus",
                "cannot cut %s back to its last durable record after the failed fdatasync: %s; records the disk may "
                "not hold could be read back by a restart, so restart the machine, not only the daemon",
                a->log_path, strerror(errno));
        return;
    }
    umg_log(UMG_LOG_WARN, "bus",
            "%s cut back to its last durable record (offset %llu, %llu bytes): what came after it "
            "was refused",
            a->log_path, (unsigned long long)(a->base + count), (unsigned long long)bytes);
    bus->active_bytes = bus->prepared_bytes = bytes;
}

static void *writer_main(void *arg)
{
    umg_bus_t *bus = arg;
    umg_thread_name("umg-writer");
    int64_t interval_ns = bus->cfg.fsync_interval_ms * 1000000;
    for (;;) {
        pthread_mutex_lock(&bus->qlock);
        while (bus->qhead == NULL && !bus->stopping) {
            struct timespec ts;
            umg_deadline_ms(&ts, 100); /* wake up for interval fsync and housekeeping */
            pthread_cond_timedwait(&bus->qcond, &bus->qlock, &ts);
            if (bus->qhead == NULL) {
                break;
            }
        }
        umg_bus_batch_t *list = bus->qhead;
        bus->qhead = bus->qtail = NULL;
        int stopping = bus->stopping;
        pthread_mutex_unlock(&bus->qlock);

        int64_t now_ns = (int64_t)umg_mono_ns();
        while (list != NULL) {
            /* Cut the list into groups of at most ~4 MiB so one write stays bounded. */
            umg_bus_batch_t *g = list, *tail = list;
            size_t bytes = list->bytes;
            while (tail->next != NULL && bytes + tail->next->bytes < (4u << 20)) {
                tail = tail->next;
                bytes += tail->bytes;
            }
            list = tail->next;
            tail->next = NULL;

            if (atomic_load(&bus->broken)) {
                cut_to_durable(bus);
                atomic_fetch_sub(&bus->queued_bytes, (int64_t)bytes);
                complete_all(g, UMG_EIO);
                continue;
            }
            if (bus->active_bytes > 0 && bus->active_bytes + bytes > (uint64_t)bus->cfg.segment_bytes) {
                int rc = roll(bus);
                if (rc != UMG_OK) {
                    if (rc == UMG_EIO) {
                        atomic_store(&bus->broken, 1);
                    }
                    umg_metric_add(&m_write_errors, 1);
                    atomic_fetch_sub(&bus->queued_bytes, (int64_t)bytes);
                    complete_all(g, rc);
                    continue;
                }
            }
            size_t nrec = 0;
            int rc = write_group(bus, g, &nrec);
            if (rc == UMG_OK && bus->syncer_started) {
                /* Even a group of duplicates waits its turn: its originals may still be
                 * in a group the syncer has not made durable yet. */
                sync_job_t *j = umg_malloc(sizeof(*j));
                if (j != NULL) {
                    *j = (sync_job_t){.list = g,
                                      .seg = bus->segs[bus->nsegs - 1],
                                      .next_offset = bus->next_offset,
                                      .seg_bytes = bus->active_bytes,
                                      .nrec = nrec};
                    atomic_fetch_sub(&bus->queued_bytes, (int64_t)bytes);
                    sync_push(bus, j);
                    prepare_ahead(bus);
                    continue;
                }
                sync_wait_idle(bus); /* no memory for a job: sync here, after the syncer */
                rc = do_sync(bus);
            }
            if (rc == UMG_OK) {
                publish(bus);
                umg_metric_observe(&m_group, (double)nrec);
            }
            atomic_fetch_sub(&bus->queued_bytes, (int64_t)bytes);
            complete_all(g, rc);
            if (rc == UMG_OK) {
                prepare_ahead(bus);
            }
        }
        if (bus->cfg.fsync_policy == UMG_FSYNC_INTERVAL && bus->dirty && now_ns - bus->last_sync_ns >= interval_ns) {
            do_sync(bus);
        }
        if (atomic_exchange(&bus->roll_requested, 0)) {
            /* The rewriter wants the active segment sealed (privacy requests cover it too); it is told when that
             * did not happen, so that a forget pass does not pass over the active segment's records. */
            int rc = atomic_load(&bus->broken) ? UMG_EIO : UMG_OK;
            if (bus->active_bytes > 0 && rc == UMG_OK) {
                if (bus->cfg.fsync_policy != UMG_FSYNC_ALWAYS) {
                    bus->dirty = 1;
                    rc = do_sync(bus);
                    publish(bus);
                }
                rc = rc ? rc : roll(bus);
                if (rc == UMG_EIO) {
                    atomic_store(&bus->broken, 1);
                }
            }
            atomic_store(&bus->roll_rc, rc);
            atomic_fetch_add(&bus->rolls_done, 1);
        }
        if (atomic_load(&bus->broken)) {
            cut_to_durable(bus); /* at once, not at the next request: a crash meanwhile would keep the groups */
        }
        umg_metric_set(&m_queue_bytes, atomic_load(&bus->queued_bytes));
        if (now_ns - bus->last_housekeeping_ns > 1000000000ll) {
            bus->last_housekeeping_ns = now_ns;
            housekeeping(bus);
        }
        if (stopping) {
            pthread_mutex_lock(&bus->qlock);
            int empty = bus->qhead == NULL;
            pthread_mutex_unlock(&bus->qlock);
            if (empty) {
                break;
            }
        }
    }
    if (bus->syncer_started) {
        pthread_mutex_lock(&bus->slock);
        bus->sstop = 1;
        pthread_cond_signal(&bus->scond);
        pthread_mutex_unlock(&bus->slock);
        pthread_join(bus->syncer, NULL);
        bus->syncer_started = 0;
    }
    if (atomic_load(&bus->broken)) {
        cut_to_durable(bus);
    }
    if (atomic_load(&bus->sync_failed)) {
        return NULL; /* no fdatasync: after a failed one it would report success for pages never written */
    }
    if (bus->prepared_bytes > bus->active_bytes) {
        /* A clean stop leaves the segment ending at its last record. */
        if (ftruncate(bus->log_fd, (off_t)bus->active_bytes) == 0) {
            bus->prepared_bytes = bus->active_bytes;
            bus->dirty = 1;
        }
    }
    if (bus->cfg.fsync_policy != UMG_FSYNC_ALWAYS || bus->dirty) {
        bus->dirty = 1;
        do_sync(bus);
    }
    fdatasync(bus->idx_fd);
    return NULL;
}

/* ---------------------------------------------------------------- ops */

void umg_bus_config_defaults(umg_bus_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->partitions = 16;
    cfg->fsync_policy = UMG_FSYNC_ALWAYS;
    cfg->fsync_interval_ms = 100;
    cfg->segment_bytes = 128ll << 20;
    cfg->retention_ms = 30ll * 86400 * 1000;
    cfg->queue_bytes = 256ll << 20;
    cfg->dedupe_horizon_ms = 7ll * 86400 * 1000;
    cfg->dedupe_max_ids = 50000000;
}

static void log_close(umg_bus_t *bus);

static int log_open(const umg_bus_config_t *cfg, umg_bus_t **out)
{
    if (cfg->dir == NULL || cfg->partitions < 1 || cfg->partitions > 65535 || cfg->segment_bytes < 4096) {
        return UMG_EINVAL;
    }
    metrics_register();
    umg_bus_t *bus = umg_calloc(1, sizeof(*bus));
    if (bus == NULL) {
        return UMG_ENOMEM;
    }
    bus->cfg = *cfg;
    atomic_store(&bus->floor, cfg->hold_for_reader ? 0 : UINT64_MAX);
    bus->log_fd = bus->idx_fd = -1;
    pthread_mutex_init(&bus->qlock, NULL);
    pthread_cond_init(&bus->qcond, NULL);
    pthread_mutex_init(&bus->seglock, NULL);
    pthread_mutex_init(&bus->offlock, NULL);
    pthread_mutex_init(&bus->rwlock_rewrite, NULL);
    pthread_mutex_init(&bus->slock, NULL);
    pthread_mutex_init(&bus->nlock, NULL);
    pthread_cond_init(&bus->scond, NULL);
    pthread_cond_init(&bus->sidle, NULL);
    int rc = UMG_ENOMEM;
    bus->dir = umg_strndup(cfg->dir, strlen(cfg->dir));
    if (bus->dir == NULL) {
        goto fail;
    }
    bus->cfg.dir = bus->dir;
    char sub[4096];
    snprintf(sub, sizeof(sub), "%s/offsets", bus->dir);
    if ((rc = umg_mkdirs(sub, 0755)) != UMG_OK) {
        goto fail;
    }
    if ((rc = load_meta(bus)) != UMG_OK) {
        goto fail;
    }
    if ((rc = umg_dedupe_new((uint64_t)cfg->dedupe_max_ids, cfg->dedupe_horizon_ms * 1000, &bus->dedupe)) != UMG_OK) {
        goto fail;
    }
    uint64_t t0 = umg_mono_ns();
    if ((rc = recover(bus)) != UMG_OK) {
        umg_log(UMG_LOG_ERROR, "bus", "recovery of %s failed: %s", bus->dir, umg_strerror(rc));
        goto fail;
    }
    umg_log(UMG_LOG_INFO, "bus", "log %s recovered: %llu segments, next offset %llu, %llu ids in dedupe, %.3f s",
            bus->dir, (unsigned long long)bus->nsegs, (unsigned long long)bus->next_offset,
            (unsigned long long)umg_dedupe_count(bus->dedupe), (double)(umg_mono_ns() - t0) / 1e9);
    housekeeping(bus);
    bus->last_sync_ns = (int64_t)umg_mono_ns();
    if (cfg->fsync_policy == UMG_FSYNC_ALWAYS) {
        if (pthread_create(&bus->syncer, NULL, syncer_main, bus) != 0) {
            rc = UMG_ENOMEM;
            goto fail;
        }
        bus->syncer_started = 1;
    }
    if (pthread_create(&bus->writer, NULL, writer_main, bus) != 0) {
        rc = UMG_ENOMEM;
        goto fail;
    }
    bus->writer_started = 1;
    *out = bus;
    return UMG_OK;
fail:
    log_close(bus);
    return rc;
}

static void log_close(umg_bus_t *bus)
{
    if (bus == NULL) {
        return;
    }
    if (bus->writer_started) {
        pthread_mutex_lock(&bus->qlock);
        bus->stopping = 1;
        pthread_cond_signal(&bus->qcond);
        pthread_mutex_unlock(&bus->qlock);
        pthread_join(bus->writer, NULL);
    }
    if (bus->syncer_started) { /* the writer never ran, so it did not stop the syncer */
        pthread_mutex_lock(&bus->slock);
        bus->sstop = 1;
        pthread_cond_signal(&bus->scond);
        pthread_mutex_unlock(&bus->slock);
        pthread_join(bus->syncer, NULL);
    }
    if (bus->log_fd >= 0) {
        close(bus->log_fd);
    }
    if (bus->idx_fd >= 0) {
        close(bus->idx_fd);
    }
    for (size_t i = 0; i < bus->nsegs; i++) {
        seg_free(bus->segs[i]);
    }
    umg_free(bus->segs);
    while (bus->groups != NULL) {
        group_t *g = bus->groups;
        bus->groups = g->link;
        umg_free(g->name);
        umg_free(g->next);
        umg_free(g);
    }
    umg_dedupe_free(bus->dedupe);
    umg_buf_free(&bus->wbuf);
    umg_buf_free(&bus->ibuf);
    umg_free(bus->iov);
    pthread_mutex_destroy(&bus->qlock);
    pthread_cond_destroy(&bus->qcond);
    pthread_mutex_destroy(&bus->seglock);
    pthread_mutex_destroy(&bus->offlock);
    pthread_mutex_destroy(&bus->rwlock_rewrite);
    pthread_mutex_destroy(&bus->slock);
    pthread_mutex_destroy(&bus->nlock);
    pthread_cond_destroy(&bus->scond);
    pthread_cond_destroy(&bus->sidle);
    umg_free(bus->dir);
    umg_free(bus);
}

static int log_submit(umg_bus_t *bus, umg_bus_batch_t *b)
{
    size_t bytes = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (b->recs[i].app == 0 || b->recs[i].partition >= bus->partitions || b->recs[i].len > UMG_LOG_MAX_PAYLOAD) {
            return UMG_EINVAL;
        }
        bytes += b->recs[i].len + UMG_LOG_HDR;
    }
    if (atomic_load(&bus->broken)) {
        return UMG_EIO;
    }
    b->bytes = bytes;
    b->next = NULL;
    int64_t q = atomic_fetch_add(&bus->queued_bytes, (int64_t)bytes);
    if (q > 0 && q + (int64_t)bytes > bus->cfg.queue_bytes) {
        atomic_fetch_sub(&bus->queued_bytes, (int64_t)bytes);
        return UMG_EFULL;
    }
    pthread_mutex_lock(&bus->qlock);
    if (bus->stopping) {
        pthread_mutex_unlock(&bus->qlock);
        atomic_fetch_sub(&bus->queued_bytes, (int64_t)bytes);
        return UMG_ECLOSED;
    }
    if (bus->qtail != NULL) {
        bus->qtail->next = b;
    } else {
        bus->qhead = b;
    }
    bus->qtail = b;
    pthread_cond_signal(&bus->qcond);
    pthread_mutex_unlock(&bus->qlock);
    return UMG_OK;
}

static void log_stats(umg_bus_t *bus, umg_bus_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    out->durable_offset = atomic_load(&bus->durable);
    out->next_offset = out->durable_offset;
    out->bytes = atomic_load(&bus->total_bytes);
    pthread_mutex_lock(&bus->seglock);
    out->segments = bus->nsegs;
    pthread_mutex_unlock(&bus->seglock);
    out->dedupe_ids = (uint64_t)atomic_load(&m_dedupe_ids.value);
    out->queue_bytes = (uint64_t)atomic_load(&bus->queued_bytes);
    out->broken = atomic_load(&bus->broken);
}

/* Receive time of index entry i of a segment, in seconds; -1 on error. */
static int64_t idx_recv_at(int fd, uint64_t i)
{
    umg_log_idx_t e;
    if (umg_pread_full(fd, &e, sizeof(e), i * sizeof(e)) != (ssize_t)sizeof(e)) {
        return -1;
    }
    return e.recv_s;
}

/*
 * Receive times grow with offsets (the writer stamps nothing; ingest threads
 * stamp just before queueing), so a binary search over each segment's index
 * finds the first record at or after a time, to the second.
 */
static int log_offset_for_time(umg_bus_t *bus, int64_t recv_us, uint64_t *out)
{
    int64_t want = recv_us / 1000000;
    uint64_t durable = atomic_load_explicit(&bus->durable, memory_order_acquire);
    pthread_mutex_lock(&bus->seglock);
    size_t n = bus->nsegs;
    uint64_t *bases = umg_malloc((n ? n : 1) * sizeof(uint64_t) * 2);
    char **paths = umg_calloc(n ? n : 1, sizeof(char *));
    if (bases == NULL || paths == NULL) {
        pthread_mutex_unlock(&bus->seglock);
        umg_free(bases);
        umg_free(paths);
        return UMG_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        bases[2 * i] = bus->segs[i]->base;
        bases[2 * i + 1] = atomic_load(&bus->segs[i]->count);
        paths[i] = umg_strndup(bus->segs[i]->idx_path, strlen(bus->segs[i]->idx_path));
    }
    pthread_mutex_unlock(&bus->seglock);
    int rc = UMG_OK;
    *out = durable;
    for (size_t i = 0; i < n && rc == UMG_OK; i++) {
        uint64_t count = bases[2 * i + 1];
        if (count == 0 || paths[i] == NULL) {
            continue;
        }
        int fd = open(paths[i], O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            continue; /* removed by retention meanwhile */
        }
        int64_t last = idx_recv_at(fd, count - 1);
        if (last < 0) {
            rc = UMG_EIO;
        } else if (last >= want) {
            uint64_t lo = 0, hi = count - 1;
            while (lo < hi) {
                uint64_t mid = lo + (hi - lo) / 2;
                int64_t t = idx_recv_at(fd, mid);
                if (t < 0) {
                    rc = UMG_EIO;
                    break;
                }
                if (t < want) {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            *out = bases[2 * i] + lo;
            close(fd);
            break;
        }
        close(fd);
    }
    for (size_t i = 0; i < n; i++) {
        umg_free(paths[i]);
    }
    umg_free(paths);
    umg_free(bases);
    return rc;
}

static int log_partitions(umg_bus_t *bus)
{
    return bus->partitions;
}

/* ---------------------------------------------------------------- readers */

#define READER_IDX_CHUNK 4096
#define READER_WINDOW (1u << 20)

/*
 * drop_behind: the pages of [*dropped, upto) of a segment file leave the page
 * cache, in steps of umg__log_drop_step (8 MiB; tests make it smaller). The
 * log is written once and read once by the pipeline; kept cached it pushes
 * out the attribution store's pages, and every appended page is then a newly
 * allocated one (on a VM whose memory the host backs lazily, a fault on the
 * host too: writes into recycled pages ran 4x faster, docs/storage.md).
 * Readers only read published records, which fsync=always has made durable,
 * so the pages are clean and simply freed; dirty ones (other fsync modes) are
 * left to writeback by the kernel.
 */
uint64_t umg__log_drop_step = 8u << 20;

static void drop_cached(int fd, uint64_t *dropped, uint64_t upto)
{
    if (upto != UINT64_MAX) { /* UINT64_MAX: to the end of the file */
        upto -= upto % umg__log_drop_step;
    }
    if (fd >= 0 && upto > *dropped) {
        (void)posix_fadvise(fd, (off_t)*dropped, upto == UINT64_MAX ? 0 : (off_t)(upto - *dropped),
                            POSIX_FADV_DONTNEED);
        *dropped = upto;
    }
}

static void reader_drop_segment(umg_bus_reader_t *r)
{
    if (r->log_fd >= 0) {
        close(r->log_fd);
    }
    if (r->idx_fd >= 0) {
        close(r->idx_fd);
    }
    r->log_fd = r->idx_fd = -1;
    r->idx_n = r->idx_i = 0;
    r->buf_len = 0;
    r->log_dropped = r->idx_dropped = 0;
}

static int log_reader_open(umg_bus_t *bus, const umg_bus_read_opts_t *opts, umg_bus_reader_t **out)
{
    if (opts->partition >= bus->partitions) {
        return UMG_EINVAL;
    }
    umg_bus_reader_t *r = umg_calloc(1, sizeof(*r));
    if (r == NULL) {
        return UMG_ENOMEM;
    }
    r->bus = bus;
    r->opts = *opts;
    r->next = opts->from_offset;
    r->log_fd = r->idx_fd = -1;
    r->seg_base = UINT64_MAX;
    r->idx = umg_malloc(READER_IDX_CHUNK * sizeof(umg_log_idx_t));
    r->buf_cap = READER_WINDOW;
    r->buf = umg_malloc(r->buf_cap);
    if (r->idx == NULL || r->buf == NULL) {
        umg_free(r->idx);
        umg_free(r->buf);
        umg_free(r);
        return UMG_ENOMEM;
    }
    *out = r;
    return UMG_OK;
}

static void log_reader_close(umg_bus_reader_t *r)
{
    if (r == NULL) {
        return;
    }
    reader_drop_segment(r);
    umg_free(r->idx);
    umg_free(r->buf);
    umg_free(r);
}

/* Opens the segment holding r->next (or the first after it). */
static int reader_locate(umg_bus_reader_t *r, uint64_t durable, seg_t *out)
{
    umg_bus_t *bus = r->bus;
    pthread_mutex_lock(&bus->seglock);
    int found = 0;
    for (size_t i = 0; i < bus->nsegs; i++) {
        seg_t *s = bus->segs[i];
        uint64_t end = s->base + atomic_load_explicit(&s->count, memory_order_acquire);
        if (r->next < end || (i + 1 == bus->nsegs && r->next < durable)) {
            if (r->next < s->base) {
                r->next = s->base; /* removed by retention, or a gap */
            }
            out->base = s->base;
            out->count = end - s->base;
            out->bytes = atomic_load(&s->bytes);
            r->log_fd = open(s->log_path, O_RDONLY | O_CLOEXEC);
            r->idx_fd = open(s->idx_path, O_RDONLY | O_CLOEXEC);
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&bus->seglock);
    if (!found) {
        return UMG_EAGAIN;
    }
    if (r->log_fd < 0 || r->idx_fd < 0) {
        reader_drop_segment(r);
        return UMG_EIO;
    }
    r->seg_base = out->base;
    r->idx_n = r->idx_i = 0;
    r->buf_len = 0;
    return UMG_OK;
}

/* Published bytes of the segment at `base` when it is the active one. A
 * sealed segment is complete in the file a reader opened (a rewrite replaces
 * the file, not its contents), so its size does not bound reads (UINT64_MAX). */
static uint64_t seg_published_bytes(umg_bus_t *bus, uint64_t base)
{
    uint64_t bytes = UINT64_MAX;
    pthread_mutex_lock(&bus->seglock);
    if (bus->nsegs > 0 && bus->segs[bus->nsegs - 1]->base == base) {
        bytes = atomic_load_explicit(&bus->segs[bus->nsegs - 1]->bytes, memory_order_acquire);
    }
    pthread_mutex_unlock(&bus->seglock);
    return bytes;
}

/*
 * Makes [pos, pos + need) of the segment available in the read-ahead window.
 * The window never reaches past the published end: bytes beyond it may belong
 * to a group whose write failed and will be overwritten with other records.
 */
static int reader_fetch(umg_bus_reader_t *r, uint64_t pos, size_t need)
{
    if (pos >= r->buf_pos && pos + need <= r->buf_pos + r->buf_len) {
        return UMG_OK;
    }
    if (need > r->buf_cap) {
        uint8_t *nb = umg_realloc(r->buf, need);
        if (nb == NULL) {
            return UMG_ENOMEM;
        }
        r->buf = nb;
        r->buf_cap = need;
    }
    uint64_t published = seg_published_bytes(r->bus, r->seg_base);
    size_t want = r->buf_cap;
    if (published != UINT64_MAX) {
        if (published < pos + need) {
            return UMG_ECORRUPT;
        }
        want = (size_t)UMG_MIN((uint64_t)want, published - pos);
    }
    if (r->opts.drop_behind) {
        drop_cached(r->log_fd, &r->log_dropped, pos);
    }
    ssize_t got = umg_pread_full(r->log_fd, r->buf, want, pos);
    if (got < (ssize_t)need) {
        return UMG_ECORRUPT;
    }
    r->buf_pos = pos;
    r->buf_len = (size_t)got;
    return UMG_OK;
}

static int log_reader_next(umg_bus_reader_t *r, umg_bus_msg_t *msg)
{
    umg_bus_t *bus = r->bus;
    const umg_bus_read_opts_t *o = &r->opts;
    int64_t from_s = o->event_from_us / 1000000, to_s = (o->event_to_us + 999999) / 1000000;
    for (uint32_t passed = 0;; passed++) {
        if (o->scan_max != 0 && passed >= o->scan_max) {
            return UMG_EBUSY; /* r->next is the first record not looked at */
        }
        uint64_t durable = atomic_load_explicit(&bus->durable, memory_order_acquire);
        if (o->to_offset != 0 && o->to_offset < durable) {
            durable = o->to_offset;
        }
        if (r->next >= durable) {
            return UMG_EAGAIN;
        }
        if (r->log_fd < 0) {
            seg_t s;
            int rc = reader_locate(r, durable, &s);
            if (rc != UMG_OK) {
                return rc;
            }
            if (r->next >= durable) { /* moved past a removed range, beyond what this reader may read */
                return UMG_EAGAIN;
            }
        }
        uint64_t rel = r->next - r->seg_base;
        if (r->idx_i >= r->idx_n || rel != r->idx_first + r->idx_i) {
            /* Refill the index chunk starting at rel, bounded by what is published. */
            uint64_t avail = durable - r->seg_base;
            struct stat st;
            if (fstat(r->idx_fd, &st) != 0) {
                return UMG_EIO;
            }
            uint64_t in_idx = (uint64_t)st.st_size / sizeof(umg_log_idx_t);
            avail = UMG_MIN(avail, in_idx);
            if (rel >= avail) {
                /* This segment is done: move on to the one holding r->next. */
                uint64_t old_base = r->seg_base;
                if (r->opts.drop_behind && rel == in_idx && avail == in_idx && in_idx > 0 &&
                    seg_published_bytes(bus, old_base) == UINT64_MAX) {
                    /* sealed and read to its end: all of it goes */
                    drop_cached(r->log_fd, &r->log_dropped, UINT64_MAX);
                    drop_cached(r->idx_fd, &r->idx_dropped, UINT64_MAX);
                }
                reader_drop_segment(r);
                seg_t s;
                int rc = reader_locate(r, durable, &s);
                if (rc != UMG_OK) {
                    return rc;
                }
                if (r->seg_base == old_base) {
                    reader_drop_segment(r);
                    return UMG_ECORRUPT; /* the index is shorter than what was published */
                }
                continue;
            }
            if (r->opts.drop_behind) {
                drop_cached(r->idx_fd, &r->idx_dropped, rel * sizeof(umg_log_idx_t));
            }
            size_t want = (size_t)UMG_MIN((uint64_t)READER_IDX_CHUNK, avail - rel);
            ssize_t got = umg_pread_full(r->idx_fd, r->idx, want * sizeof(umg_log_idx_t), rel * sizeof(umg_log_idx_t));
            if (got != (ssize_t)(want * sizeof(umg_log_idx_t))) {
                return UMG_EIO;
            }
            r->idx_first = rel;
            r->idx_n = want;
            r->idx_i = 0;
        }
        const umg_log_idx_t *e = &r->idx[r->idx_i++];
        r->next++;
        if ((o->partition >= 0 && e->partition != o->partition) || (o->app != 0 && e->app != o->app) ||
            (o->kind != 0 && e->kind != o->kind)) {
            continue;
        }
        if ((o->event_from_us || o->event_to_us) &&
            ((int64_t)e->event_s < from_s - 1 || (o->event_to_us && (int64_t)e->event_s > to_s))) {
            continue;
        }
        int rc = reader_fetch(r, e->pos, UMG_LOG_HDR);
        if (rc == UMG_OK) {
            uint32_t len = get32(r->buf + (e->pos - r->buf_pos));
            /* a damaged length is refused before it sizes the buffer */
            rc = len > UMG_LOG_MAX_PAYLOAD ? UMG_ECORRUPT : reader_fetch(r, e->pos, (size_t)UMG_LOG_HDR + len);
        }
        if (rc == UMG_OK) {
            long sz = umg__log_decode(r->buf + (e->pos - r->buf_pos), r->buf_len - (e->pos - r->buf_pos), msg);
            rc = sz <= 0 || msg->offset != r->next - 1 ? UMG_ECORRUPT : UMG_OK;
        }
        if (rc == UMG_ECORRUPT) {
            int skip = o->skip_damaged && seg_published_bytes(bus, r->seg_base) == UINT64_MAX; /* sealed */
            umg_log(UMG_LOG_ERROR, "bus", "record %llu failed its check in segment %020llu%s",
                    (unsigned long long)(r->next - 1), (unsigned long long)r->seg_base, skip ? "; passed over" : "");
            if (skip) {
                *msg = (umg_bus_msg_t){.offset = r->next - 1,
                                       .app = e->app,
                                       .partition = e->partition,
                                       .kind = e->kind,
                                       .event_us = (int64_t)e->event_s * 1000000,
                                       .recv_us = (int64_t)e->recv_s * 1000000,
                                       .payload = "",
                                       .len = 0};
                memcpy(msg->id.b, e->id, 16);
                return UMG_OK;
            }
        }
        if (rc != UMG_OK) {
            return rc;
        }
        if ((o->event_from_us && msg->event_us < o->event_from_us) ||
            (o->event_to_us && msg->event_us >= o->event_to_us)) {
            continue;
        }
        if (msg->len == 0) {
            continue; /* a tombstone: the record was forgotten (privacy) */
        }
        return UMG_OK;
    }
}

/* ---------------------------------------------------------------- rewrite */

/* Segment flags kept in `<base>.flags` (a decimal number); 0 when absent. */
static uint32_t flags_load(umg_bus_t *bus, uint64_t base)
{
    char *path = seg_path(bus->dir, base, "flags");
    uint32_t v = 0;
    FILE *f = path ? fopen(path, "re") : NULL;
    if (f != NULL) {
        unsigned long x = 0;
        if (fscanf(f, "%lu", &x) == 1) {
            v = (uint32_t)x;
        }
        fclose(f);
    }
    umg_free(path);
    return v;
}

static int flags_store(umg_bus_t *bus, uint64_t base, uint32_t v)
{
    char *path = seg_path(bus->dir, base, "flags");
    if (path == NULL) {
        return UMG_ENOMEM;
    }
    char text[24];
    int n = snprintf(text, sizeof(text), "%u\n", v);
    int rc = umg_write_file_atomic(path, text, (size_t)n);
    umg_free(path);
    return rc;
}

/* The first len bytes of in to out (the unchanged records before a rewrite's first change). */
static int copy_prefix(int in, int out, uint64_t len)
{
    size_t cap = 1 << 20;
    uint8_t *chunk = umg_malloc(cap);
    int rc = chunk ? UMG_OK : UMG_ENOMEM;
    for (uint64_t at = 0; rc == UMG_OK && at < len;) {
        size_t n = len - at < cap ? (size_t)(len - at) : cap;
        if (umg_pread_full(in, chunk, n, at) != (ssize_t)n) {
            rc = UMG_ECORRUPT;
        } else if (write_all(out, chunk, n) != 0) {
            rc = errno == ENOSPC ? UMG_ENOSPC : UMG_EIO;
        }
        at += n;
    }
    umg_free(chunk);
    return rc;
}

/*
 * Rewrites one sealed segment into `<base>.log.new` / `.idx.new`, record by
 * record as rw->record decides, then renames them over the old files. Offsets,
 * apps, ids and times stay; only payloads change (a tombstone has none). A
 * crash between the two renames leaves a new log with an old index, which
 * recovery notices (the last entry no longer matches) and rebuilds.
 */
static int rewrite_segment(umg_bus_t *bus, seg_t *seg, const umg_bus_rewriter_t *rw, umg_bus_rewrite_stats_t *st)
{
    char *tmp_log = seg_path(bus->dir, seg->base, "log.new"), *tmp_idx = seg_path(bus->dir, seg->base, "idx.new");
    int in = -1, out = -1, iout = -1, rc = UMG_OK;
    uint8_t *buf = NULL;
    umg_buf_t payload = {0}, wbuf = {0}, ibuf = {0};
    uint64_t changed = 0, records = 0, pos = 0, new_bytes = 0;
    if (tmp_log == NULL || tmp_idx == NULL) {
        rc = UMG_ENOMEM;
        goto done;
    }
    in = open(seg->log_path, O_RDONLY | O_CLOEXEC);
    out = open(tmp_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    iout = open(tmp_idx, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (in < 0 || out < 0 || iout < 0) {
        rc = errno == ENOSPC ? UMG_ENOSPC : UMG_EIO;
        goto done;
    }
    struct stat sb;
    if (fstat(in, &sb) != 0) {
        rc = UMG_EIO;
        goto done;
    }
    size_t cap = 1 << 20;
    buf = umg_malloc(cap);
    if (buf == NULL) {
        rc = UMG_ENOMEM;
        goto done;
    }
    while (pos < (uint64_t)sb.st_size && rc == UMG_OK) {
        uint8_t hdr[UMG_LOG_HDR];
        if (umg_pread_full(in, hdr, sizeof(hdr), pos) != UMG_LOG_HDR) {
            rc = UMG_ECORRUPT;
            break;
        }
        size_t total = UMG_LOG_HDR + (size_t)get32(hdr);
        if (total > cap) {
            uint8_t *nb = umg_realloc(buf, total);
            if (nb == NULL) {
                rc = UMG_ENOMEM;
                break;
            }
            buf = nb;
            cap = total;
        }
        umg_bus_msg_t m;
        if (umg_pread_full(in, buf, total, pos) != (ssize_t)total || umg__log_decode(buf, total, &m) != (long)total) {
            rc = UMG_ECORRUPT;
            break;
        }
        umg_buf_reset(&payload);
        int action = rw->record(rw->ctx, &m, &payload);
        if (action < 0) {
            rc = action;
            break;
        }
        umg_log_idx_t e;
        /* Until the first change the new file would be the old one: nothing is copied before it. */
        uint64_t new_pos = changed == 0 ? pos : new_bytes + wbuf.len;
        if (action == UMG_BUS_KEEP) {
            rc = changed > 0 ? umg_buf_append(&wbuf, buf, total) : UMG_OK;
        } else {
            if (changed == 0) {
                rc = copy_prefix(in, out, pos);
                new_bytes = pos;
            }
            umg_bus_msg_t nm = m;
            nm.payload = action == UMG_BUS_REPLACE ? payload.ptr : "";
            nm.len = action == UMG_BUS_REPLACE ? (uint32_t)payload.len : 0;
            uint8_t nh[UMG_LOG_HDR];
            umg__log_encode_hdr(nh, &nm);
            rc = rc ? rc : umg_buf_append(&wbuf, nh, sizeof(nh));
            rc = rc ? rc : umg_buf_append(&wbuf, nm.payload, nm.len);
            changed++;
            st->replaced += action == UMG_BUS_REPLACE;
            st->tombstoned += action == UMG_BUS_TOMBSTONE;
        }
        idx_from_msg(&e, &m, new_pos);
        rc = rc ? rc : umg_buf_append(&ibuf, &e, sizeof(e));
        records++;
        pos += total;
        if (rc == UMG_OK && wbuf.len >= (4u << 20)) {
            rc = write_all(out, wbuf.ptr, wbuf.len) == 0 ? UMG_OK : UMG_EIO;
            new_bytes += wbuf.len;
            umg_buf_reset(&wbuf);
        }
    }
    if (rc == UMG_OK && wbuf.len > 0) {
        rc = write_all(out, wbuf.ptr, wbuf.len) == 0 ? UMG_OK : UMG_EIO;
        new_bytes += wbuf.len;
    }
    st->records += records;
    if (rc == UMG_OK && changed == 0) {
        goto done; /* nothing to replace: drop the copies */
    }
    if (rc == UMG_OK && (write_all(iout, ibuf.ptr, ibuf.len) != 0 || fdatasync(out) != 0 || fdatasync(iout) != 0)) {
        rc = errno == ENOSPC ? UMG_ENOSPC : UMG_EIO;
    }
    if (rc == UMG_OK) {
        /* Readers open a segment's two files under seglock (reader_locate): never the new records with the old
         * index. Those that have them open already keep reading the old pair. */
        pthread_mutex_lock(&bus->seglock);
        int renamed = rename(tmp_log, seg->log_path) == 0;
        if (renamed && umg__log_rename_pause_us > 0) {
            usleep((useconds_t)umg__log_rename_pause_us);
        }
        renamed = renamed && rename(tmp_idx, seg->idx_path) == 0;
        pthread_mutex_unlock(&bus->seglock);
        if (!renamed || umg_fsync_dir(bus->dir) != UMG_OK) {
            umg_log(UMG_LOG_ERROR, "bus", "cannot replace segment %s: %s", seg->log_path, strerror(errno));
            rc = UMG_EIO;
        } else {
            uint64_t old = atomic_exchange(&seg->bytes, new_bytes);
            atomic_fetch_add(&bus->total_bytes, new_bytes);
            atomic_fetch_sub(&bus->total_bytes, old);
            st->segments++;
        }
    }
done:
    if (in >= 0) {
        close(in);
    }
    if (out >= 0) {
        close(out);
    }
    if (iout >= 0) {
        close(iout);
    }
    if (tmp_log != NULL) {
        unlink(tmp_log); /* gone already after a successful rename */
    }
    if (tmp_idx != NULL) {
        unlink(tmp_idx);
    }
    umg_free(tmp_log);
    umg_free(tmp_idx);
    umg_free(buf);
    umg_buf_free(&payload);
    umg_buf_free(&wbuf);
    umg_buf_free(&ibuf);
    return rc;
}

/* Whether the segment's index names a record of one of the apps (1 as well when it cannot be read). */
static int seg_has_app(const seg_t *seg, const uint32_t *apps, size_t napps)
{
    int fd = open(seg->idx_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 1;
    }
    umg_log_idx_t e[1024];
    int found = 0;
    ssize_t got = 0;
    for (uint64_t off = 0; !found && (got = umg_pread_full(fd, e, sizeof(e), off)) > 0; off += (uint64_t)got) {
        for (size_t i = 0; !found && i < (size_t)got / sizeof(e[0]); i++) {
            for (size_t a = 0; a < napps; a++) {
                found |= e[i].app == apps[a];
            }
        }
    }
    found |= got < 0;
    close(fd);
    return found;
}

/*
 * A bound at or before the oldest receive time in a sealed segment: its first record's second, less a minute
 * (records are appended in about the order they were received: loop threads hand them to the writer within
 * milliseconds of each other). 0 when the index cannot be read.
 */
static int64_t seg_min_recv_us(const seg_t *seg)
{
    umg_log_idx_t e;
    int fd = open(seg->idx_path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? umg_pread_full(fd, &e, sizeof(e), 0) : -1;
    if (fd >= 0) {
        close(fd);
    }
    return n == (ssize_t)sizeof(e) && e.recv_s > 60 ? ((int64_t)e.recv_s - 60) * 1000000 : 0;
}

static int log_rewrite(umg_bus_t *bus, const umg_bus_rewriter_t *rw, umg_bus_rewrite_stats_t *st)
{
    memset(st, 0, sizeof(*st));
    pthread_mutex_lock(&bus->rwlock_rewrite);
    if (rw->roll_active) {
        uint64_t before = atomic_load(&bus->rolls_done);
        atomic_store(&bus->roll_requested, 1);
        pthread_mutex_lock(&bus->qlock);
        pthread_cond_signal(&bus->qcond);
        pthread_mutex_unlock(&bus->qlock);
        for (int i = 0; i < 600 && atomic_load(&bus->rolls_done) == before; i++) {
            usleep(10000);
        }
        int rrc = atomic_load(&bus->rolls_done) == before ? UMG_EAGAIN : atomic_load(&bus->roll_rc);
        if (rrc != UMG_OK) {
            pthread_mutex_unlock(&bus->rwlock_rewrite);
            return rrc; /* the writer did not seal the active segment: nothing is covered yet */
        }
    }
    int rc = UMG_OK;
    for (uint64_t from = 0;;) {
        /* The segment list may change (rolls, retention) between segments: the next one is found by its base,
         * not by its place in the list, which retention shifts. */
        pthread_mutex_lock(&bus->seglock);
        seg_t *seg = NULL;
        for (size_t i = 0; i + 1 < bus->nsegs && seg == NULL; i++) { /* sealed segments only */
            if (bus->segs[i]->base >= from) {
                seg = bus->segs[i];
                atomic_store(&seg->busy, 1);
            }
        }
        pthread_mutex_unlock(&bus->seglock);
        if (seg == NULL) {
            break;
        }
        from = seg->base + 1;
        char *aux = seg_path(bus->dir, seg->base, "sum");
        umg_bus_seg_info_t info = {.base = seg->base,
                                   .count = atomic_load(&seg->count),
                                   .bytes = atomic_load(&seg->bytes),
                                   .max_recv_us = atomic_load(&seg->max_recv_s) * 1000000 + 999999,
                                   .min_recv_us = seg_min_recv_us(seg),
                                   .flags = flags_load(bus, seg->base),
                                   .aux_path = aux};
        if ((rw->napps == 0 || seg_has_app(seg, rw->apps, rw->napps)) &&
            (rw->want == NULL || rw->want(rw->ctx, &info))) {
            rc = rewrite_segment(bus, seg, rw, st);
            uint32_t nf = rc == UMG_OK && rw->flags ? rw->flags(rw->ctx, &info) : info.flags;
            if (rc == UMG_OK && nf != info.flags) {
                rc = flags_store(bus, seg->base, nf);
            }
        }
        atomic_store(&seg->busy, 0);
        umg_free(aux);
        if (rc != UMG_OK) {
            umg_log(rc == UMG_ECLOSED ? UMG_LOG_INFO : UMG_LOG_ERROR, "bus", "rewrite of segment %020llu failed: %s",
                    (unsigned long long)info.base, umg_strerror(rc));
            break;
        }
    }
    pthread_mutex_unlock(&bus->rwlock_rewrite);
    umg_metric_set(&m_bytes, (int64_t)atomic_load(&bus->total_bytes));
    return rc;
}

static void log_set_floor(umg_bus_t *bus, uint64_t offset)
{
    atomic_store(&bus->floor, offset); /* housekeeping, on the writer, reads it */
}

const umg_bus_ops_t umg_bus_log_ops = {
    .name = "log",
    .open = log_open,
    .close = log_close,
    .submit = log_submit,
    .reader_open = log_reader_open,
    .reader_next = log_reader_next,
    .reader_close = log_reader_close,
    .commit = log_commit,
    .committed = log_committed,
    .offset_for_time = log_offset_for_time,
    .stats = log_stats,
    .partitions = log_partitions,
    .rewrite = log_rewrite,
    .set_notify = log_set_notify,
    .set_floor = log_set_floor,
};
