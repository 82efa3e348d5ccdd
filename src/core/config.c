/*
 * config.c - owns the declarative configuration tables: parsing a value by its
 * item's type (integers, booleans, strings, sizes with k/m/g suffixes,
 * durations with ms/s/m/h/d suffixes), bounds checks, defaults, `key = value`
 * files, and the Markdown table that docs/config.md is generated from.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <strings.h>

#include "umg_core.h"

typedef struct unit_s {
    const char *suffix;
    int64_t mult;
} unit_t;

/* Longest suffixes are not needed first: matching is on the whole suffix. */
static const unit_t size_units[] = {
    {"", 1},
    {"b", 1},
    {"k", INT64_C(1) << 10},
    {"kb", INT64_C(1) << 10},
    {"kib", INT64_C(1) << 10},
    {"m", INT64_C(1) << 20},
    {"mb", INT64_C(1) << 20},
    {"mib", INT64_C(1) << 20},
    {"g", INT64_C(1) << 30},
    {"gb", INT64_C(1) << 30},
    {"gib", INT64_C(1) << 30},
};

static const unit_t duration_units[] = {
    {"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000},
};

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static const umg_config_item_t *find_item(const umg_config_item_t *items, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(items[i].name, key) == 0) {
            return &items[i];
        }
    }
    return NULL;
}

/*
 * Parses an optionally signed decimal integer followed by an optional unit
 * suffix from `units` (case-insensitive); surrounding blanks are allowed.
 */
static int parse_scaled(const char *s, const unit_t *units, size_t nunits, int64_t *out)
{
    const char *p = s;
    while (isspace((unsigned char)*p)) {
        p++;
    }
    int neg = 0;
    if (*p == '+' || *p == '-') {
        neg = *p == '-';
        p++;
    }
    if (!isdigit((unsigned char)*p)) {
        return UMG_EINVAL;
    }
    /* Accumulate the magnitude as unsigned so INT64_MIN parses. */
    uint64_t mag = 0;
    int overflow = 0;
    for (; isdigit((unsigned char)*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (mag > (UINT64_MAX - d) / 10) {
            overflow = 1;
        } else {
            mag = mag * 10 + d;
        }
    }
    while (isspace((unsigned char)*p)) {
        p++;
    }
    const char *suf = p;
    while (isalpha((unsigned char)*p)) {
        p++;
    }
    size_t suflen = (size_t)(p - suf);
    while (isspace((unsigned char)*p)) {
        p++;
    }
    if (*p != '\0') {
        return UMG_EINVAL;
    }
    const unit_t *unit = NULL;
    for (size_t i = 0; i < nunits; i++) {
        if (strlen(units[i].suffix) == suflen && strncasecmp(units[i].suffix, suf, suflen) == 0) {
            unit = &units[i];
            break;
        }
    }
    if (unit == NULL) {
        return UMG_EINVAL;
    }
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    if (overflow || mag > limit / (uint64_t)unit->mult) {
        return UMG_ERANGE;
    }
    mag *= (uint64_t)unit->mult;
    *out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return UMG_OK;
}

static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < UMG_ARRAY_SIZE(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return UMG_OK;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return UMG_OK;
        }
    }
    return UMG_EINVAL;
}

static const char *type_name(umg_config_type_t t)
{
    switch (t) {
    case UMG_CFG_INT: return "int";
    case UMG_CFG_BOOL: return "bool";
    case UMG_CFG_STRING: return "string";
    case UMG_CFG_SIZE: return "size";
    case UMG_CFG_DURATION_MS: return "duration";
    }
    return "?";
}

static const char *type_hint(umg_config_type_t t)
{
    switch (t) {
    case UMG_CFG_INT: return "an integer";
    case UMG_CFG_BOOL: return "true/false, yes/no, on/off or 1/0";
    case UMG_CFG_SIZE: return "a size such as 4096, 64k, 16m or 1g";
    case UMG_CFG_DURATION_MS: return "a duration such as 250ms, 30s, 5m, 2h or 7d";
    default: return "a value";
    }
}

static int parse_numeric(const umg_config_item_t *it, const char *value, int64_t *out)
{
    switch (it->type) {
    case UMG_CFG_SIZE: return parse_scaled(value, size_units, UMG_ARRAY_SIZE(size_units), out);
    case UMG_CFG_DURATION_MS: return parse_scaled(value, duration_units, UMG_ARRAY_SIZE(duration_units), out);
    default: return parse_scaled(value, size_units, 1, out); /* plain integer: only the "" unit */
    }
}

