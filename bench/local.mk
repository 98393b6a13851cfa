# bench: benchmark script (not part of make check).
EXTRA_DIST += bench/run.sh bench/host.sh bench/README.md
