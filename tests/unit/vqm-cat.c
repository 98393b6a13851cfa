/* vqm-cat: test helper that streams the guest bytes of an image (and
 * its backing chain) to stdout through vqm_image_read, so that tests
 * can compare them with `qemu-img convert -O raw`.
 *
 *   vqm-cat FILE [FORMAT [OFFSET LENGTH]]
 *
 * FORMAT "" or "probe" probes the top image.  Exit 0, or 1 with one
 * line on stderr.
 */
#include <config.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "image.h"

int
main(int argc, char *argv[])
{
    static char buf[1024 * 1024];
    struct vqm_image *img = NULL;
    struct vqm_error err = { 0 };
    const char *fmt = NULL;
    uint64_t off = 0, end;

    if (argc < 2 || argc == 4 || argc > 5) {
        fprintf(stderr, "usage: vqm-cat FILE [FORMAT [OFFSET LENGTH]]\n");
        return 2;
    }
    if (argc >= 3 && *argv[2] && strcmp(argv[2], "probe") != 0)
        fmt = argv[2];
    if (vqm_image_open(argv[1], fmt, true, NULL, &img, &err) < 0) {
        fprintf(stderr, "vqm-cat: %s\n", err.msg);
        return 1;
    }
    end = vqm_image_size(img);
    if (argc == 5) {
        off = strtoull(argv[3], NULL, 0);
        end = off + strtoull(argv[4], NULL, 0);
    }
    while (off < end) {
        size_t n = end - off < sizeof buf ? (size_t) (end - off) : sizeof buf;
        if (vqm_image_read(img, off, buf, n, &err) < 0) {
            fprintf(stderr, "vqm-cat: %s\n", err.msg);
            vqm_image_close(img);
            return 1;
        }
        if (fwrite(buf, 1, n, stdout) != n) {
            perror("vqm-cat: write");
            vqm_image_close(img);
            return 1;
        }
        off += n;
    }
    vqm_image_close(img);
    return fflush(stdout) == 0 ? 0 : 1;
}
