/*
 * metrics.c - owns the Prometheus registry: a mutex-protected singly linked
 * list of statically allocated metrics, histogram observation, and rendering
 * in text exposition format 0.0.4. Metrics sharing a name form one family and
 * are printed under a single HELP/TYPE header wherever they were registered.
 * The allocator's live-byte count is exported here as `umg_memory_bytes`.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "umg_core.h"

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static umg_metric_t *reg_head;
static umg_metric_t *reg_tail;

static int64_t read_alloc_bytes(void)
{
    size_t n = umg_alloc_bytes();
    return n > (size_t)INT64_MAX ? INT64_MAX : (int64_t)n;
}

static umg_metric_t memory_bytes =
    UMG_GAUGE_FN("umg_memory_bytes", "Heap bytes currently allocated through umg_malloc.", NULL, read_alloc_bytes);

/* All the process's resident memory (the libraries' allocations, mapped files in use, stacks): what umg_memory_bytes
 * cannot see. From /proc/self/statm; 0 where there is none. */
static int64_t read_resident_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "re");
    unsigned long long size = 0, resident = 0;
    int ok = f != NULL && fscanf(f, "%llu %llu", &size, &resident) == 2;
    if (f != NULL) {
        fclose(f);
    }
    long page = sysconf(_SC_PAGESIZE);
    return ok && page > 0 ? (int64_t)(resident * (unsigned long long)page) : 0;
}

static umg_metric_t resident_bytes = UMG_GAUGE_FN(
    "process_resident_memory_bytes", "Resident memory of the whole process, in bytes.", NULL, read_resident_bytes);

void umg_metric_register(umg_metric_t *m)
{
    if (atomic_load_explicit(&m->registered, memory_order_acquire)) {
        return;
    }
    pthread_mutex_lock(&reg_lock);
    if (!atomic_load_explicit(&m->registered, memory_order_relaxed)) {
        m->next = NULL;
        if (reg_tail != NULL) {
            reg_tail->next = m;
        } else {
            reg_head = m;
        }
        reg_tail = m;
        atomic_store_explicit(&m->registered, 1, memory_order_release);
    }
    pthread_mutex_unlock(&reg_lock);
}

void umg_metric_observe(umg_metric_t *m, double v)
{
    int nb = m->nbounds < UMG_HIST_MAX_BUCKETS ? m->nbounds : UMG_HIST_MAX_BUCKETS;
    int i = 0;
    while (i < nb && !(v <= m->bounds[i])) {
        i++;
    }
    atomic_fetch_add_explicit(&m->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->count, 1, memory_order_relaxed);
    if (isfinite(v)) {
        /* Clamp so a wild value cannot make the conversion undefined. */
        double micro = v * 1e6;
        if (micro > 9.2e18) {
            micro = 9.2e18;
        } else if (micro < -9.2e18) {
            micro = -9.2e18;
        }
        /* A negative delta wraps in unsigned arithmetic; rendering reads the sum as signed. */
        atomic_fetch_add_explicit(&m->sum_micro, (uint64_t)llround(micro), memory_order_relaxed);
    }
}

/* HELP text escapes backslash and newline (exposition format 0.0.4). */
static int put_help(umg_buf_t *out, const char *s)
{
    int rc = UMG_OK;
    for (; rc == UMG_OK && *s != '\0'; s++) {
        if (*s == '\\') {
            rc = umg_buf_append(out, "\\\\", 2);
        } else if (*s == '\n') {
            rc = umg_buf_append(out, "\\n", 2);
        } else {
            rc = umg_buf_putc(out, *s);
        }
    }
    return rc;
}

/* Shortest decimal text that reads back as the same double. */
static int put_double(umg_buf_t *out, double v)
{
    char tmp[40];
    if (isinf(v)) {
        return umg_buf_append(out, v > 0 ? "+Inf" : "-Inf", 4);
    }
    if (isnan(v)) {
        return umg_buf_append(out, "NaN", 3);
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        if (strtod(tmp, NULL) == v) {
            break;
        }
    }
    return umg_buf_append(out, tmp, strlen(tmp));
}

/* Millionths as a decimal with trailing zeros dropped: 1500000 -> "1.5". */
static int put_micro(umg_buf_t *out, int64_t v)
{
    uint64_t mag = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    uint64_t frac = mag % 1000000;
    char fbuf[8];
    int rc = v < 0 ? umg_buf_putc(out, '-') : UMG_OK;
    if (rc == UMG_OK) {
        rc = umg_buf_u64(out, mag / 1000000);
    }
    if (rc != UMG_OK || frac == 0) {
        return rc;
    }
    fbuf[0] = '.';
    for (int i = 6; i >= 1; i--) {
        fbuf[i] = (char)('0' + frac % 10);
        frac /= 10;
    }
    size_t n = 7;
    while (fbuf[n - 1] == '0') {
        n--;
    }
    return umg_buf_append(out, fbuf, n);
}

