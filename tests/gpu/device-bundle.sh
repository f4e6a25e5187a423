#!/bin/bash
# device-bundle.sh: prepares .devcarry/ for a bare GPU machine (CUDA and a
# driver, but none of the project's libraries and no way to install them):
# the GPU test programs, the benchmark and the CUDA module built here, the
# shared libraries they need that such a machine lacks, and the golden
# case's image as raw RGB. device-run.sh runs them there.
#
# Usage (here): tests/gpu/device-bundle.sh [BUILD_DIR]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${1:-$repo/_build-device}
carry=$repo/.devcarry

grep -qx '/.devcarry/' "$repo/.git/info/exclude" 2>/dev/null ||
  { mkdir -p "$repo/.git/info"; echo '/.devcarry/' >>"$repo/.git/info/exclude"; }

[[ -f $build/build.ninja ]] ||
  meson setup "$build" "$repo" -Dcuda=enabled -Dbuildtype=release >/dev/null
programs=(tests/gpu/test-cuda-ops tests/gpu/test-golden-cuda tests/gpu/bench-gpu tests/gpu/gemm-peak
          tests/checkpoints/test-checkpoints-cuda)
ninja -C "$build" "${programs[@]}" engine/cuda/libonestep-cuda.so >/dev/null

rm -rf "$carry"
mkdir -p "$carry/bin" "$carry/lib"
for p in "${programs[@]}"; do cp "$build/$p" "$carry/bin/"; done
cp "$build/engine/cuda/libonestep-cuda.so" "$carry/lib/"
# Everything the programs link beyond glibc and the toolkit's own libraries.
for p in "${programs[@]}"; do ldd "$build/$p"; done |
  awk '$3 ~ /^\// {print $3}' | sort -u |
  grep -Ev '/(libc|libm|libdl|libpthread|librt|ld-linux[^/]*|libcuda|libcublas[^/]*|libstdc\+\+|libgcc_s)\.so' |
  while read -r lib; do cp -L "$lib" "$carry/lib/"; done
# The machine's copy limit counts bytes: ship the libraries compressed.
xz -T0 "$carry"/lib/*.so*
convert "$repo/tests/data/golden/tiny-a/input.png" -depth 8 "rgb:$carry/tiny-a.rgb"
du -sh "$carry"
ls "$carry/lib"
