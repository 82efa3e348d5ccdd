/*
 * jwt.c - access tokens: key sets, signing and verification through libjwt
 * with the algorithm pinned by the key set, the claims checks, and the
 * Authorization header.
 *
 * libjwt 1.10 is lenient where a verifier must not be: it matches "alg"
 * case-insensitively ("None" is none), checks no signature at all when it is
 * handed no key, takes an HMAC secret from whatever key bytes it is handed
 * (so an RS256 public key PEM doubles as an HS256 secret), decodes base64
 * loosely (Debian's build, through libb64, skips characters it does not know,
 * so junk inside an RS256 or ES256 signature still verifies; '+', '/' and
 * padding pass too), lets the last of two equal JSON keys win, stops reading
 * JSON at a NUL byte, writes one byte past a zero-byte buffer when a token
 * part is empty, and leaves errors on the thread's OpenSSL error queue (where
 * TLS code would trip on them). So everything about the token's shape is
 * decided here first, with a strict base64url decoder and a strict JSON
 * scanner, and libjwt is only asked whether the signature holds; the
 * algorithm it decoded is compared with the pinned one once more afterwards.
 * The claims are read from our own parse of the bytes the signature covers.
 * Base64url must be canonical and ES256 signatures low-S, so a token has
 * exactly one spelling.
 */
#include "umg_jwt.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include <jwt.h>
#include <sodium.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#define JWT_MAX_TOKEN 4096
#define JWT_MAX_DECODED (JWT_MAX_TOKEN / 4 * 3)
#define JWT_MIN_SECRET 32
#define JWT_MAX_SECRET 4096
#define JWT_MAX_PEM 65536
#define JWT_MIN_RSA_BITS 2048
#define JWT_MAX_RSA_BITS 8192
#define JWT_MAX_TIME INT64_C(253402300799) /* 9999-12-31T23:59:59Z */
#define JWT_MAX_MEMBERS 64
#define JWT_MAX_DEPTH 16

/* libjwt takes claim integers as long; times and versions need 64 bits. */
_Static_assert(sizeof(long) >= sizeof(int64_t), "long must hold int64_t");

struct umg_jwt_keys_s {
    umg_jwt_alg_t alg;
    jwt_alg_t jalg;
    char *sign_key; /* HS256 secret or unencrypted PKCS#8 PEM; NULL for a verify-only set */
    size_t sign_len;
    char *verify_key; /* HS256 secret or SubjectPublicKeyInfo PEM */
    size_t verify_len;
    size_t sig_len; /* bytes of a signature under this key */
    /* tokens whose signature verified are remembered by a keyed hash (sig_seen) */
    unsigned char seen_key[crypto_generichash_KEYBYTES];
};

/*
 * Signatures that verified, per thread: a direct-mapped table of keyed BLAKE2b-128 digests of whole tokens.
 * libjwt parses the PEM key on every call (0.7-1 ms for RS256 / ES256; HS256 ~20 us), and a client sends
 * the same access token with each request until it expires. The digest's key is drawn at
 * random for each key set, so a token cannot be made to match another's digest; the claims (expiry) are
 * checked on every call all the same.
 */
#define SEEN_SLOTS 256 /* indexed by the digest's first byte */
typedef struct seen_s {
    const umg_jwt_keys_t *k;
    unsigned char d[16];
} seen_t;
static __thread seen_t sig_seen[SEEN_SLOTS];

static void token_digest(const umg_jwt_keys_t *k, umg_slice_t token, unsigned char d[16])
{
    crypto_generichash(d, 16, (const unsigned char *)token.ptr, token.len, k->seen_key, sizeof(k->seen_key));
}

static void set_msg(char *msg, size_t msglen, const char *text)
{
    if (msg != NULL && msglen > 0) {
        snprintf(msg, msglen, "%s", text);
    }
}

static const char *alg_name(umg_jwt_alg_t alg)
{
    switch (alg) {
    case UMG_JWT_HS256: return "HS256";
    case UMG_JWT_RS256: return "RS256";
    case UMG_JWT_ES256: return "ES256";
    }
    return NULL;
}

umg_jwt_alg_t umg_jwt_alg_parse(const char *name)
{
    if (name == NULL) {
        return 0;
    }
    for (umg_jwt_alg_t a = UMG_JWT_HS256; a <= UMG_JWT_ES256; a++) {
        if (strcmp(name, alg_name(a)) == 0) {
            return a;
        }
    }
    return 0;
}

umg_jwt_alg_t umg_jwt_keys_alg(const umg_jwt_keys_t *k)
{
    return k != NULL ? k->alg : 0;
}

const char *umg_jwt_err_name(umg_jwt_err_t e)
{
    switch (e) {
    case UMG_JWT_OK: return "ok";
    case UMG_JWT_MALFORMED: return "malformed";
    case UMG_JWT_BAD_ALG: return "bad_alg";
    case UMG_JWT_BAD_SIG: return "bad_sig";
    case UMG_JWT_EXPIRED: return "expired";
    case UMG_JWT_NOT_YET: return "not_yet";
    case UMG_JWT_BAD_CLAIMS: return "bad_claims";
    }
    return "unknown";
}

