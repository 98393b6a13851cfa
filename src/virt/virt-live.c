/* virt-qed-migrate: live conversion of running domains (see virt-live.h).
 *
 * Per disk: virDomainBlockCopy to NAME.qcow2 (shallow when the disk has a
 * backing file, a transient job for persistent domains, the --bandwidth
 * limit), poll virDomainGetBlockJobInfo until the copy caught up and the
 * live XML shows <mirror ready='yes'>, then pivot and wait for the job to
 * go away.  No event loop is needed.
 *
 * Invariant: until the pivot succeeded the domain runs on its QED disk;
 * any failure or cancellation before it aborts the job without a pivot
 * and removes the partial copy, which did not exist before (the plan
 * refuses an existing target unless it is the mirror of a block job a
 * killed earlier run left behind, which is aborted first).
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "cleanup.h"
#include "virt-internal.h"
#include "virt-live.h"
#include "domxml/domxml.h"
#include "vqm-debug.h"

/* Seconds to wait for a job to go away after a pivot or an abort. */
#define JOB_END_TIMEOUT 60
/* Seconds a block copy may go without progress (bytes copied, or the
 * mirror becoming ready once it caught up) before it is aborted.
 * VQM_LIVE_STALL_TIMEOUT (seconds) overrides it, for tests. */
#define COPY_STALL_TIMEOUT 300

static volatile sig_atomic_t cancelled;

static void
on_signal(int sig)
{
    cancelled = sig;
}

