/*
 * model.c - the fraud model (umg_fraud_model.h): training through XGBoost's C
 * API, held-out metrics (our own midrank AUC), versioned files with a
 * metadata sidecar, and a C evaluator of the trained trees for scoring.
 *
 * The evaluator is built from XGBoost's JSON tree dump, which prints every
 * split condition and leaf with float round-trip precision, and sums the
 * trees in float in tree order from the base margin before the sigmoid, as
 * XGBoost's CPU predictor does; so its scores are XGBoost's, bit for bit on
 * the test data, and every train and load checks that on probe rows. Two
 * forms: the walk (children side by side, right = left + 1, 12-byte nodes,
 * any depth) and, for trees up to DENSE_MAX_DEPTH, complete trees padded to
 * one depth that eight trees descend together without a branch (about 2.5x
 * faster than the walk on a depth-6 model).
 */
#include "umg_fraud_model.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

#include <xgboost/c_api.h>

#include "umg_core.h"
#include "umg_json.h"

const char *const umg_fmodel_feature_names[UMG_FMODEL_NF] = {
    "ctit_log10_s",
    "match_class",
    "clicks_device_1h",
    "clicks_device_24h",
    "clicks_ip_1m",
    "clicks_ip_1h",
    "installs_ip_1h",
    "installs_ip24_1h",
    "installs_fp_24h",
    "ua_platform_mismatch",
    "ua_model_mismatch",
    "hour_of_day",
    "source_cti_rate",
    "source_long_ctit_share",
    "ua_empty",
    "ip_listed",
    "bot_ua",
    "device_time_skew_log10_s",
    "referrer_present",
    "click_after_install_begin",
};

#define MIN_ROWS 20
#define MAX_TREE_DEPTH 16
#define JSON_MAX (256u << 20)

/* One tree node. Internal: go left when x[feat] < value, missing goes left
 * when dleft; children at left and left + 1. Leaf: value is the leaf weight. */
typedef struct fnode_s {
    float value;
    uint16_t feat;
    uint8_t leaf;
    uint8_t dleft;
    uint32_t left;
} fnode_t;

/* A node of the complete form: go right when xx[feat] >= thr (see
 * score_dense for xx). Padding nodes (below a leaf that is shallower than
 * the deepest) split anything both ways into copies of that leaf. */
typedef struct dnode_s {
    float thr;
    uint32_t feat;
} dnode_t;

/* Trees at most this deep are also kept complete (2^depth leaves each). */
#define DENSE_MAX_DEPTH 8
/* Trees walked side by side in the complete form. */
#define DENSE_LANES 8 /* score_dense spells the eight out */

struct umg_fmodel_s {
    BoosterHandle booster;
    size_t nf;
    char (*names)[UMG_FMODEL_NAME_MAX + 1];
    fnode_t *nodes;
    size_t n_nodes, cap_nodes;
    uint32_t *roots;
    size_t n_trees;
    int depth;       /* of the deepest tree */
    dnode_t *dnodes; /* n_trees x (2^depth - 1), NULL when depth > DENSE_MAX_DEPTH */
    float *dleaves;  /* n_trees x 2^depth */
    float base_margin;
    unsigned version;
    uint64_t seed;
    int nthread;
    umg_fmodel_metrics_t metrics;
};

static int msgf(char *msg, size_t cap, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int msgf(char *msg, size_t cap, int rc, const char *fmt, ...)
{
    if (msg != NULL && cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, cap, fmt, ap);
        va_end(ap);
    }
    return rc;
}

#define XGB_TRY(call)                                                                                                  \
    do {                                                                                                               \
        if ((call) != 0) {                                                                                             \
            rc = msgf(msg, msglen, UMG_EIO, "xgboost: %s", XGBGetLastError());                                         \
            goto fail;                                                                                                 \
        }                                                                                                              \
    } while (0)

/* ------------------------------------------------------------------ options */

void umg_fmodel_train_opts_init(umg_fmodel_train_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->holdout_frac = 0.25;
    o->rounds = 100;
    o->max_depth = 6;
    o->eta = 0.1;
    o->nthread = 1;
    o->threshold = 0.5;
    o->target_precision = 0.98;
}

/* Fills the zero fields of *o with defaults and checks the ranges. */
static int opts_resolve(const umg_fmodel_train_opts_t *in, umg_fmodel_train_opts_t *o, char *msg, size_t msglen)
{
    umg_fmodel_train_opts_t d;
    umg_fmodel_train_opts_init(&d);
    *o = in != NULL ? *in : d;
    o->holdout_frac = o->holdout_frac == 0 ? d.holdout_frac : o->holdout_frac;
    o->rounds = o->rounds == 0 ? d.rounds : o->rounds;
    o->max_depth = o->max_depth == 0 ? d.max_depth : o->max_depth;
    o->eta = o->eta == 0 ? d.eta : o->eta;
    o->nthread = o->nthread == 0 ? d.nthread : o->nthread;
    o->threshold = o->threshold == 0 ? d.threshold : o->threshold;
    o->target_precision = o->target_precision == 0 ? d.target_precision : o->target_precision;
    if (!(o->holdout_frac > 0 && o->holdout_frac <= 0.9)) {
        return msgf(msg, msglen, UMG_EINVAL, "holdout_frac %g is outside (0, 0.9]", o->holdout_frac);
    }
    if (o->rounds < 1 || o->rounds > 5000) {
        return msgf(msg, msglen, UMG_EINVAL, "rounds %d is outside 1..5000", o->rounds);
    }
    if (o->max_depth < 1 || o->max_depth > MAX_TREE_DEPTH) {
        return msgf(msg, msglen, UMG_EINVAL, "max_depth %d is outside 1..%d", o->max_depth, MAX_TREE_DEPTH);
    }
    if (!(o->eta > 0 && o->eta <= 1)) {
        return msgf(msg, msglen, UMG_EINVAL, "eta %g is outside (0, 1]", o->eta);
    }
    if (o->nthread < 1 || o->nthread > 64) {
        return msgf(msg, msglen, UMG_EINVAL, "nthread %d is outside 1..64", o->nthread);
    }
    if (!(o->scale_pos_weight >= 0 && isfinite(o->scale_pos_weight))) {
        return msgf(msg, msglen, UMG_EINVAL, "scale_pos_weight %g is negative or not finite", o->scale_pos_weight);
    }
    if (!(o->threshold > 0 && o->threshold < 1)) {
        return msgf(msg, msglen, UMG_EINVAL, "threshold %g is outside (0, 1)", o->threshold);
    }
    if (!(o->target_precision > 0 && o->target_precision <= 1)) {
        return msgf(msg, msglen, UMG_EINVAL, "target_precision %g is outside (0, 1]", o->target_precision);
    }
    return UMG_OK;
}

static int name_ok(const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) {
            return 0;
        }
        if (n >= UMG_FMODEL_NAME_MAX) {
            return 0;
        }
    }
    return n > 0;
}

/* Copies nf checked, distinct names into m->names. */
static int names_set(umg_fmodel_t *m, const char *const *names, size_t nf, char *msg, size_t msglen)
{
    if (names == NULL) {
        return msgf(msg, msglen, UMG_EINVAL, "no feature names given");
    }
    m->names = umg_calloc(nf, sizeof(*m->names));
    if (m->names == NULL) {
        return UMG_ENOMEM;
    }
    for (size_t i = 0; i < nf; i++) {
        if (names[i] == NULL || !name_ok(names[i])) {
            return msgf(msg, msglen, UMG_EINVAL, "feature name %zu is empty, longer than %d bytes or not [A-Za-z0-9_]",
                        i, UMG_FMODEL_NAME_MAX);
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(names[i], names[j]) == 0) {
                return msgf(msg, msglen, UMG_EINVAL, "feature name \"%s\" appears twice (%zu and %zu)", names[i], j, i);
            }
        }
        strcpy(m->names[i], names[i]);
    }
    m->nf = nf;
    return UMG_OK;
}

