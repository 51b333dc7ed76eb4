#!/usr/bin/env bash
# Makes out/gpu-bundle/, what a GPU machine without our Debian packages needs
# to build and test ravlt there (bench/gpu.sh): the packages' .deb files
# (unpacked there with dpkg -x into a prefix, never installed) and the test
# checkpoints the CUDA tests read. Run here, after `bash scripts/test.sh`
# (it takes build/testdata/custom_bare.pth); carry out/gpu-bundle with the
# device call. About 20 MB.
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
)
rm -rf "$bundle"
mkdir -p "$bundle/debs" "$bundle/testdata"
(cd "$bundle/debs" && apt-get download "${packages[@]}" 2>&1 | grep -v "^Get:\|unsandboxed" || true)
[ "$(ls "$bundle/debs" | wc -l)" -eq ${#packages[@]} ] ||
  { echo "gpu_bundle: not every package was downloaded" >&2; exit 1; }
[ -f build/testdata/custom_bare.pth ] ||
  { echo "gpu_bundle: build/testdata/custom_bare.pth missing (run scripts/test.sh)" >&2; exit 1; }
cp build/testdata/custom_bare.pth "$bundle/testdata/"
du -sh "$bundle"
