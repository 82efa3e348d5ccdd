/*
 * test_gen.c - unit tests for src/gen: the generator is deterministic (same
 * options, same bytes; counting without JSON walks the same timeline),
 * yields items in time order, and every touch and event it makes passes the
 * daemon's own decoders (umg_touch_decode, umg_event_decoder_*) at the
 * generator's `now`. Its ground truth holds up against the items themselves:
 * referrer click_ids name earlier clicks of the same device, device-id
 * installs share the click's advertising id, IP + User-Agent installs share
 * the click's fingerprint (umg_attr_fp_make) and carry no id, view-through
 * installs follow an impression, organic installs follow no touch. The mix
 * (organic share, match kinds, click-to-install delays, CTR, payers,
 * retention D1 > D7 > D21) stays within stated bounds. With --late and
 * --reinstall: late items come out of time order but in send order, hours
 * to days late; reinstalls come 1-6 or 8-21 days after the install, some
 * after a click minutes before; re-engagement (a retargeting click, then a
 * session) and several currencies occur. With --fraud: deterministic, counted
 * alike without JSON, the honest items unchanged (and the bytes of a plain
 * run pinned); every fraudulent item decodes; injected clicks 1-9 s before
 * their install (half of the Android ones after the referrer's
 * install_begin_ts); floods above the click_spam thresholds (more than 20
 * clicks of a device in a clock hour, more than 60 of an IP in a minute) at
 * under 1% conversion; farms of 21-60 installs within the hour from one IP
 * and User-Agent; data-centre addresses inside the listed ranges; the labels
 * file matches the counts; the request signature matches a vector from
 * Python's hmac. Also: option checks, allocation failures, and the small JSON
 * reader and answer parser of send.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "gen_int.h"
#include "umg_attr.h"
#include "umg_event.h"
#include "umg_touch.h"

#define NOW_MS INT64_C(1795773600000) /* 2026-11-27T10:00:00Z */
#define HOUR_MS INT64_C(3600000)
#define DAY_MS (24 * HOUR_MS)
#define PINNED_HASH UINT64_C(0x01a711605521e2a5) /* test_fraud_deterministic: the honest bytes of a small run */

static umg_gen_opts_t opts(umg_gen_platform_t pf, int64_t devices, int64_t days, int64_t seed)
{
    umg_gen_opts_t o;
    umg_gen_opts_default(&o);
    o.platform = pf;
    o.devices = devices;
    o.days = days;
    o.seed = seed;
    o.now_ms = NOW_MS;
    return o;
}

/* A hash of the items of a run in order (honest_only: of its honest items, counted in *n). */
static uint64_t hash_items(const umg_gen_opts_t *o, umg_gen_stats_t *st, int honest_only, uint64_t *n)
{
    umg_gen_t *g;
    umg_gen_item_t it;
    uint64_t h = 0, count = 0;
    assert_int_equal(umg_gen_new(o, &g), UMG_OK);
    int rc;
    while ((rc = umg_gen_next(g, &it)) == UMG_OK) {
        if (!honest_only || it.fraud == UMG_GEN_HONEST) {
            h = umg_hash64(it.json.ptr, it.json.len, h ^ (uint64_t)it.ts_ms ^ (uint64_t)it.kind << 60);
            count++;
        }
    }
    if (n != NULL) {
        *n = count;
    }
    assert_int_equal(rc, UMG_ENOENT);
    umg_gen_stats(g, st);
    umg_gen_free(g);
    return h;
}

static uint64_t hash_run(const umg_gen_opts_t *o, umg_gen_stats_t *st)
{
    return hash_items(o, st, 0, NULL);
}

static void test_deterministic(void **state)
{
    (void)state;
    umg_gen_opts_t o = opts(UMG_GEN_ANDROID, 300, 7, 1);
    umg_gen_stats_t a, b, c;
    uint64_t h1 = hash_run(&o, &a), h2 = hash_run(&o, &b);
    assert_true(h1 == h2);
    assert_memory_equal(&a, &b, sizeof(a));
    assert_true(a.items > 1000);
    /* Counting without JSON walks exactly the same timeline. */
    assert_int_equal(umg_gen_count(&o, &c), UMG_OK);
    assert_memory_equal(&a, &c, sizeof(a));
    o.seed = 2;
    assert_true(hash_run(&o, &c) != h1);
    o.seed = 1;
    o.now_ms += 1;
    assert_true(hash_run(&o, &c) != h1);
    o.now_ms -= 1;
    o.platform = UMG_GEN_IOS;
    assert_true(hash_run(&o, &c) != h1);
}

static void test_options(void **state)
{
    (void)state;
    umg_gen_t *g = NULL;
    umg_gen_opts_t o = opts(UMG_GEN_ANDROID, 10, 14, 1);
    assert_int_equal(umg_gen_new(&o, &g), UMG_OK);
    umg_gen_free(g);
    umg_gen_free(NULL);
    o.days = UMG_GEN_MAX_DAYS + 1;
    assert_int_equal(umg_gen_new(&o, &g), UMG_EINVAL);
    o = opts(UMG_GEN_ANDROID, 0, 14, 1);
    assert_int_equal(umg_gen_new(&o, &g), UMG_EINVAL);
    o = opts(UMG_GEN_ANDROID, 10, 14, 1);
    o.now_ms = 13 * DAY_MS;
    assert_int_equal(umg_gen_new(&o, &g), UMG_EINVAL);
    o = opts((umg_gen_platform_t)3, 10, 14, 1);
    assert_int_equal(umg_gen_new(&o, &g), UMG_EINVAL);
    o = opts(UMG_GEN_ANDROID, 10, 14, 1);
    o.cvr_pct = 0;
    assert_int_equal(umg_gen_new(&o, &g), UMG_EINVAL);
    o = opts(UMG_GEN_ANDROID, 10, 14, 1);
    o.sources = 13;
    assert_int_equal(umg_gen_new(&o, &g), UMG_EINVAL);
    assert_int_equal(umg_gen_new(NULL, &g), UMG_EINVAL);
    /* The option table and the struct agree on the defaults. */
    umg_gen_opts_default(&o);
    assert_int_equal(o.devices, 1000);
    assert_int_equal(o.days, 14);
    assert_int_equal(o.sources, 7);
    assert_int_equal(o.platform, UMG_GEN_ANDROID);
    assert_string_equal(umg_gen_type_name(UMG_GEN_PURCHASE), "purchase");
    assert_string_equal(umg_gen_match_name(UMG_GEN_MATCH_PROBABILISTIC), "probabilistic");
}

/* ------------------------------------------------------------ the walk */

typedef struct devrec_s {
    int64_t install_ts;
    int64_t last_click_ts;
    uint64_t click_id_hash; /* the last click's advertising id (umg_hash64), 0 without one */
    uint64_t imp_id_hash;   /* the last impression's */
    umg_attr_fp_t click_fp;
    uint32_t days; /* bit d: a session on day d after the install */
    uint32_t touches, clicks;
    int paid;
    int64_t reclick_ts;  /* the click before a reinstall */
    int64_t retarget_ts; /* the last retargeting click, until a session follows it */
    uint64_t reclick_id; /* its advertising id hash */
    umg_attr_fp_t reclick_fp;
} devrec_t;

typedef struct clickrec_s {
    uint64_t hash; /* umg_attr_click_hash, 0 = empty slot */
    int64_t ts;
    uint64_t device;
} clickrec_t;

typedef struct walk_s {
    umg_gen_opts_t o;
    umg_gen_stats_t st;
    devrec_t *dev;
    size_t ndev;
    clickrec_t *clicks;
    size_t click_mask;
    uint64_t installs, by_match[UMG_GEN_MATCH_KINDS];
    uint64_t rep_clicks, rep_impressions, plain_clicks, retargeting;
    uint64_t purchases, payers;
    uint64_t ref_n, ref_within_hour, ref_over_day;
    int64_t max_delay;
    double retention[32];
    uint64_t cohort[32];
    /* --late and --reinstall */
    uint64_t late, out_of_order, reinstalls, reinst_inside, reinst_after, reinst_clicked;
    int64_t late_min, late_max;
    uint64_t reengaged; /* sessions within a day after a retargeting click */
    char currencies[16][4];
    int ncurrencies;
} walk_t;

/* What the callbacks hand back from one decoded item. */
typedef struct seen_s {
    int ok;
    char err[400];
    umg_touch_t t;
    umg_event_t ev;
} seen_t;

static umg_touch_decoder_t *tdec;
static umg_event_decoder_t *edec;
static walk_t android_walk, ios_walk;

static int on_touch(void *ctx, size_t index, umg_touch_t *t, const umg_touch_error_t *err)
{
    seen_t *s = ctx;
    (void)index;
    if (err != NULL) {
        snprintf(s->err, sizeof(s->err), "%s %s: %s", err->code, err->field, err->message);
        return 0;
    }
    s->t = *t;
    s->ok = 1;
    return 0;
}

