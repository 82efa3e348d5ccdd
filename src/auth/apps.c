/*
 * apps.c - organizations and apps in DATA/meta.db, and the registry of app
 * keys the ingest path authenticates against.
 *
 * The schema carries a version (PRAGMA user_version) and migrations run in
 * order on open. The registry is an immutable snapshot (three sorted arrays:
 * by key, by secret, by public id) behind a read-write lock; a refresh builds
 * a new snapshot and swaps it in, so lookups never wait on SQLite.
 */
#include "umg_apps.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>

typedef struct entry_s {
    umg_app_t app;
    char *key, *secret;
} entry_t;

typedef struct snapshot_s {
    entry_t *entries;
    size_t n;
    entry_t **by_key, **by_secret, **by_id;
} snapshot_t;

struct umg_apps_s {
    sqlite3 *db;
    pthread_rwlock_t lock;
    snapshot_t *snap;
    int64_t data_version;
};

static const char *const migrations[] = {
    /* 1: organizations and apps */
    "CREATE TABLE orgs ("
    "  id INTEGER PRIMARY KEY,"
    "  public_id TEXT NOT NULL UNIQUE,"
    "  name TEXT NOT NULL UNIQUE,"
    "  created_us INTEGER NOT NULL);"
    "CREATE TABLE apps ("
    "  id INTEGER PRIMARY KEY,"
    "  public_id TEXT NOT NULL UNIQUE,"
    "  org_id INTEGER NOT NULL REFERENCES orgs(id),"
    "  name TEXT NOT NULL,"
    "  platform TEXT NOT NULL,"
    "  store_url TEXT,"
    "  app_key TEXT NOT NULL UNIQUE,"
    "  app_secret TEXT NOT NULL UNIQUE,"
    "  created_us INTEGER NOT NULL,"
    "  UNIQUE (org_id, name));",
};

static int db_open(const char *data_dir, sqlite3 **out)
{
    char path[4096];
    if (umg_mkdirs(data_dir, 0755) != UMG_OK) {
        return UMG_EIO;
    }
    snprintf(path, sizeof(path), "%s/meta.db", data_dir);
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        umg_log(UMG_LOG_ERROR, "apps", "cannot open %s: %s", path, db ? sqlite3_errmsg(db) : "no memory");
        sqlite3_close(db);
        return UMG_EIO;
    }
    sqlite3_busy_timeout(db, 5000);
    sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;", NULL, NULL, NULL);
    /* Migrate inside one write transaction so two processes never race. */
    int rc = UMG_EIO;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        goto fail;
    }
    sqlite3_stmt *st = NULL;
    int version = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        version = sqlite3_column_int(st, 0);
    }
    sqlite3_finalize(st);
    if (version > (int)UMG_ARRAY_SIZE(migrations)) {
        umg_log(UMG_LOG_ERROR, "apps", "%s has schema version %d, newer than this build knows (%d)", path, version,
                (int)UMG_ARRAY_SIZE(migrations));
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        goto fail;
    }
    for (int v = version; v < (int)UMG_ARRAY_SIZE(migrations); v++) {
        char *err = NULL;
        char pragma[64];
        snprintf(pragma, sizeof(pragma), "PRAGMA user_version=%d", v + 1);
        if (sqlite3_exec(db, migrations[v], NULL, NULL, &err) != SQLITE_OK ||
            sqlite3_exec(db, pragma, NULL, NULL, &err) != SQLITE_OK) {
            umg_log(UMG_LOG_ERROR, "apps", "migration %d failed: %s", v + 1, err ? err : "?");
            sqlite3_free(err);
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            goto fail;
        }
    }
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        goto fail;
    }
    *out = db;
    return UMG_OK;
fail:
    sqlite3_close(db);
    return rc;
}

/* ---------------------------------------------------------------- snapshot */

static void snapshot_free(snapshot_t *s)
{
    if (s == NULL) {
        return;
    }
    for (size_t i = 0; i < s->n; i++) {
        umg_free(s->entries[i].key);
        umg_free(s->entries[i].secret);
    }
    umg_free(s->entries);
    umg_free(s->by_key);
    umg_free(s->by_secret);
    umg_free(s->by_id);
    umg_free(s);
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp((*(entry_t *const *)a)->key, (*(entry_t *const *)b)->key);
}
static int cmp_secret(const void *a, const void *b)
{
    return strcmp((*(entry_t *const *)a)->secret, (*(entry_t *const *)b)->secret);
}
static int cmp_id(const void *a, const void *b)
{
    return strcmp((*(entry_t *const *)a)->app.public_id, (*(entry_t *const *)b)->app.public_id);
}