/* Stores `value` into the item's field; `free_old` says whether a string already there is owned. */
static int set_item(const umg_config_item_t *it, void *target, const char *value, int free_old, char *err,
                    size_t errlen)
{
    char *field = (char *)target + it->offset;
    int rc;

    if (it->type == UMG_CFG_STRING) {
        char *copy = umg_strndup(value, strlen(value));
        if (copy == NULL) {
            set_err(err, errlen, "out of memory setting '%s'", it->name);
            return UMG_ENOMEM;
        }
        char *old;
        memcpy(&old, field, sizeof(old));
        if (free_old) {
            umg_free(old);
        }
        memcpy(field, &copy, sizeof(copy));
        return UMG_OK;
    }
    if (it->type == UMG_CFG_BOOL) {
        int b;
        rc = parse_bool(value, &b);
        if (rc != UMG_OK) {
            goto fail;
        }
        memcpy(field, &b, sizeof(b));
        return UMG_OK;
    }

    int64_t v;
    rc = parse_numeric(it, value, &v);
    if (rc != UMG_OK) {
        goto fail;
    }
    if ((it->min != 0 || it->max != 0) && (v < it->min || v > it->max)) {
        rc = UMG_ERANGE;
        goto fail;
    }
    memcpy(field, &v, sizeof(v));
    return UMG_OK;

fail:
    if (rc == UMG_ERANGE && (it->min != 0 || it->max != 0)) {
        set_err(err, errlen, "value '%s' for key '%s' is out of range [%lld, %lld]", value, it->name,
                (long long)it->min, (long long)it->max);
    } else if (rc == UMG_ERANGE) {
        set_err(err, errlen, "value '%s' for key '%s' is out of range", value, it->name);
    } else {
        set_err(err, errlen, "invalid value '%s' for key '%s': expected %s", value, it->name, type_hint(it->type));
    }
    return rc;
}

int umg_config_defaults(const umg_config_item_t *items, size_t n, void *target)
{
    int rc = UMG_OK;
    for (size_t i = 0; i < n; i++) {
        const umg_config_item_t *it = &items[i];
        char *field = (char *)target + it->offset;
        if (it->def != NULL) {
            rc = set_item(it, target, it->def, 0, NULL, 0);
            if (rc != UMG_OK) {
                goto fail;
            }
        } else if (it->type == UMG_CFG_STRING) {
            char *null = NULL;
            memcpy(field, &null, sizeof(null));
        } else if (it->type == UMG_CFG_BOOL) {
            int zero = 0;
            memcpy(field, &zero, sizeof(zero));
        } else {
            int64_t zero = 0;
            memcpy(field, &zero, sizeof(zero));
        }
    }
    return UMG_OK;

fail:
    return rc;
}

int umg_config_set(const umg_config_item_t *items, size_t n, void *target, const char *key, const char *value,
                   char *err, size_t errlen)
{
    if (key == NULL || value == NULL) {
        set_err(err, errlen, "missing key or value");
        return UMG_EINVAL;
    }
    const umg_config_item_t *it = find_item(items, n, key);
    if (it == NULL) {
        set_err(err, errlen, "unknown key '%s'", key);
        return UMG_ENOENT;
    }
    return set_item(it, target, value, 1, err, errlen);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) {
        s++;
    }
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1])) {
        s[--n] = '\0';
    }
    return s;
}

/*
 * Splits one line in place into key and value. A quoted value is taken
 * verbatim between the quotes; an unquoted value ends at a '#' that follows a
 * blank, so `x = 5  # note` works while `x = a#b` keeps the '#'.
 */
static int split_line(char *line, char **key, char **value)
{
    char *eq = strchr(line, '=');
    if (eq == NULL) {
        return UMG_EPARSE;
    }
    *eq = '\0';
    *key = trim(line);
    char *v = trim(eq + 1);
    if (**key == '\0') {
        return UMG_EPARSE;
    }
    if (*v == '"') {
        char *close = strchr(v + 1, '"');
        if (close == NULL) {
            return UMG_EPARSE;
        }
        char *rest = close + 1;
        while (isspace((unsigned char)*rest)) {
            rest++;
        }
        if (*rest != '\0' && *rest != '#') {
            return UMG_EPARSE;
        }
        *close = '\0';
        *value = v + 1;
        return UMG_OK;
    }
    for (char *p = v; *p != '\0'; p++) {
        if (*p == '#' && (p == v || isspace((unsigned char)p[-1]))) { /* "key = # note": an empty value */
            *p = '\0';
            break;
        }
    }
    *value = trim(v);
    return UMG_OK;
}

int umg_read_file(const char *path, umg_buf_t *out)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        return errno == ENOENT ? UMG_ENOENT : UMG_EIO;
    }
    int rc = UMG_OK;
    for (;;) {
        rc = umg_buf_reserve(out, 4096);
        if (rc != UMG_OK) {
            break;
        }
        size_t got = fread(out->ptr + out->len, 1, out->cap - out->len - 1, f);
        out->len += got;
        out->ptr[out->len] = '\0';
        if (got == 0) {
            rc = ferror(f) ? UMG_EIO : UMG_OK;
            break;
        }
    }
    int saved_errno = errno;
    fclose(f);
    errno = saved_errno;
    return rc;
}

