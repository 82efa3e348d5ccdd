/*
 * test_fraud_net.c - unit tests for the network-level fraud checks
 * (src/fraud/umg_fraud_net.h): address and prefix parsing, the prefix table
 * against a brute-force longest-prefix match over random nested and
 * overlapping IPv4 and IPv6 prefixes, the list file parser, the registry
 * (reload, a failed reload, readers running through reloads), signatures
 * (known vectors computed with Python's hmac module, wrong key, stale and
 * future timestamps, replays, malformed headers) and bot User-Agents.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "umg_fraud_net.h"

#define S(lit) UMG_SLICE(lit)

static umg_slice_t cs(const char *s)
{
    return umg_slice(s, strlen(s));
}

/* ---------------------------------------------------------------- addresses */

static void test_ip_parse(void **state)
{
    (void)state;
    umg_ip_t a, b;
    assert_int_equal(umg_ip_parse(S("203.0.113.7"), &a), UMG_OK);
    assert_true(umg_ip_is_v4(&a));
    assert_int_equal(a.b[12], 203);
    assert_int_equal(a.b[15], 7);
    assert_int_equal(umg_ip_parse(S("::ffff:203.0.113.7"), &b), UMG_OK);
    assert_memory_equal(a.b, b.b, 16);
    assert_int_equal(umg_ip_parse(S("::FFFF:cb00:7107"), &b), UMG_OK);
    assert_memory_equal(a.b, b.b, 16);
    assert_int_equal(umg_ip_parse(S("2001:db8::1"), &a), UMG_OK);
    assert_false(umg_ip_is_v4(&a));
    assert_int_equal(a.b[0], 0x20);
    assert_int_equal(a.b[15], 1);
    const char *bad[] = {"",        "1.2.3",        "1.2.3.4.5", "256.1.1.1", "01.2.3.4", " 1.2.3.4", "1.2.3.4 ",
                         "1.2.3.x", "2001:db8:::1", "::g",       "1.2.3.4/8", "-1.2.3.4", "::1::"};
    for (size_t i = 0; i < UMG_ARRAY_SIZE(bad); i++) {
        assert_int_equal(umg_ip_parse(cs(bad[i]), &a), UMG_EINVAL);
    }
    char nul[] = "1.2.3.4\0";
    assert_int_equal(umg_ip_parse(umg_slice(nul, 8), &a), UMG_EINVAL);
    char longs[100];
    memset(longs, '1', sizeof(longs));
    assert_int_equal(umg_ip_parse(umg_slice(longs, sizeof(longs)), &a), UMG_EINVAL);
}

static void test_cidr_parse(void **state)
{
    (void)state;
    umg_ip_t n, want;
    int plen, hb;
    assert_int_equal(umg_cidr_parse(S("10.1.2.3/8"), &n, &plen, &hb), UMG_OK);
    assert_int_equal(plen, 104);
    assert_int_equal(hb, 1);
    umg_ip_parse(S("10.0.0.0"), &want);
    assert_memory_equal(n.b, want.b, 16);
    assert_int_equal(umg_cidr_parse(S("10.0.0.0/8"), &n, &plen, &hb), UMG_OK);
    assert_int_equal(hb, 0);
    assert_int_equal(umg_cidr_parse(S("0.0.0.0/0"), &n, &plen, NULL), UMG_OK);
    assert_int_equal(plen, 96);
    assert_int_equal(umg_cidr_parse(S("1.2.3.4"), &n, &plen, NULL), UMG_OK);
    assert_int_equal(plen, 128);
    assert_int_equal(umg_cidr_parse(S("1.2.3.4/32"), &n, &plen, NULL), UMG_OK);
    assert_int_equal(plen, 128);
    assert_int_equal(umg_cidr_parse(S("::/0"), &n, &plen, NULL), UMG_OK);
    assert_int_equal(plen, 0);
    assert_int_equal(umg_cidr_parse(S("2001:db8::/32"), &n, &plen, NULL), UMG_OK);
    assert_int_equal(plen, 32);
    assert_int_equal(umg_cidr_parse(S("2001:db8::1/128"), &n, &plen, NULL), UMG_OK);
    assert_int_equal(plen, 128);
    assert_int_equal(umg_cidr_parse(S("::ffff:10.0.0.0/104"), &n, &plen, NULL), UMG_OK);
    assert_int_equal(plen, 104);
    const char *bad[] = {"1.2.3.4/33", "1.2.3.4/", "1.2.3.4/08",  "1.2.3.4/-1", "1.2.3.4/ 8", "::/129",
                         "::/1000",    "/8",       "1.2.3.4/8/8", "1.2.3.4/a",  "x/8"};
    for (size_t i = 0; i < UMG_ARRAY_SIZE(bad); i++) {
        assert_int_equal(umg_cidr_parse(cs(bad[i]), &n, &plen, NULL), UMG_EINVAL);
    }
}

/* ---------------------------------------------------------------- LPM vs brute force */

