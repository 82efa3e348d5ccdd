/*
 * test_core.c - unit tests for src/core: counted allocation and fault
 * injection, buffers and JSON escaping, integer formatting, arenas, RFC 3339,
 * CRC32C (hardware and software agree), hash64, UUIDs, the metrics renderer,
 * configuration parsing and the filesystem helpers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "umg_core.h"
#include "umg_core_int.h"

/* ---------------------------------------------------------------- helpers */

static char tmpdir[256];

static int make_tmpdir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/umg_core_test.XXXXXX");
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int remove_tmpdir(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static size_t count_occurrences(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle)) {
        n++;
    }
    return n;
}

/* ---------------------------------------------------------------- errors */

static void test_hex_encode(void **state)
{
    (void)state;
    const uint8_t b[] = {0x00, 0x0f, 0xa5, 0xff};
    char out[2 * sizeof(b) + 1];
    memset(out, 'x', sizeof(out));
    umg_hex_encode(b, sizeof(b), out);
    assert_string_equal(out, "000fa5ff");
    umg_hex_encode(b, 0, out);
    assert_string_equal(out, "");
    for (int c = 0; c < 256; c++) { /* umg_hexval reads back what it writes */
        uint8_t one = (uint8_t)c;
        char h[3];
        umg_hex_encode(&one, 1, h);
        assert_int_equal(umg_hexval(h[0]) * 16 + umg_hexval(h[1]), c);
    }
}

static void test_strerror(void **state)
{
    (void)state;
    for (int e = UMG_EAUTH; e <= UMG_OK; e++) {
        const char *s = umg_strerror(e);
        assert_non_null(s);
        assert_string_not_equal(s, "unknown error");
    }
    assert_string_equal(umg_strerror(-999), "unknown error");
    assert_string_equal(umg_strerror(UMG_ENOMEM), "out of memory");
}

/* ---------------------------------------------------------------- alloc */

static void test_alloc_counting(void **state)
{
    (void)state;
    size_t base = umg_alloc_bytes();
    char *a = umg_malloc(100);
    assert_non_null(a);
    assert_int_equal(((uintptr_t)a) % 16, 0);
    assert_int_equal(umg_alloc_bytes(), base + 100);
    memset(a, 'x', 100);

    int *c = umg_calloc(10, sizeof(int));
    assert_non_null(c);
    assert_int_equal(umg_alloc_bytes(), base + 100 + 10 * sizeof(int));
    for (int i = 0; i < 10; i++) {
        assert_int_equal(c[i], 0);
    }

    a = umg_realloc(a, 1000);
    assert_non_null(a);
    assert_int_equal(a[99], 'x');
    assert_int_equal(umg_alloc_bytes(), base + 1000 + 10 * sizeof(int));

    char *d = umg_strndup("hello world", 5);
    assert_string_equal(d, "hello");
    assert_int_equal(umg_alloc_bytes(), base + 1000 + 10 * sizeof(int) + 6);
    char *e = umg_strndup("ab\0cd", 5);
    assert_string_equal(e, "ab");

    umg_free(a);
    umg_free(c);
    umg_free(d);
    umg_free(e);
    umg_free(NULL);
    assert_int_equal(umg_alloc_bytes(), base);

    /* Overflowing requests fail cleanly. */
    assert_null(umg_malloc(SIZE_MAX));
    assert_null(umg_calloc(SIZE_MAX / 2, 4));
    assert_int_equal(umg_alloc_bytes(), base);
}

/* The VmFlags of the mapping that holds addr, from /proc/self/smaps ("" when not found). */
static void vm_flags(uintptr_t addr, char *out, size_t cap)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    unsigned long lo = 0, hi = 0;
    int in = 0;
    out[0] = '\0';
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        unsigned long a, b;
        if (sscanf(line, "%lx-%lx ", &a, &b) == 2 && strchr(line, ':') != NULL && line[0] != 'V') {
            lo = a, hi = b;
            in = addr >= lo && addr < hi;
        } else if (in && strncmp(line, "VmFlags:", 8) == 0) {
            snprintf(out, cap, "%s", line + 8);
            break;
        }
    }
    if (f != NULL) {
        fclose(f);
    }
}

static void test_alloc_huge(void **state)
{
    (void)state;
    size_t base = umg_alloc_bytes();
    size_t n = (size_t)8 << 20; /* 64 MiB of uint64_t: past glibc's largest mmap threshold */
    uint64_t *t = umg_calloc_huge(n, sizeof(uint64_t));
    assert_non_null(t);
    assert_int_equal(umg_alloc_bytes(), base + n * sizeof(uint64_t));
    for (size_t i = 0; i < n; i += 4093) {
        assert_int_equal(t[i], 0);
        t[i] = i;
    }
    assert_int_equal(t[4093 * 7], 4093 * 7);
    /* The 2 MiB-aligned inside of the block is advised for huge pages ("hg" in its mapping's flags). */
    char flags[512];
    uintptr_t inside = ((uintptr_t)t + ((uintptr_t)2 << 20)) & ~(((uintptr_t)2 << 20) - 1);
    vm_flags(inside, flags, sizeof(flags));
    if (flags[0] != '\0') {
        assert_non_null(strstr(flags, " hg"));
    }
    uint8_t *small = umg_calloc_huge(100, 1); /* below 8 MiB: a plain umg_calloc */
    assert_non_null(small);
    assert_int_equal(small[99], 0);
    umg_free(t);
    umg_free(small);
    assert_int_equal(umg_alloc_bytes(), base);
    assert_null(umg_calloc_huge(SIZE_MAX / 2, 4));
    umg_alloc_fail_after(1);
    assert_null(umg_calloc_huge(n, sizeof(uint64_t)));
    umg_alloc_fail_after(0);
    assert_int_equal(umg_alloc_bytes(), base);
}

static long minor_faults(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

/* A block grown to 8 MiB and more moves its pages when it grows again: none is copied or faulted in anew. */
static void test_alloc_realloc_big(void **state)
{
    (void)state;
    size_t base = umg_alloc_bytes();
    /* Raises malloc's mmap threshold (freeing a block it mapped does): it would keep the block in its heap. */
    char *volatile big = malloc((size_t)30 << 20);
    assert_non_null(big);
    big[0] = 1;
    free(big);
    size_t n = (size_t)24 << 20; /* grown to 48 MiB, past the threshold's top: malloc maps it, copying */
    uint8_t *p = umg_malloc(1 << 20);
    assert_non_null(p);
    memset(p, 0x5a, 1 << 20);
    p = umg_realloc(p, n);
    assert_non_null(p);
    assert_int_equal(p[(1 << 20) - 1], 0x5a);
    for (size_t i = 0; i < n; i++) {
        p[i] = (uint8_t)(i * 7);
    }
    void *after = umg_malloc(64); /* so that the block cannot simply extend where it is */
    long f0 = minor_faults();
    p = umg_realloc(p, 2 * n);
    assert_non_null(p);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        bad += p[i] != (uint8_t)(i * 7);
    }
    long faults = minor_faults() - f0;
    assert_int_equal(bad, 0);
#ifndef __SANITIZE_ADDRESS__   /* under ASan, reading the moved block faults in its new shadow pages */
    assert_true(faults < 256); /* a copy would fault in 6,144 pages */
#else
    (void)faults;
#endif
    assert_int_equal(umg_alloc_bytes(), base + 2 * n + 64);
    p = umg_realloc(p, 100); /* shrinks, and stays readable */
    assert_non_null(p);
    assert_int_equal(p[99], (uint8_t)(99 * 7));
    umg_alloc_fail_after(1);
    assert_null(umg_realloc(p, n));
    umg_alloc_fail_after(0);
    umg_free(p);
    umg_free(after);
    assert_int_equal(umg_alloc_bytes(), base);
}

