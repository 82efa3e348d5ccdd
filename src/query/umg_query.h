/*
 * umg_query.h - the report query engine behind GET /v1/reports/overview and
 * GET /v1/reports/cohorts (docs/reports.md).
 *
 * Pure module: it parses a request's parameters into a query (with the code
 * and the parameter name of the first error), and computes a report from an
 * app's rollup views (src/rollup), cost rows and a currency-rate callback,
 * writing JSON or CSV. No sockets, clocks or threads: the caller passes
 * "today" and the data, and runs it wherever it likes (a worker thread).
 */
#ifndef UMG_QUERY_H
#define UMG_QUERY_H

#include "umg_core.h"
#include "umg_rollup.h"

typedef enum { UMG_QUERY_OVERVIEW = 0, UMG_QUERY_COHORTS = 1 } umg_query_kind_t;

#define UMG_QUERY_MAX_DAYS 366     /* from..to, inclusive */
#define UMG_QUERY_MAX_LIMIT 100000 /* rows of an overview */
#define UMG_QUERY_MAX_COHORT_DAYS 32

/*
 * A request's parameters as sent, URL-decoded; ptr NULL when the parameter
 * is absent (an empty value is present). Borrowed during umg_query_parse only.
 */
typedef struct umg_query_params_s {
    umg_slice_t from, to, group_by, metrics, filter, sort, limit, format; /* overview (and cohorts) */
    umg_slice_t days, metric;                                             /* cohorts */
    umg_slice_t credit; /* overview: "install" (default) or "re_engagement" */
} umg_query_params_t;

/* Why a request was refused: answer 400 with {"error": {code, field, message}}. */
typedef struct umg_query_error_s {
    const char *code;  /* "required", "invalid_value", "range_too_large" (static) */
    const char *field; /* the parameter (static) */
    char message[320];
} umg_query_error_t;

typedef struct umg_query_s umg_query_t;

/**
 * Parses and checks the parameters of a report of that kind. UMG_OK with
 * *out (free it with umg_query_free), UMG_EINVAL with *err filled, or
 * UMG_ENOMEM. The query owns copies of every string it keeps.
 */
int umg_query_parse(umg_query_kind_t kind, const umg_query_params_t *p, umg_query_t **out, umg_query_error_t *err);
void umg_query_free(umg_query_t *q);
/** The local days the query covers (inclusive). */
void umg_query_period(const umg_query_t *q, int32_t *from, int32_t *to);
/** True when the answer is CSV ("text/csv; charset=utf-8"), else JSON. */
int umg_query_is_csv(const umg_query_t *q);
/** How many days after `to` the report reads rates for (cohort days reach install day + 180). */
int32_t umg_query_rate_days_after(const umg_query_t *q);

/*
 * A cost row (src/cost): money spent on a local date, in a currency, by its
 * dimensions' strings. sid[]: optional numbers of the strings (source,
 * campaign, adset, ad, country), 0 when not known; within one costs call,
 * rows with the same number have the same string (the cost cache's), so the
 * engine looks each up once.
 */
typedef struct umg_query_cost_s {
    int32_t day;
    umg_slice_t source, campaign, adset, ad, country;
    char currency[4];
    int64_t micros;
    uint32_t sid[5];
} umg_query_cost_t;
/* Called for each cost row (borrowed until it returns); non-zero stops. */
typedef int (*umg_query_cost_cb)(void *ctx, const umg_query_cost_t *row);

/*
 * What a report is computed from. Every pointer is borrowed for the call of
 * umg_query_run; slices the callbacks return must stay valid until it
 * returns (a read transaction of the store that lives around the call).
 */
typedef struct umg_query_input_s {
    const char *app;        /* the app's public id, echoed */
    const char *timezone;   /* the app's reporting zone, echoed */
    const char *currency;   /* ISO 4217 code amounts are reported in */
    int32_t today;          /* today's local day in that zone (cohort days after it are null) */
    int64_t reeng_since_us; /* since when the re-engagement tables are kept (umg_store_reeng_since); 0: always */
    umg_rollup_view_t tables[UMG_RT_COUNT]; /* the app's tables (n = 0 when absent) */
    void *ctx;                              /* for the callbacks */
    /** The text of a dictionary id (never called for 0). */
    int (*string)(void *ctx, uint32_t id, umg_slice_t *out);
    /** The dictionary id of a string: UMG_ENOENT when it was never seen. */
    int (*lookup)(void *ctx, umg_slice_t s, uint32_t *id);
    /** Calls fn for every cost row of the app with from <= day <= to; NULL: no costs. */
    int (*costs)(void *ctx, int32_t from, int32_t to, umg_query_cost_cb fn, void *fn_ctx);
    /**
     * The factors converting an amount in `from` to `to` on each of ndays local days from from_day into
     * factors[i] (NAN when that day has no rate; the engine sets them all to NAN first); NULL: no rates.
     */
    int (*rates)(void *ctx, int32_t from_day, size_t ndays, const char *from, const char *to, double *factors);
    /** Large buffers kept from one report to the next (NULL: none); one report at a time may use it. */
    struct umg_query_scratch_s *scratch;
    /**
     * Optional, a second thread for the scan of a large overview (the engine makes none of its own):
     * beside(par, fn, arg) starts fn(arg) on it and returns 0, or non-zero when it cannot (then the
     * calling thread does all the work); join(par) returns once fn has returned. fn calls no callback
     * and reads only the tables. umg_helper_beside and umg_helper_join (umg_core.h) have this shape.
     */
    void *par;
    int (*beside)(void *par, void (*fn)(void *), void *arg);
    void (*join)(void *par);
} umg_query_input_t;

