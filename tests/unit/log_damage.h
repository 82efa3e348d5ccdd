/*
 * log_damage.h - for tests: damage one record of a log segment on disk as a
 * disk error would (one payload byte flipped), through the segment's index.
 */
#ifndef UMG_TEST_LOG_DAMAGE_H
#define UMG_TEST_LOG_DAMAGE_H

#include <stdio.h>

#include "umg_log_int.h"

/* Flips bits mask of payload byte at of the index-th record of segment base in logdir. */
static void damage_record(const char logdir[4200], uint64_t base, long index, long at, int mask)
{
    char path[4400]; /* logdir is at most 4200 (the tests' buffers) */
    snprintf(path, sizeof(path), "%s/%020llu.idx", logdir, (unsigned long long)base);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    umg_log_idx_t e;
    assert_int_equal(fseek(f, index * (long)sizeof(e), SEEK_SET), 0);
    assert_int_equal(fread(&e, sizeof(e), 1, f), 1);
    fclose(f);
    snprintf(path, sizeof(path), "%s/%020llu.log", logdir, (unsigned long long)base);
    f = fopen(path, "r+b");
    assert_non_null(f);
    long pos = (long)e.pos + UMG_LOG_HDR + at;
    assert_int_equal(fseek(f, pos, SEEK_SET), 0);
    int c = fgetc(f);
    assert_int_equal(fseek(f, pos, SEEK_SET), 0);
    fputc(c ^ mask, f);
    fclose(f);
}

#endif
