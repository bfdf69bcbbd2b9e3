#!/usr/bin/env bash
# The main job (README's first command): build and run bitexact-audit (every family across
# threads, ISAs and emulated CUDA launch shapes), then a short run of every benchmark binary,
# each writing Google Benchmark JSON; tools/bench_report.py turns them into report/index.md plus
# charts and prints one screen: what agrees, and what determinism costs, op by op.
# Its own build folder (build-main/), every option it needs set on each configure, so it works in
# any order with .ci/test.sh (build/), any number of times.
#   BITEXACT_BENCH_QUICK=0 bash .ci/main.sh   full benchmark runs (~15 min on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/install-deps.sh
BUILD=${BUILD:-build-main}
REPORT=${REPORT:-$BUILD/report}
launcher=()
if command -v ccache >/dev/null; then
  export CCACHE_BASEDIR="$PWD"
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DBITEXACT_BUILD_TESTS=OFF -DBITEXACT_BUILD_BENCHMARKS=ON \
  -DBITEXACT_BUILD_TOOLS=ON -DBITEXACT_BUILD_EXAMPLES=OFF -DBITEXACT_ENABLE_CUDA=OFF -DBITEXACT_NATIVE=ON \
  "${launcher[@]}" ${BITEXACT_CMAKE_ARGS:-}
cmake --build "$BUILD" -j"$(nproc)"   # bitexact-audit and every benchmark binary
mkdir -p "$BUILD/json"
rm -f "$BUILD"/json/*.json
"$BUILD"/tools/bitexact-audit | tee "$BUILD/audit.txt"
export BITEXACT_BENCH_QUICK=${BITEXACT_BENCH_QUICK:-1}
for bench in "$BUILD"/benchmarks/*_bench; do
  [ -x "$bench" ] || continue
  name=$(basename "$bench")
  echo "== $name =="
  "$bench" --benchmark_out="$BUILD/json/$name.json" --benchmark_out_format=json
done
# PyTorch drop-in: the digits demo's table (stock torch's findings; bitexact's equal hashes over
# threads and ISAs, checkpoint/resume, reloaded predictions). Skipped with a message without Torch.
if [ -f python/bitexact/torch/libbitexact_torch.so ]; then
  /usr/bin/python3 examples/torch_digits.py | tee "$BUILD/torch_demo.txt"
else
  echo "PyTorch ops not built (no libtorch-dev): torch demo skipped"
fi
quick=(); [ "$BITEXACT_BENCH_QUICK" = 0 ] || quick=(--quick)
/usr/bin/python3 tools/bench_report.py "$BUILD/json" --out "$REPORT" --audit "$BUILD/audit.txt" --summary "${quick[@]}" \
  --command "bash .ci/main.sh (BITEXACT_BENCH_QUICK=$BITEXACT_BENCH_QUICK)"
