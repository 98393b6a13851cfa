# virt-qed-migrate tests: a private libvirt session daemon.
#
# Source this after tests/functions.sh, then:
#
#   start_private_libvirtd [ETC_LIBVIRT_DIR]
#
# starts libvirtd as an unprivileged uid (default 65534, $VQM_TEST_LVUID)
# with private XDG directories under a fresh directory, waits for its
# socket and sets:
#
#   LVROOT                 the daemon's directory (pool dirs go under it)
#   LVUID                  the uid the daemon (and QEMU) run as
#   LVPID                  the daemon's pid
#   VQM_TEST_LIBVIRT_URI   qemu+unix:///session?socket=... (exported)
#   LIBVIRT_DEFAULT_URI    the same (exported), so virsh and the tool
#                          without -c talk to the private daemon
#
# Cleanup is registered with cleanup_fn: the daemon is killed and reaped,
# and any virtlogd/virtlockd it spawned (found by parent pid) is killed.
# The host's libvirt is never touched.
#
# ETC_LIBVIRT_DIR (optional, needs root and unshare): a directory that is
# bind-mounted over /etc/libvirt in a private mount namespace in which the
# daemon runs, for example a copy of /etc/libvirt holding hooks/qemu and
# hooks/qemu.d/.  Clients outside the namespace reach the daemon through
# its socket as usual.
#
# Helpers:
#   lv_run CMD...      run CMD as the daemon's uid (to create images the
#                      daemon and QEMU must open)
#   lv_virsh ARGS...   virsh -c "$VQM_TEST_LIBVIRT_URI" ARGS...
#   lv_pool NAME       define and start a dir pool NAME under $LVROOT
#                      (template xml/pool-dir.xml.in), prints its directory
#   lv_domain_xml NAME DISKS...  print a minimal TCG domain (64 MiB, no
#                      OS; template xml/domain-tcg.xml.in); each DISK is a
#                      complete <disk> element.  Its
#                      VNC display is a unix socket (a secret to keep:
#                      passwd='s3cret') so that parallel tests never
#                      compete for TCP ports

start_private_libvirtd ()
{
    local etc=${1:-} i
    requires libvirtd --version
    requires virsh --version
    requires setpriv --version
    if [ "$(id -u)" != 0 ]; then
        echo "$0: test skipped: the private libvirtd needs root (setpriv)"
        exit 77
    fi
    LVUID=${VQM_TEST_LVUID:-65534}
    # Every parent directory must be traversable by $LVUID.
    LVROOT=$(mktemp -d /tmp/vqm-libvirtd.XXXXXX)
    chmod 755 "$LVROOT"
    mkdir -p "$LVROOT"/home "$LVROOT"/config/libvirt "$LVROOT"/cache \
        "$LVROOT"/run "$LVROOT"/data
    chmod 700 "$LVROOT"/run
    echo 'stdio_handler = "file"' > "$LVROOT"/config/libvirt/qemu.conf
    echo "log_outputs=\"3:file:$LVROOT/libvirtd.log\"" \
        > "$LVROOT"/config/libvirt/libvirtd.conf
    chown -R "$LVUID:$LVUID" "$LVROOT"

    local -a env=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin
                  HOME="$LVROOT"/home XDG_CONFIG_HOME="$LVROOT"/config
                  XDG_CACHE_HOME="$LVROOT"/cache XDG_RUNTIME_DIR="$LVROOT"/run
                  XDG_DATA_HOME="$LVROOT"/data)
    local -a priv=(setpriv --reuid="$LVUID" --regid="$LVUID" --clear-groups)
    if [ -n "$etc" ]; then
        requires unshare --version
        unshare --mount --propagation private sh -c \
            'mount --bind "$1" /etc/libvirt && shift && exec "$@"' \
            sh "$etc" "${priv[@]}" "${env[@]}" libvirtd \
            >"$LVROOT"/daemon.out 2>&1 &
    else
        "${priv[@]}" "${env[@]}" libvirtd >"$LVROOT"/daemon.out 2>&1 &
    fi
    LVPID=$!
    cleanup_fn stop_private_libvirtd
    for (( i = 0; i < 300; i++ )); do
        [ -S "$LVROOT"/run/libvirt/libvirt-sock ] && break
        if ! kill -0 "$LVPID" 2>/dev/null; then
            cat "$LVROOT"/daemon.out >&2
            fail "private libvirtd exited"
        fi
        sleep 0.1
    done
    [ -S "$LVROOT"/run/libvirt/libvirt-sock ] ||
        fail "private libvirtd did not create its socket"
    VQM_TEST_LIBVIRT_URI="qemu+unix:///session?socket=$LVROOT/run/libvirt/libvirt-sock"
    LIBVIRT_DEFAULT_URI=$VQM_TEST_LIBVIRT_URI
    export VQM_TEST_LIBVIRT_URI LIBVIRT_DEFAULT_URI
    # The first call can take a moment while the drivers initialise.
    for (( i = 0; i < 100; i++ )); do
        virsh -q uri >/dev/null 2>&1 && break
        sleep 0.1
    done
}

