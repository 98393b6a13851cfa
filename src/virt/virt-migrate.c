/* virt-qed-migrate: carrying out a plan, and --rollback.
 *
 * Order of a run: stop the running domains we were asked to stop; mark
 * every affected domain active (see virt.h, the hook contract) and save
 * its definition; convert the images, bases before overlays, each one
 * followed by its rename and the rewrite of the backing references
 * naming it; refresh the pools; redefine the domains; start again what
 * we stopped.  Every step is journaled before and after (virt-journal.c).
 *
 * Recovery after an interruption at any point: the engine's conversion
 * is atomic (a file is QED or qcow2, never half); a rename is atomic, or
 * a link whose old name is removed here; the journal tells which qcow2
 * files we made and where renamed files went, so the next plan treats
 * them as converted and finishes the remaining steps (renames, backing
 * references, definitions, restarts).  Saved definitions are never
 * overwritten while a migration of that domain is unfinished.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "cleanup.h"
#include "convert/convert.h"
#include "domxml/domxml.h"
#include "virt-internal.h"
#include "virt-live.h"
#include "virt-snapshot.h"
#include "vqm-debug.h"
#include "vqm-io.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif


/* rename(2) that never replaces: renameat2(RENAME_NOREPLACE), or on
 * filesystems without it link(2) + unlink(2) (a crash in between leaves
 * two names for one inode; recovery removes the old one). */
static int
rename_noreplace(const char *from, const char *to, struct vqm_error *err)
{
#ifdef SYS_renameat2
    if (syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to,
                RENAME_NOREPLACE) == 0)
        return vqm_sync_dir(to, err);
    if (errno != EINVAL && errno != ENOSYS)
        return vqm_error_set_errno(err, errno, "cannot rename '%s' to '%s'",
                                   from, to);
#endif
    if (link(from, to) < 0)
        return vqm_error_set_errno(err, errno, "cannot rename '%s' to '%s'",
                                   from, to);
    if (unlink(from) < 0)
        return vqm_error_set_errno(err, errno, "cannot remove '%s'", from);
    return vqm_sync_dir(to, err);
}

static void
item_done(struct vqm_virt_run *run, const struct vqm_vimage *img,
          const struct vqm_vdomain *d)
{
    if (run->opts.item_done)
        run->opts.item_done(run->opts.item_opaque, img, d);
}

static bool
changed(const struct vqm_vimage *img)
{
    return img && img->migrate && img->outcome == VQM_OUTCOME_DONE;
}

static void
fail_image(struct vqm_vimage *img, const struct vqm_error *e)
{
    img->outcome = VQM_OUTCOME_FAILED;
    snprintf(img->reason, sizeof img->reason, "%s", e->msg);
}

static void
progress_cb(void *opaque, uint64_t done, uint64_t total)
{
    void **pair = opaque;
    struct vqm_virt_run *run = pair[0];
    const struct vqm_vimage *img = pair[1];

    if (run->opts.progress)
        run->opts.progress(run->opts.progress_opaque, img, done, total);
}

static int
convert_image(struct vqm_virt_run *run, struct vqm_vimage *img)
{
    const struct vqm_virt_opts *o = &run->opts;
    struct vqm_convert_opts co = { 0 };
    struct vqm_convert_result res;
    struct vqm_error err = { 0 };
    CLEANUP_FREE char *newb = NULL;
    CLEANUP_FREE char *modes = NULL;
    struct vqm_vimage *b = img->backing;
    void *pair[2] = { run, img };
    double t0 = vqm_now();
    int seq;

    if (b && b->migrate && b->outcome != VQM_OUTCOME_DONE) {
        img->outcome = VQM_OUTCOME_SKIPPED;
        snprintf(img->reason, sizeof img->reason,
                 "its backing file '%s' is not converted", b->path);
        return 0;
    }
    co.mode = img->copy ? VQM_CONVERT_COPY : VQM_CONVERT_IN_PLACE;
    co.allow_copy_fallback = false;
    co.output = img->copy ? img->new_path : NULL;
    co.verify = o->verify || (img->copy && o->remove_source);
    co.verify_full = o->verify_full;
    co.block_device = img->block_device;
    co.backing_format = img->xml_backing_format;
    co.policy.trusted_dirs = o->trust_dirs;
    co.policy.n_trusted_dirs = o->n_trust_dirs;
    if (changed(b) && img->backing_name) {
        newb = vqm_virt_new_backing_name(img);
        co.new_backing_name = newb;
        co.new_backing_format = "qcow2";
    }
    co.progress = progress_cb;
    co.progress_opaque = pair;
    if (asprintf(&modes, "%s:%llu:%llu", img->copy ? "copy" : "in-place",
                 (unsigned long long) img->dev,
                 (unsigned long long) img->ino) < 0)
        return -1;

    /* Besides QEMU's locks (the engine takes them): no process may have
     * the file open for writing when it changes format under it. */
    if (!img->copy && img->writer_pid > 0) {
        img->outcome = VQM_OUTCOME_SKIPPED;
        snprintf(img->reason, sizeof img->reason, "open for writing by "
                 "process %ld (%s): not converted in place under it",
                 img->writer_pid, img->writer_comm);
        return 0;
    }
    seq = vqm_journal_begin(run->journal, "convert", img->cur_path,
                            img->new_path, modes, &err);
    if (seq < 0)
        return -1;
    memset(&res, 0, sizeof res);
    vqm_debug("converting '%s' (%s)", img->cur_path,
              img->copy ? "copy" : "in place");
    if (vqm_convert(img->cur_path, &co, &res, &err) < 0) {
        fail_image(img, &err);
        img->seconds = vqm_now() - t0;
        if (vqm_journal_fail(run->journal, seq, err.msg, &err) < 0)
            return -1;
        return 0;
    }
    if (vqm_journal_done(run->journal, seq, &err) < 0)
        return -1;
    if (res.virtual_size)
        img->virtual_size = res.virtual_size;
    img->verified = res.verified;
    if (res.warning[0])
        snprintf(img->note, sizeof img->note, "%s", res.warning);
    if (img->copy && res.output[0] && strcmp(res.output, img->new_path)) {
        free(img->new_path);
        img->new_path = strdup(res.output);
    }
    /* Remembered beyond this journal: a rerun recognises it, and a later
     * --remove-source removes the source when it was verified. */
    if (img->copy && vqm_journal_note_copy(run->journal, img->cur_path,
                                           img->new_path, img->verified,
                                           &err) < 0)
        snprintf(img->note, sizeof img->note, "%s", err.msg);
    img->seconds = vqm_now() - t0;
    return 1;
}

