/*
 * test_report.c - the multi-touch report builder (src/report).
 *
 * Every report written here is read back with the project's JSON parser
 * (simdjson, which also rejects ill-formed UTF-8), so the checks are on what
 * a client sees: the written credits add up exactly to the written total for
 * every model, organic conversions are counted but not credited, names are
 * interned by their bytes and outlive the caller's buffers, the output is
 * byte-identical for the same input, hostile names come out as valid JSON,
 * and each model gives the hand-computed credits of docs/attribution.md.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>

#include "umg_json.h"
#include "umg_report.h"

#define S_ INT64_C(1000000)
#define D_ (86400 * S_)
#define T0 INT64_C(1767225600000000) /* 2026-01-01T00:00:00Z */
#define MAXCH 128

/* ------------------------------------------------------------- the report as read back */

typedef struct chview_s {
    char name[64];
    size_t name_len;
    int64_t credit, share; /* in millionths */
    int64_t touches, journeys, converting, first, last;
} chview_t;

typedef struct view_s {
    char model[16];
    int64_t journeys, converting, non_converting, with_touches, truncated, touches;
    int64_t organic, organic_value, total; /* values in millionths */
    size_t nch;
    chview_t ch[MAXCH];
} view_t;

static int64_t field_i64(umg_json_val_t obj, const char *key)
{
    umg_json_val_t v;
    int64_t x = -1;
    assert_int_equal(umg_json_object_find(obj, key, strlen(key), &v), UMG_JSON_OK);
    assert_int_equal(umg_json_get_int64(v, &x), UMG_JSON_OK);
    return x;
}

/* A fixed-point number with 6 decimals as an exact count of millionths. */
static int64_t field_units(umg_json_val_t obj, const char *key)
{
    umg_json_val_t v;
    double d = -1;
    assert_int_equal(umg_json_object_find(obj, key, strlen(key), &v), UMG_JSON_OK);
    assert_int_equal(umg_json_get_double(v, &d), UMG_JSON_OK);
    return (int64_t)llround(d * 1e6);
}

static int read_channel(void *ctx, size_t index, umg_json_val_t val)
{
    view_t *w = ctx;
    assert_true(index < MAXCH);
    chview_t *c = &w->ch[index];
    umg_json_val_t v;
    const char *s;
    assert_int_equal(umg_json_object_find(val, "name", 4, &v), UMG_JSON_OK);
    assert_int_equal(umg_json_get_string(v, &s, &c->name_len), UMG_JSON_OK);
    assert_true(c->name_len < sizeof(c->name));
    memcpy(c->name, s, c->name_len);
    c->name[c->name_len] = '\0';
    c->credit = field_units(val, "credit");
    c->share = field_units(val, "share");
    c->touches = field_i64(val, "touches");
    c->journeys = field_i64(val, "journeys");
    c->converting = field_i64(val, "converting_journeys");
    c->first = field_i64(val, "first_touch");
    c->last = field_i64(val, "last_touch");
    assert_int_equal(umg_json_object_size(val), 8);
    w->nch = index + 1;
    return 0;
}

/* Parses the report in out (which must be exactly one JSON object) into w. */
static void read_view(const umg_buf_t *out, view_t *w)
{
    umg_json_parser_t *p = NULL;
    umg_json_val_t root, v, org;
    const char *s;
    size_t len;
    memset(w, 0, sizeof(*w));
    assert_int_equal(umg_json_parser_new(1 << 24, &p), UMG_JSON_OK);
    umg_json_err_t e = umg_json_parse(p, out->ptr, out->len, &root);
    if (e != UMG_JSON_OK) {
        print_error("not JSON (%s): %s\n", umg_json_strerror(e), out->ptr);
        fail();
    }
    assert_int_equal(umg_json_object_find(root, "model", 5, &v), UMG_JSON_OK);
    assert_int_equal(umg_json_get_string(v, &s, &len), UMG_JSON_OK);
    assert_true(len < sizeof(w->model));
    memcpy(w->model, s, len);
    w->journeys = field_i64(root, "journeys");
    w->converting = field_i64(root, "converting_journeys");
    w->non_converting = field_i64(root, "non_converting_journeys");
    w->with_touches = field_i64(root, "conversions_with_touches");
    w->truncated = field_i64(root, "truncated_journeys");
    w->touches = field_i64(root, "touches");
    w->total = field_units(root, "total");
    assert_int_equal(umg_json_object_find(root, "organic", 7, &org), UMG_JSON_OK);
    w->organic = field_i64(org, "conversions");
    w->organic_value = field_units(org, "value");
    assert_int_equal(umg_json_object_find(root, "channels", 8, &v), UMG_JSON_OK);
    assert_int_equal(umg_json_type(v), UMG_JSON_ARRAY);
    assert_int_equal(umg_json_array_foreach(v, read_channel, w), 0);
    assert_int_equal(umg_json_object_size(root), 10);
    umg_json_parser_free(p);
}

