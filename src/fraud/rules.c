/*
 * rules.c - fraud reason codes, per-app settings (defaults, JSON in and
 * out), the windowed counters and the small pure checks (umg_fraud.h).
 */
#include "umg_fraud.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "umg_json.h"

static const char *const reason_names[UMG_FR_N] = {
    [UMG_FR_NONE] = "",
    [UMG_FR_CLICK_INJECTION] = "click_injection",
    [UMG_FR_CLICK_SPAM] = "click_spam",
    [UMG_FR_CLICK_FLOODING] = "click_flooding",
    [UMG_FR_SDK_SPOOFING] = "sdk_spoofing",
    [UMG_FR_BLOCKED_IP] = "blocked_ip",
    [UMG_FR_BOT_USER_AGENT] = "bot_user_agent",
    [UMG_FR_DEVICE_FARM] = "device_farm",
    [UMG_FR_TIME_ANOMALY] = "time_anomaly",
    [UMG_FR_MODEL] = "model",
};

const char *umg_fraud_reason_name(unsigned r)
{
    return r < UMG_FR_N ? reason_names[r] : "";
}

int umg_fraud_reason_parse(umg_slice_t s, unsigned *out)
{
    for (unsigned r = 1; r < UMG_FR_N; r++) {
        if (strlen(reason_names[r]) == s.len && memcmp(reason_names[r], s.ptr, s.len) == 0) {
            *out = r;
            return UMG_OK;
        }
    }
    return UMG_ENOENT;
}

/* ------------------------------------------------------------- settings */

const umg_fraud_param_def_t umg_fraud_params[UMG_FP_N] = {
    [UMG_FP_INJ_MIN_CTIT_S] = {"min_ctit_s", UMG_FR_CLICK_INJECTION, 1, 10, 0, 3600,
                               "a click less than this many seconds before the install is injected"},
    [UMG_FP_INJ_INSTALL_BEGIN] = {"check_install_begin", UMG_FR_CLICK_INJECTION, 1, 1, 0, 1,
                                  "a click later than the Play referrer's install_begin_ts is injected"},
    [UMG_FP_SPAM_DEVICE_HOUR] = {"max_clicks_per_device_hour", UMG_FR_CLICK_SPAM, 1, 10, 1, 1000000,
                                 "clicks of one device id in one clock hour; the ones past it are rejected"},
    [UMG_FP_SPAM_IP_MINUTE] = {"max_clicks_per_ip_minute", UMG_FR_CLICK_SPAM, 1, 30, 1, 1000000,
                               "clicks from one IP in one clock minute; the ones past it are rejected"},
    [UMG_FP_FLOOD_WINDOW_DAYS] = {"window_days", UMG_FR_CLICK_FLOODING, 1, 7, 1, 30,
                                  "trailing days of a source/site's clicks and installs"},
    [UMG_FP_FLOOD_MIN_INSTALLS] = {"min_installs", UMG_FR_CLICK_FLOODING, 1, 20, 1, 1000000,
                                   "installs a source/site needs in the window before it is judged"},
    [UMG_FP_FLOOD_MIN_LONG_SHARE] = {"min_long_ctit_share", UMG_FR_CLICK_FLOODING, 0, 0.5, 0, 1,
                                     "share of the installs with a long click-to-install time ..."},
    [UMG_FP_FLOOD_MAX_CTI_RATE] = {"max_click_to_install_rate", UMG_FR_CLICK_FLOODING, 0, 0.01, 0, 1,
                                   "... with installs per click at most this: the source/site floods"},
    [UMG_FP_BOT_EMPTY_UA] = {"reject_empty_user_agent", UMG_FR_BOT_USER_AGENT, 1, 1, 0, 1,
                             "a click link opened without a User-Agent is a bot"},
    [UMG_FP_FARM_IP_HOUR] = {"max_installs_per_ip_hour", UMG_FR_DEVICE_FARM, 1, 20, 1, 1000000,
                             "installs from one IP in one clock hour; the ones past it are rejected"},
    [UMG_FP_FARM_FP_DAY] = {"max_installs_per_fingerprint_day", UMG_FR_DEVICE_FARM, 1, 10, 1, 1000000,
                            "installs from one IP + User-Agent in one UTC day; the ones past it are rejected"},
    [UMG_FP_TIME_BEFORE_INSTALL_S] = {"max_before_install_s", UMG_FR_TIME_ANOMALY, 1, 3600, 0, 86400 * 30,
                                      "an event dated more than this before its device's install"},
    [UMG_FP_TIME_BACKWARDS_S] = {"max_backwards_s", UMG_FR_TIME_ANOMALY, 1, 86400, 0, 86400 * 30,
                                 "an event dated more than this before the device's latest one"},
    [UMG_FP_TIME_FUTURE_S] = {"max_future_s", UMG_FR_TIME_ANOMALY, 1, 120, 0, 600,
                              "an install dated more than this after the server received it"},
};

