/* virt-qed-migrate: --pool/--domain/--all and --rollback.
 *
 * Plans with src/virt, prints the plan (--dry-run) or carries it out and
 * prints a summary, writes the --report, and turns the outcome into the
 * exit status: 0 everything in scope is qcow2 (dry run: the plan can
 * run), 1 something failed, 3 something was skipped.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "options.h"
#include "vqm-quote.h"
#include "virt/virt.h"
#include "virt/virt-remote.h"

static void
human_size(uint64_t v, char *buf, size_t len)
{
    static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB",
                                         "PiB" };
    double d = (double) v;
    unsigned u = 0;

    while (d >= 1024 && u < 5) {
        d /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%llu B", (unsigned long long) v);
    else
        snprintf(buf, len, "%.1f %s", d, units[u]);
}

static const char *
img_mode(const struct vqm_vimage *img)
{
    if (img->live)
        return "live copy";
    if (!img->convert)
        return "finish interrupted migration";
    if (img->copy)
        return "copy";
    return img->block_device ? "in place (block device)" : "in place";
}

static void
print_image_line(FILE *fp, const char *indent, const struct vqm_vimage *img,
                 bool dry_run)
{
    char vs[32], fs[32];

    human_size(img->virtual_size, vs, sizeof vs);
    human_size(img->new_file_size ? img->new_file_size : img->file_size, fs,
               sizeof fs);
    if (!img->migrate) {
        fprintf(fp, "%s%s: %s, left alone\n", indent, vqm_q(img->path),
                img->format ? img->format : "unknown");
        return;
    }
    switch (img->outcome) {
    case VQM_OUTCOME_PLANNED:
        fprintf(fp, "%s%s: qed -> qcow2 %s%s%s (%s virtual, %s file)\n",
                indent, vqm_q(img->path), img_mode(img),
                strcmp(img->new_path, img->path) ? ", new name " : "",
                strcmp(img->new_path, img->path) ? vqm_q(img->new_path)
                : "", vs,
                fs);
        break;
    case VQM_OUTCOME_DONE:
        fprintf(fp, "%s%s: %s %s%s%s (%s virtual, %s file, %.1f s%s)\n",
                indent, vqm_q(img->path), dry_run ? "will be" : "now",
                "qcow2", strcmp(img->new_path, img->path) ? " at " : "",
                strcmp(img->new_path, img->path) ? vqm_q(img->new_path)
                : "", vs, fs, img->seconds,
                img->verified ? ", verified" : "");
        break;
    case VQM_OUTCOME_SKIPPED:
        fprintf(fp, "%s%s: SKIPPED: %s\n", indent, vqm_q(img->path),
                vqm_q(img->reason));
        break;
    case VQM_OUTCOME_FAILED:
        fprintf(fp, "%s%s: FAILED: %s\n", indent, vqm_q(img->path),
                vqm_q(img->reason));
        break;
    case VQM_OUTCOME_NONE:
        fprintf(fp, "%s%s: %s\n", indent, vqm_q(img->path),
                img->format ? img->format : "unknown");
        break;
    }
    if (img->note[0])
        fprintf(fp, "%s  (%s)\n", indent, vqm_q(img->note));
}

/* Is something about d skipped or failed (a disk, an image)? */
static bool
domain_blocked(const struct vqm_vdomain *d)
{
    size_t k;
    const struct vqm_vimage *c;

    for (k = 0; k < d->n_disks; k++) {
        if (d->disks[k].outcome == VQM_OUTCOME_SKIPPED
            || d->disks[k].outcome == VQM_OUTCOME_FAILED)
            return true;
        for (c = d->disks[k].image; c; c = c->backing)
            if (c->migrate && (c->outcome == VQM_OUTCOME_SKIPPED
                               || c->outcome == VQM_OUTCOME_FAILED))
                return true;
    }
    return false;
}

