/* virt-qed-migrate: the conversion engine, QED -> qcow2 v3.
 *
 * In place (default): metadata only, data clusters stay where they are,
 * new qcow2 tables are appended past the end of the file, and the switch
 * of sector 0 is the one commit point.  By copy: a new sparse qcow2 file
 * written under a temporary name, synced and renamed into place.
 * Depends on src/qed, src/qcow2, src/image, src/common; no libvirt.
 */
#ifndef VQM_CONVERT_H
#define VQM_CONVERT_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "vqm-error.h"
#include "qcow2/qcow2-writer.h"
#include "image/image.h"

enum vqm_convert_mode {
    VQM_CONVERT_IN_PLACE,
    VQM_CONVERT_COPY,
};

typedef void (*vqm_progress_fn)(void *opaque, uint64_t done, uint64_t total);

struct vqm_convert_opts {
    enum vqm_convert_mode mode;     /* what was asked for */
    bool allow_copy_fallback;       /* in place impossible -> copy */
    const char *output;             /* copy: target; NULL = default name */
    bool dry_run;                   /* decide and explain, write nothing */
    bool verify;                    /* map (in place) / content (copy) */
    bool verify_full;               /* in place: hash guest data too */
    bool flatten;                   /* copy: standalone image */
    bool repair;                    /* convert what valid tables describe */
    bool block_device;              /* path is a block device (in place) */
    uint32_t cluster_size;          /* copy: 0 = same as source (<= 2M) */
    bool lazy_refcounts;            /* copy */
    enum qcow2w_compress compress;  /* copy */
    const char *backing_format;     /* hint for the backing format (from
                                       libvirt); NULL = probe safely */
    const char *new_backing_name;   /* write this backing name instead of
                                       the QED one (backing renamed) */
    const char *new_backing_format; /* with new_backing_name */
    struct vqm_chain_policy policy; /* where backing files may be */
    bool no_punch;                  /* in place: keep old QED tables */
    vqm_progress_fn progress;
    void *progress_opaque;
    /* With repair: called once for each corruption the check found, that
     * is for what the conversion drops (read as unallocated).  NULL = not
     * told. */
    void (*dropped)(void *opaque, const char *problem);
    void *dropped_opaque;
};

struct vqm_convert_result {
    enum vqm_convert_mode mode;     /* what was (or would be) done */
    bool already_qcow2;             /* nothing to do */
    char output[PATH_MAX];          /* the qcow2 file */
    char reason[512];               /* why copy instead of in place, or
                                       why refused; "" otherwise */
    uint64_t virtual_size;
    uint64_t allocated_bytes;       /* guest data clusters */
    uint64_t metadata_bytes;        /* new qcow2 metadata written */
    uint64_t data_bytes_written;    /* copy mode */
    uint64_t dropped_clusters;      /* --repair */
    uint64_t leaks;                 /* QED leaks found (now free) */
    double seconds;
    bool verified;
    char warning[512];              /* a non-fatal problem after the
                                       commit (hole punching, ...) */
};

/* Convert the image at path.  Takes QEMU-compatible OFD locks first and
 * refuses (VQM_ERR_BUSY) if a QEMU holds the image.  On failure the
 * source is unchanged (copy: partial output removed; in place: the QED
 * header was not switched, or the image is already a valid qcow2 when
 * only the post-commit cleanup failed, which is reported as success with
 * a warning).  Returns 0 or -1.
 */
int vqm_convert(const char *path, const struct vqm_convert_opts *opts,
                struct vqm_convert_result *res, struct vqm_error *err);

/* Rewrite the backing file reference of an existing qcow2 image in
 * place (name and backing-format extension), the `qemu-img rebase -u`
 * equivalent, with one atomic header write.  0 or -1.
 */
int vqm_qcow2_set_backing(const char *path, const char *backing_name,
                          const char *backing_format,
                          struct vqm_error *err);

/* QEMU image locks (formats.md section 4). */
/* Is any QEMU (other open file description) holding the image?  Returns
 * 1 busy, 0 free, -1 error.
 */
int vqm_lock_probe(const char *path, struct vqm_error *err);

#endif
