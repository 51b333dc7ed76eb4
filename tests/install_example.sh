#!/usr/bin/env bash
# Installs ravlt from BUILD_DIR into a scratch prefix, builds examples/
# against it with find_package(ravlt) like any other project would, and
# classifies one image with the example.
#   install_example.sh SOURCE_DIR BUILD_DIR MODEL_CHECKPOINT IMAGE
set -euo pipefail
src=$1 build=$2 checkpoint=$3 image=$4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
test -f "$work/prefix/include/ravlt/classifier.h"
test -f "$work/prefix/lib/cmake/ravlt/ravltConfig.cmake" || test -f "$work/prefix/lib/x86_64-linux-gnu/cmake/ravlt/ravltConfig.cmake"
cmake -S "$src/examples" -B "$work/examples" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/examples" >/dev/null
"$work/prefix/bin/ravlt" convert "$checkpoint" -o "$work/model.rvlt" -q --resize 40 --crop 32
lines=$(LD_LIBRARY_PATH= "$work/examples/classify_image" "$work/model.rvlt" "$image" | tee /dev/stderr | wc -l)
test "$lines" -eq 5
# Its own errors: a missing image.
if "$work/examples/classify_image" "$work/model.rvlt" "$work/missing.png" 2>"$work/err"; then exit 1; fi
grep -q "missing.png" "$work/err"
echo "installed package, example built with find_package(ravlt) and run: OK"
