/* virt-qed-migrate: the image graph, discovered over a libvirt
 * connection.
 *
 * One graph of image files (struct vqm_vimage, shared between disks and
 * domains, identified by device and inode) built from every volume of
 * every active file-based pool and from every disk of every domain,
 * following backing chains through the image headers.  Backing names are
 * untrusted: the converter's chain policy is applied before anything of
 * a backing file is read.  Files renamed by an interrupted run are found
 * through the journal.  Nothing is changed here; what is done with the
 * graph is decided in virt-decide.c.
 */
#include <config.h>

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/tree.h>

#include "cleanup.h"
#include "convert/convert.h"
#include "domxml/domxml.h"
#include "virt-internal.h"
#include "virt-remote.h"

#define MAX_CHAIN 16

void
vqm_virt_image_free(struct vqm_vimage *img)
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

/* ---- the image graph ---- */

struct vqm_vimage *
vqm_virt_image_by_path(struct vqm_virt_run *run, const char *path)
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

/* A new image for path, now at cur, added to the graph; NULL when out of
 * memory. */
static struct vqm_vimage *
image_new(struct vqm_virt_run *run, const char *path, const char *cur)
{
    struct vqm_vimage *img = calloc(1, sizeof *img);
    struct stat st;

    if (!img)
        return NULL;
    img->path = strdup(path);
    img->cur_path = strdup(cur);
    img->new_path = strdup(cur);
    if (!img->path || !img->cur_path || !img->new_path
        || add_image(run, img) < 0) {
        vqm_virt_image_free(img);
        return NULL;
    }
    img->symlink = lstat(cur, &st) == 0 && S_ISLNK(st.st_mode);
    return img;
}

/* Read img's header at cur (through libvirt on a remote connection).
 * false when it cannot be read: why goes into img's reason. */
static bool
image_probe(struct vqm_virt_run *run, struct vqm_vimage *img,
            const char *cur)
{
    CLEANUP_PROBE struct vqm_probe p = { 0 };
    struct vqm_error err = { 0 };
    struct stat st;

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
        return false;
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
    if (run->journal && strcmp(img->format, "qcow2") == 0
        && vqm_journal_converted(run->journal, cur, img->dev, img->ino))
        img->converted_before = true;
    return true;
}

/* The path of img's backing file (img is at cur) in *bpath.  Backing
 * names are untrusted: the same policy as the converter's applies
 * before anything of the backing file is read.  1 with *bpath set, 0
 * when refused (why goes into img's reason), -1 when out of memory. */
static int
backing_path(struct vqm_virt_run *run, struct vqm_vimage *img,
             const char *cur, char **bpath)
{
    struct vqm_chain_policy pol = {
        .trusted_dirs = run->opts.trust_dirs,
        .n_trusted_dirs = run->opts.n_trust_dirs,
    };
    struct vqm_error verr = { 0 };
    struct vqm_error e2 = { 0 };
    CLEANUP_FREE char *old = NULL;
    CLEANUP_FREE char *vetted = NULL;
    const char *nn;

    if (run->remote) {
        /* The file is on the remote host: resolve the name only (the
         * conversion there applies the policy). */
        *bpath = vqm_remote_backing_path(cur, img->backing_name);
        return *bpath ? 1 : -1;
    }
    if (vqm_image_vet_backing(cur, cur, img->backing_name, &pol, bpath,
                              &verr) == 0)
        return 1;
    /* Renamed by an interrupted run: vet the new name, keep the old path
     * (image_get follows the journal). */
    if (verr.code == VQM_ERR_NOTFOUND && run->journal)
        old = vqm_remote_backing_path(cur, img->backing_name);
    nn = old ? vqm_journal_renamed(run->journal, old) : NULL;
    if (nn && vqm_image_vet_backing(cur, cur, nn, &pol, &vetted, &e2) == 0) {
        *bpath = vqm_steal(&old);
        return 1;
    }
    if (verr.code == VQM_ERR_NOMEM)
        return -1;
    snprintf(img->reason, sizeof img->reason, "%s", verr.msg);
    return 0;
}

/* Walk img's backing chain (img is at cur, level deep).  Problems go
 * into img's reason; -1 only when out of memory. */
