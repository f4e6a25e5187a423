#!/bin/bash
# Bad inputs to onestep-cli give a non-zero exit and a clear message, and a
# failed run leaves nothing behind. Usage: test-cli-inputs.sh ONESTEP_CLI CASE_DIR
set -u
cli=$1
case_dir=$2
model=$case_dir/model
image=$case_dir/input.png
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

# expect_failure NAME PATTERN ARGS...: non-zero exit, stderr matching PATTERN,
# and nothing left in the work folder.
expect_failure() {
  local name=$1 pattern=$2
  shift 2
  local status=0
  "$cli" "$@" >"$work/stdout" 2>"$work/stderr" || status=$?
  local leftovers
  leftovers=$(ls -A "$work" | grep -v -x -e stdout -e stderr -e not-an-image.png -e existing)
  if [ "$status" -eq 0 ]; then
    echo "FAIL $name: exit status 0"; failures=$((failures + 1))
  elif [ "$status" -ge 128 ]; then
    echo "FAIL $name: crashed with status $status"; failures=$((failures + 1))
  elif ! grep -q -E -- "$pattern" "$work/stderr"; then
    echo "FAIL $name: message does not match '$pattern':"; cat "$work/stderr"
    failures=$((failures + 1))
  elif [ -n "$leftovers" ]; then
    echo "FAIL $name: left behind: $leftovers"; failures=$((failures + 1))
  else
    echo "ok   $name: $(tail -n 1 "$work/stderr")"
  fi
}

out=$work/out
cp "$case_dir/golden.json" "$work/not-an-image.png"
mkdir "$work/existing"

expect_failure "non-image file" "not-an-image.png" \
  generate --model "$model" --output "$out" "$work/not-an-image.png"
expect_failure "missing image" "no-such-image.png" \
  generate --model "$model" --output "$out" "$work/no-such-image.png"
expect_failure "zero frames" "--frames 0" \
  generate --model "$model" --output "$out" --frames 0 "$image"
expect_failure "too many frames" "frames 100000" \
  generate --model "$model" --output "$out" --frames 100000 "$image"
expect_failure "absurd size" "width|height" \
  generate --model "$model" --output "$out" --width 100000 --height 100000 "$image"
expect_failure "size not a multiple of the VAE factor" "multiples of 2" \
  generate --model "$model" --output "$out" --width 47 --height 32 "$image"
expect_failure "more memory than the machine has" "GiB" \
  generate --model "$model" --output "$out" --width 4096 --height 4096 --frames 1024 "$image"
expect_failure "zero steps" "--steps 0" \
  generate --model "$model" --output "$out" --steps 0 "$image"
expect_failure "crop position outside 0..1" "--crop-position" \
  generate --model "$model" --output "$out" --crop-position 1.5 "$image"
expect_failure "missing model" "no-such-model" \
  generate --model "$work/no-such-model" --output "$out" "$image"
expect_failure "unknown device" "--device tpu" \
  generate --model "$model" --output "$out" --device tpu "$image"
expect_failure "unknown output extension" "\\.avi.*\\.mp4.*\\.webm.*\\.gif.*PNG frames" \
  generate --model "$model" --output "$work/clip.avi" "$image"
expect_failure "existing output" "already exists" \
  generate --model "$model" --output "$work/existing" "$image"
expect_failure "info on a missing model" "no-such-model" info --model "$work/no-such-model"
expect_failure "unknown command" "unknown command" frobnicate
expect_failure "missing LoRA file" "no-such-lora.safetensors" \
  info --model "$model" --lora "$work/no-such-lora.safetensors:0.5"
expect_failure "missing replacement UNet" "no-such-unet.safetensors" \
  info --model "$model" --unet "$work/no-such-unet.safetensors"
# The model options themselves work: the model's own UNet file as the replacement.
if "$cli" info --model "$model" --unet "$model/unet/diffusion_pytorch_model.safetensors" \
    >"$work/stdout" 2>"$work/stderr" && grep -q "unet parameters: 1793078" "$work/stdout"; then
  echo "ok   info --unet with the model's own UNet"
else
  echo "FAIL info --unet:"; cat "$work/stdout" "$work/stderr"; failures=$((failures + 1))
fi

# Broken copies of the model, outside the work folder's leftover check.
broken=$(mktemp -d)
trap 'rm -rf "$work" "$broken"' EXIT
cp -r "$model" "$broken/no-vae" && rm "$broken/no-vae/vae/diffusion_pytorch_model.safetensors"
expect_failure "missing component weights" "vae weights missing.*fp16" info --model "$broken/no-vae"
cp -r "$model" "$broken/truncated"
unet_file=$broken/truncated/unet/diffusion_pytorch_model.safetensors
head -c 100000 "$unet_file" > "$unet_file.part" && mv "$unet_file.part" "$unet_file"
expect_failure "truncated weights" "diffusion_pytorch_model.safetensors" \
  generate --model "$broken/truncated" --output "$out" "$image"
# Why CUDA is not used reaches the user whole, however long: a file named
# libcuda.so.1 that is no library, in a deep folder, makes the driver's message long.
fake_driver=$broken/$(printf 'not-a-driver-%.0s' {1..12})
mkdir -p "$fake_driver" && echo "not a library" > "$fake_driver/libcuda.so.1"
# check_whole_reason NAME TEXT: TEXT names the fake library and ends the message.
check_whole_reason() {
  if grep -q -F "CUDA unavailable: no NVIDIA driver: libcuda.so.1 cannot be loaded ($fake_driver/libcuda.so.1: " <<<"$2" &&
      grep -q ')$' <<<"$2"; then
    echo "ok   $1 gives the whole reason CUDA is unavailable"
  else
    echo "FAIL $1: the reason CUDA is unavailable is cut: $2"; failures=$((failures + 1))
  fi
}
LD_LIBRARY_PATH=$fake_driver "$cli" info --model "$model" --device auto >"$work/stdout" 2>&1
check_whole_reason "info" "$(grep '^device: ' "$work/stdout")"
LD_LIBRARY_PATH=$fake_driver "$cli" generate --model "$model" --output "$broken/auto.gif" \
  --steps 1 --frames 1 --device auto --json "$image" >"$work/stdout" 2>/dev/null
check_whole_reason "generate --json" "$(sed -n 's/.*"device":"\([^"]*\)".*/\1/p' "$work/stdout")"
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "skip --device cuda without a GPU: this machine has one"
else
  expect_failure "--device cuda without a GPU" "cuda" \
    generate --model "$model" --output "$out" --device cuda "$image"
fi

[ "$failures" -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
