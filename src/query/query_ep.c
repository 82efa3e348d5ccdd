/*
 * query_ep.c - GET /v1/reports/overview and GET /v1/reports/cohorts
 * (docs/reports.md). The handler authenticates and checks the parameters on
 * the loop thread, then queues the report on the report worker
 * (umg_attr_worker_submit), which reads the app's rollups under their read
 * lock, its dictionary strings in a read transaction of the attribution
 * store, and its costs and the organization's rates through a connection
 * of its own to meta.db (src/cost), and resumes the request with the answer.
 */
#include "umg_query_ep.h"

#include "umg_attr_ep.h"
#include "umg_cost.h"
#include "umg_query.h"
#include "umg_rollup.h"
#include "umg_store.h"

/* The data directory (for meta.db), and what only the report worker thread uses: the cost connection, ... */
static struct {
    char *data_dir;
    umg_cost_t *cost;
    umg_cost_cache_t *costs;      /* cost rows read lately */
    umg_query_scratch_t *scratch; /* the worker's, kept between reports */
    umg_helper_t *helper;         /* the second thread of a large overview's scan */
} Q;

int umg_query_ep_start(const char *data_dir)
{
    Q.data_dir = umg_strndup(data_dir, strlen(data_dir));
    return Q.data_dir != NULL ? UMG_OK : UMG_ENOMEM;
}

void umg_query_ep_stop(void)
{
    umg_cost_close(Q.cost);
    umg_cost_cache_free(Q.costs);
    umg_query_scratch_free(Q.scratch);
    umg_helper_free(Q.helper);
    umg_free(Q.data_dir);
    Q.cost = NULL;
    Q.costs = NULL;
    Q.scratch = NULL;
    Q.helper = NULL;
    Q.data_dir = NULL;
}

typedef struct job_s {
    umg_query_t *q;
    umg_app_t app;
    umg_rollup_t *rollup;
    umg_store_t *store;
    umg_tz_cache_t *tzc;
    int64_t now_us;
    umg_store_txn_t *tx;
    umg_query_cost_cb cost_fn; /* while umg_cost_each runs */
    void *cost_ctx;
} job_t;

static void job_free(void *data)
{
    job_t *j = data;
    umg_query_free(j->q);
    umg_free(j);
}

/* A computed report's answer: 200 with its type, or the failure (the 503 set up before the work). */
static void answered(umg_attr_answer_t *ans, int rc, int csv)
{
    if (rc == UMG_OK) {
        ans->status = 200;
        ans->content_type = csv ? "text/csv; charset=utf-8" : "application/json";
    } else if (rc == UMG_ENOMEM) {
        ans->code = "out_of_memory";
    }
}

/* ------------------------------------------------- the engine's inputs */

static int dict_string(void *ctx, uint32_t id, umg_slice_t *out)
{
    job_t *j = ctx;
    return umg_store_string(j->tx, id, out);
}

static int dict_lookup(void *ctx, umg_slice_t s, uint32_t *id)
{
    job_t *j = ctx;
    return umg_store_lookup(j->tx, s, id);
}

void umg_query_cost_of(const umg_cost_row_t *r, umg_query_cost_t *out)
{
    /* every member set: an initializer would clear the whole row first, for every row */
    out->day = r->day;
    out->source = r->source;
    out->campaign = r->campaign;
    out->adset = r->adset;
    out->ad = r->ad;
    out->country = r->country;
    memcpy(out->currency, r->currency, sizeof(out->currency));
    out->micros = r->micros;
    memcpy(out->sid, r->sid, sizeof(out->sid));
}

static int cost_row(void *ctx, const umg_cost_row_t *r)
{
    job_t *j = ctx;
    umg_query_cost_t row;
    umg_query_cost_of(r, &row);
    return j->cost_fn(j->cost_ctx, &row);
}

static int costs_each(void *ctx, int32_t from, int32_t to, umg_query_cost_cb fn, void *fn_ctx)
{
    job_t *j = ctx;
    j->cost_fn = fn;
    j->cost_ctx = fn_ctx;
    return Q.costs != NULL ? umg_cost_cache_each(Q.costs, Q.cost, j->app.id, from, to, cost_row, j)
                           : umg_cost_each(Q.cost, j->app.id, from, to, cost_row, j);
}

