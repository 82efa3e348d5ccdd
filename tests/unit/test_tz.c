/*
 * test_tz.c - unit tests for src/core/tz.c: offsets, local days and day
 * starts in real zones (expected values computed with Python's zoneinfo from
 * the same tzdata, written here as literals), POSIX TZ rules by hand, zone
 * names, corrupt TZif files built byte by byte, and the cache.
 *
 * Tests that read /usr/share/zoneinfo skip, saying so, when it is absent.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "umg_core.h"

#define US INT64_C(1000000)

/* ---------------------------------------------------------------- helpers */

static int have_tzdata(void)
{
    if (access("/usr/share/zoneinfo/America/New_York", R_OK) == 0) {
        return 1;
    }
    fprintf(stderr, "SKIP: /usr/share/zoneinfo is absent (install tzdata)\n");
    return 0;
}

static umg_tz_t *load(const char *name)
{
    umg_tz_t *tz = NULL;
    int rc = umg_tz_load(name, &tz);
    if (rc != UMG_OK) {
        fail_msg("umg_tz_load(%s): %s", name, umg_strerror(rc));
    }
    return tz;
}

/* An instant, its offset and its local day. */
typedef struct point_s {
    int64_t t;
    int32_t off;
    int32_t day;
} point_t;

static void check_points(const char *zone, const point_t *p, size_t n)
{
    umg_tz_t *tz = load(zone);
    for (size_t i = 0; i < n; i++) {
        if (umg_tz_offset(tz, p[i].t) != p[i].off || umg_tz_day(tz, p[i].t * US) != p[i].day) {
            fail_msg("%s at %lld: offset %d day %d, expected %d %d", zone, (long long)p[i].t, umg_tz_offset(tz, p[i].t),
                     umg_tz_day(tz, p[i].t * US), p[i].off, p[i].day);
        }
        /* The microsecond before an instant on a whole second is still the second before. */
        assert_int_equal(umg_tz_day(tz, p[i].t * US - 1), umg_tz_day(tz, (p[i].t - 1) * US));
    }
    umg_tz_free(tz);
}

/* A day and the first UTC second of it. */
typedef struct start_s {
    int32_t day;
    int64_t start;
} start_t;

static void check_starts(const char *zone, const start_t *s, size_t n)
{
    umg_tz_t *tz = load(zone);
    for (size_t i = 0; i < n; i++) {
        int64_t got = umg_tz_day_start(tz, s[i].day);
        if (got != s[i].start * US) {
            fail_msg("%s day %d starts at %lld, expected %lld", zone, s[i].day, (long long)(got / US),
                     (long long)s[i].start);
        }
        /* The instant is in the day (or later, for a skipped day), the one before is not. */
        assert_true(umg_tz_day(tz, got) >= s[i].day);
        assert_true(umg_tz_day(tz, got - 1) < s[i].day);
    }
    umg_tz_free(tz);
}

/* ---------------------------------------------------------------- real zones */

static void test_new_york(void **state)
{
    (void)state;
    if (!have_tzdata()) {
        skip();
    }
    static const point_t p[] = {
        {1710053999, -18000, 19792}, /* 2024-03-10 01:59:59 EST */
        {1710054000, -14400, 19792}, /* 03:00:00 EDT */
        {1730613599, -14400, 20030}, /* 2024-11-03 01:59:59 EDT */
        {1730613600, -18000, 20030}, /* 01:00:00 EST, again */
    };
    check_points("America/New_York", p, UMG_ARRAY_SIZE(p));
    static const start_t s[] = {
        {19792, 1710046800}, /* 2024-03-10 starts 05:00Z */
        {19793, 1710129600}, /* 2024-03-11 starts 04:00Z (23 hours later) */
        {20030, 1730606400}, /* 2024-11-03 starts 04:00Z */
        {20031, 1730696400}, /* 2024-11-04 starts 05:00Z (25 hours later) */
    };
    check_starts("America/New_York", s, UMG_ARRAY_SIZE(s));
}

