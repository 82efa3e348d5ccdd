/*
 * log.c - owns the structured logger: one JSON object per line on stderr,
 * written with a single write(2) so lines from concurrent threads and
 * processes do not interleave. It formats into stack buffers only, so it
 * still works when the heap is exhausted; over-long messages are truncated
 * on a UTF-8 character boundary.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <strings.h>
#include <unistd.h>

#include "umg_core.h"

#define LOG_MSG_MAX 2048
#define LOG_LINE_MAX (LOG_MSG_MAX * 6 + 512)

umg_log_level_t umg_log_min_level = UMG_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int umg_log_level_parse(const char *s, umg_log_level_t *out)
{
    if (s == NULL) {
        return UMG_EINVAL;
    }
    for (size_t i = 0; i < UMG_ARRAY_SIZE(level_names); i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (umg_log_level_t)i;
            return UMG_OK;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = UMG_LOG_WARN;
        return UMG_OK;
    }
    return UMG_EINVAL;
}

/* Appends s[0..n) JSON-escaped (without quotes) at d; the caller guarantees 6*n bytes of room. */
static char *escape_into(char *d, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            *d++ = '\\';
            *d++ = (char)c;
        } else if (c >= 0x20) {
            *d++ = (char)c;
        } else if (c == '\n') {
            *d++ = '\\';
            *d++ = 'n';
        } else if (c == '\t') {
            *d++ = '\\';
            *d++ = 't';
        } else if (c == '\r') {
            *d++ = '\\';
            *d++ = 'r';
        } else {
            memcpy(d, "\\u00", 4);
            d[4] = hex[c >> 4];
            d[5] = hex[c & 0xf];
            d += 6;
        }
    }
    return d;
}

static char *append_lit(char *d, const char *lit)
{
    size_t n = strlen(lit);
    memcpy(d, lit, n);
    return d + n;
}

void umg__log_write(umg_log_level_t level, const char *module, const char *fmt, ...)
{
    char msg[LOG_MSG_MAX];
    char line[LOG_LINE_MAX];
    char ts[32];
    int saved_errno = errno;

    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    size_t mlen = n < 0 ? 0 : (size_t)n;
    if (mlen >= sizeof(msg)) {
        /* Truncated: back off so no partial UTF-8 sequence is left at the end. */
        mlen = sizeof(msg) - 1;
        size_t cut = mlen;
        while (cut > 0 && ((unsigned char)msg[cut] & 0xC0) == 0x80) {
            cut--;
        }
        mlen = cut;
    }

    if ((unsigned)level > UMG_LOG_ERROR) {
        level = UMG_LOG_ERROR;
    }
    if (module == NULL) {
        module = "-";
    }
    size_t modlen = strnlen(module, 64);
    umg_time_format_rfc3339(umg_now_us(), ts);

    char *d = line;
    d = append_lit(d, "{\"ts\":\"");
    d = append_lit(d, ts);
    d = append_lit(d, "\",\"level\":\"");
    d = append_lit(d, level_names[level]);
    d = append_lit(d, "\",\"module\":\"");
    d = escape_into(d, module, modlen);
    d = append_lit(d, "\",\"msg\":\"");
    d = escape_into(d, msg, mlen);
    d = append_lit(d, "\"}\n");

    /* One write per line; a short write is not retried, so no line is ever split in two. */
    ssize_t w;
    do {
        w = write(STDERR_FILENO, line, (size_t)(d - line));
    } while (w < 0 && errno == EINTR);
    errno = saved_errno;
}
