#!/usr/bin/env bash
# CI stage of issue 14 (called by one line of .ci/run): libFuzzer harnesses and a
# ThreadSanitizer build of the tests that use the worker pool. CPU only, ~6 min on 2 cores.
#   FUZZ_SECONDS  time cap of each fuzzer (default 90; the fuzzers run nproc at a time)
#   FUZZ_SEED     libFuzzer's seed (default 1: CI replays the same mutations every time, so a
#                 run fails for the change under test, not for a new finding elsewhere; set
#                 FUZZ_SEED=0 for a time-based seed and a larger FUZZ_SCALE to explore)
#   FUZZ_SCALE    multiplies each fuzzer's run count (default 1: about 60 s each on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS=${FUZZ_SECONDS:-90}
FUZZ_SEED=${FUZZ_SEED:-1}
FUZZ_SCALE=${FUZZ_SCALE:-1}
JOBS=$(nproc)
start=$(date +%s)

echo "== libFuzzer harnesses (clang, -fsanitize=fuzzer,address,undefined), seed ${FUZZ_SEED}, x${FUZZ_SCALE} runs, cap ${FUZZ_SECONDS} s each =="
FUZZ_OUT=build-fuzz
mkdir -p "$FUZZ_OUT"
fuzzers="fuzz_random fuzz_reduce fuzz_scatter fuzz_exact_bytes fuzz_gemm fuzz_conv"
# Executions per fuzzer: about 60 s of each on this project's 2-core CI machine.
declare -A fuzz_runs=([fuzz_random]=50000 [fuzz_reduce]=400000 [fuzz_scatter]=200000
                      [fuzz_exact_bytes]=3000000 [fuzz_gemm]=12000 [fuzz_conv]=120000)
# Compiled (through ccache where present: a compile-and-link command is never cached) and linked
# apart. CCACHE_NOHASHDIR: with -g ccache hashes the working folder, and a clone at another path
# would miss; the cost is a wrong working folder in the debug info, which nothing here reads.
cc_launcher=""
command -v ccache >/dev/null && cc_launcher=ccache && export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
build_one() {
  local flags=(-std=c++17 -O1 -g -ffp-contract=off -march=native -fno-omit-frame-pointer
               -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all)
  $cc_launcher clang++ "${flags[@]}" -Iinclude -c "tests/fuzz/$1.cpp" -o "$FUZZ_OUT/$1.o"
  clang++ "${flags[@]}" "$FUZZ_OUT/$1.o" -o "$FUZZ_OUT/$1"
}
export -f build_one
export FUZZ_OUT cc_launcher
printf '%s\n' $fuzzers | xargs -P "$JOBS" -I{} bash -c 'build_one {}'
run_one() {
  # Work on a copy: the committed seed corpus stays as it is; findings land in $FUZZ_OUT.
  rm -rf "$FUZZ_OUT/corpus-$1" && cp -r "tests/fuzz/corpus/$1" "$FUZZ_OUT/corpus-$1"
  rc=0
  "$FUZZ_OUT/$1" -seed="$FUZZ_SEED" -runs="$2" -max_total_time="$FUZZ_SECONDS" -max_len=4096 -print_final_stats=1 \
    -artifact_prefix="$FUZZ_OUT/$1-" "$FUZZ_OUT/corpus-$1" > "$FUZZ_OUT/$1.log" 2>&1 || rc=$?
  echo "$rc" > "$FUZZ_OUT/$1.rc"
}
export -f run_one
export FUZZ_SECONDS FUZZ_SEED
# Each fuzzer is one process: run nproc of them at a time.
for f in $fuzzers; do echo "$f $(( ${fuzz_runs[$f]} * FUZZ_SCALE ))"; done | xargs -P "$JOBS" -L1 bash -c 'run_one "$0" "$1"'
failed=0
for f in $fuzzers; do
  rc=$(cat "$FUZZ_OUT/$f.rc")
  echo "-- $f: $(grep -E '^Done' "$FUZZ_OUT/$f.log" || echo 'no summary')"
  if [ "$rc" -ne 0 ]; then
    tail -40 "$FUZZ_OUT/$f.log"
    echo "$f found a failing input (exit $rc; the input is $FUZZ_OUT/$f-*)"
    failed=1
  fi
done
[ "$failed" = 0 ] || exit 1

echo "== ThreadSanitizer: the tests that use the worker pool =="
TSAN=build-tsan
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache) && export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
cmake -S . -B "$TSAN" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBITEXACT_ENABLE_CUDA=OFF \
  -DBITEXACT_BUILD_BENCHMARKS=OFF -DBITEXACT_BUILD_TOOLS=OFF \
  "-DCMAKE_CXX_FLAGS=-fsanitize=thread -fno-omit-frame-pointer" "-DBITEXACT_TEST_SUBSET=threads_test;axis_test" \
  "${launcher[@]}" > /dev/null
cmake --build "$TSAN" -j"$JOBS" --target bitexact_test_subset  # both at once (tests/CMakeLists.txt)
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1"
# libgomp is not built with TSan (its barriers look like races), and TSan does not support
# threads started in the child of a multi-threaded fork, so the OpenMP and fork cases stay in
# the ordinary runs.
# (mallinfo2 means nothing under TSan's allocator: the scratch case stays out too.)
"$TSAN"/tests/threads_test --gtest_filter=-PoolOpenMP.*:PoolFork.*:PoolConcurrency.ScratchOfEndedThreadsIsFreed
"$TSAN"/tests/axis_test
echo "hardening stage done in $(( $(date +%s) - start )) s"
