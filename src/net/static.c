/*
 * static.c - the built web dashboard (web/dist) served from memory: every
 * file under the directory is read once at start, with its content type and
 * an ETag. Hashed assets (under /assets/, their names carry a content hash)
 * are cached for a year and immutable; everything else (index.html) is
 * revalidated on every load. Each answer carries a strict Content-Security-
 * Policy and nosniff. A browser navigating to a path that names no file and
 * no API (it asks for text/html) gets index.html, so the page's own routes
 * (/overview, /settings) load the app; other clients keep the JSON 404.
 * Text files (HTML, scripts, styles, JSON, SVG) are also gzipped once at
 * start, and sent so to clients whose Accept-Encoding takes gzip (with their
 * own ETag, and Vary: Accept-Encoding on both forms).
 */
#include "umg_http.h"

#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <strings.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define MAX_FILES 4096
#define MAX_TOTAL_BYTES (64ll << 20)
#define MAX_DEPTH 8
#define GZIP_MIN_BYTES 512 /* smaller files are sent as they are: a gzip header and a round trip cost more */

typedef struct web_file_s {
    char *path; /* "/assets/index-abc123.js" */
    char *body;
    size_t len;
    const char *type;
    char etag[24]; /* "\"<16 hex>\"" */
    int immutable;
    char *gz; /* the gzip form, or NULL when the file is not text, small, or does not shrink by a tenth */
    size_t gzlen;
    char gz_etag[28]; /* "\"<16 hex>-gz\"" */
} web_file_t;

struct umg_http_static_s {
    web_file_t *files;
    size_t n, cap;
    int64_t bytes;
    int64_t gz_bytes; /* what a client taking gzip loads of every file */
    const web_file_t *index;
};

/*
 * No inline script or style, no eval, nothing from other origins; the page
 * talks only to its own API (connect-src 'self').
 */
#define CSP                                                                                                            \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "                 \
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

static const struct {
    const char *ext, *type;
} types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".woff2", "font/woff2"},
    {".txt", "text/plain; charset=utf-8"},
    {".map", "application/json"},
    {".webmanifest", "application/manifest+json"},
};

static const char *type_of(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (dot != NULL) {
        for (size_t i = 0; i < UMG_ARRAY_SIZE(types); i++) {
            if (strcmp(dot, types[i].ext) == 0) {
                return types[i].type;
            }
        }
    }
    return "application/octet-stream";
}

static int read_all(const char *path, char **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return UMG_EIO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size > MAX_TOTAL_BYTES) {
        close(fd);
        return UMG_EIO;
    }
    char *b = umg_malloc((size_t)st.st_size + 1);
    if (b == NULL) {
        close(fd);
        return UMG_ENOMEM;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, b + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    if (got != (size_t)st.st_size) {
        umg_free(b);
        return UMG_EIO;
    }
    *out = b;
    *len = got;
    return UMG_OK;
}

static int compressible(const char *type)
{
    return strncmp(type, "text/", 5) == 0 || strncmp(type, "application/json", 16) == 0 ||
           strcmp(type, "image/svg+xml") == 0 || strcmp(type, "application/manifest+json") == 0;
}

/* f->gz: the file gzipped at the best level, when that saves at least a tenth. */
static int gzip_file(web_file_t *f)
{
    if (f->len < GZIP_MIN_BYTES || !compressible(f->type)) {
        return UMG_OK;
    }
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK) {
        return UMG_ENOMEM;
    }
    uLong cap = deflateBound(&z, (uLong)f->len);
    char *out = umg_malloc(cap);
    if (out == NULL) {
        deflateEnd(&z);
        return UMG_ENOMEM;
    }
    z.next_in = (Bytef *)f->body;
    z.avail_in = (uInt)f->len;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)cap;
    int zrc = deflate(&z, Z_FINISH);
    size_t n = (size_t)z.total_out;
    deflateEnd(&z);
    if (zrc != Z_STREAM_END || n > f->len - f->len / 10) {
        umg_free(out);
        return zrc == Z_STREAM_END ? UMG_OK : UMG_EIO;
    }
    f->gz = out;
    f->gzlen = n;
    snprintf(f->gz_etag, sizeof(f->gz_etag), "%.*s-gz\"", (int)strlen(f->etag) - 1, f->etag); /* "<hex>-gz" */
    return UMG_OK;
}

