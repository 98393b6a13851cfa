/* virt-qed-migrate: the qcow2 header parser and the read-only reader.
 *
 * The one place that reads qcow2 metadata (QEMU's
 * docs/interop/qcow2.txt).  Discovery (src/virt), the guest view of an
 * image (src/image) and the backing rewrite of the engine (src/convert)
 * all parse headers with qcow2_header_parse, so a header means the same
 * thing, and is checked the same way, wherever the tool meets it.
 *
 * qcow2 is big-endian on disk; everything here is in CPU byte order.
 * Functions return 0 or -1 with err filled; nothing prints.
 */
#ifndef VQM_QCOW2_READER_H
#define VQM_QCOW2_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vqm-error.h"
#include "cleanup.h"

/* Bytes of the fixed header that the parser looks at (version 3 with
 * the compression type). */
#define QCOW2_HEADER_FIXED_LEN 112

/* A qcow2 header and what the first cluster says about backing files.
 * Every offset and length in it has been checked against the cluster
 * size, without wrap-around.
 */
struct qcow2_header {
    uint32_t version;               /* 2 or 3 */
    unsigned cluster_bits;          /* 9 to 21 */
    uint64_t cluster_size;          /* bytes */
    uint64_t size;                  /* guest bytes */
    uint64_t backing_offset;        /* of the name in cluster 0, 0: none */
    uint32_t backing_size;          /* bytes of the name, <= 1023 */
    uint32_t crypt_method;          /* 0: not encrypted */
    uint32_t l1_size;               /* entries */
    uint64_t l1_offset;
    uint64_t rt_offset;             /* refcount table */
    uint32_t rt_clusters;
    uint64_t incompatible_features; /* version 3, else 0 */
    uint64_t compatible_features;
    uint32_t refcount_order;        /* 4 for version 2 */
    uint32_t header_length;         /* 72 for version 2 */
    uint8_t compression_type;       /* 0 zlib, 1 zstd */
    uint64_t ext_end;               /* header extensions end before this:
                                       backing_offset, else cluster_size */
    char backing_name[1024];        /* NUL-terminated, "" when none */
    char backing_format[16];        /* extension 0xE2792ACA, "" when none */
};

/* Parse and validate the header the way QEMU does when it opens a file:
 * magic, version (2 or 3; others VQM_ERR_UNSUPPORTED), cluster bits,
 * header length, compression type, refcount order, backing name offset
 * and size within the first cluster, header extensions within their
 * area, backing format name.  Does not judge what only matters for
 * reading guest data (encryption, incompatible features, L1 and
 * refcount tables): see q2_open.
 *
 * buf holds the first len bytes of the file.  Bytes past len read as
 * zeros, as past the end of a short file: pass the whole first cluster
 * (qcow2_header_read does), or the whole file when it is shorter.
 * name is for messages.  Errors: VQM_ERR_CORRUPT, VQM_ERR_UNSUPPORTED.
 */
int qcow2_header_parse(const void *buf, size_t len, const char *name,
                       struct qcow2_header *h, struct vqm_error *err);

/* Read the first cluster of fd (at most 2 MiB, zero-filled past the end
 * of the file) and parse it.  With cluster0 non-NULL the cluster's bytes
 * are handed out too (malloc'd, h->cluster_size bytes; the caller frees
 * them; NULL on error).  Errors: those of qcow2_header_parse, I/O.
 */
int qcow2_header_read(int fd, const char *name, struct qcow2_header *h,
                      uint8_t **cluster0, struct vqm_error *err);

/* Walk the header extensions of a parsed header in its first cluster
 * (buf, len as for qcow2_header_parse).  *pos starts at
 * h->header_length.  Returns 1 with the next extension's type, the
 * offset and length of its data, and *pos moved past it (data padded
 * to 8 bytes); 0 at the end marker or the end of the area; -1 with
 * VQM_ERR_CORRUPT when an extension does not fit its area.
 */
int qcow2_header_next_ext(const struct qcow2_header *h, const void *buf,
                          size_t len, uint64_t *pos, uint32_t *type,
                          uint64_t *data_off, uint32_t *data_len,
                          const char *name, struct vqm_error *err);

/* ---- Reader: guest data of one qcow2 layer ---- */

struct qcow2r;

enum q2_kind {
    Q2_UNALLOCATED,        /* backing file, else zeros */
    Q2_DATA,               /* normal cluster at host_offset */
    Q2_ZERO,               /* zero cluster; has_offset if preallocated */
    Q2_COMPRESSED,         /* compressed cluster(s), no host offset */
};

struct q2_extent {
    uint64_t length;
    enum q2_kind kind;
    bool has_offset;
    uint64_t host_offset;  /* of the start of the extent */
};

/* Open the qcow2 image on fd (kept by the caller; name for messages):
 * qcow2_header_read, then the checks QEMU makes before it reads guest
 * data (no encryption, no unknown incompatible features, L1 and
 * refcount tables sane).  Returns 0 or -1.  The backing name and
 * format (NULL if absent) are owned by q.
 */
int q2_open(int fd, const char *name, struct qcow2r **out,
            struct vqm_error *err);
void q2_close(struct qcow2r *q);

/* A struct qcow2r * closed when it leaves scope. */
VQM_CLEANUP_DEFINE(q2_cleanup_close, struct qcow2r *, q2_close)
#define CLEANUP_QCOW2R __attribute__((cleanup(q2_cleanup_close)))
uint64_t q2_size(const struct qcow2r *q);
const char *q2_backing_name(const struct qcow2r *q);
const char *q2_backing_format(const struct qcow2r *q);

/* The run of one kind starting at off (< size), at most len bytes. */
int q2_extent_at(struct qcow2r *q, uint64_t off, uint64_t len,
                 struct q2_extent *ext, struct vqm_error *err);

/* Read guest bytes of this image only (unallocated reads as zeros). */
int q2_read(struct qcow2r *q, uint64_t off, void *buf, size_t len,
            struct vqm_error *err);

#endif /* VQM_QCOW2_READER_H */
