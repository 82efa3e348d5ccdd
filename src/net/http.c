/*
 * http.c - the HTTP server on h2o's evloop: one loop and one SO_REUSEPORT
 * listener per thread, TLS with ALPN (h2, http/1.1), limits answered with JSON
 * errors, routing by exact path or prefix, request ids, per-route metrics,
 * deferred responses resumed through h2o's multithread queue, and pull-based
 * streamed responses.
 */
#include "umg_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <h2o.h>
#include <h2o/http2.h>

typedef struct cidr_s {
    int family;
    uint8_t addr[16];
    int bits;
} cidr_t;

struct umg_http_defer_s {
    h2o_multithread_message_t super; /* first: the queue links through it */
    struct thread_s *t;
    umg_http_req_t *req; /* NULL once the client went away */
    struct defer_guard_s *guard;
    umg_http_resume_cb cb;
    void *data;
    umg_http_defer_t *next_free;
};

typedef struct defer_guard_s {
    umg_http_defer_t *d;
} defer_guard_t;

typedef struct thread_s {
    umg_http_server_t *srv;
    int index;
    pthread_t tid;
    h2o_context_t ctx;
    h2o_multithread_receiver_t receiver;
    h2o_accept_ctx_t accept_ctx;
    int listen_fd;
    h2o_socket_t *listener;
    void *data;
    umg_http_defer_t *free_defers;
    h2o_timeout_t stream_poll;  /* streams waiting for data are pulled again after this */
    h2o_timeout_t stream_yield; /* streams that stopped after a bounded amount of work: 1 ms, so the loop serves
                                 * what else is ready first (an entry of a zero timeout could run again at once) */
} thread_t;

typedef struct handler_s {
    h2o_handler_t super;
    umg_http_server_t *srv;
} handler_t;

static const int known_status[] = {200, 202, 204, 302, 304, 400, 401, 403, 404, 405, 408, 413, 429, 431, 500, 503};
#define NSTATUS ((int)UMG_ARRAY_SIZE(known_status) + 1) /* + "other" */
#define UMG_HTTP_REQID_LEN 40

struct umg_http_server_s {
    umg_http_config_t cfg;
    h2o_globalconf_t conf;
    SSL_CTX *ssl;
    const umg_http_route_t *routes;
    size_t nroutes;
    umg_http_hooks_t hooks;
    thread_t *threads;
    int nthreads;
    char addr[80];
    volatile sig_atomic_t stop;
    _Atomic int64_t conns;
    cidr_t *proxies;
    size_t nproxies;
    /* metrics: requests by (route, status) and latency by route; route nroutes = unmatched */
    umg_metric_t *req_count;
    umg_metric_t *req_latency;
    char **labels;
};

struct umg_http_req_s {
    h2o_req_t *h;
    thread_t *t;
    int route;
    uint64_t start_ns;
    char reqid[UMG_HTTP_REQID_LEN];
    char ip[INET6_ADDRSTRLEN + 1];
};

static const double latency_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                        0.025,  0.05,    0.1,    0.25,  0.5,    1.0,   2.5};
static umg_metric_t m_conns = UMG_GAUGE("umg_http_connections", "Open client connections", NULL);
static umg_metric_t m_refused =
    UMG_COUNTER("umg_http_connections_refused_total", "Connections refused over http.max_connections", NULL);

/* ---------------------------------------------------------------- helpers */

static int parse_cidr(const char *s, size_t n, cidr_t *out)
{
    char buf[64];
    if (n == 0 || n >= sizeof(buf)) {
        return UMG_EINVAL;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *slash = strchr(buf, '/');
    int bits = -1;
    if (slash != NULL) {
        *slash = '\0';
        char *end;
        long b = strtol(slash + 1, &end, 10);
        if (*end != '\0' || slash[1] == '\0' || b < 0 || b > 128) {
            return UMG_EINVAL;
        }
        bits = (int)b;
    }
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = AF_INET;
        out->bits = bits < 0 ? 32 : bits;
        return out->bits <= 32 ? UMG_OK : UMG_EINVAL;
    }
    if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->family = AF_INET6;
        out->bits = bits < 0 ? 128 : bits;
        return UMG_OK;
    }
    return UMG_EINVAL;
}

static int cidr_match(const cidr_t *c, int family, const uint8_t *addr)
{
    if (c->family != family) {
        return 0;
    }
    int full = c->bits / 8, rest = c->bits % 8;
    if (memcmp(c->addr, addr, (size_t)full) != 0) {
        return 0;
    }
    if (rest == 0) {
        return 1;
    }
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (c->addr[full] & mask) == (addr[full] & mask);
}

static int trusted(umg_http_server_t *s, const char *ip)
{
    uint8_t a[16];
    int fam = strchr(ip, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(fam, ip, a) != 1) {
        return 0;
    }
    for (size_t i = 0; i < s->nproxies; i++) {
        if (cidr_match(&s->proxies[i], fam, a)) {
            return 1;
        }
    }
    return 0;
}

static int parse_proxies(umg_http_server_t *s, const char *list)
{
    if (list == NULL || *list == '\0') {
        return UMG_OK;
    }
    size_t cap = 1;
    for (const char *p = list; *p; p++) {
        cap += *p == ',';
    }
    s->proxies = umg_calloc(cap, sizeof(cidr_t));
    if (s->proxies == NULL) {
        return UMG_ENOMEM;
    }
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        while (n > 0 && (*p == ' ')) {
            p++;
            n--;
        }
        while (n > 0 && p[n - 1] == ' ') {
            n--;
        }
        if (n > 0) {
            if (parse_cidr(p, n, &s->proxies[s->nproxies]) != UMG_OK) {
                umg_log(UMG_LOG_ERROR, "http", "http.trusted_proxies: '%.*s' is not an address or CIDR", (int)n, p);
                return UMG_EINVAL;
            }
            s->nproxies++;
        }
        p += n;
        while (*p == ',' || *p == ' ') {
            p++;
        }
    }
    return UMG_OK;
}