static const chview_t *find_ch(const view_t *w, const char *name)
{
    for (size_t i = 0; i < w->nch; i++) {
        if (w->ch[i].name_len == strlen(name) && memcmp(w->ch[i].name, name, w->ch[i].name_len) == 0) {
            return &w->ch[i];
        }
    }
    print_error("no channel '%s'\n", name);
    fail();
    return NULL;
}

/* The invariants every report keeps, whatever its input. */
static void check_view(const view_t *w)
{
    int64_t credit = 0, share = 0, touches = 0;
    for (size_t i = 0; i < w->nch; i++) {
        const chview_t *c = &w->ch[i];
        assert_true(c->credit >= 0 && c->share >= 0);
        credit += c->credit;
        share += c->share;
        touches += c->touches;
        assert_true(c->touches >= c->journeys && c->journeys >= c->converting);
        assert_true(c->converting >= c->first && c->converting >= c->last);
        if (i > 0) {
            /* Credit descending, then name ascending. */
            const chview_t *b = &w->ch[i - 1];
            size_t n = UMG_MIN(b->name_len, c->name_len);
            int cmp = memcmp(b->name, c->name, n);
            assert_true(b->credit > c->credit ||
                        (b->credit == c->credit && (cmp < 0 || (cmp == 0 && b->name_len < c->name_len))));
        }
    }
    assert_true(credit == w->total);
    assert_true(share == (w->total > 0 ? 1000000 : 0));
    assert_true(touches == w->touches);
    assert_true(w->journeys == w->converting + w->non_converting);
    assert_true(w->converting == w->with_touches + w->organic);
}

/* ------------------------------------------------------------------- journeys */

