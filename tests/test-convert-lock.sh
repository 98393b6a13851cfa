#!/usr/bin/env bash
# While a QEMU process (qemu-io read-write, read-only, force-share, or
# qemu-system-x86_64) holds the image, conversion refuses with "in use"
# and the file is unchanged.  Once it is gone, conversion works.  While
# we convert, QEMU cannot open the image.
source "$abs_top_builddir/tests/functions.sh"
requires_fault_injection
source "$abs_top_srcdir/tests/convert-lib.sh"
set -e
set -x

convert_setup

mkqed img.qed 16M -- 'write -P 0x21 0 1M' 'write -z 2M 64k'
cp img.qed pristine.qed
sha=$(sha256sum < img.qed)

holder=
stop_holder ()
{
    if [ -n "$holder" ]; then
        exec 3>&- || :
        kill "$holder" 2>/dev/null || :
        wait "$holder" 2>/dev/null || :
        holder=
    fi
}
cleanup_fn stop_holder

# start_holder CMD...: run CMD with its stdin on a FIFO we keep open, and
# wait until it holds QEMU's locks on the image.
start_holder ()
{
    rm -f fifo
    mkfifo fifo
    "$@" < fifo > holder.out 2>&1 &
    holder=$!
    exec 3> fifo
    # Poll /proc/locks for an OFD lock on the image's inode: polling with
    # the tool itself would take the locks for a moment, and QEMU starting
    # in that moment would fail to get them.
    local ino
    ino=$(stat -c %i img.qed)
    for i in $(seq 1 100); do
        kill -0 "$holder" 2>/dev/null || break
        if grep -E "OFDLCK .*:$ino " /proc/locks | grep -q .; then
            return 0
        fi
        sleep 0.1
    done
    cat holder.out >&2
    fail "the QEMU process did not lock the image"
}

try_all ()
{
    local rc=0
    virt-qed-migrate --file img.qed 2> err || rc=$?
    test "$rc" = 1
    cat err
    grep -q "'img.qed' is in use by another process (QEMU lock held)" err
    test "$(wc -l < err)" = 1
    rc=0
    virt-qed-migrate --file img.qed --output out.qcow2 2> err || rc=$?
    test "$rc" = 1
    grep -q "in use" err
    test ! -e out.qcow2
    rc=0
    virt-qed-migrate --file img.qed --dry-run 2> err || rc=$?
    test "$rc" = 1
    grep -q "in use" err
    test "$(sha256sum < img.qed)" = "$sha"
}

for mode in rw ro force-share; do
    case $mode in
        rw) start_holder qemu-io -f qed img.qed ;;
        ro) start_holder qemu-io -r -f qed img.qed ;;
        force-share) start_holder qemu-io -r -U -f qed img.qed ;;
    esac
    try_all
    stop_holder
done

if qemu-system-x86_64 -machine none -nodefaults -display none -S \
        -monitor none -serial none -version >/dev/null 2>&1; then
    start_holder qemu-system-x86_64 -machine none -nodefaults -display none \
        -monitor stdio -serial none \
        -drive file=img.qed,format=qed,if=none,id=d0
    try_all
    stop_holder
else
    echo "qemu-system-x86_64 not usable: that part is skipped"
fi

# While we convert, no QEMU can open the image (read-write or read-only):
# the converter is stopped at its first and at its last write or sync
# (VQM_FAULT=any:N:stop), QEMU tries, then the conversion goes on.
for mode in in-place copy; do
    args=(--file conv.qed)
    [ "$mode" = copy ] && args+=(--output conv.qcow2)
    cp pristine.qed conv.qed
    rm -f trace conv.qcow2
    VQM_FAULT_TRACE=$d/trace virt-qed-migrate -q "${args[@]}"
    nany=$(wc -l < trace)
    test "$nany" -ge 3
    for n in 1 "$nany"; do
        cp pristine.qed conv.qed
        rm -f conv.qcow2
        VQM_FAULT=any:$n:stop virt-qed-migrate -q "${args[@]}" &
        conv=$!
        stopped "$conv"
        for ro in "" -r; do
            rc=0
            # shellcheck disable=SC2086
            qemu-io $ro -f qed -c 'read 0 4k' conv.qed > qout 2>&1 || rc=$?
            cat qout
            test "$rc" != 0 || fail "qemu-io $ro opened conv.qed during the conversion"
            grep -q 'lock' qout
        done
        kill -CONT "$conv"
        rc=0
        wait "$conv" || rc=$?
        test "$rc" = 0 || fail "$mode any:$n:stop: exit $rc"
        if [ "$mode" = copy ]; then
            judge conv.qcow2 pristine.qed
        else
            judge conv.qed pristine.qed
        fi
    done
done

# Nobody holds it now.
virt-qed-migrate --file img.qed
judge img.qed pristine.qed
