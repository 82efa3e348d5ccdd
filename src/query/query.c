/*
 * query.c - the report query engine: parameters -> query (query_parse.c
 * style checks at the top), then a scan of the rollup columns into groups,
 * currency conversion per (group, day, currency), costs joined by their
 * strings, and the answer as JSON or CSV. Definitions: docs/reports.md.
 *
 * How a scan stays fast: each grouped dimension's ids are first mapped to
 * dense ranks (a direct array over the dictionary ids, ranks in the order of
 * the values' strings), so a row's group is a mixed-radix number looked up
 * in a direct array when the product of the cardinalities is small, else in
 * a hash table of rank tuples. Strings are read once per distinct value
 * (needed to sort), never per row. An overview grouped by at most one
 * dimension besides the day, without filter, skips the first pass: its MAIN
 * and REVENUE rows add straight into cells per (day, value), laid out day by
 * day as the rows come, and the groups are made from those cells.
 */
#include "umg_query.h"

#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>

/* ------------------------------------------------------------ the query */

#define QD_DAY UMG_RD_N /* "day" in group_by: dims 0..6 are UMG_RD_*, 7 is the (install) day */
#define QD_N (UMG_RD_N + 1)
#define MAX_METRICS 64
#define MAX_FILTER_VALUES 1000
#define MAX_NAME 256

static const char *const dim_names[QD_N] = {"source", "campaign", "adset", "ad", "site", "country", "platform", "day"};

typedef enum { MK_MAIN, MK_EVENT, MK_EVENT_UNIQUE, MK_REVENUE, MK_COST, MK_RATIO, MK_FRAUD } mkind_t;
enum { R_CTR, R_CONV, R_ARPU, R_ARPPU, R_CPI, R_ECPI, R_ROAS };

/* Bits of what a metric reads (N_* over the UMG_RM_* bits). */
#define N_REV (1u << 16)
#define N_COST (1u << 17)
#define N_FRAUD (1u << 18)
#define NB(rm) (1u << (rm))

static const struct {
    const char *name;
    uint8_t kind, arg;
    uint32_t needs;
} metric_defs[] = {
    {"impressions", MK_MAIN, UMG_RM_IMPRESSIONS, NB(UMG_RM_IMPRESSIONS)},
    {"clicks", MK_MAIN, UMG_RM_CLICKS, NB(UMG_RM_CLICKS)},
    {"ctr", MK_RATIO, R_CTR, NB(UMG_RM_CLICKS) | NB(UMG_RM_IMPRESSIONS)},
    {"installs", MK_MAIN, UMG_RM_INSTALLS, NB(UMG_RM_INSTALLS)},
    {"organic_installs", MK_MAIN, UMG_RM_ORGANIC_INSTALLS, NB(UMG_RM_ORGANIC_INSTALLS)},
    {"conversion_rate", MK_RATIO, R_CONV, NB(UMG_RM_INSTALLS) | NB(UMG_RM_CLICKS)},
    {"reinstalls", MK_MAIN, UMG_RM_REINSTALLS, NB(UMG_RM_REINSTALLS)},
    {"reattributions", MK_MAIN, UMG_RM_REATTRIBUTIONS, NB(UMG_RM_REATTRIBUTIONS)},
    {"re_engagements", MK_MAIN, UMG_RM_REENGAGEMENTS, NB(UMG_RM_REENGAGEMENTS)},
    {"sessions", MK_MAIN, UMG_RM_SESSIONS, NB(UMG_RM_SESSIONS)},
    {"active_devices", MK_MAIN, UMG_RM_ACTIVE, NB(UMG_RM_ACTIVE)},
    {"paying_devices", MK_MAIN, UMG_RM_PAYING, NB(UMG_RM_PAYING)},
    {"revenue", MK_REVENUE, 0, N_REV},
    {"arpu", MK_RATIO, R_ARPU, N_REV | NB(UMG_RM_ACTIVE)},
    {"arppu", MK_RATIO, R_ARPPU, N_REV | NB(UMG_RM_PAYING)},
    {"cost", MK_COST, 0, N_COST},
    {"cpi", MK_RATIO, R_CPI, N_COST | NB(UMG_RM_INSTALLS)},
    {"ecpi", MK_RATIO, R_ECPI, N_COST | NB(UMG_RM_INSTALLS) | NB(UMG_RM_ORGANIC_INSTALLS)},
    {"roas", MK_RATIO, R_ROAS, N_REV | N_COST},
    /* fraud (docs/fraud.md): from the fraud rollup, by the rejected item's kind */
    {"rejected_installs", MK_FRAUD, UMG_RF_INSTALL, N_FRAUD},
    {"rejected_clicks", MK_FRAUD, UMG_RF_CLICK, N_FRAUD},
};
#define N_METRIC_DEFS (sizeof(metric_defs) / sizeof(metric_defs[0]))

typedef enum { CM_RETENTION, CM_REVENUE, CM_CUMULATIVE, CM_ROAS, CM_SESSIONS } cmetric_t;
static const char *const cmetric_names[] = {"retention", "revenue", "cumulative_revenue", "roas", "sessions"};

typedef struct metric_s {
    umg_slice_t name; /* as written in the answer ("event:purchase") */
    uint8_t kind, arg;
    uint32_t needs;
    int event; /* MK_EVENT*: index into the query's event names */
} metric_t;

struct umg_query_s {
    umg_query_kind_t kind;
    int32_t from, to;
    size_t ngb;
    uint8_t gb[QD_N]; /* group_by, in order */
    size_t nm;
    metric_t m[MAX_METRICS];
    uint32_t needs;
    size_t nev;
    umg_slice_t ev[MAX_METRICS]; /* distinct event names the metrics read */
    size_t nfv[UMG_RD_N];        /* filter: values per dimension (0 and fv NULL: no filter) */
    umg_slice_t *fv[UMG_RD_N];
    int has_filter[UMG_RD_N];
    int sort_dim, sort_metric, sort_desc; /* -1: not that */
    size_t limit;
    int csv;
    int reeng; /* credit=re_engagement: the re-engagement tables in place of MAIN, REVENUE and EVENT */
    size_t ndays;
    uint8_t days[UMG_QUERY_MAX_COHORT_DAYS];
    cmetric_t cmetric;
    char *text; /* owned copies of the parameters every slice above points into */
};

static int fail(umg_query_error_t *err, const char *code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(umg_query_error_t *err, const char *code, const char *field, const char *fmt, ...)
{
    err->code = code;
    err->field = field;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    return UMG_EINVAL;
}

/* Splits a list on sep: every item, empty ones included, with spaces around it trimmed. */
typedef struct split_s {
    const char *p, *end;
    int done;
} split_t;

static split_t split_of(umg_slice_t v)
{
    return (split_t){v.ptr, v.ptr != NULL ? v.ptr + v.len : NULL, v.ptr == NULL};
}

static int split_next_raw(split_t *s, char sep, umg_slice_t *item, int trim)
{
    if (s->done) {
        return 0;
    }
    const char *p = s->p, *e = memchr(p, sep, (size_t)(s->end - p));
    if (e == NULL) {
        e = s->end;
        s->done = 1;
    }
    s->p = e + 1;
    while (trim && p < e && *p == ' ') {
        p++;
    }
    while (trim && e > p && e[-1] == ' ') {
        e--;
    }
    *item = umg_slice(p, (size_t)(e - p));
    return 1;
}

static int split_next(split_t *s, char sep, umg_slice_t *item)
{
    return split_next_raw(s, sep, item, 1);
}

static int dim_parse(umg_slice_t s)
{
    for (int d = 0; d < QD_N; d++) {
        if (umg_slice_eq(s, dim_names[d])) {
            return d;
        }
    }
    return -1;
}

/* Prints at most 64 bytes of a client's text into a message, as is (the JSON writer escapes it). */
#define SHOWN(s) (int)((s).len > 64 ? 64 : (s).len), (s).ptr

static int parse_group_by(umg_query_t *q, umg_slice_t v, umg_query_error_t *err)
{
    q->ngb = 0;
    if (v.ptr == NULL) {
        q->gb[q->ngb++] = QD_DAY;
        return UMG_OK;
    }
    if (v.len == 0) {
        return UMG_OK; /* one row of totals */
    }
    split_t sp = split_of(v);
    umg_slice_t it;
    while (split_next(&sp, ',', &it)) {
        int d = dim_parse(it);
        if (it.len == 0) {
            return fail(err, "invalid_value", "group_by", "group_by has an empty item");
        }
        if (d < 0) {
            return fail(err, "invalid_value", "group_by", "unknown dimension \"%.*s\"", SHOWN(it));
        }
        for (size_t i = 0; i < q->ngb; i++) {
            if (q->gb[i] == d) {
                return fail(err, "invalid_value", "group_by", "dimension \"%s\" is repeated", dim_names[d]);
            }
        }
        q->gb[q->ngb++] = (uint8_t)d;
    }
    return UMG_OK;
}

static int add_event(umg_query_t *q, umg_slice_t name)
{
    for (size_t i = 0; i < q->nev; i++) {
        if (q->ev[i].len == name.len && memcmp(q->ev[i].ptr, name.ptr, name.len) == 0) {
            return (int)i;
        }
    }
    q->ev[q->nev] = name;
    return (int)q->nev++;
}

static int parse_metric(umg_query_t *q, umg_slice_t it, umg_query_error_t *err)
{
    metric_t *m = &q->m[q->nm];
    memset(m, 0, sizeof(*m));
    m->name = it;
    m->event = -1;
    int found = 0;
    for (size_t i = 0; i < N_METRIC_DEFS && !found; i++) {
        if (umg_slice_eq(it, metric_defs[i].name)) {
            m->kind = metric_defs[i].kind;
            m->arg = metric_defs[i].arg;
            m->needs = metric_defs[i].needs;
            found = 1;
        }
    }
    static const char ev[] = "event:", evu[] = "event_unique:";
    size_t pre = it.len > 6 && memcmp(it.ptr, ev, 6) == 0 ? 6 : it.len > 13 && memcmp(it.ptr, evu, 13) == 0 ? 13 : 0;
    if (!found && pre > 0) {
        umg_slice_t name = umg_slice(it.ptr + pre, it.len - pre);
        if (name.len > MAX_NAME) {
            return fail(err, "invalid_value", "metrics", "an event name is at most %d bytes", MAX_NAME);
        }
        m->kind = pre == 6 ? MK_EVENT : MK_EVENT_UNIQUE;
        m->event = add_event(q, name);
        found = 1;
    }
    if (!found) {
        return fail(err, "invalid_value", "metrics", "unknown metric \"%.*s\"", SHOWN(it));
    }
    for (size_t i = 0; i < q->nm; i++) {
        if (q->m[i].name.len == it.len && memcmp(q->m[i].name.ptr, it.ptr, it.len) == 0) {
            return fail(err, "invalid_value", "metrics", "metric \"%.*s\" is repeated", SHOWN(it));
        }
    }
    q->needs |= m->needs;
    q->nm++;
    return UMG_OK;
}

/* Whether a metric has a meaning under credit=re_engagement: installs keep their install attribution, and the
 * fraud rollups have no re-engagement view. */
static int reeng_metric(const metric_t *m)
{
    switch (m->kind) {
    case MK_MAIN:
        return m->arg == UMG_RM_IMPRESSIONS || m->arg == UMG_RM_CLICKS || m->arg == UMG_RM_REENGAGEMENTS ||
               m->arg == UMG_RM_SESSIONS || m->arg == UMG_RM_ACTIVE || m->arg == UMG_RM_PAYING;
    case MK_RATIO: return m->arg == R_CTR || m->arg == R_ARPU || m->arg == R_ARPPU || m->arg == R_ROAS;
    case MK_FRAUD: return 0;
    default: return 1;
    }
}

static int parse_metrics(umg_query_t *q, umg_slice_t v, umg_query_error_t *err)
{
    static const char defaults[] = "installs,organic_installs,clicks,impressions,revenue,cost,roas";
    static const char reeng_defaults[] = "re_engagements,sessions,clicks,impressions,revenue,cost,roas";
    if (v.ptr == NULL) {
        v = q->reeng ? UMG_SLICE(reeng_defaults) : UMG_SLICE(defaults);
    }
    if (v.len == 0) {
        return fail(err, "invalid_value", "metrics", "metrics must name at least one metric");
    }
    split_t sp = split_of(v);
    umg_slice_t it;
    while (split_next(&sp, ',', &it)) {
        if (it.len == 0) {
            return fail(err, "invalid_value", "metrics", "metrics has an empty item");
        }
        if (q->nm == MAX_METRICS) {
            return fail(err, "invalid_value", "metrics", "at most %d metrics", MAX_METRICS);
        }
        int rc = parse_metric(q, it, err);
        if (rc != UMG_OK) {
            return rc;
        }
        if (q->reeng && !reeng_metric(&q->m[q->nm - 1])) {
            return fail(err, "invalid_value", "metrics",
                        "\"%.*s\" has no re-engagement credit; with credit=re_engagement: impressions, clicks, ctr, "
                        "re_engagements, sessions, active_devices, paying_devices, event:, event_unique:, revenue, "
                        "arpu, arppu, cost, roas",
                        SHOWN(it));
        }
    }
    return UMG_OK;
}

/* filter=dim:v1|v2;dim2:v (values exact, may be empty). */
static int parse_filter(umg_query_t *q, umg_slice_t v, umg_query_error_t *err)
{
    if (v.ptr == NULL || v.len == 0) {
        return UMG_OK;
    }
    size_t total = 0;
    split_t sp = split_of(v);
    umg_slice_t it;
    while (split_next_raw(&sp, ';', &it, 0)) {
        const char *colon = it.len > 0 ? memchr(it.ptr, ':', it.len) : NULL;
        if (colon == NULL) {
            return fail(err, "invalid_value", "filter", "filter is dimension:value|value;dimension:value");
        }
        umg_slice_t name = umg_slice(it.ptr, (size_t)(colon - it.ptr));
        int d = dim_parse(name);
        if (d < 0 || d == QD_DAY) {
            return fail(err, "invalid_value", "filter", "cannot filter on \"%.*s\" (a dimension other than day)",
                        SHOWN(name));
        }
        if (q->has_filter[d]) {
            return fail(err, "invalid_value", "filter", "dimension \"%s\" is filtered twice", dim_names[d]);
        }
        umg_slice_t vals = umg_slice(colon + 1, it.len - name.len - 1), one;
        size_t n = 1;
        for (size_t i = 0; i < vals.len; i++) {
            n += vals.ptr[i] == '|';
        }
        total += n;
        if (total > MAX_FILTER_VALUES) {
            return fail(err, "invalid_value", "filter", "at most %d filter values", MAX_FILTER_VALUES);
        }
        q->fv[d] = umg_calloc(n, sizeof(umg_slice_t));
        if (q->fv[d] == NULL) {
            return UMG_ENOMEM;
        }
        q->has_filter[d] = 1;
        const char *p = vals.ptr;
        for (size_t i = 0; i < n; i++) {
            const char *e = memchr(p, '|', (size_t)(vals.ptr + vals.len - p));
            size_t len = e != NULL ? (size_t)(e - p) : (size_t)(vals.ptr + vals.len - p);
            one = umg_slice(p, len);
            q->fv[d][q->nfv[d]++] = one;
            p += len + 1;
        }
    }
    return UMG_OK;
}

static int parse_sort(umg_query_t *q, umg_slice_t v, umg_query_error_t *err)
{
    q->sort_dim = q->sort_metric = -1;
    if (v.ptr == NULL || v.len == 0) {
        return UMG_OK;
    }
    umg_slice_t name = v;
    if (name.ptr[0] == '-') {
        q->sort_desc = 1;
        name = umg_slice(name.ptr + 1, name.len - 1);
    }
    int d = dim_parse(name);
    for (size_t i = 0; d >= 0 && i < q->ngb; i++) {
        if (q->gb[i] == d) {
            q->sort_dim = d;
        }
    }
    for (size_t i = 0; i < q->nm && q->sort_dim < 0; i++) {
        if (q->m[i].name.len == name.len && memcmp(q->m[i].name.ptr, name.ptr, name.len) == 0) {
            q->sort_metric = (int)i;
        }
    }
    if (q->sort_dim < 0 && q->sort_metric < 0) {
        return fail(err, "invalid_value", "sort",
                    "sort must name one of the metrics or group_by dimensions, not \"%.*s\"", SHOWN(name));
    }
    return UMG_OK;
}

static int parse_uint(umg_slice_t v, uint64_t max, uint64_t *out)
{
    uint64_t x = 0;
    if (v.len == 0 || v.len > 7) {
        return UMG_EINVAL;
    }
    for (size_t i = 0; i < v.len; i++) {
        if (v.ptr[i] < '0' || v.ptr[i] > '9') {
            return UMG_EINVAL;
        }
        x = x * 10 + (uint64_t)(v.ptr[i] - '0');
    }
    if (x > max) {
        return UMG_ERANGE;
    }
    *out = x;
    return UMG_OK;
}

int umg_query_parse_period(umg_slice_t from, umg_slice_t to, int32_t *from_day, int32_t *to_day, umg_query_error_t *err)
{
    if (from.ptr == NULL || from.len == 0) {
        return fail(err, "required", "from", "from (YYYY-MM-DD, a local date) is required");
    }
    if (to.ptr == NULL || to.len == 0) {
        return fail(err, "required", "to", "to (YYYY-MM-DD, a local date) is required");
    }
    if (umg_date_parse(from, from_day) != UMG_OK) {
        return fail(err, "invalid_value", "from", "from must be a date YYYY-MM-DD");
    }
    if (umg_date_parse(to, to_day) != UMG_OK) {
        return fail(err, "invalid_value", "to", "to must be a date YYYY-MM-DD");
    }
    if (*to_day < *from_day) {
        return fail(err, "invalid_value", "to", "to must not be before from");
    }
    if (*to_day - *from_day + 1 > UMG_QUERY_MAX_DAYS) {
        return fail(err, "range_too_large", "to", "a report covers at most %d days", UMG_QUERY_MAX_DAYS);
    }
    return UMG_OK;
}

static int parse_cohort(umg_query_t *q, const umg_query_params_t *p, umg_query_error_t *err)
{
    static const uint8_t defaults[] = {0, 1, 3, 7, 14, 30, 60, 90};
    q->cmetric = CM_RETENTION;
    if (p->metric.ptr != NULL) {
        int found = 0;
        for (size_t i = 0; i < sizeof(cmetric_names) / sizeof(cmetric_names[0]); i++) {
            if (umg_slice_eq(p->metric, cmetric_names[i])) {
                q->cmetric = (cmetric_t)i;
                found = 1;
            }
        }
        if (!found) {
            return fail(err, "invalid_value", "metric",
                        "metric must be retention, revenue, cumulative_revenue, roas or sessions");
        }
    }
    q->needs = q->cmetric == CM_ROAS                                     ? N_REV | N_COST
               : q->cmetric == CM_REVENUE || q->cmetric == CM_CUMULATIVE ? N_REV
                                                                         : 0;
    if (p->days.ptr == NULL) {
        memcpy(q->days, defaults, sizeof(defaults));
        q->ndays = sizeof(defaults);
        return UMG_OK;
    }
    split_t sp = split_of(p->days);
    umg_slice_t it;
    while (split_next(&sp, ',', &it)) {
        uint64_t n;
        if (parse_uint(it, UMG_ROLLUP_COHORT_DAYS - 1, &n) != UMG_OK) {
            return fail(err, "invalid_value", "days", "days is a list of days since install, each 0..%d",
                        UMG_ROLLUP_COHORT_DAYS - 1);
        }
        if (q->ndays == UMG_QUERY_MAX_COHORT_DAYS) {
            return fail(err, "invalid_value", "days", "at most %d days", UMG_QUERY_MAX_COHORT_DAYS);
        }
        for (size_t i = 0; i < q->ndays; i++) {
            if (q->days[i] == n) {
                return fail(err, "invalid_value", "days", "day %u is repeated", (unsigned)n);
            }
        }
        q->days[q->ndays++] = (uint8_t)n;
    }
    if (q->ndays == 0) {
        return fail(err, "invalid_value", "days", "days must name at least one day");
    }
    return UMG_OK;
}

/* Copies every parameter into one block the query owns; the slices are moved onto it. */
static int own_params(umg_query_t *q, umg_query_params_t *p)
{
    umg_slice_t *all[] = {&p->from,  &p->to,     &p->group_by, &p->metrics, &p->filter, &p->sort,
                          &p->limit, &p->format, &p->days,     &p->metric,  &p->credit};
    size_t n = 1;
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        n += all[i]->ptr != NULL ? all[i]->len + 1 : 0;
    }
    q->text = umg_malloc(n);
    if (q->text == NULL) {
        return UMG_ENOMEM;
    }
    char *w = q->text;
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (all[i]->ptr != NULL) {
            memcpy(w, all[i]->ptr, all[i]->len);
            w[all[i]->len] = '\0';
            all[i]->ptr = w;
            w += all[i]->len + 1;
        }
    }
    return UMG_OK;
}

