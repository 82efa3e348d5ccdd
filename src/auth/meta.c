/*
 * meta.c - DATA/meta.db: schema migrations and the writes shared by the CLI
 * and the HTTP admin API (users, audit records, ids, token and password
 * hashing).
 */
#include "umg_meta.h"
#include "umg_privacy.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <unistd.h>

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

    /* 2: tenancy - users, tokens, invitations, key rotation, limits, audit */
    "ALTER TABLE apps ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';"
    "ALTER TABLE apps ADD COLUMN prev_app_key TEXT;"
    "ALTER TABLE apps ADD COLUMN prev_key_until_us INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE apps ADD COLUMN prev_app_secret TEXT;"
    "ALTER TABLE apps ADD COLUMN prev_secret_until_us INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE apps ADD COLUMN rate_eps REAL NOT NULL DEFAULT 0;"
    "ALTER TABLE apps ADD COLUMN rate_burst REAL NOT NULL DEFAULT 0;"
    "ALTER TABLE orgs ADD COLUMN monthly_quota INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE users ("
    "  id INTEGER PRIMARY KEY,"
    "  public_id TEXT NOT NULL UNIQUE,"
    "  org_id INTEGER NOT NULL REFERENCES orgs(id),"
    "  email TEXT NOT NULL UNIQUE COLLATE NOCASE,"
    "  role TEXT NOT NULL,"
    "  apps TEXT," /* NULL: every app of the org */
    "  password_hash TEXT NOT NULL,"
    "  token_version INTEGER NOT NULL DEFAULT 0,"
    "  disabled INTEGER NOT NULL DEFAULT 0,"
    "  created_us INTEGER NOT NULL,"
    "  last_login_us INTEGER);"
    "CREATE TABLE refresh_tokens ("
    "  id INTEGER PRIMARY KEY,"
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  family TEXT NOT NULL,"
    "  token_hash TEXT NOT NULL UNIQUE,"
    "  created_us INTEGER NOT NULL,"
    "  expires_us INTEGER NOT NULL,"
    "  used_us INTEGER,"
    "  revoked_us INTEGER);"
    "CREATE INDEX refresh_tokens_family ON refresh_tokens(family);"
    "CREATE TABLE api_tokens ("
    "  id INTEGER PRIMARY KEY,"
    "  public_id TEXT NOT NULL UNIQUE,"
    "  org_id INTEGER NOT NULL REFERENCES orgs(id),"
    "  created_by TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  token_hash TEXT NOT NULL UNIQUE,"
    "  perms INTEGER NOT NULL,"
    "  apps TEXT,"
    "  created_us INTEGER NOT NULL,"
    "  expires_us INTEGER NOT NULL DEFAULT 0,"
    "  last_used_us INTEGER NOT NULL DEFAULT 0,"
    "  revoked_us INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE invitations ("
    "  id INTEGER PRIMARY KEY,"
    "  public_id TEXT NOT NULL UNIQUE,"
    "  org_id INTEGER NOT NULL REFERENCES orgs(id),"
    "  email TEXT NOT NULL COLLATE NOCASE,"
    "  role TEXT NOT NULL,"
    "  apps TEXT,"
    "  token_hash TEXT NOT NULL UNIQUE,"
    "  created_by TEXT NOT NULL,"
    "  created_us INTEGER NOT NULL,"
    "  expires_us INTEGER NOT NULL,"
    "  accepted_us INTEGER NOT NULL DEFAULT 0,"
    "  revoked_us INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE org_usage ("
    "  org_id INTEGER NOT NULL REFERENCES orgs(id),"
    "  month INTEGER NOT NULL,"
    "  events INTEGER NOT NULL,"
    "  PRIMARY KEY (org_id, month));"
    "CREATE TABLE audit ("
    "  id INTEGER PRIMARY KEY,"
    "  ts_us INTEGER NOT NULL,"
    "  org_id INTEGER NOT NULL,"
    "  actor TEXT NOT NULL,"
    "  action TEXT NOT NULL,"
    "  target TEXT,"
    "  outcome TEXT NOT NULL,"
    "  ip TEXT,"
    "  request_id TEXT,"
    "  detail TEXT);"
    "CREATE INDEX audit_org_ts ON audit(org_id, ts_us);"
    "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
    "  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"
    "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
    "  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;",

    /* 3: privacy requests; forgotten identifiers are kept only as keyed hashes */
    "CREATE TABLE privacy_requests ("
    "  id INTEGER PRIMARY KEY,"
    "  public_id TEXT NOT NULL UNIQUE,"
    "  org_id INTEGER NOT NULL REFERENCES orgs(id),"
    "  app_id INTEGER NOT NULL REFERENCES apps(id),"
    "  requested_by TEXT NOT NULL,"
    "  identifiers INTEGER NOT NULL,"
    "  status TEXT NOT NULL DEFAULT 'pending',"
    "  created_us INTEGER NOT NULL,"
    "  completed_us INTEGER NOT NULL DEFAULT 0,"
    "  records_forgotten INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE privacy_forgotten ("
    "  request_id INTEGER NOT NULL REFERENCES privacy_requests(id),"
    "  app_id INTEGER NOT NULL,"
    "  id_hash BLOB NOT NULL,"
    "  before_us INTEGER NOT NULL);"
    "CREATE INDEX privacy_forgotten_request ON privacy_forgotten(request_id);",

    /* 4: ad spend and currency rates (src/cost, docs/costs.md); days are days since 1970-01-01 */
    "CREATE TABLE costs ("
    "  app_id INTEGER NOT NULL,"
    "  day INTEGER NOT NULL,"
    "  source TEXT NOT NULL,"
    "  campaign TEXT NOT NULL,"
    "  adset TEXT NOT NULL DEFAULT '',"
    "  ad TEXT NOT NULL DEFAULT '',"
    "  country TEXT NOT NULL DEFAULT '',"
    "  currency TEXT NOT NULL,"
    "  micros INTEGER NOT NULL,"
    "  updated_us INTEGER NOT NULL,"
    "  PRIMARY KEY (app_id, day, source, campaign, adset, ad, country)) WITHOUT ROWID;"
    "CREATE TABLE rates ("
    "  org_id INTEGER NOT NULL,"
    "  currency TEXT NOT NULL,"
    "  base TEXT NOT NULL,"
    "  day INTEGER NOT NULL,"
    "  rate REAL NOT NULL,"
    "  updated_us INTEGER NOT NULL,"
    "  PRIMARY KEY (org_id, currency, base, day)) WITHOUT ROWID;",

    /* 5: per-app fraud settings (src/fraud, docs/fraud.md): the members changed from the defaults, as JSON */
    "ALTER TABLE apps ADD COLUMN fraud TEXT NOT NULL DEFAULT '{}';",

    /* 6: a version per app that every write of its costs bumps, whoever writes (the report worker's cost cache) */
    "CREATE TABLE cost_versions (app_id INTEGER PRIMARY KEY, version INTEGER NOT NULL);"
    "CREATE TRIGGER costs_version_ins AFTER INSERT ON costs BEGIN"
    "  INSERT INTO cost_versions (app_id, version) VALUES (NEW.app_id, 1)"
    "  ON CONFLICT (app_id) DO UPDATE SET version = version + 1; END;"
    "CREATE TRIGGER costs_version_upd AFTER UPDATE ON costs BEGIN"
    "  INSERT INTO cost_versions (app_id, version) VALUES (NEW.app_id, 1)"
    "  ON CONFLICT (app_id) DO UPDATE SET version = version + 1;"
    "  INSERT INTO cost_versions (app_id, version) VALUES (OLD.app_id, 1)"
    "  ON CONFLICT (app_id) DO UPDATE SET version = version + 1; END;"
    "CREATE TRIGGER costs_version_del AFTER DELETE ON costs BEGIN"
    "  INSERT INTO cost_versions (app_id, version) VALUES (OLD.app_id, 1)"
    "  ON CONFLICT (app_id) DO UPDATE SET version = version + 1; END;",

    /* 7: a signing secret per app for signed SDK requests, apart from the app secret (which reads exports and
     * reports and must never ship inside an app). Apps from before sign with their app secret's value until
     * the signing secret is rotated, so their SDKs keep working (docs/fraud.md). */
    "ALTER TABLE apps ADD COLUMN signing_secret TEXT;"
    "ALTER TABLE apps ADD COLUMN prev_signing_secret TEXT;"
    "ALTER TABLE apps ADD COLUMN prev_signing_until_us INTEGER NOT NULL DEFAULT 0;"
    "UPDATE apps SET signing_secret = app_secret;",
};