/* ---------------------------------------------------------------- key sets */

static void free_secret(char *p, size_t n)
{
    if (p != NULL) {
        OPENSSL_cleanse(p, n);
        umg_free(p);
    }
}

void umg_jwt_keys_free(umg_jwt_keys_t *k)
{
    if (k == NULL) {
        return;
    }
    free_secret(k->sign_key, k->sign_len);
    free_secret(k->verify_key, k->verify_len);
    umg_free(k);
}

/* A copy with a NUL after it (libjwt is given the length, the NUL is for us). */
static char *copy_key(const void *p, size_t n)
{
    char *c = umg_malloc(n + 1);
    if (c != NULL) {
        memcpy(c, p, n);
        c[n] = '\0';
    }
    return c;
}

static int keys_hmac(umg_jwt_keys_t *k, const uint8_t *secret, size_t secret_len, const char *private_pem,
                     const char *public_pem, char *msg, size_t msglen)
{
    if (private_pem != NULL || public_pem != NULL) {
        set_msg(msg, msglen, "HS256 takes a secret, not PEM keys");
        return UMG_EINVAL;
    }
    if (secret == NULL || secret_len < JWT_MIN_SECRET) {
        set_msg(msg, msglen, "HS256 needs a secret of at least 32 bytes");
        return UMG_EINVAL;
    }
    if (secret_len > JWT_MAX_SECRET) {
        set_msg(msg, msglen, "HS256 secret is longer than 4096 bytes");
        return UMG_EINVAL;
    }
    k->sign_key = copy_key(secret, secret_len);
    k->verify_key = copy_key(secret, secret_len);
    if (k->sign_key == NULL || k->verify_key == NULL) {
        set_msg(msg, msglen, "out of memory");
        return UMG_ENOMEM;
    }
    k->sign_len = k->verify_len = secret_len;
    k->sig_len = 32;
    return UMG_OK;
}

/* Never prompt on a terminal for a passphrase (OpenSSL's default without a callback). */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static int read_pem(const char *pem, int private, EVP_PKEY **out, char *msg, size_t msglen)
{
    const char *what = private ? "private key" : "public key";
    char text[128];
    size_t n = strnlen(pem, JWT_MAX_PEM + 1);
    if (n == 0 || n > JWT_MAX_PEM) {
        snprintf(text, sizeof(text), "%s: empty or longer than %d bytes", what, JWT_MAX_PEM);
        set_msg(msg, msglen, text);
        return UMG_EINVAL;
    }
    BIO *bio = BIO_new_mem_buf(pem, (int)n);
    if (bio == NULL) {
        set_msg(msg, msglen, "out of memory");
        return UMG_ENOMEM;
    }
    *out = private ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL)
                   : PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL);
    BIO_free(bio);
    if (*out == NULL) {
        snprintf(text, sizeof(text), "%s: not %s", what,
                 private ? "an unencrypted PEM private key" : "a PEM public key (BEGIN PUBLIC KEY)");
        set_msg(msg, msglen, text);
        return UMG_EINVAL;
    }
    return UMG_OK;
}

static int check_pkey(umg_jwt_alg_t alg, EVP_PKEY *p, const char *what, char *msg, size_t msglen)
{
    char text[128];
    if (alg == UMG_JWT_RS256) {
        int bits = EVP_PKEY_get_bits(p);
        /* libjwt wants EVP_PKEY_RSA exactly (not RSA-PSS). */
        if (EVP_PKEY_get_id(p) != EVP_PKEY_RSA || bits < JWT_MIN_RSA_BITS || bits > JWT_MAX_RSA_BITS) {
            snprintf(text, sizeof(text), "%s: RS256 needs an RSA key of %d..%d bits", what, JWT_MIN_RSA_BITS,
                     JWT_MAX_RSA_BITS);
            set_msg(msg, msglen, text);
            return UMG_EINVAL;
        }
        return UMG_OK;
    }
    char group[32] = "";
    /* libjwt would hash with SHA-256 on any curve; ES256 means P-256. */
    if (EVP_PKEY_get_id(p) != EVP_PKEY_EC || EVP_PKEY_get_group_name(p, group, sizeof(group), NULL) != 1 ||
        strcmp(group, "prime256v1") != 0) {
        snprintf(text, sizeof(text), "%s: ES256 needs an EC key on P-256 (prime256v1)", what);
        set_msg(msg, msglen, text);
        return UMG_EINVAL;
    }
    return UMG_OK;
}

/* The key in canonical PEM: what libjwt reads back on every call is exactly what was checked here. */
static int write_pem(EVP_PKEY *p, int private, char **out, size_t *outlen)
{
    int rc = UMG_ENOMEM;
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL) {
        return UMG_ENOMEM;
    }
    int ok = private ? PEM_write_bio_PrivateKey(bio, p, NULL, NULL, 0, NULL, NULL) : PEM_write_bio_PUBKEY(bio, p);
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    if (ok == 1 && n > 0 && data != NULL) {
        *out = copy_key(data, (size_t)n);
        if (*out != NULL) {
            *outlen = (size_t)n;
            rc = UMG_OK;
        }
    }
    if (private && data != NULL && n > 0) {
        OPENSSL_cleanse(data, (size_t)n);
    }
    BIO_free(bio);
    return rc;
}