static int on_event(void *ctx, size_t index, umg_event_t *ev, const umg_event_error_t *err)
{
    seen_t *s = ctx;
    (void)index;
    if (err != NULL) {
        snprintf(s->err, sizeof(s->err), "%s %s: %s", err->code, err->field, err->message);
        return 0;
    }
    s->ev = *ev;
    s->ok = 1;
    return 0;
}

static int is_reporting(umg_slice_t source)
{
    static const char *const rep[] = {"tiktok", "unity", "applovin", "ironsource", "snap"};
    for (size_t i = 0; i < UMG_ARRAY_SIZE(rep); i++) {
        if (umg_slice_eq(source, rep[i])) {
            return 1;
        }
    }
    return 0;
}

static uint64_t id_hash(umg_slice_t s)
{
    return s.len ? umg_hash64(s.ptr, s.len, 7) : 0;
}

static void click_put(walk_t *w, uint64_t h, int64_t ts, uint64_t device)
{
    size_t i = h & w->click_mask;
    while (w->clicks[i].hash != 0) {
        assert_true(w->clicks[i].hash != h); /* click_ids are unique */
        i = (i + 1) & w->click_mask;
    }
    w->clicks[i] = (clickrec_t){h, ts, device};
}

static const clickrec_t *click_get(const walk_t *w, uint64_t h)
{
    for (size_t i = h & w->click_mask; w->clicks[i].hash != 0; i = (i + 1) & w->click_mask) {
        if (w->clicks[i].hash == h) {
            return &w->clicks[i];
        }
    }
    return NULL;
}

/* An item through the daemon's own decoders at the generator's now (fails the test when rejected). */
static void decode_touch(int64_t now_ms, const umg_gen_item_t *it, umg_buf_t *body, seen_t *s)
{
    umg_touch_limits_t lim = {
        .now_us = now_ms * 1000, .max_future_us = INT64_C(600000000), .max_age_us = 30 * DAY_MS * 1000};
    umg_touch_error_t err;
    body->len = 0;
    umg_buf_printf(body, "{\"touches\":[%.*s]}", (int)it->json.len, it->json.ptr);
    assert_int_equal(umg_touch_decode(tdec, body->ptr, body->len, &lim, on_touch, s, &err), UMG_OK);
    if (!s->ok) {
        fail_msg("touch rejected: %s\n%.*s", s->err, (int)it->json.len, it->json.ptr);
    }
}

static void decode_event(int64_t now_ms, const umg_gen_item_t *it, umg_buf_t *body, seen_t *s)
{
    umg_event_limits_t lim = {
        .now_us = now_ms * 1000, .max_future_us = INT64_C(600000000), .max_age_us = 30 * DAY_MS * 1000, .allow_ip = 1};
    umg_event_error_t err;
    size_t n;
    int is_batch;
    body->len = 0;
    umg_buf_printf(body, "{\"events\":[%.*s]}", (int)it->json.len, it->json.ptr);
    assert_int_equal(umg_event_decoder_parse(edec, body->ptr, body->len, 1000, &n, &is_batch, &err), UMG_OK);
    assert_int_equal(umg_event_decoder_foreach(edec, &lim, on_event, s), 0);
    if (!s->ok) {
        fail_msg("event rejected: %s\n%.*s", s->err, (int)it->json.len, it->json.ptr);
    }
}

static void walk_touch(walk_t *w, const umg_gen_item_t *it, umg_buf_t *body)
{
    seen_t s = {0};
    decode_touch(w->o.now_ms, it, body, &s);
    const umg_touch_t *t = &s.t;
    devrec_t *d = &w->dev[it->device];
    assert_true(t->ts_us == it->ts_ms * 1000);
    assert_int_equal(t->type, it->type == UMG_GEN_CLICK ? UMG_TOUCH_CLICK : UMG_TOUCH_IMPRESSION);
    assert_int_equal(t->retargeting, it->retargeting);
    assert_true(t->ip.len > 0 && t->user_agent.len > 0 && t->source.len > 0 && t->campaign.len > 0);
    umg_slice_t adid = w->o.platform == UMG_GEN_IOS ? t->idfa : t->gaid;
    d->touches++;
    if (it->type == UMG_GEN_IMPRESSION) {
        w->rep_impressions += is_reporting(t->source);
        d->imp_id_hash = id_hash(adid);
        return;
    }
    assert_int_equal(t->click_id.len, 32);
    click_put(w, umg_attr_click_hash(t->click_id), it->ts_ms, it->device);
    if (it->retargeting) {
        /* Retargeting reaches devices that installed, before a later session. */
        assert_true(d->install_ts != 0 && d->install_ts < it->ts_ms);
        assert_true(t->deep_link.len > 0);
        w->retargeting++;
        d->retarget_ts = it->ts_ms;
        return;
    }
    if (it->reinstall) {
        /* An ordinary click of an installed device, minutes before it installs again. */
        assert_true(d->install_ts != 0 && d->install_ts < it->ts_ms);
        d->reclick_ts = it->ts_ms;
        d->reclick_id = id_hash(adid);
        umg_attr_fp_make(&d->reclick_fp, t->ip, t->user_agent, UMG_SLICE_NULL, UMG_SLICE_NULL, UMG_SLICE_NULL);
        return;
    }
    assert_int_equal(d->install_ts, 0);
    w->plain_clicks++;
    w->rep_clicks += is_reporting(t->source);
    d->clicks++;
    d->last_click_ts = it->ts_ms;
    d->click_id_hash = id_hash(adid);
    umg_attr_fp_make(&d->click_fp, t->ip, t->user_agent, UMG_SLICE_NULL, UMG_SLICE_NULL, UMG_SLICE_NULL);
}

/* A second install: days after the first, without a referrer; after a new click it matches
 * that click by device id or by IP + User-Agent, within the hour. */
static void check_reinstall(walk_t *w, const umg_gen_item_t *it, const umg_event_t *ev, umg_slice_t adid,
                            const umg_attr_fp_t *fp)
{
    devrec_t *d = &w->dev[it->device];
    assert_true(d->install_ts != 0 && it->install_ts_ms == it->ts_ms && !ev->has_referrer);
    int64_t gap = it->ts_ms - d->install_ts;
    assert_true(gap >= DAY_MS);
    w->reinstalls++;
    w->reinst_inside += gap < 7 * DAY_MS - HOUR_MS;
    w->reinst_after += gap > 7 * DAY_MS + HOUR_MS;
    d->install_ts = it->ts_ms;
    if (it->match == UMG_GEN_MATCH_ORGANIC) {
        return;
    }
    w->reinst_clicked++;
    assert_true(d->reclick_ts != 0 && d->reclick_ts <= it->ts_ms && it->ts_ms - d->reclick_ts < HOUR_MS);
    if (it->match == UMG_GEN_MATCH_DEVICE_ID) {
        assert_true(adid.len > 0 && d->reclick_id == id_hash(adid));
    } else {
        assert_int_equal(it->match, UMG_GEN_MATCH_PROBABILISTIC);
        assert_true(adid.len == 0 && d->reclick_id == 0 && fp->ip == d->reclick_fp.ip && fp->os == d->reclick_fp.os);
    }
    d->reclick_ts = 0;
}

static void check_install(walk_t *w, const umg_gen_item_t *it, const umg_event_t *ev)
{
    devrec_t *d = &w->dev[it->device];
    const umg_event_device_t *dv = &ev->device;
    umg_slice_t adid = w->o.platform == UMG_GEN_IOS ? dv->idfa : dv->gaid;
    umg_attr_fp_t fp;
    umg_attr_fp_make(&fp, ev->ip, ev->user_agent, dv->platform, dv->os_version, dv->model);
    if (it->reinstall) {
        check_reinstall(w, it, ev, adid, &fp);
        return;
    }
    assert_true(d->install_ts == 0);
    d->install_ts = it->ts_ms;
    assert_true(it->install_ts_ms == it->ts_ms);
    w->installs++;
    w->by_match[it->match]++;
    d->paid = it->match != UMG_GEN_MATCH_ORGANIC;
    switch (it->match) {
    case UMG_GEN_MATCH_ORGANIC: assert_int_equal(d->touches, 0); break;
    case UMG_GEN_MATCH_REFERRER: {
        char buf[128];
        umg_slice_t cid;
        assert_true(ev->has_referrer);
        assert_int_equal(umg_attr_referrer_click_id(ev->referrer, buf, sizeof(buf), &cid), UMG_OK);
        const clickrec_t *c = click_get(w, umg_attr_click_hash(cid));
        if (c == NULL) {
            fail_msg("the referrer's click_id %.*s names no earlier click", (int)cid.len, cid.ptr);
        }
        assert_true(c->device == it->device && c->ts <= it->ts_ms);
        assert_true(ev->referrer_click_ts_us == c->ts * 1000);
        int64_t delay = it->ts_ms - c->ts;
        w->ref_n++;
        w->ref_within_hour += delay <= HOUR_MS;
        w->ref_over_day += delay > DAY_MS;
        w->max_delay = UMG_MAX(w->max_delay, delay);
        break;
    }
    case UMG_GEN_MATCH_DEVICE_ID:
        assert_true(d->clicks > 0 && adid.len > 0);
        assert_true(d->click_id_hash == id_hash(adid));
        assert_true(it->ts_ms - d->last_click_ts < 7 * DAY_MS);
        w->max_delay = UMG_MAX(w->max_delay, it->ts_ms - d->last_click_ts);
        break;
    case UMG_GEN_MATCH_PROBABILISTIC:
        /* The click had no id, the install has none, and their fingerprints match within 24 hours. */
        assert_true(d->clicks > 0 && d->click_id_hash == 0 && adid.len == 0);
        assert_true(fp.ip != 0 && fp.ip == d->click_fp.ip);
        assert_true(fp.os != 0 && (fp.os & 0xffffff) != 0 && fp.os == d->click_fp.os);
        assert_true(fp.model == d->click_fp.model || d->click_fp.model == 0);
        assert_true(it->ts_ms - d->last_click_ts < DAY_MS);
        break;
    case UMG_GEN_MATCH_IMPRESSION:
        assert_true(d->clicks == 0 && d->imp_id_hash != 0 && d->imp_id_hash == id_hash(adid));
        break;
    default: fail();
    }
}

