// blas_shim_bench - libbitexact_blas.so (the deterministic BLAS for programs you cannot change)
// against OpenBLAS through the same CBLAS call, and against bitexact called directly, in one run.
//
// Implementations (same shapes, same thread count, same run):
//   shim      cblas_sgemm/dgemm/sgemv/sdot of libbitexact_blas.so, loaded with dlopen(RTLD_LOCAL)
//             (bitexact_blas_set_num_threads(T))
//   openblas  the same cblas_* of Debian's OpenBLAS linked into this binary
//             (openblas_set_num_threads(T); OPENBLAS_CORETYPE: bitexact_bench::use_peer_environment)
//   bitexact  bitexact::gemm / gemv / dot from the headers, compiled here with -march=native
// Shapes (row-major): sgemm and dgemm 1024^3; sgemm decode 16 x 4096 x 4096; sgemv 4096 x 4096;
// sdot 1Mi. The summary prints shim/openblas and shim/bitexact time ratios.
#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include <bitexact/gemm.hpp>
#include <bitexact/reduce.hpp>
#include <cblas.h>

#include "median_reporter.hpp"

extern "C" void openblas_set_num_threads(int);
extern "C" char* openblas_get_corename(void);

namespace {

struct shim_api {
  decltype(&cblas_sgemm) sgemm = nullptr;
  decltype(&cblas_dgemm) dgemm = nullptr;
  decltype(&cblas_sgemv) sgemv = nullptr;
  decltype(&cblas_sdot) sdot = nullptr;
  void (*set_threads)(int) = nullptr;
  const char* (*isa)() = nullptr;
} g_shim;

bool load_shim() {
  void* h = dlopen(BITEXACT_BLAS_PATH, RTLD_NOW | RTLD_LOCAL);
  if (h == nullptr) {
    std::fprintf(stderr, "cannot load %s: %s\n", BITEXACT_BLAS_PATH, dlerror());
    return false;
  }
  g_shim.sgemm = reinterpret_cast<decltype(&cblas_sgemm)>(dlsym(h, "cblas_sgemm"));
  g_shim.dgemm = reinterpret_cast<decltype(&cblas_dgemm)>(dlsym(h, "cblas_dgemm"));
  g_shim.sgemv = reinterpret_cast<decltype(&cblas_sgemv)>(dlsym(h, "cblas_sgemv"));
  g_shim.sdot = reinterpret_cast<decltype(&cblas_sdot)>(dlsym(h, "cblas_sdot"));
  g_shim.set_threads = reinterpret_cast<void (*)(int)>(dlsym(h, "bitexact_blas_set_num_threads"));
  g_shim.isa = reinterpret_cast<const char* (*)()>(dlsym(h, "bitexact_blas_isa"));
  return g_shim.sgemm && g_shim.dgemm && g_shim.sgemv && g_shim.sdot && g_shim.set_threads && g_shim.isa;
}

template <class T>
std::vector<T> filled(std::size_t n, unsigned seed) {
  std::vector<T> v(n);
  std::uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (auto& e : v) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    e = T(double(x >> 40) / double(1 << 24) - 0.5);
  }
  return v;
}

enum class impl { shim, openblas, bitexact };
const char* impl_name(impl i) { return i == impl::shim ? "shim" : i == impl::openblas ? "openblas" : "bitexact"; }

void set_threads(impl im, int t) {
  if (im == impl::shim) g_shim.set_threads(t);
  if (im == impl::openblas) openblas_set_num_threads(t);
}

template <class T>
void bench_gemm(benchmark::State& st, impl im, int threads, int m, int n, int k) {
  const auto a = filled<T>(std::size_t(m) * k, 1), b = filled<T>(std::size_t(k) * n, 2);
  std::vector<T> c(std::size_t(m) * n);
  set_threads(im, threads);
  for (auto _ : st) {
    if (im == impl::bitexact)
      bitexact::gemm<T>(bitexact::transpose::no, bitexact::transpose::no, m, n, k, T(1), a.data(), k, b.data(), n,
                        T(0), c.data(), n, bitexact::tier::fixed_order, bitexact::execution{threads});
    else if constexpr (std::is_same_v<T, float>)
      (im == impl::shim ? g_shim.sgemm : cblas_sgemm)(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f,
                                                      a.data(), k, b.data(), n, 0.0f, c.data(), n);
    else
      (im == impl::shim ? g_shim.dgemm : cblas_dgemm)(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0,
                                                      a.data(), k, b.data(), n, 0.0, c.data(), n);
    benchmark::DoNotOptimize(c.data());
  }
  st.counters["GFLOPs"] = benchmark::Counter(2.0 * m * n * k, benchmark::Counter::kIsIterationInvariantRate,
                                             benchmark::Counter::kIs1000);
}