void umg_fraud_settings_default(umg_fraud_settings_t *s)
{
    memset(s, 0, sizeof(*s));
    for (unsigned r = 1; r < UMG_FR_N; r++) {
        s->rule[r].enabled = 1;
        s->rule[r].action = UMG_FA_REJECT;
    }
    s->rule[UMG_FR_CLICK_FLOODING].action = UMG_FA_FLAG;
    s->rule[UMG_FR_TIME_ANOMALY].action = UMG_FA_FLAG;
    s->rule[UMG_FR_SDK_SPOOFING].enabled = 0; /* the app's require_signature */
    s->rule[UMG_FR_MODEL].enabled = 0;        /* model.mode says */
    for (unsigned i = 0; i < UMG_FP_N; i++) {
        s->p[i] = umg_fraud_params[i].def;
    }
    s->model_mode = UMG_FM_OFF;
    s->model_threshold = 0.9;
    s->model_shadow_sample = 1.0;
}

typedef struct sctx_s {
    umg_fraud_settings_t s;
    char *field;
    size_t fieldcap;
    char *msg;
    size_t msgcap;
    unsigned rule;
} sctx_t;

static int bad(sctx_t *c, const char *path, const char *fmt, const char *a)
{
    snprintf(c->field, c->fieldcap, "%s", path);
    snprintf(c->msg, c->msgcap, fmt, a);
    return UMG_EINVAL;
}

static int get_num(umg_json_val_t v, double *out)
{
    umg_json_type_t t = umg_json_type(v);
    if (t == UMG_JSON_INT64) {
        int64_t i;
        umg_json_get_int64(v, &i);
        *out = (double)i;
        return UMG_OK;
    }
    if (t == UMG_JSON_UINT64) {
        uint64_t u;
        umg_json_get_uint64(v, &u);
        *out = (double)u;
        return UMG_OK;
    }
    if (t == UMG_JSON_DOUBLE && umg_json_get_double(v, out) == UMG_JSON_OK && isfinite(*out)) {
        return UMG_OK;
    }
    return UMG_EINVAL;
}

static int rule_member(void *ctx, const char *key, size_t klen, umg_json_val_t v)
{
    sctx_t *c = ctx;
    char path[128];
    snprintf(path, sizeof(path), "rules.%s.%.*s", reason_names[c->rule], (int)UMG_MIN(klen, 64), key);
    umg_slice_t k = umg_slice(key, klen);
    if (umg_slice_eq(k, "enabled")) {
        int b;
        if (umg_json_type(v) != UMG_JSON_BOOL || umg_json_get_bool(v, &b) != UMG_JSON_OK) {
            return bad(c, path, "%s must be true or false", "enabled");
        }
        c->s.rule[c->rule].enabled = (uint8_t)(b != 0);
        return UMG_OK;
    }
    if (umg_slice_eq(k, "action")) {
        const char *p;
        size_t n;
        if (c->rule == UMG_FR_SDK_SPOOFING) {
            return bad(c, path, "%s: unsigned requests are always refused (401)", "sdk_spoofing has no action");
        }
        if (umg_json_get_string(v, &p, &n) != UMG_JSON_OK) {
            return bad(c, path, "%s must be \"reject\" or \"flag\"", "action");
        }
        umg_slice_t a = umg_slice(p, n);
        if (umg_slice_eq(a, "reject")) {
            c->s.rule[c->rule].action = UMG_FA_REJECT;
        } else if (umg_slice_eq(a, "flag")) {
            c->s.rule[c->rule].action = UMG_FA_FLAG;
        } else {
            return bad(c, path, "%s must be \"reject\" or \"flag\"", "action");
        }
        return UMG_OK;
    }
    for (unsigned i = 0; i < UMG_FP_N; i++) {
        const umg_fraud_param_def_t *d = &umg_fraud_params[i];
        if (d->rule != c->rule || strlen(d->name) != klen || memcmp(d->name, key, klen) != 0) {
            continue;
        }
        double x;
        int b;
        if (d->is_int && d->max == 1 && d->min == 0 && umg_json_type(v) == UMG_JSON_BOOL &&
            umg_json_get_bool(v, &b) == UMG_JSON_OK) {
            x = b != 0;
        } else if (get_num(v, &x) != UMG_OK) {
            return bad(c, path, "%s must be a number", d->name);
        }
        if (x < d->min || x > d->max || (d->is_int && x != floor(x))) {
            char m[160];
            snprintf(m, sizeof(m), "%s must be %s from %g to %g", d->name, d->is_int ? "an integer" : "a number",
                     d->min, d->max);
            return bad(c, path, "%s", m);
        }
        c->s.p[i] = x;
        return UMG_OK;
    }
    return bad(c, path, "unknown member %s", path);
}

