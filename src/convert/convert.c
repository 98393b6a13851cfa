/* virt-qed-migrate: the conversion engine, front part.
 *
 * vqm_convert opens and locks the image, checks it completely, settles
 * the backing file (name and explicit format, under the chain safety
 * policy), decides between in place and copy, and hands over to
 * convert-inplace.c or convert-copy.c.  Invariant: nothing is written
 * before every check has passed, and the source's fd keeps QEMU's locks
 * until the end.  Also: vqm_qcow2_set_backing, and the helpers shared by
 * both modes (extents with --repair, hashing, comparing).
 */
#include <config.h>

#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <pthread.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "cleanup.h"
#include "overflow.h"
#include "vqm-debug.h"
#include "vqm-endian.h"
#include "vqm-io.h"
#include "vqm-open.h"
#include "convert-internal.h"
#include "qcow2/qcow2-reader.h"

#define IO_CHUNK (1u << 20)

void
conv_progress(struct conv *c, uint64_t add)
{
    c->progress_done += add;
    if (c->progress_done > c->progress_total)
        c->progress_done = c->progress_total;
    if (c->o->progress)
        c->o->progress(c->o->progress_opaque, c->progress_done,
                       c->progress_total);
}

bool
conv_is_zero(const void *buf, size_t len)
{
    const unsigned char *p = buf;
    const uint64_t *w;
    size_t i;

    while (len > 0 && ((uintptr_t) p & 7)) {
        if (*p)
            return false;
        p++;
        len--;
    }
    w = (const uint64_t *) (const void *) p;
    for (i = 0; i + 4 <= len / 8; i += 4)
        if (w[i] | w[i + 1] | w[i + 2] | w[i + 3])
            return false;
    for (; i < len / 8; i++)
        if (w[i])
            return false;
    for (i = len & ~(size_t) 7; i < len; i++)
        if (p[i])
            return false;
    return true;
}

/* The QED extent at off; with --repair, a cluster whose entries are
 * invalid is dropped (read as unallocated, as QEMU's repair does) and
 * counted.
 */
int
conv_extent_at(struct conv *c, uint64_t off, uint64_t max_len,
               struct qed_extent *e, struct vqm_error *err)
{
    struct vqm_error e2 = { 0 };
    uint64_t cs = c->info->cluster_size, len;

    if (qed_extent_at(c->qed, off, max_len, e, &e2) == 0)
        return 0;
    if (!c->o->repair || e2.code != VQM_ERR_CORRUPT) {
        if (err)
            *err = e2;
        return -1;
    }
    len = cs - off % cs;
    if (len > c->info->image_size - off)
        len = c->info->image_size - off;
    if (max_len && len > max_len)
        len = max_len;
    e->offset = off;
    e->length = len;
    e->kind = QED_EXTENT_UNALLOCATED;
    e->host_offset = 0;
    /* The run failed somewhere: this one cluster may still be fine. */
    {
        uint64_t entry;
        struct vqm_error e3 = { 0 };

        if (qed_lookup(c->qed, off, &entry, &e3) == 0) {
            if (entry == QED_ZERO_ENTRY) {
                e->kind = QED_EXTENT_ZERO;
            } else if (entry != 0) {
                e->kind = QED_EXTENT_DATA;
                e->host_offset = entry + off % cs;
            }
            return 0;
        }
    }
    if (off % cs == 0)
        c->res->dropped_clusters++;
    vqm_debug("repair: dropped the cluster at guest offset %" PRIu64
              ": %s", off, e2.msg);
    return 0;
}

/* The digest of --verify=full: XXH3-128 (libxxhash) over the guest data
 * in 64 KiB blocks.  Each block is fed as a one-byte tag and its length,
 * followed by its bytes when it holds data; an all-zero block is fed as
 * its tag and length alone, so holes need not be read and a terabyte of
 * zeros costs nothing.  Both sides of a verification use this function,
 * so equal guest data gives equal digests.
 */
