/* virt-qed-migrate: the small libxml2 helpers of the libvirt layer.
 *
 * Attributes are read in no namespace only: in <source q:file="..."/>
 * q:file is not the source's file (libvirt ignores it too).  Every
 * helper takes NULL for "no such node".  Header-only, so that the fuzz
 * targets built from single files get them with no extra source.
 */
#ifndef VQM_VIRT_XML_H
#define VQM_VIRT_XML_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/tree.h>

/* The first child element of n called name, or NULL. */
static inline xmlNodePtr
vqm_xml_child(xmlNodePtr n, const char *name)
{
    xmlNodePtr c;

    for (c = n ? n->children : NULL; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE
            && strcmp((const char *) c->name, name) == 0)
            return c;
    return NULL;
}

/* The value of n's attribute name (free() it), or NULL. */
static inline char *
vqm_xml_attr(xmlNodePtr n, const char *name)
{
    xmlChar *v = n ? xmlGetNoNsProp(n, BAD_CAST name) : NULL;
    char *s;

    if (!v)
        return NULL;
    s = strdup((const char *) v);
    xmlFree(v);
    return s;
}

/* Whether n has the attribute name with value value. */
static inline bool
vqm_xml_attr_is(xmlNodePtr n, const char *name, const char *value)
{
    xmlChar *v = n ? xmlGetNoNsProp(n, BAD_CAST name) : NULL;
    bool eq = v && strcmp((const char *) v, value) == 0;

    if (v)
        xmlFree(v);
    return eq;
}

#endif