static uint64_t rnd_state;
static uint64_t rnd(void)
{
    uint64_t z = (rnd_state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Adds a journey written as "B>A>C", one letter a channel, touches one day apart ending at T0. */
static int add_str(umg_mta_report_t *r, const char *path, int converted, double value)
{
    umg_slice_t ch[32];
    int64_t ts[32];
    uint32_t n = 0;
    for (const char *c = path; *c; c++) {
        if (*c != '>') {
            ch[n] = umg_slice(c, 1);
            n++;
        }
    }
    for (uint32_t j = 0; j < n; j++) {
        ts[j] = T0 - (int64_t)(n - 1 - j) * D_;
    }
    return umg_mta_report_add(r, ch, ts, n, converted, value);
}

static umg_mta_report_t *new_report(umg_mta_model_t m, const umg_mta_opts_t *o)
{
    umg_mta_report_t *r = NULL;
    assert_int_equal(umg_mta_report_new(m, o, &r), UMG_OK);
    assert_non_null(r);
    return r;
}

static void write_view(umg_mta_report_t *r, view_t *w)
{
    umg_buf_t out = {0};
    assert_int_equal(umg_mta_report_json(r, &out), UMG_OK);
    read_view(&out, w);
    check_view(w);
    umg_buf_free(&out);
}

/*
 * Random journeys (seeded): 0..7 touches over nch channels named "ch<i>" whose
 * names live in a heap buffer freed right after each add; a third convert;
 * with revenue, values of 0.00..99.99. Returns the value the model shares.
 */
static double add_random(umg_mta_report_t *r, uint64_t seed, uint32_t nch, size_t n, int revenue)
{
    double expect = 0;
    rnd_state = seed;
    for (size_t i = 0; i < n; i++) {
        uint32_t k = (uint32_t)(rnd() % 8);
        char *names = malloc(8 * 16);
        umg_slice_t ch[8];
        int64_t ts[8], t = T0;
        for (uint32_t j = 0; j < k; j++) {
            int len = snprintf(names + j * 16, 16, "ch%u", (unsigned)(rnd() % nch));
            ch[j] = umg_slice(names + j * 16, (size_t)len);
            t += (int64_t)(rnd() % (uint64_t)(10 * D_));
            ts[j] = t;
        }
        int conv = rnd() % 3 == 0;
        double v = revenue ? (double)(rnd() % 10000) / 100.0 : 1.0;
        assert_int_equal(umg_mta_report_add(r, ch, ts, k, conv, v), UMG_OK);
        memset(names, 'x', 8 * 16);
        free(names);
        expect += conv && k > 0 ? v : 0;
    }
    return expect;
}

/* ---------------------------------------------------------------------- tests */

static void test_params(void **state)
{
    (void)state;
    umg_mta_report_by_t by = (umg_mta_report_by_t)7;
    umg_mta_report_value_t val = (umg_mta_report_value_t)7;
    assert_int_equal(umg_mta_report_parse_by(UMG_SLICE("source"), &by), UMG_OK);
    assert_int_equal(by, UMG_MTA_REPORT_BY_SOURCE);
    assert_int_equal(umg_mta_report_parse_by(UMG_SLICE("campaign"), &by), UMG_OK);
    assert_int_equal(by, UMG_MTA_REPORT_BY_CAMPAIGN);
    assert_int_equal(umg_mta_report_parse_by(UMG_SLICE("Source"), &by), UMG_EINVAL);
    assert_int_equal(umg_mta_report_parse_by(UMG_SLICE("sourc"), &by), UMG_EINVAL);
    assert_int_equal(umg_mta_report_parse_by(UMG_SLICE(""), &by), UMG_EINVAL);
    assert_int_equal(by, UMG_MTA_REPORT_BY_CAMPAIGN);
    assert_int_equal(umg_mta_report_parse_value(UMG_SLICE("installs"), &val), UMG_OK);
    assert_int_equal(val, UMG_MTA_REPORT_VALUE_INSTALLS);
    assert_int_equal(umg_mta_report_parse_value(UMG_SLICE("revenue"), &val), UMG_OK);
    assert_int_equal(val, UMG_MTA_REPORT_VALUE_REVENUE);
    assert_int_equal(umg_mta_report_parse_value(UMG_SLICE("revenues"), &val), UMG_EINVAL);
    assert_string_equal(umg_mta_report_by_name(UMG_MTA_REPORT_BY_CAMPAIGN), "campaign");
    assert_string_equal(umg_mta_report_value_name(UMG_MTA_REPORT_VALUE_REVENUE), "revenue");
    assert_string_equal(umg_mta_report_by_name((umg_mta_report_by_t)9), "unknown");
    assert_string_equal(umg_mta_report_value_name((umg_mta_report_value_t)9), "unknown");
}

static void test_sums_every_model(void **state)
{
    (void)state;
    static const uint32_t nchs[] = {1, 3, 12, 18, 40};
    for (size_t c = 0; c < UMG_ARRAY_SIZE(nchs); c++) {
        for (int revenue = 0; revenue <= 1; revenue++) {
            for (int m = 0; m < UMG_MTA_MODELS; m++) {
                umg_mta_opts_t o;
                umg_mta_opts_default(&o);
                o.shapley_samples = 200;
                umg_mta_report_t *r = new_report((umg_mta_model_t)m, &o);
                double expect = add_random(r, 77 + c * 2 + (uint64_t)revenue, nchs[c], 2000, revenue);
                assert_int_equal(umg_mta_report_journeys(r), 2000);
                view_t w;
                write_view(r, &w);
                assert_string_equal(w.model, umg_mta_model_name((umg_mta_model_t)m));
                assert_int_equal(w.journeys, 2000);
                assert_true(w.nch <= nchs[c]);
                /* The written total is the shared value rounded to millionths. */
                assert_true(w.total == (int64_t)llround(expect * 1e6));
                umg_mta_report_free(r);
            }
        }
    }
}

static void test_organic(void **state)
{
    (void)state;
    for (int m = 0; m < UMG_MTA_MODELS; m++) {
        umg_mta_report_t *r = new_report((umg_mta_model_t)m, NULL);
        assert_int_equal(add_str(r, "", 1, 1.5), UMG_OK);
        assert_int_equal(add_str(r, "", 1, 2.25), UMG_OK);
        assert_int_equal(add_str(r, "", 1, 0), UMG_OK);
        assert_int_equal(add_str(r, "", 0, 99), UMG_OK); /* no touch, no conversion: a journey, nothing more */
        assert_int_equal(add_str(r, "a>b", 1, 4), UMG_OK);
        assert_int_equal(add_str(r, "b", 0, 7), UMG_OK);
        view_t w;
        write_view(r, &w);
        assert_int_equal(w.journeys, 6);
        assert_int_equal(w.converting, 4);
        assert_int_equal(w.non_converting, 2);
        assert_int_equal(w.with_touches, 1);
        assert_int_equal(w.organic, 3);
        assert_int_equal(w.organic_value, 3750000);
        assert_int_equal(w.total, 4000000);
        assert_int_equal(w.nch, 2);
        assert_int_equal(w.touches, 3);
        const chview_t *b = find_ch(&w, "b");
        assert_int_equal(b->touches, 2);
        assert_int_equal(b->journeys, 2);
        assert_int_equal(b->converting, 1);
        assert_int_equal(b->last, 1);
        assert_int_equal(b->first, 0);
        umg_mta_report_free(r);
    }
    /* Only organic conversions: nothing to share, no channel. */
    umg_mta_report_t *r = new_report(UMG_MTA_SHAPLEY, NULL);
    assert_int_equal(add_str(r, "", 1, 1), UMG_OK);
    view_t w;
    write_view(r, &w);
    assert_int_equal(w.total, 0);
    assert_int_equal(w.organic, 1);
    assert_int_equal(w.nch, 0);
    umg_mta_report_free(r);
    /* An empty report. */
    r = new_report(UMG_MTA_MARKOV, NULL);
    umg_buf_t out = {0};
    assert_int_equal(umg_mta_report_json(r, &out), UMG_OK);
    assert_string_equal(out.ptr, "{\"model\":\"markov\",\"journeys\":0,\"converting_journeys\":0,"
                                 "\"non_converting_journeys\":0,\"conversions_with_touches\":0,"
                                 "\"truncated_journeys\":0,\"touches\":0,"
                                 "\"organic\":{\"conversions\":0,\"value\":0.000000},"
                                 "\"total\":0.000000,\"channels\":[]}");
    umg_buf_free(&out);
    umg_mta_report_free(r);
}

static void test_interning(void **state)
{
    (void)state;
    umg_mta_report_t *r = new_report(UMG_MTA_LINEAR, NULL);
    /* Every name comes from a buffer the caller overwrites and frees right after the add. */
    static const char *const journeys[][4] = {
        {"meta", "google", "meta", NULL},
        {"Meta", NULL},
        {"google", "tiktok", NULL},
        {"", "meta", NULL},
        {"tiktok", NULL},
    };
    for (size_t i = 0; i < UMG_ARRAY_SIZE(journeys); i++) {
        umg_slice_t ch[4];
        uint32_t n = 0;
        for (; journeys[i][n] != NULL; n++) {
            size_t len = strlen(journeys[i][n]);
            char *copy = malloc(len + 1);
            memcpy(copy, journeys[i][n], len + 1);
            ch[n] = umg_slice(copy, len);
        }
        assert_int_equal(umg_mta_report_add(r, ch, NULL, n, 1, 1), UMG_OK);
        for (uint32_t j = 0; j < n; j++) {
            memset((char *)ch[j].ptr, '#', ch[j].len);
            free((char *)ch[j].ptr);
        }
    }
    /* Names with a NUL byte inside are bytes like any other: "a\0b" is not "a". */
    umg_slice_t nul[2] = {umg_slice("a\0b", 3), umg_slice("a", 1)};
    assert_int_equal(umg_mta_report_add(r, nul, NULL, 2, 0, 0), UMG_OK);
    view_t w;
    write_view(r, &w);
    assert_int_equal(w.nch, 7); /* meta, google, Meta, tiktok, "", "a\0b", "a" */
    const chview_t *meta = find_ch(&w, "meta");
    assert_int_equal(meta->touches, 3);
    assert_int_equal(meta->journeys, 2);
    assert_int_equal(meta->first, 1);
    assert_int_equal(meta->last, 2);
    /* linear: meta 2/3 + 1/2, google 1/3 + 1/2, Meta 1, tiktok 1/2 + 1, "" 1/2 */
    assert_int_equal(meta->credit, 1166667);
    assert_int_equal(find_ch(&w, "google")->credit, 833333);
    assert_int_equal(find_ch(&w, "Meta")->credit, 1000000);
    assert_int_equal(find_ch(&w, "tiktok")->credit, 1500000);
    assert_int_equal(find_ch(&w, "")->credit, 500000);
    assert_int_equal(find_ch(&w, "")->touches, 1);
    assert_int_equal(find_ch(&w, "a")->touches, 1);
    assert_int_equal(w.ch[6].name_len + w.ch[5].name_len, 4); /* "a" then "a\0b", both at credit 0 */
    assert_int_equal(w.ch[5].name_len, 1);
    assert_memory_equal(w.ch[6].name, "a\0b", 3);
    assert_int_equal(w.total, 5000000);
    umg_mta_report_free(r);

    /* Many channels: the table grows and every name keeps its id. */
    r = new_report(UMG_MTA_FIRST, NULL);
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < 3000; i++) {
            char name[16];
            int len = snprintf(name, sizeof(name), "campaign-%d", i);
            umg_slice_t s = umg_slice(name, (size_t)len);
            assert_int_equal(umg_mta_report_add(r, &s, NULL, 1, i % 2, 1), UMG_OK);
        }
    }
    umg_buf_t out = {0};
    assert_int_equal(umg_mta_report_json(r, &out), UMG_OK);
    assert_non_null(strstr(out.ptr, "{\"name\":\"campaign-1\",\"credit\":2.000000,\"share\":0.000667,\"touches\":2,"
                                    "\"journeys\":2,\"converting_journeys\":2,\"first_touch\":2,\"last_touch\":2}"));
    assert_non_null(strstr(out.ptr, "{\"name\":\"campaign-2998\",\"credit\":0.000000,\"share\":0.000000,"
                                    "\"touches\":2,\"journeys\":2,\"converting_journeys\":0,"));
    umg_buf_free(&out);
    umg_mta_report_free(r);
}

