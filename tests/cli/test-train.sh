#!/bin/bash
# onestep-cli train diffusion and train osv end to end on the tiny model: a
# cache made by train prepare from a frame folder, runs whose adapters
# generate loads and that change the clip, resumes that are bit-identical to
# an uninterrupted run, 1 vs 2 threads, OSV's two stages, and bad inputs
# (each a clear message).
# Usage: test-train.sh ONESTEP_CLI CASE_DIR DINOV2_DIR
set -u
cli=$1
case_dir=$2
dinov2=$3
model=$case_dir/model
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

check() { # NAME COMMAND...: passes when the command succeeds
  local name=$1
  shift
  if "$@"; then echo "ok   $name"; else echo "FAIL $name"; failures=$((failures + 1)); fi
}

expect_failure() { # NAME PATTERN ARGS...: non-zero exit (no crash), stderr matching PATTERN
  local name=$1 pattern=$2 status=0
  shift 2
  "$cli" "$@" >"$work/stdout" 2>"$work/stderr" || status=$?
  if [ "$status" -eq 0 ] || [ "$status" -ge 128 ]; then
    echo "FAIL $name: exit status $status"; failures=$((failures + 1))
  elif ! grep -q -E -- "$pattern" "$work/stderr"; then
    echo "FAIL $name: message does not match '$pattern':"; cat "$work/stderr"
    failures=$((failures + 1))
  else
    echo "ok   $name: $(tail -n 1 "$work/stderr")"
  fi
}

train() { # RUN ARGS...: a short run on the cache with the tiny settings
  local run=$1
  shift
  "$cli" train diffusion --model "$model" --data "$work/cache" --out "$run" --lora-rank 4 \
    --lora-targets '*attn1.to_q,*attn1.to_v,*ff.net.2' --train 'conv_in.*,*temporal_res_block.conv1.*' --lr 1e-3 --batch 2 \
    --seed 7 --device cpu "$@" >/dev/null 2>"$work/train.log"
}

# Training data: frames the engine itself makes (noise at 48x32), in two frame folders.
mkdir -p "$work/data"
for seed in 1 2; do
  "$cli" generate --model "$model" --frames 4 --width 48 --height 32 --steps 1 --seed $seed \
    --output "$work/data/clip$seed" "$case_dir/input.png" >/dev/null 2>&1
  rm -f "$work/data/clip$seed/settings.json"
done
check "prepare a cache from frame folders" \
  "$cli" train prepare --model "$model" --frames 2 --width 48 --height 32 "$work/data" "$work/cache"

# A run end to end, and its adapter in generate.
check "train 4 steps, sampling every 2" train "$work/a" --iterations 4 --sample-every 2 \
  --sample-image "$case_dir/input.png"
check "sample clips at steps 2 and 4" bash -c "ls '$work/a/samples' | grep -c '^step-00000[24]-input\.' | grep -qx 2"
check "no temporary student left" bash -c "! ls -A '$work/a/samples' | grep -q safetensors"
check "log.jsonl has a line per step" test "$(wc -l <"$work/a/log.jsonl")" -eq 4
check "the loss is a number" grep -q '"loss":[0-9]' "$work/a/log.jsonl"
check "final adapter written" test -s "$work/a/final/adapter/adapter_model.safetensors"
check "merged UNet written" test -s "$work/a/final/unet.safetensors"
"$cli" generate --model "$model" --seed 3 --steps 1 --output "$work/base" "$case_dir/input.png" >/dev/null 2>&1
check "generate --lora loads the adapter" "$cli" generate --model "$model" --seed 3 --steps 1 \
  --lora "$work/a/final/adapter/adapter_model.safetensors" --output "$work/lora" "$case_dir/input.png"
check "the adapter changes the clip" bash -c "! cmp -s '$work/base/frame-0001.png' '$work/lora/frame-0001.png'"
check "generate --unet loads the merged UNet" "$cli" generate --model "$model" --seed 3 --steps 1 \
  --unet "$work/a/final/unet.safetensors" --output "$work/merged" "$case_dir/input.png"

# Resume: 2 + 2 steps equal 4 steps, bit for bit; so do 1 and 2 threads.
check "train 2 steps" train "$work/b" --iterations 2
check "resume to 4 steps" "$cli" train diffusion --out "$work/b" --resume --iterations 4
check "resumed state equals the uninterrupted one" cmp "$work/a/checkpoint/state.safetensors" "$work/b/checkpoint/state.safetensors"
check "resumed adapter equals the uninterrupted one" cmp "$work/a/final/adapter/adapter_model.safetensors" "$work/b/final/adapter/adapter_model.safetensors"
check "the resumed log has a line per step" test "$(wc -l <"$work/b/log.jsonl")" -eq 4
check "train on 1 thread" train "$work/t1" --iterations 2 --threads 1
check "train on 2 threads" train "$work/t2" --iterations 2 --threads 2
check "1 and 2 threads give the same state" cmp "$work/t1/checkpoint/state.safetensors" "$work/t2/checkpoint/state.safetensors"

# A full disk while checkpointing: the save fails clearly, the previous checkpoint stays.
cp "$work/t1/checkpoint/state.safetensors" "$work/t1-before"
size=$(stat -c %s "$work/t1-before")
status=0
(trap '' XFSZ; ulimit -f $((size / 2048)); exec "$cli" train diffusion --out "$work/t1" --resume --iterations 3) \
  >/dev/null 2>"$work/stderr" || status=$?
