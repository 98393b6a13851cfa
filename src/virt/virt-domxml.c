/* virt-qed-migrate: reading and rewriting libvirt domain XML.
 *
 * The definition is edited as a libxml2 tree: only the attributes of the
 * disks we convert change (driver type, source, backingStore format and
 * source); every other node, including whitespace, stays as libvirt
 * printed it.  Parsing never touches the network (XML_PARSE_NONET).
 */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlsave.h>

#include "virt.h"
#include "virt-xml.h"

static char *
text_of(xmlNodePtr n)
{
    xmlChar *v;
    char *s;

    if (!n)
        return NULL;
    v = xmlNodeGetContent(n);
    if (!v)
        return NULL;
    s = strdup((const char *) v);
    xmlFree(v);
    return s;
}

/* The path a <source> names: file=, dev= (block) or NULL. */
static char *
source_path(xmlNodePtr src)
{
    char *s;

    if (!src)
        return NULL;
    if ((s = vqm_xml_attr(src, "file")))
        return s;
    return vqm_xml_attr(src, "dev");
}

static xmlDocPtr
parse(const char *xml, struct vqm_error *err)
{
    xmlDocPtr doc;

    doc = xmlReadMemory(xml, (int) strlen(xml), "domain.xml", NULL,
                        XML_PARSE_NONET | XML_PARSE_NOERROR
                        | XML_PARSE_NOWARNING);
    if (!doc || !xmlDocGetRootElement(doc)
        || strcmp((const char *) xmlDocGetRootElement(doc)->name,
                  "domain") != 0) {
        if (doc)
            xmlFreeDoc(doc);
        vqm_error_set(err, VQM_ERR_INVALID,
                      "cannot parse the domain XML");
        return NULL;
    }
    return doc;
}

static void
disk_clear(struct vqm_domxml_disk *d)
{
    size_t i;

    free(d->target);
    free(d->device);
    free(d->type);
    free(d->file);
    free(d->pool);
    free(d->volume);
    free(d->format);
    for (i = 0; i < d->n_backing; i++) {
        free(d->backing_paths[i]);
        free(d->backing_formats[i]);
    }
    free(d->backing_paths);
    free(d->backing_formats);
}

void
vqm_domxml_disks_free(struct vqm_domxml_disk *disks, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        disk_clear(&disks[i]);
    free(disks);
}

static int
read_backing(xmlNodePtr disk, struct vqm_domxml_disk *d)
{
    xmlNodePtr bs = vqm_xml_child(disk, "backingStore");

    while (bs && vqm_xml_child(bs, "source")) {
        char **p = realloc(d->backing_paths,
                           (d->n_backing + 1) * sizeof *p);
        char **f;
        xmlNodePtr fmt;

        if (!p)
            return -1;
        d->backing_paths = p;
        f = realloc(d->backing_formats, (d->n_backing + 1) * sizeof *f);
        if (!f)
            return -1;
        d->backing_formats = f;
        fmt = vqm_xml_child(bs, "format");
        d->backing_paths[d->n_backing] =
            source_path(vqm_xml_child(bs, "source"));
        d->backing_formats[d->n_backing] = vqm_xml_attr(fmt, "type");
        d->n_backing++;
        bs = vqm_xml_child(bs, "backingStore");
    }
    return 0;
}

int
vqm_domxml_disks(const char *xml, struct vqm_domxml_disk **disks,
                 size_t *n, char **name, char **uuid, struct vqm_error *err)
{
    xmlDocPtr doc;
    xmlNodePtr root, devs, c;
    struct vqm_domxml_disk *v = NULL;
    size_t nv = 0;

    *disks = NULL;
    *n = 0;
    if (!(doc = parse(xml, err)))
        return -1;
    root = xmlDocGetRootElement(doc);
    if (name)
        *name = text_of(vqm_xml_child(root, "name"));
    if (uuid)
        *uuid = text_of(vqm_xml_child(root, "uuid"));
    devs = vqm_xml_child(root, "devices");
    for (c = devs ? devs->children : NULL; c; c = c->next) {
        struct vqm_domxml_disk *d, *nvp;
        xmlNodePtr src, drv;

        if (c->type != XML_ELEMENT_NODE
            || strcmp((const char *) c->name, "disk") != 0)
            continue;
        nvp = realloc(v, (nv + 1) * sizeof *v);
        if (!nvp)
            goto nomem;
        v = nvp;
        d = &v[nv++];
        memset(d, 0, sizeof *d);
        d->type = vqm_xml_attr(c, "type");
        d->device = vqm_xml_attr(c, "device");
        if (!d->device)
            d->device = strdup("disk");
        d->target = vqm_xml_attr(vqm_xml_child(c, "target"), "dev");
        drv = vqm_xml_child(c, "driver");
        d->format = drv ? vqm_xml_attr(drv, "type") : NULL;
        src = vqm_xml_child(c, "source");
        if (src) {
            d->file = source_path(src);
            d->pool = vqm_xml_attr(src, "pool");
            d->volume = vqm_xml_attr(src, "volume");
        }
        if (read_backing(c, d) < 0)
            goto nomem;
    }
    xmlFreeDoc(doc);
    *disks = v;
    *n = nv;
    return 0;

 nomem:
    xmlFreeDoc(doc);
    vqm_domxml_disks_free(v, nv);
    return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
}

