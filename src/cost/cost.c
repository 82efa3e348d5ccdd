/*
 * cost.c - cost and rate rows in DATA/meta.db: the connection, replacing
 * writes, reading a period back, the conversion rule of docs/costs.md, and
 * the field checks the JSON and CSV front ends share.
 */
#include "cost_int.h"
#include "umg_event.h"
#include "umg_meta.h"

#include <math.h>
#include <stdlib.h>

/* ---------------------------------------------------------------- the connection */

static const char *const sql_each = "SELECT day, source, campaign, adset, ad, country, currency, micros FROM costs"
                                    " WHERE app_id = ? AND day BETWEEN ? AND ?"
                                    " ORDER BY day, source, campaign, adset, ad, country";
static const char *const sql_rate = "SELECT day, rate FROM rates WHERE org_id = ? AND currency = ? AND base = ?"
                                    " AND day <= ? ORDER BY day DESC LIMIT 1";
static const char *const sql_upd = "UPDATE costs SET currency = ?8, micros = ?9, updated_us = ?10"
                                   " WHERE app_id = ?1 AND day = ?2 AND source = ?3 AND campaign = ?4"
                                   " AND adset = ?5 AND ad = ?6 AND country = ?7";
static const char *const sql_ins =
    "INSERT INTO costs (app_id, day, source, campaign, adset, ad, country, currency, micros, updated_us)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
static const char *const sql_rupd = "UPDATE rates SET rate = ?5, updated_us = ?6"
                                    " WHERE org_id = ?1 AND currency = ?2 AND base = ?3 AND day = ?4";
static const char *const sql_rins = "INSERT INTO rates (org_id, currency, base, day, rate, updated_us)"
                                    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
static const char *const sql_rspan = "SELECT day, rate FROM rates WHERE org_id = ? AND currency = ? AND base = ?"
                                     " AND day BETWEEN ? AND ? ORDER BY day";
static const char *const sql_ver = "SELECT version FROM cost_versions WHERE app_id = ?";
static const char *const sql_reach = "SELECT day, currency, base, rate FROM rates"
                                     " WHERE org_id = ? AND day BETWEEN ? AND ? ORDER BY day, currency, base";

int umg_cost_open(const char *data_dir, umg_cost_t **out)
{
    umg_cost_t *c = umg_calloc(1, sizeof(*c));
    if (c == NULL) {
        return UMG_ENOMEM;
    }
    /* umg_meta_open sets WAL, synchronous=FULL and a 5 s busy timeout, and runs the migrations. */
    int rc = umg_meta_open(data_dir, &c->db);
    if (rc != UMG_OK) {
        goto fail;
    }
    struct {
        const char *sql;
        sqlite3_stmt **st;
    } stmts[] = {{sql_each, &c->each},   {sql_rate, &c->rate}, {sql_upd, &c->upd},
                 {sql_ins, &c->ins},     {sql_rupd, &c->rupd}, {sql_rins, &c->rins},
                 {sql_reach, &c->reach}, {sql_ver, &c->ver},   {sql_rspan, &c->rspan}};
    for (size_t i = 0; i < UMG_ARRAY_SIZE(stmts); i++) {
        if (sqlite3_prepare_v3(c->db, stmts[i].sql, -1, SQLITE_PREPARE_PERSISTENT, stmts[i].st, NULL) != SQLITE_OK) {
            umg_log(UMG_LOG_ERROR, "cost", "cannot prepare a statement: %s", sqlite3_errmsg(c->db));
            rc = UMG_EIO;
            goto fail;
        }
    }
    *out = c;
    return UMG_OK;
fail:
    umg_cost_close(c);
    return rc;
}

void umg_cost_close(umg_cost_t *c)
{
    if (c == NULL) {
        return;
    }
    sqlite3_stmt *all[] = {c->each, c->rate, c->upd, c->ins, c->rupd, c->rins, c->reach, c->ver, c->rspan};
    for (size_t i = 0; i < UMG_ARRAY_SIZE(all); i++) {
        sqlite3_finalize(all[i]);
    }
    sqlite3_close(c->db);
    umg_free(c);
}

