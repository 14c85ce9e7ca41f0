#!/bin/sh
# sh bench/ompCpuBackend.sh [OUT]   (default /tmp/freehold-omp; Linux x64, needs git, cmake, ninja, gcc with libgomp)
#
# An experiment for issue 14 (docs/threads.md, "An OpenMP CPU backend"): builds ggml's CPU backend with OpenMP from
# the llama.cpp source node-llama-cpp ships (its gitRelease.bundle, the same commit as its prebuilt binaries), and
# makes OUT/app/node_modules: this project's node_modules by symlink, except node-llama-cpp and its linux-x64
# binaries, copied, whose CPU backend variants are moved aside for the new one. Nothing in this checkout changes.
# node-llama-cpp's prebuilt backends have no OpenMP: every decode starts and joins its threads and they busy-wait at
# each barrier, which collapses when the cores are shared; OpenMP keeps its threads and yields.
#
#   cd OUT/app && THREADS=2 node --import tsx /path/to/freehold/bench/decodeCost.ts     # then the same from here
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-/tmp/freehold-omp}
NM=$(cd "$ROOT/node_modules" && pwd -P)
BINS=@node-llama-cpp/linux-x64/bins/linux-x64
mkdir -p "$OUT"
[ -d "$OUT/llama-src" ] || git -c advice.detachedHead=false clone -q "$NM/node-llama-cpp/llama/gitRelease.bundle" "$OUT/llama-src"

# The instruction sets this CPU has, as ggml's options (a backend loaded by score needs them named, not -march=native).
FLAGS=$(grep -m1 '^flags' /proc/cpuinfo)
on() { case " $FLAGS " in *" $1 "*) echo ON ;; *) echo OFF ;; esac; }
cmake -S "$OUT/llama-src" -B "$OUT/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON \
  -DGGML_BACKEND_DL=ON -DGGML_NATIVE=OFF -DGGML_OPENMP=ON \
  -DGGML_AVX="$(on avx)" -DGGML_F16C="$(on f16c)" -DGGML_FMA="$(on fma)" -DGGML_AVX2="$(on avx2)" \
  -DGGML_BMI2="$(on bmi2)" -DGGML_AVX512="$(on avx512f)" -DGGML_AVX512_VBMI="$(on avx512vbmi)" \
  -DGGML_AVX512_VNNI="$(on avx512_vnni)" -DGGML_AVX512_BF16="$(on avx512_bf16)" \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF \
  -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF >"$OUT/cmake.log"
cmake --build "$OUT/build" --target ggml-cpu -j"$(nproc)" >"$OUT/build.log"

APP="$OUT/app/node_modules"
rm -rf "$OUT/app" && mkdir -p "$APP/@node-llama-cpp"
for entry in "$NM"/* "$NM"/.bin; do
  name=$(basename "$entry")
  [ "$name" = node-llama-cpp ] || [ "$name" = @node-llama-cpp ] || ln -s "$entry" "$APP/$name"
done
cp -a "$NM/node-llama-cpp" "$APP/"
cp -a "$NM/@node-llama-cpp/linux-x64" "$APP/@node-llama-cpp/"
mkdir "$APP/$BINS/prebuilt-cpu-variants"
mv "$APP/$BINS"/libggml-cpu-*.so "$APP/$BINS/prebuilt-cpu-variants/"
cp "$OUT/build/bin/libggml-cpu.so" "$APP/$BINS/libggml-cpu-openmp.so"
# The backend asks for libggml-base.so.0 (its build's RUNPATH): point that at the copy node-llama-cpp loads, so that
# one ggml-base is in the process, not two.
ln -sfn "$APP/$BINS/libggml-base.so" "$OUT/build/bin/libggml-base.so.0"
printf '{"type":"module"}\n' >"$OUT/app/package.json"
echo "built: $APP/$BINS/libggml-cpu-openmp.so"