int umg_query_parse(umg_query_kind_t kind, const umg_query_params_t *params, umg_query_t **out, umg_query_error_t *err)
{
    umg_query_t *q = umg_calloc(1, sizeof(*q));
    umg_query_params_t p = *params;
    if (q == NULL) {
        return UMG_ENOMEM;
    }
    q->kind = kind;
    q->limit = 1000;
    int rc = own_params(q, &p);
    rc = rc ? rc : umg_query_parse_period(p.from, p.to, &q->from, &q->to, err);
    rc = rc ? rc : parse_group_by(q, p.group_by, err);
    if (rc == UMG_OK && p.credit.ptr != NULL) {
        if (umg_slice_eq(p.credit, "re_engagement") && kind == UMG_QUERY_OVERVIEW) {
            q->reeng = 1;
        } else if (!umg_slice_eq(p.credit, "install")) {
            rc = fail(err, "invalid_value", "credit",
                      kind == UMG_QUERY_OVERVIEW ? "credit must be install or re_engagement"
                                                 : "cohorts are by install: credit must be install");
        }
    }
    if (rc == UMG_OK && kind == UMG_QUERY_OVERVIEW) {
        rc = parse_metrics(q, p.metrics, err);
        rc = rc ? rc : parse_sort(q, p.sort, err);
        uint64_t lim;
        if (rc == UMG_OK && p.limit.ptr != NULL &&
            (parse_uint(p.limit, UMG_QUERY_MAX_LIMIT, &lim) != UMG_OK || lim == 0)) {
            rc = fail(err, "invalid_value", "limit", "limit must be a whole number 1..%d", UMG_QUERY_MAX_LIMIT);
        } else if (rc == UMG_OK && p.limit.ptr != NULL) {
            q->limit = (size_t)lim;
        }
    } else if (rc == UMG_OK) {
        rc = parse_cohort(q, &p, err);
    }
    rc = rc ? rc : parse_filter(q, p.filter, err);
    if (rc == UMG_OK && p.format.ptr != NULL) {
        if (umg_slice_eq(p.format, "csv")) {
            q->csv = 1;
        } else if (!umg_slice_eq(p.format, "json")) {
            rc = fail(err, "invalid_value", "format", "format must be json or csv");
        }
    }
    if (rc != UMG_OK) {
        umg_query_free(q);
        return rc;
    }
    *out = q;
    return UMG_OK;
}

void umg_query_free(umg_query_t *q)
{
    if (q == NULL) {
        return;
    }
    for (int d = 0; d < UMG_RD_N; d++) {
        umg_free(q->fv[d]);
    }
    umg_free(q->text);
    umg_free(q);
}

void umg_query_period(const umg_query_t *q, int32_t *from, int32_t *to)
{
    *from = q->from;
    *to = q->to;
}

int umg_query_is_csv(const umg_query_t *q)
{
    return q->csv;
}

int32_t umg_query_rate_days_after(const umg_query_t *q)
{
    return q->kind == UMG_QUERY_COHORTS ? UMG_ROLLUP_COHORT_DAYS - 1 : 0;
}

/* ------------------------------------------------------- small hash maps */

/* uint64 -> uint64, open addressing; the key UINT64_MAX is never stored. */
typedef struct u64map_s {
    uint64_t *keys, *vals;
    size_t cap, n; /* cap: a power of two or 0 */
} u64map_t;

#define U64_EMPTY UINT64_MAX

static size_t u64_slot(uint64_t key, size_t cap)
{
    return (size_t)((key * UINT64_C(0x9E3779B97F4A7C15)) >> 17) & (cap - 1);
}

static int u64map_grow(u64map_t *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    uint64_t *k = umg_malloc(cap * sizeof(*k)), *v = umg_malloc(cap * sizeof(*v));
    if (k == NULL || v == NULL) {
        umg_free(k);
        umg_free(v);
        return UMG_ENOMEM;
    }
    memset(k, 0xff, cap * sizeof(*k));
    for (size_t i = 0; i < m->cap; i++) {
        if (m->keys[i] != U64_EMPTY) {
            size_t s = u64_slot(m->keys[i], cap);
            while (k[s] != U64_EMPTY) {
                s = (s + 1) & (cap - 1);
            }
            k[s] = m->keys[i];
            v[s] = m->vals[i];
        }
    }
    umg_free(m->keys);
    umg_free(m->vals);
    m->keys = k;
    m->vals = v;
    m->cap = cap;
    return UMG_OK;
}

/* The value of key, inserted as `init` when absent; NULL when out of memory. */
static uint64_t *u64map_at(u64map_t *m, uint64_t key, uint64_t init)
{
    if ((m->n + 1) * 4 > m->cap * 3 && u64map_grow(m) != UMG_OK) {
        return NULL;
    }
    size_t s = u64_slot(key, m->cap);
    while (m->keys[s] != key) {
        if (m->keys[s] == U64_EMPTY) {
            m->keys[s] = key;
            m->vals[s] = init;
            m->n++;
            break;
        }
        s = (s + 1) & (m->cap - 1);
    }
    return &m->vals[s];
}

static const uint64_t *u64map_get(const u64map_t *m, uint64_t key)
{
    if (m->cap == 0) {
        return NULL;
    }
    for (size_t s = u64_slot(key, m->cap);; s = (s + 1) & (m->cap - 1)) {
        if (m->keys[s] == key) {
            return &m->vals[s];
        }
        if (m->keys[s] == U64_EMPTY) {
            return NULL;
        }
    }
}

static void u64map_free(u64map_t *m)
{
    umg_free(m->keys);
    umg_free(m->vals);
    memset(m, 0, sizeof(*m));
}

/*
 * A dimension's ids -> dense numbers: a direct array for ids below
 * DIRECT_IDS (dictionary ids are small and dense), a hash for the rest
 * (including the virtual ids of strings the dictionary does not know).
 */
#define DIRECT_IDS (1u << 22)
#define NONE UINT32_MAX

typedef struct dmap_s {
    uint32_t *direct;
    size_t dcap;
    u64map_t big;
    uint32_t *ids; /* dense -> id */
    size_t n, cap;
    umg_slice_t *str; /* rank -> string, once ranked */
} dmap_t;

static inline uint32_t dmap_get(const dmap_t *m, uint32_t id)
{
    if (id < m->dcap) {
        return m->direct[id];
    }
    const uint64_t *v = id >= DIRECT_IDS ? u64map_get(&m->big, id) : NULL;
    return v != NULL ? (uint32_t)*v : NONE;
}

static int dmap_add_new(dmap_t *m, uint32_t id)
{
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        uint32_t *ids = umg_realloc(m->ids, cap * sizeof(*ids));
        if (ids == NULL) {
            return UMG_ENOMEM;
        }
        m->ids = ids;
        m->cap = cap;
    }
    if (id < DIRECT_IDS) {
        if (id >= m->dcap) {
            size_t cap = m->dcap ? m->dcap : 1024;
            while (cap <= id) {
                cap *= 2;
            }
            uint32_t *d = umg_realloc(m->direct, cap * sizeof(*d));
            if (d == NULL) {
                return UMG_ENOMEM;
            }
            memset(d + m->dcap, 0xff, (cap - m->dcap) * sizeof(*d));
            m->direct = d;
            m->dcap = cap;
        }
        m->direct[id] = (uint32_t)m->n;
    } else {
        uint64_t *v = u64map_at(&m->big, id, m->n);
        if (v == NULL) {
            return UMG_ENOMEM;
        }
    }
    m->ids[m->n++] = id;
    return UMG_OK;
}

static inline int dmap_add(dmap_t *m, uint32_t id)
{
    return dmap_get(m, id) != NONE ? UMG_OK : dmap_add_new(m, id);
}

static void dmap_set(dmap_t *m, uint32_t id, uint32_t v)
{
    if (id < m->dcap) {
        m->direct[id] = v;
    } else {
        uint64_t *p = (uint64_t *)u64map_get(&m->big, id); /* present (dmap_add put it): no growth, no allocation */
        *p = v;
    }
}

static void dmap_free(dmap_t *m)
{
    umg_free(m->direct);
    u64map_free(&m->big);
    umg_free(m->ids);
    umg_free(m->str);
    memset(m, 0, sizeof(*m));
}

/* ------------------------------------------------------- scratch blocks */

/*
 * A report's large buffers (cells, groups, cost rows) are kept when it ends
 * and handed to the next report: freed and allocated afresh, each of their
 * pages would be faulted in and cleared by the kernel on every report (about
 * a sixth of an overview's time). They wait in the caller's scratch
 * (umg_query_input_t.scratch), which one report at a time uses.
 */
#define SCRATCH_MIN (64u << 10) /* smaller blocks are freed as usual */
#define SCRATCH_BLOCKS 24
#define BIG_HDR 16

struct umg_query_scratch_s {
    size_t n;
    void *p[SCRATCH_BLOCKS];          /* free blocks (their headers) */
    struct umg_query_scratch_s *side; /* the helper thread's own (fast_scan), made on first use */
};
typedef umg_query_scratch_t scratch_t;

static size_t big_cap(const void *h)
{
    size_t cap;
    memcpy(&cap, h, sizeof(cap));
    return cap;
}

static void big_drop(scratch_t *s)
{
    for (size_t i = 0; s != NULL && i < s->n; i++) {
        umg_free(s->p[i]);
    }
    if (s != NULL) {
        big_drop(s->side);
    }
    umg_free(s);
}

int umg_query_scratch_new(umg_query_scratch_t **out)
{
    *out = umg_calloc(1, sizeof(**out));
    return *out != NULL ? UMG_OK : UMG_ENOMEM;
}

void umg_query_scratch_free(umg_query_scratch_t *s)
{
    big_drop(s);
}

/* A block of at least size bytes, uninitialised; NULL: out of memory. Free it with big_free. */
static void *big_alloc(scratch_t *s, size_t size)
{
    size_t best = SIZE_MAX;
    for (size_t i = 0; s != NULL && i < s->n; i++) {
        size_t cap = big_cap(s->p[i]);
        if (cap >= size && (best == SIZE_MAX || cap < big_cap(s->p[best]))) {
            best = i;
        }
    }
    char *h;
    if (best != SIZE_MAX) {
        h = s->p[best];
        s->p[best] = s->p[--s->n];
    } else {
        if (size > SIZE_MAX - BIG_HDR || (h = umg_malloc(BIG_HDR + size)) == NULL) {
            return NULL;
        }
        memcpy(h, &size, sizeof(size));
    }
    return h + BIG_HDR;
}

static void *big_calloc(scratch_t *s, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size) {
        return NULL;
    }
    void *p = big_alloc(s, n * size);
    return p != NULL ? memset(p, 0, n * size) : NULL;
}

static void big_free(scratch_t *s, void *p)
{
    if (p == NULL) {
        return;
    }
    char *h = (char *)p - BIG_HDR;
    if (s == NULL || big_cap(h) < SCRATCH_MIN) {
        umg_free(h);
        return;
    }
    if (s->n == SCRATCH_BLOCKS) { /* keep the larger ones */
        size_t least = 0;
        for (size_t i = 1; i < s->n; i++) {
            least = big_cap(s->p[i]) < big_cap(s->p[least]) ? i : least;
        }
        if (big_cap(s->p[least]) >= big_cap(h)) {
            umg_free(h);
            return;
        }
        umg_free(s->p[least]);
        s->p[least] = s->p[--s->n];
    }
    s->p[s->n++] = h;
}

/* Like umg_realloc on big blocks: the first min(old, size) bytes kept; NULL (p kept): out of memory. */
static void *big_realloc(scratch_t *s, void *p, size_t size)
{
    if (p != NULL && big_cap((char *)p - BIG_HDR) >= size) {
        return p;
    }
    void *n = big_alloc(s, size);
    if (n == NULL) {
        return NULL;
    }
    if (p != NULL) {
        memcpy(n, p, big_cap((char *)p - BIG_HDR));
        big_free(s, p);
    }
    return n;
}

/* ------------------------------------------------------------ run state */

#define VIRTUAL_BASE 0xf0000000u /* ids of strings the dictionary does not know (costs, filters) */
#define MAX_CURRENCIES 32767
#define DIRECT_SLOTS (1u << 22)

/* A cost row with its strings resolved to ids. */
typedef struct cost_s {
    int32_t day;
    uint32_t dim[UMG_RD_N];
    uint32_t cur;
    int64_t micros;
} cost_t;

