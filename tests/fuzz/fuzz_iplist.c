/*
 * fuzz_iplist.c - feeds arbitrary bytes to the IP list parser
 * (umg_iplist_parse), builds a prefix table of what it accepted (as four
 * lists, by line order), and checks lookups at every accepted prefix's first
 * and last address, and just outside them, against a brute-force longest
 * prefix match. The same bytes are also matched as a User-Agent against the
 * default bot patterns. Nothing may crash, leak or disagree.
 *
 *   build: meson setup build-fuzz -Dfuzz=true (clang); run on a copy of the
 *   seeds (libFuzzer writes into its corpus directory):
 *   cp -r tests/fuzz/corpus/iplist /tmp/iplist && build-fuzz/tests/fuzz/fuzz_iplist /tmp/iplist
 */
#include <stdlib.h>

#include "umg_fraud_net.h"

#define MAX_PFX 256

typedef struct ctx_s {
    umg_cidr_builder_t *b;
    umg_ip_t net[MAX_PFX];
    int plen[MAX_PFX];
    unsigned list[MAX_PFX];
    size_t n, lines;
} ctx_t;

static int on_prefix(void *arg, const umg_ip_t *net, int plen)
{
    ctx_t *c = arg;
    if (plen < 0 || plen > 128) {
        abort();
    }
    if (c->n == MAX_PFX) {
        return UMG_OK; /* keep the brute force cheap */
    }
    unsigned list = (unsigned)(c->n % 4);
    c->net[c->n] = *net;
    c->plen[c->n] = plen;
    c->list[c->n] = list;
    c->n++;
    return umg_cidr_builder_add(c->b, net, plen, list);
}

static void on_error(void *arg, size_t line, const char *message)
{
    ctx_t *c = arg;
    if (line == 0 || message == NULL || message[0] == '\0') {
        abort();
    }
    c->lines++;
}

static int contains(const ctx_t *c, size_t i, const umg_ip_t *ip)
{
    int full = c->plen[i] / 8, rem = c->plen[i] % 8;
    if (memcmp(c->net[i].b, ip->b, (size_t)full) != 0) {
        return 0;
    }
    return rem == 0 || ((c->net[i].b[full] ^ ip->b[full]) & (0xff00 >> rem)) == 0;
}

static void check(const ctx_t *c, const umg_cidr_t *t, const umg_ip_t *ip)
{
    int best = -1, best_len = -1;
    uint64_t mask = 0, got_mask;
    for (size_t i = 0; i < c->n; i++) {
        if (contains(c, i, ip)) {
            mask |= UINT64_C(1) << c->list[i];
            if (c->plen[i] > best_len || (c->plen[i] == best_len && (int)c->list[i] < best)) {
                best = (int)c->list[i];
                best_len = c->plen[i];
            }
        }
    }
    if (umg_cidr_lookup(t, ip, &got_mask) != best || got_mask != mask) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static umg_botua_t *bots;
    if (bots == NULL) {
        char err[256];
        if (umg_botua_compile("default", &bots, err, sizeof(err)) != UMG_OK) {
            abort();
        }
    }
    int m = umg_botua_match(bots, umg_slice((const char *)data, size));
    if (m < UMG_BOTUA_EMPTY || m >= umg_botua_count(bots)) {
        abort();
    }

    ctx_t *c = calloc(1, sizeof(*c));
    if (c == NULL || umg_cidr_builder_new(&c->b) != UMG_OK) {
        abort();
    }
    umg_iplist_sink_t sink = {on_prefix, on_error, c};
    size_t bad = 0;
    if (umg_iplist_parse((const char *)data, size, &sink, &bad) != UMG_OK || bad != c->lines) {
        abort();
    }
    umg_cidr_t *t = NULL;
    if (umg_cidr_build(c->b, &t) != UMG_OK) {
        abort();
    }
    for (size_t i = 0; i < c->n; i++) {
        umg_ip_t lo = c->net[i], hi = c->net[i], before, after;
        for (int k = 0; k < 16; k++) {
            int keep = c->plen[i] - k * 8;
            hi.b[k] |= keep >= 8 ? 0 : keep <= 0 ? 0xff : (uint8_t)(0xff >> keep);
        }
        before = lo;
        for (int k = 15; k >= 0 && before.b[k]-- == 0; k--) {
        }
        after = hi;
        for (int k = 15; k >= 0 && ++after.b[k] == 0; k--) {
        }
        check(c, t, &lo);
        check(c, t, &hi);
        check(c, t, &before);
        check(c, t, &after);
    }
    umg_cidr_free(t);
    umg_cidr_builder_free(c->b);
    free(c);
    return 0;
}
