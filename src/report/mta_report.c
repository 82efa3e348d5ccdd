/*
 * mta_report.c - owns the multi-touch report builder: channel names interned
 * into dense ids, journeys kept in flat arrays, and the JSON writer with its
 * exact fixed-point rounding of credits and shares.
 *
 * Memory: names are copied into an arena and found through an open-addressing
 * table of ids; the touches' channel ids (and their times, for time_decay
 * only) go to two growable arrays, and each journey is a umg_mta_path_t whose
 * pointers are set only when the report is written, because the arrays move
 * as they grow. Adding a journey allocates only when an array doubles or a
 * name is new, so a million journeys cost a few dozen reallocations.
 */
#include <math.h>
#include <stdlib.h>

#include "umg_report.h"

#define NAME_SEED UINT64_C(0x6d74615f7265706f)
#define MAX_DECIMALS 6
#define SHARE_UNITS 1000000u
#define EXACT_LIMIT 9007199254740992.0 /* 2^53: integers up to here are exact in a double */

static const double pow10_tab[MAX_DECIMALS + 1] = {1, 10, 100, 1000, 10000, 100000, 1000000};

/* ------------------------------------------------------------ parameters */

static const char *const by_names[] = {"source", "campaign"};
static const char *const value_names[] = {"installs", "revenue"};

int umg_mta_report_parse_by(umg_slice_t s, umg_mta_report_by_t *out)
{
    for (size_t i = 0; i < UMG_ARRAY_SIZE(by_names); i++) {
        if (umg_slice_eq(s, by_names[i])) {
            *out = (umg_mta_report_by_t)i;
            return UMG_OK;
        }
    }
    return UMG_EINVAL;
}

int umg_mta_report_parse_value(umg_slice_t s, umg_mta_report_value_t *out)
{
    for (size_t i = 0; i < UMG_ARRAY_SIZE(value_names); i++) {
        if (umg_slice_eq(s, value_names[i])) {
            *out = (umg_mta_report_value_t)i;
            return UMG_OK;
        }
    }
    return UMG_EINVAL;
}

const char *umg_mta_report_by_name(umg_mta_report_by_t by)
{
    return (unsigned)by < UMG_ARRAY_SIZE(by_names) ? by_names[by] : "unknown";
}

const char *umg_mta_report_value_name(umg_mta_report_value_t v)
{
    return (unsigned)v < UMG_ARRAY_SIZE(value_names) ? value_names[v] : "unknown";
}

/* ---------------------------------------------------------------- builder */

typedef struct name_s {
    const char *ptr; /* in the arena */
    uint64_t hash;
    uint32_t len;
} name_t;

struct umg_mta_report_s {
    umg_mta_model_t model;
    umg_mta_opts_t opts;
    int want_ts; /* time_decay: keep the touches' times */
    umg_arena_t arena;
    name_t *names; /* by channel id */
    size_t nch, names_cap;
    uint32_t *slot; /* channel id + 1; 0 = empty */
    size_t slot_cap;
    uint32_t *ch; /* all journeys' touches, journey after journey */
    int64_t *ts;
    size_t ntouch, ch_cap, ts_cap;
    umg_mta_path_t *paths; /* ch and ts are set by umg_mta_report_json */
    size_t npaths, paths_cap;
    uint64_t converting, with_touches, organic, truncated;
    double organic_value;
};

/* Grows an array of `size`-byte elements to hold `need` (doubling); the new array, or NULL (p untouched). */
static void *grow(void *p, size_t *cap, size_t need, size_t size)
{
    size_t ncap = *cap ? *cap : 256;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2 / size) {
            return NULL;
        }
        ncap *= 2;
    }
    void *np = umg_realloc(p, ncap * size);
    if (np != NULL) {
        *cap = ncap;
    }
    return np;
}

int umg_mta_report_new(umg_mta_model_t model, const umg_mta_opts_t *opts, umg_mta_report_t **out)
{
    umg_mta_opts_t o;
    if (opts != NULL) {
        o = *opts;
    } else {
        umg_mta_opts_default(&o);
    }
    if (out == NULL || (unsigned)model >= UMG_MTA_MODELS || o.half_life_us <= 0 ||
        (unsigned)o.shapley_game > UMG_MTA_SHAPLEY_SUBSET) {
        return UMG_EINVAL;
    }
    umg_mta_report_t *r = umg_calloc(1, sizeof(*r));
    if (r == NULL) {
        return UMG_ENOMEM;
    }
    r->model = model;
    r->opts = o;
    r->want_ts = model == UMG_MTA_TIME_DECAY;
    umg_arena_init(&r->arena, 16384);
    r->slot_cap = 64;
    r->slot = umg_calloc(r->slot_cap, sizeof(uint32_t));
    if (r->slot == NULL) {
        umg_free(r);
        return UMG_ENOMEM;
    }
    *out = r;
    return UMG_OK;
}

