# tests for hooks
TESTS += \
	tests/test-hook-policy.sh \
	tests/test-hook-filter.sh \
	tests/test-hook-libvirtd.sh \
	tests/test-hook-markers.sh \
	$(NULL)
EXTRA_DIST += \
	tests/test-hook-policy.sh \
	tests/test-hook-filter.sh \
	tests/test-hook-libvirtd.sh \
	tests/test-hook-markers.sh \
	$(NULL)
