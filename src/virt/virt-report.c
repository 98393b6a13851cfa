/* virt-qed-migrate: the machine-readable report (--report FILE).
 *
 * One XML document per run, valid against xml/report.rng: every image
 * the run looked at that is in scope or changed, every domain in scope or
 * affected with all of its disks, with action, outcome, sizes, timings
 * and reasons.  Written to a new temporary of an unpredictable name in
 * FILE's directory (created with O_EXCL, so a link planted there is
 * never followed), synced and renamed over FILE, so a reader never sees
 * half a report and a link at FILE is replaced, not followed.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "domxml/xml-cleanup.h"
#include "virt-internal.h"
#include "vqm-io.h"

static void
iso_time(double t, char *buf, size_t len)
{
    time_t s = (time_t) t;
    struct tm tm;

    gmtime_r(&s, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Every xmlTextWriter call returns < 0 on failure. */
#define W(call) do { if ((call) < 0) return -1; } while (0)

static int
attr_u64(xmlTextWriterPtr w, const char *name, uint64_t v)
{
    return xmlTextWriterWriteFormatAttribute(w, BAD_CAST name, "%llu",
                                             (unsigned long long) v);
}

static int
attr_s(xmlTextWriterPtr w, const char *name, const char *v)
{
    if (!v)
        return 0;
    return xmlTextWriterWriteAttribute(w, BAD_CAST name, BAD_CAST v);
}

static const char *
image_action(const struct vqm_virt_run *run, const struct vqm_vimage *img)
{
    if (!img->migrate)
        return "none";
    if (img->live)
        return "live-copy";         /* virt-live.c */
    if (!img->convert)
        return "finish";            /* converted by an interrupted run */
    return img->copy ? "convert-copy" : "convert-in-place";
}

static int
write_image(xmlTextWriterPtr w, const struct vqm_virt_run *run,
            const struct vqm_vimage *img)
{
    char secs[32];

    W(xmlTextWriterStartElement(w, BAD_CAST "image"));
    W(attr_s(w, "path", img->path));
    if (strcmp(img->new_path, img->path) != 0)
        W(attr_s(w, "new-path", img->new_path));
    W(attr_s(w, "format", img->format ? img->format : "unknown"));
    if (img->migrate)
        W(attr_s(w, "new-format", "qcow2"));
    W(attr_s(w, "action", image_action(run, img)));
    W(attr_s(w, "outcome", vqm_outcome_name(img->outcome)));
    if (img->pool) {
        W(attr_s(w, "pool", img->pool));
        W(attr_s(w, "volume", img->volume));
    }
    if (img->backing)
        W(attr_s(w, "backing", img->backing->path));
    W(attr_u64(w, "virtual-size", img->virtual_size));
    W(attr_u64(w, "file-size", img->file_size));
    if (img->new_file_size)
        W(attr_u64(w, "new-file-size", img->new_file_size));
    if (img->verified && img->migrate)
        W(attr_s(w, "verified", "yes"));
    if (img->recovered)
        W(attr_s(w, "recovered", "yes"));
    snprintf(secs, sizeof secs, "%.3f", img->seconds);
    W(attr_s(w, "seconds", secs));
    if (img->note[0])
        W(xmlTextWriterWriteElement(w, BAD_CAST "note", BAD_CAST img->note));
    if (img->reason[0] && img->migrate)
        W(xmlTextWriterWriteElement(w, BAD_CAST "reason",
                                    BAD_CAST img->reason));
    W(xmlTextWriterEndElement(w));
    return 0;
}

