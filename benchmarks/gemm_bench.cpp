// gemm_bench - bitexact's fixed_order GEMM against OpenBLAS and oneDNN, in one run.
//
// Implementations (same shapes, same thread count, same run):
//   bitexact   bitexact::gemm / gemm_batched / linear_forward, tier::fixed_order, best ISA
//   bx_bf16    bitexact::gemm with bfloat16 A and B (float C); its peer is bitexact's float path
//   openblas   cblas_sgemm / cblas_dgemm (openblas_set_num_threads(T)); bmm as a loop of calls
//   onednn     dnnl_sgemm (row-major, OpenMP: omp_set_num_threads(T)); float only
//   naive      a plain serial triple loop (i, j, k; mul then add), decode shapes only
//   sweep      decode shapes: a plain read of B's bytes (a sum of its 64-bit words, T threads, each
//              a contiguous part): the memory bandwidth the streamed decode products can reach.
//              The summary's second table gives each decode row in GB/s of B (n * k * sizeof(T)
//              bytes per product) against it.
// Shapes (m x n x k, row-major, "nt" = B transposed as nn.Linear's weight):
//   1024^3, 4096x1024x1024, 2048x4096x4096 (the transformer shape at the size the box allows),
//   decode m = 1, 4, 16 with n = k = 4096 (nn and nt), bmm 64 x (128x128x64) (attention scores),
//   linear forward 512 x 1024 -> 4096. --short (or BITEXACT_BENCH_SHORT=1): 1024^3, decode 1 and
//   16, bmm, float only.
// Peak: per core, 2 FMA units x 16 floats (8 doubles) x 2 flops x the clock, the clock measured
// here with chains of dependent imul (3 cycles) and add reg,reg (1 cycle); "2 FMA units" is assumed (Xeon
// Gold/Platinum with AVX-512), so the fraction of peak is printed as an estimate.
// Debian's OpenBLAS 0.3.21 detects this KVM guest's CPU as "Prescott" (SSE3 kernels, 5-7x slower);
// the binary re-executes itself with OPENBLAS_CORETYPE set (bitexact_bench::use_peer_environment)
// unless it is, so the peer runs its AVX-512 kernels (the name OpenBLAS picked is printed), and
// with OMP_WAIT_POLICY=passive likewise. --cpu-time: rates from the calling thread's CPU time
// (for 1-thread runs on a loaded machine, where wall-clock time mostly measures other work).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <time.h>
#include <tuple>
#include <unistd.h>
#include <vector>

#include <bitexact/gemm.hpp>
#include <bitexact/random.hpp>

#include "median_reporter.hpp"

#if defined(BITEXACT_HAVE_OPENBLAS)
#include <cblas.h>
extern "C" void openblas_set_num_threads(int);
extern "C" char* openblas_get_corename(void);
#endif
#if defined(BITEXACT_HAVE_DNNL)
#include <dnnl.h>
#include <omp.h>
#endif

namespace {

using bitexact::transpose;

struct shape {
  std::string name;
  std::size_t m, n, k, batch;
  bool bt;  // B transposed (stored n x k)
};

bool g_short = false;
/// --cpu-time: rates from the benchmark thread's CPU time instead of the wall clock. Only for
/// 1-thread runs on a machine whose other load makes wall-clock times meaningless.
bool g_cpu_time = false;

std::vector<shape> shapes() {
  std::vector<shape> v = {{"1024^3", 1024, 1024, 1024, 1, false},
                          {"decode1_nn", 1, 4096, 4096, 1, false},
                          {"decode16_nn", 16, 4096, 4096, 1, false},
                          {"decode1_nt", 1, 4096, 4096, 1, true},
                          {"decode16_nt", 16, 4096, 4096, 1, true},
                          {"bmm64x128x128x64", 128, 128, 64, 64, true}};
  if (!g_short) {
    v.push_back({"4096x1024x1024", 4096, 1024, 1024, 1, false});
    v.push_back({"2048x4096x4096", 2048, 4096, 4096, 1, false});
    v.push_back({"decode4_nn", 4, 4096, 4096, 1, false});
    v.push_back({"decode4_nt", 4, 4096, 4096, 1, true});
    v.push_back({"linear512x1024to4096", 512, 4096, 1024, 1, true});
  }
  return v;
}

template <class T>
std::vector<T> filled(std::size_t n, std::uint64_t seed) {
  std::vector<float> f(n);
  const auto s = bitexact::stream<bitexact::philox4x32_10>::from_seed(seed, 0, 0, bitexact::tag_of("gemm_bench"));
  bitexact::generate_normal(s, 0, f.data(), n);
  std::vector<T> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    if constexpr (std::is_same<T, bitexact::bfloat16>::value)
      v[i] = bitexact::bfloat16::from_float(f[i]);
    else
      v[i] = static_cast<T>(f[i]);
  }
  return v;
}