static int rates(void *ctx, int32_t from_day, size_t ndays, const char *from, const char *to, double *factors)
{
    job_t *j = ctx;
    return umg_cost_rate_days(Q.cost, j->app.org, from_day, ndays, from, to, factors);
}

/* ------------------------------------------------------ on the worker */

/* The helper thread the worker lends the large reports (Q.helper stays NULL when it cannot start: they run on
 * the worker alone). */
static void worker_helper(void)
{
    if (Q.helper == NULL && umg_helper_new(&Q.helper) != UMG_OK) {
        Q.helper = NULL;
    }
}

static void compute(void *data, umg_attr_answer_t *ans)
{
    job_t *j = data;
    const umg_tz_t *tz = NULL;
    ans->status = 503;
    ans->code = "report_failed";
    if (j->tzc == NULL || umg_tz_cache_get(j->tzc, j->app.timezone, &tz) != UMG_OK) {
        ans->code = "timezone_unavailable";
        ans->field = "app";
        ans->message = "the app's reporting time zone cannot be loaded";
        return;
    }
    if (Q.cost == NULL && (Q.data_dir == NULL || umg_cost_open(Q.data_dir, &Q.cost) != UMG_OK)) {
        ans->code = "costs_unavailable";
        ans->message = "the costs and rates cannot be read; retry";
        return;
    }
    umg_query_input_t in = {.app = j->app.public_id,
                            .timezone = j->app.timezone,
                            .currency = j->app.currency,
                            .today = umg_tz_day(tz, j->now_us),
                            .ctx = j,
                            .string = dict_string,
                            .lookup = dict_lookup,
                            .costs = costs_each,
                            .rates = rates};
    /* each of these is a help, not a need: without it the report reads or allocates plainly, on one thread */
    if (Q.scratch == NULL && umg_query_scratch_new(&Q.scratch) != UMG_OK) {
        Q.scratch = NULL;
    }
    if (Q.costs == NULL && umg_cost_cache_new(0, &Q.costs) != UMG_OK) {
        Q.costs = NULL;
    }
    worker_helper();
    in.scratch = Q.scratch;
    in.par = Q.helper;
    in.beside = Q.helper != NULL ? umg_helper_beside : NULL;
    in.join = umg_helper_join;
    int rc = umg_store_begin(j->store, 0, &j->tx);
    if (rc == UMG_OK) {
        rc = umg_store_reeng_since(j->tx, &in.reeng_since_us);
        if (rc == UMG_OK) {
            umg_rollup_read_begin(j->rollup);
            for (int t = 0; t < UMG_RT_COUNT; t++) {
                umg_rollup_view(j->rollup, j->app.id, (umg_rollup_table_t)t, &in.tables[t]);
            }
            rc = umg_query_run(j->q, &in, &ans->body);
            umg_rollup_read_end(j->rollup);
        }
        umg_store_abort(j->tx);
        j->tx = NULL;
    }
    answered(ans, rc, umg_query_is_csv(j->q));
}

/* ------------------------------------------------------ on the loop */

typedef struct param_s {
    const char *name;
    umg_slice_t *at; /* UMG_SLICE_NULL when absent */
} param_t;

/*
 * What every report request does first: authenticate (the app secret or reports:read), check the server
 * keeps what the report reads (rollups, or the store for funnels), read the parameters. Answers the error
 * itself and returns non-zero on failure.
 */
static int report_begin(umg_http_req_t *req, void *thread_data, int rollups, const param_t *params, size_t n,
                        umg_ingest_t **ing, umg_app_t *app)
{
    *ing = umg__ingest_of(thread_data);
    umg_principal_t who;
    if (umg_attr_ep_app_for(*ing, req, 0, UMG_PERM_REPORTS_READ, app, &who) != 0) {
        return -1;
    }
    if ((rollups ? (*ing)->rollup == NULL : (*ing)->store == NULL) || (*ing)->attr_worker == NULL) {
        umg_http_error(req, 503, "reports_unavailable", NULL, "reports are not kept by this server");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = umg_http_query_param(req, params[i].name, params[i].at);
        if (rc == UMG_EINVAL) {
            umg_http_error(req, 400, "invalid_value", params[i].name, "the parameter is not URL-encoded correctly");
            return -1;
        }
        if (rc != UMG_OK) {
            *params[i].at = UMG_SLICE_NULL;
        }
    }
    return 0;
}

