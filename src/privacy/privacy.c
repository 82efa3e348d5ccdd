/*
 * privacy.c - forgetting devices and truncating IP addresses in stored
 * records (see umg_privacy.h).
 */
#include "umg_privacy.h"
#include "umg_touch.h"

#include <arpa/inet.h>
#include <sodium.h>
#include <stdlib.h>

const char *const umg_privacy_id_kinds[] = {"idfa", "idfv", "gaid", "android_id", "oaid", "custom_id", "user_id", NULL};

typedef struct forget_s {
    uint32_t app;
    uint8_t hash[UMG_PRIVACY_HASH_BYTES];
    int64_t before_us;
} forget_t;

struct umg_privacy_s {
    uint8_t key[UMG_PRIVACY_KEY_BYTES];
    forget_t *v;
    size_t n, cap;
    int sorted;
    int64_t ip_cutoff_us;
    const umg_pii_t *pii;      /* NULL: no field is encrypted at rest */
    umg_arena_t arena;         /* plaintext and re-encrypted values of one record */
    umg_touch_decoder_t *tdec; /* for touches, made on first use */
    umg_privacy_id_cb id_cb;
    void *id_ctx;
    uint64_t unread;
};

static int kind_index(const char *kind)
{
    for (int i = 0; umg_privacy_id_kinds[i] != NULL; i++) {
        if (strcmp(kind, umg_privacy_id_kinds[i]) == 0) {
            return i;
        }
    }
    return -1;
}

int umg_privacy_hash_id(const uint8_t key[UMG_PRIVACY_KEY_BYTES], const char *kind, umg_slice_t value,
                        uint8_t out[UMG_PRIVACY_HASH_BYTES])
{
    int k = kind_index(kind);
    if (k < 0 || value.len == 0 || value.len > UMG_EVENT_MAX_STR) {
        return UMG_EINVAL;
    }
    char buf[16 + UMG_EVENT_MAX_STR];
    size_t kl = strlen(kind);
    memcpy(buf, kind, kl + 1);
    memcpy(buf + kl + 1, value.ptr, value.len);
    umg_uuid_t u;
    /* idfa, idfv, gaid are stored lowercased; any id written as a UUID is one id in either case, as the
     * attribution store reads it (umg_attr_id_hash), so its hash is of the lower case too */
    if (k <= 2 || umg_uuid_scan(value.ptr, value.len, &u) >= 0) {
        for (size_t i = kl + 1; i < kl + 1 + value.len; i++) {
            buf[i] = (char)(buf[i] >= 'A' && buf[i] <= 'Z' ? buf[i] + 32 : buf[i]);
        }
    }
    crypto_generichash(out, UMG_PRIVACY_HASH_BYTES, (const unsigned char *)buf, kl + 1 + value.len, key,
                       UMG_PRIVACY_KEY_BYTES);
    return UMG_OK;
}

int umg_privacy_truncate_ip(umg_slice_t ip, char out[48])
{
    char s[64];
    if (ip.len == 0 || ip.len >= sizeof(s)) {
        return UMG_EINVAL;
    }
    memcpy(s, ip.ptr, ip.len);
    s[ip.len] = '\0';
    uint8_t a[16];
    if (inet_pton(AF_INET, s, a) == 1) {
        a[3] = 0;
        return inet_ntop(AF_INET, a, out, 48) ? UMG_OK : UMG_EINVAL;
    }
    if (inet_pton(AF_INET6, s, a) == 1) {
        memset(a + 6, 0, 10);
        return inet_ntop(AF_INET6, a, out, 48) ? UMG_OK : UMG_EINVAL;
    }
    return UMG_EINVAL;
}

int umg_privacy_new(const uint8_t key[UMG_PRIVACY_KEY_BYTES], umg_privacy_t **out)
{
    umg_privacy_t *p = umg_calloc(1, sizeof(*p));
    if (p == NULL) {
        return UMG_ENOMEM;
    }
    memcpy(p->key, key, UMG_PRIVACY_KEY_BYTES);
    p->sorted = 1;
    umg_arena_init(&p->arena, 8192);
    *out = p;
    return UMG_OK;
}

