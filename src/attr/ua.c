/*
 * ua.c - owns the device fingerprint that probabilistic matching compares:
 * a small User-Agent parser for the iOS and Android forms that reach click
 * links and SDKs, OS version packing, and the model and IP hashes.
 *
 * The parser is a handful of substring searches, not a general UA library:
 * probabilistic matching needs the platform, the OS version and, when the UA
 * names one, the device model, and nothing else.
 */
#include "umg_attr.h"

#include <arpa/inet.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define FP_SEED_MODEL UINT64_C(0x6d6f64656c5f6670)
#define FP_SEED_IP UINT64_C(0x69705f6164647221)

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* Whether the n bytes at p are lit (lower case), ignoring case. */
static int same_ci(const char *p, const char *lit, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        if (lower((unsigned char)p[j]) != lit[j]) {
            return 0;
        }
    }
    return 1;
}

/*
 * Finds lit (lower case) in s ignoring case; returns its offset or -1.
 *
 * The parser makes a dozen such searches per UA, most of them misses over the
 * whole string, once per install, session and event: a compare at every
 * position was a tenth of the pipeline's time. With SSE2, sixteen positions
 * are tested at a time for lit's first two bytes (a byte with bit 0x20 set
 * matches both cases of a letter; other bytes may pass the filter and are
 * turned down by the full compare).
 */
static long find_ci(umg_slice_t s, const char *lit)
{
    size_t n = strlen(lit);
    if (n == 0 || s.len < n) {
        return -1;
    }
    size_t i = 0;
#ifdef __SSE2__
    if (n >= 2) {
        const __m128i b20 = _mm_set1_epi8(0x20), c0 = _mm_set1_epi8(lit[0]), c1 = _mm_set1_epi8(lit[1]);
        for (; i + 17 <= s.len; i += 16) {
            __m128i a = _mm_or_si128(_mm_loadu_si128((const __m128i *)(const void *)(s.ptr + i)), b20);
            __m128i b = _mm_or_si128(_mm_loadu_si128((const __m128i *)(const void *)(s.ptr + i + 1)), b20);
            unsigned m = (unsigned)_mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(a, c0), _mm_cmpeq_epi8(b, c1)));
            while (m != 0) {
                size_t at = i + (size_t)__builtin_ctz(m);
                if (at + n <= s.len && same_ci(s.ptr + at, lit, n)) {
                    return (long)at;
                }
                m &= m - 1;
            }
        }
    }
#endif
    for (; i + n <= s.len; i++) {
        if (same_ci(s.ptr + i, lit, n)) {
            return (long)i;
        }
    }
    return -1;
}

/* Reads up to three numbers separated by any of seps ("._"); returns how many were read. */
static int read_version(const char *p, const char *end, const char *seps, unsigned v[3])
{
    int k = 0;
    v[0] = v[1] = v[2] = 0;
    while (k < 3 && p < end && *p >= '0' && *p <= '9') {
        unsigned x = 0;
        while (p < end && *p >= '0' && *p <= '9') {
            x = x < 100000 ? x * 10 + (unsigned)(*p - '0') : x;
            p++;
        }
        v[k++] = x;
        if (p + 1 < end && strchr(seps, *p) != NULL && *p != '\0' && p[1] >= '0' && p[1] <= '9') {
            p++;
        } else {
            break;
        }
    }
    return k;
}

static umg_slice_t trim(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t')) {
        p++;
    }
    while (e > p && (e[-1] == ' ' || e[-1] == '\t')) {
        e--;
    }
    return umg_slice(p, (size_t)(e - p));
}

/* A locale token such as "en-us" or "de_DE": not a model. */
static int is_locale(umg_slice_t t)
{
    return (t.len == 5 && (t.ptr[2] == '-' || t.ptr[2] == '_')) || (t.len == 2 && t.ptr[0] >= 'a' && t.ptr[0] <= 'z');
}

/*
 * The model in an Android UA is the token after "Android x.y;" up to ';' or
 * ')', without " Build/...", skipping "U", "wv" and locales (old Dalvik and
 * WebView forms put them there).
 */
