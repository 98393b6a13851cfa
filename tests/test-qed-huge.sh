#!/usr/bin/env bash
# Huge sparse images: a 4 TiB QED image (and one at the 64 TiB capacity
# limit of the default geometry) costs the same memory and about the
# same time as a 64 MiB one.  The map still equals qemu-img map, and
# ranges read at both ends equal qemu-img dd.  Hostile tables cannot make
# the check's memory grow past its bound.
source "$abs_top_builddir/tests/functions.sh"
set -e
set -x

requires qemu-img --version
requires qemu-io --version
requires /usr/bin/time -f %M true
requires perl -e 1
source "$abs_top_srcdir/tests/qed-functions.sh"

d=$(vqm_tmpdir)
cleanup_fn rm -rf "$d"
cd "$d"

T=$((1 << 40))
size=$((4 * T + 512))
qemu-img create -f qed huge.qed "$size" >/dev/null
qemu-img create -f qed small.qed 64M >/dev/null
qemu-io -f qed -c "write -P 1 0 64k" -c "write -P 2 $((2 * T + 12345 * 512)) 100k" \
    -c "write -z $((3 * T)) 1M" -c "write -P 3 $((size - 4096)) 4096" \
    -c "write -P 4 $((T - 32768)) 65536" huge.qed >/dev/null
qemu-io -f qed -c "write -P 1 0 64k" -c "write -P 2 32M 100k" small.qed >/dev/null

virt-qed-migrate --inspect huge.qed --map --json > huge.json
qemu-img map -f qed --output=json huge.qed | diff -u - huge.json

# Ranges at the start, around the L1 boundary at 1 TiB, in the middle
# and at the very end, against qemu-img dd (64 KiB blocks; its count
# includes the skipped blocks).
for r in 0:4 $((T / 65536 - 2)):4 $(( (2 * T + 12345 * 512) / 65536 )):3 \
         $((3 * T / 65536)):17 $((size / 65536 - 1)):2; do
    skip=${r%:*}; count=${r#*:}
    rm -f range.raw
    qemu-img dd -f qed -O raw bs=65536 skip="$skip" count=$((skip + count)) \
        if=huge.qed of=range.raw
    len=$(stat -c %s range.raw)
    test "$len" -gt 0
    "$vqm_cat" huge.qed qed $((skip * 65536)) "$len" | cmp - range.raw
done

# Memory and time: inspecting (header, full check, summary) and mapping
# the 4 TiB image stays small, like the 64 MiB one.
for f in huge small; do
    /usr/bin/time -f '%M' -o "$f.rss" virt-qed-migrate --inspect "$f.qed" > "$f.out"
    grep '0 corruptions' "$f.out"
    /usr/bin/time -f '%M' -o "$f.maprss" \
        virt-qed-migrate --inspect "$f.qed" --map --json >/dev/null
done
cat huge.rss huge.maprss small.rss small.maprss
for f in huge.rss huge.maprss; do
    test "$(tail -1 "$f")" -lt 65536 || fail "$f: $(cat "$f") KiB"
done
test $(( $(tail -1 huge.rss) - $(tail -1 small.rss) )) -lt 8192 ||
    fail "the 4 TiB image costs more memory than the 64 MiB one"
# The summary's unallocated bytes equal what qemu-img map says.
unalloc=$(qemu-img map -f qed --output=json huge.qed |
          sed -n 's/.*"length": \([0-9]*\),.*"present": false.*/\1/p' |
          awk '{ s += $1 } END { printf "%.0f", s }')
grep "^  unallocated: *$unalloc bytes" huge.out

# At the capacity limit (64 TiB for 64 KiB clusters and table size 4),
# with data in the last cluster.
cap=$((64 * T))
qemu-img create -f qed cap.qed "$cap" >/dev/null
qemu-io -f qed -c "write -P 5 $((cap - 65536)) 65536" cap.qed >/dev/null
virt-qed-migrate --inspect cap.qed --map --json > cap.json
qemu-img map -f qed --output=json cap.qed | diff -u - cap.json
/usr/bin/time -f '%M' -o cap.rss virt-qed-migrate --inspect cap.qed
test "$(tail -1 cap.rss)" -lt 65536

# Hostile tables: 147456 valid, distinct data references, each 8 MiB
# from the next, over a 1.2 TiB sparse file.  The check's map of them is
# bounded: refused with a clear error, under 64 MiB, file unchanged.
qemu-img create -f qed -o cluster_size=4k,table_size=16 scatter.qed 1G >/dev/null
test "$(qed_get_u64 scatter.qed 40)" = 4096
perl -e '
    my ($tables, $per, $l1, $tsz) = (18, 8192, 4096, 65536);
    open(my $f, "+<", "scatter.qed") or die "scatter.qed: $!";
    for my $i (0 .. $tables - 1) {
        my $l2 = $l1 + $tsz * (1 + $i);
        seek($f, $l1 + 8 * $i, 0);
        print $f pack("Q<", $l2);
        seek($f, $l2, 0);
        print $f pack("Q<*", map { (1 + $i * $per + $_) << 23 } 0 .. $per - 1);
    }
    close($f) or die;'
truncate -s $(( (18 * 8192 + 2) << 23 )) scatter.qed
head -c 2M scatter.qed > scatter.head
size=$(stat -c %s scatter.qed)
for cmd in "--inspect scatter.qed" "--inspect scatter.qed --map --json" \
           "--file scatter.qed" "--file scatter.qed --output scatter.qcow2"; do
    rc=0
    # shellcheck disable=SC2086
    env -u MALLOC_PERTURB_ /usr/bin/time -f '%M' -o scatter.rss \
        timeout 60 virt-qed-migrate $cmd > /dev/null 2> scatter.err || rc=$?
    cat scatter.err scatter.rss
    test "$rc" = 1 || fail "$cmd: exit $rc"
    grep -q "error: 'scatter.qed': too many scattered cluster references" scatter.err
    test ! -e scatter.qcow2
    if ! ldd "$(command -v virt-qed-migrate)" | grep -q libasan; then
        test "$(tail -1 scatter.rss)" -lt 65536 || fail "$cmd: $(tail -1 scatter.rss) KiB"
    fi
done
test "$(stat -c %s scatter.qed)" = "$size"
head -c 2M scatter.qed | cmp - scatter.head
