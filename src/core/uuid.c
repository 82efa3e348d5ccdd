/*
 * uuid.c - owns UUIDs (random version 4, parsing and formatting the 36-byte
 * canonical form) and the process's source of OS randomness, getrandom(2),
 * with /dev/urandom as a fallback for kernels without it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/random.h>
#include <unistd.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "umg_core.h"
#include "umg_core_int.h"

static int urandom_fill(unsigned char *p, size_t n)
{
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return UMG_EIO;
    }
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            close(fd);
            return UMG_EIO;
        }
        p += r;
        n -= (size_t)r;
    }
    close(fd);
    return UMG_OK;
}

int umg__random_fill(void *out, size_t n)
{
    unsigned char *p = out;
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == ENOSYS) {
                return urandom_fill(p, n);
            }
            return UMG_EIO;
        }
        p += r;
        n -= (size_t)r;
    }
    return UMG_OK;
}

/*
 * Without randomness, IDs and secrets would be predictable; carrying on is
 * worse than stopping, so a failure here aborts the process.
 */
void umg_random_bytes(void *out, size_t n)
{
    if (umg__random_fill(out, n) != UMG_OK) {
        umg_log(UMG_LOG_ERROR, "core", "no OS randomness: %s", strerror(errno));
        abort();
    }
}

/*
 * Event ids are made once per event on the ingest path: one getrandom call per
 * id would be a syscall per event, so each thread draws 4 KiB at a time and
 * hands out 16 bytes per id. (The daemon never forks, so no two processes
 * share a pool.) Keys and secrets use umg_random_bytes directly.
 */
static _Thread_local struct {
    uint8_t buf[4096];
    size_t pos;
} uuid_pool = {.pos = sizeof(uuid_pool.buf)};

void umg_uuid_v4(umg_uuid_t *out)
{
    if (uuid_pool.pos + sizeof(out->b) > sizeof(uuid_pool.buf)) {
        umg_random_bytes(uuid_pool.buf, sizeof(uuid_pool.buf));
        uuid_pool.pos = 0;
    }
    memcpy(out->b, uuid_pool.buf + uuid_pool.pos, sizeof(out->b));
    uuid_pool.pos += sizeof(out->b);
    out->b[6] = (uint8_t)((out->b[6] & 0x0F) | 0x40); /* version 4 */
    out->b[8] = (uint8_t)((out->b[8] & 0x3F) | 0x80); /* RFC 4122 variant */
}

/* Offsets of the 16 hex digit pairs in the 36-character form. */
static const unsigned char uuid_pos[16] = {0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34};

static inline uint64_t load32x2(const char *a, const char *b)
{
    uint32_t lo, hi;
    memcpy(&lo, a, 4);
    memcpy(&hi, b, 4);
    return (uint64_t)lo | (uint64_t)hi << 32;
}

/* Packs eight hex digits (validated) into four bytes, first digit highest. */
static inline void hex8_to_bytes(uint64_t w, uint8_t out[4])
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* Digit values: low nibble, plus 9 for letters (bit 0x40). */
    uint64_t nib = (w & UMG_SWAR_ONES * 0x0f) + ((w >> 6) & UMG_SWAR_ONES) * 9;
    /* Byte i of m is nib[i] << 4 | nib[i + 1]; keep the even bytes and pack them. */
    uint64_t m = ((nib << 4) | (nib >> 8)) & UINT64_C(0x00ff00ff00ff00ff);
    m = (m | (m >> 8)) & UINT64_C(0x0000ffff0000ffff);
    m = (m | (m >> 16)) & UINT64_C(0x00000000ffffffff);
    uint32_t four = (uint32_t)m;
    memcpy(out, &four, 4);
#else
    char t[8];
    memcpy(t, &w, 8);
    for (int i = 0; i < 4; i++) {
        unsigned char a = (unsigned char)t[2 * i], b = (unsigned char)t[2 * i + 1];
        out[i] = (uint8_t)(((a & 0xfu) + 9u * (a >> 6)) << 4 | ((b & 0xfu) + 9u * (b >> 6)));
    }
#endif
}

#if defined(__SSE2__)
/*
 * SSE2 (always there on x86-64): three 16-byte loads cover the 36 bytes
 * (0-15, 16-31, 20-35); each byte is classed as digit, hex letter or dash
 * with compares, and the masks are checked against where dashes belong.
 */
