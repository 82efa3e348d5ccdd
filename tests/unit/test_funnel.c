/*
 * test_funnel.c - GET /v1/reports/funnel's engine (src/query/funnel.c): the
 * greedy matcher on hand-made timelines (order, inclusive window edges,
 * repeated events, a step 1 outside the period, purchase vs purchase:<name>,
 * ties in time), every parameter error (code and field), and whole answers
 * from fake timelines, devices and dictionary compared byte for byte with
 * what docs/reports.md defines (conversions, lower medians, groups, CSV).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>

#include "umg_query.h"
#include "umg_store.h"

#define D0 20776 /* 2026-11-19 */
#define S INT64_C(1000000)
#define H (3600 * S)
#define DAY (24 * H)
#define T0 ((int64_t)D0 * DAY) /* 2026-11-19T00:00:00Z */

/* The dictionary: id i is words[i] (0 is ""). */
static const char *words[] = {"", "signup", "gems", "coins", "meta", "google", "US", "DE", "android", "ios", "c1"};
enum { W_SIGNUP = 1, W_GEMS, W_COINS, W_META, W_GOOGLE, W_US, W_DE, W_ANDROID, W_IOS, W_C1 };
#define NWORDS (sizeof(words) / sizeof(words[0]))

static umg_store_step_t st(int kind, int64_t ts, uint32_t name)
{
    umg_store_step_t s = {.ts_us = ts, .name = name, .kind = (uint8_t)kind};
    return s;
}
#define INS(ts) st(UMG_STORE_STEP_INSTALL, ts, 0)
#define EV(ts, n) st(UMG_STORE_STEP_EVENT, ts, n)
#define PUR(ts, n) st(UMG_STORE_STEP_PURCHASE, ts, n)

static const umg_funnel_step_t F_INSTALL = {UMG_FUNNEL_INSTALL, 0}, F_SIGNUP = {UMG_FUNNEL_EVENT, W_SIGNUP},
                               F_GEMS = {UMG_FUNNEL_EVENT, W_GEMS}, F_PURCHASE = {UMG_FUNNEL_PURCHASE, 0},
                               F_PGEMS = {UMG_FUNNEL_PURCHASE_N, W_GEMS}, F_PCOINS = {UMG_FUNNEL_PURCHASE_N, W_COINS},
                               F_NOTHING = {UMG_FUNNEL_NOTHING, 0};

/* Matches tl against fs over the day D0 with a window of w; returns the steps reached. */
static size_t match(const umg_funnel_step_t *fs, size_t nfs, int64_t w, const umg_store_step_t *tl, size_t n,
                    int64_t *at)
{
    return umg_funnel_match(fs, nfs, T0, T0 + DAY, w, tl, n, at);
}

/* ---------------------------------------------------------------- matcher */

static void test_match_order_and_window(void **state)
{
    (void)state;
    int64_t at[UMG_FUNNEL_MAX_STEPS];
    umg_funnel_step_t f3[] = {F_INSTALL, F_SIGNUP, F_PURCHASE};
    umg_store_step_t a[] = {INS(T0 + H), EV(T0 + 2 * H, W_SIGNUP), PUR(T0 + 3 * H, W_GEMS)};
    assert_int_equal(match(f3, 3, 7 * DAY, a, 3, at), 3);
    assert_int_equal(at[0], T0 + H);
    assert_int_equal(at[1], T0 + 2 * H);
    assert_int_equal(at[2], T0 + 3 * H);

    /* out of order: the signup before the install does not count */
    umg_store_step_t b[] = {EV(T0 + H, W_SIGNUP), INS(T0 + 2 * H), PUR(T0 + 3 * H, W_GEMS)};
    assert_int_equal(match(f3, 3, 7 * DAY, b, 3, at), 1);

    /* the window's edge is inclusive: entry + window reaches, one microsecond more does not */
    umg_store_step_t c[] = {INS(T0 + H), EV(T0 + H + 2 * H, W_SIGNUP), PUR(T0 + H + 7 * DAY, W_GEMS)};
    assert_int_equal(match(f3, 3, 7 * DAY, c, 3, at), 3);
    assert_int_equal(at[2], T0 + H + 7 * DAY);
    c[2].ts_us++;
    assert_int_equal(match(f3, 3, 7 * DAY, c, 3, at), 2);
    assert_int_equal(match(f3, 3, H, c, 3, at), 1); /* the signup is 2 h after the entry */

    /* a step the dictionary never saw matches nothing; the steps after it are not reached either */
    umg_funnel_step_t fn[] = {F_INSTALL, F_NOTHING, F_PURCHASE};
    assert_int_equal(match(fn, 3, 7 * DAY, a, 3, at), 1);

    /* no timeline, no entry */
    assert_int_equal(match(f3, 3, 7 * DAY, a, 0, at), 0);
}

