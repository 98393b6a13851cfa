/* virt-qed-migrate --inspect: show what a QED image holds.
 *
 *   --inspect FILE               header, backing, check, summary (text)
 *   --inspect FILE --map         guest map as a table
 *   --inspect FILE --map --json  guest map exactly as qemu-img map
 *                                --output=json prints it
 *
 * The image is opened read-only and never modified.  Exit status: 0 the
 * image is valid (leaks and warnings allowed), 1 corrupt or unreadable.
 */
#include <config.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image/image.h"
#include "options.h"
#include "qed/qed.h"
#include "vqm-open.h"
#include "vqm-quote.h"

static void
human_size(uint64_t v, char *buf, size_t len)
{
    static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB",
                                         "PiB", "EiB" };
    double d = (double) v;
    size_t u = 0;

    while (d >= 1024 && u + 1 < sizeof units / sizeof units[0]) {
        d /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%" PRIu64 " B", v);
    else
        snprintf(buf, len, "%.3g %s", d, units[u]);
}

static void
policy_from_opts(const struct vqm_opts *o, struct vqm_chain_policy *pol)
{
    memset(pol, 0, sizeof *pol);
    pol->trusted_dirs = (const char *const *) o->trust_dirs.v;
    pol->n_trusted_dirs = o->trust_dirs.n;
}

static int
print_map(struct vqm_image *img, bool json)
{
    uint64_t off = 0, size = vqm_image_size(img);
    struct vqm_map_entry e;
    struct vqm_error err = { 0 };
    bool first = true;

    if (json)
        printf("[");
    else
        printf("%-20s %-20s %5s  %-11s %s\n", "Offset", "Length", "Depth",
               "Kind", "Host offset");
    while (off < size) {
        if (vqm_image_map_at(img, off, &e, &err) < 0) {
            if (json)
                printf("]\n");
            fflush(stdout);
            vqm_report_error("%s", err.msg);
            return VQM_EXIT_FAILED;
        }
        if (json) {
            if (!first)
                printf(",\n");
            printf("{ \"start\": %" PRIu64 ", \"length\": %" PRIu64 ", "
                   "\"depth\": %u, \"present\": %s, \"zero\": %s, "
                   "\"data\": %s", e.start, e.length, e.depth,
                   e.present ? "true" : "false", e.zero ? "true" : "false",
                   e.data ? "true" : "false");
            if (e.has_offset)
                printf(", \"offset\": %" PRIu64, e.offset);
            printf("}");
        }
        else {
            const char *kind = !e.present ? "unallocated" :
                e.data ? "data" : "zero";
            printf("0x%-18" PRIx64 " 0x%-18" PRIx64 " %5u  %-11s", e.start,
                   e.length, e.depth, kind);
            if (e.has_offset)
                printf(" 0x%" PRIx64, e.offset);
            printf("\n");
        }
        first = false;
        off = e.start + e.length;
    }
    if (json) {
        if (first)      /* qemu-img prints its empty initial entry */
            printf("{ \"start\": 0, \"length\": 0, \"depth\": 0, "
                   "\"present\": false, \"zero\": false, "
                   "\"data\": false}");
        printf("]\n");
    }
    return VQM_EXIT_OK;
}

struct problem_printer {
    uint64_t n;
};

static void
print_problem(void *opaque, enum qed_problem_kind kind, const char *msg)
{
    struct problem_printer *pp = opaque;

    pp->n++;
    printf("  %s: %s\n", kind == QED_PROBLEM_LEAK ? "leak" : "corruption",
           vqm_q(msg));
}

static void
print_features(const char *label, uint64_t f, bool incompat)
{
    printf("%-22s 0x%" PRIx64, label, f);
    if (incompat && f) {
        const char *sep = " (";
        if (f & QED_F_BACKING_FILE) {
            printf("%sbacking-file", sep);
            sep = ", ";
        }
        if (f & QED_F_NEED_CHECK) {
            printf("%sneed-check", sep);
            sep = ", ";
        }
        if (f & QED_F_BACKING_FORMAT_NO_PROBE) {
            printf("%sbacking-format-no-probe", sep);
            sep = ", ";
        }
        if (f & ~(uint64_t) QED_F_KNOWN)
            printf("%sunknown", sep);
        printf(")");
    }
    printf("\n");
}

