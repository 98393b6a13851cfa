/* virt-qed-migrate: discovery and planning over a libvirt connection.
 *
 * Builds one graph of image files (struct vqm_vimage, shared between
 * disks and domains, identified by device and inode) from every volume of
 * every active file-based pool and from every disk of every domain,
 * following backing chains through the image headers.  Then decides, for
 * each QED image in scope, whether it is converted, by copy or in place,
 * under which name, and what blocks it.  Nothing is changed here.
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

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "cleanup.h"
#include "convert/convert.h"
#include "domxml/domxml.h"
#include "virt-internal.h"
#include "virt-live.h"
#include "virt-remote.h"
#include "virt-snapshot.h"
#include "vqm-debug.h"
#include "vqm-io.h"

#define MAX_CHAIN 16

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

static void
image_free(struct vqm_vimage *img)
{
    free(img->path);
    free(img->cur_path);
    free(img->new_path);
    free(img->format);
    free(img->backing_name);
    free(img->backing_format);
    free(img->pool);
    free(img->volume);
    free(img->vol_format);
    free(img->xml_backing_format);
    free(img);
}

void
vqm_virt_free(struct vqm_virt_run *run)
{
    size_t i, k;

    if (!run)
        return;
    for (i = 0; i < run->n_images; i++)
        image_free(run->images[i]);
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

/* ---- the image graph ---- */

static struct vqm_vimage *
image_by_path(struct vqm_virt_run *run, const char *path)
{
    size_t i;

    for (i = 0; i < run->n_images; i++)
        if (strcmp(run->images[i]->path, path) == 0
            || strcmp(run->images[i]->cur_path, path) == 0)
            return run->images[i];
    return NULL;
}

static struct vqm_vimage *
image_by_inode(struct vqm_virt_run *run, dev_t dev, ino_t ino)
{
    size_t i;

    for (i = 0; i < run->n_images; i++)
        if (run->images[i]->exists && run->images[i]->dev == dev
            && run->images[i]->ino == ino)
            return run->images[i];
    return NULL;
}

static int
add_image(struct vqm_virt_run *run, struct vqm_vimage *img)
{
    struct vqm_vimage **v = realloc(run->images,
                                    (run->n_images + 1) * sizeof *v);

    if (!v)
        return -1;
    run->images = v;
    run->images[run->n_images++] = img;
    return 0;
}

static struct vqm_vimage *image_get(struct vqm_virt_run *run,
                                    const char *path, unsigned level);

/* Find or create the image for path and walk its backing chain.  Never
 * fails for a bad file: the problem goes into the image's reason.
 * Returns NULL only when out of memory.
 */