static void test_london(void **state)
{
    (void)state;
    if (!have_tzdata()) {
        skip();
    }
    static const point_t p[] = {
        {1711846799, 0, 19813},
        {1711846800, 3600, 19813}, /* 2024-03-31 01:00Z */
        {1729990799, 3600, 20023},
        {1729990800, 0, 20023}, /* 2024-10-27 01:00Z */
    };
    check_points("Europe/London", p, UMG_ARRAY_SIZE(p));
    static const start_t s[] = {{19875, 1717196400}, {19813, 1711843200}};
    check_starts("Europe/London", s, UMG_ARRAY_SIZE(s));
}

static void test_kolkata_tokyo(void **state)
{
    (void)state;
    if (!have_tzdata()) {
        skip();
    }
    static const point_t kol[] = {{1719772200, 19800, 19905}, {1719772199, 19800, 19904}};
    check_points("Asia/Kolkata", kol, UMG_ARRAY_SIZE(kol));
    static const start_t kol_s[] = {{19905, 1719772200}};
    check_starts("Asia/Kolkata", kol_s, UMG_ARRAY_SIZE(kol_s));
    static const point_t tok[] = {{1719759600, 32400, 19905}, {1719759599, 32400, 19904}};
    check_points("Asia/Tokyo", tok, UMG_ARRAY_SIZE(tok));
    static const start_t tok_s[] = {{19905, 1719759600}};
    check_starts("Asia/Tokyo", tok_s, UMG_ARRAY_SIZE(tok_s));
}

static void test_lord_howe(void **state)
{
    (void)state;
    if (!have_tzdata()) {
        skip();
    }
    /* Half-hour DST: +11 in summer, +10:30 in winter. */
    static const point_t p[] = {
        {1712415599, 39600, 19820}, {1712415600, 37800, 19820}, /* 2024-04-07 02:00 -> 01:30 */
        {1728142199, 37800, 20002}, {1728142200, 39600, 20002}, /* 2024-10-06 02:00 -> 02:30 */
        {4102444800, 39600, 47482},                             /* 2100-01-01, from the footer */
    };
    check_points("Australia/Lord_Howe", p, UMG_ARRAY_SIZE(p));
    static const start_t s[] = {{19820, 1712408400}, {20002, 1728135000}};
    check_starts("Australia/Lord_Howe", s, UMG_ARRAY_SIZE(s));
}

static void test_apia_skipped_day(void **state)
{
    (void)state;
    if (!have_tzdata()) {
        skip();
    }
    /* Samoa went from 2011-12-29 23:59:59 -10 to 2011-12-31 00:00:00 +14. */
    static const point_t p[] = {{1325239199, -36000, 15337}, {1325239200, 50400, 15339}};
    check_points("Pacific/Apia", p, UMG_ARRAY_SIZE(p));
    umg_tz_t *tz = load("Pacific/Apia");
    assert_int_equal(umg_tz_day_start(tz, 15337), INT64_C(1325152800) * US);
    /* The skipped day has no instants: it "starts" where the next one does. */
    assert_int_equal(umg_tz_day_start(tz, 15338), INT64_C(1325239200) * US);
    assert_int_equal(umg_tz_day_start(tz, 15339), INT64_C(1325239200) * US);
    umg_tz_free(tz);
}

static void test_sao_paulo(void **state)
{
    (void)state;
    if (!have_tzdata()) {
        skip();
    }
    /* DST began at midnight (2018-11-04 starts at 01:00) and ended at midnight (2019-02-16 has 25 hours). */
    static const point_t p[] = {
        {1541300399, -10800, 17838}, {1541300400, -7200, 17839},  {1550368799, -7200, 17943},
        {1550368800, -10800, 17943}, {1705320000, -10800, 19737}, /* 2024: no DST since 2019 */
    };
    check_points("America/Sao_Paulo", p, UMG_ARRAY_SIZE(p));
    static const start_t s[] = {
        {17839, 1541300400}, /* 2018-11-04 starts at 01:00 local, 03:00Z */
        {17943, 1550282400}, /* 2019-02-16 */
        {17944, 1550372400}, /* 2019-02-17 */
    };
    check_starts("America/Sao_Paulo", s, UMG_ARRAY_SIZE(s));
}

