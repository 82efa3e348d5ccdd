/*
 * arena.c - owns umg_arena_t, the bump allocator behind requests and batches.
 * Blocks form a list, newest first; a request larger than the block size gets
 * a block of its own, linked behind the current one so small requests keep
 * filling the current block. Reset keeps one standard block for reuse.
 */
#include "umg_core.h"

#define ARENA_ALIGN 16
#define ARENA_DEFAULT_BLOCK 4096

typedef struct umg_arena_block_s {
    struct umg_arena_block_s *next;
    size_t cap;
    size_t used;
    _Alignas(ARENA_ALIGN) unsigned char data[];
} umg_arena_block_t;

void umg_arena_init(umg_arena_t *a, size_t block_size)
{
    a->head = NULL;
    if (block_size == 0) {
        block_size = ARENA_DEFAULT_BLOCK;
    }
    a->block_size = (block_size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
}

static umg_arena_block_t *block_new(size_t cap)
{
    if (cap > SIZE_MAX - sizeof(umg_arena_block_t)) {
        return NULL;
    }
    umg_arena_block_t *blk = umg_malloc(sizeof(*blk) + cap);
    if (blk == NULL) {
        return NULL;
    }
    blk->next = NULL;
    blk->cap = cap;
    blk->used = 0;
    return blk;
}

void *umg_arena_alloc(umg_arena_t *a, size_t n)
{
    if (n > SIZE_MAX - ARENA_ALIGN) {
        return NULL;
    }
    /* Zero-byte requests still get a distinct address. */
    size_t need = n == 0 ? ARENA_ALIGN : (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    umg_arena_block_t *cur = a->head;
    if (cur != NULL && cur->cap - cur->used >= need) {
        void *p = cur->data + cur->used;
        cur->used += need;
        return p;
    }
    if (need > a->block_size) {
        umg_arena_block_t *big = block_new(need);
        if (big == NULL) {
            return NULL;
        }
        big->used = need;
        if (cur != NULL) {
            big->next = cur->next;
            cur->next = big;
        } else {
            a->head = big;
        }
        return big->data;
    }
    umg_arena_block_t *blk = block_new(a->block_size);
    if (blk == NULL) {
        return NULL;
    }
    blk->next = cur;
    blk->used = need;
    a->head = blk;
    return blk->data;
}

int umg_arena_own(umg_arena_t *a, umg_slice_t *const *v, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        total += v[i]->len;
    }
    if (total == 0) {
        return UMG_OK;
    }
    char *dst = umg_arena_alloc(a, total);
    if (dst == NULL) {
        return UMG_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (v[i]->len != 0) {
            memcpy(dst, v[i]->ptr, v[i]->len);
            v[i]->ptr = dst;
            dst += v[i]->len;
        }
    }
    return UMG_OK;
}

void umg_arena_reset(umg_arena_t *a)
{
    umg_arena_block_t *keep = NULL;
    umg_arena_block_t *blk = a->head;
    while (blk != NULL) {
        umg_arena_block_t *next = blk->next;
        if (keep == NULL && blk->cap == a->block_size) {
            keep = blk;
        } else {
            umg_free(blk);
        }
        blk = next;
    }
    if (keep != NULL) {
        keep->next = NULL;
        keep->used = 0;
    }
    a->head = keep;
}

void umg_arena_free(umg_arena_t *a)
{
    if (a == NULL) {
        return;
    }
    umg_arena_block_t *blk = a->head;
    while (blk != NULL) {
        umg_arena_block_t *next = blk->next;
        umg_free(blk);
        blk = next;
    }
    a->head = NULL;
}
