#!/bin/bash
# device-check.sh: everything the CUDA backend needs checked on a real GPU, in
# one run of under 8 minutes: a clean build with -Dcuda=enabled, the gpu test
# suite (ops against the CPU in fp32, again with fp16 and bf16 GEMM operands,
# the golden case, the loader), the card's GEMM peak, the full-size benchmark
# table, and per-op GPU time of a UNet forward (and of the decoder, if time
# allows) for the next round of optimisation. Installs nothing; expects Debian 12 with CUDA 13 in
# /usr/local/cuda, as on the development machines.
#
# Usage: tests/gpu/device-check.sh [BUILD_DIR]   (default: a fresh /tmp dir)
# The whole output also goes to $OUT/device-check.log when $OUT is set (the
# device machine's return folder), else to BUILD_DIR.log; the summary at the
# end repeats the results that matter.
# Environment: BENCH_PRECISION (default fp16), BENCH_BUDGET_S (default 140),
#   REF_BENCH=path/to/bench_ref.py to time the diffusers reference as well.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${1:-$(mktemp -d /tmp/onestep-gpu-XXXXXX)}
started=$SECONDS
failed=()
if [[ -n "${OUT:-}" ]]; then log=$OUT/device-check.log; else log=$build.log; fi
exec > >(tee "$log") 2>&1
results=$(mktemp)

stage() { printf '\n=== %s (%d s) ===\n' "$1" $((SECONDS - started)); }
note_failure() { failed+=("$1"); echo "!!! $1 failed"; }

stage "GPU"
# Informational only: the tests find the GPU through the engine itself.
nvidia-smi || echo "warning: nvidia-smi failed or is missing"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true
/usr/local/cuda/bin/nvcc --version | tail -2

stage "build in $build"
rm -rf "$build"
timeout 120 meson setup "$build" "$repo" -Dcuda=enabled -Dapp=disabled >"$build.setup.log" 2>&1 ||
  { tail -30 "$build.setup.log"; echo "meson setup failed" >&2; exit 1; }
timeout 300 ninja -C "$build" -j"$(nproc)" >"$build.ninja.log" 2>&1 ||
  { tail -40 "$build.ninja.log"; echo "build failed" >&2; exit 1; }
grep -E "warning" "$build.ninja.log" | grep -E "engine/cuda|tests/gpu" || echo "no warnings in engine/cuda or tests/gpu"

stage "gpu test suite (fp32)"
timeout 240 meson test -C "$build" --suite gpu --print-errorlogs -v --num-processes 1 ||
  note_failure "gpu suite"
for precision in fp16 bf16; do
  stage "ops against the CPU with $precision GEMM operands"
  ONESTEP_CUDA_PRECISION=$precision timeout 120 "$build/tests/gpu/test-cuda-ops" |
    tee -a "$results" || note_failure "ops in $precision"
done

stage "GEMM peak of this card"
peak_log=$(timeout 60 "$build/tests/gpu/gemm-peak") || note_failure "gemm-peak"
echo "$peak_log"
peak=$(echo "$peak_log" | awk '/^fp16_peak_tflops/ {print $2}')

precision=${BENCH_PRECISION:-fp16}
budget=${BENCH_BUDGET_S:-140}
stage "benchmark at 1024x576, $precision (budget $budget s)"
# The end-to-end run writes a 9 GB model folder: in memory when /dev/shm can hold it.
bench_tmp=${TMPDIR:-/tmp}
if [[ -d /dev/shm ]] && (($(df -Pk /dev/shm | awk 'NR == 2 {print $4}') > 20 * 1024 * 1024)); then
  bench_tmp=/dev/shm
fi
ONESTEP_CUDA_PRECISION=$precision TMPDIR=$bench_tmp timeout 330 "$build/tests/gpu/bench-gpu" \
  --peak-tflops "${peak:-0}" --budget-s "$budget" | tee -a "$results" || note_failure "benchmark"
rm -rf "$bench_tmp"/onestep-bench-* # left behind only if the bench was killed

for key in unet14 decode14; do
  if ((SECONDS - started > 420)); then
    echo "skipping the $key profile: 8 minutes nearly spent"
    continue
  fi
  stage "per-op GPU time, $key, $precision"
  ONESTEP_CUDA_PROFILE=1 ONESTEP_CUDA_PRECISION=$precision timeout 60 \
    "$build/tests/gpu/bench-gpu" --only "$key" || note_failure "$key profile"
done

if [[ -n "${REF_BENCH:-}" ]]; then
  stage "diffusers reference ($REF_BENCH)"
  timeout 150 python3 "$REF_BENCH" || note_failure "reference benchmark"
fi

stage "summary"
nvidia-smi --query-gpu=name --format=csv,noheader || true
grep -hE "^FAIL " "$build/meson-logs/testlog.txt" "$results" || echo "no failing op checks"
grep -E "^(Ok|Fail|Skipped|Timeout): " "$build/meson-logs/testlog.txt" || true
echo "$peak_log" | grep -E "^(device|GEMM 8192\^3 fp16)" || true
grep -E "^(precision|one step via|[A-Za-z].* ms  )" "$results" || true
if ((${#failed[@]})); then
  printf 'FAILED: %s\n' "${failed[@]}"
  exit 1
fi
echo "all GPU checks passed in $((SECONDS - started)) s"
