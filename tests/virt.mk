# tests for src/virt: a private libvirtd per script (tests/libvirtd.sh).

# Domain XML reading and rewriting, no libvirt daemon.
check_PROGRAMS += tests/unit/test-virt-domxml
tests_unit_test_virt_domxml_SOURCES = tests/unit/test-virt-domxml.c
tests_unit_test_virt_domxml_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src \
	$(LIBXML2_CFLAGS)
tests_unit_test_virt_domxml_LDADD = \
	src/domxml/libvqmdomxml.a \
	src/common/libvqmcommon.a \
	$(LIBVIRT_LIBS) $(LIBXML2_LIBS) $(ZLIB_LIBS) $(ZSTD_LIBS) $(XXHASH_LIBS) -lm \
	$(LIBXML2_LIBS) \
	$(NULL)

TESTS += \
	tests/unit/test-virt-domxml \
	tests/test-virt-testdriver.sh \
	tests/test-virt-pool.sh \
	tests/test-virt-chain.sh \
	tests/test-virt-running.sh \
	tests/test-virt-block.sh \
	tests/test-virt-interrupt.sh \
	tests/test-virt-recover.sh \
	tests/test-virt-recover-int.sh \
	tests/test-virt-margins.sh \
	tests/test-virt-rollback.sh \
	tests/test-virt-hostile.sh \
	tests/test-virt-nonfile.sh \
	tests/test-virt-probe-hostile.sh \
	tests/test-virt-statedir.sh \
	tests/test-virt-escape.sh \
	tests/test-virt-every-disk.sh \
	$(NULL)
EXTRA_DIST += \
	tests/libvirtd.sh \
	tests/domxml-corpus.sh \
	tests/test-virt-every-disk.sh \
	tests/virt-lib.sh \
	tests/recover-lib.sh \
	tests/test-virt-testdriver.sh \
	tests/test-virt-pool.sh \
	tests/test-virt-chain.sh \
	tests/test-virt-running.sh \
	tests/test-virt-block.sh \
	tests/test-virt-interrupt.sh \
	tests/test-virt-recover.sh \
	tests/test-virt-recover-int.sh \
	tests/test-virt-margins.sh \
	tests/test-virt-rollback.sh \
	tests/test-virt-hostile.sh \
	tests/test-virt-nonfile.sh \
	tests/test-virt-probe-hostile.sh \
	tests/test-virt-statedir.sh \
	tests/test-virt-escape.sh \
	$(NULL)
