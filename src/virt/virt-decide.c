/* virt-qed-migrate: the decisions of a plan, over the image graph
 * (virt-graph.c).
 *
 * For each QED image in scope: whether it is converted, by copy or in
 * place, under which name, and what blocks it.  Nothing is changed here.
 *
 * Invariants of a plan:
 * - an image is converted only after its backing image (depth order);
 * - an image whose backing image is blocked is blocked too;
 * - a file is renamed only when every image naming it will have its
 *   reference rewritten (converted QED overlays, or qcow2 overlays);
 * - an image used by a running, transient or saved domain is blocked
 *   unless --shutdown applies to that domain.
 * Recovery: files renamed or converted by an interrupted run are found
 * through the journal and their migration is finished, not restarted.
 */
#include <config.h>

#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cleanup.h"
#include "convert/convert.h"
#include "domxml/domxml.h"
#include "virt-internal.h"
#include "virt-live.h"
#include "virt-snapshot.h"
#include "vqm-io.h"

static bool
is_qed(const struct vqm_vimage *img)
{
    return img->format && strcmp(img->format, "qed") == 0;
}

/* ---- decisions ---- */

static void
block_image(struct vqm_vimage *img, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
block_image(struct vqm_vimage *img, const char *fmt, ...)
{
    va_list ap;

    if (img->outcome == VQM_OUTCOME_SKIPPED
        || img->outcome == VQM_OUTCOME_FAILED)
        return;
    img->outcome = VQM_OUTCOME_SKIPPED;
    va_start(ap, fmt);
    vsnprintf(img->reason, sizeof img->reason, fmt, ap);
    va_end(ap);
}

/* An image above a blocked or failed one cannot go either. */
void
vqm_virt_propagate_blocks(struct vqm_virt_run *run)
{
    size_t i;

    for (i = 0; i < run->n_images; i++) {      /* bases come first */
        struct vqm_vimage *img = run->images[i], *b = img->backing;

        if (!img->migrate || !b || !b->migrate)
            continue;
        if (b->outcome == VQM_OUTCOME_SKIPPED
            || b->outcome == VQM_OUTCOME_FAILED)
            block_image(img, "its backing file '%s' is not converted",
                        b->path);
    }
}

static int
by_depth(const void *a, const void *b)
{
    const struct vqm_vimage *x = *(struct vqm_vimage *const *) a;
    const struct vqm_vimage *y = *(struct vqm_vimage *const *) b;

    return (x->depth > y->depth) - (x->depth < y->depth);
}

static bool
ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);

    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* NAME.qed -> NAME.qcow2; copy mode: other names get .qcow2 appended. */
static char *
qcow2_name(const char *path, bool copy)
{
    char *s;
    size_t n = strlen(path);

    if (ends_with(path, ".qed")) {
        if (asprintf(&s, "%.*s.qcow2", (int) (n - 4), path) < 0)
            return NULL;
        return s;
    }
    if (!copy)
        return strdup(path);
    if (asprintf(&s, "%s.qcow2", path) < 0)
        return NULL;
    return s;
}

static void
decide_names(struct vqm_virt_run *run)
{
    const struct vqm_virt_opts *o = &run->opts;
    size_t i, k;

    for (i = 0; i < run->n_images; i++) {
        struct vqm_vimage *img = run->images[i];
        CLEANUP_FREE char *nn = NULL;
        struct stat st;

        if (!img->migrate || img->outcome == VQM_OUTCOME_SKIPPED
            || img->copy)
            continue;
        /* Converted in place by an interrupted run: still to rename. */
        if (!img->convert && (!img->converted_before
                              || strcmp(img->cur_path, img->path) != 0))
            continue;
        img->copy = o->copy && !img->block_device && img->convert;
        if (img->block_device || (o->keep_name && !img->copy))
            continue;
        if (img->copy) {
            const char *prev = run->journal
                ? vqm_journal_copy_output(run->journal, img->cur_path)
                : NULL;
            nn = prev ? strdup(prev) : qcow2_name(img->cur_path, true);
            if (!nn)
                continue;
            if (!prev && lstat(nn, &st) == 0) {
                block_image(img, "copy target '%s' exists already", nn);
                continue;
            }
            free(img->new_path);
            img->new_path = vqm_steal(&nn);
            continue;
        }
        if (!(nn = qcow2_name(img->cur_path, false))
            || strcmp(nn, img->cur_path) == 0)
            continue;
        if (img->symlink) {
            snprintf(img->note, sizeof img->note,
                     "name kept: '%s' is a symbolic link", img->cur_path);
            continue;
        }
        if (lstat(nn, &st) == 0) {
            snprintf(img->note, sizeof img->note,
                     "name kept: '%s' exists", nn);
            continue;
        }
        /* Every image naming this one must get its reference rewritten:
         * converted QED overlays and qcow2 overlays can, others not. */
        for (k = 0; k < run->n_images; k++) {
            struct vqm_vimage *up = run->images[k];
            if (up->backing != img)
                continue;
            if (up->migrate && up->outcome != VQM_OUTCOME_SKIPPED)
                continue;
            if (up->format && strcmp(up->format, "qcow2") == 0
                && !up->used_by_running)
                continue;
            snprintf(img->note, sizeof img->note,
                     "name kept: '%s' names it and cannot be rewritten",
                     up->path);
            break;
        }
        if (k < run->n_images)
            continue;
        free(img->new_path);
        img->new_path = vqm_steal(&nn);
        img->rename = true;
    }
}

