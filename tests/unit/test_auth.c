/*
 * test_auth.c - the role -> permission matrix cell by cell (the same table as
 * docs/security.md), the permission check with app scoping and tenancy,
 * users and API tokens through umg_auth_authenticate, token versions,
 * password hashing and the append-only audit table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "umg_auth.h"
#include "umg_meta.h"

#include <stdlib.h>

/* docs/security.md, row by row: owner admin analyst marketer viewer */
static const struct {
    const char *perm;
    int cells[5];
} matrix[] = {
    {"apps:read", {1, 1, 1, 1, 1}},    {"apps:write", {1, 1, 0, 0, 0}},     {"keys:manage", {1, 1, 0, 0, 0}},
    {"users:manage", {1, 1, 0, 0, 0}}, {"reports:read", {1, 1, 1, 1, 1}},   {"export:raw", {1, 1, 1, 0, 0}},
    {"costs:write", {1, 1, 0, 1, 0}},  {"settings:write", {1, 1, 0, 1, 0}}, {"privacy:execute", {1, 1, 0, 0, 0}},
    {"audit:read", {1, 1, 0, 0, 0}},   {"org:manage", {1, 0, 0, 0, 0}},
};
static const umg_role_t roles[5] = {UMG_ROLE_OWNER, UMG_ROLE_ADMIN, UMG_ROLE_ANALYST, UMG_ROLE_MARKETER,
                                    UMG_ROLE_VIEWER};

static void test_matrix(void **state)
{
    (void)state;
    uint32_t seen = 0;
    for (size_t i = 0; i < sizeof(matrix) / sizeof(matrix[0]); i++) {
        uint32_t bit = umg_perm_parse(matrix[i].perm, strlen(matrix[i].perm));
        assert_int_not_equal(bit, 0);
        assert_string_equal(umg_perm_name(bit), matrix[i].perm);
        seen |= bit;
        for (int r = 0; r < 5; r++) {
            umg_principal_t p = {
                .kind = UMG_PRINCIPAL_USER, .org = 1, .all_apps = 1, .perms = umg_role_perms(roles[r])};
            umg_app_t app = {.id = 7, .org = 1};
            int want = matrix[i].cells[r];
            if (((umg_role_perms(roles[r]) & bit) != 0) != want) {
                fail_msg("%s for %s: got %d, want %d", matrix[i].perm, umg_role_name(roles[r]), !want, want);
            }
            assert_int_equal(umg_principal_can(&p, bit, (bit & UMG_PERM_ORG_LEVEL) ? NULL : &app), want);
        }
    }
    /* Every user permission is in the table, and no role holds an app-credential permission. */
    assert_int_equal(seen, UMG_PERM_USER_MASK);
    for (int r = 0; r < 5; r++) {
        assert_int_equal(umg_role_perms(roles[r]) & ~UMG_PERM_USER_MASK, 0);
    }
    assert_int_equal(umg_role_perms(UMG_ROLE_NONE), 0);
    assert_int_equal(umg_perm_parse("apps:read ", 10), 0);
    assert_int_equal(umg_role_parse("Owner", 5), UMG_ROLE_NONE);
    assert_int_equal(umg_role_parse("viewer", 6), UMG_ROLE_VIEWER);
    /* Granting: owners grant anything, admins anything but owner, others nothing. */
    assert_true(umg_role_may_grant(UMG_ROLE_OWNER, UMG_ROLE_OWNER));
    assert_false(umg_role_may_grant(UMG_ROLE_ADMIN, UMG_ROLE_OWNER));
    assert_true(umg_role_may_grant(UMG_ROLE_ADMIN, UMG_ROLE_VIEWER));
    assert_false(umg_role_may_grant(UMG_ROLE_ANALYST, UMG_ROLE_VIEWER));
}

