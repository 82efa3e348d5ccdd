/*
 * iplist.c - the IP list files of the blocked_ip rule: their parser (pure,
 * fuzzed by tests/fuzz/fuzz_iplist.c) and the registry that loads them into
 * one prefix table and swaps a new table in on SIGHUP while readers keep
 * looking addresses up.
 *
 * Readers and the reloading thread meet through epoch-based reclamation: a
 * reader claims one of NSLOTS slots with a compare-and-swap from 0 to the
 * current epoch, loads the table pointer, looks up, and stores 0 back. The
 * reloader swaps the pointer, advances the epoch, and frees the old table
 * once every slot is 0 or holds the new epoch. A reader that holds the old
 * table stamped its slot before it loaded the pointer, which was before the
 * swap, so it holds an older epoch and is waited for; a reader stamped with
 * the new epoch read it after the swap and so loads the new table. Sequential
 * consistency on these few operations is what makes that argument hold.
 */
#include "umg_fraud_net.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- parser */

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\v' || c == '\f';
}

/* Copies up to 48 bytes of s for a message, with anything unprintable as '?'. */
static void quote(char *dst, size_t cap, const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 4 < cap && i < 48; i++) {
        unsigned char c = (unsigned char)s[i];
        dst[k++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    if (n > 48 && k + 4 < cap) {
        memcpy(dst + k, "...", 3);
        k += 3;
    }
    dst[k] = '\0';
}

static void report(const umg_iplist_sink_t *sink, size_t line, size_t *bad, const char *msg)
{
    (*bad)++;
    if (sink->error != NULL) {
        sink->error(sink->ctx, line, msg);
    }
}

int umg_iplist_parse(const char *data, size_t len, const umg_iplist_sink_t *sink, size_t *bad)
{
    size_t nbad = 0, line = 0, pos = 0;
    int rc = UMG_OK;
    if (len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0) {
        pos = 3;
    }
    while (pos < len && rc == UMG_OK) {
        const char *s = data + pos;
        const char *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - s) : len - pos;
        pos += n + (nl != NULL);
        line++;
        if (n > 0 && s[n - 1] == '\r') {
            n--;
        }
        if (n > UMG_IPLIST_MAX_LINE) {
            report(sink, line, &nbad, "line longer than 512 bytes");
            continue;
        }
        size_t i = 0;
        while (i < n && is_blank(s[i])) {
            i++;
        }
        if (i == n || s[i] == '#' || s[i] == ';') {
            continue;
        }
        size_t start = i;
        while (i < n && !is_blank(s[i])) {
            i++;
        }
        size_t tok = i - start;
        while (i < n && is_blank(s[i])) {
            i++;
        }
        char q[64], msg[160];
        if (i < n && s[i] != '#' && s[i] != ';') {
            quote(q, sizeof(q), s + i, n - i);
            snprintf(msg, sizeof(msg), "unexpected text after the address: '%s' (one address or prefix a line)", q);
            report(sink, line, &nbad, msg);
            continue;
        }
        umg_ip_t net;
        int plen;
        if (umg_cidr_parse(umg_slice(s + start, tok), &net, &plen, NULL) != UMG_OK) {
            quote(q, sizeof(q), s + start, tok);
            snprintf(msg, sizeof(msg), "not an IP address or CIDR prefix: '%s'", q);
            report(sink, line, &nbad, msg);
            continue;
        }
        rc = sink->prefix(sink->ctx, &net, plen);
    }
    if (bad != NULL) {
        *bad = nbad;
    }
    return rc;
}

/* ---------------------------------------------------------------- metrics */

/* One gauge per list id, labelled with the name of the process's registry (there is one). */
static umg_metric_t m_prefixes[UMG_CIDR_MAX_LISTS];
static char prefix_labels[UMG_CIDR_MAX_LISTS][UMG_IPLIST_NAME_MAX + 16];
static umg_metric_t m_reloads =
    UMG_COUNTER("umg_fraud_iplist_reloads_total", "IP list reloads that published new lists", NULL);
static umg_metric_t m_failures =
    UMG_COUNTER("umg_fraud_iplist_reload_failures_total", "IP list reloads that failed and kept the old lists", NULL);
static umg_metric_t m_bad_lines =
    UMG_COUNTER("umg_fraud_iplist_bad_lines_total", "Lines of IP list files skipped as malformed", NULL);
static pthread_mutex_t metrics_mu = PTHREAD_MUTEX_INITIALIZER;