typedef struct umg_query_scratch_s umg_query_scratch_t;
int umg_query_scratch_new(umg_query_scratch_t **out);
void umg_query_scratch_free(umg_query_scratch_t *s);

/**
 * Computes the report and appends it to out (JSON or CSV). UMG_ENOMEM, or an
 * error a callback returned; out may then hold part of an answer.
 */
int umg_query_run(const umg_query_t *q, const umg_query_input_t *in, umg_buf_t *out);

/* ------------------------------------------------------------ activity */

/*
 * GET /v1/reports/activity (docs/reports.md, "Activity"): DAU, trailing WAU
 * and MAU, stickiness, new and returning devices of the whole app, per day,
 * ISO week or calendar month, from its UMG_RT_ACTIVITY rows (src/query/activity.c).
 */

/* The activity report's parameters, as umg_query_params_t (ptr NULL: absent). Borrowed during the parse. */
typedef struct umg_query_activity_params_s {
    umg_slice_t from, to, interval, format;
} umg_query_activity_params_t;

typedef struct umg_query_activity_s umg_query_activity_t;

/**
 * Checks the parameters (errors as umg_query_parse's, and "interval"): UMG_OK
 * with *out (free it with umg_query_activity_free), UMG_EINVAL with *err, or
 * UMG_ENOMEM. The query keeps no pointer into p.
 */
int umg_query_activity_parse(const umg_query_activity_params_t *p, umg_query_activity_t **out, umg_query_error_t *err);
void umg_query_activity_free(umg_query_activity_t *a);
/** True when the answer is CSV ("text/csv; charset=utf-8"), else JSON. */
int umg_query_activity_is_csv(const umg_query_activity_t *a);

/* What the activity report reads; borrowed for the call of umg_query_activity_run. */
typedef struct umg_query_activity_input_s {
    const char *app;            /* the app's public id, echoed */
    const char *timezone;       /* the app's reporting zone, echoed */
    int32_t today;              /* today's local day in that zone: later days are left out */
    umg_rollup_view_t activity; /* the app's UMG_RT_ACTIVITY table (n = 0 when absent) */
} umg_query_activity_input_t;

/** Computes the report and appends it to out (JSON or CSV). UMG_ENOMEM; out may then hold part of an answer. */
int umg_query_activity_run(const umg_query_activity_t *a, const umg_query_activity_input_t *in, umg_buf_t *out);
/* ------------------------------------------------------------- funnels */

/*
 * GET /v1/reports/funnel (docs/reports.md, "Funnel"): ordered steps per
 * device, read from the attribution store's device timelines. funnel.c is
 * pure like the rest of the module: the caller hands it the timelines, the
 * devices' dimensions and the dictionary through callbacks.
 */
struct umg_store_step_s; /* umg_store.h: one step of a device's timeline */

#define UMG_FUNNEL_MAX_STEPS 10
#define UMG_FUNNEL_MIN_STEPS 2
#define UMG_FUNNEL_MAX_NAME 256 /* bytes of an event name in a step */

/* What a funnel step matches in a timeline. */
typedef enum {
    UMG_FUNNEL_NOTHING = 0,   /* a name the dictionary never saw */
    UMG_FUNNEL_INSTALL = 1,   /* install: installs and implicit installs */
    UMG_FUNNEL_EVENT = 2,     /* event:<name>: in-app events and purchases of that name */
    UMG_FUNNEL_PURCHASE = 3,  /* purchase: any purchase */
    UMG_FUNNEL_PURCHASE_N = 4 /* purchase:<name>: purchases of that name */
} umg_funnel_kind_t;

typedef struct umg_funnel_step_s {
    uint32_t kind; /* umg_funnel_kind_t */
    uint32_t name; /* dictionary id, for UMG_FUNNEL_EVENT and UMG_FUNNEL_PURCHASE_N */
} umg_funnel_step_t;

/**
 * Matches one device's timeline (tl[0..n), in time order, ties in log order)
 * against the steps fs[0..nfs): the device enters at its earliest step-1
 * occurrence with from_us <= ts < to_us; then step k is the earliest
 * occurrence of step k, other than those that matched earlier steps, with
 * at[k-1] <= ts <= at[0] + window_us. Writes at[k], the time step k was
 * reached, for each k below the return value: the number of steps reached (0
 * when the device did not enter). Pure, allocation-free.
 */
