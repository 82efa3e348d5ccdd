/*
 * train.c - `unmogrowp fraud train` (docs/fraud.md "Model"): the features the
 * pipeline stored with each install, joined with a labels file, train the
 * model (umg_fraud_model.h) on every day but a held-out one, report AUC,
 * precision and recall on that day, and save a new version under
 * DATA/models/APP_ID/. And the daemon's scorer: each app's newest model,
 * loaded when it appears.
 */
#include "umg_fraud_train.h"

#include "umg_apps.h"
#include "umg_cost.h"
#include "umg_fraud.h"
#include "umg_fraud_model.h"
#include "umg_meta.h"
#include "umg_store.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

_Static_assert(UMG_FRAUD_NF == UMG_FMODEL_NF, "the pipeline computes the model's features");
_Static_assert(UMG_FRAUD_NF == UMG_STORE_FEATURES, "the store keeps the model's features");

#define DAY_US INT64_C(86400000000)

typedef struct row_s {
    umg_uuid_t event_id;
    int32_t day; /* UTC day of the install */
    float x[UMG_FRAUD_NF];
} row_t;

typedef struct collect_s {
    row_t *rows;
    size_t n, cap;
    int oom;
} collect_t;

static int on_decision(void *ctx, const umg_store_decision_t *d)
{
    collect_t *c = ctx;
    if (!d->has_features) {
        return 0;
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 4096;
        row_t *r = umg_realloc(c->rows, cap * sizeof(*r));
        if (r == NULL) {
            c->oom = 1;
            return 1;
        }
        c->rows = r;
        c->cap = cap;
    }
    row_t *r = &c->rows[c->n++];
    r->event_id = d->event_id;
    r->day = (int32_t)(d->d.ts_us / DAY_US - (d->d.ts_us % DAY_US < 0));
    memcpy(r->x, d->features, sizeof(r->x));
    return 0;
}

static int row_cmp(const void *a, const void *b)
{
    return memcmp(&((const row_t *)a)->event_id, &((const row_t *)b)->event_id, sizeof(umg_uuid_t));
}

typedef struct dayrow_s {
    int32_t day;
    uint8_t y;
} dayrow_t;

static int dayrow_cmp(const void *a, const void *b)
{
    int32_t x = ((const dayrow_t *)a)->day, z = ((const dayrow_t *)b)->day;
    return (x < z) - (x > z); /* the latest first */
}

/*
 * The held-out day when none is given: the latest labelled day that can be held out (as many rows as a split
 * needs, both classes), else the latest labelled one (and the training says why it cannot be). The latest day
 * alone failed when it had a few labels, say training just after midnight (found in review).
 */
static int32_t default_holdout_day(const collect_t *col, const uint8_t *y)
{
    int32_t latest = INT32_MIN;
    dayrow_t *d = umg_malloc((col->n + 1) * sizeof(*d));
    size_t n = 0;
    for (size_t i = 0; i < col->n; i++) {
        if (y[i] != 2) {
            latest = UMG_MAX(latest, col->rows[i].day);
            if (d != NULL) {
                d[n++] = (dayrow_t){col->rows[i].day, y[i]};
            }
        }
    }
    if (d == NULL) {
        return latest;
    }
    qsort(d, n, sizeof(*d), dayrow_cmp);
    int32_t pick = latest;
    for (size_t i = 0, e; i < n; i = e) {
        size_t pos = 0;
        for (e = i; e < n && d[e].day == d[i].day; e++) {
            pos += d[e].y;
        }
        if (e - i >= UMG_FMODEL_MIN_SPLIT_ROWS && pos > 0 && pos < e - i) {
            pick = d[i].day;
            break;
        }
    }
    umg_free(d);
    return pick;
}

static int col_of(const umg_slice_t *f, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (umg_slice_eq(f[i], name)) {
            return (int)i;
        }
    }
    return -1;
}

/*
 * Reads the labels (CSV with a header naming at least `id` and `label`; rows whose `kind` column, when there
 * is one, is not `install` are skipped) onto the collected rows: y[i] = 0/1, 2 = not labelled.
 */
