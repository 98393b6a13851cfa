# Helpers shared by tests/test-convert-*.sh (sourced after functions.sh).

# qcheck_clean IMG: `qemu-img check` says no errors and no leaks (rc 0).
qcheck_clean ()
{
    local out rc=0
    out=$(qemu-img check "$1" 2>&1) || rc=$?
    if [ "$rc" != 0 ]; then
        echo "$out" >&2
        fail "qemu-img check $1 exited $rc"
    fi
}

# info_field IMG KEY: a top-level field of `qemu-img info --output=json`.
info_field ()
{
    qemu-img info --output=json "$1" | jq -r ".\"$2\" // \"\""
}

# judge RESULT PRISTINE [BACKING_NAME BACKING_FORMAT]: RESULT is a clean
# qcow2 with the guest data of PRISTINE and the given backing file (none
# when omitted); QEMU can then write to it and it stays clean.
judge ()
{
    local img=$1 pristine=$2 bname=${3:-} bfmt=${4:-} out
    qcheck_clean "$img"
    qemu-img compare "$pristine" "$img" ||
        fail "$img differs from $pristine"
    test "$(info_field "$img" format)" = qcow2 || fail "$img is not qcow2"
    test "$(info_field "$img" backing-filename)" = "$bname" ||
        fail "$img: backing file is not '$bname'"
    test "$(info_field "$img" backing-filename-format)" = "$bfmt" ||
        fail "$img: backing format is not '$bfmt'"
    qemu-io -c 'write -P 0x5a 0 64k' -c 'write -P 0x5b 200k 8k' "$img" \
        >/dev/null
    # qemu-io prints "read N/N" even when the pattern differs: judge by
    # its exit status and the absence of a verification failure.
    out=$(qemu-io -c 'read -P 0x5a 0 64k' -c 'read -P 0x5b 200k 8k' "$img") ||
        fail "$img: written data not read back"
    case "$out" in
        *'verification failed'*) fail "$img: written data not read back" ;;
    esac
    qcheck_clean "$img"
}

# qio_ok IMG QEMU-IO-COMMAND...: every command succeeds (a failed
# "read -P" still prints "read N/N": judge by exit status and message).
qio_ok ()
{
    local img=$1 out args=()
    shift
    for c in "$@"; do args+=(-c "$c"); done
    out=$(qemu-io "${args[@]}" "$img") || fail "$img: qemu-io $* failed"
    case "$out" in
        *'verification failed'*) echo "$out" >&2
                                 fail "$img: qemu-io $*: data differs" ;;
    esac
}

# stopped PID: wait until PID is stopped (state T), e.g. by
# VQM_FAULT=OP:N:stop.
stopped ()
{
    local i
    for i in $(seq 1 100); do
        case $(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) in
            T|t) return 0 ;;
            "") fail "process $1 exited before stopping" ;;
        esac
        sleep 0.1
    done
    fail "process $1 did not stop"
}

# resumed_fails PID PATTERN: continue the stopped PID; it must exit 1
# with PATTERN in the file err (its standard error).
resumed_fails ()
{
    local rc=0
    kill -CONT "$1"
    wait "$1" || rc=$?
    cat err
    test "$rc" = 1 || fail "process $1 exited $rc, not 1"
    grep -q "$2" err || fail "'$2' not in its error"
}

# valid_qed_or_qcow2 IMG PRISTINE: after an interrupted conversion, IMG is
# a valid QED (leaks allowed) or a clean qcow2, with PRISTINE's data.
valid_qed_or_qcow2 ()
{
    local img=$1 pristine=$2 fmt rc=0
    fmt=$(info_field "$img" format)
    qemu-img check "$img" >/dev/null 2>&1 || rc=$?
    case "$fmt:$rc" in
        qcow2:0|qed:0|qed:3) ;;
        *) qemu-img check "$img" >&2 || :
           fail "$img: format $fmt, qemu-img check exited $rc" ;;
    esac
    qemu-img compare "$pristine" "$img" >/dev/null ||
        fail "$img ($fmt) differs from $pristine"
}

# mkqed NAME SIZE [qemu-img create -o options] -- [qemu-io commands]
mkqed ()
{
    local name=$1 size=$2 opts=() cmds=()
    shift 2
    while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    for c in "$@"; do cmds+=(-c "$c"); done
    qemu-img create -q -f qed "${opts[@]}" "$name" "$size"
    if [ ${#cmds[@]} -gt 0 ]; then
        qemu-io -f qed "${cmds[@]}" "$name" >/dev/null
    fi
}

# convert_setup: the tools every conversion test needs (the test is
# skipped, with the reason, when one is missing), then a scratch
# directory $d, removed at exit, as the current directory.
convert_setup ()
{
    requires qemu-img --version
    requires qemu-io --version
    requires jq --version
    d=$(vqm_tmpdir)
    cleanup_fn rm -rf "$d"
    cd "$d"
}
