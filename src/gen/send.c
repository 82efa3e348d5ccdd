/*
 * send.c - owns where `unmogrowp gen` puts its requests: a blocking
 * HTTP/1.1 keep-alive client over plain TCP (no TLS) that posts a batch,
 * honours 429 Retry-After, retries 503 and broken connections with backoff,
 * and checks that every item of the batch is answered for; a request-file
 * writer for benchmarks; and the small JSON reader both need.
 *
 * Retrying a whole batch is safe: every generated touch and event carries
 * its own touch_id / event_id, so what was stored before a broken connection
 * comes back as a duplicate instead of being stored twice.
 */
#include "gen_int.h"

#include <errno.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- JSON */

#define JSON_MAX_DEPTH 64

static const char *ws(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
        p++;
    }
    return p;
}

/* p is at the opening quote; returns the position after the closing one, or NULL. */
static const char *skip_string(const char *p, const char *e)
{
    for (p++; p < e; p++) {
        if (*p == '\\') {
            p++;
        } else if (*p == '"') {
            return p + 1;
        }
    }
    return NULL;
}

static const char *skip_value(const char *p, const char *e, int depth)
{
    p = ws(p, e);
    if (p >= e || depth > JSON_MAX_DEPTH) {
        return NULL;
    }
    if (*p == '"') {
        return skip_string(p, e);
    }
    if (*p == '{' || *p == '[') {
        int obj = *p == '{';
        char close = obj ? '}' : ']';
        p = ws(p + 1, e);
        if (p < e && *p == close) {
            return p + 1;
        }
        for (;;) {
            if (obj) {
                p = ws(p, e);
                if (p >= e || *p != '"' || (p = skip_string(p, e)) == NULL) {
                    return NULL;
                }
                p = ws(p, e);
                if (p >= e || *p != ':') {
                    return NULL;
                }
                p++;
            }
            if ((p = skip_value(p, e, depth + 1)) == NULL) {
                return NULL;
            }
            p = ws(p, e);
            if (p < e && *p == ',') {
                p++;
            } else if (p < e && *p == close) {
                return p + 1;
            } else {
                return NULL;
            }
        }
    }
    const char *s = p;
    while (p < e && ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '+' ||
                     *p == '-' || *p == '.')) {
        p++;
    }
    return p > s ? p : NULL;
}

int umg__gen_json_member(umg_slice_t obj, const char *key, umg_slice_t *val)
{
    const char *e = obj.ptr + obj.len, *p = ws(obj.ptr, e);
    size_t klen = strlen(key);
    if (p >= e || *p != '{') {
        return UMG_EPARSE;
    }
    p = ws(p + 1, e);
    if (p < e && *p == '}') {
        return UMG_ENOENT;
    }
    for (;;) {
        if (p >= e || *p != '"') {
            return UMG_EPARSE;
        }
        const char *k = p + 1;
        if ((p = skip_string(p, e)) == NULL) {
            return UMG_EPARSE;
        }
        int match = (size_t)(p - 1 - k) == klen && memcmp(k, key, klen) == 0;
        p = ws(p, e);
        if (p >= e || *p != ':') {
            return UMG_EPARSE;
        }
        const char *v = ws(p + 1, e);
        if ((p = skip_value(v, e, 1)) == NULL) {
            return UMG_EPARSE;
        }
        if (match) {
            *val = umg_slice(v, (size_t)(p - v));
            return UMG_OK;
        }
        p = ws(p, e);
        if (p < e && *p == ',') {
            p = ws(p + 1, e);
        } else if (p < e && *p == '}') {
            return UMG_ENOENT;
        } else {
            return UMG_EPARSE;
        }
    }
}

