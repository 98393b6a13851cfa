/* virt-qed-migrate: streaming qcow2 writer (copy mode).
 *
 * Host clusters are handed out by a bump pointer from cluster 1 (cluster
 * 0 is the header, written last).  Refcount range k (rb_entries clusters)
 * is counted in memory while the pointer is inside it; when the pointer
 * enters range k+1, the block for range k is written into the first
 * cluster of range k+1.  L2 tables are built one at a time and appended
 * when the guest moves past their range.  At the end come the L1, the
 * refcount table and the blocks of the last ranges, sized by a fixed
 * point, then the header.  Invariant: every cluster below the pointer is
 * referenced by exactly the count kept for it (1, or the number of
 * compressed clusters packed into it), so `qemu-img check` finds no
 * leak and no corruption.
 */
#include <config.h>

#define _GNU_SOURCE 1
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "overflow.h"
#include "vqm-endian.h"
#include "vqm-io.h"
#include "qcow2-writer.h"

#define NO_CLUSTER UINT64_MAX
#define DIO_QUEUE 8             /* direct writes queued for the thread */

/* Direct data writes run in a thread of their own, so that the disk is
 * kept busy while the caller maps, reads and scans the next data.  Jobs
 * are done in order; each has a ticket (1, 2, ...).  After a failed
 * write, later jobs are skipped and the first error is kept.
 */
struct dio_job {
    const void *p;
    size_t len;
    uint64_t off;
};

struct dio {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;        /* any change: a job queued or done */
    struct dio_job q[DIO_QUEUE];
    unsigned head, count;
    uint64_t submitted, completed;
    bool stop, failed;
    struct vqm_error err;
};

struct qcow2w_stream {
    int fd;
    int dfd;                    /* O_DIRECT descriptor for data, or -1 */
    size_t dalign;
    struct dio *dio;            /* its writer thread, or NULL */
    char *path;
    struct qcow2w_stream_opts o;
    char *backing_name, *backing_format;
    unsigned cb;
    uint64_t cs;
    uint64_t l2_entries;
    uint64_t rbe;

    uint64_t *l1;               /* CPU order */
    uint32_t l1_size;
    uint64_t *l2;               /* current table, CPU order */
    uint64_t cur_l2;            /* its L1 index, or NO_CLUSTER */
    bool l2_used;

    uint16_t *rb;               /* refcounts of the current range */
    uint64_t cur_range;
    uint64_t *rt;               /* block offsets of finished ranges */
    size_t n_rt, cap_rt;

    uint64_t next;              /* next free cluster */
    uint64_t next_g;            /* guest clusters below are done */

    uint64_t ccluster;          /* cluster being packed with compressed
                                   data, or NO_CLUSTER */
    uint64_t cpos;              /* bytes used in it */
    uint8_t *cbuf;

    uint64_t data_bytes, meta_bytes;
};

uint64_t
qcow2w_stream_data_bytes(const struct qcow2w_stream *s)
{
    return s->data_bytes;
}

uint64_t
qcow2w_stream_metadata_bytes(const struct qcow2w_stream *s)
{
    return s->meta_bytes;
}

static void dio_stop(struct qcow2w_stream *s, bool discard);

void
qcow2w_stream_free(struct qcow2w_stream *s)
{
    if (!s)
        return;
    dio_stop(s, true);
    free(s->path);
    free(s->backing_name);
    free(s->backing_format);
    free(s->l1);
    free(s->l2);
    free(s->rb);
    free(s->rt);
    free(s->cbuf);
    free(s);
}

int
qcow2w_stream_open(int fd, const char *path,
                   const struct qcow2w_stream_opts *o,
                   struct qcow2w_stream **out, struct vqm_error *err)
{
    struct qcow2w_stream *s;
    uint64_t l1e;

