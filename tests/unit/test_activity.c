/*
 * test_activity.c - the activity report (src/query/activity.c): every
 * parameter error, answers for each interval compared byte for byte with
 * what docs/reports.md defines (trailing windows summed from before `from`,
 * null stickiness, new and returning devices, days after today left out,
 * CSV), and a brute-force recount of random devices' active days.
 *
 * The UMG_RT_ACTIVITY rows are built from devices' active days as the
 * pipeline's definitions say (src/rollup/umg_rollup.h): the trailing windows
 * as day-to-day changes, the rest counted directly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <stdlib.h>

#include "umg_query.h"

/* ------------------------------------------------------------- fixtures */

#define D0 20776 /* 2026-11-19, a Thursday */
#define MAXR 4096
#define MAXDEV 64
#define MAXDAYS 32

typedef struct tdev_s {
    size_t n;
    int32_t day[MAXDAYS]; /* offsets from D0 */
} tdev_t;

static tdev_t devs[MAXDEV];
static size_t ndevs;

static struct {
    size_t n;
    int32_t day[MAXR];
    uint32_t dim[UMG_RD_N][MAXR];
    uint32_t x[2][MAXR];
    int64_t v[2][MAXR];
} act;

static void reset(void)
{
    memset(devs, 0, sizeof(devs));
    ndevs = 0;
    memset(&act, 0, sizeof(act));
}

/* A device active on the days (offsets from D0) listed up to the sentinel 999. */
static void device(int first, ...)
{
    tdev_t *d = &devs[ndevs++];
    va_list ap;
    va_start(ap, first);
    for (int day = first; day != 999; day = va_arg(ap, int)) {
        d->day[d->n++] = day;
    }
    va_end(ap);
}

static int active_in(const tdev_t *d, int32_t lo, int32_t hi)
{
    for (size_t i = 0; i < d->n; i++) {
        if (d->day[i] + D0 >= lo && d->day[i] + D0 <= hi) {
            return 1;
        }
    }
    return 0;
}

static int32_t first_day(const tdev_t *d)
{
    int32_t f = INT32_MAX;
    for (size_t i = 0; i < d->n; i++) {
        f = d->day[i] + D0 < f ? d->day[i] + D0 : f;
    }
    return f;
}

/* Devices active in [lo, hi], and devices whose first day is in it. */
static int64_t count_active(int32_t lo, int32_t hi)
{
    int64_t n = 0;
    for (size_t i = 0; i < ndevs; i++) {
        n += active_in(&devs[i], lo, hi);
    }
    return n;
}

static int64_t count_new(int32_t lo, int32_t hi)
{
    int64_t n = 0;
    for (size_t i = 0; i < ndevs; i++) {
        int32_t f = first_day(&devs[i]);
        n += f >= lo && f <= hi;
    }
    return n;
}

static void add_row(int32_t day, uint32_t kind, int64_t a, int64_t b)
{
    assert_true(act.n < MAXR);
    act.day[act.n] = day;
    act.x[0][act.n] = kind;
    act.v[0][act.n] = a;
    act.v[1][act.n] = b;
    act.n++;
}

static int32_t next_month(int32_t ms)
{
    return umg_date_month_start(ms + 31);
}

/* The rows of the devices, newest first (the report must not depend on the order). */
static void build_rows(void)
{
    int32_t lo = D0 - 200, hi = D0 + 200;
    for (int32_t d = hi; d >= lo; d--) {
        int64_t dau = count_active(d, d), nw = count_new(d, d);
        if (dau != 0 || nw != 0) {
            add_row(d, UMG_RA_DAY, dau, nw);
        }
        int64_t c7 = count_active(d - 6, d) - count_active(d - 7, d - 1);
        int64_t c30 = count_active(d - 29, d) - count_active(d - 30, d - 1);
        if (c7 != 0) {
            add_row(d, UMG_RA_WEEK7, c7, 0);
        }
        if (c30 != 0) {
            add_row(d, UMG_RA_MONTH30, c30, 0);
        }
        if (d == umg_date_week_start(d) && count_active(d, d + 6) != 0) {
            add_row(d, UMG_RA_WEEK, count_active(d, d + 6), count_new(d, d + 6));
        }
        int32_t nm = next_month(d);
        if (d == umg_date_month_start(d) && count_active(d, nm - 1) != 0) {
            add_row(d, UMG_RA_MONTH, count_active(d, nm - 1), count_new(d, nm - 1));
        }
    }
}

