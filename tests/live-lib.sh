# virt-qed-migrate tests: helpers for the live, snapshot and fleet tests.
# Source after tests/functions.sh, tests/libvirtd.sh and tests/virt-lib.sh.

# start_dom DOMAIN: start it; VNC ports are shared with concurrent tests
# (another daemon's QEMU may take the port libvirt picked), so retry.
start_dom ()
{
    local i
    for i in 1 2 3 4 5; do
        lv_virsh start "$1" && return 0
        sleep 1
    done
    return 1
}

# vqm EXPECTED_STATUS OUTFILE ARGS...: run virt-qed-migrate, keep its
# stdout in OUTFILE, show it in the log, check the exit status.
vqm ()
{
    local want=$1 out=$2 rc=0
    shift 2
    virt-qed-migrate "$@" > "$out" || rc=$?
    cat "$out"
    if [ "$rc" != "$want" ]; then
        echo "$0: 'virt-qed-migrate $*' exited $rc, expected $want" >&2
        return 1
    fi
}
