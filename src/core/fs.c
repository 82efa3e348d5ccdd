/*
 * fs.c - owns the small filesystem helpers the stores build on: mkdir -p,
 * whole-file atomic replacement (temp file in the same directory, fsync,
 * rename, fsync of the directory) and directory fsync. Failures are logged
 * with errno, since the UMG_E* code alone loses it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "umg_core.h"

static int from_errno(int e)
{
    switch (e) {
    case ENOENT:
    case ENOTDIR: return UMG_ENOENT;
    case EEXIST: return UMG_EEXIST;
    case ENOSPC:
    case EDQUOT: return UMG_ENOSPC;
    case ENOMEM: return UMG_ENOMEM;
    default: return UMG_EIO;
    }
}

/* Creates one directory; an existing directory is success, an existing file is not. */
static int mkdir_one(const char *path, int mode)
{
    if (mkdir(path, (mode_t)mode) == 0) {
        return UMG_OK;
    }
    int e = errno;
    struct stat st;
    if (e == EEXIST && stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            return UMG_OK;
        }
        e = ENOTDIR;
    }
    umg_log(UMG_LOG_ERROR, "fs", "mkdir %s: %s", path, strerror(e));
    return e == ENOTDIR ? UMG_EEXIST : from_errno(e);
}

int umg_mkdirs(const char *path, int mode)
{
    if (path == NULL || path[0] == '\0') {
        return UMG_EINVAL;
    }
    int rc = UMG_OK;
    char *p = umg_strndup(path, strlen(path));
    if (p == NULL) {
        return UMG_ENOMEM;
    }
    /* Create each prefix ending before a '/', then the whole path. */
    for (char *s = p + 1; *s != '\0'; s++) {
        if (*s != '/' || s[-1] == '/') {
            continue;
        }
        *s = '\0';
        rc = mkdir_one(p, mode);
        *s = '/';
        if (rc != UMG_OK) {
            goto fail;
        }
    }
    rc = mkdir_one(p, mode);
    if (rc != UMG_OK) {
        goto fail;
    }
    umg_free(p);
    return UMG_OK;

fail:
    umg_free(p);
    return rc;
}

int umg_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        umg_log(UMG_LOG_ERROR, "fs", "open %s: %s", dir, strerror(e));
        return from_errno(e);
    }
    /* Some filesystems cannot fsync directories; that is not a failure we can act on. */
    if (fsync(fd) != 0 && errno != EINVAL && errno != EROFS) {
        int e = errno;
        close(fd);
        umg_log(UMG_LOG_ERROR, "fs", "fsync %s: %s", dir, strerror(e));
        return from_errno(e);
    }
    close(fd);
    return UMG_OK;
}

int umg_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

ssize_t umg_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = pread(fd, (char *)buf + got, len - got, (off_t)(off + got));
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        if (r == 0) {
            break;
        }
        got += (size_t)r;
    }
    return (ssize_t)got;
}

int umg_write_file_atomic(const char *path, const void *data, size_t len)
{
    int rc = UMG_OK;
    int fd = -1;
    char *dir = NULL;
    umg_buf_t tmp = {0};
    const char *what = "open";

    if (path == NULL || path[0] == '\0') {
        return UMG_EINVAL;
    }
    const char *slash = strrchr(path, '/');
    dir = slash == NULL ? umg_strndup(".", 1) : umg_strndup(path, slash == path ? 1 : (size_t)(slash - path));
    /* The random part keeps two writers of the same path from sharing a temp file. */
    uint32_t nonce;
    umg_random_bytes(&nonce, sizeof(nonce));
    if (dir == NULL || umg_buf_printf(&tmp, "%s.tmp.%ld.%08x", path, (long)getpid(), (unsigned)nonce) != UMG_OK) {
        rc = UMG_ENOMEM;
        goto fail;
    }
    fd = open(tmp.ptr, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        goto fail_errno;
    }
    what = "write";
    if (umg_write_all(fd, data, len) != 0) {
        goto fail_errno;
    }
    what = "fsync";
    if (fsync(fd) != 0) {
        goto fail_errno;
    }
    what = "close";
    int cr = close(fd);
    fd = -1;
    if (cr != 0) {
        goto fail_errno;
    }
    what = "rename";
    if (rename(tmp.ptr, path) != 0) {
        goto fail_errno;
    }
    rc = umg_fsync_dir(dir);
    umg_free(dir);
    umg_buf_free(&tmp);
    return rc;

fail_errno : {
    int e = errno;
    umg_log(UMG_LOG_ERROR, "fs", "%s %s: %s", what, tmp.ptr, strerror(e));
    rc = from_errno(e);
    if (fd >= 0) {
        close(fd);
    }
    fd = -1;
    unlink(tmp.ptr);
}
fail:
    if (fd >= 0) {
        close(fd);
    }
    umg_free(dir);
    umg_buf_free(&tmp);
    return rc;
}

int umg_file_lock(const char *path, int *fd_out, long *holder)
{
    *fd_out = -1;
    *holder = 0;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        umg_log(UMG_LOG_ERROR, "fs", "open %s: %s", path, strerror(errno));
        return UMG_EIO;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char text[32];
        ssize_t n = umg_pread_full(fd, text, sizeof(text) - 1, 0);
        close(fd);
        if (e != EWOULDBLOCK) {
            umg_log(UMG_LOG_ERROR, "fs", "lock %s: %s", path, strerror(e));
            return UMG_EIO;
        }
        text[n > 0 ? n : 0] = '\0';
        *holder = strtol(text, NULL, 10);
        return UMG_EEXIST;
    }
    char text[32];
    int n = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)n, 0) != n) {
        umg_log(UMG_LOG_WARN, "fs", "cannot write the pid into %s: %s", path, strerror(errno));
    }
    *fd_out = fd;
    return UMG_OK;
}

void umg_file_unlock(int fd)
{
    if (fd >= 0) {
        close(fd); /* the lock goes with the last descriptor of the open file */
    }
}
