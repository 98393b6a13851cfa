/* virt-qed-migrate: the one reader and rewriter of libvirt domain XML
 * (see domxml.h).
 *
 * Invariant: a rewrite changes only the source attribute (file, dev or
 * volume) and the driver/format type of the layers the caller's lookup
 * moves, creating a <driver> or <format> element only where a format
 * must be set and none exists; the tree is edited, never the text, so
 * everything else (comments, metadata, whitespace) is printed as it was
 * read.
 */
#include <config.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlsave.h>

#include "domxml.h"

struct vqm_domxml {
    xmlDocPtr doc;
    char *name;
    char *uuid;
};

char *
vqm_xml_text(xmlNodePtr n)
{
    CLEANUP_XMLFREE xmlChar *v = NULL;
    char *b, *e;

    if (!n || !(v = xmlNodeGetContent(n)))
        return NULL;
    for (b = (char *) v; isspace((unsigned char) *b); b++)
        ;
    for (e = b + strlen(b); e > b && isspace((unsigned char) e[-1]); e--)
        ;
    return strndup(b, (size_t) (e - b));
}

/* ---- the hardened parse ---- */

/* SAX callback of a document type declaration: stop at once, before
 * its internal subset (entity declarations) is read. */
static void
refuse_dtd(void *ctx, const xmlChar *name, const xmlChar *external_id,
           const xmlChar *system_id)
{
    xmlParserCtxtPtr ctxt = ctx;

    (void) name;
    (void) external_id;
    (void) system_id;
    ctxt->_private = (void *) refuse_dtd;
    xmlStopParser(ctxt);
}

/* External entities and DTDs are never loaded, whatever asks. */
static xmlParserInputPtr
no_resolve(void *ctx, const xmlChar *public_id, const xmlChar *system_id)
{
    (void) ctx;
    (void) public_id;
    (void) system_id;
    return NULL;
}

xmlDocPtr
vqm_xml_read(const char *buf, size_t len, const char *what,
             const char *root, struct vqm_error *err)
{
    CLEANUP_XML_PARSER_CTXT xmlParserCtxtPtr ctxt = NULL;
    CLEANUP_XMLDOC xmlDocPtr doc = NULL;
    xmlNodePtr r;
    bool dtd;

    if (len > VQM_DOMXML_MAX_SIZE) {
        vqm_error_set(err, VQM_ERR_INVALID, "%s is larger than %u MiB", what,
                      VQM_DOMXML_MAX_SIZE >> 20);
        return NULL;
    }
    if (!(ctxt = xmlNewParserCtxt())) {
        vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
        return NULL;
    }
    ctxt->sax->internalSubset = refuse_dtd;
    ctxt->sax->externalSubset = refuse_dtd;
    ctxt->sax->resolveEntity = no_resolve;
    ctxt->_private = NULL;
    /* Neither XML_PARSE_NOENT nor XML_PARSE_DTDLOAD nor XML_PARSE_HUGE. */
    doc = xmlCtxtReadMemory(ctxt, buf, (int) len, "domain.xml", NULL,
                            XML_PARSE_NONET | XML_PARSE_NOERROR
                            | XML_PARSE_NOWARNING);
    dtd = ctxt->_private == (void *) refuse_dtd;
    if (dtd || !doc) {
        const xmlError *xe = xmlCtxtGetLastError(ctxt);
        char msg[256] = "unknown error";
        size_t n;

        if (xe && xe->message) {
            snprintf(msg, sizeof msg, "%s", xe->message);
            for (n = strlen(msg); n > 0 && isspace((unsigned char) msg[n - 1]);
                 n--)
                msg[n - 1] = '\0';
        }
        if (dtd)
            vqm_error_set(err, VQM_ERR_REFUSED, "%s has a document type "
                          "declaration: refused", what);
        else
            vqm_error_set(err, VQM_ERR_INVALID, "%s does not parse: %s",
                          what, msg);
        return NULL;
    }
    r = xmlDocGetRootElement(doc);
    if (!r || (root && (r->ns || strcmp((const char *) r->name, root) != 0))) {
        vqm_error_set(err, VQM_ERR_INVALID, "%s is not a <%s>", what,
                      root ? root : "document");
        return NULL;
    }
    return vqm_steal(&doc);
}

int
vqm_xml_print(xmlDocPtr doc, char **out, struct vqm_error *err)
{
    CLEANUP_XML_BUFFER xmlBufferPtr buf = xmlBufferCreate();
    xmlSaveCtxtPtr save;

    *out = NULL;
    save = buf ? xmlSaveToBuffer(buf, "UTF-8", XML_SAVE_NO_DECL) : NULL;
    if (!save || xmlSaveDoc(save, doc) < 0) {
        if (save)
            xmlSaveClose(save);
        return vqm_error_set(err, VQM_ERR_NOMEM, "cannot print the XML");
    }
    xmlSaveClose(save);
    *out = strdup((const char *) xmlBufferContent(buf));
    if (!*out)
        return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    return 0;
}