void umg_mta_report_free(umg_mta_report_t *r)
{
    if (r == NULL) {
        return;
    }
    umg_arena_free(&r->arena);
    umg_free(r->names);
    umg_free(r->slot);
    umg_free(r->ch);
    umg_free(r->ts);
    umg_free(r->paths);
    umg_free(r);
}

size_t umg_mta_report_journeys(const umg_mta_report_t *r)
{
    return r != NULL ? r->npaths : 0;
}

static int name_eq(const name_t *nm, uint64_t h, umg_slice_t s)
{
    return nm->hash == h && nm->len == s.len && (s.len == 0 || memcmp(nm->ptr, s.ptr, s.len) == 0);
}

/* Doubles the table of ids and places every channel again. */
static int slots_grow(umg_mta_report_t *r)
{
    size_t cap = r->slot_cap * 2, mask = cap - 1;
    uint32_t *slot = umg_calloc(cap, sizeof(uint32_t));
    if (slot == NULL) {
        return UMG_ENOMEM;
    }
    for (size_t id = 0; id < r->nch; id++) {
        size_t i = (size_t)r->names[id].hash & mask;
        while (slot[i] != 0) {
            i = (i + 1) & mask;
        }
        slot[i] = (uint32_t)id + 1;
    }
    umg_free(r->slot);
    r->slot = slot;
    r->slot_cap = cap;
    return UMG_OK;
}

/* The dense id of a name, made (and the name copied) the first time it is seen. */
static int intern(umg_mta_report_t *r, umg_slice_t s, uint32_t *id)
{
    uint64_t h = s.len ? umg_hash64(s.ptr, s.len, NAME_SEED) : NAME_SEED;
    size_t mask = r->slot_cap - 1, i = (size_t)h & mask;
    for (; r->slot[i] != 0; i = (i + 1) & mask) {
        if (name_eq(&r->names[r->slot[i] - 1], h, s)) {
            *id = r->slot[i] - 1;
            return UMG_OK;
        }
    }
    if (r->nch >= UINT32_MAX - 1) {
        return UMG_EFULL;
    }
    if (r->nch == r->names_cap) {
        name_t *nn = grow(r->names, &r->names_cap, r->nch + 1, sizeof(name_t));
        if (nn == NULL) {
            return UMG_ENOMEM;
        }
        r->names = nn;
    }
    char *copy = umg_arena_alloc(&r->arena, s.len);
    if (copy == NULL) {
        return UMG_ENOMEM;
    }
    if ((r->nch + 1) * 2 > r->slot_cap) {
        if (slots_grow(r) != UMG_OK) {
            return UMG_ENOMEM;
        }
        mask = r->slot_cap - 1;
        for (i = (size_t)h & mask; r->slot[i] != 0; i = (i + 1) & mask) {
        }
    }
    if (s.len > 0) {
        memcpy(copy, s.ptr, s.len);
    }
    r->names[r->nch] = (name_t){copy, h, (uint32_t)s.len};
    r->slot[i] = (uint32_t)r->nch + 1;
    *id = (uint32_t)r->nch++;
    return UMG_OK;
}

/* Room for one more journey of k touches, so that recording it cannot fail half-way. */
static int reserve(umg_mta_report_t *r, uint32_t k)
{
    if (r->npaths == r->paths_cap) {
        umg_mta_path_t *np = grow(r->paths, &r->paths_cap, r->npaths + 1, sizeof(umg_mta_path_t));
        if (np == NULL) {
            return UMG_ENOMEM;
        }
        r->paths = np;
    }
    if (r->ntouch + k > r->ch_cap) {
        uint32_t *nc = grow(r->ch, &r->ch_cap, r->ntouch + k, sizeof(uint32_t));
        if (nc == NULL) {
            return UMG_ENOMEM;
        }
        r->ch = nc;
    }
    if (r->want_ts && r->ntouch + k > r->ts_cap) {
        int64_t *nt = grow(r->ts, &r->ts_cap, r->ntouch + k, sizeof(int64_t));
        if (nt == NULL) {
            return UMG_ENOMEM;
        }
        r->ts = nt;
    }
    return UMG_OK;
}

