/*
 * mta.c - owns the multi-touch credit models over conversion paths: the
 * rule-based ones (first, last, linear, time decay, position), the
 * first-order Markov chain with removal effects, and the Shapley value
 * (exact up to a number of channels, sampled with a seeded generator above).
 *
 * Pure functions: paths in, credit per channel out. Scratch memory comes from
 * umg_malloc and is released before returning. The same paths in the same
 * order with the same seed give the same bits; another order of the paths
 * changes at most the rounding of sums (the Markov chain itself is built in a
 * canonical order).
 */
#include <math.h>
#include <stdlib.h>

#include "umg_attr.h"

#define SHAPLEY_EXACT_CAP 20

void umg_mta_opts_default(umg_mta_opts_t *o)
{
    *o = (umg_mta_opts_t){
        .half_life_us = INT64_C(7) * 86400 * 1000000,
        .shapley_exact_max = 15,
        .shapley_samples = 2000,
        .seed = 1,
        .shapley_game = UMG_MTA_SHAPLEY_RATE,
    };
}

static const char *const model_names[UMG_MTA_MODELS] = {"first",    "last",   "linear", "time_decay",
                                                        "position", "markov", "shapley"};

int umg_mta_model_parse(umg_slice_t s, umg_mta_model_t *out)
{
    for (int m = 0; m < UMG_MTA_MODELS; m++) {
        if (umg_slice_eq(s, model_names[m])) {
            *out = (umg_mta_model_t)m;
            return UMG_OK;
        }
    }
    return UMG_EINVAL;
}

const char *umg_mta_model_name(umg_mta_model_t m)
{
    return (unsigned)m < UMG_MTA_MODELS ? model_names[m] : "unknown";
}

/* A deterministic generator (splitmix64): the same seed gives the same samples everywhere. */
static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static int converting(const umg_mta_path_t *p)
{
    return p->converted && p->n > 0 && p->value > 0;
}

static int validate(umg_mta_model_t model, const umg_mta_opts_t *o, const umg_mta_path_t *paths, size_t np,
                    uint32_t nch)
{
    if ((unsigned)model >= UMG_MTA_MODELS || (paths == NULL && np > 0) || o->half_life_us <= 0 ||
        (unsigned)o->shapley_game > UMG_MTA_SHAPLEY_SUBSET) {
        return UMG_EINVAL;
    }
    for (size_t i = 0; i < np; i++) {
        const umg_mta_path_t *p = &paths[i];
        if (p->n > 0 && p->ch == NULL) {
            return UMG_EINVAL;
        }
        if (p->converted && (!isfinite(p->value) || p->value < 0)) {
            return UMG_EINVAL;
        }
        if (model == UMG_MTA_TIME_DECAY && p->converted && p->n > 0 && p->ts_us == NULL) {
            return UMG_EINVAL;
        }
        for (uint32_t j = 0; j < p->n; j++) {
            if (p->ch[j] >= nch) {
                return UMG_EINVAL;
            }
        }
    }
    return UMG_OK;
}

/* ------------------------------------------------------------ rule-based */

/*
 * Time decay: weight 2^(-(conversion - touch)/half_life), normalised per path.
 * The conversion time is a common factor of every weight and cancels, so
 * weights are taken relative to the path's latest touch, which keeps them at
 * or below 1 and never all underflowing.
 */
static void credit_time_decay(const umg_mta_path_t *p, double half_life, double *acc)
{
    int64_t latest = p->ts_us[0];
    for (uint32_t j = 1; j < p->n; j++) {
        latest = UMG_MAX(latest, p->ts_us[j]);
    }
    double sum = 0;
    for (uint32_t j = 0; j < p->n; j++) {
        sum += exp2(-(double)(latest - p->ts_us[j]) / half_life);
    }
    for (uint32_t j = 0; j < p->n; j++) {
        acc[p->ch[j]] += p->value * exp2(-(double)(latest - p->ts_us[j]) / half_life) / sum;
    }
}

static void credit_position(const umg_mta_path_t *p, double *acc)
{
    uint32_t n = p->n;
    if (n == 1) {
        acc[p->ch[0]] += p->value;
    } else if (n == 2) {
        acc[p->ch[0]] += p->value * 0.5;
        acc[p->ch[1]] += p->value * 0.5;
    } else {
        acc[p->ch[0]] += p->value * 0.4;
        acc[p->ch[n - 1]] += p->value * 0.4;
        for (uint32_t j = 1; j + 1 < n; j++) {
            acc[p->ch[j]] += p->value * 0.2 / (double)(n - 2);
        }
    }
}

