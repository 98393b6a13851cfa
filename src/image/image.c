/* virt-qed-migrate: guest view of an image and its backing chain.
 *
 * Opens raw, QED and qcow2 files read-only, follows backing names under
 * the safety policy of image.h, reads guest bytes through the chain and
 * reports block status exactly as `qemu-img map --output=json` does
 * (QEMU's bdrv_block_status rules: depth of the first layer that
 * allocates a range, zeros past the end of a shorter backing file, holes
 * of raw files reported as zero through SEEK_DATA/SEEK_HOLE).
 * Every file is opened once, through vqm_open (src/common/vqm-open.h):
 * resolved without following symlinks others planted, judged on its
 * descriptor.  A backing file is opened on behalf of the owner of the
 * image naming it (it must be able to reach and read it) and under the
 * policy of image.h.  Invariant: a backing file is opened for I/O only
 * after its resolved name and its type passed every check; nothing of a
 * refused file is read.
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

#include "qcow2/qcow2-reader.h"
#include "cleanup.h"
#include "image.h"
#include "overflow.h"
#include "qed/qed.h"
#include "vqm-io.h"
#include "vqm-open.h"

#define DEFAULT_MAX_DEPTH 16

struct vqm_image {
    char *path;                   /* as named (for messages) */
    char *real;                   /* as resolved when opened */
    uid_t uid;                    /* owner of the open file */
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

