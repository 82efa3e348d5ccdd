/*
 * test_privacy.c - IP truncation, identifier hashing and what the log
 * rewriter does to stored records: forget a device's records received before
 * the request, keep later ones and other apps', truncate old IPs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "umg_privacy.h"

#include <stdlib.h>
#include <unistd.h>

static void truncates(const char *in, const char *want)
{
    char out[48];
    assert_int_equal(umg_privacy_truncate_ip(umg_slice(in, strlen(in)), out), UMG_OK);
    assert_string_equal(out, want);
}

static void test_truncate_ip(void **state)
{
    (void)state;
    truncates("203.0.113.7", "203.0.113.0");
    truncates("10.0.0.0", "10.0.0.0");
    truncates("2001:db8:1:2::7", "2001:db8:1::");
    truncates("2001:0db8:abcd:ffff:1:2:3:4", "2001:db8:abcd::");
    truncates("::ffff:198.51.100.9", "::");
    char out[48];
    assert_int_equal(umg_privacy_truncate_ip(umg_slice("nope", 4), out), UMG_EINVAL);
    assert_int_equal(umg_privacy_truncate_ip(umg_slice("1.2.3.4 ", 8), out), UMG_EINVAL);
    assert_int_equal(umg_privacy_truncate_ip(umg_slice("", 0), out), UMG_EINVAL);
}

static void test_hash(void **state)
{
    (void)state;
    uint8_t key[32] = {1}, other[32] = {2}, a[16], b[16];
    assert_int_equal(umg_privacy_hash_id(key, "gaid", umg_slice("ABC-1", 5), a), UMG_OK);
    assert_int_equal(umg_privacy_hash_id(key, "gaid", umg_slice("abc-1", 5), b), UMG_OK);
    assert_memory_equal(a, b, 16); /* stored lowercased, hashed the same */
    assert_int_equal(umg_privacy_hash_id(key, "user_id", umg_slice("ABC-1", 5), b), UMG_OK);
    assert_memory_not_equal(a, b, 16); /* kinds do not collide, user ids keep their case */
    assert_int_equal(umg_privacy_hash_id(other, "gaid", umg_slice("abc-1", 5), b), UMG_OK);
    assert_memory_not_equal(a, b, 16);
    /* Any id written as a UUID is one id in either case, as the attribution store reads it: a custom_id sent
     * in upper case once escaped a forget of its lower case. Other ids keep their case. */
    const char *up = "C0FFEE00-1234-4ABC-8DEF-0123456789AB", *low = "c0ffee00-1234-4abc-8def-0123456789ab";
    assert_int_equal(umg_privacy_hash_id(key, "custom_id", umg_slice(up, 36), a), UMG_OK);
    assert_int_equal(umg_privacy_hash_id(key, "custom_id", umg_slice(low, 36), b), UMG_OK);
    assert_memory_equal(a, b, 16);
    assert_int_equal(umg_privacy_hash_id(key, "custom_id", umg_slice("User-1", 6), a), UMG_OK);
    assert_int_equal(umg_privacy_hash_id(key, "custom_id", umg_slice("user-1", 6), b), UMG_OK);
    assert_memory_not_equal(a, b, 16);
    assert_int_equal(umg_privacy_hash_id(key, "email", umg_slice("x", 1), b), UMG_EINVAL);
    assert_int_equal(umg_privacy_hash_id(key, "gaid", umg_slice("", 0), b), UMG_EINVAL);
}

static const char *rec1 =
    "{\"event_id\":\"0f8fad5b-d9cb-469f-a165-70867728950e\",\"app_id\":\"app_7\",\"type\":\"session\","
    "\"ts\":\"2026-11-27T09:59:00.000000Z\",\"received_at\":\"2026-11-27T10:00:00.000000Z\","
    "\"device\":{\"gaid\":\"38400000-8cf0-11bd-b23e-10b96e40000d\",\"platform\":\"android\"},"
    "\"ip\":\"203.0.113.7\",\"user_id\":\"u1\"}";

static umg_bus_msg_t msg(const char *payload, uint32_t app, int64_t recv_us)
{
    umg_bus_msg_t m = {.app = app, .kind = UMG_BUS_KIND_EVENT, .recv_us = recv_us, .payload = payload};
    m.len = (uint32_t)strlen(payload);
    return m;
}

