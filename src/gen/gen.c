/*
 * gen.c - owns the synthetic traffic generator: the tables of sources,
 * campaigns, countries and devices, the distributions (arrivals over the
 * day, click-to-install delays, retention, sessions, purchases), the device
 * state machine and the JSON of each touch and event (docs/gen.md).
 *
 * Devices arrive in the order of their first item (sorted uniform order
 * statistics mapped through an hourly intensity), so a device starts only
 * when the time reaches it. Each active device keeps an 80-byte state with
 * its next item's time in a binary heap; its fixed profile (country, model,
 * ids, IP, campaign) is derived again from its number whenever it emits, so
 * memory is bounded by the devices active at once. Every random draw comes
 * from a device's own splitmix64 stream, and JSON is written after all the
 * draws of an item, so counting without JSON (umg_gen_count) walks exactly
 * the same timeline.
 *
 * With fraud_pct, the fraud layer (section "fraud") plans its actors when the
 * generator starts, from streams of its own, and keeps them in a heap of its
 * own; umg_gen_next takes its items when they come strictly before the next
 * honest one, so the honest timeline is not touched.
 */
#include "umg_gen.h"

#include <math.h>
#include <stdlib.h>

#define SEC INT64_C(1000)
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)

/* ---------------------------------------------------------------- options */

#define OFF(f) offsetof(umg_gen_opts_t, f)

const umg_config_item_t umg_gen_config_items[] = {
    {"seed", UMG_CFG_INT, "1", 0, INT64_MAX, OFF(seed), "Random seed; with --now it decides every byte."},
    {"devices", UMG_CFG_INT, "1000", 1, UMG_GEN_MAX_DEVICES, OFF(devices),
     "Devices that install the app (paid and organic); ad-only devices come on top."},
    {"days", UMG_CFG_INT, "14", 1, UMG_GEN_MAX_DAYS, OFF(days),
     "Days of history ending at --now (the server refuses items older than 30 days)."},
    {"sources", UMG_CFG_INT, "7", 1, 12, OFF(sources),
     "Ad networks, taken in order from: meta, google, tiktok, unity, applovin, ironsource, snap, mintegral, "
     "moloco, liftoff, vungle, reddit."},
    {"campaigns", UMG_CFG_INT, "4", 1, 20, OFF(campaigns), "Campaigns per source (the first ones get more traffic)."},
    {"adsets", UMG_CFG_INT, "3", 1, 10, OFF(adsets), "Adsets per campaign (three ads each)."},
    {"organic", UMG_CFG_INT, "35", 0, 100, OFF(organic_pct), "Percent of installing devices with no ad touch."},
    {"cvr", UMG_CFG_INT, "10", 1, 100, OFF(cvr_pct),
     "Click-to-install conversion, percent: sets how many clicks do not convert."},
    {"ctr", UMG_CFG_INT, "8", 1, 100, OFF(ctr_pct),
     "Click-through rate, percent, of the networks that report impressions: sets how many impressions there are."},
    {"late", UMG_CFG_INT, "0", 0, 100, OFF(late_pct),
     "Percent of sessions, in-app events and purchases sent hours to days after their ts (after later items)."},
    {"reinstall", UMG_CFG_INT, "0", 0, 100, OFF(reinstall_pct),
     "Percent of installing devices that install again 1-6 or 8-21 days later, 60% of them after a new click."},
    {"fraud", UMG_CFG_INT, "0", 0, 100, OFF(fraud_pct),
     "Fraudulent installs on top of the honest ones, in percent of --devices, with their clicks (labelled: "
     "--fraud-labels); 0 makes none."},
};
const size_t umg_gen_config_nitems = UMG_ARRAY_SIZE(umg_gen_config_items);

void umg_gen_opts_default(umg_gen_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    umg_config_defaults(umg_gen_config_items, umg_gen_config_nitems, o);
    o->platform = UMG_GEN_ANDROID;
}

/* ------------------------------------------------------------ randomness */

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* splitmix64: one 64-bit state, passes BigCrush, and any state is a valid seed. */
static uint64_t rnd(uint64_t *s)
{
    *s += UINT64_C(0x9e3779b97f4a7c15);
    return mix64(*s);
}

/* Uniform in [0, 1). */
static double unit(uint64_t *s)
{
    return (double)(rnd(s) >> 11) * 0x1.0p-53;
}

/* Uniform in (0, 1]: safe for log(). */
static double unit_pos(uint64_t *s)
{
    return ((double)(rnd(s) >> 11) + 1.0) * 0x1.0p-53;
}

static uint32_t below(uint64_t *s, uint32_t n)
{
    return (uint32_t)(((rnd(s) >> 32) * (uint64_t)n) >> 32);
}

static int chance(uint64_t *s, double p)
{
    return unit(s) < p;
}

