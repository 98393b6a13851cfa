# tests for hooks
TESTS += \
	tests/test-hook-policy.sh \
	tests/test-hook-filter.sh \
	tests/test-hook-libvirtd.sh \
	$(NULL)
EXTRA_DIST += \
	tests/test-hook-policy.sh \
	tests/test-hook-filter.sh \
	tests/test-hook-libvirtd.sh \
	$(NULL)