    if (o->cluster_bits < QCOW2_MIN_CLUSTER_BITS ||
        o->cluster_bits > QCOW2_MAX_CLUSTER_BITS)
        return vqm_error_set(err, VQM_ERR_INVALID,
                             "qcow2 cluster size must be 512 bytes to 2 MiB");
    l1e = qcow2w_l1_entries(o->size, o->cluster_bits);
    if (l1e * 8 > QCOW2_MAX_L1_BYTES)
        return vqm_error_set(err, VQM_ERR_UNSUPPORTED,
                             "a qcow2 image of %" PRIu64 " bytes needs "
                             "bigger clusters than %u bytes", o->size,
                             1u << o->cluster_bits);
    if (o->backing_name && strlen(o->backing_name) > QCOW2_MAX_BACKING_NAME)
        return vqm_error_set(err, VQM_ERR_UNSUPPORTED,
                             "backing file name longer than %d bytes: '%s'",
                             QCOW2_MAX_BACKING_NAME, o->backing_name);
#ifndef HAVE_ZLIB
    if (o->compress == QCOW2W_COMPRESS_ZLIB)
        return vqm_error_set(err, VQM_ERR_UNSUPPORTED,
                             "built without zlib compression");
#endif
#ifndef HAVE_ZSTD
    if (o->compress == QCOW2W_COMPRESS_ZSTD)
        return vqm_error_set(err, VQM_ERR_UNSUPPORTED,
                             "built without zstd compression");
#endif

    s = calloc(1, sizeof *s);
    if (!s)
        return vqm_error_set_errno(err, ENOMEM, "qcow2 writer");
    s->fd = fd;
    s->dfd = -1;
    s->o = *o;
    s->cb = o->cluster_bits;
    s->cs = 1ULL << s->cb;
    s->l2_entries = s->cs / 8;
    s->rbe = s->cs * 8 / 16;
    s->l1_size = (uint32_t) l1e;
    s->path = strdup(path);
    s->backing_name = o->backing_name ? strdup(o->backing_name) : NULL;
    s->backing_format = o->backing_format ? strdup(o->backing_format) : NULL;
    /* Whole clusters, so that finish can write it after converting the
     * entries in place (no second copy of an L1 of up to 32 MiB).
     */
    s->l1 = calloc(vqm_div_round_up(l1e ? l1e * 8 : 8, s->cs), s->cs);
    s->l2 = calloc(s->l2_entries, 8);
    s->rb = calloc(s->rbe, 2);
    s->cbuf = o->compress ? malloc(s->cs) : NULL;
    if (!s->path || !s->l1 || !s->l2 || !s->rb ||
        (o->backing_name && !s->backing_name) ||
        (o->backing_format && !s->backing_format) ||
        (o->compress && !s->cbuf)) {
        qcow2w_stream_free(s);
        return vqm_error_set_errno(err, ENOMEM, "qcow2 writer");
    }
    s->o.backing_name = s->backing_name;
    s->o.backing_format = s->backing_format;
    s->cur_l2 = NO_CLUSTER;
    s->ccluster = NO_CLUSTER;
    s->rb[0] = 1;                       /* the header */
    s->next = 1;
    *out = s;
    return 0;
}

static int
write_be16_block(struct qcow2w_stream *s, const uint16_t *rc, uint64_t off,
                 struct vqm_error *err)
{
    uint8_t *buf = malloc(s->cs);
    uint64_t i;
    int r;

    if (!buf)
        return vqm_error_set_errno(err, ENOMEM, "qcow2 writer");
    for (i = 0; i < s->rbe; i++)
        vqm_st_be16(buf + 2 * i, rc[i]);
    r = vqm_pwrite_full(s->fd, buf, s->cs, off, s->path, err);
    free(buf);
    s->meta_bytes += s->cs;
    return r;
}

static int
rt_append(struct qcow2w_stream *s, uint64_t off, struct vqm_error *err)
{
    if (s->n_rt == s->cap_rt) {
        size_t cap = s->cap_rt ? s->cap_rt * 2 : 64;
        uint64_t *n = realloc(s->rt, cap * 8);
        if (!n)
            return vqm_error_set_errno(err, ENOMEM, "qcow2 writer");
        s->rt = n;
        s->cap_rt = cap;
    }
    s->rt[s->n_rt++] = off;
    return 0;
}