static void walk_event(walk_t *w, const umg_gen_item_t *it, umg_buf_t *body)
{
    seen_t s = {0};
    decode_event(w->o.now_ms, it, body, &s);
    const umg_event_t *ev = &s.ev;
    static const umg_event_type_t types[] = {0, 0, 0, UMG_EV_INSTALL, UMG_EV_SESSION, UMG_EV_EVENT, UMG_EV_PURCHASE};
    assert_int_equal(ev->type, types[it->type]);
    assert_true(ev->has_event_id && ev->ts_us == it->ts_ms * 1000 && ev->ip.len > 0);
    assert_true(umg_slice_eq(ev->device.platform, w->o.platform == UMG_GEN_IOS ? "ios" : "android"));
    devrec_t *d = &w->dev[it->device];
    if (it->type == UMG_GEN_INSTALL) {
        check_install(w, it, ev);
        return;
    }
    if (it->sent_ms == it->ts_ms) {
        assert_true(d->install_ts != 0 && it->ts_ms >= d->install_ts && it->install_ts_ms == d->install_ts);
    } else {
        /* Late: the device may have installed again since. */
        assert_true(it->install_ts_ms != 0 && it->ts_ms >= it->install_ts_ms && it->install_ts_ms <= d->install_ts);
    }
    if (it->type == UMG_GEN_SESSION) {
        if (d->retarget_ts != 0 && it->ts_ms > d->retarget_ts && it->ts_ms - d->retarget_ts < DAY_MS) {
            w->reengaged++;
            d->retarget_ts = 0;
        }
        int64_t day = (it->ts_ms - it->install_ts_ms) / DAY_MS;
        if (day < 32) {
            d->days |= UINT32_C(1) << day;
        }
    } else if (it->type == UMG_GEN_PURCHASE) {
        assert_true(ev->has_revenue && ev->revenue > 0 && strlen(ev->currency) == 3);
        assert_true(it->revenue_usd >= 0.99 && it->revenue_usd <= 99.99);
        w->purchases++;
        int c = 0;
        while (c < w->ncurrencies && strcmp(w->currencies[c], ev->currency) != 0) {
            c++;
        }
        if (c == w->ncurrencies && c < 16) {
            memcpy(w->currencies[w->ncurrencies++], ev->currency, 4);
        }
    } else {
        assert_true(ev->name.len > 0);
    }
}

static void walk(walk_t *w, const umg_gen_opts_t *o)
{
    umg_gen_stats_t pre;
    umg_buf_t body = {0};
    memset(w, 0, sizeof(*w));
    w->o = *o;
    assert_int_equal(umg_gen_count(o, &pre), UMG_OK);
    w->ndev = pre.devices;
    w->dev = calloc(w->ndev, sizeof(*w->dev));
    size_t cap = 1024;
    while (cap < pre.clicks * 2) {
        cap *= 2;
    }
    w->clicks = calloc(cap, sizeof(*w->clicks));
    w->click_mask = cap - 1;
    assert_non_null(w->dev);
    assert_non_null(w->clicks);
    umg_gen_t *g;
    umg_gen_item_t it;
    int64_t prev = 0, prev_ts = 0;
    int rc;
    w->late_min = INT64_MAX;
    assert_int_equal(umg_gen_new(o, &g), UMG_OK);
    while ((rc = umg_gen_next(g, &it)) == UMG_OK) {
        /* In send order; only late sessions, events and purchases are sent after their ts. */
        assert_true(it.sent_ms >= prev && it.sent_ms >= it.ts_ms && it.sent_ms <= o->now_ms);
        assert_true(it.ts_ms >= o->now_ms - o->days * DAY_MS && it.ts_ms <= o->now_ms);
        assert_true(it.device < w->ndev);
        assert_int_equal(it.kind, it.type <= UMG_GEN_IMPRESSION ? UMG_GEN_TOUCH : UMG_GEN_EVENT);
        if (it.sent_ms != it.ts_ms) {
            assert_true(it.type == UMG_GEN_SESSION || it.type == UMG_GEN_INAPP || it.type == UMG_GEN_PURCHASE);
            w->late++;
            if (it.sent_ms < o->now_ms) { /* else held back to the end of history */
                w->late_min = UMG_MIN(w->late_min, it.sent_ms - it.ts_ms);
            }
            w->late_max = UMG_MAX(w->late_max, it.sent_ms - it.ts_ms);
            w->out_of_order += it.ts_ms < prev_ts;
        }
        prev = it.sent_ms;
        prev_ts = UMG_MAX(prev_ts, it.ts_ms);
        if (it.kind == UMG_GEN_TOUCH) {
            walk_touch(w, &it, &body);
        } else {
            walk_event(w, &it, &body);
        }
    }
    assert_int_equal(rc, UMG_ENOENT);
    umg_gen_stats(g, &w->st);
    umg_gen_free(g);
    umg_buf_free(&body);
    assert_memory_equal(&w->st, &pre, sizeof(pre));
    assert_int_equal(w->st.installs, w->installs);
    assert_int_equal(w->st.purchases, w->purchases);
    assert_int_equal(w->st.late, w->late);
    assert_int_equal(w->st.reinstalls, w->reinstalls);
    /* Retention: the share of the devices installed at least d + 1 days before now with a session on day d. */
    for (int day = 0; day < 32; day++) {
        uint64_t active = 0;
        for (size_t i = 0; i < w->ndev; i++) {
            const devrec_t *d = &w->dev[i];
            if (d->install_ts != 0 && d->install_ts <= o->now_ms - (day + 1) * DAY_MS) {
                w->cohort[day]++;
                active += (d->days >> day) & 1;
            }
        }
        w->retention[day] = w->cohort[day] ? (double)active / (double)w->cohort[day] : 0;
    }
}

