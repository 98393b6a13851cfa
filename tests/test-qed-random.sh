#!/usr/bin/env bash
# Randomised differential test: QED images of random geometry and size,
# random data and zero writes (aligned or not), over no backing file or
# a random raw, qcow2 or QED one.  Our map and guest bytes must equal
# QEMU's every time.  The seed is fixed for reproducible runs;
# VQM_TEST_SEED and VQM_TEST_ROUNDS explore further.
source "$abs_top_builddir/tests/functions.sh"
set -e
set -x

requires qemu-img --version
requires qemu-io --version
source "$abs_top_srcdir/tests/qed-functions.sh"

d=$(vqm_tmpdir)
cleanup_fn rm -rf "$d"
cd "$d"

seed=${VQM_TEST_SEED:-1125}
echo "seed: $seed"
RANDOM=$seed
rounds=${VQM_TEST_ROUNDS:-12}

geos=(4K:2 4K:16 8K:4 16K:8 64K:2 64K:4 128K:16 512K:2 1M:4)
for round in $(seq 1 "$rounds"); do
    geo=${geos[RANDOM % ${#geos[@]}]}
    cs=${geo%:*}; ts=${geo#*:}
    csb=$(numfmt --from=iec "$cs")
    size=$(( (RANDOM % 4096 + 1) * 16384 + (RANDOM % 32) * 512 ))
    rm -f top.qed back.*
    backing=()
    case $((RANDOM % 4)) in
    1)  bsize=$(( (RANDOM % 4096 + 1) * 16384 ))
        truncate -s "$bsize" back.raw
        qemu-io -f raw -c "write -P 0x5a $(( (RANDOM % (bsize / 512)) * 512 )) 512" \
            back.raw >/dev/null
        backing=(-b back.raw -F raw) ;;
    2)  bsize=$(( (RANDOM % 4096 + 1) * 16384 ))
        qemu-img create -f qcow2 -o cluster_size=4k back.qcow2 "$bsize" >/dev/null
        qemu-io -f qcow2 -c "write -P 0x6b 0 $((bsize / 3 / 512 * 512))" \
            -c "write -z $((bsize / 2 / 4096 * 4096)) 8192" back.qcow2 >/dev/null
        backing=(-b back.qcow2 -F qcow2) ;;
    3)  bsize=$(( (RANDOM % 4096 + 1) * 16384 ))
        qemu-img create -f qed -o cluster_size=4k back.qed "$bsize" >/dev/null
        boff=$((bsize / 4 / 512 * 512))
        blen=$((bsize - boff < 70000 ? bsize - boff : 70000))
        qemu-io -f qed -c "write -P 0x7c $boff $blen" back.qed >/dev/null
        backing=(-b back.qed -F qed) ;;
    esac
    qemu-img create -f qed -o cluster_size="$cs",table_size="$ts" \
        "${backing[@]}" top.qed "$size" >/dev/null
    cmds=()
    for i in $(seq 1 $((RANDOM % 20 + 1))); do
        if [ $((RANDOM % 2)) = 0 ]; then
            # aligned to the cluster size
            off=$(( (RANDOM * 32768 + RANDOM) % (size / csb + 1) * csb ))
            len=$(( (RANDOM % 3 + 1) * csb ))
        else
            off=$(( (RANDOM * 32768 + RANDOM) % (size / 512) * 512 ))
            len=$(( (RANDOM % 300 + 1) * 512 ))
        fi
        [ "$off" -lt "$size" ] || continue
        [ $((off + len)) -le "$size" ] || len=$((size - off))
        if [ $((RANDOM % 3)) = 0 ]; then
            cmds+=(-c "write -z $off $len")
        else
            cmds+=(-c "write -P $((RANDOM % 255 + 1)) $off $len")
        fi
    done
    if [ ${#cmds[@]} -gt 0 ]; then
        qemu-io -f qed "${cmds[@]}" top.qed >/dev/null
    fi
    qed_compare top.qed
    virt-qed-migrate --inspect top.qed | grep '0 corruptions'
done
