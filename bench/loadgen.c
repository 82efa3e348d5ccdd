/*
 * bench/loadgen.c - a small HTTP/1.1 keep-alive POST load generator.
 *
 * Open loop (-R RATE): request k of a thread is due at t0 + k / rate, whether
 * or not earlier answers came back. It is sent on an idle connection as soon as
 * one is free, and its latency is measured from the time it was *due*, not
 * from when it was written. A server that stalls therefore shows its stall in
 * the latency of every request that queued behind it (the "coordinated
 * omission" correction of wrk2, which Debian does not ship; wrk 4.1 has no -R).
 *
 * Closed loop (-n TOTAL without -R): every connection sends its next request as
 * soon as the previous answer arrived, until TOTAL requests are done. Used to
 * fill a data directory fast and to count what the server accepted.
 *
 * The end is one line for scripts:
 *   UMG_LOADGEN mode=open|closed rate=R threads=T conns=C duration_s=F sent=N done=N
 *     ok=N non2xx=N statuses=202:N,... errors=N unfinished=N accepted=N rps=F
 *     p50_us=N p90_us=N p99_us=N p999_us=N max_us=N measured=N
 * and the exit status is 1 when any request failed, was answered non-2xx, or was
 * left unanswered: a benchmark with errors is not a result.
 *
 * Only numeric IPv4 addresses are accepted (the benchmarks talk to 127.0.0.1).
 * Build: cc -O2 -pthread -o umg-loadgen bench/loadgen.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_STATUS 600

typedef struct {
    char *req; /* the whole request (head + body), shared by all connections */
    size_t req_len;
    struct sockaddr_in addr;
    double rate;     /* total requests/s; 0 = closed loop */
    uint64_t total;  /* closed loop: requests in all */
    double duration; /* seconds of sending (open loop) */
    double warmup;   /* seconds at the start whose latencies are not kept */
    double drain;    /* seconds to wait for answers after the sending window */
    int threads, conns;
    int count_accepted;
} config_t;

typedef struct conn_s {
    int fd;
    int busy;        /* a request is written or being written */
    size_t woff;     /* bytes of the request written so far */
    uint64_t due_ns; /* when the request in flight was due */
    char *buf;
    size_t blen, bcap;
} conn_t;

typedef struct {
    int id;
    const config_t *cfg;
    pthread_t th;
    int ep;
    conn_t *c;
    int nc;
    /* open loop: requests due but not yet sent (FIFO of due times) */
    uint64_t *q;
    size_t qhead, qtail, qcap;
    /* results */
    uint64_t *lat_us;
    size_t nlat, caplat;
    uint64_t sent, done, ok, non2xx, errors, accepted, unfinished;
    uint64_t status[MAX_STATUS];
} worker_t;

static uint64_t g_start_ns;
static volatile uint64_t g_closed_left; /* closed loop: requests not yet claimed */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *msg)
{
    fprintf(stderr, "loadgen: %s\n", msg);
    exit(2);
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (p == NULL) {
        die("out of memory");
    }
    return p;
}

static int conn_open(worker_t *w, conn_t *c)
{
    int one = 1;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        return -1;
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (const struct sockaddr *)&w->cfg->addr, sizeof(w->cfg->addr)) < 0 && errno != EINPROGRESS) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
    epoll_ctl(w->ep, EPOLL_CTL_ADD, c->fd, &ev);
    c->busy = 0;
    c->woff = 0;
    c->blen = 0;
    return 0;
}

static void conn_close(worker_t *w, conn_t *c)
{
    if (c->fd >= 0) {
        epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->busy = 0;
    c->blen = 0;
}

/* Writes what it can of the request in flight; -1 on a broken connection. */
static int conn_flush(worker_t *w, conn_t *c)
{
    while (c->woff < w->cfg->req_len) {
        ssize_t n = write(c->fd, w->cfg->req + c->woff, w->cfg->req_len - c->woff);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                return 0;
            }
            return -1;
        }
        c->woff += (size_t)n;
    }
    return 0;
}

static int conn_send(worker_t *w, conn_t *c, uint64_t due)
{
    if (c->fd < 0 && conn_open(w, c) < 0) {
        return -1;
    }
    c->busy = 1;
    c->woff = 0;
    c->due_ns = due;
    w->sent++;
    return conn_flush(w, c);
}

