/*
 * umg_touch.h - ad touches (clicks and impressions): the record the log
 * stores, its canonical JSON, and the decoders for the three ways touches
 * arrive: click links (GET /c/{app}), impression links (GET /v/{app}) and
 * server-to-server batches (POST /v1/touches).
 *
 * Pure module. A touch needs no device identifier: a click with only an IP
 * address and a User-Agent is valid and is matched probabilistically.
 */
#ifndef UMG_TOUCH_H
#define UMG_TOUCH_H

#include "umg_core.h"

typedef enum { UMG_TOUCH_CLICK = 1, UMG_TOUCH_IMPRESSION = 2 } umg_touch_type_t;

#define UMG_TOUCH_MAX_STR 256    /* source, campaign, ids, sub1..sub5 */
#define UMG_TOUCH_MAX_URL 2048   /* deep_link, redirect */
#define UMG_TOUCH_LINK_PARAMS 21 /* the link parameters umg_touch_from_params reads: as many as it can drop */
#define UMG_TOUCH_MAX_UA 1024    /* user_agent */
#define UMG_TOUCH_MAX_BATCH 1000 /* touches per POST /v1/touches */
#define UMG_TOUCH_LOOKBACK_MAX_S (30 * 86400)

/*
 * A touch. Slices borrow from the decoder's input (or the caller) and are
 * valid until the next decode on the same decoder; empty slices are absent.
 */
typedef struct umg_touch_s {
    umg_uuid_t touch_id; /* made by the server, unless a server-to-server touch brings one ("touch_id") */
    umg_touch_type_t type;
    int64_t ts_us;       /* links: the receive time; server-to-server: "ts" */
    int64_t received_us; /* server receive time */
    umg_slice_t app_id;  /* the app's public id (set by the server) */
    umg_slice_t source, campaign, campaign_id, adset, ad, site;
    /* click_id: made by the server for clicks when absent (32 hex) */
    umg_slice_t click_id;
    umg_slice_t idfa, idfv, gaid, oaid, android_id, custom_id; /* idfa/idfv/gaid: lowercase UUIDs */
    umg_slice_t ip, user_agent;
    int64_t lookback_s; /* 0: the app's window; else "lookback" (e.g. 7d, 12h, 90m) in seconds */
    int retargeting;    /* 0 / 1 */
    int via_link;       /* 1: came through a click or impression link (stored as "via":"link"), set by the server */
    umg_slice_t deep_link;
    umg_slice_t sub[5]; /* sub1..sub5 */
} umg_touch_t;

/* One rejected field, the same shape as umg_event_error_t. */
typedef struct umg_touch_error_s {
    const char *code; /* required, invalid_type, invalid_value, invalid_utf8, too_long, unknown_field, ts_in_future,
                         ts_too_old (docs/touches.md) */
    char field[64];
    char message[160];
} umg_touch_error_t;

/*
 * Link parameters: fills t from a URL query string (already split by the
 * caller through get(ctx, name, &value), which URL-decodes). Fields that fail
 * validation are left out and reported in dropped[0..*ndropped) (links must
 * still redirect the user; the caller counts and reports them); at most
 * max_dropped are reported. Never fails otherwise.
 *
 * get returns UMG_OK with *value set when the parameter is present,
 * UMG_ENOENT when it is absent, anything else when it is present but
 * malformed (reported as invalid_value), as umg_http_query_param() does. An
 * empty value is absent. Values are borrowed by t, and must be writable memory
 * the caller owns: idfa/idfv/gaid written in upper case are lowercased where
 * they lie. Only the link-parameter fields of t are written (all of them);
 * touch_id, type, ts_us, received_us, app_id, ip and user_agent are left as
 * they are. dropped and ndropped may be NULL.
 */
typedef int (*umg_touch_param_fn)(void *ctx, const char *name, umg_slice_t *value);
void umg_touch_from_params(umg_touch_t *t, umg_touch_param_fn get, void *ctx, umg_touch_error_t *dropped,
                           size_t max_dropped, size_t *ndropped);

typedef struct umg_touch_decoder_s umg_touch_decoder_t;
int umg_touch_decoder_new(size_t max_body, umg_touch_decoder_t **out);
void umg_touch_decoder_free(umg_touch_decoder_t *d);

typedef struct umg_touch_limits_s {
    int64_t now_us;
    int64_t max_future_us;
    int64_t max_age_us;
    int stored; /* reading the stored form back: touch_id, app_id, received_at are taken */
} umg_touch_limits_t;

/** The limits for reading a stored touch back (received at recv_us): no time bounds, stored members taken. */
umg_touch_limits_t umg_touch_limits_stored(int64_t recv_us);

/*
 * Parses {"touches": [...]} (or one touch object when stored), then calls cb
 * once per touch in order with the touch (err NULL) or the error (t NULL);
 * both are borrowed until cb returns, the touch's slices until the next
 * decode. t->received_us is lim->now_us (or "received_at" when stored).
 * Returns UMG_EPARSE (not JSON / wrong shape: 400, err filled), UMG_ERANGE
 * (over UMG_TOUCH_MAX_BATCH: 413), UMG_ENOMEM, or the first non-zero cb return.
 */
typedef int (*umg_touch_cb)(void *ctx, size_t index, umg_touch_t *t, const umg_touch_error_t *err);
int umg_touch_decode(umg_touch_decoder_t *d, const char *body, size_t len, const umg_touch_limits_t *lim,
                     umg_touch_cb cb, void *ctx, umg_touch_error_t *err);

/** Appends the canonical JSON object of a touch (one line; docs/touches.md). */
int umg_touch_encode_json(const umg_touch_t *t, umg_buf_t *out);

/** The strongest device identifier (idfa, gaid, oaid, android_id, idfv, custom_id); len 0 when none. */
umg_slice_t umg_touch_device_key(const umg_touch_t *t);

/** Copies every string the touch borrows into a, so it outlives its decoder's next decode. UMG_OK or UMG_ENOMEM. */
int umg_touch_own(umg_touch_t *t, umg_arena_t *a);

#endif
