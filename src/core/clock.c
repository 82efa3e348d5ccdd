/*
 * clock.c - owns time: the wall and monotonic clocks, and RFC 3339 parsing and
 * formatting in microseconds since the Unix epoch. Calendar arithmetic uses
 * Howard Hinnant's days-from-civil algorithm so nothing depends on timegm(3)
 * or the process time zone.
 */
#include <time.h>

#include "umg_core.h"

#define US_PER_SEC INT64_C(1000000)
#define SEC_PER_DAY INT64_C(86400)

int64_t umg_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * US_PER_SEC + ts.tv_nsec / 1000;
}

uint64_t umg_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

void umg_deadline_ms(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    int64_t ns = ts->tv_nsec + (ms % 1000) * 1000000;
    ts->tv_sec += (time_t)(ms / 1000 + ns / 1000000000);
    ts->tv_nsec = (long)(ns % 1000000000);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (m 1..12, d 1..31). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Inverse of days_from_civil. */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : mdays[m - 1];
}

/* Reads exactly `n` decimal digits at s; -1 if any is not a digit. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/*
 * Accepts date-time from RFC 3339 section 5.6: "T", "t" or a space between
 * date and time, "Z"/"z" or a numeric offset. Leap seconds (:60) are refused
 * because the epoch count cannot represent them. Fractions beyond
 * microseconds are truncated.
 */
int umg_time_parse_rfc3339(const char *s, size_t len, int64_t *out_us)
{
    if (s == NULL || len < 20) {
        return UMG_EINVAL;
    }
    if (s[4] != '-' || s[7] != '-' || s[13] != ':' || s[16] != ':') {
        return UMG_EINVAL;
    }
    if (s[10] != 'T' && s[10] != 't' && s[10] != ' ') {
        return UMG_EINVAL;
    }
    int year = digits(s, 4), mon = digits(s + 5, 2), day = digits(s + 8, 2);
    int hour = digits(s + 11, 2), min = digits(s + 14, 2), sec = digits(s + 17, 2);
    if (year < 0 || mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon)) {
        return UMG_EINVAL;
    }
    if (hour < 0 || hour > 23 || min < 0 || min > 59 || sec < 0 || sec > 59) {
        return UMG_EINVAL;
    }

    size_t i = 19;
    int64_t frac_us = 0;
    if (s[i] == '.') {
        i++;
        size_t start = i;
        int64_t scale = 100000;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (i - start >= 9) {
                return UMG_EINVAL;
            }
            frac_us += (s[i] - '0') * scale;
            scale /= 10;
            i++;
        }
        if (i == start) {
            return UMG_EINVAL;
        }
    }
    if (i >= len) {
        return UMG_EINVAL;
    }

    int64_t offset_s;
    if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == len) {
        offset_s = 0;
    } else if ((s[i] == '+' || s[i] == '-') && i + 6 == len && s[i + 3] == ':') {
        int oh = digits(s + i + 1, 2), om = digits(s + i + 4, 2);
        if (oh < 0 || oh > 23 || om < 0 || om > 59) {
            return UMG_EINVAL;
        }
        offset_s = (int64_t)oh * 3600 + om * 60;
        if (s[i] == '-') {
            offset_s = -offset_s;
        }
    } else {
        return UMG_EINVAL;
    }

    int64_t secs = days_from_civil(year, mon, day) * SEC_PER_DAY + hour * 3600 + min * 60 + sec;
    *out_us = (secs - offset_s) * US_PER_SEC + frac_us;
    return UMG_OK;
}

static char *put2(char *p, int v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
    return p + 2;
}

void umg_time_format_rfc3339(int64_t us, char out[32])
{
    /* Floor division so instants before 1970 get a positive sub-second part. */
    int64_t secs = us / US_PER_SEC;
    int64_t rem = us % US_PER_SEC;
    if (rem < 0) {
        rem += US_PER_SEC;
        secs--;
    }
    int64_t days = secs / SEC_PER_DAY;
    int64_t sod = secs % SEC_PER_DAY;
    if (sod < 0) {
        sod += SEC_PER_DAY;
        days--;
    }
    int64_t year;
    int mon, day;
    civil_from_days(days, &year, &mon, &day);

    char *p = out;
    if (year >= 0 && year <= 9999) {
        p = put2(p, (int)(year / 100));
        p = put2(p, (int)(year % 100));
    } else {
        /* Outside RFC 3339's range; still print something unambiguous. */
        p += snprintf(p, 12, "%+07lld", (long long)year);
    }
    *p++ = '-';
    p = put2(p, mon);
    *p++ = '-';
    p = put2(p, day);
    *p++ = 'T';
    p = put2(p, (int)(sod / 3600));
    *p++ = ':';
    p = put2(p, (int)(sod / 60 % 60));
    *p++ = ':';
    p = put2(p, (int)(sod % 60));
    *p++ = '.';
    for (int i = 5; i >= 0; i--) {
        p[i] = (char)('0' + rem % 10);
        rem /= 10;
    }
    p += 6;
    *p++ = 'Z';
    *p = '\0';
}

