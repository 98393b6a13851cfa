# tests for docs (and the demo of the README's quick start)
TESTS += \
	tests/test-docs-options.sh \
	tests/test-docs-pod.sh \
	tests/test-docs-completion.sh \
	$(NULL)
EXTRA_DIST += \
	tests/test-docs-options.sh \
	tests/test-docs-pod.sh \
	tests/test-docs-completion.sh \
	tests/demo.sh \
	tests/libvirtd.sh \
	tests/demo/demo-app1.xml \
	tests/demo/demo-modern.xml \
	tests/demo/demo-web1.xml \
	tests/demo/demo-olddb.xml \
	tests/demo/demo-oldmail.xml \
	$(NULL)
