/*
 * test_touch.c - unit tests for src/event/touch.c: link parameters (every
 * field, every reason a field is dropped, UUID lowercasing, the all-zero id,
 * lookback forms and bounds, retargeting forms), POST /v1/touches bodies
 * (valid batches, per-touch errors with their field paths, unknown members,
 * wrong types, invalid UTF-8, batch size, body shape, ts bounds), the stored
 * form (exact text, byte-identical round trips, encrypted PII) and the device
 * key order.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include "umg_core.h"
#include "umg_touch.h"

/* ---------------------------------------------------------------- helpers */

#define US_PER_S INT64_C(1000000)
#define MAX_BODY (1 << 20)

static umg_touch_decoder_t *dec;
static umg_touch_limits_t lim;
static int64_t now_us; /* 2026-11-27T10:00:00Z */

static int slice_is(umg_slice_t s, const char *lit)
{
    return s.len == strlen(lit) && (s.len == 0 || memcmp(s.ptr, lit, s.len) == 0);
}

#define assert_slice(s, lit)                                                                                           \
    do {                                                                                                               \
        if (!slice_is((s), (lit))) {                                                                                   \
            fail_msg("slice '%.*s' != '%s'", (int)(s).len, (s).ptr ? (s).ptr : "", (lit));                             \
        }                                                                                                              \
    } while (0)

/* --- link parameters: a fake query as name/value pairs in writable memory */

#define MAX_PARAMS 32
typedef struct query_s {
    int n;
    const char *name[MAX_PARAMS];
    char value[MAX_PARAMS][4096];
    size_t len[MAX_PARAMS];
    int malformed[MAX_PARAMS]; /* the getter reports a URL-decoding error */
    int calls;
} query_t;

static query_t q;

static void q_reset(void)
{
    memset(&q, 0, sizeof(q));
}

static void q_add_len(const char *name, const char *value, size_t len)
{
    assert_true(q.n < MAX_PARAMS && len < sizeof(q.value[0]));
    q.name[q.n] = name;
    memcpy(q.value[q.n], value, len);
    q.len[q.n] = len;
    q.n++;
}

static void q_add(const char *name, const char *value)
{
    q_add_len(name, value, strlen(value));
}

static int q_get(void *ctx, const char *name, umg_slice_t *value)
{
    query_t *qq = ctx;
    qq->calls++;
    for (int i = 0; i < qq->n; i++) {
        if (strcmp(qq->name[i], name) == 0) {
            if (qq->malformed[i]) {
                return UMG_EINVAL;
            }
            *value = umg_slice(qq->value[i], qq->len[i]);
            return UMG_OK;
        }
    }
    return UMG_ENOENT;
}

static umg_touch_t pt;
static umg_touch_error_t dropped[32];
static size_t ndropped;

static void run_params(void)
{
    memset(&pt, 0, sizeof(pt));
    ndropped = 99;
    umg_touch_from_params(&pt, q_get, &q, dropped, UMG_ARRAY_SIZE(dropped), &ndropped);
}

/* One parameter alone; it must be kept. */
static void param_ok(const char *name, const char *value)
{
    q_reset();
    q_add(name, value);
    run_params();
    if (ndropped != 0) {
        fail_msg("%s=%s dropped: %s (%s)", name, value, dropped[0].code, dropped[0].message);
    }
}

/* One parameter alone; it must be dropped with code. */
static void param_dropped_len(const char *name, const char *value, size_t len, const char *code)
{
    q_reset();
    q_add_len(name, value, len);
    run_params();
    if (ndropped != 1) {
        fail_msg("%s=%.*s was kept", name, (int)len, value);
    }
    assert_string_equal(dropped[0].code, code);
    assert_string_equal(dropped[0].field, name);
    assert_true(dropped[0].message[0] != '\0');
}

static void param_dropped(const char *name, const char *value, const char *code)
{
    param_dropped_len(name, value, strlen(value), code);
}

/* --- JSON bodies */

#define MAX_SEEN 1100
typedef struct seen_s {
    size_t n;
    int ok[MAX_SEEN];
    umg_touch_t t[MAX_SEEN];
    umg_touch_error_t err[MAX_SEEN];
} seen_t;

static seen_t seen;

static int collect(void *ctx, size_t index, umg_touch_t *t, const umg_touch_error_t *err)
{
    seen_t *s = ctx;
    assert_int_equal(index, s->n);
    assert_true(s->n < MAX_SEEN);
    assert_true((t == NULL) != (err == NULL));
    s->ok[s->n] = t != NULL;
    if (t != NULL) {
        s->t[s->n] = *t;
    } else {
        s->err[s->n] = *err;
    }
    s->n++;
    return 0;
}

static umg_touch_error_t body_err;

static int run_len(const char *body, size_t len)
{
    memset(&seen, 0, sizeof(seen));
    memset(&body_err, 0, sizeof(body_err));
    return umg_touch_decode(dec, body, len, &lim, collect, &seen, &body_err);
}

static int run(const char *body)
{
    return run_len(body, strlen(body));
}

/* A batch of one touch object (text of the object) */
static char bodybuf[1 << 16];
static const char *batch1(const char *touch)
{
    snprintf(bodybuf, sizeof(bodybuf), "{\"touches\":[%s]}", touch);
    return bodybuf;
}

/* A valid click with extra members spliced in. */
static char touchbuf[1 << 15];
static const char *click_with(const char *extra)
{
    snprintf(touchbuf, sizeof(touchbuf), "{\"type\":\"click\",\"ts\":1795773600000%s%s}", extra[0] ? "," : "", extra);
    return batch1(touchbuf);
}

static const umg_touch_t *ok_touch(const char *body)
{
    assert_int_equal(run(body), UMG_OK);
    assert_int_equal(seen.n, 1);
    if (!seen.ok[0]) {
        fail_msg("expected a valid touch, got %s at '%s': %s\n  body: %s", seen.err[0].code, seen.err[0].field,
                 seen.err[0].message, body);
    }
    return &seen.t[0];
}

static void expect_error_len(const char *body, size_t len, const char *code, const char *field)
{
    assert_int_equal(run_len(body, len), UMG_OK);
    assert_int_equal(seen.n, 1);
    if (seen.ok[0]) {
        fail_msg("expected %s at '%s', but the touch was valid\n  body: %s", code, field, body);
    }
    if (strcmp(seen.err[0].code, code) != 0 || strcmp(seen.err[0].field, field) != 0) {
        fail_msg("expected %s at '%s', got %s at '%s' (%s)\n  body: %s", code, field, seen.err[0].code,
                 seen.err[0].field, seen.err[0].message, body);
    }
    assert_true(seen.err[0].message[0] != '\0');
}

static void expect_error(const char *body, const char *code, const char *field)
{
    expect_error_len(body, strlen(body), code, field);
}

static char *encode(const umg_touch_t *t)
{
    static umg_buf_t out;
    umg_buf_reset(&out);
    assert_int_equal(umg_touch_encode_json(t, &out), UMG_OK);
    return out.ptr;
}

