/*
 * auth.c - the registry of users and API tokens, the signing keys, and the
 * authentication of a request into a principal.
 *
 * Like the app registry, users and tokens live in an immutable snapshot
 * (sorted arrays) behind a read-write lock and are reloaded when meta.db
 * changed. Access tokens carry the user's token_version: raising it (a role
 * change, a password change, disabling the user) makes every older token
 * invalid on the next refresh, well before it expires.
 */
#include "umg_auth.h"
#include "umg_meta.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct user_s {
    int64_t id;
    char public_id[24];
    uint32_t org;
    char org_public_id[24];
    umg_role_t role;
    int64_t version;
    int disabled;
    int all_apps;
    uint32_t napps;
    uint32_t apps[UMG_PRINCIPAL_MAX_APPS];
} user_t;

typedef struct token_s {
    char hash[65];
    int64_t id;
    char public_id[24];
    uint32_t org;
    char org_public_id[24];
    uint32_t perms;
    int64_t expires_us; /* 0: never */
    int all_apps;
    uint32_t napps;
    uint32_t apps[UMG_PRINCIPAL_MAX_APPS];
    _Atomic int64_t last_used_us;
    int64_t stored_last_used_us;
    char creator[24]; /* the user who made it */
    umg_role_t role;  /* the creator's role now */
} token_t;

typedef struct snapshot_s {
    user_t *users; /* by public_id */
    size_t nusers;
    token_t *tokens; /* by hash */
    size_t ntokens;
} snapshot_t;

struct umg_auth_s {
    umg_auth_config_t cfg;
    sqlite3 *db;
    umg_apps_t *apps;
    umg_jwt_keys_t *keys;
    pthread_rwlock_t lock;
    pthread_mutex_t refresh_mu; /* refreshes come from the main thread and the admin worker */
    snapshot_t *snap;
    int64_t data_version;
};

/* ---------------------------------------------------------------- snapshot */

static void snapshot_free(snapshot_t *s)
{
    if (s != NULL) {
        umg_free(s->users);
        umg_free(s->tokens);
        umg_free(s);
    }
}

static int cmp_user(const void *a, const void *b)
{
    return strcmp(((const user_t *)a)->public_id, ((const user_t *)b)->public_id);
}
static int cmp_token(const void *a, const void *b)
{
    return strcmp(((const token_t *)a)->hash, ((const token_t *)b)->hash);
}

/* "app_a,app_b" -> internal ids; apps that no longer exist are skipped. */
static void parse_apps(umg_apps_t *apps, const unsigned char *text, int *all, uint32_t *ids, uint32_t *n)
{
    *n = 0;
    *all = text == NULL;
    if (text == NULL) {
        return;
    }
    const char *s = (const char *)text;
    while (*s != '\0' && *n < UMG_PRINCIPAL_MAX_APPS) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        umg_app_t app;
        if (umg_apps_find_id(apps, umg_slice(s, len), &app) == UMG_OK) {
            ids[(*n)++] = app.id;
        }
        s += len + (e != NULL);
    }
}