/* -------------------------------------------------------------- evaluator */

static int node_alloc(umg_fmodel_t *m, size_t k, uint32_t *first)
{
    if (m->n_nodes + k > m->cap_nodes) {
        size_t cap = m->cap_nodes ? m->cap_nodes * 2 : 1024;
        while (cap < m->n_nodes + k) {
            cap *= 2;
        }
        if (cap > UINT32_MAX) {
            return UMG_ERANGE;
        }
        fnode_t *p = umg_realloc(m->nodes, cap * sizeof(*p));
        if (p == NULL) {
            return UMG_ENOMEM;
        }
        m->nodes = p;
        m->cap_nodes = cap;
    }
    *first = (uint32_t)m->n_nodes;
    m->n_nodes += k;
    return UMG_OK;
}

static int json_num(umg_json_val_t obj, const char *key, double *out)
{
    umg_json_val_t v;
    if (umg_json_object_find(obj, key, strlen(key), &v) != UMG_JSON_OK || umg_json_get_double(v, out) != UMG_JSON_OK) {
        return UMG_ECORRUPT;
    }
    return UMG_OK;
}

/* The feature index of a dump's "split": one of the model's names, or "f<i>". */
static int split_feature(const umg_fmodel_t *m, const char *s, size_t len, uint16_t *out)
{
    for (size_t i = 0; i < m->nf; i++) {
        if (strlen(m->names[i]) == len && memcmp(m->names[i], s, len) == 0) {
            *out = (uint16_t)i;
            return UMG_OK;
        }
    }
    if (len >= 2 && len <= 6 && s[0] == 'f') {
        size_t v = 0;
        for (size_t i = 1; i < len; i++) {
            if (s[i] < '0' || s[i] > '9') {
                return UMG_ECORRUPT;
            }
            v = v * 10 + (size_t)(s[i] - '0');
        }
        if (v < m->nf) {
            *out = (uint16_t)v;
            return UMG_OK;
        }
    }
    return UMG_ECORRUPT;
}

typedef struct kids_s {
    umg_json_val_t v[2];
    size_t n;
} kids_t;

static int kids_cb(void *ctx, size_t index, umg_json_val_t val)
{
    kids_t *k = ctx;
    if (index >= 2) {
        return 1;
    }
    k->v[index] = val;
    k->n = index + 1;
    return 0;
}

/* Copies the dumped node `node` (and its subtree) into m->nodes[slot]. */
static int build_node(umg_fmodel_t *m, umg_json_val_t node, uint32_t slot, int depth)
{
    double d;
    if (depth > 64) {
        return UMG_ECORRUPT;
    }
    if (json_num(node, "leaf", &d) == UMG_OK) {
        m->nodes[slot] = (fnode_t){.value = (float)d, .leaf = 1};
        m->depth = UMG_MAX(m->depth, depth);
        return UMG_OK;
    }
    umg_json_val_t split, children;
    kids_t kids = {.n = 0};
    const char *s;
    size_t slen;
    double cond, yes, no, missing;
    uint16_t feat;
    if (umg_json_object_find(node, "split", 5, &split) != UMG_JSON_OK ||
        umg_json_get_string(split, &s, &slen) != UMG_JSON_OK || split_feature(m, s, slen, &feat) != UMG_OK ||
        json_num(node, "split_condition", &cond) != UMG_OK || json_num(node, "yes", &yes) != UMG_OK ||
        json_num(node, "no", &no) != UMG_OK || json_num(node, "missing", &missing) != UMG_OK ||
        umg_json_object_find(node, "children", 8, &children) != UMG_JSON_OK ||
        umg_json_array_foreach(children, kids_cb, &kids) != 0 || kids.n != 2 || (missing != yes && missing != no)) {
        return UMG_ECORRUPT;
    }
    uint32_t left;
    int rc = node_alloc(m, 2, &left);
    if (rc != UMG_OK) {
        return rc;
    }
    m->nodes[slot] = (fnode_t){.value = (float)cond, .feat = feat, .dleft = missing == yes, .left = left};
    /* The dump lists the children in either order; place them by nodeid. */
    double id0, id1;
    if (json_num(kids.v[0], "nodeid", &id0) != UMG_OK || json_num(kids.v[1], "nodeid", &id1) != UMG_OK) {
        return UMG_ECORRUPT;
    }
    if (id0 == yes && id1 == no) {
        rc = build_node(m, kids.v[0], left, depth + 1);
        rc = rc == UMG_OK ? build_node(m, kids.v[1], left + 1, depth + 1) : rc;
    } else if (id0 == no && id1 == yes) {
        rc = build_node(m, kids.v[1], left, depth + 1);
        rc = rc == UMG_OK ? build_node(m, kids.v[0], left + 1, depth + 1) : rc;
    } else {
        rc = UMG_ECORRUPT;
    }
    return rc;
}

/* The base score from the booster's configuration, as a margin. */
static int read_base_margin(umg_fmodel_t *m, umg_json_parser_t *p, char *msg, size_t msglen)
{
    bst_ulong len;
    const char *cfg;
    umg_json_val_t root, learner, v;
    if (XGBoosterSaveJsonConfig(m->booster, &len, &cfg) != 0) {
        return msgf(msg, msglen, UMG_EIO, "xgboost: %s", XGBGetLastError());
    }
    const char *s;
    size_t slen;
    char buf[64];
    umg_json_err_t je = umg_json_parse(p, cfg, len, &root);
    if (je == UMG_JSON_ENOMEM) {
        return UMG_ENOMEM;
    }
    if (je != UMG_JSON_OK || umg_json_object_find(root, "learner", 7, &learner) != UMG_JSON_OK ||
        umg_json_object_find(learner, "objective", 9, &v) != UMG_JSON_OK ||
        umg_json_object_find(v, "name", 4, &v) != UMG_JSON_OK || umg_json_get_string(v, &s, &slen) != UMG_JSON_OK) {
        return msgf(msg, msglen, UMG_ECORRUPT, "the booster configuration has no objective");
    }
    if (slen != 15 || memcmp(s, "binary:logistic", 15) != 0) {
        return msgf(msg, msglen, UMG_ECORRUPT, "the model's objective is \"%.*s\", not binary:logistic", (int)slen, s);
    }
    if (umg_json_object_find(learner, "learner_model_param", 19, &v) != UMG_JSON_OK ||
        umg_json_object_find(v, "base_score", 10, &v) != UMG_JSON_OK ||
        umg_json_get_string(v, &s, &slen) != UMG_JSON_OK || slen == 0 || slen >= sizeof(buf)) {
        return msgf(msg, msglen, UMG_ECORRUPT, "the booster configuration has no base_score");
    }
    memcpy(buf, s, slen);
    buf[slen] = '\0';
    char *end;
    float base = strtof(buf, &end);
    if (*end != '\0' || !(base > 0.0f && base < 1.0f)) {
        return msgf(msg, msglen, UMG_ECORRUPT, "base_score \"%s\" is not a probability", buf);
    }
    /* XGBoost's binary:logistic ProbToMargin, in float as it computes it. */
    m->base_margin = -logf(1.0f / base - 1.0f);
    return UMG_OK;
}

/* Copies walk node i (at depth d) into complete-tree position pos of tree t. */
static void dense_fill(umg_fmodel_t *m, size_t t, uint32_t i, size_t pos, int d)
{
    size_t inner = ((size_t)1 << m->depth) - 1;
    const fnode_t *n = &m->nodes[i];
    if (d == m->depth) {
        m->dleaves[t * (inner + 1) + (pos - inner)] = n->value;
        return;
    }
    dnode_t *dn = &m->dnodes[t * inner + pos];
    if (n->leaf) {
        *dn = (dnode_t){0};
        dense_fill(m, t, i, 2 * pos + 1, d + 1);
        dense_fill(m, t, i, 2 * pos + 2, d + 1);
        return;
    }
    /* feat indexes score_dense's doubled row: the copy where missing is
     * +inf for a node that sends it right, -inf for one that sends it left. */
    *dn = (dnode_t){.thr = n->value, .feat = (uint16_t)(n->feat + (n->dleft ? m->nf : 0))};
    dense_fill(m, t, n->left, 2 * pos + 1, d + 1);
    dense_fill(m, t, n->left + 1, 2 * pos + 2, d + 1);
}