static int rules_member(void *ctx, const char *key, size_t klen, umg_json_val_t v)
{
    sctx_t *c = ctx;
    char path[96];
    snprintf(path, sizeof(path), "rules.%.*s", (int)UMG_MIN(klen, 64), key);
    unsigned r;
    if (umg_fraud_reason_parse(umg_slice(key, klen), &r) != UMG_OK || r == UMG_FR_MODEL) {
        return bad(c, path, "unknown rule %s", path + 6);
    }
    if (umg_json_type(v) != UMG_JSON_OBJECT) {
        return bad(c, path, "%s must be an object", path);
    }
    c->rule = r;
    return umg_json_object_foreach(v, rule_member, c);
}

static int model_member(void *ctx, const char *key, size_t klen, umg_json_val_t v)
{
    sctx_t *c = ctx;
    char path[96];
    snprintf(path, sizeof(path), "model.%.*s", (int)UMG_MIN(klen, 64), key);
    umg_slice_t k = umg_slice(key, klen);
    if (umg_slice_eq(k, "mode")) {
        const char *p;
        size_t n;
        if (umg_json_get_string(v, &p, &n) != UMG_JSON_OK) {
            return bad(c, path, "%s must be \"off\", \"shadow\" or \"enforce\"", "mode");
        }
        umg_slice_t m = umg_slice(p, n);
        if (umg_slice_eq(m, "off")) {
            c->s.model_mode = UMG_FM_OFF;
        } else if (umg_slice_eq(m, "shadow")) {
            c->s.model_mode = UMG_FM_SHADOW;
        } else if (umg_slice_eq(m, "enforce")) {
            c->s.model_mode = UMG_FM_ENFORCE;
        } else {
            return bad(c, path, "%s must be \"off\", \"shadow\" or \"enforce\"", "mode");
        }
        return UMG_OK;
    }
    double x;
    if (umg_slice_eq(k, "threshold") || umg_slice_eq(k, "shadow_sample")) {
        if (get_num(v, &x) != UMG_OK || x < 0 || x > 1) {
            return bad(c, path, "%s must be a number from 0 to 1", path);
        }
        *(k.ptr[0] == 't' ? &c->s.model_threshold : &c->s.model_shadow_sample) = x;
        return UMG_OK;
    }
    return bad(c, path, "unknown member %s", path);
}

static int top_member(void *ctx, const char *key, size_t klen, umg_json_val_t v)
{
    sctx_t *c = ctx;
    umg_slice_t k = umg_slice(key, klen);
    if (umg_slice_eq(k, "rules") || umg_slice_eq(k, "model")) {
        if (umg_json_type(v) != UMG_JSON_OBJECT) {
            return bad(c, key[0] == 'r' ? "rules" : "model", "%s must be an object", key[0] == 'r' ? "rules" : "model");
        }
        return umg_json_object_foreach(v, key[0] == 'r' ? rules_member : model_member, c);
    }
    char path[72];
    snprintf(path, sizeof(path), "%.*s", (int)UMG_MIN(klen, 64), key);
    return bad(c, path, "unknown member %s (expected rules, model)", path);
}

