#!/usr/bin/env bash
# virt-qed-migrate benchmark: builds QED images and times, in the same run
# and on the same files, our in-place conversion, our copy conversion,
# `qemu-img convert -O qcow2` (default cache mode, and -t writeback which
# syncs like we do) and `cp --sparse=always` (the floor for a data copy).
# Every tool runs once per round, BENCH_REPEAT rounds; prints the min and
# median wall time, MB/s of allocated data, peak RSS, and the ratios to
# qemu-img convert (of the minimums, and the median of the per-round
# ratios).
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
#   BENCH_REPEAT   rounds (default 5): each round runs every tool once
#   BENCH_CACHE    warm (default): the source is read into the page cache
#                  first; cold: the page cache is dropped before each run
#                  (needs root)
#   BENCH_SHAPES   fully allocated shapes (default "full-16G partial-16G
#                  dense-4G full-256G full-1T"; "" for none):
#                    full-SIZE     every cluster allocated, every data
#                                  cluster a hole of the file (what
#                                  cp --sparse=always leaves of a
#                                  zero-filled image)
#                    partial-SIZE  the same with BENCH_PART_FILL percent
#                                  (default 10) of its 1 MiB chunks
#                                  holding random data
#                    dense-SIZE    every cluster allocated and written
#                                  with random data
#                  Images of 64 GiB and more run BENCH_HUGE_REPEAT rounds
#                  (default 1) of in place, copy and qemu-img convert,
#                  then more of in place up to BENCH_INPLACE_REPEAT
#                  (default BENCH_REPEAT) rounds (the ratios use the
#                  rounds with a qemu-img run);
#                  qemu-img convert is stopped after BENCH_QEMU_TIMEOUT
#                  seconds (default 600) and then timed as that.
#
# Needs qemu-img, qemu-io and /usr/bin/time.  WORKDIR (default a new
# directory under /var/tmp) needs about 2.5x the data of the biggest image.
set -euo pipefail

vqm=${VQM:-$(command -v virt-qed-migrate || echo ./virt-qed-migrate)}
sizes=${BENCH_SIZES-"2G 8G"}
sparse=${BENCH_SPARSE-"1T 4T"}
shapes=${BENCH_SHAPES-"full-16G partial-16G dense-4G full-256G full-1T"}
part_fill=${BENCH_PART_FILL:-10}
huge_repeat=${BENCH_HUGE_REPEAT:-1}
repeat=${BENCH_REPEAT:-5}
inplace_repeat=${BENCH_INPLACE_REPEAT:-$repeat}
qemu_timeout=${BENCH_QEMU_TIMEOUT:-600}
here=$(cd "$(dirname "$0")" && pwd)
cs=${BENCH_CLUSTER:-64k}
fill=${BENCH_FILL:-50}
cache=${BENCH_CACHE:-warm}
work=${1:-$(mktemp -d /var/tmp/vqm-bench.XXXXXX)}
mkdir -p "$work"
timed_out=
timefmt='%e %M'  # wall time is measured around it with date +%N

for tool in qemu-img qemu-io /usr/bin/time "$vqm"; do
    command -v "$tool" >/dev/null || { echo "bench: $tool not found" >&2; exit 1; }
done

# build NAME SIZE [sparse]: a QED image; data images get random data in
# about fill% of their 1 MiB chunks, sparse ones a few writes.
build ()
{
    local img=$work/$1.qed size=$2 kind=${3:-data} mib i fill=$fill
    qemu-img create -q -f qed -o cluster_size="$cs" "$img" "$size"
    case $kind in
        full|partial|dense)
            # Every cluster allocated, laid out as QEMU writes an image
            # front to back (byte for byte: see bench/README.md), data
            # clusters left as holes; then random data where asked.
            perl "$here/mkqed-full.pl" "$img" "$size" "$cs"
            [ "$kind" = full ] && return
            [ "$kind" = dense ] && fill=100 || fill=$part_fill
            ;;
    esac
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

# One run of CMD... after PREP (shell code: fresh input, or no output
# file left), a sync and, for a cold cache, dropped caches.  Appends
# "secs kib engine" to $work/runs.$tag.
run_one ()
{
    local tag=$1 prep=$2 k t0 t1 s eng
    shift 2
    eval "$prep"
    sync
    if [ "$cache" = cold ]; then
        echo 3 > /proc/sys/vm/drop_caches
    fi
    sleep 0.5
    t0=$(date +%s%N)
    if ! /usr/bin/time -f "$timefmt" -o "$work/time" "$@" > "$work/stdout"; then
        echo "bench: $tag run failed or timed out" >&2
        timed_out="$timed_out $tag"
    fi
    t1=$(date +%s%N)
    read -r _ k < <(tail -1 "$work/time")
    s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    # Our own report: the engine's time without process start-up.
    eng=$(sed -n 's/.* in \([0-9.]*\) s .*/\1/p' "$work/stdout")
    echo "$s $k ${eng:--}" >> "$work/runs.$tag"
}