static void test_match_entry_period(void **state)
{
    (void)state;
    int64_t at[UMG_FUNNEL_MAX_STEPS];
    umg_funnel_step_t f2[] = {F_INSTALL, F_SIGNUP};
    /* a step 1 before the period does not enter; the first one inside does */
    umg_store_step_t a[] = {INS(T0 - H), EV(T0 - H / 2, W_SIGNUP), INS(T0 + H), EV(T0 + 2 * H, W_SIGNUP)};
    assert_int_equal(match(f2, 2, 7 * DAY, a, 4, at), 2);
    assert_int_equal(at[0], T0 + H);
    assert_int_equal(at[1], T0 + 2 * H);
    /* only before: no entry (the signup inside the period is not step 1) */
    assert_int_equal(match(f2, 2, 7 * DAY, a, 2, at), 0);
    /* the period is [start of from, start of the day after to): its first instant is in, its end is not */
    umg_store_step_t b[] = {INS(T0), EV(T0 + DAY + H, W_SIGNUP)};
    assert_int_equal(match(f2, 2, 7 * DAY, b, 2, at), 2);
    b[0].ts_us = T0 + DAY;
    assert_int_equal(match(f2, 2, 7 * DAY, b, 2, at), 0);
    /* later steps may fall after the period, within the window */
    b[0].ts_us = T0 + DAY - 1;
    assert_int_equal(match(f2, 2, 7 * DAY, b, 2, at), 2);
    /* the earliest entry counts even when a later one would convert */
    umg_store_step_t c[] = {INS(T0 + H), INS(T0 + 5 * H), EV(T0 + 5 * H + 3 * H, W_SIGNUP)};
    assert_int_equal(match(f2, 2, 4 * H, c, 3, at), 1);
    assert_int_equal(at[0], T0 + H);
}

static void test_match_repeats_and_ties(void **state)
{
    (void)state;
    int64_t at[UMG_FUNNEL_MAX_STEPS];
    /* a repeated step needs as many occurrences; each occurrence reaches one step */
    umg_funnel_step_t f3[] = {F_SIGNUP, F_SIGNUP, F_SIGNUP};
    umg_store_step_t a[] = {EV(T0 + H, W_SIGNUP), EV(T0 + 2 * H, W_SIGNUP)};
    assert_int_equal(match(f3, 3, 7 * DAY, a, 2, at), 2);
    assert_int_equal(at[1], T0 + 2 * H);
    /* two occurrences at the same instant reach two steps */
    a[1].ts_us = T0 + H;
    assert_int_equal(match(f3, 3, 7 * DAY, a, 2, at), 2);
    assert_int_equal(at[1], T0 + H);

    /* an implicit install: the install step and the event at one instant (the install first in the timeline) */
    umg_store_step_t b[] = {INS(T0 + H), EV(T0 + H, W_SIGNUP), EV(T0 + 3 * H, W_GEMS)};
    umg_funnel_step_t f_is[] = {F_INSTALL, F_SIGNUP, F_GEMS};
    assert_int_equal(match(f_is, 3, 7 * DAY, b, 3, at), 3);
    assert_int_equal(at[1], T0 + H);
    /* "at or after" the time reached: an occurrence at that instant, even earlier in the log, counts */
    umg_funnel_step_t f_si[] = {F_SIGNUP, F_INSTALL, F_GEMS};
    assert_int_equal(match(f_si, 3, 7 * DAY, b, 3, at), 3);
    assert_int_equal(at[0], T0 + H);
    assert_int_equal(at[1], T0 + H);
    /* one install does not reach two install steps */
    umg_funnel_step_t f_ii[] = {F_INSTALL, F_INSTALL};
    assert_int_equal(match(f_ii, 2, 7 * DAY, b, 3, at), 1);
}

