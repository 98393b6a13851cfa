/* virt-qed-migrate: QED table access, address translation and reads.
 *
 * Table entries are read through a small LRU cache of fixed-size chunks
 * (QED_CACHE_SLOTS x at most 64 KiB), shared by the L1 and L2 tables, so
 * memory does not depend on the image or table size.  Invariant: every
 * table offset is validated (qed_table_offset_problem) before an entry
 * of it is read, and every data offset before it is returned.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "overflow.h"
#include "qed-internal.h"
#include "vqm-endian.h"
#include "vqm-io.h"

/* The cache slot holding the chunk of pos, read in if needed (LRU). */
static struct qed_cache_slot *
get_slot(struct qed_image *img, uint64_t pos, struct vqm_error *err)
{
    uint64_t chunk = pos & ~(uint64_t) (img->chunk_size - 1);
    struct qed_cache_slot *s, *victim = NULL;
    size_t i;

    img->clock++;
    /* Walks read entry after entry of one chunk: try the last one used
     * first.
     */
    s = &img->cache[img->last_slot];
    if (s->valid && s->host_off == chunk) {
        s->stamp = img->clock;
        return s;
    }
    for (i = 0; i < QED_CACHE_SLOTS; i++) {
        s = &img->cache[i];
        if (s->valid && s->host_off == chunk) {
            s->stamp = img->clock;
            img->last_slot = i;
            return s;
        }
        if (!victim || (victim->valid &&
                        (!s->valid || s->stamp < victim->stamp)))
            victim = s;
    }
    if (!victim->buf) {
        victim->buf = malloc(img->chunk_size);
        if (!victim->buf) {
            vqm_error_set_errno(err, errno, "out of memory");
            return NULL;
        }
    }
    victim->valid = false;
    if (vqm_pread_full(img->fd, victim->buf, img->chunk_size, chunk, 0,
                       img->name, err) < 0)
        return NULL;
    victim->valid = true;
    victim->host_off = chunk;
    victim->stamp = img->clock;
    img->last_slot = (size_t) (victim - img->cache);
    return victim;
}

int
qed_read_entry(struct qed_image *img, uint64_t table_off, uint64_t index,
               uint64_t *entry, struct vqm_error *err)
{
    uint64_t pos = table_off + index * 8;
    struct qed_cache_slot *s = get_slot(img, pos, err);

    if (!s)
        return -1;
    *entry = vqm_ld_le64(s->buf + (pos - s->host_off));
    return 0;
}

int
qed_read_span(struct qed_image *img, uint64_t table_off, uint64_t index,
              const uint8_t **p, uint64_t *count, struct vqm_error *err)
{
    uint64_t pos = table_off + index * 8;
    struct qed_cache_slot *s = get_slot(img, pos, err);

    if (!s)
        return -1;
    *p = s->buf + (pos - s->host_off);
    *count = (s->host_off + img->chunk_size - pos) / 8;
    return 0;
}

int
qed_table_entry(struct qed_image *img, uint64_t table_offset,
                uint64_t index, uint64_t *entry, struct vqm_error *err)
{
    const char *p;

    if ((p = qed_table_offset_problem(img, table_offset)) != NULL)
        return vqm_error_set(err, VQM_ERR_CORRUPT,
                             "'%s': QED table offset 0x%" PRIx64
                             " is invalid (%s)", img->name, table_offset, p);
    if (index >= img->info.table_entries)
        return vqm_error_set(err, VQM_ERR_INVALID,
                             "'%s': table index %" PRIu64 " out of range",
                             img->name, index);
    return qed_read_entry(img, table_offset, index, entry, err);
}

/* The L1 entry for guest_off, validated: *l2 = 0 or a valid table. */
static int
get_l2_offset(struct qed_image *img, uint64_t guest_off, uint64_t *l2,
              struct vqm_error *err)
{
    const struct qed_info *h = &img->info;
    uint64_t idx = guest_off >> (h->cluster_bits + h->table_bits);
    const char *p;

    if (qed_read_entry(img, h->l1_table_offset, idx, l2, err) < 0)
        return -1;
    if (*l2 && (p = qed_table_offset_problem(img, *l2)) != NULL)
        return vqm_error_set(err, VQM_ERR_CORRUPT,
                             "'%s': L1 entry %" PRIu64 " (L2 table offset 0x%"
                             PRIx64 ") is invalid (%s)", img->name, idx, *l2,
                             p);
    return 0;
}

static int
get_l2_entry(struct qed_image *img, uint64_t l2, uint64_t guest_off,
             uint64_t *entry, struct vqm_error *err)
{
    const struct qed_info *h = &img->info;
    uint64_t idx = (guest_off >> h->cluster_bits) & (h->table_entries - 1);
    const char *p;

    if (qed_read_entry(img, l2, idx, entry, err) < 0)
        return -1;
    if (*entry > QED_ZERO_ENTRY &&
        (p = qed_cluster_offset_problem(img, *entry)) != NULL)
        return vqm_error_set(err, VQM_ERR_CORRUPT,
                             "'%s': L2 entry for guest offset 0x%" PRIx64
                             " (data cluster offset 0x%" PRIx64
                             ") is invalid (%s)", img->name,
                             guest_off & ~(uint64_t) (h->cluster_size - 1),
                             *entry, p);
    return 0;
}

int
qed_lookup(struct qed_image *img, uint64_t guest_off, uint64_t *entry,
           struct vqm_error *err)
{
    uint64_t l2;

