/*
 * test_fraud.c - the fraud rules' pure parts (umg_fraud.h): reason names,
 * settings (defaults, partial JSON, every error naming its member, the
 * canonical JSON reading back the same), the windowed counters (buckets,
 * keys, apps, windows kept apart; a rebuild keeps the live buckets and drops
 * the expired ones) against a brute-force count, the flood test at and around
 * its thresholds, the histogram buckets at their edges, network keys and the
 * shadow sample.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "umg_fraud.h"
#include "umg_apps.h"
#include "umg_fraud_model.h"
#include "umg_fraud_train.h"
#include "fraud_synth.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>

#define S INT64_C(1000000)

static void test_reasons(void **state)
{
    (void)state;
    for (unsigned r = 1; r < UMG_FR_N; r++) {
        const char *n = umg_fraud_reason_name(r);
        unsigned back = 0;
        assert_true(strlen(n) > 0);
        assert_int_equal(umg_fraud_reason_parse(umg_slice(n, strlen(n)), &back), UMG_OK);
        assert_int_equal(back, r);
    }
    unsigned x;
    assert_string_equal(umg_fraud_reason_name(0), "");
    assert_string_equal(umg_fraud_reason_name(99), "");
    assert_int_equal(umg_fraud_reason_parse(UMG_SLICE("click"), &x), UMG_ENOENT);
}

static void test_settings_defaults_and_json(void **state)
{
    (void)state;
    umg_fraud_settings_t s, t;
    umg_fraud_settings_default(&s);
    assert_true(s.rule[UMG_FR_CLICK_INJECTION].enabled);
    assert_int_equal(s.rule[UMG_FR_CLICK_FLOODING].action, UMG_FA_FLAG);
    assert_int_equal(s.rule[UMG_FR_TIME_ANOMALY].action, UMG_FA_FLAG);
    assert_false(s.rule[UMG_FR_SDK_SPOOFING].enabled);
    assert_true(s.p[UMG_FP_INJ_MIN_CTIT_S] == 10);
    assert_true(s.p[UMG_FP_SPAM_DEVICE_HOUR] == 10);
    assert_true(s.p[UMG_FP_FARM_IP_HOUR] == 20);
    assert_int_equal(s.model_mode, UMG_FM_OFF);
    /* a partial change, then the canonical JSON applied to the defaults gives the same settings */
    char field[96], msg[200];
    const char *body = "{\"rules\":{\"click_spam\":{\"action\":\"flag\",\"max_clicks_per_ip_minute\":50},"
                       "\"click_injection\":{\"check_install_begin\":false,\"enabled\":false}},"
                       "\"model\":{\"mode\":\"enforce\",\"threshold\":0.75,\"shadow_sample\":0.05}}";
    assert_int_equal(umg_fraud_settings_apply_json(&s, body, strlen(body), field, sizeof(field), msg, sizeof(msg)),
                     UMG_OK);
    assert_int_equal(s.rule[UMG_FR_CLICK_SPAM].action, UMG_FA_FLAG);
    assert_true(s.p[UMG_FP_SPAM_IP_MINUTE] == 50);
    assert_true(s.p[UMG_FP_SPAM_DEVICE_HOUR] == 10);
    assert_false(s.rule[UMG_FR_CLICK_INJECTION].enabled);
    assert_true(s.p[UMG_FP_INJ_INSTALL_BEGIN] == 0);
    assert_int_equal(s.model_mode, UMG_FM_ENFORCE);
    umg_buf_t j = {0};
    assert_int_equal(umg_fraud_settings_json(&s, &j), UMG_OK);
    assert_non_null(strstr(j.ptr, "\"threshold\":0.75,\"shadow_sample\":0.05"));
    umg_fraud_settings_default(&t);
    assert_int_equal(umg_fraud_settings_apply_json(&t, j.ptr, j.len, field, sizeof(field), msg, sizeof(msg)), UMG_OK);
    assert_memory_equal(&s, &t, sizeof(s));
    umg_buf_free(&j);
}