static void test_far_future(void **state)
{
    (void)state;
    if (!have_tzdata()) {
        skip();
    }
    /* Beyond any file's explicit transitions: the footer rule decides. 2300 is beyond the
     * table the rule is expanded into, so it is evaluated directly. */
    static const point_t ny[] = {
        {4108690799, -18000, 47554},   {4108690800, -14400, 47554}, /* 2100-03-14 */
        {4129250399, -14400, 47792},   {4129250400, -18000, 47792}, /* 2100-11-07 */
        {10429430400, -14400, 120710},                              /* 2300-07-01 */
    };
    check_points("America/New_York", ny, UMG_ARRAY_SIZE(ny));
    static const start_t ny_s[] = {{47554, 4108683600}};
    check_starts("America/New_York", ny_s, UMG_ARRAY_SIZE(ny_s));
    static const point_t lon[] = {{4109878799, 0, 47568}, {4109878800, 3600, 47568}};
    check_points("Europe/London", lon, UMG_ARRAY_SIZE(lon));
    static const start_t lon_s[] = {{47568, 4109875200}};
    check_starts("Europe/London", lon_s, UMG_ARRAY_SIZE(lon_s));
}

/* Day starts and days agree over ten years of days in several zones. */
static void test_day_start_consistent(void **state)
{
    (void)state;
    if (!have_tzdata()) {
        skip();
    }
    static const char *const zones[] = {"America/New_York",  "Australia/Lord_Howe", "Pacific/Apia",
                                        "America/Sao_Paulo", "Europe/Dublin",       "UTC"};
    for (size_t z = 0; z < UMG_ARRAY_SIZE(zones); z++) {
        umg_tz_t *tz = load(zones[z]);
        int64_t prev = umg_tz_day_start(tz, 14000);
        for (int32_t d = 14001; d < 14001 + 3660; d++) {
            int64_t s = umg_tz_day_start(tz, d);
            assert_true(s >= prev);
            assert_true(s - prev <= 50 * 3600 * US); /* Apia's 2011-12-29 ends with a skipped day */
            assert_true(umg_tz_day(tz, s) >= d);
            assert_true(umg_tz_day(tz, s - 1) < d);
            prev = s;
        }
        umg_tz_free(tz);
    }
}

/* ---------------------------------------------------------------- POSIX rules */

static umg_tz_t *posix(const char *rule)
{
    umg_tz_t *tz = NULL;
    int rc = umg_tz_parse_posix("x", umg_slice(rule, strlen(rule)), &tz);
    if (rc != UMG_OK) {
        fail_msg("%s: %s", rule, umg_strerror(rc));
    }
    return tz;
}

