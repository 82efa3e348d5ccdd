/*
 * umg_event.h - the event model (installs, sessions, in-app events,
 * purchases), its JSON decoder with per-field validation errors, and the
 * canonical JSON encoding that is stored in the event log and exported.
 *
 * Pure module: no sockets, files, threads or global state. The decoder owns a
 * simdjson parser (see json_shim.cpp) and is meant to be kept per thread.
 */
#ifndef UMG_EVENT_H
#define UMG_EVENT_H

#include "umg_core.h"

typedef enum {
    UMG_EV_INSTALL = 1,
    UMG_EV_SESSION = 2,
    UMG_EV_EVENT = 3,
    UMG_EV_PURCHASE = 4,
} umg_event_type_t;

#define UMG_EVENT_MAX_PROPS 50
#define UMG_EVENT_MAX_PROP_KEY 64
#define UMG_EVENT_MAX_PROP_STR 256
#define UMG_EVENT_MAX_STR 256 /* ordinary string fields (ids, model, name...) */
#define UMG_EVENT_MAX_UA 1024 /* user_agent */
#define UMG_EVENT_MAX_REFERRER 2048

typedef enum { UMG_PROP_STRING, UMG_PROP_INT, UMG_PROP_DOUBLE } umg_prop_kind_t;

typedef struct umg_event_prop_s {
    umg_slice_t key;
    umg_prop_kind_t kind;
    umg_slice_t s;
    int64_t i;
    double d;
} umg_event_prop_t;

typedef struct umg_event_device_s {
    umg_slice_t idfa, idfv, gaid, android_id, oaid, custom_id;
    umg_slice_t platform, os_version, model, app_version, sdk_version, locale;
    int opt_out;           /* device.opt_out (bool), default 0 */
    int limit_ad_tracking; /* device.limit_ad_tracking (bool), default 0 */
} umg_event_device_t;

/*
 * A decoded event. Slices borrow from the decoder's document and are valid
 * until the next umg_event_decoder_parse() on the same decoder, or from the
 * caller for the server-set fields (app_id, ip).
 */
typedef struct umg_event_s {
    umg_uuid_t event_id;
    int has_event_id; /* 0: the caller generates one */
    umg_event_type_t type;
    umg_slice_t name; /* required for event/purchase */
    int64_t ts_us;    /* event time; set to received_us when absent */
    int has_ts;
    umg_event_device_t device;
    umg_slice_t ip; /* body "ip" (only when allowed) or set by the server */
    umg_slice_t user_agent;
    umg_slice_t user_id;
    int has_revenue;
    double revenue;
    char currency[4]; /* ISO 4217, NUL-terminated, when has_revenue */
    int has_referrer;
    umg_slice_t referrer;
    int64_t referrer_click_ts_us;         /* 0 when absent */
    int64_t referrer_install_begin_ts_us; /* 0 when absent */
    umg_event_prop_t props[UMG_EVENT_MAX_PROPS];
    int nprops;
    /* set by the server before encoding */
    umg_slice_t app_id; /* the app's public id */
    int64_t received_us;
} umg_event_t;

/* One validation failure. `code` is a static machine-readable string; field is
 * the JSON path ("device.gaid", "props.level", "ts"). */
typedef struct umg_event_error_s {
    const char *code;
    char field[96];
    char message[160];
} umg_event_error_t;

typedef struct umg_event_limits_s {
    int64_t now_us;        /* server receive time */
    int64_t max_future_us; /* default 10 minutes */
    int64_t max_age_us;    /* default 30 days */
    int allow_ip;          /* 1 for server-to-server calls: body "ip" is taken */
    /* 1 to read the stored/exported form back (import, replay, tests): "app_id"
     * and "received_at" are taken instead of being unknown fields. */
    int stored;
} umg_event_limits_t;

/** The limits for reading a stored record back (received at recv_us): no time bounds, ip and stored members taken. */
umg_event_limits_t umg_event_limits_stored(int64_t recv_us);

typedef struct umg_event_decoder_s umg_event_decoder_t;

/*
 * A decoder for bodies of up to max_body bytes (UMG_EINVAL for 0). Its
 * memory grows on demand with the largest body seen, up to about 15 bytes per
 * body byte, and is reused; keep one per thread. Caller frees.
 */
int umg_event_decoder_new(size_t max_body, umg_event_decoder_t **out);
void umg_event_decoder_free(umg_event_decoder_t *d);

/*
 * Parses a request body: one event object or {"events": [...]}.
 * Returns UMG_OK, UMG_EPARSE (not valid JSON, or neither form: answer 400
 * with `err` filled, code "invalid_json"), UMG_ERANGE (more than max_events,
 * code "too_many_events", or more than max_body bytes, code
 * "body_too_large": answer 413), UMG_ENOMEM (code "overloaded": 503).
 * `err` may be NULL; n_events and is_batch (may be NULL) are written on
 * success only. `body` is borrowed for the call only (it is copied to padded
 * memory). Invalid UTF-8 inside strings does not fail the parse: the events
 * concerned get invalid_utf8 from foreach.
 */
int umg_event_decoder_parse(umg_event_decoder_t *d, const char *body, size_t len, size_t max_events, size_t *n_events,
                            int *is_batch, umg_event_error_t *err);

/*
 * Calls cb once per event of the last parsed body, in order, with the
 * decoded event (when valid, err == NULL) or the error (ev == NULL); both are
 * borrowed until cb returns (copy the struct to keep it: its slices stay
 * valid until the next parse). ev->received_us is lim->now_us; ev->app_id is
 * empty unless lim->stored. A non-zero return from cb stops the walk and is
 * returned; UMG_EINVAL when the last parse failed, UMG_ENOMEM if the
 * decoder's arena cannot grow.
 */
typedef int (*umg_event_cb)(void *ctx, size_t index, umg_event_t *ev, const umg_event_error_t *err);
int umg_event_decoder_foreach(umg_event_decoder_t *d, const umg_event_limits_t *lim, umg_event_cb cb, void *ctx);

/**
 * 1 when code is an ISO 4217 alphabetic code the event schema accepts
 * (exactly three upper-case letters, on the list in event.c; XTS and XXX are
 * not), else 0. code is borrowed for the call and need not be NUL-terminated.
 */
int umg_event_currency_known(umg_slice_t code);

/*
 * Appends the canonical JSON object of an event (one line, no newline;
 * docs/events.md). UMG_EINVAL for an event that cannot be written (bad type,
 * non-finite numbers, nprops out of range), UMG_ENOMEM if out cannot grow.
 */
int umg_event_encode_json(const umg_event_t *ev, umg_buf_t *out);

/* The strongest device identifier present (idfa, gaid, oaid, android_id,
 * idfv, custom_id in that order); len 0 when none. */
umg_slice_t umg_event_device_key(const umg_event_t *ev);

/** Copies every string the event borrows into a, so it outlives its decoder's next parse. UMG_OK or UMG_ENOMEM. */
int umg_event_own(umg_event_t *ev, umg_arena_t *a);

const char *umg_event_type_name(umg_event_type_t t);

#endif