static void test_alloc_fail_injection(void **state)
{
    (void)state;
    size_t base = umg_alloc_bytes();
    umg_alloc_fail_after(3);
    void *p1 = umg_malloc(8);
    void *p2 = umg_calloc(1, 8);
    void *p3 = umg_malloc(8);
    void *p4 = umg_malloc(8);
    void *r = umg_realloc(p1, 64);
    assert_non_null(p1);
    assert_non_null(p2);
    assert_null(p3);
    assert_null(p4);
    assert_null(r); /* p1 must stay valid after a failed realloc */
    umg_alloc_fail_after(0);
    void *p5 = umg_malloc(8);
    assert_non_null(p5);
    umg_free(p1);
    umg_free(p2);
    umg_free(p5);
    assert_int_equal(umg_alloc_bytes(), base);

    umg_alloc_fail_after(1);
    assert_null(umg_malloc(1));
    umg_alloc_fail_after(0);
}

/* ---------------------------------------------------------------- buf */

static void test_buf_basic(void **state)
{
    (void)state;
    umg_buf_t b = {0};
    assert_int_equal(umg_buf_append(&b, "abc", 3), UMG_OK);
    assert_int_equal(umg_buf_putc(&b, 'd'), UMG_OK);
    assert_int_equal(umg_buf_printf(&b, "-%d-%s", 42, "x"), UMG_OK);
    assert_int_equal(b.len, 9);
    assert_string_equal(b.ptr, "abcd-42-x");
    /* Growth past the first block via printf's second pass. */
    char big[300];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(umg_buf_printf(&b, "%s!", big), UMG_OK);
    assert_int_equal(b.len, 9 + 299 + 1);
    assert_int_equal(b.ptr[b.len - 1], '!');
    assert_int_equal(b.ptr[b.len], '\0');
    umg_buf_reset(&b);
    assert_int_equal(b.len, 0);
    umg_buf_free(&b);
    assert_null(b.ptr);
    umg_buf_free(&b);
    umg_buf_free(NULL);

    umg_alloc_fail_after(1);
    assert_int_equal(umg_buf_append(&b, "x", 1), UMG_ENOMEM);
    umg_alloc_fail_after(0);
    assert_int_equal(b.len, 0);
}

static void json(const char *in, size_t n, const char *expect)
{
    umg_buf_t b = {0};
    assert_int_equal(umg_buf_json_str(&b, in, n), UMG_OK);
    assert_int_equal(b.len, strlen(expect));
    assert_memory_equal(b.ptr, expect, b.len);
    umg_buf_free(&b);
}

static void test_buf_json_escape(void **state)
{
    (void)state;
    json("", 0, "\"\"");
    json("plain", 5, "\"plain\"");
    json("a\"b\\c", 5, "\"a\\\"b\\\\c\"");
    json("\n\t\r\b\f", 5, "\"\\n\\t\\r\\b\\f\"");
    json("\x01\x1f", 2, "\"\\u0001\\u001f\"");
    json("a\0b", 3, "\"a\\u0000b\"");
    json("\x7f", 1, "\"\x7f\"");
    json("/", 1, "\"/\"");
    /* UTF-8 passes through unchanged: é, €, 😀. */
    json("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9, "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
    /* Appends after existing content. */
    umg_buf_t b = {0};
    umg_buf_append(&b, "k:", 2);
    umg_buf_json_str(&b, "v\n", 2);
    assert_string_equal(b.ptr, "k:\"v\\n\"");
    umg_buf_free(&b);
}

static void num_u(uint64_t v, const char *expect)
{
    umg_buf_t b = {0};
    assert_int_equal(umg_buf_u64(&b, v), UMG_OK);
    assert_string_equal(b.ptr, expect);
    umg_buf_free(&b);
}

static void num_i(int64_t v, const char *expect)
{
    umg_buf_t b = {0};
    assert_int_equal(umg_buf_i64(&b, v), UMG_OK);
    assert_string_equal(b.ptr, expect);
    umg_buf_free(&b);
}

/* CSV text fields: RFC 4180 quoting, and the apostrophe before what a spreadsheet would run as a formula. */
static void test_buf_csv_field(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"plain", "plain"},
        {"", ""},
        {"a,b", "\"a,b\""},
        {"say \"hi\"", "\"say \"\"hi\"\"\""},
        {"two\nlines", "\"two\nlines\""},
        {"=1+1", "'=1+1"},
        {"+33 1", "'+33 1"},
        {"-x", "'-x"},
        {"@SUM(A1)", "'@SUM(A1)"},
        {"\tx", "'\tx"},
        {"\rx", "\"'\rx\""},
        {"=HYPERLINK(\"u\",\"t\")", "\"'=HYPERLINK(\"\"u\"\",\"\"t\"\")\""},
        {"a-b=c", "a-b=c"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        umg_buf_t b = {0};
        assert_int_equal(umg_buf_csv_field(&b, umg_slice(cases[i][0], strlen(cases[i][0]))), UMG_OK);
        assert_int_equal(umg_buf_putc(&b, 0), UMG_OK);
        assert_string_equal(b.ptr, cases[i][1]);
        umg_buf_free(&b);
    }
}

static void test_buf_numbers(void **state)
{
    (void)state;
    num_u(0, "0");
    num_u(7, "7");
    num_u(10, "10");
    num_u(99, "99");
    num_u(100, "100");
    num_u(1000000, "1000000");
    num_u(UINT64_MAX, "18446744073709551615");
    num_i(0, "0");
    num_i(-1, "-1");
    num_i(-10, "-10");
    num_i(INT64_MAX, "9223372036854775807");
    num_i(INT64_MIN, "-9223372036854775808");
    /* Compare against printf across many magnitudes. */
    char ref[32];
    uint64_t v = 1;
    for (int i = 0; i < 64; i++, v = v * 3 + 1) {
        umg_buf_t b = {0};
        snprintf(ref, sizeof(ref), "%" PRIu64, v);
        umg_buf_u64(&b, v);
        assert_string_equal(b.ptr, ref);
        umg_buf_reset(&b);
        snprintf(ref, sizeof(ref), "%" PRId64, -(int64_t)(v >> 1));
        umg_buf_i64(&b, -(int64_t)(v >> 1));
        assert_string_equal(b.ptr, ref);
        umg_buf_free(&b);
    }
}

/* ---------------------------------------------------------------- arena */