/* The complete form of shallow models: every tree padded to the same depth,
 * so a row descends a fixed number of levels without a branch and several
 * trees descend side by side. */
static int dense_build(umg_fmodel_t *m)
{
    if (m->depth > DENSE_MAX_DEPTH || m->n_trees == 0) {
        return UMG_OK;
    }
    size_t leaves = (size_t)1 << m->depth;
    m->dnodes = umg_malloc(m->n_trees * (leaves - 1) * sizeof(*m->dnodes) + 1);
    m->dleaves = umg_malloc(m->n_trees * leaves * sizeof(*m->dleaves));
    if (m->dnodes == NULL || m->dleaves == NULL) {
        return UMG_ENOMEM;
    }
    for (size_t t = 0; t < m->n_trees; t++) {
        dense_fill(m, t, m->roots[t], 0, 0);
    }
    return UMG_OK;
}

/* Builds the C evaluator from the booster's JSON dump (and its base score). */
static int evaluator_build(umg_fmodel_t *m, char *msg, size_t msglen)
{
    int rc = UMG_OK;
    umg_json_parser_t *p = NULL;
    bst_ulong ntrees;
    const char **dump;
    if (umg_json_parser_new(JSON_MAX, &p) != UMG_JSON_OK) {
        return UMG_ENOMEM;
    }
    rc = read_base_margin(m, p, msg, msglen);
    if (rc != UMG_OK) {
        goto fail;
    }
    XGB_TRY(XGBoosterDumpModelEx(m->booster, "", 0, "json", &ntrees, &dump));
    m->roots = umg_calloc(ntrees ? ntrees : 1, sizeof(*m->roots));
    if (m->roots == NULL) {
        rc = UMG_ENOMEM;
        goto fail;
    }
    for (bst_ulong t = 0; t < ntrees; t++) {
        umg_json_val_t root;
        umg_json_err_t je = umg_json_parse(p, dump[t], strlen(dump[t]), &root);
        if (je == UMG_JSON_ENOMEM) {
            rc = UMG_ENOMEM;
            goto fail;
        }
        if (je != UMG_JSON_OK) {
            rc = msgf(msg, msglen, UMG_ECORRUPT, "tree %lu of the dump does not parse", (unsigned long)t);
            goto fail;
        }
        rc = node_alloc(m, 1, &m->roots[t]);
        rc = rc == UMG_OK ? build_node(m, root, m->roots[t], 0) : rc;
        if (rc != UMG_OK) {
            rc = rc == UMG_ECORRUPT ? msgf(msg, msglen, rc, "tree %lu of the dump is not understood", (unsigned long)t)
                                    : rc;
            goto fail;
        }
        m->n_trees = t + 1;
    }
    rc = dense_build(m);
fail:
    umg_json_parser_free(p);
    return rc;
}

static float sigmoid(float x)
{
    /* XGBoost 1.7's common::Sigmoid. */
    float e = expf(fminf(-x, 88.7f));
    return 1.0f / (e + 1.0f + 1e-16f);
}

/* Scoring by walking each tree (any depth). */
static double score_walk(const umg_fmodel_t *m, const float *x)
{
    const fnode_t *nodes = m->nodes;
    float sum = m->base_margin;
    for (size_t t = 0; t < m->n_trees; t++) {
        const fnode_t *n = &nodes[m->roots[t]];
        while (!n->leaf) {
            float v = x[n->feat];
            int right = isnan(v) ? !n->dleft : !(v < n->value);
            n = &nodes[n->left + (uint32_t)right];
        }
        sum += n->value;
    }
    return sigmoid(sum);
}

/* One step down a complete tree: xx holds the row twice, missing values as
 * +inf in the first copy (so they go right) and -inf in the second (left);
 * a node's feat already picks the copy for its default direction. A real
 * +-inf compares as XGBoost compares it, so nothing else changes. */
#define DENSE_STEP(base, i) ((i) = 2 * (i) + 1 + (uint32_t)(xx[(base)[i].feat] >= (base)[i].thr))

/* Scoring through the complete form: DENSE_LANES trees descend together, a
 * level at a time, without a branch; the leaves are then added in tree
 * order, as XGBoost adds them, so the sum is bit for bit the same. */
static double score_dense(const umg_fmodel_t *m, const float *x)
{
    float xx[2 * UMG_FMODEL_MAX_NF];
    const size_t nf = m->nf;
    for (size_t f = 0; f < nf; f++) {
        int miss = isnan(x[f]);
        xx[f] = miss ? INFINITY : x[f];
        xx[nf + f] = miss ? -INFINITY : x[f];
    }
    const int depth = m->depth;
    const size_t inner = ((size_t)1 << depth) - 1;
    float sum = m->base_margin;
    size_t t = 0;
    for (; t + DENSE_LANES <= m->n_trees; t += DENSE_LANES) {
        const dnode_t *b = m->dnodes + t * inner;
        uint32_t i0 = 0, i1 = 0, i2 = 0, i3 = 0, i4 = 0, i5 = 0, i6 = 0, i7 = 0;
        for (int d = 0; d < depth; d++) {
            DENSE_STEP(b, i0);
            DENSE_STEP(b + inner, i1);
            DENSE_STEP(b + 2 * inner, i2);
            DENSE_STEP(b + 3 * inner, i3);
            DENSE_STEP(b + 4 * inner, i4);
            DENSE_STEP(b + 5 * inner, i5);
            DENSE_STEP(b + 6 * inner, i6);
            DENSE_STEP(b + 7 * inner, i7);
        }
        const float *l = m->dleaves + t * (inner + 1) - inner;
        sum += l[i0];
        sum += l[inner + 1 + i1];
        sum += l[2 * (inner + 1) + i2];
        sum += l[3 * (inner + 1) + i3];
        sum += l[4 * (inner + 1) + i4];
        sum += l[5 * (inner + 1) + i5];
        sum += l[6 * (inner + 1) + i6];
        sum += l[7 * (inner + 1) + i7];
    }
    for (; t < m->n_trees; t++) {
        const dnode_t *b = m->dnodes + t * inner;
        uint32_t i = 0;
        for (int d = 0; d < depth; d++) {
            DENSE_STEP(b, i);
        }
        sum += m->dleaves[t * (inner + 1) + i - inner];
    }
    return sigmoid(sum);
}

static inline double score_row(const umg_fmodel_t *m, const float *x)
{
    return m->dnodes != NULL ? score_dense(m, x) : score_walk(m, x);
}

int umg_fmodel_score(const umg_fmodel_t *m, const float *x, size_t nf, double *score)
{
    if (m == NULL || x == NULL || score == NULL || nf != m->nf) {
        return UMG_EINVAL;
    }
    *score = score_row(m, x);
    return UMG_OK;
}

int umg_fmodel_score_batch(const umg_fmodel_t *m, const float *X, size_t rows, size_t nf, double *out)
{
    if (m == NULL || (rows > 0 && (X == NULL || out == NULL)) || nf != m->nf) {
        return UMG_EINVAL;
    }
    for (size_t r = 0; r < rows; r++) {
        out[r] = score_row(m, X + r * nf);
    }
    return UMG_OK;
}

