#!/usr/bin/env bash
# The QED reader against QEMU on many geometries: cluster sizes from
# 4 KiB to 4 MiB, table sizes 2 to 16, image sizes that are not a
# multiple of the cluster size, writes across L2 table boundaries, zero
# clusters and partial last clusters.  Judges: qemu-img map and
# qemu-img convert.
source "$abs_top_builddir/tests/functions.sh"
set -e
set -x

requires qemu-img --version
requires qemu-io --version
source "$abs_top_srcdir/tests/qed-functions.sh"

d=$(vqm_tmpdir)
cleanup_fn rm -rf "$d"
max=$((192 * 1024 * 1024))

# cluster_size:table_size pairs QEMU 7.2 can create and open.
for geo in 4K:2 4K:4 4K:8 4K:16 8K:2 64K:2 64K:4 64K:16 256K:8 1M:2 \
           1M:16 2M:2 2M:8 4M:2; do
    cs=${geo%:*}; ts=${geo#*:}
    csb=$(numfmt --from=iec "$cs")
    l2span=$((ts * csb / 8 * csb))
    # Not a multiple of the cluster size: cs/2 + 512 past a cluster.
    clusters=$(( (3 * l2span < max ? 3 * l2span : max) / csb ))
    size=$(( clusters * csb + csb / 2 + 512 ))
    f="$d/g-$cs-$ts.qed"
    qemu-img create -f qed -o cluster_size="$cs",table_size="$ts" "$f" \
        "$size" >/dev/null

    cmds=(-c "write -P 0x11 0 4k"
          -c "write -z $((3 * csb)) $csb"
          -c "write -z $((5 * csb + 512)) 1024"
          -c "write -P 0x33 $((size - 512)) 512"
          -c "write -P 0x44 $(( (size / 2) / 512 * 512 )) 66048"
          -c "write -P 0x55 $((7 * csb)) $((2 * csb))"
          -c "write -z $((8 * csb)) $csb")
    if [ "$l2span" -lt "$size" ]; then
        # Across the boundary between the first two L2 tables.
        cmds+=(-c "write -P 0x22 $((l2span - 2048)) 4096")
    fi
    qemu-io -f qed "${cmds[@]}" "$f" >/dev/null
    qemu-img check -f qed "$f"
    qed_compare "$f"

    out=$(virt-qed-migrate --inspect "$f")
    echo "$out" | grep "^cluster size: *$csb\$"
    echo "$out" | grep "^table size: *$ts clusters"
    echo "$out" | grep "0 corruptions"
    rm -f "$f"
done

# Table size 1: valid for the spec, refused by QEMU.  We open it, with a
# warning, and QEMU indeed cannot.
f="$d/ts1.qed"
qemu-img create -f qed -o table_size=1 "$f" 64M >/dev/null
! qemu-img info -f qed "$f" >/dev/null 2>&1 || fail "QEMU opened table_size 1"
out=$(virt-qed-migrate --inspect "$f")
echo "$out" | grep "warning: table size 1"
virt-qed-migrate --inspect "$f" --map --json > "$d/ts1.json"
test "$(cat "$d/ts1.json")" = '[{ "start": 0, "length": 67108864, "depth": 0, "present": false, "zero": true, "data": false}]'

# Table size 1 with data, laid out by hand (QEMU cannot write it): 4 KiB
# clusters, L1 at 0x1000, an L2 table at 0x2000 and guest cluster 3 at
# 0x3000, filled with 0xa5; cluster 5 is a zero cluster.
f="$d/ts1-data.qed"
qemu-img create -f qed -o cluster_size=4k,table_size=1 "$f" 1M >/dev/null
truncate -s $((4 * 4096)) "$f"
qed_set_u64 "$f" 4096 8192
qed_set_u64 "$f" $((8192 + 3 * 8)) 12288
qed_set_u64 "$f" $((8192 + 5 * 8)) 1
head -c 4096 /dev/zero | tr '\0' '\245' |
    dd of="$f" bs=4096 seek=3 conv=notrunc status=none
virt-qed-migrate --inspect "$f" | grep '0 corruptions, 0 leaked clusters'
cat > "$d/ts1-expected.json" <<'JSON'
[{ "start": 0, "length": 12288, "depth": 0, "present": false, "zero": true, "data": false},
{ "start": 12288, "length": 4096, "depth": 0, "present": true, "zero": false, "data": true, "offset": 12288},
{ "start": 16384, "length": 4096, "depth": 0, "present": false, "zero": true, "data": false},
{ "start": 20480, "length": 4096, "depth": 0, "present": true, "zero": true, "data": false},
{ "start": 24576, "length": 1024000, "depth": 0, "present": false, "zero": true, "data": false}]
JSON
virt-qed-migrate --inspect "$f" --map --json | diff -u "$d/ts1-expected.json" -
# qemu-img's spelling of the same option.
virt-qed-migrate --inspect "$f" --map --output=json | diff -u "$d/ts1-expected.json" -
must_fail 2 virt-qed-migrate --inspect "$f" --map --output=yaml
truncate -s 1M "$d/ts1-expected.raw"
head -c 4096 /dev/zero | tr '\0' '\245' |
    dd of="$d/ts1-expected.raw" bs=4096 seek=3 conv=notrunc status=none
"$vqm_cat" "$f" qed | cmp - "$d/ts1-expected.raw"

# An empty image (size 0), and --json without --map is a usage error.
qemu-img create -f qed "$d/empty.qed" 0 >/dev/null
qed_compare "$d/empty.qed"
must_fail 2 virt-qed-migrate --inspect "$d/empty.qed" --json