static inline char *w_2digits(char *p, unsigned v)
{
    memcpy(p, umg_digit_pairs + 2 * v, 2);
    return p + 2;
}

/*
 * Times from 1970 to 9999 (all that ingest lets through) in 32-bit unsigned
 * arithmetic, since this runs several times per stored event; the text is the
 * same as umg_time_format_rfc3339's, which handles every other instant.
 */
char *umg_time_write_rfc3339(char *p, int64_t us)
{
    if (us < 0 || us > INT64_C(253402300799999999)) {
        char t[32];
        umg_time_format_rfc3339(us, t);
        size_t n = strlen(t);
        memcpy(p, t, n);
        return p + n;
    }
    uint64_t secs = (uint64_t)us / 1000000;
    uint32_t frac = (uint32_t)((uint64_t)us - secs * 1000000);
    uint32_t days = (uint32_t)(secs / 86400);
    uint32_t sod = (uint32_t)(secs - (uint64_t)days * 86400);
    /* Neri and Schneider's calendar algorithm, days counted from 0000-03-01. */
    uint32_t n1 = 4 * (days + 719468) + 3;
    uint32_t century = n1 / 146097;
    uint32_t n2 = (n1 % 146097) | 3;
    uint64_t p2 = (uint64_t)2939745 * n2;
    uint32_t yoc = (uint32_t)(p2 >> 32);
    uint32_t doy = (uint32_t)p2 / 2939745 / 4; /* day of the March-based year */
    uint32_t n3 = 2141 * doy + 197913;
    uint32_t jan_feb = doy >= 306;
    uint32_t year = 100 * century + yoc + jan_feb;
    uint32_t mon = (n3 >> 16) - 12 * jan_feb;
    uint32_t day = (n3 & 0xffff) / 2141 + 1;

    p = w_2digits(p, year / 100);
    p = w_2digits(p, year % 100);
    *p++ = '-';
    p = w_2digits(p, mon);
    *p++ = '-';
    p = w_2digits(p, day);
    *p++ = 'T';
    p = w_2digits(p, sod / 3600);
    *p++ = ':';
    p = w_2digits(p, sod / 60 % 60);
    *p++ = ':';
    p = w_2digits(p, sod % 60);
    *p++ = '.';
    p = w_2digits(p, frac / 10000);
    p = w_2digits(p, frac / 100 % 100);
    p = w_2digits(p, frac % 100);
    *p++ = 'Z';
    return p;
}

int umg_date_parse(umg_slice_t s, int32_t *day)
{
    if (s.len != 10 || s.ptr[4] != '-' || s.ptr[7] != '-') {
        return UMG_EINVAL;
    }
    int v[3] = {0, 0, 0};
    static const int at[3] = {0, 5, 8}, len[3] = {4, 2, 2};
    for (int f = 0; f < 3; f++) {
        for (int i = 0; i < len[f]; i++) {
            char c = s.ptr[at[f] + i];
            if (c < '0' || c > '9') {
                return UMG_EINVAL;
            }
            v[f] = v[f] * 10 + (c - '0');
        }
    }
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (v[0] % 4 == 0 && v[0] % 100 != 0) || v[0] % 400 == 0;
    if (v[0] < 1 || v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > mdays[v[1] - 1] || (v[1] == 2 && v[2] == 29 && !leap)) {
        return UMG_EINVAL;
    }
    *day = (int32_t)days_from_civil(v[0], v[1], v[2]);
    return UMG_OK;
}

void umg_date_format(int32_t day, char out[11])
{
    int64_t y;
    int m, d;
    civil_from_days(day, &y, &m, &d);
    /* through a buffer no int can overflow, so that no optimisation level sees a truncation */
    char tmp[40];
    snprintf(tmp, sizeof(tmp), "%04d-%02d-%02d", (int)(y < 0 ? 0 : y > 9999 ? 9999 : y), m, d);
    memcpy(out, tmp, 10);
    out[10] = '\0';
}

int32_t umg_date_from_civil(int y, int m, int d)
{
    return (int32_t)days_from_civil(y, m, d);
}

void umg_date_civil(int32_t day, int *y, int *m, int *d)
{
    int64_t yy;
    civil_from_days(day, &yy, m, d);
    *y = (int)yy;
}

int32_t umg_date_week_start(int32_t day)
{
    /* 1970-01-01 was a Thursday: Monday-based weekday = (day + 3) mod 7 */
    int32_t wd = (int32_t)(((int64_t)day + 3) % 7);
    return day - (wd < 0 ? wd + 7 : wd);
}

int32_t umg_date_month_start(int32_t day)
{
    int y, m, d;
    umg_date_civil(day, &y, &m, &d);
    return day - (d - 1);
}
