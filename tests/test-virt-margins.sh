#!/usr/bin/env bash
# Safety margins, against a private libvirtd: the dry run (and the real
# run, before touching anything) refuses a copy that does not fit in the
# free space of its file system, with the numbers, and an in-place
# conversion of an image another process has open for writing without
# taking QEMU's locks, naming that process.
source "$abs_top_builddir/tests/functions.sh"
set -e
set -x

requires xmllint --version
source "$abs_top_srcdir/tests/libvirtd.sh"
source "$abs_top_srcdir/tests/virt-lib.sh"

virt_setup

# 1. A writer without locks (as QEMU with locking=off).
p=$(lv_pool w)
qed_image "$p/w.qed" 16M
lv_virsh pool-refresh w >/dev/null
define_domain wd "$(vol_disk w w.qed qed vda)"
sleep 300 7<> "$p/w.qed" &
writer=$!
cleanup_fn "kill $writer 2>/dev/null"
sleep 0.5
run_vqm "$d/w.out" 3 --state-dir "$state" --domain wd --dry-run
grep -q "$p/w.qed: SKIPPED: open for writing by process $writer (sleep): not converted in place under it" "$d/w.out"
run_vqm "$d/w2.out" 3 --state-dir "$state" --domain wd
[ "$(file_format "$p/w.qed")" = qed ]
[ "$(disk_attr wd vda driver/@type)" = qed ]
kill $writer
wait $writer || true
run_vqm "$d/w3.out" 0 --state-dir "$state" --domain wd
[ "$(disk_attr wd vda driver/@type)" = qcow2 ]

# 2. No room for the copy: a pool on a small tmpfs.
small="$LVROOT/pools/small"
mkdir -p "$small"
if ! mount -t tmpfs -o size=3m tmpfs "$small" 2>/dev/null; then
    echo "$0: cannot mount a tmpfs: free-space part not run"
    exit 77
fi
cleanup_fn umount -l "$small"
chown "$LVUID:$LVUID" "$small"
lv_virsh pool-define-as small dir --target "$small" >/dev/null
lv_virsh pool-start small >/dev/null
lv_run qemu-img create -q -f qed "$small/s.qed" 16M
lv_run qemu-io -f qed -c 'write -P 0x33 0 1M' "$small/s.qed" >/dev/null
lv_virsh pool-refresh small >/dev/null
define_domain sd "$(vol_disk small s.qed qed vda)"
run_vqm "$d/s.out" 3 --state-dir "$state" --domain sd --copy --dry-run
grep -q "$small/s.qed: SKIPPED: not enough free space in '$small': the conversion there needs [0-9.]* MiB, [0-9.]* MiB free" "$d/s.out"
run_vqm "$d/s2.out" 3 --state-dir "$state" --domain sd --copy
[ ! -e "$small/s.qcow2" ]
[ "$(disk_attr sd vda driver/@type)" = qed ]
