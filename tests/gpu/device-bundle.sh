#!/bin/bash
# device-bundle.sh: prepares .devcarry/ for a bare GPU machine (CUDA and a
# driver, but none of the project's libraries and no way to install them):
# the GPU test programs, the benchmark and the CUDA module built here, the
# shared libraries they need that such a machine lacks, and the golden
# case's image as raw RGB. device-run.sh runs them there.
#
# Usage (here): tests/gpu/device-bundle.sh [BUILD_DIR]
# Environment: CUDNN_DIR (the cuDNN 9 to carry; default: the toolkit's),
# CARRY_LIMIT_MIB (the device tool's copy limit, default 63 of its 64 MiB).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${1:-$repo/_build-device}
carry=$repo/.devcarry
cuda_lib=/usr/local/cuda/lib64
CARRY_LIMIT_MIB=${CARRY_LIMIT_MIB:-63}

# (git's own path for it: in a worktree .git is a file)
exclude=$(git -C "$repo" rev-parse --path-format=absolute --git-path info/exclude)
grep -qx '/.devcarry/' "$exclude" 2>/dev/null ||
  { mkdir -p "$(dirname "$exclude")"; echo '/.devcarry/' >>"$exclude"; }

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
# The 8-bit PNG as binary PPM (what every convert, even a minimal stand-in,
# writes), its three header lines dropped: raw 8-bit RGB.
convert "$repo/tests/data/golden/tiny-a/input.png" ppm:- |
  { read -r _magic; read -r _size; read -r _maxval; cat; } >"$carry/tiny-a.rgb"

# cuDNN 9 for a machine without one (device-run.sh uses it only then): the
# graph API's core, then as many of the optional libraries as the copy limit
# leaves room for, most useful first: the precompiled engines (the NCHW
# convolution kernels; ~245 MB, mostly compressed fatbins, so they only fit
# a larger limit), the legacy ops and convolution libraries that
# conv2d_backward needs (cnn needs ops), the heuristics library, and the
# runtime-compiled engines (used only with ONESTEP_CUDA_CUDNN_RUNTIME_COMPILED=1
# and the machine's NVRTC). Without the precompiled engines the forward
# convolutions find no engine and run as im2col + cuBLAS.
limit=$((CARRY_LIMIT_MIB * 1024 * 1024))
cudnn_dir=${CUDNN_DIR:-$(dirname "$(readlink -f "$cuda_lib/libcudnn.so.9")")}
mkdir -p "$carry/cudnn"
for lib in libcudnn.so.9 libcudnn_graph.so.9; do
  cp -L "$cudnn_dir/$lib" "$carry/cudnn/" && xz -T0 "$carry/cudnn/$lib"
done
for lib in libcudnn_engines_precompiled.so.9 libcudnn_ops.so.9 libcudnn_cnn.so.9 \
           libcudnn_heuristic.so.9 libcudnn_engines_runtime_compiled.so.9; do
  if [[ $lib == libcudnn_cnn.so.9 && ! -e $carry/cudnn/libcudnn_ops.so.9.xz ]]; then
    echo "left out $lib: it needs libcudnn_ops.so.9"
    continue
  fi
  room=$((limit - $(du -sb "$carry" | cut -f1)))
  # None of these compresses better than 4:1: do not spend minutes on xz to find out.
  if (($(stat -Lc %s "$cudnn_dir/$lib") > 4 * room)); then
    echo "left out $lib: it cannot fit in ${CARRY_LIMIT_MIB} MiB"
    continue
  fi
  cp -L "$cudnn_dir/$lib" "$carry/cudnn/" && xz -T0 "$carry/cudnn/$lib"
  if (($(du -sb "$carry" | cut -f1) > limit)); then
    rm "$carry/cudnn/$lib.xz"
    echo "left out $lib: it does not fit in ${CARRY_LIMIT_MIB} MiB"
  fi
done
du -sh "$carry" "$carry/cudnn"
ls "$carry/lib" "$carry/cudnn"