static struct vqm_vimage *
image_get(struct vqm_virt_run *run, const char *path, unsigned level)
{
    struct vqm_vimage *img;
    struct vqm_probe p;
    struct vqm_error err = { 0 };
    struct stat st;
    const char *cur = path;
    const char *renamed;

    if ((img = image_by_path(run, path)))
        return img;
    if (lstat(path, &st) < 0 && errno == ENOENT && run->journal
        && (renamed = vqm_journal_renamed(run->journal, path))
        && stat(renamed, &st) == 0)
        cur = renamed;               /* renamed by an interrupted run */
    if (stat(cur, &st) == 0 && (img = image_by_inode(run, st.st_dev,
                                                     st.st_ino))) {
        /* Seen under its new name (a pool volume), referenced under the
         * name it had before an interrupted run renamed it. */
        if (cur != path && strcmp(img->path, cur) == 0) {
            char *old = strdup(path);
            if (!old)
                return NULL;
            free(img->path);
            img->path = old;
        }
        return img;
    }

    if (!(img = calloc(1, sizeof *img)))
        return NULL;
    img->path = strdup(path);
    img->cur_path = strdup(cur);
    img->new_path = strdup(cur);
    if (!img->path || !img->cur_path || !img->new_path
        || add_image(run, img) < 0) {
        image_free(img);
        return NULL;
    }
    img->symlink = lstat(cur, &st) == 0 && S_ISLNK(st.st_mode);
    if ((run->remote ? vqm_remote_probe(run->conn, cur, &p, &err)
         : vqm_probe_file(cur, &p, &err)) < 0) {
        img->exists = err.code != VQM_ERR_NOTFOUND;
        if (stat(cur, &st) == 0) {
            img->exists = true;
            img->dev = st.st_dev;
            img->ino = st.st_ino;
            img->file_size = (uint64_t) st.st_size;
        }
        snprintf(img->reason, sizeof img->reason, "%s", err.msg);
        /* The probe names the format once it has read the header: a
         * header it cannot parse was still read. */
        img->unread = !p.format;
        /* A header the shared reader refuses is still a QED image (the
         * probe names the format before it validates the header). */
        if (img->exists && p.format && strcmp(p.format, "qed") == 0)
            img->format = strdup("qed");
        vqm_probe_clear(&p);
        return img;
    }
    img->exists = true;
    img->format = vqm_steal(&p.format);
    img->backing_name = vqm_steal(&p.backing_name);
    img->backing_format = vqm_steal(&p.backing_format);
    img->virtual_size = p.virtual_size;
    img->file_size = p.file_size;
    img->block_device = p.block_device;
    img->dev = p.dev;
    img->ino = p.ino;
    vqm_probe_clear(&p);
    if (run->journal && strcmp(img->format, "qcow2") == 0
        && vqm_journal_converted(run->journal, cur, img->dev, img->ino))
        img->converted_before = true;

    if (img->backing_name) {
        CLEANUP_FREE char *bpath = NULL;

        if (strchr(img->backing_name, ':')
            && img->backing_name[0] != '/'
            && strncmp(img->backing_name, "./", 2) != 0) {
            snprintf(img->reason, sizeof img->reason,
                     "backing file '%s' is not a local file",
                     img->backing_name);
            return img;
        }
        if (level >= MAX_CHAIN) {
            snprintf(img->reason, sizeof img->reason,
                     "backing chain deeper than %d", MAX_CHAIN);
            return img;
        }
        {
            /* Backing names are untrusted: apply the same policy as the
             * converter before reading anything of the backing file. */
            struct vqm_chain_policy pol = {
                .trusted_dirs = run->opts.trust_dirs,
                .n_trusted_dirs = run->opts.n_trust_dirs,
            };
            struct vqm_error verr = { 0 };

            if (run->remote) {
                /* The file is on the remote host: resolve the name only
                 * (the conversion there applies the policy). */
                if (!(bpath = vqm_remote_backing_path(cur,
                                                      img->backing_name)))
                    return NULL;
            } else if (vqm_image_vet_backing(cur, cur, img->backing_name,
                                             &pol, &bpath, &verr) < 0) {
                /* Renamed by an interrupted run: vet the new name, keep
                 * the old path (image_get follows the journal). */
                CLEANUP_FREE char *old = verr.code == VQM_ERR_NOTFOUND
                    && run->journal
                    ? vqm_remote_backing_path(cur, img->backing_name) : NULL;
                const char *nn = old
                    ? vqm_journal_renamed(run->journal, old) : NULL;
                CLEANUP_FREE char *vetted = NULL;
                struct vqm_error e2 = { 0 };

                if (nn && vqm_image_vet_backing(cur, cur, nn, &pol, &vetted,
                                                &e2) == 0) {
                    bpath = vqm_steal(&old);
                } else {
                    if (verr.code == VQM_ERR_NOMEM)
                        return NULL;
                    snprintf(img->reason, sizeof img->reason, "%s",
                             verr.msg);
                    return img;
                }
            }
        }
        img->visiting = true;
        {
            struct vqm_vimage *b = image_by_path(run, bpath);
            if (b && b->visiting) {
                snprintf(img->reason, sizeof img->reason,
                         "backing chain loop at '%s'", bpath);
                img->visiting = false;
                return img;
            }
        }
        img->backing = image_get(run, bpath, level + 1);
        img->visiting = false;
        if (!img->backing)
            return NULL;
        if (img->backing->visiting) {
            snprintf(img->reason, sizeof img->reason,
                     "backing chain loop at '%s'", bpath);
            img->backing = NULL;
            return img;
        }
        img->depth = img->backing->depth + 1;
    }
    return img;
}