static void credit_rules(umg_mta_model_t model, const umg_mta_opts_t *o, const umg_mta_path_t *paths, size_t np,
                         double *acc)
{
    for (size_t i = 0; i < np; i++) {
        const umg_mta_path_t *p = &paths[i];
        if (!converting(p)) {
            continue;
        }
        switch (model) {
        case UMG_MTA_FIRST: acc[p->ch[0]] += p->value; break;
        case UMG_MTA_LAST: acc[p->ch[p->n - 1]] += p->value; break;
        case UMG_MTA_LINEAR:
            for (uint32_t j = 0; j < p->n; j++) {
                acc[p->ch[j]] += p->value / (double)p->n;
            }
            break;
        case UMG_MTA_TIME_DECAY: credit_time_decay(p, (double)o->half_life_us, acc); break;
        case UMG_MTA_POSITION: credit_position(p, acc); break;
        default: break;
        }
    }
}

/* ------------------------------------------------------------------ Markov */

/*
 * States: 0 = start, 1 + c = channel c, nch + 1 = conversion, nch + 2 = null.
 * Transition counts are gathered in an open-addressing table keyed by
 * from * nstates + to, then sorted, so the chain (and every float computed
 * from it) is the same whatever the order of the paths.
 */
typedef struct edge_s {
    uint64_t key; /* from * nstates + to, + 1 (0 = empty slot) */
    double count;
} edge_t;

typedef struct edges_s {
    edge_t *slot;
    size_t cap, used;
} edges_t;

static int edges_add(edges_t *t, uint64_t key)
{
    if ((t->used + 1) * 2 > t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 1024;
        edge_t *ns = umg_calloc(ncap, sizeof(*ns));
        if (ns == NULL) {
            return UMG_ENOMEM;
        }
        for (size_t i = 0; i < t->cap; i++) {
            if (t->slot[i].key != 0) {
                size_t h = (size_t)(t->slot[i].key * UINT64_C(0x9e3779b97f4a7c15) >> 20) & (ncap - 1);
                while (ns[h].key != 0) {
                    h = (h + 1) & (ncap - 1);
                }
                ns[h] = t->slot[i];
            }
        }
        umg_free(t->slot);
        t->slot = ns;
        t->cap = ncap;
    }
    key += 1;
    size_t h = (size_t)(key * UINT64_C(0x9e3779b97f4a7c15) >> 20) & (t->cap - 1);
    while (t->slot[h].key != 0 && t->slot[h].key != key) {
        h = (h + 1) & (t->cap - 1);
    }
    if (t->slot[h].key == 0) {
        t->slot[h].key = key;
        t->used++;
    }
    t->slot[h].count += 1;
    return UMG_OK;
}

static int edge_cmp(const void *a, const void *b)
{
    uint64_t x = ((const edge_t *)a)->key, y = ((const edge_t *)b)->key;
    return x < y ? -1 : x > y;
}

typedef struct chain_s {
    size_t nstates;
    size_t *first; /* CSR: out-edges of state s are [first[s], first[s + 1]) */
    uint32_t *to;
    double *prob;
} chain_t;

static void chain_free(chain_t *c)
{
    umg_free(c->first);
    umg_free(c->to);
    umg_free(c->prob);
}

