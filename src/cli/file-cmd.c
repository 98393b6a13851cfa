/* virt-qed-migrate --file: convert one image file.
 *
 * In place by default; --output NEW or --copy convert by copy.  Prints
 * one human result line unless -q, the progress bar with -p on a
 * terminal, or "N/100" lines with --progress=FD.  Exit 0 only when the
 * image is (now, or already) qcow2 with the same guest data.
 */
#include <config.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "options.h"
#include "convert/convert.h"
#include "vqm-quote.h"

struct progress_state {
    int fd;                 /* -1: bar on stdout */
    int last;
};

static void
progress_cb(void *opaque, uint64_t done, uint64_t total)
{
    struct progress_state *ps = opaque;
    int pct = total ? (int) (done * 100 / total) : 100;

    if (pct > 100)
        pct = 100;
    if (pct == ps->last)
        return;
    ps->last = pct;
    if (ps->fd >= 0) {
        dprintf(ps->fd, "%d/100\n", pct);
    } else {
        int i, bar = pct / 4;
        char line[64];

        for (i = 0; i < 25; i++)
            line[i] = i < bar ? '#' : '-';
        line[25] = '\0';
        printf("\r%3d%% [%s]", pct, line);
        fflush(stdout);
    }
}

/* --repair: what the tables that cannot be trusted described is dropped
 * (read as unallocated).  The check's findings are kept (the first
 * DROPPED_MAX of them) and listed after the result line.
 */
#define DROPPED_MAX 50
struct dropped_list {
    char *v[DROPPED_MAX];
    size_t n, more;
};

static void
dropped_cb(void *opaque, const char *problem)
{
    struct dropped_list *dl = opaque;

    if (dl->n < DROPPED_MAX && (dl->v[dl->n] = strdup(problem)) != NULL)
        dl->n++;
    else
        dl->more++;
}

static void
dropped_print(struct dropped_list *dl, bool dry_run, bool print)
{
    size_t i;

    for (i = 0; i < dl->n; i++) {
        if (print)
            printf("  %s: %s\n", dry_run ? "would drop" : "dropped",
                   vqm_q(dl->v[i]));
        free(dl->v[i]);
    }
    if (print && dl->more)
        printf("  ... and %zu more problem%s\n", dl->more,
               dl->more == 1 ? "" : "s");
}

static void
human_size(uint64_t v, char *buf, size_t len)
{
    static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB",
                                         "PiB" };
    double d = (double) v;
    int u = 0;

    while (d >= 1024 && u < 5) {
        d /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%" PRIu64 " B", v);
    else
        snprintf(buf, len, "%.1f %s", d, units[u]);
}

