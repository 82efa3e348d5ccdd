/*
 * live.c - the live feed's broadcast ring (umg_live.h).
 *
 * Every item gets a sequence number from one atomic counter; item seq lives in
 * slot seq % slots. A slot's `state` is a seqlock word: 2*seq+1 while item seq
 * is being written, 2*seq+2 once it is complete (0: never written). A
 * publisher claims a slot with one compare-and-swap from an even state older
 * than its own item; when the slot is busy or already holds a newer item, the
 * item is dropped and counted instead of waiting. A reader copies the slot
 * and checks the state again afterwards: a changed state means the slot was
 * overwritten under it (the item is gone, the copy is thrown away). A forget
 * wipes an item in place and gives the slot back with the same state, so it
 * also counts the slot's `wipes` up before and after: a reader checks those
 * too (an odd count is a wipe under way).
 *
 * Who watches which app is a table of counters by app id modulo 1024, so a
 * publisher for an app nobody watches does nothing beyond one atomic load
 * (with more than 1024 apps, a watched app's neighbour in the table is
 * published too and filtered out by the readers).
 */
#include "umg_live.h"

#define WATCH_BUCKETS 1024
#define ORG_BUCKETS 256

typedef struct slot_s {
    _Atomic uint64_t state;
    _Atomic uint32_t wipes; /* odd while a forget wipes the slot */
    uint32_t app;
    uint32_t len;
    char kind[16];
    char data[]; /* slot_bytes */
} slot_t;

struct umg_live_s {
    _Atomic uint64_t head;
    size_t slots, slot_bytes, stride;
    char *mem;
    _Atomic int32_t watch[WATCH_BUCKETS];
    _Atomic int streams;                  /* open GET /v1/live streams */
    _Atomic int org_streams[ORG_BUCKETS]; /* ... by organization id modulo ORG_BUCKETS */
};

static umg_metric_t m_published = UMG_COUNTER("umg_live_published_total", "Items put on the live feed", NULL);
static umg_metric_t m_dropped =
    UMG_COUNTER("umg_live_dropped_total", "Live feed items dropped by a publisher (slot busy)", NULL);

static slot_t *slot_at(const umg_live_t *l, uint64_t seq)
{
    return (slot_t *)(void *)(l->mem + (size_t)(seq % l->slots) * l->stride);
}

int umg_live_new(size_t slots, size_t slot_bytes, umg_live_t **out)
{
    if (slots < 2 || slot_bytes < 64) {
        return UMG_EINVAL;
    }
    umg_live_t *l = umg_calloc(1, sizeof(*l));
    if (l == NULL) {
        return UMG_ENOMEM;
    }
    l->slots = slots;
    l->slot_bytes = slot_bytes;
    l->stride = (sizeof(slot_t) + slot_bytes + 63) & ~(size_t)63;
    l->mem = umg_calloc(slots, l->stride);
    if (l->mem == NULL) {
        umg_free(l);
        return UMG_ENOMEM;
    }
    umg_metric_register(&m_published);
    umg_metric_register(&m_dropped);
    *out = l;
    return UMG_OK;
}

void umg_live_free(umg_live_t *l)
{
    if (l == NULL) {
        return;
    }
    umg_free(l->mem);
    umg_free(l);
}

int umg_live_wanted(const umg_live_t *l, uint32_t app)
{
    return l != NULL && atomic_load_explicit(&l->watch[app % WATCH_BUCKETS], memory_order_relaxed) > 0;
}

uint64_t umg_live_subscribe(umg_live_t *l, uint32_t app)
{
    atomic_fetch_add_explicit(&l->watch[app % WATCH_BUCKETS], 1, memory_order_relaxed);
    return atomic_load_explicit(&l->head, memory_order_acquire);
}

void umg_live_unsubscribe(umg_live_t *l, uint32_t app)
{
    atomic_fetch_sub_explicit(&l->watch[app % WATCH_BUCKETS], 1, memory_order_relaxed);
}

