# src/qed: the shared QED reader.  Depends on src/common only.
noinst_LIBRARIES += src/qed/libvqmqed.a
src_qed_libvqmqed_a_SOURCES = \
	src/qed/qed.h \
	src/qed/qed-internal.h \
	src/qed/qed-header.c \
	src/qed/qed-table.c \
	src/qed/qed-check.c \
	src/qed/qed-probe.c \
	$(NULL)
