/*
 * umg_attr_ep.h - the HTTP endpoints over the attribution store:
 * GET /v1/attribution, GET /v1/export/installs, GET /v1/reports/mta
 * (docs/api.md). Handlers run on the loop threads with the ingest module's
 * thread data (umg_ingest_thread_init).
 */
#ifndef UMG_ATTR_EP_H
#define UMG_ATTR_EP_H

#include "umg_ingest.h"

void umg_attr_ep_attribution(umg_http_req_t *req, void *thread_data);
void umg_attr_ep_export_installs(umg_http_req_t *req, void *thread_data);
void umg_attr_ep_report_mta(umg_http_req_t *req, void *thread_data);

/*
 * The worker thread that computes reports (umg_ingest_t.attr_worker): at
 * most 16 queued, more are answered 503 overloaded. Stop it before the HTTP
 * server: what is still queued is answered 503 shutting_down, and later
 * requests too; free it after the server.
 */
typedef struct umg_attr_worker_s umg_attr_worker_t;
int umg_attr_worker_start(umg_attr_worker_t **out);
void umg_attr_worker_stop(umg_attr_worker_t *w);
void umg_attr_worker_free(umg_attr_worker_t *w);

#endif
