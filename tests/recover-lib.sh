# tests/recover-lib.sh: fixtures and one interruption round for the
# journal recovery tests (test-virt-recover.sh: SIGKILL after every
# journal record; test-virt-recover-int.sh: SIGINT after every record).
# Two pools, four domains: b1 (volume), b2 (file) and b3 (volume + a file
# in pool other) in pool bulk, o in pool other.
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
    # The different command: another domain, another pool, a rollback
    # of an interrupted domain, or the hook's convert-on-stop worker for
    # an interrupted domain (as libvirt's stop of b2 would start it).
    case $(((n + ${RECOVER_ROTATION:-0}) % 4)) in
    0) other=(--domain o) ;;
    1) other=(--pool other) ;;
    2) other=(--rollback b1) ;;
    3) other=(--hook-worker=b2) ;;
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


# rounds SIG MODE OPTS...: interrupt the run with SIG after each of its
# journal records in turn, until a run is no longer interrupted.
rounds ()
{
    local sig=$1 mode=$2 n=1
    shift 2
    while round "$sig" $n $mode "$@"; do
        n=$((n + 1))
        [ $n -le 80 ] || fail "the $mode run never completed"
    done
    [ $n -gt 15 ] || fail "only $n journal records in the $mode run"
}
