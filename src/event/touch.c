/*
 * touch.c - owns ad touches (clicks and impressions) on their way in and out:
 * the link-parameter decoder for GET /c/{app} and /v/{app}, the JSON decoder
 * for POST /v1/touches bodies and for the stored form read back, and the
 * canonical one-line JSON that the log stores and exports return.
 * docs/touches.md describes every field and rule implemented here.
 *
 * One table of link parameters drives both ways in, so that a parameter is
 * checked the same way whether it came in a URL or as a JSON member. Values
 * are validated in this order: length (too_long), UTF-8 (invalid_utf8),
 * control characters (invalid_value), then the field's own format.
 *
 * Like event.c, the JSON decoder parses with the simdjson shim and, when the
 * body is not valid UTF-8, repairs its own copy (bad bytes become 0x7F) and
 * parses again, so that only the touches holding bad bytes are rejected.
 */
#include "umg_touch.h"
#include "umg_codec_int.h"
#include "umg_json.h"

#include <arpa/inet.h>
#include <stdio.h>

/* ------------------------------------------------------------ error codes */

static const char E_REQUIRED[] = "required";
static const char E_INVALID_TYPE[] = "invalid_type";
static const char E_INVALID_VALUE[] = "invalid_value";
static const char E_INVALID_UTF8[] = "invalid_utf8";
static const char E_TOO_LONG[] = "too_long";
static const char E_UNKNOWN_FIELD[] = "unknown_field";
static const char E_TS_IN_FUTURE[] = "ts_in_future";
static const char E_TS_TOO_OLD[] = "ts_too_old";

/* The byte that marks a repaired invalid UTF-8 sequence (see event.c). */

/* Times must fit RFC 3339's four-digit years: 1970-01-01 .. 9999-12-31T23:59:59.999999Z. */
#define TS_MAX_US INT64_C(253402300799999999)
#define TS_MAX_MS INT64_C(253402300799999)
#define TS_MAX_TEXT 64
#define LOOKBACK_MIN_S 60
/* Encrypted PII in the stored form ("enc:v1:KEYID:base64url"), see umg_privacy.h. */
#define ENC_PREFIX "enc:v1:"
#define ENC_MAX 1024
#define DECODER_ARENA_BLOCK 4096

struct umg_touch_decoder_s {
    umg_json_parser_t *json;
    int utf8_fallback; /* the input was repaired: 0x7F marks bad bytes */
    umg_arena_t arena; /* lowercased UUIDs; valid until the next decode */
    umg_touch_t t;     /* the touch handed to the callback */
};

/* ----------------------------------------------------------- field table */

/* How a link parameter's value is checked. */
enum { K_TEXT, K_UUID, K_OAID, K_ID, K_URL, K_LOOKBACK, K_RETARGETING };

/* Link parameters, in the order they are read from a URL. */
enum {
    P_SOURCE,
    P_CAMPAIGN,
    P_CAMPAIGN_ID,
    P_ADSET,
    P_AD,
    P_SITE,
    P_CLICK_ID,
    P_IDFA,
    P_IDFV,
    P_GAID,
    P_OAID,
    P_ANDROID_ID,
    P_CUSTOM_ID,
    P_LOOKBACK,
    P_RETARGETING,
    P_DEEP_LINK,
    P_SUB1,
    P_SUB2,
    P_SUB3,
    P_SUB4,
    P_SUB5,
    P_COUNT,
    /* JSON members that are not link parameters. */
    J_TYPE = P_COUNT,
    J_TS,
    J_DEVICE,
    J_IP,
    J_USER_AGENT,
    J_TOUCH_ID,    /* stored form, and optional on server-to-server touches (retries are duplicates) */
    J_APP_ID,      /* stored form only */
    J_RECEIVED_AT, /* stored form only */
    J_LOOKBACK_S,  /* stored form only; the same field as "lookback" */
    J_VIA,         /* stored form only: "link" for a click or impression link */
};

typedef struct field_s {
    char name[12];
    unsigned char kind;
    unsigned short max; /* bytes */
    unsigned short off; /* of the umg_slice_t in umg_touch_t (text kinds) */
} field_t;

_Static_assert(P_COUNT == UMG_TOUCH_LINK_PARAMS, "umg_touch.h says how many link parameters there are");

static const field_t params[P_COUNT] = {
#define TXT(n, m)                                                                                                      \
    {                                                                                                                  \
        .name = #n, .kind = K_TEXT, .max = UMG_TOUCH_MAX_STR, .off = offsetof(umg_touch_t, m)                          \
    }
#define DEV(n, k)                                                                                                      \
    {                                                                                                                  \
        .name = #n, .kind = k, .max = UMG_TOUCH_MAX_STR, .off = offsetof(umg_touch_t, n)                               \
    }
    [P_SOURCE] = TXT(source, source),
    [P_CAMPAIGN] = TXT(campaign, campaign),
    [P_CAMPAIGN_ID] = TXT(campaign_id, campaign_id),
    [P_ADSET] = TXT(adset, adset),
    [P_AD] = TXT(ad, ad),
    [P_SITE] = TXT(site, site),
    [P_CLICK_ID] = TXT(click_id, click_id),
    [P_IDFA] = DEV(idfa, K_UUID),
    [P_IDFV] = DEV(idfv, K_UUID),
    [P_GAID] = DEV(gaid, K_UUID),
    [P_OAID] = DEV(oaid, K_OAID),
    [P_ANDROID_ID] = DEV(android_id, K_ID),
    [P_CUSTOM_ID] = DEV(custom_id, K_ID),
    [P_LOOKBACK] = {"lookback", K_LOOKBACK, UMG_TOUCH_MAX_STR, 0},
    [P_RETARGETING] = {"retargeting", K_RETARGETING, UMG_TOUCH_MAX_STR, 0},
    [P_DEEP_LINK] = {"deep_link", K_URL, UMG_TOUCH_MAX_URL, offsetof(umg_touch_t, deep_link)},
    [P_SUB1] = TXT(sub1, sub[0]),
    [P_SUB2] = TXT(sub2, sub[1]),
    [P_SUB3] = TXT(sub3, sub[2]),
    [P_SUB4] = TXT(sub4, sub[3]),
    [P_SUB5] = TXT(sub5, sub[4]),
#undef TXT
#undef DEV
};

