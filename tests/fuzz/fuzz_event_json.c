/*
 * fuzz_event_json.c - feeds arbitrary bytes to the event decoder as a request
 * body. Nothing may crash or leak; every event the decoder accepts must
 * encode, and its canonical encoding must decode again (as the stored form)
 * into an event that encodes to exactly the same text.
 *
 *   build: meson setup build-fuzz -Dfuzz=true (clang); run:
 *   build-fuzz/tests/fuzz/fuzz_event_json tests/fuzz/corpus/event_json
 */
#include <stdio.h>
#include <stdlib.h>

#include "umg_event.h"

#define FUZZ_MAX_BODY (1 << 20)

typedef struct fuzz_s {
    umg_event_decoder_t *again; /* decodes the encodings */
    umg_event_limits_t lim;
    umg_event_limits_t stored;
    umg_buf_t first;
    umg_buf_t second;
} fuzz_t;

static void die(const char *what, const umg_buf_t *text, const umg_event_error_t *err)
{
    fprintf(stderr, "fuzz_event_json: %s\n", what);
    if (err != NULL) {
        fprintf(stderr, "  error: %s at '%s': %s\n", err->code, err->field, err->message);
    }
    if (text != NULL && text->ptr != NULL) {
        fprintf(stderr, "  encoding: %.*s\n", (int)text->len, text->ptr);
    }
    abort();
}

static int on_again(void *ctx, size_t index, umg_event_t *ev, const umg_event_error_t *err)
{
    fuzz_t *f = ctx;
    if (index != 0) {
        die("the encoding held more than one event", &f->first, NULL);
    }
    if (ev == NULL) {
        die("the encoding did not decode", &f->first, err);
    }
    umg_buf_reset(&f->second);
    if (umg_event_encode_json(ev, &f->second) != UMG_OK) {
        die("the re-decoded event did not encode", &f->first, NULL);
    }
    if (f->first.len != f->second.len || memcmp(f->first.ptr, f->second.ptr, f->first.len) != 0) {
        fprintf(stderr, "  second: %.*s\n", (int)f->second.len, f->second.ptr);
        die("encode(decode(encode(ev))) differs from encode(ev)", &f->first, NULL);
    }
    return 0;
}

static int on_event(void *ctx, size_t index, umg_event_t *ev, const umg_event_error_t *err)
{
    fuzz_t *f = ctx;
    (void)index;
    if (ev == NULL) {
        if (err == NULL || err->code == NULL || err->message[0] == '\0') {
            die("an error without code or message", NULL, err);
        }
        return 0;
    }
    ev->app_id = UMG_SLICE("app_fuzz");
    umg_buf_reset(&f->first);
    if (umg_event_encode_json(ev, &f->first) != UMG_OK) {
        die("a valid event did not encode", NULL, NULL);
    }
    size_t n = 0;
    int is_batch = -1;
    umg_event_error_t perr;
    if (umg_event_decoder_parse(f->again, f->first.ptr, f->first.len, 1, &n, &is_batch, &perr) != UMG_OK || n != 1 ||
        is_batch != 0) {
        die("the encoding did not parse as one event", &f->first, &perr);
    }
    if (umg_event_decoder_foreach(f->again, &f->stored, on_again, f) != 0) {
        die("walking the encoding failed", &f->first, NULL);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static umg_event_decoder_t *dec;
    static fuzz_t f;
    if (dec == NULL) {
        if (umg_event_decoder_new(FUZZ_MAX_BODY, &dec) != UMG_OK ||
            umg_event_decoder_new(FUZZ_MAX_BODY, &f.again) != UMG_OK) {
            abort();
        }
        /* A fixed clock keeps runs reproducible: 2026-11-27T10:00:00Z. */
        f.lim.now_us = INT64_C(1795773600000000);
        f.lim.max_future_us = INT64_C(600000000);
        f.lim.max_age_us = INT64_C(30) * 86400 * 1000000;
        f.stored = f.lim;
        f.stored.stored = 1;
        f.stored.allow_ip = 1;
    }
    /* Odd sizes also exercise the server-to-server path that takes "ip". */
    f.lim.allow_ip = (int)(size & 1);
    size_t n = 0;
    int is_batch = 0;
    umg_event_error_t err;
    int rc = umg_event_decoder_parse(dec, (const char *)data, size, 1000, &n, &is_batch, &err);
    if (rc != UMG_OK) {
        if (rc != UMG_EPARSE && rc != UMG_ERANGE) {
            abort();
        }
        if (err.code == NULL || err.message[0] == '\0') {
            die("a body error without code or message", NULL, &err);
        }
        return 0;
    }
    if (umg_event_decoder_foreach(dec, &f.lim, on_event, &f) != 0) {
        abort();
    }
    return 0;
}