static void test_deterministic(void **state)
{
    (void)state;
    for (int m = 0; m < UMG_MTA_MODELS; m++) {
        umg_buf_t a = {0}, b = {0};
        umg_mta_report_t *r1 = new_report((umg_mta_model_t)m, NULL);
        umg_mta_report_t *r2 = new_report((umg_mta_model_t)m, NULL);
        add_random(r1, 4242, 20, 3000, 1);
        add_random(r2, 4242, 20, 3000, 1);
        assert_int_equal(umg_mta_report_json(r1, &a), UMG_OK);
        assert_int_equal(umg_mta_report_json(r2, &b), UMG_OK);
        assert_int_equal(a.len, b.len);
        assert_memory_equal(a.ptr, b.ptr, a.len);
        /* Writing again appends the same bytes; adding after a write works. */
        assert_int_equal(umg_mta_report_json(r1, &a), UMG_OK);
        assert_int_equal(a.len, 2 * b.len);
        assert_memory_equal(a.ptr + b.len, b.ptr, b.len);
        assert_int_equal(add_str(r1, "q>r", 1, 3), UMG_OK);
        umg_buf_reset(&a);
        assert_int_equal(umg_mta_report_json(r1, &a), UMG_OK);
        view_t w;
        read_view(&a, &w);
        check_view(&w);
        assert_int_equal(w.journeys, 3001);
        umg_buf_free(&a);
        umg_buf_free(&b);
        umg_mta_report_free(r1);
        umg_mta_report_free(r2);
    }
}

