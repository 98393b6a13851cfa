/* virt-qed-migrate: a plan over a libvirt connection, its lifetime and
 * its summary.
 *
 * vqm_virt_plan connects, checks the names given, opens the journal,
 * discovers the image graph (virt-graph.c) and decides what is done
 * with it (virt-decide.c).  Nothing is changed here.
 */
#include <config.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/libvirt.h>

#include "cleanup.h"
#include "virt-internal.h"
#include "vqm-io.h"
#include "virt-remote.h"

const char *
vqm_outcome_name(enum vqm_outcome o)
{
    switch (o) {
    case VQM_OUTCOME_NONE: return "none";
    case VQM_OUTCOME_PLANNED: return "planned";
    case VQM_OUTCOME_DONE: return "done";
    case VQM_OUTCOME_SKIPPED: return "skipped";
    case VQM_OUTCOME_FAILED: return "failed";
    }
    return "none";
}

void
vqm_virt_warn(struct vqm_virt_run *run, const char *fmt, ...)
{
    va_list ap;
    char *s = NULL, **v;

    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    if (!s)
        return;
    v = realloc(run->warnings, (run->n_warnings + 1) * sizeof *v);
    if (!v) {
        free(s);
        return;
    }
    run->warnings = v;
    run->warnings[run->n_warnings++] = s;
}

void
vqm_virt_free(struct vqm_virt_run *run)
{
    size_t i, k;

    if (!run)
        return;
    for (i = 0; i < run->n_images; i++)
        vqm_virt_image_free(run->images[i]);
    free(run->images);
    for (i = 0; i < run->n_domains; i++) {
        struct vqm_vdomain *d = &run->domains[i];
        for (k = 0; k < d->n_disks; k++) {
            struct vqm_vdisk *dk = &d->disks[k];
            free(dk->target);
            free(dk->device);
            free(dk->type);
            free(dk->source);
            free(dk->src_pool);
            free(dk->src_volume);
            free(dk->xml_format);
            free(dk->new_source);
        }
        free(d->disks);
        free(d->name);
        free(d->xml);
    }
    free(run->domains);
    for (i = 0; i < run->n_warnings; i++)
        free(run->warnings[i]);
    free(run->warnings);
    free(run->uri);
    free(run->unfinished);
    if (run->journal)
        vqm_journal_close(run->journal, false);
    if (run->conn)
        virConnectClose(run->conn);
    free(run);
}

/* vqm_virt_free at the end of the scope. */
static void
run_cleanup(struct vqm_virt_run **runp)
{
    vqm_virt_free(*runp);
}

#define CLEANUP_VIRT_RUN __attribute__((cleanup(run_cleanup)))

/* Connect run->conn.  A dry run changes nothing: a read-only connection
 * is enough (no secure XML, no pool refresh), and all some users have;
 * *read_only tells whether it got one.  Remote: the headers are read by
 * volume downloads, which need a read-write connection
 * (virt-remote.c). */
static int
plan_connect(struct vqm_virt_run *run, const struct vqm_virt_opts *opts,
             bool *read_only, struct vqm_error *err)
{
    *read_only = false;
    if (opts->dry_run) {
        if (vqm_virt_uri_remote(opts->uri, NULL, 0))
            run->conn = vqm_virt_connect(opts->uri, false);
        if (!run->conn) {
            run->conn = vqm_virt_connect(opts->uri, true);
            *read_only = run->conn != NULL;
        }
        if (!run->conn)
            run->conn = vqm_virt_connect(opts->uri, false);
    } else {
        run->conn = vqm_virt_connect(opts->uri, false);
    }
    if (!run->conn)
        return vqm_virt_error(err, VQM_ERR_LIBVIRT, "cannot connect to "
                              "libvirt%s%s", opts->uri ? " at " : "",
                              opts->uri ? opts->uri : "");
    return 0;
}

/* A remote connection is for a dry run only: the conversion needs the
 * image files to be local. */
static int
plan_check_remote(struct vqm_virt_run *run, struct vqm_error *err)
{
    char host[256] = "";

    run->remote = vqm_virt_uri_remote(run->uri, host, sizeof host);
    if (run->remote && !run->dry_run)
        return vqm_error_set(err, VQM_ERR_UNSUPPORTED, "'%s' is a "
                             "connection to host '%s': the conversion "
                             "needs the image files to be local; run "
                             "virt-qed-migrate on '%s' (a --dry-run works "
                             "from here)", run->uri, host, host);
    if (run->remote)
        vqm_virt_warn(run, "remote connection to '%s': image headers were "
                      "read through libvirt (storage volumes only), the "
                      "conversion must run on '%s'", host, host);
    return 0;
}

