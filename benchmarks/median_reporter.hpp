// benchmarks/median_reporter.hpp - the console reporter of the benchmark binaries, which also
// hands each benchmark's result to the binary's summary table: its median over repetitions,
// or its single run when it has no repetitions.
//
// Naming convention of every benchmark binary (read by tools/bench_report.py, which turns the
// Google Benchmark JSON of all binaries into report/index.md and charts):
//   * a benchmark is registered as "<op>/<case>/t<threads>/<impl>", e.g. "sum/4Ki/t2/omp_simd",
//     "softmax/4096x4096/t1/bitexact", "index_add/4Mi->1Ki/t2/fixed_order": op and case are free
//     text without '/', threads is the thread count the implementation was given, impl names
//     one implementation. Google Benchmark's own suffixes (/min_time:, /iterations:,
//     /repeats:, /real_time) may follow; nothing else.
//   * main() calls bitexact_bench::declare_family(family, kinds) before running, naming the
//     family (the row of the report: "reduce", "gemm", ...) and the kind of each impl:
//       "bitexact"          one of our deterministic ops (more than one per op is fine:
//                           fixed_order and exact)
//       "nondeterministic"  a peer whose bits may change with threads, ISA, build or run
//                           (unordered SIMD/OpenMP reductions, BLAS, atomics, libm)
//       "deterministic"     a peer that gives the same bits in every configuration (a serial
//                           loop, Random123, cuRAND's host generator)
//       "floor"             a memory sweep of the same bytes: a bound, not a peer
//     A kind may be given per op as "<op>/<impl>" (it wins over the plain "<impl>" entry).
//     The kinds land in the JSON's "context" as "bitexact.family" and "bitexact.kind.<impl>",
//     with the machine: "bitexact.cpu" (model name) and "bitexact.isa" (the ISA bitexact runs).
//   * time is wall clock (UseRealTime): the report compares real_time of the median aggregate
//     (or of the single run). An impl that only runs at t1 (single-threaded by nature) is
//     compared at t2 with its t1 time, marked as such.
//   * BITEXACT_BENCH_QUICK=1 (the main job) asks for short runs: use repetitions(),
//     iterations() and min_time() below when registering, so one switch shortens every binary.
#pragma once
#include <benchmark/benchmark.h>

#include <bitexact/execution.hpp>

#include <algorithm>
#include <fstream>
#include <cstdlib>
#include <functional>
#include <initializer_list>
#include <iostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