static int chain_build(const umg_mta_path_t *paths, size_t np, uint32_t nch, chain_t *c)
{
    const uint64_t ns = (uint64_t)nch + 3, conv = nch + 1u, null = nch + 2u;
    edges_t t = {0};
    int rc = UMG_OK;
    for (size_t i = 0; i < np && rc == UMG_OK; i++) {
        const umg_mta_path_t *p = &paths[i];
        if (p->n == 0) {
            continue;
        }
        uint64_t from = 0;
        for (uint32_t j = 0; j < p->n && rc == UMG_OK; j++) {
            rc = edges_add(&t, from * ns + 1 + p->ch[j]);
            from = 1 + (uint64_t)p->ch[j];
        }
        if (rc == UMG_OK) {
            rc = edges_add(&t, from * ns + (converting(p) ? conv : null));
        }
    }
    size_t ne = 0;
    for (size_t i = 0; i < t.cap; i++) {
        if (t.slot[i].key != 0) {
            t.slot[ne++] = t.slot[i];
        }
    }
    c->nstates = (size_t)ns;
    c->first = umg_calloc((size_t)ns + 1, sizeof(size_t));
    c->to = umg_malloc((ne ? ne : 1) * sizeof(uint32_t));
    c->prob = umg_malloc((ne ? ne : 1) * sizeof(double));
    if (rc != UMG_OK || c->first == NULL || c->to == NULL || c->prob == NULL) {
        umg_free(t.slot);
        chain_free(c);
        return UMG_ENOMEM;
    }
    if (ne > 0) {
        qsort(t.slot, ne, sizeof(edge_t), edge_cmp);
    }
    for (size_t e = 0; e < ne; e++) {
        uint64_t k = t.slot[e].key - 1;
        c->first[k / ns + 1]++;
        c->to[e] = (uint32_t)(k % ns);
    }
    for (size_t s = 0; s < ns; s++) {
        c->first[s + 1] += c->first[s];
    }
    for (size_t s = 0; s < ns; s++) {
        double out = 0;
        for (size_t e = c->first[s]; e < c->first[s + 1]; e++) {
            out += t.slot[e].count;
        }
        for (size_t e = c->first[s]; e < c->first[s + 1]; e++) {
            c->prob[e] = t.slot[e].count / out;
        }
    }
    umg_free(t.slot);
    return UMG_OK;
}

/*
 * The probability of reaching conversion from start, with state `removed`
 * (0 for none) turned into a dead end. Gauss-Seidel sweeps over the linear
 * system p(s) = sum_t P(s, t) p(t), p(conv) = 1, p(null) = p(removed) = 0; the
 * chain is absorbing, so it converges (exactly, in as many sweeps as the
 * longest path, when the chain has no cycles).
 */
static double conv_prob(const chain_t *c, size_t removed, double *p)
{
    size_t conv = c->nstates - 2;
    memset(p, 0, c->nstates * sizeof(double));
    p[conv] = 1;
    for (int sweep = 0; sweep < 100000; sweep++) {
        double delta = 0;
        for (size_t s = conv; s-- > 0;) {
            if (s == removed && removed != 0) {
                continue;
            }
            double v = 0;
            for (size_t e = c->first[s]; e < c->first[s + 1]; e++) {
                v += c->prob[e] * p[c->to[e]];
            }
            delta = UMG_MAX(delta, fabs(v - p[s]));
            p[s] = v;
        }
        if (delta <= 1e-15) {
            break;
        }
    }
    return p[0];
}

static int credit_markov(const umg_mta_path_t *paths, size_t np, uint32_t nch, double total, double *acc)
{
    chain_t c = {0};
    int rc = chain_build(paths, np, nch, &c);
    if (rc != UMG_OK) {
        return rc;
    }
    double *p = umg_malloc(c.nstates * sizeof(double));
    double *re = umg_calloc(nch ? nch : 1, sizeof(double));
    if (p == NULL || re == NULL) {
        rc = UMG_ENOMEM;
        goto done;
    }
    double base = conv_prob(&c, 0, p), sum = 0;
    if (base <= 0) {
        goto done;
    }
    for (uint32_t ch = 0; ch < nch; ch++) {
        if (c.first[ch + 1] == c.first[ch + 2]) {
            continue; /* never seen: no out-edges, removal changes nothing */
        }
        re[ch] = UMG_MAX(0.0, 1.0 - conv_prob(&c, ch + 1, p) / base);
        sum += re[ch];
    }
    for (uint32_t ch = 0; ch < nch && sum > 0; ch++) {
        acc[ch] = total * re[ch] / sum;
    }
done:
    umg_free(p);
    umg_free(re);
    chain_free(&c);
    return rc;
}

/* ----------------------------------------------------------------- Shapley */

