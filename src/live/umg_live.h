/*
 * umg_live.h - the live feed: a bounded in-memory broadcast ring of what
 * ingest accepted or rejected and what the pipeline decided, for watching an
 * SDK integration as it happens (GET /v1/live, Server-Sent Events).
 *
 * Publishing never blocks and never allocates: it costs one atomic load when
 * nobody watches the app, and one slot copy when somebody does. A slot that
 * is being written by another publisher at that moment is skipped and
 * counted (umg_live_dropped_total). Readers never hold up publishers: a
 * reader that falls more than a ring behind skips what was overwritten and
 * is told how many items it missed.
 */
#ifndef UMG_LIVE_H
#define UMG_LIVE_H

#include "umg_core.h"

typedef struct umg_live_s umg_live_t;

/** A ring of `slots` items of at most `slot_bytes` bytes of JSON each (both powers of two are fastest). */
int umg_live_new(size_t slots, size_t slot_bytes, umg_live_t **out);
void umg_live_free(umg_live_t *l);

/** Whether anybody watches app now (any thread, one atomic load). */
int umg_live_wanted(const umg_live_t *l, uint32_t app);

/**
 * Publishes one item for app (any thread, never blocks): kind is a short word
 * ("event", "rejected", "decision"), json one JSON object without newlines,
 * copied. An object over the slot size is replaced by
 * {"truncated":true,"bytes":N} and the head of the original is lost.
 */
void umg_live_publish(umg_live_t *l, uint32_t app, const char *kind, const char *json, size_t len);

/** Ingest's helpers: an accepted or duplicate event (its stored JSON), and a request's rejections. */
void umg_live_publish_event(umg_live_t *l, uint32_t app, const char *status, const char *event_json, size_t len);
void umg_live_publish_rejected(umg_live_t *l, uint32_t app, size_t accepted, const char *errors_json, size_t len);

/* ---- readers (GET /v1/live) */

/** Starts watching app; returns the sequence number of the next item to be published. */
uint64_t umg_live_subscribe(umg_live_t *l, uint32_t app);
void umg_live_unsubscribe(umg_live_t *l, uint32_t app);
/**
 * Takes one of at most max open streams, at most max_org of them for one organization (counted by org id
 * modulo 256: an organization sharing a count with another is limited sooner, never later): 0 when there is
 * room, UMG_EFULL when the server has max, UMG_EBUSY when the organization has max_org.
 */
int umg_live_stream_take(umg_live_t *l, uint32_t org, int max, int max_org);
/** Gives a stream taken with umg_live_stream_take back. */
void umg_live_stream_give(umg_live_t *l, uint32_t org);
/** The sequence number of the first item (before any is published): the daemon starts at the clock in
 *  microseconds, so that the ids of one start are above those of the ones before (Last-Event-ID). */
void umg_live_set_head(umg_live_t *l, uint64_t seq);
/** The sequence number the next item will get. */
uint64_t umg_live_head(const umg_live_t *l);
size_t umg_live_slots(const umg_live_t *l);

/**
 * Reads item seq: UMG_OK with *app, kind (copied, NUL-terminated) and the JSON
 * appended to out; UMG_EAGAIN when it is not written yet (or is being
 * written); UMG_ENOENT when it was overwritten or skipped by its publisher.
 */
int umg_live_read(const umg_live_t *l, uint64_t seq, uint32_t *app, char kind[16], umg_buf_t *out);

/* Wipes the items of app still in the ring (a forget request: they may name the device); streams pass over
 * them. NULL l is no ring. */
void umg_live_forget_app(umg_live_t *l, uint32_t app);

/*
 * The SSE endpoint GET /v1/live?app=ID (src/live/live_ep.c): Bearer token
 * with reports:read on the app, or the app secret. The ring is the ingest
 * module's (umg_ingest_t.live); thread_data is ingest's.
 */
struct umg_http_req_s;
void umg_live_ep(struct umg_http_req_s *req, void *thread_data);

#endif
