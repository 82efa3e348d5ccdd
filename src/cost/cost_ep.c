/*
 * cost_ep.c - the HTTP endpoints of costs and rates:
 *   POST /v1/costs  {"costs": [...]}      store or replace an app's cost rows (or a text/csv body:
 *                                         a header line, then a row a line, as `unmogrowp import` reads)
 *   GET  /v1/costs?app=&from=&to=[&format=csv]
 *   POST /v1/rates  {"rates": [...]}      store or replace the organization's rates (or text/csv)
 *   GET  /v1/rates?from=&to=[&format=csv]
 * A handler authenticates and checks the query on its loop thread, then
 * defers the request to the cost worker, one thread with its own connection
 * to DATA/meta.db: a write waits for SQLite (fsync, or a CLI import holding
 * the write lock) there, never on an event loop. Each POST is one transaction
 * with its audit record.
 */
#include "cost_int.h"
#include "umg_admin.h"
#include "umg_ingest.h"
#include "umg_json.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <strings.h>

#define QUEUE_MAX 64
#define DAY_MIN (-1000000)
#define DAY_MAX 4000000

typedef enum { OP_POST_COSTS, OP_GET_COSTS, OP_POST_RATES, OP_GET_RATES } op_t;

typedef struct cjob_s {
    struct cjob_s *next;
    umg_http_defer_t *defer;
    op_t op;
    uint32_t app, org;
    char app_public[24];
    char actor[40], ip[64], request_id[40];
    int32_t from, to;
    int csv;      /* GET: answer text/csv */
    int csv_body; /* POST: the body is text/csv (a header line, then a row a line), not JSON */
    char *body;
    size_t body_len;
    /* the answer: 200 with out (ctype), or an error */
    int status;
    const char *ctype, *code, *field, *message;
    char fieldbuf[136]; /* field, when it names a member of the body */
    umg_buf_t out;
} cjob_t;

/* One worker per process; static so a handler racing the shutdown never sees freed memory. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    int running, stopping;
    cjob_t *head, *tail;
    size_t queued;
    umg_cost_t *c;
    umg_json_parser_t *json;
} W = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void job_error(cjob_t *j, int status, const char *code, const char *field, const char *message)
{
    j->status = status;
    j->code = code;
    j->field = field;
    j->message = message;
}

/* ---------------------------------------------------------------- output */

/* The exact decimal of micros / 1e6 ("120.5", "0.000001", "3"). */
static int put_micros(umg_buf_t *o, int64_t micros)
{
    char frac[8];
    int64_t whole = micros / 1000000, part = micros % 1000000;
    if (part == 0) {
        return umg_buf_i64(o, whole);
    }
    snprintf(frac, sizeof(frac), "%06lld", (long long)part);
    for (int i = 5; i > 0 && frac[i] == '0'; i--) {
        frac[i] = '\0';
    }
    return umg_buf_printf(o, "%lld.%s", (long long)whole, frac);
}

/* The shortest %g form that reads back as the same double. */
static int put_double(umg_buf_t *o, double v)
{
    char t[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(t, sizeof(t), "%.*g", prec, v);
        if (strtod(t, NULL) == v) {
            break;
        }
    }
    return umg_buf_append(o, t, strlen(t));
}

typedef struct list_s {
    umg_buf_t *o;
    int csv;
    size_t n;
} list_t;

static int cost_out(void *ctx, const umg_cost_row_t *r)
{
    list_t *l = ctx;
    umg_buf_t *o = l->o;
    char date[11];
    umg_date_format(r->day, date);
    const umg_slice_t names[] = {r->source, r->campaign, r->adset, r->ad, r->country};
    int rc;
    if (l->csv) {
        rc = umg_buf_printf(o, "%s", date);
        for (size_t i = 0; i < UMG_ARRAY_SIZE(names) && rc == UMG_OK; i++) {
            rc = umg_buf_putc(o, ',');
            rc = rc ? rc : umg_buf_csv_field(o, names[i]);
        }
        rc = rc ? rc : umg_buf_putc(o, ',');
        rc = rc ? rc : put_micros(o, r->micros);
        rc = rc ? rc : umg_buf_printf(o, ",%s,%lld\r\n", r->currency, (long long)r->micros);
    } else {
        static const char *const keys[] = {"source", "campaign", "adset", "ad", "country"};
        rc = umg_buf_printf(o, "%s{\"date\":\"%s\"", l->n ? "," : "", date);
        for (size_t i = 0; i < UMG_ARRAY_SIZE(names) && rc == UMG_OK; i++) {
            rc = umg_buf_printf(o, ",\"%s\":", keys[i]);
            rc = rc ? rc : umg_buf_json_str(o, names[i].ptr, names[i].len);
        }
        rc = rc ? rc : umg_buf_append(o, ",\"cost\":", 8);
        rc = rc ? rc : put_micros(o, r->micros);
        rc = rc ? rc : umg_buf_printf(o, ",\"currency\":\"%s\",\"micros\":%lld}", r->currency, (long long)r->micros);
    }
    l->n++;
    return rc;
}

