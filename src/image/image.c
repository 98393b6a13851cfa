/* virt-qed-migrate: guest view of an image and its backing chain.
 *
 * Opens raw, QED and qcow2 files read-only, follows backing names under
 * the safety policy of image.h, reads guest bytes through the chain and
 * reports block status exactly as `qemu-img map --output=json` does
 * (QEMU's bdrv_block_status rules: depth of the first layer that
 * allocates a range, zeros past the end of a shorter backing file, holes
 * of raw files reported as zero through SEEK_DATA/SEEK_HOLE).
 * Invariant: a backing file is opened only after its resolved path has
 * passed every policy check; nothing of a refused file is read.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../qcow2/qcow2-reader.h"
#include "image.h"
#include "overflow.h"
#include "qed.h"
#include "vqm-io.h"

#define DEFAULT_MAX_DEPTH 16

struct vqm_image {
    char *path;                   /* as opened (resolved, not realpath) */
    enum vqm_format fmt;
    const char *fmt_name;
    int fd;
    dev_t dev;
    ino_t ino;
    bool seekable;                /* raw: SEEK_DATA/SEEK_HOLE work */
    uint64_t size;
    struct qed_image *qed;
    struct qcow2r *q2;
    struct vqm_image *backing;
};

const char *
vqm_image_format_name(const struct vqm_image *img)
{
    return img->fmt_name;
}

uint64_t
vqm_image_size(const struct vqm_image *img)
{
    return img->size;
}

const char *
vqm_image_path(const struct vqm_image *img)
{
    return img->path;
}

struct vqm_image *
vqm_image_backing(const struct vqm_image *img)
{
    return img->backing;
}

void
vqm_image_close(struct vqm_image *img)
{
    while (img) {
        struct vqm_image *next = img->backing;

        qed_close(img->qed);
        q2_close(img->q2);
        if (img->fd >= 0)
            close(img->fd);
        free(img->path);
        free(img);
        img = next;
    }
}

static enum vqm_format
format_from_name(const char *name, const char **canon)
{
    if (strcmp(name, "raw") == 0) {
        *canon = "raw";
        return VQM_FORMAT_RAW;
    }
    if (strcmp(name, "qed") == 0) {
        *canon = "qed";
        return VQM_FORMAT_QED;
    }
    if (strcmp(name, "qcow2") == 0) {
        *canon = "qcow2";
        return VQM_FORMAT_QCOW2;
    }
    *canon = NULL;
    return VQM_FORMAT_OTHER;
}

/* Open the file at open_path (already vetted by the caller when it is a
 * backing file) with the given format (NULL: probe); path is its name
 * for messages and for resolving its own backing name. */
static int
open_one(const char *path, const char *open_path, int open_flags,
         const char *format, struct vqm_image **out, struct vqm_error *err)
{
    struct vqm_image *img;
    struct stat st;
    const char *canon;
    int ret = -1;

    *out = NULL;
    img = calloc(1, sizeof *img);
    if (!img || !(img->path = strdup(path))) {
        free(img);
        return vqm_error_set_errno(err, errno, "out of memory");
    }
    img->fd = open(open_path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK |
                   open_flags);
    if (img->fd < 0) {
        vqm_error_set_errno(err, errno, "cannot open '%s'", path);
        goto out;
    }
    if (fstat(img->fd, &st) < 0) {
        vqm_error_set_errno(err, errno, "cannot stat '%s'", path);
        goto out;
    }
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
        vqm_error_set(err, VQM_ERR_INVALID, "'%s' is not a regular file or "
                      "a block device", path);
        goto out;
    }
    img->dev = st.st_dev;
    img->ino = st.st_ino;

    if (!format) {
        unsigned char buf[512];
        if (vqm_pread_full(img->fd, buf, sizeof buf, 0, 1, path, err) < 0)
            goto out;
        format = vqm_probe_format(buf, sizeof buf);
    }
    img->fmt = format_from_name(format, &canon);
    img->fmt_name = canon;
    switch (img->fmt) {
    case VQM_FORMAT_QED:
        if (qed_open_fd(img->fd, path, &img->qed, err) < 0)
            goto out;
        img->size = qed_get_info(img->qed)->image_size;
        break;
    case VQM_FORMAT_QCOW2:
        if (q2_open(img->fd, path, &img->q2, err) < 0)
            goto out;
        img->size = q2_size(img->q2);
        break;
    case VQM_FORMAT_RAW: {
        off_t end = lseek(img->fd, 0, SEEK_END);
        if (end < 0) {
            vqm_error_set_errno(err, errno, "cannot get the size of '%s'",
                                path);
            goto out;
        }
        /* QEMU counts whole 512-byte sectors. */
        img->size = vqm_align_up((uint64_t) end, 512);
        img->seekable = lseek(img->fd, 0, SEEK_DATA) >= 0 || errno == ENXIO;
        break;
    }
    default:
        vqm_error_set(err, VQM_ERR_UNSUPPORTED, "'%s': image format '%s' is "
                      "not supported", path, format);
        goto out;
    }
    *out = img;
    img = NULL;
    ret = 0;
