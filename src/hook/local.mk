# src/hook: the libvirt qemu hook (policy, domain view, markers, filter,
# the convert-on-stop worker).  Free of libvirt: the hook helper,
# virt-qed-migrate-hook, links it without libvirt, and the worker asks
# a domain's state through the function the full program passes
# (vqm_virt_domain_active of src/virt).
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