static double normal(uint64_t *s)
{
    double u1 = unit_pos(s), u2 = unit(s);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Log-normal with the given median; sigma is the standard deviation of its log. */
static double lognormal(uint64_t *s, double median, double sigma)
{
    return median * exp(sigma * normal(s));
}

static double expo(uint64_t *s, double mean)
{
    return -mean * log(unit_pos(s));
}

/* Failures before the first success, with the given mean, at most cap. */
static int geom(uint64_t *s, double mean, int cap)
{
    double q = mean / (1.0 + mean);
    int k = 0;
    while (k < cap && unit(s) < q) {
        k++;
    }
    return k;
}

static int poisson(uint64_t *s, double mean, int cap)
{
    double l = exp(-mean), p = 1.0;
    int k = -1;
    do {
        k++;
        p *= unit(s);
    } while (p > l && k < cap);
    return k;
}

static int pick(uint64_t *s, const uint16_t *w, int n)
{
    uint32_t total = 0;
    for (int i = 0; i < n; i++) {
        total += w[i];
    }
    uint32_t x = below(s, total);
    for (int i = 0; i < n; i++) {
        if (x < w[i]) {
            return i;
        }
        x -= w[i];
    }
    return n - 1;
}

/* Index 0..n-1 with weight 1/(i+1) (cum holds the partial sums): the first campaigns and
 * adsets carry most traffic. */
static int zipf(uint64_t *s, const double *cum, int n)
{
    double x = unit(s) * cum[n - 1];
    int i = 0;
    while (i < n - 1 && x >= cum[i]) {
        i++;
    }
    return i;
}

static void zipf_init(double *cum, int n)
{
    double t = 0;
    for (int i = 0; i < n; i++) {
        t += 1.0 / (i + 1);
        cum[i] = t;
    }
}

/* ---------------------------------------------------------------- tables */

typedef struct source_s {
    const char *name;
    uint16_t weight;   /* share of paid traffic */
    uint8_t reports;   /* sends impressions (view-through) */
    uint8_t id_digits; /* length of its campaign ids */
    const char *const *sites;
    uint8_t nsites; /* 0: sites are publisher apps */
} source_t;

static const char *const meta_sites[] = {"facebook_feed",   "instagram_feed",   "instagram_stories",
                                         "instagram_reels", "audience_network", "messenger_inbox"};
static const char *const google_sites[] = {"youtube", "google_search", "google_display", "google_play", "discover"};
static const char *const tiktok_sites[] = {"tiktok_feed", "pangle", "tiktok_topview"};
static const char *const snap_sites[] = {"snapchat_stories", "snapchat_discover", "snapchat_spotlight"};
static const char *const reddit_sites[] = {"reddit_feed", "reddit_conversation"};

static const source_t sources[] = {
    {"meta", 26, 0, 18, meta_sites, 6}, {"google", 24, 0, 11, google_sites, 5}, {"tiktok", 12, 1, 19, tiktok_sites, 3},
    {"unity", 8, 1, 7, NULL, 0},        {"applovin", 10, 1, 8, NULL, 0},        {"ironsource", 6, 1, 7, NULL, 0},
    {"snap", 4, 1, 12, snap_sites, 3},  {"mintegral", 4, 1, 8, NULL, 0},        {"moloco", 3, 1, 10, NULL, 0},
    {"liftoff", 2, 1, 7, NULL, 0},      {"vungle", 2, 1, 7, NULL, 0},           {"reddit", 1, 0, 9, reddit_sites, 2},
};

/* Publisher apps that show ads of the networks without a site list of their own. */
static const char *const studios[] = {"pixelfox", "bluewhale", "tinyforge", "moonbyte",
                                      "happyowl", "redpanda",  "cloudnine", "ironleaf"};
static const char *const games[] = {"merge3",   "wordhunt",    "solitaire", "runner",
                                    "idlefarm", "blockpuzzle", "bubblepop", "tilematch"};

static const char *const themes[] = {
    "summer_sale",   "evergreen",     "lookalike_payers", "broad_installs",   "aeo_purchase",
    "holiday_push",  "weekend_boost", "new_season",       "brand_video",      "level_up",
    "playable_test", "tcpa_d7",       "value_optimized",  "creative_refresh", "launch_burst",
    "winter_event",  "black_friday",  "spring_update",    "roas_d7",          "always_on",
};
static const char *const adset_names[] = {"broad",           "lal_1pct_payers", "lal_5pct_installs",  "interest_puzzle",
                                          "interest_casual", "age_25_44",       "high_value_devices", "women_35_plus",
                                          "tier1_video",     "advantage_plus"};
static const char *const ad_formats[] = {"video_15s", "video_30s", "playable", "static_1080", "carousel", "ugc_video"};

typedef struct country_s {
    const char *code; /* lower case, as campaign names use it */
    const char *locale;
    const char *currency;
    uint16_t weight;
    int8_t tz;       /* hours from UTC (the main zone) */
    int8_t decimals; /* how prices are written */
    double rate;     /* local units per USD */
    double step;     /* prices are rounded up to a multiple of this ... */
    double minus;    /* ... minus this (4.99 rather than 5) */
} country_t;

static const country_t countries[] = {
    {"us", "en_US", "USD", 22, -5, 2, 1.0, 1, 0.01},   {"br", "pt_BR", "BRL", 9, -3, 2, 5.0, 1, 0.01},
    {"in", "en_IN", "INR", 9, 5, 0, 83.0, 10, 1},      {"de", "de_DE", "EUR", 6, 1, 2, 0.92, 1, 0.01},
    {"gb", "en_GB", "GBP", 5, 0, 2, 0.79, 1, 0.01},    {"fr", "fr_FR", "EUR", 5, 1, 2, 0.92, 1, 0.01},
    {"jp", "ja_JP", "JPY", 6, 9, 0, 150.0, 10, 0},     {"kr", "ko_KR", "KRW", 3, 9, 0, 1350.0, 100, 0},
    {"mx", "es_MX", "MXN", 5, -6, 2, 17.0, 1, 0.01},   {"id", "id_ID", "IDR", 5, 7, 0, 15500.0, 1000, 1},
    {"tr", "tr_TR", "TRY", 3, 3, 2, 32.0, 1, 0.01},    {"es", "es_ES", "EUR", 3, 1, 2, 0.92, 1, 0.01},
    {"it", "it_IT", "EUR", 3, 1, 2, 0.92, 1, 0.01},    {"ca", "en_CA", "CAD", 3, -5, 2, 1.37, 0.5, 0.01},
    {"au", "en_AU", "AUD", 2, 10, 2, 1.5, 0.5, 0.01},  {"ph", "en_PH", "PHP", 3, 8, 2, 56.0, 1, 0.01},
    {"vn", "vi_VN", "VND", 2, 7, 0, 25000.0, 1000, 0},
};
#define NCOUNTRIES ((int)UMG_ARRAY_SIZE(countries))

#define C(x) (UINT32_C(1) << (x))
enum { US, BR, IN, DE, GB, FR, JP, KR, MX, ID, TR, ES, IT, CA, AU, PH, VN };
/* A campaign targets one geo: a country or a group of countries. */
static const struct {
    const char *name;
    uint32_t mask;
} geos[] = {
    {"us", C(US)},
    {"ww", 0x1ffff},
    {"br", C(BR)},
    {"tier1", C(US) | C(GB) | C(DE) | C(CA) | C(AU) | C(JP)},
    {"eu", C(DE) | C(GB) | C(FR) | C(ES) | C(IT)},
    {"latam", C(BR) | C(MX)},
    {"jp", C(JP)},
    {"asia", C(JP) | C(KR) | C(ID) | C(PH) | C(VN) | C(IN)},
    {"de", C(DE)},
    {"in", C(IN)},
    {"tr", C(TR)},
};
#undef C
#define GEO_WW 1

typedef struct model_s {
    const char *name;
    uint16_t weight;
    const char *os[3]; /* OS versions seen on it */
} model_t;

static const model_t android_models[] = {
    {"Pixel 8", 4, {"15", "14", NULL}},       {"Pixel 7a", 3, {"14", "15", NULL}},
    {"SM-S918B", 5, {"14", "13", NULL}},      {"SM-S911B", 4, {"14", "13", NULL}},
    {"SM-A546B", 7, {"14", "13", NULL}},      {"SM-A155F", 6, {"14", NULL, NULL}},
    {"SM-A135F", 5, {"13", "12", NULL}},      {"23021RAAEG", 6, {"13", "14", NULL}},
    {"2201117TG", 5, {"12", "13", "11"}},     {"moto g54 5G", 3, {"14", "13", NULL}},
    {"CPH2581", 2, {"14", NULL, NULL}},       {"RMX3771", 3, {"13", "14", NULL}},
    {"V2207", 3, {"13", NULL, NULL}},         {"TECNO KI5k", 3, {"12", NULL, NULL}},
    {"Infinix X6831", 2, {"12", "13", NULL}},
};
static const model_t ios_models[] = {
    {"iPhone16,2", 4, {"17.5.1", "17.6.1", "18.0"}},   {"iPhone16,1", 4, {"17.5.1", "17.6.1", "18.0"}},
    {"iPhone15,4", 5, {"17.5.1", "17.6.1", "18.0"}},   {"iPhone15,3", 3, {"17.4.1", "17.5.1", "17.6.1"}},
    {"iPhone15,2", 4, {"17.4.1", "17.5.1", "17.6.1"}}, {"iPhone14,7", 5, {"16.7.8", "17.5.1", "17.6.1"}},
    {"iPhone14,5", 6, {"16.7.8", "17.4.1", "17.5.1"}}, {"iPhone14,2", 3, {"16.7.8", "17.5.1", NULL}},
    {"iPhone13,2", 4, {"16.7.8", "17.5.1", NULL}},     {"iPhone12,1", 5, {"16.7.8", "17.5.1", NULL}},
    {"iPhone14,6", 2, {"17.5.1", "17.6.1", NULL}},
};

/* Android build ids by OS version, as WebView and Dalvik User-Agents carry them. */
static const char *android_build(const char *os)
{
    switch (os[1] == '\0' ? os[0] - '0' : (os[0] - '0') * 10 + os[1] - '0') {
    case 15: return "AP3A.241005.015";
    case 14: return "UP1A.231005.007";
    case 13: return "TP1A.220624.014";
    case 12: return "SP1A.210812.016";
    default: return "RP1A.200720.012";
    }
}

static const char *const chrome_versions[] = {"124.0.6367.82", "125.0.6422.165", "126.0.6478.122", "127.0.6533.103"};
static const char *const app_versions[] = {"1.5.2", "1.5.1", "1.4.9", "1.4.7"};
static const uint16_t app_version_w[] = {55, 25, 12, 8};
#define SDK_VERSION "2.3.1"
#define APP_NAME "DemoGame"
#define DEEP_LINK_SCHEME "demogame"

/* Prices in USD, and how often each is bought by ordinary payers and by whales. */
static const double prices[] = {0.99, 1.99, 4.99, 9.99, 19.99, 49.99, 99.99};
static const char *const skus[] = {"gems_100",  "gems_250",   "gems_700",  "gems_1500",
                                   "gems_3500", "gems_10000", "gems_25000"};
static const char *const sku_names[] = {"gem_pack_tiny",  "starter_bundle", "gem_pack_small", "gem_pack_medium",
                                        "gem_pack_large", "gem_chest",      "gem_vault"};
static const uint16_t price_w[] = {40, 25, 18, 9, 5, 2, 1};
static const uint16_t whale_price_w[] = {5, 10, 20, 25, 20, 12, 8};

/* Arrivals by UTC hour (a mix of time zones), and sessions by local hour. */
static const double utc_hour_w[24] = {1.00, 0.95, 0.85, 0.75, 0.70, 0.70, 0.75, 0.80, 0.85, 0.90, 0.95, 1.00,
                                      1.05, 1.10, 1.15, 1.20, 1.20, 1.25, 1.30, 1.35, 1.35, 1.30, 1.20, 1.10};
static const uint16_t local_hour_w[24] = {30,  20,  10, 10, 10,  20,  50,  80,  90,  90,  90,  100,
                                          110, 100, 90, 90, 100, 110, 130, 150, 160, 150, 110, 60};

/* -------------------------------------------------------- distributions */

/* Retention: the share of installers with a session on day d, through D1 35%, D7 15%, D30 5%
 * (a power law between those points). A user is alive until day L, with P(L >= d) = R(d) / ACTIVE,
 * and has sessions on each day it is alive with probability ACTIVE, which gives R(d) exactly. */
#define R1 0.35
#define R7 0.15
#define R30 0.05
#define ACTIVE 0.6

static double retention(double d)
{
    if (d <= 0) {
        return 1.0;
    }
    if (d <= 7) {
        return R1 * pow(d, log(R7 / R1) / log(7.0));
    }
    return R7 * pow(d / 7.0, log(R30 / R7) / log(30.0 / 7.0));
}

/* The last day (since install) the user may be active: the inverse of R(d) / ACTIVE. */
static int lifetime(uint64_t *s)
{
    double u = unit_pos(s), d;
    if (u > retention(1) / ACTIVE) {
        return 0;
    }
    if (u >= R7 / ACTIVE) {
        d = pow(u / (R1 / ACTIVE), log(7.0) / log(R7 / R1));
    } else {
        d = 7.0 * pow(u / (R7 / ACTIVE), log(30.0 / 7.0) / log(R30 / R7));
    }
    return d > 400 ? 400 : (int)d;
}

/* Click to install: most within minutes (the download), a long tail over days. */
static int64_t install_delay(uint64_t *s, umg_gen_match_t m)
{
    int64_t cap = m == UMG_GEN_MATCH_DEVICE_ID || m == UMG_GEN_MATCH_REFERRER ? 7 * DAY - HOUR : DAY - 10 * MIN;
    double ms;
    for (int i = 0;; i++) {
        if (m == UMG_GEN_MATCH_IMPRESSION) {
            ms = lognormal(s, 90.0 * MIN, 1.0); /* view-through: hours, under the 24-hour window */
        } else if (chance(s, 0.85)) {
            ms = 20.0 * SEC + lognormal(s, 5.0 * MIN, 1.1);
        } else {
            ms = lognormal(s, 6.0 * HOUR, 1.4);
        }
        if (ms < (double)cap || i == 8) {
            break;
        }
    }
    return ms < (double)cap ? (int64_t)ms + 1 : cap;
}

/* ---------------------------------------------------------------- devices */

enum { DK_ORGANIC, DK_PAID, DK_CLICKER, DK_VIEWER, DK_KINDS };
enum { ST_TOUCH, ST_CONV, ST_INSTALL, ST_SESSION, ST_EVENT, ST_RETARGET, ST_RECLICK, ST_END };
enum { F_FIRST = 1, F_TUTORIAL = 2, F_SIGNUP = 4, F_PAID = 8, F_RECLICK = 16 };

/* What a device carries from one item to the next. */
typedef struct dev_s {
    int64_t ts;         /* the next item's time */
    int64_t install_ts; /* 0 until installed */
    int64_t conv_ts;    /* the converting touch */
    int64_t mark;       /* the session's end, or the session (install) a retargeting click (reclick) precedes */
    int64_t reinst_ts;  /* when the device installs again (reinstall_pct), 0 for never or done */
    uint64_t seq;       /* device number: the profile's seed and the heap's tie-break */
    uint64_t rng;       /* the timeline's random stream */
    uint32_t n;         /* items so far: the ids' seed */
    uint32_t conv_n;    /* item number of the converting touch: its click_id */
    uint16_t day, life, last_day, level;
    uint8_t kind, step, left, today, flags;
} gdev_t;

/* What is fixed for a device: derived from its number whenever it emits. */
typedef struct profile_s {
    umg_gen_match_t match; /* paid devices */
    int opted_out;         /* all-zero advertising id, limit_ad_tracking */
    int src, camp, adset, ad, site;
    int country, model, os, app_version, chrome;
    int payer, whale, organic_referrer;
    uint64_t ids[5]; /* drawn; written out by profile_text() only when JSON is wanted */
    uint32_t ipw[6]; /* ipw[0]: 0 IPv4, 1 IPv6 */
    char adid[37], idfv[37], android_id[17];
    char ip[48];
    const char *ua; /* the SDK User-Agent in place of the model's (fraud: bots); NULL for honest devices */
} profile_t;

/* A heap entry keeps the device's next time next to its slot, so that sifting does not touch
 * the pool; equal times go by slot (slots are handed out deterministically). */
typedef struct heap_s {
    int64_t ts;
    uint32_t slot;
    uint32_t pad;
} heap_t;

struct umg_gen_s {
    umg_gen_opts_t o;
    int json; /* 0: count only */
    uint64_t key;
    int64_t start, now;
    int nsrc;
    uint16_t src_w[UMG_ARRAY_SIZE(sources)], rep_w[UMG_ARRAY_SIZE(sources)];
    int has_rep;
    double camp_cum[20], adset_cum[10];
    uint32_t src_cum[UMG_ARRAY_SIZE(sources)], rep_cum[UMG_ARRAY_SIZE(sources)];
    uint32_t geo_cum[UMG_ARRAY_SIZE(geos)][NCOUNTRIES];
    uint32_t model_cum[UMG_ARRAY_SIZE(android_models)];
    int nmodels;
    /* arrivals */
    uint64_t arr_rng;
    uint64_t remaining[DK_KINDS];
    uint64_t arrived;
    double arr_u;
    int64_t next_arrival; /* INT64_MAX when none is left */
    double *cum;          /* arrival intensity, cumulative by hour */
    int nhours;
    /* active devices: a pool, its free list and a heap of indices by (ts, seq) */
    gdev_t *devs;
    uint32_t ndevs, cap;
    uint32_t *freel, nfree;
    heap_t *heap;
    uint32_t nheap;
    /* late items: a heap by (send time, number), each with its JSON */
    struct late_s **late;
    uint32_t nlate, late_cap;
    uint64_t late_seq;
    umg_buf_t out;
    umg_gen_stats_t st;
    struct fraud_s *fr; /* fraud_pct: the fraud layer, NULL without */
};

/* ---------------------------------------------------------------- profile */

/* A draw from weights given as partial sums (the tables umg_gen_new precomputes). */
static int pick_cum(uint64_t *s, const uint32_t *cum, int n)
{
    uint32_t x = below(s, cum[n - 1]);
    int i = 0;
    while (i < n - 1 && x >= cum[i]) {
        i++;
    }
    return i;
}

static void cum_init(uint32_t *cum, const uint16_t *w, int n)
{
    uint32_t t = 0;
    for (int i = 0; i < n; i++) {
        t += w[i];
        cum[i] = t;
    }
}

static int pick_source(const umg_gen_t *g, uint64_t *s, int reporting)
{
    return pick_cum(s, reporting ? g->rep_cum : g->src_cum, g->nsrc);
}

static const model_t *models(const umg_gen_t *g, int *n)
{
    *n = g->o.platform == UMG_GEN_IOS ? (int)UMG_ARRAY_SIZE(ios_models) : (int)UMG_ARRAY_SIZE(android_models);
    return g->o.platform == UMG_GEN_IOS ? ios_models : android_models;
}

static void make_uuid(uint64_t a, uint64_t b, char out[37])
{
    umg_uuid_t u;
    memcpy(u.b, &a, 8);
    memcpy(u.b + 8, &b, 8);
    u.b[6] = (uint8_t)((u.b[6] & 0x0f) | 0x40);
    u.b[8] = (uint8_t)((u.b[8] & 0x3f) | 0x80);
    umg_uuid_format(&u, out);
}

static int geo_of(int src, int camp)
{
    return (src * 3 + camp * 7) % (int)UMG_ARRAY_SIZE(geos);
}

/* The IP: IPv4 from 198.18.0.0/15 (RFC 2544, for benchmarks), split between countries in
 * proportion to their weight, or IPv6 from 2001:db8::/32 (documentation) with the country in
 * the third group. */
static void draw_ip(uint64_t *s, int country, uint32_t w[6])
{
    w[0] = chance(s, 0.35);
    if (w[0]) {
        for (int i = 1; i < 6; i++) {
            w[i] = below(s, 65536);
        }
        return;
    }
    uint32_t total = 0, first = 0;
    for (int i = 0; i < NCOUNTRIES; i++) {
        total += countries[i].weight;
    }
    for (int i = 0; i < country; i++) {
        first += countries[i].weight;
    }
    uint32_t lo = first * 512 / total, hi = (first + countries[country].weight) * 512 / total;
    w[1] = lo + below(s, hi > lo ? hi - lo : 1);
    w[2] = 1 + below(s, 254);
}

static char *put_s(char *p, const char *s);
static char *put_u64(char *p, uint64_t v);
static char *put_hex(char *p, uint32_t v);

static void profile_text(profile_t *p)
{
    make_uuid(p->ids[0], p->ids[1], p->adid);
    make_uuid(p->ids[2], p->ids[3], p->idfv);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        p->android_id[i] = hex[(p->ids[4] >> (60 - 4 * i)) & 15];
    }
    p->android_id[16] = '\0';
    const uint32_t *w = p->ipw;
    char *o = p->ip;
    if (w[0]) {
        o = put_s(o, "2001:db8:");
        o = put_hex(o, 0x100 + (uint32_t)p->country);
        for (int i = 1; i < 6; i++) {
            *o++ = ':';
            o = put_hex(o, w[i]);
        }
    } else {
        o = put_s(o, "198.");
        o = put_u64(o, 18 + w[1] / 256);
        *o++ = '.';
        o = put_u64(o, w[1] % 256);
        *o++ = '.';
        o = put_u64(o, w[2]);
    }
    *o = '\0';
}