static void input(umg_query_activity_input_t *in, int32_t today)
{
    memset(in, 0, sizeof(*in));
    in->app = "app_0123456789abcdef";
    in->timezone = "America/Los_Angeles";
    in->today = today;
    umg_rollup_view_t *v = &in->activity;
    v->n = act.n;
    v->day = act.day;
    for (int d = 0; d < UMG_RD_N; d++) {
        v->dim[d] = act.dim[d];
    }
    v->x[0] = act.x[0];
    v->x[1] = act.x[1];
    v->v[0] = act.v[0];
    v->v[1] = act.v[1];
}

/* Parameters from "name=value&..." (every value as written). */
static void params_of(const char *qs, umg_query_activity_params_t *p)
{
    memset(p, 0, sizeof(*p));
    struct {
        const char *name;
        umg_slice_t *at;
    } map[] = {{"from", &p->from}, {"to", &p->to}, {"interval", &p->interval}, {"format", &p->format}};
    const char *s = qs;
    while (*s) {
        const char *e = strchr(s, '&'), *eq = strchr(s, '=');
        e = e ? e : s + strlen(s);
        assert_non_null(eq);
        int found = 0;
        for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
            if (strlen(map[i].name) == (size_t)(eq - s) && memcmp(map[i].name, s, (size_t)(eq - s)) == 0) {
                *map[i].at = umg_slice(eq + 1, (size_t)(e - eq - 1));
                found = 1;
            }
        }
        assert_true(found);
        s = *e ? e + 1 : e;
    }
}

/* Runs the report with today = D0 + today_off; returns its text (static buffer). */
static char *report(const char *qs, int today_off)
{
    static umg_buf_t out;
    umg_query_activity_params_t p;
    umg_query_error_t err;
    umg_query_activity_t *q = NULL;
    params_of(qs, &p);
    int rc = umg_query_activity_parse(&p, &q, &err);
    if (rc != UMG_OK) {
        fail_msg("%s: %s %s %s", qs, err.code, err.field, err.message);
    }
    umg_query_activity_input_t in;
    input(&in, D0 + today_off);
    umg_buf_free(&out);
    assert_int_equal(umg_query_activity_run(q, &in, &out), UMG_OK);
    umg_query_activity_free(q);
    return out.ptr;
}

static void expect_error(const char *qs, const char *code, const char *field, const char *msg)
{
    umg_query_activity_params_t p;
    umg_query_error_t err;
    umg_query_activity_t *q = NULL;
    params_of(qs, &p);
    int rc = umg_query_activity_parse(&p, &q, &err);
    if (rc != UMG_EINVAL) {
        fail_msg("%s: parsed (rc %d)", qs, rc);
    }
    assert_null(q);
    assert_string_equal(err.code, code);
    assert_string_equal(err.field, field);
    if (msg != NULL) {
        assert_string_equal(err.message, msg);
    }
}

static void expect_eq(const char *got, const char *want)
{
    if (strcmp(got, want) != 0) {
        fail_msg("got:\n%s\nwant:\n%s", got, want);
    }
}

/* An answer: its head (HEAD below) and the rest. */
static void expect_answer(const char *got, const char *head, const char *rest)
{
    static char want[8192];
    snprintf(want, sizeof(want), "%s%s", head, rest);
    expect_eq(got, want);
}

/* ------------------------------------------------------------------ tests */