static void test_hostile_names(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t len;
        const char *out; /* what a JSON parser reads back */
    } names[] = {
        {"q\"uo\\te", 7, "q\"uo\\te"},
        {"ctl\x01\n\t\x1f\x7f", 8, "ctl\x01\n\t\x1f\x7f"},
        {"nul\0x", 5, "nul\0x"},
        {"\xc3\x91"
         "and\xc3\xba \xf0\x9f\x9a\x80",
         12,
         "\xc3\x91"
         "and\xc3\xba \xf0\x9f\x9a\x80"},
        {"bad\xff", 4, "bad\xef\xbf\xbd"},
        {"trunc\xe2\x82", 7, "trunc\xef\xbf\xbd"},                                         /* one maximal subpart */
        {"over\xc0\xaf", 6, "over\xef\xbf\xbd\xef\xbf\xbd"},                               /* overlong: two */
        {"sur\xed\xa0\x80", 6, "sur\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},                 /* surrogate: three */
        {"big\xf4\x90\x80\x80", 7, "big\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* above U+10FFFF */
        {"</script>\xe2\x80\xa8", 12, "</script>\xe2\x80\xa8"},
    };
    umg_mta_report_t *r = new_report(UMG_MTA_LAST, NULL);
    for (size_t i = 0; i < UMG_ARRAY_SIZE(names); i++) {
        umg_slice_t s = umg_slice(names[i].in, names[i].len);
        /* Credits 1, 2, 3, ... so the order of the output is known. */
        assert_int_equal(umg_mta_report_add(r, &s, NULL, 1, 1, (double)(i + 1)), UMG_OK);
    }
    view_t w;
    write_view(r, &w);
    assert_int_equal(w.nch, UMG_ARRAY_SIZE(names));
    for (size_t i = 0; i < UMG_ARRAY_SIZE(names); i++) {
        const chview_t *c = &w.ch[UMG_ARRAY_SIZE(names) - 1 - i];
        size_t want = strlen(names[i].out);
        if (i == 2) {
            want = 5;
        }
        assert_int_equal(c->name_len, want);
        assert_memory_equal(c->name, names[i].out, want);
        assert_int_equal(c->credit, (int64_t)(i + 1) * 1000000);
    }
    umg_mta_report_free(r);
}

/* The credit of channel `name`, in millionths, in a report over the journeys of `paths`. */
typedef struct jr_s {
    const char *path;
    int converted;
    double value;
} jr_t;

static void run_case(umg_mta_model_t m, const jr_t *js, size_t n, view_t *w)
{
    umg_mta_report_t *r = new_report(m, NULL);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(add_str(r, js[i].path, js[i].converted, js[i].value), UMG_OK);
    }
    write_view(r, w);
    umg_mta_report_free(r);
}

static void expect_credits(const view_t *w, const char *order, const int64_t *credit)
{
    assert_int_equal(w->nch, strlen(order));
    for (size_t i = 0; i < w->nch; i++) {
        if (w->ch[i].name[0] != order[i] || w->ch[i].credit != credit[i]) {
            print_error("model %s: #%zu is %s %lld, want %c %lld\n", w->model, i, w->ch[i].name,
                        (long long)w->ch[i].credit, order[i], (long long)credit[i]);
            fail();
        }
    }
}

