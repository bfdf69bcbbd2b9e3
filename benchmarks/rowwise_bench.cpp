// rowwise_bench - bitexact softmax and RMSNorm against straightforward non-deterministic peers.
//
// Matrix: 4096 x 4096 floats (64 MiB in, 64 MiB out), 1 and 2 threads (rows split over
// bitexact's own worker pool for every implementation, so all pay the same dispatch cost).
//   bitexact   bitexact::softmax / bitexact::rms_norm (best ISA of build and CPU)
//   peer       the loop a framework would write: row max, libm exp on floats (vectorised by the
//              compiler where it can), a float sum in 32 interleaved partial sums (an unordered
//              reduction: its bits depend on the vector width chosen), y = e * (1/s);
//              RMSNorm: sum of squares the same way, y = x * inv * w
//   libmvec    softmax only: the peer with glibc's vector expf (_ZGVeN16v_expf on AVX-512,
//              _ZGVdN8v_expf on AVX2), what a fast-math build of the peer would call; built
//              when libmvec is found (BITEXACT_HAVE_LIBMVEC)
//   row_sum    bitexact::row_sum vs a per-row sum in 32 interleaved partial sums
//   col_sum    bitexact::col_sum vs the plain loop acc[c] += x[r, c] (column blocks per thread)
//   argmin     bitexact::argmin over all 16M values vs std::min_element (per-thread halves,
//              then the lowest index of the least value)
//   copy       std::memcpy of the same bytes (the memory floor: read 64 MiB, write 64 MiB)
// After the Google Benchmark output a summary prints ms per call (median of the repetitions),
// GB/s (input + output bytes for softmax/RMSNorm, input bytes for the reductions; the copy
// column is read + write), and the bitexact/peer time ratio (below 1: bitexact is faster).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include <bitexact/minmax.hpp>
#include <bitexact/rowwise.hpp>

#include "median_reporter.hpp"

#if defined(BITEXACT_HAVE_LIBMVEC) && (defined(__AVX512F__) || defined(__AVX2__))
#include <immintrin.h>
#define ROWWISE_BENCH_LIBMVEC 1
extern "C" {
#if defined(__AVX512F__)
__m512 _ZGVeN16v_expf(__m512);
#else
__m256 _ZGVdN8v_expf(__m256);
#endif
}
#endif

namespace {

constexpr std::size_t kRows = 4096, kCols = 4096;

struct buffers {
  std::vector<float> x, w, y, sums;
  buffers() : x(kRows * kCols), w(kCols), y(kRows * kCols), sums(kRows) {
    std::uint64_t s = 12345;
    for (auto& v : x) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      v = static_cast<float>(static_cast<double>(s >> 11) * 0x1p-53 * 16.0 - 8.0);
    }
    for (std::size_t i = 0; i < kCols; ++i) w[i] = 0.5f + static_cast<float>(i % 7) * 0.1f;
    std::fill(y.begin(), y.end(), 0.0f);
  }
};
buffers& bufs() {
  static buffers b;
  return b;
}

template <class Row>
void peer_rows(int threads, Row row) {
  bitexact::cpu::parallel_chunks(threads, bitexact::cpu::canonical_chunks{kRows, 16},
                                 [&](std::uint64_t b, std::uint64_t e) {
                                   for (std::uint64_t r = b; r < e; ++r) row(static_cast<std::size_t>(r));
                                 });
}

/// An unordered SIMD-style sum: 32 interleaved partial sums (the compiler keeps them in vector
/// registers), combined pairwise. Its bits depend on that partial count, as a framework's
/// vector width would make them depend on the ISA.
float sum_unordered(const float* v, std::size_t n) {
  constexpr std::size_t P = 32;
  float p[P] = {};
  const std::size_t blocks = n / P;
  for (std::size_t j = 0; j < blocks; ++j)
    for (std::size_t k = 0; k < P; ++k) p[k] += v[P * j + k];
  for (std::size_t i = P * blocks; i < n; ++i) p[0] += v[i];
  for (std::size_t w = P / 2; w >= 1; w /= 2)
    for (std::size_t k = 0; k < w; ++k) p[k] += p[k + w];
  return p[0];
}

