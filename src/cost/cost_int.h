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

#endif