static void test_posix_rules(void **state)
{
    (void)state;
    umg_tz_t *tz = posix("EST5EDT,M3.2.0,M11.1.0");
    assert_int_equal(umg_tz_offset(tz, 1710053999), -18000);
    assert_int_equal(umg_tz_offset(tz, 1710054000), -14400);
    assert_int_equal(umg_tz_offset(tz, 1730613599), -14400);
    assert_int_equal(umg_tz_offset(tz, 1730613600), -18000);
    assert_int_equal(umg_tz_offset(tz, 10429430400), -14400); /* 2300, direct */
    assert_int_equal(umg_tz_offset(tz, -2208988800), -18000); /* 1900-01-01, before the table */
    umg_tz_free(tz);

    /* A DST name without a rule takes the US rule. */
    tz = posix("EST5EDT");
    assert_int_equal(umg_tz_offset(tz, 1710054000), -14400);
    umg_tz_free(tz);

    /* Quoted names, minutes, negative (eastern) offsets. */
    tz = posix("<+0330>-3:30");
    assert_int_equal(umg_tz_offset(tz, 0), 12600);
    assert_int_equal(umg_tz_offset(tz, 4102444800), 12600);
    umg_tz_free(tz);
    tz = posix("IST-5:30");
    assert_int_equal(umg_tz_offset(tz, 1719772200), 19800);
    umg_tz_free(tz);
    tz = posix("<-03>3");
    assert_int_equal(umg_tz_offset(tz, 1705320000), -10800);
    umg_tz_free(tz);
    tz = posix("<+1030>-10:30<+11>-11,M10.1.0,M4.1.0");
    assert_int_equal(umg_tz_offset(tz, 1712415599), 39600);
    assert_int_equal(umg_tz_offset(tz, 1712415600), 37800);
    assert_int_equal(umg_tz_offset(tz, 1728142200), 39600);
    umg_tz_free(tz);

    /* Negative transition times (version 3): America/Nuuk's rule, checked against zoneinfo in 2030. */
    tz = posix("<-02>2<-01>,M3.5.0/-1,M10.5.0/0");
    assert_int_equal(umg_tz_offset(tz, 1901149199), -7200);
    assert_int_equal(umg_tz_offset(tz, 1901149200), -3600);
    assert_int_equal(umg_tz_offset(tz, 1919293199), -3600);
    assert_int_equal(umg_tz_offset(tz, 1919293200), -7200);
    umg_tz_free(tz);

    /* Jn skips February 29, n counts it: J60 is March 1, day 300 of 2024 is October 27. */
    tz = posix("AAA0BBB,J60,300");
    assert_int_equal(umg_tz_offset(tz, 1709258399), 0); /* 2024-03-01 01:59:59Z */
    assert_int_equal(umg_tz_offset(tz, 1709258400), 3600);
    assert_int_equal(umg_tz_offset(tz, 1729990799), 3600); /* 2024-10-27 00:59:59Z = 01:59:59 DST */
    assert_int_equal(umg_tz_offset(tz, 1729990800), 0);
    umg_tz_free(tz);

    /* Times beyond 24 hours (version 3): DST all year, as tzcode documents it. */
    tz = posix("EST5EDT,0/0,J365/25");
    assert_int_equal(umg_tz_offset(tz, 1704067200), -14400); /* 2024-01-01 */
    assert_int_equal(umg_tz_offset(tz, 1719792000), -14400); /* 2024-07-01 */
    assert_int_equal(umg_tz_offset(tz, 1735707599), -14400); /* 2025-01-01 04:59:59Z: where DST ends and begins */
    assert_int_equal(umg_tz_offset(tz, 1735707600), -14400);
    umg_tz_free(tz);

    /* Explicit DST offset; a fifth week means the last one. */
    tz = posix("AAA-1BBB-3,M2.5.6/12,M9.5.6/12");
    /* 2024: the last Saturday of February is the 24th, of September the 28th. */
    assert_int_equal(umg_tz_offset(tz, 1708772400 - 1), 3600); /* 2024-02-24 11:00Z - 1 */
    assert_int_equal(umg_tz_offset(tz, 1708772400), 10800);
    assert_int_equal(umg_tz_offset(tz, 1727514000 - 1), 10800); /* 2024-09-28 09:00Z - 1 */
    assert_int_equal(umg_tz_offset(tz, 1727514000), 3600);
    umg_tz_free(tz);
}

static void test_posix_bad(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "EST",
        "ES5",
        "EST5ED",
        "5",
        "<AB>5",
        "<+03",
        "<+0 3>-3",
        "EST25",
        "EST5:60",
        "EST5EDT,M13.1.0,M11.1.0",
        "EST5EDT,M3.6.0,M11.1.0",
        "EST5EDT,M3.2.7,M11.1.0",
        "EST5EDT,M3.2.0",
        "EST5EDT,M3.2.0,",
        "EST5EDT,M3.2.0/168,M11.1.0",
        "EST5EDT,J0,J365",
        "EST5EDT,J366,J1",
        "EST5EDT,366,1",
        "EST5EDT,M3.2.0,M11.1.0x",
        "EST5EDT,M3.2.0,M11.1.0,",
        "EST5 EDT",
        "EST5EDT,M3.2,M11.1.0",
        "EST-5EDT-24:59:60",
    };
    for (size_t i = 0; i < UMG_ARRAY_SIZE(bad); i++) {
        umg_tz_t *tz = NULL;
        if (umg_tz_parse_posix("x", umg_slice(bad[i], strlen(bad[i])), &tz) != UMG_ECORRUPT) {
            fail_msg("accepted \"%s\"", bad[i]);
        }
        assert_null(tz);
    }
    /* Not NUL-terminated: only the slice is read. */
    umg_tz_t *tz = NULL;
    assert_int_equal(umg_tz_parse_posix("x", umg_slice("JST-9XYZ", 5), &tz), UMG_OK);
    assert_int_equal(umg_tz_offset(tz, 0), 32400);
    umg_tz_free(tz);
}