enum class impl { bitexact, bx_bf16, openblas, onednn, naive, sweep };
const char* impl_name(impl i) {
  switch (i) {
    case impl::bitexact: return "bitexact";
    case impl::bx_bf16: return "bx_bf16";
    case impl::openblas: return "openblas";
    case impl::onednn: return "onednn";
    case impl::naive: return "naive";
    case impl::sweep: return "sweep";
  }
  return "?";
}

using key = std::tuple<std::string, int, int, int>;  // shape, type bytes, threads, impl
std::map<std::string, key> g_names;
std::map<key, double> g_gflops;

template <class T>
void run_case(benchmark::State& st, const shape& s, impl im, int threads) {
  using In = typename std::conditional<std::is_same<T, float>::value, float, T>::type;
  const std::size_t lda = s.k, ldb = s.bt ? s.k : s.n, ldc = s.n;
  const std::size_t sa = s.m * s.k, sb = s.k * s.n, sc = s.m * s.n;
  const auto a = filled<In>(sa * s.batch, 1), b = filled<In>(sb * s.batch, 2);
  std::vector<bitexact::bfloat16> ah, bh;
  if (im == impl::bx_bf16) {
    ah = filled<bitexact::bfloat16>(sa * s.batch, 1);
    bh = filled<bitexact::bfloat16>(sb * s.batch, 2);
  }
  std::vector<T> c(sc * s.batch, T(0));
  const transpose tb = s.bt ? transpose::yes : transpose::no;
#if defined(BITEXACT_HAVE_OPENBLAS)
  openblas_set_num_threads(threads);
#endif
#if defined(BITEXACT_HAVE_DNNL)
  omp_set_num_threads(threads);
#endif
  const bitexact::execution ex{threads};
  std::vector<std::uint64_t> sweep_sums(static_cast<std::size_t>(threads) * 8, 0);
  for (auto _ : st) {
    switch (im) {
      case impl::bitexact:
        if (s.batch > 1)
          bitexact::gemm_batched<T>(transpose::no, tb, s.m, s.n, s.k, T(1), a.data(), lda, sa, b.data(), ldb, sb, T(0),
                                    c.data(), ldc, sc, s.batch, bitexact::tier::fixed_order, ex);
        else
          bitexact::gemm<T>(transpose::no, tb, s.m, s.n, s.k, T(1), a.data(), lda, b.data(), ldb, T(0), c.data(), ldc,
                            bitexact::tier::fixed_order, ex);
        break;
      case impl::bx_bf16:
        if constexpr (std::is_same<T, float>::value) {
          if (s.batch > 1)
            bitexact::gemm_batched(transpose::no, tb, s.m, s.n, s.k, 1.0f, ah.data(), lda, sa, bh.data(), ldb, sb, 0.0f,
                                   c.data(), ldc, sc, s.batch, bitexact::tier::fixed_order, ex);
          else
            bitexact::gemm(transpose::no, tb, s.m, s.n, s.k, 1.0f, ah.data(), lda, bh.data(), ldb, 0.0f, c.data(), ldc,
                           bitexact::tier::fixed_order, ex);
        }
        break;
      case impl::openblas:
#if defined(BITEXACT_HAVE_OPENBLAS)
        for (std::size_t q = 0; q < s.batch; ++q) {
          if constexpr (std::is_same<T, float>::value)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, s.bt ? CblasTrans : CblasNoTrans, s.m, s.n, s.k, 1.0f,
                        a.data() + q * sa, lda, b.data() + q * sb, ldb, 0.0f, c.data() + q * sc, ldc);
          else
            cblas_dgemm(CblasRowMajor, CblasNoTrans, s.bt ? CblasTrans : CblasNoTrans, s.m, s.n, s.k, 1.0,
                        a.data() + q * sa, lda, b.data() + q * sb, ldb, 0.0, c.data() + q * sc, ldc);
        }
#endif
        break;
      case impl::onednn:
#if defined(BITEXACT_HAVE_DNNL)
        if constexpr (std::is_same<T, float>::value)
          for (std::size_t q = 0; q < s.batch; ++q)
            dnnl_sgemm('N', s.bt ? 'T' : 'N', s.m, s.n, s.k, 1.0f, a.data() + q * sa, lda, b.data() + q * sb, ldb,
                       0.0f, c.data() + q * sc, ldc);
#endif
        break;
      case impl::sweep: {
        const std::size_t words = b.size() * sizeof(T) / 8, tt = static_cast<std::size_t>(threads);
        const auto* w = reinterpret_cast<const std::uint64_t*>(b.data());
        bitexact::cpu::detail::thread_pool::instance().run(threads, [&](int id) {
          std::uint64_t acc = 0;  // integer adds: the compiler vectorises and unrolls freely
          for (std::size_t q = words * id / tt; q < words * (id + 1) / tt; ++q) acc += w[q];
          sweep_sums[static_cast<std::size_t>(id) * 8] += acc;
        });
        benchmark::DoNotOptimize(sweep_sums.data());
        break;
      }
      case impl::naive:
        for (std::size_t q = 0; q < s.batch; ++q)
          for (std::size_t i = 0; i < s.m; ++i)
            for (std::size_t j = 0; j < s.n; ++j) {
              T acc = T(0);
              for (std::size_t kk = 0; kk < s.k; ++kk)
                acc += a[q * sa + i * lda + kk] * (s.bt ? b[q * sb + j * ldb + kk] : b[q * sb + kk * ldb + j]);
              c[q * sc + i * ldc + j] = acc;
            }
        break;
    }
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  st.counters["GFLOPs"] =
      benchmark::Counter(2.0 * s.m * s.n * s.k * s.batch * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void register_all() {
  for (const shape& s : shapes())
    for (int bytes : {4, 8})
      for (int t : {1, 2})
        for (impl im : {impl::bitexact, impl::bx_bf16, impl::openblas, impl::onednn, impl::naive, impl::sweep}) {
          if (im == impl::sweep && (s.m > 16 || s.batch > 1)) continue;
          if (bytes == 8 && (g_short || im == impl::bx_bf16 || im == impl::onednn)) continue;
          if (bytes == 8 && s.batch > 1) continue;
          if (im == impl::naive && (t != 1 || s.m > 1)) continue;
#if !defined(BITEXACT_HAVE_OPENBLAS)
          if (im == impl::openblas) continue;
#endif
#if !defined(BITEXACT_HAVE_DNNL)
          if (im == impl::onednn) continue;
#endif
          // <op>/<case>/t<threads>/<impl>: the report's naming (benchmarks/median_reporter.hpp)
          const std::string name = std::string(bytes == 4 ? "sgemm" : "dgemm") + "/" + s.name + "/t" +
                                   std::to_string(t) + "/" + impl_name(im);
          g_names[name] = key{s.name, bytes, t, static_cast<int>(im)};
          auto* b = bytes == 4 ? benchmark::RegisterBenchmark(name.c_str(), [s, im, t](benchmark::State& st) {
                                   run_case<float>(st, s, im, t);
                                 })
                               : benchmark::RegisterBenchmark(name.c_str(), [s, im, t](benchmark::State& st) {
                                   run_case<double>(st, s, im, t);
                                 });
          b->Unit(benchmark::kMillisecond);
          if (!g_cpu_time) b->UseRealTime();
          const double flops = 2.0 * s.m * s.n * s.k * s.batch;
          if (flops > 2e10)
            b->Iterations(2);
          else if (g_short)
            b->MinTime(0.2);
          else
            b->Repetitions(3)->ReportAggregatesOnly(true)->MinTime(0.2);
        }
}

void capture(const bitexact_bench::median_reporter::Run& r) {
  const auto it = g_names.find(r.run_name.function_name);
  if (it == g_names.end()) return;
  const auto c = r.counters.find("GFLOPs");
  if (c != r.counters.end()) g_gflops[it->second] = c->second.value;
}

double thread_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

/// The clock of this core, from a chain of dependent 64-bit `imul`s: 3 cycles each on every
/// x86-64 core since Core 2 and Zen. (A chain of `add $1, reg` is not a clock: Golden Cove /
/// Sapphire Rapids folds immediate adds in the renamer and ran that chain at "5.4 GHz", and an
/// earlier version of this bench reported 11.77 GHz from it.) The `add reg, reg` chain (1 cycle,
/// never folded) is measured too; the smaller of the two estimates is used. Timed in the thread's
/// CPU time, so other processes on a loaded machine do not lower the estimate.
double measure_ghz() {
#if defined(__x86_64__)
  auto chain = [](bool imul) {
    double best = 0;
    for (int rep = 0; rep < 5; ++rep) {
      std::uint64_t x = 3, n = 10000000;
      const double t0 = thread_seconds();
      for (std::uint64_t i = 0; i < n; ++i) {
        if (imul)
          __asm__ volatile("imul %0, %0\n\timul %0, %0\n\timul %0, %0\n\timul %0, %0\n\t"
                           "imul %0, %0\n\timul %0, %0\n\timul %0, %0\n\timul %0, %0"
                           : "+r"(x));
        else
          __asm__ volatile("add %0, %0\n\tadd %0, %0\n\tadd %0, %0\n\tadd %0, %0\n\t"
                           "add %0, %0\n\tadd %0, %0\n\tadd %0, %0\n\tadd %0, %0"
                           : "+r"(x));
      }
      const double s = thread_seconds() - t0;
      best = std::max(best, 8.0 * n * (imul ? 3.0 : 1.0) / s * 1e-9);
    }
    return best;
  };
  return std::min(chain(true), chain(false));
#else
  return 0;
#endif
}

void print_summary(double ghz) {
  if (std::FILE* f = std::fopen("/proc/loadavg", "r")) {
    char line[128] = {0};
    if (std::fgets(line, sizeof line, f)) std::printf("\nload average at the end of the run: %s", line);
    std::fclose(f);
  }
  std::printf("\nSummary: GFLOP/s (%s; median of 3 where repeated), bitexact ISA %s\n",
              g_cpu_time ? "CPU time of the calling thread: meaningful for T = 1 only" : "wall clock",
              bitexact::isa_name(bitexact::resolved_isa()));
  std::printf("Peak per core (estimate): %.2f GHz measured x 2 FMA units (assumed) x 16 floats x 2 = %.0f GFLOP/s "
              "float, %.0f double\n",
              ghz, ghz * 64, ghz * 32);
  std::printf("%-2s %-22s %2s %9s %9s %9s %9s %9s | %8s %8s %8s %7s\n", "t", "shape", "T", "bitexact", "bx_bf16",
              "openblas", "onednn", "naive", "bx/oblas", "bx/dnnl", "bf16/bx", "%peak");
  auto get = [](const shape& s, int bytes, int t, impl im) {
    const auto it = g_gflops.find(key{s.name, bytes, t, static_cast<int>(im)});
    return it == g_gflops.end() ? 0.0 : it->second;
  };
  for (int bytes : {4, 8})
    for (const shape& s : shapes())
      for (int t : {1, 2}) {
        const double bx = get(s, bytes, t, impl::bitexact);
        if (bx == 0) continue;
        const double h = get(s, bytes, t, impl::bx_bf16), ob = get(s, bytes, t, impl::openblas),
                     dn = get(s, bytes, t, impl::onednn), nv = get(s, bytes, 1, impl::naive);
        auto cell = [](double v) {
          if (v > 0)
            std::printf(" %9.2f", v);
          else
            std::printf(" %9s", "-");
        };
        auto ratio = [](double x, double y) {
          if (x > 0 && y > 0)
            std::printf(" %7.2fx", x / y);
          else
            std::printf(" %8s", "-");
        };
        std::printf("%-2s %-22s %2d", bytes == 4 ? "s" : "d", s.name.c_str(), t);
        cell(bx);
        cell(h);
        cell(ob);
        cell(dn);
        cell(nv);
        std::printf(" |");
        ratio(bx, ob);
        ratio(bx, dn);
        ratio(h, bx);
        const double peak = ghz * (bytes == 4 ? 64 : 32) * t;
        if (peak > 0)
          std::printf(" %6.0f%%\n", 100.0 * bx / peak);
        else
          std::printf(" %7s\n", "-");
      }
  // Decode shapes stream B once: GB/s of B against the plain sweep of the same bytes.
  std::printf("\nDecode shapes: GB/s of B (n x k x sizeof(T) per product); sweep = a plain read of B\n");
  std::printf("%-2s %-22s %2s %9s %9s %9s %9s | %9s %9s\n", "t", "shape", "T", "bitexact", "openblas", "onednn",
              "sweep", "bx/sweep", "bx/best");
  for (int bytes : {4, 8})
    for (const shape& s : shapes())
      for (int t : {1, 2}) {
        const double sw = get(s, bytes, t, impl::sweep);
        const double bx = get(s, bytes, t, impl::bitexact);
        if (sw == 0 || bx == 0) continue;
        const double gb = static_cast<double>(bytes) / (2.0 * s.m);  // GFLOP/s -> GB/s of B
        const double ob = get(s, bytes, t, impl::openblas), dn = get(s, bytes, t, impl::onednn);
        auto cell = [&](double v) {
          if (v > 0)
            std::printf(" %9.2f", v * gb);
          else
            std::printf(" %9s", "-");
        };
        std::printf("%-2s %-22s %2d", bytes == 4 ? "s" : "d", s.name.c_str(), t);
        cell(bx);
        cell(ob);
        cell(dn);
        cell(sw);
        std::printf(" | %8.2fx %8.2fx\n", bx / sw, bx / std::max(ob, dn));
      }
  std::printf("Ratios are speed ratios (GFLOP/s over GFLOP/s; 1.00x = as fast, > 1 = bitexact faster).\n");
#if defined(BITEXACT_HAVE_OPENBLAS)
  std::printf("OpenBLAS core: %s (OPENBLAS_CORETYPE=%s)\n", openblas_get_corename(),
              std::getenv("OPENBLAS_CORETYPE") ? std::getenv("OPENBLAS_CORETYPE") : "unset");
#else
  std::printf("OpenBLAS peer skipped: not found at configure time.\n");
#endif
#if !defined(BITEXACT_HAVE_DNNL)
  std::printf("oneDNN peer skipped: not found at configure time.\n");
#endif
}

}  // namespace

int main(int argc, char** argv) {
  bitexact_bench::use_peer_environment(argv);  // OpenBLAS's AVX-512 kernels, passive OpenMP waits
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], "--short") == 0)
      g_short = true;
    else if (std::strcmp(argv[i], "--cpu-time") == 0)
      g_cpu_time = true;
    else
      args.push_back(argv[i]);
  }
  if (const char* e = std::getenv("BITEXACT_BENCH_SHORT")) g_short |= std::strcmp(e, "0") != 0;
  g_short |= bitexact_bench::quick();  // the main job's quick run (BITEXACT_BENCH_QUICK)
  int n = static_cast<int>(args.size());
  benchmark::Initialize(&n, args.data());
  if (benchmark::ReportUnrecognizedArguments(n, args.data())) return 1;
  const double ghz = measure_ghz();
  register_all();
  bitexact_bench::declare_family("gemm", {{"bitexact", "bitexact"}, {"bx_bf16", "bitexact"}, {"openblas", "nondeterministic"},
                                          {"onednn", "nondeterministic"}, {"naive", "deterministic"},
                                          {"sweep", "floor"}});
  bitexact_bench::median_reporter reporter(capture);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  print_summary(ghz);
  benchmark::Shutdown();
  return 0;
}