int umg__gen_json_next(umg_slice_t *cur, umg_slice_t *elem)
{
    const char *e = cur->ptr + cur->len, *p = ws(cur->ptr, e);
    if (p < e && *p == '[') {
        p = ws(p + 1, e);
        if (p < e && *p == ']') {
            *cur = umg_slice(p, (size_t)(e - p));
            return UMG_ENOENT;
        }
    } else if (p < e && *p == ',') {
        p++;
    } else if (p < e && *p == ']') {
        return UMG_ENOENT;
    } else {
        return UMG_EPARSE;
    }
    const char *v = ws(p, e), *q = skip_value(v, e, 1);
    if (q == NULL) {
        return UMG_EPARSE;
    }
    *elem = umg_slice(v, (size_t)(q - v));
    q = ws(q, e);
    if (q >= e || (*q != ',' && *q != ']')) {
        return UMG_EPARSE;
    }
    *cur = umg_slice(q, (size_t)(e - q));
    return UMG_OK;
}

static int put_utf8(char *out, size_t cap, size_t *n, uint32_t cp)
{
    char b[4];
    size_t k;
    if (cp < 0x80) {
        b[0] = (char)cp, k = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xc0 | cp >> 6), b[1] = (char)(0x80 | (cp & 0x3f)), k = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xe0 | cp >> 12), b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        b[2] = (char)(0x80 | (cp & 0x3f)), k = 3;
    } else {
        b[0] = (char)(0xf0 | cp >> 18), b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), b[3] = (char)(0x80 | (cp & 0x3f)), k = 4;
    }
    if (*n + k >= cap) {
        return UMG_ERANGE;
    }
    memcpy(out + *n, b, k);
    *n += k;
    return UMG_OK;
}

static int hex4(const char *p, const char *e, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int h = p + i < e ? umg_hexval((unsigned char)p[i]) : -1;
        if (h < 0) {
            return UMG_EINVAL;
        }
        v = v << 4 | (uint32_t)h;
    }
    *out = v;
    return UMG_OK;
}

int umg__gen_json_string(umg_slice_t raw, char *out, size_t cap)
{
    const char *p = raw.ptr, *e = raw.ptr + raw.len;
    size_t n = 0;
    if (cap == 0 || raw.len < 2 || *p != '"' || e[-1] != '"') {
        return UMG_EINVAL;
    }
    for (p++, e--; p < e; p++) {
        uint32_t cp = (unsigned char)*p;
        if (cp == '\\') {
            if (++p >= e) {
                return UMG_EINVAL;
            }
            switch (*p) {
            case 'b': cp = '\b'; break;
            case 'f': cp = '\f'; break;
            case 'n': cp = '\n'; break;
            case 'r': cp = '\r'; break;
            case 't': cp = '\t'; break;
            case 'u':
                if (hex4(p + 1, e, &cp) != UMG_OK) {
                    return UMG_EINVAL;
                }
                p += 4;
                if (cp >= 0xd800 && cp < 0xdc00) {
                    uint32_t lo;
                    if (p + 2 >= e || p[1] != '\\' || p[2] != 'u' || hex4(p + 3, e, &lo) != UMG_OK || lo < 0xdc00 ||
                        lo > 0xdfff) {
                        return UMG_EINVAL;
                    }
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    p += 6;
                } else if (cp >= 0xdc00 && cp < 0xe000) {
                    return UMG_EINVAL;
                }
                if (put_utf8(out, cap, &n, cp) != UMG_OK) {
                    return UMG_ERANGE;
                }
                continue;
            default: cp = (unsigned char)*p; break;
            }
        }
        if (n + 1 >= cap) {
            return UMG_ERANGE;
        }
        out[n++] = (char)cp;
    }
    out[n] = '\0';
    return UMG_OK;
}

