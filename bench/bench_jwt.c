/*
 * bench_jwt.c - access-token verification (src/auth/jwt.c) as the API does
 * it for every request that carries a bearer token.
 *
 *   bench_jwt [verifications]   (default 2000)
 *
 * For HS256, RS256 (2048-bit) and ES256 (P-256), keys made here: the same
 * token verified again and again (a client sends its access token with each
 * request until it expires: signatures that verified once are remembered), against the baseline of verifying a token
 * not seen before (the full signature check, as for the first request of each token). One JSON line per algorithm:
 *   {"bench":"jwt","alg":"RS256","same_token_us":7.4,"new_token_us":1020.3,"ratio":0.007}
 */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "umg_jwt.h"

static double mono_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* The PEM text of a key, private or public; the caller frees it. */
static char *pem_of(EVP_PKEY *p, int private)
{
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL ||
        (private ? PEM_write_bio_PrivateKey(bio, p, NULL, NULL, 0, NULL, NULL) : PEM_write_bio_PUBKEY(bio, p)) != 1) {
        BIO_free(bio);
        return NULL;
    }
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    char *out = malloc((size_t)n + 1);
    if (out != NULL) {
        memcpy(out, data, (size_t)n);
        out[n] = '\0';
    }
    BIO_free(bio);
    return out;
}

static void claims(umg_jwt_claims_t *c, int64_t now, int i)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->sub, sizeof(c->sub), "usr_0123456789abcdef");
    snprintf(c->org, sizeof(c->org), "org_0123456789abcdef");
    snprintf(c->jti, sizeof(c->jti), "%032d", i);
    c->iat = now;
    c->exp = now + 900;
    c->ver = 1;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 2000;
    static const char *const names[] = {"HS256", "RS256", "ES256"};
    static const umg_jwt_alg_t algs[] = {UMG_JWT_HS256, UMG_JWT_RS256, UMG_JWT_ES256};
    int64_t now = (int64_t)time(NULL);
    for (int a = 0; a < 3; a++) {
        char *priv = NULL, *pub = NULL, msg[200];
        static const uint8_t secret[32] = "a 32-byte secret for the bench!";
        if (algs[a] != UMG_JWT_HS256) {
            EVP_PKEY *p = algs[a] == UMG_JWT_RS256 ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
            priv = p != NULL ? pem_of(p, 1) : NULL;
            pub = p != NULL ? pem_of(p, 0) : NULL;
            EVP_PKEY_free(p);
            if (priv == NULL || pub == NULL) {
                fprintf(stderr, "%s: cannot make a key\n", names[a]);
                return 2;
            }
        }
        umg_jwt_keys_t *k;
        if (umg_jwt_keys_new(algs[a], algs[a] == UMG_JWT_HS256 ? secret : NULL,
                             algs[a] == UMG_JWT_HS256 ? sizeof(secret) : 0, priv, pub, &k, msg,
                             sizeof(msg)) != UMG_OK) {
            fprintf(stderr, "%s: %s\n", names[a], msg);
            return 2;
        }
        /* Tokens signed beforehand (not timed): one per verification of the baseline. */
        int fresh = algs[a] == UMG_JWT_HS256 ? n : n / 20 + 1; /* public-key signing is slow */
        umg_buf_t *tok = calloc((size_t)fresh, sizeof(*tok));
        umg_jwt_claims_t c;
        for (int i = 0; i < fresh; i++) {
            claims(&c, now, i);
            if (tok == NULL || umg_jwt_sign(k, &c, &tok[i]) != UMG_OK) {
                fprintf(stderr, "%s: cannot sign\n", names[a]);
                return 2;
            }
        }
        double t0 = mono_s();
        for (int i = 0; i < fresh; i++) {
            if (umg_jwt_verify(k, umg_slice(tok[i].ptr, tok[i].len), now, &c) != UMG_JWT_OK) {
                fprintf(stderr, "%s: a token did not verify\n", names[a]);
                return 2;
            }
        }
        double new_us = (mono_s() - t0) / fresh * 1e6;
        t0 = mono_s();
        for (int i = 0; i < n; i++) {
            if (umg_jwt_verify(k, umg_slice(tok[0].ptr, tok[0].len), now, &c) != UMG_JWT_OK) {
                fprintf(stderr, "%s: the token did not verify\n", names[a]);
                return 2;
            }
        }
        double same_us = (mono_s() - t0) / n * 1e6;
        printf("{\"bench\":\"jwt\",\"alg\":\"%s\",\"same_token_us\":%.1f,\"new_token_us\":%.1f,\"ratio\":%.3f}\n",
               names[a], same_us, new_us, same_us / new_us);
        for (int i = 0; i < fresh; i++) {
            umg_buf_free(&tok[i]);
        }
        free(tok);
        umg_jwt_keys_free(k);
        free(priv);
        free(pub);
    }
    return 0;
}
