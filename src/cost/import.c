/*
 * import.c - `unmogrowp import costs|rates FILE.csv --data DIR --app APP_ID`:
 * reads a CSV file with a header line (csv.c), checks every line as the HTTP
 * API checks a row, reports each bad line on stderr as FILE:LINE: column:
 * message, and stores the good ones in one transaction with an audit record
 * (works while the daemon runs: meta.db is in WAL mode with a busy timeout).
 */
#include "cost_int.h"
#include "umg_meta.h"

#include <getopt.h>
#include <stdlib.h>

enum { C_DATE, C_SOURCE, C_CAMPAIGN, C_ADSET, C_AD, C_COUNTRY, C_COST, C_CURRENCY, C_MICROS, C_NCOST };
enum { R_DATE, R_CURRENCY, R_BASE, R_RATE, C_NRATE };

/* micros: optional, as GET /v1/costs?format=csv writes it; when given it must be the cost in millionths. */
static const char *const cost_cols[] = {"date",    "source", "campaign", "adset", "ad",
                                        "country", "cost",   "currency", "micros"};
static const int cost_required[] = {1, 1, 1, 0, 0, 0, 1, 1, 0};
static const char *const rate_cols[] = {"date", "currency", "base", "rate"};
static const int rate_required[] = {1, 1, 1, 1};

typedef struct import_s {
    const char *file;
    int rates;
    umg_cost_t *c;
    uint32_t app, org;
    int col[C_NCOST]; /* the field index of each column, -1 when the file has none */
    size_t ncols;     /* fields per line */
    size_t accepted, replaced, errors;
} import_t;

static void usage(FILE *f)
{
    fprintf(f, "Usage: unmogrowp import costs FILE.csv --data DIR --app APP_ID\n"
               "       unmogrowp import rates FILE.csv --data DIR --app APP_ID\n\n"
               "Imports ad spend of the app, or currency rates of the app's organization, from a CSV\n"
               "file (RFC 4180; '-' reads standard input) whose first line names the columns, in any order:\n"
               "  costs: date,source,campaign,adset,ad,country,cost,currency (adset, ad, country, micros optional)\n"
               "  rates: date,currency,base,rate\n"
               "A row whose key is stored already is replaced. Bad lines are reported on stderr as\n"
               "FILE:LINE: column: message and skipped; the good lines are stored in one transaction.\n"
               "Prints {\"accepted\":N,\"replaced\":N,\"errors\":N}; exits 0 when no line failed, 1 otherwise,\n"
               "2 for usage errors. Works while the daemon runs. See docs/costs.md.\n");
}

/* The file, or standard input for "-". */
static int read_all(const char *path, umg_buf_t *out)
{
    if (strcmp(path, "-") != 0) {
        return umg_read_file(path, out);
    }
    FILE *f = stdin;
    int rc = UMG_OK;
    char chunk[65536];
    size_t n;
    while (rc == UMG_OK && (n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        rc = umg_buf_append(out, chunk, n);
    }
    return rc == UMG_OK && ferror(f) ? UMG_EIO : rc;
}

/* Maps the header's names to columns; reports and returns non-zero for unknown, repeated or missing ones. */
static int header(import_t *im, const umg_slice_t *f, size_t n, size_t line)
{
    const char *const *cols = im->rates ? rate_cols : cost_cols;
    const int *required = im->rates ? rate_required : cost_required;
    size_t ncols = im->rates ? C_NRATE : C_NCOST;
    int bad = 0;
    for (size_t k = 0; k < ncols; k++) {
        im->col[k] = -1;
    }
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        while (k < ncols && !umg_slice_eq(f[i], cols[k])) {
            k++;
        }
        if (k == ncols) {
            fprintf(stderr, "%s:%zu: %.*s: unknown column (expected %s)\n", im->file, line, (int)UMG_MIN(f[i].len, 64),
                    f[i].ptr,
                    im->rates ? "date,currency,base,rate"
                              : "date,source,campaign,adset,ad,country,cost,currency,micros");
            bad = 1;
        } else if (im->col[k] >= 0) {
            fprintf(stderr, "%s:%zu: %s: column named twice\n", im->file, line, cols[k]);
            bad = 1;
        } else {
            im->col[k] = (int)i;
        }
    }
    for (size_t k = 0; k < ncols; k++) {
        if (required[k] && im->col[k] < 0) {
            fprintf(stderr, "%s:%zu: %s: required column missing\n", im->file, line, cols[k]);
            bad = 1;
        }
    }
    im->ncols = n;
    return bad;
}

