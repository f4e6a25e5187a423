#!/bin/sh
# check-golden-cuda.sh CLI CASE_DIR: the golden case through the CUDA backend.
# Skips (77) when the engine finds no usable NVIDIA driver or GPU (the
# loader's messages in engine/cuda/cuda_loader.c); any other failure,
# including a backend module that does not load on a GPU machine, fails.
set -u
cli=$1
case_dir=$2

out=$("$cli" check-golden --device cuda "$case_dir" 2>&1)
status=$?
printf '%s\n' "$out"
if [ "$status" -ne 0 ] &&
  printf '%s\n' "$out" | grep -qE "no NVIDIA driver|no NVIDIA GPU found|NVIDIA driver failed to initialise"; then
  echo "SKIP: no usable NVIDIA GPU"
  exit 77
fi
exit "$status"