void umg_privacy_set_id_cb(umg_privacy_t *p, umg_privacy_id_cb cb, void *ctx)
{
    p->id_cb = cb;
    p->id_ctx = ctx;
}

uint64_t umg_privacy_unread(const umg_privacy_t *p)
{
    return p->unread;
}

void umg_privacy_free(umg_privacy_t *p)
{
    if (p != NULL) {
        sodium_memzero(p->key, sizeof(p->key));
        umg_arena_free(&p->arena);
        umg_touch_decoder_free(p->tdec);
        umg_free(p->v);
        umg_free(p);
    }
}

int umg_privacy_forget(umg_privacy_t *p, uint32_t app, const uint8_t hash[UMG_PRIVACY_HASH_BYTES], int64_t before_us)
{
    if (p->n == p->cap) {
        size_t ncap = p->cap ? p->cap * 2 : 64;
        forget_t *nv = umg_realloc(p->v, ncap * sizeof(*nv));
        if (nv == NULL) {
            return UMG_ENOMEM;
        }
        p->v = nv;
        p->cap = ncap;
    }
    forget_t *f = &p->v[p->n++];
    f->app = app;
    memcpy(f->hash, hash, UMG_PRIVACY_HASH_BYTES);
    f->before_us = before_us;
    p->sorted = 0;
    return UMG_OK;
}

size_t umg_privacy_count(const umg_privacy_t *p)
{
    return p->n;
}

void umg_privacy_set_pii(umg_privacy_t *p, const umg_pii_t *pii)
{
    p->pii = pii;
}

void umg_privacy_set_ip_cutoff(umg_privacy_t *p, int64_t cutoff_us)
{
    p->ip_cutoff_us = cutoff_us;
}

static int cmp_forget(const void *a, const void *b)
{
    const forget_t *x = a, *y = b;
    if (x->app != y->app) {
        return x->app < y->app ? -1 : 1;
    }
    return memcmp(x->hash, y->hash, UMG_PRIVACY_HASH_BYTES);
}

/* The latest request time for (app, hash), or 0 when not forgotten. */
static int64_t forgotten_before(umg_privacy_t *p, uint32_t app, const uint8_t *hash)
{
    if (!p->sorted) {
        qsort(p->v, p->n, sizeof(forget_t), cmp_forget);
        p->sorted = 1;
    }
    forget_t key = {.app = app};
    memcpy(key.hash, hash, UMG_PRIVACY_HASH_BYTES);
    size_t lo = 0, hi = p->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp_forget(&p->v[mid], &key) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    int64_t best = 0;
    for (; lo < p->n && cmp_forget(&p->v[lo], &key) == 0; lo++) {
        best = UMG_MAX(best, p->v[lo].before_us);
    }
    return best;
}

/* 1 when some identifier of app is forgotten (a cheap test before hashing every id of a record). */
static int forgets_app(umg_privacy_t *p, uint32_t app)
{
    uint8_t zero[UMG_PRIVACY_HASH_BYTES] = {0};
    forgotten_before(p, app, zero); /* sorts */
    size_t lo = 0, hi = p->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->v[mid].app < app) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < p->n && p->v[lo].app == app;
}

typedef struct apply_ctx_s {
    umg_privacy_t *p;
    const umg_bus_msg_t *m;
    umg_buf_t *out;
    umg_privacy_action_t action;
} apply_ctx_t;