static void
set_attr_if(xmlNodePtr n, const char *name, const char *value)
{
    if (n && value)
        xmlSetProp(n, BAD_CAST name, BAD_CAST value);
}

static void
rewrite_disk(xmlNodePtr disk, const struct vqm_domxml_change *ch)
{
    xmlNodePtr src = vqm_xml_child(disk, "source");
    xmlNodePtr drv = vqm_xml_child(disk, "driver");
    xmlNodePtr bs;
    size_t i;

    if (src) {
        if (xmlHasNsProp(src, BAD_CAST "file", NULL))
            set_attr_if(src, "file", ch->new_file);
        else if (xmlHasNsProp(src, BAD_CAST "dev", NULL))
            set_attr_if(src, "dev", ch->new_file);
        else if (xmlHasNsProp(src, BAD_CAST "volume", NULL))
            set_attr_if(src, "volume", ch->new_volume);
    }
    if (ch->new_format) {
        if (!drv) {
            /* A disk without <driver> had no format; libvirt puts
             * <driver> first inside <disk>. */
            drv = xmlNewNode(NULL, BAD_CAST "driver");
            xmlSetProp(drv, BAD_CAST "name", BAD_CAST "qemu");
            if (disk->children)
                xmlAddPrevSibling(disk->children, drv);
            else
                xmlAddChild(disk, drv);
        }
        xmlSetProp(drv, BAD_CAST "type", BAD_CAST ch->new_format);
    }
    for (bs = vqm_xml_child(disk, "backingStore"); bs;
         bs = vqm_xml_child(bs, "backingStore")) {
        xmlNodePtr bsrc = vqm_xml_child(bs, "source");
        char *p = source_path(bsrc);

        if (!p)
            break;
        for (i = 0; i < ch->n_layers; i++) {
            xmlNodePtr fmt;

            if (strcmp(p, ch->old_paths[i]) != 0)
                continue;
            if (xmlHasNsProp(bsrc, BAD_CAST "file", NULL))
                set_attr_if(bsrc, "file", ch->new_paths[i]);
            else if (xmlHasNsProp(bsrc, BAD_CAST "dev", NULL))
                set_attr_if(bsrc, "dev", ch->new_paths[i]);
            fmt = vqm_xml_child(bs, "format");
            if (fmt)
                set_attr_if(fmt, "type", ch->new_formats[i]);
            break;
        }
        free(p);
    }
}

int
vqm_domxml_rewrite(const char *xml, const struct vqm_domxml_change *ch,
                   size_t n, char **out, struct vqm_error *err)
{
    xmlDocPtr doc;
    xmlNodePtr devs, c;
    xmlBufferPtr buf;
    xmlSaveCtxtPtr save;
    size_t i;

    *out = NULL;
    if (!(doc = parse(xml, err)))
        return -1;
    devs = vqm_xml_child(xmlDocGetRootElement(doc), "devices");
    for (c = devs ? devs->children : NULL; c; c = c->next) {
        xmlNodePtr t;
        char *dev;

        if (c->type != XML_ELEMENT_NODE
            || strcmp((const char *) c->name, "disk") != 0)
            continue;
        t = vqm_xml_child(c, "target");
        dev = t ? vqm_xml_attr(t, "dev") : NULL;
        for (i = 0; dev && i < n; i++)
            if (strcmp(dev, ch[i].target) == 0)
                rewrite_disk(c, &ch[i]);
        free(dev);
    }

    buf = xmlBufferCreate();
    save = buf ? xmlSaveToBuffer(buf, "UTF-8", XML_SAVE_NO_DECL) : NULL;
    if (!save || xmlSaveDoc(save, doc) < 0) {
        if (save)
            xmlSaveClose(save);
        if (buf)
            xmlBufferFree(buf);
        xmlFreeDoc(doc);
        return vqm_error_set(err, VQM_ERR_NOMEM,
                             "cannot print the domain XML");
    }
    xmlSaveClose(save);
    *out = strdup((const char *) xmlBufferContent(buf));
    xmlBufferFree(buf);
    xmlFreeDoc(doc);
    if (!*out)
        return vqm_error_set(err, VQM_ERR_NOMEM, "out of memory");
    return 0;
}
