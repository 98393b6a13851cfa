/* virt-qed-migrate: conversion by copy.
 *
 * The new qcow2 is written by the streaming writer into an unnamed file
 * (O_TMPFILE) in the target's directory, or a hidden temporary name where
 * the file system cannot do that, fsynced, then linked under its name
 * (never over an existing file) and the directory fsynced.  So a crash or
 * a failure leaves no partial output under the target name, and the
 * source is only read.  Sparse: unallocated and zero ranges are not
 * written, an all-zero data cluster becomes a zero cluster (with a
 * backing file) or a hole.  Data moves with copy_file_range where the
 * file system shares extents (reflinks on XFS/btrfs), after a zero scan
 * of the source through a read-only mapping; elsewhere by O_DIRECT writes
 * from that mapping, queued for the writer's thread so that the disk
 * stays busy while the next run is mapped and scanned, with the source
 * read ahead in guest order.  Before any of that, the file system is
 * asked where the source has data (convert-holes.c): data clusters lying
 * in holes of the file are zeros, neither read nor scanned, and the
 * read-ahead skips them too.  VQM_COPY_METHOD=read uses plain reads into
 * a buffer, VQM_COPY_DIRECT=0 buffered writes (for measurements).
 * Memory: two chunk buffers and two chunk mappings plus the writer's
 * bounded state and two windows of data extents.  A source that changes
 * size while it is copied is refused (nothing is linked).
 */
#include <config.h>

#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "cleanup.h"
#include "overflow.h"
#include "vqm-debug.h"
#include "vqm-io.h"
#include "vqm-open.h"
#include "convert-internal.h"

#define CHUNK (8u << 20)
#define WRITEBACK_STEP (32u << 20)
#define READAHEAD (64u << 20)    /* guest bytes */
#define DIRECT_ALIGN 4096u      /* of direct writes: memory, offset, length */

struct cp {
    struct conv *c;
    struct qcow2w_stream *s;
    unsigned qcb;
    uint64_t qcs;
    uint64_t size;
    bool out_backing;            /* the output has a backing file */
    bool use_mmap;               /* zero scan through a mapping */
    bool use_cfr;                /* data by copy_file_range */
    /* Two data buffers and two source mappings, used in turn: data
     * written from one may still be queued for the writer thread while
     * the other is filled.  Each remembers the ticket of its last write.
     */
    uint8_t *bufs[2];            /* buflen bytes each */
    uint64_t buf_ticket[2];
    unsigned cur_buf;
    struct {
        void *m;
        size_t len;
        uint64_t ticket;
    } maps[2];
    unsigned next_map;
    size_t buflen;               /* CHUNK bytes (at least one cluster) */
    int out_fd;
    uint64_t flushed;            /* bytes when writeback was last started */
    uint64_t ra_guest;           /* source read ahead up to this guest
                                    offset */
    struct conv_wb *wb;
    /* Where the source has data: one window for the copy, one for the
     * read-ahead (which runs ahead in the file).
     */
    struct conv_holes holes, ra_holes;
    uint64_t hole_bytes;         /* data clusters found in holes */
};

int
conv_default_output(const char *path, char *out, size_t outlen,
                    struct vqm_error *err)
{
    size_t n = strlen(path);
    int r;

    if (n > 4 && strcmp(path + n - 4, ".qed") == 0)
        r = snprintf(out, outlen, "%.*s.qcow2", (int) (n - 4), path);
    else
        r = snprintf(out, outlen, "%s.qcow2", path);
    if (r < 0 || (size_t) r >= outlen)
        return vqm_error_set(err, VQM_ERR_INVALID, "path too long: '%s'",
                             path);
    return 0;
}

/* Clusters [g, g+n) with their guest data at data; when src_fd >= 0 the
 * same bytes are in src_fd at src_off (for copy_file_range).  All of
 * data is scanned for zero clusters before anything is written from it:
 * the writes can stop the process (a full disk, a debugger, a test's
 * fault point), and a source mapping must not be read by us again after
 * that (if the file shrank meanwhile, reading it would fault; the
 * kernel's reads for the writes fail with an error instead).
 */
/* A source file that shrinks under a mapping makes the scan fault
 * (SIGBUS) instead of reading zeros.  While a scan runs, the handler
 * jumps back to it, and the copy fails; any other SIGBUS gets the
 * default action.
 */