check "a full disk fails the run" test "$status" -ne 0 -a "$status" -lt 128
check "a full disk is reported" grep -q "cannot save the checkpoint" "$work/stderr"
check "the previous checkpoint is intact" cmp "$work/t1-before" "$work/t1/checkpoint/state.safetensors"
check "no partial checkpoint left" bash -c "! ls '$work/t1' | grep -q -e tmp -e partial -e '\.new' -e '\.old'"

# Bad inputs.
expect_failure "rank 0" "rank 0" train diffusion --model "$model" --data "$work/cache" --out "$work/r0" --lora-rank 0
expect_failure "unknown glob" "'\\*nothing_here' matches nothing" train diffusion --model "$model" \
  --data "$work/cache" --out "$work/g" --lora-targets '*nothing_here'
expect_failure "missing data folder" "no such cache folder" train diffusion --model "$model" \
  --data "$work/none" --out "$work/m"
expect_failure "run folder exists" "already exists" train diffusion --model "$model" \
  --data "$work/cache" --out "$work/a"
cp -r "$work/cache" "$work/other-model"
sed -i 's/"vae_hash":[[:space:]]*"[0-9a-f]*"/"vae_hash": "0123456789abcdef"/' "$work/other-model/cache.json"
expect_failure "cache from another model" "another model" train diffusion --model "$model" \
  --data "$work/other-model" --out "$work/o"
cp -r "$work/cache" "$work/corrupt"
shard=$(ls "$work/corrupt"/shard-*.safetensors | head -n 1)
head -c 100 "$shard" >"$shard.cut" && mv "$shard.cut" "$shard"
expect_failure "corrupt cache shard" "shard-00000.safetensors" train diffusion --model "$model" \
  --data "$work/corrupt" --out "$work/c"
expect_failure "resume without a run" "cannot resume" train diffusion --out "$work/none" --resume

# OSV: stage 1, then stage 2 from it; a resumed stage 2 equals an uninterrupted one.
osv() { # RUN STAGE ARGS...
  local run=$1 stage=$2
  shift 2
  "$cli" train osv --stage "$stage" --model "$model" --data "$work/cache" --dinov2 "$dinov2" \
    --out "$run" --lora-rank 4 --lora-targets '*attn1.to_q,*attn1.to_v' --train 'conv_in.*' \
    --lr-g 1e-3 --lr-d 1e-3 --seed 3 --device cpu "$@" >/dev/null 2>"$work/osv.log"
}
check "OSV stage 1, 2 steps" osv "$work/s1" 1 --iterations 2
check "stage 1 logs both players" grep -q '"loss_d":.*"grid_index"' "$work/s1/log.jsonl"
check "stage 1 keeps the discriminator" test -s "$work/s1/checkpoint/disc.safetensors"
check "OSV stage 2 from stage 1, 3 steps" osv "$work/s2" 2 --from "$work/s1" --iterations 3 \
  --sample-every 3 --sample-image "$case_dir/input.png"
check "stage 2 samples its one-step student" bash -c "ls '$work/s2/samples' | grep -q '^step-000003-input\.'"
check "OSV stage 2, 1 step" osv "$work/s2b" 2 --from "$work/s1" --iterations 1
check "resume stage 2 to 3 steps" "$cli" train osv --out "$work/s2b" --resume --iterations 3
for f in state disc disc-state; do
  check "resumed stage 2 equals the uninterrupted one ($f)" \
    cmp "$work/s2/checkpoint/$f.safetensors" "$work/s2b/checkpoint/$f.safetensors"
done
check "the student runs in one step (TTS)" "$cli" generate --model "$model" --seed 3 --steps 1 \
  --sampler tts --lora "$work/s2/final/adapter/adapter_model.safetensors" --output "$work/student" \
  "$case_dir/input.png"
check "the student runs merged" "$cli" generate --model "$model" --seed 3 --steps 1 --sampler tts \
  --unet "$work/s2/final/unet.safetensors" --output "$work/student-merged" "$case_dir/input.png"
check "the student imports for the app's Model row" "$cli" models --models-dir "$work/models" \
  import "$work/s2/final/unet.safetensors" --base "$model" --id student --name "OSV student"
"$cli" generate --model "$model" --seed 3 --steps 1 --sampler tts --output "$work/base-tts" \
  "$case_dir/input.png" >/dev/null 2>&1
check "the student differs from the base model" \
  bash -c "! cmp -s '$work/base-tts/frame-0001.png' '$work/student/frame-0001.png'"
expect_failure "OSV without DINOv2" "--dinov2" train osv --stage 1 --model "$model" \
  --data "$work/cache" --out "$work/nd"
expect_failure "OSV stage 3" "--stage 1 or 2" train osv --stage 3 --model "$model" \
  --data "$work/cache" --dinov2 "$dinov2" --out "$work/s3"
expect_failure "stage 2 from a missing run" "cannot|No such" train osv --stage 2 --model "$model" \
  --data "$work/cache" --dinov2 "$dinov2" --from "$work/none" --out "$work/s2c"

echo "$failures failure(s)"
[ "$failures" -eq 0 ]