static int
rename_image(struct vqm_virt_run *run, struct vqm_vimage *img)
{
    struct vqm_error err = { 0 };
    int seq;

    seq = vqm_journal_begin(run->journal, "rename", img->cur_path,
                            img->new_path, NULL, &err);
    if (seq < 0)
        return -1;
    if (rename_noreplace(img->cur_path, img->new_path, &err) < 0) {
        /* The conversion stands; the file keeps its name. */
        snprintf(img->note, sizeof img->note, "name kept: %s", err.msg);
        free(img->new_path);
        img->new_path = strdup(img->cur_path);
        return vqm_journal_fail(run->journal, seq, err.msg, &err);
    }
    free(img->cur_path);
    img->cur_path = strdup(img->new_path);
    return vqm_journal_done(run->journal, seq, &err);
}

/* Rewrite the backing reference of qcow2 images (not migrated here)
 * that name img, which moved or changed format. */
static int
rebase_dependents(struct vqm_virt_run *run, struct vqm_vimage *img)
{
    size_t i;

    for (i = 0; i < run->n_images; i++) {
        struct vqm_vimage *up = run->images[i];
        struct vqm_error err = { 0 };
        CLEANUP_FREE char *name = NULL;
        int seq;

        /* In copy mode the source stays: what names it keeps working. */
        if (up->backing != img || up->migrate || !up->format
            || strcmp(up->format, "qcow2") != 0 || !up->backing_name
            || img->copy)
            continue;
        name = vqm_virt_new_backing_name(up);
        if (!name)
            return -1;
        seq = vqm_journal_begin(run->journal, "rebase", up->cur_path, name,
                                "qcow2", &err);
        if (seq < 0)
            return -1;
        if (vqm_qcow2_set_backing(up->cur_path, name, "qcow2", &err) < 0) {
            snprintf(up->reason, sizeof up->reason,
                     "cannot rewrite its backing reference: %s", err.msg);
            up->outcome = VQM_OUTCOME_FAILED;
            if (vqm_journal_fail(run->journal, seq, err.msg, &err) < 0)
                return -1;
            continue;
        }
        free(up->backing_name);
        up->backing_name = vqm_steal(&name);
        if (vqm_journal_done(run->journal, seq, &err) < 0)
            return -1;
    }
    return 0;
}

static int
remove_source(struct vqm_virt_run *run, struct vqm_vimage *img)
{
    struct vqm_error err = { 0 };
    size_t i;
    int seq;

    if (!img->verified) {
        snprintf(img->note, sizeof img->note, "source kept: the copy was "
                 "not verified");
        return 0;
    }
    for (i = 0; i < run->n_images; i++)
        if (run->images[i]->backing == img && !changed(run->images[i])) {
            snprintf(img->note, sizeof img->note, "source kept: '%s' "
                     "still uses it", run->images[i]->path);
            return 0;
        }
    for (i = 0; i < run->n_domains; i++) {
        const struct vqm_vdomain *d = &run->domains[i];

        if (vqm_virt_domain_uses(d, img)
            && !(d->affected && d->outcome == VQM_OUTCOME_DONE)) {
            snprintf(img->note, sizeof img->note, "source kept: domain "
                     "'%s' still uses it", d->name);
            return 0;
        }
    }
    seq = vqm_journal_begin(run->journal, "remove", img->cur_path, NULL,
                            NULL, &err);
    if (seq < 0)
        return -1;
    if (unlink(img->cur_path) < 0 && errno != ENOENT) {
        vqm_error_set_errno(&err, errno, "cannot remove '%s'",
                            img->cur_path);
        snprintf(img->note, sizeof img->note, "%s", err.msg);
        return vqm_journal_fail(run->journal, seq, err.msg, &err);
    }
    snprintf(img->note, sizeof img->note, "source removed");
    if (vqm_journal_done(run->journal, seq, &err) < 0)
        return -1;
    if (vqm_journal_note_source_gone(run->journal, img->cur_path, true,
                                     &err) < 0)
        snprintf(img->note, sizeof img->note, "source removed; %s",
                 err.msg);
    return 0;
}

static int
wait_shutoff(virDomainPtr dom, unsigned timeout)
{
    double end = vqm_now() + timeout;
    int state, reason;

    do {
        if (virDomainGetState(dom, &state, &reason, 0) == 0
            && state == VIR_DOMAIN_SHUTOFF)
            return 0;
        usleep(100000);
    } while (vqm_now() < end);
    return -1;
}

/* d could not be stopped (err says why): it is skipped, and so is every
 * image of it still planned.  0. */
static int
not_stopped(struct vqm_virt_run *run, struct vqm_vdomain *d,
            const struct vqm_error *err)
{
    size_t i;

    d->outcome = VQM_OUTCOME_SKIPPED;
    snprintf(d->reason, sizeof d->reason, "%s", err->msg);
    for (i = 0; i < run->n_images; i++) {
        struct vqm_vimage *img = run->images[i];

        if (vqm_virt_domain_uses(d, img) && img->convert
            && img->outcome == VQM_OUTCOME_PLANNED) {
            img->outcome = VQM_OUTCOME_SKIPPED;
            snprintf(img->reason, sizeof img->reason,
                     "used by domain '%s', which could not be stopped",
                     d->name);
        }
    }
    return 0;
}

/* Shut dom down, or with --force-shutdown power it off when it does not
 * within the timeout, and wait until it is off.  0, or -1 with err
 * set. */