static void profile_make(const umg_gen_t *g, const gdev_t *d, profile_t *p)
{
    uint64_t s = g->key ^ mix64(d->seq * UINT64_C(0x9e3779b97f4a7c15) + 1);
    int ios = g->o.platform == UMG_GEN_IOS;
    memset(p, 0, sizeof(*p));
    if (d->kind == DK_PAID) {
        /* Android: 5% view-through, 45% Play referrer, 38% device id, 12% IP + User-Agent only.
         * iOS (ATT consent about 30%): 4% view-through, 28% IDFA, 68% IP + User-Agent only. */
        static const uint16_t aw[] = {0, 38, 45, 12, 5}, iw[] = {0, 28, 0, 68, 4};
        p->match = (umg_gen_match_t)pick(&s, ios ? iw : aw, UMG_GEN_MATCH_KINDS);
        if (p->match == UMG_GEN_MATCH_IMPRESSION && !g->has_rep) {
            p->match = UMG_GEN_MATCH_DEVICE_ID;
        }
        p->opted_out =
            p->match == UMG_GEN_MATCH_PROBABILISTIC || (p->match == UMG_GEN_MATCH_REFERRER && chance(&s, 0.1));
    } else {
        p->match = UMG_GEN_MATCH_ORGANIC;
        p->opted_out = chance(&s, ios ? 0.70 : 0.10);
    }
    if (d->kind != DK_ORGANIC) {
        p->src = pick_source(g, &s, d->kind == DK_VIEWER || p->match == UMG_GEN_MATCH_IMPRESSION);
        p->camp = zipf(&s, g->camp_cum, (int)g->o.campaigns);
        p->adset = zipf(&s, g->adset_cum, (int)g->o.adsets);
        p->ad = (int)below(&s, 3);
        p->site = (int)below(&s, 64);
        p->country = pick_cum(&s, g->geo_cum[geo_of(p->src, p->camp)], NCOUNTRIES);
    } else {
        p->country = pick_cum(&s, g->geo_cum[GEO_WW], NCOUNTRIES);
    }
    int nm;
    const model_t *ms = models(g, &nm);
    p->model = pick_cum(&s, g->model_cum, nm);
    int nos = ms[p->model].os[2] ? 3 : ms[p->model].os[1] ? 2 : 1;
    static const uint16_t osw[] = {60, 30, 10};
    p->os = pick(&s, osw, nos);
    p->app_version = pick(&s, app_version_w, UMG_ARRAY_SIZE(app_version_w));
    p->chrome = (int)below(&s, UMG_ARRAY_SIZE(chrome_versions));
    for (int i = 0; i < 5; i++) {
        p->ids[i] = rnd(&s);
    }
    draw_ip(&s, p->country, p->ipw);
    p->payer = chance(&s, 0.05);
    p->whale = chance(&s, 0.15);
    p->organic_referrer = chance(&s, 0.8);
}

/* ------------------------------------------------------------ JSON writing */

/*
 * Items are written into g->out after umg_buf_reserve(ITEM_MAX): every string comes from the
 * tables above or is formatted here with a bounded length, so an item stays far below it.
 */
#define ITEM_MAX 4096

static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}
#define PUT(p, lit) put((p), (lit), sizeof(lit) - 1)

static char *put_s(char *p, const char *s)
{
    return put(p, s, strlen(s));
}

/* ,"key":"value" (the values are plain ASCII without quotes or backslashes). */
static char *put_kv(char *p, const char *key, const char *val)
{
    *p++ = ',';
    *p++ = '"';
    p = put_s(p, key);
    p = PUT(p, "\":\"");
    p = put_s(p, val);
    *p++ = '"';
    return p;
}

static char *put_u64(char *p, uint64_t v)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0) {
        *p++ = tmp[--n];
    }
    return p;
}

static char *put_i64(char *p, int64_t v)
{
    if (v < 0) {
        *p++ = '-';
        return put_u64(p, 0 - (uint64_t)v);
    }
    return put_u64(p, (uint64_t)v);
}

static char *put_hex(char *p, uint32_t v)
{
    static const char hex[] = "0123456789abcdef";
    int shift = 28;
    while (shift > 0 && (v >> shift) == 0) {
        shift -= 4;
    }
    for (; shift >= 0; shift -= 4) {
        *p++ = hex[(v >> shift) & 15];
    }
    return p;
}

static char *put_ki(char *p, const char *key, int64_t v)
{
    *p++ = ',';
    *p++ = '"';
    p = put_s(p, key);
    p = PUT(p, "\":");
    return put_i64(p, v);
}

static void item_id(const umg_gen_t *g, const gdev_t *d, uint64_t salt, char out[37])
{
    uint64_t a = mix64(g->key ^ mix64(d->seq + salt) ^ ((uint64_t)d->n << 20));
    make_uuid(a, mix64(a + salt), out);
}

static char *put_hex64(char *p, uint64_t v)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 60; i >= 0; i -= 4) {
        *p++ = hex[(v >> i) & 15];
    }
    return p;
}

/* The click_id of the device's n-th item: 32 hex digits, as the server would make one. */
static void click_id(const umg_gen_t *g, const gdev_t *d, uint32_t n, char out[33])
{
    uint64_t a = mix64(g->key ^ mix64(d->seq + 0xc11c) ^ ((uint64_t)n << 24));
    put_hex64(put_hex64(out, a), mix64(a + 0xc11c));
    out[32] = '\0';
}

static const char *os_of(const umg_gen_t *g, const profile_t *p)
{
    int nm;
    return models(g, &nm)[p->model].os[p->os];
}

static const char *model_of(const umg_gen_t *g, const profile_t *p)
{
    int nm;
    return models(g, &nm)[p->model].name;
}

/* The User-Agent of an ad click or impression: an in-app browser or WebView. */
static char *put_touch_ua(const umg_gen_t *g, const profile_t *p, char *w)
{
    const char *os = os_of(g, p);
    if (g->o.platform == UMG_GEN_IOS) {
        w = PUT(w, "Mozilla/5.0 (iPhone; CPU iPhone OS ");
        for (const char *c = os; *c; c++) {
            *w++ = *c == '.' ? '_' : *c;
        }
        return PUT(w, " like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148");
    }
    w = PUT(w, "Mozilla/5.0 (Linux; Android ");
    w = put_s(w, os);
    *w++ = ';';
    *w++ = ' ';
    w = put_s(w, model_of(g, p));
    w = PUT(w, " Build/");
    w = put_s(w, android_build(os));
    w = PUT(w, "; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/");
    w = put_s(w, chrome_versions[p->chrome]);
    return PUT(w, " Mobile Safari/537.36");
}

/* The User-Agent of the app's own requests (the SDK). */
static char *put_sdk_ua(const umg_gen_t *g, const profile_t *p, char *w)
{
    const char *os = os_of(g, p);
    if (g->o.platform == UMG_GEN_IOS) {
        w = PUT(w, APP_NAME "/");
        w = put_s(w, app_versions[p->app_version]);
        w = PUT(w, " (");
        w = put_s(w, model_of(g, p));
        w = PUT(w, "; iOS ");
        w = put_s(w, os);
        return PUT(w, "; Scale/3.00)");
    }
    w = PUT(w, "Dalvik/2.1.0 (Linux; U; Android ");
    w = put_s(w, os);
    *w++ = ';';
    *w++ = ' ';
    w = put_s(w, model_of(g, p));
    w = PUT(w, " Build/");
    w = put_s(w, android_build(os));
    *w++ = ')';
    return w;
}

static char *put_site(char *w, int src, int site)
{
    if (sources[src].nsites > 0) {
        return put_s(w, sources[src].sites[site % sources[src].nsites]);
    }
    w = PUT(w, "com.");
    w = put_s(w, studios[site % 8]);
    *w++ = '.';
    return put_s(w, games[(site / 8) % 8]);
}

/* A campaign id: the source's usual number of digits, fixed per campaign (and country, for
 * retargeting campaigns). */
static char *put_campaign_id(char *w, int src, int camp, uint64_t salt)
{
    uint64_t base = 1;
    for (int i = 1; i < sources[src].id_digits; i++) {
        base *= 10;
    }
    uint64_t h = mix64((uint64_t)src * 1000003u + (uint64_t)camp * 7919u + salt);
    return put_u64(w, base + h % (9 * base));
}

/* What a touch was for: one ad of one adset of one campaign. */
typedef struct ad_ref_s {
    int src, camp, adset, ad, site;
} ad_ref_t;

typedef struct touch_s {
    umg_gen_type_t type; /* click or impression */
    ad_ref_t ad;
    int retargeting;
    int id_form; /* 0: the advertising id, 1: the all-zero id, 2: no device */
} touch_t;

/* Opens the string member ,"key":" (the value follows, then a closing quote). */
static char *put_key(char *p, const char *key)
{
    *p++ = ',';
    *p++ = '"';
    p = put_s(p, key);
    return PUT(p, "\":\"");
}

static void write_touch(umg_gen_t *g, const gdev_t *d, const profile_t *p, const touch_t *t)
{
    char *p0 = g->out.ptr, *w = p0, id[37];
    int ios = g->o.platform == UMG_GEN_IOS;
    const ad_ref_t *a = &t->ad;
    w = PUT(w, "{\"type\":\"");
    w = put_s(w, t->type == UMG_GEN_CLICK ? "click" : "impression");
    *w++ = '"';
    item_id(g, d, 0x70c4, id);
    w = put_kv(w, "touch_id", id);
    w = put_ki(w, "ts", d->ts);
    w = put_kv(w, "source", sources[a->src].name);
    w = put_key(w, "campaign");
    if (t->retargeting) {
        w = PUT(w, "retarget_lapsed_");
        w = put_s(w, countries[p->country].code);
    } else {
        w = put_s(w, themes[(a->src * 5 + a->camp) % 20]);
        *w++ = '_';
        w = put_s(w, geos[geo_of(a->src, a->camp)].name);
    }
    *w++ = '"';
    w = put_key(w, "campaign_id");
    w = put_campaign_id(w, a->src, a->camp, t->retargeting ? (uint64_t)p->country + 77 : 0);
    *w++ = '"';
    if (t->retargeting) {
        w = put_kv(w, "adset", a->adset % 2 ? "payers_lapsed" : "lapsed_3d_plus");
        w = put_key(w, "ad");
        w = PUT(w, "comeback_offer_v");
        *w++ = (char)('1' + a->ad);
    } else {
        w = put_kv(w, "adset", adset_names[(a->camp + a->adset) % 10]);
        w = put_key(w, "ad");
        w = put_s(w, ad_formats[(a->adset * 2 + a->ad) % 6]);
        *w++ = '_';
        *w++ = 'v';
        *w++ = (char)('1' + (a->camp + a->ad) % 4);
    }
    *w++ = '"';
    w = put_key(w, "site");
    w = put_site(w, a->src, a->site);
    *w++ = '"';
    if (t->type == UMG_GEN_CLICK) {
        char cid[33];
        click_id(g, d, d->n, cid);
        w = put_kv(w, "click_id", cid);
    }
    if (t->id_form < 2) {
        w = PUT(w, ",\"device\":{\"");
        w = put_s(w, ios ? "idfa" : "gaid");
        w = PUT(w, "\":\"");
        w = put_s(w, t->id_form == 0 ? p->adid : "00000000-0000-0000-0000-000000000000");
        w = PUT(w, "\"}");
    }
    w = put_kv(w, "ip", p->ip);
    w = put_key(w, "user_agent");
    w = put_touch_ua(g, p, w);
    *w++ = '"';
    if (t->retargeting) {
        w = PUT(w, ",\"retargeting\":true");
        w = put_key(w, "deep_link");
        w = PUT(w, DEEP_LINK_SCHEME "://offer/comeback_");
        *w++ = (char)('1' + a->ad);
        *w++ = '"';
    }
    *w++ = '}';
    g->out.len = (size_t)(w - p0);
}

/* The event's common part: id, type, name, ts, device, ip, user agent, user id. */
static char *event_head(umg_gen_t *g, const gdev_t *d, const profile_t *p, const char *type, const char *name)
{
    char *w = g->out.ptr, buf[40];
    int ios = g->o.platform == UMG_GEN_IOS;
    const char *zero = "00000000-0000-0000-0000-000000000000";
    w = PUT(w, "{\"event_id\":\"");
    item_id(g, d, 0xe4e7, buf);
    w = put(w, buf, 36);
    *w++ = '"';
    w = put_kv(w, "type", type);
    if (name != NULL) {
        w = put_kv(w, "name", name);
    }
    w = put_ki(w, "ts", d->ts);
    w = PUT(w, ",\"device\":{\"");
    if (ios) {
        w = PUT(w, "idfa\":\"");
        w = put_s(w, p->opted_out ? zero : p->adid);
        w = PUT(w, "\",\"idfv\":\"");
        w = put_s(w, p->idfv);
        w = PUT(w, "\",\"platform\":\"ios\"");
    } else {
        w = PUT(w, "gaid\":\"");
        w = put_s(w, p->opted_out ? zero : p->adid);
        w = PUT(w, "\",\"android_id\":\"");
        w = put_s(w, p->android_id);
        w = PUT(w, "\",\"platform\":\"android\"");
    }
    w = put_kv(w, "os_version", os_of(g, p));
    w = put_kv(w, "model", model_of(g, p));
    w = put_kv(w, "app_version", app_versions[p->app_version]);
    w = put_kv(w, "sdk_version", SDK_VERSION);
    w = put_kv(w, "locale", countries[p->country].locale);
    if (p->opted_out) {
        w = PUT(w, ",\"limit_ad_tracking\":true");
    }
    w = PUT(w, "}");
    w = put_kv(w, "ip", p->ip);
    w = PUT(w, ",\"user_agent\":\"");
    w = p->ua != NULL ? put_s(w, p->ua) : put_sdk_ua(g, p, w);
    *w++ = '"';
    if (d->flags & F_SIGNUP) {
        w = put_key(w, "user_id");
        *w++ = 'u';
        *w++ = '_';
        w = put_hex64(w, mix64(g->key ^ d->seq)) - 4;
        *w++ = '"';
    }
    return w;
}

static void event_done(umg_gen_t *g, char *w)
{
    *w++ = '}';
    g->out.len = (size_t)(w - g->out.ptr);
}

/* ---------------------------------------------------------------- emitting */

static ad_ref_t ad_draw(const umg_gen_t *g, uint64_t *s, int reporting)
{
    ad_ref_t a;
    a.src = pick_source(g, s, reporting);
    a.camp = zipf(s, g->camp_cum, (int)g->o.campaigns);
    a.adset = zipf(s, g->adset_cum, (int)g->o.adsets);
    a.ad = (int)below(s, 3);
    a.site = (int)below(s, 64);
    return a;
}

static ad_ref_t ad_of(const profile_t *p)
{
    return (ad_ref_t){p->src, p->camp, p->adset, p->ad, p->site};
}

/* Touches of opted-out devices carry the all-zero id half of the time, else no device. */
static int id_form(uint64_t *s, const profile_t *p)
{
    return p->opted_out ? (chance(s, 0.5) ? 1 : 2) : 0;
}