static int reset_limits(void **state)
{
    (void)state;
    lim = (umg_touch_limits_t){
        .now_us = now_us, .max_future_us = 600 * US_PER_S, .max_age_us = INT64_C(30) * 86400 * US_PER_S};
    return 0;
}

static int setup(void **state)
{
    (void)state;
    if (umg_time_parse_rfc3339("2026-11-27T10:00:00Z", 20, &now_us) != UMG_OK) {
        return -1;
    }
    return umg_touch_decoder_new(MAX_BODY, &dec);
}

static int teardown(void **state)
{
    (void)state;
    umg_touch_decoder_free(dec);
    dec = NULL;
    return 0;
}

/* ------------------------------------------------------- link parameters */

static void test_params_every_field(void **state)
{
    (void)state;
    q_reset();
    q_add("source", "meta");
    q_add("campaign", "Black Friday \xe2\x82\xac"); /* non-ASCII is fine */
    q_add("campaign_id", "c-17");
    q_add("adset", "as 1");
    q_add("ad", "ad\"1\"");
    q_add("site", "com.example.news");
    q_add("click_id", "clk-42");
    q_add("idfa", "6D92078A-8246-4BA4-AE5B-76104861E7DC");
    q_add("idfv", "e621e1f8-c36c-495a-93fc-0c247a3e6e5f");
    q_add("gaid", "38400000-8CF0-11BD-B23E-10B96E40000D");
    q_add("oaid", "a1b2c3d4e5");
    q_add("android_id", "9774d56d682e549c");
    q_add("custom_id", "u-1");
    q_add("lookback", "3d");
    q_add("retargeting", "1");
    q_add("deep_link", "myapp://product/42?x=1");
    q_add("sub1", "s1");
    q_add("sub2", "s2");
    q_add("sub3", "s3");
    q_add("sub4", "s4");
    q_add("sub5", "s5");
    q_add("redirect", "https://example.com/"); /* not a touch parameter: the caller's */
    run_params();
    assert_int_equal(ndropped, 0);
    assert_int_equal(q.calls, 21); /* every parameter asked for once */
    assert_slice(pt.source, "meta");
    assert_slice(pt.campaign, "Black Friday \xe2\x82\xac");
    assert_slice(pt.campaign_id, "c-17");
    assert_slice(pt.adset, "as 1");
    assert_slice(pt.ad, "ad\"1\"");
    assert_slice(pt.site, "com.example.news");
    assert_slice(pt.click_id, "clk-42");
    assert_slice(pt.idfa, "6d92078a-8246-4ba4-ae5b-76104861e7dc");
    assert_slice(pt.idfv, "e621e1f8-c36c-495a-93fc-0c247a3e6e5f");
    assert_slice(pt.gaid, "38400000-8cf0-11bd-b23e-10b96e40000d");
    assert_slice(pt.oaid, "a1b2c3d4e5");
    assert_slice(pt.android_id, "9774d56d682e549c");
    assert_slice(pt.custom_id, "u-1");
    assert_int_equal(pt.lookback_s, 3 * 86400);
    assert_int_equal(pt.retargeting, 1);
    assert_slice(pt.deep_link, "myapp://product/42?x=1");
    assert_slice(pt.sub[0], "s1");
    assert_slice(pt.sub[1], "s2");
    assert_slice(pt.sub[2], "s3");
    assert_slice(pt.sub[3], "s4");
    assert_slice(pt.sub[4], "s5");
    /* Upper-case ids are lowercased where they lie (the caller's writable copy). */
    assert_ptr_equal(pt.idfa.ptr, q.value[7]);
    assert_memory_equal(q.value[7], "6d92078a", 8);
    assert_ptr_equal(pt.idfv.ptr, q.value[8]);
}

static void test_params_server_fields_untouched(void **state)
{
    (void)state;
    umg_touch_t t;
    memset(&t, 0, sizeof(t));
    t.type = UMG_TOUCH_CLICK;
    t.ts_us = 123;
    t.received_us = 456;
    t.app_id = UMG_SLICE("app_1");
    t.ip = UMG_SLICE("203.0.113.7");
    t.user_agent = UMG_SLICE("UA");
    umg_uuid_v4(&t.touch_id);
    umg_uuid_t id = t.touch_id;
    /* Stale link fields from an earlier use are cleared. */
    t.source = UMG_SLICE("old");
    t.sub[4] = UMG_SLICE("old");
    t.lookback_s = 3600;
    t.retargeting = 1;
    q_reset();
    q_add("campaign", "c");
    umg_touch_from_params(&t, q_get, &q, NULL, 0, NULL);
    assert_int_equal(t.type, UMG_TOUCH_CLICK);
    assert_int_equal(t.ts_us, 123);
    assert_int_equal(t.received_us, 456);
    assert_slice(t.app_id, "app_1");
    assert_slice(t.ip, "203.0.113.7");
    assert_slice(t.user_agent, "UA");
    assert_memory_equal(t.touch_id.b, id.b, 16);
    assert_slice(t.campaign, "c");
    assert_int_equal(t.source.len, 0);
    assert_int_equal(t.sub[4].len, 0);
    assert_int_equal(t.lookback_s, 0);
    assert_int_equal(t.retargeting, 0);
}

static void test_params_empty_and_absent(void **state)
{
    (void)state;
    q_reset();
    run_params();
    assert_int_equal(ndropped, 0);
    assert_int_equal(pt.source.len, 0);
    assert_int_equal(umg_touch_device_key(&pt).len, 0); /* a touch needs no device id */
    q_reset();
    q_add("source", "");
    q_add("idfa", "");
    q_add("lookback", "");
    run_params();
    assert_int_equal(ndropped, 0);
    assert_int_equal(pt.source.len, 0);
    assert_int_equal(pt.idfa.len, 0);
    assert_int_equal(pt.lookback_s, 0);
}

static void test_params_drops(void **state)
{
    (void)state;
    char big[UMG_TOUCH_MAX_URL + 2];
    memset(big, 'a', sizeof(big));
    /* Lengths: 256 bytes kept, 257 dropped; deep_link 2048. */
    param_ok("campaign", (big[UMG_TOUCH_MAX_STR] = '\0', big));
    big[UMG_TOUCH_MAX_STR] = 'a';
    param_dropped_len("campaign", big, UMG_TOUCH_MAX_STR + 1, "too_long");
    param_dropped_len("sub5", big, UMG_TOUCH_MAX_STR + 1, "too_long");
    memcpy(big, "app://", 6);
    big[UMG_TOUCH_MAX_URL] = '\0';
    param_ok("deep_link", big);
    param_dropped_len("deep_link", big, UMG_TOUCH_MAX_URL + 1, "too_long");
    /* Control characters (C0, DEL, C1) and invalid UTF-8. */
    param_dropped("source", "a\nb", "invalid_value");
    param_dropped("source", "tab\there", "invalid_value");
    param_dropped("source", "del\x7f", "invalid_value");
    param_dropped("source", "c1\xc2\x85", "invalid_value");
    param_dropped_len("source", "nul\0x", 5, "invalid_value");
    param_dropped("source", "bad\xff", "invalid_utf8");
    param_dropped("source", "overlong\xc0\xaf", "invalid_utf8");
    param_dropped("source", "surrogate\xed\xa0\x80", "invalid_utf8");
    param_dropped("source", "truncated\xe2\x82", "invalid_utf8");
    param_dropped("campaign", "long enough to take the word path \xf4\x90\x80\x80", "invalid_utf8");
    param_ok("source", "Z\xc3\xbcrich \xf0\x9f\x98\x80 \xc2\xa0nbsp");
    /* UUIDs. */
    param_dropped("idfa", "not-a-uuid", "invalid_value");
    param_dropped("gaid", "38400000-8cf0-11bd-b23e-10b96e40000", "invalid_value");
    param_dropped("idfv", "38400000x8cf0-11bd-b23e-10b96e40000d", "invalid_value");
    /* The URL decoder's own failure. */
    q_reset();
    q_add("campaign", "x");
    q.malformed[0] = 1;
    run_params();
    assert_int_equal(ndropped, 1);
    assert_string_equal(dropped[0].code, "invalid_value");
    assert_string_equal(dropped[0].field, "campaign");
    assert_int_equal(pt.campaign.len, 0);
}