static void test_parse_errors(void **state)
{
    (void)state;
    expect_error("to=2026-11-21", "required", "from", "from (YYYY-MM-DD, a local date) is required");
    expect_error("from=2026-11-21", "required", "to", NULL);
    expect_error("from=&to=2026-11-21", "required", "from", NULL);
    expect_error("from=2026-11-21&to=", "required", "to", NULL);
    expect_error("from=2026-13-01&to=2026-11-21", "invalid_value", "from", "from must be a date YYYY-MM-DD");
    expect_error("from=2026-11-21&to=2026-02-29", "invalid_value", "to", NULL);
    expect_error("from=2026-11-21&to=2026-11-20", "invalid_value", "to", "to must not be before from");
    expect_error("from=2026-01-01&to=2027-01-02", "range_too_large", "to", "a report covers at most 366 days");
    expect_error("from=2026-11-19&to=2026-11-21&interval=hour", "invalid_value", "interval",
                 "interval must be day, week or month");
    expect_error("from=2026-11-19&to=2026-11-21&interval=", "invalid_value", "interval", NULL);
    expect_error("from=2026-11-19&to=2026-11-21&interval=Week", "invalid_value", "interval", NULL);
    expect_error("from=2026-11-19&to=2026-11-21&format=xml", "invalid_value", "format", "format must be json or csv");
    expect_error("from=2026-11-19&to=2026-11-21&format=", "invalid_value", "format", NULL);
    /* The first error is reported: the period before the interval before the format. */
    expect_error("from=x&to=2026-11-21&interval=hour&format=xml", "invalid_value", "from", NULL);
    expect_error("from=2026-11-19&to=2026-11-21&interval=hour&format=xml", "invalid_value", "interval", NULL);

    umg_query_activity_params_t p;
    umg_query_error_t err;
    umg_query_activity_t *q;
    params_of("from=2026-01-01&to=2027-01-01&interval=month&format=csv", &p); /* 366 days */
    assert_int_equal(umg_query_activity_parse(&p, &q, &err), UMG_OK);
    assert_true(umg_query_activity_is_csv(q));
    umg_query_activity_free(q);
    params_of("from=2026-11-19&to=2026-11-19&format=json", &p);
    assert_int_equal(umg_query_activity_parse(&p, &q, &err), UMG_OK);
    assert_false(umg_query_activity_is_csv(q));
    umg_query_activity_free(q);
}

/* A: 11-09, 11-19, 11-20. B: 11-20, 11-21. C: 10-10. D: 11-05. */
static void some_devices(void)
{
    reset();
    device(-10, 0, 1, 999);
    device(1, 2, 999);
    device(-40, 999);
    device(-14, 999);
    build_rows();
}

#define HEAD(f, t, today, iv)                                                                                          \
    "{\"app\":\"app_0123456789abcdef\",\"from\":\"" f "\",\"to\":\"" t                                                 \
    "\",\"timezone\":\"America/Los_Angeles\",\"today\":\"" today "\",\"interval\":\"" iv "\",\"rows\":["

