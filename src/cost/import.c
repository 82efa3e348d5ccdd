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

typedef struct import_s {
    const char *file;
    int rates;
    umg_cost_t *c;
    uint32_t app, org;
    umg_cost_lines_t cols;
    size_t header_line; /* for reporting header problems */
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

static void header_problem(void *ctx, umg_slice_t col, const char *code, const char *msg)
{
    const import_t *im = ctx;
    (void)code;
    fprintf(stderr, "%s:%zu: %.*s: %s\n", im->file, im->header_line, (int)UMG_MIN(col.len, 64), col.ptr, msg);
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
        if (n != im->cols.ncols) {
            fprintf(stderr, "%s:%zu: expected %zu fields as in the header, found %zu\n", im->file, line, im->cols.ncols,
                    n);
            im->errors++;
            continue;
        }
        const char *col;
        int replaced = 0;
        if (im->rates) {
            umg_rate_row_t r;
            col = umg__cost_lines_rate(&im->cols, f, &r, &msg);
            rc = col ? UMG_OK : umg_cost_rate_put(im->c, im->org, &r, &replaced);
        } else {
            umg_cost_row_t r;
            col = umg__cost_lines_cost(&im->cols, f, &r, &msg);
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
    } else if (rc == UMG_OK) {
        im->header_line = line;
        if (umg__cost_lines_header(&im->cols, im->rates, f, n, header_problem, im) != 0) {
            rc = UMG_EINVAL;
        }
    }
    if (rc == UMG_OK && !umg_meta_exists(data, "unmogrowp import")) {
        rc = UMG_ENOENT;
    } else if (rc == UMG_OK && (rc = umg_cost_open(data, &im->c)) != UMG_OK) {
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
