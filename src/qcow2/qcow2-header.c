/* virt-qed-migrate: qcow2 v3 header builder and in-place layout.
 *
 * The header is laid out as QEMU writes it: the fixed fields, the
 * backing-format extension, the end marker, then (inline) the backing
 * name.  The feature-name table is left out so that everything fits one
 * 512-byte sector (formats.md 3.5).  The layout keeps the refcount table
 * and blocks big enough to cover themselves (fixed point, 3.4).
 */
#include <config.h>

#include <inttypes.h>
#include <string.h>

#include "overflow.h"
#include "vqm-endian.h"
#include "qcow2-writer.h"

uint64_t
qcow2w_l1_entries(uint64_t size, unsigned cluster_bits)
{
    /* One L2 maps cs * cs/8 bytes. */
    unsigned shift = cluster_bits + cluster_bits - 3;

    return (size >> shift) + ((size & ((1ULL << shift) - 1)) != 0);
}

size_t
qcow2w_header_ext_len(const struct qcow2w_header *h)
{
    size_t len = h->header_length;

    if (h->backing_format)
        len += 8 + vqm_align_up(strlen(h->backing_format), 8);
    return len + 8;                        /* end marker */
}

int
qcow2w_header_build(const struct qcow2w_header *h, void *buf, size_t buflen,
                    struct vqm_error *err)
{
    uint8_t *p = buf;
    size_t pos, flen = 0;
    uint64_t incompat = 0, name_off = 0;

    if (h->header_length != 104 && h->header_length != 112)
        return vqm_error_set(err, VQM_ERR_INTERNAL,
                             "qcow2 header length %" PRIu32 " not supported",
                             h->header_length);
    if (h->compression_type && h->header_length < 112)
        return vqm_error_set(err, VQM_ERR_INTERNAL,
                             "qcow2 compression type needs header length 112");
    if (h->backing_format) {
        flen = strlen(h->backing_format);
        if (flen == 0 || flen >= 16)
            return vqm_error_set(err, VQM_ERR_INVALID,
                                 "backing format name '%s' is too long for "
                                 "qcow2", h->backing_format);
    }
    if (h->backing_name && h->backing_name_len > QCOW2_MAX_BACKING_NAME)
        return vqm_error_set(err, VQM_ERR_UNSUPPORTED,
                             "backing file name of %zu bytes is longer than "
                             "qcow2 allows (%d)", h->backing_name_len,
                             QCOW2_MAX_BACKING_NAME);
    if (qcow2w_header_ext_len(h) > buflen)
        return vqm_error_set(err, VQM_ERR_INTERNAL,
                             "qcow2 header does not fit %zu bytes", buflen);

    memset(buf, 0, buflen);
    pos = qcow2w_header_ext_len(h);
    if (h->backing_name) {
        if (h->backing_name_offset == 0) {
            if (pos + h->backing_name_len > buflen)
                return vqm_error_set(err, VQM_ERR_INVALID,
                                     "backing file name of %zu bytes does "
                                     "not fit the qcow2 header",
                                     h->backing_name_len);
            memcpy(p + pos, h->backing_name, h->backing_name_len);
            name_off = pos;
        } else {
            if (h->backing_name_offset < pos ||
                h->backing_name_offset + h->backing_name_len >
                (1ULL << h->cluster_bits))
                return vqm_error_set(err, VQM_ERR_INTERNAL,
                                     "backing file name offset %" PRIu64
                                     " invalid", h->backing_name_offset);
            name_off = h->backing_name_offset;
        }
    }
    if (h->compression_type)
        incompat |= QCOW2_INCOMPAT_COMPRESSION;

    vqm_st_be32(p + 0, QCOW2_MAGIC);
    vqm_st_be32(p + 4, 3);
    vqm_st_be64(p + 8, name_off);
    vqm_st_be32(p + 16, h->backing_name ? (uint32_t) h->backing_name_len : 0);
    vqm_st_be32(p + 20, h->cluster_bits);
    vqm_st_be64(p + 24, h->size);
    vqm_st_be32(p + 32, 0);
    vqm_st_be32(p + 36, h->l1_size);
    vqm_st_be64(p + 40, h->l1_offset);
    vqm_st_be64(p + 48, h->rt_offset);
    vqm_st_be32(p + 56, h->rt_clusters);
    vqm_st_be32(p + 60, 0);
    vqm_st_be64(p + 64, 0);
    vqm_st_be64(p + 72, incompat);
    vqm_st_be64(p + 80, h->compatible_features);
    vqm_st_be64(p + 88, 0);
    vqm_st_be32(p + 96, QCOW2_REFCOUNT_ORDER);
    vqm_st_be32(p + 100, h->header_length);
    if (h->header_length >= 112)
        p[104] = h->compression_type;

