// random_bench - bitexact's Philox4x32-10 bulk generation against its peers, in one run.
//
// Ops: raw 32-bit words (generate) and uniform floats on [0, 1) (generate_uniform), at 64 KiB
// (cache resident) and 256 MiB (DRAM) of output, on 1 and 2 threads. Implementations:
//   bitexact      bitexact::generate / generate_uniform, philox4x32_10, best ISA of build and CPU
//   random123     scalar loop of r123::Philox4x32 over consecutive counters, 4 words per call,
//                 same key and counter layout as bitexact (so the same words); floats by
//                 (w >> 8) * 2^-24 like bitexact
//   random123_scalar  the same loop with GCC's vectorizer off for it (a truly scalar loop)
//   curand_compat bitexact::curand_compat (cuRAND's Philox layout, SIMD + threads); compared
//                 with curand_host in a second table
//   curand_host   cuRAND host generator, CURAND_RNG_PSEUDO_PHILOX4_32_10 (single-threaded on
//                 the host: only run at 1 thread; the summary repeats that number at 2 threads)
//   mt19937       std::mt19937 words / std::uniform_real_distribution<float>; at 2 threads each
//                 thread has its own engine (different seeds: not one stream)
//   fill          std::fill of the same bytes (glibc memset; may use non-temporal stores)
//   store_loop    a plain vectorisable store loop out[i] = i (regular stores, like the RNGs)
// Multi-threaded peers split the range over bitexact's own persistent worker pool, so every
// implementation pays the same dispatch cost, with bitexact's clamp of >= 32768 values per
// thread (so every 64 KiB "2-thread" case really runs on 1 thread). All timings are
// wall-clock (UseRealTime).
// After the Google Benchmark output, a summary prints GB/s (10^9 B/s, medians of the
// repetitions), bitexact/peer ratios and bitexact as a percentage of the streaming write.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include <bitexact/curand_compat.hpp>
#include <bitexact/random.hpp>

#include "median_reporter.hpp"

#ifdef BITEXACT_HAVE_RANDOM123
#include <Random123/philox.h>
#endif
#ifdef BITEXACT_HAVE_CURAND
#include <curand.h>
#endif

namespace {

using stream_t = bitexact::stream<bitexact::philox4x32_10>;
constexpr std::uint64_t kSeed = 20240607;
const stream_t& the_stream() {
  static const stream_t s = stream_t::from_seed(kSeed);
  return s;
}

enum class op { words, uniform };
const char* op_name(op o) { return o == op::words ? "words" : "uniform"; }

constexpr std::size_t kSmall = std::size_t{64} << 10;   // 64 KiB
constexpr std::size_t kLarge = std::size_t{256} << 20;  // 256 MiB
const char* size_name(std::size_t b) { return b == kSmall ? "64KiB" : "256MiB"; }

// Output buffers: allocated and touched once in main, before any timing.
void* g_buf[2] = {nullptr, nullptr};
void* buffer(std::size_t bytes) { return g_buf[bytes == kSmall ? 0 : 1]; }
void* alloc_touched(std::size_t bytes) {
  void* p = std::aligned_alloc(4096, bytes);
  if (p == nullptr) {
    std::fprintf(stderr, "random_bench: cannot allocate %zu bytes\n", bytes);
    std::exit(1);
  }
  std::memset(p, 0x5a, bytes);  // first-touch page faults happen here, not in the timed loops
  return p;
}

/// Runs f(t, begin, end) over [0, n) split into contiguous parts cut at multiples of 4 (whole
/// Philox blocks), on bitexact's persistent worker pool (thread t gets part t). Uses at most
/// one thread per 32768 values, the same clamp bitexact applies, so at 64 KiB everyone runs
/// on 1 thread instead of paying a pool wake-up for ~10 us of work.
template <class F>
void split(int threads, std::size_t n, F&& f) {
  const std::size_t per = static_cast<std::size_t>(bitexact::detail::random_min_values_per_thread);
  threads = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(threads), std::max<std::size_t>(1, (n + per - 1) / per)));
  const std::size_t blocks = n / 4;
  bitexact::cpu::detail::thread_pool::instance().run(threads, [&](int t) {
    const std::size_t b0 = blocks * static_cast<std::size_t>(t) / static_cast<std::size_t>(threads);
    const std::size_t b1 = blocks * static_cast<std::size_t>(t + 1) / static_cast<std::size_t>(threads);
    f(t, 4 * b0, 4 * b1);
  });
}