static int
shut_down(const struct vqm_virt_opts *o, virDomainPtr dom,
          struct vqm_vdomain *d, struct vqm_error *err)
{
    if (virDomainShutdown(dom) < 0 && virDomainIsActive(dom) == 1)
        return vqm_virt_error(err, VQM_ERR_LIBVIRT, "cannot shut down "
                              "domain '%s'", d->name);
    if (wait_shutoff(dom, o->shutdown_timeout) == 0)
        return 0;
    if (!o->force_shutdown)
        return vqm_error_set(err, VQM_ERR_BUSY, "domain '%s' did not shut "
                             "down within %u seconds (a guest without ACPI "
                             "support never does; --force-shutdown powers "
                             "it off)", d->name, o->shutdown_timeout);
    /* SIGTERM to QEMU, never SIGKILL. */
    if (virDomainDestroyFlags(dom, VIR_DOMAIN_DESTROY_GRACEFUL) == 0
        || wait_shutoff(dom, 10) == 0) {
        d->forced_off = true;
        return 0;
    }
    return vqm_virt_error(err, VQM_ERR_LIBVIRT, "cannot stop domain '%s'",
                          d->name);
}

static int
stop_domain(struct vqm_virt_run *run, struct vqm_vdomain *d)
{
    struct vqm_error err = { 0 };
    CLEANUP_VIR_DOMAIN virDomainPtr dom =
        virDomainLookupByUUIDString(run->conn, d->uuid);
    int seq;

    if (!dom) {
        vqm_virt_error(&err, VQM_ERR_LIBVIRT, "domain '%s'", d->name);
        return not_stopped(run, d, &err);
    }
    seq = vqm_journal_begin(run->journal, "shutdown", d->uuid, d->name,
                            NULL, &err);
    if (seq < 0)
        return -1;
    if (shut_down(&run->opts, dom, d, &err) < 0) {
        vqm_journal_fail(run->journal, seq, err.msg, NULL);
        return not_stopped(run, d, &err);
    }
    d->shut_down = true;
    d->active = false;
    return vqm_journal_done(run->journal, seq, &err);
}

static int
start_domain(struct vqm_virt_run *run, struct vqm_vdomain *d)
{
    struct vqm_error err = { 0 };
    CLEANUP_VIR_DOMAIN virDomainPtr dom =
        virDomainLookupByUUIDString(run->conn, d->uuid);
    int seq;

    seq = vqm_journal_begin(run->journal, "start", d->uuid, d->name, NULL,
                            &err);
    if (seq < 0)
        return -1;
    if (!dom || (virDomainIsActive(dom) != 1 && virDomainCreate(dom) < 0)) {
        vqm_virt_error(&err, VQM_ERR_LIBVIRT, "cannot start domain '%s' "
                       "again", d->name);
        d->outcome = VQM_OUTCOME_FAILED;
        snprintf(d->reason, sizeof d->reason, "%s", err.msg);
        return vqm_journal_fail(run->journal, seq, err.msg, NULL);
    }
    d->restarted = true;
    return vqm_journal_done(run->journal, seq, &err);
}

/* The redefinition of d failed (err says why): d and the disks rewritten
 * for it fail.  0. */
static int
define_failed(struct vqm_vdomain *d, const struct vqm_error *err)
{
    size_t k;

    d->outcome = VQM_OUTCOME_FAILED;
    d->define_failed = true;
    snprintf(d->reason, sizeof d->reason, "%s", err->msg);
    for (k = 0; k < d->n_disks; k++)
        if (d->disks[k].outcome == VQM_OUTCOME_DONE)
            d->disks[k].outcome = VQM_OUTCOME_FAILED;
    return 0;
}

/* Carry out the rewrite of d's definition built by vqm_virt_domain_xml. */
static int
define_domain(struct vqm_virt_run *run, struct vqm_vdomain *d)
{
    struct vqm_error err = { 0 };
    CLEANUP_FREE char *xml = NULL;
    CLEANUP_VIR_DOMAIN virDomainPtr dom = NULL;
    int seq;

    if (vqm_virt_domain_xml(run, d, false, &xml, &err) < 0)
        return define_failed(d, &err);
    if (!xml) {
        if (d->outcome == VQM_OUTCOME_PLANNED)
            d->outcome = VQM_OUTCOME_NONE;
        return 0;
    }
    if (!d->persistent) {
        /* Transient (copied live): no definition to rewrite. */
        d->outcome = VQM_OUTCOME_DONE;
        return 0;
    }
    seq = vqm_journal_begin(run->journal, "define", d->uuid, d->name, NULL,
                            &err);
    if (seq < 0)
        return -1;
    dom = virDomainDefineXMLFlags(run->conn, xml,
                                  VIR_DOMAIN_DEFINE_VALIDATE);
    if (!dom) {
        vqm_virt_error(&err, VQM_ERR_LIBVIRT, "cannot redefine domain '%s'",
                       d->name);
        vqm_journal_fail(run->journal, seq, err.msg, NULL);
        return define_failed(d, &err);
    }
    if (vqm_journal_done(run->journal, seq, &err) < 0)
        return -1;
    d->outcome = VQM_OUTCOME_DONE;
    return 0;
}

static void
refresh_pools(struct vqm_virt_run *run)
{
    size_t i, k;

    for (i = 0; i < run->n_images; i++) {
        struct vqm_vimage *img = run->images[i];
        CLEANUP_VIR_POOL virStoragePoolPtr p = NULL;
        bool seen = false;

        if (!img->pool || !img->migrate)
            continue;
        for (k = 0; k < i; k++)
            if (run->images[k]->pool && run->images[k]->migrate
                && strcmp(run->images[k]->pool, img->pool) == 0)
                seen = true;
        if (seen)
            continue;
        if ((p = virStoragePoolLookupByName(run->conn, img->pool)))
            virStoragePoolRefresh(p, 0);
        virResetLastError();
    }
}

static void
set_file_size(struct vqm_vimage *img)
{
    struct stat st;

    if (stat(img->new_path, &st) == 0 && S_ISREG(st.st_mode))
        img->new_file_size = (uint64_t) st.st_size;
}

/* The run stops early: what was planned is not done, and the markers of
 * domains without an unfinished migration go. */
static void
abandon(struct vqm_virt_run *run)
{
    size_t i;

    for (i = 0; i < run->n_images; i++)
        if (run->images[i]->outcome == VQM_OUTCOME_PLANNED) {
            run->images[i]->outcome = VQM_OUTCOME_SKIPPED;
            snprintf(run->images[i]->reason, sizeof run->images[i]->reason,
                     "not done: the run stopped");
        }
    for (i = 0; i < run->n_domains; i++)
        if (run->domains[i].outcome == VQM_OUTCOME_PLANNED) {
            run->domains[i].outcome = VQM_OUTCOME_SKIPPED;
            snprintf(run->domains[i].reason, sizeof run->domains[i].reason,
                     "not done: the run stopped");
        }
    if (run->journal)
        vqm_journal_sweep_active(run->journal);
}