static void copy_col(char *dst, size_t cap, sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

/* Before the users are sorted (a linear search; snapshots are loaded rarely). */
static const user_t *find_user_unsorted(const snapshot_t *s, const char *public_id)
{
    for (size_t i = 0; i < s->nusers; i++) {
        if (strcmp(s->users[i].public_id, public_id) == 0) {
            return &s->users[i];
        }
    }
    return NULL;
}

static int snapshot_load(umg_auth_t *a, snapshot_t **out)
{
    snapshot_t *s = umg_calloc(1, sizeof(*s));
    sqlite3_stmt *st = NULL;
    size_t cap = 0;
    int rc = UMG_ENOMEM, step;
    if (s == NULL) {
        return UMG_ENOMEM;
    }
    if (sqlite3_prepare_v2(
            a->db,
            "SELECT u.id, u.public_id, u.org_id, o.public_id, u.role, u.token_version, u.disabled, u.apps"
            " FROM users u JOIN orgs o ON o.id = u.org_id",
            -1, &st, NULL) != SQLITE_OK) {
        rc = UMG_EIO;
        goto fail;
    }
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (s->nusers == cap) {
            cap = cap ? cap * 2 : 16;
            user_t *nu = umg_realloc(s->users, cap * sizeof(*nu));
            if (nu == NULL) {
                goto fail;
            }
            s->users = nu;
        }
        user_t *u = &s->users[s->nusers++];
        memset(u, 0, sizeof(*u));
        u->id = sqlite3_column_int64(st, 0);
        copy_col(u->public_id, sizeof(u->public_id), st, 1);
        u->org = (uint32_t)sqlite3_column_int64(st, 2);
        copy_col(u->org_public_id, sizeof(u->org_public_id), st, 3);
        const char *role = (const char *)sqlite3_column_text(st, 4);
        u->role = role ? umg_role_parse(role, strlen(role)) : UMG_ROLE_NONE;
        u->version = sqlite3_column_int64(st, 5);
        u->disabled = sqlite3_column_int(st, 6) != 0;
        parse_apps(a->apps, sqlite3_column_text(st, 7), &u->all_apps, u->apps, &u->napps);
    }
    sqlite3_finalize(st);
    st = NULL;
    if (step != SQLITE_DONE) {
        rc = UMG_EIO;
        goto fail;
    }
    cap = 0;
    if (sqlite3_prepare_v2(a->db,
                           "SELECT t.token_hash, t.id, t.public_id, t.org_id, o.public_id, t.perms, t.expires_us,"
                           " t.apps, t.last_used_us, t.created_by FROM api_tokens t JOIN orgs o ON o.id = t.org_id"
                           " WHERE t.revoked_us = 0",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = UMG_EIO;
        goto fail;
    }
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (s->ntokens == cap) {
            cap = cap ? cap * 2 : 16;
            token_t *nt = umg_realloc(s->tokens, cap * sizeof(*nt));
            if (nt == NULL) {
                goto fail;
            }
            s->tokens = nt;
        }
        token_t *t = &s->tokens[s->ntokens++];
        memset(t, 0, sizeof(*t));
        copy_col(t->hash, sizeof(t->hash), st, 0);
        t->id = sqlite3_column_int64(st, 1);
        copy_col(t->public_id, sizeof(t->public_id), st, 2);
        t->org = (uint32_t)sqlite3_column_int64(st, 3);
        copy_col(t->org_public_id, sizeof(t->org_public_id), st, 4);
        t->perms = (uint32_t)sqlite3_column_int64(st, 5) & UMG_PERM_USER_MASK;
        t->expires_us = sqlite3_column_int64(st, 6);
        parse_apps(a->apps, sqlite3_column_text(st, 7), &t->all_apps, t->apps, &t->napps);
        t->stored_last_used_us = sqlite3_column_int64(st, 8);
        atomic_init(&t->last_used_us, t->stored_last_used_us);
        copy_col(t->creator, sizeof(t->creator), st, 9);
    }
    sqlite3_finalize(st);
    st = NULL;
    if (step != SQLITE_DONE) {
        rc = UMG_EIO;
        goto fail;
    }
    if (s->nusers > 1) {
        qsort(s->users, s->nusers, sizeof(user_t), cmp_user);
    }
    /* A token never holds more than its creator holds now: deleted or disabled creators take
     * their tokens with them, and a demotion or an app limit narrows them. */
    size_t kept = 0;
    for (size_t i = 0; i < s->ntokens; i++) {
        token_t *t = &s->tokens[i];
        const user_t *u = find_user_unsorted(s, t->creator);
        if (u == NULL || u->disabled || u->org != t->org) {
            continue;
        }
        t->perms &= umg_role_perms(u->role);
        t->role = u->role;
        if (!u->all_apps) {
            uint32_t keep[UMG_PRINCIPAL_MAX_APPS], n = 0;
            const uint32_t *cand = t->all_apps ? u->apps : t->apps;
            uint32_t ncand = t->all_apps ? u->napps : t->napps;
            for (uint32_t x = 0; x < ncand; x++) {
                for (uint32_t y = 0; y < u->napps; y++) {
                    if (cand[x] == u->apps[y]) {
                        keep[n++] = cand[x];
                        break;
                    }
                }
            }
            t->all_apps = 0;
            t->napps = n;
            memcpy(t->apps, keep, n * sizeof(uint32_t));
        }
        if (kept != i) {
            memcpy(&s->tokens[kept], t, offsetof(token_t, last_used_us));
            atomic_init(&s->tokens[kept].last_used_us, atomic_load(&t->last_used_us));
            s->tokens[kept].stored_last_used_us = t->stored_last_used_us;
            memcpy(s->tokens[kept].creator, t->creator, sizeof(t->creator));
            s->tokens[kept].role = t->role;
        }
        kept++;
    }
    s->ntokens = kept;
    if (s->ntokens > 1) {
        qsort(s->tokens, s->ntokens, sizeof(token_t), cmp_token);
    }
    *out = s;
    return UMG_OK;
fail:
    sqlite3_finalize(st);
    snapshot_free(s);
    return rc;
}

