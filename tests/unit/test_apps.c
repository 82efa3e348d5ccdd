/*
 * test_apps.c - apps in meta.db: creation, validation, lookups by key,
 * secret and id, and the registry noticing an app created by another
 * connection (as the CLI does while the daemon runs).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "umg_admin.h"
#include "umg_apps.h"

#include <stdlib.h>
#include <unistd.h>

static char *field(const char *json, const char *name)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":\"", name);
    const char *p = strstr(json, pat);
    assert_non_null(p);
    p += strlen(pat);
    const char *e = strchr(p, '"');
    return strndup(p, (size_t)(e - p));
}

static void test_create_and_lookup(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/umg-apps-XXXXXX";
    char *dir = mkdtemp(tmpl);
    umg_apps_t *apps;
    assert_int_equal(umg_apps_open(dir, &apps), UMG_OK);
    assert_int_equal(umg_apps_count(apps), 0);

    umg_buf_t out = {0};
    char msg[256];
    umg_app_spec_t spec = {.org = "Acme", .name = "Game", .platform = "android"};
    assert_int_equal(umg_apps_create(dir, &spec, &out, msg, sizeof(msg)), UMG_OK);
    umg_buf_putc(&out, '\0');
    char *key = field(out.ptr, "app_key"), *secret = field(out.ptr, "app_secret"), *id = field(out.ptr, "app_id");
    assert_int_equal(strncmp(key, "ak_", 3), 0);
    assert_int_equal(strncmp(secret, "as_", 3), 0);
    assert_int_equal(strncmp(id, "app_", 4), 0);

    /* Same name in the same org: refused; bad platform: refused. */
    umg_buf_reset(&out);
    assert_int_equal(umg_apps_create(dir, &spec, &out, msg, sizeof(msg)), UMG_EEXIST);
    umg_app_spec_t bad = {.org = "Acme", .name = "X", .platform = "symbian"};
    assert_int_equal(umg_apps_create(dir, &bad, &out, msg, sizeof(msg)), UMG_EINVAL);
    assert_non_null(strstr(msg, "platform"));

    /* The open registry picks the new app up on refresh. */
    umg_app_t app;
    assert_int_equal(umg_apps_find_key(apps, umg_slice(key, strlen(key)), &app), UMG_ENOENT);
    assert_int_equal(umg_apps_refresh(apps), UMG_OK);
    assert_int_equal(umg_apps_find_key(apps, umg_slice(key, strlen(key)), &app), UMG_OK);
    assert_string_equal(app.public_id, id);
    assert_string_equal(app.platform, "android");
    assert_int_equal(umg_apps_find_secret(apps, umg_slice(secret, strlen(secret)), &app), UMG_OK);
    assert_int_equal(umg_apps_find_id(apps, umg_slice(id, strlen(id)), &app), UMG_OK);
    /* A key is not a secret, a prefix is not a key. */
    assert_int_equal(umg_apps_find_secret(apps, umg_slice(key, strlen(key)), &app), UMG_ENOENT);
    assert_int_equal(umg_apps_find_key(apps, umg_slice(key, strlen(key) - 1), &app), UMG_ENOENT);

    /* Many apps: every one found by its key. */
    char *keys[40];
    for (int i = 0; i < 40; i++) {
        char name[32];
        snprintf(name, sizeof(name), "app-%d", i);
        umg_app_spec_t s = {.org = i % 2 ? "Acme" : "Other", .name = name, .platform = "ios"};
        umg_buf_reset(&out);
        assert_int_equal(umg_apps_create(dir, &s, &out, msg, sizeof(msg)), UMG_OK);
        umg_buf_putc(&out, '\0');
        keys[i] = field(out.ptr, "app_key");
    }
    assert_int_equal(umg_apps_refresh(apps), UMG_OK);
    assert_int_equal(umg_apps_count(apps), 41);
    for (int i = 0; i < 40; i++) {
        assert_int_equal(umg_apps_find_key(apps, umg_slice(keys[i], strlen(keys[i])), &app), UMG_OK);
        free(keys[i]);
    }
    umg_buf_reset(&out);
    assert_int_equal(umg_apps_list(dir, &out), UMG_OK);
    umg_buf_putc(&out, '\0');
    assert_non_null(strstr(out.ptr, secret));
    umg_apps_close(apps);
    umg_buf_free(&out);
    free(key);
    free(secret);
    free(id);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* settings.timezone and settings.currency reach the registry: from `app create` and from a later change. */
