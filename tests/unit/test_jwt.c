/*
 * test_jwt.c - access tokens: key sets, sign/verify round trips for HS256,
 * RS256 and ES256 (keys made at test time), the clock and its leeway edges,
 * tampering, truncation, wrong keys, every way of naming another algorithm
 * (including "none" and the HS256-with-the-RSA-public-key confusion), the
 * claims, token size and alphabet, signing refusals and out of memory, and
 * the Authorization header.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "umg_jwt.h"

#include <stdlib.h>

#include <jwt.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#define NOW INT64_C(1795773600) /* 2026-11-27T10:00:00Z */
#define SECRET "0123456789abcdef0123456789abcdef-test-secret"

/* Claims as JSON, to be combined into payloads: all valid for NOW. */
#define P_ISS "\"iss\":\"unmogrowp\","
#define P_AUD "\"aud\":\"unmogrowp-api\","
#define P_SUB "\"sub\":\"usr_00ff00ff\","
#define P_ORG "\"org\":\"org_0a1b2c3d\","
#define P_JTI "\"jti\":\"0123456789abcdef0123456789abcdef\","
#define P_IAT "\"iat\":1795773540,"
#define P_EXP "\"exp\":1795777200,"
#define P_VER "\"ver\":3"
#define P_ALL P_ISS P_AUD P_SUB P_ORG P_JTI P_IAT P_EXP P_VER
#define HS_HDR "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

typedef struct fixture_s {
    char *rsa_priv, *rsa_pub, *ec_priv, *ec_pub;
    char *rsa2_priv, *rsa2_pub, *ec2_priv, *ec2_pub;
    char *rsa1024_priv, *p384_priv, *rsa_enc_priv;
    umg_jwt_keys_t *hs, *hs2, *rs, *rs_pub, *rs2, *es, *es_pub, *es2;
} fixture_t;

static fixture_t fx;

/* ---------------------------------------------------------------- helpers */

static char *pem_of(EVP_PKEY *p, int private, const EVP_CIPHER *enc)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    int ok = private
                 ? PEM_write_bio_PrivateKey(bio, p, enc, enc ? (unsigned char *)"pass" : NULL, enc ? 4 : 0, NULL, NULL)
                 : PEM_write_bio_PUBKEY(bio, p);
    assert_int_equal(ok, 1);
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    char *s = strndup(data, (size_t)n);
    BIO_free(bio);
    return s;
}

static void make_pair(EVP_PKEY *p, char **priv, char **pub)
{
    assert_non_null(p);
    *priv = pem_of(p, 1, NULL);
    if (pub != NULL) {
        *pub = pem_of(p, 0, NULL);
    }
}

static umg_jwt_keys_t *keys(umg_jwt_alg_t alg, const char *secret, const char *priv, const char *pub)
{
    umg_jwt_keys_t *k = NULL;
    char msg[256] = "";
    int rc =
        umg_jwt_keys_new(alg, (const uint8_t *)secret, secret ? strlen(secret) : 0, priv, pub, &k, msg, sizeof(msg));
    if (rc != UMG_OK) {
        fail_msg("umg_jwt_keys_new: %s", msg);
    }
    return k;
}

static int setup(void **state)
{
    (void)state;
    EVP_PKEY *p = EVP_RSA_gen(2048);
    make_pair(p, &fx.rsa_priv, &fx.rsa_pub);
    fx.rsa_enc_priv = pem_of(p, 1, EVP_aes_256_cbc());
    EVP_PKEY_free(p);
    p = EVP_RSA_gen(2048);
    make_pair(p, &fx.rsa2_priv, &fx.rsa2_pub);
    EVP_PKEY_free(p);
    p = EVP_EC_gen("P-256");
    make_pair(p, &fx.ec_priv, &fx.ec_pub);
    EVP_PKEY_free(p);
    p = EVP_EC_gen("P-256");
    make_pair(p, &fx.ec2_priv, &fx.ec2_pub);
    EVP_PKEY_free(p);
    p = EVP_RSA_gen(1024);
    make_pair(p, &fx.rsa1024_priv, NULL);
    EVP_PKEY_free(p);
    p = EVP_EC_gen("P-384");
    make_pair(p, &fx.p384_priv, NULL);
    EVP_PKEY_free(p);

    fx.hs = keys(UMG_JWT_HS256, SECRET, NULL, NULL);
    fx.hs2 = keys(UMG_JWT_HS256, SECRET "-other", NULL, NULL);
    fx.rs = keys(UMG_JWT_RS256, NULL, fx.rsa_priv, fx.rsa_pub);
    fx.rs_pub = keys(UMG_JWT_RS256, NULL, NULL, fx.rsa_pub);
    fx.rs2 = keys(UMG_JWT_RS256, NULL, fx.rsa2_priv, NULL);
    fx.es = keys(UMG_JWT_ES256, NULL, fx.ec_priv, fx.ec_pub);
    fx.es_pub = keys(UMG_JWT_ES256, NULL, NULL, fx.ec_pub);
    fx.es2 = keys(UMG_JWT_ES256, NULL, fx.ec2_priv, fx.ec2_pub);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    umg_jwt_keys_t *k[] = {fx.hs, fx.hs2, fx.rs, fx.rs_pub, fx.rs2, fx.es, fx.es_pub, fx.es2};
    for (size_t i = 0; i < UMG_ARRAY_SIZE(k); i++) {
        umg_jwt_keys_free(k[i]);
    }
    char *s[] = {fx.rsa_priv, fx.rsa_pub, fx.ec_priv,      fx.ec_pub,    fx.rsa2_priv,   fx.rsa2_pub,
                 fx.ec2_priv, fx.ec2_pub, fx.rsa1024_priv, fx.p384_priv, fx.rsa_enc_priv};
    for (size_t i = 0; i < UMG_ARRAY_SIZE(s); i++) {
        free(s[i]);
    }
    assert_int_equal(umg_alloc_bytes(), 0);
    return 0;
}

static size_t b64url(const void *src, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const uint8_t *p = src;
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
        out[o++] = tab[v & 63];
    }
    if (n - i == 1) {
        out[o++] = tab[p[i] >> 2];
        out[o++] = tab[(p[i] & 3) << 4];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 8 | p[i + 1];
        out[o++] = tab[v >> 10];
        out[o++] = tab[(v >> 4) & 63];
        out[o++] = tab[(v & 15) << 2];
    }
    out[o] = '\0';
    return o;
}

/* header.payload.signature from raw JSON (any bytes), HMAC-SHA256 under key, or an empty signature. */
static char *craft_n(const char *hdr, size_t hlen, const char *pl, size_t plen, const void *key, size_t keylen)
{
    char *t = malloc(2 * (hlen + plen) + 128);
    assert_non_null(t);
    size_t n = b64url(hdr, hlen, t);
    t[n++] = '.';
    n += b64url(pl, plen, t + n);
    if (key != NULL) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int maclen = 0;
        assert_non_null(HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)t, n, mac, &maclen));
        t[n++] = '.';
        b64url(mac, maclen, t + n);
    } else {
        t[n++] = '.';
        t[n] = '\0';
    }
    return t;
}

static char *craft(const char *hdr, const char *pl, const char *key)
{
    return craft_n(hdr, strlen(hdr), pl, strlen(pl), key, key ? strlen(key) : 0);
}

static umg_jwt_err_t verify_str(const umg_jwt_keys_t *k, const char *tok, int64_t now)
{
    umg_jwt_claims_t c;
    return umg_jwt_verify(k, umg_slice(tok, strlen(tok)), now, &c);
}

static void expect_crafted(const umg_jwt_keys_t *k, const char *hdr, const char *pl, umg_jwt_err_t want)
{
    char *t = craft(hdr, pl, SECRET);
    umg_jwt_err_t got = verify_str(k, t, NOW);
    if (got != want) {
        fail_msg("header %s payload %s: got %s, want %s", hdr, pl, umg_jwt_err_name(got), umg_jwt_err_name(want));
    }
    free(t);
}

static umg_jwt_claims_t claims_at(int64_t now)
{
    umg_jwt_claims_t c;
    memset(&c, 0, sizeof(c));
    snprintf(c.sub, sizeof(c.sub), "usr_0123abcd");
    snprintf(c.org, sizeof(c.org), "org_89ef");
    c.iat = now;
    c.exp = now + 900;
    c.ver = 7;
    return c;
}

