/*
 * test_event.c - unit tests for src/event: the request body forms, every
 * validation error code with its field path, batches that mix good and bad
 * events, the invalid-UTF-8 fallback, timestamps and their bounds, the
 * currency table, property limits, the canonical encoding (exact text and
 * decode/encode round trips), limits on events and body size, allocation
 * failure, and the C API of the simdjson shim (umg_json.h) on its own.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "umg_core.h"
#include "umg_event.h"
#include "umg_json.h"

/* ---------------------------------------------------------------- helpers */

#define US_PER_S INT64_C(1000000)
#define MAX_BODY (1 << 20)

static umg_event_decoder_t *dec;
static umg_event_limits_t lim;
static int64_t now_us; /* 2026-11-27T10:00:00Z */

/* What a foreach walk saw: copies of the events (slices still point into the decoder). */
#define MAX_SEEN 64
typedef struct seen_s {
    size_t n;
    int ok[MAX_SEEN];
    umg_event_t ev[MAX_SEEN];
    umg_event_error_t err[MAX_SEEN];
} seen_t;

static seen_t seen;

static int collect(void *ctx, size_t index, umg_event_t *ev, const umg_event_error_t *err)
{
    seen_t *s = ctx;
    assert_int_equal(index, s->n);
    assert_true(s->n < MAX_SEEN);
    assert_true((ev == NULL) != (err == NULL));
    s->ok[s->n] = ev != NULL;
    if (ev != NULL) {
        s->ev[s->n] = *ev;
    } else {
        s->err[s->n] = *err;
    }
    s->n++;
    return 0;
}

/* Before each test: the ingest defaults (10 minutes ahead, 30 days back, no body ip). */
static int reset_limits(void **state)
{
    (void)state;
    lim = (umg_event_limits_t){
        .now_us = now_us, .max_future_us = 600 * US_PER_S, .max_age_us = INT64_C(30) * 86400 * US_PER_S};
    return 0;
}

static int setup(void **state)
{
    (void)state;
    if (umg_time_parse_rfc3339("2026-11-27T10:00:00Z", 20, &now_us) != UMG_OK) {
        return -1;
    }
    return umg_event_decoder_new(MAX_BODY, &dec);
}

static int teardown(void **state)
{
    (void)state;
    umg_event_decoder_free(dec);
    dec = NULL;
    return 0;
}

/* Parses a body and walks it; returns the parse result. */
static int run(const char *body, size_t len)
{
    size_t n = 0;
    int is_batch = -1;
    umg_event_error_t err;
    memset(&seen, 0, sizeof(seen));
    int rc = umg_event_decoder_parse(dec, body, len, 1000, &n, &is_batch, &err);
    if (rc != UMG_OK) {
        return rc;
    }
    assert_int_equal(umg_event_decoder_foreach(dec, &lim, collect, &seen), 0);
    assert_int_equal(seen.n, n);
    return UMG_OK;
}

/* Decodes a single-event body and requires it to be valid. */
static const umg_event_t *ok_event(const char *body)
{
    assert_int_equal(run(body, strlen(body)), UMG_OK);
    assert_int_equal(seen.n, 1);
    if (!seen.ok[0]) {
        fail_msg("expected a valid event, got %s at '%s': %s\n  body: %s", seen.err[0].code, seen.err[0].field,
                 seen.err[0].message, body);
    }
    return &seen.ev[0];
}