typedef struct ref_s {
    umg_ip_t net;
    int plen;
    unsigned list;
} ref_t;

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static int contains(const ref_t *r, const umg_ip_t *ip)
{
    int full = r->plen / 8, rem = r->plen % 8;
    if (memcmp(r->net.b, ip->b, (size_t)full) != 0) {
        return 0;
    }
    return rem == 0 || ((r->net.b[full] ^ ip->b[full]) & (0xff00 >> rem)) == 0;
}

/* The definition: the longest containing prefix (ties: the lowest list); the mask of all. */
static int brute(const ref_t *refs, size_t n, const umg_ip_t *ip, uint64_t *mask)
{
    int best = -1, best_len = -1;
    uint64_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (contains(&refs[i], ip)) {
            m |= UINT64_C(1) << refs[i].list;
            if (refs[i].plen > best_len || (refs[i].plen == best_len && (int)refs[i].list < best)) {
                best = (int)refs[i].list;
                best_len = refs[i].plen;
            }
        }
    }
    *mask = m;
    return best;
}

static void mask_to(umg_ip_t *ip, int plen)
{
    for (int i = 0; i < 16; i++) {
        int keep = plen - i * 8;
        ip->b[i] &= keep >= 8 ? 0xff : keep <= 0 ? 0 : (uint8_t)(0xff00 >> keep);
    }
}

static int cluster_only; /* every IPv6 prefix in 2000::/14, as real lists mostly are */

static void random_ip(umg_ip_t *ip, int v4)
{
    for (int i = 0; i < 16; i++) {
        ip->b[i] = (uint8_t)rnd();
    }
    if (v4) {
        memset(ip->b, 0, 10);
        ip->b[10] = ip->b[11] = 0xff;
    } else if (cluster_only || rnd() % 4 == 0) {
        ip->b[0] = 0x20; /* cluster in 2000::/8 so prefixes nest */
        ip->b[1] = (uint8_t)(rnd() % 4);
    }
}

static void check_against_brute(int nprefix, int nquery, int v4_share)
{
    ref_t *refs = malloc((size_t)nprefix * sizeof(*refs));
    umg_cidr_builder_t *b;
    assert_int_equal(umg_cidr_builder_new(&b), UMG_OK);
    int n = 0;
    while (n < nprefix) {
        ref_t r;
        int v4 = (int)(rnd() % 100) < v4_share;
        if (n > 0 && rnd() % 3 == 0) {
            /* Nested: a longer (or equal) prefix inside an existing one, maybe in another list. */
            const ref_t *p = &refs[rnd() % (uint64_t)n];
            r.net = p->net;
            int extra = (int)(rnd() % 9);
            r.plen = p->plen + extra > 128 ? 128 : p->plen + extra;
            for (int i = p->plen / 8; i < 16; i++) {
                r.net.b[i] = (uint8_t)(r.net.b[i] | (rnd() & (i == p->plen / 8 ? (0xff >> (p->plen % 8)) : 0xff)));
            }
        } else {
            random_ip(&r.net, v4);
            int lo = v4 ? 96 : 0;
            r.plen = lo + (int)(rnd() % (uint64_t)(129 - lo));
            if (rnd() % 50 == 0) {
                r.plen = v4 ? 96 : 0; /* /0 */
            } else if (rnd() % 10 == 0) {
                r.plen = 128; /* hosts */
            }
        }
        mask_to(&r.net, r.plen);
        r.list = (unsigned)(rnd() % 5);
        refs[n++] = r;
        assert_int_equal(umg_cidr_builder_add(b, &r.net, r.plen, r.list), UMG_OK);
    }
    umg_cidr_t *t;
    assert_int_equal(umg_cidr_build(b, &t), UMG_OK);
    for (int q = 0; q < nquery; q++) {
        umg_ip_t ip;
        const ref_t *r = &refs[rnd() % (uint64_t)n];
        switch (rnd() % 5) {
        case 0: {
            int save = cluster_only;
            cluster_only = 0;
            random_ip(&ip, (int)(rnd() % 2));
            cluster_only = save;
            break;
        }
        case 1: ip = r->net; break; /* a prefix's first address */
        case 2:                     /* its last */
            ip = r->net;
            for (int i = 0; i < 16; i++) {
                int keep = r->plen - i * 8;
                ip.b[i] |= keep >= 8 ? 0 : keep <= 0 ? 0xff : (uint8_t)(0xff >> keep);
            }
            break;
        case 3: /* just before it */
            ip = r->net;
            for (int i = 15; i >= 0 && ip.b[i]-- == 0; i--) {
            }
            break;
        default: /* inside it, random */
            ip = r->net;
            for (int i = r->plen / 8; i < 16; i++) {
                ip.b[i] = (uint8_t)(ip.b[i] | (rnd() & (i == r->plen / 8 ? (0xff >> (r->plen % 8)) : 0xff)));
            }
        }
        uint64_t m1, m2;
        int want = brute(refs, (size_t)n, &ip, &m1);
        int got = umg_cidr_lookup(t, &ip, &m2);
        if (want != got || m1 != m2) {
            fprintf(stderr, "mismatch for %02x%02x:...:%02x%02x%02x%02x (v4 %d): want %d/%llx got %d/%llx\n", ip.b[0],
                    ip.b[1], ip.b[12], ip.b[13], ip.b[14], ip.b[15], umg_ip_is_v4(&ip), want, (unsigned long long)m1,
                    got, (unsigned long long)m2);
        }
        assert_int_equal(got, want);
        assert_true(m1 == m2);
        if (umg_ip_is_v4(&ip)) {
            uint32_t a = (uint32_t)ip.b[12] << 24 | (uint32_t)ip.b[13] << 16 | (uint32_t)ip.b[14] << 8 | ip.b[15];
            assert_int_equal(umg_cidr_lookup4(t, a, NULL), want);
        }
    }
    /* The batch form answers as the single one, for any count (not only multiples of 16). */
    size_t nb = 1 + (size_t)(rnd() % 100);
    umg_ip_t *ips = malloc(nb * sizeof(*ips));
    int *lists = malloc(nb * sizeof(*lists));
    uint64_t *masks = malloc(nb * sizeof(*masks));
    for (size_t i = 0; i < nb; i++) {
        if (rnd() % 2) {
            random_ip(&ips[i], (int)(rnd() % 2));
        } else {
            ips[i] = refs[rnd() % (uint64_t)n].net;
        }
    }
    umg_cidr_lookup_batch(t, ips, nb, lists, masks);
    for (size_t i = 0; i < nb; i++) {
        uint64_t m;
        assert_int_equal(lists[i], umg_cidr_lookup(t, &ips[i], &m));
        assert_true(masks[i] == m);
    }
    umg_cidr_lookup_batch(t, ips, nb, lists, NULL);
    free(ips);
    free(lists);
    free(masks);
    umg_cidr_stats_t st;
    umg_cidr_stats(t, &st);
    assert_int_equal(st.prefixes, (size_t)n);
    umg_cidr_free(t);
    umg_cidr_builder_free(b);
    free(refs);
}

