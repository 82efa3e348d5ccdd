/*
 * cidr.c - IP addresses, CIDR prefixes and the longest-prefix-match table the
 * blocked_ip rule looks addresses up in.
 *
 * CIDR prefixes are laminar: two prefixes are either disjoint or one holds
 * the other. So the address space cuts into disjoint intervals over which
 * the answer (the list of the longest matching prefix, and the mask of every
 * list that matches) does not change, and a sweep over the prefixes sorted
 * by (start, length) with a stack of the open ones finds those intervals in
 * O(n log n). A lookup then is "the last interval starting at or before the
 * address": an index of up to 2^20 (IPv4) or 2^18 (IPv6) buckets over the
 * bits the boundaries span narrows the search to a bucket's few intervals,
 * and a branch-free binary search finds it. One table for IPv4 (32-bit keys) and one for IPv6 (128-bit
 * keys, as two 64-bit halves); IPv4-mapped IPv6 addresses are looked up in
 * the IPv4 one, and an IPv6 prefix short enough to cover ::ffff:0:0/96 is
 * entered there as 0.0.0.0/0 with its own (shorter) length.
 *
 * This beat a DIR-24-8 table on memory (a 2^24 first level alone is 32 MiB,
 * and IPv6 needs a different structure anyway) while meeting the 10 M
 * lookups/s target on one core (bench/bench_cidr.c, docs/STATUS.md);
 * umg_cidr_lookup_batch overlaps the cache misses of many addresses.
 */
#include "umg_fraud_net.h"

#include <arpa/inet.h>
#include <stdlib.h>

typedef unsigned __int128 u128;

/* ---------------------------------------------------------------- addresses */

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int umg_ip_is_v4(const umg_ip_t *ip)
{
    return memcmp(ip->b, v4_mapped_prefix, 12) == 0;
}

int umg_ip_parse(umg_slice_t text, umg_ip_t *out)
{
    char buf[64];
    if (text.len == 0 || text.len >= sizeof(buf)) {
        return UMG_EINVAL;
    }
    memcpy(buf, text.ptr, text.len);
    buf[text.len] = '\0';
    if (memchr(buf, '\0', text.len) != NULL) {
        return UMG_EINVAL;
    }
    umg_ip_t ip;
    if (memchr(buf, ':', text.len) == NULL) {
        memcpy(ip.b, v4_mapped_prefix, 12);
        if (inet_pton(AF_INET, buf, ip.b + 12) != 1) {
            return UMG_EINVAL;
        }
    } else if (inet_pton(AF_INET6, buf, ip.b) != 1) {
        return UMG_EINVAL;
    }
    *out = ip;
    return UMG_OK;
}

static u128 ip_to_u128(const umg_ip_t *ip)
{
    u128 v = 0;
    for (int i = 0; i < 16; i++) {
        v = (v << 8) | ip->b[i];
    }
    return v;
}

/* The mask of the host bits of a /plen (plen 0..128). */
static u128 host_mask(int plen)
{
    return plen >= 128 ? 0 : plen <= 0 ? ~(u128)0 : (~(u128)0) >> plen;
}

int umg_cidr_parse(umg_slice_t text, umg_ip_t *net, int *plen, int *host_bits)
{
    const char *slash = memchr(text.ptr, '/', text.len);
    size_t alen = slash ? (size_t)(slash - text.ptr) : text.len;
    umg_ip_t ip;
    if (umg_ip_parse(umg_slice(text.ptr, alen), &ip) != UMG_OK) {
        return UMG_EINVAL;
    }
    int v4 = memchr(text.ptr, ':', alen) == NULL;
    int max = v4 ? 32 : 128, len = max;
    if (slash != NULL) {
        size_t nd = text.len - alen - 1;
        if (nd == 0 || nd > 3 || (nd > 1 && slash[1] == '0')) {
            return UMG_EINVAL;
        }
        len = 0;
        for (size_t i = 1; i <= nd; i++) {
            if (slash[i] < '0' || slash[i] > '9') {
                return UMG_EINVAL;
            }
            len = len * 10 + (slash[i] - '0');
        }
        if (len > max) {
            return UMG_EINVAL;
        }
    }
    if (v4) {
        len += 96;
    }
    u128 v = ip_to_u128(&ip), h = host_mask(len);
    if (host_bits != NULL) {
        *host_bits = (v & h) != 0;
    }
    v &= ~h;
    for (int i = 15; i >= 0; i--) {
        ip.b[i] = (uint8_t)v;
        v >>= 8;
    }
    *net = ip;
    *plen = len;
    return UMG_OK;
}

