/*
 * umg_fraud.h - the fraud rules: reason codes, per-app settings (which rules
 * run, their thresholds and whether they reject or only flag), the windowed
 * counters the rules read, and the pure checks the pipeline calls.
 *
 * Pure module: no files, sockets, threads or clock; times are parameters.
 * Every rule, its default and the reasoning behind it: docs/fraud.md.
 */
#ifndef UMG_FRAUD_H
#define UMG_FRAUD_H

#include "umg_core.h"

/* Reason codes, as stored (one byte) and as the API names them. 0 = none. */
typedef enum {
    UMG_FR_NONE = 0,
    UMG_FR_CLICK_INJECTION = 1,
    UMG_FR_CLICK_SPAM = 2,
    UMG_FR_CLICK_FLOODING = 3,
    UMG_FR_SDK_SPOOFING = 4,
    UMG_FR_BLOCKED_IP = 5,
    UMG_FR_BOT_USER_AGENT = 6,
    UMG_FR_DEVICE_FARM = 7,
    UMG_FR_TIME_ANOMALY = 8,
    UMG_FR_MODEL = 9,
    UMG_FR_N
} umg_fraud_reason_t;

/** "click_injection", ...; "" for NONE or out of range. */
const char *umg_fraud_reason_name(unsigned r);
/** UMG_OK with *out set, UMG_ENOENT for an unknown name. */
int umg_fraud_reason_parse(umg_slice_t s, unsigned *out);

typedef enum { UMG_FA_REJECT = 0, UMG_FA_FLAG = 1 } umg_fraud_action_t;

typedef enum { UMG_FM_OFF = 0, UMG_FM_SHADOW = 1, UMG_FM_ENFORCE = 2 } umg_fraud_mode_t;

/* Thresholds, indexed; each belongs to one rule (umg_fraud_params[]). */
typedef enum {
    UMG_FP_INJ_MIN_CTIT_S = 0,    /* click_injection: a click this close before the install is injected */
    UMG_FP_INJ_INSTALL_BEGIN,     /* click_injection: a click after the referrer's install_begin_ts (0/1) */
    UMG_FP_SPAM_DEVICE_HOUR,      /* click_spam: clicks of one device id in one clock hour, more are rejected */
    UMG_FP_SPAM_IP_MINUTE,        /* click_spam: clicks from one IP in one clock minute */
    UMG_FP_FLOOD_WINDOW_DAYS,     /* click_flooding: trailing window of a source/site's figures */
    UMG_FP_FLOOD_MIN_INSTALLS,    /* click_flooding: installs needed before a source/site is judged */
    UMG_FP_FLOOD_MIN_LONG_SHARE,  /* click_flooding: share of long-CTIT installs at or above which ... */
    UMG_FP_FLOOD_MAX_CTI_RATE,    /* ... together with an install/click rate at or below this, flags */
    UMG_FP_BOT_EMPTY_UA,          /* bot_user_agent: a click link without User-Agent (0/1) */
    UMG_FP_FARM_IP_HOUR,          /* device_farm: installs from one IP in one clock hour, more are rejected */
    UMG_FP_FARM_FP_DAY,           /* device_farm: installs of one IP + User-Agent in one UTC day */
    UMG_FP_TIME_BEFORE_INSTALL_S, /* time_anomaly: an event dated this much before the device's install */
    UMG_FP_TIME_BACKWARDS_S,      /* time_anomaly: a device's event time going back this much */
    UMG_FP_TIME_FUTURE_S,         /* time_anomaly: an install dated this far after its receive time */
    UMG_FP_N
} umg_fraud_param_t;

typedef struct umg_fraud_param_def_s {
    const char *name; /* the JSON member inside its rule's object */
    uint8_t rule;     /* umg_fraud_reason_t */
    uint8_t is_int;   /* integer (or 0/1) rather than a fraction */
    double def, min, max;
    const char *help;
} umg_fraud_param_def_t;

extern const umg_fraud_param_def_t umg_fraud_params[UMG_FP_N];

/* One app's fraud settings. */
typedef struct umg_fraud_settings_s {
    struct {
        uint8_t enabled;
        uint8_t action; /* umg_fraud_action_t */
    } rule[UMG_FR_N];
    double p[UMG_FP_N];
    uint8_t model_mode;         /* umg_fraud_mode_t */
    double model_threshold;     /* enforce: scores at or above are rejected (reason model) */
    double model_shadow_sample; /* shadow: the share of installs scored, 0..1 */
} umg_fraud_settings_t;

