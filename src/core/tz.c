/*
 * tz.c - IANA time zones: a reader for TZif files (RFC 8536 and its
 * successor, versions 1 to 4) with their POSIX TZ footers, the offset and
 * local day of an instant, the first instant of a local day, and a cache of
 * zones by name.
 *
 * A loaded zone is one sorted array of transitions: the file's own, then
 * those its footer rule produces up to TABLE_LAST_YEAR. A "slim" file, whose
 * own transitions stop in 2007, thus costs the same binary search as a fat
 * one; only instants beyond the table (or before it, for a zone that is all
 * rule) evaluate the rule directly. Zones are immutable once built, so
 * threads share them without locks.
 *
 * Every parser here reads through bounds-checked cursors: umg_tz_parse and
 * umg_tz_parse_posix accept arbitrary bytes (tests/fuzz/fuzz_tzif.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "umg_core.h"

#define SEC_PER_DAY 86400
/* RFC 8536 bounds every UT offset to -24:59:59 .. +25:59:59; anything outside is corrupt. */
#define MIN_OFF (-89999)
#define MAX_OFF 93599
/* The footer rule is expanded into the table for the years up to this one. */
#define TABLE_FIRST_YEAR 1900
#define TABLE_LAST_YEAR 2200
/* A rule's transition lies at most 167 h (+ an offset) from its nominal day. */
#define RULE_SLACK (10 * SEC_PER_DAY)
/* Instants beyond +-RULE_LIMIT seconds (some 30 million years) take the rule's offset at the limit. */
#define RULE_LIMIT INT64_C(1000000000000000)
/* TZif files are a few KiB; the largest in tzdata is under 4 KiB. */
#define MAX_FILE (1 << 20)
#define ZONEINFO "/usr/share/zoneinfo"

/* One end of a DST period in a POSIX TZ rule. */
typedef struct rule_date_s {
    char kind;    /* 'J' (Jn, 1..365, no Feb 29), 'N' (n, 0..365), 'M' (Mm.w.d) */
    int m, w, d;  /* Mm.w.d: month 1..12, week 1..5 (5: the last), weekday 0..6 (Sunday 0) */
    int n;        /* Jn and n */
    int32_t time; /* seconds after local midnight, -167 h .. +167 h */
} rule_date_t;

/* A POSIX TZ string such as "EST5EDT,M3.2.0,M11.1.0". */
typedef struct posix_s {
    int32_t std_off, dst_off; /* UT offsets (local = UTC + off), not the POSIX sign */
    int has_dst;
    rule_date_t start, end; /* into DST (in standard time), back (in DST time) */
} posix_t;

struct umg_tz_s {
    char name[64];
    size_t n;       /* transitions in the table */
    int64_t *at;    /* ascending UTC seconds */
    int32_t *off;   /* the offset from at[i] on */
    int32_t before; /* the offset before at[0] (always, when n == 0) */
    int has_rule;   /* outside [direct_lo, direct_hi) the footer rule is evaluated directly */
    posix_t rule;
    int64_t direct_lo, direct_hi;
};

/* ---------------------------------------------------------------- calendar */

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The year of a day number (the inverse of days_from_civil, year only). */
static int64_t year_of_day(int64_t z)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    return yoe + era * 400 + (mp >= 10);
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* The day number of a rule date in year y. */
static int64_t rule_day(const rule_date_t *r, int64_t y)
{
    int64_t jan1 = days_from_civil(y, 1, 1);
    if (r->kind == 'J') {
        return jan1 + r->n - 1 + (is_leap(y) && r->n >= 60);
    }
    if (r->kind == 'N') {
        return jan1 + r->n;
    }
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int64_t first = days_from_civil(y, r->m, 1);
    int64_t wday = ((first + 4) % 7 + 7) % 7; /* 1970-01-01 was a Thursday */
    int64_t day = first + (r->d - wday + 7) % 7 + (int64_t)(r->w - 1) * 7;
    int len = mdays[r->m - 1] + (r->m == 2 && is_leap(y));
    return day >= first + len ? day - 7 : day;
}

/* ------------------------------------------------------------- POSIX rules */