static void record(worker_t *w, conn_t *c, int status, const char *body, size_t blen)
{
    uint64_t t = now_ns();
    w->done++;
    if (status > 0 && status < MAX_STATUS) {
        w->status[status]++;
    }
    if (status >= 200 && status < 300) {
        w->ok++;
    } else {
        w->non2xx++;
    }
    if (w->cfg->count_accepted && body != NULL) {
        const char *p = memmem(body, blen, "\"accepted\":", 11);
        if (p != NULL) {
            w->accepted += strtoull(p + 11, NULL, 10);
        }
    }
    if (c->due_ns >= g_start_ns + (uint64_t)(w->cfg->warmup * 1e9)) {
        if (w->nlat == w->caplat) {
            w->caplat = w->caplat ? w->caplat * 2 : 65536;
            w->lat_us = xrealloc(w->lat_us, w->caplat * sizeof(*w->lat_us));
        }
        w->lat_us[w->nlat++] = (t - c->due_ns) / 1000;
    }
}

static const char *find_header(const char *head, size_t hlen, const char *name)
{
    size_t nl = strlen(name);
    const char *p = head, *end = head + hlen;
    while (p < end) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (eol == NULL) {
            break;
        }
        if ((size_t)(eol - p) > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
            p += nl + 1;
            while (*p == ' ' || *p == '\t') {
                p++;
            }
            return p;
        }
        p = eol + 2;
    }
    return NULL;
}

/*
 * Parses one complete response from c->buf. Returns the bytes it used, 0 when
 * more are needed, -1 when the response is malformed. Sets status, body, blen, close_after.
 */
static ssize_t parse_response(conn_t *c, int *status, const char **body, size_t *blen, int *close_after)
{
    const char *b = c->buf;
    const char *he = memmem(b, c->blen, "\r\n\r\n", 4);
    if (he == NULL) {
        return c->blen > (1u << 20) ? -1 : 0;
    }
    size_t hlen = (size_t)(he - b) + 4;
    if (c->blen < 12 || strncmp(b, "HTTP/1.", 7) != 0) {
        return -1;
    }
    *status = atoi(b + 9);
    const char *conn = find_header(b, hlen, "Connection");
    *close_after = conn != NULL && strncasecmp(conn, "close", 5) == 0;
    if (*status == 204 || *status == 304 || (*status >= 100 && *status < 200)) {
        *body = NULL;
        *blen = 0;
        return (ssize_t)hlen;
    }
    const char *cl = find_header(b, hlen, "Content-Length");
    if (cl != NULL) {
        size_t n = strtoull(cl, NULL, 10);
        if (c->blen < hlen + n) {
            return 0;
        }
        *body = b + hlen;
        *blen = n;
        return (ssize_t)(hlen + n);
    }
    const char *te = find_header(b, hlen, "Transfer-Encoding");
    if (te != NULL && strncasecmp(te, "chunked", 7) == 0) {
        size_t off = hlen;
        for (;;) {
            const char *eol = memmem(b + off, c->blen - off, "\r\n", 2);
            if (eol == NULL) {
                return 0;
            }
            size_t sz = strtoull(b + off, NULL, 16);
            off = (size_t)(eol - b) + 2;
            if (sz == 0) {
                /* No trailers are expected: the last chunk ends with one CRLF. */
                if (c->blen < off + 2) {
                    return 0;
                }
                *body = b + hlen; /* still chunk-framed; only scanned for "accepted" */
                *blen = off - hlen;
                return (ssize_t)(off + 2);
            }
            if (c->blen < off + sz + 2) {
                return 0;
            }
            off += sz + 2;
        }
    }
    /* Neither length nor chunks: the body ends when the server closes. */
    *close_after = 2;
    return 0;
}

static void take_next(worker_t *w, conn_t *c);