static umg_slice_t *field_slice(umg_touch_t *t, int f)
{
    return (umg_slice_t *)((char *)t + params[f].off);
}

static umg_slice_t field_value(const umg_touch_t *t, int f)
{
    return *(const umg_slice_t *)((const char *)t + params[f].off);
}

/* Key matchers: a switch on the length, then fixed-size compares. */
#define IS(lit) (memcmp(k, lit, sizeof(lit) - 1) == 0)

static int top_key(const char *k, size_t n)
{
    switch (n) {
    case 2: return IS("ts") ? J_TS : IS("ip") ? J_IP : IS("ad") ? P_AD : -1;
    case 3: return IS("via") ? J_VIA : -1;
    case 4:
        if (IS("type")) {
            return J_TYPE;
        }
        if (IS("site")) {
            return P_SITE;
        }
        if (IS("idfa")) {
            return P_IDFA;
        }
        if (IS("gaid")) {
            return P_GAID;
        }
        if (IS("idfv")) {
            return P_IDFV;
        }
        if (IS("oaid")) {
            return P_OAID;
        }
        return IS("sub") && k[3] >= '1' && k[3] <= '5' ? P_SUB1 + (k[3] - '1') : -1;
    case 5: return IS("adset") ? P_ADSET : -1;
    case 6: return IS("source") ? P_SOURCE : IS("device") ? J_DEVICE : IS("app_id") ? J_APP_ID : -1;
    case 8:
        return IS("campaign")   ? P_CAMPAIGN
               : IS("click_id") ? P_CLICK_ID
               : IS("lookback") ? P_LOOKBACK
               : IS("touch_id") ? J_TOUCH_ID
                                : -1;
    case 9: return IS("deep_link") ? P_DEEP_LINK : IS("custom_id") ? P_CUSTOM_ID : -1;
    case 10:
        return IS("user_agent") ? J_USER_AGENT : IS("android_id") ? P_ANDROID_ID : IS("lookback_s") ? J_LOOKBACK_S : -1;
    case 11:
        return IS("campaign_id")   ? P_CAMPAIGN_ID
               : IS("retargeting") ? P_RETARGETING
               : IS("received_at") ? J_RECEIVED_AT
                                   : -1;
    }
    return -1;
}

static int device_key(const char *k, size_t n)
{
    switch (n) {
    case 4: return IS("idfa") ? P_IDFA : IS("gaid") ? P_GAID : IS("idfv") ? P_IDFV : IS("oaid") ? P_OAID : -1;
    case 9: return IS("custom_id") ? P_CUSTOM_ID : -1;
    case 10: return IS("android_id") ? P_ANDROID_ID : -1;
    }
    return -1;
}

#undef IS

/* ------------------------------------------------------------ error paths */

/* Per-touch validation state, shared by the URL and the JSON decoders. */
typedef struct tctx_s {
    umg_touch_decoder_t *d; /* NULL for link parameters */
    const umg_touch_limits_t *lim;
    umg_touch_t *t;
    umg_touch_error_t *err;
    const char *pfx; /* "device" inside the device object, else NULL */
    uint64_t seen;   /* bit per field: a member may appear once */
    int stored;
    int has_ts;
    int rc; /* UMG_ENOMEM when the arena failed; stops the batch */
} tctx_t;

/* Records an error for field key (within the current prefix) and returns -1. */
__attribute__((format(printf, 5, 6))) static int fail(tctx_t *c, const char *code, const char *key, size_t klen,
                                                      const char *fmt, ...)
{
    umg_touch_error_t *e = c->err;
    va_list ap;
    e->code = code;
    build_path(e->field, sizeof(e->field), c->pfx, key, klen);
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    return -1;
}

#define FAIL_TOP(c, code, name, ...) ((c)->pfx = NULL, fail((c), (code), (name), sizeof(name) - 1, __VA_ARGS__))

static void set_body_error(umg_touch_error_t *err, const char *code, const char *field, size_t flen, const char *msg)
{
    if (err == NULL) {
        return;
    }
    err->code = code;
    build_path(err->field, sizeof(err->field), NULL, field, flen);
    snprintf(err->message, sizeof(err->message), "%s", msg);
}

/* ------------------------------------------------------------ text checks */

#define ONES UMG_SWAR_ONES
#define HIGH UMG_SWAR_HIGH

/* Non-zero when some byte of w is below 0x20, 0x7F (DEL) or above (any non-ASCII byte). */
static inline uint64_t swar_unprintable(uint64_t w)
{
    uint64_t del = w ^ (ONES * 0x7f);
    return (w & HIGH) | ((w - ONES * 0x20) & ~w & HIGH) | ((del - ONES) & ~del & HIGH);
}

