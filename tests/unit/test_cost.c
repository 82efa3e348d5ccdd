/*
 * test_cost.c - costs and rates: the CSV reader (quotes, CRLF, BOM, bad
 * records), the field checks and rounding, replacing writes, and the
 * conversion rule of docs/costs.md (same currency, direct, inverse, latest on
 * or before the day, the tie, none).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cost_int.h"
#include "umg_meta.h"

#include <math.h>
#include <stdlib.h>

/* ---------------------------------------------------------------- CSV */

/* Reads the whole text; records joined as "f1|f2;" and errors as "!LINE;". */
static void csv_dump(const char *text, size_t len, char *out, size_t cap)
{
    umg_csv_t r;
    umg_slice_t f[8];
    size_t n, line, o = 0;
    const char *msg;
    int rc;
    umg_csv_init(&r, text, len);
    out[0] = '\0';
    while ((rc = umg_csv_next(&r, f, 8, &n, &line, &msg)) != UMG_EAGAIN) {
        if (rc == UMG_EPARSE) {
            assert_non_null(msg);
            o += (size_t)snprintf(out + o, cap - o, "!%zu;", line);
            continue;
        }
        assert_int_equal(rc, UMG_OK);
        o += (size_t)snprintf(out + o, cap - o, "%zu:", line);
        for (size_t i = 0; i < n; i++) {
            o += (size_t)snprintf(out + o, cap - o, "%s%.*s", i ? "|" : "", (int)f[i].len, f[i].ptr);
        }
        o += (size_t)snprintf(out + o, cap - o, ";");
    }
    umg_csv_free(&r);
}

#define CSV(lit, want)                                                                                                 \
    do {                                                                                                               \
        char got[512];                                                                                                 \
        csv_dump(lit, sizeof(lit) - 1, got, sizeof(got));                                                              \
        assert_string_equal(got, want);                                                                                \
    } while (0)

static void test_csv_plain(void **state)
{
    (void)state;
    CSV("a,b,c\n1,2,3\n", "1:a|b|c;2:1|2|3;");
    CSV("a,b\r\n1,2\r\n", "1:a|b;2:1|2;");
    CSV("a,b\r\n1,2", "1:a|b;2:1|2;"); /* no line break at the end */
    CSV("a,,\n", "1:a||;");            /* empty fields */
    CSV("a\n\n\r\nb\n", "1:a;4:b;");   /* blank lines are skipped, and counted */
    CSV("\xef\xbb\xbf"
        "date,x\n",
        "1:date|x;"); /* the BOM */
    CSV("", "");
    CSV("\xef\xbb\xbf", "");
}

static void test_csv_quotes(void **state)
{
    (void)state;
    CSV("\"a,b\",c\n", "1:a,b|c;");
    CSV("\"say \"\"hi\"\"\",x\n", "1:say \"hi\"|x;");
    CSV("\"\",x\n", "1:|x;");
    CSV("\"two\nlines\",x\r\nnext,y\n", "1:two\nlines|x;3:next|y;");
    CSV("\"crlf\r\ninside\",x\r\nnext\r\n", "1:crlf\r\ninside|x;3:next;");
    CSV("x,\"end\"", "1:x|end;");
}

static void test_csv_bad_records(void **state)
{
    (void)state;
    CSV("a,b\n\"oops\"x,1\nc,d\n", "1:a|b;!2;3:c|d;"); /* text after the closing quote */
    CSV("a,b\nab\"c,1\nc,d\n", "1:a|b;!2;3:c|d;");     /* a quote inside an unquoted field */
    CSV("a,b\n\"never closed,1\nc,d\n", "1:a|b;!2;");  /* swallows the rest */
    CSV("1,2,3,4,5,6,7,8,9\nok\n", "!1;2:ok;");        /* more fields than the caller takes */
    CSV("\"a\"\"\n", "!1;");
}

/* ---------------------------------------------------------------- checks */

