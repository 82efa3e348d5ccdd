/*
 * umg_attr.h - the pure attribution core: which ad touch earned an install,
 * reinstalls and re-attribution, re-engagement by retargeting clicks, the
 * credit of later events, a small User-Agent parser for probabilistic
 * matching, and the multi-touch credit models (rule-based, Markov, Shapley).
 *
 * Pure module: no sockets, files, threads or global state; the clock is a
 * parameter. Strings never enter the core: identifiers, IPs and click ids are
 * hashed to 64 bits and descriptive fields (source, campaign, ...) are 32-bit
 * ids interned by the caller, which also resolves them back to text. Every
 * result is a function of the arguments alone, with ties broken by a total
 * order, so replaying the log gives byte-identical decisions.
 *
 * The rules are stated with examples in docs/attribution.md.
 */
#ifndef UMG_ATTR_H
#define UMG_ATTR_H

#include "umg_core.h"

/* ------------------------------------------------------------ settings */

/*
 * Attribution settings of one app. The first three names and bounds are the
 * ones the admin API stores per app (docs/api.md); the others are fixed
 * defaults the issue names, kept configurable here.
 */
typedef struct umg_attr_settings_s {
    int64_t click_lookback_days;        /* 1..30, default 7: click-through window */
    int64_t view_lookback_hours;        /* 1..168, default 24: view-through window */
    int64_t probabilistic_window_hours; /* 1..24, default 24: probabilistic click match */
    int64_t reattribution_window_days;  /* 1..365, default 90: reinstall keeps attribution */
    int64_t reengagement_lookback_days; /* 1..30, default 7: retargeting click before a session */
    int64_t reengagement_window_days;   /* 1..90, default 30: events credited to re-engagement */
} umg_attr_settings_t;

/** Fills the defaults above. */
void umg_attr_settings_default(umg_attr_settings_t *s);
/** UMG_OK when every field is within its bounds, else UMG_ERANGE. */
int umg_attr_settings_check(const umg_attr_settings_t *s);

/*
 * The settings as a declarative configuration table (umg_config_*), keyed by
 * the same names as the struct fields and the admin API, with their bounds.
 */
extern const umg_config_item_t umg_attr_config_items[];
extern const size_t umg_attr_config_nitems;

/* Bounds of a link's own `lookback` (seconds), applied when a touch is matched. */
#define UMG_ATTR_CLICK_LOOKBACK_MIN_S 3600u          /* 1 hour */
#define UMG_ATTR_CLICK_LOOKBACK_MAX_S (30u * 86400u) /* 30 days */
#define UMG_ATTR_VIEW_LOOKBACK_MIN_S 3600u           /* 1 hour */
#define UMG_ATTR_VIEW_LOOKBACK_MAX_S (168u * 3600u)  /* 7 days */

/* ------------------------------------------------------ identifiers */

typedef enum {
    UMG_ATTR_ID_IDFA = 0,
    UMG_ATTR_ID_GAID,
    UMG_ATTR_ID_OAID,
    UMG_ATTR_ID_ANDROID_ID,
    UMG_ATTR_ID_IDFV,
    UMG_ATTR_ID_CUSTOM,
    UMG_ATTR_ID_KINDS
} umg_attr_id_kind_t;

/* A touch or an observation keeps its strongest identifiers (in the order of
 * umg_attr_id_kind_t), at most this many. */
#define UMG_ATTR_MAX_IDS 4

/**
 * The 64-bit key of one device identifier: a hash seeded by its kind, so an
 * IDFA only ever matches an IDFA. UUID-shaped values are hashed by their 16
 * bytes (case does not matter). Returns 0 (absent) for an empty value and for
 * the all-zero IDFA/GAID of a device without tracking consent.
 */
uint64_t umg_attr_id_hash(umg_attr_id_kind_t kind, umg_slice_t v);

/**
 * Fills ids[] with the keys of the present identifiers, strongest first, the
 * rest zero. v[] is indexed by umg_attr_id_kind_t (empty slices for absent
 * ones). Returns how many were kept.
 */