typedef struct trans_s {
    int64_t at;
    int32_t off;
} trans_t;

/* The two transitions of year y in UTC, in time order; back to standard time first on a tie, so
 * a rule that is DST all year ("EST5EDT,0/0,J365/25") stays in DST. */
static void rule_year(const posix_t *r, int64_t y, trans_t out[2])
{
    trans_t s = {rule_day(&r->start, y) * SEC_PER_DAY + r->start.time - r->std_off, r->dst_off};
    trans_t e = {rule_day(&r->end, y) * SEC_PER_DAY + r->end.time - r->dst_off, r->std_off};
    out[0] = e.at <= s.at ? e : s;
    out[1] = e.at <= s.at ? s : e;
}

/* The rule's offset at t and its next transition after t (INT64_MAX when none). */
static int32_t rule_offset(const posix_t *r, int64_t t, int64_t *next)
{
    *next = INT64_MAX;
    if (!r->has_dst) {
        return r->std_off;
    }
    /* Far outside any calendar anyone uses, keep the arithmetic below from overflowing. */
    if (t > RULE_LIMIT || t < -RULE_LIMIT) {
        int64_t ignored;
        *next = t > 0 ? INT64_MAX : -RULE_LIMIT;
        return rule_offset(r, t > 0 ? RULE_LIMIT : -RULE_LIMIT, &ignored);
    }
    /* A transition can move a week away from its nominal year: look at the years around t's. */
    int64_t y = year_of_day(floor_div(t, SEC_PER_DAY));
    trans_t tr[8];
    for (int i = 0; i < 4; i++) {
        rule_year(r, y - 2 + i, &tr[2 * i]);
    }
    for (int i = 1; i < 8; i++) { /* nearly sorted already */
        for (int k = i; k > 0 && tr[k - 1].at > tr[k].at; k--) {
            trans_t x = tr[k];
            tr[k] = tr[k - 1];
            tr[k - 1] = x;
        }
    }
    int32_t off = r->std_off;
    for (int i = 0; i < 8; i++) {
        if (tr[i].at <= t) {
            off = tr[i].off;
        } else {
            *next = tr[i].at;
            break;
        }
    }
    return off;
}

typedef struct cur_s {
    const char *p, *end;
} cur_t;

static int peek(const cur_t *c)
{
    return c->p < c->end ? (unsigned char)*c->p : -1;
}

static int is_alpha(int ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z');
}

static int is_digit(int ch)
{
    return ch >= '0' && ch <= '9';
}

/* A zone abbreviation: three or more letters, or <...> with letters, digits, '+' and '-'. */
static int posix_name(cur_t *c)
{
    size_t n = 0;
    if (peek(c) == '<') {
        c->p++;
        while (is_alpha(peek(c)) || is_digit(peek(c)) || peek(c) == '+' || peek(c) == '-') {
            c->p++, n++;
        }
        if (peek(c) != '>') {
            return -1;
        }
        c->p++;
    } else {
        while (is_alpha(peek(c))) {
            c->p++, n++;
        }
    }
    return n >= 3 ? 0 : -1;
}