static int status_slot(int status)
{
    for (int i = 0; i < NSTATUS - 1; i++) {
        if (known_status[i] == status) {
            return i;
        }
    }
    return NSTATUS - 1;
}

static int init_metrics(umg_http_server_t *s)
{
    size_t nr = s->nroutes + 2; /* + unmatched, + static (the dashboard) */
    s->req_count = umg_calloc(nr * NSTATUS, sizeof(umg_metric_t));
    s->req_latency = umg_calloc(nr, sizeof(umg_metric_t));
    s->labels = umg_calloc(nr * (NSTATUS + 1), sizeof(char *));
    if (s->req_count == NULL || s->req_latency == NULL || s->labels == NULL) {
        return UMG_ENOMEM;
    }
    for (size_t r = 0; r < nr; r++) {
        const char *route = r < s->nroutes ? s->routes[r].path : r == s->nroutes ? "unmatched" : "static";
        for (int k = 0; k < NSTATUS; k++) {
            umg_buf_t b = {0};
            if (k < NSTATUS - 1) {
                umg_buf_printf(&b, "route=\"%s\",status=\"%d\"", route, known_status[k]);
            } else {
                umg_buf_printf(&b, "route=\"%s\",status=\"other\"", route);
            }
            if (b.ptr == NULL) {
                return UMG_ENOMEM;
            }
            s->labels[r * (NSTATUS + 1) + (size_t)k] = b.ptr;
            umg_metric_t *m = &s->req_count[r * NSTATUS + (size_t)k];
            m->name = "umg_http_requests_total";
            m->help = "HTTP requests by route and status";
            m->labels = b.ptr;
            m->kind = UMG_METRIC_COUNTER;
        }
        umg_buf_t b = {0};
        umg_buf_printf(&b, "route=\"%s\"", route);
        if (b.ptr == NULL) {
            return UMG_ENOMEM;
        }
        s->labels[r * (NSTATUS + 1) + NSTATUS] = b.ptr;
        umg_metric_t *h = &s->req_latency[r];
        h->name = "umg_http_request_seconds";
        h->help = "HTTP request latency by route, from the request's arrival to its response";
        h->labels = b.ptr;
        h->kind = UMG_METRIC_HISTOGRAM;
        h->bounds = latency_bounds;
        h->nbounds = (int)UMG_ARRAY_SIZE(latency_bounds);
        umg_metric_register(h);
    }
    umg_metric_register(&m_conns);
    umg_metric_register(&m_refused);
    return UMG_OK;
}

static void record_route(umg_http_server_t *s, int route, int status, double seconds)
{
    umg_metric_t *m = &s->req_count[(size_t)route * NSTATUS + (size_t)status_slot(status)];
    if (!atomic_load_explicit(&m->registered, memory_order_relaxed)) {
        umg_metric_register(m);
    }
    umg_metric_add(m, 1);
    umg_metric_observe(&s->req_latency[route], seconds);
}

static void record(umg_http_req_t *r, int status)
{
    record_route(r->t->srv, r->route, status, (double)(umg_mono_ns() - r->start_ns) / 1e9);
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}

static void add_common_headers(umg_http_req_t *r)
{
    h2o_req_t *h = r->h;
    h2o_add_header_by_str(&h->pool, &h->res.headers, H2O_STRLIT("x-request-id"), 0, NULL, r->reqid, strlen(r->reqid));
    if (r->t->srv->ssl != NULL) {
        h2o_add_header_by_str(&h->pool, &h->res.headers, H2O_STRLIT("strict-transport-security"), 0, NULL,
                              H2O_STRLIT("max-age=31536000"));
    }
}

static void add_extra_headers(h2o_req_t *h, const char *extra)
{
    /* "Name: value\r\n" lines */
    while (extra != NULL && *extra) {
        const char *colon = strchr(extra, ':');
        const char *eol = strstr(extra, "\r\n");
        if (colon == NULL || eol == NULL || colon > eol) {
            break;
        }
        const char *v = colon + 1;
        while (*v == ' ') {
            v++;
        }
        char *name = h2o_mem_alloc_pool(&h->pool, (size_t)(colon - extra));
        for (const char *c = extra; c < colon; c++) {
            name[c - extra] = (char)((*c >= 'A' && *c <= 'Z') ? *c + 32 : *c);
        }
        /* The value is copied into the request's pool: callers pass text they free (or that lives on their stack)
         * as soon as the answer is handed over, and h2o keeps what it is given until it sends the head. */
        h2o_iovec_t val = h2o_strdup(&h->pool, v, (size_t)(eol - v));
        h2o_add_header_by_str(&h->pool, &h->res.headers, name, (size_t)(colon - extra), 0, NULL, val.base, val.len);
        extra = eol + 2;
    }
}

/* ---------------------------------------------------------------- answers */

void umg_http_respond(umg_http_req_t *r, int status, const char *content_type, const char *body, size_t len,
                      const char *extra_headers)
{
    h2o_req_t *h = r->h;
    h->res.status = status;
    h->res.reason = reason_phrase(status);
    add_common_headers(r);
    if (content_type != NULL) {
        h2o_add_header(&h->pool, &h->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type, strlen(content_type));
    }
    add_extra_headers(h, extra_headers);
    record(r, status);
    if (status == 204) {
        len = 0;
    }
    h->res.content_length = len;
    h2o_send_inline(h, len ? body : "", len);
}

