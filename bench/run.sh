#!/usr/bin/env bash
# virt-qed-migrate benchmark: builds QED images and times, in the same run
# and on the same files, our in-place conversion, our copy conversion,
# `qemu-img convert -O qcow2` (default cache mode, and -t writeback which
# syncs like we do) and `cp --sparse=always` (the floor for a data copy).
# Prints wall time, MB/s of allocated data, peak RSS and the ratio to
# qemu-img convert.
#
#   bench/run.sh [WORKDIR]
#
# Environment:
#   VQM            the virt-qed-migrate binary (default: from PATH, else
#                  ./virt-qed-migrate)
#   BENCH_SIZES    data images, virtual sizes (default "2G 8G")
#   BENCH_SPARSE   sparse images (default "1T 4T")
#   BENCH_CLUSTER  QED cluster size (default 64k)
#   BENCH_FILL     percent of 1 MiB chunks written with random data (50)
#   BENCH_REPEAT   runs of each measurement; the fastest counts (3)
#
# Needs qemu-img, qemu-io and /usr/bin/time.  WORKDIR (default a new
# directory under /var/tmp) needs about 2.5x the data of the biggest image.
set -euo pipefail

vqm=${VQM:-$(command -v virt-qed-migrate || echo ./virt-qed-migrate)}
sizes=${BENCH_SIZES:-"2G 8G"}
sparse=${BENCH_SPARSE:-"1T 4T"}
cs=${BENCH_CLUSTER:-64k}
fill=${BENCH_FILL:-50}
repeat=${BENCH_REPEAT:-3}
work=${1:-$(mktemp -d /var/tmp/vqm-bench.XXXXXX)}
mkdir -p "$work"
timefmt='%e %M'  # wall time is measured around it with date +%N

for tool in qemu-img qemu-io /usr/bin/time "$vqm"; do
    command -v "$tool" >/dev/null || { echo "bench: $tool not found" >&2; exit 1; }
done

# build NAME SIZE [sparse]: a QED image; data images get random data in
# about fill% of their 1 MiB chunks, sparse ones a few writes.
build ()
{
    local img=$work/$1.qed size=$2 kind=${3:-data} mib i
    qemu-img create -q -f qed -o cluster_size="$cs" "$img" "$size"
    if [ "$kind" = sparse ]; then
        mib=$(( $(numfmt --from=iec "$size") / 1048576 ))
        qemu-io -f qed -c 'write -P 0x11 0 1M' -c "write -P 0x12 $((mib / 2))M 4M" \
            -c "write -z $((mib / 4))M 64M" -c "write -P 0x13 $((mib - 1))M 1M" \
            "$img" >/dev/null
        return
    fi
    head -c 1M /dev/urandom > "$work/rnd"
    mib=$(( $(numfmt --from=iec "$size") / 1048576 ))
    RANDOM=42
    for (( i = 0; i < mib; i++ )); do
        if (( RANDOM % 100 < fill )); then
            echo "write -s $work/rnd ${i}M 1M"
        fi
    done | qemu-io -f qed "$img" >/dev/null
    rm -f "$work/rnd"
}

# measure PREP CMD...: run PREP (shell code: fresh input or no output
# file), then CMD under /usr/bin/time, BENCH_REPEAT times; sets secs and
# kib from the fastest run.
measure ()
{
    local prep=$1 i s k t0 t1
    engine=
    shift
    secs=
    for (( i = 0; i < repeat; i++ )); do
        eval "$prep"
        sync
        sleep 0.5
        t0=$(date +%s%N)
        /usr/bin/time -f "$timefmt" -o "$work/time" "$@" > "$work/stdout"
        t1=$(date +%s%N)
        read -r _ k < "$work/time"
        s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
        if [ -z "$secs" ] || awk -v a="$s" -v b="$secs" 'BEGIN { exit !(a < b) }'; then
            secs=$s
            kib=$k
            # Our own report: the engine's time without process start-up.
            engine=$(sed -n 's/.* in \([0-9.]*\) s .*/\1/p' "$work/stdout")
        fi
    done
}

row ()
{
    # image tool secs kib data_bytes ref_secs [engine_secs]
    local mbs ratio
    mbs=$(awk -v b="$5" -v s="$3" 'BEGIN { if (s > 0) printf "%.0f", b / 1e6 / s; else print "inf" }')
    ratio=$(awk -v s="$3" -v r="$6" 'BEGIN { if (r > 0) printf "%.3f", s / r; else print "-" }')
    printf '%-10s %-28s %9s %9s %9.1f %9s %9s\n' "$1" "$2" "$3" "$mbs" \
        "$(awk -v k="$4" 'BEGIN { print k / 1024 }')" "$ratio" "${7:--}"
}

echo "virt-qed-migrate benchmark: $(nproc) CPUs, $(uname -r), $(df -T "$work" | awk 'NR==2 {print $2}') in $work"
echo "QED cluster size $cs; data images: ${fill}% of 1 MiB chunks random; page cache warm"
printf '%-10s %-28s %9s %9s %9s %9s %9s\n' image tool "wall s" "MB/s" "RSS MiB" "/qemu-img" "engine s"

run_image ()
{
    local name=$1 img=$work/$1.qed data qsecs
    data=$(du -B1 "$img" | cut -f1)
    cat "$img" > /dev/null

    local rmout='rm -f "$work/out"'
    measure "$rmout" qemu-img convert -f qed -O qcow2 "$img" "$work/out"
    qsecs=$secs
    row "$name" "qemu-img convert" "$secs" "$kib" "$data" "$qsecs"
    measure "$rmout" qemu-img convert -t writeback -f qed -O qcow2 "$img" "$work/out"
    row "$name" "qemu-img convert -t writeback" "$secs" "$kib" "$data" "$qsecs"
    measure "$rmout" cp --sparse=always "$img" "$work/out"
    row "$name" "cp --sparse=always" "$secs" "$kib" "$data" "$qsecs"
    measure "$rmout" "$vqm" --file "$img" --output "$work/out"
    row "$name" "vqm copy" "$secs" "$kib" "$data" "$qsecs" "$engine"
    qemu-img check -q "$work/out" || echo "bench: copy result not clean!" >&2
    measure "$rmout" env VQM_COPY_METHOD=read "$vqm" --file "$img" --output "$work/out"
    row "$name" "vqm copy (read/write)" "$secs" "$kib" "$data" "$qsecs" "$engine"
    rm -f "$work/out"
    measure 'cp --sparse=always "$img" "$work/inplace.qed"' \
        "$vqm" --file "$work/inplace.qed"
    row "$name" "vqm in place" "$secs" "$kib" "$data" "$qsecs" "$engine"
    qemu-img check -q "$work/inplace.qed" || echo "bench: in-place result not clean!" >&2
    rm -f "$work/inplace.qed"
}

for s in $sizes; do
    build "data-$s" "$s"
    run_image "data-$s"
    rm -f "$work/data-$s.qed"
done
for s in $sparse; do
    build "sparse-$s" "$s" sparse
    run_image "sparse-$s"
    rm -f "$work/sparse-$s.qed"
done
rm -f "$work/time" "$work/stdout"
rmdir "$work" 2>/dev/null || :