int
vqm_cmd_file(const struct vqm_opts *o)
{
    struct vqm_convert_opts co;
    struct vqm_convert_result res;
    struct vqm_error err = { 0 };
    struct progress_state ps = { .fd = -1, .last = -1 };
    struct dropped_list dl = { .n = 0 };
    bool copy = o->output || o->copy;
    bool bar = false;
    char sz[32], extra[128] = "";
    int r;

    if (o->flatten && !copy) {
        vqm_report_error("--flatten needs --copy or --output");
        return VQM_EXIT_USAGE;
    }
    if (!copy && !o->allow_copy &&
        (o->cluster_size || o->lazy_refcounts || o->compress)) {
        vqm_report_error("--cluster-size, --lazy-refcounts and --compress "
                         "need --copy or --output");
        return VQM_EXIT_USAGE;
    }

    memset(&co, 0, sizeof co);
    co.mode = copy ? VQM_CONVERT_COPY : VQM_CONVERT_IN_PLACE;
    co.allow_copy_fallback = o->allow_copy;
    co.output = o->output;
    co.dry_run = o->dry_run;
    co.verify = o->verify || o->verify_full;
    co.verify_full = o->verify_full;
    co.flatten = o->flatten;
    co.repair = o->repair;
    co.dropped = dropped_cb;
    co.dropped_opaque = &dl;
    co.no_punch = o->no_punch;
    co.cluster_size = o->cluster_size;
    co.lazy_refcounts = o->lazy_refcounts;
    co.compress = o->compress;
    co.policy.trusted_dirs = (const char *const *) o->trust_dirs.v;
    co.policy.n_trusted_dirs = o->trust_dirs.n;
    /* When FILE is a block device, a backing file may be that device
     * (the policy compares the device numbers of what it opens; nothing
     * is looked up here by name). */
    co.policy.allowed_devices = &o->file;
    co.policy.n_allowed_devices = 1;
    if (o->progress) {
        if (o->progress_fd >= 0) {
            ps.fd = o->progress_fd;
            co.progress = progress_cb;
        } else if (isatty(STDOUT_FILENO)) {
            bar = true;
            co.progress = progress_cb;
        }
        co.progress_opaque = &ps;
    }

    r = vqm_convert(o->file, &co, &res, &err);
    if (bar && ps.last >= 0)
        printf("\n");
    if (r < 0) {
        dropped_print(&dl, o->dry_run, false);
        vqm_report_error("%s", err.msg[0] ? err.msg : "conversion failed");
        return VQM_EXIT_FAILED;
    }
    if (res.warning[0])
        vqm_report_warning("%s", res.warning);
    if (o->quiet) {
        dropped_print(&dl, o->dry_run, false);
        return VQM_EXIT_OK;
    }

    if (res.already_qcow2) {
        printf("'%s' is already qcow2\n", vqm_q(o->file));
        return VQM_EXIT_OK;
    }
    if (res.dropped_clusters)
        snprintf(extra, sizeof extra, ", %" PRIu64 " guest cluster%s of "
                 "corrupt tables read as unallocated", res.dropped_clusters,
                 res.dropped_clusters == 1 ? "" : "s");
    if (res.verified)
        strncat(extra, ", verified", sizeof extra - strlen(extra) - 1);
    if (o->dry_run) {
        char data[32];

        human_size(res.allocated_bytes, data, sizeof data);
        if (res.mode == VQM_CONVERT_IN_PLACE) {
            human_size(res.metadata_bytes, sz, sizeof sz);
            printf("would convert '%s' to qcow2 in place: the check found no "
                   "corruption and every cluster can stay where it is, so "
                   "only new metadata is written (at most %s; %s of guest "
                   "data stay in place", vqm_q(o->file), sz, data);
            if (res.leaks)
                printf("; %" PRIu64 " leaked cluster%s freed", res.leaks,
                       res.leaks == 1 ? "" : "s");
            printf(")\n");
        } else {
            printf("would convert '%s' to qcow2 by copy into '%s' (%s of "
                   "guest data): %s\n", vqm_q(o->file), vqm_q(res.output),
                   data, res.reason[0] ? vqm_q(res.reason) :
                   o->output ? "--output names a new file" :
                   o->copy ? "--copy asks for a copy" : "copy mode");
        }
        dropped_print(&dl, true, true);
        return VQM_EXIT_OK;
    }
    if (res.mode == VQM_CONVERT_IN_PLACE) {
        human_size(res.metadata_bytes, sz, sizeof sz);
        printf("converted '%s' to qcow2 in place in %.3f s (%s of metadata "
               "written%s)\n", vqm_q(o->file), res.seconds, sz, extra);
    } else {
        human_size(res.data_bytes_written, sz, sizeof sz);
        printf("converted '%s' to qcow2 '%s' by copy in %.3f s (%s of data "
               "written%s)%s%s\n", vqm_q(o->file), vqm_q(res.output),
               res.seconds, sz, extra, res.reason[0] ? ": " : "",
               vqm_q(res.reason));
    }
    dropped_print(&dl, false, true);
    return VQM_EXIT_OK;
}