static void test_days(void **state)
{
    (void)state;
    some_devices();
    /* WAU and MAU count A's 11-09 and D's 11-05 (changes stored before from); 11-23 is after today. */
    expect_answer(
        report("from=2026-11-19&to=2026-11-23", 3), HEAD("2026-11-19", "2026-11-23", "2026-11-22", "day"),
        "{\"day\":\"2026-11-19\",\"dau\":1,\"wau\":1,\"mau\":2,\"stickiness\":0.5,\"new\":0,\"returning\":1},"
        "{\"day\":\"2026-11-20\",\"dau\":2,\"wau\":2,\"mau\":3,\"stickiness\":0.66666666666666663,\"new\":1,"
        "\"returning\":1},"
        "{\"day\":\"2026-11-21\",\"dau\":1,\"wau\":2,\"mau\":3,\"stickiness\":0.33333333333333331,\"new\":0,"
        "\"returning\":1},"
        "{\"day\":\"2026-11-22\",\"dau\":0,\"wau\":2,\"mau\":3,\"stickiness\":0,\"new\":0,\"returning\":0}]}\n");
    /* The interval by name; new devices on their first day; MAU 0 is a null stickiness. */
    expect_answer(
        report("from=2026-10-09&to=2026-10-10&interval=day", 30), HEAD("2026-10-09", "2026-10-10", "2026-12-19", "day"),
        "{\"day\":\"2026-10-09\",\"dau\":0,\"wau\":0,\"mau\":0,\"stickiness\":null,\"new\":0,\"returning\":0},"
        "{\"day\":\"2026-10-10\",\"dau\":1,\"wau\":1,\"mau\":1,\"stickiness\":1,\"new\":1,\"returning\":0}]}\n");
    /* The last day of C's window and the first day after it. */
    expect_answer(
        report("from=2026-11-08&to=2026-11-09", 30), HEAD("2026-11-08", "2026-11-09", "2026-12-19", "day"),
        "{\"day\":\"2026-11-08\",\"dau\":0,\"wau\":1,\"mau\":2,\"stickiness\":0,\"new\":0,\"returning\":0},"
        "{\"day\":\"2026-11-09\",\"dau\":1,\"wau\":2,\"mau\":2,\"stickiness\":0.5,\"new\":1,\"returning\":0}]}\n");
    /* Every day after today: no rows. A range before any data: zeros. No rows at all: zeros. */
    expect_answer(report("from=2026-11-20&to=2026-11-30", 0), HEAD("2026-11-20", "2026-11-30", "2026-11-19", "day"),
                  "]}\n");
    expect_answer(
        report("from=2025-01-01&to=2025-01-01", 0), HEAD("2025-01-01", "2025-01-01", "2026-11-19", "day"),
        "{\"day\":\"2025-01-01\",\"dau\":0,\"wau\":0,\"mau\":0,\"stickiness\":null,\"new\":0,\"returning\":0}]}\n");
    reset();
    expect_answer(
        report("from=2026-11-19&to=2026-11-19", 0), HEAD("2026-11-19", "2026-11-19", "2026-11-19", "day"),
        "{\"day\":\"2026-11-19\",\"dau\":0,\"wau\":0,\"mau\":0,\"stickiness\":null,\"new\":0,\"returning\":0}]}\n");
}

static void test_weeks(void **state)
{
    (void)state;
    some_devices();
    /* The week of Monday 11-16, which holds from and to; every day of it is before today. */
    expect_answer(
        report("from=2026-11-19&to=2026-11-20&interval=week", 30),
        HEAD("2026-11-19", "2026-11-20", "2026-12-19", "week"),
        "{\"week\":\"2026-11-16\",\"active\":2,\"avg_dau\":0.5714285714285714,\"stickiness\":0.2857142857142857,"
        "\"new\":1,\"returning\":1}]}\n");
    /* Today is Friday 11-20: the mean over Monday..Friday (0+0+0+1+2)/5; the week's actives as stored. */
    expect_answer(
        report("from=2026-11-16&to=2026-11-22&interval=week", 1),
        HEAD("2026-11-16", "2026-11-22", "2026-11-20", "week"),
        "{\"week\":\"2026-11-16\",\"active\":2,\"avg_dau\":0.59999999999999998,\"stickiness\":0.29999999999999999,"
        "\"new\":1,\"returning\":1}]}\n");
    /* Every week that intersects the range, in order; a week without activity has a null stickiness; the week
     * of 11-23 starts after today and is left out. */
    expect_answer(
        report("from=2026-11-01&to=2026-11-30&interval=week", 3),
        HEAD("2026-11-01", "2026-11-30", "2026-11-22", "week"),
        "{\"week\":\"2026-10-26\",\"active\":0,\"avg_dau\":0,\"stickiness\":null,\"new\":0,\"returning\":0},"
        "{\"week\":\"2026-11-02\",\"active\":1,\"avg_dau\":0.14285714285714285,\"stickiness\":0.14285714285714285,"
        "\"new\":1,\"returning\":0},"
        "{\"week\":\"2026-11-09\",\"active\":1,\"avg_dau\":0.14285714285714285,\"stickiness\":0.14285714285714285,"
        "\"new\":1,\"returning\":0},"
        "{\"week\":\"2026-11-16\",\"active\":2,\"avg_dau\":0.5714285714285714,\"stickiness\":0.2857142857142857,"
        "\"new\":1,\"returning\":1}]}\n");
}

