/*
 * fuzz_tzif.c - feeds arbitrary bytes to the TZif reader (umg_tz_parse) and,
 * as text, to the POSIX TZ rule parser (umg_tz_parse_posix). A zone that
 * parses is then asked for offsets, local days and day starts around a few
 * instants (1900, 1970, now, 2100 and beyond the rule table, 3000), which
 * must stay inside RFC 8536's offset bounds and agree with each other:
 * the instant a day starts at is in that day or later, the one before it is
 * not. Nothing may crash, hang or leak.
 *
 *   build: meson setup build-fuzz -Dfuzz=true (clang); run on a copy of the
 *   seeds (libFuzzer writes into its corpus directory):
 *   cp -r tests/fuzz/corpus/tzif /tmp/tzif && build-fuzz/tests/fuzz/fuzz_tzif /tmp/tzif
 */
#include <stdlib.h>

#include "umg_core.h"

#define US INT64_C(1000000)

static const int64_t instants[] = {
    INT64_C(-2208988800), /* 1900-01-01 */
    0,
    INT64_C(1795773600),  /* 2026-11-27 */
    INT64_C(4108690800),  /* 2100-03-14 */
    INT64_C(7289654400),  /* 2201-01-01, past the rule table */
    INT64_C(32503680000), /* 3000-01-01 */
};

static void check(const umg_tz_t *tz)
{
    for (size_t i = 0; i < UMG_ARRAY_SIZE(instants); i++) {
        int64_t t = instants[i];
        int32_t off = umg_tz_offset(tz, t);
        if (off < -89999 || off > 93599) {
            abort();
        }
        int32_t day = umg_tz_day(tz, t * US);
        if (day != (int32_t)((t + off - (((t + off) % 86400 + 86400) % 86400)) / 86400)) {
            abort();
        }
        for (int32_t d = day - 1; d <= day + 1; d++) {
            int64_t start = umg_tz_day_start(tz, d);
            if (umg_tz_day(tz, start) < d || umg_tz_day(tz, start - 1) >= d) {
                abort();
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    umg_tz_t *tz = NULL;
    if (umg_tz_parse("fuzz", data, size, &tz) == UMG_OK) {
        check(tz);
        umg_tz_free(tz);
    }
    tz = NULL;
    if (size <= 256 && umg_tz_parse_posix("fuzz", umg_slice((const char *)data, size), &tz) == UMG_OK) {
        check(tz);
        umg_tz_free(tz);
    }
    return 0;
}