/* Decodes a single-event body and requires the given error. */
static void expect_error_len(const char *body, size_t len, const char *code, const char *field)
{
    assert_int_equal(run(body, len), UMG_OK);
    assert_int_equal(seen.n, 1);
    if (seen.ok[0]) {
        fail_msg("expected %s at '%s', but the event was valid\n  body: %s", code, field, body);
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

/* A minimal valid event with extra members spliced in front of the device. */
static char bodybuf[16384];
static const char *with(const char *extra)
{
    snprintf(bodybuf, sizeof(bodybuf), "{\"type\":\"session\",%s%s\"device\":{\"custom_id\":\"u1\"}}", extra,
             extra[0] ? "," : "");
    return bodybuf;
}

static const char *with_device(const char *device_members)
{
    snprintf(bodybuf, sizeof(bodybuf), "{\"type\":\"session\",\"device\":{%s}}", device_members);
    return bodybuf;
}

static char *encode(const umg_event_t *ev)
{
    static umg_buf_t out;
    umg_buf_reset(&out);
    assert_int_equal(umg_event_encode_json(ev, &out), UMG_OK);
    return out.ptr;
}

/* ------------------------------------------------------------ valid input */

static void test_full_event(void **state)
{
    (void)state;
    lim.allow_ip = 1;
    const umg_event_t *ev = ok_event("{\"event_id\":\"0F8FAD5B-D9CB-469F-A165-70867728950E\",\"type\":\"purchase\","
                                     "\"name\":\"gem_pack\",\"ts\":1795766399123,"
                                     "\"device\":{\"idfa\":\"6D92078A-8246-4BA4-AE5B-76104861E7DC\","
                                     "\"idfv\":\"e621e1f8-c36c-495a-93fc-0c247a3e6e5f\",\"platform\":\"ios\","
                                     "\"os_version\":\"17.4\",\"model\":\"iPhone15,2\",\"app_version\":\"3.2.1\","
                                     "\"sdk_version\":\"1.4.0\",\"locale\":\"de_DE\",\"opt_out\":false,"
                                     "\"limit_ad_tracking\":true},"
                                     "\"ip\":\"2001:db8::1\",\"user_agent\":\"MyGame/3.2.1\",\"user_id\":\"u-42\","
                                     "\"revenue\":4.99,\"currency\":\"EUR\","
                                     "\"props\":{\"sku\":\"gems_100\",\"qty\":2,\"discount\":0.25}}");
    lim.allow_ip = 0;
    umg_uuid_t id;
    assert_int_equal(umg_uuid_parse("0f8fad5b-d9cb-469f-a165-70867728950e", 36, &id), UMG_OK);
    assert_true(ev->has_event_id);
    assert_memory_equal(ev->event_id.b, id.b, 16);
    assert_int_equal(ev->type, UMG_EV_PURCHASE);
    assert_slice(ev->name, "gem_pack");
    assert_true(ev->has_ts);
    assert_int_equal(ev->ts_us, INT64_C(1795766399123) * 1000);
    assert_int_equal(ev->received_us, now_us);
    /* Advertising ids are stored lowercase. */
    assert_slice(ev->device.idfa, "6d92078a-8246-4ba4-ae5b-76104861e7dc");
    assert_slice(ev->device.idfv, "e621e1f8-c36c-495a-93fc-0c247a3e6e5f");
    assert_slice(ev->device.platform, "ios");
    assert_slice(ev->device.os_version, "17.4");
    assert_slice(ev->device.model, "iPhone15,2");
    assert_slice(ev->device.app_version, "3.2.1");
    assert_slice(ev->device.sdk_version, "1.4.0");
    assert_slice(ev->device.locale, "de_DE");
    assert_int_equal(ev->device.opt_out, 0);
    assert_int_equal(ev->device.limit_ad_tracking, 1);
    assert_slice(ev->ip, "2001:db8::1");
    assert_slice(ev->user_agent, "MyGame/3.2.1");
    assert_slice(ev->user_id, "u-42");
    assert_true(ev->has_revenue);
    assert_true(ev->revenue == 4.99);
    assert_string_equal(ev->currency, "EUR");
    assert_int_equal(ev->nprops, 3);
    assert_slice(ev->props[0].key, "sku");
    assert_int_equal(ev->props[0].kind, UMG_PROP_STRING);
    assert_slice(ev->props[0].s, "gems_100");
    assert_slice(ev->props[1].key, "qty");
    assert_int_equal(ev->props[1].kind, UMG_PROP_INT);
    assert_int_equal(ev->props[1].i, 2);
    assert_int_equal(ev->props[2].kind, UMG_PROP_DOUBLE);
    assert_true(ev->props[2].d == 0.25);
    assert_false(ev->has_referrer);
    /* idfa comes first in the partition key order. */
    assert_slice(umg_event_device_key(ev), "6d92078a-8246-4ba4-ae5b-76104861e7dc");
}

static void test_minimal_and_defaults(void **state)
{
    (void)state;
    const umg_event_t *ev = ok_event("{\"type\":\"install\",\"device\":{\"gaid\":"
                                     "\"38400000-8cf0-11bd-b23e-10b96e40000d\"}}");
    assert_int_equal(ev->type, UMG_EV_INSTALL);
    assert_false(ev->has_event_id);
    assert_false(ev->has_ts);
    assert_int_equal(ev->ts_us, now_us); /* absent ts is the receive time */
    assert_int_equal(ev->name.len, 0);
    assert_false(ev->has_revenue);
    assert_int_equal(ev->nprops, 0);
    assert_int_equal(ev->app_id.len, 0);
    assert_slice(ev->device.gaid, "38400000-8cf0-11bd-b23e-10b96e40000d");

    /* null is the same as absent for optional members. */
    ev = ok_event("{\"type\":\"session\",\"ts\":null,\"user_id\":null,\"props\":null,"
                  "\"revenue\":null,\"currency\":null,\"install_referrer\":null,\"name\":null,"
                  "\"device\":{\"android_id\":\"9774d56d682e549c\",\"model\":null,\"opt_out\":null}}");
    assert_false(ev->has_ts);
    assert_int_equal(ev->user_id.len, 0);
    assert_slice(ev->device.android_id, "9774d56d682e549c");

    /* All four types; install and session need no name. */
    assert_int_equal(ok_event(with("\"name\":\"x\""))->type, UMG_EV_SESSION);
    assert_int_equal(ok_event("{\"type\":\"event\",\"name\":\"lvl\",\"device\":{\"oaid\":\"abc\"}}")->type,
                     UMG_EV_EVENT);
}

static void test_device_ids(void **state)
{
    (void)state;
    /* Zero advertising ids (no tracking consent) count as absent. */
    expect_error(with_device("\"idfa\":\"00000000-0000-0000-0000-000000000000\""), "no_device_id", "device");
    expect_error(with_device("\"gaid\":\"00000000-0000-0000-0000-000000000000\""), "no_device_id", "device");
    const umg_event_t *ev = ok_event(with_device("\"idfa\":\"00000000-0000-0000-0000-000000000000\",\"idfv\":"
                                                 "\"E621E1F8-C36C-495A-93FC-0C247A3E6E5F\""));
    assert_int_equal(ev->device.idfa.len, 0);
    assert_slice(ev->device.idfv, "e621e1f8-c36c-495a-93fc-0c247a3e6e5f");
    /* Empty strings count as absent too. */
    expect_error(with_device("\"idfa\":\"\",\"custom_id\":\"\""), "no_device_id", "device");
    expect_error(with_device("\"platform\":\"android\""), "no_device_id", "device");
    expect_error(with_device(""), "no_device_id", "device");

    /* Partition key order: idfa, gaid, oaid, android_id, idfv, custom_id. */
    ev = ok_event(with_device("\"custom_id\":\"c\",\"idfv\":\"e621e1f8-c36c-495a-93fc-0c247a3e6e5f\","
                              "\"android_id\":\"a\",\"oaid\":\"o\""));
    assert_slice(umg_event_device_key(ev), "o");
    ev = ok_event(with_device("\"custom_id\":\"c\",\"android_id\":\"a\""));
    assert_slice(umg_event_device_key(ev), "a");
    ev = ok_event(with_device("\"custom_id\":\"c\",\"idfv\":\"e621e1f8-c36c-495a-93fc-0c247a3e6e5f\""));
    assert_slice(umg_event_device_key(ev), "e621e1f8-c36c-495a-93fc-0c247a3e6e5f");
    ev = ok_event(with_device("\"custom_id\":\"c\",\"gaid\":\"38400000-8cf0-11bd-b23e-10b96e40000d\""));
    assert_slice(umg_event_device_key(ev), "38400000-8cf0-11bd-b23e-10b96e40000d");
    umg_event_t none;
    memset(&none, 0, sizeof(none));
    assert_int_equal(umg_event_device_key(&none).len, 0);
}

/* -------------------------------------------------------------- error codes */

static void test_required(void **state)
{
    (void)state;
    expect_error("{\"device\":{\"custom_id\":\"u\"}}", "required", "type");
    expect_error("{\"type\":null,\"device\":{\"custom_id\":\"u\"}}", "required", "type");
    expect_error("{\"type\":\"event\",\"device\":{\"custom_id\":\"u\"}}", "required", "name");
    expect_error("{\"type\":\"event\",\"name\":\"\",\"device\":{\"custom_id\":\"u\"}}", "required", "name");
    expect_error("{\"type\":\"purchase\",\"revenue\":1,\"currency\":\"USD\","
                 "\"device\":{\"custom_id\":\"u\"}}",
                 "required", "name");
    expect_error("{\"type\":\"session\"}", "required", "device");
    expect_error("{\"type\":\"session\",\"device\":null}", "required", "device");
    expect_error(with("\"revenue\":1.5"), "required", "currency");
    expect_error(with("\"currency\":\"USD\""), "required", "revenue");
    expect_error("{\"type\":\"purchase\",\"name\":\"p\",\"device\":{\"custom_id\":\"u\"}}", "required", "revenue");
    expect_error(with("\"install_referrer\":{\"click_ts\":1795766399000}"), "required", "install_referrer.referrer");
    expect_error(with("\"install_referrer\":{\"referrer\":null}"), "required", "install_referrer.referrer");
}

static void test_invalid_type(void **state)
{
    (void)state;
    expect_error("{\"type\":5,\"device\":{\"custom_id\":\"u\"}}", "invalid_type", "type");
    expect_error("{\"type\":\"session\",\"device\":\"u\"}", "invalid_type", "device");
    expect_error("{\"type\":\"session\",\"device\":[]}", "invalid_type", "device");
    expect_error(with("\"name\":true"), "invalid_type", "name");
    expect_error(with("\"event_id\":17"), "invalid_type", "event_id");
    expect_error(with("\"ts\":true"), "invalid_type", "ts");
    expect_error(with("\"ts\":1795766399000.5"), "invalid_type", "ts");
    expect_error(with("\"ts\":{}"), "invalid_type", "ts");
    expect_error(with("\"revenue\":\"1.99\",\"currency\":\"USD\""), "invalid_type", "revenue");
    expect_error(with("\"currency\":840"), "invalid_type", "currency");
    expect_error(with("\"user_agent\":[\"x\"]"), "invalid_type", "user_agent");
    expect_error(with("\"user_id\":42"), "invalid_type", "user_id");
    expect_error(with("\"install_referrer\":\"utm_source=x\""), "invalid_type", "install_referrer");
    expect_error(with("\"install_referrer\":{\"referrer\":1}"), "invalid_type", "install_referrer.referrer");
    expect_error(with("\"install_referrer\":{\"referrer\":\"r\",\"click_ts\":false}"), "invalid_type",
                 "install_referrer.click_ts");
    expect_error(with("\"props\":[1,2]"), "invalid_type", "props");
    expect_error(with("\"props\":{\"level\":{\"a\":1}}"), "invalid_type", "props.level");
    expect_error(with("\"props\":{\"tags\":[\"a\"]}"), "invalid_type", "props.tags");
    expect_error(with("\"props\":{\"vip\":true}"), "invalid_type", "props.vip");
    expect_error(with_device("\"custom_id\":\"u\",\"opt_out\":\"yes\""), "invalid_type", "device.opt_out");
    expect_error(with_device("\"custom_id\":\"u\",\"limit_ad_tracking\":1"), "invalid_type",
                 "device.limit_ad_tracking");
    expect_error(with_device("\"gaid\":123"), "invalid_type", "device.gaid");
    expect_error(with_device("\"custom_id\":\"u\",\"model\":{}"), "invalid_type", "device.model");
}

static void test_invalid_value(void **state)
{
    (void)state;
    expect_error("{\"type\":\"click\",\"device\":{\"custom_id\":\"u\"}}", "invalid_value", "type");
    expect_error("{\"type\":\"Install\",\"device\":{\"custom_id\":\"u\"}}", "invalid_value", "type");
    expect_error(with("\"event_id\":\"not-a-uuid\""), "invalid_value", "event_id");
    expect_error(with("\"event_id\":\"0f8fad5b-d9cb-469f-a165-70867728950\""), "invalid_value", "event_id");
    expect_error(with("\"event_id\":\"0f8fad5b-d9cb-469f-a165-70867728950g\""), "invalid_value", "event_id");
    expect_error(with("\"event_id\":\"0f8fad5bd-9cb-469f-a165-70867728950e\""), "invalid_value", "event_id");
    expect_error(with_device("\"idfa\":\"not-a-uuid\""), "invalid_value", "device.idfa");
    expect_error(with_device("\"idfv\":\"E621E1F8C36C495A93FC0C247A3E6E5F\""), "invalid_value", "device.idfv");
    expect_error(with_device("\"gaid\":\"38400000-8cf0-11bd-b23e-10b96e40000\""), "invalid_value", "device.gaid");
    expect_error(with_device("\"custom_id\":\"u\",\"platform\":\"windows\""), "invalid_value", "device.platform");
    expect_error(with_device("\"custom_id\":\"a\\u0001b\""), "invalid_value", "device.custom_id");
    expect_error(with_device("\"android_id\":\"a\\nb\""), "invalid_value", "device.android_id");
    expect_error(with_device("\"oaid\":\"\\u0000\""), "invalid_value", "device.oaid");
    expect_error(with("\"currency\":\"usd\",\"revenue\":1"), "invalid_value", "currency");
    expect_error(with("\"currency\":\"ABC\",\"revenue\":1"), "invalid_value", "currency");
    expect_error(with("\"currency\":\"US\",\"revenue\":1"), "invalid_value", "currency");
    expect_error(with("\"currency\":\"USDT\",\"revenue\":1"), "invalid_value", "currency");
    expect_error(with("\"currency\":\"XXX\",\"revenue\":1"), "invalid_value", "currency");
    expect_error(with("\"currency\":\"\",\"revenue\":1"), "invalid_value", "currency");
    expect_error(with("\"revenue\":1e12,\"currency\":\"USD\""), "invalid_value", "revenue");
    expect_error(with("\"revenue\":-1e12,\"currency\":\"USD\""), "invalid_value", "revenue");
    expect_error(with("\"revenue\":18446744073709551615,\"currency\":\"USD\""), "invalid_value", "revenue");
    expect_error(with("\"ts\":\"yesterday\""), "invalid_value", "ts");
    expect_error(with("\"ts\":\"2026-13-01T00:00:00Z\""), "invalid_value", "ts");
    expect_error(with("\"ts\":-5"), "invalid_value", "ts");
    expect_error(with("\"ts\":18446744073709551615"), "invalid_value", "ts");
    expect_error(with("\"install_referrer\":{\"referrer\":\"r\",\"install_begin_ts\":\"soon\"}"), "invalid_value",
                 "install_referrer.install_begin_ts");
    expect_error(with("\"props\":{\"\":1}"), "invalid_value", "props.");
    expect_error(with("\"props\":{\"n\":18446744073709551615}"), "invalid_value", "props.n");
    /* Duplicate members are refused, not silently overwritten. */
    expect_error(with("\"name\":\"a\",\"name\":\"b\""), "invalid_value", "name");
    expect_error(with_device("\"custom_id\":\"u\",\"custom_id\":\"v\""), "invalid_value", "device.custom_id");
    expect_error(with("\"props\":{\"a\":1,\"a\":2}"), "invalid_value", "props.a");
    expect_error(with("\"props\":{\"a\":1,\"a\":null}"), "invalid_value", "props.a");
    expect_error(with("\"props\":{\"a\":null,\"a\":1}"), "invalid_value", "props.a"); /* in either order */
    expect_error(with("\"props\":{\"a\":null,\"a\":null}"), "invalid_value", "props.a");

    /* ip is checked only when the caller takes it (server to server). */
    lim.allow_ip = 1;
    expect_error(with("\"ip\":\"999.1.1.1\""), "invalid_value", "ip");
    expect_error(with("\"ip\":\"1.2.3.4 \""), "invalid_value", "ip");
    expect_error(with("\"ip\":\"fe80::1%eth0\""), "invalid_value", "ip");
    expect_error(with("\"ip\":7"), "invalid_type", "ip");
    assert_slice(ok_event(with("\"ip\":\"203.0.113.7\""))->ip, "203.0.113.7");
    assert_slice(ok_event(with("\"ip\":\"::ffff:192.0.2.1\""))->ip, "::ffff:192.0.2.1");
    lim.allow_ip = 0;
    const umg_event_t *ev = ok_event(with("\"ip\":\"999.1.1.1\""));
    assert_int_equal(ev->ip.len, 0);
    ev = ok_event(with("\"ip\":7"));
    assert_int_equal(ev->ip.len, 0);
}

static void test_unknown_field(void **state)
{
    (void)state;
    expect_error(with("\"colour\":\"red\""), "unknown_field", "colour");
    expect_error(with("\"Type\":\"install\""), "unknown_field", "Type");
    expect_error(with_device("\"custom_id\":\"u\",\"imei\":\"123\""), "unknown_field", "device.imei");
    expect_error(with("\"install_referrer\":{\"referrer\":\"r\",\"gclid\":\"x\"}"), "unknown_field",
                 "install_referrer.gclid");
    /* Server-set members are unknown on ingest... */
    expect_error(with("\"app_id\":\"a\""), "unknown_field", "app_id");
    expect_error(with("\"received_at\":1795766399000"), "unknown_field", "received_at");
    /* ...and taken when reading the stored form back. */
    lim.stored = 1;
    const umg_event_t *ev = ok_event(with("\"app_id\":\"app_1\",\"received_at\":\"2026-11-27T09:00:00Z\""));
    lim.stored = 0;
    assert_slice(ev->app_id, "app_1");
    assert_int_equal(ev->received_us, now_us - 3600 * US_PER_S);
    /* A long unknown key is cut in the path, not overflowed. */
    char key[300];
    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    char extra[400];
    snprintf(extra, sizeof(extra), "\"%s\":1", key);
    const char *body = with(extra);
    assert_int_equal(run(body, strlen(body)), UMG_OK);
    assert_false(seen.ok[0]);
    assert_string_equal(seen.err[0].code, "unknown_field");
    assert_int_equal(strlen(seen.err[0].field), sizeof(seen.err[0].field) - 1);
    /* An unknown key that looks like a batch wrapper is just an unknown field. */
    expect_error("{\"events\":5}", "unknown_field", "events");
}

static void test_too_long(void **state)
{
    (void)state;
    char big[3000], extra[3100];
    /* name: 256 bytes are fine, 257 are not. */
    memset(big, 'n', 256);
    big[256] = '\0';
    snprintf(extra, sizeof(extra), "\"name\":\"%s\"", big);
    assert_int_equal(ok_event(with(extra))->name.len, 256);
    big[256] = 'n';
    big[257] = '\0';
    snprintf(extra, sizeof(extra), "\"name\":\"%s\"", big);
    expect_error(with(extra), "too_long", "name");
    /* user_agent: 1024 / 1025. */
    memset(big, 'u', 1024);
    big[1024] = '\0';
    snprintf(extra, sizeof(extra), "\"user_agent\":\"%s\"", big);
    assert_int_equal(ok_event(with(extra))->user_agent.len, 1024);
    big[1024] = 'u';
    big[1025] = '\0';
    snprintf(extra, sizeof(extra), "\"user_agent\":\"%s\"", big);
    expect_error(with(extra), "too_long", "user_agent");
    /* referrer: 2048 / 2049. */
    memset(big, 'r', 2048);
    big[2048] = '\0';
    snprintf(extra, sizeof(extra), "\"install_referrer\":{\"referrer\":\"%s\"}", big);
    assert_int_equal(ok_event(with(extra))->referrer.len, 2048);
    big[2048] = 'r';
    big[2049] = '\0';
    snprintf(extra, sizeof(extra), "\"install_referrer\":{\"referrer\":\"%s\"}", big);
    expect_error(with(extra), "too_long", "install_referrer.referrer");
    /* Device strings: 256 / 257. */
    memset(big, 'm', 257);
    big[257] = '\0';
    snprintf(extra, sizeof(extra), "\"custom_id\":\"u\",\"model\":\"%s\"", big);
    expect_error(with_device(extra), "too_long", "device.model");
    snprintf(extra, sizeof(extra), "\"custom_id\":\"%s\"", big);
    expect_error(with_device(extra), "too_long", "device.custom_id");
    /* Escapes count after decoding: 256 x "\u00e9" is 512 bytes of UTF-8. */
    char *esc = extra + snprintf(extra, sizeof(extra), "\"user_id\":\"");
    for (int i = 0; i < 200; i++) {
        esc += sprintf(esc, "\\u00e9");
    }
    strcpy(esc, "\"");
    expect_error(with(extra), "too_long", "user_id");
}

static void test_props(void **state)
{
    (void)state;
    char props[8192], extra[8300];
    char *p = props;
    /* Exactly 50 properties are fine. */
    for (int i = 0; i < 50; i++) {
        p += sprintf(p, "%s\"k%d\":%d", i ? "," : "", i, i);
    }
    snprintf(extra, sizeof(extra), "\"props\":{%s}", props);
    const umg_event_t *ev = ok_event(with(extra));
    assert_int_equal(ev->nprops, 50);
    assert_slice(ev->props[49].key, "k49");
    assert_int_equal(ev->props[49].i, 49);
    /* 51 are not. */
    sprintf(p, ",\"k50\":50");
    snprintf(extra, sizeof(extra), "\"props\":{%s}", props);
    expect_error(with(extra), "too_many_props", "props");

    /* Keys up to 64 bytes, string values up to 256 bytes. */
    char key[80], val[300];
    memset(key, 'k', 64);
    key[64] = '\0';
    snprintf(extra, sizeof(extra), "\"props\":{\"%s\":1}", key);
    assert_int_equal(ok_event(with(extra))->props[0].key.len, 64);
    key[64] = 'k';
    key[65] = '\0';
    snprintf(extra, sizeof(extra), "\"props\":{\"%s\":1}", key);
    expect_error(with(extra), "too_long", "props.kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk");
    memset(val, 'v', 256);
    val[256] = '\0';
    snprintf(extra, sizeof(extra), "\"props\":{\"s\":\"%s\"}", val);
    assert_int_equal(ok_event(with(extra))->props[0].s.len, 256);
    val[256] = 'v';
    val[257] = '\0';
    snprintf(extra, sizeof(extra), "\"props\":{\"s\":\"%s\"}", val);
    expect_error(with(extra), "too_long", "props.s");

    /* Kinds: integers stay integers, numbers with a point or exponent are doubles. */
    ev = ok_event(with("\"props\":{\"i\":-9223372036854775808,\"d\":1.0,\"e\":1e3,\"s\":\"\","
                       "\"gone\":null}"));
    assert_int_equal(ev->nprops, 4);
    assert_int_equal(ev->props[0].kind, UMG_PROP_INT);
    assert_true(ev->props[0].i == INT64_MIN);
    assert_int_equal(ev->props[1].kind, UMG_PROP_DOUBLE);
    assert_true(ev->props[1].d == 1.0);
    assert_int_equal(ev->props[2].kind, UMG_PROP_DOUBLE);
    assert_true(ev->props[2].d == 1000.0);
    assert_int_equal(ev->props[3].kind, UMG_PROP_STRING);
    assert_int_equal(ev->props[3].s.len, 0);
}

/* ---------------------------------------------------------------- timestamps */

static void test_ts_forms(void **state)
{
    (void)state;
    const umg_event_t *ev = ok_event(with("\"ts\":1795773600000"));
    assert_true(ev->has_ts);
    assert_int_equal(ev->ts_us, now_us);
    ev = ok_event(with("\"ts\":\"2026-11-27T09:59:59.5Z\""));
    assert_int_equal(ev->ts_us, now_us - 500000);
    ev = ok_event(with("\"ts\":\"2026-11-27T11:00:00.000001+01:00\""));
    assert_int_equal(ev->ts_us, now_us + 1);
    ev = ok_event(with("\"ts\":\"2026-11-27t10:00:00z\""));
    assert_int_equal(ev->ts_us, now_us);
    ev = ok_event(with("\"install_referrer\":{\"referrer\":\"utm_source=x\",\"click_ts\":1795773500000,"
                       "\"install_begin_ts\":\"2026-11-27T09:59:00Z\"}"));
    assert_true(ev->has_referrer);
    assert_slice(ev->referrer, "utm_source=x");
    assert_int_equal(ev->referrer_click_ts_us, now_us - 100 * US_PER_S);
    assert_int_equal(ev->referrer_install_begin_ts_us, now_us - 60 * US_PER_S);
    /* Referrer times are not bound to the ingest window, only to 1970..9999. */
    ev = ok_event(with("\"install_referrer\":{\"referrer\":\"\",\"click_ts\":1}"));
    assert_int_equal(ev->referrer_click_ts_us, 1000);
    expect_error(with("\"install_referrer\":{\"referrer\":\"\",\"click_ts\":253402300800000}"), "invalid_value",
                 "install_referrer.click_ts");
}

static void test_ts_bounds(void **state)
{
    (void)state;
    char extra[64];
    int64_t now_ms = now_us / 1000;
    /* Up to max_future ahead is fine; one millisecond more is not. */
    snprintf(extra, sizeof(extra), "\"ts\":%lld", (long long)(now_ms + 600000));
    assert_true(ok_event(with(extra))->has_ts);
    snprintf(extra, sizeof(extra), "\"ts\":%lld", (long long)(now_ms + 600001));
    expect_error(with(extra), "ts_in_future", "ts");
    expect_error(with("\"ts\":\"2026-11-27T10:10:00.000001Z\""), "ts_in_future", "ts");
    /* Down to max_age old is fine; one millisecond older is not. */
    snprintf(extra, sizeof(extra), "\"ts\":%lld", (long long)(now_ms - INT64_C(30) * 86400000));
    assert_true(ok_event(with(extra))->has_ts);
    snprintf(extra, sizeof(extra), "\"ts\":%lld", (long long)(now_ms - INT64_C(30) * 86400000 - 1));
    expect_error(with(extra), "ts_too_old", "ts");
    expect_error(with("\"ts\":0"), "ts_too_old", "ts");
    /* Huge limits do not overflow. */
    umg_event_limits_t saved = lim;
    lim.max_future_us = INT64_MAX;
    lim.max_age_us = INT64_MAX;
    assert_true(ok_event(with("\"ts\":0"))->has_ts);
    assert_true(ok_event(with("\"ts\":253402300799999"))->has_ts);
    lim = saved;
}

/* ------------------------------------------------------------------ currency */

static void test_currency(void **state)
{
    (void)state;
    static const char *good[] = {"USD", "EUR", "JPY", "GBP", "CNY", "INR", "BRL", "KWD",
                                 "CHF", "AED", "ZWG", "ZAR", "XAF", "VES", "SLE"};
    static const char *bad[] = {"usd", "Usd", "EURO", "EU", "ABC", "XTS", "XXX", "US1", "ZZZ", "DEM"};
    char extra[128];
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        snprintf(extra, sizeof(extra), "\"revenue\":1.5,\"currency\":\"%s\"", good[i]);
        assert_string_equal(ok_event(with(extra))->currency, good[i]);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(extra, sizeof(extra), "\"revenue\":1.5,\"currency\":\"%s\"", bad[i]);
        expect_error(with(extra), "invalid_value", "currency");
    }
    const umg_event_t *ev = ok_event(with("\"revenue\":-2,\"currency\":\"USD\""));
    assert_true(ev->revenue == -2.0); /* refunds are negative */
    ev = ok_event(with("\"revenue\":999999999999.99,\"currency\":\"USD\""));
    assert_true(ev->revenue == 999999999999.99);
}

/* -------------------------------------------------------------------- batches */

static void test_batch_mixed(void **state)
{
    (void)state;
    const char *body = "{\"events\":["
                       "{\"type\":\"install\",\"device\":{\"custom_id\":\"a\"}},"
                       "{\"type\":\"event\",\"device\":{\"custom_id\":\"b\"}},"
                       "7,"
                       "{\"type\":\"session\",\"device\":{\"custom_id\":\"c\"},\"props\":{\"x\":[1]}},"
                       "{\"type\":\"event\",\"name\":\"level_up\",\"device\":{\"custom_id\":\"d\"},"
                       "\"props\":{\"level\":3}},"
                       "null,"
                       "{\"type\":\"session\",\"device\":{}}"
                       "]}";
    size_t n = 0;
    int is_batch = 0;
    umg_event_error_t err;
    assert_int_equal(umg_event_decoder_parse(dec, body, strlen(body), 1000, &n, &is_batch, &err), UMG_OK);
    assert_int_equal(n, 7);
    assert_int_equal(is_batch, 1);
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(umg_event_decoder_foreach(dec, &lim, collect, &seen), 0);
    assert_int_equal(seen.n, 7);
    assert_true(seen.ok[0]);
    assert_slice(seen.ev[0].device.custom_id, "a");
    assert_false(seen.ok[1]);
    assert_string_equal(seen.err[1].code, "required");
    assert_string_equal(seen.err[1].field, "name");
    assert_false(seen.ok[2]);
    assert_string_equal(seen.err[2].code, "invalid_type");
    assert_string_equal(seen.err[2].field, "");
    assert_false(seen.ok[3]);
    assert_string_equal(seen.err[3].field, "props.x");
    assert_true(seen.ok[4]);
    assert_slice(seen.ev[4].name, "level_up");
    assert_slice(seen.ev[4].device.custom_id, "d");
    assert_int_equal(seen.ev[4].props[0].i, 3);
    /* Slices of an earlier event are still valid after later ones were decoded. */
    assert_slice(seen.ev[0].device.custom_id, "a");
    assert_false(seen.ok[5]);
    assert_string_equal(seen.err[5].code, "invalid_type");
    assert_false(seen.ok[6]);
    assert_string_equal(seen.err[6].code, "no_device_id");

    /* A single event is not a batch. */
    assert_int_equal(umg_event_decoder_parse(dec, "{\"type\":\"install\"}", 18, 1000, &n, &is_batch, &err), UMG_OK);
    assert_int_equal(n, 1);
    assert_int_equal(is_batch, 0);
    /* An empty batch is fine. */
    assert_int_equal(run("{\"events\":[]}", 13), UMG_OK);
    assert_int_equal(seen.n, 0);
}

static int stop_at_second(void *ctx, size_t index, umg_event_t *ev, const umg_event_error_t *err)
{
    (void)ev;
    (void)err;
    (*(int *)ctx)++;
    return index == 1 ? 42 : 0;
}

static void test_foreach_stop(void **state)
{
    (void)state;
    const char *body = "{\"events\":[{\"type\":\"install\",\"device\":{\"custom_id\":\"a\"}},"
                       "{},{\"type\":\"install\",\"device\":{\"custom_id\":\"c\"}}]}";
    int calls = 0;
    assert_int_equal(umg_event_decoder_parse(dec, body, strlen(body), 10, NULL, NULL, NULL), UMG_OK);
    assert_int_equal(umg_event_decoder_foreach(dec, &lim, stop_at_second, &calls), 42);
    assert_int_equal(calls, 2);
    /* A failed parse leaves nothing to walk. */
    assert_int_equal(umg_event_decoder_parse(dec, "{", 1, 10, NULL, NULL, NULL), UMG_EPARSE);
    assert_int_equal(umg_event_decoder_foreach(dec, &lim, stop_at_second, &calls), UMG_EINVAL);
}

static void test_max_events(void **state)
{
    (void)state;
    const char *body = "{\"events\":[{},{},{}]}";
    size_t n = 99;
    int is_batch = 99;
    umg_event_error_t err;
    assert_int_equal(umg_event_decoder_parse(dec, body, strlen(body), 2, &n, &is_batch, &err), UMG_ERANGE);
    assert_string_equal(err.code, "too_many_events");
    assert_int_equal(n, 99); /* out-parameters are written only on success */
    assert_int_equal(is_batch, 99);
    assert_int_equal(umg_event_decoder_parse(dec, body, strlen(body), 3, &n, &is_batch, &err), UMG_OK);
    assert_int_equal(n, 3);

    /* Body larger than the decoder's limit. */
    umg_event_decoder_t *small;
    assert_int_equal(umg_event_decoder_new(64, &small), UMG_OK);
    char big[200];
    snprintf(big, sizeof(big), "{\"type\":\"install\",\"device\":{\"custom_id\":\"%080d\"}}", 0);
    assert_int_equal(umg_event_decoder_parse(small, big, strlen(big), 10, &n, &is_batch, &err), UMG_ERANGE);
    assert_string_equal(err.code, "body_too_large");
    assert_int_equal(umg_event_decoder_parse(small, "{\"events\":[]}", 13, 10, &n, &is_batch, &err), UMG_OK);
    umg_event_decoder_free(small);
    umg_event_decoder_free(NULL);
    assert_int_equal(umg_event_decoder_new(0, &small), UMG_EINVAL);
}

static void test_not_event_bodies(void **state)
{
    (void)state;
    static const char *bodies[] = {
        "",
        " ",
        "[]",
        "[{\"type\":\"install\"}]",
        "5",
        "\"event\"",
        "null",
        "true",
        "{",
        "{\"type\":\"install\"",
        "{}}",
        "{\"a\":1,}",
        "{'a':1}",
        "{\"a\":01}",
        "{\"a\":NaN}",
        "{\"a\":1e999}",
        "{} {}",
        "{\"a\":\"\\x\"}",
        "{\"a\":\"\\ud800\"}",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        umg_event_error_t err;
        memset(&err, 0, sizeof(err));
        int rc = umg_event_decoder_parse(dec, bodies[i], strlen(bodies[i]), 1000, NULL, NULL, &err);
        if (rc != UMG_EPARSE) {
            fail_msg("body %zu '%s': rc %d, expected UMG_EPARSE", i, bodies[i], rc);
        }
        assert_string_equal(err.code, "invalid_json");
        assert_true(err.message[0] != '\0');
    }
    /* A batch body holds nothing but "events". */
    umg_event_error_t err;
    assert_int_equal(umg_event_decoder_parse(dec, "{\"events\":[],\"sent_at\":1}", 25, 1000, NULL, NULL, &err),
                     UMG_EPARSE);
    assert_string_equal(err.code, "invalid_json");
    assert_string_equal(err.field, "sent_at");
    /* ... once: a second array would be ignored unseen (found in review). */
    static const char twice[] = "{\"events\":[],\"events\":[]}";
    assert_int_equal(umg_event_decoder_parse(dec, twice, sizeof(twice) - 1, 1000, NULL, NULL, &err), UMG_EPARSE);
    assert_string_equal(err.code, "invalid_json");
    assert_string_equal(err.field, "events");
    static const char twice5[] = "{\"events\":[],\"events\":5}";
    assert_int_equal(umg_event_decoder_parse(dec, twice5, sizeof(twice5) - 1, 1000, NULL, NULL, &err), UMG_EPARSE);
    /* err may be NULL. */
    assert_int_equal(umg_event_decoder_parse(dec, "[", 1, 1000, NULL, NULL, NULL), UMG_EPARSE);
}

/* --------------------------------------------------------------------- UTF-8 */

static void test_utf8_fallback(void **state)
{
    (void)state;
    /* One bad event in a batch loses only itself, and the field is named. */
    static const char body[] = "{\"events\":["
                               "{\"type\":\"install\",\"device\":{\"custom_id\":\"a\",\"model\":\"Z\xc3\xbcrich\"}},"
                               "{\"type\":\"install\",\"device\":{\"custom_id\":\"b\",\"model\":\"bad\xff\"}},"
                               "{\"type\":\"event\",\"name\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\","
                               "\"device\":{\"custom_id\":\"c\"}},"
                               "{\"type\":\"event\",\"name\":\"x\",\"device\":{\"custom_id\":\"d\"},"
                               "\"props\":{\"city\":\"\xc0\xaf\"}},"
                               "{\"type\":\"event\",\"name\":\"x\",\"device\":{\"custom_id\":\"e\"},"
                               "\"props\":{\"k\xed\xa0\x80\":1}},"
                               "{\"type\":\"install\",\"user_id\":\"\xe2\x82\",\"device\":{\"custom_id\":\"f\"}}"
                               "]}";
    assert_int_equal(run(body, sizeof(body) - 1), UMG_OK);
    assert_int_equal(seen.n, 6);
    assert_true(seen.ok[0]);
    assert_slice(seen.ev[0].device.model, "Z\xc3\xbcrich"); /* valid UTF-8 is untouched */
    assert_false(seen.ok[1]);
    assert_string_equal(seen.err[1].code, "invalid_utf8");
    assert_string_equal(seen.err[1].field, "device.model");
    assert_true(seen.ok[2]);
    assert_slice(seen.ev[2].name, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    assert_false(seen.ok[3]); /* overlong encoding */
    assert_string_equal(seen.err[3].code, "invalid_utf8");
    assert_string_equal(seen.err[3].field, "props.city");
    assert_false(seen.ok[4]); /* a surrogate in a key */
    assert_string_equal(seen.err[4].code, "invalid_utf8");
    assert_int_equal(strncmp(seen.err[4].field, "props.k", 7), 0);
    assert_false(seen.ok[5]); /* a truncated sequence */
    assert_string_equal(seen.err[5].code, "invalid_utf8");
    assert_string_equal(seen.err[5].field, "user_id");

    /* Single events too; and each code point boundary case. */
    expect_error("{\"type\":\"install\",\"device\":{\"custom_id\":\"\xf4\x90\x80\x80\"}}", "invalid_utf8",
                 "device.custom_id");
    expect_error("{\"type\":\"install\",\"device\":{\"custom_id\":\"\x80\"}}", "invalid_utf8", "device.custom_id");
    expect_error("{\"type\":\"install\",\"device\":{\"custom_id\":\"\xf8\x88\x80\x80\x80\"}}", "invalid_utf8",
                 "device.custom_id");
    expect_error("{\"type\":\"install\",\"ts\":\"2026-11-27T10:00:00\xffZ\",\"device\":{\"custom_id\":"
                 "\"u\"}}",
                 "invalid_utf8", "ts");
    const char *edge = "{\"type\":\"install\",\"device\":{\"custom_id\":\"\xf4\x8f\xbf\xbf\xef\xbf\xbf\"}}";
    assert_true(ok_event(edge)->device.custom_id.len == 7);

    /* Invalid UTF-8 outside strings is still invalid JSON. */
    static const char broken[] = "{\"type\":\"install\"\xff,\"device\":{}}";
    umg_event_error_t err;
    assert_int_equal(umg_event_decoder_parse(dec, broken, sizeof(broken) - 1, 10, NULL, NULL, &err), UMG_EPARSE);
    assert_string_equal(err.code, "invalid_json");
    static const char broken2[] = "{\"type\":\"ins\xfftall\",";
    assert_int_equal(umg_event_decoder_parse(dec, broken2, sizeof(broken2) - 1, 10, NULL, NULL, &err), UMG_EPARSE);
    /* The mode does not stick: the next clean body with a literal DEL is fine. */
    const umg_event_t *ev = ok_event("{\"type\":\"install\",\"device\":{\"custom_id\":\"a\x7f\"}}");
    assert_int_equal(ev->device.custom_id.len, 2);
}

/* ------------------------------------------------------------------ encoding */

static void test_encode_exact(void **state)
{
    (void)state;
    lim.allow_ip = 1;
    const umg_event_t *cev =
        ok_event("{\"props\":{\"level\":12,\"score\":3.5,\"mode\":\"hard \\\"x\\\"\",\"whole\":2.0},"
                 "\"currency\":\"USD\",\"revenue\":1.99,\"user_id\":\"u1\",\"user_agent\":\"UA/1.0\","
                 "\"ip\":\"203.0.113.7\",\"device\":{\"limit_ad_tracking\":true,\"opt_out\":false,"
                 "\"locale\":\"en_US\",\"sdk_version\":\"1.4.0\",\"app_version\":\"3.2.1\","
                 "\"model\":\"Pixel 8\",\"os_version\":\"14\",\"platform\":\"android\","
                 "\"custom_id\":\"c1\",\"android_id\":\"9774d56d682e549c\","
                 "\"gaid\":\"38400000-8CF0-11BD-B23E-10B96E40000D\"},"
                 "\"install_referrer\":{\"install_begin_ts\":\"2026-11-27T09:58:00.5Z\","
                 "\"click_ts\":1795773480000,\"referrer\":\"utm_source=net&utm_campaign=c\"},"
                 "\"ts\":\"2026-11-27T09:59:00.123Z\",\"name\":\"level_complete\",\"type\":\"purchase\","
                 "\"event_id\":\"0F8FAD5B-D9CB-469F-A165-70867728950E\"}");
    lim.allow_ip = 0;
    umg_event_t ev = *cev;
    ev.app_id = UMG_SLICE("app_7");
    ev.received_us = now_us + 1;
    const char *want = "{\"event_id\":\"0f8fad5b-d9cb-469f-a165-70867728950e\",\"app_id\":\"app_7\","
                       "\"type\":\"purchase\",\"name\":\"level_complete\",\"ts\":\"2026-11-27T09:59:00.123000Z\","
                       "\"received_at\":\"2026-11-27T10:00:00.000001Z\","
                       "\"device\":{\"gaid\":\"38400000-8cf0-11bd-b23e-10b96e40000d\","
                       "\"android_id\":\"9774d56d682e549c\",\"custom_id\":\"c1\",\"platform\":\"android\","
                       "\"os_version\":\"14\",\"model\":\"Pixel 8\",\"app_version\":\"3.2.1\","
                       "\"sdk_version\":\"1.4.0\",\"locale\":\"en_US\",\"limit_ad_tracking\":true},"
                       "\"ip\":\"203.0.113.7\",\"user_agent\":\"UA/1.0\",\"user_id\":\"u1\","
                       "\"revenue\":1.99,\"currency\":\"USD\","
                       "\"install_referrer\":{\"referrer\":\"utm_source=net&utm_campaign=c\","
                       "\"click_ts\":\"2026-11-27T09:58:00.000000Z\","
                       "\"install_begin_ts\":\"2026-11-27T09:58:00.500000Z\"},"
                       "\"props\":{\"level\":12,\"score\":3.5,\"mode\":\"hard \\\"x\\\"\",\"whole\":2.0}}";
    assert_string_equal(encode(&ev), want);

    /* Minimal event: no event_id, no app_id; appends to what the buffer holds. */
    umg_event_t min;
    memset(&min, 0, sizeof(min));
    min.type = UMG_EV_SESSION;
    min.ts_us = 0;
    min.received_us = 1;
    min.device.custom_id = UMG_SLICE("x\n\x01");
    umg_buf_t out = {0};
    assert_int_equal(umg_buf_append(&out, "> ", 2), UMG_OK);
    assert_int_equal(umg_event_encode_json(&min, &out), UMG_OK);
    assert_string_equal(out.ptr, "> {\"type\":\"session\",\"ts\":\"1970-01-01T00:00:00.000000Z\","
                                 "\"received_at\":\"1970-01-01T00:00:00.000001Z\","
                                 "\"device\":{\"custom_id\":\"x\\n\\u0001\"}}");
    assert_int_equal(out.len, strlen(out.ptr));
    /* Invalid events are refused rather than written as broken JSON. */
    min.type = 0;
    assert_int_equal(umg_event_encode_json(&min, &out), UMG_EINVAL);
    min.type = UMG_EV_PURCHASE;
    min.has_revenue = 1;
    min.revenue = NAN;
    assert_int_equal(umg_event_encode_json(&min, &out), UMG_EINVAL);
    umg_buf_free(&out);
}

/* Encodes d as a prop and returns the number's text. */
static const char *double_text(double d)
{
    static char text[64];
    umg_event_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = UMG_EV_SESSION;
    ev.nprops = 1;
    ev.props[0].key = UMG_SLICE("d");
    ev.props[0].kind = UMG_PROP_DOUBLE;
    ev.props[0].d = d;
    const char *json = encode(&ev);
    const char *p = strstr(json, "\"props\":{\"d\":");
    assert_non_null(p);
    p += strlen("\"props\":{\"d\":");
    size_t n = strcspn(p, "}");
    assert_true(n < sizeof(text));
    memcpy(text, p, n);
    text[n] = '\0';
    return text;
}

static void test_encode_doubles(void **state)
{
    (void)state;
    assert_string_equal(double_text(1.99), "1.99");
    assert_string_equal(double_text(0.1), "0.1");
    assert_string_equal(double_text(3.0), "3.0");
    assert_string_equal(double_text(-2.5), "-2.5");
    assert_string_equal(double_text(0.0), "0.0");
    assert_string_equal(double_text(-0.0), "-0.0");
    assert_string_equal(double_text(0.05), "0.05");
    assert_string_equal(double_text(123456789.125), "123456789.125");
    assert_string_equal(double_text(1e-7), "1e-07");
    assert_string_equal(double_text(1e21), "1e+21");
    assert_string_equal(double_text(1e15), "1e+15");
    assert_string_equal(double_text(999999999999999.0), "999999999999999.0");
    assert_string_equal(double_text(0.1 + 0.2), "0.30000000000000004");
    assert_string_equal(double_text(1.0 / 3.0), "0.3333333333333333");
    /* Whatever the text, it reads back as the same double. */
    static const double samples[] = {
        1.0 / 3.0,          2.0 / 3.0, 1e-300, 5e-324,    1.7976931348623157e308, 4.35, 0.000123, 12345.678901234567,
        9007199254740993.0, -1e-5,     100.0,  1e14 + 0.5};
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        const char *t = double_text(samples[i]);
        assert_true(strtod(t, NULL) == samples[i]);
        assert_true(strpbrk(t, ".e") != NULL); /* always reads back as a double */
    }
    /* Shortest for the common case: matches %.15g when that round-trips. */
    for (int i = 1; i < 20000; i++) {
        double d = i / 100.0;
        char ref[40];
        snprintf(ref, sizeof(ref), "%.15g", d);
        if (strchr(ref, '.') == NULL) {
            strcat(ref, ".0");
        }
        assert_string_equal(double_text(d), ref);
    }
}

/* Compares two decoded events field by field. */
static void assert_same_event(const umg_event_t *a, const umg_event_t *b)
{
    assert_int_equal(a->has_event_id, b->has_event_id);
    if (a->has_event_id) {
        assert_memory_equal(a->event_id.b, b->event_id.b, 16);
    }
    assert_int_equal(a->type, b->type);
    assert_true(slice_is(a->name, "")
                    ? b->name.len == 0
                    : a->name.len == b->name.len && memcmp(a->name.ptr, b->name.ptr, a->name.len) == 0);
    assert_int_equal(a->ts_us, b->ts_us);
    assert_int_equal(a->received_us, b->received_us);
    const umg_slice_t *sa[] = {&a->device.idfa,
                               &a->device.idfv,
                               &a->device.gaid,
                               &a->device.android_id,
                               &a->device.oaid,
                               &a->device.custom_id,
                               &a->device.platform,
                               &a->device.os_version,
                               &a->device.model,
                               &a->device.app_version,
                               &a->device.sdk_version,
                               &a->device.locale,
                               &a->ip,
                               &a->user_agent,
                               &a->user_id,
                               &a->referrer,
                               &a->app_id};
    const umg_slice_t *sb[] = {&b->device.idfa,
                               &b->device.idfv,
                               &b->device.gaid,
                               &b->device.android_id,
                               &b->device.oaid,
                               &b->device.custom_id,
                               &b->device.platform,
                               &b->device.os_version,
                               &b->device.model,
                               &b->device.app_version,
                               &b->device.sdk_version,
                               &b->device.locale,
                               &b->ip,
                               &b->user_agent,
                               &b->user_id,
                               &b->referrer,
                               &b->app_id};
    for (size_t i = 0; i < sizeof(sa) / sizeof(sa[0]); i++) {
        assert_int_equal(sa[i]->len, sb[i]->len);
        if (sa[i]->len != 0) {
            assert_memory_equal(sa[i]->ptr, sb[i]->ptr, sa[i]->len);
        }
    }
    assert_int_equal(a->device.opt_out, b->device.opt_out);
    assert_int_equal(a->device.limit_ad_tracking, b->device.limit_ad_tracking);
    assert_int_equal(a->has_revenue, b->has_revenue);
    if (a->has_revenue) {
        assert_true(a->revenue == b->revenue);
        assert_string_equal(a->currency, b->currency);
    }
    assert_int_equal(a->has_referrer, b->has_referrer);
    assert_int_equal(a->referrer_click_ts_us, b->referrer_click_ts_us);
    assert_int_equal(a->referrer_install_begin_ts_us, b->referrer_install_begin_ts_us);
    assert_int_equal(a->nprops, b->nprops);
    for (int i = 0; i < a->nprops; i++) {
        assert_int_equal(a->props[i].key.len, b->props[i].key.len);
        assert_memory_equal(a->props[i].key.ptr, b->props[i].key.ptr, a->props[i].key.len);
        assert_int_equal(a->props[i].kind, b->props[i].kind);
        assert_int_equal(a->props[i].s.len, b->props[i].s.len);
        if (a->props[i].s.len) {
            assert_memory_equal(a->props[i].s.ptr, b->props[i].s.ptr, a->props[i].s.len);
        }
        assert_true(a->props[i].i == b->props[i].i);
        assert_true(memcmp(&a->props[i].d, &b->props[i].d, sizeof(double)) == 0);
    }
}

/* An event owned by an arena keeps every field when its decoder parses the next body, and when it is gone (under
 * ASan, a field left borrowing from it would be read after free). */
static void test_own(void **state)
{
    (void)state;
    lim.stored = 1;
    lim.allow_ip = 1;
    const char *body =
        "{\"event_id\":\"0f8fad5b-d9cb-469f-a165-70867728950e\",\"app_id\":\"app_7\",\"type\":\"install\","
        "\"name\":\"first_open\",\"ts\":\"2026-11-27T09:59:00.123000Z\",\"received_at\":\"2026-11-27T10:00:00."
        "000001Z\","
        "\"device\":{\"idfa\":\"6d92078a-8246-4ba4-ae5b-76104861e7dc\",\"idfv\":\"e621e1f8-c36c-495a-93fc-"
        "0c247a3e6e5f\","
        "\"gaid\":\"38400000-8cf0-11bd-b23e-10b96e40000d\",\"android_id\":\"a1\",\"oaid\":\"o1\",\"custom_id\":\"u1\","
        "\"platform\":\"android\",\"os_version\":\"14\",\"model\":\"Pixel 8\",\"app_version\":\"3.2.1\","
        "\"sdk_version\":\"1.4.0\",\"locale\":\"de_DE\"},\"ip\":\"203.0.113.7\",\"user_agent\":\"Dalvik/2.1.0 "
        "Z\xc3\xbcrich\",\"user_id\":\"u-42\",\"revenue\":4.99,\"currency\":\"EUR\","
        "\"install_referrer\":{\"referrer\":\"utm_source%3Dx%26click_id%3Dk1\",\"click_ts\":1795766000000},"
        "\"props\":{\"sku\":\"gems_100\",\"qty\":2,\"note\":\"a \\\"quoted\\\" text\"}}";
    umg_event_decoder_t *d;
    assert_int_equal(umg_event_decoder_new(MAX_BODY, &d), UMG_OK);
    size_t n;
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(umg_event_decoder_parse(d, body, strlen(body), 1, &n, NULL, NULL), UMG_OK);
    assert_int_equal(umg_event_decoder_foreach(d, &lim, collect, &seen), 0);
    assert_true(seen.n == 1 && seen.ok[0]);
    umg_event_t ev = seen.ev[0];
    char before[4096];
    snprintf(before, sizeof(before), "%s", encode(&ev));
    umg_arena_t a;
    umg_arena_init(&a, 64);
    assert_int_equal(umg_event_own(&ev, &a), UMG_OK);
    const char *next = "{\"type\":\"event\",\"name\":\"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz\","
                       "\"device\":{\"custom_id\":\"yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\"}}";
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(umg_event_decoder_parse(d, next, strlen(next), 1, &n, NULL, NULL), UMG_OK);
    assert_int_equal(umg_event_decoder_foreach(d, &lim, collect, &seen), 0);
    umg_event_decoder_free(d);
    assert_string_equal(encode(&ev), before);
    assert_non_null(strstr(before, "\"note\":\"a \\\"quoted\\\" text\""));
    umg_arena_free(&a);
}

static void test_round_trip(void **state)
{
    (void)state;
    static const char *bodies[] = {
        "{\"event_id\":\"0f8fad5b-d9cb-469f-a165-70867728950e\",\"type\":\"purchase\","
        "\"name\":\"n \\u00e9 \\\\ \\/ \\t\",\"ts\":1795766399123,"
        "\"device\":{\"idfa\":\"6D92078A-8246-4BA4-AE5B-76104861E7DC\",\"oaid\":\"o\","
        "\"platform\":\"web\",\"opt_out\":true},\"ip\":\"::1\",\"user_agent\":\"a\\\"b\","
        "\"revenue\":0.30000000000000004,\"currency\":\"JPY\","
        "\"install_referrer\":{\"referrer\":\"\"},"
        "\"props\":{\"i\":-1,\"d\":-0.0,\"e\":1e-9,\"s\":\"\\u0000\\u001f\",\"big\":1.5e300}}",
        "{\"type\":\"install\",\"device\":{\"android_id\":\"x\"},"
        "\"install_referrer\":{\"referrer\":\"r\",\"click_ts\":\"2026-11-27T09:00:00.999999Z\"}}",
        "{\"type\":\"session\",\"device\":{\"custom_id\":\"\\ud83d\\ude00\"},\"revenue\":5,"
        "\"currency\":\"EUR\"}",
    };
    umg_buf_t first = {0}, second = {0};
    lim.allow_ip = 1;
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        umg_event_t a = *ok_event(bodies[i]);
        a.app_id = UMG_SLICE("app \"quoted\"");
        umg_buf_reset(&first);
        assert_int_equal(umg_event_encode_json(&a, &first), UMG_OK);
        /* Read the stored form back with a second decoder: a's slices stay valid. */
        umg_event_decoder_t *d2;
        assert_int_equal(umg_event_decoder_new(MAX_BODY, &d2), UMG_OK);
        assert_int_equal(umg_event_decoder_parse(d2, first.ptr, first.len, 1, NULL, NULL, NULL), UMG_OK);
        umg_event_limits_t stored = lim;
        stored.stored = 1;
        memset(&seen, 0, sizeof(seen));
        assert_int_equal(umg_event_decoder_foreach(d2, &stored, collect, &seen), 0);
        if (!seen.ok[0]) {
            fail_msg("re-decoding failed: %s at %s: %s\n  %s", seen.err[0].code, seen.err[0].field, seen.err[0].message,
                     first.ptr);
        }
        umg_event_t b = seen.ev[0];
        /* ts is always present in the stored form. */
        assert_true(b.has_ts);
        b.has_ts = a.has_ts;
        assert_same_event(&a, &b);
        umg_buf_reset(&second);
        assert_int_equal(umg_event_encode_json(&b, &second), UMG_OK);
        assert_string_equal(first.ptr, second.ptr);
        umg_event_decoder_free(d2);
    }
    lim.allow_ip = 0;
    umg_buf_free(&first);
    umg_buf_free(&second);
}