/* Answers a request whose parameters did not parse (rc from a umg_*_parse). */
static void parse_failed(umg_http_req_t *req, int rc, const umg_query_error_t *err)
{
    if (rc == UMG_EINVAL) {
        umg_http_error(req, 400, err->code, err->field, err->message);
    } else {
        umg_http_error(req, 503, "out_of_memory", NULL, "out of memory; retry");
    }
}

static void report(umg_http_req_t *req, void *thread_data, umg_query_kind_t kind)
{
    umg_ingest_t *ing;
    umg_app_t app;
    umg_query_params_t p;
    memset(&p, 0, sizeof(p));
    const param_t names[] = {{"from", &p.from},       {"to", &p.to},         {"group_by", &p.group_by},
                             {"metrics", &p.metrics}, {"filter", &p.filter}, {"sort", &p.sort},
                             {"limit", &p.limit},     {"format", &p.format}, {"days", &p.days},
                             {"metric", &p.metric},   {"credit", &p.credit}};
    if (report_begin(req, thread_data, 1, names, UMG_ARRAY_SIZE(names), &ing, &app) != 0) {
        return;
    }
    umg_query_error_t err;
    job_t *j = umg_calloc(1, sizeof(*j));
    int rc = j == NULL ? UMG_ENOMEM : umg_query_parse(kind, &p, &j->q, &err);
    if (rc != UMG_OK) {
        umg_free(j);
        parse_failed(req, rc, &err);
        return;
    }
    j->app = app;
    j->rollup = ing->rollup;
    j->store = ing->store;
    j->tzc = ing->tzc;
    j->now_us = umg_now_us();
    umg_attr_worker_submit(ing->attr_worker, req, compute, job_free, j);
}

void umg_query_ep_overview(umg_http_req_t *req, void *thread_data)
{
    report(req, thread_data, UMG_QUERY_OVERVIEW);
}

void umg_query_ep_cohorts(umg_http_req_t *req, void *thread_data)
{
    report(req, thread_data, UMG_QUERY_COHORTS);
}

/* ------------------------------------------------------------ activity */

/* The activity report reads one rollup table: no store transaction, costs or rates. */
typedef struct ajob_s {
    umg_query_activity_t *q;
    umg_app_t app;
    umg_rollup_t *rollup;
    umg_tz_cache_t *tzc;
    int64_t now_us;
} ajob_t;

static void ajob_free(void *data)
{
    ajob_t *j = data;
    umg_query_activity_free(j->q);
    umg_free(j);
}

static void compute_activity(void *data, umg_attr_answer_t *ans)
{
    ajob_t *j = data;
    const umg_tz_t *tz = NULL;
    ans->status = 503;
    ans->code = "report_failed";
    if (j->tzc == NULL || umg_tz_cache_get(j->tzc, j->app.timezone, &tz) != UMG_OK) {
        ans->code = "timezone_unavailable";
        ans->field = "app";
        ans->message = "the app's reporting time zone cannot be loaded";
        return;
    }
    umg_query_activity_input_t in = {
        .app = j->app.public_id, .timezone = j->app.timezone, .today = umg_tz_day(tz, j->now_us)};
    umg_rollup_read_begin(j->rollup);
    umg_rollup_view(j->rollup, j->app.id, UMG_RT_ACTIVITY, &in.activity);
    int rc = umg_query_activity_run(j->q, &in, &ans->body);
    umg_rollup_read_end(j->rollup);
    answered(ans, rc, umg_query_activity_is_csv(j->q));
}

void umg_query_ep_activity(umg_http_req_t *req, void *thread_data)
{
    umg_ingest_t *ing;
    umg_app_t app;
    umg_query_activity_params_t p;
    memset(&p, 0, sizeof(p));
    const param_t names[] = {{"from", &p.from}, {"to", &p.to}, {"interval", &p.interval}, {"format", &p.format}};
    if (report_begin(req, thread_data, 1, names, UMG_ARRAY_SIZE(names), &ing, &app) != 0) {
        return;
    }
    umg_query_error_t err;
    ajob_t *j = umg_calloc(1, sizeof(*j));
    int rc = j == NULL ? UMG_ENOMEM : umg_query_activity_parse(&p, &j->q, &err);
    if (rc != UMG_OK) {
        umg_free(j);
        parse_failed(req, rc, &err);
        return;
    }
    j->app = app;
    j->rollup = ing->rollup;
    j->tzc = ing->tzc;
    j->now_us = umg_now_us();
    umg_attr_worker_submit(ing->attr_worker, req, compute_activity, ajob_free, j);
}

