#!/usr/bin/env bash
# virt-qed-migrate demo: bash tests/demo.sh BUILDDIR [runbook]
# (bash tests/quickstart.sh demo runs it after building).
#
# With 'runbook', it runs instead the commands whose output
# docs/runbook.md shows, on the same set-up plus a pool 'archive' with the
# domains olddb and oldmail, and prints them as pasted there.
#
# Starts a throwaway private libvirtd (an unprivileged session daemon,
# nothing of the host's libvirt is used or touched), creates a dir pool
# 'default' holding QED volumes made by qemu-img and qemu-io, defines the
# sample domains of tests/demo/, shows the plan, runs
#   virt-qed-migrate --pool default --progress
# (the README's command, with a progress bar) and shows the result.  The
# daemon and its files go away at the end (VQM_TEST_KEEP=1 keeps them).
#
# The commands are run exactly as printed, so the journal goes to the
# tool's default state directory (/var/lib/virt-qed-migrate unless
# configured otherwise), the one thing the demo writes outside its
# throwaway directory.  If that directory did not exist before, the demo
# removes it at the end; if it holds an unfinished journal (a real
# migration in progress on this host), the demo does not start.
set -eu

builddir=$(cd "${1:?usage: $0 BUILDDIR [runbook]}" && pwd)
mode=${2:-demo}
case $mode in
demo|runbook) ;;
*) echo "usage: $0 BUILDDIR [runbook]" >&2; exit 2 ;;
esac
top=$(cd "$(dirname "$0")/.." && pwd)
abs_top_builddir=$builddir
abs_top_srcdir=$top

if [ "$(id -u)" != 0 ]; then
    echo "demo: run as root (the private libvirtd runs as an unprivileged uid" \
         "started with setpriv)" >&2
    exit 1
fi
for t in qemu-img qemu-io virsh libvirtd qemu-system-x86_64; do
    command -v "$t" >/dev/null ||
        { echo "demo: $t is missing (bash tests/quickstart.sh deps)" >&2; exit 1; }
done

source "$builddir/tests/functions.sh"
source "$top/tests/libvirtd.sh"
set +x

# The default state directory, as built.
statedir=$("$builddir/virt-qed-migrate" --help |
               sed -n 's/.*--state-dir DIR .*(default \(.*\))$/\1/p')
if [ -z "$statedir" ]; then
    echo "demo: cannot find the default state directory in --help" >&2
    exit 1
fi
if [ -e "$statedir/journal" ]; then
    echo "demo: $statedir/journal exists: a migration on this host is" \
         "unfinished; finish it (or move the directory away) first" >&2
    exit 1
fi
if [ ! -e "$statedir" ] && [ -z "${VQM_TEST_KEEP:-}" ]; then
    cleanup_fn rm -rf "$(printf %q "$statedir")"
fi

