/*
 * runner.c - the privacy thread: completes forget requests and truncates old
 * IP addresses by rewriting the event log (see umg_privacy.h).
 */
#include "umg_meta.h"
#include "umg_privacy.h"

#include <pthread.h>
#include <sodium.h>

#define SEG_IP_TRUNCATED 1u
#define SEG_KEY_GEN(flags) ((flags) >> 8) /* the PII key generation the segment was written or rewritten under */

struct umg_privacy_runner_s {
    umg_privacy_runner_config_t cfg;
    char *data_dir;
    const umg_bus_ops_t *ops;
    umg_bus_t *bus;
    sqlite3 *db;
    uint8_t key[UMG_PRIVACY_KEY_BYTES];
    umg_event_decoder_t *dec;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    _Atomic int stopping;
    int64_t last_ip_pass_us;
};

/*
 * Segment summaries: `<base>.sum` beside a sealed segment (the bus's aux
 * path) lists, for the apps it covers, the first 8 bytes of the keyed hash of
 * every identifier of that app's records in the segment. A forget pass reads a
 * segment only when one of its requests is for an app the summary does not
 * cover, or for a hash it lists. Summaries are built while a forget pass reads
 * a segment (it decodes the records of the requests' apps then anyway), for
 * those apps; rewrites only ever remove identifiers, so what a summary lists
 * stays a superset. The identifiers of records being forgotten are left out.
 *
 * File: "UMGSUM1\n", u32 napps, u32 0, u64 nents, u32 apps[napps] ascending,
 * nents x (u32 app, u64 hash) ascending, u32 CRC32C of all before;
 * little-endian. A file that does not check out is treated as absent.
 */
#define SUM_MAGIC "UMGSUM1\n"
#define SUM_HEAD 24

typedef struct sum_ent_s {
    uint32_t app;
    uint64_t h;
} sum_ent_t;

typedef struct sum_s {
    uint32_t *apps;
    size_t napps, capapps;
    sum_ent_t *ents;
    size_t nents, cap;
} sum_t;

typedef struct pass_s {
    umg_privacy_runner_t *r;
    umg_privacy_t *pv;
    int forget;        /* a forget pass: the segments that may hold a device it forgets */
    int64_t ip_cutoff; /* records received before this get truncated IPs */
    int ip_due;        /* segments are looked at for IPs to truncate (and PII under an old key) this pass */
    uint64_t *per_app; /* tombstones by app, for the request records */
    uint32_t *apps;
    size_t napps;
    int apps_over;       /* more apps have requests than apps holds */
    int64_t max_request; /* requests up to this id were loaded into pv */
    /* segment summaries (a forget pass with every requesting app in apps) */
    int sums;
    sum_ent_t *fg; /* the requests' apps and hashes */
    size_t nfg, capfg;
    sum_t old;      /* the summary of the segment being read, as found */
    sum_t next;     /* the one being built for it */
    sum_ent_t *rec; /* the identifiers of the record being looked at */
    size_t nrec, caprec;
    int building;
    uint64_t unread0;
    uint64_t skipped; /* segments passed over by their summary */
} pass_t;

static int ent_cmp(const void *a, const void *b)
{
    const sum_ent_t *x = a, *y = b;
    if (x->app != y->app) {
        return x->app < y->app ? -1 : 1;
    }
    return x->h < y->h ? -1 : x->h > y->h;
}

static int app_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int ents_push(sum_ent_t **v, size_t *n, size_t *cap, uint32_t app, uint64_t h)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 1024;
        sum_ent_t *nv = umg_realloc(*v, nc * sizeof(*nv));
        if (nv == NULL) {
            return UMG_ENOMEM;
        }
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = (sum_ent_t){app, h};
    return UMG_OK;
}

static int apps_push(sum_t *s, uint32_t app)
{
    if (s->napps == s->capapps) {
        size_t nc = s->capapps ? s->capapps * 2 : 16;
        uint32_t *nv = umg_realloc(s->apps, nc * sizeof(*nv));
        if (nv == NULL) {
            return UMG_ENOMEM;
        }
        s->apps = nv;
        s->capapps = nc;
    }
    s->apps[s->napps++] = app;
    return UMG_OK;
}

