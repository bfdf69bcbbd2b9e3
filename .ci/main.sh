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
# PyTorch drop-in: the digits demo's table (stock torch's findings; bitexact's equal hashes over
# threads and ISAs, checkpoint/resume, reloaded predictions). Skipped with a message without Torch.
if cmake --build "$BUILD" -j"$(nproc)" --target bitexact_torch 2>/dev/null; then
  /usr/bin/python3 examples/torch_digits.py
else
  echo "PyTorch ops not built (no libtorch-dev): torch demo skipped"
fi