void bench_sgemv(benchmark::State& st, impl im, int threads, int m, int n) {
  const auto a = filled<float>(std::size_t(m) * n, 3), x = filled<float>(n, 4);
  std::vector<float> y(m);
  set_threads(im, threads);
  for (auto _ : st) {
    if (im == impl::bitexact)
      bitexact::gemv<float>(bitexact::transpose::no, m, n, 1.0f, a.data(), n, x.data(), 0.0f, y.data(),
                            bitexact::tier::fixed_order, bitexact::execution{threads});
    else
      (im == impl::shim ? g_shim.sgemv : cblas_sgemv)(CblasRowMajor, CblasNoTrans, m, n, 1.0f, a.data(), n, x.data(),
                                                      1, 0.0f, y.data(), 1);
    benchmark::DoNotOptimize(y.data());
  }
}

void bench_sdot(benchmark::State& st, impl im, int threads, int n) {
  const auto x = filled<float>(n, 5), y = filled<float>(n, 6);
  set_threads(im, threads);
  for (auto _ : st) {
    float r = im == impl::bitexact
                  ? bitexact::dot(x.data(), y.data(), n, bitexact::tier::fixed_order, bitexact::execution{threads})
                  : (im == impl::shim ? g_shim.sdot : cblas_sdot)(n, x.data(), 1, y.data(), 1);
    benchmark::DoNotOptimize(r);
  }
}

std::map<std::string, double> g_time;  // "op/case/tT" -> impl times, keyed "op/case/tT/impl"

void capture(const bitexact_bench::median_reporter::Run& r) {
  g_time[r.run_name.function_name] = r.GetAdjustedRealTime();
}

void add(const std::string& name, std::function<void(benchmark::State&)> f) {
  auto* b = benchmark::RegisterBenchmark(name.c_str(), [f](benchmark::State& st) { f(st); });
  b->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(bitexact_bench::min_time(0.3));
  if (bitexact_bench::repetitions(3) > 1) b->Repetitions(3)->ReportAggregatesOnly(true);
}

std::vector<std::string> g_cases;

void register_all() {
  for (int t : {1, 2})
    for (impl im : {impl::shim, impl::openblas, impl::bitexact}) {
      const std::string ts = "/t" + std::to_string(t) + "/", in = impl_name(im);
      auto reg = [&](const std::string& c, std::function<void(benchmark::State&)> f) {
        add(c + ts + in, std::move(f));
        if (im == impl::shim) g_cases.push_back(c + ts);
      };
      reg("sgemm/1024x1024x1024", [=](benchmark::State& s) { bench_gemm<float>(s, im, t, 1024, 1024, 1024); });
      reg("dgemm/1024x1024x1024", [=](benchmark::State& s) { bench_gemm<double>(s, im, t, 1024, 1024, 1024); });
      reg("sgemm/16x4096x4096", [=](benchmark::State& s) { bench_gemm<float>(s, im, t, 16, 4096, 4096); });
      reg("sgemv/4096x4096", [=](benchmark::State& s) { bench_sgemv(s, im, t, 4096, 4096); });
      reg("sdot/1Mi", [=](benchmark::State& s) { bench_sdot(s, im, t, 1 << 20); });
    }
}

}  // namespace

int main(int argc, char** argv) {
  bitexact_bench::use_peer_environment(argv);
  if (!load_shim()) return 1;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  bitexact_bench::declare_family("blas", {{"shim", "bitexact"}, {"bitexact", "bitexact"}, {"openblas", "nondeterministic"}});
  register_all();
  bitexact_bench::median_reporter reporter(capture);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  std::printf("\nlibbitexact_blas ISA: %s; OpenBLAS core: %s\n", g_shim.isa(), openblas_get_corename());
  std::printf("%-28s %10s %10s %10s %14s %14s\n", "case", "shim ms", "openblas", "bitexact", "shim/openblas",
              "shim/bitexact");
  for (const auto& c : g_cases) {
    const double s = g_time[c + "shim"], o = g_time[c + "openblas"], b = g_time[c + "bitexact"];
    if (s <= 0 || o <= 0 || b <= 0) continue;
    std::printf("%-28s %10.3f %10.3f %10.3f %14.2f %14.2f\n", c.c_str(), s, o, b, s / o, s / b);
  }
  benchmark::Shutdown();
  return 0;
}
