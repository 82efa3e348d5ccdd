/*
 * test_fraud_model.c - the fraud model (src/fraud/model.c): the midrank AUC
 * against known cases and a brute-force pairwise count; training on
 * synthetic installs (fraud_synth.h) with AUC > 0.95 on a random and on a
 * held-out-day split; the C evaluator against XGBoost's own prediction
 * (with missing values), both its complete-tree and its walking form and a
 * model too deep for the first; determinism; save -> load -> identical scores,
 * versions v1, v2 and after an orphan; refusal of a model whose features
 * differ; and every bad input named.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "umg_core.h"
#include "fraud_synth.h"
/* The module itself, to reach its two evaluators (score_dense, score_walk). */
/* The tests give umg_fmodel_latest buffers too small on purpose (UMG_ERANGE); GCC sees that at -O3. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif
#include "../../src/fraud/model.c"

#define NROWS 3000
#define NF UMG_FMODEL_NF

static float X[NROWS * NF];
static uint8_t Y[NROWS], DAY[NROWS];
static umg_fmodel_t *model;
static umg_fmodel_metrics_t metrics;
static char tmpdir[64];

static int setup(void **state)
{
    (void)state;
    char msg[256] = "";
    fraud_synth(42, NROWS, X, Y, DAY);
    umg_fmodel_train_opts_t o;
    umg_fmodel_train_opts_init(&o);
    o.seed = 7;
    int rc = umg_fmodel_train(X, Y, NROWS, NF, umg_fmodel_feature_names, &o, &model, &metrics, msg, sizeof(msg));
    if (rc != UMG_OK) {
        fprintf(stderr, "train: %s\n", msg);
        return -1;
    }
    strcpy(tmpdir, "/tmp/umg-fmodel-XXXXXX");
    return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    umg_fmodel_free(model);
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    char p[512];
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.') {
            snprintf(p, sizeof(p), "%s/%s", tmpdir, e->d_name);
            unlink(p);
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    rmdir(tmpdir);
    return 0;
}

/* ------------------------------------------------------------------- AUC */

static double auc_brute(const double *s, const uint8_t *y, size_t n)
{
    double wins = 0, pairs = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            if (y[i] && !y[j]) {
                pairs++;
                wins += s[i] > s[j] ? 1 : s[i] == s[j] ? 0.5 : 0;
            }
        }
    }
    return wins / pairs;
}

static void test_auc_known(void **state)
{
    (void)state;
    const double a[] = {0.1, 0.4, 0.35, 0.8};
    const uint8_t ya[] = {0, 0, 1, 1};
    assert_true(umg_fmodel_auc(a, ya, 4) == 0.75);
    const double perfect[] = {0.1, 0.2, 0.8, 0.9};
    const uint8_t yp[] = {0, 0, 1, 1};
    assert_true(umg_fmodel_auc(perfect, yp, 4) == 1.0);
    const uint8_t yr[] = {1, 1, 0, 0};
    assert_true(umg_fmodel_auc(perfect, yr, 4) == 0.0);
    /* Ties: every pair tied counts one half. */
    const double tied[] = {0.5, 0.5, 0.5, 0.5, 0.5};
    const uint8_t yt[] = {1, 0, 1, 0, 0};
    assert_true(umg_fmodel_auc(tied, yt, 5) == 0.5);
    /* Positives {0.5, 0.9} against negatives {0.5, 0.5}: 0.5 + 0.5 + 1 + 1 of 4. */
    const double t2[] = {0.5, 0.5, 0.5, 0.9};
    const uint8_t y2[] = {0, 1, 0, 1};
    assert_true(umg_fmodel_auc(t2, y2, 4) == 0.75);
    /* One class, no rows, a NaN score: undefined. */
    const uint8_t ones[] = {1, 1, 1, 1};
    assert_true(isnan(umg_fmodel_auc(a, ones, 4)));
    assert_true(isnan(umg_fmodel_auc(a, ya, 0)));
    const double withnan[] = {0.1, NAN, 0.3, 0.4};
    assert_true(isnan(umg_fmodel_auc(withnan, ya, 4)));
}