int
vqm_virt_plan(const struct vqm_virt_opts *opts, struct vqm_virt_run **out,
              struct vqm_error *err)
{
    CLEANUP_VIRT_RUN struct vqm_virt_run *run = NULL;
    bool read_only;
    char *uri;

    *out = NULL;
    vqm_virt_init_errors();
    if (!(run = calloc(1, sizeof *run)))
        return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    run->opts = *opts;
    run->dry_run = opts->dry_run;
    run->start = vqm_now();
    if (!run->opts.state_dir)
        run->opts.state_dir = VQM_STATEDIR;

    if (plan_connect(run, opts, &read_only, err) < 0)
        return -1;
    if ((uri = virConnectGetURI(run->conn)))
        run->uri = uri;
    if (plan_check_remote(run, err) < 0
        || vqm_virt_check_names(run, err) < 0
        || vqm_journal_open(run->opts.state_dir, opts->dry_run,
                            (struct vqm_journal **) &run->journal, err) < 0)
        return -1;
    run->journal_recovered = vqm_journal_found(run->journal);

    if (vqm_virt_scan_pools(run, err) < 0
        || vqm_virt_scan_domains(run, read_only, err) < 0)
        return -1;
    vqm_virt_decide(run);
    *out = vqm_steal(&run);
    return 0;
}

/* ---- counting ---- */

bool
vqm_virt_domain_shown(const struct vqm_vdomain *d)
{
    return d->in_scope || d->involved || d->outcome != VQM_OUTCOME_NONE;
}

void
vqm_virt_scan_writers(struct vqm_virt_run *run,
                      bool (*want)(const struct vqm_vimage *img))
{
    CLEANUP_FREE struct vqm_writer_query *q = NULL;
    CLEANUP_FREE size_t *idx = NULL;
    size_t i, n = 0;

    for (i = 0; i < run->n_images; i++) {
        run->images[i]->writer_pid = 0;
        run->images[i]->writer_comm[0] = '\0';
    }
    if (!(q = calloc(run->n_images + 1, sizeof *q))
        || !(idx = calloc(run->n_images + 1, sizeof *idx)))
        return;
    for (i = 0; i < run->n_images; i++)
        if (want(run->images[i])) {
            q[n].dev = run->images[i]->dev;
            q[n].ino = run->images[i]->ino;
            idx[n++] = i;
        }
    if (vqm_find_writers(q, n) < 0)
        return;
    for (i = 0; i < n; i++) {
        struct vqm_vimage *img = run->images[idx[i]];

        img->writer_pid = q[i].pid;
        snprintf(img->writer_comm, sizeof img->writer_comm, "%s", q[i].comm);
    }
}

static bool
done_or_planned(enum vqm_outcome o)
{
    return o == VQM_OUTCOME_DONE || o == VQM_OUTCOME_PLANNED;
}

void
vqm_virt_count(const struct vqm_virt_run *run, struct vqm_virt_counts *c)
{
    size_t i, k;

    memset(c, 0, sizeof *c);
    for (i = 0; i < run->n_images; i++) {
        const struct vqm_vimage *img = run->images[i];

        if (img->migrate && done_or_planned(img->outcome))
            c->images_converted++;
        else if (img->in_scope && img->outcome == VQM_OUTCOME_SKIPPED)
            c->images_skipped++;
        else if (img->outcome == VQM_OUTCOME_FAILED)
            c->images_failed++;
    }
    for (i = 0; i < run->n_domains; i++) {
        const struct vqm_vdomain *d = &run->domains[i];

        if (done_or_planned(d->outcome))
            c->domains_rewritten++;
        else if (d->outcome == VQM_OUTCOME_SKIPPED)
            c->domains_skipped++;
        else if (d->outcome == VQM_OUTCOME_FAILED)
            c->domains_failed++;
        for (k = 0; k < d->n_disks; k++) {
            const struct vqm_vdisk *dk = &d->disks[k];
            const struct vqm_vimage *img;
            bool skipped = dk->outcome == VQM_OUTCOME_SKIPPED;
            bool failed = dk->outcome == VQM_OUTCOME_FAILED;

            /* A disk whose chain holds an image that was not converted
             * is skipped (or failed) with it. */
            for (img = dk->image; img; img = img->backing)
                if (img->migrate && img->outcome == VQM_OUTCOME_SKIPPED)
                    skipped = true;
                else if (img->migrate && img->outcome == VQM_OUTCOME_FAILED)
                    failed = true;
            if (failed)
                c->disks_failed++;
            else if (skipped)
                c->disks_skipped++;
            else if (done_or_planned(dk->outcome))
                c->disks_rewritten++;
            else if (vqm_virt_domain_shown(d))
                c->disks_left_alone++;
        }
    }
}
