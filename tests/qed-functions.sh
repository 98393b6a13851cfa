# Helpers shared by tests/test-qed-*.sh (sourced after functions.sh).

vqm_cat="$abs_top_builddir/tests/unit/vqm-cat"

# qed_compare FILE: our map of FILE equals `qemu-img map --output=json`
# and the guest bytes we read equal `qemu-img convert -O raw`.
qed_compare ()
{
    local f=$1 ours theirs raw
    ours="$f.ours.json"
    theirs="$f.qemu.json"
    raw="$f.qemu.raw"
    virt-qed-migrate --inspect "$f" --map --json > "$ours"
    qemu-img map -f qed --output=json "$f" > "$theirs"
    diff -u "$theirs" "$ours" || fail "map of $f differs from qemu-img map"
    qemu-img convert -f qed -O raw "$f" "$raw"
    "$vqm_cat" "$f" qed | cmp - "$raw" ||
        fail "guest bytes of $f differ from qemu-img convert"
    rm -f "$ours" "$theirs" "$raw"
}

# qed_set_u32 FILE OFFSET VALUE / qed_set_u64 FILE OFFSET VALUE: patch a
# little-endian field in place.
qed_set_u32 ()
{
    local v=$3
    printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' \
        $((v & 255)) $(((v >> 8) & 255)) $(((v >> 16) & 255)) \
        $(((v >> 24) & 255)))" |
        dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
qed_set_u64 ()
{
    local v=$3 lo hi
    lo=$((v & 0xffffffff))
    hi=$(((v >> 32) & 0xffffffff))
    qed_set_u32 "$1" "$2" "$lo"
    qed_set_u32 "$1" $(($2 + 4)) "$hi"
}

# qed_get_u64 FILE OFFSET: print a little-endian u64 field (decimal).
qed_get_u64 ()
{
    od -An -t u8 -j "$2" -N 8 --endian=little "$1" | tr -d ' '
}
qed_get_u32 ()
{
    od -An -t u4 -j "$2" -N 4 --endian=little "$1" | tr -d ' '
}
