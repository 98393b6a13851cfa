# tests for the QED reader, src/image and --inspect.

QED_TEST_LIBS = \
	src/image/libvqmimage.a \
	src/qed/libvqmqed.a \
	src/common/libvqmcommon.a \
	$(ZLIB_LIBS) $(ZSTD_LIBS) $(XXHASH_LIBS) \
	$(NULL)
QED_TEST_CPPFLAGS = $(AM_CPPFLAGS) \
	-I$(top_srcdir)/src/image \
	-I$(top_srcdir)/src/qed \
	$(NULL)

# Streams the guest bytes of an image through vqm_image_read.
check_PROGRAMS += tests/unit/vqm-cat
tests_unit_vqm_cat_SOURCES = tests/unit/vqm-cat.c
tests_unit_vqm_cat_CPPFLAGS = $(QED_TEST_CPPFLAGS)
tests_unit_vqm_cat_LDADD = $(QED_TEST_LIBS)

# Table-driven header validation (no external tools).
check_PROGRAMS += tests/unit/test-qed-header
tests_unit_test_qed_header_SOURCES = tests/unit/test-qed-header.c
tests_unit_test_qed_header_CPPFLAGS = $(QED_TEST_CPPFLAGS)
tests_unit_test_qed_header_CFLAGS = $(AM_CFLAGS) -Wno-override-init
tests_unit_test_qed_header_LDADD = $(QED_TEST_LIBS)

# The fuzz targets with a replay main(), built by the normal compiler.
# (Their first lines hold "fuzz-sources: src/.../*.c": -Wno-comment.)
check_PROGRAMS += tests/fuzz/fuzz-qed-replay tests/fuzz/fuzz-qcow2-replay
tests_fuzz_fuzz_qed_replay_SOURCES = \
	tests/fuzz/fuzz-qed.c \
	tests/fuzz/replay-main.c \
	$(NULL)
tests_fuzz_fuzz_qed_replay_CPPFLAGS = $(QED_TEST_CPPFLAGS)
tests_fuzz_fuzz_qed_replay_CFLAGS = $(AM_CFLAGS) -Wno-comment
tests_fuzz_fuzz_qed_replay_LDADD = $(QED_TEST_LIBS)
tests_fuzz_fuzz_qcow2_replay_SOURCES = \
	tests/fuzz/fuzz-qcow2.c \
	tests/fuzz/replay-main.c \
	$(NULL)
tests_fuzz_fuzz_qcow2_replay_CPPFLAGS = $(QED_TEST_CPPFLAGS)
tests_fuzz_fuzz_qcow2_replay_CFLAGS = $(AM_CFLAGS) -Wno-comment
tests_fuzz_fuzz_qcow2_replay_LDADD = $(QED_TEST_LIBS)

QED_SCRIPT_TESTS = \
	tests/test-qed-geometry.sh \
	tests/test-qed-chains.sh \
	tests/test-qed-dirty.sh \
	tests/test-qed-corrupt.sh \
	tests/test-qed-backing-policy.sh \
	tests/test-qed-huge.sh \
	tests/test-qed-random.sh \
	tests/test-qed-fuzz-corpus.sh \
	$(NULL)
TESTS += tests/unit/test-qed-header $(QED_SCRIPT_TESTS)
EXTRA_DIST += \
	$(QED_SCRIPT_TESTS) \
	tests/qed-functions.sh \
	tests/fuzz/make-seeds.sh \
	tests/fuzz/run-fuzzers.sh \
	$(NULL)
