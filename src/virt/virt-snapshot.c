/* virt-qed-migrate: snapshots, checkpoints and saved state (see
 * virt-snapshot.h).
 *
 * Invariant: nothing here runs before the images it names are converted
 * (the caller runs it after the definitions were rewritten), and every
 * rewrite is idempotent: a source is changed only when it names a file
 * this run (or an interrupted one, through the journal) converted, so a
 * rerun after an interruption finishes what is left.
 */
#include <config.h>

#include <errno.h>
#include <libgen.h>
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
#include "convert/convert.h"
#include "virt-internal.h"
#include "virt-snapshot.h"
#include "domxml/domxml.h"
#include "vqm-debug.h"

static bool
is_elem(xmlNodePtr n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && !n->ns
        && strcmp((const char *) n->name, name) == 0;
}

static xmlDocPtr
parse(const char *xml)
{
    return vqm_xml_read(xml, strlen(xml), "snapshot XML", NULL, NULL);
}

/* ---- the run's mapping of converted images ---- */

static bool
converted(const struct vqm_vimage *img)
{
    return img->migrate && img->outcome == VQM_OUTCOME_DONE;
}

static const char *
run_lookup(void *opaque, const char *path, const char *pool,
           const char *volume)
{
    struct vqm_virt_run *run = opaque;
    size_t i;

    for (i = 0; i < run->n_images; i++) {
        const struct vqm_vimage *img = run->images[i];

        if (!converted(img))
            continue;
        if (path && (strcmp(path, img->path) == 0
                     || strcmp(path, img->cur_path) == 0))
            return img->new_path;
        if (!path && img->pool && img->volume
            && strcmp(pool, img->pool) == 0
            && strcmp(volume, img->volume) == 0)
            return img->new_path;
    }
    /* Renamed by an interrupted run that did not get this far. */
    if (path && run->journal) {
        const char *r = vqm_journal_renamed(run->journal, path);
        CLEANUP_PROBE struct vqm_probe p = { 0 };

        if (r && vqm_probe_file(r, &p, NULL) == 0
            && strcmp(p.format, "qcow2") == 0)
            return r;
    }
    return NULL;
}

/* The module's lookup: a layer moves when it names a converted image. */
static bool
move_converted(void *opaque, const struct vqm_domxml_disk *disk,
               unsigned depth, const struct vqm_domxml_layer *l,
               struct vqm_domxml_move *mv)
{
    const char *np;

    (void) disk;
    (void) depth;
    if (l->path)
        np = run_lookup(opaque, l->path, NULL, NULL);
    else if (l->pool && l->volume)
        np = run_lookup(opaque, NULL, l->pool, l->volume);
    else
        return false;
    if (!np)
        return false;
    if (l->path) {
        mv->new_path = np;
    } else {
        /* A volume keeps its pool; its name is the new file name. */
        const char *slash = strrchr(np, '/');
        mv->new_volume = slash ? slash + 1 : np;
    }
    mv->new_format = "qcow2";
    return true;
}

/* Rewrite every disk and backing layer of xml (a <domain> or a
 * <domainsnapshot>) naming a converted image.  *out is malloc'd when
 * *changed > 0, else NULL.  0 or -1. */
static int
rewrite_xml(struct vqm_virt_run *run, const char *xml, char **out,
            size_t *changed, struct vqm_error *err)
{
    CLEANUP_DOMXML struct vqm_domxml *x = NULL;

    *out = NULL;
    *changed = 0;
    if (vqm_domxml_parse(xml, strlen(xml), NULL, &x, err) < 0
        || vqm_domxml_rewrite(x, move_converted, run, changed, err) < 0
        || (*changed > 0 && vqm_domxml_format(x, out, err) < 0))
        return -1;
    return 0;
}

/* ---- planning ---- */

