/*
 * fuzz_gen_answer.c - feeds arbitrary bytes to `unmogrowp gen`'s small JSON
 * reader and its parser of ingest answers (src/gen/send.c): the input is
 * split at its first NUL into an answer and the request body it answers.
 * Nothing may crash, read out of bounds or leak; a parsed answer's counts
 * must add up to the items the request had.
 *
 *   build: meson setup build-fuzz -Dfuzz=true (clang); run:
 *   build-fuzz/tests/fuzz/fuzz_gen_answer tests/fuzz/corpus/gen_answer
 */
#include <stdio.h>
#include <stdlib.h>

#include "gen_int.h"

/* Walks every member and element of a raw value, as deep as it goes, reading strings and integers. */
static void walk(umg_slice_t v, int depth)
{
    char buf[64];
    int64_t i;
    umg__gen_json_string(v, buf, sizeof(buf));
    umg__gen_json_int(v, &i);
    if (depth > 70 || v.len == 0) {
        return;
    }
    if (v.ptr[0] == '[') {
        umg_slice_t cur = v, elem;
        while (umg__gen_json_next(&cur, &elem) == UMG_OK) {
            walk(elem, depth + 1);
        }
    } else if (v.ptr[0] == '{') {
        static const char *const keys[] = {"accepted", "duplicates", "rejected", "index", "code", "field", "error"};
        for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
            umg_slice_t m;
            if (umg__gen_json_member(v, keys[k], &m) == UMG_OK) {
                walk(m, depth + 1);
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    const char *nul = memchr(in, '\0', size);
    size_t alen = nul ? (size_t)(nul - in) : size;
    const char *body = nul ? nul + 1 : "";
    size_t blen = nul ? size - alen - 1 : 0;
    /* Copies, so that reads past either part are caught. */
    char *a = malloc(alen ? alen : 1), *b = malloc(blen ? blen : 1);
    memcpy(a, in, alen);
    memcpy(b, body, blen);
    walk(umg_slice(a, alen), 0);
    walk(umg_slice(b, blen), 0);
    for (size_t n = 0; n < 4; n++) {
        umg__gen_result_t res = {0};
        int budget = 0; /* printing rejections would flood the fuzzer's output; the body is walked below */
        int rc = umg__gen_answer_parse(a, alen, b, blen, n, &res, &budget);
        if (rc == UMG_OK && res.accepted + res.duplicates + res.rejected != n) {
            fprintf(stderr, "answer parsed with counts %llu + %llu + %llu for %zu items\n",
                    (unsigned long long)res.accepted, (unsigned long long)res.duplicates,
                    (unsigned long long)res.rejected, n);
            abort();
        }
    }
    umg__gen_retry_after_ms(a, alen, 1000);
    free(a);
    free(b);
    return 0;
}
