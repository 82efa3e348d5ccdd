/*
 * attr.c - owns the install attribution rules: settings and their bounds,
 * identifier and click-id keys, the install referrer's click_id, candidate
 * matching with per-class windows, winner selection, reinstall and
 * re-attribution, re-engagement, implicit installs and event credit.
 *
 * Everything is a function of its arguments. Decisions are zeroed before
 * they are filled so that two runs over the same input compare equal byte
 * for byte, padding included.
 */
#include <stddef.h>

#include "umg_attr.h"

#define US_PER_S INT64_C(1000000)
#define US_PER_H (3600 * US_PER_S)
#define US_PER_D (86400 * US_PER_S)

#define SEED_CLICK UINT64_C(0x636c69636b5f6964)
#define SEED_ID UINT64_C(0x6465766963655f69)

/* ---------------------------------------------------------------- settings */

void umg_attr_settings_default(umg_attr_settings_t *s)
{
    *s = (umg_attr_settings_t){
        .click_lookback_days = 7,
        .view_lookback_hours = 24,
        .probabilistic_window_hours = 24,
        .reattribution_window_days = 90,
        .reengagement_lookback_days = 7,
        .reengagement_window_days = 30,
    };
}

const umg_config_item_t umg_attr_config_items[] = {
    {"click_lookback_days", UMG_CFG_INT, "7", 1, 30, offsetof(umg_attr_settings_t, click_lookback_days),
     "click-through attribution window, days"},
    {"view_lookback_hours", UMG_CFG_INT, "24", 1, 168, offsetof(umg_attr_settings_t, view_lookback_hours),
     "view-through (impression) attribution window, hours"},
    {"probabilistic_window_hours", UMG_CFG_INT, "24", 1, 24, offsetof(umg_attr_settings_t, probabilistic_window_hours),
     "window of a probabilistic click match, hours"},
    {"reattribution_window_days", UMG_CFG_INT, "90", 1, 365, offsetof(umg_attr_settings_t, reattribution_window_days),
     "a reinstall inside this many days of the install keeps its attribution"},
    {"reengagement_lookback_days", UMG_CFG_INT, "7", 1, 30, offsetof(umg_attr_settings_t, reengagement_lookback_days),
     "a retargeting click this many days before a session makes it a re-engagement"},
    {"reengagement_window_days", UMG_CFG_INT, "30", 1, 90, offsetof(umg_attr_settings_t, reengagement_window_days),
     "events this many days after a re-engagement are credited to it"},
};
const size_t umg_attr_config_nitems = UMG_ARRAY_SIZE(umg_attr_config_items);

int umg_attr_settings_check(const umg_attr_settings_t *s)
{
    if (s == NULL) {
        return UMG_EINVAL;
    }
    for (size_t i = 0; i < umg_attr_config_nitems; i++) {
        const umg_config_item_t *it = &umg_attr_config_items[i];
        int64_t v;
        memcpy(&v, (const char *)s + it->offset, sizeof(v));
        if (v < it->min || v > it->max) {
            return UMG_ERANGE;
        }
    }
    return UMG_OK;
}

/* ------------------------------------------------------------- identifiers */

uint64_t umg_attr_id_hash(umg_attr_id_kind_t kind, umg_slice_t v)
{
    if (v.ptr == NULL || v.len == 0 || (unsigned)kind >= UMG_ATTR_ID_KINDS) {
        return 0;
    }
    uint64_t seed = SEED_ID + (uint64_t)kind * UINT64_C(0x9e3779b97f4a7c15);
    umg_uuid_t u;
    int m = umg_uuid_scan(v.ptr, v.len, &u);
    uint64_t h;
    if (m >= 0) {
        /* The opted-out advertising id is no identifier at all. */
        if ((m & UMG_UUID_ZERO) && (kind == UMG_ATTR_ID_IDFA || kind == UMG_ATTR_ID_GAID)) {
            return 0;
        }
        h = umg_hash64(u.b, sizeof(u.b), seed);
    } else {
        h = umg_hash64(v.ptr, v.len, seed);
    }
    return h ? h : 1;
}

int umg_attr_ids_collect(uint64_t ids[UMG_ATTR_MAX_IDS], const umg_slice_t v[UMG_ATTR_ID_KINDS])
{
    int n = 0;
    memset(ids, 0, sizeof(uint64_t) * UMG_ATTR_MAX_IDS);
    for (int k = 0; k < UMG_ATTR_ID_KINDS && n < UMG_ATTR_MAX_IDS; k++) {
        uint64_t h = umg_attr_id_hash((umg_attr_id_kind_t)k, v[k]);
        if (h != 0) {
            ids[n++] = h;
        }
    }
    return n;
}

