// gemm_exact_bench: the exact tier of GEMM (tier::exact) against fixed_order (bitexact::gemm's
// default tier) and OpenBLAS, in one binary, on normal(0,1) data and on adversarial data (entries
// spread over 2^-40 .. 2^0, so rows need more digits), square and decode shapes (m = 1, 4; n = k =
// 4096). The summary prints exact / fixed_order.
//
//   gemm_exact_bench [--benchmark_filter=...]   (BITEXACT_BENCH_SIZES=512,1024 by default)
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include <bitexact/gemm.hpp>

#include "median_reporter.hpp"

#if defined(BITEXACT_HAVE_OPENBLAS)
#include <cblas.h>
extern "C" void openblas_set_num_threads(int);
#endif

namespace {

using bitexact::transpose;
using bitexact::cpu::detail::gemm_exact_kernel;

std::uint64_t mix(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
double uni(std::uint64_t& s) { return static_cast<double>(mix(s += 0x9e3779b97f4a7c15ull) >> 11) * 0x1p-53; }

template <class T>
std::vector<T> make(std::size_t count, bool adversarial, std::uint64_t seed) {
  std::vector<T> v(count);
  for (auto& x : v) {
    if (adversarial) {
      const int e = -static_cast<int>(uni(seed) * 40);
      x = static_cast<T>(std::ldexp(1.0 + uni(seed), e) * (uni(seed) < 0.5 ? -1 : 1));
    } else {
      x = static_cast<T>((uni(seed) + uni(seed) + uni(seed) + uni(seed) - 2.0) * 1.7320508075688772);
    }
  }
  return v;
}

std::map<std::string, double>& times() {
  static std::map<std::string, double> t;
  return t;
}
std::map<std::string, double>& cpu_times() {  // of the calling thread: the whole work at t1
  static std::map<std::string, double> t;
  return t;
}

enum class who { fixed_order, exact_auto, exact_kernel, openblas };

/// One product: op(A) m x k, op(B) k x n (stored transposed when tb == yes), named by `shape`.
struct bench_shape {
  std::string name;
  std::size_t m, n, k;
  transpose tb;
};

template <class T>
void register_case(const bench_shape& sh, bool adv, int threads, who w,
                   gemm_exact_kernel kern = gemm_exact_kernel::loops) {
  const std::size_t m = sh.m, n = sh.n, k = sh.k;
  const transpose tb = sh.tb;
  const std::size_t ldb = tb == transpose::no ? n : k;
  std::string name = w == who::fixed_order  ? "fixed_order"
                     : w == who::openblas   ? "openblas"
                     : w == who::exact_auto ? "exact"
                                            : std::string("exact_") + gemm_exact_kernel_name(kern);
  name += std::string("/") + (sizeof(T) == 4 ? "sgemm" : "dgemm") + "/" + (adv ? "spread40" : "normal") + "/" +
          sh.name + "/t" + std::to_string(threads);
  benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) {
    const auto a = make<T>(m * k, adv, 1), b = make<T>(k * n, adv, 2);
    std::vector<T> c(m * n, T(0));
    for (auto _ : st) {
      switch (w) {
        case who::fixed_order:
          bitexact::gemm<T>(transpose::no, tb, m, n, k, T(1), a.data(), k, b.data(), ldb, T(0), c.data(), n,
                            bitexact::tier::fixed_order, bitexact::execution{threads, bitexact::isa::automatic});
          break;
        case who::exact_auto:
          bitexact::gemm<T>(transpose::no, tb, m, n, k, T(1), a.data(), k, b.data(), ldb, T(0), c.data(), n,
                            bitexact::tier::exact, bitexact::execution{threads, bitexact::isa::automatic});
          break;
        case who::exact_kernel:
          bitexact::cpu::detail::gemm_exact_with_kernel<T>(transpose::no, tb, m, n, k, T(1), a.data(), k, b.data(),
                                                           ldb, T(0), c.data(), n, threads, kern);
          break;
        case who::openblas:
#if defined(BITEXACT_HAVE_OPENBLAS)
          openblas_set_num_threads(threads);
          if constexpr (sizeof(T) == 4)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, tb == transpose::no ? CblasNoTrans : CblasTrans, m, n, k, 1.f,
                        a.data(), k, b.data(), ldb, 0.f, c.data(), n);
          else
            cblas_dgemm(CblasRowMajor, CblasNoTrans, tb == transpose::no ? CblasNoTrans : CblasTrans, m, n, k, 1.0,
                        a.data(), k, b.data(), ldb, 0.0, c.data(), n);
#endif
          break;
      }
      benchmark::DoNotOptimize(c.data());
      benchmark::ClobberMemory();
    }
    st.counters["GFLOP/s"] = benchmark::Counter(2.0 * m * n * k, benchmark::Counter::kIsIterationInvariantRate);
  })->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(0.3);
}

}  // namespace