int umg_fmodel_predict_xgb(umg_fmodel_t *m, const float *X, size_t rows, size_t nf, double *out)
{
    if (m == NULL || X == NULL || out == NULL || nf != m->nf || rows == 0) {
        return UMG_EINVAL;
    }
    char arr[160];
    const bst_ulong *shape;
    bst_ulong dim;
    const float *res;
    snprintf(arr, sizeof(arr), "{\"data\": [%llu, true], \"shape\": [%zu, %zu], \"typestr\": \"<f4\", \"version\": 3}",
             (unsigned long long)(uintptr_t)X, rows, nf);
    static const char cfg[] = "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, \"iteration_end\": 0, "
                              "\"strict_shape\": false, \"missing\": NaN, \"cache_id\": 0}";
    if (XGBoosterPredictFromDense(m->booster, arr, cfg, NULL, &shape, &dim, &res) != 0) {
        return UMG_EIO;
    }
    for (size_t r = 0; r < rows; r++) {
        out[r] = res[r];
    }
    return UMG_OK;
}

/* ---------------------------------------------------------------- metrics */

typedef struct sy_s {
    double s;
    uint8_t y;
} sy_t;

static int sy_desc(const void *a, const void *b)
{
    double x = ((const sy_t *)a)->s, y = ((const sy_t *)b)->s;
    return (x < y) - (x > y);
}

/* Copies (score, label) pairs sorted by descending score; NULL on NaN or no memory. */
static sy_t *sorted_pairs(const double *score, const uint8_t *y, size_t n)
{
    sy_t *v = umg_malloc(n * sizeof(*v));
    if (v == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (isnan(score[i])) {
            umg_free(v);
            return NULL;
        }
        v[i] = (sy_t){score[i], y[i] != 0};
    }
    qsort(v, n, sizeof(*v), sy_desc);
    return v;
}

double umg_fmodel_auc(const double *score, const uint8_t *y, size_t n)
{
    if (score == NULL || y == NULL || n == 0) {
        return NAN;
    }
    sy_t *v = sorted_pairs(score, y, n);
    if (v == NULL) {
        return NAN;
    }
    /* Ascending rank r of the i-th element from the end is n - i; a run of
     * equal scores shares the mean of its ranks. */
    double rank_sum = 0;
    uint64_t pos = 0, neg = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        uint64_t p = 0;
        while (j < n && v[j].s == v[i].s) {
            p += v[j].y;
            j++;
        }
        double mid = ((double)(n - i) + (double)(n - j + 1)) / 2.0;
        rank_sum += mid * (double)p;
        pos += p;
        neg += (j - i) - p;
        i = j;
    }
    umg_free(v);
    if (pos == 0 || neg == 0) {
        return NAN;
    }
    return (rank_sum - (double)pos * ((double)pos + 1) / 2.0) / ((double)pos * (double)neg);
}

/* Fills the held-out figures of *mt from the scores of the held-out rows. */
static int holdout_metrics(const double *score, const uint8_t *y, size_t n, const umg_fmodel_train_opts_t *o,
                           umg_fmodel_metrics_t *mt)
{
    mt->auc = umg_fmodel_auc(score, y, n);
    mt->threshold = o->threshold;
    mt->tp = mt->fp = mt->fn = mt->tn = 0;
    for (size_t i = 0; i < n; i++) {
        int flag = score[i] >= o->threshold;
        mt->tp += flag && y[i];
        mt->fp += flag && !y[i];
        mt->fn += !flag && y[i];
        mt->tn += !flag && !y[i];
    }
    uint64_t pos = mt->tp + mt->fn;
    mt->precision = mt->tp + mt->fp ? (double)mt->tp / (double)(mt->tp + mt->fp) : 0;
    mt->recall = pos ? (double)mt->tp / (double)pos : 0;
    mt->f1 = mt->precision + mt->recall > 0 ? 2 * mt->precision * mt->recall / (mt->precision + mt->recall) : 0;

    /* The lowest threshold (so the highest recall) whose precision reaches the
     * target: walk the distinct scores downwards. */
    sy_t *v = sorted_pairs(score, y, n);
    if (v == NULL) {
        return UMG_ENOMEM;
    }
    mt->target_precision = o->target_precision;
    mt->threshold_at_target = NAN;
    mt->recall_at_target = 0;
    uint64_t tp = 0, fp = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && v[j].s == v[i].s) {
            tp += v[j].y;
            fp += !v[j].y;
            j++;
        }
        if ((double)tp >= o->target_precision * (double)(tp + fp) && tp > 0) {
            mt->threshold_at_target = v[i].s;
            mt->recall_at_target = pos ? (double)tp / (double)pos : 0;
        }
        i = j;
    }
    umg_free(v);
    return UMG_OK;
}

/* Average gain per feature from XGBoost (features never split on get 0). */
static int read_gain(umg_fmodel_t *m)
{
    bst_ulong nfeat, dim;
    const char **fnames;
    const bst_ulong *shape;
    const float *scores;
    if (XGBoosterFeatureScore(m->booster, "{\"importance_type\": \"gain\"}", &nfeat, &fnames, &dim, &shape, &scores) !=
        0) {
        return UMG_EIO;
    }
    memset(m->metrics.gain, 0, sizeof(m->metrics.gain));
    for (bst_ulong i = 0; i < nfeat; i++) {
        uint16_t f;
        if (split_feature(m, fnames[i], strlen(fnames[i]), &f) == UMG_OK) {
            m->metrics.gain[f] = scores[i];
        }
    }
    m->metrics.has_gain = 1;
    return UMG_OK;
}

/* --------------------------------------------------------------- training */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A seeded random split, stratified: round(frac x count) of each class. */
static int random_split(const uint8_t *y, size_t n, double frac, uint64_t seed, uint8_t *hold)
{
    size_t *idx = umg_malloc(n * sizeof(*idx));
    if (idx == NULL) {
        return UMG_ENOMEM;
    }
    uint64_t s = seed;
    memset(hold, 0, n);
    for (int c = 0; c < 2; c++) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            if (y[i] == c) {
                idx[k++] = i;
            }
        }
        for (size_t i = k; i > 1; i--) {
            size_t j = (size_t)(splitmix(&s) % i);
            size_t t = idx[i - 1];
            idx[i - 1] = idx[j];
            idx[j] = t;
        }
        size_t take = (size_t)llround(frac * (double)k);
        for (size_t i = 0; i < take; i++) {
            hold[idx[i]] = 1;
        }
    }
    umg_free(idx);
    return UMG_OK;
}

static int check_input(const float *X, const uint8_t *y, size_t n, size_t nf, const char *const *names, char *msg,
                       size_t msglen)
{
    if (X == NULL || y == NULL) {
        return msgf(msg, msglen, UMG_EINVAL, "no rows or no labels given");
    }
    if (n < MIN_ROWS) {
        return msgf(msg, msglen, UMG_EINVAL, "%zu rows are too few to train on (at least %d)", n, MIN_ROWS);
    }
    if (nf == 0 || nf > UMG_FMODEL_MAX_NF) {
        return msgf(msg, msglen, UMG_EINVAL, "%zu features: a model has 1 to %d", nf, UMG_FMODEL_MAX_NF);
    }
    for (size_t i = 0; i < n; i++) {
        if (y[i] > 1) {
            return msgf(msg, msglen, UMG_EINVAL, "the label of row %zu is %u, not 0 (honest) or 1 (fraud)", i,
                        (unsigned)y[i]);
        }
        for (size_t f = 0; f < nf; f++) {
            if (isinf(X[i * nf + f])) {
                return msgf(msg, msglen, UMG_EINVAL, "feature %zu (%s) of row %zu is infinite (NaN means missing)", f,
                            names != NULL && names[f] != NULL ? names[f] : "?", i);
            }
        }
    }
    return UMG_OK;
}