void
vqm_snapshot_plan(struct vqm_virt_run *run)
{
    size_t i, j;

    for (i = 0; i < run->n_domains; i++) {
        struct vqm_vdomain *d = &run->domains[i];
        CLEANUP_VIR_DOMAIN virDomainPtr dom = NULL;
        bool any = false;
        int nck, nsn;

        for (j = 0; j < run->n_images; j++)
            if (run->images[j]->convert
                && run->images[j]->outcome == VQM_OUTCOME_PLANNED
                && vqm_virt_domain_uses(d, run->images[j]))
                any = true;
        if (!any || d->outcome == VQM_OUTCOME_SKIPPED)
            continue;
        if (!(dom = virDomainLookupByUUIDString(run->conn, d->uuid))) {
            virResetLastError();
            continue;
        }
        nck = virDomainListAllCheckpoints(dom, NULL, 0);
        nsn = virDomainSnapshotNum(dom, 0);
        virResetLastError();
        if (nck > 0) {
            d->outcome = VQM_OUTCOME_SKIPPED;
            snprintf(d->reason, sizeof d->reason, "has %d checkpoint(s), "
                     "which cannot be carried over to converted disks: "
                     "delete them first ('virsh checkpoint-delete %s NAME "
                     "--metadata')", nck, d->name);
            for (j = 0; j < run->n_images; j++) {
                struct vqm_vimage *img = run->images[j];
                if (img->convert && img->outcome == VQM_OUTCOME_PLANNED
                    && vqm_virt_domain_uses(d, img)) {
                    img->outcome = VQM_OUTCOME_SKIPPED;
                    img->live = false;
                    snprintf(img->reason, sizeof img->reason, "used by "
                             "domain '%s', which has checkpoints", d->name);
                }
            }
            continue;
        }
        if (nsn > 0)
            vqm_virt_warn(run, "domain '%s': %d snapshot(s) naming its QED "
                        "disks will be redefined after the conversion",
                        d->name, nsn);
        if (d->managed_save)
            vqm_virt_warn(run, "domain '%s': its managed-save image will be "
                        "rewritten to resume on the converted disks",
                        d->name);
    }
}

/* ---- execution ---- */

static void
fail_domain(struct vqm_vdomain *d, const struct vqm_error *e)
{
    d->outcome = VQM_OUTCOME_FAILED;
    snprintf(d->reason, sizeof d->reason, "%s", e->msg);
}

static bool
in_graph(const struct vqm_virt_run *run, const char *path)
{
    size_t i;

    for (i = 0; i < run->n_images; i++)
        if (strcmp(run->images[i]->path, path) == 0
            || strcmp(run->images[i]->cur_path, path) == 0)
            return true;
    return false;
}

/* Overlays named by a snapshot's <disks> but by no definition: the
 * image graph did not see them, so their backing reference is
 * rewritten here. */
static int
rebase_overlays(struct vqm_virt_run *run, const char *sxml,
                struct vqm_error *err)
{
    CLEANUP_XMLDOC xmlDocPtr doc = parse(sxml);
    xmlNodePtr disks, c;
    int ret = 0;

