# src/image: raw/QED/qcow2 images and backing chains (read-only).
# Depends on src/qed and src/common only.
noinst_LIBRARIES += src/image/libvqmimage.a
src_image_libvqmimage_a_SOURCES = \
	src/image/image.h \
	src/image/image-internal.h \
	src/image/image.c \
	src/image/image-qcow2.c \
	$(NULL)
src_image_libvqmimage_a_CPPFLAGS = $(AM_CPPFLAGS) \
	-I$(top_srcdir)/src/qed \
	$(ZLIB_CFLAGS) $(ZSTD_CFLAGS) \
	$(NULL)