void umg_http_add_header(umg_http_req_t *r, const char *name, const char *value)
{
    h2o_req_t *h = r->h;
    size_t nl = strlen(name), vl = strlen(value);
    char *n = h2o_mem_alloc_pool(&h->pool, nl);
    for (size_t i = 0; i < nl; i++) {
        n[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32 : name[i]);
    }
    char *v = h2o_mem_alloc_pool(&h->pool, vl + 1);
    memcpy(v, value, vl + 1);
    h2o_add_header_by_str(&h->pool, &h->res.headers, n, nl, 0, NULL, v, vl);
}

void umg_http_error(umg_http_req_t *r, int status, const char *code, const char *field, const char *message)
{
    char stack[1024];
    umg_buf_t b = {0};
    int rc = umg_buf_append(&b, "{\"error\":{\"code\":", 17);
    rc = rc ? rc : umg_buf_json_str(&b, code, strlen(code));
    rc = rc ? rc : umg_buf_append(&b, ",\"message\":", 11);
    rc = rc ? rc : umg_buf_json_str(&b, message, strlen(message));
    if (field != NULL) {
        rc = rc ? rc : umg_buf_append(&b, ",\"field\":", 9);
        rc = rc ? rc : umg_buf_json_str(&b, field, strlen(field));
    }
    rc = rc ? rc : umg_buf_append(&b, "}}\n", 3);
    const char *extra = NULL;
    if (status == 503 || status == 429) {
        extra = "Retry-After: 1\r\n";
    }
    if (rc != UMG_OK) {
        snprintf(stack, sizeof(stack), "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}\n");
        umg_http_respond(r, 503, "application/json", stack, strlen(stack), "Retry-After: 1\r\n");
    } else {
        umg_http_respond(r, status, "application/json", b.ptr, b.len, extra);
    }
    umg_buf_free(&b);
}

/* ---------------------------------------------------------------- accessors */

umg_slice_t umg_http_method(umg_http_req_t *r)
{
    return umg_slice(r->h->method.base, r->h->method.len);
}

umg_slice_t umg_http_path(umg_http_req_t *r)
{
    return umg_slice(r->h->path_normalized.base, r->h->path_normalized.len);
}

umg_slice_t umg_http_query(umg_http_req_t *r)
{
    if (r->h->query_at == SIZE_MAX) {
        return umg_slice("", 0);
    }
    return umg_slice(r->h->path.base + r->h->query_at + 1, r->h->path.len - r->h->query_at - 1);
}

umg_slice_t umg_http_body(umg_http_req_t *r)
{
    return umg_slice(r->h->entity.base ? r->h->entity.base : "", r->h->entity.base ? r->h->entity.len : 0);
}

umg_slice_t umg_http_header(umg_http_req_t *r, const char *lname)
{
    ssize_t i = h2o_find_header_by_str(&r->h->headers, lname, strlen(lname), -1);
    if (i < 0) {
        return UMG_SLICE_NULL;
    }
    return umg_slice(r->h->headers.entries[i].value.base, r->h->headers.entries[i].value.len);
}

const char *umg_http_request_id(umg_http_req_t *r)
{
    return r->reqid;
}

void *umg_http_alloc(umg_http_req_t *r, size_t n)
{
    return h2o_mem_alloc_pool(&r->h->pool, n);
}

const char *umg_http_client_ip(umg_http_req_t *r)
{
    if (r->ip[0] != '\0') {
        return r->ip;
    }
    struct sockaddr_storage ss;
    socklen_t sl = r->h->conn->callbacks->get_peername(r->h->conn, (struct sockaddr *)&ss);
    if (sl == 0) {
        snprintf(r->ip, sizeof(r->ip), "0.0.0.0");
    } else if (ss.ss_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, r->ip, sizeof(r->ip));
    } else {
        struct in6_addr *a6 = &((struct sockaddr_in6 *)&ss)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a6)) {
            inet_ntop(AF_INET, &a6->s6_addr[12], r->ip, sizeof(r->ip));
        } else {
            inet_ntop(AF_INET6, a6, r->ip, sizeof(r->ip));
        }
    }
    umg_http_server_t *s = r->t->srv;
    if (s->nproxies == 0 || !trusted(s, r->ip)) {
        return r->ip;
    }
    /*
     * Walk X-Forwarded-For from the right; the first untrusted address is the client.
     * Proxies may add a header line of their own instead of extending the last one,
     * so every line counts, joined in order.
     */
    umg_slice_t xff = UMG_SLICE_NULL;
    size_t total = 0;
    for (ssize_t i = -1; (i = h2o_find_header_by_str(&r->h->headers, H2O_STRLIT("x-forwarded-for"), i)) != -1;) {
        total += r->h->headers.entries[i].value.len + 1;
    }
    if (total > 0) {
        char *joined = h2o_mem_alloc_pool(&r->h->pool, total);
        size_t o = 0;
        for (ssize_t i = -1; (i = h2o_find_header_by_str(&r->h->headers, H2O_STRLIT("x-forwarded-for"), i)) != -1;) {
            if (o > 0) {
                joined[o++] = ',';
            }
            memcpy(joined + o, r->h->headers.entries[i].value.base, r->h->headers.entries[i].value.len);
            o += r->h->headers.entries[i].value.len;
        }
        xff = umg_slice(joined, o);
    }
    size_t end = xff.len;
    while (end > 0) {
        size_t start = end;
        while (start > 0 && xff.ptr[start - 1] != ',') {
            start--;
        }
        size_t a = start, b = end;
        while (a < b && xff.ptr[a] == ' ') {
            a++;
        }
        while (b > a && xff.ptr[b - 1] == ' ') {
            b--;
        }
        char cand[INET6_ADDRSTRLEN + 1];
        uint8_t bin[16];
        if (b - a > 0 && b - a < sizeof(cand)) {
            memcpy(cand, xff.ptr + a, b - a);
            cand[b - a] = '\0';
            int fam = strchr(cand, ':') ? AF_INET6 : AF_INET;
            if (inet_pton(fam, cand, bin) != 1) {
                break; /* garbage: stop believing the header */
            }
            snprintf(r->ip, sizeof(r->ip), "%s", cand);
            if (!trusted(s, cand)) {
                break;
            }
        } else {
            break;
        }
        end = start > 0 ? start - 1 : 0;
    }
    return r->ip;
}

