/*
 * umg_fraud_model.h - the fraud model: an XGBoost binary classifier over the
 * per-install feature vector the pipeline computes, trained from labelled
 * installs, saved as versioned files, and scored on the pipeline's hot path.
 *
 * XGBoost (Debian's libxgboost-dev, C API) is used for training, for saving
 * and loading the model file, and as a reference predictor. Scoring does not
 * call XGBoost: when a model is trained or loaded its trees are copied out of
 * XGBoost's JSON dump into a compact array evaluated in C (a few hundred
 * node visits per row, no allocation, no lock), which agrees with XGBoost's
 * own prediction within 1e-6 (tests/unit/test_fraud_model.c checks it).
 *
 * The module touches no store, socket or pipeline state. Files are written
 * only by umg_fmodel_save and read only by umg_fmodel_load/latest.
 *
 * Missing values: a NaN feature is missing (XGBoost's convention), at
 * training and at scoring; a split sends it the learned default way.
 *
 * Threads: a handle is immutable once returned by train or load. Scoring
 * (umg_fmodel_score, umg_fmodel_score_batch) only reads it, so any number of
 * threads may score with one handle at once. umg_fmodel_predict_xgb goes
 * through the XGBoost booster, whose thread-safety for prediction varies
 * between XGBoost versions; this module does not rely on it: call it from one
 * thread at a time per handle. Freeing while another thread scores is the
 * caller's bug.
 */
#ifndef UMG_FRAUD_MODEL_H
#define UMG_FRAUD_MODEL_H

#include <stddef.h>
#include <stdint.h>

/* The feature vector, in this order; the pipeline computes it per install. */
#define UMG_FMODEL_NF 20
/** The names of the UMG_FMODEL_NF features, index = position in a row. */
extern const char *const umg_fmodel_feature_names[UMG_FMODEL_NF];

/* Most features a model may have (the metrics keep a gain per feature). */
#define UMG_FMODEL_MAX_NF 64
/* Longest feature name, without the NUL; names are [A-Za-z0-9_]. */
#define UMG_FMODEL_NAME_MAX 63

typedef struct umg_fmodel_s umg_fmodel_t;

/*
 * Training options. A zero field means its default, so `{0}` is a valid
 * set of options; umg_fmodel_train_opts_init writes the defaults out.
 */
typedef struct umg_fmodel_train_opts_s {
    uint64_t seed;           /* seeds the split, and XGBoost (seed mod 2^31-1); 0 is a seed too */
    double holdout_frac;     /* share held out when `holdout` is NULL (0.25); in (0, 0.9] */
    const uint8_t *holdout;  /* optional: n flags, 1 = held-out row (say, the last day);
                                borrowed for the call. NULL: a seeded random split,
                                stratified by label */
    int rounds;              /* boosting rounds (100), 1..5000 */
    int max_depth;           /* tree depth (6), 1..16 */
    double eta;              /* learning rate (0.1), (0, 1] */
    int nthread;             /* XGBoost threads (1), 1..64 */
    double scale_pos_weight; /* weight of positive rows (0 = negatives / positives of
                                the training split) */
    double threshold;        /* decision threshold for precision/recall/F1 (0.5) */
    double target_precision; /* the precision whose threshold is reported (0.98) */
} umg_fmodel_train_opts_t;

/** Writes the default options into *o (seed 0, no explicit holdout). */
void umg_fmodel_train_opts_init(umg_fmodel_train_opts_t *o);

/* What training measured on the held-out split (and the split's sizes). */
typedef struct umg_fmodel_metrics_s {
    uint64_t n_train, n_holdout;     /* rows */
    uint64_t pos_train, pos_holdout; /* fraud rows (label 1) */
    double auc;                      /* ROC AUC, ties as midranks */
    double threshold;                /* the threshold of the four figures below */
    double precision, recall, f1;    /* at score >= threshold (precision 0 when nothing is flagged) */
    uint64_t tp, fp, fn, tn;         /* confusion counts at `threshold` */
    double target_precision;         /* as asked */
    double threshold_at_target;      /* lowest threshold whose precision >= target (NaN: none) */
    double recall_at_target;         /* recall at that threshold (0 when none) */
    double scale_pos_weight;         /* as used */
    int rounds, max_depth;           /* as used */
    double eta;                      /* as used */
    int has_gain;                    /* 1: gain[] is filled (train; load when saved with it) */
    double gain[UMG_FMODEL_MAX_NF];  /* average split gain per feature, 0 = never split on */
} umg_fmodel_metrics_t;