# say TEXT: a heading.  run CMD...: print the command, then run it.
say () { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run ()
{
    printf '\033[36m$ %s\033[0m\n' "$*"
    "$@"
}
# Runbook mode: quiet set-up, then "$ CMD", its output (stderr too) and
# "[exit status N]", plain text.
if [ "$mode" = runbook ]; then
    say () { printf '\n## %s\n\n' "$*"; }
    run () { "$@"; }
fi
rb ()
{
    local rc=0
    printf '$ %s\n' "$*"
    "$@" 2>&1 || rc=$?
    printf '[exit status %s]\n\n' "$rc"
}

# virsh as root, talking to a daemon of another uid without polkit,
# prints "Authorization not available..." on every call: harmless noise.
virsh ()
{
    command virsh "$@" 2> >(grep -v '^Authorization not available' >&2)
}

# The commands of docs/runbook.md, in its order.
runbook ()
{
    local archive x
    archive=$(lv_pool archive)
    lv_run qemu-img create -q -f qed "$archive/old-db.qed" 512M
    lv_run qemu-io -f qed -c 'write -P 0x88 0 8M' -c 'write -P 0x99 500M 512k' \
        "$archive/old-db.qed" >/dev/null
    lv_run qemu-img create -q -f qed "$archive/old-mail.qed" 256M
    lv_run qemu-io -f qed -c 'write -P 0xaa 0 2M' -c 'write -z 64M 1M' \
        "$archive/old-mail.qed" >/dev/null
    lv_virsh pool-refresh archive >/dev/null
    for x in olddb oldmail; do
        sed "s|@ARCHIVEDIR@|$archive|g" "$top/tests/demo/demo-$x.xml" \
            > "$LVROOT/$x.xml"
        lv_virsh define "$LVROOT/$x.xml" >/dev/null
    done
    lv_virsh start web1 >/dev/null

    say "1. Inventory"
    rb virt-qed-migrate --all --dry-run
    say "4. Pool by pool"
    rb virt-qed-migrate --pool archive --copy --verify \
        --report "$LVROOT/archive.xml"
    rb ls -lsh "$archive"
    rb virt-qed-migrate --pool default --shutdown=10 --force-shutdown \
        --verify --report "$LVROOT/default.xml"
    say "5. Checking"
    rb virt-qed-migrate --all --dry-run
    rb virsh domblklist web1 --details
    rb virsh vol-list default --details
    rb qemu-img check "$pooldir/web1-root.qcow2"
    lv_virsh destroy web1 >/dev/null
    rb qemu-img check "$pooldir/web1-root.qcow2"
    rb qemu-img compare "$pristine/web1-root.qed" "$pooldir/web1-root.qcow2"
    rb qemu-img info "$pooldir/app1.qcow2"
    lv_virsh start web1 >/dev/null
    rb xmllint --xpath 'count(//image[@outcome="done"])' "$LVROOT/default.xml"
    echo
    say "6. Rollback"
    rb virt-qed-migrate --rollback oldmail
    rb virsh domblklist oldmail
    rb virt-qed-migrate --rollback web1
    say "8. Cleaning up the kept sources"
    rb virsh domblklist olddb
    rb virsh vol-delete old-db.qed --pool archive
    rb virsh vol-list archive --details
    lv_virsh destroy web1 >/dev/null
}

say "Starting a throwaway libvirtd"
start_private_libvirtd
echo "daemon pid $LVPID, files under $LVROOT"
echo "LIBVIRT_DEFAULT_URI=$LIBVIRT_DEFAULT_URI"
export LIBVIRT_DEFAULT_URI
PATH="$builddir:$PATH"

say "A pool 'default' with QED volumes"
pooldir=$(lv_pool default)
lv_run qemu-img create -q -f qed "$pooldir/web1-root.qed" 256M
lv_run qemu-io -f qed \
    -c 'write -P 0x11 0 4M' -c 'write -z 8M 4M' -c 'write -P 0x22 100M 2M' \
    -c 'write -P 0x33 255M 1M' "$pooldir/web1-root.qed" >/dev/null
lv_run qemu-img create -q -f qed "$pooldir/web1-data.qed" 1G
lv_run qemu-io -f qed -c 'write -P 0x44 0 8M' -c 'write -P 0x55 900M 3M' \
    "$pooldir/web1-data.qed" >/dev/null
lv_run qemu-img create -q -f raw "$pooldir/golden.img" 128M
lv_run qemu-io -f raw -c 'write -P 0x66 0 16M' "$pooldir/golden.img" >/dev/null
lv_run qemu-img create -q -f qed -b "$pooldir/golden.img" -F raw \
    "$pooldir/app1.qed"
lv_run qemu-io -f qed -c 'write -P 0x77 1M 2M' "$pooldir/app1.qed" >/dev/null
lv_run qemu-img create -q -f qcow2 "$pooldir/modern.qcow2" 64M
# Pristine copies, to prove afterwards that the guest data is unchanged.
pristine="$LVROOT/pristine"
mkdir -p "$pristine"
for f in web1-root.qed web1-data.qed app1.qed; do
    cp --sparse=always "$pooldir/$f" "$pristine/$f"
done
lv_virsh pool-refresh default >/dev/null
[ "$mode" = runbook ] || run virsh vol-list default --details

say "Sample domains (definitions in tests/demo/)"
for x in web1 app1 modern; do
    sed "s|@POOLDIR@|$pooldir|g" "$top/tests/demo/demo-$x.xml" \
        > "$LVROOT/$x.xml"
    lv_virsh define "$LVROOT/$x.xml" >/dev/null
done
if [ "$mode" = runbook ]; then
    runbook
    exit 0
fi
run virsh list --all
for x in web1 app1 modern; do
    run virsh domblklist "$x" --details
done

say "The plan"
rc=0
run virt-qed-migrate --pool default --dry-run || rc=$?
echo "(exit status $rc)"

say "The migration"
rc=0
run virt-qed-migrate --pool default --progress || rc=$?
echo "(exit status $rc; journal in $statedir)"

say "The result"
run virsh vol-list default --details
for x in web1 app1 modern; do
    run virsh domblklist "$x" --details
done
run virsh dumpxml web1 --xpath '//disk' 2>/dev/null ||
    virsh dumpxml web1 | sed -n '/<disk/,/<\/disk>/p'
for x in web1-root web1-data app1; do
    f=$pooldir/$x.qcow2
    [ -e "$f" ] || f=$pooldir/$x.qed
    run qemu-img info "$f"
    run qemu-img check "$f"
    run qemu-img compare "$pristine/$x.qed" "$f"
done

say "A migrated domain starts"
if run virsh start web1; then
    run virsh domblklist web1
    run virsh destroy web1
else
    rc=1
fi

say "Stopping the daemon"
trap - ERR
if [ "$rc" = 0 ]; then
    echo "demo: done, every QED disk of pool 'default' is qcow2 now"
else
    echo "demo: virt-qed-migrate did not finish the job (exit status $rc)" >&2
fi
exit "$rc"