static void test_arena(void **state)
{
    (void)state;
    size_t base = umg_alloc_bytes();
    umg_arena_t a;
    umg_arena_init(&a, 256);
    char *p[20];
    for (int i = 0; i < 20; i++) {
        p[i] = umg_arena_alloc(&a, 1 + (size_t)i * 7);
        assert_non_null(p[i]);
        assert_int_equal((uintptr_t)p[i] % 16, 0);
        memset(p[i], i, 1 + (size_t)i * 7);
    }
    for (int i = 0; i < 20; i++) {
        for (size_t j = 0; j < 1 + (size_t)i * 7; j++) {
            assert_int_equal((unsigned char)p[i][j], i);
        }
    }
    /* Larger than a block: its own block, and small allocations still work. */
    char *big = umg_arena_alloc(&a, 10000);
    assert_non_null(big);
    memset(big, 0xAB, 10000);
    char *after = umg_arena_alloc(&a, 8);
    assert_non_null(after);
    assert_true(after < big || after >= big + 10000);
    assert_non_null(umg_arena_alloc(&a, 0));

    umg_arena_reset(&a);
    assert_non_null(a.head);
    size_t kept = umg_alloc_bytes() - base;
    assert_true(kept > 0 && kept < 256 + 128);
    char *q = umg_arena_alloc(&a, 16);
    assert_non_null(q);
    assert_int_equal(umg_alloc_bytes() - base, kept); /* reused the kept block */

    umg_arena_free(&a);
    assert_null(a.head);
    assert_int_equal(umg_alloc_bytes(), base);
    umg_arena_free(&a);

    /* Out of memory surfaces as NULL. */
    umg_arena_init(&a, 0);
    umg_alloc_fail_after(1);
    assert_null(umg_arena_alloc(&a, 10));
    umg_alloc_fail_after(0);
    umg_arena_free(&a);
    assert_null(umg_arena_alloc(&a, SIZE_MAX));
}

/* ---------------------------------------------------------------- clock */

static int64_t parse_ok(const char *s)
{
    int64_t us = 0;
    int rc = umg_time_parse_rfc3339(s, strlen(s), &us);
    if (rc != UMG_OK) {
        fail_msg("expected '%s' to parse, got %d", s, rc);
    }
    return us;
}

static void test_clock_parse(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(parse_ok("1970-01-01T00:00:01Z"), 1000000);
    assert_int_equal(parse_ok("2000-03-01T00:00:00Z"), INT64_C(951868800) * 1000000);
    assert_int_equal(parse_ok("2026-11-27T10:00:00Z"), INT64_C(1795773600) * 1000000);
    assert_int_equal(parse_ok("2026-11-27T12:00:00+02:00"), INT64_C(1795773600) * 1000000);
    assert_int_equal(parse_ok("2026-11-27T05:30:00-04:30"), INT64_C(1795773600) * 1000000);
    assert_int_equal(parse_ok("2026-11-27t10:00:00z"), INT64_C(1795773600) * 1000000);
    assert_int_equal(parse_ok("2026-11-27 10:00:00Z"), INT64_C(1795773600) * 1000000);
    assert_int_equal(parse_ok("2026-11-27T10:00:00.5Z"), INT64_C(1795773600) * 1000000 + 500000);
    assert_int_equal(parse_ok("2026-11-27T10:00:00.123456Z"), INT64_C(1795773600) * 1000000 + 123456);
    assert_int_equal(parse_ok("2026-11-27T10:00:00.123456789Z"), INT64_C(1795773600) * 1000000 + 123456);
    assert_int_equal(parse_ok("2024-02-29T23:59:59Z"), INT64_C(1709251199) * 1000000);
    assert_int_equal(parse_ok("2000-02-29T00:00:00Z"), INT64_C(951782400) * 1000000);
    assert_int_equal(parse_ok("9999-12-31T23:59:59Z"), INT64_C(253402300799) * 1000000);
    assert_int_equal(parse_ok("1969-12-31T23:59:59Z"), -1000000);
    assert_int_equal(parse_ok("1970-01-01T00:00:00+00:01"), -60000000);

    /* Not NUL-terminated: only len bytes count. */
    const char *s = "2026-11-27T10:00:00Zjunk";
    int64_t us;
    assert_int_equal(umg_time_parse_rfc3339(s, 20, &us), UMG_OK);
    assert_int_equal(us, INT64_C(1795773600) * 1000000);

    static const char *const bad[] = {
        "",
        "2026-11-27",
        "2026-11-27T10:00:00",
        "2026-13-01T00:00:00Z",
        "2026-00-01T00:00:00Z",
        "2026-01-32T00:00:00Z",
        "2026-01-00T00:00:00Z",
        "2026-02-29T00:00:00Z",
        "1900-02-29T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "2026-04-31T00:00:00Z",
        "2026-11-27T24:00:00Z",
        "2026-11-27T10:60:00Z",
        "2026-11-27T10:00:60Z",
        "2026-11-27T10:00:00.Z",
        "2026-11-27T10:00:00.1234567890Z",
        "2026-11-27T10:00:00+24:00",
        "2026-11-27T10:00:00+02:60",
        "2026-11-27T10:00:00+0200",
        "2026-11-27T10:00:00+02:00Z",
        "2026-11-27T10:00:00ZZ",
        "2026-11-27X10:00:00Z",
        "2026/11/27T10:00:00Z",
        "26-11-27T10:00:00Z",
        "2026-1-27T10:00:00Z",
        "2026-11-27T1:00:00Z",
        "2026-11-27T10:00:0aZ",
        "+026-11-27T10:00:00Z",
        "2026-11-27T10:00:00 Z",
        "2026-11-27T10:00:00.12a Z",
    };
    for (size_t i = 0; i < UMG_ARRAY_SIZE(bad); i++) {
        us = 12345;
        int rc = umg_time_parse_rfc3339(bad[i], strlen(bad[i]), &us);
        if (rc != UMG_EINVAL) {
            fail_msg("expected '%s' to be rejected", bad[i]);
        }
        assert_int_equal(us, 12345); /* out-parameter untouched on failure */
    }
    assert_int_equal(umg_time_parse_rfc3339(NULL, 0, &us), UMG_EINVAL);
}

static void test_clock_format(void **state)
{
    (void)state;
    char out[32];
    umg_time_format_rfc3339(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00.000000Z");
    umg_time_format_rfc3339(INT64_C(1795773600) * 1000000 + 42, out);
    assert_string_equal(out, "2026-11-27T10:00:00.000042Z");
    umg_time_format_rfc3339(-1, out);
    assert_string_equal(out, "1969-12-31T23:59:59.999999Z");
    umg_time_format_rfc3339(INT64_C(253402300799) * 1000000 + 999999, out);
    assert_string_equal(out, "9999-12-31T23:59:59.999999Z");
    umg_time_format_rfc3339(INT64_C(951782400) * 1000000, out);
    assert_string_equal(out, "2000-02-29T00:00:00.000000Z");
    umg_time_format_rfc3339(INT64_MIN, out); /* must not overflow the buffer */
    umg_time_format_rfc3339(INT64_MAX, out);

    /* Round trips over a spread of instants, 1970..9999. */
    uint64_t x = 88172645463325252u;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int64_t us = (int64_t)(x % (UINT64_C(253402300800) * 1000000));
        umg_time_format_rfc3339(us, out);
        assert_int_equal(strlen(out), 27);
        int64_t back = -1;
        assert_int_equal(umg_time_parse_rfc3339(out, 27, &back), UMG_OK);
        assert_int_equal(back, us);
    }
    /* Every day boundary across four centuries (covers leap rules). */
    for (int64_t day = 0; day < 146097 * 2; day += 1) {
        int64_t us = day * INT64_C(86400000000);
        umg_time_format_rfc3339(us, out);
        int64_t back;
        assert_int_equal(umg_time_parse_rfc3339(out, 27, &back), UMG_OK);
        assert_int_equal(back, us);
    }
}