static int keys_pem(umg_jwt_keys_t *k, const uint8_t *secret, size_t secret_len, const char *private_pem,
                    const char *public_pem, char *msg, size_t msglen)
{
    EVP_PKEY *priv = NULL, *pub = NULL;
    int rc = UMG_EINVAL;
    if (secret != NULL || secret_len != 0) {
        set_msg(msg, msglen, "RS256 and ES256 take PEM keys, not a secret");
        goto fail;
    }
    if (private_pem == NULL && public_pem == NULL) {
        set_msg(msg, msglen, "a public or a private key is needed");
        goto fail;
    }
    if (private_pem != NULL && ((rc = read_pem(private_pem, 1, &priv, msg, msglen)) != UMG_OK ||
                                (rc = check_pkey(k->alg, priv, "private key", msg, msglen)) != UMG_OK)) {
        goto fail;
    }
    if (public_pem != NULL && ((rc = read_pem(public_pem, 0, &pub, msg, msglen)) != UMG_OK ||
                               (rc = check_pkey(k->alg, pub, "public key", msg, msglen)) != UMG_OK)) {
        goto fail;
    }
    if (priv != NULL && pub != NULL && EVP_PKEY_eq(priv, pub) != 1) {
        set_msg(msg, msglen, "the public key is not the private key's");
        rc = UMG_EINVAL;
        goto fail;
    }
    if ((priv != NULL && (rc = write_pem(priv, 1, &k->sign_key, &k->sign_len)) != UMG_OK) ||
        (rc = write_pem(pub != NULL ? pub : priv, 0, &k->verify_key, &k->verify_len)) != UMG_OK) {
        set_msg(msg, msglen, "out of memory");
        goto fail;
    }
    k->sig_len = k->alg == UMG_JWT_RS256 ? (size_t)EVP_PKEY_get_size(pub != NULL ? pub : priv) : 64;
    rc = UMG_OK;
fail:
    EVP_PKEY_free(priv);
    EVP_PKEY_free(pub);
    ERR_clear_error();
    return rc;
}

int umg_jwt_keys_new(umg_jwt_alg_t alg, const uint8_t *secret, size_t secret_len, const char *private_pem,
                     const char *public_pem, umg_jwt_keys_t **out, char *msg, size_t msglen)
{
    if (out == NULL) {
        set_msg(msg, msglen, "no place for the key set");
        return UMG_EINVAL;
    }
    if (alg_name(alg) == NULL) {
        set_msg(msg, msglen, "unknown algorithm (HS256, RS256 or ES256)");
        return UMG_EINVAL;
    }
    umg_jwt_keys_t *k = umg_calloc(1, sizeof(*k));
    if (k == NULL) {
        set_msg(msg, msglen, "out of memory");
        return UMG_ENOMEM;
    }
    k->alg = alg;
    k->jalg = alg == UMG_JWT_HS256 ? JWT_ALG_HS256 : alg == UMG_JWT_RS256 ? JWT_ALG_RS256 : JWT_ALG_ES256;
    if (sodium_init() < 0) {
        set_msg(msg, msglen, "libsodium cannot start");
        umg_jwt_keys_free(k);
        return UMG_EIO;
    }
    crypto_generichash_keygen(k->seen_key);
    int rc = alg == UMG_JWT_HS256 ? keys_hmac(k, secret, secret_len, private_pem, public_pem, msg, msglen)
                                  : keys_pem(k, secret, secret_len, private_pem, public_pem, msg, msglen);
    if (rc != UMG_OK) {
        umg_jwt_keys_free(k);
        return rc;
    }
    *out = k;
    return UMG_OK;
}

/* ---------------------------------------------------------------- claim shapes */