/* ---------------------------------------------------------------- builder */

typedef struct pfx_s {
    u128 start, end; /* inclusive, in the family's key space (IPv4: 0 .. 2^32-1) */
    uint8_t rank;    /* prefix length in IPv6 terms: the longer, the more specific */
    uint8_t list;
} pfx_t;

typedef struct entry_s {
    u128 net;
    uint8_t plen, list;
} entry_t;

struct umg_cidr_builder_s {
    entry_t *v;
    size_t n, cap;
};

int umg_cidr_builder_new(umg_cidr_builder_t **out)
{
    umg_cidr_builder_t *b = umg_calloc(1, sizeof(*b));
    if (b == NULL) {
        return UMG_ENOMEM;
    }
    *out = b;
    return UMG_OK;
}

void umg_cidr_builder_free(umg_cidr_builder_t *b)
{
    if (b == NULL) {
        return;
    }
    umg_free(b->v);
    umg_free(b);
}

int umg_cidr_builder_add(umg_cidr_builder_t *b, const umg_ip_t *net, int plen, unsigned list)
{
    if (plen < 0 || plen > 128 || list >= UMG_CIDR_MAX_LISTS) {
        return UMG_EINVAL;
    }
    if (b->n == b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 1024;
        entry_t *nv = umg_realloc(b->v, ncap * sizeof(*nv));
        if (nv == NULL) {
            return UMG_ENOMEM;
        }
        b->v = nv;
        b->cap = ncap;
    }
    b->v[b->n++] = (entry_t){ip_to_u128(net) & ~host_mask(plen), (uint8_t)plen, (uint8_t)list};
    return UMG_OK;
}

size_t umg_cidr_builder_count(const umg_cidr_builder_t *b)
{
    return b->n;
}

/* ---------------------------------------------------------------- table */

#define INDEX4_BITS 20
#define INDEX6_BITS 18

typedef struct index_s {
    uint32_t *idx; /* (1 << bits) + 1 */
    u128 base;
    int shift, bits;
} index_t;

typedef struct answer_s {
    int32_t list; /* -1: none */
    uint32_t pad;
    uint64_t mask;
} answer_t;

/* An interval's start and its answer side by side: the search's last probe brings the answer's
 * index into the cache with the key. */
typedef struct iv4_s {
    uint32_t key, val;
} iv4_t;

typedef struct iv6_s {
    uint64_t hi, lo;
    uint32_t val, pad;
} iv6_t;

struct umg_cidr_s {
    iv4_t *iv4; /* n4 intervals: [iv4[i].key, iv4[i + 1].key) answers answers[iv4[i].val] */
    iv6_t *iv6;
    size_t n4, n6;
    index_t x4, x6;
    answer_t *answers;
    size_t nanswers, prefixes, bytes;
};

/* The distinct answers, found through a small open-addressing hash table while building. */
typedef struct answers_s {
    answer_t *v;
    size_t n, cap;
    uint32_t *slots; /* index + 1; 0 empty */
    size_t nslots;
} answers_t;

