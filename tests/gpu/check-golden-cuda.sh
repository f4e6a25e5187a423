#!/bin/sh
# check-golden-cuda.sh CLI CASE_DIR: the golden case through the CUDA backend.
# Skips (77) where no NVIDIA GPU is present; a GPU whose backend then fails
# to load is a failure, not a skip.
set -eu
cli=$1
case_dir=$2

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "SKIP: no NVIDIA GPU (nvidia-smi missing or failing)"
  exit 77
fi
nvidia-smi -L
exec "$cli" check-golden --device cuda "$case_dir"