static int add_file(umg_http_static_t *st, const char *fs_path, const char *url)
{
    if (st->n == MAX_FILES) {
        umg_log(UMG_LOG_ERROR, "web", "more than %d files in the dashboard directory", MAX_FILES);
        return UMG_EFULL;
    }
    if (st->n == st->cap) {
        size_t ncap = st->cap ? st->cap * 2 : 64;
        web_file_t *nf = umg_realloc(st->files, ncap * sizeof(*nf));
        if (nf == NULL) {
            return UMG_ENOMEM;
        }
        st->files = nf;
        st->cap = ncap;
    }
    web_file_t *f = &st->files[st->n];
    memset(f, 0, sizeof(*f));
    int rc = read_all(fs_path, &f->body, &f->len);
    if (rc != UMG_OK) {
        umg_log(UMG_LOG_ERROR, "web", "cannot read %s", fs_path);
        return rc;
    }
    st->bytes += (int64_t)f->len;
    if (st->bytes > MAX_TOTAL_BYTES) {
        umg_free(f->body);
        umg_log(UMG_LOG_ERROR, "web", "the dashboard directory holds more than 64 MiB");
        return UMG_EFULL;
    }
    size_t ul = strlen(url);
    if ((f->path = umg_malloc(ul + 1)) == NULL) {
        umg_free(f->body);
        return UMG_ENOMEM;
    }
    memcpy(f->path, url, ul + 1);
    f->type = type_of(url);
    snprintf(f->etag, sizeof(f->etag), "\"%016llx\"", (unsigned long long)umg_hash64(f->body, f->len, 0x77eb));
    f->immutable = strncmp(url, "/assets/", 8) == 0;
    st->n++; /* from here free() releases it */
    if ((rc = gzip_file(f)) != UMG_OK) {
        umg_log(UMG_LOG_ERROR, "web", "cannot gzip %s", fs_path);
        return rc;
    }
    st->gz_bytes += (int64_t)(f->gz != NULL ? f->gzlen : f->len);
    return UMG_OK;
}

/* Whether fs_path, a link, leads to a file or directory inside root (a real path): *sb is then its target's. A link
 * out of the web directory is not served (found in review: a link to /etc/passwd was). */
static int link_inside(const char *fs_path, const char *root, struct stat *sb)
{
    char real[PATH_MAX];
    size_t rl = strlen(root);
    if (realpath(fs_path, real) == NULL || strncmp(real, root, rl) != 0 || (real[rl] != '/' && rl > 1) ||
        stat(real, sb) != 0) {
        umg_log(UMG_LOG_WARN, "web", "%s leads out of %s (or nowhere): not served", fs_path, root);
        return 0;
    }
    return 1;
}

static int walk(umg_http_static_t *st, const char *root, const char *dir, const char *url, int depth)
{
    if (depth > MAX_DEPTH) {
        return UMG_OK;
    }
    DIR *d = opendir(dir);
    if (d == NULL) {
        umg_log(UMG_LOG_ERROR, "web", "cannot open %s: %s", dir, strerror(errno));
        return UMG_EIO;
    }
    int rc = UMG_OK;
    struct dirent *e;
    while (rc == UMG_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue; /* ., .., and dot files are never served */
        }
        char fs_path[4096], sub[2048];
        int n1 = snprintf(fs_path, sizeof(fs_path), "%s/%s", dir, e->d_name);
        int n2 = snprintf(sub, sizeof(sub), "%s/%s", url, e->d_name);
        if (n1 < 0 || n1 >= (int)sizeof(fs_path) || n2 < 0 || n2 >= (int)sizeof(sub)) {
            continue;
        }
        struct stat sb;
        if (lstat(fs_path, &sb) != 0 || (S_ISLNK(sb.st_mode) && !link_inside(fs_path, root, &sb))) {
            continue;
        }
        if (S_ISDIR(sb.st_mode)) {
            rc = walk(st, root, fs_path, sub, depth + 1);
        } else if (S_ISREG(sb.st_mode)) {
            rc = add_file(st, fs_path, sub);
        }
    }
    closedir(d);
    return rc;
}

int umg_http_static_open(const char *dir, umg_http_static_t **out)
{
    umg_http_static_t *st = umg_calloc(1, sizeof(*st));
    if (st == NULL) {
        return UMG_ENOMEM;
    }
    char root[PATH_MAX];
    if (realpath(dir, root) == NULL) {
        umg_log(UMG_LOG_ERROR, "web", "cannot open %s: %s", dir, strerror(errno));
        umg_free(st);
        return UMG_EIO;
    }
    int rc = walk(st, root, dir, "", 0);
    if (rc != UMG_OK) {
        goto fail;
    }
    for (size_t i = 0; i < st->n; i++) {
        if (strcmp(st->files[i].path, "/index.html") == 0) {
            st->index = &st->files[i];
        }
    }
    if (st->index == NULL) {
        umg_log(UMG_LOG_ERROR, "web", "%s has no index.html", dir);
        rc = UMG_ENOENT;
        goto fail;
    }
    *out = st;
    return UMG_OK;
fail:
    umg_http_static_free(st);
    return rc;
}

void umg_http_static_free(umg_http_static_t *st)
{
    if (st == NULL) {
        return;
    }
    for (size_t i = 0; i < st->n; i++) {
        umg_free(st->files[i].path);
        umg_free(st->files[i].body);
        umg_free(st->files[i].gz);
    }
    umg_free(st->files);
    umg_free(st);
}

size_t umg_http_static_count(const umg_http_static_t *st)
{
    return st->n;
}

