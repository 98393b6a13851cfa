#!/usr/bin/env bash
# Packaging check (a CI step, not part of make check: it builds the whole
# package once more).  Builds the Debian package from a clean copy of the
# tracked files, with its own test subset (debian/rules: a failing test
# fails the build), and runs lintian on the result; runs rpmlint on the
# RPM spec.  Any lintian or rpmlint error or warning fails.
#
#   bash tests/package-lint.sh        (needs dpkg-dev, debhelper, lintian,
#                                      rpmlint and rpm installed)
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
for prog in dpkg-buildpackage dh lintian rpmlint rpm; do
    if ! command -v "$prog" >/dev/null; then
        echo "package-lint: '$prog' is not installed" >&2
        exit 1
    fi
done

tmp=$(mktemp -d /tmp/vqm-package.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/src"
# The tracked files only: no build directory, no local artifacts.
git -C "$top" ls-files -z | (cd "$top" && xargs -0 cp --parents -t "$tmp/src")

echo "package-lint: dpkg-buildpackage (log: $tmp/build.log)"
if ! (cd "$tmp/src" && dpkg-buildpackage -us -uc -b -j2) > "$tmp/build.log" 2>&1
then
    tail -n 40 "$tmp/build.log" >&2
    echo "package-lint: the Debian package does not build" >&2
    exit 1
fi

rc=0
echo "package-lint: lintian"
lintian --fail-on error,warning "$tmp"/*.changes || rc=1
echo "package-lint: rpmlint"
rpmlint -r "$top/contrib/virt-qed-migrate.rpmlintrc" \
    "$top/contrib/virt-qed-migrate.spec" || rc=1
if [ $rc = 0 ]; then
    echo "package-lint: lintian and rpmlint are clean"
fi
exit $rc