static bool
is_qed(const struct vqm_vimage *img)
{
    return img->format && strcmp(img->format, "qed") == 0;
}

/* The backing name to write for a file whose backing file moved: the
 * stored name with its last component replaced, so that a relative name
 * stays relative. */
char *
vqm_virt_moved_name(const char *stored, const char *new_path)
{
    CLEANUP_FREE char *np = strdup(new_path);
    const char *slash = strrchr(stored, '/');
    char *s;

    if (!np)
        return NULL;
    if (!slash)
        return strdup(basename(np));
    if (asprintf(&s, "%.*s/%s", (int) (slash - stored), stored,
                 basename(np)) < 0)
        return NULL;
    return s;
}

/* The backing name img must record once its backing image is migrated
 * (renamed or not).  malloc'd. */
char *
vqm_virt_new_backing_name(const struct vqm_vimage *img)
{
    const struct vqm_vimage *b = img->backing;

    if (b && strcmp(b->new_path, b->path) != 0)
        return vqm_virt_moved_name(img->backing_name, b->new_path);
    return strdup(img->backing_name);
}

/* ---- libvirt discovery ---- */

static char *
xpath_string(const char *xml, const char *elem, const char *attrname)
{
    /* Tiny helper for volume/pool XML: first <elem attrname='...'> under
     * the root's <target>, or the root's attribute when elem is NULL. */
    xmlDocPtr doc;
    xmlNodePtr n;
    char *ret;

    if (!(doc = vqm_xml_read(xml, strlen(xml), "storage XML", NULL, NULL)))
        return NULL;
    n = xmlDocGetRootElement(doc);
    if (n && elem)
        n = vqm_xml_child(vqm_xml_child(n, "target"), elem);
    ret = vqm_xml_attr(n, attrname);
    xmlFreeDoc(doc);
    return ret;
}

static bool
name_listed(const char *const *v, size_t n, const char *name)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (strcmp(v[i], name) == 0)
            return true;
    return false;
}

/* Unknown or inactive pools and unknown domains are errors, found
 * before anything is created or changed. */
static int lookup_named_domain(virConnectPtr conn, const char *name,
                               struct vqm_error *err);

static int
check_names(struct vqm_virt_run *run, struct vqm_error *err)
{
    const struct vqm_virt_opts *o = &run->opts;
    size_t k;

    for (k = 0; k < o->n_pools; k++) {
        virStoragePoolPtr p = virStoragePoolLookupByName(run->conn,
                                                         o->pools[k]);
        int active;

        if (!p)
            return vqm_error_set(err, VQM_ERR_NOTFOUND,
                                 "pool '%s' not found", o->pools[k]);
        active = virStoragePoolIsActive(p);
        virStoragePoolFree(p);
        if (active != 1)
            return vqm_error_set(err, VQM_ERR_INVALID,
                                 "pool '%s' is not active (start it with "
                                 "'virsh pool-start %s')", o->pools[k],
                                 o->pools[k]);
    }

    for (k = 0; k < o->n_domains; k++)
        if (lookup_named_domain(run->conn, o->domains[k], err) < 0)
            return -1;
    return 0;
}

