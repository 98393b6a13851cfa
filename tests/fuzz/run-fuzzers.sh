#!/usr/bin/env bash
# run-fuzzers.sh SECONDS [TARGET...]: build every tests/fuzz/fuzz-*.c
# (or only the TARGETs named, e.g. fuzz-domxml) with libFuzzer and
# ASan/UBSan, make a seed corpus (tests/fuzz/make-seeds*.sh), and run each
# target for SECONDS / (number of targets) seconds.  Exits non-zero if
# any target crashes (the crashing input is kept and its path printed).
#
# Run from anywhere; needs no configured tree.  Each fuzz-*.c names what
# it needs in comment lines at its top:
#   /* fuzz-sources: src/qed/*.c src/common/*.c */   (globs, from the top)
#   /* fuzz-libs: -lz */                             (optional: link
#                                                     flags, e.g. -Wl,--wrap)
#   /* fuzz-pkgs: libxml-2.0 */                      (optional: pkg-config)
#   /* fuzz-seeds: qed */                            (optional: qed, qcow2,
#                                                     probe, domxml, journal,
#                                                     hook)
#   /* fuzz-dict: tests/fuzz/xml.dict */             (optional, from the top)
#   /* fuzz-args: -close_fd_mask=3 */                (optional libFuzzer flags)
set -e

seconds=${1:-60}
[ $# -eq 0 ] || shift
top=$(cd "$(dirname "$0")/../.." && pwd)
cc=${CLANG:-clang}

if ! command -v "$cc" >/dev/null; then
    echo "run-fuzzers: $cc not found" >&2
    exit 1
fi
if ! command -v qemu-img >/dev/null; then
    echo "run-fuzzers: qemu-img not found" >&2
    exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vqm-fuzz.XXXXXX")
keep=
cleanup () { if [ -z "$keep" ]; then rm -rf "$tmp"; fi; }
trap cleanup EXIT

# A minimal config.h: what the libraries test for.
{
    echo '#define _GNU_SOURCE 1'
    echo '#define PACKAGE_VERSION "fuzz"'
    echo '#define VQM_STATEDIR "/nonexistent"'
    echo '#define PACKAGE "virt-qed-migrate"'
    echo '#define PACKAGE_NAME "virt-qed-migrate"'
    if [ "$(uname -s)" = Linux ]; then
        echo '#define HAVE_FALLOCATE 1'
        echo '#define HAVE_COPY_FILE_RANGE 1'
        echo '#define HAVE_POSIX_FADVISE 1'
    fi
    if echo '#include <zlib.h>' | "$cc" -E -x c - >/dev/null 2>&1; then
        echo '#define HAVE_ZLIB 1'
    fi
    if echo '#include <zstd.h>' | "$cc" -E -x c - >/dev/null 2>&1; then
        echo '#define HAVE_ZSTD 1'
    fi
} > "$tmp/config.h"
# The generated installation paths (hooks/local.mk).
mkdir -p "$tmp/hooks"
{
    echo '#define VQM_HOOK_CONF "/nonexistent/hook.conf"'
    echo '#define VQM_PROGRAM "/nonexistent/virt-qed-migrate"'
} > "$tmp/hooks/hook-paths.h"

for s in "$top"/tests/fuzz/make-seeds*.sh; do
    "$s" "$tmp/seeds" >/dev/null
done

cd "$top"
if [ $# -gt 0 ]; then
    targets=()
    for t in "$@"; do targets+=("tests/fuzz/${t%.c}.c"); done
else
    targets=(tests/fuzz/fuzz-*.c)
fi
n=${#targets[@]}
per=$(( seconds / n ))
[ "$per" -ge 1 ] || per=1
incs=(-I"$tmp" -I"$top/src")
for d in src/*/; do incs+=(-I"$top/${d%/}"); done

status=0
for t in "${targets[@]}"; do
    name=$(basename "$t" .c)
    # shellcheck disable=SC2207
    srcs=($(sed -n 's|^/\* fuzz-sources: \(.*\) \*/$|\1|p' "$t"))
    # shellcheck disable=SC2207
    libs=($(sed -n 's|^/\* fuzz-libs: \(.*\) \*/$|\1|p' "$t"))
    seeds=$(sed -n 's|^/\* fuzz-seeds: \(.*\) \*/$|\1|p' "$t")
    pkgs=$(sed -n 's|^/\* fuzz-pkgs: \(.*\) \*/$|\1|p' "$t")
    dict=$(sed -n 's|^/\* fuzz-dict: \(.*\) \*/$|\1|p' "$t")
    # shellcheck disable=SC2207
    args=($(sed -n 's|^/\* fuzz-args: \(.*\) \*/$|\1|p' "$t"))
    pkgflags=()
    if [ -n "$pkgs" ]; then
        # shellcheck disable=SC2207,SC2086
        if ! pkgflags=($(pkg-config --cflags --libs $pkgs)); then
            echo "run-fuzzers: $t: pkg-config $pkgs failed" >&2
            status=1
            continue
        fi
    fi
    if [ -n "$dict" ]; then args+=(-dict="$top/$dict"); fi
    if [ ${#srcs[@]} -eq 0 ]; then
        echo "run-fuzzers: $t has no fuzz-sources line" >&2
        status=1
        continue
    fi
    echo "run-fuzzers: building $name (${srcs[*]})"
    if ! "$cc" -g -O1 -std=gnu11 -Wno-comment \
            -fsanitize=fuzzer,address,undefined \
            -fno-sanitize-recover=all "${incs[@]}" -include "$tmp/config.h" \
            -o "$tmp/$name" "$t" "${srcs[@]}" "${libs[@]}" \
            "${pkgflags[@]}"; then
        echo "run-fuzzers: $name: build failed" >&2
        status=1
        continue
    fi
    mkdir -p "$tmp/corpus-$name"
    dirs=()
    if [ -n "$seeds" ]; then
        for s in $seeds; do dirs+=("$tmp/seeds/$s"); done
    else
        dirs+=("$tmp/seeds/qed" "$tmp/seeds/qcow2")
    fi
    echo "run-fuzzers: running $name for $per s"
    if ! ( cd "$tmp" &&
           "./$name" -max_total_time="$per" -timeout=20 -rss_limit_mb=2048 \
               -max_len=1048576 -print_final_stats=1 \
               -artifact_prefix="$tmp/$name-" "${args[@]}" \
               "$tmp/corpus-$name" "${dirs[@]}" ) > "$tmp/$name.log" 2>&1
    then
        tail -60 "$tmp/$name.log" >&2
        echo "run-fuzzers: $name FAILED; inputs kept in $tmp" >&2
        keep=yes
        status=1
    else
        grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units)' \
            "$tmp/$name.log" || :
        echo "run-fuzzers: $name passed"
    fi
done
exit $status