static umg_slice_t android_model(const char *p, const char *end)
{
    for (;;) {
        while (p < end && *p != ';' && *p != ')') {
            p++;
        }
        if (p >= end || *p == ')') {
            return UMG_SLICE_NULL;
        }
        p++;
        const char *e = p;
        while (e < end && *e != ';' && *e != ')') {
            e++;
        }
        umg_slice_t t = trim(p, e);
        long b = find_ci(t, " build/");
        if (b < 0 && t.len >= 6 && find_ci(t, "build/") == 0) {
            b = 0;
        }
        if (b >= 0) {
            t = trim(t.ptr, t.ptr + b);
        }
        if (t.len > 0 && !umg_slice_eq(t, "U") && !umg_slice_eq(t, "wv") && !is_locale(t)) {
            return t;
        }
        if (e >= end || *e == ')') {
            return UMG_SLICE_NULL;
        }
        p = e;
    }
}

/* "iPhone14,2" / "iPad13,4": an Apple hardware model identifier. */
static umg_slice_t apple_model(umg_slice_t ua)
{
    static const char *const kinds[] = {"iphone", "ipad", "ipod"};
    for (size_t k = 0; k < UMG_ARRAY_SIZE(kinds); k++) {
        size_t from = 0;
        for (;;) {
            long i = find_ci(umg_slice(ua.ptr + from, ua.len - from), kinds[k]);
            if (i < 0) {
                break;
            }
            const char *p = ua.ptr + from + i, *end = ua.ptr + ua.len, *q = p + strlen(kinds[k]);
            const char *d = q;
            while (d < end && *d >= '0' && *d <= '9') {
                d++;
            }
            if (d > q && d + 1 < end && *d == ',' && d[1] >= '0' && d[1] <= '9') {
                d++;
                while (d < end && *d >= '0' && *d <= '9') {
                    d++;
                }
                return umg_slice(p, (size_t)(d - p));
            }
            from = (size_t)(q - ua.ptr);
        }
    }
    return UMG_SLICE_NULL;
}

static int parse_ios(umg_slice_t ua, umg_attr_ua_t *out)
{
    static const char *const marks[] = {"iphone os ", "cpu os ", "ios ", "ios/", "ipados "};
    const char *end = ua.ptr + ua.len;
    unsigned v[3];
    for (size_t k = 0; k < UMG_ARRAY_SIZE(marks); k++) {
        long i = find_ci(ua, marks[k]);
        if (i >= 0 && read_version(ua.ptr + i + strlen(marks[k]), end, "._", v) > 0) {
            *out = (umg_attr_ua_t){UMG_ATTR_PLATFORM_IOS, v[0], v[1], v[2], apple_model(ua)};
            return UMG_OK;
        }
    }
    /* App requests through CFNetwork name only the Darwin kernel: iOS major = Darwin major - 6
     * (Darwin 23 is iOS 17). The minor version is not recoverable, so it stays 0. */
    long c = find_ci(ua, "cfnetwork/");
    long d = find_ci(ua, "darwin/");
    if (c >= 0 && d >= 0 && read_version(ua.ptr + d + 7, end, ".", v) > 0 && v[0] > 6) {
        *out = (umg_attr_ua_t){UMG_ATTR_PLATFORM_IOS, v[0] - 6, 0, 0, apple_model(ua)};
        return UMG_OK;
    }
    return UMG_ENOENT;
}

int umg_attr_ua_parse(umg_slice_t ua, umg_attr_ua_t *out)
{
    if (ua.ptr == NULL || ua.len == 0 || out == NULL) {
        return UMG_ENOENT;
    }
    const char *end = ua.ptr + ua.len;
    long a = find_ci(ua, "android");
    if (a >= 0) {
        const char *p = ua.ptr + a + 7;
        unsigned v[3] = {0, 0, 0};
        if (p < end && (*p == ' ' || *p == '/')) {
            read_version(p + 1, end, ".", v);
        }
        *out = (umg_attr_ua_t){UMG_ATTR_PLATFORM_ANDROID, v[0], v[1], v[2], android_model(p, end)};
        return UMG_OK;
    }
    /* iPadOS 13+ Safari presents itself as a Mac: it is left unknown on purpose. */
    if (find_ci(ua, "iphone") >= 0 || find_ci(ua, "ipad") >= 0 || find_ci(ua, "ipod") >= 0 ||
        find_ci(ua, "ios ") >= 0 || find_ci(ua, "cfnetwork/") >= 0) {
        return parse_ios(ua, out);
    }
    return UMG_ENOENT;
}

uint32_t umg_attr_os_pack(umg_attr_platform_t platform, unsigned major, unsigned minor, unsigned patch)
{
    if (platform != UMG_ATTR_PLATFORM_IOS && platform != UMG_ATTR_PLATFORM_ANDROID) {
        return 0;
    }
    return (uint32_t)platform << 24 | (uint32_t)UMG_MIN(major, 255u) << 16 | (uint32_t)UMG_MIN(minor, 255u) << 8 |
           (uint32_t)UMG_MIN(patch, 255u);
}