static void metrics_register(const char *const *names, int n)
{
    pthread_mutex_lock(&metrics_mu);
    for (int i = 0; i < n; i++) {
        umg_metric_t *m = &m_prefixes[i];
        if (!atomic_load(&m->registered)) {
            snprintf(prefix_labels[i], sizeof(prefix_labels[i]), "list=\"%s\"", names[i]);
            m->name = "umg_fraud_iplist_prefixes";
            m->help = "Prefixes loaded per IP list by the last successful reload";
            m->labels = prefix_labels[i];
            m->kind = UMG_METRIC_GAUGE;
            umg_metric_register(m);
        }
    }
    umg_metric_register(&m_reloads);
    umg_metric_register(&m_failures);
    umg_metric_register(&m_bad_lines);
    pthread_mutex_unlock(&metrics_mu);
}

/* ---------------------------------------------------------------- registry */

#define NSLOTS 256

/* A cache line each, so readers on different cores do not share one (umg_malloc aligns to 16 bytes
 * only, so padding rather than _Alignas). */
typedef struct slot_s {
    _Atomic uint64_t epoch; /* 0: free */
    char pad[56];
} slot_t;

typedef struct list_s {
    char name[UMG_IPLIST_NAME_MAX + 1];
    char *path;
    _Atomic size_t prefixes;
} list_t;

struct umg_iplists_s {
    slot_t slots[NSLOTS];
    _Atomic(umg_cidr_t *) cur;
    _Atomic uint64_t epoch;
    pthread_mutex_t reload_mu;
    int n;
    list_t lists[UMG_CIDR_MAX_LISTS];
};

static int valid_name(const char *s, size_t n)
{
    if (n == 0 || n > UMG_IPLIST_NAME_MAX) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '.')) {
            return 0;
        }
    }
    return 1;
}

static int parse_spec(umg_iplists_t *r, const char *spec, char *err, size_t errlen)
{
    for (const char *p = spec; *p;) {
        size_t n = strcspn(p, ",");
        const char *e = p + n;
        while (p < e && (*p == ' ' || *p == '\t')) {
            p++;
        }
        const char *end = e;
        while (end > p && (end[-1] == ' ' || end[-1] == '\t')) {
            end--;
        }
        if (end > p) {
            const char *eq = memchr(p, '=', (size_t)(end - p));
            size_t nl = eq ? (size_t)(eq - p) : 0;
            while (nl > 0 && (p[nl - 1] == ' ' || p[nl - 1] == '\t')) {
                nl--;
            }
            const char *path = eq ? eq + 1 : end;
            while (path < end && (*path == ' ' || *path == '\t')) {
                path++;
            }
            if (eq == NULL || !valid_name(p, nl) || path == end) {
                snprintf(err, errlen,
                         "fraud.ip_lists: '%.*s' is not NAME=PATH (NAME: 1 to 32 of A-Z a-z 0-9 _ . -, PATH not empty)",
                         (int)UMG_MIN((size_t)(end - p), 80), p);
                return UMG_EINVAL;
            }
            if (r->n == UMG_CIDR_MAX_LISTS) {
                snprintf(err, errlen, "fraud.ip_lists: at most %d lists", UMG_CIDR_MAX_LISTS);
                return UMG_EINVAL;
            }
            for (int i = 0; i < r->n; i++) {
                if (strlen(r->lists[i].name) == nl && memcmp(r->lists[i].name, p, nl) == 0) {
                    snprintf(err, errlen, "fraud.ip_lists: the list name '%.*s' is given twice", (int)nl, p);
                    return UMG_EINVAL;
                }
            }
            list_t *l = &r->lists[r->n];
            memcpy(l->name, p, nl);
            l->name[nl] = '\0';
            l->path = umg_strndup(path, (size_t)(end - path));
            if (l->path == NULL) {
                snprintf(err, errlen, "out of memory");
                return UMG_ENOMEM;
            }
            r->n++;
        }
        p = *e ? e + 1 : e;
    }
    return UMG_OK;
}

int umg_iplists_new(const char *spec, umg_iplists_t **out, char *err, size_t errlen)
{
    umg_iplists_t *r = umg_calloc(1, sizeof(*r));
    umg_cidr_builder_t *b = NULL;
    umg_cidr_t *empty = NULL;
    if (r == NULL) {
        snprintf(err, errlen, "out of memory");
        return UMG_ENOMEM;
    }
    pthread_mutex_init(&r->reload_mu, NULL);
    atomic_init(&r->epoch, 1);
    int rc = parse_spec(r, spec ? spec : "", err, errlen);
    rc = rc ? rc : umg_cidr_builder_new(&b);
    rc = rc ? rc : umg_cidr_build(b, &empty);
    umg_cidr_builder_free(b);
    if (rc != UMG_OK) {
        if (rc == UMG_ENOMEM) {
            snprintf(err, errlen, "out of memory");
        }
        umg_iplists_free(r);
        return rc;
    }
    atomic_init(&r->cur, empty);
    const char *names[UMG_CIDR_MAX_LISTS];
    for (int i = 0; i < r->n; i++) {
        names[i] = r->lists[i].name;
    }
    metrics_register(names, r->n);
    *out = r;
    return UMG_OK;
}