static void test_months(void **state)
{
    (void)state;
    some_devices();
    /* October holds C only; November's mean runs over its 22 days up to today (6 device-days). */
    expect_answer(report("from=2026-10-15&to=2026-11-22&interval=month", 3),
                  HEAD("2026-10-15", "2026-11-22", "2026-11-22", "month"),
                  "{\"month\":\"2026-10-01\",\"active\":1,\"avg_dau\":0.032258064516129031,"
                  "\"stickiness\":0.032258064516129031,\"new\":1,\"returning\":0},"
                  "{\"month\":\"2026-11-01\",\"active\":3,\"avg_dau\":0.27272727272727271,"
                  "\"stickiness\":0.090909090909090898,\"new\":3,\"returning\":0}]}\n");
    /* The month has begun: its row is there even when from is after today (it once had no rows). */
    const char *got = report("from=2026-11-25&to=2026-11-30&interval=month", 3);
    assert_non_null(strstr(got, "{\"month\":\"2026-11-01\",\"active\":3,\"avg_dau\":0.27272727272727271,"));
    /* A device seen in two months is returning in the second. */
    device(-40, 0, 999);
    memset(&act, 0, sizeof(act));
    build_rows();
    expect_answer(
        report("from=2026-11-30&to=2026-12-31&interval=month", 30),
        HEAD("2026-11-30", "2026-12-31", "2026-12-19", "month"),
        "{\"month\":\"2026-11-01\",\"active\":4,\"avg_dau\":0.23333333333333334,"
        "\"stickiness\":0.058333333333333334,\"new\":3,\"returning\":1},"
        "{\"month\":\"2026-12-01\",\"active\":0,\"avg_dau\":0,\"stickiness\":null,\"new\":0,\"returning\":0}]}\n");
}

static void test_csv(void **state)
{
    (void)state;
    some_devices();
    expect_eq(report("from=2026-10-09&to=2026-10-10&format=csv", 30), "day,dau,wau,mau,stickiness,new,returning\n"
                                                                      "2026-10-09,0,0,0,,0,0\n"
                                                                      "2026-10-10,1,1,1,1,1,0\n");
    expect_eq(report("from=2026-11-01&to=2026-11-08&interval=week&format=csv", 30),
              "week,active,avg_dau,stickiness,new,returning\n"
              "2026-10-26,0,0,,0,0\n"
              "2026-11-02,1,0.14285714285714285,0.14285714285714285,1,0\n");
    expect_eq(report("from=2026-11-01&to=2026-11-08&interval=month&format=csv", 3),
              "month,active,avg_dau,stickiness,new,returning\n"
              "2026-11-01,3,0.27272727272727271,0.090909090909090898,3,0\n");
    expect_eq(report("from=2026-11-20&to=2026-11-30&format=csv", 0), "day,dau,wau,mau,stickiness,new,returning\n");
}

/* ------------------------------------------------------ brute force */

static void put_ratio(umg_buf_t *o, double num, int64_t den)
{
    if (den != 0) {
        umg_buf_printf(o, "%.17g", num / (double)den);
    }
}