/* A signed token in a malloc'd string. */
static char *sign_str(const umg_jwt_keys_t *k, const umg_jwt_claims_t *c)
{
    umg_buf_t b = {0};
    assert_int_equal(umg_jwt_sign(k, c, &b), UMG_OK);
    char *s = strdup(b.ptr);
    umg_buf_free(&b);
    return s;
}

static char *sign_now(const umg_jwt_keys_t *k)
{
    umg_jwt_claims_t c = claims_at(NOW);
    return sign_str(k, &c);
}

/* ---------------------------------------------------------------- names and key sets */

static void test_names(void **state)
{
    (void)state;
    assert_int_equal(umg_jwt_alg_parse("HS256"), UMG_JWT_HS256);
    assert_int_equal(umg_jwt_alg_parse("RS256"), UMG_JWT_RS256);
    assert_int_equal(umg_jwt_alg_parse("ES256"), UMG_JWT_ES256);
    assert_int_equal(umg_jwt_alg_parse("hs256"), 0);
    assert_int_equal(umg_jwt_alg_parse("none"), 0);
    assert_int_equal(umg_jwt_alg_parse("HS384"), 0);
    assert_int_equal(umg_jwt_alg_parse(""), 0);
    assert_int_equal(umg_jwt_alg_parse(NULL), 0);
    assert_string_equal(umg_jwt_err_name(UMG_JWT_OK), "ok");
    assert_string_equal(umg_jwt_err_name(UMG_JWT_MALFORMED), "malformed");
    assert_string_equal(umg_jwt_err_name(UMG_JWT_BAD_ALG), "bad_alg");
    assert_string_equal(umg_jwt_err_name(UMG_JWT_BAD_SIG), "bad_sig");
    assert_string_equal(umg_jwt_err_name(UMG_JWT_EXPIRED), "expired");
    assert_string_equal(umg_jwt_err_name(UMG_JWT_NOT_YET), "not_yet");
    assert_string_equal(umg_jwt_err_name(UMG_JWT_BAD_CLAIMS), "bad_claims");
    assert_string_equal(umg_jwt_err_name((umg_jwt_err_t)99), "unknown");
    assert_int_equal(umg_jwt_keys_alg(fx.hs), UMG_JWT_HS256);
    assert_int_equal(umg_jwt_keys_alg(fx.rs_pub), UMG_JWT_RS256);
    assert_int_equal(umg_jwt_keys_alg(fx.es), UMG_JWT_ES256);
    umg_jwt_keys_free(NULL);
}

static void expect_keys_fail(umg_jwt_alg_t alg, const char *secret, size_t secret_len, const char *priv,
                             const char *pub, const char *needle)
{
    umg_jwt_keys_t *k = (umg_jwt_keys_t *)0x1;
    char msg[256] = "";
    assert_int_equal(umg_jwt_keys_new(alg, (const uint8_t *)secret, secret_len, priv, pub, &k, msg, sizeof(msg)),
                     UMG_EINVAL);
    assert_ptr_equal(k, (umg_jwt_keys_t *)0x1); /* untouched on failure */
    if (strstr(msg, needle) == NULL) {
        fail_msg("message \"%s\" lacks \"%s\"", msg, needle);
    }
}

static void test_keys_new(void **state)
{
    (void)state;
    size_t before = umg_alloc_bytes();
    expect_keys_fail(UMG_JWT_HS256, SECRET, 31, NULL, NULL, "32 bytes");
    expect_keys_fail(UMG_JWT_HS256, NULL, 0, NULL, NULL, "32 bytes");
    expect_keys_fail(UMG_JWT_HS256, SECRET, strlen(SECRET), NULL, fx.rsa_pub, "not PEM");
    char *big = calloc(1, 5000);
    expect_keys_fail(UMG_JWT_HS256, big, 4097, NULL, NULL, "4096");
    free(big);
    expect_keys_fail(0, SECRET, strlen(SECRET), NULL, NULL, "unknown algorithm");
    expect_keys_fail((umg_jwt_alg_t)9, SECRET, strlen(SECRET), NULL, NULL, "unknown algorithm");
    expect_keys_fail(UMG_JWT_RS256, NULL, 0, NULL, NULL, "key is needed");
    expect_keys_fail(UMG_JWT_RS256, SECRET, strlen(SECRET), NULL, fx.rsa_pub, "not a secret");
    expect_keys_fail(UMG_JWT_RS256, NULL, 0, NULL, fx.ec_pub, "RSA key");
    expect_keys_fail(UMG_JWT_RS256, NULL, 0, fx.ec_priv, NULL, "RSA key");
    expect_keys_fail(UMG_JWT_RS256, NULL, 0, fx.rsa1024_priv, NULL, "2048");
    expect_keys_fail(UMG_JWT_ES256, NULL, 0, NULL, fx.rsa_pub, "P-256");
    expect_keys_fail(UMG_JWT_ES256, NULL, 0, fx.p384_priv, NULL, "P-256");
    expect_keys_fail(UMG_JWT_RS256, NULL, 0, fx.rsa_priv, fx.rsa2_pub, "not the private key's");
    expect_keys_fail(UMG_JWT_ES256, NULL, 0, fx.ec_priv, fx.ec2_pub, "not the private key's");
    expect_keys_fail(UMG_JWT_RS256, NULL, 0, "not a key", NULL, "private key");
    expect_keys_fail(UMG_JWT_RS256, NULL, 0, NULL, "", "public key");
    expect_keys_fail(UMG_JWT_RS256, NULL, 0, fx.rsa_pub, NULL, "private key");      /* public PEM as private */
    expect_keys_fail(UMG_JWT_RS256, NULL, 0, NULL, fx.rsa_priv, "public key");      /* private PEM as public */
    expect_keys_fail(UMG_JWT_RS256, NULL, 0, fx.rsa_enc_priv, NULL, "unencrypted"); /* and no prompt */
    assert_int_equal(umg_jwt_keys_new(UMG_JWT_HS256, (const uint8_t *)SECRET, 32, NULL, NULL, NULL, NULL, 0),
                     UMG_EINVAL);
    assert_int_equal(umg_alloc_bytes(), before);

    /* A key set from the private key alone verifies what it signs (the public key is derived). */
    char *t = sign_now(fx.rs2);
    assert_int_equal(verify_str(fx.rs2, t, NOW), UMG_JWT_OK);
    assert_int_equal(verify_str(fx.rs, t, NOW), UMG_JWT_BAD_SIG);
    free(t);

    /* Out of memory at every allocation: UMG_ENOMEM and nothing kept. */
    for (long n = 1;; n++) {
        umg_jwt_keys_t *k = NULL;
        umg_alloc_fail_after(n);
        int rc = umg_jwt_keys_new(UMG_JWT_ES256, NULL, 0, fx.ec_priv, NULL, &k, NULL, 0);
        umg_alloc_fail_after(0);
        if (rc == UMG_OK) {
            assert_true(n > 1);
            umg_jwt_keys_free(k);
            break;
        }
        assert_int_equal(rc, UMG_ENOMEM);
        assert_null(k);
        assert_int_equal(umg_alloc_bytes(), before);
    }
    for (long n = 1;; n++) {
        umg_jwt_keys_t *k = NULL;
        umg_alloc_fail_after(n);
        int rc = umg_jwt_keys_new(UMG_JWT_HS256, (const uint8_t *)SECRET, strlen(SECRET), NULL, NULL, &k, NULL, 0);
        umg_alloc_fail_after(0);
        if (rc == UMG_OK) {
            umg_jwt_keys_free(k);
            break;
        }
        assert_int_equal(rc, UMG_ENOMEM);
        assert_int_equal(umg_alloc_bytes(), before);
    }
    assert_int_equal(umg_alloc_bytes(), before);
}

/* ---------------------------------------------------------------- round trips */

