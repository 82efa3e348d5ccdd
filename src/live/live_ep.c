/*
 * live_ep.c - GET /v1/live?app=ID: the live feed of one app as Server-Sent
 * Events (docs/api.md). Each connection reads the shared ring from where it
 * joined (or from Last-Event-ID when that is still in the ring) on its loop
 * thread; when it has nothing to send it waits for the next poll of the
 * stream, and every 15 s of quiet it sends a comment line so that proxies
 * keep the connection and a vanished client is noticed. A client that reads
 * too slowly falls behind the ring: it skips what was overwritten and gets a
 * `dropped` event saying how many items it missed. The stream's credential is
 * checked again every few seconds: once it no longer reaches the app (revoked,
 * expired, the user disabled or moved off the app), the stream ends with a
 * `closed` event.
 */
#include "umg_attr_ep.h"
#include "umg_live.h"

#include <stdlib.h>

#define MAX_STREAMS 64
#define MAX_ORG_STREAMS 16 /* so that one organization cannot hold every stream of the server */
#define RECHECK_MS 5000
#define CHUNK_BYTES (64 << 10)
#define PING_MS 15000
#define WAIT_MS 1000 /* an item claimed but still unwritten after this was dropped by its publisher */

typedef struct live_stream_s {
    umg_live_t *live;
    umg_ingest_t *ing;
    uint32_t app, org;
    char *cred[3]; /* the request's Authorization, X-App-Secret and X-App-Key (NULL: none), checked again */
    int64_t checked_ms;
    int resumed; /* -1: no Last-Event-ID; 0: one no longer in the ring (or of an earlier start); 1: resumed */
    uint64_t next;
    uint64_t dropped, reported;
    int64_t last_write_ms, waiting_since_ms;
    int started;
    char app_public[24];
    umg_buf_t item;
} live_stream_t;

static umg_metric_t m_streams = UMG_GAUGE("umg_live_streams", "Open GET /v1/live streams", NULL);
static umg_metric_t m_client_dropped =
    UMG_COUNTER("umg_live_client_dropped_total", "Live items skipped by streams that read too slowly", NULL);

static int64_t now_ms(void)
{
    return (int64_t)(umg_mono_ns() / 1000000);
}

/*
 * One SSE frame: id (the item's sequence number; none for the stream's own hello and dropped
 * notes, so Last-Event-ID always names a feed item), event name, one data line (the items are
 * JSON without newlines).
 */
static int frame(umg_buf_t *out, int64_t id, const char *event, const char *data, size_t len)
{
    int rc = id >= 0 ? umg_buf_printf(out, "id: %lld\n", (long long)id) : UMG_OK;
    rc = rc ? rc : umg_buf_printf(out, "event: %s\ndata: ", event);
    rc = rc ? rc : umg_buf_append(out, data, len);
    return rc ? rc : umg_buf_append(out, "\n\n", 2);
}

static umg_slice_t cred_of(const char *s)
{
    return s != NULL ? umg_slice(s, strlen(s)) : umg_slice("", 0);
}

/* Whether the stream's credential still reaches its app with the permission the stream needs. */
static int still_allowed(live_stream_t *st)
{
    umg_credentials_t c = {
        .authorization = cred_of(st->cred[0]), .app_secret = cred_of(st->cred[1]), .app_key = cred_of(st->cred[2])};
    umg_principal_t who;
    umg_authn_error_t err;
    umg_app_t app;
    return umg_auth_authenticate(st->ing->auth, &c, 0, umg_now_us(), &who, &err) == UMG_OK &&
           umg_apps_find_id(st->ing->apps, umg_slice(st->app_public, strlen(st->app_public)), &app) == UMG_OK &&
           umg_attr_ep_may(&who, UMG_PERM_REPORTS_READ, &app);
}

