# src/image
noinst_LIBRARIES += src/image/libvqmimage.a
src_image_libvqmimage_a_SOURCES = \
	src/image/image-stub.c \
	$(NULL)
