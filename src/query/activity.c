/*
 * activity.c - the activity report behind GET /v1/reports/activity
 * (docs/reports.md, "Activity"): DAU, trailing WAU and MAU, stickiness, and
 * new and returning devices of the whole app, per local day, ISO week or
 * calendar month, read from the app's UMG_RT_ACTIVITY rollup rows (kept by
 * src/pipeline roll_activity).
 *
 * The trailing windows are stored as changes (+1 on the first day a device
 * counts in a window, -1 after the last), so the WAU or MAU of a day is the
 * sum of every change up to it: the scan adds the changes before the period
 * into a base, and those inside it into per-day slots that are then summed
 * in order. Every other figure is read from its own row. Pure: the caller
 * passes today and the rows.
 */
#include "umg_query.h"

#include <inttypes.h>

typedef enum { IV_DAY = 0, IV_WEEK, IV_MONTH } interval_t;
static const char *const interval_names[] = {"day", "week", "month"};

struct umg_query_activity_s {
    int32_t from, to;
    interval_t interval;
    int csv;
};

static int fail(umg_query_error_t *err, const char *code, const char *field, const char *msg)
{
    err->code = code;
    err->field = field;
    snprintf(err->message, sizeof(err->message), "%s", msg);
    return UMG_EINVAL;
}

int umg_query_activity_parse(const umg_query_activity_params_t *p, umg_query_activity_t **out, umg_query_error_t *err)
{
    umg_query_activity_t a = {.interval = IV_DAY};
    int rc = umg_query_parse_period(p->from, p->to, &a.from, &a.to, err);
    if (rc == UMG_OK && p->interval.ptr != NULL) {
        int found = 0;
        for (size_t i = 0; i < UMG_ARRAY_SIZE(interval_names); i++) {
            if (umg_slice_eq(p->interval, interval_names[i])) {
                a.interval = (interval_t)i;
                found = 1;
            }
        }
        rc = found ? UMG_OK : fail(err, "invalid_value", "interval", "interval must be day, week or month");
    }
    if (rc == UMG_OK && p->format.ptr != NULL) {
        if (umg_slice_eq(p->format, "csv")) {
            a.csv = 1;
        } else if (!umg_slice_eq(p->format, "json")) {
            rc = fail(err, "invalid_value", "format", "format must be json or csv");
        }
    }
    if (rc != UMG_OK) {
        return rc;
    }
    umg_query_activity_t *q = umg_malloc(sizeof(*q));
    if (q == NULL) {
        return UMG_ENOMEM;
    }
    *q = a;
    *out = q;
    return UMG_OK;
}

void umg_query_activity_free(umg_query_activity_t *a)
{
    umg_free(a);
}

int umg_query_activity_is_csv(const umg_query_activity_t *a)
{
    return a->csv;
}

/* ------------------------------------------------------------- periods */

static int32_t period_start(interval_t iv, int32_t day)
{
    return iv == IV_WEEK ? umg_date_week_start(day) : iv == IV_MONTH ? umg_date_month_start(day) : day;
}

/* The first day after the period that starts on start. A month has at most 31 days, so start + 31 is in the next. */
static int32_t period_next(interval_t iv, int32_t start)
{
    return iv == IV_WEEK ? start + 7 : iv == IV_MONTH ? umg_date_month_start(start + 31) : start + 1;
}

/* ---------------------------------------------------------------- scan */

/* Per-day figures over [lo, hi]: a row's day minus lo indexes them. */
typedef struct days_s {
    int32_t lo, hi;
    int64_t base7, base30; /* window changes before lo */
    int64_t *dau, *nw;     /* UMG_RA_DAY v[0], v[1] */
    int64_t *w7, *w30;     /* window changes on the day, then (once scanned) the windows themselves */
    int64_t *pact, *pnew;  /* UMG_RA_WEEK or UMG_RA_MONTH v[0], v[1] at the period's first day */
} days_t;

