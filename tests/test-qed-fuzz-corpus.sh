#!/usr/bin/env bash
# Replay the fuzz targets of the image parsers -- the QED and qcow2
# readers and discovery's probe -- (built with the normal compiler, and
# with the sanitizers in a --enable-sanitizers build) over the seed
# corpus, the hostile headers of make-seeds.sh and deterministic
# mutations: every header field and the first table entries set to
# boundary values, and truncations.  No crash, no hang.
source "$abs_top_builddir/tests/functions.sh"
set -e
set -x

requires qemu-img --version
requires qemu-io --version
requires timeout --version
source "$abs_top_srcdir/tests/qed-functions.sh"

d=$(vqm_tmpdir)
cleanup_fn rm -rf "$d"
"$abs_top_srcdir/tests/fuzz/make-seeds.sh" "$d/seeds"

# mutate FORMAT OFFSETS...: variants of every seed of FORMAT with a
# 32-bit value patched at each offset.
mutate ()
{
    local fmt=$1 s off v i=0
    shift
    mkdir -p "$d/mut-$fmt"
    for s in "$d/seeds/$fmt"/*; do
        for off in "$@"; do
            for v in 0 1 0x7fffffff 0xffffffff 0x10000 0x200; do
                i=$((i + 1))
                cp "$s" "$d/mut-$fmt/$i"
                qed_set_u32 "$d/mut-$fmt/$i" "$off" "$v"
            done
        done
        i=$((i + 1))
        head -c 100 "$s" > "$d/mut-$fmt/$i"
        i=$((i + 1))
        head -c $(( $(stat -c %s "$s") / 2 )) "$s" > "$d/mut-$fmt/$i"
    done
}
# QED: every header field, the first L1 entries (4 KiB clusters: L1 at
# 4096) and the backing name area.
mutate qed 4 8 12 16 20 24 32 40 44 48 52 56 60 64 4096 4100 4104
# qcow2 (big-endian, but any bytes will do): header fields, extensions.
mutate qcow2 4 8 12 16 20 24 28 32 36 40 44 48 56 72 76 96 100 104 112 116

bin="$abs_top_builddir/tests/fuzz"
timeout 300 "$bin/fuzz-qed-replay" "$d/seeds/qed" "$d/mut-qed" \
    "$d/seeds/qcow2"
timeout 300 "$bin/fuzz-qcow2-replay" "$d/seeds/qcow2" "$d/mut-qcow2" \
    "$d/seeds/qed" "$d/seeds/probe"
# Discovery's probe over everything, the hostile headers first.
out=$(timeout 300 "$bin/fuzz-probe-replay" "$d/seeds/probe" "$d/seeds/qcow2" \
      "$d/mut-qcow2" "$d/seeds/qed" "$d/mut-qed")
n=$(find "$d/seeds/probe" "$d/seeds/qcow2" "$d/mut-qcow2" "$d/seeds/qed" \
    "$d/mut-qed" -type f | wc -l)
test "$out" = "replayed $n inputs"