int umg_mta_report_add(umg_mta_report_t *r, const umg_slice_t *channels, const int64_t *ts_us, uint32_t n,
                       int converted, double value)
{
    if (r == NULL || (n > 0 && channels == NULL) || (n > 0 && r->want_ts && ts_us == NULL)) {
        return UMG_EINVAL;
    }
    if (!converted) {
        value = 0;
    } else if (!isfinite(value) || value < 0 || value > UMG_MTA_REPORT_MAX_VALUE) {
        return UMG_EINVAL;
    }
    /* The touches nearest the conversion are the ones every model weighs most. */
    uint32_t skip = n > UMG_MTA_REPORT_MAX_TOUCHES ? n - UMG_MTA_REPORT_MAX_TOUCHES : 0, k = n - skip;
    for (uint32_t j = skip; j < n; j++) {
        if (channels[j].len > UMG_MTA_REPORT_MAX_NAME || (channels[j].len > 0 && channels[j].ptr == NULL)) {
            return UMG_EINVAL;
        }
    }
    int rc = reserve(r, k);
    /* A name interned before a later one fails stays, without a touch: the report lists only touched channels. */
    for (uint32_t j = 0; j < k && rc == UMG_OK; j++) {
        rc = intern(r, channels[skip + j], &r->ch[r->ntouch + j]);
        if (r->want_ts) {
            r->ts[r->ntouch + j] = ts_us[skip + j];
        }
    }
    if (rc != UMG_OK) {
        return rc;
    }
    r->paths[r->npaths++] = (umg_mta_path_t){NULL, NULL, k, converted ? 1 : 0, value};
    r->ntouch += k;
    r->truncated += skip > 0;
    if (converted) {
        r->converting++;
        if (k > 0) {
            r->with_touches++;
        } else {
            r->organic++;
            r->organic_value += value;
        }
    }
    return UMG_OK;
}

/* ------------------------------------------------------------------ output */

typedef struct chstat_s {
    uint64_t touches, journeys, converting, first, last;
    size_t stamp; /* 1 + the last journey counted in `journeys` */
} chstat_t;

typedef struct row_s {
    const name_t *name;
    const chstat_t *st;
    double credit;
    uint64_t units, share;
} row_t;

/* Points the journeys at their touches and counts, per channel, what the JSON lists. */
static void gather_stats(umg_mta_report_t *r, chstat_t *st)
{
    size_t off = 0;
    for (size_t i = 0; i < r->npaths; i++) {
        umg_mta_path_t *p = &r->paths[i];
        p->ch = p->n ? r->ch + off : NULL;
        p->ts_us = p->n && r->want_ts ? r->ts + off : NULL;
        off += p->n;
        for (uint32_t j = 0; j < p->n; j++) {
            chstat_t *c = &st[p->ch[j]];
            c->touches++;
            if (c->stamp != i + 1) {
                c->stamp = i + 1;
                c->journeys++;
                c->converting += p->converted != 0;
            }
        }
        if (p->converted && p->n > 0) {
            st[p->ch[0]].first++;
            st[p->ch[p->n - 1]].last++;
        }
    }
}

static int name_cmp(const name_t *a, const name_t *b)
{
    size_t n = UMG_MIN(a->len, b->len);
    int c = n ? memcmp(a->ptr, b->ptr, n) : 0;
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

static int row_cmp_credit(const void *pa, const void *pb)
{
    const row_t *a = pa, *b = pb;
    if (a->credit != b->credit) {
        return a->credit > b->credit ? -1 : 1;
    }
    return name_cmp(a->name, b->name);
}

static int row_cmp_units(const void *pa, const void *pb)
{
    const row_t *a = pa, *b = pb;
    if (a->units != b->units) {
        return a->units > b->units ? -1 : 1;
    }
    return name_cmp(a->name, b->name);
}

typedef struct rem_s {
    double rem;
    size_t idx;
} rem_t;

static int rem_cmp_desc(const void *pa, const void *pb)
{
    const rem_t *a = pa, *b = pb;
    if (a->rem != b->rem) {
        return a->rem > b->rem ? -1 : 1;
    }
    return (a->idx > b->idx) - (a->idx < b->idx);
}

/*
 * Rounds exact[0..n) (each >= 0) to integers out[0..n) adding up to target,
 * by the largest-remainder method: each is rounded down, then the missing
 * units go one each to the largest remainders (ties to the lower index). When
 * float error makes the floors add up to more than target, the excess comes
 * back from the smallest remainders. Only positive entries receive units;
 * when there is none the sum stays 0. Returns the sum written. rem: n slots.
 */
static uint64_t apportion(const double *exact, size_t n, uint64_t target, uint64_t *out, rem_t *rem)
{
    uint64_t sum = 0;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        double f = floor(exact[i]);
        out[i] = (uint64_t)f;
        sum += out[i];
        if (exact[i] > 0) {
            rem[m++] = (rem_t){exact[i] - f, i};
        }
    }
    if (m == 0) {
        return sum;
    }
    qsort(rem, m, sizeof(rem_t), rem_cmp_desc);
    if (sum < target) {
        uint64_t missing = target - sum;
        for (size_t q = 0; q < m; q++) {
            out[rem[q].idx] += missing / m + (q < missing % m);
        }
    }
    while (sum > target) {
        for (size_t q = m; q-- > 0 && sum > target;) {
            if (out[rem[q].idx] > 0) {
                out[rem[q].idx]--;
                sum--;
            }
        }
    }
    return target;
}

