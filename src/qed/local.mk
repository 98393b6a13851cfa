# src/qed: the shared QED reader.  Depends on src/common only.
noinst_LIBRARIES += src/qed/libvqmqed.a
src_qed_libvqmqed_a_SOURCES = \
	src/qed/qed.h \
	src/qed/qed-stub.c \
	$(NULL)