int umg__gen_json_int(umg_slice_t raw, int64_t *out)
{
    const char *p = raw.ptr, *e = raw.ptr + raw.len;
    int neg = p < e && *p == '-';
    p += neg;
    if (p >= e) {
        return UMG_EINVAL;
    }
    uint64_t v = 0;
    for (; p < e; p++) {
        if (*p < '0' || *p > '9') {
            return UMG_EINVAL;
        }
        if (v > (UINT64_C(1) << 62)) {
            return UMG_ERANGE;
        }
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (v > (uint64_t)INT64_MAX) {
        return UMG_ERANGE;
    }
    *out = neg ? -(int64_t)v : (int64_t)v;
    return UMG_OK;
}

/* ------------------------------------------------------------- answers */

static void str_member(umg_slice_t obj, const char *key, char *out, size_t cap)
{
    umg_slice_t v;
    out[0] = '\0';
    if (umg__gen_json_member(obj, key, &v) == UMG_OK && umg__gen_json_string(v, out, cap) != UMG_OK) {
        out[0] = '\0';
    }
}

/* The index-th item of a request body ({"touches": [...]} or {"events": [...]}). */
static umg_slice_t body_item(const char *body, size_t blen, int64_t index)
{
    umg_slice_t arr, cur, el = UMG_SLICE_NULL;
    umg_slice_t doc = umg_slice(body, blen);
    if (umg__gen_json_member(doc, "touches", &arr) != UMG_OK && umg__gen_json_member(doc, "events", &arr) != UMG_OK) {
        return UMG_SLICE_NULL;
    }
    cur = arr;
    for (int64_t i = 0; i <= index; i++) {
        if (umg__gen_json_next(&cur, &el) != UMG_OK) {
            return UMG_SLICE_NULL;
        }
    }
    return el;
}

static void print_rejection(umg_slice_t rej, const char *body, size_t blen)
{
    char code[64], field[128], message[256];
    int64_t index = -1;
    umg_slice_t v;
    if (umg__gen_json_member(rej, "index", &v) == UMG_OK) {
        umg__gen_json_int(v, &index);
    }
    str_member(rej, "code", code, sizeof(code));
    str_member(rej, "field", field, sizeof(field));
    str_member(rej, "message", message, sizeof(message));
    umg_slice_t item = index >= 0 ? body_item(body, blen, index) : UMG_SLICE_NULL;
    fprintf(stderr, "unmogrowp gen: rejected item %lld of a batch: %s%s%s: %s\n  %.*s%s\n", (long long)index, code,
            field[0] ? " on " : "", field, message, (int)UMG_MIN(item.len, 300), item.ptr ? item.ptr : "",
            item.len > 300 ? "..." : "");
}

int umg__gen_answer_parse(const char *answer, size_t alen, const char *body, size_t blen, size_t n,
                          umg__gen_result_t *res, int *budget)
{
    umg_slice_t doc = umg_slice(answer, alen), v, cur, el;
    int64_t acc, dup;
    if (umg__gen_json_member(doc, "accepted", &v) != UMG_OK || umg__gen_json_int(v, &acc) != UMG_OK || acc < 0 ||
        umg__gen_json_member(doc, "duplicates", &v) != UMG_OK || umg__gen_json_int(v, &dup) != UMG_OK || dup < 0 ||
        umg__gen_json_member(doc, "rejected", &cur) != UMG_OK) {
        return UMG_EPARSE;
    }
    uint64_t nrej = 0;
    int rc;
    while ((rc = umg__gen_json_next(&cur, &el)) == UMG_OK) {
        if (*budget > 0) {
            print_rejection(el, body, blen);
            --*budget;
        }
        nrej++;
    }
    if (rc != UMG_ENOENT || (uint64_t)acc > n || (uint64_t)dup > n || (uint64_t)acc + (uint64_t)dup + nrej != n) {
        return UMG_EPARSE;
    }
    res->accepted += (uint64_t)acc;
    res->duplicates += (uint64_t)dup;
    res->rejected += nrej;
    return UMG_OK;
}

int64_t umg__gen_retry_after_ms(const char *value, size_t len, int64_t dflt_ms)
{
    int64_t s = 0;
    size_t i = 0;
    while (i < len && value[i] == ' ') {
        i++;
    }
    size_t d = i;
    while (i < len && value[i] >= '0' && value[i] <= '9' && s < 1000000) {
        s = s * 10 + (value[i++] - '0');
    }
    if (i == d) {
        return dflt_ms;
    }
    return UMG_MIN(s * 1000, 300 * 1000);
}

/* ------------------------------------------------------------- signing */

int umg__gen_sign(const char *key, int64_t ts_s, const char *body, size_t len, char out[65])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    umg_buf_t msg = {0};
    if (key == NULL || key[0] == '\0') {
        return UMG_EINVAL;
    }
    if (umg_buf_printf(&msg, "%lld.", (long long)ts_s) != UMG_OK || umg_buf_append(&msg, body, len) != UMG_OK) {
        umg_buf_free(&msg);
        return UMG_ENOMEM;
    }
    unsigned char *r = HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)msg.ptr, msg.len, mac, &maclen);
    umg_buf_free(&msg);
    if (r == NULL || maclen != 32) {
        return UMG_ENOMEM;
    }
    umg_hex_encode(mac, 32, out);
    return UMG_OK;
}