/*
 * Coalitions are the sets of distinct channels of the journeys, over the k
 * channels that occur (mapped to 0..k-1 in channel order). Both games are
 * built from per-coalition sums: value(T) and count(T) over the journeys whose
 * channel set is exactly T. RATE: v(S) = sum value(T) / sum count(T) over
 * T inside S (the empty set included: journeys with no touch are inside every
 * S). SUBSET: v(S) = sum value(T) over converting T inside S.
 *
 * Exact (k small): coalitions are bit masks, the sums over subsets come from
 * one subset-sum (zeta) transform, then the Shapley formula runs over all
 * 2^k masks. Sampled (RATE only): for a random order of the channels, a
 * coalition T joins the prefix when its last member does, so each order costs
 * O(k + sum |T|).
 */
typedef struct coal_s {
    uint64_t key; /* sum of the members' random keys; 0 = empty slot */
    double value, count;
    uint32_t off, len; /* members in shap_t.pool */
} coal_t;

typedef struct shap_s {
    uint32_t k;
    uint32_t *dense; /* channel -> 0..k-1, or UINT32_MAX */
    uint64_t *ckey;  /* per dense channel */
    double empty_value, empty_count;
    /* exact */
    double *mval, *mcnt;
    /* sampled */
    coal_t *tab;
    size_t cap, used;
    uint32_t *pool;
    size_t npool, pool_cap;
} shap_t;

static uint64_t channel_key(uint32_t d)
{
    uint64_t s = d + UINT64_C(0x5ca1ab1e);
    uint64_t k = splitmix(&s);
    return k ? k : 1;
}

/* Adds a journey's coalition (its distinct dense members, mem[0..len)) to the table. */
static int tab_add(shap_t *sh, uint64_t key, const uint32_t *mem, uint32_t len, double value)
{
    size_t h = (size_t)(key >> 7) & (sh->cap - 1);
    while (sh->tab[h].key != 0 && sh->tab[h].key != key) {
        h = (h + 1) & (sh->cap - 1);
    }
    if (sh->tab[h].key == 0) {
        if (sh->npool + len > sh->pool_cap) {
            size_t ncap = UMG_MAX(sh->pool_cap * 2, sh->npool + len + 1024);
            uint32_t *np = umg_realloc(sh->pool, ncap * sizeof(uint32_t));
            if (np == NULL) {
                return UMG_ENOMEM;
            }
            sh->pool = np;
            sh->pool_cap = ncap;
        }
        memcpy(sh->pool + sh->npool, mem, len * sizeof(uint32_t));
        sh->tab[h] = (coal_t){key, 0, 0, (uint32_t)sh->npool, len};
        sh->npool += len;
        sh->used++;
    }
    sh->tab[h].value += value;
    sh->tab[h].count += 1;
    return UMG_OK;
}

static int shap_alloc(shap_t *sh, size_t np, int exact)
{
    if (exact) {
        size_t m = (size_t)1 << sh->k;
        sh->mval = umg_calloc(m, sizeof(double));
        sh->mcnt = umg_calloc(m, sizeof(double));
        return sh->mval && sh->mcnt ? UMG_OK : UMG_ENOMEM;
    }
    sh->cap = 1024;
    while (sh->cap < np * 2) {
        sh->cap *= 2;
    }
    sh->tab = umg_calloc(sh->cap, sizeof(coal_t));
    sh->ckey = umg_malloc(sh->k * sizeof(uint64_t));
    if (sh->tab == NULL || sh->ckey == NULL) {
        return UMG_ENOMEM;
    }
    for (uint32_t d = 0; d < sh->k; d++) {
        sh->ckey[d] = channel_key(d);
    }
    return UMG_OK;
}

