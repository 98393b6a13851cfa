#!/usr/bin/env bash
# A pool volume whose QED header names a backing file in a system tree
# (/etc/shadow): discovery and --dry-run report the refusal, a real run
# skips it (exit 3) and nothing of /etc/shadow is ever opened; the
# other volume of the pool is converted.
source "$abs_top_builddir/tests/functions.sh"
set -e
set -x

requires strace -V
requires test -r /etc/shadow
source "$abs_top_srcdir/tests/libvirtd.sh"
source "$abs_top_srcdir/tests/virt-lib.sh"

virt_setup
p=$(lv_pool p)
qed_image "$p/good.qed" 8M
# A QED whose backing name is /etc/shadow, raw (no-probe bit): made by
# qemu-img over a harmless file, then the name is patched in place.
lv_run truncate -s 8M "$p/base.raw"
lv_run qemu-img create -q -f qed -b "$p/base.raw" -F raw "$p/evil.qed" 8M
name="$p/base.raw"
[ ${#name} -ge 11 ] || fail "pool path too short for the patch"
off=$(od -An -tu4 -j 56 -N 4 "$p/evil.qed" | tr -d ' ')
printf '/etc/shadow' | dd of="$p/evil.qed" bs=1 seek="$off" conv=notrunc status=none
printf '\x0b\x00\x00\x00' | dd of="$p/evil.qed" bs=1 seek=60 conv=notrunc status=none
rm -f "$p/base.raw"
lv_virsh pool-refresh p >/dev/null
define_domain dg "$(vol_disk p good.qed qed vda)"
define_domain de "$(vol_disk p evil.qed qed vda)"
sha_before=$(sha256sum "$p/evil.qed")

# LeakSanitizer cannot run under ptrace (sanitizer builds).
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
rc=0
strace -f -qq -e trace=open,openat -o "$d/trace" \
    virt-qed-migrate --state-dir "$state" --pool p --dry-run > "$d/plan" 2>&1 || rc=$?
cat "$d/plan"
[ $rc = 3 ] || fail "dry run exit $rc, expected 3"
grep -q "refused.*/etc" "$d/plan"
if grep -q '/etc/shadow' "$d/trace"; then
    grep '/etc/shadow' "$d/trace"
    fail "the dry run opened /etc/shadow"
fi

rc=0
strace -f -qq -e trace=open,openat -o "$d/trace2" \
    virt-qed-migrate --state-dir "$state" --pool p > "$d/run" 2>&1 || rc=$?
cat "$d/run"
[ $rc = 3 ] || fail "run exit $rc, expected 3"
grep -q '/etc/shadow' "$d/trace2" && fail "the run opened /etc/shadow"
[ "$sha_before" = "$(sha256sum "$p/evil.qed")" ]
[ "$(disk_attr de vda driver/@type)" = qed ]
[ "$(disk_attr dg vda driver/@type)" = qcow2 ]
qemu-img check -q "$p/good.qcow2"