/* Allocate up to n contiguous clusters (at least one; fewer when a range
 * boundary comes first).  Their refcounts are set to 1.
 */
static int
alloc_run(struct qcow2w_stream *s, uint64_t n, uint64_t *first,
          uint64_t *got, struct vqm_error *err)
{
    uint64_t room, i;

    if (s->next / s->rbe != s->cur_range) {
        /* Entering the next range: its first cluster takes the block of
         * the range just finished.
         */
        uint64_t off = s->next * s->cs;

        if (write_be16_block(s, s->rb, off, err) < 0 ||
            rt_append(s, off, err) < 0)
            return -1;
        memset(s->rb, 0, s->rbe * 2);
        s->cur_range++;
        s->rb[0] = 1;
        s->next++;
    }
    if (s->next * s->cs >= QCOW2_MAX_HOST_OFFSET)
        return vqm_error_set(err, VQM_ERR_UNSUPPORTED,
                             "qcow2 file '%s' would grow past 2^56 bytes",
                             s->path);
    room = s->rbe - s->next % s->rbe;
    if (n > room)
        n = room;
    for (i = 0; i < n; i++)
        s->rb[(s->next + i) % s->rbe] = 1;
    *first = s->next;
    *got = n;
    s->next += n;
    s->ccluster = NO_CLUSTER;
    return 0;
}

static int
flush_l2(struct qcow2w_stream *s, struct vqm_error *err)
{
    uint64_t c, got, i;
    uint8_t *buf;
    int r;

    if (s->cur_l2 == NO_CLUSTER || !s->l2_used)
        return 0;
    if (alloc_run(s, 1, &c, &got, err) < 0)
        return -1;
    buf = malloc(s->cs);
    if (!buf)
        return vqm_error_set_errno(err, ENOMEM, "qcow2 writer");
    for (i = 0; i < s->l2_entries; i++)
        vqm_st_be64(buf + 8 * i, s->l2[i]);
    r = vqm_pwrite_full(s->fd, buf, s->cs, c * s->cs, s->path, err);
    free(buf);
    if (r < 0)
        return -1;
    s->meta_bytes += s->cs;
    s->l1[s->cur_l2] = (c * s->cs) | QCOW2_OFLAG_COPIED;
    s->l2_used = false;
    return 0;
}

static int
set_l2(struct qcow2w_stream *s, uint64_t g, uint64_t entry,
       struct vqm_error *err)
{
    uint64_t l1i = g / s->l2_entries;

    if (l1i >= s->l1_size)
        return vqm_error_set(err, VQM_ERR_INTERNAL,
                             "guest cluster %" PRIu64 " past the end", g);
    if (l1i != s->cur_l2) {
        if (flush_l2(s, err) < 0)
            return -1;
        memset(s->l2, 0, s->l2_entries * 8);
        s->cur_l2 = l1i;
    }
    s->l2[g % s->l2_entries] = entry;
    s->l2_used = true;
    return 0;
}

static int
check_order(struct qcow2w_stream *s, uint64_t g, uint64_t n,
            struct vqm_error *err)
{
    if (g < s->next_g || n > (UINT64_MAX >> s->cb) ||
        (g + n) > vqm_div_round_up(s->o.size, s->cs))
        return vqm_error_set(err, VQM_ERR_INTERNAL,
                             "qcow2 writer: guest clusters out of order");
    s->next_g = g + n;
    return 0;
}

int
qcow2w_stream_zero(struct qcow2w_stream *s, uint64_t g, uint64_t n,
                   struct vqm_error *err)
{
    uint64_t i;

    if (check_order(s, g, n, err) < 0)
        return -1;
    for (i = 0; i < n; i++)
        if (set_l2(s, g + i, QCOW2_OFLAG_ZERO, err) < 0)
            return -1;
    return 0;
}