// ---- implementations: each fills n 4-byte values at out ------------------------------------

void bitexact_run(op o, void* out, std::size_t n, int threads) {
  const bitexact::execution e{threads, bitexact::isa::automatic};
  if (o == op::words)
    bitexact::generate(the_stream(), 0, static_cast<std::uint32_t*>(out), n, e);
  else
    bitexact::generate_uniform(the_stream(), 0, static_cast<float*>(out), n, e);
}

#ifdef BITEXACT_HAVE_RANDOM123
void random123_run(op o, void* out, std::size_t n, int threads) {
  const auto key = the_stream().key();
  split(threads, n, [&](int, std::size_t i0, std::size_t i1) {
    r123::Philox4x32 g;
    const r123::Philox4x32::key_type k = {{key[0], key[1]}};
    if (o == op::words) {
      auto* w = static_cast<std::uint32_t*>(out);
      for (std::size_t i = i0; i < i1; i += 4) {
        const std::uint64_t b = i / 4;
        const r123::Philox4x32::ctr_type c = {{static_cast<std::uint32_t>(b), static_cast<std::uint32_t>(b >> 32), 0, 0}};
        const auto r = g(c, k);
        w[i] = r.v[0]; w[i + 1] = r.v[1]; w[i + 2] = r.v[2]; w[i + 3] = r.v[3];
      }
    } else {
      auto* f = static_cast<float*>(out);
      for (std::size_t i = i0; i < i1; i += 4) {
        const std::uint64_t b = i / 4;
        const r123::Philox4x32::ctr_type c = {{static_cast<std::uint32_t>(b), static_cast<std::uint32_t>(b >> 32), 0, 0}};
        const auto r = g(c, k);
        for (int j = 0; j < 4; ++j) f[i + j] = static_cast<float>(r.v[j] >> 8) * 0x1p-24f;
      }
    }
  });
}
#endif

#ifdef BITEXACT_HAVE_RANDOM123
// The same loop with GCC's auto-vectorizer off for this function: a truly scalar Random123
// (the loop above is compiled with -O3 -march=native and GCC vectorizes it across calls).
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-vectorize", "no-tree-slp-vectorize")))
#endif
void random123_scalar_words(const r123::Philox4x32::key_type& k, std::uint32_t* w, std::size_t i0, std::size_t i1) {
  r123::Philox4x32 g;
  for (std::size_t i = i0; i < i1; i += 4) {
    const std::uint64_t b = i / 4;
    const r123::Philox4x32::ctr_type c = {{static_cast<std::uint32_t>(b), static_cast<std::uint32_t>(b >> 32), 0, 0}};
    const auto r = g(c, k);
    w[i] = r.v[0]; w[i + 1] = r.v[1]; w[i + 2] = r.v[2]; w[i + 3] = r.v[3];
  }
}
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-vectorize", "no-tree-slp-vectorize")))
#endif
void random123_scalar_uniform(const r123::Philox4x32::key_type& k, float* f, std::size_t i0, std::size_t i1) {
  r123::Philox4x32 g;
  for (std::size_t i = i0; i < i1; i += 4) {
    const std::uint64_t b = i / 4;
    const r123::Philox4x32::ctr_type c = {{static_cast<std::uint32_t>(b), static_cast<std::uint32_t>(b >> 32), 0, 0}};
    const auto r = g(c, k);
    for (int j = 0; j < 4; ++j) f[i + j] = static_cast<float>(r.v[j] >> 8) * 0x1p-24f;
  }
}
void random123_scalar_run(op o, void* out, std::size_t n, int threads) {
  const auto key = the_stream().key();
  const r123::Philox4x32::key_type k = {{key[0], key[1]}};
  split(threads, n, [&](int, std::size_t i0, std::size_t i1) {
    if (o == op::words)
      random123_scalar_words(k, static_cast<std::uint32_t*>(out), i0, i1);
    else
      random123_scalar_uniform(k, static_cast<float*>(out), i0, i1);
  });
}
#endif

