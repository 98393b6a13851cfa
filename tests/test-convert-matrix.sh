#!/usr/bin/env bash
# Convert a matrix of QED images made by qemu-img/qemu-io, in place and by
# copy, and let QEMU judge the results: check clean, compare identical with
# a pristine copy, qcow2 without backing file, writable afterwards.
source "$abs_top_builddir/tests/functions.sh"
source "$abs_top_srcdir/tests/convert-lib.sh"
set -e
set -x

convert_setup

# name size create-options -- qemu-io commands
cases=(
  "c4k-ts2|10M|-o cluster_size=4k,table_size=2|write -P 0x11 0 12k;write -z 64k 8k;write -P 0x12 5M 4k;write -P 0x13 10236k 4k"
  "c4k-ts16|10753536|-o cluster_size=4k,table_size=16|write -P 0x21 4k 4k;write -P 0x22 10500k 1k;write -z 1M 64k"
  "c64k|67109376|-o cluster_size=64k|write -P 0xab 0 1M;write -z 4M 1M;write -P 0x11 10M 64k;write -P 0x22 63M 512k;write -P 0x23 64M 512"
  "c64k-ts16|40M|-o cluster_size=64k,table_size=16|write -P 0x31 0 100k;write -z 8M 128k;write -P 0x32 39M 1M"
  "c1m-ts2|33M|-o cluster_size=1M,table_size=2|write -P 0x41 0 1536k;write -z 5M 1M;write -P 0x42 32M 1M"
  "c2m-ts2|9437696|-o cluster_size=2M,table_size=2|write -P 0x51 0 3M;write -z 4M 2M;write -P 0x52 8M 512k"
  "c2m-ts8|20M|-o cluster_size=2M,table_size=8|write -P 0x53 2M 2M;write -P 0x54 18M 2M"
  "c4m-ts2|9437696|-o cluster_size=4M,table_size=2|write -P 0x61 0 5M;write -z 4M 4M;write -P 0x62 8M 512k"
  "empty|16M|-o cluster_size=64k|"
  "zeros-only|16M|-o cluster_size=64k|write -z 0 16M"
)

for spec in "${cases[@]}"; do
    IFS='|' read -r name size opts cmds <<< "$spec"
    IFS=';' read -r -a io <<< "$cmds"
    # shellcheck disable=SC2086
    mkqed "$name.qed" "$size" $opts -- "${io[@]}"
    cp "$name.qed" "$name.pristine.qed"
    sha=$(sha256sum < "$name.qed")

    # By copy: the source is not touched.
    virt-qed-migrate --file "$name.qed" --output "$name.copy.qcow2" --verify
    test "$(sha256sum < "$name.qed")" = "$sha" || fail "$name: source changed"
    judge "$name.copy.qcow2" "$name.pristine.qed"

    # --copy picks IMAGE.qcow2 next to it.
    virt-qed-migrate -q --file "$name.qed" --copy
    qcheck_clean "$name.qcow2"
    qemu-img compare "$name.pristine.qed" "$name.qcow2"

    # In place, with map and full verification.
    virt-qed-migrate --file "$name.qed" --verify=full
    judge "$name.qed" "$name.pristine.qed"

    # Again: already qcow2, nothing to do, exit 0.
    virt-qed-migrate --file "$name.qed" | grep 'already qcow2'
    rm -f "$name".*
done

# qcs = cs for cs <= 2M: qemu-img map shows the same host offsets.
mkqed same.qed 64M -o cluster_size=64k -- 'write -P 1 0 1M' 'write -P 2 50M 64k'
qemu-img map --output=json same.qed | jq -c '.[] | [.start, .length, .offset]' > before
virt-qed-migrate -q --file same.qed
qemu-img map --output=json same.qed | jq -c '.[] | [.start, .length, .offset]' > after
diff -u before after

# NEED_CHECK set: checked fully, then converted.
mkqed dirty.qed 32M -- 'write -P 0x77 0 1M' 'write -P 0x78 20M 64k'
cp dirty.qed dirty.pristine.qed
printf '\x02' | dd of=dirty.qed bs=1 seek=16 conv=notrunc status=none
cp dirty.qed dirty2.qed
virt-qed-migrate --file dirty.qed --verify
judge dirty.qed dirty.pristine.qed
virt-qed-migrate --file dirty2.qed --output dirty2.qcow2
judge dirty2.qcow2 dirty.pristine.qed

# Trailing bytes after the last full cluster (QEMU ignores them) and
# leaked clusters: both end up as free space in the qcow2.
mkqed tail.qed 8M -- 'write -P 0x91 0 128k' 'write -P 0x92 7M 64k'
head -c 300 /dev/urandom >> tail.qed
cp tail.qed tail.pristine.qed
virt-qed-migrate --file tail.qed --verify
judge tail.qed tail.pristine.qed
mkqed leak.qed 8M -- 'write -P 0x93 0 64k'
truncate -s +192k leak.qed
printf 'garbage' | dd of=leak.qed bs=1 seek=$(( $(stat -c %s leak.qed) - 1000 )) conv=notrunc status=none
rc=0
qemu-img check leak.qed >/dev/null 2>&1 || rc=$?
test "$rc" = 3
cp leak.qed leak.pristine.qed
virt-qed-migrate --file leak.qed
judge leak.qed leak.pristine.qed

