/*
 * live_ep.c - GET /v1/live?app=ID: the live feed of one app as Server-Sent
 * Events (docs/api.md). Each connection reads the shared ring from where it
 * joined (or from Last-Event-ID when that is still in the ring) on its loop
 * thread; when it has nothing to send it waits for the next poll of the
 * stream, and every 15 s of quiet it sends a comment line so that proxies
 * keep the connection and a vanished client is noticed. A client that reads
 * too slowly falls behind the ring: it skips what was overwritten and gets a
 * `dropped` event saying how many items it missed.
 */
#include "umg_attr_ep.h"
#include "umg_live.h"

#include <stdlib.h>

#define MAX_STREAMS 64
#define CHUNK_BYTES (64 << 10)
#define PING_MS 15000
#define WAIT_MS 1000 /* an item claimed but still unwritten after this was dropped by its publisher */

typedef struct live_stream_s {
    umg_live_t *live;
    uint32_t app;
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

static int live_pull(void *data, umg_buf_t *out, int *done)
{
    live_stream_t *st = data;
    *done = 0;
    int64_t now = now_ms();
    int rc = UMG_OK;
    if (!st->started) {
        st->started = 1;
        st->last_write_ms = now;
        char hello[160];
        int n = snprintf(hello, sizeof(hello), "{\"app\":\"%s\",\"ring\":%zu,\"next\":%llu}", st->app_public,
                         umg_live_slots(st->live), (unsigned long long)st->next);
        rc = umg_buf_append(out, "retry: 2000\n", 12);
        return rc ? rc : frame(out, -1, "hello", hello, (size_t)n);
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

static void live_fini(void *data)
{
    live_stream_t *st = data;
    umg_live_unsubscribe(st->live, st->app);
    umg_buf_free(&st->item);
    umg_live_stream_give(st->live);
    umg_free(st);
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
    if (umg_live_stream_take(ing->live, MAX_STREAMS) != UMG_OK) {
        umg_http_error(req, 503, "too_many_streams", NULL, "the server has 64 live streams open; retry later");
        return;
    }
    live_stream_t *st = umg_calloc(1, sizeof(*st));
    if (st == NULL) {
        umg_live_stream_give(ing->live);
        umg_http_error(req, 503, "out_of_memory", NULL, "the server is out of memory; retry");
        return;
    }
    umg_metric_add(&m_streams, 1);
    st->live = ing->live;
    st->app = app.id;
    snprintf(st->app_public, sizeof(st->app_public), "%s", app.public_id);
    st->next = umg_live_subscribe(ing->live, app.id);
    /* A reconnecting EventSource sends the last id it saw: resume after it while the ring still has it. */
    umg_slice_t last = umg_http_header(req, "last-event-id");
    if (last.len > 0 && last.len < 21) {
        char b[24];
        memcpy(b, last.ptr, last.len);
        b[last.len] = '\0';
        char *end;
        unsigned long long id = strtoull(b, &end, 10);
        if (end == b + last.len && id + 1 <= st->next && st->next - (id + 1) < umg_live_slots(ing->live)) {
            st->next = id + 1;
        }
    }
    umg_http_add_header(req, "Cache-Control", "no-store");
    umg_http_add_header(req, "X-Accel-Buffering", "no");
    umg_http_stream(req, 200, "text/event-stream; charset=utf-8", live_pull, live_fini, st);
}
