# src/image: raw/QED/qcow2 images and backing chains (read-only).
# Depends on src/qed, src/qcow2 (the reader) and src/common.
noinst_LIBRARIES += src/image/libvqmimage.a
src_image_libvqmimage_a_SOURCES = \
	src/image/image.h \
	src/image/image.c \
	$(NULL)
src_image_libvqmimage_a_CPPFLAGS = $(AM_CPPFLAGS) \
	-I$(top_srcdir)/src \
	$(NULL)