/* Pass 1, the scope: disks of the named domains, chain included.  The
 * journal is the host's, not one command's: what an interrupted run
 * changed (converted, renamed, copied) is finished whatever the scope of
 * this run. */
static void
decide_scope(struct vqm_virt_run *run)
{
    size_t i, k;

    for (i = 0; i < run->n_domains; i++) {
        struct vqm_vdomain *d = &run->domains[i];
        for (k = 0; k < d->n_disks; k++) {
            struct vqm_vimage *c;
            if (!d->in_scope)
                break;
            for (c = d->disks[k].image; c; c = c->backing)
                c->in_scope = true;
        }
    }
    for (i = 0; i < run->n_images && run->journal; i++) {
        struct vqm_vimage *img = run->images[i];
        const char *prev;
        struct stat st;

        if (!img->exists)
            continue;
        prev = is_qed(img) ? vqm_journal_copy_output(run->journal,
                                                     img->cur_path) : NULL;
        if (img->converted_before || strcmp(img->cur_path, img->path) != 0
            || (prev && stat(prev, &st) == 0))
            img->in_scope = img->recovered = true;
    }
}

/* An image to convert that an interrupted run copied (the journal), or
 * an earlier run that finished (the copies index): nothing to convert,
 * only the rest is left, and a rerun is idempotent. */
static void
decide_copied_before(struct vqm_virt_run *run, struct vqm_vimage *img)
{
    const char *prev = vqm_journal_copy_output(run->journal, img->cur_path);
    struct stat st;
    bool verified = false;

    if (!prev && (prev = vqm_journal_known_copy(run->journal, img->cur_path,
                                                &verified)))
        img->verified = verified;
    if (prev && stat(prev, &st) == 0) {
        img->convert = false;
        img->copy = true;
        free(img->new_path);
        img->new_path = strdup(prev);
    }
}

/* Pass 2, the images: which are migrated, which converted. */
static void
decide_images(struct vqm_virt_run *run)
{
    size_t i;

    for (i = 0; i < run->n_images; i++) {
        struct vqm_vimage *img = run->images[i];

        img->migrate = img->in_scope && img->exists
            && (is_qed(img) || img->converted_before
                || strcmp(img->cur_path, img->path) != 0);
        img->convert = img->migrate && is_qed(img);
        if (img->convert && run->journal)
            decide_copied_before(run, img);
        if (img->migrate && !img->convert)
            img->outcome = VQM_OUTCOME_DONE;   /* by an earlier run */
        if (img->migrate && img->convert && img->reason[0])
            img->outcome = VQM_OUTCOME_SKIPPED;  /* header refused */
        else if (img->convert)
            img->outcome = VQM_OUTCOME_PLANNED;
    }
}