void peer_softmax(int threads) {
  auto& b = bufs();
  peer_rows(threads, [&](std::size_t r) {
    const float* x = b.x.data() + r * kCols;
    float* y = b.y.data() + r * kCols;
    float m = x[0];
    for (std::size_t i = 1; i < kCols; ++i) m = std::max(m, x[i]);
    for (std::size_t i = 0; i < kCols; ++i) y[i] = std::exp(x[i] - m);
    const float inv = 1.0f / sum_unordered(y, kCols);
    for (std::size_t i = 0; i < kCols; ++i) y[i] *= inv;
  });
}

#ifdef ROWWISE_BENCH_LIBMVEC
void libmvec_softmax(int threads) {
  auto& b = bufs();
  peer_rows(threads, [&](std::size_t r) {
    const float* x = b.x.data() + r * kCols;
    float* y = b.y.data() + r * kCols;
    float m = x[0];
    for (std::size_t i = 1; i < kCols; ++i) m = std::max(m, x[i]);
#if defined(__AVX512F__)
    const __m512 vm = _mm512_set1_ps(m);
    for (std::size_t i = 0; i < kCols; i += 16)
      _mm512_storeu_ps(y + i, _ZGVeN16v_expf(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm)));
#else
    const __m256 vm = _mm256_set1_ps(m);
    for (std::size_t i = 0; i < kCols; i += 8)
      _mm256_storeu_ps(y + i, _ZGVdN8v_expf(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm)));
#endif
    const float inv = 1.0f / sum_unordered(y, kCols);
    for (std::size_t i = 0; i < kCols; ++i) y[i] *= inv;
  });
}
#endif

void peer_rms_norm(int threads) {
  auto& b = bufs();
  peer_rows(threads, [&](std::size_t r) {
    const float* x = b.x.data() + r * kCols;
    float* y = b.y.data() + r * kCols;
    for (std::size_t i = 0; i < kCols; ++i) y[i] = x[i] * x[i];
    const float inv = 1.0f / std::sqrt(sum_unordered(y, kCols) / kCols + 1e-6f);
    for (std::size_t i = 0; i < kCols; ++i) y[i] = x[i] * inv * b.w[i];
  });
}

void peer_row_sum(int threads) {
  auto& b = bufs();
  peer_rows(threads, [&](std::size_t r) { b.sums[r] = sum_unordered(b.x.data() + r * kCols, kCols); });
}

void peer_col_sum(int threads) {
  auto& b = bufs();
  bitexact::cpu::parallel_chunks(threads, bitexact::cpu::canonical_chunks{kCols, 256},
                                 [&](std::uint64_t c0, std::uint64_t c1) {
                                   float* acc = b.sums.data();
                                   for (std::uint64_t c = c0; c < c1; ++c) acc[c] = 0.0f;
                                   for (std::size_t r = 0; r < kRows; ++r) {
                                     const float* row = b.x.data() + r * kCols;
                                     for (std::uint64_t c = c0; c < c1; ++c) acc[c] += row[c];
                                   }
                                 });
}

std::size_t peer_argmin(int threads) {
  auto& b = bufs();
  const std::size_t n = b.x.size(), per = (n + threads - 1) / threads;
  std::vector<std::size_t> best(static_cast<std::size_t>(threads), n);
  bitexact::cpu::parallel_chunks(threads, bitexact::cpu::canonical_chunks{n, per},
                                 [&](std::uint64_t i0, std::uint64_t i1) {
                                   best[i0 / per] = static_cast<std::size_t>(
                                       std::min_element(b.x.begin() + i0, b.x.begin() + i1) - b.x.begin());
                                 });
  std::size_t k = best[0];
  for (std::size_t j : best)
    if (j < n && b.x[j] < b.x[k]) k = j;
  return k;
}

void copy_sweep(int threads) {
  auto& b = bufs();
  bitexact::cpu::parallel_chunks(threads, bitexact::cpu::canonical_chunks{kRows, 16},
                                 [&](std::uint64_t r0, std::uint64_t r1) {
                                   std::memcpy(b.y.data() + r0 * kCols, b.x.data() + r0 * kCols,
                                               (r1 - r0) * kCols * sizeof(float));
                                 });
}

