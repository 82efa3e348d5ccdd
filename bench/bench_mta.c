/*
 * bench_mta.c - the multi-touch report of GET /v1/reports/mta over a million
 * journeys, per model: every journey through umg_mta_report_add (names
 * interned, as the HTTP layer feeds the builder while it scans the store),
 * then one umg_mta_report_json (the model's credit and the JSON). The issue's
 * target: under 2 s for every model.
 *
 *   bench_mta [journeys] [channels] [model...]   (default 1000000 40, every model)
 *
 * The journeys (seed 42) are made before any clock starts: 1-5 touches each
 * over `channels` channels named "source-NN", popular ones more often (the
 * smaller of two uniform picks); touch times spread over the 30 days before
 * the journey's end; about 3 % convert, with a chance that grows with the
 * distinct channels touched (so Markov and Shapley have signal to find);
 * a fifth of the conversions carry a revenue as their value, the others 1;
 * and 1 % of the journeys are organic conversions without a touch. One line
 * per model:
 *
 *   mta model=first journeys=1000000 channels=40 add_s=0.110 json_s=0.020 total_s=0.130 target_s=2 pass
 *
 * total_s = add_s + json_s (new and free included). The peak RSS of the
 * process is printed last. Exit status 1 when a model misses the target, 2
 * on bad arguments or an error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "umg_report.h"

#define TARGET_S 2.0
#define MAX_TOUCH 5
#define DAY_US (INT64_C(86400) * 1000000)

typedef struct journeys_s {
    size_t n;
    uint8_t *len;  /* touches per journey */
    uint8_t *conv; /* converted */
    double *value; /* when converted */
    uint16_t *ch;  /* MAX_TOUCH slots per journey */
    int64_t *ts;   /* MAX_TOUCH slots per journey */
    char (*name)[16];
    umg_slice_t *slice; /* the names as slices, by channel */
    uint32_t nch;
} journeys_t;