int umg_meta_schema_version(void)
{
    return (int)UMG_ARRAY_SIZE(migrations);
}

int umg_meta_exists(const char *data_dir, const char *prog)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/meta.db", data_dir);
    if (access(path, F_OK) == 0) {
        return 1;
    }
    fprintf(stderr,
            "%s: %s holds no data directory (no meta.db); make one with 'unmogrowp admin app create' or "
            "'unmogrowp serve'\n",
            prog, data_dir);
    return 0;
}

int umg_meta_open(const char *data_dir, sqlite3 **out)
{
    char path[4096];
    if (umg_mkdirs(data_dir, 0755) != UMG_OK) {
        return UMG_EIO;
    }
    snprintf(path, sizeof(path), "%s/meta.db", data_dir);
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        umg_log(UMG_LOG_ERROR, "meta", "cannot open %s: %s", path, db ? sqlite3_errmsg(db) : "no memory");
        sqlite3_close(db);
        return UMG_EIO;
    }
    sqlite3_busy_timeout(db, 5000);
    sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;", NULL, NULL, NULL);
    /* Migrate inside one write transaction so two processes never race. */
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        goto fail;
    }
    sqlite3_stmt *st = NULL;
    int version = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        version = sqlite3_column_int(st, 0);
    }
    sqlite3_finalize(st);
    if (version > umg_meta_schema_version()) {
        umg_log(UMG_LOG_ERROR, "meta", "%s has schema version %d, newer than this build knows (%d)", path, version,
                umg_meta_schema_version());
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        goto fail;
    }
    for (int v = version; v < umg_meta_schema_version(); v++) {
        char *err = NULL;
        char pragma[64];
        snprintf(pragma, sizeof(pragma), "PRAGMA user_version=%d", v + 1);
        if (sqlite3_exec(db, migrations[v], NULL, NULL, &err) != SQLITE_OK ||
            sqlite3_exec(db, pragma, NULL, NULL, &err) != SQLITE_OK) {
            umg_log(UMG_LOG_ERROR, "meta", "migration %d failed: %s", v + 1, err ? err : "?");
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
    return UMG_EIO;
}

int64_t umg_meta_data_version(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, "PRAGMA data_version", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return v;
}

void umg_meta_random_id(char *out, const char *prefix, size_t nbytes)
{
    uint8_t raw[64];
    nbytes = UMG_MIN(nbytes, sizeof(raw));
    umg_random_bytes(raw, nbytes);
    size_t p = strlen(prefix);
    memcpy(out, prefix, p);
    umg_hex_encode(raw, nbytes, out + p);
}

void umg_meta_token_hash(const char *s, size_t len, char out[65])
{
    uint8_t h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)s, len);
    umg_hex_encode(h, sizeof(h), out);
}