void BM_softmax_bitexact(benchmark::State& st, int threads) {
  auto& b = bufs();
  const bitexact::execution e{threads, bitexact::isa::automatic};
  for (auto _ : st) {
    bitexact::softmax(b.x.data(), kRows, kCols, kCols, b.y.data(), kCols, e);
    benchmark::DoNotOptimize(b.y.data());
  }
}
void BM_softmax_peer(benchmark::State& st, int threads) {
  for (auto _ : st) {
    peer_softmax(threads);
    benchmark::DoNotOptimize(bufs().y.data());
  }
}
#ifdef ROWWISE_BENCH_LIBMVEC
void BM_softmax_libmvec(benchmark::State& st, int threads) {
  for (auto _ : st) {
    libmvec_softmax(threads);
    benchmark::DoNotOptimize(bufs().y.data());
  }
}
#endif
void BM_rms_norm_bitexact(benchmark::State& st, int threads) {
  auto& b = bufs();
  const bitexact::execution e{threads, bitexact::isa::automatic};
  for (auto _ : st) {
    bitexact::rms_norm(b.x.data(), kRows, kCols, kCols, b.w.data(), 1e-6, b.y.data(), kCols, e);
    benchmark::DoNotOptimize(b.y.data());
  }
}
void BM_rms_norm_peer(benchmark::State& st, int threads) {
  for (auto _ : st) {
    peer_rms_norm(threads);
    benchmark::DoNotOptimize(bufs().y.data());
  }
}
void BM_row_sum_bitexact(benchmark::State& st, int threads) {
  auto& b = bufs();
  const bitexact::execution e{threads, bitexact::isa::automatic};
  for (auto _ : st) {
    bitexact::row_sum(b.x.data(), kRows, kCols, kCols, b.sums.data(), bitexact::tier::fixed_order, e);
    benchmark::DoNotOptimize(b.sums.data());
  }
}
void BM_row_sum_peer(benchmark::State& st, int threads) {
  for (auto _ : st) {
    peer_row_sum(threads);
    benchmark::DoNotOptimize(bufs().sums.data());
  }
}
void BM_col_sum_bitexact(benchmark::State& st, int threads) {
  auto& b = bufs();
  const bitexact::execution e{threads, bitexact::isa::automatic};
  for (auto _ : st) {
    bitexact::col_sum(b.x.data(), kRows, kCols, kCols, b.sums.data(), bitexact::tier::fixed_order, e);
    benchmark::DoNotOptimize(b.sums.data());
  }
}
void BM_col_sum_peer(benchmark::State& st, int threads) {
  for (auto _ : st) {
    peer_col_sum(threads);
    benchmark::DoNotOptimize(bufs().sums.data());
  }
}
void BM_argmin_bitexact(benchmark::State& st, int threads) {
  auto& b = bufs();
  const bitexact::execution e{threads, bitexact::isa::automatic};
  for (auto _ : st) benchmark::DoNotOptimize(bitexact::argmin(b.x.data(), b.x.size(), e));
}
void BM_argmin_peer(benchmark::State& st, int threads) {
  for (auto _ : st) benchmark::DoNotOptimize(peer_argmin(threads));
}
void BM_copy(benchmark::State& st, int threads) {
  for (auto _ : st) {
    copy_sweep(threads);
    benchmark::DoNotOptimize(bufs().y.data());
  }
}

/// "<op>/4096x4096/t<threads>/<impl>" (the naming convention of benchmarks/median_reporter.hpp).
std::string bench_name(const std::string& op, int threads, const char* impl) {
  return op + "/" + std::to_string(kRows) + "x" + std::to_string(kCols) + "/t" + std::to_string(threads) + "/" + impl;
}

/// Seconds per iteration of every benchmark (median over repetitions), by run name.
struct capture {
  std::map<std::string, double> seconds;
  void operator()(const bitexact_bench::median_reporter::Run& r) {
    if (r.iterations > 0) seconds[r.run_name.function_name] = r.real_accumulated_time / static_cast<double>(r.iterations);
  }
};