static void test_auc_brute_force(void **state)
{
    (void)state;
    enum { N = 700 };
    static double s[N];
    static uint8_t y[N];
    fraud_synth_rng_t r = {99};
    for (int round = 0; round < 5; round++) {
        /* Few distinct scores (many ties) in some rounds, continuous in others. */
        double q = round < 3 ? 10.0 * (round + 1) : 1e9;
        for (size_t i = 0; i < N; i++) {
            y[i] = fraud_synth_u(&r) < 0.2 + 0.1 * round;
            s[i] = floor((fraud_synth_u(&r) + 0.3 * y[i]) * q) / q;
        }
        double got = umg_fmodel_auc(s, y, N), want = auc_brute(s, y, N);
        assert_true(fabs(got - want) < 1e-12);
    }
}

/* -------------------------------------------------------------- training */

static void test_train_metrics(void **state)
{
    (void)state;
    const umg_fmodel_metrics_t *mt = umg_fmodel_metrics(model);
    assert_true(mt->auc > 0.95);
    assert_true(metrics.auc == mt->auc);
    assert_int_equal(mt->n_train + mt->n_holdout, NROWS);
    assert_true(mt->n_holdout >= 745 && mt->n_holdout <= 755); /* a quarter of each class, rounded */
    uint64_t pos = 0;
    for (size_t i = 0; i < NROWS; i++) {
        pos += Y[i];
    }
    assert_int_equal(mt->pos_train + mt->pos_holdout, pos);
    assert_int_equal(mt->tp + mt->fp + mt->fn + mt->tn, mt->n_holdout);
    assert_int_equal(mt->tp + mt->fn, mt->pos_holdout);
    assert_true(mt->precision > 0.5 && mt->precision <= 1 && mt->recall > 0.5 && mt->recall <= 1);
    assert_true(fabs(mt->f1 - 2 * mt->precision * mt->recall / (mt->precision + mt->recall)) < 1e-12);
    assert_true(mt->threshold == 0.5 && mt->target_precision == 0.98);
    assert_true(!isnan(mt->threshold_at_target) && mt->recall_at_target > 0.3);
    assert_true(mt->rounds == 100 && mt->max_depth == 6 && mt->eta == 0.1 && mt->scale_pos_weight > 5);
    assert_true(mt->has_gain);
    assert_true(mt->gain[0] > 0); /* CTIT is split on */
    size_t trees, nodes;
    umg_fmodel_size(model, &trees, &nodes);
    assert_int_equal(trees, 100);
    assert_true(nodes > 100 && nodes < 100 * 127 + 1);
    assert_int_equal(umg_fmodel_nf(model), NF);
    assert_int_equal(umg_fmodel_version(model), 0);
}

static void test_holdout_day(void **state)
{
    (void)state;
    /* The "held-out day": train on days 0-5, measure on day 6. */
    static uint8_t hold[NROWS];
    size_t nh = 0;
    for (size_t i = 0; i < NROWS; i++) {
        hold[i] = DAY[i] == 6;
        nh += hold[i];
    }
    umg_fmodel_train_opts_t o = {0};
    o.holdout = hold;
    o.rounds = 40;
    umg_fmodel_t *m = NULL;
    umg_fmodel_metrics_t mt;
    char msg[256];
    assert_int_equal(umg_fmodel_train(X, Y, NROWS, NF, umg_fmodel_feature_names, &o, &m, &mt, msg, sizeof(msg)),
                     UMG_OK);
    assert_int_equal(mt.n_holdout, nh);
    assert_true(mt.auc > 0.95);
    umg_fmodel_free(m);
}

/* Two trainings with the same seed and thread count give the same scores. */
static void train_twice(int nthread, int rounds)
{
    umg_fmodel_train_opts_t o = {0};
    o.seed = 3;
    o.rounds = rounds;
    o.nthread = nthread;
    umg_fmodel_t *a = NULL, *b = NULL;
    umg_fmodel_metrics_t ma, mb;
    char msg[256];
    assert_int_equal(umg_fmodel_train(X, Y, 1500, NF, umg_fmodel_feature_names, &o, &a, &ma, msg, sizeof(msg)), UMG_OK);
    assert_int_equal(umg_fmodel_train(X, Y, 1500, NF, umg_fmodel_feature_names, &o, &b, &mb, msg, sizeof(msg)), UMG_OK);
    assert_true(ma.auc == mb.auc && ma.n_holdout == mb.n_holdout && ma.tp == mb.tp);
    for (size_t i = 0; i < NROWS; i++) {
        double sa, sb;
        assert_int_equal(umg_fmodel_score(a, X + i * NF, NF, &sa), UMG_OK);
        assert_int_equal(umg_fmodel_score(b, X + i * NF, NF, &sb), UMG_OK);
        assert_true(sa == sb);
    }
    umg_fmodel_free(a);
    umg_fmodel_free(b);
}