/* ------------------------------------------------------------- funnel */

/* GET /v1/reports/funnel: the device timelines and states of the store, read on the report worker. */
typedef struct fjob_s {
    umg_funnel_t *f;
    umg_app_t app;
    umg_store_t *store;
    umg_tz_cache_t *tzc;
    umg_store_txn_t *tx;
    umg_store_devwalk_t *walk; /* device states, read in key order as the scan visits them */
    /* the same for the scan's second part, on the helper thread: a read transaction of its own */
    umg_store_txn_t *tx1;
    umg_store_devwalk_t *walk1;
} fjob_t;

static void fjob_free(void *data)
{
    fjob_t *j = data;
    umg_funnel_free(j->f);
    umg_free(j);
}

static int funnel_string(void *ctx, uint32_t id, umg_slice_t *out)
{
    fjob_t *j = ctx;
    int rc = umg_store_string(j->tx, id, out);
    /* A dimension the helper read in its own, newer snapshot (a device attributed meanwhile to a new campaign)
     * names a string the worker's snapshot does not have yet: the helper's has it (strings are never removed).
     * Called after the scan, when the helper is done with its transaction. */
    return rc == UMG_ENOENT && j->tx1 != NULL ? umg_store_string(j->tx1, id, out) : rc;
}

static int funnel_lookup(void *ctx, umg_slice_t s, uint32_t *id)
{
    return umg_store_lookup(((fjob_t *)ctx)->tx, s, id);
}

static int funnel_scan(void *ctx, umg_funnel_device_cb fn, void *const fn_ctx[2])
{
    fjob_t *j = ctx;
    return umg_store_timeline_scan_par(j->tx, j->app.id, fn, fn_ctx, Q.helper,
                                       Q.helper != NULL ? umg_helper_beside : NULL, umg_helper_join);
}

static int funnel_device(void *ctx, int part, uint64_t key, uint32_t dims[UMG_RD_N])
{
    fjob_t *j = ctx;
    umg_store_txn_t **tx = part == 0 ? &j->tx : &j->tx1;
    umg_store_devwalk_t **walk = part == 0 ? &j->walk : &j->walk1;
    int rc = *tx != NULL ? UMG_OK : umg_store_begin(j->store, 0, tx);
    rc = rc || *walk != NULL ? rc : umg_store_devwalk_open(*tx, walk);
    return rc ? rc : umg_store_devwalk_dims(*walk, key, dims);
}

static void funnel_compute(void *data, umg_attr_answer_t *ans)
{
    fjob_t *j = data;
    const umg_tz_t *tz = NULL;
    ans->status = 503;
    ans->code = "report_failed";
    if (j->tzc == NULL || umg_tz_cache_get(j->tzc, j->app.timezone, &tz) != UMG_OK) {
        ans->code = "timezone_unavailable";
        ans->field = "app";
        ans->message = "the app's reporting time zone cannot be loaded";
        return;
    }
    worker_helper();
    umg_funnel_input_t in = {.app = j->app.public_id,
                             .timezone = j->app.timezone,
                             .tz = tz,
                             .ctx = j,
                             .string = funnel_string,
                             .lookup = funnel_lookup,
                             .scan = funnel_scan,
                             .device = funnel_device};
    int rc = umg_store_begin(j->store, 0, &j->tx);
    if (rc == UMG_OK) {
        rc = umg_funnel_run(j->f, &in, &ans->body);
        umg_store_devwalk_close(j->walk);
        umg_store_devwalk_close(j->walk1);
        if (j->tx1 != NULL) {
            umg_store_abort(j->tx1);
        }
        j->walk = j->walk1 = NULL;
        j->tx1 = NULL;
        umg_store_abort(j->tx);
        j->tx = NULL;
    }
    answered(ans, rc, umg_funnel_is_csv(j->f));
}

