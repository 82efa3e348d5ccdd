/*
 * umg_cost.h - ad spend (costs) and currency rates, for the reports' cost,
 * CPI and ROAS (docs/costs.md).
 *
 * Both live in DATA/meta.db (schema migration 4). A cost row is one app's
 * spend on one day for one (source, campaign, adset, ad, country), in one
 * currency, in micro-units; a rate says what one unit of a currency was worth
 * in a base currency on a day, per organization. Writing a row whose key is
 * already stored replaces it, so re-sending or re-importing never adds.
 *
 * A umg_cost_t is one thread's connection (SQLite, WAL, a busy timeout): the
 * report engine, the HTTP worker and the CLI each open their own. Also here:
 * the RFC 4180 CSV reader the CLI imports with (pure), the HTTP endpoints and
 * the `unmogrowp import` command.
 */
#ifndef UMG_COST_H
#define UMG_COST_H

#include "umg_core.h"
#include "umg_http.h"

typedef struct umg_cost_s umg_cost_t; /* one thread's connection to DATA/meta.db */

/** Opens (creating and migrating) DATA/meta.db. Close with umg_cost_close (accepts NULL). */
int umg_cost_open(const char *data_dir, umg_cost_t **out);
void umg_cost_close(umg_cost_t *c);

typedef struct umg_cost_row_s {
    int32_t day;
    umg_slice_t source, campaign, adset, ad, country; /* borrowed until fn returns */
    char currency[4];
    int64_t micros;
    uint32_t sid[5]; /* from the cache (umg_cost_cache_each): each string's number there, 0 for "" (else 0) */
} umg_cost_row_t;

/**
 * Every cost row of the app (internal id) with from_day <= day <= to_day, in
 * (day, source, campaign, adset, ad, country) order. A non-zero return from
 * fn stops and is returned. The row and its slices are borrowed until fn
 * returns.
 */
int umg_cost_each(umg_cost_t *c, uint32_t app, int32_t from_day, int32_t to_day,
                  int (*fn)(void *ctx, const umg_cost_row_t *r), void *ctx);

/** The app's cost version: 0 before its first cost write, then bumped by every insert, update and delete. */
int umg_cost_version(umg_cost_t *c, uint32_t app, int64_t *version);

/*
 * Recently read cost rows, kept for the next reports (src/cost/cache.c): one
 * thread's, with its connection. umg_cost_cache_each is umg_cost_each, from
 * memory when the app's rows of a period around the one asked for were read
 * before and its cost version is unchanged since.
 */
typedef struct umg_cost_cache_s umg_cost_cache_t;
/** max_rows: rows kept over all apps (0: 1,048,576); a period with more is read from meta.db each time. */
int umg_cost_cache_new(size_t max_rows, umg_cost_cache_t **out);
void umg_cost_cache_free(umg_cost_cache_t *k);
int umg_cost_cache_each(umg_cost_cache_t *k, umg_cost_t *c, uint32_t app, int32_t from_day, int32_t to_day,
                        int (*fn)(void *ctx, const umg_cost_row_t *r), void *ctx);

/**
 * The factor converting an amount in `from` to `to` on day for org (internal
 * id): 1.0 when from equals to; else the direct rate (currency=from,
 * base=to) or the inverse one (currency=to, base=from; 1/rate), whichever
 * has the later date on or before day (the direct one on a tie).
 * UMG_ENOENT when neither exists: the amount has no rate (never convert at 1).
 */
int umg_cost_rate(umg_cost_t *c, uint32_t org, int32_t day, const char *from, const char *to, double *factor);
/** umg_cost_rate for each of ndays days from from_day into factors[i] (NAN: no rate), in two reads of each direction.
 */
int umg_cost_rate_days(umg_cost_t *c, uint32_t org, int32_t from_day, size_t ndays, const char *from, const char *to,
                       double *factors);

/* ------------------------------------------------------------ writing */

/** BEGIN IMMEDIATE / COMMIT / ROLLBACK on the connection: one transaction per request or import. */
int umg_cost_begin(umg_cost_t *c);
int umg_cost_commit(umg_cost_t *c);
void umg_cost_rollback(umg_cost_t *c);

/** Stores a (validated) cost row of app, replacing the row of the same key; *replaced says whether one was. */
int umg_cost_put(umg_cost_t *c, uint32_t app, const umg_cost_row_t *r, int *replaced);

typedef struct umg_rate_row_s {
    int32_t day;
    char currency[4], base[4];
    double rate;
} umg_rate_row_t;

