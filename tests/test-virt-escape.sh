#!/usr/bin/env bash
# Names from images and definitions are printed escaped: a backing file
# whose name holds a newline followed by a fake summary line, an escape
# sequence and BEL shows up as \n, \x1b and \x07 in the plan, the run's
# output, --inspect and error messages; no raw control byte reaches the
# terminal and no line of output is faked.
source "$abs_top_builddir/tests/functions.sh"
set -e
set -x

requires xmllint --version
source "$abs_top_srcdir/tests/libvirtd.sh"
source "$abs_top_srcdir/tests/virt-lib.sh"

virt_setup
p=$(lv_pool p)
fake="Summary: 9 image(s) converted, 9 domain definition(s) rewritten, 0 skipped, 0 failed; everything in scope is qcow2."
name=$'base\n'"$fake"$'\e]0;owned\a\e[2J'
lv_run qemu-img create -q -f raw "$p/$name" 16M
qed_image "$p/top.qed" 16M "./$name" raw
define_domain dom "$(file_disk "$p/top.qed" qed vda)"

# clean FILE: no control byte but newline, no faked line.
clean ()
{
    if LC_ALL=C grep -q $'[\x01-\x09\x0b-\x1f\x7f]' "$1"; then
        fail "raw control bytes in $1"
    fi
    if grep -q "^Summary: 9" "$1"; then
        fail "a name faked a line in $1"
    fi
}

virt-qed-migrate --inspect "$p/top.qed" > "$d/inspect" 2>&1
cat "$d/inspect"
clean "$d/inspect"
grep -q 'backing file: *\./base\\nSummary: 9 .*\\x1b\]0;owned\\x07\\x1b\[2J$' "$d/inspect"

virt-qed-migrate --state-dir "$state" --domain dom --dry-run \
    > "$d/dry" 2>&1 || true
cat "$d/dry"
clean "$d/dry"
grep -q 'base\\nSummary: 9' "$d/dry"

rc=0
virt-qed-migrate --state-dir "$state" --domain dom > "$d/run" 2>&1 || rc=$?
cat "$d/run"
clean "$d/run"
grep -q '^Summary: 1 image(s) converted' "$d/run"
[ "$rc" = 0 ]
[ "$(disk_attr dom vda driver/@type)" = qcow2 ]

# An error message naming it: the copy of a missing backing file.
rm -f "$p/$name"
virt-qed-migrate --file "$p/top.qcow2" --copy > "$d/err" 2>&1 || true
virt-qed-migrate --inspect "$p/top.qcow2" >> "$d/err" 2>&1 || true
lv_run qemu-img create -q -f qed -u -b "./$name" -F raw "$p/lost.qed" 16M
must_fail 1 virt-qed-migrate --file "$p/lost.qed" >> "$d/err" 2>&1
cat "$d/err"
clean "$d/err"
grep -q "error: .*base\\\\nSummary: 9" "$d/err"