static void emit_touch(umg_gen_t *g, gdev_t *d, const profile_t *p, const touch_t *t, umg_gen_item_t *it)
{
    it->kind = UMG_GEN_TOUCH;
    it->type = t->type;
    it->retargeting = t->retargeting;
    if (t->type == UMG_GEN_CLICK) {
        g->st.clicks++;
        g->st.retargeting_clicks += t->retargeting != 0;
    } else {
        g->st.impressions++;
    }
    g->st.touches++;
    if (g->json) {
        write_touch(g, d, p, t);
    }
}

/* A touch before the converting one (paid devices), or a touch of an ad-only device. */
static void step_touch(umg_gen_t *g, gdev_t *d, const profile_t *p, umg_gen_item_t *it)
{
    touch_t t = {0};
    t.id_form = id_form(&d->rng, p);
    if (d->kind == DK_PAID) {
        /* Other networks reached the device first; before a view-through install only impressions. */
        int imp_only = p->match == UMG_GEN_MATCH_IMPRESSION;
        t.ad = ad_draw(g, &d->rng, imp_only);
        t.type = imp_only || (sources[t.ad.src].reports && chance(&d->rng, 0.6)) ? UMG_GEN_IMPRESSION : UMG_GEN_CLICK;
    } else {
        t.ad = ad_of(p);
        t.type = d->kind == DK_CLICKER && d->left == 1 ? UMG_GEN_CLICK : UMG_GEN_IMPRESSION;
    }
    d->left--;
    int64_t next = d->ts;
    if (d->kind == DK_PAID) {
        d->step = d->left > 0 ? ST_TOUCH : ST_CONV;
        next += 10 * SEC + (int64_t)expo(&d->rng, (d->left > 0 ? 5.0 : 4.0) * HOUR);
    } else if (d->left == 0) {
        d->step = ST_END;
    } else {
        /* The click comes minutes after the last impression; impressions hours apart. */
        double mean = d->kind == DK_VIEWER ? 3.0 * HOUR : d->left == 1 ? 5.0 * MIN : 40.0 * MIN;
        next += 5 * SEC + (int64_t)expo(&d->rng, mean);
    }
    emit_touch(g, d, p, &t, it);
    d->ts = next;
}

static void step_conv(umg_gen_t *g, gdev_t *d, const profile_t *p, umg_gen_item_t *it)
{
    touch_t t = {0};
    t.ad = ad_of(p);
    t.type = p->match == UMG_GEN_MATCH_IMPRESSION ? UMG_GEN_IMPRESSION : UMG_GEN_CLICK;
    t.id_form = id_form(&d->rng, p);
    d->conv_ts = d->ts;
    d->conv_n = d->n;
    int64_t delay = install_delay(&d->rng, p->match);
    emit_touch(g, d, p, &t, it);
    d->step = ST_INSTALL;
    d->ts += delay;
}

/* Whether the device installs again (reinstall_pct), when, and after a new click or not: drawn
 * from a stream of its own, so that the option at 0 changes nothing else. Half come back 1-6
 * days after the install, half 8-21 days after: clear of a 7-day reattribution window. */
static void reinstall_plan(const umg_gen_t *g, gdev_t *d)
{
    if (g->o.reinstall_pct == 0) {
        return;
    }
    uint64_t s = g->key ^ mix64(d->seq * UINT64_C(0xa0761d6478bd642f) + 0x2e1a57);
    if (unit(&s) * 100.0 >= (double)g->o.reinstall_pct) {
        return;
    }
    double days = chance(&s, 0.5) ? 1.0 + 5.0 * unit(&s) : 8.0 + 13.0 * unit(&s);
    d->reinst_ts = d->install_ts + (int64_t)(days * (double)DAY);
    if (chance(&s, 0.6)) {
        d->flags |= F_RECLICK;
    }
}

static void step_install(umg_gen_t *g, gdev_t *d, const profile_t *p, umg_gen_item_t *it)
{
    int again = d->install_ts != 0;
    d->install_ts = d->ts;
    d->life = (uint16_t)lifetime(&d->rng);
    d->day = d->last_day = 0;
    d->today = (uint8_t)geom(&d->rng, 0.7, 5);
    d->flags |= F_FIRST;
    int64_t begin = d->ts - 8 * SEC - (int64_t)expo(&d->rng, 40.0 * SEC);
    int64_t first_open = 500 + (int64_t)below(&d->rng, 3000);
    it->kind = UMG_GEN_EVENT;
    it->type = UMG_GEN_INSTALL;
    it->match = p->match;
    if (again) {
        /* A reinstall: after a new click it is meant to match as the device's touches do. */
        it->reinstall = 1;
        it->match = !(d->flags & F_RECLICK) ? UMG_GEN_MATCH_ORGANIC
                    : p->opted_out          ? UMG_GEN_MATCH_PROBABILISTIC
                                            : UMG_GEN_MATCH_DEVICE_ID;
        d->flags &= (uint8_t)~F_RECLICK;
        g->st.reinstalls++;
    } else {
        g->st.installs++;
        g->st.installs_by_match[p->match]++;
        reinstall_plan(g, d);
    }
    g->st.events++;
    if (g->json) {
        char *w = event_head(g, d, p, "install", NULL);
        int android = g->o.platform == UMG_GEN_ANDROID && !again;
        if (android && p->match == UMG_GEN_MATCH_REFERRER) {
            char cid[33];
            click_id(g, d, d->conv_n, cid);
            w = PUT(w, ",\"install_referrer\":{\"referrer\":\"utm_source=");
            w = put_s(w, sources[p->src].name);
            w = PUT(w, "&utm_medium=cpc&utm_campaign=");
            w = put_s(w, themes[(p->src * 5 + p->camp) % 20]);
            *w++ = '_';
            w = put_s(w, geos[geo_of(p->src, p->camp)].name);
            w = PUT(w, "&click_id=");
            w = put(w, cid, 32);
            *w++ = '"';
            w = put_ki(w, "click_ts", d->conv_ts);
            w = put_ki(w, "install_begin_ts", UMG_MAX(begin, d->conv_ts));
            *w++ = '}';
        } else if (android && p->match == UMG_GEN_MATCH_ORGANIC && p->organic_referrer) {
            w = PUT(w, ",\"install_referrer\":{\"referrer\":\"utm_source=google-play&utm_medium=organic\"");
            w = put_ki(w, "install_begin_ts", begin);
            *w++ = '}';
        }
        event_done(g, w);
    }
    d->step = ST_SESSION;
    d->ts += first_open;
}

/* A time on day `day` since install at an hour the user's country plays at. */
static int64_t session_time(gdev_t *d, const profile_t *p, int day)
{
    int64_t day_start = d->install_ts + day * DAY;
    int local = pick(&d->rng, local_hour_w, 24);
    int utc = ((local - countries[p->country].tz) % 24 + 24) % 24;
    int64_t tod = ((day_start % DAY) + DAY) % DAY;
    int64_t off = ((utc * HOUR - tod) % DAY + DAY) % DAY;
    int64_t t = day_start + off + (int64_t)below(&d->rng, (uint32_t)HOUR);
    return t >= day_start + DAY ? t - HOUR : t;
}

/* After a session: another one today, the first one of the next active day (maybe after a
 * retargeting click), or the end of the device. */
/* The reinstall is due: the install (at the planned time, at least 2 minutes after the last
 * item) and, for some, a click minutes before it. */
static void reinstall_next(gdev_t *d, int64_t base)
{
    int64_t at = UMG_MAX(d->reinst_ts, base + 2 * MIN);
    d->reinst_ts = 0;
    if (d->flags & F_RECLICK) {
        int64_t delay = 20 * SEC + (int64_t)lognormal(&d->rng, 5.0 * MIN, 1.1);
        d->mark = at;
        d->ts = UMG_MAX(at - UMG_MIN(delay, 50 * MIN), base + SEC);
        d->step = ST_RECLICK;
    } else {
        d->ts = at;
        d->step = ST_INSTALL;
    }
}

static void next_session(umg_gen_t *g, gdev_t *d, const profile_t *p)
{
    int64_t base = d->mark;
    d->flags &= (uint8_t)~F_FIRST;
    if (d->today > 0) {
        int64_t t = base + 5 * MIN + (int64_t)expo(&d->rng, 2.5 * HOUR);
        if (t < d->install_ts + (d->day + 1) * DAY && (d->reinst_ts == 0 || t < d->reinst_ts)) {
            d->today--;
            d->ts = t;
            d->step = ST_SESSION;
            return;
        }
    }
    int day = -1;
    for (int dd = d->day + 1; dd <= d->life; dd++) {
        if (d->install_ts + dd * DAY > g->now || (d->reinst_ts != 0 && d->install_ts + dd * DAY > d->reinst_ts)) {
            break;
        }
        if (chance(&d->rng, ACTIVE)) {
            day = dd;
            break;
        }
    }
    if (day < 0) {
        if (d->reinst_ts != 0) {
            reinstall_next(d, base);
            return;
        }
        d->step = ST_END;
        return;
    }
    int64_t t = UMG_MAX(session_time(d, p, day), base + MIN);
    if (d->reinst_ts != 0 && t >= d->reinst_ts) {
        reinstall_next(d, base);
        return;
    }
    int gap = day - d->last_day;
    d->today = (uint8_t)geom(&d->rng, 0.6, 4);
    d->day = d->last_day = (uint16_t)day;
    /* Lapsed users are the retargeting campaigns' audience. */
    if (gap >= 3 && chance(&d->rng, 0.3)) {
        int64_t r = t - (int64_t)lognormal(&d->rng, 45.0 * MIN, 1.0);
        if (r > base + SEC) {
            d->mark = t;
            d->ts = r;
            d->step = ST_RETARGET;
            return;
        }
    }
    d->ts = t;
    d->step = ST_SESSION;
}

static void step_session(umg_gen_t *g, gdev_t *d, const profile_t *p, umg_gen_item_t *it)
{
    double dur = lognormal(&d->rng, 4.0 * MIN, 0.9);
    dur = dur < 20.0 * SEC ? 20.0 * SEC : dur > 2.0 * HOUR ? 2.0 * HOUR : dur;
    int events = (d->flags & F_FIRST ? 1 : 0) + poisson(&d->rng, 1.4, 12);
    it->kind = UMG_GEN_EVENT;
    it->type = UMG_GEN_SESSION;
    g->st.sessions++;
    g->st.events++;
    if (g->json) {
        event_done(g, event_head(g, d, p, "session", NULL));
    }
    d->mark = d->ts + (int64_t)dur;
    d->left = (uint8_t)events;
    if (events > 0) {
        d->step = ST_EVENT;
        d->ts += 1 + (int64_t)(dur / (events + 1) * (0.5 + unit(&d->rng)));
        d->ts = UMG_MIN(d->ts, d->mark);
    } else {
        next_session(g, d, p);
    }
}

/* Local price: the USD price converted, rounded up to the country's step, minus its ending. */
static double local_price(const country_t *c, double usd)
{
    double k = ceil(usd * c->rate / c->step - 1e-9);
    return k * c->step - c->minus;
}

enum { E_TUTORIAL, E_SIGNUP, E_LEVEL, E_AD, E_ACHIEVEMENT, E_PURCHASE };

/* One in-app event or purchase, as drawn. */
typedef struct inapp_s {
    int what, tier, variant, stars;
    int64_t secs;
} inapp_t;

static void write_inapp(umg_gen_t *g, const gdev_t *d, const profile_t *p, const inapp_t *e)
{
    static const char *const names[] = {"tutorial_complete", "sign_up", "level_complete", "ad_watched",
                                        "achievement_unlocked"};
    static const char *const methods[] = {"google", "apple", "email", "facebook"};
    static const char *const placements[] = {"rewarded_continue", "rewarded_coins", "interstitial_level_end",
                                             "banner_menu"};
    static const char *const achievements[] = {"first_win", "streak_7", "collector", "perfect_level"};
    const country_t *c = &countries[p->country];
    int purchase = e->what == E_PURCHASE;
    char *w = event_head(g, d, p, purchase ? "purchase" : "event", purchase ? sku_names[e->tier] : names[e->what]);
    if (purchase) {
        w = PUT(w, ",\"revenue\":");
        w += sprintf(w, "%.*f", c->decimals, local_price(c, prices[e->tier]));
        w = put_kv(w, "currency", c->currency);
    }
    /* Every member is written with a leading comma; the first one's becomes the brace. */
    w = PUT(w, ",\"props\":");
    char *open = w;
    switch (e->what) {
    case E_TUTORIAL: w = put_ki(w, "duration_s", e->secs); break;
    case E_SIGNUP: w = put_kv(w, "method", methods[e->variant]); break;
    case E_LEVEL:
        w = put_ki(w, "level", d->level);
        w = put_ki(w, "stars", e->stars);
        w = put_ki(w, "duration_s", e->secs);
        break;
    case E_AD:
        w = put_kv(w, "placement", placements[e->variant]);
        w = put_kv(w, "network", "applovin_max");
        break;
    case E_ACHIEVEMENT: w = put_kv(w, "achievement", achievements[e->variant]); break;
    default:
        w = put_kv(w, "sku", skus[e->tier]);
        w = put_kv(w, "store", g->o.platform == UMG_GEN_IOS ? "app_store" : "google_play");
        w = put_ki(w, "level", d->level);
        break;
    }
    *open = '{';
    *w++ = '}';
    event_done(g, w);
}