#ifdef BITEXACT_HAVE_CURAND
curandGenerator_t g_curand = nullptr;
void curand_check(curandStatus_t s, const char* what) {
  if (s != CURAND_STATUS_SUCCESS) {
    std::fprintf(stderr, "random_bench: %s failed (curandStatus %d)\n", what, static_cast<int>(s));
    std::exit(1);
  }
}
void curand_run(op o, void* out, std::size_t n, int) {
  if (o == op::words)
    curand_check(curandGenerate(g_curand, static_cast<unsigned int*>(out), n), "curandGenerate");
  else
    curand_check(curandGenerateUniform(g_curand, static_cast<float*>(out), n), "curandGenerateUniform");
}
#endif

#ifdef BITEXACT_HAVE_CURAND
// bitexact's reproduction of the cuRAND host generator (same seed as curand_run, so the same bits).
void curand_compat_run(op o, void* out, std::size_t n, int threads) {
  const bitexact::execution e{threads, bitexact::isa::automatic};
  if (o == op::words)
    bitexact::curand_compat::generate(kSeed, 0, static_cast<std::uint32_t*>(out), n, e);
  else
    bitexact::curand_compat::generate_uniform(kSeed, 0, static_cast<float*>(out), n, e);
}
#endif

std::mt19937 g_mt[2] = {std::mt19937(1), std::mt19937(2)};
void mt19937_run(op o, void* out, std::size_t n, int threads) {
  split(threads, n, [&](int t, std::size_t i0, std::size_t i1) {
    std::mt19937& eng = g_mt[t];
    if (o == op::words) {
      auto* w = static_cast<std::uint32_t*>(out);
      for (std::size_t i = i0; i < i1; ++i) w[i] = static_cast<std::uint32_t>(eng());
    } else {
      auto* f = static_cast<float*>(out);
      std::uniform_real_distribution<float> dist(0.0f, 1.0f);
      for (std::size_t i = i0; i < i1; ++i) f[i] = dist(eng);
    }
  });
}

void fill_run(op, void* out, std::size_t n, int threads) {
  auto* w = static_cast<std::uint32_t*>(out);
  split(threads, n, [&](int, std::size_t i0, std::size_t i1) { std::fill(w + i0, w + i1, 0x3f000000u); });
}

void store_loop_run(op, void* out, std::size_t n, int threads) {
  auto* w = static_cast<std::uint32_t*>(out);
  split(threads, n, [&](int, std::size_t i0, std::size_t i1) {
    for (std::size_t i = i0; i < i1; ++i) w[i] = static_cast<std::uint32_t>(i);
  });
}

using impl_fn = void (*)(op, void*, std::size_t, int);
struct impl {
  const char* name;
  impl_fn fn;
  bool single_threaded;  // only run at 1 thread
};

std::vector<impl> impls() {
  std::vector<impl> v;
  v.push_back({"bitexact", bitexact_run, false});
#ifdef BITEXACT_HAVE_RANDOM123
  v.push_back({"random123", random123_run, false});
  v.push_back({"random123_scalar", random123_scalar_run, false});
#endif
#ifdef BITEXACT_HAVE_CURAND
  v.push_back({"curand_host(1 thread)", curand_run, true});
  v.push_back({"curand_compat", curand_compat_run, false});
#endif
  v.push_back({"mt19937", mt19937_run, false});
  v.push_back({"fill", fill_run, false});
  v.push_back({"store_loop", store_loop_run, false});
  return v;
}

// ---- registration and result capture --------------------------------------------------------

struct key {
  op o;
  std::size_t bytes;
  int threads;
  std::string impl;
  bool operator<(const key& r) const {
    return std::tie(o, bytes, threads, impl) < std::tie(r.o, r.bytes, r.threads, r.impl);
  }
};
std::map<std::string, key> g_names;   // registered benchmark name -> key
std::map<key, double> g_bytes_per_s;  // captured medians

