/*
 * umg_fraud_net.h - the network-level fraud checks (issue #6): IP addresses
 * and CIDR prefixes, a longest-prefix-match table built once from many
 * lists, the registry of configured IP list files that SIGHUP reloads without
 * stopping readers, signed SDK requests (X-Signature, HMAC-SHA256 with the
 * app secret) with a replay cache, and bot User-Agent patterns.
 *
 * The table, the parsers, the signature check and the User-Agent matcher are
 * pure (data in, decision out); the registry reads files and logs. See
 * docs/fraud.md for the operator's view.
 */
#ifndef UMG_FRAUD_NET_H
#define UMG_FRAUD_NET_H

#include "umg_core.h"

/* ------------------------------------------------------------ addresses */

/*
 * An address as 16 bytes in network order; IPv4 a.b.c.d is held as the
 * IPv4-mapped IPv6 address ::ffff:a.b.c.d, so both spellings are the same
 * address everywhere below.
 */
typedef struct umg_ip_s {
    uint8_t b[16];
} umg_ip_t;

/** 1 when ip is IPv4 (IPv4-mapped IPv6). */
int umg_ip_is_v4(const umg_ip_t *ip);
/**
 * Parses an IPv4 dotted quad ("203.0.113.7", no leading zeros) or an IPv6
 * address in any RFC 4291 form ("2001:db8::1", "::ffff:203.0.113.7"); text is
 * not NUL-terminated and may not contain spaces. UMG_EINVAL otherwise.
 */
int umg_ip_parse(umg_slice_t text, umg_ip_t *out);
/**
 * Parses "ADDR/LEN" or a bare ADDR (a host: /32 or /128). *plen is in IPv6
 * terms: an IPv4 /n is 96 + n. Host bits set after the prefix are cleared and
 * reported with *host_bits = 1 (may be NULL). UMG_EINVAL for anything else.
 */
int umg_cidr_parse(umg_slice_t text, umg_ip_t *net, int *plen, int *host_bits);

/* ------------------------------------------------------ prefix table (LPM) */

/* Lists per table at most: a match reports its list id and a mask of every list that covers the address. */
#define UMG_CIDR_MAX_LISTS 64

typedef struct umg_cidr_builder_s umg_cidr_builder_t;
typedef struct umg_cidr_s umg_cidr_t; /* immutable once built: share it between threads */

int umg_cidr_builder_new(umg_cidr_builder_t **out);
/** Accepts NULL. */
void umg_cidr_builder_free(umg_cidr_builder_t *b);
/** Adds net/plen (plen 0..128 in IPv6 terms, as umg_cidr_parse) for list (0..63). Host bits are ignored. */
int umg_cidr_builder_add(umg_cidr_builder_t *b, const umg_ip_t *net, int plen, unsigned list);
/** Prefixes added so far. */
size_t umg_cidr_builder_count(const umg_cidr_builder_t *b);
/**
 * Builds the table from what was added (the builder is left as it was);
 * *out is the caller's (umg_cidr_free). UMG_ENOMEM.
 *
 * The table is a sorted array of disjoint address intervals, one per change
 * of answer, with an index of up to 2^20 (IPv4) or 2^18 (IPv6) buckets over
 * the bits the prefixes span (IPv4 and IPv6 have one table each): a lookup
 * is one index read and a short branch-free binary search.
 */
int umg_cidr_build(const umg_cidr_builder_t *b, umg_cidr_t **out);
/** Accepts NULL. */
void umg_cidr_free(umg_cidr_t *t);
/**
 * The list of the longest prefix containing ip, or -1 when none does. When
 * several lists hold that same prefix the lowest list id answers. *mask (may
 * be NULL) gets bit i set for every list i with any prefix containing ip.
 */
int umg_cidr_lookup(const umg_cidr_t *t, const umg_ip_t *ip, uint64_t *mask);
/** The same for an IPv4 address in host byte order (0xCB007107 is 203.0.113.7). */
int umg_cidr_lookup4(const umg_cidr_t *t, uint32_t addr, uint64_t *mask);
/**
 * umg_cidr_lookup for n addresses at once: lists[i] (and masks[i], when masks is not NULL) for
 * ips[i]. Faster per address than one by one when the table is larger than the cache: the memory
 * reads of 16 addresses are issued before any is waited for. All arrays are the caller's.
 */
void umg_cidr_lookup_batch(const umg_cidr_t *t, const umg_ip_t *ips, size_t n, int *lists, uint64_t *masks);