static int ascii_printable(const char *s, size_t n)
{
    uint64_t acc = 0;
    if (n >= 8) {
        for (size_t i = 0; i + 8 < n; i += 8) {
            acc |= swar_unprintable(umg_load64(s + i));
        }
        return (acc | swar_unprintable(umg_load64(s + n - 8))) == 0;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)s[i];
        if (b < 0x20 || b >= 0x7f) {
            return 0;
        }
    }
    return 1;
}

enum { TXT_OK, TXT_UTF8, TXT_CONTROL };

/*
 * Whether s is UTF-8 without control characters (C0, DEL, C1). In a repaired
 * document (mark set) DEL is a repaired byte and counts as bad UTF-8. Bad
 * UTF-8 anywhere wins over a control character.
 */
static int text_check(const char *str, size_t n, int mark)
{
    const unsigned char *s = (const unsigned char *)str;
    int ctl = 0;
    size_t i = 0;
    if (ascii_printable(str, n)) {
        return TXT_OK;
    }
    while (i < n) {
        unsigned char b = s[i];
        if (b < 0x80) {
            if (b == UTF8_MARK && mark) {
                return TXT_UTF8;
            }
            ctl |= b < 0x20 || b == 0x7f;
            i++;
            continue;
        }
        size_t bad, k = umg_utf8_seq(s + i, n - i, &bad);
        if (k == 0) {
            return TXT_UTF8;
        }
        ctl |= b == 0xc2 && s[i + 1] < 0xa0; /* U+0080..U+009F */
        i += k;
    }
    return ctl ? TXT_CONTROL : TXT_OK;
}

/* Length, UTF-8 and control characters, in that order; 0 or -1 with the error. */
static int check_text(tctx_t *c, const char *key, size_t klen, umg_slice_t v, size_t max)
{
    if (v.len > max) {
        return fail(c, E_TOO_LONG, key, klen, "must be at most %zu bytes, not %zu", max, v.len);
    }
    switch (text_check(v.ptr, v.len, c->d != NULL && c->d->utf8_fallback)) {
    case TXT_UTF8: return fail(c, E_INVALID_UTF8, key, klen, "is not valid UTF-8");
    case TXT_CONTROL: return fail(c, E_INVALID_VALUE, key, klen, "must not contain control characters");
    }
    return 0;
}

/* ---------------------------------------------------------- value formats */

/*
 * A lookback: a positive integer with an optional unit, s (default), m, h or
 * d, either case: "7d", "12h", "90m", "3600s", "3600". 0 with *out set (a
 * window over 30 days is taken as 30 days, as networks ask for longer ones),
 * -1 for a malformed value, -2 for one under a minute.
 */
static int lookback_parse(const char *s, size_t n, int64_t *out)
{
    int64_t unit = 1;
    if (n > 0) {
        switch (s[n - 1]) {
        case 's':
        case 'S': n--; break;
        case 'm':
        case 'M': unit = 60, n--; break;
        case 'h':
        case 'H': unit = 3600, n--; break;
        case 'd':
        case 'D': unit = 86400, n--; break;
        }
    }
    if (n == 0 || n > 10) {
        return -1;
    }
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }
    if (v * unit < LOOKBACK_MIN_S) { /* 10 digits: no overflow */
        return -2;
    }
    *out = UMG_MIN(v * unit, UMG_TOUCH_LOOKBACK_MAX_S);
    return 0;
}

static int lookback_seconds(tctx_t *c, const char *key, size_t klen, int64_t v)
{
    if (v < LOOKBACK_MIN_S) {
        return fail(c, E_INVALID_VALUE, key, klen, "must be at least 60 s (1 minute)");
    }
    c->t->lookback_s = UMG_MIN(v, UMG_TOUCH_LOOKBACK_MAX_S); /* longer windows are taken as 30 days */
    return 0;
}

static int ascii_lower(int ch)
{
    return ch >= 'A' && ch <= 'Z' ? ch + ('a' - 'A') : ch;
}

/*
 * An absolute URL: a scheme (a letter, then letters, digits, "+", "-", "."),
 * a colon and something after it, no spaces. javascript:, vbscript: and
 * data: are refused: a deep link is opened by apps and browsers.
 */
static int url_ok(umg_slice_t v)
{
    static const char *const refused[] = {"javascript", "vbscript", "data"};
    size_t i = 0;
    const char *s = v.ptr;
    if (v.len == 0 || !((s[0] | 0x20) >= 'a' && (s[0] | 0x20) <= 'z')) {
        return 0;
    }
    while (i < v.len && s[i] != ':') {
        char ch = s[i];
        int alpha = (ch | 0x20) >= 'a' && (ch | 0x20) <= 'z';
        if (!alpha && !(ch >= '0' && ch <= '9') && ch != '+' && ch != '-' && ch != '.') {
            return 0;
        }
        i++;
    }
    if (i == v.len || i + 1 == v.len || memchr(s, ' ', v.len) != NULL) {
        return 0;
    }
    for (size_t r = 0; r < UMG_ARRAY_SIZE(refused); r++) {
        size_t rl = strlen(refused[r]);
        if (i == rl) {
            size_t k = 0;
            while (k < rl && ascii_lower((unsigned char)s[k]) == refused[r][k]) {
                k++;
            }
            if (k == rl) {
                return 0;
            }
        }
    }
    return 1;
}

/*
 * Advertising ids are stored lowercase so that one device has one key
 * whatever case a sender used. From a URL the caller's decoded value is
 * lowercased where it lies (umg_touch.h says the memory must be writable);
 * from JSON it is copied into the decoder's arena.
 */