/* ---- names ---- */

static const struct {
    const char *name;
    enum vqm_disk_device kind;
} devices[] = {
    { "disk", VQM_DEVICE_DISK },
    { "cdrom", VQM_DEVICE_CDROM },
    { "floppy", VQM_DEVICE_FLOPPY },
    { "lun", VQM_DEVICE_LUN },
};

static const struct {
    const char *name;
    enum vqm_disk_source form;
} sources[] = {
    { "file", VQM_SOURCE_FILE },
    { "block", VQM_SOURCE_BLOCK },
    { "volume", VQM_SOURCE_VOLUME },
    { "network", VQM_SOURCE_NETWORK },
    { "dir", VQM_SOURCE_DIR },
    { "nvme", VQM_SOURCE_NVME },
    { "vhostuser", VQM_SOURCE_VHOSTUSER },
};

const char *
vqm_domxml_device_name(enum vqm_disk_device k)
{
    size_t i;

    for (i = 0; i < sizeof devices / sizeof devices[0]; i++)
        if (devices[i].kind == k)
            return devices[i].name;
    return "other";
}

const char *
vqm_domxml_source_name(enum vqm_disk_source s)
{
    size_t i;

    for (i = 0; i < sizeof sources / sizeof sources[0]; i++)
        if (sources[i].form == s)
            return sources[i].name;
    return "other";
}

static enum vqm_disk_device
device_of(const char *s)
{
    size_t i;

    if (!s)
        return VQM_DEVICE_DISK;
    for (i = 0; i < sizeof devices / sizeof devices[0]; i++)
        if (strcmp(devices[i].name, s) == 0)
            return devices[i].kind;
    return VQM_DEVICE_OTHER;
}

static enum vqm_disk_source
source_of(const char *s)
{
    size_t i;

    if (!s)
        return VQM_SOURCE_FILE;
    for (i = 0; i < sizeof sources / sizeof sources[0]; i++)
        if (strcmp(sources[i].name, s) == 0)
            return sources[i].form;
    return VQM_SOURCE_OTHER;
}

static bool
movable_form(enum vqm_disk_source s)
{
    return s == VQM_SOURCE_FILE || s == VQM_SOURCE_BLOCK
        || s == VQM_SOURCE_VOLUME;
}

bool
vqm_domxml_can_hold_qed(const struct vqm_domxml_disk *d)
{
    return (d->kind == VQM_DEVICE_DISK || d->kind == VQM_DEVICE_CDROM
            || d->kind == VQM_DEVICE_FLOPPY) && movable_form(d->top.form);
}

/* ---- reading ---- */

static bool
is_elem(xmlNodePtr n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && !n->ns
        && strcmp((const char *) n->name, name) == 0;
}

/* The attribute of <source> that names the layer's file for its form. */
static const char *
path_attr(enum vqm_disk_source form)
{
    switch (form) {
    case VQM_SOURCE_FILE: return "file";
    case VQM_SOURCE_BLOCK: return "dev";
    case VQM_SOURCE_DIR: return "dir";
    default: return NULL;
    }
}

static void
layer_clear(struct vqm_domxml_layer *l)
{
    free(l->type);
    free(l->path);
    free(l->pool);
    free(l->volume);
    free(l->format);
    memset(l, 0, sizeof *l);
}

/* n is a <disk> (fmt_elem "driver") or a <backingStore> ("format"). */
static int
read_layer(xmlNodePtr n, const char *fmt_elem, struct vqm_domxml_layer *l)
{
    xmlNodePtr src = vqm_xml_child(n, "source");
    const char *pa;

    memset(l, 0, sizeof *l);
    l->type = vqm_xml_attr(n, "type");
    l->form = source_of(l->type);
    if ((pa = path_attr(l->form)))
        l->path = vqm_xml_attr(src, pa);
    if (l->form == VQM_SOURCE_VOLUME) {
        l->pool = vqm_xml_attr(src, "pool");
        l->volume = vqm_xml_attr(src, "volume");
    }
    l->format = vqm_xml_attr(vqm_xml_child(n, fmt_elem), "type");
    return 0;
}

static void
disk_clear(struct vqm_domxml_disk *d)
{
    size_t k;

    free(d->target);
    free(d->device);
    layer_clear(&d->top);
    for (k = 0; k < d->n_backing; k++)
        layer_clear(&d->backing[k]);
    free(d->backing);
    memset(d, 0, sizeof *d);
}