static _Thread_local sigjmp_buf *scan_jmp;

static void
on_sigbus(int sig)
{
    if (scan_jmp)
        siglongjmp(*scan_jmp, 1);
    signal(sig, SIG_DFL);       /* the fault happens again and kills */
}

/* Set bit k of zero for each all-zero cluster k of the n at data. */
static int
scan_zeros(struct cp *p, const uint8_t *data, uint64_t n, uint8_t *zero,
           struct vqm_error *err)
{
    sigjmp_buf jb;
    uint64_t k;

    if (sigsetjmp(jb, 1)) {
        scan_jmp = NULL;
        /* A mapped file faults only when it shrank under the map. */
        return vqm_error_set(err, VQM_ERR_BUSY, "'%s' changed size while "
                             "it was being copied (it shrank under the "
                             "copy)", p->c->path);
    }
    scan_jmp = &jb;
    for (k = 0; k < n; k++) {
        if (conv_is_zero(data + k * p->qcs, p->qcs))
            zero[k / 8] |= (uint8_t) (1u << (k % 8));
        else
            zero[k / 8] &= (uint8_t) ~(1u << (k % 8));
    }
    scan_jmp = NULL;
    return 0;
}

static int
emit(struct cp *p, uint64_t g, uint64_t n, const uint8_t *data, int src_fd,
     uint64_t src_off, struct vqm_error *err)
{
    uint8_t zero[(CHUNK / 512 + 7) / 8];
    uint64_t i = 0;

    if (n > sizeof zero * 8)
        return vqm_error_set(err, VQM_ERR_INTERNAL, "emit: run too long");
    if (scan_zeros(p, data, n, zero, err) < 0)
        return -1;
#define IS_ZERO(k) ((zero[(k) / 8] >> ((k) % 8)) & 1)
    while (i < n) {
        uint64_t j = i;
        bool z = IS_ZERO(i);

        while (j + 1 < n && (bool) IS_ZERO(j + 1) == z)
            j++;
        if (z) {
            if (p->out_backing &&
                qcow2w_stream_zero(p->s, g + i, j - i + 1, err) < 0)
                return -1;
        } else if (src_fd >= 0 && p->use_cfr && !p->c->o->compress) {
            if (qcow2w_stream_copy(p->s, g + i, j - i + 1, src_fd,
                                   src_off + i * p->qcs, err) < 0)
                return -1;
        } else {
            if (qcow2w_stream_data(p->s, g + i, j - i + 1,
                                   data + i * p->qcs, err) < 0)
                return -1;
        }
        i = j + 1;
    }
#undef IS_ZERO
    return 0;
}

/* The next data buffer, once the writes queued from it are done. */
static uint8_t *
take_buf(struct cp *p, struct vqm_error *err)
{
    p->cur_buf ^= 1;
    if (qcow2w_stream_wait(p->s, p->buf_ticket[p->cur_buf], err) < 0)
        return NULL;
    return p->bufs[p->cur_buf];
}

/* Data from the current buffer was handed to the writer. */
static void
done_buf(struct cp *p)
{
    p->buf_ticket[p->cur_buf] = qcow2w_stream_ticket(p->s);
}

/* Unmap the mapping in slot i (after its writes, unless the writer is
 * gone already).
 */
static int
unmap_slot(struct cp *p, unsigned i, struct vqm_error *err)
{
    int r = 0;

    if (!p->maps[i].m)
        return 0;
    if (p->s)
        r = qcow2w_stream_wait(p->s, p->maps[i].ticket, err);
    munmap(p->maps[i].m, p->maps[i].len);
    p->maps[i].m = NULL;
    return r;
}

/* Ask the kernel to read ahead the source data of the next READAHEAD
 * guest bytes, so that reading them overlaps with writing this run when
 * the source is not in the page cache.  It follows the guest order (the
 * order we need the data in), not the file's, so nothing is read for
 * nothing.  Best effort: a lookup error ends it (the copy itself reports
 * errors, and --repair counts what it drops).
 */
