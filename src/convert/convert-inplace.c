/* virt-qed-migrate: in-place conversion (formats.md 3.1 to 3.6).
 *
 * Data clusters stay where they are.  The qcow2 metadata goes past the
 * end of the file (a region no QED table references): the L1, the
 * refcount table and the refcount blocks, sized for an upper bound of
 * the L2 tables (the fixed point of 3.4), then the L2 tables themselves,
 * written in one pass over the QED map that also collects the data
 * clusters' refcounts.  Everything is made durable, then checked against
 * the QED tables; only then is sector 0 switched with one aligned
 * 512-byte write (the commit), made durable in turn.  After the commit
 * the old QED tables are free clusters; their space is punched out.
 * Invariant: until the commit the file is the untouched QED plus
 * unreferenced clusters at its end (a valid QED with leaks); after it,
 * a complete qcow2.  Memory: the qcow2 L1, a batch of L2 tables, and a
 * window of at most REFCOUNT_WINDOW bytes of refcount blocks.
 */
#include <config.h>

#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "overflow.h"
#include "vqm-debug.h"
#include "vqm-endian.h"
#include "vqm-io.h"
#include "convert-internal.h"

#define REFCOUNT_WINDOW (8u << 20)
#define L2_BATCH (4u << 20)
#define WRITEBACK_STEP (16u << 20)
#define DIRECT_ALIGN 4096u      /* of direct writes: memory, offset, length */
#define VERIFY_L1_CHUNK (1u << 20)
#define RC_BITMAP_MAX (16u << 20)

/* The writer thread's one pending write. */
struct ipw {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    const void *p;
    size_t len;
    uint64_t off;
    bool busy, stop, failed, started;
    struct vqm_error err;
};

/* Geometry shared by the passes. */
struct ip {
    struct conv *c;
    unsigned qcb;
    uint64_t qcs;
    uint64_t l2e;               /* entries per qcow2 L2 */
    uint64_t span;              /* guest bytes per qcow2 L2 */
    uint64_t size;
    struct qcow2w_layout lay;
    uint64_t name_off;          /* 0 = inline */
    uint64_t n_l2;
    int dfd;                    /* O_DIRECT descriptor of the file, or -1 */
    struct conv_wb *wb;         /* writeback of the new metadata, or NULL */
    uint64_t unkicked;          /* bytes written since the last kick */
    struct ipw w;
};

static void
ip_init(struct ip *ip, struct conv *c)
{
    unsigned cb = c->info->cluster_bits;

    memset(ip, 0, sizeof *ip);
    ip->c = c;
    ip->qcb = cb > QCOW2_MAX_CLUSTER_BITS ? QCOW2_MAX_CLUSTER_BITS : cb;
    ip->qcs = 1ULL << ip->qcb;
    ip->l2e = ip->qcs / 8;
    ip->span = ip->qcs * ip->l2e;
    ip->size = c->info->image_size;
    ip->dfd = -1;
}

/* An upper bound of the qcow2 L2 tables: each valid QED L2 table maps a
 * whole number of qcow2 L2 ranges (both spans are powers of two, the
 * QED one the bigger).
 */
static uint64_t
l2_bound(struct ip *ip)
{
    const struct qed_info *info = ip->c->info;
    uint64_t qed_span = info->table_entries * info->cluster_size;
    uint64_t factor = qed_span / ip->span, l1e, n;

    l1e = qcow2w_l1_entries(ip->size, ip->qcb);
    if (factor == 0)
        factor = 1;
    if (vqm_mul_overflow(ip->c->check.l2_tables, factor, &n) || n > l1e)
        n = l1e;
    return n;
}

/* Where the backing name goes: 0 = inline in the commit sector, else an
 * offset in cluster 0 outside what the live QED uses.  Returns 0 and
 * sets *off, or 1 with a reason when it cannot be placed.
 */
