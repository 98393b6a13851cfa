/* virt-qed-migrate: the one reader and rewriter of libvirt domain XML.
 *
 * Every part of the tool that reads or changes a definition goes through
 * here: discovery and the plan, live conversion, snapshot and save-image
 * metadata, the hook and its filter.  libxml2 only (no libvirt), so that
 * the small hook program links it too.
 *
 * - vqm_xml_read: the one hardened parse.  No network, a document type
 *   declaration is refused outright (so no DTD is read and no entity can
 *   be declared, let alone expanded or loaded), at most
 *   VQM_DOMXML_MAX_SIZE bytes, no XML_PARSE_HUGE.
 * - vqm_domxml_disks: every <disk> of a definition (and of the domains a
 *   snapshot embeds), with its device kind, source form, driver type,
 *   flags and <backingStore> chain.
 * - vqm_domxml_rewrite: rewrite by lookup.  For each layer (a disk's top
 *   source or one <backingStore>) the caller says whether it moves and
 *   where; exactly the driver/format type and the source attribute of
 *   those layers change, every other node stays as libvirt printed it
 *   (libxml2 normalises only quoting and empty elements).
 *
 * Attributes are read in no namespace only: in <source q:file="..."/>
 * q:file is not the source's file (libvirt ignores it too), and elements
 * in a namespace (<metadata> of other programs) are never disks.
 * Library rules: nothing here prints; errors go into struct vqm_error.
 */
#ifndef VQM_DOMXML_H
#define VQM_DOMXML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/tree.h>

#include "vqm-error.h"
#include "xml-cleanup.h"

/* The largest document parsed (libvirt's own limit for a definition is
 * far below). */
#define VQM_DOMXML_MAX_SIZE (16u * 1024 * 1024)

/* ---- small tree helpers (NULL means "no such node" everywhere) ---- */

/* The first child element of n called name (in no namespace), or NULL. */
static inline xmlNodePtr
vqm_xml_child(xmlNodePtr n, const char *name)
{
    xmlNodePtr c;

    for (c = n ? n->children : NULL; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && !c->ns
            && strcmp((const char *) c->name, name) == 0)
            return c;
    return NULL;
}

/* The value of n's attribute name (free() it), or NULL. */
static inline char *
vqm_xml_attr(xmlNodePtr n, const char *name)
{
    CLEANUP_XMLFREE xmlChar *v = n ? xmlGetNoNsProp(n, BAD_CAST name)
                                   : NULL;

    return v ? strdup((const char *) v) : NULL;
}

/* Whether n has the attribute name with value value. */
static inline bool
vqm_xml_attr_is(xmlNodePtr n, const char *name, const char *value)
{
    CLEANUP_XMLFREE xmlChar *v = n ? xmlGetNoNsProp(n, BAD_CAST name)
                                   : NULL;

    return v && strcmp((const char *) v, value) == 0;
}

/* The text of n without leading and trailing white space (free() it),
 * or NULL. */
char *vqm_xml_text(xmlNodePtr n);

/* ---- the hardened parse ---- */

/* Parse len bytes of buf (what names the document in messages, e.g.
 * "domain XML").  With root set, the root element must be called so.
 * Returns the document (xmlFreeDoc it) or NULL with err set:
 * VQM_ERR_INVALID (does not parse, too large, wrong root),
 * VQM_ERR_REFUSED (document type declaration), VQM_ERR_NOMEM.
 */
xmlDocPtr vqm_xml_read(const char *buf, size_t len, const char *what,
                       const char *root, struct vqm_error *err);

/* Print doc again as libvirt would read it (no XML declaration);
 * *out is malloc'd.  0 or -1. */
int vqm_xml_print(xmlDocPtr doc, char **out, struct vqm_error *err);

/* ---- disks ---- */

enum vqm_disk_device {
    VQM_DEVICE_DISK,
    VQM_DEVICE_CDROM,
    VQM_DEVICE_FLOPPY,
    VQM_DEVICE_LUN,
    VQM_DEVICE_OTHER,
};

enum vqm_disk_source {
    VQM_SOURCE_FILE,
    VQM_SOURCE_BLOCK,
    VQM_SOURCE_VOLUME,
    VQM_SOURCE_NETWORK,
    VQM_SOURCE_DIR,
    VQM_SOURCE_NVME,
    VQM_SOURCE_VHOSTUSER,
    VQM_SOURCE_OTHER,
};

/* One layer: a disk's top source or one of its <backingStore>. */
struct vqm_domxml_layer {
    char *type;                  /* type attribute as written, or NULL */
    enum vqm_disk_source form;   /* from type (default file) */
    char *path;                  /* file= (file), dev= (block), dir= */
    char *pool, *volume;         /* volume */
    char *format;                /* <driver type> / <format type>, or NULL */
};

