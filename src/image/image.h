/* virt-qed-migrate: guest view of an image and its backing chain.
 *
 * Opens raw, QED or qcow2 files read-only and follows backing files
 * under a safety policy: backing names are untrusted input.  Used by
 * --inspect --map (qemu-img map compatible output), by --verify and by
 * copy mode's reads.  Depends on src/qed, src/qcow2 (reader part) and
 * src/common only.
 */
#ifndef VQM_IMAGE_H
#define VQM_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vqm-error.h"
#include "cleanup.h"

/* Where backing files may be.  Every image and backing file is opened
 * once with vqm_open (src/common/vqm-open.h): no symlink but root's (and,
 * for a backing file, its naming image owner's) is followed, FIFOs,
 * sockets and character devices are never opened.  A backing name is
 * resolved relative to the resolved directory of the image naming it,
 * on behalf of that image's owner: the owner must be able to search
 * every directory on the way and read the file (root-owned images may
 * follow anything the rest of the policy allows).  The result must be a
 * regular file (or a block device listed in allowed_devices), must not
 * be under /etc /proc /sys /boot /root /run /dev (unless a listed
 * device; judged on the name before it is resolved and on the resolved
 * name), and, when trusted_dirs is not empty, must be under the image's
 * own directory or one of trusted_dirs.  Loops and chains deeper than
 * max_depth are refused.  Refusals are VQM_ERR_REFUSED and read nothing
 * of the refused file.
 */
struct vqm_chain_policy {
    const char *const *trusted_dirs;   /* may be NULL */
    size_t n_trusted_dirs;
    const char *const *allowed_devices;
    size_t n_allowed_devices;
    unsigned max_depth;                /* 0 means the default, 16 */
};

enum vqm_format {
    VQM_FORMAT_RAW,
    VQM_FORMAT_QED,
    VQM_FORMAT_QCOW2,
    VQM_FORMAT_OTHER,                  /* recognised but not readable */
};

struct vqm_image;

/* Open path and (when follow is set) its whole backing chain.  format
 * NULL means probe the top image; each backing file's format comes from
 * what the image above records (QED no-probe bit: raw; qcow2 backing
 * format extension), else from a safe probe of its header.
 */
int vqm_image_open(const char *path, const char *format, bool follow,
                   const struct vqm_chain_policy *policy,
                   struct vqm_image **out, struct vqm_error *err);
/* The same for an image already open on fd (not taken: it is
 * duplicated), named path in messages, whose resolved absolute name is
 * real (relative backing names are resolved against its directory).
 */
int vqm_image_open_fd(int fd, const char *path, const char *real,
                      const char *format, bool follow,
                      const struct vqm_chain_policy *policy,
                      struct vqm_image **out, struct vqm_error *err);
void vqm_image_close(struct vqm_image *img);

/* A struct vqm_image * closed when it leaves scope. */
VQM_CLEANUP_DEFINE(vqm_image_cleanup_close, struct vqm_image *, vqm_image_close)
#define CLEANUP_VQM_IMAGE __attribute__((cleanup(vqm_image_cleanup_close)))

const char *vqm_image_format_name(const struct vqm_image *img);
uint64_t vqm_image_size(const struct vqm_image *img);   /* guest bytes */
const char *vqm_image_path(const struct vqm_image *img);
/* The absolute name it was resolved to when opened. */
const char *vqm_image_real(const struct vqm_image *img);
/* The backing image, or NULL (none, or not followed). */
struct vqm_image *vqm_image_backing(const struct vqm_image *img);

/* Guest read through the chain: unallocated ranges fall through to the
 * backing file (zeros past its end), zeros without one.  0 or -1.
 */
int vqm_image_read(struct vqm_image *img, uint64_t off, void *buf,
                   size_t len, struct vqm_error *err);

/* Block status, as `qemu-img map --output=json` reports it. */
struct vqm_map_entry {
    uint64_t start, length;
    unsigned depth;               /* 0 = top image */
    bool present, zero, data;
    bool has_offset;
    uint64_t offset;              /* host offset in the image at depth */
};

/* The map entry starting at off (< size), merged the way qemu-img map
 * merges neighbours.  0 or -1.
 */
int vqm_image_map_at(struct vqm_image *img, uint64_t off,
                     struct vqm_map_entry *e, struct vqm_error *err);

/* Apply the policy above to the backing name 'name' recorded in the image
 * at image_path, whose chain starts at top_path.  Nothing of the backing
 * file is read.  On success *resolved is the path to open (malloc'ed).
 * Returns 0, or -1 (VQM_ERR_REFUSED for a policy refusal).
 */
int vqm_image_vet_backing(const char *image_path, const char *top_path,
                          const char *name,
                          const struct vqm_chain_policy *policy,
                          char **resolved, struct vqm_error *err);

#endif