/* ---------------------------------------------------------------- names */

static void test_names(void **state)
{
    (void)state;
    static const char *const invalid[] = {
        "",
        "/etc/passwd",
        "../etc/passwd",
        "America/../UTC",
        "..",
        "Europe/Berlin\n",
        "Europe/Berlin ",
        "Europe/Berlin.txt",
        "Europe\\Berlin",
        "Zone*",
        "0123456789012345678901234567890123456789012345678901234567890123", /* 64 */
    };
    for (size_t i = 0; i < UMG_ARRAY_SIZE(invalid); i++) {
        umg_tz_t *tz = NULL;
        if (umg_tz_load(invalid[i], &tz) != UMG_EINVAL) {
            fail_msg("accepted the name \"%s\"", invalid[i]);
        }
        assert_int_equal(umg_tz_name_valid(invalid[i]), 0);
    }
    assert_int_equal(umg_tz_name_valid(NULL), 0);
    assert_int_equal(umg_tz_name_valid("America/Argentina/Buenos_Aires"), 1);
    assert_int_equal(umg_tz_name_valid("Etc/GMT+5"), 1);
    assert_int_equal(umg_tz_name_valid("America/Port-au-Prince"), 1);
    assert_int_equal(umg_tz_name_valid("012345678901234567890123456789012345678901234567890123456789012"), 1);

    umg_tz_t *tz = NULL;
    assert_int_equal(umg_tz_load("Nowhere/Atlantis", &tz), UMG_ENOENT);
    assert_int_equal(umg_tz_load("UTC", &tz), UMG_OK);
    assert_string_equal(umg_tz_name(tz), "UTC");
    assert_int_equal(umg_tz_offset(tz, 1719772200), 0);
    assert_int_equal(umg_tz_day(tz, -1), -1);
    assert_int_equal(umg_tz_day_start(tz, 19905), INT64_C(19905) * 86400 * US);
    umg_tz_free(tz);
    umg_tz_free(NULL);
    if (have_tzdata()) {
        assert_int_equal(umg_tz_load("America", &tz), UMG_ENOENT); /* a directory */
        tz = load("Asia/Kolkata");
        assert_string_equal(umg_tz_name(tz), "Asia/Kolkata");
        umg_tz_free(tz);
    }
}

/* "UTC" needs no tzdata; other zones come from $TZDIR, where a bad file is corrupt. */
static void test_tzdir(void **state)
{
    (void)state;
    char dir[] = "/tmp/umg_tz_test.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof(path), "%s/Bad_Zone", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("TZif2 but not really\n", f);
    fclose(f);
    const char *old = getenv("TZDIR");
    char *saved = old ? strdup(old) : NULL;
    setenv("TZDIR", dir, 1);
    umg_tz_t *tz = NULL;
    assert_int_equal(umg_tz_load("UTC", &tz), UMG_OK);
    umg_tz_free(tz);
    assert_int_equal(umg_tz_load("Europe/Berlin", &tz), UMG_ENOENT);
    assert_int_equal(umg_tz_load("Bad_Zone", &tz), UMG_ECORRUPT);
    if (saved) {
        setenv("TZDIR", saved, 1);
        free(saved);
    } else {
        unsetenv("TZDIR");
    }
    unlink(path);
    rmdir(dir);
}

/* ---------------------------------------------------------------- TZif files */

/* Builds a TZif file: a v1 block (empty unless v1), then for version >= 2 a 64-bit block and the footer. */
typedef struct tzif_spec_s {
    char version; /* 0, '2', '3', '4' */
    uint32_t timecnt, typecnt, charcnt, leapcnt;
    const int64_t *times;
    const uint8_t *idx;
    const int32_t *offs; /* typecnt of them */
    const char *footer;  /* NULL: no footer line at all */
} tzif_spec_t;

static void put32(umg_buf_t *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    umg_buf_append(b, x, 4);
}

static void put_header(umg_buf_t *b, char version, const tzif_spec_t *s)
{
    umg_buf_append(b, "TZif", 4);
    umg_buf_putc(b, version);
    umg_buf_append(b, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 15);
    put32(b, 0);
    put32(b, 0);
    put32(b, s->leapcnt);
    put32(b, s->timecnt);
    put32(b, s->typecnt);
    put32(b, s->charcnt);
}

