/* virt-qed-migrate: the machine-readable report (--report FILE).
 *
 * One XML document per run, valid against xml/report.rng: every image
 * the run looked at that is in scope or changed, every domain in scope or
 * affected with all of its disks, with action, outcome, sizes, timings
 * and reasons.  Written to FILE.tmp and renamed, so a reader never sees
 * half a report.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <libxml/xmlwriter.h>

#include "cleanup.h"
#include "virt-internal.h"

static void
iso_time(double t, char *buf, size_t len)
{
    time_t s = (time_t) t;
    struct tm tm;

    gmtime_r(&s, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

#define W(call) do { if ((call) < 0) goto fail; } while (0)

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
 fail:
    return -1;
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
 fail:
    return -1;
}

int
vqm_virt_write_report(const struct vqm_virt_run *run, const char *path,
                      int exit_status, struct vqm_error *err)
{
    xmlTextWriterPtr w = NULL;
    CLEANUP_FREE char *tmp = NULL;
    char t0[32], t1[32], secs[32];
    size_t i, conv = 0, skip = 0, failed = 0, doms = 0;
    double end = run->end ? run->end : vqm_now();

    if (asprintf(&tmp, "%s.tmp", path) < 0)
        return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    if (!(w = xmlNewTextWriterFilename(tmp, 0)))
        return vqm_error_set(err, VQM_ERR_IO, "cannot write report '%s'",
                             path);
    xmlTextWriterSetIndent(w, 1);
    xmlTextWriterSetIndentString(w, BAD_CAST "  ");
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
    for (i = 0; i < run->n_images; i++) {
        const struct vqm_vimage *img = run->images[i];
        if (!img->in_scope && !img->migrate)
            continue;
        if (img->migrate && img->outcome == VQM_OUTCOME_DONE)
            conv++;
        if (img->outcome == VQM_OUTCOME_SKIPPED)
            skip++;
        if (img->outcome == VQM_OUTCOME_FAILED)
            failed++;
        W(write_image(w, run, img));
    }
    for (i = 0; i < run->n_domains; i++) {
        const struct vqm_vdomain *d = &run->domains[i];
        if (!d->in_scope && !d->involved && d->outcome == VQM_OUTCOME_NONE)
            continue;
        if (d->outcome == VQM_OUTCOME_DONE)
            doms++;
        W(write_domain(w, d));
    }
    W(xmlTextWriterStartElement(w, BAD_CAST "summary"));
    W(attr_u64(w, "images-converted", conv));
    W(attr_u64(w, "images-skipped", skip));
    W(attr_u64(w, "images-failed", failed));
    W(attr_u64(w, "domains-redefined", doms));
    W(xmlTextWriterEndElement(w));
    W(xmlTextWriterEndElement(w));
    W(xmlTextWriterEndDocument(w));
    xmlFreeTextWriter(w);
    if (rename(tmp, path) < 0)
        return vqm_error_set_errno(err, errno, "cannot write report '%s'",
                                   path);
    return 0;

 fail:
    xmlFreeTextWriter(w);
    remove(tmp);
    return vqm_error_set(err, VQM_ERR_IO, "cannot write report '%s'", path);
}
