/*
 * pii.c - AES-256-GCM encryption of selected PII fields at rest (see
 * umg_privacy.h). One cipher context per thread; the key schedule is set per
 * call (cheap with AES-NI).
 */
#include "umg_privacy.h"
#include "umg_touch.h"

#include <openssl/evp.h>
#include <sodium.h>
#include <stdlib.h>

#define MAX_KEYS 64
#define NONCE 12
#define TAG 16

typedef struct pii_key_s {
    char id[17];
    uint8_t k[32];
} pii_key_t;

struct umg_pii_s {
    pii_key_t keys[MAX_KEYS];
    int nkeys; /* keys[nkeys - 1] encrypts */
    uint32_t fields;
};

static const struct {
    const char *name;
    uint32_t bit;
} field_bits[] = {{"ip", UMG_PII_IP},     {"user_id", UMG_PII_USER_ID},    {"idfa", UMG_PII_IDFA},
                  {"idfv", UMG_PII_IDFV}, {"gaid", UMG_PII_GAID},          {"android_id", UMG_PII_ANDROID_ID},
                  {"oaid", UMG_PII_OAID}, {"custom_id", UMG_PII_CUSTOM_ID}};

static int parse_fields(const char *s, uint32_t *out, char *msg, size_t msglen)
{
    *out = 0;
    while (s != NULL && *s) {
        size_t n = strcspn(s, ",");
        size_t i = 0;
        for (; i < UMG_ARRAY_SIZE(field_bits); i++) {
            if (strlen(field_bits[i].name) == n && memcmp(field_bits[i].name, s, n) == 0) {
                *out |= field_bits[i].bit;
                break;
            }
        }
        if (i == UMG_ARRAY_SIZE(field_bits)) {
            snprintf(msg, msglen,
                     "privacy.encrypt_fields: unknown field '%.*s' (ip, user_id, idfa, idfv, gaid, "
                     "android_id, oaid, custom_id)",
                     (int)UMG_MIN(n, 40), s);
            return UMG_EINVAL;
        }
        s += n + (s[n] == ',');
    }
    return UMG_OK;
}

int umg_pii_load(const char *key_file, const char *fields, umg_pii_t **out, char *msg, size_t msglen)
{
    umg_pii_t *p = umg_calloc(1, sizeof(*p));
    if (p == NULL) {
        return UMG_ENOMEM;
    }
    int rc = parse_fields(fields, &p->fields, msg, msglen);
    FILE *f = rc == UMG_OK ? fopen(key_file, "re") : NULL;
    if (rc == UMG_OK && f == NULL) {
        snprintf(msg, msglen, "cannot read privacy.pii_key_file %s", key_file);
        rc = UMG_EINVAL;
    }
    char line[256];
    int lineno = 0;
    while (rc == UMG_OK && fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        char id[64], hex[128];
        if (line[0] == '#' || line[strspn(line, " \t\r\n")] == '\0') {
            continue;
        }
        if (sscanf(line, "%63s %127s", id, hex) != 2 || strlen(id) > 16 || strlen(hex) != 64 ||
            strspn(id, "abcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(id) || p->nkeys == MAX_KEYS) {
            snprintf(msg, msglen, "%s line %d: expected 'KEYID HEX64' (KEYID: 1-16 of [a-z0-9_-], at most %d keys)",
                     key_file, lineno, MAX_KEYS);
            rc = UMG_EINVAL;
            break;
        }
        pii_key_t *k = &p->keys[p->nkeys];
        for (int i = 0; i < 32 && rc == UMG_OK; i++) {
            int hi = umg_hexval(hex[2 * i]), lo = umg_hexval(hex[2 * i + 1]);
            if (hi < 0 || lo < 0) {
                snprintf(msg, msglen, "%s line %d: the key is not 64 hex digits", key_file, lineno);
                rc = UMG_EINVAL;
            }
            k->k[i] = (uint8_t)(hi * 16 + lo);
        }
        for (int i = 0; i < p->nkeys && rc == UMG_OK; i++) {
            if (strcmp(p->keys[i].id, id) == 0) {
                snprintf(msg, msglen, "%s line %d: key id %s used twice", key_file, lineno, id);
                rc = UMG_EINVAL;
            }
        }
        memcpy(k->id, id, strlen(id) + 1); /* at most 16 bytes, checked above */
        p->nkeys += rc == UMG_OK;
        sodium_memzero(hex, sizeof(hex));
    }
    sodium_memzero(line, sizeof(line));
    if (f != NULL) {
        fclose(f);
    }
    if (rc == UMG_OK && p->nkeys == 0) {
        snprintf(msg, msglen, "%s holds no key", key_file);
        rc = UMG_EINVAL;
    }
    if (rc != UMG_OK) {
        umg_pii_free(p);
        return rc;
    }
    *out = p;
    return UMG_OK;
}

void umg_pii_free(umg_pii_t *p)
{
    if (p != NULL) {
        sodium_memzero(p, sizeof(*p));
        umg_free(p);
    }
}

int umg_pii_generation(const umg_pii_t *p)
{
    return p->nkeys;
}

static EVP_CIPHER_CTX *cipher_ctx(void)
{
    static __thread EVP_CIPHER_CTX *ctx;
    if (ctx == NULL) {
        ctx = EVP_CIPHER_CTX_new();
    }
    return ctx;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static size_t b64_encode(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
        out[o++] = b64[(v >> 18) & 63];
        out[o++] = b64[(v >> 12) & 63];
        if (i + 1 < n) {
            out[o++] = b64[(v >> 6) & 63];
        }
        if (i + 2 < n) {
            out[o++] = b64[v & 63];
        }
    }
    return o;
}

static int b64_val(char c)
{
    const char *p = c ? strchr(b64, c) : NULL;
    return p ? (int)(p - b64) : -1;
}

static long b64_decode(const char *in, size_t n, uint8_t *out, size_t cap)
{
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_val(in[i]);
        if (v < 0) {
            return -1;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o == cap) {
                return -1;
            }
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return (long)o;
}

int umg_pii_encrypt(const umg_pii_t *p, const char *field, umg_slice_t value, umg_arena_t *a, umg_slice_t *out)
{
    if (value.len > 1024) {
        return UMG_ERANGE;
    }
    const pii_key_t *k = &p->keys[p->nkeys - 1];
    uint8_t buf[NONCE + 1024 + TAG];
    umg_random_bytes(buf, NONCE);
    EVP_CIPHER_CTX *ctx = cipher_ctx();
    int len = 0, fin = 0;
    if (ctx == NULL || EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, k->k, buf) != 1 ||
        EVP_EncryptUpdate(ctx, NULL, &len, (const uint8_t *)field, (int)strlen(field)) != 1 ||
        EVP_EncryptUpdate(ctx, buf + NONCE, &len, (const uint8_t *)value.ptr, (int)value.len) != 1 ||
        EVP_EncryptFinal_ex(ctx, buf + NONCE + len, &fin) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG, buf + NONCE + len + fin) != 1) {
        return UMG_EIO;
    }
    size_t raw = NONCE + (size_t)len + (size_t)fin + TAG;
    size_t idl = strlen(k->id);
    char *s = umg_arena_alloc(a, 7 + idl + 1 + (raw + 2) / 3 * 4 + 1);
    if (s == NULL) {
        return UMG_ENOMEM;
    }
    memcpy(s, "enc:v1:", 7);
    memcpy(s + 7, k->id, idl);
    s[7 + idl] = ':';
    size_t n = 8 + idl + b64_encode(buf, raw, s + 8 + idl);
    *out = umg_slice(s, n);
    return UMG_OK;
}