/* URL-decodes v[0..vl) into d ('+' is a space) and ends it with a NUL; the decoded length, or -1 when a '%' is
 * not followed by two hex digits. d has room for vl + 1 bytes. */
static ssize_t url_decode(const char *v, size_t vl, char *d)
{
    size_t o = 0;
    for (size_t k = 0; k < vl; k++) {
        if (v[k] == '%') {
            if (k + 2 >= vl || umg_hexval(v[k + 1]) < 0 || umg_hexval(v[k + 2]) < 0) {
                return -1;
            }
            d[o++] = (char)(umg_hexval(v[k + 1]) * 16 + umg_hexval(v[k + 2]));
            k += 2;
        } else {
            d[o++] = v[k] == '+' ? ' ' : v[k];
        }
    }
    d[o] = '\0';
    return (ssize_t)o;
}

int umg_http_query_param(umg_http_req_t *r, const char *name, umg_slice_t *out)
{
    umg_slice_t q = umg_http_query(r);
    size_t nl = strlen(name), i = 0;
    while (i < q.len) {
        size_t e = i;
        while (e < q.len && q.ptr[e] != '&') {
            e++;
        }
        if (e - i > nl && q.ptr[i + nl] == '=' && memcmp(q.ptr + i, name, nl) == 0) {
            size_t vl = e - i - nl - 1;
            char *d = umg_http_alloc(r, vl + 1);
            ssize_t n = url_decode(q.ptr + i + nl + 1, vl, d);
            if (n < 0) {
                return UMG_EINVAL;
            }
            *out = umg_slice(d, (size_t)n);
            return UMG_OK;
        }
        i = e + 1;
    }
    return UMG_ENOENT;
}

size_t umg_http_query_split(umg_http_req_t *r, umg_http_param_t **out)
{
    umg_slice_t q = umg_http_query(r);
    size_t cap = 1;
    for (size_t i = 0; i < q.len; i++) {
        cap += q.ptr[i] == '&';
    }
    umg_http_param_t *ps = umg_http_alloc(r, cap * sizeof(*ps));
    char *d = umg_http_alloc(r, q.len + 1); /* every decoded value and its NUL: no longer than "=value" */
    size_t n = 0;
    for (size_t i = 0; i < q.len;) {
        size_t e = i, eq = SIZE_MAX;
        for (; e < q.len && q.ptr[e] != '&'; e++) {
            eq = eq == SIZE_MAX && q.ptr[e] == '=' ? e : eq;
        }
        if (eq != SIZE_MAX) {
            ssize_t vl = url_decode(q.ptr + eq + 1, e - eq - 1, d);
            ps[n].name = umg_slice(q.ptr + i, eq - i);
            ps[n].value = vl < 0 ? UMG_SLICE_NULL : umg_slice(d, (size_t)vl);
            d += vl < 0 ? 0 : vl + 1;
            n++;
        }
        i = e + 1;
    }
    *out = ps;
    return n;
}

/* ---------------------------------------------------------------- defer */

static void on_guard_dispose(void *p)
{
    defer_guard_t *g = p;
    if (g->d != NULL) {
        g->d->req = NULL;
        g->d->guard = NULL;
    }
}

umg_http_defer_t *umg_http_defer(umg_http_req_t *r)
{
    thread_t *t = r->t;
    umg_http_defer_t *d = t->free_defers;
    if (d != NULL) {
        t->free_defers = d->next_free;
    } else if ((d = umg_malloc(sizeof(*d))) == NULL) {
        return NULL;
    }
    memset(d, 0, sizeof(*d));
    d->t = t;
    d->req = r;
    d->guard = h2o_mem_alloc_shared(&r->h->pool, sizeof(defer_guard_t), on_guard_dispose);
    d->guard->d = d;
    return d;
}

void umg_http_resume(umg_http_defer_t *d, umg_http_resume_cb cb, void *data)
{
    d->cb = cb;
    d->data = data;
    h2o_multithread_send_message(&d->t->receiver, &d->super);
}

void umg_http_defer_cancel(umg_http_defer_t *d)
{
    if (d->guard != NULL) {
        d->guard->d = NULL;
    }
    d->next_free = d->t->free_defers;
    d->t->free_defers = d;
}

static void on_messages(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    thread_t *t = H2O_STRUCT_FROM_MEMBER(thread_t, receiver, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        umg_http_defer_t *d = H2O_STRUCT_FROM_MEMBER(umg_http_defer_t, super.link, messages->next);
        h2o_linklist_unlink(&d->super.link);
        if (d->guard != NULL) {
            d->guard->d = NULL;
        }
        d->cb(d->req, d->data);
        d->next_free = t->free_defers;
        t->free_defers = d;
    }
}

/* ---------------------------------------------------------------- streams */

typedef struct stream_s {
    h2o_generator_t gen;
    h2o_timeout_entry_t wait; /* linked while the pull said UMG_EAGAIN */
    umg_http_req_t *r;
    umg_http_pull_t pull;
    void (*fini)(void *);
    void *data;
    umg_buf_t buf;
} stream_t;

static void stream_dispose(void *p)
{
    stream_t *st = p;
    if (h2o_timeout_is_linked(&st->wait)) {
        h2o_timeout_unlink(&st->wait);
    }
    if (st->fini != NULL) {
        st->fini(st->data);
    }
    umg_buf_free(&st->buf);
}

