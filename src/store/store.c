/*
 * store.c - the attribution store on LMDB (umg_store.h).
 *
 * Tables (named databases of one environment):
 *   touch  touch_id (the log offset, native u64) -> packed touch (30-100 bytes).
 *          The pipeline reads the log in order, so keys only grow and are
 *          appended (MDB_APPEND): pages fill completely.
 *   alias  (app, identifier hash) -> the canonical key of the device it is part of
 *   dev    canonical key -> umg_store_device_t
 *   dec    app (BE) | ts (BE, biased) | offset (BE) -> decision with its candidates
 *   str    's' | hash64 -> id | text ;  'i' | id (BE) -> text
 *   meta   "next_offset" -> u64, "next_str" -> u32
 *   seen   hash(app, event_id) -> nothing: installs and purchases already applied
 *
 * Integers in values are native-endian: the store is local to its machine.
 *
 * The touches' keys are an index in memory (tindex_t below), not a table:
 * hash(app, tag, value) -> the touch ids under it, newest first, one key per
 * identifier hash (tag 'I' for clicks, 'V' for impressions, so that a flood of
 * impressions cannot push a device's clicks out of what a gather reads), the
 * click id ('C') and, for clicks, the IP + OS fingerprint ('F'). Inserting those keys into a B-tree at random places
 * cost a page copy and write per key (docs/STATUS.md); the index is rebuilt from the touch table when the store opens,
 * and is only used inside write transactions (LMDB serialises them, so it needs no lock of its own).
 */
#include "umg_store.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <lmdb.h>
#include <stddef.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "umg_rollup.h"

enum {
    DB_TOUCH,
    DB_ALIAS,
    DB_DEV,
    DB_DEC,
    DB_STR,
    DB_META,
    DB_SEEN,
    DB_ROLL,
    DB_EVDAY,
    DB_RLOG,
    DB_TL,
    DB_DIMS,  /* a device's report dimensions alone, by device key: what a grouped funnel reads */
    DB_CLICK, /* the installs a click won, by source and site: what the flood look-back reads */
    DB_COUNT
};

static const char *const db_names[DB_COUNT] = {"touch", "alias", "dev",  "dec", "str",  "meta", "seen",
                                               "roll",  "evday", "rlog", "tl",  "dims", "click"};
static const unsigned db_flags[DB_COUNT] = {
    [DB_TOUCH] = MDB_INTEGERKEY, [DB_ALIAS] = MDB_INTEGERKEY, [DB_DEV] = MDB_INTEGERKEY,
    [DB_SEEN] = MDB_INTEGERKEY,  [DB_RLOG] = MDB_INTEGERKEY,  [DB_DIMS] = MDB_INTEGERKEY};

/* The layout of what the store holds. A store of another format is emptied at open and rebuilt by the
 * pipeline from the event log (the log is the source of truth), except where check_format upgrades it in place.
 * 2: device report fields, rollups. 4: the re-engagement credit's rollups and day sets, only added: a store of 3
 * is upgraded in place and remembers since when it keeps them (umg_store_reeng_since). */
#define STORE_FORMAT 4
#define REENG_SINCE_KEY "reeng_since"

#define STR_MAX 4096
#define CACHE_BITS 16

/* The writer's cache of interned strings (the pipeline interns six per touch). */
typedef struct str_ent_s {
    uint64_t h;
    uint32_t id;
    uint32_t len;
    char *text; /* owned */
} str_ent_t;

/* The touches' key index: an open-addressing table of keys, each the head of a list of touch ids. */
typedef struct __attribute__((packed)) tnode_s {
    uint64_t id;
    uint32_t next; /* pool index + 1; 0 ends the list */
} tnode_t;

#define TKEY_EMPTY 0
#define TKEY_GONE UINT64_MAX /* a removed key (forget); cleared by the next rebuild */

/* A key and its list's head side by side: a lookup reads one cache line, not one in each of two arrays. */
typedef struct __attribute__((packed)) tslot_s {
    uint64_t key;  /* an app_key value (never 0 or UINT64_MAX), or TKEY_EMPTY / TKEY_GONE */
    uint32_t head; /* pool index + 1 of the list's first node; 0: empty list */
} tslot_t;

typedef struct tindex_s {
    tslot_t *slots;
    size_t cap, used; /* slots; slots not empty (keys and removed) */
    tnode_t *pool;
    size_t pool_n, pool_cap;
    size_t live;        /* entries of touches still stored (expiry subtracts) */
    uint64_t watermark; /* every touch id below it has expired: lists end there */
} tindex_t;

struct umg_store_s {
    MDB_env *env;
    tindex_t tidx;
    int idx_ready; /* the index is built by the first write transaction, not at open (readiness waits for none) */
    _Atomic int idx_loaded; /* ... from the file the last close saved it to, not rebuilt */
    char *dir;
    _Atomic uint64_t idx_entries, idx_bytes; /* for stats on other threads, updated at each commit */
    MDB_dbi dbi[DB_COUNT];
    str_ent_t *cache;    /* 1 << CACHE_BITS slots, direct-mapped */
    uint32_t next_str;   /* valid while a write transaction is open */
    int cache_dirty;     /* the open write transaction added entries */
    uint8_t tl_last[13]; /* the largest timeline key put so far (TL_KEY; a hint: newer keys are appended) */
    umg_devcache_t *dc;  /* the writer's devices (NULL: none); dirty ones are put just before a commit */
    /* Held by a write transaction from before LMDB's writer lock to after what its end does to the writer's
     * caches (emptying them after an abort): LMDB's lock is released first, and another thread's write
     * transaction (the pipeline's, a forget pass's) must not see them half emptied. */
    pthread_mutex_t wmu;
};

struct umg_store_txn_s {
    umg_store_t *st;
    MDB_txn *txn;
    int write;
    MDB_cursor *tail[DB_COUNT]; /* append_put's cursors, opened on first use; LMDB closes them with the txn */
    long puts;                  /* touches, devices and rollup rows put (umg__store_inject_txn_full) */
    /* What the last umg_store_device_find learnt of its ids' aliases, for the device_put that follows it: bit i
     * of aliased, ids[i] reaches key; of absent, ids[i] reaches no device. Valid while found.app != 0. */
    struct {
        uint32_t app;
        uint64_t key;
        uint64_t ids[UMG_ATTR_MAX_IDS];
        unsigned aliased, absent;
    } found;
};

long umg__store_inject_txn_full;

/* The test hook: a write transaction that has put more touches, devices and rollup rows than that fails as LMDB
 * fails one that outgrows its dirty-page list. */
static inline int inject_txn_full(umg_store_txn_t *tx)
{
    return umg__store_inject_txn_full > 0 && ++tx->puts > umg__store_inject_txn_full;
}

static int map_err(int rc, const char *what)
{
    switch (rc) {
    case MDB_SUCCESS: return UMG_OK;
    case MDB_NOTFOUND: return UMG_ENOENT;
    case MDB_KEYEXIST: return UMG_EEXIST;
    case MDB_MAP_FULL:
        umg_log(UMG_LOG_ERROR, "store", "%s: %s (raise attribution.store_map_bytes)", what, mdb_strerror(rc));
        return UMG_ENOSPC;
    case MDB_TXN_FULL: return UMG_ETOOBIG; /* more pages changed than one transaction holds: the caller splits */
    case ENOMEM: return UMG_ENOMEM;
    case ENOSPC: return UMG_ENOSPC;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID: umg_log(UMG_LOG_ERROR, "store", "%s: %s", what, mdb_strerror(rc)); return UMG_ECORRUPT;
    default: umg_log(UMG_LOG_ERROR, "store", "%s: %s", what, mdb_strerror(rc)); return UMG_EIO;
    }
}

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 27;
    x *= UINT64_C(0x94d049bb133111eb);
    x ^= x >> 31;
    return x;
}

/* The key of a value of one kind (tag) for one app; never 0. */
static inline uint64_t app_key(uint32_t app, int tag, uint64_t h)
{
    uint64_t k = mix64(h ^ mix64(((uint64_t)app << 8 | (uint64_t)tag) + UINT64_C(0x9e3779b97f4a7c15)));
    return k && k != UINT64_MAX ? k : 1;
}

static inline uint64_t fp_value(const umg_attr_fp_t *fp)
{
    return fp->ip ^ mix64(fp->os);
}

/* ------------------------------------------------------------ key index */

static void tidx_free(tindex_t *x)
{
    umg_free(x->slots);
    umg_free(x->pool);
    memset(x, 0, sizeof(*x));
}

/* A slot in [0, cap) for any cap (multiply-shift), so the table can grow by half instead of doubling. */
static inline size_t slot_of(uint64_t key, size_t cap)
{
    return (size_t)(((unsigned __int128)mix64(key) * cap) >> 64);
}

static inline size_t slot_next(size_t j, size_t cap)
{
    return j + 1 == cap ? 0 : j + 1;
}

/* Grows (or cleans) the key table to hold at least `need` keys at under 75% load. */
static int tidx_resize(tindex_t *x, size_t need)
{
    size_t cap = 1024;
    while (cap * 3 / 4 < need) {
        cap += cap / 2;
    }
    tslot_t *slots = umg_calloc(cap, sizeof(tslot_t));
    if (slots == NULL) {
        return UMG_ENOMEM;
    }
    size_t used = 0;
    for (size_t i = 0; i < x->cap; i++) {
        uint64_t k = x->slots[i].key;
        if (k == TKEY_EMPTY || k == TKEY_GONE) {
            continue;
        }
        size_t j = slot_of(k, cap);
        while (slots[j].key != TKEY_EMPTY) {
            j = slot_next(j, cap);
        }
        slots[j] = x->slots[i];
        used++;
    }
    umg_free(x->slots);
    x->slots = slots;
    x->cap = cap;
    x->used = used;
    return UMG_OK;
}

/* The slot of key, or of where it would go (insert), or SIZE_MAX (lookup of an absent key). */
static size_t tidx_find(const tindex_t *x, uint64_t key, int insert)
{
    if (x->cap == 0) {
        return SIZE_MAX;
    }
    size_t j = slot_of(key, x->cap), gone = SIZE_MAX;
    for (;;) {
        uint64_t k = x->slots[j].key;
        if (k == key) {
            return j;
        }
        if (k == TKEY_EMPTY) {
            return insert ? (gone != SIZE_MAX ? gone : j) : SIZE_MAX;
        }
        if (k == TKEY_GONE && gone == SIZE_MAX) {
            gone = j;
        }
        j = slot_next(j, x->cap);
    }
}

/* Adds touch id under key, at the head of its list. */
static int tidx_add(tindex_t *x, uint64_t key, uint64_t id)
{
    if ((x->used + 1) * 4 > x->cap * 3 && tidx_resize(x, (x->used + 1) * 5 / 4) != UMG_OK) {
        return UMG_ENOMEM;
    }
    if (x->pool_n == x->pool_cap) {
        if (x->pool_cap >= UINT32_MAX - 1) {
            return UMG_EFULL;
        }
        size_t ncap = x->pool_cap ? x->pool_cap + x->pool_cap / 2 : 4096; /* by half: less slack than doubling */
        ncap = ncap > UINT32_MAX - 1 ? UINT32_MAX - 1 : ncap;
        tnode_t *np = umg_realloc(x->pool, ncap * sizeof(tnode_t));
        if (np == NULL) {
            return UMG_ENOMEM;
        }
        x->pool = np;
        x->pool_cap = ncap;
    }
    size_t j = tidx_find(x, key, 1);
    tslot_t *sl = &x->slots[j];
    if (sl->key != key) {
        x->used += sl->key == TKEY_EMPTY;
        sl->key = key;
        sl->head = 0;
    }
    x->pool[x->pool_n] = (tnode_t){id, sl->head};
    sl->head = (uint32_t)++x->pool_n;
    x->live++;
    return UMG_OK;
}

static void tidx_remove(tindex_t *x, uint64_t key)
{
    size_t j = tidx_find(x, key, 0);
    if (j != SIZE_MAX) {
        x->slots[j] = (tslot_t){TKEY_GONE, 0}; /* its nodes stay in the pool until the next rebuild */
    }
}

#define MAX_KEYS (2 * UMG_ATTR_MAX_IDS + 2) /* of a touch, or of an observation's gather */

/* The index keys of a touch; returns how many. */
static int touch_keys(const umg_attr_touch_t *t, uint64_t keys[MAX_KEYS])
{
    int n = 0;
    for (int i = 0; i < UMG_ATTR_MAX_IDS && t->ids[i] != 0; i++) {
        keys[n++] = app_key(t->app, t->type == UMG_ATTR_IMPRESSION ? 'V' : 'I', t->ids[i]);
    }
    if (t->click_id != 0) {
        keys[n++] = app_key(t->app, 'C', t->click_id);
    }
    if (t->type == UMG_ATTR_CLICK && t->fp.ip != 0 && t->fp.os != 0) {
        keys[n++] = app_key(t->app, 'F', fp_value(&t->fp));
    }
    return n;
}

static int touch_unpack(uint64_t touch_id, const uint8_t *p, size_t len, umg_attr_touch_t *t);

/* A new index x in place of the store's when rc is UMG_OK, else x dropped; returns rc. */
static int tidx_install(umg_store_t *st, tindex_t *x, int rc)
{
    if (rc != UMG_OK) {
        tidx_free(x);
        return rc;
    }
    tidx_free(&st->tidx);
    st->tidx = *x;
    return UMG_OK;
}