/* An unsigned number of at most max_digits digits, no larger than max. */
static int posix_num(cur_t *c, int max_digits, int max, int *out)
{
    int v = 0, k = 0;
    while (k < max_digits && is_digit(peek(c))) {
        v = v * 10 + (*c->p++ - '0');
        k++;
    }
    if (k == 0 || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

/* [+-]hh[:mm[:ss]] in seconds, hours up to max_h. */
static int posix_hms(cur_t *c, int max_h, int32_t *out)
{
    int sign = 1, h, m = 0, s = 0;
    if (peek(c) == '+' || peek(c) == '-') {
        sign = *c->p++ == '-' ? -1 : 1;
    }
    if (posix_num(c, 3, max_h, &h) < 0) {
        return -1;
    }
    if (peek(c) == ':') {
        c->p++;
        if (posix_num(c, 2, 59, &m) < 0) {
            return -1;
        }
        if (peek(c) == ':') {
            c->p++;
            if (posix_num(c, 2, 59, &s) < 0) {
                return -1;
            }
        }
    }
    *out = sign * (h * 3600 + m * 60 + s);
    return 0;
}

/* Jn, n or Mm.w.d with an optional /time (RFC 8536 3.3.1 allows -167..167 hours). */
static int posix_date(cur_t *c, rule_date_t *r)
{
    memset(r, 0, sizeof(*r));
    r->time = 2 * 3600;
    if (peek(c) == 'J') {
        c->p++;
        r->kind = 'J';
        if (posix_num(c, 3, 365, &r->n) < 0 || r->n < 1) {
            return -1;
        }
    } else if (peek(c) == 'M') {
        c->p++;
        r->kind = 'M';
        if (posix_num(c, 2, 12, &r->m) < 0 || r->m < 1 || peek(c) != '.') {
            return -1;
        }
        c->p++;
        if (posix_num(c, 1, 5, &r->w) < 0 || r->w < 1 || peek(c) != '.') {
            return -1;
        }
        c->p++;
        if (posix_num(c, 1, 6, &r->d) < 0) {
            return -1;
        }
    } else {
        r->kind = 'N';
        if (posix_num(c, 3, 365, &r->n) < 0) {
            return -1;
        }
    }
    if (peek(c) == '/') {
        c->p++;
        return posix_hms(c, 167, &r->time);
    }
    return 0;
}

static int off_ok(int32_t off)
{
    return off >= MIN_OFF && off <= MAX_OFF;
}

/* Parses a whole POSIX TZ string (no leading ':'). UMG_ECORRUPT when it is not one. */
static int posix_parse(const char *s, size_t len, posix_t *out)
{
    cur_t c = {s, s + len};
    posix_t r;
    int32_t v;
    memset(&r, 0, sizeof(r));
    if (posix_name(&c) < 0 || posix_hms(&c, 24, &v) < 0) {
        return UMG_ECORRUPT;
    }
    r.std_off = -v; /* POSIX counts hours west of Greenwich */
    if (c.p < c.end) {
        if (posix_name(&c) < 0) {
            return UMG_ECORRUPT;
        }
        r.has_dst = 1;
        r.dst_off = r.std_off + 3600;
        if (c.p < c.end && peek(&c) != ',') {
            if (posix_hms(&c, 24, &v) < 0) {
                return UMG_ECORRUPT;
            }
            r.dst_off = -v;
        }
        if (c.p == c.end) { /* no rule: the US one, as tzcode assumes */
            r.start = (rule_date_t){'M', 3, 2, 0, 0, 2 * 3600};
            r.end = (rule_date_t){'M', 11, 1, 0, 0, 2 * 3600};
        } else {
            c.p++; /* the ',' */
            if (posix_date(&c, &r.start) < 0 || peek(&c) != ',') {
                return UMG_ECORRUPT;
            }
            c.p++;
            if (posix_date(&c, &r.end) < 0) {
                return UMG_ECORRUPT;
            }
        }
    }
    if (c.p != c.end || !off_ok(r.std_off) || (r.has_dst && !off_ok(r.dst_off))) {
        return UMG_ECORRUPT;
    }
    *out = r;
    return UMG_OK;
}

/* ---------------------------------------------------------------- building */

static umg_tz_t *tz_alloc(const char *name, size_t cap)
{
    umg_tz_t *tz = umg_calloc(1, sizeof(*tz));
    if (tz == NULL) {
        return NULL;
    }
    snprintf(tz->name, sizeof(tz->name), "%s", name ? name : "");
    tz->direct_lo = INT64_MIN;
    tz->direct_hi = INT64_MAX;
    if (cap > 0) {
        tz->at = umg_malloc(cap * sizeof(int64_t));
        tz->off = umg_malloc(cap * sizeof(int32_t));
        if (tz->at == NULL || tz->off == NULL) {
            umg_tz_free(tz);
            return NULL;
        }
    }
    return tz;
}

/* Room for the rule's transitions of TABLE_FIRST_YEAR..TABLE_LAST_YEAR and the two years around. */
#define RULE_TABLE_MAX (2 * (TABLE_LAST_YEAR - TABLE_FIRST_YEAR + 3))

/*
 * Appends the rule's transitions after the table's last one (or from TABLE_FIRST_YEAR when the
 * table is empty) up to TABLE_LAST_YEAR, and sets the range outside which the rule is evaluated
 * directly. The caller allocated RULE_TABLE_MAX spare entries.
 */
static void extend_with_rule(umg_tz_t *tz)
{
    const posix_t *r = &tz->rule;
    int64_t last = tz->n ? tz->at[tz->n - 1] : INT64_MIN;
    int64_t table_end = days_from_civil(TABLE_LAST_YEAR + 1, 1, 1) * SEC_PER_DAY - RULE_SLACK;
    if (!r->has_dst || (tz->n > 0 && last >= table_end - RULE_SLACK)) {
        /* Nothing to expand: the rule governs after the last transition. */
        tz->direct_hi = last == INT64_MIN ? INT64_MIN : last < INT64_MAX ? last + 1 : INT64_MAX;
        return;
    }
    int64_t y0 = TABLE_FIRST_YEAR;
    if (tz->n > 0) {
        int64_t ly = year_of_day(floor_div(last, SEC_PER_DAY)) - 1;
        y0 = ly > y0 ? ly : y0;
    } else {
        tz->direct_lo = days_from_civil(TABLE_FIRST_YEAR, 1, 1) * SEC_PER_DAY + RULE_SLACK;
        int64_t next;
        tz->before = rule_offset(r, tz->direct_lo, &next);
    }
    for (int64_t y = y0; y <= TABLE_LAST_YEAR + 1; y++) {
        trans_t tr[2];
        rule_year(r, y, tr);
        for (int i = 0; i < 2; i++) {
            if (tr[i].at <= last || tr[i].at < tz->direct_lo) {
                continue;
            }
            /* Years overlap by at most a few days: insert in order. */
            size_t k = tz->n++;
            while (k > 0 && tz->at[k - 1] > tr[i].at) {
                tz->at[k] = tz->at[k - 1];
                tz->off[k] = tz->off[k - 1];
                k--;
            }
            tz->at[k] = tr[i].at;
            tz->off[k] = tr[i].off;
        }
    }
    tz->direct_hi = table_end;
}

/* ---------------------------------------------------------------- TZif */

typedef struct hdr_s {
    int version; /* 1, 2, 3, 4 ... */
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
} hdr_t;

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const uint8_t *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

static int read_header(const uint8_t *p, size_t len, hdr_t *h)
{
    if (len < 44 || memcmp(p, "TZif", 4) != 0) {
        return UMG_ECORRUPT;
    }
    if (p[4] == 0 || p[4] == '1') {
        h->version = 1;
    } else if (p[4] >= '2' && p[4] <= '9') {
        h->version = p[4] - '0';
    } else {
        return UMG_ECORRUPT;
    }
    h->isutcnt = be32(p + 20);
    h->isstdcnt = be32(p + 24);
    h->leapcnt = be32(p + 28);
    h->timecnt = be32(p + 32);
    h->typecnt = be32(p + 36);
    h->charcnt = be32(p + 40);
    return UMG_OK;
}

/* The counts' rules (RFC 8536 3.1), checked for the block that is read (a version 2+ file's
 * 32-bit block is skipped unchecked, as readers should). */
static int counts_ok(const hdr_t *h)
{
    return h->typecnt > 0 && h->typecnt <= 256 && h->charcnt > 0 && (h->isutcnt == 0 || h->isutcnt == h->typecnt) &&
           (h->isstdcnt == 0 || h->isstdcnt == h->typecnt);
}

/* Bytes of the data block after a header, with tsize-byte times (4 or 8); counts fit in 32 bits. */
static uint64_t block_size(const hdr_t *h, unsigned tsize)
{
    return (uint64_t)h->timecnt * (tsize + 1) + (uint64_t)h->typecnt * 6 + h->charcnt +
           (uint64_t)h->leapcnt * (tsize + 4) + h->isstdcnt + h->isutcnt;
}

static int64_t read_time(const uint8_t *p, unsigned tsize)
{
    return tsize == 8 ? be64(p) : (int64_t)(int32_t)be32(p);
}

/* Checks a data block of block_size(h, tsize) bytes at p and builds the zone (rule still unset). */
static int read_block(const char *name, const hdr_t *h, const uint8_t *p, unsigned tsize, int extra, umg_tz_t **out)
{
    const uint8_t *times = p, *idx = times + (size_t)h->timecnt * tsize, *types = idx + h->timecnt;
    const uint8_t *leaps = types + (size_t)h->typecnt * 6 + h->charcnt;
    if (!counts_ok(h)) {
        return UMG_ECORRUPT;
    }
    for (uint32_t i = 0; i < h->typecnt; i++) {
        int32_t off = (int32_t)be32(types + 6 * i);
        if (!off_ok(off) || types[6 * i + 4] > 1 || types[6 * i + 5] >= h->charcnt) {
            return UMG_ECORRUPT;
        }
    }
    for (uint32_t i = 0; i < h->leapcnt; i++) {
        if (i > 0 && read_time(leaps + i * (tsize + 4), tsize) <= read_time(leaps + (i - 1) * (tsize + 4), tsize)) {
            return UMG_ECORRUPT;
        }
    }
    umg_tz_t *tz = tz_alloc(name, h->timecnt + (extra ? RULE_TABLE_MAX : 0));
    if (tz == NULL) {
        return UMG_ENOMEM;
    }
    tz->before = (int32_t)be32(types); /* type 0 governs before the first transition */
    uint32_t leap = 0;
    int32_t corr = 0;
    for (uint32_t i = 0; i < h->timecnt; i++) {
        int64_t t = read_time(times + (size_t)i * tsize, tsize);
        if ((i > 0 && t <= read_time(times + (size_t)(i - 1) * tsize, tsize)) || idx[i] >= h->typecnt) {
            umg_tz_free(tz);
            return UMG_ECORRUPT;
        }
        /* A "right/" zone counts leap seconds: bring its times back to POSIX seconds. */
        for (; leap < h->leapcnt && read_time(leaps + leap * (tsize + 4), tsize) <= t; leap++) {
            corr = (int32_t)be32(leaps + leap * (tsize + 4) + tsize);
        }
        if (__builtin_sub_overflow(t, corr, &tz->at[i])) {
            tz->at[i] = t;
        }
        tz->off[i] = (int32_t)be32(types + 6 * (size_t)idx[i]);
    }
    tz->n = h->timecnt;
    *out = tz;
    return UMG_OK;
}

int umg_tz_parse(const char *name, const void *data, size_t len, umg_tz_t **out)
{
    const uint8_t *p = data;
    hdr_t h;
    int rc = read_header(p, len, &h);
    if (rc != UMG_OK) {
        return rc;
    }
    uint64_t size = block_size(&h, 4);
    if (size > len - 44) {
        return UMG_ECORRUPT;
    }
    if (h.version == 1) {
        return read_block(name, &h, p + 44, 4, 0, out);
    }
    /* Version 2 and later: skip the 32-bit block, read the 64-bit one and the footer. */
    p += 44 + size;
    len -= 44 + size;
    if ((rc = read_header(p, len, &h)) != UMG_OK) {
        return rc;
    }
    size = block_size(&h, 8);
    if (size > len - 44 || size + 44 >= len || p[44 + size] != '\n') {
        return UMG_ECORRUPT;
    }
    const char *footer = (const char *)p + 44 + size + 1;
    const char *nl = memchr(footer, '\n', len - 44 - size - 1);
    if (nl == NULL) {
        return UMG_ECORRUPT;
    }
    posix_t rule;
    int has_rule = nl > footer;
    if (has_rule && posix_parse(footer, (size_t)(nl - footer), &rule) != UMG_OK) {
        return UMG_ECORRUPT;
    }
    umg_tz_t *tz = NULL;
    if ((rc = read_block(name, &h, p + 44, 8, has_rule, &tz)) != UMG_OK) {
        return rc;
    }
    if (has_rule) {
        tz->has_rule = 1;
        tz->rule = rule;
        extend_with_rule(tz);
    }
    *out = tz;
    return UMG_OK;
}

int umg_tz_parse_posix(const char *name, umg_slice_t rule, umg_tz_t **out)
{
    posix_t r;
    if (rule.len == 0 || posix_parse(rule.ptr, rule.len, &r) != UMG_OK) {
        return UMG_ECORRUPT;
    }
    umg_tz_t *tz = tz_alloc(name, r.has_dst ? RULE_TABLE_MAX : 0);
    if (tz == NULL) {
        return UMG_ENOMEM;
    }
    tz->has_rule = 1;
    tz->rule = r;
    tz->before = r.std_off;
    extend_with_rule(tz);
    *out = tz;
    return UMG_OK;
}

/* ---------------------------------------------------------------- loading */

int umg_tz_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 63 || name[0] == '/') {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!(is_alpha((unsigned char)c) || is_digit((unsigned char)c) || c == '_' || c == '+' || c == '-' ||
              c == '/')) {
            return 0;
        }
    }
    /* No '.' passes the check above, so no ".." component can either; said again for the reader. */
    for (const char *s = name; (s = strstr(s, "..")) != NULL; s++) {
        if ((s == name || s[-1] == '/') && (s[2] == '\0' || s[2] == '/')) {
            return 0;
        }
    }
    return 1;
}

