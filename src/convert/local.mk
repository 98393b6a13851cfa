# src/convert
noinst_LIBRARIES += src/convert/libvqmconvert.a
src_convert_libvqmconvert_a_SOURCES = \
	src/convert/convert-stub.c \
	$(NULL)
