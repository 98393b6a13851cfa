/* virt-qed-migrate: QEMU-compatible image locks (formats.md section 4).
 *
 * QEMU holds shared one-byte OFD locks: 100+i for each permission it
 * holds, 200+i for each permission it refuses to share.  We take shared
 * locks on all ten bytes first and then test each with a write lock, the
 * lock-then-test order QEMU uses, so that a QEMU starting at the same
 * time fails its own test.  The locks belong to the open file
 * description: they last as long as the caller keeps fd open.
 */
#include <config.h>

#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "vqm-open.h"
#include "convert-internal.h"

static const int lock_bytes[] = {
    100, 101, 102, 103, 104, 200, 201, 202, 203, 204,
};
#define N_LOCK_BYTES (sizeof lock_bytes / sizeof lock_bytes[0])

static int
busy_error(const char *path, struct vqm_error *err)
{
    return vqm_error_set(err, VQM_ERR_BUSY,
                         "'%s' is in use by another process (QEMU lock held)",
                         path);
}

/* 1 if another open file description holds a lock on any byte. */
static int
lock_test(int fd, const char *path, struct vqm_error *err)
{
    size_t i;

    for (i = 0; i < N_LOCK_BYTES; i++) {
        struct flock fl = {
            .l_type = F_WRLCK, .l_whence = SEEK_SET,
            .l_start = lock_bytes[i], .l_len = 1, .l_pid = 0,
        };
        if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
            return vqm_error_set_errno(err, errno,
                                       "cannot test the locks of '%s'", path);
        if (fl.l_type != F_UNLCK)
            return 1;
    }
    return 0;
}

int
vqm_lock_take(int fd, const char *path, struct vqm_error *err)
{
    size_t i;
    int r;

    for (i = 0; i < N_LOCK_BYTES; i++) {
        struct flock fl = {
            .l_type = F_RDLCK, .l_whence = SEEK_SET,
            .l_start = lock_bytes[i], .l_len = 1, .l_pid = 0,
        };
        if (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
            if (errno == EAGAIN || errno == EACCES)
                return busy_error(path, err);
            return vqm_error_set_errno(err, errno, "cannot lock '%s'", path);
        }
    }
    r = lock_test(fd, path, err);
    if (r < 0)
        return -1;
    if (r > 0)
        return busy_error(path, err);
    return 0;
}

int
vqm_lock_probe(const char *path, struct vqm_error *err)
{
    struct vqm_file f;
    int r;

    if (vqm_open(path, 0, NULL, &f, err) < 0)
        return -1;
    r = lock_test(f.fd, path, err);
    vqm_file_close(&f);
    return r;
}