/* Amounts per (group, day, currency) before conversion. */
typedef struct cells_s {
    int direct; /* a[g * w + (day_in_cell ? dayoff * ncur : 0) + cur] */
    size_t w;
    int64_t *a;
    size_t acap; /* groups a has room for */
    u64map_t h;  /* else (g << 32 | dayoff << 16 | cur) -> sum */
} cells_t;

/* Unconverted amounts: (group << 16 | currency) -> micros; the currencies that have any. */
typedef struct unconv_s {
    u64map_t m;
    uint8_t *any; /* per currency */
} unconv_t;

/*
 * The one-pass scan of an overview grouped by at most one dimension besides
 * the day, without filter: each row adds straight into the cell of (its
 * value's dense number, its day offset) before the values are ranked, so the
 * MAIN and REVENUE rows are read once; the groups are made from the cells
 * afterwards (fast_groups).
 */
typedef struct fast_s {
    int on;
    uint8_t dim;   /* the grouped dimension, or QD_DAY when there is none */
    size_t cap;    /* dense numbers the cells have room for */
    size_t K;      /* counters per cell (the groups' K) */
    int64_t *acc;  /* (dayoff * cap + dense) * K + pos_main: rows of a day come together */
    uint8_t *seen; /* dayoff * cap + dense: a row of the period fell there */
    int64_t **rev; /* per currency (NULL: none yet): dayoff * cap + dense -> micros */
    size_t nrev;   /* currencies rev has room for */
} fast_t;

/*
 * Where a thread's share of the one-pass scan adds: the calling thread's
 * cells (c->fast, the grouped dimension's c->dm, c->scr), or the helper's
 * own (fast_scan), merged into those when both are done.
 */
typedef struct fpart_s {
    fast_t *f;
    dmap_t *m; /* the grouped dimension's dense numbers; NULL without one */
    scratch_t *scr;
} fpart_t;

typedef struct qctx_s {
    const umg_query_t *q;
    const umg_query_input_t *in;
    int32_t from;
    uint32_t span; /* days in the period */
    umg_arena_t arena;
    u64map_t strids; /* hash of a string -> index into strs (string -> id cache) */
    u64map_t rtcamp; /* credit=re_engagement: (source << 32 | campaign) of the retargeting campaigns */
    umg_slice_t *strs;
    uint32_t *strid;
    size_t nstrs, strcap;
    umg_slice_t *virt; /* virtual id - VIRTUAL_BASE -> string */
    size_t nvirt, virtcap;
    /* filters: sorted ids per dimension */
    uint32_t *fids[UMG_RD_N];
    size_t nfids[UMG_RD_N];
    uint8_t fdims[UMG_RD_N], need[QD_N];
    size_t nfd, nneed;
    /* grouping */
    size_t k;
    uint8_t gd[QD_N];
    dmap_t dm[UMG_RD_N];
    uint64_t stride[QD_N], P;
    int direct;
    uint32_t *gslot; /* direct: slot -> group */
    uint32_t *tslot; /* else: hash of rank tuples -> group */
    size_t tcap;
    uint32_t *gkey; /* group -> ranks in group_by order (k each) */
    int64_t *acc;   /* group -> K counters */
    size_t ng, gcap, K;
    /* currencies: dense index -> code */
    char (*cur)[8];
    size_t ncur, curcap;
    dmap_t curmap; /* dictionary id -> dense index */
    int app_cur;   /* the dense index of the app's currency, -1 until seen */
    double *fac;   /* rate per (day offset, currency): NAN when unknown, -1 when none */
    int32_t fac_days;
    /* events */
    uint32_t evid[MAX_METRICS];  /* the id of each event name the metrics read (q->ev order) */
    uint32_t evset[MAX_METRICS]; /* the same ids sorted, for in_set */
    /* overview: where each input counter sits in a group's K counters (-1: not read) */
    int pos_main[UMG_RM_N], pos_ev[MAX_METRICS][2], pos_rev, pos_cost;
    int pos_fraud[UMG_RF_EVENT + 1];
    cells_t rev, cost;
    unconv_t unrev, uncost;
    /* costs */
    cost_t *costs;
    size_t ncosts, costcap;
    uint32_t *sidmap; /* a cost string's number (umg_query_cost_t.sid) -> its id, NONE until resolved */
    size_t nsid;
    int rc;
    fast_t fast;
    scratch_t *scr; /* where the large buffers come from and go back to */
} qctx_t;

/* Resolves a string to an id: the dictionary's, or a virtual id for strings it does not know. */
static int resolve(qctx_t *c, umg_slice_t s, uint32_t *id)
{
    if (s.len == 0) {
        *id = 0;
        return UMG_OK;
    }
    uint64_t h = umg_hash64(s.ptr, s.len, 0x51ed) >> 1; /* never U64_EMPTY */
    for (;; h = (h + 1) & (UINT64_MAX >> 1)) {
        const uint64_t *v = u64map_get(&c->strids, h);
        if (v == NULL) {
            break;
        }
        if (c->strs[*v].len == s.len && memcmp(c->strs[*v].ptr, s.ptr, s.len) == 0) {
            *id = c->strid[*v];
            return UMG_OK;
        }
    }
    if (c->nstrs == c->strcap) {
        size_t cap = c->strcap ? c->strcap * 2 : 64;
        umg_slice_t *ns = umg_realloc(c->strs, cap * sizeof(*ns));
        if (ns == NULL) {
            return UMG_ENOMEM;
        }
        c->strs = ns;
        uint32_t *ni = umg_realloc(c->strid, cap * sizeof(*ni));
        if (ni == NULL) {
            return UMG_ENOMEM;
        }
        c->strid = ni;
        c->strcap = cap;
    }
    char *copy = umg_arena_alloc(&c->arena, s.len);
    if (copy == NULL) {
        return UMG_ENOMEM;
    }
    memcpy(copy, s.ptr, s.len);
    uint32_t v;
    int rc = c->in->lookup(c->in->ctx, s, &v);
    if (rc == UMG_ENOENT) {
        if (c->nvirt == c->virtcap) {
            size_t cap = c->virtcap ? c->virtcap * 2 : 16;
            umg_slice_t *nv = umg_realloc(c->virt, cap * sizeof(*nv));
            if (nv == NULL) {
                return UMG_ENOMEM;
            }
            c->virt = nv;
            c->virtcap = cap;
        }
        if (c->nvirt >= 0x0fffffff) {
            return UMG_ERANGE;
        }
        c->virt[c->nvirt] = umg_slice(copy, s.len);
        v = VIRTUAL_BASE + (uint32_t)c->nvirt++;
    } else if (rc != UMG_OK) {
        return rc;
    }
    if (u64map_at(&c->strids, h, c->nstrs) == NULL) {
        return UMG_ENOMEM;
    }
    c->strs[c->nstrs] = umg_slice(copy, s.len);
    c->strid[c->nstrs++] = v;
    *id = v;
    return UMG_OK;
}

/* resolve for a cost row's string with its number (0: none): each number resolved once. */
static int resolve_sid(qctx_t *c, umg_slice_t s, uint32_t sid, uint32_t *id)
{
    if (sid == 0) {
        return resolve(c, s, id);
    }
    if (sid >= c->nsid) {
        size_t n = c->nsid ? c->nsid : 1024;
        while (n <= sid) {
            n *= 2;
        }
        uint32_t *m = umg_realloc(c->sidmap, n * sizeof(*m));
        if (m == NULL) {
            return UMG_ENOMEM;
        }
        memset(m + c->nsid, 0xff, (n - c->nsid) * sizeof(*m));
        c->sidmap = m;
        c->nsid = n;
    }
    if (c->sidmap[sid] == NONE) {
        int rc = resolve(c, s, &c->sidmap[sid]);
        if (rc != UMG_OK) {
            c->sidmap[sid] = NONE;
            return rc;
        }
    }
    *id = c->sidmap[sid];
    return UMG_OK;
}

/* The text of an id: "" for 0, the dictionary's, or a virtual one's. */
static int string_of(qctx_t *c, uint32_t id, umg_slice_t *out)
{
    if (id == 0) {
        *out = umg_slice("", 0);
        return UMG_OK;
    }
    if (id >= VIRTUAL_BASE && id - VIRTUAL_BASE < c->nvirt) {
        *out = c->virt[id - VIRTUAL_BASE];
        return UMG_OK;
    }
    return c->in->string(c->in->ctx, id, out);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static inline int in_set(const uint32_t *v, size_t n, uint32_t id)
{
    if (n <= 8) {
        for (size_t i = 0; i < n; i++) {
            if (v[i] == id) {
                return 1;
            }
        }
        return 0;
    }
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v[mid] < id) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < n && v[lo] == id;
}

/* Filters and the grouped dimensions as the run needs them. */
static int setup(qctx_t *c)
{
    const umg_query_t *q = c->q;
    for (int d = 0; d < UMG_RD_N; d++) {
        if (!q->has_filter[d]) {
            continue;
        }
        c->fids[d] = umg_malloc(q->nfv[d] * sizeof(uint32_t));
        if (c->fids[d] == NULL) {
            return UMG_ENOMEM;
        }
        for (size_t i = 0; i < q->nfv[d]; i++) {
            int rc = resolve(c, q->fv[d][i], &c->fids[d][i]);
            if (rc != UMG_OK) {
                return rc;
            }
        }
        qsort(c->fids[d], q->nfv[d], sizeof(uint32_t), cmp_u32);
        c->nfids[d] = q->nfv[d];
        c->fdims[c->nfd++] = (uint8_t)d;
    }
    c->k = q->ngb;
    for (size_t j = 0; j < q->ngb; j++) {
        c->gd[j] = q->gb[j];
        if (q->gb[j] != QD_DAY) {
            c->need[c->nneed++] = q->gb[j];
        }
    }
    for (size_t i = 0; i < q->nev; i++) {
        uint32_t id;
        int rc = c->in->lookup(c->in->ctx, q->ev[i], &id);
        if (rc != UMG_OK && rc != UMG_ENOENT) {
            return rc;
        }
        c->evid[i] = rc == UMG_OK ? id : NONE; /* an event never seen matches nothing */
    }
    memcpy(c->evset, c->evid, q->nev * sizeof(c->evset[0]));
    qsort(c->evset, q->nev, sizeof(c->evset[0]), cmp_u32);
    c->app_cur = -1;
    return UMG_OK;
}

static inline int row_ok(const qctx_t *c, const umg_rollup_view_t *v, size_t i)
{
    for (size_t j = 0; j < c->nfd; j++) {
        uint8_t d = c->fdims[j];
        if (!in_set(c->fids[d], c->nfids[d], v->dim[d][i])) {
            return 0;
        }
    }
    return 1;
}

static inline int ids_ok(const qctx_t *c, const uint32_t *ids)
{
    for (size_t j = 0; j < c->nfd; j++) {
        uint8_t d = c->fdims[j];
        if (!in_set(c->fids[d], c->nfids[d], ids[d])) {
            return 0;
        }
    }
    return 1;
}

/* ------------------------------------------------------------ currencies */

static int cur_of_code(qctx_t *c, const char *code, size_t len, uint32_t *out)
{
    len = len > 7 ? 7 : len;
    for (size_t i = 0; i < c->ncur; i++) {
        if (strlen(c->cur[i]) == len && memcmp(c->cur[i], code, len) == 0) {
            *out = (uint32_t)i;
            return UMG_OK;
        }
    }
    if (c->ncur == MAX_CURRENCIES) {
        return UMG_ERANGE;
    }
    if (c->ncur == c->curcap) {
        size_t cap = c->curcap ? c->curcap * 2 : 8;
        char(*nc)[8] = umg_realloc(c->cur, cap * sizeof(*nc));
        if (nc == NULL) {
            return UMG_ENOMEM;
        }
        c->cur = nc;
        c->curcap = cap;
    }
    memcpy(c->cur[c->ncur], code, len);
    c->cur[c->ncur][len] = '\0';
    if (strcmp(c->cur[c->ncur], c->in->currency) == 0) {
        c->app_cur = (int)c->ncur;
    }
    *out = (uint32_t)c->ncur++;
    return UMG_OK;
}

static int cur_of_id_new(qctx_t *c, uint32_t id, uint32_t *out)
{
    umg_slice_t s;
    int rc = string_of(c, id, &s);
    rc = rc ? rc : cur_of_code(c, s.ptr, s.len, out);
    rc = rc ? rc : dmap_add_new(&c->curmap, id);
    if (rc == UMG_OK) {
        dmap_set(&c->curmap, id, *out);
    }
    return rc;
}

/* The dense index of a currency's dictionary id. */
static inline int cur_of_id(qctx_t *c, uint32_t id, uint32_t *out)
{
    uint32_t v = dmap_get(&c->curmap, id);
    if (v == NONE) {
        return cur_of_id_new(c, id, out);
    }
    *out = v;
    return UMG_OK;
}

/* The rates table, once every currency is known: days [from, from + ndays). */
static int factors_init(qctx_t *c, int32_t ndays)
{
    size_t n = (size_t)ndays * (c->ncur ? c->ncur : 1);
    c->fac = umg_malloc(n * sizeof(double));
    if (c->fac == NULL) {
        return UMG_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        c->fac[i] = NAN;
    }
    c->fac_days = ndays;
    return UMG_OK;
}

/*
 * Converts the sum of one (group, day, currency) into the app's currency:
 * floor(sum * factor + 0.5) in IEEE double; the app's own currency is taken
 * as is. 1 when converted, 0 when that day has no rate, or an error.
 */
static int convert(qctx_t *c, uint32_t dayoff, uint32_t cur, int64_t sum, int64_t *out)
{
    if ((int)cur == c->app_cur) {
        *out = sum;
        return 1;
    }
    double *f = &c->fac[(size_t)dayoff * c->ncur + cur];
    if (isnan(*f)) { /* the currency's factors of every day, at once */
        double *x = umg_malloc((size_t)c->fac_days * sizeof(double));
        int rc = x == NULL ? UMG_ENOMEM : UMG_OK;
        for (int32_t d = 0; rc == UMG_OK && d < c->fac_days; d++) {
            x[d] = NAN;
        }
        if (rc == UMG_OK && c->in->rates != NULL) {
            rc = c->in->rates(c->in->ctx, c->from, (size_t)c->fac_days, c->cur[cur], c->in->currency, x);
        }
        for (int32_t d = 0; rc == UMG_OK && d < c->fac_days; d++) {
            c->fac[(size_t)d * c->ncur + cur] = isfinite(x[d]) && x[d] >= 0 ? x[d] : -1;
        }
        umg_free(x);
        if (rc != UMG_OK) {
            return rc;
        }
    }
    if (*f < 0) {
        return 0;
    }
    double x = floor((double)sum * *f + 0.5);
    /* Held inside int64_t: a cast of a double outside it is undefined. */
    *out = x >= 0x1p63 ? INT64_MAX : x < -0x1p63 ? INT64_MIN : (int64_t)x;
    return 1;
}

/* ---------------------------------------------------------------- costs */

static inline uint64_t camp_key(uint32_t source, uint32_t campaign)
{
    return (uint64_t)source << 32 | campaign;
}

static int cost_row(void *ctx, const umg_query_cost_t *r)
{
    qctx_t *c = ctx;
    if (r->day < c->from || (uint32_t)(r->day - c->from) >= c->span) {
        return 0;
    }
    if (c->ncosts == c->costcap) {
        size_t cap = c->costcap ? c->costcap * 2 : 256;
        cost_t *n = big_realloc(c->scr, c->costs, cap * sizeof(*n));
        if (n == NULL) {
            c->rc = UMG_ENOMEM;
            return 1;
        }
        c->costs = n;
        c->costcap = cap;
    }
    cost_t *o = &c->costs[c->ncosts];
    memset(o, 0, sizeof(*o));
    o->day = r->day;
    o->micros = r->micros;
    const umg_slice_t str[5] = {r->source, r->campaign, r->adset, r->ad, r->country};
    static const uint8_t dim[5] = {UMG_RD_SOURCE, UMG_RD_CAMPAIGN, UMG_RD_ADSET, UMG_RD_AD, UMG_RD_COUNTRY};
    int rc = UMG_OK;
    for (int k = 0; k < 5 && rc == UMG_OK; k++) {
        rc = resolve_sid(c, str[k], r->sid[k], &o->dim[dim[k]]);
    }
    rc = rc ? rc : cur_of_code(c, r->currency, strnlen(r->currency, sizeof(r->currency)), &o->cur);
    if (rc != UMG_OK) {
        c->rc = rc;
        return 1;
    }
    if (ids_ok(c, o->dim) &&
        (!c->q->reeng || u64map_get(&c->rtcamp, camp_key(o->dim[UMG_RD_SOURCE], o->dim[UMG_RD_CAMPAIGN])) != NULL)) {
        c->ncosts++;
    }
    return 0;
}

