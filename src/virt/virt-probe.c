/* virt-qed-migrate: what an image file is, read from its header.
 *
 * libvirt's idea of a volume's format is only a hint (it cannot describe
 * QED overlays over non-raw files at all), so discovery reads the first
 * bytes itself.  QED headers go through the shared reader (src/qed),
 * which validates them; qcow2 headers are read just far enough to know
 * the backing file name and recorded backing format.  Only regular files
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
#include "qed/qed.h"
#include "virt.h"

#define PROBE_LEN 65536
#define QCOW2_EXT_BACKING_FORMAT 0xE2792ACAu

void
vqm_probe_clear(struct vqm_probe *p)
{
    free(p->format);
    free(p->backing_name);
    free(p->backing_format);
    memset(p, 0, sizeof *p);
}

static uint32_t
be32(const unsigned char *b)
{
    return (uint32_t) b[0] << 24 | (uint32_t) b[1] << 16
        | (uint32_t) b[2] << 8 | b[3];
}

static uint64_t
be64(const unsigned char *b)
{
    return (uint64_t) be32(b) << 32 | be32(b + 4);
}

static char *
strndup_checked(const unsigned char *b, size_t len)
{
    char *s = malloc(len + 1);

    if (!s)
        return NULL;
    memcpy(s, b, len);
    s[len] = '\0';
    return s;
}

/* qcow2 (v2/v3): backing file name and the backing format extension. */
static int
probe_qcow2(const char *path, const unsigned char *b, size_t len,
            struct vqm_probe *p, struct vqm_error *err)
{
    uint32_t version, bsize, hlen;
    uint64_t boff;
    size_t off;

    if (len < 72)
        return vqm_error_set(err, VQM_ERR_CORRUPT,
                             "'%s': qcow2 header truncated", path);
    version = be32(b + 4);
    boff = be64(b + 8);
    bsize = be32(b + 16);
    p->virtual_size = be64(b + 24);
    if (boff && bsize) {
        if (bsize > 1023 || boff + bsize > len)
            return vqm_error_set(err, VQM_ERR_CORRUPT,
                                 "'%s': qcow2 backing file name out of "
                                 "bounds", path);
        if (!(p->backing_name = strndup_checked(b + boff, bsize)))
            return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    }
    hlen = version >= 3 && len >= 104 ? be32(b + 100) : 72;
    off = hlen;
    while (off + 8 <= len && off < 65536) {
        uint32_t type = be32(b + off), elen = be32(b + off + 4);

        if (type == 0)
            break;
        if (off + 8 + elen > len)
            break;
        if (type == QCOW2_EXT_BACKING_FORMAT && elen > 0 && elen < 64) {
            free(p->backing_format);
            p->backing_format = strndup_checked(b + off + 8, elen);
        }
        off += 8 + ((elen + 7) & ~7u);
    }
    return 0;
}

int
vqm_probe_file(const char *path, struct vqm_probe *p, struct vqm_error *err)
{
    CLEANUP_CLOSE int fd = -1;
    CLEANUP_FREE unsigned char *buf = NULL;
    struct stat st;
    ssize_t r;
    size_t len = 0;
    const char *fmt;

    memset(p, 0, sizeof *p);
    fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return vqm_error_set_errno(err, errno, "cannot open '%s'", path);
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
        return probe_qcow2(path, buf, len, p, err);
    if (strcmp(fmt, "raw") == 0)
        p->virtual_size = p->file_size;
    return 0;
}