static int is_idchar(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* prefix, then 1.. characters of [A-Za-z0-9_-], 39 in all at most. */
static int id_ok(const char *s, size_t n, const char *prefix)
{
    size_t p = strlen(prefix);
    if (n <= p || n > 39 || memcmp(s, prefix, p) != 0) {
        return 0;
    }
    for (size_t i = p; i < n; i++) {
        if (!is_idchar((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

static int jti_ok(const char *s, size_t n)
{
    if (n == 0 || n > 39) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return 0;
        }
    }
    return 1;
}

/* The length of a NUL-terminated field, or SIZE_MAX when it fills its array without one. */
static size_t field_len(const char *s, size_t cap)
{
    const char *z = memchr(s, '\0', cap);
    return z != NULL ? (size_t)(z - s) : SIZE_MAX;
}

static int time_ok(int64_t t)
{
    return t >= 0 && t <= JWT_MAX_TIME;
}

/* ---------------------------------------------------------------- base64url */

static int b64url_val(int c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    return c == '-' ? 62 : c == '_' ? 63 : -1;
}

/*
 * Canonical unpadded base64url only: a length that is not 1 mod 4 and zero
 * bits after the last byte, so every byte string has exactly one encoding
 * and a token cannot be varied without changing what the signature covers.
 */
static int b64url_decode(const char *s, size_t n, uint8_t *out, size_t cap, size_t *outlen)
{
    if (n % 4 == 1 || n / 4 * 3 + (n % 4 != 0 ? n % 4 - 1 : 0) > cap) {
        return -1;
    }
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_val((unsigned char)s[i]);
        if (v < 0) {
            return -1;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) {
        return -1;
    }
    *outlen = o;
    return 0;
}

static void b64url_encode(const uint8_t *p, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | p[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            *out++ = tab[(acc >> bits) & 63];
        }
        acc &= (1u << bits) - 1;
    }
    if (bits > 0) {
        *out = tab[(acc << (6 - bits)) & 63];
    }
}

/* ---------------------------------------------------------------- ECDSA low-S */

/*
 * An ECDSA signature (r, s) has a twin (r, n - s) that verifies as well, so
 * every ES256 token would have two spellings. Signing here always writes the
 * smaller s and verification wants it, so a token has exactly one (we are
 * the only issuer of these tokens, so nothing valid is refused).
 */
static const uint8_t p256_n[32] = {0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
                                   0xff, 0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17,
                                   0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51};
static const uint8_t p256_half_n[32] = {0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff,
                                        0xff, 0xff, 0xff, 0xff, 0xff, 0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b,
                                        0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8};

/* sig is r || s, 32 bytes each, big-endian. */
static int es256_high_s(const uint8_t sig[64])
{
    return memcmp(sig + 32, p256_half_n, 32) > 0;
}

/* Rewrites the signature of a compact ES256 token (in place, same length) to its low-S twin. */
static int es256_make_low_s(char *tok, size_t n)
{
    uint8_t sig[64];
    size_t len;
    char *dot = memrchr(tok, '.', n);
    if (dot == NULL || b64url_decode(dot + 1, n - (size_t)(dot + 1 - tok), sig, sizeof(sig), &len) != 0 || len != 64) {
        return UMG_EINVAL;
    }
    if (es256_high_s(sig)) {
        unsigned borrow = 0;
        for (int i = 31; i >= 0; i--) {
            unsigned d = (unsigned)p256_n[i] - sig[32 + i] - borrow;
            sig[32 + i] = (uint8_t)d;
            borrow = (d >> 8) & 1;
        }
        b64url_encode(sig, sizeof(sig), dot + 1);
    }
    return UMG_OK;
}

/* ---------------------------------------------------------------- signing */

static void make_jti(char out[40])
{
    uint8_t raw[16];
    umg_random_bytes(raw, sizeof(raw));
    umg_hex_encode(raw, sizeof(raw), out);
}

static int claims_signable(const umg_jwt_claims_t *c)
{
    size_t sub = field_len(c->sub, sizeof(c->sub)), org = field_len(c->org, sizeof(c->org));
    size_t jti = field_len(c->jti, sizeof(c->jti));
    return sub != SIZE_MAX && id_ok(c->sub, sub, "usr_") && org != SIZE_MAX && id_ok(c->org, org, "org_") &&
           jti != SIZE_MAX && (jti == 0 || jti_ok(c->jti, jti)) && c->exp > 0 && time_ok(c->exp) && time_ok(c->iat) &&
           time_ok(c->nbf) && c->ver >= 0;
}

int umg_jwt_sign(const umg_jwt_keys_t *k, const umg_jwt_claims_t *c, umg_buf_t *out)
{
    if (k == NULL || c == NULL || out == NULL || k->sign_key == NULL || !claims_signable(c)) {
        return UMG_EINVAL;
    }
    char jti[40];
    if (c->jti[0] == '\0') {
        make_jti(jti);
    } else {
        memcpy(jti, c->jti, sizeof(jti));
    }
    jwt_t *jwt = NULL;
    char *tok = NULL;
    int rc = UMG_ENOMEM;
    /* The inputs are checked, so a failure here is libjwt or jansson out of memory. */
    if (jwt_new(&jwt) != 0 || jwt_set_alg(jwt, k->jalg, (const unsigned char *)k->sign_key, (int)k->sign_len) != 0 ||
        jwt_add_grant(jwt, "iss", UMG_JWT_ISSUER) != 0 || jwt_add_grant(jwt, "aud", UMG_JWT_AUDIENCE) != 0 ||
        jwt_add_grant(jwt, "sub", c->sub) != 0 || jwt_add_grant(jwt, "org", c->org) != 0 ||
        jwt_add_grant(jwt, "jti", jti) != 0 || jwt_add_grant_int(jwt, "exp", (long)c->exp) != 0 ||
        (c->iat != 0 && jwt_add_grant_int(jwt, "iat", (long)c->iat) != 0) ||
        (c->nbf != 0 && jwt_add_grant_int(jwt, "nbf", (long)c->nbf) != 0) ||
        jwt_add_grant_int(jwt, "ver", (long)c->ver) != 0) {
        goto fail;
    }
    errno = 0;
    tok = jwt_encode_str(jwt);
    if (tok == NULL) {
        rc = errno == ENOMEM ? UMG_ENOMEM : UMG_EINVAL;
        goto fail;
    }
    size_t n = strlen(tok);
    rc = n > JWT_MAX_TOKEN ? UMG_EINVAL : k->alg == UMG_JWT_ES256 ? es256_make_low_s(tok, n) : UMG_OK;
    if (rc == UMG_OK) {
        rc = umg_buf_append(out, tok, n);
    }
fail:
    free(tok);
    jwt_free(jwt);
    /* libjwt leaves OpenSSL errors queued on this thread; TLS code reading the queue would trip on them. */
    ERR_clear_error();
    return rc;
}

/* ---------------------------------------------------------------- strict JSON */

/*
 * RFC 8259 JSON, checked strictly (UTF-8, escapes, numbers) with nesting at
 * most JWT_MAX_DEPTH deep. Only the members of the top-level object are
 * reported; their keys must be unique and free of escapes, so there is no
 * question which of two "alg" members counts.
 */
typedef struct jscan_s {
    const uint8_t *p;
    const uint8_t *end;
} jscan_t;

enum { JV_STRING = 1, JV_NUMBER, JV_OTHER };

typedef struct jval_s {
    int type;
    const char *ptr; /* string: the text between the quotes; number: the literal */
    size_t len;
    int escaped; /* string: holds a backslash escape */
    int integer; /* number: no fraction, no exponent */
} jval_t;

static void js_ws(jscan_t *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) {
        s->p++;
    }
}

/* One UTF-8 sequence at a byte >= 0x80: no overlong forms, no surrogates, nothing above U+10FFFF. */
static int js_utf8(jscan_t *s)
{
    uint8_t c = s->p[0];
    size_t n;
    uint32_t cp, min;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2, cp = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3, cp = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return -1;
    }
    if ((size_t)(s->end - s->p) < n) {
        return -1;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s->p[i] & 0xc0) != 0x80) {
            return -1;
        }
        cp = (cp << 6) | (s->p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        return -1;
    }
    s->p += n;
    return 0;
}

