/*
 * test_attr.c - the attribution core and the multi-touch models.
 *
 * The install rules are stated as data: each scenario is a table of touches
 * (type, time relative to the install, how they relate to the installing
 * device), the install, and the expected outcome, match class and winner.
 * Reinstall, re-engagement and implicit-install rules follow the same shape
 * over a sequence of steps. Property tests cover credit sums, model
 * invariants and replay equality; Markov and Shapley are checked against
 * hand-computed cases and worked examples from the literature.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>

#include "umg_attr.h"

/* The scenario tables leave trailing fields to their zero default, as the
 * project's meson.build allows everywhere (-Wno-missing-field-initializers). */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#define S_ INT64_C(1000000)
#define M_ (60 * S_)
#define H_ (3600 * S_)
#define D_ (86400 * S_)
#define T0 INT64_C(1767225600000000) /* 2026-01-01T00:00:00Z */
#define APP 7u

static const char *const IDFA_A = "6d92078a-8246-4ba4-ae5b-76104861e7dc";
static const char *const IDFA_A_UPPER = "6D92078A-8246-4BA4-AE5B-76104861E7DC";
static const char *const IDFA_B = "1e1c2f2b-3f4a-4e5b-8c6d-7e8f90a1b2c3";
static const char *const IDFA_ZERO = "00000000-0000-0000-0000-000000000000";

static umg_slice_t sl(const char *s)
{
    return umg_slice(s, s ? strlen(s) : 0);
}

/* ------------------------------------------------------------ scenario data */

/* How a touch relates to the installing device. */
enum {
    REL_NONE = 0,     /* shares nothing */
    REL_IDFA,         /* the device's IDFA */
    REL_IDFA_UPPER,   /* the same IDFA in upper case */
    REL_IDFV_SAME,    /* the IDFA's value, but sent as an IDFV */
    REL_OTHER_DEVICE, /* another device's IDFA */
    REL_ZERO_IDFA,    /* the opted-out all-zero IDFA */
    REL_FP,           /* same IP, platform, OS version and model */
    REL_FP_NOMODEL,   /* same IP, platform, OS version; no model (a Safari UA) */
    REL_FP_MODEL2,    /* same IP and OS, another model */
    REL_FP_OS2,       /* same IP and model, another OS version */
    REL_ZERO_FP,      /* the all-zero IDFA plus the same fingerprint */
    REL_REFERRER,     /* only the click_id of the install referrer */
    REL_REFERRER_ID,  /* the referrer click_id and the IDFA */
};

/* How the install presents itself. */
enum { INS_IDFA = 0, INS_ZERO_IDFA, INS_NO_REFERRER };

typedef struct touch_spec_s {
    int type;   /* UMG_ATTR_CLICK / UMG_ATTR_IMPRESSION; 0 ends the list */
    int64_t dt; /* touch time minus install time */
    int rel;
    uint32_t lookback_s;
    uint8_t flags;
    uint64_t id;  /* touch_id; 0 = 100 + index */
    uint32_t app; /* 0 = APP */
} touch_spec_t;

typedef struct scenario_s {
    const char *name;
    touch_spec_t t[6];
    int install;            /* INS_* */
    int64_t click_days;     /* 0 = default */
    int outcome;            /* expected */
    umg_attr_match_t match; /* expected */
    int winner;             /* index into t, -1 = organic */
    uint32_t n_candidates;  /* expected */
} scenario_t;

#define CLICK UMG_ATTR_CLICK
#define IMPR UMG_ATTR_IMPRESSION
#define FRAUD UMG_ATTR_TF_FRAUD
#define RT UMG_ATTR_TF_RETARGETING
#define INST UMG_ATTR_OUT_INSTALL
#define M_REF UMG_ATTR_MATCH_REFERRER
#define M_DEV UMG_ATTR_MATCH_DEVICE_ID
#define M_PROB UMG_ATTR_MATCH_PROBABILISTIC
#define M_IMP UMG_ATTR_MATCH_IMPRESSION
#define M_NONE UMG_ATTR_MATCH_NONE

static const scenario_t scenarios[] = {
    /* Rule 3: no candidate, organic. */
    {"no touches: organic", {{0}}, INS_IDFA, 0, INST, M_NONE, -1, 0},
    {"another device's click: organic", {{CLICK, -H_, REL_OTHER_DEVICE}}, INS_IDFA, 0, INST, M_NONE, -1, 0},
    {"click of another app: organic", {{CLICK, -H_, REL_IDFA, .app = 8}}, INS_IDFA, 0, INST, M_NONE, -1, 0},
    /* Rule 1: windows, both edges inclusive. */
    {"click at the install instant", {{CLICK, 0, REL_IDFA}}, INS_IDFA, 0, INST, M_DEV, 0, 1},
    {"click one second after the install", {{CLICK, S_, REL_IDFA}}, INS_IDFA, 0, INST, M_NONE, -1, 0},
    {"click exactly 7 days before", {{CLICK, -7 * D_, REL_IDFA}}, INS_IDFA, 0, INST, M_DEV, 0, 1},
    {"click 7 days and 1 second before", {{CLICK, -7 * D_ - S_, REL_IDFA}}, INS_IDFA, 0, INST, M_NONE, -1, 0},
    {"click_lookback_days=1: 1 day in", {{CLICK, -D_, REL_IDFA}}, INS_IDFA, 1, INST, M_DEV, 0, 1},
    {"click_lookback_days=1: 1 day 1 s out", {{CLICK, -D_ - S_, REL_IDFA}}, INS_IDFA, 1, INST, M_NONE, -1, 0},
    {"impression exactly 24 h before", {{IMPR, -24 * H_, REL_IDFA}}, INS_IDFA, 0, INST, M_IMP, 0, 1},
    {"impression 24 h 1 s before", {{IMPR, -24 * H_ - S_, REL_IDFA}}, INS_IDFA, 0, INST, M_NONE, -1, 0},
    {"probabilistic click exactly 24 h before", {{CLICK, -24 * H_, REL_FP}}, INS_IDFA, 0, INST, M_PROB, 0, 1},
    {"probabilistic click 24 h 1 s before (inside the click window)",
     {{CLICK, -24 * H_ - S_, REL_FP}},
     INS_IDFA,
     0,
     INST,
     M_NONE,
     -1,
     0},
    /* Per-touch lookback: 12 h exact, 45 d clamped to 30 d, 60 s clamped to 1 h, impression 48 h. */
    {"link lookback=12h: at 12 h", {{CLICK, -12 * H_, REL_IDFA, 12 * 3600}}, INS_IDFA, 0, INST, M_DEV, 0, 1},
    {"link lookback=12h: 12 h 1 s", {{CLICK, -12 * H_ - S_, REL_IDFA, 12 * 3600}}, INS_IDFA, 0, INST, M_NONE, -1, 0},
    {"link lookback=45d clamps to 30 d: at 30 d",
     {{CLICK, -30 * D_, REL_IDFA, 45 * 86400}},
     INS_IDFA,
     0,
     INST,
     M_DEV,
     0,
     1},
    {"link lookback=45d clamps to 30 d: 30 d 1 s",
     {{CLICK, -30 * D_ - S_, REL_IDFA, 45 * 86400}},
     INS_IDFA,
     0,
     INST,
     M_NONE,
     -1,
     0},
    {"link lookback=60s clamps to 1 h", {{CLICK, -H_, REL_IDFA, 60}}, INS_IDFA, 0, INST, M_DEV, 0, 1},
    {"link lookback=12h also bounds a probabilistic match",
     {{CLICK, -13 * H_, REL_FP, 12 * 3600}},
     INS_IDFA,
     0,
     INST,
     M_NONE,
     -1,
     0},
    {"impression lookback=48h", {{IMPR, -48 * H_, REL_IDFA, 48 * 3600}}, INS_IDFA, 0, INST, M_IMP, 0, 1},
    /* Rule 3: latest of the strongest class; ties by touch id. */
    {"latest click wins",
     {{CLICK, -3 * H_, REL_IDFA}, {CLICK, -H_, REL_IDFA}, {CLICK, -2 * H_, REL_IDFA}},
     INS_IDFA,
     0,
     INST,
     M_DEV,
     1,
     3},
    {"tie on time: larger touch id wins",
     {{CLICK, -H_, REL_IDFA, 0, 0, 11}, {CLICK, -H_, REL_IDFA, 0, 0, 10}},
     INS_IDFA,
     0,
     INST,
     M_DEV,
     0,
     2},
    {"tie on time, order swapped: same winner",
     {{CLICK, -H_, REL_IDFA, 0, 0, 10}, {CLICK, -H_, REL_IDFA, 0, 0, 11}},
     INS_IDFA,
     0,
     INST,
     M_DEV,
     1,
     2},
    {"click beats a later impression",
     {{CLICK, -5 * D_, REL_IDFA}, {IMPR, -M_, REL_IDFA}},
     INS_IDFA,
     0,
     INST,
     M_DEV,
     0,
     2},
    /* Rule 2: referrer > device id > probabilistic > device-id impression. */
    {"referrer beats a later device-id click",
     {{CLICK, -6 * D_, REL_REFERRER}, {CLICK, -M_, REL_IDFA}},
     INS_IDFA,
     0,
     INST,
     M_REF,
     0,
     2},
    {"referrer with the same id is one referrer match",
     {{CLICK, -H_, REL_REFERRER_ID}},
     INS_IDFA,
     0,
     INST,
     M_REF,
     0,
     1},
    {"no referrer in the install: the device id decides",
     {{CLICK, -6 * D_, REL_REFERRER_ID}, {CLICK, -M_, REL_IDFA}},
     INS_NO_REFERRER,
     0,
     INST,
     M_DEV,
     1,
     2},
    {"referrer click past its window", {{CLICK, -8 * D_, REL_REFERRER}}, INS_IDFA, 0, INST, M_NONE, -1, 0},
    {"device-id click beats a later probabilistic click",
     {{CLICK, -2 * D_, REL_IDFA}, {CLICK, -M_, REL_FP}},
     INS_IDFA,
     0,
     INST,
     M_DEV,
     0,
     2},
    {"probabilistic click beats a later device-id impression",
     {{CLICK, -2 * H_, REL_FP}, {IMPR, -H_, REL_IDFA}},
     INS_IDFA,
     0,
     INST,
     M_PROB,
     0,
     2},
    {"an impression never matches probabilistically", {{IMPR, -H_, REL_FP}}, INS_IDFA, 0, INST, M_NONE, -1, 0},
    {"probabilistic: model absent on one side still matches",
     {{CLICK, -H_, REL_FP_NOMODEL}},
     INS_IDFA,
     0,
     INST,
     M_PROB,
     0,
     1},
    {"probabilistic: different models do not match", {{CLICK, -H_, REL_FP_MODEL2}}, INS_IDFA, 0, INST, M_NONE, -1, 0},
    {"probabilistic: different OS versions do not match", {{CLICK, -H_, REL_FP_OS2}}, INS_IDFA, 0, INST, M_NONE, -1, 0},
    /* Identifiers: case, kind, the opted-out IDFA. */
    {"IDFA in upper case is the same IDFA", {{CLICK, -H_, REL_IDFA_UPPER}}, INS_IDFA, 0, INST, M_DEV, 0, 1},
    {"an IDFV never matches an IDFA", {{CLICK, -H_, REL_IDFV_SAME}}, INS_IDFA, 0, INST, M_NONE, -1, 0},
    {"all-zero IDFA on both sides is no match", {{CLICK, -H_, REL_ZERO_IDFA}}, INS_ZERO_IDFA, 0, INST, M_NONE, -1, 0},
    {"all-zero IDFA falls back to probabilistic", {{CLICK, -H_, REL_ZERO_FP}}, INS_ZERO_IDFA, 0, INST, M_PROB, 0, 1},
    /* Fraud-rejected touches are never candidates. */
    {"fraud-rejected click alone: organic", {{CLICK, -M_, REL_IDFA, 0, FRAUD}}, INS_IDFA, 0, INST, M_NONE, -1, 0},
    {"fraud-rejected later click loses to a clean one",
     {{CLICK, -2 * D_, REL_IDFA}, {CLICK, -M_, REL_IDFA, 0, FRAUD}, {CLICK, -S_, REL_REFERRER, 0, FRAUD}},
     INS_IDFA,
     0,
     INST,
     M_DEV,
     0,
     1},
    /* A retargeting click before the install is an ordinary install candidate. */
    {"retargeting click before the install", {{CLICK, -H_, REL_IDFA, 0, RT}}, INS_IDFA, 0, INST, M_DEV, 0, 1},
};