out:
    vqm_image_close(img);
    return ret;
}

static bool
path_under(const char *path, const char *dir)
{
    size_t n = strlen(dir);

    while (n > 1 && dir[n - 1] == '/')
        n--;
    if (n == 1 && dir[0] == '/')
        return true;
    return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

static char *
dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');

    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t) (slash - path));
}

static const char *const system_dirs[] = {
    "/etc", "/proc", "/sys", "/boot", "/root", "/run", "/dev",
};

/* A backing file under a system tree is still followed when it lies in
 * the top image's own directory (or a trusted directory) and that
 * directory is strictly inside the system tree: images kept in
 * /root/vms may use /root/vms/base.img, but never /root/.ssh or /etc.
 */
static bool
inside_own_tree(const char *real, const char *sysdir, const char *top_path,
                const struct vqm_chain_policy *pol)
{
    char *d = dir_of(top_path);
    char *rd = d ? realpath(d, NULL) : NULL;
    bool ok = false;
    size_t i;

    if (rd && strlen(rd) > strlen(sysdir) && path_under(rd, sysdir) &&
        path_under(real, rd))
        ok = true;
    for (i = 0; !ok && pol && i < pol->n_trusted_dirs; i++) {
        char *t = realpath(pol->trusted_dirs[i], NULL);
        if (t && strlen(t) > strlen(sysdir) && path_under(t, sysdir) &&
            path_under(real, t))
            ok = true;
        free(t);
    }
    free(d);
    free(rd);
    return ok;
}

/* Vet the backing name of the image at child_path; on success *resolved
 * is the path to open (malloc'ed).  VQM_ERR_REFUSED for policy refusals. */
static int
vet_backing(const char *child_path, const char *top_path,
            const char *name, const struct vqm_chain_policy *pol,
            char **resolved, char **realp, struct stat *stp,
            struct vqm_error *err)
{
    char *dir = NULL, *joined = NULL, *real = NULL, *cdir = NULL;
    char *tdir = NULL;
    struct stat st;
    bool device_ok = false, trusted;
    size_t i;
    int ret = -1;
    const char *colon = strchr(name, ':'), *slash = strchr(name, '/');