static void
read_ahead(struct cp *p, uint64_t off)
{
    uint64_t limit = off + READAHEAD;

    if (p->ra_guest < off)
        p->ra_guest = off;
    while (p->ra_guest < limit && p->ra_guest < p->size) {
        struct qed_extent e;
        struct vqm_error e2 = { 0 };
        uint64_t end;

        if (qed_extent_at(p->c->qed, p->ra_guest, 0, &e, &e2) < 0) {
            p->ra_guest = UINT64_MAX;
            return;
        }
        end = e.offset + e.length < limit ? e.offset + e.length : limit;
        if (e.kind == QED_EXTENT_DATA) {
            /* Only what has data on disk: reading ahead a hole would
             * fill the page cache with zero pages.
             */
            uint64_t h = e.host_offset, hend = h + (end - e.offset), run;

            while (h < hend) {
                bool data = conv_holes_at(&p->ra_holes, h, &run);

                if (run > hend - h)
                    run = hend - h;
                if (data)
                    (void) posix_fadvise(p->c->fd, (off_t) h, (off_t) run,
                                         POSIX_FADV_WILLNEED);
                h += run;
            }
        }
        p->ra_guest = e.offset + e.length;
    }
}

/* The source must keep its length while it is copied: a file that
 * shrinks under a mapping would fault, and one that grows or shrinks is
 * being written by someone else.  -1 (VQM_ERR_BUSY) when it changed.
 */
static int
check_length(struct conv *c, struct vqm_error *err)
{
    struct stat st;

    if (c->is_blk)
        return 0;
    if (fstat(c->fd, &st) < 0)
        return vqm_error_set_errno(err, errno, "cannot stat '%s'", c->path);
    if ((uint64_t) st.st_size != c->length)
        return vqm_error_set(err, VQM_ERR_BUSY,
                             "'%s' changed size while it was being copied "
                             "(%" PRIu64 " bytes, now %" PRIu64 ")", c->path,
                             c->length, (uint64_t) st.st_size);
    return 0;
}

/* n clusters from g, host-contiguous at host in the source. */
static int
copy_data(struct cp *p, uint64_t g, uint64_t n, uint64_t host,
          struct vqm_error *err)
{
    struct conv *c = p->c;
    uint64_t len = n * p->qcs;
    uint8_t *buf;
    int r;

    if (p->use_mmap && host + len <= c->length) {
        unsigned i = p->next_map;
        void *m;

        if (unmap_slot(p, i, err) < 0 || check_length(c, err) < 0)
            return -1;
        m = mmap(NULL, len, PROT_READ, MAP_SHARED | MAP_POPULATE, c->fd,
                 (off_t) host);
        if (m != MAP_FAILED) {
            r = emit(p, g, n, m, c->fd, host, err);
            p->maps[i].m = m;
            p->maps[i].len = len;
            p->maps[i].ticket = qcow2w_stream_ticket(p->s);
            p->next_map ^= 1;
            return r;
        }
    }
    if (!(buf = take_buf(p, err)) ||
        vqm_pread_full(c->fd, buf, len, host, 1, c->path, err) < 0)
        return -1;
    r = emit(p, g, n, buf, -1, 0, err);
    done_buf(p);
    return r;
}

/* Read [off, off+len) of the backing chain below the top image. */
static int
read_backing(struct cp *p, uint64_t off, uint8_t *buf, uint64_t len,
             struct vqm_error *err)
{
    struct vqm_image *b = p->c->chain ? vqm_image_backing(p->c->chain) : NULL;
    uint64_t bsize, n;

    memset(buf, 0, len);
    if (!b)
        return 0;
    bsize = vqm_image_size(b);
    if (off >= bsize)
        return 0;
    n = len < bsize - off ? len : bsize - off;
    return vqm_image_read(b, off, buf, n, err);
}

/* One output cluster made of several source extents (qcow2 clusters
 * bigger than the QED ones, or --repair around a dropped cluster).
 */