int64_t umg_http_static_bytes(const umg_http_static_t *st)
{
    return st->bytes;
}

int64_t umg_http_static_gz_bytes(const umg_http_static_t *st)
{
    return st->gz_bytes;
}

static const web_file_t *find(const umg_http_static_t *st, umg_slice_t path)
{
    for (size_t i = 0; i < st->n; i++) {
        const char *p = st->files[i].path;
        if (strlen(p) == path.len && memcmp(p, path.ptr, path.len) == 0) {
            return &st->files[i];
        }
    }
    return NULL;
}

static int is_api_path(umg_slice_t p)
{
    static const char *const prefixes[] = {"/v1/", "/c/", "/v/", "/healthz", "/readyz", "/metrics"};
    for (size_t i = 0; i < UMG_ARRAY_SIZE(prefixes); i++) {
        size_t n = strlen(prefixes[i]);
        if (p.len >= n && memcmp(p.ptr, prefixes[i], n) == 0) {
            return 1;
        }
    }
    return p.len == 3 && memcmp(p.ptr, "/v1", 3) == 0;
}

static int wants_html(umg_http_req_t *req)
{
    umg_slice_t a = umg_http_header(req, "accept");
    for (size_t i = 0; i + 9 <= a.len; i++) {
        if (strncasecmp(a.ptr + i, "text/html", 9) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Whether Accept-Encoding takes gzip: a "gzip" (or "x-gzip") coding without q=0. "*" is not taken. */
static int takes_gzip(umg_http_req_t *req)
{
    umg_slice_t a = umg_http_header(req, "accept-encoding");
    size_t i = 0;
    while (i < a.len) {
        size_t e = i;
        while (e < a.len && a.ptr[e] != ',') {
            e++;
        }
        size_t b = i, n;
        while (b < e && (a.ptr[b] == ' ' || a.ptr[b] == '\t')) {
            b++;
        }
        for (n = 0; b + n < e && a.ptr[b + n] != ';' && a.ptr[b + n] != ' ' && a.ptr[b + n] != '\t'; n++) {
        }
        if ((n == 4 && strncasecmp(a.ptr + b, "gzip", 4) == 0) ||
            (n == 6 && strncasecmp(a.ptr + b, "x-gzip", 6) == 0)) {
            /* a q of zero ("q=0", "q=0.000") refuses it */
            int refused = 0;
            for (size_t k = b + n; k + 2 < e; k++) {
                if ((a.ptr[k] == 'q' || a.ptr[k] == 'Q') && a.ptr[k + 1] == '=') {
                    size_t v = k + 2;
                    refused = v < e && a.ptr[v] == '0';
                    for (v++; refused && v < e && a.ptr[v] != ' ' && a.ptr[v] != ';'; v++) {
                        refused = a.ptr[v] == '.' || a.ptr[v] == '0';
                    }
                    break;
                }
            }
            return !refused;
        }
        i = e + 1;
    }
    return 0;
}

int umg_http_static_serve(const umg_http_static_t *st, umg_http_req_t *req)
{
    umg_slice_t m = umg_http_method(req);
    int head = m.len == 4 && memcmp(m.ptr, "HEAD", 4) == 0;
    if (!head && !(m.len == 3 && memcmp(m.ptr, "GET", 3) == 0)) {
        return 0;
    }
    umg_slice_t path = umg_http_path(req); /* without the query: a '?' here was %3f in the request */
    if (is_api_path(path)) {
        return 0;
    }
    const web_file_t *f = path.len == 1 ? st->index : find(st, path);
    if (f == NULL) {
        /* Any other path a browser navigates to (it asks for text/html) is one of the page's own
         * routes; API clients asking for anything else keep the JSON 404, and so does a missing
         * hashed asset (an old page asking for a file a rebuild removed). */
        if ((path.len >= 8 && memcmp(path.ptr, "/assets/", 8) == 0) || !wants_html(req)) {
            return 0;
        }
        f = st->index;
    }
    int gz = f->gz != NULL && takes_gzip(req);
    const char *etag = gz ? f->gz_etag : f->etag;
    char hdr[640];
    snprintf(hdr, sizeof(hdr),
             "Cache-Control: %s\r\nETag: %s\r\n%s%sX-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n"
             "X-Frame-Options: DENY\r\nContent-Security-Policy: " CSP "\r\n",
             f->immutable ? "public, max-age=31536000, immutable" : "no-cache", etag,
             f->gz != NULL ? "Vary: Accept-Encoding\r\n" : "", gz ? "Content-Encoding: gzip\r\n" : "");
    umg_slice_t inm = umg_http_header(req, "if-none-match");
    if (inm.len == strlen(etag) && memcmp(inm.ptr, etag, inm.len) == 0) {
        umg_http_respond(req, 304, NULL, "", 0, hdr);
        return 1;
    }
    umg_http_respond(req, 200, f->type, gz ? f->gz : f->body, gz ? f->gzlen : f->len, hdr);
    return 1;
}