static int answer_id(answers_t *a, int32_t list, uint64_t mask, uint32_t *out)
{
    if ((a->n + 1) * 2 > a->nslots) {
        size_t ns = a->nslots ? a->nslots * 2 : 256;
        uint32_t *s = umg_calloc(ns, sizeof(*s));
        if (s == NULL) {
            return UMG_ENOMEM;
        }
        for (size_t i = 0; i < a->n; i++) {
            uint64_t h = umg_hash64(&a->v[i], sizeof(answer_t), 0) & (ns - 1);
            while (s[h] != 0) {
                h = (h + 1) & (ns - 1);
            }
            s[h] = (uint32_t)i + 1;
        }
        umg_free(a->slots);
        a->slots = s;
        a->nslots = ns;
    }
    answer_t key = {list, 0, mask};
    uint64_t h = umg_hash64(&key, sizeof(key), 0) & (a->nslots - 1);
    while (a->slots[h] != 0) {
        answer_t *e = &a->v[a->slots[h] - 1];
        if (e->list == list && e->mask == mask) {
            *out = a->slots[h] - 1;
            return UMG_OK;
        }
        h = (h + 1) & (a->nslots - 1);
    }
    if (a->n == a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 64;
        answer_t *nv = umg_realloc(a->v, nc * sizeof(*nv));
        if (nv == NULL) {
            return UMG_ENOMEM;
        }
        a->v = nv;
        a->cap = nc;
    }
    a->v[a->n] = key;
    a->slots[h] = (uint32_t)a->n + 1;
    *out = (uint32_t)a->n++;
    return UMG_OK;
}

static int cmp_pfx(const void *pa, const void *pb)
{
    const pfx_t *a = pa, *b = pb;
    if (a->start != b->start) {
        return a->start < b->start ? -1 : 1;
    }
    if (a->rank != b->rank) {
        return a->rank < b->rank ? -1 : 1;
    }
    return (int)a->list - (int)b->list;
}

/* Intervals being written: starts and answer ids. */
typedef struct out_s {
    u128 *key;
    uint32_t *val;
    size_t n, cap;
} out_t;

static int emit(out_t *o, u128 start, uint32_t val)
{
    if (o->n > 0 && o->key[o->n - 1] == start) {
        o->val[o->n - 1] = val; /* a more specific prefix starts where the last interval did */
        if (o->n > 1 && o->val[o->n - 2] == val) {
            o->n--;
        }
        return UMG_OK;
    }
    if (o->n > 0 && o->val[o->n - 1] == val) {
        return UMG_OK;
    }
    if (o->n == o->cap) {
        size_t nc = o->cap ? o->cap * 2 : 1024;
        u128 *nk = umg_realloc(o->key, nc * sizeof(*nk));
        if (nk == NULL) {
            return UMG_ENOMEM;
        }
        o->key = nk;
        uint32_t *nv = umg_realloc(o->val, nc * sizeof(*nv));
        if (nv == NULL) {
            return UMG_ENOMEM;
        }
        o->val = nv;
        o->cap = nc;
    }
    o->key[o->n] = start;
    o->val[o->n++] = val;
    return UMG_OK;
}

typedef struct open_s {
    u128 end;
    uint32_t answer;
} open_t;

/*
 * The sweep: p[n] sorted by (start, rank, list). Identical prefixes (same start and rank) are
 * one: the lowest list answers, the mask has them all. max is the last key of the space.
 */
static int sweep(pfx_t *p, size_t n, u128 max, answers_t *ans, out_t *o)
{
    open_t *stack = umg_malloc(130 * sizeof(*stack)); /* nesting depth is at most 129 lengths */
    uint64_t masks[130];
    size_t depth = 0;
    uint32_t none;
    int rc = stack == NULL ? UMG_ENOMEM : answer_id(ans, -1, 0, &none);
    rc = rc ? rc : emit(o, 0, none);
    for (size_t i = 0; rc == UMG_OK && i < n;) {
        size_t j = i;
        uint64_t m = 0;
        while (j < n && p[j].start == p[i].start && p[j].rank == p[i].rank) {
            m |= UINT64_C(1) << p[j].list;
            j++;
        }
        while (rc == UMG_OK && depth > 0 && stack[depth - 1].end < p[i].start) {
            u128 end = stack[--depth].end;
            rc = emit(o, end + 1, depth ? stack[depth - 1].answer : none);
        }
        if (rc != UMG_OK) {
            break;
        }
        uint64_t all = m | (depth ? masks[depth - 1] : 0);
        uint32_t id;
        rc = answer_id(ans, p[i].list, all, &id);
        if (rc != UMG_OK) {
            break;
        }
        stack[depth] = (open_t){p[i].end, id};
        masks[depth] = all;
        depth++;
        rc = emit(o, p[i].start, id);
        i = j;
    }
    while (rc == UMG_OK && depth > 0) {
        u128 end = stack[--depth].end;
        if (end < max) {
            rc = emit(o, end + 1, depth ? stack[depth - 1].answer : none);
        }
    }
    umg_free(stack);
    return rc;
}

