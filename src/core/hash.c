/*
 * hash.c - owns checksums and hashing: CRC32C (Castagnoli) for stored data,
 * using the SSE4.2 crc32 instruction when the CPU has it and a slicing-by-8
 * table otherwise (both give identical results), and umg_hash64, a 64-bit
 * multiply-fold hash for tables and partitioning.
 */
#include <pthread.h>

#include "umg_core.h"
#include "umg_core_int.h"

/* ---------------------------------------------------------------- CRC32C */

#define CRC32C_POLY 0x82F63B78u /* reflected Castagnoli polynomial */

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static int crc_hw;

/*
 * The hardware loop runs three independent CRCs over three lanes of CRC_LANE
 * bytes each: one crc32 instruction has a latency of three cycles but the CPU
 * starts one per cycle, so three chains run at about three times the speed of
 * one. The lanes are joined by linearity: the register after lane A then lane B
 * is (A's register advanced over CRC_LANE zero bytes) xor (B's register from
 * zero); crc_shift holds that advance, one table per byte of the register.
 */
#define CRC_LANE 64
static uint32_t crc_shift[4][256];

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) {
            c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1)));
        }
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
        for (int t = 1; t < 8; t++) {
            uint32_t prev = crc_table[t - 1][i];
            crc_table[t][i] = (prev >> 8) ^ crc_table[0][prev & 0xff];
        }
    }
    for (int k = 0; k < 4; k++) {
        for (uint32_t b = 0; b < 256; b++) {
            uint32_t c = b << (8 * k);
            for (int n = 0; n < CRC_LANE; n++) {
                c = (c >> 8) ^ crc_table[0][c & 0xff];
            }
            crc_shift[k][b] = c;
        }
    }
#if defined(__x86_64__)
    __builtin_cpu_init();
    crc_hw = __builtin_cpu_supports("sse4.2") != 0;
#endif
}

static uint64_t load_le64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static uint32_t load_le32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    return v;
}

uint32_t umg__crc32c_sw(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&crc_once, crc_init);
    const unsigned char *p = data;
    uint32_t c = ~crc;
    while (len >= 8) {
        uint64_t w = load_le64(p) ^ c;
        c = crc_table[7][w & 0xff] ^ crc_table[6][(w >> 8) & 0xff] ^ crc_table[5][(w >> 16) & 0xff] ^
            crc_table[4][(w >> 24) & 0xff] ^ crc_table[3][(w >> 32) & 0xff] ^ crc_table[2][(w >> 40) & 0xff] ^
            crc_table[1][(w >> 48) & 0xff] ^ crc_table[0][w >> 56];
        p += 8;
        len -= 8;
    }
    while (len-- > 0) {
        c = (c >> 8) ^ crc_table[0][(c ^ *p++) & 0xff];
    }
    return ~c;
}

int umg__crc32c_hw_available(void)
{
    pthread_once(&crc_once, crc_init);
    return crc_hw;
}

#if defined(__x86_64__)
/* The raw register c advanced over CRC_LANE zero bytes. */
static inline uint32_t crc_lane_shift(uint32_t c)
{
    return crc_shift[0][c & 0xff] ^ crc_shift[1][(c >> 8) & 0xff] ^ crc_shift[2][(c >> 16) & 0xff] ^
           crc_shift[3][c >> 24];
}

__attribute__((target("sse4.2"))) uint32_t umg__crc32c_hw(uint32_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t c = ~crc;
    if (len >= 3 * CRC_LANE) {
        pthread_once(&crc_once, crc_init);
    }
    while (len >= 3 * CRC_LANE) {
        uint64_t c1 = 0, c2 = 0;
        for (size_t i = 0; i < CRC_LANE; i += 8) {
            uint64_t w0, w1, w2;
            memcpy(&w0, p + i, 8);
            memcpy(&w1, p + CRC_LANE + i, 8);
            memcpy(&w2, p + 2 * CRC_LANE + i, 8);
            c = __builtin_ia32_crc32di(c, w0);
            c1 = __builtin_ia32_crc32di(c1, w1);
            c2 = __builtin_ia32_crc32di(c2, w2);
        }
        c = crc_lane_shift(crc_lane_shift((uint32_t)c) ^ (uint32_t)c1) ^ (uint32_t)c2;
        p += 3 * CRC_LANE;
        len -= 3 * CRC_LANE;
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = __builtin_ia32_crc32di(c, w);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len-- > 0) {
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    }
    return ~c32;
}
#else
uint32_t umg__crc32c_hw(uint32_t crc, const void *data, size_t len)
{
    return umg__crc32c_sw(crc, data, len);
}
#endif

uint32_t umg_crc32c(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&crc_once, crc_init);
    if (crc_hw) {
        return umg__crc32c_hw(crc, data, len);
    }
    return umg__crc32c_sw(crc, data, len);
}

/* ---------------------------------------------------------------- hash64 */

/*
 * The mixing step multiplies two 64-bit words into 128 bits and folds the
 * halves together; each input word passes through at least one such step
 * with a distinct odd constant, and the length and seed enter the final
 * fold so inputs that differ only in trailing zero bytes still differ.
 * Like every hash of this family it is not meant to resist inputs chosen to
 * collide; keys from the network go into tables with a secret seed.
 */
#define H_K0 UINT64_C(0x9E3779B97F4A7C15)
#define H_K1 UINT64_C(0xC2B2AE3D27D4EB4F)
#define H_K2 UINT64_C(0x165667B19E3779F9)
#define H_K3 UINT64_C(0xD6E8FEB86659FD93)

static inline uint64_t fold_mul(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

uint64_t umg_hash64(const void *data, size_t len, uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t h = seed ^ fold_mul(seed ^ H_K0, H_K1);
    size_t n = len;

    if (n > 32) {
        /* Two independent lanes let the multiplies overlap on long keys. */
        uint64_t h2 = h ^ H_K2;
        while (n > 32) {
            h = fold_mul(load_le64(p) ^ H_K1, load_le64(p + 8) ^ h);
            h2 = fold_mul(load_le64(p + 16) ^ H_K2, load_le64(p + 24) ^ h2);
            p += 32;
            n -= 32;
        }
        h ^= h2;
    }
    while (n > 16) {
        h = fold_mul(load_le64(p) ^ H_K1, load_le64(p + 8) ^ h);
        p += 16;
        n -= 16;
    }

    /* 0..16 bytes remain; overlapping loads cover them without a byte loop. */
    uint64_t a = 0, b = 0;
    if (n > 8) {
        a = load_le64(p);
        b = load_le64(p + n - 8);
    } else if (n >= 4) {
        a = ((uint64_t)load_le32(p) << 32) | load_le32(p + n - 4);
    } else if (n > 0) {
        a = ((uint64_t)p[0] << 16) | ((uint64_t)p[n / 2] << 8) | p[n - 1];
    }
    h = fold_mul(a ^ H_K1, b ^ h ^ H_K3);
    return fold_mul(h ^ H_K0, (uint64_t)len ^ H_K2);
}