static void
print_run(FILE *fp, const struct vqm_virt_run *run)
{
    size_t i, k;
    bool dry = run->dry_run;

    if (run->journal_recovered)
        fprintf(fp, "An interrupted migration was found in the journal: "
                "%s.\n", dry ? "running without --dry-run finishes it"
                : "finishing it");
    for (i = 0; i < run->n_warnings; i++)
        fprintf(fp, "warning: %s\n", vqm_q(run->warnings[i]));
    for (i = 0; i < run->n_images; i++)
        if (run->images[i]->recovered)
            fprintf(fp, "Recovery: %s: %s by an interrupted run, %s.\n",
                    vqm_q(run->images[i]->path), run->images[i]->copy
                    ? "copied" : "converted", dry ? "to be finished"
                    : run->images[i]->outcome == VQM_OUTCOME_DONE
                    ? "finished"
                    : run->images[i]->outcome == VQM_OUTCOME_NONE
                    ? "already complete" : "NOT finished");
    if (run->unfinished && run->unfinished[0])
        fprintf(fp, "Recovery: the journal keeps unfinished steps (run the "
                "same command again to finish them):\n%s", run->unfinished);
    else if (run->unfinished)
        fprintf(fp, "Recovery: the journal keeps the unfinished migrations "
                "of the domains that FAILED above.\n");

    for (i = 0; i < run->n_domains; i++) {
        const struct vqm_vdomain *d = &run->domains[i];

        if (!vqm_virt_domain_shown(d))
            continue;
        fprintf(fp, "domain %s (%s%s%s):", vqm_q(d->name),
                d->active || d->shut_down ? "running" : "shut off",
                d->persistent ? "" : ", transient",
                d->managed_save ? ", managed save" : "");
        switch (d->outcome) {
        case VQM_OUTCOME_NONE:
            fprintf(fp, "%s\n", domain_blocked(d)
                    ? " not changed (see its disks)" : " nothing to do");
            break;
        case VQM_OUTCOME_PLANNED:
            fprintf(fp, " definition will be rewritten%s\n",
                    d->needs_shutdown ? " (shut down first, started "
                    "again after)" : d->live ? " (disks copied live while "
                    "it runs)" : "");
            break;
        case VQM_OUTCOME_DONE:
            fprintf(fp, " %s%s%s%s\n", d->persistent
                    ? "definition rewritten" : "converted",
                    d->forced_off ? ", powered off (--force-shutdown)" : "",
                    d->restarted ? ", started again"
                    : d->live ? ", disks copied live" : "",
                    d->recovered ? " (finishing an interrupted run)" : "");
            break;
        case VQM_OUTCOME_SKIPPED:
            fprintf(fp, " SKIPPED: %s\n", vqm_q(d->reason));
            break;
        case VQM_OUTCOME_FAILED:
            fprintf(fp, " FAILED: %s\n", vqm_q(d->reason));
            break;
        }
        for (k = 0; k < d->n_disks; k++) {
            const struct vqm_vdisk *dk = &d->disks[k];
            const struct vqm_vimage *c;

            fprintf(fp, "  disk %s (%s, type %s, format %s): %s\n",
                    vqm_q(dk->target), vqm_q(dk->device), vqm_q(dk->type),
                    dk->xml_format ? vqm_q(dk->xml_format) : "none",
                    dk->source ? vqm_q(dk->source) : "no source");
            if (dk->new_source)
                fprintf(fp, "    new source: %s\n", vqm_q(dk->new_source));
            if (dk->reason[0])
                fprintf(fp, "    %s%s\n", dk->outcome == VQM_OUTCOME_SKIPPED
                        ? "SKIPPED: " : "", vqm_q(dk->reason));
            if (!dk->has_qed)
                continue;
            for (c = dk->image; c; c = c->backing)
                print_image_line(fp, "    ", c, dry);
        }
    }

    /* Other images whose backing reference could not be rewritten. */
    for (i = 0; i < run->n_images; i++)
        if (!run->images[i]->migrate
            && run->images[i]->outcome == VQM_OUTCOME_FAILED)
            fprintf(fp, "image %s: FAILED: %s\n",
                    vqm_q(run->images[i]->path),
                    vqm_q(run->images[i]->reason));

    /* Volumes of the selected pools that no domain uses. */
    for (i = 0; i < run->n_images; i++) {
        const struct vqm_vimage *img = run->images[i];
        bool used = false;

        if (!img->in_scope || !img->migrate)
            continue;
        for (k = 0; k < run->n_domains && !used; k++) {
            size_t m;
            const struct vqm_vimage *c;
            for (m = 0; m < run->domains[k].n_disks; m++)
                for (c = run->domains[k].disks[m].image; c; c = c->backing)
                    used |= c == img;
        }
        if (!used) {
            if (img->pool && img->volume)
                fprintf(fp, "volume %s/%s (no domain uses it):\n",
                        vqm_q(img->pool), vqm_q(img->volume));
            else
                fprintf(fp, "image %s (no domain uses it):\n",
                        vqm_q(img->path));
            print_image_line(fp, "  ", img, dry);
        }
    }
}

