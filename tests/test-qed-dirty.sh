#!/usr/bin/env bash
# NEED_CHECK (dirty) images: set by patching the header of a real image,
# the way a crash leaves it.  --inspect shows the state, the full check
# runs, the map and guest bytes still equal QEMU's (QEMU serves a
# read-only open without a check), and the file is not changed.
source "$abs_top_builddir/tests/functions.sh"
set -e
set -x

requires qemu-img --version
requires qemu-io --version
source "$abs_top_srcdir/tests/qed-functions.sh"

d=$(vqm_tmpdir)
cleanup_fn rm -rf "$d"
cd "$d"

truncate -s 4M back.raw
dd if=/dev/urandom of=back.raw bs=64k count=8 seek=2 conv=notrunc status=none
for f in plain:"" backed:"-b back.raw -F raw"; do
    name=${f%%:*}
    # shellcheck disable=SC2086
    qemu-img create -f qed -o cluster_size=16k ${f#*:} "$name.qed" 6M >/dev/null
    qemu-io -f qed -c "write -P 9 16k 48k" -c "write -z 1M 32k" \
        -c "write -P 10 3M 1M" "$name.qed" >/dev/null
    feat=$(qed_get_u64 "$name.qed" 16)
    qed_set_u64 "$name.qed" 16 $((feat | 2))
    before=$(sha256sum < "$name.qed")
    virt-qed-migrate --inspect "$name.qed" > "$name.out"
    cat "$name.out"
    grep 'need check): *yes' "$name.out"
    grep 'features: *0x[0-9a-f]* (.*need-check' "$name.out"
    grep '0 corruptions, 0 leaked clusters' "$name.out"
    qed_compare "$name.qed"
    test "$(sha256sum < "$name.qed")" = "$before"
    # QEMU's check sees no problem either and leaves the bit alone.
    qemu-img check -f qed "$name.qed"
    test $(( $(qed_get_u64 "$name.qed" 16) & 2 )) = 2
done
