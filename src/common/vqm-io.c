/* virt-qed-migrate: whole-buffer I/O and fault injection (see vqm-io.h). */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "cleanup.h"
#include "vqm-io.h"

#ifdef VQM_FAULT_INJECTION
/* The copy mode writes data from a second thread: the counters (and the
 * trace lines) are kept in one order under this lock. */
static pthread_mutex_t fault_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long fault_counter_write, fault_counter_sync;

int
vqm_fault_point(const char *op, const char *path, uint64_t off, uint64_t len)
{
    const char *spec = getenv("VQM_FAULT");
    const char *trace = getenv("VQM_FAULT_TRACE");
    char fop[16], action[16];
    unsigned long n, count;
    int is_write = strcmp(op, "write") == 0;

    unsigned long total;

    pthread_mutex_lock(&fault_lock);
    count = is_write ? ++fault_counter_write : ++fault_counter_sync;
    total = fault_counter_write + fault_counter_sync;
    if (trace && *trace) {
        FILE *fp = fopen(trace, "a");
        if (fp) {
            fprintf(fp, "%s %lu %s %" PRIu64 " %" PRIu64 "\n",
                    op, count, path ? path : "-", off, len);
            fclose(fp);
        }
    }
    pthread_mutex_unlock(&fault_lock);
    if (!spec || !*spec)
        return 0;
    if (sscanf(spec, "%15[a-z]:%lu:%15[a-z]", fop, &n, action) != 3)
        return 0;
    if (strcmp(fop, "any") == 0)
        count = total;
    else if (strcmp(fop, op) != 0)
        return 0;
    if (count != n)
        return 0;
    if (strcmp(action, "kill") == 0) {
        raise(SIGKILL);
        _exit(137);
    }
    if (strcmp(action, "stop") == 0) {
        raise(SIGSTOP);
        return 0;
    }
    if (strcmp(action, "enospc") == 0) {
        errno = ENOSPC;
        return -1;
    }
    if (strcmp(action, "eio") == 0) {
        errno = EIO;
        return -1;
    }
    return 0;
}
#else
/* A build without --enable-fault-injection reads no test variables. */
int
vqm_fault_point(const char *op, const char *path, uint64_t off, uint64_t len)
{
    (void) op;
    (void) path;
    (void) off;
    (void) len;
    return 0;
}
#endif

int
vqm_pread_full(int fd, void *buf, size_t len, uint64_t off, int short_ok,
               const char *path, struct vqm_error *err)
{
    char *p = buf;

    while (len > 0) {
        ssize_t r = pread(fd, p, len, (off_t) off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return vqm_error_set_errno(err, errno, "read error on '%s' at "
                                       "offset %" PRIu64, path, off);
        }
        if (r == 0) {
            if (short_ok) {
                memset(p, 0, len);
                return 0;
            }
            return vqm_error_set(err, VQM_ERR_CORRUPT,
                                 "'%s': unexpected end of file at offset %"
                                 PRIu64, path, off);
        }
        p += r;
        len -= (size_t) r;
        off += (uint64_t) r;
    }
    return 0;
}

int
vqm_pwrite_full(int fd, const void *buf, size_t len, uint64_t off,
                const char *path, struct vqm_error *err)
{
    const char *p = buf;

    if (vqm_fault_point("write", path, off, len) < 0)
        return vqm_error_set_errno(err, errno, "write error on '%s' at "
                                   "offset %" PRIu64, path, off);
    while (len > 0) {
        ssize_t r = pwrite(fd, p, len, (off_t) off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return vqm_error_set_errno(err, errno, "write error on '%s' at "
                                       "offset %" PRIu64, path, off);
        }
        if (r == 0)
            return vqm_error_set_errno(err, ENOSPC, "write error on '%s' at "
                                       "offset %" PRIu64, path, off);
        p += r;
        len -= (size_t) r;
        off += (uint64_t) r;
    }
    return 0;
}

int
vqm_sync(int fd, int full, const char *path, struct vqm_error *err)
{
    if (vqm_fault_point("sync", path, 0, 0) < 0 ||
        (full ? fsync(fd) : fdatasync(fd)) < 0)
        return vqm_error_set_errno(err, errno, "cannot sync '%s'", path);
    return 0;
}

int
vqm_sync_dir(const char *path, struct vqm_error *err)
{
    char copy[PATH_MAX];
    CLEANUP_CLOSE int fd = -1;
    const char *dir;

    if (strlen(path) >= sizeof copy)
        return vqm_error_set(err, VQM_ERR_INVALID, "path too long: '%s'", path);
    strcpy(copy, path);
    dir = dirname(copy);
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return vqm_error_set_errno(err, errno, "cannot open directory '%s'",
                                   dir);
    if (vqm_fault_point("sync", dir, 0, 0) < 0 || fsync(fd) < 0)
        return vqm_error_set_errno(err, errno, "cannot sync directory '%s'",
                                   dir);
    return 0;
}

int
vqm_create_temp(int dfd, const char *prefix, char *name, size_t namelen,
                struct vqm_error *err)
{
    static const char chars[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    unsigned char rnd[12];
    char suffix[sizeof rnd + 1];
    size_t i;
    int tries, fd;

    for (tries = 0; tries < 100; tries++) {
        if (getrandom(rnd, sizeof rnd, 0) != (ssize_t) sizeof rnd)
            return vqm_error_set_errno(err, errno, "getrandom");
        for (i = 0; i < sizeof rnd; i++)
            suffix[i] = chars[rnd[i] % (sizeof chars - 1)];
        suffix[sizeof rnd] = '\0';
        if ((size_t) snprintf(name, namelen, "%s%s", prefix, suffix)
            >= namelen)
            return vqm_error_set(err, VQM_ERR_INVALID, "temporary name "
                                 "too long");
        fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW
                    | O_CLOEXEC | O_NOCTTY, 0600);
        if (fd >= 0)
            return fd;
        if (errno != EEXIST)
            return vqm_error_set_errno(err, errno, "cannot create a "
                                       "temporary file");
    }
    return vqm_error_set(err, VQM_ERR_IO, "cannot create a temporary file: "
                         "every name tried exists");
}