static void stream_proceed(h2o_generator_t *gen, h2o_req_t *h)
{
    stream_t *st = (stream_t *)gen;
    int done = 0;
    umg_buf_reset(&st->buf);
    int rc = st->pull(st->data, &st->buf, &done);
    if ((rc == UMG_EAGAIN || rc == UMG_EBUSY) && st->buf.len == 0 && !done) {
        h2o_timeout_link(h->conn->ctx->loop, rc == UMG_EBUSY ? &st->r->t->stream_yield : &st->r->t->stream_poll,
                         &st->wait);
        return;
    }
    if (rc == UMG_EAGAIN || rc == UMG_EBUSY) {
        rc = UMG_OK;
    }
    h2o_iovec_t iov = h2o_iovec_init(st->buf.ptr ? st->buf.ptr : "", st->buf.len);
    if (rc != UMG_OK) {
        umg_log(UMG_LOG_ERROR, "http", "stream %s failed: %s", st->r->reqid, umg_strerror(rc));
        h2o_send(h, &iov, 1, H2O_SEND_STATE_ERROR);
        return;
    }
    h2o_send(h, &iov, 1, done ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void stream_wake(h2o_timeout_entry_t *e)
{
    stream_t *st = H2O_STRUCT_FROM_MEMBER(stream_t, wait, e);
    stream_proceed(&st->gen, st->r->h);
}

static void stream_stop(h2o_generator_t *gen, h2o_req_t *h)
{
    (void)gen;
    (void)h;
}

void umg_http_stream(umg_http_req_t *r, int status, const char *content_type, umg_http_pull_t pull,
                     void (*fini)(void *data), void *data)
{
    h2o_req_t *h = r->h;
    stream_t *st = h2o_mem_alloc_shared(&h->pool, sizeof(*st), stream_dispose);
    memset(st, 0, sizeof(*st));
    st->gen.proceed = stream_proceed;
    st->gen.stop = stream_stop;
    st->wait.cb = stream_wake;
    st->r = r;
    st->pull = pull;
    st->fini = fini;
    st->data = data;
    h->res.status = status;
    h->res.reason = reason_phrase(status);
    add_common_headers(r);
    h2o_add_header(&h->pool, &h->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type, strlen(content_type));
    record(r, status);
    h2o_start_response(h, &st->gen);
    if (h2o_memis(h->method.base, h->method.len, H2O_STRLIT("HEAD"))) {
        /* The headers alone (h2o drops a body for HEAD only in h2o_send_inline): a body here would be taken for
         * the next response on the connection (found in review). fini runs when the request's pool goes. */
        h2o_send(h, NULL, 0, H2O_SEND_STATE_FINAL);
        return;
    }
    stream_proceed(&st->gen, h);
}

/* ---------------------------------------------------------------- dispatch */

static void new_request_id(char *out);

/* The client's X-Request-Id when it is a sane token, else a new one; out holds UMG_HTTP_REQID_LEN. */
static void make_request_id(h2o_req_t *h, char *out)
{
    ssize_t hi = h2o_find_header_by_str(&h->headers, H2O_STRLIT("x-request-id"), -1);
    h2o_iovec_t in = hi >= 0 ? h->headers.entries[hi].value : h2o_iovec_init(NULL, 0);
    int ok = in.len > 0 && in.len < UMG_HTTP_REQID_LEN;
    for (size_t i = 0; ok && i < in.len; i++) {
        char c = in.base[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
             c == '.';
    }
    if (ok) {
        memcpy(out, in.base, in.len);
        out[in.len] = '\0';
        return;
    }
    new_request_id(out);
}

/* A new request id into out (UMG_HTTP_REQID_LEN): 96 random bits per thread start, then a counter: unique and
 * cheap. */
static void new_request_id(char *out)
{
    static _Thread_local uint64_t seed_hi, counter;
    static _Thread_local uint32_t seed_lo;
    if (seed_hi == 0) {
        umg_random_bytes(&seed_hi, sizeof(seed_hi));
        umg_random_bytes(&seed_lo, sizeof(seed_lo));
        seed_hi |= 1;
    }
    static const char hex[] = "0123456789abcdef";
    uint64_t parts[3] = {seed_hi, seed_lo, ++counter & 0xffffffffull};
    int widths[3] = {16, 8, 8}, o = 0;
    for (int p = 0; p < 3; p++) {
        for (int k = widths[p] - 1; k >= 0; k--) {
            out[o++] = hex[(parts[p] >> (4 * k)) & 15];
        }
    }
    out[o] = '\0';
}

/*
 * h2o answers a few errors before a request reaches on_req, in plain text:
 * a body over max_request_entity_size (413) and a broken chunked encoding or
 * Content-Length (400) on HTTP/1.1, bad headers on HTTP/2 (400). A filter on
 * every path turns those into our JSON error with a request id: an error
 * response without our X-Request-Id can only be one of h2o's. (Heads over
 * H2O_MAX_REQLEN and bytes that are not HTTP get a canned 400 written
 * straight to the socket, and an HTTP/2 body over the limit a stream reset;
 * no filter sees those.)
 */
typedef struct h2o_error_s {
    h2o_ostream_t super;
    int sent;
} h2o_error_t;

static void h2o_error_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt,
                           h2o_send_state_t state)
{
    h2o_error_t *e = (h2o_error_t *)self;
    h2o_iovec_t body = h2o_iovec_init(NULL, 0);
    if (!e->sent) {
        /* h2o's text ("request entity is too large") becomes the message */
        char text[256];
        size_t tl = 0;
        for (size_t i = 0; i < bufcnt && tl < sizeof(text) - 1; i++) {
            size_t n = bufs[i].len < sizeof(text) - 1 - tl ? bufs[i].len : sizeof(text) - 1 - tl;
            memcpy(text + tl, bufs[i].base, n);
            tl += n;
        }
        if (tl == 0 && req->res.reason != NULL) { /* HEAD: no text was sent */
            tl = strlen(req->res.reason) < sizeof(text) - 1 ? strlen(req->res.reason) : sizeof(text) - 1;
            memcpy(text, req->res.reason, tl);
        }
        const char *code = req->res.status == 413   ? "body_too_large"
                           : req->res.status == 400 ? "bad_request"
                                                    : "http_error";
        umg_buf_t b = {0};
        int rc = umg_buf_append(&b, "{\"error\":{\"code\":", 17);
        rc = rc ? rc : umg_buf_json_str(&b, code, strlen(code));
        rc = rc ? rc : umg_buf_append(&b, ",\"message\":", 11);
        rc = rc ? rc : umg_buf_json_str(&b, text, tl);
        rc = rc ? rc : umg_buf_append(&b, "}}\n", 3);
        if (rc == UMG_OK) {
            body = h2o_strdup(&req->pool, b.ptr, b.len);
        }
        umg_buf_free(&b);
        req->res.content_length = body.len;
        e->sent = 1;
    }
    /* a HEAD request sends no buffers: only the length is ours */
    h2o_ostream_send_next(self, req, bufcnt > 0 && body.len > 0 ? &body : NULL, bufcnt > 0 && body.len > 0 ? 1 : 0,
                          state);
}

static void h2o_error_setup(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    (void)self;
    if (req->res.status >= 400 && h2o_find_header_by_str(&req->res.headers, H2O_STRLIT("x-request-id"), -1) < 0) {
        thread_t *t = H2O_STRUCT_FROM_MEMBER(thread_t, ctx, req->conn->ctx);
        char *id = h2o_mem_alloc_pool(&req->pool, UMG_HTTP_REQID_LEN);
        make_request_id(req, id);
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0, NULL, id, strlen(id));
        if (t->srv->ssl != NULL) { /* as on every answer of ours over TLS (found in review) */
            h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("strict-transport-security"), 0, NULL,
                                  H2O_STRLIT("max-age=31536000"));
        }
        ssize_t ct = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);
        if (ct >= 0) {
            req->res.headers.entries[ct].value = h2o_iovec_init(H2O_STRLIT("application/json"));
        }
        h2o_error_t *e = (h2o_error_t *)h2o_add_ostream(req, sizeof(*e), slot);
        e->super.do_send = h2o_error_send;
        e->sent = 0;
        slot = &e->super.next;
        struct timeval now;
        gettimeofday(&now, NULL);
        double secs = (double)(now.tv_sec - req->timestamps.request_begin_at.tv_sec) +
                      (double)(now.tv_usec - req->timestamps.request_begin_at.tv_usec) / 1e6;
        record_route(t->srv, (int)t->srv->nroutes, req->res.status, secs > 0 ? secs : 0);
    }
    h2o_setup_next_ostream(req, slot);
}