static void test_params_drops_keep_the_rest(void **state)
{
    (void)state;
    q_reset();
    q_add("source", "net");
    q_add("idfa", "nope");
    q_add("lookback", "59s");
    q_add("retargeting", "yes");
    q_add("deep_link", "/relative");
    q_add("sub2", "ok");
    run_params();
    assert_int_equal(ndropped, 4);
    /* Reported in parameter order. */
    assert_string_equal(dropped[0].field, "idfa");
    assert_string_equal(dropped[1].field, "lookback");
    assert_string_equal(dropped[2].field, "retargeting");
    assert_string_equal(dropped[3].field, "deep_link");
    for (size_t i = 0; i < ndropped; i++) {
        assert_string_equal(dropped[i].code, "invalid_value");
    }
    assert_slice(pt.source, "net");
    assert_slice(pt.sub[1], "ok");
    assert_int_equal(pt.idfa.len, 0);
    assert_int_equal(pt.lookback_s, 0);
    assert_int_equal(pt.retargeting, 0);
    assert_int_equal(pt.deep_link.len, 0);

    /* At most max_dropped are reported. */
    umg_touch_error_t two[2];
    size_t n = 99;
    umg_touch_from_params(&pt, q_get, &q, two, 2, &n);
    assert_int_equal(n, 2);
    assert_string_equal(two[1].field, "lookback");
    umg_touch_from_params(&pt, q_get, &q, NULL, 0, &n);
    assert_int_equal(n, 0);
    assert_slice(pt.source, "net");
}

static void test_params_zero_uuid(void **state)
{
    (void)state;
    const char *zero = "00000000-0000-0000-0000-000000000000";
    const char *names[] = {"idfa", "idfv", "gaid", "oaid"};
    for (size_t i = 0; i < UMG_ARRAY_SIZE(names); i++) {
        q_reset();
        q_add(names[i], zero);
        run_params();
        assert_int_equal(ndropped, 0);
        assert_int_equal(umg_touch_device_key(&pt).len, 0);
    }
    /* android_id and custom_id have no opted-out value: zeros are an id. */
    param_ok("android_id", "0000000000000000");
    assert_slice(pt.android_id, "0000000000000000");
    /* Already lowercase: borrowed, not written. */
    param_ok("gaid", "38400000-8cf0-11bd-b23e-10b96e40000d");
    assert_ptr_equal(pt.gaid.ptr, q.value[0]);
}

static void test_params_lookback(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int64_t seconds; /* 0: dropped */
    } cases[] = {
        {"7d", 7 * 86400},
        {"12h", 12 * 3600},
        {"90m", 90 * 60},
        {"3600s", 3600},
        {"3600", 3600},
        {"1m", 60},
        {"60", 60},
        {"60s", 60},
        {"30d", 30 * 86400},
        {"720h", 720 * 3600},
        {"2592000", 2592000},
        {"7D", 7 * 86400},
        {"12H", 12 * 3600},
        {"007d", 7 * 86400},
        {"59", 0},
        {"59s", 0},
        {"0", 0},
        {"0d", 0},
        {"2592001", 2592000}, /* longer windows are taken as 30 days */
        {"31d", 2592000},
        {"45d", 2592000},
        {"721h", 2592000},
        {"9999999999d", 2592000},
        {"99999999999d", 0}, /* more than 10 digits */
        {"7x", 0},
        {"d", 0},
        {"7dd", 0},
        {"-7d", 0},
        {"+7d", 0},
        {"7 d", 0},
        {"1.5h", 0},
        {"7d ", 0},
    };
    for (size_t i = 0; i < UMG_ARRAY_SIZE(cases); i++) {
        if (cases[i].seconds != 0) {
            param_ok("lookback", cases[i].text);
            if (pt.lookback_s != cases[i].seconds) {
                fail_msg("lookback=%s gave %lld", cases[i].text, (long long)pt.lookback_s);
            }
        } else {
            param_dropped("lookback", cases[i].text, "invalid_value");
            assert_int_equal(pt.lookback_s, 0);
        }
    }
}

static void test_params_retargeting(void **state)
{
    (void)state;
    param_ok("retargeting", "1");
    assert_int_equal(pt.retargeting, 1);
    param_ok("retargeting", "true");
    assert_int_equal(pt.retargeting, 1);
    param_ok("retargeting", "0");
    assert_int_equal(pt.retargeting, 0);
    param_ok("retargeting", "false");
    assert_int_equal(pt.retargeting, 0);
    const char *bad[] = {"2", "yes", "TRUE", "01", "1 ", "-1"};
    for (size_t i = 0; i < UMG_ARRAY_SIZE(bad); i++) {
        param_dropped("retargeting", bad[i], "invalid_value");
        assert_int_equal(pt.retargeting, 0);
    }
}

static void test_params_deep_link(void **state)
{
    (void)state;
    const char *good[] = {"myapp://product/42", "https://example.com/a?b=c", "fb123:x", "x-app+v1.2://p",
                          "mailto:a@example.com"};
    const char *bad[] = {
        "/relative",         "product/42",          "://x",         "1app://x",         "my_app://x", "myapp:",
        "myapp://has space", "javascript:alert(1)", "JavaScript:x", "data:text/html,x", "vbscript:x", "nocolon"};
    for (size_t i = 0; i < UMG_ARRAY_SIZE(good); i++) {
        param_ok("deep_link", good[i]);
        assert_slice(pt.deep_link, good[i]);
    }
    for (size_t i = 0; i < UMG_ARRAY_SIZE(bad); i++) {
        param_dropped("deep_link", bad[i], "invalid_value");
    }
}

/* ---------------------------------------------------------------- decode */