namespace bitexact_bench {

/// The environment the peers run best in, set by re-executing the binary once (main's first
/// call; returns only when nothing had to change or execv failed):
///   OMP_WAIT_POLICY=passive  OpenMP's default spinning makes a master that shares the machine
///                            wait a whole scheduler slice for a descheduled worker;
///   OPENBLAS_CORETYPE        Debian's OpenBLAS 0.3.21 names CPUs newer than it "Prescott" (SSE3
///                            kernels, 4-7x slower): SkylakeX (its AVX-512 kernels) when the CPU
///                            has AVX-512 F/BW/DQ/VL, Haswell with AVX2 and FMA, else left to
///                            OpenBLAS. A variable already set is never changed.
inline void use_peer_environment(char** argv) {
  bool reexec = false;
  auto set_default = [&](const char* name, const char* value) {
    if (std::getenv(name) == nullptr && value != nullptr) {
      setenv(name, value, 1);
      reexec = true;
    }
  };
  set_default("OMP_WAIT_POLICY", "passive");
#if defined(__x86_64__) || defined(__i386__)
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  set_default("OPENBLAS_CORETYPE", avx512 ? "SkylakeX" : avx2 ? "Haswell" : nullptr);
#endif
  if (reexec) execv("/proc/self/exe", argv);  // only returns on failure: then run as we are
}

/// True when BITEXACT_BENCH_QUICK is set (and not "0"): short runs for the main job.
inline bool quick() {
  static const bool q = [] {
    const char* s = std::getenv("BITEXACT_BENCH_QUICK");
    return s != nullptr && *s != '\0' && std::string(s) != "0";
  }();
  return q;
}
/// Repetitions, fixed iteration counts and minimum times of a registration: as given, or the
/// quick mode's (at most 3 repetitions, so a median still drops one preempted run; 1 iteration;
/// at most 10 ms).
inline int repetitions(int full) { return quick() ? std::min(full, 3) : full; }
inline benchmark::IterationCount iterations(benchmark::IterationCount full) { return quick() ? 1 : full; }
inline double min_time(double full) { return quick() ? std::min(full, 0.01) : full; }

/// Names the binary's family and each implementation's kind (see the convention above).
inline void declare_family(const std::string& family,
                           std::initializer_list<std::pair<const char*, const char*>> kinds) {
  benchmark::AddCustomContext("bitexact.family", family);
  std::string cpu = "unknown CPU";
  std::ifstream info("/proc/cpuinfo");
  for (std::string line; std::getline(info, line);)
    if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos) {
      cpu = line.substr(line.find(':') + 1);
      cpu.erase(0, cpu.find_first_not_of(" \t"));
      break;
    }
  benchmark::AddCustomContext("bitexact.cpu", cpu);
  benchmark::AddCustomContext("bitexact.isa", bitexact::isa_name(bitexact::resolved_isa()));
  for (const auto& k : kinds) benchmark::AddCustomContext(std::string("bitexact.kind.") + k.first, k.second);
}

class median_reporter : public benchmark::ConsoleReporter {
 public:
  using Run = benchmark::BenchmarkReporter::Run;
  median_reporter(std::function<void(const Run&)> on_result, OutputOptions opts = OO_Tabular)
      : benchmark::ConsoleReporter(opts), on_result_(std::move(on_result)) {}

  /// Google Benchmark's context, without the bitexact.* entries (they are for the JSON) and
  /// with its "Library was built as DEBUG" warning replaced by what it means here: Debian's
  /// libbenchmark is built without NDEBUG, which only touches the library's bookkeeping between
  /// timed batches; the timed loops and bitexact's code are compiled in this binary.
  bool ReportContext(const Context& context) override {
    std::ostream& err = GetErrorStream();
    std::ostringstream captured;
    SetErrorStream(&captured);
    const bool ok = benchmark::ConsoleReporter::ReportContext(context);
    SetErrorStream(&err);
    std::istringstream lines(captured.str());
    std::string family;
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind("bitexact.family: ", 0) == 0) family = line.substr(17);
      if (line.rfind("bitexact.", 0) == 0) continue;
      if (line.find("Library was built as DEBUG") != std::string::npos) {
        err << "note: Google Benchmark's own library (Debian's libbenchmark) is a debug build; that touches only"
               " its bookkeeping between timed batches. The timed code (bitexact and its peers) is this binary: "
#if defined(__OPTIMIZE__) && defined(NDEBUG)
               "optimised, NDEBUG.\n";
#else
               "***WARNING*** NOT an optimised NDEBUG build: timings are not meaningful.\n";
#endif
        continue;
      }
      err << line << '\n';
    }
    if (!family.empty()) err << "family: " << family << (quick() ? " (quick run: short repetitions)" : "") << '\n';
    return ok;
  }

  void ReportRuns(const std::vector<Run>& runs) override {
    benchmark::ConsoleReporter::ReportRuns(runs);
    bool has_median = false;
    for (const Run& r : runs) has_median |= is_median(r);
    for (const Run& r : runs) {
      if (r.error_occurred) continue;
      if (has_median ? is_median(r) : r.run_type == Run::RT_Iteration) on_result_(r);
    }
  }

 private:
  static bool is_median(const Run& r) { return r.run_type == Run::RT_Aggregate && r.aggregate_name == "median"; }
  std::function<void(const Run&)> on_result_;
};

}  // namespace bitexact_bench