/* Rebuilds the index from the touch table (at open, and when expired entries outnumber live ones). */
static int tidx_rebuild(umg_store_t *st, MDB_txn *txn)
{
    tindex_t x;
    memset(&x, 0, sizeof(x));
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, st->dbi[DB_TOUCH], &c);
    if (rc != 0) {
        return map_err(rc, "index rebuild");
    }
    MDB_val k, v;
    int urc = UMG_OK;
    int first = 1;
    rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    while (rc == 0 && urc == UMG_OK) {
        uint64_t id;
        memcpy(&id, k.mv_data, 8);
        if (first) {
            x.watermark = id;
            first = 0;
        }
        umg_attr_touch_t t;
        uint64_t keys[MAX_KEYS];
        if (touch_unpack(id, v.mv_data, v.mv_size, &t) != UMG_OK) {
            urc = UMG_ECORRUPT;
            break;
        }
        int nk = touch_keys(&t, keys);
        for (int i = 0; i < nk && urc == UMG_OK; i++) {
            urc = tidx_add(&x, keys[i], id);
        }
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    if (urc == UMG_OK && rc != MDB_NOTFOUND) {
        urc = map_err(rc, "index rebuild");
    }
    return tidx_install(st, &x, urc);
}

/*
 * The key index kept across a clean close: `DIR/touch.index` holds the table and the list pool as they are in
 * memory, stamped with the id of the last LMDB transaction they match and checked by a CRC32C. The first write
 * transaction after an open takes it when the stamp is the store's last transaction (nothing was written since)
 * and removes it either way, so it can never outlive the state it matches; otherwise the index is rebuilt from
 * the touch table. Layout: "UMGTIDX3", u64 stamp, cap, used, pool_n, live, watermark, slots[cap] (u64 key,
 * u32 head), pool[pool_n] (12 bytes), u32 CRC32C of all before; native byte order.
 */
/* 2: impressions under keys of their own ('V'); 3: keys and heads interleaved. A file of an older one is rebuilt. */
#define TIDX_MAGIC "UMGTIDX3"
#define TIDX_HEAD (8 + 6 * 8)

static char *tidx_path(const umg_store_t *st, const char *suffix)
{
    size_t n = strlen(st->dir) + 32;
    char *p = umg_malloc(n);
    if (p != NULL) {
        snprintf(p, n, "%s/touch.index%s", st->dir, suffix);
    }
    return p;
}

static uint64_t last_txnid(MDB_env *env)
{
    MDB_envinfo info;
    return mdb_env_info(env, &info) == 0 ? (uint64_t)info.me_last_txnid : 0;
}

static void tidx_save(umg_store_t *st)
{
    const tindex_t *x = &st->tidx;
    char *tmp = tidx_path(st, ".tmp"), *path = tidx_path(st, "");
    int fd = tmp != NULL && path != NULL ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
    uint64_t head[6] = {last_txnid(st->env), x->cap, x->used, x->pool_n, x->live, x->watermark};
    struct iovec parts[3] = {{TIDX_MAGIC, 8}, {head, sizeof(head)}, {x->slots, x->cap * sizeof(tslot_t)}};
    uint32_t crc = 0;
    int ok = fd >= 0;
    for (int i = 0; ok && i < 3; i++) {
        crc = parts[i].iov_len ? umg_crc32c(crc, parts[i].iov_base, parts[i].iov_len) : crc;
        ok = parts[i].iov_len == 0 || umg_write_all(fd, parts[i].iov_base, parts[i].iov_len) == 0;
    }
    size_t pool_bytes = x->pool_n * sizeof(tnode_t);
    if (ok && pool_bytes > 0) {
        crc = umg_crc32c(crc, x->pool, pool_bytes);
        ok = umg_write_all(fd, x->pool, pool_bytes) == 0;
    }
    ok = ok && umg_write_all(fd, &crc, 4) == 0;
    if (fd >= 0) {
        ok = close(fd) == 0 && ok;
    }
    ok = ok && rename(tmp, path) == 0;
    if (!ok && tmp != NULL) {
        unlink(tmp);
        umg_log(UMG_LOG_WARN, "store", "cannot save the touch key index (%s): the next start rebuilds it",
                strerror(errno));
    }
    umg_free(tmp);
    umg_free(path);
}