int main(int argc, char** argv) {
  bitexact_bench::use_peer_environment(argv);  // the OpenBLAS peer on its AVX-512 kernels
  std::vector<std::size_t> sizes = {512, 1024};
  if (const char* s = std::getenv("BITEXACT_BENCH_SIZES")) {
    sizes.clear();
    for (const char* p = s; *p;) {
      sizes.push_back(std::strtoul(p, const_cast<char**>(&p), 10));
      if (*p == ',') ++p;
    }
  }
  const auto kernels = bitexact::cpu::detail::gemm_exact_kernels();
  for (int threads : {1, 2})
    for (std::size_t n : sizes)
      for (bool adv : {false, true}) {
        if (adv && n > 512) continue;
        const bench_shape sh{std::to_string(n), n, n, n, transpose::no};
        auto both = [&](auto tag) {
          using T = decltype(tag);
          register_case<T>(sh, adv, threads, who::fixed_order);
          register_case<T>(sh, adv, threads, who::exact_auto);
          for (auto k : kernels)
            if (k != gemm_exact_kernel::loops) register_case<T>(sh, adv, threads, who::exact_kernel, k);
#if defined(BITEXACT_HAVE_OPENBLAS)
          if (!adv) register_case<T>(sh, adv, threads, who::openblas);
#endif
        };
        both(float{});
        both(double{});
      }
  // Decode shapes (sgemm, m = 1 and 4, n = k = 4096; B as stored (nn) and transposed (nt, the
  // nn.Linear weight)): the exact tier's small-m path.
  for (int threads : {1, 2})
    for (std::size_t m : {std::size_t(1), std::size_t(4)})
      for (transpose tb : {transpose::no, transpose::yes}) {
        const bench_shape sh{"decode" + std::to_string(m) + (tb == transpose::no ? "_nn" : "_nt"), m, 4096, 4096, tb};
        register_case<float>(sh, false, threads, who::fixed_order);
        register_case<float>(sh, false, threads, who::exact_auto);
#if defined(BITEXACT_HAVE_OPENBLAS)
        register_case<float>(sh, false, threads, who::openblas);
#endif
      }
  benchmark::Initialize(&argc, argv);
  bitexact_bench::median_reporter rep([](const bitexact_bench::median_reporter::Run& r) {
    times()[r.run_name.str()] = r.GetAdjustedRealTime();
    cpu_times()[r.run_name.str()] = r.GetAdjustedCPUTime();
  });
  benchmark::RunSpecifiedBenchmarks(&rep);
  std::printf("\nexact / fixed_order (wall-time ratio, and at 1 thread the calling thread's CPU-time ratio, which a\n"
      "loaded machine distorts less; the goal is <= 3 for sgemm, <= 8 for dgemm on normal data):\n");
  for (const auto& kv : times()) {
    if (kv.first.rfind("exact/", 0) != 0) continue;
    const std::string rest = kv.first.substr(6);
    auto f = times().find("fixed_order/" + rest);
    auto o = times().find("openblas/" + rest);
    if (f == times().end()) continue;
    const std::string shown = rest.substr(0, rest.find("/min_time"));
    std::printf("  %-24s exact %8.2f ms  fixed_order %7.2f ms  ratio %5.2f", shown.c_str(), kv.second, f->second,
                kv.second / f->second);
    if (shown.size() > 3 && shown.compare(shown.size() - 3, 3, "/t1") == 0)
      std::printf("  (cpu-time ratio %5.2f)", cpu_times()[kv.first] / cpu_times()[f->first]);
    if (o != times().end()) std::printf("  (openblas %8.2f ms, exact/openblas %5.2f)", o->second, kv.second / o->second);
    std::printf("\n");
  }
  benchmark::Shutdown();
}
