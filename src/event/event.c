/*
 * event.c - owns the event model's JSON side: decoding request bodies (one
 * event or {"events": [...]}) through the simdjson shim, validating every
 * field with a per-field error (code + JSON path), and the canonical one-line
 * JSON encoding that the event log stores and the export endpoint returns.
 * docs/events.md describes every field and rule implemented here.
 *
 * Hot path: one decoder per thread keeps the parser, its padded input copy
 * and a small arena across calls, so decoding, validating and encoding an
 * event allocates nothing once the buffers have grown.
 *
 * Invalid UTF-8: simdjson refuses a whole document with a UTF-8 error, but a
 * batch must only lose the events that carry bad bytes. The decoder then
 * replaces every byte of every invalid sequence in its own copy with 0x7F
 * (DEL) and parses again; in that mode a string or key containing 0x7F is
 * reported as invalid_utf8 for its field.
 */
#include "umg_event.h"
#include "umg_codec_int.h"
#include "umg_json.h"

#include <arpa/inet.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* ------------------------------------------------------------ error codes */

static const char E_REQUIRED[] = "required";
static const char E_INVALID_TYPE[] = "invalid_type";
static const char E_INVALID_VALUE[] = "invalid_value";
static const char E_INVALID_UTF8[] = "invalid_utf8";
static const char E_TOO_LONG[] = "too_long";
static const char E_UNKNOWN_FIELD[] = "unknown_field";
static const char E_TS_IN_FUTURE[] = "ts_in_future";
static const char E_TS_TOO_OLD[] = "ts_too_old";
static const char E_NO_DEVICE_ID[] = "no_device_id";
static const char E_TOO_MANY_PROPS[] = "too_many_props";

/* The byte that marks a repaired invalid UTF-8 sequence. */

/* Timestamps must fit RFC 3339's four-digit years: 1970-01-01 .. 9999-12-31T23:59:59.999999Z. */
#define TS_MAX_US INT64_C(253402300799999999)
#define TS_MAX_MS INT64_C(253402300799999)
/* Longest RFC 3339 text worth parsing ("2026-11-27T10:00:00.123456789+14:00" is 35). */
#define TS_MAX_TEXT 64
/* |revenue| must stay below this. */
#define REVENUE_LIMIT 1e12
/* Arena block for normalized device ids (lowercased UUIDs), reset per body. */
#define DECODER_ARENA_BLOCK 8192

struct umg_event_decoder_s {
    umg_json_parser_t *json;
    umg_json_val_t body; /* the single event object, or the events array */
    size_t n_events;
    int is_batch;
    int parsed;        /* the last parse succeeded; foreach may run */
    int utf8_fallback; /* the input was repaired: 0x7F marks bad bytes */
    umg_arena_t arena; /* lowercased ids; valid until the next parse */
    umg_event_t ev;    /* the event handed to the callback */
};

/* ----------------------------------------------------------- field tables */

enum {
    F_EVENT_ID,
    F_TYPE,
    F_NAME,
    F_TS,
    F_DEVICE,
    F_IP,
    F_USER_AGENT,
    F_USER_ID,
    F_REVENUE,
    F_CURRENCY,
    F_INSTALL_REFERRER,
    F_PROPS,
    F_APP_ID,      /* stored form only */
    F_RECEIVED_AT, /* stored form only */
};

enum {
    D_IDFA,
    D_IDFV,
    D_GAID,
    D_ANDROID_ID,
    D_OAID,
    D_CUSTOM_ID,
    D_PLATFORM,
    D_OS_VERSION,
    D_MODEL,
    D_APP_VERSION,
    D_SDK_VERSION,
    D_LOCALE,
    D_OPT_OUT,
    D_LIMIT_AD_TRACKING,
};

enum { R_REFERRER, R_CLICK_TS, R_INSTALL_BEGIN_TS };

/*
 * Key matchers: a switch on the length, then fixed-size compares that the
 * compiler turns into one or two integer comparisons (no memcmp calls).
 */
#define IS(lit) (memcmp(k, lit, sizeof(lit) - 1) == 0)

static int top_key(const char *k, size_t n)
{
    switch (n) {
    case 2: return IS("ts") ? F_TS : IS("ip") ? F_IP : -1;
    case 4: return IS("type") ? F_TYPE : IS("name") ? F_NAME : -1;
    case 5: return IS("props") ? F_PROPS : -1;
    case 6: return IS("device") ? F_DEVICE : IS("app_id") ? F_APP_ID : -1;
    case 7: return IS("user_id") ? F_USER_ID : IS("revenue") ? F_REVENUE : -1;
    case 8: return IS("event_id") ? F_EVENT_ID : IS("currency") ? F_CURRENCY : -1;
    case 10: return IS("user_agent") ? F_USER_AGENT : -1;
    case 11: return IS("received_at") ? F_RECEIVED_AT : -1;
    case 16: return IS("install_referrer") ? F_INSTALL_REFERRER : -1;
    }
    return -1;
}

static int device_key(const char *k, size_t n)
{
    switch (n) {
    case 4: return IS("gaid") ? D_GAID : IS("idfa") ? D_IDFA : IS("idfv") ? D_IDFV : IS("oaid") ? D_OAID : -1;
    case 5: return IS("model") ? D_MODEL : -1;
    case 6: return IS("locale") ? D_LOCALE : -1;
    case 7: return IS("opt_out") ? D_OPT_OUT : -1;
    case 8: return IS("platform") ? D_PLATFORM : -1;
    case 9: return IS("custom_id") ? D_CUSTOM_ID : -1;
    case 10: return IS("android_id") ? D_ANDROID_ID : IS("os_version") ? D_OS_VERSION : -1;
    case 11: return IS("app_version") ? D_APP_VERSION : IS("sdk_version") ? D_SDK_VERSION : -1;
    case 17: return IS("limit_ad_tracking") ? D_LIMIT_AD_TRACKING : -1;
    }
    return -1;
}

static int referrer_key(const char *k, size_t n)
{
    switch (n) {
    case 8: return IS("referrer") ? R_REFERRER : IS("click_ts") ? R_CLICK_TS : -1;
    case 16: return IS("install_begin_ts") ? R_INSTALL_BEGIN_TS : -1;
    }
    return -1;
}

#undef IS

/*
 * ISO 4217 alphabetic codes: list one as shipped by Debian iso-codes 4.15,
 * plus ZWG (2024) and XCG (2025); XTS (testing) and XXX (no currency) are
 * left out because revenue in them means nothing. Withdrawn codes that are
 * still in that list (HRK, SLL, CUC, ZWL, ANG) stay accepted: old app builds
 * and refunds still send them. Sorted for bsearch.
 */
