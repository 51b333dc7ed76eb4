#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan, RAVLT_FUZZING) in
# build-fuzz/, makes their seed corpora, and runs each target for SECONDS
# (default 60), JOBS at a time (default 2). Prints per target the executions
# and whether it found anything; exit status 1 if any target did. Crash
# inputs land in build-fuzz/artifacts/<target>/.
#   bash scripts/fuzz.sh [SECONDS] [JOBS] [TARGET ...]
# With FUZZ_RUNS=N set, each target instead makes N runs from a fixed seed
# on a fresh corpus (deterministic: what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
jobs=${2:-2}
shift $(( $# > 2 ? 2 : $# ))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_checkpoint fuzz_pickle fuzz_model_file fuzz_image fuzz_npy fuzz_packed_weights)

[ -x build/ravlt ] || { echo "fuzz.sh: build/ravlt is needed to make seeds (bash scripts/test.sh)" >&2; exit 1; }
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DRAVLT_FUZZ=ON >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target "${targets[@]}" >build-fuzz/build.log 2>&1 ||
  { tail -40 build-fuzz/build.log; exit 1; }
seeds=build-fuzz/seeds
[ -d "$seeds" ] || /usr/bin/python3 tests/fuzz/make_seeds.py "$seeds" --ravlt build/ravlt >/dev/null

artifacts_root=build-fuzz/artifacts${FUZZ_RUNS:+-ci}
run_one() {
  local t=$1 corpus=build-fuzz/corpus/$1 artifacts=$artifacts_root/$1
  local limit=(-max_total_time="$seconds")
  if [ -n "${FUZZ_RUNS:-}" ]; then
    corpus=build-fuzz/corpus-ci/$1
    rm -rf "$corpus" "$artifacts"
    local runs=$FUZZ_RUNS
    # The model-file target plans and runs every accepted model (oneDNN
    # primitives under ASan): about a second per input.
    [ "$t" = fuzz_model_file ] && runs=$(( FUZZ_RUNS / 100 > 20 ? FUZZ_RUNS / 100 : 20 ))
    limit=(-runs="$runs" -seed=1)
  fi
  mkdir -p "$corpus" "$artifacts"
  # The growing corpus first (libFuzzer writes new inputs there), the seeds second.
  build-fuzz/tests/fuzz/"$t" "$corpus" "$seeds/$t" "${limit[@]}" -timeout=20 \
    -rss_limit_mb=2560 -max_len=1048576 -print_final_stats=1 -artifact_prefix="$artifacts/" \
    >build-fuzz/"$t".log 2>&1 || true
}
touch build-fuzz/.run-started  # findings are the artifacts newer than this
export -f run_one
export seconds seeds FUZZ_RUNS artifacts_root
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one {}'

found=0
for t in "${targets[@]}"; do
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' build-fuzz/"$t".log | grep -o '[0-9]*$' || echo "?")
  crashes=$(find "$artifacts_root/$t" -type f -newer build-fuzz/.run-started | wc -l)
  extra=$(grep -h "passed every check" build-fuzz/"$t".log | tail -1 || true)
  if grep -q "ERROR: \|runtime error" build-fuzz/"$t".log || [ "$crashes" -gt 0 ]; then
    found=1
    echo "$t: $runs executions: FOUND $crashes input(s) in $artifacts_root/$t (log build-fuzz/$t.log)"
  else
    echo "$t: $runs executions: no crash, no sanitizer report. $extra"
  fi
done
exit $found
