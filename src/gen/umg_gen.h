/*
 * umg_gen.h - synthetic traffic for one app: ad touches (clicks,
 * impressions, retargeting clicks) from many sources, campaigns, adsets and
 * countries, installs (attributed and organic), sessions on a retention
 * curve, in-app events and purchases, in the exact JSON forms that
 * POST /v1/touches and POST /v1/events accept (docs/gen.md has the
 * distributions and their parameters).
 *
 * The generator is pure: no I/O, no clock, no global state. It yields items
 * in the order they are sent: non-decreasing time, except that late items
 * (late_pct) carry a `ts` hours to days before they are sent and so come
 * after later items. The same options give the same bytes
 * (on the same build: the distributions use the C library's exp and log).
 * Memory is bounded by the devices active at one time, not by the length of
 * the history: devices start in the order of their first item, and a heap
 * holds each active device's next item time.
 *
 * With fraud_pct, a layer of fraudulent traffic of its own (injected clicks,
 * click floods, data-centre bursts, bots, device farms, spoofed installs) is
 * merged in by time, each item labelled (fraud, reason, detectable); the
 * honest items stay exactly what they are without it.
 *
 * `unmogrowp gen` (umg_gen_cli) sends the items to a daemon over plain HTTP
 * or writes them to a request file for benchmarks.
 */
#ifndef UMG_GEN_H
#define UMG_GEN_H

#include "umg_core.h"

#define UMG_GEN_MAX_DAYS 29 /* the server refuses items older than 30 days */
#define UMG_GEN_MAX_DEVICES 100000000

typedef enum { UMG_GEN_ANDROID = 1, UMG_GEN_IOS = 2 } umg_gen_platform_t;

/*
 * Options. The integer ones are described by umg_gen_config_items (name,
 * default, bounds, help), so that the command line, --help and docs/gen.md
 * come from one table; fill them with umg_gen_opts_default().
 */
typedef struct umg_gen_opts_s {
    int64_t seed;          /* any value; with now_ms it decides every byte */
    int64_t devices;       /* devices that install (paid and organic), 1..UMG_GEN_MAX_DEVICES */
    int64_t days;          /* days of history ending at now_ms, 1..UMG_GEN_MAX_DAYS */
    int64_t sources;       /* ad networks, 1..12, in the order of the built-in table */
    int64_t campaigns;     /* campaigns per source, 1..20 */
    int64_t adsets;        /* adsets per campaign, 1..10 */
    int64_t organic_pct;   /* percent of installing devices with no ad touch, 0..100 */
    int64_t cvr_pct;       /* click-to-install conversion in percent, 1..100: non-converting clicks */
    int64_t ctr_pct;       /* click-through rate of the networks that report impressions, 1..100 */
    int64_t late_pct;      /* percent of sessions, in-app events and purchases sent hours to days late, 0..100 */
    int64_t reinstall_pct; /* percent of installing devices that install again days later, 0..100 */
    int64_t fraud_pct;     /* fraudulent installs on top, in percent of `devices`, 0..100 (0: none at all) */
    int64_t now_ms;        /* the end of history, Unix milliseconds; required (no default) */
    umg_gen_platform_t platform;
    uint32_t fraud_kinds; /* with fraud_pct: a mask of 1 << umg_gen_fraud_t; 0 means every kind */
} umg_gen_opts_t;

extern const umg_config_item_t umg_gen_config_items[];
extern const size_t umg_gen_config_nitems;

/** Sets every table option to its default, now_ms to 0 and the platform to Android. */
void umg_gen_opts_default(umg_gen_opts_t *o);

/* What an item is sent as: a touch of POST /v1/touches, an event of POST /v1/events, or (fraud: bot
 * clicks) the query of the click link GET /c/{app_id}?QUERY, sent without a User-Agent (the
 * server then stamps its own time on it, not ts). */
typedef enum { UMG_GEN_TOUCH = 1, UMG_GEN_EVENT = 2, UMG_GEN_LINK = 3 } umg_gen_kind_t;