static void test_apply(void **state)
{
    (void)state;
    uint8_t key[32] = {7}, h[16];
    umg_privacy_t *p;
    umg_event_decoder_t *dec;
    assert_int_equal(umg_privacy_new(key, &p), UMG_OK);
    assert_int_equal(umg_event_decoder_new(1 << 20, &dec), UMG_OK);
    umg_buf_t out = {0};
    umg_privacy_action_t act;
    int64_t t = 1795744800000000; /* 2026-11-27T10:00:00Z */

    /* Nothing to do. */
    umg_bus_msg_t m = msg(rec1, 7, t);
    assert_int_equal(umg_privacy_apply(p, dec, &m, &out, &act), UMG_OK);
    assert_int_equal(act, UMG_PRIVACY_KEEP);

    /* IP older than the cutoff: truncated, the rest unchanged. */
    umg_privacy_set_ip_cutoff(p, t + 1);
    assert_int_equal(umg_privacy_apply(p, dec, &m, &out, &act), UMG_OK);
    assert_int_equal(act, UMG_PRIVACY_REPLACE);
    umg_buf_putc(&out, '\0');
    assert_non_null(strstr(out.ptr, "\"ip\":\"203.0.113.0\""));
    assert_non_null(strstr(out.ptr, "\"user_id\":\"u1\""));
    assert_int_equal(out.len - 1, strlen(rec1)); /* same length: one digit for one digit */
    /* Truncating again changes nothing. */
    umg_bus_msg_t m2 = msg(out.ptr, 7, t);
    umg_buf_t out2 = {0};
    assert_int_equal(umg_privacy_apply(p, dec, &m2, &out2, &act), UMG_OK);
    assert_int_equal(act, UMG_PRIVACY_KEEP);
    umg_privacy_set_ip_cutoff(p, 0);

    /* Forget by gaid (any case): records received before the request only, this app only. */
    assert_int_equal(umg_privacy_hash_id(key, "gaid", umg_slice("38400000-8CF0-11BD-B23E-10B96E40000D", 36), h),
                     UMG_OK);
    assert_int_equal(umg_privacy_forget(p, 7, h, t + 1), UMG_OK);
    assert_int_equal(umg_privacy_apply(p, dec, &m, &out, &act), UMG_OK);
    assert_int_equal(act, UMG_PRIVACY_FORGET);
    umg_bus_msg_t later = msg(rec1, 7, t + 2), other_app = msg(rec1, 8, t);
    assert_int_equal(umg_privacy_apply(p, dec, &later, &out, &act), UMG_OK);
    assert_int_equal(act, UMG_PRIVACY_KEEP);
    assert_int_equal(umg_privacy_apply(p, dec, &other_app, &out, &act), UMG_OK);
    assert_int_equal(act, UMG_PRIVACY_KEEP);

    /* Forget by user id on another app. */
    assert_int_equal(umg_privacy_hash_id(key, "user_id", umg_slice("u1", 2), h), UMG_OK);
    assert_int_equal(umg_privacy_forget(p, 8, h, t + 10), UMG_OK);
    assert_int_equal(umg_privacy_apply(p, dec, &other_app, &out, &act), UMG_OK);
    assert_int_equal(act, UMG_PRIVACY_FORGET);
    assert_int_equal(umg_privacy_count(p), 2);

    /* Tombstones and touches are left alone. */
    umg_bus_msg_t tomb = {.app = 7, .kind = UMG_BUS_KIND_EVENT, .recv_us = t, .payload = "", .len = 0};
    assert_int_equal(umg_privacy_apply(p, dec, &tomb, &out, &act), UMG_OK);
    assert_int_equal(act, UMG_PRIVACY_KEEP);

    umg_buf_free(&out);
    umg_buf_free(&out2);
    umg_event_decoder_free(dec);
    umg_privacy_free(p);
}

typedef struct seen_ids_s {
    uint32_t app[8];
    uint8_t h[8][16];
    int n;
} seen_ids_t;

static void on_id(void *ctx, uint32_t app, const uint8_t hash[16])
{
    seen_ids_t *s = ctx;
    if (s->n < 8) {
        s->app[s->n] = app;
        memcpy(s->h[s->n++], hash, 16);
    }
}