int umg_config_load_file(const umg_config_item_t *items, size_t n, void *target, const char *path, char *err,
                         size_t errlen)
{
    umg_buf_t text = {0};
    char msg[256];
    int rc = umg_read_file(path, &text);
    if (rc != UMG_OK) {
        set_err(err, errlen, "%s: %s", path, rc == UMG_ENOMEM ? umg_strerror(rc) : strerror(errno));
        goto fail;
    }
    if (memchr(text.ptr, '\0', text.len) != NULL) {
        rc = UMG_EPARSE;
        set_err(err, errlen, "%s: file contains a NUL byte", path);
        goto fail;
    }

    char *line = text.ptr;
    for (unsigned lineno = 1; line != NULL; lineno++) {
        char *nl = strchr(line, '\n');
        if (nl != NULL) {
            *nl = '\0';
        }
        char *next = nl != NULL ? nl + 1 : NULL;
        char *s = trim(line);
        line = next;
        if (*s == '\0' || *s == '#') {
            continue;
        }
        char *key, *value;
        if (split_line(s, &key, &value) != UMG_OK) {
            rc = UMG_EPARSE;
            set_err(err, errlen, "%s:%u: expected 'key = value'", path, lineno);
            goto fail;
        }
        rc = umg_config_set(items, n, target, key, value, msg, sizeof(msg));
        if (rc != UMG_OK) {
            set_err(err, errlen, "%s:%u: %s", path, lineno, msg);
            goto fail;
        }
    }
    umg_buf_free(&text);
    return UMG_OK;

fail:
    umg_buf_free(&text);
    return rc;
}

void umg_config_free(const umg_config_item_t *items, size_t n, void *target)
{
    if (items == NULL || target == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (items[i].type != UMG_CFG_STRING) {
            continue;
        }
        char *field = (char *)target + items[i].offset;
        char *s;
        memcpy(&s, field, sizeof(s));
        umg_free(s);
        s = NULL;
        memcpy(field, &s, sizeof(s));
    }
}

/* Markdown table cells must not contain a bare '|' or a newline. */
static int md_cell(umg_buf_t *out, const char *s)
{
    int rc = UMG_OK;
    for (; rc == UMG_OK && s != NULL && *s != '\0'; s++) {
        if (*s == '|') {
            rc = umg_buf_append(out, "\\|", 2);
        } else if (*s == '\n') {
            rc = umg_buf_putc(out, ' ');
        } else {
            rc = umg_buf_putc(out, *s);
        }
    }
    return rc;
}

/* A bound in the item's most readable unit: 1073741824 -> "1g", 90000 -> "90s". */
static int md_bound(umg_buf_t *out, umg_config_type_t type, int64_t v)
{
    const unit_t *units = NULL;
    size_t nunits = 0;
    if (type == UMG_CFG_SIZE) {
        static const unit_t pick[] = {{"g", INT64_C(1) << 30}, {"m", 1 << 20}, {"k", 1 << 10}};
        units = pick;
        nunits = UMG_ARRAY_SIZE(pick);
    } else if (type == UMG_CFG_DURATION_MS) {
        static const unit_t pick[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}};
        units = pick;
        nunits = UMG_ARRAY_SIZE(pick);
    }
    for (size_t i = 0; i < nunits; i++) {
        if (v != 0 && v % units[i].mult == 0) {
            const char *suf = units[i].suffix;
            int rc = umg_buf_i64(out, v / units[i].mult);
            return rc != UMG_OK ? rc : umg_buf_append(out, suf, strlen(suf));
        }
    }
    int rc = umg_buf_i64(out, v);
    if (rc == UMG_OK && type == UMG_CFG_DURATION_MS) {
        rc = umg_buf_append(out, "ms", 2);
    }
    return rc;
}

int umg_config_markdown(const umg_config_item_t *items, size_t n, umg_buf_t *out)
{
    int rc = umg_buf_printf(out, "| key | type | default | range | description |\n"
                                 "|---|---|---|---|---|\n");
    for (size_t i = 0; i < n && rc == UMG_OK; i++) {
        const umg_config_item_t *it = &items[i];
        int numeric = it->type == UMG_CFG_INT || it->type == UMG_CFG_SIZE || it->type == UMG_CFG_DURATION_MS;
        rc = umg_buf_printf(out, "| `%s` | %s | ", it->name, type_name(it->type));
        if (rc == UMG_OK && it->def != NULL) {
            rc = umg_buf_putc(out, '`');
            if (rc == UMG_OK) {
                rc = md_cell(out, it->def);
            }
            if (rc == UMG_OK) {
                rc = umg_buf_putc(out, '`');
            }
        }
        if (rc == UMG_OK) {
            rc = umg_buf_append(out, " | ", 3);
        }
        if (rc == UMG_OK && numeric && (it->min != 0 || it->max != 0)) {
            rc = md_bound(out, it->type, it->min);
            if (rc == UMG_OK) {
                rc = umg_buf_append(out, " .. ", 4);
            }
            if (rc == UMG_OK) {
                rc = md_bound(out, it->type, it->max);
            }
        }
        if (rc == UMG_OK) {
            rc = umg_buf_append(out, " | ", 3);
        }
        if (rc == UMG_OK) {
            rc = md_cell(out, it->help);
        }
        if (rc == UMG_OK) {
            rc = umg_buf_append(out, " |\n", 3);
        }
    }
    return rc;
}
