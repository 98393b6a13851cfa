#!/usr/bin/env bash
# The journal is the host's, not one command's.  A run over three
# domains of pool "bulk" is interrupted (SIGKILL, then SIGINT) right after
# each of its journal records in turn; then a DIFFERENT command runs
# (--domain of an unrelated domain, --pool of another pool, --rollback of
# one of the interrupted domains).  Afterwards no definition names a
# missing file or a file in another format than it says, no domain is
# left marked active, and the journal is archived only when nothing in it
# is unfinished.  A rollback refuses while other domains' work is
# unfinished and names the command that finishes it.  Rerunning the
# original command then finishes everything; rerunning it again has
# nothing to do.  The same in copy mode (--copy --verify), where a later
# --remove-source removes the sources of the verified copies.
source "$abs_top_builddir/tests/functions.sh"
set -e
set -x

requires xmllint --version
source "$abs_top_srcdir/tests/libvirtd.sh"
source "$abs_top_srcdir/tests/virt-lib.sh"

virt_setup

# The fixtures are made once: two pools, four domains, QED images kept
# as pristine copies; each round puts them back (setup) under the same
# names, which keeps a round to a few seconds.
pb=$(lv_pool bulk)
po=$(lv_pool other)
mkdir -p "$d/pristine"
for k in 1 2 3; do
    qed_image "$pb/x$k.qed" 8M
    qemu-img convert -O raw "$pb/x$k.qed" "$d/x$k.flat"