static void roundtrip(const umg_jwt_keys_t *signer, const umg_jwt_keys_t *verifier, const char *alg)
{
    umg_jwt_claims_t in = claims_at(NOW);
    in.nbf = NOW - 5;
    umg_buf_t b = {0};
    assert_int_equal(umg_buf_append(&b, "Bearer ", 7), UMG_OK);
    assert_int_equal(umg_jwt_sign(signer, &in, &b), UMG_OK);
    assert_memory_equal(b.ptr, "Bearer ", 7); /* appended, not overwritten */
    umg_slice_t tok = umg_slice(b.ptr + 7, b.len - 7);

    const char *dot = memchr(tok.ptr, '.', tok.len);
    assert_non_null(dot);

    umg_jwt_claims_t out;
    memset(&out, 0xa5, sizeof(out));
    assert_int_equal(umg_jwt_verify(verifier, tok, NOW, &out), UMG_JWT_OK);
    assert_string_equal(out.sub, in.sub);
    assert_string_equal(out.org, in.org);
    assert_int_equal(strlen(out.jti), 32);
    for (size_t i = 0; i < 32; i++) {
        assert_true(strchr("0123456789abcdef", out.jti[i]) != NULL);
    }
    assert_int_equal(out.iat, in.iat);
    assert_int_equal(out.nbf, in.nbf);
    assert_int_equal(out.exp, in.exp);
    assert_int_equal(out.ver, in.ver);

    /* Through the header parser too. */
    umg_slice_t t2;
    assert_int_equal(umg_auth_bearer(umg_slice(b.ptr, b.len), &t2), UMG_OK);
    assert_ptr_equal(t2.ptr, tok.ptr);
    assert_int_equal(t2.len, tok.len);

    /* A given jti is kept; a fresh one differs each time. */
    umg_jwt_claims_t again = in;
    snprintf(again.jti, sizeof(again.jti), "00c0ffee");
    again.iat = 0;
    again.nbf = 0;
    umg_buf_t b2 = {0};
    assert_int_equal(umg_jwt_sign(signer, &again, &b2), UMG_OK);
    assert_int_equal(umg_jwt_verify(verifier, umg_slice(b2.ptr, b2.len), NOW, &out), UMG_JWT_OK);
    assert_string_equal(out.jti, "00c0ffee");
    assert_int_equal(out.iat, 0);
    assert_int_equal(out.nbf, 0);
    umg_buf_reset(&b2);
    assert_int_equal(umg_jwt_sign(signer, &in, &b2), UMG_OK);
    umg_jwt_claims_t out2;
    assert_int_equal(umg_jwt_verify(verifier, umg_slice(b2.ptr, b2.len), NOW, &out2), UMG_JWT_OK);
    assert_string_not_equal(out2.jti, out.jti);

    /* The header is exactly what a strict peer expects. */
    char hdr[128];
    snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg);
    char enc[256];
    size_t n = b64url(hdr, strlen(hdr), enc);
    assert_int_equal((size_t)(dot - tok.ptr), n);
    assert_memory_equal(tok.ptr, enc, n);
    umg_buf_free(&b);
    umg_buf_free(&b2);
}

static void test_roundtrip_hs256(void **state)
{
    (void)state;
    roundtrip(fx.hs, fx.hs, "HS256");
}

static void test_roundtrip_rs256(void **state)
{
    (void)state;
    roundtrip(fx.rs, fx.rs, "RS256");
    roundtrip(fx.rs, fx.rs_pub, "RS256");
}

static void test_roundtrip_es256(void **state)
{
    (void)state;
    roundtrip(fx.es, fx.es, "ES256");
    roundtrip(fx.es, fx.es_pub, "ES256");
}

/* ---------------------------------------------------------------- the clock */

static void test_expired(void **state)
{
    (void)state;
    umg_jwt_keys_t *ks[] = {fx.hs, fx.rs, fx.es};
    for (size_t i = 0; i < UMG_ARRAY_SIZE(ks); i++) {
        umg_jwt_claims_t c = claims_at(NOW - 7200);
        char *t = sign_str(ks[i], &c);
        assert_int_equal(verify_str(ks[i], t, NOW), UMG_JWT_EXPIRED);
        assert_int_equal(verify_str(ks[i], t, NOW - 7200), UMG_JWT_OK);
        free(t);
    }
}

static void test_not_yet(void **state)
{
    (void)state;
    /* nbf in the future */
    umg_jwt_claims_t c = claims_at(NOW);
    c.nbf = NOW + 600;
    c.exp = NOW + 3600;
    char *t = sign_str(fx.hs, &c);
    assert_int_equal(verify_str(fx.hs, t, NOW), UMG_JWT_NOT_YET);
    assert_int_equal(verify_str(fx.hs, t, NOW + 600), UMG_JWT_OK);
    free(t);
    /* iat in the future (issued by a clock far ahead) */
    c = claims_at(NOW + 600);
    t = sign_str(fx.es, &c);
    assert_int_equal(verify_str(fx.es, t, NOW), UMG_JWT_NOT_YET);
    assert_int_equal(verify_str(fx.es, t, NOW + 600), UMG_JWT_OK);
    free(t);
}

static void test_leeway_edges(void **state)
{
    (void)state;
    const int64_t L = UMG_JWT_LEEWAY_S;
    umg_jwt_claims_t c = claims_at(NOW);
    c.iat = 0;
    c.exp = NOW;
    char *t = sign_str(fx.hs, &c);
    assert_int_equal(verify_str(fx.hs, t, NOW + L - 1), UMG_JWT_OK);
    assert_int_equal(verify_str(fx.hs, t, NOW + L), UMG_JWT_EXPIRED); /* exp + leeway <= now */
    assert_int_equal(verify_str(fx.hs, t, NOW + L + 1), UMG_JWT_EXPIRED);
    free(t);

    c = claims_at(NOW);
    c.iat = 0;
    c.nbf = NOW + 100;
    t = sign_str(fx.hs, &c);
    assert_int_equal(verify_str(fx.hs, t, NOW + 100 - L), UMG_JWT_OK); /* nbf - leeway <= now */
    assert_int_equal(verify_str(fx.hs, t, NOW + 100 - L - 1), UMG_JWT_NOT_YET);
    free(t);

    c = claims_at(NOW + 100);
    t = sign_str(fx.hs, &c);
    assert_int_equal(verify_str(fx.hs, t, NOW + 100 - L), UMG_JWT_OK);
    assert_int_equal(verify_str(fx.hs, t, NOW + 100 - L - 1), UMG_JWT_NOT_YET);
    free(t);

    /* Clocks far off in either direction do not overflow anything. */
    c = claims_at(NOW);
    t = sign_str(fx.hs, &c);
    assert_int_equal(verify_str(fx.hs, t, INT64_MAX), UMG_JWT_EXPIRED);
    assert_int_equal(verify_str(fx.hs, t, INT64_MIN), UMG_JWT_NOT_YET);
    free(t);
}

/* ---------------------------------------------------------------- tampering */

static void tamper(const umg_jwt_keys_t *k)
{
    char *t = sign_now(k);
    size_t len = strlen(t);
    char *d1 = strchr(t, '.'), *d2 = strchr(d1 + 1, '.');

    /* The payload re-encoded with another user: valid JSON, wrong signature. */
    char *evil = craft("{}", "{" P_ALL "}", NULL); /* just for the payload part */
    char *ep = strchr(evil, '.') + 1;
    *strchr(ep, '.') = '\0';
    char *forged = malloc(len + strlen(ep) + 1);
    sprintf(forged, "%.*s.%s%s", (int)(d1 - t), t, ep, d2);
    assert_int_equal(verify_str(k, forged, NOW), UMG_JWT_BAD_SIG);
    free(forged);
    free(evil);

    /* Every single-character change anywhere is refused. */
    static const char alphabet[] = "AQgw-_0z";
    for (size_t i = 0; i < len; i++) {
        for (const char *a = alphabet; *a; a++) {
            if (t[i] == '.' || t[i] == *a) {
                continue;
            }
            char save = t[i];
            t[i] = *a;
            umg_jwt_err_t e = verify_str(k, t, NOW);
            if (e == UMG_JWT_OK) {
                fail_msg("changing byte %zu to %c was accepted", i, *a);
            }
            t[i] = save;
        }
    }

    /* A flipped bit in the middle of the signature: BAD_SIG. */
    size_t mid = (size_t)(d2 - t) + (len - (size_t)(d2 - t)) / 2;
    t[mid] = t[mid] == 'A' ? 'B' : 'A';
    assert_int_equal(verify_str(k, t, NOW), UMG_JWT_BAD_SIG);
    free(t);
}

static void test_tampered(void **state)
{
    (void)state;
    tamper(fx.hs);
    tamper(fx.rs);
    tamper(fx.es);
}

