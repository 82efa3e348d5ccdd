/*
 * umg_apps.h - organizations and apps with their keys, stored in SQLite
 * (DATA/meta.db), and the in-memory registry the daemon authenticates
 * against.
 *
 * The CLI writes with umg_apps_create() while the daemon runs; the daemon's
 * registry notices the change (SQLite's data_version) on its next
 * umg_apps_refresh() and swaps in a new lookup table.
 */
#ifndef UMG_APPS_H
#define UMG_APPS_H

#include "umg_core.h"
#include "umg_fraud.h"

/* An app as the request path sees it: a copy, owned by the caller. */
typedef struct umg_app_s {
    uint32_t id;        /* internal id, stored in log records */
    uint32_t org;       /* internal org id */
    char public_id[24]; /* "app_" + 16 hex */
    char org_public_id[24];
    char platform[8];
    int64_t prev_key_until_us; /* a rotated-out key / secret works until then */
    int64_t prev_secret_until_us;
    double rate_eps, rate_burst; /* ingest rate limit; 0: the configured default */
    int64_t org_monthly_quota;   /* 0: the configured default */
    /* Attribution windows from settings (docs/api.md); 0: the default. */
    int32_t click_lookback_days, view_lookback_hours, reattribution_window_days;
    int32_t probabilistic_window_hours, reengagement_lookback_days, reengagement_window_days;
    int32_t source_windows; /* how many sources have their own click window (umg_apps_source_window) */
    /* Reporting settings (settings.timezone and settings.currency, docs/api.md): an IANA time zone ("UTC"
     * when unset; a valid name, though its zone may fail to load if tzdata changed) and an ISO 4217 currency
     * ("USD" when unset), NUL-terminated. */
    char timezone[64];
    char currency[4];
    umg_fraud_settings_t fraud; /* the fraud rules' settings (docs/fraud.md); defaults when never set */
    /* settings.require_signature: SDK requests (app key) must carry a valid X-Signature (docs/fraud.md). */
    int32_t require_signature;
} umg_app_t;

typedef struct umg_apps_s umg_apps_t;

/** Opens (creating and migrating) DATA/meta.db and loads the registry. */
int umg_apps_open(const char *data_dir, umg_apps_t **out);
void umg_apps_close(umg_apps_t *apps);

/** Reloads the registry when the database changed. Call from one thread. */
int umg_apps_refresh(umg_apps_t *apps);

/* Lookups, safe from any thread. UMG_OK with *out filled, or UMG_ENOENT. */
int umg_apps_find_key(umg_apps_t *apps, umg_slice_t app_key, umg_app_t *out);
int umg_apps_find_secret(umg_apps_t *apps, umg_slice_t app_secret, umg_app_t *out);
int umg_apps_find_id(umg_apps_t *apps, umg_slice_t public_id, umg_app_t *out);
/** By internal id (the one log records carry); a linear scan, for the pipeline's per-batch cache. */
int umg_apps_find_internal(umg_apps_t *apps, uint32_t id, umg_app_t *out);
/** A source's own click window in days (settings.source_click_lookback_days). UMG_ENOENT when it has none. */
int umg_apps_source_window(umg_apps_t *apps, uint32_t id, umg_slice_t source, int32_t *days);
size_t umg_apps_count(umg_apps_t *apps);

/* The keys a signed SDK request may be signed with: the app's signing secret (not its app secret, which
 * must never ship inside an app), and the one it replaced while the rotation's overlap lasts. NUL-terminated;
 * wipe them after use (sodium_memzero). */
typedef struct umg_app_secrets_s {
    char secret[96];
    char prev_secret[96]; /* "" when none is valid now */
} umg_app_secrets_t;
/** The app's signing keys by public id, valid at now_us. UMG_ENOENT for an unknown app. */
int umg_apps_signing_secrets(umg_apps_t *apps, umg_slice_t public_id, int64_t now_us, umg_app_secrets_t *out);
/**
 * For a click link: the app by public id, and in url[cap] where to send the
 * user: `redirect` when it is an http(s) URL whose host is on the app's
 * redirect allowlist (or a subdomain of an entry), else the app's store URL
 * (*store set to 1; may be NULL), else "" (never an open redirect).
 * UMG_ENOENT for an unknown app.
 */
int umg_apps_redirect(umg_apps_t *apps, umg_slice_t public_id, umg_slice_t redirect, umg_app_t *app, int *store,
                      char *url, size_t cap);
/** Calls fn for every app of the snapshot (under the registry's read lock: fn must not call back in). */
void umg_apps_each(umg_apps_t *apps, void (*fn)(void *ctx, const umg_app_t *app), void *ctx);

typedef struct umg_app_spec_s {
    const char *org; /* organization name; created when new */
    const char *name;
    const char *platform;  /* android | ios | web */
    const char *store_url; /* may be NULL */
    const char *timezone;  /* settings.timezone, an IANA name; NULL: "UTC" */
    const char *currency;  /* settings.currency, ISO 4217; NULL: "USD" */
} umg_app_spec_t;

/**
 * Creates an app (and its organization when new) in DATA/meta.db and appends
 * the JSON object {org_id, app_id, app_key, app_secret, ...} to out.
 * UMG_EEXIST when the organization already has an app of that name,
 * UMG_EINVAL for a bad platform, name, time zone or currency (msg says which).
 */
int umg_apps_create(const char *data_dir, const umg_app_spec_t *spec, umg_buf_t *out, char *msg, size_t msglen);

/* 1 when url may be an app's store URL (it becomes the Location of click links). */
#define UMG_APPS_STORE_URL_RULE "must be an http(s) URL of at most 2048 bytes, without spaces or control characters"
int umg_apps_store_url_ok(const char *url);

/**
 * The same inside the caller's transaction on db, for an existing
 * organization; *field names the bad input on UMG_EINVAL / UMG_EEXIST.
 */
struct sqlite3;
int umg_apps_insert(struct sqlite3 *db, int64_t org_id, const umg_app_spec_t *spec, umg_buf_t *out, const char **field,
                    char *msg, size_t msglen);

/** Appends a JSON array of every app (with keys) to out. */
int umg_apps_list(const char *data_dir, umg_buf_t *out);

#endif