/* The saved index into st->tidx when it matches the store as it is; UMG_OK when it was taken. */
static int tidx_load(umg_store_t *st)
{
    char *path = tidx_path(st, "");
    if (path == NULL) {
        return UMG_ENOMEM;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    unlink(path); /* taken or not, it never describes a later state */
    umg_free(path);
    if (fd < 0) {
        return UMG_ENOENT;
    }
    tindex_t x;
    memset(&x, 0, sizeof(x));
    uint8_t magic[8];
    uint64_t head[6];
    uint32_t crc = 0, want;
    int rc = umg_pread_full(fd, magic, 8, 0) == 8 && memcmp(magic, TIDX_MAGIC, 8) == 0 &&
                     umg_pread_full(fd, head, sizeof(head), 8) == (ssize_t)sizeof(head) &&
                     head[0] == last_txnid(st->env) && head[2] <= head[1] && head[3] < UINT32_MAX &&
                     head[1] < ((uint64_t)1 << 40)
                 ? UMG_OK
                 : UMG_ECORRUPT;
    if (rc == UMG_OK) {
        x.cap = head[1];
        x.used = head[2];
        x.pool_n = x.pool_cap = head[3];
        x.live = head[4];
        x.watermark = head[5];
        x.slots = umg_malloc(x.cap * sizeof(tslot_t) + 1);
        x.pool = umg_malloc(x.pool_n * sizeof(tnode_t) + 1);
        rc = x.slots && x.pool ? UMG_OK : UMG_ENOMEM;
    }
    uint64_t off = TIDX_HEAD;
    struct iovec parts[2] = {{x.slots, x.cap * sizeof(tslot_t)}, {x.pool, x.pool_n * sizeof(tnode_t)}};
    crc = umg_crc32c(0, TIDX_MAGIC, 8);
    crc = umg_crc32c(crc, head, sizeof(head));
    for (int i = 0; rc == UMG_OK && i < 2; i++) {
        if (umg_pread_full(fd, parts[i].iov_base, parts[i].iov_len, off) != (ssize_t)parts[i].iov_len) {
            rc = UMG_ECORRUPT;
            break;
        }
        crc = parts[i].iov_len ? umg_crc32c(crc, parts[i].iov_base, parts[i].iov_len) : crc;
        off += parts[i].iov_len;
    }
    if (rc == UMG_OK && (umg_pread_full(fd, &want, 4, off) != 4 || want != crc)) {
        rc = UMG_ECORRUPT;
    }
    /* every link inside the pool */
    for (size_t i = 0; rc == UMG_OK && i < x.cap; i++) {
        rc = x.slots[i].head <= x.pool_n ? UMG_OK : UMG_ECORRUPT;
    }
    for (size_t i = 0; rc == UMG_OK && i < x.pool_n; i++) {
        rc = x.pool[i].next <= x.pool_n ? UMG_OK : UMG_ECORRUPT;
    }
    close(fd);
    return tidx_install(st, &x, rc);
}

static void publish_index(umg_store_t *st)
{
    atomic_store(&st->idx_entries, st->tidx.live);
    atomic_store(&st->idx_bytes, (uint64_t)(st->tidx.cap * sizeof(tslot_t) + st->tidx.pool_cap * sizeof(tnode_t)));
}

/* ------------------------------------------------------------- open, close */

/* Empties a store written in another format (logged) and records this one. A store of format 3 is upgraded in
 * place instead: 4 only adds, so emptying it would lose whatever the log no longer holds (older than its
 * retention) for a view that can start now. */
static int check_format(MDB_txn *txn, const MDB_dbi *dbi, const char *dir)
{
    MDB_val k = {6, "format"}, v;
    uint32_t have = 0, want = STORE_FORMAT;
    int rc = mdb_get(txn, dbi[DB_META], &k, &v);
    if (rc == 0 && v.mv_size == 4) {
        memcpy(&have, v.mv_data, 4);
    } else if (rc != 0 && rc != MDB_NOTFOUND) {
        return rc;
    }
    if (have == want) {
        return 0;
    }
    MDB_stat ms;
    rc = mdb_stat(txn, dbi[DB_META], &ms);
    if (rc == 0 && ms.ms_entries > 0 && have == 3 && want == 4) {
        int64_t now = umg_now_us();
        MDB_val sk = {sizeof(REENG_SINCE_KEY) - 1, REENG_SINCE_KEY}, sv = {8, &now};
        umg_log(UMG_LOG_INFO, "store",
                "%s: store format 3 upgraded to 4 in place; the re-engagement credit is kept from now on", dir);
        rc = mdb_put(txn, dbi[DB_META], &sk, &sv, 0);
    } else if (rc == 0 && ms.ms_entries > 0) {
        umg_log(UMG_LOG_WARN, "store",
                "%s holds store format %u, this build writes %u: emptying it; the pipeline rebuilds it from the "
                "event log",
                dir, have, want);
        for (int i = 0; rc == 0 && i < DB_COUNT; i++) {
            rc = mdb_drop(txn, dbi[i], 0);
        }
    }
    v = (MDB_val){4, &want};
    return rc ? rc : mdb_put(txn, dbi[DB_META], &k, &v, 0);
}

int umg_store_reeng_since(umg_store_txn_t *tx, int64_t *us)
{
    MDB_val k = {sizeof(REENG_SINCE_KEY) - 1, REENG_SINCE_KEY}, v;
    *us = 0;
    int rc = mdb_get(tx->txn, tx->st->dbi[DB_META], &k, &v);
    if (rc == 0 && v.mv_size == 8) {
        memcpy(us, v.mv_data, 8);
    }
    return rc == MDB_NOTFOUND ? UMG_OK : map_err(rc, "meta");
}

/* A device's report dimensions (UMG_RD_*): its install's attribution, country, platform. */
void umg_store_device_dims(const umg_store_device_t *d, uint32_t dims[UMG_RD_N])
{
    dims[UMG_RD_SOURCE] = d->attr.install.source;
    dims[UMG_RD_CAMPAIGN] = d->attr.install.campaign;
    dims[UMG_RD_ADSET] = d->attr.install.adset;
    dims[UMG_RD_AD] = d->attr.install.ad;
    dims[UMG_RD_SITE] = d->attr.install.site;
    dims[UMG_RD_COUNTRY] = d->country;
    dims[UMG_RD_PLATFORM] = d->platform;
}

/* A store from before the dimensions table (same format otherwise) gets it from its devices, once. */
static int dims_fill(MDB_txn *txn, const MDB_dbi *dbi, const char *dir)
{
    MDB_stat dev, dims;
    int rc = mdb_stat(txn, dbi[DB_DEV], &dev);
    rc = rc ? rc : mdb_stat(txn, dbi[DB_DIMS], &dims);
    if (rc != 0 || dev.ms_entries == 0 || dims.ms_entries > 0) {
        return rc;
    }
    umg_log(UMG_LOG_INFO, "store", "%s: writing the report dimensions of %zu devices", dir, dev.ms_entries);
    MDB_cursor *c = NULL;
    rc = mdb_cursor_open(txn, dbi[DB_DEV], &c);
    MDB_val k, v;
    for (int op = MDB_FIRST; rc == 0 && (rc = mdb_cursor_get(c, &k, &v, (MDB_cursor_op)op)) == 0; op = MDB_NEXT) {
        if (v.mv_size != sizeof(umg_store_device_t)) {
            rc = MDB_CORRUPTED;
            break;
        }
        umg_store_device_t d;
        uint32_t dims_v[UMG_RD_N];
        memcpy(&d, v.mv_data, sizeof(d));
        umg_store_device_dims(&d, dims_v);
        MDB_val dv = {sizeof(dims_v), dims_v};
        rc = mdb_put(txn, dbi[DB_DIMS], &k, &dv, MDB_APPEND); /* the same key order */
    }
    if (c != NULL) {
        mdb_cursor_close(c);
    }
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int click_fill(MDB_txn *txn, const MDB_dbi *dbi, const char *dir);

int umg_store_open(const char *dir, const umg_store_config_t *cfg, umg_store_t **out)
{
    if (dir == NULL || cfg == NULL || out == NULL) {
        return UMG_EINVAL;
    }
    if (umg_mkdirs(dir, 0700) != UMG_OK) {
        umg_log(UMG_LOG_ERROR, "store", "cannot create %s: %s", dir, strerror(errno));
        return UMG_EIO;
    }
    umg_store_t *st = umg_calloc(1, sizeof(*st));
    if (st == NULL) {
        return UMG_ENOMEM;
    }
    st->cache = umg_calloc((size_t)1 << CACHE_BITS, sizeof(str_ent_t));
    st->dir = umg_strndup(dir, strlen(dir));
    int drc = umg_devcache_new((size_t)UMG_MAX(cfg->device_cache_bytes, 0), sizeof(umg_store_device_t), &st->dc);
    if (st->cache == NULL || st->dir == NULL || drc != UMG_OK) {
        umg_devcache_free(st->dc);
        umg_free(st->cache);
        umg_free(st->dir);
        umg_free(st);
        return UMG_ENOMEM;
    }
    pthread_mutex_init(&st->wmu, NULL);
    int rc = mdb_env_create(&st->env);
    if (rc == 0) {
        rc = mdb_env_set_maxdbs(st->env, DB_COUNT);
    }
    if (rc == 0) {
        rc = mdb_env_set_mapsize(st->env, (size_t)cfg->map_bytes);
    }
    if (rc == 0) {
        rc = mdb_env_set_maxreaders(st->env, 512);
    }
    if (rc == 0) {
        /* NOSYNC: the log is the source of truth; NOTLS: read transactions are not tied to threads.
         * Not WRITEMAP: it measured 1.4x faster commits, but makes data.mdb as large (sparse) as the map. */
        rc = mdb_env_open(st->env, dir, MDB_NOSYNC | MDB_NOTLS | MDB_NORDAHEAD, 0600);
    }
    if (rc == 0) {
        MDB_txn *txn;
        rc = mdb_txn_begin(st->env, NULL, 0, &txn);
        for (int i = 0; rc == 0 && i < DB_COUNT; i++) {
            rc = mdb_dbi_open(txn, db_names[i], db_flags[i] | MDB_CREATE, &st->dbi[i]);
        }
        if (rc == 0) {
            rc = check_format(txn, st->dbi, dir);
        }
        if (rc == 0) {
            rc = dims_fill(txn, st->dbi, dir);
        }
        if (rc == 0) {
            rc = click_fill(txn, st->dbi, dir);
        }
        if (rc == 0) {
            rc = mdb_txn_commit(txn);
        } else if (txn != NULL) {
            mdb_txn_abort(txn);
        }
    }

    if (rc != 0) {
        umg_log(UMG_LOG_ERROR, "store", "cannot open the attribution store in %s: %s", dir, mdb_strerror(rc));
        if (st->env != NULL) {
            mdb_env_close(st->env);
        }
        pthread_mutex_destroy(&st->wmu);
        umg_devcache_free(st->dc);
        umg_free(st->cache);
        umg_free(st->dir);
        umg_free(st);
        return rc == ENOMEM ? UMG_ENOMEM : UMG_EIO;
    }
    *out = st;
    return UMG_OK;
}

static void cache_clear(umg_store_t *st)
{
    for (size_t i = 0; i < (size_t)1 << CACHE_BITS; i++) {
        umg_free(st->cache[i].text);
    }
    memset(st->cache, 0, sizeof(str_ent_t) << CACHE_BITS);
}

void umg_store_close(umg_store_t *st)
{
    if (st == NULL) {
        return;
    }
    mdb_env_sync(st->env, 1);
    if (st->idx_ready) {
        int64_t t0 = umg_now_us();
        tidx_save(st);
        umg_log(UMG_LOG_INFO, "store", "touch key index saved: %zu keys, %zu entries, %.3f s", st->tidx.used,
                st->tidx.pool_n, (double)(umg_now_us() - t0) / 1e6);
    }
    mdb_env_close(st->env);
    tidx_free(&st->tidx);
    cache_clear(st);
    pthread_mutex_destroy(&st->wmu);
    umg_devcache_free(st->dc);
    umg_free(st->cache);
    umg_free(st->dir);
    umg_free(st);
}

int umg_store_sync(umg_store_t *st)
{
    return map_err(mdb_env_sync(st->env, 1), "sync");
}

int umg_store_stats(umg_store_t *st, umg_store_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    umg_store_txn_t *tx;
    int rc = umg_store_begin(st, 0, &tx);
    if (rc != UMG_OK) {
        return rc;
    }
    MDB_stat s[DB_COUNT];
    for (int i = 0; i < DB_COUNT && rc == UMG_OK; i++) {
        rc = map_err(mdb_stat(tx->txn, st->dbi[i], &s[i]), "stat");
    }
    MDB_envinfo info;
    MDB_stat es;
    if (rc == UMG_OK) {
        rc = map_err(mdb_env_info(st->env, &info), "stat");
    }
    if (rc == UMG_OK) {
        rc = map_err(mdb_env_stat(st->env, &es), "stat");
    }
    if (rc == UMG_OK) {
        out->touches = s[DB_TOUCH].ms_entries;
        out->touch_keys = atomic_load(&st->idx_entries);
        out->index_bytes = atomic_load(&st->idx_bytes);
        out->index_loaded = st->idx_loaded;
        out->devices = s[DB_DEV].ms_entries;
        out->decisions = s[DB_DEC].ms_entries;
        out->strings = s[DB_STR].ms_entries / 2;
        out->touch_bytes =
            (uint64_t)(s[DB_TOUCH].ms_leaf_pages + s[DB_TOUCH].ms_branch_pages + s[DB_TOUCH].ms_overflow_pages) *
            s[DB_TOUCH].ms_psize;
        out->total_bytes = (uint64_t)(info.me_last_pgno + 1) * es.ms_psize;
        out->rollup_rows = s[DB_ROLL].ms_entries;
        for (int i = DB_ROLL; i <= DB_RLOG; i += DB_RLOG - DB_ROLL) {
            out->rollup_bytes +=
                (uint64_t)(s[i].ms_leaf_pages + s[i].ms_branch_pages + s[i].ms_overflow_pages) * s[i].ms_psize;
        }
        rc = umg_store_offset(tx, &out->next_offset);
        if (rc == UMG_ENOENT) {
            rc = UMG_OK;
        }
    }
    umg_store_abort(tx);
    return rc;
}

/* ------------------------------------------------------------ transactions */

int umg_store_begin(umg_store_t *st, int write, umg_store_txn_t **out)
{
    umg_store_txn_t *tx = umg_calloc(1, sizeof(*tx));
    if (tx == NULL) {
        return UMG_ENOMEM;
    }
    if (write) {
        pthread_mutex_lock(&st->wmu);
    }
    int rc = mdb_txn_begin(st->env, NULL, write ? 0 : MDB_RDONLY, &tx->txn);
    if (rc != 0) {
        if (write) {
            pthread_mutex_unlock(&st->wmu);
        }
        umg_free(tx);
        return map_err(rc, "begin");
    }
    tx->st = st;
    tx->write = write;
    if (write && !st->idx_ready) {
        st->idx_loaded = tidx_load(st) == UMG_OK;
        rc = st->idx_loaded ? UMG_OK : tidx_rebuild(st, tx->txn);
        if (rc != UMG_OK) {
            mdb_txn_abort(tx->txn);
            pthread_mutex_unlock(&st->wmu);
            umg_free(tx);
            return rc;
        }
        st->idx_ready = 1;
    }
    if (write) {
        MDB_val k = {8, "next_str"}, v;
        st->next_str = 1;
        if (mdb_get(tx->txn, st->dbi[DB_META], &k, &v) == 0 && v.mv_size == 4) {
            memcpy(&st->next_str, v.mv_data, 4);
        }
        st->cache_dirty = 0;
    }
    *out = tx;
    return UMG_OK;
}

/* A dirty cached device into the transaction (before it commits). */
static int dev_flush_one(void *ctx, uint64_t key, const void *rec)
{
    umg_store_txn_t *tx = ctx;
    MDB_val k = {8, &key}, v = {sizeof(umg_store_device_t), (void *)rec};
    return inject_txn_full(tx) ? MDB_TXN_FULL : mdb_put(tx->txn, tx->st->dbi[DB_DEV], &k, &v, 0);
}

/* Empties the device cache: after a write transaction that did not commit (it may hold what the store does not),
 * and before a forget pass removes devices. */
static void dev_cache_undo(umg_store_t *st)
{
    if (st->dc != NULL) {
        umg_devcache_clear(st->dc);
    }
}

int umg_store_commit(umg_store_txn_t *tx)
{
    int rc = 0;
    if (tx->write && tx->st->dc != NULL) {
        rc = umg_devcache_flush(tx->st->dc, dev_flush_one, tx);
    }
    if (rc == 0 && tx->write && tx->st->cache_dirty) {
        MDB_val k = {8, "next_str"}, v = {4, &tx->st->next_str};
        rc = mdb_put(tx->txn, tx->st->dbi[DB_META], &k, &v, 0);
    }
    if (rc == 0) {
        if (tx->write) {
            publish_index(tx->st); /* still under the writer lock */
        }
        rc = mdb_txn_commit(tx->txn);
    } else {
        mdb_txn_abort(tx->txn);
    }
    if (rc != 0 && tx->write) {
        cache_clear(tx->st); /* it may name strings that were not stored */
        dev_cache_undo(tx->st);
    }
    if (tx->write) {
        pthread_mutex_unlock(&tx->st->wmu);
    }
    umg_free(tx);
    return map_err(rc, "commit");
}

void umg_store_abort(umg_store_txn_t *tx)
{
    if (tx == NULL) {
        return;
    }
    mdb_txn_abort(tx->txn);
    if (tx->write && tx->st->cache_dirty) {
        cache_clear(tx->st);
    }
    if (tx->write) {
        dev_cache_undo(tx->st);
        pthread_mutex_unlock(&tx->st->wmu);
    }
    umg_free(tx);
}

int umg_store_offset(umg_store_txn_t *tx, uint64_t *next)
{
    MDB_val k = {11, "next_offset"}, v;
    int rc = mdb_get(tx->txn, tx->st->dbi[DB_META], &k, &v);
    if (rc == MDB_NOTFOUND) {
        *next = 0;
        return UMG_OK;
    }
    if (rc != 0 || v.mv_size != 8) {
        return rc ? map_err(rc, "offset") : UMG_ECORRUPT;
    }
    memcpy(next, v.mv_data, 8);
    return UMG_OK;
}

/* Notes live in the meta table under "n:" + the caller's key, apart from the store's own keys. */
static int note_key(uint8_t *kb, const void *key, size_t klen)
{
    if (klen == 0 || klen > 62) {
        return UMG_EINVAL;
    }
    kb[0] = 'n';
    kb[1] = ':';
    memcpy(kb + 2, key, klen);
    return UMG_OK;
}

int umg_store_note_get(umg_store_txn_t *tx, const void *key, size_t klen, int64_t *value)
{
    uint8_t kb[64];
    int rc = note_key(kb, key, klen);
    if (rc != UMG_OK) {
        return rc;
    }
    MDB_val k = {klen + 2, kb}, v;
    rc = mdb_get(tx->txn, tx->st->dbi[DB_META], &k, &v);
    if (rc == MDB_NOTFOUND) {
        return UMG_ENOENT;
    }
    if (rc != 0 || v.mv_size != 8) {
        return rc ? map_err(rc, "note") : UMG_ECORRUPT;
    }
    memcpy(value, v.mv_data, 8);
    return UMG_OK;
}

int umg_store_note_put(umg_store_txn_t *tx, const void *key, size_t klen, int64_t value)
{
    uint8_t kb[64];
    int rc = note_key(kb, key, klen);
    if (rc != UMG_OK) {
        return rc;
    }
    MDB_val k = {klen + 2, kb}, v = {8, &value};
    return map_err(mdb_put(tx->txn, tx->st->dbi[DB_META], &k, &v, 0), "note put");
}

int umg_store_set_offset(umg_store_txn_t *tx, uint64_t next)
{
    MDB_val k = {11, "next_offset"}, v = {8, &next};
    return map_err(mdb_put(tx->txn, tx->st->dbi[DB_META], &k, &v, 0), "set offset");
}

/* -------------------------------------------------------------- dictionary */

/* Finds s in the dictionary: *id (0 when absent) and in kb the key it has or would get.
 * 's' | probe hash -> id | text; a (64-bit) collision moves on to the next hash. */
static int str_probe(umg_store_txn_t *tx, umg_slice_t s, uint64_t h, uint8_t kb[9], uint32_t *id)
{
    kb[0] = 's';
    *id = 0;
    uint64_t ph = h;
    for (int probe = 0; probe < 8; probe++, ph++) {
        memcpy(kb + 1, &ph, 8);
        MDB_val k = {9, kb}, v;
        int rc = mdb_get(tx->txn, tx->st->dbi[DB_STR], &k, &v);
        if (rc == MDB_NOTFOUND) {
            return UMG_OK;
        }
        if (rc != 0) {
            return map_err(rc, "intern");
        }
        if (v.mv_size == 4 + s.len && memcmp((char *)v.mv_data + 4, s.ptr, s.len) == 0) {
            memcpy(id, v.mv_data, 4);
            return UMG_OK;
        }
    }
    return UMG_OK;
}

int umg_store_lookup(umg_store_txn_t *tx, umg_slice_t s, uint32_t *id)
{
    *id = 0;
    if (s.len == 0 || s.len > STR_MAX) {
        return s.len == 0 ? UMG_OK : UMG_ENOENT;
    }
    uint8_t kb[9];
    int rc = str_probe(tx, s, umg_hash64(s.ptr, s.len, 0x5354), kb, id);
    return rc != UMG_OK ? rc : *id == 0 ? UMG_ENOENT : UMG_OK;
}

int umg_store_intern(umg_store_txn_t *tx, umg_slice_t s, uint32_t *id)
{
    if (s.len == 0) {
        *id = 0;
        return UMG_OK;
    }
    if (s.len > STR_MAX) {
        return UMG_ERANGE;
    }
    if (!tx->write) {
        return UMG_EINVAL;
    }
    umg_store_t *st = tx->st;
    uint64_t h = umg_hash64(s.ptr, s.len, 0x5354);
    str_ent_t *e = &st->cache[h >> (64 - CACHE_BITS)];
    if (e->text != NULL && e->h == h && e->len == s.len && memcmp(e->text, s.ptr, s.len) == 0) {
        *id = e->id;
        return UMG_OK;
    }
    uint8_t kb[9];
    uint32_t found = 0;
    int rc = str_probe(tx, s, h, kb, &found);
    if (rc != UMG_OK) {
        return rc;
    }
    if (found == 0) {
        if (st->next_str > UMG_STORE_STR_MAX_ID) {
            return UMG_ERANGE; /* the pipeline skips the record, logged, instead of stopping on it */
        }
        found = st->next_str++;
        char vb[4 + STR_MAX];
        memcpy(vb, &found, 4);
        memcpy(vb + 4, s.ptr, s.len);
        MDB_val k = {9, kb}, v = {4 + s.len, vb};
        rc = mdb_put(tx->txn, st->dbi[DB_STR], &k, &v, MDB_NOOVERWRITE);
        uint8_t ib[5] = {'i', (uint8_t)(found >> 24), (uint8_t)(found >> 16), (uint8_t)(found >> 8), (uint8_t)found};
        MDB_val ik = {5, ib}, iv = {s.len, (void *)s.ptr};
        rc = rc ? rc : mdb_put(tx->txn, st->dbi[DB_STR], &ik, &iv, 0);
        if (rc != 0) {
            return map_err(rc, "intern");
        }
        st->cache_dirty = 1;
    }
    char *copy = umg_malloc(s.len);
    if (copy != NULL) {
        memcpy(copy, s.ptr, s.len);
        umg_free(e->text);
        *e = (str_ent_t){h, found, (uint32_t)s.len, copy};
    }
    *id = found;
    return UMG_OK;
}

int umg_store_string(umg_store_txn_t *tx, uint32_t id, umg_slice_t *out)
{
    if (id == 0) {
        *out = umg_slice("", 0);
        return UMG_OK;
    }
    uint8_t ib[5] = {'i', (uint8_t)(id >> 24), (uint8_t)(id >> 16), (uint8_t)(id >> 8), (uint8_t)id};
    MDB_val k = {5, ib}, v;
    int rc = mdb_get(tx->txn, tx->st->dbi[DB_STR], &k, &v);
    if (rc != 0) {
        return map_err(rc, "string");
    }
    *out = umg_slice(v.mv_data, v.mv_size);
    return UMG_OK;
}

/* ----------------------------------------------------------------- touches */

static size_t put_varint(uint8_t *p, uint32_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static int get_varint(const uint8_t **p, const uint8_t *end, uint32_t *v)
{
    uint32_t r = 0;
    for (int shift = 0; shift < 35; shift += 7) {
        if (*p >= end) {
            return -1;
        }
        uint8_t b = *(*p)++;
        r |= (uint32_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

#define TOUCH_PACK_MAX (16 + 8 * UMG_ATTR_MAX_IDS + 8 + 16 + 7 * 5)

/* Layout: type, flags, nids | has_click << 4 | has_fp << 5, fraud reason, ts (8), app (4), ids, click, fp,
 * 7 varints. */
static size_t touch_pack(const umg_attr_touch_t *t, uint8_t *p)
{
    int nids = 0;
    while (nids < UMG_ATTR_MAX_IDS && t->ids[nids] != 0) {
        nids++;
    }
    int has_fp = t->fp.ip != 0 || t->fp.os != 0 || t->fp.model != 0;
    p[0] = t->type;
    p[1] = t->flags;
    p[2] = (uint8_t)(nids | (t->click_id != 0) << 4 | has_fp << 5);
    p[3] = t->reason;
    memcpy(p + 4, &t->ts_us, 8);
    memcpy(p + 12, &t->app, 4);
    size_t n = 16;
    memcpy(p + n, t->ids, 8 * (size_t)nids);
    n += 8 * (size_t)nids;
    if (t->click_id != 0) {
        memcpy(p + n, &t->click_id, 8);
        n += 8;
    }
    if (has_fp) {
        memcpy(p + n, &t->fp.ip, 8);
        memcpy(p + n + 8, &t->fp.os, 4);
        memcpy(p + n + 12, &t->fp.model, 4);
        n += 16;
    }
    const uint32_t f[7] = {t->source, t->campaign, t->adset, t->ad, t->site, t->deep_link, t->lookback_s};
    for (int i = 0; i < 7; i++) {
        n += put_varint(p + n, f[i]);
    }
    return n;
}

static int touch_unpack(uint64_t touch_id, const uint8_t *p, size_t len, umg_attr_touch_t *t)
{
    memset(t, 0, sizeof(*t));
    if (len < 16) {
        return UMG_ECORRUPT;
    }
    const uint8_t *end = p + len;
    int nids = p[2] & 15, has_click = (p[2] >> 4) & 1, has_fp = (p[2] >> 5) & 1;
    if (nids > UMG_ATTR_MAX_IDS || len < 16 + 8 * (size_t)nids + 8 * (size_t)has_click + 16 * (size_t)has_fp) {
        return UMG_ECORRUPT;
    }
    t->type = p[0];
    t->flags = p[1];
    t->reason = p[3];
    t->touch_id = touch_id;
    memcpy(&t->ts_us, p + 4, 8);
    memcpy(&t->app, p + 12, 4);
    const uint8_t *q = p + 16;
    memcpy(t->ids, q, 8 * (size_t)nids);
    q += 8 * nids;
    if (has_click) {
        memcpy(&t->click_id, q, 8);
        q += 8;
    }
    if (has_fp) {
        memcpy(&t->fp.ip, q, 8);
        memcpy(&t->fp.os, q + 8, 4);
        memcpy(&t->fp.model, q + 12, 4);
        q += 16;
    }
    uint32_t *f[7] = {&t->source, &t->campaign, &t->adset, &t->ad, &t->site, &t->deep_link, &t->lookback_s};
    for (int i = 0; i < 7; i++) {
        if (get_varint(&q, end, f[i]) != 0) {
            return UMG_ECORRUPT;
        }
    }
    return UMG_OK;
}

/*
 * Puts k after the last key of db, or MDB_KEYEXIST when it is not past it. The transaction keeps one cursor per
 * database for this: a cursor that stays at the end appends without descending the tree again (an mdb_put with
 * MDB_APPEND makes a new cursor, which searches from the root each time).
 */
static int append_put(umg_store_txn_t *tx, int db, MDB_val *k, MDB_val *v)
{
    if (tx->tail[db] == NULL) {
        int rc = mdb_cursor_open(tx->txn, tx->st->dbi[db], &tx->tail[db]);
        if (rc != 0) {
            tx->tail[db] = NULL;
            return rc;
        }
    }
    return mdb_cursor_put(tx->tail[db], k, v, MDB_APPEND);
}

int umg_store_touch_put(umg_store_txn_t *tx, const umg_attr_touch_t *t)
{
    umg_store_t *st = tx->st;
    uint8_t buf[TOUCH_PACK_MAX];
    uint64_t id = t->touch_id;
    MDB_val k = {8, &id}, v = {touch_pack(t, buf), buf};
    int rc = inject_txn_full(tx) ? MDB_TXN_FULL : append_put(tx, DB_TOUCH, &k, &v);
    if (rc == MDB_KEYEXIST) {
        /* Not after the last key: a replay of a touch already stored, or out of order. */
        rc = mdb_put(tx->txn, st->dbi[DB_TOUCH], &k, &v, MDB_NOOVERWRITE);
        if (rc == MDB_KEYEXIST) {
            return UMG_OK;
        }
    }
    if (rc != 0) {
        return map_err(rc, "touch put");
    }
    uint64_t keys[MAX_KEYS];
    int nk = touch_keys(t, keys);
    for (int i = 0; i < nk; i++) {
        /* Should the transaction abort, the entries name touches that are not stored: gather skips those,
         * and the touch gets entries again when it is stored. */
        rc = tidx_add(&st->tidx, keys[i], id);
        if (rc != UMG_OK) {
            return rc;
        }
    }
    return UMG_OK;
}

int umg_store_touch_get(umg_store_txn_t *tx, uint64_t touch_id, umg_attr_touch_t *out)
{
    MDB_val k = {8, &touch_id}, v;
    int rc = mdb_get(tx->txn, tx->st->dbi[DB_TOUCH], &k, &v);
    if (rc != 0) {
        return map_err(rc, "touch get");
    }
    return touch_unpack(touch_id, v.mv_data, v.mv_size, out);
}

/* Whether a touch a key reached can be a candidate of obs: of its app, not after it, not older than oldest_us, and
 * through the fingerprint key ('F') a click whose device model does not differ from obs's. */
static int gather_fits(const umg_attr_touch_t *t, const umg_attr_obs_t *obs, int64_t oldest_us, int fkey)
{
    if (t->app != obs->app || t->ts_us > obs->ts_us || t->ts_us < oldest_us) {
        return 0;
    }
    return !fkey || ((t->flags & UMG_ATTR_TF_FRAUD) == 0 &&
                     (t->fp.model == 0 || obs->fp.model == 0 || t->fp.model == obs->fp.model));
}

int umg_store_gather(umg_store_txn_t *tx, const umg_attr_obs_t *obs, int64_t oldest_us, umg_attr_touch_t *out,
                     size_t cap, size_t *n)
{
    /* The strongest class first, impressions last: when cap is reached, what is left out is the weakest. */
    uint64_t keys[MAX_KEYS];
    int nk = 0, fkey = -1;
    if (obs->referrer_click != 0) {
        keys[nk++] = app_key(obs->app, 'C', obs->referrer_click);
    }
    for (int i = 0; i < UMG_ATTR_MAX_IDS && obs->ids[i] != 0; i++) {
        keys[nk++] = app_key(obs->app, 'I', obs->ids[i]);
    }
    if (obs->fp.ip != 0 && obs->fp.os != 0) {
        fkey = nk;
        keys[nk++] = app_key(obs->app, 'F', fp_value(&obs->fp));
    }
    for (int i = 0; i < UMG_ATTR_MAX_IDS && obs->ids[i] != 0; i++) {
        keys[nk++] = app_key(obs->app, 'V', obs->ids[i]);
    }
    *n = 0;
    if (nk == 0) {
        return UMG_OK;
    }
    if (!tx->write) {
        return UMG_EINVAL; /* the index is only read under LMDB's writer lock */
    }
    const tindex_t *x = &tx->st->tidx;
    size_t got = 0;
    int rc = 0;
    for (int i = 0; i < nk && got < cap && rc == 0; i++) {
        size_t j = tidx_find(x, keys[i], 0);
        uint32_t node = j == SIZE_MAX ? 0 : x->slots[j].head;
        /*
         * Newest in the log first; the list's expired tail starts below the watermark. What can never be a
         * candidate is passed over without counting, and touches the fraud rules rejected are kept (the fraud
         * features count them; UMG_STORE_GATHER_PER_KEY at most) without counting either, so neither can push a
         * candidate out. Of the candidates
         * the UMG_STORE_GATHER_PER_KEY latest by time are kept (a backfill logged later but dated earlier does
         * not push out the latest), among the first UMG_STORE_GATHER_WALK entries of the list.
         */
        size_t mine[UMG_STORE_GATHER_PER_KEY]; /* where this key's counted candidates are in out */
        size_t nmine = 0, nrej = 0;            /* ... and how many rejected touches it kept (as many at most) */
        for (int walked = 0; node != 0 && walked < UMG_STORE_GATHER_WALK && got < cap && rc == 0; walked++) {
            uint64_t id = x->pool[node - 1].id;
            node = x->pool[node - 1].next;
            if (id < x->watermark) {
                break;
            }
            int dup = 0;
            for (size_t q = 0; q < got && !dup; q++) {
                dup = out[q].touch_id == id;
            }
            if (dup) {
                continue;
            }
            MDB_val tk = {8, &id}, tv;
            umg_attr_touch_t t;
            int grc = mdb_get(tx->txn, tx->st->dbi[DB_TOUCH], &tk, &tv);
            if (grc != 0) {
                rc = grc == MDB_NOTFOUND ? 0 : grc; /* MDB_NOTFOUND: forgotten, or its transaction aborted */
                continue;
            }
            if (touch_unpack(id, tv.mv_data, tv.mv_size, &t) != UMG_OK || !gather_fits(&t, obs, oldest_us, i == fkey)) {
                continue;
            }
            if (t.flags & UMG_ATTR_TF_FRAUD) {
                if (nrej < UMG_STORE_GATHER_PER_KEY) { /* more would take the room of the other keys' candidates */
                    nrej++;
                    out[got++] = t;
                }
            } else if (nmine < UMG_STORE_GATHER_PER_KEY) {
                mine[nmine++] = got;
                out[got++] = t;
            } else {
                size_t m = 0;
                for (size_t q = 1; q < nmine; q++) {
                    m = out[mine[q]].ts_us < out[mine[m]].ts_us ? q : m;
                }
                if (t.ts_us > out[mine[m]].ts_us) {
                    out[mine[m]] = t;
                }
            }
        }
    }
    *n = got;
    return map_err(rc, "gather");
}

int umg_store_expire(umg_store_txn_t *tx, int64_t before_us, size_t max, size_t *removed)
{
    MDB_cursor *c;
    size_t done = 0;
    int rc = mdb_cursor_open(tx->txn, tx->st->dbi[DB_TOUCH], &c);
    if (rc != 0) {
        return map_err(rc, "expire");
    }
    MDB_val k, v;
    rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    while (rc == 0 && done < max) {
        uint64_t id;
        memcpy(&id, k.mv_data, 8);
        umg_attr_touch_t t;
        if (touch_unpack(id, v.mv_data, v.mv_size, &t) != UMG_OK) {
            rc = MDB_CORRUPTED;
            break;
        }
        if (t.ts_us >= before_us) {
            break;
        }
        uint64_t keys[MAX_KEYS];
        size_t nk = (size_t)touch_keys(&t, keys);
        tindex_t *x = &tx->st->tidx;
        x->live = x->live > nk ? x->live - nk : 0;
        if (id + 1 > x->watermark) {
            x->watermark = id + 1; /* its index entries are now past every list's end */
        }
        rc = rc ? rc : mdb_cursor_del(c, 0);
        done++;
        rc = rc ? rc : mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    if (removed != NULL) {
        *removed = done;
    }
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return map_err(rc, "expire");
    }
    /* When expired entries outnumber the live ones, the pool is rebuilt from the touch table. */
    tindex_t *x = &tx->st->tidx;
    if (x->pool_n > 1000000 && x->pool_n > 2 * x->live) {
        return tidx_rebuild(tx->st, tx->txn);
    }
    return UMG_OK;
}

int umg_store_touches_scan(umg_store_txn_t *tx, uint32_t app, int (*fn)(void *ctx, const umg_attr_touch_t *t),
                           void *ctx)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(tx->txn, tx->st->dbi[DB_TOUCH], &c);
    if (rc != 0) {
        return map_err(rc, "scan");
    }
    MDB_val k, v;
    int urc = UMG_OK;
    rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    while (rc == 0) {
        uint64_t id;
        memcpy(&id, k.mv_data, 8);
        umg_attr_touch_t t;
        if (touch_unpack(id, v.mv_data, v.mv_size, &t) != UMG_OK) {
            rc = MDB_CORRUPTED;
            break;
        }
        if (app == 0 || t.app == app) {
            urc = fn(ctx, &t);
            if (urc != 0) {
                break;
            }
        }
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    if (urc != 0) {
        return urc;
    }
    return rc == MDB_NOTFOUND ? UMG_OK : map_err(rc, "scan");
}

/* ----------------------------------------------------------------- devices */

/* The writer's device cache, or NULL (read transactions never use it: they see committed devices). */
static inline umg_devcache_t *dev_cache(const umg_store_txn_t *tx)
{
    return tx->write ? tx->st->dc : NULL;
}

/* The cache's dirty devices into the transaction, for what reads the device table itself. */
static int dev_cache_settle(umg_store_txn_t *tx)
{
    umg_devcache_t *dc = dev_cache(tx);
    return dc != NULL ? map_err(umg_devcache_flush(dc, dev_flush_one, tx), "device put") : UMG_OK;
}

int umg_store_device_get(umg_store_txn_t *tx, uint32_t app, uint64_t key, umg_store_device_t *out)
{
    (void)app; /* the key was made with the app in it */
    umg_devcache_t *dc = dev_cache(tx);
    const void *cached = dc != NULL ? umg_devcache_get(dc, key) : NULL;
    if (cached != NULL) {
        memcpy(out, cached, sizeof(*out));
        return UMG_OK;
    }
    MDB_val k = {8, &key}, v;
    int rc = mdb_get(tx->txn, tx->st->dbi[DB_DEV], &k, &v);
    if (rc != 0) {
        return map_err(rc, "device get");
    }
    if (v.mv_size != sizeof(*out)) {
        return UMG_ECORRUPT;
    }
    memcpy(out, v.mv_data, sizeof(*out));
    if (dc != NULL) {
        umg_devcache_put(dc, key, out, 0);
    }
    return UMG_OK;
}

typedef struct walkpos_s {
    MDB_cursor *c;
    uint64_t at; /* the key the cursor is on */
    int on;      /* the cursor is on a record */
} walkpos_t;

struct umg_store_devwalk_s {
    umg_store_txn_t *tx;
    walkpos_t dev, dims; /* a cursor per table, opened when first read */
};

int umg_store_devwalk_open(umg_store_txn_t *tx, umg_store_devwalk_t **out)
{
    int rc = dev_cache_settle(tx); /* the walk reads the table */
    if (rc != UMG_OK) {
        return rc;
    }
    umg_store_devwalk_t *w = umg_calloc(1, sizeof(*w));
    if (w == NULL) {
        return UMG_ENOMEM;
    }
    w->tx = tx;
    *out = w;
    return UMG_OK;
}

/* Puts the table's cursor on key's record: its value in *v. */
static int devwalk_seek(umg_store_devwalk_t *dw, int db, walkpos_t *w, uint64_t key, MDB_val *v)
{
    if (w->c == NULL) {
        int rc = mdb_cursor_open(dw->tx->txn, dw->tx->st->dbi[db], &w->c);
        if (rc != 0) {
            w->c = NULL;
            return map_err(rc, "device walk");
        }
    }
    MDB_val k;
    int rc = MDB_NOTFOUND, seek = 1;
    if (w->on && w->at == key) {
        rc = mdb_cursor_get(w->c, &k, v, MDB_GET_CURRENT);
        seek = 0;
    } else if (w->on && w->at < key) {
        /* a few steps forward; a seek when the next key is still far */
        for (int steps = 0; steps < 4; steps++) {
            rc = mdb_cursor_get(w->c, &k, v, MDB_NEXT);
            if (rc != 0) {
                break;
            }
            memcpy(&w->at, k.mv_data, 8);
            if (w->at >= key) {
                seek = 0;
                break;
            }
        }
    }
    if (seek) {
        k = (MDB_val){8, &key};
        rc = mdb_cursor_get(w->c, &k, v, MDB_SET_RANGE);
        if (rc == 0) {
            memcpy(&w->at, k.mv_data, 8);
        }
    }
    w->on = rc == 0;
    if (rc != 0) {
        return rc == MDB_NOTFOUND ? UMG_ENOENT : map_err(rc, "device walk");
    }
    return w->at != key ? UMG_ENOENT : UMG_OK;
}

int umg_store_devwalk_get(umg_store_devwalk_t *w, uint64_t key, umg_store_device_t *out)
{
    MDB_val v;
    int rc = devwalk_seek(w, DB_DEV, &w->dev, key, &v);
    if (rc == UMG_OK && v.mv_size != sizeof(*out)) {
        return UMG_ECORRUPT;
    }
    if (rc == UMG_OK) {
        memcpy(out, v.mv_data, sizeof(*out));
    }
    return rc;
}

int umg_store_devwalk_dims(umg_store_devwalk_t *w, uint64_t key, uint32_t dims[UMG_RD_N])
{
    MDB_val v;
    int rc = devwalk_seek(w, DB_DIMS, &w->dims, key, &v);
    if (rc == UMG_OK && v.mv_size != UMG_RD_N * sizeof(uint32_t)) {
        return UMG_ECORRUPT;
    }
    if (rc == UMG_OK) {
        memcpy(dims, v.mv_data, UMG_RD_N * sizeof(uint32_t));
    }
    return rc;
}

void umg_store_devwalk_close(umg_store_devwalk_t *w)
{
    if (w != NULL) {
        if (w->dev.c != NULL) {
            mdb_cursor_close(w->dev.c);
        }
        if (w->dims.c != NULL) {
            mdb_cursor_close(w->dims.c);
        }
        umg_free(w);
    }
}

int umg_store_device_by_id(umg_store_txn_t *tx, uint32_t app, uint64_t id_hash, umg_store_device_t *out)
{
    if (id_hash == 0) {
        return UMG_ENOENT;
    }
    uint64_t ak = app_key(app, 'A', id_hash), canon;
    umg_devcache_t *dc = dev_cache(tx);
    if (dc != NULL && umg_devcache_alias_get(dc, ak, &canon)) {
        return canon != 0 ? umg_store_device_get(tx, app, canon, out) : UMG_ENOENT;
    }
    MDB_val k = {8, &ak}, v;
    int rc = mdb_get(tx->txn, tx->st->dbi[DB_ALIAS], &k, &v);
    if (rc == MDB_NOTFOUND && dc != NULL) {
        umg_devcache_alias_put(dc, ak, 0);
    }
    if (rc != 0) {
        return map_err(rc, "alias get");
    }
    if (v.mv_size != 8) {
        return UMG_ECORRUPT;
    }
    memcpy(&canon, v.mv_data, 8);
    if (dc != NULL) {
        umg_devcache_alias_put(dc, ak, canon);
    }
    return umg_store_device_get(tx, app, canon, out);
}

static void found_note(umg_store_txn_t *tx, uint32_t app, const uint64_t ids[UMG_ATTR_MAX_IDS], uint64_t key,
                       unsigned aliased, unsigned absent)
{
    tx->found.app = app;
    tx->found.key = key;
    memcpy(tx->found.ids, ids, sizeof(tx->found.ids));
    tx->found.aliased = aliased;
    tx->found.absent = absent;
}

int umg_store_device_find(umg_store_txn_t *tx, uint32_t app, const uint64_t ids[UMG_ATTR_MAX_IDS],
                          umg_store_device_t *out)
{
    if (ids[0] == 0) {
        return UMG_EINVAL;
    }
    tx->found.app = 0;
    unsigned absent = 0;
    for (int i = 0; i < UMG_ATTR_MAX_IDS && ids[i] != 0; i++) {
        int rc = umg_store_device_by_id(tx, app, ids[i], out);
        if (rc == UMG_OK) {
            found_note(tx, app, ids, out->key, 1u << i, absent);
        }
        if (rc != UMG_ENOENT) {
            return rc;
        }
        absent |= 1u << i;
    }
    memset(out, 0, sizeof(*out));
    out->key = app_key(app, 'D', ids[0]);
    found_note(tx, app, ids, out->key, 0, absent);
    return UMG_ENOENT;
}

int umg_store_device_put(umg_store_txn_t *tx, uint32_t app, const uint64_t ids[UMG_ATTR_MAX_IDS],
                         const umg_store_device_t *d, const uint32_t *dims_before)
{
    uint64_t key = d->key;
    MDB_val k = {8, &key}, v = {sizeof(*d), (void *)d};
    umg_devcache_t *dc = dev_cache(tx);
    int rc = inject_txn_full(tx)                             ? MDB_TXN_FULL
             : dc != NULL && umg_devcache_put(dc, key, d, 1) ? 0 /* put at the commit */
                                                             : mdb_put(tx->txn, tx->st->dbi[DB_DEV], &k, &v, 0);
    uint32_t dims[UMG_RD_N];
    umg_store_device_dims(d, dims);
    if (rc == 0 && (dims_before == NULL || memcmp(dims, dims_before, sizeof(dims)) != 0)) {
        MDB_val dv = {sizeof(dims), dims};
        rc = mdb_put(tx->txn, tx->st->dbi[DB_DIMS], &k, &dv, 0);
    }
    /* The find just before, for the same ids and device, already read some aliases: those are not read again. */
    unsigned aliased = 0, absent = 0;
    if (tx->found.app == app && tx->found.key == key && memcmp(tx->found.ids, ids, sizeof(tx->found.ids)) == 0) {
        aliased = tx->found.aliased;
        absent = tx->found.absent;
    }
    tx->found.app = 0;
    for (int i = 0; rc == 0 && i < UMG_ATTR_MAX_IDS && ids[i] != 0; i++) {
        if (aliased & (1u << i)) {
            continue;
        }
        uint64_t ak = app_key(app, 'A', ids[i]), known;
        MDB_val kk = {8, &ak}, kv;
        if (!(absent & (1u << i))) {
            if (dc != NULL && umg_devcache_alias_get(dc, ak, &known)) {
                if (known == key) {
                    continue;
                }
            } else {
                rc = mdb_get(tx->txn, tx->st->dbi[DB_ALIAS], &kk, &kv);
                if (rc == 0 && kv.mv_size == 8 && memcmp(kv.mv_data, &key, 8) == 0) {
                    continue;
                }
            }
        }
        kv = (MDB_val){8, &key};
        rc = mdb_put(tx->txn, tx->st->dbi[DB_ALIAS], &kk, &kv, 0);
        if (rc == 0 && dc != NULL) {
            umg_devcache_alias_put(dc, ak, key);
        }
    }
    return map_err(rc, "device put");
}

int umg_store_seen(umg_store_txn_t *tx, uint32_t app, const umg_uuid_t *event_id)
{
    uint64_t k = app_key(app, 'E', umg_hash64(event_id, sizeof(*event_id), 0x4556));
    MDB_val key = {8, &k}, v = {0, ""};
    int rc = mdb_put(tx->txn, tx->st->dbi[DB_SEEN], &key, &v, MDB_NOOVERWRITE);
    return rc == MDB_KEYEXIST ? UMG_EEXIST : map_err(rc, "seen");
}

/* ------------------------------------------------------------ report state */

int umg_store_dayset_add(umg_store_dayset_t *s, int32_t day)
{
    if (s->bits[0] == 0 && s->bits[1] == 0) {
        s->base = day - (UMG_STORE_DAYSET_DAYS - 1);
    }
    int64_t at = (int64_t)day - s->base;
    if (at < 0) {
        return -1;
    }
    if (at >= UMG_STORE_DAYSET_DAYS) { /* slide the window so day is its newest */
        int64_t by = at - (UMG_STORE_DAYSET_DAYS - 1);
        if (by >= UMG_STORE_DAYSET_DAYS) {
            s->bits[0] = s->bits[1] = 0;
        } else if (by >= 64) {
            s->bits[0] = s->bits[1] >> (by - 64);
            s->bits[1] = 0;
        } else if (by > 0) {
            s->bits[0] = s->bits[0] >> by | s->bits[1] << (64 - by);
            s->bits[1] >>= by;
        }
        s->base += (int32_t)by;
        at = UMG_STORE_DAYSET_DAYS - 1;
    }
    uint64_t bit = UINT64_C(1) << (at & 63);
    uint64_t *w = &s->bits[at >> 6];
    if (*w & bit) {
        return 0;
    }
    *w |= bit;
    return 1;
}

static int dayset_has(const umg_store_dayset_t *s, int64_t day)
{
    int64_t at = day - s->base;
    return at >= 0 && at < UMG_STORE_DAYSET_DAYS && (s->bits[at >> 6] >> (at & 63) & 1);
}

int32_t umg_store_dayset_prev(const umg_store_dayset_t *s, int32_t day)
{
    if ((s->bits[0] | s->bits[1]) == 0) {
        return INT32_MIN;
    }
    int64_t top = (int64_t)s->base + UMG_STORE_DAYSET_DAYS - 1;
    for (int64_t d = (int64_t)day - 1 < top ? (int64_t)day - 1 : top; d >= s->base; d--) {
        if (dayset_has(s, d)) {
            return (int32_t)d;
        }
    }
    return INT32_MIN;
}

int32_t umg_store_dayset_next(const umg_store_dayset_t *s, int32_t day)
{
    if ((s->bits[0] | s->bits[1]) == 0) {
        return INT32_MAX;
    }
    for (int64_t d = (int64_t)day + 1 > s->base ? (int64_t)day + 1 : s->base;
         d < (int64_t)s->base + UMG_STORE_DAYSET_DAYS; d++) {
        if (dayset_has(s, d)) {
            return (int32_t)d;
        }
    }
    return INT32_MAX;
}

int umg_store_event_day(umg_store_txn_t *tx, umg_store_device_t *d, uint32_t name, int32_t day, int *added)
{
    *added = 0;
    for (int i = 0; i < UMG_STORE_EVDAYS_INLINE; i++) {
        umg_store_evdays_t *e = &d->evdays[i];
        if (e->name == name || e->name == 0) {
            e->name = name;
            *added = umg_store_dayset_add(&e->days, day);
            return UMG_OK;
        }
    }
    uint64_t device_key = d->key;
    uint8_t kb[12];
    memcpy(kb, &device_key, 8);
    memcpy(kb + 8, &name, 4);
    MDB_val k = {12, kb}, v;
    umg_store_dayset_t ds;
    memset(&ds, 0, sizeof(ds));
    int rc = mdb_get(tx->txn, tx->st->dbi[DB_EVDAY], &k, &v);
    if (rc == 0 && v.mv_size == sizeof(ds)) {
        memcpy(&ds, v.mv_data, sizeof(ds));
    } else if (rc != MDB_NOTFOUND) {
        return rc ? map_err(rc, "event day") : UMG_ECORRUPT;
    }
    *added = umg_store_dayset_add(&ds, day);
    if (*added == 0) {
        return UMG_OK;
    }
    v = (MDB_val){sizeof(ds), &ds};
    return map_err(mdb_put(tx->txn, tx->st->dbi[DB_EVDAY], &k, &v, 0), "event day");
}

/* Rollup rows: app (4) | table (1) | umg_rollup_key_t (40) -> int64 counters. */
#define ROLL_KEY (5 + sizeof(umg_rollup_key_t))

int umg_store_rollup_put(umg_store_txn_t *tx, uint32_t app, int table, const umg_rollup_key_t *k, const int64_t *v,
                         size_t nv)
{
    uint8_t kb[ROLL_KEY];
    memcpy(kb, &app, 4);
    kb[4] = (uint8_t)table;
    memcpy(kb + 5, k, sizeof(*k));
    MDB_val key = {sizeof(kb), kb}, val = {nv * sizeof(int64_t), (void *)v};
    int rc = inject_txn_full(tx) ? MDB_TXN_FULL : mdb_put(tx->txn, tx->st->dbi[DB_ROLL], &key, &val, 0);
    return map_err(rc, "rollup put");
}

int umg_store_rollup_scan(umg_store_txn_t *tx,
                          int (*fn)(void *ctx, uint32_t app, int table, const umg_rollup_key_t *k, const int64_t *v,
                                    size_t nv),
                          void *ctx)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(tx->txn, tx->st->dbi[DB_ROLL], &c);
    if (rc != 0) {
        return map_err(rc, "rollup scan");
    }
    MDB_val k, v;
    int urc = 0;
    int64_t vals[UMG_ROLLUP_MAXV];
    rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    while (rc == 0) {
        if (k.mv_size != ROLL_KEY || v.mv_size % sizeof(int64_t) != 0 || v.mv_size > sizeof(vals)) {
            rc = MDB_CORRUPTED;
            break;
        }
        uint32_t app;
        umg_rollup_key_t key;
        memcpy(&app, k.mv_data, 4);
        memcpy(&key, (const uint8_t *)k.mv_data + 5, sizeof(key));
        memcpy(vals, v.mv_data, v.mv_size);
        urc = fn(ctx, app, ((const uint8_t *)k.mv_data)[4], &key, vals, v.mv_size / sizeof(int64_t));
        if (urc != 0) {
            break;
        }
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    if (urc != 0) {
        return urc;
    }
    return rc == MDB_NOTFOUND ? UMG_OK : map_err(rc, "rollup scan");
}

int umg_store_rollup_log_append(umg_store_txn_t *tx, const void *data, size_t len, uint64_t *seq_out)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(tx->txn, tx->st->dbi[DB_RLOG], &c);
    if (rc != 0) {
        return map_err(rc, "rollup log");
    }
    MDB_val k, v;
    uint64_t seq = 0;
    rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
    if (rc == 0 && k.mv_size == 8) {
        memcpy(&seq, k.mv_data, 8);
        seq++;
    }
    k = (MDB_val){8, &seq};
    v = (MDB_val){len, (void *)data};
    rc = rc == 0 || rc == MDB_NOTFOUND ? mdb_cursor_put(c, &k, &v, MDB_APPEND) : rc;
    mdb_cursor_close(c);
    *seq_out = seq;
    return map_err(rc, "rollup log");
}

int umg_store_rollup_log_scan(umg_store_txn_t *tx, int (*fn)(void *ctx, uint64_t seq, const void *data, size_t len),
                              void *ctx)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(tx->txn, tx->st->dbi[DB_RLOG], &c);
    if (rc != 0) {
        return map_err(rc, "rollup log");
    }
    MDB_val k, v;
    int urc = 0;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        uint64_t seq;
        if (k.mv_size != 8) {
            rc = MDB_CORRUPTED;
            break;
        }
        memcpy(&seq, k.mv_data, 8);
        if ((urc = fn(ctx, seq, v.mv_data, v.mv_size)) != 0) {
            break;
        }
    }
    mdb_cursor_close(c);
    return urc != 0 ? urc : rc == MDB_NOTFOUND ? UMG_OK : map_err(rc, "rollup log");
}

/* The mark of a fold in progress, in the meta table: upto (8) | the last row written (ROLL_KEY). */
#define FOLD_MARK_KEY "rollup_fold"

int umg_store_rollup_fold_mark(umg_store_txn_t *tx, uint64_t upto, uint32_t app, int table, const umg_rollup_key_t *k)
{
    uint8_t vb[8 + ROLL_KEY];
    memcpy(vb, &upto, 8);
    memcpy(vb + 8, &app, 4);
    vb[12] = (uint8_t)table;
    memcpy(vb + 13, k, sizeof(*k));
    MDB_val key = {sizeof(FOLD_MARK_KEY) - 1, FOLD_MARK_KEY}, val = {sizeof(vb), vb};
    return map_err(mdb_put(tx->txn, tx->st->dbi[DB_META], &key, &val, 0), "rollup fold");
}

int umg_store_rollup_fold_get(umg_store_txn_t *tx, uint64_t *upto, uint32_t *app, int *table, umg_rollup_key_t *k)
{
    MDB_val key = {sizeof(FOLD_MARK_KEY) - 1, FOLD_MARK_KEY}, val;
    int rc = mdb_get(tx->txn, tx->st->dbi[DB_META], &key, &val);
    if (rc != 0) {
        return rc == MDB_NOTFOUND ? UMG_ENOENT : map_err(rc, "rollup fold");
    }
    if (val.mv_size != 8 + ROLL_KEY) {
        return UMG_ECORRUPT;
    }
    const uint8_t *vb = val.mv_data;
    memcpy(upto, vb, 8);
    memcpy(app, vb + 8, 4);
    *table = vb[12];
    memcpy(k, vb + 13, sizeof(*k));
    return UMG_OK;
}

int umg_store_rollup_fold_done(umg_store_txn_t *tx, uint64_t upto)
{
    MDB_val key = {sizeof(FOLD_MARK_KEY) - 1, FOLD_MARK_KEY}, val;
    int rc = mdb_del(tx->txn, tx->st->dbi[DB_META], &key, NULL);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return map_err(rc, "rollup fold");
    }
    MDB_cursor *c;
    rc = mdb_cursor_open(tx->txn, tx->st->dbi[DB_RLOG], &c);
    if (rc != 0) {
        return map_err(rc, "rollup log");
    }
    uint64_t seq;
    while ((rc = mdb_cursor_get(c, &key, &val, MDB_FIRST)) == 0) {
        if (key.mv_size != 8) {
            rc = MDB_CORRUPTED;
            break;
        }
        memcpy(&seq, key.mv_data, 8);
        if (seq > upto || (rc = mdb_cursor_del(c, 0)) != 0) {
            break;
        }
    }
    mdb_cursor_close(c);
    return rc == 0 || rc == MDB_NOTFOUND ? UMG_OK : map_err(rc, "rollup log");
}

/* --------------------------------------------------------------- timelines */

/*
 * app (4) | offset (8), big-endian | kind (1) -> device key (8) | time (8) | name (4). Keyed in log order, so
 * the pipeline appends (a key by device would cost a page copy per event at a random place); a scan
 * groups the steps by device in memory. The kind is in the key: the event that is an implicit install
 * adds an install step and its own.
 */
#define TL_KEY 13
_Static_assert(TL_KEY == sizeof(((struct umg_store_s *)0)->tl_last), "the hint holds a timeline key");
#define TL_VAL 20

static void put_be(uint8_t *p, uint64_t v, int n);
static uint64_t get_be(const uint8_t *p, int n);

int umg_store_timeline_add(umg_store_txn_t *tx, uint32_t app, uint64_t device_key, uint64_t offset,
                           const umg_store_step_t *step)
{
    uint8_t kb[TL_KEY], vb[TL_VAL];
    put_be(kb, app, 4);
    put_be(kb + 4, offset, 8);
    kb[12] = step->kind;
    memcpy(vb, &device_key, 8);
    memcpy(vb + 8, &step->ts_us, 8);
    memcpy(vb + 16, &step->name, 4);
    MDB_val k = {TL_KEY, kb}, v = {TL_VAL, vb};
    /* Each app's keys grow with the log: past the largest key put so far, the step is appended (no descent, and
     * the pages fill completely instead of splitting in half); LMDB checks the order, and a key that is not the
     * largest (another app's, or a replay's) is put as usual. */
    int rc = MDB_KEYEXIST;
    if (memcmp(kb, tx->st->tl_last, TL_KEY) > 0) {
        rc = append_put(tx, DB_TL, &k, &v);
        if (rc == 0) {
            memcpy(tx->st->tl_last, kb, TL_KEY);
        }
    }
    if (rc == MDB_KEYEXIST) {
        rc = mdb_put(tx->txn, tx->st->dbi[DB_TL], &k, &v, 0);
    }
    return map_err(rc, "timeline");
}

/* A scan's step with its device. */
typedef struct tl_ent_s {
    uint64_t key;
    umg_store_step_t s;
} tl_ent_t;

/* The steps are split into 256 parts by the top bits of their device's key (keys are hashes: the parts are
 * even) that fit the caches; parts, and devices within one, go in key order, so the device states a grouped
 * funnel reads are read in the store's order. Each part's steps are read straight into a list of chunks of
 * its own, in log order: no array regrown and copied, no second copy to split it. */
#define TL_BUCKET_BITS 8
#define TL_CHUNK 4000 /* steps a chunk holds: about 96 KiB, reused from the heap scan after scan */

typedef struct tl_chunk_s {
    struct tl_chunk_s *next;
    size_t n;
    tl_ent_t e[TL_CHUNK];
} tl_chunk_t;

typedef struct tl_bucket_s {
    tl_chunk_t *head, *tail;
    size_t n;
} tl_bucket_t;

/* Working memory for grouping one part, sized for the largest. */
typedef struct tl_work_s {
    uint32_t *slot;   /* open addressing: device index + 1 */
    uint32_t *dev_of; /* per step of the part */
    uint64_t *dkey;   /* per device */
    uint32_t *order;  /* devices by key */
    uint32_t *start;  /* per device + 1 */
    umg_store_step_t *steps;
} tl_work_t;

static int tl_order_cmp(const void *a, const void *b, void *keys)
{
    const uint64_t *k = keys;
    uint64_t x = k[*(const uint32_t *)a], y = k[*(const uint32_t *)b];
    return x < y ? -1 : x > y;
}

/* Stable merge sort of st[0..m) by time, through a scratch array. */
static int steps_merge_sort(umg_store_step_t *st, size_t m)
{
    umg_store_step_t *tmp = umg_malloc(m * sizeof(*tmp));
    if (tmp == NULL) {
        return UMG_ENOMEM;
    }
    umg_store_step_t *src = st, *dst = tmp;
    for (size_t width = 1; width < m; width *= 2) {
        for (size_t lo = 0; lo < m; lo += 2 * width) {
            size_t mid = UMG_MIN(lo + width, m), hi = UMG_MIN(lo + 2 * width, m), a = lo, b = mid, o = lo;
            while (a < mid && b < hi) {
                dst[o++] = src[b].ts_us < src[a].ts_us ? src[b++] : src[a++]; /* ties: the left one first */
            }
            while (a < mid) {
                dst[o++] = src[a++];
            }
            while (b < hi) {
                dst[o++] = src[b++];
            }
        }
        umg_store_step_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != st) {
        memcpy(st, src, m * sizeof(*st));
    }
    umg_free(tmp);
    return UMG_OK;
}

/*
 * A device's steps into time order, ties in log order. They come nearly in time order, so an insertion sort;
 * but a device may send many out of order (a backlog flushed newest first), and one such timeline would make
 * every funnel quadratic: past a budget of moves, a merge sort instead.
 */
static int steps_sort(umg_store_step_t *st, size_t m)
{
    size_t budget = 8 * m + 64;
    for (size_t a = 1; a < m; a++) {
        umg_store_step_t t = st[a];
        size_t b = a;
        while (b > 0 && st[b - 1].ts_us > t.ts_us) {
            if (budget-- == 0) {
                st[b] = t; /* before only later steps: ties keep their order */
                return steps_merge_sort(st, m);
            }
            st[b] = st[b - 1];
            b--;
        }
        st[b] = t;
    }
    return UMG_OK;
}

/* One part's steps (in log order) grouped by device, each device's in time order (ties stay in log order),
 * then fn once per device. Linear: a hash of the part's devices, then a counting sort. */
static int tl_part(const tl_bucket_t *bk, tl_work_t *w,
                   int (*fn)(void *ctx, uint64_t device_key, const umg_store_step_t *steps, size_t n), void *ctx)
{
    size_t n = bk->n, nslot = 16;
    while (nslot < 2 * n) {
        nslot *= 2;
    }
    memset(w->slot, 0, nslot * sizeof(*w->slot));
    size_t nd = 0, i = 0;
    for (const tl_chunk_t *ch = bk->head; ch != NULL; ch = ch->next) {
        for (size_t x = 0; x < ch->n; x++, i++) {
            uint64_t key = ch->e[x].key;
            size_t j = (size_t)(mix64(key) & (nslot - 1));
            while (w->slot[j] != 0 && w->dkey[w->slot[j] - 1] != key) {
                j = (j + 1) & (nslot - 1);
            }
            if (w->slot[j] == 0) {
                w->dkey[nd] = key;
                w->start[nd + 1] = 0;
                w->slot[j] = (uint32_t)++nd;
            }
            w->dev_of[i] = w->slot[j] - 1;
            w->start[w->dev_of[i] + 1]++;
        }
    }
    w->start[0] = 0;
    for (size_t d = 1; d <= nd; d++) {
        w->start[d] += w->start[d - 1];
    }
    i = 0;
    for (const tl_chunk_t *ch = bk->head; ch != NULL; ch = ch->next) {
        for (size_t x = 0; x < ch->n; x++, i++) { /* the counting sort keeps log order within a device */
            w->steps[w->start[w->dev_of[i]]++] = ch->e[x].s;
        }
    }
    for (size_t d = 0; d < nd; d++) {
        w->order[d] = (uint32_t)d;
    }
    qsort_r(w->order, nd, sizeof(*w->order), tl_order_cmp, w->dkey);
    for (size_t o = 0; o < nd; o++) {
        size_t d = w->order[o], from = d > 0 ? w->start[d - 1] : 0;
        umg_store_step_t *st = w->steps + from;
        size_t m = w->start[d] - from;
        int rc = steps_sort(st, m);
        rc = rc ? rc : fn(ctx, w->dkey[d], st, m);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* Working memory for the parts lo..hi: sized for the largest. */
static int tl_work_new(tl_work_t *w, const tl_bucket_t *bk, size_t lo, size_t hi)
{
    size_t big = 0, nslot = 16;
    for (size_t b = lo; b < hi; b++) {
        big = bk[b].n > big ? bk[b].n : big;
    }
    while (nslot < 2 * big) {
        nslot *= 2;
    }
    big = big ? big : 1;
    w->slot = umg_malloc(nslot * sizeof(*w->slot));
    w->dev_of = umg_malloc(big * sizeof(*w->dev_of));
    w->dkey = umg_malloc(big * sizeof(*w->dkey));
    w->order = umg_malloc(big * sizeof(*w->order));
    w->start = umg_malloc((big + 1) * sizeof(*w->start));
    w->steps = umg_malloc(big * sizeof(*w->steps));
    return w->slot == NULL || w->dev_of == NULL || w->dkey == NULL || w->order == NULL || w->start == NULL ||
                   w->steps == NULL
               ? UMG_ENOMEM
               : UMG_OK;
}

static void tl_work_free(tl_work_t *w)
{
    umg_free(w->slot);
    umg_free(w->dev_of);
    umg_free(w->dkey);
    umg_free(w->order);
    umg_free(w->start);
    umg_free(w->steps);
}

/* One thread's share of the parts: lo..hi, into fn(ctx); stops early when the other's failed. */
typedef struct tl_share_s {
    const tl_bucket_t *bk;
    size_t lo, hi;
    int (*fn)(void *ctx, uint64_t device_key, const umg_store_step_t *steps, size_t n);
    void *ctx;
    _Atomic int *stop;
    int rc;
} tl_share_t;

static void tl_share_run(void *arg)
{
    tl_share_t *sh = arg;
    tl_work_t w = {0};
    sh->rc = tl_work_new(&w, sh->bk, sh->lo, sh->hi);
    for (size_t b = sh->lo; b < sh->hi && sh->rc == 0; b++) {
        sh->rc = atomic_load_explicit(sh->stop, memory_order_relaxed) ? 0 : tl_part(&sh->bk[b], &w, sh->fn, sh->ctx);
    }
    if (sh->rc != 0) {
        atomic_store_explicit(sh->stop, 1, memory_order_relaxed);
    }
    tl_work_free(&w);
}

int umg_store_timeline_scan(umg_store_txn_t *tx, uint32_t app,
                            int (*fn)(void *ctx, uint64_t device_key, const umg_store_step_t *steps, size_t n),
                            void *ctx)
{
    void *const both[2] = {ctx, ctx};
    return umg_store_timeline_scan_par(tx, app, fn, both, NULL, NULL, NULL);
}

int umg_store_timeline_scan_par(umg_store_txn_t *tx, uint32_t app,
                                int (*fn)(void *ctx, uint64_t device_key, const umg_store_step_t *steps, size_t n),
                                void *const ctx[2], void *par, int (*beside)(void *par, void (*job)(void *), void *arg),
                                void (*join)(void *par))
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(tx->txn, tx->st->dbi[DB_TL], &c);
    if (rc != 0) {
        return map_err(rc, "timeline");
    }
    /* 1. Every step of the app, in log order, into its part. */
    const size_t nb = (size_t)1 << TL_BUCKET_BITS;
    tl_bucket_t *bk = umg_calloc(nb, sizeof(*bk));
    int urc = bk != NULL ? UMG_OK : UMG_ENOMEM;
    uint8_t kb[TL_KEY] = {0};
    put_be(kb, app, 4);
    MDB_val k = {4, kb}, v;
    rc = urc == UMG_OK ? mdb_cursor_get(c, &k, &v, MDB_SET_RANGE) : MDB_NOTFOUND;
    for (; rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != TL_KEY || get_be(k.mv_data, 4) != app) {
            break;
        }
        if (v.mv_size != TL_VAL) {
            rc = MDB_CORRUPTED;
            break;
        }
        const uint8_t *vp = v.mv_data;
        uint64_t key;
        memcpy(&key, vp, 8);
        tl_bucket_t *b = &bk[key >> (64 - TL_BUCKET_BITS)];
        if (b->tail == NULL || b->tail->n == TL_CHUNK) {
            tl_chunk_t *ch = umg_malloc(sizeof(*ch));
            if (ch == NULL) {
                urc = UMG_ENOMEM;
                break;
            }
            ch->next = NULL;
            ch->n = 0;
            *(b->tail != NULL ? &b->tail->next : &b->head) = ch;
            b->tail = ch;
        }
        tl_ent_t *e = &b->tail->e[b->tail->n++];
        b->n++;
        memset(e, 0, sizeof(*e));
        e->key = key;
        memcpy(&e->s.ts_us, vp + 8, 8);
        memcpy(&e->s.name, vp + 16, 4);
        e->s.kind = ((const uint8_t *)k.mv_data)[12];
    }
    mdb_cursor_close(c);
    if (urc == UMG_OK && rc != 0 && rc != MDB_NOTFOUND) {
        urc = map_err(rc, "timeline");
    }
    /* 2. Group each part: the upper half on the other thread when there is one. */
    if (urc == UMG_OK) {
        _Atomic int stop = 0;
        tl_share_t mine = {bk, 0, nb, fn, ctx[0], &stop, 0}, other = {bk, nb / 2, nb, fn, ctx[1], &stop, 0};
        int helped = beside != NULL && beside(par, tl_share_run, &other) == 0;
        mine.hi = helped ? nb / 2 : nb;
        tl_share_run(&mine);
        if (helped) {
            join(par);
        }
        urc = mine.rc != 0 ? mine.rc : helped ? other.rc : 0;
    }
    for (size_t b = 0; bk != NULL && b < nb; b++) {
        for (tl_chunk_t *ch = bk[b].head, *next; ch != NULL; ch = next) {
            next = ch->next;
            umg_free(ch);
        }
    }
    umg_free(bk);
    return urc;
}

/* --------------------------------------------------------------- decisions */

static void put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

/* app (4) | ts + 2^63 (8) | offset (8): big-endian, so byte order is (app, time, offset) order. */
static void dec_key(uint8_t k[20], uint32_t app, int64_t ts, uint64_t offset)
{
    put_be(k, app, 4);
    put_be(k + 4, (uint64_t)ts ^ UINT64_C(0x8000000000000000), 8);
    put_be(k + 12, offset, 8);
}

#define DEC_HEAD offsetof(umg_store_decision_t, contrib)

/*
 * The installs a click won: app (4) | source (4) | site (4) | then the decision's key after its app (ts + 2^63,
 * offset), big-endian -> nothing. Every first install and reattribution won by a click is listed, whatever its
 * status (the reader judges), so the list is the store's alone to keep: written with the decision, removed
 * with it.
 */
#define CLICK_KEY 28

static int click_won(const umg_attr_decision_t *d)
{
    return (d->outcome == UMG_ATTR_OUT_INSTALL || d->outcome == UMG_ATTR_OUT_REATTRIBUTED) &&
           d->attr.touch_type == UMG_ATTR_CLICK;
}

static void click_key(uint8_t k[CLICK_KEY], const uint8_t dk[20], uint32_t source, uint32_t site)
{
    memcpy(k, dk, 4);
    put_be(k + 4, source, 4);
    put_be(k + 8, site, 4);
    memcpy(k + 12, dk + 4, 16);
}

/* Lists a decision (key dk) among its source/site's click installs when a click won it, or (del) takes it off. */
static int click_mark(MDB_txn *txn, MDB_dbi dbi, const uint8_t dk[20], const umg_attr_decision_t *d, int del)
{
    if (!click_won(d)) {
        return 0;
    }
    uint8_t kb[CLICK_KEY];
    click_key(kb, dk, d->attr.source, d->attr.site);
    MDB_val ck = {CLICK_KEY, kb}, none = {0, ""};
    int rc = del ? mdb_del(txn, dbi, &ck, NULL) : mdb_put(txn, dbi, &ck, &none, 0);
    return rc == MDB_NOTFOUND && del ? 0 : rc;
}

/* A store from before the click list gets it from its decisions, once (a mark in meta says it is done). */
static int click_fill(MDB_txn *txn, const MDB_dbi *dbi, const char *dir)
{
    MDB_val mk = {10, "click_list"}, mv;
    int rc = mdb_get(txn, dbi[DB_META], &mk, &mv);
    if (rc != MDB_NOTFOUND) {
        return rc;
    }
    MDB_stat ds;
    rc = mdb_stat(txn, dbi[DB_DEC], &ds);
    if (rc == 0 && ds.ms_entries > 0) {
        umg_log(UMG_LOG_INFO, "store", "%s: listing the installs clicks won among %zu decisions", dir, ds.ms_entries);
    }
    MDB_cursor *c = NULL;
    rc = rc ? rc : mdb_cursor_open(txn, dbi[DB_DEC], &c);
    MDB_val k, v;
    for (int op = MDB_FIRST; rc == 0 && (rc = mdb_cursor_get(c, &k, &v, (MDB_cursor_op)op)) == 0; op = MDB_NEXT) {
        umg_attr_decision_t d;
        if (k.mv_size != 20 || v.mv_size < DEC_HEAD) {
            rc = MDB_CORRUPTED;
            break;
        }
        memcpy(&d, v.mv_data, sizeof(d));
        rc = click_mark(txn, dbi[DB_CLICK], k.mv_data, &d, 0);
    }
    if (c != NULL) {
        mdb_cursor_close(c);
    }
    uint8_t one = 1;
    mv = (MDB_val){1, &one};
    return rc == MDB_NOTFOUND || rc == 0 ? mdb_put(txn, dbi[DB_META], &mk, &mv, 0) : rc;
}

int umg_store_decision_put(umg_store_txn_t *tx, const umg_store_decision_t *d)
{
    if (d->ncontrib > UMG_STORE_MAX_CONTRIB) {
        return UMG_EINVAL;
    }
    uint8_t kb[20];
    dec_key(kb, d->app, d->d.ts_us, d->offset);
    MDB_val k = {20, kb}, v = {DEC_HEAD + d->ncontrib * sizeof(umg_store_contrib_t), (void *)d};
    int rc = mdb_put(tx->txn, tx->st->dbi[DB_DEC], &k, &v, 0);
    rc = rc ? rc : click_mark(tx->txn, tx->st->dbi[DB_CLICK], kb, &d->d, 0);
    return map_err(rc, "decision put");
}

/* A decision's value into d: what is stored, the rest cleared. 0 or MDB_CORRUPTED. */
static int dec_read(const MDB_val *v, umg_store_decision_t *d)
{
    if (v->mv_size < DEC_HEAD || v->mv_size > sizeof(*d) || (v->mv_size - DEC_HEAD) % sizeof(umg_store_contrib_t)) {
        return MDB_CORRUPTED;
    }
    memcpy(d, v->mv_data, v->mv_size);
    memset((char *)d + v->mv_size, 0, sizeof(*d) - v->mv_size);
    return 0;
}

int umg_store_click_installs_scan(umg_store_txn_t *tx, uint32_t app, uint32_t source, uint32_t site, int64_t from_us,
                                  int64_t to_us, int (*fn)(void *ctx, const umg_store_decision_t *d), void *ctx)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(tx->txn, tx->st->dbi[DB_CLICK], &c);
    if (rc != 0) {
        return map_err(rc, "click installs");
    }
    uint8_t dk[20], kb[CLICK_KEY];
    dec_key(dk, app, from_us, 0);
    click_key(kb, dk, source, site);
    MDB_val k = {CLICK_KEY, kb}, v;
    int urc = 0;
    umg_store_decision_t d;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        const uint8_t *key = k.mv_data;
        if (k.mv_size != CLICK_KEY || memcmp(key, kb, 12) != 0 ||
            (int64_t)(get_be(key + 12, 8) ^ UINT64_C(0x8000000000000000)) >= to_us) {
            break;
        }
        memcpy(dk + 4, key + 12, 16);
        MDB_val dkv = {20, dk}, dv;
        rc = mdb_get(tx->txn, tx->st->dbi[DB_DEC], &dkv, &dv);
        if (rc == MDB_NOTFOUND) {
            continue;
        }
        rc = rc ? rc : dec_read(&dv, &d);
        if (rc != 0 || (urc = fn(ctx, &d)) != 0) {
            break;
        }
    }
    mdb_cursor_close(c);
    if (urc != 0) {
        return urc;
    }
    return rc == MDB_NOTFOUND || rc == 0 ? UMG_OK : map_err(rc, "click installs");
}