static int
place_name(struct ip *ip, const struct qcow2w_header *h, uint64_t *off,
           char *reason, size_t reasonlen)
{
    const struct qed_info *info = ip->c->info;
    uint64_t len = ip->c->bname_len, cand[2];
    uint64_t q0 = 0, q1 = 0;
    size_t i;

    *off = 0;
    if (!ip->c->bname)
        return 0;
    if (len > QCOW2_MAX_BACKING_NAME) {
        snprintf(reason, reasonlen, "the backing file name is %" PRIu64
                 " bytes long, qcow2 allows %d", len, QCOW2_MAX_BACKING_NAME);
        return 1;
    }
    if (qcow2w_header_ext_len(h) + len <= QCOW2_COMMIT_SECTOR)
        return 0;
    if (info->has_backing) {
        q0 = info->backing_filename_offset;
        q1 = q0 + info->backing_filename_size;
    }
    cand[0] = QCOW2_COMMIT_SECTOR;
    cand[1] = vqm_align_up(q1 > QCOW2_COMMIT_SECTOR ? q1 : 512, 8);
    for (i = 0; i < 2; i++) {
        uint64_t o = cand[i];
        if (o + len > ip->qcs)
            continue;
        if (q1 > q0 && o < q1 && o + len > q0)
            continue;                       /* overlaps the QED name */
        *off = o;
        return 0;
    }
    snprintf(reason, reasonlen, "the backing file name (%" PRIu64 " bytes) "
             "does not fit the first qcow2 cluster next to the QED one", len);
    return 1;
}

static void
fill_header(struct ip *ip, struct qcow2w_header *h)
{
    memset(h, 0, sizeof *h);
    h->cluster_bits = ip->qcb;
    h->size = ip->size;
    h->l1_size = ip->lay.l1_size;
    h->l1_offset = ip->lay.l1_offset;
    h->rt_offset = ip->lay.rt_offset;
    h->rt_clusters = (uint32_t) ip->lay.rt;
    h->header_length = 104;
    h->backing_name = ip->c->bname;
    h->backing_name_len = ip->c->bname_len;
    h->backing_format = ip->c->bname ? ip->c->bfmt : NULL;
    h->backing_name_offset = ip->name_off;
}

/* Where the new metadata starts: past the end of the file, so that
 * nothing the live QED uses is touched; on a device, or when the file
 * ends with a long run of clusters no table references (a sparse file
 * with a huge apparent size), right after the last cluster in use, so
 * that the refcounts cover what the tables use and not the whole file.
 */
#define TAIL_REUSE (1ULL << 30)
static uint64_t
ip_base(struct ip *ip)
{
    struct conv *c = ip->c;
    const struct qed_info *info = c->info;

    if (c->is_blk || c->length - c->check.highest_used_end > TAIL_REUSE) {
        uint64_t b = c->check.highest_used_end;
        uint64_t l1end = info->l1_table_offset +
            (uint64_t) info->table_size * info->cluster_size;
        uint64_t hdr = (uint64_t) info->header_size * info->cluster_size;
        if (l1end > b)
            b = l1end;
        if (hdr > b)
            b = hdr;
        return vqm_align_up(b, ip->qcs);
    }
    return vqm_align_up(c->length, ip->qcs);
}

int
conv_inplace_plan(struct conv *c, char *reason, size_t reasonlen,
                  struct vqm_error *err)
{
    const struct qed_info *info = c->info;
    struct ip ip;
    struct qcow2w_header h;
    struct vqm_error e2 = { 0 };

    reason[0] = '\0';
    if (info->compat_features) {
        snprintf(reason, reasonlen, "unknown QED compat features 0x%" PRIx64
                 " are set", info->compat_features);
        return 0;
    }
    if (c->check.corruptions) {
        snprintf(reason, reasonlen, "the image is corrupt");
        return 0;
    }
    ip_init(&ip, c);
    if (qcow2w_layout_compute_order(ip_base(&ip), ip.qcb, ip.size,
                                    l2_bound(&ip), true, &ip.lay, &e2) < 0) {
        if (e2.code != VQM_ERR_UNSUPPORTED) {
            if (err)
                *err = e2;
            return -1;
        }
        snprintf(reason, reasonlen, "%s", e2.msg);
        return 0;
    }
    if (c->is_blk && ip.lay.end > c->length) {
        snprintf(reason, reasonlen, "the device has no room for %" PRIu64
                 " bytes of qcow2 metadata after the QED data",
                 ip.lay.end - ip.lay.base);
        return 0;
    }
    fill_header(&ip, &h);
    h.backing_name_offset = 0;
    if (place_name(&ip, &h, &ip.name_off, reason, reasonlen))
        return 0;
    if (c->bname && (!c->bfmt || strlen(c->bfmt) >= 16)) {
        snprintf(reason, reasonlen, "the backing file format is unknown");
        return 0;
    }
    c->res->metadata_bytes = ip.lay.end - ip.lay.base;
    return 0;
}

/* Write len bytes of buf at off on the source: by the direct
 * descriptor when it is aligned for it (no copy into the page cache,
 * nothing left dirty for the fsync before the commit), else buffered,
 * and then every WRITEBACK_STEP bytes the writeback of what is dirty is
 * started, so that the disk works while the next tables are built.
 */