# Kill a process and the children it spawned (virtlogd, virtlockd, QEMU),
# by pid only.
_lv_kill_tree ()
{
    local pid=$1 c
    for c in $(pgrep -P "$pid" 2>/dev/null); do
        _lv_kill_tree "$c"
    done
    kill "$pid" 2>/dev/null
}

stop_private_libvirtd ()
{
    local helpers p
    [ -n "${LVPID:-}" ] || return 0
    # virtlogd/virtlockd re-parent to init: find them by their socket
    # directory, which is private to this daemon.
    helpers=$(pgrep -u "$LVUID" -f "virtlo[gc]kd|virtlogd" 2>/dev/null |
        while read -r p; do
            if tr '\0' '\n' 2>/dev/null < /proc/"$p"/environ |
                grep -qx "XDG_RUNTIME_DIR=$LVROOT/run"; then
                echo "$p"
            fi
        done)
    # Running domains first, so that QEMU does not outlive the daemon.
    for p in $(pgrep -u "$LVUID" -f qemu-system 2>/dev/null); do
        if tr '\0' '\n' 2>/dev/null < /proc/"$p"/environ |
            grep -q "$LVROOT"; then
            kill "$p" 2>/dev/null
        fi
    done
    _lv_kill_tree "$LVPID"
    wait "$LVPID" 2>/dev/null
    for p in $helpers; do
        kill "$p" 2>/dev/null
    done
    LVPID=
    if [ -z "${VQM_TEST_KEEP:-}" ]; then
        rm -rf "$LVROOT"
    else
        echo "kept $LVROOT" >&2
    fi
}

lv_run ()
{
    setpriv --reuid="$LVUID" --regid="$LVUID" --clear-groups "$@"
}

lv_virsh ()
{
    virsh -q -c "$VQM_TEST_LIBVIRT_URI" "$@"
}

# Fill a template from $abs_top_srcdir/xml: _lv_fill FILE KEY=VALUE...
_lv_fill ()
{
    local t kv
    t=$(< "$abs_top_srcdir/xml/$1")
    shift
    shopt -u patsub_replacement 2>/dev/null || true
    for kv in "$@"; do
        t=${t//@${kv%%=*}@/${kv#*=}}
    done
    printf '%s\n' "$t"
}

lv_pool ()
{
    local name=$1 dir="$LVROOT/pools/$1" f
    mkdir -p "$dir"
    chown "$LVUID:$LVUID" "$LVROOT/pools" "$dir"
    f="$LVROOT/pool-$name.xml"
    _lv_fill pool-dir.xml.in NAME="$name" PATH="$dir" > "$f"
    lv_virsh pool-define "$f" >/dev/null
    lv_virsh pool-start "$name" >/dev/null
    echo "$dir"
}

lv_domain_xml ()
{
    local name=$1 d disks=
    shift
    for d in "$@"; do
        disks+="    $d"$'\n'
    done
    _lv_fill domain-tcg.xml.in NAME="$name" DISKS="${disks%$'\n'}" \
        VNCSOCKET="$LVROOT/run/$name.vnc"
}