/*
 * The index over the keys of one family: the span the boundaries occupy (the bits after the common
 * prefix of the first and the last real boundary, so IPv6 lists that all sit in 2000::/3 still
 * spread over every bucket) cut into 2^bits buckets; idx[b] is the interval holding the first
 * address of bucket b, idx[size] the one holding the first address after the span.
 */
static int make_index(const u128 *key, size_t n, int width, int bits, index_t *x)
{
    int cp = 0;
    if (n >= 2) {
        u128 d = key[1] ^ key[n - 1];
        cp = width;
        while (d != 0) {
            d >>= 1;
            cp--;
        }
    }
    int span = width - cp;
    /* About one bucket per interval, up to the family's maximum: small lists keep a small index. */
    while (bits > 8 && ((size_t)1 << (bits - 1)) >= n) {
        bits--;
    }
    x->bits = bits;
    x->shift = span > bits ? span - bits : 0;
    x->base = n >= 2 && span < width ? key[1] & ~((((u128)1) << span) - 1) : 0;
    size_t size = (size_t)1 << bits;
    x->idx = umg_malloc((size + 1) * sizeof(uint32_t));
    if (x->idx == NULL) {
        return UMG_ENOMEM;
    }
    u128 last = width == 128 ? ~(u128)0 : ((u128)1 << width) - 1;
    size_t i = 0;
    for (size_t b = 0; b <= size; b++) {
        u128 off = b == size && x->shift + bits >= 128 ? ~(u128)0 : (u128)b << x->shift; /* 2^128 wraps */
        /* Past the end of the key space: the last interval. */
        u128 first = off > last - x->base ? last : x->base + off;
        while (i + 1 < n && key[i + 1] <= first) {
            i++;
        }
        x->idx[b] = (uint32_t)i;
    }
    return UMG_OK;
}

/* Splits the builder's prefixes into the IPv4 and IPv6 families (see the file comment). */
static int split(const umg_cidr_builder_t *b, pfx_t **p4, size_t *n4, pfx_t **p6, size_t *n6)
{
    const u128 mapped = (u128)0xffff << 32;
    pfx_t *a = umg_malloc((b->n ? b->n : 1) * sizeof(*a));
    pfx_t *c = umg_malloc((b->n ? b->n : 1) * sizeof(*c));
    if (a == NULL || c == NULL) {
        umg_free(a);
        umg_free(c);
        return UMG_ENOMEM;
    }
    size_t na = 0, nc = 0;
    for (size_t i = 0; i < b->n; i++) {
        const entry_t *e = &b->v[i];
        u128 h = host_mask(e->plen);
        int in_mapped = e->plen >= 96 && (e->net >> 32) == 0xffff;
        int covers_mapped = e->plen < 96 && (mapped & ~h) == e->net;
        if (in_mapped) {
            a[na++] = (pfx_t){e->net & 0xffffffffu, (e->net | h) & 0xffffffffu, e->plen, e->list};
        } else {
            if (covers_mapped) {
                a[na++] = (pfx_t){0, 0xffffffffu, e->plen, e->list};
            }
            c[nc++] = (pfx_t){e->net, e->net | h, e->plen, e->list};
        }
    }
    *p4 = a;
    *n4 = na;
    *p6 = c;
    *n6 = nc;
    return UMG_OK;
}

