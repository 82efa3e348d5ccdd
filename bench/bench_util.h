/*
 * bench_util.h - small helpers the benchmarks share.
 */
#ifndef UMG_BENCH_UTIL_H
#define UMG_BENCH_UTIL_H

#include <stdlib.h>

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts v[0..n) in ascending order. */
static inline void bench_sort_doubles(double *v, size_t n)
{
    qsort(v, n, sizeof(double), bench_cmp_double);
}

#endif