/* Sum extents of this image alone: data, zero, unallocated bytes. */
static int
summarise(struct qed_image *q, uint64_t sums[3], struct vqm_error *err)
{
    uint64_t off = 0, size = qed_get_info(q)->image_size;
    struct qed_extent ext;

    sums[0] = sums[1] = sums[2] = 0;
    while (off < size) {
        if (qed_extent_at(q, off, 0, &ext, err) < 0)
            return -1;
        sums[ext.kind] += ext.length;
        off += ext.length;
    }
    return 0;
}

static int
print_text(const char *path, const struct vqm_file *f, struct qed_image *q,
           const struct vqm_opts *o)
{
    const struct qed_info *h = qed_get_info(q);
    struct qed_check_result res;
    struct problem_printer pp = { 0 };
    struct vqm_error err = { 0 };
    struct vqm_chain_policy pol;
    struct vqm_image *chain = NULL;
    const char *const *warn;
    size_t nwarn, i;
    uint64_t sums[3];
    char hs[32];
    int ret = VQM_EXIT_OK;
    char chain_err[sizeof err.msg] = "";

    printf("%-22s %s\n", "image:", vqm_q(path));
    printf("%-22s qed\n", "format:");
    human_size(h->image_size, hs, sizeof hs);
    printf("%-22s %" PRIu64 " (%s)\n", "virtual size:", h->image_size, hs);
    printf("%-22s %" PRIu32 "\n", "cluster size:", h->cluster_size);
    printf("%-22s %" PRIu32 " clusters (%" PRIu64 " entries)\n",
           "table size:", h->table_size, h->table_entries);
    printf("%-22s %" PRIu32 " clusters\n", "header size:", h->header_size);
    print_features("features:", h->features, true);
    print_features("compat features:", h->compat_features, false);
    print_features("autoclear features:", h->autoclear_features, false);
    printf("%-22s 0x%" PRIx64 "\n", "L1 table offset:", h->l1_table_offset);
    printf("%-22s %" PRIu64 "\n", "file length:", h->file_length);
    printf("%-22s %s\n", "dirty (need check):", h->need_check ? "yes" : "no");

    if (h->has_backing) {
        printf("%-22s %s\n", "backing file:", vqm_q(h->backing_name));
        printf("%-22s %s\n", "backing format:", h->backing_no_probe ?
               "raw (no-probe bit set)" : "not recorded (probed)");
        policy_from_opts(o, &pol);
        if (vqm_image_open_fd(f->fd, path, f->real, "qed", true, &pol,
                              &chain, &err) < 0) {
            printf("%-22s %s\n", "backing chain:", vqm_q(err.msg));
            snprintf(chain_err, sizeof chain_err, "%s", err.msg);
        }
        else {
            struct vqm_image *b;
            unsigned d = 1;
            for (b = vqm_image_backing(chain); b; b = vqm_image_backing(b)) {
                printf("%-22s depth %u: %s (%s, %" PRIu64 " bytes)\n",
                       d == 1 ? "backing chain:" : "", d,
                       vqm_q(vqm_image_path(b)), vqm_image_format_name(b),
                       vqm_image_size(b));
                d++;
            }
            vqm_image_close(chain);
        }
    }
    else
        printf("%-22s none\n", "backing file:");

    nwarn = qed_warnings(q, &warn);
    for (i = 0; i < nwarn; i++)
        printf("warning: %s\n", vqm_q(warn[i]));

    printf("check:\n");
    if (qed_check(q, &res, print_problem, &pp, &err) < 0) {
        fflush(stdout);
        vqm_report_error("%s", err.msg);
        return VQM_EXIT_FAILED;
    }
    printf("  %" PRIu64 " corruption%s, %" PRIu64 " leaked cluster%s\n",
           res.corruptions, res.corruptions == 1 ? "" : "s", res.leaks,
           res.leaks == 1 ? "" : "s");

    printf("summary:\n");
    printf("  %-20s %" PRIu64 "\n", "L2 tables:", res.l2_tables);
    printf("  %-20s %" PRIu64 "\n", "data clusters:", res.data_clusters);
    printf("  %-20s %" PRIu64 " bytes\n", "allocated:", res.allocated_bytes);
    printf("  %-20s %" PRIu64 "\n", "zero clusters:", res.zero_clusters);
    if (res.corruptions == 0 && summarise(q, sums, &err) == 0) {
        printf("  %-20s %" PRIu64 " bytes\n", "zero:", sums[QED_EXTENT_ZERO]);
        printf("  %-20s %" PRIu64 " bytes\n", "unallocated:",
               sums[QED_EXTENT_UNALLOCATED]);
    }
    printf("  %-20s %" PRIu64 "\n", "highest used offset:",
           res.highest_used_end);
    fflush(stdout);

    if (res.corruptions) {
        vqm_report_error("'%s' is corrupt: %" PRIu64 " problem%s found by "
                         "the check", path, res.corruptions,
                         res.corruptions == 1 ? "" : "s");
        ret = VQM_EXIT_FAILED;
    }
    else if (*chain_err) {
        vqm_report_error("%s", chain_err);
        ret = VQM_EXIT_FAILED;
    }
    return ret;
}

