/*
 * lines.c - CSV lines of costs or rates, shared by `unmogrowp import` and a
 * text/csv POST /v1/costs or /v1/rates: the header line names the columns (in
 * any order), then each line is checked as the JSON API checks a row.
 */
#include "cost_int.h"

enum { C_DATE, C_SOURCE, C_CAMPAIGN, C_ADSET, C_AD, C_COUNTRY, C_COST, C_CURRENCY, C_MICROS, C_NCOST };
enum { R_DATE, R_CURRENCY, R_BASE, R_RATE, C_NRATE };

/* micros: optional, as GET /v1/costs?format=csv writes it; when given it must be the cost in millionths. */
static const char *const cost_cols[] = {"date",    "source", "campaign", "adset", "ad",
                                        "country", "cost",   "currency", "micros"};
static const int cost_required[] = {1, 1, 1, 0, 0, 0, 1, 1, 0};
static const char *const rate_cols[] = {"date", "currency", "base", "rate"};
static const int rate_required[] = {1, 1, 1, 1};

_Static_assert(C_NCOST <= UMG_COST_LINE_COLS, "umg_cost_lines_t.col holds every column");

int umg__cost_lines_header(umg_cost_lines_t *m, int rates, const umg_slice_t *f, size_t n,
                           void (*report)(void *ctx, umg_slice_t col, const char *code, const char *msg), void *ctx)
{
    const char *const *cols = rates ? rate_cols : cost_cols;
    const int *required = rates ? rate_required : cost_required;
    size_t ncols = rates ? C_NRATE : C_NCOST;
    int bad = 0;
    m->rates = rates;
    for (size_t k = 0; k < UMG_COST_LINE_COLS; k++) {
        m->col[k] = -1;
    }
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        while (k < ncols && !umg_slice_eq(f[i], cols[k])) {
            k++;
        }
        if (k == ncols) {
            report(ctx, f[i], "unknown_field",
                   rates ? "unknown column (expected date,currency,base,rate)"
                         : "unknown column (expected date,source,campaign,adset,ad,country,cost,currency,micros)");
            bad++;
        } else if (m->col[k] >= 0) {
            report(ctx, f[i], "invalid_value", "column named twice");
            bad++;
        } else {
            m->col[k] = (int)i;
        }
    }
    for (size_t k = 0; k < ncols; k++) {
        if (required[k] && m->col[k] < 0) {
            report(ctx, umg_slice(cols[k], strlen(cols[k])), "required", "required column missing");
            bad++;
        }
    }
    m->ncols = n;
    return bad;
}

static umg_slice_t field(const umg_cost_lines_t *m, const umg_slice_t *f, int k)
{
    return m->col[k] >= 0 ? f[m->col[k]] : umg_slice("", 0);
}

/* A name as it was before umg_buf_csv_field's formula guard: the apostrophe before =, +, -, @, a tab, a CR or
 * another apostrophe dropped (GET /v1/costs?format=csv writes names so; importing its file gives the same names). */
static umg_slice_t name_field(const umg_cost_lines_t *m, const umg_slice_t *f, int k)
{
    umg_slice_t s = field(m, f, k);
    return s.len >= 2 && s.ptr[0] == '\'' && memchr("=+-@\t\r'", s.ptr[1], 7) != NULL ? umg_slice(s.ptr + 1, s.len - 1)
                                                                                      : s;
}

const char *umg__cost_lines_cost(const umg_cost_lines_t *m, const umg_slice_t *f, umg_cost_row_t *r, const char **msg)
{
    memset(r, 0, sizeof(*r));
    r->source = name_field(m, f, C_SOURCE);
    r->campaign = name_field(m, f, C_CAMPAIGN);
    r->adset = name_field(m, f, C_ADSET);
    r->ad = name_field(m, f, C_AD);
    r->country = name_field(m, f, C_COUNTRY);
    if ((*msg = umg_cost_check_date(field(m, f, C_DATE), &r->day)) != NULL) {
        return "date";
    }
    for (int k = C_SOURCE; k <= C_AD; k++) {
        if ((*msg = umg_cost_check_name(name_field(m, f, k), k <= C_CAMPAIGN)) != NULL) {
            return cost_cols[k];
        }
    }
    if ((*msg = umg_cost_check_country(r->country)) != NULL) {
        return "country";
    }
    if ((*msg = umg_cost_parse_amount(field(m, f, C_COST), &r->micros)) != NULL) {
        return "cost";
    }
    if ((*msg = umg_cost_check_currency(field(m, f, C_CURRENCY), r->currency)) != NULL) {
        return "currency";
    }
    umg_slice_t mi = field(m, f, C_MICROS);
    if (mi.len > 0) {
        uint64_t v = 0; /* 19 digits (1e12 is 1e18 millionths) always fit */
        size_t i = 0;
        while (i < mi.len && i < 19 && mi.ptr[i] >= '0' && mi.ptr[i] <= '9') {
            v = v * 10 + (uint64_t)(mi.ptr[i++] - '0');
        }
        if (i != mi.len) {
            *msg = "must be a whole number of millionths (digits only)";
            return "micros";
        }
        if (r->micros < 0 || v != (uint64_t)r->micros) {
            *msg = "does not match cost (the cost in millionths, as the export writes it)";
            return "micros";
        }
    }
    return NULL;
}

const char *umg__cost_lines_rate(const umg_cost_lines_t *m, const umg_slice_t *f, umg_rate_row_t *r, const char **msg)
{
    memset(r, 0, sizeof(*r));
    if ((*msg = umg_cost_check_date(field(m, f, R_DATE), &r->day)) != NULL) {
        return "date";
    }
    if ((*msg = umg_cost_check_currency(field(m, f, R_CURRENCY), r->currency)) != NULL) {
        return "currency";
    }
    if ((*msg = umg_cost_check_currency(field(m, f, R_BASE), r->base)) != NULL) {
        return "base";
    }
    if (memcmp(r->currency, r->base, 3) == 0) {
        *msg = "base must differ from currency";
        return "base";
    }
    if ((*msg = umg_cost_parse_number(field(m, f, R_RATE), &r->rate)) != NULL ||
        (*msg = umg_cost_check_rate(r->rate)) != NULL) {
        return "rate";
    }
    return NULL;
}