static int on_req(h2o_handler_t *self, h2o_req_t *h)
{
    umg_http_server_t *s = ((handler_t *)self)->srv;
    thread_t *t = H2O_STRUCT_FROM_MEMBER(thread_t, ctx, h->conn->ctx);
    umg_http_req_t *r = h2o_mem_alloc_pool(&h->pool, sizeof(*r));
    memset(r, 0, sizeof(*r));
    r->h = h;
    r->t = t;
    r->route = (int)s->nroutes;
    r->start_ns = umg_mono_ns();
    make_request_id(h, r->reqid);

    size_t hdr_bytes = h->path.len + h->method.len + h->authority.len; /* h2o takes Host out of the headers */
    for (size_t i = 0; i < h->headers.size; i++) {
        hdr_bytes += h->headers.entries[i].name->len + h->headers.entries[i].value.len + 4;
    }
    if ((int64_t)hdr_bytes > s->cfg.max_header_bytes) {
        umg_http_error(r, 431, "headers_too_large", NULL, "the request headers are larger than http.max_header_bytes");
        return 0;
    }
    umg_slice_t path = umg_http_path(r); /* without the query: a '?' here was %3f in the request */
    size_t plen = path.len;
    int path_match = -1;
    for (size_t i = 0; i < s->nroutes; i++) {
        const umg_http_route_t *rt = &s->routes[i];
        size_t rl = strlen(rt->path);
        int match = rt->prefix ? (plen >= rl && memcmp(path.ptr, rt->path, rl) == 0)
                               : (plen == rl && memcmp(path.ptr, rt->path, rl) == 0);
        if (!match) {
            continue;
        }
        path_match = (int)i;
        if (rt->method[0] == '*' || h2o_memis(h->method.base, h->method.len, rt->method, strlen(rt->method)) ||
            (strcmp(rt->method, "GET") == 0 && h2o_memis(h->method.base, h->method.len, H2O_STRLIT("HEAD")))) {
            r->route = (int)i;
            if (h->entity.base != NULL && (int64_t)h->entity.len > s->cfg.max_body_bytes) {
                umg_http_error(r, 413, "body_too_large", NULL, "the request body is larger than http.max_body_bytes");
                return 0;
            }
            rt->handler(r, t->data);
            return 0;
        }
    }
    if (path_match >= 0) {
        r->route = path_match;
        umg_http_error(r, 405, "method_not_allowed", NULL, "this path does not take that method");
        return 0;
    }
    if (s->hooks.web != NULL) {
        r->route = (int)s->nroutes + 1;
        if (umg_http_static_serve(s->hooks.web, r)) {
            return 0;
        }
        r->route = (int)s->nroutes;
    }
    umg_http_error(r, 404, "not_found", NULL, "no such endpoint");
    return 0;
}

/* ---------------------------------------------------------------- accept */

static void on_conn_close(void *data)
{
    umg_http_server_t *s = data;
    atomic_fetch_sub(&s->conns, 1);
    umg_metric_add(&m_conns, -1);
}