/* "\uXXXX" at s->p; the code unit in *cp. */
static int js_u4(jscan_t *s, uint32_t *cp)
{
    if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u') {
        return -1;
    }
    uint32_t v = 0;
    for (int i = 2; i < 6; i++) {
        int h = umg_hexval(s->p[i]);
        if (h < 0) {
            return -1;
        }
        v = (v << 4) | (uint32_t)h;
    }
    s->p += 6;
    *cp = v;
    return 0;
}

static int js_escape(jscan_t *s)
{
    if (s->end - s->p < 2) {
        return -1;
    }
    if (s->p[1] != 'u') {
        if (memchr("\"\\/bfnrt", s->p[1], 8) == NULL) {
            return -1;
        }
        s->p += 2;
        return 0;
    }
    uint32_t hi, lo;
    if (js_u4(s, &hi) != 0 || hi == 0 || (hi >= 0xdc00 && hi <= 0xdfff)) {
        return -1; /* jansson refuses \u0000 too */
    }
    if (hi >= 0xd800 && hi <= 0xdbff && (js_u4(s, &lo) != 0 || lo < 0xdc00 || lo > 0xdfff)) {
        return -1;
    }
    return 0;
}

static int js_string(jscan_t *s, jval_t *v)
{
    s->p++; /* the opening quote */
    const uint8_t *start = s->p;
    v->escaped = 0;
    while (s->p < s->end && *s->p != '"') {
        uint8_t c = *s->p;
        int rc = 0;
        if (c < 0x20) {
            rc = -1;
        } else if (c == '\\') {
            v->escaped = 1;
            rc = js_escape(s);
        } else if (c >= 0x80) {
            rc = js_utf8(s);
        } else {
            s->p++;
        }
        if (rc != 0) {
            return -1;
        }
    }
    if (s->p >= s->end) {
        return -1;
    }
    v->type = JV_STRING;
    v->ptr = (const char *)start;
    v->len = (size_t)(s->p - start);
    s->p++;
    return 0;
}

static int js_digits(jscan_t *s)
{
    const uint8_t *start = s->p;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
        s->p++;
    }
    return s->p > start ? 0 : -1;
}

/* An integer literal that fits int64_t. */
static int jv_int(const jval_t *v, int64_t *out)
{
    if (v->type != JV_NUMBER || !v->integer) {
        return 0;
    }
    size_t i = v->ptr[0] == '-';
    uint64_t limit = i ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, acc = 0;
    for (; i < v->len; i++) {
        unsigned d = (unsigned)(v->ptr[i] - '0');
        if (acc > (limit - d) / 10) {
            return 0;
        }
        acc = acc * 10 + d;
    }
    *out = v->ptr[0] == '-' ? (int64_t)(0 - acc) : (int64_t)acc;
    return 1;
}