static int
scan_pools(struct vqm_virt_run *run, struct vqm_error *err)
{
    virConnectPtr conn = run->conn;
    const struct vqm_virt_opts *o = &run->opts;
    virStoragePoolPtr *pools = NULL;
    int np, i, ret = -1;

    np = virConnectListAllStoragePools(conn, &pools,
                                       VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE);
    if (np < 0)
        return vqm_virt_error(err, VQM_ERR_LIBVIRT,
                              "cannot list storage pools");
    for (i = 0; i < np; i++) {
        const char *pname = virStoragePoolGetName(pools[i]);
        CLEANUP_FREE char *pxml = NULL;
        CLEANUP_FREE char *ptype = NULL;
        virStorageVolPtr *vols = NULL;
        int nv, j;

        pxml = virStoragePoolGetXMLDesc(pools[i], 0);
        ptype = pxml ? xpath_string(pxml, NULL, "type") : NULL;
        if (!ptype || (strcmp(ptype, "dir") != 0 && strcmp(ptype, "fs") != 0
                       && strcmp(ptype, "netfs") != 0)) {
            if (name_listed(o->pools, o->n_pools, pname))
                vqm_virt_warn(run, "pool '%s' (type %s) is not file-based: its "
                     "volumes are not converted", pname,
                     ptype ? ptype : "unknown");
            continue;
        }
        /* Fresh volume lists for the pools in scope (a dry run may be
         * read-only and cannot refresh; other pools are left alone). */
        if (!run->dry_run
            && (o->all || name_listed(o->pools, o->n_pools, pname))) {
            virStoragePoolRefresh(pools[i], 0);
            virResetLastError();
        }
        nv = virStoragePoolListAllVolumes(pools[i], &vols, 0);
        if (nv < 0) {
            vqm_virt_error(err, VQM_ERR_LIBVIRT,
                           "cannot list the volumes of pool '%s'", pname);
            goto out;
        }
        for (j = 0; j < nv; j++) {
            CLEANUP_FREE char *path = virStorageVolGetPath(vols[j]);
            CLEANUP_FREE char *vxml = NULL;
            struct vqm_vimage *img;

            if (!path)
                continue;
            img = image_get(run, path, 0);
            if (!img) {
                vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
                for (; j < nv; j++)
                    virStorageVolFree(vols[j]);
                free(vols);
                goto out;
            }
            if (!img->pool) {
                img->pool = strdup(pname);
                img->volume = strdup(virStorageVolGetName(vols[j]));
                /* libvirt cannot describe some QED overlays: a failure
                 * here is expected and harmless. */
                vxml = virStorageVolGetXMLDesc(vols[j], 0);
                if (vxml)
                    img->vol_format = xpath_string(vxml, "format", "type");
                virResetLastError();
            }
            if (name_listed(o->pools, o->n_pools, pname) || o->all)
                img->in_scope = true;
            virStorageVolFree(vols[j]);
        }
        free(vols);
    }
    ret = 0;
 out:
    for (i = 0; i < np; i++)
        virStoragePoolFree(pools[i]);
    free(pools);
    return ret;
}

/* The path a volume of a directory pool had (target dir + name). */
static char *
old_volume_path(struct vqm_virt_run *run, const char *pool,
                const char *volume)
{
    virStoragePoolPtr p = virStoragePoolLookupByName(run->conn, pool);
    CLEANUP_FREE char *xml = p ? virStoragePoolGetXMLDesc(p, 0) : NULL;
    xmlDocPtr doc;
    CLEANUP_FREE char *dir = NULL;
    char *ret = NULL;

    if (p)
        virStoragePoolFree(p);
    virResetLastError();
    if (!xml || strchr(volume, '/'))
        return NULL;
    if (!(doc = vqm_xml_read(xml, strlen(xml), "pool XML", "pool", NULL)))
        return NULL;
    dir = vqm_xml_text(vqm_xml_child(vqm_xml_child(xmlDocGetRootElement(doc),
                                                   "target"), "path"));
    xmlFreeDoc(doc);
    if (dir && asprintf(&ret, "%s/%s", dir, volume) < 0)
        ret = NULL;
    return ret;
}

