/*
 * umg_login_limit.h - the login limiter: failed logins counted per client
 * address and per account in a fixed window, and refused once either
 * reaches the limit.
 *
 * Keys live in a fixed table (no memory grows with an attacker's addresses).
 * Every key has a slot of its own while the table has room near its hash, so
 * two people never share a count by chance. Only when the table is full
 * there (thousands of live keys) does a new key share the busiest slot it
 * could have had, which makes the limiter stricter for it, never looser.
 *
 * One thread uses a limiter (the admin worker); time is always passed in.
 */
#ifndef UMG_LOGIN_LIMIT_H
#define UMG_LOGIN_LIMIT_H

#include "umg_core.h"

typedef struct umg_login_limit_s umg_login_limit_t;

/**
 * A limiter of slots keys (rounded up to a power of two, at least 16):
 * max_failures failed logins within window_us refuse the next. The seed keys
 * the hash, so collisions cannot be searched for offline.
 */
int umg_login_limit_new(size_t slots, int64_t window_us, int64_t max_failures, uint64_t seed, umg_login_limit_t **out);
void umg_login_limit_free(umg_login_limit_t *l);

/** Seconds a login from ip for email must wait at now_us (at least 1 when refused); 0 when allowed. */
int64_t umg_login_limit_wait(const umg_login_limit_t *l, const char *ip, const char *email, int64_t now_us);
/** Counts a failed login from ip for email. */
void umg_login_limit_failed(umg_login_limit_t *l, const char *ip, const char *email, int64_t now_us);
/** A successful login clears the account's failures (not the address's: it may be guessing at others). */
void umg_login_limit_succeeded(umg_login_limit_t *l, const char *email, int64_t now_us);

#endif
