#!/usr/bin/env bash
# Tests and benchmarks the CUDA backend in one go on a GPU machine that has
# nvcc, CMake, ninja and PyTorch but none of our Debian packages (the
# `device` machine). Needs out/gpu-bundle (scripts/gpu_bundle.sh, run
# beforehand elsewhere): its .deb files are unpacked with dpkg -x into
# out/gpu-prefix; its prebuilt binaries run if they can, else it builds
# build-gpu/ there (--build: always). Then the GPU tests (every op in every
# precision against the reference kernels, whole models against the CPU
# backend), then, time allowing, compute-sanitizer's memory checker over the
# op tests and the whole-model tests, then bench/gpu_compare.py with the
# remaining arguments, then racecheck with the time left. Logs go to
# $OUT (or out/gpu-results), each step's result to gpu.log; the last lines
# printed are the tables.
#   bash bench/gpu.sh [--quick] [--build] [gpu_compare.py arguments...]
#     --quick: no torch.compile, batch 1 and 64, fp16 and fp32
#   GPU_TIME_LIMIT_S=480 bash bench/gpu.sh ...  # end within that many seconds
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bundle=$root/out/gpu-bundle
prefix=$root/out/gpu-prefix
results=${OUT:-$root/out/gpu-results}
mkdir -p "$results"
log=$results/gpu.log
limit=${GPU_TIME_LIMIT_S:-100000}
started=$SECONDS
stamp() { echo "[$(date +%T) +$((SECONDS - started))s] $*" | tee -a "$log"; }
left() { echo $((limit - (SECONDS - started))); }
[ -d "$bundle/debs" ] || { echo "gpu.sh: $bundle missing (scripts/gpu_bundle.sh)" >&2; exit 1; }

quick=0 build=0 compare_args=()
for a in "$@"; do
  case $a in
  --quick) quick=1 ;;
  --build) build=1 ;;
  *) compare_args+=("$a") ;;
  esac
done
[ $quick = 1 ] && compare_args=(--compile-mode none --batches 1,64 --precisions fp16,fp32
  --iterations 20 "${compare_args[@]}")

