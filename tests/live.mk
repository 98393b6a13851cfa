# tests for live conversion (--live), snapshots and saved state, fleets
TESTS += \
	tests/test-live-convert.sh \
	tests/test-live-cancel.sh \
	$(NULL)
EXTRA_DIST += \
	tests/test-live-convert.sh \
	tests/test-live-cancel.sh \
	$(NULL)