void umg_live_set_head(umg_live_t *l, uint64_t seq)
{
    atomic_store_explicit(&l->head, seq, memory_order_release);
}

int umg_live_stream_take(umg_live_t *l, uint32_t org, int max, int max_org)
{
    if (atomic_fetch_add(&l->streams, 1) >= max) {
        atomic_fetch_sub(&l->streams, 1);
        return UMG_EFULL;
    }
    if (atomic_fetch_add(&l->org_streams[org % ORG_BUCKETS], 1) >= max_org) {
        atomic_fetch_sub(&l->org_streams[org % ORG_BUCKETS], 1);
        atomic_fetch_sub(&l->streams, 1);
        return UMG_EBUSY;
    }
    return UMG_OK;
}

void umg_live_stream_give(umg_live_t *l, uint32_t org)
{
    atomic_fetch_sub(&l->org_streams[org % ORG_BUCKETS], 1);
    atomic_fetch_sub(&l->streams, 1);
}

uint64_t umg_live_head(const umg_live_t *l)
{
    return atomic_load_explicit(&((umg_live_t *)l)->head, memory_order_acquire);
}

size_t umg_live_slots(const umg_live_t *l)
{
    return l->slots;
}

/* Writes parts (concatenated) as item for app; the caller checked wanted. */
static void publish_parts(umg_live_t *l, uint32_t app, const char *kind, const umg_slice_t *parts, size_t nparts)
{
    size_t total = 0;
    for (size_t i = 0; i < nparts; i++) {
        total += parts[i].len;
    }
    uint64_t seq = atomic_fetch_add_explicit(&l->head, 1, memory_order_acq_rel);
    slot_t *s = slot_at(l, seq);
    uint64_t st = atomic_load_explicit(&s->state, memory_order_acquire);
    if ((st & 1) != 0 || st >= 2 * seq + 1 ||
        !atomic_compare_exchange_strong_explicit(&s->state, &st, 2 * seq + 1, memory_order_acq_rel,
                                                 memory_order_relaxed)) {
        umg_metric_add(&m_dropped, 1);
        return;
    }
    atomic_thread_fence(memory_order_release);
    s->app = app;
    snprintf(s->kind, sizeof(s->kind), "%s", kind);
    if (total <= l->slot_bytes) {
        size_t o = 0;
        for (size_t i = 0; i < nparts; i++) {
            memcpy(s->data + o, parts[i].ptr, parts[i].len);
            o += parts[i].len;
        }
        s->len = (uint32_t)o;
    } else {
        int n = snprintf(s->data, l->slot_bytes, "{\"truncated\":true,\"bytes\":%zu}", total);
        s->len = (uint32_t)n;
    }
    atomic_store_explicit(&s->state, 2 * seq + 2, memory_order_release);
    umg_metric_add(&m_published, 1);
}

void umg_live_publish(umg_live_t *l, uint32_t app, const char *kind, const char *json, size_t len)
{
    if (!umg_live_wanted(l, app)) {
        return;
    }
    while (len > 0 && (json[len - 1] == '\n' || json[len - 1] == ' ')) {
        len--;
    }
    umg_slice_t part = umg_slice(json, len);
    publish_parts(l, app, kind, &part, 1);
}

void umg_live_publish_event(umg_live_t *l, uint32_t app, const char *status, const char *event_json, size_t len)
{
    if (!umg_live_wanted(l, app)) {
        return;
    }
    while (len > 0 && (event_json[len - 1] == '\n' || event_json[len - 1] == ' ')) {
        len--;
    }
    char head[64];
    int hn = snprintf(head, sizeof(head), "{\"status\":\"%s\",\"event\":", status);
    umg_slice_t parts[3] = {umg_slice(head, (size_t)hn), umg_slice(event_json, len), umg_slice("}", 1)};
    publish_parts(l, app, "event", parts, 3);
}