    if (!doc)
        return 0;
    disks = vqm_xml_child(xmlDocGetRootElement(doc), "disks");
    for (c = disks ? disks->children : NULL; c && ret == 0; c = c->next) {
        CLEANUP_FREE char *ov = NULL;
        CLEANUP_FREE char *bpath = NULL;
        CLEANUP_FREE char *name = NULL;
        CLEANUP_FREE char *dir = NULL;
        CLEANUP_PROBE struct vqm_probe p = { 0 };
        struct vqm_error e = { 0 };
        const char *np;
        int seq;

        if (!is_elem(c, "disk")
            || !(ov = vqm_xml_attr(vqm_xml_child(c, "source"), "file"))
            || in_graph(run, ov))
            continue;
        if (vqm_probe_file(ov, &p, NULL) < 0)
            continue;
        if (strcmp(p.format, "qcow2") != 0 || !p.backing_name)
            continue;
        dir = strdup(ov);
        if (!dir || (p.backing_name[0] == '/'
                     ? !(bpath = strdup(p.backing_name))
                     : asprintf(&bpath, "%s/%s", dirname(dir),
                                p.backing_name) < 0)) {
            bpath = NULL;
            continue;
        }
        np = run_lookup(run, bpath, NULL, NULL);
        if (!np || (p.backing_format && strcmp(p.backing_format, "qcow2") == 0
                    && strcmp(np, bpath) == 0))
            continue;
        name = strcmp(np, bpath) != 0 ? vqm_virt_moved_name(p.backing_name, np)
            : strdup(p.backing_name);
        if (!name)
            continue;
        seq = vqm_journal_begin(run->journal, "rebase", ov, name, "qcow2",
                                err);
        if (seq < 0) {
            ret = -1;
            break;
        }
        if (vqm_qcow2_set_backing(ov, name, "qcow2", &e) < 0) {
            vqm_debug("cannot rebase '%s': %s", ov, e.msg);
            if (vqm_journal_fail(run->journal, seq, e.msg, err) < 0)
                ret = -1;
            continue;
        }
        if (vqm_journal_done(run->journal, seq, err) < 0)
            ret = -1;
    }
    return ret;
}

/* The memory file of an external snapshot embeds a definition too. */
static int
fix_memory_file(struct vqm_virt_run *run, struct vqm_vdomain *d,
                const char *sxml, struct vqm_error *err)
{
    CLEANUP_XMLDOC xmlDocPtr doc = parse(sxml);
    CLEANUP_FREE char *file = NULL;
    CLEANUP_FREE char *xml = NULL;
    CLEANUP_FREE char *nxml = NULL;
    struct vqm_error e = { 0 };
    size_t n;
    int seq;

    if (!doc)
        return 0;
    file = vqm_xml_attr(vqm_xml_child(xmlDocGetRootElement(doc), "memory"),
                        "file");
    if (!file)
        return 0;
    xml = virDomainSaveImageGetXMLDesc(run->conn, file,
                                       VIR_DOMAIN_SAVE_IMAGE_XML_SECURE);
    if (!xml) {
        virResetLastError();
        return 0;
    }
    if (rewrite_xml(run, xml, &nxml, &n, &e) < 0
        || n == 0)
        return 0;
    if ((seq = vqm_journal_begin(run->journal, "saveimage", file, NULL,
                                 NULL, err)) < 0)
        return -1;
    if (virDomainSaveImageDefineXML(run->conn, file, nxml, 0) < 0) {
        vqm_virt_error(&e, VQM_ERR_LIBVIRT, "cannot rewrite the definition "
                       "saved in '%s'", file);
        fail_domain(d, &e);
        return vqm_journal_fail(run->journal, seq, e.msg, err);
    }
    return vqm_journal_done(run->journal, seq, err);
}