static void test_checks(void **state)
{
    (void)state;
    int64_t m;
    int32_t day;
    char cur[4];
    double v;
    assert_null(umg_cost_check_amount(120.5, &m));
    assert_int_equal(m, 120500000);
    assert_null(umg_cost_check_amount(0.0000005, &m)); /* half a micro rounds up */
    assert_int_equal(m, 1);
    assert_null(umg_cost_check_amount(0.0000004, &m));
    assert_int_equal(m, 0);
    assert_null(umg_cost_check_amount(0, &m));
    assert_int_equal(m, 0);
    assert_null(umg_cost_check_amount(1e12, &m));
    assert_int_equal(m, 1000000000000000000ll);
    assert_non_null(umg_cost_check_amount(-0.01, &m));
    assert_non_null(umg_cost_check_amount(NAN, &m));
    assert_non_null(umg_cost_check_amount(INFINITY, &m));
    assert_non_null(umg_cost_check_amount(1.5e12, &m));
    /* Large amounts keep their millionths: as written in JSON (the shortest decimal of the double) and in a CSV
     * field (every digit). */
    assert_null(umg_cost_check_amount(8905122611.79, &m));
    assert_int_equal(m, 8905122611790000ll);
    assert_null(umg_cost_check_amount(999999999999.999999, &m));
    assert_int_equal(m, 1000000000000000000ll); /* the double nearest is 1e12 */
    assert_null(umg_cost_parse_amount(UMG_SLICE("8905122611.79"), &m));
    assert_int_equal(m, 8905122611790000ll);
    assert_null(umg_cost_parse_amount(UMG_SLICE("999999999999.999999"), &m));
    assert_int_equal(m, 999999999999999999ll);
    assert_null(umg_cost_parse_amount(UMG_SLICE("1e12"), &m));
    assert_int_equal(m, 1000000000000000000ll);
    assert_null(umg_cost_parse_amount(UMG_SLICE("0.0000005"), &m)); /* half up */
    assert_int_equal(m, 1);
    assert_null(umg_cost_parse_amount(UMG_SLICE("0.00000049999999999999999"), &m));
    assert_int_equal(m, 0);
    assert_null(umg_cost_parse_amount(UMG_SLICE("007.125e2"), &m));
    assert_int_equal(m, 712500000);
    assert_null(umg_cost_parse_amount(UMG_SLICE("12.5E-1"), &m));
    assert_int_equal(m, 1250000);
    assert_null(umg_cost_parse_amount(UMG_SLICE(".5"), &m));
    assert_int_equal(m, 500000);
    assert_null(umg_cost_parse_amount(UMG_SLICE("0e99999"), &m));
    assert_int_equal(m, 0);
    assert_null(umg_cost_parse_amount(UMG_SLICE("1e-99999"), &m));
    assert_int_equal(m, 0);
    assert_non_null(umg_cost_parse_amount(UMG_SLICE("1000000000000.000001"), &m));
    assert_non_null(umg_cost_parse_amount(UMG_SLICE("1e13"), &m));
    assert_non_null(umg_cost_parse_amount(UMG_SLICE("1e400"), &m));
    assert_non_null(umg_cost_parse_amount(UMG_SLICE("-1"), &m));
    assert_non_null(umg_cost_parse_amount(UMG_SLICE("1.2.3"), &m));
    /* Every whole number of cents up to 1e10, through the shortest decimal, is its exact millionths. */
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int64_t cents = (int64_t)(x % 1000000000000ull);
        assert_null(umg_cost_check_amount((double)cents / 100, &m));
        assert_int_equal(m, cents * 10000);
    }
    assert_null(umg_cost_check_rate(1.08));
    assert_non_null(umg_cost_check_rate(0));
    assert_non_null(umg_cost_check_rate(-1));
    assert_non_null(umg_cost_check_rate(NAN));
    assert_null(umg_cost_check_rate(1e9));
    assert_null(umg_cost_check_rate(1e-9));
    assert_non_null(umg_cost_check_rate(1.01e9));
    assert_non_null(umg_cost_check_rate(1e300)); /* converted amounts stay inside the reports' integers */
    assert_non_null(umg_cost_check_rate(1e-10));

    assert_null(umg_cost_check_date(UMG_SLICE("2026-11-20"), &day));
    assert_int_equal(day, 20777);
    assert_non_null(umg_cost_check_date(UMG_SLICE("2026-02-30"), &day));
    assert_non_null(umg_cost_check_date(UMG_SLICE(""), &day));
    assert_null(umg_cost_check_country(UMG_SLICE("")));
    assert_null(umg_cost_check_country(UMG_SLICE("US")));
    assert_non_null(umg_cost_check_country(UMG_SLICE("us")));
    assert_non_null(umg_cost_check_country(UMG_SLICE("USA")));
    assert_null(umg_cost_check_currency(UMG_SLICE("EUR"), cur));
    assert_string_equal(cur, "EUR");
    assert_non_null(umg_cost_check_currency(UMG_SLICE("eur"), cur));
    assert_non_null(umg_cost_check_currency(UMG_SLICE("EURO"), cur));
    assert_null(umg_cost_check_name(UMG_SLICE("summer \xc3\xa9t\xc3\xa9"), 1));
    assert_non_null(umg_cost_check_name(UMG_SLICE(""), 1));
    assert_null(umg_cost_check_name(UMG_SLICE(""), 0));
    assert_non_null(umg_cost_check_name(UMG_SLICE("a\tb"), 0));
    assert_non_null(umg_cost_check_name(UMG_SLICE("\xff"), 0));

    assert_null(umg_cost_parse_number(UMG_SLICE("120.5"), &v));
    assert_true(v == 120.5);
    assert_null(umg_cost_parse_number(UMG_SLICE("1e3"), &v));
    assert_true(v == 1000);
    assert_null(umg_cost_parse_number(UMG_SLICE(".5"), &v));
    assert_null(umg_cost_parse_number(UMG_SLICE("7."), &v));
    const char *bad[] = {"", "-1", "+1", " 1", "1 ", "nan", "inf", "0x10", "1e", "1,5", "."};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_non_null(umg_cost_parse_number(umg_slice(bad[i], strlen(bad[i])), &v));
    }
}