void umg_live_publish_rejected(umg_live_t *l, uint32_t app, size_t accepted, const char *errors_json, size_t len)
{
    if (!umg_live_wanted(l, app)) {
        return;
    }
    /* A long list keeps its first errors whole (cut after an element's closing brace, found outside strings:
     * a field or message may hold braces) and says that more were left out, instead of losing the item to the
     * slot size. */
    const char *tail = "]}";
    if (len + 96 > l->slot_bytes) {
        size_t cut = 0;
        int depth = 0, in_str = 0, esc = 0;
        for (size_t i = 0; i < len && i + 96 < l->slot_bytes; i++) {
            char c = errors_json[i];
            if (in_str) {
                if (esc) {
                    esc = 0;
                } else if (c == '\\') {
                    esc = 1;
                } else if (c == '"') {
                    in_str = 0;
                }
                continue;
            }
            in_str = c == '"';
            depth += (c == '{' || c == '[') - (c == '}' || c == ']');
            if (c == '}' && depth == 0) {
                cut = i + 1;
            }
        }
        len = cut;
        tail = "],\"more\":true}";
    }
    char head[64];
    int hn = snprintf(head, sizeof(head), "{\"accepted\":%zu,\"rejected\":[", accepted);
    umg_slice_t parts[3] = {umg_slice(head, (size_t)hn), umg_slice(errors_json, len), umg_slice(tail, strlen(tail))};
    publish_parts(l, app, "rejected", parts, 3);
}

void umg_live_forget_app(umg_live_t *l, uint32_t app)
{
    for (size_t k = 0; l != NULL && k < l->slots; k++) {
        slot_t *s = (slot_t *)(void *)(l->mem + k * l->stride);
        uint64_t st = atomic_load_explicit(&s->state, memory_order_acquire);
        /* A complete item of app: hold the slot as if it were being written (readers copying it throw the copy
         * away), wipe it, and give it back as an item of no app, which every stream passes over. */
        if (st == 0 || (st & 1) != 0 || s->app != app ||
            !atomic_compare_exchange_strong_explicit(&s->state, &st, st - 1, memory_order_acq_rel,
                                                     memory_order_relaxed)) {
            continue;
        }
        atomic_fetch_add_explicit(&s->wipes, 1, memory_order_acq_rel);
        atomic_thread_fence(memory_order_release);
        s->app = 0;
        s->len = 0;
        memset(s->data, 0, l->slot_bytes);
        atomic_fetch_add_explicit(&s->wipes, 1, memory_order_release);
        atomic_store_explicit(&s->state, st, memory_order_release);
    }
}

int umg_live_read(const umg_live_t *l, uint64_t seq, uint32_t *app, char kind[16], umg_buf_t *out)
{
    const slot_t *s = slot_at(l, seq);
    uint64_t st = atomic_load_explicit(&((slot_t *)s)->state, memory_order_acquire);
    if (st == 2 * seq + 1 || st < 2 * seq + 1) {
        return UMG_EAGAIN;
    }
    if (st != 2 * seq + 2) {
        return UMG_ENOENT;
    }
    uint32_t wipes = atomic_load_explicit(&((slot_t *)s)->wipes, memory_order_acquire);
    size_t len = s->len;
    if (len > l->slot_bytes) {
        return UMG_ENOENT;
    }
    size_t before = out->len;
    uint32_t a = s->app;
    char k[16];
    memcpy(k, s->kind, sizeof(k));
    int rc = umg_buf_append(out, s->data, len);
    if (rc != UMG_OK) {
        return rc;
    }
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&((slot_t *)s)->state, memory_order_relaxed) != st || (wipes & 1) != 0 ||
        atomic_load_explicit(&((slot_t *)s)->wipes, memory_order_relaxed) != wipes) {
        out->len = before; /* overwritten or wiped while we copied */
        return UMG_ENOENT;
    }
    k[15] = '\0';
    memcpy(kind, k, 16);
    *app = a;
    return UMG_OK;
}
