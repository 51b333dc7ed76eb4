#!/usr/bin/env bash
# The main job, end to end on a fresh machine: install packages, build,
# write a RAVLT-T checkpoint in the authors' training layout with the PyTorch
# reference (random weights: no trained checkpoint ships yet), convert it to
# a .rvlt model file and inspect it. Everything lands in demo/.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -eq 0 ]; then bash scripts/setup.sh; fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$(nproc)" --target ravlt

mkdir -p demo
/usr/bin/python3 tests/reference/make_checkpoint.py --variant T --layout training -o demo/RAVLT_T.pth
build/ravlt convert demo/RAVLT_T.pth -o demo/ravlt_t.rvlt
build/ravlt inspect demo/ravlt_t.rvlt
