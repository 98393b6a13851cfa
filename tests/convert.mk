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

# A tenant racing the tool: exchanges two directory entries in a loop.
check_PROGRAMS += tests/unit/vqm-swapper
tests_unit_vqm_swapper_SOURCES = tests/unit/vqm-swapper.c

# Name normalisation and the reader's permission rule (src/common).
check_PROGRAMS += tests/unit/test-vqm-open
tests_unit_test_vqm_open_SOURCES = tests/unit/test-vqm-open.c
tests_unit_test_vqm_open_LDADD = src/common/libvqmcommon.a

CONVERT_TESTS = \
	tests/test-convert-apparent.sh \
	tests/test-convert-backing.sh \
	tests/test-convert-corrupt.sh \
	tests/test-convert-crash.sh \
	tests/test-convert-direct.sh \
	tests/test-convert-fs.sh \
	tests/test-convert-full.sh \
	tests/test-convert-holes.sh \
	tests/test-convert-lock.sh \
	tests/test-convert-matrix.sh \
	tests/test-convert-options.sh \
	tests/test-convert-setbacking.sh \
	tests/test-tenant-backing.sh \
	tests/test-tenant-nonfile.sh \
	tests/test-tenant-race.sh \
	tests/test-tenant-symlink.sh \
	$(NULL)
TESTS += tests/unit/test-vqm-open $(CONVERT_TESTS)
EXTRA_DIST += $(CONVERT_TESTS) tests/convert-lib.sh tests/tenant-lib.sh
