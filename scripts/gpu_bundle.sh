#!/usr/bin/env bash
# Makes out/gpu-bundle/, what a GPU machine without our Debian packages needs
# to test ravlt there (bench/gpu.sh): the packages' .deb files (unpacked
# there with dpkg -x into a prefix, never installed), the test checkpoints
# the CUDA tests read and, when build/ has the CUDA backend, this build's
# binaries (prebuilt.tar.xz: the CLI, the library and the GPU tests), so
# that the GPU machine's minutes go to tests rather than to compiling; it
# builds there only if they cannot run. Run here, after `bash
# scripts/test.sh` (it makes build/testdata); carry out/gpu-bundle with the
# device call. About 25 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
bundle=out/gpu-bundle
packages=(
  libdnnl-dev libdnnl2 ocl-icd-libopencl1
  libflatbuffers-dev libflatbuffers2 flatbuffers-compiler flatbuffers-compiler-dev
  libcli11-dev doctest-dev
  libzip-dev libzip4 zlib1g-dev
  libxxhash-dev libxxhash0
  libssl-dev libssl3
  libjpeg62-turbo-dev libjpeg62-turbo libpng-dev libpng16-16
  libstb-dev libstb0
  pkgconf pkgconf-bin libpkgconf3
  libgomp1
)
rm -rf "$bundle"
mkdir -p "$bundle/debs" "$bundle/testdata"
(cd "$bundle/debs" && apt-get download "${packages[@]}" 2>&1 | grep -v "^Get:\|unsandboxed" || true)
[ "$(ls "$bundle/debs" | wc -l)" -eq ${#packages[@]} ] ||
  { echo "gpu_bundle: not every package was downloaded" >&2; exit 1; }
for f in custom_bare.pth custom_mmdet.pth; do
  [ -f build/testdata/$f ] ||
    { echo "gpu_bundle: build/testdata/$f missing (run scripts/test.sh)" >&2; exit 1; }
  cp build/testdata/$f "$bundle/testdata/"
done
# The prebuilt binaries, with the paths compiled into the tests (the source
# tree and the test data), which gpu.sh recreates there as links.
tests=(cuda_backend_test backend_ops_test device_path_test)
if grep -q "RAVLT_CUDA:BOOL=ON" build/CMakeCache.txt 2>/dev/null &&
  [ -x build/tests/cuda_backend_test ]; then
  cmake --build build --target ravlt "${tests[@]}" >/dev/null
  {
    echo "source=$PWD"
    echo "testdata=$(sed -n 's/^RAVLT_TESTDATA:PATH=//p' build/CMakeCache.txt)"
    echo "commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo +changes)"
  } >"$bundle/prebuilt.paths"
  tar -C build -cJf "$bundle/prebuilt.tar.xz" ravlt libravlt.so libravlt.so.0 \
    "$(readlink build/libravlt.so.0)" "${tests[@]/#/tests/}"
else
  echo "gpu_bundle: build/ has no CUDA backend: the GPU machine will build" >&2
fi
du -sh "$bundle"