#define HASH_BLOCK 65536u
enum { HASH_TAG_ZERO = 0, HASH_TAG_DATA = 1 };

static void
hash_record(XXH3_state_t *st, uint8_t tag, const void *buf, uint64_t len)
{
    uint8_t head[9];

    head[0] = tag;
    vqm_st_le64(head + 1, len);
    XXH3_128bits_update(st, head, sizeof head);
    if (tag == HASH_TAG_DATA)
        XXH3_128bits_update(st, buf, (size_t) len);
}

/* How many bytes from off of a map entry that has data in the top
 * image lie in a hole of that file (0: it has data at off); *len is
 * capped to where that changes.  holes NULL: 0.
 */
static uint64_t
top_hole(struct conv_holes *holes, const struct vqm_map_entry *m,
         uint64_t *len)
{
    uint64_t run;
    bool data;

    if (!holes || !m->data || m->depth != 0 || !m->has_offset)
        return 0;
    data = conv_holes_at(holes, m->offset, &run);
    if (run < *len)
        *len = run;
    return data ? 0 : *len;
}

/* Add the guest bytes [off, off + n) of one block to buf + (off % block):
 * zeros where the map says so or where the top file has a hole, the
 * bytes read elsewhere.  *zero stays true while all of it is zero. */
static int
hash_fill(struct vqm_image *img, struct conv_holes *holes, uint64_t off,
          uint64_t n, uint8_t *buf, bool *zero, struct vqm_error *err)
{
    while (n > 0) {
        struct vqm_map_entry m;
        uint64_t len;

        if (vqm_image_map_at(img, off, &m, err) < 0)
            return -1;
        len = m.length;
        if (len == 0 || len > n)
            len = n;
        if ((!m.data && m.zero) || top_hole(holes, &m, &len)) {
            memset(buf, 0, len);
        } else {
            if (vqm_image_read(img, off, buf, len, err) < 0)
                return -1;
            if (*zero && !conv_is_zero(buf, len))
                *zero = false;
        }
        buf += len;
        off += len;
        n -= len;
    }
    return 0;
}

/* The digest of --verify=full.  The guest data is cut into aligned
 * HASH_BLOCKs; a block that holds any nonzero byte is fed as a DATA
 * record with its bytes, and every maximal run of all-zero blocks as one
 * ZERO record with its length.  The records depend only on the guest
 * data, not on how the map of either image cuts it, and runs of zeros
 * that the map (or the file's holes, with holes not NULL) shows are not
 * read.
 */
int
conv_hash_image(struct vqm_image *img, struct conv_holes *holes,
                struct conv_digest *digest, struct vqm_error *err)
{
    uint64_t size = vqm_image_size(img), off = 0, zeros = 0;
    CLEANUP_FREE uint8_t *buf = malloc(HASH_BLOCK);
    XXH3_state_t *st = XXH3_createState();
    XXH128_hash_t h;
    int ret = -1;

    if (!buf || !st) {
        vqm_error_set_errno(err, ENOMEM, "hash");
        goto out;
    }
    XXH3_128bits_reset(st);
    while (off < size) {
        uint64_t n = HASH_BLOCK - off % HASH_BLOCK;
        bool zero = true;
        struct vqm_map_entry m;
        uint64_t len;

        if (n > size - off)
            n = size - off;
        /* Whole blocks of zeros in one step. */
        if (off % HASH_BLOCK == 0) {
            if (vqm_image_map_at(img, off, &m, err) < 0)
                goto out;
            len = m.length;
            if (len == 0 || len > size - off)
                len = size - off;
            if ((!m.data && m.zero) || top_hole(holes, &m, &len)) {
                if (len < size - off)
                    len &= ~(uint64_t) (HASH_BLOCK - 1);
                if (len > 0) {
                    zeros += len;
                    off += len;
                    continue;
                }
            }
        }
        if (hash_fill(img, holes, off, n, buf, &zero, err) < 0)
            goto out;
        if (zero) {
            zeros += n;
        } else {
            if (zeros) {
                hash_record(st, HASH_TAG_ZERO, NULL, zeros);
                zeros = 0;
            }
            hash_record(st, HASH_TAG_DATA, buf, n);
        }
        off += n;
    }
    if (zeros)
        hash_record(st, HASH_TAG_ZERO, NULL, zeros);
    h = XXH3_128bits_digest(st);
    digest->lo = h.low64;
    digest->hi = h.high64;
    ret = 0;
out:
    XXH3_freeState(st);
    return ret;
}