/* A disk without QED in its chain: why it is left alone. */
static void
disk_without_qed(const struct vqm_vdomain *d, struct vqm_vdisk *dk,
                 const char *xf)
{
    const struct vqm_vimage *img = dk->image;

    if (img->format && strcmp(xf, img->format) != 0)
        snprintf(dk->reason, sizeof dk->reason,
                 "format mismatch: the domain XML says '%s', "
                 "'%s' is %s; left alone", xf, img->path,
                 img->format);
    else if (!img->format && img->unread && img->reason[0])
        /* Not an image the tool opens (a FIFO, a device, a symlink
         * someone else planted, ...): why. */
        snprintf(dk->reason, sizeof dk->reason,
                 "not read: %s; left alone", img->reason);
    else
        snprintf(dk->reason, sizeof dk->reason,
                 "not QED (%s): left alone",
                 img->format ? img->format : "unknown");
    /* A disk the XML calls QED is ours to report. */
    if (strcmp(xf, "qed") == 0 && d->in_scope)
        dk->outcome = VQM_OUTCOME_SKIPPED;
}

/* The XML's format must be the file's (or the QED it was before we
 * converted it); else the disk is not changed and its chain blocked. */
static void
disk_check_format(const struct vqm_vdomain *d, struct vqm_vdisk *dk,
                  const char *xf)
{
    struct vqm_vimage *img = dk->image, *c;
    bool ours = d->in_scope;

    if (!img->format || strcmp(xf, img->format) == 0
        || (strcmp(xf, "qed") == 0 && img->migrate && !img->convert))
        return;
    snprintf(dk->reason, sizeof dk->reason,
             "format mismatch: the domain XML says '%s', "
             "'%s' is %s; not changed", xf, img->path,
             img->format);
    for (c = img; c; c = c->backing)
        if (c->migrate) {
            ours = true;
            block_image(c, "domain '%s' disk %s: the XML says "
                        "'%s' but the file is %s", d->name,
                        dk->target, xf, img->format);
        }
    /* Out of scope and naming nothing this run converts: reported, not
     * skipped. */
    if (ours)
        dk->outcome = VQM_OUTCOME_SKIPPED;
}

/* One disk of d: left alone, or format mismatch. */
static void
decide_disk(const struct vqm_virt_run *run, const struct vqm_vdomain *d,
            struct vqm_vdisk *dk)
{
    struct vqm_vimage *img = dk->image, *c;
    const char *xf = dk->xml_format ? dk->xml_format : "raw";

    if (!dk->can_hold_qed) {
        /* lun, network, dir, nvme, vhostuser: cannot hold QED;
         * enforce_references() keeps their files unchanged. */
        snprintf(dk->reason, sizeof dk->reason,
                 "%s %s: left alone (cannot hold QED)", dk->type,
                 dk->device);
        return;
    }
    if (!img) {
        if (!dk->reason[0])
            snprintf(dk->reason, sizeof dk->reason,
                     "%s: left alone (no source)", dk->device);
        return;
    }
    for (c = img; c; c = c->backing)
        if (c->migrate || is_qed(c))
            dk->has_qed = true;
    if (!img->exists) {
        snprintf(dk->reason, sizeof dk->reason,
                 "source '%s' does not exist", img->path);
        if (d->in_scope)
            dk->outcome = VQM_OUTCOME_SKIPPED;
        return;
    }
    if (!dk->has_qed && !img->format && run->remote && img->reason[0]) {
        /* Not readable through a remote connection. */
        snprintf(dk->reason, sizeof dk->reason, "%s", img->reason);
        if (d->in_scope)
            dk->outcome = VQM_OUTCOME_SKIPPED;
        return;
    }
    if (!dk->has_qed) {
        disk_without_qed(d, dk, xf);
        return;
    }
    disk_check_format(d, dk, xf);
}

/* Pass 3, the disks: what is left alone, and format mismatches. */
static void
decide_disks(struct vqm_virt_run *run)
{
    size_t i, k;

    for (i = 0; i < run->n_domains; i++) {
        struct vqm_vdomain *d = &run->domains[i];
        for (k = 0; k < d->n_disks; k++)
            decide_disk(run, d, &d->disks[k]);
    }
}

/* Does d use an image to convert? */
static bool
uses_converted(const struct vqm_virt_run *run, const struct vqm_vdomain *d)
{
    size_t j;

    for (j = 0; j < run->n_images; j++)
        if (run->images[j]->convert
            && vqm_virt_domain_uses(d, run->images[j]))
            return true;
    return false;
}

