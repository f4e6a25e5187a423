#!/bin/sh
# check-golden-cuda.sh CLI CASE_DIR [CHECK-GOLDEN OPTIONS...]: the golden case
# through the CUDA backend (options such as --precision fp16 --tolerance 2e-3
# --stage-by-stage pass to onestep-cli check-golden).
# Skips (77) when the engine finds no usable NVIDIA driver or GPU (the
# loader's messages in engine/cuda/cuda_loader.c); any other failure,
# including a backend module that does not load on a GPU machine, fails.
set -u
cli=$1
case_dir=$2
shift 2

out=$("$cli" check-golden --device cuda "$@" "$case_dir" 2>&1)
status=$?
printf '%s\n' "$out"
if [ "$status" -ne 0 ] &&
  printf '%s\n' "$out" | grep -qE "no NVIDIA driver|no NVIDIA GPU found|NVIDIA driver failed to initialise"; then
  echo "SKIP: no usable NVIDIA GPU"
  exit 77
fi
exit "$status"