/* Did the run find nothing to convert, rewrite or finish? */
static bool
nothing_done(const struct vqm_virt_run *run)
{
    size_t i;

    for (i = 0; i < run->n_images; i++)
        if (run->images[i]->migrate
            && run->images[i]->outcome != VQM_OUTCOME_NONE)
            return false;
    for (i = 0; i < run->n_domains; i++)
        if (run->domains[i].outcome != VQM_OUTCOME_NONE
            || run->domains[i].restarted)
            return false;
    return true;
}

static void
print_summary(FILE *fp, const struct vqm_virt_run *run, int status)
{
    struct vqm_virt_counts c;

    vqm_virt_count(run, &c);
    if (run->dry_run)
        fprintf(fp, "Dry run: %zu image(s) would be converted, %zu skipped; "
                "%zu disk(s) would be rewritten, %zu skipped, %zu left "
                "alone; %zu domain definition(s) would be rewritten, %zu "
                "skipped; nothing was changed.\n", c.images_converted,
                c.images_skipped, c.disks_rewritten, c.disks_skipped,
                c.disks_left_alone, c.domains_rewritten, c.domains_skipped);
    else
        fprintf(fp, "Summary: %zu image(s) converted, %zu skipped, %zu "
                "failed; %zu disk(s) rewritten, %zu skipped, %zu failed, "
                "%zu left alone; %zu domain definition(s) rewritten, %zu "
                "skipped, %zu failed%s.\n", c.images_converted,
                c.images_skipped, c.images_failed, c.disks_rewritten,
                c.disks_skipped, c.disks_failed, c.disks_left_alone,
                c.domains_rewritten, c.domains_skipped, c.domains_failed,
                status == 0 ? "; everything in scope is qcow2" : "");
}

/* As each image and domain is finished: one line, at once. */
static void
item_done(void *opaque, const struct vqm_vimage *img,
          const struct vqm_vdomain *d)
{
    const struct vqm_opts *o = opaque;

    if (o->quiet)
        return;
    if (img) {
        fputs("done: ", stdout);
        print_image_line(stdout, "", img, false);
    } else if (d->outcome == VQM_OUTCOME_DONE) {
        printf("done: domain %s: definition %s%s%s\n", vqm_q(d->name),
               d->persistent ? "rewritten" : "unchanged (transient)",
               d->forced_off ? ", powered off (--force-shutdown)" : "",
               d->restarted ? ", started again" : "");
    } else if (d->outcome == VQM_OUTCOME_FAILED
               || d->outcome == VQM_OUTCOME_SKIPPED) {
        printf("done: domain %s: %s: %s\n", vqm_q(d->name),
               d->outcome == VQM_OUTCOME_FAILED ? "FAILED" : "SKIPPED",
               vqm_q(d->reason));
    } else if (d->restarted) {
        printf("done: domain %s: started again\n", vqm_q(d->name));
    }
}

/* The command line, as the journal, the markers and the messages name
 * it (a dry run's --dry-run left out). */
static char *
command_line(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    size_t i;

    if (!fp)
        return NULL;
    fputs("virt-qed-migrate", fp);
    for (i = 1; vqm_argv && vqm_argv[i]; i++) {
        const char *a = vqm_argv[i];

        if (strcmp(a, "-n") == 0 || strcmp(a, "--dry-run") == 0)
            continue;
        /* Words of these characters need no quotes. */
        if (*a && a[strspn(a, "abcdefghijklmnopqrstuvwxyz"
                           "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=/.,:@+")]
            == '\0')
            fprintf(fp, " %s", a);
        else
            fprintf(fp, " %s", vqm_sq(a));
    }
    fclose(fp);
    return buf;
}

static void
progress(void *opaque, const struct vqm_vimage *img, uint64_t done,
         uint64_t total)
{
    const struct vqm_opts *o = opaque;
    unsigned pct = total ? (unsigned) (done * 100 / total) : 100;

    if (o->progress_fd >= 0)
        dprintf(o->progress_fd, "%u/100\n", pct);
    else if (isatty(STDERR_FILENO))
        fprintf(stderr, "\r%s: %3u%%%s", vqm_q(img->path), pct,
                done >= total ? "\n" : "");
}