static const char currency_codes[][4] = {
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN", "BHD", "BIF",
    "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHE", "CHF", "CHW", "CLF",
    "CLP", "CNY", "COP", "COU", "CRC", "CUC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB",
    "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HRK", "HTG", "HUF",
    "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD",
    "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU",
    "MUR", "MVR", "MWK", "MXN", "MXV", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN",
    "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD",
    "SHP", "SLE", "SLL", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY",
    "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "USN", "UYI", "UYU", "UYW", "UZS", "VED", "VES", "VND", "VUV", "WST",
    "XAF", "XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XCD", "XCG", "XDR", "XOF", "XPD", "XPF", "XPT", "XSU", "XUA",
    "YER", "ZAR", "ZMW", "ZWG", "ZWL",
};

static int currency_cmp(const void *a, const void *b)
{
    return memcmp(a, b, 3);
}

int umg_event_currency_known(umg_slice_t code)
{
    const char *s = code.ptr;
    if (code.len != 3) {
        return 0;
    }
    for (size_t i = 0; i < 3; i++) {
        if (s[i] < 'A' || s[i] > 'Z') {
            return 0;
        }
    }
    return bsearch(s, currency_codes, UMG_ARRAY_SIZE(currency_codes), sizeof(currency_codes[0]), currency_cmp) != NULL;
}

/* ------------------------------------------------------------ error paths */

/* Per-event validation state. */
typedef struct vctx_s {
    umg_event_decoder_t *d;
    const umg_event_limits_t *lim;
    umg_event_t *ev;
    umg_event_error_t *err;
    const char *pfx; /* path prefix of the object being walked, NULL at the top */
    uint32_t seen;   /* bit per top-level field */
    uint32_t dev_seen;
    uint32_t ref_seen;
    int has_device;
    int has_currency;
    int rc; /* UMG_ENOMEM when the arena failed; stops the batch */
    int nnulls;
    umg_slice_t nulls[UMG_EVENT_MAX_PROPS]; /* props' names given null (not kept), for the duplicate check */
} vctx_t;

static int failv(vctx_t *c, const char *code, const char *key, size_t klen, const char *fmt, va_list ap)
{
    umg_event_error_t *e = c->err;
    e->code = code;
    build_path(e->field, sizeof(e->field), c->pfx, key, klen);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    return -1;
}

/* Records an error for field key (within the current prefix) and returns -1. */
__attribute__((format(printf, 5, 6))) static int fail(vctx_t *c, const char *code, const char *key, size_t klen,
                                                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    failv(c, code, key, klen, fmt, ap);
    va_end(ap);
    return -1;
}

/* An error on a field named by a literal at the event's top level. */
#define FAIL_TOP(c, code, name, ...) ((c)->pfx = NULL, fail((c), (code), (name), sizeof(name) - 1, __VA_ARGS__))

static void set_body_error(umg_event_error_t *err, const char *code, const char *field, size_t flen, const char *msg)
{
    if (err == NULL) {
        return;
    }
    err->code = code;
    build_path(err->field, sizeof(err->field), NULL, field, flen);
    snprintf(err->message, sizeof(err->message), "%s", msg);
}

/* --------------------------------------------------------- value checks */

static int has_mark(const vctx_t *c, const char *s, size_t n)
{
    return c->d->utf8_fallback && n > 0 && memchr(s, UTF8_MARK, n) != NULL;
}

/*
 * SWAR helpers: eight bytes checked at once in a uint64_t, without branches
 * per byte. SWAR_IN is exact for bytes below 0x80 (no carry crosses a byte);
 * callers reject words with any byte at or above 0x80 separately.
 */

/* Whether s holds a byte below 0x20; overlapping loads cover every length. */
static int has_control(const char *s, size_t n)
{
    if (n >= 8) {
        uint64_t acc = 0;
        for (size_t i = 0; i + 8 < n; i += 8) {
            acc |= swar_ctl(load64(s + i));
        }
        return (acc | swar_ctl(load64(s + n - 8))) != 0;
    }
    if (n >= 4) {
        uint32_t lo, hi;
        memcpy(&lo, s, 4);
        memcpy(&hi, s + n - 4, 4);
        return swar_ctl((uint64_t)lo | (uint64_t)hi << 32) != 0;
    }
    if (n == 0) {
        return 0;
    }
    return ((unsigned char)s[0] < 0x20) | ((unsigned char)s[n / 2] < 0x20) | ((unsigned char)s[n - 1] < 0x20);
}

#define FAIL(c, it, code, ...) fail((c), (code), (it)->key, (it)->klen, __VA_ARGS__)

/*
 * Reads an optional string member; null leaves *out empty. Checks the repair
 * mark, the byte limit and, for identifiers, control characters.
 */
static int get_str(vctx_t *c, const umg_json_item_t *it, size_t max, int id, umg_slice_t *out)
{
    if (it->type != UMG_JSON_STRING) {
        if (it->type == UMG_JSON_NULL) {
            *out = UMG_SLICE_NULL;
            return 0;
        }
        return FAIL(c, it, E_INVALID_TYPE, "must be a string, not %s", json_type_name(it->type));
    }
    if (has_mark(c, it->str, it->len)) {
        return FAIL(c, it, E_INVALID_UTF8, "is not valid UTF-8");
    }
    if (it->len > max) {
        return FAIL(c, it, E_TOO_LONG, "must be at most %zu bytes, not %zu", max, it->len);
    }
    if (id && has_control(it->str, it->len)) {
        return FAIL(c, it, E_INVALID_VALUE, "must not contain control characters");
    }
    *out = umg_slice(it->str, it->len);
    return 0;
}

/*
 * Reads a timestamp: an integer count of Unix milliseconds or an RFC 3339
 * string. *present stays 0 for null.
 */
static int get_ts(vctx_t *c, const umg_json_item_t *it, int64_t *out_us, int *present)
{
    int64_t us;
    *present = 0;
    switch (it->type) {
    case UMG_JSON_NULL: return 0;
    case UMG_JSON_INT64:
        if (it->num.i < 0 || it->num.i > TS_MAX_MS) {
            return FAIL(c, it, E_INVALID_VALUE, "Unix milliseconds out of range (1970 to 9999)");
        }
        us = it->num.i * 1000;
        break;
    case UMG_JSON_UINT64: return FAIL(c, it, E_INVALID_VALUE, "Unix milliseconds out of range (1970 to 9999)");
    case UMG_JSON_STRING:
        if (has_mark(c, it->str, it->len)) {
            return FAIL(c, it, E_INVALID_UTF8, "is not valid UTF-8");
        }
        if (it->len > TS_MAX_TEXT || umg_time_parse_rfc3339(it->str, it->len, &us) != UMG_OK) {
            return FAIL(c, it, E_INVALID_VALUE, "must be an RFC 3339 time such as 2026-11-27T10:00:00.123Z");
        }
        if (us < 0 || us > TS_MAX_US) {
            return FAIL(c, it, E_INVALID_VALUE, "time out of range (1970 to 9999)");
        }
        break;
    default:
        return FAIL(c, it, E_INVALID_TYPE, "must be integer Unix milliseconds or an RFC 3339 string, not %s",
                    json_type_name(it->type));
    }
    *out_us = us;
    *present = 1;
    return 0;
}