int
conv_compare_images(struct vqm_image *a, struct conv_holes *holes,
                    struct vqm_image *b, const char *what,
                    struct vqm_error *err)
{
    uint64_t size = vqm_image_size(a), off = 0;
    CLEANUP_FREE uint8_t *ba = malloc(IO_CHUNK);
    CLEANUP_FREE uint8_t *bb = malloc(IO_CHUNK);

    if (!ba || !bb)
        return vqm_error_set_errno(err, ENOMEM, "compare");
    if (vqm_image_size(b) != size)
        return vqm_error_set(err, VQM_ERR_INTERNAL,
                             "verification failed: %s: sizes differ "
                             "(%" PRIu64 " and %" PRIu64 ")", what, size,
                             vqm_image_size(b));
    while (off < size) {
        struct vqm_map_entry ma, mb;
        uint64_t len;

        if (vqm_image_map_at(a, off, &ma, err) < 0 ||
            vqm_image_map_at(b, off, &mb, err) < 0)
            return -1;
        len = ma.length < mb.length ? ma.length : mb.length;
        if (len == 0 || len > size - off)
            len = size - off;
        if (((!ma.data && ma.zero) || top_hole(holes, &ma, &len)) &&
            !mb.data && mb.zero) {
            off += len;
            continue;
        }
        if (len > IO_CHUNK)
            len = IO_CHUNK;
        if (vqm_image_read(a, off, ba, len, err) < 0 ||
            vqm_image_read(b, off, bb, len, err) < 0)
            return -1;
        if (memcmp(ba, bb, len) != 0)
            return vqm_error_set(err, VQM_ERR_INTERNAL,
                                 "verification failed: %s: guest data "
                                 "differs near offset %" PRIu64, what, off);
        off += len;
    }
    return 0;
}

static void
problem_cb(void *opaque, enum qed_problem_kind kind, const char *msg)
{
    struct conv *c = opaque;

    if (kind == QED_PROBLEM_CORRUPTION && !c->first_problem[0])
        snprintf(c->first_problem, sizeof c->first_problem, "%s", msg);
    if (kind == QED_PROBLEM_CORRUPTION && c->o->repair && c->o->dropped)
        c->o->dropped(c->o->dropped_opaque, msg);
    vqm_debug("check: %s", msg);
}

static bool
dir_equal(const char *a, const char *b)
{
    char ca[PATH_MAX], cb[PATH_MAX], ra[PATH_MAX], rb[PATH_MAX];

    snprintf(ca, sizeof ca, "%s", a);
    snprintf(cb, sizeof cb, "%s", b);
    if (!realpath(dirname(ca), ra) || !realpath(dirname(cb), rb))
        return false;
    return strcmp(ra, rb) == 0;
}