int umg_meta_password_hash(const char *password, size_t len, char out[128])
{
    if (len < 8 || len > 1024) {
        return UMG_EINVAL;
    }
    if (sodium_init() < 0) {
        return UMG_EIO;
    }
    if (crypto_pwhash_str_alg(out, password, len, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13) != 0) {
        return UMG_ENOMEM;
    }
    return UMG_OK;
}

int umg_meta_password_check(const char *hash, const char *password, size_t len)
{
    if (hash == NULL || len > 1024 || sodium_init() < 0) {
        return 0;
    }
    return crypto_pwhash_str_verify(hash, password, len) == 0;
}

int umg_meta_valid_email(const char *s, size_t len)
{
    if (len < 3 || len > 254) {
        return 0;
    }
    size_t at = len, ats = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7f || c == ',' || c == '"' || c == '<' || c == '>' || c == '\\') {
            return 0;
        }
        if (c == '@') {
            at = i;
            ats++;
        }
    }
    return ats == 1 && at > 0 && at + 1 < len;
}

int64_t umg_meta_org_by_name(sqlite3 *db, const char *name, int create, char *public_id, size_t cap)
{
    sqlite3_stmt *st = NULL;
    int64_t id = -1;
    if (sqlite3_prepare_v2(db, "SELECT id, public_id FROM orgs WHERE name = ?", -1, &st, NULL) != SQLITE_OK) {
        return -1;
    }
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        id = sqlite3_column_int64(st, 0);
        snprintf(public_id, cap, "%s", (const char *)sqlite3_column_text(st, 1));
    }
    sqlite3_finalize(st);
    if (id >= 0 || !create) {
        return id;
    }
    char pid[40];
    umg_meta_random_id(pid, "org_", 8);
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

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int umg_meta_check_apps(sqlite3 *db, int64_t org_id, const char *apps, size_t len, umg_buf_t *norm, char *msg,
                        size_t msglen)
{
    char *copy = umg_strndup(apps, len);
    char *ids[UMG_PRINCIPAL_MAX_APPS];
    size_t n = 0;
    int rc = UMG_OK;
    sqlite3_stmt *st = NULL;
    if (copy == NULL) {
        return UMG_ENOMEM;
    }
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        if (n == UMG_PRINCIPAL_MAX_APPS) {
            snprintf(msg, msglen, "at most %d apps", UMG_PRINCIPAL_MAX_APPS);
            rc = UMG_EINVAL;
            goto done;
        }
        ids[n++] = tok;
    }
    if (n == 0) {
        snprintf(msg, msglen, "name at least one app, or leave apps out for all apps");
        rc = UMG_EINVAL;
        goto done;
    }
    qsort(ids, n, sizeof(ids[0]), cmp_str);
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM apps WHERE public_id = ? AND org_id = ?", -1, &st, NULL) != SQLITE_OK) {
        rc = UMG_EIO;
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && strcmp(ids[i], ids[i - 1]) == 0) {
            snprintf(msg, msglen, "app listed twice");
            rc = UMG_EINVAL;
            goto done;
        }
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, ids[i], -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, org_id);
        if (strlen(ids[i]) > 32 || sqlite3_step(st) != SQLITE_ROW) {
            snprintf(msg, msglen, "not an app of this organization");
            rc = UMG_EINVAL;
            goto done;
        }
        rc = i ? umg_buf_putc(norm, ',') : UMG_OK;
        rc = rc ? rc : umg_buf_append(norm, ids[i], strlen(ids[i]));
        if (rc != UMG_OK) {
            goto done;
        }
    }