/* The same signature bytes written with nonzero trailing bits: refused, so a token has one spelling. */
static void test_noncanonical_signature(void **state)
{
    (void)state;
    umg_jwt_keys_t *ks[] = {fx.hs, fx.rs, fx.es};
    for (size_t i = 0; i < UMG_ARRAY_SIZE(ks); i++) {
        char *t = sign_now(ks[i]);
        size_t len = strlen(t);
        /* 32, 256 and 64 signature bytes leave 2, 4 and 4 unused bits in the last character. */
        char last = t[len - 1];
        const char *tab = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        int v = (int)(strchr(tab, last) - tab);
        assert_int_equal(v & 3, 0);
        t[len - 1] = tab[v | 1];
        assert_int_equal(verify_str(ks[i], t, NOW), UMG_JWT_MALFORMED);
        free(t);
    }
}

static size_t b64url_dec(const char *s, size_t n, uint8_t *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        const char *c = strchr(tab, s[i]);
        assert_non_null(c);
        acc = (acc << 6) | (uint32_t)(c - tab);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return o;
}

/*
 * ECDSA's twin signature (r, n - s) verifies as well; signing writes the low
 * s and verification refuses the high one, so an ES256 token has one spelling.
 */
static void test_es256_low_s(void **state)
{
    (void)state;
    BIGNUM *n = NULL, *half = NULL;
    assert_true(BN_hex2bn(&n, "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551") > 0);
    half = BN_dup(n);
    assert_int_equal(BN_rshift1(half, half), 1);
    for (int i = 0; i < 24; i++) {
        char *t = sign_now(fx.es);
        size_t len = strlen(t);
        char *dot = strrchr(t, '.');
        uint8_t sig[64];
        assert_int_equal(b64url_dec(dot + 1, strlen(dot + 1), sig), 64);
        BIGNUM *s = BN_bin2bn(sig + 32, 32, NULL), *twin = BN_new();
        assert_true(BN_cmp(s, half) <= 0);
        assert_int_equal(BN_sub(twin, n, s), 1);
        assert_int_equal(BN_bn2binpad(twin, sig + 32, 32), 32);
        char *t2 = malloc(len + 1);
        size_t hp = (size_t)(dot - t) + 1;
        memcpy(t2, t, hp);
        assert_int_equal(hp + b64url(sig, sizeof(sig), t2 + hp), len);
        assert_int_equal(verify_str(fx.es, t, NOW), UMG_JWT_OK);
        assert_int_equal(verify_str(fx.es, t2, NOW), UMG_JWT_BAD_SIG);
        BN_free(s);
        BN_free(twin);
        free(t2);
        free(t);
    }
    BN_free(n);
    BN_free(half);
}

static void test_truncated(void **state)
{
    (void)state;
    umg_jwt_keys_t *ks[] = {fx.hs, fx.rs, fx.es};
    for (size_t i = 0; i < UMG_ARRAY_SIZE(ks); i++) {
        char *t = sign_now(ks[i]);
        size_t len = strlen(t);
        umg_jwt_claims_t c;
        for (size_t n = 0; n < len; n++) {
            assert_int_not_equal(umg_jwt_verify(ks[i], umg_slice(t, n), NOW, &c), UMG_JWT_OK);
        }
        char *d2 = strrchr(t, '.');
        /* Without the signature: a missing part is malformed, an empty one a bad signature. */
        assert_int_equal(umg_jwt_verify(ks[i], umg_slice(t, (size_t)(d2 - t)), NOW, &c), UMG_JWT_MALFORMED);
        assert_int_equal(umg_jwt_verify(ks[i], umg_slice(t, (size_t)(d2 - t) + 1), NOW, &c), UMG_JWT_BAD_SIG);
        /* Cut after whole groups of four characters it is still canonical base64url: a bad signature. */
        size_t sig = len - (size_t)(d2 - t) - 1;
        assert_int_not_equal(sig % 4, 0);
        assert_int_equal(umg_jwt_verify(ks[i], umg_slice(t, (size_t)(d2 - t) + 1 + sig / 4 * 4), NOW, &c),
                         UMG_JWT_BAD_SIG);
        free(t);
    }
}

static void test_wrong_key(void **state)
{
    (void)state;
    char *t = sign_now(fx.hs);
    assert_int_equal(verify_str(fx.hs2, t, NOW), UMG_JWT_BAD_SIG);
    assert_int_equal(verify_str(fx.rs, t, NOW), UMG_JWT_BAD_ALG);
    assert_int_equal(verify_str(fx.es, t, NOW), UMG_JWT_BAD_ALG);
    free(t);
    t = sign_now(fx.rs);
    assert_int_equal(verify_str(fx.rs2, t, NOW), UMG_JWT_BAD_SIG);
    assert_int_equal(verify_str(fx.es, t, NOW), UMG_JWT_BAD_ALG);
    assert_int_equal(verify_str(fx.hs, t, NOW), UMG_JWT_BAD_ALG);
    free(t);
    t = sign_now(fx.es);
    assert_int_equal(verify_str(fx.es2, t, NOW), UMG_JWT_BAD_SIG);
    assert_int_equal(verify_str(fx.rs, t, NOW), UMG_JWT_BAD_ALG);
    assert_int_equal(verify_str(fx.hs, t, NOW), UMG_JWT_BAD_ALG);
    free(t);
}

/* Signatures that verified are remembered per key set: the same token again is accepted without libjwt, but under
 * another key it is still refused, a changed byte is still checked in full, and the claims are still checked (an
 * expired token stays expired). */
static void test_signature_memo(void **state)
{
    (void)state;
    umg_jwt_keys_t *ks[][2] = {{fx.hs, fx.hs2}, {fx.rs, fx.rs2}, {fx.es, fx.es2}};
    for (size_t i = 0; i < UMG_ARRAY_SIZE(ks); i++) {
        char *t = sign_now(ks[i][0]);
        for (int round = 0; round < 3; round++) {
            assert_int_equal(verify_str(ks[i][0], t, NOW), UMG_JWT_OK);
            assert_int_equal(verify_str(ks[i][1], t, NOW), UMG_JWT_BAD_SIG);
        }
        assert_int_equal(verify_str(ks[i][0], t, NOW + 86400 * 365), UMG_JWT_EXPIRED);
        size_t len = strlen(t);
        t[len - 3] = t[len - 3] == 'A' ? 'B' : 'A';
        assert_int_equal(verify_str(ks[i][0], t, NOW), UMG_JWT_BAD_SIG);
        free(t);
    }
}

/* ---------------------------------------------------------------- algorithms */

