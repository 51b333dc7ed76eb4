#!/usr/bin/env bash
# The whole test suite, from a fresh clone: install packages, configure,
# build, run every test through CTest. CTest's summary is the last thing
# printed; the exit status is non-zero if anything failed.
#
#   scripts/test.sh            everything
#   RAVLT_QUICK=1 scripts/test.sh   skip the large RAVLT-S/B/L checkpoints
set -euo pipefail
cd "$(dirname "$0")/.."

stage_start=$(date +%s)
stage() {  # prints how long the previous stage took
  local now
  now=$(date +%s)
  echo "== [$((now - stage_start)) s] $1"
  stage_start=$now
}

if [ "$(id -u)" -eq 0 ]; then
  bash scripts/setup.sh
else
  echo "(not root: assuming scripts/setup.sh has been run)"
fi
stage "setup done"

quick=OFF
[ "${RAVLT_QUICK:-0}" = 1 ] && quick=ON
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DRAVLT_QUICK_TESTS=$quick
stage "configured"

cmake --build build -j "$(nproc)"
stage "built (gcc)"

# The code must compile with clang too (design.md); compile-only here, the
# tests run on the gcc build.
cmake -S . -B build-clang -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=clang++ >/dev/null
cmake --build build-clang -j "$(nproc)" >build-clang/compile.log 2>&1 || { tail -50 build-clang/compile.log; exit 1; }
stage "built (clang, compile check)"

set +e
ctest --test-dir build --output-on-failure -j "$(nproc)" >build/ctest.log 2>&1
status=$?
set -e
stage "tests ran"
cat build/ctest.log
exit $status