static int shap_collect(shap_t *sh, const umg_mta_path_t *paths, size_t np, uint32_t nch, int exact,
                        umg_mta_shapley_game_t g)
{
    for (size_t i = 0; i < np; i++) {
        for (uint32_t j = 0; j < paths[i].n; j++) {
            sh->dense[paths[i].ch[j]] = 0;
        }
    }
    for (uint32_t c = 0; c < nch; c++) {
        sh->dense[c] = sh->dense[c] == 0 ? sh->k++ : UINT32_MAX;
    }
    int rc = shap_alloc(sh, np, exact);
    uint32_t *mem = umg_malloc((sh->k ? sh->k : 1) * sizeof(uint32_t));
    if (rc != UMG_OK || mem == NULL) {
        umg_free(mem);
        return UMG_ENOMEM;
    }
    for (size_t i = 0; i < np && rc == UMG_OK; i++) {
        const umg_mta_path_t *p = &paths[i];
        /* Converting journeys without a touch belong to v({}), the baseline of the RATE game. */
        double v = p->converted ? p->value : 0;
        if (g == UMG_MTA_SHAPLEY_SUBSET && (v <= 0 || p->n == 0)) {
            continue;
        }
        uint64_t mask = 0, key = 0;
        uint32_t len = 0;
        for (uint32_t j = 0; j < p->n; j++) {
            uint32_t d = sh->dense[p->ch[j]];
            if (exact) {
                mask |= UINT64_C(1) << d;
                continue;
            }
            /* A channel repeated in a journey is one member of its coalition. */
            int seen = 0;
            for (uint32_t q = 0; q < len && !seen; q++) {
                seen = mem[q] == d;
            }
            if (!seen) {
                mem[len++] = d;
                key += sh->ckey[d];
            }
        }
        if (p->n == 0) {
            sh->empty_value += v;
            sh->empty_count += 1;
        } else if (exact) {
            sh->mval[mask] += v;
            sh->mcnt[mask] += 1;
        } else {
            rc = tab_add(sh, key ? key : 1, mem, len, v);
        }
    }
    umg_free(mem);
    return rc;
}

static double rate(double value, double count)
{
    return count > 0 ? value / count : 0;
}

/* Exact: phi_i = sum over S without i of |S|! (k-|S|-1)! / k! (v(S+i) - v(S)). */
static void shap_exact(shap_t *sh, umg_mta_shapley_game_t g, double *phi)
{
    uint32_t k = sh->k;
    size_t m = (size_t)1 << k;
    double *v = sh->mval, *c = sh->mcnt; /* turned into v(S) in place */
    if (g == UMG_MTA_SHAPLEY_RATE) {
        v[0] = sh->empty_value;
        c[0] = sh->empty_count;
    }
    /* Sums over the subsets of every S (zeta transform), one bit at a time. */
    for (uint32_t b = 0; b < k; b++) {
        for (size_t s = 0; s < m; s++) {
            if (s & ((size_t)1 << b)) {
                v[s] += v[s ^ ((size_t)1 << b)];
                c[s] += c[s ^ ((size_t)1 << b)];
            }
        }
    }
    if (g == UMG_MTA_SHAPLEY_RATE) {
        for (size_t s = 0; s < m; s++) {
            v[s] = rate(v[s], c[s]);
        }
    }
    double w[SHAPLEY_EXACT_CAP + 1];
    for (uint32_t s = 0; s < k; s++) {
        /* s! (k-s-1)! / k! = 1 / (k * C(k-1, s)) */
        double binom = 1;
        for (uint32_t j = 1; j <= s; j++) {
            binom = binom * (double)(k - j) / (double)j;
        }
        w[s] = 1.0 / ((double)k * binom);
    }
    for (size_t s = 0; s < m; s++) {
        int size = __builtin_popcountll((unsigned long long)s);
        for (uint32_t i = 0; i < k; i++) {
            if (!(s & ((size_t)1 << i))) {
                phi[i] += w[size] * (v[s | ((size_t)1 << i)] - v[s]);
            }
        }
    }
}

/*
 * Sampled (RATE game): the mean marginal contribution over random orders of
 * the channels (Castro, Gomez and Tejada 2009), from a splitmix64 stream
 * seeded by opts.seed.
 *
 * The orders are drawn one after another, each shuffling the one before, but
 * walked SHAP_LANES at a time: one pass over the coalitions finds a
 * coalition's last member in every order of the block at once (the members'
 * positions sit in 16-bit vector lanes, one lane an order) and adds its value
 * and count to each order's slot. Streaming the coalitions once a block from
 * flat arrays, instead of once an order through the hash table, is what keeps
 * a million journeys over 40 channels within the 2 s. Each order
 * still sums its values over the coalitions in the same sequence, and counts
 * are integers (exact in any order), so the result has the same bits as
 * walking one order at a time.
 */
#define SHAP_LANES 16
typedef int16_t shap_vec_t __attribute__((vector_size(16))); /* 8 lanes */
typedef struct shap_lanes_s {
    shap_vec_t v[SHAP_LANES / 8];
} shap_lanes_t;

/* The coalitions as flat arrays, in the order of the packed table. */
typedef struct shap_flat_s {
    size_t nc;
    uint32_t *mem, *len;
    double *value;
    uint64_t *count;
} shap_flat_t;