static void test_match_purchases(void **state)
{
    (void)state;
    int64_t at[UMG_FUNNEL_MAX_STEPS];
    umg_store_step_t a[] = {INS(T0 + H), EV(T0 + 2 * H, W_COINS), PUR(T0 + 3 * H, W_GEMS)};
    umg_funnel_step_t f[2] = {F_INSTALL, F_PURCHASE};
    assert_int_equal(match(f, 2, 7 * DAY, a, 3, at), 2); /* any purchase */
    assert_int_equal(at[1], T0 + 3 * H);
    f[1] = F_PGEMS;
    assert_int_equal(match(f, 2, 7 * DAY, a, 3, at), 2); /* a purchase of that name */
    f[1] = F_PCOINS;
    assert_int_equal(match(f, 2, 7 * DAY, a, 3, at), 1); /* coins was an in-app event, not a purchase */
    f[1] = (umg_funnel_step_t){UMG_FUNNEL_EVENT, W_COINS};
    assert_int_equal(match(f, 2, 7 * DAY, a, 3, at), 2); /* event:<name>: the in-app event */
    assert_int_equal(at[1], T0 + 2 * H);
    f[1] = F_GEMS;
    assert_int_equal(match(f, 2, 7 * DAY, a, 3, at), 2); /* event:<name>: a purchase of that name too */
    assert_int_equal(at[1], T0 + 3 * H);
}

/* ------------------------------------------------------------- parameters */

typedef struct perr_s {
    const char *from, *to, *steps, *window, *group_by, *format;
    const char *code, *field, *msg;
} perr_t;

static umg_slice_t sl(const char *s)
{
    return s != NULL ? umg_slice(s, strlen(s)) : UMG_SLICE_NULL;
}

static int parse(const char *from, const char *to, const char *steps, const char *window, const char *group_by,
                 const char *format, umg_funnel_t **f, umg_query_error_t *err)
{
    umg_funnel_params_t p = {sl(from), sl(to), sl(steps), sl(window), sl(group_by), sl(format)};
    return umg_funnel_parse(&p, f, err);
}

