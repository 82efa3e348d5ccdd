/*
 * fuzz_auth.c - feeds arbitrary bytes to the Authorization header parser and
 * to token verification against an HS256 and an ES256 key set made once.
 * Nothing may crash or leak, and verification may accept only the exact
 * bytes of a token signed during setup: anything else it accepts is a
 * forgery. The input is also tried as the signature of, and as the
 * header.payload before, each setup token; and, signed here with the HS256
 * secret, as a payload and as a header, which is the only way the claims
 * checks see fuzzed JSON behind a valid signature.
 *
 *   build: meson setup build-fuzz -Dfuzz=true (clang); run:
 *   build-fuzz/tests/fuzz/fuzz_auth tests/fuzz/corpus/auth
 */
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "umg_jwt.h"

#define FUZZ_NOW INT64_C(1795773600) /* 2026-11-27T10:00:00Z */
#define FUZZ_SECRET "fuzz-auth-secret-0123456789abcdef"
#define FUZZ_MAX 4096
#define FUZZ_HS_HDR "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define FUZZ_PAYLOAD                                                                                                   \
    "{\"aud\":\"unmogrowp-api\",\"exp\":1795777200,\"iat\":1795773540,\"iss\":\"unmogrowp\",\"jti\":"                  \
    "\"00112233445566778899aabbccddeeff\",\"org\":\"org_0a1b2c3d\",\"sub\":\"usr_00ff00ff\",\"ver\":3}"

typedef struct fuzz_s {
    umg_jwt_keys_t *hs;
    umg_jwt_keys_t *es;
    umg_buf_t hs_tok; /* deterministic: the same bytes as the seed corpus/auth/valid_hs256 */
    umg_buf_t es_tok;
    char buf[3 * FUZZ_MAX];
} fuzz_t;

static fuzz_t F;

static void die(const char *what, const char *p, size_t n)
{
    fprintf(stderr, "fuzz_auth: %s\n  input: %.*s\n", what, (int)(n < 8192 ? n : 8192), p);
    abort();
}

static void setup(void)
{
    static const umg_jwt_claims_t c = {
        .sub = "usr_00ff00ff",
        .org = "org_0a1b2c3d",
        .jti = "00112233445566778899aabbccddeeff",
        .iat = FUZZ_NOW - 60,
        .exp = FUZZ_NOW + 3600,
        .ver = 3,
    };
    char msg[256] = "";
    EVP_PKEY *p = EVP_EC_gen("P-256");
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem = NULL;
    if (p == NULL || bio == NULL || PEM_write_bio_PrivateKey(bio, p, NULL, NULL, 0, NULL, NULL) != 1 ||
        BIO_write(bio, "", 1) != 1 || BIO_get_mem_data(bio, &pem) <= 0) {
        die("could not make an EC key", "", 0);
    }
    if (umg_jwt_keys_new(UMG_JWT_HS256, (const uint8_t *)FUZZ_SECRET, strlen(FUZZ_SECRET), NULL, NULL, &F.hs, msg,
                         sizeof(msg)) != UMG_OK ||
        umg_jwt_keys_new(UMG_JWT_ES256, NULL, 0, pem, NULL, &F.es, msg, sizeof(msg)) != UMG_OK) {
        die(msg, "", 0);
    }
    BIO_free(bio);
    EVP_PKEY_free(p);
    if (umg_jwt_sign(F.hs, &c, &F.hs_tok) != UMG_OK || umg_jwt_sign(F.es, &c, &F.es_tok) != UMG_OK) {
        die("could not sign", "", 0);
    }
    umg_jwt_claims_t out;
    if (umg_jwt_verify(F.hs, umg_slice(F.hs_tok.ptr, F.hs_tok.len), FUZZ_NOW, &out) != UMG_JWT_OK ||
        umg_jwt_verify(F.es, umg_slice(F.es_tok.ptr, F.es_tok.len), FUZZ_NOW, &out) != UMG_JWT_OK) {
        die("the setup tokens do not verify", F.hs_tok.ptr, F.hs_tok.len);
    }
}

static int is_setup_token(const umg_jwt_keys_t *k, const char *p, size_t n)
{
    const umg_buf_t *t = k == F.hs ? &F.hs_tok : &F.es_tok;
    return n == t->len && memcmp(p, t->ptr, n) == 0;
}

static void check_claims(const umg_jwt_claims_t *c, const char *p, size_t n)
{
    if (memchr(c->sub, 0, sizeof(c->sub)) == NULL || strncmp(c->sub, "usr_", 4) != 0 ||
        memchr(c->org, 0, sizeof(c->org)) == NULL || strncmp(c->org, "org_", 4) != 0 ||
        memchr(c->jti, 0, sizeof(c->jti)) == NULL || c->jti[0] == '\0' || c->exp + UMG_JWT_LEEWAY_S <= FUZZ_NOW ||
        c->ver < 0) {
        die("accepted claims break the rules", p, n);
    }
}