/* The key index of an encrypted value: -2 when not encrypted, -1 for an unknown key. */
static int key_of(const umg_pii_t *p, umg_slice_t value, const char **rest, size_t *rest_len)
{
    if (value.len <= 8 || memcmp(value.ptr, "enc:v1:", 7) != 0) {
        return -2;
    }
    const char *id = value.ptr + 7, *colon = memchr(id, ':', value.len - 7);
    if (colon == NULL) {
        return -1;
    }
    size_t idl = (size_t)(colon - id);
    *rest = colon + 1;
    *rest_len = value.len - 8 - idl;
    for (int i = 0; i < p->nkeys; i++) {
        if (strlen(p->keys[i].id) == idl && memcmp(p->keys[i].id, id, idl) == 0) {
            return i;
        }
    }
    return -1;
}

int umg_pii_decrypt(const umg_pii_t *p, const char *field, umg_slice_t value, char *dst, size_t cap, size_t *len)
{
    if (value.len <= 8 || memcmp(value.ptr, "enc:v1:", 7) != 0) {
        return UMG_ENOENT;
    }
    const char *rest;
    size_t rest_len;
    int ki = key_of(p, value, &rest, &rest_len);
    if (ki < 0) {
        return UMG_EAUTH;
    }
    const pii_key_t *k = &p->keys[ki];
    uint8_t raw[NONCE + 1024 + TAG];
    long n = b64_decode(rest, rest_len, raw, sizeof(raw));
    if (n < NONCE + TAG) {
        return UMG_EAUTH;
    }
    size_t ct = (size_t)n - NONCE - TAG;
    if (ct + 1 > cap) {
        return UMG_ERANGE;
    }
    EVP_CIPHER_CTX *ctx = cipher_ctx();
    int l = 0, fin = 0;
    if (ctx == NULL || EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, k->k, raw) != 1 ||
        EVP_DecryptUpdate(ctx, NULL, &l, (const uint8_t *)field, (int)strlen(field)) != 1 ||
        EVP_DecryptUpdate(ctx, (uint8_t *)dst, &l, raw + NONCE, (int)ct) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG, raw + NONCE + ct) != 1 ||
        EVP_DecryptFinal_ex(ctx, (uint8_t *)dst + l, &fin) != 1) {
        sodium_memzero(dst, cap);
        return UMG_EAUTH;
    }
    *len = (size_t)l + (size_t)fin;
    dst[*len] = '\0';
    return UMG_OK;
}

