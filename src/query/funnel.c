/*
 * funnel.c - GET /v1/reports/funnel (docs/reports.md, "Funnel"): the
 * parameters, the greedy match of one device's timeline against the steps,
 * the aggregation per group (devices per step, the seconds between steps for
 * the medians) and the answer as JSON or CSV. Pure: the timelines, the
 * devices' dimensions and the dictionary come through callbacks
 * (umg_funnel_input_t), the endpoint glue is in query_ep.c.
 *
 * The per-device path allocates nothing of its own: a device that enters adds
 * to its group's counters and appends its step-to-step seconds (and its
 * group) to one array per step, grown by doubling; the medians are selected
 * from those once the scan is over.
 */
#include "umg_query.h"
#include "umg_store.h"

#include <inttypes.h>
#include <stdlib.h>

/* ------------------------------------------------------------ the funnel */

#define FD_DAY UMG_RD_N /* group_by: 0..6 are UMG_RD_*, 7 is the entry day */
#define FD_N (UMG_RD_N + 1)
#define MAX_WINDOW_H (90 * 24)

static const char *const fdim_names[FD_N] = {"source", "campaign", "adset", "ad", "site", "country", "platform", "day"};

struct umg_funnel_s {
    int32_t from, to;
    size_t ns;
    umg_funnel_step_t step[UMG_FUNNEL_MAX_STEPS]; /* names unbound (0) until the run looks them up */
    umg_slice_t label[UMG_FUNNEL_MAX_STEPS];      /* as written: "install", "event:signup" */
    umg_slice_t name[UMG_FUNNEL_MAX_STEPS];       /* the event names, for the lookup */
    int64_t window_us;
    uint32_t window_n;
    char window_unit; /* 'd' or 'h' */
    size_t ngb;
    uint8_t gb[FD_N];
    int csv;
    char *text; /* the owned copy of the steps parameter the slices point into */
};