void umg_query_ep_funnel(umg_http_req_t *req, void *thread_data)
{
    umg_ingest_t *ing;
    umg_app_t app;
    umg_funnel_params_t p;
    memset(&p, 0, sizeof(p));
    const param_t names[] = {{"from", &p.from},         {"to", &p.to},
                             {"steps", &p.steps},       {"window", &p.window},
                             {"group_by", &p.group_by}, {"format", &p.format}};
    if (report_begin(req, thread_data, 0, names, UMG_ARRAY_SIZE(names), &ing, &app) != 0) {
        return;
    }
    umg_query_error_t err;
    fjob_t *j = umg_calloc(1, sizeof(*j));
    int rc = j == NULL ? UMG_ENOMEM : umg_funnel_parse(&p, &j->f, &err);
    if (rc != UMG_OK) {
        umg_free(j);
        parse_failed(req, rc, &err);
        return;
    }
    j->app = app;
    j->store = ing->store;
    j->tzc = ing->tzc;
    umg_attr_worker_submit(ing->attr_worker, req, funnel_compute, fjob_free, j);
}

/* ------------------------------------------------------- fraud report */

/* GET /v1/reports/fraud: the fraud rollups of the app, read on the report worker. */
typedef struct rjob_s {
    umg_fraud_report_t *r;
    umg_app_t app;
    umg_rollup_t *rollup;
    umg_store_t *store;
    umg_store_txn_t *tx;
} rjob_t;

static void rjob_free(void *data)
{
    rjob_t *j = data;
    umg_fraud_report_free(j->r);
    umg_free(j);
}

static int rjob_string(void *ctx, uint32_t id, umg_slice_t *out)
{
    return umg_store_string(((rjob_t *)ctx)->tx, id, out);
}

static void fraud_compute(void *data, umg_attr_answer_t *ans)
{
    rjob_t *j = data;
    ans->status = 503;
    ans->code = "report_failed";
    umg_rollup_view_t v[4];
    umg_fraud_report_input_t in = {.app = j->app.public_id,
                                   .main = &v[0],
                                   .fraud = &v[1],
                                   .ctit = &v[2],
                                   .score = &v[3],
                                   .model_mode = j->app.fraud.model_mode,
                                   .model_threshold = j->app.fraud.model_threshold,
                                   .ctx = j,
                                   .string = rjob_string};
    int rc = umg_store_begin(j->store, 0, &j->tx);
    if (rc == UMG_OK) {
        umg_rollup_read_begin(j->rollup);
        umg_rollup_view(j->rollup, j->app.id, UMG_RT_MAIN, &v[0]);
        umg_rollup_view(j->rollup, j->app.id, UMG_RT_FRAUD, &v[1]);
        umg_rollup_view(j->rollup, j->app.id, UMG_RT_CTIT, &v[2]);
        umg_rollup_view(j->rollup, j->app.id, UMG_RT_SCORE, &v[3]);
        rc = umg_fraud_report_run(j->r, &in, &ans->body);
        umg_rollup_read_end(j->rollup);
        umg_store_abort(j->tx);
        j->tx = NULL;
    }
    answered(ans, rc, umg_fraud_report_is_csv(j->r));
}

void umg_query_ep_fraud(umg_http_req_t *req, void *thread_data)
{
    umg_ingest_t *ing;
    umg_app_t app;
    umg_fraud_report_params_t p;
    memset(&p, 0, sizeof(p));
    const param_t names[] = {{"from", &p.from}, {"to", &p.to}, {"group_by", &p.group_by}, {"format", &p.format}};
    if (report_begin(req, thread_data, 1, names, UMG_ARRAY_SIZE(names), &ing, &app) != 0) {
        return;
    }
    umg_query_error_t err;
    rjob_t *j = umg_calloc(1, sizeof(*j));
    int rc = j == NULL ? UMG_ENOMEM : umg_fraud_report_parse(&p, &j->r, &err);
    if (rc != UMG_OK) {
        umg_free(j);
        parse_failed(req, rc, &err);
        return;
    }
    j->app = app;
    j->rollup = ing->rollup;
    j->store = ing->store;
    umg_attr_worker_submit(ing->attr_worker, req, fraud_compute, rjob_free, j);
}
