/* virt-qed-migrate: internals of src/image (the minimal qcow2 reader). */
#ifndef VQM_IMAGE_INTERNAL_H
#define VQM_IMAGE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "vqm-error.h"

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

/* Open the qcow2 image on fd (kept by the caller; name for messages) and
 * validate its header the way QEMU does on a read-only open.  Returns 0
 * or -1.  The backing name and format (NULL if absent) are owned by q.
 */
int q2_open(int fd, const char *name, struct qcow2r **out,
            struct vqm_error *err);
void q2_close(struct qcow2r *q);
uint64_t q2_size(const struct qcow2r *q);
const char *q2_backing_name(const struct qcow2r *q);
const char *q2_backing_format(const struct qcow2r *q);

/* The run of one kind starting at off (< size), at most len bytes. */
int q2_extent_at(struct qcow2r *q, uint64_t off, uint64_t len,
                 struct q2_extent *ext, struct vqm_error *err);

/* Read guest bytes of this image only (unallocated reads as zeros). */
int q2_read(struct qcow2r *q, uint64_t off, void *buf, size_t len,
            struct vqm_error *err);

#endif