static int setup(void **state)
{
    (void)state;
    if (umg_touch_decoder_new(1 << 16, &tdec) != UMG_OK || umg_event_decoder_new(1 << 16, &edec) != UMG_OK) {
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    umg_touch_decoder_free(tdec);
    umg_event_decoder_free(edec);
    walk_t *ws[] = {&android_walk, &ios_walk};
    for (size_t i = 0; i < 2; i++) {
        free(ws[i]->dev);
        free(ws[i]->clicks);
    }
    return 0;
}

static const walk_t *android(void)
{
    if (android_walk.dev == NULL) {
        umg_gen_opts_t o = opts(UMG_GEN_ANDROID, 3000, UMG_GEN_MAX_DAYS, 7);
        walk(&android_walk, &o);
    }
    return &android_walk;
}

static const walk_t *ios(void)
{
    if (ios_walk.dev == NULL) {
        umg_gen_opts_t o = opts(UMG_GEN_IOS, 1500, 14, 8);
        walk(&ios_walk, &o);
    }
    return &ios_walk;
}

/* Every item decodes, in time order, and the ground truth checks out (all inside walk()). */
static void test_android_items_valid(void **state)
{
    (void)state;
    const walk_t *w = android();
    assert_true(w->st.items > 100000);
    assert_true(w->installs > 2800 && w->installs <= 3000);
}

static void test_ios_items_valid(void **state)
{
    (void)state;
    const walk_t *w = ios();
    assert_true(w->installs > 1400 && w->installs <= 1500);
    /* No Play referrer on iOS; without ATT consent most matches are IP + User-Agent. */
    assert_int_equal(w->by_match[UMG_GEN_MATCH_REFERRER], 0);
    assert_true(w->by_match[UMG_GEN_MATCH_PROBABILISTIC] > w->by_match[UMG_GEN_MATCH_DEVICE_ID]);
    assert_true(w->by_match[UMG_GEN_MATCH_DEVICE_ID] > 0 && w->by_match[UMG_GEN_MATCH_IMPRESSION] > 0);
}

static void test_mix(void **state)
{
    (void)state;
    const walk_t *w = android();
    double organic = (double)w->by_match[UMG_GEN_MATCH_ORGANIC] / (double)w->installs;
    assert_true(organic > 0.30 && organic < 0.42);
    for (int m = 1; m < UMG_GEN_MATCH_KINDS; m++) {
        if (w->by_match[m] < 30) {
            fail_msg("only %llu installs matched by %s", (unsigned long long)w->by_match[m],
                     umg_gen_match_name((umg_gen_match_t)m));
        }
    }
    /* Many more touches than installs: CVR about 10% (paid installs per click), CTR about 8%. */
    uint64_t paid = w->installs - w->by_match[UMG_GEN_MATCH_ORGANIC];
    double cvr = (double)paid / (double)w->plain_clicks;
    double ctr = (double)w->rep_clicks / (double)w->rep_impressions;
    if (!(cvr > 0.06 && cvr < 0.15) || !(ctr > 0.05 && ctr < 0.13)) {
        fail_msg("cvr %.3f ctr %.3f", cvr, ctr);
    }
    assert_true(w->st.impressions > w->st.clicks && w->retargeting > 10);
    /* A few percent of users pay. */
    double payers = (double)w->st.payers / (double)w->installs;
    assert_true(w->purchases > 50 && payers > 0.01 && payers < 0.08);
    assert_true(w->st.revenue_usd > 0);
}

/* Re-engagement and several currencies come with the defaults (the reports' recount needs them). */
static void test_reengagement_currencies(void **state)
{
    (void)state;
    const walk_t *w = android();
    assert_true(w->reengaged > 10 && w->reengaged <= w->retargeting);
    assert_true(w->ncurrencies >= 5);
    assert_int_equal(w->late, 0);
    assert_int_equal(w->reinstalls, 0);
}

/* --late 10 --reinstall 30: late items, out of time order, hours to days late; reinstalls on both
 * sides of a 7-day window, some after a click. Deterministic, and counted alike without JSON. */
static void test_late_and_reinstalls(void **state)
{
    (void)state;
    walk_t w;
    umg_gen_opts_t o = opts(UMG_GEN_ANDROID, 800, 21, 11);
    o.late_pct = 10;
    o.reinstall_pct = 30;
    walk(&w, &o);
    umg_gen_stats_t a, b;
    assert_true(hash_run(&o, &a) == hash_run(&o, &b));
    assert_memory_equal(&a, &w.st, sizeof(a));
    uint64_t lateable = w.st.sessions + w.st.inapp + w.st.purchases;
    double share = (double)w.late / (double)lateable;
    if (!(share > 0.07 && share < 0.13) || w.out_of_order * 2 < w.late) {
        fail_msg("late %llu of %llu, %llu out of order", (unsigned long long)w.late, (unsigned long long)lateable,
                 (unsigned long long)w.out_of_order);
    }
    assert_true(w.late_min >= HOUR_MS && w.late_max <= 5 * DAY_MS && w.late_max > DAY_MS);
    /* About 30% of the installs that have 1-21 days left; both sides of 7 days; 60% after a click. */
    if (!(w.reinstalls > 80 && w.reinst_inside > 20 && w.reinst_after > 20 && w.reinst_clicked > w.reinstalls / 3 &&
          w.reinst_clicked < w.reinstalls)) {
        fail_msg("reinstalls %llu: %llu inside 7 days, %llu after, %llu after a click",
                 (unsigned long long)w.reinstalls, (unsigned long long)w.reinst_inside,
                 (unsigned long long)w.reinst_after, (unsigned long long)w.reinst_clicked);
    }
    assert_int_equal(w.st.reinstall_clicks, w.reinst_clicked);
    free(w.dev);
    free(w.clicks);
}

static void test_install_delays(void **state)
{
    (void)state;
    const walk_t *w = android();
    /* Click to install: most within the hour, a tail over days, all under 7 days. */
    double within_hour = (double)w->ref_within_hour / (double)w->ref_n;
    if (!(within_hour > 0.75 && within_hour < 0.95) || w->ref_over_day == 0) {
        fail_msg("%.3f within the hour, %llu over a day, of %llu", within_hour, (unsigned long long)w->ref_over_day,
                 (unsigned long long)w->ref_n);
    }
    assert_true(w->max_delay < 7 * DAY_MS);
}

static void test_retention(void **state)
{
    (void)state;
    const walk_t *w = android();
    const double *r = w->retention;
    if (!(r[0] > 0.99 && r[1] > 0.28 && r[1] < 0.42 && r[7] > 0.10 && r[7] < 0.20 && r[21] > 0.03 && r[21] < 0.10 &&
          r[1] > r[7] && r[7] > r[21])) {
        fail_msg("D0 %.3f D1 %.3f D7 %.3f D21 %.3f (cohorts %llu %llu %llu)", r[0], r[1], r[7], r[21],
                 (unsigned long long)w->cohort[1], (unsigned long long)w->cohort[7], (unsigned long long)w->cohort[21]);
    }
    assert_true(w->cohort[21] > 300);
}

static void test_bounded_memory(void **state)
{
    (void)state;
    const walk_t *w = android();
    /* Devices are held only while active: far fewer than all that appeared. */
    assert_true(w->st.peak_active * 4 < w->st.devices);
    umg_gen_opts_t o = opts(UMG_GEN_ANDROID, 20000, 14, 3);
    umg_gen_t *g;
    umg_gen_item_t it;
    size_t before = umg_alloc_bytes(), most = 0;
    assert_int_equal(umg_gen_new(&o, &g), UMG_OK);
    while (umg_gen_next(g, &it) == UMG_OK) {
        most = UMG_MAX(most, umg_alloc_bytes() - before);
    }
    umg_gen_free(g);
    assert_true(most < 8 * 1024 * 1024);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    umg_gen_opts_t o = opts(UMG_GEN_IOS, 2000, 3, 5);
    for (long k = 1; k <= 12; k++) {
        umg_gen_t *g = NULL;
        umg_gen_item_t it;
        umg_alloc_fail_after(k);
        int rc = umg_gen_new(&o, &g);
        if (rc == UMG_OK) {
            while ((rc = umg_gen_next(g, &it)) == UMG_OK) {
            }
        }
        umg_alloc_fail_after(0);
        assert_true(rc == UMG_ENOMEM || rc == UMG_ENOENT);
        umg_gen_free(g);
    }
}

/* ------------------------------------------------------ send.c's JSON */

static umg_slice_t sl(const char *s)
{
    return umg_slice(s, strlen(s));
}

static void test_json_reader(void **state)
{
    (void)state;
    umg_slice_t v, cur, el;
    char s[64];
    int64_t i;
    umg_slice_t doc = sl(" {\"a\" : 1, \"b\": {\"c\": [1, {\"d\": \"}\"}]}, \"s\": \"x\\\"y\\u00e9\\ud83d\\ude00\"} ");
    assert_int_equal(umg__gen_json_member(doc, "a", &v), UMG_OK);
    assert_int_equal(umg__gen_json_int(v, &i), UMG_OK);
    assert_int_equal(i, 1);
    assert_int_equal(umg__gen_json_member(doc, "s", &v), UMG_OK);
    assert_int_equal(umg__gen_json_string(v, s, sizeof(s)), UMG_OK);
    assert_string_equal(s, "x\"y\xc3\xa9\xf0\x9f\x98\x80");
    assert_int_equal(umg__gen_json_string(v, s, 5), UMG_ERANGE);
    assert_int_equal(umg__gen_json_member(doc, "c", &v), UMG_ENOENT);
    assert_int_equal(umg__gen_json_member(doc, "b", &v), UMG_OK);
    assert_int_equal(umg__gen_json_member(v, "c", &cur), UMG_OK);
    int n = 0;
    while (umg__gen_json_next(&cur, &el) == UMG_OK) {
        n++;
    }
    assert_int_equal(n, 2);
    cur = sl("[]");
    assert_int_equal(umg__gen_json_next(&cur, &el), UMG_ENOENT);
    cur = sl("[1 2]");
    assert_int_equal(umg__gen_json_next(&cur, &el), UMG_EPARSE);
    assert_int_equal(umg__gen_json_member(sl("{\"a\":}"), "a", &v), UMG_EPARSE);
    assert_int_equal(umg__gen_json_member(sl("[1]"), "a", &v), UMG_EPARSE);
    assert_int_equal(umg__gen_json_member(sl("{\"a\":\"unterminated}"), "a", &v), UMG_EPARSE);
    assert_int_equal(umg__gen_json_int(sl("99999999999999999999"), &i), UMG_ERANGE);
    assert_int_equal(umg__gen_json_int(sl("1.5"), &i), UMG_EINVAL);
    assert_int_equal(umg__gen_json_string(sl("\"\\ud800\""), s, sizeof(s)), UMG_EINVAL);
    assert_int_equal(umg__gen_json_string(sl("12"), s, sizeof(s)), UMG_EINVAL);
}

static void test_answers(void **state)
{
    (void)state;
    const char *body = "{\"events\":[{\"type\":\"session\"},{\"type\":\"bad\"},{},{}]}";
    const char *ans = "{\"accepted\":2,\"duplicates\":1,\"rejected\":[{\"index\":1,\"code\":\"invalid_value\","
                      "\"field\":\"type\",\"message\":\"unknown type\"}]}\n";
    umg__gen_result_t r = {0};
    int budget = 1;
    assert_int_equal(umg__gen_answer_parse(ans, strlen(ans), body, strlen(body), 4, &r, &budget), UMG_OK);
    assert_int_equal(r.accepted, 2);
    assert_int_equal(r.duplicates, 1);
    assert_int_equal(r.rejected, 1);
    assert_int_equal(budget, 0);
    /* Counts that do not add up to the batch are never taken silently. */
    assert_int_equal(umg__gen_answer_parse(ans, strlen(ans), body, strlen(body), 5, &r, &budget), UMG_EPARSE);
    const char *err = "{\"error\":{\"code\":\"invalid_json\",\"message\":\"x\"}}";
    assert_int_equal(umg__gen_answer_parse(err, strlen(err), body, strlen(body), 4, &r, &budget), UMG_EPARSE);
    assert_int_equal(umg__gen_retry_after_ms("3", 1, 1000), 3000);
    assert_int_equal(umg__gen_retry_after_ms(" 0", 2, 1000), 0);
    assert_int_equal(umg__gen_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", 29, 1000), 1000);
    assert_int_equal(umg__gen_retry_after_ms("99999", 5, 1000), 300000);
}

/* ------------------------------------------------------------ fraud */

#define FRAUD_DEVICES 2000

static umg_gen_opts_t fraud_opts(umg_gen_platform_t pf, int64_t seed)
{
    umg_gen_opts_t o = opts(pf, FRAUD_DEVICES, 14, seed);
    o.fraud_pct = 10;
    return o;
}

/* --fraud is deterministic, counted alike without JSON, and leaves every honest item as it was;
 * without it the output is byte for byte what it was before fraud existed (the hash is pinned). */
static void test_fraud_deterministic(void **state)
{
    (void)state;
    umg_gen_opts_t o = fraud_opts(UMG_GEN_ANDROID, 3), plain = o;
    plain.fraud_pct = 0;
    umg_gen_stats_t a, b, c, p;
    uint64_t h1 = hash_run(&o, &a), h2 = hash_run(&o, &b);
    assert_true(h1 == h2);
    assert_memory_equal(&a, &b, sizeof(a));
    assert_int_equal(umg_gen_count(&o, &c), UMG_OK);
    assert_memory_equal(&a, &c, sizeof(a));
    uint64_t hp = hash_run(&plain, &p);
    assert_true(hp != h1 && a.fraud_items > 0 && p.fraud_items == 0);
    assert_true(a.items == p.items + a.fraud_items);
    o.seed = 4;
    assert_true(hash_run(&o, &c) != h1);
    o.seed = 3;
    uint64_t n1, n2;
    assert_true(hash_items(&o, &c, 1, &n1) == hash_items(&plain, &c, 1, &n2));
    assert_true(n1 == n2 && n1 == p.items);
    /* The population and the honest counts do not move. */
    assert_int_equal(a.installs, p.installs);
    assert_memory_equal(a.installs_by_match, p.installs_by_match, sizeof(p.installs_by_match));
    /* The bytes without --fraud, as they were before it existed (update on purpose only). */
    umg_gen_opts_t pin = opts(UMG_GEN_ANDROID, 200, 3, 1);
    if (hash_run(&pin, &p) != PINNED_HASH) {
        fail_msg("honest output changed: hash %016llx", (unsigned long long)hash_run(&pin, &p));
    }
    /* Kinds can be picked; a bad list or too much fraud is refused. */
    uint32_t mask;
    assert_int_equal(umg_gen_fraud_kinds_parse("flood,bot", &mask), UMG_OK);
    assert_int_equal(mask, (1u << UMG_GEN_FRAUD_FLOOD) | (1u << UMG_GEN_FRAUD_BOT));
    assert_int_equal(umg_gen_fraud_kinds_parse("flood,robot", &mask), UMG_EINVAL);
    assert_int_equal(umg_gen_fraud_kinds_parse("", &mask), UMG_EINVAL);
    o.fraud_kinds = mask;
    assert_int_equal(umg_gen_count(&o, &c), UMG_OK);
    for (int k = 1; k < UMG_GEN_FRAUD_KINDS; k++) {
        int on = k == UMG_GEN_FRAUD_FLOOD || k == UMG_GEN_FRAUD_BOT;
        assert_true(on ? c.fraud_installs[k] > 0 : c.fraud_installs[k] == 0 && c.fraud_clicks[k] == 0);
    }
    umg_gen_t *g;
    o.fraud_kinds = 1; /* bit 0 is no kind */
    assert_int_equal(umg_gen_new(&o, &g), UMG_EINVAL);
    o = opts(UMG_GEN_ANDROID, 20000000, 14, 1);
    o.fraud_pct = 10;
    assert_int_equal(umg_gen_new(&o, &g), UMG_EINVAL);
}

/* What the fraud walk sees. */
typedef struct fitem_s {
    uint64_t key; /* device id or IP hash */
    int64_t ts;
} fitem_t;

typedef struct fwalk_s {
    uint64_t installs[UMG_GEN_FRAUD_KINDS], clicks[UMG_GEN_FRAUD_KINDS];
    uint64_t inj_n, inj_referrer, spoofs[UMG_GEN_SPOOF_KINDS];
    int64_t inj_min, inj_max;
    struct {
        uint64_t dev;
        int64_t click_ts;
    } inj[4096];
    fitem_t *flood_dev, *flood_ip;
    size_t nflood_dev, nflood_ip;
    struct {
        uint64_t ip, ua;
        int64_t first, last;
        uint64_t n, ids, in_day, in_hour; /* in_*: installs before this one in its UTC day, clock hour */
    } farm[64];
    int nfarm, farm_straddles; /* farms whose installs span two UTC days */
    /* click_flooding's figures per source/site (by name) and UTC day from fday0: clicks, installs */
    struct {
        uint64_t cid;
        int site;
    } * fclick;
    size_t nfclick;
    uint64_t fsite[4];
    int nfsite, fsite_label[4];
    uint32_t ftally[4][64][2];
    int64_t fday0;
    uint64_t fseen, funseen; /* flood installs the rule sees when they arrive, and not */
    uint64_t dc_v4, dc_v6;
    uint64_t links; /* bot clicks through the click link */
    int ios;
} fwalk_t;

static int fitem_cmp(const void *a, const void *b)
{
    const fitem_t *x = a, *y = b;
    return x->key != y->key ? (x->key < y->key ? -1 : 1) : x->ts < y->ts ? -1 : x->ts > y->ts;
}

/* The most items of one key within one clock period. */
static uint64_t most_per_period(fitem_t *v, size_t n, int64_t period)
{
    uint64_t most = 0, run = 0;
    qsort(v, n, sizeof(*v), fitem_cmp);
    for (size_t i = 0; i < n; i++) {
        int same = i > 0 && v[i].key == v[i - 1].key && v[i].ts / period == v[i - 1].ts / period;
        run = same ? run + 1 : 1;
        most = UMG_MAX(most, run);
    }
    return most;
}

static int in_datacenter(umg_slice_t ip, int *v6)
{
    char buf[64];
    unsigned char a[16];
    snprintf(buf, sizeof(buf), "%.*s", (int)ip.len, ip.ptr);
    if (inet_pton(AF_INET, buf, a) == 1) {
        *v6 = 0;
        return a[0] == 203 && a[1] == 0 && a[2] == 113;
    }
    static const unsigned char pfx[6] = {0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff};
    *v6 = 1;
    return inet_pton(AF_INET6, buf, a) == 1 && memcmp(a, pfx, 6) == 0;
}

static void fwalk_touch(fwalk_t *w, const umg_gen_item_t *it, const umg_touch_t *t)
{
    w->clicks[it->fraud]++;
    assert_int_equal(t->type, UMG_TOUCH_CLICK);
    assert_int_equal(t->click_id.len, 32);
    assert_true(it->reason != NULL && t->ip.len > 0);
    int v6;
    umg_slice_t adid = w->ios ? t->idfa : t->gaid;
    switch (it->fraud) {
    case UMG_GEN_FRAUD_INJECTION: {
        size_t i = it->device & 4095;
        while (w->inj[i].dev != 0) {
            i = (i + 1) & 4095;
        }
        w->inj[i].dev = it->device;
        w->inj[i].click_ts = it->ts_ms;
        assert_true(adid.len == 36 && umg_slice_eq(t->source, "fraudnet"));
        break;
    }
    case UMG_GEN_FRAUD_FLOOD: {
        assert_true(umg_slice_eq(t->source, "clickblast"));
        uint64_t site = umg_hash64(t->site.ptr, t->site.len, 5);
        int j = 0;
        while (j < w->nfsite && w->fsite[j] != site) {
            j++;
        }
        if (j == w->nfsite) {
            assert_true(w->nfsite < 4);
            w->fsite[w->nfsite++] = site;
        }
        int64_t day = it->ts_ms / DAY_MS - w->fday0;
        assert_true(day >= 0 && day < 64);
        w->ftally[j][day][0]++;
        w->fclick[w->nfclick].cid = umg_hash64(t->click_id.ptr, t->click_id.len, 6);
        w->fclick[w->nfclick++].site = j;
        if (adid.len > 0) {
            w->flood_dev[w->nflood_dev++] = (fitem_t){umg_hash64(adid.ptr, adid.len, 1), it->ts_ms};
        }
        w->flood_ip[w->nflood_ip++] = (fitem_t){umg_hash64(t->ip.ptr, t->ip.len, 2), it->ts_ms};
        break;
    }
    case UMG_GEN_FRAUD_DATACENTER: assert_true(in_datacenter(t->ip, &v6)); break;
    case UMG_GEN_FRAUD_BOT: {
        int bot = umg_slice_eq(t->user_agent, "curl/8.1.2") || umg_slice_eq(t->user_agent, "python-requests/2.31.0") ||
                  umg_slice_eq(t->user_agent, "Go-http-client/1.1") || umg_slice_eq(t->user_agent, "Wget/1.21.4") ||
                  memmem(t->user_agent.ptr, t->user_agent.len, "HeadlessChrome", 14) != NULL ||
                  memmem(t->user_agent.ptr, t->user_agent.len, "Scrapy", 6) != NULL;
        assert_true(bot);
        break;
    }
    default: break;
    }
}

static void fwalk_install(fwalk_t *w, const umg_gen_item_t *it, const umg_event_t *ev)
{
    w->installs[it->fraud]++;
    assert_true(it->reason != NULL && strlen(it->claim) == 32 && it->fraud_source != NULL);
    w->spoofs[it->spoof]++;
    assert_true((it->spoof != UMG_GEN_SPOOF_NONE) == (it->fraud == UMG_GEN_FRAUD_SPOOF));
    assert_true((it->flood_site != 0) == (it->fraud == UMG_GEN_FRAUD_FLOOD));
    int v6;
    if (it->fraud == UMG_GEN_FRAUD_INJECTION) {
        /* The injected click 1-9 s before; half of the Android installs have a Play referrer
         * that began before the click. */
        size_t i = it->device & 4095;
        while (w->inj[i].dev != it->device) {
            assert_true(w->inj[i].dev != 0);
            i = (i + 1) & 4095;
        }
        int64_t d = it->ts_ms - w->inj[i].click_ts;
        w->inj_min = UMG_MIN(w->inj_min, d);
        w->inj_max = UMG_MAX(w->inj_max, d);
        w->inj_n++;
        assert_int_equal(it->match, UMG_GEN_MATCH_ORGANIC);
        if (ev->has_referrer) {
            w->inj_referrer++;
            assert_true(ev->referrer_install_begin_ts_us < w->inj[i].click_ts * 1000);
        }
    } else if (it->fraud == UMG_GEN_FRAUD_FLOOD) {
        /* click_flooding judges the site of the click that wins: seen when the 7 UTC days to this one hold 20
         * installs before it and at least 100 clicks per install (all the flood's installs come a day or more
         * after their click) */
        uint64_t cid = umg_hash64(it->claim, strlen(it->claim), 6);
        size_t c = 0;
        while (c < w->nfclick && w->fclick[c].cid != cid) {
            c++;
        }
        assert_true(c < w->nfclick);
        int j = w->fclick[c].site;
        int64_t day = it->ts_ms / DAY_MS - w->fday0;
        uint64_t clicks = 0, installs = 0;
        for (int64_t d = day - 6; d <= day; d++) {
            assert_true(d >= 0 && d < 64);
            clicks += w->ftally[j][d][0];
            installs += w->ftally[j][d][1];
        }
        int seen = installs >= 20 && installs * 100 <= clicks;
        if (it->detectable != seen) {
            fail_msg("flood: install at %lld on site %d (%llu installs, %llu clicks in the window) labelled "
                     "detectable=%d",
                     (long long)it->ts_ms, j, (unsigned long long)installs, (unsigned long long)clicks, it->detectable);
        }
        /* one label per site, and not another's */
        w->fsite_label[j] = w->fsite_label[j] ? w->fsite_label[j] : it->flood_site;
        assert_int_equal(it->flood_site, w->fsite_label[j]);
        for (int x = 0; x < w->nfsite; x++) {
            assert_true(x == j || w->fsite_label[x] != it->flood_site);
        }
        w->ftally[j][day][1]++;
        *(seen ? &w->fseen : &w->funseen) += 1;
    } else if (it->fraud == UMG_GEN_FRAUD_DATACENTER) {
        assert_true(in_datacenter(ev->ip, &v6));
        *(v6 ? &w->dc_v6 : &w->dc_v4) += 1;
    } else if (it->fraud == UMG_GEN_FRAUD_FARM) {
        uint64_t ip = umg_hash64(ev->ip.ptr, ev->ip.len, 3), ua = umg_hash64(ev->user_agent.ptr, ev->user_agent.len, 4);
        int f = 0;
        while (f < w->nfarm && w->farm[f].ip != ip) {
            f++;
        }
        if (f == w->nfarm) {
            assert_true(w->nfarm < 64);
            w->farm[w->nfarm++].ip = ip;
            w->farm[f].ua = ua;
            w->farm[f].first = it->ts_ms;
        } else {
            /* device_farm counts per UTC day (IP + User-Agent) and clock hour (IP), from zero in each. */
            assert_true(it->ts_ms >= w->farm[f].last);
            int new_day = it->ts_ms / DAY_MS != w->farm[f].last / DAY_MS;
            w->farm_straddles += new_day;
            w->farm[f].in_day = new_day ? 0 : w->farm[f].in_day + 1;
            w->farm[f].in_hour = it->ts_ms / HOUR_MS != w->farm[f].last / HOUR_MS ? 0 : w->farm[f].in_hour + 1;
        }
        assert_true(w->farm[f].ua == ua); /* one User-Agent per farm */
        if (it->detectable != (w->farm[f].in_day >= 10 || w->farm[f].in_hour >= 20)) {
            fail_msg("farm %d: install %llu (%llu in its day, %llu in its hour) labelled detectable=%d", f,
                     (unsigned long long)w->farm[f].n, (unsigned long long)w->farm[f].in_day,
                     (unsigned long long)w->farm[f].in_hour, it->detectable);
        }
        w->farm[f].last = it->ts_ms;
        w->farm[f].n++;
        w->farm[f].ids += (w->ios ? ev->device.idfa : ev->device.gaid).len == 36;
    }
}

static void fwalk_free(fwalk_t *w)
{
    free(w->flood_dev);
    free(w->flood_ip);
    free(w->fclick);
}

static void fraud_walk(fwalk_t *w, const umg_gen_opts_t *o)
{
    umg_gen_stats_t pre;
    umg_buf_t body = {0};
    assert_int_equal(umg_gen_count(o, &pre), UMG_OK);
    memset(w, 0, sizeof(*w));
    w->ios = o->platform == UMG_GEN_IOS;
    w->inj_min = INT64_MAX;
    w->flood_dev = calloc(pre.clicks, sizeof(fitem_t));
    w->flood_ip = calloc(pre.clicks, sizeof(fitem_t));
    w->fclick = calloc(pre.clicks, sizeof(*w->fclick));
    assert_true(w->flood_dev != NULL && w->flood_ip != NULL && w->fclick != NULL);
    w->fday0 = (o->now_ms - o->days * DAY_MS) / DAY_MS - 7;
    umg_gen_t *g;
    umg_gen_item_t it;
    int64_t prev = 0;
    assert_int_equal(umg_gen_new(o, &g), UMG_OK);
    while (umg_gen_next(g, &it) == UMG_OK) {
        assert_true(it.sent_ms >= prev && it.ts_ms <= o->now_ms && it.ts_ms >= o->now_ms - o->days * DAY_MS);
        prev = it.sent_ms;
        if (it.fraud == UMG_GEN_HONEST) {
            assert_true(it.reason == NULL && it.spoof == UMG_GEN_SPOOF_NONE);
            continue;
        }
        seen_t s = {0};
        if (it.kind == UMG_GEN_LINK) {
            /* A click link's query: the bot source, a click_id, an advertising id; no User-Agent to send. */
            char q[512];
            snprintf(q, sizeof(q), "%.*s", (int)it.json.len, it.json.ptr);
            const char *cid = strstr(q, "&click_id=");
            assert_true(strncmp(q, "source=trafficbot&", 18) == 0 && cid != NULL && strlen(cid) > 10 + 32);
            assert_true(strstr(q, w->ios ? "&idfa=" : "&gaid=") != NULL && strchr(q, ' ') == NULL);
            assert_true(it.fraud == UMG_GEN_FRAUD_BOT && it.type == UMG_GEN_CLICK && it.detectable);
            w->clicks[it.fraud]++;
            w->links++;
            continue;
        }
        if (it.kind == UMG_GEN_TOUCH) {
            decode_touch(o->now_ms, &it, &body, &s);
            fwalk_touch(w, &it, &s.t);
            continue;
        }
        decode_event(o->now_ms, &it, &body, &s);
        if (it.type == UMG_GEN_INSTALL) {
            fwalk_install(w, &it, &s.ev);
        }
    }
    umg_gen_stats_t st;
    umg_gen_stats(g, &st);
    umg_gen_free(g);
    umg_buf_free(&body);
    for (int k = 1; k < UMG_GEN_FRAUD_KINDS; k++) {
        assert_int_equal(w->installs[k], st.fraud_installs[k]);
        assert_int_equal(w->clicks[k], st.fraud_clicks[k]);
        int chosen = o->fraud_kinds == 0 || (o->fraud_kinds & (UINT32_C(1) << k)) != 0;
        assert_true(chosen ? w->installs[k] > 0 && w->clicks[k] > 0 : w->installs[k] == 0);
    }
}

static void test_fraud_items(void **state)
{
    (void)state;
    fwalk_t *w = calloc(1, sizeof(*w));
    umg_gen_opts_t o = fraud_opts(UMG_GEN_ANDROID, 5);
    fraud_walk(w, &o);
    /* About 10% of the devices, split 30/20/15/10/15/10 (farms come whole: 30-60 installs each). */
    assert_int_equal(w->installs[UMG_GEN_FRAUD_INJECTION], 60);
    assert_int_equal(w->installs[UMG_GEN_FRAUD_FLOOD], 40);
    assert_int_equal(w->installs[UMG_GEN_FRAUD_DATACENTER], 30);
    /* Injection: the click 1-9 s before the install; half with a referrer that began earlier. */
    if (!(w->inj_n == 60 && w->inj_min >= 1000 && w->inj_max <= 9000 && w->inj_referrer == 30)) {
        fail_msg("injection: %llu, %lld..%lld ms, %llu with a referrer", (unsigned long long)w->inj_n,
                 (long long)w->inj_min, (long long)w->inj_max, (unsigned long long)w->inj_referrer);
    }
    /* Flood: far above the click_spam thresholds (10 a device an hour, 30 an IP a minute), and a
     * click-to-install rate under 1%. */
    uint64_t per_dev = most_per_period(w->flood_dev, w->nflood_dev, 3600000);
    uint64_t per_ip = most_per_period(w->flood_ip, w->nflood_ip, 60000);
    if (per_dev <= 20 || per_ip <= 60) {
        fail_msg("flood: at most %llu clicks of a device in an hour, %llu of an IP in a minute",
                 (unsigned long long)per_dev, (unsigned long long)per_ip);
    }
    assert_true(w->installs[UMG_GEN_FRAUD_FLOOD] * 100 < w->clicks[UMG_GEN_FRAUD_FLOOD]);
    print_message("flood: %llu installs seen when they arrive, %llu not\n", (unsigned long long)w->fseen,
                  (unsigned long long)w->funseen);
    /* Farms: one IP and User-Agent, 30-60 installs under fresh ids within the hour. */
    assert_true(w->nfarm >= 1);
    for (int f = 0; f < w->nfarm; f++) {
        if (!(w->farm[f].n > 20 && w->farm[f].n <= 60 && w->farm[f].last - w->farm[f].first < HOUR_MS &&
              w->farm[f].ids == w->farm[f].n)) {
            fail_msg("farm %d: %llu installs in %lld ms", f, (unsigned long long)w->farm[f].n,
                     (long long)(w->farm[f].last - w->farm[f].first));
        }
    }
    /* Data centres: IPv4 and IPv6 inside the listed ranges (checked per item above). */
    assert_true(w->dc_v4 > 0 && w->dc_v6 > 0 && w->dc_v4 + w->dc_v6 == 30);
    assert_true(w->links > 0 && w->links <= 20);
    assert_true(w->spoofs[UMG_GEN_SPOOF_UNSIGNED] > 0 && w->spoofs[UMG_GEN_SPOOF_BAD] > 0 &&
                w->spoofs[UMG_GEN_SPOOF_STALE] > 0);
    assert_string_equal(umg_gen_datacenter_cidrs[0], "203.0.113.0/24");
    assert_string_equal(umg_gen_datacenter_cidrs[1], "2001:db8:ffff::/48");
    fwalk_free(w);
    /* iOS: no Play referrer, the rest alike. */
    o = fraud_opts(UMG_GEN_IOS, 6);
    fraud_walk(w, &o);
    assert_int_equal(w->inj_referrer, 0);
    assert_true(w->inj_min >= 1000 && w->inj_max <= 9000);
    fwalk_free(w);
    /* Farms at other times of day until one straddles midnight: its labels follow the rule's
     * windows there too (checked per install in the walk). */
    o = fraud_opts(UMG_GEN_ANDROID, 7);
    assert_int_equal(umg_gen_fraud_kinds_parse("farm", &o.fraud_kinds), UMG_OK);
    int straddles = 0;
    for (int shift = 0; shift < 200 && straddles == 0; shift++) {
        o.now_ms += 47 * 60000;
        fraud_walk(w, &o);
        straddles = w->farm_straddles;
        fwalk_free(w);
    }
    assert_true(straddles > 0);
    /* A flood alone, big enough for click_flooding to see some of its installs when they arrive: their labels
     * follow the rule's window at other times of day too (checked per install in the walk). */
    o = fraud_opts(UMG_GEN_ANDROID, 8);
    assert_int_equal(umg_gen_fraud_kinds_parse("flood", &o.fraud_kinds), UMG_OK);
    for (int shift = 0; shift < 4; shift++) {
        o.now_ms += 5 * HOUR_MS + 13 * 60000;
        fraud_walk(w, &o);
        if (w->fseen == 0 || w->funseen == 0) {
            fail_msg("flood at +%d: %llu installs seen when they arrive, %llu not", shift, (unsigned long long)w->fseen,
                     (unsigned long long)w->funseen);
        }
        fwalk_free(w);
    }
    free(w);
}

/* `unmogrowp gen` with argv (NULL-terminated), its summary line to /dev/null: its exit status. */
static int gen_cli_quiet(char **argv)
{
    int argc = 0;
    while (argv[argc] != NULL) {
        argc++;
    }
    FILE *saved = stdout;
    stdout = fopen("/dev/null", "w");
    int rc = umg_gen_cli(argc, argv);
    fclose(stdout);
    stdout = saved;
    return rc;
}

/* The labels file has a row per install and click, and the counts of the summary. */
static void test_fraud_labels(void **state)
{
    (void)state;
    char out[] = "/tmp/umg-test-gen-XXXXXX", labels[64], ips[64];
    int fd = mkstemp(out);
    assert_true(fd >= 0);
    close(fd);
    snprintf(labels, sizeof(labels), "%s.csv", out);
    snprintf(ips, sizeof(ips), "%s.ips", out);
    char *argv[] = {"gen",
                    "--out",
                    out,
                    "--devices",
                    "600",
                    "--days",
                    "10",
                    "--now",
                    "1795773600000",
                    "--fraud",
                    "10",
                    "--seed",
                    "9",
                    "--quiet",
                    "--reinstall",
                    "20",
                    "--fraud-labels",
                    labels,
                    "--fraud-ip-list",
                    ips,
                    NULL};
    assert_int_equal(gen_cli_quiet(argv), 0);
    umg_gen_opts_t o = opts(UMG_GEN_ANDROID, 600, 10, 9);
    o.fraud_pct = 10;
    o.reinstall_pct = 20;
    umg_gen_stats_t st;
    assert_int_equal(umg_gen_count(&o, &st), UMG_OK);
    /* Click links need a daemon: a request file leaves them out, and their labels. */
    uint64_t links = 0;
    umg_gen_t *g;
    umg_gen_item_t it;
    assert_int_equal(umg_gen_new(&o, &g), UMG_OK);
    while (umg_gen_next(g, &it) == UMG_OK) {
        links += it.kind == UMG_GEN_LINK;
    }
    umg_gen_free(g);
    assert_true(links > 0);
    st.fraud_clicks[UMG_GEN_FRAUD_BOT] -= links;
    st.clicks -= links;
    uint64_t rows[2][UMG_GEN_FRAUD_KINDS] = {{0}}, detectable = 0, claims = 0, n = 0;
    char line[512];
    FILE *f = fopen(labels, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof(line), f));
    assert_string_equal(line, "kind,id,label,fraud_type,expected_reason,day,detectable,source,claim_click_id\n");
    while (fgets(line, sizeof(line), f) != NULL) {
        char *field[9], *p = line;
        int nf = 0;
        line[strcspn(line, "\n")] = '\0';
        for (char *c = p;; c++) { /* split at every comma: fields may be empty */
            if (*c == ',' || *c == '\0') {
                int end = *c == '\0';
                *c = '\0';
                field[nf++] = p;
                p = c + 1;
                if (end || nf == 9) {
                    break;
                }
            }
        }
        assert_int_equal(nf, 9);
        int install = strcmp(field[0], "install") == 0, k = 0;
        while (k < UMG_GEN_FRAUD_KINDS && strcmp(field[3], umg_gen_fraud_name((umg_gen_fraud_t)k)) != 0) {
            k++;
        }
        assert_true(k < UMG_GEN_FRAUD_KINDS);
        assert_int_equal(strlen(field[1]), install ? 36 : 32);
        assert_int_equal(field[2][0] - '0', k != 0);
        assert_true(k == 0 ? field[4][0] == '\0' && field[6][0] == '\0' : field[4][0] != '\0');
        assert_true(strlen(field[5]) == 10 && strncmp(field[5], "2026-11-", 8) == 0);
        rows[install][k]++;
        detectable += field[6][0] == '1';
        /* too small a flood for click_flooding (20 installs a site in 7 days): its rows wait for the end, unseen */
        assert_true(!install || k != UMG_GEN_FRAUD_FLOOD || field[6][0] == '0');
        claims += install && k != 0 && strlen(field[8]) == 32;
        n++;
    }
    fclose(f);
    assert_int_equal(rows[1][0], st.installs + st.reinstalls);
    uint64_t fclicks = 0;
    for (int k = 1; k < UMG_GEN_FRAUD_KINDS; k++) {
        assert_int_equal(rows[1][k], st.fraud_installs[k]);
        assert_int_equal(rows[0][k], st.fraud_clicks[k]);
        fclicks += st.fraud_clicks[k];
        claims -= st.fraud_installs[k];
    }
    assert_int_equal(rows[0][0], st.clicks - fclicks);
    assert_int_equal(claims, 0);
    assert_true(detectable > 0);
    f = fopen(ips, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof(line), f));
    assert_int_equal(line[0], '#');
    assert_non_null(fgets(line, sizeof(line), f));
    assert_string_equal(line, "203.0.113.0/24\n");
    assert_non_null(fgets(line, sizeof(line), f));
    assert_string_equal(line, "2001:db8:ffff::/48\n");
    fclose(f);
    unlink(out);
    unlink(labels);
    unlink(ips);
}