static void test_scoping(void **state)
{
    (void)state;
    umg_principal_t p = {.kind = UMG_PRINCIPAL_USER, .org = 1, .perms = umg_role_perms(UMG_ROLE_ANALYST)};
    p.napps = 2;
    p.apps[0] = 3;
    p.apps[1] = 9;
    umg_app_t mine = {.id = 9, .org = 1}, other = {.id = 4, .org = 1}, foreign = {.id = 9, .org = 2};
    assert_true(umg_principal_can(&p, UMG_PERM_EXPORT_RAW, &mine));
    assert_false(umg_principal_can(&p, UMG_PERM_EXPORT_RAW, &other));
    assert_false(umg_principal_can(&p, UMG_PERM_EXPORT_RAW, &foreign));
    p.all_apps = 1;
    assert_true(umg_principal_can(&p, UMG_PERM_EXPORT_RAW, &other));
    assert_false(umg_principal_can(&p, UMG_PERM_EXPORT_RAW, &foreign));
    assert_false(umg_principal_can(&p, UMG_PERM_APPS_WRITE, &mine));
    assert_false(umg_principal_can(&p, 0, &mine));
    /* App credentials: only their own app. */
    umg_principal_t s = {.kind = UMG_PRINCIPAL_APP_SECRET, .org = 1, .perms = UMG_PERM_EXPORT_RAW};
    s.app = mine;
    assert_true(umg_principal_can(&s, UMG_PERM_EXPORT_RAW, &mine));
    assert_false(umg_principal_can(&s, UMG_PERM_EXPORT_RAW, &other));
    assert_false(umg_principal_can(&s, UMG_PERM_EXPORT_RAW, &foreign));
    assert_false(umg_principal_can(NULL, UMG_PERM_APPS_READ, NULL));
}

static char *field(const char *json, const char *name)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":\"", name);
    const char *p = strstr(json, pat);
    assert_non_null(p);
    p += strlen(pat);
    return strndup(p, strcspn(p, "\""));
}

