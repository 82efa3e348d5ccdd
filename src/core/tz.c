/*
 * tz.c - time zones. TEMPORARY: knows only "UTC" until the TZif reader lands
 * (same session); every other name is UMG_ENOENT.
 */
#include <pthread.h>

#include "umg_core.h"

struct umg_tz_s {
    char name[64];
};

int umg_tz_parse(const char *name, const void *data, size_t len, umg_tz_t **out)
{
    (void)name, (void)data, (void)len, (void)out;
    return UMG_ECORRUPT;
}

int umg_tz_load(const char *name, umg_tz_t **out)
{
    if (strcmp(name, "UTC") != 0) {
        return UMG_ENOENT;
    }
    umg_tz_t *tz = umg_calloc(1, sizeof(*tz));
    if (tz == NULL) {
        return UMG_ENOMEM;
    }
    snprintf(tz->name, sizeof(tz->name), "UTC");
    *out = tz;
    return UMG_OK;
}

void umg_tz_free(umg_tz_t *tz)
{
    umg_free(tz);
}

const char *umg_tz_name(const umg_tz_t *tz)
{
    return tz->name;
}

int32_t umg_tz_offset(const umg_tz_t *tz, int64_t utc_s)
{
    (void)tz, (void)utc_s;
    return 0;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

int32_t umg_tz_day(const umg_tz_t *tz, int64_t ts_us)
{
    int64_t s = floor_div(ts_us, 1000000);
    return (int32_t)floor_div(s + umg_tz_offset(tz, s), 86400);
}

int64_t umg_tz_day_start(const umg_tz_t *tz, int32_t day)
{
    (void)tz;
    return (int64_t)day * 86400 * 1000000;
}

struct umg_tz_cache_s {
    pthread_mutex_t mu;
    umg_tz_t *utc;
};

int umg_tz_cache_new(umg_tz_cache_t **out)
{
    umg_tz_cache_t *c = umg_calloc(1, sizeof(*c));
    if (c == NULL || umg_tz_load("UTC", &c->utc) != UMG_OK) {
        umg_free(c);
        return UMG_ENOMEM;
    }
    pthread_mutex_init(&c->mu, NULL);
    *out = c;
    return UMG_OK;
}

void umg_tz_cache_free(umg_tz_cache_t *c)
{
    if (c != NULL) {
        umg_tz_free(c->utc);
        pthread_mutex_destroy(&c->mu);
        umg_free(c);
    }
}

int umg_tz_cache_get(umg_tz_cache_t *c, const char *name, const umg_tz_t **out)
{
    if (strcmp(name, "UTC") != 0) {
        return UMG_ENOENT;
    }
    *out = c->utc;
    return UMG_OK;
}
