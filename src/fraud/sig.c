/*
 * sig.c - signed SDK requests (the sdk_spoofing rule): verifying
 * X-Signature: v1=<hex HMAC-SHA256(app_secret, timestamp "." body)> against
 * the app's secrets in constant time, the clock-skew window, and the cache of
 * signatures already accepted that refuses replays.
 *
 * The replay cache is striped: 64 shards, each a mutex and an open-addressed
 * table of (first 8 bytes of the MAC, expiry second). A MAC is 256 bits that
 * nobody without the secret can choose, so 64 of them identify it well
 * enough. A probe looks at 16 consecutive entries; an entry past its expiry
 * is free again, so the table never needs sweeping.
 */
#include "umg_fraud_net.h"

#include <pthread.h>
#include <sodium.h>

/* ---------------------------------------------------------------- metrics */

static umg_metric_t m_result[] = {
    UMG_COUNTER("umg_fraud_signature_total", "Signed-request checks on the SDK endpoints, by result", "result=\"ok\""),
    UMG_COUNTER("umg_fraud_signature_total", "Signed-request checks on the SDK endpoints, by result",
                "result=\"signature_missing\""),
    UMG_COUNTER("umg_fraud_signature_total", "Signed-request checks on the SDK endpoints, by result",
                "result=\"signature_invalid\""),
    UMG_COUNTER("umg_fraud_signature_total", "Signed-request checks on the SDK endpoints, by result",
                "result=\"signature_stale\""),
    UMG_COUNTER("umg_fraud_signature_total", "Signed-request checks on the SDK endpoints, by result",
                "result=\"signature_replayed\""),
};
static umg_metric_t m_evicted =
    UMG_COUNTER("umg_fraud_signature_replay_evicted_total",
                "Signatures dropped from the full replay cache before their window ended", NULL);

static const char *const reasons[] = {"ok", "signature_missing", "signature_invalid", "signature_stale",
                                      "signature_replayed"};

const char *umg_sig_reason(umg_sig_result_t r)
{
    return (unsigned)r < UMG_ARRAY_SIZE(reasons) ? reasons[r] : "signature_invalid";
}

void umg_sig_count(umg_sig_result_t r)
{
    umg_metric_t *m = &m_result[(unsigned)r < UMG_ARRAY_SIZE(m_result) ? r : UMG_SIG_INVALID];
    umg_metric_register(m);
    umg_metric_add(m, 1);
}

/* ---------------------------------------------------------------- MAC */

static void mac(umg_slice_t secret, umg_slice_t ts, umg_slice_t body, uint8_t out[32])
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret.ptr, secret.len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)ts.ptr, ts.len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)body.ptr, body.len);
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof(st));
}

void umg_sig_sign(umg_slice_t secret, umg_slice_t ts, umg_slice_t body, char hex[UMG_SIG_HEX_LEN + 1])
{
    uint8_t m[32];
    mac(secret, ts, body, m);
    sodium_bin2hex(hex, UMG_SIG_HEX_LEN + 1, m, sizeof(m));
}

/* ---------------------------------------------------------------- replay cache */

#define SHARDS 64
#define PROBE 16

typedef struct centry_s {
    uint64_t tag;
    int64_t expires_s; /* 0: empty */
} centry_t;

typedef struct shard_s {
    pthread_mutex_t mu;
    centry_t *v; /* taken on first use */
    int failed;  /* out of memory once: the shard checks nothing */
} shard_t;

struct umg_sig_cache_s {
    size_t per_shard; /* a power of two */
    shard_t shards[SHARDS];
};

int umg_sig_cache_new(size_t max_entries, umg_sig_cache_t **out)
{
    umg_sig_cache_t *c = umg_calloc(1, sizeof(*c));
    if (c == NULL || sodium_init() < 0) {
        umg_free(c);
        return UMG_ENOMEM;
    }
    size_t per = 16;
    while (per * SHARDS < max_entries && per < ((size_t)1 << 30)) {
        per <<= 1;
    }
    c->per_shard = per;
    for (int i = 0; i < SHARDS; i++) {
        pthread_mutex_init(&c->shards[i].mu, NULL);
    }
    umg_metric_register(&m_evicted);
    *out = c;
    return UMG_OK;
}