static void scan(days_t *s, const umg_rollup_view_t *v, interval_t iv)
{
    uint32_t pkind = iv == IV_WEEK ? UMG_RA_WEEK : UMG_RA_MONTH;
    for (size_t i = 0; i < v->n; i++) {
        int32_t day = v->day[i];
        uint32_t kind = v->x[0][i];
        int in = day >= s->lo && day <= s->hi;
        size_t off = in ? (size_t)(day - s->lo) : 0;
        int64_t a = v->v[0][i], b = v->v[1][i];
        if (kind == UMG_RA_DAY && in) {
            s->dau[off] += a;
            s->nw[off] += b;
        } else if (kind == UMG_RA_WEEK7 || kind == UMG_RA_MONTH30) {
            int64_t *base = kind == UMG_RA_WEEK7 ? &s->base7 : &s->base30;
            int64_t *at = kind == UMG_RA_WEEK7 ? s->w7 : s->w30;
            if (day < s->lo) {
                *base += a;
            } else if (in) {
                at[off] += a;
            }
        } else if (iv != IV_DAY && kind == pkind && in) {
            s->pact[off] += a;
            s->pnew[off] += b;
        }
    }
    int64_t w7 = s->base7, w30 = s->base30;
    for (size_t off = 0; off <= (size_t)(s->hi - s->lo); off++) {
        w7 += s->w7[off];
        w30 += s->w30[off];
        s->w7[off] = w7;
        s->w30[off] = w30;
    }
}

/* ------------------------------------------------------------- writing */

static int put_ratio(umg_buf_t *o, double num, int64_t den, int csv)
{
    if (den == 0) {
        return csv ? UMG_OK : umg_buf_append(o, "null", 4);
    }
    return umg_buf_printf(o, "%.17g", num / (double)den);
}

static int put_head(const umg_query_activity_t *a, const umg_query_activity_input_t *in, umg_buf_t *o)
{
    static const char *const csv_head[] = {"day,dau,wau,mau,stickiness,new,returning\n",
                                           "week,active,avg_dau,stickiness,new,returning\n",
                                           "month,active,avg_dau,stickiness,new,returning\n"};
    if (a->csv) {
        return umg_buf_printf(o, "%s", csv_head[a->interval]);
    }
    char f[11], t[11], today[11];
    umg_date_format(a->from, f);
    umg_date_format(a->to, t);
    umg_date_format(in->today, today);
    int rc = umg_buf_printf(o, "{\"app\":");
    rc = rc ? rc : umg_buf_json_str(o, in->app, strlen(in->app));
    rc = rc ? rc : umg_buf_printf(o, ",\"from\":\"%s\",\"to\":\"%s\",\"timezone\":", f, t);
    rc = rc ? rc : umg_buf_json_str(o, in->timezone, strlen(in->timezone));
    return rc ? rc
              : umg_buf_printf(o, ",\"today\":\"%s\",\"interval\":\"%s\",\"rows\":[", today,
                               interval_names[a->interval]);
}

/* One day: day, dau, wau, mau, stickiness, new, returning. */
static int put_day(const umg_query_activity_t *a, const days_t *s, int32_t day, int first, umg_buf_t *o)
{
    size_t off = (size_t)(day - s->lo);
    int64_t dau = s->dau[off], nw = s->nw[off];
    char d[11];
    umg_date_format(day, d);
    int rc = a->csv ? umg_buf_printf(o, "%s,%" PRId64 ",%" PRId64 ",%" PRId64 ",", d, dau, s->w7[off], s->w30[off])
                    : umg_buf_printf(o,
                                     "%s{\"day\":\"%s\",\"dau\":%" PRId64 ",\"wau\":%" PRId64 ",\"mau\":%" PRId64
                                     ",\"stickiness\":",
                                     first ? "" : ",", d, dau, s->w7[off], s->w30[off]);
    rc = rc ? rc : put_ratio(o, (double)dau, s->w30[off], a->csv);
    if (rc == UMG_OK) {
        rc = a->csv ? umg_buf_printf(o, ",%" PRId64 ",%" PRId64 "\n", nw, dau - nw)
                    : umg_buf_printf(o, ",\"new\":%" PRId64 ",\"returning\":%" PRId64 "}", nw, dau - nw);
    }
    return rc;
}