/* The installing device's fingerprint, and variations of it. */
static umg_attr_fp_t fp_of(int rel)
{
    const char *ua_iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2_1 like Mac OS X) AppleWebKit/605.1.15 "
                            "(KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1";
    umg_attr_fp_t fp;
    switch (rel) {
    case REL_FP_NOMODEL: umg_attr_fp_make(&fp, sl("203.0.113.9"), sl(ua_iphone), sl(""), sl(""), sl("")); break;
    case REL_FP_MODEL2:
        umg_attr_fp_make(&fp, sl("203.0.113.9"), sl(""), sl("ios"), sl("17.2.1"), sl("iPhone16,1"));
        break;
    case REL_FP_OS2: umg_attr_fp_make(&fp, sl("203.0.113.9"), sl(""), sl("ios"), sl("17.3"), sl("iPhone15,2")); break;
    default:
        /* The install's own: device fields from the SDK, IP seen as IPv4-mapped IPv6. */
        umg_attr_fp_make(&fp, sl(rel == -1 ? "::ffff:203.0.113.9" : "203.0.113.9"), sl(""), sl("iOS"), sl("17.2.1"),
                         sl("iPhone15,2"));
        break;
    }
    return fp;
}

static umg_attr_touch_t make_touch(const touch_spec_t *sp, int index)
{
    umg_attr_touch_t t;
    memset(&t, 0, sizeof(t));
    t.ts_us = T0 + sp->dt;
    t.touch_id = sp->id ? sp->id : (uint64_t)(100 + index);
    t.app = sp->app ? sp->app : APP;
    t.type = (uint8_t)sp->type;
    t.flags = sp->flags;
    t.lookback_s = sp->lookback_s;
    t.source = 1000 + (uint32_t)index;
    t.campaign = 2000 + (uint32_t)index;
    char clk[32];
    snprintf(clk, sizeof(clk), "clk-%d", index);
    t.click_id = umg_attr_click_hash(sl(clk));
    switch (sp->rel) {
    case REL_IDFA: t.ids[0] = umg_attr_id_hash(UMG_ATTR_ID_IDFA, sl(IDFA_A)); break;
    case REL_IDFA_UPPER: t.ids[0] = umg_attr_id_hash(UMG_ATTR_ID_IDFA, sl(IDFA_A_UPPER)); break;
    case REL_IDFV_SAME: t.ids[0] = umg_attr_id_hash(UMG_ATTR_ID_IDFV, sl(IDFA_A)); break;
    case REL_OTHER_DEVICE: t.ids[0] = umg_attr_id_hash(UMG_ATTR_ID_IDFA, sl(IDFA_B)); break;
    case REL_ZERO_IDFA: t.ids[0] = umg_attr_id_hash(UMG_ATTR_ID_IDFA, sl(IDFA_ZERO)); break;
    case REL_FP:
    case REL_FP_NOMODEL:
    case REL_FP_MODEL2:
    case REL_FP_OS2: t.fp = fp_of(sp->rel); break;
    case REL_ZERO_FP:
        t.ids[0] = umg_attr_id_hash(UMG_ATTR_ID_IDFA, sl(IDFA_ZERO));
        t.fp = fp_of(REL_FP);
        break;
    case REL_REFERRER: t.click_id = umg_attr_click_hash(sl("ref-click-42")); break;
    case REL_REFERRER_ID:
        t.click_id = umg_attr_click_hash(sl("ref-click-42"));
        t.ids[0] = umg_attr_id_hash(UMG_ATTR_ID_IDFA, sl(IDFA_A));
        break;
    default: break;
    }
    return t;
}

static umg_attr_obs_t make_obs(int install, int kind, int64_t ts)
{
    umg_attr_obs_t o;
    memset(&o, 0, sizeof(o));
    o.ts_us = ts;
    o.app = APP;
    o.kind = (uint8_t)kind;
    umg_slice_t v[UMG_ATTR_ID_KINDS] = {{0}};
    v[UMG_ATTR_ID_IDFA] = sl(install == INS_ZERO_IDFA ? IDFA_ZERO : IDFA_A);
    v[UMG_ATTR_ID_IDFV] = sl("0b5c7e4a-9d1e-4c2f-8a3b-5e6f7a8b9c0d");
    umg_attr_ids_collect(o.ids, v);
    o.fp = fp_of(-1);
    if (install != INS_NO_REFERRER) {
        /* As Google Play passes it: a URL-encoded query string. */
        char buf[128];
        umg_slice_t cid;
        assert_int_equal(
            umg_attr_referrer_click_id(sl("utm_source%3Dnet%26click_id%3Dref-click-42"), buf, sizeof(buf), &cid),
            UMG_OK);
        o.referrer_click = umg_attr_click_hash(cid);
    }
    return o;
}

static size_t build_touches(const touch_spec_t *spec, umg_attr_touch_t *out)
{
    size_t n = 0;
    while (n < 6 && spec[n].type != 0) {
        out[n] = make_touch(&spec[n], (int)n);
        n++;
    }
    return n;
}

static void test_install_scenarios(void **state)
{
    (void)state;
    for (size_t i = 0; i < UMG_ARRAY_SIZE(scenarios); i++) {
        const scenario_t *sc = &scenarios[i];
        umg_attr_settings_t s;
        umg_attr_settings_default(&s);
        if (sc->click_days) {
            s.click_lookback_days = sc->click_days;
        }
        umg_attr_touch_t t[6];
        size_t n = build_touches(sc->t, t);
        umg_attr_obs_t obs = make_obs(sc->install, UMG_ATTR_OBS_INSTALL, T0);
        umg_attr_decision_t d;
        int rc = umg_attr_decide_install(&s, NULL, t, n, &obs, T0 + 5 * S_, &d);
        if (rc != UMG_OK || d.outcome != sc->outcome || d.attr.match != sc->match ||
            d.n_candidates != sc->n_candidates ||
            (sc->winner >= 0 ? d.attr.touch_id != t[sc->winner].touch_id : d.attr.touch_id != 0)) {
            print_error("scenario %zu \"%s\": rc %d outcome %s match %s touch %llu candidates %u\n", i, sc->name, rc,
                        umg_attr_outcome_name(d.outcome), umg_attr_match_name(d.attr.match),
                        (unsigned long long)d.attr.touch_id, d.n_candidates);
            fail();
        }
        if (sc->winner >= 0) {
            assert_int_equal(d.attr.source, t[sc->winner].source);
            assert_int_equal(d.attr.touch_ts_us, t[sc->winner].ts_us);
            assert_int_equal(d.attr.touch_type, t[sc->winner].type);
        }
        assert_int_equal(d.ts_us, T0);
        assert_int_equal(d.decided_us, T0 + 5 * S_);
        /* The winner does not depend on the order in which the store returned the touches. */
        umg_attr_touch_t r[6];
        for (size_t j = 0; j < n; j++) {
            r[j] = t[n - 1 - j];
        }
        umg_attr_decision_t d2;
        assert_int_equal(umg_attr_decide_install(&s, NULL, r, n, &obs, T0 + 5 * S_, &d2), UMG_OK);
        assert_memory_equal(&d, &d2, sizeof(d));
    }
}