/* A flood install that click_flooding cannot see when it arrives is labelled detectable when a later install of its
 * site is seen (the rule flags the earlier ones then, 31 days back at most), and 0 when none is (test_fraud_labels:
 * a flood too small to be seen). */
static void test_flood_labels_after_the_fact(void **state)
{
    (void)state;
    char out[] = "/tmp/umg-test-gen-XXXXXX", labels[64];
    int fd = mkstemp(out);
    assert_true(fd >= 0);
    close(fd);
    snprintf(labels, sizeof(labels), "%s.csv", out);
    char *argv[] = {"gen",
                    "--out",
                    out,
                    "--devices",
                    "2000",
                    "--days",
                    "14",
                    "--now",
                    "1795773600000",
                    "--fraud",
                    "10",
                    "--fraud-kinds",
                    "flood",
                    "--seed",
                    "8",
                    "--quiet",
                    "--fraud-labels",
                    labels,
                    NULL};
    assert_int_equal(gen_cli_quiet(argv), 0);
    /* The same run's flood installs: id, site, time, seen on arrival. */
    umg_gen_opts_t o = opts(UMG_GEN_ANDROID, 2000, 14, 8);
    o.now_ms = 1795773600000;
    o.fraud_pct = 10;
    assert_int_equal(umg_gen_fraud_kinds_parse("flood", &o.fraud_kinds), UMG_OK);
    struct {
        char id[37];
        int site, seen, want;
        int64_t ts;
    } in[512];
    size_t n = 0;
    umg_gen_t *g;
    umg_gen_item_t it;
    assert_int_equal(umg_gen_new(&o, &g), UMG_OK);
    while (umg_gen_next(g, &it) == UMG_OK) {
        if (it.flood_site == 0) {
            continue;
        }
        const char *id = memmem(it.json.ptr, it.json.len, "\"event_id\":\"", 12);
        assert_true(id != NULL && n < UMG_ARRAY_SIZE(in));
        snprintf(in[n].id, sizeof(in[n].id), "%.36s", id + 12);
        in[n].site = it.flood_site;
        in[n].seen = it.detectable;
        in[n].ts = it.ts_ms;
        n++;
    }
    umg_gen_free(g);
    size_t later = 0, never = 0;
    for (size_t i = 0; i < n; i++) {
        in[i].want = in[i].seen;
        for (size_t j = i + 1; j < n && !in[i].want; j++) {
            in[i].want = in[j].site == in[i].site && in[j].seen && in[i].ts >= in[j].ts - 31 * DAY_MS;
        }
        later += in[i].want && !in[i].seen;
        never += !in[i].want;
    }
    if (later == 0) {
        fail_msg("%zu flood installs: %zu detectable after the fact, %zu never", n, later, never);
    }
    char line[512];
    size_t rows = 0;
    FILE *f = fopen(labels, "r");
    assert_non_null(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "install,", 8) != 0 || strstr(line, ",flood,") == NULL) {
            continue;
        }
        size_t i = 0;
        while (i < n && strncmp(line + 8, in[i].id, 36) != 0) {
            i++;
        }
        assert_true(i < n);
        const char *d = line;
        for (int comma = 0; comma < 6; comma++) {
            d = strchr(d, ',') + 1;
        }
        if (*d - '0' != in[i].want) {
            fail_msg("flood install %s labelled %c, want %d: %s", in[i].id, *d, in[i].want, line);
        }
        rows++;
    }
    fclose(f);
    assert_int_equal(rows, n);
    unlink(out);
    unlink(labels);
}