/* ---------------------------------------------------------------- storage */

static char *tmpdir(void)
{
    char tmpl[] = "/tmp/umg-cost-XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

typedef struct seen_s {
    size_t n;
    int64_t micros[8];
    char currency[8][4];
    char campaign[8][16];
} seen_t;

static int collect(void *ctx, const umg_cost_row_t *r)
{
    seen_t *s = ctx;
    if (s->n < 8) {
        s->micros[s->n] = r->micros;
        memcpy(s->currency[s->n], r->currency, 4);
        snprintf(s->campaign[s->n], 16, "%.*s", (int)r->campaign.len, r->campaign.ptr);
    }
    s->n++;
    return 0;
}

static int stop_at_first(void *ctx, const umg_cost_row_t *r)
{
    (void)ctx;
    (void)r;
    return 42;
}

static umg_cost_row_t row(int32_t day, const char *campaign, const char *country, const char *cur, int64_t micros)
{
    umg_cost_row_t r = {.day = day,
                        .source = UMG_SLICE("meta"),
                        .campaign = umg_slice(campaign, strlen(campaign)),
                        .adset = UMG_SLICE("a1"),
                        .ad = UMG_SLICE(""),
                        .country = umg_slice(country, strlen(country)),
                        .micros = micros};
    memcpy(r.currency, cur, 4);
    return r;
}

static void test_replace(void **state)
{
    (void)state;
    char *dir = tmpdir();
    umg_cost_t *c;
    assert_int_equal(umg_cost_open(dir, &c), UMG_OK);
    int rep = -1;
    umg_cost_row_t a = row(100, "summer", "US", "EUR", 120500000);
    assert_int_equal(umg_cost_begin(c), UMG_OK);
    assert_int_equal(umg_cost_put(c, 1, &a, &rep), UMG_OK);
    assert_int_equal(rep, 0);
    umg_cost_row_t b = row(100, "summer", "", "EUR", 5);   /* another country: another key */
    umg_cost_row_t d = row(101, "summer", "US", "EUR", 7); /* another day */
    assert_int_equal(umg_cost_put(c, 1, &b, &rep), UMG_OK);
    assert_int_equal(rep, 0);
    assert_int_equal(umg_cost_put(c, 1, &d, &rep), UMG_OK);
    assert_int_equal(umg_cost_put(c, 2, &a, &rep), UMG_OK); /* another app */
    assert_int_equal(rep, 0);
    assert_int_equal(umg_cost_commit(c), UMG_OK);

    /* The same key again, with another amount and currency: replaced, not added. */
    umg_cost_row_t a2 = row(100, "summer", "US", "USD", 99);
    assert_int_equal(umg_cost_begin(c), UMG_OK);
    assert_int_equal(umg_cost_put(c, 1, &a2, &rep), UMG_OK);
    assert_int_equal(rep, 1);
    assert_int_equal(umg_cost_commit(c), UMG_OK);

    seen_t s = {0};
    assert_int_equal(umg_cost_each(c, 1, 100, 100, collect, &s), UMG_OK);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.micros[0], 5); /* country "" sorts first */
    assert_int_equal(s.micros[1], 99);
    assert_string_equal(s.currency[1], "USD");
    memset(&s, 0, sizeof(s));
    assert_int_equal(umg_cost_each(c, 1, 0, 1000, collect, &s), UMG_OK);
    assert_int_equal(s.n, 3);
    memset(&s, 0, sizeof(s));
    assert_int_equal(umg_cost_each(c, 1, 102, 1000, collect, &s), UMG_OK);
    assert_int_equal(s.n, 0);
    assert_int_equal(umg_cost_each(c, 1, 0, 1000, stop_at_first, NULL), 42);

    /* A rolled-back transaction stores nothing. */
    umg_cost_row_t e = row(103, "winter", "", "EUR", 1);
    assert_int_equal(umg_cost_begin(c), UMG_OK);
    assert_int_equal(umg_cost_put(c, 1, &e, &rep), UMG_OK);
    umg_cost_rollback(c);
    memset(&s, 0, sizeof(s));
    assert_int_equal(umg_cost_each(c, 1, 103, 103, collect, &s), UMG_OK);
    assert_int_equal(s.n, 0);

    /* A second connection (the CLI while the daemon runs) sees the rows. */
    umg_cost_t *c2;
    assert_int_equal(umg_cost_open(dir, &c2), UMG_OK);
    memset(&s, 0, sizeof(s));
    assert_int_equal(umg_cost_each(c2, 1, 0, 1000, collect, &s), UMG_OK);
    assert_int_equal(s.n, 3);
    umg_cost_close(c2);
    umg_cost_close(c);
    umg_cost_close(NULL);
    free(dir);
}

