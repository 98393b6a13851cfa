/* virt-qed-migrate: qcow2 v3 writer.
 *
 * Three pieces, used by src/convert:
 *  - the header builder (header, backing-format extension, end marker,
 *    backing name), for the in-place commit sector, for copy mode's
 *    cluster 0 and for backing-name rewrites;
 *  - the in-place layout: where the L2 tables, the L1, the refcount
 *    table and the refcount blocks go past a base offset, sized by the
 *    fixed-point iteration of formats.md 3.4;
 *  - a streaming writer for copy mode: guest clusters are given in
 *    increasing order, data and L2 tables are appended as they come, the
 *    refcount blocks are written as the write pointer leaves their range,
 *    and the L1, the refcount table and the header are written at the
 *    end.  Memory: the L1, one L2 table, one refcount block and the
 *    refcount table entries (8 bytes per refcount block).
 *
 * qcow2 is big-endian.  Refcounts are 16 bits (refcount_order 4).
 * Everything returns 0 or -1 with err filled; nothing prints.
 */
#ifndef VQM_QCOW2_WRITER_H
#define VQM_QCOW2_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vqm-error.h"
#include "cleanup.h"

#define QCOW2_MAGIC 0x514649fbu               /* "QFI\xfb" */
#define QCOW2_OFLAG_COPIED (1ULL << 63)
#define QCOW2_OFLAG_COMPRESSED (1ULL << 62)
#define QCOW2_OFLAG_ZERO 1ULL
#define QCOW2_OFFSET_MASK 0x00fffffffffffe00ULL
#define QCOW2_MIN_CLUSTER_BITS 9
#define QCOW2_MAX_CLUSTER_BITS 21
#define QCOW2_MAX_L1_BYTES (32u * 1024 * 1024)
#define QCOW2_MAX_RT_BYTES (8u * 1024 * 1024)
#define QCOW2_MAX_BACKING_NAME 1023
#define QCOW2_MAX_HOST_OFFSET (1ULL << 56)
#define QCOW2_EXT_BACKING_FORMAT 0xE2792ACAu
#define QCOW2_EXT_FEATURE_TABLE 0x6803F857u
#define QCOW2_INCOMPAT_COMPRESSION (1ULL << 3)
#define QCOW2_COMPAT_LAZY_REFCOUNTS 1ULL
#define QCOW2_REFCOUNT_ORDER 4
#define QCOW2_COMMIT_SECTOR 512

/* Header contents, CPU byte order. */
struct qcow2w_header {
    unsigned cluster_bits;
    uint64_t size;                  /* guest bytes */
    uint32_t l1_size;               /* entries */
    uint64_t l1_offset;
    uint64_t rt_offset;
    uint32_t rt_clusters;
    uint64_t compatible_features;
    uint32_t header_length;         /* 104 or 112 */
    uint8_t compression_type;       /* 0 zlib, 1 zstd (needs length 112) */
    const char *backing_name;       /* NULL = none; not NUL-terminated */
    size_t backing_name_len;
    const char *backing_format;     /* NULL = no extension */
    uint64_t backing_name_offset;   /* 0: right after the end marker,
                                       written by qcow2w_header_build;
                                       else the caller writes it there */
};

/* Bytes of header + extensions + end marker (the name not included). */
size_t qcow2w_header_ext_len(const struct qcow2w_header *h);

/* Build the header into buf (buflen bytes, zero-filled first).  With an
 * inline name (backing_name_offset 0) the name must fit into buflen.
 * Errors: VQM_ERR_INVALID (does not fit, name or format too long).
 */
int qcow2w_header_build(const struct qcow2w_header *h, void *buf,
                        size_t buflen, struct vqm_error *err);

/* In-place layout (formats.md 3.4).  All offsets in bytes. */
struct qcow2w_layout {
    unsigned cluster_bits;
    uint64_t cluster_size;
    uint64_t size;                  /* guest bytes */
    uint64_t base;                  /* first new cluster */
    uint64_t n_l2;                  /* L2 tables (clusters) */
    uint32_t l1_size;               /* L1 entries */
    uint64_t n_l1;                  /* L1 clusters */
    uint64_t rt;                    /* refcount table clusters */
    uint64_t rb;                    /* refcount blocks */
    uint64_t l2_offset, l1_offset, rt_offset, rb_offset;
    uint64_t end;                   /* first byte past the new metadata */
    uint64_t rb_entries;            /* refcounts per block */
};

/* Compute the layout for n_l2 L2 tables past base (which must be cluster
 * aligned): L2 tables, L1, refcount table, refcount blocks; or, with
 * l2_last, L1, refcount table, refcount blocks, L2 tables, for when
 * n_l2 is only an upper bound: the L2 tables can then be written as
 * they are built, and the refcount blocks, sized for the bound, cover
 * however many are used (the caller lowers n_l2 and end).  Refuses what
 * qcow2 cannot hold (L1 > 32 MiB, refcount table > 8 MiB, offsets >=
 * 2^56): VQM_ERR_UNSUPPORTED.
 */