/*
 * Device advertising ids are UUIDs; they are stored lowercase so that one
 * device has one key whatever case a sender used. The copy lives in the
 * decoder's arena until the next parse.
 */
static int lower_uuid(vctx_t *c, umg_slice_t *id)
{
    char *copy = umg_arena_alloc(&c->d->arena, id->len);
    if (copy == NULL) {
        c->rc = UMG_ENOMEM;
        return -1;
    }
    for (size_t i = 0; i < id->len; i++) {
        char ch = id->ptr[i];
        copy[i] = (ch >= 'A' && ch <= 'F') ? (char)(ch + ('a' - 'A')) : ch;
    }
    id->ptr = copy;
    return 0;
}

/* Walks an object's members in document order, stopping at the first error. */
typedef int (*member_fn)(vctx_t *c, const umg_json_item_t *it);

#define WALK_CHUNK 16

static int walk_object(vctx_t *c, umg_json_val_t obj, member_fn fn)
{
    umg_json_iter_t iter;
    umg_json_item_t items[WALK_CHUNK];
    size_t n;
    if (umg_json_object_iter(obj, &iter) != UMG_JSON_OK) {
        return -1; /* callers check the type first */
    }
    while ((n = umg_json_object_next(&iter, items, WALK_CHUNK)) > 0) {
        for (size_t i = 0; i < n; i++) {
            if (fn(c, &items[i]) != 0) {
                return -1;
            }
        }
    }
    return 0;
}

/* Marks a member as seen; a second occurrence of a key is an error. */
static int first_time(vctx_t *c, const umg_json_item_t *it, uint32_t *seen, int f)
{
    if (*seen & (UINT32_C(1) << f)) {
        return FAIL(c, it, E_INVALID_VALUE, "duplicate field");
    }
    *seen |= UINT32_C(1) << f;
    return 0;
}

/* ------------------------------------------------------------- device */

/* Reading stored records back: a PII field encrypted at rest ("enc:v1:...",
 * see umg_privacy.h) is taken as it is instead of being validated. */
static int stored_enc(vctx_t *c, const umg_json_item_t *it, umg_slice_t *out)
{
    if (!c->lim->stored || it->type != UMG_JSON_STRING || it->len <= 7 || it->len > 1024 ||
        memcmp(it->str, "enc:v1:", 7) != 0) {
        return 0;
    }
    *out = umg_slice(it->str, it->len);
    return 1;
}

static int device_id(vctx_t *c, const umg_json_item_t *it, int which, umg_slice_t *out)
{
    if (stored_enc(c, it, out)) {
        return 0;
    }
    int uuid = which == D_IDFA || which == D_IDFV || which == D_GAID;
    /* A UUID has no control characters by construction; uuid_scan sees every byte. */
    if (get_str(c, it, UMG_EVENT_MAX_STR, !uuid, out) != 0) {
        return -1;
    }
    if (out->len == 0) {
        return 0;
    }
    if (uuid) {
        int kind = umg_uuid_scan(out->ptr, out->len, NULL);
        if (kind < 0) {
            return FAIL(c, it, E_INVALID_VALUE, "must be a UUID (8-4-4-4-12 hex digits)");
        }
        /* iOS without tracking consent and Android with ad tracking limited send zeros. */
        if (kind & UMG_UUID_ZERO) {
            *out = UMG_SLICE_NULL;
            return 0;
        }
        return (kind & UMG_UUID_UPPER) ? lower_uuid(c, out) : 0;
    }
    if (which == D_OAID && is_zero_id(out->ptr, out->len)) {
        *out = UMG_SLICE_NULL;
    }
    return 0;
}

static int device_bool(vctx_t *c, const umg_json_item_t *it, int *out)
{
    if (it->type == UMG_JSON_BOOL) {
        *out = it->b;
        return 0;
    }
    if (it->type == UMG_JSON_NULL) {
        *out = 0;
        return 0;
    }
    return FAIL(c, it, E_INVALID_TYPE, "must be true or false, not %s", json_type_name(it->type));
}

static int device_member(vctx_t *c, const umg_json_item_t *it)
{
    umg_event_device_t *dev = &c->ev->device;
    if (has_mark(c, it->key, it->klen)) {
        return FAIL(c, it, E_INVALID_UTF8, "key is not valid UTF-8");
    }
    int f = device_key(it->key, it->klen);
    if (f < 0) {
        return FAIL(c, it, E_UNKNOWN_FIELD, "unknown device field");
    }
    if (first_time(c, it, &c->dev_seen, f) != 0) {
        return -1;
    }
    switch (f) {
    case D_IDFA: return device_id(c, it, f, &dev->idfa);
    case D_IDFV: return device_id(c, it, f, &dev->idfv);
    case D_GAID: return device_id(c, it, f, &dev->gaid);
    case D_ANDROID_ID: return device_id(c, it, f, &dev->android_id);
    case D_OAID: return device_id(c, it, f, &dev->oaid);
    case D_CUSTOM_ID: return device_id(c, it, f, &dev->custom_id);
    case D_PLATFORM:
        if (get_str(c, it, UMG_EVENT_MAX_STR, 0, &dev->platform) != 0) {
            return -1;
        }
        if (dev->platform.len != 0 && !umg_slice_eq(dev->platform, "android") && !umg_slice_eq(dev->platform, "ios") &&
            !umg_slice_eq(dev->platform, "web")) {
            return FAIL(c, it, E_INVALID_VALUE, "must be \"android\", \"ios\" or \"web\"");
        }
        return 0;
    case D_OS_VERSION: return get_str(c, it, UMG_EVENT_MAX_STR, 0, &dev->os_version);
    case D_MODEL: return get_str(c, it, UMG_EVENT_MAX_STR, 0, &dev->model);
    case D_APP_VERSION: return get_str(c, it, UMG_EVENT_MAX_STR, 0, &dev->app_version);
    case D_SDK_VERSION: return get_str(c, it, UMG_EVENT_MAX_STR, 0, &dev->sdk_version);
    case D_LOCALE: return get_str(c, it, UMG_EVENT_MAX_STR, 0, &dev->locale);
    case D_OPT_OUT: return device_bool(c, it, &dev->opt_out);
    default: /* D_LIMIT_AD_TRACKING */ return device_bool(c, it, &dev->limit_ad_tracking);
    }
}

/* ---------------------------------------------------------- referrer */

