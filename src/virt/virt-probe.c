/* virt-qed-migrate: what an image file is, read from its header.
 *
 * libvirt's idea of a volume's format is only a hint (it cannot describe
 * QED overlays over non-raw files at all), so discovery reads the first
 * bytes itself.  QED headers go through the shared reader (src/qed),
 * and qcow2 headers through the shared parser (src/qcow2), which
 * validate them the same way for every mode.  Only regular files
 * and block devices are opened; nothing is ever written.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/fs.h>

#include "cleanup.h"
#include "vqm-open.h"
#include "qcow2/qcow2-reader.h"
#include "qed/qed.h"
#include "virt.h"

#define PROBE_LEN 65536

void
vqm_probe_clear(struct vqm_probe *p)
{
    free(p->format);
    free(p->backing_name);
    free(p->backing_format);
    memset(p, 0, sizeof *p);
}

/* qcow2: the shared header parser (src/qcow2) reads the first cluster
 * and checks every offset before it is used. */
static int
probe_qcow2(int fd, const char *path, struct vqm_probe *p,
            struct vqm_error *err)
{
    struct qcow2_header h;

    if (qcow2_header_read(fd, path, &h, NULL, err) < 0)
        return -1;
    p->virtual_size = h.size;
    if ((h.backing_name[0] && !(p->backing_name = strdup(h.backing_name)))
        || (h.backing_format[0]
            && !(p->backing_format = strdup(h.backing_format))))
        return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    return 0;
}

int
vqm_probe_file(const char *path, struct vqm_probe *p, struct vqm_error *err)
{
    CLEANUP_CLOSE int fd = -1;
    struct vqm_file f = { .fd = -1 };

    memset(p, 0, sizeof *p);
    /* Never a FIFO, a socket or a character device, never through a
     * symlink someone else planted (vqm_open looks before it opens). */
    if (vqm_open(path, 0, NULL, &f, err) < 0)
        return -1;
    fd = f.fd;
    f.fd = -1;
    free(f.real);
    return vqm_probe_fd(fd, path, p, err);
}

int
vqm_probe_fd(int fd, const char *path, struct vqm_probe *p,
             struct vqm_error *err)
{
    CLEANUP_FREE unsigned char *buf = NULL;
    struct stat st;
    ssize_t r;
    size_t len = 0;
    const char *fmt;

    memset(p, 0, sizeof *p);
    if (fstat(fd, &st) < 0)
        return vqm_error_set_errno(err, errno, "cannot stat '%s'", path);
    if (S_ISBLK(st.st_mode)) {
        uint64_t sz = 0;

        p->block_device = true;
        if (ioctl(fd, BLKGETSIZE64, &sz) == 0)
            p->file_size = sz;
    } else if (S_ISREG(st.st_mode)) {
        p->file_size = (uint64_t) st.st_size;
    } else {
        return vqm_error_set(err, VQM_ERR_REFUSED,
                             "'%s' is neither a regular file nor a block "
                             "device", path);
    }
    p->dev = st.st_dev;
    p->ino = st.st_ino;

    if (!(buf = calloc(1, PROBE_LEN)))
        return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    while (len < PROBE_LEN) {
        r = pread(fd, buf + len, PROBE_LEN - len, (off_t) len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return vqm_error_set_errno(err, errno, "cannot read '%s'",
                                       path);
        if (r == 0)
            break;
        len += (size_t) r;
    }

    fmt = vqm_probe_format(buf, len);
    if (!(p->format = strdup(fmt)))
        return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");

    if (strcmp(fmt, "qed") == 0) {
        struct qed_image *q = NULL;
        const struct qed_info *info;

        if (qed_open_fd(fd, path, &q, err) < 0)
            return -1;
        info = qed_get_info(q);
        p->virtual_size = info->image_size;
        if (info->has_backing && info->backing_name) {
            p->backing_name = strdup(info->backing_name);
            if (info->backing_no_probe)
                p->backing_format = strdup("raw");
        }
        qed_close(q);
        return 0;
    }
    if (strcmp(fmt, "qcow2") == 0)
        return probe_qcow2(fd, path, p, err);
    if (strcmp(fmt, "raw") == 0)
        p->virtual_size = p->file_size;
    return 0;
}
