/*
 * umg_rollup.h - report rollups kept in memory for queries: per app, rows of
 * counters keyed by a local day and the attribution dimensions, in columns
 * so a report scans only what it reads.
 *
 * The pipeline (src/pipeline) is the only writer. It adds a batch's changes
 * to a delta (umg_rollup_add), writes each changed row's new value to the
 * attribution store in the batch's own transaction (umg_rollup_delta_each),
 * and merges the delta into the tables once that transaction committed
 * (umg_rollup_merge). At start the tables are loaded back from the store
 * (umg_rollup_load). Readers (report threads) see whole batches only.
 *
 * Pure module: no files, sockets or clocks; one rwlock (writers preferred).
 * Definitions of every counter: docs/reports.md.
 */
#ifndef UMG_ROLLUP_H
#define UMG_ROLLUP_H

#include "umg_core.h"

/* Dimensions: ids of the attribution store's dictionary (umg_store_intern), 0 = empty. */
enum {
    UMG_RD_SOURCE = 0,
    UMG_RD_CAMPAIGN,
    UMG_RD_ADSET,
    UMG_RD_AD,
    UMG_RD_SITE,
    UMG_RD_COUNTRY,  /* ISO 3166 alpha-2, upper case */
    UMG_RD_PLATFORM, /* "android", "ios", "web", ... */
    UMG_RD_N
};

/* The tables, and what x[] and v[] hold in each. */
typedef enum {
    /* day: the local day of the fact. v: UMG_RM_* counters. */
    UMG_RT_MAIN = 0,
    /* day: local day of the revenue; x[0]: currency (dictionary id of the ISO 4217 code).
     * v[0]: revenue in micro-units of that currency, v[1]: events carrying revenue. */
    UMG_RT_REVENUE = 1,
    /* day: local day; x[0]: event name id. v[0]: events, v[1]: distinct devices that day. */
    UMG_RT_EVENT = 2,
    /* day: the local install day of the cohort. v[0]: devices that joined it (cohort size). */
    UMG_RT_COHORT = 3,
    /* day: install day; x[0]: days since install (0..UMG_ROLLUP_COHORT_DAYS-1).
     * v[0]: distinct devices active that day, v[1]: sessions. */
    UMG_RT_COHORT_DAY = 4,
    /* day: install day; x[0]: days since install; x[1]: currency id. v[0]: revenue micros, v[1]: events. */
    UMG_RT_COHORT_REV = 5,
    /* Activity of the whole app (dimensions 0); x[0]: a UMG_RA_* kind, day as that kind says.
     * v[0]: active devices (or a change of them), v[1]: new devices (first seen in the period). */
    UMG_RT_ACTIVITY = 6,
    /* Fraud (docs/fraud.md). day: local day of the item; dimensions: its attribution (touches: their own);
     * x[0]: the rule (umg_fraud_reason_t), x[1]: a UMG_RF_* item kind. v[0]: rejected, v[1]: flagged. */
    UMG_RT_FRAUD = 7,
    /* day: install day; dimensions: the click that would have won before any fraud rule (its source, ...).
     * v[0..6]: installs by click-to-install time bucket (umg_fraud_ctit_bucket). */
    UMG_RT_CTIT = 8,
    /* day: install day; dimensions: the install's attribution. x[0] = 0: v[0..9] scored installs by model
     * score decile; x[0] = 1: v[0] scored, v[1] at or over the threshold, v[2] over it and rejected by a
     * rule, v[3] under it and rejected by a rule. */
    UMG_RT_SCORE = 9,
    /* Re-engagement credit (rule 5 of docs/attribution.md): what a re-engaged device does while its
     * re-engagement runs, credited to the retargeting click that re-engaged it. Dimensions: that click's
     * source..site, the device's country and platform. Layouts as UMG_RT_MAIN, _REVENUE and _EVENT. MAIN's
     * counters kept: IMPRESSIONS and CLICKS (retargeting touches, under their own dimensions as in
     * UMG_RT_MAIN), REENGAGEMENTS, SESSIONS, ACTIVE and PAYING (distinct re-engaged devices); the others
     * stay 0. */
    UMG_RT_REENG_MAIN = 10,
    UMG_RT_REENG_REVENUE = 11,
    UMG_RT_REENG_EVENT = 12,
    UMG_RT_COUNT
} umg_rollup_table_t;

/* Counters of UMG_RT_MAIN. */
enum {
    UMG_RM_IMPRESSIONS = 0,
    UMG_RM_CLICKS,
    UMG_RM_INSTALLS,         /* first installs (and implicit ones) with an attributed touch */
    UMG_RM_ORGANIC_INSTALLS, /* first installs (and implicit ones) with none */
    UMG_RM_REINSTALLS,
    UMG_RM_REATTRIBUTIONS,
    UMG_RM_REENGAGEMENTS,
    UMG_RM_SESSIONS,
    UMG_RM_ACTIVE, /* distinct devices with any install, session or event that day */
    UMG_RM_PAYING, /* distinct devices with revenue > 0 that day */
    UMG_RM_N
};

