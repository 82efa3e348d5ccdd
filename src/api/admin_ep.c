/*
 * admin_ep.c - the admin API's endpoints, run one at a time on the admin
 * worker thread against its own connection to meta.db.
 *
 * Rules every endpoint follows:
 *  - another organization's objects do not exist (404), and error messages
 *    never say whether they do;
 *  - a missing permission on an object of the caller's organization is 403,
 *    naming the permission;
 *  - request bodies are JSON objects; an unknown member is 400 naming it;
 *  - every change is written to the audit log in the same transaction.
 */
#include "admin_int.h"
#include "umg_event.h"
#include "umg_privacy.h"

#include <sodium.h>
#include <stdlib.h>
#include <stdarg.h>

#define US 1000000ll

/* Scratch for error field names (the worker is one thread). */
static char err_field[80];

/* ---------------------------------------------------------------- output helpers */

static int put_str(umg_buf_t *b, const char *name, const char *v, int comma)
{
    int rc = umg_buf_printf(b, "%s\"%s\":", comma ? "," : "", name);
    if (v == NULL) {
        return rc ? rc : umg_buf_append(b, "null", 4);
    }
    return rc ? rc : umg_buf_json_str(b, v, strlen(v));
}

/* Opens an object ("{" after a "," when comma) with its first member. */
static int put_obj(umg_buf_t *b, const char *name, int comma, const char *v)
{
    int rc = umg_buf_append(b, comma ? ",{" : "{", comma ? 2 : 1);
    return rc ? rc : put_str(b, name, v, 0);
}

static int put_time(umg_buf_t *b, const char *name, int64_t us)
{
    if (us <= 0) {
        return umg_buf_printf(b, ",\"%s\":null", name);
    }
    char t[32];
    umg_time_format_rfc3339(us, t);
    return umg_buf_printf(b, ",\"%s\":\"%s\"", name, t);
}

/* A comma-separated id list as a JSON array; NULL as "all". */
static int put_apps(umg_buf_t *b, const char *csv)
{
    if (csv == NULL) {
        return umg_buf_append(b, ",\"apps\":\"all\"", 13);
    }
    int rc = umg_buf_append(b, ",\"apps\":[", 9);
    for (const char *s = csv; rc == UMG_OK && *s;) {
        const char *e = strchr(s, ',');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        rc = umg_buf_append(b, s == csv ? "\"" : ",\"", s == csv ? 1 : 2);
        rc = rc ? rc : umg_buf_append(b, s, n);
        rc = rc ? rc : umg_buf_putc(b, '"');
        s += n + (e != NULL);
    }
    return rc ? rc : umg_buf_putc(b, ']');
}

static const char *col(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

static void answer(job_t *j, int status)
{
    j->status = status;
}

static int oom(job_t *j)
{
    umg__job_error(j, 503, "out_of_memory", NULL, "out of memory; retry");
    return -1;
}

static int db_error(umg_admin_t *a, job_t *j)
{
    umg_log(UMG_LOG_ERROR, "admin", "meta.db: %s (request %s)", sqlite3_errmsg(a->db), j->request_id);
    umg__job_error(j, 503, "storage_unavailable", NULL, "the metadata store failed; retry");
    return -1;
}

/* ---------------------------------------------------------------- request helpers */

typedef struct body_s {
    umg_json_val_t root;
    int present;
} body_t;

/*
 * Checks that every member of the object obj is in allowed (NULL-terminated);
 * 400 unknown_field naming "name.member" (or "member" at the top) otherwise.
 */
static int check_members(job_t *j, umg_json_val_t obj, const char *name, const char *const *allowed)
{
    if (umg_json_type(obj) != UMG_JSON_OBJECT) {
        umg__job_error(j, 400, name ? "invalid_type" : "invalid_json", name,
                       name ? "must be an object" : "the body must be a JSON object");
        return -1;
    }
    umg_json_iter_t it;
    umg_json_item_t items[16];
    size_t n;
    uint64_t seen = 0; /* a bit per allowed member: one named twice would take effect once and be audited twice */
    umg_json_object_iter(obj, &it);
    while ((n = umg_json_object_next(&it, items, UMG_ARRAY_SIZE(items))) > 0) {
        for (size_t i = 0; i < n; i++) {
            size_t k = 0;
            while (allowed[k] != NULL &&
                   !(strlen(allowed[k]) == items[i].klen && memcmp(allowed[k], items[i].key, items[i].klen) == 0)) {
                k++;
            }
            int twice = allowed[k] != NULL && k < 64 && (seen >> k & 1);
            if (allowed[k] == NULL || twice) {
                snprintf(err_field, sizeof(err_field), "%s%s%.*s", name ? name : "", name ? "." : "",
                         (int)UMG_MIN(items[i].klen, 48), items[i].key);
                for (char *c = err_field; *c; c++) {
                    *c = (unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f ? '?' : *c;
                }
                umg__job_error(j, 400, twice ? "invalid_value" : "unknown_field", err_field,
                               twice ? "this member is named twice" : "this member is not known here");
                return -1;
            }
            seen |= k < 64 ? UINT64_C(1) << k : 0;
        }
    }
    return 0;
}

/* Parses the body as a JSON object whose members are all in allowed (NULL-terminated). */
static int parse_body(umg_admin_t *a, job_t *j, const char *const *allowed, body_t *b)
{
    memset(b, 0, sizeof(*b));
    if (j->body_len == 0) {
        return 0;
    }
    umg_json_err_t e = umg_json_parse(a->json, j->body, j->body_len, &b->root);
    if (e != UMG_JSON_OK) {
        umg__job_error(j, 400, "invalid_json", NULL,
                       e == UMG_JSON_EUTF8 ? "the body is not valid UTF-8" : "the body must be a JSON object");
        return -1;
    }
    b->present = 1;
    return check_members(j, b->root, NULL, allowed);
}

static int find(body_t *b, const char *name, umg_json_val_t *v)
{
    return b->present && umg_json_object_find(b->root, name, strlen(name), v) == UMG_JSON_OK &&
           umg_json_type(*v) != UMG_JSON_NULL;
}

/* A printable string of 1..cap-1 bytes. 1 present, 0 absent, -1 error (answered). */
static int get_str(job_t *j, body_t *b, const char *name, int required, char *dst, size_t cap)
{
    umg_json_val_t v;
    if (!find(b, name, &v)) {
        if (required) {
            umg__job_error(j, 400, "required", name, "this member is required");
            return -1;
        }
        return 0;
    }
    const char *s;
    size_t len;
    if (umg_json_get_string(v, &s, &len) != UMG_JSON_OK) {
        umg__job_error(j, 400, "invalid_type", name, "must be a string");
        return -1;
    }
    if (len == 0 || len >= cap) {
        umg__job_error(j, 400, len ? "too_long" : "invalid_value", name, len ? "too long" : "must not be empty");
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            umg__job_error(j, 400, "invalid_value", name, "control characters are not allowed");
            return -1;
        }
    }
    memcpy(dst, s, len);
    dst[len] = '\0';
    return 1;
}

static int get_int(job_t *j, body_t *b, const char *name, int64_t min, int64_t max, int64_t *out)
{
    umg_json_val_t v;
    if (!find(b, name, &v)) {
        return 0;
    }
    if (umg_json_get_int64(v, out) != UMG_JSON_OK) {
        umg__job_error(j, 400, "invalid_type", name, "must be an integer");
        return -1;
    }
    if (*out < min || *out > max) {
        char msg[96];
        snprintf(msg, sizeof(msg), "must be between %lld and %lld", (long long)min, (long long)max);
        umg__job_error(j, 400, "invalid_value", name, msg);
        return -1;
    }
    return 1;
}

static int get_num(job_t *j, body_t *b, const char *name, double min, double max, double *out)
{
    umg_json_val_t v;
    if (!find(b, name, &v)) {
        return 0;
    }
    if (umg_json_get_double(v, out) != UMG_JSON_OK) {
        umg__job_error(j, 400, "invalid_type", name, "must be a number");
        return -1;
    }
    if (!(*out >= min && *out <= max)) {
        char msg[96];
        snprintf(msg, sizeof(msg), "must be between %g and %g", min, max);
        umg__job_error(j, 400, "invalid_value", name, msg);
        return -1;
    }
    return 1;
}

static int get_bool(job_t *j, body_t *b, const char *name, int *out)
{
    umg_json_val_t v;
    if (!find(b, name, &v)) {
        return 0;
    }
    if (umg_json_get_bool(v, out) != UMG_JSON_OK) {
        umg__job_error(j, 400, "invalid_type", name, "must be true or false");
        return -1;
    }
    return 1;
}

/* An array of short ids ([a-z0-9_:.-]) joined with commas into csv. */
typedef struct list_ctx_s {
    job_t *j;
    const char *name;
    umg_buf_t *csv;
    size_t max_len;
    int err;
} list_ctx_t;

static int list_elem(void *ctx, size_t index, umg_json_val_t v)
{
    list_ctx_t *c = ctx;
    const char *s;
    size_t len;
    if (umg_json_get_string(v, &s, &len) != UMG_JSON_OK || len == 0 || len > c->max_len) {
        c->err = 1;
        return 1;
    }
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == ':' || ch == '.' ||
              ch == '-')) {
            c->err = 1;
            return 1;
        }
    }
    int rc = index ? umg_buf_putc(c->csv, ',') : UMG_OK;
    rc = rc ? rc : umg_buf_append(c->csv, s, len);
    if (rc != UMG_OK) {
        c->err = 2;
        return 1;
    }
    return 0;
}

static int get_list(job_t *j, body_t *b, const char *name, size_t max_items, size_t max_len, umg_buf_t *csv)
{
    umg_json_val_t v;
    if (!find(b, name, &v)) {
        return 0;
    }
    if (umg_json_type(v) != UMG_JSON_ARRAY) {
        umg__job_error(j, 400, "invalid_type", name, "must be an array of strings");
        return -1;
    }
    if (umg_json_array_size(v) > max_items) {
        umg__job_error(j, 400, "too_long", name, "too many items");
        return -1;
    }
    list_ctx_t c = {j, name, csv, max_len, 0};
    umg_json_array_foreach(v, list_elem, &c);
    if (c.err == 2) {
        return oom(j);
    }
    if (c.err) {
        umg__job_error(j, 400, "invalid_value", name, "items must be short lowercase identifiers");
        return -1;
    }
    if (csv->len == 0) {
        umg__job_error(j, 400, "invalid_value", name, "must not be empty");
        return -1;
    }
    return umg_buf_putc(csv, '\0') == UMG_OK ? 1 : oom(j);
}

/* A query-string parameter, URL-decoded into dst. 1 present, 0 absent, -1 too long or bad. */
static int query_get(job_t *j, const char *name, char *dst, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *s = j->query; *s;) {
        const char *e = strchr(s, '&');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len > nl && s[nl] == '=' && memcmp(s, name, nl) == 0) {
            size_t o = 0;
            for (size_t i = nl + 1; i < len; i++) {
                int c = (unsigned char)s[i];
                if (c == '+') {
                    c = ' ';
                } else if (c == '%' && i + 2 < len && umg_hexval(s[i + 1]) >= 0 && umg_hexval(s[i + 2]) >= 0) {
                    c = umg_hexval(s[i + 1]) * 16 + umg_hexval(s[i + 2]);
                    i += 2;
                }
                if (o + 1 >= cap || c < 0x20 || c == 0x7f) {
                    umg__job_error(j, 400, "invalid_value", name, "too long or not printable");
                    return -1;
                }
                dst[o++] = (char)c;
            }
            dst[o] = '\0';
            return 1;
        }
        s += len + (e != NULL);
    }
    return 0;
}

/* The path's segments after "/v1/": seg[0] = "apps", seg[1] = "app_..", ... */
#define MAX_SEGS 6
typedef struct path_s {
    char buf[256];
    const char *seg[MAX_SEGS];
    int n;
} path_t;