static void step_event(umg_gen_t *g, gdev_t *d, const profile_t *p, umg_gen_item_t *it)
{
    static const uint16_t ordinary_w[] = {65, 25, 10};
    inapp_t e;
    if ((d->flags & (F_FIRST | F_TUTORIAL)) == F_FIRST && chance(&d->rng, 0.8)) {
        e.what = E_TUTORIAL;
        d->flags |= F_TUTORIAL;
    } else if ((d->flags & (F_FIRST | F_SIGNUP)) == F_FIRST && chance(&d->rng, 0.35)) {
        e.what = E_SIGNUP;
        d->flags |= F_SIGNUP; /* the user id appears from this event on */
    } else if (p->payer && chance(&d->rng, 0.22)) {
        e.what = E_PURCHASE;
    } else {
        e.what = E_LEVEL + pick(&d->rng, ordinary_w, 3);
    }
    e.tier = pick(&d->rng, p->whale ? whale_price_w : price_w, UMG_ARRAY_SIZE(prices));
    e.variant = (int)below(&d->rng, 4);
    e.stars = 1 + (int)below(&d->rng, 3);
    e.secs = 30 + (int64_t)lognormal(&d->rng, 90.0, 0.6);
    it->kind = UMG_GEN_EVENT;
    it->type = e.what == E_PURCHASE ? UMG_GEN_PURCHASE : UMG_GEN_INAPP;
    g->st.events++;
    d->level += e.what == E_LEVEL;
    if (e.what == E_PURCHASE) {
        it->revenue_usd = prices[e.tier];
        g->st.purchases++;
        g->st.revenue_usd += prices[e.tier];
        g->st.payers += !(d->flags & F_PAID);
        d->flags |= F_PAID;
    } else {
        g->st.inapp++;
    }
    if (g->json) {
        write_inapp(g, d, p, &e);
    }
    d->left--;
    if (d->left > 0) {
        double rest = (double)(d->mark - d->ts);
        d->ts += 1 + (int64_t)(rest / (d->left + 1) * (0.5 + unit(&d->rng)));
        d->ts = UMG_MIN(d->ts, d->mark);
    } else {
        next_session(g, d, p);
    }
}

static void step_retarget(umg_gen_t *g, gdev_t *d, const profile_t *p, umg_gen_item_t *it)
{
    touch_t t = {0};
    t.type = UMG_GEN_CLICK;
    t.retargeting = 1;
    t.ad = ad_draw(g, &d->rng, 0);
    t.id_form = id_form(&d->rng, p);
    emit_touch(g, d, p, &t, it);
    d->ts = d->mark;
    d->step = ST_SESSION;
}

/* An ordinary click shortly before a reinstall: it re-attributes the install once the
 * reattribution window has passed, and must not matter inside it. */
static void step_reclick(umg_gen_t *g, gdev_t *d, const profile_t *p, umg_gen_item_t *it)
{
    touch_t t = {0};
    t.type = UMG_GEN_CLICK;
    t.ad = ad_draw(g, &d->rng, 0);
    t.id_form = id_form(&d->rng, p);
    it->reinstall = 1;
    g->st.reinstall_clicks++;
    emit_touch(g, d, p, &t, it);
    d->ts = d->mark;
    d->step = ST_INSTALL;
}

/* ---------------------------------------------------------------- arrivals */

/*
 * How many devices of each kind arrive. Installing devices are split by the organic share;
 * each paid install comes with (100 - cvr) / cvr clicks that do not convert (one ad-only
 * device each), and the networks that report impressions send clicks / ctr impressions:
 * about 1.5 before each of their clicks, the rest from devices that only see ads.
 */
static void plan(umg_gen_t *g)
{
    uint64_t organic = (uint64_t)llround((double)g->o.devices * (double)g->o.organic_pct / 100.0);
    uint64_t paid = (uint64_t)g->o.devices - organic;
    double w = 0, rw = 0;
    for (int i = 0; i < g->nsrc; i++) {
        w += g->src_w[i];
        rw += g->rep_w[i];
    }
    double clickers = (double)paid * (double)(100 - g->o.cvr_pct) / (double)g->o.cvr_pct;
    double clicks_rep = ((double)paid + clickers) * rw / w;
    double viewers = (clicks_rep * 100.0 / (double)g->o.ctr_pct - clicks_rep * 1.5) / 2.5;
    g->remaining[DK_ORGANIC] = organic;
    g->remaining[DK_PAID] = paid;
    g->remaining[DK_CLICKER] = (uint64_t)llround(clickers);
    g->remaining[DK_VIEWER] = viewers > 0 ? (uint64_t)llround(viewers) : 0;
}

/* Arrivals per hour of history: the UTC hour's weight, 15% more at weekends. */
static int intensity_init(umg_gen_t *g)
{
    g->nhours = (int)g->o.days * 24;
    g->cum = umg_malloc(sizeof(double) * (size_t)(g->nhours + 1));
    if (g->cum == NULL) {
        return UMG_ENOMEM;
    }
    g->cum[0] = 0;
    for (int h = 0; h < g->nhours; h++) {
        int64_t t = g->start + h * HOUR;
        int64_t days = t / DAY;
        int dow = (int)((days + 4) % 7); /* 1970-01-01 was a Thursday; 0 is Sunday */
        double w = utc_hour_w[(t % DAY) / HOUR] * (dow == 0 || dow == 6 ? 1.15 : 1.0);
        g->cum[h + 1] = g->cum[h] + w;
    }
    return UMG_OK;
}

/*
 * The next arrival time: sorted uniform order statistics drawn one at a time (the i-th of r
 * remaining is 1 - (1 - u) V^(1/r)), mapped through the cumulative intensity.
 */
static void next_arrival(umg_gen_t *g)
{
    uint64_t r = 0;
    for (int k = 0; k < DK_KINDS; k++) {
        r += g->remaining[k];
    }
    if (r == 0) {
        g->next_arrival = INT64_MAX;
        return;
    }
    g->arr_u = 1.0 - (1.0 - g->arr_u) * exp(log(unit_pos(&g->arr_rng)) / (double)r);
    double target = g->arr_u * g->cum[g->nhours];
    int lo = 0, hi = g->nhours - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (g->cum[mid] <= target) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    double frac = (target - g->cum[lo]) / (g->cum[lo + 1] - g->cum[lo]);
    frac = frac < 0 ? 0 : frac >= 1 ? 0.999999 : frac;
    int64_t t = g->start + lo * HOUR + (int64_t)(frac * (double)HOUR);
    g->next_arrival = UMG_MIN(UMG_MAX(t, g->next_arrival), g->now);
}

/* ---------------------------------------------------------------- the heap */

static int before(const heap_t *a, const heap_t *b)
{
    return a->ts < b->ts || (a->ts == b->ts && a->slot < b->slot);
}

static void sift_up(umg_gen_t *g, uint32_t i)
{
    heap_t v = g->heap[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!before(&v, &g->heap[parent])) {
            break;
        }
        g->heap[i] = g->heap[parent];
        i = parent;
    }
    g->heap[i] = v;
}

static void sift_down(umg_gen_t *g, uint32_t i)
{
    heap_t v = g->heap[i];
    uint32_t n = g->nheap;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= n) {
            break;
        }
        if (c + 1 < n && before(&g->heap[c + 1], &g->heap[c])) {
            c++;
        }
        if (!before(&g->heap[c], &v)) {
            break;
        }
        g->heap[i] = g->heap[c];
        i = c;
    }
    g->heap[i] = v;
}

/* A slot for one more active device; the pool, its free list and the heap grow together. */
static int slot_new(umg_gen_t *g, uint32_t *out)
{
    if (g->nfree > 0) {
        *out = g->freel[--g->nfree];
        return UMG_OK;
    }
    if (g->ndevs == g->cap) {
        if (g->cap >= UINT32_MAX / 2) {
            return UMG_ENOMEM;
        }
        uint32_t ncap = g->cap ? g->cap * 2 : 1024;
        gdev_t *nd = umg_realloc(g->devs, sizeof(gdev_t) * ncap);
        if (nd == NULL) {
            return UMG_ENOMEM;
        }
        g->devs = nd;
        uint32_t *nf = umg_realloc(g->freel, sizeof(uint32_t) * ncap);
        if (nf == NULL) {
            return UMG_ENOMEM;
        }
        g->freel = nf;
        heap_t *nh = umg_realloc(g->heap, sizeof(heap_t) * ncap);
        if (nh == NULL) {
            return UMG_ENOMEM;
        }
        g->heap = nh;
        g->cap = ncap;
    }
    *out = g->ndevs++;
    return UMG_OK;
}

/* Starts the device that arrives now: its kind (drawn without replacement, so the counts of
 * plan() are met exactly), its timeline's seed and its first step. */
static int start_device(umg_gen_t *g)
{
    uint32_t i;
    int rc = slot_new(g, &i);
    if (rc != UMG_OK) {
        return rc;
    }
    uint64_t total = 0;
    for (int k = 0; k < DK_KINDS; k++) {
        total += g->remaining[k];
    }
    uint64_t x = (uint64_t)(unit(&g->arr_rng) * (double)total);
    int kind = 0;
    for (x = x < total ? x : total - 1; kind < DK_KINDS - 1 && x >= g->remaining[kind]; kind++) {
        x -= g->remaining[kind];
    }
    g->remaining[kind]--;
    gdev_t *d = &g->devs[i];
    memset(d, 0, sizeof(*d));
    d->seq = g->arrived++;
    d->kind = (uint8_t)kind;
    d->rng = g->key ^ mix64(d->seq * UINT64_C(0xd1b54a32d192ed03) + 0x5eed);
    d->ts = g->next_arrival;
    profile_t p;
    profile_make(g, d, &p);
    switch (kind) {
    case DK_ORGANIC: d->step = ST_INSTALL; break;
    case DK_PAID:
        d->left = (uint8_t)geom(&d->rng, 0.8, 6);
        d->step = d->left > 0 ? ST_TOUCH : ST_CONV;
        break;
    case DK_CLICKER:
        d->left = (uint8_t)(1 + (sources[p.src].reports ? 1 + geom(&d->rng, 0.5, 6) : 0));
        d->step = ST_TOUCH;
        break;
    default:
        d->left = (uint8_t)(1 + geom(&d->rng, 1.5, 10));
        d->step = ST_TOUCH;
        break;
    }
    g->heap[g->nheap++] = (heap_t){d->ts, i, 0};
    sift_up(g, g->nheap - 1);
    g->st.devices++;
    g->st.peak_active = UMG_MAX(g->st.peak_active, g->nheap);
    next_arrival(g);
    return UMG_OK;
}

/* ---------------------------------------------------------------- fraud */

/*
 * Synthetic fraud (fraud_pct, docs/gen.md "Fraud"): actors of a layer of their own, on top of the
 * honest population, which does not change. Every actor is planned when the generator starts
 * (times, groups), from a stream of its own, and then yields its items in time order from a heap
 * of its own; umg_gen_next merges the two by time (honest items first on ties). Actors that
 * install are fresh devices (their numbers start at FRAUD_SEQ, so their ids never meet the
 * honest ones); victims of injection and flooding are ordinary organic users.
 *
 * The rules' default thresholds the traffic is made to exceed (docs/fraud.md of the pipeline).
 */
#define SPAM_DEVICE_HOUR 10 /* click_spam: clicks per device id per clock hour */
#define SPAM_IP_MINUTE 30   /* click_spam: clicks per IP per minute */
#define FARM_IP_HOUR 20     /* device_farm: installs per IP in a clock hour */
#define FARM_IP_UA_DAY 10   /* device_farm: installs per IP + User-Agent in a UTC day */
#define FLOOD_DAYS 7        /* click_flooding: a source/site's figures over the UTC day and the 6 before... */
#define FLOOD_INSTALLS 20   /* ... with at least these installs before this one ... */
#define FLOOD_CTI_PCT 1     /* ... and at most this many installs per 100 clicks */
#define FRAUD_MAX 1000000   /* fraudulent installs at most */
#define FRAUD_SEQ (UINT64_C(1) << 48)

enum {
    FR_INJECT,
    FR_FLOOD_WIN,
    FR_SPRAY,
    FR_DEV_BURST,
    FR_IP_BURST,
    FR_DC,
    FR_BOT,
    FR_BOT_CLICK,
    FR_FARM,
    FR_SPOOF,
    FR_BOT_LINK
};
enum { FS_CLICK, FS_INSTALL, FS_SESSION, FS_END };

#define BOT_LINKS 20 /* bot clicks through the click link at most: they all come from gen's address */

/* Share of the fraudulent installs per kind (weights over the kinds chosen). */
static const uint16_t fraud_w[UMG_GEN_FRAUD_KINDS] = {0, 30, 20, 15, 10, 15, 10};

static const struct {
    const char *source;
    const char *sites[4];
    const char *reason;
} fraud_src[UMG_GEN_FRAUD_KINDS] = {
    {NULL, {NULL}, NULL},
    {"fraudnet",
     {"com.cleaner.boost", "com.flashlight.pro", "com.battery.saver", "com.wifi.master"},
     "click_injection"},
    {"clickblast", {"blast_sub_17", "blast_sub_42", "blast_sub_42", "blast_sub_17"}, "click_flooding"},
    {"hostads", {"hostads_sub_3", "hostads_sub_8", "hostads_sub_3", "hostads_sub_8"}, "blocked_ip"},
    {"trafficbot", {"tb_sub_1", "tb_sub_2", "tb_sub_3", "tb_sub_4"}, "bot_user_agent"},
    {"installpay", {"offerwall_a", "offerwall_b", "offerwall_a", "offerwall_b"}, "device_farm"},
    {"spoofmob", {"sm_sub_5", "sm_sub_6", "sm_sub_5", "sm_sub_6"}, "sdk_spoofing"},
};

static const char *const bot_uas[] = {
    "curl/8.1.2",
    "python-requests/2.31.0",
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.6099.71 "
     "Safari/537.36"), /* one string: the parentheses tell clang the concatenation is meant */
    "Go-http-client/1.1",
    "Wget/1.21.4",
    "Scrapy/2.11.0 (+https://scrapy.org)",
};

const char *const umg_gen_datacenter_cidrs[] = {"203.0.113.0/24", "2001:db8:ffff::/48"};
const size_t umg_gen_datacenter_ncidrs = UMG_ARRAY_SIZE(umg_gen_datacenter_cidrs);

