/*
 * umg_jwt.h - access tokens (JWT) and the Authorization header.
 *
 * Signing and verification go through libjwt; the algorithm is pinned by the
 * key set: a token whose header names any other algorithm (including "none")
 * is refused before libjwt sees it, and the algorithm libjwt decoded is
 * checked again afterwards. Claims are checked here: exp, nbf, iat (with a
 * small leeway), iss and aud, and the presence and shape of sub, org, jti.
 */
#ifndef UMG_JWT_H
#define UMG_JWT_H

#include "umg_core.h"

typedef enum umg_jwt_alg_e {
    UMG_JWT_HS256 = 1,
    UMG_JWT_RS256,
    UMG_JWT_ES256,
} umg_jwt_alg_t;

typedef struct umg_jwt_keys_s umg_jwt_keys_t;

/**
 * HS256 with a secret of 32..4096 bytes (private_pem and public_pem NULL),
 * or RS256 (RSA, 2048..8192 bits) / ES256 (P-256) with NUL-terminated PEM
 * keys and secret NULL: private_pem may be NULL for a verify-only key set,
 * public_pem may be NULL when it is derived from private_pem; when both are
 * given they must be a pair. Encrypted private keys are refused (nothing
 * ever prompts for a passphrase). Copies what it needs; *out is the
 * caller's, freed with umg_jwt_keys_free. UMG_EINVAL with msg filled when a
 * key does not fit its algorithm, UMG_ENOMEM. A key set is immutable: use
 * it from any number of threads.
 */
int umg_jwt_keys_new(umg_jwt_alg_t alg, const uint8_t *secret, size_t secret_len, const char *private_pem,
                     const char *public_pem, umg_jwt_keys_t **out, char *msg, size_t msglen);
void umg_jwt_keys_free(umg_jwt_keys_t *k);
umg_jwt_alg_t umg_jwt_keys_alg(const umg_jwt_keys_t *k);
/** "HS256", "RS256", "ES256"; 0 for an unknown name. */
umg_jwt_alg_t umg_jwt_alg_parse(const char *name);

/*
 * What an access token says. Strings are NUL-terminated and bounded: sub and
 * org are their prefix and then [A-Za-z0-9_-], jti is lowercase hex. Times
 * are 0..253402300799 (year 9999); iat and nbf are 0 when absent.
 */
typedef struct umg_jwt_claims_s {
    char sub[40]; /* user public id ("usr_...") */
    char org[40]; /* organization public id ("org_...") */
    char jti[40]; /* token id (random, 32 hex) */
    int64_t iat;  /* seconds since the epoch; 0: absent */
    int64_t nbf;  /* 0: absent */
    int64_t exp;  /* required */
    int64_t ver;  /* >= 0, required: the user's token version when issued; bumping it revokes older tokens */
} umg_jwt_claims_t;

#define UMG_JWT_ISSUER "unmogrowp"
#define UMG_JWT_AUDIENCE "unmogrowp-api"
#define UMG_JWT_LEEWAY_S 30 /* clock skew allowed on exp / nbf / iat */

/**
 * Signs claims (iss and aud are added; jti is made when empty: 16 random
 * bytes as 32 hex) and appends the compact token to out. UMG_EINVAL when the
 * key set cannot sign (verify-only) or the claims are ones umg_jwt_verify
 * would refuse whatever the clock says; UMG_ENOMEM.
 */
int umg_jwt_sign(const umg_jwt_keys_t *k, const umg_jwt_claims_t *c, umg_buf_t *out);

/* Why a token was refused (for logs and metrics; clients only see "invalid_token"). */
typedef enum umg_jwt_err_e {
    UMG_JWT_OK = 0,
    UMG_JWT_MALFORMED,  /* not three canonical base64url parts, bad JSON or a repeated key, too long */
    UMG_JWT_BAD_ALG,    /* header alg is not the pinned one (incl. "none") */
    UMG_JWT_BAD_SIG,    /* signature does not verify (or has the wrong length, or is high-S ES256) */
    UMG_JWT_EXPIRED,    /* exp + leeway <= now */
    UMG_JWT_NOT_YET,    /* nbf or iat - leeway > now */
    UMG_JWT_BAD_CLAIMS, /* iss/aud wrong, sub/org/jti/ver missing or malformed, exp missing or not an integer */
} umg_jwt_err_t;

/** Short name of an error: "malformed", "bad_alg", ... */
const char *umg_jwt_err_name(umg_jwt_err_t e);

/**
 * Verifies token (at most 4096 bytes, borrowed for the call) at time now_s
 * and fills c, which is written only on UMG_JWT_OK. The token's three parts
 * must be canonical unpadded base64url, its header must name exactly the
 * key set's algorithm, and an ES256 signature must be low-S (as
 * umg_jwt_sign writes it), so a token has one spelling; iss, aud, sub, org,
 * jti, exp and ver are required.
 * Allocates nothing through umg_malloc; safe from any thread.
 */
umg_jwt_err_t umg_jwt_verify(const umg_jwt_keys_t *k, umg_slice_t token, int64_t now_s, umg_jwt_claims_t *c);

/*
 * The Authorization header. "Bearer <token>" (scheme case-insensitive, one
 * or more spaces) gives UMG_OK and the token slice, which must be 1..4096
 * bytes of base64url characters and dots (RFC 6750 b64token). An absent
 * header gives UMG_ENOENT; anything else UMG_EINVAL.
 */
int umg_auth_bearer(umg_slice_t header, umg_slice_t *token);

#endif
