/* virt-qed-migrate hook: the XML filter (migrate begin, restore begin,
 * --hook-filter).  Points the layers the XML calls QED that are qcow2
 * now at the qcow2 image: the file itself (converted in place,
 * --keep-name) or, when the .qed file is gone, its .qcow2 sibling.
 */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "cleanup.h"
#include "hook-internal.h"
#include "vqm-quote.h"

static bool
has_suffix(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);

    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static struct hook_disk *
find_layer(struct hook_domain *d, unsigned index, unsigned depth)
{
    size_t i;

    for (i = 0; i < d->ndisks; i++)
        if (d->disks[i].index == index && d->disks[i].depth == depth)
            return &d->disks[i];
    return NULL;
}

/* The .qcow2 sibling of a .qed file that is gone, when it is qcow2. */
static bool
moved_to_sibling(struct hook_domain *d, struct hook_disk *k,
                 struct vqm_domxml_move *mv)
{
    size_t base;
    uint64_t size;
    CLEANUP_FREE char *sib = NULL;
    CLEANUP_FREE char *from = NULL;

    if (k->kind != IMG_MISSING || (k->form != VQM_SOURCE_FILE
                                   && k->form != VQM_SOURCE_BLOCK)
        || !has_suffix(k->path, ".qed"))
        return false;
    base = strlen(k->path) - 4;
    if (!(sib = malloc(base + sizeof ".qcow2")))
        return false;
    memcpy(sib, k->path, base);
    strcpy(sib + base, ".qcow2");
    if (vqm_hook_image_kind(sib, &size) != IMG_QCOW2)
        return false;
    vqm_hook_log(LOG_NOTICE, "domain '%s': %s was converted: now %s "
                 "(qcow2)", vqm_q(d->name), vqm_q(k->path), vqm_q(sib));
    /* Keep the new name for the rewrite: it outlives this call. */
    from = k->path;
    k->path = vqm_steal(&sib);
    mv->new_path = k->path;
    mv->new_format = "qcow2";
    return true;
}

/* Only layers the XML claims to be QED move: a raw disk whose guest
 * wrote a qcow2 header is never turned into qcow2. */
static bool
filter_lookup(void *opaque, const struct vqm_domxml_disk *x, unsigned depth,
              const struct vqm_domxml_layer *l, struct vqm_domxml_move *mv)
{
    struct hook_domain *d = opaque;
    struct hook_disk *k = find_layer(d, x->index, depth);

    (void) l;
    if (!k || !k->claimed || strcmp(k->claimed, "qed") != 0)
        return false;
    if (k->kind == IMG_QCOW2) {
        mv->new_format = "qcow2";
        vqm_hook_log(LOG_NOTICE, "domain '%s': %s is qcow2 now: format "
                     "changed from qed to qcow2", vqm_q(d->name),
                     vqm_q(k->path));
        return true;
    }
    return moved_to_sibling(d, k, mv);
}

size_t
vqm_hook_filter_domain(struct hook_domain *d)
{
    size_t changed = 0;
    struct vqm_error err = { 0 };

    if (vqm_domxml_rewrite(d->x, filter_lookup, d, &changed, &err) < 0) {
        vqm_hook_log(LOG_WARNING, "%s", err.msg);
        return 0;
    }
    return changed;
}

int
vqm_hook_write_xml(const struct hook_domain *d, struct vqm_error *err)
{
    CLEANUP_FREE char *xml = NULL;
    size_t len, off = 0;

    if (vqm_domxml_format(d->x, &xml, err) < 0)
        return -1;
    len = strlen(xml);
    while (off < len) {
        ssize_t r = write(STDOUT_FILENO, xml + off, len - off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return vqm_error_set_errno(err, errno, "writing stdout");
        off += (size_t) r;
    }
    return 0;
}