static int read_zone_file(const char *path, char **data, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return errno == ENOENT || errno == ENOTDIR || errno == ENAMETOOLONG ? UMG_ENOENT : UMG_EIO;
    }
    struct stat st;
    int rc = UMG_EIO;
    char *buf = NULL;
    if (fstat(fd, &st) != 0) {
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = UMG_ENOENT; /* "America" is a directory of zones, not a zone */
        goto done;
    }
    if (st.st_size > MAX_FILE) {
        rc = UMG_ECORRUPT;
        goto done;
    }
    buf = umg_malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        rc = UMG_ENOMEM;
        goto done;
    }
    ssize_t got = umg_pread_full(fd, buf, (size_t)st.st_size + 1, 0);
    if (got < 0 || got > st.st_size) { /* an error, or the file grew under us */
        umg_free(buf);
        goto done;
    }
    *data = buf;
    *len = (size_t)got;
    rc = UMG_OK;
done:
    close(fd);
    return rc;
}

int umg_tz_load(const char *name, umg_tz_t **out)
{
    if (!umg_tz_name_valid(name)) {
        return UMG_EINVAL;
    }
    if (strcmp(name, "UTC") == 0) { /* built in: works without tzdata */
        umg_tz_t *tz = tz_alloc(name, 0);
        if (tz == NULL) {
            return UMG_ENOMEM;
        }
        *out = tz;
        return UMG_OK;
    }
    const char *dir = getenv("TZDIR");
    char path[4096];
    int n = snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : ZONEINFO, name);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        return UMG_ENOENT;
    }
    char *data = NULL;
    size_t len = 0;
    int rc = read_zone_file(path, &data, &len);
    if (rc == UMG_OK) {
        rc = umg_tz_parse(name, data, len, out);
        umg_free(data);
    }
    return rc;
}