/* Settle what the qcow2 will record as backing file and format. */
static int
settle_backing(struct conv *c, const char *output, struct vqm_error *err)
{
    const struct qed_info *info = c->info;
    const struct vqm_convert_opts *o = c->o;
    const char *fmt = NULL;

    c->bname = NULL;
    c->bfmt = NULL;
    if (o->flatten && o->mode == VQM_CONVERT_COPY)
        return 0;
    if (o->new_backing_name) {
        c->bname = o->new_backing_name;
        c->bname_len = strlen(c->bname);
        fmt = o->new_backing_format;
    } else if (info->has_backing) {
        c->bname = info->backing_name;
        c->bname_len = info->backing_filename_size;
        if (strlen(info->backing_name) < c->bname_len)
            c->bname_len = strlen(info->backing_name);
        /* A relative name in a copy written elsewhere: make it absolute. */
        if (output && c->bname[0] != '/' && !dir_equal(c->path, output)) {
            struct vqm_image *b = c->chain ? vqm_image_backing(c->chain) : NULL;
            if (b && strlen(vqm_image_real(b)) < sizeof c->bname_buf) {
                strcpy(c->bname_buf, vqm_image_real(b));
                c->bname = c->bname_buf;
                c->bname_len = strlen(c->bname_buf);
            }
        }
    } else {
        return 0;
    }
    if (!fmt && !o->new_backing_name && info->backing_no_probe)
        fmt = "raw";
    if (!fmt)
        fmt = o->backing_format;
    if (!fmt && c->chain && vqm_image_backing(c->chain))
        fmt = vqm_image_format_name(vqm_image_backing(c->chain));
    if (!fmt || !*fmt)
        return vqm_error_set(err, VQM_ERR_UNSUPPORTED,
                             "'%s': the format of backing file '%s' is "
                             "unknown", c->path, c->bname);
    snprintf(c->bfmt_buf, sizeof c->bfmt_buf, "%s", fmt);
    c->bfmt = c->bfmt_buf;
    return 0;
}

static int
open_source(struct conv *c, bool rw, struct vqm_error *err)
{
    struct vqm_file f;

    /* Resolved without others' symlinks, FIFOs, sockets and character
     * devices refused before anything is opened (vqm-open.h). */
    if (vqm_open(c->path, rw ? VQM_OPEN_RDWR : 0, NULL, &f, err) < 0)
        return -1;
    c->fd = f.fd;
    c->real = f.real;
    c->st = f.st;
    c->is_blk = S_ISBLK(c->st.st_mode);
    if (c->is_blk) {
        uint64_t sz = 0;
        if (ioctl(c->fd, BLKGETSIZE64, &sz) < 0)
            return vqm_error_set_errno(err, errno,
                                       "cannot get the size of '%s'",
                                       c->path);
        c->length = sz;
    } else {
        c->length = (uint64_t) c->st.st_size;
    }
    return vqm_lock_take(c->fd, c->path, err);
}

int
vqm_convert(const char *path, const struct vqm_convert_opts *opts,
            struct vqm_convert_result *res, struct vqm_error *err)
{
    struct conv cv;
    struct conv *c = &cv;
    struct vqm_convert_result dummy;
    struct timespec t0, t1;
    char reason[512] = "";
    char output[PATH_MAX];
    const char *fmt;
    bool want_copy, inplace_ok;
    int ret = -1;

    if (!res)
        res = &dummy;
    memset(res, 0, sizeof *res);
    memset(c, 0, sizeof *c);
    c->path = path;
    c->o = opts;
    c->res = res;
    c->fd = -1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    res->mode = opts->mode;
    want_copy = opts->mode == VQM_CONVERT_COPY;

    if (opts->flatten && !want_copy && !opts->output)
        return vqm_error_set(err, VQM_ERR_INVALID,
                             "--flatten needs copy mode");
    if (open_source(c, !want_copy && !opts->dry_run, err) < 0)
        goto out;
    if (vqm_pread_full(c->fd, c->sector0, sizeof c->sector0, 0, 1, path,
                       err) < 0)
        goto out;
    fmt = vqm_probe_format(c->sector0, sizeof c->sector0);
    if (strcmp(fmt, "qcow2") == 0) {
        res->already_qcow2 = true;
        snprintf(res->output, sizeof res->output, "%s", path);
        snprintf(res->reason, sizeof res->reason, "already qcow2");
        ret = 0;
        goto out;
    }
    if (strcmp(fmt, "qed") != 0) {
        vqm_error_set(err, VQM_ERR_UNSUPPORTED,
                      "'%s' is not a QED image (it looks like %s)", path, fmt);
        goto out;
    }
    if (qed_open_fd(c->fd, path, &c->qed, err) < 0)
        goto out;
    c->info = qed_get_info(c->qed);
    res->virtual_size = c->info->image_size;