sqlite3 *umg__cost_db(umg_cost_t *c)
{
    return c->db;
}

int umg__cost_app(umg_cost_t *c, const char *public_id, uint32_t *app, uint32_t *org)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(c->db, "SELECT id, org_id FROM apps WHERE public_id = ?", -1, &st, NULL) != SQLITE_OK) {
        return UMG_EIO;
    }
    sqlite3_bind_text(st, 1, public_id, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    int rc = step == SQLITE_ROW ? UMG_OK : step == SQLITE_DONE ? UMG_ENOENT : UMG_EIO;
    if (rc == UMG_OK) {
        *app = (uint32_t)sqlite3_column_int64(st, 0);
        *org = (uint32_t)sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    return rc;
}

int umg_cost_begin(umg_cost_t *c)
{
    return sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK ? UMG_OK : UMG_EIO;
}

int umg_cost_commit(umg_cost_t *c)
{
    if (sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        umg_log(UMG_LOG_ERROR, "cost", "commit failed: %s", sqlite3_errmsg(c->db));
        return UMG_EIO;
    }
    return UMG_OK;
}

void umg_cost_rollback(umg_cost_t *c)
{
    if (!sqlite3_get_autocommit(c->db)) {
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    }
}

/* ---------------------------------------------------------------- costs */

static void bind_slice(sqlite3_stmt *st, int i, umg_slice_t s)
{
    sqlite3_bind_text(st, i, s.len ? s.ptr : "", (int)s.len, SQLITE_STATIC);
}

/* Runs a bound write statement and resets it; UMG_OK or UMG_EIO. */
static int step_write(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st) == SQLITE_DONE ? UMG_OK : UMG_EIO;
    if (rc != UMG_OK) {
        umg_log(UMG_LOG_ERROR, "cost", "write failed: %s", sqlite3_errmsg(sqlite3_db_handle(st)));
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

int umg_cost_put(umg_cost_t *c, uint32_t app, const umg_cost_row_t *r, int *replaced)
{
    int64_t now = umg_now_us();
    /* UPDATE first, INSERT when nothing matched: the caller learns whether the key was stored. */
    sqlite3_stmt *sts[2] = {c->upd, c->ins};
    for (int k = 0; k < 2; k++) {
        sqlite3_stmt *st = sts[k];
        sqlite3_bind_int64(st, 1, app);
        sqlite3_bind_int64(st, 2, r->day);
        bind_slice(st, 3, r->source);
        bind_slice(st, 4, r->campaign);
        bind_slice(st, 5, r->adset);
        bind_slice(st, 6, r->ad);
        bind_slice(st, 7, r->country);
        sqlite3_bind_text(st, 8, r->currency, 3, SQLITE_STATIC);
        sqlite3_bind_int64(st, 9, r->micros);
        sqlite3_bind_int64(st, 10, now);
        int rc = step_write(st);
        if (rc != UMG_OK) {
            return rc;
        }
        if (k == 0 && sqlite3_changes(c->db) > 0) {
            *replaced = 1;
            return UMG_OK;
        }
    }
    *replaced = 0;
    return UMG_OK;
}

static umg_slice_t col_slice(sqlite3_stmt *st, int i)
{
    const char *p = (const char *)sqlite3_column_text(st, i);
    return umg_slice(p ? p : "", p ? (size_t)sqlite3_column_bytes(st, i) : 0);
}

static void col_code(sqlite3_stmt *st, int i, char out[4])
{
    umg_slice_t s = col_slice(st, i);
    size_t n = UMG_MIN(s.len, 3);
    memcpy(out, s.ptr, n);
    out[n] = '\0';
}

int umg_cost_each(umg_cost_t *c, uint32_t app, int32_t from_day, int32_t to_day,
                  int (*fn)(void *ctx, const umg_cost_row_t *r), void *ctx)
{
    sqlite3_stmt *st = c->each;
    sqlite3_bind_int64(st, 1, app);
    sqlite3_bind_int64(st, 2, from_day);
    sqlite3_bind_int64(st, 3, to_day);
    int rc = UMG_OK, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        umg_cost_row_t r = {.day = (int32_t)sqlite3_column_int64(st, 0),
                            .source = col_slice(st, 1),
                            .campaign = col_slice(st, 2),
                            .adset = col_slice(st, 3),
                            .ad = col_slice(st, 4),
                            .country = col_slice(st, 5),
                            .micros = sqlite3_column_int64(st, 7)};
        col_code(st, 6, r.currency);
        rc = fn(ctx, &r);
        if (rc != 0) {
            break;
        }
    }
    if (rc == UMG_OK && step != SQLITE_DONE) {
        umg_log(UMG_LOG_ERROR, "cost", "cannot read costs: %s", sqlite3_errmsg(c->db));
        rc = UMG_EIO;
    }
    sqlite3_reset(st);
    return rc;
}

int umg_cost_version(umg_cost_t *c, uint32_t app, int64_t *version)
{
    sqlite3_stmt *st = c->ver;
    sqlite3_bind_int64(st, 1, app);
    int step = sqlite3_step(st);
    *version = step == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        umg_log(UMG_LOG_ERROR, "cost", "cannot read the cost version: %s", sqlite3_errmsg(c->db));
        return UMG_EIO;
    }
    return UMG_OK;
}