/* ----------------------------------------------------- sequences of steps */

/* One step of a device's life: touches known at that point, an observation, the expected result. */
typedef struct step_s {
    const char *name;
    int kind;   /* UMG_ATTR_OBS_*, or 100 for "credit an event" */
    int64_t at; /* observation time relative to T0 */
    touch_spec_t t[4];
    int outcome;        /* expected (steps with kind 100: 1 = re-engagement credit active) */
    int winner;         /* index into t, -1 none, -2 = keeps the device's install attribution */
    uint64_t credit_id; /* kind 100: the expected re-engagement touch id (0 none) */
} step_t;

typedef struct story_s {
    const char *name;
    step_t steps[8];
} story_t;

#define EVENT_CREDIT 100

static const story_t stories[] = {
    {"reinstall exactly at 90 days keeps the original click",
     {{"install", UMG_ATTR_OBS_INSTALL, 0, {{CLICK, -H_, REL_IDFA, .id = 1}}, INST, 0},
      {"reinstall", UMG_ATTR_OBS_INSTALL, 90 * D_, {{CLICK, -M_, REL_IDFA, .id = 2}}, UMG_ATTR_OUT_REINSTALL, -2},
      {NULL}}},
    {"reinstall 90 days and 1 s later is reattributed",
     {{"install", UMG_ATTR_OBS_INSTALL, 0, {{CLICK, -H_, REL_IDFA, .id = 1}}, INST, 0},
      {"reinstall",
       UMG_ATTR_OBS_INSTALL,
       90 * D_ + S_,
       {{CLICK, -M_, REL_IDFA, .id = 2}},
       UMG_ATTR_OUT_REATTRIBUTED,
       0},
      {NULL}}},
    {"reinstall after the window without a touch is reattributed organic",
     {{"install", UMG_ATTR_OBS_INSTALL, 0, {{CLICK, -H_, REL_IDFA, .id = 1}}, INST, 0},
      {"reinstall", UMG_ATTR_OBS_INSTALL, 200 * D_, {{0}}, UMG_ATTR_OUT_REATTRIBUTED, -1},
      {NULL}}},
    {"sessions before any install: implicit install, later install is a reinstall",
     {{"first session",
       UMG_ATTR_OBS_SESSION,
       0,
       {{CLICK, -2 * H_, REL_IDFA, .id = 5}},
       UMG_ATTR_OUT_IMPLICIT_INSTALL,
       0},
      {"event inherits it", EVENT_CREDIT, H_, {{0}}, 0, -2, 0},
      {"explicit install a day later",
       UMG_ATTR_OBS_INSTALL,
       D_,
       {{CLICK, -M_, REL_IDFA, .id = 6}},
       UMG_ATTR_OUT_REINSTALL,
       -2},
      {NULL}}},
    {"an event before any install is an implicit install too",
     {{"first event", UMG_ATTR_OBS_EVENT, 0, {{IMPR, -H_, REL_IDFA, .id = 9}}, UMG_ATTR_OUT_IMPLICIT_INSTALL, 0},
      {"a second event", UMG_ATTR_OBS_EVENT, M_, {{0}}, UMG_ATTR_OUT_NONE, -1},
      {NULL}}},
    {"re-engagement: window edges, one per click, credit for 30 days",
     {{"organic install", UMG_ATTR_OBS_INSTALL, 0, {{0}}, INST, -1},
      {"session 7 d 1 s after a retargeting click: none",
       UMG_ATTR_OBS_SESSION,
       20 * D_ + S_,
       {{CLICK, -7 * D_ - S_, REL_IDFA, 0, RT, 50}},
       UMG_ATTR_OUT_NONE,
       -1},
      {"session exactly 7 d after it: re-engagement",
       UMG_ATTR_OBS_SESSION,
       30 * D_,
       {{CLICK, -7 * D_, REL_IDFA, 0, RT, 51}, {CLICK, -D_, REL_IDFA, 0, 0, 52}},
       UMG_ATTR_OUT_REENGAGEMENT,
       0},
      {"same click, next session: no second re-engagement",
       UMG_ATTR_OBS_SESSION,
       30 * D_ + H_,
       {{CLICK, -7 * D_ - H_, REL_IDFA, 0, RT, 51}},
       UMG_ATTR_OUT_NONE,
       -1},
      {"event 30 d after: still credited", EVENT_CREDIT, 60 * D_, {{0}}, 1, -2, 51},
      {"event 30 d 1 s after: install only", EVENT_CREDIT, 60 * D_ + S_, {{0}}, 0, -2, 0},
      {"a new retargeting click re-engages again",
       UMG_ATTR_OBS_SESSION,
       61 * D_,
       {{CLICK, -7 * D_ - H_, REL_IDFA, 0, RT, 51},
        {CLICK, -H_, REL_FP, 0, RT, 53},
        {CLICK, -H_, REL_IDFA, 0, FRAUD | RT, 54}},
       UMG_ATTR_OUT_REENGAGEMENT,
       1},
      {NULL}}},
    {"an install that arrives late keeps the later re-engagement: its click re-engages once",
     {{"organic install", UMG_ATTR_OBS_INSTALL, 0, {{0}}, INST, -1},
      {"session a day after a retargeting click: re-engagement",
       UMG_ATTR_OBS_SESSION,
       100 * D_,
       {{CLICK, -D_, REL_IDFA, 0, RT, 81}},
       UMG_ATTR_OUT_REENGAGEMENT,
       0},
      {"a reinstall dated before it, arriving after it: reattributed organic",
       UMG_ATTR_OBS_INSTALL,
       95 * D_,
       {{0}},
       UMG_ATTR_OUT_REATTRIBUTED,
       -1},
      {"the same click, next session: no second re-engagement",
       UMG_ATTR_OBS_SESSION,
       101 * D_,
       {{CLICK, -2 * D_, REL_IDFA, 0, RT, 81}},
       UMG_ATTR_OUT_NONE,
       -1},
      {"events stay credited to it", EVENT_CREDIT, 101 * D_ + H_, {{0}}, 1, -2, 81},
      {NULL}}},
    {"a retargeting click before the install does not re-engage",
     {{"install", UMG_ATTR_OBS_INSTALL, 0, {{CLICK, -2 * D_, REL_IDFA, .id = 70}}, INST, 0},
      {"session", UMG_ATTR_OBS_SESSION, H_, {{CLICK, -H_ - D_, REL_IDFA, 0, RT, 71}}, UMG_ATTR_OUT_NONE, -1},
      {NULL}}},
};

static void run_story(const story_t *st)
{
    umg_attr_settings_t s;
    umg_attr_settings_default(&s);
    umg_attr_device_t dev;
    memset(&dev, 0, sizeof(dev));
    umg_attr_attribution_t install_attr;
    memset(&install_attr, 0, sizeof(install_attr));
    for (int i = 0; i < 8 && st->steps[i].name != NULL; i++) {
        const step_t *sp = &st->steps[i];
        int64_t ts = T0 + sp->at;
        if (sp->kind == EVENT_CREDIT) {
            umg_attr_credit_t c;
            assert_int_equal(umg_attr_credit_event(&s, &dev, ts, &c), UMG_OK);
            assert_memory_equal(&c.install, &install_attr, sizeof(install_attr));
            if (c.reeng_active != sp->outcome || c.reeng.touch_id != sp->credit_id) {
                print_error("story \"%s\" step \"%s\": reeng_active %d touch %llu\n", st->name, sp->name,
                            c.reeng_active, (unsigned long long)c.reeng.touch_id);
                fail();
            }
            continue;
        }
        umg_attr_touch_t t[4];
        size_t n = 0;
        while (n < 4 && sp->t[n].type != 0) {
            touch_spec_t ts_spec = sp->t[n];
            ts_spec.dt += sp->at; /* touch times are relative to the step */
            t[n] = make_touch(&ts_spec, (int)n);
            n++;
        }
        umg_attr_obs_t obs = make_obs(INS_NO_REFERRER, sp->kind, ts);
        umg_attr_decision_t d;
        int rc = sp->kind == UMG_ATTR_OBS_INSTALL ? umg_attr_decide_install(&s, &dev, t, n, &obs, ts, &d)
                                                  : umg_attr_on_session(&s, &dev, t, n, &obs, ts, &d);
        assert_int_equal(rc, UMG_OK);
        int ok = d.outcome == sp->outcome;
        if (sp->winner >= 0) {
            ok = ok && d.attr.touch_id == t[sp->winner].touch_id;
        } else if (sp->winner == -1) {
            ok = ok && d.attr.match == UMG_ATTR_MATCH_NONE && d.attr.touch_id == 0;
        } else {
            ok = ok && memcmp(&d.attr, &install_attr, sizeof(install_attr)) == 0;
        }
        if (!ok) {
            print_error("story \"%s\" step \"%s\": outcome %s touch %llu\n", st->name, sp->name,
                        umg_attr_outcome_name(d.outcome), (unsigned long long)d.attr.touch_id);
            fail();
        }
        umg_attr_apply(&dev, &d);
        if (d.outcome == INST || d.outcome == UMG_ATTR_OUT_REATTRIBUTED || d.outcome == UMG_ATTR_OUT_IMPLICIT_INSTALL) {
            install_attr = d.attr;
        }
        assert_memory_equal(&dev.install, &install_attr, sizeof(install_attr));
    }
}

