#!/usr/bin/env bash
# Interruption at every journal step, against a private libvirtd: the run
# is killed (SIGKILL) right after the N-th journal record reached the
# disk, for N = 1, 2, ... until a run completes; each time the same
# command is run again and must finish the job: a running domain with a
# chain QED <- QED across two pools and a volume disk ends up on qcow2,
# started again, with clean images holding the same guest data, and the
# domain is marked active (for the hook) while the job is unfinished.
source "$abs_top_builddir/tests/functions.sh"
requires_fault_injection
set -e
set -x

requires xmllint --version
requires qemu-system-x86_64 --version
source "$abs_top_srcdir/tests/libvirtd.sh"
source "$abs_top_srcdir/tests/virt-lib.sh"

virt_setup

setup ()   # N: pools a$N, b$N and running domain d$N
{
    local n=$1 pa pb
    pa=$(lv_pool a$n)
    pb=$(lv_pool b$n)
    qed_image "$pa/base.qed" 16M
    qed_image "$pb/top.qed" 16M "$pa/base.qed" qed
    qed_image "$pa/v.qed" 8M
    qemu-img convert -O raw "$pb/top.qed" "$d/top$n.flat"
    qemu-img convert -O raw "$pa/v.qed" "$d/v$n.flat"
    lv_virsh pool-refresh a$n >/dev/null
    lv_virsh pool-refresh b$n >/dev/null
    define_domain d$n "$(file_disk "$pb/top.qed" qed vda)" \
        "$(vol_disk a$n v.qed qed vdb)"
    dumpxml d$n > "$d/d$n.before.xml"
    lv_virsh start d$n >/dev/null
}

check_done ()   # N: everything migrated, consistent, started again
{
    local n=$1 pa="$LVROOT/pools/a$1" pb="$LVROOT/pools/b$1" uuid
    [ "$(lv_virsh domstate d$n)" = running ]
    lv_virsh destroy d$n >/dev/null
    [ ! -e "$pa/base.qed" ] && [ ! -e "$pb/top.qed" ] && [ ! -e "$pa/v.qed" ]
    for f in "$pa/base.qcow2" "$pb/top.qcow2" "$pa/v.qcow2"; do
        qemu-img check -f qcow2 "$f"
    done
    qemu-img compare -F qcow2 "$d/top$n.flat" "$pb/top.qcow2"
    qemu-img compare -F qcow2 "$d/v$n.flat" "$pa/v.qcow2"
    qemu-img info --output=json "$pb/top.qcow2" |
        grep -q "\"backing-filename\": \"$pa/base.qcow2\""
    sed -e "s|type='qed'|type='qcow2'|g" -e "s|$pb/top.qed|$pb/top.qcow2|" \
        -e "s|volume='v.qed'|volume='v.qcow2'|" "$d/d$n.before.xml" |
        diff -u - <(dumpxml d$n)
    uuid=$(lv_virsh domuuid d$n)
    [ ! -e "$d/state$n/active/$uuid" ]
    [ ! -e "$d/state$n/journal" ]
    for f in "$d/state$n/domains/$uuid/"*.xml; do
        diff -u "$d/d$n.before.xml" "$f"
    done
}

n=${VQM_TEST_FIRST_STEP:-1}
while :; do
    [ $n -le 60 ] || fail "the run never completed"
    setup $n
    rc=0
    VQM_TEST_KILL_AT_STEP=$n virt-qed-migrate --state-dir "$d/state$n" \
        --pool a$n --pool b$n --shutdown=0 --force-shutdown -q || rc=$?
    if [ $rc = 0 ]; then
        check_done $n
        break
    fi
    [ $rc = 137 ] || fail "run killed at step $n exited $rc"
    [ -s "$d/state$n/journal" ]
    # While a migration is unfinished, the domain is marked active.
    if grep -q "	migrate	" "$d/state$n/journal"; then
        [ -e "$d/state$n/active/$(lv_virsh domuuid d$n)" ]
    fi
    run_vqm "$d/out$n" 0 --state-dir "$d/state$n" --pool a$n --pool b$n \
        --shutdown=0 --force-shutdown --report "$d/r$n.xml"
    validate_report "$d/r$n.xml"
    check_done $n
    n=$((n + 1))
done
# Every step was interrupted once.
[ $n -gt 10 ] || [ -n "${VQM_TEST_FIRST_STEP:-}" ]

# Copy mode: the same, for a volume disk copied to a new qcow2 beside
# the QED, which stays (no --remove-source).
setup_copy ()   # N: pool c$N, domain e$N
{
    local n=$1 pc
    pc=$(lv_pool c$n)
    qed_image "$pc/w.qed" 8M
    cp --sparse=always "$pc/w.qed" "$d/w$n.orig"
    lv_virsh pool-refresh c$n >/dev/null
    define_domain e$n "$(vol_disk c$n w.qed qed vda)"
    dumpxml e$n > "$d/e$n.before.xml"
}

check_copy ()   # N
{
    local n=$1 pc="$LVROOT/pools/c$1" uuid
    cmp "$d/w$n.orig" "$pc/w.qed"
    qemu-img check -f qcow2 "$pc/w.qcow2"
    qemu-img compare -f qed -F qcow2 "$d/w$n.orig" "$pc/w.qcow2"
    sed -e "s|type='qed'|type='qcow2'|" -e "s|volume='w.qed'|volume='w.qcow2'|" \
        "$d/e$n.before.xml" | diff -u - <(dumpxml e$n)
    uuid=$(lv_virsh domuuid e$n)
    [ ! -e "$d/cstate$n/active/$uuid" ]
    [ ! -e "$d/cstate$n/journal" ]
    for f in "$d/cstate$n/domains/$uuid/"*.xml; do
        diff -u "$d/e$n.before.xml" "$f"
    done
}

n=1
while :; do
    [ $n -le 30 ] || fail "the copy run never completed"
    setup_copy $n
    rc=0
    VQM_TEST_KILL_AT_STEP=$n virt-qed-migrate --state-dir "$d/cstate$n" \
        --pool c$n --copy -q || rc=$?
    if [ $rc = 0 ]; then
        check_copy $n
        break
    fi
    [ $rc = 137 ] || fail "copy run killed at step $n exited $rc"
    run_vqm "$d/cout$n" 0 --state-dir "$d/cstate$n" --pool c$n --copy
    check_copy $n
    n=$((n + 1))
done
[ $n -gt 4 ]