int umg_pii_stale(const umg_pii_t *p, umg_slice_t value)
{
    const char *rest;
    size_t rest_len;
    int ki = key_of(p, value, &rest, &rest_len);
    return ki >= 0 && ki != p->nkeys - 1;
}

/* A PII field of a record: its name (the associated data), its bit in the configuration, its value. */
typedef struct pii_field_s {
    const char *name;
    uint32_t bit;
    umg_slice_t *v;
} pii_field_t;

static int encrypt_fields(const umg_pii_t *p, pii_field_t *f, size_t n, umg_arena_t *a)
{
    for (size_t i = 0; i < n; i++) {
        /* Always, even a value that looks encrypted already: a client must not be able to store
         * a field in the clear (or one no key opens) by sending "enc:v1:..." itself. */
        if ((p->fields & f[i].bit) && f[i].v->len > 0) {
            int rc = umg_pii_encrypt(p, f[i].name, *f[i].v, a, f[i].v);
            if (rc != UMG_OK) {
                return rc;
            }
        }
    }
    return UMG_OK;
}

/* Decrypts what it can; a field no key opens is left as stored (UMG_EAUTH after the others). */
static int decrypt_fields(const umg_pii_t *p, pii_field_t *f, size_t n, umg_arena_t *a, int *stale)
{
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        if (f[i].v->len <= 7 || memcmp(f[i].v->ptr, "enc:v1:", 7) != 0) {
            continue;
        }
        if (stale != NULL) {
            *stale |= umg_pii_stale(p, *f[i].v);
        }
        char *dst = umg_arena_alloc(a, f[i].v->len);
        size_t len;
        if (dst == NULL) {
            return UMG_ENOMEM;
        }
        int rc = umg_pii_decrypt(p, f[i].name, *f[i].v, dst, f[i].v->len, &len);
        if (rc == UMG_OK) {
            *f[i].v = umg_slice(dst, len);
        } else if (rc != UMG_EAUTH) {
            return rc;
        } else {
            failed++;
        }
    }
    return failed ? UMG_EAUTH : UMG_OK;
}

#define EVENT_FIELDS(ev)                                                                                               \
    pii_field_t f[] = {{"ip", UMG_PII_IP, &(ev)->ip},                                                                  \
                       {"user_id", UMG_PII_USER_ID, &(ev)->user_id},                                                   \
                       {"idfa", UMG_PII_IDFA, &(ev)->device.idfa},                                                     \
                       {"idfv", UMG_PII_IDFV, &(ev)->device.idfv},                                                     \
                       {"gaid", UMG_PII_GAID, &(ev)->device.gaid},                                                     \
                       {"android_id", UMG_PII_ANDROID_ID, &(ev)->device.android_id},                                   \
                       {"oaid", UMG_PII_OAID, &(ev)->device.oaid},                                                     \
                       {"custom_id", UMG_PII_CUSTOM_ID, &(ev)->device.custom_id}}

/* Touches have ip and the device identifiers, no user_id. */
#define TOUCH_FIELDS(t)                                                                                                \
    pii_field_t f[] = {{"ip", UMG_PII_IP, &(t)->ip},                                                                   \
                       {"idfa", UMG_PII_IDFA, &(t)->idfa},                                                             \
                       {"idfv", UMG_PII_IDFV, &(t)->idfv},                                                             \
                       {"gaid", UMG_PII_GAID, &(t)->gaid},                                                             \
                       {"android_id", UMG_PII_ANDROID_ID, &(t)->android_id},                                           \
                       {"oaid", UMG_PII_OAID, &(t)->oaid},                                                             \
                       {"custom_id", UMG_PII_CUSTOM_ID, &(t)->custom_id}}

int umg_pii_encrypt_event(const umg_pii_t *p, umg_event_t *ev, umg_arena_t *a)
{
    EVENT_FIELDS(ev);
    return encrypt_fields(p, f, UMG_ARRAY_SIZE(f), a);
}

int umg_pii_decrypt_event(const umg_pii_t *p, umg_event_t *ev, umg_arena_t *a)
{
    EVENT_FIELDS(ev);
    return decrypt_fields(p, f, UMG_ARRAY_SIZE(f), a, NULL);
}

int umg_pii_encrypt_touch(const umg_pii_t *p, umg_touch_t *t, umg_arena_t *a)
{
    TOUCH_FIELDS(t);
    return encrypt_fields(p, f, UMG_ARRAY_SIZE(f), a);
}

int umg_pii_decrypt_touch(const umg_pii_t *p, umg_touch_t *t, umg_arena_t *a, int *stale)
{
    TOUCH_FIELDS(t);
    return decrypt_fields(p, f, UMG_ARRAY_SIZE(f), a, stale);
}
