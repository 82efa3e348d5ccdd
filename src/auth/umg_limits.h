/*
 * umg_limits.h - ingest limits: a token bucket per app (events per second
 * with a burst) and a monthly event quota per organization.
 *
 * Checks run on the event-loop threads, so they take no locks that SQLite or
 * I/O could hold: buckets and counters are small structs updated with atomics
 * in a table that only grows. Quota usage is persisted by the caller
 * (umg_limits_usage_each) and restored on start (umg_limits_usage_set).
 */
#ifndef UMG_LIMITS_H
#define UMG_LIMITS_H

#include "umg_core.h"

typedef struct umg_limits_s umg_limits_t;

/* A limit of 0 means unlimited. */
typedef struct umg_rate_s {
    double rate;  /* events per second refilled */
    double burst; /* bucket size in events (>= 1 when rate > 0) */
} umg_rate_t;

int umg_limits_new(umg_limits_t **out);
void umg_limits_free(umg_limits_t *l);

/** Sets (or changes) an app's bucket; the bucket keeps its current fill, capped at the new burst. */
int umg_limits_set_app(umg_limits_t *l, uint32_t app, umg_rate_t r);
/** Sets an organization's monthly quota in events (0: unlimited). */
int umg_limits_set_org(umg_limits_t *l, uint32_t org, int64_t monthly_quota);

/* The answer to a check, for 429 and the RateLimit-* headers. */
typedef struct umg_limit_verdict_s {
    int ok;                /* 1: admitted (and counted); 0: refused, nothing counted */
    const char *which;     /* on refusal: "rate" or "quota" */
    int64_t limit;         /* the limit that applies (burst for rate, quota for quota); 0 when none */
    int64_t remaining;     /* what is left after this request */
    int64_t reset_s;       /* seconds until the bucket is full again / until the month rolls over */
    int64_t retry_after_s; /* on refusal: seconds to wait (>= 1) */
} umg_limit_verdict_t;

/**
 * Admits n events of app (in org) at now_us, or refuses all of them. A
 * request larger than the burst is admitted when the bucket is full (so a
 * batch is never refused forever) and leaves the bucket in debt. Quota months
 * are calendar months in UTC.
 */
void umg_limits_take(umg_limits_t *l, uint32_t app, uint32_t org, int64_t n, int64_t now_us, umg_limit_verdict_t *v);

/**
 * Gives back n events admitted by a take() that were not stored after all
 * (rejected or duplicates), so they count against neither limit.
 */
void umg_limits_give_back(umg_limits_t *l, uint32_t app, uint32_t org, int64_t n);

/* Quota usage: month is YYYYMM (e.g. 202611). */
int umg_limits_usage_set(umg_limits_t *l, uint32_t org, int month, int64_t used);
int64_t umg_limits_usage_get(umg_limits_t *l, uint32_t org, int month);
/** Calls fn for every org with usage in the current month of now_us. */
void umg_limits_usage_each(umg_limits_t *l, int64_t now_us,
                           void (*fn)(void *ctx, uint32_t org, int month, int64_t used), void *ctx);
/** YYYYMM of a time. */
int umg_limits_month(int64_t now_us);

#endif
