# Helpers for tests/test-tenant-*.sh (sourced after functions.sh): the
# tool runs as root against images and directories an unprivileged
# tenant (nobody) owns, next to a root-only secret.
#
#   tenant_setup     scratch directory $d (cwd), $d/vault (root, 0755)
#                    holding vault/secret (root, 0600, 128 KiB of lines
#                    carrying the random $marker), $d/t owned by the tenant
#   as_tenant CMD    run CMD as the tenant
#   no_marker        the marker is in no file under $d but vault/

if [ "$(id -u)" != 0 ]; then
    echo "$0: test skipped: plays a tenant against root (needs root)"
    exit 77
fi
requires setpriv --version
requires qemu-img --version
requires timeout --version
TUID=$(id -u nobody)
TGID=$(id -g nobody)

as_tenant ()
{
    setpriv --reuid="$TUID" --regid="$TGID" --clear-groups "$@"
}

tenant_setup ()
{
    local i
    d=$(vqm_tmpdir)
    chmod 755 "$d"
    cd "$d"
    marker="VQM-SECRET-$RANDOM$RANDOM$RANDOM-$$"
    mkdir vault t
    for (( i = 0; i < 4096; i++ )); do
        printf '%s %026d\n' "$marker" "$i"
    done > vault/secret
    chmod 600 vault/secret
    chown "$TUID:$TGID" t
}

no_marker ()
{
    local hits
    hits=$(grep -r -l -F --exclude-dir=vault -e "$marker" "$d" || :)
    if [ -n "$hits" ]; then
        fail "the secret's bytes leaked into: $hits"
    fi
}

# refused_once N ARGS REGEX: virt-qed-migrate ARGS (word-split) exits 1
# within 20 s with exactly one error line matching REGEX; its stdout and
# stderr stay in out.N and err.N.
refused_once ()
{
    local n=$1 args=$2 re=$3 rc=0
    # shellcheck disable=SC2086
    timeout 20 virt-qed-migrate $args > "out.$n" 2> "err.$n" || rc=$?
    cat "err.$n"
    test "$rc" = 1 || fail "$args: exit $rc, expected 1"
    test "$(wc -l < "err.$n")" = 1 || fail "$args: not one error line"
    grep -E -- "$re" "err.$n" || fail "$args: expected /$re/"
}