/* ---- what the journal still holds unfinished after a run ---- */

struct open_steps {
    struct vqm_virt_run *run;
    FILE *fp;                    /* one line per unresolved step */
    size_t n;
    const char *rollback;        /* an interrupted --rollback's domain */
    bool settle;                 /* record the settled ones */
    int err;                     /* a journal write failed */
};

static struct vqm_vimage *
image_at(struct vqm_virt_run *run, const char *path)
{
    size_t i;

    for (i = 0; i < run->n_images; i++) {
        struct vqm_vimage *img = run->images[i];

        if (strcmp(img->path, path) == 0 || strcmp(img->cur_path, path) == 0
            || strcmp(img->new_path, path) == 0)
            return img;
    }
    return NULL;
}

static struct vqm_vdomain *
domain_by_uuid(struct vqm_virt_run *run, const char *uuid)
{
    size_t i;

    for (i = 0; i < run->n_domains; i++)
        if (strcmp(run->domains[i].uuid, uuid) == 0)
            return &run->domains[i];
    return NULL;
}

/* Is the file at path (still) QED?  (An in-place conversion that did
 * not reach its commit left it so, consistent.) */
static bool
still_qed(const char *path)
{
    CLEANUP_PROBE struct vqm_probe p = { 0 };
    struct vqm_error e = { 0 };

    if (vqm_probe_file(path, &p, &e) < 0)
        return false;
    return p.format && strcmp(p.format, "qed") == 0;
}

/* A step begun by an interrupted run and never ended: did this run (or
 * the state of the files) settle it?  Unsettled ones are listed. */
static void
check_open_step(void *opaque, int seq, const char *step,
                const char *const a[3])
{
    struct open_steps *o = opaque;
    struct vqm_virt_run *run = o->run;
    struct vqm_vimage *img;
    struct vqm_vdomain *d;
    struct stat s1, s2;
    bool settled = true;

    if (strcmp(step, "rollback") == 0) {
        o->rollback = a[1][0] ? a[1] : a[0];
        settled = false;
    } else if (strcmp(step, "convert") == 0) {
        img = image_at(run, a[0]);
        if (img && img->migrate && img->outcome == VQM_OUTCOME_DONE)
            settled = true;
        else if (strncmp(a[2], "copy:", 5) == 0)
            settled = lstat(a[1], &s1) < 0;     /* no copy was linked */
        else
            settled = still_qed(a[0]);
    } else if (strcmp(step, "rename") == 0) {
        /* link + unlink interrupted: two names for one file */
        settled = !(stat(a[0], &s1) == 0 && stat(a[1], &s2) == 0
                    && s1.st_dev == s2.st_dev && s1.st_ino == s2.st_ino);
        img = image_at(run, a[0]);
        if (img && img->migrate && img->outcome != VQM_OUTCOME_DONE
            && !img->convert)
            settled = false;
    } else if (strcmp(step, "rebase") == 0) {
        img = image_at(run, a[0]);
        settled = !img || img->outcome != VQM_OUTCOME_FAILED;
    } else if (a[0][0] && (d = domain_by_uuid(run, a[0]))) {
        /* define, shutdown, start and the other steps of one domain */
        settled = d->outcome != VQM_OUTCOME_FAILED
            && !(d->restart_owed && !d->restarted)
            && !d->define_failed;
    }
    if (settled && o->settle && vqm_journal_settle(run->journal, seq,
                                                   NULL) < 0)
        o->err = -1;
    if (!settled) {
        o->n++;
        if (o->fp)
            fprintf(o->fp, "%s %s%s%s\n", step, a[0], a[1][0] ? " " : "",
                    a[1]);
    }
}

/* Refuse to start over an interrupted --rollback: only the rollback
 * itself knows whether the definition it restores was redefined. */
static int
check_interrupted_rollback(struct vqm_virt_run *run, struct vqm_error *err)
{
    struct open_steps o = { .run = run };

    vqm_journal_each_open(run->journal, check_open_step, &o);
    if (o.rollback)
        return vqm_error_set(err, VQM_ERR_BUSY, "the journal in '%s' holds "
                             "an interrupted rollback of domain '%s': run "
                             "'virt-qed-migrate --rollback %s' first",
                             run->opts.state_dir, o.rollback, o.rollback);
    return 0;
}

/* Close the migrations of the domains of which nothing changed (the run
 * stops early) and remove their markers. */
static void
close_untouched(struct vqm_virt_run *run)
{
    size_t i, k;

    for (i = 0; i < run->n_domains; i++) {
        struct vqm_vdomain *d = &run->domains[i];
        bool touched = d->shut_down || d->restart_owed;
        int seq;

        if (!vqm_journal_migrating(run->journal, d->uuid))
            continue;
        for (k = 0; k < run->n_images; k++)
            if (changed(run->images[k])
                && vqm_virt_domain_uses(d, run->images[k]))
                touched = true;
        if (touched)
            continue;
        seq = vqm_journal_begin(run->journal, "migrate", d->uuid, d->name,
                                NULL, NULL);
        if (seq < 0 || vqm_journal_fail(run->journal, seq, "stopped before "
                                        "any change", NULL) < 0
            || vqm_journal_set_active(run->journal, d->uuid, NULL, false,
                                      NULL) < 0)
            return;
    }
}

/* ---- the steps of a run (vqm_virt_execute) ----
 *
 * Each step returns 0, or -1 when the run must stop: then it has ended
 * the run (run->end, abandon()) and set err, through one of these two.
 */

/* A state directory operation failed (err says which). */
static int
state_error(struct vqm_virt_run *run, struct vqm_error *err)
{
    run->end = vqm_now();
    abandon(run);
    return vqm_error_prefix(err, "state directory '%s'",
                            run->opts.state_dir);
}

/* A journal write failed. */
static int
journal_error(struct vqm_virt_run *run, struct vqm_error *err)
{
    run->end = vqm_now();
    abandon(run);
    return vqm_error_set(err, VQM_ERR_IO, "journal: %s: stopped (run the "
                         "same command again to finish)",
                         vqm_journal_last_error(run->journal));
}