/* ---------------------------------------------------------------- rates */

int umg_cost_rate_put(umg_cost_t *c, uint32_t org, const umg_rate_row_t *r, int *replaced)
{
    int64_t now = umg_now_us();
    sqlite3_stmt *sts[2] = {c->rupd, c->rins};
    for (int k = 0; k < 2; k++) {
        sqlite3_stmt *st = sts[k];
        sqlite3_bind_int64(st, 1, org);
        sqlite3_bind_text(st, 2, r->currency, 3, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, r->base, 3, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, r->day);
        sqlite3_bind_double(st, 5, r->rate);
        sqlite3_bind_int64(st, 6, now);
        int rc = step_write(st);
        if (rc != UMG_OK) {
            return rc;
        }
        if (k == 0 && sqlite3_changes(c->db) > 0) {
            *replaced = 1;
            return UMG_OK;
        }
    }
    *replaced = 0;
    return UMG_OK;
}

int umg_cost_rates_each(umg_cost_t *c, uint32_t org, int32_t from_day, int32_t to_day,
                        int (*fn)(void *ctx, const umg_rate_row_t *r), void *ctx)
{
    sqlite3_stmt *st = c->reach;
    sqlite3_bind_int64(st, 1, org);
    sqlite3_bind_int64(st, 2, from_day);
    sqlite3_bind_int64(st, 3, to_day);
    int rc = UMG_OK, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        umg_rate_row_t r = {.day = (int32_t)sqlite3_column_int64(st, 0), .rate = sqlite3_column_double(st, 3)};
        col_code(st, 1, r.currency);
        col_code(st, 2, r.base);
        rc = fn(ctx, &r);
        if (rc != 0) {
            break;
        }
    }
    if (rc == UMG_OK && step != SQLITE_DONE) {
        umg_log(UMG_LOG_ERROR, "cost", "cannot read rates: %s", sqlite3_errmsg(c->db));
        rc = UMG_EIO;
    }
    sqlite3_reset(st);
    return rc;
}

/* The newest rate of (currency, base) on or before day: UMG_OK, UMG_ENOENT or UMG_EIO. */
static int latest(umg_cost_t *c, uint32_t org, int32_t day, const char *currency, const char *base, int32_t *at,
                  double *rate)
{
    sqlite3_stmt *st = c->rate;
    sqlite3_bind_int64(st, 1, org);
    sqlite3_bind_text(st, 2, currency, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, base, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, day);
    int step = sqlite3_step(st);
    int rc = step == SQLITE_ROW ? UMG_OK : step == SQLITE_DONE ? UMG_ENOENT : UMG_EIO;
    if (rc == UMG_OK) {
        *at = (int32_t)sqlite3_column_int64(st, 0);
        *rate = sqlite3_column_double(st, 1);
    }
    sqlite3_reset(st);
    return rc;
}