/* The split's sizes into *mt, refused when a side is too small or one-class. */
static int check_split(const uint8_t *y, const uint8_t *hold, size_t n, umg_fmodel_metrics_t *mt, char *msg,
                       size_t msglen)
{
    mt->n_train = mt->n_holdout = mt->pos_train = mt->pos_holdout = 0;
    for (size_t i = 0; i < n; i++) {
        if (hold[i]) {
            mt->n_holdout++;
            mt->pos_holdout += y[i];
        } else {
            mt->n_train++;
            mt->pos_train += y[i];
        }
    }
    const char *side[2] = {"training", "held-out"};
    uint64_t rows[2] = {mt->n_train, mt->n_holdout}, pos[2] = {mt->pos_train, mt->pos_holdout};
    for (int s = 0; s < 2; s++) {
        if (rows[s] < UMG_FMODEL_MIN_SPLIT_ROWS) {
            return msgf(msg, msglen, UMG_EINVAL, "the %s split has %llu rows (at least %d)", side[s],
                        (unsigned long long)rows[s], UMG_FMODEL_MIN_SPLIT_ROWS);
        }
        if (pos[s] == 0 || pos[s] == rows[s]) {
            return msgf(msg, msglen, UMG_EINVAL, "the %s split has only %s rows (%llu): both classes are needed",
                        side[s], pos[s] == 0 ? "honest" : "fraud", (unsigned long long)rows[s]);
        }
    }
    return UMG_OK;
}

static int set_params(BoosterHandle b, const umg_fmodel_train_opts_t *o, double spw)
{
    char v[6][40];
    snprintf(v[0], sizeof(v[0]), "%d", o->max_depth);
    snprintf(v[1], sizeof(v[1]), "%.17g", o->eta);
    snprintf(v[2], sizeof(v[2]), "%d", o->nthread);
    snprintf(v[3], sizeof(v[3]), "%llu", (unsigned long long)(o->seed % 2147483647u));
    snprintf(v[4], sizeof(v[4]), "%.17g", spw);
    const char *kv[][2] = {
        {"objective", "binary:logistic"},
        {"tree_method", "hist"},
        {"verbosity", "0"},
        {"max_depth", v[0]},
        {"eta", v[1]},
        {"nthread", v[2]},
        {"seed", v[3]},
        {"scale_pos_weight", v[4]},
        {"subsample", "1"},
        {"eval_metric", "auc"},
    };
    for (size_t i = 0; i < UMG_ARRAY_SIZE(kv); i++) {
        if (XGBoosterSetParam(b, kv[i][0], kv[i][1]) != 0) {
            return UMG_EIO;
        }
    }
    return UMG_OK;
}

#define PROBE_ROWS 64

/*
 * Checks the C evaluator against XGBoost on probe rows before a model is
 * handed out (after training and after loading), so that a dump it reads
 * wrongly (another XGBoost version, say) refuses the model instead of
 * scoring differently. The probes mix missing values, random values and
 * values at, just under and just over the model's own split thresholds,
 * where a `<` read as `<=` would show.
 */
static int evaluator_check(umg_fmodel_t *m, char *msg, size_t msglen)
{
    int rc = UMG_OK;
    float *P = umg_malloc(PROBE_ROWS * m->nf * sizeof(*P));
    double *mine = umg_malloc(2 * PROBE_ROWS * sizeof(*mine)), *xgb = mine + PROBE_ROWS;
    uint64_t s = 0x5eedf00d;
    if (P == NULL || mine == NULL) {
        rc = UMG_ENOMEM;
        goto fail;
    }
    for (size_t r = 0; r < PROBE_ROWS; r++) {
        float *x = P + r * m->nf;
        for (size_t f = 0; f < m->nf; f++) {
            uint64_t u = splitmix(&s);
            x[f] = u % 5 == 0 ? NAN : (float)((double)(int64_t)((u >> 40) % 20001) / 100.0 - 100.0);
        }
        for (int k = 0; k < 8 && m->n_nodes > 0; k++) {
            uint64_t u = splitmix(&s);
            const fnode_t *n = &m->nodes[u % m->n_nodes];
            if (!n->leaf) {
                int how = (int)((u >> 32) % 3);
                x[n->feat] = how == 0 ? n->value : nextafterf(n->value, how == 1 ? -INFINITY : INFINITY);
            }
        }
    }
    umg_fmodel_score_batch(m, P, PROBE_ROWS, m->nf, mine);
    if (umg_fmodel_predict_xgb(m, P, PROBE_ROWS, m->nf, xgb) != UMG_OK) {
        rc = msgf(msg, msglen, UMG_EIO, "xgboost: %s", XGBGetLastError());
        goto fail;
    }
    for (size_t r = 0; r < PROBE_ROWS; r++) {
        if (!(fabs(mine[r] - xgb[r]) < 1e-6)) {
            rc = msgf(msg, msglen, UMG_ECORRUPT,
                      "the model's trees are not read as XGBoost reads them "
                      "(probe row %zu scores %.9g, XGBoost %.9g)",
                      r, mine[r], xgb[r]);
            goto fail;
        }
    }
fail:
    umg_free(P);
    umg_free(mine);
    return rc;
}

/* The rows of the two splits, copied out of the caller's matrix. */
typedef struct split_s {
    float *Xt, *lt, *Xh; /* training rows and labels (as XGBoost wants them), held-out rows */
    uint8_t *yh;         /* held-out labels */
    size_t nt, nh;
} split_t;

static void split_free(split_t *sp)
{
    umg_free(sp->Xt);
    umg_free(sp->lt);
    umg_free(sp->Xh);
    umg_free(sp->yh);
}

static int split_copy(const float *X, const uint8_t *y, size_t n, size_t nf, const uint8_t *hold, split_t *sp)
{
    sp->Xt = umg_malloc(sp->nt * nf * sizeof(*sp->Xt));
    sp->lt = umg_malloc(sp->nt * sizeof(*sp->lt));
    sp->Xh = umg_malloc(sp->nh * nf * sizeof(*sp->Xh));
    sp->yh = umg_malloc(sp->nh);
    if (sp->Xt == NULL || sp->lt == NULL || sp->Xh == NULL || sp->yh == NULL) {
        return UMG_ENOMEM;
    }
    for (size_t i = 0, t = 0, h = 0; i < n; i++) {
        if (hold[i]) {
            memcpy(sp->Xh + h * nf, X + i * nf, nf * sizeof(*X));
            sp->yh[h++] = y[i];
        } else {
            memcpy(sp->Xt + t * nf, X + i * nf, nf * sizeof(*X));
            sp->lt[t++] = y[i];
        }
    }
    return UMG_OK;
}

/* Boosts m->booster on the training split. */
static int boost(umg_fmodel_t *m, const split_t *sp, const umg_fmodel_train_opts_t *o, double spw, char *msg,
                 size_t msglen)
{
    int rc = UMG_OK;
    DMatrixHandle d = NULL;
    const char *names[UMG_FMODEL_MAX_NF];
    for (size_t i = 0; i < m->nf; i++) {
        names[i] = m->names[i];
    }
    XGB_TRY(XGDMatrixCreateFromMat_omp(sp->Xt, sp->nt, m->nf, NAN, &d, o->nthread));
    XGB_TRY(XGDMatrixSetFloatInfo(d, "label", sp->lt, sp->nt));
    XGB_TRY(XGDMatrixSetStrFeatureInfo(d, "feature_name", names, m->nf));
    XGB_TRY(XGBoosterCreate(&d, 1, &m->booster));
    XGB_TRY(set_params(m->booster, o, spw));
    for (int it = 0; it < o->rounds; it++) {
        XGB_TRY(XGBoosterUpdateOneIter(m->booster, it, d));
    }
    /* The booster does not take the names from the DMatrix; set them so the
     * model file names its features too (load checks them). */
    XGB_TRY(XGBoosterSetStrFeatureInfo(m->booster, "feature_name", names, m->nf));
fail:
    if (d != NULL) {
        XGDMatrixFree(d);
    }
    return rc;
}