int qcow2w_layout_compute_order(uint64_t base, unsigned cluster_bits,
                                uint64_t size, uint64_t n_l2, bool l2_last,
                                struct qcow2w_layout *lay,
                                struct vqm_error *err);

/* L1 entries needed for a guest size. */
uint64_t qcow2w_l1_entries(uint64_t size, unsigned cluster_bits);

/* ---- Streaming writer (copy mode) ---- */

/* The one compression setting: the command line, the engine and the
 * writer all use it. */
enum qcow2w_compress {
    QCOW2W_COMPRESS_NONE,
    QCOW2W_COMPRESS_ZLIB,
    QCOW2W_COMPRESS_ZSTD,
};

struct qcow2w_stream_opts {
    unsigned cluster_bits;
    uint64_t size;
    const char *backing_name;       /* NULL = none */
    const char *backing_format;
    bool lazy_refcounts;
    enum qcow2w_compress compress;
};

struct qcow2w_stream;

/* Start writing a new qcow2 into fd (an empty file opened for writing;
 * the caller keeps owning it).  path is for messages.
 */
int qcow2w_stream_open(int fd, const char *path,
                       const struct qcow2w_stream_opts *o,
                       struct qcow2w_stream **out, struct vqm_error *err);
void qcow2w_stream_free(struct qcow2w_stream *s);

/* A struct qcow2w_stream * freed when it leaves scope. */
VQM_CLEANUP_DEFINE(qcow2w_cleanup_stream, struct qcow2w_stream *, qcow2w_stream_free)
#define CLEANUP_QCOW2W_STREAM __attribute__((cleanup(qcow2w_cleanup_stream)))

/* Optional: a second descriptor of the same file, opened with O_DIRECT,
 * for uncompressed data runs whose address, length and offset are all
 * multiples of align (metadata always goes through the first one).  If
 * the file system turns a direct write down (EINVAL), that run and all
 * later ones are written through the first descriptor.  The caller
 * keeps owning dfd.
 *
 * From then on qcow2w_stream_data only queues data runs for a writer
 * thread (if one can be started): the caller must keep the data it
 * passed unchanged and mapped until qcow2w_stream_wait says the write is
 * done.  A write error is returned by a later call (data, wait, finish).
 */
/* Write by the O_DIRECT descriptor dfd when p, len and off are multiples
 * of align: 0 written, -1 error (in err), 1 not tried (no descriptor, or
 * not aligned), 2 refused by the file system (EINVAL: write buffered,
 * and stop using dfd).  The caller writes buffered on 1 and 2.
 */
int qcow2w_pwrite_direct(int dfd, size_t align, const void *p, size_t len,
                         uint64_t off, const char *path,
                         struct vqm_error *err);
void qcow2w_stream_set_direct(struct qcow2w_stream *s, int dfd,
                              size_t align);

/* The ticket of the last data run queued so far (0: none, or no thread). */
uint64_t qcow2w_stream_ticket(const struct qcow2w_stream *s);

/* Wait until the data runs up to ticket are written.  0, or -1 with the
 * first write error.
 */
int qcow2w_stream_wait(struct qcow2w_stream *s, uint64_t ticket,
                       struct vqm_error *err);

/* Guest clusters [g, g+n) hold data (n*cs bytes at data).  g must be
 * past every cluster given before.  Compresses when asked to.
 */
int qcow2w_stream_data(struct qcow2w_stream *s, uint64_t g, uint64_t n,
                       const void *data, struct vqm_error *err);

/* Same, the data coming from src_fd at src_off (copy_file_range where
 * the kernel can, else read and write).  Not with compression.
 */
int qcow2w_stream_copy(struct qcow2w_stream *s, uint64_t g, uint64_t n,
                       int src_fd, uint64_t src_off,
                       struct vqm_error *err);

/* Guest clusters [g, g+n) read as zeros (the v3 zero flag). */
int qcow2w_stream_zero(struct qcow2w_stream *s, uint64_t g, uint64_t n,
                       struct vqm_error *err);

/* Write the last L2 table, the L1, the refcount blocks and table, then
 * the header, and fdatasync.  After this the file is a complete qcow2.
 */
int qcow2w_stream_finish(struct qcow2w_stream *s, struct vqm_error *err);

/* Bytes of guest data written (after compression) and of metadata. */
uint64_t qcow2w_stream_data_bytes(const struct qcow2w_stream *s);
uint64_t qcow2w_stream_metadata_bytes(const struct qcow2w_stream *s);

/* Compress one cluster: returns the compressed length (<= outlen), or 0
 * when the data does not shrink enough to be worth it, or -1 on error.
 */
long qcow2w_compress_cluster(enum qcow2w_compress alg, const void *in,
                             size_t inlen, void *out, size_t outlen,
                             struct vqm_error *err);

#endif /* VQM_QCOW2_WRITER_H */