/* One actor: a device of a scheme, or a source of clicks. */
typedef struct fact_s {
    int64_t ts;         /* the next item */
    int64_t click_ts;   /* its click (installing actors) */
    int64_t install_ts; /* its install (installing actors) */
    uint64_t rng;
    uint32_t num;   /* actor number: the device is FRAUD_SEQ + num */
    uint32_t group; /* farm or burst */
    uint32_t index; /* place in the group, in time order; clicks so far (bursts) */
    uint16_t left;  /* clicks to come (sprays and bursts) */
    uint8_t role, step, spoof, flags;
    uint8_t site; /* of its click (installing actors) */
} fact_t;

enum { FF_BEGIN = 1, FF_IPV6 = 2, FF_DETECT = 4 };

struct fraud_s {
    fact_t *a;
    uint32_t n, cap;
    uint32_t *heap, nheap;
    /* The flood's clicks and installs per UTC day from day0 and site, as the daemon counts them when an
     * install arrives: every click sent before it (touches go out ahead of the events after them). */
    struct {
        uint32_t clicks, installs;
    } (*tally)[4];
    int64_t day0, ndays;
};

static int fact_before(const struct fraud_s *f, uint32_t x, uint32_t y)
{
    return f->a[x].ts < f->a[y].ts || (f->a[x].ts == f->a[y].ts && x < y);
}

static void fheap_down(struct fraud_s *f, uint32_t i)
{
    uint32_t v = f->heap[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= f->nheap) {
            break;
        }
        if (c + 1 < f->nheap && fact_before(f, f->heap[c + 1], f->heap[c])) {
            c++;
        }
        if (!fact_before(f, f->heap[c], v)) {
            break;
        }
        f->heap[i] = f->heap[c];
        i = c;
    }
    f->heap[i] = v;
}

/* A new actor whose first item is at ts; NULL when out of memory. */
static fact_t *fact_add(umg_gen_t *g, int role, int64_t ts)
{
    struct fraud_s *f = g->fr;
    if (f->n == f->cap) {
        uint32_t ncap = f->cap ? f->cap * 2 : 256;
        fact_t *na = umg_realloc(f->a, sizeof(*na) * ncap);
        if (na == NULL) {
            return NULL;
        }
        f->a = na;
        f->cap = ncap;
    }
    fact_t *a = &f->a[f->n];
    memset(a, 0, sizeof(*a));
    a->num = f->n++;
    a->role = (uint8_t)role;
    a->ts = ts;
    a->rng = g->key ^ mix64((uint64_t)a->num * UINT64_C(0xc2b2ae3d27d4eb4f) + 0xf4a0d);
    return a;
}

/* A clicking actor: `left` clicks from ts on. */
static int fact_clicks(umg_gen_t *g, int role, int64_t ts, uint16_t left)
{
    fact_t *a = fact_add(g, role, ts);
    if (a == NULL) {
        return UMG_ENOMEM;
    }
    a->left = left;
    return UMG_OK;
}

/* Uniform in [lo, hi] (hi < lo: lo). */
static int64_t between(uint64_t *s, int64_t lo, int64_t hi)
{
    return hi <= lo ? lo : lo + (int64_t)(unit(s) * (double)(hi - lo));
}

/* Installing actors: the click, then the install `ctit` later, within the history. */
static fact_t *fact_install(umg_gen_t *g, int role, int64_t install_ts, int64_t ctit)
{
    int64_t click = UMG_MAX(install_ts - ctit, g->start + SEC);
    fact_t *a = fact_add(g, role, click);
    if (a != NULL) {
        a->click_ts = click;
        a->install_ts = UMG_MAX(install_ts, click + SEC);
    }
    return a;
}

/* A click-to-install time of minutes (the ordinary kind), at most an hour. */
static int64_t short_ctit(uint64_t *s)
{
    return UMG_MIN(20 * SEC + (int64_t)lognormal(s, 3.0 * MIN, 1.0), HOUR);
}

/* How many fraudulent installs of each kind: fraud_pct of the devices, split by fraud_w over the
 * kinds chosen, at least one of each. */
static void fraud_counts(const umg_gen_opts_t *o, uint64_t n[UMG_GEN_FRAUD_KINDS])
{
    uint32_t mask = o->fraud_kinds ? o->fraud_kinds : UINT32_MAX;
    uint64_t total = (uint64_t)llround((double)o->devices * (double)o->fraud_pct / 100.0), w = 0;
    for (int k = 1; k < UMG_GEN_FRAUD_KINDS; k++) {
        w += mask & (UINT32_C(1) << k) ? fraud_w[k] : 0;
    }
    n[0] = 0;
    for (int k = 1; k < UMG_GEN_FRAUD_KINDS; k++) {
        n[k] = o->fraud_pct > 0 && w > 0 && (mask & (UINT32_C(1) << k))
                   ? UMG_MAX(1, (uint64_t)llround((double)total * fraud_w[k] / (double)w))
                   : 0;
    }
}

static int plan_injection(umg_gen_t *g, uint64_t *s, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        int64_t t = between(s, g->start + MIN, g->now - MIN);
        fact_t *a = fact_install(g, FR_INJECT, t, SEC + (int64_t)below(s, 8 * SEC + 1));
        if (a == NULL) {
            return UMG_ENOMEM;
        }
        a->flags = i % 2 == 0 ? FF_BEGIN : 0; /* Android: a Play referrer that began before the click */
    }
    return UMG_OK;
}

static int plan_flood(umg_gen_t *g, uint64_t *s, uint64_t n)
{
    if (n == 0) {
        return UMG_OK;
    }
    int64_t span = g->now - g->start;
    int64_t maxlag = UMG_MIN(5 * DAY, span - 2 * MIN), minlag = UMG_MIN(DAY + MIN, maxlag);
    for (uint64_t i = 0; i < n; i++) {
        int64_t lag = between(s, minlag, maxlag);
        if (fact_install(g, FR_FLOOD_WIN, between(s, g->start + MIN + lag, g->now - MIN), lag) == NULL) {
            return UMG_ENOMEM;
        }
    }
    /* The spray: about 200 clicks per install won, over the whole history. */
    int rc = UMG_OK;
    for (uint64_t i = 0; i < 4 * n && rc == UMG_OK; i++) {
        rc = fact_clicks(g, FR_SPRAY, g->start + (int64_t)expo(s, (double)span / 50.0), 50);
    }
    /* Devices with 25 clicks in one clock hour, IPs with 70 clicks in one minute. */
    for (uint64_t i = 0; i < UMG_MAX(1, n / 10) && rc == UMG_OK; i++) {
        int64_t h = between(s, g->start + HOUR, g->now - 2 * HOUR) / HOUR * HOUR;
        rc = fact_clicks(g, FR_DEV_BURST, h + (int64_t)below(s, 10 * MIN), 25);
    }
    for (uint64_t i = 0; i < UMG_MAX(1, n / 20) && rc == UMG_OK; i++) {
        int64_t m = between(s, g->start + MIN, g->now - 2 * MIN) / MIN * MIN;
        rc = fact_clicks(g, FR_IP_BURST, m + (int64_t)below(s, 3 * SEC), 70);
    }
    return rc;
}

/* Bursts of about ten installs within ten minutes from data-centre addresses. */
static int plan_datacenter(umg_gen_t *g, uint64_t *s, uint64_t n)
{
    int64_t burst = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (i % 10 == 0) {
            burst = between(s, g->start + 2 * HOUR, g->now - 20 * MIN);
        }
        fact_t *a = fact_install(g, FR_DC, burst + (int64_t)below(s, 10 * MIN), short_ctit(s));
        if (a == NULL) {
            return UMG_ENOMEM;
        }
        a->group = (uint32_t)(i / 10);
        a->flags = chance(s, 0.3) ? FF_IPV6 : 0;
    }
    return UMG_OK;
}

static int plan_bot(umg_gen_t *g, uint64_t *s, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        if (fact_install(g, FR_BOT, between(s, g->start + 2 * HOUR, g->now - MIN), short_ctit(s)) == NULL) {
            return UMG_ENOMEM;
        }
    }
    /* Bot clicks that install nothing: three per install. */
    int rc = UMG_OK;
    for (uint64_t i = 0; i < 3 * n && rc == UMG_OK; i++) {
        rc = fact_clicks(g, FR_BOT_CLICK, between(s, g->start + MIN, g->now - MIN), 1);
    }
    /* Clicks through the click link with no User-Agent, one per install, at most BOT_LINKS: the
     * daemon sees them all from gen's one address within seconds, under click_spam's 30 a minute. */
    for (uint64_t i = 0; i < UMG_MIN(n, BOT_LINKS) && rc == UMG_OK; i++) {
        rc = fact_clicks(g, FR_BOT_LINK, between(s, g->start + MIN, g->now - MIN), 1);
    }
    return rc;
}

/* Farms of 30-60 installs within 55 minutes, as many as make about n (at least one). The installs
 * come in index order; one the rule can catch is past the limit of its UTC day or of its clock hour
 * (a farm that straddles midnight or the hour starts each count again, as the rule does). */
static int plan_farm(umg_gen_t *g, uint64_t *s, uint64_t n)
{
    uint64_t farms = n == 0 ? 0 : UMG_MAX(1, (uint64_t)llround((double)n / 45.0));
    for (uint64_t f = 0; f < farms; f++) {
        uint32_t size = 30 + below(s, 31), in_day = 0, in_hour = 0;
        int64_t start = between(s, g->start + 2 * HOUR, g->now - 70 * MIN), step = 55 * MIN / size;
        int64_t day = -1, hour = -1;
        for (uint32_t i = 0; i < size; i++) {
            int64_t t = start + i * step + (int64_t)below(s, (uint32_t)(step / 2));
            fact_t *a = fact_install(g, FR_FARM, t, 30 * SEC + (int64_t)below(s, 5 * MIN));
            if (a == NULL) {
                return UMG_ENOMEM;
            }
            in_day = a->install_ts / DAY == day ? in_day + 1 : 0;
            in_hour = a->install_ts / HOUR == hour ? in_hour + 1 : 0;
            day = a->install_ts / DAY;
            hour = a->install_ts / HOUR;
            a->group = (uint32_t)f;
            a->index = i;
            a->flags |= in_day >= FARM_IP_UA_DAY || in_hour >= FARM_IP_HOUR ? FF_DETECT : 0;
        }
    }
    return UMG_OK;
}

static int plan_spoof(umg_gen_t *g, uint64_t *s, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        fact_t *a = fact_install(g, FR_SPOOF, between(s, g->start + 2 * HOUR, g->now - MIN), short_ctit(s));
        if (a == NULL) {
            return UMG_ENOMEM;
        }
        a->spoof = (uint8_t)(1 + i % 3);
    }
    return UMG_OK;
}

static int fraud_plan(umg_gen_t *g)
{
    uint64_t n[UMG_GEN_FRAUD_KINDS];
    fraud_counts(&g->o, n);
    g->fr = umg_calloc(1, sizeof(*g->fr));
    if (g->fr == NULL) {
        return UMG_ENOMEM;
    }
    uint64_t s = g->key ^ UINT64_C(0xf4a0d91a7);
    int rc = plan_injection(g, &s, n[UMG_GEN_FRAUD_INJECTION]);
    rc = rc ? rc : plan_flood(g, &s, n[UMG_GEN_FRAUD_FLOOD]);
    rc = rc ? rc : plan_datacenter(g, &s, n[UMG_GEN_FRAUD_DATACENTER]);
    rc = rc ? rc : plan_bot(g, &s, n[UMG_GEN_FRAUD_BOT]);
    rc = rc ? rc : plan_farm(g, &s, n[UMG_GEN_FRAUD_FARM]);
    rc = rc ? rc : plan_spoof(g, &s, n[UMG_GEN_FRAUD_SPOOF]);
    if (rc != UMG_OK) {
        return rc;
    }
    struct fraud_s *f = g->fr;
    f->day0 = g->start / DAY - FLOOD_DAYS;
    f->ndays = g->now / DAY - f->day0 + 1;
    f->heap = umg_malloc(sizeof(uint32_t) * (f->n ? f->n : 1));
    f->tally = umg_calloc((size_t)f->ndays, sizeof(*f->tally));
    if (f->heap == NULL || f->tally == NULL) {
        return UMG_ENOMEM;
    }
    for (uint32_t i = 0; i < f->n; i++) {
        f->a[i].ts = UMG_MIN(UMG_MAX(f->a[i].ts, g->start), g->now);
        f->heap[f->nheap++] = i;
    }
    for (uint32_t i = f->nheap / 2; i-- > 0;) {
        fheap_down(f, i);
    }
    return UMG_OK;
}

static void fraud_free(struct fraud_s *f)
{
    if (f != NULL) {
        umg_free(f->a);
        umg_free(f->heap);
        umg_free(f->tally);
        umg_free(f);
    }
}

/* The time of the fraud layer's next item, INT64_MAX when it has none. */
static int64_t fraud_top(const umg_gen_t *g)
{
    return g->fr != NULL && g->fr->nheap > 0 ? g->fr->a[g->fr->heap[0]].ts : INT64_MAX;
}

static umg_gen_fraud_t role_kind(int role)
{
    static const uint8_t kinds[] = {UMG_GEN_FRAUD_INJECTION, UMG_GEN_FRAUD_FLOOD, UMG_GEN_FRAUD_FLOOD,
                                    UMG_GEN_FRAUD_FLOOD,     UMG_GEN_FRAUD_FLOOD, UMG_GEN_FRAUD_DATACENTER,
                                    UMG_GEN_FRAUD_BOT,       UMG_GEN_FRAUD_BOT,   UMG_GEN_FRAUD_FARM,
                                    UMG_GEN_FRAUD_SPOOF,     UMG_GEN_FRAUD_BOT};
    return (umg_gen_fraud_t)kinds[role];
}

