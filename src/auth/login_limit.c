/*
 * login_limit.c - failed logins per address and per account (umg_login_limit.h).
 *
 * An open-addressed table of keyed hashes: a key's slot is the first of
 * PROBES positions from its hash that holds it, else the first there whose
 * count is over (empty, cleared or out of its window). A slot stays where it
 * is while it lives, so a lookup reads all PROBES positions rather than
 * stopping at a gap.
 */
#include "umg_login_limit.h"

#include <string.h>

#define PROBES 16

typedef struct slot_s {
    uint64_t key; /* 0: never used */
    int64_t window_start_us;
    int64_t failures;
} slot_t;

struct umg_login_limit_s {
    slot_t *slots;
    size_t mask;
    int64_t window_us, max_failures;
    uint64_t seed;
};

int umg_login_limit_new(size_t slots, int64_t window_us, int64_t max_failures, uint64_t seed, umg_login_limit_t **out)
{
    size_t n = PROBES;
    while (n < slots) {
        n <<= 1;
    }
    umg_login_limit_t *l = umg_calloc(1, sizeof(*l));
    if (l == NULL || (l->slots = umg_calloc(n, sizeof(slot_t))) == NULL) {
        umg_free(l);
        return UMG_ENOMEM;
    }
    l->mask = n - 1;
    l->window_us = window_us;
    l->max_failures = max_failures;
    l->seed = seed;
    *out = l;
    return UMG_OK;
}

void umg_login_limit_free(umg_login_limit_t *l)
{
    if (l != NULL) {
        umg_free(l->slots);
        umg_free(l);
    }
}

static uint64_t key_of(const umg_login_limit_t *l, const char *kind, const char *value)
{
    uint64_t h = umg_hash64(value, strlen(value), umg_hash64(kind, strlen(kind), l->seed));
    return h != 0 ? h : 1;
}

static int live(const umg_login_limit_t *l, const slot_t *s, int64_t now)
{
    return s->failures > 0 && now - s->window_start_us < l->window_us;
}

/* Where key h counts at now: its own slot (*own set), else a free one, else (the table full near h) the busiest
 * live slot near h, which it shares. */
static slot_t *lookup(const umg_login_limit_t *l, uint64_t h, int64_t now, int *own)
{
    int ignored;
    own = own != NULL ? own : &ignored;
    slot_t *free = NULL, *busiest = NULL;
    for (size_t k = 0; k < PROBES; k++) {
        slot_t *s = &l->slots[(h + k) & l->mask];
        if (s->key == h) {
            *own = 1;
            return s;
        }
        if (!live(l, s, now)) {
            free = free != NULL ? free : s;
        } else if (busiest == NULL || s->failures > busiest->failures) {
            busiest = s;
        }
    }
    *own = 0;
    return free != NULL ? free : busiest;
}

/* Seconds key h must wait at now; 0 when it may try. */
static int64_t wait_of(const umg_login_limit_t *l, uint64_t h, int64_t now)
{
    const slot_t *s = lookup(l, h, now, NULL);
    if (!live(l, s, now) || s->failures < l->max_failures) { /* a free slot: no failures */
        return 0;
    }
    int64_t left = (s->window_start_us + l->window_us - now + 999999) / 1000000;
    return UMG_MAX(left, 1);
}

int64_t umg_login_limit_wait(const umg_login_limit_t *l, const char *ip, const char *email, int64_t now_us)
{
    int64_t a = wait_of(l, key_of(l, "ip", ip), now_us), b = wait_of(l, key_of(l, "account", email), now_us);
    return UMG_MAX(a, b);
}

/* Counts a failure of key h at now. */
static void fail(umg_login_limit_t *l, uint64_t h, int64_t now)
{
    slot_t *s = lookup(l, h, now, NULL);
    if (!live(l, s, now)) { /* its own slot out of its window, or a free one it takes */
        s->key = h;
        s->window_start_us = now; /* a window begins with its first failure */
        s->failures = 0;
    }
    s->failures++; /* else its own live slot, or the busiest it shares */
}

void umg_login_limit_failed(umg_login_limit_t *l, const char *ip, const char *email, int64_t now_us)
{
    fail(l, key_of(l, "ip", ip), now_us);
    fail(l, key_of(l, "account", email), now_us);
}

void umg_login_limit_succeeded(umg_login_limit_t *l, const char *email, int64_t now_us)
{
    int own;
    slot_t *s = lookup(l, key_of(l, "account", email), now_us, &own);
    if (own) {
        s->failures = 0; /* only the account's own slot: never one it shares */
    }
}