    *resolved = NULL;
    *realp = NULL;
    if (strncmp(name, "json:", 5) == 0 ||
        (colon && (!slash || colon < slash) && strncmp(name, "file:", 5))) {
        vqm_error_set(err, VQM_ERR_REFUSED, "backing file '%s' of '%s' is not "
                      "a local file name (protocol prefix)", name,
                      child_path);
        goto out;
    }
    if (strncmp(name, "file:", 5) == 0)
        name += 5;
    if (name[0] == '/')
        joined = strdup(name);
    else {
        dir = dir_of(child_path);
        if (dir && asprintf(&joined, "%s/%s", dir, name) < 0)
            joined = NULL;
    }
    if (!joined) {
        vqm_error_set_errno(err, ENOMEM, "out of memory");
        goto out;
    }
    real = realpath(joined, NULL);
    if (!real) {
        vqm_error_set_errno(err, errno, "backing file '%s' of '%s' "
                            "cannot be resolved", name, child_path);
        goto out;
    }
    for (i = 0; pol && i < pol->n_allowed_devices; i++) {
        char *d = realpath(pol->allowed_devices[i], NULL);
        if (d && strcmp(d, real) == 0)
            device_ok = true;
        free(d);
    }
    if (!device_ok) {
        for (i = 0; i < sizeof system_dirs / sizeof system_dirs[0]; i++) {
            if (path_under(real, system_dirs[i]) &&
                !inside_own_tree(real, system_dirs[i], top_path, pol)) {
                vqm_error_set(err, VQM_ERR_REFUSED, "backing file '%s' of "
                              "'%s' is refused: '%s' is under %s", name,
                              child_path, real, system_dirs[i]);
                goto out;
            }
        }
    }
    if (stat(real, &st) < 0) {
        vqm_error_set_errno(err, errno, "cannot stat backing file '%s'", real);
        goto out;
    }
    if (!S_ISREG(st.st_mode) && !(device_ok && S_ISBLK(st.st_mode))) {
        vqm_error_set(err, VQM_ERR_REFUSED, "backing file '%s' of '%s' is "
                      "refused: '%s' is not a regular file", name,
                      child_path, real);
        goto out;
    }
    if (pol && pol->n_trusted_dirs > 0 && !device_ok) {
        trusted = false;
        dir = dir ? dir : dir_of(child_path);
        cdir = dir ? realpath(dir, NULL) : NULL;
        if (cdir && path_under(real, cdir))
            trusted = true;
        free(dir);
        dir = dir_of(top_path);
        tdir = dir ? realpath(dir, NULL) : NULL;
        if (tdir && path_under(real, tdir))
            trusted = true;
        for (i = 0; !trusted && i < pol->n_trusted_dirs; i++) {
            char *t = realpath(pol->trusted_dirs[i], NULL);
            if (t && path_under(real, t))
                trusted = true;
            free(t);
        }
        if (!trusted) {
            vqm_error_set(err, VQM_ERR_REFUSED, "backing file '%s' of '%s' is "
                          "refused: '%s' is outside the image's directory "
                          "and the trusted directories", name, child_path,
                          real);
            goto out;
        }
    }
    *resolved = vqm_steal(&joined);
    *realp = vqm_steal(&real);
    *stp = st;
    ret = 0;
out:
    free(dir);
    free(joined);
    free(real);
    free(cdir);
    free(tdir);
    return ret;
}

int
vqm_image_open(const char *path, const char *format, bool follow,
               const struct vqm_chain_policy *policy,
               struct vqm_image **out, struct vqm_error *err)
{
    struct vqm_image *top = NULL, *cur;
    unsigned depth = 0, max_depth;