void bench(benchmark::State& state, impl_fn fn, op o, std::size_t bytes, int threads) {
  void* out = buffer(bytes);
  const std::size_t n = bytes / 4;
  fn(o, out, n, threads);  // untimed warm-up: pool threads, generator state, caches
  for (auto _ : state) {
    fn(o, out, n, threads);
    benchmark::DoNotOptimize(out);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(bytes));
}

void register_all() {
  for (op o : {op::words, op::uniform})
    for (std::size_t bytes : {kSmall, kLarge})
      for (int threads : {1, 2})
        for (const impl& im : impls()) {
          if (im.single_threaded && threads != 1) continue;
          const std::string name = std::string(op_name(o)) + "/" + size_name(bytes) + "/t" +
                                   std::to_string(threads) + "/" + im.name;
          g_names[name] = key{o, bytes, threads, im.name};
          auto* b = benchmark::RegisterBenchmark(name.c_str(), bench, im.fn, o, bytes, threads);
          b->UseRealTime()->Unit(benchmark::kMicrosecond)->Repetitions(bitexact_bench::repetitions(3))->ReportAggregatesOnly(true);
          if (bytes == kSmall)
            b->MinTime(bitexact_bench::min_time(0.05));
          else
            b->Iterations(bitexact_bench::iterations(2));
        }
}

/// The bytes/s of a benchmark's result (median or single run), for the summary.
void capture(const bitexact_bench::median_reporter::Run& r) {
  const auto it = g_names.find(r.run_name.function_name);
  if (it == g_names.end()) return;
  double bps = 0;
  const auto c = r.counters.find("bytes_per_second");
  if (c != r.counters.end())
    bps = c->second.value;
  else if (r.real_accumulated_time > 0)
    bps = static_cast<double>(it->second.bytes) * static_cast<double>(r.iterations) / r.real_accumulated_time;
  g_bytes_per_s[it->second] = bps;
}

double lookup(op o, std::size_t bytes, int threads, const std::string& name) {
  auto it = g_bytes_per_s.find(key{o, bytes, threads, name});
  return it == g_bytes_per_s.end() ? 0.0 : it->second / 1e9;
}

