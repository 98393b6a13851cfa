/* virt-qed-migrate: the shared QED reader (public API).
 *
 * Read-only access to one QED image file: header validation, backing
 * information, extent iteration, guest reads (this layer only; backing
 * chains are followed by src/image) and a strict consistency check.
 * Depends on src/common only: no libvirt, no libxml2.
 *
 * Memory is bounded whatever the image size: the L1 table is read on
 * demand in pieces and L2 tables go through a small fixed-size cache.
 *
 * All functions that can fail return -1 (or NULL) and fill err.
 */
#ifndef VQM_QED_H
#define VQM_QED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vqm-error.h"
#include "cleanup.h"

#define QED_MAGIC 0x00444551u                 /* "QED\0" little-endian */
#define QED_F_BACKING_FILE            0x01u
#define QED_F_NEED_CHECK              0x02u
#define QED_F_BACKING_FORMAT_NO_PROBE 0x04u
#define QED_F_KNOWN (QED_F_BACKING_FILE | QED_F_NEED_CHECK | \
                     QED_F_BACKING_FORMAT_NO_PROBE)
#define QED_MIN_CLUSTER_SIZE (4u * 1024)
#define QED_MAX_CLUSTER_SIZE (64u * 1024 * 1024)
#define QED_MAX_TABLE_SIZE 16u
#define QED_HEADER_STRUCT_SIZE 64
#define QED_ZERO_ENTRY 1                      /* L2 value of a zero cluster */

struct qed_image;

/* The header, in CPU byte order, plus what was derived from it. */
struct qed_info {
    uint32_t cluster_size;
    uint32_t table_size;          /* clusters per table */
    uint32_t header_size;         /* clusters in the header area */
    uint64_t features;
    uint64_t compat_features;
    uint64_t autoclear_features;
    uint64_t l1_table_offset;
    uint64_t image_size;          /* guest size in bytes */
    uint32_t backing_filename_offset;
    uint32_t backing_filename_size;

    uint64_t file_length;         /* st_size of the file */
    uint64_t file_size;           /* file_length rounded down to cs (QEMU) */
    uint64_t table_entries;       /* N = table_size * cluster_size / 8 */
    unsigned cluster_bits;
    unsigned table_bits;          /* log2(N) */

    bool need_check;              /* NEED_CHECK (dirty) */
    bool has_backing;
    bool backing_no_probe;        /* backing format is raw, never probe */
    const char *backing_name;     /* NUL-terminated copy, or NULL */
};

/* Open path read-only (O_RDONLY, through vqm_open: no symlink but
 * root's, no FIFO, socket or character device) and validate the header
 * (VQM_ERR_REFUSED for what vqm_open refuses).  On success
 * *out is a new image, to be freed with qed_close.  Errors: not QED,
 * unknown incompatible features, sizes out of range, L1 offset invalid,
 * backing name out of bounds (VQM_ERR_CORRUPT / VQM_ERR_UNSUPPORTED), or
 * I/O.  Spec-valid headers that QEMU would refuse open fine and add a
 * warning (see qed_warnings).
 */
int qed_open(const char *path, struct qed_image **out, struct vqm_error *err);

/* Same on an fd the caller keeps owning (it may be O_RDWR: the converter
 * opens and locks the file first).  name is used in messages.
 */
int qed_open_fd(int fd, const char *name, struct qed_image **out,
                struct vqm_error *err);

void qed_close(struct qed_image *img);

/* A struct qed_image * closed when it leaves scope. */
VQM_CLEANUP_DEFINE(qed_cleanup_close, struct qed_image *, qed_close)
#define CLEANUP_QED_IMAGE __attribute__((cleanup(qed_cleanup_close)))

const struct qed_info *qed_get_info(const struct qed_image *img);

/* Warnings found while opening (QEMU would refuse this image, unknown
 * autoclear bits, ...).  Returns the count; *list is owned by img.
 */
size_t qed_warnings(const struct qed_image *img, const char *const **list);

/* Lookup of one guest offset (must be < image_size).  *entry receives the
 * raw L2 entry for the cluster holding it: 0 unallocated (also when the
 * L1 entry is 0), QED_ZERO_ENTRY, or the host offset of the cluster.
 * Invalid entries are VQM_ERR_CORRUPT.
 */
