/* virt-qed-migrate: where a source file has data, as its file system
 * knows it (SEEK_DATA / SEEK_HOLE).
 *
 * A cluster that lies in a hole of the file reads as zeros: copy mode
 * and verification need not read it.  The data extents are asked for
 * lazily, a window of at most HOLES_MAX extents from the offset asked
 * about, so memory stays bounded whatever the file; a query outside the
 * window refills it from there.  Where the file system cannot say
 * (EINVAL, or any other lseek error) everything counts as data, which is
 * always correct, only slower.  Invariant: a range is reported as a hole
 * only when the file system said so.
 */
#include <config.h>

#define _GNU_SOURCE 1
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "vqm-debug.h"
#include "convert-internal.h"

void
conv_holes_init(struct conv_holes *hm, int fd, bool enabled)
{
    memset(hm, 0, sizeof *hm);
    hm->fd = fd;
    hm->all_data = !enabled;
}

/* Describe [off, ...) with up to HOLES_MAX data extents. */
static void
refill(struct conv_holes *hm, uint64_t off)
{
    uint64_t pos = off;

    hm->lo = off;
    hm->hi = off;
    hm->n = 0;
    while (hm->n < CONV_HOLES_MAX) {
        off_t d, h;

        d = lseek(hm->fd, (off_t) pos, SEEK_DATA);
        if (d < 0) {
            if (errno == ENXIO) {           /* no data from pos on */
                hm->hi = UINT64_MAX;
                return;
            }
            vqm_debug("SEEK_DATA: %s: treating the file as all data",
                      strerror(errno));
            hm->all_data = true;
            return;
        }
        h = lseek(hm->fd, d, SEEK_HOLE);
        if (h < 0 || h <= d || (uint64_t) d < pos) {
            vqm_debug("SEEK_HOLE: %s: treating the file as all data",
                      h < 0 ? strerror(errno) : "inconsistent answer");
            hm->all_data = true;
            return;
        }
        hm->ext[hm->n].start = (uint64_t) d;
        hm->ext[hm->n].end = (uint64_t) h;
        hm->n++;
        hm->hi = (uint64_t) h;
        pos = (uint64_t) h;
    }
}

bool
conv_holes_at(struct conv_holes *hm, uint64_t off, uint64_t *run)
{
    unsigned a, b;

    if (hm->all_data) {
        *run = UINT64_MAX - off;
        return true;
    }
    if (off < hm->lo || off >= hm->hi || hm->n == 0) {
        if (!(off >= hm->lo && off < hm->hi))
            refill(hm, off);
        if (hm->all_data) {
            *run = UINT64_MAX - off;
            return true;
        }
    }
    /* The first extent ending after off (binary search). */
    a = 0;
    b = hm->n;
    while (a < b) {
        unsigned m = (a + b) / 2;
        if (hm->ext[m].end <= off)
            a = m + 1;
        else
            b = m;
    }
    if (a < hm->n && hm->ext[a].start <= off) {
        *run = hm->ext[a].end - off;
        return true;
    }
    /* A hole up to the next extent, or to the end of what is known
     * (hi: UINT64_MAX when no data follows).
     */
    *run = (a < hm->n ? hm->ext[a].start : hm->hi) - off;
    if (*run == 0)
        *run = 1;
    return false;
}

uint64_t
conv_holes_clusters(struct conv_holes *hm, uint64_t host, uint64_t n,
                    uint64_t cs, bool *hole)
{
    uint64_t count = 0, x = host;
    bool want = false;

    while (count < n) {
        uint64_t r, k;
        bool data = conv_holes_at(hm, x, &r), h;

        if (!data && r >= cs) {
            h = true;
            k = r / cs;
        } else {
            /* Data, or a hole ending inside this cluster: data. */
            h = false;
            k = data ? r / cs + (r % cs != 0) : 1;
        }
        if (count == 0)
            want = h;
        else if (h != want)
            break;
        if (k > n - count)
            k = n - count;
        count += k;
        x += k * cs;
    }
    *hole = want;
    return count;
}