int umg_attr_ids_collect(uint64_t ids[UMG_ATTR_MAX_IDS], const umg_slice_t v[UMG_ATTR_ID_KINDS]);

/** The key of a click_id (never 0; 0 for an empty one). */
uint64_t umg_attr_click_hash(umg_slice_t click_id);

/**
 * Finds the `click_id` parameter in an install referrer (a URL-encoded query
 * string, as Google Play passes it, possibly encoded once more as a whole)
 * and writes its decoded value into buf. *out points into buf. UMG_ENOENT
 * when there is none (or it is empty), UMG_ERANGE when buf is too small.
 */
int umg_attr_referrer_click_id(umg_slice_t referrer, char *buf, size_t cap, umg_slice_t *out);

/* ------------------------------------------ fingerprint and User-Agent */

typedef enum {
    UMG_ATTR_PLATFORM_UNKNOWN = 0,
    UMG_ATTR_PLATFORM_IOS = 1,
    UMG_ATTR_PLATFORM_ANDROID = 2,
} umg_attr_platform_t;

/*
 * What probabilistic matching compares: the IP, the platform with its OS
 * version, and the device model. `os` packs platform << 24 | major << 16 |
 * minor << 8 | patch (0 when unknown); `model` is umg_attr_model_hash (0 when
 * unknown). 16 bytes, no padding.
 */
typedef struct umg_attr_fp_s {
    uint64_t ip; /* umg_attr_ip_hash, 0 when unknown */
    uint32_t os;
    uint32_t model;
} umg_attr_fp_t;

/* A parsed User-Agent. `model` borrows from the UA text. */
typedef struct umg_attr_ua_s {
    umg_attr_platform_t platform;
    unsigned major, minor, patch;
    umg_slice_t model; /* empty when the UA names none (iOS browsers, reduced Android UAs) */
} umg_attr_ua_t;

/**
 * Parses the platform, OS version and model from an iOS or Android
 * User-Agent: browser and WebView forms ("iPhone; CPU iPhone OS 17_2 like
 * Mac OS X", "Linux; Android 13; SM-S918B Build/..."), Dalvik, and app/SDK
 * forms ("App/1.0 (iPhone14,2; iOS 17.2.1; Scale/3.00)", "... CFNetwork/...
 * Darwin/23.2.0"). UMG_ENOENT (out untouched) when neither platform is found.
 */
int umg_attr_ua_parse(umg_slice_t ua, umg_attr_ua_t *out);

/** Packs a platform and version into umg_attr_fp_t.os; 0 when platform is unknown. */
uint32_t umg_attr_os_pack(umg_attr_platform_t platform, unsigned major, unsigned minor, unsigned patch);
/** "ios" / "android" (any case); UMG_ATTR_PLATFORM_UNKNOWN otherwise. */
umg_attr_platform_t umg_attr_platform_parse(umg_slice_t s);
/** Packs "17.2.1" / "14" for a platform; 0 when either is not understood. */
uint32_t umg_attr_os_parse(umg_attr_platform_t platform, umg_slice_t version);
/** Case-insensitive hash of a device model; 0 when empty or a generic name ("K", "iPhone", "iPad"). */
uint32_t umg_attr_model_hash(umg_slice_t model);
/** Hash of an IP in text form ("::ffff:1.2.3.4" equals "1.2.3.4"); 0 when empty. */
uint64_t umg_attr_ip_hash(umg_slice_t ip);

/**
 * Builds a fingerprint from the request IP and User-Agent and the device
 * fields an SDK sends (any may be empty). Device fields win over the UA.
 */
void umg_attr_fp_make(umg_attr_fp_t *out, umg_slice_t ip, umg_slice_t user_agent, umg_slice_t platform,
                      umg_slice_t os_version, umg_slice_t model);

/* --------------------------------------------------------------- touches */

typedef enum { UMG_ATTR_CLICK = 1, UMG_ATTR_IMPRESSION = 2 } umg_attr_touch_type_t;

enum {
    UMG_ATTR_TF_RETARGETING = 1, /* retargeting=1 on the link */
    UMG_ATTR_TF_FRAUD = 2,       /* rejected by the fraud rules: never a candidate */
};