static void test_deterministic(void **state)
{
    (void)state;
    train_twice(1, 20);
    /* Two threads too, briefly: OpenMP's waits are slow on a busy machine. */
    train_twice(2, 3);
}

/* The C evaluator against XGBoost, on the data and on rows with holes. */
static void test_evaluator_matches_xgboost(void **state)
{
    (void)state;
    static float Z[NROWS * NF];
    static double mine[NROWS], xgb[NROWS];
    memcpy(Z, X, sizeof(Z));
    fraud_synth_rng_t r = {5};
    for (size_t i = NROWS / 2; i < NROWS; i++) {
        for (size_t f = 0; f < NF; f++) {
            double u = fraud_synth_u(&r);
            if (u < 0.2) {
                Z[i * NF + f] = NAN;
            } else if (u < 0.25) {
                Z[i * NF + f] = (float)fraud_synth_normal(&r, 0, 1e6);
            }
        }
    }
    assert_int_equal(umg_fmodel_score_batch(model, Z, NROWS, NF, mine), UMG_OK);
    assert_int_equal(umg_fmodel_predict_xgb(model, Z, NROWS, NF, xgb), UMG_OK);
    double worst = 0;
    for (size_t i = 0; i < NROWS; i++) {
        worst = fmax(worst, fabs(mine[i] - xgb[i]));
        double one;
        assert_int_equal(umg_fmodel_score(model, Z + i * NF, NF, &one), UMG_OK);
        assert_true(one == mine[i]);
        assert_true(mine[i] >= 0 && mine[i] <= 1);
    }
    print_message("evaluator vs XGBoost: max |diff| %.3g over %d rows\n", worst, NROWS);
    assert_true(worst < 1e-6);
    /* Both forms of the evaluator: the complete trees (used for this model) and the walk. */
    assert_non_null(model->dnodes);
    for (size_t i = 0; i < NROWS; i++) {
        assert_true(score_dense(model, Z + i * NF) == mine[i]);
        assert_true(score_walk(model, Z + i * NF) == mine[i]);
    }
    /* Row by row through XGBoost too (the path the benchmark times). */
    for (size_t i = 0; i < 50; i++) {
        double one = -1;
        assert_int_equal(umg_fmodel_predict_xgb(model, Z + i * NF, 1, NF, &one), UMG_OK);
        assert_true(fabs(one - mine[i]) < 1e-6);
    }
    double s;
    assert_int_equal(umg_fmodel_score(model, X, NF - 1, &s), UMG_EINVAL);
    assert_int_equal(umg_fmodel_score_batch(model, X, 2, NF + 1, mine), UMG_EINVAL);
    assert_int_equal(umg_fmodel_predict_xgb(model, X, 1, 3, xgb), UMG_EINVAL);
}

/* The probe check run at train and load refuses an evaluator that reads the
 * trees differently from XGBoost: a shifted base score, missing values sent
 * the other way, a `<` read as `<=`. */
static void test_evaluator_check(void **state)
{
    (void)state;
    char msg[256];
    assert_int_equal(evaluator_check(model, msg, sizeof(msg)), UMG_OK);
    float base = model->base_margin;
    model->base_margin += 0.01f;
    assert_int_equal(evaluator_check(model, msg, sizeof(msg)), UMG_ECORRUPT);
    assert_non_null(strstr(msg, "not read as XGBoost reads them"));
    model->base_margin = base;
    /* The walk alone, with each change in turn. */
    dnode_t *dn = model->dnodes;
    model->dnodes = NULL;
    assert_int_equal(evaluator_check(model, msg, sizeof(msg)), UMG_OK);
    for (size_t i = 0; i < model->n_nodes; i++) {
        model->nodes[i].dleft ^= !model->nodes[i].leaf;
    }
    assert_int_equal(evaluator_check(model, msg, sizeof(msg)), UMG_ECORRUPT);
    for (size_t i = 0; i < model->n_nodes; i++) {
        model->nodes[i].dleft ^= !model->nodes[i].leaf;
    }
    /* x <= thr goes left instead of x < thr: the same as a threshold one float up. */
    for (size_t i = 0; i < model->n_nodes; i++) {
        if (!model->nodes[i].leaf) {
            model->nodes[i].value = nextafterf(model->nodes[i].value, INFINITY);
        }
    }
    assert_int_equal(evaluator_check(model, msg, sizeof(msg)), UMG_ECORRUPT);
    for (size_t i = 0; i < model->n_nodes; i++) {
        if (!model->nodes[i].leaf) {
            model->nodes[i].value = nextafterf(model->nodes[i].value, -INFINITY);
        }
    }
    model->dnodes = dn;
    assert_int_equal(evaluator_check(model, msg, sizeof(msg)), UMG_OK);
}

