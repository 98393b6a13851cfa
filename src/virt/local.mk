# src/virt
noinst_LIBRARIES += src/virt/libvqmvirt.a
src_virt_libvqmvirt_a_SOURCES = \
	src/virt/virt-stub.c \
	$(NULL)
src_virt_libvqmvirt_a_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src $(LIBVIRT_CFLAGS) $(LIBXML2_CFLAGS)
