# src/convert: the conversion engine (in place and by copy), QEMU image
# locks, backing rewrites.  Depends on src/qed, src/qcow2, src/image and
# src/common.
noinst_LIBRARIES += src/convert/libvqmconvert.a
src_convert_libvqmconvert_a_SOURCES = \
	src/convert/convert.c \
	src/convert/convert.h \
	src/convert/convert-copy.c \
	src/convert/convert-inplace.c \
	src/convert/convert-internal.h \
	src/convert/convert-lock.c \
	$(NULL)
src_convert_libvqmconvert_a_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src \
	$(XXHASH_CFLAGS)