static void test_decode_valid_batch(void **state)
{
    (void)state;
    const char *body =
        "{\"touches\":["
        "{\"type\":\"click\",\"ts\":1795773540123,\"source\":\"net\",\"campaign\":\"c1\",\"campaign_id\":\"17\","
        "\"adset\":\"as\",\"ad\":\"a\",\"site\":\"s\",\"click_id\":\"k1\","
        "\"device\":{\"idfa\":\"6D92078A-8246-4BA4-AE5B-76104861E7DC\",\"idfv\":\"e621e1f8-c36c-495a-93fc-"
        "0c247a3e6e5f\","
        "\"gaid\":\"00000000-0000-0000-0000-000000000000\",\"oaid\":\"o1\",\"android_id\":\"a1\",\"custom_id\":\"u1\"},"
        "\"ip\":\"2001:db8::1\",\"user_agent\":\"Mozilla/5.0 (iPhone)\",\"lookback\":\"12h\",\"retargeting\":true,"
        "\"deep_link\":\"myapp://p/1\",\"sub1\":\"1\",\"sub2\":\"2\",\"sub3\":\"3\",\"sub4\":\"4\",\"sub5\":\"5\"},"
        "{\"type\":\"impression\",\"ts\":\"2026-11-27T09:59:00.5+01:00\",\"ip\":\"203.0.113.7\",\"lookback\":86400,"
        "\"retargeting\":0},"
        "{\"type\":\"click\",\"ts\":1795773600000,\"gaid\":\"38400000-8CF0-11BD-B23E-10B96E40000D\","
        "\"retargeting\":1,\"lookback\":null,\"source\":null,\"device\":null}"
        "]}";
    assert_int_equal(run(body), UMG_OK);
    assert_int_equal(seen.n, 3);
    assert_true(seen.ok[0] && seen.ok[1] && seen.ok[2]);
    const umg_touch_t *t = &seen.t[0];
    assert_int_equal(t->type, UMG_TOUCH_CLICK);
    assert_int_equal(t->ts_us, INT64_C(1795773540123000));
    assert_int_equal(t->received_us, now_us);
    assert_slice(t->source, "net");
    assert_slice(t->campaign, "c1");
    assert_slice(t->campaign_id, "17");
    assert_slice(t->adset, "as");
    assert_slice(t->ad, "a");
    assert_slice(t->site, "s");
    assert_slice(t->click_id, "k1");
    assert_slice(t->idfa, "6d92078a-8246-4ba4-ae5b-76104861e7dc");
    assert_slice(t->idfv, "e621e1f8-c36c-495a-93fc-0c247a3e6e5f");
    assert_int_equal(t->gaid.len, 0); /* zeros are absent */
    assert_slice(t->oaid, "o1");
    assert_slice(t->android_id, "a1");
    assert_slice(t->custom_id, "u1");
    assert_slice(t->ip, "2001:db8::1");
    assert_slice(t->user_agent, "Mozilla/5.0 (iPhone)");
    assert_int_equal(t->lookback_s, 12 * 3600);
    assert_int_equal(t->retargeting, 1);
    assert_slice(t->deep_link, "myapp://p/1");
    assert_slice(t->sub[0], "1");
    assert_slice(t->sub[4], "5");
    assert_int_equal(t->app_id.len, 0);

    t = &seen.t[1];
    assert_int_equal(t->type, UMG_TOUCH_IMPRESSION);
    assert_int_equal(t->ts_us, now_us - 3600 * US_PER_S - 60 * US_PER_S + 500000);
    assert_int_equal(t->lookback_s, 86400);
    assert_int_equal(t->retargeting, 0);
    assert_int_equal(umg_touch_device_key(t).len, 0); /* IP only: valid */

    t = &seen.t[2];
    assert_slice(t->gaid, "38400000-8cf0-11bd-b23e-10b96e40000d"); /* top-level ids are taken too */
    assert_int_equal(t->retargeting, 1);
    assert_int_equal(t->lookback_s, 0);

    /* The empty batch is valid. */
    assert_int_equal(run("{\"touches\":[]}"), UMG_OK);
    assert_int_equal(seen.n, 0);
}