int umg_fraud_settings_apply_json(umg_fraud_settings_t *s, const char *json, size_t len, char *field, size_t fieldcap,
                                  char *msg, size_t msgcap)
{
    sctx_t c = {.s = *s, .field = field, .fieldcap = fieldcap, .msg = msg, .msgcap = msgcap};
    snprintf(field, fieldcap, "%s", "");
    umg_json_parser_t *jp;
    if (umg_json_parser_new(1 << 20, &jp) != UMG_JSON_OK) {
        return UMG_ENOMEM;
    }
    umg_json_val_t root;
    int rc;
    if (umg_json_parse(jp, json, len, &root) != UMG_JSON_OK || umg_json_type(root) != UMG_JSON_OBJECT) {
        snprintf(msg, msgcap, "the body must be a JSON object");
        rc = UMG_EPARSE;
    } else {
        rc = umg_json_object_foreach(root, top_member, &c);
        if (rc != UMG_OK && rc != UMG_EINVAL) {
            snprintf(msg, msgcap, "the body must be a JSON object");
            rc = UMG_EPARSE;
        }
    }
    umg_json_parser_free(jp);
    if (rc == UMG_OK) {
        *s = c.s;
    }
    return rc;
}

/* The shortest of %.15g and %.17g that reads back as x. */
static const char *num(char buf[32], double x)
{
    snprintf(buf, 32, "%.15g", x);
    if (strtod(buf, NULL) != x) {
        snprintf(buf, 32, "%.17g", x);
    }
    return buf;
}

int umg_fraud_settings_json(const umg_fraud_settings_t *s, umg_buf_t *out)
{
    char b1[32], b2[32];
    static const char *const modes[] = {"off", "shadow", "enforce"};
    int rc = umg_buf_append(out, "{\"rules\":{", 10);
    for (unsigned r = 1; r < UMG_FR_N && rc == UMG_OK; r++) {
        if (r == UMG_FR_MODEL) {
            continue;
        }
        rc = umg_buf_printf(out, "%s\"%s\":{\"enabled\":%s", r > 1 ? "," : "", reason_names[r],
                            s->rule[r].enabled ? "true" : "false");
        if (r != UMG_FR_SDK_SPOOFING) {
            rc = rc ? rc
                    : umg_buf_printf(out, ",\"action\":\"%s\"", s->rule[r].action == UMG_FA_FLAG ? "flag" : "reject");
        }
        for (unsigned i = 0; i < UMG_FP_N && rc == UMG_OK; i++) {
            const umg_fraud_param_def_t *d = &umg_fraud_params[i];
            if (d->rule != r) {
                continue;
            }
            if (d->is_int && d->min == 0 && d->max == 1) {
                rc = umg_buf_printf(out, ",\"%s\":%s", d->name, s->p[i] != 0 ? "true" : "false");
            } else if (d->is_int) {
                rc = umg_buf_printf(out, ",\"%s\":%lld", d->name, (long long)s->p[i]);
            } else {
                rc = umg_buf_printf(out, ",\"%s\":%s", d->name, num(b1, s->p[i]));
            }
        }
        rc = rc ? rc : umg_buf_putc(out, '}');
    }
    return rc ? rc
              : umg_buf_printf(out, "},\"model\":{\"mode\":\"%s\",\"threshold\":%s,\"shadow_sample\":%s}}",
                               modes[s->model_mode < 3 ? s->model_mode : 0], num(b1, s->model_threshold),
                               num(b2, s->model_shadow_sample));
}

/* -------------------------------------------------------------- windows */

static const int64_t window_len_s[UMG_FW_N] = {
    [UMG_FW_CLICK_DEVICE_HOUR] = 3600, [UMG_FW_CLICK_IP_MINUTE] = 60,    [UMG_FW_CLICK_IP_HOUR] = 3600,
    [UMG_FW_INSTALL_IP_HOUR] = 3600,   [UMG_FW_INSTALL_NET_HOUR] = 3600, [UMG_FW_INSTALL_FP_DAY] = 86400,
};

int64_t umg_fraud_window_us(umg_fraud_window_t w)
{
    return window_len_s[w < UMG_FW_N ? w : 0] * 1000000;
}