static void on_reject_written(h2o_socket_t *sock, const char *err)
{
    (void)err;
    umg_free(sock->data); /* the answer */
    h2o_socket_close(sock);
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    thread_t *t = listener->data;
    umg_http_server_t *s = t->srv;
    if (err != NULL) {
        return;
    }
    for (int i = 0; i < 16; i++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (sock == NULL) {
            return;
        }
        if (atomic_fetch_add(&s->conns, 1) >= s->cfg.max_connections) {
            atomic_fetch_sub(&s->conns, 1);
            umg_metric_add(&m_refused, 1);
            if (s->ssl != NULL) {
                h2o_socket_close(sock);
                continue;
            }
#define REFUSED_BODY                                                                                                   \
    "{\"error\":{\"code\":\"too_many_connections\",\"message\":\"the server is at http.max_connections\"}}\n"
            /* Like every answer, with a request id: the buffer lives until the write is done. */
            enum { CAP = 256 + UMG_HTTP_REQID_LEN + sizeof(REFUSED_BODY) };
            char *resp = umg_malloc(CAP), id[UMG_HTTP_REQID_LEN];
            if (resp == NULL) {
                h2o_socket_close(sock);
                continue;
            }
            new_request_id(id);
            int n = snprintf(resp, CAP,
                             "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                             "Retry-After: 1\r\nConnection: close\r\nX-Request-Id: %s\r\nContent-Length: %zu\r\n\r\n"
                             "%s",
                             id, sizeof(REFUSED_BODY) - 1, REFUSED_BODY);
            sock->data = resp;
            h2o_iovec_t iov = h2o_iovec_init(resp, (size_t)n);
            h2o_socket_write(sock, &iov, 1, on_reject_written);
            continue;
        }
        umg_metric_add(&m_conns, 1);
        sock->on_close.cb = on_conn_close;
        sock->on_close.data = s;
        h2o_accept(&t->accept_ctx, sock);
    }
}

static int split_listen(const char *listen, char *host, size_t hcap, char *port, size_t pcap)
{
    const char *colon = strrchr(listen, ':');
    if (colon == NULL || colon[1] == '\0') {
        return UMG_EINVAL;
    }
    const char *h = listen;
    size_t hl = (size_t)(colon - listen);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl >= hcap || strlen(colon + 1) >= pcap) {
        return UMG_EINVAL;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    snprintf(port, pcap, "%s", colon + 1);
    return UMG_OK;
}

static int bind_one(const char *host, const char *port, struct sockaddr_storage *bound, socklen_t *blen)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if (getaddrinfo(host[0] ? host : NULL, port, &hints, &res) != 0 || res == NULL) {
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 4096) != 0) {
        int e = errno;
        if (fd >= 0) {
            close(fd);
        }
        freeaddrinfo(res);
        errno = e;
        return -1;
    }
    freeaddrinfo(res);
    *blen = sizeof(*bound);
    getsockname(fd, (struct sockaddr *)bound, blen);
    return fd;
}

