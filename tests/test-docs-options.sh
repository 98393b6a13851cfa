#!/usr/bin/env bash
# Every option of 'virt-qed-migrate --help' is documented in the man page
# source, and the man page documents no option the program lacks.
source "$abs_top_builddir/tests/functions.sh"
set -e
set -x

d=$(vqm_tmpdir)
pod="$abs_top_srcdir/docs/virt-qed-migrate.pod"

virt-qed-migrate --help > "$d/help"
# Long options: --name, as written in the option list of --help.
grep -oE -- '(^|[ ,])--[a-z][a-z0-9-]*' "$d/help" | sed 's/^[ ,]//' |
    sort -u > "$d/help-long"
# Short options: "  -c, --connect".
sed -n 's/^  \(-[A-Za-z]\),.*/\1/p' "$d/help" | sort -u > "$d/help-short"
# In the POD: every =item B<-x> / B<--name>.
sed -n 's/^=item B<\(--[a-z][a-z0-9-]*\)>.*/\1/p' "$pod" | sort -u \
    > "$d/pod-long"
sed -n 's/^=item B<\(-[A-Za-z]\)>.*/\1/p' "$pod" | sort -u > "$d/pod-short"

cat "$d/help-long" "$d/help-short"
# The oracle is not empty: the program has dozens of options.
test "$(wc -l < "$d/help-long")" -ge 30
test "$(wc -l < "$d/help-short")" -ge 8

diff -u "$d/help-long" "$d/pod-long" ||
    fail "long options differ between --help (-) and $pod (+)"
diff -u "$d/help-short" "$d/pod-short" ||
    fail "short options differ between --help (-) and $pod (+)"

# Every option --help shows is accepted by the parser (no stale help).
while read -r opt; do
    rc=0
    virt-qed-migrate "$opt" > /dev/null 2> "$d/err" < /dev/null || rc=$?
    if grep -q "unrecognized option\|invalid option" "$d/err"; then
        fail "--help shows $opt but the program does not accept it"
    fi
done < "$d/help-long"

# The exit statuses the program defines are the ones the man page's
# EXIT STATUS section lists, no more, no fewer.
sed -n 's/^#define VQM_EXIT_[A-Z]* \([0-9]*\)$/\1/p' \
    "$abs_top_srcdir/src/cli/options.h" | sort -u > "$d/codes"
test "$(wc -l < "$d/codes")" -ge 4
sed -n '/^=head1 EXIT STATUS/,/^=head1 /s/^=item B<\([0-9]*\)>$/\1/p' "$pod" |
    sort -u > "$d/pod-codes"
diff -u "$d/codes" "$d/pod-codes" ||
    fail "exit statuses differ between options.h (-) and $pod (+)"
# The default state directory --help shows is the one FILES names (when
# the build keeps the standard default).
statedir=$(sed -n 's/.*--state-dir DIR .*(default \(.*\))$/\1/p' "$d/help")
test -n "$statedir"
if [ "$statedir" = /var/lib/virt-qed-migrate ]; then
    grep -q "^=item F<$statedir/>" "$pod"
fi
# The environment variables the program reads are documented.
for v in VQM_DEBUG LIBVIRT_DEFAULT_URI; do
    grep -q "^=item B<$v>" "$pod"
done