static int referrer_member(vctx_t *c, const umg_json_item_t *it)
{
    umg_event_t *ev = c->ev;
    int present;
    if (has_mark(c, it->key, it->klen)) {
        return FAIL(c, it, E_INVALID_UTF8, "key is not valid UTF-8");
    }
    int f = referrer_key(it->key, it->klen);
    if (f < 0) {
        return FAIL(c, it, E_UNKNOWN_FIELD, "unknown install_referrer field");
    }
    if (first_time(c, it, &c->ref_seen, f) != 0) {
        return -1;
    }
    switch (f) {
    case R_REFERRER:
        if (it->type == UMG_JSON_NULL) {
            return FAIL(c, it, E_REQUIRED, "must be a string");
        }
        return get_str(c, it, UMG_EVENT_MAX_REFERRER, 0, &ev->referrer);
    case R_CLICK_TS: return get_ts(c, it, &ev->referrer_click_ts_us, &present);
    default: /* R_INSTALL_BEGIN_TS */ return get_ts(c, it, &ev->referrer_install_begin_ts_us, &present);
    }
}

/* ------------------------------------------------------------- props */

static int prop_member(vctx_t *c, const umg_json_item_t *it)
{
    umg_event_t *ev = c->ev;
    if (has_mark(c, it->key, it->klen)) {
        return FAIL(c, it, E_INVALID_UTF8, "key is not valid UTF-8");
    }
    if (it->klen == 0) {
        return FAIL(c, it, E_INVALID_VALUE, "property names must not be empty");
    }
    if (it->klen > UMG_EVENT_MAX_PROP_KEY) {
        return FAIL(c, it, E_TOO_LONG, "property names must be at most %d bytes", UMG_EVENT_MAX_PROP_KEY);
    }
    for (int i = 0; i < ev->nprops + c->nnulls; i++) {
        umg_slice_t k = i < ev->nprops ? ev->props[i].key : c->nulls[i - ev->nprops];
        if (k.len == it->klen && memcmp(k.ptr, it->key, it->klen) == 0) {
            return FAIL(c, it, E_INVALID_VALUE, "duplicate property");
        }
    }
    umg_event_prop_t *p = &ev->props[ev->nprops];
    p->s = UMG_SLICE_NULL;
    p->i = 0;
    p->d = 0;
    switch (it->type) {
    case UMG_JSON_NULL: /* a null property is the same as an absent one, but its name is taken */
        if (c->nnulls < UMG_EVENT_MAX_PROPS) {
            c->nulls[c->nnulls++] = umg_slice(it->key, it->klen);
        }
        return 0;
    case UMG_JSON_STRING:
        if (get_str(c, it, UMG_EVENT_MAX_PROP_STR, 0, &p->s) != 0) {
            return -1;
        }
        p->kind = UMG_PROP_STRING;
        break;
    case UMG_JSON_INT64:
        p->kind = UMG_PROP_INT;
        p->i = it->num.i;
        break;
    case UMG_JSON_UINT64: return FAIL(c, it, E_INVALID_VALUE, "integer out of the signed 64-bit range");
    case UMG_JSON_DOUBLE:
        p->kind = UMG_PROP_DOUBLE;
        p->d = it->num.d;
        break;
    default:
        return FAIL(c, it, E_INVALID_TYPE, "property values must be a string or a number, not %s",
                    json_type_name(it->type));
    }
    p->key = umg_slice(it->key, it->klen);
    ev->nprops++;
    return 0;
}

/* ------------------------------------------------------------ top level */

static int member_ip(vctx_t *c, const umg_json_item_t *it)
{
    umg_slice_t ip;
    if (!c->lim->allow_ip) {
        return 0; /* only server-to-server callers may state the device's address */
    }
    if (stored_enc(c, it, &c->ev->ip)) {
        return 0;
    }
    if (get_str(c, it, UMG_EVENT_MAX_STR, 1, &ip) != 0) {
        return -1;
    }
    if (ip.len == 0) {
        return 0;
    }
    char text[INET6_ADDRSTRLEN];
    unsigned char addr[sizeof(struct in6_addr)];
    if (ip.len >= sizeof(text)) {
        return FAIL(c, it, E_INVALID_VALUE, "must be an IPv4 or IPv6 address");
    }
    memcpy(text, ip.ptr, ip.len);
    text[ip.len] = '\0';
    if (inet_pton(AF_INET, text, addr) != 1 && inet_pton(AF_INET6, text, addr) != 1) {
        return FAIL(c, it, E_INVALID_VALUE, "must be an IPv4 or IPv6 address");
    }
    c->ev->ip = ip;
    return 0;
}

static int member_revenue(vctx_t *c, const umg_json_item_t *it)
{
    double x;
    switch (it->type) {
    case UMG_JSON_NULL: return 0;
    case UMG_JSON_INT64: x = (double)it->num.i; break;
    case UMG_JSON_UINT64: x = (double)it->num.u; break;
    case UMG_JSON_DOUBLE: x = it->num.d; break;
    default: return FAIL(c, it, E_INVALID_TYPE, "must be a number, not %s", json_type_name(it->type));
    }
    if (!isfinite(x) || fabs(x) >= REVENUE_LIMIT) {
        return FAIL(c, it, E_INVALID_VALUE, "must be a number between -1e12 and 1e12");
    }
    c->ev->revenue = x;
    c->ev->has_revenue = 1;
    return 0;
}

static int member_currency(vctx_t *c, const umg_json_item_t *it)
{
    umg_slice_t s;
    if (get_str(c, it, UMG_EVENT_MAX_STR, 0, &s) != 0) {
        return -1;
    }
    if (s.ptr == NULL) {
        return 0; /* null */
    }
    if (!umg_event_currency_known(s)) {
        return FAIL(c, it, E_INVALID_VALUE, "must be an ISO 4217 currency code in upper case, such as \"USD\"");
    }
    memcpy(c->ev->currency, s.ptr, 3);
    c->ev->currency[3] = '\0';
    c->has_currency = 1;
    return 0;
}

static int member_type(vctx_t *c, const umg_json_item_t *it)
{
    umg_slice_t s;
    if (get_str(c, it, UMG_EVENT_MAX_STR, 0, &s) != 0) {
        return -1;
    }
    if (s.ptr == NULL) {
        return 0; /* null: reported as required later */
    }
    if (umg_slice_eq(s, "event")) {
        c->ev->type = UMG_EV_EVENT;
    } else if (umg_slice_eq(s, "session")) {
        c->ev->type = UMG_EV_SESSION;
    } else if (umg_slice_eq(s, "purchase")) {
        c->ev->type = UMG_EV_PURCHASE;
    } else if (umg_slice_eq(s, "install")) {
        c->ev->type = UMG_EV_INSTALL;
    } else {
        return FAIL(c, it, E_INVALID_VALUE, "must be \"install\", \"session\", \"event\" or \"purchase\"");
    }
    return 0;
}