/* Pass 4, the domains: running (copied live, stopped or blocking),
 * transient, saved; then images held by a running domain we do not stop
 * (a hot-plugged disk, or another domain's chain). */
static void
decide_domains(struct vqm_virt_run *run)
{
    const struct vqm_virt_opts *o = &run->opts;
    size_t i, j;

    for (i = 0; i < run->n_domains; i++) {
        struct vqm_vdomain *d = &run->domains[i];

        if (!uses_converted(run, d))
            continue;
        if (d->active && o->live) {
            d->live = true;              /* virt-live.c */
            continue;
        }
        if (!d->persistent) {
            snprintf(d->reason, sizeof d->reason,
                     "transient domain: only a live conversion can "
                     "migrate it (use --live)");
        } else if (d->active && !o->shutdown) {
            snprintf(d->reason, sizeof d->reason,
                     "running: not converted under QEMU (use --shutdown)");
        } else if (d->active) {
            d->needs_shutdown = true;
            continue;
        } else {
            continue;
        }
        d->outcome = VQM_OUTCOME_SKIPPED;
        for (j = 0; j < run->n_images; j++)
            if (run->images[j]->convert
                && vqm_virt_domain_uses(d, run->images[j]))
                block_image(run->images[j], "used by domain '%s', which "
                            "is %s", d->name,
                            !d->persistent ? "transient"
                            : d->managed_save ? "saved (managed save)"
                            : "running");
    }
    for (j = 0; j < run->n_images; j++) {
        struct vqm_vimage *img = run->images[j];
        bool stopped_by_us = false;

        if (!img->convert || !img->used_by_running)
            continue;
        for (i = 0; i < run->n_domains; i++)
            if ((run->domains[i].needs_shutdown || run->domains[i].live)
                && vqm_virt_domain_uses(&run->domains[i], img))
                stopped_by_us = true;
        if (!stopped_by_us)
            block_image(img, "in use by a running domain");
    }
}

static void
decide(struct vqm_virt_run *run)
{
    decide_scope(run);
    decide_images(run);
    decide_disks(run);
    decide_domains(run);
    vqm_virt_propagate_blocks(run);
}

/* Ask the engine, without writing, whether it can convert each image
 * (corrupt tables, backing format, QEMU locks).  Images of domains we
 * will stop are checked when they are converted. */
static void check_space(struct vqm_virt_run *run);

/* The images converted in place now, whose writers engine_check looks
 * for. */
static bool
in_place_now(const struct vqm_vimage *img)
{
    return img->convert && img->outcome == VQM_OUTCOME_PLANNED
        && !img->used_by_running && !img->copy;
}

static void
engine_check(struct vqm_virt_run *run)
{
    const struct vqm_virt_opts *o = &run->opts;
    size_t i;

    if (!run->remote)
        vqm_virt_scan_writers(run, in_place_now);

    for (i = 0; i < run->n_images; i++) {
        struct vqm_vimage *img = run->images[i];
        struct vqm_convert_opts co = { 0 };
        struct vqm_convert_result res;
        struct vqm_error err = { 0 };
        CLEANUP_FREE char *fallback = NULL;
        CLEANUP_FREE char *newb = NULL;
        int busy;

        if (run->remote)
            break;        /* the files are not here: checked there */
        if (!img->convert || img->outcome != VQM_OUTCOME_PLANNED)
            continue;
        if (!img->used_by_running) {
            busy = vqm_lock_probe(img->cur_path, &err);
            if (busy > 0) {
                block_image(img, "in use by another process (QEMU image "
                            "locks are held)");
                continue;
            }
            /* A writer that takes no locks (locking=off) is refused
             * too. */
            if (!img->copy && img->writer_pid > 0) {
                block_image(img, "open for writing by process %ld (%s): "
                            "not converted in place under it",
                            img->writer_pid, img->writer_comm);
                continue;
            }
        }
        if (img->used_by_running)
            continue;
        memset(&res, 0, sizeof res);
        co.mode = img->copy ? VQM_CONVERT_COPY : VQM_CONVERT_IN_PLACE;
        co.allow_copy_fallback = o->allow_copy;
        if (img->copy)
            co.output = img->new_path;
        else if (o->allow_copy && !img->block_device)
            co.output = fallback = qcow2_name(img->cur_path, true);
        co.dry_run = true;
        co.block_device = img->block_device;
        co.backing_format = img->xml_backing_format;
        co.policy.trusted_dirs = o->trust_dirs;
        co.policy.n_trusted_dirs = o->n_trust_dirs;
        if (img->backing && img->backing->migrate && img->backing_name
            && (img->backing->outcome == VQM_OUTCOME_PLANNED
                || img->backing->outcome == VQM_OUTCOME_DONE)) {
            newb = vqm_virt_new_backing_name(img);
            co.new_backing_name = newb;
            co.new_backing_format = "qcow2";
        }
        if (vqm_convert(img->cur_path, &co, &res, &err) < 0) {
            block_image(img, "%s", err.msg);
            continue;
        }
        if (res.mode == VQM_CONVERT_COPY && !img->copy && fallback) {
            img->copy = true;
            img->rename = false;
            free(img->new_path);
            img->new_path = vqm_steal(&fallback);
            snprintf(img->note, sizeof img->note, "copy mode: %s",
                     res.reason);
        }
        if (res.virtual_size)
            img->virtual_size = res.virtual_size;
        /* What the conversion will write: new metadata after the data
         * (in place), or the data and its metadata (copy: one table
         * entry per cluster at most, plus tables and headers). */
        img->space_needed = res.mode == VQM_CONVERT_COPY
            ? res.allocated_bytes + res.allocated_bytes / 64 + (2 << 20)
            : res.metadata_bytes;
    }
    check_space(run);
    vqm_virt_propagate_blocks(run);
}