int umg_fmodel_train(const float *X, const uint8_t *y, size_t n, size_t nf, const char *const *feature_names,
                     const umg_fmodel_train_opts_t *opts, umg_fmodel_t **out, umg_fmodel_metrics_t *metrics, char *msg,
                     size_t msglen)
{
    int rc;
    umg_fmodel_train_opts_t o;
    umg_fmodel_t *m = NULL;
    uint8_t *hold = NULL;
    double *sh = NULL;
    split_t sp = {0};

    if (out == NULL) {
        return msgf(msg, msglen, UMG_EINVAL, "no place for the model");
    }
    rc = check_input(X, y, n, nf, feature_names, msg, msglen);
    rc = rc == UMG_OK ? opts_resolve(opts, &o, msg, msglen) : rc;
    if (rc != UMG_OK) {
        return rc;
    }
    m = umg_calloc(1, sizeof(*m));
    hold = umg_malloc(n);
    if (m == NULL || hold == NULL) {
        rc = UMG_ENOMEM;
        goto fail;
    }
    if ((rc = names_set(m, feature_names, nf, msg, msglen)) != UMG_OK) {
        goto fail;
    }
    for (size_t i = 0; o.holdout != NULL && i < n; i++) {
        hold[i] = o.holdout[i] != 0;
    }
    if ((o.holdout == NULL && (rc = random_split(y, n, o.holdout_frac, o.seed, hold)) != UMG_OK) ||
        (rc = check_split(y, hold, n, &m->metrics, msg, msglen)) != UMG_OK) {
        goto fail;
    }
    sp.nt = m->metrics.n_train;
    sp.nh = m->metrics.n_holdout;
    sh = umg_malloc(sp.nh * sizeof(*sh));
    if (sh == NULL || (rc = split_copy(X, y, n, nf, hold, &sp)) != UMG_OK) {
        rc = UMG_ENOMEM;
        goto fail;
    }
    double spw = o.scale_pos_weight;
    if (spw == 0) {
        spw = (double)(sp.nt - m->metrics.pos_train) / (double)m->metrics.pos_train;
    }
    if ((rc = boost(m, &sp, &o, spw, msg, msglen)) != UMG_OK || (rc = evaluator_build(m, msg, msglen)) != UMG_OK ||
        (rc = evaluator_check(m, msg, msglen)) != UMG_OK) {
        goto fail;
    }
    /* The figures are those of the scorer the pipeline will use. */
    umg_fmodel_score_batch(m, sp.Xh, sp.nh, nf, sh);
    if ((rc = holdout_metrics(sh, sp.yh, sp.nh, &o, &m->metrics)) != UMG_OK) {
        goto fail;
    }
    m->metrics.scale_pos_weight = spw;
    m->metrics.rounds = o.rounds;
    m->metrics.max_depth = o.max_depth;
    m->metrics.eta = o.eta;
    m->seed = o.seed;
    m->nthread = o.nthread;
    XGB_TRY(read_gain(m));
    *out = m;
    if (metrics != NULL) {
        *metrics = m->metrics;
    }
    m = NULL;
fail:
    umg_fmodel_free(m);
    umg_free(hold);
    umg_free(sh);
    split_free(&sp);
    return rc;
}

/* ---------------------------------------------------------- accessors */

size_t umg_fmodel_nf(const umg_fmodel_t *m)
{
    return m->nf;
}

unsigned umg_fmodel_version(const umg_fmodel_t *m)
{
    return m->version;
}

const umg_fmodel_metrics_t *umg_fmodel_metrics(const umg_fmodel_t *m)
{
    return &m->metrics;
}

void umg_fmodel_size(const umg_fmodel_t *m, size_t *trees, size_t *nodes)
{
    *trees = m->n_trees;
    *nodes = m->n_nodes;
}

void umg_fmodel_free(umg_fmodel_t *m)
{
    if (m == NULL) {
        return;
    }
    if (m->booster != NULL) {
        XGBoosterFree(m->booster);
    }
    umg_free(m->names);
    umg_free(m->nodes);
    umg_free(m->roots);
    umg_free(m->dnodes);
    umg_free(m->dleaves);
    umg_free(m);
}

/* ------------------------------------------------------------ persistence */

#define FILE_PREFIX "fraud-model-v"
#define META_FORMAT "umg-fraud-model"

/* The version N of a file name fraud-model-v<N>.json (meta = 0) or
 * fraud-model-v<N>.meta.json (meta = 1); 0 when the name is neither. */
static unsigned name_version(const char *name, int meta)
{
    size_t pl = sizeof(FILE_PREFIX) - 1;
    if (strncmp(name, FILE_PREFIX, pl) != 0) {
        return 0;
    }
    const char *p = name + pl;
    unsigned long v = 0;
    size_t digits = 0;
    while (p[digits] >= '0' && p[digits] <= '9' && digits < 9) {
        v = v * 10 + (unsigned long)(p[digits] - '0');
        digits++;
    }
    if (digits == 0 || p[0] == '0') {
        return 0;
    }
    return strcmp(p + digits, meta ? ".meta.json" : ".json") == 0 ? (unsigned)v : 0;
}

/* The highest version of model files (*model) and of either kind (*any). */
static int scan_versions(const char *dir, unsigned *model, unsigned *any)
{
    DIR *dh = opendir(dir);
    if (dh == NULL) {
        return errno == ENOENT ? UMG_ENOENT : UMG_EIO;
    }
    *model = *any = 0;
    struct dirent *e;
    while ((e = readdir(dh)) != NULL) {
        unsigned v = name_version(e->d_name, 0), vm = name_version(e->d_name, 1);
        *model = UMG_MAX(*model, v);
        *any = UMG_MAX(*any, UMG_MAX(v, vm));
    }
    closedir(dh);
    return UMG_OK;
}

int umg_fmodel_latest(const char *dir, char *path, size_t cap)
{
    unsigned v, any;
    if (dir == NULL || path == NULL) {
        return UMG_EINVAL;
    }
    int rc = scan_versions(dir, &v, &any);
    if (rc != UMG_OK) {
        return rc;
    }
    if (v == 0) {
        return UMG_ENOENT;
    }
    int len = snprintf(path, cap, "%s/" FILE_PREFIX "%u.json", dir, v);
    return len < 0 || (size_t)len >= cap ? UMG_ERANGE : UMG_OK;
}

/* Writes path from a temporary file, linked into place only when path does
 * not exist yet (UMG_EEXIST then). */
static int write_new_file(const char *path, const void *data, size_t len)
{
    char tmp[4096];
    uint32_t nonce;
    umg_random_bytes(&nonce, sizeof(nonce));
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld.%08x", path, (long)getpid(), (unsigned)nonce);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        return UMG_ERANGE;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        return UMG_EIO;
    }
    int ok = umg_write_all(fd, data, len) == 0 && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    int rc = UMG_OK;
    if (!ok) {
        rc = errno == ENOSPC ? UMG_ENOSPC : UMG_EIO;
    } else if (link(tmp, path) != 0) {
        rc = errno == EEXIST ? UMG_EEXIST : UMG_EIO;
    }
    unlink(tmp);
    return rc;
}

static int json_double(umg_buf_t *b, double v)
{
    return isfinite(v) ? umg_buf_printf(b, "%.17g", v) : umg_buf_append(b, "null", 4);
}

/* The metrics written to and read from the metadata, by name. */
enum { MF_U64, MF_DOUBLE, MF_INT };
typedef struct mfield_s {
    const char *name;
    size_t off;
    int kind;
} mfield_t;

#define MF(f, k)                                                                                                       \
    {                                                                                                                  \
#f, offsetof(umg_fmodel_metrics_t, f), k                                                                       \
    }