uint64_t umg_attr_click_hash(umg_slice_t click_id)
{
    if (click_id.ptr == NULL || click_id.len == 0) {
        return 0;
    }
    uint64_t h = umg_hash64(click_id.ptr, click_id.len, SEED_CLICK);
    return h ? h : 1;
}

/* Percent-decodes (and '+' to space) src into dst; returns the length or -1 when it does not fit. */
static long pct_decode(const char *src, size_t n, char *dst, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = src[i];
        if (c == '%' && i + 2 < n && umg_hexval((unsigned char)src[i + 1]) >= 0 &&
            umg_hexval((unsigned char)src[i + 2]) >= 0) {
            c = (char)(umg_hexval((unsigned char)src[i + 1]) << 4 | umg_hexval((unsigned char)src[i + 2]));
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (o >= cap) {
            return -1;
        }
        dst[o++] = c;
    }
    return (long)o;
}

/* Finds "click_id=" at a parameter boundary; returns the value's start offset or -1. */
static long find_param(const char *s, size_t n, size_t *vlen)
{
    static const char key[] = "click_id=";
    const size_t k = sizeof(key) - 1;
    for (size_t i = 0; i + k <= n; i++) {
        if ((i == 0 || s[i - 1] == '&' || s[i - 1] == '?') && memcmp(s + i, key, k) == 0) {
            size_t e = i + k;
            while (e < n && s[e] != '&') {
                e++;
            }
            *vlen = e - (i + k);
            return (long)(i + k);
        }
    }
    return -1;
}

int umg_attr_referrer_click_id(umg_slice_t referrer, char *buf, size_t cap, umg_slice_t *out)
{
    if (referrer.ptr == NULL || buf == NULL || out == NULL) {
        return UMG_ENOENT;
    }
    size_t vlen;
    long at = find_param(referrer.ptr, referrer.len, &vlen);
    if (at >= 0) {
        long n = pct_decode(referrer.ptr + at, vlen, buf, cap);
        if (n < 0) {
            return UMG_ERANGE;
        }
        if (n == 0) {
            return UMG_ENOENT;
        }
        *out = umg_slice(buf, (size_t)n);
        return UMG_OK;
    }
    /* The whole referrer may be encoded once more ("utm_source%3Dx%26click_id%3Dab%252F"): decode it into buf,
     * look again, and decode the value a second time to the front of buf (in place: decoding only shrinks). */
    long n = pct_decode(referrer.ptr, referrer.len, buf, cap);
    if (n < 0) {
        return UMG_ERANGE;
    }
    at = find_param(buf, (size_t)n, &vlen);
    if (at < 0 || (n = pct_decode(buf + at, vlen, buf, cap)) <= 0) {
        return UMG_ENOENT;
    }
    *out = umg_slice(buf, (size_t)n);
    return UMG_OK;
}

/* ---------------------------------------------------------------- matching */

static int ids_intersect(const uint64_t a[UMG_ATTR_MAX_IDS], const uint64_t b[UMG_ATTR_MAX_IDS])
{
    for (int i = 0; i < UMG_ATTR_MAX_IDS; i++) {
        if (a[i] == 0) {
            continue;
        }
        for (int j = 0; j < UMG_ATTR_MAX_IDS; j++) {
            if (a[i] == b[j]) {
                return 1;
            }
        }
    }
    return 0;
}

/* Same IP, same platform and OS version (a known one), and the same model when both name one. */
static int fp_match(const umg_attr_fp_t *a, const umg_attr_fp_t *b)
{
    if (a->ip == 0 || a->ip != b->ip || a->os == 0 || a->os != b->os || (a->os & 0xffffffu) == 0) {
        return 0;
    }
    return a->model == 0 || b->model == 0 || a->model == b->model;
}

/* The strongest class by identity alone, windows aside. */
static umg_attr_match_t identity_class(const umg_attr_touch_t *t, const umg_attr_obs_t *obs)
{
    if (t->type == UMG_ATTR_CLICK) {
        if (t->click_id != 0 && t->click_id == obs->referrer_click) {
            return UMG_ATTR_MATCH_REFERRER;
        }
        if (ids_intersect(t->ids, obs->ids)) {
            return UMG_ATTR_MATCH_DEVICE_ID;
        }
        if (fp_match(&t->fp, &obs->fp)) {
            return UMG_ATTR_MATCH_PROBABILISTIC;
        }
    } else if (t->type == UMG_ATTR_IMPRESSION && ids_intersect(t->ids, obs->ids)) {
        return UMG_ATTR_MATCH_IMPRESSION;
    }
    return UMG_ATTR_MATCH_NONE;
}