static void flat_free(shap_flat_t *f)
{
    umg_free(f->mem);
    umg_free(f->len);
    umg_free(f->value);
    umg_free(f->count);
}

static int shap_flatten(shap_t *sh, shap_flat_t *f)
{
    /* The hash table is no longer needed as one: pack the coalitions at its front. */
    size_t nc = 0;
    for (size_t h = 0; h < sh->cap; h++) {
        if (sh->tab[h].key != 0) {
            sh->tab[nc++] = sh->tab[h];
        }
    }
    f->nc = nc;
    f->mem = umg_malloc((sh->npool ? sh->npool : 1) * sizeof(uint32_t));
    f->len = umg_malloc((nc ? nc : 1) * sizeof(uint32_t));
    f->value = umg_malloc((nc ? nc : 1) * sizeof(double));
    f->count = umg_malloc((nc ? nc : 1) * sizeof(uint64_t));
    if (f->mem == NULL || f->len == NULL || f->value == NULL || f->count == NULL) {
        return UMG_ENOMEM;
    }
    uint32_t *m = f->mem;
    for (size_t h = 0; h < nc; h++) {
        const coal_t *c = &sh->tab[h];
        memcpy(m, sh->pool + c->off, c->len * sizeof(uint32_t));
        m += c->len;
        f->len[h] = c->len;
        f->value[h] = c->value;
        f->count[h] = (uint64_t)c->count; /* a count of journeys: an integer */
    }
    return UMG_OK;
}

static inline shap_vec_t vec_max(shap_vec_t a, shap_vec_t b)
{
    shap_vec_t gt = a > b;
    return (a & gt) | (b & ~gt);
}

/* One pass over the coalitions for a block of orders: addv/addc[position * SHAP_LANES + lane]. */
static void shap_walk(const shap_flat_t *f, const shap_lanes_t *pos, double *addv, uint64_t *addc)
{
    const uint32_t *m = f->mem;
    for (size_t h = 0; h < f->nc; h++) {
        shap_lanes_t mx = {{{0}}};
        for (uint32_t q = 0; q < f->len[h]; q++) {
            for (int w = 0; w < SHAP_LANES / 8; w++) {
                mx.v[w] = vec_max(mx.v[w], pos[m[q]].v[w]);
            }
        }
        m += f->len[h];
        int16_t last[SHAP_LANES];
        memcpy(last, &mx, sizeof(last));
        double v = f->value[h];
        uint64_t c = f->count[h];
#pragma GCC unroll 16
        for (int b = 0; b < SHAP_LANES; b++) {
            size_t slot = (size_t)last[b] * SHAP_LANES + (size_t)b;
            addv[slot] += v;
            addc[slot] += c;
        }
    }
}

/* The same pass for more channels than a 16-bit lane holds: pos32[lane * k + channel], lane after lane. */
static void shap_walk_wide(const shap_flat_t *f, const int32_t *pos32, uint32_t k, double *addv, uint64_t *addc)
{
    for (size_t b = 0; b < SHAP_LANES; b++) {
        const uint32_t *m = f->mem, *p = (const uint32_t *)pos32 + b * k;
        for (size_t h = 0; h < f->nc; h++) {
            uint32_t last = 0;
            for (uint32_t q = 0; q < f->len[h]; q++) {
                last = UMG_MAX(last, p[m[q]]);
            }
            m += f->len[h];
            addv[(size_t)last * SHAP_LANES + b] += f->value[h];
            addc[(size_t)last * SHAP_LANES + b] += f->count[h];
        }
    }
}

/* Draws the next nb orders (each shuffling the running one, cur) into perm and their positions into pos. */
static void shap_draw(uint32_t k, uint32_t nb, uint64_t *rng, uint32_t *cur, uint32_t *perm, shap_lanes_t *pos,
                      int32_t *pos32)
{
    for (uint32_t b = 0; b < nb; b++) {
        for (uint32_t i = k; i > 1; i--) {
            uint32_t j = (uint32_t)(splitmix(rng) % i);
            uint32_t t = cur[i - 1];
            cur[i - 1] = cur[j];
            cur[j] = t;
        }
        memcpy(perm + (size_t)b * k, cur, k * sizeof(uint32_t));
        for (uint32_t j = 0; j < k; j++) {
            if (pos != NULL) {
                pos[cur[j]].v[b / 8][b % 8] = (int16_t)j;
            } else {
                pos32[(size_t)b * k + cur[j]] = (int32_t)j;
            }
        }
    }
}

