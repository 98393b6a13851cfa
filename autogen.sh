#!/bin/sh
# Regenerate the build system: ./autogen.sh [configure arguments]
set -e
srcdir=$(dirname "$0")
cd "$srcdir"
mkdir -p m4 build-aux
autoreconf -i -f
cd - >/dev/null
if [ -z "$NOCONFIGURE" ]; then
    "$srcdir"/configure "$@"
fi
