#!/usr/bin/env bash
# Backing chains under a QED image: raw, qcow2 (plain, zero clusters,
# zlib and zstd compressed clusters, its own backing file), QED, backing
# files shorter and longer than the image above, relative and absolute
# names, the no-probe bit and long backing names.  Judges: qemu-img map
# and qemu-img convert.
source "$abs_top_builddir/tests/functions.sh"
set -e
set -x

requires qemu-img --version
requires qemu-io --version
source "$abs_top_srcdir/tests/qed-functions.sh"

d=$(vqm_tmpdir)
cleanup_fn rm -rf "$d"
cd "$d"

# raw <- QED, raw with holes, shorter than the top image.
truncate -s 5M base.raw
dd if=/dev/urandom of=base.raw bs=64k count=3 seek=10 conv=notrunc status=none
dd if=/dev/urandom of=base.raw bs=512 count=1 seek=9000 conv=notrunc status=none
qemu-img create -f qed -b base.raw -F raw top-raw.qed 8M >/dev/null
qemu-io -f qed -c "write -P 3 0 64k" -c "write -z 704k 64k" \
    -c "write -P 4 4992k 256k" -c "write -P 5 7M 4k" top-raw.qed >/dev/null
qed_compare top-raw.qed
virt-qed-migrate --inspect top-raw.qed | grep 'no-probe'

# The same without the no-probe bit: the backing format is probed.
qemu-img create -f qed -b base.raw -F raw top-probe.qed 8M >/dev/null
printf '\x01' | dd of=top-probe.qed bs=1 seek=16 conv=notrunc status=none
qed_compare top-probe.qed

# qcow2 <- QED, the qcow2 with data, zero clusters (plain and
# preallocated), an unallocated region and its own raw backing file.
truncate -s 12M base2.raw
dd if=/dev/urandom of=base2.raw bs=64k count=4 seek=100 conv=notrunc status=none
qemu-img create -f qcow2 -b base2.raw -F raw mid.qcow2 10M >/dev/null
qemu-io -f qcow2 -c "write -P 7 0 128k" -c "write -z 1M 64k" \
    -c "write -P 8 2M 64k" -c "write -z 2M 64k" -c "write -P 9 9M 1M" \
    mid.qcow2 >/dev/null
qemu-img create -f qed -b mid.qcow2 -F qcow2 top-q.qed 12M >/dev/null
qemu-io -f qed -c "write -P 10 64k 64k" -c "write -z 9M 64k" top-q.qed >/dev/null
qed_compare top-q.qed

# Compressed qcow2 backing files (zlib, and zstd when QEMU has it).
qemu-io -f raw -c "write -P 12 0 1M" -c "write -P 13 3M 100k" base2.raw >/dev/null
qemu-img convert -c -f raw -O qcow2 base2.raw comp-zlib.qcow2
qemu-img create -f qed -b comp-zlib.qcow2 -F qcow2 top-cz.qed 12M >/dev/null
qemu-io -f qed -c "write -P 14 128k 64k" top-cz.qed >/dev/null
qed_compare top-cz.qed
if qemu-img convert -c -f raw -O qcow2 -o compression_type=zstd base2.raw \
        comp-zstd.qcow2 2>/dev/null; then
    qemu-img create -f qed -b comp-zstd.qcow2 -F qcow2 top-cs.qed 12M >/dev/null
    qed_compare top-cs.qed
fi

# QED <- QED <- QED, with a backing file longer than the top image and
# one shorter, absolute and relative names.
qemu-img create -f qed -o cluster_size=4k,table_size=2 q0.qed 20M >/dev/null
qemu-io -f qed -c "write -P 20 0 1M" -c "write -z 2M 1M" -c "write -P 21 15M 5M" \
    q0.qed >/dev/null
qemu-img create -f qed -b "$d/q0.qed" -F qed q1.qed 6M >/dev/null
qemu-io -f qed -c "write -P 22 512k 64k" -c "write -z 0 64k" q1.qed >/dev/null
mkdir sub
qemu-img create -f qed -b ../q1.qed -F qed sub/q2.qed 16M >/dev/null
qemu-io -f qed -c "write -P 23 4M 1M" sub/q2.qed >/dev/null
qed_compare sub/q2.qed
qed_compare q1.qed
virt-qed-migrate --inspect sub/q2.qed | grep 'depth 2: .*q0.qed (qed'

# QED <- qcow2 <- raw as a 3-level chain seen from a QED top.
qemu-img create -f qed -b mid.qcow2 -F qcow2 -o cluster_size=8k,table_size=8 \
    top8k.qed 11M >/dev/null
qemu-io -f qed -c "write -P 30 1020k 8k" top8k.qed >/dev/null
qed_compare top8k.qed

# Long backing names: > 512, > 1023 bytes (still valid QED), through
# nested directories.
long=$d
for i in 1 2 3 4 5 6 7 8 9 10; do
    long="$long/$(printf 'd%.0s' $(seq 1 190))$i"
done
mkdir -p "$long"
cp q0.qed "$long/base.qed"
test ${#long} -gt 1023
qemu-img create -f qed -b "$long/base.qed" -F qed long.qed 20M >/dev/null
qemu-io -f qed -c "write -P 40 5M 64k" long.qed >/dev/null
test "$(qed_get_u32 long.qed 60)" -gt 1023
qed_compare long.qed
virt-qed-migrate --inspect long.qed | grep "^backing file: *$long/base.qed$"

# A raw backing file whose length is not a multiple of 512 (QEMU maps
# the tail of its last sector as zero), then grown with a hole.
head -c 1000 /dev/urandom > odd.raw
qemu-img create -f qed -b odd.raw -F raw odd.qed 1M >/dev/null
qed_compare odd.qed
truncate -s 100000 odd.raw
qed_compare odd.qed
