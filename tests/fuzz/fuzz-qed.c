/* fuzz-sources: src/qed/*.c src/qcow2/*.c src/image/*.c src/common/*.c */
/* fuzz-libs: -lz -lzstd */
/* fuzz-seeds: qed */
/* virt-qed-migrate: libFuzzer target for the QED reader.
 *
 * The input bytes become a file (a memfd): qed_open_fd validates the
 * header, qed_check walks every table, extents are iterated and a few
 * guest reads are made; then the same file goes through src/image
 * (map entries and reads, backing files not followed).  Every path
 * must end in a clean error or success: no crash, no leak, no hang.
 */
#include <config.h>

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "image.h"
#include "qed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
make_file(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz-image", MFD_CLOEXEC);
    size_t done = 0;

    if (fd < 0)
        return -1;
    while (done < size) {
        ssize_t r = write(fd, data + done, size - done);
        if (r <= 0) {
            close(fd);
            return -1;
        }
        done += (size_t) r;
    }
    return fd;
}

static void
exercise_qed(int fd)
{
    static char buf[65536];
    struct qed_image *img = NULL;
    struct vqm_error err = { 0 };
    struct qed_check_result res;
    const struct qed_info *h;
    const char *const *warn;
    struct qed_extent ext;
    uint64_t off = 0, entry;
    int i;

    if (qed_open_fd(fd, "fuzz.qed", &img, &err) < 0)
        return;
    h = qed_get_info(img);
    (void) qed_warnings(img, &warn);
    (void) qed_check(img, &res, NULL, NULL, &err);
    for (i = 0; i < 256 && off < h->image_size; i++) {
        if (qed_extent_at(img, off, 0, &ext, &err) < 0 || ext.length == 0)
            break;
        off += ext.length;
    }
    for (i = 0; i < 4; i++) {
        uint64_t at = h->image_size / 4 * (uint64_t) i;
        size_t n = sizeof buf;
        if (at >= h->image_size)
            break;
        if (h->image_size - at < n)
            n = (size_t) (h->image_size - at);
        (void) qed_read(img, at, buf, n, &err);
        (void) qed_lookup(img, at, &entry, &err);
    }
    (void) qed_table_entry(img, h->l1_table_offset, 0, &entry, &err);
    qed_close(img);
}

static void
exercise_image(int fd, const char *format)
{
    static char buf[65536];
    struct vqm_image *img = NULL;
    struct vqm_error err = { 0 };
    struct vqm_map_entry e;
    char path[64];
    uint64_t off = 0, size;
    int i;

    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    if (vqm_image_open_fd(fd, path, path, format, false, NULL, &img,
                          &err) < 0)
        return;
    size = vqm_image_size(img);
    for (i = 0; i < 256 && off < size; i++) {
        if (vqm_image_map_at(img, off, &e, &err) < 0 || e.length == 0)
            break;
        off = e.start + e.length;
    }
    for (i = 0; i < 4; i++) {
        uint64_t at = size / 4 * (uint64_t) i;
        size_t n = sizeof buf;
        if (at >= size)
            break;
        if (size - at < n)
            n = (size_t) (size - at);
        (void) vqm_image_read(img, at, buf, n, &err);
    }
    vqm_image_close(img);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = make_file(data, size);

    (void) vqm_probe_format(data, size);
    if (fd < 0)
        return 0;
    exercise_qed(fd);
    exercise_image(fd, "qed");
    close(fd);
    return 0;
}
