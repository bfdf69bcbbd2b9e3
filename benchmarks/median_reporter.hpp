// benchmarks/median_reporter.hpp - the console reporter of the benchmark binaries, which also
// hands each benchmark's result to the binary's summary table: its median over repetitions,
// or its single run when it has no repetitions.
#pragma once
#include <benchmark/benchmark.h>

#include <functional>
#include <vector>

namespace bitexact_bench {

class median_reporter : public benchmark::ConsoleReporter {
 public:
  using Run = benchmark::BenchmarkReporter::Run;
  median_reporter(std::function<void(const Run&)> on_result, OutputOptions opts = OO_Tabular)
      : benchmark::ConsoleReporter(opts), on_result_(std::move(on_result)) {}

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
