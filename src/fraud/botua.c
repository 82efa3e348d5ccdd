/*
 * botua.c - the bot_user_agent rule's matcher: case-insensitive substring
 * patterns (some anchored at the start, some exemptions) compiled into a
 * first-byte index. A scan walks the User-Agent once; at each position only
 * the patterns whose first byte is that byte are compared, and a 256-bit set
 * of first bytes skips the positions no pattern can start at. User-Agents
 * are short (a few hundred bytes) and the lists are tens of patterns, where
 * this is as fast as Aho-Corasick and far simpler to get right.
 */
#include "umg_fraud_net.h"

#include <errno.h>
#include <stdio.h>

/*
 * The defaults, with the false positives each avoids (docs/fraud.md has the table):
 * app HTTP stacks (okhttp, Dalvik, CFNetwork, Apache-HttpClient on old Android, UnityWebRequest's
 * "libcurl/") are not bots, so curl/wget are anchored at the start, and CFNetwork and Dalvik
 * User-Agents (which carry the app's name or the phone's model: "Spider Solitaire/3.2 CFNetwork/...",
 * "... CUBOT X30 Build/...") are exempt. A bare "bot" would hit Cubot phones and apps named "Robot...".
 */
const char *const umg_botua_defaults[] = {
    "!cfnetwork/",
    "!dalvik/",
    "bot/",
    "bot;",
    "bot-",
    "+http",
    "spider",
    "crawler",
    "crawling",
    "slurp",
    "headlesschrome",
    "phantomjs",
    "slimerjs",
    "selenium",
    "webdriver",
    "puppeteer",
    "playwright",
    "lighthouse",
    "pingdom",
    "facebookexternalhit",
    "^curl/",
    "^wget/",
    "python-requests",
    "python-urllib",
    "python-httpx",
    "aiohttp/",
    "^go-http-client",
    "^java/",
    "libwww-perl",
    "^httpie/",
    "^scrapy",
    "node-fetch",
    "^axios/",
    NULL,
};

typedef struct pat_s {
    char *text;  /* as given */
    char *lower; /* without the prefix, lower case */
    size_t len;
    int anchored, exempt;
} pat_t;

struct umg_botua_s {
    pat_t *p;
    int n, cap;
    /* by first byte: pattern indices in list order, for unanchored bot patterns and for exemptions */
    int *bucket[256], nbucket[256];
    int *ebucket[256], nebucket[256];
    uint64_t first[4], efirst[4]; /* sets of first bytes */
    int *anchored, nanchored;
};

static inline unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

static int add(umg_botua_t *m, const char *s, size_t n, char *err, size_t errlen, const char *where)
{
    int anchored = n > 0 && s[0] == '^', exempt = n > 0 && s[0] == '!';
    size_t body = n - (size_t)(anchored || exempt);
    if (body < 2 || body > 128) {
        snprintf(err, errlen, "fraud.bot_ua_patterns: %s'%.*s': a pattern is 2 to 128 bytes (after ^ or !)", where,
                 (int)UMG_MIN(n, 80), s);
        return UMG_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            snprintf(err, errlen, "fraud.bot_ua_patterns: %sa pattern holds a control character", where);
            return UMG_EINVAL;
        }
    }
    if (m->n == m->cap) {
        int nc = m->cap ? m->cap * 2 : 32;
        pat_t *np = umg_realloc(m->p, (size_t)nc * sizeof(*np));
        if (np == NULL) {
            return UMG_ENOMEM;
        }
        m->p = np;
        m->cap = nc;
    }
    pat_t *p = &m->p[m->n];
    p->text = umg_strndup(s, n);
    p->lower = umg_strndup(s + (n - body), body);
    if (p->text == NULL || p->lower == NULL) {
        umg_free(p->text);
        umg_free(p->lower);
        return UMG_ENOMEM;
    }
    for (size_t i = 0; i < body; i++) {
        p->lower[i] = (char)lower((unsigned char)p->lower[i]);
    }
    p->len = body;
    p->anchored = anchored;
    p->exempt = exempt;
    m->n++;
    return UMG_OK;
}

static int add_entry(umg_botua_t *m, const char *s, size_t n, char *err, size_t errlen, const char *where)
{
    if (n == 7 && memcmp(s, "default", 7) == 0) {
        for (const char *const *d = umg_botua_defaults; *d; d++) {
            int rc = add(m, *d, strlen(*d), err, errlen, where);
            if (rc != UMG_OK) {
                return rc;
            }
        }
        return UMG_OK;
    }
    return add(m, s, n, err, errlen, where);
}

static int load_file(umg_botua_t *m, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        snprintf(err, errlen, "fraud.bot_ua_patterns: cannot read %s: %s", path, strerror(errno));
        return UMG_EIO;
    }
    char line[1024], where[300];
    int rc = UMG_OK;
    for (size_t ln = 1; rc == UMG_OK && fgets(line, sizeof(line), f) != NULL; ln++) {
        size_t n = strcspn(line, "\r\n");
        line[n] = '\0';
        size_t i = 0;
        while (line[i] == ' ' || line[i] == '\t') {
            i++;
        }
        while (n > i && (line[n - 1] == ' ' || line[n - 1] == '\t')) {
            n--;
        }
        if (n == i || line[i] == '#') {
            continue;
        }
        snprintf(where, sizeof(where), "%.256s:%zu: ", path, ln);
        rc = add_entry(m, line + i, n - i, err, errlen, where);
    }
    fclose(f);
    return rc;
}