static int
add_disks(struct vqm_virt_run *run, struct vqm_vdomain *d, const char *xml,
          bool live, struct vqm_error *err)
{
    struct vqm_domxml *x = NULL;
    struct vqm_domxml_disk *dd = NULL;
    size_t n = 0, i;

    if (vqm_domxml_parse(xml, strlen(xml), NULL, &x, err) < 0
        || vqm_domxml_disks(x, &dd, &n, err) < 0) {
        vqm_domxml_free(x);
        return vqm_error_prefix(err, "domain '%s'", d->name);
    }
    vqm_domxml_free(x);
    if (!live) {
        d->disks = calloc(n ? n : 1, sizeof *d->disks);
        if (!d->disks)
            goto nomem;
        d->n_disks = n;
    }
    for (i = 0; i < n; i++) {
        struct vqm_domxml_disk *xd = &dd[i];
        const struct vqm_domxml_layer *t = &xd->top;
        struct vqm_vimage *img = NULL;
        CLEANUP_FREE char *path = NULL;
        struct vqm_vdisk *dk = live ? NULL : &d->disks[i];
        bool qed_kind = vqm_domxml_can_hold_qed(xd);

        if (!qed_kind) {
            /* Never probed: not ours (the invariant check still looks
             * for the files they name). */
        } else if (t->form == VQM_SOURCE_FILE
                   || t->form == VQM_SOURCE_BLOCK) {
            if (t->path)
                path = strdup(t->path);
        } else if (t->form == VQM_SOURCE_VOLUME && t->pool && t->volume) {
            virStoragePoolPtr p = virStoragePoolLookupByName(run->conn,
                                                              t->pool);
            virStorageVolPtr v = p ? virStorageVolLookupByName(p, t->volume)
                : NULL;
            path = v ? virStorageVolGetPath(v) : NULL;
            if (v)
                virStorageVolFree(v);
            if (p)
                virStoragePoolFree(p);
            if (!path && dk) {
                /* An interrupted run may have renamed the file under
                 * the volume: try its old path in the pool directory. */
                snprintf(dk->reason, sizeof dk->reason,
                         "volume '%s' of pool '%s' not found", t->volume,
                         t->pool);
                path = old_volume_path(run, t->pool, t->volume);
                if (path && !vqm_journal_renamed(run->journal, path)) {
                    free(path);
                    path = NULL;
                }
                if (path)
                    dk->reason[0] = '\0';
            }
            virResetLastError();
        }
        if (path && !(img = image_get(run, path, 0)))
            goto nomem;
        if (live) {
            /* Mark the whole live chain as used by a running domain. */
            for (; img; img = img->backing)
                img->used_by_running = true;
            continue;
        }
        dk->target = xd->target ? strdup(xd->target) : strdup("?");
        dk->device = strdup(xd->device);
        dk->type = strdup(t->type ? t->type : "file");
        dk->can_hold_qed = qed_kind;
        dk->readonly = xd->readonly;
        dk->shareable = xd->shareable;
        dk->transient = xd->transient;
        dk->xml_format = t->format ? strdup(t->format) : NULL;
        if (t->form == VQM_SOURCE_VOLUME) {
            dk->src_pool = t->pool ? strdup(t->pool) : NULL;
            dk->src_volume = t->volume ? strdup(t->volume) : NULL;
            if (asprintf(&dk->source, "%s/%s", t->pool ? t->pool : "?",
                         t->volume ? t->volume : "?") < 0)
                dk->source = NULL;
        } else {
            dk->source = t->path ? strdup(t->path) : NULL;
        }
        dk->image = img;
        /* The format the XML gives for each backing layer. */
        if (img && xd->n_backing) {
            struct vqm_vimage *b = img;
            size_t k;
            for (k = 0; k < xd->n_backing && b; k++, b = b->backing)
                if (xd->backing[k].format && !b->xml_backing_format)
                    b->xml_backing_format = strdup(xd->backing[k].format);
        }
    }
    vqm_domxml_disks_free(dd, n);
    return 0;

 nomem:
    vqm_domxml_disks_free(dd, n);
    return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
}

static int
lookup_named_domain(virConnectPtr conn, const char *name,
                    struct vqm_error *err)
{
    virDomainPtr d = virDomainLookupByName(conn, name);

    if (!d)
        d = virDomainLookupByUUIDString(conn, name);
    if (!d) {
        virResetLastError();
        return vqm_error_set(err, VQM_ERR_NOTFOUND,
                             "domain '%s' not found", name);
    }
    virDomainFree(d);
    return 0;
}