static int
image_follow_backing(struct vqm_virt_run *run, struct vqm_vimage *img,
                     const char *cur, unsigned level)
{
    CLEANUP_FREE char *bpath = NULL;
    struct vqm_vimage *b;
    int r;

    if (strchr(img->backing_name, ':') && img->backing_name[0] != '/'
        && strncmp(img->backing_name, "./", 2) != 0) {
        snprintf(img->reason, sizeof img->reason,
                 "backing file '%s' is not a local file", img->backing_name);
        return 0;
    }
    if (level >= MAX_CHAIN) {
        snprintf(img->reason, sizeof img->reason,
                 "backing chain deeper than %d", MAX_CHAIN);
        return 0;
    }
    if ((r = backing_path(run, img, cur, &bpath)) <= 0)
        return r;
    img->visiting = true;
    b = vqm_virt_image_by_path(run, bpath);
    if (b && b->visiting) {
        snprintf(img->reason, sizeof img->reason,
                 "backing chain loop at '%s'", bpath);
        img->visiting = false;
        return 0;
    }
    img->backing = image_get(run, bpath, level + 1);
    img->visiting = false;
    if (!img->backing)
        return -1;
    if (img->backing->visiting) {
        snprintf(img->reason, sizeof img->reason,
                 "backing chain loop at '%s'", bpath);
        img->backing = NULL;
        return 0;
    }
    img->depth = img->backing->depth + 1;
    return 0;
}

/* Find or create the image for path and walk its backing chain.  Never
 * fails for a bad file: the problem goes into the image's reason.
 * Returns NULL only when out of memory.
 */