static int rate_out(void *ctx, const umg_rate_row_t *r)
{
    list_t *l = ctx;
    char date[11];
    umg_date_format(r->day, date);
    int rc;
    if (l->csv) {
        rc = umg_buf_printf(l->o, "%s,%s,%s,", date, r->currency, r->base);
        rc = rc ? rc : put_double(l->o, r->rate);
        rc = rc ? rc : umg_buf_append(l->o, "\r\n", 2);
    } else {
        rc = umg_buf_printf(l->o, "%s{\"date\":\"%s\",\"currency\":\"%s\",\"base\":\"%s\",\"rate\":", l->n ? "," : "",
                            date, r->currency, r->base);
        rc = rc ? rc : put_double(l->o, r->rate);
        rc = rc ? rc : umg_buf_putc(l->o, '}');
    }
    l->n++;
    return rc;
}

static void run_list(cjob_t *j)
{
    list_t l = {&j->out, j->csv, 0};
    int costs = j->op == OP_GET_COSTS;
    int rc;
    if (j->csv) {
        rc = umg_buf_printf(&j->out, "%s\r\n",
                            costs ? "date,source,campaign,adset,ad,country,cost,currency,micros"
                                  : "date,currency,base,rate");
    } else {
        rc = umg_buf_printf(&j->out, "{\"%s\":[", costs ? "costs" : "rates");
    }
    if (rc == UMG_OK) {
        rc = costs ? umg_cost_each(W.c, j->app, j->from, j->to, cost_out, &l)
                   : umg_cost_rates_each(W.c, j->org, j->from, j->to, rate_out, &l);
    }
    if (rc == UMG_OK && !j->csv) {
        rc = umg_buf_append(&j->out, "]}\n", 3);
    }
    if (rc != UMG_OK) {
        job_error(j, 503, rc == UMG_ENOMEM ? "out_of_memory" : "database_unavailable", NULL,
                  "the costs could not be read; retry");
        return;
    }
    j->status = 200;
    j->ctype = j->csv ? "text/csv; charset=utf-8" : "application/json";
}

/* ---------------------------------------------------------------- POST bodies */

/* One row of a POST: its checked values and its first error. */
typedef struct row_s {
    int is_rate;
    umg_cost_row_t cost;
    umg_rate_row_t rate;
    char currency_seen, base_seen, amount_seen, date_seen;
    umg_slice_t efield; /* the member at fault (borrowed from the document); ecode NULL while the row is good */
    const char *ecode, *emsg;
} row_t;

static void row_fail_key(row_t *r, umg_slice_t field, const char *code, const char *msg)
{
    if (r->ecode == NULL) {
        r->efield = field;
        r->ecode = code;
        r->emsg = msg;
    }
}

static void row_fail(row_t *r, const char *field, const char *code, const char *msg)
{
    row_fail_key(r, umg_slice(field, strlen(field)), code, msg);
}

/* A string member into *out; null counts as absent for optional members. */
static int member_str(row_t *r, const umg_json_item_t *it, const char *name, umg_slice_t *out)
{
    if (it->type == UMG_JSON_STRING) {
        *out = umg_slice(it->str, it->len);
        return 1;
    }
    if (it->type != UMG_JSON_NULL) {
        row_fail(r, name, "invalid_type", "must be a string");
    }
    return 0;
}