done:
    sqlite3_finalize(st);
    umg_free(copy);
    return rc;
}

int umg_meta_user_create(sqlite3 *db, const umg_meta_user_t *u, umg_buf_t *out, const char **field, char *msg,
                         size_t msglen)
{
    *field = NULL;
    if (u->email == NULL || !umg_meta_valid_email(u->email, strlen(u->email))) {
        *field = "email";
        snprintf(msg, msglen, "not an e-mail address");
        return UMG_EINVAL;
    }
    if (u->role == UMG_ROLE_NONE) {
        *field = "role";
        snprintf(msg, msglen, "role must be owner, admin, analyst, marketer or viewer");
        return UMG_EINVAL;
    }
    umg_buf_t apps = {0};
    if (u->apps != NULL) {
        int rc = umg_meta_check_apps(db, u->org_id, u->apps, strlen(u->apps), &apps, msg, msglen);
        if (rc != UMG_OK) {
            *field = "apps";
            umg_buf_free(&apps);
            return rc;
        }
    }
    char hash[128];
    int rc = umg_meta_password_hash(u->password, u->password_len, hash);
    if (rc != UMG_OK) {
        *field = "password";
        snprintf(msg, msglen, rc == UMG_EINVAL ? "the password must be 8 to 1024 bytes" : "cannot hash the password");
        umg_buf_free(&apps);
        return rc;
    }
    char pid[40];
    umg_meta_random_id(pid, "usr_", 8);
    sqlite3_stmt *st = NULL;
    rc = UMG_EIO;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO users (public_id, org_id, email, role, apps, password_hash, created_us)"
                           " VALUES (?, ?, ?, ?, ?, ?, ?)",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, pid, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, u->org_id);
        sqlite3_bind_text(st, 3, u->email, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, umg_role_name(u->role), -1, SQLITE_STATIC);
        if (u->apps != NULL) {
            sqlite3_bind_text(st, 5, apps.ptr, (int)apps.len, SQLITE_STATIC);
        } else {
            sqlite3_bind_null(st, 5);
        }
        sqlite3_bind_text(st, 6, hash, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 7, umg_now_us());
        int step = sqlite3_step(st);
        if (step == SQLITE_DONE) {
            rc = UMG_OK;
        } else if (sqlite3_extended_errcode(db) == SQLITE_CONSTRAINT_UNIQUE) {
            *field = "email";
            snprintf(msg, msglen, "a user with this e-mail address already exists");
            rc = UMG_EEXIST;
        } else {
            snprintf(msg, msglen, "%s", sqlite3_errmsg(db));
        }
    }
    sqlite3_finalize(st);
    sodium_memzero(hash, sizeof(hash));
    if (rc == UMG_OK) {
        char org_pid[40] = "";
        if (sqlite3_prepare_v2(db, "SELECT public_id FROM orgs WHERE id = ?", -1, &st, NULL) == SQLITE_OK) {
            sqlite3_bind_int64(st, 1, u->org_id);
            if (sqlite3_step(st) == SQLITE_ROW) {
                snprintf(org_pid, sizeof(org_pid), "%s", (const char *)sqlite3_column_text(st, 0));
            }
        }
        sqlite3_finalize(st);
        rc = umg_buf_printf(out, "{\"user_id\":\"%s\",\"org_id\":\"%s\",\"email\":", pid, org_pid);
        rc = rc ? rc : umg_buf_json_str(out, u->email, strlen(u->email));
        rc = rc ? rc : umg_buf_printf(out, ",\"role\":\"%s\",\"apps\":", umg_role_name(u->role));
        if (u->apps == NULL) {
            rc = rc ? rc : umg_buf_append(out, "\"all\"}", 6);
        } else {
            rc = rc ? rc : umg_buf_putc(out, '[');
            for (size_t i = 0, start = 0; rc == UMG_OK && i <= apps.len; i++) {
                if (i == apps.len || apps.ptr[i] == ',') {
                    rc = umg_buf_append(out, start ? ",\"" : "\"", start ? 2 : 1);
                    rc = rc ? rc : umg_buf_append(out, apps.ptr + start, i - start);
                    rc = rc ? rc : umg_buf_putc(out, '"');
                    start = i + 1;
                }
            }
            rc = rc ? rc : umg_buf_append(out, "]}", 2);
        }
    }
    umg_buf_free(&apps);
    return rc;
}