static void copy_text(char *dst, size_t cap, const unsigned char *src)
{
    snprintf(dst, cap, "%s", src ? (const char *)src : "");
}

static int snapshot_load(sqlite3 *db, snapshot_t **out)
{
    sqlite3_stmt *st = NULL;
    snapshot_t *s = umg_calloc(1, sizeof(*s));
    size_t cap = 0;
    int rc = UMG_ENOMEM;
    if (s == NULL) {
        return UMG_ENOMEM;
    }
    if (sqlite3_prepare_v2(db,
                           "SELECT a.id, a.org_id, a.public_id, o.public_id, a.platform, a.app_key, a.app_secret"
                           " FROM apps a JOIN orgs o ON o.id = a.org_id",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = UMG_EIO;
        goto fail;
    }
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (s->n == cap) {
            cap = cap ? cap * 2 : 64;
            entry_t *ne = umg_realloc(s->entries, cap * sizeof(*ne));
            if (ne == NULL) {
                goto fail;
            }
            s->entries = ne;
        }
        entry_t *e = &s->entries[s->n];
        memset(e, 0, sizeof(*e));
        e->app.id = (uint32_t)sqlite3_column_int64(st, 0);
        e->app.org = (uint32_t)sqlite3_column_int64(st, 1);
        copy_text(e->app.public_id, sizeof(e->app.public_id), sqlite3_column_text(st, 2));
        copy_text(e->app.org_public_id, sizeof(e->app.org_public_id), sqlite3_column_text(st, 3));
        copy_text(e->app.platform, sizeof(e->app.platform), sqlite3_column_text(st, 4));
        const char *k = (const char *)sqlite3_column_text(st, 5), *sec = (const char *)sqlite3_column_text(st, 6);
        e->key = umg_strndup(k ? k : "", k ? strlen(k) : 0);
        e->secret = umg_strndup(sec ? sec : "", sec ? strlen(sec) : 0);
        s->n++;
        if (e->key == NULL || e->secret == NULL) {
            goto fail;
        }
    }
    if (step != SQLITE_DONE) {
        rc = UMG_EIO;
        goto fail;
    }
    size_t n = s->n ? s->n : 1;
    s->by_key = umg_malloc(n * sizeof(entry_t *));
    s->by_secret = umg_malloc(n * sizeof(entry_t *));
    s->by_id = umg_malloc(n * sizeof(entry_t *));
    if (s->by_key == NULL || s->by_secret == NULL || s->by_id == NULL) {
        goto fail;
    }
    for (size_t i = 0; i < s->n; i++) {
        s->by_key[i] = s->by_secret[i] = s->by_id[i] = &s->entries[i];
    }
    qsort(s->by_key, s->n, sizeof(entry_t *), cmp_key);
    qsort(s->by_secret, s->n, sizeof(entry_t *), cmp_secret);
    qsort(s->by_id, s->n, sizeof(entry_t *), cmp_id);
    sqlite3_finalize(st);
    *out = s;
    return UMG_OK;
fail:
    sqlite3_finalize(st);
    snapshot_free(s);
    return rc;
}

static int64_t data_version(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, "PRAGMA data_version", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return v;
}

int umg_apps_open(const char *data_dir, umg_apps_t **out)
{
    umg_apps_t *a = umg_calloc(1, sizeof(*a));
    if (a == NULL) {
        return UMG_ENOMEM;
    }
    pthread_rwlock_init(&a->lock, NULL);
    int rc = db_open(data_dir, &a->db);
    if (rc == UMG_OK) {
        a->data_version = data_version(a->db);
        rc = snapshot_load(a->db, &a->snap);
    }
    if (rc != UMG_OK) {
        umg_apps_close(a);
        return rc;
    }
    *out = a;
    return UMG_OK;
}

void umg_apps_close(umg_apps_t *a)
{
    if (a == NULL) {
        return;
    }
    snapshot_free(a->snap);
    sqlite3_close(a->db);
    pthread_rwlock_destroy(&a->lock);
    umg_free(a);
}

int umg_apps_refresh(umg_apps_t *a)
{
    int64_t v = data_version(a->db);
    if (v == a->data_version) {
        return UMG_OK;
    }
    snapshot_t *s = NULL;
    int rc = snapshot_load(a->db, &s);
    if (rc != UMG_OK) {
        return rc;
    }
    pthread_rwlock_wrlock(&a->lock);
    snapshot_t *old = a->snap;
    a->snap = s;
    pthread_rwlock_unlock(&a->lock);
    snapshot_free(old);
    a->data_version = v;
    umg_log(UMG_LOG_INFO, "apps", "app registry reloaded: %zu apps", s->n);
    return UMG_OK;
}

