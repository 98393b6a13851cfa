#!/usr/bin/env bash
# make-seeds.sh DIR: write small seed images for the fuzz targets, made
# by qemu-img and qemu-io, into DIR/qed and DIR/qcow2.  Used by
# run-fuzzers.sh (libFuzzer corpus) and by test-qed-fuzz-corpus.sh.
set -e
dir=$1
test -n "$dir" || { echo "usage: $0 DIR" >&2; exit 2; }
mkdir -p "$dir/qed" "$dir/qcow2"
cd "$dir"
io () { qemu-io "$@" >/dev/null; }

# QED: small clusters so that the seeds stay small.
qemu-img create -q -f qed -o cluster_size=4k,table_size=2 qed/empty 1M
qemu-img create -q -f qed -o cluster_size=4k,table_size=2 qed/data 3M
io -f qed -c "write -P 1 0 4k" -c "write -z 8k 4k" -c "write -P 2 2M 8k" \
    -c "write -P 3 3070k 2k" qed/data
qemu-img create -q -f qed -o cluster_size=4k,table_size=4 qed/zeros 2M
io -f qed -c "write -z 0 64k" -c "write -P 9 100k 1k" qed/zeros
mkdir -p bases
qemu-img create -q -f raw bases/base.raw 1M
qemu-img create -q -f qed -o cluster_size=4k,table_size=2 \
    -b ../bases/base.raw -F raw qed/backed 1M
io -f qed -c "write -P 4 12k 4k" qed/backed
qemu-img create -q -f qed -o cluster_size=4k,table_size=2 -b base.raw \
    -F raw -u qed/dirty 1M
printf '\x03' | dd of=qed/dirty bs=1 seek=16 conv=notrunc status=none
qemu-img create -q -f qed -o cluster_size=4k,table_size=1 qed/ts1 1M
qemu-img create -q -f qed -o cluster_size=8k,table_size=16 qed/ts16 5M
io -f qed -c "write -P 5 4M 16k" qed/ts16
cp qed/data qed/leak
head -c 4096 /dev/zero >> qed/leak

# qcow2: versions 2 and 3, data, zero and compressed clusters, a
# backing name with a format extension.
qemu-img create -q -f qcow2 -o cluster_size=512 qcow2/small 256k
io -f qcow2 -c "write -P 1 0 1k" -c "write -z 4k 512" -c "write -P 2 100k 3k" \
    qcow2/small
qemu-img create -q -f qcow2 -o cluster_size=4k,compat=0.10 qcow2/v2 1M
io -f qcow2 -c "write -P 3 8k 8k" qcow2/v2
qemu-img create -q -f qcow2 -o cluster_size=4k -b ../bases/base.raw -F raw \
    qcow2/backed 1M
io -f qcow2 -c "write -P 4 0 4k" -c "write -z 64k 4k" qcow2/backed
qemu-img create -q -f raw src.raw 256k
io -f raw -c "write -P 5 0 64k" -c "write -P 6 128k 4k" src.raw
qemu-img convert -c -f raw -O qcow2 -o cluster_size=4k src.raw qcow2/zlib
qemu-img convert -c -f raw -O qcow2 -o cluster_size=4k,compression_type=zstd \
    src.raw qcow2/zstd 2>/dev/null || :
rm -rf src.raw bases
