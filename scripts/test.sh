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

# The Python module, installed the way README.md tells users to (a venv of
# Debian's Python, `pip install .`), with the extras its tests use: Ray for
# ravlt.ray, pytest, and nanobind for the sanitizer build below.
/usr/bin/python3 -m venv .venv
.venv/bin/pip install --disable-pip-version-check ".[ray,test]" >build/pip-install.log 2>&1 ||
  { tail -50 build/pip-install.log; exit 1; }
stage "Python module installed (pip install .)"

# The code must compile with clang too (design.md): clang builds the
# sanitizer configuration, AddressSanitizer + UndefinedBehaviorSanitizer
# (+ LeakSanitizer), whose tests run after the main suite.
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=clang++ \
  -DRAVLT_SANITIZE=ON -DRAVLT_TESTDATA="$PWD/build/testdata" \
  -DRAVLT_PYTHON=ON -DPython_EXECUTABLE="$PWD/.venv/bin/python" >/dev/null
cmake --build build-asan -j "$(nproc)" >build-asan/compile.log 2>&1 || { tail -50 build-asan/compile.log; exit 1; }
stage "built (clang, ASan + UBSan)"

set +e
ctest --test-dir build --output-on-failure -j "$(nproc)" >build/ctest.log 2>&1
status=$?
set -e
stage "tests ran"

# Under the sanitizers: the unit tests, the RAVLT-T-sized parity tests, the
# dense features at small sizes, the hostile inputs through the tool and the
# Python module's tests (its instrumented extension, without Ray),
# on the checkpoints the main run generated (-FS: no second generation).
# Suppressions: tests/sanitizers/ (third-party runtimes only, each with its
# reason).
# exitcode=86: a report never passes for the status 1 of an ordinary error.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:strict_string_checks=1:exitcode=86"
export LSAN_OPTIONS="suppressions=$PWD/tests/sanitizers/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=86"
set +e
ctest --test-dir build-asan -FS testdata -R "_test$|runtime_parity_t|dense_small|bf16_small|hostile_inputs|python_module_asan" --output-on-failure \
  -j "$(nproc)" >build-asan/ctest.log 2>&1
asan_status=$?
set -e
stage "sanitizer tests ran"

# The concurrency stress test under ThreadSanitizer (its own build; only
# what the test needs is built). OMP_NUM_THREADS=1: a clang build has two
# OpenMP runtimes (libomp for our code, Debian's oneDNN on libgomp), neither
# instrumented, so OpenMP worker threads would only produce reports about
# the runtimes; the 8 threads under test are the callers' own, and each
# session's thread that packs after its first run (SessionOptions::
# defer_packing). ignore_noninstrumented_modules: libomp recycles the memory
# of a finished thread's OpenMP state for the next one, and oneDNN shares its
# cached primitives between threads, both under synchronization ThreadSanitizer
# cannot see (libomp's own advice); our code stays checked.
cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=clang++ \
  -DRAVLT_TSAN=ON -DRAVLT_TESTDATA="$PWD/build/testdata" >/dev/null
set +e
cmake --build build-tsan -j "$(nproc)" --target stress_test >build-tsan/compile.log 2>&1 &&
  OMP_NUM_THREADS=1 TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:ignore_noninstrumented_modules=1" \
    RAVLT_STRESS_SECONDS=10 \
    build-tsan/tests/stress_test >build-tsan/stress.log 2>&1
tsan_status=$?
set -e
stage "ThreadSanitizer stress test ran"

# A short, deterministic pass of every fuzz target (fixed seed and run
# count), so that a parser change that breaks on the seeds fails here.
set +e
FUZZ_RUNS=3000 bash scripts/fuzz.sh 0 "$(nproc)" >build-fuzz-ci.log 2>&1
fuzz_status=$?
set -e
stage "fuzz targets ran (short pass)"
cat build-fuzz-ci.log
echo "--- sanitizer build (clang, ASan + UBSan + LSan):"
tail -n 25 build-asan/ctest.log
echo "--- ThreadSanitizer stress test:"
tail -n 5 build-tsan/stress.log 2>/dev/null || tail -n 30 build-tsan/compile.log
echo "--- main build (gcc):"
cat build/ctest.log
[ $asan_status -eq 0 ] || { echo "sanitizer tests FAILED"; exit 1; }
[ $fuzz_status -eq 0 ] || { echo "fuzz pass FAILED"; exit 1; }
[ $tsan_status -eq 0 ] || { echo "ThreadSanitizer stress test FAILED"; tail -n 60 build-tsan/stress.log; exit 1; }
exit $status