static void test_wrong_alg_header(void **state)
{
    (void)state;
    const char *pl = "{" P_ALL "}";
    static const struct {
        const char *hdr;
        umg_jwt_err_t want;
    } cases[] = {
        {HS_HDR, UMG_JWT_OK},
        {"{\"alg\":\"HS256\"}", UMG_JWT_OK},
        {" {\n \"typ\" : \"JWT\" ,\t\"alg\" : \"HS256\", \"kid\": [1, {\"a\": null}] } ", UMG_JWT_OK},
        {"{\"alg\":\"HS384\",\"typ\":\"JWT\"}", UMG_JWT_BAD_ALG},
        {"{\"alg\":\"RS256\",\"typ\":\"JWT\"}", UMG_JWT_BAD_ALG},
        {"{\"alg\":\"hs256\",\"typ\":\"JWT\"}", UMG_JWT_BAD_ALG},
        {"{\"alg\":\"Hs256\"}", UMG_JWT_BAD_ALG},
        {"{\"alg\":\"HS256 \"}", UMG_JWT_BAD_ALG},
        {"{\"alg\":\"HS2560\"}", UMG_JWT_BAD_ALG},
        {"{\"alg\":\"\\u0048S256\"}", UMG_JWT_BAD_ALG},
        {"{\"alg\":\"\"}", UMG_JWT_BAD_ALG},
        {"{\"alg\":256}", UMG_JWT_BAD_ALG},
        {"{\"alg\":null}", UMG_JWT_BAD_ALG},
        {"{\"alg\":[\"HS256\"]}", UMG_JWT_BAD_ALG},
        {"{\"typ\":\"JWT\"}", UMG_JWT_BAD_ALG},
        {"{}", UMG_JWT_BAD_ALG},
        {"{\"ALG\":\"HS256\"}", UMG_JWT_BAD_ALG},
        {"{\"alg\":\"HS256\",\"alg\":\"HS256\"}", UMG_JWT_MALFORMED},
        {"{\"alg\":\"none\",\"alg\":\"HS256\"}", UMG_JWT_MALFORMED},
        {"{\"alg\":\"HS256\",\"alg\":\"none\"}", UMG_JWT_MALFORMED},
        {"{\"\\u0061lg\":\"none\",\"alg\":\"HS256\"}", UMG_JWT_MALFORMED},
        {"{\"alg\":\"HS256\",\"typ\":\"jwt\"}", UMG_JWT_MALFORMED},
        {"{\"alg\":\"HS256\",\"typ\":\"JWS\"}", UMG_JWT_MALFORMED},
        {"{\"alg\":\"HS256\",\"typ\":1}", UMG_JWT_MALFORMED},
        {"{\"alg\":\"HS256\",\"crit\":[\"b64\"],\"b64\":false}", UMG_JWT_MALFORMED},
        {"[\"alg\",\"HS256\"]", UMG_JWT_MALFORMED},
        {"\"HS256\"", UMG_JWT_MALFORMED},
        {"{\"alg\":\"HS256\"}x", UMG_JWT_MALFORMED},
        {"{\"alg\":\"HS256\"}{}", UMG_JWT_MALFORMED},
        {"{\"alg\":\"HS256\",}", UMG_JWT_MALFORMED},
        {"{\"alg\":'HS256'}", UMG_JWT_MALFORMED},
        {"{alg:\"HS256\"}", UMG_JWT_MALFORMED},
        {"{\"alg\":\"HS256\"", UMG_JWT_MALFORMED},
    };
    for (size_t i = 0; i < UMG_ARRAY_SIZE(cases); i++) {
        expect_crafted(fx.hs, cases[i].hdr, pl, cases[i].want);
    }
    /* A NUL after the object (libjwt's JSON reader would stop there). */
    static const char nul_hdr[] = "{\"alg\":\"HS256\"}\0{\"alg\":\"none\"}";
    char *t = craft_n(nul_hdr, sizeof(nul_hdr) - 1, pl, strlen(pl), SECRET, strlen(SECRET));
    assert_int_equal(verify_str(fx.hs, t, NOW), UMG_JWT_MALFORMED);
    free(t);
    /* An RS256 or ES256 key set refuses every other name as well. */
    expect_crafted(fx.rs, HS_HDR, pl, UMG_JWT_BAD_ALG);
    expect_crafted(fx.rs, "{\"alg\":\"rs256\"}", pl, UMG_JWT_BAD_ALG);
    expect_crafted(fx.rs, "{\"alg\":\"RS512\"}", pl, UMG_JWT_BAD_ALG);
    expect_crafted(fx.rs, "{\"alg\":\"PS256\"}", pl, UMG_JWT_BAD_ALG);
    expect_crafted(fx.es, "{\"alg\":\"es256\"}", pl, UMG_JWT_BAD_ALG);
    expect_crafted(fx.es, "{\"alg\":\"ES384\"}", pl, UMG_JWT_BAD_ALG);
    expect_crafted(fx.es, "{\"alg\":\"RS256\"}", pl, UMG_JWT_BAD_ALG);
}

static void test_alg_none(void **state)
{
    (void)state;
    umg_jwt_keys_t *ks[] = {fx.hs, fx.rs, fx.rs_pub, fx.es, fx.es_pub};
    /* The real thing, made by libjwt: "header.payload." with an empty signature. */
    jwt_t *j = NULL;
    assert_int_equal(jwt_new(&j), 0);
    assert_int_equal(jwt_set_alg(j, JWT_ALG_NONE, NULL, 0), 0);
    assert_int_equal(jwt_add_grants_json(j, "{" P_ALL "}"), 0);
    char *none = jwt_encode_str(j);
    assert_non_null(none);
    assert_int_equal(none[strlen(none) - 1], '.');
    jwt_free(j);
    /* libjwt itself takes it when handed no key. */
    assert_int_equal(jwt_decode(&j, none, NULL, 0), 0);
    assert_int_equal(jwt_get_alg(j), JWT_ALG_NONE);
    jwt_free(j);
    for (size_t i = 0; i < UMG_ARRAY_SIZE(ks); i++) {
        assert_int_equal(verify_str(ks[i], none, NOW), UMG_JWT_BAD_ALG);
    }
    free(none);

    /* Worse, handed no key libjwt "decodes" a signed token without checking its signature at all. */
    char *hs = sign_now(fx.hs);
    hs[strlen(hs) - 2] = hs[strlen(hs) - 2] == 'A' ? 'B' : 'A';
    assert_int_equal(jwt_decode(&j, hs, NULL, 0), 0);
    assert_int_equal(jwt_get_alg(j), JWT_ALG_NONE);
    jwt_free(j);
    free(hs);

    static const char *const hdrs[] = {
        "{\"alg\":\"none\"}",
        "{\"alg\":\"None\"}",
        "{\"alg\":\"NONE\"}",
        "{\"alg\":\"nOnE\"}",
        "{\"alg\":\"none\",\"typ\":\"JWT\"}",
    };
    for (size_t h = 0; h < UMG_ARRAY_SIZE(hdrs); h++) {
        for (size_t i = 0; i < UMG_ARRAY_SIZE(ks); i++) {
            char *t = craft(hdrs[h], "{" P_ALL "}", NULL);
            assert_int_equal(verify_str(ks[i], t, NOW), UMG_JWT_BAD_ALG);
            free(t);
            t = craft(hdrs[h], "{" P_ALL "}", SECRET); /* with some signature after all */
            assert_int_equal(verify_str(ks[i], t, NOW), UMG_JWT_BAD_ALG);
            free(t);
        }
    }
}

/*
 * Algorithm confusion: an HS256 token whose HMAC secret is the RS256 public
 * key PEM. libjwt 1.10 accepts it when given that PEM as the key; an RS256
 * key set must not.
 */
static void test_alg_confusion(void **state)
{
    (void)state;
    jwt_t *j = NULL;
    assert_int_equal(jwt_new(&j), 0);
    assert_int_equal(jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)fx.rsa_pub, (int)strlen(fx.rsa_pub)), 0);
    assert_int_equal(jwt_add_grants_json(j, "{" P_ALL "}"), 0);
    char *forged = jwt_encode_str(j);
    assert_non_null(forged);
    jwt_free(j);

    /* The pitfall, shown: libjwt alone verifies the forgery with the public key. */
    j = NULL;
    assert_int_equal(jwt_decode(&j, forged, (const unsigned char *)fx.rsa_pub, (int)strlen(fx.rsa_pub)), 0);
    assert_int_equal(jwt_get_alg(j), JWT_ALG_HS256);
    jwt_free(j);

    assert_int_equal(verify_str(fx.rs, forged, NOW), UMG_JWT_BAD_ALG);
    assert_int_equal(verify_str(fx.rs_pub, forged, NOW), UMG_JWT_BAD_ALG);
    free(forged);

    /* The same with a hand-made header spelling the algorithm in lower case. */
    char *t = craft("{\"alg\":\"hs256\",\"typ\":\"JWT\"}", "{" P_ALL "}", fx.rsa_pub);
    assert_int_equal(verify_str(fx.rs_pub, t, NOW), UMG_JWT_BAD_ALG);
    free(t);
    t = craft(HS_HDR, "{" P_ALL "}", fx.ec_pub);
    assert_int_equal(verify_str(fx.es_pub, t, NOW), UMG_JWT_BAD_ALG);
    free(t);
}

/* ---------------------------------------------------------------- claims */