static void conn_readable(worker_t *w, conn_t *c)
{
    for (;;) {
        if (c->bcap - c->blen < 16384) {
            c->bcap = c->bcap ? c->bcap * 2 : 65536;
            c->buf = xrealloc(c->buf, c->bcap);
        }
        ssize_t n = read(c->fd, c->buf + c->blen, c->bcap - c->blen);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            break;
        }
        if (n <= 0) {
            if (c->busy) {
                int status = 0, ca = 0;
                const char *body = NULL;
                size_t blen = 0;
                /* A body delimited by the close is complete now. */
                if (c->blen > 0 && parse_response(c, &status, &body, &blen, &ca) == 0 && ca == 2) {
                    const char *he = memmem(c->buf, c->blen, "\r\n\r\n", 4);
                    record(w, c, status, he + 4, c->blen - (size_t)(he + 4 - c->buf));
                } else {
                    w->errors++;
                }
            }
            conn_close(w, c);
            take_next(w, c);
            return;
        }
        c->blen += (size_t)n;
    }
    while (c->busy && c->blen > 0) {
        int status = 0, close_after = 0;
        const char *body = NULL;
        size_t blen = 0;
        ssize_t used = parse_response(c, &status, &body, &blen, &close_after);
        if (used < 0) {
            w->errors++;
            conn_close(w, c);
            take_next(w, c);
            return;
        }
        if (used == 0) {
            return;
        }
        record(w, c, status, body, blen);
        memmove(c->buf, c->buf + used, c->blen - (size_t)used);
        c->blen -= (size_t)used;
        c->busy = 0;
        if (close_after) {
            conn_close(w, c);
        }
        take_next(w, c);
    }
}

/* Gives an idle connection its next request: the oldest one due (open loop)
 * or a new one while any are left (closed loop). */
static void take_next(worker_t *w, conn_t *c)
{
    if (c->busy) {
        return;
    }
    if (w->cfg->rate > 0) {
        if (w->qhead == w->qtail) {
            return;
        }
        uint64_t due = w->q[w->qhead++ % w->qcap];
        if (conn_send(w, c, due) < 0) {
            w->errors++;
            conn_close(w, c);
        }
        return;
    }
    uint64_t left = g_closed_left;
    while (left > 0) {
        if (__atomic_compare_exchange_n(&g_closed_left, &left, left - 1, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
            if (conn_send(w, c, now_ns()) < 0) {
                w->errors++;
                conn_close(w, c);
            }
            return;
        }
    }
}

static conn_t *idle_conn(worker_t *w)
{
    for (int i = 0; i < w->nc; i++) {
        if (!w->c[i].busy) {
            return &w->c[i];
        }
    }
    return NULL;
}

static void enqueue(worker_t *w, uint64_t due)
{
    if (w->qtail - w->qhead == w->qcap) {
        size_t ncap = w->qcap ? w->qcap * 2 : 4096;
        uint64_t *nq = xrealloc(NULL, ncap * sizeof(*nq));
        for (size_t i = 0; i < w->qtail - w->qhead; i++) {
            nq[i] = w->q[(w->qhead + i) % w->qcap];
        }
        w->qtail -= w->qhead;
        w->qhead = 0;
        free(w->q);
        w->q = nq;
        w->qcap = ncap;
    }
    w->q[w->qtail++ % w->qcap] = due;
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    const config_t *cfg = w->cfg;
    struct epoll_event evs[256];
    double my_rate = cfg->rate / cfg->threads;
    uint64_t interval = my_rate > 0 ? (uint64_t)(1e9 / my_rate) : 0;
    /* Threads start their schedules offset from each other so that requests
     * are spread evenly, not sent in bursts of `threads` at a time. */
    uint64_t next_due = g_start_ns + (interval * (uint64_t)w->id) / (uint64_t)cfg->threads;
    uint64_t send_end = g_start_ns + (uint64_t)(cfg->duration * 1e9);
    uint64_t hard_end = send_end + (uint64_t)(cfg->drain * 1e9);

    w->ep = epoll_create1(EPOLL_CLOEXEC);
    for (int i = 0; i < w->nc; i++) {
        w->c[i].fd = -1;
        if (conn_open(w, &w->c[i]) < 0) {
            w->errors++;
        }
    }
    uint64_t t0 = now_ns();
    if (t0 < g_start_ns) {
        struct timespec ts = {(time_t)((g_start_ns - t0) / 1000000000ull), (long)((g_start_ns - t0) % 1000000000ull)};
        nanosleep(&ts, NULL);
    }
    if (cfg->rate <= 0) {
        for (int i = 0; i < w->nc; i++) {
            take_next(w, &w->c[i]);
        }
    }
    for (;;) {
        uint64_t t = now_ns();
        if (cfg->rate > 0) {
            while (next_due <= t && next_due < send_end) {
                enqueue(w, next_due);
                next_due += interval;
            }
            conn_t *c;
            while (w->qhead != w->qtail && (c = idle_conn(w)) != NULL) {
                take_next(w, c);
            }
        }
        int inflight = 0;
        for (int i = 0; i < w->nc; i++) {
            if (cfg->rate <= 0 && !w->c[i].busy) {
                take_next(w, &w->c[i]); /* a connection that failed is retried here */
            }
            inflight += w->c[i].busy;
        }
        int more = cfg->rate > 0 ? (next_due < send_end || w->qhead != w->qtail) : (g_closed_left > 0);
        if (!more && inflight == 0) {
            break;
        }
        if (cfg->rate > 0 && t >= hard_end) {
            w->unfinished = (uint64_t)inflight + (w->qtail - w->qhead);
            break;
        }
        struct timespec to = {0, 0};
        uint64_t wake = cfg->rate > 0 && next_due < send_end ? next_due : t + 50000000ull;
        if (wake > t) {
            to.tv_sec = (time_t)((wake - t) / 1000000000ull);
            to.tv_nsec = (long)((wake - t) % 1000000000ull);
        }
        int n = epoll_pwait2(w->ep, evs, 256, &to, NULL);
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            if (c->fd < 0) {
                continue;
            }
            if ((evs[i].events & EPOLLOUT) && c->busy && c->woff < cfg->req_len) {
                if (conn_flush(w, c) < 0) {
                    w->errors++;
                    conn_close(w, c);
                    take_next(w, c);
                    continue;
                }
            }
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                conn_readable(w, c);
            }
        }
    }
    for (int i = 0; i < w->nc; i++) {
        conn_close(w, &w->c[i]);
    }
    close(w->ep);
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t pct(const uint64_t *v, size_t n, double p)
{
    if (n == 0) {
        return 0;
    }
    size_t i = (size_t)(p / 100.0 * (double)n);
    return v[i >= n ? n - 1 : i];
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        die("cannot open body file");
    }
    struct stat st;
    fstat(fileno(f), &st);
    char *b = xrealloc(NULL, (size_t)st.st_size + 1);
    *len = fread(b, 1, (size_t)st.st_size, f);
    fclose(f);
    return b;
}