/* A stored rate's day and value, or none (day INT32_MIN). */
typedef struct rate_at_s {
    int32_t day;
    double rate;
} rate_at_t;

/* The rates of (currency, base) in effect on each day of [from_day, from_day + ndays): out[i] (none: day INT32_MIN). */
static int rates_in_effect(umg_cost_t *c, uint32_t org, int32_t from_day, size_t ndays, const char *currency,
                           const char *base, rate_at_t *out)
{
    rate_at_t cur = {INT32_MIN, 0};
    int rc = latest(c, org, from_day, currency, base, &cur.day, &cur.rate);
    if (rc != UMG_OK && rc != UMG_ENOENT) {
        return rc;
    }
    if (rc == UMG_ENOENT) {
        cur.day = INT32_MIN;
    }
    sqlite3_stmt *st = c->rspan;
    sqlite3_bind_int64(st, 1, org);
    sqlite3_bind_text(st, 2, currency, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, base, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, (int64_t)from_day + 1);
    sqlite3_bind_int64(st, 5, (int64_t)from_day + (int64_t)ndays - 1);
    int step = sqlite3_step(st);
    for (size_t i = 0; i < ndays; i++) {
        int64_t day = (int64_t)from_day + (int64_t)i;
        for (; step == SQLITE_ROW && sqlite3_column_int64(st, 0) <= day; step = sqlite3_step(st)) {
            cur.day = (int32_t)sqlite3_column_int64(st, 0);
            cur.rate = sqlite3_column_double(st, 1);
        }
        out[i] = cur;
    }
    while (step == SQLITE_ROW) {
        step = sqlite3_step(st);
    }
    sqlite3_reset(st);
    return step == SQLITE_DONE ? UMG_OK : UMG_EIO;
}

/* The factor of one day from the direct and the inverse rate in effect (the rule of umg_cost_rate). */
static int factor_of(rate_at_t d, rate_at_t inv, double *factor)
{
    /* Stored rates are > 0 (checked on the way in); a damaged one counts as absent. */
    int direct = d.day != INT32_MIN && d.rate > 0 && isfinite(d.rate);
    int inverse = inv.day != INT32_MIN && inv.rate > 0 && isfinite(inv.rate);
    if (direct && (!inverse || d.day >= inv.day)) {
        *factor = d.rate;
        return UMG_OK;
    }
    if (inverse) {
        *factor = 1.0 / inv.rate;
        return UMG_OK;
    }
    return UMG_ENOENT;
}

int umg_cost_rate_days(umg_cost_t *c, uint32_t org, int32_t from_day, size_t ndays, const char *from, const char *to,
                       double *factors)
{
    if (from == NULL || to == NULL) {
        return UMG_EINVAL;
    }
    for (size_t i = 0; i < ndays && strcmp(from, to) == 0; i++) {
        factors[i] = 1.0;
    }
    if (strcmp(from, to) == 0) {
        return UMG_OK;
    }
    rate_at_t *d = umg_malloc(2 * (ndays ? ndays : 1) * sizeof(*d)), *inv = d + ndays;
    if (d == NULL) {
        return UMG_ENOMEM;
    }
    int rc = rates_in_effect(c, org, from_day, ndays, from, to, d);
    rc = rc ? rc : rates_in_effect(c, org, from_day, ndays, to, from, inv);
    for (size_t i = 0; rc == UMG_OK && i < ndays; i++) {
        if (factor_of(d[i], inv[i], &factors[i]) != UMG_OK) {
            factors[i] = NAN;
        }
    }
    umg_free(d);
    return rc == UMG_OK ? UMG_OK : UMG_EIO;
}

