# src/hook: the libvirt qemu hook (policy, domain view, markers, filter,
# the convert-on-stop worker).  Everything but hook-worker.c is free of
# libvirt: the hook helper, virt-qed-migrate-hook, links this library
# without libvirt (a static library: hook-worker.o, which polls libvirt
# through src/virt, is only pulled into the full program, which calls
# it).
noinst_LIBRARIES += src/hook/libvqmhook.a
src_hook_libvqmhook_a_SOURCES = \
	src/hook/hook.h \
	src/hook/hook-internal.h \
	src/hook/hook.c \
	src/hook/hook-conf.c \
	src/hook/hook-domain.c \
	src/hook/hook-filter.c \
	src/hook/hook-log.c \
	src/hook/hook-markers.c \
	src/hook/hook-spawn.c \
	src/hook/hook-worker.c \
	$(NULL)
src_hook_libvqmhook_a_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src \
	$(LIBXML2_CFLAGS)