/* Writes API-token last-used times that moved by a minute or more. */
static void flush_last_used(umg_auth_t *a)
{
    sqlite3_stmt *st = NULL;
    pthread_rwlock_rdlock(&a->lock);
    snapshot_t *s = a->snap;
    for (size_t i = 0; i < s->ntokens; i++) {
        token_t *t = &s->tokens[i];
        int64_t used = atomic_load_explicit(&t->last_used_us, memory_order_relaxed);
        if (used - t->stored_last_used_us < 60 * 1000000ll) {
            continue;
        }
        if (st == NULL && sqlite3_prepare_v2(a->db, "UPDATE api_tokens SET last_used_us = ? WHERE id = ?", -1, &st,
                                             NULL) != SQLITE_OK) {
            break;
        }
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, used);
        sqlite3_bind_int64(st, 2, t->id);
        if (sqlite3_step(st) == SQLITE_DONE) {
            t->stored_last_used_us = used; /* only the refreshing thread touches this field */
        }
    }
    pthread_rwlock_unlock(&a->lock);
    sqlite3_finalize(st);
}

int umg_auth_refresh(umg_auth_t *a)
{
    pthread_mutex_lock(&a->refresh_mu);
    flush_last_used(a);
    int64_t v = umg_meta_data_version(a->db);
    if (v == a->data_version) {
        pthread_mutex_unlock(&a->refresh_mu);
        return UMG_OK;
    }
    snapshot_t *s = NULL;
    int rc = snapshot_load(a, &s);
    if (rc != UMG_OK) {
        pthread_mutex_unlock(&a->refresh_mu);
        return rc;
    }
    pthread_rwlock_wrlock(&a->lock);
    snapshot_t *old = a->snap;
    a->snap = s;
    pthread_rwlock_unlock(&a->lock);
    snapshot_free(old);
    a->data_version = v;
    pthread_mutex_unlock(&a->refresh_mu);
    return UMG_OK;
}

/* ---------------------------------------------------------------- keys */

static int read_file(const char *path, umg_buf_t *out, size_t max)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return errno == ENOENT ? UMG_ENOENT : UMG_EIO;
    }
    int rc = UMG_OK;
    char chunk[4096];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            rc = n < 0 ? UMG_EIO : UMG_OK;
            break;
        }
        if (out->len + (size_t)n > max) {
            rc = UMG_ERANGE;
            break;
        }
        if ((rc = umg_buf_append(out, chunk, (size_t)n)) != UMG_OK) {
            break;
        }
    }
    close(fd);
    return rc == UMG_OK ? umg_buf_putc(out, '\0') : rc;
}