/** The documented defaults (docs/fraud.md). */
void umg_fraud_settings_default(umg_fraud_settings_t *s);

/**
 * Applies a JSON object of settings onto s (members absent keep their
 * value): {"rules":{"click_spam":{"enabled":true,"action":"reject",
 * "max_clicks_per_device_hour":10},...},"model":{"mode":"shadow",
 * "threshold":0.9,"shadow_sample":0.05}}. sdk_spoofing is accepted here
 * only as {"enabled":bool} (the app's require_signature); its action is
 * always reject. On error s is unchanged, field gets the JSON path of the
 * offending member ("rules.click_spam.action") and msg says why:
 * UMG_EPARSE (not a JSON object), UMG_EINVAL (unknown member, wrong type,
 * out of bounds).
 */
int umg_fraud_settings_apply_json(umg_fraud_settings_t *s, const char *json, size_t len, char *field, size_t fieldcap,
                                  char *msg, size_t msgcap);

/** Appends the canonical JSON object of s (every member, rules in reason order). */
int umg_fraud_settings_json(const umg_fraud_settings_t *s, umg_buf_t *out);

/* -------------------------------------------------------------- windows */

/* Kinds of windowed counters, with their bucket lengths. */
typedef enum {
    UMG_FW_CLICK_DEVICE_HOUR = 0, /* key: the click's strongest device id hash */
    UMG_FW_CLICK_IP_MINUTE,       /* key: umg_attr_ip_hash */
    UMG_FW_CLICK_IP_HOUR,
    UMG_FW_INSTALL_IP_HOUR,
    UMG_FW_INSTALL_NET_HOUR, /* key: the IP's /24 (IPv4) or /64 (IPv6) */
    UMG_FW_INSTALL_FP_DAY,   /* key: IP + User-Agent */
    UMG_FW_N
} umg_fraud_window_t;

/** A window's bucket length in microseconds. */
int64_t umg_fraud_window_us(umg_fraud_window_t w);
/* The shortest horizon: the longest bucket (a day). */
#define UMG_FRAUD_HORIZON_MIN_US (INT64_C(86400) * 1000000)

/*
 * Counts per (window, app, key, bucket of the record's time), in memory. The
 * counts are a function of the records observed, in order: the pipeline
 * observes each record once (and again when it warms the counters up from
 * the log after a restart), so decisions do not depend on restarts.
 */
typedef struct umg_fraud_counts_s umg_fraud_counts_t;

/**
 * horizon_us (at least UMG_FRAUD_HORIZON_MIN_US): records dated more than this before they were received are not
 * counted (umg_fraud_in_window), so buckets that end that long (+ 20 minutes) before the latest receive time can
 * go. The memory is about 32 to 64 bytes (a 16-byte entry, a table half full or less) per key and bucket
 * within the horizon.
 */
int umg_fraud_counts_new(int64_t horizon_us, umg_fraud_counts_t **out);
void umg_fraud_counts_free(umg_fraud_counts_t *c);
/**
 * Adds 1 to the counter of (w, app, key) in the bucket of ts_us and returns
 * the count after it (0 when key is 0: an unknown key is never counted).
 * recv_us, the record's receive time, lets expired buckets go: a bucket
 * ending more than the horizon + 20 minutes before the latest recv_us is
 * dropped when the table is rebuilt. Returns 0 on allocation
 * failure too (the counter is then not kept; *oom is set).
 */
uint32_t umg_fraud_counts_add(umg_fraud_counts_t *c, umg_fraud_window_t w, uint32_t app, uint64_t key, int64_t ts_us,
                              int64_t recv_us, int *oom);
/** Starts loading the counter's slot, for an add or get a little later (the table is larger than the caches). */
void umg_fraud_counts_prefetch(const umg_fraud_counts_t *c, umg_fraud_window_t w, uint32_t app, uint64_t key,
                               int64_t ts_us);
/** The count of (w, app, key) in the bucket of ts_us. */
uint32_t umg_fraud_counts_get(const umg_fraud_counts_t *c, umg_fraud_window_t w, uint32_t app, uint64_t key,
                              int64_t ts_us);
/** Live entries, and the bytes the table takes. */
void umg_fraud_counts_stats(const umg_fraud_counts_t *c, size_t *entries, size_t *bytes);
/** Forgets everything (before a warm-up). */
void umg_fraud_counts_clear(umg_fraud_counts_t *c);