static struct vqm_vimage *
image_get(struct vqm_virt_run *run, const char *path, unsigned level)
{
    struct vqm_vimage *img;
    struct stat st;
    const char *cur = path;
    const char *renamed;

    if ((img = vqm_virt_image_by_path(run, path)))
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

    if (!(img = image_new(run, path, cur)))
        return NULL;
    if (!image_probe(run, img, cur) || !img->backing_name)
        return img;
    return image_follow_backing(run, img, cur, level) < 0 ? NULL : img;
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

/* An attribute of volume or pool XML: of the first <elem> under the
 * root's <target>, or of the root when elem is NULL; NULL when none. */
static char *
storage_xml_attr(const char *xml, const char *elem, const char *attrname)
{
    CLEANUP_XMLDOC xmlDocPtr doc = NULL;
    xmlNodePtr n;

    if (!(doc = vqm_xml_read(xml, strlen(xml), "storage XML", NULL, NULL)))
        return NULL;
    n = xmlDocGetRootElement(doc);
    if (n && elem)
        n = vqm_xml_child(vqm_xml_child(n, "target"), elem);
    return vqm_xml_attr(n, attrname);
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

static int
lookup_named_domain(virConnectPtr conn, const char *name,
                    struct vqm_error *err)
{
    CLEANUP_VIR_DOMAIN virDomainPtr d = virDomainLookupByName(conn, name);

    if (!d)
        d = virDomainLookupByUUIDString(conn, name);
    if (!d) {
        virResetLastError();
        return vqm_error_set(err, VQM_ERR_NOTFOUND,
                             "domain '%s' not found", name);
    }
    return 0;
}

int
vqm_virt_check_names(struct vqm_virt_run *run, struct vqm_error *err)
{
    const struct vqm_virt_opts *o = &run->opts;
    size_t k;

    for (k = 0; k < o->n_pools; k++) {
        CLEANUP_VIR_POOL virStoragePoolPtr p =
            virStoragePoolLookupByName(run->conn, o->pools[k]);

        if (!p)
            return vqm_error_set(err, VQM_ERR_NOTFOUND,
                                 "pool '%s' not found", o->pools[k]);
        if (virStoragePoolIsActive(p) != 1)
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

/* Add volume vol of pool pname to the graph.  -1 when out of memory. */
static int
scan_volume(struct vqm_virt_run *run, const char *pname,
            virStorageVolPtr vol, bool in_scope)
{
    CLEANUP_FREE char *path = virStorageVolGetPath(vol);
    CLEANUP_FREE char *vxml = NULL;
    struct vqm_vimage *img;

    if (!path)
        return 0;
    if (!(img = image_get(run, path, 0)))
        return -1;
    if (!img->pool) {
        img->pool = strdup(pname);
        img->volume = strdup(virStorageVolGetName(vol));
        /* libvirt cannot describe some QED overlays: a failure here is
         * expected and harmless. */
        vxml = virStorageVolGetXMLDesc(vol, 0);
        if (vxml)
            img->vol_format = storage_xml_attr(vxml, "format", "type");
        virResetLastError();
    }
    if (in_scope)
        img->in_scope = true;
    return 0;
}

/* Add the volumes of an active pool to the graph, when it is
 * file-based. */
static int
scan_pool(struct vqm_virt_run *run, virStoragePoolPtr pool,
          struct vqm_error *err)
{
    const struct vqm_virt_opts *o = &run->opts;
    const char *pname = virStoragePoolGetName(pool);
    CLEANUP_FREE char *pxml = virStoragePoolGetXMLDesc(pool, 0);
    CLEANUP_FREE char *ptype = pxml ? storage_xml_attr(pxml, NULL, "type")
                                    : NULL;
    CLEANUP_VIR_VOL_LIST struct vqm_vir_vol_list vols = { NULL, 0 };
    int j;

    if (!ptype || (strcmp(ptype, "dir") != 0 && strcmp(ptype, "fs") != 0
                   && strcmp(ptype, "netfs") != 0)) {
        if (name_listed(o->pools, o->n_pools, pname))
            vqm_virt_warn(run, "pool '%s' (type %s) is not file-based: its "
                          "volumes are not converted", pname,
                          ptype ? ptype : "unknown");
        return 0;
    }
    /* Fresh volume lists for the pools in scope (a dry run may be
     * read-only and cannot refresh; other pools are left alone). */
    if (!run->dry_run
        && (o->all || name_listed(o->pools, o->n_pools, pname))) {
        virStoragePoolRefresh(pool, 0);
        virResetLastError();
    }
    vols.n = virStoragePoolListAllVolumes(pool, &vols.v, 0);
    if (vols.n < 0)
        return vqm_virt_error(err, VQM_ERR_LIBVIRT,
                              "cannot list the volumes of pool '%s'", pname);
    for (j = 0; j < vols.n; j++)
        if (scan_volume(run, pname, vols.v[j],
                        name_listed(o->pools, o->n_pools, pname)
                        || o->all) < 0)
            return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    return 0;
}

int
vqm_virt_scan_pools(struct vqm_virt_run *run, struct vqm_error *err)
{
    CLEANUP_VIR_POOL_LIST struct vqm_vir_pool_list pools = { NULL, 0 };
    int i;

    pools.n = virConnectListAllStoragePools(run->conn, &pools.v,
                                            VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE);
    if (pools.n < 0)
        return vqm_virt_error(err, VQM_ERR_LIBVIRT,
                              "cannot list storage pools");
    for (i = 0; i < pools.n; i++)
        if (scan_pool(run, pools.v[i], err) < 0)
            return -1;
    return 0;
}

/* The path a volume of a directory pool had (target dir + name). */
static char *
old_volume_path(struct vqm_virt_run *run, const char *pool,
                const char *volume)
{
    CLEANUP_VIR_POOL virStoragePoolPtr p =
        virStoragePoolLookupByName(run->conn, pool);
    CLEANUP_FREE char *xml = p ? virStoragePoolGetXMLDesc(p, 0) : NULL;
    CLEANUP_XMLDOC xmlDocPtr doc = NULL;
    CLEANUP_FREE char *dir = NULL;
    char *ret = NULL;

    virResetLastError();
    if (!xml || strchr(volume, '/'))
        return NULL;
    if (!(doc = vqm_xml_read(xml, strlen(xml), "pool XML", "pool", NULL)))
        return NULL;
    dir = vqm_xml_text(vqm_xml_child(vqm_xml_child(xmlDocGetRootElement(doc),
                                                   "target"), "path"));
    if (dir && asprintf(&ret, "%s/%s", dir, volume) < 0)
        ret = NULL;
    return ret;
}

/* The file of the top layer of disk xd, to probe; NULL for a disk that
 * cannot hold QED (never probed: not ours; the invariant check still
 * looks for the files they name), without a source, or a volume not
 * found (dk's reason says so). */
static char *
disk_path(struct vqm_virt_run *run, const struct vqm_domxml_disk *xd,
          struct vqm_vdisk *dk)
{
    const struct vqm_domxml_layer *t = &xd->top;
    char *path;

    if (!vqm_domxml_can_hold_qed(xd))
        return NULL;
    if (t->form == VQM_SOURCE_FILE || t->form == VQM_SOURCE_BLOCK)
        return t->path ? strdup(t->path) : NULL;
    if (t->form != VQM_SOURCE_VOLUME || !t->pool || !t->volume)
        return NULL;
    path = vqm_virt_volume_path(run->conn, t->pool, t->volume, false);
    if (!path && dk) {
        /* An interrupted run may have renamed the file under the
         * volume: try its old path in the pool directory. */
        snprintf(dk->reason, sizeof dk->reason,
                 "volume '%s' of pool '%s' not found", t->volume, t->pool);
        path = old_volume_path(run, t->pool, t->volume);
        if (path && !vqm_journal_renamed(run->journal, path)) {
            free(path);
            path = NULL;
        }
        if (path)
            dk->reason[0] = '\0';
    }
    virResetLastError();
    return path;
}

/* Fill dk from the disk xd of the definition; img is its top image. */
static void
disk_fill(struct vqm_vdisk *dk, const struct vqm_domxml_disk *xd,
          struct vqm_vimage *img)
{
    const struct vqm_domxml_layer *t = &xd->top;

    dk->target = xd->target ? strdup(xd->target) : strdup("?");
    dk->device = strdup(xd->device);
    dk->type = strdup(t->type ? t->type : "file");
    dk->can_hold_qed = vqm_domxml_can_hold_qed(xd);
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

/* Add the disks of d's definition xml (live: of its live definition,
 * whose images are only marked used by a running domain). */
static int
add_disks(struct vqm_virt_run *run, struct vqm_vdomain *d, const char *xml,
          bool live, struct vqm_error *err)
{
    CLEANUP_DOMXML struct vqm_domxml *x = NULL;
    CLEANUP_DOMXML_DISKS struct vqm_domxml_disk_list dd = { NULL, 0 };
    size_t i;

    if (vqm_domxml_parse(xml, strlen(xml), NULL, &x, err) < 0
        || vqm_domxml_disks(x, &dd.v, &dd.n, err) < 0)
        return vqm_error_prefix(err, "domain '%s'", d->name);
    if (!live) {
        d->disks = calloc(dd.n ? dd.n : 1, sizeof *d->disks);
        if (!d->disks)
            return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
        d->n_disks = dd.n;
    }
    for (i = 0; i < dd.n; i++) {
        struct vqm_vdisk *dk = live ? NULL : &d->disks[i];
        CLEANUP_FREE char *path = disk_path(run, &dd.v[i], dk);
        struct vqm_vimage *img = NULL;

        if (path && !(img = image_get(run, path, 0)))
            return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
        if (live) {
            /* Mark the whole live chain as used by a running domain. */
            for (; img; img = img->backing)
                img->used_by_running = true;
            continue;
        }
        disk_fill(dk, &dd.v[i], img);
    }
    return 0;
}

/* Add domain dom (its definition and, running, its live definition) to
 * run->domains and its images to the graph. */
static int
scan_domain(struct vqm_virt_run *run, virDomainPtr dom, bool read_only,
            struct vqm_error *err)
{
    const struct vqm_virt_opts *o = &run->opts;
    struct vqm_vdomain *d = &run->domains[run->n_domains];
    unsigned flags = VIR_DOMAIN_XML_INACTIVE;
    CLEANUP_FREE char *live = NULL;

    d->name = strdup(virDomainGetName(dom));
    virDomainGetUUIDString(dom, d->uuid);
    d->active = virDomainIsActive(dom) == 1;
    d->persistent = virDomainIsPersistent(dom) == 1;
    d->managed_save = virDomainHasManagedSaveImage(dom, 0) == 1;
    virResetLastError();
    d->in_scope = o->all || name_listed(o->domains, o->n_domains, d->name)
        || name_listed(o->domains, o->n_domains, d->uuid);
    if (!read_only)
        flags |= VIR_DOMAIN_XML_SECURE;
    d->xml = virDomainGetXMLDesc(dom, flags);
    if (!d->xml)
        return vqm_virt_error(err, VQM_ERR_LIBVIRT,
                              "cannot get the definition of domain '%s'",
                              d->name);
    run->n_domains++;
    if (add_disks(run, d, d->xml, false, err) < 0)
        return -1;
    if (d->active) {
        live = virDomainGetXMLDesc(dom, 0);
        if (live && add_disks(run, d, live, true, err) < 0)
            return -1;
    }
    if (run->journal && vqm_journal_restart_owed(run->journal, d->uuid)
        && !d->active)
        d->restart_owed = true;
    return 0;
}

int
vqm_virt_scan_domains(struct vqm_virt_run *run, bool read_only,
                      struct vqm_error *err)
{
    CLEANUP_VIR_DOMAIN_LIST struct vqm_vir_domain_list doms = { NULL, 0 };
    int i;

    doms.n = virConnectListAllDomains(run->conn, &doms.v, 0);
    if (doms.n < 0)
        return vqm_virt_error(err, VQM_ERR_LIBVIRT, "cannot list domains");
    run->domains = calloc(doms.n ? (size_t) doms.n : 1,
                          sizeof *run->domains);
    if (!run->domains)
        return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    for (i = 0; i < doms.n; i++)
        if (scan_domain(run, doms.v[i], read_only, err) < 0)
            return -1;
    return 0;
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