static const mfield_t mfields[] = {
    MF(n_train, MF_U64),
    MF(n_holdout, MF_U64),
    MF(pos_train, MF_U64),
    MF(pos_holdout, MF_U64),
    MF(auc, MF_DOUBLE),
    MF(threshold, MF_DOUBLE),
    MF(precision, MF_DOUBLE),
    MF(recall, MF_DOUBLE),
    MF(f1, MF_DOUBLE),
    MF(tp, MF_U64),
    MF(fp, MF_U64),
    MF(fn, MF_U64),
    MF(tn, MF_U64),
    MF(target_precision, MF_DOUBLE),
    MF(threshold_at_target, MF_DOUBLE),
    MF(recall_at_target, MF_DOUBLE),
    MF(scale_pos_weight, MF_DOUBLE),
    MF(rounds, MF_INT),
    MF(max_depth, MF_INT),
    MF(eta, MF_DOUBLE),
};

static int meta_write(const umg_fmodel_t *m, unsigned version, umg_buf_t *b)
{
    char ts[32];
    int maj, min, pat;
    umg_time_format_rfc3339(umg_now_us(), ts);
    XGBoostVersion(&maj, &min, &pat);
    int rc = umg_buf_printf(b,
                            "{\n  \"format\": \"" META_FORMAT "\",\n  \"format_version\": 1,\n  \"version\": %u,\n"
                            "  \"model_file\": \"" FILE_PREFIX "%u.json\",\n  \"created_at\": \"%s\",\n"
                            "  \"xgboost_version\": \"%d.%d.%d\",\n  \"objective\": \"binary:logistic\",\n"
                            "  \"seed\": %llu,\n  \"nthread\": %d,\n  \"nf\": %zu,\n  \"feature_names\": [",
                            version, version, ts, maj, min, pat, (unsigned long long)m->seed, m->nthread, m->nf);
    for (size_t i = 0; i < m->nf && rc == UMG_OK; i++) {
        rc = umg_buf_printf(b, "%s\"%s\"", i ? ", " : "", m->names[i]);
    }
    rc = rc == UMG_OK ? umg_buf_printf(b, "],\n  \"metrics\": {") : rc;
    for (size_t i = 0; i < UMG_ARRAY_SIZE(mfields) && rc == UMG_OK; i++) {
        const char *p = (const char *)&m->metrics + mfields[i].off;
        rc = umg_buf_printf(b, "%s\n    \"%s\": ", i ? "," : "", mfields[i].name);
        if (rc == UMG_OK && mfields[i].kind == MF_U64) {
            rc = umg_buf_u64(b, *(const uint64_t *)(const void *)p);
        } else if (rc == UMG_OK && mfields[i].kind == MF_INT) {
            rc = umg_buf_i64(b, *(const int *)(const void *)p);
        } else if (rc == UMG_OK) {
            rc = json_double(b, *(const double *)(const void *)p);
        }
    }
    rc = rc == UMG_OK ? umg_buf_printf(b, "\n  }") : rc;
    if (m->metrics.has_gain) {
        rc = rc == UMG_OK ? umg_buf_printf(b, ",\n  \"gain\": {") : rc;
        for (size_t i = 0; i < m->nf && rc == UMG_OK; i++) {
            rc = umg_buf_printf(b, "%s\n    \"%s\": ", i ? "," : "", m->names[i]);
            rc = rc == UMG_OK ? json_double(b, m->metrics.gain[i]) : rc;
        }
        rc = rc == UMG_OK ? umg_buf_printf(b, "\n  }") : rc;
    }
    return rc == UMG_OK ? umg_buf_printf(b, "\n}\n") : rc;
}

int umg_fmodel_save(umg_fmodel_t *m, const char *dir, char *path_out, size_t cap)
{
    int rc;
    umg_buf_t model = {0}, meta = {0};
    char mpath[4096], path[4096];
    bst_ulong len;
    const char *buf;
    unsigned vmodel, vany, v = 0;

    if (m == NULL || dir == NULL || dir[0] == '\0' || m->booster == NULL) {
        return UMG_EINVAL;
    }
    if ((rc = umg_mkdirs(dir, 0755)) != UMG_OK) {
        return rc;
    }
    if (XGBoosterSaveModelToBuffer(m->booster, "{\"format\": \"json\"}", &len, &buf) != 0) {
        return UMG_EIO;
    }
    if ((rc = umg_buf_append(&model, buf, len)) != UMG_OK || (rc = scan_versions(dir, &vmodel, &vany)) != UMG_OK) {
        goto fail;
    }
    /* Claim the next version with the metadata; a concurrent saver that took
     * it first makes us try the one after. */
    for (unsigned attempt = 0; attempt < 64; attempt++) {
        v = vany + 1 + attempt;
        int a = snprintf(mpath, sizeof(mpath), "%s/" FILE_PREFIX "%u.meta.json", dir, v);
        int b = snprintf(path, sizeof(path), "%s/" FILE_PREFIX "%u.json", dir, v);
        if (a < 0 || (size_t)a >= sizeof(mpath) || b < 0 || (size_t)b >= sizeof(path) ||
            (path_out != NULL && (size_t)b >= cap)) {
            rc = UMG_ERANGE;
            goto fail;
        }
        umg_buf_reset(&meta);
        if ((rc = meta_write(m, v, &meta)) != UMG_OK) {
            goto fail;
        }
        rc = write_new_file(mpath, meta.ptr, meta.len);
        if (rc != UMG_EEXIST) {
            break;
        }
    }
    if (rc != UMG_OK) {
        goto fail;
    }
    rc = write_new_file(path, model.ptr, model.len);
    if (rc != UMG_OK) {
        unlink(mpath);
        goto fail;
    }
    if (umg_fsync_dir(dir) != 0) {
        rc = UMG_EIO;
        goto fail;
    }
    m->version = v;
    if (path_out != NULL) {
        strcpy(path_out, path);
    }
fail:
    umg_buf_free(&model);
    umg_buf_free(&meta);
    return rc;
}

static int read_file(const char *path, umg_buf_t *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return errno == ENOENT ? UMG_ENOENT : UMG_EIO;
    }
    int rc = UMG_OK;
    for (;;) {
        if ((rc = umg_buf_reserve(out, 65536)) != UMG_OK) {
            break;
        }
        ssize_t r = read(fd, out->ptr + out->len, 65536);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            rc = r < 0 ? UMG_EIO : UMG_OK;
            break;
        }
        out->len += (size_t)r;
    }
    close(fd);
    return rc;
}

typedef struct names_ctx_s {
    umg_fmodel_t *m;
    int bad;
} names_ctx_t;

static int meta_name_cb(void *ctx, size_t i, umg_json_val_t v)
{
    names_ctx_t *c = ctx;
    const char *s;
    size_t len;
    if (i >= c->m->nf || umg_json_get_string(v, &s, &len) != UMG_JSON_OK || len == 0 || len > UMG_FMODEL_NAME_MAX) {
        c->bad = 1;
        return 1;
    }
    memcpy(c->m->names[i], s, len);
    c->m->names[i][len] = '\0';
    if (!name_ok(c->m->names[i])) {
        c->bad = 1;
        return 1;
    }
    return 0;
}

static int meta_gain_cb(void *ctx, const char *key, size_t klen, umg_json_val_t v)
{
    umg_fmodel_t *m = ctx;
    uint16_t f;
    double d;
    if (split_feature(m, key, klen, &f) != UMG_OK || umg_json_get_double(v, &d) != UMG_JSON_OK) {
        return 1;
    }
    m->metrics.gain[f] = d;
    return 0;
}