static int read_labels(const char *path, const collect_t *c, uint8_t *y, size_t *labelled, char *msg, size_t cap)
{
    umg_buf_t text = {0};
    if (umg_read_file(path, &text) != UMG_OK) {
        umg_buf_free(&text);
        snprintf(msg, cap, "cannot read %s", path);
        return UMG_EIO;
    }
    umg_csv_t r;
    umg_csv_init(&r, text.ptr ? text.ptr : "", text.len);
    umg_slice_t f[UMG_CSV_MAX_FIELDS];
    size_t n, line;
    const char *why;
    int rc, cid = -1, clabel = -1, ckind = -1, bad = 0;
    *labelled = 0;
    while ((rc = umg_csv_next(&r, f, UMG_CSV_MAX_FIELDS, &n, &line, &why)) != UMG_EAGAIN) {
        if (rc == UMG_ENOMEM) {
            break;
        }
        if (rc != UMG_OK) {
            snprintf(msg, cap, "%s:%zu: %s", path, line, why);
            rc = UMG_EINVAL;
            break;
        }
        if (cid < 0) {
            cid = col_of(f, n, "id");
            clabel = col_of(f, n, "label");
            ckind = col_of(f, n, "kind");
            if (cid < 0 || clabel < 0) {
                snprintf(msg, cap, "%s:%zu: the header must name the columns id and label", path, line);
                rc = UMG_EINVAL;
                break;
            }
            continue;
        }
        if ((size_t)cid >= n || (size_t)clabel >= n || (ckind >= 0 && (size_t)ckind >= n)) {
            snprintf(msg, cap, "%s:%zu: too few fields", path, line);
            rc = UMG_EINVAL;
            break;
        }
        if (ckind >= 0 && !umg_slice_eq(f[ckind], "install")) {
            continue;
        }
        row_t key;
        if (umg_uuid_parse(f[cid].ptr, f[cid].len, &key.event_id) != UMG_OK ||
            (!umg_slice_eq(f[clabel], "0") && !umg_slice_eq(f[clabel], "1"))) {
            bad++;
            continue;
        }
        const row_t *hit = bsearch(&key, c->rows, c->n, sizeof(row_t), row_cmp);
        if (hit != NULL) {
            size_t i = (size_t)(hit - c->rows);
            *labelled += y[i] == 2;
            y[i] = f[clabel].ptr[0] == '1';
        }
        rc = UMG_OK;
    }
    umg_csv_free(&r);
    umg_buf_free(&text);
    if (rc == UMG_EAGAIN || rc == UMG_OK) {
        if (bad > 0) {
            fprintf(stderr, "fraud train: %s: %d rows skipped (an id that is no UUID, or a label not 0 or 1)\n", path,
                    bad);
        }
        return UMG_OK;
    }
    if (rc == UMG_ENOMEM) {
        snprintf(msg, cap, "out of memory");
    }
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f, "Usage: unmogrowp fraud train --data DIR --app APP_ID --labels FILE [--holdout-day YYYY-MM-DD]\n"
               "                             [--rounds N] [--max-depth N] [--eta X] [--seed N] [--threshold X]\n\n"
               "Trains the fraud model of an app from the features the pipeline stored with each install and a\n"
               "labels file (CSV with a header: id = the install's event_id, label = 1 fraud / 0 honest; rows\n"
               "whose kind column is not 'install' are skipped; `unmogrowp gen --fraud-labels` writes one).\n"
               "The installs of the held-out UTC day (default: the last labelled day) are kept out of training\n"
               "and measured: AUC, and precision / recall at --threshold (0.5). Saves a new version under\n"
               "DATA/models/APP_ID/ (fraud-model-vN.json and its metadata) and prints the figures as JSON.\n"
               "The daemon scores with the newest version of an app whose model mode is shadow or enforce\n"
               "(docs/fraud.md). Works while the daemon runs.\n");
}