static int member_event_id(vctx_t *c, const umg_json_item_t *it)
{
    umg_slice_t s;
    if (get_str(c, it, UMG_EVENT_MAX_STR, 0, &s) != 0) {
        return -1;
    }
    if (s.ptr == NULL) {
        return 0;
    }
    if (umg_uuid_scan(s.ptr, s.len, &c->ev->event_id) < 0) {
        return FAIL(c, it, E_INVALID_VALUE, "must be a UUID (8-4-4-4-12 hex digits)");
    }
    static const umg_uuid_t nil;
    /* The nil UUID is a placeholder some SDKs send, not an id: taken as one, every later event of theirs would
     * be a duplicate of the first. The server assigns one instead, as when it is absent. */
    c->ev->has_event_id = memcmp(&c->ev->event_id, &nil, sizeof(nil)) != 0;
    return 0;
}

static int member_ts(vctx_t *c, const umg_json_item_t *it)
{
    umg_event_t *ev = c->ev;
    const umg_event_limits_t *lim = c->lim;
    if (get_ts(c, it, &ev->ts_us, &ev->has_ts) != 0) {
        return -1;
    }
    if (!ev->has_ts) {
        return 0;
    }
    int64_t fut = lim->max_future_us > 0 ? lim->max_future_us : 0;
    int64_t age = lim->max_age_us > 0 ? lim->max_age_us : 0;
    int64_t hi = lim->now_us > INT64_MAX - fut ? INT64_MAX : lim->now_us + fut;
    int64_t lo = lim->now_us < INT64_MIN + age ? INT64_MIN : lim->now_us - age;
    if (ev->ts_us > hi) {
        return FAIL(c, it, E_TS_IN_FUTURE, "is more than %lld s ahead of the server clock", (long long)(fut / 1000000));
    }
    if (ev->ts_us < lo) {
        return FAIL(c, it, E_TS_TOO_OLD, "is older than %lld s", (long long)(age / 1000000));
    }
    return 0;
}

static int member_object(vctx_t *c, const umg_json_item_t *it, const char *pfx, member_fn fn)
{
    if (it->type != UMG_JSON_OBJECT) {
        return FAIL(c, it, E_INVALID_TYPE, "must be an object, not %s", json_type_name(it->type));
    }
    c->pfx = pfx;
    int rc = walk_object(c, it->val, fn);
    c->pfx = NULL;
    return rc;
}

static int member_referrer(vctx_t *c, const umg_json_item_t *it)
{
    if (it->type == UMG_JSON_NULL) {
        return 0;
    }
    if (member_object(c, it, "install_referrer", referrer_member) != 0) {
        return -1;
    }
    if (!(c->ref_seen & (UINT32_C(1) << R_REFERRER))) {
        c->pfx = "install_referrer";
        return fail(c, E_REQUIRED, "referrer", 8, "install_referrer needs a referrer string");
    }
    c->ev->has_referrer = 1;
    return 0;
}

static int member_props(vctx_t *c, const umg_json_item_t *it)
{
    if (it->type == UMG_JSON_NULL) {
        return 0;
    }
    if (it->type == UMG_JSON_OBJECT && umg_json_object_size(it->val) > UMG_EVENT_MAX_PROPS) {
        return FAIL(c, it, E_TOO_MANY_PROPS, "at most %d properties are allowed", UMG_EVENT_MAX_PROPS);
    }
    return member_object(c, it, "props", prop_member);
}

static int top_member(vctx_t *c, const umg_json_item_t *it)
{
    umg_event_t *ev = c->ev;
    if (has_mark(c, it->key, it->klen)) {
        return FAIL(c, it, E_INVALID_UTF8, "key is not valid UTF-8");
    }
    int f = top_key(it->key, it->klen);
    if (f < 0 || ((f == F_APP_ID || f == F_RECEIVED_AT) && !c->lim->stored)) {
        return FAIL(c, it, E_UNKNOWN_FIELD, "unknown field");
    }
    if (first_time(c, it, &c->seen, f) != 0) {
        return -1;
    }
    switch (f) {
    case F_EVENT_ID: return member_event_id(c, it);
    case F_TYPE: return member_type(c, it);
    case F_NAME: return get_str(c, it, UMG_EVENT_MAX_STR, 0, &ev->name);
    case F_TS: return member_ts(c, it);
    case F_DEVICE:
        if (it->type == UMG_JSON_NULL) {
            return 0; /* reported as required later */
        }
        if (member_object(c, it, "device", device_member) != 0) {
            return -1;
        }
        c->has_device = 1;
        return 0;
    case F_IP: return member_ip(c, it);
    case F_USER_AGENT: return get_str(c, it, UMG_EVENT_MAX_UA, 0, &ev->user_agent);
    case F_USER_ID: return stored_enc(c, it, &ev->user_id) ? 0 : get_str(c, it, UMG_EVENT_MAX_STR, 0, &ev->user_id);
    case F_REVENUE: return member_revenue(c, it);
    case F_CURRENCY: return member_currency(c, it);
    case F_INSTALL_REFERRER: return member_referrer(c, it);
    case F_PROPS: return member_props(c, it);
    case F_APP_ID: return get_str(c, it, UMG_EVENT_MAX_STR, 1, &ev->app_id);
    default: { /* F_RECEIVED_AT */
        int present = 0;
        if (get_ts(c, it, &ev->received_us, &present) != 0) {
            return -1;
        }
        if (!present) {
            ev->received_us = c->lim->now_us;
        }
        return 0;
    }
    }
}

static int device_has_id(const umg_event_device_t *dev)
{
    return dev->idfa.len != 0 || dev->idfv.len != 0 || dev->gaid.len != 0 || dev->android_id.len != 0 ||
           dev->oaid.len != 0 || dev->custom_id.len != 0;
}

/* Cross-field rules, checked after every member passed on its own. */
static int check_event(vctx_t *c)
{
    umg_event_t *ev = c->ev;
    if (ev->type == 0) {
        return FAIL_TOP(c, E_REQUIRED, "type", "is required");
    }
    if (ev->name.len == 0 && (ev->type == UMG_EV_EVENT || ev->type == UMG_EV_PURCHASE)) {
        return FAIL_TOP(c, E_REQUIRED, "name", "is required when type is \"%s\"", umg_event_type_name(ev->type));
    }
    if (!c->has_device) {
        return FAIL_TOP(c, E_REQUIRED, "device", "is required");
    }
    if (!device_has_id(&ev->device)) {
        return FAIL_TOP(c, E_NO_DEVICE_ID, "device", "needs one of idfa, idfv, gaid, android_id, oaid, custom_id");
    }
    if (ev->has_revenue && !c->has_currency) {
        return FAIL_TOP(c, E_REQUIRED, "currency", "is required with revenue");
    }
    if (c->has_currency && !ev->has_revenue) {
        return FAIL_TOP(c, E_REQUIRED, "revenue", "is required with currency");
    }
    if (ev->type == UMG_EV_PURCHASE && !ev->has_revenue) {
        return FAIL_TOP(c, E_REQUIRED, "revenue", "is required when type is \"purchase\"");
    }
    if (!ev->has_ts) {
        ev->ts_us = c->lim->now_us;
    }
    return 0;
}

