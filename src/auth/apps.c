/*
 * apps.c - organizations and apps in DATA/meta.db, and the registry of app
 * keys the ingest path authenticates against.
 *
 * The registry is an immutable snapshot (sorted arrays of keys, of secrets
 * and of public ids; a rotated-out key or secret stays in them until its
 * overlap ends) behind a read-write lock; a refresh builds a new snapshot and
 * swaps it in, so lookups never wait on SQLite.
 *
 * Keys and secrets are searched by their SipHash under a key drawn at random
 * when the registry opens, and only then compared whole in constant time: how
 * long a search takes depends on hashes an attacker cannot compute, not on
 * how many leading characters of a guess match a real credential.
 */
#include "umg_apps.h"
#include "umg_event.h"
#include "umg_meta.h"

#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdlib.h>

typedef struct entry_s {
    umg_app_t app;
    char *key, *secret, *prev_key, *prev_secret;
    char *sign, *prev_sign;     /* the signing secret of signed SDK requests, and the one it replaced */
    int64_t prev_sign_until_us; /* prev_sign works until then */
    char *store_url;            /* NULL when none */
    char *allowlist;            /* redirect hosts, comma-separated; NULL when none */
    char *sources;              /* settings.source_click_lookback_days members ("meta":28,...); NULL when none */
} entry_t;

/* One credential: an app's current key or secret (until INT64_MAX), or the
 * one it replaced, accepted until the rotation's overlap ends. */
typedef struct cred_s {
    uint64_t h; /* cred_hash of str */
    const char *str;
    entry_t *e;
    int64_t until_us;
} cred_t;

typedef struct snapshot_s {
    entry_t *entries;
    size_t n;
    cred_t *keys, *secrets; /* sorted by str */
    size_t nkeys, nsecrets;
    entry_t **by_id;
} snapshot_t;

struct umg_apps_s {
    unsigned char hkey[crypto_shorthash_KEYBYTES]; /* random, for cred_hash */
    sqlite3 *db;
    pthread_rwlock_t lock;
    pthread_mutex_t refresh_mu; /* refreshes come from the main thread and the admin worker */
    snapshot_t *snap;
    int64_t data_version;
};

/* ---------------------------------------------------------------- snapshot */

static void snapshot_free(snapshot_t *s)
{
    if (s == NULL) {
        return;
    }
    for (size_t i = 0; i < s->n; i++) {
        umg_free(s->entries[i].key);
        umg_free(s->entries[i].secret);
        umg_free(s->entries[i].prev_key);
        umg_free(s->entries[i].prev_secret);
        umg_free(s->entries[i].sign);
        umg_free(s->entries[i].prev_sign);
        umg_free(s->entries[i].store_url);
        umg_free(s->entries[i].allowlist);
        umg_free(s->entries[i].sources);
    }
    umg_free(s->entries);
    umg_free(s->keys);
    umg_free(s->secrets);
    umg_free(s->by_id);
    umg_free(s);
}

static int cmp_cred(const void *a, const void *b)
{
    uint64_t x = ((const cred_t *)a)->h, y = ((const cred_t *)b)->h;
    return x < y ? -1 : x > y;
}

static uint64_t cred_hash(const unsigned char *hkey, const void *p, size_t n)
{
    unsigned char out[crypto_shorthash_BYTES];
    crypto_shorthash(out, p, n, hkey);
    uint64_t h;
    memcpy(&h, out, sizeof(h));
    return h;
}
static int cmp_id(const void *a, const void *b)
{
    return strcmp((*(entry_t *const *)a)->app.public_id, (*(entry_t *const *)b)->app.public_id);
}

static void copy_text(char *dst, size_t cap, const unsigned char *src)
{
    snprintf(dst, cap, "%s", src ? (const char *)src : "");
}

static char *dup_col(sqlite3_stmt *st, int col, int *oom)
{
    const char *t = (const char *)sqlite3_column_text(st, col);
    if (t == NULL) {
        return NULL;
    }
    char *d = umg_strndup(t, strlen(t));
    *oom |= d == NULL;
    return d;
}