/* Several threads scoring with one handle get what one thread gets. */
static double want_scores[NROWS];

static void *score_all(void *arg)
{
    long bad = 0;
    for (int rep = 0; rep < 5; rep++) {
        for (size_t i = 0; i < NROWS; i++) {
            double s = -1;
            bad += umg_fmodel_score(model, X + i * NF, NF, &s) != UMG_OK || s != want_scores[i];
        }
    }
    *(long *)arg = bad;
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    assert_int_equal(umg_fmodel_score_batch(model, X, NROWS, NF, want_scores), UMG_OK);
    pthread_t th[4];
    long bad[4];
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, score_all, &bad[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(bad[i], 0);
    }
}

/* Trees deeper than DENSE_MAX_DEPTH are scored by the walk alone. */
static void test_deep_model(void **state)
{
    (void)state;
    umg_fmodel_train_opts_t o = {0};
    o.rounds = 15;
    o.max_depth = 14;
    o.scale_pos_weight = 1;
    umg_fmodel_t *m = NULL;
    char msg[256];
    assert_int_equal(umg_fmodel_train(X, Y, NROWS, NF, umg_fmodel_feature_names, &o, &m, NULL, msg, sizeof(msg)),
                     UMG_OK);
    assert_true(m->depth > DENSE_MAX_DEPTH);
    assert_null(m->dnodes);
    static double mine[NROWS], xgb[NROWS];
    assert_int_equal(umg_fmodel_score_batch(m, X, NROWS, NF, mine), UMG_OK);
    assert_int_equal(umg_fmodel_predict_xgb(m, X, NROWS, NF, xgb), UMG_OK);
    for (size_t i = 0; i < NROWS; i++) {
        assert_true(fabs(mine[i] - xgb[i]) < 1e-6);
    }
    umg_fmodel_free(m);
}

/* ------------------------------------------------------------ persistence */

