/*
 * umg_core_int.h - helpers shared between the core library's own files and its
 * unit tests. Nothing outside src/core and tests/unit should include this.
 */
#ifndef UMG_CORE_INT_H
#define UMG_CORE_INT_H

#include "umg_core.h"

/** Table-driven CRC32C; always available, used when SSE4.2 is not. */
uint32_t umg__crc32c_sw(uint32_t crc, const void *data, size_t len);
/** 1 when the CPU has the SSE4.2 crc32 instruction (and this is x86-64). */
int umg__crc32c_hw_available(void);
/** CRC32C with the crc32 instruction; only call when hw_available() is 1. */
uint32_t umg__crc32c_hw(uint32_t crc, const void *data, size_t len);

/** Fills `n` bytes of `out` from the OS; UMG_OK or UMG_EIO. */
int umg__random_fill(void *out, size_t n);

#endif