/* Does a disk of d still have an image to convert? */
static bool
has_work(const struct vqm_vdomain *d)
{
    size_t k;
    const struct vqm_vimage *c;
    bool work = false;

    for (k = 0; k < d->n_disks; k++)
        for (c = d->disks[k].image; c; c = c->backing)
            work |= c->convert && c->outcome == VQM_OUTCOME_PLANNED;
    return work;
}

/* 1. Stop the running domains we were asked to stop, when something of
 * theirs is still to be converted; then what is affected is known. */
static int
step_stop_domains(struct vqm_virt_run *run, struct vqm_error *err)
{
    size_t i;

    for (i = 0; i < run->n_domains; i++) {
        struct vqm_vdomain *d = &run->domains[i];

        if (d->needs_shutdown && has_work(d)
            && d->outcome != VQM_OUTCOME_SKIPPED && stop_domain(run, d) < 0)
            return journal_error(run, err);
    }
    vqm_virt_propagate_blocks(run);
    vqm_virt_mark_affected(run);
    for (i = 0; i < run->n_domains; i++)
        run->domains[i].recovered =
            vqm_journal_migrating(run->journal, run->domains[i].uuid);
    return 0;
}

/* 2. Mark the affected domains and save their definitions. */
static int
step_save_definitions(struct vqm_virt_run *run, struct vqm_error *err)
{
    struct vqm_journal *j = run->journal;
    size_t i;

    for (i = 0; i < run->n_domains; i++) {
        struct vqm_vdomain *d = &run->domains[i];

        if (!d->affected || d->outcome == VQM_OUTCOME_SKIPPED)
            continue;
        if (vqm_journal_set_active(j, d->uuid, d->name, true, err) < 0)
            return state_error(run, err);
        if (vqm_journal_migrating(j, d->uuid))
            continue;            /* keep the definition saved before */
        if (vqm_journal_save_xml(j, d->uuid, d->xml, err) < 0
            || vqm_journal_begin(j, "migrate", d->uuid, d->name, NULL,
                                 err) < 0)
            return state_error(run, err);
    }
    return 0;
}

/* 2b. Running domains: copy their disks live (--live).  A cancel
 * (signal) or an error stops the run; domains of which nothing changed
 * are closed and unmarked (the hook lets them start), and the journal
 * is archived when nothing in it is unfinished. */
static int
step_copy_live(struct vqm_virt_run *run, int run_seq, struct vqm_error *err)
{
    struct vqm_journal *j = run->journal;
    size_t i;

    for (i = 0; i < run->n_domains; i++) {
        struct vqm_vdomain *d = &run->domains[i];

        if (!d->live || d->outcome == VQM_OUTCOME_SKIPPED
            || vqm_live_execute(run, d, err) >= 0)
            continue;
        if (d->outcome == VQM_OUTCOME_PLANNED) {
            d->outcome = VQM_OUTCOME_SKIPPED;
            snprintf(d->reason, sizeof d->reason, "%s", err->msg);
        }
        run->end = vqm_now();
        abandon(run);
        close_untouched(run);
        if (!vqm_journal_pending(j)) {
            vqm_journal_done(j, run_seq, NULL);
            vqm_journal_close(j, true);
            run->journal = NULL;
        }
        return -1;
    }
    return 0;
}

/* 3. Images, bases first: convert, rename, rewrite the references of
 * their overlays. */
static bool
in_place_next(const struct vqm_vimage *img)
{
    return img->migrate && !img->live && img->convert && !img->copy
        && img->outcome == VQM_OUTCOME_PLANNED;
}

static int
step_convert_images(struct vqm_virt_run *run, struct vqm_error *err)
{
    struct vqm_journal *j = run->journal;
    double scanned = 0;
    size_t i;

    for (i = 0; i < run->n_images; i++) {
        struct vqm_vimage *img = run->images[i];
        int r = 1;

        if (!img->migrate || img->live)  /* live: copied in 2b */
            continue;
        /* Writers of the images still to convert in place: one pass over
         * /proc for all of them, again once a second has gone by, so
         * that no image is committed on a scan older than that plus its
         * own conversion. */
        if (in_place_next(img) && vqm_now() - scanned > 1.0) {
            vqm_virt_scan_writers(run, in_place_next);
            scanned = vqm_now();
        }
        if (img->convert && img->outcome == VQM_OUTCOME_PLANNED) {
            if ((r = convert_image(run, img)) < 0)
                return journal_error(run, err);
            if (r == 0) {
                item_done(run, img, NULL);
                continue;
            }
        } else if (img->outcome != VQM_OUTCOME_DONE) {
            continue;
        }
        if (!img->copy && strcmp(img->cur_path, img->new_path) != 0
            && rename_image(run, img) < 0)
            return journal_error(run, err);
        /* A copy an interrupted run made: remembered like the others. */
        if (img->copy && !img->convert
            && !vqm_journal_known_copy(j, img->cur_path, NULL)
            && vqm_journal_note_copy(j, img->cur_path, img->new_path,
                                     img->verified, err) < 0)
            return state_error(run, err);
        img->outcome = VQM_OUTCOME_DONE;
        set_file_size(img);
        if (rebase_dependents(run, img) < 0)
            return journal_error(run, err);
        item_done(run, img, NULL);
    }
    vqm_virt_propagate_blocks(run);
    return 0;
}

/* 4. Pools, then definitions. */
static int
step_define_domains(struct vqm_virt_run *run, struct vqm_error *err)
{
    size_t i;

    refresh_pools(run);
    for (i = 0; i < run->n_domains; i++) {
        struct vqm_vdomain *d = &run->domains[i];
        double t0 = vqm_now();

        if (!d->affected || d->outcome == VQM_OUTCOME_SKIPPED)
            continue;
        if (define_domain(run, d) < 0)
            return journal_error(run, err);
        d->seconds = vqm_now() - t0;
        if (d->outcome == VQM_OUTCOME_PLANNED)
            d->outcome = VQM_OUTCOME_DONE;
        if (!d->shut_down && !d->restart_owed)
            item_done(run, NULL, d);
    }
    return 0;
}