const char *
vqm_image_real(const struct vqm_image *img)
{
    return img->real;
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
        free(img->real);
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

/* Make an image of the opened file f (its descriptor is taken) with the
 * given format (NULL: probe); path is its name for messages. */
static int
open_one(const char *path, struct vqm_file *f, const char *format,
         struct vqm_image **out, struct vqm_error *err)
{
    struct vqm_image *img;
    const char *canon;
    int ret = -1;

    *out = NULL;
    img = calloc(1, sizeof *img);
    if (!img || !(img->path = strdup(path))) {
        free(img);
        vqm_file_close(f);
        return vqm_error_set_errno(err, errno, "out of memory");
    }
    img->fd = f->fd;
    img->real = f->real;
    f->fd = -1;
    f->real = NULL;
    img->dev = f->st.st_dev;
    img->ino = f->st.st_ino;
    img->uid = f->st.st_uid;

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
 * top_dir is the resolved directory of the top image.
 */
static bool
inside_own_tree(const char *real, const char *sysdir, const char *top_dir,
                const struct vqm_chain_policy *pol)
{
    bool ok = false;
    size_t i;

    if (strlen(top_dir) > strlen(sysdir) && path_under(top_dir, sysdir) &&
        path_under(real, top_dir))
        ok = true;
    for (i = 0; !ok && pol && i < pol->n_trusted_dirs; i++) {
        char *t = realpath(pol->trusted_dirs[i], NULL);
        if (t && strlen(t) > strlen(sysdir) && path_under(t, sysdir) &&
            path_under(real, t))
            ok = true;
        free(t);
    }
    return ok;
}

/* What the policy needs to judge one backing file. */
struct vet_ctx {
    const char *name;             /* the backing name, for messages */
    const char *child_path;       /* the image naming it, for messages */
    const char *child_dir;        /* its resolved directory */
    const char *top_dir;          /* the top image's resolved directory */
    const struct vqm_chain_policy *pol;
    bool lexical;                 /* judging the name before resolving */
    bool failed;                  /* the error is the policy's */
};

/* The system trees, the trusted directories, the allowed devices: judged
 * on the resolved name and the stat of the object found, before it is
 * opened for I/O (vqm_open_vetted's callback). */
static int
vet_resolved(void *opaque, const char *real, const struct stat *st,
             struct vqm_error *err)
{
    struct vet_ctx *v = opaque;
    const struct vqm_chain_policy *pol = v->pol;
    bool device_ok = false, trusted;
    size_t i;

    v->failed = true;
    if (v->lexical && pol && pol->n_allowed_devices > 0 &&
        path_under(real, "/dev")) {
        v->failed = false;
        return 0;
    }
    for (i = 0; S_ISBLK(st->st_mode) && pol && i < pol->n_allowed_devices;
         i++) {
        struct stat ds;
        if (stat(pol->allowed_devices[i], &ds) == 0 && S_ISBLK(ds.st_mode) &&
            ds.st_rdev == st->st_rdev)
            device_ok = true;
    }
    if (!device_ok) {
        for (i = 0; i < sizeof system_dirs / sizeof system_dirs[0]; i++) {
            if (path_under(real, system_dirs[i]) &&
                !inside_own_tree(real, system_dirs[i], v->top_dir, pol))
                return vqm_error_set(err, VQM_ERR_REFUSED, "backing file "
                                     "'%s' of '%s' is refused: '%s' is under "
                                     "%s", v->name, v->child_path, real,
                                     system_dirs[i]);
        }
    }
    if (!S_ISREG(st->st_mode) && !device_ok)
        return vqm_error_set(err, VQM_ERR_REFUSED, "backing file '%s' of "
                             "'%s' is refused: '%s' is not a regular file "
                             "(it is a %s)", v->name, v->child_path, real,
                             vqm_file_type_name(st->st_mode));
    if (pol && pol->n_trusted_dirs > 0 && !device_ok && !v->lexical) {
        trusted = path_under(real, v->child_dir) ||
            path_under(real, v->top_dir);
        for (i = 0; !trusted && i < pol->n_trusted_dirs; i++) {
            char *t = realpath(pol->trusted_dirs[i], NULL);
            if (t && path_under(real, t))
                trusted = true;
            free(t);
        }
        if (!trusted)
            return vqm_error_set(err, VQM_ERR_REFUSED, "backing file '%s' of "
                                 "'%s' is refused: '%s' is outside the "
                                 "image's directory and the trusted "
                                 "directories", v->name, v->child_path,
                                 real);
    }
    v->failed = false;
    return 0;
}

/* Resolve and open the backing name of child under the policy and the
 * trust rule: the file is opened on behalf of the owner of child (the
 * uid of its open descriptor), so it must be reachable and readable by
 * that user (vqm-open.h).  On success *f is open and *display is the name
 * for messages (relative names joined to the child's name, malloc'ed).
 * VQM_ERR_REFUSED for refusals; nothing of a refused file is read.
 */
static int
open_backing(const struct vqm_image *child, const struct vqm_image *top,
             const char *name, const struct vqm_chain_policy *pol,
             struct vqm_file *f, char **display, struct vqm_error *err)
{
    CLEANUP_FREE char *dir = NULL;
    CLEANUP_FREE char *rdir = NULL;
    CLEANUP_FREE char *tdir = NULL;
    CLEANUP_FREE char *abs = NULL;
    CLEANUP_FREE char *joined = NULL;
    struct vqm_reader reader, *rp = NULL;
    struct vqm_error e2 = { 0 };
    struct vet_ctx v;
    const char *colon = strchr(name, ':'), *slash = strchr(name, '/');
    int r;

    *display = NULL;
    f->fd = -1;
    f->real = NULL;
    if (strncmp(name, "json:", 5) == 0 ||
        (colon && (!slash || colon < slash) && strncmp(name, "file:", 5)))
        return vqm_error_set(err, VQM_ERR_REFUSED, "backing file '%s' of '%s' "
                             "is not a local file name (protocol prefix)",
                             name, child->path);
    if (strncmp(name, "file:", 5) == 0)
        name += 5;
    if (!(dir = dir_of(child->path)) || !(rdir = dir_of(child->real)) ||
        !(tdir = dir_of(top->real)))
        return vqm_error_set_errno(err, ENOMEM, "out of memory");
    if (name[0] == '/') {
        joined = strdup(name);
        abs = strdup(name);
    } else if (asprintf(&joined, "%s/%s", dir, name) < 0 ||
               asprintf(&abs, "%s/%s", rdir, name) < 0) {
        joined = abs = NULL;
    }
    if (!joined || !abs)
        return vqm_error_set_errno(err, ENOMEM, "out of memory");

    v.name = name;
    v.child_path = child->path;
    v.child_dir = rdir;
    v.top_dir = tdir;
    v.pol = pol;
    v.lexical = true;
    v.failed = false;
    /* The system trees by name first: nothing under them is resolved. */
    {
        char *lex = strdup(abs);
        struct stat fake = { .st_mode = S_IFREG };
        if (!lex)
            return vqm_error_set_errno(err, ENOMEM, "out of memory");
        vqm_path_normalize(lex);
        r = vet_resolved(&v, lex, &fake, err);
        free(lex);
        if (r < 0)
            return -1;
        v.lexical = false;
    }
    if (child->uid != 0) {
        if (vqm_reader_init(&reader, child->uid, err) < 0)
            return -1;
        rp = &reader;
    }
    r = vqm_open_vetted(abs, 0, rp, vet_resolved, &v, f, &e2);
    if (rp)
        vqm_reader_free(rp);
    if (r < 0) {
        const char *msg = e2.msg, *tail = strstr(msg, "' is refused: ");

        if (v.failed) {
            if (err)
                *err = e2;
            return -1;
        }
        if (e2.errnum)
            return vqm_error_set_errno(err, e2.errnum, "backing file '%s' of "
                                       "'%s' cannot be resolved", name,
                                       child->path);
        if (msg[0] == '\'' && tail)
            msg = tail + strlen("' is refused: ");
        return vqm_error_set(err, VQM_ERR_REFUSED, "backing file '%s' of '%s' "
                             "is refused: %s", name, child->path, msg);
    }
    *display = vqm_steal(&joined);
    return 0;
}

/* Follow the backing chain of top (opened) under the policy. */
static int
follow_chain(struct vqm_image *top, const struct vqm_chain_policy *policy,
             struct vqm_error *err)
{
    struct vqm_image *cur = top;
    unsigned depth = 0, max_depth;

    max_depth = policy && policy->max_depth ? policy->max_depth :
        DEFAULT_MAX_DEPTH;
    for (;;) {
        const char *name = NULL, *bfmt = NULL;
        CLEANUP_FREE char *display = NULL;
        struct vqm_image *b = NULL, *p;
        struct vqm_file f;

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
            return 0;
        if (++depth > max_depth)
            return vqm_error_set(err, VQM_ERR_REFUSED, "backing chain of '%s' "
                                 "is deeper than %u", top->path, max_depth);
        if (bfmt) {
            const char *canon;
            if (format_from_name(bfmt, &canon) == VQM_FORMAT_OTHER)
                return vqm_error_set(err, VQM_ERR_UNSUPPORTED, "backing file "
                                     "'%s' of '%s' has unsupported format "
                                     "'%s'", name, cur->path, bfmt);
        }
        if (open_backing(cur, top, name, policy, &f, &display, err) < 0)
            return -1;
        for (p = top; p; p = p->backing) {
            if (p->dev == f.st.st_dev && p->ino == f.st.st_ino) {
                vqm_file_close(&f);
                return vqm_error_set(err, VQM_ERR_REFUSED, "backing chain of "
                                     "'%s' has a loop at '%s'", top->path,
                                     display);
            }
        }
        if (open_one(display, &f, bfmt, &b, err) < 0)
            return -1;
        cur->backing = b;
        cur = b;
    }
}

/* The top image from the opened file f (taken), and its chain. */
static int
open_top(const char *path, struct vqm_file *f, const char *format,
         bool follow, const struct vqm_chain_policy *policy,
         struct vqm_image **out, struct vqm_error *err)
{
    struct vqm_image *top = NULL;

    if (open_one(path, f, format, &top, err) < 0)
        return -1;
    if (follow && follow_chain(top, policy, err) < 0) {
        vqm_image_close(top);
        return -1;
    }
    *out = top;
    return 0;
}

int
vqm_image_open(const char *path, const char *format, bool follow,
               const struct vqm_chain_policy *policy,
               struct vqm_image **out, struct vqm_error *err)
{
    struct vqm_file f;

    *out = NULL;
    if (vqm_open(path, 0, NULL, &f, err) < 0)
        return -1;
    return open_top(path, &f, format, follow, policy, out, err);
}

int
vqm_image_open_fd(int fd, const char *path, const char *real,
                  const char *format, bool follow,
                  const struct vqm_chain_policy *policy,
                  struct vqm_image **out, struct vqm_error *err)
{
    struct vqm_file f;

    *out = NULL;
    f.fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (f.fd < 0)
        return vqm_error_set_errno(err, errno, "cannot open '%s'", path);
    f.real = strdup(real);
    if (!f.real || fstat(f.fd, &f.st) < 0) {
        vqm_error_set_errno(err, f.real ? errno : ENOMEM, "cannot open '%s'",
                            path);
        vqm_file_close(&f);
        return -1;
    }
    return open_top(path, &f, format, follow, policy, out, err);
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
    struct vqm_image *child = NULL, *top = NULL;
    struct vqm_file f;
    int r = -1;

    *resolved = NULL;
    if (vqm_image_open(image_path, "raw", false, NULL, &child, err) < 0)
        return -1;
    if (strcmp(top_path, image_path) != 0 &&
        vqm_image_open(top_path, "raw", false, NULL, &top, err) < 0)
        goto out;
    if (open_backing(child, top ? top : child, name, policy, &f, resolved,
                     err) < 0)
        goto out;
    vqm_file_close(&f);
    r = 0;
 out:
    vqm_image_close(child);
    vqm_image_close(top);
    return r;
}