static int uuid_check(const char *s)
{
    static const unsigned short dashes[3] = {1u << 8 | 1u << 13, 1u << 2 | 1u << 7, 1u << 3};
    static const unsigned char at[3] = {0, 16, 20};
    unsigned bad = 0, upper = 0, nonzero = 0;
    for (int k = 0; k < 3; k++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + at[k]));
        __m128i folded = _mm_or_si128(v, _mm_set1_epi8(0x20));
        /* Signed compares: bytes >= 0x80 are negative and fail every class. */
        __m128i digit =
            _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('0' - 1)), _mm_cmpgt_epi8(_mm_set1_epi8('9' + 1), v));
        __m128i alpha = _mm_and_si128(_mm_cmpgt_epi8(folded, _mm_set1_epi8('a' - 1)),
                                      _mm_cmpgt_epi8(_mm_set1_epi8('f' + 1), folded));
        __m128i up =
            _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('A' - 1)), _mm_cmpgt_epi8(_mm_set1_epi8('F' + 1), v));
        unsigned dash = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('-')));
        unsigned ok = (unsigned)_mm_movemask_epi8(_mm_or_si128(digit, alpha));
        unsigned zero = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('0')));
        bad |= (dash ^ dashes[k]) | ((ok | dash) ^ 0xffffu);
        upper |= (unsigned)_mm_movemask_epi8(up);
        nonzero |= (zero | dash) ^ 0xffffu;
    }
    if (bad != 0) {
        return -1;
    }
    return (upper != 0 ? UMG_UUID_UPPER : 0) | (nonzero == 0 ? UMG_UUID_ZERO : 0);
}
#else
/* High bit of each byte of w that equals c (exact: no carry crosses a byte). */
static inline uint64_t swar_eq(uint64_t w, unsigned char c)
{
    uint64_t x = w ^ (UMG_SWAR_ONES * c);
    return ~(((x & ~UMG_SWAR_HIGH) + ~UMG_SWAR_HIGH) | x) & UMG_SWAR_HIGH;
}

/*
 * Portable version: five overlapping words (bytes 0, 8, 16, 24 and 28 on),
 * with the dashes expected at fixed byte positions of the second and third.
 */
static int uuid_check(const char *s)
{
    static const uint64_t dash_at[5] = {
        0, UINT64_C(0x80) | UINT64_C(0x80) << 40, UINT64_C(0x80) << 16 | UINT64_C(0x80) << 56, 0, 0,
    };
    static const unsigned char at[5] = {0, 8, 16, 24, 28};
    uint64_t bad = 0, upper = 0, nonzero = 0;
    for (int k = 0; k < 5; k++) {
        uint64_t w = umg_load64(s + at[k]);
        uint64_t folded = w | UMG_SWAR_ONES * 0x20; /* 'A'-'F' -> 'a'-'f'; digits keep their value */
        uint64_t hex = UMG_SWAR_IN(w, '0', '9') | UMG_SWAR_IN(folded, 'a', 'f');
        uint64_t dash = swar_eq(w, '-');
        bad |= (w & UMG_SWAR_HIGH) | (dash ^ dash_at[k]) | ((hex | dash) ^ UMG_SWAR_HIGH);
        upper |= UMG_SWAR_IN(w, 'A', 'F');
        nonzero |= (w ^ (UMG_SWAR_ONES * '0')) & ~((dash_at[k] >> 7) * 0xff);
    }
    if (bad != 0) {
        return -1;
    }
    return (upper != 0 ? UMG_UUID_UPPER : 0) | (nonzero == 0 ? UMG_UUID_ZERO : 0);
}
#endif

int umg_uuid_scan(const char *s, size_t n, umg_uuid_t *out)
{
    if (n != 36) {
        return -1;
    }
    int kind = uuid_check(s);
    if (kind >= 0 && out != NULL) {
        hex8_to_bytes(umg_load64(s), out->b);
        hex8_to_bytes(load32x2(s + 9, s + 14), out->b + 4);
        hex8_to_bytes(load32x2(s + 19, s + 24), out->b + 8);
        hex8_to_bytes(umg_load64(s + 28), out->b + 12);
    }
    return kind;
}

/* "00" to "ff": two lowercase hex digits per byte value. */
static const char hex_pairs[513] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
                                   "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
                                   "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
                                   "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
                                   "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
                                   "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
                                   "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
                                   "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

/* Two digits per table load. */
char *umg_uuid_write(char *p, const umg_uuid_t *u)
{
    for (int i = 0; i < 16; i++) {
        memcpy(p + uuid_pos[i], hex_pairs + 2 * u->b[i], 2);
    }
    p[8] = p[13] = p[18] = p[23] = '-';
    return p + 36;
}

int umg_uuid_parse(const char *s, size_t len, umg_uuid_t *out)
{
    umg_uuid_t u;
    if (s == NULL || umg_uuid_scan(s, len, &u) < 0) {
        return UMG_EINVAL;
    }
    *out = u;
    return UMG_OK;
}

void umg_uuid_format(const umg_uuid_t *u, char out[37])
{
    *umg_uuid_write(out, u) = '\0';
}