int umg_store_decisions_scan(umg_store_txn_t *tx, uint32_t app, int64_t from_us, int64_t to_us,
                             const umg_store_scan_pos_t *after, int (*fn)(void *ctx, const umg_store_decision_t *d),
                             void *ctx)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(tx->txn, tx->st->dbi[DB_DEC], &c);
    if (rc != 0) {
        return map_err(rc, "decisions");
    }
    uint8_t kb[20];
    if (after != NULL) {
        dec_key(kb, app, after->ts_us, after->offset);
    } else {
        dec_key(kb, app, from_us, 0);
    }
    MDB_val k = {20, kb}, v;
    rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    if (rc == 0 && after != NULL && k.mv_size == 20 && memcmp(k.mv_data, kb, 20) == 0) {
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    int urc = UMG_OK;
    umg_store_decision_t d;
    while (rc == 0) {
        if (k.mv_size != 20 || get_be(k.mv_data, 4) != app) {
            break;
        }
        int64_t ts = (int64_t)(get_be((const uint8_t *)k.mv_data + 4, 8) ^ UINT64_C(0x8000000000000000));
        if (ts >= to_us) {
            break;
        }
        if ((rc = dec_read(&v, &d)) != 0) {
            break;
        }
        if (ts >= from_us) {
            urc = fn(ctx, &d);
            if (urc != 0) {
                break;
            }
        }
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    if (urc != 0) {
        return urc;
    }
    return rc == MDB_NOTFOUND ? UMG_OK : map_err(rc, "decisions");
}

/* ----------------------------------------------------------------- privacy */

/* Unlinks touch id from key's list. */
static void tidx_unlink(tindex_t *x, uint64_t key, uint64_t id)
{
    size_t j = tidx_find(x, key, 0);
    if (j == SIZE_MAX) {
        return;
    }
    uint32_t prev = 0, node = x->slots[j].head;
    while (node != 0) {
        tnode_t *nd = &x->pool[node - 1];
        if (nd->id == id) {
            /* the node stays in the pool until the next rebuild */
            if (prev == 0) {
                x->slots[j].head = nd->next;
            } else {
                x->pool[prev - 1].next = nd->next;
            }
            x->live -= x->live > 0;
            return;
        }
        prev = node;
        node = nd->next;
    }
}

/* Deletes one touch and its index entries; UMG_ENOENT when it is not stored. */
static int touch_del(umg_store_txn_t *tx, uint64_t id)
{
    umg_attr_touch_t t;
    int rc = umg_store_touch_get(tx, id, &t);
    if (rc != UMG_OK) {
        return rc;
    }
    uint64_t keys[MAX_KEYS];
    int nk = touch_keys(&t, keys);
    for (int i = 0; i < nk; i++) {
        tidx_unlink(&tx->st->tidx, keys[i], id);
    }
    MDB_val k = {8, &id};
    return map_err(mdb_del(tx->txn, tx->st->dbi[DB_TOUCH], &k, NULL), "forget touch");
}

static int has_key(const uint64_t *keys, size_t n, uint64_t k)
{
    for (size_t i = 0; i < n; i++) {
        if (keys[i] == k) {
            return 1;
        }
    }
    return 0;
}

static int forget_event_days(umg_store_txn_t *tx, uint64_t device_key)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(tx->txn, tx->st->dbi[DB_EVDAY], &c);
    uint8_t kb[12] = {0};
    memcpy(kb, &device_key, 8);
    MDB_val k = {12, kb}, v;
    rc = rc ? rc : mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size == 12 && memcmp(k.mv_data, &device_key, 8) == 0) {
        rc = mdb_cursor_del(c, 0);
        k = (MDB_val){12, kb};
        rc = rc ? rc : mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    }
    if (c != NULL) {
        mdb_cursor_close(c);
    }
    return rc == 0 || rc == MDB_NOTFOUND ? UMG_OK : map_err(rc, "forget event days");
}