static void test_decode_errors(void **state)
{
    (void)state;
    /* Required members. */
    expect_error(batch1("{\"ts\":1795773600000}"), "required", "type");
    expect_error(batch1("{\"type\":null,\"ts\":1795773600000}"), "required", "type");
    expect_error(batch1("{\"type\":\"click\"}"), "required", "ts");
    expect_error(batch1("{\"type\":\"click\",\"ts\":null}"), "required", "ts");
    /* Wrong values and types. */
    expect_error(batch1("{\"type\":\"install\",\"ts\":1}"), "invalid_value", "type");
    expect_error(batch1("{\"type\":\"Click\",\"ts\":1}"), "invalid_value", "type");
    expect_error(batch1("{\"type\":1,\"ts\":1}"), "invalid_type", "type");
    expect_error(click_with("\"source\":5"), "invalid_type", "source");
    expect_error(click_with("\"campaign\":true"), "invalid_type", "campaign");
    expect_error(click_with("\"sub3\":[]"), "invalid_type", "sub3");
    expect_error(click_with("\"device\":[]"), "invalid_type", "device");
    expect_error(click_with("\"device\":{\"gaid\":7}"), "invalid_type", "device.gaid");
    expect_error(click_with("\"device\":{\"gaid\":\"nope\"}"), "invalid_value", "device.gaid");
    expect_error(click_with("\"idfa\":\"nope\""), "invalid_value", "idfa");
    expect_error(click_with("\"ts2\":1"), "unknown_field", "ts2");
    expect_error(click_with("\"Source\":\"x\""), "unknown_field", "Source");
    expect_error(click_with("\"sub6\":\"x\""), "unknown_field", "sub6");
    expect_error(click_with("\"sub0\":\"x\""), "unknown_field", "sub0");
    expect_error(click_with("\"redirect\":\"https://x\""), "unknown_field", "redirect");
    expect_error(click_with("\"device\":{\"platform\":\"ios\"}"), "unknown_field", "device.platform");
    expect_error(click_with("\"device\":{\"idfa\":null,\"x\":1}"), "unknown_field", "device.x");
    /* Stored-only members are unknown in request bodies (touch_id is allowed: retries dedupe on it). */
    expect_error(click_with("\"touch_id\":\"0f8fad5b\""), "invalid_value", "touch_id");
    expect_error(click_with("\"app_id\":\"a\""), "unknown_field", "app_id");
    expect_error(click_with("\"received_at\":1"), "unknown_field", "received_at");
    expect_error(click_with("\"lookback_s\":3600"), "unknown_field", "lookback_s");
    /* Repeated members, including an id at the top and in device. */
    expect_error(click_with("\"source\":\"a\",\"source\":\"b\""), "invalid_value", "source");
    expect_error(click_with("\"gaid\":\"38400000-8cf0-11bd-b23e-10b96e40000d\","
                            "\"device\":{\"gaid\":\"38400000-8cf0-11bd-b23e-10b96e40000d\"}"),
                 "invalid_value", "device.gaid");
    expect_error(batch1("{\"type\":\"click\",\"type\":\"click\",\"ts\":1}"), "invalid_value", "type");
    /* retargeting and lookback. */
    expect_error(click_with("\"retargeting\":2"), "invalid_value", "retargeting");
    expect_error(click_with("\"retargeting\":\"1\""), "invalid_type", "retargeting");
    expect_error(click_with("\"retargeting\":1.0"), "invalid_type", "retargeting");
    expect_error(click_with("\"retargeting\":18446744073709551615"), "invalid_value", "retargeting");
    expect_error(click_with("\"lookback\":59"), "invalid_value", "lookback");
    expect_error(click_with("\"lookback\":-60"), "invalid_value", "lookback");
    expect_error(click_with("\"lookback\":3600.0"), "invalid_type", "lookback");
    expect_error(click_with("\"lookback\":true"), "invalid_type", "lookback");
    /* Longer windows are taken as 30 days, in either form. */
    assert_int_equal(ok_touch(click_with("\"lookback\":\"45d\""))->lookback_s, 30 * 86400);
    assert_int_equal(ok_touch(click_with("\"lookback\":2592001"))->lookback_s, 30 * 86400);
    assert_int_equal(ok_touch(click_with("\"lookback\":18446744073709551615"))->lookback_s, 30 * 86400);
    expect_error(click_with("\"lookback\":\"soon\""), "invalid_value", "lookback");
    /* ip. */
    expect_error(click_with("\"ip\":\"999.1.1.1\""), "invalid_value", "ip");
    expect_error(click_with("\"ip\":\"fe80::1%eth0\""), "invalid_value", "ip");
    expect_error(click_with("\"ip\":\" 1.2.3.4\""), "invalid_value", "ip");
    expect_error(click_with("\"ip\":1234"), "invalid_type", "ip");
    assert_slice(ok_touch(click_with("\"ip\":\"::ffff:192.0.2.1\""))->ip, "::ffff:192.0.2.1");
    /* Strings: control characters, limits. */
    expect_error(click_with("\"campaign\":\"a\\u0000b\""), "invalid_value", "campaign");
    expect_error(click_with("\"user_agent\":\"a\\nb\""), "invalid_value", "user_agent");
    expect_error(click_with("\"source\":\"\\u0085\""), "invalid_value", "source");
    expect_error(click_with("\"deep_link\":\"relative/path\""), "invalid_value", "deep_link");
    char big[UMG_TOUCH_MAX_UA + 64];
    snprintf(big, sizeof(big), "\"user_agent\":\"%0*d\"", UMG_TOUCH_MAX_UA, 0);
    assert_int_equal(ok_touch(click_with(big))->user_agent.len, UMG_TOUCH_MAX_UA);
    snprintf(big, sizeof(big), "\"user_agent\":\"%0*d\"", UMG_TOUCH_MAX_UA + 1, 0);
    expect_error(click_with(big), "too_long", "user_agent");
    snprintf(big, sizeof(big), "\"site\":\"%0*d\"", UMG_TOUCH_MAX_STR + 1, 0);
    expect_error(click_with(big), "too_long", "site");
    /* Escapes count after unescaping. */
    snprintf(big, sizeof(big), "\"site\":\"%0*d\\u00e9\"", UMG_TOUCH_MAX_STR - 2, 0);
    assert_int_equal(ok_touch(click_with(big))->site.len, UMG_TOUCH_MAX_STR);
    /* ts forms. */
    expect_error(click_with("\"x\":1"), "unknown_field", "x");
    expect_error(batch1("{\"type\":\"click\",\"ts\":1.7e12}"), "invalid_type", "ts");
    expect_error(batch1("{\"type\":\"click\",\"ts\":\"yesterday\"}"), "invalid_value", "ts");
    expect_error(batch1("{\"type\":\"click\",\"ts\":-1}"), "invalid_value", "ts");
    expect_error(batch1("{\"type\":\"click\",\"ts\":18446744073709551615}"), "invalid_value", "ts");
    /* A batch element that is not an object. */
    expect_error(batch1("7"), "invalid_type", "");
    /* Field paths of a long unknown member are cut to fit. */
    char longkey[300];
    memset(longkey, 'k', sizeof(longkey));
    snprintf(big, sizeof(big), "\"device\":{\"%.*s\":1}", 200, longkey);
    assert_int_equal(run(click_with(big)), UMG_OK);
    assert_string_equal(seen.err[0].code, "unknown_field");
    assert_int_equal(strlen(seen.err[0].field), sizeof(seen.err[0].field) - 1);
    assert_memory_equal(seen.err[0].field, "device.kkk", 10);
}

static void test_decode_mixed_batch(void **state)
{
    (void)state;
    const char *body = "{\"touches\":[{\"type\":\"click\",\"ts\":1795773600000},"
                       "{\"type\":\"click\",\"ts\":1795773600000,\"device\":{\"idfv\":\"x\"}},"
                       "null,"
                       "{\"type\":\"impression\",\"ts\":1795773600000,\"bogus\":1},"
                       "{\"type\":\"impression\",\"ts\":1795773600000,\"sub1\":\"ok\"}]}";
    assert_int_equal(run(body), UMG_OK);
    assert_int_equal(seen.n, 5);
    assert_true(seen.ok[0]);
    assert_false(seen.ok[1]);
    assert_string_equal(seen.err[1].field, "device.idfv");
    assert_false(seen.ok[2]);
    assert_string_equal(seen.err[2].code, "invalid_type");
    assert_false(seen.ok[3]);
    assert_string_equal(seen.err[3].code, "unknown_field");
    assert_string_equal(seen.err[3].field, "bogus");
    assert_true(seen.ok[4]);
    assert_slice(seen.t[4].sub[0], "ok");
}

static void test_decode_invalid_utf8(void **state)
{
    (void)state;
    /* Bad bytes in one touch reject that touch only, naming the field. */
    const char *body = "{\"touches\":[{\"type\":\"click\",\"ts\":1795773600000,\"campaign\":\"ok\"},"
                       "{\"type\":\"click\",\"ts\":1795773600000,\"campaign\":\"bad\xff\"},"
                       "{\"type\":\"click\",\"ts\":1795773600000,\"device\":{\"custom_id\":\"\xc0\xaf\"}},"
                       "{\"type\":\"click\",\"ts\":1795773600000,\"k\xed\xa0\x80\":1},"
                       "{\"type\":\"click\",\"ts\":1795773600000,\"source\":\"Z\xc3\xbcrich\"}]}";
    assert_int_equal(run(body), UMG_OK);
    assert_int_equal(seen.n, 5);
    assert_true(seen.ok[0]);
    assert_false(seen.ok[1]);
    assert_string_equal(seen.err[1].code, "invalid_utf8");
    assert_string_equal(seen.err[1].field, "campaign");
    assert_false(seen.ok[2]);
    assert_string_equal(seen.err[2].code, "invalid_utf8");
    assert_string_equal(seen.err[2].field, "device.custom_id");
    assert_false(seen.ok[3]);
    assert_string_equal(seen.err[3].code, "invalid_utf8");
    assert_true(seen.ok[4]);
    assert_slice(seen.t[4].source, "Z\xc3\xbcrich");
    /* A repaired body treats DEL in strings as a repaired byte. */
    expect_error(batch1("{\"type\":\"click\",\"ts\":1795773600000,\"sub1\":\"\x7f\",\"sub2\":\"\xff\"}"),
                 "invalid_utf8", "sub1");
    /* In a clean body DEL is a control character. */
    expect_error(click_with("\"sub1\":\"\x7f\""), "invalid_value", "sub1");
    /* Bad bytes outside strings: the body is not JSON. */
    assert_int_equal(run("{\"touches\":[]}\xff"), UMG_EPARSE);
    assert_string_equal(body_err.code, "invalid_json");
}