static umg_slice_t field(const import_t *im, const umg_slice_t *f, int k)
{
    return im->col[k] >= 0 ? f[im->col[k]] : umg_slice("", 0);
}

/* A name as it was before umg_buf_csv_field's formula guard: the apostrophe before =, +, -, @, a tab or a
 * CR dropped (GET /v1/costs?format=csv writes names so; importing its file gives the same names). */
static umg_slice_t name_field(const import_t *im, const umg_slice_t *f, int k)
{
    umg_slice_t s = field(im, f, k);
    return s.len >= 2 && s.ptr[0] == '\'' && memchr("=+-@\t\r", s.ptr[1], 6) != NULL ? umg_slice(s.ptr + 1, s.len - 1)
                                                                                     : s;
}

/* Checks one cost line into r; the failing column's name, with *msg, or NULL. */
static const char *check_cost(const import_t *im, const umg_slice_t *f, umg_cost_row_t *r, const char **msg)
{
    double cost = 0;
    memset(r, 0, sizeof(*r));
    r->source = name_field(im, f, C_SOURCE);
    r->campaign = name_field(im, f, C_CAMPAIGN);
    r->adset = name_field(im, f, C_ADSET);
    r->ad = name_field(im, f, C_AD);
    r->country = name_field(im, f, C_COUNTRY);
    if ((*msg = umg_cost_check_date(field(im, f, C_DATE), &r->day)) != NULL) {
        return "date";
    }
    for (int k = C_SOURCE; k <= C_AD; k++) {
        if ((*msg = umg_cost_check_name(name_field(im, f, k), k <= C_CAMPAIGN)) != NULL) {
            return cost_cols[k];
        }
    }
    if ((*msg = umg_cost_check_country(r->country)) != NULL) {
        return "country";
    }
    if ((*msg = umg_cost_parse_number(field(im, f, C_COST), &cost)) != NULL ||
        (*msg = umg_cost_check_amount(cost, &r->micros)) != NULL) {
        return "cost";
    }
    if ((*msg = umg_cost_check_currency(field(im, f, C_CURRENCY), r->currency)) != NULL) {
        return "currency";
    }
    umg_slice_t m = field(im, f, C_MICROS);
    if (m.len > 0) {
        int64_t v = 0;
        size_t i = 0;
        while (i < m.len && i < 18 && m.ptr[i] >= '0' && m.ptr[i] <= '9') {
            v = v * 10 + (m.ptr[i++] - '0');
        }
        if (i != m.len) {
            *msg = "must be a whole number of millionths (digits only)";
            return "micros";
        }
        if (v != r->micros) {
            *msg = "does not match cost (the cost in millionths, as the export writes it)";
            return "micros";
        }
    }
    return NULL;
}

static const char *check_rate(const import_t *im, const umg_slice_t *f, umg_rate_row_t *r, const char **msg)
{
    memset(r, 0, sizeof(*r));
    if ((*msg = umg_cost_check_date(field(im, f, R_DATE), &r->day)) != NULL) {
        return "date";
    }
    if ((*msg = umg_cost_check_currency(field(im, f, R_CURRENCY), r->currency)) != NULL) {
        return "currency";
    }
    if ((*msg = umg_cost_check_currency(field(im, f, R_BASE), r->base)) != NULL) {
        return "base";
    }
    if (memcmp(r->currency, r->base, 3) == 0) {
        *msg = "base must differ from currency";
        return "base";
    }
    if ((*msg = umg_cost_parse_number(field(im, f, R_RATE), &r->rate)) != NULL ||
        (*msg = umg_cost_check_rate(r->rate)) != NULL) {
        return "rate";
    }
    return NULL;
}

/* Reads every line after the header, storing the good ones in the open transaction. */
static int import_lines(import_t *im, umg_csv_t *csv)
{
    umg_slice_t f[UMG_CSV_MAX_FIELDS];
    size_t n, line;
    const char *msg;
    int rc;
    while ((rc = umg_csv_next(csv, f, UMG_CSV_MAX_FIELDS, &n, &line, &msg)) != UMG_EAGAIN) {
        if (rc == UMG_EPARSE) {
            fprintf(stderr, "%s:%zu: %s\n", im->file, line, msg);
            im->errors++;
            continue;
        }
        if (rc != UMG_OK) {
            return rc;
        }
        if (n != im->ncols) {
            fprintf(stderr, "%s:%zu: expected %zu fields as in the header, found %zu\n", im->file, line, im->ncols, n);
            im->errors++;
            continue;
        }
        const char *col;
        int replaced = 0;
        if (im->rates) {
            umg_rate_row_t r;
            col = check_rate(im, f, &r, &msg);
            rc = col ? UMG_OK : umg_cost_rate_put(im->c, im->org, &r, &replaced);
        } else {
            umg_cost_row_t r;
            col = check_cost(im, f, &r, &msg);
            rc = col ? UMG_OK : umg_cost_put(im->c, im->app, &r, &replaced);
        }
        if (rc != UMG_OK) {
            return rc;
        }
        if (col != NULL) {
            fprintf(stderr, "%s:%zu: %s: %s\n", im->file, line, col, msg);
            im->errors++;
            continue;
        }
        im->accepted++;
        im->replaced += (size_t)replaced;
    }
    return UMG_OK;
}

