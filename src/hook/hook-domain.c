/* virt-qed-migrate hook: the domain view.
 *
 * The domain XML libvirt gives on stdin, parsed with the shared module
 * src/domxml (no network, no DTD: a document type declaration is
 * refused outright, no entity expansion), and every image its disks
 * name, classified by its first bytes with the shared probe and QED
 * reader: the disks that can hold QED (disk, cdrom, floppy; never lun,
 * network, ...) and their backing chains exactly as the XML spells
 * them, never the backing names recorded in the images.
 */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "hook-internal.h"
#include "qed/qed.h"
#include "vqm-debug.h"
#include "vqm-endian.h"
#include "vqm-open.h"
#include "vqm-quote.h"

/* The kind of the image open on fd (path for messages). */
static enum img_kind
image_kind_fd(int fd, const char *path, uint64_t *size)
{
    unsigned char buf[64];
    ssize_t r;
    const char *fmt;
    struct qed_image *img = NULL;
    struct vqm_error err = { 0 };

    do
        r = pread(fd, buf, sizeof buf, 0);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return IMG_UNREADABLE;
    fmt = vqm_probe_format(buf, (size_t) r);
    if (strcmp(fmt, "qcow2") == 0) {
        uint32_t version = vqm_ld_be32(buf + 4);
        return version == 2 || version == 3 ? IMG_QCOW2 : IMG_OTHER;
    }
    if (strcmp(fmt, "qed") != 0)
        return IMG_OTHER;
    /* The shared reader validates the header; a QED image it refuses is
     * still a QED image to the policy. */
    if (qed_open_fd(fd, path, &img, &err) < 0) {
        vqm_debug("%s: %s", path, err.msg);
        return IMG_QED;
    }
    *size = qed_get_info(img)->image_size;
    qed_close(img);
    return IMG_QED;
}

enum img_kind
vqm_hook_image_kind(const char *path, uint64_t *size)
{
    struct vqm_file f = { .fd = -1 };
    struct vqm_error err = { 0 };
    enum img_kind kind;

    *size = 0;
    /* vqm_open looks before it opens: a character device or a FIFO the
     * XML names is never opened (opening some devices has side effects,
     * a FIFO would block), and no symlink planted by someone else is
     * followed. */
    if (vqm_open(path, 0, NULL, &f, &err) < 0)
        return err.code == VQM_ERR_NOTFOUND ? IMG_MISSING : IMG_UNREADABLE;
    kind = image_kind_fd(f.fd, path, size);
    vqm_file_close(&f);
    return kind;
}

bool
vqm_hook_uuid_valid(const char *u)
{
    size_t i;

    if (!u || strlen(u) != 36)
        return false;
    for (i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (u[i] != '-')
                return false;
        } else if (!isxdigit((unsigned char) u[i])) {
            return false;
        }
    }
    return true;
}

void
vqm_hook_domain_free(struct hook_domain *d)
{
    size_t i;

    for (i = 0; i < d->ndisks; i++) {
        free(d->disks[i].path);
        free(d->disks[i].claimed);
        free(d->disks[i].target);
    }
    free(d->disks);
    free(d->name);
    free(d->uuid);
    vqm_domxml_free(d->x);
    memset(d, 0, sizeof *d);
}

/* The path the hook reads for a layer (malloc'ed in *path; NULL when it
 * names nothing the hook can look at). */
static int
layer_path(const struct vqm_domxml_layer *l, char **path,
           struct vqm_error *err)
{
    *path = NULL;
    if (l->form == VQM_SOURCE_VOLUME) {
        /* Only libvirt can resolve pool/volume (the hook must not ask
         * it): such a disk is judged by the format its XML names. */
        if (l->pool && l->volume
            && asprintf(path, "%s/%s", l->pool, l->volume) < 0) {
            *path = NULL;
            return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
        }
        return 0;
    }
    /* libvirt only accepts absolute paths; never guess a cwd.  Network,
     * dir, ...: nothing to read here. */
    if ((l->form != VQM_SOURCE_FILE && l->form != VQM_SOURCE_BLOCK)
        || !l->path || l->path[0] != '/')
        return 0;
    if (!(*path = strdup(l->path)))
        return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    return 0;
}

static int
add_image(struct hook_domain *d, const struct vqm_domxml_disk *x,
          unsigned depth, const struct vqm_domxml_layer *l,
          struct vqm_error *err)
{
    CLEANUP_FREE char *path = NULL;
    struct hook_disk *v, *k;

    if (layer_path(l, &path, err) < 0)
        return -1;
    if (!path)
        return 0;
    if (d->ndisks >= HOOK_MAX_DISKS)
        return vqm_error_set(err, VQM_ERR_INVALID,
                             "domain XML names more than %u images",
                             HOOK_MAX_DISKS);
    v = realloc(d->disks, (d->ndisks + 1) * sizeof *v);
    if (!v)
        return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    d->disks = v;
    k = &d->disks[d->ndisks++];
    memset(k, 0, sizeof *k);
    k->index = x->index;
    k->depth = depth;
    k->form = l->form;
    k->path = vqm_steal(&path);
    k->claimed = l->format ? strdup(l->format) : NULL;
    k->target = x->target ? strdup(x->target) : NULL;
    if (l->form == VQM_SOURCE_VOLUME)
        k->kind = IMG_UNREADABLE;
    else
        k->kind = vqm_hook_image_kind(k->path, &k->size);
    return 0;
}