static void
block(struct vqm_vimage *img, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
block(struct vqm_vimage *img, const char *fmt, ...)
{
    va_list ap;

    img->live = false;
    if (img->outcome == VQM_OUTCOME_SKIPPED
        || img->outcome == VQM_OUTCOME_FAILED)
        return;
    img->outcome = VQM_OUTCOME_SKIPPED;
    va_start(ap, fmt);
    vsnprintf(img->reason, sizeof img->reason, fmt, ap);
    va_end(ap);
}

/* NAME.qed -> NAME.qcow2, anything else -> NAME.qcow2 appended. */
static char *
copy_name(const char *path)
{
    size_t n = strlen(path);
    char *s;

    if (n > 4 && strcmp(path + n - 4, ".qed") == 0) {
        if (asprintf(&s, "%.*s.qcow2", (int) (n - 4), path) < 0)
            return NULL;
    } else if (asprintf(&s, "%s.qcow2", path) < 0) {
        return NULL;
    }
    return s;
}

/* ---- live XML ---- */

/* What the live XML says about disk target: its top source path and
 * format, and the mirror of a block job (file and ready state). */
struct live_disk {
    bool found;
    char *source;
    char *format;
    char *mirror;
    bool mirror_ready;
};

static void
live_disk_clear(struct live_disk *ld)
{
    free(ld->source);
    free(ld->format);
    free(ld->mirror);
    memset(ld, 0, sizeof *ld);
}

/* A struct live_disk (initialised with { 0 }) cleared at the end of its
 * scope. */
#define CLEANUP_LIVE_DISK __attribute__((cleanup(live_disk_clear)))

/* Fill *ld (cleared first: it may hold an earlier answer). */
static int
live_disk_get(virDomainPtr dom, const char *target, struct live_disk *ld)
{
    CLEANUP_FREE char *xml = virDomainGetXMLDesc(dom, 0);
    CLEANUP_XMLDOC xmlDocPtr doc = NULL;
    xmlNodePtr c;

    live_disk_clear(ld);
    if (!xml)
        return -1;
    if (!(doc = vqm_xml_read(xml, strlen(xml), "live domain XML", "domain",
                             NULL)))
        return -1;
    c = vqm_xml_child(vqm_xml_child(xmlDocGetRootElement(doc), "devices"),
                      "disk");
    for (; c; c = c->next) {
        xmlNodePtr src, m;

        if (c->type != XML_ELEMENT_NODE
            || strcmp((const char *) c->name, "disk") != 0
            || !vqm_xml_attr_is(vqm_xml_child(c, "target"), "dev", target))
            continue;
        ld->found = true;
        src = vqm_xml_child(c, "source");
        ld->source = vqm_xml_attr(src, "file");
        if (!ld->source)
            ld->source = vqm_xml_attr(src, "dev");
        if (!ld->source && vqm_xml_attr_is(c, "type", "volume")) {
            /* Live volume disks show only pool and volume. */
            CLEANUP_FREE char *pool = vqm_xml_attr(src, "pool");
            CLEANUP_FREE char *vol = vqm_xml_attr(src, "volume");

            if (pool && vol)
                ld->source = vqm_virt_volume_path(virDomainGetConnect(dom),
                                                  pool, vol, false);
            virResetLastError();
        }
        ld->format = vqm_xml_attr(vqm_xml_child(c, "driver"), "type");
        if ((m = vqm_xml_child(c, "mirror"))) {
            ld->mirror = vqm_xml_attr(m, "file");
            if (!ld->mirror)
                ld->mirror = vqm_xml_attr(vqm_xml_child(m, "source"), "file");
            ld->mirror_ready = vqm_xml_attr_is(m, "ready", "yes");
        }
        break;
    }
    return 0;
}

static bool
same_file(const char *a, const char *b)
{
    struct stat sa, sb;

    if (!a || !b)
        return false;
    if (strcmp(a, b) == 0)
        return true;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev
        && sa.st_ino == sb.st_ino;
}

/* ---- planning ---- */

/* Can a live copy replace the top of disk dk of running domain d?  It
 * handles the top of a disk (not a cdrom or a floppy) on a file, without
 * QED layers below and used by no other domain; what it cannot convert
 * is blocked. */
static bool
live_copy_fits(struct vqm_virt_run *run, struct vqm_vdomain *d,
               struct vqm_vdisk *dk)
{
    struct vqm_vimage *top = dk->image, *c;
    bool lower_qed = false;
    size_t i;

    if (strcmp(dk->device, "disk") != 0) {
        /* cdroms and floppies are converted offline only. */
        for (c = top; c; c = c->backing)
            if (c->convert)
                block(c, "domain '%s' is running and disk %s is a %s: "
                      "a live copy handles disks only (use --shutdown)",
                      d->name, dk->target, dk->device);
        return false;
    }
    for (c = top->backing; c; c = c->backing)
        if (c->migrate && c->convert)
            lower_qed = true;
    if (!top->migrate || !top->convert
        || top->outcome != VQM_OUTCOME_PLANNED) {
        if (lower_qed)
            for (c = top->backing; c; c = c->backing)
                if (c->convert)
                    block(c, "domain '%s' is running and a live copy "
                          "replaces only the top of disk %s: stop it "
                          "(--shutdown) to convert its backing chain",
                          d->name, dk->target);
        return false;
    }
    if (lower_qed) {
        block(top, "domain '%s' is running and disk %s has QED layers "
              "below its top: a live copy cannot replace them (use "
              "--shutdown)", d->name, dk->target);
        for (c = top->backing; c; c = c->backing)
            if (c->convert)
                block(c, "its overlay '%s' is used by running domain "
                      "'%s' (use --shutdown)", top->path, d->name);
        return false;
    }
    if (top->block_device || strcmp(dk->type, "block") == 0) {
        block(top, "domain '%s' is running and disk %s is a block "
              "device: only an offline in-place conversion keeps it "
              "(use --shutdown)", d->name, dk->target);
        return false;
    }
    for (i = 0; i < run->n_domains; i++)
        if (&run->domains[i] != d &&
            vqm_virt_domain_uses(&run->domains[i], top))
            break;
    if (i < run->n_domains) {
        block(top, "shared with domain '%s': a live copy would leave "
              "it on the QED file", run->domains[i].name);
        return false;
    }
    return true;
}

/* Plan the live copy of disk dk of d (dom: NULL when it was not found)
 * when the live definition agrees with the persistent one and nothing
 * is in the way of the copy. */
static void
plan_disk(struct vqm_vdomain *d, virDomainPtr dom, struct vqm_vdisk *dk)
{
    struct vqm_vimage *top = dk->image;
    CLEANUP_LIVE_DISK struct live_disk ld = { 0 };
    CLEANUP_FREE char *dest = NULL;
    struct stat st;

    if (!dom || live_disk_get(dom, dk->target, &ld) < 0) {
        block(top, "cannot read the live definition of domain '%s'",
              d->name);
        virResetLastError();
        return;
    }
    if (!ld.found || !same_file(ld.source, top->cur_path)) {
        block(top, "domain '%s' runs disk %s from '%s', not from its "
              "definition's '%s'", d->name, dk->target,
              ld.source ? ld.source : "nothing", top->cur_path);
        return;
    }
    if (!(dest = copy_name(top->cur_path)))
        return;
    if (ld.mirror && strcmp(ld.mirror, dest) != 0) {
        block(top, "disk %s of domain '%s' has another block job "
              "running (to '%s')", dk->target, d->name, ld.mirror);
        return;
    }
    /* A target left by a killed run is the mirror of its job: that job
     * is aborted and the file replaced (vqm_live_execute). */
    if (!ld.mirror && lstat(dest, &st) == 0) {
        block(top, "copy target '%s' exists already", dest);
        return;
    }
    if (ld.mirror)
        snprintf(top->note, sizeof top->note, "a block job left by an "
                 "interrupted run is aborted and the copy restarted");
    top->live = true;
    top->copy = true;
    top->rename = false;
    free(top->new_path);
    top->new_path = vqm_steal(&dest);
}

static void
plan_domain(struct vqm_virt_run *run, struct vqm_vdomain *d)
{
    CLEANUP_VIR_DOMAIN virDomainPtr dom =
        virDomainLookupByUUIDString(run->conn, d->uuid);
    size_t k;

    for (k = 0; k < d->n_disks; k++) {
        struct vqm_vdisk *dk = &d->disks[k];

        if (!dk->image || !dk->has_qed || dk->outcome == VQM_OUTCOME_SKIPPED
            || !live_copy_fits(run, d, dk))
            continue;
        plan_disk(d, dom, dk);
    }
}

void
vqm_live_plan(struct vqm_virt_run *run)
{
    size_t i, k;

    for (i = 0; i < run->n_domains; i++) {
        struct vqm_vdomain *d = &run->domains[i];
        bool qed = false;

        for (k = 0; k < d->n_disks; k++)
            qed |= d->disks[k].has_qed;
        if (d->live) {
            plan_domain(run, d);
            continue;
        }
        if (!run->opts.live || !d->in_scope || !qed || d->active)
            continue;
        /* Whether its QEMU could open QED is not asked: libvirt does not
         * say which block drivers a QEMU has, and the tool never runs a
         * binary a definition names (<emulator>).  A running domain's
         * QEMU has opened its QED disks; a block copy that fails leaves
         * it running on them (copy_disk). */
        vqm_virt_warn(run, "domain '%s' is not running: converted offline",
                      d->name);
    }
}

/* ---- execution ---- */

static char *
xml_escape(const char *s)
{
    size_t n = 1;
    const char *p;
    char *out, *o;

    for (p = s; *p; p++)
        n += *p == '&' ? 5 : *p == '<' || *p == '>' ? 4 : *p == '\'' ? 6 : 1;
    if (!(out = malloc(n)))
        return NULL;
    for (p = s, o = out; *p; p++) {
        switch (*p) {
        case '&': memcpy(o, "&amp;", 5); o += 5; break;
        case '<': memcpy(o, "&lt;", 4); o += 4; break;
        case '>': memcpy(o, "&gt;", 4); o += 4; break;
        case '\'': memcpy(o, "&apos;", 6); o += 6; break;
        default: *o++ = *p;
        }
    }
    *o = '\0';
    return out;
}

/* Wait until no block job runs on target; 0, or -1 after the timeout. */
static int
wait_job_gone(virDomainPtr dom, const char *target, unsigned timeout)
{
    double end = vqm_now() + timeout;
    virDomainBlockJobInfo info;
    int r;

    do {
        r = virDomainGetBlockJobInfo(dom, target, &info, 0);
        if (r == 0)
            return 0;
        if (r < 0 && virDomainIsActive(dom) != 1)
            return 0;                 /* the domain is gone */
        usleep(50000);
    } while (vqm_now() < end);
    return -1;
}

/* Abort the copy job on target without a pivot and remove the copy. */
static void
abandon_copy(virDomainPtr dom, const char *target, const char *dest)
{
    virDomainBlockJobInfo info;

    if (virDomainGetBlockJobInfo(dom, target, &info, 0) == 1)
        virDomainBlockJobAbort(dom, target, 0);
    wait_job_gone(dom, target, JOB_END_TIMEOUT);
    virResetLastError();
    if (unlink(dest) < 0 && errno != ENOENT)
        vqm_debug("cannot remove '%s': %m", dest);
}

struct sigsave {
    struct sigaction intr, term, hup;
};

static void
signals_catch(struct sigsave *s)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    cancelled = 0;
    sigaction(SIGINT, &sa, &s->intr);
    sigaction(SIGTERM, &sa, &s->term);
    sigaction(SIGHUP, &sa, &s->hup);
}