static int live_pull(void *data, umg_buf_t *out, int *done)
{
    live_stream_t *st = data;
    *done = 0;
    int64_t now = now_ms();
    int rc = UMG_OK;
    if (!st->started) {
        st->started = 1;
        st->last_write_ms = st->checked_ms = now;
        char hello[192];
        int n = snprintf(hello, sizeof(hello), "{\"app\":\"%s\",\"ring\":%zu,\"next\":%llu%s}", st->app_public,
                         umg_live_slots(st->live), (unsigned long long)st->next,
                         st->resumed < 0 ? ""
                         : st->resumed   ? ",\"resumed\":true"
                                         : ",\"resumed\":false");
        rc = umg_buf_append(out, "retry: 2000\n", 12);
        return rc ? rc : frame(out, -1, "hello", hello, (size_t)n);
    }
    if (now - st->checked_ms >= RECHECK_MS) {
        st->checked_ms = now;
        if (!still_allowed(st)) {
            static const char bye[] = "{\"reason\":\"credentials\",\"message\":\"the credential of this stream no "
                                      "longer reaches the app (revoked, expired or changed); connect again\"}";
            *done = 1;
            return frame(out, -1, "closed", bye, sizeof(bye) - 1);
        }
    }
    uint64_t head = umg_live_head(st->live), slots = umg_live_slots(st->live);
    while (st->next < head && out->len < CHUNK_BYTES && rc == UMG_OK) {
        if (head - st->next > slots) {
            /* Lapped: what is older than one ring is gone. */
            uint64_t skip = head - slots - st->next;
            st->dropped += skip;
            st->next += skip;
            continue;
        }
        uint32_t app;
        char kind[16];
        umg_buf_reset(&st->item);
        int r = umg_live_read(st->live, st->next, &app, kind, &st->item);
        if (r == UMG_EAGAIN) {
            if (st->waiting_since_ms == 0) {
                st->waiting_since_ms = now;
            }
            if (now - st->waiting_since_ms < WAIT_MS) {
                break;
            }
            r = UMG_ENOENT;
        }
        st->waiting_since_ms = 0;
        if (r == UMG_ENOENT) {
            st->dropped++;
        } else if (r != UMG_OK) {
            return r;
        } else if (app == st->app) {
            rc = frame(out, (int64_t)st->next, kind, st->item.ptr, st->item.len);
        }
        st->next++;
    }
    if (rc == UMG_OK && st->dropped > st->reported) {
        char d[128];
        int n = snprintf(d, sizeof(d), "{\"dropped\":%llu,\"total\":%llu}",
                         (unsigned long long)(st->dropped - st->reported), (unsigned long long)st->dropped);
        umg_metric_add(&m_client_dropped, (int64_t)(st->dropped - st->reported));
        st->reported = st->dropped;
        rc = frame(out, -1, "dropped", d, (size_t)n);
    }
    if (rc != UMG_OK) {
        return rc;
    }
    if (out->len == 0) {
        if (now - st->last_write_ms < PING_MS) {
            return UMG_EAGAIN;
        }
        rc = umg_buf_append(out, ": ping\n\n", 8);
    }
    st->last_write_ms = now;
    return rc;
}

/* The stream's own memory (all a stream set up only part way has: no subscription, no metric yet). */
static void live_fini_early(live_stream_t *st)
{
    for (int i = 0; i < 3; i++) {
        umg_free(st->cred[i]);
    }
    umg_free(st);
}

static void live_fini(void *data)
{
    live_stream_t *st = data;
    umg_live_unsubscribe(st->live, st->app);
    umg_buf_free(&st->item);
    umg_live_stream_give(st->live, st->org);
    live_fini_early(st);
    umg_metric_add(&m_streams, -1);
}

void umg_live_ep(umg_http_req_t *req, void *thread_data)
{
    umg_ingest_t *ing = umg__ingest_of(thread_data);
    umg_app_t app;
    umg_principal_t who;
    if (ing->live == NULL) {
        umg_http_error(req, 503, "live_unavailable", NULL, "this server keeps no live feed");
        return;
    }
    if (umg_attr_ep_app_for(ing, req, 0, UMG_PERM_REPORTS_READ, &app, &who) != 0) {
        return;
    }
    umg_metric_register(&m_streams);
    umg_metric_register(&m_client_dropped);
    int trc = umg_live_stream_take(ing->live, app.org, MAX_STREAMS, MAX_ORG_STREAMS);
    if (trc != UMG_OK) {
        umg_http_error(req, 503, "too_many_streams", NULL,
                       trc == UMG_EBUSY ? "this organization has 16 live streams open; close one or retry later"
                                        : "the server has 64 live streams open; retry later");
        return;
    }
    live_stream_t *st = umg_calloc(1, sizeof(*st));
    static const char *const hdrs[3] = {"authorization", "x-app-secret", "x-app-key"};
    for (int i = 0; st != NULL && i < 3; i++) {
        umg_slice_t h = umg_http_header(req, hdrs[i]);
        if (h.len > 0 && (st->cred[i] = umg_strndup(h.ptr, h.len)) == NULL) {
            live_fini_early(st);
            st = NULL;
        }
    }
    if (st == NULL) {
        umg_live_stream_give(ing->live, app.org);
        umg_http_error(req, 503, "out_of_memory", NULL, "the server is out of memory; retry");
        return;
    }
    umg_metric_add(&m_streams, 1);
    st->live = ing->live;
    st->ing = ing;
    st->app = app.id;
    st->org = app.org;
    st->resumed = -1;
    snprintf(st->app_public, sizeof(st->app_public), "%s", app.public_id);
    st->next = umg_live_subscribe(ing->live, app.id);
    /* A reconnecting EventSource sends the last id it saw: resume after it while the ring still has it. */
    umg_slice_t last = umg_http_header(req, "last-event-id");
    if (last.len > 0) {
        st->resumed = 0; /* not in the ring (any more), or of an earlier start: from the newest item on */
    }
    if (last.len > 0 && last.len < 21) {
        char b[24];
        memcpy(b, last.ptr, last.len);
        b[last.len] = '\0';
        char *end;
        unsigned long long id = strtoull(b, &end, 10);
        if (end == b + last.len && id + 1 <= st->next && st->next - (id + 1) < umg_live_slots(ing->live)) {
            st->next = id + 1;
            st->resumed = 1;
        }
    }
    umg_http_add_header(req, "Cache-Control", "no-store");
    umg_http_add_header(req, "X-Accel-Buffering", "no");
    umg_http_stream(req, 200, "text/event-stream; charset=utf-8", live_pull, live_fini, st);
}
