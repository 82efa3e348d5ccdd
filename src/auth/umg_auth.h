/*
 * umg_auth.h - who is calling and what they may do.
 *
 * Roles map to permissions (the matrix is in perm.c and docs/security.md).
 * A request is authenticated once, on its loop thread, into a principal: a
 * dashboard user (Bearer access token), an API token (Bearer "ut_..."), or an
 * app (X-App-Secret, or X-App-Key for sending events only). Every endpoint
 * then asks umg_principal_can() for one permission on one app (or on the
 * organization). Lookups go against an in-memory snapshot of users and API
 * tokens that umg_auth_refresh() rebuilds when DATA/meta.db changed, so a
 * role change, a revoked token or a disabled user takes effect within one
 * refresh, without a restart.
 */
#ifndef UMG_AUTH_H
#define UMG_AUTH_H

#include "umg_apps.h"
#include "umg_jwt.h"

/* ---------------------------------------------------------------- permissions */

typedef enum umg_perm_e {
    UMG_PERM_APPS_READ = 1u << 0,
    UMG_PERM_APPS_WRITE = 1u << 1,
    UMG_PERM_KEYS_MANAGE = 1u << 2,
    UMG_PERM_USERS_MANAGE = 1u << 3,
    UMG_PERM_REPORTS_READ = 1u << 4,
    UMG_PERM_EXPORT_RAW = 1u << 5,
    UMG_PERM_COSTS_WRITE = 1u << 6,
    UMG_PERM_SETTINGS_WRITE = 1u << 7,
    UMG_PERM_PRIVACY_EXECUTE = 1u << 8,
    UMG_PERM_AUDIT_READ = 1u << 9,
    UMG_PERM_ORG_MANAGE = 1u << 10, /* organization settings and limits, owners */
    /* Held by app credentials only, never by users or API tokens. */
    UMG_PERM_EVENTS_WRITE = 1u << 11,
    UMG_PERM_TOUCHES_WRITE = 1u << 12,
} umg_perm_t;

#define UMG_PERM_COUNT 13
#define UMG_PERM_USER_MASK ((1u << 11) - 1)
/* Permissions that are about the organization rather than one app. */
#define UMG_PERM_ORG_LEVEL (UMG_PERM_USERS_MANAGE | UMG_PERM_AUDIT_READ | UMG_PERM_ORG_MANAGE)

typedef enum umg_role_e {
    UMG_ROLE_NONE = 0,
    UMG_ROLE_OWNER,
    UMG_ROLE_ADMIN,
    UMG_ROLE_ANALYST,
    UMG_ROLE_MARKETER,
    UMG_ROLE_VIEWER,
} umg_role_t;

/** "apps:read" for UMG_PERM_APPS_READ; NULL for anything that is not one bit. */
const char *umg_perm_name(uint32_t perm);
/** The bit for a name, 0 when unknown. */
uint32_t umg_perm_parse(const char *name, size_t len);
/** The role's permissions. */
uint32_t umg_role_perms(umg_role_t role);
const char *umg_role_name(umg_role_t role);
umg_role_t umg_role_parse(const char *name, size_t len);
/** 1 when a user of role granter may give role to someone (owners only by owners). */
int umg_role_may_grant(umg_role_t granter, umg_role_t role);
/** Appends a JSON array of the permission names in mask. */
int umg_perms_json(uint32_t mask, umg_buf_t *out);

/* ---------------------------------------------------------------- principals */

typedef enum umg_principal_kind_e {
    UMG_PRINCIPAL_NONE = 0,
    UMG_PRINCIPAL_USER,
    UMG_PRINCIPAL_TOKEN,
    UMG_PRINCIPAL_APP_SECRET,
    UMG_PRINCIPAL_APP_KEY,
} umg_principal_kind_t;

#define UMG_PRINCIPAL_MAX_APPS 64

typedef struct umg_principal_s {
    umg_principal_kind_t kind;
    uint32_t org;           /* internal org id */
    char org_public_id[24]; /* "org_..." */
    char id[40];            /* "usr_...", "tok_..." or "app_..." */
    int64_t internal_id;    /* users.id, api_tokens.id, apps.id */
    umg_role_t role;        /* users; the creator's current role for tokens */
    char user_id[24];       /* the user: the principal itself, or a token's creator */
    uint32_t perms;
    int all_apps; /* 1: every app of the org; else apps[0..napps) */
    uint32_t napps;
    uint32_t apps[UMG_PRINCIPAL_MAX_APPS];
    umg_app_t app; /* the app itself for app credentials */
} umg_principal_t;

/**
 * 1 when p holds perm on app: the app must belong to p's organization and be
 * one of p's apps. app NULL: an organization-level check (p->org).
 */
int umg_principal_can(const umg_principal_t *p, uint32_t perm, const umg_app_t *app);

/* ---------------------------------------------------------------- the service */

typedef struct umg_auth_s umg_auth_t;

typedef struct umg_auth_config_s {
    char *jwt_alg;         /* HS256 | RS256 | ES256 */
    char *jwt_secret_file; /* HS256; "" = DATA/jwt.secret, made on first start */
    char *jwt_private_key; /* PEM file, RS256 / ES256 */
    char *jwt_public_key;  /* PEM file, RS256 / ES256 */
    int64_t access_ttl_ms;
    int64_t refresh_ttl_ms;
    int64_t login_max_failures; /* per account and per IP in login_window */
    int64_t login_window_ms;
    int64_t key_overlap_ms; /* old app keys keep working this long after a rotation */
    int64_t invite_ttl_ms;
} umg_auth_config_t;

/** Opens the user/token registry over DATA/meta.db and loads the signing keys. */
int umg_auth_open(const char *data_dir, const umg_auth_config_t *cfg, umg_apps_t *apps, umg_auth_t **out, char *msg,
                  size_t msglen);
void umg_auth_close(umg_auth_t *a);
/** Reloads users and tokens when meta.db changed; writes back API-token last-used times. Main thread. */
int umg_auth_refresh(umg_auth_t *a);
const umg_auth_config_t *umg_auth_config(umg_auth_t *a);
const umg_jwt_keys_t *umg_auth_keys(umg_auth_t *a);
umg_apps_t *umg_auth_apps(umg_auth_t *a);

/* Why authentication failed; the HTTP layer turns these into 401s. */
typedef struct umg_authn_error_s {
    const char *code;    /* "unauthorized" | "invalid_token" | "token_expired" */
    const char *field;   /* the header at fault */
    const char *message; /* safe to show: never echoes the credential */
} umg_authn_error_t;

/* The credentials a request carried (slices of its headers; empty when absent). */
typedef struct umg_credentials_s {
    umg_slice_t authorization;
    umg_slice_t app_secret;
    umg_slice_t app_key;
} umg_credentials_t;

/**
 * Authenticates a request. Bearer wins over app credentials when both are
 * present. allow_key: whether X-App-Key is acceptable here (event ingest).
 * UMG_OK with *p filled, UMG_ENOENT when no credential was sent at all, or
 * UMG_EAUTH with *err filled. Safe from any thread.
 */
int umg_auth_authenticate(umg_auth_t *a, const umg_credentials_t *c, int allow_key, int64_t now_us, umg_principal_t *p,
                          umg_authn_error_t *err);

/** Looks up a user of the snapshot by public id (for /v1/me and token issue). */
int umg_auth_user_principal(umg_auth_t *a, const char *user_public_id, umg_principal_t *p);

#endif
