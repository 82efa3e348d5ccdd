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

#endif