/*
 * One counter: 16 bytes, four to a cache line. tag is a 64-bit hash of (window, app, key, bucket), never 0
 * (0 marks an empty slot): two counters share one only if their hashes collide, about once in 2^64 pairs.
 * end_min is the bucket's end in minutes since 1970, for dropping expired buckets.
 */
typedef struct cent_s {
    uint64_t tag;
    uint32_t count;
    int32_t end_min;
} cent_t;

struct umg_fraud_counts_s {
    cent_t *t;
    size_t cap, n; /* cap a power of two */
    int64_t latest_recv_us;
    int64_t horizon_us;
};

int umg_fraud_counts_new(int64_t horizon_us, umg_fraud_counts_t **out)
{
    if (horizon_us < UMG_FRAUD_HORIZON_MIN_US) {
        return UMG_EINVAL;
    }
    umg_fraud_counts_t *c = umg_calloc(1, sizeof(*c));
    if (c == NULL) {
        return UMG_ENOMEM;
    }
    c->horizon_us = horizon_us;
    c->cap = 1024;
    c->t = umg_calloc(c->cap, sizeof(cent_t));
    if (c->t == NULL) {
        umg_free(c);
        return UMG_ENOMEM;
    }
    *out = c;
    return UMG_OK;
}

void umg_fraud_counts_free(umg_fraud_counts_t *c)
{
    if (c != NULL) {
        umg_free(c->t);
        umg_free(c);
    }
}

void umg_fraud_counts_clear(umg_fraud_counts_t *c)
{
    memset(c->t, 0, c->cap * sizeof(cent_t));
    c->n = 0;
    c->latest_recv_us = 0;
}

static int64_t bucket_of(umg_fraud_window_t w, int64_t ts_us)
{
    int64_t len = umg_fraud_window_us(w);
    return ts_us / len - (ts_us % len != 0 && ts_us < 0);
}

static uint64_t ctag(umg_fraud_window_t w, uint32_t app, uint64_t key, int64_t bucket)
{
    uint64_t h = key ^ ((uint64_t)app << 32 | (uint32_t)bucket) * UINT64_C(0x9e3779b97f4a7c15);
    h ^= ((uint64_t)w << 56 ^ (uint64_t)bucket >> 32) * UINT64_C(0xc2b2ae3d27d4eb4f);
    h ^= h >> 31;
    h *= UINT64_C(0xbf58476d1ce4e5b9);
    h ^= h >> 29;
    return h ? h : 1;
}

static cent_t *slot(cent_t *t, size_t cap, uint64_t tag)
{
    for (size_t i = (size_t)tag & (cap - 1);; i = (i + 1) & (cap - 1)) {
        if (t[i].tag == tag || t[i].tag == 0) {
            return &t[i];
        }
    }
}

/* Rebuilds the table without expired buckets, at twice the size when it stays over a quarter full. */
static int rebuild(umg_fraud_counts_t *c)
{
    int64_t horizon_min = (c->latest_recv_us - c->horizon_us) / 60000000 - 20;
    size_t live = 0;
    for (size_t i = 0; i < c->cap; i++) {
        live += c->t[i].tag != 0 && c->t[i].end_min >= horizon_min;
    }
    size_t cap = c->cap;
    while (live * 4 > cap) {
        cap *= 2;
    }
    cent_t *t = umg_calloc_huge(cap, sizeof(cent_t));
    if (t == NULL) {
        return UMG_ENOMEM;
    }
    for (size_t i = 0; i < c->cap; i++) {
        const cent_t *e = &c->t[i];
        if (e->tag != 0 && e->end_min >= horizon_min) {
            *slot(t, cap, e->tag) = *e;
        }
    }
    umg_free(c->t);
    c->t = t;
    c->cap = cap;
    c->n = live;
    return UMG_OK;
}