/* The hosts of settings.redirect_allowlist as "a.com,b.org" (the admin API
 * stores them canonical: lowercase [a-z0-9_:.-], no escapes). */
static char *allowlist_of(const char *settings, int *oom)
{
    const char *p = settings ? strstr(settings, "\"redirect_allowlist\":[") : NULL;
    if (p == NULL) {
        return NULL;
    }
    p += 22;
    const char *end = strchr(p, ']');
    if (end == NULL || end == p) {
        return NULL;
    }
    char *out = umg_malloc((size_t)(end - p) + 1);
    if (out == NULL) {
        *oom = 1;
        return NULL;
    }
    size_t n = 0;
    for (; p < end; p++) {
        if (*p != '"') {
            out[n++] = *p;
        }
    }
    out[n] = '\0';
    return out;
}

/* The members of settings.source_click_lookback_days, as the admin API wrote them (canonical JSON). */
static char *sources_of(const char *settings, int32_t *n, int *oom)
{
    static const char pat[] = "\"source_click_lookback_days\":{";
    const char *p = settings ? strstr(settings, pat) : NULL;
    *n = 0;
    if (p == NULL) {
        return NULL;
    }
    p += sizeof(pat) - 1;
    const char *end = p;
    for (int in_str = 0; *end && (in_str || *end != '}'); end++) {
        if (in_str && *end == '\\' && end[1]) {
            end++;
        } else if (*end == '"') {
            in_str = !in_str;
            *n += !in_str;
        }
    }
    if (end == p) {
        return NULL;
    }
    char *out = umg_strndup(p, (size_t)(end - p));
    *oom |= out == NULL;
    return out;
}

/* An integer member of the settings JSON (written canonical by the admin API); 0 when absent. */
static int32_t setting_int(const char *settings, const char *name)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":", name);
    const char *p = settings ? strstr(settings, pat) : NULL;
    if (p == NULL) {
        return 0;
    }
    long v = strtol(p + strlen(pat), NULL, 10);
    return v > 0 && v < 100000 ? (int32_t)v : 0;
}

/* A boolean member of the settings JSON (written canonical by the admin API); 0 when absent. */
static int32_t setting_bool(const char *settings, const char *name)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":true", name);
    return settings != NULL && strstr(settings, pat) != NULL;
}

/*
 * A string member of the settings JSON into dst[cap], or def when absent or not of the expected
 * form. The admin API writes timezone and currency first and JSON-escaped; a zone name or a
 * currency code never needs an escape, so the first quote ends the value.
 */
static void setting_str(const char *settings, const char *name, char *dst, size_t cap, const char *def)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":\"", name);
    const char *p = settings ? strstr(settings, pat) : NULL;
    size_t n = p ? strcspn(p + strlen(pat), "\"\\") : 0;
    if (p == NULL || n == 0 || n >= cap || p[strlen(pat) + n] != '"') {
        snprintf(dst, cap, "%s", def);
        return;
    }
    memcpy(dst, p + strlen(pat), n);
    dst[n] = '\0';
}