static int lower_uuid(tctx_t *c, umg_slice_t *id)
{
    char *w;
    if (c->d == NULL) {
        w = (char *)(uintptr_t)id->ptr;
    } else {
        w = umg_arena_alloc(&c->d->arena, id->len);
        if (w == NULL) {
            c->rc = UMG_ENOMEM;
            return -1;
        }
    }
    for (size_t i = 0; i < id->len; i++) {
        char ch = id->ptr[i];
        w[i] = (ch >= 'A' && ch <= 'F') ? (char)(ch + ('a' - 'A')) : ch;
    }
    id->ptr = w;
    return 0;
}

/*
 * Checks the string value of link parameter f (non-empty) and stores it.
 * key names the field in errors (it differs from the parameter's name for
 * members of "device" only by the prefix).
 */
static int set_param(tctx_t *c, int f, const char *key, size_t klen, umg_slice_t v)
{
    const field_t *fd = &params[f];
    if (check_text(c, key, klen, v, fd->max) != 0) {
        return -1;
    }
    switch (fd->kind) {
    case K_UUID: {
        int kind = umg_uuid_scan(v.ptr, v.len, NULL);
        if (kind < 0) {
            return fail(c, E_INVALID_VALUE, key, klen, "must be a UUID (8-4-4-4-12 hex digits)");
        }
        /* iOS without tracking consent and Android with ad tracking limited send zeros. */
        if (kind & UMG_UUID_ZERO) {
            return 0;
        }
        if ((kind & UMG_UUID_UPPER) && lower_uuid(c, &v) != 0) {
            return -1;
        }
        break;
    }
    case K_OAID:
        if (is_zero_id(v.ptr, v.len)) {
            return 0;
        }
        break;
    case K_URL:
        if (!url_ok(v)) {
            return fail(c, E_INVALID_VALUE, key, klen,
                        "must be an absolute URL with a scheme, such as myapp://product/42, without spaces");
        }
        break;
    case K_LOOKBACK: {
        int rc = lookback_parse(v.ptr, v.len, &c->t->lookback_s);
        if (rc == -1) {
            return fail(c, E_INVALID_VALUE, key, klen,
                        "must be a number of seconds or have a unit: 7d, 12h, 90m, 3600s");
        }
        if (rc == -2) {
            return fail(c, E_INVALID_VALUE, key, klen, "must be at least 1 minute");
        }
        return 0;
    }
    case K_RETARGETING:
        if (umg_slice_eq(v, "1") || umg_slice_eq(v, "true")) {
            c->t->retargeting = 1;
        } else if (umg_slice_eq(v, "0") || umg_slice_eq(v, "false")) {
            c->t->retargeting = 0;
        } else {
            return fail(c, E_INVALID_VALUE, key, klen, "must be 0, 1, true or false");
        }
        return 0;
    }
    *field_slice(c->t, f) = v;
    return 0;
}

/* Clears every link-parameter field of t. */
static void params_reset(umg_touch_t *t)
{
    for (int f = 0; f < P_COUNT; f++) {
        if (params[f].off != 0) {
            *field_slice(t, f) = UMG_SLICE_NULL;
        }
    }
    t->lookback_s = 0;
    t->retargeting = 0;
}

/* ------------------------------------------------------- link parameters */

void umg_touch_from_params(umg_touch_t *t, umg_touch_param_fn get, void *ctx, umg_touch_error_t *dropped,
                           size_t max_dropped, size_t *ndropped)
{
    umg_touch_error_t e;
    tctx_t c = {.t = t, .err = &e};
    size_t nd = 0;

    params_reset(t);
    for (int f = 0; f < P_COUNT; f++) {
        const char *name = params[f].name;
        size_t nlen = strlen(name);
        umg_slice_t v = UMG_SLICE_NULL;
        int rc = get(ctx, name, &v);
        if (rc == UMG_ENOENT) {
            continue;
        }
        if (rc != UMG_OK) {
            fail(&c, E_INVALID_VALUE, name, nlen, "is not correctly URL-encoded");
        } else if (v.ptr == NULL || v.len == 0 || set_param(&c, f, name, nlen, v) == 0) {
            continue;
        }
        if (dropped != NULL && nd < max_dropped) {
            dropped[nd++] = e;
        }
    }
    if (ndropped != NULL) {
        *ndropped = nd;
    }
}

/* ----------------------------------------------------------- JSON members */

static int has_mark(const tctx_t *c, const char *s, size_t n)
{
    return c->d->utf8_fallback && n > 0 && memchr(s, UTF8_MARK, n) != NULL;
}

#define FAIL(c, it, code, ...) fail((c), (code), (it)->key, (it)->klen, __VA_ARGS__)

/* Marks field f as seen; a second occurrence is an error. */
static int first_time(tctx_t *c, const umg_json_item_t *it, int f)
{
    if (c->seen & (UINT64_C(1) << f)) {
        return FAIL(c, it, E_INVALID_VALUE, "duplicate field");
    }
    c->seen |= UINT64_C(1) << f;
    return 0;
}

/* The value of a string member: 1 with *out set, 0 for null or "", -1 for another type. */
static int json_str(tctx_t *c, const umg_json_item_t *it, umg_slice_t *out)
{
    if (it->type == UMG_JSON_STRING) {
        *out = umg_slice(it->str, it->len);
        return it->len != 0;
    }
    if (it->type == UMG_JSON_NULL) {
        return 0;
    }
    return FAIL(c, it, E_INVALID_TYPE, "must be a string, not %s", json_type_name(it->type));
}