/* Reads the metrics object; fields missing or null stay NaN / 0. */
static void meta_metrics(umg_fmodel_t *m, umg_json_val_t root)
{
    umg_json_val_t mo, v;
    if (umg_json_object_find(root, "metrics", 7, &mo) == UMG_JSON_OK) {
        for (size_t i = 0; i < UMG_ARRAY_SIZE(mfields); i++) {
            char *p = (char *)&m->metrics + mfields[i].off;
            double d = NAN;
            if (umg_json_object_find(mo, mfields[i].name, strlen(mfields[i].name), &v) == UMG_JSON_OK) {
                umg_json_get_double(v, &d);
            }
            if (mfields[i].kind == MF_U64) {
                *(uint64_t *)(void *)p = d >= 0 && d < 1.8e19 ? (uint64_t)d : 0;
            } else if (mfields[i].kind == MF_INT) {
                *(int *)(void *)p = d >= 0 && d < 1e9 ? (int)d : 0;
            } else {
                *(double *)(void *)p = d;
            }
        }
    }
    if (umg_json_object_find(root, "gain", 4, &v) == UMG_JSON_OK && umg_json_object_foreach(v, meta_gain_cb, m) == 0) {
        m->metrics.has_gain = 1;
    }
}

/* Parses the metadata of version v into m (nf, names, metrics). */
static int meta_read(umg_fmodel_t *m, const char *mpath, unsigned v, umg_json_parser_t *p, char *msg, size_t cap)
{
    umg_buf_t b = {0};
    umg_json_val_t root, val;
    const char *s;
    size_t len;
    double d;
    int rc = read_file(mpath, &b);
    if (rc != UMG_OK) {
        rc = msgf(msg, cap, rc, "cannot read the model's metadata %s: %s", mpath, umg_strerror(rc));
        goto fail;
    }
    umg_json_err_t je = umg_json_parse(p, b.ptr, b.len, &root);
    if (je == UMG_JSON_ENOMEM) {
        rc = UMG_ENOMEM;
        goto fail;
    }
    rc = msgf(msg, cap, UMG_ECORRUPT, "the metadata %s is not a fraud model's", mpath);
    if (je != UMG_JSON_OK || umg_json_object_find(root, "format", 6, &val) != UMG_JSON_OK ||
        umg_json_get_string(val, &s, &len) != UMG_JSON_OK || len != sizeof(META_FORMAT) - 1 ||
        memcmp(s, META_FORMAT, len) != 0) {
        goto fail;
    }
    if (json_num(root, "version", &d) != UMG_OK || d != v) {
        rc = msgf(msg, cap, UMG_ECORRUPT, "the metadata %s does not say version %u", mpath, v);
        goto fail;
    }
    if (json_num(root, "nf", &d) != UMG_OK || !(d >= 1 && d <= UMG_FMODEL_MAX_NF) ||
        umg_json_object_find(root, "feature_names", 13, &val) != UMG_JSON_OK || umg_json_array_size(val) != (size_t)d) {
        rc = msgf(msg, cap, UMG_ECORRUPT, "the metadata %s has no valid nf and feature_names", mpath);
        goto fail;
    }
    m->nf = (size_t)d;
    m->names = umg_calloc(m->nf, sizeof(*m->names));
    if (m->names == NULL) {
        rc = UMG_ENOMEM;
        goto fail;
    }
    names_ctx_t nc = {m, 0};
    if (umg_json_array_foreach(val, meta_name_cb, &nc) != 0 || nc.bad) {
        rc = msgf(msg, cap, UMG_ECORRUPT, "the metadata %s has an invalid feature name", mpath);
        goto fail;
    }
    if (json_num(root, "seed", &d) == UMG_OK && d >= 0) {
        m->seed = (uint64_t)d;
    }
    if (json_num(root, "nthread", &d) == UMG_OK && d >= 1 && d <= 64) {
        m->nthread = (int)d;
    }
    meta_metrics(m, root);
    rc = UMG_OK;
fail:
    umg_buf_free(&b);
    return rc;
}

/* Refuses a model whose features are not the caller's. */
static int features_match(const umg_fmodel_t *m, size_t nf, const char *const *names, char *msg, size_t cap)
{
    if (nf != m->nf) {
        return msgf(msg, cap, UMG_EINVAL, "the model has %zu features, the caller computes %zu: retrain the model",
                    m->nf, nf);
    }
    for (size_t i = 0; i < nf; i++) {
        if (names == NULL || names[i] == NULL || strcmp(names[i], m->names[i]) != 0) {
            return msgf(msg, cap, UMG_EINVAL,
                        "feature %zu is \"%s\" in the model but \"%s\" in the caller: retrain the model", i,
                        m->names[i], names != NULL && names[i] != NULL ? names[i] : "(none)");
        }
    }
    return UMG_OK;
}

/* Checks that the booster has the metadata's feature count (and names, when it kept them). */
static int booster_matches(umg_fmodel_t *m, const char *path, char *msg, size_t cap)
{
    bst_ulong nfeat, len;
    const char **fn;
    if (XGBoosterGetNumFeature(m->booster, &nfeat) != 0) {
        return msgf(msg, cap, UMG_ECORRUPT, "the model file %s has no feature count (xgboost: %s)", path,
                    XGBGetLastError());
    }
    if (nfeat != m->nf) {
        return msgf(msg, cap, UMG_ECORRUPT, "the model file %s has %lu features, its metadata %zu", path,
                    (unsigned long)nfeat, m->nf);
    }
    if (XGBoosterGetStrFeatureInfo(m->booster, "feature_name", &len, &fn) != 0) {
        return msgf(msg, cap, UMG_EIO, "xgboost: %s", XGBGetLastError());
    }
    for (bst_ulong i = 0; i < len; i++) {
        if (len != m->nf || strcmp(fn[i], m->names[i]) != 0) {
            return msgf(msg, cap, UMG_ECORRUPT, "the feature names of %s differ from its metadata", path);
        }
    }
    return UMG_OK;
}

int umg_fmodel_load(const char *path, size_t expect_nf, const char *const *expect_names, umg_fmodel_t **out, char *msg,
                    size_t cap)
{
    int rc;
    size_t msglen = cap;
    umg_fmodel_t *m = NULL;
    umg_json_parser_t *p = NULL;
    char mpath[4096];

    if (path == NULL || out == NULL) {
        return msgf(msg, cap, UMG_EINVAL, "no model path given");
    }
    const char *base = strrchr(path, '/');
    base = base != NULL ? base + 1 : path;
    unsigned v = name_version(base, 0);
    size_t plen = strlen(path);
    if (v == 0 || plen + 6 >= sizeof(mpath)) {
        return msgf(msg, cap, UMG_EINVAL, "%s is not named " FILE_PREFIX "<N>.json", path);
    }
    memcpy(mpath, path, plen - 5);
    strcpy(mpath + plen - 5, ".meta.json");
    if (access(path, R_OK) != 0) {
        return msgf(msg, cap, errno == ENOENT ? UMG_ENOENT : UMG_EIO, "cannot read the model %s: %s", path,
                    strerror(errno));
    }
    m = umg_calloc(1, sizeof(*m));
    if (m == NULL || umg_json_parser_new(JSON_MAX, &p) != UMG_JSON_OK) {
        rc = UMG_ENOMEM;
        goto fail;
    }
    m->nthread = 1;
    if ((rc = meta_read(m, mpath, v, p, msg, cap)) != UMG_OK ||
        (rc = features_match(m, expect_nf, expect_names, msg, cap)) != UMG_OK) {
        goto fail;
    }
    XGB_TRY(XGBoosterCreate(NULL, 0, &m->booster));
    XGB_TRY(XGBoosterLoadModel(m->booster, path));
    XGB_TRY(XGBoosterSetParam(m->booster, "nthread", "1"));
    if ((rc = booster_matches(m, path, msg, cap)) != UMG_OK || (rc = evaluator_build(m, msg, cap)) != UMG_OK ||
        (rc = evaluator_check(m, msg, cap)) != UMG_OK) {
        goto fail;
    }
    m->version = v;
    *out = m;
    m = NULL;
fail:
    umg_json_parser_free(p);
    umg_fmodel_free(m);
    return rc;
}
