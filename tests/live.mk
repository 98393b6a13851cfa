# tests for live conversion (--live), snapshots and saved state, fleets
TESTS += \
	tests/test-live-convert.sh \
	tests/test-live-cancel.sh \
	tests/test-live-offline.sh \
	tests/test-snapshot-external.sh \
	tests/test-snapshot-managedsave.sh \
	tests/test-fleet-ansible.sh \
	tests/test-fleet-remote.sh \
	$(NULL)
EXTRA_DIST += \
	tests/live-lib.sh \
	tests/test-live-convert.sh \
	tests/test-live-cancel.sh \
	tests/test-live-offline.sh \
	tests/test-snapshot-external.sh \
	tests/test-snapshot-managedsave.sh \
	tests/test-fleet-ansible.sh \
	tests/test-fleet-remote.sh \
	$(NULL)