static void test_hand_checked(void **state)
{
    (void)state;
    view_t w;
    /* docs/attribution.md: B>A>C>A>D worth 10. */
    static const jr_t bacad[] = {{"B>A>C>A>D", 1, 10}};
    run_case(UMG_MTA_FIRST, bacad, 1, &w);
    expect_credits(&w, "BACD", (const int64_t[]){10000000, 0, 0, 0});
    assert_int_equal(find_ch(&w, "A")->touches, 2);
    assert_int_equal(find_ch(&w, "A")->journeys, 1);
    assert_int_equal(find_ch(&w, "B")->first, 1);
    assert_int_equal(find_ch(&w, "D")->last, 1);
    assert_int_equal(w.ch[0].share, 1000000);
    run_case(UMG_MTA_LAST, bacad, 1, &w);
    expect_credits(&w, "DABC", (const int64_t[]){10000000, 0, 0, 0});
    run_case(UMG_MTA_LINEAR, bacad, 1, &w);
    expect_credits(&w, "ABCD", (const int64_t[]){4000000, 2000000, 2000000, 2000000});
    assert_int_equal(w.ch[0].share, 400000);
    /* position: B 4, D 4, A 2 * 10 * 0.2 / 3 = 4/3, C 2/3; rounding hands the missing unit to C (.67 > .33). */
    run_case(UMG_MTA_POSITION, bacad, 1, &w);
    expect_credits(&w, "BDAC", (const int64_t[]){4000000, 4000000, 1333333, 666667});
    assert_int_equal(w.ch[2].share + w.ch[3].share, 200000);
    /* Shapley: every channel is needed for the only conversion, so all four share it equally. */
    /* Markov: A goes on to C or D half the time each and C only back to A, so the chain converts with
     * probability 1; without C it converts half the time (RE 1/2), without A, B or D never (RE 1):
     * 10 / 3.5 each to A, B, D and 5 / 3.5 to C, the three missing units to the three .857 remainders. */
    run_case(UMG_MTA_MARKOV, bacad, 1, &w);
    expect_credits(&w, "ABDC", (const int64_t[]){2857143, 2857143, 2857143, 1428571});
    run_case(UMG_MTA_SHAPLEY, bacad, 1, &w);
    expect_credits(&w, "ABCD", (const int64_t[]){2500000, 2500000, 2500000, 2500000});

    /* time_decay: touches 14 d, 7 d and 0 d before the conversion weigh 1/4, 1/2, 1 -> 1/7, 2/7, 4/7 of 7. */
    static const jr_t decay[] = {{"X>Y>Z", 1, 7}};
    umg_mta_report_t *r = new_report(UMG_MTA_TIME_DECAY, NULL);
    umg_slice_t ch[3] = {UMG_SLICE("X"), UMG_SLICE("Y"), UMG_SLICE("Z")};
    int64_t ts[3] = {T0 - 14 * D_, T0 - 7 * D_, T0};
    assert_int_equal(umg_mta_report_add(r, ch, ts, 3, decay[0].converted, decay[0].value), UMG_OK);
    write_view(r, &w);
    expect_credits(&w, "ZYX", (const int64_t[]){4000000, 2000000, 1000000});
    umg_mta_report_free(r);

    /* Markov, hand-computed in test_attr.c: A>B>C converts, A and B>C do not -> A 0.2, B 0.4, C 0.4. */
    static const jr_t markov[] = {{"A>B>C", 1, 1}, {"A", 0, 1}, {"B>C", 0, 1}};
    run_case(UMG_MTA_MARKOV, markov, 3, &w);
    expect_credits(&w, "BCA", (const int64_t[]){400000, 400000, 200000});
    assert_int_equal(w.non_converting, 2);

    /* Shapley RATE game: 10 journeys each of {A}, {B}, {A,B} converting 2, 1, 4 -> A 5, B 2. */
    jr_t shap[60];
    size_t n = 0;
    for (int i = 0; i < 10; i++) {
        shap[n++] = (jr_t){"A", i < 2, 1};
        shap[n++] = (jr_t){"B", i < 1, 1};
        shap[n++] = (jr_t){i < 4 ? "A>B" : "B>A", i < 4, 1};
    }
    run_case(UMG_MTA_SHAPLEY, shap, n, &w);
    expect_credits(&w, "AB", (const int64_t[]){5000000, 2000000});
    assert_int_equal(w.ch[0].share, 714286); /* 5/7 = 0.7142857 */
    assert_int_equal(w.ch[1].share, 285714);

    /* Equal thirds: the unit left over goes to the first name. */
    static const jr_t thirds[] = {{"c>b>a", 1, 1}};
    run_case(UMG_MTA_LINEAR, thirds, 1, &w);
    expect_credits(&w, "abc", (const int64_t[]){333334, 333333, 333333});
    assert_int_equal(w.ch[0].share, 333334);
}

static void test_truncation(void **state)
{
    (void)state;
    char names[100][8];
    umg_slice_t ch[100];
    int64_t ts[100];
    for (int i = 0; i < 100; i++) {
        int len = snprintf(names[i], sizeof(names[i]), "t%02d", i);
        ch[i] = umg_slice(names[i], (size_t)len);
        ts[i] = T0 - (100 - i) * S_;
    }
    for (int m = 0; m < UMG_MTA_MODELS; m++) {
        umg_mta_report_t *r = new_report((umg_mta_model_t)m, NULL);
        assert_int_equal(umg_mta_report_add(r, ch, ts, 100, 1, 1), UMG_OK);
        assert_int_equal(umg_mta_report_add(r, ch, ts, UMG_MTA_REPORT_MAX_TOUCHES, 0, 0), UMG_OK);
        view_t w;
        write_view(r, &w);
        assert_int_equal(w.truncated, 1);
        assert_int_equal(w.touches, 2 * UMG_MTA_REPORT_MAX_TOUCHES);
        assert_int_equal(w.nch, 100); /* t36..t99 from the first journey, t00..t63 from the second */
        if (m == UMG_MTA_FIRST) {
            assert_string_equal(w.ch[0].name, "t36");
            assert_int_equal(w.ch[0].credit, 1000000);
        }
        assert_int_equal(find_ch(&w, "t35")->touches, 1);
        assert_int_equal(find_ch(&w, "t35")->converting, 0);
        assert_int_equal(find_ch(&w, "t36")->touches, 2);
        umg_mta_report_free(r);
    }
}