static void test_lpm_random(void **state)
{
    (void)state;
    for (int round = 0; round < 20; round++) {
        check_against_brute(10 + round * 40, 3000, round % 2 ? 70 : 30);
    }
    check_against_brute(3000, 20000, 50);
    cluster_only = 1;
    for (int round = 0; round < 10; round++) {
        check_against_brute(5 + round * 100, 5000, round * 10);
    }
    cluster_only = 0;
}

static void test_lpm_edges(void **state)
{
    (void)state;
    umg_cidr_builder_t *b;
    umg_cidr_t *t;
    umg_ip_t n, ip;
    int plen;
    assert_int_equal(umg_cidr_builder_new(&b), UMG_OK);
    /* Empty table. */
    assert_int_equal(umg_cidr_build(b, &t), UMG_OK);
    umg_ip_parse(S("1.2.3.4"), &ip);
    assert_int_equal(umg_cidr_lookup(t, &ip, NULL), -1);
    umg_ip_parse(S("2001:db8::1"), &ip);
    assert_int_equal(umg_cidr_lookup(t, &ip, NULL), -1);
    umg_cidr_free(t);
    /* ::/0 covers IPv4 too (as a prefix shorter than any IPv4 one), 0.0.0.0/0 covers only IPv4. */
    umg_cidr_parse(S("::/0"), &n, &plen, NULL);
    umg_cidr_builder_add(b, &n, plen, 3);
    umg_cidr_parse(S("0.0.0.0/0"), &n, &plen, NULL);
    umg_cidr_builder_add(b, &n, plen, 1);
    umg_cidr_parse(S("255.255.255.255/32"), &n, &plen, NULL);
    umg_cidr_builder_add(b, &n, plen, 2);
    umg_cidr_parse(S("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"), &n, &plen, NULL);
    umg_cidr_builder_add(b, &n, plen, 4);
    umg_cidr_parse(S("::/128"), &n, &plen, NULL);
    umg_cidr_builder_add(b, &n, plen, 5);
    umg_cidr_parse(S("::ffff:10.0.0.0/104"), &n, &plen, NULL); /* = 10.0.0.0/8 */
    umg_cidr_builder_add(b, &n, plen, 6);
    assert_int_equal(umg_cidr_builder_add(b, &n, 129, 0), UMG_EINVAL);
    assert_int_equal(umg_cidr_builder_add(b, &n, 8, 64), UMG_EINVAL);
    assert_int_equal(umg_cidr_build(b, &t), UMG_OK);
    uint64_t m;
    umg_ip_parse(S("1.2.3.4"), &ip);
    assert_int_equal(umg_cidr_lookup(t, &ip, &m), 1);
    assert_true(m == ((1u << 1) | (1u << 3)));
    umg_ip_parse(S("255.255.255.255"), &ip);
    assert_int_equal(umg_cidr_lookup(t, &ip, &m), 2);
    assert_true(m == ((1u << 1) | (1u << 2) | (1u << 3)));
    umg_ip_parse(S("0.0.0.0"), &ip);
    assert_int_equal(umg_cidr_lookup(t, &ip, NULL), 1);
    umg_ip_parse(S("10.255.0.1"), &ip);
    assert_int_equal(umg_cidr_lookup(t, &ip, NULL), 6);
    assert_int_equal(umg_cidr_lookup4(t, 0x0a000000u, NULL), 6);
    assert_int_equal(umg_cidr_lookup4(t, 0x0b000000u, NULL), 1);
    umg_ip_parse(S("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), &ip);
    assert_int_equal(umg_cidr_lookup(t, &ip, NULL), 4);
    umg_ip_parse(S("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"), &ip);
    assert_int_equal(umg_cidr_lookup(t, &ip, NULL), 3);
    umg_ip_parse(S("::"), &ip);
    assert_int_equal(umg_cidr_lookup(t, &ip, NULL), 5);
    umg_ip_parse(S("::1"), &ip);
    assert_int_equal(umg_cidr_lookup(t, &ip, NULL), 3);
    umg_cidr_free(t);
    umg_cidr_builder_free(b);
}

static void test_lpm_oom(void **state)
{
    (void)state;
    umg_cidr_builder_t *b;
    umg_ip_t n;
    int plen;
    assert_int_equal(umg_cidr_builder_new(&b), UMG_OK);
    for (int i = 0; i < 3000; i++) {
        char txt[32];
        snprintf(txt, sizeof(txt), "10.%d.%d.0/24", i / 256, i % 256);
        umg_cidr_parse(cs(txt), &n, &plen, NULL);
        umg_cidr_builder_add(b, &n, plen, (unsigned)(i % 3));
    }
    for (long k = 1; k < 40; k++) {
        umg_cidr_t *t = NULL;
        umg_alloc_fail_after(k);
        int rc = umg_cidr_build(b, &t);
        umg_alloc_fail_after(0);
        assert_true(rc == UMG_OK || rc == UMG_ENOMEM);
        umg_cidr_free(t);
    }
    umg_cidr_builder_free(b);
}

/* ---------------------------------------------------------------- list files */

typedef struct collect_s {
    int n;
    char got[16][48];
    int bad;
    size_t bad_lines[16];
    char msg[16][160];
} collect_t;

static int on_pfx(void *ctx, const umg_ip_t *net, int plen)
{
    collect_t *c = ctx;
    if (c->n < 16) {
        snprintf(c->got[c->n], sizeof(c->got[0]), "%02x%02x/%d", net->b[14], net->b[15], plen);
    }
    c->n++;
    return UMG_OK;
}

static void on_err(void *ctx, size_t line, const char *msg)
{
    collect_t *c = ctx;
    if (c->bad < 16) {
        c->bad_lines[c->bad] = line;
        snprintf(c->msg[c->bad], sizeof(c->msg[0]), "%s", msg);
    }
    c->bad++;
}

static void test_list_parse(void **state)
{
    (void)state;
    static const char text[] = "\xef\xbb\xbf# a data-centre list\r\n"
                               "198.51.100.0/24\r\n"
                               "\r\n"
                               "   203.0.113.7   # one host\n"
                               "; Spamhaus-style comment\n"
                               "2001:db8::/32 ; SBL123\n"
                               "not-an-ip\n"
                               "1.2.3.4 5.6.7.8\n"
                               "10.0.0.0/33\n"
                               "\t\n"
                               "192.0.2.1";
    collect_t c = {0};
    umg_iplist_sink_t sink = {on_pfx, on_err, &c};
    size_t bad = 0;
    assert_int_equal(umg_iplist_parse(text, sizeof(text) - 1, &sink, &bad), UMG_OK);
    assert_int_equal(c.n, 4);
    assert_string_equal(c.got[0], "6400/120");
    assert_string_equal(c.got[1], "7107/128");
    assert_string_equal(c.got[2], "0000/32");
    assert_string_equal(c.got[3], "0201/128");
    assert_int_equal(bad, 3);
    assert_int_equal(c.bad, 3);
    assert_int_equal(c.bad_lines[0], 7);
    assert_non_null(strstr(c.msg[0], "not an IP address or CIDR prefix: 'not-an-ip'"));
    assert_int_equal(c.bad_lines[1], 8);
    assert_non_null(strstr(c.msg[1], "unexpected text"));
    assert_int_equal(c.bad_lines[2], 9);
    /* A long line, and odd bytes, are reported, not fatal; no sink error callback is fine. */
    char big[2000];
    memset(big, '1', sizeof(big));
    big[sizeof(big) - 1] = '\n';
    memset(&c, 0, sizeof(c));
    assert_int_equal(umg_iplist_parse(big, sizeof(big), &sink, &bad), UMG_OK);
    assert_int_equal(bad, 1);
    assert_non_null(strstr(c.msg[0], "longer than 512"));
    umg_iplist_sink_t quiet = {on_pfx, NULL, &c};
    static const char odd[] = "\x01\x02\xff\n\0\n1.2.3.4\0\n";
    assert_int_equal(umg_iplist_parse(odd, sizeof(odd) - 1, &quiet, &bad), UMG_OK);
    assert_int_equal(bad, 3);
    assert_int_equal(umg_iplist_parse("", 0, &quiet, NULL), UMG_OK);
}

/* ---------------------------------------------------------------- registry */

static char tmpdir[64];

static void write_file(const char *name, const char *text)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup_dir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/umg-fnet-XXXXXX");
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown_dir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_registry_spec(void **state)
{
    (void)state;
    umg_iplists_t *r = NULL;
    char err[256];
    assert_int_equal(umg_iplists_new("", &r, err, sizeof(err)), UMG_OK);
    assert_int_equal(umg_iplists_count(r), 0);
    int list;
    assert_int_equal(umg_iplists_lookup(r, S("1.2.3.4"), &list, NULL), UMG_OK);
    assert_int_equal(list, -1);
    assert_int_equal(umg_iplists_lookup(r, S("nope"), &list, NULL), UMG_EINVAL);
    assert_int_equal(umg_iplists_reload(r, err, sizeof(err)), UMG_OK);
    umg_iplists_free(r);
    assert_int_equal(umg_iplists_new(" dc = /a/b , tor=/c ", &r, err, sizeof(err)), UMG_OK);
    assert_int_equal(umg_iplists_count(r), 2);
    assert_string_equal(umg_iplists_name(r, 0), "dc");
    assert_string_equal(umg_iplists_name(r, 1), "tor");
    assert_null(umg_iplists_name(r, 2));
    umg_iplists_free(r);
    const char *bad[] = {"dc", "=/a", "dc=", "d c=/a", "dc=/a,dc=/b", "averyveryveryveryverylonglistname1=/a"};
    for (size_t i = 0; i < UMG_ARRAY_SIZE(bad); i++) {
        err[0] = '\0';
        assert_int_equal(umg_iplists_new(bad[i], &r, err, sizeof(err)), UMG_EINVAL);
        assert_non_null(strstr(err, "fraud.ip_lists"));
    }
}

static void test_registry_reload(void **state)
{
    (void)state;
    write_file("dc.txt", "# dc\n198.51.100.0/24\n2001:db8::/32\nbogus\n");
    write_file("tor.txt", "198.51.100.7\n");
    char spec[256], err[256];
    snprintf(spec, sizeof(spec), "dc=%s/dc.txt,tor=%s/tor.txt", tmpdir, tmpdir);
    umg_iplists_t *r;
    assert_int_equal(umg_iplists_new(spec, &r, err, sizeof(err)), UMG_OK);
    assert_int_equal(umg_iplists_reload(r, err, sizeof(err)), UMG_OK);
    assert_int_equal(umg_iplists_prefixes(r, 0), 2);
    assert_int_equal(umg_iplists_prefixes(r, 1), 1);
    int list;
    uint64_t m;
    assert_int_equal(umg_iplists_lookup(r, S("198.51.100.7"), &list, &m), UMG_OK);
    assert_string_equal(umg_iplists_name(r, list), "tor");
    assert_true(m == 3);
    assert_int_equal(umg_iplists_lookup(r, S("::ffff:198.51.100.8"), &list, &m), UMG_OK);
    assert_string_equal(umg_iplists_name(r, list), "dc");
    assert_int_equal(umg_iplists_lookup(r, S("2001:db8:1::5"), &list, NULL), UMG_OK);
    assert_int_equal(list, 0);
    assert_int_equal(umg_iplists_lookup(r, S("198.51.101.1"), &list, NULL), UMG_OK);
    assert_int_equal(list, -1);
    /* New content is picked up by the next reload. */
    write_file("tor.txt", "198.51.101.0/24\n");
    assert_int_equal(umg_iplists_reload(r, err, sizeof(err)), UMG_OK);
    assert_int_equal(umg_iplists_lookup(r, S("198.51.101.1"), &list, NULL), UMG_OK);
    assert_int_equal(list, 1);
    assert_int_equal(umg_iplists_lookup(r, S("198.51.100.7"), &list, NULL), UMG_OK);
    assert_int_equal(list, 0);
    /* An unreadable file: the old lists stay. */
    char path[128];
    snprintf(path, sizeof(path), "%s/tor.txt", tmpdir);
    unlink(path);
    assert_int_equal(umg_iplists_reload(r, err, sizeof(err)), UMG_EIO);
    assert_non_null(strstr(err, "tor.txt"));
    assert_int_equal(umg_iplists_lookup(r, S("198.51.101.1"), &list, NULL), UMG_OK);
    assert_int_equal(list, 1);
    assert_int_equal(umg_iplists_prefixes(r, 1), 1);
    umg_iplists_free(r);
}

typedef struct reader_s {
    umg_iplists_t *r;
    _Atomic int stop;
    long lookups, hits;
} reader_t;

static void *reader_main(void *arg)
{
    reader_t *rd = arg;
    umg_ip_t ip;
    umg_ip_parse(S("10.0.5.1"), &ip);
    while (!atomic_load(&rd->stop)) {
        umg_iplists_guard_t g;
        const umg_cidr_t *t = umg_iplists_enter(rd->r, &g);
        for (int i = 0; i < 64; i++) {
            rd->hits += umg_cidr_lookup(t, &ip, NULL) >= 0;
            rd->lookups++;
        }
        umg_iplists_leave(rd->r, &g);
    }
    return NULL;
}

/* Readers run through many reloads (ASan catches a snapshot freed under a reader). */
static void test_registry_concurrent(void **state)
{
    (void)state;
    umg_buf_t text = {0};
    for (int i = 0; i < 5000; i++) {
        umg_buf_printf(&text, "10.%d.%d.0/24\n", i / 256, i % 256);
    }
    write_file("big.txt", text.ptr);
    umg_buf_free(&text);
    char spec[256], err[256];
    snprintf(spec, sizeof(spec), "big=%s/big.txt", tmpdir);
    umg_iplists_t *r;
    assert_int_equal(umg_iplists_new(spec, &r, err, sizeof(err)), UMG_OK);
    reader_t rd[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        rd[i] = (reader_t){.r = r};
        pthread_create(&th[i], NULL, reader_main, &rd[i]);
    }
    for (int k = 0; k < 20; k++) {
        assert_int_equal(umg_iplists_reload(r, err, sizeof(err)), UMG_OK);
    }
    for (int i = 0; i < 3; i++) {
        atomic_store(&rd[i].stop, 1);
        pthread_join(th[i], NULL);
        assert_true(rd[i].lookups > 0);
    }
    int list;
    assert_int_equal(umg_iplists_lookup(r, S("10.0.5.1"), &list, NULL), UMG_OK);
    assert_int_equal(list, 0);
    umg_iplists_free(r);
}

/* ---------------------------------------------------------------- signatures */

/* Expected MACs computed independently:
 * python3 -c 'import hmac,hashlib; print(hmac.new(SECRET, TS + b"." + BODY, hashlib.sha256).hexdigest())' */
#define SECRET "as_5f2b9c4e8d7a6b1c0e3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d"
#define TS "1795773600"
#define BODY                                                                                                           \
    "{\"type\":\"install\",\"device\":{\"idfv\":\"6D92078A-8246-4BA4-AE5B-76104861E7DC\",\"platform\":\"ios\"}}"
#define MAC_BODY "c289eeb6a872d0b30fe81e1c9aecc5437c7f002f6d687764899d404b430f1dbe"
#define MAC_EMPTY "6d7aea569cc84c06e9621d2f9f08c2186da478383fd54efcaf9f7f0343d77ea5"
#define NOW 1795773600

static void test_sig_vectors(void **state)
{
    (void)state;
    char hex[65];
    umg_sig_sign(S(SECRET), S(TS), S(BODY), hex);
    assert_string_equal(hex, MAC_BODY);
    umg_sig_sign(S(SECRET), S(TS), S(""), hex);
    assert_string_equal(hex, MAC_EMPTY);
    umg_sig_sign(S("key"), S("1"), S(""), hex);
    assert_string_equal(hex, "53123bc365c2fe4bee48bc5cc6cd6c19699147d43513154ed34277c7c063e80f");
    assert_string_equal(umg_sig_reason(UMG_SIG_OK), "ok");
    assert_string_equal(umg_sig_reason(UMG_SIG_MISSING), "signature_missing");
    assert_string_equal(umg_sig_reason(UMG_SIG_INVALID), "signature_invalid");
    assert_string_equal(umg_sig_reason(UMG_SIG_STALE), "signature_stale");
    assert_string_equal(umg_sig_reason(UMG_SIG_REPLAYED), "signature_replayed");
}

static void test_sig_verify(void **state)
{
    (void)state;
    umg_slice_t keys[2] = {S(SECRET), S("as_other")};
    umg_slice_t wrong[1] = {S("as_wrong")};
    umg_slice_t good = S("v1=" MAC_BODY);
    umg_sig_cache_t *c;
    assert_int_equal(umg_sig_cache_new(1024, &c), UMG_OK);
    /* Correct, with some clock skew either way (inside the window). */
    assert_int_equal(umg_sig_verify(good, S(TS), S(BODY), keys, 1, NOW + 299, UMG_SIG_WINDOW_S, c), UMG_SIG_OK);
    /* The identical request again: a replay, whatever the clock says within the window. */
    assert_int_equal(umg_sig_verify(good, S(TS), S(BODY), keys, 1, NOW, UMG_SIG_WINDOW_S, c), UMG_SIG_REPLAYED);
    /* The secret in second place (a rotation's overlap) works too; upper-case hex and blanks are fine. */
    umg_slice_t rot[2] = {S("as_new"), S(SECRET)};
    assert_int_equal(umg_sig_verify(S(" v1=" MAC_EMPTY " "), S(TS), S(""), rot, 2, NOW - 300, UMG_SIG_WINDOW_S, c),
                     UMG_SIG_OK);
    char upper[70] = "v1=" MAC_BODY;
    for (char *p = upper; *p; p++) {
        *p = (char)(*p >= 'a' && *p <= 'f' ? *p - 32 : *p);
    }
    upper[0] = 'v';
    umg_sig_cache_t *c2;
    assert_int_equal(umg_sig_cache_new(1024, &c2), UMG_OK);
    assert_int_equal(umg_sig_verify(cs(upper), S(TS), S(BODY), keys, 2, NOW, UMG_SIG_WINDOW_S, c2), UMG_SIG_OK);
    umg_sig_cache_free(c2);
    /* Wrong key, changed body, changed timestamp. */
    assert_int_equal(umg_sig_verify(good, S(TS), S(BODY), wrong, 1, NOW, UMG_SIG_WINDOW_S, NULL), UMG_SIG_INVALID);
    assert_int_equal(umg_sig_verify(good, S(TS), S(BODY " "), keys, 1, NOW, UMG_SIG_WINDOW_S, NULL), UMG_SIG_INVALID);
    assert_int_equal(umg_sig_verify(good, S("1795773601"), S(BODY), keys, 1, NOW, UMG_SIG_WINDOW_S, NULL),
                     UMG_SIG_INVALID);
    /* Stale: more than 5 minutes behind, or ahead, of the server. */
    assert_int_equal(umg_sig_verify(good, S(TS), S(BODY), keys, 1, NOW + 301, UMG_SIG_WINDOW_S, NULL), UMG_SIG_STALE);
    assert_int_equal(umg_sig_verify(good, S(TS), S(BODY), keys, 1, NOW - 301, UMG_SIG_WINDOW_S, NULL), UMG_SIG_STALE);
    /* Missing and malformed headers. */
    assert_int_equal(umg_sig_verify(S(""), S(TS), S(BODY), keys, 1, NOW, UMG_SIG_WINDOW_S, NULL), UMG_SIG_MISSING);
    assert_int_equal(umg_sig_verify(good, S(""), S(BODY), keys, 1, NOW, UMG_SIG_WINDOW_S, NULL), UMG_SIG_MISSING);
    assert_int_equal(umg_sig_verify(good, S("  "), S(BODY), keys, 1, NOW, UMG_SIG_WINDOW_S, NULL), UMG_SIG_MISSING);
    const char *bad_sig[] = {MAC_BODY,
                             "v2=" MAC_BODY,
                             "v1=" MAC_BODY "00",
                             "v1=c289eeb6a872d0b30fe81e1c9aecc5437c7f002f6d687764899d404b430f1db",
                             "v1=g289eeb6a872d0b30fe81e1c9aecc5437c7f002f6d687764899d404b430f1dbe",
                             "v1 = " MAC_BODY,
                             "sha256=" MAC_BODY};
    for (size_t i = 0; i < UMG_ARRAY_SIZE(bad_sig); i++) {
        assert_int_equal(umg_sig_verify(cs(bad_sig[i]), S(TS), S(BODY), keys, 1, NOW, UMG_SIG_WINDOW_S, NULL),
                         UMG_SIG_INVALID);
    }
    const char *bad_ts[] = {"-1795773600", "1795773600.5", "1795773600000000", "0x10", "1795773600a"};
    for (size_t i = 0; i < UMG_ARRAY_SIZE(bad_ts); i++) {
        assert_int_equal(umg_sig_verify(good, cs(bad_ts[i]), S(BODY), keys, 1, NOW, UMG_SIG_WINDOW_S, NULL),
                         UMG_SIG_INVALID);
    }
    /* A re-signed retry (fresh timestamp) is not a replay. */
    char hex[65], sig[70];
    umg_sig_sign(S(SECRET), S("1795773660"), S(BODY), hex);
    snprintf(sig, sizeof(sig), "v1=%s", hex);
    assert_int_equal(umg_sig_verify(cs(sig), S("1795773660"), S(BODY), keys, 1, NOW + 60, UMG_SIG_WINDOW_S, c),
                     UMG_SIG_OK);
    umg_sig_count(UMG_SIG_OK);
    umg_sig_cache_free(c);
}

/* A full cache evicts instead of refusing honest requests; a replay far out of the window is stale. */
static void test_sig_cache_full(void **state)
{
    (void)state;
    umg_sig_cache_t *c;
    assert_int_equal(umg_sig_cache_new(10, &c), UMG_OK); /* 1024 entries */
    umg_slice_t keys[1] = {S(SECRET)};
    char ts[16], hex[65], sig[70];
    for (int i = 0; i < 5000; i++) {
        snprintf(ts, sizeof(ts), "%d", NOW + (i % 200));
        char body[32];
        snprintf(body, sizeof(body), "{\"n\":%d}", i);
        umg_sig_sign(keys[0], cs(ts), cs(body), hex);
        snprintf(sig, sizeof(sig), "v1=%s", hex);
        assert_int_equal(umg_sig_verify(cs(sig), cs(ts), cs(body), keys, 1, NOW + 100, 300, c), UMG_SIG_OK);
    }
    /* The last one is still remembered. */
    assert_int_equal(umg_sig_verify(cs(sig), cs(ts), S("{\"n\":4999}"), keys, 1, NOW + 100, 300, c), UMG_SIG_REPLAYED);
    umg_sig_cache_free(c);
}

/* ---------------------------------------------------------------- bot User-Agents */

static void test_botua(void **state)
{
    (void)state;
    umg_botua_t *m;
    char err[256];
    assert_int_equal(umg_botua_compile("default", &m, err, sizeof(err)), UMG_OK);
    struct {
        const char *ua;
        const char *want; /* the pattern, NULL: not a bot */
    } cases[] = {
        {"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "bot/"},
        {"Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "bot/"},
        {"Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)", "spider"},
        {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/119.0.0.0 "
         "Safari/537.36",
         "headlesschrome"},
        {"curl/8.4.0", "^curl/"},
        {"Wget/1.21.3", "^wget/"},
        {"python-requests/2.31.0", "python-requests"},
        {"Go-http-client/2.0", "^go-http-client"},
        {"facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", "facebookexternalhit"},
        {"Mozilla/5.0 (compatible; SomeNewCrawler; +https://example.com/about)", "crawler"},
        {"Mozilla/5.0 (compatible; Odd/1.0; +http://example.com/)", "+http"},
        /* Honest app and browser traffic. */
        {"okhttp/4.12.0", NULL},
        {"Dalvik/2.1.0 (Linux; U; Android 13; CUBOT X30 Build/TP1A.220624.014)", NULL},
        {"Spider Solitaire/3.2 CFNetwork/1410.0.3 Darwin/22.6.0", NULL},
        {"UnityPlayer/2021.3.8f1 (UnityWebRequest/1.0, libcurl/7.80.0-DEV)", NULL},
        {"Apache-HttpClient/UNAVAILABLE (java 1.4)", NULL},
        {"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
         "Version/17.1 Mobile/15E148 Safari/604.1",
         NULL},
        {"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Mobile "
         "Safari/537.36",
         NULL},
    };
    for (size_t i = 0; i < UMG_ARRAY_SIZE(cases); i++) {
        int r = umg_botua_match(m, cs(cases[i].ua));
        if (cases[i].want == NULL) {
            if (r != -1) {
                fprintf(stderr, "false positive on '%s': %s\n", cases[i].ua, umg_botua_pattern(m, r));
            }
            assert_int_equal(r, -1);
        } else {
            assert_true(r >= 0);
            assert_string_equal(umg_botua_pattern(m, r), cases[i].want);
        }
    }
    assert_int_equal(umg_botua_match(m, S("")), UMG_BOTUA_EMPTY);
    assert_int_equal(umg_botua_match(m, S("  \t ")), UMG_BOTUA_EMPTY);
    umg_botua_free(m);

    /* A custom list: anchoring, case, earliest position, first listed, exemptions. */
    assert_int_equal(umg_botua_compile(" ^MyProbe ,zzz, yyy,!trusted-sdk,bot/", &m, err, sizeof(err)), UMG_OK);
    assert_int_equal(umg_botua_count(m), 5);
    assert_int_equal(umg_botua_match(m, S("myprobe/1")), 0);
    assert_int_equal(umg_botua_match(m, S("x myprobe/1")), -1);
    assert_int_equal(umg_botua_match(m, S("a YYY b ZZZ")), 2);
    assert_int_equal(umg_botua_match(m, S("a zzz b yyy")), 1);
    assert_int_equal(umg_botua_match(m, S("Googlebot/2.1 Trusted-SDK/1")), -1);
    assert_int_equal(umg_botua_match(m, S("zz")), -1);
    umg_botua_free(m);
    /* Empty spec: nothing is a bot, empty is still reported. */
    assert_int_equal(umg_botua_compile("", &m, err, sizeof(err)), UMG_OK);
    assert_int_equal(umg_botua_match(m, S("curl/8")), -1);
    assert_int_equal(umg_botua_match(m, S("")), UMG_BOTUA_EMPTY);
    umg_botua_free(m);
    /* Bad patterns and files. */
    assert_int_equal(umg_botua_compile("a", &m, err, sizeof(err)), UMG_EINVAL);
    assert_non_null(strstr(err, "'a'"));
    assert_int_equal(umg_botua_compile("ok,^x", &m, err, sizeof(err)), UMG_EINVAL);
    assert_int_equal(umg_botua_compile("@/nonexistent/bots.txt", &m, err, sizeof(err)), UMG_EIO);
    assert_non_null(strstr(err, "/nonexistent/bots.txt"));
    write_file("bots.txt", "# mine\ndefault\n\n  probe-ua  \nq\n");
    char spec[128];
    snprintf(spec, sizeof(spec), "@%s/bots.txt", tmpdir);
    assert_int_equal(umg_botua_compile(spec, &m, err, sizeof(err)), UMG_EINVAL);
    assert_non_null(strstr(err, "bots.txt:5"));
    write_file("bots.txt", "# mine\ndefault\n\n  probe-ua  \n");
    assert_int_equal(umg_botua_compile(spec, &m, err, sizeof(err)), UMG_OK);
    assert_true(umg_botua_match(m, S("Probe-UA 1.0")) >= 0);
    assert_true(umg_botua_match(m, S("curl/8")) >= 0);
    umg_botua_free(m);
}

int main(void)
{
    umg_log_min_level = UMG_LOG_WARN;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ip_parse),
        cmocka_unit_test(test_cidr_parse),
        cmocka_unit_test(test_lpm_random),
        cmocka_unit_test(test_lpm_edges),
        cmocka_unit_test(test_lpm_oom),
        cmocka_unit_test(test_list_parse),
        cmocka_unit_test(test_registry_spec),
        cmocka_unit_test(test_registry_reload),
        cmocka_unit_test(test_registry_concurrent),
        cmocka_unit_test(test_sig_vectors),
        cmocka_unit_test(test_sig_verify),
        cmocka_unit_test(test_sig_cache_full),
        cmocka_unit_test(test_botua),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