struct vqm_domxml_disk {
    unsigned index;              /* position among the document's disks */
    char *target;                /* <target dev>, or NULL */
    char *device;                /* device attribute, default "disk" */
    enum vqm_disk_device kind;
    bool readonly, shareable, transient;
    bool snapshot_disk;          /* a <domainsnapshot>'s <disks><disk> */
    struct vqm_domxml_layer top;
    /* The <backingStore> chain as written, the top's backing first;
     * an empty <backingStore/> ends it and is not a layer. */
    struct vqm_domxml_layer *backing;
    size_t n_backing;
};

const char *vqm_domxml_device_name(enum vqm_disk_device k);
const char *vqm_domxml_source_name(enum vqm_disk_source s);

/* Can this disk hold a QED image at all?  Disks, cdroms and floppies
 * whose source is a file, a block device or a volume; never a lun (SCSI
 * passthrough of a device), network, dir, nvme or vhostuser disk. */
bool vqm_domxml_can_hold_qed(const struct vqm_domxml_disk *d);

/* The parsed document: a <domain> (definition, save image) or a
 * <domainsnapshot> (its embedded <domain>, <inactiveDomain> and
 * <disks>). */
struct vqm_domxml;

/* Parse with vqm_xml_read; the root must be <domain> or
 * <domainsnapshot>.  what names the document in messages (NULL: "domain
 * XML").  *out is freed with vqm_domxml_free.  0 or -1. */
int vqm_domxml_parse(const char *xml, size_t len, const char *what,
                     struct vqm_domxml **out, struct vqm_error *err);
void vqm_domxml_free(struct vqm_domxml *x);
VQM_CLEANUP_DEFINE(vqm_cleanup_domxml, struct vqm_domxml *,
                       vqm_domxml_free)
#define CLEANUP_DOMXML __attribute__((cleanup(vqm_cleanup_domxml)))

/* Is the root a <domain> (not a <domainsnapshot>)? */
bool vqm_domxml_is_domain(const struct vqm_domxml *x);

/* <name> and <uuid> of the domain (trimmed; borrowed, may be NULL). */
const char *vqm_domxml_name(const struct vqm_domxml *x);
const char *vqm_domxml_uuid(const struct vqm_domxml *x);

/* Every <disk> in document order; *disks is freed with
 * vqm_domxml_disks_free.  0 or -1 (out of memory). */
int vqm_domxml_disks(const struct vqm_domxml *x,
                     struct vqm_domxml_disk **disks, size_t *n,
                     struct vqm_error *err);
void vqm_domxml_disks_free(struct vqm_domxml_disk *disks, size_t n);

/* Disks and their count, freed at the end of the scope when marked
 * CLEANUP_DOMXML_DISKS (initialise with { NULL, 0 }). */
struct vqm_domxml_disk_list {
    struct vqm_domxml_disk *v;
    size_t n;
};

static inline void
vqm_domxml_disk_list_clear(struct vqm_domxml_disk_list *l)
{
    vqm_domxml_disks_free(l->v, l->n);
}

#define CLEANUP_DOMXML_DISKS \
    __attribute__((cleanup(vqm_domxml_disk_list_clear)))

/* Where a layer moves: new_path for file and block sources, new_volume
 * (a volume name in the same pool) for volume sources, new_format for
 * its driver or format type.  NULL leaves that part alone. */
struct vqm_domxml_move {
    const char *new_path;
    const char *new_volume;
    const char *new_format;
};

/* Return true and fill *mv when layer (depth 0: the disk's top source,
 * 1...: its <backingStore> layers) moves.  Asked only for layers of
 * disks that can hold QED (vqm_domxml_can_hold_qed) whose source is a
 * file, a block device or a volume. */
typedef bool (*vqm_domxml_lookup_fn)(void *opaque,
                                     const struct vqm_domxml_disk *disk,
                                     unsigned depth,
                                     const struct vqm_domxml_layer *layer,
                                     struct vqm_domxml_move *mv);

/* Rewrite every layer the lookup moves, in the tree.  A missing
 * <driver> (top) or <format> (backingStore) is created when a format is
 * set.  *changed (may be NULL) counts the layers that really changed
 * (an attribute already at its new value is no change).  0 or -1. */
int vqm_domxml_rewrite(struct vqm_domxml *x, vqm_domxml_lookup_fn lookup,
                       void *opaque, size_t *changed, struct vqm_error *err);

/* The document as text (vqm_xml_print). */
int vqm_domxml_format(const struct vqm_domxml *x, char **out,
                      struct vqm_error *err);

#endif
