# src/qcow2
noinst_LIBRARIES += src/qcow2/libvqmqcow2.a
src_qcow2_libvqmqcow2_a_SOURCES = \
	src/qcow2/qcow2-stub.c \
	$(NULL)
