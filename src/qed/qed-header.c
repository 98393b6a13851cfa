/* virt-qed-migrate: QED header parsing and validation.
 *
 * qed_open_fd reads the 64-byte header, converts it once to CPU order
 * (struct qed_info) and validates every field before anything else uses
 * it.  Sums and products are exact (128-bit or checked), so that no
 * header value can make a later offset computation wrap.  An image that
 * the spec allows but QEMU would refuse opens with a warning.
 * Invariant: after a successful open, l1_table_offset passes the table
 * offset test and the backing name (if any) lies in the header area.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "overflow.h"
#include "qed-internal.h"
#include "vqm-endian.h"
#include "vqm-io.h"
#include "vqm-open.h"

static int
add_warning(struct qed_image *img, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
add_warning(struct qed_image *img, const char *fmt, ...)
{
    va_list ap;
    char *s = NULL, **w;
    const char **v;

    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    if (!s)
        return -1;
    w = realloc(img->warnings, (img->n_warnings + 1) * sizeof *w);
    if (!w) {
        free(s);
        return -1;
    }
    img->warnings = w;
    v = realloc(img->warnings_view, (img->n_warnings + 1) * sizeof *v);
    if (!v) {
        free(s);
        return -1;
    }
    img->warnings_view = v;
    img->warnings[img->n_warnings] = s;
    img->warnings_view[img->n_warnings] = s;
    img->n_warnings++;
    return 0;
}

const char *
qed_cluster_offset_problem(const struct qed_image *img, uint64_t off)
{
    const struct qed_info *h = &img->info;

    if (off & (h->cluster_size - 1))
        return "not cluster aligned";
    if (off < (uint64_t) h->header_size * h->cluster_size)
        return "in the header area";
    if (off >= h->file_size) {
        if (off < h->file_length)
            return "in the partial last cluster of the file";
        return "past the end of the file";
    }
    return NULL;
}

const char *
qed_table_offset_problem(const struct qed_image *img, uint64_t off)
{
    const struct qed_info *h = &img->info;
    const char *p;
    uint64_t end;

    if ((p = qed_cluster_offset_problem(img, off)) != NULL)
        return p;
    /* off < file_size <= 2^64, so this cannot wrap past 2^64 when the
     * table fits; check anyway. */
    if (vqm_add_overflow(off, (uint64_t) (h->table_size - 1) *
                         h->cluster_size, &end))
        return "table extends past the end of the file";
    if (end >= h->file_size)
        return "table extends past the end of the file";
    return NULL;
}