size_t umg_funnel_match(const umg_funnel_step_t *fs, size_t nfs, int64_t from_us, int64_t to_us, int64_t window_us,
                        const struct umg_store_step_s *tl, size_t n, int64_t *at);

/* A funnel request's parameters as sent, URL-decoded; ptr NULL when absent. Borrowed during parsing only. */
typedef struct umg_funnel_params_s {
    umg_slice_t from, to, steps, window, group_by, format;
} umg_funnel_params_t;

typedef struct umg_funnel_s umg_funnel_t;

/**
 * Parses and checks a funnel's parameters: UMG_OK with *out (free it with
 * umg_funnel_free), UMG_EINVAL with *err filled, or UMG_ENOMEM. The funnel
 * owns copies of the strings it keeps.
 */
int umg_funnel_parse(const umg_funnel_params_t *p, umg_funnel_t **out, umg_query_error_t *err);
void umg_funnel_free(umg_funnel_t *f);
/** True when the answer is CSV ("text/csv; charset=utf-8"), else JSON. */
int umg_funnel_is_csv(const umg_funnel_t *f);

/* Called once per device with its timeline (borrowed until it returns); a non-zero return stops the scan. */
typedef int (*umg_funnel_device_cb)(void *ctx, uint64_t device_key, const struct umg_store_step_s *tl, size_t n);

/* What a funnel is computed from. Pointers are borrowed for the call of umg_funnel_run. */
typedef struct umg_funnel_input_s {
    const char *app;      /* the app's public id, echoed */
    const char *timezone; /* the app's reporting zone's name, echoed */
    const umg_tz_t *tz;   /* that zone: local days of from, to and the entry */
    void *ctx;            /* for the callbacks */
    /** The text of a dictionary id (never called for 0); valid until umg_funnel_run returns. */
    int (*string)(void *ctx, uint32_t id, umg_slice_t *out);
    /** The dictionary id of a string: UMG_ENOENT when it was never seen. */
    int (*lookup)(void *ctx, umg_slice_t s, uint32_t *id);
    /**
     * Calls fn once for every device of the app with its timeline (umg_store_timeline_scan_par), with
     * fn_ctx[0] or fn_ctx[1]: the two may run at once, on two threads; returns fn's non-zero.
     */
    int (*scan)(void *ctx, umg_funnel_device_cb fn, void *const fn_ctx[2]);
    /**
     * A device's dimensions as dictionary ids in UMG_RD_* order (its current
     * install attribution's source, campaign, adset, ad, site; its country and
     * platform). UMG_ENOENT: all "". Called only when group_by names one, from
     * the scan's fn: part is which fn_ctx the device went to (0 or 1), so
     * calls of part 1 may run at once with those of part 0.
     */
    int (*device)(void *ctx, int part, uint64_t device_key, uint32_t dims[UMG_RD_N]);
} umg_funnel_input_t;

/**
 * Computes the funnel and appends it to out (JSON or CSV). UMG_ENOMEM, or an
 * error a callback returned; out may then hold part of an answer.
 */
int umg_funnel_run(const umg_funnel_t *f, const umg_funnel_input_t *in, umg_buf_t *out);

/**
 * The from and to parameters every report takes: local dates YYYY-MM-DD, to >= from, at most
 * UMG_QUERY_MAX_DAYS days. UMG_EINVAL with err naming the parameter.
 */
int umg_query_parse_period(umg_slice_t from, umg_slice_t to, int32_t *from_day, int32_t *to_day,
                           umg_query_error_t *err);

/* ---------------------------------------------------------- fraud report */

/* GET /v1/reports/fraud (docs/fraud.md "Report"); slices borrowed, empty when absent. */
typedef struct umg_fraud_report_params_s {
    umg_slice_t from, to, group_by, format;
} umg_fraud_report_params_t;

typedef struct umg_fraud_report_s umg_fraud_report_t;

/** Checks the parameters (errors name them, as umg_query_parse). UMG_EINVAL, UMG_ENOMEM. */
int umg_fraud_report_parse(const umg_fraud_report_params_t *p, umg_fraud_report_t **out, umg_query_error_t *err);
void umg_fraud_report_free(umg_fraud_report_t *r);
int umg_fraud_report_is_csv(const umg_fraud_report_t *r);

/* What the report reads: the app's rollup tables (under their read lock) and its dictionary. */
typedef struct umg_fraud_report_input_s {
    const char *app;
    const umg_rollup_view_t *main, *fraud, *ctit, *score;
    unsigned model_mode; /* umg_fraud_mode_t */
    double model_threshold;
    void *ctx;
    int (*string)(void *ctx, uint32_t id, umg_slice_t *out);
} umg_fraud_report_input_t;

/** Appends the report (JSON or CSV). UMG_ENOMEM, or the string callback's error. */
int umg_fraud_report_run(const umg_fraud_report_t *r, const umg_fraud_report_input_t *in, umg_buf_t *out);

#endif