static void sum_clear(sum_t *s)
{
    s->napps = s->nents = 0;
}

static void sum_free(sum_t *s)
{
    umg_free(s->apps);
    umg_free(s->ents);
    memset(s, 0, sizeof(*s));
}

/* Whether the ascending apps[0..n) hold app. */
static int has_app(const uint32_t *apps, size_t n, uint32_t app)
{
    return n > 0 && bsearch(&app, apps, n, sizeof(uint32_t), app_cmp) != NULL;
}

static int sum_covers(const sum_t *s, uint32_t app)
{
    return has_app(s->apps, s->napps, app);
}

static uint64_t hash_prefix(const uint8_t hash[UMG_PRIVACY_HASH_BYTES])
{
    uint64_t h;
    memcpy(&h, hash, 8);
    return h;
}

/* The summary at path into s; s is left empty (covering nothing) when the file is absent or does not check out. */
static void sum_load(const char *path, sum_t *s)
{
    sum_clear(s);
    umg_buf_t b = {0};
    if (umg_read_file(path, &b) != UMG_OK) {
        umg_buf_free(&b);
        return;
    }
    const uint8_t *d = (const uint8_t *)b.ptr;
    uint32_t napps = 0, crc;
    uint64_t nents = 0;
    int ok = b.len >= SUM_HEAD + 4 && memcmp(d, SUM_MAGIC, 8) == 0;
    if (ok) {
        memcpy(&napps, d + 8, 4);
        memcpy(&nents, d + 16, 8);
        ok = napps <= (b.len - SUM_HEAD) / 4 && nents <= (b.len - SUM_HEAD) / 12 &&
             b.len == SUM_HEAD + (size_t)napps * 4 + (size_t)nents * 12 + 4;
    }
    if (ok) {
        memcpy(&crc, d + b.len - 4, 4);
        ok = umg_crc32c(0, d, b.len - 4) == crc;
    }
    const uint8_t *q = d + SUM_HEAD;
    for (uint32_t i = 0; ok && i < napps; i++, q += 4) {
        uint32_t app;
        memcpy(&app, q, 4);
        ok = apps_push(s, app) == UMG_OK;
    }
    for (uint64_t i = 0; ok && i < nents; i++, q += 12) {
        uint32_t app;
        uint64_t h;
        memcpy(&app, q, 4);
        memcpy(&h, q + 4, 8);
        ok = ents_push(&s->ents, &s->nents, &s->cap, app, h) == UMG_OK;
    }
    if (!ok) {
        if (b.len > 0) {
            umg_log(UMG_LOG_WARN, "privacy", "%s does not check out: the segment is read whole", path);
        }
        sum_clear(s);
    }
    umg_buf_free(&b);
}

static int sum_store(const char *path, const sum_t *s)
{
    umg_buf_t b = {0};
    uint32_t napps = (uint32_t)s->napps, zero = 0;
    uint64_t nents = s->nents;
    int rc = umg_buf_append(&b, SUM_MAGIC, 8);
    rc = rc ? rc : umg_buf_append(&b, &napps, 4);
    rc = rc ? rc : umg_buf_append(&b, &zero, 4);
    rc = rc ? rc : umg_buf_append(&b, &nents, 8);
    for (size_t i = 0; rc == UMG_OK && i < s->napps; i++) {
        rc = umg_buf_append(&b, &s->apps[i], 4);
    }
    for (size_t i = 0; rc == UMG_OK && i < s->nents; i++) {
        rc = umg_buf_append(&b, &s->ents[i].app, 4);
        rc = rc ? rc : umg_buf_append(&b, &s->ents[i].h, 8);
    }
    uint32_t crc = rc == UMG_OK ? umg_crc32c(0, b.ptr, b.len) : 0;
    rc = rc ? rc : umg_buf_append(&b, &crc, 4);
    rc = rc ? rc : umg_write_file_atomic(path, b.ptr, b.len);
    umg_buf_free(&b);
    return rc;
}