/** Stores a (validated) rate of org, replacing the one of the same (day, currency, base). */
int umg_cost_rate_put(umg_cost_t *c, uint32_t org, const umg_rate_row_t *r, int *replaced);
/** Every rate of org with from_day <= day <= to_day, in (day, currency, base) order. */
int umg_cost_rates_each(umg_cost_t *c, uint32_t org, int32_t from_day, int32_t to_day,
                        int (*fn)(void *ctx, const umg_rate_row_t *r), void *ctx);

/* ------------------------------------------------------------ validation */

/*
 * One field of a cost or rate row, checked the same way for JSON and CSV
 * input. Each returns NULL when the value is good (writing the parsed value)
 * or a message for the error.
 */
const char *umg_cost_check_date(umg_slice_t s, int32_t *day);
/** source, campaign (required: non-empty), adset, ad: UTF-8 without control characters, <= 256 bytes. */
const char *umg_cost_check_name(umg_slice_t s, int required);
/** Empty, or ISO 3166-1 alpha-2 in upper case. */
const char *umg_cost_check_country(umg_slice_t s);
/** An ISO 4217 code (upper case); out gets it with a NUL. */
const char *umg_cost_check_currency(umg_slice_t s, char out[4]);
/** cost >= 0, finite, at most UMG_COST_MAX; micros: the shortest decimal that reads back as cost (the number as
 *  written, up to 17 significant digits) in millionths, rounded half up. */
const char *umg_cost_check_amount(double cost, int64_t *micros);
/** The same for a decimal text (a CSV field): every digit counts, so a cost of any size keeps its millionths. */
const char *umg_cost_parse_amount(umg_slice_t s, int64_t *micros);
/** rate > 0 and finite. */
const char *umg_cost_check_rate(double rate);
/** A decimal number as text ("12", "0.5", "1e3"; no sign, no spaces, no nan/inf) into *out. */
const char *umg_cost_parse_number(umg_slice_t s, double *out);

#define UMG_COST_MAX 1e12
#define UMG_COST_MAX_NAME 256
#define UMG_COST_MAX_ROWS 10000

/* ------------------------------------------------------------ CSV (csv.c, pure) */

/*
 * An RFC 4180 reader: comma-separated fields, fields in double quotes may
 * hold commas, line breaks and "" (a quote); records end with CRLF or LF; a
 * UTF-8 BOM at the start is skipped; blank lines are skipped. The reader
 * keeps pointers into data (borrowed for the reader's life) and a scratch
 * buffer of its own for the fields of the current record.
 */
typedef struct umg_csv_s {
    const char *data;
    size_t len, pos;
    size_t line; /* the line the next record starts on (1-based) */
    umg_buf_t scratch;
    size_t *offs; /* field start offsets into scratch, then lengths: 2 per field */
    size_t cap;
} umg_csv_t;

#define UMG_CSV_MAX_FIELDS 64

void umg_csv_init(umg_csv_t *r, const char *data, size_t len);
void umg_csv_free(umg_csv_t *r);
/**
 * Reads the next record into fields[0..*n) (at most max; borrowed until the
 * next call) and its first line into *line. UMG_OK; UMG_EAGAIN at the end;
 * UMG_EPARSE for a malformed record (*msg says why: an unclosed quote, text
 * after a closing quote, a quote inside an unquoted field, more than max
 * fields), after which reading goes on at the next line; UMG_ENOMEM.
 */
int umg_csv_next(umg_csv_t *r, umg_slice_t *fields, size_t max, size_t *n, size_t *line, const char **msg);

/* ------------------------------------------------------------ HTTP (cost_ep.c) */

/*
 * POST/GET /v1/costs, POST/GET /v1/rates (docs/api.md). Handlers run on the
 * loop threads with thread_data as the ingest handlers get it: they
 * authenticate and check parameters there, then hand the request to the cost
 * worker thread, which owns a umg_cost_t (SQLite never runs on a loop).
 */
/** Starts the worker on DATA/meta.db; call before the server serves. */
int umg_cost_ep_start(const char *data_dir);
/** Answers what is queued and stops the worker; call while the loops still run. Safe without a start. */
void umg_cost_ep_stop(void);
/* Route them with method "*": they answer GET (and HEAD) and POST, and 405 for other methods. */
void umg_cost_ep_costs(umg_http_req_t *req, void *thread_data); /* GET and POST /v1/costs */
void umg_cost_ep_rates(umg_http_req_t *req, void *thread_data); /* GET and POST /v1/rates */

/* ------------------------------------------------------------ CLI (import.c) */

/** `unmogrowp import costs|rates FILE.csv --data DIR --app APP_ID`: argv[0] is "import". Returns the exit status. */
int umg_cost_cli_import(int argc, char **argv);

#endif