static int
write_compressed(struct qcow2w_stream *s, uint64_t g, const uint8_t *data,
                 struct vqm_error *err)
{
    long clen;
    uint64_t off, nsec, entry, c, got;
    unsigned shift = 62 - (s->cb - 8);

    clen = qcow2w_compress_cluster(s->o.compress == QCOW2W_COMPRESS_ZSTD ?
                                   QCOW2W_COMPRESS_ZSTD :
                                   QCOW2W_COMPRESS_ZLIB,
                                   data, s->cs, s->cbuf, s->cs - 1, err);
    if (clen < 0)
        return -1;
    if (clen == 0) {
        /* Does not shrink: store it as a normal cluster. */
        if (alloc_run(s, 1, &c, &got, err) < 0 ||
            vqm_pwrite_full(s->fd, data, s->cs, c * s->cs, s->path, err) < 0)
            return -1;
        s->data_bytes += s->cs;
        return set_l2(s, g, (c * s->cs) | QCOW2_OFLAG_COPIED, err);
    }
    if (s->ccluster == NO_CLUSTER || s->cs - s->cpos < (uint64_t) clen) {
        if (alloc_run(s, 1, &c, &got, err) < 0)
            return -1;
        s->rb[c % s->rbe] = 0;          /* counted per compressed cluster */
        s->ccluster = c;
        s->cpos = 0;
    }
    off = s->ccluster * s->cs + s->cpos;
    if (vqm_pwrite_full(s->fd, s->cbuf, (size_t) clen, off, s->path, err) < 0)
        return -1;
    s->rb[s->ccluster % s->rbe]++;
    s->cpos += (uint64_t) clen;
    s->data_bytes += (uint64_t) clen;
    nsec = ((off + (uint64_t) clen - 1) >> 9) - (off >> 9);
    entry = off | QCOW2_OFLAG_COMPRESSED | (nsec << shift);
    {
        /* A later data write must not go into this cluster's tail. */
        uint64_t keep = s->ccluster, pos = s->cpos;
        if (set_l2(s, g, entry, err) < 0)
            return -1;
        if (s->ccluster == NO_CLUSTER && keep == s->next - 1) {
            s->ccluster = keep;
            s->cpos = pos;
        }
    }
    return 0;
}

/* One data run, by the direct descriptor when it is aligned for it.
 * Called by the writer thread (or by the caller without one); falls back
 * to the first descriptor, for good, when direct writes are refused.
 */
int
qcow2w_pwrite_direct(int dfd, size_t align, const void *p, size_t len,
                     uint64_t off, const char *path, struct vqm_error *err)
{
    struct vqm_error e;

    if (dfd < 0 || ((uintptr_t) p % align | len % align | off % align))
        return 1;
    memset(&e, 0, sizeof e);
    if (vqm_pwrite_full(dfd, p, len, off, path, &e) == 0)
        return 0;
    if (e.errnum == EINVAL)
        return 2;
    *err = e;
    return -1;
}

static int
write_data_now(struct qcow2w_stream *s, const void *p, size_t len,
               uint64_t off, struct vqm_error *err)
{
    int dfd = __atomic_load_n(&s->dfd, __ATOMIC_RELAXED);
    int r = qcow2w_pwrite_direct(dfd, s->dalign, p, len, off, s->path, err);

    if (r <= 0)
        return r;
    if (r == 2)         /* not here: buffered from now on */
        __atomic_store_n(&s->dfd, -1, __ATOMIC_RELAXED);
    return vqm_pwrite_full(s->fd, p, len, off, s->path, err);
}

