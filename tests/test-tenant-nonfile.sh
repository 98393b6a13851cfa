#!/usr/bin/env bash
# Files that are not images: a FIFO, a socket, a character device (made
# with mknod, and /dev/null through root's symlink), a directory, given
# to --inspect, --file and as a backing file.  Each gets one clear error
# line naming it and its type, exit 1, no hang (timeout 20), and
# (checked with strace) is only ever resolved with O_PATH, never opened.
source "$abs_top_builddir/tests/functions.sh"
set -e
set -x
source "$abs_top_srcdir/tests/tenant-lib.sh"
requires python3 --version
tenant_setup

have_strace=no
if strace -o /dev/null true 2>/dev/null; then have_strace=yes; fi

as_tenant mkfifo t/fifo.qed
python3 -c \
    'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' \
    t/sock.qed
chown -h "$TUID:$TGID" t/sock.qed
mknod t/null.qed c 1 3
ln -s /dev/null t/root-link-null.qed
as_tenant mkdir t/dir.qed
test -p t/fifo.qed && test -S t/sock.qed && test -c t/null.qed

n=0
# notfile FILE TYPE: every mode refuses FILE as a TYPE.
notfile ()
{
    local f=$1 type=$2 rc args
    for args in "--inspect $f" "--inspect $f --map --json" "--file $f" \
                "--file $f --copy" "--file $f --output $d/o.qcow2" \
                "--file $f --dry-run"; do
        n=$((n + 1))
        rc=0
        # shellcheck disable=SC2086
        timeout 20 virt-qed-migrate $args > "out.$n" 2> "err.$n" || rc=$?
        cat "err.$n"
        test "$rc" != 124 || fail "$args: hung"
        test "$rc" = 1 || fail "$args: exit $rc, expected 1"
        test "$(wc -l < "err.$n")" = 1 || fail "$args: not one error line"
        grep -F "'$f' is not a regular file or block device (it is a $type)" \
            "err.$n" || fail "$args: no clear message"
        test ! -e "$d/o.qcow2" || fail "$args: output left behind"
    done
    if [ "$have_strace" = yes ]; then
        n=$((n + 1))
        ASAN_OPTIONS=detect_leaks=0 timeout 20 \
            strace -f -e trace=open,openat,openat2 -o "trace.$n" \
            virt-qed-migrate --file "$f" --copy 2>/dev/null || :
        grep -F "${f##*/}" "trace.$n" || fail "strace saw no lookup of $f"
        if grep -F "${f##*/}" "trace.$n" | grep -v O_PATH; then
            fail "$f was opened"
        fi
        if grep -F '/proc/self/fd/' "trace.$n"; then
            fail "$f: a descriptor was reopened for I/O"
        fi
    fi
}

notfile t/fifo.qed FIFO
notfile t/sock.qed socket
notfile t/null.qed 'character device'
notfile t/root-link-null.qed 'character device'
notfile t/dir.qed directory

# The same files as backing files of a tenant's image.
for b in fifo sock null dir; do
    # -u: qemu-img itself would block opening the FIFO.
    timeout 20 qemu-img create -f qed -b "$b.qed" -F raw -u \
        "t/over-$b.qed" 1M >/dev/null
    chown "$TUID:$TGID" "t/over-$b.qed"
done
for b in fifo:FIFO sock:socket null:'character device' dir:directory; do
    img=t/over-${b%%:*}.qed
    for args in "--inspect $img --map" "--file $img --copy --flatten" \
                "--file $img"; do
        n=$((n + 1))
        refused_once "$n" "$args" "backing file '${b%%:*}.qed' of '$img' is refused: '.*' is not a regular file \\(it is a ${b#*:}\\)"
    done
done
test -z "$(find t -name '*.qcow2')" || fail "output left behind"