static void
signals_restore(const struct sigsave *s)
{
    sigaction(SIGINT, &s->intr, NULL);
    sigaction(SIGTERM, &s->term, NULL);
    sigaction(SIGHUP, &s->hup, NULL);
}

/* Start the block copy of disk target to img->new_path (first aborting a
 * job a killed run left to it).  0, or -1 with err set and no copy
 * left. */
static int
start_copy(struct vqm_virt_run *run, virDomainPtr dom, bool persistent,
           const char *target, struct vqm_vimage *img, struct vqm_error *err)
{
    const char *dest = img->new_path;
    CLEANUP_FREE char *edest = xml_escape(dest);
    CLEANUP_FREE char *dxml = NULL;
    CLEANUP_LIVE_DISK struct live_disk ld = { 0 };
    virTypedParameterPtr params = NULL;
    int nparams = 0, maxparams = 0;
    unsigned flags = 0;
    struct stat st;
    int r;

    /* A job left by a killed run: abort it, drop its copy. */
    if (live_disk_get(dom, target, &ld) == 0 && ld.mirror
        && strcmp(ld.mirror, dest) == 0) {
        vqm_debug("aborting the block job left on %s", target);
        abandon_copy(dom, target, dest);
    }

    if (!edest || asprintf(&dxml, "<disk type='file'><source file='%s'/>"
                           "<driver type='qcow2'/></disk>", edest) < 0)
        return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    if (img->backing)
        flags |= VIR_DOMAIN_BLOCK_COPY_SHALLOW;
    if (persistent)
        flags |= VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB;
    if (run->opts.bandwidth
        && virTypedParamsAddULLong(&params, &nparams, &maxparams,
                                   VIR_DOMAIN_BLOCK_COPY_BANDWIDTH,
                                   run->opts.bandwidth) < 0)
        return vqm_virt_error(err, VQM_ERR_LIBVIRT, "bandwidth");
    vqm_debug("block copy of %s to '%s' (flags %#x)", target, dest, flags);
    r = virDomainBlockCopy(dom, target, dxml, params, nparams, flags);
    virTypedParamsFree(params, nparams);
    if (r < 0) {
        vqm_virt_error(err, VQM_ERR_LIBVIRT, "cannot start the block copy "
                       "of disk %s to '%s'", target, dest);
        /* Never leave a copy we may have started. */
        if (lstat(dest, &st) == 0)
            abandon_copy(dom, target, dest);
        return -1;
    }
    return 0;
}