uint32_t umg_fraud_counts_add(umg_fraud_counts_t *c, umg_fraud_window_t w, uint32_t app, uint64_t key, int64_t ts_us,
                              int64_t recv_us, int *oom)
{
    if (key == 0 || w >= UMG_FW_N) {
        return 0;
    }
    if (recv_us > c->latest_recv_us) {
        c->latest_recv_us = recv_us;
    }
    int64_t b = bucket_of(w, ts_us);
    uint64_t tag = ctag(w, app, key, b);
    cent_t *e = slot(c->t, c->cap, tag);
    if (e->tag == 0) {
        if ((c->n + 1) * 2 > c->cap) { /* at most half full: linear probing stays short */
            if (rebuild(c) != UMG_OK) {
                *oom = 1;
                return 0;
            }
            e = slot(c->t, c->cap, tag);
        }
        *e = (cent_t){.tag = tag, .end_min = (int32_t)((b + 1) * (umg_fraud_window_us(w) / 60000000))};
        c->n++;
    }
    return ++e->count;
}

void umg_fraud_counts_prefetch(const umg_fraud_counts_t *c, umg_fraud_window_t w, uint32_t app, uint64_t key,
                               int64_t ts_us)
{
    if (key != 0 && w < UMG_FW_N) {
        __builtin_prefetch(&c->t[ctag(w, app, key, bucket_of(w, ts_us)) & (c->cap - 1)], 1);
    }
}

uint32_t umg_fraud_counts_get(const umg_fraud_counts_t *c, umg_fraud_window_t w, uint32_t app, uint64_t key,
                              int64_t ts_us)
{
    if (key == 0 || w >= UMG_FW_N) {
        return 0;
    }
    return slot(c->t, c->cap, ctag(w, app, key, bucket_of(w, ts_us)))->count;
}

void umg_fraud_counts_stats(const umg_fraud_counts_t *c, size_t *entries, size_t *bytes)
{
    *entries = c->n;
    *bytes = c->cap * sizeof(cent_t) + sizeof(*c);
}

uint64_t umg_fraud_net_key(umg_slice_t ip)
{
    char buf[64];
    if (ip.len == 0 || ip.len >= sizeof(buf)) {
        return 0;
    }
    memcpy(buf, ip.ptr, ip.len);
    buf[ip.len] = '\0';
    uint8_t a[16];
    if (inet_pton(AF_INET, buf, a) == 1) {
        return umg_hash64(a, 3, 4); /* the /24 */
    }
    if (inet_pton(AF_INET6, buf, a) != 1) {
        return 0;
    }
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(a, mapped, 12) == 0) {
        return umg_hash64(a + 12, 3, 4);
    }
    return umg_hash64(a, 8, 6); /* the /64 */
}

/* ------------------------------------------------------- flood, buckets */

int umg_fraud_flood_flagged(const umg_fraud_settings_t *s, const umg_fraud_flood_t *f)
{
    if (f->installs < (int64_t)s->p[UMG_FP_FLOOD_MIN_INSTALLS] || f->installs <= 0) {
        return 0;
    }
    double long_share = (double)f->long_installs / (double)f->installs;
    double rate = f->clicks > 0 ? (double)f->installs / (double)f->clicks : 1.0;
    return long_share >= s->p[UMG_FP_FLOOD_MIN_LONG_SHARE] && rate <= s->p[UMG_FP_FLOOD_MAX_CTI_RATE];
}

const int64_t umg_fraud_ctit_bounds_s[UMG_FRAUD_CTIT_BUCKETS - 1] = {10, 60, 600, 3600, 86400, 604800};

unsigned umg_fraud_ctit_bucket(int64_t ctit_us)
{
    unsigned b = 0;
    while (b < UMG_FRAUD_CTIT_BUCKETS - 1 && ctit_us >= umg_fraud_ctit_bounds_s[b] * 1000000) {
        b++;
    }
    return b;
}

unsigned umg_fraud_score_bucket(double score)
{
    if (!(score > 0)) {
        return 0;
    }
    unsigned b = (unsigned)(score * UMG_FRAUD_SCORE_BUCKETS);
    return b < UMG_FRAUD_SCORE_BUCKETS ? b : UMG_FRAUD_SCORE_BUCKETS - 1;
}

int umg_fraud_in_sample(const umg_uuid_t *event_id, double share)
{
    if (share >= 1.0) {
        return 1;
    }
    uint64_t h = umg_hash64(event_id, sizeof(*event_id), UINT64_C(0x5a4d504c45));
    return (double)(h >> 11) * 0x1p-53 < share;
}