    if (guest_off >= img->info.image_size)
        return vqm_error_set(err, VQM_ERR_INVALID,
                             "'%s': guest offset %" PRIu64 " past the end "
                             "of the image", img->name, guest_off);
    if (get_l2_offset(img, guest_off, &l2, err) < 0)
        return -1;
    if (l2 == 0) {
        *entry = 0;
        return 0;
    }
    return get_l2_entry(img, l2, guest_off, entry, err);
}

static enum qed_extent_kind
entry_kind(uint64_t entry)
{
    if (entry == 0)
        return QED_EXTENT_UNALLOCATED;
    if (entry == QED_ZERO_ENTRY)
        return QED_EXTENT_ZERO;
    return QED_EXTENT_DATA;
}

int
qed_extent_at(struct qed_image *img, uint64_t guest_off, uint64_t max_len,
              struct qed_extent *ext, struct vqm_error *err)
{
    const struct qed_info *h = &img->info;
    uint64_t cs = h->cluster_size;
    uint64_t l1_span_bits = h->cluster_bits + h->table_bits;
    uint64_t limit, pos, l2, entry, next_host = 0;
    uint64_t hdr = (uint64_t) h->header_size * cs;
    bool first = true;

    if (guest_off >= h->image_size)
        return vqm_error_set(err, VQM_ERR_INVALID,
                             "'%s': guest offset %" PRIu64 " past the end "
                             "of the image", img->name, guest_off);
    limit = h->image_size;
    if (max_len && max_len < limit - guest_off)
        limit = guest_off + max_len;

    ext->offset = guest_off;
    ext->host_offset = 0;
    pos = guest_off;
    while (pos < limit) {
        uint64_t l1_end, next;
        enum qed_extent_kind kind;

        if (get_l2_offset(img, pos, &l2, err) < 0)
            return -1;
        /* End of this L1 entry's range (may exceed 2^64 only when the
         * capacity does, so saturate). */
        if (l1_span_bits >= 64)
            l1_end = UINT64_MAX;
        else {
            uint64_t span = (uint64_t) 1 << l1_span_bits;
            l1_end = (pos & ~(span - 1));
            if (vqm_add_overflow(l1_end, span, &l1_end))
                l1_end = UINT64_MAX;
        }
        if (l2 == 0) {
            if (!first && ext->kind != QED_EXTENT_UNALLOCATED)
                break;
            ext->kind = QED_EXTENT_UNALLOCATED;
            first = false;
            pos = l1_end < limit ? l1_end : limit;
            continue;
        }
        /* Walk this L2 table, a cached span of entries at a time. */
        while (pos < limit && pos < l1_end) {
            uint64_t idx = (pos >> h->cluster_bits) & (h->table_entries - 1);
            uint64_t cnt, k;
            const uint8_t *ep;

            if (qed_read_span(img, l2, idx, &ep, &cnt, err) < 0)
                return -1;
            if (cnt > h->table_entries - idx)
                cnt = h->table_entries - idx;
            for (k = 0; k < cnt && pos < limit && pos < l1_end; k++) {
                entry = vqm_ld_le64(ep + 8 * k);
                /* Valid: aligned, past the header, inside the file (what
                 * qed_cluster_offset_problem checks, inline). */
                if (entry > QED_ZERO_ENTRY &&
                    ((entry & (cs - 1)) || entry < hdr ||
                     entry >= h->file_size)) {
                    /* Read it again the checked way, for its message. */
                    if (get_l2_entry(img, l2, pos, &entry, err) < 0)
                        return -1;
                    return vqm_error_set(err, VQM_ERR_INTERNAL,
                                         "'%s': inconsistent L2 entry",
                                         img->name);
                }
                kind = entry_kind(entry);
                if (first) {
                    ext->kind = kind;
                    if (kind == QED_EXTENT_DATA) {
                        ext->host_offset = entry + (pos & (cs - 1));
                        next_host = entry + cs;
                    }
                    first = false;
                } else if (kind != ext->kind) {
                    goto done;
                } else if (kind == QED_EXTENT_DATA) {
                    if (entry != next_host)
                        goto done;
                    next_host = entry + cs;
                }
                next = (pos & ~(cs - 1)) + cs;
                if (next < pos)      /* wrapped: last cluster of 2^64 */
                    next = UINT64_MAX;
                pos = next < limit ? next : limit;
            }
        }
    }
done:
    ext->length = (pos < limit ? pos : limit) - guest_off;
    return 0;
}

int
qed_read(struct qed_image *img, uint64_t guest_off, void *buf, size_t len,
         struct vqm_error *err)
{
    char *p = buf;
    uint64_t end;

    if (vqm_add_overflow(guest_off, (uint64_t) len, &end) ||
        end > img->info.image_size)
        return vqm_error_set(err, VQM_ERR_INVALID,
                             "'%s': read of %zu bytes at %" PRIu64 " past "
                             "the end of the image", img->name, len,
                             guest_off);
    while (len > 0) {
        struct qed_extent ext;
        size_t n;

        if (qed_extent_at(img, guest_off, len, &ext, err) < 0)
            return -1;
        n = (size_t) ext.length;
        if (ext.kind == QED_EXTENT_DATA) {
            if (vqm_pread_full(img->fd, p, n, ext.host_offset, 0, img->name,
                               err) < 0)
                return -1;
        }
        else
            memset(p, 0, n);
        p += n;
        guest_off += n;
        len -= n;
    }
    return 0;
}