/* Verifies p; an acceptance must be a setup token unless the token was signed here (self_signed). */
static umg_jwt_err_t verify(const umg_jwt_keys_t *k, const char *p, size_t n, int self_signed)
{
    umg_jwt_claims_t c;
    memset(&c, 0x5a, sizeof(c));
    umg_jwt_err_t e = umg_jwt_verify(k, umg_slice(p, n), FUZZ_NOW, &c);
    if (strcmp(umg_jwt_err_name(e), "unknown") == 0) {
        die("verify returned an unknown code", p, n);
    }
    if (e != UMG_JWT_OK) {
        if ((unsigned char)c.sub[0] != 0x5a) {
            die("claims written for a refused token", p, n);
        }
        return e;
    }
    if (!self_signed && !is_setup_token(k, p, n)) {
        die("FORGERY: a token that was never signed verified", p, n);
    }
    check_claims(&c, p, n);
    return e;
}

static void check_bearer(const char *p, size_t n)
{
    umg_slice_t t = UMG_SLICE_NULL;
    int rc = umg_auth_bearer(umg_slice(p, n), &t);
    if (rc == UMG_ENOENT) {
        if (n != 0) {
            die("a present header reported absent", p, n);
        }
        return;
    }
    if (rc == UMG_EINVAL) {
        return;
    }
    if (rc != UMG_OK || t.ptr < p + 7 || t.len == 0 || t.len > FUZZ_MAX || t.ptr + t.len != p + n ||
        strncasecmp(p, "bearer ", 7) != 0) {
        die("umg_auth_bearer returned a bad token slice", p, n);
    }
    for (size_t i = 0; i < t.len; i++) {
        if (memchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.", t.ptr[i], 65) == NULL) {
            die("the token holds a character outside base64url and '.'", p, n);
        }
    }
    verify(F.hs, t.ptr, t.len, 0);
    verify(F.es, t.ptr, t.len, 0);
}

/* The setup token with its signature, or its header.payload, replaced by the input. */
static void splice(const umg_jwt_keys_t *k, const umg_buf_t *tok, const char *p, size_t n)
{
    const char *sig = memchr(memchr(tok->ptr, '.', tok->len) + 1, '.', tok->len) + 1;
    size_t hp = (size_t)(sig - tok->ptr), sl = tok->len - hp;
    if (hp + n <= sizeof(F.buf)) {
        memcpy(F.buf, tok->ptr, hp);
        memcpy(F.buf + hp, p, n);
        verify(k, F.buf, hp + n, 0);
    }
    if (n + 1 + sl <= sizeof(F.buf)) {
        memcpy(F.buf, p, n);
        F.buf[n] = '.';
        memcpy(F.buf + n + 1, sig, sl);
        verify(k, F.buf, n + 1 + sl, 0);
    }
}

static size_t b64url(const void *src, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const uint8_t *s = src;
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
        out[o++] = tab[v & 63];
    }
    if (n - i == 1) {
        out[o++] = tab[s[i] >> 2];
        out[o++] = tab[(s[i] & 3) << 4];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)s[i] << 8 | s[i + 1];
        out[o++] = tab[v >> 10];
        out[o++] = tab[(v >> 4) & 63];
        out[o++] = tab[(v & 15) << 2];
    }
    return o;
}

/* header and payload JSON (raw bytes), signed here with the HS256 secret, then verified. */
static umg_jwt_err_t self_signed(const char *hdr, size_t hlen, const char *pl, size_t plen)
{
    if ((hlen + plen) / 3 * 4 + 64 > FUZZ_MAX + 16) {
        return UMG_JWT_MALFORMED;
    }
    size_t n = b64url(hdr, hlen, F.buf);
    F.buf[n++] = '.';
    n += b64url(pl, plen, F.buf + n);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    if (HMAC(EVP_sha256(), FUZZ_SECRET, (int)strlen(FUZZ_SECRET), (const unsigned char *)F.buf, n, mac, &maclen) ==
        NULL) {
        abort();
    }
    F.buf[n++] = '.';
    n += b64url(mac, maclen, F.buf + n);
    return verify(F.hs, F.buf, n, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (F.hs == NULL) {
        setup();
    }
    const char *p = (const char *)data;
    size_t before = umg_alloc_bytes();

    check_bearer(p, size);
    verify(F.hs, p, size, 0);
    verify(F.es, p, size, 0);
    splice(F.hs, &F.hs_tok, p, size);
    splice(F.es, &F.es_tok, p, size);

    /* As a payload: whatever verifies must be an object (check_claims saw the required claims). */
    size_t ws = 0;
    while (ws < size && strchr(" \t\r\n", p[ws]) != NULL && p[ws] != '\0') {
        ws++;
    }
    if (self_signed(FUZZ_HS_HDR, strlen(FUZZ_HS_HDR), p, size) == UMG_JWT_OK && (ws == size || p[ws] != '{')) {
        die("a payload that is no object verified", p, size);
    }
    /* As a header: only one naming HS256 may verify. */
    if (self_signed(p, size, FUZZ_PAYLOAD, strlen(FUZZ_PAYLOAD)) == UMG_JWT_OK &&
        (size < 13 || memmem(p, size, "\"HS256\"", 7) == NULL || memmem(p, size, "\"alg\"", 5) == NULL)) {
        die("a header without alg HS256 verified", p, size);
    }

    if (umg_alloc_bytes() != before) {
        die("verification leaked counted memory", p, size);
    }
    return 0;
}