typedef struct umg_cidr_stats_s {
    size_t prefixes;   /* prefixes added (duplicates included) */
    size_t intervals4; /* IPv4 intervals */
    size_t intervals6; /* IPv6 intervals */
    size_t answers;    /* distinct (list, mask) answers */
    size_t bytes;      /* memory held by the table */
} umg_cidr_stats_t;
void umg_cidr_stats(const umg_cidr_t *t, umg_cidr_stats_t *out);

/* ------------------------------------------------------------ list files */

/*
 * The list file format (docs/fraud.md): plain text, one CIDR ("198.51.100.0/24",
 * "2001:db8::/32") or bare address per line; '#' or ';' starts a comment (at
 * the start of a line or after blanks); blank lines are skipped; CRLF line
 * ends and a UTF-8 byte order mark are tolerated. A bad line is reported and
 * skipped, the rest loads.
 */
typedef struct umg_iplist_sink_s {
    /* One prefix (plen in IPv6 terms). Non-zero stops the parse with that code. */
    int (*prefix)(void *ctx, const umg_ip_t *net, int plen);
    /* One bad line (1-based), with why; the line is skipped. May be NULL. */
    void (*error)(void *ctx, size_t line, const char *message);
    void *ctx;
} umg_iplist_sink_t;

#define UMG_IPLIST_MAX_LINE 512

/**
 * Parses a whole list file held in data[len] (any bytes). *bad (may be NULL)
 * gets the number of bad lines. UMG_OK, or what sink->prefix returned.
 */
int umg_iplist_parse(const char *data, size_t len, const umg_iplist_sink_t *sink, size_t *bad);

/* ------------------------------------------------------ the list registry */

/*
 * The configured IP lists (fraud.ip_lists, "name=path,name=path"), loaded into
 * one umg_cidr_t snapshot. umg_iplists_reload() builds a new snapshot off the
 * hot path and publishes it with one atomic pointer swap; readers never block
 * and never see a freed snapshot.
 *
 * Reclamation is epoch-based: a reader holds one of a fixed set of slots
 * (claimed with one compare-and-swap, released with one store) stamped with
 * the global epoch while it reads; the reloading thread swaps the pointer,
 * advances the epoch, and frees the old snapshot only once no slot holds an
 * older epoch. Only the reloading thread ever waits.
 */
typedef struct umg_iplists_s umg_iplists_t;

#define UMG_IPLIST_NAME_MAX 32

/**
 * Parses the spec (empty: no lists) into a registry with an empty snapshot;
 * nothing is read yet. Names are 1 to 32 of [A-Za-z0-9_.-], unique, at most
 * 64 lists; paths are non-empty. UMG_EINVAL with err saying what is wrong.
 */
int umg_iplists_new(const char *spec, umg_iplists_t **out, char *err, size_t errlen);
/** Accepts NULL. No reader may be inside. */
void umg_iplists_free(umg_iplists_t *r);
/** How many lists are configured, and list id's name (borrowed until umg_iplists_free), NULL when out of range. */
int umg_iplists_count(const umg_iplists_t *r);
const char *umg_iplists_name(const umg_iplists_t *r, int id);
/**
 * Reads every list file, builds a new snapshot and publishes it, then waits
 * until no reader holds the old one and frees it. Bad lines are logged with
 * FILE:LINE and skipped. When a file cannot be read (or memory runs out) the
 * old snapshot stays, err says why, and UMG_EIO (UMG_ENOMEM) is returned.
 * Call from one thread at a time (it serializes itself).
 */
int umg_iplists_reload(umg_iplists_t *r, char *err, size_t errlen);
/** Prefixes loaded for list id by the last successful reload. */
size_t umg_iplists_prefixes(const umg_iplists_t *r, int id);

/* A reader's hold on the current snapshot; between enter and leave only. */
typedef struct umg_iplists_guard_s {
    unsigned slot;
} umg_iplists_guard_t;

/**
 * The current snapshot, valid until umg_iplists_leave(g). Never blocks (a
 * reader only spins when more than 256 readers are inside at once). Hold it
 * for a batch of lookups, not across waits.
 */
const umg_cidr_t *umg_iplists_enter(umg_iplists_t *r, umg_iplists_guard_t *g);
void umg_iplists_leave(umg_iplists_t *r, umg_iplists_guard_t *g);
/**
 * One lookup of an address given as text (umg_ip_parse) in the current
 * snapshot: *list gets the list id of the longest matching prefix or -1,
 * *mask (may be NULL) every list that matches. UMG_EINVAL when ip is not an
 * address. Name the list with umg_iplists_name().
 */
int umg_iplists_lookup(umg_iplists_t *r, umg_slice_t ip, int *list, uint64_t *mask);
/** The same for a parsed address. */
int umg_iplists_lookup_ip(umg_iplists_t *r, const umg_ip_t *ip, int *list, uint64_t *mask);