void umg_iplists_free(umg_iplists_t *r)
{
    if (r == NULL) {
        return;
    }
    umg_cidr_free(atomic_load(&r->cur));
    for (int i = 0; i < r->n; i++) {
        umg_free(r->lists[i].path);
    }
    pthread_mutex_destroy(&r->reload_mu);
    umg_free(r);
}

int umg_iplists_count(const umg_iplists_t *r)
{
    return r->n;
}

const char *umg_iplists_name(const umg_iplists_t *r, int id)
{
    return id >= 0 && id < r->n ? r->lists[id].name : NULL;
}

size_t umg_iplists_prefixes(const umg_iplists_t *r, int id)
{
    return id >= 0 && id < r->n ? atomic_load(&r->lists[id].prefixes) : 0;
}

/* Reads a whole file (at most 1 GiB) into *out (the caller's, umg_free). */
static int read_file(const char *path, char **out, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block the open: refused below */
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return UMG_EIO;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > (1ll << 30)) {
        snprintf(err, errlen, "cannot read %s: %s", path, S_ISREG(st.st_mode) ? "larger than 1 GiB" : "not a file");
        close(fd);
        return UMG_EIO;
    }
    size_t n = (size_t)st.st_size;
    char *buf = umg_malloc(n ? n : 1);
    if (buf == NULL) {
        close(fd);
        snprintf(err, errlen, "out of memory reading %s", path);
        return UMG_ENOMEM;
    }
    ssize_t got = umg_pread_full(fd, buf, n, 0);
    int e = errno;
    close(fd);
    if (got < 0) {
        umg_free(buf);
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(e));
        return UMG_EIO;
    }
    *out = buf;
    *len = (size_t)got;
    return UMG_OK;
}

typedef struct load_ctx_s {
    umg_cidr_builder_t *b;
    unsigned list;
    const char *path;
    size_t logged;
} load_ctx_t;

static int on_prefix(void *ctx, const umg_ip_t *net, int plen)
{
    load_ctx_t *c = ctx;
    return umg_cidr_builder_add(c->b, net, plen, c->list);
}

static void on_error(void *ctx, size_t line, const char *message)
{
    load_ctx_t *c = ctx;
    if (c->logged++ < 20) {
        umg_log(UMG_LOG_WARN, "fraud", "%s:%zu: %s; line skipped", c->path, line, message);
    }
}

/* Waits until no reader holds an epoch before e. */
static void wait_readers(umg_iplists_t *r, uint64_t e)
{
    for (unsigned i = 0; i < NSLOTS; i++) {
        for (;;) {
            uint64_t v = atomic_load(&r->slots[i].epoch);
            if (v == 0 || v >= e) {
                break;
            }
            struct timespec ts = {0, 20000};
            nanosleep(&ts, NULL);
        }
    }
}

/* What a build thread makes of the files: the table and the counts, or an error. */
typedef struct build_s {
    umg_iplists_t *r;
    umg_cidr_t *t;
    size_t counts[UMG_CIDR_MAX_LISTS], bad_total;
    int rc;
    char err[512];
} build_t;

static void build_tables(build_t *w)
{
    umg_iplists_t *r = w->r;
    umg_cidr_builder_t *b = NULL;
    int rc = umg_cidr_builder_new(&b);
    if (rc != UMG_OK) {
        snprintf(w->err, sizeof(w->err), "out of memory");
    }
    for (int i = 0; rc == UMG_OK && i < r->n; i++) {
        char *data = NULL;
        size_t len = 0, bad = 0, before = umg_cidr_builder_count(b);
        rc = read_file(r->lists[i].path, &data, &len, w->err, sizeof(w->err));
        if (rc != UMG_OK) {
            break;
        }
        load_ctx_t c = {b, (unsigned)i, r->lists[i].path, 0};
        umg_iplist_sink_t sink = {on_prefix, on_error, &c};
        rc = umg_iplist_parse(data, len, &sink, &bad);
        umg_free(data);
        if (rc != UMG_OK) {
            snprintf(w->err, sizeof(w->err), "out of memory loading %s", r->lists[i].path);
            break;
        }
        if (bad > 20) {
            umg_log(UMG_LOG_WARN, "fraud", "%s: %zu bad lines in all (the first 20 are logged)", r->lists[i].path, bad);
        }
        w->counts[i] = umg_cidr_builder_count(b) - before;
        w->bad_total += bad;
    }
    if (rc == UMG_OK && (rc = umg_cidr_build(b, &w->t)) != UMG_OK) {
        snprintf(w->err, sizeof(w->err), "out of memory building the prefix table");
    }
    umg_cidr_builder_free(b);
    w->rc = rc;
}

