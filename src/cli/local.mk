# src/cli: the virt-qed-migrate program.  Uses every library.
bin_PROGRAMS += virt-qed-migrate
virt_qed_migrate_SOURCES = \
	src/cli/file-cmd.c \
	src/cli/hook-cmd.c \
	src/cli/inspect.c \
	src/cli/main.c \
	src/cli/options.h \
	src/cli/virt-cmd.c \
	$(NULL)
virt_qed_migrate_CPPFLAGS = $(AM_CPPFLAGS) \
	-I$(top_srcdir)/src \
	$(LIBVIRT_CFLAGS) $(LIBXML2_CFLAGS)
virt_qed_migrate_LDADD = \
	src/virt/libvqmvirt.a \
	src/convert/libvqmconvert.a \
	src/image/libvqmimage.a \
	src/qcow2/libvqmqcow2.a \
	src/qed/libvqmqed.a \
	src/common/libvqmcommon.a \
	$(LIBVIRT_LIBS) $(LIBXML2_LIBS) $(ZLIB_LIBS) $(ZSTD_LIBS) -lm