static void put_rate(umg_cost_t *c, uint32_t org, int32_t day, const char *cur, const char *base, double rate)
{
    umg_rate_row_t r = {.day = day, .rate = rate};
    memcpy(r.currency, cur, 4);
    memcpy(r.base, base, 4);
    int rep;
    assert_int_equal(umg_cost_rate_put(c, org, &r, &rep), UMG_OK);
}

static double factor(umg_cost_t *c, uint32_t org, int32_t day, const char *from, const char *to)
{
    double f = -1;
    int rc = umg_cost_rate(c, org, day, from, to, &f);
    return rc == UMG_OK ? f : rc == UMG_ENOENT ? -1 : -2;
}

static void test_conversion_rule(void **state)
{
    (void)state;
    char *dir = tmpdir();
    umg_cost_t *c;
    assert_int_equal(umg_cost_open(dir, &c), UMG_OK);
    assert_int_equal(umg_cost_begin(c), UMG_OK);
    put_rate(c, 1, 100, "EUR", "USD", 1.10); /* direct EUR->USD */
    put_rate(c, 1, 105, "EUR", "USD", 1.20);
    put_rate(c, 1, 103, "USD", "EUR", 0.8); /* inverse of EUR->USD, newer than day 100's */
    put_rate(c, 1, 110, "USD", "EUR", 0.5); /* a tie with the direct one below */
    put_rate(c, 1, 110, "EUR", "USD", 1.25);
    put_rate(c, 1, 100, "GBP", "USD", 1.3);   /* only one direction */
    put_rate(c, 2, 100, "JPY", "USD", 0.007); /* another organization */
    assert_int_equal(umg_cost_commit(c), UMG_OK);

    /* Same currency: exactly 1, with or without rows. */
    assert_true(factor(c, 1, 50, "EUR", "EUR") == 1.0);
    assert_true(factor(c, 9, 50, "XYZ", "XYZ") == 1.0);
    /* Nothing on or before the day: no rate (never 1.0). */
    assert_true(factor(c, 1, 99, "EUR", "USD") == -1);
    /* Direct, the latest on or before the day. */
    assert_true(factor(c, 1, 100, "EUR", "USD") == 1.10);
    assert_true(factor(c, 1, 102, "EUR", "USD") == 1.10);
    /* The inverse row is later (103 > 100): 1 / 0.8. */
    assert_true(factor(c, 1, 103, "EUR", "USD") == 1.0 / 0.8);
    assert_true(factor(c, 1, 104, "EUR", "USD") == 1.0 / 0.8);
    /* The direct row is later again (105 > 103). */
    assert_true(factor(c, 1, 105, "EUR", "USD") == 1.20);
    /* Converting the other way uses the same rows the other way round. */
    assert_true(factor(c, 1, 104, "USD", "EUR") == 0.8);
    assert_true(factor(c, 1, 106, "USD", "EUR") == 1.0 / 1.20);
    /* A tie on the date: the direct row wins, in both directions. */
    assert_true(factor(c, 1, 110, "EUR", "USD") == 1.25);
    assert_true(factor(c, 1, 200, "USD", "EUR") == 0.5);
    /* Only an inverse row. */
    assert_true(factor(c, 1, 100, "USD", "GBP") == 1.0 / 1.3);
    /* No chaining through a third currency, and nothing across organizations. */
    assert_true(factor(c, 1, 200, "GBP", "EUR") == -1);
    assert_true(factor(c, 1, 200, "JPY", "USD") == -1);
    assert_true(factor(c, 2, 200, "JPY", "USD") == 0.007);
    assert_int_equal(umg_cost_rate(c, 1, 0, NULL, "USD", &(double){0}), UMG_EINVAL);

    /* A re-sent rate replaces. */
    int rep = 0;
    umg_rate_row_t r = {.day = 100, .currency = "EUR", .base = "USD", .rate = 1.11};
    assert_int_equal(umg_cost_begin(c), UMG_OK);
    assert_int_equal(umg_cost_rate_put(c, 1, &r, &rep), UMG_OK);
    assert_int_equal(rep, 1);
    assert_int_equal(umg_cost_commit(c), UMG_OK);
    assert_true(factor(c, 1, 101, "EUR", "USD") == 1.11);

    /* The rates of a span of days at once: what umg_cost_rate says for each day, NAN where it has none. */
    static const char *const pairs[][2] = {{"EUR", "USD"}, {"USD", "EUR"}, {"GBP", "USD"}, {"USD", "GBP"},
                                           {"GBP", "EUR"}, {"EUR", "EUR"}, {"JPY", "USD"}};
    for (size_t k = 0; k < sizeof(pairs) / sizeof(pairs[0]); k++) {
        double f[120];
        assert_int_equal(umg_cost_rate_days(c, 1, 95, 120, pairs[k][0], pairs[k][1], f), UMG_OK);
        for (int i = 0; i < 120; i++) {
            double want = factor(c, 1, 95 + i, pairs[k][0], pairs[k][1]);
            assert_true(want == -1 ? isnan(f[i]) : f[i] == want);
        }
    }
    /* A damaged stored rate counts as absent there too, from its day on. */
    assert_int_equal(sqlite3_exec(umg__cost_db(c), "UPDATE rates SET rate = -1 WHERE day = 105", NULL, NULL, NULL),
                     SQLITE_OK);
    double f[10];
    assert_int_equal(umg_cost_rate_days(c, 1, 103, 10, "EUR", "USD", f), UMG_OK);
    for (int i = 0; i < 10; i++) {
        double want = factor(c, 1, 103 + i, "EUR", "USD");
        assert_true(want == -1 ? isnan(f[i]) : f[i] == want);
    }
    assert_true(f[2] == 1.0 / 0.8); /* day 105: the direct row is damaged, the inverse of day 103 holds */
    umg_cost_close(c);
    free(dir);
}