done
qed_image "$po/o.qed" 8M
cp -p --sparse=always "$pb"/*.qed "$po"/*.qed "$d/pristine/"
define_domain b1 "$(vol_disk bulk x1.qed qed vda)"
define_domain b2 "$(file_disk "$pb/x2.qed" qed vda)"
define_domain b3 "$(vol_disk bulk x3.qed qed vda)" \
    "$(file_disk "$po/o.qed" qed vdb)"
define_domain o "$(vol_disk other o.qed qed vda)"
for x in b1 b2 b3 o; do
    dumpxml $x > "$d/$x.xml"
done

setup ()
{
    local x
    rm -f "$pb"/* "$po"/*
    cp -p --sparse=always "$d"/pristine/x*.qed "$pb/"
    cp -p --sparse=always "$d/pristine/o.qed" "$po/"
    lv_virsh pool-refresh bulk >/dev/null
    lv_virsh pool-refresh other >/dev/null
    for x in b1 b2 b3 o; do
        lv_virsh define "$d/$x.xml" >/dev/null
    done
}

# consistent: every disk of every domain names a file that exists, in
# the format the definition says.
consistent ()
{
    local dom n i type file fmt x="$d/xml"
    for dom in b1 b2 b3 o; do
        dumpxml $dom > "$x"
        n=$(xmllint --xpath 'count(/domain/devices/disk)' "$x")
        for i in $(seq 1 "$n"); do
            type=$(xmllint --xpath "string(/domain/devices/disk[$i]/@type)" "$x")
            fmt=$(xmllint --xpath "string(/domain/devices/disk[$i]/driver/@type)" "$x")
            if [ "$type" = volume ]; then
                # A pool's directory holds its volumes under their names.
                file=$LVROOT/pools/$(xmllint --xpath "string(/domain/devices/disk[$i]/source/@pool)" "$x")
                file=$file/$(xmllint --xpath "string(/domain/devices/disk[$i]/source/@volume)" "$x")
            else
                file=$(xmllint --xpath "string(/domain/devices/disk[$i]/source/@file)" "$x")
            fi
            [ -f "$file" ] || fail "$dom: '$file' does not exist"
            [ "$(file_format "$file")" = "$fmt" ] ||
                fail "$dom: '$file' is $(file_format "$file"), the definition says $fmt"
        done
    done
}

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

# archived_clean STATE: the journal was archived, with nothing unfinished.
archived_clean ()
{
    local h
    [ ! -e "$1/journal" ] || { journal_unfinished "$1/journal"; fail "journal not archived"; }
    h=$(ls -t "$1"/history/journal-* | head -1)
    [ -z "$(journal_unfinished "$h")" ] || fail "archived with unfinished steps"
    [ -z "$(ls "$1/active")" ] || fail "domains left marked active"
}

# same_data MODE: the guest data of every bulk image is intact, the
# images are clean.
same_data ()
{
    local k
    for k in 1 2 3; do
        qemu-img check -q -f qcow2 "$pb/x$k.qcow2"
        qemu-img compare -F qcow2 "$d/x$k.flat" "$pb/x$k.qcow2"
        if [ "$1" = copy ]; then
            qemu-img compare -F qed "$d/x$k.flat" "$pb/x$k.qed"
        else
            [ ! -e "$pb/x$k.qed" ]
        fi
    done
}

# round SIG STEP MODE OPTS...: one interruption and what follows it.
# Returns 1 when the run was not interrupted (it had fewer records).
round ()
{
    local sig=$1 n=$2 mode=$3 t="$1-$2-$3" st rc other cmd
    shift 3
    st="$d/state-$t"
    setup
    rc=0
    VQM_TEST_KILL_AT_STEP=$n VQM_TEST_KILL_SIGNAL=$sig virt-qed-migrate \
        --state-dir "$st" --pool bulk "$@" > "$d/out-$t" 2> "$d/err-$t" || rc=$?
    cat "$d/err-$t"
    if [ $rc = 0 ]; then
        consistent
        archived_clean "$st"
        return 1
    fi
    [ $rc = $((128 + sig)) ] || fail "run killed at step $n exited $rc"
    if [ "$sig" = 2 ]; then
        # SIGINT says what was interrupted and the command that finishes.
        grep -q "interrupted during step '.*': run 'virt-qed-migrate --state-dir $st --pool bulk.*' to finish" "$d/err-$t"
    fi
    case $((n % 3)) in
    0) other=(--domain o) ;;
    1) other=(--pool other) ;;
    2) other=(--rollback b1) ;;
    esac
    rc=0
    virt-qed-migrate --state-dir "$st" "${other[@]}" > "$d/o-$t" 2> "$d/oerr-$t" || rc=$?
    cat "$d/o-$t" "$d/oerr-$t"
    if [ $rc = 1 ] && [ "${other[0]}" = --rollback ] &&
       ! grep -q "unfinished migration: run" "$d/oerr-$t"; then
        # Nothing unfinished, and b1 is qcow2: nothing to roll back to.
        grep -q "converted in place" "$d/oerr-$t"
        rc=2
    elif [ $rc = 1 ] && [ "${other[0]}" = --rollback ]; then
        # Refused: it names the command that finishes the work.
        cmd=$(sed -n "s/.*unfinished migration: run '\(.*\)' first.*/\1/p" "$d/oerr-$t")
        [ -n "$cmd" ] || fail "the refusal names no command"
        eval "$cmd" > "$d/f-$t" || fail "'$cmd' failed"
        cat "$d/f-$t"
    else
        [ $rc = 0 ] || fail "${other[*]} after step $n exited $rc"
    fi
    consistent
    archived_clean "$st"
    if [ "${other[0]}" = --rollback ] && [ $rc = 0 ]; then
        return 0         # rolled back: b1 is QED again on purpose
    fi
    # The original command has nothing left to do but what it never got
    # to; then a rerun has nothing to do at all.
    run_vqm "$d/r-$t" 0 --state-dir "$st" --pool bulk "$@"
    consistent
    archived_clean "$st"
    same_data "$mode"
    run_vqm "$d/rr-$t" 0 --state-dir "$st" --pool bulk "$@"
    grep -q "^Nothing to do" "$d/rr-$t"
    return 0
}

# SIGKILL after every record; SIGINT (which prints its message first)
# after every third one, offset so that over both modes each kind of
# step is met.
for mode in inplace copy; do
    opts=()
    [ $mode = copy ] && opts=(--copy --verify)
    n=1
    while round 9 $n $mode "${opts[@]}"; do
        n=$((n + 1))
        [ $n -le 80 ] || fail "the $mode run never completed"
    done
    [ $n -gt 15 ]
    last=$n
    n=1
    [ $mode = copy ] && n=2
    while [ $n -lt $last ]; do
        round 2 $n $mode "${opts[@]}" || fail "SIGINT at step $n: not interrupted"
        n=$((n + 3))
    done
done

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