/*
 * One click or impression as the touch store keeps it: fixed size, 112
 * bytes (the store's budget is 128 bytes a touch). Text fields are the
 * caller's 32-bit ids (0 = absent); sub1..sub5 and the raw strings stay in
 * the log, reachable through touch_id.
 */
typedef struct umg_attr_touch_s {
    int64_t ts_us;     /* server receive time (links) or the body's ts (S2S) */
    uint64_t touch_id; /* unique per app and stable on replay (a log offset, say); breaks ties */
    uint64_t ids[UMG_ATTR_MAX_IDS];
    uint64_t click_id; /* umg_attr_click_hash, 0 when none */
    umg_attr_fp_t fp;
    uint32_t app;
    uint32_t source, campaign, adset, ad, site, deep_link;
    uint32_t lookback_s; /* the link's lookback in seconds, 0 = the app's setting */
    uint8_t type;        /* umg_attr_touch_type_t */
    uint8_t flags;       /* UMG_ATTR_TF_* */
    uint8_t reason;      /* the fraud rule (umg_fraud_reason_t) that rejected or flagged it, 0 none */
    uint8_t reserved[5]; /* zero */
} umg_attr_touch_t;

/* ------------------------------------------------------------- decisions */

/* Match classes, weakest to strongest; the numeric order is the ranking. */
typedef enum {
    UMG_ATTR_MATCH_NONE = 0,
    UMG_ATTR_MATCH_IMPRESSION = 1,    /* device id, impression */
    UMG_ATTR_MATCH_PROBABILISTIC = 2, /* IP + platform + OS version (+ model), clicks only */
    UMG_ATTR_MATCH_DEVICE_ID = 3,     /* device id, click */
    UMG_ATTR_MATCH_REFERRER = 4,      /* install referrer click_id, clicks only */
} umg_attr_match_t;

typedef enum {
    UMG_ATTR_OUT_NONE = 0,             /* a session or event with no attribution effect */
    UMG_ATTR_OUT_INSTALL = 1,          /* a first install */
    UMG_ATTR_OUT_REINSTALL = 2,        /* inside the reattribution window: original attribution stands */
    UMG_ATTR_OUT_REATTRIBUTED = 3,     /* a reinstall after the window, attributed afresh */
    UMG_ATTR_OUT_IMPLICIT_INSTALL = 4, /* first session/event of a device never installed */
    UMG_ATTR_OUT_REENGAGEMENT = 5,     /* a session credited to a retargeting click */
} umg_attr_outcome_t;

typedef enum {
    UMG_ATTR_OBS_INSTALL = 1,
    UMG_ATTR_OBS_SESSION = 2,
    UMG_ATTR_OBS_EVENT = 3, /* in-app event or purchase */
} umg_attr_obs_kind_t;

/* An install, session or event as the core sees it. Zero-initialise it. */
typedef struct umg_attr_obs_s {
    int64_t ts_us; /* the event's ts */
    uint64_t ids[UMG_ATTR_MAX_IDS];
    uint64_t referrer_click; /* umg_attr_click_hash of the install referrer's click_id, 0 none */
    umg_attr_fp_t fp;
    uint32_t app;
    uint8_t kind; /* umg_attr_obs_kind_t */
    uint8_t reserved[3];
} umg_attr_obs_t;

/* Who gets the credit: a copy of the winning touch's fields. match NONE = organic. */
typedef struct umg_attr_attribution_s {
    int64_t touch_ts_us;
    uint64_t touch_id;
    uint64_t click_id;
    uint32_t source, campaign, adset, ad, site, deep_link;
    uint8_t match;      /* umg_attr_match_t */
    uint8_t touch_type; /* umg_attr_touch_type_t, 0 when organic */
    uint8_t reserved[6];
} umg_attr_attribution_t;