static int shap_sampled(shap_t *sh, uint32_t samples, uint64_t seed, double *phi)
{
    uint32_t k = sh->k;
    int narrow = k <= INT16_MAX;
    shap_flat_t f = {0};
    uint32_t *perm = umg_malloc((size_t)k * (SHAP_LANES + 1) * sizeof(uint32_t));
    /* Positions start at 0, so lanes past the last order of the final block hold valid ones. */
    void *pos_mem =
        narrow ? umg_calloc((size_t)k + 1, sizeof(shap_lanes_t)) : umg_calloc((size_t)k * SHAP_LANES, sizeof(int32_t));
    double *addv = umg_malloc((size_t)k * SHAP_LANES * sizeof(double));
    uint64_t *addc = umg_malloc((size_t)k * SHAP_LANES * sizeof(uint64_t));
    int rc = UMG_ENOMEM;
    if (perm == NULL || pos_mem == NULL || addv == NULL || addc == NULL || shap_flatten(sh, &f) != UMG_OK) {
        goto done;
    }
    /* Vector lanes want 16-byte alignment, which umg_malloc does not promise. */
    shap_lanes_t *pos = narrow ? (shap_lanes_t *)(((uintptr_t)pos_mem + 15) & ~(uintptr_t)15) : NULL;
    uint32_t *cur = perm + (size_t)k * SHAP_LANES; /* the running order */
    uint64_t rng = seed;
    for (uint32_t i = 0; i < k; i++) {
        cur[i] = i;
    }
    samples = samples ? samples : 1;
    for (uint32_t n0 = 0; n0 < samples; n0 += SHAP_LANES) {
        uint32_t nb = UMG_MIN((uint32_t)SHAP_LANES, samples - n0);
        shap_draw(k, nb, &rng, cur, perm, pos, pos_mem);
        memset(addv, 0, (size_t)k * SHAP_LANES * sizeof(double));
        memset(addc, 0, (size_t)k * SHAP_LANES * sizeof(uint64_t));
        if (narrow) {
            shap_walk(&f, pos, addv, addc);
        } else {
            shap_walk_wide(&f, pos_mem, k, addv, addc);
        }
        for (uint32_t b = 0; b < nb; b++) {
            double cv = sh->empty_value, cc = sh->empty_count, prev = rate(cv, cc);
            for (uint32_t j = 0; j < k; j++) {
                cv += addv[(size_t)j * SHAP_LANES + b];
                cc += (double)addc[(size_t)j * SHAP_LANES + b];
                double r = rate(cv, cc);
                phi[perm[(size_t)b * k + j]] += r - prev;
                prev = r;
            }
        }
    }
    for (uint32_t i = 0; i < k; i++) {
        phi[i] /= (double)samples;
    }
    rc = UMG_OK;
done:
    flat_free(&f);
    umg_free(perm);
    umg_free(pos_mem);
    umg_free(addv);
    umg_free(addc);
    return rc;
}

/* Zhao et al. 2018: the SUBSET game's Shapley value splits each converting
 * journey's value equally among its distinct channels. */
static void shap_subset_closed(const umg_mta_path_t *paths, size_t np, double *acc)
{
    for (size_t i = 0; i < np; i++) {
        const umg_mta_path_t *p = &paths[i];
        if (!converting(p)) {
            continue;
        }
        uint32_t distinct = 0;
        for (uint32_t j = 0; j < p->n; j++) {
            int seen = 0;
            for (uint32_t q = 0; q < j && !seen; q++) {
                seen = p->ch[q] == p->ch[j];
            }
            distinct += !seen;
        }
        for (uint32_t j = 0; j < p->n; j++) {
            int seen = 0;
            for (uint32_t q = 0; q < j && !seen; q++) {
                seen = p->ch[q] == p->ch[j];
            }
            if (!seen) {
                acc[p->ch[j]] += p->value / (double)distinct;
            }
        }
    }
}

