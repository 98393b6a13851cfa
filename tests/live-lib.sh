# virt-qed-migrate tests: helpers for the live, snapshot and fleet tests.
# Source after tests/functions.sh, tests/libvirtd.sh and tests/virt-lib.sh
# (which has run_vqm).

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
