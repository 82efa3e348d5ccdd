/*
 * buf.c - owns umg_buf_t, the growable byte buffer: growth by doubling, JSON
 * string escaping, and printf-free integer formatting for the hot path. The
 * buffer keeps one spare byte so its content is always NUL-terminated after
 * an append.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "umg_core.h"

#define BUF_MIN_CAP 64

int umg_buf_reserve(umg_buf_t *b, size_t extra)
{
    /* One spare byte for the terminator. */
    if (extra > SIZE_MAX - 1 - b->len) {
        return UMG_ENOMEM;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap) {
        return UMG_OK;
    }
    size_t cap = b->cap < BUF_MIN_CAP ? BUF_MIN_CAP : b->cap;
    while (cap < need) {
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    }
    char *p = umg_realloc(b->ptr, cap);
    if (p == NULL) {
        return UMG_ENOMEM;
    }
    b->ptr = p;
    b->cap = cap;
    return UMG_OK;
}

int umg_buf_append(umg_buf_t *b, const void *p, size_t n)
{
    int rc = umg_buf_reserve(b, n);
    if (rc != UMG_OK) {
        return rc;
    }
    if (n != 0) {
        memcpy(b->ptr + b->len, p, n);
    }
    b->len += n;
    b->ptr[b->len] = '\0';
    return UMG_OK;
}

int umg_buf_putc(umg_buf_t *b, char c)
{
    int rc = umg_buf_reserve(b, 1);
    if (rc != UMG_OK) {
        return rc;
    }
    b->ptr[b->len++] = c;
    b->ptr[b->len] = '\0';
    return UMG_OK;
}

int umg_buf_printf(umg_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    int rc = umg_buf_reserve(b, 0);
    if (rc != UMG_OK) {
        return rc;
    }
    size_t room = b->cap - b->len;
    va_start(ap, fmt);
    int n = vsnprintf(b->ptr + b->len, room, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->ptr[b->len] = '\0';
        return UMG_EINVAL;
    }
    if ((size_t)n >= room) {
        rc = umg_buf_reserve(b, (size_t)n);
        if (rc != UMG_OK) {
            b->ptr[b->len] = '\0';
            return rc;
        }
        va_start(ap, fmt);
        vsnprintf(b->ptr + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
    return UMG_OK;
}

static const char hex_digits[] = "0123456789abcdef";

/* 0 for bytes copied as they are, otherwise the short escape letter or 'u'. */
static const char json_escape[256] = {
    ['\b'] = 'b', ['\t'] = 't', ['\n'] = 'n', ['\f'] = 'f', ['\r'] = 'r', [0x00] = 'u',  [0x01] = 'u',
    [0x02] = 'u', [0x03] = 'u', [0x04] = 'u', [0x05] = 'u', [0x06] = 'u', [0x07] = 'u',  [0x0b] = 'u',
    [0x0e] = 'u', [0x0f] = 'u', [0x10] = 'u', [0x11] = 'u', [0x12] = 'u', [0x13] = 'u',  [0x14] = 'u',
    [0x15] = 'u', [0x16] = 'u', [0x17] = 'u', [0x18] = 'u', [0x19] = 'u', [0x1a] = 'u',  [0x1b] = 'u',
    [0x1c] = 'u', [0x1d] = 'u', [0x1e] = 'u', [0x1f] = 'u', ['"'] = '"',  ['\\'] = '\\',
};

/*
 * Bytes at or above 0x80 are copied unchanged: the input is UTF-8 already and
 * RFC 8259 only requires quotes, backslashes and control characters escaped.
 */
int umg_buf_json_str(umg_buf_t *b, const char *s, size_t n)
{
    /* Worst case every byte becomes \u00XX; reserving that up front keeps the loop check-free. */
    if (n > (SIZE_MAX - 3) / 6) {
        return UMG_ENOMEM;
    }
    int rc = umg_buf_reserve(b, n * 6 + 2);
    if (rc != UMG_OK) {
        return rc;
    }
    char *d = b->ptr + b->len;
    *d++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char e = json_escape[c];
        if (e == 0) {
            *d++ = (char)c;
        } else if (e != 'u') {
            *d++ = '\\';
            *d++ = e;
        } else {
            memcpy(d, "\\u00", 4);
            d[4] = hex_digits[c >> 4];
            d[5] = hex_digits[c & 0xf];
            d += 6;
        }
    }
    *d++ = '"';
    b->len = (size_t)(d - b->ptr);
    b->ptr[b->len] = '\0';
    return UMG_OK;
}

const char umg_digit_pairs[201] = "00010203040506070809"
                                  "10111213141516171819"
                                  "20212223242526272829"
                                  "30313233343536373839"
                                  "40414243444546474849"
                                  "50515253545556575859"
                                  "60616263646566676869"
                                  "70717273747576777879"
                                  "80818283848586878889"
                                  "90919293949596979899";

/* Writes v backwards ending at `end`; returns the first digit's address. */
static char *u64_digits(uint64_t v, char *end)
{
    char *p = end;
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        p -= 2;
        memcpy(p, umg_digit_pairs + 2 * r, 2);
    }
    if (v >= 10) {
        p -= 2;
        memcpy(p, umg_digit_pairs + 2 * v, 2);
    } else {
        *--p = (char)('0' + v);
    }
    return p;
}

int umg_buf_u64(umg_buf_t *b, uint64_t v)
{
    char tmp[20];
    char *p = u64_digits(v, tmp + sizeof(tmp));
    return umg_buf_append(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

int umg_buf_i64(umg_buf_t *b, int64_t v)
{
    char tmp[21];
    /* Negate in unsigned arithmetic so INT64_MIN does not overflow. */
    uint64_t mag = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    char *p = u64_digits(mag, tmp + sizeof(tmp));
    if (v < 0) {
        *--p = '-';
    }
    return umg_buf_append(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

void umg_buf_free(umg_buf_t *b)
{
    if (b == NULL) {
        return;
    }
    umg_free(b->ptr);
    b->ptr = NULL;
    b->len = 0;
    b->cap = 0;
}

/* A CSV text field (RFC 4180): quoted when it holds a comma, a quote or a line break. Text starting with
 * =, +, -, @, a tab or a CR gets a leading apostrophe, so that a spreadsheet shows it instead of running it
 * as a formula (campaign names come from ad clicks), as the dashboard's CSV does; so does text starting with an
 * apostrophe, so that a reader dropping the guard (the cost import) gets it back whole. */
int umg_buf_csv_field(umg_buf_t *o, umg_slice_t s)
{
    int quote = 0, guard = s.len > 0 && memchr("=+-@\t\r'", s.ptr[0], 7) != NULL;
    for (size_t i = 0; i < s.len && !quote; i++) {
        quote = s.ptr[i] == ',' || s.ptr[i] == '"' || s.ptr[i] == '\n' || s.ptr[i] == '\r';
    }
    if (!quote) {
        int rc = guard ? umg_buf_putc(o, '\'') : UMG_OK;
        return rc ? rc : umg_buf_append(o, s.ptr, s.len);
    }
    int rc = umg_buf_putc(o, '"');
    rc = rc || !guard ? rc : umg_buf_putc(o, '\'');
    for (size_t i = 0; i < s.len && rc == UMG_OK; i++) {
        rc = s.ptr[i] == '"' ? umg_buf_append(o, "\"\"", 2) : umg_buf_putc(o, s.ptr[i]);
    }
    return rc ? rc : umg_buf_putc(o, '"');
}