static void test_reporting_settings(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/umg-apps-XXXXXX";
    char *dir = mkdtemp(tmpl);
    umg_apps_t *apps;
    assert_int_equal(umg_apps_open(dir, &apps), UMG_OK);
    umg_buf_t out = {0};
    char msg[256];
    umg_app_spec_t plain = {.org = "Acme", .name = "Plain", .platform = "web"};
    assert_int_equal(umg_apps_create(dir, &plain, &out, msg, sizeof(msg)), UMG_OK);
    umg_buf_putc(&out, '\0');
    char *plain_id = field(out.ptr, "app_id");
    umg_app_spec_t spec = {.org = "Acme", .name = "Game", .platform = "ios", .timezone = "UTC", .currency = "EUR"};
    umg_buf_reset(&out);
    assert_int_equal(umg_apps_create(dir, &spec, &out, msg, sizeof(msg)), UMG_OK);
    umg_buf_putc(&out, '\0');
    char *id = field(out.ptr, "app_id");
    umg_app_spec_t bad = {.org = "Acme", .name = "Bad", .platform = "ios", .currency = "eur"};
    assert_int_equal(umg_apps_create(dir, &bad, &out, msg, sizeof(msg)), UMG_EINVAL);
    assert_non_null(strstr(msg, "currency"));
    bad.currency = NULL;
    bad.timezone = "../UTC";
    assert_int_equal(umg_apps_create(dir, &bad, &out, msg, sizeof(msg)), UMG_EINVAL);
    assert_non_null(strstr(msg, "timezone"));

    umg_app_t app;
    assert_int_equal(umg_apps_refresh(apps), UMG_OK);
    assert_int_equal(umg_apps_find_id(apps, umg_slice(plain_id, strlen(plain_id)), &app), UMG_OK);
    assert_string_equal(app.timezone, "UTC");
    assert_string_equal(app.currency, "USD");
    assert_int_equal(umg_apps_find_id(apps, umg_slice(id, strlen(id)), &app), UMG_OK);
    assert_string_equal(app.timezone, "UTC");
    assert_string_equal(app.currency, "EUR");

    /* Changed as `admin app settings` does (the admin API's own code): the next refresh has it. A
     * source name that looks like the member must not fool the registry. */
    const char *zone = access("/usr/share/zoneinfo/Asia/Tokyo", R_OK) == 0 ? "Asia/Tokyo" : "UTC";
    char json[256];
    snprintf(json, sizeof(json),
             "{\"source_click_lookback_days\":{\"\\\"timezone\\\":\\\"X\":3},\"timezone\":\"%s\","
             "\"currency\":\"JPY\"}",
             zone);
    umg_buf_reset(&out);
    assert_int_equal(umg_admin_cli_app_settings(dir, id, json, &out), UMG_OK);
    assert_int_equal(umg_apps_refresh(apps), UMG_OK);
    assert_int_equal(umg_apps_find_id(apps, umg_slice(id, strlen(id)), &app), UMG_OK);
    assert_string_equal(app.timezone, zone);
    assert_string_equal(app.currency, "JPY");
    assert_int_equal(app.source_windows, 1);

    umg_apps_close(apps);
    umg_buf_free(&out);
    free(plain_id);
    free(id);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    umg_log_min_level = UMG_LOG_ERROR;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_and_lookup),
        cmocka_unit_test(test_reporting_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