/* Reading stored records back: a PII field encrypted at rest is taken as it is. */
static int stored_enc(tctx_t *c, const umg_json_item_t *it, umg_slice_t *out)
{
    if (!c->stored || it->type != UMG_JSON_STRING || it->len <= sizeof(ENC_PREFIX) - 1 || it->len > ENC_MAX ||
        memcmp(it->str, ENC_PREFIX, sizeof(ENC_PREFIX) - 1) != 0 || text_check(it->str, it->len, 1) != TXT_OK) {
        return 0;
    }
    *out = umg_slice(it->str, it->len);
    return 1;
}

/* A link parameter as a JSON member (top level, or an id inside "device"). */
static int member_param(tctx_t *c, const umg_json_item_t *it, int f)
{
    umg_slice_t v;
    int kind = params[f].kind;
    if (kind == K_UUID || kind == K_OAID || kind == K_ID) {
        if (stored_enc(c, it, field_slice(c->t, f))) {
            return 0;
        }
    }
    if (kind == K_LOOKBACK) {
        switch (it->type) {
        case UMG_JSON_INT64: return lookback_seconds(c, it->key, it->klen, it->num.i);
        case UMG_JSON_UINT64: return lookback_seconds(c, it->key, it->klen, INT64_MAX);
        case UMG_JSON_STRING:
        case UMG_JSON_NULL: break;
        default:
            return FAIL(c, it, E_INVALID_TYPE, "must be a string such as \"7d\" or integer seconds, not %s",
                        json_type_name(it->type));
        }
    }
    if (kind == K_RETARGETING) {
        switch (it->type) {
        case UMG_JSON_BOOL: c->t->retargeting = it->b; return 0;
        case UMG_JSON_NULL: return 0;
        case UMG_JSON_INT64:
            if (it->num.i == 0 || it->num.i == 1) {
                c->t->retargeting = (int)it->num.i;
                return 0;
            }
            return FAIL(c, it, E_INVALID_VALUE, "must be 0, 1, true or false");
        case UMG_JSON_UINT64: return FAIL(c, it, E_INVALID_VALUE, "must be 0, 1, true or false");
        default: return FAIL(c, it, E_INVALID_TYPE, "must be 0, 1 or a boolean, not %s", json_type_name(it->type));
        }
    }
    int rc = json_str(c, it, &v);
    if (rc <= 0) {
        return rc;
    }
    return set_param(c, f, it->key, it->klen, v);
}

/* Reads a time: integer Unix milliseconds or an RFC 3339 string. 1 when present, 0 for null, -1. */
static int json_time(tctx_t *c, const umg_json_item_t *it, int64_t *out_us)
{
    int64_t us;
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
    return 1;
}

static int member_ts(tctx_t *c, const umg_json_item_t *it)
{
    const umg_touch_limits_t *lim = c->lim;
    int rc = json_time(c, it, &c->t->ts_us);
    if (rc <= 0) {
        return rc; /* null: reported as required later */
    }
    c->has_ts = 1;
    if (c->stored) {
        return 0; /* checked when it was received; stored touches may be old */
    }
    int64_t fut = lim->max_future_us > 0 ? lim->max_future_us : 0;
    int64_t age = lim->max_age_us > 0 ? lim->max_age_us : 0;
    int64_t hi = lim->now_us > INT64_MAX - fut ? INT64_MAX : lim->now_us + fut;
    int64_t lo = lim->now_us < INT64_MIN + age ? INT64_MIN : lim->now_us - age;
    if (c->t->ts_us > hi) {
        return FAIL(c, it, E_TS_IN_FUTURE, "is more than %lld s ahead of the server clock", (long long)(fut / 1000000));
    }
    if (c->t->ts_us < lo) {
        return FAIL(c, it, E_TS_TOO_OLD, "is older than %lld s", (long long)(age / 1000000));
    }
    return 0;
}

static int member_type(tctx_t *c, const umg_json_item_t *it)
{
    umg_slice_t s = UMG_SLICE_NULL;
    int rc = json_str(c, it, &s);
    if (rc < 0) {
        return -1;
    }
    if (rc > 0 && umg_slice_eq(s, "click")) {
        c->t->type = UMG_TOUCH_CLICK;
    } else if (rc > 0 && umg_slice_eq(s, "impression")) {
        c->t->type = UMG_TOUCH_IMPRESSION;
    } else if (it->type == UMG_JSON_NULL) {
        return 0; /* reported as required later */
    } else {
        return FAIL(c, it, E_INVALID_VALUE, "must be \"click\" or \"impression\"");
    }
    return 0;
}