static int index_patterns(umg_botua_t *m)
{
    for (int i = 0; i < m->n; i++) {
        const pat_t *p = &m->p[i];
        if (p->anchored) {
            int *na = umg_realloc(m->anchored, (size_t)(m->nanchored + 1) * sizeof(int));
            if (na == NULL) {
                return UMG_ENOMEM;
            }
            m->anchored = na;
            m->anchored[m->nanchored++] = i;
            continue;
        }
        unsigned char c = (unsigned char)p->lower[0];
        int **b = p->exempt ? &m->ebucket[c] : &m->bucket[c];
        int *nb = p->exempt ? &m->nebucket[c] : &m->nbucket[c];
        int *grown = umg_realloc(*b, (size_t)(*nb + 1) * sizeof(int));
        if (grown == NULL) {
            return UMG_ENOMEM;
        }
        *b = grown;
        (*b)[(*nb)++] = i;
        uint64_t *set = p->exempt ? m->efirst : m->first;
        set[c >> 6] |= UINT64_C(1) << (c & 63);
        /* An upper-case User-Agent byte folds to this lower-case first byte: index both. */
        if (c >= 'a' && c <= 'z') {
            unsigned char u = (unsigned char)(c - 32);
            set[u >> 6] |= UINT64_C(1) << (u & 63);
        }
    }
    return UMG_OK;
}

int umg_botua_compile(const char *spec, umg_botua_t **out, char *err, size_t errlen)
{
    umg_botua_t *m = umg_calloc(1, sizeof(*m));
    if (m == NULL) {
        snprintf(err, errlen, "out of memory");
        return UMG_ENOMEM;
    }
    int rc = UMG_OK;
    for (const char *p = spec ? spec : ""; rc == UMG_OK && *p;) {
        size_t n = strcspn(p, ",");
        const char *s = p, *e = p + n;
        p = *e ? e + 1 : e;
        while (s < e && (*s == ' ' || *s == '\t')) {
            s++;
        }
        while (e > s && (e[-1] == ' ' || e[-1] == '\t')) {
            e--;
        }
        if (e == s) {
            continue;
        }
        if (*s == '@') {
            char path[4096];
            snprintf(path, sizeof(path), "%.*s", (int)(e - s - 1), s + 1);
            rc = load_file(m, path, err, errlen);
        } else {
            rc = add_entry(m, s, (size_t)(e - s), err, errlen, "");
        }
    }
    rc = rc ? rc : index_patterns(m);
    if (rc != UMG_OK) {
        if (rc == UMG_ENOMEM) {
            snprintf(err, errlen, "out of memory");
        }
        umg_botua_free(m);
        return rc;
    }
    *out = m;
    return UMG_OK;
}

void umg_botua_free(umg_botua_t *m)
{
    if (m == NULL) {
        return;
    }
    for (int i = 0; i < m->n; i++) {
        umg_free(m->p[i].text);
        umg_free(m->p[i].lower);
    }
    for (int c = 0; c < 256; c++) {
        umg_free(m->bucket[c]);
        umg_free(m->ebucket[c]);
    }
    umg_free(m->anchored);
    umg_free(m->p);
    umg_free(m);
}

int umg_botua_count(const umg_botua_t *m)
{
    return m->n;
}

const char *umg_botua_pattern(const umg_botua_t *m, int i)
{
    return i >= 0 && i < m->n ? m->p[i].text : NULL;
}

static int at(const pat_t *p, const unsigned char *s, size_t n)
{
    if (p->len > n) {
        return 0;
    }
    for (size_t k = 0; k < p->len; k++) {
        if (lower(s[k]) != (unsigned char)p->lower[k]) {
            return 0;
        }
    }
    return 1;
}

/* The first pattern (of the bucket set) matching at the earliest position, or -1. */
static int scan(const umg_botua_t *m, const unsigned char *s, size_t n, int *const *bucket, const int *nbucket,
                const uint64_t *set)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (!(set[c >> 6] >> (c & 63) & 1)) {
            continue;
        }
        unsigned char l = lower(c);
        for (int k = 0; k < nbucket[l]; k++) {
            int idx = bucket[l][k];
            if (at(&m->p[idx], s + i, n - i)) {
                return idx;
            }
        }
    }
    return -1;
}

int umg_botua_match(const umg_botua_t *m, umg_slice_t ua)
{
    const unsigned char *s = (const unsigned char *)ua.ptr;
    size_t n = ua.len;
    while (n > 0 && (s[0] == ' ' || s[0] == '\t')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) {
        n--;
    }
    if (n == 0) {
        return UMG_BOTUA_EMPTY;
    }
    int hit = -1;
    for (int k = 0; k < m->nanchored; k++) {
        const pat_t *p = &m->p[m->anchored[k]];
        if (!p->exempt && at(p, s, n)) {
            hit = m->anchored[k];
            break;
        }
    }
    int un = scan(m, s, n, m->bucket, m->nbucket, m->first);
    /* An anchored hit is at position 0, the earliest: it wins unless an unanchored one also
     * matches at 0 and is listed first. */
    if (hit < 0 || (un >= 0 && un < hit && at(&m->p[un], s, n))) {
        hit = un;
    }
    if (hit >= 0 && scan(m, s, n, m->ebucket, m->nebucket, m->efirst) >= 0) {
        return -1;
    }
    return hit;
}