# row IMAGE LABEL TAG DATA_BYTES: min and median wall time, MB/s at the
# median, peak RSS, min/min(qemu-img), the median of the ratios to the
# qemu-img run of the same round, and our engine's median time.
row ()
{
    paste -d' ' "$work/runs.$3" "$work/runs.q" | awk -v img="$1" \
        -v label="$2" -v data="$4" '
        function median(a, n,   i, j, t) {
            for (i = 2; i <= n; i++)
                for (j = i; j > 1 && a[j - 1] > a[j]; j--) {
                    t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
                }
            return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        {
            n++; s[n] = $1
            if ($2 > kib) kib = $2
            if ($3 != "-") { ne++; e[ne] = $3 }
            if (n == 1 || $1 < smin) smin = $1
            # Rounds without a qemu-img run (more rounds of in place on
            # the huge shapes) have no ratio.
            if ($4 != "" && $4 > 0) {
                nr++; r[nr] = $1 / $4
                if (nr == 1 || $4 < qmin) qmin = $4
            }
        }
        END {
            smed = median(s, n)
            mbs = smed > 0 ? sprintf("%.0f", data / 1e6 / smed) : "inf"
            mm = qmin > 0 ? smin / qmin : 0
            eng = ne ? sprintf("%.3f", median(e, ne)) : "-"
            printf("%-10s %-28s %8.3f %8.3f %7s %7.1f %8.3f %8.3f %8s\n",
                   img, label, smin, smed, mbs, kib / 1024, mm,
                   nr ? median(r, nr) : 0, eng)
        }'
}

echo "virt-qed-migrate benchmark: $(nproc) CPUs, $(uname -r), $(df -T "$work" | awk 'NR==2 {print $2}') in $work"
echo "QED cluster size $cs; data images: ${fill}% of 1 MiB chunks random; page cache $cache; $repeat rounds"
printf '%-10s %-28s %8s %8s %7s %7s %8s %8s %8s\n' image tool "min s" \
    "median s" "MB/s" "RSS MiB" "min/min" "ratio" "engine s"

run_image ()
{
    local name=$1 img=$work/$1.qed data i
    local rmout='rm -f "$work/out"'
    data=$(du -B1 "$img" | cut -f1)
    rm -f "$work"/runs.*
    cat "$img" > /dev/null
    # Round-robin: every tool once per round, so that a change in the
    # machine's speed hits them all alike.
    for (( i = 0; i < repeat; i++ )); do
        run_one q "$rmout" qemu-img convert -f qed -O qcow2 "$img" "$work/out"
        run_one qw "$rmout" qemu-img convert -t writeback -f qed -O qcow2 \
            "$img" "$work/out"
        run_one cp "$rmout" cp --sparse=always "$img" "$work/out"
        run_one vc "$rmout" "$vqm" --file "$img" --output "$work/out"
        qemu-img check -q "$work/out" || echo "bench: copy result not clean!" >&2
        run_one vb "$rmout" env VQM_COPY_DIRECT=0 "$vqm" --file "$img" \
            --output "$work/out"
        run_one vr "$rmout" env VQM_COPY_METHOD=read "$vqm" --file "$img" \
            --output "$work/out"
        run_one vi 'rm -f "$work/out"; cp --sparse=always "$img" "$work/inplace.qed"' \
            "$vqm" --file "$work/inplace.qed"
        qemu-img check -q "$work/inplace.qed" ||
            echo "bench: in-place result not clean!" >&2
    done
    row "$name" "qemu-img convert" q "$data"
    row "$name" "qemu-img convert -t writeback" qw "$data"
    row "$name" "cp --sparse=always" cp "$data"
    row "$name" "vqm copy" vc "$data"
    row "$name" "vqm copy (buffered)" vb "$data"
    row "$name" "vqm copy (read/write)" vr "$data"
    row "$name" "vqm in place" vi "$data"
    rm -f "$work/out" "$work/inplace.qed" "$work"/runs.*
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
# run_shape NAME: the fully allocated shapes.  Small ones get the same
# tools as the data images; huge ones (64 GiB and more) in place, copy and
# qemu-img convert (under a timeout), BENCH_HUGE_REPEAT rounds.
run_shape ()
{
    local name=$1 kind=${1%%-*} size=${1#*-} img=$work/$1.qed data i n
    local rmout='rm -f "$work/out"'
    build "$name" "$size" "$kind"
    n=$(numfmt --from=iec "$size")
    if [ "$n" -lt $((64 << 30)) ]; then
        run_image "$name"
        rm -f "$img"
        return
    fi
    data=$(du -B1 "$img" | cut -f1)
    rm -f "$work"/runs.*
    timed_out=
    for (( i = 0; i < huge_repeat; i++ )); do
        run_one q "$rmout" timeout "$qemu_timeout" qemu-img convert -f qed \
            -O qcow2 "$img" "$work/out"
        run_one vc "$rmout" "$vqm" --file "$img" --output "$work/out"
        qemu-img check -q "$work/out" || echo "bench: copy result not clean!" >&2
        run_one vi 'rm -f "$work/out"; cp --sparse=always "$img" "$work/inplace.qed"' \
            "$vqm" --file "$work/inplace.qed"
    done
    # In place takes seconds at most: BENCH_INPLACE_REPEAT rounds in all,
    # for a meaningful minimum and median.
    for (( ; i < inplace_repeat; i++ )); do
        run_one vi 'cp --sparse=always "$img" "$work/inplace.qed"' \
            "$vqm" --file "$work/inplace.qed"
    done
    row "$name" "qemu-img convert" q "$data"
    row "$name" "vqm copy" vc "$data"
    row "$name" "vqm in place" vi "$data"
    case $timed_out in
        *q*) echo "$name: qemu-img convert stopped after $qemu_timeout s: its times are lower bounds" ;;
    esac
    rm -f "$work/out" "$work/inplace.qed" "$img" "$work"/runs.*
}

for s in $shapes; do
    run_shape "$s"
done
rm -f "$work/time" "$work/stdout"
rmdir "$work" 2>/dev/null || :