static int
read_header(struct qed_image *img, struct vqm_error *err)
{
    struct qed_info *h = &img->info;
    uint8_t buf[QED_HEADER_STRUCT_SIZE];
    struct stat st;
    uint64_t header_bytes, n, cap, qemu_cap;
    bool cap_overflows;
    const char *p;

    if (fstat(img->fd, &st) < 0)
        return vqm_error_set_errno(err, errno, "cannot stat '%s'", img->name);
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
        return vqm_error_set(err, VQM_ERR_INVALID,
                             "'%s' is not a regular file", img->name);
    if (S_ISBLK(st.st_mode)) {
        off_t end = lseek(img->fd, 0, SEEK_END);
        if (end < 0)
            return vqm_error_set_errno(err, errno, "cannot get the size of "
                                       "'%s'", img->name);
        h->file_length = (uint64_t) end;
    }
    else
        h->file_length = (uint64_t) st.st_size;

    if (h->file_length == 0)
        return vqm_error_set(err, VQM_ERR_CORRUPT,
                             "'%s' is empty, not a QED image", img->name);
    if (h->file_length < QED_HEADER_STRUCT_SIZE)
        return vqm_error_set(err, VQM_ERR_CORRUPT,
                             "'%s' is too short (%" PRIu64 " bytes) to be a "
                             "QED image", img->name, h->file_length);
    if (vqm_pread_full(img->fd, buf, sizeof buf, 0, 0, img->name, err) < 0)
        return -1;

    if (vqm_ld_le32(buf) != QED_MAGIC)
        return vqm_error_set(err, VQM_ERR_CORRUPT,
                             "'%s' is not a QED image (bad magic)", img->name);
    h->cluster_size = vqm_ld_le32(buf + 4);
    h->table_size = vqm_ld_le32(buf + 8);
    h->header_size = vqm_ld_le32(buf + 12);
    h->features = vqm_ld_le64(buf + 16);
    h->compat_features = vqm_ld_le64(buf + 24);
    h->autoclear_features = vqm_ld_le64(buf + 32);
    h->l1_table_offset = vqm_ld_le64(buf + 40);
    h->image_size = vqm_ld_le64(buf + 48);
    h->backing_filename_offset = vqm_ld_le32(buf + 56);
    h->backing_filename_size = vqm_ld_le32(buf + 60);

    if (h->features & ~(uint64_t) QED_F_KNOWN)
        return vqm_error_set(err, VQM_ERR_UNSUPPORTED,
                             "'%s': unknown QED incompatible features 0x%"
                             PRIx64, img->name,
                             h->features & ~(uint64_t) QED_F_KNOWN);
    if (!vqm_is_power_of_2(h->cluster_size) ||
        h->cluster_size < QED_MIN_CLUSTER_SIZE ||
        h->cluster_size > QED_MAX_CLUSTER_SIZE)
        return vqm_error_set(err, VQM_ERR_CORRUPT,
                             "'%s': invalid QED cluster size %" PRIu32
                             " (a power of 2 from 4096 to 64 MiB)",
                             img->name, h->cluster_size);
    if (!vqm_is_power_of_2(h->table_size) ||
        h->table_size > QED_MAX_TABLE_SIZE)
        return vqm_error_set(err, VQM_ERR_CORRUPT,
                             "'%s': invalid QED table size %" PRIu32
                             " (a power of 2 from 1 to 16)",
                             img->name, h->table_size);
    if (h->header_size == 0)
        return vqm_error_set(err, VQM_ERR_CORRUPT,
                             "'%s': invalid QED header size 0", img->name);

    h->cluster_bits = vqm_log2(h->cluster_size);
    h->table_entries = (uint64_t) h->table_size * h->cluster_size / 8;
    h->table_bits = vqm_log2(h->table_entries);
    h->file_size = h->file_length & ~(uint64_t) (h->cluster_size - 1);
    header_bytes = (uint64_t) h->header_size * h->cluster_size;

    if (header_bytes >= h->file_size)
        return vqm_error_set(err, VQM_ERR_CORRUPT,
                             "'%s': QED header area (%" PRIu32 " clusters) "
                             "covers the whole file", img->name,
                             h->header_size);
    if (header_bytes > UINT32_MAX)
        add_warning(img, "header area of %" PRIu64 " bytes does not fit in "
                    "32 bits: QEMU cannot open this image", header_bytes);

    if (h->image_size % 512)
        return vqm_error_set(err, VQM_ERR_CORRUPT,
                             "'%s': QED image size %" PRIu64 " is not a "
                             "multiple of 512", img->name, h->image_size);
    n = h->table_entries;
    /* n * n * cluster size may not fit in 64 bits: then every size
     * does fit the tables. */
    cap_overflows = vqm_mul_overflow(n, n, &cap) ||
        vqm_mul_overflow(cap, (uint64_t) h->cluster_size, &cap);
    if (!cap_overflows && h->image_size > cap)
        return vqm_error_set(err, VQM_ERR_CORRUPT,
                             "'%s': QED image size %" PRIu64 " exceeds the "
                             "table capacity", img->name, h->image_size);
    qemu_cap = n * n * h->cluster_size;   /* QEMU computes it modulo 2^64 */
    if (h->image_size > qemu_cap)
        add_warning(img, "table capacity overflows QEMU's 64-bit arithmetic "
                    "(cluster size %" PRIu32 ", table size %" PRIu32 "): "
                    "QEMU cannot open this image", h->cluster_size,
                    h->table_size);
    if (h->table_size == 1)
        add_warning(img, "table size 1: QEMU cannot open this image");

    if ((p = qed_table_offset_problem(img, h->l1_table_offset)) != NULL)
        return vqm_error_set(err, VQM_ERR_CORRUPT,
                             "'%s': QED L1 table offset 0x%" PRIx64
                             " is invalid (%s)", img->name,
                             h->l1_table_offset, p);

    h->need_check = (h->features & QED_F_NEED_CHECK) != 0;
    h->has_backing = (h->features & QED_F_BACKING_FILE) != 0;
    h->backing_no_probe = h->has_backing &&
        (h->features & QED_F_BACKING_FORMAT_NO_PROBE) != 0;

    if (h->has_backing) {
        uint64_t end = (uint64_t) h->backing_filename_offset +
            h->backing_filename_size;

        if (h->backing_filename_size == 0)
            return vqm_error_set(err, VQM_ERR_CORRUPT,
                                 "'%s': QED backing file name is empty",
                                 img->name);
        if (end > header_bytes)
            return vqm_error_set(err, VQM_ERR_CORRUPT,
                                 "'%s': QED backing file name (offset %"
                                 PRIu32 ", %" PRIu32 " bytes) lies outside "
                                 "the header area", img->name,
                                 h->backing_filename_offset,
                                 h->backing_filename_size);
        if (h->backing_filename_offset < QED_HEADER_STRUCT_SIZE)
            return vqm_error_set(err, VQM_ERR_CORRUPT,
                                 "'%s': QED backing file name at offset %"
                                 PRIu32 " overlaps the header",
                                 img->name, h->backing_filename_offset);
        if (h->backing_filename_size > QED_MAX_BACKING_NAME)
            return vqm_error_set(err, VQM_ERR_UNSUPPORTED,
                                 "'%s': QED backing file name too long (%"
                                 PRIu32 " bytes)", img->name,
                                 h->backing_filename_size);
        if (h->backing_filename_size > QED_QEMU_MAX_BACKING_NAME)
            add_warning(img, "backing file name of %" PRIu32 " bytes: QEMU "
                        "cannot open this image (limit %u)",
                        h->backing_filename_size, QED_QEMU_MAX_BACKING_NAME);
        img->backing_name = calloc(1, h->backing_filename_size + 1);
        if (!img->backing_name)
            return vqm_error_set_errno(err, errno, "'%s'", img->name);
        if (vqm_pread_full(img->fd, img->backing_name,
                           h->backing_filename_size,
                           h->backing_filename_offset, 0, img->name,
                           err) < 0)
            return -1;
        if (strlen(img->backing_name) == 0)
            return vqm_error_set(err, VQM_ERR_CORRUPT,
                                 "'%s': QED backing file name is empty",
                                 img->name);
        if (strlen(img->backing_name) < h->backing_filename_size)
            add_warning(img, "backing file name contains a NUL byte; QEMU "
                        "uses the part before it");
        h->backing_name = img->backing_name;
    }
    else if (h->features & QED_F_BACKING_FORMAT_NO_PROBE)
        add_warning(img, "backing format bit set without a backing file");

    if (h->compat_features)
        add_warning(img, "unknown compatible features 0x%" PRIx64,
                    h->compat_features);
    if (h->autoclear_features)
        add_warning(img, "unknown autoclear features 0x%" PRIx64,
                    h->autoclear_features);
    return 0;
}

