/*
 * bench_fraud_model.c - the cost of scoring an install with the fraud model
 * (src/fraud/umg_fraud_model.h), against XGBoost's own prediction of the
 * same rows in the same run (the baseline).
 *
 *   bench_fraud_model [runs] [train rows] [rounds] [max depth]
 *                     (default 7 3000 100 6)
 *
 * A model is trained on synthetic installs (tests/unit/fraud_synth.h, seed
 * 42; the training time is printed once), then 2,000,000 rows (cycling
 * through 20,000 generated rows, 1.6 MB, so the rows are not all in L1) are
 * scored by:
 *   c_single    umg_fmodel_score, one row per call (the pipeline's hot path)
 *   c_batch256  umg_fmodel_score_batch, 256 rows per call
 *   xgb_single  umg_fmodel_predict_xgb, one row per call (XGBoost in-place
 *               dense prediction, nthread 1; 1/20 of the rows: it is slower)
 *   xgb_batch256 the same, 256 rows per call
 * The four alternate within each run; each figure is the median of `runs`
 * runs (min and max beside it). Prints one JSON line per measurement.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench_util.h"
#include "umg_core.h"
#include "umg_fraud_model.h"
#include "fraud_synth.h"

#define POOL 20000
#define TOTAL 2000000

enum { C_SINGLE, C_BATCH, XGB_SINGLE, XGB_BATCH };
static const char *const what_name[] = {"c_single", "c_batch256", "xgb_single", "xgb_batch256"};

/* Scores `total` rows the given way; returns ns per row. */
static double run(umg_fmodel_t *m, const float *pool, int what, size_t total, double *sink)
{
    static double out[256];
    uint64_t t0 = umg_mono_ns();
    size_t done = 0, at = 0;
    while (done < total) {
        size_t k = what == C_SINGLE || what == XGB_SINGLE ? 1 : 256;
        if (at + k > POOL) {
            at = 0;
        }
        const float *x = pool + at * UMG_FMODEL_NF;
        int rc = what == C_SINGLE  ? umg_fmodel_score(m, x, UMG_FMODEL_NF, out)
                 : what == C_BATCH ? umg_fmodel_score_batch(m, x, k, UMG_FMODEL_NF, out)
                                   : umg_fmodel_predict_xgb(m, x, k, UMG_FMODEL_NF, out);
        if (rc != UMG_OK) {
            fprintf(stderr, "bench_fraud_model: scoring failed: %s\n", umg_strerror(rc));
            exit(1);
        }
        *sink += out[0] + out[k - 1];
        done += k;
        at += k;
    }
    return (double)(umg_mono_ns() - t0) / (double)done;
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 7;
    size_t n = argc > 2 ? (size_t)atol(argv[2]) : 3000;
    umg_fmodel_train_opts_t o;
    umg_fmodel_train_opts_init(&o);
    o.rounds = argc > 3 ? atoi(argv[3]) : 100;
    o.max_depth = argc > 4 ? atoi(argv[4]) : 6;
    if (runs < 1 || n < 100) {
        fprintf(stderr, "usage: bench_fraud_model [runs] [train rows >= 100] [rounds] [max depth]\n");
        return 2;
    }
    float *X = malloc(n * UMG_FMODEL_NF * sizeof(float)), *pool = malloc(POOL * UMG_FMODEL_NF * sizeof(float));
    uint8_t *y = malloc(n), *ypool = malloc(POOL);
    if (X == NULL || y == NULL || pool == NULL || ypool == NULL) {
        return 1;
    }
    fraud_synth(42, n, X, y, NULL);
    fraud_synth(4242, POOL, pool, ypool, NULL);

    char msg[256];
    umg_fmodel_t *m = NULL;
    umg_fmodel_metrics_t mt;
    uint64_t t0 = umg_mono_ns();
    if (umg_fmodel_train(X, y, n, UMG_FMODEL_NF, umg_fmodel_feature_names, &o, &m, &mt, msg, sizeof(msg)) != UMG_OK) {
        fprintf(stderr, "bench_fraud_model: train: %s\n", msg);
        return 1;
    }
    size_t trees, nodes;
    umg_fmodel_size(m, &trees, &nodes);
    printf("{\"bench\": \"fraud_model\", \"what\": \"train\", \"rows\": %zu, \"rounds\": %d, \"max_depth\": %d, "
           "\"seconds\": %.3f, \"trees\": %zu, \"nodes\": %zu, \"holdout_auc\": %.4f}\n",
           n, o.rounds, o.max_depth, (double)(umg_mono_ns() - t0) / 1e9, trees, nodes, mt.auc);

    /* The four kinds alternate within each run, so that a change in the
     * machine's load falls on all of them alike. */
    double sink = 0, med[4];
    double *ns = malloc(4 * (size_t)runs * sizeof(double));
    for (int w = 0; w < 4; w++) {
        run(m, pool, w, TOTAL / 400, &sink); /* warm up */
    }
    for (int r = 0; r < runs; r++) {
        for (int w = 0; w < 4; w++) {
            ns[w * runs + r] = run(m, pool, w, w >= XGB_SINGLE ? TOTAL / 20 : TOTAL, &sink);
        }
    }
    for (int w = 0; w < 4; w++) {
        double *v = ns + w * runs;
        bench_sort_doubles(v, (size_t)runs);
        med[w] = v[runs / 2];
        printf("{\"bench\": \"fraud_model\", \"what\": \"%s\", \"rows_per_run\": %d, \"runs\": %d, "
               "\"ns_per_row\": %.1f, \"min\": %.1f, \"max\": %.1f, \"rows_per_s\": %.0f}\n",
               what_name[w], w >= XGB_SINGLE ? TOTAL / 20 : TOTAL, runs, med[w], v[0], v[runs - 1], 1e9 / med[w]);
    }
    printf("{\"bench\": \"fraud_model\", \"what\": \"ratio\", \"xgb_single_over_c_single\": %.1f, "
           "\"xgb_batch256_over_c_batch256\": %.1f, \"c_single_share_of_10us\": %.3f, \"sink\": %.3f}\n",
           med[XGB_SINGLE] / med[C_SINGLE], med[XGB_BATCH] / med[C_BATCH], med[C_SINGLE] / 10000.0, sink);
    umg_fmodel_free(m);
    free(ns);
    free(X);
    free(y);
    free(pool);
    free(ypool);
    return 0;
}