/* ---------------------------------------------------------------- HTTP */

#define HEAD_MAX (64 * 1024)
#define ANSWER_MAX (64 * 1024 * 1024)
#define IO_ATTEMPTS 8    /* consecutive connection failures before giving up */
#define BUSY_ATTEMPTS 12 /* consecutive 503 answers before giving up */

typedef struct http_s {
    char host[256], port[16], prefix[256], secret[512], key[512], signing[512], hosthdr[300];
    int fd;
    int timeout_ms;
    int budget; /* rejections still to print */
    umg_buf_t head, in;
    umg_buf_t answer;
} http_t;

/* One parsed answer. */
typedef struct answer_s {
    int status;
    int close;
    int64_t retry_after_ms; /* -1 when absent */
} answer_t;

/* Waits ms, in steps of at most 100 ms; 1 when Ctrl-C came meanwhile (the caller stops retrying). */
static int sleep_ms(int64_t ms)
{
    while (ms > 0 && !umg__gen_interrupted) {
        int64_t step = UMG_MIN(ms, 100);
        struct timespec ts = {0, (long)step * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !umg__gen_interrupted) {
        }
        ms -= step;
    }
    return umg__gen_interrupted != 0;
}

static void http_disconnect(http_t *h)
{
    if (h->fd >= 0) {
        close(h->fd);
        h->fd = -1;
    }
}

static int http_connect(http_t *h, char *msg, size_t msglen)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(h->host, h->port, &hints, &res);
    if (gai != 0) {
        snprintf(msg, msglen, "cannot resolve %s: %s", h->host, gai_strerror(gai));
        return UMG_EIO;
    }
    int err = 0;
    for (struct addrinfo *a = res; a != NULL; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        struct timeval tv = {h->timeout_ms / 1000, (h->timeout_ms % 1000) * 1000};
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
            freeaddrinfo(res);
            h->fd = fd;
            return UMG_OK;
        }
        err = errno;
        close(fd);
    }
    freeaddrinfo(res);
    snprintf(msg, msglen, "cannot connect to %s: %s", h->hosthdr, strerror(err));
    return UMG_EIO;
}

static int send_all(int fd, const char *a, size_t alen, const char *b, size_t blen)
{
    struct iovec iov[2] = {{(void *)a, alen}, {(void *)b, blen}};
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
    while (iov[0].iov_len + iov[1].iov_len > 0) {
        ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        size_t k = (size_t)w;
        for (int i = 0; i < 2; i++) {
            size_t t = UMG_MIN(k, iov[i].iov_len);
            iov[i].iov_base = (char *)iov[i].iov_base + t;
            iov[i].iov_len -= t;
            k -= t;
        }
        if (iov[0].iov_len == 0) {
            mh.msg_iov = &iov[1];
            mh.msg_iovlen = 1;
        }
    }
    return 0;
}

/* Reads more into h->in; returns the byte count, 0 at the end of the stream, -1 on errors and timeouts. */
static ssize_t fill(http_t *h)
{
    if (umg_buf_reserve(&h->in, 64 * 1024) != UMG_OK) {
        errno = ENOMEM;
        return -1;
    }
    for (;;) {
        ssize_t r = recv(h->fd, h->in.ptr + h->in.len, h->in.cap - h->in.len - 1, 0);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r > 0) {
            h->in.len += (size_t)r;
        }
        return r;
    }
}