/* The rows of the touched channels, with credits and shares rounded to units. */
static int make_rows(const umg_mta_report_t *r, const chstat_t *st, const double *credit, double scale, double total,
                     row_t *rows, size_t *nrows, uint64_t *total_units)
{
    size_t n = 0;
    for (size_t c = 0; c < r->nch; c++) {
        if (st[c].touches > 0) {
            rows[n++] = (row_t){&r->names[c], &st[c], credit[c], 0, 0};
        }
    }
    qsort(rows, n, sizeof(row_t), row_cmp_credit);
    double *exact = umg_malloc((n ? n : 1) * sizeof(double));
    uint64_t *units = umg_malloc((n ? n : 1) * sizeof(uint64_t));
    rem_t *rem = umg_malloc((n ? n : 1) * sizeof(rem_t));
    if (exact == NULL || units == NULL || rem == NULL) {
        umg_free(exact);
        umg_free(units);
        umg_free(rem);
        return UMG_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        /* Credits are never negative; the guard keeps a stray -0.0 or NaN from wrapping around. */
        exact[i] = rows[i].credit > 0 ? rows[i].credit * scale : 0;
    }
    uint64_t tu = apportion(exact, n, (uint64_t)llround(total * scale), units, rem);
    for (size_t i = 0; i < n; i++) {
        rows[i].units = units[i];
        exact[i] = tu ? (double)units[i] / (double)tu * SHARE_UNITS : 0;
    }
    apportion(exact, n, tu ? SHARE_UNITS : 0, units, rem);
    for (size_t i = 0; i < n; i++) {
        rows[i].share = units[i];
    }
    qsort(rows, n, sizeof(row_t), row_cmp_units);
    umg_free(exact);
    umg_free(units);
    umg_free(rem);
    *nrows = n;
    *total_units = tu;
    return UMG_OK;
}

/* Writes units as a fixed-point number with d decimals, exactly. */
static int put_fixed(umg_buf_t *b, uint64_t units, int d)
{
    uint64_t p = (uint64_t)pow10_tab[d];
    int rc = umg_buf_u64(b, units / p);
    if (rc == UMG_OK && d > 0) {
        char frac[MAX_DECIMALS + 1];
        uint64_t f = units % p;
        frac[0] = '.';
        for (int i = d; i > 0; i--) {
            frac[i] = (char)('0' + f % 10);
            f /= 10;
        }
        rc = umg_buf_append(b, frac, (size_t)d + 1);
    }
    return rc;
}

/* A name as a JSON string, ill-formed UTF-8 replaced by U+FFFD. */
static int put_name(umg_buf_t *b, const name_t *nm, umg_buf_t *tmp)
{
    const unsigned char *s = (const unsigned char *)nm->ptr;
    size_t i = 0, bad = 0;
    while (i < nm->len) {
        size_t k = umg_utf8_seq(s + i, nm->len - i, &bad);
        if (k == 0) {
            break;
        }
        i += k;
    }
    if (i == nm->len) {
        return umg_buf_json_str(b, nm->ptr, nm->len);
    }
    umg_buf_reset(tmp);
    int rc = UMG_OK;
    for (i = 0; i < nm->len && rc == UMG_OK;) {
        size_t k = umg_utf8_seq(s + i, nm->len - i, &bad);
        rc = k ? umg_buf_append(tmp, s + i, k) : umg_buf_append(tmp, "\xef\xbf\xbd", 3);
        i += k ? k : bad;
    }
    return rc == UMG_OK ? umg_buf_json_str(b, tmp->ptr, tmp->len) : rc;
}

#define PUT(expr)                                                                                                      \
    do {                                                                                                               \
        if ((rc = (expr)) != UMG_OK) {                                                                                 \
            goto done;                                                                                                 \
        }                                                                                                              \
    } while (0)
#define PUT_LIT(b, lit) PUT(umg_buf_append((b), (lit), sizeof(lit) - 1))

