# tests for the QED reader, src/image and --inspect.

check_PROGRAMS += tests/unit/vqm-cat
tests_unit_vqm_cat_SOURCES = tests/unit/vqm-cat.c
tests_unit_vqm_cat_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src/image
tests_unit_vqm_cat_LDADD = \
	src/image/libvqmimage.a \
	src/qed/libvqmqed.a \
	src/common/libvqmcommon.a \
	$(ZLIB_LIBS) $(ZSTD_LIBS) \
	$(NULL)

QED_TESTS = \
	tests/test-qed-geometry.sh \
	$(NULL)
TESTS += $(QED_TESTS)
EXTRA_DIST += $(QED_TESTS) tests/qed-functions.sh
