#!/bin/bash
# device-run.sh: on the GPU machine, everything the CUDA backend needs checked
# in one run of under 8 minutes, from the programs device-bundle.sh prepared:
# every op against the CPU backend (fp32, then fp16 and bf16 GEMM operands and
# 16-bit buffers), the golden case on the GPU in each precision (end to end and
# stage by stage), single-file checkpoints and the preview fit on the GPU, the
# card's GEMM peak, the full-size benchmark table, and a per-op profile of the
# UNet and decoder.
#
# Usage (there): tests/gpu/device-run.sh   Environment: BENCH_BUDGET_S (default 200)
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
carry=$repo/.devcarry
export LD_LIBRARY_PATH=$carry/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export ONESTEP_CUDA_MODULE=$carry/lib/libonestep-cuda.so
started=$SECONDS
failed=()
for packed in "$carry"/lib/*.xz; do
  [[ -e $packed ]] || continue
  unxz -f "$packed" 2>/dev/null ||
    python3 -c 'import lzma,sys; open(sys.argv[1][:-3],"wb").write(lzma.open(sys.argv[1]).read())' "$packed"
done
stage() { printf '\n=== %s (%d s) ===\n' "$1" $((SECONDS - started)); }
check() { local what=$1; shift; "$@" || { failed+=("$what"); echo "!!! $what failed"; }; }

stage "GPU"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true

for precision in fp32 fp16 bf16; do
  stage "ops against the CPU backend, $precision"
  ONESTEP_CUDA_PRECISION=$precision check "ops $precision" timeout 240 "$carry/bin/test-cuda-ops"
  stage "golden tiny-a on the GPU, $precision"
  ONESTEP_CUDA_PRECISION=$precision check "golden $precision" timeout 60 \
    "$carry/bin/test-golden-cuda" "$repo/tests/data/golden/tiny-a" "$carry/tiny-a.rgb"
  stage "golden tiny-a on the GPU, $precision, stage by stage"
  ONESTEP_CUDA_PRECISION=$precision check "golden $precision stage by stage" timeout 60 \
    "$carry/bin/test-golden-cuda" --stage-by-stage "$repo/tests/data/golden/tiny-a" \
    "$carry/tiny-a.rgb"
done

stage "checkpoints on the GPU (folder vs single file, preview fit)"
check "checkpoints" timeout 120 "$carry/bin/test-checkpoints-cuda" \
  "$repo/tests/data/golden/tiny-a/model"

stage "ops against the CPU backend, fp16, long attention through cuBLAS"
ONESTEP_CUDA_PRECISION=fp16 ONESTEP_CUDA_ATTENTION=blocked check "ops fp16 blocked attention" \
  timeout 150 "$carry/bin/test-cuda-ops"

stage "GEMM peak of this card"
peak_log=$(timeout 60 "$carry/bin/gemm-peak") || failed+=("gemm-peak")
echo "$peak_log"
peak=$(echo "$peak_log" | awk '/^fp16_peak_tflops/ {print $2}')

stage "benchmark at 1024x576, fp16 operands"
ONESTEP_CUDA_PRECISION=fp16 check benchmark timeout 330 "$carry/bin/bench-gpu" \
  --peak-tflops "${peak:-0}" --budget-s "${BENCH_BUDGET_S:-200}"

stage "where the time goes: GPU time per op of one 14-frame UNet forward and decode"
ONESTEP_CUDA_PRECISION=fp16 ONESTEP_CUDA_PROFILE=1 check "profile, UNet" timeout 90 \
  "$carry/bin/bench-gpu" --peak-tflops "${peak:-0}" --only unet14
ONESTEP_CUDA_PRECISION=fp16 ONESTEP_CUDA_PROFILE=1 check "profile, decoder" timeout 90 \
  "$carry/bin/bench-gpu" --peak-tflops "${peak:-0}" --only decode14

stage "UNet forward with long attention through cuBLAS instead of the flash kernel"
ONESTEP_CUDA_PRECISION=fp16 ONESTEP_CUDA_ATTENTION=blocked check "benchmark, blocked attention" \
  timeout 120 "$carry/bin/bench-gpu" --peak-tflops "${peak:-0}" --only unet14

stage "done"
if ((${#failed[@]})); then printf 'FAILED: %s\n' "${failed[@]}"; exit 1; fi
echo "all GPU checks passed in $((SECONDS - started)) s"