/* Free space: the images planned for each file system together must fit
 * in what it has free (statvfs of the target directory), else they are
 * refused with the numbers, before anything is touched. */
static void
check_space(struct vqm_virt_run *run)
{
    size_t i, k;

    for (i = 0; i < run->n_images; i++) {
        struct vqm_vimage *img = run->images[i];
        CLEANUP_FREE char *dir = NULL;
        struct statvfs sv;
        uint64_t need = 0, avail;
        size_t n = 0;

        if (!img->convert || img->outcome != VQM_OUTCOME_PLANNED
            || img->block_device || !img->space_needed)
            continue;
        if (!(dir = strdup(img->copy ? img->new_path : img->cur_path))
            || statvfs(dirname(dir), &sv) < 0)
            continue;
        img->fsid = (uint64_t) sv.f_fsid;
        avail = (uint64_t) sv.f_bavail * sv.f_frsize;
        /* Sum over the planned images on the same file system. */
        for (k = 0; k <= i; k++) {
            const struct vqm_vimage *o = run->images[k];

            if (o->convert && o->outcome == VQM_OUTCOME_PLANNED
                && o->fsid == img->fsid && o->space_needed) {
                need += o->space_needed;
                n++;
            }
        }
        if (need > avail)
            block_image(img, "not enough free space in '%s': the "
                        "conversion%s there need%s %.1f MiB, %.1f MiB free",
                        dir, n > 1 ? "s planned" : "",
                        n > 1 ? "" : "s", (double) need / 1048576,
                        (double) avail / 1048576);
    }
}

/* The new definition of d: every disk whose chain holds a migrated image
 * (done, or with plan set also planned) gets its top source/format and
 * backingStore layers rewritten.  *out is NULL when nothing changes.
 * Sets the disks' new_source and outcome (done, or planned).  0 or -1.
 */
static bool
will_change(const struct vqm_vimage *c, bool plan)
{
    return c && c->migrate && (c->outcome == VQM_OUTCOME_DONE
                               || (plan && c->outcome
                                   == VQM_OUTCOME_PLANNED));
}

struct domain_lookup {
    struct vqm_virt_run *run;
    struct vqm_vdomain *d;
    bool plan;
    bool nomem;
    char *vol;                   /* the last new volume name */
};

static void
domain_lookup_clear(struct domain_lookup *dl)
{
    free(dl->vol);
}

#define CLEANUP_DOMAIN_LOOKUP __attribute__((cleanup(domain_lookup_clear)))

/* The migrated image a backing layer of disk dk names, by path. */
static struct vqm_vimage *
layer_image(struct vqm_virt_run *run, const struct vqm_vdisk *dk,
            const struct vqm_domxml_layer *l)
{
    struct vqm_vimage *c;

    if (!l->path)
        return NULL;
    for (c = dk->image; c; c = c->backing)
        if (strcmp(c->path, l->path) == 0 || strcmp(c->cur_path, l->path) == 0)
            return c;
    return vqm_virt_image_by_path(run, l->path);
}

