/*
 * umg_fraud_train.h - `unmogrowp fraud train` and the daemon's model scorer
 * (docs/fraud.md "Model"): glue between the attribution store's stored
 * features, a labels file, the model module (umg_fraud_model.h) and the
 * pipeline's score hook (umg_pipeline_fraud_t.score).
 */
#ifndef UMG_FRAUD_TRAIN_H
#define UMG_FRAUD_TRAIN_H

#include "umg_core.h"

struct umg_apps_s;

/** The command; returns the exit status (0, 1 on failure, 2 on usage errors). */
int umg_fraud_train_cli(int argc, char **argv);

/*
 * Scores installs with each app's newest model in DATA/models/APP_ID/,
 * loaded on first use and again when a newer version appears (looked for
 * every 5 seconds). One thread (the pipeline's) uses it.
 */
typedef struct umg_fraud_scorer_s umg_fraud_scorer_t;
int umg_fraud_scorer_new(const char *data_dir, struct umg_apps_s *apps, umg_fraud_scorer_t **out);
void umg_fraud_scorer_free(umg_fraud_scorer_t *s);
/** umg_pipeline_fraud_t.score: UMG_OK with *score, UMG_ENOENT when the app has no model. */
int umg_fraud_scorer_score(void *ctx, uint32_t app, const float *x, size_t nf, double *score);
/* Tests: models the scorers loaded so far. */
extern _Atomic long umg__fraud_scorer_loads;

#endif