static void test_large_values(void **state)
{
    (void)state;
    /* Revenue above 9e9 loses decimals, never exactness: 2e13 is written with 2 decimals. */
    umg_mta_report_t *r = new_report(UMG_MTA_LINEAR, NULL);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(add_str(r, "a>b>c", 1, UMG_MTA_REPORT_MAX_VALUE), UMG_OK);
    }
    umg_buf_t out = {0};
    assert_int_equal(umg_mta_report_json(r, &out), UMG_OK);
    assert_non_null(strstr(out.ptr, "\"total\":20000000000000.00,"));
    assert_non_null(strstr(out.ptr, "{\"name\":\"a\",\"credit\":6666666666666.67,\"share\":0.333334,"));
    assert_non_null(strstr(out.ptr, "{\"name\":\"b\",\"credit\":6666666666666.67,\"share\":0.333333,"));
    assert_non_null(strstr(out.ptr, "{\"name\":\"c\",\"credit\":6666666666666.66,\"share\":0.333333,"));
    umg_mta_report_free(r);
    /* Beyond 9e15 no exact fixed point is left: UMG_ERANGE, out untouched. */
    r = new_report(UMG_MTA_FIRST, NULL);
    for (int i = 0; i < 10000; i++) {
        assert_int_equal(add_str(r, "a", 1, UMG_MTA_REPORT_MAX_VALUE), UMG_OK);
    }
    size_t len = out.len;
    assert_int_equal(umg_mta_report_json(r, &out), UMG_ERANGE);
    assert_int_equal(out.len, len);
    assert_int_equal(out.ptr[len], '\0');
    umg_buf_free(&out);
    umg_mta_report_free(r);
}

static void test_errors(void **state)
{
    (void)state;
    umg_mta_report_t *r = NULL;
    umg_mta_opts_t o;
    umg_mta_opts_default(&o);
    assert_int_equal(umg_mta_report_new(UMG_MTA_MODELS, NULL, &r), UMG_EINVAL);
    assert_int_equal(umg_mta_report_new(UMG_MTA_LINEAR, NULL, NULL), UMG_EINVAL);
    o.half_life_us = 0;
    assert_int_equal(umg_mta_report_new(UMG_MTA_TIME_DECAY, &o, &r), UMG_EINVAL);
    umg_mta_opts_default(&o);
    o.shapley_game = (umg_mta_shapley_game_t)5;
    assert_int_equal(umg_mta_report_new(UMG_MTA_SHAPLEY, &o, &r), UMG_EINVAL);
    assert_null(r);
    umg_mta_report_free(NULL);

    r = new_report(UMG_MTA_TIME_DECAY, NULL);
    umg_slice_t s = UMG_SLICE("a");
    int64_t ts = T0;
    assert_int_equal(umg_mta_report_add(NULL, &s, &ts, 1, 1, 1), UMG_EINVAL);
    assert_int_equal(umg_mta_report_add(r, NULL, &ts, 1, 1, 1), UMG_EINVAL);
    assert_int_equal(umg_mta_report_add(r, &s, NULL, 1, 1, 1), UMG_EINVAL); /* time_decay needs times */
    assert_int_equal(umg_mta_report_add(r, &s, &ts, 1, 1, -1), UMG_EINVAL);
    assert_int_equal(umg_mta_report_add(r, &s, &ts, 1, 1, NAN), UMG_EINVAL);
    assert_int_equal(umg_mta_report_add(r, &s, &ts, 1, 1, INFINITY), UMG_EINVAL);
    assert_int_equal(umg_mta_report_add(r, &s, &ts, 1, 1, UMG_MTA_REPORT_MAX_VALUE * 1.01), UMG_EINVAL);
    umg_slice_t nullname = {NULL, 3};
    assert_int_equal(umg_mta_report_add(r, &nullname, &ts, 1, 1, 1), UMG_EINVAL);
    char *longname = calloc(1, UMG_MTA_REPORT_MAX_NAME + 1);
    umg_slice_t ln = umg_slice(longname, UMG_MTA_REPORT_MAX_NAME + 1);
    assert_int_equal(umg_mta_report_add(r, &ln, &ts, 1, 1, 1), UMG_EINVAL);
    ln.len--;
    assert_int_equal(umg_mta_report_add(r, &ln, &ts, 1, 1, 1), UMG_OK);
    free(longname);
    assert_int_equal(umg_mta_report_journeys(r), 1);
    /* Not converted: the value is ignored, whatever it is. */
    assert_int_equal(umg_mta_report_add(r, &s, &ts, 1, 0, NAN), UMG_OK);
    /* No touch: neither channels nor times are read. */
    assert_int_equal(umg_mta_report_add(r, NULL, NULL, 0, 1, 1), UMG_OK);
    assert_int_equal(umg_mta_report_journeys(r), 3);
    assert_int_equal(umg_mta_report_json(r, NULL), UMG_EINVAL);
    assert_int_equal(umg_mta_report_json(NULL, NULL), UMG_EINVAL);
    assert_int_equal(umg_mta_report_journeys(NULL), 0);
    umg_mta_report_free(r);
    /* Other models do not need times. */
    r = new_report(UMG_MTA_POSITION, NULL);
    assert_int_equal(umg_mta_report_add(r, &s, NULL, 1, 1, 1), UMG_OK);
    umg_mta_report_free(r);
}

