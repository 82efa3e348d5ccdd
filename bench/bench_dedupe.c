/*
 * bench_dedupe.c - the cost of the log writer's dedupe work per new event id,
 * the way the writer does it: ids in batches of 100, each looked up and
 * inserted with a prefetch 8 ids ahead, into a set that starts empty and grows
 * (with its incremental migration) to the given number of ids.
 *
 *   bench_dedupe [million ids] [max ids] [ids/s]     (default 12, unbounded, unpaced)
 *
 * With max ids below the ids inserted (0: unbounded), the set is full for the
 * rest of the run and forgets its oldest ids early (dedupe.max_ids). With ids/s,
 * batches are paced to that rate, as a daemon's writer meets them (its peak is
 * a few hundred thousand events/s): the table for the next growth is made on a
 * helper thread meanwhile, and whether it is ready in time shows in the longest
 * batch. Unpaced, the set grows far faster than a writer's and waits for it.
 * Prints ns per insert (time in the batches), the longest batch of 100 (a stall
 * of the writer shows there) and the ids held; run it under `perf stat -e
 * cycles,page-faults,dTLB-load-misses` to see where the time goes. The ids are
 * random, as server-made v4 UUIDs are.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "umg_dedupe.h"

enum { BATCH = 100, AHEAD = 8 };

int main(int argc, char **argv)
{
    double millions = argc > 1 ? atof(argv[1]) : 12.0;
    if (millions <= 0 || millions > 1000) {
        fprintf(stderr, "million ids must be in (0, 1000]\n");
        return 2;
    }
    uint64_t n = (uint64_t)(millions * 1e6) / BATCH * BATCH;
    uint64_t max_ids = argc > 2 && strtoull(argv[2], NULL, 10) > 0 ? strtoull(argv[2], NULL, 10) : n + 1;
    double rate = argc > 3 ? atof(argv[3]) : 0;
    umg_dedupe_t *d = NULL;
    if (max_ids < 16 || umg_dedupe_new(max_ids, 7ll * 86400 * 1000000, &d) != UMG_OK) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    umg_uuid_t ids[BATCH];
    uint64_t x = 88172645463325252ull;
    int64_t now = umg_now_us();
    uint64_t t0 = umg_mono_ns(), worst = 0, worst_full = 0, busy = 0;
    for (uint64_t k = 0; k < n / BATCH; k++) {
        for (int i = 0; i < BATCH; i++) {
            for (int j = 0; j < 16; j++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                ids[i].b[j] = (uint8_t)x;
            }
        }
        uint64_t b0 = umg_mono_ns();
        for (int i = 0; i < AHEAD; i++) {
            umg_dedupe_prefetch(d, 1, &ids[i]);
        }
        for (int i = 0; i < BATCH; i++) {
            if (i + AHEAD < BATCH) {
                umg_dedupe_prefetch(d, 1, &ids[i + AHEAD]);
            }
            if (umg_dedupe_check_insert(d, 1, &ids[i], now) < 0) {
                fprintf(stderr, "out of memory at %llu ids\n", (unsigned long long)umg_dedupe_count(d));
                return 1;
            }
        }
        uint64_t b = umg_mono_ns() - b0;
        busy += b;
        worst = b > worst ? b : worst;
        if (rate > 0) { /* wait for the batch's turn */
            int64_t ahead = (int64_t)((double)(k + 1) * BATCH / rate * 1e9) - (int64_t)(umg_mono_ns() - t0);
            if (ahead > 0) {
                struct timespec ts = {ahead / 1000000000, ahead % 1000000000};
                nanosleep(&ts, NULL);
            }
        }
        if (umg_dedupe_evicted(d) > 0) { /* full: every batch evicts */
            worst_full = b > worst_full ? b : worst_full;
        }
    }
    double secs = (double)busy / 1e9;
    printf("dedupe insert: %.0f ns per new id, longest batch of %d %.3f ms (%.3f ms once full), %llu ids held, %llu "
           "evicted, %.1f MB\n",
           secs * 1e9 / (double)n, BATCH, (double)worst / 1e6, (double)worst_full / 1e6,
           (unsigned long long)umg_dedupe_count(d), (unsigned long long)umg_dedupe_evicted(d),
           (double)umg_dedupe_memory(d) / 1e6);
    umg_dedupe_free(d);
    return 0;
}