/* What segment summaries are built from: every identifier hash of the records of apps with requests. */
static void test_id_callback(void **state)
{
    (void)state;
    uint8_t key[32] = {7}, h[16], gaid_h[16], user_h[16];
    umg_privacy_t *p;
    umg_event_decoder_t *dec;
    assert_int_equal(umg_privacy_new(key, &p), UMG_OK);
    assert_int_equal(umg_event_decoder_new(1 << 20, &dec), UMG_OK);
    seen_ids_t seen = {0};
    umg_privacy_set_id_cb(p, on_id, &seen);
    umg_buf_t out = {0};
    umg_privacy_action_t act;
    int64_t t = 1795744800000000;
    assert_int_equal(umg_privacy_hash_id(key, "gaid", umg_slice("38400000-8cf0-11bd-b23e-10b96e40000d", 36), gaid_h),
                     UMG_OK);
    assert_int_equal(umg_privacy_hash_id(key, "user_id", umg_slice("u1", 2), user_h), UMG_OK);
    assert_int_equal(umg_privacy_hash_id(key, "gaid", umg_slice("another", 7), h), UMG_OK);
    assert_int_equal(umg_privacy_forget(p, 7, h, t + 1), UMG_OK);

    /* An app with a request: both identifiers of the kept record, in the order they are looked at. */
    umg_bus_msg_t m = msg(rec1, 7, t);
    assert_int_equal(umg_privacy_apply(p, dec, &m, &out, &act), UMG_OK);
    assert_int_equal(act, UMG_PRIVACY_KEEP);
    assert_int_equal(seen.n, 2);
    assert_int_equal(seen.app[0], 7);
    assert_memory_equal(seen.h[0], gaid_h, 16);
    assert_memory_equal(seen.h[1], user_h, 16);
    /* Another app is not decoded: nothing. */
    seen.n = 0;
    umg_bus_msg_t other = msg(rec1, 8, t);
    assert_int_equal(umg_privacy_apply(p, dec, &other, &out, &act), UMG_OK);
    assert_int_equal(seen.n, 0);
    /* A payload that does not decode is counted as unread. */
    assert_int_equal(umg_privacy_unread(p), 0);
    umg_bus_msg_t bad = msg("{\"event_id\":", 7, t);
    assert_int_not_equal(umg_privacy_apply(p, dec, &bad, &out, &act), UMG_OK);
    assert_int_equal(umg_privacy_unread(p), 1);

    umg_buf_free(&out);
    umg_event_decoder_free(dec);
    umg_privacy_free(p);
}

static void test_opt_out(void **state)
{
    (void)state;
    umg_event_t ev;
    memset(&ev, 0, sizeof(ev));
    assert_true(umg_privacy_may_share_ids(&ev));
    ev.device.opt_out = 1;
    assert_false(umg_privacy_may_share_ids(&ev));
    ev.device.opt_out = 0;
    ev.device.limit_ad_tracking = 1;
    assert_false(umg_privacy_may_share_ids(&ev));
}

static char *write_keys(const char *text)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/umg-pii-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

#define K1 "k1 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"
#define K2 "k2 f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f\n"

