/*
 * alloc.c - owns the counted heap allocator. Every block carries a 16-byte
 * header holding its size so umg_free can subtract it from the live-byte
 * counter; the header keeps malloc's 16-byte alignment for the caller. Tests
 * can make the N-th following allocation (and all after it) fail. The counter
 * is exported as the `umg_memory_bytes` gauge by metrics.c.
 *
 * A block that umg_realloc grows to MAP_MIN or more becomes a mapping of its
 * own, and later growth moves its pages with mremap instead of copying them.
 * malloc would do the same only for blocks past its mmap threshold, which it
 * raises (up to 32 MiB) each time such a block is freed: a growing table under
 * it was copied into fresh pages at every growth, each page faulting in, and
 * whether it was copied depended on what the process had freed before.
 */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "umg_core.h"

#define HDR_SIZE 16
#define MAP_MIN ((size_t)8 << 20)

typedef union alloc_hdr_u {
    struct {
        size_t size;
        size_t mapped; /* the length of its own mapping (umg_realloc), or 0: from malloc */
    } b;
    _Alignas(16) unsigned char pad[HDR_SIZE];
} alloc_hdr_t;

_Static_assert(sizeof(alloc_hdr_t) == HDR_SIZE, "allocation header must be 16 bytes");

static _Atomic size_t live_bytes;
static _Atomic long fail_at;     /* 0: injection off */
static _Atomic long alloc_calls; /* allocations since umg_alloc_fail_after */

/* Decides whether this allocation is one the test asked to fail. */
static int should_fail(void)
{
    long at = atomic_load_explicit(&fail_at, memory_order_relaxed);
    if (at <= 0) {
        return 0;
    }
    return atomic_fetch_add_explicit(&alloc_calls, 1, memory_order_relaxed) + 1 >= at;
}

static void *to_user(alloc_hdr_t *h, size_t size)
{
    h->b.size = size;
    atomic_fetch_add_explicit(&live_bytes, size, memory_order_relaxed);
    return (unsigned char *)h + HDR_SIZE;
}

static alloc_hdr_t *to_hdr(void *p)
{
    return (alloc_hdr_t *)(void *)((unsigned char *)p - HDR_SIZE);
}

void *umg_malloc(size_t size)
{
    if (size > SIZE_MAX - HDR_SIZE || should_fail()) {
        return NULL;
    }
    alloc_hdr_t *h = malloc(HDR_SIZE + size);
    if (h == NULL) {
        return NULL;
    }
    h->b.mapped = 0;
    return to_user(h, size);
}

void *umg_calloc(size_t n, size_t size)
{
    if (size != 0 && n > (SIZE_MAX - HDR_SIZE) / size) {
        return NULL;
    }
    if (should_fail()) {
        return NULL;
    }
    alloc_hdr_t *h = calloc(1, HDR_SIZE + n * size);
    if (h == NULL) {
        return NULL;
    }
    return to_user(h, n * size); /* mapped: 0, as calloc zeroed it */
}

/* Like realloc, except that size 0 yields a valid empty block, never a free. */
void *umg_realloc(void *p, size_t size)
{
    if (p == NULL) {
        return umg_malloc(size);
    }
    if (size > SIZE_MAX - HDR_SIZE || should_fail()) {
        return NULL;
    }
    alloc_hdr_t *old = to_hdr(p);
    size_t old_size = old->b.size, old_map = old->b.mapped;
    alloc_hdr_t *h;
    if (old_map != 0 || size >= MAP_MIN) {
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        if (size > SIZE_MAX - HDR_SIZE - page) {
            return NULL;
        }
        size_t len = (HDR_SIZE + size + page - 1) / page * page;
        if (old_map != 0) { /* its pages move, none is copied */
            h = len == old_map ? old : mremap(old, old_map, len, MREMAP_MAYMOVE);
        } else {
            h = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (h != MAP_FAILED) {
                memcpy(h, old, HDR_SIZE + (old_size < size ? old_size : size));
                free(old);
            }
        }
        if (h == MAP_FAILED) {
            return NULL;
        }
        h->b.mapped = len;
    } else if ((h = realloc(old, HDR_SIZE + size)) == NULL) {
        return NULL;
    }
    atomic_fetch_sub_explicit(&live_bytes, old_size, memory_order_relaxed);
    return to_user(h, size);
}

void umg_free(void *p)
{
    if (p == NULL) {
        return;
    }
    alloc_hdr_t *h = to_hdr(p);
    atomic_fetch_sub_explicit(&live_bytes, h->b.size, memory_order_relaxed);
    if (h->b.mapped != 0) {
        munmap(h, h->b.mapped);
    } else {
        free(h);
    }
}

char *umg_strndup(const char *s, size_t len)
{
    const char *nul = len != 0 ? memchr(s, '\0', len) : NULL;
    size_t n = nul != NULL ? (size_t)(nul - s) : len;
    if (n == SIZE_MAX) {
        return NULL;
    }
    char *d = umg_malloc(n + 1);
    if (d == NULL) {
        return NULL;
    }
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *umg_memdup(const void *p, size_t len)
{
    if (len == SIZE_MAX) {
        return NULL;
    }
    char *d = umg_malloc(len + 1);
    if (d == NULL) {
        return NULL;
    }
    if (len != 0) {
        memcpy(d, p, len);
    }
    d[len] = '\0';
    return d;
}

size_t umg_alloc_bytes(void)
{
    return atomic_load_explicit(&live_bytes, memory_order_relaxed);
}

void umg_alloc_fail_after(long n)
{
    /* Disarm first so a concurrent allocation never sees the new limit with the old count. */
    atomic_store_explicit(&fail_at, 0, memory_order_relaxed);
    atomic_store_explicit(&alloc_calls, 0, memory_order_relaxed);
    atomic_store_explicit(&fail_at, n > 0 ? n : 0, memory_order_relaxed);
}

/* Blocks at least this big ask for transparent huge pages. */
#define HUGE_MIN ((size_t)8 << 20)
#define HUGE_PAGE ((uintptr_t)2 << 20)

void *umg_calloc_huge(size_t n, size_t size)
{
    void *p = umg_calloc(n, size);
    if (p != NULL && n * size >= HUGE_MIN) {
        uintptr_t lo = ((uintptr_t)p + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
        uintptr_t hi = ((uintptr_t)p + n * size) & ~(HUGE_PAGE - 1);
        if (hi > lo) {
            (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
        }
    }
    return p;
}