    /* The full check: always (in place needs it, and NEED_CHECK makes it
     * mandatory anyway).  Its cost is the metadata.
     */
    if (qed_check(c->qed, &c->check, problem_cb, c, err) < 0)
        goto out;
    res->leaks = c->check.leaks;
    res->allocated_bytes = c->check.allocated_bytes;
    if (c->check.corruptions) {
        if (!opts->repair) {
            vqm_error_set(err, VQM_ERR_CORRUPT,
                          "'%s' is corrupt (%" PRIu64 " problem%s, first: %s);"
                          " --repair converts what its valid tables describe",
                          path, c->check.corruptions,
                          c->check.corruptions == 1 ? "" : "s",
                          c->first_problem);
            goto out;
        }
        if (!want_copy) {
            /* Repairing works by copy: only when the user allowed it. */
            if (!opts->allow_copy_fallback && !opts->output) {
                vqm_error_set(err, VQM_ERR_UNSUPPORTED,
                              "cannot convert '%s' in place: it is corrupt "
                              "(%" PRIu64 " problem%s) and --repair works "
                              "by copy (add --allow-copy, or use --copy or "
                              "--output NEW)", path, c->check.corruptions,
                              c->check.corruptions == 1 ? "" : "s");
                goto out;
            }
            want_copy = true;
            snprintf(reason, sizeof reason, "the image is corrupt: repaired "
                     "by copy (%" PRIu64 " problem%s)", c->check.corruptions,
                     c->check.corruptions == 1 ? "" : "s");
        }
    }

    /* The backing chain, under the safety policy: refused chains are
     * refused before anything of them is read.
     */
    /* With new_backing_name (the backing file was renamed), the old name
     * may no longer resolve and the chain is not needed to settle the
     * backing reference.
     */
    if ((c->info->has_backing && !(opts->new_backing_name
                                   && opts->new_backing_format)) ||
        opts->verify_full || (opts->verify && want_copy) || opts->flatten) {
        if (vqm_image_open_fd(c->fd, path, c->real, "qed", true,
                              &opts->policy, &c->chain, err) < 0)
            goto out;
    }

    /* In place or copy? */
    if (!want_copy) {
        if (settle_backing(c, NULL, err) < 0)
            goto out;
        if (conv_inplace_plan(c, reason, sizeof reason, err) < 0)
            goto out;
        inplace_ok = reason[0] == '\0';
        if (!inplace_ok) {
            if (!opts->allow_copy_fallback && !opts->output) {
                bool name_too_long = c->bname &&
                    c->bname_len > QCOW2_MAX_BACKING_NAME;
                vqm_error_set(err, VQM_ERR_UNSUPPORTED,
                              "cannot convert '%s' in place: %s (%s)", path,
                              reason, name_too_long ?
                              "a flattened copy would work: --output NEW "
                              "--flatten" :
                              "copy mode would work: --allow-copy");
                goto out;
            }
            want_copy = true;
        }
    }
    res->mode = want_copy ? VQM_CONVERT_COPY : VQM_CONVERT_IN_PLACE;
    snprintf(res->reason, sizeof res->reason, "%s", reason);

    if (want_copy) {
        if (opts->output)
            snprintf(output, sizeof output, "%s", opts->output);
        else if (conv_default_output(path, output, sizeof output, err) < 0)
            goto out;
        snprintf(res->output, sizeof res->output, "%s", output);
        {
            struct vqm_convert_opts o2 = *opts;
            const struct vqm_convert_opts *saved = c->o;
            o2.mode = VQM_CONVERT_COPY;
            c->o = &o2;
            ret = settle_backing(c, output, err);
            c->o = saved;
            if (ret < 0)
                goto out;
            ret = -1;
        }
        if (opts->dry_run) {
            ret = 0;
            goto out;
        }
        ret = conv_copy(c, output, err);
    } else {
        snprintf(res->output, sizeof res->output, "%s", path);
        if (opts->dry_run) {
            ret = 0;
            goto out;
        }
        ret = conv_inplace(c, err);
    }