static void cost_member(row_t *r, const umg_json_item_t *it)
{
    umg_slice_t k = umg_slice(it->key, it->klen), s = UMG_SLICE_NULL;
    const char *m;
    if (umg_slice_eq(k, "date")) {
        r->date_seen = (char)member_str(r, it, "date", &s);
        if (r->date_seen && (m = umg_cost_check_date(s, &r->cost.day)) != NULL) {
            row_fail(r, "date", "invalid_value", m);
        }
    } else if (umg_slice_eq(k, "source") || umg_slice_eq(k, "campaign")) {
        umg_slice_t *dst = k.ptr[0] == 's' ? &r->cost.source : &r->cost.campaign;
        const char *name = k.ptr[0] == 's' ? "source" : "campaign";
        if (member_str(r, it, name, &s) && (m = umg_cost_check_name(s, 1)) != NULL) {
            row_fail(r, name, s.len > UMG_COST_MAX_NAME ? "too_long" : "invalid_value", m);
        }
        *dst = s;
    } else if (umg_slice_eq(k, "adset") || umg_slice_eq(k, "ad")) {
        umg_slice_t *dst = k.len == 5 ? &r->cost.adset : &r->cost.ad;
        const char *name = k.len == 5 ? "adset" : "ad";
        if (member_str(r, it, name, &s) && (m = umg_cost_check_name(s, 0)) != NULL) {
            row_fail(r, name, s.len > UMG_COST_MAX_NAME ? "too_long" : "invalid_value", m);
        }
        *dst = s;
    } else if (umg_slice_eq(k, "country")) {
        if (member_str(r, it, "country", &s) && (m = umg_cost_check_country(s)) != NULL) {
            row_fail(r, "country", "invalid_value", m);
        }
        r->cost.country = s;
    } else if (umg_slice_eq(k, "currency")) {
        r->currency_seen = (char)member_str(r, it, "currency", &s);
        if (r->currency_seen && (m = umg_cost_check_currency(s, r->cost.currency)) != NULL) {
            row_fail(r, "currency", "invalid_value", m);
        }
    } else if (umg_slice_eq(k, "cost")) {
        double v = it->type == UMG_JSON_INT64    ? (double)it->num.i
                   : it->type == UMG_JSON_UINT64 ? (double)it->num.u
                                                 : it->num.d;
        r->amount_seen = 1;
        if (it->type != UMG_JSON_INT64 && it->type != UMG_JSON_UINT64 && it->type != UMG_JSON_DOUBLE) {
            row_fail(r, "cost", "invalid_type", "must be a number");
        } else if ((m = umg_cost_check_amount(v, &r->cost.micros)) != NULL) {
            row_fail(r, "cost", "invalid_value", m);
        }
    } else {
        row_fail_key(r, k, "unknown_field", "not a member of a cost row");
    }
}

static void rate_member(row_t *r, const umg_json_item_t *it)
{
    umg_slice_t k = umg_slice(it->key, it->klen), s = UMG_SLICE_NULL;
    const char *m;
    if (umg_slice_eq(k, "date")) {
        r->date_seen = (char)member_str(r, it, "date", &s);
        if (r->date_seen && (m = umg_cost_check_date(s, &r->rate.day)) != NULL) {
            row_fail(r, "date", "invalid_value", m);
        }
    } else if (umg_slice_eq(k, "currency") || umg_slice_eq(k, "base")) {
        int base = k.ptr[0] == 'b';
        const char *name = base ? "base" : "currency";
        int seen = member_str(r, it, name, &s);
        if (seen && (m = umg_cost_check_currency(s, base ? r->rate.base : r->rate.currency)) != NULL) {
            row_fail(r, name, "invalid_value", m);
        }
        *(base ? &r->base_seen : &r->currency_seen) = (char)seen;
    } else if (umg_slice_eq(k, "rate")) {
        double v = it->type == UMG_JSON_INT64    ? (double)it->num.i
                   : it->type == UMG_JSON_UINT64 ? (double)it->num.u
                                                 : it->num.d;
        r->amount_seen = 1;
        if (it->type != UMG_JSON_INT64 && it->type != UMG_JSON_UINT64 && it->type != UMG_JSON_DOUBLE) {
            row_fail(r, "rate", "invalid_type", "must be a number");
        } else if ((m = umg_cost_check_rate(v)) != NULL) {
            row_fail(r, "rate", "invalid_value", m);
        } else {
            r->rate.rate = v;
        }
    } else {
        row_fail_key(r, k, "unknown_field", "not a member of a rate row");
    }
}

