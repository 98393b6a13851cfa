# tests: the test suite.  Each area keeps its own fragment (tests/*.mk).
TEST_EXTENSIONS = .sh
SH_LOG_COMPILER = $(BASH)
AM_TESTS_ENVIRONMENT = \
	abs_top_srcdir=$(abs_top_srcdir) \
	abs_top_builddir=$(abs_top_builddir) \
	MALLOC_PERTURB_=$$(( $${RANDOM:-0} % 255 + 1 )) \
	PATH=$(abs_top_builddir):$$PATH \
	$(NULL)
BASH = bash
EXTRA_DIST += tests/functions.sh.in tests/package-lint.sh tests/quickstart.sh

include tests/qed.mk
include tests/convert.mk
include tests/virt.mk
include tests/hooks.mk
include tests/docs.mk
include tests/fuzz.mk
include tests/live.mk
