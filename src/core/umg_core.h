/*
 * umg_core.h - the core library every other module stands on: error codes,
 * counted allocation with fault injection, arenas, byte slices and growable
 * buffers, logging, clocks, hashing (CRC32C, 64-bit hash), UUIDs, the metrics
 * registry and the declarative configuration tables.
 *
 * Nothing here does network I/O. Logging writes to stderr.
 */
#ifndef UMG_CORE_H
#define UMG_CORE_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

/* ---------------------------------------------------------------- errors */

enum {
    UMG_OK = 0,
    UMG_ENOMEM = -1,   /* out of memory */
    UMG_EINVAL = -2,   /* invalid argument or input */
    UMG_EIO = -3,      /* I/O error (errno is kept in the log) */
    UMG_ENOENT = -4,   /* no such thing */
    UMG_EEXIST = -5,   /* already exists */
    UMG_EAGAIN = -6,   /* nothing now, try later (end of a log, say) */
    UMG_ECORRUPT = -7, /* stored data failed a check */
    UMG_EFULL = -8,    /* a bounded resource is full (queue, table, disk) */
    UMG_ERANGE = -9,   /* value out of range */
    UMG_ECLOSED = -10, /* the object is shut down */
    UMG_ENOSPC = -11,  /* disk full */
    UMG_EPARSE = -12,  /* syntax error in input */
    UMG_EAUTH = -13,   /* authentication failed */
    UMG_ETOOBIG = -14, /* too much for one transaction: split the work */
    UMG_EBUSY = -15,   /* stopped after a bounded amount of work: call again */
};

/** Returns a static, human-readable name for an UMG_E* code. */
const char *umg_strerror(int err);

/* ------------------------------------------------------------ allocation */

/*
 * All heap memory goes through these. They count live bytes (exported as a
 * metric) and can be told to fail: umg_alloc_fail_after(n) makes the n-th
 * following allocation (1-based) and all after it return NULL until
 * umg_alloc_fail_after(0) resets it. For tests only.
 */
void *umg_malloc(size_t size);
void *umg_calloc(size_t n, size_t size);
/*
 * umg_calloc for a large table read and written at random places (freed with umg_free). With 4 KiB pages nearly
 * every access to such a table misses the TLB as well as the cache, and a new table faults in page by page (on a
 * virtual machine each first touch is a fault on the host too); blocks of 8 MiB and more therefore ask for
 * transparent huge pages (2 MiB), before their zeroed pages are first touched. Where THP is off this changes
 * nothing but speed.
 */
void *umg_calloc_huge(size_t n, size_t size);
void *umg_realloc(void *p, size_t size);
void umg_free(void *p);
/* A C string of s's first len bytes, or fewer: the copy ends at a NUL byte among them (as strndup). */
char *umg_strndup(const char *s, size_t len);
/* The len bytes at p exactly, NUL bytes among them included, then a terminating NUL: for client bytes that are
 * used again with their length (a request body, a query value). */
char *umg_memdup(const void *p, size_t len);
size_t umg_alloc_bytes(void);
void umg_alloc_fail_after(long n);

/* ---------------------------------------------------------------- slices */

/* A borrowed byte string; never assumed NUL-terminated. */
typedef struct umg_slice_s {
    const char *ptr;
    size_t len;
} umg_slice_t;

#define UMG_SLICE(lit) ((umg_slice_t){(lit), sizeof(lit) - 1})
#define UMG_SLICE_NULL ((umg_slice_t){NULL, 0})

static inline umg_slice_t umg_slice(const char *p, size_t n)
{
    return (umg_slice_t){p, n};
}
static inline int umg_slice_eq(umg_slice_t a, const char *lit)
{
    size_t n = strlen(lit);
    return a.len == n && memcmp(a.ptr, lit, n) == 0;
}

/*
 * A growable byte buffer, owned by whoever embeds it; zero-initialise it and
 * release it with umg_buf_free. After any successful append the content is
 * NUL-terminated (ptr[len] == 0); the terminator is not counted in len.
 */
typedef struct umg_buf_s {
    char *ptr;
    size_t len;
    size_t cap;
} umg_buf_t;