int
vqm_cmd_virt(const struct vqm_opts *o)
{
    struct vqm_virt_opts vo = { 0 };
    struct vqm_virt_run *run = NULL;
    struct vqm_error err = { 0 };
    int status;
    char *command = NULL;

    if (!o->dry_run) {
        /* The conversion works on local files: name the command to run
         * on the host instead. */
        const char *u = o->uri ? o->uri : getenv("LIBVIRT_DEFAULT_URI");
        char host[256];

        if (vqm_virt_uri_remote(u, host, sizeof host)) {
            char *local = vqm_virt_uri_on_host(u);
            char cmd[2048];
            size_t i, n;

            n = (size_t) snprintf(cmd, sizeof cmd, "virt-qed-migrate%s%s",
                                  local ? " -c " : "",
                                  local ? vqm_sq(local) : "");
            for (i = 0; i < o->pools.n && n < sizeof cmd; i++)
                n += (size_t) snprintf(cmd + n, sizeof cmd - n, " --pool %s",
                                       vqm_sq(o->pools.v[i]));
            for (i = 0; i < o->domains.n && n < sizeof cmd; i++)
                n += (size_t) snprintf(cmd + n, sizeof cmd - n,
                                       " --domain %s",
                                       vqm_sq(o->domains.v[i]));
            if (o->all && n < sizeof cmd)
                snprintf(cmd + n, sizeof cmd - n, " --all");
            vqm_report_error("'%s' is a connection to host '%s': the "
                             "conversion needs the image files to be local; "
                             "run on '%s': %s (a --dry-run works from here)",
                             u, host, host, cmd);
            free(local);
            return VQM_EXIT_FAILED;
        }
    }
    vo.uri = o->uri;
    vo.pools = (const char *const *) o->pools.v;
    vo.n_pools = o->pools.n;
    vo.domains = (const char *const *) o->domains.v;
    vo.n_domains = o->domains.n;
    vo.all = o->all;
    vo.dry_run = o->dry_run;
    vo.state_dir = o->state_dir;
    vo.shutdown = o->shutdown;
    vo.shutdown_timeout = o->shutdown_timeout;
    vo.force_shutdown = o->force_shutdown;
    vo.keep_name = o->keep_name;
    vo.copy = o->copy;
    vo.allow_copy = o->allow_copy;
    vo.remove_source = o->remove_source;
    vo.verify = o->verify;
    vo.verify_full = o->verify_full;
    vo.live = o->live;
    vo.bandwidth = o->bandwidth;
    vo.trust_dirs = (const char *const *) o->trust_dirs.v;
    vo.n_trust_dirs = o->trust_dirs.n;
    if (o->progress) {
        vo.progress = progress;
        vo.progress_opaque = (void *) o;
    }
    vo.command = command = command_line();
    vo.item_done = item_done;
    vo.item_opaque = (void *) o;

    if (vqm_virt_plan(&vo, &run, &err) < 0) {
        vqm_report_error("%s", err.msg);
        free(command);
        return VQM_EXIT_FAILED;
    }
    if (!o->dry_run && vqm_virt_execute(run, &err) < 0) {
        vqm_report_error("%s", err.msg);
        status = VQM_EXIT_FAILED;
    } else {
        status = vqm_virt_status(run);
        /* Unfinished steps left in the journal are a failure too. */
        if (status == VQM_EXIT_OK && run->unfinished && !o->dry_run)
            status = VQM_EXIT_FAILED;
    }
    if (!o->quiet) {
        print_run(stdout, run);
        if (nothing_done(run))
            printf("Nothing to do: %s.\n", status == VQM_EXIT_OK
                   ? "everything in scope is qcow2 already"
                   : "see above");
        print_summary(stdout, run, status);
    }
    if (o->report && vqm_virt_write_report(run, o->report, status,
                                           &err) < 0) {
        vqm_report_error("%s", err.msg);
        status = VQM_EXIT_FAILED;
    }
    vqm_virt_free(run);
    free(command);
    return status;
}

int
vqm_cmd_rollback(const struct vqm_opts *o)
{
    struct vqm_error err = { 0 };
    char msg[1024];

    if (vqm_virt_rollback(o->uri, o->state_dir, o->rollback,
                          o->rollback_to, msg, sizeof msg, &err) < 0) {
        vqm_report_error("%s", err.msg);
        return VQM_EXIT_FAILED;
    }
    if (!o->quiet)
        printf("%s\n", vqm_q(msg));
    return VQM_EXIT_OK;
}