static int load_costs(qctx_t *c, int32_t to)
{
    if (c->in->costs == NULL) {
        return UMG_OK;
    }
    if (c->q->reeng) {
        /* The re-engagement view's costs are those of retargeting campaigns: the (source, campaign) pairs
         * with retargeting touches or re-engagement credit on any day (cost_row drops the others). */
        const umg_rollup_view_t *v = &c->in->tables[UMG_RT_MAIN];
        uint64_t last = U64_EMPTY; /* rows come in runs of one campaign */
        for (size_t i = 0; i < v->n; i++) {
            uint64_t k = camp_key(v->dim[UMG_RD_SOURCE][i], v->dim[UMG_RD_CAMPAIGN][i]);
            if (k != last && u64map_at(&c->rtcamp, k, 1) == NULL) {
                return UMG_ENOMEM;
            }
            last = k;
        }
    }
    int rc = c->in->costs(c->in->ctx, c->from, to, cost_row, c);
    return c->rc != UMG_OK ? c->rc : rc;
}

/* --------------------------------------------------------------- groups */

/* Registers the grouped dimensions' values of the rows in range (first pass). cur_x: the x column of a currency. */
static int prepass_view(qctx_t *c, const umg_rollup_view_t *v, int cur_x, int events)
{
    const int32_t lo = c->from, *day = v->day;
    const uint32_t span = c->span;
    const size_t nneed = c->nneed;
    const uint32_t *col[UMG_RD_N];
    uint32_t last[UMG_RD_N];
    for (size_t j = 0; j < nneed; j++) {
        col[j] = v->dim[c->need[j]];
        last[j] = NONE; /* the id just registered: rows come in runs of the same values */
    }
    if (nneed == 1 && c->nfd == 0 && !events) {
        dmap_t *m = &c->dm[c->need[0]];
        const uint32_t *c0 = col[0], *xc = cur_x >= 0 ? v->x[cur_x] : NULL;
        uint32_t l0 = NONE, cur;
        for (size_t i = 0; i < v->n; i++) {
            uint32_t id = c0[i];
            if ((id == l0 && xc == NULL) || (uint32_t)(day[i] - lo) >= span) {
                continue;
            }
            int rc = xc != NULL ? cur_of_id(c, xc[i], &cur) : UMG_OK;
            if (rc != UMG_OK) {
                return rc; /* not only memory: the dictionary's own errors */
            }
            if (id != l0 && (id >= m->dcap || m->direct[id] == NONE) && dmap_add(m, id) != UMG_OK) {
                return UMG_ENOMEM;
            }
            l0 = id;
        }
        return UMG_OK;
    }
    for (size_t i = 0; i < v->n; i++) {
        if ((uint32_t)(day[i] - lo) >= span || (c->nfd && !row_ok(c, v, i)) ||
            (events && !in_set(c->evset, c->q->nev, v->x[0][i]))) {
            continue;
        }
        for (size_t j = 0; j < nneed; j++) {
            uint32_t id = col[j][i];
            if (id == last[j]) {
                continue;
            }
            last[j] = id;
            dmap_t *m = &c->dm[c->need[j]];
            if ((id >= m->dcap || m->direct[id] == NONE) && dmap_add(m, id) != UMG_OK) {
                return UMG_ENOMEM;
            }
        }
        uint32_t cur;
        int rc = cur_x >= 0 ? cur_of_id(c, v->x[cur_x][i], &cur) : UMG_OK;
        if (rc != UMG_OK) {
            return rc;
        }
    }
    return UMG_OK;
}

static int prepass_costs(qctx_t *c)
{
    for (size_t i = 0; i < c->ncosts; i++) {
        for (size_t j = 0; j < c->nneed; j++) {
            uint8_t d = c->need[j];
            if (dmap_add(&c->dm[d], c->costs[i].dim[d]) != UMG_OK) {
                return UMG_ENOMEM;
            }
        }
    }
    return UMG_OK;
}

typedef struct ranked_s {
    umg_slice_t s;
    uint32_t id;
} ranked_t;

static int cmp_ranked(const void *a, const void *b)
{
    const ranked_t *x = a, *y = b;
    size_t n = x->s.len < y->s.len ? x->s.len : y->s.len;
    int r = n ? memcmp(x->s.ptr, y->s.ptr, n) : 0;
    return r != 0 ? r : x->s.len < y->s.len ? -1 : x->s.len > y->s.len;
}

/* Renumbers a dimension's values in the order of their strings (bytes), keeping the strings. */
static int rank_dim(qctx_t *c, dmap_t *m)
{
    ranked_t *e = umg_malloc((m->n ? m->n : 1) * sizeof(*e));
    m->str = umg_malloc((m->n ? m->n : 1) * sizeof(umg_slice_t));
    if (e == NULL || m->str == NULL) {
        umg_free(e);
        return UMG_ENOMEM;
    }
    for (size_t i = 0; i < m->n; i++) {
        e[i].id = m->ids[i];
        int rc = string_of(c, m->ids[i], &e[i].s);
        if (rc != UMG_OK) {
            umg_free(e);
            return rc;
        }
    }
    qsort(e, m->n, sizeof(*e), cmp_ranked);
    for (size_t r = 0; r < m->n; r++) {
        dmap_set(m, e[r].id, (uint32_t)r);
        m->str[r] = e[r].s;
    }
    umg_free(e);
    return UMG_OK;
}

static uint32_t new_group(qctx_t *c, const uint32_t *r);

/* Ranks every grouped dimension and chooses the group index: direct slots or a hash of rank tuples. */
static int groups_init(qctx_t *c)
{
    uint64_t P = 1, card[QD_N];
    int over = 0;
    for (size_t j = 0; j < c->k; j++) {
        uint8_t d = c->gd[j];
        if (d != QD_DAY) {
            int rc = rank_dim(c, &c->dm[d]);
            if (rc != UMG_OK) {
                return rc;
            }
        }
        card[j] = d == QD_DAY ? c->span : c->dm[d].n ? c->dm[d].n : 1;
        over |= __builtin_mul_overflow(P, card[j], &P);
    }
    for (size_t j = c->k; j-- > 0;) {
        c->stride[j] = j + 1 == c->k ? 1 : c->stride[j + 1] * card[j + 1];
    }
    c->P = P;
    c->direct = !over && P <= DIRECT_SLOTS;
    if (c->direct) {
        c->gslot = big_alloc(c->scr, P * sizeof(uint32_t));
        if (c->gslot == NULL) {
            return UMG_ENOMEM;
        }
        memset(c->gslot, 0xff, P * sizeof(uint32_t));
    }
    if (c->k == 0) { /* a report without dimensions has its one row even when nothing matched */
        uint32_t none[1] = {0};
        c->gslot[0] = new_group(c, none);
        return c->gslot[0] == NONE ? UMG_ENOMEM : UMG_OK;
    }
    return UMG_OK;
}

static int tslot_grow(qctx_t *c)
{
    size_t cap = c->tcap ? c->tcap * 2 : 1024;
    uint32_t *t = umg_malloc(cap * sizeof(*t));
    if (t == NULL) {
        return UMG_ENOMEM;
    }
    memset(t, 0xff, cap * sizeof(*t));
    for (size_t g = 0; g < c->ng; g++) {
        size_t s = (size_t)umg_hash64(c->gkey + g * c->k, c->k * sizeof(uint32_t), 0) & (cap - 1);
        while (t[s] != NONE) {
            s = (s + 1) & (cap - 1);
        }
        t[s] = (uint32_t)g;
    }
    umg_free(c->tslot);
    c->tslot = t;
    c->tcap = cap;
    return UMG_OK;
}

/* Room for n groups' keys and counters (the new counters zero). */
static int groups_reserve(qctx_t *c, size_t n)
{
    if (n <= c->gcap) {
        return UMG_OK;
    }
    size_t cap = c->gcap ? c->gcap * 2 : 256;
    while (cap < n) {
        cap *= 2;
    }
    uint32_t *nk = big_realloc(c->scr, c->gkey, cap * (c->k ? c->k : 1) * sizeof(uint32_t));
    if (nk == NULL) {
        return UMG_ENOMEM;
    }
    c->gkey = nk;
    int64_t *na = big_realloc(c->scr, c->acc, cap * c->K * sizeof(int64_t));
    if (na == NULL) {
        return UMG_ENOMEM;
    }
    memset(na + c->gcap * c->K, 0, (cap - c->gcap) * c->K * sizeof(int64_t));
    c->acc = na;
    c->gcap = cap;
    return UMG_OK;
}

static uint32_t new_group(qctx_t *c, const uint32_t *r)
{
    if (c->ng == c->gcap && groups_reserve(c, c->ng + 1) != UMG_OK) {
        return NONE;
    }
    memcpy(c->gkey + c->ng * c->k, r, c->k * sizeof(uint32_t));
    return (uint32_t)c->ng++;
}

static uint32_t tuple_group(qctx_t *c, const uint32_t *r)
{
    if ((c->ng + 1) * 2 > c->tcap && tslot_grow(c) != UMG_OK) {
        return NONE;
    }
    size_t s = (size_t)umg_hash64(r, c->k * sizeof(uint32_t), 0) & (c->tcap - 1);
    for (;; s = (s + 1) & (c->tcap - 1)) {
        uint32_t g = c->tslot[s];
        if (g == NONE) {
            g = new_group(c, r);
            c->tslot[s] = g;
            return g;
        }
        if (memcmp(c->gkey + (size_t)g * c->k, r, c->k * sizeof(uint32_t)) == 0) {
            return g;
        }
    }
}

/* The group of the ranks r (slot: their mixed-radix number), created on first sight. NONE: out of memory. */
static inline uint32_t rank_group(qctx_t *c, const uint32_t *r, uint64_t slot)
{
    if (!c->direct) {
        return tuple_group(c, r);
    }
    uint32_t g = c->gslot[slot];
    if (g == NONE) {
        g = new_group(c, r);
        c->gslot[slot] = g;
    }
    return g;
}

/* The group of a row (its ids by dimension; day offset). NONE: out of memory. */
static inline uint32_t group_of(qctx_t *c, uint32_t dayoff, const uint32_t *ids)
{
    uint32_t r[QD_N];
    uint64_t slot = 0;
    for (size_t j = 0; j < c->k; j++) {
        uint8_t d = c->gd[j];
        r[j] = d == QD_DAY ? dayoff : dmap_get(&c->dm[d], ids[d]);
        slot += r[j] * c->stride[j];
    }
    return rank_group(c, r, slot);
}

/*
 * The group of each row i0..i1 of v into gi[i - i0]: NONE for rows outside
 * the period, filtered out, or (events) not of a requested event. The hot
 * loop of every scan: column pointers and direct arrays in locals.
 */
#define CHUNK 4096
static inline uint32_t view_group(qctx_t *c, const umg_rollup_view_t *v, size_t i, uint32_t dayoff)
{
    uint32_t ids[UMG_RD_N];
    for (size_t j = 0; j < c->nneed; j++) {
        ids[c->need[j]] = v->dim[c->need[j]][i];
    }
    return group_of(c, dayoff, ids);
}

static int chunk_groups_any(qctx_t *c, const umg_rollup_view_t *v, size_t i0, size_t i1, int events, uint32_t *gi)
{
    const int32_t *day = v->day, lo = c->from;
    for (size_t i = i0; i < i1; i++) {
        uint32_t dayoff = (uint32_t)(day[i] - lo);
        gi[i - i0] = NONE;
        if (dayoff >= c->span || (c->nfd && !row_ok(c, v, i)) || (events && !in_set(c->evset, c->q->nev, v->x[0][i]))) {
            continue;
        }
        gi[i - i0] = view_group(c, v, i, dayoff);
        if (gi[i - i0] == NONE) {
            return UMG_ENOMEM;
        }
    }
    return UMG_OK;
}

static int chunk_groups(qctx_t *c, const umg_rollup_view_t *v, size_t i0, size_t i1, int events, uint32_t *gi)
{
    const size_t k = c->k;
    if (!c->direct || c->nfd || events || k > 3) {
        return chunk_groups_any(c, v, i0, i1, events, gi);
    }
    /* the common case in locals: direct slots, no filter, up to three dimensions */
    const int32_t *day = v->day, lo = c->from;
    const uint32_t span = c->span;
    const uint32_t *col[3] = {NULL, NULL, NULL}, *dir[3] = {NULL, NULL, NULL};
    size_t dcap[3] = {0, 0, 0};
    uint64_t st[3] = {0, 0, 0};
    uint32_t *gslot = c->gslot;
    for (size_t j = 0; j < k; j++) {
        uint8_t d = c->gd[j];
        col[j] = d == QD_DAY ? NULL : v->dim[d];
        dir[j] = d == QD_DAY ? NULL : c->dm[d].direct;
        dcap[j] = d == QD_DAY ? 0 : c->dm[d].dcap;
        st[j] = c->stride[j];
    }
    if (k <= 2 && (k == 0 || col[0] == NULL) && (k < 2 || col[1] != NULL)) {
        /* (), (day) or (day, dimension): no inner loop */
        const uint32_t *c1 = col[1], *d1 = dir[1];
        const size_t cap1 = dcap[1];
        const uint64_t s0 = k > 0 ? st[0] : 0;
        for (size_t i = i0; i < i1; i++) {
            uint32_t dayoff = (uint32_t)(day[i] - lo), r[3] = {dayoff, 0, 0};
            if (dayoff >= span) {
                gi[i - i0] = NONE;
                continue;
            }
            if (c1 != NULL) {
                uint32_t id = c1[i];
                r[1] = id < cap1 ? d1[id] : dmap_get(&c->dm[c->gd[1]], id);
            }
            uint64_t slot = dayoff * s0 + r[1];
            uint32_t g = gslot[slot];
            if (g == NONE && (g = rank_group(c, k > 0 ? r : r + 1, slot)) == NONE) {
                return UMG_ENOMEM;
            }
            gi[i - i0] = g;
        }
        return UMG_OK;
    }
    for (size_t i = i0; i < i1; i++) {
        uint32_t dayoff = (uint32_t)(day[i] - lo), r[3] = {0, 0, 0};
        if (dayoff >= span) {
            gi[i - i0] = NONE;
            continue;
        }
        for (size_t j = 0; j < k; j++) {
            uint32_t id = col[j] != NULL ? col[j][i] : 0;
            r[j] = col[j] == NULL ? dayoff : id < dcap[j] ? dir[j][id] : dmap_get(&c->dm[c->gd[j]], id);
        }
        uint64_t slot = r[0] * st[0] + r[1] * st[1] + r[2] * st[2];
        uint32_t g = gslot[slot];
        if (g == NONE) {
            g = rank_group(c, r, slot);
            if (g == NONE) {
                return UMG_ENOMEM;
            }
        }
        gi[i - i0] = g;
    }
    return UMG_OK;
}

/* The position of "day" in group_by, or -1. */
static int day_pos(const qctx_t *c)
{
    for (size_t j = 0; j < c->k; j++) {
        if (c->gd[j] == QD_DAY) {
            return (int)j;
        }
    }
    return -1;
}

/* ---------------------------------------------------------------- cells */

static void cells_init(qctx_t *c, cells_t *x)
{
    memset(x, 0, sizeof(*x));
    int dayw = day_pos(c) < 0;
    x->w = (dayw ? c->span : 1) * (c->ncur ? c->ncur : 1);
    uint64_t total;
    x->direct = c->direct && !__builtin_mul_overflow(c->P, x->w, &total) && total <= (1u << 23);
}

static int cells_add(qctx_t *c, cells_t *x, uint32_t g, uint32_t dayoff, uint32_t cur, int64_t v)
{
    if (x->direct) {
        if (g >= x->acap) {
            size_t cap = x->acap ? x->acap : 256;
            while (cap <= g) {
                cap *= 2;
            }
            int64_t *na = big_realloc(c->scr, x->a, cap * x->w * sizeof(int64_t));
            if (na == NULL) {
                return UMG_ENOMEM;
            }
            memset(na + x->acap * x->w, 0, (cap - x->acap) * x->w * sizeof(int64_t));
            x->a = na;
            x->acap = cap;
        }
        size_t at = (size_t)g * x->w + (x->w > c->ncur ? (size_t)dayoff * c->ncur : 0) + cur;
        x->a[at] = umg_add_sat(x->a[at], v);
        return UMG_OK;
    }
    uint64_t *p = u64map_at(&x->h, (uint64_t)g << 32 | (uint64_t)dayoff << 16 | cur, 0);
    if (p == NULL) {
        return UMG_ENOMEM;
    }
    *p = (uint64_t)umg_add_sat((int64_t)*p, v);
    return UMG_OK;
}