/* Binary search over one sorted view (keys and secrets are 128 and 256 random bits). */
static int find(umg_apps_t *a, umg_slice_t needle, entry_t **view_of(snapshot_t *), const char *(*field)(entry_t *),
                umg_app_t *out)
{
    if (needle.len == 0 || needle.len > 128) {
        return UMG_ENOENT;
    }
    int rc = UMG_ENOENT;
    pthread_rwlock_rdlock(&a->lock);
    snapshot_t *s = a->snap;
    entry_t **view = view_of(s);
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *f = field(view[mid]);
        size_t fl = strlen(f);
        int c = memcmp(f, needle.ptr, UMG_MIN(fl, needle.len));
        if (c == 0) {
            c = fl < needle.len ? -1 : fl > needle.len;
        }
        if (c == 0) {
            *out = view[mid]->app;
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

static entry_t **view_key(snapshot_t *s)
{
    return s->by_key;
}
static entry_t **view_secret(snapshot_t *s)
{
    return s->by_secret;
}
static entry_t **view_id(snapshot_t *s)
{
    return s->by_id;
}
static const char *field_key(entry_t *e)
{
    return e->key;
}
static const char *field_secret(entry_t *e)
{
    return e->secret;
}
static const char *field_id(entry_t *e)
{
    return e->app.public_id;
}

int umg_apps_find_key(umg_apps_t *a, umg_slice_t k, umg_app_t *out)
{
    return find(a, k, view_key, field_key, out);
}
int umg_apps_find_secret(umg_apps_t *a, umg_slice_t k, umg_app_t *out)
{
    return find(a, k, view_secret, field_secret, out);
}
int umg_apps_find_id(umg_apps_t *a, umg_slice_t k, umg_app_t *out)
{
    return find(a, k, view_id, field_id, out);
}

size_t umg_apps_count(umg_apps_t *a)
{
    pthread_rwlock_rdlock(&a->lock);
    size_t n = a->snap->n;
    pthread_rwlock_unlock(&a->lock);
    return n;
}

/* ---------------------------------------------------------------- writes (CLI) */

static void random_token(char *out, const char *prefix, size_t nbytes)
{
    uint8_t raw[64];
    umg_random_bytes(raw, nbytes);
    size_t p = strlen(prefix);
    memcpy(out, prefix, p);
    for (size_t i = 0; i < nbytes; i++) {
        static const char hex[] = "0123456789abcdef";
        out[p + 2 * i] = hex[raw[i] >> 4];
        out[p + 2 * i + 1] = hex[raw[i] & 15];
    }
    out[p + 2 * nbytes] = '\0';
}

static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            return 0;
        }
    }
    return 1;
}

static int64_t org_find_or_create(sqlite3 *db, const char *name, char *public_id, size_t cap)
{
    sqlite3_stmt *st = NULL;
    int64_t id = -1;
    if (sqlite3_prepare_v2(db, "SELECT id, public_id FROM orgs WHERE name = ?", -1, &st, NULL) != SQLITE_OK) {
        return -1;
    }
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        id = sqlite3_column_int64(st, 0);
        copy_text(public_id, cap, sqlite3_column_text(st, 1));
        sqlite3_finalize(st);
        return id;
    }
    sqlite3_finalize(st);
    char pid[40];
    random_token(pid, "org_", 8);
    if (sqlite3_prepare_v2(db, "INSERT INTO orgs (public_id, name, created_us) VALUES (?, ?, ?)", -1, &st, NULL) !=
        SQLITE_OK) {
        return -1;
    }
    sqlite3_bind_text(st, 1, pid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, umg_now_us());
    if (sqlite3_step(st) == SQLITE_DONE) {
        id = sqlite3_last_insert_rowid(db);
        snprintf(public_id, cap, "%s", pid);
    }
    sqlite3_finalize(st);
    return id;
}