static bool
domain_lookup(void *opaque, const struct vqm_domxml_disk *xd, unsigned depth,
              const struct vqm_domxml_layer *l, struct vqm_domxml_move *mv)
{
    struct domain_lookup *dl = opaque;
    struct vqm_vdisk *dk;
    struct vqm_vimage *img;

    if (xd->index >= dl->d->n_disks)
        return false;
    dk = &dl->d->disks[xd->index];
    if (dk->outcome == VQM_OUTCOME_SKIPPED || !dk->image)
        return false;
    img = depth == 0 ? dk->image : layer_image(dl->run, dk, l);
    if (!will_change(img, dl->plan))
        return false;
    mv->new_format = "qcow2";
    if (depth > 0) {
        if (l->form != VQM_SOURCE_VOLUME)
            mv->new_path = img->new_path;
        return true;
    }
    free(dk->new_source);
    dk->new_source = NULL;
    if (l->form == VQM_SOURCE_VOLUME && dk->src_pool) {
        CLEANUP_FREE char *cp = strdup(img->new_path);

        free(dl->vol);
        dl->vol = cp ? strdup(basename(cp)) : NULL;
        if (!dl->vol || asprintf(&dk->new_source, "%s/%s", dk->src_pool,
                                 dl->vol) < 0) {
            dk->new_source = NULL;
            dl->nomem = true;
            return false;
        }
        mv->new_volume = dl->vol;
    } else {
        mv->new_path = img->new_path;
        if (!(dk->new_source = strdup(img->new_path)))
            dl->nomem = true;
    }
    if (dk->source && dk->new_source
        && strcmp(dk->source, dk->new_source) == 0) {
        free(dk->new_source);
        dk->new_source = NULL;
    }
    return true;
}

int
vqm_virt_domain_xml(struct vqm_virt_run *run, struct vqm_vdomain *d,
                    bool plan, char **out, struct vqm_error *err)
{
    CLEANUP_DOMAIN_LOOKUP struct domain_lookup dl = { run, d, plan, false,
                                                      NULL };
    CLEANUP_DOMXML struct vqm_domxml *x = NULL;
    size_t changed = 0, k;

    *out = NULL;
    if (vqm_domxml_parse(d->xml, strlen(d->xml), NULL, &x, err) < 0)
        return vqm_error_prefix(err, "domain '%s'", d->name);
    if (vqm_domxml_rewrite(x, domain_lookup, &dl, &changed, err) < 0)
        return -1;
    if (dl.nomem)
        return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    /* A disk is rewritten when a layer of its chain moves. */
    for (k = 0; k < d->n_disks; k++) {
        struct vqm_vdisk *dk = &d->disks[k];
        const struct vqm_vimage *c;
        bool any = false;

        if (dk->outcome == VQM_OUTCOME_SKIPPED)
            continue;
        for (c = dk->image; c; c = c->backing)
            any |= will_change(c, plan);
        if (changed && any)
            dk->outcome = plan ? VQM_OUTCOME_PLANNED : VQM_OUTCOME_DONE;
        else if (dk->outcome == VQM_OUTCOME_PLANNED
                 || dk->outcome == VQM_OUTCOME_DONE)
            dk->outcome = VQM_OUTCOME_NONE;
    }
    if (changed && vqm_domxml_format(x, out, err) < 0)
        return -1;
    return 0;
}

/* The invariant of the plan, enforced here and nowhere else: an image is
 * converted, renamed or removed only when every definition that names
 * it is rewritten in the same run.  Definitions: every disk of every
 * domain (all device kinds and source forms, their <backingStore>
 * chains; the live definitions of running domains were marked
 * used_by_running), snapshot metadata and save images (rewritten by
 * path after the conversion, virt-snapshot.c).  What blocks it:
 * - a disk of a kind that cannot hold QED (lun, dir, ...) naming the
 *   file: it is never rewritten;
 * - a disk that is skipped (format mismatch, ...), or a domain that is
 *   (transient, running, checkpoints): its definition is not rewritten.
 * The image is skipped with a reason naming the domain and disk.
 */