int qed_lookup(struct qed_image *img, uint64_t guest_off, uint64_t *entry,
               struct vqm_error *err);

enum qed_extent_kind {
    QED_EXTENT_DATA,          /* guest data in the file at host_offset */
    QED_EXTENT_ZERO,          /* zero cluster(s): reads as zeros */
    QED_EXTENT_UNALLOCATED,   /* backing file, else zeros */
};

struct qed_extent {
    uint64_t offset;          /* guest offset */
    uint64_t length;          /* bytes; never past image_size */
    enum qed_extent_kind kind;
    uint64_t host_offset;     /* DATA only: host offset of 'offset' */
};

/* The extent starting at guest_off (< image_size): the longest run of one
 * kind (for DATA, also contiguous on the host), capped at max_len bytes
 * when max_len is not 0.  Unallocated L1 ranges are skipped in one step,
 * so iterating a sparse multi-terabyte image is cheap.  0 or -1.
 */
int qed_extent_at(struct qed_image *img, uint64_t guest_off,
                  uint64_t max_len, struct qed_extent *ext,
                  struct vqm_error *err);

/* Read guest bytes of this image only: unallocated ranges read as zeros
 * here (src/image follows backing chains).  Reads past image_size are
 * VQM_ERR_INVALID.  0 or -1.
 */
int qed_read(struct qed_image *img, uint64_t guest_off, void *buf,
             size_t len, struct vqm_error *err);

/* Read the raw L1 or an L2 table entry range, for the converter:
 * table_offset is a validated table offset (the L1 offset or an L1 entry),
 * index < table_entries.  Goes through the cache.
 */
int qed_table_entry(struct qed_image *img, uint64_t table_offset,
                    uint64_t index, uint64_t *entry, struct vqm_error *err);

/* The consistency check (stricter than QEMU's, exact arithmetic). */
enum qed_problem_kind {
    QED_PROBLEM_CORRUPTION,
    QED_PROBLEM_LEAK,
};

struct qed_check_result {
    uint64_t corruptions;        /* problems that make conversion unsafe */
    uint64_t leaks;              /* clusters allocated, referenced by none */
    uint64_t l2_tables;          /* valid L2 tables referenced */
    uint64_t data_clusters;      /* valid data clusters referenced */
    uint64_t zero_clusters;      /* L2 entries == 1 */
    uint64_t allocated_bytes;    /* data_clusters * cs, inside image_size */
    uint64_t highest_used_end;   /* end of the highest referenced cluster */
};

/* Called once per problem found (every one, not only the first):
 * one call per invalid L1/L2 entry (unaligned, in the header area, past
 * the end of the file, in a partial last cluster, table running past
 * the end of the file), one per duplicate reference (data/data,
 * data/table, table/table; a table sharing a cluster is not walked),
 * and one per run of leaked clusters (res->leaks counts clusters).
 * msg is a one-line description naming offsets; valid during the call.
 * fn may be NULL (counts only).
 */
typedef void (*qed_problem_fn)(void *opaque, enum qed_problem_kind kind,
                               const char *msg);

/* Walk L1 and every L2 table, check every entry, find duplicate
 * references, overlaps and leaks.  Memory is bounded by a sparse bitmap
 * of referenced host clusters (2048-cluster chunks, only where there are
 * references); when the tables could need more than its budget, the
 * tables are walked once per window of host clusters (more time, the
 * same memory).  Returns 0 when the walk completed (look at
 * res->corruptions), -1 on I/O error, or VQM_ERR_UNSUPPORTED only for a
 * file of petabytes whose references crowd one window.
 */
int qed_check(struct qed_image *img, struct qed_check_result *res,
              qed_problem_fn fn, void *opaque, struct vqm_error *err);

/* Probe the format of a file from its first bytes, the way QEMU would
 * conclude: "qcow2", "qed", "qcow", "vmdk", "vdi", "vpc", ... or "raw".
 * buf holds the first len bytes of the file.  Never fails.
 */
const char *vqm_probe_format(const void *buf, size_t len);

#endif /* VQM_QED_H */