/* Wait until the mirror of the copy of disk target caught up, as long as
 * it makes progress.  0 ready; -1 failed, -2 cancelled (err set, the
 * copy abandoned). */
static int
wait_mirror_ready(struct vqm_virt_run *run, virDomainPtr dom,
                  const char *target, struct vqm_vimage *img,
                  struct vqm_error *err)
{
    const char *dest = img->new_path;
    CLEANUP_LIVE_DISK struct live_disk ld = { 0 };
    virDomainBlockJobInfo info;
    unsigned long long last_cur = 0;
    double last_progress = vqm_now();
    unsigned stall = COPY_STALL_TIMEOUT;
    const char *env;
    int r;

    if ((env = getenv("VQM_LIVE_STALL_TIMEOUT")) && atoi(env) > 0)
        stall = (unsigned) atoi(env);
    for (;;) {
        if (cancelled) {
            abandon_copy(dom, target, dest);
            vqm_error_set(err, VQM_ERR_IO, "block copy of disk %s "
                          "cancelled (signal %d): the domain keeps running "
                          "on '%s', the partial copy was removed", target,
                          (int) cancelled, img->cur_path);
            return -2;
        }
        r = virDomainGetBlockJobInfo(dom, target, &info, 0);
        if (r < 0) {
            vqm_virt_error(err, VQM_ERR_LIBVIRT, "block copy of disk %s",
                           target);
            abandon_copy(dom, target, dest);
            return -1;
        }
        if (r == 0) {
            abandon_copy(dom, target, dest);
            return vqm_error_set(err, VQM_ERR_LIBVIRT, "the block copy of "
                                 "disk %s ended before it was ready "
                                 "(aborted or failed; see the libvirt "
                                 "log): the domain keeps running on '%s'",
                                 target, img->cur_path);
        }
        if (info.cur != last_cur) {
            last_cur = info.cur;
            last_progress = vqm_now();
        } else if (vqm_now() - last_progress > stall) {
            abandon_copy(dom, target, dest);
            return vqm_error_set(err, VQM_ERR_LIBVIRT, "the block copy of "
                                 "disk %s made no progress for %u s: "
                                 "aborted, the domain keeps running on "
                                 "'%s'", target, stall, img->cur_path);
        }
        if (run->opts.progress && info.end > 0)
            run->opts.progress(run->opts.progress_opaque, img, info.cur,
                               info.end);
        if (info.end > 0 && info.cur == info.end
            && live_disk_get(dom, target, &ld) == 0 && ld.mirror_ready)
            return 0;
        usleep(100000);
    }
}