umg_attr_platform_t umg_attr_platform_parse(umg_slice_t s)
{
    if (s.len == 3 && find_ci(s, "ios") == 0) {
        return UMG_ATTR_PLATFORM_IOS;
    }
    if (s.len == 7 && find_ci(s, "android") == 0) {
        return UMG_ATTR_PLATFORM_ANDROID;
    }
    return UMG_ATTR_PLATFORM_UNKNOWN;
}

uint32_t umg_attr_os_parse(umg_attr_platform_t platform, umg_slice_t version)
{
    unsigned v[3];
    if (version.ptr == NULL || read_version(version.ptr, version.ptr + version.len, "._", v) == 0) {
        return 0;
    }
    return umg_attr_os_pack(platform, v[0], v[1], v[2]);
}

uint32_t umg_attr_model_hash(umg_slice_t model)
{
    static const char *const generic[] = {"k", "iphone", "ipad", "ipod", "ipod touch", "mobile", "android"};
    umg_slice_t t = model.ptr ? trim(model.ptr, model.ptr + model.len) : UMG_SLICE_NULL;
    if (t.len == 0 || t.len > 128) {
        return 0;
    }
    char low[128];
    for (size_t i = 0; i < t.len; i++) {
        low[i] = (char)lower((unsigned char)t.ptr[i]);
    }
    for (size_t i = 0; i < UMG_ARRAY_SIZE(generic); i++) {
        if (strlen(generic[i]) == t.len && memcmp(generic[i], low, t.len) == 0) {
            return 0;
        }
    }
    uint64_t h = umg_hash64(low, t.len, FP_SEED_MODEL);
    uint32_t r = (uint32_t)(h ^ (h >> 32));
    return r ? r : 1;
}

uint64_t umg_attr_ip_hash(umg_slice_t ip)
{
    umg_slice_t t = ip.ptr ? trim(ip.ptr, ip.ptr + ip.len) : UMG_SLICE_NULL;
    if (t.len == 0 || t.len > 64) {
        return 0;
    }
    /* One address written two ways is one address: the hash is of its canonical text (inet_ntop's, the form
     * most senders use already), an IPv4 address seen through a dual-stack socket (::ffff:a.b.c.d, or in hex)
     * as IPv4. Text that is no address is hashed as it is, in lower case. */
    char low[INET6_ADDRSTRLEN > 65 ? INET6_ADDRSTRLEN : 65];
    memcpy(low, t.ptr, t.len);
    low[t.len] = '\0';
    unsigned char a[16];
    if (inet_pton(AF_INET6, low, a) == 1) {
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        int v4 = memcmp(a, mapped, sizeof(mapped)) == 0;
        if (inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? a + 12 : a, low, sizeof(low)) != NULL) {
            t = umg_slice(low, strlen(low));
        }
    } else if (inet_pton(AF_INET, low, a) == 1 && inet_ntop(AF_INET, a, low, sizeof(low)) != NULL) {
        t = umg_slice(low, strlen(low));
    } else {
        for (size_t i = 0; i < t.len; i++) {
            low[i] = (char)lower((unsigned char)low[i]);
        }
    }
    uint64_t h = umg_hash64(low, t.len, FP_SEED_IP);
    return h ? h : 1;
}

void umg_attr_fp_make(umg_attr_fp_t *out, umg_slice_t ip, umg_slice_t user_agent, umg_slice_t platform,
                      umg_slice_t os_version, umg_slice_t model)
{
    umg_attr_ua_t ua;
    int have_ua = umg_attr_ua_parse(user_agent, &ua) == UMG_OK;
    umg_attr_platform_t pf = umg_attr_platform_parse(platform);
    if (pf == UMG_ATTR_PLATFORM_UNKNOWN && have_ua) {
        pf = ua.platform;
    }
    uint32_t os = umg_attr_os_parse(pf, os_version);
    /* The UA's version counts only when it describes the same platform and names a major version. */
    if (os == 0 && have_ua && ua.platform == pf && ua.major > 0) {
        os = umg_attr_os_pack(pf, ua.major, ua.minor, ua.patch);
    }
    uint32_t m = umg_attr_model_hash(model);
    if (m == 0 && have_ua && ua.platform == pf) {
        m = umg_attr_model_hash(ua.model);
    }
    *out = (umg_attr_fp_t){umg_attr_ip_hash(ip), os, m};
}
