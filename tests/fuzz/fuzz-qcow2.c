/* fuzz-sources: src/qed/*.c src/qcow2/*.c src/image/*.c src/common/*.c */
/* fuzz-libs: -lz -lzstd */
/* fuzz-seeds: qcow2 */
/* virt-qed-migrate: libFuzzer target for the read-only qcow2 reader.
 *
 * The input bytes become a file (a memfd) opened by vqm_image_open_fd as
 * qcow2 (backing files not followed): header and extension parsing,
 * L1/L2 lookups, map entries, guest reads including compressed
 * clusters.  Also opened with a probed format.
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
    for (i = 0; i < 8; i++) {
        uint64_t at = size / 8 * (uint64_t) i;
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
    int fd = memfd_create("fuzz-image", MFD_CLOEXEC);
    size_t done = 0;

    if (fd < 0)
        return 0;
    while (done < size) {
        ssize_t r = write(fd, data + done, size - done);
        if (r <= 0) {
            close(fd);
            return 0;
        }
        done += (size_t) r;
    }
    exercise_image(fd, "qcow2");
    exercise_image(fd, NULL);
    close(fd);
    return 0;
}