/* X-Signature: HMAC-SHA256(secret, timestamp "." body), against Python's hmac:
 * hmac.new(b"as_4f9c2b7e1d3a", b'1795773600.{"events":[{"type":"install"}]}', hashlib.sha256).hexdigest() */
static void test_signature(void **state)
{
    (void)state;
    char sig[65];
    const char *body = "{\"events\":[{\"type\":\"install\"}]}";
    assert_int_equal(umg__gen_sign("as_4f9c2b7e1d3a", 1795773600, body, strlen(body), sig), UMG_OK);
    assert_string_equal(sig, "2fa02e2437478b7553e696ac8d01dbbddb36d3a97f4cbfc9dabb5659f5ba4e3b");
    assert_int_equal(umg__gen_sign("key", 0, "", 0, sig), UMG_OK);
    assert_string_equal(sig, "85841b4efc3cd7776c3c8f9b7cca9e281c550e5d19889d78e9e669c6337f000d");
    assert_int_equal(umg__gen_sign("", 0, "", 0, sig), UMG_EINVAL);
    assert_string_equal(umg_gen_spoof_name(UMG_GEN_SPOOF_STALE), "stale_timestamp");
    assert_string_equal(umg_gen_fraud_name(UMG_GEN_FRAUD_FARM), "farm");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_android_items_valid),
        cmocka_unit_test(test_ios_items_valid),
        cmocka_unit_test(test_mix),
        cmocka_unit_test(test_reengagement_currencies),
        cmocka_unit_test(test_late_and_reinstalls),
        cmocka_unit_test(test_install_delays),
        cmocka_unit_test(test_retention),
        cmocka_unit_test(test_bounded_memory),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_json_reader),
        cmocka_unit_test(test_answers),
        cmocka_unit_test(test_fraud_deterministic),
        cmocka_unit_test(test_fraud_items),
        cmocka_unit_test(test_fraud_labels),
        cmocka_unit_test(test_flood_labels_after_the_fact),
        cmocka_unit_test(test_signature),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