static int64_t clamp_s(uint32_t v, uint32_t lo, uint32_t hi)
{
    return (int64_t)(v < lo ? lo : v > hi ? hi : v) * US_PER_S;
}

/* The install window of a touch in a class, microseconds. */
static int64_t install_window(const umg_attr_settings_t *s, const umg_attr_touch_t *t, umg_attr_match_t m)
{
    if (t->type == UMG_ATTR_IMPRESSION) {
        return t->lookback_s ? clamp_s(t->lookback_s, UMG_ATTR_VIEW_LOOKBACK_MIN_S, UMG_ATTR_VIEW_LOOKBACK_MAX_S)
                             : s->view_lookback_hours * US_PER_H;
    }
    int64_t w = t->lookback_s ? clamp_s(t->lookback_s, UMG_ATTR_CLICK_LOOKBACK_MIN_S, UMG_ATTR_CLICK_LOOKBACK_MAX_S)
                              : s->click_lookback_days * US_PER_D;
    if (m == UMG_ATTR_MATCH_PROBABILISTIC) {
        w = UMG_MIN(w, s->probabilistic_window_hours * US_PER_H);
    }
    return w;
}

umg_attr_match_t umg_attr_touch_match(const umg_attr_settings_t *s, const umg_attr_touch_t *t,
                                      const umg_attr_obs_t *obs)
{
    if (t->app != obs->app || (t->flags & UMG_ATTR_TF_FRAUD) || t->ts_us > obs->ts_us) {
        return UMG_ATTR_MATCH_NONE;
    }
    umg_attr_match_t m = identity_class(t, obs);
    if (m == UMG_ATTR_MATCH_NONE || obs->ts_us - t->ts_us > install_window(s, t, m)) {
        return UMG_ATTR_MATCH_NONE;
    }
    return m;
}

/* The total order of candidates: class, then time, then touch id; 1 when a beats b. */
static int beats(umg_attr_match_t ma, const umg_attr_touch_t *a, umg_attr_match_t mb, const umg_attr_touch_t *b)
{
    if (ma != mb) {
        return ma > mb;
    }
    if (a->ts_us != b->ts_us) {
        return a->ts_us > b->ts_us;
    }
    return a->touch_id > b->touch_id;
}

int umg_attr_select(const umg_attr_settings_t *s, const umg_attr_touch_t *touches, size_t n, const umg_attr_obs_t *obs,
                    size_t *winner, umg_attr_match_t *match, uint32_t *n_candidates)
{
    size_t best = SIZE_MAX;
    umg_attr_match_t bm = UMG_ATTR_MATCH_NONE;
    uint32_t count = 0;
    for (size_t i = 0; i < n; i++) {
        umg_attr_match_t m = umg_attr_touch_match(s, &touches[i], obs);
        if (m == UMG_ATTR_MATCH_NONE) {
            continue;
        }
        count++;
        if (best == SIZE_MAX || beats(m, &touches[i], bm, &touches[best])) {
            best = i;
            bm = m;
        }
    }
    if (n_candidates != NULL) {
        *n_candidates = count;
    }
    if (best == SIZE_MAX) {
        return UMG_ENOENT;
    }
    *winner = best;
    *match = bm;
    return UMG_OK;
}

/* ----------------------------------------------------------------- decisions */

static void attribution_from(umg_attr_attribution_t *a, const umg_attr_touch_t *t, umg_attr_match_t m)
{
    memset(a, 0, sizeof(*a));
    a->touch_ts_us = t->ts_us;
    a->touch_id = t->touch_id;
    a->click_id = t->click_id;
    a->source = t->source;
    a->campaign = t->campaign;
    a->adset = t->adset;
    a->ad = t->ad;
    a->site = t->site;
    a->deep_link = t->deep_link;
    a->match = (uint8_t)m;
    a->touch_type = t->type;
}

static int check_args(const umg_attr_settings_t *s, const umg_attr_touch_t *touches, size_t n,
                      const umg_attr_obs_t *obs, const umg_attr_decision_t *out)
{
    if (s == NULL || obs == NULL || out == NULL || (touches == NULL && n > 0)) {
        return UMG_EINVAL;
    }
    return umg_attr_settings_check(s);
}

