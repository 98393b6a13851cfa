# src/virt: libvirt discovery, planning, migration, journal and report.
noinst_LIBRARIES += src/virt/libvqmvirt.a
src_virt_libvqmvirt_a_SOURCES = \
	src/virt/virt.h \
	src/virt/virt-internal.h \
	src/virt/virt-conn.c \
	src/virt/virt-decide.c \
	src/virt/virt-graph.c \
	src/virt/virt-journal.c \
	src/virt/virt-live.c \
	src/virt/virt-live.h \
	src/virt/virt-migrate.c \
	src/virt/virt-plan.c \
	src/virt/virt-poll.c \
	src/virt/virt-poll.h \
	src/virt/virt-probe.c \
	src/virt/virt-remote.c \
	src/virt/virt-remote.h \
	src/virt/virt-report.c \
	src/virt/virt-snapshot.c \
	src/virt/virt-snapshot.h \
	$(NULL)
src_virt_libvqmvirt_a_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src $(LIBVIRT_CFLAGS) $(LIBXML2_CFLAGS)