int umg_cidr_build(const umg_cidr_builder_t *b, umg_cidr_t **out)
{
    pfx_t *p4 = NULL, *p6 = NULL;
    size_t n4 = 0, n6 = 0;
    answers_t ans = {0};
    out_t o4 = {0}, o6 = {0};
    index_t x4 = {0}, x6 = {0};
    umg_cidr_t *t = umg_calloc(1, sizeof(*t));
    int rc = t == NULL ? UMG_ENOMEM : split(b, &p4, &n4, &p6, &n6);
    if (rc != UMG_OK) {
        goto fail;
    }
    qsort(p4, n4, sizeof(*p4), cmp_pfx);
    qsort(p6, n6, sizeof(*p6), cmp_pfx);
    rc = sweep(p4, n4, 0xffffffffu, &ans, &o4);
    rc = rc ? rc : sweep(p6, n6, ~(u128)0, &ans, &o6);
    umg_free(p4);
    umg_free(p6);
    p4 = p6 = NULL;
    rc = rc ? rc : make_index(o4.key, o4.n, 32, INDEX4_BITS, &x4);
    rc = rc ? rc : make_index(o6.key, o6.n, 128, INDEX6_BITS, &x6);
    if (rc != UMG_OK) {
        goto fail;
    }
    t->n4 = o4.n;
    t->n6 = o6.n;
    t->iv4 = umg_malloc(o4.n * sizeof(iv4_t));
    t->iv6 = umg_malloc(o6.n * sizeof(iv6_t));
    t->answers = umg_malloc(ans.n * sizeof(answer_t));
    if (t->iv4 == NULL || t->iv6 == NULL || t->answers == NULL) {
        rc = UMG_ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < o4.n; i++) {
        t->iv4[i] = (iv4_t){(uint32_t)o4.key[i], o4.val[i]};
    }
    for (size_t i = 0; i < o6.n; i++) {
        t->iv6[i] = (iv6_t){(uint64_t)(o6.key[i] >> 64), (uint64_t)o6.key[i], o6.val[i], 0};
    }
    memcpy(t->answers, ans.v, ans.n * sizeof(answer_t));
    umg_free(o4.val);
    umg_free(o6.val);
    o4.val = o6.val = NULL;
    t->x4 = x4;
    t->x6 = x6;
    x4.idx = x6.idx = NULL;
    t->nanswers = ans.n;
    t->prefixes = b->n;
    t->bytes = sizeof(*t) + t->n4 * sizeof(iv4_t) + t->n6 * sizeof(iv6_t) +
               ((1u << t->x4.bits) + (1u << t->x6.bits) + 2) * sizeof(uint32_t) + ans.n * sizeof(answer_t);
    umg_free(o4.key);
    umg_free(o6.key);
    umg_free(ans.v);
    umg_free(ans.slots);
    *out = t;
    return UMG_OK;
fail:
    umg_free(p4);
    umg_free(p6);
    umg_free(o4.key);
    umg_free(o4.val);
    umg_free(o6.key);
    umg_free(o6.val);
    umg_free(x4.idx);
    umg_free(x6.idx);
    umg_free(ans.v);
    umg_free(ans.slots);
    umg_cidr_free(t);
    return rc;
}

void umg_cidr_free(umg_cidr_t *t)
{
    if (t == NULL) {
        return;
    }
    umg_free(t->iv4);
    umg_free(t->iv6);
    umg_free(t->x4.idx);
    umg_free(t->x6.idx);
    umg_free(t->answers);
    umg_free(t);
}

void umg_cidr_stats(const umg_cidr_t *t, umg_cidr_stats_t *out)
{
    *out = (umg_cidr_stats_t){t->prefixes, t->n4, t->n6, t->nanswers, t->bytes};
}

/* ---------------------------------------------------------------- lookups */

static inline uint64_t load_be64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static inline int answer(const umg_cidr_t *t, uint32_t v, uint64_t *mask)
{
    const answer_t *a = &t->answers[v];
    if (mask != NULL) {
        *mask = a->mask;
    }
    return a->list;
}

/*
 * A lookup in three steps, so that a batch can issue the memory reads of many addresses before it
 * waits for any: find the index entry, read the interval range from it, search the range.
 */
typedef struct probe_s {
    uint64_t hi64, lo64; /* the address as a number; IPv4 in lo64's low 32 bits */
    const uint32_t *ix;  /* the index entries idx[b], idx[b + 1]; NULL when lo, hi are set */
    size_t lo, hi;
    int v4;
} probe_t;