typedef enum {
    UMG_GEN_CLICK = 1,
    UMG_GEN_IMPRESSION = 2,
    UMG_GEN_INSTALL = 3,
    UMG_GEN_SESSION = 4,
    UMG_GEN_INAPP = 5, /* type "event" */
    UMG_GEN_PURCHASE = 6,
} umg_gen_type_t;

/* How an install is meant to be attributed: the ground truth, not a decision. */
typedef enum {
    UMG_GEN_MATCH_ORGANIC = 0,       /* no touch at all */
    UMG_GEN_MATCH_DEVICE_ID = 1,     /* the click carries the install's gaid/idfa */
    UMG_GEN_MATCH_REFERRER = 2,      /* Android: the Play referrer carries the click's click_id */
    UMG_GEN_MATCH_PROBABILISTIC = 3, /* only IP + User-Agent (platform, OS version, model) */
    UMG_GEN_MATCH_IMPRESSION = 4,    /* view-through: an impression with the install's device id */
    UMG_GEN_MATCH_KINDS
} umg_gen_match_t;

/* Synthetic fraud (fraud_pct): what a fraudulent item is part of (docs/gen.md, "Fraud"). */
typedef enum {
    UMG_GEN_HONEST = 0,
    UMG_GEN_FRAUD_INJECTION = 1,  /* a click injected seconds before an organic install */
    UMG_GEN_FRAUD_FLOOD = 2,      /* click spam and floods that win organic installs days later */
    UMG_GEN_FRAUD_DATACENTER = 3, /* installs and clicks from data-centre addresses */
    UMG_GEN_FRAUD_BOT = 4,        /* clicks and installs with bot User-Agents */
    UMG_GEN_FRAUD_FARM = 5,       /* device farms: one IP and User-Agent, many fresh device ids */
    UMG_GEN_FRAUD_SPOOF = 6,      /* installs sent unsigned or badly signed */
    UMG_GEN_FRAUD_KINDS
} umg_gen_fraud_t;

/* How a spoofed install's request is signed wrong (gen_cli sends each in a request of its own). */
typedef enum {
    UMG_GEN_SPOOF_NONE = 0,
    UMG_GEN_SPOOF_UNSIGNED = 1, /* no X-Signature */
    UMG_GEN_SPOOF_BAD = 2,      /* a signature made with another key */
    UMG_GEN_SPOOF_STALE = 3,    /* a right signature over a timestamp 10 minutes old */
    UMG_GEN_SPOOF_KINDS
} umg_gen_spoof_t;

/*
 * One item. `json` is one element of the "touches" array of POST /v1/touches
 * (kind TOUCH) or of the "events" array of POST /v1/events (kind EVENT); it
 * is borrowed from the generator until the next umg_gen_next or
 * umg_gen_free. The other fields are ground truth for tests and summaries.
 */
typedef struct umg_gen_item_s {
    umg_gen_kind_t kind;
    umg_gen_type_t type;
    int64_t ts_ms;   /* the item's "ts" */
    int64_t sent_ms; /* when it is sent in the simulation: ts_ms, or later for a late item */
    umg_slice_t json;
    uint64_t device;       /* the device's number, in the order of its first item (from 0) */
    int64_t install_ts_ms; /* the device's latest install time when generated (installs included), else 0 */
    umg_gen_match_t match; /* installs: the intended attribution (reinstalls: that of the click before, if any) */
    int retargeting;       /* clicks: 1 for a retargeting click */
    int reinstall;         /* installs: 1 for a device's second or later install; clicks: 1 for the click before one */
    double revenue_usd;    /* purchases: the price in USD before conversion to the local currency */
    /* Labels (fraud_pct). Honest items: fraud 0, reason NULL. */
    umg_gen_fraud_t fraud;    /* what the item is part of: installs and clicks of a fraud scheme, and its victims */
    const char *reason;       /* the rule meant to catch it ("click_injection", ...), static; NULL when honest */
    int detectable;           /* 1 when a rule with its default thresholds can see it when it arrives */
    int flood_site;           /* installs of a flood: 1 + its source/site's number, else 0: one the rule cannot see
                                 on arrival is flagged later, when a later install of the site is seen to flood */
    umg_gen_spoof_t spoof;    /* installs of the spoof kind: how their request is signed wrong */
    const char *fraud_source; /* the fraudulent click's source (installs: the one claiming it), static; or NULL */
    char claim[33];           /* installs: click_id of the fraudulent click that claims it, else "" */
} umg_gen_item_t;