 out:
    clock_gettime(CLOCK_MONOTONIC, &t1);
    res->seconds = (double) (t1.tv_sec - t0.tv_sec) +
        (double) (t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (c->chain)
        vqm_image_close(c->chain);
    if (c->qed)
        qed_close(c->qed);
    if (c->fd >= 0)
        close(c->fd);
    free(c->real);
    return ret;
}

/* ---- vqm_qcow2_set_backing ---- */

int
vqm_qcow2_set_backing(const char *path, const char *backing_name,
                      const char *backing_format, struct vqm_error *err)
{
    CLEANUP_CLOSE int fd = -1;
    struct vqm_file f;
    CLEANUP_FREE uint8_t *old = NULL;
    CLEANUP_FREE uint8_t *neu = NULL;
    struct qcow2_header h;
    uint32_t hlen, type, elen;
    uint64_t cs, pos, npos, ext_off, name_off = 0;
    size_t name_len = backing_name ? strlen(backing_name) : 0;
    size_t flen = backing_format ? strlen(backing_format) : 0;
    uint64_t used_end;
    int r;

    if (backing_name && name_len > QCOW2_MAX_BACKING_NAME)
        return vqm_error_set(err, VQM_ERR_UNSUPPORTED,
                             "backing file name longer than %d bytes: '%s'",
                             QCOW2_MAX_BACKING_NAME, backing_name);
    if (backing_format && (flen == 0 || flen >= 16))
        return vqm_error_set(err, VQM_ERR_INVALID,
                             "invalid backing format '%s'", backing_format);
    if (vqm_open(path, VQM_OPEN_RDWR, NULL, &f, err) < 0)
        return -1;
    fd = f.fd;
    free(f.real);
    if (vqm_lock_take(fd, path, err) < 0)
        return -1;
    /* The shared parser checks the name and the extension area against
     * the first cluster, which it hands out. */
    if (qcow2_header_read(fd, path, &h, &old, err) < 0)
        return -1;
    cs = h.cluster_size;
    hlen = h.header_length;
    if (!(neu = calloc(1, cs)))
        return vqm_error_set_errno(err, ENOMEM, "set backing");
    used_end = h.backing_offset ? h.backing_offset + h.backing_size : 0;

    /* Fixed header, then our backing format, then the other extensions
     * as they were, then the end marker and the name.
     */
    memcpy(neu, old, hlen);
    pos = hlen;
    if (backing_name && backing_format) {
        vqm_st_be32(neu + pos, QCOW2_EXT_BACKING_FORMAT);
        vqm_st_be32(neu + pos + 4, (uint32_t) flen);
        memcpy(neu + pos + 8, backing_format, flen);
        pos += 8 + vqm_align_up(flen, 8);
    }
    npos = hlen;
    while ((r = qcow2_header_next_ext(&h, old, cs, &npos, &type, &ext_off,
                                      &elen, path, err)) > 0) {
        uint64_t total = 8 + vqm_align_up(elen, 8);

        /* The feature name table (0x6803f857) is optional and only
         * informative; qemu-img writes one of ~400 bytes, which would not
         * leave room for the new header in the first sector: drop it. */
        if (type != QCOW2_EXT_BACKING_FORMAT && type != QCOW2_EXT_FEATURE_TABLE) {
            if (pos + total > cs || ext_off - 8 + total > cs)
                return vqm_error_set(err, VQM_ERR_UNSUPPORTED,
                                     "'%s': header extensions do not fit",
                                     path);
            memcpy(neu + pos, old + ext_off - 8, total);
            pos += total;
        }
    }
    if (r < 0)
        return -1;
    if (npos + 8 > used_end)
        used_end = npos + 8;
    pos += 8;                                   /* end marker */
    if (backing_name) {
        if (pos + name_len <= 512 || pos > 512) {
            name_off = pos;
            if (name_off + name_len > cs)
                return vqm_error_set(err, VQM_ERR_UNSUPPORTED,
                                     "'%s': backing file name does not fit "
                                     "the qcow2 header cluster", path);
        } else {
            /* Write the name first where the live header does not look,
             * then switch the first sector.
             */
            name_off = vqm_align_up(used_end > 512 ? used_end : 512, 8);
            if (pos > 512 || name_off + name_len > cs)
                return vqm_error_set(err, VQM_ERR_UNSUPPORTED,
                                     "'%s': backing file name does not fit "
                                     "the qcow2 header cluster", path);
            memcpy(neu + name_off, backing_name, name_len);
            if (vqm_pwrite_full(fd, neu + name_off, name_len, name_off,
                                path, err) < 0 ||
                vqm_sync(fd, 0, path, err) < 0)
                return -1;
        }
        memcpy(neu + name_off, backing_name, name_len);
    }
    vqm_st_be64(neu + 8, name_off);
    vqm_st_be32(neu + 16, (uint32_t) name_len);
    {
        /* One sector when it fits (atomic); else the header extensions
         * are bigger than a sector and the header goes in one write, as
         * QEMU rewrites it.
         */
        uint64_t wlen = QCOW2_COMMIT_SECTOR;

        if (pos > QCOW2_COMMIT_SECTOR)
            wlen = vqm_align_up(backing_name ? name_off + name_len : pos,
                                QCOW2_COMMIT_SECTOR);
        if (wlen > cs)
            wlen = cs;
        if (vqm_pwrite_full(fd, neu, wlen, 0, path, err) < 0 ||
            vqm_sync(fd, 0, path, err) < 0)
            return -1;
    }
    return 0;
}

/* Writeback: a helper thread starts writing back what was written so
 * far (sync_file_range without waiting) each time it is kicked, so that
 * the submission work runs on another CPU and the final fsync does not
 * find the whole file dirty.  Without the thread the kick does it
 * inline.
 */
static void *
wb_main(void *opaque)
{
    struct conv_wb *wb = opaque;

    pthread_mutex_lock(&wb->lock);
    for (;;) {
        while (!wb->pending && !wb->stop)
            pthread_cond_wait(&wb->cond, &wb->lock);
        if (wb->stop)
            break;
        wb->pending = false;
        pthread_mutex_unlock(&wb->lock);
        (void) sync_file_range(wb->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
        pthread_mutex_lock(&wb->lock);
    }
    pthread_mutex_unlock(&wb->lock);
    return NULL;
}

void
conv_wb_start(struct conv_wb *wb, int fd)
{
    memset(wb, 0, sizeof *wb);
    wb->fd = fd;
    pthread_mutex_init(&wb->lock, NULL);
    pthread_cond_init(&wb->cond, NULL);
    wb->started = pthread_create(&wb->thread, NULL, wb_main, wb) == 0;
}

void
conv_wb_kick(struct conv_wb *wb)
{
    if (wb->started) {
        pthread_mutex_lock(&wb->lock);
        wb->pending = true;
        pthread_cond_signal(&wb->cond);
        pthread_mutex_unlock(&wb->lock);
    } else {
        (void) sync_file_range(wb->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    }
}

void
conv_wb_stop(struct conv_wb *wb)
{
    if (wb->started) {
        pthread_mutex_lock(&wb->lock);
        wb->stop = true;
        pthread_cond_signal(&wb->cond);
        pthread_mutex_unlock(&wb->lock);
        pthread_join(wb->thread, NULL);
        wb->started = false;
    }
    pthread_cond_destroy(&wb->cond);
    pthread_mutex_destroy(&wb->lock);
}