/*
 * More channels than the sampled Shapley's 16-bit lanes hold (its one-lane-at-a-time path)
 * and than the view above keeps: the credits are summed straight from the text.
 */
static void test_many_channels(void **state)
{
    (void)state;
    umg_mta_opts_t o;
    umg_mta_opts_default(&o);
    o.shapley_samples = 20;
    umg_mta_report_t *r = new_report(UMG_MTA_SHAPLEY, &o);
    for (int i = 0; i < 40000; i++) {
        char name[16], other[16];
        int len = snprintf(name, sizeof(name), "c%d", i), olen = snprintf(other, sizeof(other), "c%d", i / 2);
        umg_slice_t ch[2] = {umg_slice(name, (size_t)len), umg_slice(other, (size_t)olen)};
        assert_int_equal(umg_mta_report_add(r, ch, NULL, 1 + (uint32_t)(i % 2), i % 4 == 0, 1), UMG_OK);
    }
    umg_buf_t out = {0};
    assert_int_equal(umg_mta_report_json(r, &out), UMG_OK);
    int64_t sum = 0, n = 0;
    for (const char *p = strstr(out.ptr, "\"credit\":"); p != NULL; p = strstr(p + 1, "\"credit\":")) {
        sum += (int64_t)llround(strtod(p + 9, NULL) * 1e6);
        n++;
    }
    assert_int_equal(n, 40000);
    assert_non_null(strstr(out.ptr, "\"total\":10000.000000,"));
    assert_int_equal(sum, 10000000000);
    umg_buf_free(&out);
    umg_mta_report_free(r);
}

/* Out of memory at every allocation of add and json: an error, nothing half-done, nothing leaked. */
static void test_out_of_memory(void **state)
{
    (void)state;
    for (int m = 0; m < UMG_MTA_MODELS; m++) {
        size_t before = umg_alloc_bytes();
        int ok = 0;
        for (long fail_at = 1; fail_at < 400 && !ok; fail_at++) {
            umg_mta_report_t *r = NULL;
            umg_buf_t out = {0};
            assert_int_equal(umg_buf_append(&out, "x", 1), UMG_OK);
            umg_alloc_fail_after(fail_at);
            int rc = umg_mta_report_new((umg_mta_model_t)m, NULL, &r);
            size_t added = 0;
            for (int i = 0; i < 600 && rc == UMG_OK; i++) {
                char name[16];
                int len = snprintf(name, sizeof(name), "c%d", i % 100);
                umg_slice_t ch[2] = {umg_slice(name, (size_t)len), UMG_SLICE("common")};
                int64_t ts[2] = {T0, T0 + S_};
                rc = umg_mta_report_add(r, ch, ts, 2, i % 3 == 0, 1);
                added += rc == UMG_OK;
                assert_int_equal(umg_mta_report_journeys(r), added);
            }
            if (rc == UMG_OK) {
                rc = umg_mta_report_json(r, &out);
            }
            umg_alloc_fail_after(0);
            if (rc == UMG_OK) {
                ok = 1;
                view_t w;
                umg_buf_t body = {0};
                assert_int_equal(umg_buf_append(&body, out.ptr + 1, out.len - 1), UMG_OK);
                read_view(&body, &w);
                check_view(&w);
                assert_int_equal(w.journeys, 600);
                umg_buf_free(&body);
            } else {
                assert_int_equal(rc, UMG_ENOMEM);
                assert_string_equal(out.ptr, "x");
            }
            umg_buf_free(&out);
            umg_mta_report_free(r);
            assert_int_equal(umg_alloc_bytes(), before);
        }
        assert_true(ok);
    }
}

int main(void)
{
    umg_log_min_level = UMG_LOG_ERROR;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params),        cmocka_unit_test(test_sums_every_model),
        cmocka_unit_test(test_organic),       cmocka_unit_test(test_interning),
        cmocka_unit_test(test_deterministic), cmocka_unit_test(test_hostile_names),
        cmocka_unit_test(test_hand_checked),  cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_large_values),  cmocka_unit_test(test_errors),
        cmocka_unit_test(test_many_channels), cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