static int
fix_snapshots(struct vqm_virt_run *run, struct vqm_vdomain *d,
              virDomainPtr dom, struct vqm_error *err)
{
    CLEANUP_VIR_SNAPSHOT_LIST struct vqm_vir_snapshot_list snaps =
        { NULL, 0 };
    int i, ret = 0;

    snaps.n = virDomainListAllSnapshots(dom, &snaps.v,
                                        VIR_DOMAIN_SNAPSHOT_LIST_TOPOLOGICAL);
    if (snaps.n < 0) {
        virResetLastError();
        return 0;
    }
    for (i = 0; i < snaps.n && ret == 0; i++) {
        const char *name = virDomainSnapshotGetName(snaps.v[i]);
        CLEANUP_FREE char *xml = NULL;
        CLEANUP_FREE char *nxml = NULL;
        struct vqm_error e = { 0 };
        CLEANUP_VIR_DOMAIN_SNAPSHOT virDomainSnapshotPtr s = NULL;
        unsigned flags = VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE;
        size_t n;
        int seq;

        xml = virDomainSnapshotGetXMLDesc(snaps.v[i],
                                          VIR_DOMAIN_SNAPSHOT_XML_SECURE);
        if (!xml) {
            vqm_virt_error(&e, VQM_ERR_LIBVIRT, "cannot read snapshot '%s'",
                           name);
            fail_domain(d, &e);
            continue;
        }
        if (rebase_overlays(run, xml, err) < 0
            || fix_memory_file(run, d, xml, err) < 0) {
            ret = -1;
            break;
        }
        if (rewrite_xml(run, xml, &nxml, &n, &e) < 0) {
            vqm_error_prefix(&e, "snapshot '%s'", name);
            fail_domain(d, &e);
            continue;
        }
        if (n == 0)
            continue;
        if (virDomainSnapshotIsCurrent(snaps.v[i], 0) == 1)
            flags |= VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT;
        if ((seq = vqm_journal_begin(run->journal, "snapshot", d->uuid,
                                     name, NULL, err)) < 0) {
            ret = -1;
            break;
        }
        vqm_debug("redefining snapshot '%s' of '%s' (%zu source(s))", name,
                  d->name, n);
        if (!(s = virDomainSnapshotCreateXML(dom, nxml, flags))) {
            vqm_virt_error(&e, VQM_ERR_LIBVIRT, "cannot redefine snapshot "
                           "'%s' of domain '%s'", name, d->name);
            fail_domain(d, &e);
            if (vqm_journal_fail(run->journal, seq, e.msg, err) < 0)
                ret = -1;
            continue;
        }
        if (vqm_journal_done(run->journal, seq, err) < 0)
            ret = -1;
    }
    return ret;
}

static int
fix_managed_save(struct vqm_virt_run *run, struct vqm_vdomain *d,
                 virDomainPtr dom, struct vqm_error *err)
{
    CLEANUP_FREE char *xml = NULL;
    CLEANUP_FREE char *nxml = NULL;
    struct vqm_error e = { 0 };
    size_t n;
    int seq;

    if (virDomainHasManagedSaveImage(dom, 0) != 1) {
        virResetLastError();
        return 0;
    }
    xml = virDomainManagedSaveGetXMLDesc(dom,
                                         VIR_DOMAIN_SAVE_IMAGE_XML_SECURE);
    if (!xml) {
        vqm_virt_error(&e, VQM_ERR_LIBVIRT, "cannot read the managed-save "
                       "image of domain '%s'", d->name);
        fail_domain(d, &e);
        return 0;
    }
    if (rewrite_xml(run, xml, &nxml, &n, &e) < 0) {
        fail_domain(d, &e);
        return 0;
    }
    if (n == 0)
        return 0;
    if ((seq = vqm_journal_begin(run->journal, "managedsave", d->uuid,
                                 d->name, NULL, err)) < 0)
        return -1;
    if (virDomainManagedSaveDefineXML(dom, nxml, 0) < 0) {
        vqm_virt_error(&e, VQM_ERR_LIBVIRT, "cannot rewrite the managed-save "
                       "image of domain '%s' (it would resume on the QED "
                       "disk: remove it with 'virsh managedsave-remove %s')",
                       d->name, d->name);
        fail_domain(d, &e);
        return vqm_journal_fail(run->journal, seq, e.msg, err);
    }
    return vqm_journal_done(run->journal, seq, err);
}

int
vqm_snapshot_execute(struct vqm_virt_run *run, struct vqm_vdomain *d,
                     struct vqm_error *err)
{
    CLEANUP_VIR_DOMAIN virDomainPtr dom = NULL;
    size_t i;
    bool any = false;

    for (i = 0; i < run->n_images; i++)
        any |= converted(run->images[i]);
    if (!any)
        return 0;
    if (!(dom = virDomainLookupByUUIDString(run->conn, d->uuid))) {
        virResetLastError();
        return 0;
    }
    if (fix_snapshots(run, d, dom, err) < 0)
        return -1;
    return fix_managed_save(run, d, dom, err);
}