static void put_block(umg_buf_t *b, const tzif_spec_t *s, int wide)
{
    for (uint32_t i = 0; i < s->timecnt; i++) {
        if (wide) {
            put32(b, (uint32_t)((uint64_t)s->times[i] >> 32));
        }
        put32(b, (uint32_t)s->times[i]);
    }
    umg_buf_append(b, s->idx, s->timecnt);
    for (uint32_t i = 0; i < s->typecnt; i++) {
        put32(b, (uint32_t)s->offs[i]);
        umg_buf_putc(b, 0);
        umg_buf_putc(b, 0);
    }
    for (uint32_t i = 0; i < s->charcnt; i++) {
        umg_buf_putc(b, i + 1 == s->charcnt ? 0 : 'A');
    }
    for (uint32_t i = 0; i < s->leapcnt; i++) { /* leap seconds every ten years from 1980 */
        if (wide) {
            put32(b, 0);
        }
        put32(b, (uint32_t)(315532800 + 315360000 * i));
        put32(b, i + 1);
    }
}

static void build(umg_buf_t *b, const tzif_spec_t *s)
{
    umg_buf_reset(b);
    if (s->version == 0) {
        put_header(b, 0, s);
        put_block(b, s, 0);
        return;
    }
    tzif_spec_t empty = {.typecnt = 1, .charcnt = 1, .offs = (const int32_t[]){0}};
    put_header(b, s->version, &empty);
    put_block(b, &empty, 0);
    put_header(b, s->version, s);
    put_block(b, s, 1);
    if (s->footer != NULL) {
        umg_buf_printf(b, "\n%s\n", s->footer);
    }
}

static int parse(const umg_buf_t *b, umg_tz_t **tz)
{
    *tz = NULL;
    return umg_tz_parse("test", b->ptr, b->len, tz);
}

static void test_tzif_built(void **state)
{
    (void)state;
    static const int64_t times[] = {0, 1000000, 2000000};
    static const uint8_t idx[] = {1, 0, 1};
    static const int32_t offs[] = {3600, 7200};
    tzif_spec_t s = {'2', 3, 2, 4, 0, times, idx, offs, "AAA-1"};
    umg_buf_t b = {0};
    umg_tz_t *tz;

    build(&b, &s);
    assert_int_equal(parse(&b, &tz), UMG_OK);
    assert_int_equal(umg_tz_offset(tz, -1), 3600); /* type 0 before the first transition */
    assert_int_equal(umg_tz_offset(tz, 0), 7200);
    assert_int_equal(umg_tz_offset(tz, 1000000), 3600);
    assert_int_equal(umg_tz_offset(tz, 1999999), 3600);
    assert_int_equal(umg_tz_offset(tz, 2000000), 7200); /* the last transition's type */
    assert_int_equal(umg_tz_offset(tz, 2000001), 3600); /* then the footer */
    assert_string_equal(umg_tz_name(tz), "test");
    umg_tz_free(tz);

    /* Every truncation is corrupt, never a crash. */
    for (size_t n = 0; n < b.len - 1; n++) {
        assert_int_equal(umg_tz_parse("t", b.ptr, n, &tz), UMG_ECORRUPT);
    }

    /* Version 1 (32-bit times, no footer), version 3 and 4, an empty footer, a leap-second file. */
    s.version = 0;
    build(&b, &s);
    assert_int_equal(parse(&b, &tz), UMG_OK);
    assert_int_equal(umg_tz_offset(tz, 3000000), 7200);
    umg_tz_free(tz);
    s.version = '4';
    s.footer = "";
    build(&b, &s);
    assert_int_equal(parse(&b, &tz), UMG_OK);
    assert_int_equal(umg_tz_offset(tz, 3000000), 7200);
    umg_tz_free(tz);
    s.leapcnt = 2; /* +1 s from 1980, +2 s from 1990: "right/" times are one or two seconds ahead */
    static const int64_t right[] = {0, 315532800 + 1000, 631152000 + 1002};
    s.times = right;
    build(&b, &s);
    assert_int_equal(parse(&b, &tz), UMG_OK);
    assert_int_equal(umg_tz_offset(tz, 315532800 + 998), 7200);
    assert_int_equal(umg_tz_offset(tz, 315532800 + 999), 3600);
    assert_int_equal(umg_tz_offset(tz, 631152000 + 999), 3600);
    assert_int_equal(umg_tz_offset(tz, 631152000 + 1000), 7200);
    umg_tz_free(tz);
    s.leapcnt = 0;
    s.times = times;

    /* No transitions: the footer governs everything (UTC-like files). */
    tzif_spec_t none = {'2', 0, 1, 4, 0, NULL, NULL, offs, "EST5EDT,M3.2.0,M11.1.0"};
    build(&b, &none);
    assert_int_equal(parse(&b, &tz), UMG_OK);
    assert_int_equal(umg_tz_offset(tz, 1710054000), -14400);
    assert_int_equal(umg_tz_offset(tz, -4010000000), -18000); /* December 1842 */
    umg_tz_free(tz);
    umg_buf_free(&b);
}