static bool
same_file(const struct vqm_vimage *img, const char *path,
          const struct stat *st)
{
    return strcmp(img->path, path) == 0 || strcmp(img->cur_path, path) == 0
        || (st && img->exists && img->dev == st->st_dev
            && img->ino == st->st_ino);
}

static void
enforce_references(struct vqm_virt_run *run)
{
    size_t i, k, j;

    for (i = 0; i < run->n_domains; i++) {
        struct vqm_vdomain *d = &run->domains[i];

        for (k = 0; k < d->n_disks; k++) {
            struct vqm_vdisk *dk = &d->disks[k];
            struct vqm_vimage *c;
            const char *why = NULL;

            if (!dk->can_hold_qed) {
                struct stat st;
                bool have = dk->source && !dk->src_pool
                    && stat(dk->source, &st) == 0;

                if (!dk->source || dk->src_pool || run->remote)
                    continue;
                for (j = 0; j < run->n_images; j++) {
                    c = run->images[j];
                    if (c->migrate && c->outcome == VQM_OUTCOME_PLANNED
                        && same_file(c, dk->source, have ? &st : NULL))
                        block_image(c, "domain '%s' disk %s (%s %s) names "
                                    "it and cannot be rewritten", d->name,
                                    dk->target, dk->type, dk->device);
                }
                continue;
            }
            if (dk->outcome == VQM_OUTCOME_SKIPPED)
                why = dk->reason;
            else if (d->outcome == VQM_OUTCOME_SKIPPED)
                why = d->reason;
            if (!why)
                continue;
            for (c = dk->image; c; c = c->backing)
                if (c->migrate && c->outcome == VQM_OUTCOME_PLANNED)
                    block_image(c, "domain '%s' disk %s names it and is not "
                                "rewritten: %s", d->name, dk->target, why);
        }
    }
    vqm_virt_propagate_blocks(run);
}

/* Which domains need their definition rewritten? */
void
vqm_virt_mark_affected(struct vqm_virt_run *run)
{
    size_t i, k;

    for (i = 0; i < run->n_domains; i++) {
        struct vqm_vdomain *d = &run->domains[i];

        d->affected = false;
        for (k = 0; k < d->n_disks; k++) {
            struct vqm_vimage *c;
            for (c = d->disks[k].image; c; c = c->backing) {
                if (c->migrate)
                    d->involved = true;
                if (c->migrate && (c->outcome == VQM_OUTCOME_PLANNED
                                   || c->outcome == VQM_OUTCOME_DONE))
                    d->affected = true;
            }
        }
        /* ... and does the rewrite change anything?  (A rerun after an
         * interrupted migration finds some definitions done already.) */
        if (d->affected) {
            CLEANUP_FREE char *xml = NULL;
            struct vqm_error e2 = { 0 };

            if (vqm_virt_domain_xml(run, d, true, &xml, &e2) == 0 && !xml)
                d->affected = false;
        }
        if (d->affected && d->outcome == VQM_OUTCOME_NONE)
            d->outcome = VQM_OUTCOME_PLANNED;
    }
    /* Images an interrupted run converted and renamed, and copies an
     * earlier run made, that no definition still needs rewritten for:
     * nothing left to do for them (unless --remove-source can now remove
     * a source whose copy was verified). */
    for (i = 0; i < run->n_images; i++) {
        struct vqm_vimage *img = run->images[i];
        bool used = false, copied;

        if (!img->migrate || img->convert || img->live
            || img->outcome != VQM_OUTCOME_DONE)
            continue;
        copied = img->copy && !(run->opts.remove_source && img->verified);
        if (!copied && strcmp(img->path, img->new_path) != 0)
            continue;
        for (k = 0; k < run->n_domains; k++)
            if (run->domains[k].affected
                && vqm_virt_domain_uses(&run->domains[k], img))
                used = true;
        if (used)
            continue;
        img->migrate = false;
        img->outcome = VQM_OUTCOME_NONE;
    }
}

void
vqm_virt_decide(struct vqm_virt_run *run)
{
    qsort(run->images, run->n_images, sizeof *run->images, by_depth);
    decide(run);
    decide_names(run);
    vqm_snapshot_plan(run);
    vqm_live_plan(run);
    enforce_references(run);
    engine_check(run);
    vqm_virt_mark_affected(run);
}
