/*
 * umg_privacy.h - what the log rewriter does to stored records for privacy:
 * forget devices (GDPR / CCPA erasure) and truncate IP addresses once they
 * are older than the retention that attribution and fraud checks need.
 *
 * Pure module. Forgotten identifiers are kept only as keyed hashes (BLAKE2b
 * under DATA/privacy.key), never in the clear, and apply to records received
 * before the request was made. A record of a forgotten device is replaced by
 * a tombstone: the same offset, app and event id, an empty payload, so log
 * offsets stay contiguous and dedupe stays exact; readers skip tombstones.
 */
#ifndef UMG_PRIVACY_H
#define UMG_PRIVACY_H

#include "umg_bus.h"
#include "umg_event.h"

#define UMG_PRIVACY_KEY_BYTES 32
#define UMG_PRIVACY_HASH_BYTES 16

/* Identifier kinds a forget request may name. */
extern const char *const umg_privacy_id_kinds[]; /* NULL-terminated: idfa, idfv, gaid, ... user_id */

/**
 * Normalises an identifier of a kind the way ingest stores it (idfa, idfv and
 * gaid lowercased) and hashes "kind\0value" under key. UMG_EINVAL for an
 * unknown kind or an empty / over-long value.
 */
int umg_privacy_hash_id(const uint8_t key[UMG_PRIVACY_KEY_BYTES], const char *kind, umg_slice_t value,
                        uint8_t out[UMG_PRIVACY_HASH_BYTES]);

/**
 * The network an address is truncated to: IPv4 /24 ("203.0.113.7" ->
 * "203.0.113.0"), IPv6 /48 ("2001:db8:1:2::7" -> "2001:db8:1::").
 * UMG_EINVAL when ip is not an address.
 */
int umg_privacy_truncate_ip(umg_slice_t ip, char out[48]);

typedef struct umg_privacy_s umg_privacy_t;

int umg_privacy_new(const uint8_t key[UMG_PRIVACY_KEY_BYTES], umg_privacy_t **out);
void umg_privacy_free(umg_privacy_t *p);
/** Adds a forgotten identifier hash: records of app received before before_us are forgotten. */
int umg_privacy_forget(umg_privacy_t *p, uint32_t app, const uint8_t hash[UMG_PRIVACY_HASH_BYTES], int64_t before_us);
size_t umg_privacy_count(const umg_privacy_t *p);
/** Records received before this have their IP truncated (0: never). */
void umg_privacy_set_ip_cutoff(umg_privacy_t *p, int64_t cutoff_us);

typedef enum {
    UMG_PRIVACY_KEEP = 0,    /* unchanged */
    UMG_PRIVACY_REPLACE = 1, /* out holds the new payload (IP truncated) */
    UMG_PRIVACY_FORGET = 2,  /* a forgotten device: write a tombstone */
} umg_privacy_action_t;

/**
 * Decides what happens to one stored record (canonical JSON in m->payload;
 * tombstones and touches are kept as they are). dec is a decoder the
 * caller keeps (one per thread). UMG_OK with *action set, or an error for a
 * payload that cannot be read back (the caller keeps the record and logs).
 */
int umg_privacy_apply(umg_privacy_t *p, umg_event_decoder_t *dec, const umg_bus_msg_t *m, umg_buf_t *out,
                      umg_privacy_action_t *action);

/**
 * 1 when the event's device identifiers may be shared with third parties
 * (ad-network postbacks and partner exports): never for a device that opted
 * out (device.opt_out) or limits ad tracking (device.limit_ad_tracking). Such
 * events are still measured (stored, attributed, counted). Every module that
 * sends identifiers out must ask this first.
 */
int umg_privacy_may_share_ids(const umg_event_t *ev);

/* ---------------------------------------------------------------- PII at rest */

/*
 * Selected PII fields (ip, user_id and the device identifiers) can be stored
 * encrypted with AES-256-GCM: the stored string becomes
 * "enc:v1:KEYID:" + base64url(nonce[12] | ciphertext | tag[16]), with the
 * field name as associated data. Keys come from a key file, one "KEYID HEX64"
 * per line; the last line encrypts, every line decrypts. Rotation: append a
 * key; the privacy runner re-encrypts stored records with it, after which the
 * old line may be removed.
 */
enum {
    UMG_PII_IP = 1u << 0,
    UMG_PII_USER_ID = 1u << 1,
    UMG_PII_IDFA = 1u << 2,
    UMG_PII_IDFV = 1u << 3,
    UMG_PII_GAID = 1u << 4,
    UMG_PII_ANDROID_ID = 1u << 5,
    UMG_PII_OAID = 1u << 6,
    UMG_PII_CUSTOM_ID = 1u << 7,
};

typedef struct umg_pii_s umg_pii_t;