typedef int (*cell_fn)(qctx_t *c, uint32_t g, uint32_t dayoff, uint32_t cur, int64_t sum, void *arg);

/* Calls fn for every non-zero cell, with the day offset of the cell (or of its group). */
static int cells_each(qctx_t *c, cells_t *x, cell_fn fn, void *arg)
{
    int dp = day_pos(c);
    size_t nc = c->ncur ? c->ncur : 1;
    if (x->direct) {
        for (size_t g = 0; g < x->acap && g < c->ng; g++) {
            for (size_t i = 0; i < x->w; i++) {
                int64_t s = x->a[g * x->w + i];
                if (s == 0) {
                    continue;
                }
                uint32_t dayoff = dp >= 0 ? c->gkey[g * c->k + (size_t)dp] : (uint32_t)(i / nc);
                int rc = fn(c, (uint32_t)g, dayoff, (uint32_t)(i % nc), s, arg);
                if (rc != UMG_OK) {
                    return rc;
                }
            }
        }
        return UMG_OK;
    }
    for (size_t i = 0; i < x->h.cap; i++) {
        uint64_t key = x->h.keys[i];
        if (key == U64_EMPTY || x->h.vals[i] == 0) {
            continue;
        }
        uint32_t g = (uint32_t)(key >> 32);
        uint32_t dayoff = dp >= 0 ? c->gkey[(size_t)g * c->k + (size_t)dp] : (uint32_t)(key >> 16 & 0xffff);
        int rc = fn(c, g, dayoff, (uint32_t)(key & 0xffff), (int64_t)x->h.vals[i], arg);
        if (rc != UMG_OK) {
            return rc;
        }
    }
    return UMG_OK;
}

static void cells_free(qctx_t *c, cells_t *x)
{
    big_free(c->scr, x->a);
    u64map_free(&x->h);
}

static int unconv_add(qctx_t *c, unconv_t *u, uint32_t g, uint32_t cur, int64_t v)
{
    if (u->any == NULL) {
        u->any = umg_calloc(c->ncur ? c->ncur : 1, 1);
        if (u->any == NULL) {
            return UMG_ENOMEM;
        }
    }
    uint64_t *p = u64map_at(&u->m, (uint64_t)g << 16 | cur, 0);
    if (p == NULL) {
        return UMG_ENOMEM;
    }
    *p = (uint64_t)umg_add_sat((int64_t)*p, v);
    u->any[cur] = 1;
    return UMG_OK;
}

static int64_t unconv_get(const unconv_t *u, uint32_t g, uint32_t cur)
{
    const uint64_t *p = u64map_get(&u->m, (uint64_t)g << 16 | cur);
    return p != NULL ? (int64_t)*p : 0;
}

static void unconv_free(unconv_t *u)
{
    u64map_free(&u->m);
    umg_free(u->any);
}

/* ------------------------------------------------------------ one pass */

#define FAST_CELLS (1u << 22) /* counters the one-pass cells may hold, else the two passes */

static void fast_init(qctx_t *c)
{
    fast_t *f = &c->fast;
    f->on = c->nfd == 0 && c->nneed <= 1;
    f->dim = c->nneed == 1 ? c->need[0] : QD_DAY;
    f->K = c->K;
}

static void fast_free(scratch_t *scr, fast_t *f)
{
    big_free(scr, f->acc);
    big_free(scr, f->seen);
    for (size_t i = 0; i < f->nrev; i++) {
        big_free(scr, f->rev[i]);
    }
    umg_free(f->rev);
    f->acc = NULL, f->seen = NULL, f->rev = NULL;
    f->cap = f->nrev = 0;
}

/* A copy of cells of w bytes each, laid out for cap dense numbers a day instead of ocap; NULL: out of memory. */
static void *fast_relayout(scratch_t *scr, const void *old, size_t ocap, size_t cap, size_t span, size_t w)
{
    char *n = big_calloc(scr, cap * span + 1, w);
    for (size_t d = 0; n != NULL && old != NULL && d < span; d++) {
        memcpy(n + d * cap * w, (const char *)old + d * ocap * w, ocap * w);
    }
    return n;
}

/* Grows a part's cells to room for dense numbers below n: UMG_ERANGE past FAST_CELLS (the caller falls back). */
static int fast_grow(const qctx_t *c, fpart_t *p, size_t n)
{
    fast_t *f = p->f;
    size_t cap = f->cap ? f->cap : 64, span = c->span, nr = 0;
    while (cap < n) {
        cap *= 2;
    }
    for (size_t i = 0; i < f->nrev; i++) {
        nr += f->rev[i] != NULL;
    }
    if ((uint64_t)cap * span * (f->K + nr + 1) > FAST_CELLS) {
        return UMG_ERANGE;
    }
    int64_t *a = fast_relayout(p->scr, f->acc, f->cap, cap, span, f->K * sizeof(int64_t));
    uint8_t *sn = fast_relayout(p->scr, f->seen, f->cap, cap, span, 1);
    if (a == NULL || sn == NULL) {
        big_free(p->scr, a);
        big_free(p->scr, sn);
        return UMG_ENOMEM;
    }
    big_free(p->scr, f->acc);
    big_free(p->scr, f->seen);
    f->acc = a;
    f->seen = sn;
    for (size_t i = 0; i < f->nrev; i++) {
        if (f->rev[i] == NULL) {
            continue;
        }
        int64_t *r = fast_relayout(p->scr, f->rev[i], f->cap, cap, span, sizeof(int64_t));
        if (r == NULL) {
            return UMG_ENOMEM;
        }
        big_free(p->scr, f->rev[i]);
        f->rev[i] = r;
    }
    f->cap = cap;
    return UMG_OK;
}

/* The dense number of a value of the grouped dimension in a part, registered and with room in its cells. */
static inline int fast_dense(const qctx_t *c, fpart_t *p, uint32_t id, uint32_t *out)
{
    uint32_t d = dmap_get(p->m, id);
    if (d == NONE) {
        int rc = dmap_add_new(p->m, id);
        if (rc != UMG_OK) {
            return rc;
        }
        d = (uint32_t)p->m->n - 1;
    }
    *out = d;
    return d < p->f->cap ? UMG_OK : fast_grow(c, p, (size_t)d + 1);
}

/* The revenue cells of a currency (the calling thread's part), made on first use. */
static int fast_rev_cur(qctx_t *c, uint32_t cur, int64_t **out)
{
    fast_t *f = &c->fast;
    if (cur >= f->nrev) {
        size_t n = f->nrev ? f->nrev : 4;
        while (n <= cur) {
            n *= 2;
        }
        int64_t **r = umg_realloc(f->rev, n * sizeof(*r));
        if (r == NULL) {
            return UMG_ENOMEM;
        }
        memset(r + f->nrev, 0, (n - f->nrev) * sizeof(*r));
        f->rev = r;
        f->nrev = n;
    }
    if (f->rev[cur] == NULL) {
        size_t nr = 1;
        for (size_t i = 0; i < f->nrev; i++) {
            nr += f->rev[i] != NULL;
        }
        if ((uint64_t)f->cap * c->span * (f->K + nr + 1) > FAST_CELLS) {
            return UMG_ERANGE;
        }
        f->rev[cur] = big_calloc(c->scr, f->cap * c->span + 1, sizeof(int64_t));
        if (f->rev[cur] == NULL) {
            return UMG_ENOMEM;
        }
    }
    *out = f->rev[cur];
    return UMG_OK;
}

/* The MAIN rows i0..i1 (of the period) into a part's cells. */
static int fast_main(const qctx_t *c, fpart_t *p, size_t i0, size_t i1)
{
    fast_t *f = p->f;
    const umg_rollup_view_t *v = &c->in->tables[UMG_RT_MAIN];
    const int64_t *col[UMG_RM_N];
    size_t pos[UMG_RM_N], nc = 0;
    for (int i = 0; i < UMG_RM_N; i++) {
        if (c->pos_main[i] >= 0) {
            col[nc] = v->v[i];
            pos[nc++] = (size_t)c->pos_main[i];
        }
    }
    const int32_t *day = v->day, lo = c->from;
    const uint32_t span = c->span, *dc = f->dim != QD_DAY ? v->dim[f->dim] : NULL;
    const size_t K = f->K;
    uint32_t last = NONE, d = 0;
    int rc = f->cap > 0 ? UMG_OK : fast_grow(c, p, 1); /* room for the only cell row without a dimension */
    if (rc != UMG_OK) {
        return rc;
    }
    size_t cap = f->cap; /* in locals: a store through seen may alias anything */
    int64_t *acc = f->acc;
    uint8_t *seen = f->seen;
    /* rows come in runs of the same day and value: sum each run of a column with a plain loop (adding row
     * by row to the cell would wait for the previous add's store) */
    for (size_t i = i0, e; i < i1; i = e) {
        uint32_t dayoff = (uint32_t)(day[i] - lo);
        e = i + 1;
        if (dc != NULL) {
            while (e < i1 && day[e] == day[i] && dc[e] == dc[i]) {
                e++;
            }
        } else {
            while (e < i1 && day[e] == day[i]) {
                e++;
            }
        }
        if (dayoff >= span) {
            continue;
        }
        if (dc != NULL && dc[i] != last) {
            if ((rc = fast_dense(c, p, dc[i], &d)) != UMG_OK) {
                return rc;
            }
            last = dc[i];
            cap = f->cap, acc = f->acc, seen = f->seen;
        }
        size_t s = (size_t)dayoff * cap + d;
        int64_t *a = acc + s * K;
        seen[s] = 1;
        for (size_t j = 0; j < nc; j++) {
            const int64_t *cv = col[j];
            int64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0; /* four chains: the loads of a run overlap */
            size_t x = i;
            for (; x + 4 <= e; x += 4) {
                s0 += cv[x], s1 += cv[x + 1], s2 += cv[x + 2], s3 += cv[x + 3];
            }
            for (; x < e; x++) {
                s0 += cv[x];
            }
            a[pos[j]] += s0 + s1 + s2 + s3;
        }
    }
    return UMG_OK;
}

/* The REVENUE rows of the period into the calling thread's cells per currency, registering the currencies in row
 * order. */
static int fast_revenue(qctx_t *c, fpart_t *p)
{
    fast_t *f = p->f;
    const umg_rollup_view_t *v = &c->in->tables[UMG_RT_REVENUE];
    const int32_t *day = v->day, lo = c->from;
    const uint32_t span = c->span, *dc = f->dim != QD_DAY ? v->dim[f->dim] : NULL, *xc = v->x[0];
    const int64_t *amt = v->v[0];
    uint32_t last = NONE, d = 0;
    int rc = f->cap > 0 ? UMG_OK : fast_grow(c, p, 1);
    if (rc != UMG_OK) {
        return rc;
    }
    /* in locals: a store through seen may alias anything */
    size_t cap = f->cap, ncap = f->nrev, cdcap = c->curmap.dcap;
    uint8_t *seen = f->seen;
    int64_t **rev = f->rev;
    const uint32_t *cdir = c->curmap.direct;
    /* rows come in runs of the same day and value: one cell per run, its rows' currencies looked up each */
    for (size_t i = 0, e; i < v->n; i = e) {
        uint32_t dayoff = (uint32_t)(day[i] - lo);
        e = i + 1;
        while (e < v->n && day[e] == day[i] && (dc == NULL || dc[e] == dc[i])) {
            e++;
        }
        if (dayoff >= span) {
            continue;
        }
        if (dc != NULL && dc[i] != last) {
            if ((rc = fast_dense(c, p, dc[i], &d)) != UMG_OK) {
                return rc;
            }
            last = dc[i];
            cap = f->cap, seen = f->seen;
        }
        size_t s = (size_t)dayoff * cap + d;
        seen[s] = 1;
        for (size_t k = i; k < e; k++) {
            uint32_t x = xc[k], cur = x < cdcap ? cdir[x] : NONE;
            int64_t *r = cur < ncap ? rev[cur] : NULL;
            if (r == NULL) { /* a currency not seen yet (or not by id) */
                rc = cur_of_id(c, x, &cur);
                rc = rc ? rc : fast_rev_cur(c, cur, &r);
                if (rc != UMG_OK) {
                    return rc;
                }
                ncap = f->nrev, rev = f->rev, cdcap = c->curmap.dcap, cdir = c->curmap.direct;
            }
            r[s] = umg_add_sat(r[s], amt[k]);
        }
    }
    return UMG_OK;
}

static int convert_cell(qctx_t *c, uint32_t g, uint32_t dayoff, uint32_t cur, int64_t sum, void *arg);

/* The groups of the cells' seen cells and their MAIN counters (in the one pass, the groups come after it). */
static int fast_groups_make(qctx_t *c, const uint32_t *rank, size_t nd)
{
    fast_t *f = &c->fast;
    const size_t span = c->span, K = f->K;
    for (size_t dayoff = 0; dayoff < span; dayoff++) {
        for (size_t d = 0; d < nd; d++) {
            size_t s = dayoff * f->cap + d;
            if (!f->seen[s]) {
                continue;
            }
            uint32_t r[QD_N];
            uint64_t slot = 0;
            for (size_t j = 0; j < c->k; j++) {
                r[j] = c->gd[j] == QD_DAY ? (uint32_t)dayoff : rank[d];
                slot += r[j] * c->stride[j];
            }
            uint32_t g = rank_group(c, r, slot);
            if (g == NONE) {
                return UMG_ENOMEM;
            }
            int64_t *a = c->acc + (size_t)g * K;
            const int64_t *b = f->acc + s * K;
            for (size_t j = 0; j < K; j++) {
                a[j] = umg_add_sat(a[j], b[j]);
            }
            /* a revenue cell is one (group, day, currency): converted here, without the cells of scan_revenue */
            for (uint32_t cur = 0; cur < f->nrev; cur++) {
                int64_t x = f->rev[cur] != NULL ? f->rev[cur][s] : 0;
                int rc = x != 0 ? convert_cell(c, g, (uint32_t)dayoff, cur, x, &c->unrev) : UMG_OK;
                if (rc != UMG_OK) {
                    return rc;
                }
            }
        }
    }
    return UMG_OK;
}

/* The groups of the cells, once every value is ranked: their MAIN counters and their converted revenue. */
static int fast_groups(qctx_t *c)
{
    fast_t *f = &c->fast;
    const dmap_t *m = f->dim != QD_DAY ? &c->dm[f->dim] : NULL;
    size_t nd = m != NULL ? m->n : f->cap > 0, nseen = 0;
    nd = nd < f->cap ? nd : f->cap;
    uint32_t *rank = big_alloc(c->scr, (nd ? nd : 1) * sizeof(uint32_t));
    if (rank == NULL) {
        return UMG_ENOMEM;
    }
    for (size_t d = 0; d < nd; d++) {
        rank[d] = m != NULL ? dmap_get(m, m->ids[d]) : 0;
    }
    for (size_t i = 0; i < f->cap * c->span; i++) {
        nseen += f->seen[i];
    }
    int rc = groups_reserve(c, c->ng + nseen);
    rc = rc ? rc : fast_groups_make(c, rank, nd);
    big_free(c->scr, rank);
    return rc;
}

/*
 * A large MAIN table is scanned by two threads when the caller lends one
 * (umg_query_input_t.beside): both take chunks of rows in turn, each adding
 * into cells of its own; the helper's are merged into the caller's after.
 */
#define PAR_MIN_ROWS (1u << 17)
#define PAR_CHUNK (1u << 15)

typedef struct par_s {
    const qctx_t *c; /* read only while the helper runs */
    size_t n;        /* MAIN rows */
    _Atomic size_t next;
    _Atomic int stop; /* a part failed: the other takes no more rows */
    fast_t f;         /* the helper's part */
    dmap_t m;
    fpart_t part;
    int rc;
} par_t;

/* Chunks of MAIN rows into a part until none is left (or the other part failed). */
static int fast_chunks(const qctx_t *c, fpart_t *p, par_t *par)
{
    for (;;) {
        if (atomic_load_explicit(&par->stop, memory_order_relaxed)) {
            return UMG_OK;
        }
        size_t i0 = atomic_fetch_add_explicit(&par->next, PAR_CHUNK, memory_order_relaxed);
        if (i0 >= par->n) {
            return UMG_OK;
        }
        int rc = fast_main(c, p, i0, i0 + PAR_CHUNK < par->n ? i0 + PAR_CHUNK : par->n);
        if (rc != UMG_OK) {
            atomic_store_explicit(&par->stop, 1, memory_order_relaxed);
            return rc;
        }
    }
}

/* On the helper thread. */
static void par_main(void *arg)
{
    par_t *par = arg;
    par->rc = fast_chunks(par->c, &par->part, par);
}