int umg_apps_create(const char *data_dir, const umg_app_spec_t *spec, umg_buf_t *out, char *msg, size_t msglen)
{
    if (spec->org == NULL || !valid_name(spec->org)) {
        snprintf(msg, msglen, "--org must be 1 to 128 printable characters");
        return UMG_EINVAL;
    }
    if (spec->name == NULL || !valid_name(spec->name)) {
        snprintf(msg, msglen, "--name must be 1 to 128 printable characters");
        return UMG_EINVAL;
    }
    if (spec->platform == NULL ||
        (strcmp(spec->platform, "android") && strcmp(spec->platform, "ios") && strcmp(spec->platform, "web"))) {
        snprintf(msg, msglen, "--platform must be android, ios or web");
        return UMG_EINVAL;
    }
    if (spec->store_url != NULL && (strlen(spec->store_url) > 2048 || (strncmp(spec->store_url, "https://", 8) &&
                                                                       strncmp(spec->store_url, "http://", 7)))) {
        snprintf(msg, msglen, "--store-url must be an http(s) URL of at most 2048 bytes");
        return UMG_EINVAL;
    }
    sqlite3 *db = NULL;
    int rc = db_open(data_dir, &db);
    if (rc != UMG_OK) {
        snprintf(msg, msglen, "cannot open the database in %s", data_dir);
        return rc;
    }
    sqlite3_stmt *st = NULL;
    char org_pid[40], app_pid[40], key[80], secret[80];
    rc = UMG_EIO;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(msg, msglen, "database busy: %s", sqlite3_errmsg(db));
        goto done;
    }
    int64_t org = org_find_or_create(db, spec->org, org_pid, sizeof(org_pid));
    if (org < 0) {
        snprintf(msg, msglen, "cannot create the organization: %s", sqlite3_errmsg(db));
        goto rollback;
    }
    random_token(app_pid, "app_", 8);
    random_token(key, "ak_", 16);
    random_token(secret, "as_", 32);
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO apps (public_id, org_id, name, platform, store_url, app_key, app_secret,"
                           " created_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK) {
        snprintf(msg, msglen, "%s", sqlite3_errmsg(db));
        goto rollback;
    }
    sqlite3_bind_text(st, 1, app_pid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, org);
    sqlite3_bind_text(st, 3, spec->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, spec->platform, -1, SQLITE_STATIC);
    if (spec->store_url != NULL) {
        sqlite3_bind_text(st, 5, spec->store_url, -1, SQLITE_STATIC);
    } else {
        sqlite3_bind_null(st, 5);
    }
    sqlite3_bind_text(st, 6, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, secret, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, umg_now_us());
    int step = sqlite3_step(st);
    if (step != SQLITE_DONE) {
        if (sqlite3_extended_errcode(db) == SQLITE_CONSTRAINT_UNIQUE) {
            snprintf(msg, msglen, "organization '%s' already has an app named '%s'", spec->org, spec->name);
            rc = UMG_EEXIST;
        } else {
            snprintf(msg, msglen, "%s", sqlite3_errmsg(db));
        }
        goto rollback;
    }
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(msg, msglen, "%s", sqlite3_errmsg(db));
        goto rollback;
    }
    rc = umg_buf_printf(out, "{\"org_id\":\"%s\",\"org\":", org_pid);
    rc = rc ? rc : umg_buf_json_str(out, spec->org, strlen(spec->org));
    rc = rc ? rc : umg_buf_printf(out, ",\"app_id\":\"%s\",\"name\":", app_pid);
    rc = rc ? rc : umg_buf_json_str(out, spec->name, strlen(spec->name));
    rc = rc ? rc
            : umg_buf_printf(out, ",\"platform\":\"%s\",\"app_key\":\"%s\",\"app_secret\":\"%s\"}", spec->platform, key,
                             secret);
    goto done;
rollback:
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
done:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

int umg_apps_list(const char *data_dir, umg_buf_t *out)
{
    sqlite3 *db = NULL;
    int rc = db_open(data_dir, &db);
    if (rc != UMG_OK) {
        return rc;
    }
    sqlite3_stmt *st = NULL;
    rc = UMG_EIO;
    if (sqlite3_prepare_v2(db,
                           "SELECT o.public_id, o.name, a.public_id, a.name, a.platform, a.app_key, a.app_secret"
                           " FROM apps a JOIN orgs o ON o.id = a.org_id ORDER BY a.id",
                           -1, &st, NULL) != SQLITE_OK) {
        goto done;
    }
    rc = umg_buf_putc(out, '[');
    int first = 1;
    while (rc == UMG_OK && sqlite3_step(st) == SQLITE_ROW) {
        const char *f[7];
        for (int i = 0; i < 7; i++) {
            f[i] = (const char *)sqlite3_column_text(st, i);
            f[i] = f[i] ? f[i] : "";
        }
        static const char *const names[] = {"org_id", "org", "app_id", "name", "platform", "app_key", "app_secret"};
        rc = umg_buf_append(out, first ? "{" : ",{", first ? 1 : 2);
        for (int i = 0; i < 7 && rc == UMG_OK; i++) {
            rc = umg_buf_printf(out, "%s\"%s\":", i ? "," : "", names[i]);
            rc = rc ? rc : umg_buf_json_str(out, f[i], strlen(f[i]));
        }
        rc = rc ? rc : umg_buf_putc(out, '}');
        first = 0;
    }
    rc = rc ? rc : umg_buf_putc(out, ']');
done:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}