/* An address of 100.64.0.0/10 (carrier-grade NAT, RFC 6598), as a flood's servers and proxies
 * show: none of the honest devices' ranges, so that a flood's click without a device id never
 * matches an honest install by IP + User-Agent. */
static void cgnat_ip(uint64_t x, char out[48])
{
    snprintf(out, 48, "100.%u.%u.%u", (unsigned)(64 + (x >> 8) % 64), (unsigned)(x % 256),
             (unsigned)(1 + (x >> 16) % 254));
}

static int fact_spams(const fact_t *a)
{
    return a->role == FR_SPRAY || a->role == FR_DEV_BURST || a->role == FR_IP_BURST || a->role == FR_BOT_CLICK ||
           a->role == FR_BOT_LINK;
}

/* The actor's device: an organic device's profile with a real advertising id, and the scheme's
 * address and User-Agent. */
static void fact_device(const umg_gen_t *g, const fact_t *a, gdev_t *d, profile_t *p)
{
    memset(d, 0, sizeof(*d));
    d->seq = FRAUD_SEQ + a->num;
    d->kind = DK_ORGANIC;
    d->ts = a->ts;
    /* Item numbers (the ids' seeds): the click 0, the install 1, the session 2; spam clicks in order. */
    d->n = fact_spams(a) ? a->index : a->step;
    profile_make(g, d, p);
    p->opted_out = 0;
    if (a->role == FR_FARM) {
        /* One model, OS and app version per farm: one User-Agent. */
        p->model = (int)(mix64(a->group + 0xfa) % (uint64_t)g->nmodels);
        p->os = 0;
        p->app_version = 0;
        p->chrome = 0;
    }
    if (g->json) {
        profile_text(p);
    }
    uint64_t h = mix64(g->key ^ (d->seq * 31 + a->group));
    if (a->role == FR_DC && (a->flags & FF_IPV6)) {
        snprintf(p->ip, sizeof(p->ip), "2001:db8:ffff:%x:%x:%x:%x:%x", (unsigned)(h & 0xffff),
                 (unsigned)(h >> 16 & 0xffff), (unsigned)(h >> 32 & 0xffff), (unsigned)(h >> 48), a->index + 1);
    } else if (a->role == FR_DC) {
        snprintf(p->ip, sizeof(p->ip), "203.0.113.%u", (unsigned)(1 + h % 254));
    } else if (a->role == FR_FARM) {
        snprintf(p->ip, sizeof(p->ip), "198.51.100.%u", 1 + a->group % 254);
    } else if (a->role == FR_DEV_BURST || a->role == FR_IP_BURST) {
        cgnat_ip(h, p->ip);
    }
    if (a->role == FR_BOT) {
        p->ua = bot_uas[mix64(h) % UMG_ARRAY_SIZE(bot_uas)];
    }
}

static void random_ip(uint64_t *s, char out[48])
{
    cgnat_ip(rnd(s), out);
}

/* A fraudulent click: adid NULL for none, ua NULL for the device's in-app browser. */
static void write_fraud_click(umg_gen_t *g, const gdev_t *d, const profile_t *p, umg_gen_fraud_t k, int site,
                              const char *adid, const char *ip, const char *ua, char cid[33])
{
    char *w = g->out.ptr, id[37];
    w = PUT(w, "{\"type\":\"click\"");
    item_id(g, d, 0x70c4, id);
    w = put_kv(w, "touch_id", id);
    w = put_ki(w, "ts", d->ts);
    w = put_kv(w, "source", fraud_src[k].source);
    w = put_key(w, "campaign");
    w = put_s(w, fraud_src[k].source);
    w = PUT(w, "_cpi_ww\"");
    w = put_key(w, "campaign_id");
    w = put_u64(w, 7000000 + (uint64_t)k * 1111);
    *w++ = '"';
    w = put_kv(w, "adset", "all");
    w = put_kv(w, "ad", "banner_v1");
    w = put_kv(w, "site", fraud_src[k].sites[site & 3]);
    w = put_kv(w, "click_id", cid);
    if (adid != NULL) {
        w = PUT(w, ",\"device\":{\"");
        w = put_s(w, g->o.platform == UMG_GEN_IOS ? "idfa" : "gaid");
        w = PUT(w, "\":\"");
        w = put_s(w, adid);
        w = PUT(w, "\"}");
    }
    w = put_kv(w, "ip", ip);
    w = put_key(w, "user_agent");
    w = ua != NULL ? put_s(w, ua) : put_touch_ua(g, p, w);
    *w++ = '"';
    *w++ = '}';
    g->out.len = (size_t)(w - g->out.ptr);
}

/* The first of a source's sites with the same name as its site i: the daemon counts by name. */
static unsigned site_slot(umg_gen_fraud_t k, int i)
{
    unsigned j = 0;
    while (strcmp(fraud_src[k].sites[j], fraud_src[k].sites[i & 3]) != 0) {
        j++;
    }
    return j;
}

/* The flood's clicks and installs of a site, as its ts's UTC day stands (installs: 1). */
static void flood_count(umg_gen_t *g, int64_t ts, int site, int install)
{
    struct fraud_s *f = g->fr;
    int64_t d = ts / DAY - f->day0;
    if (d >= 0 && d < f->ndays) {
        unsigned j = site_slot(UMG_GEN_FRAUD_FLOOD, site);
        f->tally[d][j].clicks += !install;
        f->tally[d][j].installs += install != 0;
    }
}

/* Whether click_flooding sees a flood install of a site at ts, before it is counted: the site's figures
 * over the window meet the rule's default thresholds (long click-to-install times: all of the flood's). */
static int flood_seen(const umg_gen_t *g, int64_t ts, int site)
{
    const struct fraud_s *f = g->fr;
    unsigned j = site_slot(UMG_GEN_FRAUD_FLOOD, site);
    uint64_t clicks = 0, installs = 0;
    for (int64_t d = ts / DAY - f->day0, i = 0; i < FLOOD_DAYS && d - i >= 0; i++) {
        if (d - i < f->ndays) {
            clicks += f->tally[d - i][j].clicks;
            installs += f->tally[d - i][j].installs;
        }
    }
    return installs >= FLOOD_INSTALLS && installs * 100 <= clicks * FLOOD_CTI_PCT;
}

/* A click of a spray or a burst, or a bot's click that installs nothing. */
static void fraud_spam_click(umg_gen_t *g, fact_t *a, gdev_t *d, const profile_t *p, umg_gen_item_t *it)
{
    umg_gen_fraud_t k = role_kind(a->role);
    char adid[37], ip[48], cid[33];
    int with_id = a->role == FR_DEV_BURST || a->role == FR_BOT_CLICK || chance(&a->rng, 0.7);
    make_uuid(rnd(&a->rng), rnd(&a->rng), adid); /* sprays and IP bursts: a new id each click */
    random_ip(&a->rng, ip);
    int site = (int)below(&a->rng, 4);
    const char *ua = a->role == FR_BOT_CLICK ? bot_uas[below(&a->rng, UMG_ARRAY_SIZE(bot_uas))] : NULL;
    if (k == UMG_GEN_FRAUD_FLOOD) {
        flood_count(g, a->ts, site, 0);
    }
    it->reason = "click_flooding";
    if (a->role == FR_DEV_BURST || a->role == FR_IP_BURST) {
        it->reason = "click_spam";
        it->detectable = a->index >= (a->role == FR_DEV_BURST ? SPAM_DEVICE_HOUR : SPAM_IP_MINUTE);
    } else if (a->role == FR_BOT_CLICK || a->role == FR_BOT_LINK) {
        it->reason = "bot_user_agent";
        it->detectable = 1;
    }
    if (g->json && a->role == FR_BOT_LINK) {
        /* The query of GET /c/{app_id}: every value is plain ASCII that needs no escaping. */
        char *w = g->out.ptr;
        click_id(g, d, d->n, cid);
        w +=
            sprintf(w, "source=%s&campaign=%s_cpi_ww&campaign_id=%llu&adset=all&ad=banner_v1&site=%s&click_id=%s&%s=%s",
                    fraud_src[k].source, fraud_src[k].source, (unsigned long long)(7000000 + (uint64_t)k * 1111),
                    fraud_src[k].sites[site & 3], cid, g->o.platform == UMG_GEN_IOS ? "idfa" : "gaid", adid);
        g->out.len = (size_t)(w - g->out.ptr);
    } else if (g->json) {
        click_id(g, d, d->n, cid);
        write_fraud_click(g, d, p, k, site,
                          !with_id                  ? NULL
                          : a->role == FR_DEV_BURST ? p->adid
                                                    : adid,
                          a->role == FR_DEV_BURST || a->role == FR_IP_BURST ? p->ip : ip, ua, cid);
    }
    a->index++;
    a->left--;
    if (a->left == 0) {
        a->step = FS_END;
        return;
    }
    switch (a->role) {
    case FR_SPRAY: a->ts += SEC + (int64_t)expo(&a->rng, (double)(g->now - g->start) / 50.0); break;
    case FR_DEV_BURST: a->ts += 50 * SEC + (int64_t)below(&a->rng, 40 * SEC); break;
    default: a->ts += 500 + (int64_t)below(&a->rng, 200); break;
    }
    if (a->ts > g->now) {
        a->step = FS_END;
    }
}

/* The click of an installing actor: from the scheme's source, with the device's advertising id. */
static void fraud_click(umg_gen_t *g, fact_t *a, gdev_t *d, const profile_t *p, umg_gen_item_t *it)
{
    umg_gen_fraud_t k = role_kind(a->role);
    char ip[48], cid[33];
    int site = (int)below(&a->rng, 4);
    random_ip(&a->rng, ip); /* a flood's click comes from its servers, not from the device */
    a->site = (uint8_t)site;
    if (k == UMG_GEN_FRAUD_FLOOD) {
        flood_count(g, a->ts, site, 0);
    }
    it->reason = fraud_src[k].reason;
    it->detectable = a->role == FR_INJECT || a->role == FR_DC || a->role == FR_BOT;
    if (g->json) {
        click_id(g, d, d->n, cid);
        write_fraud_click(g, d, p, k, site, p->adid, a->role == FR_FLOOD_WIN ? ip : p->ip,
                          a->role == FR_BOT ? p->ua : NULL, cid);
    }
    a->step = FS_INSTALL;
    a->ts = a->install_ts;
}

static void fraud_install(umg_gen_t *g, fact_t *a, gdev_t *d, const profile_t *p, umg_gen_item_t *it)
{
    umg_gen_fraud_t k = role_kind(a->role);
    int64_t begin = a->role == FR_INJECT ? a->click_ts - 2 * SEC - (int64_t)below(&a->rng, 28 * SEC)
                                         : d->ts - 8 * SEC - (int64_t)expo(&a->rng, 40.0 * SEC);
    int referrer = g->o.platform == UMG_GEN_ANDROID &&
                   (a->role == FR_INJECT ? (a->flags & FF_BEGIN) != 0 : a->role == FR_FLOOD_WIN && p->organic_referrer);
    it->match = a->role == FR_INJECT || a->role == FR_FLOOD_WIN ? UMG_GEN_MATCH_ORGANIC : UMG_GEN_MATCH_DEVICE_ID;
    it->reason = fraud_src[k].reason;
    it->detectable = a->role == FR_FARM ? (a->flags & FF_DETECT) != 0 : 1;
    if (a->role == FR_FLOOD_WIN) {
        it->detectable = flood_seen(g, a->ts, a->site);
        it->flood_site = 1 + (int)site_slot(k, a->site);
        flood_count(g, a->ts, a->site, 1);
    }
    it->spoof = (umg_gen_spoof_t)a->spoof;
    click_id(g, d, 0, it->claim);
    g->st.fraud_installs[k]++;
    if (g->json) {
        char *w = event_head(g, d, p, "install", NULL);
        if (referrer) {
            w = PUT(w, ",\"install_referrer\":{\"referrer\":\"utm_source=google-play&utm_medium=organic\"");
            w = put_ki(w, "install_begin_ts", begin);
            *w++ = '}';
        }
        event_done(g, w);
    }
    a->step = a->role == FR_SPOOF ? FS_END : FS_SESSION;
    a->ts += 500 + (int64_t)below(&a->rng, 3000);
}

/* The fraud layer's next item. */
static int fraud_next(umg_gen_t *g, umg_gen_item_t *it)
{
    struct fraud_s *f = g->fr;
    fact_t *a = &f->a[f->heap[0]];
    gdev_t d;
    profile_t p;
    g->out.len = 0;
    if (g->json && umg_buf_reserve(&g->out, ITEM_MAX) != UMG_OK) {
        return UMG_ENOMEM;
    }
    fact_device(g, a, &d, &p);
    memset(it, 0, sizeof(*it));
    it->ts_ms = it->sent_ms = a->ts;
    it->device = d.seq;
    it->fraud = role_kind(a->role);
    it->fraud_source = fraud_src[it->fraud].source;
    int click = a->step == FS_CLICK;
    if (fact_spams(a)) {
        fraud_spam_click(g, a, &d, &p, it);
    } else if (a->step == FS_CLICK) {
        fraud_click(g, a, &d, &p, it);
    } else if (a->step == FS_INSTALL) {
        fraud_install(g, a, &d, &p, it);
        it->kind = UMG_GEN_EVENT;
        it->type = UMG_GEN_INSTALL;
        it->install_ts_ms = it->ts_ms;
        g->st.events++;
    } else {
        if (g->json) {
            event_done(g, event_head(g, &d, &p, "session", NULL));
        }
        it->kind = UMG_GEN_EVENT;
        it->type = UMG_GEN_SESSION;
        it->install_ts_ms = a->install_ts;
        it->reason = NULL;
        g->st.events++;
        g->st.sessions++;
        a->step = FS_END;
    }
    if (click) {
        it->kind = a->role == FR_BOT_LINK ? UMG_GEN_LINK : UMG_GEN_TOUCH;
        it->type = UMG_GEN_CLICK;
        g->st.touches++;
        g->st.clicks++;
        g->st.fraud_clicks[it->fraud]++;
    }
    g->st.items++;
    g->st.fraud_items++;
    if (g->json) {
        g->out.ptr[g->out.len] = '\0';
        it->json = umg_slice(g->out.ptr, g->out.len);
    }
    if (a->step == FS_END || a->ts > g->now) {
        f->heap[0] = f->heap[--f->nheap];
    }
    if (f->nheap > 0) {
        fheap_down(f, 0);
    }
    return UMG_OK;
}