static int header_is(const char *line, size_t len, const char *name, const char **val, size_t *vlen)
{
    size_t n = strlen(name);
    if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':') {
        return 0;
    }
    const char *v = line + n + 1, *e = line + len;
    while (v < e && (*v == ' ' || *v == '\t')) {
        v++;
    }
    while (e > v && (e[-1] == ' ' || e[-1] == '\t')) {
        e--;
    }
    *val = v;
    *vlen = (size_t)(e - v);
    return 1;
}

/* Decodes a chunked body starting at h->in.ptr + off into h->answer, reading as needed. */
static int read_chunked(http_t *h, size_t off)
{
    for (;;) {
        char *line = h->in.ptr + off, *crlf;
        while ((crlf = memmem(h->in.ptr + off, h->in.len - off, "\r\n", 2)) == NULL) {
            if (h->in.len - off > 1024 || fill(h) <= 0) {
                return -1;
            }
            line = h->in.ptr + off;
        }
        size_t size = 0;
        const char *p = line;
        int digits = 0;
        for (; p < crlf && umg_hexval((unsigned char)*p) >= 0 && size < ANSWER_MAX; p++, digits++) {
            size = size * 16 + (size_t)umg_hexval((unsigned char)*p);
        }
        if (digits == 0 || size >= ANSWER_MAX) {
            return -1;
        }
        off = (size_t)(crlf + 2 - h->in.ptr);
        if (size == 0) {
            /* Trailers, then the blank line. */
            while (memmem(h->in.ptr + off, h->in.len - off, "\r\n", 2) != h->in.ptr + off) {
                char *t = memmem(h->in.ptr + off, h->in.len - off, "\r\n", 2);
                if (t != NULL) {
                    off = (size_t)(t + 2 - h->in.ptr);
                } else if (h->in.len - off > HEAD_MAX || fill(h) <= 0) {
                    return -1;
                }
            }
            return 0;
        }
        while (h->in.len - off < size + 2) {
            if (fill(h) <= 0) {
                return -1;
            }
        }
        if (umg_buf_append(&h->answer, h->in.ptr + off, size) != UMG_OK || h->answer.len > ANSWER_MAX) {
            return -1;
        }
        off += size + 2;
    }
}

/* Reads one answer into h->answer; -1 when the connection failed or the answer is not HTTP. */
static int read_answer(http_t *h, answer_t *a)
{
    h->in.len = 0;
    h->answer.len = 0;
    char *end;
    while ((end = h->in.len ? memmem(h->in.ptr, h->in.len, "\r\n\r\n", 4) : NULL) == NULL) {
        if (h->in.len > HEAD_MAX || fill(h) <= 0) {
            return -1;
        }
    }
    size_t head_len = (size_t)(end + 4 - h->in.ptr);
    char *line = h->in.ptr, *eol = memmem(line, head_len, "\r\n", 2);
    if (eol - line < 12 || strncmp(line, "HTTP/1.", 7) != 0) {
        return -1;
    }
    a->status = atoi(line + 9);
    a->close = line[7] == '0';
    a->retry_after_ms = -1;
    int64_t clen = -1;
    int chunked = 0;
    for (line = eol + 2; line < end; line = eol + 2) {
        eol = memmem(line, (size_t)(end + 2 - line), "\r\n", 2);
        const char *v;
        size_t vlen;
        size_t len = (size_t)(eol - line);
        if (header_is(line, len, "content-length", &v, &vlen)) {
            clen = strtoll(v, NULL, 10);
        } else if (header_is(line, len, "transfer-encoding", &v, &vlen)) {
            chunked = vlen >= 7 && strncasecmp(v + vlen - 7, "chunked", 7) == 0;
        } else if (header_is(line, len, "connection", &v, &vlen)) {
            a->close = vlen == 5 && strncasecmp(v, "close", 5) == 0 ? 1 : vlen == 10 ? 0 : a->close;
        } else if (header_is(line, len, "retry-after", &v, &vlen)) {
            a->retry_after_ms = umg__gen_retry_after_ms(v, vlen, 1000);
        }
    }
    if (chunked) {
        return read_chunked(h, head_len);
    }
    if (a->status == 204 || a->status == 304 || a->status < 200) {
        clen = 0; /* no body, whatever the headers say */
    }
    if (clen < 0) {
        /* No length: the body runs to the end of the connection. */
        a->close = 1;
        ssize_t r;
        while ((r = fill(h)) > 0 && h->in.len < ANSWER_MAX) {
        }
        if (r < 0) {
            return -1;
        }
        clen = (int64_t)(h->in.len - head_len);
    }
    if (clen > ANSWER_MAX) {
        return -1;
    }
    while (h->in.len - head_len < (size_t)clen) {
        if (fill(h) <= 0) {
            return -1;
        }
    }
    return umg_buf_append(&h->answer, h->in.ptr + head_len, (size_t)clen) == UMG_OK ? 0 : -1;
}

