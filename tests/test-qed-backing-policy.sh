#!/usr/bin/env bash
# Hostile backing file names: sensitive system files, devices, special
# files, symlinks, loops, protocol names, over-deep chains and the
# trusted-directory rule.  Each is refused with a clear one-line error,
# exit 1, and (checked with strace) the refused file is never opened
# (resolving its name with O_PATH does not open it).
source "$abs_top_builddir/tests/functions.sh"
set -e
set -x

requires qemu-img --version
requires timeout --version
source "$abs_top_srcdir/tests/qed-functions.sh"

d=$(vqm_tmpdir)
cleanup_fn rm -rf "$d"
cd "$d"

qemu-img create -f qed base.qed 16M >/dev/null

# set_backing FILE NAME [FEATURES]: point FILE's backing name at NAME.
set_backing ()
{
    local f=$1 name=$2 feat=${3:-1}
    cp base.qed "$f"
    printf '%s' "$name" | dd of="$f" bs=1 seek=64 conv=notrunc status=none
    qed_set_u64 "$f" 16 "$feat"
    qed_set_u32 "$f" 56 64
    qed_set_u32 "$f" 60 "${#name}"
}

have_strace=no
if strace -o /dev/null true 2>/dev/null; then have_strace=yes; fi

# refused FILE REGEX [NEVER_OPENED]: --inspect, --inspect --map and
# conversion (in place and by copy) all exit 1 with one error line
# matching REGEX; FILE is unchanged; with strace, NEVER_OPENED is never
# opened.
refused ()
{
    local f=$1 re=$2 never=$3 before rc
    before=$(sha256sum < "$f")
    for mode in "" "--map --json"; do
        rc=0
        # shellcheck disable=SC2086
        timeout 60 virt-qed-migrate --inspect "$f" $mode >/dev/null \
            2> "$f.err" || rc=$?
        cat "$f.err"
        test "$rc" = 1 || fail "$f ($mode): exit $rc, expected 1"
        test "$(wc -l < "$f.err")" = 1 || fail "$f: not one error line"
        grep -E -- "$re" "$f.err" || fail "$f: expected /$re/"
    done
    # Conversion refuses it the same way, in place and by copy.
    for mode in "" "--output $f.qcow2"; do
        rc=0
        # shellcheck disable=SC2086
        timeout 60 virt-qed-migrate --file "$f" $mode >/dev/null \
            2> "$f.err" || rc=$?
        cat "$f.err"
        test "$rc" = 1 || fail "--file $f $mode: exit $rc, expected 1"
        test "$(wc -l < "$f.err")" = 1 || fail "$f: not one error line"
        grep -E -- "$re" "$f.err" || fail "$f: expected /$re/"
        test ! -e "$f.qcow2" || fail "$f: output left behind"
    done
    test "$(sha256sum < "$f")" = "$before" || fail "$f was modified"
    if [ -n "$never" ] && [ "$have_strace" = yes ]; then
        for cmd in "--inspect $f --map --json" "--file $f" \
                   "--file $f --output $f.qcow2"; do
            # shellcheck disable=SC2086
            ASAN_OPTIONS=detect_leaks=0 \
                strace -f -e trace=open,openat,openat2 -o "$f.strace" \
                virt-qed-migrate $cmd >/dev/null 2>&1 || :
            # O_PATH resolves a name without opening the file.
            if grep -F "\"$never\"" "$f.strace" | grep -v O_PATH; then
                fail "$f: $never was opened by $cmd"
            fi
            grep -F "$f" "$f.strace" >/dev/null   # strace saw our opens
        done
    fi
}

set_backing shadow.qed /etc/shadow
refused shadow.qed "backing file '/etc/shadow' of 'shadow.qed' is refused: .* under /etc" /etc/shadow
set_backing passwd.qed /etc/passwd 5
refused passwd.qed "refused: .* under /etc" /etc/passwd
set_backing rel.qed ../../../../../../../../../../../../etc/passwd
refused rel.qed "refused: '/etc/passwd' is under /etc" ../../../../../../../../../../../../etc/passwd
set_backing procmem.qed /proc/self/mem
refused procmem.qed "refused: .* under /proc"
set_backing devzero.qed /dev/zero 5
refused devzero.qed "refused: '/dev/zero' is under /dev" /dev/zero
set_backing sys.qed /sys/kernel/notes
refused sys.qed "refused"
set_backing boot.qed /boot/../root/.bashrc
refused boot.qed "refused: .* under /root"
ln -s /etc/shadow link-to-shadow
set_backing link.qed link-to-shadow
refused link.qed "refused: '/etc/shadow' is under /etc" /etc/shadow
mkdir adir
set_backing dir.qed adir
refused dir.qed "refused: .* is not a regular file"
mkfifo fifo
set_backing fifo.qed fifo 5
refused fifo.qed "refused: .* is not a regular file" "$d/fifo"
set_backing missing.qed does-not-exist
refused missing.qed "backing file 'does-not-exist' of 'missing.qed' cannot be resolved"
set_backing json.qed 'json:{"driver":"file","filename":"/etc/shadow"}'
refused json.qed "not a local file name"
set_backing nbd.qed 'nbd://localhost:10809/export'
refused nbd.qed "not a local file name"

# Loops: itself, and a two-image cycle.
set_backing self.qed self.qed
refused self.qed "has a loop"
set_backing loop-a.qed loop-b.qed
set_backing loop-b.qed loop-a.qed
refused loop-a.qed "has a loop"

# A chain deeper than 16 is refused; 16 is fine.
qemu-img create -f qed c0.qed 1M >/dev/null
for i in $(seq 1 17); do
    qemu-img create -f qed -b "c$((i - 1)).qed" -F qed "c$i.qed" 1M >/dev/null
done
virt-qed-migrate --inspect c16.qed --map --json > c16.json
qemu-img map --output=json c16.qed | diff -u - c16.json
refused c17.qed "deeper than 16"

# Trusted directories: with --trust-dir the backing file must be in the
# image's own directory or a trusted one.
mkdir -p top other trusted
qemu-img create -f qed other/b.qed 1M >/dev/null
qemu-img create -f qed -b ../other/b.qed -F qed top/t.qed 1M >/dev/null
virt-qed-migrate --inspect top/t.qed
virt-qed-migrate --inspect top/t.qed --trust-dir other
must_fail 1 virt-qed-migrate --inspect top/t.qed --trust-dir trusted \
    2> trust.err
grep "outside the image's directory and the trusted directories" trust.err
cp other/b.qed top/b.qed
qemu-img create -f qed -b b.qed -F qed top/t2.qed 1M >/dev/null
virt-qed-migrate --inspect top/t2.qed --trust-dir trusted