static void test_decode_ts_bounds(void **state)
{
    (void)state;
    char extra[128];
    int64_t fut_ms = (now_us + 600 * US_PER_S) / 1000;
    int64_t old_ms = (now_us - INT64_C(30) * 86400 * US_PER_S) / 1000;
    snprintf(extra, sizeof(extra), "{\"type\":\"click\",\"ts\":%lld}", (long long)fut_ms);
    assert_int_equal(ok_touch(batch1(extra))->ts_us, fut_ms * 1000);
    snprintf(extra, sizeof(extra), "{\"type\":\"click\",\"ts\":%lld}", (long long)fut_ms + 1);
    expect_error(batch1(extra), "ts_in_future", "ts");
    snprintf(extra, sizeof(extra), "{\"type\":\"click\",\"ts\":%lld}", (long long)old_ms);
    assert_int_equal(ok_touch(batch1(extra))->ts_us, old_ms * 1000);
    snprintf(extra, sizeof(extra), "{\"type\":\"click\",\"ts\":%lld}", (long long)old_ms - 1);
    expect_error(batch1(extra), "ts_too_old", "ts");
    expect_error(batch1("{\"type\":\"click\",\"ts\":\"2026-11-27T10:10:00.000001Z\"}"), "ts_in_future", "ts");
    assert_non_null(ok_touch(batch1("{\"type\":\"click\",\"ts\":\"2026-11-27T10:10:00Z\"}")));
    expect_error(batch1("{\"type\":\"click\",\"ts\":0}"), "ts_too_old", "ts");
    /* Stored touches are not held to the window: they were checked when received. */
    lim.stored = 1;
    assert_int_equal(run("{\"type\":\"click\",\"ts\":\"2020-01-01T00:00:00.000000Z\"}"), UMG_OK);
    assert_true(seen.ok[0]);
}

static int too_many_cb_calls;
static int count_cb(void *ctx, size_t index, umg_touch_t *t, const umg_touch_error_t *err)
{
    (void)ctx, (void)index, (void)t, (void)err;
    too_many_cb_calls++;
    return 0;
}

static void test_decode_body_errors(void **state)
{
    (void)state;
    static char body[64 * 1024];
    size_t n = 0;
    n += (size_t)snprintf(body + n, sizeof(body) - n, "{\"touches\":[");
    for (int i = 0; i < UMG_TOUCH_MAX_BATCH; i++) {
        n += (size_t)snprintf(body + n, sizeof(body) - n, "%s{\"type\":\"click\",\"ts\":1795773600000}", i ? "," : "");
    }
    snprintf(body + n, sizeof(body) - n, "]}");
    assert_int_equal(run(body), UMG_OK);
    assert_int_equal(seen.n, UMG_TOUCH_MAX_BATCH);
    snprintf(body + n, sizeof(body) - n, ",{}]}");
    too_many_cb_calls = 0;
    umg_touch_error_t err;
    assert_int_equal(umg_touch_decode(dec, body, strlen(body), &lim, count_cb, NULL, &err), UMG_ERANGE);
    assert_int_equal(too_many_cb_calls, 0);
    assert_string_equal(err.code, "too_many_touches");
    /* err may be NULL. */
    assert_int_equal(umg_touch_decode(dec, body, strlen(body), &lim, count_cb, NULL, NULL), UMG_ERANGE);

    const char *not_json[] = {
        "", "   ", "{", "nope", "{\"touches\":[}", "{\"touches\":[]}{}", "{\"touches\":[\"\\ud800\"]}"};
    for (size_t i = 0; i < UMG_ARRAY_SIZE(not_json); i++) {
        assert_int_equal(run(not_json[i]), UMG_EPARSE);
        assert_string_equal(body_err.code, "invalid_json");
        assert_true(body_err.message[0] != '\0');
    }
    const char *wrong_shape[] = {"[]",
                                 "7",
                                 "null",
                                 "{}",
                                 "{\"touches\":{}}",
                                 "{\"touches\":5}",
                                 "{\"type\":\"click\",\"ts\":1795773600000}",
                                 "{\"touches\":[],\"sent_at\":1}",
                                 "{\"touches\":[],\"touches\":[]}"};
    for (size_t i = 0; i < UMG_ARRAY_SIZE(wrong_shape); i++) {
        assert_int_equal(run(wrong_shape[i]), UMG_EPARSE);
        assert_string_equal(body_err.code, "invalid_json");
    }
    assert_int_equal(run("{\"touches\":[],\"sent_at\":1}"), UMG_EPARSE);
    assert_string_equal(body_err.field, "sent_at");

    /* A body over the decoder's limit. */
    umg_touch_decoder_t *small;
    assert_int_equal(umg_touch_decoder_new(16, &small), UMG_OK);
    const char *b = "{\"touches\":[{\"type\":\"click\"}]}";
    assert_int_equal(umg_touch_decode(small, b, strlen(b), &lim, count_cb, NULL, &err), UMG_ERANGE);
    assert_string_equal(err.code, "body_too_large");
    umg_touch_decoder_free(small);
    umg_touch_decoder_free(NULL);
    assert_int_equal(umg_touch_decoder_new(0, &small), UMG_EINVAL);
}

static int stop_cb(void *ctx, size_t index, umg_touch_t *t, const umg_touch_error_t *err)
{
    (void)t, (void)err;
    *(size_t *)ctx = index;
    return index == 1 ? 42 : 0;
}

static void test_decode_callback_stops(void **state)
{
    (void)state;
    const char *b = "{\"touches\":[{\"type\":\"click\",\"ts\":1795773600000},{},{\"type\":\"click\",\"ts\":1}]}";
    size_t last = 99;
    assert_int_equal(umg_touch_decode(dec, b, strlen(b), &lim, stop_cb, &last, NULL), 42);
    assert_int_equal(last, 1);
}

static void test_decode_alloc_failure(void **state)
{
    (void)state;
    /* Lowercasing a UUID from JSON copies it into the decoder's arena. */
    umg_touch_decoder_t *d;
    assert_int_equal(umg_touch_decoder_new(MAX_BODY, &d), UMG_OK);
    const char *b = "{\"touches\":[{\"type\":\"click\",\"ts\":1795773600000,"
                    "\"idfa\":\"6D92078A-8246-4BA4-AE5B-76104861E7DC\"}]}";
    int rc = UMG_ENOMEM;
    for (long n = 1; rc == UMG_ENOMEM && n < 64; n++) {
        umg_alloc_fail_after(n);
        memset(&seen, 0, sizeof(seen));
        rc = umg_touch_decode(d, b, strlen(b), &lim, collect, &seen, NULL);
        umg_alloc_fail_after(0);
        assert_true(rc == UMG_OK || rc == UMG_ENOMEM);
    }
    assert_int_equal(rc, UMG_OK);
    assert_slice(seen.t[0].idfa, "6d92078a-8246-4ba4-ae5b-76104861e7dc");
    umg_touch_decoder_free(d);
}