/* A decision. Every byte (padding included) is written, so replays compare with memcmp. */
typedef struct umg_attr_decision_s {
    int64_t ts_us;         /* the observation's time (the install time for installs) */
    int64_t decided_us;    /* `now` as passed in: the log record's server time on replay */
    uint32_t n_candidates; /* touches that matched in any class within their window */
    uint8_t outcome;       /* umg_attr_outcome_t */
    uint8_t reserved[3];
    /* Installs: the install attribution (the original one for a reinstall).
     * Re-engagement: the retargeting click. NONE: zero. */
    umg_attr_attribution_t attr;
} umg_attr_decision_t;

/*
 * What the pipeline keeps per (app, device) between events. Zero means never
 * installed. Updated only by umg_attr_apply.
 */
typedef struct umg_attr_device_s {
    int64_t install_ts_us;      /* the install that set the current attribution; 0 = none */
    int64_t last_install_ts_us; /* the latest install or reinstall */
    int64_t reeng_ts_us;        /* the session of the last re-engagement, 0 none */
    uint32_t installs;          /* installs, reattributed and implicit installs */
    uint32_t reinstalls;
    uint32_t reengagements;
    uint8_t outcome; /* how the current attribution was decided */
    uint8_t reserved[3];
    umg_attr_attribution_t install;
    umg_attr_attribution_t reeng; /* the last re-engagement's click; match NONE when none */
} umg_attr_device_t;

/* The credit of an event: install attribution, plus the re-engagement while active. */
typedef struct umg_attr_credit_s {
    umg_attr_attribution_t install;
    umg_attr_attribution_t reeng; /* zero when reeng_active is 0 */
    int32_t reeng_active;
    uint8_t reserved[4];
} umg_attr_credit_t;

/**
 * The install-attribution class of one touch for an observation, or NONE
 * when it is not a candidate: another app, fraud-rejected, later than the
 * observation, or older than its window (click lookback, the link's clamped
 * lookback, the view window for impressions, the probabilistic window for
 * probabilistic clicks). Both edges are inclusive: a touch exactly one
 * window before the install counts, one microsecond more does not.
 */
umg_attr_match_t umg_attr_touch_match(const umg_attr_settings_t *s, const umg_attr_touch_t *t,
                                      const umg_attr_obs_t *obs);

/**
 * Selects the winner among touches[0..n) (borrowed; the caller gathers them
 * from the store by every key of the observation, each touch once): the
 * strongest class, then the latest ts, then the larger touch_id. On UMG_OK
 * *winner and *match are written; UMG_ENOENT when nothing matches (organic).
 * *n_candidates (may be NULL) is written in both cases.
 */
int umg_attr_select(const umg_attr_settings_t *s, const umg_attr_touch_t *touches, size_t n, const umg_attr_obs_t *obs,
                    size_t *winner, umg_attr_match_t *match, uint32_t *n_candidates);

/**
 * Decides an install. `dev` (borrowed, may be NULL) is the device's state
 * before it: an install within reattribution_window_days of dev's install is
 * a REINSTALL keeping dev's attribution; after it, REATTRIBUTED and chosen
 * afresh; otherwise INSTALL. `now` is recorded in the decision. UMG_EINVAL
 * for NULL arguments, UMG_ERANGE for settings out of bounds; *out is written
 * on success only. Does not change dev: see umg_attr_apply.
 */
int umg_attr_decide_install(const umg_attr_settings_t *s, const umg_attr_device_t *dev, const umg_attr_touch_t *touches,
                            size_t n, const umg_attr_obs_t *obs, int64_t now, umg_attr_decision_t *out);

/**
 * Decides a session or event. A device never installed (dev NULL or its
 * install_ts_us 0) gets an IMPLICIT_INSTALL attributed like an install. An
 * installed device's session is a REENGAGEMENT when a retargeting click,
 * later than its install and than the click of its last re-engagement (one
 * re-engagement per click), matches it by device id or probabilistically
 * within reengagement_lookback_days before it; otherwise, and for events,
 * the outcome is NONE. Errors as umg_attr_decide_install.
 */
int umg_attr_on_session(const umg_attr_settings_t *s, const umg_attr_device_t *dev, const umg_attr_touch_t *touches,
                        size_t n, const umg_attr_obs_t *obs, int64_t now, umg_attr_decision_t *out);