void
vqm_domxml_disks_free(struct vqm_domxml_disk *disks, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        disk_clear(&disks[i]);
    free(disks);
}

/* A <backingStore> that describes a layer (an empty one ends the
 * chain). */
static xmlNodePtr
next_backing(xmlNodePtr n)
{
    xmlNodePtr bs = vqm_xml_child(n, "backingStore");

    return bs && vqm_xml_child(bs, "source") ? bs : NULL;
}

static int
read_disk(xmlNodePtr n, unsigned index, bool snapshot_disk,
          struct vqm_domxml_disk *d)
{
    xmlNodePtr bs;
    size_t nb = 0;

    memset(d, 0, sizeof *d);
    d->index = index;
    d->snapshot_disk = snapshot_disk;
    d->target = vqm_xml_attr(vqm_xml_child(n, "target"), "dev");
    if (snapshot_disk && !d->target)
        d->target = vqm_xml_attr(n, "name");
    d->device = vqm_xml_attr(n, "device");
    if (!d->device && !(d->device = strdup("disk")))
        return -1;
    d->kind = device_of(d->device);
    d->readonly = vqm_xml_child(n, "readonly") != NULL;
    d->shareable = vqm_xml_child(n, "shareable") != NULL;
    d->transient = vqm_xml_child(n, "transient") != NULL;
    read_layer(n, "driver", &d->top);
    for (bs = next_backing(n); bs; bs = next_backing(bs))
        nb++;
    if (nb && !(d->backing = calloc(nb, sizeof *d->backing)))
        return -1;
    for (bs = next_backing(n); bs; bs = next_backing(bs))
        read_layer(bs, "format", &d->backing[d->n_backing++]);
    return 0;
}

/* Call fn for every <disk> element of the document in order: a domain's
 * devices, or for a snapshot its embedded domains' devices and its own
 * <disks>. */
typedef int (*disk_fn)(void *opaque, xmlNodePtr disk, unsigned index,
                       bool snapshot_disk);

static int
each_disk_in(xmlNodePtr parent, bool snapshot_disk, unsigned *index,
             disk_fn fn, void *opaque)
{
    xmlNodePtr c;

    for (c = parent ? parent->children : NULL; c; c = c->next)
        if (is_elem(c, "disk") && fn(opaque, c, (*index)++,
                                     snapshot_disk) < 0)
            return -1;
    return 0;
}

static int
each_disk(const struct vqm_domxml *x, disk_fn fn, void *opaque)
{
    xmlNodePtr root = xmlDocGetRootElement(x->doc);
    unsigned index = 0;

    if (is_elem(root, "domain"))
        return each_disk_in(vqm_xml_child(root, "devices"), false, &index,
                            fn, opaque);
    if (each_disk_in(vqm_xml_child(vqm_xml_child(root, "domain"),
                                   "devices"), false, &index, fn,
                     opaque) < 0
        || each_disk_in(vqm_xml_child(vqm_xml_child(root, "inactiveDomain"),
                                      "devices"), false, &index, fn,
                        opaque) < 0)
        return -1;
    return each_disk_in(vqm_xml_child(root, "disks"), true, &index, fn,
                        opaque);
}

/* The <domain> holding name and uuid. */
static xmlNodePtr
domain_node(xmlDocPtr doc)
{
    xmlNodePtr root = xmlDocGetRootElement(doc);

    return is_elem(root, "domain") ? root : vqm_xml_child(root, "domain");
}

int
vqm_domxml_parse(const char *xml, size_t len, const char *what,
                 struct vqm_domxml **out, struct vqm_error *err)
{
    CLEANUP_DOMXML struct vqm_domxml *x = NULL;
    xmlNodePtr root, dom;

    *out = NULL;
    if (!what)
        what = "domain XML";
    if (!(x = calloc(1, sizeof *x)))
        return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    if (!(x->doc = vqm_xml_read(xml, len, what, NULL, err)))
        return -1;
    root = xmlDocGetRootElement(x->doc);
    if (!is_elem(root, "domain") && !is_elem(root, "domainsnapshot"))
        return vqm_error_set(err, VQM_ERR_INVALID, "%s is not a <domain>",
                             what);
    dom = domain_node(x->doc);
    x->name = vqm_xml_text(vqm_xml_child(dom, "name"));
    x->uuid = vqm_xml_text(vqm_xml_child(dom, "uuid"));
    *out = vqm_steal(&x);
    return 0;
}

void
vqm_domxml_free(struct vqm_domxml *x)
{
    if (!x)
        return;
    xmlFreeDoc(x->doc);
    free(x->name);
    free(x->uuid);
    free(x);
}

bool
vqm_domxml_is_domain(const struct vqm_domxml *x)
{
    return is_elem(xmlDocGetRootElement(x->doc), "domain");
}