static void test_device_stories(void **state)
{
    (void)state;
    for (size_t i = 0; i < UMG_ARRAY_SIZE(stories); i++) {
        run_story(&stories[i]);
    }
}

static void test_device_counters(void **state)
{
    (void)state;
    umg_attr_settings_t s;
    umg_attr_settings_default(&s);
    umg_attr_device_t dev;
    memset(&dev, 0, sizeof(dev));
    umg_attr_credit_t c;
    assert_int_equal(umg_attr_credit_event(&s, &dev, T0, &c), UMG_ENOENT);
    umg_attr_obs_t obs = make_obs(INS_IDFA, UMG_ATTR_OBS_INSTALL, T0);
    umg_attr_decision_t d;
    assert_int_equal(umg_attr_decide_install(&s, &dev, NULL, 0, &obs, T0, &d), UMG_OK);
    umg_attr_apply(&dev, &d);
    obs.ts_us = T0 + D_;
    assert_int_equal(umg_attr_decide_install(&s, &dev, NULL, 0, &obs, T0, &d), UMG_OK);
    assert_int_equal(d.outcome, UMG_ATTR_OUT_REINSTALL);
    umg_attr_apply(&dev, &d);
    assert_int_equal(dev.installs, 1);
    assert_int_equal(dev.reinstalls, 1);
    assert_int_equal(dev.install_ts_us, T0);
    assert_int_equal(dev.last_install_ts_us, T0 + D_);
    /* Errors: NULL arguments and settings out of bounds; out untouched. */
    umg_attr_decision_t keep;
    memset(&keep, 0xab, sizeof(keep));
    d = keep;
    assert_int_equal(umg_attr_decide_install(NULL, NULL, NULL, 0, &obs, T0, &d), UMG_EINVAL);
    s.click_lookback_days = 31;
    assert_int_equal(umg_attr_decide_install(&s, NULL, NULL, 0, &obs, T0, &d), UMG_ERANGE);
    assert_int_equal(umg_attr_on_session(&s, NULL, NULL, 0, &obs, T0, &d), UMG_ERANGE);
    assert_memory_equal(&d, &keep, sizeof(d));
}

/* ------------------------------------------------------- settings, parsing */

static void test_settings(void **state)
{
    (void)state;
    umg_attr_settings_t s, t;
    umg_attr_settings_default(&s);
    assert_int_equal(umg_attr_settings_check(&s), UMG_OK);
    assert_int_equal(s.click_lookback_days, 7);
    assert_int_equal(s.view_lookback_hours, 24);
    assert_int_equal(s.reattribution_window_days, 90);
    /* The config table gives the same defaults and the admin API's bounds. */
    memset(&t, 0, sizeof(t));
    assert_int_equal(umg_config_defaults(umg_attr_config_items, umg_attr_config_nitems, &t), UMG_OK);
    assert_memory_equal(&s, &t, sizeof(s));
    char err[128];
    assert_int_equal(umg_config_set(umg_attr_config_items, umg_attr_config_nitems, &t, "click_lookback_days", "31", err,
                                    sizeof(err)),
                     UMG_ERANGE);
    assert_int_equal(umg_config_set(umg_attr_config_items, umg_attr_config_nitems, &t, "view_lookback_hours", "168",
                                    err, sizeof(err)),
                     UMG_OK);
    assert_int_equal(umg_config_set(umg_attr_config_items, umg_attr_config_nitems, &t, "reattribution_window_days",
                                    "366", err, sizeof(err)),
                     UMG_ERANGE);
    s.view_lookback_hours = 169;
    assert_int_equal(umg_attr_settings_check(&s), UMG_ERANGE);
    s.view_lookback_hours = 0;
    assert_int_equal(umg_attr_settings_check(&s), UMG_ERANGE);

    assert_true(sizeof(umg_attr_touch_t) <= 128);
}

static void test_identifiers(void **state)
{
    (void)state;
    assert_int_equal(umg_attr_id_hash(UMG_ATTR_ID_IDFA, sl(IDFA_ZERO)), 0);
    assert_int_equal(umg_attr_id_hash(UMG_ATTR_ID_GAID, sl(IDFA_ZERO)), 0);
    assert_int_equal(umg_attr_id_hash(UMG_ATTR_ID_IDFA, sl("")), 0);
    assert_int_not_equal(umg_attr_id_hash(UMG_ATTR_ID_CUSTOM, sl("user-1")), 0);
    assert_int_equal(umg_attr_id_hash(UMG_ATTR_ID_GAID, sl(IDFA_A)),
                     umg_attr_id_hash(UMG_ATTR_ID_GAID, sl(IDFA_A_UPPER)));
    assert_int_not_equal(umg_attr_id_hash(UMG_ATTR_ID_GAID, sl(IDFA_A)),
                         umg_attr_id_hash(UMG_ATTR_ID_OAID, sl(IDFA_A)));
    umg_slice_t v[UMG_ATTR_ID_KINDS] = {sl(IDFA_ZERO), sl(""), sl("o1"), sl("a1"), sl("v1"), sl("c1")};
    uint64_t ids[UMG_ATTR_MAX_IDS];
    assert_int_equal(umg_attr_ids_collect(ids, v), 4); /* the zero IDFA skipped, the strongest 4 kept */
    assert_int_equal(ids[0], umg_attr_id_hash(UMG_ATTR_ID_OAID, sl("o1")));
    assert_int_equal(ids[3], umg_attr_id_hash(UMG_ATTR_ID_CUSTOM, sl("c1")));

    static const struct {
        const char *ref, *want;
    } refs[] = {
        {"utm_source=google-play&utm_medium=organic&click_id=abc123", "abc123"},
        {"click_id=abc123&utm_source=x", "abc123"},
        {"utm_source%3Dnet%26click_id%3Dxyz-9", "xyz-9"},
        {"utm_source%3Dnet%26click_id%3Dab%252Fcd%253D%253DXYZ", "ab/cd==XYZ"}, /* the value encoded twice too */
        {"click_id=a%2Bb%26c", "a+b&c"},
        {"my_click_id=wrong&click_id=right", "right"},
        {"my_click_id=wrong", NULL},
        {"utm_source=x&click_id=", NULL},
        {"", NULL},
        {"%%%click_id%3", NULL},
    };
    for (size_t i = 0; i < UMG_ARRAY_SIZE(refs); i++) {
        char buf[64];
        umg_slice_t out = UMG_SLICE_NULL;
        int rc = umg_attr_referrer_click_id(sl(refs[i].ref), buf, sizeof(buf), &out);
        if (refs[i].want == NULL) {
            assert_int_equal(rc, UMG_ENOENT);
        } else {
            assert_int_equal(rc, UMG_OK);
            assert_true(umg_slice_eq(out, refs[i].want));
        }
    }
    char tiny[3];
    umg_slice_t out;
    assert_int_equal(umg_attr_referrer_click_id(sl("click_id=abcdef"), tiny, sizeof(tiny), &out), UMG_ERANGE);
    assert_int_equal(umg_attr_ip_hash(sl("::FFFF:198.51.100.1")), umg_attr_ip_hash(sl("198.51.100.1")));
    assert_int_equal(umg_attr_ip_hash(sl("2001:DB8::1")), umg_attr_ip_hash(sl("2001:db8::1")));
    assert_int_equal(umg_attr_ip_hash(sl("")), 0);
    /* The same address written another way: leading zeros, no compression, a mapped IPv4 in hex. */
    assert_int_equal(umg_attr_ip_hash(sl("2001:0db8:0000:0000:0000:0000:0000:0084")),
                     umg_attr_ip_hash(sl("2001:db8::84")));
    assert_int_equal(umg_attr_ip_hash(sl("::ffff:a0b:5")), umg_attr_ip_hash(sl("10.11.0.5")));
    assert_int_equal(umg_attr_ip_hash(sl(" 10.11.0.5 ")), umg_attr_ip_hash(sl("10.11.0.5")));
    assert_true(umg_attr_ip_hash(sl("10.11.0.5")) != umg_attr_ip_hash(sl("10.11.0.6")));
    assert_true(umg_attr_ip_hash(sl("2001:db8::84")) != umg_attr_ip_hash(sl("2001:db8::85")));
    /* Text that is no address is still compared, in lower case. */
    assert_int_equal(umg_attr_ip_hash(sl("Not-An-IP")), umg_attr_ip_hash(sl("not-an-ip")));
}

