/* virt-qed-migrate: scope cleanup of libxml2 objects.
 *
 * As CLEANUP_FREE in common/cleanup.h: a variable marked so must be
 * initialised (NULL), its object is released when the variable goes out
 * of scope, and vqm_steal(&p) (vqm-error.h) hands it out.
 */
#ifndef VQM_XML_CLEANUP_H
#define VQM_XML_CLEANUP_H

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/uri.h>
#include <libxml/xmlwriter.h>

#include "cleanup.h"

VQM_CLEANUP_DEFINE(vqm_cleanup_xmldoc, xmlDocPtr, xmlFreeDoc)
VQM_CLEANUP_DEFINE(vqm_cleanup_xmlfree, xmlChar *, xmlFree)
VQM_CLEANUP_DEFINE(vqm_cleanup_xml_buffer, xmlBufferPtr, xmlBufferFree)
VQM_CLEANUP_DEFINE(vqm_cleanup_xml_parser_ctxt, xmlParserCtxtPtr,
                   xmlFreeParserCtxt)
VQM_CLEANUP_DEFINE(vqm_cleanup_xml_uri, xmlURIPtr, xmlFreeURI)
VQM_CLEANUP_DEFINE(vqm_cleanup_xml_text_writer, xmlTextWriterPtr,
                   xmlFreeTextWriter)

#define CLEANUP_XMLDOC __attribute__((cleanup(vqm_cleanup_xmldoc)))
#define CLEANUP_XMLFREE __attribute__((cleanup(vqm_cleanup_xmlfree)))
#define CLEANUP_XML_BUFFER __attribute__((cleanup(vqm_cleanup_xml_buffer)))
#define CLEANUP_XML_PARSER_CTXT \
    __attribute__((cleanup(vqm_cleanup_xml_parser_ctxt)))
#define CLEANUP_XML_URI __attribute__((cleanup(vqm_cleanup_xml_uri)))
#define CLEANUP_XML_TEXT_WRITER \
    __attribute__((cleanup(vqm_cleanup_xml_text_writer)))

#endif
