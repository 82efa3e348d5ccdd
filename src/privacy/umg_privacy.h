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

/* ---------------------------------------------------------------- the runner */

/*
 * The daemon's privacy thread: every check_interval it looks for pending
 * forget requests in DATA/meta.db and, when there are any, seals the active
 * log segment and rewrites every segment (records of the forgotten devices
 * become tombstones), then marks the requests done and audits it. Every
 * ip_interval it also truncates the IP addresses of records received more
 * than ip_retention ago (a segment is done once all its records are that old;
 * it is flagged and not read again).
 */
typedef struct umg_privacy_runner_config_s {
    int64_t check_interval_ms;
    int64_t ip_retention_ms; /* 0: keep full addresses */
    int64_t ip_interval_ms;
} umg_privacy_runner_config_t;

typedef struct umg_privacy_runner_s umg_privacy_runner_t;

int umg_privacy_runner_start(const char *data_dir, const umg_bus_ops_t *ops, umg_bus_t *bus,
                             const umg_privacy_runner_config_t *cfg, umg_privacy_runner_t **out);
void umg_privacy_runner_stop(umg_privacy_runner_t *r);

#endif