static void test_user_agents(void **state)
{
    (void)state;
    static const struct {
        const char *ua;
        int platform;
        unsigned major, minor, patch;
        const char *model; /* NULL: none */
    } cases[] = {
        {"Mozilla/5.0 (iPhone; CPU iPhone OS 17_2_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
         "Version/17.2 Mobile/15E148 Safari/604.1",
         UMG_ATTR_PLATFORM_IOS, 17, 2, 1, NULL},
        {"Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
         UMG_ATTR_PLATFORM_IOS, 16, 6, 0, NULL},
        {"Mozilla/5.0 (iPhone; CPU iPhone OS 15_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
         "Mobile/15E148 [FBAN/FBIOS;FBDV/iPhone13,2;FBMD/iPhone;FBSN/iOS;FBSV/15.0]",
         UMG_ATTR_PLATFORM_IOS, 15, 0, 0, "iPhone13,2"},
        {"MyGame/2.3.1 (iPhone14,2; iOS 17.2.1; Scale/3.00)", UMG_ATTR_PLATFORM_IOS, 17, 2, 1, "iPhone14,2"},
        {"MyGame/412 CFNetwork/1494.0.7 Darwin/23.4.0", UMG_ATTR_PLATFORM_IOS, 17, 0, 0, NULL},
        {"Mozilla/5.0 (Linux; Android 13; SM-S918B Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like "
         "Gecko) Version/4.0 Chrome/120.0.6099.43 Mobile Safari/537.36",
         UMG_ATTR_PLATFORM_ANDROID, 13, 0, 0, "SM-S918B"},
        {"Dalvik/2.1.0 (Linux; U; Android 11; Pixel 5 Build/RQ3A.210805.001.A1)", UMG_ATTR_PLATFORM_ANDROID, 11, 0, 0,
         "Pixel 5"},
        {"Mozilla/5.0 (Linux; U; Android 4.4.2; en-us; SM-G900F Build/KOT49H) AppleWebKit/534.30",
         UMG_ATTR_PLATFORM_ANDROID, 4, 4, 2, "SM-G900F"},
        {"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile "
         "Safari/537.36",
         UMG_ATTR_PLATFORM_ANDROID, 10, 0, 0, "K"},
        {"Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36", UMG_ATTR_PLATFORM_ANDROID, 14, 0, 0, NULL},
        {"okhttp/4.12.0", UMG_ATTR_PLATFORM_UNKNOWN, 0, 0, 0, NULL},
        {"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 "
         "Safari/605.1.15",
         UMG_ATTR_PLATFORM_UNKNOWN, 0, 0, 0, NULL},
        {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36", UMG_ATTR_PLATFORM_UNKNOWN, 0, 0, 0, NULL},
        {"", UMG_ATTR_PLATFORM_UNKNOWN, 0, 0, 0, NULL},
        /* Case does not matter; a token that is only "Build/..." is no model. */
        {"MOZILLA/5.0 (LINUX; ANDROID 12; Build/SP1A; Pixel 6 BUILD/SQ3A)", UMG_ATTR_PLATFORM_ANDROID, 12, 0, 0,
         "Pixel 6"},
        {"app (IPHONE15,3; IOS 17.1)", UMG_ATTR_PLATFORM_IOS, 17, 1, 0, "IPHONE15,3"},
        {"App/1 CFNETWORK/1 DARWIN/22.1.0", UMG_ATTR_PLATFORM_IOS, 16, 0, 0, NULL},
    };
    for (size_t i = 0; i < UMG_ARRAY_SIZE(cases); i++) {
        umg_attr_ua_t ua;
        memset(&ua, 0, sizeof(ua));
        int rc = umg_attr_ua_parse(sl(cases[i].ua), &ua);
        if (cases[i].platform == UMG_ATTR_PLATFORM_UNKNOWN) {
            assert_int_equal(rc, UMG_ENOENT);
            continue;
        }
        if (rc != UMG_OK || (int)ua.platform != cases[i].platform || ua.major != cases[i].major ||
            ua.minor != cases[i].minor || ua.patch != cases[i].patch ||
            (cases[i].model ? !umg_slice_eq(ua.model, cases[i].model) : ua.model.len != 0)) {
            print_error("UA %zu: rc %d platform %d %u.%u.%u model '%.*s'\n", i, rc, ua.platform, ua.major, ua.minor,
                        ua.patch, (int)ua.model.len, ua.model.ptr ? ua.model.ptr : "");
            fail();
        }
    }
    /* The platform is found at every offset and in any case, across the 16-byte blocks of the search and its
     * tail; a near miss ("androi" at the end) is not a match. */
    for (size_t at = 0; at < 40; at++) {
        for (size_t tail = 0; tail < 20; tail++) {
            char buf[80];
            memset(buf, '.', sizeof(buf));
            memcpy(buf + at, at % 2 ? "ANDROID 7" : "aNdRoId 7", 9);
            umg_attr_ua_t u;
            assert_int_equal(umg_attr_ua_parse(umg_slice(buf, at + 9 + tail), &u), UMG_OK);
            assert_int_equal(u.major, 7);
            memcpy(buf + at, "xandroi", 7);
            assert_int_equal(umg_attr_ua_parse(umg_slice(buf, at + 7), &u), UMG_ENOENT);
        }
    }
    /* A click's UA and the install's SDK fields give the same fingerprint. */
    umg_attr_fp_t a, b;
    umg_attr_fp_make(&a, sl("198.51.100.7"),
                     sl("Mozilla/5.0 (Linux; Android 13; SM-S918B Build/TP1A.220624.014; wv) AppleWebKit/537.36"),
                     sl(""), sl(""), sl(""));
    umg_attr_fp_make(&b, sl("198.51.100.7"), sl("okhttp/4.12.0"), sl("android"), sl("13"), sl("sm-s918b"));
    assert_memory_equal(&a, &b, sizeof(a));
    /* The reduced Android UA's "K" is no model. */
    umg_attr_fp_make(&a, sl("198.51.100.7"), sl("Mozilla/5.0 (Linux; Android 13; K) AppleWebKit/537.36"), sl(""),
                     sl(""), sl(""));
    assert_int_equal(a.model, 0);
    assert_int_equal(a.os, umg_attr_os_pack(UMG_ATTR_PLATFORM_ANDROID, 13, 0, 0));
}

/* ------------------------------------------------------------ replay */

/* A seeded generator for the property tests. */
static uint64_t rnd_state;
static uint64_t rnd(void)
{
    uint64_t z = (rnd_state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Runs a random device history (installs, sessions, events) and returns a digest of every decision. */
static void replay_run(uint64_t seed, umg_attr_decision_t *out, size_t nout, umg_attr_device_t *dev_out, int reverse)
{
    rnd_state = seed;
    umg_attr_settings_t s;
    umg_attr_settings_default(&s);
    umg_attr_device_t dev;
    memset(&dev, 0, sizeof(dev));
    int64_t now = T0;
    for (size_t i = 0; i < nout; i++) {
        now += (int64_t)(rnd() % (uint64_t)(20 * D_));
        umg_attr_touch_t t[12];
        size_t n = rnd() % 12;
        for (size_t j = 0; j < n; j++) {
            /* One statement per draw: the order of evaluation inside an initializer is unspecified. */
            touch_spec_t sp = {0};
            sp.type = rnd() % 3 ? CLICK : IMPR;
            sp.dt = now - T0 - (int64_t)(rnd() % (uint64_t)(9 * D_));
            sp.rel = (int)(rnd() % 13);
            sp.lookback_s = rnd() % 4 ? 0 : (uint32_t)(rnd() % (40 * 86400));
            sp.flags = (uint8_t)(rnd() % 4);
            sp.id = rnd() % 8;
            t[j] = make_touch(&sp, (int)j);
            t[j].touch_id = sp.id ? sp.id : t[j].touch_id; /* frequent ties on purpose */
        }
        if (reverse) {
            for (size_t j = 0; j < n / 2; j++) {
                umg_attr_touch_t x = t[j];
                t[j] = t[n - 1 - j];
                t[n - 1 - j] = x;
            }
        }
        int kind = (int)(rnd() % 3) + 1;
        umg_attr_obs_t obs = make_obs((int)(rnd() % 3), kind, now);
        int rc = kind == UMG_ATTR_OBS_INSTALL ? umg_attr_decide_install(&s, &dev, t, n, &obs, now, &out[i])
                                              : umg_attr_on_session(&s, &dev, t, n, &obs, now, &out[i]);
        assert_int_equal(rc, UMG_OK);
        umg_attr_apply(&dev, &out[i]);
    }
    *dev_out = dev;
}

static void test_replay_equality(void **state)
{
    (void)state;
    enum { N = 400 };
    static umg_attr_decision_t a[N], b[N], c[N];
    umg_attr_device_t da, db, dc;
    int outcomes[6] = {0};
    for (uint64_t seed = 1; seed <= 20; seed++) {
        memset(a, 0x11, sizeof(a));
        memset(b, 0x77, sizeof(b)); /* different garbage: every byte must be written */
        replay_run(seed, a, N, &da, 0);
        replay_run(seed, b, N, &db, 0);
        replay_run(seed, c, N, &dc, 1); /* the store returned the touches in another order */
        assert_memory_equal(a, b, sizeof(a));
        assert_memory_equal(&da, &db, sizeof(da));
        for (size_t i = 0; i < N; i++) {
            assert_int_equal(a[i].attr.touch_id, c[i].attr.touch_id);
            assert_int_equal(a[i].outcome, c[i].outcome);
            outcomes[a[i].outcome]++;
        }
    }
    /* The random histories reach every outcome. */
    for (int o = 0; o < 6; o++) {
        assert_true(outcomes[o] > 0);
    }
}

/* ------------------------------------------------------------------ MTA */

static double sum_of(const double *v, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        s += v[i];
    }
    return s;
}

/* Equal to a relative 1e-9: the credits are sums of floating-point shares. */
static void close_to(double a, double b, int line)
{
    if (!(fabs(a - b) <= 1e-9 * (1 + fabs(b)))) {
        print_error("line %d: %.15g != %.15g\n", line, a, b);
        fail();
    }
}
#define CLOSE(a, b) close_to((a), (b), __LINE__)

/* Paths kept alive for the duration of a test. */
typedef struct pathset_s {
    umg_mta_path_t p[4096];
    uint32_t ch[4096][12];
    int64_t ts[4096][12];
    size_t n;
} pathset_t;

static void add_path(pathset_t *ps, const char *channels, int converted, double value)
{
    umg_mta_path_t *p = &ps->p[ps->n];
    uint32_t k = 0;
    for (const char *c = channels; *c; c++) {
        if (*c != ' ' && *c != '>') {
            ps->ch[ps->n][k] = (uint32_t)(*c - 'A');
            ps->ts[ps->n][k] = T0 + (int64_t)k * H_;
            k++;
        }
    }
    *p = (umg_mta_path_t){ps->ch[ps->n], ps->ts[ps->n], k, converted, value};
    ps->n++;
}

static void add_paths(pathset_t *ps, const char *channels, int count, int converted)
{
    for (int i = 0; i < count; i++) {
        add_path(ps, channels, converted, 1);
    }
}

static pathset_t *random_paths(uint64_t seed, uint32_t nch, size_t n, int revenue)
{
    pathset_t *ps = calloc(1, sizeof(*ps));
    rnd_state = seed;
    for (size_t i = 0; i < n; i++) {
        umg_mta_path_t *p = &ps->p[i];
        uint32_t k = (uint32_t)(rnd() % 8);
        int64_t t = T0;
        for (uint32_t j = 0; j < k; j++) {
            ps->ch[i][j] = (uint32_t)(rnd() % nch);
            t += (int64_t)(rnd() % (uint64_t)(10 * D_));
            ps->ts[i][j] = t;
        }
        int conv = rnd() % 3 == 0;
        *p = (umg_mta_path_t){ps->ch[i], ps->ts[i], k, conv, revenue ? (double)(rnd() % 10000) / 100.0 : 1.0};
    }
    ps->n = n;
    return ps;
}

/*
 * Journeys where channels help: one to three touches (a few with none), each
 * distinct channel c adding 2% * (c % 5 + 1) to a 5% base conversion rate.
 * Dense enough that the RATE game has mostly positive Shapley values.
 */
static pathset_t *lift_paths(uint64_t seed, uint32_t nch, size_t n)
{
    pathset_t *ps = calloc(1, sizeof(*ps));
    rnd_state = seed;
    for (size_t i = 0; i < n; i++) {
        uint32_t k = rnd() % 20 == 0 ? 0 : 1 + (uint32_t)(rnd() % 3);
        double rate = 0.05;
        uint32_t seen = 0;
        for (uint32_t j = 0; j < k; j++) {
            uint32_t c = (uint32_t)(rnd() % nch);
            ps->ch[i][j] = c;
            ps->ts[i][j] = T0 + (int64_t)j * H_;
            rate += seen & (1u << c) ? 0 : 0.02 * (c % 5 + 1);
            seen |= 1u << c;
        }
        int conv = (double)(rnd() % 1000000) / 1e6 < rate;
        ps->p[i] = (umg_mta_path_t){ps->ch[i], ps->ts[i], k, conv, 1.0};
    }
    ps->n = n;
    return ps;
}

static void test_mta_credit_sums(void **state)
{
    (void)state;
    static const uint32_t nchs[] = {1, 3, 6, 12, 15, 18};
    for (size_t c = 0; c < UMG_ARRAY_SIZE(nchs); c++) {
        for (int revenue = 0; revenue <= 1; revenue++) {
            pathset_t *ps = random_paths(1000 + c * 2 + (uint64_t)revenue, nchs[c], 3000, revenue);
            double expect = 0;
            for (size_t i = 0; i < ps->n; i++) {
                expect += ps->p[i].converted && ps->p[i].n > 0 ? ps->p[i].value : 0;
            }
            for (int m = 0; m < UMG_MTA_MODELS; m++) {
                for (int game = 0; game <= (m == UMG_MTA_SHAPLEY); game++) {
                    umg_mta_opts_t o;
                    umg_mta_opts_default(&o);
                    o.shapley_game = (umg_mta_shapley_game_t)game;
                    o.shapley_samples = 2000;
                    double credit[32], total = -1;
                    assert_int_equal(umg_mta_credit((umg_mta_model_t)m, &o, ps->p, ps->n, nchs[c], credit, &total),
                                     UMG_OK);
                    CLOSE(total, expect);
                    if (fabs(sum_of(credit, nchs[c]) - expect) > 1e-9 * expect) {
                        print_error("model %s game %d nch %u: sum %.12f want %.12f\n",
                                    umg_mta_model_name((umg_mta_model_t)m), game, nchs[c], sum_of(credit, nchs[c]),
                                    expect);
                        fail();
                    }
                    for (uint32_t k = 0; k < nchs[c]; k++) {
                        assert_true(credit[k] >= 0);
                    }
                }
            }
            free(ps);
        }
    }
}

static void test_mta_rule_invariants(void **state)
{
    (void)state;
    pathset_t *ps = calloc(1, sizeof(*ps));
    add_path(ps, "B>A>C>A>D", 1, 10); /* five touches, A twice */
    double cr[4], total;
    assert_int_equal(umg_mta_credit(UMG_MTA_FIRST, NULL, ps->p, 1, 4, cr, &total), UMG_OK);
    CLOSE(cr[1], 10);
    CLOSE(cr[0] + cr[2] + cr[3], 0);
    assert_int_equal(umg_mta_credit(UMG_MTA_LAST, NULL, ps->p, 1, 4, cr, &total), UMG_OK);
    CLOSE(cr[3], 10);
    CLOSE(cr[0] + cr[1] + cr[2], 0);
    /* linear: 10 / 5 = 2 per touch; A has two touches. */
    assert_int_equal(umg_mta_credit(UMG_MTA_LINEAR, NULL, ps->p, 1, 4, cr, &total), UMG_OK);
    CLOSE(cr[0], 4);
    CLOSE(cr[1], 2);
    CLOSE(cr[2], 2);
    CLOSE(cr[3], 2);
    /* position: 40% to B, 40% to D, 20% over the three middle touches (A, C, A): 2/3 each. */
    assert_int_equal(umg_mta_credit(UMG_MTA_POSITION, NULL, ps->p, 1, 4, cr, &total), UMG_OK);
    CLOSE(cr[1], 4);
    CLOSE(cr[3], 4);
    CLOSE(cr[0], 4.0 / 3);
    CLOSE(cr[2], 2.0 / 3);
    /* position: one touch 100%, two touches 50/50. */
    ps->n = 0;
    add_path(ps, "C", 1, 1);
    add_path(ps, "A>B", 1, 1);
    assert_int_equal(umg_mta_credit(UMG_MTA_POSITION, NULL, ps->p, 2, 4, cr, &total), UMG_OK);
    CLOSE(cr[2], 1);
    CLOSE(cr[0], 0.5);
    CLOSE(cr[1], 0.5);
    /* time_decay, half-life 7 days: touches 14 d, 7 d and 0 d before the conversion weigh
     * 2^-2 = 0.25, 2^-1 = 0.5 and 2^0 = 1; shares 0.25/1.75, 0.5/1.75, 1/1.75. */
    ps->n = 0;
    add_path(ps, "A>B>C", 1, 7);
    ps->ts[0][0] = T0;
    ps->ts[0][1] = T0 + 7 * D_;
    ps->ts[0][2] = T0 + 14 * D_;
    assert_int_equal(umg_mta_credit(UMG_MTA_TIME_DECAY, NULL, ps->p, 1, 3, cr, &total), UMG_OK);
    CLOSE(cr[0], 7 * 0.25 / 1.75);
    CLOSE(cr[1], 7 * 0.5 / 1.75);
    CLOSE(cr[2], 7 * 1 / 1.75);
    /* Invariants over random paths, one at a time: first/last put everything on one touch, linear is equal. */
    free(ps);
    ps = random_paths(77, 9, 300, 1);
    for (size_t i = 0; i < ps->n; i++) {
        umg_mta_path_t one = ps->p[i];
        one.converted = 1;
        if (one.n == 0 || one.value == 0) {
            continue;
        }
        double c9[9];
        assert_int_equal(umg_mta_credit(UMG_MTA_FIRST, NULL, &one, 1, 9, c9, &total), UMG_OK);
        CLOSE(c9[one.ch[0]], one.value);
        assert_int_equal(umg_mta_credit(UMG_MTA_LAST, NULL, &one, 1, 9, c9, &total), UMG_OK);
        CLOSE(c9[one.ch[one.n - 1]], one.value);
        assert_int_equal(umg_mta_credit(UMG_MTA_LINEAR, NULL, &one, 1, 9, c9, &total), UMG_OK);
        for (uint32_t j = 0; j < one.n; j++) {
            uint32_t times = 0;
            for (uint32_t q = 0; q < one.n; q++) {
                times += one.ch[q] == one.ch[j];
            }
            CLOSE(c9[one.ch[j]], one.value * times / one.n);
        }
        assert_int_equal(umg_mta_credit(UMG_MTA_POSITION, NULL, &one, 1, 9, c9, &total), UMG_OK);
        if (one.n >= 3 && one.ch[0] != one.ch[one.n - 1]) {
            double ends = 0.4 * one.value;
            int first_in_middle = 0, last_in_middle = 0;
            for (uint32_t q = 1; q + 1 < one.n; q++) {
                first_in_middle |= one.ch[q] == one.ch[0];
                last_in_middle |= one.ch[q] == one.ch[one.n - 1];
            }
            if (!first_in_middle && !last_in_middle) {
                CLOSE(c9[one.ch[0]], ends);
                CLOSE(c9[one.ch[one.n - 1]], ends);
            }
        }
    }
    free(ps);
}

static void test_markov(void **state)
{
    (void)state;
    pathset_t *ps = calloc(1, sizeof(*ps));
    double cr[3], total;
    /*
     * Hand-computed, three channels A, B, C; journeys A>B>C converts, A does not, B>C does not.
     * Transitions: start->A 2/3, start->B 1/3, A->B 1/2, A->null 1/2, B->C 1, C->conv 1/2, C->null 1/2.
     * P(conv) = 2/3*1/2*1*1/2 + 1/3*1*1/2 = 1/6 + 1/6 = 1/3.
     * Without A: only start->B->C->conv = 1/3*1/2 = 1/6, removal effect 1 - (1/6)/(1/3) = 1/2.
     * Without B or C: nothing converts, removal effect 1 each.
     * Credit of the 1 conversion: A 0.5/2.5 = 0.2, B 0.4, C 0.4.
     */
    add_path(ps, "A>B>C", 1, 1);
    add_path(ps, "A", 0, 1);
    add_path(ps, "B>C", 0, 1);
    assert_int_equal(umg_mta_credit(UMG_MTA_MARKOV, NULL, ps->p, ps->n, 3, cr, &total), UMG_OK);
    CLOSE(total, 1);
    CLOSE(cr[0], 0.2);
    CLOSE(cr[1], 0.4);
    CLOSE(cr[2], 0.4);

    /*
     * Worked example from the literature: S. Puzyrov, "Markov Chain Attribution - Simple
     * Explanation of Removal Effect" (2019,
     * https://serhiipuzyrov.com/2019/07/markov-chain-attribution-simple-explanation-of-removal-effect/),
     * applying the first-order removal effect of Anderl, Becker, von Wangenheim and Schumann,
     * "Mapping the customer journey: Lessons learned from graph-based online attribution
     * modeling", IJRM 33(3), 2016. Journeys: Google Ads converts twice, Mailing once,
     * Google Ads > Mailing once, Google Ads once without converting (G = A, M = B).
     * Transitions: start->G 4/5, start->M 1/5; G->conv 2/4, G->M 1/4, G->null 1/4; M->conv 2/2.
     * P(conv) = 0.8 * (0.5 + 0.25 * 1) + 0.2 * 1 = 0.6 + 0.2 = 0.8.
     * Without G: 0.2, removal effect 1 - 0.2/0.8 = 0.75. Without M: 0.8 * 0.5 = 0.4, effect 0.5.
     * The 4 conversions: G 4 * 0.75/1.25 = 2.4, M 4 * 0.5/1.25 = 1.6 (the article's result).
     */
    ps->n = 0;
    add_paths(ps, "A", 2, 1);
    add_paths(ps, "B", 1, 1);
    add_paths(ps, "A>B", 1, 1);
    add_paths(ps, "A", 1, 0);
    assert_int_equal(umg_mta_credit(UMG_MTA_MARKOV, NULL, ps->p, ps->n, 2, cr, &total), UMG_OK);
    CLOSE(total, 4);
    CLOSE(cr[0], 2.4);
    CLOSE(cr[1], 1.6);

    /* A cycle (A>B>A) and a channel that never occurs (C): still exact, C gets nothing. */
    ps->n = 0;
    add_paths(ps, "A>B>A", 3, 1);
    add_paths(ps, "B>A>B", 1, 0);
    assert_int_equal(umg_mta_credit(UMG_MTA_MARKOV, NULL, ps->p, ps->n, 3, cr, &total), UMG_OK);
    CLOSE(cr[0] + cr[1], 3);
    CLOSE(cr[2], 0);
    free(ps);

    /* Order of the paths does not change the result. */
    pathset_t *r = random_paths(4242, 10, 2000, 1);
    double c1[10], c2[10];
    assert_int_equal(umg_mta_credit(UMG_MTA_MARKOV, NULL, r->p, r->n, 10, c1, &total), UMG_OK);
    for (size_t i = 0; i < r->n / 2; i++) {
        umg_mta_path_t x = r->p[i];
        r->p[i] = r->p[r->n - 1 - i];
        r->p[r->n - 1 - i] = x;
    }
    assert_int_equal(umg_mta_credit(UMG_MTA_MARKOV, NULL, r->p, r->n, 10, c2, &total), UMG_OK);
    /* The chain is the same (edges are sorted); only the float sum of the revenue may differ in its last bits. */
    for (int i = 0; i < 10; i++) {
        CLOSE(c2[i], c1[i]);
    }
    /* The same input in the same order gives the same bits. */
    assert_int_equal(umg_mta_credit(UMG_MTA_MARKOV, NULL, r->p, r->n, 10, c1, &total), UMG_OK);
    assert_memory_equal(c1, c2, sizeof(c1));
    free(r);
}

/*
 * The RATE game's Shapley value by brute force, as an independent oracle for
 * small k: v(S) straight from the journeys (value over count of those whose
 * channels lie in S), then phi_i = sum over orders of the marginal
 * contribution, enumerated over subsets with weights |S|!(k-|S|-1)!/k!.
 */
static double oracle_v(const pathset_t *ps, uint32_t set)
{
    double v = 0, c = 0;
    for (size_t i = 0; i < ps->n; i++) {
        uint32_t mask = 0;
        for (uint32_t j = 0; j < ps->p[i].n; j++) {
            mask |= 1u << ps->p[i].ch[j];
        }
        if ((mask & ~set) == 0) {
            v += ps->p[i].converted ? ps->p[i].value : 0;
            c += 1;
        }
    }
    return c > 0 ? v / c : 0;
}

static void shapley_oracle(const pathset_t *ps, uint32_t k, double *phi)
{
    double fact[16] = {1};
    for (int i = 1; i < 16; i++) {
        fact[i] = fact[i - 1] * i;
    }
    for (uint32_t i = 0; i < k; i++) {
        phi[i] = 0;
        for (uint32_t set = 0; set < (1u << k); set++) {
            if (set & (1u << i)) {
                continue;
            }
            int s = __builtin_popcount(set);
            phi[i] += fact[s] * fact[k - s - 1] / fact[k] * (oracle_v(ps, set | (1u << i)) - oracle_v(ps, set));
        }
    }
}

/*
 * The module's scaling: positive Shapley values shared out in proportion; when
 * none is positive (sparse data where every coalition converts worse than no
 * touch at all), each converting journey's value split over its distinct
 * channels.
 */
static void scale_positive(const pathset_t *ps, double *phi, uint32_t k, double total)
{
    double pos = 0;
    for (uint32_t i = 0; i < k; i++) {
        pos += phi[i] > 0 ? phi[i] : 0;
    }
    if (pos > 0) {
        for (uint32_t i = 0; i < k; i++) {
            phi[i] = phi[i] > 0 ? total * phi[i] / pos : 0;
        }
        return;
    }
    for (uint32_t i = 0; i < k; i++) {
        phi[i] = 0;
    }
    for (size_t i = 0; i < ps->n; i++) {
        const umg_mta_path_t *p = &ps->p[i];
        uint32_t mask = 0;
        for (uint32_t j = 0; j < p->n; j++) {
            mask |= 1u << p->ch[j];
        }
        if (!p->converted || mask == 0) {
            continue;
        }
        for (uint32_t c = 0; c < k; c++) {
            if (mask & (1u << c)) {
                phi[c] += p->value / __builtin_popcount(mask);
            }
        }
    }
}

static void test_shapley(void **state)
{
    (void)state;
    pathset_t *ps = calloc(1, sizeof(*ps));
    double cr[20], total;
    umg_mta_opts_t o;
    umg_mta_opts_default(&o);

    /*
     * Hand-computed RATE game, channels A and B, 10 journeys each of {A}, {B}, {A,B}
     * converting 2, 1 and 4 times; no journey without a touch, so v({}) = 0.
     * v(A) = 2/10 = 0.2, v(B) = 1/10 = 0.1, v(AB) = (2 + 1 + 4)/30 = 7/30.
     * phi_A = 1/2 (v(A) - v({})) + 1/2 (v(AB) - v(B)) = 1/2 (0.2 + 4/30) = 1/6
     * phi_B = 1/2 (v(B) - v({})) + 1/2 (v(AB) - v(A)) = 1/2 (0.1 + 1/30) = 1/15
     * (the sum is v(AB) = 7/30). The 7 conversions: A 7 * (1/6)/(7/30) = 5,
     * B 7 * (1/15)/(7/30) = 2.
     */
    add_paths(ps, "A", 2, 1);
    add_paths(ps, "A", 8, 0);
    add_paths(ps, "B", 1, 1);
    add_paths(ps, "B", 9, 0);
    add_paths(ps, "A>B", 4, 1);
    add_paths(ps, "B>A", 6, 0);
    assert_int_equal(umg_mta_credit(UMG_MTA_SHAPLEY, &o, ps->p, ps->n, 2, cr, &total), UMG_OK);
    CLOSE(total, 7);
    CLOSE(cr[0], 5);
    CLOSE(cr[1], 2);
    /* Ten journeys without a touch, four converting: v({}) = 0.4 and every v(S) pools them in.
     * v(A) = 6/20 = 0.3, v(B) = 5/20 = 0.25, v(AB) = 11/40 = 0.275.
     * phi_A = 1/2 (0.3 - 0.4) + 1/2 (0.275 - 0.25) = -0.0375,
     * phi_B = 1/2 (0.25 - 0.4) + 1/2 (0.275 - 0.3) = -0.0875:
     * no channel beats no touch at all, so each journey's value goes to its channels equally:
     * A 2 + 4/2 = 4, B 1 + 4/2 = 3 (the 4 conversions without a touch are nobody's). */
    for (int i = 0; i < 4; i++) {
        add_path(ps, "", 1, 1);
    }
    add_paths(ps, "", 6, 0);
    assert_int_equal(umg_mta_credit(UMG_MTA_SHAPLEY, &o, ps->p, ps->n, 2, cr, &total), UMG_OK);
    CLOSE(total, 7);
    CLOSE(cr[0], 4);
    CLOSE(cr[1], 3);

    /*
     * Worked example from the literature: "Data-Driven Marketing Attribution" (Towards Data
     * Science, https://towardsdatascience.com/data-driven-marketing-attribution-1a28d2e613a0,
     * notebook github.com/tomgorb/misc "Data Driven Attribution.ipynb"), channels Facebook (A),
     * Organic (B), LinkedIn (C); 100 converting journeys: F 20, O 10, L 17, F+O 17, F+L 30,
     * O+L 0, F+O+L 6. Its worth v(S) sums the conversion shares of the coalitions inside S,
     * which is the SUBSET game (Zhao et al. 2018, arXiv:1804.05327); the Shapley value splits
     * each coalition's conversions equally among its members:
     * F = 20 + 17/2 + 30/2 + 6/3 = 45.5, O = 10 + 17/2 + 6/3 = 20.5, L = 17 + 30/2 + 6/3 = 34,
     * i.e. the article's 0.455, 0.205 and 0.34 of the conversions.
     */
    ps->n = 0;
    add_paths(ps, "A", 20, 1);
    add_paths(ps, "B", 10, 1);
    add_paths(ps, "C", 17, 1);
    add_paths(ps, "A>B", 17, 1);
    add_paths(ps, "C>A", 30, 1);
    add_paths(ps, "B>C>A", 6, 1);
    o.shapley_game = UMG_MTA_SHAPLEY_SUBSET;
    assert_int_equal(umg_mta_credit(UMG_MTA_SHAPLEY, &o, ps->p, ps->n, 3, cr, &total), UMG_OK);
    CLOSE(cr[0], 45.5);
    CLOSE(cr[1], 20.5);
    CLOSE(cr[2], 34);
    /*
     * The same journeys in the RATE game: every journey converts, so v(S) = 1 for every S
     * holding a journey, i.e. every non-empty S, and v({}) = 0. The only non-zero marginal
     * contribution is joining the empty coalition, weight 0! 2! / 3! = 1/3, for each channel:
     * phi = 1/3 each, 100/3 conversions each. Without non-converting journeys the rate game
     * cannot tell the channels apart.
     */
    o.shapley_game = UMG_MTA_SHAPLEY_RATE;
    assert_int_equal(umg_mta_credit(UMG_MTA_SHAPLEY, &o, ps->p, ps->n, 3, cr, &total), UMG_OK);
    CLOSE(cr[0], 100.0 / 3);
    CLOSE(cr[1], 100.0 / 3);
    CLOSE(cr[2], 100.0 / 3);
    free(ps);

    /* Exact enumeration agrees with brute force on random data (revenue; and journeys with lift). */
    for (int c = 0; c < 4; c++) {
        uint32_t k = c % 2 ? 6 : 4;
        pathset_t *r = c < 2 ? random_paths(555 + (uint64_t)c, k, 600, 1) : lift_paths(555 + (uint64_t)c, k, 600);
        double phi[20];
        assert_int_equal(umg_mta_credit(UMG_MTA_SHAPLEY, NULL, r->p, r->n, k, cr, &total), UMG_OK);
        shapley_oracle(r, k, phi);
        scale_positive(r, phi, k, total);
        for (uint32_t i = 0; i < k; i++) {
            CLOSE(cr[i], phi[i]);
        }
        free(r);
    }

    /* Above the exact limit: sampled with a seed, close to the exact value, repeatable. */
    pathset_t *r = lift_paths(999, 17, 4000);
    double exact[17], a[17], b[17], d[17];
    umg_mta_opts_default(&o);
    o.shapley_exact_max = 20;
    assert_int_equal(umg_mta_credit(UMG_MTA_SHAPLEY, &o, r->p, r->n, 17, exact, &total), UMG_OK);
    o.shapley_exact_max = 15;
    o.shapley_samples = 20000;
    assert_int_equal(umg_mta_credit(UMG_MTA_SHAPLEY, &o, r->p, r->n, 17, a, &total), UMG_OK);
    assert_int_equal(umg_mta_credit(UMG_MTA_SHAPLEY, &o, r->p, r->n, 17, b, &total), UMG_OK);
    assert_memory_equal(a, b, sizeof(a));
    o.seed = 2;
    assert_int_equal(umg_mta_credit(UMG_MTA_SHAPLEY, &o, r->p, r->n, 17, d, &total), UMG_OK);
    assert_memory_not_equal(a, d, sizeof(a));
    double worst = 0;
    for (uint32_t i = 0; i < 17; i++) {
        worst = fmax(worst, fabs(a[i] - exact[i]) / total);
    }
    assert_true(worst < 0.01); /* within 1% of the conversions for every channel */
    /* The channels with more lift (c % 5 == 4: 10%) earn more than those with the least (2%). */
    assert_true(exact[4] + exact[9] + exact[14] > 2 * (exact[0] + exact[5] + exact[10]));
    /* The SUBSET game above the limit uses its closed form: the equal split over distinct channels. */
    o.shapley_game = UMG_MTA_SHAPLEY_SUBSET;
    assert_int_equal(umg_mta_credit(UMG_MTA_SHAPLEY, &o, r->p, r->n, 17, a, &total), UMG_OK);
    o.shapley_exact_max = 20;
    assert_int_equal(umg_mta_credit(UMG_MTA_SHAPLEY, &o, r->p, r->n, 17, b, &total), UMG_OK);
    for (uint32_t i = 0; i < 17; i++) {
        CLOSE(a[i], b[i]);
    }
    free(r);
}

static void test_mta_errors(void **state)
{
    (void)state;
    uint32_t ch[3] = {0, 1, 5};
    umg_mta_path_t p = {ch, NULL, 3, 1, 1};
    double cr[6] = {42, 42, 42, 42, 42, 42}, total = 42;
    assert_int_equal(umg_mta_credit(UMG_MTA_LINEAR, NULL, &p, 1, 5, cr, &total), UMG_EINVAL);     /* channel 5 >= 5 */
    assert_int_equal(umg_mta_credit(UMG_MTA_TIME_DECAY, NULL, &p, 1, 6, cr, &total), UMG_EINVAL); /* no times */
    p.value = -1;
    assert_int_equal(umg_mta_credit(UMG_MTA_LINEAR, NULL, &p, 1, 6, cr, &total), UMG_EINVAL);
    p.value = NAN;
    assert_int_equal(umg_mta_credit(UMG_MTA_LINEAR, NULL, &p, 1, 6, cr, &total), UMG_EINVAL);
    assert_true(cr[0] == 42 && total == 42); /* untouched on error */
    umg_mta_model_t m;
    assert_int_equal(umg_mta_model_parse(sl("time_decay"), &m), UMG_OK);
    assert_int_equal(m, UMG_MTA_TIME_DECAY);
    assert_int_equal(umg_mta_model_parse(sl("shapley"), &m), UMG_OK);
    assert_int_equal(umg_mta_model_parse(sl("banzhaf"), &m), UMG_EINVAL);
    /* No conversions: zero credit, zero total. */
    p.value = 1;
    p.converted = 0;
    assert_int_equal(umg_mta_credit(UMG_MTA_MARKOV, NULL, &p, 1, 6, cr, &total), UMG_OK);
    assert_true(sum_of(cr, 6) == 0 && total == 0);

    /* Out of memory at every allocation: UMG_ENOMEM, nothing leaked, outputs untouched. */
    pathset_t *r = random_paths(31337, 18, 500, 1);
    for (int model = UMG_MTA_MARKOV; model <= UMG_MTA_SHAPLEY; model++) {
        for (int exact = 0; exact <= 1; exact++) {
            umg_mta_opts_t o;
            umg_mta_opts_default(&o);
            o.shapley_exact_max = exact ? 20 : 15;
            o.shapley_samples = 50;
            double c18[18];
            int ok = 0;
            for (long n = 1; n < 200 && !ok; n++) {
                size_t before = umg_alloc_bytes();
                c18[0] = 42;
                umg_alloc_fail_after(n);
                int rc = umg_mta_credit((umg_mta_model_t)model, &o, r->p, r->n, 18, c18, &total);
                umg_alloc_fail_after(0);
                assert_int_equal(umg_alloc_bytes(), before);
                if (rc == UMG_OK) {
                    ok = 1;
                } else {
                    assert_int_equal(rc, UMG_ENOMEM);
                    assert_true(c18[0] == 42);
                }
            }
            assert_true(ok);
        }
    }
    free(r);
}

int main(void)
{
    umg_log_min_level = UMG_LOG_ERROR;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_install_scenarios),
        cmocka_unit_test(test_device_stories),
        cmocka_unit_test(test_device_counters),
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_identifiers),
        cmocka_unit_test(test_user_agents),
        cmocka_unit_test(test_replay_equality),
        cmocka_unit_test(test_mta_credit_sums),
        cmocka_unit_test(test_mta_rule_invariants),
        cmocka_unit_test(test_markov),
        cmocka_unit_test(test_shapley),
        cmocka_unit_test(test_mta_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