/* Kinds of UMG_RT_ACTIVITY rows. */
enum {
    UMG_RA_DAY = 0,     /* day: the day. v[0]: distinct devices active (DAU), v[1]: new that day */
    UMG_RA_WEEK7 = 1,   /* day: D. v[0]: the change on D of the devices active in the 7 days ending on D (the
                         * trailing WAU of D is the sum of v[0] over every day <= D); v[1] unused */
    UMG_RA_MONTH30 = 2, /* the same for 30 days (trailing MAU) */
    UMG_RA_WEEK = 3,    /* day: the Monday of a calendar week. v[0]: distinct devices active that week, v[1]: new */
    UMG_RA_MONTH = 4,   /* day: the first day of a calendar month. v[0]: active that month, v[1]: new */
};

/* Item kinds of UMG_RT_FRAUD rows. */
enum { UMG_RF_CLICK = 0, UMG_RF_IMPRESSION = 1, UMG_RF_INSTALL = 2, UMG_RF_EVENT = 3 };

#define UMG_ROLLUP_MAXV UMG_RM_N
#define UMG_ROLLUP_COHORT_DAYS 181 /* days since install 0..180 */

/* A row's key within one app's table. 40 bytes, no padding; zero unused x[]. */
typedef struct umg_rollup_key_s {
    int32_t day; /* days since 1970-01-01 in the app's reporting time zone */
    uint32_t dim[UMG_RD_N];
    uint32_t x[2];
} umg_rollup_key_t;

/** How many counters a row of table t has (v[0..n-1]). */
size_t umg_rollup_nvalues(umg_rollup_table_t t);

typedef struct umg_rollup_s umg_rollup_t;
typedef struct umg_rollup_delta_s umg_rollup_delta_t;

int umg_rollup_new(umg_rollup_t **out);
void umg_rollup_free(umg_rollup_t *r);

/** Adds one persisted row at start (before any reader or delta); replaces a row of the same key. */
int umg_rollup_load(umg_rollup_t *r, uint32_t app, umg_rollup_table_t t, const umg_rollup_key_t *k, const int64_t *v);

/* ------------------------------------------------------------ deltas */

int umg_rollup_delta_new(umg_rollup_delta_t **out);
void umg_rollup_delta_free(umg_rollup_delta_t *d);
/** Empties the delta, keeping its memory. */
void umg_rollup_delta_reset(umg_rollup_delta_t *d);
/**
 * Adds by to counter vi of the row (app, t, k), creating it. Adds are queued
 * and applied a few hundred at a time (umg_rollup_delta_flush; every function
 * below that reads the delta flushes it first). UMG_ENOMEM when applying them
 * ran out of memory, now or at an earlier add: the delta has lost adds, and
 * every call that reads or adds to it says UMG_ENOMEM until it is reset.
 */
int umg_rollup_add(umg_rollup_delta_t *d, uint32_t app, umg_rollup_table_t t, const umg_rollup_key_t *k, size_t vi,
                   int64_t by);
/** Applies the queued adds. UMG_ENOMEM as umg_rollup_add says. */
int umg_rollup_delta_flush(umg_rollup_delta_t *d);
/** True when the delta holds no change (queued or applied) and has not failed. */
int umg_rollup_delta_empty(const umg_rollup_delta_t *d);

/**
 * Calls fn for every row the delta changes, with the row's value after a
 * merge (the tables' current value plus the delta): what to persist. A
 * non-zero return from fn stops and is returned. Takes the read lock.
 */
typedef int (*umg_rollup_row_cb)(void *ctx, uint32_t app, umg_rollup_table_t t, const umg_rollup_key_t *k,
                                 const int64_t *v, size_t nv);
int umg_rollup_delta_each(umg_rollup_t *r, umg_rollup_delta_t *d, umg_rollup_row_cb fn, void *ctx);

/** Calls fn for every row of the delta with the delta's own counters (what it adds). No lock. */
int umg_rollup_delta_rows(umg_rollup_delta_t *d, umg_rollup_row_cb fn, void *ctx);

/** Adds the delta to the tables (under the write lock). UMG_ENOMEM leaves the tables unchanged. */
int umg_rollup_merge(umg_rollup_t *r, umg_rollup_delta_t *d);

/* ----------------------------------------------------------- reading */

/* One app's table as columns; row i is (day[i], dim[*][i], x[*][i]) -> v[*][i]. */
typedef struct umg_rollup_view_s {
    size_t n;
    const int32_t *day;
    const uint32_t *dim[UMG_RD_N];
    const uint32_t *x[2];
    const int64_t *v[UMG_ROLLUP_MAXV];
    int32_t min_day, max_day; /* over the rows; 0, -1 when n is 0 */
} umg_rollup_view_t;

/** Takes the read lock: views stay valid and unchanged until umg_rollup_read_end. */
void umg_rollup_read_begin(umg_rollup_t *r);
void umg_rollup_read_end(umg_rollup_t *r);
/** The app's table t (n = 0 when it has none). Between read_begin and read_end only. */
void umg_rollup_view(umg_rollup_t *r, uint32_t app, umg_rollup_table_t t, umg_rollup_view_t *out);

typedef struct umg_rollup_stats_s {
    uint64_t rows[UMG_RT_COUNT];
    uint64_t bytes; /* memory of every table and index */
} umg_rollup_stats_t;
void umg_rollup_stats(umg_rollup_t *r, umg_rollup_stats_t *out);

#endif