static void test_authenticate(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/umg-auth-XXXXXX";
    char *dir = mkdtemp(tmpl);
    umg_apps_t *apps;
    assert_int_equal(umg_apps_open(dir, &apps), UMG_OK);
    umg_buf_t out = {0};
    char msg[256];
    umg_app_spec_t spec = {.org = "Acme", .name = "Game", .platform = "android"};
    assert_int_equal(umg_apps_create(dir, &spec, &out, msg, sizeof(msg)), UMG_OK);
    umg_buf_putc(&out, '\0');
    char *key = field(out.ptr, "app_key"), *secret = field(out.ptr, "app_secret"), *app_id = field(out.ptr, "app_id");
    assert_int_equal(umg_apps_refresh(apps), UMG_OK);

    umg_auth_config_t cfg = {.jwt_alg = "HS256", .jwt_secret_file = "", .access_ttl_ms = 900000};
    umg_auth_t *auth;
    assert_int_equal(umg_auth_open(dir, &cfg, apps, &auth, msg, sizeof(msg)), UMG_OK);

    /* A user, then an access token for them. */
    sqlite3 *db;
    assert_int_equal(umg_meta_open(dir, &db), UMG_OK);
    char org_pid[40];
    int64_t org = umg_meta_org_by_name(db, "Acme", 0, org_pid, sizeof(org_pid));
    assert_true(org > 0);
    umg_meta_user_t u = {.org_id = org,
                         .email = "a@acme.test",
                         .password = "password1",
                         .password_len = 9,
                         .role = UMG_ROLE_ANALYST,
                         .apps = app_id};
    const char *f;
    umg_buf_reset(&out);
    assert_int_equal(umg_meta_user_create(db, &u, &out, &f, msg, sizeof(msg)), UMG_OK);
    umg_buf_putc(&out, '\0');
    char *user_id = field(out.ptr, "user_id");
    assert_int_equal(umg_meta_user_create(db, &u, &out, &f, msg, sizeof(msg)), UMG_EEXIST);
    u.email = "not-an-email";
    assert_int_equal(umg_meta_user_create(db, &u, &out, &f, msg, sizeof(msg)), UMG_EINVAL);
    assert_string_equal(f, "email");
    u.email = "b@acme.test";
    u.password_len = 3;
    assert_int_equal(umg_meta_user_create(db, &u, &out, &f, msg, sizeof(msg)), UMG_EINVAL);
    assert_string_equal(f, "password");
    assert_int_equal(umg_auth_refresh(auth), UMG_OK);

    umg_jwt_claims_t c = {0};
    snprintf(c.sub, sizeof(c.sub), "%s", user_id);
    snprintf(c.org, sizeof(c.org), "%s", org_pid);
    int64_t now = umg_now_us();
    c.iat = c.nbf = now / 1000000;
    c.exp = c.iat + 600;
    umg_buf_t tok = {0}, hdr = {0};
    assert_int_equal(umg_jwt_sign(umg_auth_keys(auth), &c, &tok), UMG_OK);
    umg_buf_append(&hdr, "Bearer ", 7);
    umg_buf_append(&hdr, tok.ptr, tok.len);
    umg_credentials_t cred = {.authorization = umg_slice(hdr.ptr, hdr.len)};
    umg_principal_t p;
    umg_authn_error_t err;
    assert_int_equal(umg_auth_authenticate(auth, &cred, 0, now, &p, &err), UMG_OK);
    assert_int_equal(p.kind, UMG_PRINCIPAL_USER);
    assert_int_equal(p.role, UMG_ROLE_ANALYST);
    assert_int_equal(p.all_apps, 0);
    assert_int_equal(p.napps, 1);
    /* Raising the token version revokes the token on the next refresh. */
    assert_int_equal(sqlite3_exec(db, "UPDATE users SET token_version = 1", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(umg_auth_refresh(auth), UMG_OK);
    assert_int_equal(umg_auth_authenticate(auth, &cred, 0, now, &p, &err), UMG_EAUTH);
    assert_string_equal(err.code, "invalid_token");

    /* An API token, stored hashed. */
    char raw[80], hash[65];
    umg_meta_random_id(raw, "ut_", 32);
    umg_meta_token_hash(raw, strlen(raw), hash);
    char sql[512];
    snprintf(sql, sizeof(sql),
             "INSERT INTO api_tokens (public_id, org_id, created_by, name, token_hash, perms, created_us)"
             " VALUES ('tok_1', %lld, '%s', 'ci', '%s', %u, 1)",
             (long long)org, user_id, hash, (unsigned)(UMG_PERM_APPS_READ | UMG_PERM_EVENTS_WRITE));
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(umg_auth_refresh(auth), UMG_OK);
    umg_buf_reset(&hdr);
    umg_buf_append(&hdr, "Bearer ", 7);
    umg_buf_append(&hdr, raw, strlen(raw));
    cred.authorization = umg_slice(hdr.ptr, hdr.len);
    assert_int_equal(umg_auth_authenticate(auth, &cred, 0, now, &p, &err), UMG_OK);
    assert_int_equal(p.kind, UMG_PRINCIPAL_TOKEN);
    assert_int_equal(p.perms, UMG_PERM_APPS_READ); /* app-credential bits are masked off */
    hdr.ptr[17] ^= 1;                              /* a different token */
    assert_int_equal(umg_auth_authenticate(auth, &cred, 0, now, &p, &err), UMG_EAUTH);

    /* App credentials, and nothing at all. */
    umg_credentials_t kc = {.app_key = umg_slice(key, strlen(key))};
    assert_int_equal(umg_auth_authenticate(auth, &kc, 1, now, &p, &err), UMG_OK);
    assert_int_equal(p.kind, UMG_PRINCIPAL_APP_KEY);
    assert_int_equal(p.perms, UMG_PERM_EVENTS_WRITE);
    assert_int_equal(umg_auth_authenticate(auth, &kc, 0, now, &p, &err), UMG_EAUTH);
    umg_credentials_t sc = {.app_secret = umg_slice(secret, strlen(secret))};
    assert_int_equal(umg_auth_authenticate(auth, &sc, 0, now, &p, &err), UMG_OK);
    assert_int_equal(p.kind, UMG_PRINCIPAL_APP_SECRET);
    umg_credentials_t none = {0};
    assert_int_equal(umg_auth_authenticate(auth, &none, 0, now, &p, &err), UMG_ENOENT);

    /* The audit table is append-only. */
    umg_audit_t a = {.org_id = org, .actor = "cli", .action = "test", .outcome = "ok"};
    assert_int_equal(umg_meta_audit(db, &a), UMG_OK);
    assert_int_not_equal(sqlite3_exec(db, "UPDATE audit SET action = 'x'", NULL, NULL, NULL), SQLITE_OK);
    assert_int_not_equal(sqlite3_exec(db, "DELETE FROM audit", NULL, NULL, NULL), SQLITE_OK);

    /* Passwords. */
    char ph[128];
    assert_int_equal(umg_meta_password_hash("secret-pw", 9, ph), UMG_OK);
    assert_non_null(strstr(ph, "$argon2id$"));
    assert_true(umg_meta_password_check(ph, "secret-pw", 9));
    assert_false(umg_meta_password_check(ph, "secret-pX", 9));
    assert_int_equal(umg_meta_password_hash("short", 5, ph), UMG_EINVAL);

    sqlite3_close(db);
    umg_auth_close(auth);
    umg_apps_close(apps);
    umg_buf_free(&out);
    umg_buf_free(&tok);
    umg_buf_free(&hdr);
    free(key);
    free(secret);
    free(app_id);
    free(user_id);
    snprintf(sql, sizeof(sql), "rm -rf '%s'", dir);
    assert_int_equal(system(sql), 0);
}

int main(void)
{
    umg_log_min_level = UMG_LOG_ERROR;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matrix),
        cmocka_unit_test(test_scoping),
        cmocka_unit_test(test_authenticate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