static void test_save_load_versions(void **state)
{
    (void)state;
    char p1[512], p2[512], latest[512], msg[256];
    assert_int_equal(umg_fmodel_latest(tmpdir, latest, sizeof(latest)), UMG_ENOENT);
    assert_int_equal(umg_fmodel_latest("/nonexistent/umg", latest, sizeof(latest)), UMG_ENOENT);
    assert_int_equal(umg_fmodel_save(model, tmpdir, p1, sizeof(p1)), UMG_OK);
    assert_int_equal(umg_fmodel_version(model), 1);
    assert_int_equal(umg_fmodel_save(model, tmpdir, p2, sizeof(p2)), UMG_OK);
    assert_int_equal(umg_fmodel_version(model), 2);
    assert_non_null(strstr(p1, "/fraud-model-v1.json"));
    assert_non_null(strstr(p2, "/fraud-model-v2.json"));
    assert_int_equal(umg_fmodel_latest(tmpdir, latest, sizeof(latest)), UMG_OK);
    assert_string_equal(latest, p2);
    char small[8];
    assert_int_equal(umg_fmodel_latest(tmpdir, small, sizeof(small)), UMG_ERANGE);

    umg_fmodel_t *m = NULL;
    assert_int_equal(umg_fmodel_load(p1, NF, umg_fmodel_feature_names, &m, msg, sizeof(msg)), UMG_OK);
    assert_int_equal(umg_fmodel_version(m), 1);
    for (size_t i = 0; i < NROWS; i++) {
        double a, b;
        umg_fmodel_score(model, X + i * NF, NF, &a);
        umg_fmodel_score(m, X + i * NF, NF, &b);
        assert_true(a == b);
    }
    const umg_fmodel_metrics_t *ma = umg_fmodel_metrics(model), *mb = umg_fmodel_metrics(m);
    assert_true(ma->auc == mb->auc && ma->precision == mb->precision && ma->recall == mb->recall);
    assert_true(ma->threshold_at_target == mb->threshold_at_target && ma->n_train == mb->n_train);
    assert_true(ma->tp == mb->tp && ma->rounds == mb->rounds && ma->eta == mb->eta);
    assert_true(mb->has_gain && fabs(ma->gain[0] - mb->gain[0]) <= 1e-6 * ma->gain[0]);
    /* XGBoost's prediction from the loaded booster agrees too. */
    static double xa[NROWS], xb[NROWS];
    assert_int_equal(umg_fmodel_predict_xgb(model, X, NROWS, NF, xa), UMG_OK);
    assert_int_equal(umg_fmodel_predict_xgb(m, X, NROWS, NF, xb), UMG_OK);
    assert_memory_equal(xa, xb, sizeof(xa));
    umg_fmodel_free(m);

    /* An orphan metadata file (a crash between the two writes) is skipped,
     * and other files are ignored. */
    char orphan[600];
    snprintf(orphan, sizeof(orphan), "%s/fraud-model-v3.meta.json", tmpdir);
    FILE *f = fopen(orphan, "w");
    fputs("{}", f);
    fclose(f);
    snprintf(orphan, sizeof(orphan), "%s/fraud-model-v99.json.bak", tmpdir);
    f = fopen(orphan, "w");
    fclose(f);
    assert_int_equal(umg_fmodel_latest(tmpdir, latest, sizeof(latest)), UMG_OK);
    assert_string_equal(latest, p2);
    assert_int_equal(umg_fmodel_save(model, tmpdir, p1, sizeof(p1)), UMG_OK);
    assert_non_null(strstr(p1, "/fraud-model-v4.json"));
    assert_int_equal(umg_fmodel_latest(tmpdir, latest, sizeof(latest)), UMG_OK);
    assert_string_equal(latest, p1);
    assert_int_equal(umg_fmodel_save(model, tmpdir, small, sizeof(small)), UMG_ERANGE);
}

static void test_load_refuses(void **state)
{
    (void)state;
    char path[512], msg[256];
    umg_fmodel_t *m = NULL;
    assert_int_equal(umg_fmodel_save(model, tmpdir, path, sizeof(path)), UMG_OK);
    /* Fewer features than the model's. */
    assert_int_equal(umg_fmodel_load(path, NF - 1, umg_fmodel_feature_names, &m, msg, sizeof(msg)), UMG_EINVAL);
    assert_non_null(strstr(msg, "20 features"));
    assert_null(m);
    /* Same count, two names swapped. */
    const char *names[NF];
    memcpy(names, umg_fmodel_feature_names, sizeof(names));
    names[4] = umg_fmodel_feature_names[5];
    names[5] = umg_fmodel_feature_names[4];
    assert_int_equal(umg_fmodel_load(path, NF, names, &m, msg, sizeof(msg)), UMG_EINVAL);
    assert_non_null(strstr(msg, "clicks_ip_1m"));
    assert_non_null(strstr(msg, "feature 4"));
    /* Not a model file name, a missing file. */
    assert_int_equal(umg_fmodel_load("/tmp/model.json", NF, umg_fmodel_feature_names, &m, msg, sizeof(msg)),
                     UMG_EINVAL);
    char missing[600];
    snprintf(missing, sizeof(missing), "%s/fraud-model-v77.json", tmpdir);
    assert_int_equal(umg_fmodel_load(missing, NF, umg_fmodel_feature_names, &m, msg, sizeof(msg)), UMG_ENOENT);
    /* A model file whose own feature names differ from its metadata's. */
    umg_buf_t b = {0};
    assert_int_equal(read_file(path, &b), UMG_OK);
    char *at = memmem(b.ptr, b.len, "\"installs_fp_24h\"", 17);
    assert_non_null(at);
    at[1] = 'X';
    char edited[600];
    snprintf(edited, sizeof(edited), "%s/fraud-model-v500.json", tmpdir);
    assert_int_equal(umg_write_file_atomic(edited, b.ptr, b.len), UMG_OK);
    umg_buf_free(&b);
    char meta5[600], metae[600];
    snprintf(meta5, sizeof(meta5), "%.*s.meta.json", (int)(strlen(path) - 5), path);
    snprintf(metae, sizeof(metae), "%s/fraud-model-v500.meta.json", tmpdir);
    assert_int_equal(read_file(meta5, &b), UMG_OK);
    at = memmem(b.ptr, b.len, "\"version\": ", 11);
    assert_non_null(at);
    umg_buf_t e = {0}; /* the same metadata saying version 500 */
    size_t head = (size_t)(at + 11 - b.ptr), digits = strspn(at + 11, "0123456789");
    assert_int_equal(umg_buf_append(&e, b.ptr, head), UMG_OK);
    assert_int_equal(umg_buf_append(&e, "500", 3), UMG_OK);
    assert_int_equal(umg_buf_append(&e, at + 11 + digits, b.len - head - digits), UMG_OK);
    umg_buf_free(&b);
    b = e;
    assert_int_equal(umg_write_file_atomic(metae, b.ptr, b.len), UMG_OK);
    umg_buf_free(&b);
    assert_int_equal(umg_fmodel_load(edited, NF, umg_fmodel_feature_names, &m, msg, sizeof(msg)), UMG_ECORRUPT);
    assert_non_null(strstr(msg, "differ from its metadata"));
    unlink(edited);
    unlink(metae);

    /* A model whose metadata is garbage, or missing. */
    char meta[600];
    snprintf(meta, sizeof(meta), "%.*s.meta.json", (int)(strlen(path) - 5), path);
    FILE *f = fopen(meta, "w");
    fputs("{\"format\": \"something else\"}", f);
    fclose(f);
    assert_int_equal(umg_fmodel_load(path, NF, umg_fmodel_feature_names, &m, msg, sizeof(msg)), UMG_ECORRUPT);
    unlink(meta);
    assert_int_equal(umg_fmodel_load(path, NF, umg_fmodel_feature_names, &m, msg, sizeof(msg)), UMG_ENOENT);
    assert_non_null(strstr(msg, "metadata"));
    assert_null(m);
}