/* 4a. Sources of verified copies (--remove-source, this run's copies or
 * an earlier run's), only now that no definition names them. */
static int
step_remove_sources(struct vqm_virt_run *run, struct vqm_error *err)
{
    size_t i;

    for (i = 0; i < run->n_images && run->opts.remove_source; i++) {
        struct vqm_vimage *img = run->images[i];

        if (img->migrate && img->copy && img->outcome == VQM_OUTCOME_DONE
            && remove_source(run, img) < 0)
            return journal_error(run, err);
    }
    return 0;
}

/* 4b. Snapshots and saved state naming the converted images, of any
 * domain (virt-snapshot.c). */
static int
step_fix_snapshots(struct vqm_virt_run *run, struct vqm_error *err)
{
    size_t i;

    for (i = 0; i < run->n_domains; i++)
        if (run->domains[i].outcome != VQM_OUTCOME_SKIPPED
            && run->domains[i].outcome != VQM_OUTCOME_FAILED
            && vqm_snapshot_execute(run, &run->domains[i], err) < 0)
            return journal_error(run, err);
    return 0;
}

/* 5. Start again what we stopped (this run or an interrupted one). */
static int
step_restart_domains(struct vqm_virt_run *run, struct vqm_error *err)
{
    size_t i;

    for (i = 0; i < run->n_domains; i++) {
        struct vqm_vdomain *d = &run->domains[i];

        if ((d->shut_down || d->restart_owed)
            && start_domain(run, d) < 0)
            return journal_error(run, err);
        if (d->shut_down || d->restart_owed)
            item_done(run, NULL, d);
    }
    return 0;
}

/* Pending: images changed under a definition that could not be
 * rewritten (the marker keeps the hook refusing to start it).  Images
 * that failed or were skipped are unchanged: the domain is consistent
 * and may start. */
static bool
migration_pending(const struct vqm_vdomain *d)
{
    return d && (d->define_failed
                 || (d->affected && d->outcome != VQM_OUTCOME_DONE
                     && d->outcome != VQM_OUTCOME_NONE));
}

/* 6. Close the migrations that are complete, the interrupted ones
 * included, and drop their active markers.  *clean becomes false when
 * one stays open. */
static int
step_close_migrations(struct vqm_virt_run *run, bool *clean,
                      struct vqm_error *err)
{
    struct vqm_journal *j = run->journal;
    CLEANUP_FREE const char **unfinished = vqm_journal_unfinished(j);
    size_t i;

    for (i = 0; unfinished && unfinished[i]; i++) {
        const char *uuid = unfinished[i];
        struct vqm_vdomain *d = NULL;
        size_t k;
        int seq;

        for (k = 0; k < run->n_domains; k++)
            if (strcmp(run->domains[k].uuid, uuid) == 0)
                d = &run->domains[k];
        if (migration_pending(d)) {
            *clean = false;
            continue;
        }
        seq = vqm_journal_begin(j, "migrate", uuid, d ? d->name : "", NULL,
                                err);
        if (seq < 0 || vqm_journal_done(j, seq, err) < 0)
            return journal_error(run, err);
        if (vqm_journal_set_active(j, uuid, NULL, false, err) < 0)
            return state_error(run, err);
    }
    /* Remove the markers of domains with nothing pending. */
    vqm_journal_sweep_active(j);
    return 0;
}

/* 7. End the run: list what stays unfinished, record the run's end and
 * archive the journal when the run is clean and nothing in it is
 * unfinished (every step an interrupted run began is settled too). */
static int
step_finish(struct vqm_virt_run *run, int run_seq, bool clean,
            struct vqm_error *err)
{
    struct vqm_journal *j = run->journal;
    struct open_steps open_after = { .run = run };
    CLEANUP_FREE char *open_list = NULL;
    size_t open_len = 0, i;

    for (i = 0; i < run->n_images; i++)
        if (run->images[i]->outcome == VQM_OUTCOME_FAILED)
            clean = false;
    for (i = 0; i < run->n_domains; i++)
        if (run->domains[i].outcome == VQM_OUTCOME_FAILED)
            clean = false;
    open_after.fp = open_memstream(&open_list, &open_len);
    open_after.settle = true;
    vqm_journal_each_open(j, check_open_step, &open_after);
    if (open_after.fp)
        fclose(open_after.fp);
    if (open_after.err < 0)
        return journal_error(run, err);
    if (open_after.n > 0) {
        clean = false;
        run->unfinished = vqm_steal(&open_list);
    }
    if (vqm_journal_done(j, run_seq, err) < 0)
        return journal_error(run, err);
    run->end = vqm_now();
    if (clean && !vqm_journal_pending(j)) {
        vqm_journal_close(j, true);
        run->journal = NULL;
    } else if (!run->unfinished) {
        run->unfinished = strdup("");
    }
    return 0;
}

int
vqm_virt_execute(struct vqm_virt_run *run, struct vqm_error *err)
{
    bool clean = true;
    int run_seq;

    if (check_interrupted_rollback(run, err) < 0) {
        run->end = vqm_now();
        return -1;
    }
    if ((run_seq = vqm_journal_run_begin(run->journal, run->opts.command,
                                         err)) < 0)
        return state_error(run, err);
    if (step_stop_domains(run, err) < 0
        || step_save_definitions(run, err) < 0
        || step_copy_live(run, run_seq, err) < 0
        || step_convert_images(run, err) < 0
        || step_define_domains(run, err) < 0
        || step_remove_sources(run, err) < 0
        || step_fix_snapshots(run, err) < 0
        || step_restart_domains(run, err) < 0
        || step_close_migrations(run, &clean, err) < 0)
        return -1;
    return step_finish(run, run_seq, clean, err);
}

int
vqm_virt_status(const struct vqm_virt_run *run)
{
    size_t i, k;
    bool skipped = false;

    for (i = 0; i < run->n_images; i++) {
        if (run->images[i]->outcome == VQM_OUTCOME_FAILED)
            return 1;
        if (run->images[i]->outcome == VQM_OUTCOME_SKIPPED
            && run->images[i]->in_scope)
            skipped = true;
    }
    for (i = 0; i < run->n_domains; i++) {
        const struct vqm_vdomain *d = &run->domains[i];
        if (d->outcome == VQM_OUTCOME_FAILED)
            return 1;
        if (d->outcome == VQM_OUTCOME_SKIPPED)
            skipped = true;
        for (k = 0; k < d->n_disks; k++) {
            if (d->disks[k].outcome == VQM_OUTCOME_FAILED)
                return 1;
            if (d->disks[k].outcome == VQM_OUTCOME_SKIPPED)
                skipped = true;
        }
    }
    return skipped ? 3 : 0;
}

