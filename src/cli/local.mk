# src/cli: the programs.
#
# virt-qed-migrate ($(bindir)) is the full program: it links libvirt and
# runs every mode, the convert-on-stop worker (--hook-worker) included.
# virt-qed-migrate-hook ($(pkglibexecdir)) is the small helper the
# installed libvirt hook script runs at every domain start: the hook
# operations only (src/hook), without libvirt, so that it starts in a
# few milliseconds.  It starts the worker as $(bindir)/virt-qed-migrate
# (hooks/hook-paths.h).
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
	src/hook/libvqmhook.a \
	src/virt/libvqmvirt.a \
	src/domxml/libvqmdomxml.a \
	src/convert/libvqmconvert.a \
	src/image/libvqmimage.a \
	src/qcow2/libvqmqcow2.a \
	src/qed/libvqmqed.a \
	src/common/libvqmcommon.a \
	$(LIBVIRT_LIBS) $(LIBXML2_LIBS) $(ZLIB_LIBS) $(ZSTD_LIBS) $(XXHASH_LIBS) -lm

pkglibexec_PROGRAMS = virt-qed-migrate-hook
virt_qed_migrate_hook_SOURCES = \
	src/cli/hook-main.c \
	$(NULL)
virt_qed_migrate_hook_CPPFLAGS = $(AM_CPPFLAGS) \
	-I$(top_srcdir)/src
virt_qed_migrate_hook_LDADD = \
	src/hook/libvqmhook.a \
	src/domxml/libvqmdomxml.a \
	src/qed/libvqmqed.a \
	src/common/libvqmcommon.a \
	$(LIBXML2_LIBS)