/* -------------------------------------------------------------- bad input */

static void expect_bad(const float *x, const uint8_t *y, size_t n, size_t nf, const char *const *names,
                       const umg_fmodel_train_opts_t *o, const char *words)
{
    umg_fmodel_t *m = NULL;
    umg_fmodel_metrics_t mt;
    char msg[256] = "";
    int rc = umg_fmodel_train(x, y, n, nf, names, o, &m, &mt, msg, sizeof(msg));
    if (rc != UMG_EINVAL || strstr(msg, words) == NULL) {
        fprintf(stderr, "expected \"%s\", got %d \"%s\"\n", words, rc, msg);
    }
    assert_int_equal(rc, UMG_EINVAL);
    assert_non_null(strstr(msg, words));
    assert_null(m);
}

static void test_bad_input(void **state)
{
    (void)state;
    static float Xb[200 * NF];
    static uint8_t yb[200], hold[200];
    memcpy(Xb, X, sizeof(Xb));
    memcpy(yb, Y, sizeof(yb));
    const char *const *nm = umg_fmodel_feature_names;
    umg_fmodel_train_opts_t o = {0};
    o.rounds = 2;

    expect_bad(Xb, yb, 10, NF, nm, &o, "too few");
    expect_bad(Xb, yb, 200, 0, nm, &o, "0 features");
    expect_bad(Xb, yb, 200, 65, nm, &o, "65 features");
    expect_bad(NULL, yb, 200, NF, nm, &o, "no rows");
    yb[17] = 2;
    expect_bad(Xb, yb, 200, NF, nm, &o, "label of row 17 is 2");
    memset(yb, 0, sizeof(yb));
    expect_bad(Xb, yb, 200, NF, nm, &o, "only honest");
    memcpy(yb, Y, sizeof(yb));
    Xb[33 * NF + 3] = INFINITY;
    expect_bad(Xb, yb, 200, NF, nm, &o, "feature 3 (clicks_device_24h) of row 33 is infinite");
    Xb[33 * NF + 3] = NAN; /* missing is fine */

    const char *dup[NF];
    memcpy(dup, nm, sizeof(dup));
    dup[7] = dup[2];
    expect_bad(Xb, yb, 200, NF, dup, &o, "appears twice");
    dup[7] = "has space";
    expect_bad(Xb, yb, 200, NF, dup, &o, "feature name 7");
    expect_bad(Xb, yb, 200, NF, NULL, &o, "no feature names");

    /* Holdout masks: none held out, no fraud held out. */
    memset(hold, 0, sizeof(hold));
    o.holdout = hold;
    expect_bad(Xb, yb, 200, NF, nm, &o, "held-out split has 0 rows");
    for (size_t i = 0; i < 200; i++) {
        hold[i] = i < 100 && !yb[i];
    }
    expect_bad(Xb, yb, 200, NF, nm, &o, "held-out split has only honest rows");
    for (size_t i = 0; i < 200; i++) {
        hold[i] = i >= 5;
    }
    expect_bad(Xb, yb, 200, NF, nm, &o, "training split has 5 rows");
    o.holdout = NULL;

    umg_fmodel_train_opts_t b = o;
    b.eta = 2;
    expect_bad(Xb, yb, 200, NF, nm, &b, "eta");
    b = o;
    b.holdout_frac = 0.95;
    expect_bad(Xb, yb, 200, NF, nm, &b, "holdout_frac");
    b = o;
    b.max_depth = 40;
    expect_bad(Xb, yb, 200, NF, nm, &b, "max_depth");
    b = o;
    b.threshold = 1.5;
    expect_bad(Xb, yb, 200, NF, nm, &b, "threshold");

    /* The same data with a working option set trains (the NaN above included). */
    umg_fmodel_t *m = NULL;
    char msg[256];
    assert_int_equal(umg_fmodel_train(Xb, yb, 200, NF, nm, &o, &m, NULL, msg, sizeof(msg)), UMG_OK);
    umg_fmodel_free(m);
    assert_int_equal(umg_fmodel_train(Xb, yb, 200, NF, nm, &o, NULL, NULL, msg, sizeof(msg)), UMG_EINVAL);
}

