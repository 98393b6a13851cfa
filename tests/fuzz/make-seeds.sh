#!/usr/bin/env bash
# make-seeds.sh DIR: write small seed images for the fuzz targets, made
# by qemu-img and qemu-io, into DIR/qed and DIR/qcow2, and hand-made
# hostile headers into DIR/probe (what a guest can write on a raw disk:
# backing name offsets near 2^64 whose sums wrap, names past the first
# cluster or the end of the file, oversized extensions).  Used by
# run-fuzzers.sh (libFuzzer corpus) and by test-qed-fuzz-corpus.sh.
set -e
dir=$1
test -n "$dir" || { echo "usage: $0 DIR" >&2; exit 2; }
mkdir -p "$dir/qed" "$dir/qcow2" "$dir/probe"
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

# Hostile headers (big-endian qcow2, little-endian QED), each followed by
# the rest of a 64 KiB first cluster unless said otherwise.
perl -e '
use strict;
my $cs = 65536;
# q2 FILE VERSION BACKING_OFFSET BACKING_SIZE EXTENSIONS NAME_AT NAME LEN
sub q2 {
    my ($f, $v, $boff, $bsize, $ext, $at, $name, $len) = @_;
    my $h = pack("a4 N Q> N N Q> N N Q> Q> N N Q>",
                 "QFI\xfb", $v, $boff, $bsize, 16, 1 << 20, 0, 1, 3 * $cs,
                 $cs, 1, 0, 0);
    $h .= pack("Q> Q> Q> N N", 0, 0, 0, 4, 104) if $v == 3;
    $h .= $ext;
    $h .= "\0" x ($at - length($h)) if defined $at && $at > length($h);
    $h .= $name if defined $name;
    $len //= $cs;
    $h .= "\0" x ($len - length($h)) if $len > length($h);
    open(my $fh, ">", "probe/$f") or die;
    print $fh substr($h, 0, $len);
    close($fh);
}
my $end = pack("N N", 0, 0);
# Offset 2^64-256: offset + size wraps to a small number.
q2("wrap-1024", 3, hex("ffffffffffffff00"), 1024, $end);
q2("wrap-1023", 3, hex("ffffffffffffff00"), 1023, $end);
q2("wrap-v2", 2, hex("fffffffffffffd00"), 1000, $end);
q2("wrap-short", 3, hex("ffffffffffffff00"), 1023, $end, undef, undef, 120);
# Names at the very end of the first cluster, and one byte past it.
q2("name-at-end", 3, $cs - 8, 8, $end, $cs - 8, "base.img");
q2("name-past", 3, $cs - 7, 8, $end, $cs - 7, "base.im");
# A name past the end of a short file.
q2("name-past-eof", 3, 4000, 8, $end, undef, undef, 200);
# Extensions: too long, wrapping length, a backing format of 16 bytes,
# one cut by the backing name.
q2("ext-huge", 3, 0, 0, pack("N N", 0xE2792ACA, 0xffffffff));
q2("ext-wrap", 3, 0, 0, pack("N N", 0x12345678, 0xfffffff8) . $end);
q2("ext-fmt16", 3, 512, 4, pack("N N a16", 0xE2792ACA, 16, "q" x 16) . $end,
   512, "base");
q2("ext-cut", 3, 120, 4, pack("N N a16", 0xE2792ACA, 5, "qcow2") . $end,
   120, "base");
q2("ext-ok", 3, 512, 4, pack("N N a8", 0xE2792ACA, 3, "raw") . $end,
   512, "base");
# QED: a backing name at offset 2^32-256 and one past the file.
for my $c ([ "qed-wrap", 0xffffff00, 512 ], [ "qed-past", 4000, 200 ]) {
    my $h = pack("a4 V V V Q< Q< Q< Q< Q< V V", "QED\0", 4096, 4, 1, 1, 0,
                 0, 4096, 1 << 20, $c->[1], $c->[2]);
    open(my $fh, ">", "probe/$c->[0]") or die;
    print $fh $h . "\0" x (4096 * 5 - length($h));
    close($fh);
}
'