    *out = NULL;
    max_depth = policy && policy->max_depth ? policy->max_depth :
        DEFAULT_MAX_DEPTH;
    if (open_one(path, path, 0, format, &top, err) < 0)
        return -1;
    cur = top;
    while (follow) {
        const char *name = NULL, *bfmt = NULL;
        char *resolved = NULL, *real = NULL;
        struct vqm_image *b = NULL, *p;
        struct stat st;

        if (cur->qed && qed_get_info(cur->qed)->has_backing) {
            name = qed_get_info(cur->qed)->backing_name;
            if (qed_get_info(cur->qed)->backing_no_probe)
                bfmt = "raw";
        }
        else if (cur->q2 && q2_backing_name(cur->q2)) {
            name = q2_backing_name(cur->q2);
            bfmt = q2_backing_format(cur->q2);
        }
        if (!name)
            break;
        if (++depth > max_depth) {
            vqm_error_set(err, VQM_ERR_REFUSED, "backing chain of '%s' is "
                          "deeper than %u", path, max_depth);
            goto fail;
        }
        if (vet_backing(cur->path, path, name, policy, &resolved, &real, &st,
                        err) < 0)
            goto fail;
        for (p = top; p; p = p->backing) {
            if (p->dev == st.st_dev && p->ino == st.st_ino) {
                vqm_error_set(err, VQM_ERR_REFUSED, "backing chain of '%s' "
                              "has a loop at '%s'", path, resolved);
                free(resolved);
                free(real);
                goto fail;
            }
        }
        if (bfmt) {
            const char *canon;
            if (format_from_name(bfmt, &canon) == VQM_FORMAT_OTHER) {
                vqm_error_set(err, VQM_ERR_UNSUPPORTED, "backing file '%s' "
                              "of '%s' has unsupported format '%s'",
                              resolved, cur->path, bfmt);
                free(resolved);
                free(real);
                goto fail;
            }
        }
        /* Open the vetted real path itself, and make sure it is still
         * the file that was vetted. */
        if (open_one(resolved, real, O_NOFOLLOW, bfmt, &b, err) < 0) {
            free(resolved);
            free(real);
            goto fail;
        }
        free(resolved);
        free(real);
        if (b->dev != st.st_dev || b->ino != st.st_ino) {
            vqm_error_set(err, VQM_ERR_REFUSED, "backing file '%s' changed "
                          "while it was opened", b->path);
            vqm_image_close(b);
            goto fail;
        }
        cur->backing = b;
        cur = b;
    }
    *out = top;
    return 0;
fail:
    vqm_image_close(top);
    return -1;
}

/* One layer's own status at off: what its driver would say. */
enum lkind { L_UNALLOC, L_DATA, L_ZERO, L_COMPRESSED };

struct lstat {
    enum lkind kind;
    uint64_t length;
    bool has_offset;
    uint64_t offset;
};

static int
layer_status(struct vqm_image *img, uint64_t off, uint64_t len,
             struct lstat *st, struct vqm_error *err)
{
    memset(st, 0, sizeof *st);
    if (img->qed) {
        struct qed_extent ext;
        if (qed_extent_at(img->qed, off, len, &ext, err) < 0)
            return -1;
        st->length = ext.length;
        switch (ext.kind) {
        case QED_EXTENT_DATA:
            st->kind = L_DATA;
            st->has_offset = true;
            st->offset = ext.host_offset;
            break;
        case QED_EXTENT_ZERO:
            st->kind = L_ZERO;
            break;
        default:
            st->kind = L_UNALLOC;
        }
        return 0;
    }
    if (img->q2) {
        struct q2_extent ext;
        if (q2_extent_at(img->q2, off, len, &ext, err) < 0)
            return -1;
        st->length = ext.length;
        st->has_offset = ext.has_offset;
        st->offset = ext.host_offset;
        st->kind = ext.kind == Q2_DATA ? L_DATA : ext.kind == Q2_ZERO ? L_ZERO :
            ext.kind == Q2_COMPRESSED ? L_COMPRESSED : L_UNALLOC;
        return 0;
    }
    /* raw: data and holes of the file, like file-posix. */
    st->has_offset = true;
    st->offset = off;
    st->length = len;
    st->kind = L_DATA;
    if (img->seekable) {
        off_t d = lseek(img->fd, (off_t) off, SEEK_DATA);
        if (d < 0 && errno == ENXIO)
            st->kind = L_ZERO;             /* trailing hole */
        else if (d >= 0 && (uint64_t) d == off) {
            off_t h = lseek(img->fd, (off_t) off, SEEK_HOLE);
            if (h > d && (uint64_t) (h - d) < len)
                st->length = (uint64_t) (h - d);
        }
        else if (d >= 0) {
            st->kind = L_ZERO;
            if ((uint64_t) d - off < len)
                st->length = (uint64_t) d - off;
        }
    }
    return 0;
}

