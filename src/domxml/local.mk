# src/domxml: the one reader and rewriter of libvirt domain XML.
# libxml2 only (no libvirt): both programs link it, the small one for the
# hook and its filter, the full one for discovery, the plan, live
# conversion and snapshots.
noinst_LIBRARIES += src/domxml/libvqmdomxml.a
src_domxml_libvqmdomxml_a_SOURCES = \
	src/domxml/domxml.c \
	src/domxml/domxml.h \
	src/domxml/xml-cleanup.h \
	$(NULL)
src_domxml_libvqmdomxml_a_CPPFLAGS = $(AM_CPPFLAGS) $(LIBXML2_CFLAGS)