static inline void probe_index(const umg_cidr_t *t, probe_t *p)
{
    p->ix = NULL;
    p->lo = p->hi = 0;
    if (p->v4) {
        const index_t *x = &t->x4;
        uint32_t addr = (uint32_t)p->lo64, base = (uint32_t)x->base;
        if (addr < base) {
            p->lo = 0;
            p->hi = x->idx[0];
        } else if (((addr - base) >> x->shift) >= (1u << x->bits)) {
            p->lo = x->idx[1u << x->bits];
            p->hi = t->n4 - 1;
        } else {
            p->ix = x->idx + ((addr - base) >> x->shift);
        }
        return;
    }
    const index_t *x = &t->x6;
    u128 a = (u128)p->hi64 << 64 | p->lo64;
    if (a < x->base) {
        p->lo = 0;
        p->hi = x->idx[0];
    } else if (((a - x->base) >> x->shift) >= ((u128)1 << x->bits)) {
        p->lo = x->idx[(size_t)1 << x->bits];
        p->hi = t->n6 - 1;
    } else {
        p->ix = x->idx + (size_t)((a - x->base) >> x->shift);
    }
}

static inline void probe_range(probe_t *p)
{
    if (p->ix != NULL) {
        p->lo = p->ix[0];
        p->hi = p->ix[1];
    }
}

/* The last interval in [lo, hi] starting at or before the address (the one at lo always does), by a
 * branch-free binary search: the compiler makes each step a conditional move. */
static inline int probe_search(const umg_cidr_t *t, const probe_t *p, uint64_t *mask)
{
    if (p->v4) {
        uint32_t addr = (uint32_t)p->lo64;
        const iv4_t *k = t->iv4 + p->lo;
        for (size_t len = p->hi - p->lo + 1; len > 1;) {
            size_t half = len >> 1;
            k = k[half].key <= addr ? k + half : k;
            len -= half;
        }
        return answer(t, k->val, mask);
    }
    const iv6_t *k = t->iv6 + p->lo;
    for (size_t len = p->hi - p->lo + 1; len > 1;) {
        size_t half = len >> 1;
        const iv6_t *m = k + half;
        k = m->hi < p->hi64 || (m->hi == p->hi64 && m->lo <= p->lo64) ? m : k;
        len -= half;
    }
    return answer(t, k->val, mask);
}

static inline void probe_init(probe_t *p, const umg_ip_t *ip)
{
    p->hi64 = load_be64(ip->b);
    p->lo64 = load_be64(ip->b + 8);
    p->v4 = p->hi64 == 0 && (p->lo64 >> 32) == 0xffff;
}

int umg_cidr_lookup4(const umg_cidr_t *t, uint32_t addr, uint64_t *mask)
{
    probe_t p = {.hi64 = 0, .lo64 = UINT64_C(0xffff00000000) | addr, .v4 = 1};
    probe_index(t, &p);
    probe_range(&p);
    return probe_search(t, &p, mask);
}

int umg_cidr_lookup(const umg_cidr_t *t, const umg_ip_t *ip, uint64_t *mask)
{
    probe_t p;
    probe_init(&p, ip);
    probe_index(t, &p);
    probe_range(&p);
    return probe_search(t, &p, mask);
}

#define BATCH 16

void umg_cidr_lookup_batch(const umg_cidr_t *t, const umg_ip_t *ips, size_t n, int *lists, uint64_t *masks)
{
    probe_t p[BATCH];
    for (size_t at = 0; at < n; at += BATCH) {
        size_t m = UMG_MIN(n - at, BATCH);
        for (size_t i = 0; i < m; i++) {
            probe_init(&p[i], &ips[at + i]);
            probe_index(t, &p[i]);
            if (p[i].ix != NULL) {
                __builtin_prefetch(p[i].ix);
            }
        }
        for (size_t i = 0; i < m; i++) {
            probe_range(&p[i]);
            size_t mid = p[i].lo + ((p[i].hi - p[i].lo + 1) >> 1);
            __builtin_prefetch(p[i].v4 ? (const void *)(t->iv4 + mid) : (const void *)(t->iv6 + mid));
        }
        for (size_t i = 0; i < m; i++) {
            lists[at + i] = probe_search(t, &p[i], masks ? &masks[at + i] : NULL);
        }
    }
}