static int js_number(jscan_t *s, jval_t *v)
{
    const uint8_t *start = s->p;
    v->integer = 1;
    if (s->p < s->end && *s->p == '-') {
        s->p++;
    }
    if (s->p < s->end && *s->p == '0') {
        s->p++;
    } else if (js_digits(s) != 0) {
        return -1;
    }
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        v->integer = 0;
        if (js_digits(s) != 0) {
            return -1;
        }
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        v->integer = 0;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-')) {
            s->p++;
        }
        if (js_digits(s) != 0) {
            return -1;
        }
    }
    v->type = JV_NUMBER;
    v->ptr = (const char *)start;
    v->len = (size_t)(s->p - start);
    int64_t x;
    /* jansson refuses integers beyond int64_t; so do we, to refuse what it would refuse for the same reason. */
    return v->integer && !jv_int(v, &x) ? -1 : 0;
}

static int js_literal(jscan_t *s, const char *lit, jval_t *v)
{
    size_t n = strlen(lit);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0) {
        return -1;
    }
    s->p += n;
    v->type = JV_OTHER;
    return 0;
}

static int js_value(jscan_t *s, jval_t *v, int depth);

/* An object or array at s->p (nested values only; their keys are not reported). */
static int js_container(jscan_t *s, jval_t *v, int depth)
{
    if (depth >= JWT_MAX_DEPTH) {
        return -1;
    }
    uint8_t close = *s->p == '{' ? '}' : ']';
    s->p++;
    js_ws(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        v->type = JV_OTHER;
        return 0;
    }
    for (;;) {
        jval_t m;
        if (close == '}') {
            js_ws(s);
            if (s->p >= s->end || *s->p != '"' || js_string(s, &m) != 0) {
                return -1;
            }
            js_ws(s);
            if (s->p >= s->end || *s->p != ':') {
                return -1;
            }
            s->p++;
        }
        if (js_value(s, &m, depth + 1) != 0) {
            return -1;
        }
        js_ws(s);
        if (s->p >= s->end) {
            return -1;
        }
        if (*s->p == close) {
            s->p++;
            v->type = JV_OTHER;
            return 0;
        }
        if (*s->p != ',') {
            return -1;
        }
        s->p++;
    }
}

static int js_value(jscan_t *s, jval_t *v, int depth)
{
    js_ws(s);
    if (s->p >= s->end) {
        return -1;
    }
    switch (*s->p) {
    case '"': return js_string(s, v);
    case '{':
    case '[': return js_container(s, v, depth);
    case 't': return js_literal(s, "true", v);
    case 'f': return js_literal(s, "false", v);
    case 'n': return js_literal(s, "null", v);
    default: return js_number(s, v);
    }
}

typedef void (*js_member_fn)(void *ctx, umg_slice_t key, const jval_t *v);

/* Text that is exactly one JSON object; fn sees each member. 0, or -1 when malformed. */
static int js_object(const uint8_t *p, size_t n, js_member_fn fn, void *ctx)
{
    jscan_t s = {p, p + n};
    umg_slice_t keys[JWT_MAX_MEMBERS];
    size_t nkeys = 0;
    js_ws(&s);
    if (s.p >= s.end || *s.p != '{') {
        return -1;
    }
    s.p++;
    js_ws(&s);
    if (s.p < s.end && *s.p == '}') {
        s.p++;
    } else {
        for (;;) {
            jval_t k, v;
            js_ws(&s);
            if (s.p >= s.end || *s.p != '"' || js_string(&s, &k) != 0 || k.escaped || nkeys == JWT_MAX_MEMBERS) {
                return -1;
            }
            for (size_t i = 0; i < nkeys; i++) {
                if (keys[i].len == k.len && memcmp(keys[i].ptr, k.ptr, k.len) == 0) {
                    return -1;
                }
            }
            keys[nkeys++] = umg_slice(k.ptr, k.len);
            js_ws(&s);
            if (s.p >= s.end || *s.p != ':') {
                return -1;
            }
            s.p++;
            if (js_value(&s, &v, 1) != 0) {
                return -1;
            }
            fn(ctx, umg_slice(k.ptr, k.len), &v);
            js_ws(&s);
            if (s.p >= s.end) {
                return -1;
            }
            if (*s.p == '}') {
                s.p++;
                break;
            }
            if (*s.p != ',') {
                return -1;
            }
            s.p++;
        }
    }
    js_ws(&s);
    return s.p == s.end ? 0 : -1;
}

/* An unescaped string equal to lit. */
static int jv_is(const jval_t *v, const char *lit)
{
    return v->type == JV_STRING && !v->escaped && umg_slice_eq(umg_slice(v->ptr, v->len), lit);
}

/* ---------------------------------------------------------------- verification */

typedef struct hdr_s {
    jval_t alg;
    jval_t typ;
    int have_alg;
    int have_typ;
    int crit;
} hdr_t;