/* Pivot disk target to dest (synchronous: returns when QEMU switched)
 * and check that it runs from it.  0, or -1 with err set. */
static int
pivot(virDomainPtr dom, const char *target, const char *dest,
      struct vqm_error *err)
{
    CLEANUP_LIVE_DISK struct live_disk ld = { 0 };

    if (virDomainBlockJobAbort(dom, target,
                               VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT) < 0) {
        vqm_virt_error(err, VQM_ERR_LIBVIRT, "cannot pivot disk %s to '%s'",
                       target, dest);
        /* Unless it did switch after all. */
        if (live_disk_get(dom, target, &ld) < 0 || !ld.source
            || strcmp(ld.source, dest) != 0) {
            abandon_copy(dom, target, dest);
            return -1;
        }
    }
    if (wait_job_gone(dom, target, JOB_END_TIMEOUT) < 0)
        return vqm_error_set(err, VQM_ERR_LIBVIRT, "the block job on disk "
                             "%s did not end after the pivot", target);
    if (live_disk_get(dom, target, &ld) < 0 || !ld.source
        || strcmp(ld.source, dest) != 0 || !ld.format
        || strcmp(ld.format, "qcow2") != 0) {
        return vqm_error_set(err, VQM_ERR_LIBVIRT, "after the pivot disk "
                             "%s runs from '%s' (%s), not from '%s' "
                             "(qcow2)", target, ld.source ? ld.source : "?",
                             ld.format ? ld.format : "?", dest);
    }
    return 0;
}