int umg_meta_audit(sqlite3 *db, const umg_audit_t *a)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO audit (ts_us, org_id, actor, action, target, outcome, ip, request_id, detail)"
                           " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK) {
        return UMG_EIO;
    }
    sqlite3_bind_int64(st, 1, umg_now_us());
    sqlite3_bind_int64(st, 2, a->org_id);
    sqlite3_bind_text(st, 3, a->actor ? a->actor : "anonymous", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, a->action, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, a->target, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, a->outcome ? a->outcome : "ok", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, a->ip, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, a->request_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, a->detail, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE ? UMG_OK : UMG_EIO;
    if (rc != UMG_OK) {
        umg_log(UMG_LOG_ERROR, "audit", "cannot append to the audit log: %s", sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    return rc;
}

int umg_meta_privacy_key(const char *data_dir, uint8_t key[32])
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/privacy.key", data_dir);
    for (int attempt = 0; attempt < 2; attempt++) {
        FILE *f = fopen(path, "re");
        if (f != NULL) {
            char hex[80] = "";
            size_t n = fread(hex, 1, sizeof(hex) - 1, f);
            fclose(f);
            if (n < 64) {
                umg_log(UMG_LOG_ERROR, "privacy", "%s is damaged (64 hex digits expected)", path);
                return UMG_ECORRUPT;
            }
            for (int i = 0; i < 32; i++) {
                int hi = umg_hexval(hex[2 * i]), lo = umg_hexval(hex[2 * i + 1]);
                if (hi < 0 || lo < 0) {
                    umg_log(UMG_LOG_ERROR, "privacy", "%s is damaged (64 hex digits expected)", path);
                    return UMG_ECORRUPT;
                }
                key[i] = (uint8_t)(hi * 16 + lo);
            }
            return UMG_OK;
        }
        /* First use: make it, once, even with the CLI and the daemon racing. */
        char hex[80];
        umg_meta_random_id(hex, "", 32);
        strcat(hex, "\n");
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0) {
            int rc = umg_write_all(fd, hex, strlen(hex));
            rc = rc ? rc : (fsync(fd) == 0 ? UMG_OK : UMG_EIO);
            close(fd);
            if (rc != UMG_OK) {
                unlink(path);
                return rc;
            }
        } else if (errno != EEXIST) {
            return UMG_EIO;
        }
    }
    return UMG_EIO;
}