/* Writes `name[suffix]{labels[,extra]} ` – braces omitted when there is nothing inside. */
static int put_series(umg_buf_t *out, const umg_metric_t *m, const char *suffix, const char *extra)
{
    int has_labels = m->labels != NULL && m->labels[0] != '\0';
    int rc = umg_buf_append(out, m->name, strlen(m->name));
    if (rc == UMG_OK && suffix != NULL) {
        rc = umg_buf_append(out, suffix, strlen(suffix));
    }
    if (rc == UMG_OK && (has_labels || extra != NULL)) {
        rc = umg_buf_putc(out, '{');
        if (rc == UMG_OK && has_labels) {
            rc = umg_buf_append(out, m->labels, strlen(m->labels));
        }
        if (rc == UMG_OK && has_labels && extra != NULL) {
            rc = umg_buf_putc(out, ',');
        }
        if (rc == UMG_OK && extra != NULL) {
            rc = umg_buf_append(out, extra, strlen(extra));
        }
        if (rc == UMG_OK) {
            rc = umg_buf_putc(out, '}');
        }
    }
    if (rc == UMG_OK) {
        rc = umg_buf_putc(out, ' ');
    }
    return rc;
}

static int render_histogram(umg_buf_t *out, umg_metric_t *m)
{
    int nb = m->nbounds < UMG_HIST_MAX_BUCKETS ? m->nbounds : UMG_HIST_MAX_BUCKETS;
    uint64_t cum = 0;
    umg_buf_t le = {0};
    int rc = UMG_OK;
    for (int i = 0; i <= nb && rc == UMG_OK; i++) {
        cum += atomic_load_explicit(&m->buckets[i], memory_order_relaxed);
        umg_buf_reset(&le);
        rc = umg_buf_append(&le, "le=\"", 4);
        if (rc == UMG_OK) {
            rc = i < nb ? put_double(&le, m->bounds[i]) : umg_buf_append(&le, "+Inf", 4);
        }
        if (rc == UMG_OK) {
            rc = umg_buf_putc(&le, '"');
        }
        if (rc == UMG_OK) {
            rc = put_series(out, m, "_bucket", le.ptr);
        }
        if (rc == UMG_OK) {
            rc = umg_buf_u64(out, cum);
        }
        if (rc == UMG_OK) {
            rc = umg_buf_putc(out, '\n');
        }
    }
    umg_buf_free(&le);
    if (rc == UMG_OK) {
        rc = put_series(out, m, "_sum", NULL);
    }
    if (rc == UMG_OK) {
        int64_t sum = (int64_t)atomic_load_explicit(&m->sum_micro, memory_order_relaxed);
        rc = put_micro(out, sum);
    }
    if (rc == UMG_OK) {
        rc = umg_buf_putc(out, '\n');
    }
    /* _count equals the +Inf bucket; reuse the sum of buckets so the two always agree. */
    if (rc == UMG_OK) {
        rc = put_series(out, m, "_count", NULL);
    }
    if (rc == UMG_OK) {
        rc = umg_buf_u64(out, cum);
    }
    if (rc == UMG_OK) {
        rc = umg_buf_putc(out, '\n');
    }
    return rc;
}

static int render_one(umg_buf_t *out, umg_metric_t *m)
{
    if (m->kind == UMG_METRIC_HISTOGRAM) {
        return render_histogram(out, m);
    }
    int64_t v = m->kind == UMG_METRIC_GAUGE && m->read != NULL ? m->read()
                                                               : atomic_load_explicit(&m->value, memory_order_relaxed);
    int rc = put_series(out, m, NULL, NULL);
    if (rc == UMG_OK) {
        rc = umg_buf_i64(out, v);
    }
    if (rc == UMG_OK) {
        rc = umg_buf_putc(out, '\n');
    }
    return rc;
}

static const char *kind_name(umg_metric_kind_t k)
{
    switch (k) {
    case UMG_METRIC_COUNTER: return "counter";
    case UMG_METRIC_GAUGE: return "gauge";
    case UMG_METRIC_HISTOGRAM: return "histogram";
    }
    return "untyped";
}

static int render_header(umg_buf_t *out, const umg_metric_t *m)
{
    int rc = umg_buf_append(out, "# HELP ", 7);
    if (rc == UMG_OK) {
        rc = umg_buf_append(out, m->name, strlen(m->name));
    }
    if (rc == UMG_OK) {
        rc = umg_buf_putc(out, ' ');
    }
    if (rc == UMG_OK) {
        rc = put_help(out, m->help != NULL ? m->help : "");
    }
    if (rc == UMG_OK) {
        rc = umg_buf_printf(out, "\n# TYPE %s %s\n", m->name, kind_name(m->kind));
    }
    return rc;
}

int umg_metrics_render(umg_buf_t *out)
{
    int rc = UMG_OK;
    umg_metric_register(&memory_bytes);
    umg_metric_register(&resident_bytes);
    pthread_mutex_lock(&reg_lock);
    /* Families are few, so finding a family's members by rescanning the list is cheap enough. */
    for (umg_metric_t *m = reg_head; m != NULL && rc == UMG_OK; m = m->next) {
        umg_metric_t *first = reg_head;
        while (first != m && strcmp(first->name, m->name) != 0) {
            first = first->next;
        }
        if (first != m) {
            continue; /* printed with an earlier member of its family */
        }
        rc = render_header(out, m);
        for (umg_metric_t *s = m; s != NULL && rc == UMG_OK; s = s->next) {
            if (s == m || strcmp(s->name, m->name) == 0) {
                rc = render_one(out, s);
            }
        }
    }
    pthread_mutex_unlock(&reg_lock);
    return rc;
}