static int load_keys(const char *data_dir, const umg_auth_config_t *cfg, umg_jwt_keys_t **out, char *msg, size_t msglen)
{
    umg_jwt_alg_t alg = umg_jwt_alg_parse(cfg->jwt_alg);
    if (alg == 0) {
        snprintf(msg, msglen, "auth.jwt_alg must be HS256, RS256 or ES256");
        return UMG_EINVAL;
    }
    umg_buf_t a = {0}, b = {0};
    int rc;
    if (alg == UMG_JWT_HS256) {
        char path[4096];
        if (cfg->jwt_secret_file && *cfg->jwt_secret_file) {
            snprintf(path, sizeof(path), "%s", cfg->jwt_secret_file);
        } else {
            snprintf(path, sizeof(path), "%s/jwt.secret", data_dir);
        }
        rc = read_file(path, &a, 4096);
        if (rc == UMG_ENOENT && !(cfg->jwt_secret_file && *cfg->jwt_secret_file)) {
            /* First start: make a 64-byte secret only this user can read. */
            char hex[140];
            umg_meta_random_id(hex, "", 64);
            mode_t old = umask(077);
            rc = umg_write_file_atomic(path, hex, strlen(hex));
            umask(old);
            rc = rc ? rc : read_file(path, &a, 4096);
        }
        if (rc != UMG_OK) {
            snprintf(msg, msglen, "cannot read the JWT secret %s", path);
            goto done;
        }
        size_t len = strlen(a.ptr);
        while (len > 0 && (a.ptr[len - 1] == '\n' || a.ptr[len - 1] == '\r')) {
            len--;
        }
        rc = umg_jwt_keys_new(alg, (const uint8_t *)a.ptr, len, NULL, NULL, out, msg, msglen);
    } else {
        if (!cfg->jwt_public_key || !*cfg->jwt_public_key || !cfg->jwt_private_key || !*cfg->jwt_private_key) {
            snprintf(msg, msglen, "auth.jwt_alg=%s needs auth.jwt_private_key and auth.jwt_public_key", cfg->jwt_alg);
            rc = UMG_EINVAL;
            goto done;
        }
        if ((rc = read_file(cfg->jwt_private_key, &a, 1 << 16)) != UMG_OK ||
            (rc = read_file(cfg->jwt_public_key, &b, 1 << 16)) != UMG_OK) {
            snprintf(msg, msglen, "cannot read the JWT key files");
            goto done;
        }
        rc = umg_jwt_keys_new(alg, NULL, 0, a.ptr, b.ptr, out, msg, msglen);
    }
done:
    if (a.ptr != NULL) {
        memset(a.ptr, 0, a.len);
    }
    umg_buf_free(&a);
    umg_buf_free(&b);
    return rc;
}

/* ---------------------------------------------------------------- open */

int umg_auth_open(const char *data_dir, const umg_auth_config_t *cfg, umg_apps_t *apps, umg_auth_t **out, char *msg,
                  size_t msglen)
{
    umg_auth_t *a = umg_calloc(1, sizeof(*a));
    if (a == NULL) {
        snprintf(msg, msglen, "out of memory");
        return UMG_ENOMEM;
    }
    a->cfg = *cfg;
    a->apps = apps;
    pthread_rwlock_init(&a->lock, NULL);
    pthread_mutex_init(&a->refresh_mu, NULL);
    int rc = umg_meta_open(data_dir, &a->db);
    if (rc != UMG_OK) {
        snprintf(msg, msglen, "cannot open %s/meta.db", data_dir);
        goto fail;
    }
    if ((rc = load_keys(data_dir, cfg, &a->keys, msg, msglen)) != UMG_OK) {
        goto fail;
    }
    a->data_version = umg_meta_data_version(a->db);
    if ((rc = snapshot_load(a, &a->snap)) != UMG_OK) {
        snprintf(msg, msglen, "cannot load users and tokens from meta.db");
        goto fail;
    }
    *out = a;
    return UMG_OK;
fail:
    umg_auth_close(a);
    return rc;
}