/* -------------------------------------------------------------- misc / memory */

static void test_type_names(void **state)
{
    (void)state;
    assert_string_equal(umg_event_type_name(UMG_EV_INSTALL), "install");
    assert_string_equal(umg_event_type_name(UMG_EV_SESSION), "session");
    assert_string_equal(umg_event_type_name(UMG_EV_EVENT), "event");
    assert_string_equal(umg_event_type_name(UMG_EV_PURCHASE), "purchase");
    assert_string_equal(umg_event_type_name((umg_event_type_t)9), "unknown");
}

static int count_valid(void *ctx, size_t index, umg_event_t *ev, const umg_event_error_t *err)
{
    (void)err;
    size_t *n = ctx;
    if (ev == NULL) {
        fail_msg("event %zu invalid", index);
    }
    char want[32];
    snprintf(want, sizeof(want), "dev-%06zu", index);
    assert_slice(ev->device.custom_id, want);
    (*n)++;
    return 0;
}

/* Parses `big` (900 events) and checks every event. */
static void run_big(const char *big)
{
    size_t n = 0, count = 0;
    assert_int_equal(umg_event_decoder_parse(dec, big, strlen(big), 1000, &n, NULL, NULL), UMG_OK);
    assert_int_equal(n, 900);
    assert_int_equal(umg_event_decoder_foreach(dec, &lim, count_valid, &count), 0);
    assert_int_equal(count, 900);
}

