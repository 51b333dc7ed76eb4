#!/usr/bin/env bash
# Builds, tests and benchmarks the CUDA backend in one go on a GPU machine
# that has nvcc, CMake, ninja and PyTorch but none of our Debian packages
# (the `device` machine). Needs out/gpu-bundle (scripts/gpu_bundle.sh, run
# beforehand elsewhere): its .deb files are unpacked with dpkg -x into
# out/gpu-prefix and CMake is pointed there. Writes logs under $OUT (or
# out/gpu-results) and prints a short table last.
#   bash bench/gpu.sh [--quick]      # --quick: no torch.compile, batch 1 and 64
set -euo pipefail
cd "$(dirname "$0")/.."
bundle=$PWD/out/gpu-bundle
prefix=$PWD/out/gpu-prefix
results=${OUT:-$PWD/out/gpu-results}
mkdir -p "$results"
[ -d "$bundle/debs" ] || { echo "gpu.sh: $bundle missing (scripts/gpu_bundle.sh)" >&2; exit 1; }

stamp() { echo "[$(date +%T)] $*"; }
stamp "unpacking $(ls "$bundle"/debs/*.deb | wc -l) packages into $prefix"
rm -rf "$prefix"
for deb in "$bundle"/debs/*.deb; do dpkg -x "$deb" "$prefix"; done
lib=$prefix/usr/lib/x86_64-linux-gnu
export LD_LIBRARY_PATH=$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export PATH=$prefix/usr/bin:$PATH
export PKG_CONFIG=$prefix/usr/bin/pkgconf
export PKG_CONFIG_LIBDIR=$lib/pkgconfig:$prefix/usr/share/pkgconfig
export PKG_CONFIG_SYSROOT_DIR=$prefix

arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d .)
arch=${arch:-90}
stamp "GPU: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || echo none); building for sm_$arch"
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$arch" \
  -DCMAKE_PREFIX_PATH="$prefix/usr" -DOPENSSL_ROOT_DIR="$prefix/usr" \
  -DRAVLT_TESTDATA="$bundle/testdata" -DCMAKE_POLICY_VERSION_MINIMUM=3.5 \
  >"$results/configure.log" 2>&1 ||
  { tail -30 "$results/configure.log"; exit 1; }
cmake --build build-gpu -j "$(nproc)" --target ravlt cuda_backend_test device_path_test \
  >"$results/build.log" 2>&1 || { grep -m 20 -B2 -A8 "error" "$results/build.log"; exit 1; }
stamp "built"

status=0
build-gpu/tests/cuda_backend_test >"$results/cuda_backend_test.log" 2>&1 || status=1
build-gpu/tests/device_path_test >"$results/device_path_test.log" 2>&1 || status=1
stamp "tests: $(grep -h 'test cases' "$results"/cuda_backend_test.log "$results"/device_path_test.log | tr -s ' ' | paste -sd';')"

args=(--ravlt build-gpu/ravlt --out "$results/compare")
[ "${1:-}" = --quick ] && args+=(--compile-mode none --batches 1,64 --precisions fp16,fp32 --iterations 20)
python3 bench/gpu_compare.py "${args[@]}" 2>&1 | tee "$results/compare.log" | grep -v '^{' || status=1
grep -h "rel L2\|ERROR\|FAILED" "$results/cuda_backend_test.log" | head -20 || true
exit $status