/**
 * Whether a record at ts_us, received at recv_us, takes part in the windowed
 * rules: records dated more than the horizon before they were received are
 * neither counted nor judged by them (docs/fraud.md), so the answer never
 * depends on buckets that may have been dropped.
 */
static inline int umg_fraud_in_window(int64_t ts_us, int64_t recv_us, int64_t horizon_us)
{
    return ts_us >= recv_us - horizon_us;
}

/** The 64-bit key of an IP's network (/24 for IPv4, /64 for IPv6; 0 when the text is no IP). */
uint64_t umg_fraud_net_key(umg_slice_t ip);

/* ------------------------------------------------------------- features */

/* The model's inputs, computed by the pipeline for each install (NaN when unknown). */
enum {
    UMG_FF_CTIT_LOG10_S = 0,     /* log10 of the click-to-install seconds (of the click that would win) */
    UMG_FF_MATCH_CLASS,          /* umg_attr_match_t of that click, 0 organic */
    UMG_FF_CLICKS_DEVICE_1H,     /* clicks of the device's id in the install's clock hour */
    UMG_FF_CLICKS_DEVICE_24H,    /* ... in its UTC day */
    UMG_FF_CLICKS_IP_1M,         /* clicks from the install's IP in its clock minute */
    UMG_FF_CLICKS_IP_1H,         /* ... in its clock hour */
    UMG_FF_INSTALLS_IP_1H,       /* installs from the IP in the clock hour, this one included */
    UMG_FF_INSTALLS_NET_1H,      /* ... from its /24 or /64 */
    UMG_FF_INSTALLS_FP_24H,      /* ... from the IP + User-Agent in the UTC day */
    UMG_FF_UA_PLATFORM_MISMATCH, /* the User-Agent's platform differs from the device's */
    UMG_FF_UA_MODEL_MISMATCH,    /* the User-Agent names another model than the device */
    UMG_FF_HOUR_OF_DAY,          /* UTC hour of the install */
    UMG_FF_SOURCE_CTI_RATE,      /* installs per click of the click's source/site over the flood window */
    UMG_FF_SOURCE_LONG_SHARE,    /* its share of installs with a click-to-install time of a day or more */
    UMG_FF_UA_EMPTY,             /* no User-Agent */
    UMG_FF_IP_LISTED,            /* the IP is on a blocked list */
    UMG_FF_BOT_UA,               /* the User-Agent matches a bot pattern */
    UMG_FF_TIME_SKEW_LOG10_S,    /* log10(1 + |receive time - install time| in seconds) */
    UMG_FF_REFERRER,             /* an install referrer came with the install */
    UMG_FF_CLICK_AFTER_BEGIN,    /* the click is later than the referrer's install_begin_ts */
    UMG_FRAUD_NF
};

/* Their names, in this order: umg_fmodel_feature_names (umg_fraud_model.h). */

/* ------------------------------------------------------- click flooding */

/*
 * A source/site's figures over the trailing window: clicks, installs it
 * won, and how many of those had a long click-to-install time.
 */
typedef struct umg_fraud_flood_s {
    int64_t clicks, installs, long_installs;
} umg_fraud_flood_t;

/** Whether the figures flag the source/site as a click flood under s (rule enabled or not). */
int umg_fraud_flood_flagged(const umg_fraud_settings_t *s, const umg_fraud_flood_t *f);

/* ------------------------------------------------------------- histogram */

/* Click-to-install time buckets: < 10 s, < 1 min, < 10 min, < 1 h, < 1 d, < 7 d, >= 7 d. Click flooding
 * calls the last two "long" (a day or more). */
#define UMG_FRAUD_CTIT_BUCKETS 7
#define UMG_FRAUD_CTIT_LONG_BUCKET 5
extern const int64_t umg_fraud_ctit_bounds_s[UMG_FRAUD_CTIT_BUCKETS - 1];
/** The bucket of a click-to-install time in microseconds (negative counts as 0). */
unsigned umg_fraud_ctit_bucket(int64_t ctit_us);

/* Model score buckets: [0, 0.1), [0.1, 0.2), ... [0.9, 1]. */
#define UMG_FRAUD_SCORE_BUCKETS 10
unsigned umg_fraud_score_bucket(double score);

/**
 * Whether an install is in the shadow sample: a hash of its event id below
 * the share (deterministic, so replays score the same installs).
 */
int umg_fraud_in_sample(const umg_uuid_t *event_id, double share);

#endif