/* Whether the segment summarised by s may hold a record some request forgets. */
static int sum_may_hold(const sum_t *s, const sum_ent_t *fg, size_t nfg)
{
    for (size_t i = 0; i < nfg; i++) {
        if (!sum_covers(s, fg[i].app) ||
            (s->nents > 0 && bsearch(&fg[i], s->ents, s->nents, sizeof(sum_ent_t), ent_cmp) != NULL)) {
            return 1;
        }
    }
    return 0;
}

/* next := what it gathered, plus old's apps and their identifiers for the apps this pass did not read. */
static int sum_compose(pass_t *p)
{
    sum_t *n = &p->next, *o = &p->old;
    int rc = UMG_OK;
    for (size_t i = 0; rc == UMG_OK && i < p->napps; i++) {
        rc = apps_push(n, p->apps[i]);
    }
    if (n->napps > 1) {
        qsort(n->apps, n->napps, sizeof(uint32_t), app_cmp); /* searched below: the pass's apps */
    }
    size_t read_apps = n->napps;
    for (size_t i = 0; rc == UMG_OK && i < o->napps; i++) {
        if (!has_app(n->apps, read_apps, o->apps[i])) {
            rc = apps_push(n, o->apps[i]);
        }
    }
    for (size_t i = 0; rc == UMG_OK && i < o->nents; i++) {
        if (!has_app(n->apps, read_apps, o->ents[i].app)) {
            rc = ents_push(&n->ents, &n->nents, &n->cap, o->ents[i].app, o->ents[i].h);
        }
    }
    if (rc != UMG_OK) {
        return rc;
    }
    if (n->napps > 1) {
        qsort(n->apps, n->napps, sizeof(uint32_t), app_cmp);
    }
    if (n->nents > 1) {
        qsort(n->ents, n->nents, sizeof(sum_ent_t), ent_cmp);
    }
    size_t w = 0;
    for (size_t i = 0; i < n->nents; i++) {
        if (w == 0 || ent_cmp(&n->ents[w - 1], &n->ents[i]) != 0) {
            n->ents[w++] = n->ents[i];
        }
    }
    n->nents = w;
    return UMG_OK;
}

static void on_id(void *ctx, uint32_t app, const uint8_t hash[UMG_PRIVACY_HASH_BYTES])
{
    pass_t *p = ctx;
    if (p->building && ents_push(&p->rec, &p->nrec, &p->caprec, app, hash_prefix(hash)) != UMG_OK) {
        p->building = 0; /* out of memory: no summary for this segment */
    }
}

/* Segments with records older than the IP cutoff not yet done, or under an older PII key. */
static int want_for_ips(pass_t *p, const umg_bus_seg_info_t *seg)
{
    if (!p->ip_due) {
        return 0;
    }
    const umg_pii_t *pii = p->r->cfg.pii;
    if (pii != NULL && umg_pii_generation(pii) > 1 && (int)SEG_KEY_GEN(seg->flags) != umg_pii_generation(pii)) {
        return seg->count > 0;
    }
    /* a segment whose oldest record is newer than the cutoff has no address to truncate yet */
    return p->ip_cutoff > 0 && !(seg->flags & SEG_IP_TRUNCATED) && seg->count > 0 && seg->min_recv_us < p->ip_cutoff;
}

static int want_segment(void *ctx, const umg_bus_seg_info_t *seg)
{
    pass_t *p = ctx;
    p->building = 0;
    if (!p->forget) {
        return want_for_ips(p, seg);
    }
    if (!p->sums || seg->aux_path == NULL) {
        return 1;
    }
    sum_load(seg->aux_path, &p->old);
    if (!want_for_ips(p, seg) && !sum_may_hold(&p->old, p->fg, p->nfg)) {
        p->skipped++;
        return 0;
    }
    sum_clear(&p->next);
    p->building = 1;
    p->unread0 = umg_privacy_unread(p->pv);
    return 1;
}

