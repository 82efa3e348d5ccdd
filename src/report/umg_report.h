/*
 * umg_report.h - reports computed from stored data for the API. For now the
 * multi-touch report behind `GET /v1/reports/mta`: a builder that the HTTP
 * layer feeds one journey at a time while it scans the store, and that then
 * shares the value among channels with one of the models of umg_mta_credit
 * (src/attr) and writes the result as one JSON object.
 *
 * Pure module: no I/O, threads or global state. A report is owned by one
 * thread at a time. The output is a function of the journeys added (in the
 * order added), the model and the options, byte for byte.
 */
#ifndef UMG_REPORT_H
#define UMG_REPORT_H

#include "umg_attr.h"
#include "umg_core.h"

/* A journey keeps at most its last this many touches; earlier ones are dropped (counted as truncated). */
#define UMG_MTA_REPORT_MAX_TOUCHES 64
/* Longest channel name accepted, in bytes (touch fields are at most 256, UMG_TOUCH_MAX_STR). */
#define UMG_MTA_REPORT_MAX_NAME 1024
/* Largest value of one journey: keeps every sum finite and far inside a double's exact range. */
#define UMG_MTA_REPORT_MAX_VALUE 1e12

/* What a channel is: the `by` parameter. */
typedef enum { UMG_MTA_REPORT_BY_SOURCE = 0, UMG_MTA_REPORT_BY_CAMPAIGN = 1 } umg_mta_report_by_t;

/* What a conversion is worth: the `value` parameter (1 per install, or its revenue). */
typedef enum { UMG_MTA_REPORT_VALUE_INSTALLS = 0, UMG_MTA_REPORT_VALUE_REVENUE = 1 } umg_mta_report_value_t;

/** "source" / "campaign" (exact, lower case); UMG_EINVAL otherwise, *out untouched. */
int umg_mta_report_parse_by(umg_slice_t s, umg_mta_report_by_t *out);
/** "installs" / "revenue" (exact, lower case); UMG_EINVAL otherwise, *out untouched. */
int umg_mta_report_parse_value(umg_slice_t s, umg_mta_report_value_t *out);
/** The parameter's text for a value of the enums; "unknown" out of range. */
const char *umg_mta_report_by_name(umg_mta_report_by_t by);
const char *umg_mta_report_value_name(umg_mta_report_value_t v);

typedef struct umg_mta_report_s umg_mta_report_t;

/**
 * A new, empty report for `model`. opts (borrowed, copied; NULL for the
 * defaults of umg_mta_opts_default) are checked here: UMG_EINVAL for an
 * unknown model, a half-life <= 0 or an unknown Shapley game. UMG_ENOMEM.
 * *out (freed by the caller with umg_mta_report_free) is written on success.
 */
int umg_mta_report_new(umg_mta_model_t model, const umg_mta_opts_t *opts, umg_mta_report_t **out);

/** Frees the report and everything it holds; NULL is fine. */
void umg_mta_report_free(umg_mta_report_t *r);

/**
 * Adds one journey: its touches' channel names in time order (channels[0..n),
 * borrowed for the call only: names are copied), their times (ts_us[0..n),
 * borrowed; read only by the time_decay model, may be NULL for the others),
 * whether it converted, and the value of the conversion (1 for an install, or
 * the revenue; ignored when converted is 0).
 *
 * A journey of more than UMG_MTA_REPORT_MAX_TOUCHES touches keeps its last
 * UMG_MTA_REPORT_MAX_TOUCHES (the ones nearest the conversion). A converted
 * journey with no touch is organic: counted (conversions and value) and passed
 * to the models, which give it no credit. Names are bytes: two names are the
 * same channel exactly when their bytes are equal (no case folding).
 *
 * UMG_EINVAL: r NULL, channels NULL with n > 0, a name longer than
 * UMG_MTA_REPORT_MAX_NAME or with a NULL ptr and a length, ts_us NULL with
 * n > 0 for time_decay, or (when converted) a value that is not finite, is
 * negative or is above UMG_MTA_REPORT_MAX_VALUE. UMG_ENOMEM, UMG_EFULL (2^32 - 1
 * channels). On any error the journey is not recorded.
 */
int umg_mta_report_add(umg_mta_report_t *r, const umg_slice_t *channels, const int64_t *ts_us, uint32_t n,
                       int converted, double value);

/** Journeys added so far. */
size_t umg_mta_report_journeys(const umg_mta_report_t *r);

/**
 * Runs the model once over every journey added and appends one JSON object to
 * out (the body of `GET /v1/reports/mta`, which the HTTP layer may wrap):
 *
 *   {"model":"markov","journeys":N,"converting_journeys":C,
 *    "non_converting_journeys":M,"conversions_with_touches":X,
 *    "truncated_journeys":D,"touches":K,
 *    "organic":{"conversions":O,"value":V},"total":T,
 *    "channels":[{"name":"meta","credit":12.5,"share":0.31,"touches":..,
 *                 "journeys":..,"converting_journeys":..,
 *                 "first_touch":..,"last_touch":..},...]}
 *
 * - journeys = converting_journeys + non_converting_journeys; a converting
 *   journey has the converted flag set, whatever its value;
 *   conversions_with_touches of them have at least one touch and O none.
 * - total: the value of the converting journeys with touches, which the
 *   model shares; V: the value of the organic ones (credited to nobody).
 * - channels: every channel with a touch in the report (after truncation),
 *   by credit descending, then by name (bytewise). `touches` counts its
 *   touches in all journeys, `journeys` the journeys touching it,
 *   `converting_journeys` the converting ones among them, `first_touch` /
 *   `last_touch` the converting journeys it opens / closes.
 * - Numbers: counts are integers. credit, total and organic.value are written
 *   in fixed point with 6 decimals (fewer, down to 0, only when the total or
 *   the organic value is above 2^53 / 10^6, about 9e9, so each stays an exact
 *   integer count of units). The credits are rounded to those units by the
 *   largest-remainder method, so the written credits add up exactly to the
 *   written total (which is the total rounded to the same units). `share` is
 *   credit / total rounded the same way to 6 decimals, so the shares add up to
 *   exactly 1.000000 (all 0.000000 when the total is 0).
 * - Names are JSON strings; ill-formed UTF-8 is written as U+FFFD, one per
 *   maximal ill-formed subpart (two names differing only there look alike).
 *
 * The same journeys added in the same order with the same model and options
 * give the same bytes. UMG_EINVAL for NULL arguments, UMG_ERANGE when the
 * value is beyond 9e15 (no exact fixed point left), UMG_ENOMEM. On error out
 * keeps its previous content. The report is unchanged and may be added to
 * and written again.
 */
int umg_mta_report_json(umg_mta_report_t *r, umg_buf_t *out);

#endif