const char *
vqm_domxml_name(const struct vqm_domxml *x)
{
    return x->name;
}

const char *
vqm_domxml_uuid(const struct vqm_domxml *x)
{
    return x->uuid;
}

struct collect {
    struct vqm_domxml_disk *v;
    size_t n;
};

static int
collect_one(void *opaque, xmlNodePtr disk, unsigned index,
            bool snapshot_disk)
{
    struct collect *c = opaque;
    struct vqm_domxml_disk *nv = realloc(c->v, (c->n + 1) * sizeof *nv);

    if (!nv)
        return -1;
    c->v = nv;
    if (read_disk(disk, index, snapshot_disk, &c->v[c->n]) < 0) {
        c->n++;
        return -1;
    }
    c->n++;
    return 0;
}

int
vqm_domxml_disks(const struct vqm_domxml *x, struct vqm_domxml_disk **disks,
                 size_t *n, struct vqm_error *err)
{
    struct collect c = { NULL, 0 };

    *disks = NULL;
    *n = 0;
    if (each_disk(x, collect_one, &c) < 0) {
        vqm_domxml_disks_free(c.v, c.n);
        return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    }
    *disks = c.v;
    *n = c.n;
    return 0;
}

/* ---- rewriting ---- */

struct rewrite {
    vqm_domxml_lookup_fn lookup;
    void *opaque;
    size_t changed;
};

/* Set n's attribute name to value; true when it changed. */
static bool
set_attr(xmlNodePtr n, const char *name, const char *value)
{
    if (!value || vqm_xml_attr_is(n, name, value))
        return false;
    xmlSetProp(n, BAD_CAST name, BAD_CAST value);
    return true;
}

/* Move one layer (n: <disk> or <backingStore>). */
static bool
move_layer(xmlNodePtr n, bool top, const struct vqm_domxml_layer *l,
           const struct vqm_domxml_move *mv)
{
    xmlNodePtr src = vqm_xml_child(n, "source");
    const char *fe = top ? "driver" : "format";
    xmlNodePtr fmt = vqm_xml_child(n, fe);
    bool changed = false;
    const char *pa = path_attr(l->form);

    if (src && pa && l->path)
        changed |= set_attr(src, pa, mv->new_path);
    else if (src && l->form == VQM_SOURCE_VOLUME && l->volume)
        changed |= set_attr(src, "volume", mv->new_volume);
    if (mv->new_format) {
        if (!fmt) {
            /* libvirt prints <driver> and <format> first. */
            fmt = xmlNewNode(NULL, BAD_CAST fe);
            if (!fmt)
                return changed;
            if (top)
                xmlSetProp(fmt, BAD_CAST "name", BAD_CAST "qemu");
            if (n->children)
                xmlAddPrevSibling(n->children, fmt);
            else
                xmlAddChild(n, fmt);
        }
        changed |= set_attr(fmt, "type", mv->new_format);
    }
    return changed;
}

static int
rewrite_one(void *opaque, xmlNodePtr disk, unsigned index,
            bool snapshot_disk)
{
    struct rewrite *rw = opaque;
    struct vqm_domxml_disk d;
    struct vqm_domxml_move mv;
    xmlNodePtr bs;
    unsigned depth = 0;

    if (read_disk(disk, index, snapshot_disk, &d) < 0) {
        disk_clear(&d);
        return -1;
    }
    if (vqm_domxml_can_hold_qed(&d)) {
        memset(&mv, 0, sizeof mv);
        if (rw->lookup(rw->opaque, &d, 0, &d.top, &mv)
            && move_layer(disk, true, &d.top, &mv))
            rw->changed++;
        for (bs = next_backing(disk); bs && depth < d.n_backing;
             bs = next_backing(bs)) {
            const struct vqm_domxml_layer *l = &d.backing[depth++];

            if (!movable_form(l->form))
                continue;
            memset(&mv, 0, sizeof mv);
            if (rw->lookup(rw->opaque, &d, depth, l, &mv)
                && move_layer(bs, false, l, &mv))
                rw->changed++;
        }
    }
    disk_clear(&d);
    return 0;
}

int
vqm_domxml_rewrite(struct vqm_domxml *x, vqm_domxml_lookup_fn lookup,
                   void *opaque, size_t *changed, struct vqm_error *err)
{
    struct rewrite rw = { lookup, opaque, 0 };

    if (changed)
        *changed = 0;
    if (each_disk(x, rewrite_one, &rw) < 0)
        return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    if (changed)
        *changed = rw.changed;
    return 0;
}

int
vqm_domxml_format(const struct vqm_domxml *x, char **out,
                  struct vqm_error *err)
{
    return vqm_xml_print(x->doc, out, err);
}