/* The helper's cells into the caller's: its dense numbers mapped to the caller's first, then day by day. */
static int fast_merge(qctx_t *c, fpart_t *mine, const par_t *par)
{
    const fast_t *h = &par->f;
    fast_t *f = mine->f;
    size_t nd = mine->m != NULL ? par->m.n : h->cap > 0, K = f->K;
    uint32_t *to = umg_malloc((nd ? nd : 1) * sizeof(uint32_t));
    int rc = to != NULL ? UMG_OK : UMG_ENOMEM;
    rc = rc ? rc : mine->m == NULL && nd > 0 && f->cap == 0 ? fast_grow(c, mine, 1) : UMG_OK;
    for (size_t d2 = 0; d2 < nd && rc == UMG_OK; d2++) {
        to[d2] = 0;
        rc = mine->m != NULL ? fast_dense(c, mine, par->m.ids[d2], &to[d2]) : UMG_OK;
    }
    for (size_t dayoff = 0; dayoff < c->span && rc == UMG_OK; dayoff++) {
        const uint8_t *seen2 = h->seen + dayoff * h->cap;
        const int64_t *a2 = h->acc + dayoff * h->cap * K;
        uint8_t *seen = f->seen + dayoff * f->cap;
        int64_t *a = f->acc + dayoff * f->cap * K;
        for (size_t d2 = 0; d2 < nd; d2++) {
            if (!seen2[d2]) {
                continue;
            }
            seen[to[d2]] = 1;
            for (size_t j = 0; j < K; j++) {
                a[to[d2] * K + j] = umg_add_sat(a[to[d2] * K + j], a2[d2 * K + j]);
            }
        }
    }
    umg_free(to);
    return rc;
}

/*
 * The cost rows (costs_needed), and the one pass over MAIN and REVENUE; f->on
 * cleared (and nothing kept) when the cells would be too many. The costs are
 * read on the calling thread while the helper, if any, starts on MAIN.
 */
static int fast_scan(qctx_t *c, int main_needed, int rev_needed, int costs_needed)
{
    fast_t *f = &c->fast;
    fpart_t mine = {f, f->dim != QD_DAY ? &c->dm[f->dim] : NULL, c->scr};
    par_t *par = umg_calloc(1, sizeof(*par));
    if (par == NULL) {
        return UMG_ENOMEM;
    }
    par->c = c;
    par->n = main_needed ? c->in->tables[UMG_RT_MAIN].n : 0;
    par->f.K = f->K;
    par->f.dim = f->dim;
    int helped = 0;
    if (par->n >= PAR_MIN_ROWS && c->in->beside != NULL && c->scr != NULL &&
        (c->scr->side != NULL || (c->scr->side = umg_calloc(1, sizeof(scratch_t))) != NULL)) {
        par->part = (fpart_t){&par->f, mine.m != NULL ? &par->m : NULL, c->scr->side};
        helped = c->in->beside(c->in->par, par_main, par) == 0;
    }
    int rc = costs_needed ? load_costs(c, c->q->to) : UMG_OK;
    rc = rc ? rc : rev_needed ? fast_revenue(c, &mine) : UMG_OK;
    rc = rc ? rc : fast_chunks(c, &mine, par);
    if (helped) {
        atomic_store_explicit(&par->stop, rc != UMG_OK, memory_order_relaxed);
        c->in->join(c->in->par);
        rc = rc ? rc : par->rc;
        rc = rc ? rc : fast_merge(c, &mine, par);
    }
    fast_free(par->part.scr, &par->f);
    dmap_free(&par->m);
    umg_free(par);
    if (rc == UMG_ERANGE) {
        fast_free(c->scr, f);
        if (f->dim != QD_DAY) {
            dmap_free(&c->dm[f->dim]);
        }
        f->on = 0;
        return UMG_OK;
    }
    return rc;
}

/* ------------------------------------------------------------- writing */

/* An amount of micro-units, exactly: 12.5, 12.345678, -3, 0. */
static int put_amount(umg_buf_t *o, int64_t micros)
{
    char t[40];
    uint64_t u = micros < 0 ? -(uint64_t)micros : (uint64_t)micros;
    int n = snprintf(t, sizeof(t), "%s%" PRIu64, micros < 0 ? "-" : "", u / 1000000);
    uint32_t f = (uint32_t)(u % 1000000);
    if (f != 0) {
        n += snprintf(t + n, sizeof(t) - (size_t)n, ".%06u", f);
        while (t[n - 1] == '0') {
            n--;
        }
    }
    return umg_buf_append(o, t, (size_t)n);
}

static int put_double(umg_buf_t *o, double v)
{
    return umg_buf_printf(o, "%.17g", v);
}

/* A group's value of dimension position j, as text (dates in t). */
static umg_slice_t dim_text(const qctx_t *c, uint32_t g, size_t j, char t[11])
{
    uint32_t r = c->gkey[(size_t)g * c->k + j];
    if (c->gd[j] == QD_DAY) {
        umg_date_format(c->from + (int32_t)r, t);
        return umg_slice(t, 10);
    }
    return c->dm[c->gd[j]].str[r];
}

static int put_head(qctx_t *c, umg_buf_t *o)
{
    char f[11], t[11];
    umg_date_format(c->q->from, f);
    umg_date_format(c->q->to, t);
    int rc = umg_buf_printf(o, "{\"app\":");
    rc = rc ? rc : umg_buf_json_str(o, c->in->app, strlen(c->in->app));
    rc = rc ? rc : umg_buf_printf(o, ",\"from\":\"%s\",\"to\":\"%s\",\"timezone\":", f, t);
    rc = rc ? rc : umg_buf_json_str(o, c->in->timezone, strlen(c->in->timezone));
    rc = rc ? rc : umg_buf_printf(o, ",\"currency\":");
    rc = rc ? rc : umg_buf_json_str(o, c->in->currency, strlen(c->in->currency));
    if (rc == UMG_OK && c->q->kind == UMG_QUERY_OVERVIEW) {
        rc = umg_buf_printf(o, ",\"credit\":\"%s\"", c->q->reeng ? "re_engagement" : "install");
    }
    if (rc == UMG_OK && c->q->reeng && c->in->reeng_since_us != 0) { /* a store upgraded in place */
        char since[32];
        umg_time_format_rfc3339(c->in->reeng_since_us, since);
        rc = umg_buf_printf(o, ",\"credit_since\":\"%s\"", since);
    }
    rc = rc ? rc : umg_buf_printf(o, ",\"group_by\":[");
    for (size_t j = 0; j < c->k && rc == UMG_OK; j++) {
        rc = umg_buf_printf(o, "%s\"%s\"", j ? "," : "", dim_names[c->gd[j]]);
    }
    return rc ? rc : umg_buf_putc(o, ']');
}

static int put_dims_json(qctx_t *c, umg_buf_t *o, uint32_t g)
{
    int rc = UMG_OK;
    for (size_t j = 0; j < c->k && rc == UMG_OK; j++) {
        char t[11];
        umg_slice_t s = dim_text(c, g, j, t);
        rc = umg_buf_printf(o, "%s\"%s\":", j ? "," : "", dim_names[c->gd[j]]);
        rc = rc ? rc : umg_buf_json_str(o, s.ptr, s.len);
    }
    return rc;
}

/* ,"revenue_unconverted":{"EUR":12.5} when the group (NONE: the totals) has any. */
static int put_unconv_json(qctx_t *c, umg_buf_t *o, const unconv_t *u, uint32_t g, const int64_t *totals,
                           const char *name, int first)
{
    int rc = UMG_OK, n = 0;
    for (uint32_t cur = 0; u->any != NULL && cur < c->ncur && rc == UMG_OK; cur++) {
        int64_t v = g == NONE ? totals[cur] : u->any[cur] ? unconv_get(u, g, cur) : 0;
        if (v == 0) {
            continue;
        }
        rc = umg_buf_printf(o, n++ ? "," : "%s\"%s\":{", first ? "" : ",", name);
        rc = rc ? rc : umg_buf_json_str(o, c->cur[cur], strlen(c->cur[cur]));
        rc = rc ? rc : umg_buf_putc(o, ':');
        rc = rc ? rc : put_amount(o, v);
    }
    return rc == UMG_OK && n ? umg_buf_putc(o, '}') : rc;
}

/* ------------------------------------------------------------- overview */

static void overview_layout(qctx_t *c)
{
    const umg_query_t *q = c->q;
    size_t K = 0;
    for (int i = 0; i < UMG_RM_N; i++) {
        c->pos_main[i] = q->needs & NB(i) ? (int)K++ : -1;
    }
    for (size_t e = 0; e < q->nev; e++) {
        c->pos_ev[e][0] = (int)K++;
        c->pos_ev[e][1] = (int)K++;
    }
    c->pos_rev = q->needs & N_REV ? (int)K++ : -1;
    c->pos_cost = q->needs & N_COST ? (int)K++ : -1;
    for (int i = 0; i <= UMG_RF_EVENT; i++) {
        c->pos_fraud[i] = q->needs & N_FRAUD ? (int)K++ : -1;
    }
    c->K = K ? K : 1;
}

static int scan_main(qctx_t *c)
{
    const umg_rollup_view_t *v = &c->in->tables[UMG_RT_MAIN];
    const int64_t *col[UMG_RM_N];
    size_t pos[UMG_RM_N], nc = 0;
    uint32_t gi[CHUNK], rs[CHUNK + 1], rg[CHUNK]; /* groups of rows; runs: start, group */
    for (int i = 0; i < UMG_RM_N; i++) {
        if (c->pos_main[i] >= 0) {
            col[nc] = v->v[i];
            pos[nc++] = (size_t)c->pos_main[i];
        }
    }
    const size_t K = c->K;
    for (size_t i0 = 0; i0 < v->n && nc > 0; i0 += CHUNK) {
        size_t i1 = i0 + CHUNK < v->n ? i0 + CHUNK : v->n;
        int rc = chunk_groups(c, v, i0, i1, 0, gi);
        if (rc != UMG_OK) {
            return rc;
        }
        /* rows come in runs of the same group: sum each run of a column with a plain loop (adding
         * row by row to the group would wait for the previous add's store) */
        size_t nr = 0;
        for (size_t i = 0; i < i1 - i0; nr++) {
            size_t e = i + 1;
            while (e < i1 - i0 && gi[e] == gi[i]) {
                e++;
            }
            rs[nr] = (uint32_t)i;
            rg[nr] = gi[i];
            i = e;
        }
        rs[nr] = (uint32_t)(i1 - i0);
        for (size_t j = 0; j < nc; j++) {
            const int64_t *cv = col[j] + i0;
            int64_t *acc = c->acc + pos[j];
            for (size_t r = 0; r < nr; r++) {
                if (rg[r] == NONE) {
                    continue;
                }
                int64_t sum = 0;
                for (size_t i = rs[r]; i < rs[r + 1]; i++) {
                    sum += cv[i];
                }
                acc[(size_t)rg[r] * K] += sum;
            }
        }
    }
    return UMG_OK;
}

static int scan_events(qctx_t *c)
{
    const umg_rollup_view_t *v = &c->in->tables[UMG_RT_EVENT];
    uint32_t gi[CHUNK];
    for (size_t i0 = 0; i0 < v->n && c->q->nev > 0; i0 += CHUNK) {
        size_t i1 = i0 + CHUNK < v->n ? i0 + CHUNK : v->n;
        int rc = chunk_groups(c, v, i0, i1, 1, gi);
        if (rc != UMG_OK) {
            return rc;
        }
        for (size_t i = i0; i < i1; i++) {
            for (size_t e = 0; gi[i - i0] != NONE && e < c->q->nev; e++) {
                if (c->evid[e] == v->x[0][i]) {
                    c->acc[(size_t)gi[i - i0] * c->K + (size_t)c->pos_ev[e][0]] += v->v[0][i];
                    c->acc[(size_t)gi[i - i0] * c->K + (size_t)c->pos_ev[e][1]] += v->v[1][i];
                }
            }
        }
    }
    return UMG_OK;
}

/* Rejected items by kind (v[0] of the fraud rollup, any rule). */
static int scan_fraud(qctx_t *c)
{
    const umg_rollup_view_t *v = &c->in->tables[UMG_RT_FRAUD];
    uint32_t gi[CHUNK];
    for (size_t i0 = 0; i0 < v->n; i0 += CHUNK) {
        size_t i1 = i0 + CHUNK < v->n ? i0 + CHUNK : v->n;
        int rc = chunk_groups(c, v, i0, i1, 0, gi);
        if (rc != UMG_OK) {
            return rc;
        }
        for (size_t i = i0; i < i1; i++) {
            uint32_t kind = v->x[1][i];
            if (gi[i - i0] != NONE && kind <= UMG_RF_EVENT) {
                c->acc[(size_t)gi[i - i0] * c->K + (size_t)c->pos_fraud[kind]] += v->v[0][i];
            }
        }
    }
    return UMG_OK;
}

static int cells_reserve(qctx_t *c, cells_t *x, size_t ng)
{
    if (!x->direct || ng <= x->acap) {
        return UMG_OK;
    }
    size_t cap = x->acap ? x->acap : 256;
    while (cap < ng) {
        cap *= 2;
    }
    int64_t *na = big_realloc(c->scr, x->a, cap * x->w * sizeof(int64_t));
    if (na == NULL) {
        return UMG_ENOMEM;
    }
    memset(na + x->acap * x->w, 0, (cap - x->acap) * x->w * sizeof(int64_t));
    x->a = na;
    x->acap = cap;
    return UMG_OK;
}

static int scan_revenue(qctx_t *c)
{
    const umg_rollup_view_t *v = &c->in->tables[UMG_RT_REVENUE];
    cells_t *x = &c->rev;
    const size_t nc = c->ncur, dayw = x->w > nc;
    uint32_t gi[CHUNK];
    for (size_t i0 = 0; i0 < v->n; i0 += CHUNK) {
        size_t i1 = i0 + CHUNK < v->n ? i0 + CHUNK : v->n;
        int rc = chunk_groups(c, v, i0, i1, 0, gi);
        rc = rc ? rc : cells_reserve(c, x, c->ng);
        for (size_t i = i0; i < i1 && rc == UMG_OK; i++) {
            uint32_t g = gi[i - i0], cur;
            if (g == NONE) {
                continue;
            }
            rc = cur_of_id(c, v->x[0][i], &cur);
            if (rc == UMG_OK && x->direct) {
                size_t dayoff = dayw ? (size_t)(v->day[i] - c->from) : 0;
                int64_t *cell = &x->a[(size_t)g * x->w + dayoff * nc + cur];
                *cell = umg_add_sat(*cell, v->v[0][i]); /* amounts stop at the bounds, as on every path */
            } else if (rc == UMG_OK) {
                rc = cells_add(c, x, g, (uint32_t)(v->day[i] - c->from), cur, v->v[0][i]);
            }
        }
        if (rc != UMG_OK) {
            return rc;
        }
    }
    return UMG_OK;
}

static int scan_costs(qctx_t *c, cells_t *x)
{
    for (size_t i = 0; i < c->ncosts; i++) {
        const cost_t *r = &c->costs[i];
        uint32_t g = group_of(c, (uint32_t)(r->day - c->from), r->dim);
        int rc = g == NONE ? UMG_ENOMEM : cells_add(c, x, g, (uint32_t)(r->day - c->from), r->cur, r->micros);
        if (rc != UMG_OK) {
            return rc;
        }
    }
    return UMG_OK;
}

/* Converts a cell into its group's counter at pos, or keeps it as unconverted. */
static int convert_cell(qctx_t *c, uint32_t g, uint32_t dayoff, uint32_t cur, int64_t sum, void *arg)
{
    int pos = arg == &c->unrev ? c->pos_rev : c->pos_cost;
    int64_t v = 0;
    int rc = convert(c, dayoff, cur, sum, &v);
    if (rc == 1) {
        c->acc[(size_t)g * c->K + (size_t)pos] = umg_add_sat(c->acc[(size_t)g * c->K + (size_t)pos], v);
        return UMG_OK;
    }
    return rc < 0 ? rc : unconv_add(c, arg, g, cur, sum);
}

