/*
 * fuzz_touch_json.c - feeds arbitrary bytes to the touch decoders: as a
 * POST /v1/touches body, as a stored touch read back, and as a link's query
 * string (name=value&...). Nothing may crash or leak; every error has a code
 * and a message; every touch accepted must encode, and its canonical encoding
 * must decode again (as the stored form) into a touch that encodes to
 * exactly the same text.
 *
 *   build: meson setup build-fuzz -Dfuzz=true (clang); run:
 *   build-fuzz/tests/fuzz/fuzz_touch_json tests/fuzz/corpus/touch_json
 */
#include <stdio.h>
#include <stdlib.h>

#include "umg_touch.h"

#define FUZZ_MAX_BODY (1 << 20)
/* A fixed clock keeps runs reproducible: 2026-11-27T10:00:00Z. */
#define FUZZ_NOW_US INT64_C(1795773600000000)

typedef struct fuzz_s {
    umg_touch_decoder_t *again; /* decodes the encodings */
    umg_touch_limits_t lim;
    umg_touch_limits_t stored;
    umg_buf_t first;
    umg_buf_t second;
    size_t n_again;
} fuzz_t;

static void die(const char *what, const umg_buf_t *text, const umg_touch_error_t *err)
{
    fprintf(stderr, "fuzz_touch_json: %s\n", what);
    if (err != NULL) {
        fprintf(stderr, "  error: %s at '%s': %s\n", err->code ? err->code : "(null)", err->field, err->message);
    }
    if (text != NULL && text->ptr != NULL) {
        fprintf(stderr, "  encoding: %.*s\n", (int)text->len, text->ptr);
    }
    abort();
}

static void check_error(const umg_touch_error_t *err)
{
    if (err == NULL || err->code == NULL || err->message[0] == '\0' ||
        memchr(err->field, '\0', sizeof(err->field)) == NULL) {
        die("an error without code, message or terminated field", NULL, err);
    }
}

static int on_again(void *ctx, size_t index, umg_touch_t *t, const umg_touch_error_t *err)
{
    fuzz_t *f = ctx;
    f->n_again++;
    if (index != 0) {
        die("the encoding held more than one touch", &f->first, NULL);
    }
    if (t == NULL) {
        die("the encoding did not decode", &f->first, err);
    }
    umg_buf_reset(&f->second);
    if (umg_touch_encode_json(t, &f->second) != UMG_OK) {
        die("the re-decoded touch did not encode", &f->first, NULL);
    }
    if (f->first.len != f->second.len || memcmp(f->first.ptr, f->second.ptr, f->first.len) != 0) {
        fprintf(stderr, "  second: %.*s\n", (int)f->second.len, f->second.ptr);
        die("encode(decode(encode(t))) differs from encode(t)", &f->first, NULL);
    }
    return 0;
}

/* Encodes t, decodes the text as a stored touch and checks that it encodes the same. */
static void round_trip(fuzz_t *f, const umg_touch_t *t)
{
    umg_touch_error_t perr;
    umg_buf_reset(&f->first);
    if (umg_touch_encode_json(t, &f->first) != UMG_OK) {
        die("a valid touch did not encode", NULL, NULL);
    }
    if (memchr(f->first.ptr, '\n', f->first.len) != NULL) {
        die("the encoding is not one line", &f->first, NULL);
    }
    f->n_again = 0;
    memset(&perr, 0, sizeof(perr));
    int rc = umg_touch_decode(f->again, f->first.ptr, f->first.len, &f->stored, on_again, f, &perr);
    if (rc != UMG_OK || f->n_again != 1) {
        die("the encoding did not parse as one stored touch", &f->first, rc == UMG_OK ? NULL : &perr);
    }
}

static int on_touch(void *ctx, size_t index, umg_touch_t *t, const umg_touch_error_t *err)
{
    fuzz_t *f = ctx;
    if (t == NULL) {
        check_error(err);
        return 0;
    }
    if (t->type != UMG_TOUCH_CLICK && t->type != UMG_TOUCH_IMPRESSION) {
        die("a valid touch without a type", NULL, NULL);
    }
    /* What the server sets before storing a request's touch (a stored one keeps its own). */
    if (!f->lim.stored) {
        memset(&t->touch_id, 0, sizeof(t->touch_id));
        t->touch_id.b[0] = (uint8_t)(index + 1);
        t->touch_id.b[15] = 0x5a;
        t->app_id = UMG_SLICE("app_fuzz");
    }
    round_trip(f, t);
    return 0;
}

/* --- link parameters: the input as a query string, values taken as they are (no URL decoding) */

typedef struct query_s {
    char *s;
    size_t n;
} query_t;

static int q_get(void *ctx, const char *name, umg_slice_t *value)
{
    query_t *q = ctx;
    size_t nl = strlen(name), i = 0;
    while (i < q->n) {
        size_t e = i;
        while (e < q->n && q->s[e] != '&') {
            e++;
        }
        if (e - i > nl && q->s[i + nl] == '=' && memcmp(q->s + i, name, nl) == 0) {
            /* A value starting with '%' stands for a malformed escape. */
            if (e - i > nl + 1 && q->s[i + nl + 1] == '%') {
                return UMG_EINVAL;
            }
            *value = umg_slice(q->s + i + nl + 1, e - i - nl - 1);
            return UMG_OK;
        }
        i = e + 1;
    }
    return UMG_ENOENT;
}

static void fuzz_params(fuzz_t *f, const uint8_t *data, size_t size)
{
    /* The decoder lowercases ids where they lie: give it a writable copy. */
    query_t q = {.s = malloc(size ? size : 1), .n = size};
    if (q.s == NULL) {
        abort();
    }
    if (size != 0) {
        memcpy(q.s, data, size);
    }
    umg_touch_t t;
    umg_touch_error_t dropped[4];
    size_t nd = 99;
    memset(&t, 0, sizeof(t));
    t.type = (size & 2) ? UMG_TOUCH_IMPRESSION : UMG_TOUCH_CLICK;
    t.ts_us = t.received_us = FUZZ_NOW_US;
    umg_touch_from_params(&t, q_get, &q, dropped, 4, &nd);
    if (nd > 4) {
        die("more dropped fields than allowed", NULL, NULL);
    }
    for (size_t i = 0; i < nd; i++) {
        check_error(&dropped[i]);
    }
    round_trip(f, &t);
    free(q.s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static umg_touch_decoder_t *dec;
    static fuzz_t f;
    if (dec == NULL) {
        if (umg_touch_decoder_new(FUZZ_MAX_BODY, &dec) != UMG_OK ||
            umg_touch_decoder_new(FUZZ_MAX_BODY, &f.again) != UMG_OK) {
            abort();
        }
        f.lim.now_us = FUZZ_NOW_US;
        f.lim.max_future_us = INT64_C(600000000);
        f.lim.max_age_us = INT64_C(30) * 86400 * 1000000;
        f.stored = f.lim;
        f.stored.stored = 1;
    }
    for (int stored = 0; stored <= 1; stored++) {
        umg_touch_error_t err;
        memset(&err, 0, sizeof(err));
        f.lim.stored = stored;
        int rc = umg_touch_decode(dec, (const char *)data, size, &f.lim, on_touch, &f, &err);
        if (rc != UMG_OK) {
            if (rc != UMG_EPARSE && rc != UMG_ERANGE) {
                abort();
            }
            check_error(&err);
        }
    }
    fuzz_params(&f, data, size);
    return 0;
}