static uint32_t segment_flags(void *ctx, const umg_bus_seg_info_t *seg)
{
    pass_t *p = ctx;
    if (p->building && seg->aux_path != NULL) {
        /* Read to its end without error, every record of the pass's apps readable: the summary is complete for
         * them. Written while the segment is still held, so retention cannot have removed it meanwhile. */
        if (umg_privacy_unread(p->pv) == p->unread0 &&
            (sum_compose(p) != UMG_OK || sum_store(seg->aux_path, &p->next) != UMG_OK)) {
            umg_log(UMG_LOG_WARN, "privacy", "cannot write %s: the segment is read whole next time", seg->aux_path);
        }
        p->building = 0;
    }
    uint32_t f = p->ip_cutoff > 0 && seg->max_recv_us < p->ip_cutoff ? seg->flags | SEG_IP_TRUNCATED : seg->flags;
    if (p->r->cfg.pii != NULL) {
        f = (f & 0xff) | (uint32_t)umg_pii_generation(p->r->cfg.pii) << 8;
    }
    return f;
}

static int on_record(void *ctx, const umg_bus_msg_t *m, umg_buf_t *out)
{
    pass_t *p = ctx;
    umg_privacy_action_t act;
    if (atomic_load_explicit(&p->r->stopping, memory_order_relaxed)) {
        return UMG_ECLOSED; /* shutting down: the rewrite stops, the segment stays as it was */
    }
    p->nrec = 0;
    if (umg_privacy_apply(p->pv, p->r->dec, m, out, &act) != UMG_OK) {
        return UMG_BUS_KEEP; /* unreadable payloads are logged by umg_privacy_apply and kept */
    }
    for (size_t i = 0; p->building && act != UMG_PRIVACY_FORGET && i < p->nrec; i++) {
        if (ents_push(&p->next.ents, &p->next.nents, &p->next.cap, p->rec[i].app, p->rec[i].h) != UMG_OK) {
            p->building = 0;
        }
    }
    if (act == UMG_PRIVACY_FORGET) {
        if (p->r->cfg.forgotten != NULL) {
            p->r->cfg.forgotten(p->r->cfg.forget_ctx, m);
        }
        for (size_t i = 0; i < p->napps; i++) {
            if (p->apps[i] == m->app) {
                p->per_app[i]++;
            }
        }
        return UMG_BUS_TOMBSTONE;
    }
    return act == UMG_PRIVACY_REPLACE ? UMG_BUS_REPLACE : UMG_BUS_KEEP;
}

/* Loads pending requests' hashes into pv; returns how many requests are pending (< 0 on error). */
static int load_pending(umg_privacy_runner_t *r, umg_privacy_t *pv, pass_t *p)
{
    sqlite3_stmt *st = NULL;
    int n = 0;
    if (sqlite3_prepare_v2(r->db,
                           "SELECT f.app_id, f.id_hash, f.before_us, q.id FROM privacy_forgotten f JOIN"
                           " privacy_requests q ON q.id = f.request_id WHERE q.status = 'pending'",
                           -1, &st, NULL) != SQLITE_OK) {
        return -1;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (sqlite3_column_bytes(st, 1) != UMG_PRIVACY_HASH_BYTES) {
            continue;
        }
        uint32_t app = (uint32_t)sqlite3_column_int64(st, 0);
        p->max_request = UMG_MAX(p->max_request, sqlite3_column_int64(st, 3));
        if (umg_privacy_forget(pv, app, sqlite3_column_blob(st, 1), sqlite3_column_int64(st, 2)) != UMG_OK ||
            ents_push(&p->fg, &p->nfg, &p->capfg, app, hash_prefix(sqlite3_column_blob(st, 1))) != UMG_OK) {
            n = -1;
            break;
        }
        int known = 0;
        for (size_t i = 0; i < p->napps; i++) {
            known |= p->apps[i] == app;
        }
        if (!known && p->napps < 1024) {
            p->apps[p->napps] = app;
            p->per_app[p->napps++] = 0;
        } else if (!known) {
            p->apps_over = 1;
        }
        n++;
    }
    sqlite3_finalize(st);
    return n;
}