/* ---------------------------------------------------------------- the API */

static int opts_check(const umg_gen_opts_t *o)
{
    for (size_t i = 0; i < umg_gen_config_nitems; i++) {
        const umg_config_item_t *it = &umg_gen_config_items[i];
        int64_t v;
        memcpy(&v, (const char *)o + it->offset, sizeof(v));
        if (v < it->min || v > it->max) {
            return UMG_EINVAL;
        }
    }
    if (o->platform != UMG_GEN_ANDROID && o->platform != UMG_GEN_IOS) {
        return UMG_EINVAL;
    }
    if (o->now_ms < o->days * DAY || o->now_ms > INT64_C(253402300799999)) {
        return UMG_EINVAL;
    }
    uint64_t n[UMG_GEN_FRAUD_KINDS], total = 0;
    fraud_counts(o, n);
    for (int k = 0; k < UMG_GEN_FRAUD_KINDS; k++) {
        total += n[k];
    }
    if (total > FRAUD_MAX || (o->fraud_kinds & ~(uint32_t)((1u << UMG_GEN_FRAUD_KINDS) - 2)) != 0) {
        return UMG_EINVAL;
    }
    return UMG_OK;
}

static int gen_new(const umg_gen_opts_t *o, int json, umg_gen_t **out)
{
    if (o == NULL || out == NULL || opts_check(o) != UMG_OK) {
        return UMG_EINVAL;
    }
    umg_gen_t *g = umg_calloc(1, sizeof(*g));
    if (g == NULL) {
        return UMG_ENOMEM;
    }
    g->o = *o;
    g->json = json;
    g->key = mix64((uint64_t)o->seed ^ mix64((uint64_t)o->now_ms ^ UINT64_C(0x756d6767656e)));
    g->now = o->now_ms;
    g->start = o->now_ms - o->days * DAY;
    g->nsrc = (int)o->sources;
    for (int i = 0; i < g->nsrc; i++) {
        g->src_w[i] = sources[i].weight;
        g->rep_w[i] = sources[i].reports ? sources[i].weight : 0;
        g->has_rep |= sources[i].reports;
    }
    if (!g->has_rep) {
        memcpy(g->rep_w, g->src_w, sizeof(g->rep_w));
    }
    cum_init(g->src_cum, g->src_w, g->nsrc);
    cum_init(g->rep_cum, g->rep_w, g->nsrc);
    for (size_t k = 0; k < UMG_ARRAY_SIZE(geos); k++) {
        uint16_t w[NCOUNTRIES];
        for (int i = 0; i < NCOUNTRIES; i++) {
            w[i] = geos[k].mask & (UINT32_C(1) << i) ? countries[i].weight : 0;
        }
        cum_init(g->geo_cum[k], w, NCOUNTRIES);
    }
    const model_t *ms = models(g, &g->nmodels);
    uint16_t mw[UMG_ARRAY_SIZE(android_models)];
    for (int i = 0; i < g->nmodels; i++) {
        mw[i] = ms[i].weight;
    }
    cum_init(g->model_cum, mw, g->nmodels);
    zipf_init(g->camp_cum, (int)o->campaigns);
    zipf_init(g->adset_cum, (int)o->adsets);
    if (intensity_init(g) != UMG_OK) {
        umg_gen_free(g);
        return UMG_ENOMEM;
    }
    plan(g);
    if (!g->has_rep) {
        g->remaining[DK_VIEWER] = 0;
    }
    g->arr_rng = g->key ^ UINT64_C(0xa11a11a1);
    g->next_arrival = g->start;
    next_arrival(g);
    if (o->fraud_pct > 0 && fraud_plan(g) != UMG_OK) {
        umg_gen_free(g);
        return UMG_ENOMEM;
    }
    *out = g;
    return UMG_OK;
}

int umg_gen_new(const umg_gen_opts_t *o, umg_gen_t **out)
{
    return gen_new(o, 1, out);
}

/* ---------------------------------------------------------------- late items */

/* A late item waits here, JSON and all, until the time reaches its send time. */
typedef struct late_s {
    int64_t send;
    uint64_t seq; /* tie-break: the order they were made in */
    umg_gen_item_t it;
    size_t len;
    char text[];
} late_t;

static int late_before(const late_t *a, const late_t *b)
{
    return a->send < b->send || (a->send == b->send && a->seq < b->seq);
}

static int late_push(umg_gen_t *g, const umg_gen_item_t *it, int64_t send)
{
    if (g->nlate == g->late_cap) {
        uint32_t ncap = g->late_cap ? g->late_cap * 2 : 256;
        late_t **nl = umg_realloc(g->late, sizeof(*nl) * ncap);
        if (nl == NULL) {
            return UMG_ENOMEM;
        }
        g->late = nl;
        g->late_cap = ncap;
    }
    late_t *e = umg_malloc(sizeof(*e) + it->json.len + 1);
    if (e == NULL) {
        return UMG_ENOMEM;
    }
    e->send = send;
    e->seq = g->late_seq++;
    e->it = *it;
    e->it.sent_ms = send;
    e->len = it->json.len;
    if (e->len > 0) {
        memcpy(e->text, it->json.ptr, e->len);
    }
    e->text[e->len] = '\0';
    uint32_t i = g->nlate++;
    while (i > 0 && late_before(e, g->late[(i - 1) / 2])) {
        g->late[i] = g->late[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    g->late[i] = e;
    return UMG_OK;
}

/* The first late item into *it, its JSON copied to g->out. */
static int late_pop(umg_gen_t *g, umg_gen_item_t *it)
{
    late_t *e = g->late[0];
    if (g->json && umg_buf_reserve(&g->out, e->len + 1) != UMG_OK) {
        return UMG_ENOMEM;
    }
    *it = e->it;
    if (g->json) {
        memcpy(g->out.ptr, e->text, e->len + 1);
        g->out.len = e->len;
        it->json = umg_slice(g->out.ptr, e->len);
    }
    umg_free(e);
    late_t *v = g->late[--g->nlate];
    uint32_t i = 0, n = g->nlate;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= n) {
            break;
        }
        if (c + 1 < n && late_before(g->late[c + 1], g->late[c])) {
            c++;
        }
        if (!late_before(g->late[c], v)) {
            break;
        }
        g->late[i] = g->late[c];
        i = c;
    }
    if (n > 0) {
        g->late[i] = v;
    }
    return UMG_OK;
}

/* Whether a session, in-app event or purchase is sent late, and when: a stream of its own per
 * (device, item), so that late_pct at 0 changes nothing; hours to days (log-normal, median 6 h,
 * 1 hour to 5 days), at the latest at the end of history. 0 when it is sent at once. */
static int64_t late_send(const umg_gen_t *g, const gdev_t *d, const umg_gen_item_t *it)
{
    if (g->o.late_pct == 0 ||
        (it->type != UMG_GEN_SESSION && it->type != UMG_GEN_INAPP && it->type != UMG_GEN_PURCHASE)) {
        return 0;
    }
    uint64_t s = g->key ^ mix64(d->seq * UINT64_C(0xe7037ed1a0b428db) + ((uint64_t)d->n << 32) + 0x1a7e);
    if (unit(&s) * 100.0 >= (double)g->o.late_pct) {
        return 0;
    }
    double ms = lognormal(&s, 6.0 * HOUR, 1.2);
    ms = ms < (double)HOUR ? (double)HOUR : ms > 5.0 * DAY ? 5.0 * DAY : ms;
    return UMG_MIN(it->ts_ms + (int64_t)ms, g->now);
}

/* ---------------------------------------------------------------- the next item */

/* The next item of the device at the top of the heap; *send is non-zero when it goes late. */
static int device_next(umg_gen_t *g, umg_gen_item_t *it, int64_t *send)
{
    uint32_t i = g->heap[0].slot;
    gdev_t *d = &g->devs[i];
    g->out.len = 0;
    if (g->json && umg_buf_reserve(&g->out, ITEM_MAX) != UMG_OK) {
        return UMG_ENOMEM;
    }
    profile_t p;
    profile_make(g, d, &p);
    if (g->json) {
        profile_text(&p);
    }
    memset(it, 0, sizeof(*it));
    it->ts_ms = it->sent_ms = d->ts;
    it->device = d->seq;
    switch (d->step) {
    case ST_TOUCH: step_touch(g, d, &p, it); break;
    case ST_CONV: step_conv(g, d, &p, it); break;
    case ST_INSTALL: step_install(g, d, &p, it); break;
    case ST_SESSION: step_session(g, d, &p, it); break;
    case ST_EVENT: step_event(g, d, &p, it); break;
    case ST_RECLICK: step_reclick(g, d, &p, it); break;
    default: step_retarget(g, d, &p, it); break;
    }
    it->install_ts_ms = d->install_ts;
    *send = late_send(g, d, it);
    g->st.late += *send != 0;
    d->n++;
    g->st.items++;
    if (g->json) {
        g->out.ptr[g->out.len] = '\0';
        it->json = umg_slice(g->out.ptr, g->out.len);
    }
    if (d->step == ST_END || d->ts > g->now) {
        g->freel[g->nfree++] = i;
        g->heap[0] = g->heap[--g->nheap];
    } else {
        g->heap[0].ts = d->ts;
    }
    if (g->nheap > 0) {
        sift_down(g, 0);
    }
    return UMG_OK;
}

int umg_gen_next(umg_gen_t *g, umg_gen_item_t *it)
{
    for (;;) {
        int64_t top = g->nheap > 0 ? g->heap[0].ts : INT64_MAX;
        /* The fraud layer's items go first when strictly earlier than anything honest. */
        if (g->fr != NULL &&
            fraud_top(g) < UMG_MIN(UMG_MIN(top, g->next_arrival), g->nlate > 0 ? g->late[0]->send : INT64_MAX)) {
            return fraud_next(g, it);
        }
        if (g->next_arrival != INT64_MAX && g->next_arrival <= top) {
            int rc = start_device(g);
            if (rc != UMG_OK) {
                return rc;
            }
            continue;
        }
        if (g->nlate > 0 && g->late[0]->send <= top) {
            return late_pop(g, it);
        }
        if (g->nheap == 0) {
            return UMG_ENOENT;
        }
        int64_t send;
        int rc = device_next(g, it, &send);
        if (rc != UMG_OK || send == 0) {
            return rc;
        }
        if ((rc = late_push(g, it, send)) != UMG_OK) {
            return rc;
        }
    }
}

void umg_gen_stats(const umg_gen_t *g, umg_gen_stats_t *out)
{
    *out = g->st;
}

void umg_gen_free(umg_gen_t *g)
{
    if (g == NULL) {
        return;
    }
    umg_free(g->cum);
    umg_free(g->devs);
    umg_free(g->freel);
    umg_free(g->heap);
    for (uint32_t i = 0; i < g->nlate; i++) {
        umg_free(g->late[i]);
    }
    umg_free(g->late);
    umg_buf_free(&g->out);
    fraud_free(g->fr);
    umg_free(g);
}

int umg_gen_count(const umg_gen_opts_t *o, umg_gen_stats_t *out)
{
    umg_gen_t *g;
    int rc = gen_new(o, 0, &g);
    if (rc != UMG_OK) {
        return rc;
    }
    umg_gen_item_t it;
    while ((rc = umg_gen_next(g, &it)) == UMG_OK) {
    }
    if (rc == UMG_ENOENT) {
        *out = g->st;
        rc = UMG_OK;
    }
    umg_gen_free(g);
    return rc;
}

const char *umg_gen_type_name(umg_gen_type_t t)
{
    static const char *const names[] = {"?", "click", "impression", "install", "session", "event", "purchase"};
    return (unsigned)t < UMG_ARRAY_SIZE(names) ? names[t] : "?";
}

const char *umg_gen_match_name(umg_gen_match_t m)
{
    static const char *const names[] = {"organic", "device_id", "referrer", "probabilistic", "impression"};
    return (unsigned)m < UMG_ARRAY_SIZE(names) ? names[m] : "?";
}

const char *umg_gen_fraud_name(umg_gen_fraud_t f)
{
    static const char *const names[] = {"honest", "injection", "flood", "datacenter", "bot", "farm", "spoof"};
    return (unsigned)f < UMG_ARRAY_SIZE(names) ? names[f] : "?";
}

const char *umg_gen_spoof_name(umg_gen_spoof_t s)
{
    static const char *const names[] = {"", "unsigned", "bad_signature", "stale_timestamp"};
    return (unsigned)s < UMG_ARRAY_SIZE(names) ? names[s] : "?";
}

int umg_gen_fraud_kinds_parse(const char *list, uint32_t *mask)
{
    uint32_t m = 0;
    const char *p = list;
    while (p != NULL && *p != '\0') {
        size_t len = strcspn(p, ",");
        int k = 1;
        while (k < UMG_GEN_FRAUD_KINDS && (strlen(umg_gen_fraud_name((umg_gen_fraud_t)k)) != len ||
                                           memcmp(p, umg_gen_fraud_name((umg_gen_fraud_t)k), len) != 0)) {
            k++;
        }
        if (k == UMG_GEN_FRAUD_KINDS) {
            return UMG_EINVAL;
        }
        m |= UINT32_C(1) << k;
        p += len;
        p += *p == ',';
    }
    if (m == 0) {
        return UMG_EINVAL;
    }
    *mask = m;
    return UMG_OK;
}