static void test_reuse_across_sizes(void **state)
{
    (void)state;
    /* A large body, then a small one, then a large one again: memory is reused and slices fresh. */
    static char big[200000];
    char *p = big + sprintf(big, "{\"events\":[");
    for (int i = 0; i < 900; i++) {
        p += sprintf(p, "%s{\"type\":\"install\",\"device\":{\"custom_id\":\"dev-%06d\"}}", i ? "," : "", i);
    }
    strcpy(p, "]}");
    run_big(big);
    assert_slice(ok_event(with_device("\"custom_id\":\"tiny\""))->device.custom_id, "tiny");
    run_big(big);
    /* The decoder's allocations do not grow in steady state. */
    size_t before = umg_alloc_bytes();
    for (int i = 0; i < 50; i++) {
        run_big(big);
        ok_event(with_device("\"idfa\":\"6D92078A-8246-4BA4-AE5B-76104861E7DC\""));
    }
    assert_int_equal(umg_alloc_bytes(), before);
}

static void test_alloc_failure(void **state)
{
    (void)state;
    umg_event_decoder_t *d = NULL;
    for (long n = 1; n <= 3; n++) {
        umg_alloc_fail_after(n);
        int rc = umg_event_decoder_new(MAX_BODY, &d);
        umg_alloc_fail_after(0);
        if (rc == UMG_OK) {
            umg_event_decoder_free(d);
        } else {
            assert_int_equal(rc, UMG_ENOMEM);
        }
    }
    /* The first parse allocates the parser's buffers; failing it reports ENOMEM, then recovers. */
    assert_int_equal(umg_event_decoder_new(MAX_BODY, &d), UMG_OK);
    umg_alloc_fail_after(1);
    umg_event_error_t err;
    int rc = umg_event_decoder_parse(d, "{\"events\":[]}", 13, 10, NULL, NULL, &err);
    umg_alloc_fail_after(0);
    assert_int_equal(rc, UMG_ENOMEM);
    assert_int_equal(umg_event_decoder_parse(d, "{\"events\":[]}", 13, 10, NULL, NULL, &err), UMG_OK);
    umg_event_decoder_free(d);
    /* The encoder reports a buffer that cannot grow. */
    umg_event_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = UMG_EV_INSTALL;
    umg_buf_t out = {0};
    umg_alloc_fail_after(1);
    rc = umg_event_encode_json(&ev, &out);
    umg_alloc_fail_after(0);
    assert_int_equal(rc, UMG_ENOMEM);
    umg_buf_free(&out);
}