static void on_header(void *ctx, umg_slice_t key, const jval_t *v)
{
    hdr_t *h = ctx;
    if (umg_slice_eq(key, "alg")) {
        h->alg = *v;
        h->have_alg = 1;
    } else if (umg_slice_eq(key, "typ")) {
        h->typ = *v;
        h->have_typ = 1;
    } else if (umg_slice_eq(key, "crit")) {
        h->crit = 1;
    }
}

enum {
    CL_ISS = 1 << 0,
    CL_AUD = 1 << 1,
    CL_SUB = 1 << 2,
    CL_ORG = 1 << 3,
    CL_JTI = 1 << 4,
    CL_EXP = 1 << 5,
    CL_NBF = 1 << 6,
    CL_IAT = 1 << 7,
    CL_VER = 1 << 8,
    CL_REQUIRED = CL_ISS | CL_AUD | CL_SUB | CL_ORG | CL_JTI | CL_EXP | CL_VER,
};

typedef struct body_s {
    umg_jwt_claims_t c;
    unsigned seen; /* CL_* present and well formed */
    int bad;       /* a known claim has the wrong type or shape */
} body_t;

static void claim_str(body_t *b, const jval_t *v, char *dst, unsigned bit, const char *prefix)
{
    int ok = v->type == JV_STRING && !v->escaped &&
             (prefix != NULL ? id_ok(v->ptr, v->len, prefix) : jti_ok(v->ptr, v->len));
    if (!ok) {
        b->bad = 1;
        return;
    }
    memcpy(dst, v->ptr, v->len); /* at most 39 bytes, checked above */
    dst[v->len] = '\0';
    b->seen |= bit;
}

static void claim_int(body_t *b, const jval_t *v, int64_t *dst, unsigned bit, int is_time)
{
    int64_t x;
    if (!jv_int(v, &x) || x < 0 || (is_time && x > JWT_MAX_TIME)) {
        b->bad = 1;
        return;
    }
    *dst = x;
    b->seen |= bit;
}

static void on_claim(void *ctx, umg_slice_t key, const jval_t *v)
{
    body_t *b = ctx;
    if (umg_slice_eq(key, "iss")) {
        b->bad |= !jv_is(v, UMG_JWT_ISSUER);
        b->seen |= CL_ISS;
    } else if (umg_slice_eq(key, "aud")) {
        b->bad |= !jv_is(v, UMG_JWT_AUDIENCE);
        b->seen |= CL_AUD;
    } else if (umg_slice_eq(key, "sub")) {
        claim_str(b, v, b->c.sub, CL_SUB, "usr_");
    } else if (umg_slice_eq(key, "org")) {
        claim_str(b, v, b->c.org, CL_ORG, "org_");
    } else if (umg_slice_eq(key, "jti")) {
        claim_str(b, v, b->c.jti, CL_JTI, NULL);
    } else if (umg_slice_eq(key, "exp")) {
        claim_int(b, v, &b->c.exp, CL_EXP, 1);
    } else if (umg_slice_eq(key, "nbf")) {
        claim_int(b, v, &b->c.nbf, CL_NBF, 1);
    } else if (umg_slice_eq(key, "iat")) {
        claim_int(b, v, &b->c.iat, CL_IAT, 1);
    } else if (umg_slice_eq(key, "ver")) {
        claim_int(b, v, &b->c.ver, CL_VER, 0);
    }
}

/* Exactly two dots, base64url between them, header and payload not empty (the signature is checked later). */
static int split(umg_slice_t t, size_t *dot1, size_t *dot2)
{
    size_t dots[2], n = 0;
    for (size_t i = 0; i < t.len; i++) {
        if (t.ptr[i] == '.') {
            if (n == 2) {
                return -1;
            }
            dots[n++] = i;
        } else if (b64url_val((unsigned char)t.ptr[i]) < 0) {
            return -1;
        }
    }
    if (n != 2 || dots[0] == 0 || dots[1] == dots[0] + 1) {
        return -1;
    }
    *dot1 = dots[0];
    *dot2 = dots[1];
    return 0;
}

static umg_jwt_err_t check_header(const umg_jwt_keys_t *k, const uint8_t *p, size_t n)
{
    hdr_t h;
    memset(&h, 0, sizeof(h));
    if (js_object(p, n, on_header, &h) != 0) {
        return UMG_JWT_MALFORMED;
    }
    if (!h.have_alg || !jv_is(&h.alg, alg_name(k->alg))) {
        return UMG_JWT_BAD_ALG;
    }
    /* No extension is understood here, so none may be critical (RFC 7515 4.1.11). */
    if (h.crit || (h.have_typ && !jv_is(&h.typ, "JWT"))) {
        return UMG_JWT_MALFORMED;
    }
    return UMG_JWT_OK;
}

/* libjwt checks the signature; it sees only tokens whose shape and header passed above. Signatures that
 * verified are remembered (sig_seen). */