/* A metric of one group (or of the totals' counters a). *null for a ratio whose denominator is 0. */
static void metric_value(const qctx_t *c, const metric_t *m, const int64_t *a, int64_t *iv, double *dv, int *null)
{
    *null = 0;
    *iv = 0;
    *dv = 0;
    int64_t num = 0, den = 0;
    double scale = 1;
    switch (m->kind) {
    case MK_MAIN: *iv = a[c->pos_main[m->arg]]; return;
    case MK_EVENT: *iv = a[c->pos_ev[m->event][0]]; return;
    case MK_EVENT_UNIQUE: *iv = a[c->pos_ev[m->event][1]]; return;
    case MK_REVENUE: *iv = a[c->pos_rev]; return;
    case MK_COST: *iv = a[c->pos_cost]; return;
    case MK_FRAUD: *iv = a[c->pos_fraud[m->arg]]; return;
    default: break;
    }
    switch (m->arg) {
    case R_CTR: num = a[c->pos_main[UMG_RM_CLICKS]], den = a[c->pos_main[UMG_RM_IMPRESSIONS]]; break;
    case R_CONV: num = a[c->pos_main[UMG_RM_INSTALLS]], den = a[c->pos_main[UMG_RM_CLICKS]]; break;
    case R_ARPU: num = a[c->pos_rev], den = a[c->pos_main[UMG_RM_ACTIVE]], scale = 1e6; break;
    case R_ARPPU: num = a[c->pos_rev], den = a[c->pos_main[UMG_RM_PAYING]], scale = 1e6; break;
    case R_CPI: num = a[c->pos_cost], den = a[c->pos_main[UMG_RM_INSTALLS]], scale = 1e6; break;
    case R_ECPI:
        num = a[c->pos_cost];
        den = a[c->pos_main[UMG_RM_INSTALLS]] + a[c->pos_main[UMG_RM_ORGANIC_INSTALLS]];
        scale = 1e6;
        break;
    default: num = a[c->pos_rev], den = a[c->pos_cost]; break;
    }
    if (den == 0) {
        *null = 1;
        return;
    }
    *dv = (double)num / (double)den;
    if (scale != 1) {
        *dv = *dv / scale; /* docs/reports.md: (double)micros / (double)count / 1e6 */
    }
}

typedef struct sortkey_s {
    double d;
    int64_t i;
    uint32_t g, pos, null, rank;
} sortkey_t;

