#!/usr/bin/env bash
# Builds the C++ core with ASan + UBSan, runs every native unit test, then each fuzz driver for a
# bounded time over the seeds in ../shared/fixtures. Fails on any warning, test failure or report.
set -euo pipefail
cd "$(dirname "$0")/.."
build=build-sanitize
cmake -S . -B "$build" -DCMO_NATIVE_TESTS=ON -DCMO_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$build" -j"$(nproc)" 2>&1 | tee /tmp/cmo-sanitize-build.log | grep -E 'warning:|error:' && { echo "native build has warnings"; exit 1; } || true
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for t in "$build"/*_test; do
  echo "== $t"
  "$t"
done
for f in "$build"/*_fuzz; do
  [ -x "$f" ] || continue
  echo "== $f (bounded)"
  "$f" --seconds "${CMO_FUZZ_SECONDS:-20}" ../shared/fixtures
done