static void usage(void)
{
    fprintf(stderr, "usage: loadgen -u http://IP:PORT/PATH -b BODYFILE [-H 'Name: value']...\n"
                    "               (-R RATE -d SECONDS [-w WARMUP] | -n TOTAL)\n"
                    "               [-c CONNS] [-t THREADS] [-T DRAIN_SECONDS] [-a]\n"
                    "  -R  open loop: requests/s over all threads, latency from the due time\n"
                    "  -n  closed loop: this many requests as fast as the connections allow\n"
                    "  -a  sum the \"accepted\":N of the response bodies\n");
    exit(2);
}

int main(int argc, char **argv)
{
    config_t cfg = {.duration = 10, .warmup = 1, .drain = 5, .threads = 2, .conns = 64};
    const char *url = NULL, *body_file = NULL;
    char headers[8192] = "";
    int opt;
    while ((opt = getopt(argc, argv, "u:b:H:R:n:d:w:c:t:T:a")) != -1) {
        switch (opt) {
        case 'u': url = optarg; break;
        case 'b': body_file = optarg; break;
        case 'H':
            if (strlen(headers) + strlen(optarg) + 3 >= sizeof(headers)) {
                die("headers too long");
            }
            strcat(headers, optarg);
            strcat(headers, "\r\n");
            break;
        case 'R': cfg.rate = atof(optarg); break;
        case 'n': cfg.total = strtoull(optarg, NULL, 10); break;
        case 'd': cfg.duration = atof(optarg); break;
        case 'w': cfg.warmup = atof(optarg); break;
        case 'c': cfg.conns = atoi(optarg); break;
        case 't': cfg.threads = atoi(optarg); break;
        case 'T': cfg.drain = atof(optarg); break;
        case 'a': cfg.count_accepted = 1; break;
        default: usage();
        }
    }
    if (url == NULL || body_file == NULL || (cfg.rate <= 0 && cfg.total == 0) || cfg.threads < 1 ||
        cfg.conns < cfg.threads) {
        usage();
    }
    if (cfg.rate <= 0) {
        cfg.warmup = 0;
    }
    char host[64];
    int port = 80;
    const char *path = "/";
    if (strncmp(url, "http://", 7) != 0) {
        die("only http:// URLs");
    }
    const char *h = url + 7, *slash = strchr(h, '/');
    size_t hl = slash ? (size_t)(slash - h) : strlen(h);
    if (hl >= sizeof(host)) {
        die("bad host");
    }
    memcpy(host, h, hl);
    host[hl] = 0;
    if (slash) {
        path = slash;
    }
    char *colon = strchr(host, ':');
    if (colon) {
        *colon = 0;
        port = atoi(colon + 1);
    }
    cfg.addr.sin_family = AF_INET;
    cfg.addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &cfg.addr.sin_addr) != 1) {
        die("the host must be a numeric IPv4 address");
    }

    size_t blen;
    char *body = read_file(body_file, &blen);
    size_t cap = blen + strlen(headers) + strlen(path) + 512;
    cfg.req = xrealloc(NULL, cap);
    int hn = snprintf(cfg.req, cap,
                      "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\n%s\r\n",
                      path, host, port, blen, headers);
    memcpy(cfg.req + hn, body, blen);
    cfg.req_len = (size_t)hn + blen;
    free(body);

    signal(SIGPIPE, SIG_IGN);
    g_closed_left = cfg.total;
    worker_t *ws = calloc((size_t)cfg.threads, sizeof(*ws));
    g_start_ns = now_ns() + 100000000ull; /* 100 ms for the connections to open */
    for (int i = 0; i < cfg.threads; i++) {
        ws[i].id = i;
        ws[i].cfg = &cfg;
        ws[i].nc = cfg.conns / cfg.threads + (i < cfg.conns % cfg.threads);
        ws[i].c = calloc((size_t)ws[i].nc, sizeof(conn_t));
        pthread_create(&ws[i].th, NULL, worker_main, &ws[i]);
    }
    worker_t tot = {0};
    for (int i = 0; i < cfg.threads; i++) {
        pthread_join(ws[i].th, NULL);
    }
    uint64_t end_ns = now_ns();
    for (int i = 0; i < cfg.threads; i++) {
        worker_t *w = &ws[i];
        tot.sent += w->sent;
        tot.done += w->done;
        tot.ok += w->ok;
        tot.non2xx += w->non2xx;
        tot.errors += w->errors;
        tot.accepted += w->accepted;
        tot.unfinished += w->unfinished;
        for (int s = 0; s < MAX_STATUS; s++) {
            tot.status[s] += w->status[s];
        }
        tot.lat_us = xrealloc(tot.lat_us, (tot.nlat + w->nlat + 1) * sizeof(uint64_t));
        memcpy(tot.lat_us + tot.nlat, w->lat_us, w->nlat * sizeof(uint64_t));
        tot.nlat += w->nlat;
    }
    qsort(tot.lat_us, tot.nlat, sizeof(uint64_t), cmp_u64);
    double secs = (double)(end_ns - g_start_ns) / 1e9;
    if (cfg.rate > 0) {
        secs = cfg.duration; /* the schedule, not the drain, is the denominator */
    }
    char st[1024] = "";
    size_t sl = 0;
    for (int s = 0; s < MAX_STATUS; s++) {
        if (tot.status[s] && sl < sizeof(st) - 32) {
            sl += (size_t)snprintf(st + sl, sizeof(st) - sl, "%s%d:%" PRIu64, sl ? "," : "", s, tot.status[s]);
        }
    }
    printf("UMG_LOADGEN mode=%s rate=%.0f threads=%d conns=%d duration_s=%.3f sent=%" PRIu64 " done=%" PRIu64
           " ok=%" PRIu64 " non2xx=%" PRIu64 " statuses=%s errors=%" PRIu64 " unfinished=%" PRIu64 " accepted=%" PRIu64
           " rps=%.1f p50_us=%" PRIu64 " p90_us=%" PRIu64 " p99_us=%" PRIu64 " p999_us=%" PRIu64 " max_us=%" PRIu64
           " measured=%zu\n",
           cfg.rate > 0 ? "open" : "closed", cfg.rate, cfg.threads, cfg.conns, secs, tot.sent, tot.done, tot.ok,
           tot.non2xx, sl ? st : "-", tot.errors, tot.unfinished, tot.accepted, (double)tot.done / secs,
           pct(tot.lat_us, tot.nlat, 50), pct(tot.lat_us, tot.nlat, 90), pct(tot.lat_us, tot.nlat, 99),
           pct(tot.lat_us, tot.nlat, 99.9), tot.nlat ? tot.lat_us[tot.nlat - 1] : 0, tot.nlat);
    return (tot.errors || tot.non2xx || tot.unfinished || tot.done == 0) ? 1 : 0;
}