/* One week or month starting on ps, its days up to last (today, or the period's end): the name, active,
 * avg_dau, stickiness, new, returning. */
static int put_period(const umg_query_activity_t *a, const days_t *s, int32_t ps, int32_t last, int first, umg_buf_t *o)
{
    size_t off = (size_t)(ps - s->lo);
    int64_t act = s->pact[off], nw = s->pnew[off], sum = 0;
    for (int32_t day = ps; day <= last; day++) {
        sum += s->dau[day - s->lo];
    }
    double avg = (double)sum / (double)(last - ps + 1);
    char d[11];
    umg_date_format(ps, d);
    const char *name = interval_names[a->interval];
    int rc = a->csv ? umg_buf_printf(o, "%s,%" PRId64 ",%.17g,", d, act, avg)
                    : umg_buf_printf(o, "%s{\"%s\":\"%s\",\"active\":%" PRId64 ",\"avg_dau\":%.17g,\"stickiness\":",
                                     first ? "" : ",", name, d, act, avg);
    rc = rc ? rc : put_ratio(o, avg, act, a->csv);
    if (rc == UMG_OK) {
        rc = a->csv ? umg_buf_printf(o, ",%" PRId64 ",%" PRId64 "\n", nw, act - nw)
                    : umg_buf_printf(o, ",\"new\":%" PRId64 ",\"returning\":%" PRId64 "}", nw, act - nw);
    }
    return rc;
}

/* ------------------------------------------------------------------ run */

int umg_query_activity_run(const umg_query_activity_t *a, const umg_query_activity_input_t *in, umg_buf_t *out)
{
    /* Rows: the days (or the periods intersecting them) of [from, min(to, today)]; days after today are left out.
     * Per-day figures are read over [lo, hi]: from the first period's first day to the last's last day, up to today. */
    int32_t end = a->to < in->today ? a->to : in->today;
    int32_t lo = period_start(a->interval, a->from);
    /* a period that has begun counts even when from is after today (a month's row on its 25th, asked on the 22nd) */
    int32_t last = period_start(a->interval, end);
    int32_t hi = last < lo ? lo - 1 : period_next(a->interval, last) - 1;
    hi = hi < in->today ? hi : in->today;
    int rc = put_head(a, in, out);
    if (rc != UMG_OK || hi < lo) {
        return rc ? rc : a->csv ? UMG_OK : umg_buf_printf(out, "]}\n");
    }
    size_t span = (size_t)(hi - lo) + 1;
    days_t s = {.lo = lo, .hi = hi};
    int64_t *mem = umg_calloc(6 * span, sizeof(*mem));
    if (mem == NULL) {
        return UMG_ENOMEM;
    }
    s.dau = mem;
    s.nw = mem + span;
    s.w7 = mem + 2 * span;
    s.w30 = mem + 3 * span;
    s.pact = mem + 4 * span;
    s.pnew = mem + 5 * span;
    scan(&s, &in->activity, a->interval);
    int first = 1;
    if (a->interval == IV_DAY) {
        for (int32_t day = a->from; day <= end && rc == UMG_OK; day++, first = 0) {
            rc = put_day(a, &s, day, first, out);
        }
    } else {
        for (int32_t ps = lo; ps <= end && rc == UMG_OK; ps = period_next(a->interval, ps), first = 0) {
            int32_t last = period_next(a->interval, ps) - 1;
            rc = put_period(a, &s, ps, last < hi ? last : hi, first, out);
        }
    }
    umg_free(mem);
    return rc ? rc : a->csv ? UMG_OK : umg_buf_printf(out, "]}\n");
}