# header_size 2: the L1 table moved to the end of the file, cluster 1
# (the old L1) now in the header area.
mkqed hdr.qed 8M -- 'write -P 0x94 0 64k' 'write -z 1M 64k' 'write -P 0x95 6M 64k'
len=$(stat -c %s hdr.qed)
dd if=hdr.qed bs=64k skip=1 count=4 status=none >> hdr.qed
printf '\x02' | dd of=hdr.qed bs=1 seek=12 conv=notrunc status=none
printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $((len & 255)) $(((len >> 8) & 255)) $(((len >> 16) & 255)) $(((len >> 24) & 255)))" |
    dd of=hdr.qed bs=1 seek=40 conv=notrunc status=none
test "$(od -An -t u4 -j 12 -N 4 hdr.qed | tr -d ' ')" = 2
cp hdr.qed hdr.pristine.qed
virt-qed-migrate --file hdr.qed --output hdr.copy.qcow2 --verify
judge hdr.copy.qcow2 hdr.pristine.qed
virt-qed-migrate --file hdr.qed --verify=full
judge hdr.qed hdr.pristine.qed

# A data cluster 17 GiB into a sparse file (4k clusters): the refcount
# blocks need more than one window, and the zeros it holds are not copied.
mkqed far.qed 64M -o cluster_size=4k,table_size=2 -- 'write -P 0x96 0 8k'
l2=$(od -An -t u8 -j 4096 -N 8 --endian=little far.qed | tr -d ' ')
truncate -s $((17 * 1024 * 1024 * 1024 + 65536)) far.qed
far=$((17 * 1024 * 1024 * 1024))
printf "$(for i in 0 1 2 3 4 5 6 7; do printf '\\x%02x' $(((far >> (8 * i)) & 255)); done)" |
    dd of=far.qed bs=1 seek=$((l2 + 5 * 8)) conv=notrunc status=none
test "$(od -An -t u8 -j $((l2 + 40)) -N 8 --endian=little far.qed | tr -d ' ')" = "$far"
cp --sparse=always far.qed far.pristine.qed
virt-qed-migrate --file far.qed --output far.copy.qcow2 --verify
judge far.copy.qcow2 far.pristine.qed
test "$(stat -c %s far.copy.qcow2)" -lt 1000000
VQM_DEBUG=1 virt-qed-migrate --file far.qed --verify 2> far.debug
grep 'refcount blocks' far.debug
judge far.qed far.pristine.qed
rm -f far.*

# A multi-terabyte sparse image: in place costs only metadata.
mkqed big.qed 4T -o cluster_size=64k -- 'write -P 0x81 0 64k' \
    'write -P 0x82 2T 1M' 'write -z 3T 64k' 'write -P 0x83 4398046445568 64k'
cp --sparse=always big.qed big.pristine.qed
start=$(date +%s%N)
virt-qed-migrate --file big.qed --verify
end=$(date +%s%N)
echo "4 TiB sparse in place: $(( (end - start) / 1000000 )) ms"
qcheck_clean big.qed
qemu-img compare big.pristine.qed big.qed
test "$(info_field big.qed format)" = qcow2
test "$(info_field big.qed virtual-size)" = 4398046511104
qio_ok big.qed 'read -P 0x82 2T 1M' 'read -P 0x83 4398046445568 64k' \
    'read -P 0 3T 64k'
# ... and by copy, sparse.
virt-qed-migrate --file big.pristine.qed --output big.copy.qcow2
qcheck_clean big.copy.qcow2
qemu-img compare big.pristine.qed big.copy.qcow2
test "$(du -k big.copy.qcow2 | cut -f1)" -lt 20000

# Memory stays bounded whatever the size: an 8 TiB image copied with 4k
# qcow2 clusters has qcow2's biggest L1 (32 MiB).  Peak RSS under 64 MiB
# (not measured under the sanitizers, whose shadow memory counts, nor
# with MALLOC_PERTURB_, which makes calloc touch every page).
if [ -x /usr/bin/time ] &&
   ! ldd "$(command -v virt-qed-migrate)" | grep -q 'libasan'; then
    mkqed huge.qed 8T -o cluster_size=64k -- 'write -P 0x84 0 64k' 'write -P 0x85 7T 64k'
    env -u MALLOC_PERTURB_ /usr/bin/time -f '%M' -o rss virt-qed-migrate -q --file huge.qed \
        --output huge.qcow2 --cluster-size 4k
    cat rss
    test "$(tail -1 rss)" -lt 65536
    qemu-img compare huge.qed huge.qcow2
    env -u MALLOC_PERTURB_ /usr/bin/time -f '%M' -o rss virt-qed-migrate -q --file huge.qed --verify
    cat rss
    test "$(tail -1 rss)" -lt 65536
    qcheck_clean huge.qed
fi