/* Checks one element of the array into r (r->efield set when it is bad). */
static void read_row(row_t *r, umg_json_val_t v)
{
    umg_json_iter_t it;
    if (umg_json_object_iter(v, &it) != UMG_JSON_OK) {
        row_fail_key(r, UMG_SLICE_NULL, "invalid_type", "a row must be an object");
        return;
    }
    umg_json_item_t items[16];
    size_t n;
    while ((n = umg_json_object_next(&it, items, UMG_ARRAY_SIZE(items))) > 0) {
        for (size_t i = 0; i < n; i++) {
            if (r->is_rate) {
                rate_member(r, &items[i]);
            } else {
                cost_member(r, &items[i]);
            }
        }
    }
    if (!r->date_seen) {
        row_fail(r, "date", "required", "date (YYYY-MM-DD) is required");
    }
    if (r->is_rate) {
        if (!r->currency_seen) {
            row_fail(r, "currency", "required", "currency is required");
        }
        if (!r->base_seen) {
            row_fail(r, "base", "required", "base is required");
        }
        if (!r->amount_seen) {
            row_fail(r, "rate", "required", "rate is required");
        }
        if (r->ecode == NULL && memcmp(r->rate.currency, r->rate.base, 3) == 0) {
            row_fail(r, "base", "invalid_value", "base must differ from currency");
        }
        return;
    }
    if (r->cost.source.len == 0) {
        row_fail(r, "source", "required", "source is required");
    }
    if (r->cost.campaign.len == 0) {
        row_fail(r, "campaign", "required", "campaign is required");
    }
    if (!r->currency_seen) {
        row_fail(r, "currency", "required", "currency is required");
    }
    if (!r->amount_seen) {
        row_fail(r, "cost", "required", "cost is required");
    }
}

typedef struct post_s {
    cjob_t *j;
    const char *arr; /* "costs" or "rates" */
    size_t accepted, replaced, nerr;
    umg_buf_t errs;
    int rc;
} post_t;

/* Appends one entry to the answer's errors: index, line (CSV bodies; 0 leaves it out), field (NULL: null). */
static int add_error(post_t *p, size_t index, size_t line, const char *field, size_t flen, const char *code,
                     const char *msg)
{
    int rc = umg_buf_printf(&p->errs, "%s{\"index\":%zu,", p->nerr ? "," : "", index);
    rc = rc || line == 0 ? rc : umg_buf_printf(&p->errs, "\"line\":%zu,", line);
    rc = rc ? rc : umg_buf_append(&p->errs, "\"field\":", 8);
    rc = rc ? rc : field != NULL ? umg_buf_json_str(&p->errs, field, flen) : umg_buf_append(&p->errs, "null", 4);
    rc = rc ? rc : umg_buf_printf(&p->errs, ",\"code\":\"%s\",\"message\":", code);
    rc = rc ? rc : umg_buf_json_str(&p->errs, msg, strlen(msg));
    rc = rc ? rc : umg_buf_putc(&p->errs, '}');
    p->nerr++;
    return rc;
}

static int post_row(void *ctx, size_t index, umg_json_val_t v)
{
    post_t *p = ctx;
    row_t r = {.is_rate = p->j->op == OP_POST_RATES};
    read_row(&r, v);
    if (r.ecode != NULL) {
        char field[160];
        int fn = snprintf(field, sizeof(field), "%s[%zu]%s%.*s", p->arr, index, r.efield.len ? "." : "",
                          (int)UMG_MIN(r.efield.len, 128), r.efield.ptr ? r.efield.ptr : "");
        p->rc = add_error(p, index, 0, field, (size_t)UMG_MIN(fn, (int)sizeof(field) - 1), r.ecode, r.emsg);
        return p->rc;
    }
    int replaced = 0;
    p->rc = r.is_rate ? umg_cost_rate_put(W.c, p->j->org, &r.rate, &replaced)
                      : umg_cost_put(W.c, p->j->app, &r.cost, &replaced);
    p->accepted += p->rc == UMG_OK;
    p->replaced += p->rc == UMG_OK && replaced;
    return p->rc;
}