static void test_claims(void **state)
{
    (void)state;
    static const struct {
        const char *pl;
        umg_jwt_err_t want;
    } cases[] = {
        {"{" P_ALL "}", UMG_JWT_OK},
        {"{" P_ALL ",\"x\":{\"a\":[1,2.5e3,-0,true,false,null,\"\\u00e9\\ud83d\\ude00\\n\"]},\"y\":\"\xc3\xa9\"}",
         UMG_JWT_OK},
        {"{" P_ISS P_AUD P_SUB P_ORG P_JTI P_EXP P_VER "}", UMG_JWT_OK}, /* no iat */
        /* iss */
        {"{" P_AUD P_SUB P_ORG P_JTI P_IAT P_EXP P_VER "}", UMG_JWT_BAD_CLAIMS},
        {"{\"iss\":\"unmogrowp2\"," P_AUD P_SUB P_ORG P_JTI P_IAT P_EXP P_VER "}", UMG_JWT_BAD_CLAIMS},
        {"{\"iss\":\"\"," P_AUD P_SUB P_ORG P_JTI P_IAT P_EXP P_VER "}", UMG_JWT_BAD_CLAIMS},
        {"{\"iss\":1," P_AUD P_SUB P_ORG P_JTI P_IAT P_EXP P_VER "}", UMG_JWT_BAD_CLAIMS},
        {"{\"iss\":\"\\u0075nmogrowp\"," P_AUD P_SUB P_ORG P_JTI P_IAT P_EXP P_VER "}", UMG_JWT_BAD_CLAIMS},
        /* aud */
        {"{" P_ISS P_SUB P_ORG P_JTI P_IAT P_EXP P_VER "}", UMG_JWT_BAD_CLAIMS},
        {"{" P_ISS "\"aud\":\"unmogrowp\"," P_SUB P_ORG P_JTI P_IAT P_EXP P_VER "}", UMG_JWT_BAD_CLAIMS},
        {"{" P_ISS "\"aud\":[\"unmogrowp-api\"]," P_SUB P_ORG P_JTI P_IAT P_EXP P_VER "}", UMG_JWT_BAD_CLAIMS},
        /* sub */
        {"{" P_ISS P_AUD P_ORG P_JTI P_IAT P_EXP P_VER "}", UMG_JWT_BAD_CLAIMS},
        {"{" P_ISS P_AUD "\"sub\":\"usr_\"," P_ORG P_JTI P_IAT P_EXP P_VER "}", UMG_JWT_BAD_CLAIMS},
        {"{" P_ISS P_AUD "\"sub\":\"user_1\"," P_ORG P_JTI P_IAT P_EXP P_VER "}", UMG_JWT_BAD_CLAIMS},
        {"{" P_ISS P_AUD "\"sub\":\"org_1\"," P_ORG P_JTI P_IAT P_EXP P_VER "}", UMG_JWT_BAD_CLAIMS},
        {"{" P_ISS P_AUD "\"sub\":\"usr_a b\"," P_ORG P_JTI P_IAT P_EXP P_VER "}", UMG_JWT_BAD_CLAIMS},
        {"{" P_ISS P_AUD "\"sub\":\"usr_\\u0041\"," P_ORG P_JTI P_IAT P_EXP P_VER "}", UMG_JWT_BAD_CLAIMS},
        {"{" P_ISS P_AUD "\"sub\":\"usr_\xc3\xa9\"," P_ORG P_JTI P_IAT P_EXP P_VER "}", UMG_JWT_BAD_CLAIMS},
        {"{" P_ISS P_AUD "\"sub\":1," P_ORG P_JTI P_IAT P_EXP P_VER "}", UMG_JWT_BAD_CLAIMS},
        {"{" P_ISS P_AUD "\"sub\":\"usr_56789012345678901234567890123456789\"," P_ORG P_JTI P_IAT P_EXP P_VER "}",
         UMG_JWT_OK}, /* 39 characters */
        {"{" P_ISS P_AUD "\"sub\":\"usr_567890123456789012345678901234567890\"," P_ORG P_JTI P_IAT P_EXP P_VER "}",
         UMG_JWT_BAD_CLAIMS}, /* 40 */
        /* org */
        {"{" P_ISS P_AUD P_SUB P_JTI P_IAT P_EXP P_VER "}", UMG_JWT_BAD_CLAIMS},
        {"{" P_ISS P_AUD P_SUB "\"org\":\"org_\"," P_JTI P_IAT P_EXP P_VER "}", UMG_JWT_BAD_CLAIMS},
        {"{" P_ISS P_AUD P_SUB "\"org\":\"usr_00ff\"," P_JTI P_IAT P_EXP P_VER "}", UMG_JWT_BAD_CLAIMS},
        {"{" P_ISS P_AUD P_SUB "\"org\":null," P_JTI P_IAT P_EXP P_VER "}", UMG_JWT_BAD_CLAIMS},
        /* jti */
        {"{" P_ISS P_AUD P_SUB P_ORG P_IAT P_EXP P_VER "}", UMG_JWT_BAD_CLAIMS},
        {"{" P_ISS P_AUD P_SUB P_ORG "\"jti\":\"\"," P_IAT P_EXP P_VER "}", UMG_JWT_BAD_CLAIMS},
        {"{" P_ISS P_AUD P_SUB P_ORG "\"jti\":\"ABCDEF\"," P_IAT P_EXP P_VER "}", UMG_JWT_BAD_CLAIMS},
        {"{" P_ISS P_AUD P_SUB P_ORG "\"jti\":\"xyz\"," P_IAT P_EXP P_VER "}", UMG_JWT_BAD_CLAIMS},
        {"{" P_ISS P_AUD P_SUB P_ORG "\"jti\":12345," P_IAT P_EXP P_VER "}", UMG_JWT_BAD_CLAIMS},
        {"{" P_ISS P_AUD P_SUB P_ORG "\"jti\":\"a\"," P_IAT P_EXP P_VER "}", UMG_JWT_OK},
        {"{" P_ISS P_AUD P_SUB P_ORG "\"jti\":\"0123456789abcdef0123456789abcdef0123456\"," P_IAT P_EXP P_VER "}",
         UMG_JWT_OK}, /* 39 */
        {"{" P_ISS P_AUD P_SUB P_ORG "\"jti\":\"0123456789abcdef0123456789abcdef01234567\"," P_IAT P_EXP P_VER "}",
         UMG_JWT_BAD_CLAIMS}, /* 40 */
        /* exp */
        {"{" P_ISS P_AUD P_SUB P_ORG P_JTI P_IAT P_VER "}", UMG_JWT_BAD_CLAIMS},
        {"{" P_ISS P_AUD P_SUB P_ORG P_JTI P_IAT "\"exp\":\"1795777200\"," P_VER "}", UMG_JWT_BAD_CLAIMS},
        {"{" P_ISS P_AUD P_SUB P_ORG P_JTI P_IAT "\"exp\":1795777200.0," P_VER "}", UMG_JWT_BAD_CLAIMS},
        {"{" P_ISS P_AUD P_SUB P_ORG P_JTI P_IAT "\"exp\":1.7957772e9," P_VER "}", UMG_JWT_BAD_CLAIMS},
        {"{" P_ISS P_AUD P_SUB P_ORG P_JTI P_IAT "\"exp\":-1," P_VER "}", UMG_JWT_BAD_CLAIMS},
        {"{" P_ISS P_AUD P_SUB P_ORG P_JTI P_IAT "\"exp\":253402300800," P_VER "}", UMG_JWT_BAD_CLAIMS},
        /* an integer jansson cannot hold either */
        {"{" P_ISS P_AUD P_SUB P_ORG P_JTI P_IAT "\"exp\":99999999999999999999999," P_VER "}", UMG_JWT_MALFORMED},
        {"{" P_ISS P_AUD P_SUB P_ORG P_JTI P_IAT "\"exp\":null," P_VER "}", UMG_JWT_BAD_CLAIMS},
        {"{" P_ISS P_AUD P_SUB P_ORG P_JTI P_IAT "\"exp\":01795777200," P_VER "}", UMG_JWT_MALFORMED},
        {"{" P_ISS P_AUD P_SUB P_ORG P_JTI P_IAT "\"exp\":253402300799," P_VER "}", UMG_JWT_OK},
        /* nbf, iat */
        {"{" P_ALL ",\"nbf\":\"1\"}", UMG_JWT_BAD_CLAIMS},
        {"{" P_ALL ",\"nbf\":-5}", UMG_JWT_BAD_CLAIMS},
        {"{" P_ISS P_AUD P_SUB P_ORG P_JTI P_EXP "\"iat\":1795773540.5," P_VER "}", UMG_JWT_BAD_CLAIMS},
        /* ver */
        {"{" P_ISS P_AUD P_SUB P_ORG P_JTI P_IAT "\"exp\":1795777200}", UMG_JWT_BAD_CLAIMS},
        {"{" P_ISS P_AUD P_SUB P_ORG P_JTI P_IAT P_EXP "\"ver\":-1}", UMG_JWT_BAD_CLAIMS},
        {"{" P_ISS P_AUD P_SUB P_ORG P_JTI P_IAT P_EXP "\"ver\":\"3\"}", UMG_JWT_BAD_CLAIMS},
        {"{" P_ISS P_AUD P_SUB P_ORG P_JTI P_IAT P_EXP "\"ver\":1.5}", UMG_JWT_BAD_CLAIMS},
        {"{" P_ISS P_AUD P_SUB P_ORG P_JTI P_IAT P_EXP "\"ver\":9223372036854775807}", UMG_JWT_OK},
        {"{" P_ISS P_AUD P_SUB P_ORG P_JTI P_IAT P_EXP "\"ver\":9223372036854775808}", UMG_JWT_MALFORMED},
        {"{" P_ALL ",\"x\":-9223372036854775808}", UMG_JWT_OK},
        {"{" P_ALL ",\"x\":-9223372036854775809}", UMG_JWT_MALFORMED},
        /* the JSON itself */
        {"{" P_ALL "," P_SUB "\"z\":1}", UMG_JWT_MALFORMED}, /* duplicate sub */
        {"{" P_ALL ",\"exp\":1795777200}", UMG_JWT_MALFORMED},
        {"[" P_ALL "]", UMG_JWT_MALFORMED},
        {"{" P_ALL "}x", UMG_JWT_MALFORMED},
        {"{" P_ALL ",}", UMG_JWT_MALFORMED},
        {"{" P_ALL ",\"x\":\"\xc3\"}", UMG_JWT_MALFORMED},         /* cut UTF-8 */
        {"{" P_ALL ",\"x\":\"\xc0\xaf\"}", UMG_JWT_MALFORMED},     /* overlong */
        {"{" P_ALL ",\"x\":\"\xed\xa0\x80\"}", UMG_JWT_MALFORMED}, /* surrogate */
        {"{" P_ALL ",\"x\":\"\\ud800\"}", UMG_JWT_MALFORMED},      /* lone surrogate escape */
        {"{" P_ALL ",\"x\":\"\\u0000\"}", UMG_JWT_MALFORMED},
        {"{" P_ALL ",\"x\":\"\\x41\"}", UMG_JWT_MALFORMED},
        {"{" P_ALL ",\"x\":\"a\tb\"}", UMG_JWT_MALFORMED},
        {"{" P_ALL ",\"x\":tru}", UMG_JWT_MALFORMED},
        {"{" P_ALL ",\"x\":-}", UMG_JWT_MALFORMED},
        {"{" P_ALL ",\"x\":1.}", UMG_JWT_MALFORMED},
        {"{" P_ALL ",\"x\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}", UMG_JWT_MALFORMED}, /* too deep */
        {"{" P_ALL ",\"x\":[[[[[[[[[[[[[[1]]]]]]]]]]]]]]}", UMG_JWT_OK},
    };
    for (size_t i = 0; i < UMG_ARRAY_SIZE(cases); i++) {
        expect_crafted(fx.hs, HS_HDR, cases[i].pl, cases[i].want);
    }
    /* A NUL inside the payload, outside any string. */
    static const char nul_pl[] = "{" P_ALL "}\0";
    char *t = craft_n(HS_HDR, strlen(HS_HDR), nul_pl, sizeof(nul_pl) - 1, SECRET, strlen(SECRET));
    assert_int_equal(verify_str(fx.hs, t, NOW), UMG_JWT_MALFORMED);
    free(t);
    /* Claims are reported only for a token that verifies; c is untouched otherwise. */
    t = craft(HS_HDR, "{" P_ALL "}", SECRET);
    umg_jwt_claims_t c;
    memset(&c, 0x5a, sizeof(c));
    assert_int_equal(umg_jwt_verify(fx.hs2, umg_slice(t, strlen(t)), NOW, &c), UMG_JWT_BAD_SIG);
    assert_int_equal((unsigned char)c.sub[0], 0x5a);
    assert_int_equal(umg_jwt_verify(fx.hs, umg_slice(t, strlen(t)), NOW, &c), UMG_JWT_OK);
    assert_string_equal(c.sub, "usr_00ff00ff");
    assert_string_equal(c.org, "org_0a1b2c3d");
    assert_string_equal(c.jti, "0123456789abcdef0123456789abcdef");
    assert_int_equal(c.exp, 1795777200);
    assert_int_equal(c.iat, 1795773540);
    assert_int_equal(c.nbf, 0);
    assert_int_equal(c.ver, 3);
    free(t);
}