/*
 * The build runs on a thread of its own under SCHED_IDLE (nice 19 where that is refused), so the
 * event loops always take the CPU first: the swap is instant, but a build of a million prefixes
 * is a second of CPU, and at nice 10 it still cost a reader stalls of tens of milliseconds on a
 * loaded 2-core machine (bench/bench_cidr.c). The price: on a machine whose every core is busy
 * all the time, a reload waits for idle time. (A thread's priority cannot be raised again
 * without privileges, hence a thread rather than the caller's own.)
 */
static void *build_main(void *arg)
{
    struct sched_param sp = {0};
    umg_thread_name("umg-iplist");
    int rc = pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
    if (rc != 0 && setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19) != 0) {
        umg_log(UMG_LOG_DEBUG, "fraud", "cannot lower the IP list build thread's priority: %s", strerror(rc));
    }
    build_tables(arg);
    return NULL;
}

int umg_iplists_reload(umg_iplists_t *r, char *err, size_t errlen)
{
    pthread_mutex_lock(&r->reload_mu);
    uint64_t t0 = umg_mono_ns();
    build_t *w = umg_calloc(1, sizeof(*w));
    if (w == NULL) {
        snprintf(err, errlen, "out of memory");
        umg_metric_add(&m_failures, 1);
        pthread_mutex_unlock(&r->reload_mu);
        return UMG_ENOMEM;
    }
    w->r = r;
    pthread_t th;
    if (pthread_create(&th, NULL, build_main, w) == 0) {
        pthread_join(th, NULL);
    } else {
        build_tables(w); /* no thread to be had: build here */
    }
    int rc = w->rc;
    if (rc != UMG_OK) {
        snprintf(err, errlen, "%s", w->err);
        umg_free(w);
        umg_metric_add(&m_failures, 1);
        pthread_mutex_unlock(&r->reload_mu);
        return rc == UMG_ENOMEM ? UMG_ENOMEM : UMG_EIO;
    }
    uint64_t t1 = umg_mono_ns();
    umg_cidr_t *t = w->t;
    umg_cidr_t *old = atomic_exchange(&r->cur, t);
    uint64_t e = atomic_fetch_add(&r->epoch, 1) + 1;
    wait_readers(r, e);
    umg_cidr_free(old);
    size_t total = 0;
    for (int i = 0; i < r->n; i++) {
        atomic_store(&r->lists[i].prefixes, w->counts[i]);
        umg_metric_set(&m_prefixes[i], (int64_t)w->counts[i]);
        total += w->counts[i];
    }
    umg_metric_add(&m_reloads, 1);
    umg_metric_add(&m_bad_lines, (int64_t)w->bad_total);
    umg_cidr_stats_t st;
    umg_cidr_stats(t, &st);
    umg_log(UMG_LOG_INFO, "fraud",
            "IP lists loaded: %d lists, %zu prefixes, %zu bad lines, %zu KiB, built in %.1f ms, swapped in %.1f ms",
            r->n, total, w->bad_total, st.bytes >> 10, (double)(t1 - t0) / 1e6, (double)(umg_mono_ns() - t1) / 1e6);
    umg_free(w);
    pthread_mutex_unlock(&r->reload_mu);
    return UMG_OK;
}

/* ---------------------------------------------------------------- readers */

const umg_cidr_t *umg_iplists_enter(umg_iplists_t *r, umg_iplists_guard_t *g)
{
    pthread_t self = pthread_self();
    unsigned s = (unsigned)umg_hash64(&self, sizeof(self), 0) % NSLOTS;
    uint64_t e = atomic_load(&r->epoch);
    for (;;) {
        uint64_t zero = 0;
        if (atomic_compare_exchange_strong(&r->slots[s].epoch, &zero, e)) {
            break;
        }
        s = (s + 1) % NSLOTS;
    }
    g->slot = s;
    return atomic_load(&r->cur);
}

void umg_iplists_leave(umg_iplists_t *r, umg_iplists_guard_t *g)
{
    atomic_store_explicit(&r->slots[g->slot].epoch, 0, memory_order_release);
}

int umg_iplists_lookup_ip(umg_iplists_t *r, const umg_ip_t *ip, int *list, uint64_t *mask)
{
    umg_iplists_guard_t g;
    const umg_cidr_t *t = umg_iplists_enter(r, &g);
    *list = umg_cidr_lookup(t, ip, mask);
    umg_iplists_leave(r, &g);
    return UMG_OK;
}

int umg_iplists_lookup(umg_iplists_t *r, umg_slice_t text, int *list, uint64_t *mask)
{
    umg_ip_t ip;
    if (umg_ip_parse(text, &ip) != UMG_OK) {
        return UMG_EINVAL;
    }
    return umg_iplists_lookup_ip(r, &ip, list, mask);
}
