#!/usr/bin/env bash
# The Ansible playbook in contrib/ansible, run by ansible-playbook against
# localhost (connection: local) with the private libvirtd standing in for
# several hypervisors (one pool each).  A fleet of two: dry-run reports
# for both, then both migrated one after the other, and one summary.  A
# fleet of three whose second host fails: the first is migrated, the
# third is not touched, and the summary says so.
source "$abs_top_builddir/tests/functions.sh"
requires_fault_injection
set -e
set -x

requires ansible-playbook --version
requires qemu-img --version
requires qemu-io --version
requires xmllint --version
source "$abs_top_srcdir/tests/libvirtd.sh"
source "$abs_top_srcdir/tests/virt-lib.sh"
source "$abs_top_srcdir/tests/live-lib.sh"

d=$(vqm_tmpdir)
start_private_libvirtd
for n in a b c f e; do
    p=$(lv_pool p$n)
    qed_image "$p/$n.qed" 16M
    cp --sparse=always "$p/$n.qed" "$d/$n.orig"
    lv_virsh pool-refresh p$n >/dev/null
    define_domain d$n "$(vol_disk p$n $n.qed qed vda)"
done
pool_dir () { echo "$LVROOT/pools/p$1"; }

export ANSIBLE_LOCAL_TEMP="$d/ansible-local" ANSIBLE_REMOTE_TEMP="$d/ansible-remote"
export ANSIBLE_HOME="$d/ansible-home" ANSIBLE_NOCOLOR=1
export ANSIBLE_RETRY_FILES_ENABLED=false ANSIBLE_LOCALHOST_WARNING=false
export ANSIBLE_INVENTORY_UNPARSED_WARNING=false ANSIBLE_CONFIG="$d/none.cfg"
mkdir -p "$d/remote"

# inventory FILE HOST:POOL[:FAULT]...: one host per pool, all local.
inventory ()
{
    local f=$1 h
    shift
    {
        echo "all:"
        echo "  children:"
        echo "    hypervisors:"
        echo "      vars:"
        echo "        ansible_connection: local"
        echo "        ansible_python_interpreter: $(command -v python3)"
        echo "      hosts:"
        for h in "$@"; do
            IFS=: read -r name pool fault <<< "$h"
            echo "        $name:"
            echo "          vqm_scope_args: [--pool, $pool]"
            echo "          vqm_state_dir: $d/state-$name"
            if [ -n "$fault" ]; then
                echo "          vqm_environment: {VQM_FAULT: \"$fault\"}"
            fi
        done
    } > "$f"
}

playbook ()   # INVENTORY REPORT_DIR
{
    ansible-playbook -i "$1" "$abs_top_srcdir/contrib/ansible/migrate-qed.yml" \
        -e vqm_hosts=hypervisors -e "vqm_uri=$VQM_TEST_LIBVIRT_URI" \
        -e "vqm_command=$(command -v virt-qed-migrate)" \
        -e "vqm_report_dir=$2" -e "vqm_remote_report_dir=$d/remote"
}

# 1. Two hosts, both migrated, one after the other.
inventory "$d/inv1.yml" h1:pa h2:pb
playbook "$d/inv1.yml" "$d/r1" > "$d/play1.out" 2>&1 || { cat "$d/play1.out"; false; }
cat "$d/play1.out"
for h in h1 h2; do
    validate_report "$d/r1/dry-run/$h.xml"
    validate_report "$d/r1/migrate/$h.xml"
    [ "$(xmllint --xpath 'string(/report/@dry-run)' "$d/r1/dry-run/$h.xml")" = yes ]
    [ "$(xmllint --xpath 'string(//image/@outcome)' "$d/r1/dry-run/$h.xml")" = planned ]
    [ "$(xmllint --xpath 'string(//image/@outcome)' "$d/r1/migrate/$h.xml")" = done ]
done
for n in a b; do
    [ "$(file_format "$(pool_dir $n)/$n.qcow2")" = qcow2 ]
    qemu-img compare -f qed -F qcow2 "$d/$n.orig" "$(pool_dir $n)/$n.qcow2"
    [ "$(disk_attr d$n vda source/@volume)" = $n.qcow2 ]
done
# Serial: h2 started after h1 ended.
[[ ! "$(xmllint --xpath 'string(/report/@start)' "$d/r1/migrate/h2.xml")" < \
     "$(xmllint --xpath 'string(/report/@end)' "$d/r1/migrate/h1.xml")" ]]
xmllint --noout --relaxng "$abs_top_srcdir/contrib/ansible/fleet-summary.rng" "$d/r1/summary.xml"
cat "$d/r1/summary.txt"
grep -q "^fleet: 2 host(s): 2 done, 0 incomplete, 0 failed, 0 not migrated; 2 image(s) converted" "$d/r1/summary.txt"

# 2. Three hosts, the second fails: the third is not touched.
inventory "$d/inv2.yml" h3:pc h4:pf:write:1:eio h5:pe
rc=0
playbook "$d/inv2.yml" "$d/r2" > "$d/play2.out" 2>&1 || rc=$?
cat "$d/play2.out"
[ $rc != 0 ]
grep -q "virt-qed-migrate failed on h4" "$d/play2.out"
[ "$(file_format "$(pool_dir c)/c.qcow2")" = qcow2 ]
cmp "$d/e.orig" "$(pool_dir e)/e.qed"
[ ! -e "$(pool_dir e)/e.qcow2" ]
[ "$(disk_attr de vda source/@volume)" = e.qed ]
[ ! -e "$d/r2/migrate/h5.xml" ]
validate_report "$d/r2/dry-run/h5.xml"       # the inventory saw it
xmllint --noout --relaxng "$abs_top_srcdir/contrib/ansible/fleet-summary.rng" "$d/r2/summary.xml"
cat "$d/r2/summary.txt"
grep -q "^h3: done (exit 0): 1 image(s) converted" "$d/r2/summary.txt"
grep -q "^h4: failed (exit 1)" "$d/r2/summary.txt"
grep -q "^h5: not migrated (dry run only)" "$d/r2/summary.txt"
grep -q "^fleet: 3 host(s): 1 done, 0 incomplete, 1 failed, 1 not migrated" "$d/r2/summary.txt"
