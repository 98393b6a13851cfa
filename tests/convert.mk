# tests for the conversion engine (src/convert, src/qcow2, --file).

check_PROGRAMS += tests/unit/vqm-set-backing
tests_unit_vqm_set_backing_SOURCES = tests/unit/vqm-set-backing.c
tests_unit_vqm_set_backing_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src
tests_unit_vqm_set_backing_LDADD = \
	src/convert/libvqmconvert.a \
	src/image/libvqmimage.a \
	src/qcow2/libvqmqcow2.a \
	src/qed/libvqmqed.a \
	src/common/libvqmcommon.a \
	$(ZLIB_LIBS) $(ZSTD_LIBS) $(XXHASH_LIBS) \
	$(NULL)

CONVERT_TESTS = \
	tests/test-convert-backing.sh \
	tests/test-convert-corrupt.sh \
	tests/test-convert-crash.sh \
	tests/test-convert-direct.sh \
	tests/test-convert-fs.sh \
	tests/test-convert-lock.sh \
	tests/test-convert-matrix.sh \
	tests/test-convert-options.sh \
	tests/test-convert-setbacking.sh \
	$(NULL)
TESTS += $(CONVERT_TESTS)
EXTRA_DIST += $(CONVERT_TESTS) tests/convert-lib.sh