static size_t count_rows(umg_cost_cache_t *k, umg_cost_t *c, uint32_t app, int32_t from, int32_t to, int64_t *sum)
{
    seen_t s = {0};
    assert_int_equal(umg_cost_cache_each(k, c, app, from, to, collect, &s), UMG_OK);
    *sum = 0;
    for (size_t i = 0; i < s.n && i < 8; i++) {
        *sum += s.micros[i];
    }
    return s.n;
}

static int64_t version(umg_cost_t *c, uint32_t app)
{
    int64_t v = -1;
    assert_int_equal(umg_cost_version(c, app, &v), UMG_OK);
    return v;
}

/* Every write of an app's costs bumps its version, whoever writes; the cache answers like umg_cost_each. */
static void test_versions_and_cache(void **state)
{
    (void)state;
    char *dir = tmpdir();
    umg_cost_t *c, *w;
    assert_int_equal(umg_cost_open(dir, &c), UMG_OK);
    assert_int_equal(umg_cost_open(dir, &w), UMG_OK); /* another writer: the HTTP worker, or the CLI */
    assert_int_equal(version(c, 1), 0);
    int rep;
    umg_cost_row_t a = row(100, "summer", "US", "USD", 10), b = row(101, "summer", "US", "USD", 20);
    assert_int_equal(umg_cost_begin(w), UMG_OK);
    assert_int_equal(umg_cost_put(w, 1, &a, &rep), UMG_OK);
    assert_int_equal(umg_cost_put(w, 1, &b, &rep), UMG_OK);
    assert_int_equal(umg_cost_commit(w), UMG_OK);
    int64_t v1 = version(c, 1);
    assert_true(v1 > 0);
    assert_int_equal(version(c, 2), 0); /* other apps keep theirs */

    umg_cost_cache_t *k;
    assert_int_equal(umg_cost_cache_new(0, &k), UMG_OK);
    int64_t sum;
    assert_int_equal(count_rows(k, c, 1, 90, 110, &sum), 2);
    assert_int_equal(sum, 30);
    assert_int_equal(count_rows(k, c, 1, 101, 101, &sum), 1); /* a period inside the one read */
    assert_int_equal(sum, 20);
    assert_int_equal(umg_cost_cache_each(k, c, 1, 90, 110, stop_at_first, NULL), 42);

    /* The copy is what is read while the version stands: with the update trigger gone, a change unseen... */
    assert_int_equal(sqlite3_exec(umg__cost_db(w), "DROP TRIGGER costs_version_upd", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(umg__cost_db(w), "UPDATE costs SET micros = 11 WHERE day = 100", NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(count_rows(k, c, 1, 95, 105, &sum), 2);
    assert_int_equal(sum, 30);
    /* ... and any write that bumps it (a new row) makes the next report read again. */
    umg_cost_row_t d = row(102, "winter", "", "USD", 5);
    assert_int_equal(umg_cost_begin(w), UMG_OK);
    assert_int_equal(umg_cost_put(w, 1, &d, &rep), UMG_OK);
    assert_int_equal(umg_cost_commit(w), UMG_OK);
    assert_true(version(c, 1) > v1);
    assert_int_equal(count_rows(k, c, 1, 95, 105, &sum), 3);
    assert_int_equal(sum, 36);
    /* a delete bumps it, and so does an update (through the trigger, back in place) */
    int64_t v2 = version(c, 1);
    assert_int_equal(sqlite3_exec(umg__cost_db(w), "DELETE FROM costs WHERE day = 101", NULL, NULL, NULL), SQLITE_OK);
    assert_true(version(c, 1) > v2);
    assert_int_equal(count_rows(k, c, 1, 95, 105, &sum), 2);
    assert_int_equal(sum, 16);
    assert_int_equal(umg_meta_schema_version(), 7); /* 7 (signing secrets) left the cost triggers as 6 made them */
    assert_int_equal(sqlite3_exec(umg__cost_db(w),
                                  "CREATE TRIGGER costs_version_upd AFTER UPDATE ON costs BEGIN"
                                  " UPDATE cost_versions SET version = version + 1 WHERE app_id = NEW.app_id; END;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    d.micros = 7;
    assert_int_equal(umg_cost_begin(w), UMG_OK);
    assert_int_equal(umg_cost_put(w, 1, &d, &rep), UMG_OK);
    assert_int_equal(rep, 1);
    assert_int_equal(umg_cost_commit(w), UMG_OK);
    assert_int_equal(count_rows(k, c, 1, 95, 105, &sum), 2);
    assert_int_equal(sum, 18);
    /* a period outside the copy is read, and so is a wider one */
    assert_int_equal(count_rows(k, c, 1, 0, 1000, &sum), 2);
    assert_int_equal(count_rows(k, c, 1, 200, 300, &sum), 0);

    /* More apps than the cache holds, each still answered right. */
    assert_int_equal(umg_cost_begin(w), UMG_OK);
    for (uint32_t app = 10; app < 30; app++) {
        umg_cost_row_t r = row(100, "s", "US", "USD", app);
        assert_int_equal(umg_cost_put(w, app, &r, &rep), UMG_OK);
    }
    assert_int_equal(umg_cost_commit(w), UMG_OK);
    for (int round = 0; round < 2; round++) {
        for (uint32_t app = 10; app < 30; app++) {
            assert_int_equal(count_rows(k, c, app, 0, 1000, &sum), 1);
            assert_int_equal(sum, app);
        }
    }
    umg_cost_cache_free(k);
    umg_cost_cache_free(NULL);

    /* A period with more rows than the cache keeps: read from meta.db each time, the same rows. */
    assert_int_equal(umg_cost_cache_new(1, &k), UMG_OK);
    for (int round = 0; round < 3; round++) {
        assert_int_equal(count_rows(k, c, 1, 0, 1000, &sum), 2);
        assert_int_equal(sum, 18);
        assert_int_equal(count_rows(k, c, 1, 100, 100, &sum), 1); /* inside it: still read */
        assert_int_equal(sum, 11);
        assert_int_equal(count_rows(k, c, 10, 0, 1000, &sum), 1); /* another app's one row is kept */
        assert_int_equal(sum, 10);
    }
    umg_cost_cache_free(k);
    umg_cost_close(w);
    umg_cost_close(c);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_plain),
        cmocka_unit_test(test_csv_quotes),
        cmocka_unit_test(test_csv_bad_records),
        cmocka_unit_test(test_checks),
        cmocka_unit_test(test_replace),
        cmocka_unit_test(test_conversion_rule),
        cmocka_unit_test(test_versions_and_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
