/*
 * umg_codec_int.h - what the event and touch codecs share (private to
 * src/event): JSON paths for error fields, the UTF-8 scrub behind the
 * per-field invalid_utf8 errors, and the fast writers of the canonical JSON.
 * Header-only so the writers stay inlined on the encode paths.
 */
#ifndef UMG_CODEC_INT_H
#define UMG_CODEC_INT_H

#include "umg_core.h"
#include "umg_json.h"

/* Marks the bytes of ill-formed UTF-8 so a document still parses. */
#define UTF8_MARK 0x7f

#define load64 umg_load64
#define ONES UMG_SWAR_ONES
#define HIGH UMG_SWAR_HIGH
#define SWAR_IN UMG_SWAR_IN

/* Non-zero when some byte of w is below 0x20 (whether any is: exact; which one: not). */
static inline uint64_t swar_ctl(uint64_t w)
{
    return (w - ONES * 0x20) & ~w & HIGH;
}

#define W_LIT(p, lit) w_mem((p), (lit), sizeof(lit) - 1)

/*
 * Writes "prefix.key" (or either alone) into out, cutting the key at a UTF-8
 * character boundary when it does not fit.
 */
static inline void build_path(char *out, size_t cap, const char *pfx, const char *key, size_t klen)
{
    size_t n = 0;
    if (pfx != NULL) {
        size_t pl = strlen(pfx);
        memcpy(out, pfx, pl);
        n = pl;
        if (key != NULL) {
            out[n++] = '.';
        }
    }
    if (key != NULL) {
        size_t room = cap - 1 - n;
        if (klen > room) {
            klen = room;
            while (klen > 0 && ((unsigned char)key[klen] & 0xc0) == 0x80) {
                klen--;
            }
        }
        memcpy(out + n, key, klen);
        n += klen;
    }
    out[n] = '\0';
}

/*
 * Replaces every byte of every ill-formed UTF-8 sequence with UTF8_MARK,
 * following the Unicode "maximal subpart" rules: a lead byte followed by the
 * wrong continuation is marked alone and the scan resumes at the next byte,
 * so a stray continuation byte is marked on its own turn.
 */
static inline void utf8_scrub(unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t bad = 0, k = umg_utf8_seq(s + i, n - i, &bad);
        if (k == 0) {
            memset(s + i, UTF8_MARK, bad); /* the lead and the continuations that were valid so far */
            k = bad;
        }
        i += k;
    }
}

static inline const char *json_type_name(umg_json_type_t t)
{
    switch (t) {
    case UMG_JSON_NULL: return "null";
    case UMG_JSON_BOOL: return "a boolean";
    case UMG_JSON_INT64:
    case UMG_JSON_UINT64:
    case UMG_JSON_DOUBLE: return "a number";
    case UMG_JSON_STRING: return "a string";
    case UMG_JSON_ARRAY: return "an array";
    case UMG_JSON_OBJECT: return "an object";
    }
    return "a value";
}

static inline int is_zero_id(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '0' && s[i] != '-') {
            return 0;
        }
    }
    return 1;
}

/*
 * The encoder reserves the worst case once, then writes through a local
 * cursor: keeping the position in a register instead of b->len avoids a
 * reload after every byte store (char stores may alias anything).
 */
static inline char *w_mem(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

/* Non-zero when some byte of w is below 0x20, a quote or a backslash. */
static inline uint64_t swar_needs_escape(uint64_t w)
{
    uint64_t ctl = swar_ctl(w);
    uint64_t q = w ^ (ONES * '"');
    uint64_t bs = w ^ (ONES * '\\');
    q = (q - ONES) & ~q & HIGH;
    bs = (bs - ONES) & ~bs & HIGH;
    return ctl | q | bs;
}

static inline unsigned byte_needs_escape(unsigned char c)
{
    return (unsigned)(c < 0x20) | (unsigned)(c == '"') | (unsigned)(c == '\\');
}

static inline void store64(char *p, uint64_t w)
{
    memcpy(p, &w, 8);
}

/*
 * Writes s as a JSON string. Most strings (ids, versions, names) need no
 * escaping: they are copied in words while being checked, with overlapping
 * loads at the tail so that nothing is read outside s and no memcpy call is
 * made. The copy may write past the string's end inside the reserved space;
 * what follows overwrites it. Strings that need escaping go through core's
 * escaper from the same position.
 */
static inline char *w_str(umg_buf_t *b, char *p, umg_slice_t s)
{
    const char *src = s.ptr;
    size_t n = s.len;
    char *d = p + 1;
    uint64_t acc = 0;
    *p = '"';
    if (n >= 8) {
        size_t i = 0;
        for (; i + 8 < n; i += 8) {
            uint64_t w = load64(src + i);
            acc |= swar_needs_escape(w);
            store64(d + i, w);
        }
        uint64_t w = load64(src + n - 8);
        acc |= swar_needs_escape(w);
        store64(d + n - 8, w);
    } else if (n >= 4) {
        uint32_t lo, hi;
        memcpy(&lo, src, 4);
        memcpy(&hi, src + n - 4, 4);
        acc = swar_needs_escape((uint64_t)lo | (uint64_t)hi << 32);
        memcpy(d, &lo, 4);
        memcpy(d + n - 4, &hi, 4);
    } else if (n > 0) {
        d[0] = src[0];
        d[n / 2] = src[n / 2];
        d[n - 1] = src[n - 1];
        acc = byte_needs_escape((unsigned char)src[0]) | byte_needs_escape((unsigned char)src[n / 2]) |
              byte_needs_escape((unsigned char)src[n - 1]);
    }
    if (acc == 0) {
        d[n] = '"';
        return d + n + 1;
    }
    b->len = (size_t)(p - b->ptr);
    /* Capacity was reserved by the caller, so this cannot fail. */
    (void)umg_buf_json_str(b, src, n);
    return b->ptr + b->len;
}

/* A time as a JSON string: "YYYY-MM-DDTHH:MM:SS.uuuuuuZ". */
static inline char *w_time(char *p, int64_t us)
{
    *p++ = '"';
    p = umg_time_write_rfc3339(p, us);
    *p++ = '"';
    return p;
}

/* Bytes a string may need: every byte escaped as \u00XX, quotes, and its key. */
static inline size_t str_bound(umg_slice_t s)
{
    return s.len * 6 + 2 + 24;
}

#endif
