/*
 * umg_meta.h - DATA/meta.db: the SQLite database of organizations, apps,
 * users, tokens, invitations, limits and the audit log.
 *
 * The schema carries a version (PRAGMA user_version); migrations run in order
 * inside one write transaction when any process opens the database, so the
 * CLI and the daemon can both open it at any time. The helpers here are the
 * writes both the CLI and the HTTP admin API make.
 */
#ifndef UMG_META_H
#define UMG_META_H

#include "umg_auth.h"

#include <sqlite3.h>

/** Opens (creating and migrating) DATA/meta.db. */
int umg_meta_open(const char *data_dir, sqlite3 **out);
/**
 * For commands that look something up in DATA (they must not create it when --data names nothing): 1 when
 * DATA/meta.db exists; else 0, with "PROG: DATA holds no data directory ..." on stderr.
 */
int umg_meta_exists(const char *data_dir, const char *prog);
/** SQLite's data_version: changes when another connection committed (the registries reload then). */
int64_t umg_meta_data_version(sqlite3 *db);
/** Schema version this build writes. */
int umg_meta_schema_version(void);

/** "PREFIX" + 2*nbytes lowercase hex + NUL into out (room for at most 64 random bytes). */
void umg_meta_random_id(char *out, const char *prefix, size_t nbytes);
/** Lowercase hex SHA-256 of s (65 bytes with the NUL) - how tokens are stored. */
void umg_meta_token_hash(const char *s, size_t len, char out[65]);

/** argon2id (libsodium crypto_pwhash_str_alg, moderate cost). UMG_EINVAL for a password under 8 or over 1024 bytes. */
int umg_meta_password_hash(const char *password, size_t len, char out[128]);
/** 1 when password matches the stored hash. */
int umg_meta_password_check(const char *hash, const char *password, size_t len);

/** 1 for an e-mail address we accept: 3..254 bytes, one '@', printable, no spaces. */
int umg_meta_valid_email(const char *s, size_t len);

/** Finds an organization by name, creating it when create is set. Returns its id or -1. */
int64_t umg_meta_org_by_name(sqlite3 *db, const char *name, int create, char *public_id, size_t cap);

/* A user about to be created (the CLI, an accepted invitation, the API). */
typedef struct umg_meta_user_s {
    int64_t org_id;
    const char *email;
    const char *password;
    size_t password_len;
    umg_role_t role;
    const char *apps; /* NULL: all apps; else comma-separated app public ids of the org */
} umg_meta_user_t;

/**
 * Inserts a user (in the caller's transaction) and appends
 * {"user_id","org_id","email","role","apps"} to out. UMG_EEXIST when the
 * e-mail is taken, UMG_EINVAL (msg and *field say which) for bad input.
 */
int umg_meta_user_create(sqlite3 *db, const umg_meta_user_t *u, umg_buf_t *out, const char **field, char *msg,
                         size_t msglen);

/**
 * Checks an app list ("app_a,app_b") against the organization: every id
 * must be an app of org_id, at most UMG_PRINCIPAL_MAX_APPS, no duplicates.
 * Writes the normalised list (sorted, comma-separated) to norm.
 */
int umg_meta_check_apps(sqlite3 *db, int64_t org_id, const char *apps, size_t len, umg_buf_t *norm, char *msg,
                        size_t msglen);

/* One audit record. actor: "usr_..", "tok_..", "app_..", "cli" or "anonymous". */
typedef struct umg_audit_s {
    int64_t org_id; /* 0 when unknown (a failed login for an unknown e-mail) */
    const char *actor;
    const char *action;  /* "auth.login", "user.create", ... (docs/security.md) */
    const char *target;  /* what was acted on, or NULL */
    const char *outcome; /* "ok" | "denied" | "failed" */
    const char *ip;
    const char *request_id;
    const char *detail; /* a JSON object, or NULL */
} umg_audit_t;

/** Appends to the audit log (append-only: UPDATE and DELETE are refused by triggers). */
int umg_meta_audit(sqlite3 *db, const umg_audit_t *a);

/** The key forgotten identifiers are hashed under: DATA/privacy.key, made (mode 0600) on first use. */
int umg_meta_privacy_key(const char *data_dir, uint8_t key[32]);

/* One identifier of a forget request: kind is one of umg_privacy_id_kinds. */
typedef struct umg_meta_id_s {
    const char *kind;
    const char *value;
} umg_meta_id_t;

/**
 * Records a forget request for app (in the caller's transaction): the
 * identifiers' keyed hashes, applying to records received until now. Appends
 * {"request_id","status","identifiers","created_at"} to out. UMG_EINVAL (msg)
 * for an unknown kind, an empty value, or more than 1000 identifiers.
 */
int umg_meta_forget_create(sqlite3 *db, const uint8_t key[32], int64_t org_id, int64_t app_id, const char *requested_by,
                           const umg_meta_id_t *ids, size_t n, umg_buf_t *out, char *msg, size_t msglen);

#endif