/* Copy one disk and pivot.  Returns 0 done, -1 failed (err set; the
 * domain still runs on the QED disk and the copy is gone), -2 cancelled
 * (same state). */
static int
copy_disk(struct vqm_virt_run *run, virDomainPtr dom, bool persistent,
          const char *target, struct vqm_vimage *img, struct vqm_error *err)
{
    int r;

    if (start_copy(run, dom, persistent, target, img, err) < 0)
        return -1;
    if ((r = wait_mirror_ready(run, dom, target, img, err)) < 0)
        return r;
    return pivot(dom, target, img->new_path, err);
}

/* The copy as QEMU left it: qcow2, same size, same backing file. */
static int
check_copy(struct vqm_vimage *img, struct vqm_error *err)
{
    CLEANUP_PROBE struct vqm_probe p = { 0 };

    if (vqm_probe_file(img->new_path, &p, err) < 0)
        return -1;
    if (strcmp(p.format, "qcow2") != 0)
        return vqm_error_set(err, VQM_ERR_CORRUPT, "the copy '%s' is %s, "
                             "not qcow2", img->new_path, p.format);
    if (img->virtual_size && p.virtual_size != img->virtual_size)
        return vqm_error_set(err, VQM_ERR_CORRUPT, "the copy '%s' has %llu "
                             "bytes, the source %llu", img->new_path,
                             (unsigned long long) p.virtual_size,
                             (unsigned long long) img->virtual_size);
    if (!img->backing != !p.backing_name)
        return vqm_error_set(err, VQM_ERR_CORRUPT, "the copy '%s' %s a "
                             "backing file", img->new_path,
                             p.backing_name ? "has" : "lost");
    return 0;
}

/* Right after the pivots, give the persistent definition its final form
 * (libvirt 9.0 rewrote it at the pivot, turning volume disks into file
 * disks), so that an interruption later in the run does not leave it so.
 * The usual redefinition after all conversions writes the same XML. */
static int
define_now(struct vqm_virt_run *run, struct vqm_vdomain *d, virDomainPtr dom,
           struct vqm_error *err)
{
    CLEANUP_FREE char *xml = NULL;
    struct vqm_error e = { 0 };
    CLEANUP_VIR_DOMAIN virDomainPtr nd = NULL;
    size_t k, i;
    int seq;

    for (k = 0; k < d->n_disks; k++) {
        const struct vqm_vimage *img = d->disks[k].image;
        CLEANUP_VIR_POOL virStoragePoolPtr p = NULL;

        if (!img || !img->live || img->outcome != VQM_OUTCOME_DONE
            || !img->pool)
            continue;
        for (i = 0; i < k; i++)
            if (d->disks[i].image && d->disks[i].image->pool
                && strcmp(d->disks[i].image->pool, img->pool) == 0)
                break;
        if (i < k)
            continue;
        if ((p = virStoragePoolLookupByName(virDomainGetConnect(dom),
                                            img->pool)))
            virStoragePoolRefresh(p, 0);
        virResetLastError();
    }
    if (vqm_virt_domain_xml(run, d, false, &xml, &e) < 0 || !xml)
        return 0;        /* the redefinition after the conversions says */
    if ((seq = vqm_journal_begin(run->journal, "define", d->uuid, d->name,
                                 NULL, err)) < 0)
        return -1;
    nd = virDomainDefineXMLFlags(virDomainGetConnect(dom), xml,
                                 VIR_DOMAIN_DEFINE_VALIDATE);
    if (!nd) {
        vqm_virt_error(&e, VQM_ERR_LIBVIRT, "cannot redefine domain '%s'",
                       d->name);
        return vqm_journal_fail(run->journal, seq, e.msg, err);
    }
    return vqm_journal_done(run->journal, seq, err);
}

