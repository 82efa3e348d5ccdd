/*
 * fraud_synth.h - labelled synthetic installs as fraud-model feature
 * vectors (the order of umg_fmodel_feature_names), for the fraud model's
 * unit test and benchmark. Honest installs are organic (no click: CTIT and
 * source rates missing) or attributed with click-to-install times of
 * minutes to hours; fraud is click injection (seconds, clicks after the
 * install began), click flooding (a day or more, sources with a tiny
 * click-to-install rate), device farms (many installs per IP and
 * fingerprint) and bots (bot or empty User-Agents, listed IPs, clock skew).
 * The kinds overlap on purpose (noisy honest rows, 0.5% flipped labels), so
 * a model has something to learn but no single rule is perfect.
 */
#ifndef FRAUD_SYNTH_H
#define FRAUD_SYNTH_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fraud_synth_rng_s {
    uint64_t s;
} fraud_synth_rng_t;

static inline uint64_t fraud_synth_next(fraud_synth_rng_t *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static inline double fraud_synth_u(fraud_synth_rng_t *r)
{
    return (double)(fraud_synth_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

static inline double fraud_synth_normal(fraud_synth_rng_t *r, double mean, double sd)
{
    double u1 = fraud_synth_u(r), u2 = fraud_synth_u(r);
    return mean + sd * sqrt(-2.0 * log(u1 + 1e-300)) * cos(6.283185307179586 * u2);
}

/* A count around exp(N(log(mean), sd)), at least lo. */
static inline float fraud_synth_count(fraud_synth_rng_t *r, double mean, double sd, double lo)
{
    double v = floor(exp(fraud_synth_normal(r, log(mean), sd)));
    return (float)(v < lo ? lo : v);
}

static inline float fraud_synth_bit(fraud_synth_rng_t *r, double p)
{
    return fraud_synth_u(r) < p ? 1.0f : 0.0f;
}

/*
 * Fills X (n x 20, row-major), y (n labels, about 10% fraud) and, when not
 * NULL, day[n] (rows in time order over 7 days, 0..6) from a seed.
 */
static inline void fraud_synth(uint64_t seed, size_t n, float *X, uint8_t *y, uint8_t *day)
{
    fraud_synth_rng_t r = {seed};
    for (size_t i = 0; i < n; i++) {
        float *x = X + i * 20;
        int fraud = fraud_synth_u(&r) < 0.10;
        int kind = fraud ? (int)(fraud_synth_next(&r) % 4) : (fraud_synth_u(&r) < 0.3 ? 4 : 5);
        /* The honest baseline, then each kind changes what it changes. */
        x[0] = (float)fmax(1.2, fraud_synth_normal(&r, 3.0, 0.7));
        x[1] = (float)(1 + fraud_synth_next(&r) % 4);
        x[2] = fraud_synth_count(&r, 1.5, 0.6, 1);
        x[3] = x[2] + fraud_synth_count(&r, 2, 0.8, 0);
        x[4] = fraud_synth_count(&r, 1, 0.5, 0);
        x[5] = x[4] + fraud_synth_count(&r, 2, 0.9, 0);
        x[6] = fraud_synth_count(&r, 1.2, 0.4, 1);
        x[7] = x[6] + fraud_synth_count(&r, 1.5, 0.7, 0);
        x[8] = fraud_synth_count(&r, 1.1, 0.3, 1);
        x[9] = fraud_synth_bit(&r, 0.01);
        x[10] = fraud_synth_bit(&r, 0.03);
        x[11] = (float)(fraud_synth_next(&r) % 24);
        x[12] = (float)(0.02 + 0.28 * fraud_synth_u(&r));
        x[13] = (float)(0.15 * fraud_synth_u(&r));
        x[14] = fraud_synth_bit(&r, 0.005);
        x[15] = fraud_synth_bit(&r, 0.02);
        x[16] = fraud_synth_bit(&r, 0.003);
        x[17] = (float)fraud_synth_normal(&r, 0.5, 0.6);
        x[18] = x[1] == 1 ? 1.0f : 0.0f;
        x[19] = 0;
        switch (kind) {
        case 0: /* click injection */
            x[0] = (float)fraud_synth_normal(&r, 0.7, 0.35);
            x[19] = fraud_synth_bit(&r, 0.4);
            x[1] = (float)(2 + fraud_synth_next(&r) % 2);
            break;
        case 1: /* click flooding */
            x[0] = (float)fraud_synth_normal(&r, 4.9, 0.35);
            x[12] = (float)(0.0005 + 0.012 * fraud_synth_u(&r));
            x[13] = (float)(0.3 + 0.6 * fraud_synth_u(&r));
            x[5] += fraud_synth_count(&r, 20, 0.8, 0);
            break;
        case 2: /* device farm */
            x[6] = fraud_synth_count(&r, 8, 0.7, 2);
            x[7] = x[6] + fraud_synth_count(&r, 6, 0.8, 0);
            x[8] = fraud_synth_count(&r, 6, 0.8, 1);
            x[10] = fraud_synth_bit(&r, 0.3);
            break;
        case 3: /* bots */
            x[16] = fraud_synth_bit(&r, 0.5);
            x[14] = fraud_synth_bit(&r, 0.3);
            x[15] = fraud_synth_bit(&r, 0.6);
            x[17] = (float)fraud_synth_normal(&r, 3.0, 1.0);
            x[2] = fraud_synth_count(&r, 12, 0.9, 1);
            x[3] = x[2] + fraud_synth_count(&r, 30, 0.9, 0);
            x[9] = fraud_synth_bit(&r, 0.4);
            break;
        case 4: /* organic: no click, so no CTIT and no source */
            x[0] = NAN;
            x[1] = 0;
            x[12] = NAN;
            x[13] = NAN;
            x[18] = 0;
            x[2] = x[3] = 0;
            break;
        default: break;
        }
        if (kind == 2 && fraud_synth_u(&r) < 0.5) { /* half the farms look organic */
            x[0] = x[12] = x[13] = NAN;
            x[1] = 0;
        }
        y[i] = (uint8_t)(fraud_synth_u(&r) < 0.005 ? !fraud : fraud);
        if (day != NULL) {
            day[i] = (uint8_t)(i * 7 / n);
        }
    }
}

#endif
