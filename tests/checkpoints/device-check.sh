#!/bin/bash
# device-check.sh: the checkpoints suite on a GPU machine that has CUDA but not
# the application's build tools (meson's configure step needs GLib there):
# builds the engine parts it needs, the CUDA module and the tests directly
# with gcc and nvcc, then runs them. Without nvcc the CUDA test skips (77).
#
# Usage: tests/checkpoints/device-check.sh [OUT_DIR]
# Environment: NVCC (default /usr/local/cuda/bin/nvcc), CUDA_SRC (the CUDA
# module's sources, default engine/cuda), PKG_CONFIG_PATH for openblas,
# libcjson and lapacke.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=${1:-$(mktemp -d /tmp/onestep-ckpt-gpu-XXXXXX)}
mkdir -p "$out"
cd "$repo"
nvcc=${NVCC:-/usr/local/cuda/bin/nvcc}
cuda_src=${CUDA_SRC:-engine/cuda}
started=$SECONDS

if [[ -x $nvcc ]]; then
  cuda=$(dirname "$(dirname "$nvcc")")
  gencode=(-gencode arch=compute_90,code=sm_90 -gencode arch=compute_80,code=sm_80)
  export nvcc out cuda_src
  export gencode_flags="${gencode[*]}"
  ls "$cuda_src"/*.cu | xargs -P "$(nproc)" -I{} sh -c \
    '"$nvcc" $gencode_flags -std=c++20 -O3 -I"$cuda_src" -Iengine/core -Iengine/include \
       -Xcompiler -fPIC,-fvisibility=hidden -c {} -o "$out/$(basename {} .cu).o"'
  "$nvcc" "${gencode[@]}" -shared -cudart static -o "$out/libonestep-cuda.so" "$out"/*.o \
    -L"$cuda/lib64" -lcublas -Xlinker -rpath="$cuda/lib64"
  echo "CUDA module built in $((SECONDS - started)) s"
fi

printf 'const char os_cuda_build_root[] = "%s";\nconst char os_cuda_build_module[] = "%s";\n' \
  "$out" "$out/libonestep-cuda.so" >"$out/cuda_module_paths.c"
engine=(engine/core/*.c engine/cpu/*.c engine/models/*.c engine/samplers/*.c
        engine/checkpoints/*.c engine/preview/*.c engine/cuda/cuda_loader.c
        "$out/cuda_module_paths.c")
flags=(-std=c11 -D_GNU_SOURCE -O2 -fopenmp "-DONESTEP_CUDA_MODULE_DIR=\"$out\""
       -Iengine/include -Iengine/core -Iengine/cpu -Iengine/models -Iengine/samplers
       -Iengine/checkpoints -Iengine/preview -Itests/checkpoints)
read -r -a deps <<<"$(pkg-config --cflags --libs openblas libcjson lapacke)"
mkdir -p "$out/engine"
export out
export cflags="${flags[*]} $(pkg-config --cflags openblas libcjson lapacke)"
printf '%s\n' "${engine[@]}" | xargs -P "$(nproc)" -I{} sh -c \
  'gcc $cflags -c {} -o "$out/engine/$(echo {} | tr / _).o"'
rm -f "$out/libengine.a"
ar rcs "$out/libengine.a" "$out"/engine/*.o
t=tests/checkpoints
link() { gcc "${flags[@]}" -o "$out/$1" "${@:2}" "$out/libengine.a" "${deps[@]}" -lm -ldl; }
link test-samplers $t/test_samplers.c $t/test_util.c
link test-checkpoints $t/test_checkpoints.c $t/fixture.c $t/sgm_fixture.c $t/test_util.c
link test-preview $t/test_preview.c $t/test_util.c
link test-checkpoints-cuda $t/test_checkpoints_cuda.c $t/fixture.c $t/sgm_fixture.c $t/test_util.c
echo "built in $((SECONDS - started)) s"

model=tests/data/golden/tiny-a/model
status=0
"$out/test-samplers" || status=1
"$out/test-checkpoints" "$model" | grep -v '^  ' || status=1
"$out/test-preview" "$model" || status=1
ONESTEP_CUDA_MODULE="$out/libonestep-cuda.so" "$out/test-checkpoints-cuda" "$model" || {
  rc=$?
  [[ $rc == 77 ]] || status=1
}
exit $status