/* A device's timeline steps: a scan of the app's timeline (kept in log order, not by device). */
static int forget_timeline(umg_store_txn_t *tx, uint32_t app, uint64_t device_key)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(tx->txn, tx->st->dbi[DB_TL], &c);
    uint8_t kb[TL_KEY] = {0};
    put_be(kb, app, 4);
    MDB_val k = {4, kb}, v;
    rc = rc ? rc : mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size == TL_KEY && get_be(k.mv_data, 4) == app) {
        if (v.mv_size == TL_VAL && memcmp(v.mv_data, &device_key, 8) == 0) {
            memcpy(kb, k.mv_data, TL_KEY); /* then on from the key after it */
            rc = mdb_cursor_del(c, 0);
            k = (MDB_val){TL_KEY, kb};
            rc = rc ? rc : mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
        } else {
            rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
        }
    }
    if (c != NULL) {
        mdb_cursor_close(c);
    }
    return rc == 0 || rc == MDB_NOTFOUND ? UMG_OK : map_err(rc, "forget timeline");
}

int umg_store_forget(umg_store_txn_t *tx, const umg_store_forget_t *f, umg_store_forget_stats_t *st)
{
    umg_store_forget_stats_t s = {0};
    tx->found.app = 0;             /* aliases go: what a find learnt of them no longer holds */
    int rc = dev_cache_settle(tx); /* and so does what the device cache holds */
    if (rc != UMG_OK) {
        return rc;
    }
    dev_cache_undo(tx->st);
    uint64_t *canon = umg_calloc(f->nids ? f->nids : 1, sizeof(uint64_t));
    uint32_t *canon_app = umg_calloc(f->nids ? f->nids : 1, sizeof(uint32_t));
    size_t ncanon = 0;
    rc = canon && canon_app ? UMG_OK : UMG_ENOMEM;
    /* 1. Devices: the canonical key each identifier reaches; the alias goes, and the identifier's touches. */
    for (size_t i = 0; i < f->nids && rc == UMG_OK; i++) {
        uint32_t app = f->id_apps[i];
        uint64_t ak = app_key(app, 'A', f->id_hashes[i]), key;
        MDB_val k = {8, &ak}, v;
        int mrc = mdb_get(tx->txn, tx->st->dbi[DB_ALIAS], &k, &v);
        if (mrc == 0 && v.mv_size == 8) {
            memcpy(&key, v.mv_data, 8);
            if (!has_key(canon, ncanon, key)) {
                canon_app[ncanon] = app;
                canon[ncanon++] = key;
            }
            mrc = mdb_del(tx->txn, tx->st->dbi[DB_ALIAS], &k, NULL);
        }
        if (mrc != 0 && mrc != MDB_NOTFOUND) {
            rc = map_err(mrc, "forget alias");
            break;
        }
        /* Clicks and impressions keyed by this identifier: deleting one unlinks it, so always take the list's
         * head. */
        tindex_t *x = &tx->st->tidx;
        static const char tags[] = {'I', 'V'};
        for (size_t g = 0; g < sizeof(tags) && rc == UMG_OK; g++) {
            uint64_t tk = app_key(app, tags[g], f->id_hashes[i]);
            for (size_t j = tidx_find(x, tk, 0); j != SIZE_MAX && x->slots[j].head != 0 && rc == UMG_OK;) {
                uint32_t head = x->slots[j].head;
                rc = touch_del(tx, x->pool[head - 1].id);
                s.touches += rc == UMG_OK;
                if (rc == UMG_ENOENT || (rc == UMG_OK && x->slots[j].head == head)) {
                    x->slots[j].head = x->pool[head - 1].next; /* an entry without its touch */
                    rc = UMG_OK;
                }
            }
            tidx_remove(x, tk);
        }
    }
    /* 2. Their state, and the days they had each event. */
    for (size_t i = 0; i < ncanon && rc == UMG_OK; i++) {
        MDB_val k = {8, &canon[i]};
        int mrc = mdb_del(tx->txn, tx->st->dbi[DB_DEV], &k, NULL);
        s.devices += mrc == 0;
        if (mrc == 0 || mrc == MDB_NOTFOUND) {
            int drc = mdb_del(tx->txn, tx->st->dbi[DB_DIMS], &k, NULL);
            mrc = drc == MDB_NOTFOUND ? mrc : drc;
        }
        if (mrc != 0 && mrc != MDB_NOTFOUND) {
            rc = map_err(mrc, "forget device");
        }
        rc = rc == UMG_OK ? forget_event_days(tx, canon[i]) : rc;
        rc = rc == UMG_OK ? forget_timeline(tx, canon_app[i], canon[i]) : rc;
    }
    /* 3. Their decisions: one scan of the apps concerned. */
    for (size_t a = 0; a < ncanon && rc == UMG_OK; a++) {
        int first = 1;
        for (size_t b = 0; b < a; b++) {
            first &= canon_app[b] != canon_app[a];
        }
        if (!first) {
            continue;
        }
        MDB_cursor *c = NULL;
        int mrc = mdb_cursor_open(tx->txn, tx->st->dbi[DB_DEC], &c);
        uint8_t kb[20];
        dec_key(kb, canon_app[a], INT64_MIN, 0);
        MDB_val k = {20, kb}, v;
        mrc = mrc ? mrc : mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
        while (mrc == 0 && k.mv_size == 20 && get_be(k.mv_data, 4) == canon_app[a]) {
            uint64_t dk;
            if (v.mv_size < DEC_HEAD) {
                mrc = MDB_CORRUPTED;
                break;
            }
            memcpy(&dk, (const char *)v.mv_data + offsetof(umg_store_decision_t, device_key), 8);
            if (has_key(canon, ncanon, dk)) {
                umg_attr_decision_t d;
                memcpy(&d, v.mv_data, sizeof(d));
                if ((mrc = click_mark(tx->txn, tx->st->dbi[DB_CLICK], k.mv_data, &d, 1)) != 0) {
                    break;
                }
                /* After a delete, MDB_NEXT gives the entry that moved into its place (as in expire). */
                mrc = mdb_cursor_del(c, 0);
                s.decisions += mrc == 0;
                if (mrc != 0) {
                    break;
                }
            }
            mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
        }
        if (c != NULL) {
            mdb_cursor_close(c);
        }
        if (mrc != 0 && mrc != MDB_NOTFOUND) {
            rc = map_err(mrc, "forget decisions");
        }
    }
    /* 4. Touches listed by offset (those without identifiers too). */
    for (size_t i = 0; i < f->ntouches && rc == UMG_OK; i++) {
        rc = touch_del(tx, f->touch_ids[i]);
        s.touches += rc == UMG_OK;
        rc = rc == UMG_ENOENT ? UMG_OK : rc;
    }
    /* 5. The seen marks of the events. */
    for (size_t i = 0; i < f->nevents && rc == UMG_OK; i++) {
        uint64_t k = app_key(f->event_apps[i], 'E', umg_hash64(&f->event_ids[i], sizeof(umg_uuid_t), 0x4556));
        MDB_val key = {8, &k};
        int mrc = mdb_del(tx->txn, tx->st->dbi[DB_SEEN], &key, NULL);
        rc = mrc == 0 || mrc == MDB_NOTFOUND ? UMG_OK : map_err(mrc, "forget seen");
    }
    umg_free(canon);
    umg_free(canon_app);
    if (st != NULL) {
        *st = s;
    }
    return rc;
}

void umg_store_device_cache_stats(umg_store_t *st, umg_devcache_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    if (st->dc != NULL) {
        umg_devcache_stats(st->dc, out);
    }
}