static uint64_t rng = 42;
static uint64_t next(void)
{
    uint64_t z = (rng += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static double uniform(void)
{
    return (double)(next() >> 11) / 9007199254740992.0;
}

static void make_journey(journeys_t *j, size_t i)
{
    uint32_t organic = next() % 100 == 0, n = organic ? 0 : 1 + (uint32_t)(next() % MAX_TOUCH);
    uint64_t seen = 0;
    double p = 0.012;
    int64_t end = INT64_C(1767225600000000) + (int64_t)(next() % (uint64_t)(30 * DAY_US));
    for (uint32_t t = 0; t < n; t++) {
        uint32_t a = (uint32_t)(next() % j->nch), b = (uint32_t)(next() % j->nch);
        uint32_t c = a < b ? a : b;
        j->ch[i * MAX_TOUCH + t] = (uint16_t)c;
        if (!(seen >> (c % 64) & 1)) {
            p += 0.0015 * (double)(c % 5 + 1);
            seen |= UINT64_C(1) << (c % 64);
        }
    }
    /* Times ascending, ending at `end`, spread over the 30 days before it. */
    for (uint32_t t = n; t-- > 0;) {
        end -= (int64_t)(next() % (uint64_t)(30 * DAY_US / MAX_TOUCH));
        j->ts[i * MAX_TOUCH + t] = end;
    }
    j->len[i] = (uint8_t)n;
    j->conv[i] = organic || uniform() < p;
    j->value[i] = 1.0;
    if (j->conv[i] && next() % 5 == 0) {
        j->value[i] = (double)(99 + next() % 9900) / 100.0; /* 0.99 .. 99.98 */
    }
}

static int make_journeys(journeys_t *j, size_t n, uint32_t nch)
{
    j->n = n;
    j->nch = nch;
    j->len = malloc(n);
    j->conv = malloc(n);
    j->value = malloc(n * sizeof(double));
    j->ch = malloc(n * MAX_TOUCH * sizeof(uint16_t));
    j->ts = malloc(n * MAX_TOUCH * sizeof(int64_t));
    j->name = malloc(nch * sizeof(*j->name));
    j->slice = malloc(nch * sizeof(umg_slice_t));
    if (!j->len || !j->conv || !j->value || !j->ch || !j->ts || !j->name || !j->slice) {
        return -1;
    }
    for (uint32_t c = 0; c < nch; c++) {
        int len = snprintf(j->name[c], sizeof(j->name[c]), "source-%02u", (unsigned)c);
        j->slice[c] = umg_slice(j->name[c], (size_t)len);
    }
    for (size_t i = 0; i < n; i++) {
        make_journey(j, i);
    }
    return 0;
}

/* One model: returns 0 when within the target, 1 when not, 2 on an error. */
static int run(const journeys_t *j, umg_mta_model_t m)
{
    umg_mta_report_t *r = NULL;
    umg_buf_t out = {0};
    uint64_t t0 = umg_mono_ns();
    int rc = umg_mta_report_new(m, NULL, &r);
    for (size_t i = 0; i < j->n && rc == UMG_OK; i++) {
        umg_slice_t names[MAX_TOUCH];
        for (uint32_t t = 0; t < j->len[i]; t++) {
            names[t] = j->slice[j->ch[i * MAX_TOUCH + t]];
        }
        rc = umg_mta_report_add(r, names, &j->ts[i * MAX_TOUCH], j->len[i], j->conv[i], j->value[i]);
    }
    uint64_t t1 = umg_mono_ns();
    if (rc == UMG_OK) {
        rc = umg_mta_report_json(r, &out);
    }
    umg_mta_report_free(r);
    uint64_t t2 = umg_mono_ns();
    if (rc != UMG_OK) {
        fprintf(stderr, "%s: %s\n", umg_mta_model_name(m), umg_strerror(rc));
        umg_buf_free(&out);
        return 2;
    }
    double add_s = (double)(t1 - t0) / 1e9, json_s = (double)(t2 - t1) / 1e9, total_s = add_s + json_s;
    printf("mta model=%s journeys=%zu channels=%u add_s=%.3f json_s=%.3f total_s=%.3f target_s=%g %s\n",
           umg_mta_model_name(m), j->n, (unsigned)j->nch, add_s, json_s, total_s, TARGET_S,
           total_s < TARGET_S ? "pass" : "FAIL");
    if (getenv("BENCH_MTA_JSON") != NULL) {
        fprintf(stderr, "%s\n", out.ptr);
    }
    umg_buf_free(&out);
    return total_s < TARGET_S ? 0 : 1;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : 1000000;
    unsigned long nch = argc > 2 ? strtoul(argv[2], NULL, 10) : 40;
    if (n == 0 || n > 100000000 || nch == 0 || nch > 65535) {
        fprintf(stderr, "usage: bench_mta [journeys (1..1e8)] [channels (1..65535)] [model...]\n");
        return 2;
    }
    int want[UMG_MTA_MODELS] = {0}, any = 0;
    for (int a = 3; a < argc; a++) {
        umg_mta_model_t m;
        if (umg_mta_model_parse(umg_slice(argv[a], strlen(argv[a])), &m) != UMG_OK) {
            fprintf(stderr, "unknown model '%s'\n", argv[a]);
            return 2;
        }
        want[m] = any = 1;
    }
    journeys_t j = {0};
    if (make_journeys(&j, n, (uint32_t)nch) != 0) {
        fprintf(stderr, "out of memory\n");
        return 2;
    }
    int status = 0;
    for (int m = 0; m < UMG_MTA_MODELS; m++) {
        if (!any || want[m]) {
            int rc = run(&j, (umg_mta_model_t)m);
            status = rc > status ? rc : status;
        }
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("mta peak_rss_mb=%.0f\n", (double)ru.ru_maxrss / 1024.0);
    free(j.len);
    free(j.conv);
    free(j.value);
    free(j.ch);
    free(j.ts);
    free(j.name);
    free(j.slice);
    return status;
}
