/*
 * cost_int.h - what the files of src/cost share: the connection, and reading
 * one cost or rate row from JSON or CSV fields into a checked row.
 */
#ifndef UMG_COST_INT_H
#define UMG_COST_INT_H

#include "umg_cost.h"

#include <sqlite3.h>

struct umg_cost_s {
    sqlite3 *db;
    sqlite3_stmt *each, *rate, *upd, *ins, *rupd, *rins, *reach, *ver, *rspan;
};

/** The app's internal id and organization, by public id ("app_..."). UMG_ENOENT when there is none. */
int umg__cost_app(umg_cost_t *c, const char *public_id, uint32_t *app, uint32_t *org);
sqlite3 *umg__cost_db(umg_cost_t *c);

/* CSV lines of costs or rates (lines.c): which field of a line each column is. */
#define UMG_COST_LINE_COLS 9
typedef struct umg_cost_lines_s {
    int rates;
    int col[UMG_COST_LINE_COLS]; /* the field index of each column, -1 when the header has none */
    size_t ncols;                /* fields per line */
} umg_cost_lines_t;

/*
 * Maps the header line's names to columns. Each unknown, repeated or missing
 * required column is reported (col names it; code as in the API's errors:
 * unknown_field, invalid_value, required); returns how many were.
 */
int umg__cost_lines_header(umg_cost_lines_t *m, int rates, const umg_slice_t *f, size_t n,
                           void (*report)(void *ctx, umg_slice_t col, const char *code, const char *msg), void *ctx);
/** Checks one line (m->ncols fields) into r: NULL, or the failing column's name with *msg. */
const char *umg__cost_lines_cost(const umg_cost_lines_t *m, const umg_slice_t *f, umg_cost_row_t *r, const char **msg);
const char *umg__cost_lines_rate(const umg_cost_lines_t *m, const umg_slice_t *f, umg_rate_row_t *r, const char **msg);

#endif
