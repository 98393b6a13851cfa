# src/qcow2: the qcow2 header parser and read-only reader, and the qcow2
# v3 writer (header, in-place layout, streaming writer).
# Depends on src/common only.
noinst_LIBRARIES += src/qcow2/libvqmqcow2.a
src_qcow2_libvqmqcow2_a_SOURCES = \
	src/qcow2/qcow2-compress.c \
	src/qcow2/qcow2-header.c \
	src/qcow2/qcow2-reader.c \
	src/qcow2/qcow2-reader.h \
	src/qcow2/qcow2-stream.c \
	src/qcow2/qcow2-writer.h \
	$(NULL)
src_qcow2_libvqmqcow2_a_CPPFLAGS = $(AM_CPPFLAGS) $(ZLIB_CFLAGS) $(ZSTD_CFLAGS)