static int
copy_mixed(struct cp *p, uint64_t off, struct vqm_error *err)
{
    struct conv *c = p->c;
    uint64_t cend = off + p->qcs, pos = off;
    bool all_unalloc = true, any_data = false;
    struct qed_extent e;
    uint8_t *buf = take_buf(p, err);
    int r;

    if (!buf)
        return -1;
    if (cend > p->size)
        cend = p->size;
    memset(buf, 0, p->qcs);
    while (pos < cend) {
        if (conv_extent_at(c, pos, cend - pos, &e, err) < 0)
            return -1;
        switch (e.kind) {
        case QED_EXTENT_DATA:
            if (vqm_pread_full(c->fd, buf + (pos - off), e.length,
                               e.host_offset, 1, c->path, err) < 0)
                return -1;
            any_data = true;
            all_unalloc = false;
            break;
        case QED_EXTENT_ZERO:
            all_unalloc = false;
            break;
        case QED_EXTENT_UNALLOCATED:
            if (p->out_backing || c->o->flatten) {
                if (read_backing(p, pos, buf + (pos - off), e.length,
                                 err) < 0)
                    return -1;
                any_data = true;
            }
            break;
        }
        pos = e.offset + e.length;
    }
    if (all_unalloc && p->out_backing)
        return 0;                       /* falls through, as before */
    if (!any_data) {
        if (p->out_backing)
            return qcow2w_stream_zero(p->s, off / p->qcs, 1, err);
        return 0;
    }
    r = emit(p, off / p->qcs, 1, buf, -1, 0, err);
    done_buf(p);
    return r;
}