/** Ensures room for `extra` more bytes. UMG_OK or UMG_ENOMEM. */
int umg_buf_reserve(umg_buf_t *b, size_t extra);
int umg_buf_append(umg_buf_t *b, const void *p, size_t n);
int umg_buf_putc(umg_buf_t *b, char c);
int umg_buf_printf(umg_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Appends `s` as a JSON string literal with quotes, escaping as RFC 8259 requires. */
int umg_buf_json_str(umg_buf_t *b, const char *s, size_t n);
/** Appends a CSV text field (RFC 4180): quoted when it holds a comma, a quote or a line break; an apostrophe
 * first when it starts with =, +, -, @, a tab or a CR (a spreadsheet would run it as a formula). */
int umg_buf_csv_field(umg_buf_t *b, umg_slice_t s);
int umg_buf_u64(umg_buf_t *b, uint64_t v);
int umg_buf_i64(umg_buf_t *b, int64_t v);
static inline void umg_buf_reset(umg_buf_t *b)
{
    b->len = 0;
}
void umg_buf_free(umg_buf_t *b);

/* ---------------------------------------------------------------- arenas */

/*
 * A bump allocator for one request or batch. Memory is returned all at once by
 * umg_arena_reset (keeps the first block for reuse) or umg_arena_free.
 */
typedef struct umg_arena_s {
    struct umg_arena_block_s *head;
    size_t block_size;
} umg_arena_t;

void umg_arena_init(umg_arena_t *a, size_t block_size);
/** 16-byte aligned memory valid until reset/free; NULL when out of memory. */
void *umg_arena_alloc(umg_arena_t *a, size_t n);
void umg_arena_reset(umg_arena_t *a);
void umg_arena_free(umg_arena_t *a);
/**
 * Copies the bytes of the n slices *v[i] into one allocation of a and points
 * each slice at its copy (empty slices are left as they are), so that they
 * outlive the memory they borrowed from. UMG_OK or UMG_ENOMEM (slices
 * unchanged).
 */
int umg_arena_own(umg_arena_t *a, umg_slice_t *const *v, size_t n);

/* ---------------------------------------------------------------- logging */

typedef enum { UMG_LOG_DEBUG, UMG_LOG_INFO, UMG_LOG_WARN, UMG_LOG_ERROR } umg_log_level_t;

extern umg_log_level_t umg_log_min_level;

/** Parses "debug", "info", "warn", "error". */
int umg_log_level_parse(const char *s, umg_log_level_t *out);

/*
 * Writes one JSON line to stderr: {"ts":...,"level":...,"module":...,"msg":...}.
 * The level is checked before anything is formatted.
 */
#define umg_log(level, module, ...)                                                                                    \
    do {                                                                                                               \
        if ((level) >= umg_log_min_level) {                                                                            \
            umg__log_write((level), (module), __VA_ARGS__);                                                            \
        }                                                                                                              \
    } while (0)
void umg__log_write(umg_log_level_t level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---------------------------------------------------------------- clocks */

/** Wall clock, microseconds since the Unix epoch (UTC). */
int64_t umg_now_us(void);
/** Monotonic clock in nanoseconds. */
uint64_t umg_mono_ns(void);
struct timespec;
/** The wall-clock time ms milliseconds from now, as pthread_cond_timedwait takes it. */
void umg_deadline_ms(struct timespec *ts, int64_t ms);

/*
 * Parses an RFC 3339 timestamp ("2026-11-27T10:00:00Z", "...+02:00", with
 * optional fractional seconds) into microseconds since the epoch.
 */
int umg_time_parse_rfc3339(const char *s, size_t len, int64_t *out_us);
/** Writes "YYYY-MM-DDTHH:MM:SS.uuuuuuZ" (27 bytes + NUL) into out. */
void umg_time_format_rfc3339(int64_t us, char out[32]);
/** The same text without the NUL, at p (room for 31 bytes); returns the end. Fast for 1970..9999. */
char *umg_time_write_rfc3339(char *p, int64_t us);

/* Dates as day numbers: days since 1970-01-01 (proleptic Gregorian). */
/** Parses exactly "YYYY-MM-DD" (a real calendar date, years 1..9999). UMG_EINVAL otherwise. */
int umg_date_parse(umg_slice_t s, int32_t *day);
/** Writes "YYYY-MM-DD" and a NUL into out. */
void umg_date_format(int32_t day, char out[11]);
/** The day of a calendar date (m 1..12, d 1..31), and back. */
int32_t umg_date_from_civil(int y, int m, int d);
void umg_date_civil(int32_t day, int *y, int *m, int *d);
/** The Monday of day's ISO week, and the first day of its month. */
int32_t umg_date_week_start(int32_t day);
int32_t umg_date_month_start(int32_t day);

/* ------------------------------------------------------------ time zones */

/*
 * IANA time zones read from TZif files (RFC 8536, versions 1 to 4, with the
 * footer's POSIX TZ rule for every instant after the last transition), for
 * the local day of an instant in an app's reporting time zone. Files come
 * from $TZDIR or /usr/share/zoneinfo; "UTC" is built in and works without
 * tzdata. A zone is immutable once loaded: share it between threads.
 */
typedef struct umg_tz_s umg_tz_t;
/**
 * 1 when name may name a zone: 1 to 63 bytes of [A-Za-z0-9_+-/], no leading
 * '/', no ".." component. Says nothing about whether the zone exists.
 */
int umg_tz_name_valid(const char *name);
/**
 * Loads a zone by IANA name ("Europe/Berlin"); *out is the caller's (umg_tz_free).
 * UMG_EINVAL for a malformed name, UMG_ENOENT for an unknown zone, UMG_ECORRUPT
 * for a file that is not TZif, UMG_EIO when it cannot be read.
 */
int umg_tz_load(const char *name, umg_tz_t **out);
/**
 * The zone in a TZif file's bytes (data is borrowed for the call; name, which
 * may be NULL, is only kept for umg_tz_name). UMG_ECORRUPT when they are not
 * one; safe on arbitrary bytes.
 */
int umg_tz_parse(const char *name, const void *data, size_t len, umg_tz_t **out);
/**
 * A zone that is only a POSIX TZ rule, such as "EST5EDT,M3.2.0,M11.1.0" or
 * "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0" (the form of a TZif footer, with
 * RFC 8536's extensions: transition times from -167 to 167 hours). A DST
 * name without a rule takes the US one, as tzcode does. UMG_ECORRUPT when the
 * text is not such a rule.
 */
int umg_tz_parse_posix(const char *name, umg_slice_t rule, umg_tz_t **out);
/** Accepts NULL. */
void umg_tz_free(umg_tz_t *tz);
/** The name given when the zone was loaded (borrowed from tz). */
const char *umg_tz_name(const umg_tz_t *tz);
/** The offset from UTC in seconds (local = UTC + offset) at the instant utc_s. A binary search. */
int32_t umg_tz_offset(const umg_tz_t *tz, int64_t utc_s);
/** The local day (days since 1970-01-01) of the instant ts_us. */
int32_t umg_tz_day(const umg_tz_t *tz, int64_t ts_us);
/**
 * The first instant (UTC microseconds) whose local day is day: UTC midnight
 * minus the offset, or later when the day starts with a DST gap (a day whose
 * clocks jump from 23:59:59 to 01:00 starts at the jump). Precisely, the first
 * instant whose local day is day or later, so for a day that does not exist
 * at all (Pacific/Apia skipped 2011-12-30) it is the first instant of the
 * next day, and [day_start(d), day_start(d + 1)) is always the day's instants
 * (empty for a skipped day). Days beyond about +-290,000 years are clamped.
 */
int64_t umg_tz_day_start(const umg_tz_t *tz, int32_t day);

/*
 * Zones by name, each loaded once and kept until the cache is freed; safe
 * from any thread. A name that failed to load (other than for memory) keeps
 * failing with the same code until the cache is freed.
 */
typedef struct umg_tz_cache_s umg_tz_cache_t;
int umg_tz_cache_new(umg_tz_cache_t **out);
/** Frees every zone the cache handed out. Accepts NULL. */
void umg_tz_cache_free(umg_tz_cache_t *c);
/** The zone of that name (borrowed until umg_tz_cache_free). Errors as umg_tz_load. */
int umg_tz_cache_get(umg_tz_cache_t *c, const char *name, const umg_tz_t **out);

/* ---------------------------------------------------------------- hashing */

uint32_t umg_crc32c(uint32_t crc, const void *data, size_t len);
/** A fast 64-bit non-cryptographic hash (for tables and partitioning). */
uint64_t umg_hash64(const void *data, size_t len, uint64_t seed);

/* ---------------------------------------------------------------- UUIDs */

typedef struct umg_uuid_s {
    uint8_t b[16];
} umg_uuid_t;

/** Random version-4 UUID from the OS random source (getrandom). */
void umg_uuid_v4(umg_uuid_t *out);
/** Parses the 36-character canonical form (case-insensitive). */
int umg_uuid_parse(const char *s, size_t len, umg_uuid_t *out);
/** Writes 36 lowercase characters + NUL. */
void umg_uuid_format(const umg_uuid_t *u, char out[37]);
/** Writes the 36 lowercase characters at p (no NUL); returns p + 36. */
char *umg_uuid_write(char *p, const umg_uuid_t *u);

enum { UMG_UUID_UPPER = 1, UMG_UUID_ZERO = 2 };
/**
 * Checks the 36-character form: -1 when it is not a UUID, else a mask of
 * UMG_UUID_UPPER (a digit is upper case) and UMG_UUID_ZERO (all digits zero,
 * the advertising id of a device without tracking consent). out (may be NULL)
 * receives the bytes. Branch-free (SSE2 or SWAR): ids arrive by the million.
 */
int umg_uuid_scan(const char *s, size_t len, umg_uuid_t *out);
/** Fills `n` bytes with OS randomness. */
void umg_random_bytes(void *out, size_t n);

/* ---------------------------------------------------------------- metrics */

/*
 * A tiny Prometheus registry. Metrics are statically allocated structs that
 * register themselves once; updates are relaxed atomics (no locks).
 * Counters and gauges may carry one fixed label set given as text, e.g.
 * `reason="bad_ts"`; families with the same name are printed together.
 */
typedef enum { UMG_METRIC_COUNTER, UMG_METRIC_GAUGE, UMG_METRIC_HISTOGRAM } umg_metric_kind_t;

#define UMG_HIST_MAX_BUCKETS 24

typedef struct umg_metric_s {
    const char *name;
    const char *help;
    const char *labels; /* may be NULL; text inside {} */
    umg_metric_kind_t kind;
    _Atomic int64_t value; /* counter / gauge */
    /* histogram: upper bounds in the metric's unit (seconds, say) */
    const double *bounds;
    int nbounds;
    _Atomic uint64_t buckets[UMG_HIST_MAX_BUCKETS + 1];
    _Atomic uint64_t count;
    _Atomic uint64_t sum_micro; /* sum in millionths of the unit */
    struct umg_metric_s *next;
    _Atomic int registered;
    /* gauge only: when set, rendering reports read() instead of value */
    int64_t (*read)(void);
} umg_metric_t;

#define UMG_COUNTER(nm, hlp, lbl)                                                                                      \
    {                                                                                                                  \
        .name = (nm), .help = (hlp), .labels = (lbl), .kind = UMG_METRIC_COUNTER                                       \
    }
#define UMG_GAUGE(nm, hlp, lbl)                                                                                        \
    {                                                                                                                  \
        .name = (nm), .help = (hlp), .labels = (lbl), .kind = UMG_METRIC_GAUGE                                         \
    }
#define UMG_GAUGE_FN(nm, hlp, lbl, fn)                                                                                 \
    {                                                                                                                  \
        .name = (nm), .help = (hlp), .labels = (lbl), .kind = UMG_METRIC_GAUGE, .read = (fn)                           \
    }
#define UMG_HISTOGRAM(nm, hlp, lbl, b, nb)                                                                             \
    {                                                                                                                  \
        .name = (nm), .help = (hlp), .labels = (lbl), .kind = UMG_METRIC_HISTOGRAM, .bounds = (b), .nbounds = (nb)     \
    }

/** Registers a metric (idempotent, thread-safe). */
void umg_metric_register(umg_metric_t *m);
static inline void umg_metric_add(umg_metric_t *m, int64_t v)
{
    atomic_fetch_add_explicit(&m->value, v, memory_order_relaxed);
}
static inline void umg_metric_set(umg_metric_t *m, int64_t v)
{
    atomic_store_explicit(&m->value, v, memory_order_relaxed);
}
/** Records one observation `v` (in the histogram's unit). */
void umg_metric_observe(umg_metric_t *m, double v);
/** Appends the whole registry in Prometheus text exposition format. */
int umg_metrics_render(umg_buf_t *out);

/* ---------------------------------------------------------------- config */

/*
 * Declarative configuration: each module describes its keys in a table of
 * umg_config_item_t; the parser, `--help` text and docs/config.md all come
 * from the tables. Values live in a caller-provided struct at `offset`.
 */
typedef enum {
    UMG_CFG_INT,         /* int64_t */
    UMG_CFG_BOOL,        /* int (0/1) */
    UMG_CFG_STRING,      /* char * (umg_malloc'd, freed by umg_config_free) */
    UMG_CFG_SIZE,        /* int64_t bytes; accepts suffixes k, m, g (powers of 1024) */
    UMG_CFG_DURATION_MS, /* int64_t milliseconds; accepts ms, s, m, h, d suffixes */
} umg_config_type_t;

typedef struct umg_config_item_s {
    const char *name; /* "log.segment_bytes" */
    umg_config_type_t type;
    const char *def;  /* default, as text */
    int64_t min, max; /* bounds for numeric types */
    size_t offset;    /* into the target struct */
    const char *help;
} umg_config_item_t;

/**
 * Sets every item of the table to its default. String fields are overwritten
 * without being freed, so call it on a zeroed target (or after
 * umg_config_free); umg_config_set frees the string it replaces.
 */
int umg_config_defaults(const umg_config_item_t *items, size_t n, void *target);
/**
 * Sets one key from text. Returns UMG_ENOENT for an unknown key, UMG_EINVAL
 * or UMG_ERANGE for a bad value; `err` (may be NULL) gets a message.
 */
int umg_config_set(const umg_config_item_t *items, size_t n, void *target, const char *key, const char *value,
                   char *err, size_t errlen);
/**
 * Reads a file of `key = value` lines (# comments, blank lines). Unknown keys
 * are errors. `err` gets "FILE:LINE: message".
 */
int umg_config_load_file(const umg_config_item_t *items, size_t n, void *target, const char *path, char *err,
                         size_t errlen);
/** Frees the strings the table owns in target. */
void umg_config_free(const umg_config_item_t *items, size_t n, void *target);
/** Appends a Markdown table describing the items. */
int umg_config_markdown(const umg_config_item_t *items, size_t n, umg_buf_t *out);

/* ---------------------------------------------------------------- misc */

/** "00" "01" ... "99": two ASCII digits for each value below 100 (fast integer formatting). */
extern const char umg_digit_pairs[201];

/*
 * SWAR: eight bytes tested at once in a uint64_t. UMG_SWAR_IN sets the high bit
 * of each byte of w within [lo, hi]; it is exact for bytes below 0x80 (callers
 * reject bytes at or above 0x80 separately).
 */
#define UMG_SWAR_ONES UINT64_C(0x0101010101010101)
#define UMG_SWAR_HIGH UINT64_C(0x8080808080808080)
#define UMG_SWAR_IN(w, lo, hi)                                                                                         \
    (((w) + UMG_SWAR_ONES * (0x80 - (lo))) & ~((w) + UMG_SWAR_ONES * (0x7f - (hi))) & UMG_SWAR_HIGH)

static inline uint64_t umg_load64(const char *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

/**
 * The length of the well-formed UTF-8 sequence at s[0..n) (n >= 1), or 0
 * with *bad set to the length of its maximal ill-formed subpart (Unicode
 * 3.9, "U+FFFD substitution of maximal subparts": a lead byte and the
 * continuation bytes that were still valid). No surrogates, nothing above
 * U+10FFFF, no overlong forms.
 */
static inline size_t umg_utf8_seq(const unsigned char *s, size_t n, size_t *bad)
{
    unsigned char b = s[0], lo = 0x80, hi = 0xbf; /* the range of the second byte */
    size_t need;
    if (b < 0x80) {
        return 1;
    } else if (b >= 0xc2 && b <= 0xdf) {
        need = 1;
    } else if (b >= 0xe0 && b <= 0xef) {
        need = 2;
        lo = b == 0xe0 ? 0xa0 : 0x80;
        hi = b == 0xed ? 0x9f : 0xbf;
    } else if (b >= 0xf0 && b <= 0xf4) {
        need = 3;
        lo = b == 0xf0 ? 0x90 : 0x80;
        hi = b == 0xf4 ? 0x8f : 0xbf;
    } else {
        *bad = 1;
        return 0;
    }
    size_t k = 1;
    while (k <= need && k < n && s[k] >= (k == 1 ? lo : 0x80) && s[k] <= (k == 1 ? hi : 0xbf)) {
        k++;
    }
    if (k == need + 1) {
        return k;
    }
    *bad = k;
    return 0;
}

/** The value of one hex digit (either case), or -1. */
static inline int umg_hexval(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/** Writes n bytes as 2n lower-case hex digits and a NUL into out (2n + 1 bytes). */
static inline void umg_hex_encode(const void *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *b = (const unsigned char *)in;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[2 * n] = '\0';
}

#define UMG_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define UMG_MIN(a, b) ((a) < (b) ? (a) : (b))
#define UMG_MAX(a, b) ((a) > (b) ? (a) : (b))

/* a + b held at INT64_MAX or INT64_MIN instead of wrapping: sums of amounts clients send (revenue, costs), so
 * that no number of them can turn a report's total negative. */
static inline int64_t umg_add_sat(int64_t a, int64_t b)
{
    int64_t r;
    return __builtin_add_overflow(a, b, &r) ? (b > 0 ? INT64_MAX : INT64_MIN) : r;
}

/** mkdir -p. */
int umg_mkdirs(const char *path, int mode);
/** Appends a whole file to out, NUL-terminated (not counted in len). UMG_ENOENT, UMG_EIO, UMG_ENOMEM. */
int umg_read_file(const char *path, umg_buf_t *out);
/** Writes a whole file atomically (temp file, fsync, rename, fsync dir). */
int umg_write_file_atomic(const char *path, const void *data, size_t len);
/** write(2) until all is written (retrying EINTR and short writes); 0 or -1 with errno. */
int umg_write_all(int fd, const void *data, size_t len);
/** pread(2) until len bytes or end of file; the count read, or -1 with errno. */
ssize_t umg_pread_full(int fd, void *buf, size_t len, uint64_t off);
/** fsyncs a directory so a rename or create inside it is durable. */
int umg_fsync_dir(const char *dir);
/**
 * Takes an exclusive lock on the file path (made if absent; flock, so the
 * kernel lets it go when the process ends, however it ends) and writes this
 * process's pid into it. *fd holds it until umg_file_unlock. UMG_EEXIST when
 * another process holds it (*holder: its pid, 0 when unknown), else UMG_EIO.
 */
int umg_file_lock(const char *path, int *fd, long *holder);
void umg_file_unlock(int fd);

/* ---------------------------------------------------------------- helper */

/*
 * A thread that runs one job at a time beside its caller (src/core/helper.c):
 * umg_helper_run hands it fn(arg) and returns at once (UMG_EFULL while a job
 * runs); umg_helper_wait returns once that job has returned. One caller at a
 * time; umg_helper_free waits for a running job, then stops the thread.
 */
typedef struct umg_helper_s umg_helper_t;
/** Names the calling thread (at most 15 bytes are kept) for top -H, perf and gdb. */
void umg_thread_name(const char *name);
int umg_helper_new(umg_helper_t **out);
int umg_helper_run(umg_helper_t *h, void (*fn)(void *), void *arg);
void umg_helper_wait(umg_helper_t *h);
void umg_helper_free(umg_helper_t *h);
/** The same two calls with the helper as a void * (the shape of umg_query_input_t.beside and .join). */
int umg_helper_beside(void *h, void (*fn)(void *), void *arg);
void umg_helper_join(void *h);

#endif