static int on_stored(void *ctx, size_t index, umg_event_t *ev, const umg_event_error_t *err)
{
    apply_ctx_t *c = ctx;
    (void)index;
    if (ev == NULL) {
        umg_log(UMG_LOG_WARN, "privacy", "record %llu cannot be read back (%s at %s); kept as it is",
                (unsigned long long)c->m->offset, err->code, err->field);
        c->p->unread++;
        return UMG_OK;
    }
    int stale = 0;
    umg_arena_reset(&c->p->arena);
    if (c->p->pii != NULL) {
        const umg_slice_t enc[] = {ev->ip,          ev->user_id,           ev->device.idfa, ev->device.idfv,
                                   ev->device.gaid, ev->device.android_id, ev->device.oaid, ev->device.custom_id};
        for (size_t i = 0; i < UMG_ARRAY_SIZE(enc); i++) {
            stale |= umg_pii_stale(c->p->pii, enc[i]);
        }
        int rc = umg_pii_decrypt_event(c->p->pii, ev, &c->p->arena);
        if (rc == UMG_EAUTH) {
            /* Go on with what is readable: a forgotten identifier in the clear still matches. */
            umg_log(UMG_LOG_WARN, "privacy", "record %llu: an encrypted field does not decrypt with any key",
                    (unsigned long long)c->m->offset);
        } else if (rc != UMG_OK) {
            return rc;
        }
    }
    if (c->p->n > 0 && forgets_app(c->p, c->m->app)) {
        const umg_slice_t ids[] = {ev->device.idfa, ev->device.idfv,      ev->device.gaid, ev->device.android_id,
                                   ev->device.oaid, ev->device.custom_id, ev->user_id};
        for (size_t i = 0; i < UMG_ARRAY_SIZE(ids); i++) {
            uint8_t h[UMG_PRIVACY_HASH_BYTES];
            if (ids[i].len == 0 || umg_privacy_hash_id(c->p->key, umg_privacy_id_kinds[i], ids[i], h) != UMG_OK) {
                continue;
            }
            if (c->p->id_cb != NULL) {
                c->p->id_cb(c->p->id_ctx, c->m->app, h);
            }
            if (forgotten_before(c->p, c->m->app, h) > c->m->recv_us) {
                c->action = UMG_PRIVACY_FORGET;
                return UMG_OK;
            }
        }
    }
    char ip[48];
    int changed = stale;
    if (c->m->recv_us < c->p->ip_cutoff_us && ev->ip.len > 0 && umg_privacy_truncate_ip(ev->ip, ip) == UMG_OK &&
        !(strlen(ip) == ev->ip.len && memcmp(ip, ev->ip.ptr, ev->ip.len) == 0)) {
        ev->ip = umg_slice(ip, strlen(ip));
        changed = 1;
    }
    if (changed) {
        /* Re-encrypt (under the current key) what the configuration says is encrypted at rest. */
        int rc = c->p->pii ? umg_pii_encrypt_event(c->p->pii, ev, &c->p->arena) : UMG_OK;
        rc = rc ? rc : umg_event_encode_json(ev, c->out);
        if (rc != UMG_OK) {
            return rc;
        }
        c->action = UMG_PRIVACY_REPLACE;
    }
    return UMG_OK;
}

/* ---------------------------------------------------------------- touches */

typedef struct touch_ctx_s {
    umg_privacy_t *p;
    const umg_bus_msg_t *m;
    umg_buf_t *out;
    umg_privacy_action_t action;
} touch_ctx_t;

