#!/usr/bin/env bash
# Disks that are not images, in libvirt definitions: a FIFO, a character
# device (made with mknod, a copy of /dev/null's numbers) and a tenant's
# symlink to a root-only file.  Discovery never opens them for I/O and
# never hangs: --all --dry-run and a real --all end within their time
# limit, skip the domains naming them with a reason naming the file, and
# convert the ordinary QED disk of the same run.
source "$abs_top_builddir/tests/functions.sh"
set -e
set -x

requires strace -V
requires mknod --version
source "$abs_top_srcdir/tests/libvirtd.sh"
source "$abs_top_srcdir/tests/virt-lib.sh"

virt_setup
p=$(lv_pool p)
qed_image "$p/good.qed" 8M
mkfifo "$d/fifo.qed"
mknod "$d/chr.qed" c 1 3
# The tenant (the daemon's uid) owns this symlink to a root-only file.
head -c 65536 /dev/urandom > "$d/secret"
chmod 600 "$d/secret"
lv_run ln -s "$d/secret" "$p/link.qed"
chmod 755 "$d"
lv_virsh pool-refresh p >/dev/null
define_domain dg "$(vol_disk p good.qed qed vda)"
define_domain df "$(file_disk "$d/fifo.qed" qed vda)"
define_domain dc "$(file_disk "$d/chr.qed" qed vda)"
define_domain dl "$(file_disk "$p/link.qed" qed vda)"

# LeakSanitizer cannot run under ptrace (sanitizer builds).
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
rc=0
timeout 60 strace -f -qq -e trace=open,openat,openat2 -o "$d/trace" \
    virt-qed-migrate --state-dir "$state" --all --dry-run > "$d/plan" 2>&1 || rc=$?
cat "$d/plan"
[ $rc = 3 ] || fail "dry run exit $rc, expected 3"
grep -q "FIFO" "$d/plan"
grep -q "character device" "$d/plan"
grep -q "link.qed" "$d/plan"
# Nothing was opened for I/O but through O_PATH.
if grep -E "\"$d/(fifo|chr)\.qed\"" "$d/trace" | grep -v O_PATH; then
    fail "a FIFO or a character device was opened"
fi
if grep -F "$d/secret" "$d/trace" | grep -v O_PATH; then
    fail "the tenant's symlink was followed"
fi

rc=0
timeout 120 virt-qed-migrate --state-dir "$state" --all > "$d/out" 2>&1 || rc=$?
cat "$d/out"
[ $rc = 3 ] || fail "run exit $rc, expected 3"
[ "$(file_format "$p/good.qcow2")" = qcow2 ]
[ "$(disk_attr dg vda driver/@type)" = qcow2 ]
for x in df dc dl; do
    [ "$(disk_attr $x vda driver/@type)" = qed ] || fail "$x was rewritten"
done
[ -p "$d/fifo.qed" ] && [ -c "$d/chr.qed" ] && [ -L "$p/link.qed" ]