int umg_cost_rate(umg_cost_t *c, uint32_t org, int32_t day, const char *from, const char *to, double *factor)
{
    if (from == NULL || to == NULL) {
        return UMG_EINVAL;
    }
    if (strcmp(from, to) == 0) {
        *factor = 1.0;
        return UMG_OK;
    }
    rate_at_t d = {INT32_MIN, 0}, inv = {INT32_MIN, 0};
    int drc = latest(c, org, day, from, to, &d.day, &d.rate);
    int irc = latest(c, org, day, to, from, &inv.day, &inv.rate);
    if ((drc != UMG_OK && drc != UMG_ENOENT) || (irc != UMG_OK && irc != UMG_ENOENT)) {
        return UMG_EIO;
    }
    d.day = drc == UMG_OK ? d.day : INT32_MIN;
    inv.day = irc == UMG_OK ? inv.day : INT32_MIN;
    return factor_of(d, inv, factor);
}

/* ---------------------------------------------------------------- field checks */

const char *umg_cost_check_date(umg_slice_t s, int32_t *day)
{
    if (s.len == 0) {
        return "a date (YYYY-MM-DD) is required";
    }
    return umg_date_parse(s, day) == UMG_OK ? NULL : "must be a calendar date YYYY-MM-DD";
}

const char *umg_cost_check_name(umg_slice_t s, int required)
{
    if (s.len == 0) {
        return required ? "must not be empty" : NULL;
    }
    if (s.len > UMG_COST_MAX_NAME) {
        return "longer than 256 bytes";
    }
    const unsigned char *p = (const unsigned char *)s.ptr;
    for (size_t i = 0; i < s.len;) {
        if (p[i] < 0x20 || p[i] == 0x7f) {
            return "control characters are not allowed";
        }
        size_t bad = 0, n = umg_utf8_seq(p + i, s.len - i, &bad);
        if (n == 0) {
            return "not valid UTF-8";
        }
        i += n;
    }
    return NULL;
}

const char *umg_cost_check_country(umg_slice_t s)
{
    if (s.len == 0) {
        return NULL;
    }
    if (s.len != 2 || s.ptr[0] < 'A' || s.ptr[0] > 'Z' || s.ptr[1] < 'A' || s.ptr[1] > 'Z') {
        return "must be an ISO 3166-1 alpha-2 code in upper case (US, DE, ...) or empty";
    }
    return NULL;
}

const char *umg_cost_check_currency(umg_slice_t s, char out[4])
{
    if (s.len == 0) {
        return "a currency (ISO 4217, e.g. USD) is required";
    }
    if (!umg_event_currency_known(s)) {
        return "must be an ISO 4217 currency code in upper case (USD, EUR, ...)";
    }
    memcpy(out, s.ptr, 3);
    out[3] = '\0';
    return NULL;
}

/*
 * The millionths of a decimal text (as umg_cost_parse_number accepts it), rounded half up, computed on its
 * digits: a double cannot hold every millionth above about 4e9 (8905122611.79 would become ...611.790002).
 */