/** Applies a decision to the device's state (a NONE decision changes nothing). */
void umg_attr_apply(umg_attr_device_t *dev, const umg_attr_decision_t *d);

/**
 * The credit of an event at ts_us: the install attribution, and the
 * re-engagement's click when ts_us lies within reengagement_window_days after
 * it (inclusive). UMG_ENOENT when the device was never installed (decide an
 * implicit install first), UMG_EINVAL for NULL arguments.
 */
int umg_attr_credit_event(const umg_attr_settings_t *s, const umg_attr_device_t *dev, int64_t ts_us,
                          umg_attr_credit_t *out);

/* Names as the API writes them ("device_id" for both device-id classes). */
const char *umg_attr_match_name(umg_attr_match_t m);
const char *umg_attr_outcome_name(umg_attr_outcome_t o);
const char *umg_attr_touch_type_name(umg_attr_touch_type_t t);

/* ------------------------------------------------- multi-touch credit */

typedef enum {
    UMG_MTA_FIRST = 0,
    UMG_MTA_LAST,
    UMG_MTA_LINEAR,
    UMG_MTA_TIME_DECAY,
    UMG_MTA_POSITION,
    UMG_MTA_MARKOV,
    UMG_MTA_SHAPLEY,
    UMG_MTA_MODELS
} umg_mta_model_t;

/*
 * One journey: its touches' channels in time order (dense ids below nch, as
 * the caller maps sources or campaigns), whether it converted and the value
 * to share (1 for installs, the revenue otherwise). Arrays are borrowed.
 */
typedef struct umg_mta_path_s {
    const uint32_t *ch;
    const int64_t *ts_us; /* touch times; needed by time_decay only */
    uint32_t n;
    int converted;
    double value; /* >= 0; ignored when not converted */
} umg_mta_path_t;

/*
 * The characteristic function of the Shapley game, over the sets of distinct
 * channels of the journeys. RATE (default): v(S) is the value per journey
 * among the journeys whose channels all lie in S, converting or not, journeys
 * without a touch included (a conversion rate, as in Shao & Li 2011 and
 * Dalessandro et al. 2012); Shapley values sum to v(all) - v({}), so they
 * are scaled to the total, a negative one counting as zero (and when none is
 * positive, each journey's value is split over its distinct channels).
 * SUBSET: v(S) is the value of the converting journeys whose channels all lie
 * in S (Zhao et al. 2018, "simplified Shapley"), which sums to the total by
 * itself, ignores non-converting journeys, and amounts to splitting each
 * journey's value equally over its distinct channels.
 */
typedef enum { UMG_MTA_SHAPLEY_RATE = 0, UMG_MTA_SHAPLEY_SUBSET = 1 } umg_mta_shapley_game_t;

typedef struct umg_mta_opts_s {
    int64_t half_life_us;       /* time_decay, default 7 days */
    uint32_t shapley_exact_max; /* exact Shapley up to this many channels (max 20), default 15 */
    uint32_t shapley_samples;   /* sampled orders above it, default 2000; cost O(coalitions) each */
    uint64_t seed;              /* sampling seed, default 1 */
    umg_mta_shapley_game_t shapley_game;
} umg_mta_opts_t;

void umg_mta_opts_default(umg_mta_opts_t *o);
int umg_mta_model_parse(umg_slice_t s, umg_mta_model_t *out);
const char *umg_mta_model_name(umg_mta_model_t m);

/**
 * Shares the value of the converting paths among channels with `model` and
 * writes credit[0..nch). Converting paths with no touch carry no credit, so
 * the credits sum to the value of the converting paths with touches (written
 * to *total, may be NULL). Markov and Shapley also learn from non-converting
 * paths. opts may be NULL for the defaults. Returns UMG_EINVAL for a channel
 * >= nch, a negative or non-finite value, or time_decay without times;
 * UMG_ENOMEM. Outputs are written on success only. Deterministic: the same
 * input (in the same order) and seed give the same bits.
 */
int umg_mta_credit(umg_mta_model_t model, const umg_mta_opts_t *opts, const umg_mta_path_t *paths, size_t npaths,
                   uint32_t nch, double *credit, double *total);

#endif