/* "code: message" of an error answer, for messages. */
static void error_text(const http_t *h, char *out, size_t cap)
{
    umg_slice_t doc = umg_slice(h->answer.ptr ? h->answer.ptr : "", h->answer.len), err;
    char code[64] = "", message[256] = "", field[128] = "";
    if (umg__gen_json_member(doc, "error", &err) == UMG_OK) {
        str_member(err, "code", code, sizeof(code));
        str_member(err, "message", message, sizeof(message));
        str_member(err, "field", field, sizeof(field));
    }
    if (code[0]) {
        snprintf(out, cap, "%s%s%s: %s", code, field[0] ? " on " : "", field, message);
    } else {
        snprintf(out, cap, "%.*s", (int)UMG_MIN(h->answer.len, 200), h->answer.ptr ? h->answer.ptr : "");
    }
}

/* The request head, signed as asked at the current time (made again for every attempt). */
static int http_head(http_t *h, const umg__gen_req_t *req)
{
    h->head.len = 0;
    if (req->link) {
        /* A click link as a bot follows it: no User-Agent, no credentials. */
        return umg_buf_printf(&h->head, "GET %s%s HTTP/1.1\r\nHost: %s\r\n\r\n", h->prefix, req->path, h->hosthdr);
    }
    /* A spoofed install pretends to be the SDK: it carries the app key (when known), as SDK requests do. */
    int as_sdk = req->spoof && h->key[0];
    if (umg_buf_printf(&h->head,
                       "POST %s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: unmogrowp-gen/0.1\r\nContent-Type: "
                       "application/json\r\n%s: %s\r\nContent-Length: %zu\r\n",
                       h->prefix, req->path, h->hosthdr, as_sdk ? "X-App-Key" : "X-App-Secret",
                       as_sdk ? h->key : h->secret, req->len) != UMG_OK) {
        return UMG_ENOMEM;
    }
    if (req->sign != UMG__GEN_SIGN_NONE) {
        char sig[65], key[530];
        int64_t ts = umg_now_us() / 1000000 - (req->sign == UMG__GEN_SIGN_STALE ? 600 : 0);
        snprintf(key, sizeof(key), req->sign == UMG__GEN_SIGN_BAD ? "%s-not-the-secret" : "%s",
                 h->signing[0] ? h->signing : h->secret);
        int rc = umg__gen_sign(key, ts, req->body, req->len, sig);
        memset(key, 0, sizeof(key));
        if (rc != UMG_OK || umg_buf_printf(&h->head, "X-Signature: v1=%s\r\nX-Signature-Timestamp: %lld\r\n", sig,
                                           (long long)ts) != UMG_OK) {
            return UMG_ENOMEM;
        }
    }
    return umg_buf_append(&h->head, "\r\n", 2);
}

