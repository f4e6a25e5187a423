#!/bin/bash
# The toy experiment of OSV's two stages (docs/training.md): Table 1's shape on
# what a CPU can train in tens of minutes.
#   1. clips: slow pans and zooms over the photographs of Debian's
#      gnome-backgrounds package (the last three images held out);
#   2. a teacher: the bundled tiny model's UNet trained in full with SVD's own
#      objective (train diffusion) on those clips;
#   3. OSV stage 1 (LGP) and stage 2 (ACD) on the teacher, with the tiny
#      DINOv2 of the osv-a test case as the discriminator's features;
#   4. on the held-out clips' first frames: the distance of each sampler's clip
#      to the teacher's 25-step guided clip and to the real clip.
# Needs: gnome-backgrounds, webp-pixbuf-loader, python3-pil, python3-numpy.
# Usage: tools/toy-osv/run.sh [ONESTEP_CLI] [WORK_DIR]   (prints a Markdown table)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cli=$(realpath "${1:-$root/_build/app/cli/onestep-cli}")
work=${2:-toy-osv-run}
base=$root/tests/data/golden/tiny-a/model
dinov2=$root/tests/data/golden/osv-a/dinov2
frames=4 width=48 height=32
teacher_steps=${TEACHER_STEPS:-400} stage1_steps=${STAGE1_STEPS:-100} stage2_steps=${STAGE2_STEPS:-60}
python=/usr/bin/python3 # Debian's, where python3-pil and python3-numpy install
mkdir -p "$work"
cd "$work"
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

mapfile -t images < <(ls /usr/share/backgrounds/gnome/*.webp | sort)
n=${#images[@]}
log "clips from $n images ($((n - 3)) for training, 3 held out)"
"$python" "$here/make_clips.py" train --frames $frames --width $width --height $height "${images[@]:0:n-3}"
"$python" "$here/make_clips.py" heldout --frames $frames --width $width --height $height \
  --stills stills --seed 1 "${images[@]:n-3}"
"$cli" train prepare --model "$base" --frames $frames --width $width --height $height train cache >&2

log "teacher: $teacher_steps steps of the denoising objective, every UNet tensor trained"
"$cli" train diffusion --model "$base" --data cache --out teacher --lora-targets '' --train '*' \
  --lr 3e-4 --weight-decay 0 --batch 2 --ema 0 --iterations "$teacher_steps" --save-every 1000 >&2
rm -rf teacher-model
cp -r "$base" teacher-model
cp teacher/final/unet.safetensors teacher-model/unet/diffusion_pytorch_model.safetensors

osv() { # RUN STAGE STEPS ARGS...
  local run=$1 stage=$2 steps=$3
  shift 3
  "$cli" train osv --stage "$stage" --model teacher-model --data cache --dinov2 "$dinov2" --out "$run" \
    --lora-rank 4 --lora-targets '*attn1.to_q,*attn1.to_k,*attn1.to_v,*attn1.to_out.0,*ff.net.2' \
    --lr-g 1e-4 --lr-d 1e-4 --iterations "$steps" --save-every 1000 "$@" >&2
}
log "OSV stage 1: $stage1_steps iterations"
osv stage1 1 "$stage1_steps"
log "OSV stage 2: $stage2_steps iterations"
osv stage2 2 "$stage2_steps" --from stage1 --train 'conv_in.*'

# Each sampler on each held-out still: NAME|generate options
samplers=(
  "teacher, 25 steps, CFG (reference)|--unet teacher-model/unet/diffusion_pytorch_model.safetensors --sampler euler --steps 25"
  "teacher, 1 step|--unet teacher-model/unet/diffusion_pytorch_model.safetensors --sampler euler --steps 1"
  "teacher, 2 steps|--unet teacher-model/unet/diffusion_pytorch_model.safetensors --sampler euler --steps 2"
  "teacher, cm 1 step|--unet teacher-model/unet/diffusion_pytorch_model.safetensors --sampler cm --steps 1"
  "teacher, cm 2 steps|--unet teacher-model/unet/diffusion_pytorch_model.safetensors --sampler cm --steps 2"
  "teacher, TTS 1 step (before OSV)|--unet teacher-model/unet/diffusion_pytorch_model.safetensors --sampler tts --steps 1"
  "student after stage 1, TTS 1 step|--unet stage1/final/unet.safetensors --sampler tts --steps 1"
  "student after stage 2, TTS 1 step|--unet stage2/final/unet.safetensors --sampler tts --steps 1"
)
log "sampling ${#samplers[@]} ways from $(ls stills | wc -l) held-out stills"
rm -rf samples
for still in stills/*.png; do
  clip=$(basename "$still" .png)
  for i in "${!samplers[@]}"; do
    mkdir -p "samples/$i"
    # shellcheck disable=SC2086
    "$cli" generate --model teacher-model ${samplers[$i]#*|} --frames $frames --width $width \
      --height $height --min-guidance 1 --max-guidance 3 --seed 1 --output "samples/$i/$clip" \
      "$still" >/dev/null 2>&1 || echo "sampler $i failed on $clip" >&2
  done
done

echo "| sampler | MSE to the teacher's 25 steps | PSNR (dB) | MSE to the real clip | PSNR (dB) |"
echo "|---|---|---|---|---|"
for i in "${!samplers[@]}"; do
  to_teacher=() to_real=()
  for still in stills/*.png; do
    clip=$(basename "$still" .png)
    [ -d "samples/$i/$clip" ] || continue
    to_teacher+=("$("$python" "$here/distance.py" "samples/$i/$clip" "samples/0/$clip")")
    to_real+=("$("$python" "$here/distance.py" "samples/$i/$clip" "heldout/$clip")")
  done
  mean() { printf '%s\n' "$@" | awk 'NF == 2 {m += $1; p += $2; n++} END {if (n) printf "%.5f | %.2f", m / n, p / n; else printf "- | -"}'; }
  echo "| ${samplers[$i]%%|*} | $(mean "${to_teacher[@]:-}") | $(mean "${to_real[@]:-}") |"
done