/* ---------------------------------------------------------------- encode */

static const char full_line[] =
    "{\"touch_id\":\"0f8fad5b-d9cb-469f-a165-70867728950e\",\"app_id\":\"app_7\",\"type\":\"click\","
    "\"ts\":\"2026-11-27T09:59:00.123000Z\",\"received_at\":\"2026-11-27T10:00:00.000001Z\",\"source\":\"net\","
    "\"campaign\":\"Black \\\"Friday\\\"\",\"campaign_id\":\"17\",\"adset\":\"as\",\"ad\":\"a\",\"site\":\"s\","
    "\"click_id\":\"k1\",\"device\":{\"idfa\":\"6d92078a-8246-4ba4-ae5b-76104861e7dc\","
    "\"idfv\":\"e621e1f8-c36c-495a-93fc-0c247a3e6e5f\",\"gaid\":\"38400000-8cf0-11bd-b23e-10b96e40000d\","
    "\"android_id\":\"a1\",\"oaid\":\"o1\",\"custom_id\":\"u1\"},\"ip\":\"203.0.113.7\","
    "\"user_agent\":\"Mozilla/5.0 \\\\o/ Z\xc3\xbcrich\",\"lookback_s\":259200,\"retargeting\":true,"
    "\"deep_link\":\"myapp://p/1\",\"sub1\":\"1\",\"sub2\":\"2\",\"sub3\":\"3\",\"sub4\":\"4\",\"sub5\":\"5\"}";

static void test_encode_exact(void **state)
{
    (void)state;
    umg_touch_t t;
    memset(&t, 0, sizeof(t));
    assert_int_equal(umg_uuid_parse("0f8fad5b-d9cb-469f-a165-70867728950e", 36, &t.touch_id), UMG_OK);
    t.app_id = UMG_SLICE("app_7");
    t.type = UMG_TOUCH_CLICK;
    t.ts_us = now_us - 60 * US_PER_S + 123000;
    t.received_us = now_us + 1;
    t.source = UMG_SLICE("net");
    t.campaign = UMG_SLICE("Black \"Friday\"");
    t.campaign_id = UMG_SLICE("17");
    t.adset = UMG_SLICE("as");
    t.ad = UMG_SLICE("a");
    t.site = UMG_SLICE("s");
    t.click_id = UMG_SLICE("k1");
    t.idfa = UMG_SLICE("6d92078a-8246-4ba4-ae5b-76104861e7dc");
    t.idfv = UMG_SLICE("e621e1f8-c36c-495a-93fc-0c247a3e6e5f");
    t.gaid = UMG_SLICE("38400000-8cf0-11bd-b23e-10b96e40000d");
    t.oaid = UMG_SLICE("o1");
    t.android_id = UMG_SLICE("a1");
    t.custom_id = UMG_SLICE("u1");
    t.ip = UMG_SLICE("203.0.113.7");
    t.user_agent = UMG_SLICE("Mozilla/5.0 \\o/ Z\xc3\xbcrich");
    t.lookback_s = 3 * 86400;
    t.retargeting = 1;
    t.deep_link = UMG_SLICE("myapp://p/1");
    t.sub[0] = UMG_SLICE("1");
    t.sub[1] = UMG_SLICE("2");
    t.sub[2] = UMG_SLICE("3");
    t.sub[3] = UMG_SLICE("4");
    t.sub[4] = UMG_SLICE("5");
    assert_string_equal(encode(&t), full_line);

    /* Appends to what the buffer holds. */
    umg_buf_t out = {0};
    assert_int_equal(umg_buf_append(&out, "x\n", 2), UMG_OK);
    assert_int_equal(umg_touch_encode_json(&t, &out), UMG_OK);
    assert_int_equal(out.len, 2 + strlen(full_line));
    assert_string_equal(out.ptr + 2, full_line);
    umg_buf_free(&out);

    /* The smallest touch: absent members are omitted. */
    umg_touch_t m;
    memset(&m, 0, sizeof(m));
    m.type = UMG_TOUCH_IMPRESSION;
    m.ts_us = now_us;
    m.received_us = now_us;
    assert_string_equal(encode(&m), "{\"type\":\"impression\",\"ts\":\"2026-11-27T10:00:00.000000Z\","
                                    "\"received_at\":\"2026-11-27T10:00:00.000000Z\"}");
    m.custom_id = UMG_SLICE("c");
    m.ip = UMG_SLICE("::1");
    assert_string_equal(encode(&m), "{\"type\":\"impression\",\"ts\":\"2026-11-27T10:00:00.000000Z\","
                                    "\"received_at\":\"2026-11-27T10:00:00.000000Z\","
                                    "\"device\":{\"custom_id\":\"c\"},\"ip\":\"::1\"}");

    /* Touches that cannot be written. */
    umg_buf_t b = {0};
    m.type = 0;
    assert_int_equal(umg_touch_encode_json(&m, &b), UMG_EINVAL);
    m.type = UMG_TOUCH_CLICK;
    m.lookback_s = 59;
    assert_int_equal(umg_touch_encode_json(&m, &b), UMG_EINVAL);
    m.lookback_s = 0;
    m.ts_us = -1;
    assert_int_equal(umg_touch_encode_json(&m, &b), UMG_EINVAL);
    assert_int_equal(b.len, 0);
    umg_buf_free(&b);
}

/* A touch owned by an arena keeps every field when its decoder decodes the next one, and when it is gone (under
 * ASan, a field left borrowing from it would be read after free). */
static void test_own(void **state)
{
    (void)state;
    lim.stored = 1;
    umg_touch_decoder_t *d;
    assert_int_equal(umg_touch_decoder_new(MAX_BODY, &d), UMG_OK);
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(umg_touch_decode(d, full_line, strlen(full_line), &lim, collect, &seen, NULL), UMG_OK);
    assert_true(seen.n == 1 && seen.ok[0]);
    umg_touch_t t = seen.t[0];
    umg_arena_t a;
    umg_arena_init(&a, 64);
    assert_int_equal(umg_touch_own(&t, &a), UMG_OK);
    const char *next = "{\"type\":\"click\",\"ts\":\"2019-01-01T00:00:00.000001Z\",\"received_at\":\"2019-01-01T00:"
                       "00:01.000000Z\",\"source\":\"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz\","
                       "\"user_agent\":\"yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\"}";
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(umg_touch_decode(d, next, strlen(next), &lim, collect, &seen, NULL), UMG_OK);
    umg_touch_decoder_free(d);
    assert_string_equal(encode(&t), full_line);
    umg_touch_t empty = {0};
    assert_int_equal(umg_touch_own(&empty, &a), UMG_OK); /* nothing to copy */
    assert_null(empty.source.ptr);
    umg_arena_free(&a);
}