static int credit_shapley(const umg_mta_opts_t *o, const umg_mta_path_t *paths, size_t np, uint32_t nch, double total,
                          double *acc)
{
    shap_t sh = {0};
    double *phi = NULL;
    int rc = UMG_ENOMEM;
    sh.dense = umg_malloc((nch ? nch : 1) * sizeof(uint32_t));
    if (sh.dense == NULL) {
        goto done;
    }
    for (uint32_t c = 0; c < nch; c++) {
        sh.dense[c] = UINT32_MAX;
    }
    /* Count the channels that occur first, to choose between exact and sampled. */
    uint32_t k = 0;
    for (size_t i = 0; i < np; i++) {
        for (uint32_t j = 0; j < paths[i].n; j++) {
            k += sh.dense[paths[i].ch[j]] == UINT32_MAX;
            sh.dense[paths[i].ch[j]] = 1;
        }
    }
    for (uint32_t c = 0; c < nch; c++) {
        sh.dense[c] = UINT32_MAX;
    }
    uint32_t exact_max = UMG_MIN(o->shapley_exact_max, (uint32_t)SHAPLEY_EXACT_CAP);
    int exact = k <= exact_max;
    if (!exact && o->shapley_game == UMG_MTA_SHAPLEY_SUBSET) {
        /* Above the exact limit the SUBSET game has a closed form, exact and cheaper than sampling. */
        shap_subset_closed(paths, np, acc);
        rc = UMG_OK;
        goto done;
    }
    rc = shap_collect(&sh, paths, np, nch, exact, o->shapley_game);
    if (rc != UMG_OK) {
        goto done;
    }
    phi = umg_calloc(sh.k ? sh.k : 1, sizeof(double));
    if (phi == NULL) {
        rc = UMG_ENOMEM;
        goto done;
    }
    if (exact) {
        shap_exact(&sh, o->shapley_game, phi);
    } else if ((rc = shap_sampled(&sh, o->shapley_samples, o->seed, phi)) != UMG_OK) {
        goto done;
    }
    /* Scale to the total; a negative value (a channel that lowers the rate) gets nothing. */
    double pos = 0;
    for (uint32_t d = 0; d < sh.k; d++) {
        pos += UMG_MAX(phi[d], 0.0);
    }
    if (pos > 0) {
        for (uint32_t c = 0; c < nch; c++) {
            if (sh.dense[c] != UINT32_MAX) {
                acc[c] = total * UMG_MAX(phi[sh.dense[c]], 0.0) / pos;
            }
        }
    } else {
        /* No channel raises the value in this game: fall back to the equal split. */
        shap_subset_closed(paths, np, acc);
    }
    rc = UMG_OK;
done:
    umg_free(phi);
    umg_free(sh.dense);
    umg_free(sh.ckey);
    umg_free(sh.mval);
    umg_free(sh.mcnt);
    umg_free(sh.tab);
    umg_free(sh.pool);
    return rc;
}

/* ------------------------------------------------------------------- entry */

int umg_mta_credit(umg_mta_model_t model, const umg_mta_opts_t *opts, const umg_mta_path_t *paths, size_t npaths,
                   uint32_t nch, double *credit, double *total)
{
    umg_mta_opts_t o;
    if (opts != NULL) {
        o = *opts;
    } else {
        umg_mta_opts_default(&o);
    }
    if (credit == NULL && nch > 0) {
        return UMG_EINVAL;
    }
    int rc = validate(model, &o, paths, npaths, nch);
    if (rc != UMG_OK) {
        return rc;
    }
    double sum = 0;
    for (size_t i = 0; i < npaths; i++) {
        sum += converting(&paths[i]) ? paths[i].value : 0;
    }
    double *acc = umg_calloc(nch ? nch : 1, sizeof(double));
    if (acc == NULL) {
        return UMG_ENOMEM;
    }
    if (sum > 0) {
        if (model == UMG_MTA_MARKOV) {
            rc = credit_markov(paths, npaths, nch, sum, acc);
        } else if (model == UMG_MTA_SHAPLEY) {
            rc = credit_shapley(&o, paths, npaths, nch, sum, acc);
        } else {
            credit_rules(model, &o, paths, npaths, acc);
        }
    }
    if (rc == UMG_OK) {
        if (nch > 0) {
            memcpy(credit, acc, nch * sizeof(double));
        }
        if (total != NULL) {
            *total = sum;
        }
    }
    umg_free(acc);
    return rc;
}