static int snapshot_load(const umg_apps_t *a, snapshot_t **out)
{
    sqlite3 *db = a->db;
    sqlite3_stmt *st = NULL;
    snapshot_t *s = umg_calloc(1, sizeof(*s));
    size_t cap = 0;
    int rc = UMG_ENOMEM;
    if (s == NULL) {
        return UMG_ENOMEM;
    }
    if (sqlite3_prepare_v2(db,
                           "SELECT a.id, a.org_id, a.public_id, o.public_id, a.platform, a.app_key, a.app_secret,"
                           " a.prev_app_key, a.prev_key_until_us, a.prev_app_secret, a.prev_secret_until_us,"
                           " a.rate_eps, a.rate_burst, o.monthly_quota, a.store_url, a.settings, a.fraud,"
                           " a.signing_secret, a.prev_signing_secret, a.prev_signing_until_us"
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
        entry_t *e = &s->entries[s->n++];
        memset(e, 0, sizeof(*e));
        e->app.id = (uint32_t)sqlite3_column_int64(st, 0);
        e->app.org = (uint32_t)sqlite3_column_int64(st, 1);
        copy_text(e->app.public_id, sizeof(e->app.public_id), sqlite3_column_text(st, 2));
        copy_text(e->app.org_public_id, sizeof(e->app.org_public_id), sqlite3_column_text(st, 3));
        copy_text(e->app.platform, sizeof(e->app.platform), sqlite3_column_text(st, 4));
        int oom = 0;
        e->key = dup_col(st, 5, &oom);
        e->secret = dup_col(st, 6, &oom);
        e->prev_key = dup_col(st, 7, &oom);
        e->app.prev_key_until_us = e->prev_key ? sqlite3_column_int64(st, 8) : 0;
        e->prev_secret = dup_col(st, 9, &oom);
        e->app.prev_secret_until_us = e->prev_secret ? sqlite3_column_int64(st, 10) : 0;
        e->sign = dup_col(st, 17, &oom);
        e->prev_sign = dup_col(st, 18, &oom);
        e->prev_sign_until_us = e->prev_sign ? sqlite3_column_int64(st, 19) : 0;
        e->app.rate_eps = sqlite3_column_double(st, 11);
        e->app.rate_burst = sqlite3_column_double(st, 12);
        e->app.org_monthly_quota = sqlite3_column_int64(st, 13);
        e->store_url = dup_col(st, 14, &oom);
        const char *settings = (const char *)sqlite3_column_text(st, 15);
        e->allowlist = allowlist_of(settings, &oom);
        e->sources = sources_of(settings, &e->app.source_windows, &oom);
        e->app.click_lookback_days = setting_int(settings, "click_lookback_days");
        e->app.view_lookback_hours = setting_int(settings, "view_lookback_hours");
        e->app.reattribution_window_days = setting_int(settings, "reattribution_window_days");
        e->app.probabilistic_window_hours = setting_int(settings, "probabilistic_window_hours");
        e->app.reengagement_lookback_days = setting_int(settings, "reengagement_lookback_days");
        e->app.reengagement_window_days = setting_int(settings, "reengagement_window_days");
        setting_str(settings, "timezone", e->app.timezone, sizeof(e->app.timezone), "UTC");
        if (!umg_tz_name_valid(e->app.timezone)) {
            snprintf(e->app.timezone, sizeof(e->app.timezone), "UTC");
        }
        e->app.require_signature = setting_bool(settings, "require_signature");
        setting_str(settings, "currency", e->app.currency, sizeof(e->app.currency), "USD");
        if (!umg_event_currency_known(umg_slice(e->app.currency, strlen(e->app.currency)))) {
            snprintf(e->app.currency, sizeof(e->app.currency), "USD");
        }
        umg_fraud_settings_default(&e->app.fraud);
        const char *fraud = (const char *)sqlite3_column_text(st, 16);
        char ffield[96], fmsg[160];
        if (fraud != NULL && strcmp(fraud, "{}") != 0 && /* never changed: the defaults, no parse */
            umg_fraud_settings_apply_json(&e->app.fraud, fraud, strlen(fraud), ffield, sizeof(ffield), fmsg,
                                          sizeof(fmsg)) == UMG_ENOMEM) {
            oom = 1;
        }
        if (oom || e->key == NULL || e->secret == NULL) {
            goto fail;
        }
    }
    if (step != SQLITE_DONE) {
        rc = UMG_EIO;
        goto fail;
    }
    size_t n = s->n ? s->n : 1;
    s->keys = umg_malloc(2 * n * sizeof(cred_t));
    s->secrets = umg_malloc(2 * n * sizeof(cred_t));
    s->by_id = umg_malloc(n * sizeof(entry_t *));
    if (s->keys == NULL || s->secrets == NULL || s->by_id == NULL) {
        goto fail;
    }
    for (size_t i = 0; i < s->n; i++) {
        entry_t *e = &s->entries[i];
        s->by_id[i] = e;
#define CRED(str, until) (cred_t){cred_hash(a->hkey, (str), strlen(str)), (str), e, (until)}
        s->keys[s->nkeys++] = CRED(e->key, INT64_MAX);
        s->secrets[s->nsecrets++] = CRED(e->secret, INT64_MAX);
        if (e->prev_key != NULL) {
            s->keys[s->nkeys++] = CRED(e->prev_key, e->app.prev_key_until_us);
        }
        if (e->prev_secret != NULL) {
            s->secrets[s->nsecrets++] = CRED(e->prev_secret, e->app.prev_secret_until_us);
        }
#undef CRED
    }
    qsort(s->keys, s->nkeys, sizeof(cred_t), cmp_cred);
    qsort(s->secrets, s->nsecrets, sizeof(cred_t), cmp_cred);
    qsort(s->by_id, s->n, sizeof(entry_t *), cmp_id);
    sqlite3_finalize(st);
    *out = s;
    return UMG_OK;
fail:
    sqlite3_finalize(st);
    snapshot_free(s);
    return rc;
}

int umg_apps_open(const char *data_dir, umg_apps_t **out)
{
    umg_apps_t *a = umg_calloc(1, sizeof(*a));
    if (a == NULL) {
        return UMG_ENOMEM;
    }
    pthread_rwlock_init(&a->lock, NULL);
    pthread_mutex_init(&a->refresh_mu, NULL);
    int rc = sodium_init() < 0 ? UMG_EIO : umg_meta_open(data_dir, &a->db);
    if (rc == UMG_OK) {
        crypto_shorthash_keygen(a->hkey);
        a->data_version = umg_meta_data_version(a->db);
        rc = snapshot_load(a, &a->snap);
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
    pthread_mutex_destroy(&a->refresh_mu);
    umg_free(a);
}

int umg_apps_refresh(umg_apps_t *a)
{
    pthread_mutex_lock(&a->refresh_mu);
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
    umg_log(UMG_LOG_DEBUG, "apps", "app registry reloaded: %zu apps", s->n);
    return UMG_OK;
}

/* Compares a NUL-terminated string with a slice, as strcmp would order them. */
static int cmp_slice(const char *f, umg_slice_t needle)
{
    size_t fl = strlen(f);
    int c = memcmp(f, needle.ptr, UMG_MIN(fl, needle.len));
    return c != 0 ? c : fl < needle.len ? -1 : fl > needle.len;
}

/* Binary search over the credentials' keyed hashes, then a constant-time comparison of the whole value
 * with each credential of that hash (keys and secrets are 128 and 256 random bits). */
static int find_cred(umg_apps_t *a, umg_slice_t needle, int secret, umg_app_t *out)
{
    if (needle.len == 0 || needle.len > 128) {
        return UMG_ENOENT;
    }
    int rc = UMG_ENOENT;
    int64_t now = umg_now_us();
    uint64_t h = cred_hash(a->hkey, needle.ptr, needle.len);
    pthread_rwlock_rdlock(&a->lock);
    snapshot_t *s = a->snap;
    const cred_t *v = secret ? s->secrets : s->keys;
    size_t lo = 0, hi = secret ? s->nsecrets : s->nkeys;
    while (lo < hi) { /* the first of hash >= h */
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid].h < h) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    for (size_t n = secret ? s->nsecrets : s->nkeys; lo < n && v[lo].h == h; lo++) {
        if (strlen(v[lo].str) == needle.len && sodium_memcmp(v[lo].str, needle.ptr, needle.len) == 0) {
            if (v[lo].until_us > now) {
                *out = v[lo].e->app;
                rc = UMG_OK;
            }
            break;
        }
    }
    pthread_rwlock_unlock(&a->lock);
    return rc;
}

int umg_apps_find_key(umg_apps_t *a, umg_slice_t k, umg_app_t *out)
{
    return find_cred(a, k, 0, out);
}
int umg_apps_find_secret(umg_apps_t *a, umg_slice_t k, umg_app_t *out)
{
    return find_cred(a, k, 1, out);
}
/* The entry of a public app id in a snapshot (binary search over by_id); NULL when none. */
static const entry_t *entry_by_id(const snapshot_t *s, umg_slice_t k)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_slice(s->by_id[mid]->app.public_id, k);
        if (c == 0) {
            return s->by_id[mid];
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return NULL;
}

int umg_apps_find_id(umg_apps_t *a, umg_slice_t k, umg_app_t *out)
{
    if (k.len == 0 || k.len > 128) {
        return UMG_ENOENT;
    }
    pthread_rwlock_rdlock(&a->lock);
    const entry_t *e = entry_by_id(a->snap, k);
    if (e != NULL) {
        *out = e->app;
    }
    pthread_rwlock_unlock(&a->lock);
    return e != NULL ? UMG_OK : UMG_ENOENT;
}

int umg_apps_signing_secrets(umg_apps_t *a, umg_slice_t k, int64_t now_us, umg_app_secrets_t *out)
{
    if (k.len == 0 || k.len > 128) {
        return UMG_ENOENT;
    }
    pthread_rwlock_rdlock(&a->lock);
    const entry_t *e = entry_by_id(a->snap, k);
    if (e != NULL && (e->sign == NULL || e->sign[0] == '\0')) {
        e = NULL; /* no signing secret (a row changed by hand): nothing verifies */
    }
    if (e != NULL) {
        snprintf(out->secret, sizeof(out->secret), "%s", e->sign);
        snprintf(out->prev_secret, sizeof(out->prev_secret), "%s",
                 e->prev_sign != NULL && e->prev_sign_until_us > now_us ? e->prev_sign : "");
    }
    pthread_rwlock_unlock(&a->lock);
    return e != NULL ? UMG_OK : UMG_ENOENT;
}

int umg_apps_find_internal(umg_apps_t *a, uint32_t id, umg_app_t *out)
{
    int rc = UMG_ENOENT;
    pthread_rwlock_rdlock(&a->lock);
    snapshot_t *s = a->snap;
    for (size_t i = 0; i < s->n; i++) {
        if (s->entries[i].app.id == id) {
            *out = s->entries[i].app;
            rc = UMG_OK;
            break;
        }
    }
    pthread_rwlock_unlock(&a->lock);
    return rc;
}

int umg_apps_source_window(umg_apps_t *a, uint32_t id, umg_slice_t source, int32_t *days)
{
    char enc[1600];
    umg_buf_t b = {0};
    if (source.len == 0 || source.len > 256 || umg_buf_json_str(&b, source.ptr, source.len) != UMG_OK ||
        b.len >= sizeof(enc)) {
        umg_buf_free(&b);
        return UMG_ENOENT;
    }
    memcpy(enc, b.ptr, b.len);
    size_t elen = b.len;
    umg_buf_free(&b);
    int rc = UMG_ENOENT;
    pthread_rwlock_rdlock(&a->lock);
    snapshot_t *s = a->snap;
    for (size_t i = 0; i < s->n; i++) {
        const entry_t *e = &s->entries[i];
        if (e->app.id != id || e->sources == NULL) {
            continue;
        }
        /* Members are "name":days with names encoded as umg_buf_json_str encodes `source` above. */
        for (const char *p = e->sources; *p == '"';) {
            const char *q = p + 1;
            while (*q && *q != '"') {
                q += *q == '\\' && q[1] ? 2 : 1;
            }
            if (*q != '"' || q[1] != ':') {
                break;
            }
            size_t tlen = (size_t)(q + 1 - p); /* the name with its quotes */
            char *after;
            long v = strtol(q + 2, &after, 10);
            if (tlen == elen && memcmp(p, enc, elen) == 0) {
                *days = (int32_t)v;
                rc = UMG_OK;
                break;
            }
            p = *after == ',' ? after + 1 : after;
        }
        break;
    }
    pthread_rwlock_unlock(&a->lock);
    return rc;
}

/* The host of an http(s) URL, lowercased into host[cap]; 0 when url is not one. */
static int url_host(umg_slice_t url, char *host, size_t cap)
{
    size_t i = 0;
    if (url.len > 8 && strncasecmp(url.ptr, "https://", 8) == 0) {
        i = 8;
    } else if (url.len > 7 && strncasecmp(url.ptr, "http://", 7) == 0) {
        i = 7;
    } else {
        return 0;
    }
    /* The whole authority first: user info ("a@b"), backslashes or odd bytes anywhere in it
     * make browsers disagree about the host, so such a URL is never a redirect target. */
    size_t end = i;
    while (end < url.len && url.ptr[end] != '/' && url.ptr[end] != '?' && url.ptr[end] != '#') {
        char c = url.ptr[end++];
        if (c == '@' || c == '\\' || (unsigned char)c <= 0x20 || (unsigned char)c >= 0x7f) {
            return 0;
        }
    }
    size_t n = 0;
    for (; i < end && url.ptr[i] != ':'; i++) { /* up to a port */
        if (n + 1 >= cap) {
            return 0;
        }
        char c = url.ptr[i];
        host[n++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    host[n] = '\0';
    return n > 0;
}

/* 1 when host is an entry of the list or a subdomain of one. */
static int host_allowed(const char *list, const char *host)
{
    size_t hl = strlen(host);
    for (const char *s = list; s && *s;) {
        size_t n = strcspn(s, ",");
        if (n > 0 && (hl == n || (hl > n && host[hl - n - 1] == '.')) && memcmp(host + hl - n, s, n) == 0) {
            return 1;
        }
        s += n + (s[n] == ',');
    }
    return 0;
}

int umg_apps_redirect(umg_apps_t *a, umg_slice_t public_id, umg_slice_t redirect, umg_app_t *app, int *store, char *url,
                      size_t cap)
{
    if (public_id.len == 0 || public_id.len > 128) {
        return UMG_ENOENT;
    }
    int rc = UMG_ENOENT, to_store = 0;
    url[0] = '\0';
    pthread_rwlock_rdlock(&a->lock);
    snapshot_t *s = a->snap;
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_slice(s->by_id[mid]->app.public_id, public_id);
        if (c == 0) {
            entry_t *e = s->by_id[mid];
            char host[256];
            *app = e->app;
            rc = UMG_OK;
            int printable = 1;
            for (size_t i = 0; i < redirect.len; i++) {
                printable &= (unsigned char)redirect.ptr[i] > 0x20 && (unsigned char)redirect.ptr[i] < 0x7f;
            }
            if (redirect.len > 0 && redirect.len < cap && printable && e->allowlist != NULL &&
                url_host(redirect, host, sizeof(host)) && host_allowed(e->allowlist, host)) {
                memcpy(url, redirect.ptr, redirect.len);
                url[redirect.len] = '\0';
            } else if (e->store_url != NULL && strlen(e->store_url) < cap) {
                strcpy(url, e->store_url);
                to_store = 1;
            }
            break;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    pthread_rwlock_unlock(&a->lock);
    if (store != NULL) {
        *store = to_store;
    }
    return rc;
}

void umg_apps_each(umg_apps_t *a, void (*fn)(void *ctx, const umg_app_t *app), void *ctx)
{
    pthread_rwlock_rdlock(&a->lock);
    for (size_t i = 0; i < a->snap->n; i++) {
        fn(ctx, &a->snap->entries[i].app);
    }
    pthread_rwlock_unlock(&a->lock);
}

size_t umg_apps_count(umg_apps_t *a)
{
    pthread_rwlock_rdlock(&a->lock);
    size_t n = a->snap->n;
    pthread_rwlock_unlock(&a->lock);
    return n;
}

/* ---------------------------------------------------------------- writes (CLI) */

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

/*
 * The settings a new app starts with: {"timezone":...,"currency":...} when the spec sets either
 * (the admin API reads a partial settings object with defaults for the rest), else "".
 */
static int reporting_settings(const umg_app_spec_t *spec, char *out, size_t cap, const char **field, char *msg,
                              size_t msglen)
{
    const char *tzname = spec->timezone ? spec->timezone : "UTC", *cur = spec->currency ? spec->currency : "USD";
    if (spec->timezone != NULL) {
        umg_tz_t *tz = NULL;
        int rc = umg_tz_load(spec->timezone, &tz);
        umg_tz_free(tz);
        if (rc != UMG_OK) {
            *field = "timezone";
            snprintf(msg, msglen, "'%.64s' is not a time zone of the tz database (%s)", spec->timezone,
                     umg_strerror(rc));
            return UMG_EINVAL;
        }
    }
    if (spec->currency != NULL && !umg_event_currency_known(umg_slice(cur, strlen(cur)))) {
        *field = "currency";
        snprintf(msg, msglen, "'%.8s' is not an ISO 4217 currency code in upper case", cur);
        return UMG_EINVAL;
    }
    if (spec->timezone != NULL || spec->currency != NULL) {
        snprintf(out, cap, "{\"timezone\":\"%s\",\"currency\":\"%s\"}", tzname, cur);
    }
    return UMG_OK;
}

int umg_apps_store_url_ok(const char *url)
{
    if (strlen(url) > 2048 || (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0)) {
        return 0;
    }
    for (const char *c = url; *c; c++) {
        if ((unsigned char)*c <= 0x20 || *c == 0x7f) { /* it becomes a Location header */
            return 0;
        }
    }
    return 1;
}

int umg_apps_insert(sqlite3 *db, int64_t org_id, const umg_app_spec_t *spec, umg_buf_t *out, const char **field,
                    char *msg, size_t msglen)
{
    *field = NULL;
    if (spec->name == NULL || !valid_name(spec->name)) {
        *field = "name";
        snprintf(msg, msglen, "the name must be 1 to 128 printable characters");
        return UMG_EINVAL;
    }
    if (spec->platform == NULL ||
        (strcmp(spec->platform, "android") && strcmp(spec->platform, "ios") && strcmp(spec->platform, "web"))) {
        *field = "platform";
        snprintf(msg, msglen, "the platform must be android, ios or web");
        return UMG_EINVAL;
    }
    if (spec->store_url != NULL && !umg_apps_store_url_ok(spec->store_url)) {
        *field = "store_url";
        snprintf(msg, msglen, "the store URL %s", UMG_APPS_STORE_URL_RULE);
        return UMG_EINVAL;
    }
    char settings[128] = "";
    if (reporting_settings(spec, settings, sizeof(settings), field, msg, msglen) != UMG_OK) {
        return UMG_EINVAL;
    }
    sqlite3_stmt *st = NULL;
    char org_pid[40] = "", org_name[160] = "", app_pid[40], key[80], secret[80], signing[80];
    if (sqlite3_prepare_v2(db, "SELECT public_id, name FROM orgs WHERE id = ?", -1, &st, NULL) != SQLITE_OK) {
        snprintf(msg, msglen, "%s", sqlite3_errmsg(db));
        return UMG_EIO;
    }
    sqlite3_bind_int64(st, 1, org_id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        copy_text(org_pid, sizeof(org_pid), sqlite3_column_text(st, 0));
        copy_text(org_name, sizeof(org_name), sqlite3_column_text(st, 1));
    }
    sqlite3_finalize(st);
    umg_meta_random_id(app_pid, "app_", 8);
    umg_meta_random_id(key, "ak_", 16);
    umg_meta_random_id(secret, "as_", 32);
    umg_meta_random_id(signing, "ss_", 32);
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO apps (public_id, org_id, name, platform, store_url, app_key, app_secret,"
                           " created_us, settings, signing_secret) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK) {
        snprintf(msg, msglen, "%s", sqlite3_errmsg(db));
        return UMG_EIO;
    }
    sqlite3_bind_text(st, 1, app_pid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, org_id);
    sqlite3_bind_text(st, 3, spec->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, spec->platform, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, spec->store_url, -1, SQLITE_STATIC); /* NULL binds NULL */
    sqlite3_bind_text(st, 6, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, secret, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, umg_now_us());
    sqlite3_bind_text(st, 9, settings[0] ? settings : "{}", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 10, signing, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    int rc = UMG_OK;
    if (step != SQLITE_DONE) {
        if (sqlite3_extended_errcode(db) == SQLITE_CONSTRAINT_UNIQUE) {
            *field = "name";
            snprintf(msg, msglen, "organization '%s' already has an app named '%s'", org_name, spec->name);
            rc = UMG_EEXIST;
        } else {
            snprintf(msg, msglen, "%s", sqlite3_errmsg(db));
            rc = UMG_EIO;
        }
    }
    sqlite3_finalize(st);
    if (rc != UMG_OK) {
        return rc;
    }
    rc = umg_buf_printf(out, "{\"org_id\":\"%s\",\"org\":", org_pid);
    rc = rc ? rc : umg_buf_json_str(out, org_name, strlen(org_name));
    rc = rc ? rc : umg_buf_printf(out, ",\"app_id\":\"%s\",\"name\":", app_pid);
    rc = rc ? rc : umg_buf_json_str(out, spec->name, strlen(spec->name));
    return rc ? rc
              : umg_buf_printf(
                    out, ",\"platform\":\"%s\",\"app_key\":\"%s\",\"app_secret\":\"%s\",\"signing_secret\":\"%s\"}",
                    spec->platform, key, secret, signing);
}

int umg_apps_create(const char *data_dir, const umg_app_spec_t *spec, umg_buf_t *out, char *msg, size_t msglen)
{
    if (spec->org == NULL || !valid_name(spec->org)) {
        snprintf(msg, msglen, "--org must be 1 to 128 printable characters");
        return UMG_EINVAL;
    }
    sqlite3 *db = NULL;
    int rc = umg_meta_open(data_dir, &db);
    if (rc != UMG_OK) {
        snprintf(msg, msglen, "cannot open the database in %s", data_dir);
        return rc;
    }
    char org_pid[40];
    const char *field;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(msg, msglen, "database busy: %s", sqlite3_errmsg(db));
        sqlite3_close(db);
        return UMG_EIO;
    }
    int64_t org = umg_meta_org_by_name(db, spec->org, 1, org_pid, sizeof(org_pid));
    if (org < 0) {
        snprintf(msg, msglen, "cannot create the organization: %s", sqlite3_errmsg(db));
        rc = UMG_EIO;
    } else {
        rc = umg_apps_insert(db, org, spec, out, &field, msg, msglen);
        if (rc == UMG_EINVAL && field != NULL) {
            char m[256];
            snprintf(m, sizeof(m), "--%s: %s", strcmp(field, "store_url") == 0 ? "store-url" : field, msg);
            snprintf(msg, msglen, "%s", m);
        }
    }
    if (rc == UMG_OK && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(msg, msglen, "%s", sqlite3_errmsg(db));
        rc = UMG_EIO;
    }
    if (rc != UMG_OK) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    }
    sqlite3_close(db);
    return rc;
}

int umg_apps_list(const char *data_dir, umg_buf_t *out)
{
    sqlite3 *db = NULL;
    int rc = umg_meta_open(data_dir, &db);
    if (rc != UMG_OK) {
        return rc;
    }
    sqlite3_stmt *st = NULL;
    rc = UMG_EIO;
    if (sqlite3_prepare_v2(db,
                           "SELECT o.public_id, o.name, a.public_id, a.name, a.platform, a.app_key, a.app_secret,"
                           " a.signing_secret FROM apps a JOIN orgs o ON o.id = a.org_id ORDER BY a.id",
                           -1, &st, NULL) != SQLITE_OK) {
        goto done;
    }
    rc = umg_buf_putc(out, '[');
    int first = 1;
    static const char *const names[] = {"org_id",   "org",     "app_id",     "name",
                                        "platform", "app_key", "app_secret", "signing_secret"};
    enum { NCOLS = (int)UMG_ARRAY_SIZE(names) };
    while (rc == UMG_OK && sqlite3_step(st) == SQLITE_ROW) {
        const char *f[NCOLS];
        for (int i = 0; i < NCOLS; i++) {
            f[i] = (const char *)sqlite3_column_text(st, i);
            f[i] = f[i] ? f[i] : "";
        }
        rc = umg_buf_append(out, first ? "{" : ",{", first ? 1 : 2);
        for (int i = 0; i < NCOLS && rc == UMG_OK; i++) {
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
