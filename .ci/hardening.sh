#!/usr/bin/env bash
# CI stage of issue 14 (called by one line of .ci/run): libFuzzer harnesses and a
# ThreadSanitizer build of the tests that use the worker pool. CPU only, ~5 min on 2 cores.
#   FUZZ_SECONDS  run time of each fuzzer (default 25)
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS=${FUZZ_SECONDS:-25}
JOBS=$(nproc)
start=$(date +%s)

echo "== libFuzzer harnesses (clang, -fsanitize=fuzzer,address,undefined), ${FUZZ_SECONDS} s each =="
FUZZ_OUT=build-fuzz
mkdir -p "$FUZZ_OUT"
fuzzers="fuzz_random fuzz_reduce fuzz_scatter fuzz_exact_bytes fuzz_gemm fuzz_conv"
build_one() {
  clang++ -std=c++17 -O1 -g -ffp-contract=off -march=native -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -Iinclude "tests/fuzz/$1.cpp" -o "$FUZZ_OUT/$1"
}
export -f build_one
export FUZZ_OUT
printf '%s\n' $fuzzers | xargs -P "$JOBS" -I{} bash -c 'build_one {}'
for f in $fuzzers; do
  # Work on a copy: the committed seed corpus stays as it is; findings land in $FUZZ_OUT.
  rm -rf "$FUZZ_OUT/corpus-$f" && cp -r "tests/fuzz/corpus/$f" "$FUZZ_OUT/corpus-$f"
  echo "-- $f"
  rc=0
  "$FUZZ_OUT/$f" -max_total_time="$FUZZ_SECONDS" -max_len=4096 -print_final_stats=1 \
    -artifact_prefix="$FUZZ_OUT/$f-" "$FUZZ_OUT/corpus-$f" > "$FUZZ_OUT/$f.log" 2>&1 || rc=$?
  grep -E "^Done|stat::number_of_executed_units" "$FUZZ_OUT/$f.log" || true
  if [ "$rc" -ne 0 ]; then
    tail -40 "$FUZZ_OUT/$f.log"
    echo "$f found a failing input (exit $rc; the input is $FUZZ_OUT/$f-*)"
    exit 1
  fi
done

echo "== ThreadSanitizer: the tests that use the worker pool =="
TSAN=build-tsan
cmake -S . -B "$TSAN" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBITEXACT_ENABLE_CUDA=OFF \
  -DBITEXACT_BUILD_BENCHMARKS=OFF -DBITEXACT_BUILD_TOOLS=OFF \
  "-DCMAKE_CXX_FLAGS=-fsanitize=thread -fno-omit-frame-pointer" > /dev/null
cmake --build "$TSAN" -j"$JOBS" --target threads_test axis_test
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1"
# libgomp is not built with TSan (its barriers look like races), and TSan does not support
# threads started in the child of a multi-threaded fork, so the OpenMP and fork cases stay in
# the ordinary runs.
# (mallinfo2 means nothing under TSan's allocator: the scratch case stays out too.)
"$TSAN"/tests/threads_test --gtest_filter=-PoolOpenMP.*:PoolFork.*:PoolConcurrency.ScratchOfEndedThreadsIsFreed
"$TSAN"/tests/axis_test
echo "hardening stage done in $(( $(date +%s) - start )) s"