    pos = h->header_length;
    if (h->backing_format) {
        vqm_st_be32(p + pos, QCOW2_EXT_BACKING_FORMAT);
        vqm_st_be32(p + pos + 4, (uint32_t) flen);
        memcpy(p + pos + 8, h->backing_format, flen);
        pos += 8 + vqm_align_up(flen, 8);
    }
    /* End marker: type 0, length 0 (already zero). */
    return 0;
}

int
qcow2w_layout_compute_order(uint64_t base, unsigned cluster_bits,
                            uint64_t size, uint64_t n_l2, bool l2_last,
                            struct qcow2w_layout *lay, struct vqm_error *err)
{
    uint64_t cs = 1ULL << cluster_bits;
    uint64_t l1_entries, n_l1, rb = 0, rt = 0, total, prev_rb, prev_rt;
    uint64_t rbe = cs * 8 / (1u << QCOW2_REFCOUNT_ORDER);
    unsigned iter;

    memset(lay, 0, sizeof *lay);
    if (cluster_bits < QCOW2_MIN_CLUSTER_BITS ||
        cluster_bits > QCOW2_MAX_CLUSTER_BITS || base % cs)
        return vqm_error_set(err, VQM_ERR_INTERNAL,
                             "invalid qcow2 layout request");
    l1_entries = qcow2w_l1_entries(size, cluster_bits);
    if (l1_entries * 8 > QCOW2_MAX_L1_BYTES)
        return vqm_error_set(err, VQM_ERR_UNSUPPORTED,
                             "a qcow2 L1 table for %" PRIu64 " bytes with "
                             "%" PRIu64 "-byte clusters would exceed 32 MiB",
                             size, cs);
    n_l1 = vqm_div_round_up(l1_entries * 8, cs);
    if (n_l1 == 0)
        n_l1 = 1;

    for (iter = 0; ; iter++) {
        prev_rb = rb;
        prev_rt = rt;
        total = base / cs + n_l2 + n_l1 + rb + rt;
        rb = vqm_div_round_up(total, rbe);
        rt = vqm_div_round_up(rb * 8, cs);
        if (rb == prev_rb && rt == prev_rt)
            break;
        if (iter > 64)
            return vqm_error_set(err, VQM_ERR_INTERNAL,
                                 "qcow2 refcount sizing does not converge");
    }
    if (rt * cs > QCOW2_MAX_RT_BYTES)
        return vqm_error_set(err, VQM_ERR_UNSUPPORTED,
                             "a qcow2 refcount table for this file would "
                             "exceed 8 MiB");

    lay->cluster_bits = cluster_bits;
    lay->cluster_size = cs;
    lay->size = size;
    lay->base = base;
    lay->n_l2 = n_l2;
    lay->l1_size = (uint32_t) l1_entries;
    lay->n_l1 = n_l1;
    lay->rb = rb;
    lay->rt = rt;
    lay->rb_entries = rbe;
    if (l2_last) {
        lay->l1_offset = base;
        lay->rt_offset = lay->l1_offset + n_l1 * cs;
        lay->rb_offset = lay->rt_offset + rt * cs;
        lay->l2_offset = lay->rb_offset + rb * cs;
        lay->end = lay->l2_offset + n_l2 * cs;
    } else {
        lay->l2_offset = base;
        lay->l1_offset = base + n_l2 * cs;
        lay->rt_offset = lay->l1_offset + n_l1 * cs;
        lay->rb_offset = lay->rt_offset + rt * cs;
        lay->end = lay->rb_offset + rb * cs;
    }
    if (lay->end >= QCOW2_MAX_HOST_OFFSET)
        return vqm_error_set(err, VQM_ERR_UNSUPPORTED,
                             "qcow2 host offsets must stay below 2^56");
    return 0;
}
