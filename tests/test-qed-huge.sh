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

# Scattered tables: 147456 valid, distinct data references, each 8 MiB
# from the next, over a 1.2 TiB sparse file.
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
cp --sparse=always scatter.qed scatter.pristine.qed
size=$(stat -c %s scatter.qed)
# The references do not fit one bitmap within the memory bound: the check
# walks the tables once per window of host clusters and still finds
# every problem (here none), under 64 MiB.
for cmd in "--inspect scatter.qed" "--inspect scatter.qed --map --json" \
           "--file scatter.qed --output scatter.qcow2" "--file scatter.qed"; do
    # shellcheck disable=SC2086
    env -u MALLOC_PERTURB_ /usr/bin/time -f '%M' -o scatter.rss \
        timeout 60 virt-qed-migrate $cmd > scatter.out 2> scatter.err ||
        { cat scatter.err; fail "$cmd failed"; }
    cat scatter.err scatter.rss
    if ! ldd "$(command -v virt-qed-migrate)" | grep -q libasan; then
        test "$(tail -1 scatter.rss)" -lt 65536 || fail "$cmd: $(tail -1 scatter.rss) KiB"
    fi
done
virt-qed-migrate --inspect scatter.pristine.qed > scatter.out
# Every cluster of the file but the header, the L1, 18 L2 tables of 16
# clusters and the 147456 data clusters is leaked, across the windows.
grep -q '0 corruptions, 301846223 leaked clusters' scatter.out
qemu-img compare scatter.pristine.qed scatter.qcow2
qemu-img compare scatter.pristine.qed scatter.qed
qemu-img check scatter.qcow2
qemu-img check scatter.qed

# The same tables with one duplicate reference in the last window and one
# in the first: both found, the image refused, the file unchanged.
cp --sparse=always scatter.pristine.qed dup.qed
perl -e '
    open(my $f, "+<", "dup.qed") or die;
    my ($l1, $tsz) = (4096, 65536);
    # last table, last entry := first entry of the last table
    seek($f, $l1 + $tsz * 18, 0); read($f, my $v, 8);
    seek($f, $l1 + $tsz * 18 + 8 * 8191, 0); print $f $v;
    # first table, entry 5 := entry 4
    seek($f, $l1 + $tsz + 8 * 4, 0); read($f, $v, 8);
    seek($f, $l1 + $tsz + 8 * 5, 0); print $f $v;
    close($f) or die;'
virt-qed-migrate --inspect dup.qed > dup.out || :
cat dup.out
grep -q '2 corruptions' dup.out
test "$(grep -c 'is referenced twice' dup.out)" = 2
head -c 2M dup.qed > dup.head
rc=0
virt-qed-migrate --file dup.qed 2> dup.err || rc=$?
cat dup.err
test "$rc" = 1
grep -q "is corrupt (2 problems" dup.err
head -c 2M dup.qed | cmp - dup.head
test "$(stat -c %s dup.qed)" = "$(stat -c %s scatter.pristine.qed)"
