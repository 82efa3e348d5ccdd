/*
 * umg_query_ep.h - GET /v1/reports/overview and GET /v1/reports/cohorts
 * (docs/reports.md, docs/api.md). Handlers run on the loop threads with the
 * ingest module's thread data; the reports are computed on the report worker
 * (umg_ingest_t.attr_worker) from umg_ingest_t.rollup (503 when NULL), .store
 * and .tzc, and costs and rates read from DATA/meta.db.
 */
#ifndef UMG_QUERY_EP_H
#define UMG_QUERY_EP_H

#include "umg_cost.h"
#include "umg_ingest.h"
#include "umg_query.h"

/** Keeps a copy of the data directory (meta.db, for costs and rates). Before the server starts. */
int umg_query_ep_start(const char *data_dir);
/** After the report worker stopped: closes the worker's cost connection. Safe without a start. */
void umg_query_ep_stop(void);

void umg_query_ep_overview(umg_http_req_t *req, void *thread_data);
void umg_query_ep_cohorts(umg_http_req_t *req, void *thread_data);
/** GET /v1/reports/activity: the same credentials, 503s and worker, no costs or dictionary. */
void umg_query_ep_activity(umg_http_req_t *req, void *thread_data);
/** GET /v1/reports/funnel: from the store's device timelines (ing->store) on the report worker. */
void umg_query_ep_funnel(umg_http_req_t *req, void *thread_data);

/** GET /v1/reports/fraud (docs/fraud.md). */
void umg_query_ep_fraud(umg_http_req_t *req, void *thread_data);

/** A cost row as the cost module reads it, as the report engine takes it (a costs callback's glue). */
void umg_query_cost_of(const umg_cost_row_t *r, umg_query_cost_t *out);

#endif
