#!/usr/bin/env bash
# vqm_qcow2_set_backing (the `qemu-img rebase -u` equivalent used for
# overlays) and vqm_lock_probe, judged by QEMU.
source "$abs_top_builddir/tests/functions.sh"
source "$abs_top_srcdir/tests/convert-lib.sh"
set -e
set -x

convert_setup

tool="$abs_top_builddir/tests/unit/vqm-set-backing"

qemu-img create -q -f raw base.raw 4M
qemu-io -f raw -c 'write -P 0x31 0 4M' base.raw >/dev/null
cp base.raw moved.raw
qemu-img create -q -f qcow2 base.qcow2 4M
qemu-io -c 'write -P 0x31 0 4M' base.qcow2 >/dev/null

# A qemu-img overlay (with its feature-name table), 64k and 4k clusters.
for cs in 64k 4k; do
    qemu-img create -q -f qcow2 -o cluster_size=$cs -b base.raw -F raw ov.qcow2 4M
    qemu-io -c 'write -P 0x41 1M 64k' ov.qcow2 >/dev/null
    qemu-img convert -O raw ov.qcow2 expect.raw

    "$tool" ov.qcow2 moved.raw raw
    test "$(info_field ov.qcow2 backing-filename)" = moved.raw
    test "$(info_field ov.qcow2 backing-filename-format)" = raw
    qcheck_clean ov.qcow2
    qemu-img compare expect.raw ov.qcow2

    # Another format, and a 700-byte name (beyond the first sector).
    long=$(printf './%.0s' $(seq 1 346))base.qcow2
    test ${#long} = 702
    "$tool" ov.qcow2 "$long" qcow2
    test "$(info_field ov.qcow2 backing-filename)" = "$long"
    test "$(info_field ov.qcow2 backing-filename-format)" = qcow2
    qcheck_clean ov.qcow2
    qemu-img compare expect.raw ov.qcow2
    qemu-io -c 'write -P 0x42 0 64k' ov.qcow2 >/dev/null
    qcheck_clean ov.qcow2

    # Back to a short name; then none at all.
    "$tool" ov.qcow2 base.raw raw
    test "$(info_field ov.qcow2 backing-filename)" = base.raw
    qcheck_clean ov.qcow2
    "$tool" ov.qcow2 "" ""
    test "$(info_field ov.qcow2 backing-filename)" = ""
    qcheck_clean ov.qcow2
    rm -f ov.qcow2 expect.raw
done

# vqm_convert with a new backing name and format (the libvirt layer
# renames backing files while converting a chain).
qemu-img create -q -f qed -b base.raw -F raw ov.qed 4M
qemu-io -c 'write -P 0x43 0 64k' ov.qed >/dev/null
qemu-img convert -O raw ov.qed expect.raw
"$tool" --convert ov.qed base.qcow2 qcow2 ov-copy.qcow2
test "$(info_field ov-copy.qcow2 backing-filename)" = base.qcow2
test "$(info_field ov-copy.qcow2 backing-filename-format)" = qcow2
qcheck_clean ov-copy.qcow2
qemu-img compare expect.raw ov-copy.qcow2
"$tool" --convert ov.qed moved.raw raw
test "$(info_field ov.qed format)" = qcow2
test "$(info_field ov.qed backing-filename)" = moved.raw
test "$(info_field ov.qed backing-filename-format)" = raw
qcheck_clean ov.qed
qemu-img compare expect.raw ov.qed

# Refusals: a name too long for qcow2, a QED file, a busy image.
qemu-img create -q -f qcow2 -b base.raw -F raw ov.qcow2 4M
sha=$(sha256sum < ov.qcow2)
huge=$(printf 'x%.0s' $(seq 1 1100))
must_fail 1 "$tool" ov.qcow2 "$huge" raw
qemu-img create -q -f qed q.qed 4M
must_fail 1 "$tool" q.qed base.raw raw
test "$("$tool" --probe ov.qcow2)" = free
rm -f fifo
mkfifo fifo
qemu-io -f qcow2 ov.qcow2 < fifo >/dev/null 2>&1 &
pid=$!
exec 3> fifo
cleanup_fn "exec 3>&-; kill $pid 2>/dev/null; wait $pid 2>/dev/null"
for i in $(seq 1 100); do
    [ "$("$tool" --probe ov.qcow2)" = busy ] && break
    sleep 0.1
done
test "$("$tool" --probe ov.qcow2)" = busy
must_fail 1 "$tool" ov.qcow2 moved.raw raw
exec 3>&-
wait $pid || :
test "$(sha256sum < ov.qcow2)" = "$sha"
test "$("$tool" --probe ov.qcow2)" = free