static umg_jwt_err_t check_signature(const umg_jwt_keys_t *k, umg_slice_t token)
{
    unsigned char d[16];
    token_digest(k, token, d);
    seen_t *slot = &sig_seen[d[0]];
    if (slot->k == k && sodium_memcmp(slot->d, d, sizeof(d)) == 0) {
        return UMG_JWT_OK;
    }
    char tok[JWT_MAX_TOKEN + 1];
    memcpy(tok, token.ptr, token.len);
    tok[token.len] = '\0';
    jwt_t *jwt = NULL;
    umg_jwt_err_t e = UMG_JWT_OK;
    if (jwt_decode(&jwt, tok, (const unsigned char *)k->verify_key, (int)k->verify_len) != 0 || jwt == NULL) {
        e = UMG_JWT_BAD_SIG;
    } else if (jwt_get_alg(jwt) != k->jalg) {
        e = UMG_JWT_BAD_ALG; /* cannot happen after check_header; kept against algorithm confusion */
    }
    jwt_free(jwt);
    ERR_clear_error();
    if (e == UMG_JWT_OK) {
        slot->k = k;
        memcpy(slot->d, d, sizeof(d));
    }
    return e;
}

static umg_jwt_err_t check_claims(const body_t *b, int64_t now_s)
{
    if (b->bad || (b->seen & CL_REQUIRED) != CL_REQUIRED) {
        return UMG_JWT_BAD_CLAIMS;
    }
    /* Times are at most JWT_MAX_TIME, so adding the leeway cannot overflow. */
    if (b->c.exp + UMG_JWT_LEEWAY_S <= now_s) {
        return UMG_JWT_EXPIRED;
    }
    if (((b->seen & CL_NBF) && b->c.nbf - UMG_JWT_LEEWAY_S > now_s) ||
        ((b->seen & CL_IAT) && b->c.iat - UMG_JWT_LEEWAY_S > now_s)) {
        return UMG_JWT_NOT_YET;
    }
    return UMG_JWT_OK;
}

umg_jwt_err_t umg_jwt_verify(const umg_jwt_keys_t *k, umg_slice_t token, int64_t now_s, umg_jwt_claims_t *c)
{
    uint8_t buf[JWT_MAX_DECODED];
    size_t dot1, dot2, n;
    if (k == NULL || c == NULL || token.ptr == NULL || token.len == 0 || token.len > JWT_MAX_TOKEN ||
        split(token, &dot1, &dot2) != 0) {
        return UMG_JWT_MALFORMED;
    }
    if (b64url_decode(token.ptr, dot1, buf, sizeof(buf), &n) != 0) {
        return UMG_JWT_MALFORMED;
    }
    umg_jwt_err_t e = check_header(k, buf, n);
    if (e != UMG_JWT_OK) {
        return e;
    }
    body_t b;
    memset(&b, 0, sizeof(b));
    if (b64url_decode(token.ptr + dot1 + 1, dot2 - dot1 - 1, buf, sizeof(buf), &n) != 0 ||
        js_object(buf, n, on_claim, &b) != 0) {
        return UMG_JWT_MALFORMED;
    }
    if (b64url_decode(token.ptr + dot2 + 1, token.len - dot2 - 1, buf, sizeof(buf), &n) != 0) {
        return UMG_JWT_MALFORMED;
    }
    /* An empty or short signature never reaches libjwt (it overruns a zero-byte buffer on an empty part). */
    if (n != k->sig_len || (k->alg == UMG_JWT_ES256 && es256_high_s(buf))) {
        return UMG_JWT_BAD_SIG;
    }
    if ((e = check_signature(k, token)) != UMG_JWT_OK || (e = check_claims(&b, now_s)) != UMG_JWT_OK) {
        return e;
    }
    *c = b.c;
    return UMG_JWT_OK;
}

/* ---------------------------------------------------------------- Authorization */

int umg_auth_bearer(umg_slice_t header, umg_slice_t *token)
{
    static const char scheme[] = "bearer";
    if (header.len == 0) {
        return UMG_ENOENT;
    }
    if (header.ptr == NULL || token == NULL || header.len < sizeof(scheme)) {
        return UMG_EINVAL;
    }
    for (size_t i = 0; i < sizeof(scheme) - 1; i++) {
        int ch = (unsigned char)header.ptr[i];
        if ((ch >= 'A' && ch <= 'Z' ? ch + 32 : ch) != scheme[i]) {
            return UMG_EINVAL;
        }
    }
    size_t i = sizeof(scheme) - 1;
    if (header.ptr[i] != ' ') {
        return UMG_EINVAL;
    }
    while (i < header.len && header.ptr[i] == ' ') {
        i++;
    }
    size_t n = header.len - i;
    if (n == 0 || n > JWT_MAX_TOKEN) {
        return UMG_EINVAL;
    }
    for (size_t j = i; j < header.len; j++) {
        if (header.ptr[j] != '.' && b64url_val((unsigned char)header.ptr[j]) < 0) {
            return UMG_EINVAL;
        }
    }
    *token = umg_slice(header.ptr + i, n);
    return UMG_OK;
}