int umg_fraud_train_cli(int argc, char **argv)
{
    static const struct option opts[] = {{"data", required_argument, NULL, 'd'},
                                         {"app", required_argument, NULL, 'a'},
                                         {"labels", required_argument, NULL, 'l'},
                                         {"holdout-day", required_argument, NULL, 'H'},
                                         {"rounds", required_argument, NULL, 'r'},
                                         {"max-depth", required_argument, NULL, 'D'},
                                         {"eta", required_argument, NULL, 'e'},
                                         {"seed", required_argument, NULL, 's'},
                                         {"threshold", required_argument, NULL, 't'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *data = NULL, *app_id = NULL, *labels = NULL, *hday = NULL;
    umg_fmodel_train_opts_t to;
    umg_fmodel_train_opts_init(&to);
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        /* Numbers whole or not at all: "abc", "7x" or an overflow were read as a default or a part, and trained a
         * model all the same (found in review). */
        char *end = NULL;
        errno = 0;
        switch (c) {
        case 'd': data = optarg; break;
        case 'a': app_id = optarg; break;
        case 'l': labels = optarg; break;
        case 'H': hday = optarg; break;
        case 'r': to.rounds = (int)UMG_MIN(strtol(optarg, &end, 10), INT_MAX); break;
        case 'D': to.max_depth = (int)UMG_MIN(strtol(optarg, &end, 10), INT_MAX); break;
        case 'e': to.eta = strtod(optarg, &end); break;
        case 's':
            to.seed = strtoull(optarg, &end, 10);
            errno = optarg[0] == '-' ? ERANGE : errno;
            break;
        case 't': to.threshold = strtod(optarg, &end); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (end != NULL && (end == optarg || *end != '\0' || errno != 0)) {
            fprintf(stderr, "unmogrowp fraud train: '%s' is not a number for --%s\n", optarg,
                    c == 'r'   ? "rounds"
                    : c == 'D' ? "max-depth"
                    : c == 'e' ? "eta"
                    : c == 's' ? "seed"
                               : "threshold");
            return 2;
        }
    }
    int32_t holdout_day = INT32_MIN;
    if (data == NULL || app_id == NULL || labels == NULL) {
        fprintf(stderr, "unmogrowp fraud train: --data, --app and --labels are required\n");
        return 2;
    }
    if (hday != NULL && umg_date_parse(umg_slice(hday, strlen(hday)), &holdout_day) != UMG_OK) {
        fprintf(stderr, "unmogrowp fraud train: --holdout-day takes YYYY-MM-DD, got '%s'\n", hday);
        return 2;
    }
    if (!umg_meta_exists(data, "unmogrowp fraud train")) {
        return 1;
    }
    umg_apps_t *apps = NULL;
    umg_app_t app;
    if (umg_apps_open(data, &apps) != UMG_OK ||
        umg_apps_find_id(apps, umg_slice(app_id, strlen(app_id)), &app) != UMG_OK) {
        fprintf(stderr, "unmogrowp fraud train: no app %s in %s\n", app_id, data);
        umg_apps_close(apps);
        return 1;
    }
    umg_apps_close(apps);
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/attr", data);
    umg_store_config_t sc = {.map_bytes = INT64_C(64) << 30};
    umg_store_t *st = NULL;
    umg_store_txn_t *tx = NULL;
    collect_t col = {0};
    if (umg_store_open(dir, &sc, &st) != UMG_OK || umg_store_begin(st, 0, &tx) != UMG_OK) {
        fprintf(stderr, "unmogrowp fraud train: cannot open the attribution store in %s\n", dir);
        umg_store_close(st);
        return 1;
    }
    int rc = umg_store_decisions_scan(tx, app.id, INT64_MIN, INT64_MAX, NULL, on_decision, &col);
    umg_store_abort(tx);
    umg_store_close(st);
    if (rc != UMG_OK || col.oom) {
        fprintf(stderr, "unmogrowp fraud train: cannot read the installs (%s)\n",
                col.oom ? "out of memory" : umg_strerror(rc));
        umg_free(col.rows);
        return 1;
    }
    qsort(col.rows, col.n, sizeof(row_t), row_cmp);
    uint8_t *y = umg_malloc(col.n + 1);
    char msg[256] = "";
    size_t labelled = 0;
    if (y == NULL) {
        umg_free(col.rows);
        return 1;
    }
    memset(y, 2, col.n + 1);
    rc = read_labels(labels, &col, y, &labelled, msg, sizeof(msg));
    if (rc != UMG_OK) {
        fprintf(stderr, "unmogrowp fraud train: %s\n", msg);
        umg_free(col.rows);
        umg_free(y);
        return 1;
    }
    /* the labelled installs, and the held-out day (the last one unless given) */
    float *X = umg_malloc((labelled + 1) * UMG_FRAUD_NF * sizeof(float));
    uint8_t *yy = umg_malloc(labelled + 1), *hold = umg_malloc(labelled + 1);
    size_t m = 0, nhold = 0;
    if (hday == NULL) {
        holdout_day = default_holdout_day(&col, y);
    }
    for (size_t i = 0; X != NULL && yy != NULL && hold != NULL && i < col.n; i++) {
        if (y[i] == 2) {
            continue;
        }
        memcpy(X + m * UMG_FRAUD_NF, col.rows[i].x, sizeof(col.rows[i].x));
        yy[m] = y[i];
        hold[m] = col.rows[i].day == holdout_day;
        nhold += hold[m];
        m++;
    }
    umg_free(col.rows);
    umg_free(y);
    int ret = 1;
    umg_fmodel_t *model = NULL;
    umg_fmodel_metrics_t mt;
    char day[11] = "", path[4200] = "";
    if (X == NULL || yy == NULL || hold == NULL) {
        fprintf(stderr, "unmogrowp fraud train: out of memory\n");
        goto done;
    }
    fprintf(stderr, "fraud train: %zu installs stored, %zu labelled, %zu on the held-out day\n", col.n, m, nhold);
    to.holdout = hold;
    if (umg_fmodel_train(X, yy, m, UMG_FRAUD_NF, umg_fmodel_feature_names, &to, &model, &mt, msg, sizeof(msg)) !=
        UMG_OK) {
        fprintf(stderr, "unmogrowp fraud train: %s\n", msg);
        goto done;
    }
    snprintf(dir, sizeof(dir), "%s/models/%s", data, app.public_id);
    if (umg_mkdirs(dir, 0755) != UMG_OK || umg_fmodel_save(model, dir, path, sizeof(path)) != UMG_OK) {
        fprintf(stderr, "unmogrowp fraud train: cannot save the model under %s\n", dir);
        goto done;
    }
    if (holdout_day != INT32_MIN) {
        umg_date_format(holdout_day, day);
    }
    printf("{\"app\":\"%s\",\"model\":\"%s\",\"version\":%u,\"installs\":%zu,\"train\":%llu,\"holdout\":%llu,"
           "\"holdout_day\":\"%s\",\"fraud_train\":%llu,\"fraud_holdout\":%llu,\"auc\":%.6f,\"threshold\":%g,"
           "\"precision\":%.6f,\"recall\":%.6f,\"f1\":%.6f,\"target_precision\":%g,\"threshold_at_target\":%s%.17g,"
           "\"recall_at_target\":%.6f}\n",
           app.public_id, path, umg_fmodel_version(model), m, (unsigned long long)mt.n_train,
           (unsigned long long)mt.n_holdout, day, (unsigned long long)mt.pos_train, (unsigned long long)mt.pos_holdout,
           mt.auc, mt.threshold, mt.precision, mt.recall, mt.f1, mt.target_precision, "",
           isnan(mt.threshold_at_target) ? -1.0 : mt.threshold_at_target, mt.recall_at_target);
    ret = 0;
done:
    umg_fmodel_free(model);
    umg_free(X);
    umg_free(yy);
    umg_free(hold);
    return ret;
}

/* ------------------------------------------------------------------ scorer */

#define SCORER_CHECK_US (INT64_C(5) * 1000000)

_Atomic long umg__fraud_scorer_loads;

typedef struct sent_s {
    uint32_t app;
    umg_fmodel_t *model; /* NULL: none (yet) */
    char path[4200];     /* of the model loaded */
    int64_t checked_us;
} sent_t;

/* Every app scored so far, by internal id (open addressing, at most half full): none is ever evicted, so that an
 * organization with more apps than a fixed table holds does not load models again and again on the pipeline
 * thread (found in review: at 65 apps an install took 475 µs). */
struct umg_fraud_scorer_s {
    char *data_dir;
    umg_apps_t *apps;
    sent_t **slot;
    size_t cap, n;
};

int umg_fraud_scorer_new(const char *data_dir, umg_apps_t *apps, umg_fraud_scorer_t **out)
{
    umg_fraud_scorer_t *s = umg_calloc(1, sizeof(*s));
    if (s == NULL || (s->data_dir = umg_strndup(data_dir, strlen(data_dir))) == NULL ||
        (s->slot = umg_calloc(64, sizeof(*s->slot))) == NULL) {
        if (s != NULL) {
            umg_free(s->data_dir);
        }
        umg_free(s);
        return UMG_ENOMEM;
    }
    s->cap = 64;
    s->apps = apps;
    *out = s;
    return UMG_OK;
}

void umg_fraud_scorer_free(umg_fraud_scorer_t *s)
{
    if (s == NULL) {
        return;
    }
    for (size_t i = 0; i < s->cap; i++) {
        if (s->slot[i] != NULL) {
            umg_fmodel_free(s->slot[i]->model);
            umg_free(s->slot[i]);
        }
    }
    umg_free(s->slot);
    umg_free(s->data_dir);
    umg_free(s);
}

static size_t scorer_at(sent_t *const *slot, size_t cap, uint32_t app)
{
    size_t i = (size_t)(app * UINT32_C(2654435761)) & (cap - 1);
    while (slot[i] != NULL && slot[i]->app != app) {
        i = (i + 1) & (cap - 1);
    }
    return i;
}

/* The app's entry, made when it is new (NULL: out of memory). */
static sent_t *scorer_entry(umg_fraud_scorer_t *s, uint32_t app)
{
    size_t i = scorer_at(s->slot, s->cap, app);
    if (s->slot[i] != NULL) {
        return s->slot[i];
    }
    if ((s->n + 1) * 2 > s->cap) {
        sent_t **grown = umg_calloc(s->cap * 2, sizeof(*grown));
        if (grown == NULL) {
            return NULL;
        }
        for (size_t k = 0; k < s->cap; k++) {
            if (s->slot[k] != NULL) {
                grown[scorer_at(grown, s->cap * 2, s->slot[k]->app)] = s->slot[k];
            }
        }
        umg_free(s->slot);
        s->slot = grown;
        s->cap *= 2;
        i = scorer_at(s->slot, s->cap, app);
    }
    sent_t *e = umg_calloc(1, sizeof(*e));
    if (e == NULL) {
        return NULL;
    }
    e->app = app;
    s->slot[i] = e;
    s->n++;
    return e;
}

/* Loads the app's newest model when a newer one appeared (looked for every few seconds). */
static void refresh(umg_fraud_scorer_t *s, sent_t *e)
{
    int64_t now = umg_now_us();
    if (e->checked_us != 0 && now - e->checked_us < SCORER_CHECK_US) {
        return;
    }
    e->checked_us = now;
    umg_app_t app;
    if (umg_apps_find_internal(s->apps, e->app, &app) != UMG_OK) {
        return;
    }
    char dir[4200], path[4200];
    snprintf(dir, sizeof(dir), "%s/models/%s", s->data_dir, app.public_id);
    if (umg_fmodel_latest(dir, path, sizeof(path)) != UMG_OK || strcmp(path, e->path) == 0) {
        return;
    }
    umg_fmodel_t *m;
    char msg[256];
    if (umg_fmodel_load(path, UMG_FRAUD_NF, umg_fmodel_feature_names, &m, msg, sizeof(msg)) != UMG_OK) {
        umg_log(UMG_LOG_WARN, "fraud", "app %s: model %s not loaded: %s", app.public_id, path, msg);
        snprintf(e->path, sizeof(e->path), "%s", path); /* not tried again until a newer one comes */
        return;
    }
    umg_fmodel_free(e->model);
    e->model = m;
    atomic_fetch_add(&umg__fraud_scorer_loads, 1);
    snprintf(e->path, sizeof(e->path), "%s", path);
    umg_log(UMG_LOG_INFO, "fraud", "app %s: scoring with model version %u (%s)", app.public_id, umg_fmodel_version(m),
            path);
}

int umg_fraud_scorer_score(void *ctx, uint32_t app, const float *x, size_t nf, double *score)
{
    umg_fraud_scorer_t *s = ctx;
    sent_t *e = scorer_entry(s, app);
    if (e == NULL) {
        return UMG_ENOMEM;
    }
    refresh(s, e);
    return e->model != NULL ? umg_fmodel_score(e->model, x, nf, score) : UMG_ENOENT;
}