static void test_tzif_corrupt(void **state)
{
    (void)state;
    static const int64_t times[] = {0, 1000000};
    static const int64_t unsorted[] = {1000000, 0};
    static const uint8_t idx[] = {1, 0};
    static const uint8_t bad_idx[] = {1, 2};
    static const int32_t offs[] = {3600, 7200};
    static const int32_t bad_offs[] = {3600, 100000};
    const tzif_spec_t good = {'2', 2, 2, 4, 0, times, idx, offs, "AAA-1"};
    tzif_spec_t cases[8];
    for (size_t i = 0; i < UMG_ARRAY_SIZE(cases); i++) {
        cases[i] = good;
    }
    cases[0].times = unsorted;
    cases[1].idx = bad_idx;
    cases[2].offs = bad_offs;
    cases[3].footer = NULL;     /* version 2 without its footer */
    cases[4].footer = "AAA-1X"; /* not a POSIX rule */
    cases[5].typecnt = 0;
    cases[6].charcnt = 0;
    cases[7].version = '!';
    umg_buf_t b = {0};
    umg_tz_t *tz;
    for (size_t i = 0; i < UMG_ARRAY_SIZE(cases); i++) {
        build(&b, &cases[i]);
        if (parse(&b, &tz) != UMG_ECORRUPT || tz != NULL) {
            fail_msg("case %zu was accepted", i);
        }
    }
    /* Bad magic; a count that claims more bytes than there are. */
    build(&b, &good);
    b.ptr[0] = 't';
    assert_int_equal(parse(&b, &tz), UMG_ECORRUPT);
    build(&b, &good);
    b.ptr[44 + 7 + 32] = 0x7f; /* the 64-bit header's timecnt (after a 7-byte v1 block), high byte */
    assert_int_equal(parse(&b, &tz), UMG_ECORRUPT);
    assert_int_equal(umg_tz_parse("x", "", 0, &tz), UMG_ECORRUPT);
    umg_buf_free(&b);
}

/* A real file, cut at every length and with every byte flipped, never crashes. */
static void test_tzif_real_mangled(void **state)
{
    (void)state;
    if (!have_tzdata()) {
        skip();
    }
    FILE *f = fopen("/usr/share/zoneinfo/America/New_York", "rb");
    assert_non_null(f);
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    umg_tz_t *tz;
    assert_int_equal(umg_tz_parse("ny", buf, n, &tz), UMG_OK);
    umg_tz_free(tz);
    for (size_t k = 0; k < n; k++) {
        int rc = umg_tz_parse("ny", buf, k, &tz);
        assert_true(rc == UMG_ECORRUPT || rc == UMG_OK);
        if (rc == UMG_OK) { /* a cut in the version 1 block's padding can still parse */
            umg_tz_free(tz);
        }
        buf[k] ^= 0x5a;
        if (umg_tz_parse("ny", buf, n, &tz) == UMG_OK) {
            (void)umg_tz_offset(tz, 1700000000);
            (void)umg_tz_day_start(tz, 19000);
            umg_tz_free(tz);
        }
        buf[k] ^= 0x5a;
    }
}