/* ---------------------------------------------------------------- size and alphabet */

static void test_oversized(void **state)
{
    (void)state;
    int seen_max = 0, seen_over = 0;
    for (size_t fill = 2600; fill < 3000; fill++) {
        char *pl = malloc(fill + 256);
        int n = snprintf(pl, 256, "{" P_ALL ",\"pad\":\"");
        memset(pl + n, 'p', fill);
        strcpy(pl + n + fill, "\"}");
        char *t = craft(HS_HDR, pl, SECRET);
        size_t len = strlen(t);
        umg_jwt_err_t e = verify_str(fx.hs, t, NOW);
        if (len <= 4096) {
            assert_int_equal(e, UMG_JWT_OK);
            seen_max |= len == 4096;
        } else {
            assert_int_equal(e, UMG_JWT_MALFORMED);
            seen_over = 1;
        }
        free(t);
        free(pl);
    }
    assert_true(seen_max);
    assert_true(seen_over);
    /* A huge input is refused without being read. */
    size_t big = 1 << 20;
    char *huge = malloc(big);
    memset(huge, 'A', big);
    umg_jwt_claims_t c;
    assert_int_equal(umg_jwt_verify(fx.hs, umg_slice(huge, big), NOW, &c), UMG_JWT_MALFORMED);
    free(huge);
}

static void test_bad_characters(void **state)
{
    (void)state;
    umg_jwt_claims_t c;
    char *t = sign_now(fx.hs);
    size_t len = strlen(t);
    char *d1 = strchr(t, '.'), *d2 = strrchr(t, '.');
    size_t at[] = {0, (size_t)(d1 - t) + 3, (size_t)(d2 - t) + 3, len - 1};
    static const char bad[] = {'+', '/', '=', ' ', '\0', '\n', '\t', '%', '~', '\\', '"', ',', (char)0xff, (char)0x80};
    for (size_t i = 0; i < UMG_ARRAY_SIZE(at); i++) {
        for (size_t b = 0; b < sizeof(bad); b++) {
            char save = t[at[i]];
            t[at[i]] = bad[b];
            assert_int_equal(umg_jwt_verify(fx.hs, umg_slice(t, len), NOW, &c), UMG_JWT_MALFORMED);
            t[at[i]] = save;
        }
    }
    assert_int_equal(umg_jwt_verify(fx.hs, umg_slice(t, len), NOW, &c), UMG_JWT_OK);

    /* Padding, or the standard alphabet, is not base64url. */
    char *padded = malloc(len + 3);
    sprintf(padded, "%s=", t);
    assert_int_equal(verify_str(fx.hs, padded, NOW), UMG_JWT_MALFORMED);
    free(padded);
    free(t);

    /* Anything but three parts. */
    static const char *const shapes[] = {
        "",
        ".",
        "..",
        "...",
        "a",
        "a.b",
        "a.b.c.d",
        ".b.c",
        "a..c",
        "eyJ.eyJ.",
        "eyJhbGciOiJIUzI1NiJ9..",
        "A.eyJ9.AAAA", /* a length of 1 mod 4 */
    };
    for (size_t i = 0; i < UMG_ARRAY_SIZE(shapes); i++) {
        umg_jwt_err_t e = verify_str(fx.hs, shapes[i], NOW);
        if (e != UMG_JWT_MALFORMED) {
            fail_msg("\"%s\": %s", shapes[i], umg_jwt_err_name(e));
        }
    }
    assert_int_equal(umg_jwt_verify(fx.hs, UMG_SLICE_NULL, NOW, &c), UMG_JWT_MALFORMED);
    assert_int_equal(umg_jwt_verify(fx.hs, umg_slice(NULL, 10), NOW, &c), UMG_JWT_MALFORMED);
    assert_int_equal(umg_jwt_verify(NULL, UMG_SLICE("a.b.c"), NOW, &c), UMG_JWT_MALFORMED);
    assert_int_equal(umg_jwt_verify(fx.hs, UMG_SLICE("a.b.c"), NOW, NULL), UMG_JWT_MALFORMED);

    /* A token that is not NUL-terminated is read only within its length. */
    char *t2 = sign_now(fx.es);
    size_t n2 = strlen(t2);
    char *copy = malloc(n2);
    memcpy(copy, t2, n2);
    assert_int_equal(umg_jwt_verify(fx.es, umg_slice(copy, n2), NOW, &c), UMG_JWT_OK);
    free(copy);
    free(t2);
}

/* ---------------------------------------------------------------- signing refusals */