static int split_path(const char *path, path_t *p)
{
    memset(p, 0, sizeof(*p));
    if (strncmp(path, "/v1/", 4) != 0 || strlen(path + 4) >= sizeof(p->buf)) {
        return -1;
    }
    strcpy(p->buf, path + 4);
    for (char *save = NULL, *t = strtok_r(p->buf, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
        if (p->n == MAX_SEGS) {
            return -1;
        }
        p->seg[p->n++] = t;
    }
    return 0;
}

static int is(const char *a, const char *b)
{
    return a != NULL && strcmp(a, b) == 0;
}

/* 1 when the id looks like PREFIX + hex (anything else cannot exist). */
static int valid_id(const char *s, const char *prefix)
{
    size_t pl = strlen(prefix), n = strlen(s);
    if (n <= pl || n > 40 || strncmp(s, prefix, pl) != 0) {
        return 0;
    }
    for (size_t i = pl; i < n; i++) {
        if (umg_hexval(s[i]) < 0 || (s[i] >= 'A' && s[i] <= 'F')) {
            return 0;
        }
    }
    return 1;
}

static const char *actor(job_t *j)
{
    return j->who.kind == UMG_PRINCIPAL_NONE ? "anonymous" : j->who.id;
}

static void audit(umg_admin_t *a, job_t *j, int64_t org, const char *action, const char *target, const char *outcome,
                  const char *detail)
{
    umg_audit_t r = {.org_id = org,
                     .actor = actor(j),
                     .action = action,
                     .target = target,
                     .outcome = outcome,
                     .ip = j->ip,
                     .request_id = j->request_id,
                     .detail = detail};
    umg_meta_audit(a->db, &r);
}

static int need(job_t *j, uint32_t perm, const umg_app_t *app)
{
    if (umg_principal_can(&j->who, perm, app)) {
        return 1;
    }
    char msg[96];
    snprintf(msg, sizeof(msg), "this needs the %s permission%s", umg_perm_name(perm),
             app ? " on this app" : " in this organization");
    umg__job_error(j, 403, "forbidden", NULL, msg);
    return 0;
}

static int begin(umg_admin_t *a)
{
    return sqlite3_exec(a->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

/* Commits, then reloads the registries so the change holds for the very next request. */
static int commit(umg_admin_t *a, job_t *j)
{
    if (sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
        return db_error(a, j);
    }
    if (a->auth != NULL) { /* NULL: the CLI, whose writes the daemon notices by itself */
        umg_apps_refresh(umg_auth_apps(a->auth));
        umg_auth_refresh(a->auth);
    }
    return 0;
}

static void rollback(umg_admin_t *a)
{
    sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
}

/* Prepares sql, binding "%" arguments by the types in fmt: i int64, t text (NULL ok), d double. */
static sqlite3_stmt *q(umg_admin_t *a, const char *sql, const char *fmt, ...)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(a->db, sql, -1, &st, NULL) != SQLITE_OK) {
        umg_log(UMG_LOG_ERROR, "admin", "cannot prepare %s: %s", sql, sqlite3_errmsg(a->db));
        return NULL;
    }
    va_list ap;
    va_start(ap, fmt);
    for (int i = 0; fmt[i]; i++) {
        if (fmt[i] == 'i') {
            sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
        } else if (fmt[i] == 'd') {
            sqlite3_bind_double(st, i + 1, va_arg(ap, double));
        } else {
            const char *s = va_arg(ap, const char *);
            sqlite3_bind_text(st, i + 1, s, -1, SQLITE_TRANSIENT);
        }
    }
    va_end(ap);
    return st;
}

/* Runs a statement that returns no rows; 0 on success. */
static int exec(umg_admin_t *a, sqlite3_stmt *st)
{
    int rc = st != NULL && sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(st);
    (void)a;
    return rc;
}

/* Loads an app of the caller's organization; another org's app is "not found". */
static int load_app(umg_admin_t *a, job_t *j, const char *public_id, umg_app_t *app)
{
    memset(app, 0, sizeof(*app));
    if (!valid_id(public_id, "app_")) {
        umg__job_error(j, 404, "not_found", NULL, "no such app");
        return -1;
    }
    sqlite3_stmt *st =
        q(a, "SELECT id, org_id FROM apps WHERE public_id = ? AND org_id = ?", "ti", public_id, (int64_t)j->who.org);
    if (st == NULL) {
        return db_error(a, j);
    }
    int found = sqlite3_step(st) == SQLITE_ROW;
    if (found) {
        app->id = (uint32_t)sqlite3_column_int64(st, 0);
        app->org = (uint32_t)sqlite3_column_int64(st, 1);
        snprintf(app->public_id, sizeof(app->public_id), "%s", public_id);
    }
    sqlite3_finalize(st);
    if (!found || !umg_principal_can(&j->who, UMG_PERM_APPS_READ, app)) {
        /* An app the caller may not even read does not exist for them. */
        umg__job_error(j, 404, "not_found", NULL, "no such app");
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- tokens */

static int issue_tokens(umg_admin_t *a, job_t *j, int64_t user_id, const char *user_pid, const char *org_pid,
                        int64_t version, const char *family)
{
    const umg_auth_config_t *cfg = umg_auth_config(a->auth);
    int64_t now = umg_now_us();
    umg_jwt_claims_t c;
    memset(&c, 0, sizeof(c));
    snprintf(c.sub, sizeof(c.sub), "%s", user_pid);
    snprintf(c.org, sizeof(c.org), "%s", org_pid);
    c.iat = c.nbf = now / US;
    c.exp = c.iat + cfg->access_ttl_ms / 1000;
    c.ver = version;
    umg_buf_t access = {0};
    if (umg_jwt_sign(umg_auth_keys(a->auth), &c, &access) != UMG_OK) {
        umg_buf_free(&access);
        return oom(j);
    }
    char rt[80], hash[65], fam[40];
    umg_meta_random_id(rt, "rt_", 32);
    umg_meta_token_hash(rt, strlen(rt), hash);
    if (family == NULL) {
        umg_meta_random_id(fam, "fam_", 12);
        family = fam;
    }
    if (exec(a, q(a,
                  "INSERT INTO refresh_tokens (user_id, family, token_hash, created_us, expires_us)"
                  " VALUES (?, ?, ?, ?, ?)",
                  "ittii", user_id, family, hash, now, now + cfg->refresh_ttl_ms * 1000)) != 0) {
        umg_buf_free(&access);
        return db_error(a, j);
    }
    umg_buf_t *o = &j->out;
    int rc = umg_buf_append(o, "{\"access_token\":\"", 17);
    rc = rc ? rc : umg_buf_append(o, access.ptr, access.len);
    rc = rc ? rc
            : umg_buf_printf(o,
                             "\",\"token_type\":\"Bearer\",\"expires_in\":%lld,\"refresh_token\":\"%s\","
                             "\"refresh_expires_in\":%lld,\"user_id\":\"%s\",\"org_id\":\"%s\"}\n",
                             (long long)(cfg->access_ttl_ms / 1000), rt, (long long)(cfg->refresh_ttl_ms / 1000),
                             user_pid, org_pid);
    umg_buf_free(&access);
    if (rc != UMG_OK) {
        return oom(j);
    }
    answer(j, 200);
    return 0;
}

static const char *dummy_hash(void)
{
    static char h[128];
    if (h[0] == '\0' && umg_meta_password_hash("not-a-real-password", 19, h) != UMG_OK) {
        h[0] = '\0';
    }
    return h;
}

/* A request the login limiter refuses for email or the client's address: 429 with Retry-After, audited as action
 * on target (rate_limited). 1 when it was. */
static int limited(umg_admin_t *a, job_t *j, const char *email, int64_t org, const char *action, const char *target,
                   const char *message)
{
    int64_t wait = umg_login_limit_wait(a->login_limit, j->ip, email, umg_now_us());
    if (wait <= 0) {
        return 0;
    }
    audit(a, j, org, action, target, "rate_limited", NULL);
    umg__job_error(j, 429, "too_many_attempts", NULL, message);
    snprintf(j->extra, sizeof(j->extra), "Retry-After: %lld\r\nCache-Control: no-store\r\n", (long long)wait);
    return 1;
}

/* A login refused for the limiter; 1 when it was. */
static int login_limited(umg_admin_t *a, job_t *j, const char *email)
{
    if (!limited(a, j, email, 0, "auth.login", email, "too many failed logins; wait before trying again")) {
        return 0;
    }
    umg__admin_count_login("limited");
    return 1;
}

#define LOGIN_SELECT                                                                                                   \
    "SELECT u.id, u.public_id, u.org_id, o.public_id, u.password_hash, u.disabled,"                                    \
    " u.token_version FROM users u JOIN orgs o ON o.id = u.org_id WHERE u.email = ?"

/* The user row of a login (LOGIN_SELECT); NULL when the database failed (answered). */
static sqlite3_stmt *login_user(umg_admin_t *a, job_t *j, const char *email)
{
    sqlite3_stmt *st = q(a, LOGIN_SELECT, "t", email);
    if (st == NULL) {
        db_error(a, j);
    }
    return st;
}

/*
 * POST /v1/auth/login takes two turns on the worker. The first reads the body, asks the limiter and reads the
 * user's password hash; the password thread then checks the password (argon2id, about 0.1 s), so that other
 * admin requests do not wait behind logins; the second turn (login_finish) answers.
 */
static void ep_login(umg_admin_t *a, job_t *j)
{
    static const char *const allowed[] = {"email", "password", NULL};
    body_t b;
    login_check_t *l = umg_calloc(1, sizeof(*l));
    if (l == NULL) {
        oom(j);
        return;
    }
    j->login = l;
    if (parse_body(a, j, allowed, &b) || get_str(j, &b, "email", 1, l->email, sizeof(l->email)) < 0 ||
        get_str(j, &b, "password", 1, l->password, sizeof(l->password)) < 0) {
        return;
    }
    l->password_len = strlen(l->password);
    for (char *c = l->email; *c; c++) {
        *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
    }
    if (login_limited(a, j, l->email)) {
        return;
    }
    sqlite3_stmt *st = login_user(a, j, l->email);
    if (st == NULL) {
        return;
    }
    l->found = sqlite3_step(st) == SQLITE_ROW;
    snprintf(l->hash, sizeof(l->hash), "%s", l->found ? col(st, 4) : dummy_hash());
    sqlite3_finalize(st);
    l->pending = 1; /* the worker hands the job to the password thread */
}

/* The second turn of a login, its password checked: the limiter again (guesses that were in flight together
 * count as if they had come one by one), the user again (the hash checked must still be theirs), the answer. */
static void login_finish(umg_admin_t *a, job_t *j)
{
    const login_check_t *l = j->login;
    if (login_limited(a, j, l->email)) {
        return;
    }
    sqlite3_stmt *st = login_user(a, j, l->email);
    if (st == NULL) {
        return;
    }
    int found = l->found && sqlite3_step(st) == SQLITE_ROW;
    if (!found || !l->ok || strcmp(col(st, 4), l->hash) != 0 || sqlite3_column_int(st, 5) != 0) {
        int64_t org = found ? sqlite3_column_int64(st, 2) : 0;
        sqlite3_finalize(st);
        umg_login_limit_failed(a->login_limit, j->ip, l->email, umg_now_us());
        umg__admin_count_login("failed");
        audit(a, j, org, "auth.login", l->email, "failed", NULL);
        umg__job_error(j, 401, "invalid_credentials", NULL, "wrong e-mail address or password");
        return;
    }
    int64_t uid = sqlite3_column_int64(st, 0), org = sqlite3_column_int64(st, 2), ver = sqlite3_column_int64(st, 6);
    char upid[40], opid[40];
    snprintf(upid, sizeof(upid), "%s", col(st, 1));
    snprintf(opid, sizeof(opid), "%s", col(st, 3));
    sqlite3_finalize(st);
    umg_login_limit_succeeded(a->login_limit, l->email, umg_now_us());
    umg__admin_count_login("ok");
    if (begin(a)) {
        db_error(a, j);
        return;
    }
    exec(a, q(a, "UPDATE users SET last_login_us = ? WHERE id = ?", "ii", umg_now_us(), uid));
    j->who.kind = UMG_PRINCIPAL_USER; /* for the audit actor */
    snprintf(j->who.id, sizeof(j->who.id), "%s", upid);
    audit(a, j, org, "auth.login", upid, "ok", NULL);
    if (issue_tokens(a, j, uid, upid, opid, ver, NULL) != 0) {
        rollback(a);
        return;
    }
    commit(a, j);
}

static void ep_refresh(umg_admin_t *a, job_t *j, int logout)
{
    static const char *const allowed[] = {"refresh_token", NULL};
    body_t b;
    char rt[128], hash[65];
    if (parse_body(a, j, allowed, &b) || get_str(j, &b, "refresh_token", 1, rt, sizeof(rt)) < 0) {
        return;
    }
    umg_meta_token_hash(rt, strlen(rt), hash);
    if (begin(a)) {
        db_error(a, j);
        return;
    }
    sqlite3_stmt *st = q(a,
                         "SELECT r.id, r.family, r.expires_us, r.used_us, r.revoked_us, u.id, u.public_id,"
                         " u.disabled, u.token_version, o.public_id, u.org_id FROM refresh_tokens r"
                         " JOIN users u ON u.id = r.user_id JOIN orgs o ON o.id = u.org_id WHERE r.token_hash = ?",
                         "t", hash);
    if (st == NULL || sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        rollback(a);
        if (logout) {
            umg_buf_append(&j->out, "{\"revoked\":0}\n", 14);
            answer(j, 200);
        } else {
            umg__job_error(j, 401, "invalid_token", "refresh_token", "unknown refresh token; log in again");
        }
        return;
    }
    int64_t rid = sqlite3_column_int64(st, 0), now = umg_now_us();
    char family[40], upid[40], opid[40];
    snprintf(family, sizeof(family), "%s", col(st, 1));
    snprintf(upid, sizeof(upid), "%s", col(st, 6));
    snprintf(opid, sizeof(opid), "%s", col(st, 9));
    int64_t expires = sqlite3_column_int64(st, 2), uid = sqlite3_column_int64(st, 5);
    int used = sqlite3_column_type(st, 3) != SQLITE_NULL, revoked = sqlite3_column_type(st, 4) != SQLITE_NULL;
    int disabled = sqlite3_column_int(st, 7) != 0;
    int64_t ver = sqlite3_column_int64(st, 8), org = sqlite3_column_int64(st, 10);
    sqlite3_finalize(st);
    j->who.kind = UMG_PRINCIPAL_USER;
    snprintf(j->who.id, sizeof(j->who.id), "%s", upid);
    if (logout || used || revoked) {
        /* Logout, or a refresh token presented twice: someone else may hold it; end the whole session. */
        exec(a, q(a, "UPDATE refresh_tokens SET revoked_us = ? WHERE family = ? AND revoked_us IS NULL", "it", now,
                  family));
        int n = sqlite3_changes(a->db);
        audit(a, j, org, logout ? "auth.logout" : "auth.refresh_reuse", upid, logout ? "ok" : "denied", NULL);
        if (commit(a, j)) {
            return;
        }
        if (logout) {
            umg_buf_printf(&j->out, "{\"revoked\":%d}\n", n);
            answer(j, 200);
        } else {
            umg__job_error(j, 401, "invalid_token", "refresh_token",
                           "this refresh token was already used; the session is ended, log in again");
        }
        return;
    }
    if (expires <= now || disabled) {
        rollback(a);
        umg__job_error(j, 401, expires <= now ? "token_expired" : "invalid_token", "refresh_token",
                       expires <= now ? "the refresh token has expired; log in again" : "log in again");
        return;
    }
    exec(a, q(a, "UPDATE refresh_tokens SET used_us = ? WHERE id = ?", "ii", now, rid));
    if (issue_tokens(a, j, uid, upid, opid, ver, family) != 0) {
        rollback(a);
        return;
    }
    commit(a, j);
}

/* ---------------------------------------------------------------- me and org */

static void ep_me(umg_admin_t *a, job_t *j)
{
    umg_principal_t *w = &j->who;
    umg_buf_t *o = &j->out;
    int rc = umg_buf_printf(o, "{\"kind\":\"%s\",\"id\":\"%s\",\"org_id\":\"%s\"",
                            w->kind == UMG_PRINCIPAL_USER ? "user" : "api_token", w->id, w->org_public_id);
    if (w->kind == UMG_PRINCIPAL_USER) {
        sqlite3_stmt *st = q(a, "SELECT email, apps FROM users WHERE id = ?", "i", w->internal_id);
        if (st != NULL && sqlite3_step(st) == SQLITE_ROW) {
            rc = rc ? rc : put_str(o, "email", col(st, 0), 1);
            rc = rc ? rc : put_str(o, "role", umg_role_name(w->role), 1);
            rc = rc ? rc : put_apps(o, col(st, 1));
        }
        sqlite3_finalize(st);
    } else {
        sqlite3_stmt *st = q(a, "SELECT name, apps FROM api_tokens WHERE id = ?", "i", w->internal_id);
        if (st != NULL && sqlite3_step(st) == SQLITE_ROW) {
            rc = rc ? rc : put_str(o, "name", col(st, 0), 1);
            rc = rc ? rc : put_apps(o, col(st, 1));
        }
        sqlite3_finalize(st);
    }
    rc = rc ? rc : umg_buf_append(o, ",\"permissions\":", 15);
    rc = rc ? rc : umg_perms_json(w->perms, o);
    rc = rc ? rc : umg_buf_append(o, "}\n", 2);
    if (rc != UMG_OK) {
        oom(j);
        return;
    }
    answer(j, 200);
}

/*
 * POST /v1/me/password: a user changes their own password, giving the current one (a stolen session alone
 * cannot). Wrong guesses count in the login limiter for the account and the address. Every other session of
 * the user ends; this one goes on with the tokens in the answer. Both hashes are computed on this worker
 * (about 0.2 s), as setting a password elsewhere is.
 */
static void ep_me_password(umg_admin_t *a, job_t *j)
{
    static const char *const allowed[] = {"current_password", "new_password", NULL};
    if (j->who.kind != UMG_PRINCIPAL_USER) {
        umg__job_error(j, 403, "forbidden", NULL, "only a logged-in user changes their own password");
        return;
    }
    body_t b;
    char cur[1025] = "", pw[1025] = "", email[256], hash[128], upid[40];
    int64_t uid = j->who.internal_id;
    sqlite3_stmt *st = NULL;
    if (parse_body(a, j, allowed, &b) || get_str(j, &b, "current_password", 1, cur, sizeof(cur)) < 0 ||
        get_str(j, &b, "new_password", 1, pw, sizeof(pw)) < 0) {
        goto done;
    }
    st = q(a, "SELECT email, password_hash, public_id FROM users WHERE id = ?", "i", uid);
    if (st == NULL || sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        db_error(a, j);
        goto done;
    }
    snprintf(email, sizeof(email), "%s", col(st, 0));
    snprintf(hash, sizeof(hash), "%s", col(st, 1));
    snprintf(upid, sizeof(upid), "%s", col(st, 2));
    sqlite3_finalize(st);
    if (limited(a, j, email, j->who.org, "user.password", upid, "too many failed attempts; wait before trying again")) {
        goto done;
    }
    if (!umg_meta_password_check(hash, cur, strlen(cur))) {
        umg_login_limit_failed(a->login_limit, j->ip, email, umg_now_us());
        audit(a, j, j->who.org, "user.password", upid, "failed", NULL);
        /* 403, not 401: the session is fine, the password given is not */
        umg__job_error(j, 403, "invalid_credentials", "current_password", "the current password is wrong");
        goto done;
    }
    if (umg_meta_password_hash(pw, strlen(pw), hash) != UMG_OK) {
        umg__job_error(j, 400, "invalid_value", "new_password", "the password must be 8 to 1024 bytes");
        goto done;
    }
    umg_login_limit_succeeded(a->login_limit, email, umg_now_us());
    if (begin(a)) {
        db_error(a, j);
        goto done;
    }
    int rc = exec(
        a, q(a, "UPDATE users SET password_hash = ?, token_version = token_version + 1 WHERE id = ?", "ti", hash, uid));
    rc |= exec(a, q(a, "UPDATE refresh_tokens SET revoked_us = ? WHERE user_id = ? AND revoked_us IS NULL", "ii",
                    umg_now_us(), uid));
    st = rc ? NULL : q(a, "SELECT token_version FROM users WHERE id = ?", "i", uid);
    int64_t ver = st != NULL && sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    if (rc || ver < 0) {
        rollback(a);
        db_error(a, j);
        goto done;
    }
    audit(a, j, j->who.org, "user.password", upid, "ok", NULL);
    if (issue_tokens(a, j, uid, upid, j->who.org_public_id, ver, NULL) != 0) {
        rollback(a);
        goto done;
    }
    commit(a, j);
done:
    sodium_memzero(cur, sizeof(cur));
    sodium_memzero(pw, sizeof(pw));
}

static void ep_org(umg_admin_t *a, job_t *j)
{
    if (is(j->method, "PATCH")) {
        static const char *const allowed[] = {"monthly_quota", NULL};
        body_t b;
        int64_t quota = 0;
        if (!need(j, UMG_PERM_ORG_MANAGE, NULL) || parse_body(a, j, allowed, &b)) {
            return;
        }
        int has = get_int(j, &b, "monthly_quota", 0, INT64_MAX / 2, &quota);
        if (has < 0) {
            return;
        }
        if (has > 0) {
            if (begin(a)) {
                db_error(a, j);
                return;
            }
            char detail[64];
            snprintf(detail, sizeof(detail), "{\"monthly_quota\":%lld}", (long long)quota);
            if (exec(a, q(a, "UPDATE orgs SET monthly_quota = ? WHERE id = ?", "ii", quota, (int64_t)j->who.org))) {
                rollback(a);
                db_error(a, j);
                return;
            }
            audit(a, j, j->who.org, "org.update", j->who.org_public_id, "ok", detail);
            if (commit(a, j)) {
                return;
            }
        }
    } else if (!is(j->method, "GET")) {
        umg__job_error(j, 405, "method_not_allowed", NULL, "use GET or PATCH");
        return;
    } else if (!need(j, UMG_PERM_APPS_READ, NULL)) {
        return;
    }
    sqlite3_stmt *st =
        q(a, "SELECT public_id, name, monthly_quota, created_us FROM orgs WHERE id = ?", "i", (int64_t)j->who.org);
    if (st == NULL || sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        db_error(a, j);
        return;
    }
    int month = umg_limits_month(umg_now_us());
    umg_buf_t *o = &j->out;
    int64_t quota = sqlite3_column_int64(st, 2);
    int rc = put_obj(o, "org_id", 0, col(st, 0)); /* opens the object */
    rc = rc ? rc : put_str(o, "name", col(st, 1), 1);
    rc = rc ? rc
            : umg_buf_printf(o, ",\"monthly_quota\":%lld,\"effective_monthly_quota\":%lld", (long long)quota,
                             (long long)(quota > 0 ? quota : a->lcfg.monthly_quota));
    rc = rc ? rc
            : umg_buf_printf(o, ",\"usage\":{\"month\":\"%04d-%02d\",\"events\":%lld}", month / 100, month % 100,
                             (long long)umg_limits_usage_get(a->limits, j->who.org, month));
    rc = rc ? rc : put_time(o, "created_at", sqlite3_column_int64(st, 3));
    rc = rc ? rc : umg_buf_append(o, "}\n", 2);
    sqlite3_finalize(st);
    if (rc != UMG_OK) {
        oom(j);
        return;
    }
    answer(j, 200);
}

/* ---------------------------------------------------------------- apps */

/* Attribution windows and other per-app settings (docs/api.md). */
typedef struct app_settings_s {
    int64_t click_lookback_days;
    int64_t view_lookback_hours;
    int64_t reattribution_window_days;
    int64_t probabilistic_window_hours, reengagement_lookback_days, reengagement_window_days;
    umg_buf_t allowlist;   /* comma-separated hosts */
    umg_buf_t sources;     /* source_click_lookback_days as canonical JSON members: "meta":28,"google":14 */
    char timezone[64];     /* reporting time zone, an IANA name that loads (umg_tz_load) */
    char currency[4];      /* reporting currency, ISO 4217 */
    int require_signature; /* SDK requests must be signed (the sdk_spoofing rule, docs/fraud.md) */
} app_settings_t;

static void settings_free(app_settings_t *s)
{
    umg_buf_free(&s->allowlist);
    umg_buf_free(&s->sources);
}

static void settings_defaults(app_settings_t *s)
{
    s->click_lookback_days = 7;
    s->view_lookback_hours = 24;
    s->reattribution_window_days = 90;
    s->probabilistic_window_hours = 24;
    s->reengagement_lookback_days = 7;
    s->reengagement_window_days = 30;
    umg_buf_reset(&s->allowlist);
    umg_buf_reset(&s->sources);
    snprintf(s->timezone, sizeof(s->timezone), "UTC");
    snprintf(s->currency, sizeof(s->currency), "USD");
    s->require_signature = 0;
}

#define MAX_SOURCE_WINDOWS 64

/* settings.source_click_lookback_days: {"source": days 1..30, ...}, at most 64 sources. */
static int source_windows_apply(job_t *j, umg_json_val_t v, umg_buf_t *out)
{
    const char *f = "source_click_lookback_days";
    umg_json_iter_t it;
    if (umg_json_type(v) != UMG_JSON_OBJECT || umg_json_object_iter(v, &it) != UMG_JSON_OK) {
        umg__job_error(j, 400, "invalid_type", f, "must be an object of source name to days");
        return -1;
    }
    if (umg_json_object_size(v) > MAX_SOURCE_WINDOWS) {
        umg__job_error(j, 400, "invalid_value", f, "at most 64 sources");
        return -1;
    }
    umg_buf_reset(out);
    umg_json_item_t items[16];
    size_t n, nseen = 0;
    umg_slice_t seen[MAX_SOURCE_WINDOWS];
    while ((n = umg_json_object_next(&it, items, 16)) > 0) {
        for (size_t i = 0; i < n; i++) {
            if (items[i].klen == 0 || items[i].klen > 256) {
                umg__job_error(j, 400, "invalid_value", f, "source names are 1 to 256 bytes");
                return -1;
            }
            for (size_t k = 0; k < nseen; k++) {
                if (seen[k].len == items[i].klen && memcmp(seen[k].ptr, items[i].key, items[i].klen) == 0) {
                    umg__job_error(j, 400, "invalid_value", f, "a source is named twice");
                    return -1;
                }
            }
            if (nseen < MAX_SOURCE_WINDOWS) {
                seen[nseen++] = umg_slice(items[i].key, items[i].klen);
            }
            if (items[i].type != UMG_JSON_INT64 || items[i].num.i < 1 || items[i].num.i > 30) {
                umg__job_error(j, 400, "invalid_value", f, "each source's window must be an integer from 1 to 30 days");
                return -1;
            }
            int rc = out->len ? umg_buf_putc(out, ',') : UMG_OK;
            rc = rc ? rc : umg_buf_json_str(out, items[i].key, items[i].klen);
            rc = rc ? rc : umg_buf_printf(out, ":%lld", (long long)items[i].num.i);
            if (rc != UMG_OK) {
                return -1;
            }
        }
    }
    return 0;
}

static const char *const settings_keys[] = {"click_lookback_days",
                                            "view_lookback_hours",
                                            "reattribution_window_days",
                                            "probabilistic_window_hours",
                                            "reengagement_lookback_days",
                                            "reengagement_window_days",
                                            "redirect_allowlist",
                                            "source_click_lookback_days",
                                            "timezone",
                                            "currency",
                                            "require_signature",
                                            NULL};

/*
 * settings.timezone and settings.currency; errors name "settings.timezone" and "settings.currency".
 * check 0 trusts the values (stored settings, written after a check): no zone file is read.
 */
static int reporting_apply(job_t *j, body_t *b, app_settings_t *s, int check)
{
    umg_json_val_t v;
    const char *str;
    size_t len;
    if (find(b, "timezone", &v)) {
        const char *f = "settings.timezone";
        if (umg_json_get_string(v, &str, &len) != UMG_JSON_OK) {
            umg__job_error(j, 400, "invalid_type", f, "must be a string");
            return -1;
        }
        char name[64];
        snprintf(name, sizeof(name), "%.*s", (int)UMG_MIN(len, sizeof(name) - 1), str);
        umg_tz_t *tz = NULL;
        int rc = len >= sizeof(name) || strlen(name) != len ? UMG_EINVAL
                 : check                                    ? umg_tz_load(name, &tz)
                 : umg_tz_name_valid(name)                  ? UMG_OK
                                                            : UMG_EINVAL;
        umg_tz_free(tz);
        if (rc == UMG_ENOMEM) {
            return oom(j);
        }
        if (rc != UMG_OK) {
            umg__job_error(j, 400, "invalid_value", f,
                           rc == UMG_EINVAL   ? "must be an IANA time zone name such as \"Europe/Berlin\""
                           : rc == UMG_ENOENT ? "no such time zone in the tz database"
                                              : "the tz database has no readable data for this time zone");
            return -1;
        }
        memcpy(s->timezone, name, len + 1);
    }
    if (find(b, "currency", &v)) {
        const char *f = "settings.currency";
        if (umg_json_get_string(v, &str, &len) != UMG_JSON_OK) {
            umg__job_error(j, 400, "invalid_type", f, "must be a string");
            return -1;
        }
        if (!umg_event_currency_known(umg_slice(str, len))) {
            umg__job_error(j, 400, "invalid_value", f,
                           "must be an ISO 4217 currency code in upper case, such as \"EUR\"");
            return -1;
        }
        memcpy(s->currency, str, 3);
        s->currency[3] = '\0';
    }
    return 0;
}

/* Applies the members of a settings object (already type-checked by get_*) to s; check as reporting_apply. */
static int settings_apply(job_t *j, body_t *b, app_settings_t *s, int check)
{
    if (reporting_apply(j, b, s, check) < 0) {
        return -1;
    }
    if (get_bool(j, b, "require_signature", &s->require_signature) < 0) {
        return -1;
    }
    if (get_int(j, b, "click_lookback_days", 1, 30, &s->click_lookback_days) < 0 ||
        get_int(j, b, "view_lookback_hours", 1, 168, &s->view_lookback_hours) < 0 ||
        get_int(j, b, "reattribution_window_days", 1, 365, &s->reattribution_window_days) < 0 ||
        get_int(j, b, "probabilistic_window_hours", 1, 24, &s->probabilistic_window_hours) < 0 ||
        get_int(j, b, "reengagement_lookback_days", 1, 30, &s->reengagement_lookback_days) < 0 ||
        get_int(j, b, "reengagement_window_days", 1, 90, &s->reengagement_window_days) < 0) {
        return -1;
    }
    umg_json_val_t v;
    if (find(b, "source_click_lookback_days", &v) && source_windows_apply(j, v, &s->sources) < 0) {
        return -1;
    }
    if (find(b, "redirect_allowlist", &v)) {
        umg_buf_reset(&s->allowlist);
        if (umg_json_array_size(v) == 0 && umg_json_type(v) == UMG_JSON_ARRAY) {
            return 0;
        }
        if (get_list(j, b, "redirect_allowlist", 32, 253, &s->allowlist) < 0) {
            return -1;
        }
        s->allowlist.len--; /* drop the NUL get_list added */
        if (memchr(s->allowlist.ptr, ':', s->allowlist.len) != NULL) {
            umg__job_error(j, 400, "invalid_value", "redirect_allowlist",
                           "items are host names without a port: any port of an allowed host is allowed");
            return -1;
        }
    }
    return 0;
}

static int settings_json(const app_settings_t *s, umg_buf_t *o)
{
    /* The reporting settings come first: the registry finds them with strstr (apps.c), and no source
     * name in source_click_lookback_days may come before them. */
    int rc = umg_buf_append(o, "{\"timezone\":", 12);
    rc = rc ? rc : umg_buf_json_str(o, s->timezone, strlen(s->timezone));
    rc = rc ? rc : umg_buf_append(o, ",\"currency\":", 12);
    rc = rc ? rc : umg_buf_json_str(o, s->currency, strlen(s->currency));
    rc = rc ? rc : umg_buf_printf(o, ",\"require_signature\":%s", s->require_signature ? "true" : "false");
    rc = rc ? rc
            : umg_buf_printf(o,
                             ",\"click_lookback_days\":%lld,\"view_lookback_hours\":%lld,"
                             "\"reattribution_window_days\":%lld,\"probabilistic_window_hours\":%lld,"
                             "\"reengagement_lookback_days\":%lld,\"reengagement_window_days\":%lld,"
                             "\"redirect_allowlist\":[",
                             (long long)s->click_lookback_days, (long long)s->view_lookback_hours,
                             (long long)s->reattribution_window_days, (long long)s->probabilistic_window_hours,
                             (long long)s->reengagement_lookback_days, (long long)s->reengagement_window_days);
    for (size_t i = 0, start = 0; rc == UMG_OK && i <= s->allowlist.len && s->allowlist.len; i++) {
        if (i == s->allowlist.len || s->allowlist.ptr[i] == ',') {
            rc = umg_buf_append(o, start ? ",\"" : "\"", start ? 2 : 1);
            rc = rc ? rc : umg_buf_append(o, s->allowlist.ptr + start, i - start);
            rc = rc ? rc : umg_buf_putc(o, '"');
            start = i + 1;
        }
    }
    rc = rc ? rc : umg_buf_append(o, "],\"source_click_lookback_days\":{", 32);
    rc = rc ? rc : umg_buf_append(o, s->sources.ptr, s->sources.len);
    return rc ? rc : umg_buf_append(o, "}}", 2);
}

/* Loads stored settings (written by settings_json, so well-formed) into s. */
static void settings_load(umg_admin_t *a, const char *stored, app_settings_t *s)
{
    settings_defaults(s);
    umg_json_val_t root;
    if (stored != NULL && umg_json_parse(a->json, stored, strlen(stored), &root) == UMG_JSON_OK) {
        body_t b = {root, 1};
        job_t scratch; /* errors cannot happen on stored settings; keep them off the real answer */
        memset(&scratch, 0, sizeof(scratch));
        settings_apply(&scratch, &b, s, 0);
        umg_buf_free(&scratch.out);
    }
}

static int app_json(umg_admin_t *a, job_t *j, sqlite3_stmt *st, umg_buf_t *o)
{
    /* columns: public_id, name, platform, store_url, app_key, settings, rate_eps, rate_burst, created_us */
    app_settings_t s = {0};
    char *stored = col(st, 5) ? umg_strndup(col(st, 5), strlen(col(st, 5))) : NULL;
    settings_load(a, stored, &s);
    umg_free(stored);
    int rc = put_obj(o, "app_id", 0, col(st, 0));
    rc = rc ? rc : put_str(o, "name", col(st, 1), 1);
    rc = rc ? rc : put_str(o, "platform", col(st, 2), 1);
    rc = rc ? rc : put_str(o, "store_url", col(st, 3), 1);
    rc = rc ? rc : put_str(o, "app_key", col(st, 4), 1);
    rc = rc ? rc : umg_buf_append(o, ",\"settings\":", 12);
    rc = rc ? rc : settings_json(&s, o);
    double eps = sqlite3_column_double(st, 6), burst = sqlite3_column_double(st, 7);
    rc = rc ? rc
            : umg_buf_printf(o, ",\"rate_limit\":{\"events_per_second\":%g,\"burst\":%g,\"default\":%s}",
                             eps > 0 ? eps : a->lcfg.rate_eps, eps > 0 ? burst : a->lcfg.rate_burst,
                             eps > 0 ? "false" : "true");
    rc = rc ? rc : put_time(o, "created_at", sqlite3_column_int64(st, 8));
    rc = rc ? rc : umg_buf_putc(o, '}');
    settings_free(&s);
    return rc;
}

#define APP_COLS "public_id, name, platform, store_url, app_key, settings, rate_eps, rate_burst, created_us, id, org_id"

static void ep_apps_list(umg_admin_t *a, job_t *j)
{
    sqlite3_stmt *st = q(a, "SELECT " APP_COLS " FROM apps WHERE org_id = ? ORDER BY id", "i", (int64_t)j->who.org);
    if (st == NULL) {
        db_error(a, j);
        return;
    }
    umg_buf_t *o = &j->out;
    int rc = umg_buf_append(o, "{\"apps\":[", 9), first = 1;
    while (rc == UMG_OK && sqlite3_step(st) == SQLITE_ROW) {
        umg_app_t app = {.id = (uint32_t)sqlite3_column_int64(st, 9), .org = (uint32_t)sqlite3_column_int64(st, 10)};
        if (!umg_principal_can(&j->who, UMG_PERM_APPS_READ, &app)) {
            continue;
        }
        rc = first ? UMG_OK : umg_buf_putc(o, ',');
        rc = rc ? rc : app_json(a, j, st, o);
        first = 0;
    }
    sqlite3_finalize(st);
    rc = rc ? rc : umg_buf_append(o, "]}\n", 3);
    if (rc != UMG_OK) {
        oom(j);
        return;
    }
    answer(j, 200);
}

static void ep_app_get(umg_admin_t *a, job_t *j, const char *app_pid, int status)
{
    sqlite3_stmt *st = q(a, "SELECT " APP_COLS " FROM apps WHERE public_id = ?", "t", app_pid);
    if (st == NULL || sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        db_error(a, j);
        return;
    }
    umg_buf_reset(&j->out);
    int rc = app_json(a, j, st, &j->out);
    sqlite3_finalize(st);
    rc = rc ? rc : umg_buf_putc(&j->out, '\n');
    if (rc != UMG_OK) {
        oom(j);
        return;
    }
    answer(j, status);
}

static void ep_app_create(umg_admin_t *a, job_t *j)
{
    static const char *const allowed[] = {"name", "platform", "store_url", NULL};
    body_t b;
    char name[160], platform[16], store_url[2100];
    if (!need(j, UMG_PERM_APPS_WRITE, NULL)) {
        return;
    }
    if (!j->who.all_apps) {
        umg__job_error(j, 403, "forbidden", NULL, "only users with access to all apps may create apps");
        return;
    }
    if (parse_body(a, j, allowed, &b) || get_str(j, &b, "name", 1, name, sizeof(name)) < 0 ||
        get_str(j, &b, "platform", 1, platform, sizeof(platform)) < 0) {
        return;
    }
    int has_url = get_str(j, &b, "store_url", 0, store_url, sizeof(store_url));
    if (has_url < 0) {
        return;
    }
    umg_app_spec_t spec = {.name = name, .platform = platform, .store_url = has_url ? store_url : NULL};
    umg_buf_t keys = {0};
    char msg[256];
    const char *field = NULL;
    if (begin(a)) {
        db_error(a, j);
        return;
    }
    int rc = umg_apps_insert(a->db, j->who.org, &spec, &keys, &field, msg, sizeof(msg));
    if (rc != UMG_OK) {
        rollback(a);
        umg_buf_free(&keys);
        if (rc == UMG_EINVAL || rc == UMG_EEXIST) {
            umg__job_error(j, rc == UMG_EEXIST ? 409 : 400, rc == UMG_EEXIST ? "conflict" : "invalid_value", field,
                           msg);
        } else {
            db_error(a, j);
        }
        return;
    }
    char app_pid[40] = "";
    const char *p = strstr(keys.ptr, "\"app_id\":\"");
    if (p != NULL) {
        snprintf(app_pid, sizeof(app_pid), "%.*s", (int)strcspn(p + 10, "\""), p + 10);
    }
    audit(a, j, j->who.org, "app.create", app_pid, "ok", NULL);
    if (commit(a, j)) {
        umg_buf_free(&keys);
        return;
    }
    umg_buf_append(&j->out, keys.ptr, keys.len);
    umg_buf_putc(&j->out, '\n');
    umg_buf_free(&keys);
    answer(j, 201);
}

static void ep_app_patch(umg_admin_t *a, job_t *j, umg_app_t *app)
{
    static const char *const allowed[] = {"name", "store_url", "settings", "rate_limit", NULL};
    body_t b;
    char name[160], store_url[2100];
    if (parse_body(a, j, allowed, &b)) {
        return;
    }
    umg_json_val_t settings_v, rate_v;
    int has_name = get_str(j, &b, "name", 0, name, sizeof(name));
    int has_url = has_name < 0 ? -1 : get_str(j, &b, "store_url", 0, store_url, sizeof(store_url));
    if (has_url < 0) {
        return;
    }
    int has_settings = find(&b, "settings", &settings_v), has_rate = find(&b, "rate_limit", &rate_v);
    if (((has_name || has_url) && !need(j, UMG_PERM_APPS_WRITE, app)) ||
        (has_settings && !need(j, UMG_PERM_SETTINGS_WRITE, app)) || (has_rate && !need(j, UMG_PERM_ORG_MANAGE, NULL))) {
        return;
    }
    if (has_url && !umg_apps_store_url_ok(store_url)) {
        umg__job_error(j, 400, "invalid_value", "store_url", UMG_APPS_STORE_URL_RULE);
        return;
    }
    double eps = 0, burst = 0;
    if (has_rate) {
        static const char *const rate_keys[] = {"events_per_second", "burst", NULL};
        body_t rb = {rate_v, 1};
        if (check_members(j, rate_v, "rate_limit", rate_keys)) {
            return;
        }
        if (get_num(j, &rb, "events_per_second", 0, 1e9, &eps) < 0 || get_num(j, &rb, "burst", 0, 1e12, &burst) < 0) {
            return;
        }
        if (eps > 0 && burst < 1) {
            burst = eps < 1 ? 1 : eps;
        }
    }
    /* Copy the settings member out before the parser is reused for the stored settings. */
    umg_buf_t new_settings = {0};
    if (has_settings) {
        body_t sb = {settings_v, 1};
        if (check_members(j, settings_v, "settings", settings_keys)) {
            return;
        }
        /* Validate now against defaults (errors name the field), then merge with what is stored. */
        app_settings_t probe = {0};
        settings_defaults(&probe);
        int bad = settings_apply(j, &sb, &probe, 1);
        settings_free(&probe);
        if (bad) {
            return;
        }
        /* Keep the body: the settings member is read again after the stored settings were parsed. */
        if (umg_buf_append(&new_settings, j->body, j->body_len) != UMG_OK) {
            oom(j);
            return;
        }
    }
    if (begin(a)) {
        umg_buf_free(&new_settings);
        db_error(a, j);
        return;
    }
    int rc = 0;
    if (has_name > 0) {
        rc |= exec(a, q(a, "UPDATE apps SET name = ? WHERE id = ?", "ti", name, (int64_t)app->id));
        if (rc && sqlite3_extended_errcode(a->db) == SQLITE_CONSTRAINT_UNIQUE) {
            rollback(a);
            umg_buf_free(&new_settings);
            umg__job_error(j, 409, "conflict", "name", "the organization already has an app of that name");
            return;
        }
    }
    if (has_url > 0) {
        rc |= exec(a, q(a, "UPDATE apps SET store_url = ? WHERE id = ?", "ti", store_url, (int64_t)app->id));
    }
    if (has_rate) {
        rc |= exec(a, q(a, "UPDATE apps SET rate_eps = ?, rate_burst = ? WHERE id = ?", "ddi", eps,
                        eps > 0 ? burst : 0.0, (int64_t)app->id));
    }
    umg_buf_t settings_after = {0};
    if (has_settings) {
        sqlite3_stmt *st = q(a, "SELECT settings FROM apps WHERE id = ?", "i", (int64_t)app->id);
        char *stored = NULL;
        if (st != NULL && sqlite3_step(st) == SQLITE_ROW && col(st, 0) != NULL) {
            stored = umg_strndup(col(st, 0), strlen(col(st, 0)));
        }
        sqlite3_finalize(st);
        app_settings_t s = {0};
        settings_load(a, stored, &s);
        umg_free(stored);
        umg_json_val_t root, sv;
        umg_buf_t merged = {0};
        if (umg_json_parse(a->json, new_settings.ptr, new_settings.len, &root) == UMG_JSON_OK &&
            umg_json_object_find(root, "settings", 8, &sv) == UMG_JSON_OK) {
            body_t sb = {sv, 1};
            settings_apply(j, &sb, &s, 0);
        }
        if (settings_json(&s, &merged) != UMG_OK || umg_buf_putc(&merged, '\0') != UMG_OK) {
            rc = -1;
        } else {
            rc |= exec(a, q(a, "UPDATE apps SET settings = ? WHERE id = ?", "ti", merged.ptr, (int64_t)app->id));
        }
        settings_free(&s);
        settings_after = merged; /* the audit's detail */
    }
    umg_buf_free(&new_settings);
    if (rc) {
        rollback(a);
        umg_buf_free(&settings_after);
        db_error(a, j);
        return;
    }
    /* One record per kind of change, so that each is found under its action with what it set. */
    if (has_name || has_url) {
        audit(a, j, j->who.org, "app.update", app->public_id, "ok", NULL);
    }
    if (has_settings) {
        audit(a, j, j->who.org, "app.settings", app->public_id, "ok", settings_after.ptr);
    }
    umg_buf_free(&settings_after);
    if (has_rate) {
        char lim[96];
        snprintf(lim, sizeof(lim), "{\"events_per_second\":%.17g,\"burst\":%.17g}", eps, eps > 0 ? burst : 0.0);
        audit(a, j, j->who.org, "app.limits", app->public_id, "ok", lim);
    }
    if (commit(a, j)) {
        return;
    }
    ep_app_get(a, j, app->public_id, 200);
}

static void ep_keys(umg_admin_t *a, job_t *j, umg_app_t *app, int rotate)
{
    if (!need(j, UMG_PERM_KEYS_MANAGE, app)) {
        return;
    }
    const umg_auth_config_t *cfg = umg_auth_config(a->auth);
    int64_t now = umg_now_us();
    if (rotate) {
        static const char *const allowed[] = {"which", "overlap_seconds", NULL};
        body_t b;
        char which[16];
        int64_t overlap = cfg->key_overlap_ms / 1000;
        if (parse_body(a, j, allowed, &b) || get_str(j, &b, "which", 1, which, sizeof(which)) < 0 ||
            get_int(j, &b, "overlap_seconds", 0, 30 * 86400, &overlap) < 0) {
            return;
        }
        static const struct {
            const char *which, *prefix, *sql, *until;
            int bytes;
        } kinds[] = {
            {"app_key", "ak_",
             "UPDATE apps SET prev_app_key = app_key, prev_key_until_us = ?, app_key = ? WHERE id = ?",
             "SELECT prev_key_until_us FROM apps WHERE id = ?", 16},
            {"app_secret", "as_",
             "UPDATE apps SET prev_app_secret = app_secret, prev_secret_until_us = ?, app_secret = ? WHERE id = ?",
             "SELECT prev_secret_until_us FROM apps WHERE id = ?", 32},
            {"signing_secret", "ss_",
             "UPDATE apps SET prev_signing_secret = signing_secret, prev_signing_until_us = ?, signing_secret = ?"
             " WHERE id = ?",
             "SELECT prev_signing_until_us FROM apps WHERE id = ?", 32},
        };
        size_t k = 0;
        while (k < UMG_ARRAY_SIZE(kinds) && !is(which, kinds[k].which)) {
            k++;
        }
        if (k == UMG_ARRAY_SIZE(kinds)) {
            umg__job_error(j, 400, "invalid_value", "which", "must be app_key, app_secret or signing_secret");
            return;
        }
        char fresh[80];
        umg_meta_random_id(fresh, kinds[k].prefix, kinds[k].bytes);
        if (begin(a)) {
            db_error(a, j);
            return;
        }
        /* A rotation with an overlap while the last one's runs would end that one's old value early (only one old
         * value is kept): refused. Without an overlap it ends every older value at once, as asked. */
        sqlite3_stmt *us = q(a, kinds[k].until, "i", (int64_t)app->id);
        int64_t until = us != NULL && sqlite3_step(us) == SQLITE_ROW ? sqlite3_column_int64(us, 0) : 0;
        sqlite3_finalize(us);
        if (overlap > 0 && until > now) {
            rollback(a);
            char t[32], msg[256];
            umg_time_format_rfc3339(until, t);
            snprintf(msg, sizeof(msg),
                     "the previous %s is accepted until %s: another rotation would end it early. Rotate again after "
                     "that, or with overlap_seconds 0 to end every older value now",
                     which, t);
            umg__job_error(j, 409, "overlap_running", "which", msg);
            return;
        }
        const char *sql = kinds[k].sql;
        if (exec(a, q(a, sql, "iti", now + overlap * US, fresh, (int64_t)app->id))) {
            rollback(a);
            db_error(a, j);
            return;
        }
        char detail[96];
        snprintf(detail, sizeof(detail), "{\"which\":\"%s\",\"overlap_seconds\":%lld}", which, (long long)overlap);
        audit(a, j, j->who.org, "key.rotate", app->public_id, "ok", detail);
        if (commit(a, j)) {
            return;
        }
    } else if (!is(j->method, "GET")) {
        umg__job_error(j, 405, "method_not_allowed", NULL, "use GET, or POST .../keys/rotate");
        return;
    }
    sqlite3_stmt *st = q(a,
                         "SELECT app_key, app_secret, prev_app_key, prev_key_until_us, prev_app_secret,"
                         " prev_secret_until_us, signing_secret, prev_signing_secret, prev_signing_until_us"
                         " FROM apps WHERE id = ?",
                         "i", (int64_t)app->id);
    if (st == NULL || sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        db_error(a, j);
        return;
    }
    umg_buf_t *o = &j->out;
    int64_t ku = sqlite3_column_int64(st, 3), su = sqlite3_column_int64(st, 5), gu = sqlite3_column_int64(st, 8);
    int rc = put_obj(o, "app_id", 0, app->public_id);
    rc = rc ? rc : put_str(o, "app_key", col(st, 0), 1);
    rc = rc ? rc : put_str(o, "app_secret", col(st, 1), 1);
    rc = rc ? rc : put_str(o, "previous_app_key", ku > now ? col(st, 2) : NULL, 1);
    rc = rc ? rc : put_time(o, "previous_app_key_valid_until", ku > now ? ku : 0);
    rc = rc ? rc : put_str(o, "previous_app_secret", su > now ? col(st, 4) : NULL, 1);
    rc = rc ? rc : put_time(o, "previous_app_secret_valid_until", su > now ? su : 0);
    rc = rc ? rc : put_str(o, "signing_secret", col(st, 6), 1);
    rc = rc ? rc : put_str(o, "previous_signing_secret", gu > now ? col(st, 7) : NULL, 1);
    rc = rc ? rc : put_time(o, "previous_signing_secret_valid_until", gu > now ? gu : 0);
    rc = rc ? rc : umg_buf_append(o, "}\n", 2);
    sqlite3_finalize(st);
    if (rc != UMG_OK) {
        oom(j);
        return;
    }
    if (!rotate) {
        audit(a, j, j->who.org, "key.read", app->public_id, "ok", NULL);
    }
    answer(j, 200);
}

/*
 * GET / PUT /v1/apps/{id}/fraud: the fraud rules' settings (docs/fraud.md). PUT takes a partial object over the
 * current settings and stores them in full (canonical JSON); the registry picks them up within a second.
 */
static void ep_app_fraud(umg_admin_t *a, job_t *j, umg_app_t *app)
{
    int put = is(j->method, "PUT");
    if (!put && !is(j->method, "GET")) {
        umg__job_error(j, 405, "method_not_allowed", NULL, "use GET or PUT");
        return;
    }
    if (put && !need(j, UMG_PERM_SETTINGS_WRITE, app)) {
        return;
    }
    umg_fraud_settings_t fs;
    umg_fraud_settings_default(&fs);
    char field[96], msg[200];
    sqlite3_stmt *st = q(a, "SELECT fraud, settings FROM apps WHERE id = ?", "i", (int64_t)app->id);
    if (st == NULL || sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        db_error(a, j);
        return;
    }
    const char *stored = col(st, 0);
    int rc = stored != NULL
                 ? umg_fraud_settings_apply_json(&fs, stored, strlen(stored), field, sizeof(field), msg, sizeof(msg))
                 : UMG_OK;
    /* sdk_spoofing is the app's settings.require_signature (PATCH /v1/apps/{id} changes it too) */
    app_settings_t as = {0};
    settings_load(a, col(st, 1), &as);
    sqlite3_finalize(st);
    fs.rule[UMG_FR_SDK_SPOOFING].enabled = (uint8_t)(as.require_signature != 0);
    if (rc == UMG_ENOMEM) {
        settings_free(&as);
        oom(j);
        return;
    }
    umg_buf_t js = {0}, sj = {0};
    if (put) {
        rc = umg_fraud_settings_apply_json(&fs, j->body, j->body_len, field, sizeof(field), msg, sizeof(msg));
        if (rc == UMG_ENOMEM) {
            oom(j);
            return;
        }
        if (rc != UMG_OK) {
            settings_free(&as);
            umg__job_error(j, 400, rc == UMG_EPARSE ? "invalid_json" : "invalid_value", field[0] ? field : NULL, msg);
            return;
        }
        int sig_changed = (fs.rule[UMG_FR_SDK_SPOOFING].enabled != 0) != (as.require_signature != 0);
        as.require_signature = fs.rule[UMG_FR_SDK_SPOOFING].enabled;
        if (umg_fraud_settings_json(&fs, &js) != UMG_OK || umg_buf_putc(&js, '\0') != UMG_OK ||
            (sig_changed && (settings_json(&as, &sj) != UMG_OK || umg_buf_putc(&sj, '\0') != UMG_OK))) {
            umg_buf_free(&js);
            umg_buf_free(&sj);
            settings_free(&as);
            oom(j);
            return;
        }
        settings_free(&as);
        if (begin(a)) {
            umg_buf_free(&js);
            umg_buf_free(&sj);
            db_error(a, j);
            return;
        }
        if (exec(a, q(a, "UPDATE apps SET fraud = ? WHERE id = ?", "ti", js.ptr, (int64_t)app->id)) != 0 ||
            (sig_changed &&
             exec(a, q(a, "UPDATE apps SET settings = ? WHERE id = ?", "ti", sj.ptr, (int64_t)app->id)))) {
            rollback(a);
            umg_buf_free(&js);
            umg_buf_free(&sj);
            db_error(a, j);
            return;
        }
        umg_buf_free(&sj);
        audit(a, j, j->who.org, "app.fraud", app->public_id, "ok", js.ptr);
        if (commit(a, j)) {
            umg_buf_free(&js);
            return;
        }
        js.len--;
    } else {
        settings_free(&as);
        if (umg_fraud_settings_json(&fs, &js) != UMG_OK) {
            oom(j);
            return;
        }
    }
    umg_buf_reset(&j->out);
    rc = umg_buf_append(&j->out, js.ptr, js.len);
    rc = rc ? rc : umg_buf_putc(&j->out, '\n');
    umg_buf_free(&js);
    if (rc != UMG_OK) {
        oom(j);
        return;
    }
    answer(j, 200);
}

static void ep_apps(umg_admin_t *a, job_t *j, path_t *p)
{
    if (p->n == 1) {
        if (is(j->method, "GET")) {
            if (need(j, UMG_PERM_APPS_READ, NULL)) {
                ep_apps_list(a, j);
            }
        } else if (is(j->method, "POST")) {
            ep_app_create(a, j);
        } else {
            umg__job_error(j, 405, "method_not_allowed", NULL, "use GET or POST");
        }
        return;
    }
    umg_app_t app;
    if (load_app(a, j, p->seg[1], &app)) {
        return;
    }
    if (p->n == 2) {
        if (is(j->method, "GET")) {
            ep_app_get(a, j, app.public_id, 200);
        } else if (is(j->method, "PATCH")) {
            ep_app_patch(a, j, &app);
        } else {
            umg__job_error(j, 405, "method_not_allowed", NULL, "use GET or PATCH");
        }
    } else if (p->n == 3 && is(p->seg[2], "keys")) {
        ep_keys(a, j, &app, 0);
    } else if (p->n == 3 && is(p->seg[2], "fraud")) {
        ep_app_fraud(a, j, &app);
    } else if (p->n == 4 && is(p->seg[2], "keys") && is(p->seg[3], "rotate") && is(j->method, "POST")) {
        ep_keys(a, j, &app, 1);
    } else {
        umg__job_error(j, 404, "not_found", NULL, "no such endpoint");
    }
}

/* ---------------------------------------------------------------- users */

static int user_json(sqlite3_stmt *st, umg_buf_t *o)
{
    /* columns: public_id, email, role, apps, disabled, created_us, last_login_us */
    int rc = put_obj(o, "user_id", 0, col(st, 0));
    rc = rc ? rc : put_str(o, "email", col(st, 1), 1);
    rc = rc ? rc : put_str(o, "role", col(st, 2), 1);
    rc = rc ? rc : put_apps(o, col(st, 3));
    rc = rc ? rc : umg_buf_printf(o, ",\"disabled\":%s", sqlite3_column_int(st, 4) ? "true" : "false");
    rc = rc ? rc : put_time(o, "created_at", sqlite3_column_int64(st, 5));
    rc = rc ? rc : put_time(o, "last_login_at", sqlite3_column_int64(st, 6));
    return rc ? rc : umg_buf_putc(o, '}');
}

#define USER_COLS "public_id, email, role, apps, disabled, created_us, last_login_us, id"

/*
 * 1 when the caller may give role r: owners any role, admins any but owner
 * (a token acts with its creator's current role), and a token never gives a
 * role holding permissions the token itself lacks.
 */
static int may_grant(const umg_principal_t *w, umg_role_t r)
{
    if (!umg_role_may_grant(w->role, r)) {
        return 0;
    }
    return w->kind != UMG_PRINCIPAL_TOKEN || (umg_role_perms(r) & ~w->perms) == 0;
}

/* A caller limited to some apps manages only users inside those apps: csv (NULL: all apps) must be within them. */
static int apps_within(umg_admin_t *a, job_t *j, const char *csv)
{
    if (j->who.all_apps) {
        return 1;
    }
    if (csv == NULL) {
        return 0;
    }
    for (const char *s = csv; *s;) {
        size_t n = strcspn(s, ",");
        umg_app_t app;
        if (umg_apps_find_id(umg_auth_apps(a->auth), umg_slice(s, n), &app) != UMG_OK ||
            !umg_principal_can(&j->who, UMG_PERM_APPS_READ, &app)) {
            return 0;
        }
        s += n + (s[n] == ',');
    }
    return 1;
}

/*
 * Opens the write transaction and checks an app list against the caller's
 * organization into norm (NUL-terminated; empty when has_apps is 0). Frees
 * apps. Answers and returns -1 on failure, with nothing left open.
 */
static int begin_apps(umg_admin_t *a, job_t *j, umg_buf_t *apps, int has_apps, umg_buf_t *norm)
{
    char msg[160];
    if (begin(a)) {
        umg_buf_free(apps);
        return db_error(a, j);
    }
    if (has_apps && umg_meta_check_apps(a->db, j->who.org, apps->ptr, strlen(apps->ptr), norm, msg, sizeof(msg))) {
        rollback(a);
        umg_buf_free(apps);
        umg_buf_free(norm);
        umg__job_error(j, 400, "invalid_value", "apps", msg);
        return -1;
    }
    umg_buf_free(apps);
    if (umg_buf_putc(norm, '\0') != UMG_OK) {
        rollback(a);
        umg_buf_free(norm);
        return oom(j);
    }
    return 0;
}

static int64_t active_owners(umg_admin_t *a, uint32_t org)
{
    sqlite3_stmt *st =
        q(a, "SELECT count(*) FROM users WHERE org_id = ? AND role = 'owner' AND disabled = 0", "i", (int64_t)org);
    int64_t n = st != NULL && sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return n;
}

static void ep_users(umg_admin_t *a, job_t *j, path_t *p)
{
    if (!need(j, UMG_PERM_USERS_MANAGE, NULL)) {
        return;
    }
    umg_buf_t *o = &j->out;
    if (p->n == 1 && is(j->method, "GET")) {
        sqlite3_stmt *st =
            q(a, "SELECT " USER_COLS " FROM users WHERE org_id = ? ORDER BY id", "i", (int64_t)j->who.org);
        int rc = st ? umg_buf_append(o, "{\"users\":[", 10) : UMG_EIO, first = 1;
        while (rc == UMG_OK && sqlite3_step(st) == SQLITE_ROW) {
            rc = first ? UMG_OK : umg_buf_putc(o, ',');
            rc = rc ? rc : user_json(st, o);
            first = 0;
        }
        sqlite3_finalize(st);
        rc = rc ? rc : umg_buf_append(o, "]}\n", 3);
        if (rc != UMG_OK) {
            rc == UMG_EIO ? db_error(a, j) : oom(j);
            return;
        }
        answer(j, 200);
        return;
    }
    if (p->n == 1 && is(j->method, "POST")) {
        static const char *const allowed[] = {"email", "password", "role", "apps", NULL};
        body_t b;
        char email[256], password[1025], role[16];
        umg_buf_t apps = {0};
        if (parse_body(a, j, allowed, &b) || get_str(j, &b, "email", 1, email, sizeof(email)) < 0 ||
            get_str(j, &b, "password", 1, password, sizeof(password)) < 0 ||
            get_str(j, &b, "role", 1, role, sizeof(role)) < 0) {
            return;
        }
        int has_apps = get_list(j, &b, "apps", UMG_PRINCIPAL_MAX_APPS, 32, &apps);
        umg_role_t r = umg_role_parse(role, strlen(role));
        if (has_apps >= 0 && r != UMG_ROLE_NONE && !may_grant(&j->who, r)) {
            umg__job_error(j, 403, "forbidden", "role", "you may not give this role");
            has_apps = -1;
        } else if (has_apps >= 0 && !apps_within(a, j, has_apps ? apps.ptr : NULL)) {
            umg__job_error(j, 403, "forbidden", "apps", "you can only give access to apps you have");
            has_apps = -1;
        }
        if (has_apps < 0) {
            umg_buf_free(&apps);
            return;
        }
        umg_meta_user_t u = {.org_id = j->who.org,
                             .email = email,
                             .password = password,
                             .password_len = strlen(password),
                             .role = r,
                             .apps = has_apps ? apps.ptr : NULL};
        char msg[160];
        const char *field = NULL;
        umg_buf_t out = {0};
        if (begin(a)) {
            umg_buf_free(&apps);
            db_error(a, j);
            return;
        }
        int rc = umg_meta_user_create(a->db, &u, &out, &field, msg, sizeof(msg));
        sodium_memzero(password, sizeof(password));
        umg_buf_free(&apps);
        if (rc != UMG_OK) {
            rollback(a);
            umg_buf_free(&out);
            if (rc == UMG_EINVAL || rc == UMG_EEXIST) {
                umg__job_error(j, rc == UMG_EEXIST ? 409 : 400, rc == UMG_EEXIST ? "conflict" : "invalid_value", field,
                               msg);
            } else {
                db_error(a, j);
            }
            return;
        }
        char detail[64];
        snprintf(detail, sizeof(detail), "{\"role\":\"%s\"}", umg_role_name(r));
        audit(a, j, j->who.org, "user.create", email, "ok", detail);
        if (commit(a, j)) {
            umg_buf_free(&out);
            return;
        }
        umg_buf_append(o, out.ptr, out.len);
        umg_buf_putc(o, '\n');
        umg_buf_free(&out);
        answer(j, 201);
        return;
    }
    if (p->n != 2) {
        umg__job_error(j, p->n == 1 ? 405 : 404, p->n == 1 ? "method_not_allowed" : "not_found", NULL,
                       p->n == 1 ? "use GET or POST" : "no such endpoint");
        return;
    }
    const char *upid = p->seg[1];
    sqlite3_stmt *st = valid_id(upid, "usr_")
                           ? q(a, "SELECT " USER_COLS " FROM users WHERE public_id = ? AND org_id = ?", "ti", upid,
                               (int64_t)j->who.org)
                           : NULL;
    if (st == NULL || sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        umg__job_error(j, 404, "not_found", NULL, "no such user");
        return;
    }
    int64_t uid = sqlite3_column_int64(st, 7);
    umg_role_t cur = umg_role_parse(col(st, 2), strlen(col(st, 2)));
    int cur_disabled = sqlite3_column_int(st, 4);
    char *target_apps = col(st, 3) ? umg_strndup(col(st, 3), strlen(col(st, 3))) : NULL;
    int within = apps_within(a, j, target_apps);
    umg_free(target_apps);
    if (!within) {
        sqlite3_finalize(st);
        umg__job_error(j, 403, "forbidden", NULL, "this user has access to apps you do not have");
        return;
    }
    if (is(j->method, "GET")) {
        int rc = user_json(st, o);
        sqlite3_finalize(st);
        if (rc != UMG_OK || umg_buf_putc(o, '\n') != UMG_OK) {
            oom(j);
            return;
        }
        answer(j, 200);
        return;
    }
    sqlite3_finalize(st);
    int self = strcmp(j->who.user_id, upid) == 0; /* the user, or a token the user made */
    if (cur == UMG_ROLE_OWNER && j->who.role != UMG_ROLE_OWNER) {
        umg__job_error(j, 403, "forbidden", NULL, "only an owner may change or remove an owner");
        return;
    }
    if (j->who.kind == UMG_PRINCIPAL_TOKEN && (umg_role_perms(cur) & ~j->who.perms) != 0) {
        /* As for giving a role (may_grant): a token never changes or removes a user who can do more than it. */
        umg__job_error(j, 403, "forbidden", NULL, "this user has permissions the token lacks");
        return;
    }
    if (is(j->method, "DELETE")) {
        if (self) {
            umg__job_error(j, 400, "invalid_value", NULL, "you cannot delete yourself");
            return;
        }
        if (begin(a)) {
            db_error(a, j);
            return;
        }
        if (cur == UMG_ROLE_OWNER && !cur_disabled && active_owners(a, j->who.org) <= 1) {
            rollback(a);
            umg__job_error(j, 409, "last_owner", NULL, "the organization must keep one active owner");
            return;
        }
        if (exec(a, q(a, "DELETE FROM users WHERE id = ?", "i", uid))) {
            rollback(a);
            db_error(a, j);
            return;
        }
        audit(a, j, j->who.org, "user.delete", upid, "ok", NULL);
        if (commit(a, j) == 0) {
            umg_buf_printf(o, "{\"deleted\":\"%s\"}\n", upid);
            answer(j, 200);
        }
        return;
    }
    if (!is(j->method, "PATCH")) {
        umg__job_error(j, 405, "method_not_allowed", NULL, "use GET, PATCH or DELETE");
        return;
    }
    static const char *const allowed[] = {"role", "apps", "disabled", "password", NULL};
    body_t b;
    char role[16], password[1025];
    int disabled = 0;
    umg_buf_t apps = {0};
    if (parse_body(a, j, allowed, &b)) {
        return;
    }
    int has_role = get_str(j, &b, "role", 0, role, sizeof(role));
    int has_pw = has_role < 0 ? -1 : get_str(j, &b, "password", 0, password, sizeof(password));
    int has_dis = has_pw < 0 ? -1 : get_bool(j, &b, "disabled", &disabled);
    umg_json_val_t av;
    int apps_null =
        b.present && umg_json_object_find(b.root, "apps", 4, &av) == UMG_JSON_OK && umg_json_type(av) == UMG_JSON_NULL;
    int has_apps = has_dis < 0 ? -1 : get_list(j, &b, "apps", UMG_PRINCIPAL_MAX_APPS, 32, &apps);
    if (has_apps < 0) {
        umg_buf_free(&apps);
        return;
    }
    umg_role_t r = has_role ? umg_role_parse(role, strlen(role)) : cur;
    const char *err = NULL;
    if (has_role && r == UMG_ROLE_NONE) {
        err = "role must be owner, admin, analyst, marketer or viewer";
    } else if (has_role && !may_grant(&j->who, r)) {
        umg_buf_free(&apps);
        umg__job_error(j, 403, "forbidden", "role", "you may not give this role");
        return;
    } else if (self && (has_role || has_dis || has_apps || apps_null)) {
        err = "you cannot change your own role, apps or status";
    } else if (self && has_pw) {
        umg_buf_free(&apps);
        umg__job_error(j, 400, "invalid_value", "password",
                       "change your own password with POST /v1/me/password, which asks for the current one");
        return;
    } else if ((has_apps || apps_null) && !apps_within(a, j, has_apps ? apps.ptr : NULL)) {
        umg_buf_free(&apps);
        umg__job_error(j, 403, "forbidden", "apps", "you can only give access to apps you have");
        return;
    } else if (has_pw && !self && j->who.role != UMG_ROLE_OWNER) {
        umg_buf_free(&apps);
        umg__job_error(j, 403, "forbidden", "password", "only owners set other users' passwords");
        return;
    }
    if (err != NULL) {
        umg_buf_free(&apps);
        umg__job_error(j, 400, "invalid_value", has_role ? "role" : NULL, err);
        return;
    }
    char hash[128] = "";
    if (has_pw && umg_meta_password_hash(password, strlen(password), hash) != UMG_OK) {
        umg_buf_free(&apps);
        umg__job_error(j, 400, "invalid_value", "password", "the password must be 8 to 1024 bytes");
        return;
    }
    sodium_memzero(password, sizeof(password));
    umg_buf_t norm = {0};
    if (begin_apps(a, j, &apps, has_apps, &norm)) {
        return;
    }
    int rc = 0;
    if (cur == UMG_ROLE_OWNER && ((has_role && r != UMG_ROLE_OWNER) || (has_dis && disabled)) &&
        active_owners(a, j->who.org) <= 1) {
        rollback(a);
        umg_buf_free(&norm);
        umg__job_error(j, 409, "last_owner", NULL, "the organization must keep one active owner");
        return;
    }
    if (has_role) {
        rc |= exec(a, q(a, "UPDATE users SET role = ? WHERE id = ?", "ti", umg_role_name(r), uid));
    }
    if (has_apps || apps_null) {
        rc |= exec(a, q(a, "UPDATE users SET apps = ? WHERE id = ?", "ti", has_apps ? norm.ptr : NULL, uid));
    }
    if (has_dis) {
        rc |= exec(a, q(a, "UPDATE users SET disabled = ? WHERE id = ?", "ii", (int64_t)disabled, uid));
    }
    if (has_dis && disabled) { /* disabling ends the user's API tokens for good, as deleting does */
        rc |=
            exec(a, q(a, "UPDATE api_tokens SET revoked_us = ? WHERE org_id = ? AND created_by = ? AND revoked_us = 0",
                      "iit", umg_now_us(), (int64_t)j->who.org, upid));
    }
    if (has_pw) {
        rc |= exec(a, q(a, "UPDATE users SET password_hash = ? WHERE id = ?", "ti", hash, uid));
    }
    umg_buf_free(&norm);
    /* Any change ends the user's current sessions and access tokens. */
    rc |= exec(a, q(a, "UPDATE users SET token_version = token_version + 1 WHERE id = ?", "i", uid));
    rc |= exec(a, q(a, "UPDATE refresh_tokens SET revoked_us = ? WHERE user_id = ? AND revoked_us IS NULL", "ii",
                    umg_now_us(), uid));
    if (rc) {
        rollback(a);
        db_error(a, j);
        return;
    }
    char detail[160];
    snprintf(detail, sizeof(detail),
             "{\"role\":\"%s\",\"role_changed\":%s,\"apps_changed\":%s,\"disabled\":%s,"
             "\"password_changed\":%s}",
             umg_role_name(r), has_role ? "true" : "false", has_apps || apps_null ? "true" : "false",
             has_dis ? (disabled ? "true" : "false") : "null", has_pw ? "true" : "false");
    audit(a, j, j->who.org, has_role ? "user.role" : "user.update", upid, "ok", detail);
    if (commit(a, j)) {
        return;
    }
    st = q(a, "SELECT " USER_COLS " FROM users WHERE id = ?", "i", uid);
    if (st != NULL && sqlite3_step(st) == SQLITE_ROW && user_json(st, o) == UMG_OK && umg_buf_putc(o, '\n') == UMG_OK) {
        answer(j, 200);
    } else {
        oom(j);
    }
    sqlite3_finalize(st);
}

/* ---------------------------------------------------------------- invitations */

static void ep_invitations(umg_admin_t *a, job_t *j, path_t *p)
{
    umg_buf_t *o = &j->out;
    int64_t now = umg_now_us();
    if (p->n == 2 && is(p->seg[1], "accept")) {
        static const char *const allowed[] = {"token", "password", NULL};
        body_t b;
        char token[128], password[1025], hash[65];
        if (parse_body(a, j, allowed, &b) || get_str(j, &b, "token", 1, token, sizeof(token)) < 0 ||
            get_str(j, &b, "password", 1, password, sizeof(password)) < 0) {
            return;
        }
        umg_meta_token_hash(token, strlen(token), hash);
        if (begin(a)) {
            db_error(a, j);
            return;
        }
        sqlite3_stmt *st = q(a,
                             "SELECT id, org_id, email, role, apps, public_id FROM invitations WHERE token_hash = ?"
                             " AND accepted_us = 0 AND revoked_us = 0 AND expires_us > ?",
                             "ti", hash, now);
        if (st == NULL || sqlite3_step(st) != SQLITE_ROW) {
            sqlite3_finalize(st);
            rollback(a);
            umg__job_error(j, 401, "invalid_token", "token", "the invitation is unknown, used, revoked or expired");
            return;
        }
        char email[256], inv[40], apps[2048];
        int has_apps = col(st, 4) != NULL;
        snprintf(email, sizeof(email), "%s", col(st, 2));
        snprintf(inv, sizeof(inv), "%s", col(st, 5));
        snprintf(apps, sizeof(apps), "%s", has_apps ? col(st, 4) : "");
        umg_meta_user_t u = {.org_id = sqlite3_column_int64(st, 1),
                             .email = email,
                             .password = password,
                             .password_len = strlen(password),
                             .role = umg_role_parse(col(st, 3), strlen(col(st, 3))),
                             .apps = has_apps ? apps : NULL};
        int64_t inv_id = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        char msg[160];
        const char *field = NULL;
        umg_buf_t out = {0};
        int rc = umg_meta_user_create(a->db, &u, &out, &field, msg, sizeof(msg));
        sodium_memzero(password, sizeof(password));
        if (rc != UMG_OK) {
            rollback(a);
            umg_buf_free(&out);
            umg__job_error(j, rc == UMG_EEXIST ? 409 : 400, rc == UMG_EEXIST ? "conflict" : "invalid_value", field,
                           msg);
            return;
        }
        exec(a, q(a, "UPDATE invitations SET accepted_us = ? WHERE id = ?", "ii", now, inv_id));
        audit(a, j, u.org_id, "invitation.accept", inv, "ok", NULL);
        if (commit(a, j) == 0) {
            umg_buf_append(o, out.ptr, out.len);
            umg_buf_putc(o, '\n');
            answer(j, 201);
        }
        umg_buf_free(&out);
        return;
    }
    if (j->who.kind == UMG_PRINCIPAL_NONE) {
        umg__job_error(j, 401, "unauthorized", "Authorization", "missing Authorization: Bearer token");
        return;
    }
    if (!need(j, UMG_PERM_USERS_MANAGE, NULL)) {
        return;
    }
    if (p->n == 1 && is(j->method, "POST")) {
        static const char *const allowed[] = {"email", "role", "apps", NULL};
        body_t b;
        char email[256], role[16], token[80], hash[65], pid[40];
        umg_buf_t apps = {0}, norm = {0};
        if (parse_body(a, j, allowed, &b) || get_str(j, &b, "email", 1, email, sizeof(email)) < 0 ||
            get_str(j, &b, "role", 1, role, sizeof(role)) < 0) {
            return;
        }
        int has_apps = get_list(j, &b, "apps", UMG_PRINCIPAL_MAX_APPS, 32, &apps);
        if (has_apps < 0) {
            umg_buf_free(&apps);
            return;
        }
        umg_role_t r = umg_role_parse(role, strlen(role));
        const char *err = !umg_meta_valid_email(email, strlen(email)) ? "not an e-mail address"
                          : r == UMG_ROLE_NONE ? "role must be owner, admin, analyst, marketer or viewer"
                                               : NULL;
        if (err != NULL) {
            umg_buf_free(&apps);
            umg__job_error(j, 400, "invalid_value", r == UMG_ROLE_NONE && err[0] == 'r' ? "role" : "email", err);
            return;
        }
        if (!may_grant(&j->who, r)) {
            umg_buf_free(&apps);
            umg__job_error(j, 403, "forbidden", "role", "you may not give this role");
            return;
        }
        if (!apps_within(a, j, has_apps ? apps.ptr : NULL)) {
            umg_buf_free(&apps);
            umg__job_error(j, 403, "forbidden", "apps", "you can only give access to apps you have");
            return;
        }
        if (begin_apps(a, j, &apps, has_apps, &norm)) {
            return;
        }
        umg_meta_random_id(token, "inv_", 32);
        umg_meta_token_hash(token, strlen(token), hash);
        umg_meta_random_id(pid, "ivt_", 8);
        int64_t expires = now + umg_auth_config(a->auth)->invite_ttl_ms * 1000;
        int rc = exec(a, q(a,
                           "INSERT INTO invitations (public_id, org_id, email, role, apps, token_hash, created_by,"
                           " created_us, expires_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           "titttttii", pid, (int64_t)j->who.org, email, umg_role_name(r), has_apps ? norm.ptr : NULL,
                           hash, j->who.id, now, expires));
        if (rc) {
            rollback(a);
            umg_buf_free(&norm);
            db_error(a, j);
            return;
        }
        audit(a, j, j->who.org, "invitation.create", email, "ok", NULL);
        if (commit(a, j) == 0) {
            rc = put_obj(o, "invitation_id", 0, pid);
            rc = rc ? rc : put_str(o, "email", email, 1);
            rc = rc ? rc : put_str(o, "role", umg_role_name(r), 1);
            rc = rc ? rc : put_apps(o, has_apps ? norm.ptr : NULL);
            rc = rc ? rc : put_str(o, "token", token, 1);
            rc = rc ? rc : put_time(o, "expires_at", expires);
            rc = rc ? rc : umg_buf_append(o, "}\n", 2);
            rc ? oom(j) : (answer(j, 201), 0);
        }
        umg_buf_free(&norm);
        return;
    }
    if (p->n == 1 && is(j->method, "GET")) {
        sqlite3_stmt *st = q(a,
                             "SELECT public_id, email, role, apps, created_by, created_us, expires_us FROM invitations"
                             " WHERE org_id = ? AND accepted_us = 0 AND revoked_us = 0 AND expires_us > ? ORDER BY id",
                             "ii", (int64_t)j->who.org, now);
        int rc = st ? umg_buf_append(o, "{\"invitations\":[", 16) : UMG_EIO, first = 1;
        while (rc == UMG_OK && sqlite3_step(st) == SQLITE_ROW) {
            if (!apps_within(a, j, col(st, 3))) {
                continue; /* for apps the caller does not have */
            }
            rc = put_obj(o, "invitation_id", !first, col(st, 0));
            rc = rc ? rc : put_str(o, "email", col(st, 1), 1);
            rc = rc ? rc : put_str(o, "role", col(st, 2), 1);
            rc = rc ? rc : put_apps(o, col(st, 3));
            rc = rc ? rc : put_str(o, "created_by", col(st, 4), 1);
            rc = rc ? rc : put_time(o, "created_at", sqlite3_column_int64(st, 5));
            rc = rc ? rc : put_time(o, "expires_at", sqlite3_column_int64(st, 6));
            rc = rc ? rc : umg_buf_putc(o, '}');
            first = 0;
        }
        sqlite3_finalize(st);
        rc = rc ? rc : umg_buf_append(o, "]}\n", 3);
        rc == UMG_OK ? answer(j, 200) : (void)(rc == UMG_EIO ? db_error(a, j) : oom(j));
        return;
    }
    if (p->n == 2 && is(j->method, "DELETE") && valid_id(p->seg[1], "ivt_")) {
        sqlite3_stmt *st = q(a, "SELECT apps FROM invitations WHERE public_id = ? AND org_id = ?", "ti", p->seg[1],
                             (int64_t)j->who.org);
        int found = st != NULL && sqlite3_step(st) == SQLITE_ROW, within = found && apps_within(a, j, col(st, 0));
        sqlite3_finalize(st);
        if (found && !within) {
            umg__job_error(j, 403, "forbidden", NULL, "this invitation gives access to apps you do not have");
            return;
        }
        if (begin(a)) {
            db_error(a, j);
            return;
        }
        exec(a, q(a, "UPDATE invitations SET revoked_us = ? WHERE public_id = ? AND org_id = ? AND revoked_us = 0",
                  "iti", now, p->seg[1], (int64_t)j->who.org));
        if (sqlite3_changes(a->db) == 0) {
            rollback(a);
            umg__job_error(j, 404, "not_found", NULL, "no such invitation");
            return;
        }
        audit(a, j, j->who.org, "invitation.revoke", p->seg[1], "ok", NULL);
        if (commit(a, j) == 0) {
            umg_buf_printf(o, "{\"revoked\":\"%s\"}\n", p->seg[1]);
            answer(j, 200);
        }
        return;
    }
    umg__job_error(j, 404, "not_found", NULL, "no such endpoint");
}

/* ---------------------------------------------------------------- API tokens */

static void ep_tokens(umg_admin_t *a, job_t *j, path_t *p)
{
    umg_buf_t *o = &j->out;
    int64_t now = umg_now_us();
    /* Others' tokens: a manager of every app only (tokens may reach apps a manager limited to some lacks). */
    int manager = umg_principal_can(&j->who, UMG_PERM_USERS_MANAGE, NULL) && j->who.all_apps;
    if (p->n == 1 && is(j->method, "POST")) {
        if (j->who.kind != UMG_PRINCIPAL_USER) {
            umg__job_error(j, 403, "forbidden", NULL, "API tokens are created by users, not by other tokens");
            return;
        }
        static const char *const allowed[] = {"name", "permissions", "apps", "expires_in_days", NULL};
        body_t b;
        char name[160], token[80], hash[65], pid[40];
        umg_buf_t perms_csv = {0}, apps = {0}, norm = {0};
        int64_t days = 0;
        if (parse_body(a, j, allowed, &b) || get_str(j, &b, "name", 1, name, sizeof(name)) < 0 ||
            get_int(j, &b, "expires_in_days", 0, 3650, &days) < 0) {
            return;
        }
        int hp = get_list(j, &b, "permissions", UMG_PERM_COUNT, 32, &perms_csv);
        int ha = hp < 0 ? -1 : get_list(j, &b, "apps", UMG_PRINCIPAL_MAX_APPS, 32, &apps);
        if (hp == 0) {
            umg__job_error(j, 400, "required", "permissions", "name the permissions the token gets");
            ha = -1;
        }
        uint32_t perms = 0;
        for (const char *s = perms_csv.ptr; ha >= 0 && s && *s;) {
            size_t n = strcspn(s, ",");
            uint32_t bit = umg_perm_parse(s, n);
            if (bit == 0 || (bit & ~UMG_PERM_USER_MASK)) {
                umg__job_error(j, 400, "invalid_value", "permissions", "unknown permission");
                ha = -1;
            } else if (!(j->who.perms & bit)) {
                umg__job_error(j, 403, "forbidden", "permissions", "a token cannot hold a permission you do not have");
                ha = -1;
            }
            perms |= bit;
            s += n + (s[n] == ',');
        }
        umg_buf_free(&perms_csv);
        if (ha < 0) {
            umg_buf_free(&apps);
            return;
        }
        if (begin_apps(a, j, &apps, ha, &norm)) {
            return;
        }
        /* A user limited to some apps makes tokens limited to (some of) those apps. */
        if (!j->who.all_apps && (ha == 0 || !apps_within(a, j, norm.ptr))) {
            rollback(a);
            umg_buf_free(&norm);
            umg__job_error(j, 403, "forbidden", "apps", "list apps you have access to");
            return;
        }
        umg_meta_random_id(token, "ut_", 32);
        umg_meta_token_hash(token, strlen(token), hash);
        umg_meta_random_id(pid, "tok_", 8);
        int64_t expires = days > 0 ? now + days * 86400 * US : 0;
        int rc = exec(a, q(a,
                           "INSERT INTO api_tokens (public_id, org_id, created_by, name, token_hash, perms, apps,"
                           " created_us, expires_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           "titttitii", pid, (int64_t)j->who.org, j->who.id, name, hash, (int64_t)perms,
                           ha ? norm.ptr : NULL, now, expires));
        if (rc) {
            rollback(a);
            umg_buf_free(&norm);
            db_error(a, j);
            return;
        }
        audit(a, j, j->who.org, "token.create", pid, "ok", NULL);
        if (commit(a, j) == 0) {
            rc = put_obj(o, "token_id", 0, pid);
            rc = rc ? rc : put_str(o, "name", name, 1);
            rc = rc ? rc : put_str(o, "token", token, 1);
            rc = rc ? rc : umg_buf_append(o, ",\"permissions\":", 15);
            rc = rc ? rc : umg_perms_json(perms, o);
            rc = rc ? rc : put_apps(o, ha ? norm.ptr : NULL);
            rc = rc ? rc : put_time(o, "expires_at", expires);
            rc = rc ? rc : umg_buf_append(o, "}\n", 2);
            rc ? oom(j) : (answer(j, 201), 0);
        }
        umg_buf_free(&norm);
        return;
    }
    if (p->n == 1 && is(j->method, "GET")) {
        sqlite3_stmt *st = q(a,
                             "SELECT public_id, name, perms, apps, created_by, created_us, expires_us, last_used_us,"
                             " revoked_us FROM api_tokens WHERE org_id = ? AND (? OR created_by = ?) ORDER BY id",
                             "iit", (int64_t)j->who.org, (int64_t)manager, j->who.id);
        int rc = st ? umg_buf_append(o, "{\"tokens\":[", 11) : UMG_EIO, first = 1;
        while (rc == UMG_OK && sqlite3_step(st) == SQLITE_ROW) {
            rc = put_obj(o, "token_id", !first, col(st, 0));
            rc = rc ? rc : put_str(o, "name", col(st, 1), 1);
            rc = rc ? rc : umg_buf_append(o, ",\"permissions\":", 15);
            rc = rc ? rc : umg_perms_json((uint32_t)sqlite3_column_int64(st, 2), o);
            rc = rc ? rc : put_apps(o, col(st, 3));
            rc = rc ? rc : put_str(o, "created_by", col(st, 4), 1);
            rc = rc ? rc : put_time(o, "created_at", sqlite3_column_int64(st, 5));
            rc = rc ? rc : put_time(o, "expires_at", sqlite3_column_int64(st, 6));
            rc = rc ? rc : put_time(o, "last_used_at", sqlite3_column_int64(st, 7));
            rc = rc ? rc : put_time(o, "revoked_at", sqlite3_column_int64(st, 8));
            rc = rc ? rc : umg_buf_putc(o, '}');
            first = 0;
        }
        sqlite3_finalize(st);
        rc = rc ? rc : umg_buf_append(o, "]}\n", 3);
        rc == UMG_OK ? answer(j, 200) : (void)(rc == UMG_EIO ? db_error(a, j) : oom(j));
        return;
    }
    if (p->n == 2 && is(j->method, "DELETE") && valid_id(p->seg[1], "tok_")) {
        if (begin(a)) {
            db_error(a, j);
            return;
        }
        exec(a, q(a,
                  "UPDATE api_tokens SET revoked_us = ? WHERE public_id = ? AND org_id = ? AND revoked_us = 0"
                  " AND (? OR created_by = ?)",
                  "itiit", now, p->seg[1], (int64_t)j->who.org, (int64_t)manager, j->who.id));
        if (sqlite3_changes(a->db) == 0) {
            rollback(a);
            umg__job_error(j, 404, "not_found", NULL, "no such token");
            return;
        }
        audit(a, j, j->who.org, "token.revoke", p->seg[1], "ok", NULL);
        if (commit(a, j) == 0) {
            umg_buf_printf(o, "{\"revoked\":\"%s\"}\n", p->seg[1]);
            answer(j, 200);
        }
        return;
    }
    umg__job_error(j, 404, "not_found", NULL, "no such endpoint");
}

/* ---------------------------------------------------------------- audit */

static int query_time(job_t *j, const char *name, int64_t *us)
{
    char v[48];
    int has = query_get(j, name, v, sizeof(v));
    if (has <= 0) {
        return has;
    }
    size_t n = strlen(v), digits = strspn(v, "0123456789");
    if (digits == n && n > 0 && n <= 15) {
        *us = strtoll(v, NULL, 10) * 1000;
        return 1;
    }
    if (umg_time_parse_rfc3339(v, n, us) == UMG_OK) {
        return 1;
    }
    umg__job_error(j, 400, "invalid_value", name, "must be Unix milliseconds or an RFC 3339 time");
    return -1;
}

static void ep_audit(umg_admin_t *a, job_t *j)
{
    if (!is(j->method, "GET")) {
        umg__job_error(j, 405, "method_not_allowed", NULL, "the audit log is read-only");
        return;
    }
    if (!need(j, UMG_PERM_AUDIT_READ, NULL)) {
        return;
    }
    int64_t from = 0, to = INT64_MAX, limit = 100, before = INT64_MAX;
    char action[64] = "", num[24];
    if (query_time(j, "from", &from) < 0 || query_time(j, "to", &to) < 0 ||
        query_get(j, "action", action, sizeof(action)) < 0) {
        return;
    }
    int hl = query_get(j, "limit", num, sizeof(num));
    if (hl < 0) {
        return;
    }
    if (hl > 0) {
        char *end;
        limit = strtoll(num, &end, 10);
        if (*end || limit < 1 || limit > 1000) {
            umg__job_error(j, 400, "invalid_value", "limit", "must be 1 to 1000");
            return;
        }
    }
    int hb = query_get(j, "before_id", num, sizeof(num));
    if (hb < 0) {
        return;
    }
    if (hb > 0) {
        char *end;
        before = strtoll(num, &end, 10);
        if (*end || before < 1) {
            umg__job_error(j, 400, "invalid_value", "before_id", "must be a positive integer");
            return;
        }
    }
    sqlite3_stmt *st = q(a,
                         "SELECT id, ts_us, actor, action, target, outcome, ip, request_id, detail FROM audit"
                         " WHERE org_id = ? AND ts_us >= ? AND ts_us < ? AND id < ? AND (? = '' OR action = ?)"
                         " ORDER BY id DESC LIMIT ?",
                         "iiiitti", (int64_t)j->who.org, from, to, before, action, action, limit);
    umg_buf_t *o = &j->out;
    int rc = st ? umg_buf_append(o, "{\"entries\":[", 12) : UMG_EIO, first = 1;
    int64_t last = 0, n = 0;
    while (rc == UMG_OK && sqlite3_step(st) == SQLITE_ROW) {
        last = sqlite3_column_int64(st, 0);
        rc = umg_buf_printf(o, "%s{\"id\":%lld", first ? "" : ",", (long long)last);
        rc = rc ? rc : put_time(o, "ts", sqlite3_column_int64(st, 1));
        rc = rc ? rc : put_str(o, "actor", col(st, 2), 1);
        rc = rc ? rc : put_str(o, "action", col(st, 3), 1);
        rc = rc ? rc : put_str(o, "target", col(st, 4), 1);
        rc = rc ? rc : put_str(o, "outcome", col(st, 5), 1);
        rc = rc ? rc : put_str(o, "ip", col(st, 6), 1);
        rc = rc ? rc : put_str(o, "request_id", col(st, 7), 1);
        if (col(st, 8) != NULL) {
            rc = rc ? rc : umg_buf_append(o, ",\"detail\":", 10);
            rc = rc ? rc : umg_buf_append(o, col(st, 8), strlen(col(st, 8)));
        }
        rc = rc ? rc : umg_buf_putc(o, '}');
        first = 0;
        n++;
    }
    sqlite3_finalize(st);
    if (rc == UMG_OK) {
        rc = n == limit ? umg_buf_printf(o, "],\"next_before_id\":%lld}\n", (long long)last)
                        : umg_buf_append(o, "],\"next_before_id\":null}\n", 25);
    }
    rc == UMG_OK ? answer(j, 200) : (void)(rc == UMG_EIO ? db_error(a, j) : oom(j));
}

/* ---------------------------------------------------------------- privacy */

typedef struct forget_ctx_s {
    job_t *j;
    umg_meta_id_t ids[1000];
    size_t n;
    umg_arena_t arena;
    int err;
} forget_ctx_t;

static int forget_member(void *ctx, const char *key, size_t klen, umg_json_val_t v)
{
    forget_ctx_t *c = ctx;
    const char *kind = NULL;
    for (int i = 0; umg_privacy_id_kinds[i] != NULL; i++) {
        if (strlen(umg_privacy_id_kinds[i]) == klen && memcmp(umg_privacy_id_kinds[i], key, klen) == 0) {
            kind = umg_privacy_id_kinds[i];
        }
    }
    const char *str;
    size_t len;
    if (kind == NULL) {
        c->err = 1;
        return 1;
    }
    if (umg_json_get_string(v, &str, &len) != UMG_JSON_OK || len == 0 || len > UMG_EVENT_MAX_STR ||
        memchr(str, '\0', len) != NULL) {
        c->err = 2;
        return 1;
    }
    if (c->n == UMG_ARRAY_SIZE(c->ids)) {
        c->err = 3;
        return 1;
    }
    char *copy = umg_arena_alloc(&c->arena, len + 1);
    if (copy == NULL) {
        c->err = 4;
        return 1;
    }
    memcpy(copy, str, len);
    copy[len] = '\0';
    c->ids[c->n++] = (umg_meta_id_t){kind, copy};
    return 0;
}

static int forget_device(void *ctx, size_t index, umg_json_val_t v)
{
    forget_ctx_t *c = ctx;
    (void)index;
    if (umg_json_type(v) != UMG_JSON_OBJECT || umg_json_object_size(v) == 0) {
        c->err = 1;
        return 1;
    }
    return umg_json_object_foreach(v, forget_member, c);
}

static void request_json(sqlite3_stmt *st, umg_buf_t *o)
{
    /* columns: public_id, app public id, status, identifiers, created_us, completed_us, records_forgotten */
    int rc = put_obj(o, "request_id", 0, col(st, 0));
    rc = rc ? rc : put_str(o, "app_id", col(st, 1), 1);
    rc = rc ? rc : put_str(o, "status", col(st, 2), 1);
    rc = rc ? rc : umg_buf_printf(o, ",\"identifiers\":%lld", (long long)sqlite3_column_int64(st, 3));
    rc = rc ? rc : put_time(o, "created_at", sqlite3_column_int64(st, 4));
    rc = rc ? rc : put_time(o, "completed_at", sqlite3_column_int64(st, 5));
    rc = rc ? rc : umg_buf_printf(o, ",\"records_forgotten\":%lld}", (long long)sqlite3_column_int64(st, 6));
    (void)rc;
}

#define PRIVACY_COLS                                                                                                   \
    "r.public_id, a.public_id, r.status, r.identifiers, r.created_us, r.completed_us, r.records_forgotten, r.app_id"

static void ep_privacy(umg_admin_t *a, job_t *j, path_t *p)
{
    umg_buf_t *o = &j->out;
    if (p->n == 2 && is(p->seg[1], "forget") && is(j->method, "POST")) {
        static const char *const allowed[] = {"app_id", "devices", NULL};
        body_t b;
        char app_pid[40];
        umg_app_t app;
        if (parse_body(a, j, allowed, &b) || get_str(j, &b, "app_id", 1, app_pid, sizeof(app_pid)) < 0 ||
            load_app(a, j, app_pid, &app) || !need(j, UMG_PERM_PRIVACY_EXECUTE, &app)) {
            return;
        }
        umg_json_val_t devs;
        if (!find(&b, "devices", &devs) || umg_json_type(devs) != UMG_JSON_ARRAY || umg_json_array_size(devs) == 0) {
            umg__job_error(j, 400, "required", "devices",
                           "devices must be a non-empty array of objects such as {\"gaid\": \"...\"}");
            return;
        }
        forget_ctx_t *c = umg_calloc(1, sizeof(*c));
        if (c == NULL) {
            oom(j);
            return;
        }
        c->j = j;
        umg_arena_init(&c->arena, 16384);
        umg_json_array_foreach(devs, forget_device, c);
        static const char *const why[] = {"",
                                          ("each device is an object of identifiers: idfa, idfv, gaid, android_id, "
                                           "oaid, custom_id, user_id"),
                                          "identifiers are non-empty strings of at most 256 bytes",
                                          "at most 1000 identifiers per request", "out of memory"};
        char msg[160];
        if (c->err) {
            umg__job_error(j, c->err == 4 ? 503 : 400, c->err == 4 ? "out_of_memory" : "invalid_value", "devices",
                           why[c->err]);
        } else if (begin(a)) {
            db_error(a, j);
        } else if (umg_meta_forget_create(a->db, a->privacy_key, j->who.org, app.id, j->who.id, c->ids, c->n, o, msg,
                                          sizeof(msg)) != UMG_OK) {
            rollback(a);
            umg_buf_reset(o);
            umg__job_error(j, 400, "invalid_value", "devices", msg);
        } else {
            char detail[64];
            snprintf(detail, sizeof(detail), "{\"identifiers\":%zu}", c->n);
            audit(a, j, j->who.org, "privacy.forget", app.public_id, "ok", detail);
            if (commit(a, j) == 0) {
                umg_buf_putc(o, '\n');
                answer(j, 202);
            }
        }
        umg_arena_free(&c->arena);
        sodium_memzero(c->ids, sizeof(c->ids));
        umg_free(c);
        return;
    }
    if (p->n >= 2 && is(p->seg[1], "requests") && is(j->method, "GET")) {
        sqlite3_stmt *st;
        if (p->n == 3) {
            st = valid_id(p->seg[2], "prv_") ? q(a,
                                                 "SELECT " PRIVACY_COLS " FROM privacy_requests r JOIN apps a ON"
                                                 " a.id = r.app_id WHERE r.public_id = ? AND r.org_id = ?",
                                                 "ti", p->seg[2], (int64_t)j->who.org)
                                             : NULL;
            umg_app_t app = {.org = j->who.org};
            if (st == NULL || sqlite3_step(st) != SQLITE_ROW ||
                ((app.id = (uint32_t)sqlite3_column_int64(st, 7)),
                 !umg_principal_can(&j->who, UMG_PERM_PRIVACY_EXECUTE, &app))) {
                sqlite3_finalize(st);
                umg__job_error(j, 404, "not_found", NULL, "no such privacy request");
                return;
            }
            request_json(st, o);
            sqlite3_finalize(st);
            umg_buf_putc(o, '\n');
            answer(j, 200);
            return;
        }
        if (p->n != 2 || !need(j, UMG_PERM_PRIVACY_EXECUTE, NULL)) {
            if (p->n != 2) {
                umg__job_error(j, 404, "not_found", NULL, "no such endpoint");
            }
            return;
        }
        st = q(a,
               "SELECT " PRIVACY_COLS " FROM privacy_requests r JOIN apps a ON a.id = r.app_id WHERE r.org_id = ?"
               " ORDER BY r.id DESC LIMIT 1000",
               "i", (int64_t)j->who.org);
        int first = 1;
        umg_buf_append(o, "{\"requests\":[", 13);
        while (st != NULL && sqlite3_step(st) == SQLITE_ROW) {
            umg_app_t app = {.id = (uint32_t)sqlite3_column_int64(st, 7), .org = j->who.org};
            if (!umg_principal_can(&j->who, UMG_PERM_PRIVACY_EXECUTE, &app)) {
                continue;
            }
            if (!first) {
                umg_buf_putc(o, ',');
            }
            request_json(st, o);
            first = 0;
        }
        sqlite3_finalize(st);
        umg_buf_append(o, "]}\n", 3);
        answer(j, 200);
        return;
    }
    umg__job_error(j, 404, "not_found", NULL, "no such endpoint");
}

/* ---------------------------------------------------------------- dispatch */

void umg__admin_dispatch(umg_admin_t *a, job_t *j)
{
    path_t p;
    if (split_path(j->path, &p) != 0 || p.n == 0) {
        umg__job_error(j, 404, "not_found", NULL, "no such endpoint");
        return;
    }
    const char *top = p.seg[0];
    if (is(top, "auth")) {
        if (p.n == 2 && is(j->method, "POST") && is(p.seg[1], "login")) {
            if (j->login != NULL && j->login->checked) {
                login_finish(a, j);
            } else {
                ep_login(a, j);
            }
        } else if (p.n == 2 && is(j->method, "POST") && (is(p.seg[1], "refresh") || is(p.seg[1], "logout"))) {
            ep_refresh(a, j, is(p.seg[1], "logout"));
        } else if (p.n == 2 && (is(p.seg[1], "login") || is(p.seg[1], "refresh") || is(p.seg[1], "logout"))) {
            umg__job_error(j, 405, "method_not_allowed", NULL, "use POST");
        } else {
            umg__job_error(j, 404, "not_found", NULL, "no such endpoint");
        }
    } else if (is(top, "invitations")) {
        ep_invitations(a, j, &p);
    } else if (j->who.kind == UMG_PRINCIPAL_NONE) {
        umg__job_error(j, 401, "unauthorized", "Authorization", "missing Authorization: Bearer token");
    } else if (is(top, "me") && p.n == 1) {
        is(j->method, "GET") ? ep_me(a, j) : umg__job_error(j, 405, "method_not_allowed", NULL, "use GET");
    } else if (is(top, "me") && p.n == 2 && is(p.seg[1], "password")) {
        is(j->method, "POST") ? ep_me_password(a, j) : umg__job_error(j, 405, "method_not_allowed", NULL, "use POST");
    } else if (is(top, "org") && p.n == 1) {
        ep_org(a, j);
    } else if (is(top, "apps")) {
        ep_apps(a, j, &p);
    } else if (is(top, "users")) {
        ep_users(a, j, &p);
    } else if (is(top, "tokens")) {
        ep_tokens(a, j, &p);
    } else if (is(top, "privacy")) {
        ep_privacy(a, j, &p);
    } else if (is(top, "audit") && p.n == 1) {
        ep_audit(a, j);
    } else {
        umg__job_error(j, 404, "not_found", NULL, "no such endpoint");
    }
    if (j->status == 0 && !umg__login_waits(j)) {
        umg__job_error(j, 503, "internal", NULL, "the request could not be completed; retry");
    }
}

/* ------------------------------------------------ the CLI's settings command */

/* What a CLI command needs to run an endpoint's code without the daemon: meta.db and a JSON parser. */
static int cli_open(const char *data_dir, umg_admin_t *a, job_t *j, umg_buf_t *out)
{
    memset(a, 0, sizeof(*a));
    memset(j, 0, sizeof(*j));
    if (umg_meta_open(data_dir, &a->db) != UMG_OK || umg_json_parser_new(1 << 20, &a->json) != UMG_JSON_OK) {
        sqlite3_close(a->db);
        return umg_api_error_json(out, "store_unavailable", NULL, "cannot open meta.db") == UMG_OK ? UMG_EIO
                                                                                                   : UMG_ENOMEM;
    }
    return UMG_OK;
}

int umg_admin_cli_app_settings(const char *data_dir, const char *app_id, const char *json, umg_buf_t *out)
{
    umg_admin_t a;
    job_t j;
    int rc = cli_open(data_dir, &a, &j, out);
    if (rc != UMG_OK) {
        return rc;
    }
    app_settings_t s = {0};
    umg_buf_t merged = {0};
    sqlite3_stmt *st = q(&a, "SELECT settings, org_id FROM apps WHERE public_id = ?", "t", app_id);
    char *stored = NULL;
    int64_t org = -1;
    if (st != NULL && sqlite3_step(st) == SQLITE_ROW) {
        org = sqlite3_column_int64(st, 1);
        stored = col(st, 0) ? umg_strndup(col(st, 0), strlen(col(st, 0))) : NULL;
    }
    sqlite3_finalize(st);
    if (org < 0) {
        umg__job_error(&j, 404, "not_found", "app", "no such app");
        goto done;
    }
    settings_load(&a, stored, &s);
    umg_json_val_t root;
    if (json != NULL && *json) {
        if (umg_json_parse(a.json, json, strlen(json), &root) != UMG_JSON_OK ||
            umg_json_type(root) != UMG_JSON_OBJECT) {
            umg__job_error(&j, 400, "invalid_json", "settings", "settings must be a JSON object");
            goto done;
        }
        body_t b = {root, 1};
        if (check_members(&j, root, "settings", settings_keys) || settings_apply(&j, &b, &s, 1) < 0) {
            goto done;
        }
    }
    if (settings_json(&s, &merged) != UMG_OK || umg_buf_putc(&merged, '\0') != UMG_OK) {
        umg__job_error(&j, 503, "out_of_memory", NULL, "out of memory");
        goto done;
    }
    if (json != NULL && *json) {
        int bad = sqlite3_exec(a.db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK;
        bad = bad || exec(&a, q(&a, "UPDATE apps SET settings = ? WHERE public_id = ?", "tt", merged.ptr, app_id));
        umg_audit_t rec = {
            .org_id = org, .actor = "cli", .action = "app.settings", .target = app_id, .outcome = "ok", .detail = json};
        bad = bad || umg_meta_audit(a.db, &rec) != UMG_OK;
        bad = bad || sqlite3_exec(a.db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK;
        if (bad) {
            sqlite3_exec(a.db, "ROLLBACK", NULL, NULL, NULL);
            umg__job_error(&j, 503, "store_unavailable", NULL, "cannot write meta.db (is it locked?); retry");
            goto done;
        }
    }
    j.status = 200;
    umg_buf_reset(&j.out);
    umg_buf_append(&j.out, merged.ptr, merged.len - 1);
done:
    umg_buf_reset(out);
    umg_buf_append(out, j.out.ptr, j.out.len);
    rc = j.status == 200 ? UMG_OK : j.status == 404 ? UMG_ENOENT : j.status == 400 ? UMG_EINVAL : UMG_EIO;
    umg_free(stored);
    settings_free(&s);
    umg_buf_free(&merged);
    umg_buf_free(&j.out);
    umg_json_parser_free(a.json);
    sqlite3_close(a.db);
    return rc;
}

/* ------------------------------------------- the CLI's fraud settings command */

int umg_admin_cli_app_fraud(const char *data_dir, const char *app_id, const char *json, umg_buf_t *out)
{
    umg_admin_t a;
    job_t j;
    int rc = cli_open(data_dir, &a, &j, out);
    if (rc != UMG_OK) {
        return rc;
    }
    /* The CLI acts as the organization's owner would, audited as actor "cli". */
    j.who.kind = UMG_PRINCIPAL_USER;
    snprintf(j.who.id, sizeof(j.who.id), "cli");
    j.who.perms = UMG_PERM_USER_MASK;
    j.who.all_apps = 1;
    snprintf(j.method, sizeof(j.method), "%s", json != NULL ? "PUT" : "GET");
    j.body = (char *)json;
    j.body_len = json != NULL ? strlen(json) : 0;
    sqlite3_stmt *st = q(&a, "SELECT org_id FROM apps WHERE public_id = ?", "t", app_id);
    int found = st != NULL && sqlite3_step(st) == SQLITE_ROW;
    j.who.org = found ? (uint32_t)sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    umg_app_t app;
    if (!found) {
        umg__job_error(&j, 404, "not_found", "app", "no such app");
    } else if (load_app(&a, &j, app_id, &app) == 0) {
        ep_app_fraud(&a, &j, &app);
    }
    umg_buf_reset(out);
    umg_buf_append(out, j.out.ptr, j.out.len);
    while (out->len > 0 && out->ptr[out->len - 1] == '\n') {
        out->len--;
    }
    rc = j.status == 200 ? UMG_OK : j.status == 404 ? UMG_ENOENT : j.status == 400 ? UMG_EINVAL : UMG_EIO;
    umg_buf_free(&j.out);
    umg_json_parser_free(a.json);
    sqlite3_close(a.db);
    return rc;
}
