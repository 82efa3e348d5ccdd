/*
 * fuzz_cost_csv.c - feeds arbitrary bytes to the CSV reader of src/cost
 * (csv.c), then every record it returns to the cost and rate field checks,
 * and the first as a header line, the ones after it as lines of costs and of
 * rates (lines.c), as `unmogrowp import` and a text/csv POST /v1/costs do. Nothing may crash or leak; every field must
 * lie inside the reader's scratch buffer, records must come in line order, and the reader must end (UMG_EAGAIN) after
 * at most one record per input byte.
 *
 *   build: meson setup build-fuzz -Dfuzz=true (clang); run on a copy of the
 *   seeds: cp -r tests/fuzz/corpus/cost_csv /tmp/c && build-fuzz/tests/fuzz/fuzz_cost_csv /tmp/c
 */
#include <stdlib.h>

#include "cost_int.h"

#define FUZZ_FIELDS 12

static void check_fields(const umg_slice_t *f, size_t n)
{
    int32_t day;
    int64_t micros;
    double v;
    char cur[4];
    for (size_t i = 0; i < n; i++) {
        (void)umg_cost_check_date(f[i], &day);
        (void)umg_cost_check_name(f[i], (int)(i & 1));
        (void)umg_cost_check_country(f[i]);
        (void)umg_cost_check_currency(f[i], cur);
        if (umg_cost_parse_number(f[i], &v) == NULL) {
            (void)umg_cost_check_amount(v, &micros);
            (void)umg_cost_check_rate(v);
        }
    }
}

static void on_header_problem(void *ctx, umg_slice_t col, const char *code, const char *msg)
{
    (void)ctx;
    if (code == NULL || msg == NULL || (col.len != 0 && col.ptr == NULL)) {
        abort();
    }
}

/* The header line maps columns for costs and rates; the lines after it are checked as both. */
static void check_lines(umg_cost_lines_t m[2], int *have, const umg_slice_t *f, size_t n)
{
    if (!*have) {
        for (int k = 0; k < 2; k++) {
            if (umg__cost_lines_header(&m[k], k, f, n, on_header_problem, NULL) < 0 || m[k].ncols != n) {
                abort();
            }
        }
        *have = 1;
        return;
    }
    const char *msg = NULL, *col;
    if (n == m[0].ncols) {
        umg_cost_row_t r;
        if ((col = umg__cost_lines_cost(&m[0], f, &r, &msg)) != NULL && msg == NULL) {
            abort();
        }
        umg_rate_row_t q;
        if ((col = umg__cost_lines_rate(&m[1], f, &q, &msg)) != NULL && msg == NULL) {
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    umg_cost_lines_t maps[2];
    int have_header = 0;
    /* A private copy, so reading past the input is caught by ASan. */
    char *buf = malloc(size ? size : 1);
    if (buf == NULL) {
        return 0;
    }
    if (size) {
        memcpy(buf, data, size);
    }
    umg_csv_t r;
    umg_slice_t f[FUZZ_FIELDS];
    size_t n, line, last = 0, records = 0;
    const char *msg;
    int rc;
    umg_csv_init(&r, buf, size);
    while ((rc = umg_csv_next(&r, f, FUZZ_FIELDS, &n, &line, &msg)) != UMG_EAGAIN) {
        if (rc == UMG_ENOMEM) {
            break;
        }
        if (++records > size + 1 || line < last || line == 0) {
            abort();
        }
        last = line;
        if (rc == UMG_EPARSE) {
            if (msg == NULL) {
                abort();
            }
            continue;
        }
        if (rc != UMG_OK || n == 0 || n > FUZZ_FIELDS) {
            abort();
        }
        size_t total = 0;
        for (size_t i = 0; i < n; i++) {
            if (f[i].ptr < r.scratch.ptr || f[i].ptr + f[i].len > r.scratch.ptr + r.scratch.len) {
                abort();
            }
            total += f[i].len;
        }
        if (total > size) {
            abort();
        }
        check_fields(f, n);
        check_lines(maps, &have_header, f, n);
    }
    umg_csv_free(&r);
    free(buf);
    return 0;
}
