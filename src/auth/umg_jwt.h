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
 * HS256 with a secret of at least 32 bytes, or RS256 / ES256 with PEM keys
 * (private_pem may be NULL for a verify-only key set). Copies what it needs.
 * UMG_EINVAL with msg filled when a key does not fit its algorithm.
 */
int umg_jwt_keys_new(umg_jwt_alg_t alg, const uint8_t *secret, size_t secret_len, const char *private_pem,
                     const char *public_pem, umg_jwt_keys_t **out, char *msg, size_t msglen);
void umg_jwt_keys_free(umg_jwt_keys_t *k);
umg_jwt_alg_t umg_jwt_keys_alg(const umg_jwt_keys_t *k);
/** "HS256", "RS256", "ES256"; 0 for an unknown name. */
umg_jwt_alg_t umg_jwt_alg_parse(const char *name);

/* What an access token says. Strings are NUL-terminated and bounded. */
typedef struct umg_jwt_claims_s {
    char sub[40];  /* user public id ("usr_...") */
    char org[40];  /* organization public id ("org_...") */
    char jti[40];  /* token id (random, 32 hex) */
    int64_t iat;   /* seconds since the epoch */
    int64_t nbf;
    int64_t exp;
    int64_t ver;   /* the user's token version when issued: bumping it revokes older tokens */
} umg_jwt_claims_t;

#define UMG_JWT_ISSUER "unmogrowp"
#define UMG_JWT_AUDIENCE "unmogrowp-api"
#define UMG_JWT_LEEWAY_S 30 /* clock skew allowed on exp / nbf / iat */

/**
 * Signs claims (iss and aud are added; jti is made when empty) and appends
 * the compact token to out.
 */
int umg_jwt_sign(const umg_jwt_keys_t *k, const umg_jwt_claims_t *c, umg_buf_t *out);

/* Why a token was refused (for logs and metrics; clients only see "invalid_token"). */
typedef enum umg_jwt_err_e {
    UMG_JWT_OK = 0,
    UMG_JWT_MALFORMED,   /* not three base64url parts, bad JSON, too long */
    UMG_JWT_BAD_ALG,     /* header alg is not the pinned one (incl. "none") */
    UMG_JWT_BAD_SIG,     /* signature does not verify */
    UMG_JWT_EXPIRED,     /* exp + leeway <= now */
    UMG_JWT_NOT_YET,     /* nbf or iat - leeway > now */
    UMG_JWT_BAD_CLAIMS,  /* iss/aud wrong, sub/org/jti missing or malformed, exp missing */
} umg_jwt_err_t;

/** Short name of an error: "malformed", "bad_alg", ... */
const char *umg_jwt_err_name(umg_jwt_err_t e);

/** Verifies token (at most 4096 bytes) at time now_s and fills c. */
umg_jwt_err_t umg_jwt_verify(const umg_jwt_keys_t *k, umg_slice_t token, int64_t now_s, umg_jwt_claims_t *c);

/*
 * The Authorization header. "Bearer <token>" (scheme case-insensitive, one
 * or more spaces) gives UMG_OK and the token slice, which must be 1..4096
 * bytes of base64url characters and dots (RFC 6750 b64token). An absent
 * header gives UMG_ENOENT; anything else UMG_EINVAL.
 */
int umg_auth_bearer(umg_slice_t header, umg_slice_t *token);

#endif
