/*
 * bench_event.c - decode + validate + encode throughput of the event codec on
 * one core, for typical ~300-byte SDK events.
 *
 *   bench_event [seconds] [batch]
 *
 * Builds 1000 distinct events (a mix of sessions, in-app events, purchases
 * and installs), packs them into bodies of `batch` events ({"events": [...]},
 * or single objects when batch is 1), then loops over the bodies for the
 * given time: parse, validate every event, encode every valid one into the
 * canonical form. Prints events/s, MB/s of input and the mean event size.
 * The baseline printed beside it is a plain memcpy of the same bodies, so the
 * ratio says how close the codec runs to memory speed on this machine.
 */
#include <stdio.h>
#include <stdlib.h>

#include "umg_event.h"

#define N_EVENTS 1000

static void uuid_text(char out[37], uint64_t seed)
{
    umg_uuid_t u;
    for (int i = 0; i < 16; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        u.b[i] = (uint8_t)(seed >> 56);
    }
    umg_uuid_format(&u, out);
}

static void make_event(umg_buf_t *b, int i, int64_t now_ms)
{
    char id[37], dev[37];
    uuid_text(id, (uint64_t)i * 2 + 1);
    uuid_text(dev, (uint64_t)(i % 97) * 2 + 2);
    int64_t ts = now_ms - (i % 3600) * 1000;
    switch (i % 4) {
    case 0:
        umg_buf_printf(b,
                       "{\"event_id\":\"%s\",\"type\":\"event\",\"name\":\"level_complete\","
                       "\"ts\":%lld,\"device\":{\"gaid\":\"%s\",\"platform\":\"android\","
                       "\"os_version\":\"14\",\"model\":\"Pixel 8\",\"app_version\":\"3.2.1\","
                       "\"sdk_version\":\"1.4.0\",\"locale\":\"en_US\"},\"user_id\":\"user-%d\","
                       "\"props\":{\"level\":%d,\"score\":%d.5,\"mode\":\"hard\"}}",
                       id, (long long)ts, dev, i, i % 50, i % 1000);
        break;
    case 1:
        umg_buf_printf(b,
                       "{\"event_id\":\"%s\",\"type\":\"session\",\"ts\":%lld,"
                       "\"device\":{\"idfa\":\"%s\",\"idfv\":\"%s\",\"platform\":\"ios\","
                       "\"os_version\":\"17.4\",\"model\":\"iPhone15,2\",\"app_version\":\"3.2.1\","
                       "\"locale\":\"de_DE\"},\"user_agent\":\"MyGame/3.2.1 CFNetwork/1490\"}",
                       id, (long long)ts, dev, id);
        break;
    case 2: {
        char rfc[32];
        umg_time_format_rfc3339((ts - 1234) * 1000, rfc);
        umg_buf_printf(b,
                       "{\"event_id\":\"%s\",\"type\":\"purchase\",\"name\":\"gem_pack\","
                       "\"ts\":\"%s\",\"device\":{\"gaid\":\"%s\","
                       "\"android_id\":\"9774d56d682e549c\",\"platform\":\"android\","
                       "\"app_version\":\"3.2.1\"},\"user_id\":\"user-%d\",\"revenue\":%d.99,"
                       "\"currency\":\"EUR\",\"props\":{\"sku\":\"gems_%d\",\"qty\":%d}}",
                       id, rfc, dev, i, i % 20, i % 5, 1 + i % 3);
        break;
    }
    default:
        umg_buf_printf(b,
                       "{\"event_id\":\"%s\",\"type\":\"install\",\"ts\":%lld,"
                       "\"device\":{\"gaid\":\"%s\",\"platform\":\"android\",\"os_version\":\"13\","
                       "\"model\":\"SM-S911B\",\"app_version\":\"3.2.1\"},"
                       "\"install_referrer\":{\"referrer\":\"utm_source=net%d&utm_campaign=c%d\","
                       "\"click_ts\":%lld,\"install_begin_ts\":%lld}}",
                       id, (long long)ts, dev, i % 7, i % 13, (long long)(ts - 60000), (long long)(ts - 30000));
        break;
    }
}

typedef struct bench_s {
    umg_buf_t out;
    size_t ok, bad;
} bench_t;