/* Attributes afresh: the winner, or organic. */
static void decide_fresh(const umg_attr_settings_t *s, const umg_attr_touch_t *touches, size_t n,
                         const umg_attr_obs_t *obs, umg_attr_decision_t *d)
{
    size_t w;
    umg_attr_match_t m;
    if (umg_attr_select(s, touches, n, obs, &w, &m, &d->n_candidates) == UMG_OK) {
        attribution_from(&d->attr, &touches[w], m);
    }
}

static int installed(const umg_attr_device_t *dev)
{
    return dev != NULL && dev->install_ts_us != 0;
}

int umg_attr_decide_install(const umg_attr_settings_t *s, const umg_attr_device_t *dev, const umg_attr_touch_t *touches,
                            size_t n, const umg_attr_obs_t *obs, int64_t now, umg_attr_decision_t *out)
{
    int rc = check_args(s, touches, n, obs, out);
    if (rc != UMG_OK) {
        return rc;
    }
    umg_attr_decision_t d;
    memset(&d, 0, sizeof(d));
    d.ts_us = obs->ts_us;
    d.decided_us = now;
    if (!installed(dev)) {
        d.outcome = UMG_ATTR_OUT_INSTALL;
        decide_fresh(s, touches, n, obs, &d);
    } else if (obs->ts_us - dev->install_ts_us <= s->reattribution_window_days * US_PER_D) {
        /* An install older than the one we know (out of order) is a reinstall too. */
        size_t w;
        umg_attr_match_t m;
        d.outcome = UMG_ATTR_OUT_REINSTALL;
        (void)umg_attr_select(s, touches, n, obs, &w, &m, &d.n_candidates);
        d.attr = dev->install;
    } else {
        d.outcome = UMG_ATTR_OUT_REATTRIBUTED;
        decide_fresh(s, touches, n, obs, &d);
    }
    *out = d;
    return UMG_OK;
}

/* A retargeting click later than the last re-engagement's click in the candidate order. */
static int after_last_reengagement(const umg_attr_device_t *dev, const umg_attr_touch_t *t)
{
    if (dev->reeng.match == UMG_ATTR_MATCH_NONE) {
        return 1;
    }
    if (t->ts_us != dev->reeng.touch_ts_us) {
        return t->ts_us > dev->reeng.touch_ts_us;
    }
    return t->touch_id > dev->reeng.touch_id;
}

static umg_attr_match_t reengagement_match(const umg_attr_settings_t *s, const umg_attr_device_t *dev,
                                           const umg_attr_touch_t *t, const umg_attr_obs_t *obs)
{
    if (t->app != obs->app || t->type != UMG_ATTR_CLICK || !(t->flags & UMG_ATTR_TF_RETARGETING) ||
        (t->flags & UMG_ATTR_TF_FRAUD) || t->ts_us > obs->ts_us || t->ts_us <= dev->install_ts_us ||
        !after_last_reengagement(dev, t)) {
        return UMG_ATTR_MATCH_NONE;
    }
    umg_attr_match_t m = identity_class(t, obs);
    int64_t w = s->reengagement_lookback_days * US_PER_D;
    if (m == UMG_ATTR_MATCH_PROBABILISTIC) {
        w = UMG_MIN(w, s->probabilistic_window_hours * US_PER_H);
    }
    return m == UMG_ATTR_MATCH_NONE || obs->ts_us - t->ts_us > w ? UMG_ATTR_MATCH_NONE : m;
}

int umg_attr_on_session(const umg_attr_settings_t *s, const umg_attr_device_t *dev, const umg_attr_touch_t *touches,
                        size_t n, const umg_attr_obs_t *obs, int64_t now, umg_attr_decision_t *out)
{
    int rc = check_args(s, touches, n, obs, out);
    if (rc != UMG_OK) {
        return rc;
    }
    umg_attr_decision_t d;
    memset(&d, 0, sizeof(d));
    d.ts_us = obs->ts_us;
    d.decided_us = now;
    if (!installed(dev)) {
        d.outcome = UMG_ATTR_OUT_IMPLICIT_INSTALL;
        decide_fresh(s, touches, n, obs, &d);
    } else if (obs->kind == UMG_ATTR_OBS_SESSION) {
        size_t best = SIZE_MAX;
        umg_attr_match_t bm = UMG_ATTR_MATCH_NONE;
        for (size_t i = 0; i < n; i++) {
            umg_attr_match_t m = reengagement_match(s, dev, &touches[i], obs);
            if (m == UMG_ATTR_MATCH_NONE) {
                continue;
            }
            d.n_candidates++;
            if (best == SIZE_MAX || beats(m, &touches[i], bm, &touches[best])) {
                best = i;
                bm = m;
            }
        }
        if (best != SIZE_MAX) {
            d.outcome = UMG_ATTR_OUT_REENGAGEMENT;
            attribution_from(&d.attr, &touches[best], bm);
        } else {
            d.n_candidates = 0;
        }
    }
    *out = d;
    return UMG_OK;
}