static int http_post(void *sink, const umg__gen_req_t *req, umg__gen_result_t *res, char *msg, size_t msglen)
{
    http_t *h = sink;
    int io_fail = 0, busy = 0, limited = 0;
    int64_t backoff = 250;
    char why[512] = "";
    const char *path = req->path, *body = req->body;
    size_t len = req->len, n = req->n;
    memset(res, 0, sizeof(*res));
    for (;;) {
        answer_t a;
        if (http_head(h, req) != UMG_OK) {
            snprintf(msg, msglen, "out of memory");
            return UMG_ENOMEM;
        }
        int fresh = h->fd < 0;
        if (fresh && http_connect(h, why, sizeof(why)) != UMG_OK) {
            goto io_failed;
        }
        errno = 0; /* a close by the server sets none: no left-over reason in the message */
        if (send_all(h->fd, h->head.ptr, h->head.len, body, len) != 0 || read_answer(h, &a) != 0) {
            snprintf(why, sizeof(why), "the connection to %s failed: %s", h->hosthdr,
                     errno == EAGAIN ? "timed out"
                     : errno         ? strerror(errno)
                                     : "closed, or not an HTTP answer");
            http_disconnect(h);
            /* A kept-alive connection the server closed meanwhile: retry at once, once. */
            if (!fresh && io_fail == 0) {
                io_fail++;
                res->retries++;
                continue;
            }
            goto io_failed;
        }
        io_fail = 0;
        if (a.close) {
            http_disconnect(h);
        }
        if (req->link && a.status >= 200 && a.status < 400) {
            res->accepted = n;
            return UMG_OK;
        }
        if (a.status >= 200 && a.status < 300) {
            if (umg__gen_answer_parse(h->answer.ptr, h->answer.len, body, len, n, res, &h->budget) != UMG_OK) {
                snprintf(msg, msglen, "unexpected answer to POST %s (HTTP %d, %zu items sent): %.*s", path, a.status, n,
                         (int)UMG_MIN(h->answer.len, 300), h->answer.ptr ? h->answer.ptr : "");
                return UMG_EPARSE;
            }
            return UMG_OK;
        }
        error_text(h, why, sizeof(why));
        if (a.status == 401 && req->spoof) {
            /* A spoofed request refused: what the daemon should answer (sdk_spoofing). */
            res->unauthorized = n;
            return UMG_OK;
        }
        if (a.status == 429 && strncmp(why, "quota_exceeded", 14) != 0 && ++limited < 100000) {
            res->retries++;
            if (sleep_ms(a.retry_after_ms >= 0 ? UMG_MAX(a.retry_after_ms, 50) : 1000)) {
                goto interrupted;
            }
            continue;
        }
        if (a.status == 503 && ++busy < BUSY_ATTEMPTS) {
            res->retries++;
            if (sleep_ms(UMG_MAX(a.retry_after_ms, backoff))) {
                goto interrupted;
            }
            backoff = UMG_MIN(backoff * 2, 10000);
            continue;
        }
        if (a.status >= 400 && a.status < 500 && a.status != 429 && !req->link &&
            umg__gen_answer_parse(h->answer.ptr, h->answer.len, body, len, n, res, &h->budget) == UMG_OK) {
            return UMG_OK;
        }
        snprintf(msg, msglen, "%s %s answered HTTP %d%s: %s%s", req->link ? "GET" : "POST", path, a.status,
                 a.status == 503 ? " again and again" : "", why,
                 a.status == 401   ? " (check --secret: it must be the app secret, as_...)"
                 : a.status == 413 ? " (lower --batch)"
                                   : "");
        return UMG_EIO;
    io_failed:
        if (++io_fail >= IO_ATTEMPTS) {
            snprintf(msg, msglen, "%s (gave up after %d attempts)", why, io_fail);
            return UMG_EIO;
        }
        res->retries++;
        if (sleep_ms(backoff)) {
            goto interrupted;
        }
        backoff = UMG_MIN(backoff * 2, 10000);
    }
interrupted:
    snprintf(msg, msglen, "interrupted while waiting to send %s again (%zu items not sent)", path, n);
    return UMG_ECLOSED;
}

static int http_close(void *sink, char *msg, size_t msglen)
{
    http_t *h = sink;
    (void)msg, (void)msglen;
    if (h != NULL) {
        http_disconnect(h);
        umg_buf_free(&h->head);
        umg_buf_free(&h->in);
        umg_buf_free(&h->answer);
        memset(h->secret, 0, sizeof(h->secret));
        memset(h->signing, 0, sizeof(h->signing));
        umg_free(h);
    }
    return UMG_OK;
}