static void test_pii(void **state)
{
    (void)state;
    char err[256];
    umg_pii_t *p1, *p2, *bad;
    char *path = write_keys(K1);
    assert_int_equal(umg_pii_load(path, "ip,user_id,gaid", &p1, err, sizeof(err)), UMG_OK);
    unlink(path);
    path = write_keys("# rotated\n" K1 K2);
    assert_int_equal(umg_pii_load(path, "ip,user_id,gaid", &p2, err, sizeof(err)), UMG_OK);
    assert_int_equal(umg_pii_generation(p2), 2);
    assert_int_equal(umg_pii_load(path, "ip,email", &bad, err, sizeof(err)), UMG_EINVAL);
    assert_non_null(strstr(err, "email"));
    unlink(path);
    path = write_keys("k1 00\n");
    assert_int_equal(umg_pii_load(path, "ip", &bad, err, sizeof(err)), UMG_EINVAL);
    unlink(path);
    path = write_keys(K1 K1);
    assert_int_equal(umg_pii_load(path, "ip", &bad, err, sizeof(err)), UMG_EINVAL);
    unlink(path);

    umg_arena_t a;
    umg_arena_init(&a, 4096);
    umg_slice_t enc, enc2;
    assert_int_equal(umg_pii_encrypt(p1, "user_id", umg_slice("alice", 5), &a, &enc), UMG_OK);
    assert_int_equal(strncmp(enc.ptr, "enc:v1:k1:", 10), 0);
    assert_int_equal(umg_pii_encrypt(p1, "user_id", umg_slice("alice", 5), &a, &enc2), UMG_OK);
    assert_false(enc.len == enc2.len && memcmp(enc.ptr, enc2.ptr, enc.len) == 0); /* random nonces */
    char out[64];
    size_t n;
    assert_int_equal(umg_pii_decrypt(p1, "user_id", enc, out, sizeof(out), &n), UMG_OK);
    assert_string_equal(out, "alice");
    /* The old key still opens it after a rotation, and it is stale there. */
    assert_int_equal(umg_pii_decrypt(p2, "user_id", enc, out, sizeof(out), &n), UMG_OK);
    assert_true(umg_pii_stale(p2, enc));
    assert_false(umg_pii_stale(p1, enc));
    /* Another field, a flipped byte, a plain value, a small buffer. */
    assert_int_equal(umg_pii_decrypt(p1, "gaid", enc, out, sizeof(out), &n), UMG_EAUTH);
    char *t = strndup(enc.ptr, enc.len);
    t[enc.len - 3] = t[enc.len - 3] == 'A' ? 'B' : 'A';
    assert_int_equal(umg_pii_decrypt(p1, "user_id", umg_slice(t, enc.len), out, sizeof(out), &n), UMG_EAUTH);
    free(t);
    assert_int_equal(umg_pii_decrypt(p1, "user_id", umg_slice("alice", 5), out, sizeof(out), &n), UMG_ENOENT);
    assert_int_equal(umg_pii_decrypt(p1, "user_id", enc, out, 3, &n), UMG_ERANGE);
    /* An unknown key id. */
    assert_int_equal(umg_pii_encrypt(p2, "user_id", umg_slice("bob", 3), &a, &enc2), UMG_OK);
    assert_int_equal(umg_pii_decrypt(p1, "user_id", enc2, out, sizeof(out), &n), UMG_EAUTH);

    /* Through the privacy rewriter: an old-key record is re-encrypted and still forgettable. */
    uint8_t key[32] = {9}, h[16];
    umg_privacy_t *pv;
    umg_event_decoder_t *dec;
    assert_int_equal(umg_privacy_new(key, &pv), UMG_OK);
    assert_int_equal(umg_event_decoder_new(1 << 20, &dec), UMG_OK);
    umg_slice_t eg;
    assert_int_equal(umg_pii_encrypt(p1, "gaid", umg_slice("38400000-8cf0-11bd-b23e-10b96e40000d", 36), &a, &eg),
                     UMG_OK);
    umg_buf_t rec = {0}, out2 = {0};
    umg_buf_printf(&rec,
                   "{\"event_id\":\"0f8fad5b-d9cb-469f-a165-70867728950e\",\"app_id\":\"app_7\",\"type\":\"session\","
                   "\"ts\":\"2026-11-27T09:59:00.000000Z\",\"received_at\":\"2026-11-27T10:00:00.000000Z\","
                   "\"device\":{\"gaid\":\"%.*s\",\"platform\":\"android\"}}",
                   (int)eg.len, eg.ptr);
    umg_buf_putc(&rec, '\0');
    umg_bus_msg_t m = msg(rec.ptr, 7, 1795744800000000);
    umg_privacy_action_t act;
    umg_privacy_set_pii(pv, p2);
    assert_int_equal(umg_privacy_apply(pv, dec, &m, &out2, &act), UMG_OK);
    assert_int_equal(act, UMG_PRIVACY_REPLACE);
    umg_buf_putc(&out2, '\0');
    assert_non_null(strstr(out2.ptr, "\"gaid\":\"enc:v1:k2:"));
    assert_null(strstr(out2.ptr, "38400000"));
    assert_int_equal(umg_privacy_hash_id(key, "gaid", umg_slice("38400000-8cf0-11bd-b23e-10b96e40000d", 36), h),
                     UMG_OK);
    assert_int_equal(umg_privacy_forget(pv, 7, h, 1795744800000001), UMG_OK);
    assert_int_equal(umg_privacy_apply(pv, dec, &m, &out2, &act), UMG_OK);
    assert_int_equal(act, UMG_PRIVACY_FORGET);

    umg_buf_free(&rec);
    umg_buf_free(&out2);
    umg_event_decoder_free(dec);
    umg_privacy_free(pv);
    umg_arena_free(&a);
    umg_pii_free(p1);
    umg_pii_free(p2);
}

int main(void)
{
    umg_log_min_level = UMG_LOG_ERROR;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_truncate_ip), cmocka_unit_test(test_hash),    cmocka_unit_test(test_apply),
        cmocka_unit_test(test_pii),         cmocka_unit_test(test_opt_out), cmocka_unit_test(test_id_callback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