static int
write_domain(xmlTextWriterPtr w, const struct vqm_vdomain *d)
{
    size_t k;
    char secs[32];

    W(xmlTextWriterStartElement(w, BAD_CAST "domain"));
    W(attr_s(w, "name", d->name));
    W(attr_s(w, "uuid", d->uuid));
    /* the state before the run */
    W(attr_s(w, "state", d->active || d->shut_down ? "running"
             : "shut-off"));
    W(attr_s(w, "persistent", d->persistent ? "yes" : "no"));
    if (d->managed_save)
        W(attr_s(w, "managed-save", "yes"));
    W(attr_s(w, "action", d->affected ? "redefine" : "none"));
    W(attr_s(w, "outcome", vqm_outcome_name(d->outcome)));
    if (d->shut_down)
        W(attr_s(w, "shut-down", "yes"));
    if (d->restarted)
        W(attr_s(w, "restarted", "yes"));
    if (d->forced_off)
        W(attr_s(w, "forced-off", "yes"));
    if (d->recovered)
        W(attr_s(w, "recovered", "yes"));
    snprintf(secs, sizeof secs, "%.3f", d->seconds);
    W(attr_s(w, "seconds", secs));
    if (d->reason[0])
        W(xmlTextWriterWriteElement(w, BAD_CAST "reason",
                                    BAD_CAST d->reason));
    for (k = 0; k < d->n_disks; k++) {
        const struct vqm_vdisk *dk = &d->disks[k];
        const struct vqm_vimage *c;

        W(xmlTextWriterStartElement(w, BAD_CAST "disk"));
        W(attr_s(w, "target", dk->target));
        W(attr_s(w, "device", dk->device));
        W(attr_s(w, "type", dk->type));
        if (dk->source)
            W(attr_s(w, "source", dk->source));
        if (dk->new_source)
            W(attr_s(w, "new-source", dk->new_source));
        W(attr_s(w, "format", dk->xml_format ? dk->xml_format : "none"));
        if (dk->image && dk->image->migrate
            && dk->image->outcome == VQM_OUTCOME_DONE
            && dk->outcome == VQM_OUTCOME_DONE)
            W(attr_s(w, "new-format", "qcow2"));
        W(attr_s(w, "action", dk->has_qed ? "convert" : "left-alone"));
        W(attr_s(w, "outcome", vqm_outcome_name(dk->outcome)));
        if (dk->reason[0])
            W(xmlTextWriterWriteElement(w, BAD_CAST "reason",
                                        BAD_CAST dk->reason));
        for (c = dk->image; c; c = c->backing) {
            W(xmlTextWriterStartElement(w, BAD_CAST "layer"));
            W(attr_s(w, "path", c->path));
            W(attr_s(w, "format", c->format ? c->format : "unknown"));
            W(xmlTextWriterEndElement(w));
        }
        W(xmlTextWriterEndElement(w));
    }
    W(xmlTextWriterEndElement(w));
    return 0;
}

/* <report> and its attributes. */
static int
write_report_start(xmlTextWriterPtr w, const struct vqm_virt_run *run,
                   int exit_status)
{
    double end = run->end ? run->end : vqm_now();
    char t0[32], t1[32], secs[32];
    size_t i;

    iso_time(run->start, t0, sizeof t0);
    iso_time(end, t1, sizeof t1);
    snprintf(secs, sizeof secs, "%.3f", end - run->start);

    W(xmlTextWriterStartDocument(w, NULL, "UTF-8", NULL));
    W(xmlTextWriterStartElement(w, BAD_CAST "report"));
    W(attr_s(w, "version", "1"));
    W(attr_s(w, "program", PACKAGE_NAME " " PACKAGE_VERSION));
    W(attr_s(w, "uri", run->uri ? run->uri : ""));
    W(attr_s(w, "dry-run", run->dry_run ? "yes" : "no"));
    W(attr_s(w, "start", t0));
    W(attr_s(w, "end", t1));
    W(attr_s(w, "seconds", secs));
    W(xmlTextWriterWriteFormatAttribute(w, BAD_CAST "exit-status", "%d",
                                        exit_status));
    for (i = 0; i < run->n_warnings; i++)
        W(xmlTextWriterWriteElement(w, BAD_CAST "warning",
                                    BAD_CAST run->warnings[i]));
    return 0;
}

/* <summary>: the counts of the printed summary (planned ones in a dry
 * run). */
