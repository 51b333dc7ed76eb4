#!/usr/bin/env bash
# The main job, end to end on a fresh machine: install packages, build, convert
# the shipped demo model (a small RAVLT trained on handwritten digits, in the
# authors' training-checkpoint layout) into a .rvlt model file, inspect it,
# and classify sample held-out digits with it. Outputs land in build/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -eq 0 ]; then bash scripts/setup.sh; fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$(nproc)" --target ravlt

mkdir -p build/demo
# The digits are 64x64 images: the model's preprocessing is a resize to 64
# (the identity here) and a 64x64 crop, with ImageNet's mean and std.
build/ravlt convert demo/ravlt_digits.pth -o build/demo/digits.rvlt \
  --resize 64 --crop 64 --labels demo/digit_labels.txt
build/ravlt inspect build/demo/digits.rvlt
samples=$(ls demo/digits/*.png | head -n 6)
build/ravlt classify -m build/demo/digits.rvlt --top-k 3 $samples
echo
echo "The whole held-out set (360 images; the digit is the last part of each name):"
build/ravlt classify -m build/demo/digits.rvlt demo/digits --batch 64 --json |
  /usr/bin/python3 -c '
import json, os, sys
d = json.load(sys.stdin)
n = d["images"]
right = sum(r["labels"][0] == os.path.basename(r["path"]).split("_")[1][0] for r in d["results"])
print(f"accuracy {100 * right / n:.2f}% ({right} of {n})")'
