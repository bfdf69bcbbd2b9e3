#!/usr/bin/env bash
# The full test suite (README's second command): configure, build everything (CUDA headers
# compiled by nvcc for sm_80 and sm_90 when nvcc is present), run every CTest test.
# Its own build folder (build/), every option it needs set on each configure, so it works in any
# order with .ci/main.sh (build-main/), any number of times; ctest fails when it finds no test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/install-deps.sh
export PATH=/usr/local/cuda/bin:$PATH
BUILD=${BUILD:-build}
launcher=()
if command -v ccache >/dev/null; then
  export CCACHE_BASEDIR="$PWD"  # hits across clones in other folders
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cuda=OFF; command -v nvcc >/dev/null && cuda=ON
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DBITEXACT_BUILD_TESTS=ON -DBITEXACT_ENABLE_CUDA=$cuda \
  -DBITEXACT_BUILD_BENCHMARKS=ON -DBITEXACT_BUILD_TOOLS=ON -DBITEXACT_BUILD_EXAMPLES=ON \
  -DBITEXACT_NATIVE=ON "${launcher[@]}" ${BITEXACT_CMAKE_ARGS:-}
cmake --build "$BUILD" -j"$(nproc)"
ctest --test-dir "$BUILD" -j"$(nproc)" --output-on-failure --no-tests=error