/* QEMU created the copy (mode 0600, the daemon's user): give it the
 * source's mode, owner and group, as the conversion engine does, so that
 * whoever could use the QED file can use the qcow2 one.  Through a
 * descriptor opened without following a link, so that a link put in
 * its place is never chown'ed.  Best effort. */
static void
copy_ownership(struct vqm_vimage *img)
{
    struct stat src, dst;
    CLEANUP_CLOSE int fd = -1;

    if (stat(img->cur_path, &src) < 0)
        return;
    fd = open(img->new_path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC
              | O_NOCTTY);
    if (fd < 0)
        return;
    if (fstat(fd, &dst) < 0 || !S_ISREG(dst.st_mode))
        return;
    if ((src.st_uid != dst.st_uid || src.st_gid != dst.st_gid)
        && fchown(fd, src.st_uid, src.st_gid) < 0)
        vqm_debug("cannot chown '%s': %m", img->new_path);
    if ((src.st_mode & 07777) != (dst.st_mode & 07777)
        && fchmod(fd, src.st_mode & 07777) < 0)
        vqm_debug("cannot chmod '%s': %m", img->new_path);
}

int
vqm_live_execute(struct vqm_virt_run *run, struct vqm_vdomain *d,
                 struct vqm_error *err)
{
    CLEANUP_VIR_DOMAIN virDomainPtr dom =
        virDomainLookupByUUIDString(run->conn, d->uuid);
    bool persistent;
    size_t k, done = 0;
    int ret = 0;

    if (!dom || virDomainIsActive(dom) != 1) {
        for (k = 0; k < d->n_disks; k++) {
            struct vqm_vimage *img = d->disks[k].image;
            if (img && img->live && img->outcome == VQM_OUTCOME_PLANNED)
                block(img, "domain '%s' is not running any more", d->name);
        }
        virResetLastError();
        return 0;
    }
    persistent = virDomainIsPersistent(dom) == 1;

    for (k = 0; k < d->n_disks; k++) {
        struct vqm_vdisk *dk = &d->disks[k];
        struct vqm_vimage *img = dk->image;
        struct vqm_error e = { 0 };
        struct sigsave ss;
        struct stat st;
        double t0 = vqm_now();
        int seq, r;

        if (!img || !img->live || img->outcome != VQM_OUTCOME_PLANNED)
            continue;
        seq = vqm_journal_begin(run->journal, "blockcopy", d->uuid,
                                dk->target, img->new_path, err);
        if (seq < 0) {
            ret = -1;
            break;
        }
        signals_catch(&ss);
        r = copy_disk(run, dom, persistent, dk->target, img, &e);
        signals_restore(&ss);
        if (r == 0 && check_copy(img, &e) < 0)
            r = -1;             /* pivoted: the domain runs from it */
        img->seconds = vqm_now() - t0;
        if (r < 0) {
            img->outcome = VQM_OUTCOME_FAILED;
            snprintf(img->reason, sizeof img->reason, "%s", e.msg);
            if (vqm_journal_fail(run->journal, seq, e.msg, err) < 0) {
                ret = -1;
                break;
            }
            if (r == -2) {
                vqm_error_set(err, e.code, "%s", e.msg);
                ret = -1;
                break;
            }
            continue;
        }
        if (vqm_journal_done(run->journal, seq, err) < 0) {
            ret = -1;
            break;
        }
        img->outcome = VQM_OUTCOME_DONE;
        /* QEMU mirrored every write and pivoted; check_copy() checked
         * the header.  (The data may differ from the QED file: the guest
         * went on writing.)  That is what --remove-source needs. */
        img->verified = true;
        copy_ownership(img);
        if (stat(img->new_path, &st) == 0)
            img->new_file_size = (uint64_t) st.st_size;
        snprintf(img->note, sizeof img->note, "copied live%s, source kept",
                 img->backing ? " (shallow: backing file kept)" : "");
        done++;
    }
    if (ret == 0 && done && persistent && define_now(run, d, dom, err) < 0)
        ret = -1;
    return ret;
}
