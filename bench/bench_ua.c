/*
 * bench_ua.c - the User-Agent parser behind every probabilistic fingerprint
 * (umg_attr_ua_parse, called by the pipeline for each install, session and
 * event): nanoseconds per parse for the common UA forms, against glibc's
 * strcasestr looking for "android" once in the same string (one search; the
 * parser makes up to a dozen for an iOS UA).
 *
 *   build/bench/bench_ua [MILLIONS]    (default 2: parses per form)
 */
#include "umg_attr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name, *ua;
    } forms[] = {
        {"ios safari", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
                       "Gecko) Version/17.2 Mobile/15E148 Safari/604.1"},
        {"android webview", "Mozilla/5.0 (Linux; Android 13; SM-S918B Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
                            "(KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.43 Mobile Safari/537.36"},
        {"ios app", "MyGame/2.3.1 (iPhone14,2; iOS 17.2.1; Scale/3.00)"},
        {"cfnetwork", "MyGame/412 CFNetwork/1494.0.7 Darwin/23.4.0"},
        {"unknown", "okhttp/4.12.0"},
    };
    long n = (argc > 1 ? atol(argv[1]) : 2) * 1000000L;
    if (n <= 0) {
        fprintf(stderr, "usage: bench_ua [MILLIONS]\n");
        return 2;
    }
    volatile unsigned sink = 0;
    printf("%-16s %10s %16s %7s\n", "form", "ns/parse", "strcasestr ns", "ratio");
    for (size_t f = 0; f < sizeof(forms) / sizeof(forms[0]); f++) {
        umg_slice_t s = umg_slice(forms[f].ua, strlen(forms[f].ua));
        double t0 = now_ns();
        for (long i = 0; i < n; i++) {
            umg_attr_ua_t u;
            if (umg_attr_ua_parse(s, &u) == UMG_OK) {
                sink += u.major;
            }
        }
        double t1 = now_ns();
        for (long i = 0; i < n; i++) {
            sink += strcasestr(forms[f].ua, "android") != NULL;
        }
        double t2 = now_ns();
        double ours = (t1 - t0) / (double)n, base = (t2 - t1) / (double)n;
        printf("%-16s %10.1f %16.1f %6.2fx\n", forms[f].name, ours, base, ours / base);
    }
    return sink == 0xffffffffu;
}