/* Counts of what was yielded so far. */
typedef struct umg_gen_stats_s {
    uint64_t items, touches, events;
    uint64_t clicks, impressions, retargeting_clicks;
    uint64_t installs, sessions, inapp, purchases;
    uint64_t reinstalls,
        reinstall_clicks; /* installs of devices installed before (not in installs), clicks before them */
    uint64_t late;        /* sessions, in-app events and purchases sent late */
    uint64_t installs_by_match[UMG_GEN_MATCH_KINDS];
    uint64_t devices;                             /* devices that yielded at least one item */
    uint64_t payers;                              /* devices with at least one purchase */
    double revenue_usd;                           /* the sum of purchases' revenue_usd */
    uint64_t peak_active;                         /* most devices held at once (the memory bound) */
    uint64_t fraud_installs[UMG_GEN_FRAUD_KINDS]; /* fraud_pct: installs by kind ([0]: unused) */
    uint64_t fraud_clicks[UMG_GEN_FRAUD_KINDS];   /* fraud_pct: fraudulent clicks by kind */
    uint64_t fraud_items;                         /* fraud_pct: every item of the fraud layer (victims' too) */
} umg_gen_stats_t;

typedef struct umg_gen_s umg_gen_t;

/**
 * A generator for the options (copied). UMG_EINVAL when an option is out of
 * its bounds or now_ms is not after the start of history (now_ms - days);
 * UMG_ENOMEM. *out is written on success only; the caller frees it.
 */
int umg_gen_new(const umg_gen_opts_t *o, umg_gen_t **out);

/**
 * The next item in time order (ties in a fixed order). UMG_OK with *item
 * written, UMG_ENOENT after the last one, UMG_ENOMEM (the generator cannot
 * go on).
 */
int umg_gen_next(umg_gen_t *g, umg_gen_item_t *item);

/** The counts so far. */
void umg_gen_stats(const umg_gen_t *g, umg_gen_stats_t *out);

void umg_gen_free(umg_gen_t *g);

/**
 * Runs a whole generation without writing JSON and returns its counts: what
 * umg_gen_next would yield for the same options, several times faster (for
 * progress bars and estimates). Errors as umg_gen_new.
 */
int umg_gen_count(const umg_gen_opts_t *o, umg_gen_stats_t *out);

/** "injection", "flood", "datacenter", "bot", "farm", "spoof" ("honest" for 0). */
const char *umg_gen_fraud_name(umg_gen_fraud_t f);

/** "unsigned", "bad_signature", "stale_timestamp" ("" for 0). */
const char *umg_gen_spoof_name(umg_gen_spoof_t s);

/**
 * Parses a comma-separated list of fraud kind names ("injection,flood") into a mask of
 * 1 << umg_gen_fraud_t. UMG_EINVAL naming nothing or an unknown kind.
 */
int umg_gen_fraud_kinds_parse(const char *list, uint32_t *mask);

/* The data-centre ranges the datacenter kind's addresses come from (--fraud-ip-list writes them). */
extern const char *const umg_gen_datacenter_cidrs[];
extern const size_t umg_gen_datacenter_ncidrs;

/** Names: "click", "impression", "install", "session", "event", "purchase"; "organic", "device_id", ... */
const char *umg_gen_type_name(umg_gen_type_t t);
const char *umg_gen_match_name(umg_gen_match_t m);

/**
 * `unmogrowp gen ...` (argv[0] is "gen"): parses the flags, generates and
 * sends to a daemon or writes a request file, prints a one-line JSON summary
 * on stdout. Returns the process exit status: 0 when every item was accepted
 * (or written), 1 on rejections or errors, 2 on usage errors.
 */
int umg_gen_cli(int argc, char **argv);

#endif