void umg_attr_apply(umg_attr_device_t *dev, const umg_attr_decision_t *d)
{
    switch ((umg_attr_outcome_t)d->outcome) {
    case UMG_ATTR_OUT_INSTALL:
    case UMG_ATTR_OUT_REATTRIBUTED:
    case UMG_ATTR_OUT_IMPLICIT_INSTALL:
        dev->install_ts_us = d->ts_us;
        dev->last_install_ts_us = d->ts_us;
        dev->installs++;
        dev->outcome = d->outcome;
        dev->install = d->attr;
        /* A new install lifecycle ends a running re-engagement. The click stays
         * known through install_ts_us: older clicks cannot re-engage again. A
         * re-engagement later than this install (an install that arrived late)
         * belongs to the new lifecycle and stays, so its click is not used twice. */
        if (dev->reeng_ts_us <= d->ts_us) {
            dev->reeng_ts_us = 0;
            memset(&dev->reeng, 0, sizeof(dev->reeng));
        }
        break;
    case UMG_ATTR_OUT_REINSTALL:
        dev->last_install_ts_us = UMG_MAX(dev->last_install_ts_us, d->ts_us);
        dev->reinstalls++;
        break;
    case UMG_ATTR_OUT_REENGAGEMENT:
        dev->reeng_ts_us = d->ts_us;
        dev->reeng = d->attr;
        dev->reengagements++;
        break;
    case UMG_ATTR_OUT_NONE: break;
    }
}

int umg_attr_credit_event(const umg_attr_settings_t *s, const umg_attr_device_t *dev, int64_t ts_us,
                          umg_attr_credit_t *out)
{
    if (s == NULL || dev == NULL || out == NULL) {
        return UMG_EINVAL;
    }
    if (!installed(dev)) {
        return UMG_ENOENT;
    }
    umg_attr_credit_t c;
    memset(&c, 0, sizeof(c));
    c.install = dev->install;
    if (dev->reeng.match != UMG_ATTR_MATCH_NONE && ts_us >= dev->reeng_ts_us &&
        ts_us - dev->reeng_ts_us <= s->reengagement_window_days * US_PER_D) {
        c.reeng = dev->reeng;
        c.reeng_active = 1;
    }
    *out = c;
    return UMG_OK;
}

/* ---------------------------------------------------------------- names */

const char *umg_attr_match_name(umg_attr_match_t m)
{
    switch (m) {
    case UMG_ATTR_MATCH_REFERRER: return "referrer";
    case UMG_ATTR_MATCH_DEVICE_ID:
    case UMG_ATTR_MATCH_IMPRESSION: return "device_id";
    case UMG_ATTR_MATCH_PROBABILISTIC: return "probabilistic";
    case UMG_ATTR_MATCH_NONE: break;
    }
    return "none";
}

const char *umg_attr_outcome_name(umg_attr_outcome_t o)
{
    switch (o) {
    case UMG_ATTR_OUT_INSTALL: return "install";
    case UMG_ATTR_OUT_REINSTALL: return "reinstall";
    case UMG_ATTR_OUT_REATTRIBUTED: return "reattributed";
    case UMG_ATTR_OUT_IMPLICIT_INSTALL: return "implicit_install";
    case UMG_ATTR_OUT_REENGAGEMENT: return "reengagement";
    case UMG_ATTR_OUT_NONE: break;
    }
    return "none";
}

const char *umg_attr_touch_type_name(umg_attr_touch_type_t t)
{
    return t == UMG_ATTR_CLICK ? "click" : t == UMG_ATTR_IMPRESSION ? "impression" : "none";
}

_Static_assert(sizeof(umg_attr_touch_t) == 112, "touch record layout");
_Static_assert(sizeof(umg_attr_touch_t) <= 128, "the touch store budget is 128 bytes a touch");
_Static_assert(sizeof(umg_attr_attribution_t) == 56, "attribution layout has no hidden padding");
