#!/usr/bin/env bash
# The full test suite (README's second command): configure, build everything (CUDA headers
# compiled by nvcc for sm_80 and sm_90 when nvcc is present), run every CTest test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/install-deps.sh
export PATH=/usr/local/cuda/bin:$PATH
BUILD=${BUILD:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release ${BITEXACT_CMAKE_ARGS:-}
cmake --build "$BUILD" -j"$(nproc)"
ctest --test-dir "$BUILD" -j"$(nproc)" --output-on-failure