static int
write_now(struct ip *ip, const void *buf, size_t len, uint64_t off,
          struct vqm_error *err)
{
    int r = qcow2w_pwrite_direct(ip->dfd, DIRECT_ALIGN, buf, len, off,
                                 ip->c->path, err);

    if (r <= 0)
        return r;
    if (r == 2) {       /* refused here: buffered from now on */
        close(ip->dfd);
        ip->dfd = -1;
    }
    if (vqm_pwrite_full(ip->c->fd, buf, len, off, ip->c->path, err) < 0)
        return -1;
    ip->unkicked += len;
    if (ip->wb && ip->unkicked >= WRITEBACK_STEP) {
        ip->unkicked = 0;
        conv_wb_kick(ip->wb);
    }
    return 0;
}

/* The writer thread: one write at a time, handed over by ip_submit, so
 * that the next batch of tables is built while the last one goes to the
 * disk.  A buffer handed over belongs to the thread until the next
 * ip_submit or ip_drain returns.  Without the thread, writes are done
 * inline.
 */
static void *
writer_main(void *opaque)
{
    struct ip *ip = opaque;
    struct ipw *w = &ip->w;

    pthread_mutex_lock(&w->lock);
    for (;;) {
        struct vqm_error e;
        int r = 0;

        while (!w->busy && !w->stop)
            pthread_cond_wait(&w->cond, &w->lock);
        if (!w->busy)
            break;
        pthread_mutex_unlock(&w->lock);
        memset(&e, 0, sizeof e);
        if (!w->failed)
            r = write_now(ip, w->p, w->len, w->off, &e);
        pthread_mutex_lock(&w->lock);
        if (r < 0) {
            w->failed = true;
            w->err = e;
        }
        w->busy = false;
        pthread_cond_broadcast(&w->cond);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* Wait until the thread is idle; its first error, if any. */
static int
ip_drain(struct ip *ip, struct vqm_error *err)
{
    struct ipw *w = &ip->w;
    int r = 0;

    if (!w->started)
        return 0;
    pthread_mutex_lock(&w->lock);
    while (w->busy)
        pthread_cond_wait(&w->cond, &w->lock);
    if (w->failed) {
        *err = w->err;
        r = -1;
    }
    pthread_mutex_unlock(&w->lock);
    return r;
}

static int
ip_submit(struct ip *ip, const void *buf, size_t len, uint64_t off,
          struct vqm_error *err)
{
    struct ipw *w = &ip->w;

    if (!w->started)
        return write_now(ip, buf, len, off, err);
    if (ip_drain(ip, err) < 0)
        return -1;
    pthread_mutex_lock(&w->lock);
    w->p = buf;
    w->len = len;
    w->off = off;
    w->busy = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    return 0;
}

/* A write whose buffer the caller reuses at once. */
static int
ip_write(struct ip *ip, const void *buf, size_t len, uint64_t off,
         struct vqm_error *err)
{
    if (ip_submit(ip, buf, len, off, err) < 0)
        return -1;
    return ip_drain(ip, err);
}

static void
writer_start(struct ip *ip)
{
    struct ipw *w = &ip->w;

    memset(w, 0, sizeof *w);
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    w->started = pthread_create(&w->thread, NULL, writer_main, ip) == 0;
    if (!w->started) {
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
    }
}

static void
writer_stop(struct ip *ip)
{
    struct ipw *w = &ip->w;

    if (!w->started)
        return;
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    w->started = false;
}

/* The one pass over the QED map: build the L2 tables in guest order and
 * write them (in batches) from lay.l2_offset on, fill the L1, and set the
 * data clusters' refcounts in rc (blocks covering host clusters
 * [0, rc_hi)), or note in *rc_miss that some lie beyond.  Sets n_l2.
 */
static int
write_l2_in(struct ip *ip, uint8_t *bufs, size_t batch_max, uint64_t *l1,
            uint64_t *rc, uint64_t rc_hi, bool *rc_miss,
            struct vqm_error *err)
{
    struct conv *c = ip->c;
    uint64_t off = 0, cur = UINT64_MAX, idx = 0, nbatch = 0, batch_start = 0;
    uint8_t *batch = bufs;
    uint8_t *l2 = NULL;
    struct qed_extent e;
    unsigned l2bits = 2 * ip->qcb - 3;  /* log2 of the span of an L2 */

    while (off < ip->size) {
        uint64_t r, g, end;

        if (qed_extent_at(c->qed, off, 0, &e, err) < 0)
            return -1;
        if (e.length == 0)
            return vqm_error_set(err, VQM_ERR_INTERNAL, "empty extent");
        end = e.offset + e.length;
        if (e.kind == QED_EXTENT_UNALLOCATED) {
            off = end;
            continue;
        }
        /* Walk the extent one qcow2 L2 table's range at a time, with
         * shifts (the sizes are powers of two) and no call per cluster.
         */
        for (g = e.offset; g < end; ) {
            uint64_t gend, ci, c0, host = 0, rcl = 0, k;
            uint8_t *ent;

            r = g >> l2bits;
            if (r != cur) {
                if (nbatch == batch_max) {
                    if (ip_submit(ip, batch, nbatch * ip->qcs,
                                  ip->lay.l2_offset + batch_start * ip->qcs,
                                  err) < 0)
                        return -1;
                    /* The other buffer: its write is done. */
                    batch = batch == bufs ? bufs + batch_max * ip->qcs : bufs;
                    batch_start += nbatch;
                    nbatch = 0;
                    conv_progress(c, batch_max);
                }
                if (idx >= ip->lay.n_l2)
                    return vqm_error_set(err, VQM_ERR_INTERNAL,
                                         "'%s': more qcow2 L2 tables than "
                                         "the QED tables allow", c->path);
                l2 = batch + nbatch * ip->qcs;
                memset(l2, 0, ip->qcs);
                l1[r] = (ip->lay.l2_offset + idx * ip->qcs) |
                    QCOW2_OFLAG_COPIED;
                idx++;
                nbatch++;
                cur = r;
            }
            gend = (r + 1) << l2bits;
            if (gend > end || gend == 0)
                gend = end;
            c0 = g >> ip->qcb;
            ci = vqm_div_round_up(gend - (c0 << ip->qcb), ip->qcs);
            ent = l2 + 8 * (c0 & (ip->l2e - 1));
            if (e.kind == QED_EXTENT_ZERO) {
                for (k = 0; k < ci; k++)
                    vqm_st_be64(ent + 8 * k, QCOW2_OFLAG_ZERO);
            } else {
                host = e.host_offset + (g - e.offset);
                rcl = host >> ip->qcb;
                for (k = 0; k < ci; k++)
                    vqm_st_be64(ent + 8 * k, (host + (k << ip->qcb)) |
                                QCOW2_OFLAG_COPIED);
                for (k = 0; rc && k < ci; k++) {
                    uint64_t cl = rcl + k, bit = 1ULL << (cl & 63);

                    if (cl >= rc_hi) {
                        *rc_miss = true;
                        break;
                    }
                    if (rc[cl >> 6] & bit)
                        return vqm_error_set(err, VQM_ERR_CORRUPT,
                                             "'%s': host cluster %" PRIu64
                                             " referenced twice", c->path,
                                             cl);
                    rc[cl >> 6] |= bit;
                }
            }
            g = gend;
        }
        off = end;
    }
    if (nbatch && ip_write(ip, batch, nbatch * ip->qcs,
                           ip->lay.l2_offset + batch_start * ip->qcs,
                           err) < 0)
        return -1;
    conv_progress(c, nbatch);
    ip->n_l2 = idx;
    return 0;
}

/* Two batches of tables: one is built while the other is written. */
static int
write_l2(struct ip *ip, uint64_t *l1, uint64_t *rc, uint64_t rc_hi,
         bool *rc_miss, struct vqm_error *err)
{
    size_t batch_max = L2_BATCH > ip->qcs ? L2_BATCH / ip->qcs : 1;
    CLEANUP_FREE uint8_t *bufs = NULL;
    struct vqm_error e2;
    int r;

    if (posix_memalign((void **) &bufs, DIRECT_ALIGN,
                       2 * batch_max * ip->qcs))
        return vqm_error_set_errno(err, ENOMEM, "L2 tables");
    r = write_l2_in(ip, bufs, batch_max, l1, rc, rc_hi, rc_miss, err);
    memset(&e2, 0, sizeof e2);
    if (ip_drain(ip, r < 0 ? &e2 : err) < 0)
        r = -1;
    return r;
}

/* The refcount blocks, one window of blocks at a time.  bits, when not
 * NULL, marks the data clusters among host clusters [0, nbits),
 * collected by the pass that wrote the L2 tables; without it, the QED
 * map is walked again for each window.
 */
static int
write_refcounts_in(struct ip *ip, uint8_t *bufs, uint64_t per,
                   const uint64_t *bits, uint64_t nbits,
                   struct vqm_error *err)
{
    struct conv *c = ip->c;
    uint64_t rbe = ip->lay.rb_entries, w;
    uint64_t meta0 = ip->lay.base / ip->qcs, meta1 = ip->lay.end / ip->qcs;
    uint8_t *buf = bufs + per * ip->qcs;

    for (w = 0; w < ip->lay.rb; w += per) {
        uint64_t nb = ip->lay.rb - w < per ? ip->lay.rb - w : per;
        uint64_t lo = w * rbe, hi = (w + nb) * rbe, k, off = 0;
        struct qed_extent e;

        /* The other buffer: its write is done. */
        buf = buf == bufs ? bufs + per * ip->qcs : bufs;
#define RC_SET(cl) vqm_st_be16(buf + 2 * ((cl) - lo), 1)
        memset(buf, 0, nb * ip->qcs);
        if (bits) {
            /* lo is a multiple of 64 (rbe is a power of two >= 256). */
            static const uint8_t ones[128] = {
#define ONE2 0, 1
#define ONE16 ONE2, ONE2, ONE2, ONE2, ONE2, ONE2, ONE2, ONE2
                ONE16, ONE16, ONE16, ONE16, ONE16, ONE16, ONE16, ONE16
#undef ONE16
#undef ONE2
            };

            for (k = lo; k < hi && k < nbits; k += 64) {
                uint64_t word = bits[k >> 6], j;

                if (word == UINT64_MAX) {       /* 64 big-endian 1s */
                    memcpy(buf + 2 * (k - lo), ones, sizeof ones);
                    continue;
                }
                for (j = 0; word; j++, word >>= 1)
                    if (word & 1)
                        RC_SET(k + j);
            }
        } else {
            while (off < ip->size) {
                uint64_t n, h0;

                if (qed_extent_at(c->qed, off, 0, &e, err) < 0)
                    return -1;
                off = e.offset + e.length;
                if (e.kind != QED_EXTENT_DATA)
                    continue;
                n = vqm_div_round_up(e.length, ip->qcs);
                h0 = e.host_offset / ip->qcs;
                if (h0 + n <= lo || h0 >= hi)
                    continue;
                for (k = h0 > lo ? h0 : lo; k < h0 + n && k < hi; k++) {
                    if (vqm_ld_be16(buf + 2 * (k - lo)))
                        return vqm_error_set(err, VQM_ERR_CORRUPT,
                                             "'%s': host cluster %" PRIu64
                                             " referenced twice", c->path, k);
                    RC_SET(k);
                }
            }
        }
        if (lo == 0)
            RC_SET(0);
        for (k = meta0 > lo ? meta0 : lo; k < meta1 && k < hi; k++)
            RC_SET(k);
#undef RC_SET
        if (ip_submit(ip, buf, nb * ip->qcs, ip->lay.rb_offset + w * ip->qcs,
                      err) < 0)
            return -1;
        conv_progress(c, nb);
    }
    return 0;
}

/* Two windows of REFCOUNT_WINDOW / 2: one is filled while the other is
 * written.
 */
static int
write_refcounts(struct ip *ip, const uint64_t *bits, uint64_t nbits,
                struct vqm_error *err)
{
    uint64_t per = REFCOUNT_WINDOW / 2 / ip->qcs;
    CLEANUP_FREE uint8_t *bufs = NULL;
    struct vqm_error e2;
    int r;

    if (per == 0)
        per = 1;
    if (per > ip->lay.rb)
        per = ip->lay.rb;
    if (posix_memalign((void **) &bufs, DIRECT_ALIGN, 2 * per * ip->qcs))
        return vqm_error_set_errno(err, ENOMEM, "refcount blocks");
    r = write_refcounts_in(ip, bufs, per, bits, nbits, err);
    memset(&e2, 0, sizeof e2);
    if (ip_drain(ip, r < 0 ? &e2 : err) < 0)
        r = -1;
    return r;
}

/* Read back the qcow2 L1/L2 just written and compare every entry with the
 * QED tables, which are still the live ones.
 */
static int
verify_map(struct ip *ip, struct vqm_error *err)
{
    struct conv *c = ip->c;
    uint64_t cs = c->info->cluster_size;
    uint64_t nclusters = vqm_div_round_up(ip->size, ip->qcs), r, j;
    uint64_t per = VERIFY_L1_CHUNK / 8;
    CLEANUP_FREE uint8_t *l1 = malloc(VERIFY_L1_CHUNK);
    CLEANUP_FREE uint8_t *l2 = malloc(ip->qcs);

    if (!l1 || !l2)
        return vqm_error_set_errno(err, ENOMEM, "verify");
    for (r = 0; r < ip->lay.l1_size; r++) {
        uint64_t l1e, g0 = r * ip->l2e;

        if (r % per == 0) {
            uint64_t n = ip->lay.l1_size - r < per ? ip->lay.l1_size - r : per;
            if (vqm_pread_full(c->fd, l1, n * 8, ip->lay.l1_offset + r * 8,
                               0, c->path, err) < 0)
                return -1;
        }
        l1e = vqm_ld_be64(l1 + 8 * (r % per));

        if (l1e == 0) {
            struct qed_extent e;
            uint64_t start = r * ip->span, len = ip->size - start;
            if (len > ip->span)
                len = ip->span;
            if (qed_extent_at(c->qed, start, len, &e, err) < 0)
                return -1;
            if (e.kind != QED_EXTENT_UNALLOCATED || e.length != len)
                return vqm_error_set(err, VQM_ERR_INTERNAL,
                                     "verification failed: qcow2 L1 entry "
                                     "%" PRIu64 " is empty, the QED range "
                                     "is not", r);
            continue;
        }
        if ((l1e & ~(QCOW2_OFFSET_MASK | QCOW2_OFLAG_COPIED)) ||
            !(l1e & QCOW2_OFLAG_COPIED))
            return vqm_error_set(err, VQM_ERR_INTERNAL,
                                 "verification failed: bad L1 entry %" PRIu64,
                                 r);
        if (vqm_pread_full(c->fd, l2, ip->qcs, l1e & QCOW2_OFFSET_MASK, 0,
                           c->path, err) < 0)
            return -1;
        for (j = 0; j < ip->l2e; j++) {
            uint64_t g = g0 + j, got = vqm_ld_be64(l2 + 8 * j), q, want;

            if (g >= nclusters) {
                if (got)
                    return vqm_error_set(err, VQM_ERR_INTERNAL,
                                         "verification failed: entry past "
                                         "the end");
                continue;
            }
            if (qed_lookup(c->qed, g * ip->qcs, &q, err) < 0)
                return -1;
            if (q == 0)
                want = 0;
            else if (q == QED_ZERO_ENTRY)
                want = QCOW2_OFLAG_ZERO;
            else
                want = (q + (g * ip->qcs) % cs) | QCOW2_OFLAG_COPIED;
            if (got != want)
                return vqm_error_set(err, VQM_ERR_INTERNAL,
                                     "verification failed: guest cluster %"
                                     PRIu64 ": qcow2 entry 0x%" PRIx64
                                     ", QED says 0x%" PRIx64, g, got, q);
        }
    }
    return 0;
}

static void
punch(struct conv *c, uint64_t off, uint64_t len, int *failed)
{
    if (len == 0 || *failed)
        return;
    if (vqm_fault_point("write", c->path, off, len) < 0 ||
        fallocate(c->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                  (off_t) off, (off_t) len) < 0) {
        if (errno != EOPNOTSUPP && errno != ENOSYS)
            vqm_debug("cannot punch a hole in '%s': %s", c->path,
                      strerror(errno));
        *failed = 1;
    }
}

/* Free the old QED tables and header clusters (they are refcount 0).
 * The QED L1 is still intact on disk (only L2 tables are punched before
 * it); it is read in chunks, its entries were validated by the check.
 */
static void
punch_old_tables(struct ip *ip)
{
    struct conv *c = ip->c;
    const struct qed_info *info = c->info;
    uint64_t tbytes = (uint64_t) info->table_size * info->cluster_size;
    uint64_t i, hdr = (uint64_t) info->header_size * info->cluster_size;
    uint64_t chunk = 1u << 20, done;
    struct vqm_error e2 = { 0 };
    CLEANUP_FREE uint8_t *buf = malloc(chunk);
    int failed = 0;

    if (!buf)
        return;
    for (done = 0; done < tbytes && !failed; done += chunk) {
        uint64_t n = tbytes - done < chunk ? tbytes - done : chunk;
        if (vqm_pread_full(c->fd, buf, n, info->l1_table_offset + done, 0,
                           c->path, &e2) < 0)
            return;
        for (i = 0; i < n / 8 && !failed; i++) {
            uint64_t e = vqm_ld_le64(buf + 8 * i);
            if (e)
                punch(c, e, tbytes, &failed);
        }
    }
    punch(c, info->l1_table_offset, tbytes, &failed);
    if (hdr > ip->qcs)
        punch(c, ip->qcs, hdr - ip->qcs, &failed);
    /* No fsync: the punched clusters are free in the qcow2 committed
     * before, whether or not the punches reach the disk.
     */
}

int
conv_inplace(struct conv *c, struct vqm_error *err)
{
    struct ip ip;
    struct qcow2w_header h;
    char reason[512] = "";
    uint8_t sector[QCOW2_COMMIT_SECTOR], now[QCOW2_COMMIT_SECTOR];
    CLEANUP_FREE uint64_t *l1 = NULL;
    CLEANUP_FREE uint8_t *buf = NULL;
    CLEANUP_FREE uint64_t *rcbits = NULL;
    uint64_t rc_n = 0;
    bool rc_miss = false;
    uint64_t i;
    struct conv_digest hash_before = { 0, 0 }, hash_after = { 0, 0 };
    struct conv_holes holes;
    bool committed = false;
    struct conv_wb wb;
    const char *direct;
    int ret = -1;

    ip_init(&ip, c);
    if (qcow2w_layout_compute_order(ip_base(&ip), ip.qcb, ip.size,
                                    l2_bound(&ip), true, &ip.lay, err) < 0)
        return -1;
    fill_header(&ip, &h);
    h.backing_name_offset = 0;
    if (place_name(&ip, &h, &ip.name_off, reason, sizeof reason))
        return vqm_error_set(err, VQM_ERR_UNSUPPORTED, "'%s': %s", c->path,
                             reason);
    fill_header(&ip, &h);
    if (qcow2w_header_build(&h, sector, sizeof sector, err) < 0)
        return -1;
    c->progress_total = ip.lay.n_l2 + ip.lay.rb + 4;

    conv_holes_init(&holes, c->fd, true);
    if (c->o->verify_full && c->chain &&
        conv_hash_image(c->chain, &holes, &hash_before, err) < 0)
        return -1;

    l1 = calloc(ip.lay.n_l1 * ip.qcs / 8, 8);
    if (!l1)
        return vqm_error_set_errno(err, ENOMEM, "L1 table");
    /* The data clusters (all below the new metadata) are marked in a
     * bitmap in the same pass, when it fits RC_BITMAP_MAX (1 TiB of
     * 64 KiB clusters: 2 MiB); else the refcount pass walks the map once
     * per window.
     */
    rc_n = vqm_align_up(ip.lay.base / ip.qcs, 64);
    if (rc_n / 8 <= RC_BITMAP_MAX) {
        rcbits = calloc(rc_n / 64 + 1, 8);
        if (!rcbits)
            return vqm_error_set_errno(err, ENOMEM, "refcount bitmap");
    }

    /* Step 3: the new metadata past the end of the file. */
    /* VQM_INPLACE_DIRECT=0: buffered writes (for measurements). */
    direct = getenv("VQM_INPLACE_DIRECT");
    if (ip.qcs >= DIRECT_ALIGN && !(direct && strcmp(direct, "0") == 0)) {
        char procpath[64];

        /* The descriptor we hold, never the name again. */
        snprintf(procpath, sizeof procpath, "/proc/self/fd/%d", c->fd);
        ip.dfd = open(procpath, O_WRONLY | O_DIRECT | O_CLOEXEC);
        vqm_debug("in place: direct metadata writes: %s",
                  ip.dfd >= 0 ? "yes" : strerror(errno));
    }
    /* The threads pay off when there are batches to overlap. */
    if (ip.lay.end - ip.lay.base > 2 * L2_BATCH) {
        conv_wb_start(&wb, c->fd);
        ip.wb = &wb;
        writer_start(&ip);
    }
    if (write_l2(&ip, l1, rcbits, rc_n, &rc_miss, err) < 0)
        goto fail;
    if (rc_miss) {
        free(rcbits);
        rcbits = NULL;
    }
    ip.lay.end = ip.lay.l2_offset + ip.n_l2 * ip.qcs;
    c->progress_total = c->progress_done + ip.lay.rb + 4;
    c->res->metadata_bytes = ip.lay.end - ip.lay.base;
    vqm_debug("in place: qcow2 cluster %" PRIu64 ", base %" PRIu64
              ", %" PRIu64 " L1 clusters, %" PRIu64 " refcount blocks, %"
              PRIu64 " L2 tables (bound %" PRIu64 "), end %" PRIu64,
              ip.qcs, ip.lay.base, ip.lay.n_l1, ip.lay.rb, ip.n_l2,
              ip.lay.n_l2, ip.lay.end);
    /* The L1, converted to big-endian where it is (up to 32 MiB: no
     * second copy), then freed.
     */
    for (i = 0; i < ip.lay.l1_size; i++)
        if (l1[i])                      /* untouched pages stay unmapped */
            vqm_st_be64(&l1[i], l1[i]);
    if (ip_write(&ip, l1, ip.lay.n_l1 * ip.qcs, ip.lay.l1_offset, err) < 0)
        goto fail;
    free(l1);
    l1 = NULL;
    buf = calloc(ip.lay.rt, ip.qcs);
    if (!buf) {
        vqm_error_set_errno(err, ENOMEM, "refcount table");
        goto fail;
    }
    for (i = 0; i < ip.lay.rb; i++)
        vqm_st_be64(buf + 8 * i, ip.lay.rb_offset + i * ip.qcs);
    if (ip_write(&ip, buf, ip.lay.rt * ip.qcs, ip.lay.rt_offset, err) < 0)
        goto fail;
    conv_progress(c, 1);
    if (write_refcounts(&ip, rcbits, rc_n, err) < 0)
        goto fail;
    if (ip.name_off &&
        ip_write(&ip, c->bname, c->bname_len, ip.name_off, err) < 0)
        goto fail;
    writer_stop(&ip);
    if (ip.wb)
        conv_wb_stop(ip.wb);
    ip.wb = NULL;
    if (ip.dfd >= 0)
        close(ip.dfd);
    ip.dfd = -1;
    if (vqm_sync(c->fd, 0, c->path, err) < 0)
        goto fail;
    conv_progress(c, 1);

    /* Check what is on disk before switching. */
    if (c->o->verify) {
        if (verify_map(&ip, err) < 0)
            goto fail;
        c->res->verified = true;
    }

    /* Step 4: the commit.  Sector 0 must still be what we checked. */
    if (vqm_pread_full(c->fd, now, sizeof now, 0, 1, c->path, err) < 0)
        goto fail;
    if (memcmp(now, c->sector0, sizeof now) != 0) {
        vqm_error_set(err, VQM_ERR_BUSY, "'%s' changed while it was being "
                      "converted", c->path);
        goto fail;
    }
    if (ip_write(&ip, sector, sizeof sector, 0, err) < 0)
        goto fail;
    committed = true;
    if (vqm_sync(c->fd, 0, c->path, err) < 0)
        goto fail;
    conv_progress(c, 1);

    /* Step 5: give back the old tables, and the unreferenced tail the
     * new metadata was written over (the file then ends with it: the
     * 15 TiB a sparse file claimed are not left to every later tool).
     */
    if (!c->o->no_punch) {
        punch_old_tables(&ip);
        if (!c->is_blk && ip.lay.end < c->length) {
            /* Not synced either: a longer file is the same qcow2. */
            if (vqm_fault_point("write", c->path, ip.lay.end, 0) < 0 ||
                ftruncate(c->fd, (off_t) ip.lay.end) < 0)
                vqm_debug("cannot shorten '%s': %s", c->path,
                          strerror(errno));
        }
    }
    conv_progress(c, 1);

    if (c->o->verify_full && c->chain) {
        struct vqm_image *img = NULL;
        int r;

        /* The guest data through the new qcow2, against the hash taken
         * through the QED before anything was written.
         */
        if (vqm_image_open_fd(c->fd, c->path, c->real, "qcow2", true,
                              &c->o->policy, &img, err) < 0)
            goto fail;
        conv_holes_init(&holes, c->fd, true);
        r = conv_hash_image(img, &holes, &hash_after, err);
        vqm_image_close(img);
        if (r < 0)
            goto fail;
        if (hash_after.lo != hash_before.lo
            || hash_after.hi != hash_before.hi) {
            vqm_error_set(err, VQM_ERR_INTERNAL, "verification failed: "
                          "the guest data of '%s' changed", c->path);
            goto fail;
        }
        c->res->verified = true;
    }
    conv_progress(c, c->progress_total);
    ret = 0;
    return ret;

 fail:
    writer_stop(&ip);
    if (ip.wb)
        conv_wb_stop(ip.wb);
    if (ip.dfd >= 0)
        close(ip.dfd);
    if (!committed) {
        /* Give back the appended region (a retry would append again). */
        struct vqm_error e2 = { 0 };
        if (!c->is_blk &&
            vqm_fault_point("write", c->path, c->length, 0) == 0 &&
            ftruncate(c->fd, (off_t) c->length) == 0)
            (void) vqm_sync(c->fd, 0, c->path, &e2);
    }
    return -1;
}
