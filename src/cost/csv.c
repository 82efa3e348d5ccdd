/*
 * csv.c - an RFC 4180 CSV reader (pure: bytes in, records out). Every field
 * of the current record is copied, unescaped, into the reader's scratch
 * buffer, so quoted and unquoted fields come back alike; a malformed record
 * is reported and skipped up to the end of its line, and reading goes on.
 */
#include "umg_cost.h"

void umg_csv_init(umg_csv_t *r, const char *data, size_t len)
{
    memset(r, 0, sizeof(*r));
    r->data = data;
    r->len = len;
    r->line = 1;
    if (len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0) {
        r->pos = 3;
    }
}

void umg_csv_free(umg_csv_t *r)
{
    if (r == NULL) {
        return;
    }
    umg_buf_free(&r->scratch);
    umg_free(r->offs);
    r->offs = NULL;
    r->cap = 0;
}

/* Consumes a line break at pos (CRLF, LF or a lone CR); 1 when there was one. */
static int eat_newline(umg_csv_t *r)
{
    if (r->pos < r->len && r->data[r->pos] == '\r') {
        r->pos++;
        if (r->pos < r->len && r->data[r->pos] == '\n') {
            r->pos++;
        }
        r->line++;
        return 1;
    }
    if (r->pos < r->len && r->data[r->pos] == '\n') {
        r->pos++;
        r->line++;
        return 1;
    }
    return 0;
}

/* Skips what is left of a bad record: to the end of the current line. */
static void skip_line(umg_csv_t *r)
{
    while (r->pos < r->len && r->data[r->pos] != '\n' && r->data[r->pos] != '\r') {
        r->pos++;
    }
    eat_newline(r);
}

static int push_field(umg_csv_t *r, size_t nf, size_t start)
{
    if (2 * (nf + 1) > r->cap) {
        size_t ncap = r->cap ? r->cap * 2 : 32;
        size_t *o = umg_realloc(r->offs, ncap * sizeof(size_t));
        if (o == NULL) {
            return UMG_ENOMEM;
        }
        r->offs = o;
        r->cap = ncap;
    }
    r->offs[2 * nf] = start;
    r->offs[2 * nf + 1] = r->scratch.len - start;
    return UMG_OK;
}

/* A quoted field, pos just after its opening quote: appends its content to scratch. */
static int quoted(umg_csv_t *r, const char **msg)
{
    for (;;) {
        const char *p = r->data + r->pos, *end = r->data + r->len;
        const char *q = memchr(p, '"', (size_t)(end - p));
        if (q == NULL) {
            *msg = "a quoted field is not closed";
            for (const char *s = p; s < end; s++) {
                r->line += *s == '\n';
            }
            r->pos = r->len;
            return UMG_EPARSE;
        }
        for (const char *s = p; s < q; s++) {
            r->line += *s == '\n' || (*s == '\r' && (s + 1 == end || s[1] != '\n'));
        }
        if (umg_buf_append(&r->scratch, p, (size_t)(q - p)) != UMG_OK) {
            return UMG_ENOMEM;
        }
        r->pos = (size_t)(q - r->data) + 1;
        if (r->pos < r->len && r->data[r->pos] == '"') {
            if (umg_buf_putc(&r->scratch, '"') != UMG_OK) {
                return UMG_ENOMEM;
            }
            r->pos++;
            continue;
        }
        return UMG_OK;
    }
}

int umg_csv_next(umg_csv_t *r, umg_slice_t *fields, size_t max, size_t *n, size_t *line, const char **msg)
{
    /* Blank lines are not records. */
    while (r->pos < r->len && (r->data[r->pos] == '\n' || r->data[r->pos] == '\r')) {
        eat_newline(r);
    }
    if (r->pos >= r->len) {
        return UMG_EAGAIN;
    }
    *line = r->line;
    *msg = NULL;
    umg_buf_reset(&r->scratch);
    if (umg_buf_reserve(&r->scratch, 1) != UMG_OK) {
        return UMG_ENOMEM;
    }
    size_t nf = 0;
    for (;;) {
        size_t start = r->scratch.len;
        int rc = UMG_OK;
        if (r->pos < r->len && r->data[r->pos] == '"') {
            r->pos++;
            rc = quoted(r, msg);
            if (rc == UMG_OK && r->pos < r->len && r->data[r->pos] != ',' && r->data[r->pos] != '\n' &&
                r->data[r->pos] != '\r') {
                *msg = "text after the closing quote of a field";
                rc = UMG_EPARSE;
            }
        } else {
            size_t s = r->pos;
            while (r->pos < r->len && r->data[r->pos] != ',' && r->data[r->pos] != '\n' && r->data[r->pos] != '\r') {
                if (r->data[r->pos] == '"') {
                    *msg = "a quote inside an unquoted field (quote the whole field and double the quote)";
                    rc = UMG_EPARSE;
                    break;
                }
                r->pos++;
            }
            if (rc == UMG_OK) {
                rc = umg_buf_append(&r->scratch, r->data + s, r->pos - s);
            }
        }
        if (rc == UMG_OK && nf == max) {
            *msg = "too many fields";
            rc = UMG_EPARSE;
        }
        rc = rc ? rc : push_field(r, nf, start);
        if (rc != UMG_OK) {
            if (rc == UMG_EPARSE) {
                skip_line(r);
            }
            return rc;
        }
        nf++;
        if (r->pos < r->len && r->data[r->pos] == ',') {
            r->pos++;
            continue;
        }
        eat_newline(r);
        break;
    }
    for (size_t i = 0; i < nf; i++) {
        fields[i] = umg_slice(r->scratch.ptr + r->offs[2 * i], r->offs[2 * i + 1]);
    }
    *n = nf;
    return UMG_OK;
}