static int
write_summary(xmlTextWriterPtr w, const struct vqm_virt_run *run)
{
    struct vqm_virt_counts c;

    W(xmlTextWriterStartElement(w, BAD_CAST "summary"));
    vqm_virt_count(run, &c);
    W(attr_u64(w, "images-converted", c.images_converted));
    W(attr_u64(w, "images-skipped", c.images_skipped));
    W(attr_u64(w, "images-failed", c.images_failed));
    W(attr_u64(w, "domains-redefined", c.domains_rewritten));
    W(attr_u64(w, "domains-skipped", c.domains_skipped));
    W(attr_u64(w, "domains-failed", c.domains_failed));
    W(attr_u64(w, "disks-rewritten", c.disks_rewritten));
    W(attr_u64(w, "disks-skipped", c.disks_skipped));
    W(attr_u64(w, "disks-failed", c.disks_failed));
    W(attr_u64(w, "disks-left-alone", c.disks_left_alone));
    W(xmlTextWriterEndElement(w));
    return 0;
}

/* The whole document, written to fd (the temporary, not synced; its
 * mode follows the umask).  The writer is flushed and freed on
 * return. */
static int
write_report_fd(int fd, const struct vqm_virt_run *run, int exit_status)
{
    CLEANUP_XML_TEXT_WRITER xmlTextWriterPtr w = NULL;
    xmlOutputBufferPtr ob;
    mode_t mask;
    size_t i;

    mask = umask(0);
    umask(mask);
    if (fchmod(fd, 0666 & ~mask) < 0)
        return -1;
    /* Does not close fd. */
    if (!(ob = xmlOutputBufferCreateFd(fd, NULL)))
        return -1;
    if (!(w = xmlNewTextWriter(ob))) {
        xmlOutputBufferClose(ob);
        return -1;
    }
    xmlTextWriterSetIndent(w, 1);
    xmlTextWriterSetIndentString(w, BAD_CAST "  ");

    W(write_report_start(w, run, exit_status));
    for (i = 0; i < run->n_images; i++) {
        const struct vqm_vimage *img = run->images[i];
        if (!img->in_scope && !img->migrate)
            continue;
        W(write_image(w, run, img));
    }
    for (i = 0; i < run->n_domains; i++) {
        const struct vqm_vdomain *d = &run->domains[i];
        if (!vqm_virt_domain_shown(d))
            continue;
        W(write_domain(w, d));
    }
    W(write_summary(w, run));
    W(xmlTextWriterEndElement(w));
    W(xmlTextWriterEndDocument(w));
    return 0;
}

int
vqm_virt_write_report(const struct vqm_virt_run *run, const char *path,
                      int exit_status, struct vqm_error *err)
{
    CLEANUP_FREE char *dcopy = strdup(path);
    CLEANUP_FREE char *bcopy = strdup(path);
    CLEANUP_CLOSE int dfd = -1;
    CLEANUP_CLOSE int fd = -1;
    char tmp[64];
    const char *base;

    if (!dcopy || !bcopy)
        return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    base = basename(bcopy);
    if (!*base || strcmp(base, "/") == 0 || strcmp(base, ".") == 0
        || strcmp(base, "..") == 0)
        return vqm_error_set(err, VQM_ERR_INVALID, "report '%s' is not a "
                             "file name", path);
    dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return vqm_error_set_errno(err, errno, "cannot write report '%s'",
                                   path);
    if ((fd = vqm_create_temp(dfd, ".report-", tmp, sizeof tmp, err)) < 0)
        return vqm_error_prefix(err, "cannot write report '%s'", path);
    if (write_report_fd(fd, run, exit_status) < 0) {
        unlinkat(dfd, tmp, 0);
        return vqm_error_set(err, VQM_ERR_IO, "cannot write report '%s'",
                             path);
    }
    if (fsync(fd) < 0 || renameat(dfd, tmp, dfd, base) < 0) {
        vqm_error_set_errno(err, errno, "cannot write report '%s'", path);
        unlinkat(dfd, tmp, 0);
        return -1;
    }
    fsync(dfd);
    return 0;
}