/* get_block_status() of qemu-img map: one unmerged entry. */
static int
block_status(struct vqm_image *img, uint64_t off, uint64_t len,
             struct vqm_map_entry *e, struct vqm_error *err)
{
    struct vqm_image *layer = img;
    unsigned depth = 0;
    struct lstat st;

    memset(e, 0, sizeof *e);
    e->start = off;
    for (;;) {
        if (len > layer->size - off)
            len = layer->size - off;
        if (layer_status(layer, off, len, &st, err) < 0)
            return -1;
        len = st.length;
        if (st.kind != L_UNALLOC) {
            e->present = true;
            e->zero = st.kind == L_ZERO;
            e->data = st.kind == L_DATA || st.kind == L_COMPRESSED;
            e->has_offset = st.has_offset;
            e->offset = st.offset;
            break;
        }
        if (!layer->backing || off >= layer->backing->size) {
            e->zero = true;
            break;
        }
        layer = layer->backing;
        depth++;
    }
    e->depth = depth;
    e->length = len;
    return 0;
}

static bool
mergeable(const struct vqm_map_entry *a, const struct vqm_map_entry *b)
{
    if (a->zero != b->zero || a->data != b->data || a->depth != b->depth ||
        a->present != b->present || a->has_offset != b->has_offset)
        return false;
    if (a->has_offset && a->offset + a->length != b->offset)
        return false;
    return true;
}

int
vqm_image_map_at(struct vqm_image *img, uint64_t off, struct vqm_map_entry *e,
                 struct vqm_error *err)
{
    struct vqm_map_entry next;

    if (off >= img->size)
        return vqm_error_set(err, VQM_ERR_INVALID, "'%s': offset %" PRIu64
                             " past the end of the image", img->path, off);
    if (block_status(img, off, img->size - off, e, err) < 0)
        return -1;
    while (e->start + e->length < img->size) {
        uint64_t pos = e->start + e->length;
        if (block_status(img, pos, img->size - pos, &next, err) < 0)
            return -1;
        if (!mergeable(e, &next))
            break;
        e->length += next.length;
    }
    return 0;
}

int
vqm_image_read(struct vqm_image *img, uint64_t off, void *buf, size_t len,
               struct vqm_error *err)
{
    char *p = buf;

    if (off > img->size || len > img->size - off)
        return vqm_error_set(err, VQM_ERR_INVALID, "'%s': read of %zu bytes "
                             "at %" PRIu64 " past the end of the image",
                             img->path, len, off);
    if (img->fmt == VQM_FORMAT_RAW)
        return vqm_pread_full(img->fd, buf, len, off, 1, img->path, err);
    while (len > 0) {
        struct lstat st;
        size_t n;

        if (layer_status(img, off, len, &st, err) < 0)
            return -1;
        n = (size_t) st.length;
        switch (st.kind) {
        case L_DATA:
        case L_COMPRESSED:
            if (img->qed) {
                if (qed_read(img->qed, off, p, n, err) < 0)
                    return -1;
            }
            else if (q2_read(img->q2, off, p, n, err) < 0)
                return -1;
            break;
        case L_ZERO:
            memset(p, 0, n);
            break;
        case L_UNALLOC:
            if (img->backing && off < img->backing->size) {
                uint64_t avail = img->backing->size - off;
                size_t m = n < avail ? n : (size_t) avail;
                if (vqm_image_read(img->backing, off, p, m, err) < 0)
                    return -1;
                memset(p + m, 0, n - m);
            }
            else
                memset(p, 0, n);
            break;
        }
        p += n;
        off += n;
        len -= n;
    }
    return 0;
}

int
vqm_image_vet_backing(const char *image_path, const char *top_path,
                      const char *name, const struct vqm_chain_policy *policy,
                      char **resolved, struct vqm_error *err)
{
    char *real = NULL;
    struct stat st;
    int r;

    r = vet_backing(image_path, top_path, name, policy, resolved, &real,
                    &st, err);
    free(real);
    return r;
}