static int member_ip(tctx_t *c, const umg_json_item_t *it)
{
    umg_slice_t ip;
    if (stored_enc(c, it, &c->t->ip)) {
        return 0;
    }
    int rc = json_str(c, it, &ip);
    if (rc <= 0) {
        return rc;
    }
    if (check_text(c, it->key, it->klen, ip, UMG_TOUCH_MAX_STR) != 0) {
        return -1;
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
    c->t->ip = ip;
    return 0;
}

/* A plain string member (user_agent, app_id). */
static int member_text(tctx_t *c, const umg_json_item_t *it, size_t max, umg_slice_t *out)
{
    umg_slice_t s = UMG_SLICE_NULL;
    int rc = json_str(c, it, &s);
    if (rc <= 0) {
        return rc;
    }
    if (check_text(c, it->key, it->klen, s, max) != 0) {
        return -1;
    }
    *out = s;
    return 0;
}

static int member_touch_id(tctx_t *c, const umg_json_item_t *it)
{
    umg_slice_t s = UMG_SLICE_NULL;
    int rc = json_str(c, it, &s);
    if (rc <= 0) {
        return rc;
    }
    if (umg_uuid_scan(s.ptr, s.len, &c->t->touch_id) < 0) {
        return FAIL(c, it, E_INVALID_VALUE, "must be a UUID (8-4-4-4-12 hex digits)");
    }
    return 0;
}

static int member_via(tctx_t *c, const umg_json_item_t *it)
{
    umg_slice_t s = UMG_SLICE_NULL;
    int rc = json_str(c, it, &s);
    if (rc <= 0) {
        return rc;
    }
    if (!umg_slice_eq(s, "link")) {
        return FAIL(c, it, E_INVALID_VALUE, "must be \"link\"");
    }
    c->t->via_link = 1;
    return 0;
}

static int member_lookback_s(tctx_t *c, const umg_json_item_t *it)
{
    switch (it->type) {
    case UMG_JSON_NULL: return 0;
    case UMG_JSON_INT64: return lookback_seconds(c, it->key, it->klen, it->num.i);
    case UMG_JSON_UINT64: return lookback_seconds(c, it->key, it->klen, INT64_MAX);
    default: return FAIL(c, it, E_INVALID_TYPE, "must be integer seconds, not %s", json_type_name(it->type));
    }
}

/* Walks an object's members in document order, stopping at the first error. */
typedef int (*member_fn)(tctx_t *c, const umg_json_item_t *it);

#define WALK_CHUNK 16

static int walk_object(tctx_t *c, umg_json_val_t obj, member_fn fn)
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

static int device_member(tctx_t *c, const umg_json_item_t *it)
{
    if (has_mark(c, it->key, it->klen)) {
        return FAIL(c, it, E_INVALID_UTF8, "key is not valid UTF-8");
    }
    int f = device_key(it->key, it->klen);
    if (f < 0) {
        return FAIL(c, it, E_UNKNOWN_FIELD, "unknown device field");
    }
    if (first_time(c, it, f) != 0) {
        return -1;
    }
    return member_param(c, it, f);
}

static int member_device(tctx_t *c, const umg_json_item_t *it)
{
    if (it->type == UMG_JSON_NULL) {
        return 0;
    }
    if (it->type != UMG_JSON_OBJECT) {
        return FAIL(c, it, E_INVALID_TYPE, "must be an object, not %s", json_type_name(it->type));
    }
    c->pfx = "device"; /* errors inside are named device.KEY */
    int rc = walk_object(c, it->val, device_member);
    c->pfx = NULL;
    return rc;
}

static int top_member(tctx_t *c, const umg_json_item_t *it)
{
    umg_touch_t *t = c->t;
    if (has_mark(c, it->key, it->klen)) {
        return FAIL(c, it, E_INVALID_UTF8, "key is not valid UTF-8");
    }
    int f = top_key(it->key, it->klen);
    if (f < 0 || (f > J_TOUCH_ID && !c->stored)) { /* touch_id: a server-to-server touch may bring its own */
        return FAIL(c, it, E_UNKNOWN_FIELD, "unknown field");
    }
    if (first_time(c, it, f == J_LOOKBACK_S ? P_LOOKBACK : f) != 0) {
        return -1;
    }
    switch (f) {
    case J_TYPE: return member_type(c, it);
    case J_TS: return member_ts(c, it);
    case J_DEVICE: return member_device(c, it);
    case J_IP: return member_ip(c, it);
    case J_USER_AGENT: return member_text(c, it, UMG_TOUCH_MAX_UA, &t->user_agent);
    case J_TOUCH_ID: return member_touch_id(c, it);
    case J_APP_ID: return member_text(c, it, UMG_TOUCH_MAX_STR, &t->app_id);
    case J_RECEIVED_AT: return json_time(c, it, &t->received_us) < 0 ? -1 : 0;
    case J_LOOKBACK_S: return member_lookback_s(c, it);
    case J_VIA: return member_via(c, it);
    default: return member_param(c, it, f);
    }
}

/*
 * What decode_touch returns for a touch that failed validation (*err is
 * filled). Not -1: that is UMG_ENOMEM, which stops the batch instead.
 */
#define TOUCH_INVALID 1

/* Decodes one touch object. 0: valid; TOUCH_INVALID; UMG_ENOMEM. */
static int decode_touch(umg_touch_decoder_t *d, const umg_touch_limits_t *lim, umg_json_val_t v, umg_touch_error_t *err)
{
    umg_touch_t *t = &d->t;
    tctx_t c = {.d = d, .lim = lim, .t = t, .err = err, .stored = lim->stored};

    memset(t, 0, sizeof(*t));
    t->received_us = lim->now_us;
    umg_json_type_t jt = umg_json_type(v);
    if (jt != UMG_JSON_OBJECT) {
        err->code = E_INVALID_TYPE;
        err->field[0] = '\0';
        snprintf(err->message, sizeof(err->message), "a touch must be an object, not %s", json_type_name(jt));
        return TOUCH_INVALID;
    }
    if (walk_object(&c, v, top_member) != 0) {
        return c.rc != 0 ? c.rc : TOUCH_INVALID;
    }
    if (t->type == 0) {
        FAIL_TOP(&c, E_REQUIRED, "type", "is required (\"click\" or \"impression\")");
        return TOUCH_INVALID;
    }
    if (!c.has_ts) {
        FAIL_TOP(&c, E_REQUIRED, "ts", "is required (Unix milliseconds or RFC 3339)");
        return TOUCH_INVALID;
    }
    return 0;
}

/* ----------------------------------------------------------- decoder API */

int umg_touch_decoder_new(size_t max_body, umg_touch_decoder_t **out)
{
    umg_touch_decoder_t *d;
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

void umg_touch_decoder_free(umg_touch_decoder_t *d)
{
    if (d == NULL) {
        return;
    }
    umg_json_parser_free(d->json);
    umg_arena_free(&d->arena);
    umg_free(d);
}

typedef struct walk_s {
    umg_touch_decoder_t *d;
    const umg_touch_limits_t *lim;
    umg_touch_cb cb;
    void *ctx;
} walk_t;

static int walk_one(void *ctx, size_t index, umg_json_val_t v)
{
    walk_t *w = ctx;
    umg_touch_error_t err;
    int rc = decode_touch(w->d, w->lim, v, &err);
    if (rc == 0) {
        return w->cb(w->ctx, index, &w->d->t, NULL);
    }
    if (rc == TOUCH_INVALID) {
        return w->cb(w->ctx, index, NULL, &err);
    }
    return rc; /* UMG_ENOMEM */
}

/* Parses the body, repairing invalid UTF-8 once. UMG_OK with *root, or an error with err filled. */
static int parse_body(umg_touch_decoder_t *d, const char *body, size_t len, umg_json_val_t *root,
                      umg_touch_error_t *err)
{
    umg_json_err_t je = umg_json_parse(d->json, body, len, root);
    if (je == UMG_JSON_EUTF8) {
        size_t n;
        unsigned char *in = (unsigned char *)umg_json_input(d->json, &n);
        utf8_scrub(in, n);
        d->utf8_fallback = 1;
        je = umg_json_reparse(d->json, root);
    }
    switch (je) {
    case UMG_JSON_OK: return UMG_OK;
    case UMG_JSON_ECAPACITY:
        set_body_error(err, "body_too_large", NULL, 0, "the body is larger than the limit");
        return UMG_ERANGE;
    case UMG_JSON_ENOMEM: set_body_error(err, "overloaded", NULL, 0, "out of memory while parsing"); return UMG_ENOMEM;
    default: set_body_error(err, "invalid_json", NULL, 0, umg_json_strerror(je)); return UMG_EPARSE;
    }
}

/* The touches array of a batch body, which must be {"touches": [...]} and nothing else. */
static int batch_array(umg_json_val_t root, umg_json_val_t *arr, umg_touch_error_t *err)
{
    umg_json_iter_t iter;
    umg_json_item_t item;
    if (umg_json_object_iter(root, &iter) != UMG_JSON_OK) {
        set_body_error(err, "invalid_json", NULL, 0, "the body must be {\"touches\": [...]}");
        return UMG_EPARSE;
    }
    size_t n = 0;
    int found = 0;
    while (umg_json_object_next(&iter, &item, 1) == 1) {
        n++;
        if (item.klen != 7 || memcmp(item.key, "touches", 7) != 0 || found) {
            set_body_error(err, "invalid_json", item.key, item.klen,
                           "the body must have \"touches\" as its only member");
            return UMG_EPARSE;
        }
        if (item.type != UMG_JSON_ARRAY) {
            set_body_error(err, "invalid_json", item.key, item.klen, "\"touches\" must be an array");
            return UMG_EPARSE;
        }
        *arr = item.val;
        found = 1;
    }
    if (!found) {
        set_body_error(err, "invalid_json", NULL, 0, "the body must be {\"touches\": [...]}");
        return UMG_EPARSE;
    }
    return UMG_OK;
}

int umg_touch_decode(umg_touch_decoder_t *d, const char *body, size_t len, const umg_touch_limits_t *lim,
                     umg_touch_cb cb, void *ctx, umg_touch_error_t *err)
{
    umg_touch_error_t scratch;
    umg_json_val_t root, arr;
    walk_t w = {.d = d, .lim = lim, .cb = cb, .ctx = ctx};

    if (err == NULL) {
        err = &scratch;
    }
    d->utf8_fallback = 0;
    umg_arena_reset(&d->arena);
    int rc = parse_body(d, body, len, &root, err);
    if (rc != UMG_OK) {
        return rc;
    }
    if (lim->stored) {
        if (umg_json_type(root) != UMG_JSON_OBJECT) {
            set_body_error(err, "invalid_json", NULL, 0, "a stored touch must be an object");
            return UMG_EPARSE;
        }
        return walk_one(&w, 0, root);
    }
    rc = batch_array(root, &arr, err);
    if (rc != UMG_OK) {
        return rc;
    }
    size_t n = umg_json_array_size(arr);
    if (n > UMG_TOUCH_MAX_BATCH) {
        char msg[96];
        snprintf(msg, sizeof(msg), "a batch may hold at most %d touches, not %zu", UMG_TOUCH_MAX_BATCH, n);
        set_body_error(err, "too_many_touches", "touches", 7, msg);
        return UMG_ERANGE;
    }
    return umg_json_array_foreach(arr, walk_one, &w);
}

/* -------------------------------------------------------------- encoding */

/* "key":"value" */
static char *w_kv(umg_buf_t *b, char *p, const char *key, umg_slice_t s)
{
    *p++ = '"';
    p = w_mem(p, key, strlen(key));
    *p++ = '"';
    *p++ = ':';
    return w_str(b, p, s);
}

/* ,"key":"value" for a non-empty value. */
static char *w_member(umg_buf_t *b, char *p, const char *key, umg_slice_t s)
{
    if (s.len == 0) {
        return p;
    }
    *p++ = ',';
    return w_kv(b, p, key, s);
}

static int uuid_is_nil(const umg_uuid_t *u)
{
    static const umg_uuid_t nil;
    return memcmp(u->b, nil.b, sizeof(u->b)) == 0;
}

/* Device ids in the order of the stored form (the same as events'). */
static const int device_order[] = {P_IDFA, P_IDFV, P_GAID, P_ANDROID_ID, P_OAID, P_CUSTOM_ID};
/* The other link parameters, in the order of the stored form around "device". */
static const int before_device[] = {P_SOURCE, P_CAMPAIGN, P_CAMPAIGN_ID, P_ADSET, P_AD, P_SITE, P_CLICK_ID};

static int encode_check(const umg_touch_t *t)
{
    if (t->type != UMG_TOUCH_CLICK && t->type != UMG_TOUCH_IMPRESSION) {
        return UMG_EINVAL;
    }
    if (t->ts_us < 0 || t->ts_us > TS_MAX_US || t->received_us < 0 || t->received_us > TS_MAX_US) {
        return UMG_EINVAL;
    }
    if (t->lookback_s != 0 && (t->lookback_s < LOOKBACK_MIN_S || t->lookback_s > UMG_TOUCH_LOOKBACK_MAX_S)) {
        return UMG_EINVAL;
    }
    return UMG_OK;
}

int umg_touch_encode_json(const umg_touch_t *t, umg_buf_t *out)
{
    int rc = encode_check(t);
    if (rc != UMG_OK) {
        return rc;
    }
    size_t bound = 512 + str_bound(t->app_id) + str_bound(t->ip) + str_bound(t->user_agent);
    for (int f = 0; f < P_COUNT; f++) {
        if (params[f].off != 0) {
            bound += str_bound(field_value(t, f));
        }
    }
    rc = umg_buf_reserve(out, bound);
    if (rc != UMG_OK) {
        return rc;
    }
    char *p = out->ptr + out->len;
    *p++ = '{';
    if (!uuid_is_nil(&t->touch_id)) {
        p = W_LIT(p, "\"touch_id\":\"");
        p = umg_uuid_write(p, &t->touch_id);
        p = W_LIT(p, "\",");
    }
    if (t->app_id.len != 0) {
        p = W_LIT(p, "\"app_id\":");
        p = w_str(out, p, t->app_id);
        *p++ = ',';
    }
    p = t->type == UMG_TOUCH_CLICK ? W_LIT(p, "\"type\":\"click\"") : W_LIT(p, "\"type\":\"impression\"");
    p = W_LIT(p, ",\"ts\":");
    p = w_time(p, t->ts_us);
    p = W_LIT(p, ",\"received_at\":");
    p = w_time(p, t->received_us);
    for (size_t i = 0; i < UMG_ARRAY_SIZE(before_device); i++) {
        p = w_member(out, p, params[before_device[i]].name, field_value(t, before_device[i]));
    }
    char *dev = p;
    p = W_LIT(p, ",\"device\":{");
    char *first = p;
    for (size_t i = 0; i < UMG_ARRAY_SIZE(device_order); i++) {
        umg_slice_t s = field_value(t, device_order[i]);
        if (s.len != 0) {
            if (p != first) {
                *p++ = ',';
            }
            p = w_kv(out, p, params[device_order[i]].name, s);
        }
    }
    if (p == first) {
        p = dev; /* no device id: no "device" */
    } else {
        *p++ = '}';
    }
    p = w_member(out, p, "ip", t->ip);
    p = w_member(out, p, "user_agent", t->user_agent);
    if (t->lookback_s != 0) {
        char num[24];
        int n = snprintf(num, sizeof(num), "%lld", (long long)t->lookback_s);
        p = W_LIT(p, ",\"lookback_s\":");
        p = w_mem(p, num, (size_t)n);
    }
    if (t->retargeting) {
        p = W_LIT(p, ",\"retargeting\":true");
    }
    if (t->via_link) {
        p = W_LIT(p, ",\"via\":\"link\"");
    }
    p = w_member(out, p, "deep_link", t->deep_link);
    for (int i = 0; i < 5; i++) {
        p = w_member(out, p, params[P_SUB1 + i].name, t->sub[i]);
    }
    *p++ = '}';
    *p = '\0'; /* core buffers keep a terminator after their content */
    out->len = (size_t)(p - out->ptr);
    return UMG_OK;
}

/* ------------------------------------------------------------------ misc */

umg_slice_t umg_touch_device_key(const umg_touch_t *t)
{
    const umg_slice_t *order[] = {&t->idfa, &t->gaid, &t->oaid, &t->android_id, &t->idfv, &t->custom_id};
    for (size_t i = 0; i < UMG_ARRAY_SIZE(order); i++) {
        if (order[i]->len != 0) {
            return *order[i];
        }
    }
    return UMG_SLICE_NULL;
}

int umg_touch_own(umg_touch_t *t, umg_arena_t *a)
{
    umg_slice_t *v[] = {&t->app_id,     &t->source,    &t->campaign, &t->campaign_id, &t->adset,     &t->ad,
                        &t->site,       &t->click_id,  &t->idfa,     &t->idfv,        &t->gaid,      &t->oaid,
                        &t->android_id, &t->custom_id, &t->ip,       &t->user_agent,  &t->deep_link, &t->sub[0],
                        &t->sub[1],     &t->sub[2],    &t->sub[3],   &t->sub[4]};
    return umg_arena_own(a, v, UMG_ARRAY_SIZE(v));
}

umg_touch_limits_t umg_touch_limits_stored(int64_t recv_us)
{
    return (umg_touch_limits_t){
        .now_us = recv_us, .max_future_us = INT64_MAX / 4, .max_age_us = INT64_MAX / 4, .stored = 1};
}