static void test_sign_refuses(void **state)
{
    (void)state;
    umg_buf_t b = {0};
    umg_jwt_claims_t good = claims_at(NOW), c;
    assert_int_equal(umg_jwt_sign(fx.rs_pub, &good, &b), UMG_EINVAL); /* verify-only */
    assert_int_equal(umg_jwt_sign(fx.es_pub, &good, &b), UMG_EINVAL);
    assert_int_equal(umg_jwt_sign(NULL, &good, &b), UMG_EINVAL);
    assert_int_equal(umg_jwt_sign(fx.hs, NULL, &b), UMG_EINVAL);
    assert_int_equal(umg_jwt_sign(fx.hs, &good, NULL), UMG_EINVAL);
#define REFUSE(stmt)                                                                                                   \
    do {                                                                                                               \
        c = good;                                                                                                      \
        stmt;                                                                                                          \
        assert_int_equal(umg_jwt_sign(fx.hs, &c, &b), UMG_EINVAL);                                                     \
    } while (0)
    REFUSE(snprintf(c.sub, sizeof(c.sub), "user_1"));
    REFUSE(snprintf(c.sub, sizeof(c.sub), "usr_"));
    REFUSE(snprintf(c.sub, sizeof(c.sub), "usr_\"x"));
    REFUSE(memset(c.sub, 'a', sizeof(c.sub))); /* no terminator */
    REFUSE(snprintf(c.org, sizeof(c.org), "usr_1"));
    REFUSE(memset(c.org, 'o', sizeof(c.org)));
    REFUSE(snprintf(c.jti, sizeof(c.jti), "ABC"));
    REFUSE(memset(c.jti, 'a', sizeof(c.jti)));
    REFUSE(c.exp = 0);
    REFUSE(c.exp = -1);
    REFUSE(c.exp = INT64_C(253402300800));
    REFUSE(c.iat = -1);
    REFUSE(c.nbf = INT64_MAX);
    REFUSE(c.ver = -1);
#undef REFUSE
    assert_int_equal(b.len, 0);
    umg_buf_free(&b);
}

static void test_sign_out_of_memory(void **state)
{
    (void)state;
    size_t before = umg_alloc_bytes();
    umg_jwt_claims_t c = claims_at(NOW);
    umg_jwt_keys_t *ks[] = {fx.hs, fx.rs, fx.es};
    for (size_t i = 0; i < UMG_ARRAY_SIZE(ks); i++) {
        for (long n = 1;; n++) {
            umg_buf_t b = {0};
            umg_alloc_fail_after(n);
            int rc = umg_jwt_sign(ks[i], &c, &b);
            umg_alloc_fail_after(0);
            if (rc == UMG_OK) {
                assert_int_equal(verify_str(ks[i], b.ptr, NOW), UMG_JWT_OK);
                umg_buf_free(&b);
                break;
            }
            assert_int_equal(rc, UMG_ENOMEM);
            umg_buf_free(&b);
        }
        assert_int_equal(umg_alloc_bytes(), before);
    }
    /* Verification allocates nothing of ours: it works with every allocation failing. */
    char *t = sign_now(fx.rs);
    umg_alloc_fail_after(1);
    assert_int_equal(verify_str(fx.rs, t, NOW), UMG_JWT_OK);
    umg_alloc_fail_after(0);
    free(t);
    assert_int_equal(umg_alloc_bytes(), before);
}

/* ---------------------------------------------------------------- Authorization */

static void expect_bearer(const char *h, size_t hlen, int want, const char *tok)
{
    umg_slice_t t = UMG_SLICE("untouched");
    int rc = umg_auth_bearer(umg_slice(h, hlen), &t);
    if (rc != want) {
        fail_msg("\"%.*s\": got %d, want %d", (int)hlen, h ? h : "", rc, want);
    }
    if (want == UMG_OK) {
        assert_int_equal(t.len, strlen(tok));
        assert_memory_equal(t.ptr, tok, t.len);
        assert_true(t.ptr >= h && t.ptr + t.len == h + hlen);
    } else {
        assert_true(umg_slice_eq(t, "untouched"));
    }
}

static void test_bearer(void **state)
{
    (void)state;
    static const struct {
        const char *h;
        int want;
        const char *tok;
    } cases[] = {
        {"Bearer abc.def.ghi", UMG_OK, "abc.def.ghi"},
        {"bearer abc", UMG_OK, "abc"},
        {"BEARER abc", UMG_OK, "abc"},
        {"bEaReR abc", UMG_OK, "abc"},
        {"Bearer    a-b_c.D9", UMG_OK, "a-b_c.D9"},
        {"Bearer ut_0123abcd", UMG_OK, "ut_0123abcd"},
        {"Bearer .", UMG_OK, "."},
        {"Bearer", UMG_EINVAL, NULL},
        {"Bearer ", UMG_EINVAL, NULL},
        {"Bearer     ", UMG_EINVAL, NULL},
        {"Bearerabc", UMG_EINVAL, NULL},
        {"Bearer\tabc", UMG_EINVAL, NULL},
        {" Bearer abc", UMG_EINVAL, NULL},
        {"Bearer abc ", UMG_EINVAL, NULL},
        {"Bearer abc def", UMG_EINVAL, NULL},
        {"Bearer abc,def", UMG_EINVAL, NULL},
        {"Bearer abc, Basic xyz", UMG_EINVAL, NULL},
        {"Bearer abc=", UMG_EINVAL, NULL},
        {"Bearer a+b/c", UMG_EINVAL, NULL},
        {"Bearer \"abc\"", UMG_EINVAL, NULL},
        {"Bearer abc\r\n", UMG_EINVAL, NULL},
        {"Bearer\xc2\xa0"
         "abc",
         UMG_EINVAL, NULL},
        {"Basic dXNlcjpwYXNz", UMG_EINVAL, NULL},
        {"Basic", UMG_EINVAL, NULL},
        {"Bearr abc", UMG_EINVAL, NULL},
        {"Bearers abc", UMG_EINVAL, NULL},
        {"Token abc", UMG_EINVAL, NULL},
        {"abc.def.ghi", UMG_EINVAL, NULL},
        {" ", UMG_EINVAL, NULL},
        {"", UMG_ENOENT, NULL},
    };
    for (size_t i = 0; i < UMG_ARRAY_SIZE(cases); i++) {
        expect_bearer(cases[i].h, strlen(cases[i].h), cases[i].want, cases[i].tok);
    }
    expect_bearer(NULL, 0, UMG_ENOENT, NULL); /* absent */
    expect_bearer(NULL, 5, UMG_EINVAL, NULL);
    static const char nul[] = "Bearer ab\0cd";
    expect_bearer(nul, sizeof(nul) - 1, UMG_EINVAL, NULL);
    expect_bearer(nul, 9, UMG_OK, "ab"); /* only len bytes are read */
    assert_int_equal(umg_auth_bearer(UMG_SLICE("Bearer abc"), NULL), UMG_EINVAL);

    /* 4096 token bytes at most, after any number of spaces. */
    char *h = malloc(7 + 10 + 4097);
    memcpy(h, "Bearer           ", 17);
    memset(h + 17, 'x', 4097);
    umg_slice_t t;
    assert_int_equal(umg_auth_bearer(umg_slice(h, 17 + 4096), &t), UMG_OK);
    assert_int_equal(t.len, 4096);
    assert_int_equal(umg_auth_bearer(umg_slice(h, 17 + 4097), &t), UMG_EINVAL);
    free(h);
}

int main(void)
{
    umg_log_min_level = UMG_LOG_ERROR;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_keys_new),
        cmocka_unit_test(test_roundtrip_hs256),
        cmocka_unit_test(test_roundtrip_rs256),
        cmocka_unit_test(test_roundtrip_es256),
        cmocka_unit_test(test_expired),
        cmocka_unit_test(test_not_yet),
        cmocka_unit_test(test_leeway_edges),
        cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_noncanonical_signature),
        cmocka_unit_test(test_es256_low_s),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_signature_memo),
        cmocka_unit_test(test_wrong_alg_header),
        cmocka_unit_test(test_alg_none),
        cmocka_unit_test(test_alg_confusion),
        cmocka_unit_test(test_claims),
        cmocka_unit_test(test_oversized),
        cmocka_unit_test(test_bad_characters),
        cmocka_unit_test(test_sign_refuses),
        cmocka_unit_test(test_sign_out_of_memory),
        cmocka_unit_test(test_bearer),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