static int ffail(umg_query_error_t *err, const char *code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int ffail(umg_query_error_t *err, const char *code, const char *field, const char *fmt, ...)
{
    err->code = code;
    err->field = field;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    return UMG_EINVAL;
}

/* Prints at most 64 bytes of a client's text into a message (the JSON writer escapes it). */
#define SHOWN(s) (int)((s).len > 64 ? 64 : (s).len), (s).ptr

/* The next comma-separated item of *rest (spaces around it trimmed); 0 when the list is done. */
static int next_item(umg_slice_t *rest, int *done, umg_slice_t *item)
{
    if (*done) {
        return 0;
    }
    const char *p = rest->ptr, *end = rest->ptr + rest->len, *e = memchr(p, ',', rest->len);
    if (e == NULL) {
        e = end;
        *done = 1;
    } else {
        *rest = umg_slice(e + 1, (size_t)(end - e - 1));
    }
    while (p < e && *p == ' ') {
        p++;
    }
    while (e > p && e[-1] == ' ') {
        e--;
    }
    *item = umg_slice(p, (size_t)(e - p));
    return 1;
}

static int has_prefix(umg_slice_t s, const char *pre)
{
    size_t n = strlen(pre);
    return s.len >= n && memcmp(s.ptr, pre, n) == 0;
}

static int parse_step(umg_funnel_t *f, umg_slice_t it, umg_query_error_t *err)
{
    size_t k = f->ns;
    umg_slice_t name = UMG_SLICE_NULL;
    if (umg_slice_eq(it, "install")) {
        f->step[k].kind = UMG_FUNNEL_INSTALL;
    } else if (umg_slice_eq(it, "purchase")) {
        f->step[k].kind = UMG_FUNNEL_PURCHASE;
    } else if (has_prefix(it, "purchase:") && it.len > 9) {
        f->step[k].kind = UMG_FUNNEL_PURCHASE_N;
        name = umg_slice(it.ptr + 9, it.len - 9);
    } else if (has_prefix(it, "event:") && it.len > 6) {
        f->step[k].kind = UMG_FUNNEL_EVENT;
        name = umg_slice(it.ptr + 6, it.len - 6);
    } else {
        return ffail(err, "invalid_value", "steps",
                     "unknown step \"%.*s\" (install, purchase, purchase:<name> or event:<name>)", SHOWN(it));
    }
    if (name.len > UMG_FUNNEL_MAX_NAME) {
        return ffail(err, "invalid_value", "steps", "an event name is at most %d bytes", UMG_FUNNEL_MAX_NAME);
    }
    f->label[k] = it;
    f->name[k] = name;
    f->ns++;
    return UMG_OK;
}

static int parse_steps(umg_funnel_t *f, umg_slice_t v, umg_query_error_t *err)
{
    if (v.ptr == NULL || v.len == 0) {
        return ffail(err, "required", "steps", "steps (2 to %d comma-separated steps) is required",
                     UMG_FUNNEL_MAX_STEPS);
    }
    int done = 0;
    umg_slice_t it;
    while (next_item(&v, &done, &it)) {
        if (it.len == 0) {
            return ffail(err, "invalid_value", "steps", "steps has an empty item");
        }
        if (f->ns == UMG_FUNNEL_MAX_STEPS) {
            return ffail(err, "invalid_value", "steps", "a funnel has at most %d steps", UMG_FUNNEL_MAX_STEPS);
        }
        int rc = parse_step(f, it, err);
        if (rc != UMG_OK) {
            return rc;
        }
    }
    if (f->ns < UMG_FUNNEL_MIN_STEPS) {
        return ffail(err, "invalid_value", "steps", "a funnel has at least %d steps", UMG_FUNNEL_MIN_STEPS);
    }
    return UMG_OK;
}

/* window=Nd (1..90) or Nh (1..2160); 7d when absent. */
static int parse_window(umg_funnel_t *f, umg_slice_t v, umg_query_error_t *err)
{
    f->window_n = 7;
    f->window_unit = 'd';
    if (v.ptr != NULL) {
        uint32_t n = 0;
        char unit = v.len >= 2 ? v.ptr[v.len - 1] : 0;
        int ok = (unit == 'd' || unit == 'h') && v.len <= 6;
        for (size_t i = 0; ok && i + 1 < v.len; i++) {
            ok = v.ptr[i] >= '0' && v.ptr[i] <= '9';
            n = n * 10 + (uint32_t)(v.ptr[i] - '0');
        }
        uint32_t hours = unit == 'd' ? n * 24 : n;
        if (!ok || n == 0 || hours > MAX_WINDOW_H) {
            return ffail(err, "invalid_value", "window", "window is Nd or Nh, from 1h to 90d");
        }
        f->window_n = n;
        f->window_unit = unit;
    }
    f->window_us = (int64_t)f->window_n * (f->window_unit == 'd' ? 86400 : 3600) * 1000000;
    return UMG_OK;
}

static int parse_group_by(umg_funnel_t *f, umg_slice_t v, umg_query_error_t *err)
{
    if (v.ptr == NULL || v.len == 0) {
        return UMG_OK;
    }
    int done = 0;
    umg_slice_t it;
    while (next_item(&v, &done, &it)) {
        int d = -1;
        for (int i = 0; i < FD_N && d < 0; i++) {
            d = umg_slice_eq(it, fdim_names[i]) ? i : -1;
        }
        if (it.len == 0) {
            return ffail(err, "invalid_value", "group_by", "group_by has an empty item");
        }
        if (d < 0) {
            return ffail(err, "invalid_value", "group_by", "unknown dimension \"%.*s\"", SHOWN(it));
        }
        for (size_t i = 0; i < f->ngb; i++) {
            if (f->gb[i] == d) {
                return ffail(err, "invalid_value", "group_by", "dimension \"%s\" is repeated", fdim_names[d]);
            }
        }
        f->gb[f->ngb++] = (uint8_t)d;
    }
    return UMG_OK;
}

int umg_funnel_parse(const umg_funnel_params_t *p, umg_funnel_t **out, umg_query_error_t *err)
{
    umg_funnel_t *f = umg_calloc(1, sizeof(*f));
    if (f == NULL) {
        return UMG_ENOMEM;
    }
    umg_slice_t steps = p->steps;
    int rc = UMG_OK;
    if (steps.ptr != NULL) {
        f->text = umg_memdup(steps.ptr, steps.len); /* every byte: the steps are cut with their length */
        rc = f->text == NULL ? UMG_ENOMEM : UMG_OK;
        steps.ptr = f->text;
    }
    rc = rc ? rc : umg_query_parse_period(p->from, p->to, &f->from, &f->to, err);
    rc = rc ? rc : parse_steps(f, steps, err);
    rc = rc ? rc : parse_window(f, p->window, err);
    rc = rc ? rc : parse_group_by(f, p->group_by, err);
    if (rc == UMG_OK && p->format.ptr != NULL) {
        if (umg_slice_eq(p->format, "csv")) {
            f->csv = 1;
        } else if (!umg_slice_eq(p->format, "json")) {
            rc = ffail(err, "invalid_value", "format", "format must be json or csv");
        }
    }
    if (rc != UMG_OK) {
        umg_funnel_free(f);
        return rc;
    }
    *out = f;
    return UMG_OK;
}

void umg_funnel_free(umg_funnel_t *f)
{
    if (f != NULL) {
        umg_free(f->text);
        umg_free(f);
    }
}

int umg_funnel_is_csv(const umg_funnel_t *f)
{
    return f->csv;
}

/* ------------------------------------------------------------- matching */

static inline int step_is(const umg_funnel_step_t *f, const umg_store_step_t *s)
{
    switch (f->kind) {
    case UMG_FUNNEL_INSTALL: return s->kind == UMG_STORE_STEP_INSTALL;
    case UMG_FUNNEL_EVENT:
        return s->name == f->name && (s->kind == UMG_STORE_STEP_EVENT || s->kind == UMG_STORE_STEP_PURCHASE);
    case UMG_FUNNEL_PURCHASE: return s->kind == UMG_STORE_STEP_PURCHASE;
    case UMG_FUNNEL_PURCHASE_N: return s->kind == UMG_STORE_STEP_PURCHASE && s->name == f->name;
    default: return 0;
    }
}

size_t umg_funnel_match(const umg_funnel_step_t *fs, size_t nfs, int64_t from_us, int64_t to_us, int64_t window_us,
                        const umg_store_step_t *tl, size_t n, int64_t *at)
{
    size_t used[UMG_FUNNEL_MAX_STEPS], i = 0;
    if (nfs > UMG_FUNNEL_MAX_STEPS) {
        nfs = UMG_FUNNEL_MAX_STEPS;
    }
    while (i < n && (tl[i].ts_us < from_us || tl[i].ts_us >= to_us || !step_is(&fs[0], &tl[i]))) {
        i++;
    }
    if (i == n || nfs == 0) {
        return 0;
    }
    at[0] = tl[i].ts_us;
    used[0] = i;
    int64_t deadline = at[0] > INT64_MAX - window_us ? INT64_MAX : at[0] + window_us;
    for (size_t k = 1; k < nfs; k++) {
        /* From the first occurrence at the time step k-1 was reached: ties in time count as "at or after". */
        size_t j = used[k - 1];
        while (j > 0 && tl[j - 1].ts_us == at[k - 1]) {
            j--;
        }
        for (; j < n && tl[j].ts_us <= deadline; j++) {
            if (!step_is(&fs[k], &tl[j])) {
                continue;
            }
            int taken = 0; /* an occurrence reaches one step only; earlier steps' are at or before at[k-1] */
            for (size_t u = 0; u < k && tl[j].ts_us == at[k - 1] && !taken; u++) {
                taken = used[u] == j;
            }
            if (!taken) {
                break;
            }
        }
        if (j >= n || tl[j].ts_us > deadline) {
            return k;
        }
        at[k] = tl[j].ts_us;
        used[k] = j;
    }
    return nfs;
}

/* ---------------------------------------------------------- aggregation */

typedef struct fctx_s {
    const umg_funnel_t *f;
    const umg_funnel_input_t *in;
    umg_funnel_step_t step[UMG_FUNNEL_MAX_STEPS]; /* bound to dictionary ids */
    size_t ns, k;                                 /* steps; group_by dimensions */
    int64_t from_us, to_us;
    int need_dev; /* group_by names a dimension of the device */
    int part;     /* which of the scan's two contexts this is */
    /* groups: their keys (k values: dictionary ids, the day as an offset from `from`) and counters */
    uint32_t *gkey;
    uint64_t *cnt; /* ng x ns: devices that reached each step */
    size_t ng, gcap;
    uint32_t *slot; /* open addressing: group + 1, 0 empty */
    size_t scap;
    /* per step k >= 1 reached: the whole seconds from step k-1, and the device's group (when grouped) */
    uint32_t *sec[UMG_FUNNEL_MAX_STEPS], *grp[UMG_FUNNEL_MAX_STEPS];
    size_t nsec[UMG_FUNNEL_MAX_STEPS], seccap[UMG_FUNNEL_MAX_STEPS];
} fctx_t;

static inline uint64_t key_hash(const uint32_t *key, size_t k)
{
    uint64_t h = UINT64_C(0x9E3779B97F4A7C15);
    for (size_t j = 0; j < k; j++) {
        h = (h ^ key[j]) * UINT64_C(0xBF58476D1CE4E5B9);
        h ^= h >> 29;
    }
    return h;
}

static int slots_grow(fctx_t *c)
{
    size_t cap = c->scap ? c->scap * 2 : 1024;
    uint32_t *s = umg_calloc(cap, sizeof(*s));
    if (s == NULL) {
        return UMG_ENOMEM;
    }
    for (size_t g = 0; g < c->ng; g++) {
        size_t i = (size_t)key_hash(c->gkey + g * c->k, c->k) & (cap - 1);
        while (s[i] != 0) {
            i = (i + 1) & (cap - 1);
        }
        s[i] = (uint32_t)g + 1;
    }
    umg_free(c->slot);
    c->slot = s;
    c->scap = cap;
    return UMG_OK;
}

static int groups_grow(fctx_t *c)
{
    size_t cap = c->gcap ? c->gcap * 2 : 256;
    uint32_t *key = umg_realloc(c->gkey, cap * (c->k ? c->k : 1) * sizeof(*key));
    if (key == NULL) {
        return UMG_ENOMEM;
    }
    c->gkey = key;
    uint64_t *cnt = umg_realloc(c->cnt, cap * c->ns * sizeof(*cnt));
    if (cnt == NULL) {
        return UMG_ENOMEM;
    }
    c->cnt = cnt;
    c->gcap = cap;
    return UMG_OK;
}

/* The group of a key, made when new. */
static int group_of(fctx_t *c, const uint32_t *key, uint32_t *g)
{
    if ((c->ng + 1) * 2 > c->scap && slots_grow(c) != UMG_OK) {
        return UMG_ENOMEM;
    }
    size_t i = (size_t)key_hash(key, c->k) & (c->scap - 1);
    for (; c->slot[i] != 0; i = (i + 1) & (c->scap - 1)) {
        if (memcmp(c->gkey + (size_t)(c->slot[i] - 1) * c->k, key, c->k * sizeof(*key)) == 0) {
            *g = c->slot[i] - 1;
            return UMG_OK;
        }
    }
    if (c->ng == c->gcap && groups_grow(c) != UMG_OK) {
        return UMG_ENOMEM;
    }
    memcpy(c->gkey + c->ng * c->k, key, c->k * sizeof(*key));
    memset(c->cnt + c->ng * c->ns, 0, c->ns * sizeof(*c->cnt));
    c->slot[i] = (uint32_t)c->ng + 1;
    *g = (uint32_t)c->ng++;
    return UMG_OK;
}

static int device_group(fctx_t *c, uint64_t key, int64_t entry_us, uint32_t *g)
{
    uint32_t dims[UMG_RD_N] = {0}, gk[FD_N];
    if (c->need_dev) {
        int rc = c->in->device(c->in->ctx, c->part, key, dims);
        if (rc == UMG_ENOENT) {
            memset(dims, 0, sizeof(dims));
        } else if (rc != UMG_OK) {
            return rc;
        }
    }
    for (size_t j = 0; j < c->k; j++) {
        uint8_t d = c->f->gb[j];
        gk[j] = d == FD_DAY ? (uint32_t)(umg_tz_day(c->in->tz, entry_us) - c->f->from) : dims[d];
    }
    return group_of(c, gk, g);
}

/* Room for more seconds of step k (and their groups), by doubling. */
static int secs_grow(fctx_t *c, size_t k)
{
    size_t cap = c->seccap[k] ? c->seccap[k] * 2 : 65536;
    uint32_t *s = umg_realloc(c->sec[k], cap * sizeof(*s));
    if (s == NULL) {
        return UMG_ENOMEM;
    }
    c->sec[k] = s;
    if (c->k > 0) {
        uint32_t *g = umg_realloc(c->grp[k], cap * sizeof(*g));
        if (g == NULL) {
            return UMG_ENOMEM;
        }
        c->grp[k] = g;
    }
    c->seccap[k] = cap;
    return UMG_OK;
}

static int on_device(void *ctx, uint64_t key, const umg_store_step_t *tl, size_t n)
{
    fctx_t *c = ctx;
    int64_t at[UMG_FUNNEL_MAX_STEPS];
    size_t r = umg_funnel_match(c->step, c->ns, c->from_us, c->to_us, c->f->window_us, tl, n, at);
    if (r == 0) {
        return 0;
    }
    uint32_t g = 0;
    if (c->k > 0) {
        int rc = device_group(c, key, at[0], &g);
        if (rc != UMG_OK) {
            return rc;
        }
    }
    uint64_t *cnt = c->cnt + (size_t)g * c->ns;
    cnt[0]++;
    for (size_t k = 1; k < r; k++) {
        if (c->nsec[k] == c->seccap[k] && secs_grow(c, k) != UMG_OK) {
            return UMG_ENOMEM;
        }
        cnt[k]++;
        c->sec[k][c->nsec[k]] = (uint32_t)((uint64_t)(at[k] - at[k - 1]) / 1000000);
        if (c->k > 0) {
            c->grp[k][c->nsec[k]] = g;
        }
        c->nsec[k]++;
    }
    return 0;
}

/* ---------------------------------------------------------------- medians */

/* The element of rank r (0-based) of v[0..n), reordering v: quickselect with three-way partitions. */
static uint32_t select_rank(uint32_t *v, size_t n, size_t r)
{
    size_t lo = 0, hi = n; /* the answer is in v[lo..hi) */
    while (hi - lo > 1) {
        uint32_t a = v[lo], b = v[lo + (hi - lo) / 2], z = v[hi - 1];
        uint32_t p = a < b ? (b < z ? b : a < z ? z : a) : (a < z ? a : b < z ? z : b);
        size_t lt = lo, i = lo, gt = hi; /* [lo,lt) < p, [lt,i) == p, [gt,hi) > p */
        while (i < gt) {
            uint32_t x = v[i];
            if (x < p) {
                v[i++] = v[lt];
                v[lt++] = x;
            } else if (x > p) {
                v[i] = v[--gt];
                v[gt] = x;
            } else {
                i++;
            }
        }
        if (r < lt) {
            hi = lt;
        } else if (r >= gt) {
            lo = gt;
        } else {
            return p;
        }
    }
    return v[lo];
}

/*
 * The lower median of step k's seconds per group into med[g * ns + k]
 * (UINT32_MAX when the group has none), from a copy of them sorted into
 * groups (a counting sort by group, the counts being the groups' devices).
 */
static int group_medians(fctx_t *c, size_t k, uint32_t *med)
{
    size_t *off = umg_malloc((c->ng + 1) * sizeof(*off));
    uint32_t *v = umg_malloc((c->nsec[k] ? c->nsec[k] : 1) * sizeof(*v));
    if (off == NULL || v == NULL) {
        umg_free(off);
        umg_free(v);
        return UMG_ENOMEM;
    }
    off[0] = 0;
    for (size_t g = 0; g < c->ng; g++) {
        off[g + 1] = off[g] + c->cnt[g * c->ns + k];
    }
    for (size_t i = 0; i < c->nsec[k]; i++) {
        v[off[c->grp[k][i]]++] = c->sec[k][i];
    }
    /* off[g] is now the end of group g's seconds */
    for (size_t g = 0; g < c->ng; g++) {
        size_t start = g ? off[g - 1] : 0, m = off[g] - start;
        med[g * c->ns + k] = m ? select_rank(v + start, m, (m - 1) / 2) : UINT32_MAX;
    }
    umg_free(off);
    umg_free(v);
    return UMG_OK;
}

/* The medians of every group (when grouped), then of the totals (which reorders the seconds). */
static int medians(fctx_t *c, uint32_t *med, uint32_t *tmed)
{
    tmed[0] = UINT32_MAX;
    for (size_t k = 1; k < c->ns; k++) {
        int rc = med != NULL ? group_medians(c, k, med) : UMG_OK;
        if (rc != UMG_OK) {
            return rc;
        }
        size_t m = c->nsec[k];
        tmed[k] = m ? select_rank(c->sec[k], m, (m - 1) / 2) : UINT32_MAX;
    }
    return UMG_OK;
}

/* -------------------------------------------------------------- writing */

typedef struct out_s {
    fctx_t *c;
    umg_slice_t *str; /* ng x k: the groups' values as text (days in dates) */
    char (*date)[11]; /* ng x k: room for the days' text */
    uint32_t *ord;    /* groups in answer order */
    uint32_t *med;    /* ng x ns, or NULL without groups */
    uint32_t tmed[UMG_FUNNEL_MAX_STEPS];
    uint64_t tot[UMG_FUNNEL_MAX_STEPS];
} out_t;

static int cmp_group(const void *a, const void *b, void *arg)
{
    const out_t *o = arg;
    size_t k = o->c->k, x = *(const uint32_t *)a * k, y = *(const uint32_t *)b * k;
    for (size_t j = 0; j < k; j++) {
        const umg_slice_t *s = &o->str[x + j], *t = &o->str[y + j];
        size_t n = s->len < t->len ? s->len : t->len;
        int r = n ? memcmp(s->ptr, t->ptr, n) : 0;
        r = r != 0 ? r : s->len < t->len ? -1 : s->len > t->len;
        if (r != 0) {
            return r;
        }
    }
    return 0;
}

/* Each group's values as text, and the groups in order of them (dates sort as text too). */
static int order_groups(out_t *o)
{
    fctx_t *c = o->c;
    size_t cells = c->ng * c->k;
    o->str = umg_calloc(cells ? cells : 1, sizeof(*o->str));
    o->date = umg_calloc(cells ? cells : 1, sizeof(*o->date));
    o->ord = umg_malloc((c->ng ? c->ng : 1) * sizeof(*o->ord));
    if (o->str == NULL || o->date == NULL || o->ord == NULL) {
        return UMG_ENOMEM;
    }
    for (size_t i = 0; i < cells; i++) {
        uint32_t v = c->gkey[i];
        int rc = UMG_OK;
        if (c->f->gb[i % c->k] == FD_DAY) {
            umg_date_format(c->f->from + (int32_t)v, o->date[i]);
            o->str[i] = umg_slice(o->date[i], 10);
        } else if (v == 0) {
            o->str[i] = umg_slice("", 0);
        } else {
            rc = c->in->string(c->in->ctx, v, &o->str[i]);
        }
        if (rc != UMG_OK) {
            return rc;
        }
    }
    for (size_t g = 0; g < c->ng; g++) {
        o->ord[g] = (uint32_t)g;
    }
    qsort_r(o->ord, c->ng, sizeof(*o->ord), cmp_group, o);
    return UMG_OK;
}

/* A ratio as docs/reports.md prints them; null (nothing in CSV) when the denominator is 0. */
static int put_ratio(umg_buf_t *b, uint64_t num, uint64_t den, int csv)
{
    if (den == 0) {
        return csv ? UMG_OK : umg_buf_append(b, "null", 4);
    }
    return umg_buf_printf(b, "%.17g", (double)num / (double)den);
}

static int put_median(umg_buf_t *b, uint32_t m, int csv)
{
    if (m == UINT32_MAX) {
        return csv ? UMG_OK : umg_buf_append(b, "null", 4);
    }
    return umg_buf_u64(b, m);
}

/*
 * Step k of a row, from its devices per step and medians: devices, conversion
 * (to step 1), step_conversion (to step k-1; step 1's is to itself) and the
 * median seconds from step k-1 (null for step 1).
 */
static int put_step_values(umg_buf_t *b, const uint64_t *cnt, const uint32_t *med, size_t k, int csv)
{
    const char *sep = csv ? "," : ",\"conversion\":";
    int rc = umg_buf_u64(b, cnt[k]);
    rc = rc ? rc : umg_buf_printf(b, "%s", sep);
    rc = rc ? rc : put_ratio(b, cnt[k], cnt[0], csv);
    rc = rc ? rc : umg_buf_printf(b, "%s", csv ? "," : ",\"step_conversion\":");
    rc = rc ? rc : put_ratio(b, cnt[k], cnt[k ? k - 1 : 0], csv);
    rc = rc ? rc : umg_buf_printf(b, "%s", csv ? "," : ",\"median_seconds\":");
    return rc ? rc : put_median(b, k ? med[k] : UINT32_MAX, csv);
}

static int put_steps_json(const out_t *o, umg_buf_t *b, const uint64_t *cnt, const uint32_t *med)
{
    const umg_funnel_t *f = o->c->f;
    int rc = umg_buf_printf(b, "\"steps\":[");
    for (size_t k = 0; k < f->ns && rc == UMG_OK; k++) {
        rc = umg_buf_printf(b, "%s{\"step\":", k ? "," : "");
        rc = rc ? rc : umg_buf_json_str(b, f->label[k].ptr, f->label[k].len);
        rc = rc ? rc : umg_buf_printf(b, ",\"devices\":");
        rc = rc ? rc : put_step_values(b, cnt, med, k, 0);
        rc = rc ? rc : umg_buf_putc(b, '}');
    }
    return rc ? rc : umg_buf_putc(b, ']');
}

static int put_json(const out_t *o, umg_buf_t *b)
{
    const fctx_t *c = o->c;
    const umg_funnel_t *f = c->f;
    char from[11], to[11];
    umg_date_format(f->from, from);
    umg_date_format(f->to, to);
    int rc = umg_buf_printf(b, "{\"app\":");
    rc = rc ? rc : umg_buf_json_str(b, c->in->app, strlen(c->in->app));
    rc = rc ? rc : umg_buf_printf(b, ",\"from\":\"%s\",\"to\":\"%s\",\"timezone\":", from, to);
    rc = rc ? rc : umg_buf_json_str(b, c->in->timezone, strlen(c->in->timezone));
    rc = rc ? rc : umg_buf_printf(b, ",\"steps\":[");
    for (size_t k = 0; k < f->ns && rc == UMG_OK; k++) {
        rc = k ? umg_buf_putc(b, ',') : UMG_OK;
        rc = rc ? rc : umg_buf_json_str(b, f->label[k].ptr, f->label[k].len);
    }
    rc = rc ? rc
            : umg_buf_printf(b, "],\"window\":\"%" PRIu32 "%c\",\"window_seconds\":%" PRId64 ",\"group_by\":[",
                             f->window_n, f->window_unit, f->window_us / 1000000);
    for (size_t j = 0; j < c->k && rc == UMG_OK; j++) {
        rc = umg_buf_printf(b, "%s\"%s\"", j ? "," : "", fdim_names[f->gb[j]]);
    }
    rc = rc ? rc : umg_buf_printf(b, "],\"rows\":[");
    if (c->k == 0) { /* without dimensions, one row: the totals */
        rc = rc ? rc : umg_buf_putc(b, '{');
        rc = rc ? rc : put_steps_json(o, b, o->tot, o->tmed);
        rc = rc ? rc : umg_buf_putc(b, '}');
    }
    for (size_t i = 0; i < c->ng && c->k > 0 && rc == UMG_OK; i++) {
        size_t g = o->ord[i];
        rc = umg_buf_printf(b, "%s{", i ? "," : "");
        for (size_t j = 0; j < c->k && rc == UMG_OK; j++) {
            rc = umg_buf_printf(b, "\"%s\":", fdim_names[f->gb[j]]);
            rc = rc ? rc : umg_buf_json_str(b, o->str[g * c->k + j].ptr, o->str[g * c->k + j].len);
            rc = rc ? rc : umg_buf_putc(b, ',');
        }
        rc = rc ? rc : put_steps_json(o, b, c->cnt + g * c->ns, o->med + g * c->ns);
        rc = rc ? rc : umg_buf_putc(b, '}');
    }
    rc = rc ? rc : umg_buf_printf(b, "],\"totals\":{");
    rc = rc ? rc : put_steps_json(o, b, o->tot, o->tmed);
    return rc ? rc : umg_buf_printf(b, "}}\n");
}

/* One line per (row, step); the totals' lines say "total" in the first dimension column. */
static int put_csv_answer(const out_t *o, umg_buf_t *b)
{
    const fctx_t *c = o->c;
    const umg_funnel_t *f = c->f;
    int rc = UMG_OK;
    for (size_t j = 0; j < c->k && rc == UMG_OK; j++) {
        rc = umg_buf_printf(b, "%s,", fdim_names[f->gb[j]]);
    }
    rc = rc ? rc : umg_buf_printf(b, "step,devices,conversion,step_conversion,median_seconds\n");
    for (size_t i = 0; i <= c->ng && rc == UMG_OK; i++) {
        int total = i == c->ng;
        size_t g = total ? 0 : o->ord[i];
        const uint64_t *cnt = total ? o->tot : c->cnt + g * c->ns;
        const uint32_t *med = total ? o->tmed : o->med + g * c->ns;
        if (!total && c->k == 0) {
            continue; /* without dimensions the totals are the one row */
        }
        for (size_t k = 0; k < f->ns && rc == UMG_OK; k++) {
            for (size_t j = 0; j < c->k && rc == UMG_OK; j++) {
                rc = total ? umg_buf_append(b, j == 0 ? "total," : ",", j == 0 ? 6 : 1)
                           : umg_buf_csv_field(b, o->str[g * c->k + j]);
                rc = rc ? rc : total ? UMG_OK : umg_buf_putc(b, ',');
            }
            rc = rc ? rc : umg_buf_csv_field(b, f->label[k]);
            rc = rc ? rc : umg_buf_putc(b, ',');
            rc = rc ? rc : put_step_values(b, cnt, med, k, 1);
            rc = rc ? rc : umg_buf_putc(b, '\n');
        }
    }
    return rc;
}

/* ------------------------------------------------------------------ run */

static int bind_steps(fctx_t *c)
{
    for (size_t k = 0; k < c->ns; k++) {
        c->step[k] = c->f->step[k];
        if (c->f->name[k].len == 0) {
            continue;
        }
        int rc = c->in->lookup(c->in->ctx, c->f->name[k], &c->step[k].name);
        if (rc == UMG_ENOENT) {
            c->step[k].kind = UMG_FUNNEL_NOTHING; /* a name never seen matches nothing */
        } else if (rc != UMG_OK) {
            return rc;
        }
    }
    return UMG_OK;
}

static int answer(fctx_t *c, umg_buf_t *out)
{
    out_t o = {.c = c};
    int rc = UMG_OK;
    if (c->k > 0) {
        o.med = umg_malloc((c->ng ? c->ng : 1) * c->ns * sizeof(*o.med));
        rc = o.med == NULL ? UMG_ENOMEM : UMG_OK;
    }
    rc = rc ? rc : medians(c, o.med, o.tmed);
    for (size_t g = 0; g < c->ng; g++) {
        for (size_t k = 0; k < c->ns; k++) {
            o.tot[k] += c->cnt[g * c->ns + k];
        }
    }
    rc = rc ? rc : order_groups(&o);
    rc = rc ? rc : c->f->csv ? put_csv_answer(&o, out) : put_json(&o, out);
    umg_free(o.med);
    umg_free(o.str);
    umg_free(o.date);
    umg_free(o.ord);
    return rc;
}

/* A context's groups and seconds, empty: room for the groups, and the one group when there is no group_by. */
static int fctx_groups_init(fctx_t *c)
{
    int rc = groups_grow(c);
    if (rc == UMG_OK && c->k == 0) { /* one group, every device's */
        memset(c->cnt, 0, c->ns * sizeof(*c->cnt));
        c->ng = 1;
    }
    return rc;
}

static void fctx_free(fctx_t *c)
{
    umg_free(c->gkey);
    umg_free(c->cnt);
    umg_free(c->slot);
    for (size_t k = 0; k < UMG_FUNNEL_MAX_STEPS; k++) {
        umg_free(c->sec[k]);
        umg_free(c->grp[k]);
    }
}

/* The second part's groups and seconds into the first's. */
static int fctx_merge(fctx_t *c, const fctx_t *o)
{
    uint32_t *to = umg_malloc((o->ng ? o->ng : 1) * sizeof(*to));
    int rc = to != NULL ? UMG_OK : UMG_ENOMEM;
    for (size_t g = 0; g < o->ng && rc == UMG_OK; g++) {
        to[g] = 0;
        rc = c->k > 0 ? group_of(c, o->gkey + g * o->k, &to[g]) : UMG_OK;
        for (size_t k = 0; k < c->ns && rc == UMG_OK; k++) {
            c->cnt[(size_t)to[g] * c->ns + k] += o->cnt[g * o->ns + k];
        }
    }
    for (size_t k = 1; k < c->ns && rc == UMG_OK; k++) {
        while (rc == UMG_OK && c->nsec[k] + o->nsec[k] > c->seccap[k]) {
            rc = secs_grow(c, k);
        }
        for (size_t i = 0; rc == UMG_OK && i < o->nsec[k]; i++) {
            c->sec[k][c->nsec[k] + i] = o->sec[k][i];
            if (c->k > 0) {
                c->grp[k][c->nsec[k] + i] = to[o->grp[k][i]];
            }
        }
        c->nsec[k] += rc == UMG_OK ? o->nsec[k] : 0;
    }
    umg_free(to);
    return rc;
}

int umg_funnel_run(const umg_funnel_t *f, const umg_funnel_input_t *in, umg_buf_t *out)
{
    fctx_t c = {.f = f, .in = in, .ns = f->ns, .k = f->ngb};
    c.from_us = umg_tz_day_start(in->tz, f->from);
    c.to_us = umg_tz_day_start(in->tz, f->to + 1);
    for (size_t j = 0; j < c.k; j++) {
        c.need_dev |= f->gb[j] != FD_DAY;
    }
    int rc = bind_steps(&c);
    fctx_t c1 = c; /* the scan's second part: the same steps, groups of its own */
    c1.part = 1;
    rc = rc ? rc : fctx_groups_init(&c);
    rc = rc ? rc : fctx_groups_init(&c1);
    void *const parts[2] = {&c, &c1};
    rc = rc ? rc : in->scan(in->ctx, on_device, parts);
    rc = rc ? rc : fctx_merge(&c, &c1);
    rc = rc ? rc : answer(&c, out);
    fctx_free(&c);
    fctx_free(&c1);
    return rc;
}