void umg_sig_cache_free(umg_sig_cache_t *c)
{
    if (c == NULL) {
        return;
    }
    for (int i = 0; i < SHARDS; i++) {
        umg_free(c->shards[i].v);
        pthread_mutex_destroy(&c->shards[i].mu);
    }
    umg_free(c);
}

/* 1 when tag is held unexpired (a replay); else remembers it until expires_s and returns 0. */
static int cache_check_insert(umg_sig_cache_t *c, const uint8_t m[32], int64_t now_s, int64_t expires_s)
{
    uint64_t tag;
    memcpy(&tag, m, 8);
    uint64_t h;
    memcpy(&h, m + 8, 8);
    shard_t *s = &c->shards[h % SHARDS];
    size_t mask = c->per_shard - 1, home = (size_t)(h / SHARDS) & mask;
    int replay = 0;
    pthread_mutex_lock(&s->mu);
    if (s->v == NULL && !s->failed) {
        s->v = umg_calloc(c->per_shard, sizeof(centry_t));
        s->failed = s->v == NULL;
    }
    if (s->v != NULL) {
        centry_t *free_e = NULL, *soonest = NULL;
        for (size_t i = 0; i < PROBE; i++) {
            centry_t *e = &s->v[(home + i) & mask];
            if (e->expires_s > now_s) {
                if (e->tag == tag) {
                    replay = 1;
                    break;
                }
                if (soonest == NULL || e->expires_s < soonest->expires_s) {
                    soonest = e;
                }
            } else if (free_e == NULL) {
                free_e = e;
            }
        }
        if (!replay) {
            if (free_e == NULL) {
                free_e = soonest;
                umg_metric_add(&m_evicted, 1);
            }
            *free_e = (centry_t){tag, expires_s};
        }
    }
    pthread_mutex_unlock(&s->mu);
    return replay;
}

/* ---------------------------------------------------------------- verify */

static umg_slice_t trim(umg_slice_t s)
{
    while (s.len > 0 && (s.ptr[0] == ' ' || s.ptr[0] == '\t')) {
        s.ptr++;
        s.len--;
    }
    while (s.len > 0 && (s.ptr[s.len - 1] == ' ' || s.ptr[s.len - 1] == '\t')) {
        s.len--;
    }
    return s;
}

umg_sig_result_t umg_sig_verify(umg_slice_t sig, umg_slice_t ts, umg_slice_t body, const umg_slice_t *secrets, size_t n,
                                int64_t now_s, int64_t window_s, umg_sig_cache_t *cache)
{
    sig = trim(sig);
    ts = trim(ts);
    if (sig.len == 0 || ts.len == 0) {
        return UMG_SIG_MISSING;
    }
    /* The timestamp: 1 to 12 decimal digits, Unix seconds. */
    if (ts.len > 12) {
        return UMG_SIG_INVALID;
    }
    int64_t t = 0;
    for (size_t i = 0; i < ts.len; i++) {
        if (ts.ptr[i] < '0' || ts.ptr[i] > '9') {
            return UMG_SIG_INVALID;
        }
        t = t * 10 + (ts.ptr[i] - '0');
    }
    /* "v1=" and 64 hex digits (either case). */
    uint8_t want[32];
    if (sig.len != 3 + UMG_SIG_HEX_LEN || memcmp(sig.ptr, "v1=", 3) != 0) {
        return UMG_SIG_INVALID;
    }
    for (size_t i = 0; i < 32; i++) {
        int hi = umg_hexval((unsigned char)sig.ptr[3 + 2 * i]), lo = umg_hexval((unsigned char)sig.ptr[4 + 2 * i]);
        if (hi < 0 || lo < 0) {
            return UMG_SIG_INVALID;
        }
        want[i] = (uint8_t)(hi << 4 | lo);
    }
    int good = 0;
    for (size_t k = 0; k < n; k++) {
        uint8_t got[32];
        mac(secrets[k], ts, body, got);
        good |= crypto_verify_32(got, want) == 0;
        sodium_memzero(got, sizeof(got));
    }
    if (!good) {
        return UMG_SIG_INVALID;
    }
    if (t < now_s - window_s || t > now_s + window_s) {
        return UMG_SIG_STALE;
    }
    /* Remembered until the timestamp leaves the window: after that the signature is stale anyway. */
    if (cache != NULL && cache_check_insert(cache, want, now_s, t + window_s + 1)) {
        return UMG_SIG_REPLAYED;
    }
    return UMG_SIG_OK;
}