static void
start_writeback(struct cp *p)
{
    uint64_t written = qcow2w_stream_data_bytes(p->s) +
        qcow2w_stream_metadata_bytes(p->s);

    if (written - p->flushed < WRITEBACK_STEP)
        return;
    p->flushed = written;
    if (p->wb)
        conv_wb_kick(p->wb);
    else
        (void) sync_file_range(p->out_fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

/* File systems where copy_file_range shares extents or copies on the
 * server, rather than copying through the page cache.
 */
static bool
shares_extents(long type)
{
    switch ((unsigned long) type) {
    case 0x58465342UL:          /* XFS */
    case 0x9123683eUL:          /* btrfs */
    case 0xca451a4eUL:          /* bcachefs */
    case 0x6969UL:              /* NFS */
    case 0xfe534d42UL:          /* SMB2 */
    case 0xff534d42UL:          /* CIFS */
    case 0x7461636fUL:          /* OCFS2 */
        return true;
    }
    return false;
}

static uint64_t
whole_clusters(struct cp *p, uint64_t off, uint64_t end)
{
    if (end >= p->size)
        return vqm_div_round_up(p->size - off, p->qcs);
    return (end - off) / p->qcs;
}

static int
copy_flat(struct cp *p, uint64_t *offp, struct vqm_error *err)
{
    uint64_t off = *offp, n, len;
    struct vqm_map_entry m;
    uint8_t *buf;
    int r;

    if (vqm_image_map_at(p->c->chain, off, &m, err) < 0)
        return -1;
    n = whole_clusters(p, off, m.start + m.length);
    if (!m.data && m.zero && n > 0) {
        *offp = off + n * p->qcs;
        return 0;
    }
    if (n == 0)
        n = 1;
    if (n > p->buflen / p->qcs)
        n = p->buflen / p->qcs;
    len = n * p->qcs;
    if (!(buf = take_buf(p, err)))
        return -1;
    memset(buf, 0, len);
    if (len > p->size - off)
        len = p->size - off;
    if (vqm_image_read(p->c->chain, off, buf, len, err) < 0)
        return -1;
    r = emit(p, off / p->qcs, n, buf, -1, 0, err);
    done_buf(p);
    if (r < 0)
        return -1;
    *offp = off + n * p->qcs;
    return 0;
}

static int
copy_all(struct cp *p, struct vqm_error *err)
{
    struct conv *c = p->c;
    uint64_t off = 0;

    c->progress_total = p->size;
    while (off < p->size) {
        uint64_t before = off, n, end;
        struct qed_extent e;

        if (c->o->flatten) {
            if (copy_flat(p, &off, err) < 0)
                return -1;
        } else {
            read_ahead(p, off);
            if (conv_extent_at(c, off, 0, &e, err) < 0)
                return -1;
            end = e.offset + e.length;
            n = whole_clusters(p, off, end);
            if (n == 0) {
                if (copy_mixed(p, off, err) < 0)
                    return -1;
                off += p->qcs;
            } else if (e.kind == QED_EXTENT_UNALLOCATED) {
                off += n * p->qcs;
            } else if (e.kind == QED_EXTENT_ZERO) {
                if (p->out_backing &&
                    qcow2w_stream_zero(p->s, off / p->qcs, n, err) < 0)
                    return -1;
                off += n * p->qcs;
            } else {
                uint64_t host = e.host_offset + (off - e.offset);
                bool hole;

                /* Clusters in a hole of the source are zeros: not read. */
                n = conv_holes_clusters(&p->holes, host, n, p->qcs, &hole);
                if (hole) {
                    if (p->out_backing &&
                        qcow2w_stream_zero(p->s, off / p->qcs, n, err) < 0)
                        return -1;
                    p->hole_bytes += n * p->qcs;
                } else {
                    if (n > p->buflen / p->qcs)
                        n = p->buflen / p->qcs;
                    if (copy_data(p, off / p->qcs, n, host, err) < 0)
                        return -1;
                }
                off += n * p->qcs;
            }
        }
        if (off > p->size)
            off = p->size;
        conv_progress(c, off - before);
        start_writeback(p);
    }
    return 0;
}

/* Create a hidden file ".BASE.XXXXXX" (random suffix) in the directory
 * dirfd, where O_TMPFILE is not supported: never over an existing name,
 * never through a symlink.  0 (name in tmp, *fd open) or -1 (errno).
 */
static int
create_hidden(int dirfd, const char *base, char *tmp, size_t len, int *fd)
{
    static const char chars[] = "abcdefghijklmnopqrstuvwxyz"
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    unsigned tries;

    for (tries = 0; tries < 100; tries++) {
        unsigned char rnd[6];
        size_t i, n;

        if (getrandom(rnd, sizeof rnd, 0) != (ssize_t) sizeof rnd)
            return -1;
        n = (size_t) snprintf(tmp, len, ".%s.", base);
        if (n + sizeof rnd >= len) {
            errno = ENAMETOOLONG;
            return -1;
        }
        for (i = 0; i < sizeof rnd; i++)
            tmp[n + i] = chars[rnd[i] % (sizeof chars - 1)];
        tmp[n + sizeof rnd] = '\0';
        *fd = openat(dirfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
                     O_CLOEXEC, 0600);
        if (*fd >= 0)
            return 0;
        if (errno != EEXIST)
            return -1;
    }
    return -1;
}

/* Remove the name in dirfd if it still is the file open on fd. */
static void
drop_hidden(int dirfd, const char *name, int fd)
{
    struct stat a, b;

    if (fstat(fd, &a) == 0 &&
        fstatat(dirfd, name, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
        a.st_dev == b.st_dev && a.st_ino == b.st_ino)
        unlinkat(dirfd, name, 0);
}

int
conv_copy(struct conv *c, const char *output, struct vqm_error *err)
{
    const struct vqm_convert_opts *o = c->o;
    struct cp cp;
    struct cp *p = &cp;
    struct qcow2w_stream_opts so;
    struct stat st;
    char dirbuf[PATH_MAX], basebuf[PATH_MAX], tmpname[PATH_MAX] = "";
    char procpath[64];
    char name[QCOW2_MAX_BACKING_NAME + 1];
    struct vqm_file od = { .fd = -1, .real = NULL };
    CLEANUP_FREE char *out_real = NULL;
    const char *dir, *base, *method = getenv("VQM_COPY_METHOD");
    const char *direct = getenv("VQM_COPY_DIRECT");
    int out_fd = -1, dfd = -1, ret = -1;
    bool linked = false;
    unsigned cb = c->info->cluster_bits;

    memset(p, 0, sizeof *p);
    p->c = c;
    p->size = c->info->image_size;
    if (o->cluster_size) {
        if (!vqm_is_power_of_2(o->cluster_size) || o->cluster_size < 512 ||
            o->cluster_size > (2u << 20))
            return vqm_error_set(err, VQM_ERR_INVALID,
                                 "qcow2 cluster size must be a power of 2 "
                                 "from 512 to 2M, not %" PRIu32,
                                 o->cluster_size);
        p->qcb = vqm_log2(o->cluster_size);
    } else {
        p->qcb = cb > QCOW2_MAX_CLUSTER_BITS ? QCOW2_MAX_CLUSTER_BITS : cb;
    }
    p->qcs = 1ULL << p->qcb;
    p->out_backing = c->bname != NULL;
    /* How data moves: copy_file_range where the file system shares
     * extents (reflinks) or copies server-side, else writes from a
     * read-only mapping of the source (direct ones: see below).
     * VQM_COPY_METHOD=cfr|mmap|read overrides (for measurements).
     */
    if (method && strcmp(method, "read") == 0) {
        p->use_mmap = false;
    } else if (method && strcmp(method, "mmap") == 0) {
        p->use_mmap = true;
    } else if (method && strcmp(method, "cfr") == 0) {
        p->use_mmap = p->use_cfr = true;
    } else {
        p->use_mmap = true;
        p->use_cfr = false;             /* decided below */
    }
    p->buflen = CHUNK > p->qcs ? CHUNK : p->qcs;
    conv_holes_init(&p->holes, c->fd, true);
    conv_holes_init(&p->ra_holes, c->fd, true);

    if ((o->flatten || c->info->has_backing) && !c->chain &&
        vqm_image_open_fd(c->fd, c->path, c->real, "qed", true, &o->policy,
                          &c->chain, err) < 0)
        return -1;

    snprintf(dirbuf, sizeof dirbuf, "%s", output);
    snprintf(basebuf, sizeof basebuf, "%s", output);
    dir = dirname(dirbuf);
    base = basename(basebuf);
    /* The target directory, opened once (vqm-open.h): everything below
     * is created, linked and removed relative to it. */
    if (vqm_open(dir, VQM_OPEN_DIR, NULL, &od, err) < 0)
        return -1;
    if (fstatat(od.fd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        vqm_file_close(&od);
        return vqm_error_set(err, VQM_ERR_INVALID,
                             "'%s' already exists", output);
    }
    if (asprintf(&out_real, "%s%s%s", od.real,
                 strcmp(od.real, "/") ? "/" : "", base) < 0) {
        out_real = NULL;
        vqm_file_close(&od);
        return vqm_error_set_errno(err, ENOMEM, "out of memory");
    }

    /* Aligned, for direct writes from them. */
    for (unsigned i = 0; i < 2; i++)
        if (posix_memalign((void **) &p->bufs[i], DIRECT_ALIGN,
                           p->buflen) != 0)
            p->bufs[i] = NULL;
    if (!p->bufs[0] || !p->bufs[1]) {
        vqm_error_set_errno(err, ENOMEM, "copy buffer");
        goto out;
    }

    out_fd = openat(od.fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (out_fd < 0 && create_hidden(od.fd, base, tmpname, sizeof tmpname,
                                    &out_fd) < 0) {
        vqm_error_set_errno(err, errno, "cannot create a file in '%s'", dir);
        tmpname[0] = '\0';
        goto out;
    }
    /* Owner, group and mode of the source (chown needs privileges). */
    if (fchown(out_fd, c->st.st_uid, c->st.st_gid) < 0)
        vqm_debug("cannot keep the owner of '%s': %s", c->path,
                  strerror(errno));
    if (fchmod(out_fd, S_ISREG(c->st.st_mode) ?
               (c->st.st_mode & 07777) : 0644) < 0) {
        vqm_error_set_errno(err, errno, "cannot set the mode of '%s'",
                            output);
        goto out;
    }

    memset(&so, 0, sizeof so);
    so.cluster_bits = p->qcb;
    so.size = p->size;
    if (c->bname) {
        /* The writer wants a NUL-terminated name (it copies it). */
        if (c->bname_len > QCOW2_MAX_BACKING_NAME) {
            vqm_error_set(err, VQM_ERR_UNSUPPORTED,
                          "'%s': the backing file name is %zu bytes long, "
                          "qcow2 allows %d", c->path, c->bname_len,
                          QCOW2_MAX_BACKING_NAME);
            goto out;
        }
        memcpy(name, c->bname, c->bname_len);
        name[c->bname_len] = '\0';
        so.backing_name = name;
        so.backing_format = c->bfmt;
    }
    so.lazy_refcounts = o->lazy_refcounts;
    so.compress = o->compress;
    p->out_fd = out_fd;
    if (!method || !*method) {
        struct statfs sf;
        p->use_cfr = fstatfs(out_fd, &sf) == 0 && shares_extents(sf.f_type);
        vqm_debug("copy: data by %s", p->use_cfr ? "copy_file_range" :
                  "writes from a mapping");
    }
    if (qcow2w_stream_open(out_fd, output, &so, &p->s, err) < 0)
        goto out;
    /* Data that is not copied by the file system goes to the disk with
     * O_DIRECT writes: straight from the source's page cache (through
     * the mapping) to the device, with no copy into our page cache and
     * nothing left for the final fsync but the metadata.
     * VQM_COPY_DIRECT=0 turns this off (for measurements).
     */
    if (!p->use_cfr && !o->compress && p->qcs >= DIRECT_ALIGN &&
        !(direct && strcmp(direct, "0") == 0)) {
        /* The file we created itself, never its name again (the
         * directory may belong to someone else). */
        snprintf(procpath, sizeof procpath, "/proc/self/fd/%d", out_fd);
        dfd = open(procpath, O_WRONLY | O_DIRECT | O_CLOEXEC);
        if (dfd >= 0)
            qcow2w_stream_set_direct(p->s, dfd, DIRECT_ALIGN);
        vqm_debug("copy: direct data writes: %s",
                  dfd >= 0 ? "yes" : strerror(errno));
    }
    {
        struct conv_wb wb;
        int r;

        struct sigaction sa, old_sa;

        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_sigbus;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGBUS, &sa, &old_sa);
        conv_wb_start(&wb, out_fd);
        p->wb = &wb;
        r = copy_all(p, err);
        conv_wb_stop(&wb);
        sigaction(SIGBUS, &old_sa, NULL);
        p->wb = NULL;
        if (r < 0 || qcow2w_stream_finish(p->s, err) < 0)
            goto out;
    }

    /* Nothing changed the source meanwhile: else what we read may
     * be half old, half new.
     */
    if (check_length(c, err) < 0)
        goto out;
    vqm_debug("copy: %" PRIu64 " bytes of data clusters lie in holes of "
              "the source: not read", p->hole_bytes);

    /* Give it its name (never over an existing file), then sync the
     * directory.
     */
    if (vqm_fault_point("write", output, 0, 0) < 0) {
        vqm_error_set_errno(err, errno, "cannot create '%s'", output);
        goto out;
    }
    /* Link the file we wrote (through its descriptor: whatever the
     * hidden name holds by now), then drop the hidden name if it is
     * still ours. */
    snprintf(procpath, sizeof procpath, "/proc/self/fd/%d", out_fd);
    if (linkat(AT_FDCWD, procpath, od.fd, base, AT_SYMLINK_FOLLOW) < 0) {
        vqm_error_set_errno(err, errno, "cannot create '%s'", output);
        goto out;
    }
    linked = true;
    if (tmpname[0]) {
        drop_hidden(od.fd, tmpname, out_fd);
        tmpname[0] = '\0';
    }
    if (vqm_fault_point("sync", dir, 0, 0) < 0 || fsync(od.fd) < 0) {
        vqm_error_set_errno(err, errno, "cannot sync directory '%s'", dir);
        goto out;
    }
    c->res->data_bytes_written = qcow2w_stream_data_bytes(p->s);
    c->res->metadata_bytes = qcow2w_stream_metadata_bytes(p->s);

    if (o->verify) {
        struct vqm_image *out_img = NULL;
        int r;

        /* Both through the descriptors already open: nothing is looked
         * up by name again but the backing files (under the policy). */
        if (!c->chain &&
            vqm_image_open_fd(c->fd, c->path, c->real, "qed", true,
                              &o->policy, &c->chain, err) < 0)
            goto out;
        if (vqm_image_open_fd(out_fd, output, out_real, "qcow2", true,
                              &o->policy, &out_img, err) < 0)
            goto out;
        conv_holes_init(&p->holes, c->fd, true);
        r = conv_compare_images(c->chain, &p->holes, out_img, output, err);
        vqm_image_close(out_img);
        if (r < 0)
            goto out;
        c->res->verified = true;
    }
    ret = 0;

 out:
    if (ret < 0) {
        struct vqm_error e2 = { 0 };

        /* A source that changed size makes every later error (a short
         * read, a failed write from its mapping) a consequence: say so.
         */
        if (err && err->code != VQM_ERR_BUSY && check_length(c, &e2) < 0)
            *err = e2;
        if (tmpname[0])
            drop_hidden(od.fd, tmpname, out_fd);
        if (linked)
            drop_hidden(od.fd, base, out_fd);
    }
    vqm_file_close(&od);
    qcow2w_stream_free(p->s);   /* the writer thread is gone */
    p->s = NULL;
    unmap_slot(p, 0, NULL);
    unmap_slot(p, 1, NULL);
    free(p->bufs[0]);
    free(p->bufs[1]);
    if (dfd >= 0)
        close(dfd);
    if (out_fd >= 0)
        close(out_fd);
    return ret;
}
