#!/usr/bin/env bash
# Copy mode's direct data writes (O_DIRECT, from the source's mapping or
# the read buffer): where the file system takes them they are used, the
# result is byte for byte the file the buffered path writes, and output
# cluster sizes below 4 KiB fall back to buffered writes.  On a small
# loop-mounted ext4 (no reflinks, so the data goes by direct writes), a
# real full disk ends with one clear line, no output left behind and the
# source unchanged.
source "$abs_top_builddir/tests/functions.sh"
source "$abs_top_srcdir/tests/convert-lib.sh"
set -e
set -x

convert_setup

# An odd size (the last cluster is partial), random data in runs longer
# than the 8 MiB chunk and shorter than a cluster, zeroed clusters and
# a gap.
qemu-img create -q -f qed -o cluster_size=64k src.qed $((40 * 1048576 + 4096))
head -c 20M /dev/urandom > rnd
qemu-io -f qed -c "write -s rnd 0 20M" -c 'write -P 0x33 21M 4k' \
    -c 'write -z 22M 1M' -c 'write -P 0x44 30M 3M' \
    -c "write -P 0x55 $((40 * 1048576)) 4k" src.qed > /dev/null
rm rnd
cp src.qed pristine.qed
sha=$(sha256sum < src.qed)

# direct_used LOG: the debug log says direct writes were set up.
direct_used ()
{
    grep -q 'copy: direct data writes: yes' "$1"
}

for method in "" mmap read; do
    rm -f direct.qcow2 buffered.qcow2
    VQM_DEBUG=1 VQM_COPY_METHOD=$method \
        virt-qed-migrate --file src.qed --output direct.qcow2 --verify 2> log
    cat log
    VQM_COPY_DIRECT=0 VQM_DEBUG=1 VQM_COPY_METHOD=$method \
        virt-qed-migrate --file src.qed --output buffered.qcow2 2> log0
    ! direct_used log0 || fail "VQM_COPY_DIRECT=0 still used direct writes"
    if direct_used log; then
        echo "method '${method:-default}': direct data writes"
    else
        echo "method '${method:-default}': $(df -T . | awk 'NR==2 {print $2}')" \
            "refused O_DIRECT here: buffered writes only"
    fi
    judge direct.qcow2 pristine.qed
    qcheck_clean buffered.qcow2
    qemu-img compare -f qed -F qcow2 pristine.qed buffered.qcow2
done
test "$(sha256sum < src.qed)" = "$sha"

# Same layout whichever way the data went: a fresh pair, both untouched
# by QEMU, compared byte for byte.
rm -f direct.qcow2 buffered.qcow2
virt-qed-migrate --file src.qed --output direct.qcow2
VQM_COPY_DIRECT=0 virt-qed-migrate --file src.qed --output buffered.qcow2
cmp direct.qcow2 buffered.qcow2

# Output clusters smaller than a page: buffered writes, still right.
for cs in 512 2k; do
    rm -f small.qcow2
    VQM_DEBUG=1 virt-qed-migrate --file src.qed --output small.qcow2 \
        --cluster-size "$cs" 2> log
    ! direct_used log || fail "cluster size $cs used direct writes"
    judge small.qcow2 pristine.qed
done

# A real full disk on ext4, where the data goes by direct writes.
if ! command -v mkfs.ext4 >/dev/null || ! command -v losetup >/dev/null; then
    echo "mkfs.ext4 or losetup missing: full-disk part skipped"
    exit 0
fi
truncate -s 64M ext4.img
if ! dev=$(losetup -f --show ext4.img 2>/dev/null); then
    echo "losetup does not work here: full-disk part skipped"
    exit 0
fi
cleanup_fn losetup -d "$dev"
mkfs.ext4 -q -F "$dev"
mkdir mnt
if ! mount "$dev" mnt; then
    echo "cannot mount ext4 here: full-disk part skipped"
    exit 0
fi
cleanup_fn umount "$d/mnt"
cp pristine.qed mnt/a.qed
# Room for about half of the data.
fallocate -l $(( $(stat -f -c '%a*%S' mnt) - 12 * 1048576 )) mnt/filler
rc=0
VQM_DEBUG=1 virt-qed-migrate --file mnt/a.qed --output mnt/full.qcow2 \
    2> log || rc=$?
cat log
direct_used log || fail "ext4 did not take direct writes"
test "$rc" = 1
grep -v '^virt-qed-migrate: debug:' log > err
test "$(wc -l < err)" = 1
grep -q "No space left on device" err
grep -q "mnt/full.qcow2" err
test ! -e mnt/full.qcow2
test "$(ls -A mnt | sort | tr '\n' ' ')" = "a.qed filler lost+found "
cmp mnt/a.qed pristine.qed
# With room again, the same copy works.
rm mnt/filler
virt-qed-migrate --file mnt/a.qed --output mnt/full.qcow2
judge mnt/full.qcow2 pristine.qed
