# tests: fuzz targets of the text parsers (domain XML, journal, hook)
# and of discovery's header probe, built with the normal compiler and a
# replay main() and run over their seeds and mutations
# (tests/test-fuzz-xml-corpus.sh; the probe in
# tests/test-qed-fuzz-corpus.sh with the other image targets).  The
# libFuzzer builds are made by tests/fuzz/run-fuzzers.sh.
# (Their first lines hold "fuzz-sources: src/.../*.c": -Wno-comment.)

check_PROGRAMS += \
	tests/fuzz/fuzz-domxml-replay \
	tests/fuzz/fuzz-journal-replay \
	tests/fuzz/fuzz-hook-replay \
	tests/fuzz/fuzz-probe-replay \
	$(NULL)

tests_fuzz_fuzz_domxml_replay_SOURCES = \
	tests/fuzz/fuzz-domxml.c \
	tests/fuzz/fuzz-common.h \
	tests/fuzz/replay-main.c \
	$(NULL)
tests_fuzz_fuzz_domxml_replay_CPPFLAGS = $(AM_CPPFLAGS) \
	-I$(top_srcdir)/src $(LIBXML2_CFLAGS)
tests_fuzz_fuzz_domxml_replay_CFLAGS = $(AM_CFLAGS) -Wno-comment
tests_fuzz_fuzz_domxml_replay_LDADD = \
	src/domxml/libvqmdomxml.a \
	src/common/libvqmcommon.a \
	$(LIBXML2_LIBS) \
	$(NULL)

tests_fuzz_fuzz_journal_replay_SOURCES = \
	tests/fuzz/fuzz-journal.c \
	tests/fuzz/fuzz-common.h \
	tests/fuzz/replay-main.c \
	$(NULL)
tests_fuzz_fuzz_journal_replay_CPPFLAGS = $(AM_CPPFLAGS) \
	-I$(top_srcdir)/src -I$(top_srcdir)/src/virt
tests_fuzz_fuzz_journal_replay_CFLAGS = $(AM_CFLAGS) -Wno-comment
tests_fuzz_fuzz_journal_replay_LDADD = \
	src/virt/libvqmvirt.a \
	src/common/libvqmcommon.a \
	$(GLIB_LIBS) \
	$(NULL)

# fuzz-hook.c drives src/hook (without libvirt); the link wraps open()
# and syslog() (see its fuzz-libs line).
tests_fuzz_fuzz_hook_replay_SOURCES = \
	tests/fuzz/fuzz-hook.c \
	tests/fuzz/fuzz-common.h \
	tests/fuzz/replay-main.c \
	$(NULL)
tests_fuzz_fuzz_hook_replay_CPPFLAGS = $(AM_CPPFLAGS) \
	-I$(top_srcdir)/src $(LIBXML2_CFLAGS)
tests_fuzz_fuzz_hook_replay_CFLAGS = $(AM_CFLAGS) -Wno-comment
tests_fuzz_fuzz_hook_replay_LDFLAGS = $(AM_LDFLAGS) \
	-Wl,--wrap=open -Wl,--wrap=open64 -Wl,--wrap=syslog \
	-Wl,--wrap=__syslog_chk
tests_fuzz_fuzz_hook_replay_LDADD = \
	src/hook/libvqmhook.a \
	src/domxml/libvqmdomxml.a \
	src/qed/libvqmqed.a \
	src/common/libvqmcommon.a \
	$(LIBXML2_LIBS) \
	$(NULL)

# fuzz-probe.c drives vqm_probe_file (src/virt/virt-probe.c) over a file.
tests_fuzz_fuzz_probe_replay_SOURCES = \
	tests/fuzz/fuzz-probe.c \
	tests/fuzz/fuzz-common.h \
	tests/fuzz/replay-main.c \
	$(NULL)
tests_fuzz_fuzz_probe_replay_CPPFLAGS = $(AM_CPPFLAGS) \
	-I$(top_srcdir)/src -I$(top_srcdir)/src/virt
tests_fuzz_fuzz_probe_replay_CFLAGS = $(AM_CFLAGS) -Wno-comment
tests_fuzz_fuzz_probe_replay_LDADD = \
	src/virt/libvqmvirt.a \
	src/qcow2/libvqmqcow2.a \
	src/qed/libvqmqed.a \
	src/common/libvqmcommon.a \
	$(ZLIB_LIBS) $(ZSTD_LIBS) \
	$(NULL)

TESTS += tests/test-fuzz-xml-corpus.sh
EXTRA_DIST += \
	tests/test-fuzz-xml-corpus.sh \
	tests/fuzz/make-seeds-xml.sh \
	tests/fuzz/xml.dict \
	$(NULL)
