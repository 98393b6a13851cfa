/* fuzz-sources: src/virt/virt-probe.c src/qed/*.c src/qcow2/*.c src/common/*.c */
/* fuzz-libs: -lz -lzstd */
/* fuzz-seeds: probe qcow2 qed */
/* virt-qed-migrate: libFuzzer target for discovery's header probe.
 *
 * The input bytes become a file in a scratch directory, probed with
 * vqm_probe_file as every --pool, --domain and --all run (also with
 * --dry-run) probes the disks it finds: any file a guest or a tenant
 * wrote.  Besides the sanitizers' checks, the target aborts when
 *  - a successful probe names no format, or a backing name or format
 *    longer than qcow2 and QED allow;
 *  - a backing name that is not in the input (bytes from outside it);
 *  - the probe and the readers the engine uses (q2_open, qed_open_fd)
 *    disagree about the backing file of an image both accept: there is
 *    one parser per format, so they must not.
 */
#include <config.h>

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz-common.h"
#include "qcow2/qcow2-reader.h"
#include "qed/qed.h"
#include "virt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fail(const char *what, const char *value)
{
    fprintf(stderr, "fuzz-probe: %s: '%s'\n", what, value ? value : "(null)");
    abort();
}

static int
same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* The backing name the engine's reader finds, or "" when it refuses the
 * image (then there is nothing to compare). */
static void
compare_with_reader(const char *path, const struct vqm_probe *p)
{
    struct vqm_error err = { 0 };
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        fail("cannot reopen the input", path);
    if (strcmp(p->format, "qcow2") == 0) {
        struct qcow2r *q = NULL;

        if (q2_open(fd, path, &q, &err) == 0) {
            if (!same(q2_backing_name(q), p->backing_name))
                fail("probe and qcow2 reader disagree on the backing name",
                     p->backing_name);
            if (!same(q2_backing_format(q), p->backing_format))
                fail("probe and qcow2 reader disagree on the backing "
                     "format", p->backing_format);
            if (q2_size(q) != p->virtual_size)
                fail("probe and qcow2 reader disagree on the size", path);
            q2_close(q);
        }
    }
    else if (strcmp(p->format, "qed") == 0) {
        struct qed_image *q = NULL;

        if (qed_open_fd(fd, path, &q, &err) == 0) {
            const struct qed_info *info = qed_get_info(q);
            if (!same(info->has_backing ? info->backing_name : NULL,
                      p->backing_name))
                fail("probe and QED reader disagree on the backing name",
                     p->backing_name);
            qed_close(q);
        }
    }
    close(fd);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512];
    struct vqm_probe p;
    struct vqm_error err = { 0 };

    snprintf(path, sizeof path, "%s/disk", fuzz_scratch());
    fuzz_write("disk", data, size);
    if (vqm_probe_file(path, &p, &err) < 0) {
        if (!err.msg[0])
            fail("probe failed without a message", path);
        vqm_probe_clear(&p);
        return 0;
    }
    if (!p.format)
        fail("probe succeeded without a format", path);
    if (p.backing_name) {
        if (strlen(p.backing_name) > 1023)
            fail("backing name longer than 1023 bytes", p.backing_name);
        if (!memmem(data, size, p.backing_name, strlen(p.backing_name)))
            fail("backing name not taken from the input", p.backing_name);
    }
    if (p.backing_format && strlen(p.backing_format) > 15)
        fail("backing format longer than 15 bytes", p.backing_format);
    if (p.file_size != size)
        fail("wrong file size", path);
    compare_with_reader(path, &p);
    vqm_probe_clear(&p);
    return 0;
}