static int import_file(import_t *im, const char *data, const char *app_id, const umg_buf_t *text)
{
    umg_csv_t csv;
    umg_slice_t f[UMG_CSV_MAX_FIELDS];
    size_t n, line;
    const char *msg;
    umg_csv_init(&csv, text->ptr ? text->ptr : "", text->len);
    int rc = umg_csv_next(&csv, f, UMG_CSV_MAX_FIELDS, &n, &line, &msg);
    if (rc == UMG_EAGAIN || rc == UMG_EPARSE) {
        fprintf(stderr, "%s:%zu: %s\n", im->file, rc == UMG_EAGAIN ? (size_t)1 : line,
                rc == UMG_EAGAIN ? "empty file: the first line must name the columns" : msg);
        rc = UMG_EINVAL;
    } else if (rc == UMG_OK && header(im, f, n, line) != 0) {
        rc = UMG_EINVAL;
    }
    if (rc == UMG_OK && (rc = umg_cost_open(data, &im->c)) != UMG_OK) {
        fprintf(stderr, "unmogrowp import: cannot open %s/meta.db\n", data);
    }
    if (rc == UMG_OK && (rc = umg__cost_app(im->c, app_id, &im->app, &im->org)) != UMG_OK) {
        fprintf(stderr, "unmogrowp import: %s\n", rc == UMG_ENOENT ? "no such app" : "cannot read the apps");
    }
    if (rc == UMG_OK && (rc = umg_cost_begin(im->c)) != UMG_OK) {
        fprintf(stderr, "unmogrowp import: the database is busy; try again\n");
    }
    if (rc == UMG_OK) {
        rc = import_lines(im, &csv);
        char detail[160];
        snprintf(detail, sizeof(detail), "{\"accepted\":%zu,\"replaced\":%zu,\"errors\":%zu,\"via\":\"import\"}",
                 im->accepted, im->replaced, im->errors);
        umg_audit_t a = {.org_id = im->org,
                         .actor = "cli",
                         .action = im->rates ? "rates.write" : "costs.write",
                         .target = im->rates ? NULL : app_id,
                         .outcome = "ok",
                         .detail = detail};
        rc = rc ? rc : umg_meta_audit(umg__cost_db(im->c), &a);
        rc = rc ? rc : umg_cost_commit(im->c);
        if (rc != UMG_OK) {
            umg_cost_rollback(im->c);
            fprintf(stderr, "unmogrowp import: nothing was imported: %s\n", umg_strerror(rc));
        }
    }
    umg_csv_free(&csv);
    umg_cost_close(im->c);
    im->c = NULL;
    return rc;
}

int umg_cost_cli_import(int argc, char **argv)
{
    static const struct option opts[] = {{"data", required_argument, NULL, 'd'},
                                         {"app", required_argument, NULL, 'a'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc < 2 || (strcmp(argv[1], "costs") != 0 && strcmp(argv[1], "rates") != 0)) {
        fprintf(stderr, "unmogrowp import: expected 'costs' or 'rates'\n");
        usage(stderr);
        return 2;
    }
    import_t im = {.rates = argv[1][0] == 'r'};
    const char *data = NULL, *app = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc - 1, argv + 1, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'a': app = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (data == NULL || app == NULL || optind != argc - 2) {
        fprintf(stderr, "unmogrowp import: give one FILE.csv, --data and --app\n");
        usage(stderr);
        return 2;
    }
    im.file = argv[1 + optind];
    umg_buf_t text = {0};
    if (read_all(im.file, &text) != UMG_OK) {
        fprintf(stderr, "unmogrowp import: cannot read %s\n", im.file);
        umg_buf_free(&text);
        return 1;
    }
    int rc = import_file(&im, data, app, &text);
    umg_buf_free(&text);
    if (rc != UMG_OK) {
        return 1;
    }
    printf("{\"accepted\":%zu,\"replaced\":%zu,\"errors\":%zu}\n", im.accepted, im.replaced, im.errors);
    return im.errors ? 1 : 0;
}
