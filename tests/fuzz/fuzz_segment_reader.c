/*
 * fuzz_segment_reader.c - feeds arbitrary bytes to the record decoder and to
 * the segment scan used by recovery: they must never crash, never read out of
 * bounds, and the scan's valid prefix must decode record by record. The valid
 * prefix followed by zeros (what the writer leaves ahead of its last record in
 * the active segment) must scan to the same prefix and records.
 */
#include "umg_log_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    umg_bus_msg_t m;
    size_t pos = 0;
    while (pos < size) {
        long n = umg__log_decode(data + pos, size - pos, &m);
        if (n <= 0) {
            break;
        }
        pos += (size_t)n;
    }
    static char path[64];
    if (path[0] == '\0') {
        snprintf(path, sizeof(path), "/tmp/umg-fuzz-seg-%d.log", (int)getpid());
    }
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        return 0;
    }
    fwrite(data, 1, size, f);
    fclose(f);
    uint64_t valid = 0, count = 0;
    umg_log_idx_t *ents = NULL;
    if (umg__log_scan_segment(path, &valid, &count, &ents) == UMG_OK) {
        if (valid != pos || valid > size) {
            abort(); /* the scan and the decoder must agree on the valid prefix */
        }
        for (uint64_t i = 0; i < count; i++) {
            if (ents[i].pos >= valid) {
                abort();
            }
        }
        umg_free(ents);
        static const uint8_t zeros[4096];
        f = fopen(path, "wb");
        if (f == NULL) {
            return 0;
        }
        fwrite(data, 1, pos, f);
        fwrite(zeros, 1, sizeof(zeros), f);
        fclose(f);
        uint64_t zvalid = 0, zcount = 0;
        if (umg__log_scan_segment(path, &zvalid, &zcount, NULL) == UMG_OK && (zvalid != valid || zcount != count)) {
            abort(); /* zeros written ahead must never look like records */
        }
    }
    return 0;
}