void umg_auth_close(umg_auth_t *a)
{
    if (a == NULL) {
        return;
    }
    if (a->snap != NULL) {
        flush_last_used(a);
    }
    snapshot_free(a->snap);
    umg_jwt_keys_free(a->keys);
    sqlite3_close(a->db);
    pthread_rwlock_destroy(&a->lock);
    pthread_mutex_destroy(&a->refresh_mu);
    umg_free(a);
}

const umg_auth_config_t *umg_auth_config(umg_auth_t *a)
{
    return &a->cfg;
}
const umg_jwt_keys_t *umg_auth_keys(umg_auth_t *a)
{
    return a->keys;
}
umg_apps_t *umg_auth_apps(umg_auth_t *a)
{
    return a->apps;
}

/* ---------------------------------------------------------------- authenticate */

static void principal_from_user(const user_t *u, umg_principal_t *p)
{
    memset(p, 0, sizeof(*p));
    p->kind = UMG_PRINCIPAL_USER;
    p->org = u->org;
    memcpy(p->org_public_id, u->org_public_id, sizeof(p->org_public_id));
    snprintf(p->id, sizeof(p->id), "%s", u->public_id);
    p->internal_id = u->id;
    p->role = u->role;
    snprintf(p->user_id, sizeof(p->user_id), "%s", u->public_id);
    p->perms = umg_role_perms(u->role);
    p->all_apps = u->all_apps;
    p->napps = u->napps;
    memcpy(p->apps, u->apps, u->napps * sizeof(uint32_t));
}

static const user_t *find_user(snapshot_t *s, const char *public_id)
{
    size_t lo = 0, hi = s->nusers;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->users[mid].public_id, public_id);
        if (c == 0) {
            return &s->users[mid];
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return NULL;
}

int umg_auth_user_principal(umg_auth_t *a, const char *user_public_id, umg_principal_t *p)
{
    int rc = UMG_ENOENT;
    pthread_rwlock_rdlock(&a->lock);
    const user_t *u = find_user(a->snap, user_public_id);
    if (u != NULL && !u->disabled) {
        principal_from_user(u, p);
        rc = UMG_OK;
    }
    pthread_rwlock_unlock(&a->lock);
    return rc;
}

static int fail(umg_authn_error_t *err, const char *code, const char *field, const char *message)
{
    err->code = code;
    err->field = field;
    err->message = message;
    return UMG_EAUTH;
}