static void finish_requests(umg_privacy_runner_t *r, pass_t *p)
{
    sqlite3_stmt *st = NULL, *up = NULL;
    int64_t now = umg_now_us();
    if (sqlite3_exec(r->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        return;
    }
    if (sqlite3_prepare_v2(r->db,
                           "SELECT id, public_id, org_id, app_id FROM privacy_requests WHERE status = 'pending'"
                           " AND id <= ?",
                           -1, &st, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(r->db,
                           "UPDATE privacy_requests SET status = 'done', completed_us = ?, records_forgotten = ?"
                           " WHERE id = ?",
                           -1, &up, NULL) != SQLITE_OK) {
        goto fail;
    }
    sqlite3_bind_int64(st, 1, p->max_request);
    /* The identifiers' hashes are not needed once the log is clean: keep nothing of the device. */
    char del[160];
    snprintf(del, sizeof(del),
             "DELETE FROM privacy_forgotten WHERE request_id <= %lld AND request_id IN"
             " (SELECT id FROM privacy_requests WHERE status = 'pending')",
             (long long)p->max_request);
    if (sqlite3_exec(r->db, del, NULL, NULL, NULL) != SQLITE_OK) {
        goto fail;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
        uint32_t app = (uint32_t)sqlite3_column_int64(st, 3);
        uint64_t n = 0;
        for (size_t i = 0; i < p->napps; i++) {
            n += p->apps[i] == app ? p->per_app[i] : 0;
        }
        sqlite3_reset(up);
        sqlite3_bind_int64(up, 1, now);
        sqlite3_bind_int64(up, 2, (int64_t)n);
        sqlite3_bind_int64(up, 3, sqlite3_column_int64(st, 0));
        if (sqlite3_step(up) != SQLITE_DONE) {
            goto fail;
        }
        char detail[64];
        snprintf(detail, sizeof(detail), "{\"records_forgotten\":%llu}", (unsigned long long)n);
        umg_audit_t a = {.org_id = sqlite3_column_int64(st, 2),
                         .actor = "system",
                         .action = "privacy.forget.completed",
                         .target = (const char *)sqlite3_column_text(st, 1),
                         .outcome = "ok",
                         .detail = detail};
        if (umg_meta_audit(r->db, &a) != UMG_OK) {
            goto fail;
        }
    }
    sqlite3_finalize(st);
    sqlite3_finalize(up);
    if (sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK) {
        return;
    }
    st = up = NULL;
fail:
    sqlite3_finalize(st);
    sqlite3_finalize(up);
    sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
    umg_log(UMG_LOG_ERROR, "privacy", "cannot mark forget requests done: %s", sqlite3_errmsg(r->db));
}

static void run_pass(umg_privacy_runner_t *r)
{
    int64_t now = umg_now_us();
    umg_privacy_t *pv = NULL;
    static uint64_t per_app[1024];
    static uint32_t apps[1024];
    pass_t p = {.r = r, .per_app = per_app, .apps = apps};
    if (umg_privacy_new(r->key, &pv) != UMG_OK) {
        return;
    }
    int pending = load_pending(r, pv, &p);
    int ip_due =
        (r->cfg.ip_retention_ms > 0 || r->cfg.pii != NULL) && now - r->last_ip_pass_us >= r->cfg.ip_interval_ms * 1000;
    if (pending < 0) {
        umg_log(UMG_LOG_ERROR, "privacy", "cannot read forget requests: %s", sqlite3_errmsg(r->db));
    }
    if (pending > 0 || ip_due) {
        p.forget = pending > 0;
        p.ip_due = ip_due;
        p.pv = pv;
        umg_privacy_set_pii(pv, r->cfg.pii);
        if (r->cfg.ip_retention_ms > 0) {
            p.ip_cutoff = now - r->cfg.ip_retention_ms * 1000;
            umg_privacy_set_ip_cutoff(pv, p.ip_cutoff);
        }
        umg_bus_rewriter_t rw = {.ctx = &p,
                                 .roll_active = 1, /* the active segment holds the newest records: cover it too */
                                 .want = want_segment,
                                 .record = on_record,
                                 .flags = segment_flags};
        if (!ip_due && !p.apps_over) {
            /* A forget pass alone: segments without a record of the requests' apps cannot change. */
            rw.apps = p.apps;
            rw.napps = p.napps;
        }
        p.sums = p.forget && !p.apps_over;
        umg_privacy_set_id_cb(pv, on_id, &p);
        umg_bus_rewrite_stats_t st;
        umg_bus_stats_t bs;
        r->ops->stats(r->bus, &bs);
        int64_t t0 = umg_now_us();
        int rc = r->ops->rewrite(r->bus, &rw, &st);
        umg_log(rc == UMG_OK        ? UMG_LOG_INFO
                : rc == UMG_ECLOSED ? UMG_LOG_WARN
                                    : UMG_LOG_ERROR,
                "privacy",
                "log rewrite %s: %d forget identifiers, %llu records read, %llu forgotten, %llu IPs truncated, "
                "%llu segments replaced, %llu passed over by their summaries, %.3f s",
                rc == UMG_OK        ? "done"
                : rc == UMG_ECLOSED ? "stopped for shutdown"
                                    : "failed",
                pending > 0 ? pending : 0, (unsigned long long)st.records, (unsigned long long)st.tombstoned,
                (unsigned long long)st.replaced, (unsigned long long)st.segments, (unsigned long long)p.skipped,
                (double)(umg_now_us() - t0) / 1e6);
        if (rc == UMG_OK && pending > 0 && r->cfg.done != NULL) {
            rc = r->cfg.done(r->cfg.forget_ctx, bs.durable_offset);
            if (rc != UMG_OK) {
                umg_log(UMG_LOG_ERROR, "privacy", "the attribution store could not forget (%s); retrying next pass",
                        umg_strerror(rc));
            }
        }
        if (rc == UMG_OK && pending > 0) {
            finish_requests(r, &p);
        }
        if (rc == UMG_OK && ip_due) {
            r->last_ip_pass_us = now;
        }
    }
    umg_privacy_free(pv);
    umg_free(p.fg);
    umg_free(p.rec);
    sum_free(&p.old);
    sum_free(&p.next);
}

static void *runner_main(void *arg)
{
    umg_privacy_runner_t *r = arg;
    umg_thread_name("umg-privacy");
    pthread_mutex_lock(&r->mu);
    while (!r->stopping) {
        pthread_mutex_unlock(&r->mu);
        sqlite3_busy_timeout(r->db, 5000);
        run_pass(r);
        pthread_mutex_lock(&r->mu);
        struct timespec ts;
        umg_deadline_ms(&ts, r->cfg.check_interval_ms);
        while (!r->stopping && pthread_cond_timedwait(&r->cv, &r->mu, &ts) == 0) {
        }
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

int umg_privacy_runner_start(const char *data_dir, const umg_bus_ops_t *ops, umg_bus_t *bus,
                             const umg_privacy_runner_config_t *cfg, umg_privacy_runner_t **out)
{
    if (ops->rewrite == NULL) {
        umg_log(UMG_LOG_WARN, "privacy", "the %s bus cannot rewrite records: forget requests stay pending", ops->name);
        *out = NULL;
        return UMG_OK;
    }
    umg_privacy_runner_t *r = umg_calloc(1, sizeof(*r));
    if (r == NULL) {
        return UMG_ENOMEM;
    }
    r->cfg = *cfg;
    r->ops = ops;
    r->bus = bus;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    int rc = umg_meta_open(data_dir, &r->db);
    rc = rc ? rc : umg_meta_privacy_key(data_dir, r->key);
    rc = rc ? rc : umg_event_decoder_new(1 << 20, &r->dec);
    if (rc == UMG_OK && pthread_create(&r->thread, NULL, runner_main, r) != 0) {
        rc = UMG_ENOMEM;
    }
    if (rc != UMG_OK) {
        umg_event_decoder_free(r->dec);
        sqlite3_close(r->db);
        umg_free(r);
        return rc;
    }
    *out = r;
    return UMG_OK;
}

void umg_privacy_runner_stop(umg_privacy_runner_t *r)
{
    if (r == NULL) {
        return;
    }
    pthread_mutex_lock(&r->mu);
    r->stopping = 1;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    umg_event_decoder_free(r->dec);
    sqlite3_close(r->db);
    sodium_memzero(r->key, sizeof(r->key));
    umg_free(r);
}