/*
 * Clears everything but the props array (nprops says how much of it is
 * valid). Spelled out field by field: a memset of this size becomes
 * `rep stos`, whose start-up cost showed in profiles of the hot path.
 */
static void event_reset(umg_event_t *ev, int64_t now_us)
{
    umg_event_device_t *dv = &ev->device;
    memset(&ev->event_id, 0, sizeof(ev->event_id));
    ev->has_event_id = 0;
    ev->type = 0;
    ev->name = UMG_SLICE_NULL;
    ev->ts_us = 0;
    ev->has_ts = 0;
    dv->idfa = dv->idfv = dv->gaid = UMG_SLICE_NULL;
    dv->android_id = dv->oaid = dv->custom_id = UMG_SLICE_NULL;
    dv->platform = dv->os_version = dv->model = UMG_SLICE_NULL;
    dv->app_version = dv->sdk_version = dv->locale = UMG_SLICE_NULL;
    dv->opt_out = 0;
    dv->limit_ad_tracking = 0;
    ev->ip = ev->user_agent = ev->user_id = UMG_SLICE_NULL;
    ev->has_revenue = 0;
    ev->revenue = 0;
    memset(ev->currency, 0, sizeof(ev->currency));
    ev->has_referrer = 0;
    ev->referrer = UMG_SLICE_NULL;
    ev->referrer_click_ts_us = 0;
    ev->referrer_install_begin_ts_us = 0;
    ev->nprops = 0;
    ev->app_id = UMG_SLICE_NULL;
    ev->received_us = now_us;
}

/* Decodes one event object. 0: valid; DECODE_INVALID: *err is filled; UMG_ENOMEM (which is -1 too,
 * hence the positive code for an invalid event). */
#define DECODE_INVALID 1
static int decode_event(umg_event_decoder_t *d, const umg_event_limits_t *lim, umg_json_val_t v, umg_event_t *ev,
                        umg_event_error_t *err)
{
    vctx_t c = {.d = d, .lim = lim, .ev = ev, .err = err};

    event_reset(ev, lim->now_us);

    umg_json_type_t t = umg_json_type(v);
    if (t != UMG_JSON_OBJECT) {
        err->code = E_INVALID_TYPE;
        err->field[0] = '\0';
        snprintf(err->message, sizeof(err->message), "an event must be an object, not %s", json_type_name(t));
        return DECODE_INVALID;
    }
    if (walk_object(&c, v, top_member) != 0 || check_event(&c) != 0) {
        return c.rc != 0 ? c.rc : DECODE_INVALID;
    }
    return 0;
}

/* ----------------------------------------------------------- decoder API */

int umg_event_decoder_new(size_t max_body, umg_event_decoder_t **out)
{
    umg_event_decoder_t *d;
    if (max_body == 0) {
        return UMG_EINVAL;
    }
    d = umg_calloc(1, sizeof(*d));
    if (d == NULL) {
        return UMG_ENOMEM;
    }
    if (umg_json_parser_new(max_body, &d->json) != UMG_JSON_OK) {
        umg_free(d);
        return UMG_ENOMEM;
    }
    umg_arena_init(&d->arena, DECODER_ARENA_BLOCK);
    *out = d;
    return UMG_OK;
}

void umg_event_decoder_free(umg_event_decoder_t *d)
{
    if (d == NULL) {
        return;
    }
    umg_json_parser_free(d->json);
    umg_arena_free(&d->arena);
    umg_free(d);
}

typedef struct batch_ctx_s {
    umg_event_error_t *err;
    int events; /* "events" members seen */
} batch_ctx_t;

/* Checks that a batch body holds nothing but "events", once (a second one would be ignored unseen). */
static int batch_member(void *ctx, const char *key, size_t klen, umg_json_val_t v)
{
    batch_ctx_t *b = ctx;
    (void)v;
    if (klen == 6 && memcmp(key, "events", 6) == 0 && b->events++ == 0) {
        return 0;
    }
    set_body_error(b->err, "invalid_json", key, klen,
                   b->events > 1 ? "a batch body has \"events\" once"
                                 : "a batch body must have \"events\" as its only member");
    return 1;
}

int umg_event_decoder_parse(umg_event_decoder_t *d, const char *body, size_t len, size_t max_events, size_t *n_events,
                            int *is_batch, umg_event_error_t *err)
{
    umg_event_error_t scratch;
    umg_json_val_t root, events;

    if (err == NULL) {
        err = &scratch;
    }
    d->parsed = 0;
    d->utf8_fallback = 0;
    umg_arena_reset(&d->arena);

    umg_json_err_t je = umg_json_parse(d->json, body, len, &root);
    if (je == UMG_JSON_EUTF8) {
        size_t n;
        unsigned char *in = (unsigned char *)umg_json_input(d->json, &n);
        utf8_scrub(in, n);
        d->utf8_fallback = 1;
        je = umg_json_reparse(d->json, &root);
    }
    switch (je) {
    case UMG_JSON_OK: break;
    case UMG_JSON_ECAPACITY:
        set_body_error(err, "body_too_large", NULL, 0, "the body is larger than the limit");
        return UMG_ERANGE;
    case UMG_JSON_ENOMEM: set_body_error(err, "overloaded", NULL, 0, "out of memory while parsing"); return UMG_ENOMEM;
    default: set_body_error(err, "invalid_json", NULL, 0, umg_json_strerror(je)); return UMG_EPARSE;
    }
    if (umg_json_type(root) != UMG_JSON_OBJECT) {
        set_body_error(err, "invalid_json", NULL, 0, "the body must be an event object or {\"events\": [...]}");
        return UMG_EPARSE;
    }
    int batch =
        umg_json_object_find(root, "events", 6, &events) == UMG_JSON_OK && umg_json_type(events) == UMG_JSON_ARRAY;
    size_t n = 1;
    if (batch) {
        batch_ctx_t bc = {err, 0};
        if (umg_json_object_foreach(root, batch_member, &bc) != 0) {
            return UMG_EPARSE;
        }
        n = umg_json_array_size(events);
        if (n > max_events) {
            char msg[96];
            snprintf(msg, sizeof(msg), "a batch may hold at most %zu events, not %zu", max_events, n);
            set_body_error(err, "too_many_events", NULL, 0, msg);
            return UMG_ERANGE;
        }
        d->body = events;
    } else {
        if (max_events < 1) {
            set_body_error(err, "too_many_events", NULL, 0, "no events are allowed");
            return UMG_ERANGE;
        }
        d->body = root;
    }
    d->n_events = n;
    d->is_batch = batch;
    d->parsed = 1;
    if (n_events != NULL) {
        *n_events = n;
    }
    if (is_batch != NULL) {
        *is_batch = batch;
    }
    return UMG_OK;
}