int
qed_open_fd(int fd, const char *name, struct qed_image **out,
            struct vqm_error *err)
{
    struct qed_image *img;
    size_t i;

    *out = NULL;
    img = calloc(1, sizeof *img);
    if (!img)
        return vqm_error_set_errno(err, errno, "out of memory");
    img->fd = fd;
    img->name = strdup(name ? name : "(fd)");
    if (!img->name) {
        free(img);
        return vqm_error_set_errno(err, errno, "out of memory");
    }
    if (read_header(img, err) < 0) {
        qed_close(img);
        return -1;
    }
    img->chunk_size = img->info.cluster_size < QED_CHUNK_MAX ?
        img->info.cluster_size : QED_CHUNK_MAX;
    for (i = 0; i < QED_CACHE_SLOTS; i++)
        img->cache[i].valid = false;
    *out = img;
    return 0;
}

int
qed_open(const char *path, struct qed_image **out, struct vqm_error *err)
{
    struct vqm_file f;

    *out = NULL;
    if (vqm_open(path, 0, NULL, &f, err) < 0)
        return -1;
    free(f.real);
    if (qed_open_fd(f.fd, path, out, err) < 0) {
        close(f.fd);
        return -1;
    }
    (*out)->own_fd = true;
    return 0;
}

void
qed_close(struct qed_image *img)
{
    size_t i;

    if (!img)
        return;
    if (img->own_fd && img->fd >= 0)
        close(img->fd);
    for (i = 0; i < QED_CACHE_SLOTS; i++)
        free(img->cache[i].buf);
    for (i = 0; i < img->n_warnings; i++)
        free(img->warnings[i]);
    free(img->warnings);
    free(img->warnings_view);
    free(img->backing_name);
    free(img->name);
    free(img);
}

const struct qed_info *
qed_get_info(const struct qed_image *img)
{
    return &img->info;
}

size_t
qed_warnings(const struct qed_image *img, const char *const **list)
{
    if (list)
        *list = img->warnings_view;
    return img->n_warnings;
}
