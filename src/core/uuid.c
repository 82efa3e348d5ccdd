/*
 * uuid.c - owns UUIDs (random version 4, parsing and formatting the 36-byte
 * canonical form) and the process's source of OS randomness, getrandom(2),
 * with /dev/urandom as a fallback for kernels without it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/random.h>
#include <unistd.h>

#include "umg_core.h"
#include "umg_core_int.h"

static int urandom_fill(unsigned char *p, size_t n)
{
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return UMG_EIO;
    }
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            close(fd);
            return UMG_EIO;
        }
        p += r;
        n -= (size_t)r;
    }
    close(fd);
    return UMG_OK;
}

int umg__random_fill(void *out, size_t n)
{
    unsigned char *p = out;
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == ENOSYS) {
                return urandom_fill(p, n);
            }
            return UMG_EIO;
        }
        p += r;
        n -= (size_t)r;
    }
    return UMG_OK;
}

/*
 * Without randomness, IDs and secrets would be predictable; carrying on is
 * worse than stopping, so a failure here aborts the process.
 */
void umg_random_bytes(void *out, size_t n)
{
    if (umg__random_fill(out, n) != UMG_OK) {
        umg_log(UMG_LOG_ERROR, "core", "no OS randomness: %s", strerror(errno));
        abort();
    }
}

/*
 * Event ids are made once per event on the ingest path: one getrandom call per
 * id would be a syscall per event, so each thread draws 4 KiB at a time and
 * hands out 16 bytes per id. (The daemon never forks, so no two processes
 * share a pool.) Keys and secrets use umg_random_bytes directly.
 */
static _Thread_local struct {
    uint8_t buf[4096];
    size_t pos;
} uuid_pool = {.pos = sizeof(uuid_pool.buf)};

void umg_uuid_v4(umg_uuid_t *out)
{
    if (uuid_pool.pos + sizeof(out->b) > sizeof(uuid_pool.buf)) {
        umg_random_bytes(uuid_pool.buf, sizeof(uuid_pool.buf));
        uuid_pool.pos = 0;
    }
    memcpy(out->b, uuid_pool.buf + uuid_pool.pos, sizeof(out->b));
    uuid_pool.pos += sizeof(out->b);
    out->b[6] = (uint8_t)((out->b[6] & 0x0F) | 0x40); /* version 4 */
    out->b[8] = (uint8_t)((out->b[8] & 0x3F) | 0x80); /* RFC 4122 variant */
}

int umg_uuid_parse(const char *s, size_t len, umg_uuid_t *out)
{
    umg_uuid_t u;
    if (s == NULL || len != 36) {
        return UMG_EINVAL;
    }
    size_t j = 0;
    for (size_t i = 0; i < 36;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') {
                return UMG_EINVAL;
            }
            i++;
            continue;
        }
        int hi = umg_hexval(s[i]), lo = umg_hexval(s[i + 1]);
        if (hi < 0 || lo < 0) {
            return UMG_EINVAL;
        }
        u.b[j++] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    *out = u;
    return UMG_OK;
}

void umg_uuid_format(const umg_uuid_t *u, char out[37])
{
    static const char hex[] = "0123456789abcdef";
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            *p++ = '-';
        }
        *p++ = hex[u->b[i] >> 4];
        *p++ = hex[u->b[i] & 0xf];
    }
    *p = '\0';
}