/* ------------------------------------------------------ signed requests */

/*
 * sdk_spoofing (docs/fraud.md): X-Signature: v1=<hex HMAC-SHA256(app_secret,
 * timestamp + "." + body)> with X-Signature-Timestamp (Unix seconds) within
 * the window of the server clock, each signature accepted once.
 */
typedef enum {
    UMG_SIG_OK = 0,
    UMG_SIG_MISSING,  /* a header is absent or empty */
    UMG_SIG_INVALID,  /* malformed header, or no secret of the app gives this MAC */
    UMG_SIG_STALE,    /* correctly signed, but the timestamp is outside the window */
    UMG_SIG_REPLAYED, /* correctly signed and fresh, but this exact signature was accepted before */
} umg_sig_result_t;

#define UMG_SIG_WINDOW_S 300
#define UMG_SIG_HEX_LEN 64

/** "signature_missing", "signature_invalid", ...; "ok" for UMG_SIG_OK. */
const char *umg_sig_reason(umg_sig_result_t r);

/**
 * Writes the lower-case hex HMAC-SHA256(secret, ts + "." + body) and a NUL
 * into hex. For SDKs, tests and `gen`.
 */
void umg_sig_sign(umg_slice_t secret, umg_slice_t ts, umg_slice_t body, char hex[UMG_SIG_HEX_LEN + 1]);

/*
 * Signatures seen within the window, to refuse replays: a fixed number of
 * entries in mutex-striped shards (memory is taken per shard on first use,
 * 16 bytes an entry). Safe from any thread. When a shard's probe window is
 * full of unexpired entries the one expiring first is dropped and counted
 * (umg_fraud_signature_replay_evicted_total): a replay of that signature
 * would then pass, an honest request is never refused for lack of room.
 */
typedef struct umg_sig_cache_s umg_sig_cache_t;
/** max_entries is rounded up to a power of two (at least 1024). */
int umg_sig_cache_new(size_t max_entries, umg_sig_cache_t **out);
/** Accepts NULL. */
void umg_sig_cache_free(umg_sig_cache_t *c);

/**
 * Checks one request: sig and ts are the header values (empty when absent),
 * body the exact bytes received, secrets[n] (n 1 or 2: the current secret
 * and a rotated-out one still in its overlap) the keys to try, in constant
 * time. now_s is the server clock, window_s the allowed skew either way
 * (UMG_SIG_WINDOW_S). A good signature is remembered in cache (may be NULL:
 * no replay check) until it would be stale anyway.
 */
umg_sig_result_t umg_sig_verify(umg_slice_t sig, umg_slice_t ts, umg_slice_t body, const umg_slice_t *secrets, size_t n,
                                int64_t now_s, int64_t window_s, umg_sig_cache_t *cache);
/** Counts a result in umg_fraud_signature_total{result=...} (for the ingest path). */
void umg_sig_count(umg_sig_result_t r);

/* ------------------------------------------------------ bot User-Agents */

/*
 * A compiled set of case-insensitive substring patterns. A pattern starting
 * with '^' must match at the start of the User-Agent; one starting with '!'
 * is an exemption: a User-Agent containing it is never a bot (app HTTP stacks
 * such as "cfnetwork/" carry the app's own name, which may be "Spider
 * Solitaire"). Patterns are 2 to 128 bytes after the prefix.
 */
typedef struct umg_botua_s umg_botua_t;

/** The built-in patterns (docs/fraud.md explains each and what was left out), NULL-terminated. */
extern const char *const umg_botua_defaults[];

/**
 * Compiles patterns from a spec: a comma-separated list, where the entry
 * "default" stands for umg_botua_defaults, or "@PATH" for a file of one
 * pattern per line ('#' comments, blank lines skipped; "default" allowed on
 * a line). An empty spec compiles an empty matcher. UMG_EINVAL / UMG_EIO
 * with err naming the entry (or FILE:LINE).
 */
int umg_botua_compile(const char *spec, umg_botua_t **out, char *err, size_t errlen);
/** Accepts NULL. */
void umg_botua_free(umg_botua_t *m);
/** Patterns compiled (exemptions included) and pattern i's text as given (borrowed). */
int umg_botua_count(const umg_botua_t *m);
const char *umg_botua_pattern(const umg_botua_t *m, int i);

#define UMG_BOTUA_EMPTY (-2)
/**
 * The index of the pattern that matches ua (the one matching at the earliest
 * position; among those the first listed), -1 when none does or an exemption
 * matches, UMG_BOTUA_EMPTY when ua is empty or only blanks.
 */
int umg_botua_match(const umg_botua_t *m, umg_slice_t ua);

#endif