/* ---- --rollback ---- */

/* What a rollback works on. */
struct rollback {
    const char *domain;            /* as named on the command line */
    const char *state_dir;
    struct vqm_journal *j;         /* closed by vqm_virt_rollback */
    char uuid[VIR_UUID_STRING_BUFLEN];
    char *cur_name;                /* the domain's name now */
    char *xml, *path;              /* the saved definition and its file */
    struct vqm_domxml *x;          /* xml parsed */
    struct vqm_domxml_disk *dd;    /* its disks */
    size_t n;
    char *name, *xuuid;            /* its name and uuid */
    char **paths;                  /* its sources, checked */
    size_t npaths;
    char *stale;                   /* a copy left by the migration */
};

static void
rollback_clear(struct rollback *rb)
{
    size_t i;

    free(rb->cur_name);
    free(rb->xml);
    free(rb->path);
    vqm_domxml_disks_free(rb->dd, rb->n);
    vqm_domxml_free(rb->x);
    free(rb->name);
    free(rb->xuuid);
    for (i = 0; i < rb->npaths; i++)
        free(rb->paths[i]);
    free(rb->paths);
    free(rb->stale);
}

#define CLEANUP_ROLLBACK __attribute__((cleanup(rollback_clear)))

/* The domain: its uuid and name; it must be shut off. */
static int
rollback_find_domain(virConnectPtr conn, struct rollback *rb,
                     struct vqm_error *err)
{
    CLEANUP_VIR_DOMAIN virDomainPtr dom =
        virDomainLookupByName(conn, rb->domain);

    if (!dom)
        dom = virDomainLookupByUUIDString(conn, rb->domain);
    if (!dom)
        return vqm_error_set(err, VQM_ERR_NOTFOUND, "domain '%s' not found",
                             rb->domain);
    virDomainGetUUIDString(dom, rb->uuid);
    if (!(rb->cur_name = strdup(virDomainGetName(dom)
                                ? virDomainGetName(dom) : "")))
        return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    if (virDomainIsActive(dom) == 1)
        return vqm_error_set(err, VQM_ERR_BUSY, "domain '%s' is running: "
                             "shut it down before a rollback", rb->domain);
    return 0;
}

/* Open the journal.  It is the host's: a rollback does not start over
 * the unfinished work of other domains. */
static int
rollback_open_journal(struct rollback *rb, struct vqm_error *err)
{
    const char *cmd;

    if (vqm_journal_open(rb->state_dir, false, &rb->j, err) < 0)
        return -1;
    if (!vqm_journal_open_beyond(rb->j, rb->uuid))
        return 0;
    cmd = vqm_journal_command(rb->j);
    return vqm_error_set(err, VQM_ERR_BUSY, "the journal in '%s' holds an "
                         "unfinished migration: run '%s' first to finish "
                         "it, then roll back", rb->state_dir,
                         cmd ? cmd : "virt-qed-migrate --domain DOMAIN");
}

/* The saved definition (of run, or the newest): the file must be the one
 * the journal recorded (digest), of this very domain (UUID and name). */
static int
rollback_read_saved(struct rollback *rb, const char *run,
                    struct vqm_error *err)
{
    const char *name, *uuid;

    if (vqm_journal_saved_xml(rb->j, rb->uuid, run, &rb->xml, &rb->path,
                              err) < 0)
        return vqm_error_prefix(err, "cannot roll back domain '%s'",
                                rb->domain);
    if (vqm_domxml_parse(rb->xml, strlen(rb->xml), NULL, &rb->x, err) < 0
        || vqm_domxml_disks(rb->x, &rb->dd, &rb->n, err) < 0)
        return -1;
    name = vqm_domxml_name(rb->x);
    uuid = vqm_domxml_uuid(rb->x);
    if ((name && !(rb->name = strdup(name)))
        || (uuid && !(rb->xuuid = strdup(uuid))))
        return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    if (!rb->xuuid || strcasecmp(rb->xuuid, rb->uuid) != 0 || !rb->name
        || strcmp(rb->name, rb->cur_name) != 0)
        return vqm_error_set(err, VQM_ERR_REFUSED, "cannot roll back "
                             "domain '%s' (%s): the saved definition '%s' "
                             "is of domain '%s' (%s): refused",
                             rb->cur_name, rb->uuid, rb->path,
                             rb->name ? rb->name : "?",
                             rb->xuuid ? rb->xuuid : "?");
    return 0;
}

/* The volume of layer t is gone.  -1. */
static int
volume_gone(const struct rollback *rb, const struct vqm_domxml_layer *t,
            struct vqm_error *err)
{
    size_t vl = strlen(t->volume);

    if (vl > 4 && strcmp(t->volume + vl - 4, ".qed") == 0)
        return vqm_error_set(err, VQM_ERR_REFUSED, "cannot roll back "
                             "domain '%s': volume '%s/%s' no longer exists "
                             "(if it was converted in place it is qcow2 "
                             "now, '%.*s.qcow2'; the way back is a backup "
                             "of the QED file)", rb->domain, t->pool,
                             t->volume, (int) (vl - 4), t->volume);
    return vqm_error_set(err, VQM_ERR_NOTFOUND, "cannot roll back domain "
                         "'%s': volume '%s/%s' no longer exists",
                         rb->domain, t->pool, t->volume);
}

/* The source p of layer t must still be there, in the format the saved
 * definition names. */