void print_summary(const capture& c) {
  const double in_bytes = 1.0 * kRows * kCols * sizeof(float);
  std::printf("\nSummary: %zu x %zu floats, wall clock, median; bitexact ISA %s\n", kRows, kCols,
              bitexact::isa_name(bitexact::resolved_isa()));
  std::printf("%-10s %-8s %12s %10s %12s %10s %14s %12s %16s %12s\n", "op", "threads", "bitexact ms", "GB/s",
              "peer ms", "GB/s", "bitexact/peer", "libmvec ms", "bitexact/libmvec", "copy GB/s");
  for (const char* op : {"softmax", "rms_norm", "row_sum", "col_sum", "argmin"})
    for (int t : {1, 2}) {
      // GB/s of the bytes moved: input + output for the row-wise ops, input only otherwise.
      const double bytes = in_bytes * (std::string(op) == "softmax" || std::string(op) == "rms_norm" ? 2.0 : 1.0);
      auto get = [&](const std::string& o, const char* impl) {  // "<op>/<case>/t<T>/<impl>" -> seconds
        const auto it = c.seconds.find(bench_name(o, t, impl));
        return it == c.seconds.end() ? 0.0 : it->second;
      };
      const double bx = get(op, "bitexact");
      const double pe = get(op, "peer");
      const double cp = get("copy", "memcpy");
      const double lv = get(op, "libmvec");  // 0: not run
      char lv_ms[32] = "-", lv_ratio[32] = "-";
      if (lv > 0) {
        std::snprintf(lv_ms, sizeof lv_ms, "%.2f", lv * 1e3);
        std::snprintf(lv_ratio, sizeof lv_ratio, "%.2f", bx / lv);
      }
      std::printf("%-10s %-8d %12.2f %10.2f %12.2f %10.2f %14.2f %12s %16s %12.2f\n", op, t, bx * 1e3,
                  bytes / bx / 1e9, pe * 1e3, bytes / pe / 1e9, pe > 0 ? bx / pe : 0.0, lv_ms, lv_ratio,
                  cp > 0 ? 2.0 * in_bytes / cp / 1e9 : 0.0);
    }
}

}  // namespace

int main(int argc, char** argv) {
  bufs();
  // Names follow benchmarks/median_reporter.hpp: "<op>/<rows>x<cols>/t<threads>/<impl>".
  auto reg = [](const char* op, const char* impl, void (*fn)(benchmark::State&, int)) {
    for (int t : {1, 2})
      benchmark::RegisterBenchmark(bench_name(op, t, impl).c_str(), fn, t)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond)
          ->Repetitions(bitexact_bench::repetitions(3))
          ->MinTime(bitexact_bench::min_time(0.5))  // 0.5 s: Google Benchmark's default
          ->ReportAggregatesOnly(true);
  };
  reg("softmax", "bitexact", BM_softmax_bitexact);
  reg("softmax", "peer", BM_softmax_peer);
#ifdef ROWWISE_BENCH_LIBMVEC
  reg("softmax", "libmvec", BM_softmax_libmvec);
#endif
  reg("rms_norm", "bitexact", BM_rms_norm_bitexact);
  reg("rms_norm", "peer", BM_rms_norm_peer);
  reg("row_sum", "bitexact", BM_row_sum_bitexact);
  reg("row_sum", "peer", BM_row_sum_peer);
  reg("col_sum", "bitexact", BM_col_sum_bitexact);
  reg("col_sum", "peer", BM_col_sum_peer);
  reg("argmin", "bitexact", BM_argmin_bitexact);
  reg("argmin", "peer", BM_argmin_peer);
  reg("copy", "memcpy", BM_copy);
  // The softmax/RMSNorm/row_sum peers reduce in an order that depends on the vector width the
  // compiler picked, and libmvec's expf on glibc and the ISA; the column-sum loop and the
  // argmin peer give the same answer on any split (deterministic peers).
  bitexact_bench::declare_family("rowwise", {{"bitexact", "bitexact"}, {"peer", "nondeterministic"},
                                             {"libmvec", "nondeterministic"}, {"col_sum/peer", "deterministic"},
                                             {"argmin/peer", "deterministic"}, {"memcpy", "floor"}});
  benchmark::Initialize(&argc, argv);
  capture c;
  bitexact_bench::median_reporter reporter([&c](const bitexact_bench::median_reporter::Run& r) { c(r); });
  benchmark::RunSpecifiedBenchmarks(&reporter);
  print_summary(c);
  benchmark::Shutdown();
  return 0;
}