static int
add_disks(struct hook_domain *d, const struct vqm_domxml_disk *disks,
          size_t n, struct vqm_error *err)
{
    size_t i, k;

    for (i = 0; i < n; i++) {
        if (!vqm_domxml_can_hold_qed(&disks[i]))
            continue;
        if (add_image(d, &disks[i], 0, &disks[i].top, err) < 0)
            return -1;
        for (k = 0; k < disks[i].n_backing; k++)
            if (add_image(d, &disks[i], (unsigned) k + 1,
                          &disks[i].backing[k], err) < 0)
                return -1;
    }
    return 0;
}

/* The name and the UUID (lower case, only when valid). */
static void
set_identity(struct hook_domain *d)
{
    const char *name = vqm_domxml_name(d->x);
    const char *u = vqm_domxml_uuid(d->x);

    if (!name || !*name)
        name = getenv("VQM_HOOK_DOMAIN");
    d->name = strdup(name ? name : "?");
    if (vqm_hook_uuid_valid(u) && (d->uuid = strdup(u)))
        for (char *p = d->uuid; *p; p++)
            *p = (char) tolower((unsigned char) *p);
}

int
vqm_hook_domain_parse(const char *buf, size_t len, struct hook_domain *d,
                      struct vqm_error *err)
{
    struct vqm_domxml_disk *disks = NULL;
    size_t n = 0;
    int r;

    memset(d, 0, sizeof *d);
    if (vqm_domxml_parse(buf, len, "domain XML on stdin", &d->x, err) < 0)
        return -1;
    if (!vqm_domxml_is_domain(d->x))
        return vqm_error_set(err, VQM_ERR_INVALID,
                             "XML on stdin is not a <domain>");
    set_identity(d);
    if (vqm_domxml_disks(d->x, &disks, &n, err) < 0)
        return -1;
    r = add_disks(d, disks, n, err);
    vqm_domxml_disks_free(disks, n);
    return r;
}

int
vqm_hook_read_stdin(char **out, size_t *outlen, struct vqm_error *err)
{
    size_t len = 0, cap = 65536;
    CLEANUP_FREE char *buf = malloc(cap);
    char *nb;
    ssize_t r;

    if (!buf)
        return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    for (;;) {
        if (len == cap) {
            if (cap >= HOOK_MAX_XML)
                return vqm_error_set(err, VQM_ERR_INVALID,
                                     "domain XML on stdin is larger than "
                                     "%u MiB", HOOK_MAX_XML >> 20);
            cap *= 2;
            if (!(nb = realloc(buf, cap)))
                return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
            buf = nb;
        }
        r = read(STDIN_FILENO, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return vqm_error_set_errno(err, errno, "reading stdin");
        if (r == 0)
            break;
        len += (size_t) r;
    }
    *out = vqm_steal(&buf);
    *outlen = len;
    return 0;
}

int
vqm_hook_domain_load(struct hook_domain *d, struct vqm_error *err)
{
    CLEANUP_FREE char *buf = NULL;
    size_t len = 0;

    memset(d, 0, sizeof *d);
    if (vqm_hook_read_stdin(&buf, &len, err) < 0)
        return -1;
    if (len == 0)
        return vqm_error_set(err, VQM_ERR_INVALID,
                             "no domain XML on stdin");
    return vqm_hook_domain_parse(buf, len, d, err);
}

/* A disk counts as QED when its header says so, or when the XML says so
 * and the file cannot be read. */
static bool
disk_is_qed(const struct hook_disk *k)
{
    if (k->kind == IMG_QED)
        return true;
    return (k->kind == IMG_MISSING || k->kind == IMG_UNREADABLE)
        && k->claimed && strcmp(k->claimed, "qed") == 0;
}

size_t
vqm_hook_count_qed(const struct hook_domain *d)
{
    size_t i, n = 0;

    for (i = 0; i < d->ndisks; i++)
        n += disk_is_qed(&d->disks[i]);
    return n;
}

char *
vqm_hook_qed_list(const struct hook_domain *d)
{
    char *buf = NULL;
    size_t size = 0, i;
    FILE *fp = open_memstream(&buf, &size);
    bool first = true;

    if (!fp)
        return NULL;
    for (i = 0; i < d->ndisks; i++) {
        if (!disk_is_qed(&d->disks[i]))
            continue;
        fprintf(fp, "%s%s ", first ? "" : ", ",
                vqm_q(d->disks[i].target ? d->disks[i].target : "?"));
        fprintf(fp, "%s", vqm_q(d->disks[i].path));
        first = false;
    }
    if (fclose(fp) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}
