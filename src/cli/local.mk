# src/cli: the virt-qed-migrate programs.
#
# virt-qed-migrate ($(bindir)) runs the file modes (--file, --inspect) and
# the hook modes (--hook, --hook-filter) itself and links neither libvirt
# nor src/virt: it starts in a few milliseconds (libvirtd runs the hook at
# every domain start).  For the libvirt modes it execs the full program,
# virt-qed-migrate-libvirt ($(pkglibexecdir)), with the same command
# line; the full program handles every mode itself.
vqm_cli_common_sources = \
	src/cli/file-cmd.c \
	src/cli/hook-cmd.c \
	src/cli/inspect.c \
	src/cli/main.c \
	src/cli/options.h \
	$(NULL)
vqm_cli_common_libs = \
	src/convert/libvqmconvert.a \
	src/image/libvqmimage.a \
	src/qcow2/libvqmqcow2.a \
	src/qed/libvqmqed.a \
	src/common/libvqmcommon.a \
	$(NULL)

bin_PROGRAMS += virt-qed-migrate
virt_qed_migrate_SOURCES = \
	$(vqm_cli_common_sources) \
	src/cli/virt-exec.c \
	$(NULL)
virt_qed_migrate_CPPFLAGS = $(AM_CPPFLAGS) \
	-I$(top_srcdir)/src \
	-DPKGLIBEXECDIR=\"$(pkglibexecdir)\" \
	$(LIBXML2_CFLAGS)
virt_qed_migrate_LDADD = \
	$(vqm_cli_common_libs) \
	$(LIBXML2_LIBS) $(ZLIB_LIBS) $(ZSTD_LIBS) $(XXHASH_LIBS) -lm

pkglibexec_PROGRAMS = virt-qed-migrate-libvirt
virt_qed_migrate_libvirt_SOURCES = \
	$(vqm_cli_common_sources) \
	src/cli/virt-cmd.c \
	$(NULL)
virt_qed_migrate_libvirt_CPPFLAGS = $(AM_CPPFLAGS) \
	-I$(top_srcdir)/src \
	-DVQM_WITH_LIBVIRT \
	$(LIBVIRT_CFLAGS) $(LIBXML2_CFLAGS)
virt_qed_migrate_libvirt_LDADD = \
	src/virt/libvqmvirt.a \
	$(vqm_cli_common_libs) \
	$(LIBVIRT_LIBS) $(LIBXML2_LIBS) $(ZLIB_LIBS) $(ZSTD_LIBS) $(XXHASH_LIBS) -lm