int
vqm_cmd_inspect(const struct vqm_opts *o)
{
    struct qed_image *q = NULL;
    struct vqm_error err = { 0 };
    struct vqm_file f;
    int ret;

    if (o->json && !o->map) {
        fprintf(stderr, "virt-qed-migrate: --json goes with --map\n"
                "Try 'virt-qed-migrate --help' for more information.\n");
        return VQM_EXIT_USAGE;
    }
    /* Opened once (vqm-open.h: no FIFO, socket or character device is
     * ever opened); the backing chain and the map use this descriptor. */
    if (vqm_open(o->inspect, 0, NULL, &f, &err) < 0) {
        vqm_report_error("%s", err.msg);
        return VQM_EXIT_FAILED;
    }
    if (qed_open_fd(f.fd, o->inspect, &q, &err) < 0) {
        vqm_file_close(&f);
        vqm_report_error("%s", err.msg);
        return VQM_EXIT_FAILED;
    }
    if (o->map) {
        struct vqm_chain_policy pol;
        struct vqm_image *img = NULL;
        struct qed_check_result res;

        /* The map of a corrupt image is not printed: exit 1 as the text
         * form does (its cost is the metadata, as the map's). */
        if (qed_check(q, &res, NULL, NULL, &err) < 0) {
            qed_close(q);
            vqm_file_close(&f);
            vqm_report_error("%s", err.msg);
            return VQM_EXIT_FAILED;
        }
        qed_close(q);
        if (res.corruptions) {
            vqm_file_close(&f);
            vqm_report_error("'%s' is corrupt: %" PRIu64 " problem%s found "
                             "by the check (--inspect without --map lists "
                             "them)", o->inspect, res.corruptions,
                             res.corruptions == 1 ? "" : "s");
            return VQM_EXIT_FAILED;
        }
        policy_from_opts(o, &pol);
        ret = vqm_image_open_fd(f.fd, o->inspect, f.real, "qed", true, &pol,
                                &img, &err);
        vqm_file_close(&f);
        if (ret < 0) {
            vqm_report_error("%s", err.msg);
            return VQM_EXIT_FAILED;
        }
        ret = print_map(img, o->json);
        vqm_image_close(img);
        return ret;
    }
    ret = print_text(o->inspect, &f, q, o);
    qed_close(q);
    vqm_file_close(&f);
    return ret;
}