static const char *decimal_micros(umg_slice_t s, int64_t *micros)
{
    char d[64]; /* the significant digits, leading zeros dropped */
    size_t nd = 0, i = 0;
    long pos = 0; /* the value is 0.d × 10^pos */
    int point = 0;
    for (; i < s.len && ((s.ptr[i] >= '0' && s.ptr[i] <= '9') || (s.ptr[i] == '.' && !point)); i++) {
        if (s.ptr[i] == '.') {
            point = 1;
        } else if (nd == 0 && s.ptr[i] == '0') {
            pos -= point; /* 0.00x: each zero after the point moves the value down */
        } else if (nd < sizeof(d)) {
            d[nd++] = s.ptr[i];
            pos += !point;
        } else {
            pos += !point; /* past 64 significant digits: only the magnitude counts */
        }
    }
    if (i < s.len && (s.ptr[i] == 'e' || s.ptr[i] == 'E')) {
        int neg = ++i < s.len && s.ptr[i] == '-';
        i += i < s.len && (s.ptr[i] == '-' || s.ptr[i] == '+');
        long e = 0;
        for (; i < s.len && s.ptr[i] >= '0' && s.ptr[i] <= '9'; i++) {
            e = e < 100000 ? e * 10 + (s.ptr[i] - '0') : e;
        }
        pos += neg ? -e : e;
    }
    if (nd == 0) {
        *micros = 0;
        return NULL;
    }
    long k = pos + 6; /* the digits of d before the millionths' point */
    if (k > 19) {
        return "must be at most 1e12";
    }
    uint64_t v = 0;
    for (long j = 0; j < k; j++) {
        v = v * 10 + (uint64_t)(j < (long)nd ? d[j] - '0' : 0);
    }
    if (k >= 0 && k < (long)nd && d[k] >= '5') {
        v++;
    }
    if (v > (uint64_t)(UMG_COST_MAX * 1e6)) {
        return "must be at most 1e12";
    }
    *micros = (int64_t)v;
    return NULL;
}

const char *umg_cost_check_amount(double cost, int64_t *micros)
{
    if (!isfinite(cost) || cost < 0) {
        return "must be a finite number >= 0";
    }
    if (cost > UMG_COST_MAX) {
        return "must be at most 1e12";
    }
    /* The shortest decimal that reads back as cost: the number as it was written (up to 17 digits). */
    char text[32];
    for (int p = 1; p <= 17; p++) {
        snprintf(text, sizeof(text), "%.*e", p - 1, cost);
        if (strtod(text, NULL) == cost) {
            break;
        }
    }
    return decimal_micros(umg_slice(text, strlen(text)), micros);
}

const char *umg_cost_parse_amount(umg_slice_t s, int64_t *micros)
{
    double cost;
    const char *msg = umg_cost_parse_number(s, &cost);
    if (msg == NULL && (!isfinite(cost) || cost > UMG_COST_MAX)) {
        msg = isfinite(cost) ? "must be at most 1e12" : "must be a finite number >= 0";
    }
    return msg != NULL ? msg : decimal_micros(s, micros);
}

const char *umg_cost_check_rate(double rate)
{
    /* Currencies differ by at most about 1e6 (one US dollar is some 1e5 Iranian rials): 1e-9 .. 1e9 leaves room
     * and keeps a converted amount inside the reports' integers. */
    return isfinite(rate) && rate >= 1e-9 && rate <= 1e9 ? NULL : "must be a number from 1e-9 to 1e9";
}

const char *umg_cost_parse_number(umg_slice_t s, double *out)
{
    static const char *const bad = "must be a decimal number (digits, an optional fraction and exponent)";
    size_t i = 0, digits = 0;
    char tmp[64];
    if (s.len == 0) {
        return "a number is required";
    }
    if (s.len >= sizeof(tmp)) {
        return bad;
    }
    while (i < s.len && s.ptr[i] >= '0' && s.ptr[i] <= '9') {
        i++, digits++;
    }
    if (i < s.len && s.ptr[i] == '.') {
        for (i++; i < s.len && s.ptr[i] >= '0' && s.ptr[i] <= '9'; i++) {
            digits++;
        }
    }
    if (digits == 0) {
        return s.ptr[0] == '-' ? "must be a finite number >= 0" : bad;
    }
    if (i < s.len && (s.ptr[i] == 'e' || s.ptr[i] == 'E')) {
        i++;
        if (i < s.len && (s.ptr[i] == '+' || s.ptr[i] == '-')) {
            i++;
        }
        size_t e = i;
        while (i < s.len && s.ptr[i] >= '0' && s.ptr[i] <= '9') {
            i++;
        }
        if (i == e) {
            return bad;
        }
    }
    if (i != s.len) {
        return bad;
    }
    memcpy(tmp, s.ptr, s.len);
    tmp[s.len] = '\0';
    *out = strtod(tmp, NULL);
    return NULL;
}