static int
scan_domains(struct vqm_virt_run *run, bool read_only, struct vqm_error *err)
{
    const struct vqm_virt_opts *o = &run->opts;
    virDomainPtr *doms = NULL;
    int nd, i, ret = -1;

    nd = virConnectListAllDomains(run->conn, &doms, 0);
    if (nd < 0)
        return vqm_virt_error(err, VQM_ERR_LIBVIRT, "cannot list domains");
    run->domains = calloc(nd ? (size_t) nd : 1, sizeof *run->domains);
    if (!run->domains) {
        vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (i = 0; i < nd; i++) {
        struct vqm_vdomain *d = &run->domains[run->n_domains];
        unsigned flags = VIR_DOMAIN_XML_INACTIVE;
        CLEANUP_FREE char *live = NULL;

        d->name = strdup(virDomainGetName(doms[i]));
        virDomainGetUUIDString(doms[i], d->uuid);
        d->active = virDomainIsActive(doms[i]) == 1;
        d->persistent = virDomainIsPersistent(doms[i]) == 1;
        d->managed_save = virDomainHasManagedSaveImage(doms[i], 0) == 1;
        virResetLastError();
        d->in_scope = o->all || name_listed(o->domains, o->n_domains,
                                            d->name)
            || name_listed(o->domains, o->n_domains, d->uuid);
        if (!read_only)
            flags |= VIR_DOMAIN_XML_SECURE;
        d->xml = virDomainGetXMLDesc(doms[i], flags);
        if (!d->xml) {
            vqm_virt_error(err, VQM_ERR_LIBVIRT,
                           "cannot get the definition of domain '%s'",
                           d->name);
            goto out;
        }
        run->n_domains++;
        if (add_disks(run, d, d->xml, false, err) < 0)
            goto out;
        if (d->active) {
            live = virDomainGetXMLDesc(doms[i], 0);
            if (live && add_disks(run, d, live, true, err) < 0)
                goto out;
        }
        if (run->journal && vqm_journal_restart_owed(run->journal, d->uuid)
            && !d->active)
            d->restart_owed = true;
    }
    ret = 0;
 out:
    for (i = 0; i < nd; i++)
        virDomainFree(doms[i]);
    free(doms);
    return ret;
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

/* Which domains use img (inactive definition chains)? */
bool
vqm_virt_domain_uses(const struct vqm_vdomain *d,
                     const struct vqm_vimage *img)
{
    size_t k;
    const struct vqm_vimage *c;

    for (k = 0; k < d->n_disks; k++)
        for (c = d->disks[k].image; c; c = c->backing)
            if (c == img)
                return true;
    return false;
}

static void
decide(struct vqm_virt_run *run)
{
    const struct vqm_virt_opts *o = &run->opts;
    size_t i, k, j;

    /* Scope: disks of the named domains, chain included. */
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
    /* The journal is the host's, not one command's: what an interrupted
     * run changed (converted, renamed, copied) is finished whatever the
     * scope of this run. */
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
    for (i = 0; i < run->n_images; i++) {
        struct vqm_vimage *img = run->images[i];

        img->migrate = img->in_scope && img->exists
            && (is_qed(img) || img->converted_before
                || strcmp(img->cur_path, img->path) != 0);
        img->convert = img->migrate && is_qed(img);
        if (img->convert && run->journal) {
            /* Copied by an interrupted run: only the rest is left. */
            const char *prev = vqm_journal_copy_output(run->journal,
                                                       img->cur_path);
            struct stat st;
            bool verified = false;

            /* Or copied by an earlier run that finished (the copies
             * index): nothing to convert, a rerun is idempotent. */
            if (!prev && (prev = vqm_journal_known_copy(run->journal,
                                                        img->cur_path,
                                                        &verified)))
                img->verified = verified;
            if (prev && stat(prev, &st) == 0) {
                img->convert = false;
                img->copy = true;
                free(img->new_path);
                img->new_path = strdup(prev);
            }
        }
        if (img->migrate && !img->convert)
            img->outcome = VQM_OUTCOME_DONE;   /* by an earlier run */
        if (img->migrate && img->convert && img->reason[0])
            img->outcome = VQM_OUTCOME_SKIPPED;  /* header refused */
        else if (img->convert)
            img->outcome = VQM_OUTCOME_PLANNED;
    }

    /* Disks: what is left alone, and format mismatches. */
    for (i = 0; i < run->n_domains; i++) {
        struct vqm_vdomain *d = &run->domains[i];
        for (k = 0; k < d->n_disks; k++) {
            struct vqm_vdisk *dk = &d->disks[k];
            struct vqm_vimage *img = dk->image, *c;
            const char *xf = dk->xml_format ? dk->xml_format : "raw";

            if (!dk->can_hold_qed) {
                /* lun, network, dir, nvme, vhostuser: cannot hold QED;
                 * enforce_references() keeps their files unchanged. */
                snprintf(dk->reason, sizeof dk->reason,
                         "%s %s: left alone (cannot hold QED)", dk->type,
                         dk->device);
                continue;
            }
            if (!img) {
                if (!dk->reason[0])
                    snprintf(dk->reason, sizeof dk->reason,
                             "%s: left alone (no source)", dk->device);
                continue;
            }
            for (c = img; c; c = c->backing)
                if (c->migrate || is_qed(c))
                    dk->has_qed = true;
            if (!img->exists) {
                snprintf(dk->reason, sizeof dk->reason,
                         "source '%s' does not exist", img->path);
                if (d->in_scope)
                    dk->outcome = VQM_OUTCOME_SKIPPED;
                continue;
            }
            if (!dk->has_qed && !img->format && run->remote
                && img->reason[0]) {
                /* Not readable through a remote connection. */
                snprintf(dk->reason, sizeof dk->reason, "%s", img->reason);
                if (d->in_scope)
                    dk->outcome = VQM_OUTCOME_SKIPPED;
                continue;
            }
            if (!dk->has_qed) {
                if (img->format && strcmp(xf, img->format) != 0)
                    snprintf(dk->reason, sizeof dk->reason,
                             "format mismatch: the domain XML says '%s', "
                             "'%s' is %s; left alone", xf, img->path,
                             img->format);
                else if (!img->format && img->unread && img->reason[0])
                    /* Not an image the tool opens (a FIFO, a device, a
                     * symlink someone else planted, ...): why. */
                    snprintf(dk->reason, sizeof dk->reason,
                             "not read: %s; left alone", img->reason);
                else
                    snprintf(dk->reason, sizeof dk->reason,
                             "not QED (%s): left alone",
                             img->format ? img->format : "unknown");
                /* A disk the XML calls QED is ours to report. */
                if (strcmp(xf, "qed") == 0 && d->in_scope)
                    dk->outcome = VQM_OUTCOME_SKIPPED;
                continue;
            }
            /* The XML's format must be the file's (or the QED it was
             * before we converted it). */
            if (img->format && strcmp(xf, img->format) != 0
                && !(strcmp(xf, "qed") == 0 && img->migrate
                     && !img->convert)) {
                snprintf(dk->reason, sizeof dk->reason,
                         "format mismatch: the domain XML says '%s', "
                         "'%s' is %s; not changed", xf, img->path,
                         img->format);
                bool ours = d->in_scope;

                for (c = img; c; c = c->backing)
                    if (c->migrate) {
                        ours = true;
                        block_image(c, "domain '%s' disk %s: the XML says "
                                    "'%s' but the file is %s", d->name,
                                    dk->target, xf, img->format);
                    }
                /* Out of scope and naming nothing this run converts:
                 * reported, not skipped. */
                if (ours)
                    dk->outcome = VQM_OUTCOME_SKIPPED;
            }
        }
    }

    /* Domains: running, transient, saved. */
    for (i = 0; i < run->n_domains; i++) {
        struct vqm_vdomain *d = &run->domains[i];
        bool uses = false;

        for (j = 0; j < run->n_images; j++)
            if (run->images[j]->convert && vqm_virt_domain_uses(d, run->images[j]))
                uses = true;
        if (!uses)
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
            if (run->images[j]->convert && vqm_virt_domain_uses(d, run->images[j]))
                block_image(run->images[j], "used by domain '%s', which "
                            "is %s", d->name,
                            !d->persistent ? "transient"
                            : d->managed_save ? "saved (managed save)"
                            : "running");
    }
    /* Images held by a running domain we do not stop (a hot-plugged
     * disk, or another domain's chain). */
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
    vqm_virt_propagate_blocks(run);
}

/* Ask the engine, without writing, whether it can convert each image
 * (corrupt tables, backing format, QEMU locks).  Images of domains we
 * will stop are checked when they are converted. */
static void check_space(struct vqm_virt_run *run);

static void
engine_check(struct vqm_virt_run *run)
{
    const struct vqm_virt_opts *o = &run->opts;
    size_t i;

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
            char comm[64];
            long pid;

            busy = vqm_lock_probe(img->cur_path, &err);
            if (busy > 0) {
                block_image(img, "in use by another process (QEMU image "
                            "locks are held)");
                continue;
            }
            /* A writer that takes no locks (locking=off) is refused
             * too. */
            if (!img->copy && (pid = vqm_find_writer(img->dev, img->ino,
                                                     comm, sizeof comm)) > 0) {
                block_image(img, "open for writing by process %ld (%s): "
                            "not converted in place under it", pid, comm);
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
    return image_by_path(run, l->path);
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
    struct domain_lookup dl = { run, d, plan, false, NULL };
    struct vqm_domxml *x = NULL;
    size_t changed = 0, k;
    int ret = -1;

    *out = NULL;
    if (vqm_domxml_parse(d->xml, strlen(d->xml), NULL, &x, err) < 0)
        return vqm_error_prefix(err, "domain '%s'", d->name);
    if (vqm_domxml_rewrite(x, domain_lookup, &dl, &changed, err) < 0)
        goto out;
    if (dl.nomem) {
        vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
        goto out;
    }
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
        goto out;
    ret = 0;
 out:
    free(dl.vol);
    vqm_domxml_free(x);
    return ret;
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

int
vqm_virt_plan(const struct vqm_virt_opts *opts, struct vqm_virt_run **out,
              struct vqm_error *err)
{
    struct vqm_virt_run *run;
    bool read_only = false;
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

    if (opts->dry_run) {
        /* A dry run changes nothing: a read-only connection is enough
         * (no secure XML, no pool refresh), and all some users have. */
        /* Remote: the headers are read by volume downloads, which need a
         * read-write connection (virt-remote.c). */
        if (vqm_virt_uri_remote(opts->uri, NULL, 0))
            run->conn = vqm_virt_connect(opts->uri, false);
        if (!run->conn) {
            run->conn = vqm_virt_connect(opts->uri, true);
            read_only = run->conn != NULL;
        }
        if (!run->conn)
            run->conn = vqm_virt_connect(opts->uri, false);
    } else {
        run->conn = vqm_virt_connect(opts->uri, false);
    }
    if (!run->conn) {
        vqm_virt_error(err, VQM_ERR_LIBVIRT, "cannot connect to libvirt%s%s",
                       opts->uri ? " at " : "", opts->uri ? opts->uri : "");
        goto fail;
    }
    if ((uri = virConnectGetURI(run->conn)))
        run->uri = uri;
    {
        char host[256] = "";

        run->remote = vqm_virt_uri_remote(run->uri, host, sizeof host);
        if (run->remote && !opts->dry_run) {
            vqm_error_set(err, VQM_ERR_UNSUPPORTED, "'%s' is a connection "
                          "to host '%s': the conversion needs the image "
                          "files to be local; run virt-qed-migrate on '%s' "
                          "(a --dry-run works from here)", run->uri, host,
                          host);
            goto fail;
        }
        if (run->remote)
            vqm_virt_warn(run, "remote connection to '%s': image headers were read "
                 "through libvirt (storage volumes only), the conversion "
                 "must run on '%s'", host, host);
    }
    if (check_names(run, err) < 0)
        goto fail;
    if (vqm_journal_open(run->opts.state_dir, opts->dry_run,
                         (struct vqm_journal **) &run->journal, err) < 0)
        goto fail;
    run->journal_recovered = vqm_journal_found(run->journal);

    if (scan_pools(run, err) < 0 || scan_domains(run, read_only, err) < 0)
        goto fail;
    qsort(run->images, run->n_images, sizeof *run->images, by_depth);
    decide(run);
    decide_names(run);
    vqm_snapshot_plan(run);
    vqm_live_plan(run);
    enforce_references(run);
    engine_check(run);
    vqm_virt_mark_affected(run);
    *out = run;
    return 0;

 fail:
    vqm_virt_free(run);
    return -1;
}

/* ---- counting ---- */

bool
vqm_virt_domain_shown(const struct vqm_vdomain *d)
{
    return d->in_scope || d->involved || d->outcome != VQM_OUTCOME_NONE;
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
