/*
 * fuzz_attr_inputs.c - the attribution core's parsers of what devices and ad
 * networks send, fed arbitrary bytes: the User-Agent parser
 * (umg_attr_ua_parse, which searches sixteen bytes at a time), the install
 * referrer's click_id (umg_attr_referrer_click_id, at several buffer sizes),
 * identifier and click id hashes, the OS version,
 * platform and model of the fingerprint, and IP addresses (umg_ip_parse,
 * checked against inet_pton). Checks what each promises: a parsed model
 * lies inside the User-Agent, a click_id inside the buffer and no longer
 * than it, an address parses to the
 * same bytes as inet_pton gives it, and "::ffff:a.b.c.d" hashes as
 * "a.b.c.d", any writing of an address as its canonical text. Nothing may crash, read outside the input or disagree.
 *
 *   build: meson setup build-fuzz -Dfuzz=true (clang); run on a copy of the
 *   seeds (libFuzzer writes into its corpus directory):
 *   cp -r tests/fuzz/corpus/attr_inputs /tmp/ai && build-fuzz/tests/fuzz/fuzz_attr_inputs /tmp/ai
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "umg_attr.h"
#include "umg_fraud_net.h"

static void check_ua(umg_slice_t s)
{
    umg_attr_ua_t ua;
    memset(&ua, 0xa5, sizeof(ua));
    if (umg_attr_ua_parse(s, &ua) != UMG_OK) {
        return;
    }
    if (ua.platform != UMG_ATTR_PLATFORM_IOS && ua.platform != UMG_ATTR_PLATFORM_ANDROID) {
        abort();
    }
    if (ua.model.len > 0 && (ua.model.ptr < s.ptr || ua.model.ptr + ua.model.len > s.ptr + s.len)) {
        abort(); /* the model borrows from the User-Agent */
    }
    (void)umg_attr_os_pack(ua.platform, ua.major, ua.minor, ua.patch);
    (void)umg_attr_model_hash(ua.model);
}

static void check_referrer(umg_slice_t s)
{
    static const size_t caps[] = {1, 8, 64, 4096};
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
        char *buf = malloc(caps[i]); /* exactly cap bytes: a write past them is caught */
        if (buf == NULL) {
            return;
        }
        umg_slice_t out = {0};
        int rc = umg_attr_referrer_click_id(s, buf, caps[i], &out);
        if (rc == UMG_OK && (out.ptr != buf || out.len == 0 || out.len > caps[i])) {
            abort();
        }
        if (rc != UMG_OK && rc != UMG_ENOENT && rc != UMG_ERANGE) {
            abort();
        }
        if (rc == UMG_OK && umg_attr_click_hash(out) == 0) {
            abort(); /* the key of a click_id is never 0 */
        }
        free(buf);
    }
}

static void check_ip(umg_slice_t s)
{
    char text[64];
    int has_nul = memchr(s.ptr, 0, s.len) != NULL;
    umg_ip_t ip;
    int ours = umg_ip_parse(s, &ip) == UMG_OK;
    if (s.len >= sizeof(text) || has_nul) {
        if (ours && s.len >= sizeof(text)) {
            abort(); /* no address is that long */
        }
        return;
    }
    memcpy(text, s.ptr, s.len);
    text[s.len] = '\0';
    unsigned char b4[4], b6[16];
    int v4 = inet_pton(AF_INET, text, b4) == 1, v6 = inet_pton(AF_INET6, text, b6) == 1;
    if (ours != (v4 || v6)) {
        fprintf(stderr, "umg_ip_parse %s, inet_pton %s: \"%s\"\n", ours ? "accepts" : "refuses",
                v4 || v6 ? "accepts" : "refuses", text);
        abort();
    }
    if (!ours) {
        return;
    }
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (v4 && (memcmp(ip.b, mapped, 12) != 0 || memcmp(ip.b + 12, b4, 4) != 0)) {
        abort();
    }
    if (v6 && memcmp(ip.b, b6, 16) != 0) {
        abort();
    }
    if (v4) { /* the same address written as IPv4-mapped IPv6 hashes alike */
        char m[80];
        int n = snprintf(m, sizeof(m), "::ffff:%s", text);
        if (umg_attr_ip_hash(umg_slice(m, (size_t)n)) != umg_attr_ip_hash(s)) {
            abort();
        }
    }
    char canon[INET6_ADDRSTRLEN]; /* any writing of an address hashes as its canonical text */
    if (inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? (const void *)b4 : (const void *)b6, canon, sizeof(canon)) != NULL &&
        umg_attr_ip_hash(umg_slice(canon, strlen(canon))) != umg_attr_ip_hash(s)) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    umg_slice_t s = umg_slice((const char *)data, size);
    check_ua(s);
    check_referrer(s);
    check_ip(s);
    for (int k = 0; k < UMG_ATTR_ID_KINDS; k++) {
        (void)umg_attr_id_hash((umg_attr_id_kind_t)k, s);
    }
    umg_attr_platform_t pl = umg_attr_platform_parse(s);
    if (pl != UMG_ATTR_PLATFORM_UNKNOWN && pl != UMG_ATTR_PLATFORM_IOS && pl != UMG_ATTR_PLATFORM_ANDROID) {
        abort();
    }
    for (int p = UMG_ATTR_PLATFORM_IOS; p <= UMG_ATTR_PLATFORM_ANDROID; p++) {
        uint32_t os = umg_attr_os_parse((umg_attr_platform_t)p, s);
        if (os != 0 && os >> 24 != (uint32_t)p) {
            abort();
        }
    }
    /* The fingerprint from the bytes cut in three: IP, User-Agent, then OS version and model. */
    size_t a = size / 3, b = 2 * size / 3;
    umg_attr_fp_t fp;
    umg_attr_fp_make(&fp, umg_slice(s.ptr, a), umg_slice(s.ptr + a, b - a), umg_slice("android", 7),
                     umg_slice(s.ptr + b, (size - b) / 2),
                     umg_slice(s.ptr + b + (size - b) / 2, size - b - (size - b) / 2));
    return 0;
}