void umg_tz_free(umg_tz_t *tz)
{
    if (tz != NULL) {
        umg_free(tz->at);
        umg_free(tz->off);
        umg_free(tz);
    }
}

const char *umg_tz_name(const umg_tz_t *tz)
{
    return tz->name;
}

/* ---------------------------------------------------------------- lookups */

/* How many table transitions are at or before t. */
static size_t count_upto(const umg_tz_t *tz, int64_t t)
{
    size_t lo = 0, hi = tz->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (tz->at[mid] <= t) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

int32_t umg_tz_offset(const umg_tz_t *tz, int64_t utc_s)
{
    if (tz->has_rule && (utc_s >= tz->direct_hi || utc_s < tz->direct_lo)) {
        int64_t next;
        return rule_offset(&tz->rule, utc_s, &next);
    }
    size_t i = count_upto(tz, utc_s);
    return i == 0 ? tz->before : tz->off[i - 1];
}

/* The offset at t and the instant (> t) before which it does not change. */
static int32_t offset_until(const umg_tz_t *tz, int64_t t, int64_t *until)
{
    if (tz->has_rule && (t >= tz->direct_hi || t < tz->direct_lo)) {
        int32_t off = rule_offset(&tz->rule, t, until);
        if (t<tz->direct_lo && * until> tz->direct_lo) {
            *until = tz->direct_lo;
        }
        return off;
    }
    size_t i = count_upto(tz, t);
    *until = i < tz->n ? tz->at[i] : INT64_MAX;
    if (tz->has_rule && *until > tz->direct_hi) {
        *until = tz->direct_hi;
    }
    return i == 0 ? tz->before : tz->off[i - 1];
}

int32_t umg_tz_day(const umg_tz_t *tz, int64_t ts_us)
{
    int64_t s = floor_div(ts_us, 1000000);
    return (int32_t)floor_div(s + umg_tz_offset(tz, s), SEC_PER_DAY);
}

/* Day numbers whose starts are representable in int64 microseconds, with room for offsets. */
#define DAY_LIMIT INT64_C(106000000)

int64_t umg_tz_day_start(const umg_tz_t *tz, int32_t day)
{
    int64_t d = day < -DAY_LIMIT ? -DAY_LIMIT : day > DAY_LIMIT ? DAY_LIMIT : day;
    int64_t midnight = d * SEC_PER_DAY; /* local midnight, as local seconds */
    /* No offset exceeds MAX_OFF, so no earlier instant is on or after the day. Walk the spans of
     * constant offset from there: in a span with offset o, local time reaches midnight at
     * midnight - o; the first span where that happens before the span ends holds the answer. */
    int64_t t = midnight - MAX_OFF - 1;
    for (;;) {
        int64_t until;
        int32_t off = offset_until(tz, t, &until);
        int64_t at = midnight - off > t ? midnight - off : t;
        if (at < until) {
            return at * 1000000;
        }
        t = until;
    }
}

/* ---------------------------------------------------------------- cache */

typedef struct cache_entry_s {
    struct cache_entry_s *next;
    umg_tz_t *tz; /* NULL when loading failed with err */
    int err;
    char name[64];
} cache_entry_t;

struct umg_tz_cache_s {
    pthread_mutex_t mu;
    cache_entry_t *head;
};

int umg_tz_cache_new(umg_tz_cache_t **out)
{
    umg_tz_cache_t *c = umg_calloc(1, sizeof(*c));
    if (c == NULL) {
        return UMG_ENOMEM;
    }
    pthread_mutex_init(&c->mu, NULL);
    *out = c;
    return UMG_OK;
}

void umg_tz_cache_free(umg_tz_cache_t *c)
{
    if (c == NULL) {
        return;
    }
    for (cache_entry_t *e = c->head, *next; e != NULL; e = next) {
        next = e->next;
        umg_tz_free(e->tz);
        umg_free(e);
    }
    pthread_mutex_destroy(&c->mu);
    umg_free(c);
}

int umg_tz_cache_get(umg_tz_cache_t *c, const char *name, const umg_tz_t **out)
{
    if (!umg_tz_name_valid(name)) {
        return UMG_EINVAL;
    }
    pthread_mutex_lock(&c->mu);
    cache_entry_t *e = c->head;
    while (e != NULL && strcmp(e->name, name) != 0) {
        e = e->next;
    }
    int rc;
    if (e == NULL) {
        /* Loaded under the lock so each name is read once; a zone file takes well under a millisecond. */
        umg_tz_t *tz = NULL;
        rc = umg_tz_load(name, &tz);
        if (rc == UMG_ENOMEM || (e = umg_calloc(1, sizeof(*e))) == NULL) {
            umg_tz_free(tz);
            pthread_mutex_unlock(&c->mu);
            return UMG_ENOMEM;
        }
        /* Failures are remembered too: an app with a bad zone must not cost a file read per call. */
        e->tz = rc == UMG_OK ? tz : NULL;
        e->err = rc;
        snprintf(e->name, sizeof(e->name), "%s", name);
        e->next = c->head;
        c->head = e;
    }
    rc = e->tz != NULL ? UMG_OK : e->err;
    if (rc == UMG_OK) {
        *out = e->tz;
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}
