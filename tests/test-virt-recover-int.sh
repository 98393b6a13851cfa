#!/usr/bin/env bash
# As tests/test-virt-recover.sh, with SIGINT: the run is interrupted
# after each of its journal records in turn, in place and in copy mode;
# it says what was interrupted and the command that finishes it, and a
# different command then runs (the rotation is shifted by one against the
# SIGKILL test, so each step meets another command there and here).
source "$abs_top_builddir/tests/functions.sh"
set -e
set -x
RECOVER_ROTATION=1
source "$abs_top_srcdir/tests/recover-lib.sh"

rounds 2 inplace
rounds 2 copy --copy --verify