static int auth_api_token(umg_auth_t *a, umg_slice_t tok, int64_t now_us, umg_principal_t *p, umg_authn_error_t *err)
{
    char hash[65];
    umg_meta_token_hash(tok.ptr, tok.len, hash);
    int rc = fail(err, "invalid_token", "Authorization", "the API token is unknown or revoked");
    pthread_rwlock_rdlock(&a->lock);
    snapshot_t *s = a->snap;
    size_t lo = 0, hi = s->ntokens;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        token_t *t = &s->tokens[mid];
        int c = strcmp(t->hash, hash);
        if (c == 0) {
            if (t->expires_us != 0 && t->expires_us <= now_us) {
                rc = fail(err, "token_expired", "Authorization", "the API token has expired");
                break;
            }
            memset(p, 0, sizeof(*p));
            p->kind = UMG_PRINCIPAL_TOKEN;
            p->org = t->org;
            p->role = t->role;
            snprintf(p->user_id, sizeof(p->user_id), "%s", t->creator);
            memcpy(p->org_public_id, t->org_public_id, sizeof(p->org_public_id));
            snprintf(p->id, sizeof(p->id), "%s", t->public_id);
            p->internal_id = t->id;
            p->perms = t->perms;
            p->all_apps = t->all_apps;
            p->napps = t->napps;
            memcpy(p->apps, t->apps, t->napps * sizeof(uint32_t));
            if (now_us - atomic_load_explicit(&t->last_used_us, memory_order_relaxed) > 1000000) {
                atomic_store_explicit(&t->last_used_us, now_us, memory_order_relaxed);
            }
            rc = UMG_OK;
            break;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    pthread_rwlock_unlock(&a->lock);
    return rc;
}

static int auth_jwt(umg_auth_t *a, umg_slice_t tok, int64_t now_us, umg_principal_t *p, umg_authn_error_t *err)
{
    umg_jwt_claims_t c;
    umg_jwt_err_t je = umg_jwt_verify(a->keys, tok, now_us / 1000000, &c);
    if (je == UMG_JWT_EXPIRED) {
        return fail(err, "token_expired", "Authorization", "the access token has expired; refresh it");
    }
    if (je != UMG_JWT_OK) {
        return fail(err, "invalid_token", "Authorization", "the access token is not valid");
    }
    int rc = fail(err, "invalid_token", "Authorization", "the access token is no longer valid; log in again");
    pthread_rwlock_rdlock(&a->lock);
    const user_t *u = find_user(a->snap, c.sub);
    if (u != NULL && !u->disabled && u->version == c.ver && strcmp(u->org_public_id, c.org) == 0) {
        principal_from_user(u, p);
        rc = UMG_OK;
    }
    pthread_rwlock_unlock(&a->lock);
    return rc;
}

int umg_auth_authenticate(umg_auth_t *a, const umg_credentials_t *c, int allow_key, int64_t now_us, umg_principal_t *p,
                          umg_authn_error_t *err)
{
    memset(err, 0, sizeof(*err));
    /* Every app credential sent must hold, whichever one decides: an unknown key beside a good secret, or a key
     * and a secret of two apps, are refused rather than one of them silently ignored. */
    umg_app_t by_key, by_secret;
    int has_key = c->app_key.len > 0, has_secret = c->app_secret.len > 0;
    if (has_key && umg_apps_find_key(a->apps, c->app_key, &by_key) != UMG_OK) {
        return fail(err, "unauthorized", "X-App-Key", "unknown app key");
    }
    if (has_secret && umg_apps_find_secret(a->apps, c->app_secret, &by_secret) != UMG_OK) {
        return fail(err, "unauthorized", "X-App-Secret", "unknown app secret");
    }
    if (has_key && has_secret && by_key.id != by_secret.id) {
        return fail(err, "unauthorized", "X-App-Key", "the app key and the app secret are of different apps");
    }
    if (c->authorization.len > 0) {
        umg_slice_t tok;
        if (umg_auth_bearer(c->authorization, &tok) != UMG_OK) {
            return fail(err, "unauthorized", "Authorization", "expected Authorization: Bearer <token>");
        }
        if (tok.len > 3 && memcmp(tok.ptr, "ut_", 3) == 0) {
            return auth_api_token(a, tok, now_us, p, err);
        }
        return auth_jwt(a, tok, now_us, p, err);
    }
    umg_app_t app;
    if (has_secret) {
        app = by_secret;
        memset(p, 0, sizeof(*p));
        p->kind = UMG_PRINCIPAL_APP_SECRET;
        p->perms = UMG_PERM_EVENTS_WRITE | UMG_PERM_TOUCHES_WRITE | UMG_PERM_EXPORT_RAW | UMG_PERM_REPORTS_READ;
    } else if (has_key) {
        if (!allow_key) {
            return fail(err, "unauthorized", "X-App-Secret",
                        "this endpoint needs the app secret (X-App-Secret) or a Bearer token, not the app key");
        }
        app = by_key;
        memset(p, 0, sizeof(*p));
        p->kind = UMG_PRINCIPAL_APP_KEY;
        p->perms = UMG_PERM_EVENTS_WRITE;
    } else {
        fail(err, "unauthorized", allow_key ? "X-App-Key" : "Authorization",
             allow_key ? "missing X-App-Key (or X-App-Secret) header"
                       : "missing Authorization: Bearer token (or X-App-Secret)");
        return UMG_ENOENT;
    }
    p->org = app.org;
    memcpy(p->org_public_id, app.org_public_id, sizeof(p->org_public_id));
    snprintf(p->id, sizeof(p->id), "%s", app.public_id);
    p->internal_id = app.id;
    p->app = app;
    return UMG_OK;
}