typedef struct walk_s {
    umg_event_decoder_t *d;
    const umg_event_limits_t *lim;
    umg_event_cb cb;
    void *ctx;
} walk_t;

static int walk_one(void *ctx, size_t index, umg_json_val_t v)
{
    walk_t *w = ctx;
    umg_event_error_t err;
    int rc = decode_event(w->d, w->lim, v, &w->d->ev, &err);
    if (rc == 0) {
        return w->cb(w->ctx, index, &w->d->ev, NULL);
    }
    if (rc == DECODE_INVALID) {
        return w->cb(w->ctx, index, NULL, &err);
    }
    return rc; /* UMG_ENOMEM */
}

int umg_event_decoder_foreach(umg_event_decoder_t *d, const umg_event_limits_t *lim, umg_event_cb cb, void *ctx)
{
    walk_t w = {.d = d, .lim = lim, .cb = cb, .ctx = ctx};
    if (!d->parsed) {
        return UMG_EINVAL;
    }
    if (d->is_batch) {
        return umg_json_array_foreach(d->body, walk_one, &w);
    }
    return walk_one(&w, 0, d->body);
}

/* -------------------------------------------------------------- encoding */

/*
 * Shortest text that reads back as the same double. Numbers with at most 15
 * significant digits in plain notation (the usual prices and measurements)
 * are printed without printf: m / 10^k == x with exact operands means the
 * decimal m·10^-k rounds to x (and the digits are those %.15g prints). Other
 * values go through %.15g, checked with strtod, then %.16g and %.17g (which
 * always round-trips). A ".0" is added to integral values so that they read
 * back as doubles, not integers.
 */
static size_t fmt_double(double x, char out[40])
{
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8, 1e9,
                                   1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18};
    double ax = fabs(x);
    size_t n = 0;

    if (ax == 0) {
        n = 0;
        if (signbit(x)) {
            out[n++] = '-';
        }
        memcpy(out + n, "0.0", 4);
        return n + 3;
    }
    /* The fast path needs doubles evaluated as doubles (not x87 extended precision). */
    if (FLT_EVAL_METHOD == 0 && ax >= 1e-4 && ax < 1e15) {
        for (int k = 0; k < (int)UMG_ARRAY_SIZE(pow10); k++) {
            double scaled = ax * pow10[k];
            if (scaled >= 1e15) {
                break;
            }
            double m = nearbyint(scaled);
            if (m / pow10[k] != ax) {
                continue;
            }
            /* Digits of m with a point k places from the right. */
            char digits[24];
            uint64_t mi = (uint64_t)m;
            int nd = 0;
            do {
                digits[nd++] = (char)('0' + mi % 10);
                mi /= 10;
            } while (mi != 0);
            if (x < 0) {
                out[n++] = '-';
            }
            if (nd <= k) {
                out[n++] = '0';
                out[n++] = '.';
                for (int z = 0; z < k - nd; z++) {
                    out[n++] = '0';
                }
                while (nd > 0) {
                    out[n++] = digits[--nd];
                }
            } else {
                while (nd > k) {
                    out[n++] = digits[--nd];
                }
                out[n++] = '.';
                if (k == 0) {
                    out[n++] = '0';
                }
                while (nd > 0) {
                    out[n++] = digits[--nd];
                }
            }
            out[n] = '\0';
            return n;
        }
    }
    int len = snprintf(out, 40, "%.15g", x);
    if (strtod(out, NULL) != x) {
        len = snprintf(out, 40, "%.16g", x);
        if (strtod(out, NULL) != x) {
            len = snprintf(out, 40, "%.17g", x);
        }
    }
    n = (size_t)len;
    if (strpbrk(out, ".eEn") == NULL) {
        memcpy(out + n, ".0", 3);
        n += 2;
    }
    return n;
}

static char *w_i64(char *p, int64_t v)
{
    char tmp[24];
    char *q = tmp + sizeof(tmp);
    uint64_t mag = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        *--q = (char)('0' + mag % 10);
        mag /= 10;
    } while (mag != 0);
    if (v < 0) {
        *--q = '-';
    }
    return w_mem(p, q, (size_t)(tmp + sizeof(tmp) - q));
}

static size_t encode_bound(const umg_event_t *ev)
{
    const umg_event_device_t *dv = &ev->device;
    /* Fixed keys, punctuation, the UUID, times and numbers fit in 1 KiB with room to spare. */
    size_t n = 1024;
    n += str_bound(ev->app_id) + str_bound(ev->name) + str_bound(ev->ip) + str_bound(ev->user_agent) +
         str_bound(ev->user_id) + str_bound(ev->referrer);
    n += str_bound(dv->idfa) + str_bound(dv->idfv) + str_bound(dv->gaid) + str_bound(dv->android_id) +
         str_bound(dv->oaid) + str_bound(dv->custom_id) + str_bound(dv->platform) + str_bound(dv->os_version) +
         str_bound(dv->model) + str_bound(dv->app_version) + str_bound(dv->sdk_version) + str_bound(dv->locale);
    for (int i = 0; i < ev->nprops; i++) {
        n += str_bound(ev->props[i].key) + str_bound(ev->props[i].s) + 48;
    }
    return n;
}

static char *w_device(umg_buf_t *b, char *p, const umg_event_device_t *dv)
{
    /* Keys with quotes and colon, padded so that each is copied as 16 fixed bytes. */
    static const struct {
        char key[16];
        unsigned char len;
        unsigned short off;
    } fields[] = {
#define DF(k) {"\"" #k "\":", sizeof(#k) + 2, offsetof(umg_event_device_t, k)}
        DF(idfa),     DF(idfv),       DF(gaid),  DF(android_id),  DF(oaid),        DF(custom_id),
        DF(platform), DF(os_version), DF(model), DF(app_version), DF(sdk_version), DF(locale),
#undef DF
    };
    char *first = p = W_LIT(p, ",\"device\":{");
    for (size_t i = 0; i < UMG_ARRAY_SIZE(fields); i++) {
        const umg_slice_t *s = (const umg_slice_t *)((const char *)dv + fields[i].off);
        if (s->len == 0) {
            continue;
        }
        if (p != first) {
            *p++ = ',';
        }
        memcpy(p, fields[i].key, 16); /* the reserved space has room for the extra bytes */
        p += fields[i].len;
        p = w_str(b, p, *s);
    }
    if (dv->opt_out) {
        if (p != first) {
            *p++ = ',';
        }
        p = W_LIT(p, "\"opt_out\":true");
    }
    if (dv->limit_ad_tracking) {
        if (p != first) {
            *p++ = ',';
        }
        p = W_LIT(p, "\"limit_ad_tracking\":true");
    }
    *p++ = '}';
    return p;
}

