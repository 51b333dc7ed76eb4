#!/usr/bin/env bash
# Installs every Debian package the project needs to build, test and convert.
# Runs as root on a fresh Debian 12 machine; safe to run again.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config clang-format
  clang                  # the code must also compile with clang 14
  # runtime dependencies
  libdnnl-dev            # oneDNN 2.6: CPU convolutions and GEMMs
  libflatbuffers-dev flatbuffers-compiler  # the .rvlt model file
  libcli11-dev           # command line
  libzip-dev             # torch.save zip container
  libxxhash-dev          # fast file checksum
  libssl-dev             # SHA-256 of source checkpoints
  libjpeg62-turbo-dev libpng-dev  # image decoding (the libraries Pillow uses)
  libstb-dev             # BMP decoding (stb_image)
  # tests
  doctest-dev
  python3-dev python3-venv      # the Python module: headers, and `python3 -m venv`
  python3-torch python3-numpy   # the PyTorch reference (tests/reference/)
  # Debian's torch calls libblas.so.3: the reference BLAS alone runs its GEMMs
  # at a few GFLOP/s, OpenBLAS (the higher-priority alternative) about 5x
  # faster, which the high-resolution parity cases need to fit in CI.
  libopenblas0-openmp
  python3-flatbuffers           # the reference reads .rvlt files independently
  python3-pil python3-torchvision  # the authors' evaluation preprocessing, for parity
  python3-sklearn               # the digits data set of the demo model
)

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: run as root (it calls apt-get)" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages already installed"
  exit 0
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