static int cmp_key(const void *a, const void *b, void *arg)
{
    const sortkey_t *x = a, *y = b;
    int desc = *(const int *)arg, r = 0;
    if (x->null != y->null) {
        return x->null ? 1 : -1; /* nulls last, either way */
    }
    if (!x->null) {
        r = x->d != y->d ? (x->d < y->d ? -1 : 1) : x->i != y->i ? (x->i < y->i ? -1 : 1) : 0;
        r = r != 0 ? r : x->rank < y->rank ? -1 : x->rank > y->rank;
    }
    if (r != 0) {
        return desc ? -r : r;
    }
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static int cmp_gkey(const void *a, const void *b, void *arg)
{
    const qctx_t *c = arg;
    const uint32_t *x = c->gkey + (size_t) * (const uint32_t *)a * c->k,
                   *y = c->gkey + (size_t) * (const uint32_t *)b * c->k;
    for (size_t j = 0; j < c->k; j++) {
        if (x[j] != y[j]) {
            return x[j] < y[j] ? -1 : 1;
        }
    }
    return 0;
}

/* The groups in answer order: group_by order ascending, then by sort. */
static int order_groups(qctx_t *c, uint32_t **out)
{
    uint32_t *ord = big_alloc(c->scr, (c->ng ? c->ng : 1) * sizeof(uint32_t));
    if (ord == NULL) {
        return UMG_ENOMEM;
    }
    size_t n = 0;
    if (c->direct) {
        for (uint64_t s = 0; s < c->P; s++) {
            if (c->gslot[s] != NONE) {
                ord[n++] = c->gslot[s];
            }
        }
    } else {
        for (size_t g = 0; g < c->ng; g++) {
            ord[n++] = (uint32_t)g;
        }
        qsort_r(ord, n, sizeof(uint32_t), cmp_gkey, c);
    }
    const umg_query_t *q = c->q;
    if (q->kind == UMG_QUERY_OVERVIEW && (q->sort_dim >= 0 || q->sort_metric >= 0) && n > 1) {
        sortkey_t *k = umg_malloc(n * sizeof(*k));
        if (k == NULL) {
            big_free(c->scr, ord);
            return UMG_ENOMEM;
        }
        size_t jdim = 0;
        for (size_t j = 0; j < c->k; j++) {
            jdim = c->gd[j] == q->sort_dim ? j : jdim;
        }
        for (size_t i = 0; i < n; i++) {
            int null = 0;
            memset(&k[i], 0, sizeof(k[i]));
            k[i].g = ord[i];
            k[i].pos = (uint32_t)i;
            if (q->sort_dim >= 0) {
                k[i].rank = c->gkey[(size_t)ord[i] * c->k + jdim];
            } else {
                metric_value(c, &q->m[q->sort_metric], c->acc + (size_t)ord[i] * c->K, &k[i].i, &k[i].d, &null);
            }
            k[i].null = (uint32_t)null;
        }
        int desc = q->sort_desc;
        qsort_r(k, n, sizeof(*k), cmp_key, &desc);
        for (size_t i = 0; i < n; i++) {
            ord[i] = k[i].g;
        }
        umg_free(k);
    }
    *out = ord;
    return UMG_OK;
}

static int put_metric(qctx_t *c, umg_buf_t *o, const metric_t *m, const int64_t *a, int csv)
{
    int64_t iv;
    double dv;
    int null;
    metric_value(c, m, a, &iv, &dv, &null);
    if (null) {
        return csv ? UMG_OK : umg_buf_append(o, "null", 4);
    }
    if (m->kind == MK_RATIO) {
        return put_double(o, dv);
    }
    if (m->kind == MK_REVENUE || m->kind == MK_COST) {
        return put_amount(o, iv);
    }
    return umg_buf_i64(o, iv);
}

static int put_row_json(qctx_t *c, umg_buf_t *o, uint32_t g, const int64_t *a, const int64_t *tot_rev,
                        const int64_t *tot_cost)
{
    int rc = umg_buf_putc(o, '{');
    rc = rc ? rc : g != NONE ? put_dims_json(c, o, g) : UMG_OK;
    int first = g == NONE || c->k == 0;
    for (size_t i = 0; i < c->q->nm && rc == UMG_OK; i++) {
        rc = umg_buf_printf(o, "%s", first && i == 0 ? "" : ",");
        rc = rc ? rc : umg_buf_json_str(o, c->q->m[i].name.ptr, c->q->m[i].name.len);
        rc = rc ? rc : umg_buf_putc(o, ':');
        rc = rc ? rc : put_metric(c, o, &c->q->m[i], a, 0);
    }
    rc = rc ? rc : put_unconv_json(c, o, &c->unrev, g, tot_rev, "revenue_unconverted", 0);
    rc = rc ? rc : put_unconv_json(c, o, &c->uncost, g, tot_cost, "cost_unconverted", 0);
    return rc ? rc : umg_buf_putc(o, '}');
}

static int put_overview_json(qctx_t *c, umg_buf_t *o, const uint32_t *ord, size_t n, const int64_t *tot,
                             const int64_t *tot_rev, const int64_t *tot_cost)
{
    int rc = put_head(c, o);
    rc = rc ? rc : umg_buf_printf(o, ",\"metrics\":[");
    for (size_t i = 0; i < c->q->nm && rc == UMG_OK; i++) {
        rc = i ? umg_buf_putc(o, ',') : UMG_OK;
        rc = rc ? rc : umg_buf_json_str(o, c->q->m[i].name.ptr, c->q->m[i].name.len);
    }
    rc = rc ? rc : umg_buf_printf(o, "],\"rows\":[");
    for (size_t i = 0; i < n && rc == UMG_OK; i++) {
        rc = i ? umg_buf_putc(o, ',') : UMG_OK;
        rc = rc ? rc : put_row_json(c, o, ord[i], c->acc + (size_t)ord[i] * c->K, NULL, NULL);
    }
    rc = rc ? rc : umg_buf_printf(o, "],\"totals\":");
    rc = rc ? rc : put_row_json(c, o, NONE, tot, tot_rev, tot_cost);
    return rc ? rc : umg_buf_printf(o, ",\"truncated\":%s}\n", n < c->ng ? "true" : "false");
}

static int put_overview_csv(qctx_t *c, umg_buf_t *o, const uint32_t *ord, size_t n, const int64_t *tot,
                            const int64_t *tot_rev, const int64_t *tot_cost)
{
    int rc = UMG_OK;
    size_t col = 0;
    for (size_t j = 0; j < c->k && rc == UMG_OK; j++) {
        rc = umg_buf_printf(o, "%s%s", col++ ? "," : "", dim_names[c->gd[j]]);
    }
    for (size_t i = 0; i < c->q->nm && rc == UMG_OK; i++) {
        rc = col++ ? umg_buf_putc(o, ',') : UMG_OK;
        rc = rc ? rc : umg_buf_csv_field(o, c->q->m[i].name);
    }
    const unconv_t *un[2] = {&c->unrev, &c->uncost};
    static const char *const unname[2] = {"revenue", "cost"};
    for (int u = 0; u < 2; u++) {
        for (uint32_t cur = 0; un[u]->any != NULL && cur < c->ncur && rc == UMG_OK; cur++) {
            rc = un[u]->any[cur] ? umg_buf_printf(o, ",%s:%s", unname[u], c->cur[cur]) : UMG_OK;
        }
    }
    rc = rc ? rc : umg_buf_putc(o, '\n');
    /* the rows, then the totals (NONE) whose first dimension column says "total" */
    for (size_t i = 0; i <= n && rc == UMG_OK; i++) {
        uint32_t g = i < n ? ord[i] : NONE;
        const int64_t *a = g != NONE ? c->acc + (size_t)g * c->K : tot;
        if (g == NONE && c->k == 0) {
            break; /* without dimensions the one row is the totals */
        }
        col = 0;
        for (size_t j = 0; j < c->k && rc == UMG_OK; j++) {
            char t[11];
            rc = col++ ? umg_buf_putc(o, ',') : UMG_OK;
            rc = rc          ? rc
                 : g != NONE ? umg_buf_csv_field(o, dim_text(c, g, j, t))
                 : j == 0    ? umg_buf_append(o, "total", 5)
                             : UMG_OK;
        }
        for (size_t m = 0; m < c->q->nm && rc == UMG_OK; m++) {
            rc = col++ ? umg_buf_putc(o, ',') : UMG_OK;
            rc = rc ? rc : put_metric(c, o, &c->q->m[m], a, 1);
        }
        for (int u = 0; u < 2; u++) {
            const int64_t *tu = u == 0 ? tot_rev : tot_cost;
            for (uint32_t cur = 0; un[u]->any != NULL && cur < c->ncur && rc == UMG_OK; cur++) {
                if (!un[u]->any[cur]) {
                    continue;
                }
                int64_t v = g == NONE ? tu[cur] : unconv_get(un[u], g, cur);
                rc = umg_buf_putc(o, ',');
                rc = rc ? rc : v != 0 ? put_amount(o, v) : UMG_OK;
            }
        }
        rc = rc ? rc : umg_buf_putc(o, '\n');
    }
    return rc;
}

/* The totals: every group's counters summed, and the unconverted amounts per currency. */
static int totals_of(qctx_t *c, int64_t **tot, int64_t **tot_rev, int64_t **tot_cost)
{
    size_t nc = c->ncur ? c->ncur : 1;
    *tot = umg_calloc(c->K, sizeof(int64_t));
    *tot_rev = umg_calloc(nc, sizeof(int64_t));
    *tot_cost = umg_calloc(nc, sizeof(int64_t));
    if (*tot == NULL || *tot_rev == NULL || *tot_cost == NULL) {
        return UMG_ENOMEM;
    }
    for (size_t g = 0; g < c->ng; g++) {
        for (size_t i = 0; i < c->K; i++) {
            (*tot)[i] = umg_add_sat((*tot)[i], c->acc[g * c->K + i]);
        }
    }
    const unconv_t *un[2] = {&c->unrev, &c->uncost};
    int64_t *tu[2] = {*tot_rev, *tot_cost};
    for (int u = 0; u < 2; u++) {
        for (size_t i = 0; i < un[u]->m.cap; i++) {
            if (un[u]->m.keys[i] != U64_EMPTY) {
                tu[u][un[u]->m.keys[i] & 0xffff] =
                    umg_add_sat(tu[u][un[u]->m.keys[i] & 0xffff], (int64_t)un[u]->m.vals[i]);
            }
        }
    }
    return UMG_OK;
}

static int run_overview(qctx_t *c, umg_buf_t *out)
{
    const umg_query_t *q = c->q;
    const umg_rollup_view_t *t = c->in->tables;
    int main_needed = (q->needs & 0xffffu) != 0;
    int rev_needed = (q->needs & N_REV) != 0;
    overview_layout(c);
    fast_init(c);
    int costs_needed = (q->needs & N_COST) != 0;
    int rc = c->fast.on     ? fast_scan(c, main_needed, rev_needed, costs_needed)
             : costs_needed ? load_costs(c, q->to)
                            : UMG_OK;
    int fast = c->fast.on; /* still: the cells held */
    rc = rc ? rc : main_needed && !fast ? prepass_view(c, &t[UMG_RT_MAIN], -1, 0) : UMG_OK;
    rc = rc ? rc : q->nev ? prepass_view(c, &t[UMG_RT_EVENT], -1, 1) : UMG_OK;
    rc = rc ? rc : rev_needed && !fast ? prepass_view(c, &t[UMG_RT_REVENUE], 0, 0) : UMG_OK;
    rc = rc ? rc : q->needs & N_FRAUD ? prepass_view(c, &t[UMG_RT_FRAUD], -1, 0) : UMG_OK;
    rc = rc ? rc : prepass_costs(c);
    rc = rc ? rc : groups_init(c);
    rc = rc ? rc : factors_init(c, (int32_t)c->span);
    if (rc == UMG_OK) {
        cells_init(c, &c->rev);
        cells_init(c, &c->cost);
    }
    rc = rc ? rc : fast ? fast_groups(c) : UMG_OK;
    rc = rc ? rc : main_needed && !fast ? scan_main(c) : UMG_OK;
    rc = rc ? rc : scan_events(c);
    rc = rc ? rc : q->needs & N_FRAUD ? scan_fraud(c) : UMG_OK;
    rc = rc ? rc : rev_needed && !fast ? scan_revenue(c) : UMG_OK;
    rc = rc ? rc : scan_costs(c, &c->cost);
    rc = rc ? rc : cells_each(c, &c->rev, convert_cell, &c->unrev);
    rc = rc ? rc : cells_each(c, &c->cost, convert_cell, &c->uncost);
    uint32_t *ord = NULL;
    int64_t *tot = NULL, *tot_rev = NULL, *tot_cost = NULL;
    rc = rc ? rc : order_groups(c, &ord);
    rc = rc ? rc : totals_of(c, &tot, &tot_rev, &tot_cost);
    size_t n = c->ng < q->limit ? c->ng : q->limit;
    if (rc == UMG_OK) {
        rc = q->csv ? put_overview_csv(c, out, ord, n, tot, tot_rev, tot_cost)
                    : put_overview_json(c, out, ord, n, tot, tot_rev, tot_cost);
    }
    big_free(c->scr, ord);
    umg_free(tot);
    umg_free(tot_rev);
    umg_free(tot_cost);
    return rc;
}

/* -------------------------------------------------------------- cohorts */

/* A group's counters: [0] size, then per requested day j: num, den, reach (cohorts that reached it). */
#define C_NUM(c, j) (1 + (j))
#define C_DEN(c, j) (1 + (c)->q->ndays + (j))
#define C_REACH(c, j) (1 + 2 * (c)->q->ndays + (j))

static inline int reached(const qctx_t *c, uint32_t dayoff, uint32_t n)
{
    return (int64_t)c->from + dayoff + n <= (int64_t)c->in->today;
}

static int scan_cohort_sizes(qctx_t *c)
{
    const umg_rollup_view_t *v = &c->in->tables[UMG_RT_COHORT];
    u64map_t cells = {0};
    int rc = UMG_OK;
    for (size_t i = 0; i < v->n && rc == UMG_OK; i++) {
        uint32_t dayoff = (uint32_t)(v->day[i] - c->from);
        if (dayoff >= c->span || !row_ok(c, v, i)) {
            continue;
        }
        uint32_t g = view_group(c, v, i, dayoff);
        uint64_t *p = g != NONE ? u64map_at(&cells, (uint64_t)g << 32 | dayoff, 0) : NULL;
        if (p == NULL) {
            rc = UMG_ENOMEM;
            break;
        }
        c->acc[(size_t)g * c->K] += v->v[0][i];
        *p = (uint64_t)umg_add_sat((int64_t)*p, v->v[0][i]);
    }
    /* which cohorts of each group reached each requested day, and their sizes */
    for (size_t i = 0; i < cells.cap && rc == UMG_OK; i++) {
        if (cells.keys[i] == U64_EMPTY) {
            continue;
        }
        uint32_t g = (uint32_t)(cells.keys[i] >> 32), dayoff = (uint32_t)cells.keys[i];
        int64_t *a = c->acc + (size_t)g * c->K;
        for (size_t j = 0; j < c->q->ndays; j++) {
            if (reached(c, dayoff, c->q->days[j])) {
                a[C_REACH(c, j)]++;
                a[C_DEN(c, j)] += c->q->cmetric == CM_RETENTION ? (int64_t)cells.vals[i] : 0;
            }
        }
    }
    u64map_free(&cells);
    return rc;
}

static int scan_cohort_days(qctx_t *c, const int8_t *jof)
{
    const umg_rollup_view_t *v = &c->in->tables[UMG_RT_COHORT_DAY];
    const int64_t *col = v->v[c->q->cmetric == CM_SESSIONS ? 1 : 0];
    for (size_t i = 0; i < v->n; i++) {
        uint32_t dayoff = (uint32_t)(v->day[i] - c->from), n = v->x[0][i];
        if (dayoff >= c->span || n >= UMG_ROLLUP_COHORT_DAYS || jof[n] < 0 || !reached(c, dayoff, n) ||
            (c->nfd && !row_ok(c, v, i))) {
            continue;
        }
        uint32_t g = view_group(c, v, i, dayoff);
        if (g == NONE) {
            return UMG_ENOMEM;
        }
        c->acc[(size_t)g * c->K + C_NUM(c, (size_t)jof[n])] =
            umg_add_sat(c->acc[(size_t)g * c->K + C_NUM(c, (size_t)jof[n])], col[i]);
    }
    return UMG_OK;
}

/* Revenue per (group, install day, day N, currency), converted at the rate of install day + N. */
static int scan_cohort_revenue(qctx_t *c, uint32_t maxn)
{
    const umg_rollup_view_t *v = &c->in->tables[UMG_RT_COHORT_REV];
    u64map_t cells = {0};
    int rc = UMG_OK;
    for (size_t i = 0; i < v->n && rc == UMG_OK; i++) {
        uint32_t dayoff = (uint32_t)(v->day[i] - c->from), n = v->x[0][i], cur;
        if (dayoff >= c->span || n > maxn || !reached(c, dayoff, n) || !row_ok(c, v, i)) {
            continue;
        }
        uint32_t g = view_group(c, v, i, dayoff);
        rc = g == NONE ? UMG_ENOMEM : cur_of_id(c, v->x[1][i], &cur);
        uint64_t *p = rc == UMG_OK ? u64map_at(&cells, (uint64_t)g << 32 | dayoff << 23 | n << 15 | cur, 0) : NULL;
        if (p == NULL) {
            rc = rc ? rc : UMG_ENOMEM;
            break;
        }
        *p = (uint64_t)umg_add_sat((int64_t)*p, v->v[0][i]);
    }
    for (size_t i = 0; i < cells.cap && rc == UMG_OK; i++) {
        uint64_t key = cells.keys[i];
        int64_t sum = (int64_t)cells.vals[i], conv;
        if (key == U64_EMPTY || sum == 0) {
            continue;
        }
        uint32_t g = (uint32_t)(key >> 32), dayoff = (uint32_t)(key >> 23 & 0x1ff), n = (uint32_t)(key >> 15 & 0xff),
                 cur = (uint32_t)(key & 0x7fff);
        rc = convert(c, dayoff + n, cur, sum, &conv);
        if (rc == 0) {
            rc = unconv_add(c, &c->unrev, g, cur, sum);
            continue;
        }
        rc = rc < 0 ? rc : UMG_OK;
        int64_t *a = c->acc + (size_t)g * c->K;
        for (size_t j = 0; j < c->q->ndays && rc == UMG_OK; j++) {
            uint32_t nj = c->q->days[j];
            if (c->q->cmetric == CM_REVENUE ? nj == n : nj >= n && reached(c, dayoff, nj)) {
                a[C_NUM(c, j)] = umg_add_sat(a[C_NUM(c, j)], conv);
            }
        }
    }
    u64map_free(&cells);
    return rc;
}

/* A cohort's cost (its install day's cost rows) counts for day N when the cohort reached N. */
static int cohort_cost_cell(qctx_t *c, uint32_t g, uint32_t dayoff, uint32_t cur, int64_t sum, void *arg)
{
    (void)arg;
    int64_t conv;
    int rc = convert(c, dayoff, cur, sum, &conv);
    if (rc <= 0) { /* without a rate: shown apart, for a cohort that reached its install day (as revenue) */
        return rc < 0 || !reached(c, dayoff, 0) ? rc : unconv_add(c, &c->uncost, g, cur, sum);
    }
    int64_t *a = c->acc + (size_t)g * c->K;
    for (size_t j = 0; j < c->q->ndays; j++) {
        if (reached(c, dayoff, c->q->days[j])) {
            a[C_DEN(c, j)] = umg_add_sat(a[C_DEN(c, j)], conv);
        }
    }
    return UMG_OK;
}

static int put_cohort_value(qctx_t *c, umg_buf_t *o, const int64_t *a, size_t j, int csv)
{
    int64_t num = a[C_NUM(c, j)], den = a[C_DEN(c, j)];
    int null = a[C_REACH(c, j)] == 0 || ((c->q->cmetric == CM_RETENTION || c->q->cmetric == CM_ROAS) && den == 0);
    if (null) {
        return csv ? UMG_OK : umg_buf_append(o, "null", 4);
    }
    switch (c->q->cmetric) {
    case CM_RETENTION:
    case CM_ROAS: return put_double(o, (double)num / (double)den);
    case CM_SESSIONS: return umg_buf_i64(o, num);
    default: return put_amount(o, num);
    }
}

/* "size":N,"values":[...] of a group's counters a (or the totals'). */
static int put_cohort_values_json(qctx_t *c, umg_buf_t *o, const int64_t *a)
{
    int rc = umg_buf_printf(o, "\"size\":%" PRId64 ",\"values\":[", a[0]);
    for (size_t j = 0; j < c->q->ndays && rc == UMG_OK; j++) {
        rc = j ? umg_buf_putc(o, ',') : UMG_OK;
        rc = rc ? rc : put_cohort_value(c, o, a, j, 0);
    }
    return rc ? rc : umg_buf_putc(o, ']');
}

static int put_cohorts_json(qctx_t *c, umg_buf_t *o, const uint32_t *ord, const int64_t *tot, const int64_t *tot_rev,
                            const int64_t *tot_cost)
{
    char today[11];
    umg_date_format(c->in->today, today);
    int rc = put_head(c, o);
    rc = rc ? rc
            : umg_buf_printf(o, ",\"today\":\"%s\",\"metric\":\"%s\",\"days\":[", today, cmetric_names[c->q->cmetric]);
    for (size_t j = 0; j < c->q->ndays && rc == UMG_OK; j++) {
        rc = umg_buf_printf(o, "%s%u", j ? "," : "", c->q->days[j]);
    }
    rc = rc ? rc : umg_buf_printf(o, "],\"rows\":[");
    for (size_t i = 0; i < c->ng && rc == UMG_OK; i++) {
        uint32_t g = ord[i];
        const int64_t *a = c->acc + (size_t)g * c->K;
        rc = umg_buf_printf(o, "%s{", i ? "," : "");
        rc = rc ? rc : put_dims_json(c, o, g);
        rc = rc ? rc : c->k ? umg_buf_putc(o, ',') : UMG_OK;
        rc = rc ? rc : put_cohort_values_json(c, o, a);
        rc = rc ? rc : put_unconv_json(c, o, &c->unrev, g, NULL, "revenue_unconverted", 0);
        rc = rc ? rc : put_unconv_json(c, o, &c->uncost, g, NULL, "cost_unconverted", 0);
        rc = rc ? rc : umg_buf_putc(o, '}');
    }
    /* the totals: every cohort of the period together (what group_by= answers as its one row) */
    rc = rc ? rc : umg_buf_printf(o, "],\"totals\":{");
    rc = rc ? rc : put_cohort_values_json(c, o, tot);
    rc = rc ? rc : put_unconv_json(c, o, &c->unrev, NONE, tot_rev, "revenue_unconverted", 0);
    rc = rc ? rc : put_unconv_json(c, o, &c->uncost, NONE, tot_cost, "cost_unconverted", 0);
    return rc ? rc : umg_buf_printf(o, "}}\n");
}

static int put_cohorts_csv(qctx_t *c, umg_buf_t *o, const uint32_t *ord, const int64_t *tot, const int64_t *tot_rev,
                           const int64_t *tot_cost)
{
    int rc = UMG_OK;
    for (size_t j = 0; j < c->k && rc == UMG_OK; j++) {
        rc = umg_buf_printf(o, "%s,", dim_names[c->gd[j]]);
    }
    rc = rc ? rc : umg_buf_printf(o, "size");
    for (size_t j = 0; j < c->q->ndays && rc == UMG_OK; j++) {
        rc = umg_buf_printf(o, ",d%u", c->q->days[j]);
    }
    const unconv_t *un[2] = {&c->unrev, &c->uncost};
    static const char *const unname[2] = {"revenue", "cost"};
    for (int u = 0; u < 2; u++) {
        for (uint32_t cur = 0; un[u]->any != NULL && cur < c->ncur && rc == UMG_OK; cur++) {
            rc = un[u]->any[cur] ? umg_buf_printf(o, ",%s:%s", unname[u], c->cur[cur]) : UMG_OK;
        }
    }
    rc = rc ? rc : umg_buf_putc(o, '\n');
    for (size_t i = 0; i < c->ng && rc == UMG_OK; i++) {
        uint32_t g = ord[i];
        const int64_t *a = c->acc + (size_t)g * c->K;
        for (size_t j = 0; j < c->k && rc == UMG_OK; j++) {
            char t[11];
            rc = umg_buf_csv_field(o, dim_text(c, g, j, t));
            rc = rc ? rc : umg_buf_putc(o, ',');
        }
        rc = rc ? rc : umg_buf_i64(o, a[0]);
        for (size_t j = 0; j < c->q->ndays && rc == UMG_OK; j++) {
            rc = umg_buf_putc(o, ',');
            rc = rc ? rc : put_cohort_value(c, o, a, j, 1);
        }
        for (int u = 0; u < 2; u++) {
            for (uint32_t cur = 0; un[u]->any != NULL && cur < c->ncur && rc == UMG_OK; cur++) {
                int64_t v = un[u]->any[cur] ? unconv_get(un[u], g, cur) : 0;
                rc = un[u]->any[cur] ? umg_buf_putc(o, ',') : UMG_OK;
                rc = rc ? rc : v != 0 ? put_amount(o, v) : UMG_OK;
            }
        }
        rc = rc ? rc : umg_buf_putc(o, '\n');
    }
    /* the totals' line, whose first dimension column says "total" (without dimensions the one row is it) */
    for (size_t j = 0; c->k > 0 && j < c->k && rc == UMG_OK; j++) {
        rc = umg_buf_printf(o, "%s,", j == 0 ? "total" : "");
    }
    rc = rc || c->k == 0 ? rc : umg_buf_i64(o, tot[0]);
    for (size_t j = 0; c->k > 0 && j < c->q->ndays && rc == UMG_OK; j++) {
        rc = umg_buf_putc(o, ',');
        rc = rc ? rc : put_cohort_value(c, o, tot, j, 1);
    }
    const int64_t *tu[2] = {tot_rev, tot_cost};
    for (int u = 0; c->k > 0 && u < 2; u++) {
        for (uint32_t cur = 0; un[u]->any != NULL && cur < c->ncur && rc == UMG_OK; cur++) {
            rc = un[u]->any[cur] ? umg_buf_putc(o, ',') : UMG_OK;
            rc = rc ? rc : un[u]->any[cur] && tu[u][cur] != 0 ? put_amount(o, tu[u][cur]) : UMG_OK;
        }
    }
    return rc || c->k == 0 ? rc : umg_buf_putc(o, '\n');
}

static int run_cohorts(qctx_t *c, umg_buf_t *out)
{
    const umg_query_t *q = c->q;
    const umg_rollup_view_t *t = c->in->tables;
    int8_t jof[UMG_ROLLUP_COHORT_DAYS];
    uint32_t maxn = 0;
    memset(jof, -1, sizeof(jof));
    for (size_t j = 0; j < q->ndays; j++) {
        jof[q->days[j]] = (int8_t)j;
        maxn = q->days[j] > maxn ? q->days[j] : maxn;
    }
    c->K = 1 + 3 * q->ndays;
    int days_needed = q->cmetric == CM_RETENTION || q->cmetric == CM_SESSIONS;
    int rc = q->needs & N_COST ? load_costs(c, q->to) : UMG_OK;
    rc = rc ? rc : prepass_view(c, &t[UMG_RT_COHORT], -1, 0);
    rc = rc ? rc : days_needed ? prepass_view(c, &t[UMG_RT_COHORT_DAY], -1, 0) : UMG_OK;
    rc = rc ? rc : q->needs & N_REV ? prepass_view(c, &t[UMG_RT_COHORT_REV], 1, 0) : UMG_OK;
    rc = rc ? rc : prepass_costs(c);
    rc = rc ? rc : groups_init(c);
    rc = rc ? rc : factors_init(c, (int32_t)c->span + UMG_ROLLUP_COHORT_DAYS);
    rc = rc ? rc : scan_cohort_sizes(c);
    rc = rc ? rc : days_needed ? scan_cohort_days(c, jof) : UMG_OK;
    rc = rc ? rc : q->needs & N_REV ? scan_cohort_revenue(c, maxn) : UMG_OK;
    if (rc == UMG_OK && q->needs & N_COST) {
        cells_init(c, &c->cost);
        rc = scan_costs(c, &c->cost);
        rc = rc ? rc : cells_each(c, &c->cost, cohort_cost_cell, NULL);
    }
    uint32_t *ord = NULL;
    int64_t *tot = NULL, *tot_rev = NULL, *tot_cost = NULL;
    rc = rc ? rc : order_groups(c, &ord);
    rc = rc ? rc : totals_of(c, &tot, &tot_rev, &tot_cost);
    if (rc == UMG_OK) {
        rc = q->csv ? put_cohorts_csv(c, out, ord, tot, tot_rev, tot_cost)
                    : put_cohorts_json(c, out, ord, tot, tot_rev, tot_cost);
    }
    big_free(c->scr, ord);
    umg_free(tot);
    umg_free(tot_rev);
    umg_free(tot_cost);
    return rc;
}

/* ------------------------------------------------------------------ run */

int umg_query_run(const umg_query_t *q, const umg_query_input_t *in, umg_buf_t *out)
{
    qctx_t *c = umg_calloc(1, sizeof(*c));
    if (c == NULL) {
        return UMG_ENOMEM;
    }
    umg_query_input_t reeng;
    if (q->reeng) { /* the same report over the re-engagement credit's tables (their layouts are the same) */
        reeng = *in;
        reeng.tables[UMG_RT_MAIN] = in->tables[UMG_RT_REENG_MAIN];
        reeng.tables[UMG_RT_REVENUE] = in->tables[UMG_RT_REENG_REVENUE];
        reeng.tables[UMG_RT_EVENT] = in->tables[UMG_RT_REENG_EVENT];
        in = &reeng;
    }
    c->q = q;
    c->in = in;
    c->from = q->from;
    c->span = (uint32_t)(q->to - q->from + 1);
    umg_arena_init(&c->arena, 16384);
    scratch_t *own = NULL; /* without the caller's scratch, one for this report (NULL: allocate plainly) */
    c->scr = in->scratch != NULL ? in->scratch : (own = umg_calloc(1, sizeof(scratch_t)));
    int rc = setup(c);
    if (rc == UMG_OK) {
        rc = q->kind == UMG_QUERY_OVERVIEW ? run_overview(c, out) : run_cohorts(c, out);
    }
    for (int d = 0; d < UMG_RD_N; d++) {
        umg_free(c->fids[d]);
        dmap_free(&c->dm[d]);
    }
    u64map_free(&c->strids);
    u64map_free(&c->rtcamp);
    dmap_free(&c->curmap);
    umg_free(c->strs);
    umg_free(c->strid);
    umg_free(c->sidmap);
    umg_free(c->virt);
    umg_free(c->cur);
    umg_free(c->fac);
    big_free(c->scr, c->gslot);
    umg_free(c->tslot);
    big_free(c->scr, c->gkey);
    big_free(c->scr, c->acc);
    big_free(c->scr, c->costs);
    cells_free(c, &c->rev);
    cells_free(c, &c->cost);
    fast_free(c->scr, &c->fast);
    unconv_free(&c->unrev);
    unconv_free(&c->uncost);
    umg_arena_free(&c->arena);
    big_drop(own);
    umg_free(c);
    return rc;
}
