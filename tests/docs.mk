# tests for docs, and for the source rules they state (the demo of the
# README's quick start, the module layering of docs/architecture.md)
TESTS += \
	tests/test-docs-options.sh \
	tests/test-docs-pod.sh \
	tests/test-docs-completion.sh \
	tests/test-layering.sh \
	$(NULL)
EXTRA_DIST += \
	tests/test-layering.sh \
	tests/test-docs-options.sh \
	tests/test-docs-pod.sh \
	tests/test-docs-completion.sh \
	tests/test-layering.sh \
	tests/demo.sh \
	tests/libvirtd.sh \
	tests/demo/demo-app1.xml \
	tests/demo/demo-modern.xml \
	tests/demo/demo-web1.xml \
	tests/demo/demo-olddb.xml \
	tests/demo/demo-oldmail.xml \
	$(NULL)