/**
 * Trains a model on X (n rows of nf floats, row-major, NaN = missing) with
 * labels y (0 honest, 1 fraud), evaluates it on the held-out rows and
 * returns a new handle in *out (caller frees with umg_fmodel_free) and the
 * figures in *metrics (optional, may be NULL). X, y, names and opts are
 * borrowed for the call. feature_names: nf distinct names of [A-Za-z0-9_],
 * kept in the model and its metadata (pass umg_fmodel_feature_names for the
 * pipeline's vector).
 *
 * Deterministic: the same data, options, seed and nthread give the same
 * trees and scores, bit for bit (XGBoost "hist", no subsampling); a
 * different nthread may change the last bits of split gains and so, rarely,
 * a split.
 *
 * Errors: UMG_EINVAL with a sentence in msg (NUL-terminated, at most msglen
 * bytes) naming the problem: fewer than 20 rows, nf 0 or above
 * UMG_FMODEL_MAX_NF, a label other than 0/1, an infinite feature, a bad name,
 * an option out of range, fewer than 10 rows or a single class in the
 * training or the held-out split. UMG_ENOMEM; UMG_EIO when XGBoost fails
 * (its message in msg). *out and *metrics are written only on success.
 */
#define UMG_FMODEL_MIN_SPLIT_ROWS 10 /* rows the training and the held-out split each need at least */
int umg_fmodel_train(const float *X, const uint8_t *y, size_t n, size_t nf, const char *const *feature_names,
                     const umg_fmodel_train_opts_t *opts, umg_fmodel_t **out, umg_fmodel_metrics_t *metrics, char *msg,
                     size_t msglen);

/**
 * ROC AUC of score against labels y (0/1) over n rows: the probability that
 * a random positive scores above a random negative, a tie counting half
 * (midranks). O(n log n). NaN when a class is absent, n is 0 or memory runs
 * out. Both arrays are borrowed.
 */
double umg_fmodel_auc(const double *score, const uint8_t *y, size_t n);

/**
 * Scores one row x of nf features (nf must equal the model's): *score is the
 * fraud probability in [0, 1]. No allocation, no lock, thread-safe.
 * UMG_EINVAL on a NULL argument or an nf mismatch.
 */
int umg_fmodel_score(const umg_fmodel_t *m, const float *x, size_t nf, double *score);

/** umg_fmodel_score for `rows` rows of X (row-major) into out[rows]. */
int umg_fmodel_score_batch(const umg_fmodel_t *m, const float *X, size_t rows, size_t nf, double *out);

/**
 * The same scores computed by XGBoost itself (in-place dense prediction,
 * no DMatrix): the reference the C evaluator is checked against, and the
 * baseline of the benchmark. Not for concurrent use on one handle.
 * UMG_EINVAL on an nf mismatch or no rows, UMG_EIO when XGBoost fails.
 */
int umg_fmodel_predict_xgb(umg_fmodel_t *m, const float *X, size_t rows, size_t nf, double *out);

/**
 * Saves the model as the next version in dir (created if missing):
 * DIR/fraud-model-v<N>.json (XGBoost's JSON model) and beside it
 * DIR/fraud-model-v<N>.meta.json (format, version, created_at, xgboost
 * version, nf, feature names in order, training options and metrics, gain
 * per feature). N is one more than the highest version present. Each file is
 * written to a temporary name, fsynced and linked into place without
 * replacing anything; the metadata goes first and claims N (a concurrent
 * saver gets N+1), so a model file is never visible without its metadata.
 * The model file's path goes to path_out (cap bytes, NUL-terminated; may be
 * NULL); m remembers N (umg_fmodel_version). Not concurrent with another call
 * on m that uses XGBoost. UMG_EINVAL, UMG_ERANGE (path too long), UMG_EIO,
 * UMG_ENOMEM.
 */
int umg_fmodel_save(umg_fmodel_t *m, const char *dir, char *path_out, size_t cap);

/**
 * Loads the model file `path` (fraud-model-v<N>.json) with its metadata and
 * returns a new handle (caller frees). expect_nf and expect_names (expect_nf
 * names, borrowed) are what the caller computes; a model trained on another
 * feature count, other names or another order is refused with UMG_EINVAL and
 * a message naming the first difference. Training metrics saved in the
 * metadata are available through umg_fmodel_metrics. UMG_EINVAL also when
 * path is not named fraud-model-v<N>.json; UMG_ENOENT when a file
 * is missing, UMG_ECORRUPT when one does not parse or the two disagree,
 * UMG_EIO, UMG_ENOMEM. msg (cap bytes) gets a sentence on any error.
 */
int umg_fmodel_load(const char *path, size_t expect_nf, const char *const *expect_names, umg_fmodel_t **out, char *msg,
                    size_t cap);

/**
 * Writes into path (cap bytes) the model file of the highest version in
 * dir. UMG_ENOENT when dir has none (or does not exist), UMG_ERANGE when the
 * path does not fit, UMG_EIO.
 */
int umg_fmodel_latest(const char *dir, char *path, size_t cap);

/** The model's feature count. */
size_t umg_fmodel_nf(const umg_fmodel_t *m);
/** Its version: N after a save or a load of v<N>, 0 for a model not saved. */
unsigned umg_fmodel_version(const umg_fmodel_t *m);
/** The training metrics (from training, or from the metadata of a load); borrowed from m. */
const umg_fmodel_metrics_t *umg_fmodel_metrics(const umg_fmodel_t *m);
/** Number of trees and of nodes in the C evaluator. */
void umg_fmodel_size(const umg_fmodel_t *m, size_t *trees, size_t *nodes);

/** Frees a handle; accepts NULL. */
void umg_fmodel_free(umg_fmodel_t *m);

#endif
