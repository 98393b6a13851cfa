#!/usr/bin/env bash
# The journal is the host's, not one command's.  A run over three
# domains of pool "bulk" is killed (SIGKILL) right after each of its
# journal records in turn, in place and in copy mode; then a DIFFERENT
# command runs (--domain of an unrelated domain, --pool of another pool,
# --rollback of one of the interrupted domains, the hook's convert-on-stop
# worker for one of them).  Afterwards no
# definition names a missing file or a file in another format than it
# says, no domain is left marked active, and the journal is archived only
# when nothing in it is unfinished.  A rollback refuses while other
# domains' work is unfinished and names the command that finishes it.
# Rerunning the original command then finishes everything; rerunning it
# again has nothing to do.  Results are printed as they happen, through a
# pipe too, and a later --remove-source removes the sources of verified
# copies.  (tests/test-virt-recover-int.sh does the same with SIGINT.)
source "$abs_top_builddir/tests/functions.sh"
set -e
set -x
source "$abs_top_srcdir/tests/recover-lib.sh"

# Results come as they happen, through a pipe too: the run is stopped
# (SIGSTOP from the test kill point) when it begins converting the last
# image; by then the first image's line has been read from the pipe.
# The journal record after which to stop: the "B" record of the last
# image's conversion, found in the journal of a whole run (each record is
# one line and one write).
setup
virt-qed-migrate --state-dir "$d/state-count" --pool bulk > /dev/null
step=$(cat "$d"/state-count/history/* | awk -F'\t' '$1 == "B" && $3 == "convert" { n = NR } END { print n }')
[ -n "$step" ]
setup
mkfifo "$d/fifo"
VQM_TEST_KILL_AT_STEP=$step VQM_TEST_KILL_SIGNAL=19 virt-qed-migrate \
    --state-dir "$d/state-pipe" --pool bulk > "$d/fifo" &
pid=$!
cat "$d/fifo" > "$d/pipe.out" &
reader=$!
for i in $(seq 1 300); do
    [ "$(awk '{ sub(/.*\) /, ""); print $1 }' /proc/$pid/stat)" = T ] && break
    sleep 0.1
done
[ "$(awk '{ sub(/.*\) /, ""); print $1 }' /proc/$pid/stat)" = T ]
# the last record: the conversion of the last image begins
lastimg=$(grep "^B" "$d/state-pipe/journal" | tail -1 | cut -f3,4)
[ "${lastimg%%	*}" = convert ]
lastimg=${lastimg#*	}
[ "$(file_format "$lastimg")" = qed ]
cat "$d/pipe.out"
[ "$(grep -c "^done: $pb/x[123].qed: now qcow2 at $pb/x[123].qcow2" "$d/pipe.out")" = 2 ]
kill -CONT $pid
wait $pid
wait $reader
grep -q "^done: $lastimg: now qcow2" "$d/pipe.out"
grep -q "^Summary:" "$d/pipe.out"

# The rotation meets each step with one command, and which domain's
# migration a step closes depends on libvirt's listing order: so a
# rollback of b1 is tried explicitly after the record that closes the
# last migration other than b1's (b1's own still open, the others done).
setup
virt-qed-migrate --state-dir "$d/state-order" --pool bulk --copy --verify > /dev/null
step=$(awk -F'\t' '$1 == "B" && $3 == "migrate" { who[$2] = $5 }
                   $1 == "D" && ($2 in who) && who[$2] != "b1" { last = NR }
                   END { print last }' "$d"/state-order/history/*)
[ -n "$step" ]
RECOVER_ROTATION=$(( (2 - step % 4 + 4) % 4 ))
round 9 "$step" copy --copy --verify
RECOVER_ROTATION=0

# SIGKILL after every record, in both modes.
rounds 9 inplace
rounds 9 copy --copy --verify

# --remove-source later: the verified copies' sources go, the definitions
# name the copies, and a rerun has nothing to do.
setup
st="$d/state-rm"
run_vqm "$d/cp" 0 --state-dir "$st" --pool bulk --copy --verify
grep -q "verified" "$d/cp"
for k in 1 2 3; do [ -e "$pb/x$k.qed" ]; done
run_vqm "$d/rm" 0 --state-dir "$st" --pool bulk --remove-source
for k in 1 2 3; do [ ! -e "$pb/x$k.qed" ]; done
grep -q "source removed" "$d/rm"
consistent
archived_clean "$st"
run_vqm "$d/rm2" 0 --state-dir "$st" --pool bulk --remove-source
grep -q "^Nothing to do" "$d/rm2"