static int on_stored_touch(void *ctx, size_t index, umg_touch_t *t, const umg_touch_error_t *err)
{
    touch_ctx_t *c = ctx;
    (void)index;
    if (t == NULL) {
        umg_log(UMG_LOG_WARN, "privacy", "touch %llu cannot be read back (%s at %s); kept as it is",
                (unsigned long long)c->m->offset, err->code, err->field);
        c->p->unread++;
        return UMG_OK;
    }
    int stale = 0;
    umg_arena_reset(&c->p->arena);
    if (c->p->pii != NULL) {
        int rc = umg_pii_decrypt_touch(c->p->pii, t, &c->p->arena, &stale);
        if (rc != UMG_OK && rc != UMG_EAUTH) {
            return rc;
        }
    }
    if (c->p->n > 0 && forgets_app(c->p, c->m->app)) {
        const umg_slice_t ids[] = {t->idfa, t->idfv, t->gaid, t->android_id, t->oaid, t->custom_id};
        for (size_t i = 0; i < UMG_ARRAY_SIZE(ids); i++) {
            uint8_t h[UMG_PRIVACY_HASH_BYTES];
            if (ids[i].len == 0 || umg_privacy_hash_id(c->p->key, umg_privacy_id_kinds[i], ids[i], h) != UMG_OK) {
                continue;
            }
            if (c->p->id_cb != NULL) {
                c->p->id_cb(c->p->id_ctx, c->m->app, h);
            }
            if (forgotten_before(c->p, c->m->app, h) > c->m->recv_us) {
                c->action = UMG_PRIVACY_FORGET;
                return UMG_OK;
            }
        }
    }
    char ip[48];
    int changed = stale;
    if (c->m->recv_us < c->p->ip_cutoff_us && t->ip.len > 0 && umg_privacy_truncate_ip(t->ip, ip) == UMG_OK &&
        !(strlen(ip) == t->ip.len && memcmp(ip, t->ip.ptr, t->ip.len) == 0)) {
        t->ip = umg_slice(ip, strlen(ip));
        changed = 1;
    }
    if (changed) {
        int rc = c->p->pii ? umg_pii_encrypt_touch(c->p->pii, t, &c->p->arena) : UMG_OK;
        rc = rc ? rc : umg_touch_encode_json(t, c->out);
        if (rc != UMG_OK) {
            return rc;
        }
        c->action = UMG_PRIVACY_REPLACE;
    }
    return UMG_OK;
}

static int apply_touch(umg_privacy_t *p, const umg_bus_msg_t *m, umg_buf_t *out, umg_privacy_action_t *action)
{
    if (m->recv_us >= p->ip_cutoff_us && p->pii == NULL && (p->n == 0 || !forgets_app(p, m->app))) {
        return UMG_OK;
    }
    if (p->tdec == NULL && umg_touch_decoder_new(1 << 20, &p->tdec) != UMG_OK) {
        return UMG_ENOMEM;
    }
    umg_touch_limits_t lim = umg_touch_limits_stored(m->recv_us);
    touch_ctx_t c = {p, m, out, UMG_PRIVACY_KEEP};
    umg_touch_error_t err;
    int rc = umg_touch_decode(p->tdec, m->payload, m->len, &lim, on_stored_touch, &c, &err);
    *action = c.action;
    p->unread += rc != UMG_OK;
    return rc;
}

int umg_privacy_apply(umg_privacy_t *p, umg_event_decoder_t *dec, const umg_bus_msg_t *m, umg_buf_t *out,
                      umg_privacy_action_t *action)
{
    *action = UMG_PRIVACY_KEEP;
    if (m->len == 0) {
        return UMG_OK; /* a tombstone */
    }
    if (m->kind == UMG_BUS_KIND_TOUCH) {
        return apply_touch(p, m, out, action);
    }
    if (m->kind != UMG_BUS_KIND_EVENT) {
        return UMG_OK;
    }
    int need_ip = m->recv_us < p->ip_cutoff_us;
    if (!need_ip && p->pii == NULL && (p->n == 0 || !forgets_app(p, m->app))) {
        return UMG_OK;
    }
    size_t n;
    int batch;
    umg_event_error_t err;
    int rc = umg_event_decoder_parse(dec, m->payload, m->len, 1, &n, &batch, &err);
    if (rc == UMG_OK) {
        umg_event_limits_t lim = umg_event_limits_stored(m->recv_us);
        apply_ctx_t c = {p, m, out, UMG_PRIVACY_KEEP};
        rc = umg_event_decoder_foreach(dec, &lim, on_stored, &c);
        *action = c.action;
    }
    p->unread += rc != UMG_OK;
    return rc;
}

int umg_privacy_may_share_ids(const umg_event_t *ev)
{
    return !ev->device.opt_out && !ev->device.limit_ad_tracking;
}