static void *
dio_main(void *opaque)
{
    struct qcow2w_stream *s = opaque;
    struct dio *d = s->dio;

    pthread_mutex_lock(&d->lock);
    for (;;) {
        struct dio_job j;
        struct vqm_error e;
        bool skip;
        int r = 0;

        while (d->count == 0 && !d->stop)
            pthread_cond_wait(&d->cond, &d->lock);
        if (d->count == 0)
            break;
        j = d->q[d->head];
        skip = d->failed;
        pthread_mutex_unlock(&d->lock);
        memset(&e, 0, sizeof e);
        if (!skip)
            r = write_data_now(s, j.p, j.len, j.off, &e);
        pthread_mutex_lock(&d->lock);
        if (r < 0 && !d->failed) {
            d->failed = true;
            d->err = e;
        }
        d->head = (d->head + 1) % DIO_QUEUE;
        d->count--;
        d->completed++;
        pthread_cond_broadcast(&d->cond);
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

void
qcow2w_stream_set_direct(struct qcow2w_stream *s, int dfd, size_t align)
{
    s->dfd = align ? dfd : -1;
    s->dalign = align;
    if (s->dfd < 0 || s->dio)
        return;
    s->dio = calloc(1, sizeof *s->dio);
    if (!s->dio)
        return;                         /* writes in the caller's thread */
    pthread_mutex_init(&s->dio->lock, NULL);
    pthread_cond_init(&s->dio->cond, NULL);
    if (pthread_create(&s->dio->thread, NULL, dio_main, s) != 0) {
        pthread_cond_destroy(&s->dio->cond);
        pthread_mutex_destroy(&s->dio->lock);
        free(s->dio);
        s->dio = NULL;
    }
}

/* Stop the thread once the queue is empty (or, with discard, skip what
 * is still queued).
 */
static void
dio_stop(struct qcow2w_stream *s, bool discard)
{
    struct dio *d = s->dio;

    if (!d)
        return;
    pthread_mutex_lock(&d->lock);
    d->stop = true;
    if (discard)
        d->failed = true;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
    pthread_join(d->thread, NULL);
    pthread_cond_destroy(&d->cond);
    pthread_mutex_destroy(&d->lock);
    free(d);
    s->dio = NULL;
}

uint64_t
qcow2w_stream_ticket(const struct qcow2w_stream *s)
{
    uint64_t t = 0;

    if (s->dio) {
        pthread_mutex_lock(&s->dio->lock);
        t = s->dio->submitted;
        pthread_mutex_unlock(&s->dio->lock);
    }
    return t;
}

int
qcow2w_stream_wait(struct qcow2w_stream *s, uint64_t ticket,
                   struct vqm_error *err)
{
    struct dio *d = s->dio;
    int r = 0;

    if (!d)
        return 0;
    pthread_mutex_lock(&d->lock);
    while (d->completed < ticket && !d->failed)
        pthread_cond_wait(&d->cond, &d->lock);
    if (d->failed) {
        *err = d->err;
        r = -1;
    }
    pthread_mutex_unlock(&d->lock);
    return r;
}

/* A data run: queued for the writer thread when there is one. */
static int
write_data(struct qcow2w_stream *s, const void *p, size_t len, uint64_t off,
           struct vqm_error *err)
{
    struct dio *d = s->dio;
    int r = 0;

    if (!d)
        return write_data_now(s, p, len, off, err);
    pthread_mutex_lock(&d->lock);
    while (d->count == DIO_QUEUE && !d->failed)
        pthread_cond_wait(&d->cond, &d->lock);
    if (d->failed) {
        *err = d->err;
        r = -1;
    } else {
        d->q[(d->head + d->count) % DIO_QUEUE] =
            (struct dio_job) { .p = p, .len = len, .off = off };
        d->count++;
        d->submitted++;
        pthread_cond_broadcast(&d->cond);
    }
    pthread_mutex_unlock(&d->lock);
    return r;
}

int
qcow2w_stream_data(struct qcow2w_stream *s, uint64_t g, uint64_t n,
                   const void *data, struct vqm_error *err)
{
    const uint8_t *p = data;
    uint64_t first, got, i;

    if (check_order(s, g, n, err) < 0)
        return -1;
    if (s->o.compress) {
        for (i = 0; i < n; i++)
            if (write_compressed(s, g + i, p + i * s->cs, err) < 0)
                return -1;
        return 0;
    }
    while (n > 0) {
        if (alloc_run(s, n, &first, &got, err) < 0)
            return -1;
        if (write_data(s, p, got * s->cs, first * s->cs, err) < 0)
            return -1;
        s->data_bytes += got * s->cs;
        for (i = 0; i < got; i++)
            if (set_l2(s, g + i, ((first + i) * s->cs) | QCOW2_OFLAG_COPIED,
                       err) < 0)
                return -1;
        p += got * s->cs;
        g += got;
        n -= got;
    }
    return 0;
}

static int
copy_range(struct qcow2w_stream *s, int src_fd, uint64_t src_off,
           uint64_t dst_off, uint64_t len, struct vqm_error *err)
{
    static int no_cfr;
    uint8_t *buf = NULL;
    int ret = -1;

    if (vqm_fault_point("write", s->path, dst_off, len) < 0)
        return vqm_error_set_errno(err, errno, "write error on '%s' at "
                                   "offset %" PRIu64, s->path, dst_off);
    while (len > 0 && !no_cfr) {
        loff_t in = (loff_t) src_off, o = (loff_t) dst_off;
        ssize_t r = copy_file_range(src_fd, &in, s->fd, &o,
                                    len > (1u << 30) ? (1u << 30) : len, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
                errno == EOPNOTSUPP || errno == EBADF) {
                no_cfr = 1;
                break;
            }
            return vqm_error_set_errno(err, errno, "write error on '%s' at "
                                       "offset %" PRIu64, s->path, dst_off);
        }
        if (r == 0)
            break;                      /* source shorter: read path */
        src_off += (uint64_t) r;
        dst_off += (uint64_t) r;
        len -= (uint64_t) r;
    }
    if (len == 0)
        return 0;
    buf = malloc(1u << 20);
    if (!buf)
        return vqm_error_set_errno(err, ENOMEM, "qcow2 writer");
    while (len > 0) {
        size_t n = len > (1u << 20) ? (1u << 20) : (size_t) len;
        if (vqm_pread_full(src_fd, buf, n, src_off, 1, s->path, err) < 0 ||
            vqm_pwrite_full(s->fd, buf, n, dst_off, s->path, err) < 0)
            goto out;
        src_off += n;
        dst_off += n;
        len -= n;
    }
    ret = 0;
 out:
    free(buf);
    return ret;
}

int
qcow2w_stream_copy(struct qcow2w_stream *s, uint64_t g, uint64_t n,
                   int src_fd, uint64_t src_off, struct vqm_error *err)
{
    uint64_t first, got, i;

    if (s->o.compress)
        return vqm_error_set(err, VQM_ERR_INTERNAL,
                             "qcow2 writer: copy with compression");
    if (check_order(s, g, n, err) < 0)
        return -1;
    while (n > 0) {
        if (alloc_run(s, n, &first, &got, err) < 0)
            return -1;
        if (copy_range(s, src_fd, src_off, first * s->cs, got * s->cs,
                       err) < 0)
            return -1;
        s->data_bytes += got * s->cs;
        for (i = 0; i < got; i++)
            if (set_l2(s, g + i, ((first + i) * s->cs) | QCOW2_OFLAG_COPIED,
                       err) < 0)
                return -1;
        src_off += got * s->cs;
        g += got;
        n -= got;
    }
    return 0;
}

int
qcow2w_stream_finish(struct qcow2w_stream *s, struct vqm_error *err)
{
    uint64_t P, c, n_l1, nrb = 1, rt = 0, end = 0, last = 0, i, k;
    uint64_t prev_nrb, prev_rt;
    uint8_t *buf = NULL;
    uint16_t *rc = NULL;
    struct qcow2w_header h;
    int ret = -1;

    /* Every data write done (and its error seen) before the metadata. */
    if (s->dio) {
        if (qcow2w_stream_wait(s, qcow2w_stream_ticket(s), err) < 0)
            return -1;
        dio_stop(s, false);
    }
    if (flush_l2(s, err) < 0)
        return -1;
    s->ccluster = NO_CLUSTER;
    P = s->next;
    c = s->cur_range;
    n_l1 = vqm_div_round_up((uint64_t) s->l1_size * 8, s->cs);
    if (n_l1 == 0)
        n_l1 = 1;
    for (i = 0; i < 64; i++) {
        prev_nrb = nrb;
        prev_rt = rt;
        end = P + n_l1 + rt + nrb;
        last = (end - 1) / s->rbe;
        nrb = last - c + 1;
        rt = vqm_div_round_up((last + 1) * 8, s->cs);
        if (nrb == prev_nrb && rt == prev_rt)
            break;
    }
    end = P + n_l1 + rt + nrb;
    if (rt * s->cs > QCOW2_MAX_RT_BYTES || end * s->cs >= QCOW2_MAX_HOST_OFFSET)
        return vqm_error_set(err, VQM_ERR_UNSUPPORTED,
                             "qcow2 file '%s' too big for its refcount "
                             "table", s->path);

    /* L1 at P, converted to big-endian where it is (the writer is done
     * with it).
     */
    for (i = 0; i < s->l1_size; i++)
        if (s->l1[i])                   /* untouched pages stay unmapped */
            vqm_st_be64(&s->l1[i], s->l1[i]);
    if (vqm_pwrite_full(s->fd, s->l1, n_l1 * s->cs, P * s->cs, s->path,
                        err) < 0)
        goto out;
    s->meta_bytes += n_l1 * s->cs;

    /* Refcount blocks of ranges c..last at P + n_l1 + rt. */
    rc = calloc(s->rbe, 2);
    if (!rc)
        goto nomem;
    for (k = c; k <= last; k++) {
        uint64_t lo = k * s->rbe, hi = lo + s->rbe, j, off;

        if (k == c)
            memcpy(rc, s->rb, s->rbe * 2);
        else
            memset(rc, 0, s->rbe * 2);
        for (j = (P > lo ? P : lo); j < end && j < hi; j++)
            rc[j - lo] = 1;
        off = (P + n_l1 + rt + (k - c)) * s->cs;
        if (write_be16_block(s, rc, off, err) < 0 ||
            rt_append(s, off, err) < 0)
            goto out;
    }

    /* Refcount table. */
    buf = calloc(rt, s->cs);
    if (!buf)
        goto nomem;
    for (i = 0; i < s->n_rt; i++)
        vqm_st_be64(buf + 8 * i, s->rt[i]);
    if (vqm_pwrite_full(s->fd, buf, rt * s->cs, (P + n_l1) * s->cs, s->path,
                        err) < 0)
        goto out;
    s->meta_bytes += rt * s->cs;
    free(buf);

    /* Header: cluster 0, one write. */
    buf = malloc(s->cs);
    if (!buf)
        goto nomem;
    memset(&h, 0, sizeof h);
    h.cluster_bits = s->cb;
    h.size = s->o.size;
    h.l1_size = s->l1_size;
    h.l1_offset = P * s->cs;
    h.rt_offset = (P + n_l1) * s->cs;
    h.rt_clusters = (uint32_t) rt;
    h.compatible_features = s->o.lazy_refcounts ?
        QCOW2_COMPAT_LAZY_REFCOUNTS : 0;
    h.header_length = 112;
    h.compression_type = s->o.compress == QCOW2W_COMPRESS_ZSTD ? 1 : 0;
    h.backing_name = s->o.backing_name;
    h.backing_name_len = s->o.backing_name ? strlen(s->o.backing_name) : 0;
    h.backing_format = s->o.backing_name ? s->o.backing_format : NULL;
    if (qcow2w_header_build(&h, buf, s->cs, err) < 0 ||
        vqm_pwrite_full(s->fd, buf, s->cs, 0, s->path, err) < 0)
        goto out;
    s->meta_bytes += s->cs;
    if (vqm_sync(s->fd, 0, s->path, err) < 0)
        goto out;
    ret = 0;
    goto out;
 nomem:
    vqm_error_set_errno(err, ENOMEM, "qcow2 writer");
 out:
    free(buf);
    free(rc);
    return ret;
}
