# tests for src/virt: a private libvirtd per script (tests/libvirtd.sh).
TESTS += \
	tests/test-virt-testdriver.sh \
	tests/test-virt-pool.sh \
	tests/test-virt-chain.sh \
	tests/test-virt-running.sh \
	tests/test-virt-interrupt.sh \
	$(NULL)
EXTRA_DIST += \
	tests/libvirtd.sh \
	tests/virt-lib.sh \
	tests/test-virt-testdriver.sh \
	tests/test-virt-pool.sh \
	tests/test-virt-chain.sh \
	tests/test-virt-running.sh \
	tests/test-virt-interrupt.sh \
	$(NULL)