/* Parses the body down to its array; answers the job's error and returns non-zero when it is not one. */
static int body_array(cjob_t *j, const char *name, umg_json_val_t *arr)
{
    umg_json_val_t root;
    umg_json_err_t e = umg_json_parse(W.json, j->body ? j->body : "", j->body_len, &root);
    if (e == UMG_JSON_ENOMEM) {
        job_error(j, 503, "out_of_memory", NULL, "out of memory; retry");
        return -1;
    }
    if (e != UMG_JSON_OK || umg_json_type(root) != UMG_JSON_OBJECT) {
        job_error(j, 400, "invalid_json", NULL,
                  name[0] == 'c' ? "the body must be a JSON object {\"costs\": [...]}"
                                 : "the body must be a JSON object {\"rates\": [...]}");
        return -1;
    }
    umg_json_iter_t it;
    umg_json_item_t items[8];
    size_t n;
    umg_json_object_iter(root, &it);
    while ((n = umg_json_object_next(&it, items, UMG_ARRAY_SIZE(items))) > 0) {
        for (size_t i = 0; i < n; i++) {
            if (!umg_slice_eq(umg_slice(items[i].key, items[i].klen), name)) {
                snprintf(j->fieldbuf, sizeof(j->fieldbuf), "%.*s", (int)UMG_MIN(items[i].klen, 128), items[i].key);
                job_error(j, 400, "unknown_field", j->fieldbuf, "the body takes one member, the array of rows");
                return -1;
            }
        }
    }
    if (umg_json_object_find(root, name, strlen(name), arr) != UMG_JSON_OK) {
        job_error(j, 400, "required", name, "the array of rows is required");
        return -1;
    }
    if (umg_json_type(*arr) != UMG_JSON_ARRAY) {
        job_error(j, 400, "invalid_type", name, "must be an array of rows");
        return -1;
    }
    if (umg_json_array_size(*arr) > UMG_COST_MAX_ROWS) {
        job_error(j, 413, "too_many_rows", name, "at most 10000 rows per request");
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- CSV bodies */

typedef struct head_err_s {
    cjob_t *j;
    int set;
} head_err_t;

static void head_problem(void *ctx, umg_slice_t col, const char *code, const char *msg)
{
    head_err_t *h = ctx;
    if (!h->set) {
        h->set = 1;
        snprintf(h->j->fieldbuf, sizeof(h->j->fieldbuf), "%.*s", (int)UMG_MIN(col.len, 128), col.ptr);
        job_error(h->j, 400, code, h->j->fieldbuf, msg);
    }
}

/* Reads the header line into *m; answers the job's 400 and returns non-zero when it is missing or wrong. */
static int csv_head(cjob_t *j, umg_csv_t *csv, umg_cost_lines_t *m)
{
    umg_slice_t f[UMG_CSV_MAX_FIELDS];
    size_t n, line;
    const char *msg;
    int rc = umg_csv_next(csv, f, UMG_CSV_MAX_FIELDS, &n, &line, &msg);
    if (rc == UMG_ENOMEM) {
        job_error(j, 503, "out_of_memory", NULL, "out of memory; retry");
        return -1;
    }
    if (rc != UMG_OK) {
        job_error(j, 400, "invalid_csv", NULL,
                  rc == UMG_EAGAIN ? "the body is empty: its first line must name the columns" : msg);
        return -1;
    }
    head_err_t h = {j, 0};
    return umg__cost_lines_header(m, j->op == OP_POST_RATES, f, n, head_problem, &h) != 0 ? -1 : 0;
}

/* Checks and stores every line after the header; UMG_ERANGE past UMG_COST_MAX_ROWS lines. */
static int csv_rows(post_t *p, umg_csv_t *csv, const umg_cost_lines_t *m)
{
    umg_slice_t f[UMG_CSV_MAX_FIELDS];
    size_t n, line, index = 0;
    const char *msg;
    int rc;
    while ((rc = umg_csv_next(csv, f, UMG_CSV_MAX_FIELDS, &n, &line, &msg)) != UMG_EAGAIN) {
        if (rc != UMG_OK && rc != UMG_EPARSE) {
            return rc;
        }
        if (index == UMG_COST_MAX_ROWS) {
            return UMG_ERANGE;
        }
        const char *col = NULL;
        int replaced = 0, stored = 0;
        char count[96];
        if (rc == UMG_EPARSE) {
            rc = add_error(p, index, line, NULL, 0, "invalid_csv", msg);
        } else if (n != m->ncols) {
            snprintf(count, sizeof(count), "expected %zu fields as in the header, found %zu", m->ncols, n);
            rc = add_error(p, index, line, NULL, 0, "invalid_csv", count);
        } else if (m->rates) {
            umg_rate_row_t r;
            col = umg__cost_lines_rate(m, f, &r, &msg);
            stored = col == NULL;
            rc = col ? add_error(p, index, line, col, strlen(col), "invalid_value", msg)
                     : umg_cost_rate_put(W.c, p->j->org, &r, &replaced);
        } else {
            umg_cost_row_t r;
            col = umg__cost_lines_cost(m, f, &r, &msg);
            stored = col == NULL;
            rc = col ? add_error(p, index, line, col, strlen(col), "invalid_value", msg)
                     : umg_cost_put(W.c, p->j->app, &r, &replaced);
        }
        if (rc != UMG_OK) {
            return rc;
        }
        p->accepted += (size_t)stored;
        p->replaced += (size_t)(stored && replaced);
        index++;
    }
    return UMG_OK;
}

static void run_post(cjob_t *j)
{
    int rates = j->op == OP_POST_RATES;
    post_t p = {.j = j, .arr = rates ? "rates" : "costs"};
    umg_json_val_t arr;
    umg_csv_t csv;
    umg_cost_lines_t cols;
    if (j->csv_body) {
        umg_csv_init(&csv, j->body ? j->body : "", j->body_len);
        if (csv_head(j, &csv, &cols) != 0) {
            umg_csv_free(&csv);
            return;
        }
    } else if (body_array(j, p.arr, &arr) != 0) {
        return;
    }
    int rc = umg_cost_begin(W.c);
    if (rc != UMG_OK) {
        if (j->csv_body) {
            umg_csv_free(&csv);
        }
        job_error(j, 503, "database_busy", NULL, "the database is busy (an import?); retry");
        return;
    }
    if (j->csv_body) {
        rc = csv_rows(&p, &csv, &cols);
        umg_csv_free(&csv);
        if (rc == UMG_ERANGE) {
            umg_cost_rollback(W.c);
            umg_buf_free(&p.errs);
            job_error(j, 413, "too_many_rows", NULL, "at most 10000 rows per request");
            return;
        }
    } else {
        rc = umg_json_array_foreach(arr, post_row, &p);
    }
    rc = rc ? rc : p.rc;
    char detail[128];
    snprintf(detail, sizeof(detail), "{\"accepted\":%zu,\"replaced\":%zu,\"errors\":%zu}", p.accepted, p.replaced,
             p.nerr);
    umg_audit_t a = {.org_id = j->org,
                     .actor = j->actor,
                     .action = rates ? "rates.write" : "costs.write",
                     .target = rates ? NULL : j->app_public,
                     .outcome = "ok",
                     .ip = j->ip,
                     .request_id = j->request_id,
                     .detail = detail};
    rc = rc ? rc : umg_meta_audit(umg__cost_db(W.c), &a);
    rc = rc ? rc : umg_cost_commit(W.c);
    if (rc != UMG_OK) {
        umg_cost_rollback(W.c);
        umg_buf_free(&p.errs);
        job_error(j, 503, rc == UMG_ENOMEM ? "out_of_memory" : "database_unavailable", NULL,
                  "nothing was stored; retry");
        return;
    }
    rc = umg_buf_printf(&j->out, "{\"accepted\":%zu,\"replaced\":%zu,\"errors\":[", p.accepted, p.replaced);
    rc = rc ? rc : umg_buf_append(&j->out, p.errs.ptr ? p.errs.ptr : "", p.errs.len);
    rc = rc ? rc : umg_buf_append(&j->out, "]}\n", 3);
    umg_buf_free(&p.errs);
    if (rc != UMG_OK) {
        /* Stored and audited; only the answer is lost. */
        job_error(j, 503, "out_of_memory", NULL, "out of memory after storing the rows; retrying is safe");
        return;
    }
    j->status = 200;
    j->ctype = "application/json";
}

/* ---------------------------------------------------------------- the worker */

static void answer(umg_http_req_t *req, void *data)
{
    cjob_t *j = data;
    if (req != NULL) {
        if (j->status == 200) {
            umg_http_respond(req, 200, j->ctype, j->out.ptr ? j->out.ptr : "", j->out.len,
                             "Cache-Control: no-store\r\n");
        } else {
            umg_http_error(req, j->status, j->code, j->field, j->message);
        }
    }
    umg_buf_free(&j->out);
    umg_free(j->body);
    umg_free(j);
}

static void *worker(void *arg)
{
    umg_thread_name("umg-cost");
    (void)arg;
    pthread_mutex_lock(&W.mu);
    for (;;) {
        while (W.head == NULL && !W.stopping) {
            pthread_cond_wait(&W.cv, &W.mu);
        }
        cjob_t *j = W.head;
        if (j == NULL) {
            break; /* stopping, nothing left */
        }
        W.head = j->next;
        if (W.head == NULL) {
            W.tail = NULL;
        }
        W.queued--;
        pthread_mutex_unlock(&W.mu);
        if (j->op == OP_POST_COSTS || j->op == OP_POST_RATES) {
            run_post(j);
        } else {
            run_list(j);
        }
        umg_http_resume(j->defer, answer, j);
        pthread_mutex_lock(&W.mu);
    }
    pthread_mutex_unlock(&W.mu);
    return NULL;
}

int umg_cost_ep_start(const char *data_dir)
{
    int rc = umg_cost_open(data_dir, &W.c);
    if (rc != UMG_OK) {
        return rc;
    }
    if (umg_json_parser_new(64u << 20, &W.json) != UMG_JSON_OK) {
        rc = UMG_ENOMEM;
        goto fail;
    }
    W.stopping = 0;
    if (pthread_create(&W.thread, NULL, worker, NULL) != 0) {
        rc = UMG_ENOMEM;
        goto fail;
    }
    W.running = 1;
    return UMG_OK;
fail:
    umg_json_parser_free(W.json);
    umg_cost_close(W.c);
    W.json = NULL;
    W.c = NULL;
    return rc;
}

void umg_cost_ep_stop(void)
{
    pthread_mutex_lock(&W.mu);
    int running = W.running;
    W.stopping = 1;
    W.running = 0;
    pthread_cond_signal(&W.cv);
    pthread_mutex_unlock(&W.mu);
    if (!running) {
        return;
    }
    pthread_join(W.thread, NULL); /* answers what was queued first */
    umg_json_parser_free(W.json);
    umg_cost_close(W.c);
    W.json = NULL;
    W.c = NULL;
}

static void enqueue(umg_http_req_t *req, cjob_t *j)
{
    pthread_mutex_lock(&W.mu);
    int down = !W.running || W.stopping, full = W.queued >= QUEUE_MAX;
    if (!down && !full) {
        j->defer = umg_http_defer(req);
        if (W.tail != NULL) {
            W.tail->next = j;
        } else {
            W.head = j;
        }
        W.tail = j;
        W.queued++;
        pthread_cond_signal(&W.cv);
    }
    pthread_mutex_unlock(&W.mu);
    if (down || full) {
        umg_free(j->body);
        umg_free(j);
        umg_http_error(req, 503, down ? "not_ready" : "overloaded", NULL,
                       down ? "costs are not available now; retry shortly" : "too many cost requests; retry shortly");
    }
}

/* ---------------------------------------------------------------- handlers */

/* from / to as YYYY-MM-DD (inclusive); format json or csv. Answers 400 itself. */
static int list_params(umg_http_req_t *req, cjob_t *j)
{
    static const char *const names[] = {"from", "to"};
    int32_t *dst[] = {&j->from, &j->to};
    j->from = DAY_MIN;
    j->to = DAY_MAX;
    for (int i = 0; i < 2; i++) {
        umg_slice_t v;
        if (umg_http_query_param(req, names[i], &v) == UMG_OK && umg_date_parse(v, dst[i]) != UMG_OK) {
            umg_http_error(req, 400, "invalid_value", names[i], "must be a calendar date YYYY-MM-DD");
            return -1;
        }
    }
    if (j->to < j->from) {
        umg_http_error(req, 400, "invalid_value", "to", "to must not be before from");
        return -1;
    }
    umg_slice_t f;
    if (umg_http_query_param(req, "format", &f) == UMG_OK && !umg_slice_eq(f, "json")) {
        if (!umg_slice_eq(f, "csv")) {
            umg_http_error(req, 400, "invalid_value", "format", "format must be json or csv");
            return -1;
        }
        j->csv = 1;
    }
    return 0;
}

/* Authenticates into *who and fills the job's actor, ip and request id. */
static int auth(umg_ingest_t *ing, umg_http_req_t *req, umg_principal_t *who, cjob_t *j)
{
    if (umg__ingest_auth(ing, req, 0, who) != 0) {
        return -1;
    }
    snprintf(j->actor, sizeof(j->actor), "%s", who->id);
    snprintf(j->ip, sizeof(j->ip), "%s", umg_http_client_ip(req));
    snprintf(j->request_id, sizeof(j->request_id), "%s", umg_http_request_id(req));
    return 0;
}

/* The app of a costs request: ?app=, or the app secret's own app. Answers 400/403/404 itself. */
static int costs_app(umg_ingest_t *ing, umg_http_req_t *req, const umg_principal_t *who, uint32_t perm, cjob_t *j)
{
    int secret = who->kind == UMG_PRINCIPAL_APP_SECRET;
    umg_slice_t v;
    umg_app_t app;
    if (umg_http_query_param(req, "app", &v) != UMG_OK || v.len == 0) {
        if (!secret) {
            umg_http_error(req, 400, "required", "app", "the query parameter app (the app id) is required");
            return -1;
        }
        app = who->app;
    } else if (umg_apps_find_id(ing->apps, v, &app) != UMG_OK) {
        umg_http_error(req, 404, "not_found", "app", "no such app, or no access to it");
        return -1;
    }
    /* The app secret writes and reads its own app's costs; users and API tokens need the permission. */
    int ok = secret ? who->app.id == app.id : umg_principal_can(who, perm, &app);
    if (!ok) {
        if (!secret && umg_principal_can(who, UMG_PERM_APPS_READ, &app)) {
            umg_http_error(req, 403, "forbidden", "app",
                           perm == UMG_PERM_COSTS_WRITE ? "this needs the costs:write permission on this app"
                                                        : "this needs the reports:read permission on this app");
        } else {
            umg_http_error(req, 404, "not_found", "app", "no such app, or no access to it");
        }
        return -1;
    }
    j->app = app.id;
    j->org = app.org;
    memcpy(j->app_public, app.public_id, sizeof(j->app_public));
    return 0;
}

static int copy_body(umg_http_req_t *req, cjob_t *j)
{
    umg_slice_t b = umg_http_body(req);
    j->body = umg_malloc(b.len + 1);
    if (j->body == NULL) {
        umg_http_error(req, 503, "out_of_memory", NULL, "out of memory; retry");
        return -1;
    }
    if (b.len) {
        memcpy(j->body, b.ptr, b.len);
    }
    j->body[b.len] = '\0';
    j->body_len = b.len;
    return 0;
}

static void handle(umg_http_req_t *req, void *thread_data, int rates)
{
    umg_ingest_t *ing = umg__ingest_of(thread_data);
    umg_slice_t method = umg_http_method(req);
    int post = umg_slice_eq(method, "POST");
    /* One route per path (metrics are by route): the methods are told apart here. */
    if (!post && !umg_slice_eq(method, "GET") && !umg_slice_eq(method, "HEAD")) {
        umg_http_error(req, 405, "method_not_allowed", NULL, "this path takes GET and POST");
        return;
    }
    uint32_t perm = post ? UMG_PERM_COSTS_WRITE : UMG_PERM_REPORTS_READ;
    cjob_t *j = umg_calloc(1, sizeof(*j));
    if (j == NULL) {
        umg_http_error(req, 503, "out_of_memory", NULL, "out of memory; retry");
        return;
    }
    umg_principal_t who;
    int bad = auth(ing, req, &who, j);
    if (!bad && rates) {
        /* Rates belong to the organization: the app secret's, or the user's / token's with the permission. */
        j->org = who.kind == UMG_PRINCIPAL_APP_SECRET ? who.app.org : who.org;
        if (who.kind != UMG_PRINCIPAL_APP_SECRET && !umg_principal_can(&who, perm, NULL)) {
            umg_http_error(req, 403, "forbidden", NULL,
                           post ? "this needs the costs:write permission" : "this needs the reports:read permission");
            bad = 1;
        } else if (post && who.kind != UMG_PRINCIPAL_APP_SECRET && !who.all_apps) {
            /* They convert every app's amounts: a user or token limited to some apps would change the reports
             * of apps it cannot see. */
            umg_http_error(req, 403, "forbidden", NULL,
                           "rates apply to every app of the organization: this needs costs:write on all of them");
            bad = 1;
        }
    } else if (!bad) {
        bad = costs_app(ing, req, &who, perm, j);
    }
    if (!bad) {
        j->op = rates ? (post ? OP_POST_RATES : OP_GET_RATES) : (post ? OP_POST_COSTS : OP_GET_COSTS);
        bad = post ? copy_body(req, j) : list_params(req, j);
        umg_slice_t ct = umg_http_header(req, "content-type");
        j->csv_body = post && ct.len >= 8 && strncasecmp(ct.ptr, "text/csv", 8) == 0 &&
                      (ct.len == 8 || ct.ptr[8] == ';' || ct.ptr[8] == ' ');
    }
    if (bad) {
        umg_free(j->body);
        umg_free(j);
        return;
    }
    enqueue(req, j);
}

void umg_cost_ep_costs(umg_http_req_t *req, void *thread_data)
{
    handle(req, thread_data, 0);
}

void umg_cost_ep_rates(umg_http_req_t *req, void *thread_data)
{
    handle(req, thread_data, 1);
}