static char *w_props(umg_buf_t *b, char *p, const umg_event_t *ev)
{
    char num[40];
    p = W_LIT(p, ",\"props\":{");
    for (int i = 0; i < ev->nprops; i++) {
        const umg_event_prop_t *pr = &ev->props[i];
        if (i != 0) {
            *p++ = ',';
        }
        p = w_str(b, p, pr->key);
        *p++ = ':';
        switch (pr->kind) {
        case UMG_PROP_STRING: p = w_str(b, p, pr->s); break;
        case UMG_PROP_INT: p = w_i64(p, pr->i); break;
        case UMG_PROP_DOUBLE: p = w_mem(p, num, fmt_double(pr->d, num)); break;
        }
    }
    *p++ = '}';
    return p;
}

static int encode_check(const umg_event_t *ev)
{
    if (ev->type < UMG_EV_INSTALL || ev->type > UMG_EV_PURCHASE || ev->nprops < 0 || ev->nprops > UMG_EVENT_MAX_PROPS) {
        return UMG_EINVAL;
    }
    if (ev->has_revenue && !isfinite(ev->revenue)) {
        return UMG_EINVAL;
    }
    for (int i = 0; i < ev->nprops; i++) {
        if (ev->props[i].kind == UMG_PROP_DOUBLE && !isfinite(ev->props[i].d)) {
            return UMG_EINVAL;
        }
    }
    return UMG_OK;
}

int umg_event_encode_json(const umg_event_t *ev, umg_buf_t *out)
{
    char tmp[40];
    int rc = encode_check(ev);
    if (rc != UMG_OK) {
        return rc;
    }
    rc = umg_buf_reserve(out, encode_bound(ev));
    if (rc != UMG_OK) {
        return rc;
    }
    /* Quoted type names padded to 12 bytes for one fixed-size copy. */
    static const struct {
        char text[12];
        unsigned char len;
    } types[] = {
        [UMG_EV_INSTALL] = {"\"install\"", 9},
        [UMG_EV_SESSION] = {"\"session\"", 9},
        [UMG_EV_EVENT] = {"\"event\"", 7},
        [UMG_EV_PURCHASE] = {"\"purchase\"", 10},
    };
    char *p = out->ptr + out->len;
    *p++ = '{';
    if (ev->has_event_id) {
        p = W_LIT(p, "\"event_id\":\"");
        p = umg_uuid_write(p, &ev->event_id);
        p = W_LIT(p, "\",");
    }
    if (ev->app_id.len != 0) {
        p = W_LIT(p, "\"app_id\":");
        p = w_str(out, p, ev->app_id);
        *p++ = ',';
    }
    p = W_LIT(p, "\"type\":");
    memcpy(p, types[ev->type].text, 12);
    p += types[ev->type].len;
    if (ev->name.len != 0) {
        p = W_LIT(p, ",\"name\":");
        p = w_str(out, p, ev->name);
    }
    p = W_LIT(p, ",\"ts\":");
    p = w_time(p, ev->ts_us);
    p = W_LIT(p, ",\"received_at\":");
    p = w_time(p, ev->received_us);
    p = w_device(out, p, &ev->device);
    if (ev->ip.len != 0) {
        p = W_LIT(p, ",\"ip\":");
        p = w_str(out, p, ev->ip);
    }
    if (ev->user_agent.len != 0) {
        p = W_LIT(p, ",\"user_agent\":");
        p = w_str(out, p, ev->user_agent);
    }
    if (ev->user_id.len != 0) {
        p = W_LIT(p, ",\"user_id\":");
        p = w_str(out, p, ev->user_id);
    }
    if (ev->has_revenue) {
        p = W_LIT(p, ",\"revenue\":");
        p = w_mem(p, tmp, fmt_double(ev->revenue, tmp));
        p = W_LIT(p, ",\"currency\":");
        p = w_str(out, p,
                  umg_slice(ev->currency, ev->currency[0] == '\0'   ? 0
                                          : ev->currency[1] == '\0' ? 1
                                          : ev->currency[2] == '\0' ? 2
                                                                    : 3));
    }
    if (ev->has_referrer) {
        p = W_LIT(p, ",\"install_referrer\":{\"referrer\":");
        p = w_str(out, p, ev->referrer);
        if (ev->referrer_click_ts_us != 0) {
            p = W_LIT(p, ",\"click_ts\":");
            p = w_time(p, ev->referrer_click_ts_us);
        }
        if (ev->referrer_install_begin_ts_us != 0) {
            p = W_LIT(p, ",\"install_begin_ts\":");
            p = w_time(p, ev->referrer_install_begin_ts_us);
        }
        *p++ = '}';
    }
    if (ev->nprops > 0) {
        p = w_props(out, p, ev);
    }
    *p++ = '}';
    *p = '\0'; /* core buffers keep a terminator after their content */
    out->len = (size_t)(p - out->ptr);
    return UMG_OK;
}

/* ------------------------------------------------------------------ misc */

umg_slice_t umg_event_device_key(const umg_event_t *ev)
{
    const umg_event_device_t *dv = &ev->device;
    const umg_slice_t *order[] = {&dv->idfa, &dv->gaid, &dv->oaid, &dv->android_id, &dv->idfv, &dv->custom_id};
    for (size_t i = 0; i < UMG_ARRAY_SIZE(order); i++) {
        if (order[i]->len != 0) {
            return *order[i];
        }
    }
    return UMG_SLICE_NULL;
}

int umg_event_own(umg_event_t *ev, umg_arena_t *a)
{
    umg_event_device_t *dv = &ev->device;
    umg_slice_t *v[18 + 2 * UMG_EVENT_MAX_PROPS] = {
        &ev->name,      &dv->idfa,     &dv->idfv,       &dv->gaid,    &dv->android_id,  &dv->oaid,
        &dv->custom_id, &dv->platform, &dv->os_version, &dv->model,   &dv->app_version, &dv->sdk_version,
        &dv->locale,    &ev->ip,       &ev->user_agent, &ev->user_id, &ev->referrer,    &ev->app_id};
    size_t n = 18;
    for (int i = 0; i < ev->nprops && i < UMG_EVENT_MAX_PROPS; i++) {
        v[n++] = &ev->props[i].key;
        v[n++] = &ev->props[i].s; /* empty unless a string */
    }
    return umg_arena_own(a, v, n);
}

const char *umg_event_type_name(umg_event_type_t t)
{
    switch (t) {
    case UMG_EV_INSTALL: return "install";
    case UMG_EV_SESSION: return "session";
    case UMG_EV_EVENT: return "event";
    case UMG_EV_PURCHASE: return "purchase";
    }
    return "unknown";
}

umg_event_limits_t umg_event_limits_stored(int64_t recv_us)
{
    return (umg_event_limits_t){
        .now_us = recv_us, .max_future_us = INT64_MAX / 4, .max_age_us = INT64_MAX / 4, .allow_ip = 1, .stored = 1};
}