static int setup_tls(umg_http_server_t *s)
{
    s->ssl = SSL_CTX_new(TLS_server_method());
    if (s->ssl == NULL) {
        return UMG_ENOMEM;
    }
    SSL_CTX_set_min_proto_version(s->ssl, TLS1_2_VERSION);
    SSL_CTX_set_options(s->ssl, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_cipher_list(s->ssl, "ECDHE+AESGCM:ECDHE+CHACHA20");
    if (SSL_CTX_use_certificate_chain_file(s->ssl, s->cfg.tls_cert) != 1) {
        umg_log(UMG_LOG_ERROR, "http", "cannot load http.tls_cert %s", s->cfg.tls_cert);
        return UMG_EINVAL;
    }
    if (SSL_CTX_use_PrivateKey_file(s->ssl, s->cfg.tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(s->ssl) != 1) {
        umg_log(UMG_LOG_ERROR, "http", "cannot load http.tls_key %s (or it does not match the certificate)",
                s->cfg.tls_key);
        return UMG_EINVAL;
    }
    h2o_ssl_register_alpn_protocols(s->ssl, h2o_http2_alpn_protocols);
    return UMG_OK;
}

int umg_http_server_new(const umg_http_config_t *cfg, const umg_http_route_t *routes, size_t nroutes,
                        const umg_http_hooks_t *hooks, umg_http_server_t **out)
{
    umg_http_server_t *s = umg_calloc(1, sizeof(*s));
    if (s == NULL) {
        return UMG_ENOMEM;
    }
    s->cfg = *cfg;
    s->routes = routes;
    s->nroutes = nroutes;
    s->hooks = *hooks;
    int rc = UMG_EINVAL;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    s->nthreads = cfg->threads > 0 ? (int)cfg->threads : (int)(ncpu > 0 ? ncpu : 1);
    if ((rc = parse_proxies(s, cfg->trusted_proxies)) != UMG_OK) {
        goto fail;
    }
    if ((rc = init_metrics(s)) != UMG_OK) {
        goto fail;
    }
    if ((cfg->tls_cert && *cfg->tls_cert) || (cfg->tls_key && *cfg->tls_key)) {
        if (!(cfg->tls_cert && *cfg->tls_cert && cfg->tls_key && *cfg->tls_key)) {
            umg_log(UMG_LOG_ERROR, "http", "TLS needs both http.tls_cert and http.tls_key");
            rc = UMG_EINVAL;
            goto fail;
        }
        if ((rc = setup_tls(s)) != UMG_OK) {
            goto fail;
        }
    }
    h2o_config_init(&s->conf);
    s->conf.server_name = h2o_iovec_init(H2O_STRLIT("unmogrowp"));
    /* h2o buffers bodies up to this; bigger ones get h2o's own 413. Ours (JSON) covers the rest. */
    s->conf.max_request_entity_size = (size_t)cfg->max_body_bytes * 2 + 65536;
    s->conf.http1.req_timeout = (uint64_t)cfg->idle_timeout_ms;
    s->conf.http2.idle_timeout = (uint64_t)cfg->idle_timeout_ms;
    h2o_hostconf_t *host = h2o_config_register_host(&s->conf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pc = h2o_config_register_path(host, "/", 0);
    handler_t *hd = (handler_t *)h2o_create_handler(pc, sizeof(*hd));
    hd->super.on_req = on_req;
    hd->srv = s;
    /* h2o binds errors found before routing to the host's fallback path */
    h2o_create_filter(pc, sizeof(h2o_filter_t))->on_setup_ostream = h2o_error_setup;
    h2o_create_filter(&host->fallback_path, sizeof(h2o_filter_t))->on_setup_ostream = h2o_error_setup;

    char hostname[256], port[16];
    if (split_listen(cfg->listen, hostname, sizeof(hostname), port, sizeof(port)) != UMG_OK) {
        umg_log(UMG_LOG_ERROR, "http", "--listen '%s' is not HOST:PORT", cfg->listen);
        rc = UMG_EINVAL;
        goto fail;
    }
    s->threads = umg_calloc((size_t)s->nthreads, sizeof(thread_t));
    if (s->threads == NULL) {
        rc = UMG_ENOMEM;
        goto fail;
    }
    for (int i = 0; i < s->nthreads; i++) {
        s->threads[i].listen_fd = -1;
    }
    for (int i = 0; i < s->nthreads; i++) {
        struct sockaddr_storage ss;
        socklen_t sl;
        int fd = bind_one(hostname, port, &ss, &sl);
        if (fd < 0) {
            umg_log(UMG_LOG_ERROR, "http", "cannot listen on %s: %s", cfg->listen, strerror(errno));
            rc = UMG_EIO;
            goto fail;
        }
        s->threads[i].listen_fd = fd;
        if (i == 0) {
            char ip[INET6_ADDRSTRLEN];
            int p;
            if (ss.ss_family == AF_INET6) {
                inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip, sizeof(ip));
                p = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
                snprintf(s->addr, sizeof(s->addr), "[%s]:%d", ip, p);
            } else {
                inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip, sizeof(ip));
                p = ntohs(((struct sockaddr_in *)&ss)->sin_port);
                snprintf(s->addr, sizeof(s->addr), "%s:%d", ip, p);
            }
            snprintf(port, sizeof(port), "%d", p); /* the others join the same port */
        }
    }
    *out = s;
    return UMG_OK;
fail:
    umg_http_server_free(s);
    return rc;
}

const char *umg_http_server_addr(umg_http_server_t *s)
{
    return s->addr;
}

static void *thread_main(void *arg)
{
    thread_t *t = arg;
    umg_thread_name("umg-http");
    umg_http_server_t *s = t->srv;
    h2o_context_init(&t->ctx, h2o_evloop_create(), &s->conf);
    h2o_multithread_register_receiver(t->ctx.queue, &t->receiver, on_messages);
    h2o_timeout_init(t->ctx.loop, &t->stream_poll, UMG_HTTP_STREAM_POLL_MS);
    h2o_timeout_init(t->ctx.loop, &t->stream_yield, 1);
    t->accept_ctx.ctx = &t->ctx;
    t->accept_ctx.hosts = s->conf.hosts;
    t->accept_ctx.ssl_ctx = s->ssl;
    t->listener = h2o_evloop_socket_create(t->ctx.loop, t->listen_fd, H2O_SOCKET_FLAG_DONT_READ);
    t->listener->data = t;
    h2o_socket_read_start(t->listener, on_accept);
    if (s->hooks.thread_init != NULL) {
        t->data = s->hooks.thread_init(s->hooks.server_data, t->index);
    }
    while (!s->stop) {
        h2o_evloop_run(t->ctx.loop, 100);
    }
    h2o_socket_read_stop(t->listener);
    h2o_socket_close(t->listener);
    t->listen_fd = -1;
    return NULL;
}

int umg_http_server_run(umg_http_server_t *s)
{
    for (int i = 0; i < s->nthreads; i++) {
        s->threads[i].srv = s;
        s->threads[i].index = i;
    }
    for (int i = 1; i < s->nthreads; i++) {
        if (pthread_create(&s->threads[i].tid, NULL, thread_main, &s->threads[i]) != 0) {
            s->stop = 1;
            for (int j = 1; j < i; j++) {
                pthread_join(s->threads[j].tid, NULL);
            }
            return UMG_ENOMEM;
        }
    }
    thread_main(&s->threads[0]);
    for (int i = 1; i < s->nthreads; i++) {
        pthread_join(s->threads[i].tid, NULL);
    }
    return UMG_OK;
}

void umg_http_server_stop(umg_http_server_t *s)
{
    s->stop = 1;
}

void umg_http_server_free(umg_http_server_t *s)
{
    if (s == NULL) {
        return;
    }
    if (s->threads != NULL) {
        for (int i = 0; i < s->nthreads; i++) {
            thread_t *t = &s->threads[i];
            if (t->listen_fd >= 0) {
                close(t->listen_fd);
            }
            if (t->data != NULL && s->hooks.thread_fini != NULL) {
                s->hooks.thread_fini(t->data);
            }
            while (t->free_defers != NULL) {
                umg_http_defer_t *d = t->free_defers;
                t->free_defers = d->next_free;
                umg_free(d);
            }
        }
        umg_free(s->threads);
    }
    /* req_count, req_latency and labels stay: the metrics registry keeps them for the process's life. */
    umg_free(s->proxies);
    if (s->ssl != NULL) {
        SSL_CTX_free(s->ssl);
    }
    umg_free(s);
}