const umg__gen_sink_ops_t umg__gen_http_ops = {http_post, http_close};

int umg__gen_http_open(const umg__gen_http_config_t *cfg, void **out, char *msg, size_t msglen)
{
    if (strlen(cfg->host) >= 256 || strlen(cfg->port) >= 16 || strlen(cfg->prefix) >= 256 ||
        strlen(cfg->secret) >= 512 || (cfg->signing != NULL && strlen(cfg->signing) >= 512)) {
        snprintf(msg, msglen, "host, port, path or secret too long");
        return UMG_EINVAL;
    }
    http_t *h = umg_calloc(1, sizeof(*h));
    if (h == NULL) {
        snprintf(msg, msglen, "out of memory");
        return UMG_ENOMEM;
    }
    h->fd = -1;
    snprintf(h->host, sizeof(h->host), "%s", cfg->host);
    snprintf(h->port, sizeof(h->port), "%s", cfg->port);
    snprintf(h->prefix, sizeof(h->prefix), "%s", cfg->prefix);
    snprintf(h->secret, sizeof(h->secret), "%s", cfg->secret);
    snprintf(h->key, sizeof(h->key), "%s", cfg->key != NULL ? cfg->key : "");
    snprintf(h->signing, sizeof(h->signing), "%s", cfg->signing != NULL ? cfg->signing : "");
    snprintf(h->hosthdr, sizeof(h->hosthdr), strchr(cfg->host, ':') ? "[%s]:%s" : "%s:%s", cfg->host, cfg->port);
    h->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 60000;
    h->budget = cfg->max_print;
    int rc = http_connect(h, msg, msglen);
    if (rc != UMG_OK) {
        http_close(h, NULL, 0);
        return rc;
    }
    *out = h;
    return UMG_OK;
}

/* ---------------------------------------------------------------- files */

typedef struct file_s {
    FILE *f;
    int own;
    char path[512];
} file_t;

static int file_post(void *sink, const umg__gen_req_t *req, umg__gen_result_t *res, char *msg, size_t msglen)
{
    file_t *f = sink;
    memset(res, 0, sizeof(*res));
    if (fputs("POST ", f->f) < 0 || fputs(req->path, f->f) < 0 || fputc('\t', f->f) < 0 ||
        fwrite(req->body, 1, req->len, f->f) != req->len || fputc('\n', f->f) < 0) {
        snprintf(msg, msglen, "cannot write %s: %s", f->path, strerror(errno));
        return UMG_EIO;
    }
    return UMG_OK;
}

static int file_close(void *sink, char *msg, size_t msglen)
{
    file_t *f = sink;
    int rc = UMG_OK;
    if (f == NULL) {
        return UMG_OK;
    }
    if (fflush(f->f) != 0 || ferror(f->f) || (f->own && fclose(f->f) != 0)) {
        snprintf(msg, msglen, "cannot write %s: %s", f->path, strerror(errno));
        rc = UMG_EIO;
    }
    umg_free(f);
    return rc;
}

const umg__gen_sink_ops_t umg__gen_file_ops = {file_post, file_close};

int umg__gen_file_open(const char *path, void **out, char *msg, size_t msglen)
{
    file_t *f = umg_calloc(1, sizeof(*f));
    if (f == NULL) {
        snprintf(msg, msglen, "out of memory");
        return UMG_ENOMEM;
    }
    snprintf(f->path, sizeof(f->path), "%s", strcmp(path, "-") == 0 ? "standard output" : path);
    f->own = strcmp(path, "-") != 0;
    f->f = f->own ? fopen(path, "w") : stdout;
    if (f->f == NULL) {
        snprintf(msg, msglen, "cannot create %s: %s", path, strerror(errno));
        umg_free(f);
        return UMG_EIO;
    }
    setvbuf(f->f, NULL, _IOFBF, 1 << 20);
    *out = f;
    return UMG_OK;
}