/**
 * Loads the key file and the comma-separated field list ("ip,user_id,gaid").
 * UMG_EINVAL with msg for a bad file or an unknown field.
 */
int umg_pii_load(const char *key_file, const char *fields, umg_pii_t **out, char *msg, size_t msglen);
void umg_pii_free(umg_pii_t *p);
/** Number of keys in the file: grows with each rotation. */
int umg_pii_generation(const umg_pii_t *p);

/** Encrypts value for field under the current key into a (arena) string. */
int umg_pii_encrypt(const umg_pii_t *p, const char *field, umg_slice_t value, umg_arena_t *a, umg_slice_t *out);
/**
 * Decrypts an "enc:v1:" value into dst (NUL-terminated). UMG_ENOENT when value
 * is not encrypted, UMG_EAUTH when no key opens it (wrong field, tampered,
 * unknown key), UMG_ERANGE when dst is too small.
 */
int umg_pii_decrypt(const umg_pii_t *p, const char *field, umg_slice_t value, char *dst, size_t cap, size_t *len);
/** 1 when an encrypted value uses a key older than the current one. */
int umg_pii_stale(const umg_pii_t *p, umg_slice_t value);

/** Encrypts the configured fields of an event in place (values live in a). */
int umg_pii_encrypt_event(const umg_pii_t *p, umg_event_t *ev, umg_arena_t *a);
/**
 * Decrypts every encrypted field of an event in place (plaintext lives in a).
 * A field no key opens is left as stored and UMG_EAUTH is returned after the
 * others were decrypted.
 */
int umg_pii_decrypt_event(const umg_pii_t *p, umg_event_t *ev, umg_arena_t *a);

/* The same for touches (ip and the device identifiers); *stale is set when a value uses an old key. */
struct umg_touch_s;
int umg_pii_encrypt_touch(const umg_pii_t *p, struct umg_touch_s *t, umg_arena_t *a);
int umg_pii_decrypt_touch(const umg_pii_t *p, struct umg_touch_s *t, umg_arena_t *a, int *stale);

/*
 * Identifier hashes as forget matching computes them: for each record of an
 * app with forget requests, cb gets every identifier hash looked at before a
 * match (all of them when there is none), so a caller can summarise which
 * devices a segment holds. umg_privacy_unread counts the records whose
 * identifiers could not be read (payloads that do not decode); while it
 * stays put, cb saw every identifier of every such record.
 */
typedef void (*umg_privacy_id_cb)(void *ctx, uint32_t app, const uint8_t hash[UMG_PRIVACY_HASH_BYTES]);
void umg_privacy_set_id_cb(umg_privacy_t *p, umg_privacy_id_cb cb, void *ctx);
uint64_t umg_privacy_unread(const umg_privacy_t *p);

/* With PII encryption on, forget matching and IP truncation see plaintext,
 * and records under an old key are re-encrypted (UMG_PRIVACY_REPLACE). */
void umg_privacy_set_pii(umg_privacy_t *pv, const umg_pii_t *pii);

/* ---------------------------------------------------------------- the runner */

/*
 * The daemon's privacy thread: every check_interval it looks for pending
 * forget requests in DATA/meta.db and, when there are any, seals the active
 * log segment and rewrites every segment (records of the forgotten devices
 * become tombstones), then marks the requests done and audits it. Every
 * ip_interval it also truncates the IP addresses of records received more
 * than ip_retention ago (a segment is done once all its records are that old;
 * it is flagged and not read again), and re-encrypts PII stored under an
 * older key after a rotation.
 */
typedef struct umg_privacy_runner_config_s {
    int64_t check_interval_ms;
    int64_t ip_retention_ms; /* 0: keep full addresses */
    int64_t ip_interval_ms;
    const umg_pii_t *pii; /* borrowed; NULL: no PII encryption */
    /*
     * Stores derived from the log (the attribution store) forget with it: on
     * the privacy thread, forgotten() is called with every record a forget
     * pass removes (payload as stored), then done() once the rewrite
     * succeeded, with the log's acknowledged end before it; the requests are
     * marked done only when done() returns UMG_OK (else the next pass calls
     * it again). Both may be NULL.
     */
    void (*forgotten)(void *ctx, const umg_bus_msg_t *m);
    int (*done)(void *ctx, uint64_t log_end);
    void *forget_ctx;
} umg_privacy_runner_config_t;

typedef struct umg_privacy_runner_s umg_privacy_runner_t;

int umg_privacy_runner_start(const char *data_dir, const umg_bus_ops_t *ops, umg_bus_t *bus,
                             const umg_privacy_runner_config_t *cfg, umg_privacy_runner_t **out);
void umg_privacy_runner_stop(umg_privacy_runner_t *r);

#endif