/* The CSV answer recounted from the devices' days. */
static void recount(umg_buf_t *o, int32_t from, int32_t to, int32_t today, int iv)
{
    static const char *const head[] = {"day,dau,wau,mau,stickiness,new,returning\n",
                                       "week,active,avg_dau,stickiness,new,returning\n",
                                       "month,active,avg_dau,stickiness,new,returning\n"};
    umg_buf_printf(o, "%s", head[iv]);
    int32_t end = to < today ? to : today;
    char t[11];
    if (iv == 0) {
        for (int32_t d = from; d <= end; d++) {
            int64_t dau = count_active(d, d), nw = count_new(d, d), mau = count_active(d - 29, d);
            umg_date_format(d, t);
            umg_buf_printf(o, "%s,%" PRId64 ",%" PRId64 ",%" PRId64 ",", t, dau, count_active(d - 6, d), mau);
            put_ratio(o, (double)dau, mau);
            umg_buf_printf(o, ",%" PRId64 ",%" PRId64 "\n", nw, dau - nw);
        }
        return;
    }
    for (int32_t d = iv == 1 ? umg_date_week_start(from) : umg_date_month_start(from); d <= end;) {
        int32_t next = iv == 1 ? d + 7 : next_month(d);
        int64_t a = count_active(d, next - 1), nw = count_new(d, next - 1), sum = 0, days = 0;
        for (int32_t x = d; x < next && x <= today; x++, days++) {
            sum += count_active(x, x);
        }
        double avg = (double)sum / (double)days;
        umg_date_format(d, t);
        umg_buf_printf(o, "%s,%" PRId64 ",%.17g,", t, a, avg);
        put_ratio(o, avg, a);
        umg_buf_printf(o, ",%" PRId64 ",%" PRId64 "\n", nw, a - nw);
        d = next;
    }
}

static void test_brute_force(void **state)
{
    (void)state;
    static const char *const ivs[] = {"day", "week", "month"};
    reset();
    srand(7);
    int today = 60;
    for (size_t i = 0; i < MAXDEV; i++) {
        tdev_t *d = &devs[ndevs++];
        d->n = 1 + (size_t)rand() % (MAXDAYS - 1);
        int start = -150 + rand() % 200, spread = 1 + rand() % 90;
        for (size_t k = 0; k < d->n; k++) {
            int day = start + rand() % spread;
            d->day[k] = day > today ? today : day;
        }
    }
    build_rows();
    for (int round = 0; round < 60; round++) {
        int32_t from = D0 - 160 + rand() % 230, to = from + rand() % 120;
        for (int iv = 0; iv < 3; iv++) {
            char qs[128], f[11], t[11];
            umg_date_format(from, f);
            umg_date_format(to, t);
            snprintf(qs, sizeof(qs), "from=%s&to=%s&interval=%s&format=csv", f, t, ivs[iv]);
            umg_buf_t want = {0};
            recount(&want, from, to, D0 + today, iv);
            expect_eq(report(qs, today), want.ptr);
            umg_buf_free(&want);
        }
    }
}

/* Out of memory at every allocation: an error, never a crash or a leak. */
static void test_out_of_memory(void **state)
{
    (void)state;
    some_devices();
    umg_query_activity_params_t p;
    umg_query_error_t err;
    params_of("from=2026-11-01&to=2026-11-30&interval=week", &p);
    for (long n = 1;; n++) {
        umg_query_activity_input_t in;
        input(&in, D0 + 3);
        umg_buf_t out = {0};
        umg_query_activity_t *q = NULL;
        umg_alloc_fail_after(n);
        int rc = umg_query_activity_parse(&p, &q, &err);
        rc = rc ? rc : umg_query_activity_run(q, &in, &out);
        umg_alloc_fail_after(0);
        umg_query_activity_free(q);
        umg_buf_free(&out);
        if (rc == UMG_OK) {
            break;
        }
        assert_int_equal(rc, UMG_ENOMEM);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_errors),  cmocka_unit_test(test_days), cmocka_unit_test(test_weeks),
        cmocka_unit_test(test_months),        cmocka_unit_test(test_csv),  cmocka_unit_test(test_brute_force),
        cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