static int
check_source(const struct rollback *rb, const struct vqm_domxml_layer *t,
             const char *p, struct vqm_error *err)
{
    CLEANUP_PROBE struct vqm_probe pr = { 0 };
    struct vqm_error e2 = { 0 };

    if (vqm_probe_file(p, &pr, &e2) < 0) {
        CLEANUP_FREE char *now = NULL;
        size_t pl = strlen(p);
        struct stat st;

        /* Converted in place and renamed: say so. */
        if (e2.code == VQM_ERR_NOTFOUND && pl > 4
            && strcmp(p + pl - 4, ".qed") == 0
            && asprintf(&now, "%.*s.qcow2", (int) (pl - 4), p) > 0
            && stat(now, &st) == 0)
            return vqm_error_set(err, VQM_ERR_REFUSED, "cannot roll back "
                                 "domain '%s': '%s' was converted in place "
                                 "and is qcow2 now ('%s'); the way back is "
                                 "a backup of the QED file", rb->domain, p,
                                 now);
        return vqm_error_set(err, VQM_ERR_NOTFOUND, "cannot roll back "
                             "domain '%s': source '%s': %s", rb->domain, p,
                             e2.msg);
    }
    if (t->format && strcmp(t->format, pr.format) != 0)
        return vqm_error_set(err, VQM_ERR_REFUSED, "cannot roll back "
                             "domain '%s': '%s' is %s now (converted in "
                             "place), the saved definition says %s",
                             rb->domain, p, pr.format, t->format);
    return 0;
}

/* Keep the checked source *pp (stolen) and note a copy the rolled-back
 * migration made of it that is still there. */
static int
add_source(struct rollback *rb, char **pp, struct vqm_error *err)
{
    char **v = realloc(rb->paths, (rb->npaths + 1) * sizeof *v);
    const char *prev;

    if (!v)
        return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    rb->paths = v;
    rb->paths[rb->npaths++] = vqm_steal(pp);
    prev = vqm_journal_copy_output(rb->j, rb->paths[rb->npaths - 1]);
    if (prev && !rb->stale && access(prev, F_OK) == 0)
        rb->stale = strdup(prev);
    return 0;
}

/* Every source the saved definition names must still be there, in the
 * format it names. */
static int
rollback_check_sources(virConnectPtr conn, struct rollback *rb,
                       struct vqm_error *err)
{
    size_t i;

    for (i = 0; i < rb->n; i++) {
        CLEANUP_FREE char *p = NULL;
        const struct vqm_domxml_layer *t = &rb->dd[i].top;

        if (!vqm_domxml_can_hold_qed(&rb->dd[i]))
            continue;
        if (t->form == VQM_SOURCE_VOLUME && t->pool && t->volume) {
            if (!(p = vqm_virt_volume_path(conn, t->pool, t->volume, true)))
                return volume_gone(rb, t, err);
        } else if (t->path) {
            p = strdup(t->path);
        } else {
            continue;
        }
        if (check_source(rb, t, p, err) < 0 || add_source(rb, &p, err) < 0)
            return -1;
    }
    return 0;
}

/* Define the saved definition again and record it. */
static int
rollback_define(virConnectPtr conn, struct rollback *rb,
                struct vqm_error *err)
{
    CLEANUP_VIR_DOMAIN virDomainPtr dom = NULL;
    const char *name = rb->name ? rb->name : rb->domain;
    int seq;

    seq = vqm_journal_begin(rb->j, "rollback", rb->uuid, name, NULL, err);
    if (seq < 0)
        return -1;
    if (!(dom = virDomainDefineXMLFlags(conn, rb->xml,
                                        VIR_DOMAIN_DEFINE_VALIDATE))) {
        vqm_virt_error(err, VQM_ERR_LIBVIRT, "cannot define domain '%s'",
                       rb->domain);
        vqm_journal_fail(rb->j, seq, err->msg, NULL);
        return -1;
    }
    if (vqm_journal_done(rb->j, seq, err) < 0
        || vqm_journal_rolled_back(rb->j, rb->uuid, name,
                                   (const char *const *) rb->paths,
                                   rb->npaths, err) < 0)
        return -1;
    return 0;
}

/* A refusal over an unfinished migration names what finishes it. */
static void
name_unfinished(struct vqm_journal *j, const char *state_dir,
                struct vqm_error *err)
{
    const char *cmd = vqm_journal_command(j);
    char first[sizeof err->msg];

    if (strstr(err->msg, "unfinished migration"))
        return;
    snprintf(first, sizeof first, "%s", err->msg);
    vqm_error_set(err, err->code, "%s; the journal in '%s' holds an "
                  "unfinished migration: run '%s' first to finish it",
                  first, state_dir,
                  cmd ? cmd : "virt-qed-migrate --domain DOMAIN");
}

int
vqm_virt_rollback(const char *uri, const char *state_dir,
                  const char *domain, const char *run, char *msg,
                  size_t msglen, struct vqm_error *err)
{
    CLEANUP_VIR_CONNECT virConnectPtr conn = NULL;
    CLEANUP_ROLLBACK struct rollback rb = { .domain = domain };
    const char *name;
    int ret;

    vqm_virt_init_errors();
    if (!state_dir)
        state_dir = VQM_STATEDIR;
    rb.state_dir = state_dir;
    if (!(conn = vqm_virt_connect(uri, false)))
        return vqm_virt_error(err, VQM_ERR_LIBVIRT, "cannot connect to "
                              "libvirt");
    ret = rollback_find_domain(conn, &rb, err) < 0
        || rollback_open_journal(&rb, err) < 0
        || rollback_read_saved(&rb, run, err) < 0
        || rollback_check_sources(conn, &rb, err) < 0
        || rollback_define(conn, &rb, err) < 0 ? -1 : 0;
    if (ret < 0 && rb.j && err && vqm_journal_pending(rb.j))
        name_unfinished(rb.j, state_dir, err);
    /* Archived whenever nothing in it is unfinished (a refused rollback
     * leaves nothing begun). */
    if (rb.j && !vqm_journal_pending(rb.j))
        vqm_journal_sweep_active(rb.j);   /* markers a killed run left */
    if (rb.j)
        vqm_journal_close(rb.j, !vqm_journal_pending(rb.j));
    if (ret < 0)
        return -1;
    name = rb.name ? rb.name : domain;
    if (msg && rb.stale)
        snprintf(msg, msglen, "domain '%s' restored from '%s'; the copy "
                 "'%s' made by the rolled-back migration is stale: remove "
                 "it before migrating again", name, rb.path, rb.stale);
    else if (msg)
        snprintf(msg, msglen, "domain '%s' restored from '%s'", name,
                 rb.path);
    return 0;
}