static void test_round_trip(void **state)
{
    (void)state;
    lim.stored = 1;
    /* decode(stored) then encode gives the same bytes. */
    const umg_touch_t *t = ok_touch(full_line);
    assert_slice(t->app_id, "app_7");
    assert_int_equal(t->received_us, now_us + 1);
    assert_int_equal(t->lookback_s, 3 * 86400);
    assert_string_equal(encode(t), full_line);

    const char *lines[] = {
        "{\"type\":\"impression\",\"ts\":\"2026-11-27T10:00:00.000000Z\",\"received_at\":\"2026-11-27T10:00:00."
        "000000Z\"}",
        "{\"app_id\":\"a\",\"type\":\"click\",\"ts\":\"2019-01-01T00:00:00.000001Z\",\"received_at\":\"2019-01-01T00:"
        "00:01.000000Z\",\"click_id\":\"0123456789abcdef0123456789abcdef\",\"ip\":\"203.0.113.0\",\"user_agent\":"
        "\"UA\",\"sub5\":\"\\\\\"}",
        /* Encrypted PII (umg_privacy.h) is taken as it is from the stored form. */
        "{\"type\":\"click\",\"ts\":\"2026-11-27T10:00:00.000000Z\",\"received_at\":\"2026-11-27T10:00:00.000000Z\","
        "\"device\":{\"idfa\":\"enc:v1:k1:AAAA\",\"gaid\":\"enc:v1:k1:BBBB\",\"android_id\":\"enc:v1:k1:CCCC\"},"
        "\"ip\":\"enc:v1:k1:DDDD\"}",
    };
    for (size_t i = 0; i < UMG_ARRAY_SIZE(lines); i++) {
        t = ok_touch(lines[i]);
        assert_string_equal(encode(t), lines[i]);
    }
    /* Request bodies encode to lines that decode back to the same text. */
    lim.stored = 0;
    t = ok_touch(click_with("\"lookback\":\"90m\",\"retargeting\":1,\"gaid\":\"38400000-8CF0-11BD-B23E-10B96E40000D\","
                            "\"user_agent\":\"a\\\"b\",\"ip\":\"2001:DB8::1\""));
    umg_touch_t copy = *t;
    umg_uuid_v4(&copy.touch_id);
    copy.app_id = UMG_SLICE("app_9");
    char first[2048];
    snprintf(first, sizeof(first), "%s", encode(&copy));
    assert_non_null(strstr(first, "\"lookback_s\":5400,\"retargeting\":true"));
    assert_non_null(strstr(first, "\"device\":{\"gaid\":\"38400000-8cf0-11bd-b23e-10b96e40000d\"}"));
    lim.stored = 1;
    assert_string_equal(encode(ok_touch(first)), first);
    /* A stored form without "received_at" takes the server time, as events do. */
    t = ok_touch("{\"type\":\"click\",\"ts\":1795773600000}");
    assert_int_equal(t->received_us, now_us);
    /* The stored form still validates. */
    expect_error("{\"type\":\"click\",\"ts\":1,\"touch_id\":\"x\"}", "invalid_value", "touch_id");
    expect_error("{\"type\":\"click\",\"ts\":1,\"lookback_s\":\"7d\"}", "invalid_type", "lookback_s");
    expect_error("{\"type\":\"click\",\"ts\":1,\"lookback\":\"7d\",\"lookback_s\":604800}", "invalid_value",
                 "lookback_s");
    expect_error("{\"type\":\"click\",\"ts\":1,\"device\":{\"idfa\":\"enc:v1:\"}}", "invalid_value", "device.idfa");
    expect_error("{\"type\":\"click\",\"ts\":1,\"app_id\":\"a\\n\"}", "invalid_value", "app_id");
    assert_int_equal(run("[]"), UMG_EPARSE);
    assert_int_equal(run("{\"touches\":[]}"), UMG_OK); /* one touch with an unknown member */
    assert_false(seen.ok[0]);
    assert_string_equal(seen.err[0].field, "touches");
}

/* --------------------------------------------------------------- device key */

static void test_device_key(void **state)
{
    (void)state;
    umg_touch_t t;
    memset(&t, 0, sizeof(t));
    assert_int_equal(umg_touch_device_key(&t).len, 0);
    t.custom_id = UMG_SLICE("c");
    assert_slice(umg_touch_device_key(&t), "c");
    t.idfv = UMG_SLICE("v");
    assert_slice(umg_touch_device_key(&t), "v");
    t.android_id = UMG_SLICE("an");
    assert_slice(umg_touch_device_key(&t), "an");
    t.oaid = UMG_SLICE("o");
    assert_slice(umg_touch_device_key(&t), "o");
    t.gaid = UMG_SLICE("g");
    assert_slice(umg_touch_device_key(&t), "g");
    t.idfa = UMG_SLICE("a");
    assert_slice(umg_touch_device_key(&t), "a");
    /* A zero id from a link is absent, so the next one keys the touch. */
    q_reset();
    q_add("idfa", "00000000-0000-0000-0000-000000000000");
    q_add("idfv", "E621E1F8-C36C-495A-93FC-0C247A3E6E5F");
    run_params();
    assert_slice(umg_touch_device_key(&pt), "e621e1f8-c36c-495a-93fc-0c247a3e6e5f");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_params_every_field, reset_limits),
        cmocka_unit_test_setup(test_params_server_fields_untouched, reset_limits),
        cmocka_unit_test_setup(test_params_empty_and_absent, reset_limits),
        cmocka_unit_test_setup(test_params_drops, reset_limits),
        cmocka_unit_test_setup(test_params_drops_keep_the_rest, reset_limits),
        cmocka_unit_test_setup(test_params_zero_uuid, reset_limits),
        cmocka_unit_test_setup(test_params_lookback, reset_limits),
        cmocka_unit_test_setup(test_params_retargeting, reset_limits),
        cmocka_unit_test_setup(test_params_deep_link, reset_limits),
        cmocka_unit_test_setup(test_decode_valid_batch, reset_limits),
        cmocka_unit_test_setup(test_decode_errors, reset_limits),
        cmocka_unit_test_setup(test_decode_mixed_batch, reset_limits),
        cmocka_unit_test_setup(test_decode_invalid_utf8, reset_limits),
        cmocka_unit_test_setup(test_decode_ts_bounds, reset_limits),
        cmocka_unit_test_setup(test_decode_body_errors, reset_limits),
        cmocka_unit_test_setup(test_decode_callback_stops, reset_limits),
        cmocka_unit_test_setup(test_decode_alloc_failure, reset_limits),
        cmocka_unit_test_setup(test_encode_exact, reset_limits),
        cmocka_unit_test_setup(test_own, reset_limits),
        cmocka_unit_test_setup(test_round_trip, reset_limits),
        cmocka_unit_test_setup(test_device_key, reset_limits),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