/* ---------------------------------------------------------------- memory */

static void test_out_of_memory(void **state)
{
    (void)state;
    size_t before = umg_alloc_bytes();
    for (long k = 1; k < 8; k++) {
        umg_tz_t *tz = NULL;
        umg_alloc_fail_after(k);
        int rc = umg_tz_parse_posix("x", UMG_SLICE("EST5EDT,M3.2.0,M11.1.0"), &tz);
        umg_alloc_fail_after(0);
        assert_true(rc == UMG_OK || rc == UMG_ENOMEM);
        umg_tz_free(tz);
        umg_tz_cache_t *c = NULL;
        umg_alloc_fail_after(k);
        rc = umg_tz_cache_new(&c);
        const umg_tz_t *z;
        if (rc == UMG_OK) {
            rc = umg_tz_cache_get(c, "UTC", &z);
            assert_true(rc == UMG_OK || rc == UMG_ENOMEM);
        }
        umg_alloc_fail_after(0);
        umg_tz_cache_free(c);
    }
    assert_int_equal(umg_alloc_bytes(), before);
}

/* ---------------------------------------------------------------- cache */

typedef struct cache_arg_s {
    umg_tz_cache_t *c;
    const umg_tz_t *got[4];
} cache_arg_t;

static void *cache_thread(void *p)
{
    cache_arg_t *a = p;
    static const char *const names[] = {"UTC", "America/New_York", "Asia/Kolkata", "Europe/London"};
    for (int round = 0; round < 200; round++) {
        for (int i = 0; i < 4; i++) {
            const umg_tz_t *tz;
            if (umg_tz_cache_get(a->c, names[i], &tz) == UMG_OK) {
                a->got[i] = tz;
                (void)umg_tz_day(tz, round * 3600 * US);
            }
        }
    }
    return NULL;
}

static void test_cache(void **state)
{
    (void)state;
    umg_tz_cache_t *c;
    assert_int_equal(umg_tz_cache_new(&c), UMG_OK);
    const umg_tz_t *a, *b;
    assert_int_equal(umg_tz_cache_get(c, "UTC", &a), UMG_OK);
    assert_int_equal(umg_tz_cache_get(c, "UTC", &b), UMG_OK);
    assert_ptr_equal(a, b);
    assert_int_equal(umg_tz_cache_get(c, "../x", &a), UMG_EINVAL);
    assert_int_equal(umg_tz_cache_get(c, "Nowhere/Atlantis", &a), UMG_ENOENT);
    assert_int_equal(umg_tz_cache_get(c, "Nowhere/Atlantis", &a), UMG_ENOENT);
    if (have_tzdata()) {
        cache_arg_t args[4];
        pthread_t th[4];
        for (int i = 0; i < 4; i++) {
            memset(&args[i], 0, sizeof(args[i]));
            args[i].c = c;
            assert_int_equal(pthread_create(&th[i], NULL, cache_thread, &args[i]), 0);
        }
        for (int i = 0; i < 4; i++) {
            pthread_join(th[i], NULL);
        }
        for (int i = 0; i < 4; i++) {
            assert_non_null(args[0].got[i]);
            for (int k = 1; k < 4; k++) {
                assert_ptr_equal(args[k].got[i], args[0].got[i]); /* each name loaded once */
            }
        }
        assert_string_equal(umg_tz_name(args[0].got[1]), "America/New_York");
    }
    umg_tz_cache_free(c);
    umg_tz_cache_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_york),
        cmocka_unit_test(test_london),
        cmocka_unit_test(test_kolkata_tokyo),
        cmocka_unit_test(test_lord_howe),
        cmocka_unit_test(test_apia_skipped_day),
        cmocka_unit_test(test_sao_paulo),
        cmocka_unit_test(test_far_future),
        cmocka_unit_test(test_day_start_consistent),
        cmocka_unit_test(test_posix_rules),
        cmocka_unit_test(test_posix_bad),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_tzdir),
        cmocka_unit_test(test_tzif_built),
        cmocka_unit_test(test_tzif_corrupt),
        cmocka_unit_test(test_tzif_real_mangled),
        cmocka_unit_test(test_out_of_memory),
        cmocka_unit_test(test_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
