/* virt-qed-migrate: conversion engine internals (src/convert only). */
#ifndef VQM_CONVERT_INTERNAL_H
#define VQM_CONVERT_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "convert.h"
#include "qed/qed.h"
#include "qcow2/qcow2-writer.h"

/* One conversion in progress. */
struct conv {
    const char *path;
    const struct vqm_convert_opts *o;
    struct vqm_convert_result *res;
    int fd;                          /* the source, locked */
    char *real;                      /* its name as resolved when opened
                                        (vqm_open), malloc'ed */
    struct stat st;
    bool is_blk;
    uint64_t length;                 /* file or device length */
    uint8_t sector0[QCOW2_COMMIT_SECTOR];  /* as read after locking */
    struct qed_image *qed;
    const struct qed_info *info;
    struct qed_check_result check;
    char first_problem[256];
    struct vqm_image *chain;         /* source with its backing chain, or
                                        NULL when not needed */

    /* What the qcow2 records as backing (NULL = none). */
    const char *bname;
    size_t bname_len;
    const char *bfmt;
    char bname_buf[PATH_MAX];
    char bfmt_buf[32];

    unsigned qcb;                    /* qcow2 cluster bits */
    uint64_t progress_total, progress_done;
};

/* Where a source file has data (convert-holes.c): a window of at most
 * CONV_HOLES_MAX data extents, asked for with SEEK_DATA/SEEK_HOLE.
 */
#define CONV_HOLES_MAX 512
struct conv_holes {
    int fd;
    bool all_data;                   /* the file system cannot say */
    uint64_t lo, hi;                 /* the window: [lo, hi) */
    unsigned n;
    struct {
        uint64_t start, end;
    } ext[CONV_HOLES_MAX];           /* data extents in the window */
};

/* Start asking about fd (nothing is asked yet).  enabled false: all
 * data.
 */
void conv_holes_init(struct conv_holes *hm, int fd, bool enabled);

/* true if the byte at off is data, false if it is in a hole; *run is
 * how many bytes from off stay so (at least 1).  Never fails: an error
 * of the file system makes everything data from then on.
 */
bool conv_holes_at(struct conv_holes *hm, uint64_t off, uint64_t *run);

/* Of the n clusters of cs bytes at host offset host (contiguous), how
 * many from the first are alike: all hole (*hole true: they read as
 * zeros) or holding some data (*hole false).  At least 1 when n > 0.
 */
uint64_t conv_holes_clusters(struct conv_holes *hm, uint64_t host,
                             uint64_t n, uint64_t cs, bool *hole);

/* Locks (convert-lock.c).  Take QEMU's shared locks on fd, then test for
 * other holders.  VQM_ERR_BUSY when someone holds the image.
 */
int vqm_lock_take(int fd, const char *path, struct vqm_error *err);

/* convert-inplace.c */
int conv_inplace_plan(struct conv *c, char *reason, size_t reasonlen,
                      struct vqm_error *err);
int conv_inplace(struct conv *c, struct vqm_error *err);

/* convert-copy.c */
int conv_copy(struct conv *c, const char *output, struct vqm_error *err);
int conv_default_output(const char *path, char *out, size_t outlen,
                        struct vqm_error *err);

/* convert.c */
int conv_extent_at(struct conv *c, uint64_t off, uint64_t max_len,
                   struct qed_extent *e, struct vqm_error *err);
void conv_progress(struct conv *c, uint64_t add);
/* The 128-bit XXH3 digest of --verify=full (see convert.c) of the guest
 * data of img; holes, when not NULL, tells where the file of img's top
 * layer has data (what lies in its holes is not read).
 */
struct conv_digest {
    uint64_t lo, hi;
};
int conv_hash_image(struct vqm_image *img, struct conv_holes *holes,
                    struct conv_digest *digest, struct vqm_error *err);
/* Compare the guest data of a and b; holes as above, for a. */
int conv_compare_images(struct vqm_image *a, struct conv_holes *holes,
                        struct vqm_image *b, const char *what,
                        struct vqm_error *err);
bool conv_is_zero(const void *buf, size_t len);

/* Background writeback of a file being written (see convert.c): each
 * kick starts writing back what is dirty, without waiting for it.
 */
struct conv_wb {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int fd;
    bool pending, stop, started;
};
void conv_wb_start(struct conv_wb *wb, int fd);
void conv_wb_kick(struct conv_wb *wb);
void conv_wb_stop(struct conv_wb *wb);

#endif