stamp "unpacking $(ls "$bundle"/debs/*.deb | wc -l) packages into $prefix"
rm -rf "$prefix"
for deb in "$bundle"/debs/*.deb; do dpkg -x "$deb" "$prefix"; done
lib=$prefix/usr/lib/x86_64-linux-gnu
# cuBLASLt is loaded at run time (libcublasLt.so.<major>): the CUDA
# toolkit's or the one PyTorch's wheels carry.
cublas=$(find /usr/local /usr/lib /opt -name 'libcublasLt.so.1[0-9]*' 2>/dev/null | sort | head -1)
libpath=$lib${cublas:+:$(dirname "$cublas")}
stamp "GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm \
  --format=csv,noheader 2>&1 | head -1); CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
stamp "cuBLASLt: ${cublas:-not found}"

bin=
if [ $build = 0 ] && [ -f "$bundle/prebuilt.tar.xz" ]; then
  rm -rf out/gpu-prebuilt && mkdir -p out/gpu-prebuilt
  tar -C out/gpu-prebuilt -xJf "$bundle/prebuilt.tar.xz"
  # The tests read the paths compiled into them: the source tree (demo/)
  # and the test data. Recreate both here.
  source_dir=$(sed -n 's/^source=//p' "$bundle/prebuilt.paths")
  testdata=$(sed -n 's/^testdata=//p' "$bundle/prebuilt.paths")
  if [ ! -e "$source_dir" ]; then mkdir -p "$(dirname "$source_dir")" && ln -s "$root" "$source_dir"; fi
  mkdir -p "$testdata" && cp "$bundle"/testdata/* "$testdata/"
  if LD_LIBRARY_PATH=$root/out/gpu-prebuilt:$libpath out/gpu-prebuilt/ravlt --version >>"$log" 2>&1; then
    bin=$root/out/gpu-prebuilt
    libpath=$bin:$libpath
    stamp "prebuilt binaries ($(sed -n 's/^commit=//p' "$bundle/prebuilt.paths")) run here"
  else
    stamp "the prebuilt binaries do not run here (gpu.log): building"
  fi
fi
if [ -z "$bin" ]; then
  export PATH=$prefix/usr/bin:$PATH
  export PKG_CONFIG=$prefix/usr/bin/pkgconf
  export PKG_CONFIG_LIBDIR=$lib/pkgconfig:$prefix/usr/share/pkgconfig
  export PKG_CONFIG_SYSROOT_DIR=$prefix
  arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d .)
  arch=${arch:-90}
  stamp "building for sm_$arch"
  { cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$arch" \
    -DCMAKE_PREFIX_PATH="$prefix/usr" -DOPENSSL_ROOT_DIR="$prefix/usr" \
    -DRAVLT_TESTDATA="$bundle/testdata" -DCMAKE_POLICY_VERSION_MINIMUM=3.5 &&
    LD_LIBRARY_PATH=$libpath cmake --build build-gpu -j "$(nproc)" --target ravlt cuda_backend_test \
      backend_ops_test device_path_test; } >"$results/build.log" 2>&1 ||
    { grep -m 20 -B2 -A8 "error" "$results/build.log"; stamp "build failed"; exit 1; }
  bin=$root/build-gpu
  stamp "built"
fi
# The CLI as PyTorch's scripts call it: our libraries on its path alone.
mkdir -p out/gpu-bin
printf '#!/bin/sh\nLD_LIBRARY_PATH=%s exec %s "$@"\n' "$libpath" "$bin/ravlt" >out/gpu-bin/ravlt
chmod +x out/gpu-bin/ravlt

status=0
run_test() {  # name seconds [doctest arguments]
  local name=$1 seconds=$2
  shift 2
  LD_LIBRARY_PATH=$libpath timeout "$seconds" "$bin/tests/$name" "$@" >"$results/$name.log" 2>&1
  local rc=$?
  [ $rc = 0 ] || status=1
  stamp "$name: exit $rc; $(grep -h 'test cases:\|backend-ops:' "$results/$name.log" | tr -s ' ' | paste -sd' ')"
  grep -h -B1 -A4 "ERROR\|FATAL\|threw\|exception" "$results/$name.log" | head -40
}
run_test backend_ops_test 240
run_test cuda_backend_test 240
run_test device_path_test 60

# Every kernel at the op tests' odd shapes under compute-sanitizer's memory
# checker (out-of-bounds and misaligned accesses, launch errors), time-boxed.
sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
if [ "$(left)" -gt 150 ] && [ -n "$sanitizer" ]; then
  stamp "compute-sanitizer memcheck over backend_ops_test"
  LD_LIBRARY_PATH=$libpath timeout 60 "$sanitizer" --tool memcheck --leak-check no \
    --error-exitcode 3 "$bin/tests/backend_ops_test" --test-case='every op*' \
    >"$results/sanitizer.log" 2>&1
  rc=$?
  [ $rc = 0 ] || status=1
  stamp "compute-sanitizer: exit $rc; $(grep -h 'ERROR SUMMARY\|test cases:' "$results/sanitizer.log" | tr -s ' ' | paste -sd' ')"
fi

# The memory checker over whole models at odd sizes.
if [ "$(left)" -gt 120 ] && [ -n "$sanitizer" ]; then
  stamp "compute-sanitizer memcheck over cuda_backend_test"
  LD_LIBRARY_PATH=$libpath timeout 60 "$sanitizer" --tool memcheck --leak-check no \
    --error-exitcode 3 "$bin/tests/cuda_backend_test" >"$results/sanitizer-models.log" 2>&1
  rc=$?
  [ $rc = 0 ] || status=1
  stamp "memcheck (models): exit $rc; $(grep -h 'ERROR SUMMARY\|test cases:' "$results/sanitizer-models.log" | tr -s ' ' | paste -sd' ')"
fi

if [ "$(left)" -gt 60 ]; then
  stamp "bench/gpu_compare.py ${compare_args[*]}"
  PYTHONUNBUFFERED=1 timeout $(($(left) - 30)) python3 bench/gpu_compare.py \
    --ravlt "$root/out/gpu-bin/ravlt" --out "$results" --work /tmp/gpu-compare \
    "${compare_args[@]}" >"$results/compare.log" 2>&1 || status=1
  stamp "gpu_compare: done"
  grep -v '^{' "$results/compare.log" | tail -60
fi

# Last, with the time left (it is slow: about 2,500 of the op tests'
# assertions in 120 s): shared-memory hazards, such as a missing barrier in
# a tiled kernel. A timeout (exit 124) with no hazard printed is
# inconclusive for the cases it did not reach, not a failure.
if [ "$(left)" -gt 40 ] && [ -n "$sanitizer" ]; then
  box=$(($(left) - 15))
  [ $box -gt 300 ] && box=300
  stamp "compute-sanitizer racecheck over backend_ops_test (${box} s)"
  LD_LIBRARY_PATH=$libpath timeout $box "$sanitizer" --tool racecheck --racecheck-report hazard \
    --error-exitcode 3 "$bin/tests/backend_ops_test" --test-case='every op*' \
    >"$results/racecheck.log" 2>&1
  rc=$?
  [ $rc = 3 ] && status=1
  stamp "racecheck: exit $rc; $(grep -h 'RACECHECK SUMMARY\|ERROR SUMMARY\|test cases:\|assertions:' "$results/racecheck.log" | tr -s ' ' | paste -sd' ')"
fi

exit $status
