/* virt-qed-migrate: QED reader internals (shared by the src/qed sources only).
 *
 * On-disk layout (docs/interop/qed_spec.rst in QEMU), little-endian:
 *
 *   +--------+----------+----------+----------+-----+
 *   | header | L1 table |  data    | L2 table | ... |
 *   +--------+----------+----------+----------+-----+
 *   cluster 0 .. header_size-1 is the header area; the rest are regular
 *   clusters, referenced only from the L1/L2 tables (no refcounts).
 *
 * Header (64 bytes at offset 0):
 *    0 u32 magic                 "QED\0"
 *    4 u32 cluster_size          bytes, power of 2, 4 KiB .. 64 MiB
 *    8 u32 table_size            clusters per table, power of 2, 1 .. 16
 *   12 u32 header_size           clusters in the header area
 *   16 u64 features              incompatible feature bits
 *   24 u64 compat_features
 *   32 u64 autoclear_features
 *   40 u64 l1_table_offset       bytes, cluster aligned
 *   48 u64 image_size            guest bytes, multiple of 512
 *   56 u32 backing_filename_offset   bytes from start of file
 *   60 u32 backing_filename_size     bytes, no NUL
 *
 * The struct qed_info in qed.h holds these fields in CPU byte order.
 */
#ifndef VQM_QED_INTERNAL_H
#define VQM_QED_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "qed.h"

/* Table entries are cached in chunks of QED_CHUNK_MAX bytes at most (or
 * one cluster when clusters are smaller), QED_CACHE_SLOTS of them: the
 * cache never holds more than 16 * 64 KiB = 1 MiB whatever the image.
 */
#define QED_CHUNK_MAX (64u * 1024)
#define QED_CACHE_SLOTS 16
#define QED_MAX_BACKING_NAME (64u * 1024)   /* what we agree to read */
#define QED_QEMU_MAX_BACKING_NAME 4095u     /* what QEMU can open */

struct qed_cache_slot {
    uint64_t host_off;            /* chunk start in the file */
    uint64_t stamp;               /* last use, for LRU */
    bool valid;
    uint8_t *buf;
};

struct qed_image {
    int fd;
    bool own_fd;
    char *name;
    struct qed_info info;
    char *backing_name;
    char **warnings;
    const char **warnings_view;
    size_t n_warnings;

    uint32_t chunk_size;
    uint64_t clock;
    size_t last_slot;             /* the slot used last */
    struct qed_cache_slot cache[QED_CACHE_SLOTS];
};

/* Offsets predicates, exact arithmetic.  Each returns NULL when off is
 * valid, else a short reason ("unaligned", "in the header area", ...).
 */
const char *qed_cluster_offset_problem(const struct qed_image *img,
                                       uint64_t off);
const char *qed_table_offset_problem(const struct qed_image *img,
                                     uint64_t off);

/* Read entry index of the table at table_off (not validated here). */
int qed_read_entry(struct qed_image *img, uint64_t table_off,
                   uint64_t index, uint64_t *entry, struct vqm_error *err);

/* The entries from index on of the table at table_off, as they are in
 * the cache: *p points at *count little-endian entries (at least 1; up
 * to the end of the cached chunk, which may pass the table's end), valid
 * until the next read of the cache.
 */
int qed_read_span(struct qed_image *img, uint64_t table_off, uint64_t index,
                  const uint8_t **p, uint64_t *count, struct vqm_error *err);

#endif /* VQM_QED_INTERNAL_H */