/* ---------------------------------------------------------- the JSON shim */

typedef struct member_log_s {
    char keys[64];
    int n;
} member_log_t;

static int log_member(void *ctx, const char *key, size_t klen, umg_json_val_t val)
{
    member_log_t *m = ctx;
    (void)val;
    strncat(m->keys, key, klen);
    strcat(m->keys, ",");
    return ++m->n == 3 ? 7 : 0; /* stop after three members */
}

static int sum_elements(void *ctx, size_t index, umg_json_val_t val)
{
    int64_t v = 0;
    assert_int_equal(umg_json_get_int64(val, &v), UMG_JSON_OK);
    *(int64_t *)ctx += v * (int64_t)(index + 1);
    return 0;
}

static void test_json_shim(void **state)
{
    (void)state;
    umg_json_parser_t *p;
    umg_json_val_t root, v;
    assert_int_equal(umg_json_parser_new(4096, &p), UMG_JSON_OK);
    const char *doc = "{\"s\":\"a\\u0000b\",\"i\":-7,\"u\":18446744073709551615,\"d\":2.5,"
                      "\"t\":true,\"n\":null,\"a\":[1,2,3],\"o\":{}}";
    assert_int_equal(umg_json_parse(p, doc, strlen(doc), &root), UMG_JSON_OK);
    assert_int_equal(umg_json_type(root), UMG_JSON_OBJECT);
    assert_int_equal(umg_json_object_size(root), 8);

    const char *str;
    size_t len;
    assert_int_equal(umg_json_object_find(root, "s", 1, &v), UMG_JSON_OK);
    assert_int_equal(umg_json_get_string(v, &str, &len), UMG_JSON_OK);
    assert_int_equal(len, 3);
    assert_memory_equal(str, "a\0b", 3);
    int64_t i;
    uint64_t u;
    double d;
    int b;
    assert_int_equal(umg_json_object_find(root, "i", 1, &v), UMG_JSON_OK);
    assert_int_equal(umg_json_type(v), UMG_JSON_INT64);
    assert_int_equal(umg_json_get_int64(v, &i), UMG_JSON_OK);
    assert_true(i == -7);
    assert_int_equal(umg_json_get_uint64(v, &u), UMG_JSON_ERANGE);
    assert_int_equal(umg_json_get_string(v, &str, &len), UMG_JSON_ETYPE);
    assert_int_equal(umg_json_object_find(root, "u", 1, &v), UMG_JSON_OK);
    assert_int_equal(umg_json_type(v), UMG_JSON_UINT64);
    assert_int_equal(umg_json_get_uint64(v, &u), UMG_JSON_OK);
    assert_true(u == UINT64_MAX);
    assert_int_equal(umg_json_get_int64(v, &i), UMG_JSON_ERANGE);
    assert_int_equal(umg_json_object_find(root, "d", 1, &v), UMG_JSON_OK);
    assert_int_equal(umg_json_type(v), UMG_JSON_DOUBLE);
    assert_int_equal(umg_json_get_double(v, &d), UMG_JSON_OK);
    assert_true(d == 2.5);
    assert_int_equal(umg_json_object_find(root, "t", 1, &v), UMG_JSON_OK);
    assert_int_equal(umg_json_get_bool(v, &b), UMG_JSON_OK);
    assert_int_equal(b, 1);
    assert_int_equal(umg_json_object_find(root, "n", 1, &v), UMG_JSON_OK);
    assert_int_equal(umg_json_type(v), UMG_JSON_NULL);
    assert_int_equal(umg_json_get_bool(v, &b), UMG_JSON_ETYPE);
    assert_int_equal(umg_json_object_find(root, "nope", 4, &v), UMG_JSON_ENOTFOUND);

    assert_int_equal(umg_json_object_find(root, "a", 1, &v), UMG_JSON_OK);
    assert_int_equal(umg_json_type(v), UMG_JSON_ARRAY);
    assert_int_equal(umg_json_array_size(v), 3);
    int64_t sum = 0;
    assert_int_equal(umg_json_array_foreach(v, sum_elements, &sum), 0);
    assert_int_equal(sum, 1 * 1 + 2 * 2 + 3 * 3);
    assert_int_equal(umg_json_object_find(v, "x", 1, &v), UMG_JSON_ETYPE);
    assert_int_equal(umg_json_array_size(root), 0);

    member_log_t m = {{0}, 0};
    assert_int_equal(umg_json_object_foreach(root, log_member, &m), 7);
    assert_string_equal(m.keys, "s,i,u,");

    /* Batched iteration sees every member with its payload. */
    umg_json_iter_t it;
    umg_json_item_t items[3];
    size_t n, total = 0;
    assert_int_equal(umg_json_object_iter(root, &it), UMG_JSON_OK);
    while ((n = umg_json_object_next(&it, items, 3)) > 0) {
        for (size_t k = 0; k < n; k++, total++) {
            if (total == 1) {
                assert_int_equal(items[k].type, UMG_JSON_INT64);
                assert_true(items[k].num.i == -7);
            }
            if (total == 4) {
                assert_int_equal(items[k].type, UMG_JSON_BOOL);
                assert_int_equal(items[k].b, 1);
            }
            if (total == 7) {
                assert_int_equal(items[k].type, UMG_JSON_OBJECT);
                assert_int_equal(umg_json_object_size(items[k].val), 0);
            }
        }
    }
    assert_int_equal(total, 8);
    assert_int_equal(umg_json_object_iter(items[0].val, &it), UMG_JSON_ETYPE);

    /* UTF-8 errors are told apart from syntax errors; size limits are enforced. */
    assert_int_equal(umg_json_parse(p, "{\"a\":\"\xff\"}", 9, &root), UMG_JSON_EUTF8);
    size_t in_len;
    char *in = umg_json_input(p, &in_len);
    assert_int_equal(in_len, 9);
    in[6] = 'x'; /* repair in place and parse again */
    assert_int_equal(umg_json_reparse(p, &root), UMG_JSON_OK);
    assert_int_equal(umg_json_parse(p, "{\"a\":}", 6, &root), UMG_JSON_ESYNTAX);
    assert_int_equal(umg_json_parse(p, "", 0, &root), UMG_JSON_ESYNTAX);
    static char big[5000];
    memset(big, ' ', sizeof(big));
    big[0] = '1';
    assert_int_equal(umg_json_parse(p, big, sizeof(big), &root), UMG_JSON_ECAPACITY);
    assert_int_equal(umg_json_parse(p, big, 4096, &root), UMG_JSON_OK);
    assert_int_equal(umg_json_type(root), UMG_JSON_INT64);
    assert_string_equal(umg_json_strerror(UMG_JSON_EUTF8), "the input is not valid UTF-8");
    umg_json_parser_free(p);
    umg_json_parser_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_full_event, reset_limits),
        cmocka_unit_test_setup(test_minimal_and_defaults, reset_limits),
        cmocka_unit_test_setup(test_device_ids, reset_limits),
        cmocka_unit_test_setup(test_required, reset_limits),
        cmocka_unit_test_setup(test_invalid_type, reset_limits),
        cmocka_unit_test_setup(test_invalid_value, reset_limits),
        cmocka_unit_test_setup(test_unknown_field, reset_limits),
        cmocka_unit_test_setup(test_too_long, reset_limits),
        cmocka_unit_test_setup(test_props, reset_limits),
        cmocka_unit_test_setup(test_ts_forms, reset_limits),
        cmocka_unit_test_setup(test_ts_bounds, reset_limits),
        cmocka_unit_test_setup(test_currency, reset_limits),
        cmocka_unit_test_setup(test_batch_mixed, reset_limits),
        cmocka_unit_test_setup(test_foreach_stop, reset_limits),
        cmocka_unit_test_setup(test_max_events, reset_limits),
        cmocka_unit_test_setup(test_not_event_bodies, reset_limits),
        cmocka_unit_test_setup(test_utf8_fallback, reset_limits),
        cmocka_unit_test_setup(test_encode_exact, reset_limits),
        cmocka_unit_test_setup(test_encode_doubles, reset_limits),
        cmocka_unit_test_setup(test_own, reset_limits),
        cmocka_unit_test_setup(test_round_trip, reset_limits),
        cmocka_unit_test_setup(test_type_names, reset_limits),
        cmocka_unit_test_setup(test_reuse_across_sizes, reset_limits),
        cmocka_unit_test_setup(test_alloc_failure, reset_limits),
        cmocka_unit_test_setup(test_json_shim, reset_limits),
    };
    return cmocka_run_group_tests_name("event", tests, setup, teardown);
}
