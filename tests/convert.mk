# tests for the conversion engine (src/convert, src/qcow2, --file).
CONVERT_TESTS = \
	tests/test-convert-backing.sh \
	tests/test-convert-corrupt.sh \
	tests/test-convert-crash.sh \
	tests/test-convert-fs.sh \
	tests/test-convert-lock.sh \
	tests/test-convert-matrix.sh \
	tests/test-convert-options.sh \
	$(NULL)
TESTS += $(CONVERT_TESTS)
EXTRA_DIST += $(CONVERT_TESTS) tests/convert-lib.sh