/* Out of memory at every allocation of train, save and load: UMG_ENOMEM (or
 * success once the failure comes after the last one), nothing leaked (ASan). */
static void test_enomem(void **state)
{
    (void)state;
    umg_fmodel_train_opts_t o = {0};
    o.rounds = 3;
    char msg[256], path[512];
    int done = 0;
    for (long k = 1; k < 1000 && !done; k++) {
        umg_fmodel_t *m = NULL;
        umg_alloc_fail_after(k);
        int rc = umg_fmodel_train(X, Y, 300, NF, umg_fmodel_feature_names, &o, &m, NULL, msg, sizeof(msg));
        umg_alloc_fail_after(0);
        assert_true(rc == UMG_OK || rc == UMG_ENOMEM);
        done = rc == UMG_OK;
        umg_fmodel_free(m);
    }
    assert_true(done);
    umg_fmodel_t *m = NULL;
    assert_int_equal(umg_fmodel_train(X, Y, 300, NF, umg_fmodel_feature_names, &o, &m, NULL, msg, sizeof(msg)), UMG_OK);
    done = 0;
    for (long k = 1; k < 1000 && !done; k++) {
        umg_alloc_fail_after(k);
        int rc = umg_fmodel_save(m, tmpdir, path, sizeof(path));
        umg_alloc_fail_after(0);
        assert_true(rc == UMG_OK || rc == UMG_ENOMEM);
        done = rc == UMG_OK;
    }
    assert_true(done);
    umg_fmodel_free(m);
    done = 0;
    for (long k = 1; k < 1000 && !done; k++) {
        m = NULL;
        umg_alloc_fail_after(k);
        int rc = umg_fmodel_load(path, NF, umg_fmodel_feature_names, &m, msg, sizeof(msg));
        umg_alloc_fail_after(0);
        assert_true(rc == UMG_OK || rc == UMG_ENOMEM);
        done = rc == UMG_OK;
        umg_fmodel_free(m);
    }
    assert_true(done);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auc_known),       cmocka_unit_test(test_auc_brute_force),
        cmocka_unit_test(test_train_metrics),   cmocka_unit_test(test_holdout_day),
        cmocka_unit_test(test_deterministic),   cmocka_unit_test(test_evaluator_matches_xgboost),
        cmocka_unit_test(test_deep_model),      cmocka_unit_test(test_threads),
        cmocka_unit_test(test_evaluator_check), cmocka_unit_test(test_save_load_versions),
        cmocka_unit_test(test_load_refuses),    cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_enomem),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