void print_summary() {
  const bitexact::isa best = bitexact::resolved_isa();
  if (std::FILE* f = std::fopen("/proc/loadavg", "r")) {  // other load makes the numbers noisy
    char line[128] = {0};
    if (std::fgets(line, sizeof line, f)) std::printf("\nload average at the end of the run: %s", line);
    std::fclose(f);
  }
  std::printf("\nSummary: GB/s (10^9 B/s of output, wall clock, median of 3), bitexact ISA %s\n",
              bitexact::isa_name(best));
  std::vector<std::string> peers;
#ifdef BITEXACT_HAVE_RANDOM123
  peers.push_back("random123");
  peers.push_back("random123_scalar");
#endif
#ifdef BITEXACT_HAVE_CURAND
  peers.push_back("curand_host(1 thread)");
#endif
  peers.push_back("mt19937");
  std::printf("%-8s %-6s %2s %9s", "op", "size", "T", "bitexact");
  for (const auto& p : peers) {
    const std::string h = p == "curand_host(1 thread)" ? "curand*" : p == "random123_scalar" ? "r123_scal" : p;
    std::printf(" %10s %7s", h.c_str(), "be/peer");
  }
  std::printf(" %8s %8s %8s\n", "fill", "stores", "be%fill");
  for (op o : {op::words, op::uniform})
    for (std::size_t bytes : {kSmall, kLarge})
      for (int threads : {1, 2}) {
        const double be = lookup(o, bytes, threads, "bitexact");
        std::printf("%-8s %-6s %2d %9.2f", op_name(o), size_name(bytes), threads, be);
        for (const auto& p : peers) {
          const double v = lookup(o, bytes, p == "curand_host(1 thread)" ? 1 : threads, p);
          if (v > 0)
            std::printf(" %10.2f %6.2fx", v, be / v);
          else
            std::printf(" %10s %7s", "-", "-");
        }
        const double fill = lookup(o, bytes, threads, "fill");
        const double stores = lookup(o, bytes, threads, "store_loop");
        std::printf(" %8.2f %8.2f %7.0f%%\n", fill, stores, fill > 0 ? 100.0 * be / fill : 0.0);
      }
#ifdef BITEXACT_HAVE_CURAND
  std::printf("\ncuRAND-compatible bulk calls (bitexact::curand_compat, same bits as libcurand's host generator):\n");
  std::printf("%-8s %-6s %2s %14s %10s %8s\n", "op", "size", "T", "curand_compat", "curand*", "ratio");
  for (op o : {op::words, op::uniform})
    for (std::size_t bytes : {kSmall, kLarge})
      for (int threads : {1, 2}) {
        const double c = lookup(o, bytes, threads, "curand_compat");
        const double h = lookup(o, bytes, 1, "curand_host(1 thread)");
        std::printf("%-8s %-6s %2d %14.2f %10.2f %7.2fx\n", op_name(o), size_name(bytes), threads, c, h, h > 0 ? c / h : 0.0);
      }
#endif
  std::printf("* cuRAND's host generator is single-threaded: its 1-thread number is shown on T=2 rows too.\n");
  std::printf("  At 64KiB all implementations run on 1 thread even when 2 are given (>= 32768 values per thread).\n");
  std::printf("  mt19937 at T=2 uses one engine per thread (not one stream). be%%fill = bitexact / std::fill.\n");
#ifndef BITEXACT_HAVE_RANDOM123
  std::printf("  Random123 peer skipped: Random123/philox.h not found at configure time.\n");
#endif
#ifndef BITEXACT_HAVE_CURAND
  std::printf("  cuRAND peer skipped: libcurand / curand.h not found at configure time.\n");
#endif
}

bool same_words_as_random123() {
#ifdef BITEXACT_HAVE_RANDOM123
  std::vector<std::uint32_t> a(1024), b(1024);
  bitexact_run(op::words, a.data(), a.size(), 1);
  random123_run(op::words, b.data(), b.size(), 1);
  std::vector<std::uint32_t> c(1024);
  random123_scalar_run(op::words, c.data(), c.size(), 1);
  return a == b && a == c;
#else
  return true;
#endif
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

  g_buf[0] = alloc_touched(kSmall);
  g_buf[1] = alloc_touched(kLarge);
#ifdef BITEXACT_HAVE_CURAND
  curand_check(curandCreateGeneratorHost(&g_curand, CURAND_RNG_PSEUDO_PHILOX4_32_10), "curandCreateGeneratorHost");
  curand_check(curandSetPseudoRandomGeneratorSeed(g_curand, kSeed), "curandSetPseudoRandomGeneratorSeed");
#else
  std::printf("random_bench: cuRAND not found at configure time; skipping the curand_host peer\n");
#endif
#ifndef BITEXACT_HAVE_RANDOM123
  std::printf("random_bench: Random123 not found at configure time; skipping the random123 peer\n");
#endif
  if (!same_words_as_random123()) {
    std::fprintf(stderr, "random_bench: bitexact and Random123 disagree on the first 1024 words\n");
    return 1;
  }
  register_all();
  // mt19937 at 2 threads runs one engine per thread: its numbers depend on the thread count.
  bitexact_bench::declare_family("random", {{"bitexact", "bitexact"}, {"curand_compat", "bitexact"},
                                            {"random123", "deterministic"}, {"random123_scalar", "deterministic"},
                                            {"curand_host(1 thread)", "deterministic"}, {"mt19937", "nondeterministic"},
                                            {"fill", "floor"}, {"store_loop", "floor"}});

  bitexact_bench::median_reporter reporter(capture);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  print_summary();
  benchmark::Shutdown();

#ifdef BITEXACT_HAVE_CURAND
  curandDestroyGenerator(g_curand);
#endif
  std::free(g_buf[0]);
  std::free(g_buf[1]);
  return 0;
}