static void test_settings_errors(void **state)
{
    (void)state;
    static const struct {
        const char *body, *field;
        int rc;
    } cases[] = {
        {"[]", "", UMG_EPARSE},
        {"{", "", UMG_EPARSE},
        {"{\"rulez\":{}}", "rulez", UMG_EINVAL},
        {"{\"rules\":[]}", "rules", UMG_EINVAL},
        {"{\"rules\":{\"nope\":{}}}", "rules.nope", UMG_EINVAL},
        {"{\"rules\":{\"model\":{}}}", "rules.model", UMG_EINVAL},
        {"{\"rules\":{\"click_spam\":1}}", "rules.click_spam", UMG_EINVAL},
        {"{\"rules\":{\"click_spam\":{\"enabled\":1}}}", "rules.click_spam.enabled", UMG_EINVAL},
        {"{\"rules\":{\"click_spam\":{\"action\":\"block\"}}}", "rules.click_spam.action", UMG_EINVAL},
        {"{\"rules\":{\"click_spam\":{\"max_clicks_per_device_hour\":0}}}",
         "rules.click_spam.max_clicks_per_device_hour", UMG_EINVAL},
        {"{\"rules\":{\"click_spam\":{\"max_clicks_per_device_hour\":2.5}}}",
         "rules.click_spam.max_clicks_per_device_hour", UMG_EINVAL},
        {"{\"rules\":{\"click_spam\":{\"max_clicks_per_device_hour\":\"3\"}}}",
         "rules.click_spam.max_clicks_per_device_hour", UMG_EINVAL},
        {"{\"rules\":{\"click_spam\":{\"min_ctit_s\":3}}}", "rules.click_spam.min_ctit_s", UMG_EINVAL},
        {"{\"rules\":{\"click_flooding\":{\"min_long_ctit_share\":1.5}}}", "rules.click_flooding.min_long_ctit_share",
         UMG_EINVAL},
        {"{\"rules\":{\"sdk_spoofing\":{\"action\":\"flag\"}}}", "rules.sdk_spoofing.action", UMG_EINVAL},
        {"{\"model\":{\"mode\":\"on\"}}", "model.mode", UMG_EINVAL},
        {"{\"model\":{\"threshold\":-0.1}}", "model.threshold", UMG_EINVAL},
        {"{\"model\":{\"shadow_sample\":1.01}}", "model.shadow_sample", UMG_EINVAL},
        {"{\"model\":{\"colour\":1}}", "model.colour", UMG_EINVAL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        umg_fraud_settings_t s, before;
        umg_fraud_settings_default(&s);
        before = s;
        char field[96], msg[200];
        int rc = umg_fraud_settings_apply_json(&s, cases[i].body, strlen(cases[i].body), field, sizeof(field), msg,
                                               sizeof(msg));
        if (rc != cases[i].rc || strcmp(field, cases[i].field) != 0) {
            fail_msg("%s: rc %d field \"%s\" (%s)", cases[i].body, rc, field, msg);
        }
        assert_true(strlen(msg) > 0);
        assert_memory_equal(&s, &before, sizeof(s)); /* unchanged on error */
    }
    /* bounds are inclusive */
    umg_fraud_settings_t s;
    umg_fraud_settings_default(&s);
    char field[96], msg[200];
    const char *edge = "{\"rules\":{\"click_injection\":{\"min_ctit_s\":0},\"time_anomaly\":{\"max_future_s\":600}},"
                       "\"model\":{\"threshold\":1,\"shadow_sample\":0}}";
    assert_int_equal(umg_fraud_settings_apply_json(&s, edge, strlen(edge), field, sizeof(field), msg, sizeof(msg)),
                     UMG_OK);
}

/* ------------------------------------------------------------ counters */

static uint64_t rnd_state = 88172645463325252ull;
static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

typedef struct obs_s {
    int w;
    uint32_t app;
    uint64_t key;
    int64_t ts;
} obs_t;

static uint32_t brute(const obs_t *o, size_t n, int w, uint32_t app, uint64_t key, int64_t ts)
{
    int64_t len = umg_fraud_window_us((umg_fraud_window_t)w);
    int64_t b = ts / len;
    uint32_t c = 0;
    for (size_t i = 0; i < n; i++) {
        c += o[i].w == w && o[i].app == app && o[i].key == key && o[i].ts / len == b;
    }
    return c;
}

static void test_counts_against_brute_force(void **state)
{
    (void)state;
    umg_fraud_counts_t *c;
    assert_int_equal(umg_fraud_counts_new(UMG_FRAUD_HORIZON_MIN_US, &c), UMG_OK);
    enum { N = 20000 };
    obs_t *o = calloc(N, sizeof(*o));
    int64_t t0 = INT64_C(1795000000) * S;
    for (size_t i = 0; i < N; i++) {
        o[i].w = (int)(rnd() % UMG_FW_N);
        o[i].app = 1 + (uint32_t)(rnd() % 2);
        o[i].key = 1 + rnd() % 50;
        o[i].ts = t0 + (int64_t)(i * 3) * S + (int64_t)(rnd() % 600) * S; /* about 17 hours, a little disorder */
        int oom = 0;
        uint32_t got = umg_fraud_counts_add(c, (umg_fraud_window_t)o[i].w, o[i].app, o[i].key, o[i].ts,
                                            t0 + (int64_t)(i * 3) * S + 600 * S, &oom);
        assert_int_equal(oom, 0);
        assert_int_equal(got, brute(o, i + 1, o[i].w, o[i].app, o[i].key, o[i].ts));
    }
    for (size_t i = 0; i < N; i += 97) {
        assert_int_equal(umg_fraud_counts_get(c, (umg_fraud_window_t)o[i].w, o[i].app, o[i].key, o[i].ts),
                         brute(o, N, o[i].w, o[i].app, o[i].key, o[i].ts));
    }
    /* key 0 is never counted */
    int oom = 0;
    assert_int_equal(umg_fraud_counts_add(c, UMG_FW_CLICK_IP_MINUTE, 1, 0, t0, t0, &oom), 0);
    assert_int_equal(umg_fraud_counts_get(c, UMG_FW_CLICK_IP_MINUTE, 1, 0, t0), 0);
    free(o);
    umg_fraud_counts_free(c);
}

static void test_counts_bucket_edges_and_expiry(void **state)
{
    (void)state;
    umg_fraud_counts_t *c;
    assert_int_equal(umg_fraud_counts_new(UMG_FRAUD_HORIZON_MIN_US - 1, &c), UMG_EINVAL);
    assert_int_equal(umg_fraud_counts_new(UMG_FRAUD_HORIZON_MIN_US, &c), UMG_OK);
    int64_t h = INT64_C(1795000000) / 3600 * 3600 * S; /* a clock hour */
    int oom = 0;
    assert_int_equal(umg_fraud_counts_add(c, UMG_FW_CLICK_DEVICE_HOUR, 1, 7, h - 1, h, &oom), 1);
    assert_int_equal(umg_fraud_counts_add(c, UMG_FW_CLICK_DEVICE_HOUR, 1, 7, h, h, &oom), 1);
    assert_int_equal(umg_fraud_counts_add(c, UMG_FW_CLICK_DEVICE_HOUR, 1, 7, h + 3600 * S - 1, h, &oom), 2);
    assert_int_equal(umg_fraud_counts_add(c, UMG_FW_INSTALL_FP_DAY, 1, 7, h, h, &oom), 1);    /* windows apart */
    assert_int_equal(umg_fraud_counts_add(c, UMG_FW_CLICK_DEVICE_HOUR, 2, 7, h, h, &oom), 1); /* apps apart */
    /* A day window is the UTC day: it starts again at midnight, not 24 hours after the first install. */
    int64_t d = INT64_C(1795000000) / 86400 * 86400 * S;
    assert_int_equal(umg_fraud_counts_add(c, UMG_FW_INSTALL_FP_DAY, 1, 8, d - 1, h, &oom), 1);
    assert_int_equal(umg_fraud_counts_add(c, UMG_FW_INSTALL_FP_DAY, 1, 8, d, h, &oom), 1);
    assert_int_equal(umg_fraud_counts_add(c, UMG_FW_INSTALL_FP_DAY, 1, 8, d + 86400 * S - 1, h, &oom), 2);
    /* two days of other keys later, the table grows and drops the expired buckets */
    int64_t later = h + 2 * 86400 * S;
    for (uint64_t k = 100; k < 5000; k++) {
        umg_fraud_counts_add(c, UMG_FW_CLICK_IP_MINUTE, 1, k, later, later, &oom);
    }
    assert_int_equal(oom, 0);
    assert_int_equal(umg_fraud_counts_get(c, UMG_FW_CLICK_DEVICE_HOUR, 1, 7, h), 0);
    assert_int_equal(umg_fraud_counts_get(c, UMG_FW_CLICK_IP_MINUTE, 1, 4999, later), 1);
    size_t entries, bytes;
    umg_fraud_counts_stats(c, &entries, &bytes);
    assert_int_equal(entries, 4900);
    umg_fraud_counts_clear(c);
    umg_fraud_counts_stats(c, &entries, &bytes);
    assert_int_equal(entries, 0);
    assert_true(umg_fraud_in_window(later - UMG_FRAUD_HORIZON_MIN_US, later, UMG_FRAUD_HORIZON_MIN_US));
    assert_false(umg_fraud_in_window(later - UMG_FRAUD_HORIZON_MIN_US - 1, later, UMG_FRAUD_HORIZON_MIN_US));
    umg_fraud_counts_free(c);
}

/* A longer horizon keeps older buckets through a rebuild. */
static void test_counts_longer_horizon(void **state)
{
    (void)state;
    umg_fraud_counts_t *c;
    assert_int_equal(umg_fraud_counts_new(3 * UMG_FRAUD_HORIZON_MIN_US, &c), UMG_OK);
    int64_t h = INT64_C(1795000000) / 3600 * 3600 * S;
    int oom = 0;
    umg_fraud_counts_add(c, UMG_FW_INSTALL_IP_HOUR, 1, 9, h, h, &oom);
    int64_t later = h + 2 * 86400 * S;
    for (uint64_t k = 100; k < 5000; k++) {
        umg_fraud_counts_add(c, UMG_FW_CLICK_IP_MINUTE, 1, k, later, later, &oom);
    }
    assert_int_equal(umg_fraud_counts_get(c, UMG_FW_INSTALL_IP_HOUR, 1, 9, h), 1);
    later = h + 4 * 86400 * S;
    for (uint64_t k = 5000; k < 20000; k++) {
        umg_fraud_counts_add(c, UMG_FW_CLICK_IP_MINUTE, 1, k, later, later, &oom);
    }
    assert_int_equal(oom, 0);
    assert_int_equal(umg_fraud_counts_get(c, UMG_FW_INSTALL_IP_HOUR, 1, 9, h), 0);
    assert_true(umg_fraud_in_window(later - 3 * UMG_FRAUD_HORIZON_MIN_US, later, 3 * UMG_FRAUD_HORIZON_MIN_US));
    umg_fraud_counts_free(c);
}

/* ----------------------------------------------------------- the rest */

static void test_flood_thresholds(void **state)
{
    (void)state;
    umg_fraud_settings_t s;
    umg_fraud_settings_default(&s); /* 20 installs, long share >= 0.5, installs per click <= 0.01 */
    umg_fraud_flood_t f = {.clicks = 2000, .installs = 20, .long_installs = 10};
    assert_true(umg_fraud_flood_flagged(&s, &f));
    f.installs = 19, f.long_installs = 10;
    assert_false(umg_fraud_flood_flagged(&s, &f)); /* too few installs to judge */
    f.installs = 20, f.long_installs = 9;
    assert_false(umg_fraud_flood_flagged(&s, &f)); /* long share 0.45 */
    f.long_installs = 10, f.clicks = 1999;
    assert_false(umg_fraud_flood_flagged(&s, &f)); /* rate 0.01001 */
    f.clicks = 0;
    assert_false(umg_fraud_flood_flagged(&s, &f)); /* no clicks: rate counts as 1 */
}

static void test_buckets(void **state)
{
    (void)state;
    assert_int_equal(umg_fraud_ctit_bucket(-5), 0);
    assert_int_equal(umg_fraud_ctit_bucket(10 * S - 1), 0);
    assert_int_equal(umg_fraud_ctit_bucket(10 * S), 1);
    assert_int_equal(umg_fraud_ctit_bucket(3600 * S - 1), 3);
    assert_int_equal(umg_fraud_ctit_bucket(86400 * S), UMG_FRAUD_CTIT_LONG_BUCKET);
    assert_int_equal(umg_fraud_ctit_bucket(7 * 86400 * S), 6);
    assert_int_equal(umg_fraud_score_bucket(0), 0);
    assert_int_equal(umg_fraud_score_bucket(NAN), 0);
    assert_int_equal(umg_fraud_score_bucket(0.1), 1);
    assert_int_equal(umg_fraud_score_bucket(0.95), 9);
    assert_int_equal(umg_fraud_score_bucket(1.0), 9);
}

static void test_net_key_and_sample(void **state)
{
    (void)state;
    assert_int_equal(umg_fraud_net_key(UMG_SLICE("198.51.100.7")), umg_fraud_net_key(UMG_SLICE("198.51.100.250")));
    assert_int_equal(umg_fraud_net_key(UMG_SLICE("::ffff:198.51.100.7")), umg_fraud_net_key(UMG_SLICE("198.51.100.1")));
    assert_true(umg_fraud_net_key(UMG_SLICE("198.51.101.7")) != umg_fraud_net_key(UMG_SLICE("198.51.100.7")));
    assert_int_equal(umg_fraud_net_key(UMG_SLICE("2001:db8:1:2::1")),
                     umg_fraud_net_key(UMG_SLICE("2001:db8:1:2:ff::9")));
    assert_true(umg_fraud_net_key(UMG_SLICE("2001:db8:1:3::1")) != umg_fraud_net_key(UMG_SLICE("2001:db8:1:2::1")));
    assert_int_equal(umg_fraud_net_key(UMG_SLICE("not an ip")), 0);
    assert_int_equal(umg_fraud_net_key(UMG_SLICE("")), 0);
    /* the shadow sample: deterministic, about the share asked */
    int in = 0;
    for (uint32_t i = 0; i < 20000; i++) {
        umg_uuid_t u;
        memset(&u, 0, sizeof(u));
        memcpy(&u, &i, sizeof(i));
        int a = umg_fraud_in_sample(&u, 0.05);
        assert_int_equal(a, umg_fraud_in_sample(&u, 0.05));
        in += a;
        assert_true(umg_fraud_in_sample(&u, 1.0));
        assert_false(umg_fraud_in_sample(&u, 0.0));
    }
    assert_in_range(in, 800, 1200);
}

/*
 * The daemon's scorer keeps every app's model once loaded, however many apps score: a table of 64 evicted one
 * app per new one and loaded models again and again on the pipeline thread (found in review: an install took
 * 475 µs at 65 apps, 1 ms at 70).
 */
static void test_scorer_many_apps(void **state)
{
    (void)state;
    enum { NAPPS = 70, NROWS = 600 };
    char dir[] = "/tmp/umg-scorer-XXXXXX";
    assert_non_null(mkdtemp(dir));
    static float X[NROWS * UMG_FMODEL_NF];
    static uint8_t Y[NROWS], DAY[NROWS];
    fraud_synth(42, NROWS, X, Y, DAY);
    umg_fmodel_train_opts_t o;
    umg_fmodel_train_opts_init(&o);
    umg_fmodel_t *m;
    char msg[256];
    assert_int_equal(
        umg_fmodel_train(X, Y, NROWS, UMG_FMODEL_NF, umg_fmodel_feature_names, &o, &m, NULL, msg, sizeof(msg)), UMG_OK);
    char ids[NAPPS][64];
    for (int i = 0; i < NAPPS; i++) {
        char name[16], mdir[5120], path[5200];
        snprintf(name, sizeof(name), "a%d", i);
        umg_app_spec_t spec = {.org = "o", .name = name, .platform = "android"};
        umg_buf_t out = {0};
        assert_int_equal(umg_apps_create(dir, &spec, &out, msg, sizeof(msg)), UMG_OK);
        assert_int_equal(umg_buf_putc(&out, 0), UMG_OK);
        const char *at = strstr(out.ptr, "\"app_id\":\"");
        assert_non_null(at);
        assert_int_equal(sscanf(at + 10, "%63[^\"]", ids[i]), 1);
        umg_buf_free(&out);
        snprintf(mdir, sizeof(mdir), "%s/models", dir);
        mkdir(mdir, 0700);
        snprintf(mdir, sizeof(mdir), "%s/models/%s", dir, ids[i]);
        assert_int_equal(mkdir(mdir, 0700), 0);
        assert_int_equal(umg_fmodel_save(m, mdir, path, sizeof(path)), UMG_OK);
    }
    umg_apps_t *apps;
    assert_int_equal(umg_apps_open(dir, &apps), UMG_OK);
    uint32_t internal[NAPPS];
    for (int i = 0; i < NAPPS; i++) {
        umg_app_t a;
        assert_int_equal(umg_apps_find_id(apps, umg_slice(ids[i], strlen(ids[i])), &a), UMG_OK);
        internal[i] = a.id;
    }
    umg_fraud_scorer_t *s;
    assert_int_equal(umg_fraud_scorer_new(dir, apps, &s), UMG_OK);
    long loads0 = atomic_load(&umg__fraud_scorer_loads);
    double first = -1;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < NAPPS; i++) {
            double sc;
            assert_int_equal(umg_fraud_scorer_score(s, internal[i], X, UMG_FMODEL_NF, &sc), UMG_OK);
            first = first < 0 ? sc : first;
            assert_true(sc == first); /* one model, one row */
        }
    }
    assert_int_equal(atomic_load(&umg__fraud_scorer_loads) - loads0, NAPPS);
    umg_fraud_scorer_free(s);
    umg_apps_close(apps);
    umg_fmodel_free(m);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir); /* a fixed-length mkdtemp name */
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reasons),
        cmocka_unit_test(test_settings_defaults_and_json),
        cmocka_unit_test(test_settings_errors),
        cmocka_unit_test(test_counts_against_brute_force),
        cmocka_unit_test(test_counts_bucket_edges_and_expiry),
        cmocka_unit_test(test_counts_longer_horizon),
        cmocka_unit_test(test_flood_thresholds),
        cmocka_unit_test(test_buckets),
        cmocka_unit_test(test_net_key_and_sample),
        cmocka_unit_test(test_scorer_many_apps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