static int put_head(umg_buf_t *b, const umg_mta_report_t *r, int d, double scale, uint64_t total_units)
{
    int rc;
    const char *model = umg_mta_model_name(r->model);
    PUT_LIT(b, "{\"model\":\"");
    PUT(umg_buf_append(b, model, strlen(model)));
    PUT_LIT(b, "\",\"journeys\":");
    PUT(umg_buf_u64(b, r->npaths));
    PUT_LIT(b, ",\"converting_journeys\":");
    PUT(umg_buf_u64(b, r->converting));
    PUT_LIT(b, ",\"non_converting_journeys\":");
    PUT(umg_buf_u64(b, r->npaths - r->converting));
    PUT_LIT(b, ",\"conversions_with_touches\":");
    PUT(umg_buf_u64(b, r->with_touches));
    PUT_LIT(b, ",\"truncated_journeys\":");
    PUT(umg_buf_u64(b, r->truncated));
    PUT_LIT(b, ",\"touches\":");
    PUT(umg_buf_u64(b, r->ntouch));
    PUT_LIT(b, ",\"organic\":{\"conversions\":");
    PUT(umg_buf_u64(b, r->organic));
    PUT_LIT(b, ",\"value\":");
    PUT(put_fixed(b, (uint64_t)llround(r->organic_value * scale), d));
    PUT_LIT(b, "},\"total\":");
    PUT(put_fixed(b, total_units, d));
done:
    return rc;
}

static int put_channels(umg_buf_t *b, const row_t *rows, size_t n, int d)
{
    umg_buf_t tmp = {0};
    int rc = UMG_OK;
    PUT_LIT(b, ",\"channels\":[");
    for (size_t i = 0; i < n; i++) {
        const row_t *w = &rows[i];
        PUT_LIT(b, "{\"name\":");
        PUT(put_name(b, w->name, &tmp));
        PUT_LIT(b, ",\"credit\":");
        PUT(put_fixed(b, w->units, d));
        PUT_LIT(b, ",\"share\":");
        PUT(put_fixed(b, w->share, MAX_DECIMALS));
        PUT_LIT(b, ",\"touches\":");
        PUT(umg_buf_u64(b, w->st->touches));
        PUT_LIT(b, ",\"journeys\":");
        PUT(umg_buf_u64(b, w->st->journeys));
        PUT_LIT(b, ",\"converting_journeys\":");
        PUT(umg_buf_u64(b, w->st->converting));
        PUT_LIT(b, ",\"first_touch\":");
        PUT(umg_buf_u64(b, w->st->first));
        PUT_LIT(b, ",\"last_touch\":");
        PUT(umg_buf_u64(b, w->st->last));
        PUT_LIT(b, "}");
        if (i + 1 < n) {
            PUT_LIT(b, ",");
        }
    }
    PUT_LIT(b, "]}");
done:
    umg_buf_free(&tmp);
    return rc;
}

/* The most decimals (<= 6) at which v is an exact integer count of units; -1 when none. */
static int decimals_for(double v)
{
    for (int d = MAX_DECIMALS; d >= 0; d--) {
        if (v * pow10_tab[d] < EXACT_LIMIT) {
            return d;
        }
    }
    return -1;
}

int umg_mta_report_json(umg_mta_report_t *r, umg_buf_t *out)
{
    if (r == NULL || out == NULL) {
        return UMG_EINVAL;
    }
    size_t mark = out->len, nrows = 0;
    int d = 0;
    double total = 0;
    uint64_t total_units = 0;
    size_t nch = r->nch ? r->nch : 1;
    double *credit = umg_malloc(nch * sizeof(double));
    chstat_t *st = umg_calloc(nch, sizeof(chstat_t));
    row_t *rows = umg_malloc(nch * sizeof(row_t));
    int rc = UMG_ENOMEM;
    if (credit == NULL || st == NULL || rows == NULL) {
        goto done;
    }
    gather_stats(r, st);
    PUT(umg_mta_credit(r->model, &r->opts, r->paths, r->npaths, (uint32_t)r->nch, credit, &total));
    d = decimals_for(UMG_MAX(total, r->organic_value));
    if (d < 0) {
        rc = UMG_ERANGE;
        goto done;
    }
    PUT(make_rows(r, st, credit, pow10_tab[d], total, rows, &nrows, &total_units));
    PUT(put_head(out, r, d, pow10_tab[d], total_units));
    PUT(put_channels(out, rows, nrows, d));
done:
    if (rc != UMG_OK && out->ptr != NULL) {
        out->len = mark;
        out->ptr[mark] = '\0';
    }
    umg_free(credit);
    umg_free(st);
    umg_free(rows);
    return rc;
}