static void test_clock_now(void **state)
{
    (void)state;
    int64_t now = umg_now_us();
    assert_true(now > INT64_C(1700000000) * 1000000);
    uint64_t a = umg_mono_ns();
    uint64_t b = umg_mono_ns();
    assert_true(b >= a);
    /* Deadlines: ms from now on the wall clock, nanoseconds carried into seconds. */
    int64_t ms[] = {0, 1, 999, 1000, 1500, 86400000};
    for (size_t i = 0; i < UMG_ARRAY_SIZE(ms); i++) {
        struct timespec ts;
        int64_t before = umg_now_us();
        umg_deadline_ms(&ts, ms[i]);
        int64_t after = umg_now_us();
        assert_true(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000);
        int64_t at = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
        assert_true(at >= before + ms[i] * 1000 - 1 && at <= after + ms[i] * 1000 + 1);
    }
}

/* ---------------------------------------------------------------- hash */

static void test_crc32c(void **state)
{
    (void)state;
    assert_int_equal(umg_crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(umg__crc32c_sw(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(umg_crc32c(0, "", 0), 0);
    /* RFC 3720 B.4 vectors: 32 zero bytes, 32 0xFF bytes, 0..31 ascending. */
    unsigned char v[32];
    memset(v, 0, sizeof(v));
    assert_int_equal(umg_crc32c(0, v, 32), 0x8A9136AAu);
    memset(v, 0xFF, sizeof(v));
    assert_int_equal(umg_crc32c(0, v, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++) {
        v[i] = (unsigned char)i;
    }
    assert_int_equal(umg_crc32c(0, v, 32), 0x46DD794Eu);
    assert_int_equal(umg__crc32c_sw(0, v, 32), 0x46DD794Eu);

    /* Chaining at every split point, and software == hardware on odd lengths and offsets. */
    unsigned char data[1031];
    uint64_t x = 0x123456789abcdefu;
    for (size_t i = 0; i < sizeof(data); i++) {
        x = x * 6364136223846793005u + 1442695040888963407u;
        data[i] = (unsigned char)(x >> 56);
    }
    uint32_t whole = umg_crc32c(0, data, sizeof(data));
    assert_int_equal(whole, umg__crc32c_sw(0, data, sizeof(data)));
    for (size_t cut = 0; cut <= sizeof(data); cut += 13) {
        uint32_t c = umg_crc32c(umg_crc32c(0, data, cut), data + cut, sizeof(data) - cut);
        assert_int_equal(c, whole);
        uint32_t s = umg__crc32c_sw(umg__crc32c_sw(0, data, cut), data + cut, sizeof(data) - cut);
        assert_int_equal(s, whole);
    }
    if (umg__crc32c_hw_available()) {
        for (size_t off = 0; off < 9; off++) {
            for (size_t len = 0; len + off <= sizeof(data); len += (len < 600 ? 1 : 7)) {
                assert_int_equal(umg__crc32c_hw(0, data + off, len), umg__crc32c_sw(0, data + off, len));
                assert_int_equal(umg__crc32c_hw(0xdeadbeef, data + off, len),
                                 umg__crc32c_sw(0xdeadbeef, data + off, len));
            }
        }
    } else {
        print_message("SSE4.2 not available; hardware CRC32C path not exercised\n");
    }
}

static int popcount64(uint64_t v)
{
    return __builtin_popcountll(v);
}

static void test_hash64(void **state)
{
    (void)state;
    /* Determinism, seed and length sensitivity. */
    assert_int_equal(umg_hash64("abc", 3, 0), umg_hash64("abc", 3, 0));
    assert_int_not_equal(umg_hash64("abc", 3, 0), umg_hash64("abc", 3, 1));
    assert_int_not_equal(umg_hash64("abc", 3, 0), umg_hash64("abd", 3, 0));
    assert_int_not_equal(umg_hash64("", 0, 0), umg_hash64("\0", 1, 0));
    assert_int_not_equal(umg_hash64("\0", 1, 0), umg_hash64("\0\0", 2, 0));
    assert_int_equal(umg_hash64(NULL, 0, 7), umg_hash64("", 0, 7));

    /* Sequential integer keys spread evenly over 256 buckets (low and high bits). */
    enum { N = 256 * 400 };
    static unsigned lo[256], hi[256];
    memset(lo, 0, sizeof(lo));
    memset(hi, 0, sizeof(hi));
    for (uint32_t i = 0; i < N; i++) {
        uint64_t h = umg_hash64(&i, sizeof(i), 0);
        lo[h & 0xff]++;
        hi[h >> 56]++;
    }
    double chi_lo = 0, chi_hi = 0, expect = N / 256.0;
    for (int i = 0; i < 256; i++) {
        chi_lo += (lo[i] - expect) * (lo[i] - expect) / expect;
        chi_hi += (hi[i] - expect) * (hi[i] - expect) / expect;
    }
    /* 255 degrees of freedom: p < 1e-6 beyond ~370. */
    assert_true(chi_lo < 370.0);
    assert_true(chi_hi < 370.0);

    /* Avalanche: flipping one input bit flips about half the output bits, for many lengths. */
    unsigned char key[64];
    for (size_t i = 0; i < sizeof(key); i++) {
        key[i] = (unsigned char)(i * 37 + 11);
    }
    for (size_t len = 1; len <= sizeof(key); len++) {
        uint64_t h0 = umg_hash64(key, len, 42);
        long total = 0;
        for (size_t bit = 0; bit < len * 8; bit++) {
            key[bit / 8] ^= (unsigned char)(1u << (bit % 8));
            uint64_t h1 = umg_hash64(key, len, 42);
            key[bit / 8] ^= (unsigned char)(1u << (bit % 8));
            int d = popcount64(h0 ^ h1);
            assert_true(d > 0);
            total += d;
        }
        double mean = (double)total / (double)(len * 8);
        if (mean < 26.0 || mean > 38.0) {
            fail_msg("poor avalanche at len %zu: %.2f bits", len, mean);
        }
    }
}

/* ---------------------------------------------------------------- uuid */

static void test_uuid(void **state)
{
    (void)state;
    umg_uuid_t u, v;
    char s[37];
    const char *canon = "0123abcd-4567-89ef-0123-456789abcdef";
    assert_int_equal(umg_uuid_parse(canon, 36, &u), UMG_OK);
    assert_int_equal(u.b[0], 0x01);
    assert_int_equal(u.b[1], 0x23);
    assert_int_equal(u.b[15], 0xef);
    umg_uuid_format(&u, s);
    assert_string_equal(s, canon);
    assert_int_equal(umg_uuid_parse("0123ABCD-4567-89EF-0123-456789ABCDEF", 36, &v), UMG_OK);
    assert_memory_equal(u.b, v.b, 16);

    static const char *const bad[] = {
        "0123abcd-4567-89ef-0123-456789abcde",  "0123abcd-4567-89ef-0123-456789abcdef0",
        "0123abcd04567-89ef-0123-456789abcdef", "0123abcd-4567-89ef-0123-456789abcdeg",
        "{123abcd-4567-89ef-0123-456789abcdef", "0123abcd-4567-89ef-0123-456789abcd-f",
        "0123abcd4567-89ef-0123-456789abcdef-", "",
    };
    for (size_t i = 0; i < UMG_ARRAY_SIZE(bad); i++) {
        memset(&v, 0x5a, sizeof(v));
        assert_int_equal(umg_uuid_parse(bad[i], strlen(bad[i]), &v), UMG_EINVAL);
        assert_int_equal(v.b[0], 0x5a);
    }
    /* Exactly 36 chars counted, not NUL-terminated. */
    char longer[40];
    memcpy(longer, canon, 36);
    memcpy(longer + 36, "xyz", 4);
    assert_int_equal(umg_uuid_parse(longer, 36, &v), UMG_OK);

    /* v4: version nibble 4, variant 10xx, and no repeats. */
    umg_uuid_t prev;
    memset(&prev, 0, sizeof(prev));
    for (int i = 0; i < 1000; i++) {
        umg_uuid_v4(&u);
        assert_int_equal(u.b[6] >> 4, 4);
        assert_int_equal(u.b[8] >> 6, 2);
        assert_memory_not_equal(u.b, prev.b, 16);
        umg_uuid_format(&u, s);
        assert_int_equal(strlen(s), 36);
        assert_int_equal(s[14], '4');
        assert_true(strchr("89ab", s[19]) != NULL);
        assert_int_equal(umg_uuid_parse(s, 36, &v), UMG_OK);
        assert_memory_equal(u.b, v.b, 16);
        prev = u;
    }

    unsigned char r1[100], r2[100];
    umg_random_bytes(r1, sizeof(r1));
    umg_random_bytes(r2, sizeof(r2));
    assert_memory_not_equal(r1, r2, sizeof(r1));
}

/* ---------------------------------------------------------------- metrics */

static umg_metric_t m_req = UMG_COUNTER("t_requests_total", "Requests served.", NULL);
static umg_metric_t m_rej_ts = UMG_COUNTER("t_rejected_total", "Rejected events.", "reason=\"bad_ts\"");
static umg_metric_t m_other = UMG_GAUGE("t_queue_depth", "Queue depth.\nSecond \\ line.", NULL);
static umg_metric_t m_rej_sig = UMG_COUNTER("t_rejected_total", "Rejected events.", "reason=\"bad_sig\"");
static const double lat_bounds[] = {0.005, 0.1, 1, 2.5};
static umg_metric_t m_lat = UMG_HISTOGRAM("t_latency_seconds", "Latency.", "route=\"/v1\"", lat_bounds, 4);
static umg_metric_t m_plain = UMG_HISTOGRAM("t_size", "Sizes.", NULL, lat_bounds, 2);

static void test_metrics_render(void **state)
{
    (void)state;
    umg_metric_register(&m_req);
    umg_metric_register(&m_rej_ts);
    umg_metric_register(&m_other);
    umg_metric_register(&m_rej_sig);
    umg_metric_register(&m_lat);
    umg_metric_register(&m_plain);
    umg_metric_register(&m_req); /* idempotent */

    umg_metric_add(&m_req, 5);
    umg_metric_add(&m_rej_ts, 2);
    umg_metric_add(&m_rej_sig, 3);
    umg_metric_set(&m_other, -7);
    umg_metric_observe(&m_lat, 0.001);
    umg_metric_observe(&m_lat, 0.005); /* le is inclusive */
    umg_metric_observe(&m_lat, 0.5);
    umg_metric_observe(&m_lat, 3.0);
    umg_metric_observe(&m_plain, 0.05);

    umg_buf_t b = {0};
    assert_int_equal(umg_metrics_render(&b), UMG_OK);
    const char *t = b.ptr;

    assert_non_null(strstr(t, "# HELP t_requests_total Requests served.\n"
                              "# TYPE t_requests_total counter\n"
                              "t_requests_total 5\n"));
    assert_non_null(strstr(t, "# HELP t_rejected_total Rejected events.\n"
                              "# TYPE t_rejected_total counter\n"
                              "t_rejected_total{reason=\"bad_ts\"} 2\n"
                              "t_rejected_total{reason=\"bad_sig\"} 3\n"));
    assert_int_equal(count_occurrences(t, "# HELP t_rejected_total"), 1);
    assert_int_equal(count_occurrences(t, "# TYPE t_rejected_total"), 1);
    assert_int_equal(count_occurrences(t, "# HELP t_requests_total"), 1);
    assert_non_null(strstr(t, "# HELP t_queue_depth Queue depth.\\nSecond \\\\ line.\n"
                              "# TYPE t_queue_depth gauge\n"
                              "t_queue_depth -7\n"));
    assert_non_null(strstr(t, "# HELP t_latency_seconds Latency.\n"
                              "# TYPE t_latency_seconds histogram\n"
                              "t_latency_seconds_bucket{route=\"/v1\",le=\"0.005\"} 2\n"
                              "t_latency_seconds_bucket{route=\"/v1\",le=\"0.1\"} 2\n"
                              "t_latency_seconds_bucket{route=\"/v1\",le=\"1\"} 3\n"
                              "t_latency_seconds_bucket{route=\"/v1\",le=\"2.5\"} 3\n"
                              "t_latency_seconds_bucket{route=\"/v1\",le=\"+Inf\"} 4\n"
                              "t_latency_seconds_sum{route=\"/v1\"} 3.506\n"
                              "t_latency_seconds_count{route=\"/v1\"} 4\n"));
    assert_non_null(strstr(t, "t_size_bucket{le=\"0.005\"} 0\n"
                              "t_size_bucket{le=\"0.1\"} 1\n"
                              "t_size_bucket{le=\"+Inf\"} 1\n"
                              "t_size_sum 0.05\n"
                              "t_size_count 1\n"));
    /* The allocator gauge is always exported. */
    assert_non_null(strstr(t, "# TYPE umg_memory_bytes gauge\numg_memory_bytes "));
    /* Registration order is kept for families. */
    assert_true(strstr(t, "t_requests_total 5") < strstr(t, "t_rejected_total{"));
    assert_true(strstr(t, "t_rejected_total{reason=\"bad_sig\"}") < strstr(t, "# HELP t_queue"));
    assert_int_equal(t[b.len - 1], '\n');
    umg_buf_free(&b);

    /* Out of memory while rendering is reported. */
    umg_buf_t small = {0};
    umg_alloc_fail_after(1);
    assert_int_equal(umg_metrics_render(&small), UMG_ENOMEM);
    umg_alloc_fail_after(0);
    umg_buf_free(&small);
}

static umg_metric_t m_threads = UMG_COUNTER("t_thread_ops_total", "Ops from threads.", NULL);

static void *hammer(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20000; i++) {
        umg_metric_register(&m_threads);
        umg_metric_add(&m_threads, 1);
        void *p = umg_malloc((size_t)(i % 512));
        umg_free(p);
    }
    return NULL;
}

static void test_concurrency(void **state)
{
    (void)state;
    size_t base = umg_alloc_bytes();
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, hammer, NULL), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
    }
    assert_int_equal(umg_alloc_bytes(), base);
    umg_buf_t b = {0};
    assert_int_equal(umg_metrics_render(&b), UMG_OK);
    assert_non_null(strstr(b.ptr, "\nt_thread_ops_total 80000\n"));
    assert_int_equal(count_occurrences(b.ptr, "# TYPE t_thread_ops_total"), 1);
    umg_buf_free(&b);
}

/* ---------------------------------------------------------------- config */

typedef struct test_cfg_s {
    int64_t workers;
    int verbose;
    char *name;
    int64_t seg_bytes;
    int64_t timeout_ms;
    int64_t offset;
} test_cfg_t;

static const umg_config_item_t cfg_items[] = {
    {"workers", UMG_CFG_INT, "4", 1, 64, offsetof(test_cfg_t, workers), "Worker threads."},
    {"verbose", UMG_CFG_BOOL, "false", 0, 0, offsetof(test_cfg_t, verbose), "Chatty logs."},
    {"name", UMG_CFG_STRING, "umg", 0, 0, offsetof(test_cfg_t, name), "Instance name | id."},
    {"log.segment_bytes", UMG_CFG_SIZE, "64m", 4096, INT64_C(1) << 30, offsetof(test_cfg_t, seg_bytes),
     "Segment size."},
    {"http.timeout", UMG_CFG_DURATION_MS, "30s", 0, 0, offsetof(test_cfg_t, timeout_ms), "Request timeout."},
    {"offset", UMG_CFG_INT, NULL, 0, 0, offsetof(test_cfg_t, offset), "Unbounded."},
};

#define NCFG UMG_ARRAY_SIZE(cfg_items)

static int cfg_set(test_cfg_t *c, const char *k, const char *v, char *err, size_t errlen)
{
    return umg_config_set(cfg_items, NCFG, c, k, v, err, errlen);
}

static void test_config_defaults_and_types(void **state)
{
    (void)state;
    size_t base = umg_alloc_bytes();
    test_cfg_t c;
    memset(&c, 0xff, sizeof(c));
    c.name = NULL;
    char err[256];
    assert_int_equal(umg_config_defaults(cfg_items, NCFG, &c), UMG_OK);
    assert_int_equal(c.workers, 4);
    assert_int_equal(c.verbose, 0);
    assert_string_equal(c.name, "umg");
    assert_int_equal(c.seg_bytes, 64 << 20);
    assert_int_equal(c.timeout_ms, 30000);
    assert_int_equal(c.offset, 0);

    static const struct {
        const char *v;
        int64_t want;
    } sizes[] = {
        {"4096", 4096},
        {"4k", 4096},
        {"4K", 4096},
        {"4kb", 4096},
        {"4KiB", 4096},
        {"16m", 16 << 20},
        {"16MB", 16 << 20},
        {"16mib", 16 << 20},
        {"1g", INT64_C(1) << 30},
        {"1GiB", INT64_C(1) << 30},
        {" 8k ", 8192},
        {"8 k", 8192},
        {"5000b", 5000},
    };
    for (size_t i = 0; i < UMG_ARRAY_SIZE(sizes); i++) {
        assert_int_equal(cfg_set(&c, "log.segment_bytes", sizes[i].v, err, sizeof(err)), UMG_OK);
        assert_int_equal(c.seg_bytes, sizes[i].want);
    }
    static const struct {
        const char *v;
        int64_t want;
    } durs[] = {
        {"250", 250}, {"250ms", 250}, {"2s", 2000}, {"5m", 300000}, {"2h", 7200000}, {"7d", INT64_C(604800000)},
        {"1S", 1000}, {"0", 0},
    };
    for (size_t i = 0; i < UMG_ARRAY_SIZE(durs); i++) {
        assert_int_equal(cfg_set(&c, "http.timeout", durs[i].v, err, sizeof(err)), UMG_OK);
        assert_int_equal(c.timeout_ms, durs[i].want);
    }
    static const struct {
        const char *v;
        int want;
    } bools[] = {
        {"true", 1}, {"false", 0}, {"yes", 1}, {"no", 0},   {"on", 1},
        {"off", 0},  {"1", 1},     {"0", 0},   {"TRUE", 1}, {"Off", 0},
    };
    for (size_t i = 0; i < UMG_ARRAY_SIZE(bools); i++) {
        assert_int_equal(cfg_set(&c, "verbose", bools[i].v, err, sizeof(err)), UMG_OK);
        assert_int_equal(c.verbose, bools[i].want);
    }
    assert_int_equal(cfg_set(&c, "name", "edge-1", err, sizeof(err)), UMG_OK);
    assert_string_equal(c.name, "edge-1");
    assert_int_equal(cfg_set(&c, "offset", "-9223372036854775808", err, sizeof(err)), UMG_OK);
    assert_int_equal(c.offset, INT64_MIN);
    assert_int_equal(cfg_set(&c, "offset", "+12", err, sizeof(err)), UMG_OK);
    assert_int_equal(c.offset, 12);
    assert_int_equal(cfg_set(&c, "workers", "64", err, sizeof(err)), UMG_OK);
    assert_int_equal(c.workers, 64);

    umg_config_free(cfg_items, NCFG, &c);
    assert_null(c.name);
    umg_config_free(cfg_items, NCFG, NULL);
    assert_int_equal(umg_alloc_bytes(), base);
}

static void test_config_errors(void **state)
{
    (void)state;
    test_cfg_t c = {0};
    char err[256];
    assert_int_equal(umg_config_defaults(cfg_items, NCFG, &c), UMG_OK);

    assert_int_equal(cfg_set(&c, "nope", "1", err, sizeof(err)), UMG_ENOENT);
    assert_string_equal(err, "unknown key 'nope'");

    assert_int_equal(cfg_set(&c, "workers", "0", err, sizeof(err)), UMG_ERANGE);
    assert_non_null(strstr(err, "'workers'"));
    assert_non_null(strstr(err, "'0'"));
    assert_non_null(strstr(err, "[1, 64]"));
    assert_int_equal(c.workers, 4); /* unchanged */
    assert_int_equal(cfg_set(&c, "workers", "65", err, sizeof(err)), UMG_ERANGE);
    assert_int_equal(cfg_set(&c, "log.segment_bytes", "2g", err, sizeof(err)), UMG_ERANGE);
    assert_int_equal(cfg_set(&c, "log.segment_bytes", "1k", err, sizeof(err)), UMG_ERANGE);
    assert_int_equal(c.seg_bytes, 64 << 20);

    static const struct {
        const char *key, *value;
        int rc;
    } bad[] = {
        {"workers", "", UMG_EINVAL},
        {"workers", "abc", UMG_EINVAL},
        {"workers", "4x", UMG_EINVAL},
        {"workers", "4k", UMG_EINVAL}, /* plain integers take no suffix */
        {"workers", "1.5", UMG_EINVAL},
        {"workers", "-", UMG_EINVAL},
        {"offset", "9223372036854775808", UMG_ERANGE},
        {"offset", "99999999999999999999999", UMG_ERANGE},
        {"log.segment_bytes", "12q", UMG_EINVAL},
        {"log.segment_bytes", "1t", UMG_EINVAL},
        {"log.segment_bytes", "k", UMG_EINVAL},
        {"log.segment_bytes", "99999999999g", UMG_ERANGE},
        {"http.timeout", "5 min", UMG_EINVAL},
        {"http.timeout", "5w", UMG_EINVAL},
        {"http.timeout", "106751991167301d", UMG_ERANGE},
        {"verbose", "maybe", UMG_EINVAL},
        {"verbose", "2", UMG_EINVAL},
    };
    for (size_t i = 0; i < UMG_ARRAY_SIZE(bad); i++) {
        err[0] = '\0';
        int rc = cfg_set(&c, bad[i].key, bad[i].value, err, sizeof(err));
        if (rc != bad[i].rc) {
            fail_msg("%s = '%s': got %d, want %d", bad[i].key, bad[i].value, rc, bad[i].rc);
        }
        char quoted[128];
        snprintf(quoted, sizeof(quoted), "'%s'", bad[i].key);
        assert_non_null(strstr(err, quoted));
        snprintf(quoted, sizeof(quoted), "'%s'", bad[i].value);
        assert_non_null(strstr(err, quoted));
    }
    assert_int_equal(cfg_set(&c, "workers", "abc", err, sizeof(err)), UMG_EINVAL);
    assert_string_equal(err, "invalid value 'abc' for key 'workers': expected an integer");
    /* err may be NULL, and a tiny buffer is truncated safely. */
    assert_int_equal(cfg_set(&c, "workers", "abc", NULL, 0), UMG_EINVAL);
    char tiny[8];
    assert_int_equal(cfg_set(&c, "workers", "abc", tiny, sizeof(tiny)), UMG_EINVAL);
    assert_int_equal(strlen(tiny), 7);

    umg_alloc_fail_after(1);
    assert_int_equal(cfg_set(&c, "name", "x", err, sizeof(err)), UMG_ENOMEM);
    umg_alloc_fail_after(0);
    assert_string_equal(c.name, "umg");
    umg_config_free(cfg_items, NCFG, &c);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_config_file(void **state)
{
    (void)state;
    size_t base = umg_alloc_bytes();
    char path[512], err[512], want[600];
    snprintf(path, sizeof(path), "%s/umg.conf", tmpdir);
    write_text(path, "# a comment\n"
                     "\n"
                     "   workers = 8   \n"
                     "verbose=yes\r\n"
                     "\t# indented comment\n"
                     "name = \"has # hash and  spaces \"  # trailing comment\n"
                     "log.segment_bytes = 128m # note\n"
                     "http.timeout = 1500ms");
    test_cfg_t c = {0};
    assert_int_equal(umg_config_defaults(cfg_items, NCFG, &c), UMG_OK);
    assert_int_equal(umg_config_load_file(cfg_items, NCFG, &c, path, err, sizeof(err)), UMG_OK);
    assert_int_equal(c.workers, 8);
    assert_int_equal(c.verbose, 1);
    assert_string_equal(c.name, "has # hash and  spaces ");
    assert_int_equal(c.seg_bytes, 128 << 20);
    assert_int_equal(c.timeout_ms, 1500);
    /* A value that is only a comment is empty, not the comment (found in review). */
    write_text(path, "name =    # none for now\n");
    assert_int_equal(umg_config_load_file(cfg_items, NCFG, &c, path, err, sizeof(err)), UMG_OK);
    assert_string_equal(c.name, "");

    write_text(path, "workers = 2\n# x\nbogus = 1\n");
    assert_int_equal(umg_config_load_file(cfg_items, NCFG, &c, path, err, sizeof(err)), UMG_ENOENT);
    snprintf(want, sizeof(want), "%s:3: unknown key 'bogus'", path);
    assert_string_equal(err, want);
    assert_int_equal(c.workers, 2); /* lines before the error were applied */

    write_text(path, "workers = 1000\n");
    assert_int_equal(umg_config_load_file(cfg_items, NCFG, &c, path, err, sizeof(err)), UMG_ERANGE);
    snprintf(want, sizeof(want), "%s:1: value '1000' for key 'workers'", path);
    assert_memory_equal(err, want, strlen(want));

    write_text(path, "\nworkers\n");
    assert_int_equal(umg_config_load_file(cfg_items, NCFG, &c, path, err, sizeof(err)), UMG_EPARSE);
    snprintf(want, sizeof(want), "%s:2: expected 'key = value'", path);
    assert_string_equal(err, want);

    write_text(path, "name = \"unterminated\n");
    assert_int_equal(umg_config_load_file(cfg_items, NCFG, &c, path, err, sizeof(err)), UMG_EPARSE);
    write_text(path, " = 5\n");
    assert_int_equal(umg_config_load_file(cfg_items, NCFG, &c, path, err, sizeof(err)), UMG_EPARSE);

    snprintf(path, sizeof(path), "%s/missing.conf", tmpdir);
    assert_int_equal(umg_config_load_file(cfg_items, NCFG, &c, path, err, sizeof(err)), UMG_ENOENT);
    assert_non_null(strstr(err, "missing.conf"));

    umg_config_free(cfg_items, NCFG, &c);
    assert_int_equal(umg_alloc_bytes(), base);
}

static void test_config_markdown(void **state)
{
    (void)state;
    umg_buf_t b = {0};
    assert_int_equal(umg_config_markdown(cfg_items, NCFG, &b), UMG_OK);
    assert_string_equal(b.ptr, "| key | type | default | range | description |\n"
                               "|---|---|---|---|---|\n"
                               "| `workers` | int | `4` | 1 .. 64 | Worker threads. |\n"
                               "| `verbose` | bool | `false` |  | Chatty logs. |\n"
                               "| `name` | string | `umg` |  | Instance name \\| id. |\n"
                               "| `log.segment_bytes` | size | `64m` | 4k .. 1g | Segment size. |\n"
                               "| `http.timeout` | duration | `30s` |  | Request timeout. |\n"
                               "| `offset` | int |  |  | Unbounded. |\n");
    umg_buf_free(&b);
}

/* ---------------------------------------------------------------- log */

static void test_log(void **state)
{
    (void)state;
    umg_log_level_t lv;
    assert_int_equal(umg_log_level_parse("debug", &lv), UMG_OK);
    assert_int_equal(lv, UMG_LOG_DEBUG);
    assert_int_equal(umg_log_level_parse("WARN", &lv), UMG_OK);
    assert_int_equal(lv, UMG_LOG_WARN);
    assert_int_equal(umg_log_level_parse("error", &lv), UMG_OK);
    assert_int_equal(lv, UMG_LOG_ERROR);
    assert_int_equal(umg_log_level_parse("loud", &lv), UMG_EINVAL);
    assert_int_equal(lv, UMG_LOG_ERROR);
    assert_int_equal(umg_log_min_level, UMG_LOG_INFO);

    /* Capture stderr in a file and check the line's exact shape. */
    char path[512];
    snprintf(path, sizeof(path), "%s/log.txt", tmpdir);
    fflush(stderr);
    int saved = dup(2);
    FILE *f = fopen(path, "w+");
    assert_non_null(f);
    dup2(fileno(f), 2);
    umg_log(UMG_LOG_DEBUG, "test", "hidden %d", 1);
    umg_log(UMG_LOG_WARN, "te\"st", "hello \"%s\"\n\x01 \xc3\xa9", "w");
    dup2(saved, 2);
    close(saved);

    char line[1024] = {0};
    rewind(f);
    size_t n = fread(line, 1, sizeof(line) - 1, f);
    fclose(f);
    assert_true(n > 0);
    assert_int_equal(count_occurrences(line, "\n"), 1);
    assert_int_equal(line[n - 1], '\n');
    assert_memory_equal(line, "{\"ts\":\"", 7);
    int64_t us;
    assert_int_equal(umg_time_parse_rfc3339(line + 7, 27, &us), UMG_OK);
    assert_true(llabs(us - umg_now_us()) < INT64_C(60000000));
    assert_string_equal(line + 7 + 27, "\",\"level\":\"warn\",\"module\":\"te\\\"st\","
                                       "\"msg\":\"hello \\\"w\\\"\\n\\u0001 \xc3\xa9\"}\n");
}

/* ---------------------------------------------------------------- fs */

/* An exclusive lock per file: a second taker (here another open of it) is refused with the holder's pid. */
static void test_file_lock(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof(path), "%s/daemon.lock", tmpdir);
    int fd, fd2;
    long holder = -1;
    assert_int_equal(umg_file_lock(path, &fd, &holder), UMG_OK);
    assert_true(fd >= 0);
    assert_int_equal(umg_file_lock(path, &fd2, &holder), UMG_EEXIST);
    assert_int_equal(fd2, -1);
    assert_int_equal(holder, (long)getpid());
    umg_file_unlock(fd);
    assert_int_equal(umg_file_lock(path, &fd2, &holder), UMG_OK);
    umg_file_unlock(fd2);
    snprintf(path, sizeof(path), "%s/no/such/dir/daemon.lock", tmpdir);
    assert_int_equal(umg_file_lock(path, &fd, &holder), UMG_EIO);
}

static void test_fs(void **state)
{
    (void)state;
    char path[512], file[512];
    struct stat st;
    snprintf(path, sizeof(path), "%s/a/b//c/", tmpdir);
    assert_int_equal(umg_mkdirs(path, 0755), UMG_OK);
    assert_int_equal(umg_mkdirs(path, 0755), UMG_OK); /* already there */
    snprintf(path, sizeof(path), "%s/a/b/c", tmpdir);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(umg_fsync_dir(path), UMG_OK);

    snprintf(file, sizeof(file), "%s/a/b/c/data.bin", tmpdir);
    assert_int_equal(umg_write_file_atomic(file, "first", 5), UMG_OK);
    assert_int_equal(umg_write_file_atomic(file, "second!", 7), UMG_OK);
    FILE *f = fopen(file, "rb");
    assert_non_null(f);
    char got[16] = {0};
    assert_int_equal(fread(got, 1, sizeof(got), f), 7);
    fclose(f);
    assert_string_equal(got, "second!");
    assert_int_equal(umg_write_file_atomic(file, "", 0), UMG_OK);
    assert_int_equal(stat(file, &st), 0);
    assert_int_equal(st.st_size, 0);

    /* No temp files left behind. */
    char cmd[800];
    snprintf(cmd, sizeof(cmd), "test $(ls -A '%s' | wc -l) -eq 1", path);
    assert_int_equal(system(cmd), 0);

    /* A regular file in the way, and a missing parent directory. */
    snprintf(path, sizeof(path), "%s/a/b/c/data.bin/sub", tmpdir);
    assert_int_not_equal(umg_mkdirs(path, 0755), UMG_OK);
    assert_int_equal(umg_mkdirs(file, 0755), UMG_EEXIST);
    snprintf(path, sizeof(path), "%s/nodir/x", tmpdir);
    assert_int_equal(umg_write_file_atomic(path, "x", 1), UMG_ENOENT);
    assert_int_equal(umg_fsync_dir("/nonexistent/umg"), UMG_ENOENT);
    assert_int_equal(umg_mkdirs("", 0755), UMG_EINVAL);
}

static void test_dates(void **state)
{
    (void)state;
    int32_t d;
    assert_int_equal(umg_date_parse(umg_slice("1970-01-01", 10), &d), UMG_OK);
    assert_int_equal(d, 0);
    assert_int_equal(umg_date_parse(umg_slice("2026-01-01", 10), &d), UMG_OK);
    assert_int_equal(d, 20454);
    assert_int_equal(umg_date_parse(umg_slice("2024-02-29", 10), &d), UMG_OK);
    static const char *const bad[] = {"2026-02-29", "2026-13-01", "2026-00-10",  "2026-1-01", "2026-01-32",
                                      "0000-01-01", "2026/01/01", "2026-01-01T", "20260101xx"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(umg_date_parse(umg_slice(bad[i], strlen(bad[i])), &d), UMG_EINVAL);
    }
    char out[11];
    umg_date_format(20454, out);
    assert_string_equal(out, "2026-01-01");
    umg_date_format(-1, out);
    assert_string_equal(out, "1969-12-31");
    int y, m, dd;
    umg_date_civil(20454 + 59, &y, &m, &dd);
    assert_true(y == 2026 && m == 3 && dd == 1);
    assert_int_equal(umg_date_from_civil(2026, 3, 1), 20454 + 59);
    /* 2026-01-01 is a Thursday: its week starts on Monday 2025-12-29 */
    assert_int_equal(umg_date_week_start(20454), 20454 - 3);
    assert_int_equal(umg_date_week_start(20454 - 3), 20454 - 3);
    assert_int_equal(umg_date_week_start(20454 + 3), 20454 - 3); /* Sunday 2026-01-04 */
    assert_int_equal(umg_date_week_start(20454 + 4), 20454 + 4); /* Monday 2026-01-05 */
    assert_int_equal(umg_date_week_start(3), -3);                /* 1970-01-04, a Sunday */
    assert_int_equal(umg_date_month_start(20454 + 40), 20454 + 31);
}

/* ---------------------------------------------------------------- helper */

typedef struct hjob_s {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int go, done;
    pthread_t ran_on;
} hjob_t;

/* Waits until the test lets it go, so the test can see the helper busy. */
static void hjob_run(void *arg)
{
    hjob_t *j = arg;
    pthread_mutex_lock(&j->mu);
    while (!j->go) {
        pthread_cond_wait(&j->cv, &j->mu);
    }
    j->ran_on = pthread_self();
    j->done++;
    pthread_mutex_unlock(&j->mu);
}

static void test_helper(void **state)
{
    (void)state;
    umg_helper_t *h;
    assert_int_equal(umg_helper_new(&h), UMG_OK);
    hjob_t j = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    for (int round = 1; round <= 3; round++) {
        j.go = 0;
        assert_int_equal(umg_helper_beside(h, hjob_run, &j), UMG_OK);
        assert_int_equal(umg_helper_run(h, hjob_run, &j), UMG_EFULL); /* one job at a time */
        pthread_mutex_lock(&j.mu);
        j.go = 1;
        pthread_cond_broadcast(&j.cv);
        pthread_mutex_unlock(&j.mu);
        umg_helper_join(h);
        assert_int_equal(j.done, round); /* wait returns after the job */
        assert_false(pthread_equal(j.ran_on, pthread_self()));
        umg_helper_wait(h); /* nothing running: at once */
    }
    umg_helper_free(h);
    umg_helper_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_hex_encode),
        cmocka_unit_test(test_buf_csv_field),
        cmocka_unit_test(test_alloc_counting),
        cmocka_unit_test(test_alloc_fail_injection),
        cmocka_unit_test(test_alloc_huge),
        cmocka_unit_test(test_alloc_realloc_big),
        cmocka_unit_test(test_buf_basic),
        cmocka_unit_test(test_buf_json_escape),
        cmocka_unit_test(test_buf_numbers),
        cmocka_unit_test(test_arena),
        cmocka_unit_test(test_clock_parse),
        cmocka_unit_test(test_clock_format),
        cmocka_unit_test(test_clock_now),
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test(test_hash64),
        cmocka_unit_test(test_uuid),
        cmocka_unit_test(test_metrics_render),
        cmocka_unit_test(test_concurrency),
        cmocka_unit_test(test_config_defaults_and_types),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_config_file),
        cmocka_unit_test(test_config_markdown),
        cmocka_unit_test(test_log),
        cmocka_unit_test(test_fs),
        cmocka_unit_test(test_file_lock),
        cmocka_unit_test(test_helper),
    };
    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