static int on_event(void *ctx, size_t index, umg_event_t *ev, const umg_event_error_t *err)
{
    bench_t *b = ctx;
    (void)index;
    if (ev == NULL) {
        if (b->bad++ == 0) {
            fprintf(stderr, "unexpected error: %s at %s: %s\n", err->code, err->field, err->message);
        }
        return 0;
    }
    ev->app_id = UMG_SLICE("app_bench");
    if (umg_event_encode_json(ev, &b->out) != UMG_OK) {
        return UMG_ENOMEM;
    }
    umg_buf_putc(&b->out, '\n');
    b->ok++;
    return 0;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 3.0;
    int batch = argc > 2 ? atoi(argv[2]) : 100;
    if (batch < 1 || batch > 1000) {
        fprintf(stderr, "batch must be 1..1000\n");
        return 2;
    }
    int64_t now_us = umg_now_us();
    int nbodies = N_EVENTS / batch;
    umg_buf_t *bodies = umg_calloc((size_t)nbodies, sizeof(umg_buf_t));
    size_t event_bytes = 0, body_bytes = 0;
    for (int k = 0; k < nbodies; k++) {
        umg_buf_t *b = &bodies[k];
        if (batch > 1) {
            umg_buf_append(b, "{\"events\":[", 11);
        }
        for (int j = 0; j < batch; j++) {
            size_t before = b->len;
            if (j > 0) {
                umg_buf_putc(b, ',');
            }
            make_event(b, k * batch + j, now_us / 1000);
            event_bytes += b->len - before;
        }
        if (batch > 1) {
            umg_buf_append(b, "]}", 2);
        }
        body_bytes += b->len;
    }

    umg_event_decoder_t *d;
    if (umg_event_decoder_new(1 << 20, &d) != UMG_OK) {
        return 1;
    }
    umg_event_limits_t lim = {
        .now_us = now_us, .max_future_us = INT64_C(600) * 1000000, .max_age_us = INT64_C(30) * 86400 * 1000000};
    bench_t st = {0};
    size_t events = 0, rounds = 0;
    uint64_t t0 = umg_mono_ns(), deadline = t0 + (uint64_t)(seconds * 1e9), t1;
    do {
        for (int k = 0; k < nbodies; k++) {
            size_t n;
            int is_batch;
            st.out.len = 0;
            if (umg_event_decoder_parse(d, bodies[k].ptr, bodies[k].len, 1000, &n, &is_batch, NULL) != UMG_OK ||
                umg_event_decoder_foreach(d, &lim, on_event, &st) != 0) {
                fprintf(stderr, "body %d failed\n", k);
                return 1;
            }
            events += n;
        }
        rounds++;
        t1 = umg_mono_ns();
    } while (t1 < deadline);
    double secs = (double)(t1 - t0) / 1e9;

    /* Baseline: copying the same bytes once per round. */
    char *sink = umg_malloc(body_bytes);
    uint64_t m0 = umg_mono_ns();
    for (size_t r = 0; r < rounds; r++) {
        size_t off = 0;
        for (int k = 0; k < nbodies; k++) {
            memcpy(sink + off, bodies[k].ptr, bodies[k].len);
            off += bodies[k].len;
        }
        __asm__ volatile("" : : "r"(sink) : "memory");
    }
    double msecs = (double)(umg_mono_ns() - m0) / 1e9;

    printf("batch=%d events=%zu invalid=%zu seconds=%.2f mean_event_bytes=%.0f\n", batch, events, st.bad, secs,
           (double)event_bytes / N_EVENTS);
    printf("decode+validate+encode: %.0f events/s, %.1f MB/s of input\n", (double)events / secs,
           (double)body_bytes * (double)rounds / secs / 1e6);
    printf("memcpy baseline: %.1f MB/s (codec/memcpy = %.4f)\n", (double)body_bytes * (double)rounds / msecs / 1e6,
           msecs / secs);

    umg_free(sink);
    for (int k = 0; k < nbodies; k++) {
        umg_buf_free(&bodies[k]);
    }
    umg_free(bodies);
    umg_buf_free(&st.out);
    umg_event_decoder_free(d);
    return st.bad == 0 ? 0 : 1;
}
