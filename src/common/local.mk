# src/common: error, debug, cleanup and I/O helpers.  Depends on libc only.
noinst_LIBRARIES += src/common/libvqmcommon.a
src_common_libvqmcommon_a_SOURCES = \
	src/common/cleanup.c \
	src/common/cleanup.h \
	src/common/overflow.h \
	src/common/vqm-debug.c \
	src/common/vqm-debug.h \
	src/common/vqm-endian.h \
	src/common/vqm-error.c \
	src/common/vqm-error.h \
	src/common/vqm-io.c \
	src/common/vqm-io.h \
	src/common/vqm-open.c \
	src/common/vqm-open.h \
	src/common/vqm-quote.c \
	src/common/vqm-quote.h \
	$(NULL)
