#!/usr/bin/env bash
# The main job (README's first command): build and run bitexact-audit (every family across
# threads, ISAs and emulated CUDA launch shapes), then the short benchmarks of each family.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/install-deps.sh
BUILD=${BUILD:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DBITEXACT_BUILD_TESTS=OFF -DBITEXACT_ENABLE_CUDA=OFF
cmake --build "$BUILD" -j"$(nproc)" --target bitexact-audit random_bench reduce_bench scatter_bench
"$BUILD"/tools/bitexact-audit
"$BUILD"/benchmarks/random_bench
"$BUILD"/benchmarks/reduce_bench
if [ -x "$BUILD"/benchmarks/scatter_bench ]; then "$BUILD"/benchmarks/scatter_bench; fi