int umg_meta_forget_create(sqlite3 *db, const uint8_t key[32], int64_t org_id, int64_t app_id, const char *requested_by,
                           const umg_meta_id_t *ids, size_t n, umg_buf_t *out, char *msg, size_t msglen)
{
    if (n == 0 || n > 1000) {
        snprintf(msg, msglen, "name 1 to 1000 identifiers");
        return UMG_EINVAL;
    }
    int64_t now = umg_now_us();
    char pid[40];
    umg_meta_random_id(pid, "prv_", 8);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO privacy_requests (public_id, org_id, app_id, requested_by, identifiers,"
                           " created_us) VALUES (?, ?, ?, ?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK) {
        return UMG_EIO;
    }
    sqlite3_bind_text(st, 1, pid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, org_id);
    sqlite3_bind_int64(st, 3, app_id);
    sqlite3_bind_text(st, 4, requested_by, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, (int64_t)n);
    sqlite3_bind_int64(st, 6, now);
    int rc = sqlite3_step(st) == SQLITE_DONE ? UMG_OK : UMG_EIO;
    sqlite3_finalize(st);
    int64_t rid = sqlite3_last_insert_rowid(db);
    if (rc == UMG_OK && sqlite3_prepare_v2(db,
                                           "INSERT INTO privacy_forgotten (request_id, app_id, id_hash, before_us)"
                                           " VALUES (?, ?, ?, ?)",
                                           -1, &st, NULL) != SQLITE_OK) {
        rc = UMG_EIO;
    }
    for (size_t i = 0; rc == UMG_OK && i < n; i++) {
        uint8_t h[UMG_PRIVACY_HASH_BYTES];
        if (umg_privacy_hash_id(key, ids[i].kind, umg_slice(ids[i].value, strlen(ids[i].value)), h) != UMG_OK) {
            snprintf(msg, msglen, "identifier %zu: unknown kind or empty value", i);
            rc = UMG_EINVAL;
            break;
        }
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, rid);
        sqlite3_bind_int64(st, 2, app_id);
        sqlite3_bind_blob(st, 3, h, sizeof(h), SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 4, now);
        rc = sqlite3_step(st) == SQLITE_DONE ? UMG_OK : UMG_EIO;
    }
    sqlite3_finalize(st);
    if (rc == UMG_OK) {
        char t[32];
        umg_time_format_rfc3339(now, t);
        rc = umg_buf_printf(
            out, "{\"request_id\":\"%s\",\"status\":\"pending\",\"identifiers\":%zu,\"created_at\":\"%s\"}", pid, n, t);
    }
    return rc;
}