static void test_parse_errors(void **state)
{
    (void)state;
    static const char *ok = "install,event:signup";
    const perr_t cases[] = {
        {NULL, "2026-11-19", ok, NULL, NULL, NULL, "required", "from", NULL},
        {"2026-11-19", "", ok, NULL, NULL, NULL, "required", "to", NULL},
        {"2026-11-31", "2026-12-01", ok, NULL, NULL, NULL, "invalid_value", "from", NULL},
        {"2026-11-19", "2026-11-18", ok, NULL, NULL, NULL, "invalid_value", "to", "to must not be before from"},
        {"2025-11-19", "2026-11-20", ok, NULL, NULL, NULL, "range_too_large", "to", NULL},
        {"2026-11-19", "2026-11-19", NULL, NULL, NULL, NULL, "required", "steps", NULL},
        {"2026-11-19", "2026-11-19", "install", NULL, NULL, NULL, "invalid_value", "steps",
         "a funnel has at least 2 steps"},
        {"2026-11-19", "2026-11-19",
         "install,purchase,install,purchase,install,purchase,install,purchase,install,"
         "purchase,install",
         NULL, NULL, NULL, "invalid_value", "steps", "a funnel has at most 10 steps"},
        {"2026-11-19", "2026-11-19", "install,signup", NULL, NULL, NULL, "invalid_value", "steps",
         "unknown step \"signup\" (install, purchase, purchase:<name> or event:<name>)"},
        {"2026-11-19", "2026-11-19", "install,event:", NULL, NULL, NULL, "invalid_value", "steps", NULL},
        {"2026-11-19", "2026-11-19", "install,,purchase", NULL, NULL, NULL, "invalid_value", "steps",
         "steps has an empty item"},
        {"2026-11-19", "2026-11-19", ok, "0d", NULL, NULL, "invalid_value", "window",
         "window is Nd or Nh, from 1h to 90d"},
        {"2026-11-19", "2026-11-19", ok, "91d", NULL, NULL, "invalid_value", "window", NULL},
        {"2026-11-19", "2026-11-19", ok, "2161h", NULL, NULL, "invalid_value", "window", NULL},
        {"2026-11-19", "2026-11-19", ok, "7", NULL, NULL, "invalid_value", "window", NULL},
        {"2026-11-19", "2026-11-19", ok, "1w", NULL, NULL, "invalid_value", "window", NULL},
        {"2026-11-19", "2026-11-19", ok, "", NULL, NULL, "invalid_value", "window", NULL},
        {"2026-11-19", "2026-11-19", ok, "-1d", NULL, NULL, "invalid_value", "window", NULL},
        {"2026-11-19", "2026-11-19", ok, NULL, "os", NULL, "invalid_value", "group_by", "unknown dimension \"os\""},
        {"2026-11-19", "2026-11-19", ok, NULL, "source,source", NULL, "invalid_value", "group_by", NULL},
        {"2026-11-19", "2026-11-19", ok, NULL, NULL, "xml", "invalid_value", "format", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const perr_t *c = &cases[i];
        umg_funnel_t *f = NULL;
        umg_query_error_t err;
        int rc = parse(c->from, c->to, c->steps, c->window, c->group_by, c->format, &f, &err);
        if (rc != UMG_EINVAL) {
            fail_msg("case %zu: rc %d", i, rc);
        }
        assert_string_equal(err.code, c->code);
        assert_string_equal(err.field, c->field);
        if (c->msg != NULL) {
            assert_string_equal(err.message, c->msg);
        }
        assert_null(f);
    }
    static const char *good[] = {"1h", "2160h", "90d", "1d", "36h"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        umg_funnel_t *f = NULL;
        umg_query_error_t err;
        assert_int_equal(parse("2026-11-19", "2026-11-19", "install, purchase:gems ,event:a b", good[i],
                               "day,source,campaign,adset,ad,site,country,platform", "csv", &f, &err),
                         UMG_OK);
        assert_true(umg_funnel_is_csv(f));
        umg_funnel_free(f);
    }
}

/* ------------------------------------------------------------------ runs */

typedef struct fdev_s {
    uint64_t key;
    uint32_t dims[UMG_RD_N];
    size_t n;
    umg_store_step_t tl[8];
} fdev_t;

static fdev_t devs[16];
static size_t ndevs;

static int fake_string(void *ctx, uint32_t id, umg_slice_t *out)
{
    (void)ctx;
    if (id >= NWORDS) {
        return UMG_ENOENT;
    }
    *out = umg_slice(words[id], strlen(words[id]));
    return UMG_OK;
}

static int fake_lookup(void *ctx, umg_slice_t s, uint32_t *id)
{
    (void)ctx;
    for (uint32_t i = 0; i < NWORDS; i++) {
        if (strlen(words[i]) == s.len && memcmp(words[i], s.ptr, s.len) == 0) {
            *id = i;
            return UMG_OK;
        }
    }
    return UMG_ENOENT;
}

/* split: every device to the first context (0), or every third one to the second (1), as a scan on two
 * threads shares them; the part each went to, for fake_device to check */
static int split;
static int part_of[sizeof(devs) / sizeof(devs[0])];

static int fake_scan(void *ctx, umg_funnel_device_cb fn, void *const fn_ctx[2])
{
    (void)ctx;
    for (size_t i = 0; i < ndevs; i++) {
        part_of[i] = split && i % 3 == 1;
        int rc = fn(fn_ctx[part_of[i]], devs[i].key, devs[i].tl, devs[i].n);
        if (rc != 0) {
            return rc;
        }
    }
    return UMG_OK;
}

static int fake_device(void *ctx, int part, uint64_t key, uint32_t dims[UMG_RD_N])
{
    (void)ctx;
    for (size_t i = 0; i < ndevs; i++) {
        if (devs[i].key == key) {
            assert_int_equal(part, part_of[i]);
            memcpy(dims, devs[i].dims, sizeof(devs[i].dims));
            return key == 99 ? UMG_ENOENT : UMG_OK;
        }
    }
    return UMG_ENOENT;
}

static fdev_t *dev(uint32_t source, uint32_t country)
{
    fdev_t *d = &devs[ndevs++];
    memset(d, 0, sizeof(*d));
    d->key = ndevs;
    d->dims[UMG_RD_SOURCE] = source;
    d->dims[UMG_RD_COUNTRY] = country;
    d->dims[UMG_RD_PLATFORM] = W_ANDROID;
    return d;
}

static void add(fdev_t *d, umg_store_step_t s)
{
    d->tl[d->n++] = s;
}

/*
 * Six devices on 2026-11-19 and -20 (UTC): installs, signups after 10, 20,
 * 30 and 40 minutes, purchases of gems after 1 and 3 hours; one signs up
 * before installing, one installs before the period.
 */
static void some_devices(void)
{
    ndevs = 0;
    fdev_t *d = dev(W_META, W_US);
    add(d, INS(T0 + H));
    add(d, EV(T0 + H + 600 * S, W_SIGNUP));
    add(d, PUR(T0 + 2 * H + 600 * S, W_GEMS));
    d = dev(W_META, W_DE);
    add(d, INS(T0 + 2 * H));
    add(d, EV(T0 + 2 * H + 1200 * S + 500000, W_SIGNUP)); /* 1200.5 s: 1200 whole seconds */
    d = dev(W_GOOGLE, W_US);
    add(d, INS(T0 + DAY + H));
    add(d, EV(T0 + DAY + H + 1800 * S, W_SIGNUP));
    add(d, PUR(T0 + DAY + 4 * H + 1800 * S, W_GEMS));
    d = dev(0, W_US); /* organic */
    add(d, INS(T0 + DAY + 2 * H));
    add(d, EV(T0 + DAY + 2 * H + 2400 * S, W_SIGNUP));
    d = dev(W_META, W_US);
    add(d, EV(T0 + 3 * H, W_SIGNUP));
    add(d, INS(T0 + 4 * H));
    d = dev(W_META, W_US);
    add(d, INS(T0 - H));
    add(d, EV(T0 + H, W_SIGNUP));
}

static umg_funnel_input_t input(const umg_tz_t *tz)
{
    umg_funnel_input_t in = {.app = "app_1",
                             .timezone = "UTC",
                             .tz = tz,
                             .string = fake_string,
                             .lookup = fake_lookup,
                             .scan = fake_scan,
                             .device = fake_device};
    return in;
}

static char *run(const char *steps, const char *window, const char *group_by, const char *format)
{
    umg_funnel_t *f;
    umg_query_error_t err;
    const umg_tz_t *tz;
    umg_tz_cache_t *tzc;
    assert_int_equal(umg_tz_cache_new(&tzc), UMG_OK);
    assert_int_equal(umg_tz_cache_get(tzc, "UTC", &tz), UMG_OK);
    assert_int_equal(parse("2026-11-19", "2026-11-20", steps, window, group_by, format, &f, &err), UMG_OK);
    umg_funnel_input_t in = input(tz);
    umg_buf_t out[2] = {{0}, {0}};
    for (split = 0; split < 2; split++) { /* the same answer with the devices shared by two parts */
        assert_int_equal(umg_funnel_run(f, &in, &out[split]), UMG_OK);
    }
    split = 0;
    assert_int_equal(out[0].len, out[1].len);
    assert_memory_equal(out[0].ptr, out[1].ptr, out[0].len);
    umg_funnel_free(f);
    umg_tz_cache_free(tzc);
    char *s = strndup(out[0].ptr, out[0].len);
    umg_buf_free(&out[0]);
    umg_buf_free(&out[1]);
    return s;
}

#define HEAD(steps, window, group_by)                                                                                  \
    "{\"app\":\"app_1\",\"from\":\"2026-11-19\",\"to\":\"2026-11-20\",\"timezone\":\"UTC\",\"steps\":" steps           \
    ",\"window\":" window ",\"group_by\":" group_by

static void test_json_totals(void **state)
{
    (void)state;
    some_devices();
    char *s = run("install,event:signup,purchase:gems", NULL, NULL, NULL);
    /* 5 enter (the one installed before the period does not); 4 sign up (10, 20, 30, 40 min: lower median
     * 1200 s); 2 buy (3600 s and 10800 s after signing up: lower median 3600) */
    const char *steps = "\"steps\":[{\"step\":\"install\",\"devices\":5,\"conversion\":1,\"step_conversion\":1,"
                        "\"median_seconds\":null},"
                        "{\"step\":\"event:signup\",\"devices\":4,\"conversion\":0.80000000000000004,"
                        "\"step_conversion\":0.80000000000000004,\"median_seconds\":1200},"
                        "{\"step\":\"purchase:gems\",\"devices\":2,\"conversion\":0.40000000000000002,"
                        "\"step_conversion\":0.5,\"median_seconds\":3600}]";
    char want[2048];
    snprintf(want, sizeof(want),
             HEAD("[\"install\",\"event:signup\",\"purchase:gems\"]", "\"7d\",\"window_seconds\":604800",
                  "[]") ",\"rows\":[{%s}],\"totals\":{%s}}\n",
             steps, steps);
    assert_string_equal(s, want);
    free(s);

    /* a window of 1 h: the purchases (2 h and 3 h after installing) fall out */
    s = run("install,purchase", "1h", NULL, NULL);
    assert_non_null(strstr(s, "\"window\":\"1h\",\"window_seconds\":3600,"));
    assert_non_null(strstr(s, "\"totals\":{\"steps\":[{\"step\":\"install\",\"devices\":5,\"conversion\":1,"
                              "\"step_conversion\":1,\"median_seconds\":null},{\"step\":\"purchase\",\"devices\":0,"
                              "\"conversion\":0,\"step_conversion\":0,\"median_seconds\":null}]}}\n"));
    free(s);

    /* a name never seen: nobody reaches it, nor the steps after; conversions after it are null */
    s = run("install,event:tutorial,purchase", NULL, NULL, NULL);
    assert_non_null(strstr(s, "\"totals\":{\"steps\":[{\"step\":\"install\",\"devices\":5,\"conversion\":1,"
                              "\"step_conversion\":1,\"median_seconds\":null},{\"step\":\"event:tutorial\","
                              "\"devices\":0,\"conversion\":0,\"step_conversion\":0,\"median_seconds\":null},"
                              "{\"step\":\"purchase\",\"devices\":0,\"conversion\":0,\"step_conversion\":null,"
                              "\"median_seconds\":null}]}}\n"));
    free(s);

    /* nobody enters: every ratio is null */
    ndevs = 0;
    s = run("install,purchase", NULL, "source", NULL);
    assert_string_equal(s, HEAD("[\"install\",\"purchase\"]", "\"7d\",\"window_seconds\":604800",
                                "[\"source\"]") ",\"rows\":[],\"totals\":{\"steps\":[{\"step\":\"install\","
                                                "\"devices\":0,\"conversion\":null,\"step_conversion\":null,"
                                                "\"median_seconds\":null},{\"step\":\"purchase\",\"devices\":0,"
                                                "\"conversion\":null,\"step_conversion\":null,"
                                                "\"median_seconds\":null}]}}\n");
    free(s);
}

static void test_json_groups(void **state)
{
    (void)state;
    some_devices();
    char *s = run("install,event:signup", NULL, "source,day", NULL);
    /* rows by source ("" first) then day; the device that signed up first is meta's on day 1 with no signup */
    assert_string_equal(
        s, HEAD("[\"install\",\"event:signup\"]", "\"7d\",\"window_seconds\":604800",
                "[\"source\",\"day\"]") ",\"rows\":["
                                        "{\"source\":\"\",\"day\":\"2026-11-20\",\"steps\":[{\"step\":\"install\","
                                        "\"devices\":1,\"conversion\":1,"
                                        "\"step_conversion\":1,\"median_seconds\":null},{\"step\":\"event:signup\","
                                        "\"devices\":1,\"conversion\":1,"
                                        "\"step_conversion\":1,\"median_seconds\":2400}]},"
                                        "{\"source\":\"google\",\"day\":\"2026-11-20\",\"steps\":[{\"step\":"
                                        "\"install\",\"devices\":1,"
                                        "\"conversion\":1,\"step_conversion\":1,\"median_seconds\":null},{\"step\":"
                                        "\"event:signup\",\"devices\":1,"
                                        "\"conversion\":1,\"step_conversion\":1,\"median_seconds\":1800}]},"
                                        "{\"source\":\"meta\",\"day\":\"2026-11-19\",\"steps\":[{\"step\":\"install\","
                                        "\"devices\":3,"
                                        "\"conversion\":1,\"step_conversion\":1,\"median_seconds\":null},{\"step\":"
                                        "\"event:signup\",\"devices\":2,"
                                        "\"conversion\":0.66666666666666663,\"step_conversion\":0.66666666666666663,"
                                        "\"median_seconds\":600}]}],"
                                        "\"totals\":{\"steps\":[{\"step\":\"install\",\"devices\":5,\"conversion\":1,"
                                        "\"step_conversion\":1,"
                                        "\"median_seconds\":null},{\"step\":\"event:signup\",\"devices\":4,"
                                        "\"conversion\":0.80000000000000004,"
                                        "\"step_conversion\":0.80000000000000004,\"median_seconds\":1200}]}}\n");
    free(s);

    /* a device whose state is gone groups under "" */
    some_devices();
    devs[0].key = 99;
    s = run("install,event:signup", NULL, "country", NULL);
    assert_non_null(strstr(s, "\"rows\":[{\"country\":\"\",\"steps\":[{\"step\":\"install\",\"devices\":1,"));
    assert_non_null(strstr(s, "},{\"country\":\"DE\",\"steps\":[{\"step\":\"install\",\"devices\":1,"));
    assert_non_null(strstr(s, "},{\"country\":\"US\",\"steps\":[{\"step\":\"install\",\"devices\":3,"));
    free(s);
}

static void test_csv(void **state)
{
    (void)state;
    some_devices();
    char *s = run("install,event:signup,purchase", NULL, "source", "csv");
    assert_string_equal(s, "source,step,devices,conversion,step_conversion,median_seconds\n"
                           ",install,1,1,1,\n"
                           ",event:signup,1,1,1,2400\n"
                           ",purchase,0,0,0,\n"
                           "google,install,1,1,1,\n"
                           "google,event:signup,1,1,1,1800\n"
                           "google,purchase,1,1,1,10800\n"
                           "meta,install,3,1,1,\n"
                           "meta,event:signup,2,0.66666666666666663,0.66666666666666663,600\n"
                           "meta,purchase,1,0.33333333333333331,0.5,3600\n"
                           "total,install,5,1,1,\n"
                           "total,event:signup,4,0.80000000000000004,0.80000000000000004,1200\n"
                           "total,purchase,2,0.40000000000000002,0.5,3600\n");
    free(s);
    s = run("install, event:signup", NULL, "", "csv");
    assert_string_equal(s, "step,devices,conversion,step_conversion,median_seconds\n"
                           "install,5,1,1,\n"
                           "event:signup,4,0.80000000000000004,0.80000000000000004,1200\n");
    free(s);
}

/* The entry day is the local day in the app's zone; the period's edges are local midnights. */
static void test_time_zone(void **state)
{
    (void)state;
    umg_tz_t *tz;
    assert_int_equal(umg_tz_parse_posix("X", UMG_SLICE("<+02>-2"), &tz), UMG_OK);
    ndevs = 0;
    fdev_t *d = dev(W_META, W_US);
    add(d, INS(T0 - 2 * H)); /* 2026-11-19 00:00 local: in */
    add(d, EV(T0, W_SIGNUP));
    d = dev(W_META, W_US);
    add(d, INS(T0 + DAY - 2 * H)); /* 2026-11-20 00:00 local */
    d = dev(W_META, W_US);
    add(d, INS(T0 + 2 * DAY - 2 * H)); /* 2026-11-21 00:00 local: after the period */
    d = dev(W_META, W_US);
    add(d, INS(T0 - 2 * H - 1)); /* 2026-11-18 23:59:59.999999 local: before */
    umg_funnel_t *f;
    umg_query_error_t err;
    assert_int_equal(parse("2026-11-19", "2026-11-20", "install,event:signup", NULL, "day", "csv", &f, &err), UMG_OK);
    umg_funnel_input_t in = input(tz);
    umg_buf_t out = {0};
    assert_int_equal(umg_funnel_run(f, &in, &out), UMG_OK);
    assert_string_equal(out.ptr, "day,step,devices,conversion,step_conversion,median_seconds\n"
                                 "2026-11-19,install,1,1,1,\n"
                                 "2026-11-19,event:signup,1,1,1,7200\n"
                                 "2026-11-20,install,1,1,1,\n"
                                 "2026-11-20,event:signup,0,0,0,\n"
                                 "total,install,2,1,1,\n"
                                 "total,event:signup,1,0.5,0.5,7200\n");
    umg_buf_free(&out);
    umg_funnel_free(f);
    umg_tz_free(tz);
}

/* Medians over many devices: the lower median of each group's seconds, with repeats. */
static void test_medians(void **state)
{
    (void)state;
    static const int secs[] = {5, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5}; /* sorted 1 1 2 3 4 5 5 5 5 6 9: 5 */
    ndevs = 0;
    for (size_t i = 0; i < sizeof(secs) / sizeof(secs[0]); i++) {
        fdev_t *d = dev(i < 4 ? W_META : W_GOOGLE, W_US); /* meta: 5 1 4 1 -> 1 (lower); google: 5 9 2 6 5 3 5 */
        add(d, INS(T0 + (int64_t)i * H));
        add(d, EV(T0 + (int64_t)i * H + secs[i] * S, W_SIGNUP));
    }
    char *s = run("install,event:signup", NULL, "source", "csv");
    assert_string_equal(s, "source,step,devices,conversion,step_conversion,median_seconds\n"
                           "google,install,7,1,1,\n"
                           "google,event:signup,7,1,1,5\n"
                           "meta,install,4,1,1,\n"
                           "meta,event:signup,4,1,1,1\n"
                           "total,install,11,1,1,\n"
                           "total,event:signup,11,1,1,5\n");
    free(s);
}

static void test_out_of_memory(void **state)
{
    (void)state;
    some_devices();
    const umg_tz_t *tz;
    umg_tz_cache_t *tzc;
    assert_int_equal(umg_tz_cache_new(&tzc), UMG_OK);
    assert_int_equal(umg_tz_cache_get(tzc, "UTC", &tz), UMG_OK);
    for (int k = 0; k < 2; k++) {
        for (long n = 1;; n++) {
            umg_funnel_t *f = NULL;
            umg_query_error_t err;
            umg_funnel_input_t in = input(tz);
            umg_buf_t out = {0};
            umg_alloc_fail_after(n);
            int rc = parse("2026-11-19", "2026-11-20", "install,event:signup,purchase", NULL,
                           k ? "day,source,country" : NULL, k ? "csv" : NULL, &f, &err);
            rc = rc ? rc : umg_funnel_run(f, &in, &out);
            umg_alloc_fail_after(0);
            umg_funnel_free(f);
            umg_buf_free(&out);
            if (rc == UMG_OK) {
                break;
            }
            assert_int_equal(rc, UMG_ENOMEM);
        }
    }
    umg_tz_cache_free(tzc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_order_and_window),
        cmocka_unit_test(test_match_entry_period),
        cmocka_unit_test(test_match_repeats_and_ties),
        cmocka_unit_test(test_match_purchases),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_json_totals),
        cmocka_unit_test(test_json_groups),
        cmocka_unit_test(test_csv),
        cmocka_unit_test(test_time_zone),
        cmocka_unit_test(test_medians),
        cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
