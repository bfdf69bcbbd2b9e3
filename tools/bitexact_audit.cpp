// bitexact-audit: the command a new user runs first.
//
// Families: random (generators and distributions) and reduce (sum/dot, fixed_order and exact).
// For each op family it runs every op across thread counts, every ISA this build and CPU
// have, and emulated CUDA launch shapes; prints one hash per configuration, whether all agree
// with the scalar reference, and the time against the fastest non-deterministic peer.
// Exit status: 0 when every configuration agrees, 1 when any disagrees, 2 on bad usage.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <bitexact/bitexact.hpp>
#include <bitexact/cuda/launch.hpp>
#include <bitexact/cuda/random_kernels.hpp>
#include <bitexact/reference/random.hpp>
#include <bitexact/reference/reduce.hpp>

#if defined(BITEXACT_HAVE_RANDOM123)
#include <Random123/philox.h>
#endif

namespace {

using namespace bitexact;

std::uint64_t fnv1a64(const void* p, std::size_t bytes) {
  const unsigned char* b = static_cast<const unsigned char*>(p);
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (std::size_t i = 0; i < bytes; ++i) h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}

double seconds(const std::function<void()>& f, int reps = 3) {
  f();  // warm up (page faults, thread pool)
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

struct audit {
  int configs = 0, mismatches = 0;

  /// One op: ref fills the buffer with the reference; cpu(exec) and cuda(shape) fill it with
  /// the fast paths. Every configuration's hash is printed next to the reference's.
  template <class T>
  void op(const char* name, std::size_t n, const std::function<void(T*)>& ref,
          const std::function<void(T*, execution)>& cpu,
          const std::function<void(T*, cuda::launch_shape)>& cuda_emulated) {
    std::vector<T> buf(n);
    ref(buf.data());
    const std::uint64_t want = fnv1a64(buf.data(), n * sizeof(T));
    std::printf("random  %-18s reference           %016llx\n", name, static_cast<unsigned long long>(want));
    auto report = [&](const std::string& cfg) {
      const std::uint64_t h = fnv1a64(buf.data(), n * sizeof(T));
      ++configs;
      const bool ok = h == want;
      if (!ok) ++mismatches;
      std::printf("random  %-18s %-19s %016llx %s\n", name, cfg.c_str(), static_cast<unsigned long long>(h),
                  ok ? "ok" : "MISMATCH");
    };
    for (isa i : usable_isas()) {
      for (int t : {1, 2, 3, 4, 7, 8}) {
        std::fill(buf.begin(), buf.end(), T{});
        cpu(buf.data(), execution{t, i});
        report(std::string("cpu ") + isa_name(i) + " t=" + std::to_string(t));
      }
    }
    for (cuda::launch_shape s : {cuda::launch_shape{1, 32}, cuda::launch_shape{7, 96}, cuda::launch_shape{80, 256}}) {
      std::fill(buf.begin(), buf.end(), T{});
      cuda_emulated(buf.data(), s);
      report("cuda-emu " + std::to_string(s.grid) + "x" + std::to_string(s.block));
    }
  }
};

template <class T, class Body>
std::function<void(T*, cuda::launch_shape)> emu(Body body, std::size_t n) {
  return [body, n](T* out, cuda::launch_shape s) {
    (void)n;
    cuda::emulate_launch(s, [&](const cuda::thread_index& ti) { body(ti, out); });
  };
}

void timing_row(const char* what, std::size_t bytes, double t_ours, const char* peer, double t_peer) {
  std::printf("time    %-18s bitexact %7.2f GB/s   %-28s %7.2f GB/s   ratio %.2fx\n", what, bytes / t_ours / 1e9, peer,
              bytes / t_peer / 1e9, t_peer / t_ours);
}

// ---------------------------------------------------------------- reduce family

/// One reduction op in one tier: ref() is the scalar reference, cpu(exec) the fast path. The
/// hash of a configuration is fnv1a64 of the result's bytes (NaN canonical).
struct reduce_op {
  std::string name;
  std::size_t result_bytes;
  std::function<void(void*)> ref;
  std::function<void(void*, execution)> cpu;
};

/// Hook for the CUDA backend: runs `op` (by name) through the CPU emulation of the CUDA
/// reduction kernels with the given launch shape, writing the result; returns false when the
/// op has no CUDA kernel yet. The CUDA engineer fills this in (cuda/reduce_kernels.hpp); until
/// then the reduce family reports CPU configurations only.
bool reduce_cuda_emulated(const std::string& op, cuda::launch_shape shape, void* result) {
  (void)op;
  (void)shape;
  (void)result;
  return false;
}

struct reduce_audit {
  int configs = 0, mismatches = 0;
  void run(const reduce_op& o) {
    unsigned char want_bytes[8] = {0}, got[8] = {0};
    o.ref(want_bytes);
    const std::uint64_t want = fnv1a64(want_bytes, o.result_bytes);
    std::printf("reduce  %-18s reference           %016llx\n", o.name.c_str(), static_cast<unsigned long long>(want));
    auto report = [&](const std::string& cfg) {
      const std::uint64_t h = fnv1a64(got, o.result_bytes);
      ++configs;
      const bool ok = h == want;
      if (!ok) ++mismatches;
      std::printf("reduce  %-18s %-19s %016llx %s\n", o.name.c_str(), cfg.c_str(), static_cast<unsigned long long>(h),
                  ok ? "ok" : "MISMATCH");
    };
    for (isa i : usable_isas())
      for (int t : {1, 2, 3, 4, 7, 8}) {
        std::memset(got, 0, sizeof got);
        o.cpu(got, execution{t, i});
        report(std::string("cpu ") + isa_name(i) + " t=" + std::to_string(t));
      }
    for (cuda::launch_shape s : {cuda::launch_shape{1, 32}, cuda::launch_shape{7, 96}, cuda::launch_shape{80, 256}}) {
      std::memset(got, 0, sizeof got);
      if (reduce_cuda_emulated(o.name, s, got)) report("cuda-emu " + std::to_string(s.grid) + "x" + std::to_string(s.block));
    }
  }
};

template <class A>
void put_result(void* out, A v) {
  if (v != v) v = std::numeric_limits<A>::quiet_NaN();
  std::memcpy(out, &v, sizeof v);
}

int run_reduce(std::size_t n, bool timing) {
  reduce_audit a;
  const auto s = stream<philox4x32_10>::from_seed(20261121, 2, 0, tag_of("audit-reduce"));
  std::vector<float> xf(n + 1), yf(n + 1);
  std::vector<double> xd(n + 1), yd(n + 1);
  generate_normal(s, 0, xf.data(), n + 1);
  generate_normal(s, n + 1, yf.data(), n + 1);
  generate_normal(s, 0, xd.data(), n + 1);
  generate_normal(s, n + 1, yd.data(), n + 1);
  // Offset by one element: unaligned on purpose.
  const float *x = xf.data() + 1, *y = yf.data() + 1;
  const double *u = xd.data() + 1, *v = yd.data() + 1;
  std::printf("reduce_order_version=%d  n=%zu (inputs start one element past an aligned address)\n", reduce_order_version, n);
  std::vector<reduce_op> ops = {
      {"sum_f32/fixed", 4, [&](void* o) { put_result(o, reference::sum_fixed_order(x, n)); },
       [&](void* o, execution e) { put_result(o, sum(x, n, tier::fixed_order, e)); }},
      {"sum_f32/exact", 4, [&](void* o) { put_result(o, reference::sum_exact(x, n)); },
       [&](void* o, execution e) { put_result(o, sum(x, n, tier::exact, e)); }},
      {"dot_f32/fixed", 4, [&](void* o) { put_result(o, reference::dot_fixed_order(x, y, n)); },
       [&](void* o, execution e) { put_result(o, dot(x, y, n, tier::fixed_order, e)); }},
      {"dot_f32/exact", 4, [&](void* o) { put_result(o, reference::dot_exact(x, y, n)); },
       [&](void* o, execution e) { put_result(o, dot(x, y, n, tier::exact, e)); }},
      {"sum_f64/fixed", 8, [&](void* o) { put_result(o, reference::sum_fixed_order(u, n)); },
       [&](void* o, execution e) { put_result(o, sum(u, n, tier::fixed_order, e)); }},
      {"sum_f64/exact", 8, [&](void* o) { put_result(o, reference::sum_exact(u, n)); },
       [&](void* o, execution e) { put_result(o, sum(u, n, tier::exact, e)); }},
      {"dot_f64/fixed", 8, [&](void* o) { put_result(o, reference::dot_fixed_order(u, v, n)); },
       [&](void* o, execution e) { put_result(o, dot(u, v, n, tier::fixed_order, e)); }},
      {"dot_f64/exact", 8, [&](void* o) { put_result(o, reference::dot_exact(u, v, n)); },
       [&](void* o, execution e) { put_result(o, dot(u, v, n, tier::exact, e)); }},
  };
  for (const auto& o : ops) a.run(o);
  std::printf("\nreduce: %d configurations, %d disagree with the reference: %s\n", a.configs, a.mismatches,
              a.mismatches == 0 ? "ALL AGREE" : "FAILED");
  std::printf("        (CUDA emulated launch shapes for reductions: not wired yet, see reduce_cuda_emulated)\n\n");

  if (timing) {
    const std::size_t m = std::size_t{1} << 24;  // 64 MiB of floats per vector
    std::vector<float> p(m), q(m);
    generate_normal(s, 0, p.data(), m);
    generate_normal(s, m, q.data(), m);
    volatile float sink = 0;
    const double t_fixed = seconds([&] { sink = sum(p.data(), m); });
    const double t_exact = seconds([&] { sink = sum(p.data(), m, tier::exact); });
    const double t_unord = seconds([&] {
      float acc = 0;
      const float* pp = p.data();
#pragma omp simd reduction(+ : acc)
      for (std::size_t i = 0; i < m; ++i) acc += pp[i];
      sink = acc;
    });
    const double t_dfixed = seconds([&] { sink = dot(p.data(), q.data(), m); });
    const double t_dexact = seconds([&] { sink = dot(p.data(), q.data(), m, tier::exact); });
    const double t_dunord = seconds([&] {
      float acc = 0;
      const float *pp = p.data(), *qq = q.data();
#pragma omp simd reduction(+ : acc)
      for (std::size_t i = 0; i < m; ++i) acc += pp[i] * qq[i];
      sink = acc;
    });
    (void)sink;
    const int t = resolved_threads();
    std::printf("        (bitexact on %d threads; the unordered peer is one thread of SIMD, so ratios above 1x\n"
                "         on several threads are threads, not cleverness)\n", t);
    timing_row("sum f32 fixed_order", m * 4, t_fixed, "unordered SIMD loop, 1 thr", t_unord);
    timing_row("sum f32 exact", m * 4, t_exact, "unordered SIMD loop, 1 thr", t_unord);
    timing_row("dot f32 fixed_order", m * 8, t_dfixed, "unordered SIMD loop, 1 thr", t_dunord);
    timing_row("dot f32 exact", m * 8, t_dexact, "unordered SIMD loop, 1 thr", t_dunord);
    std::printf("        (reduce_bench measures each peer properly, OpenBLAS included; this is a quick look)\n");
  }
  return a.mismatches == 0 ? 0 : 1;
}

int run(std::size_t n, bool timing) {
  audit a;
  const auto s = stream<philox4x32_10>::from_seed(20261121, 1, 0, tag_of("audit"));
  const std::uint64_t first = 3;  // not block-aligned on purpose
  std::printf("bitexact-audit %d.%d.%d  random_order_version=%d  n=%zu\n", BITEXACT_VERSION_MAJOR, BITEXACT_VERSION_MINOR,
              BITEXACT_VERSION_PATCH, random_order_version, n);
  std::printf("CPU ISAs usable here:");
  for (isa i : usable_isas()) std::printf(" %s", isa_name(i));
  std::printf("   (lacking:");
  for (isa i : {isa::sse2, isa::avx2, isa::avx512, isa::neon})
    if (!isa_usable(i)) std::printf(" %s[%s]", isa_name(i), build_has_isa(i) ? "cpu" : "build");
  std::printf(")  hardware threads: %u\n", std::thread::hardware_concurrency());
  std::printf("CUDA: kernel bodies run through the CPU launch emulation (no GPU used by this tool)\n\n");

  a.op<std::uint32_t>("words", n, [&](std::uint32_t* o) { reference::generate_words(s, first, o, n); },
                      [&](std::uint32_t* o, execution e) { generate(s, first, o, n, e); },
                      emu<std::uint32_t>([&](const cuda::thread_index& ti, std::uint32_t* o) { cuda::words_body(ti, s, first, o, n); }, n));
  a.op<float>("uniform_f32", n, [&](float* o) { reference::generate_uniform(s, first, o, n); },
              [&](float* o, execution e) { generate_uniform(s, first, o, n, e); },
              emu<float>([&](const cuda::thread_index& ti, float* o) { cuda::uniform_float_body(ti, s, first, o, n); }, n));
  a.op<double>("uniform_f64", n, [&](double* o) { reference::generate_uniform(s, first, o, n); },
               [&](double* o, execution e) { generate_uniform(s, first, o, n, e); },
               emu<double>([&](const cuda::thread_index& ti, double* o) { cuda::uniform_double_body(ti, s, first, o, n); }, n));
  a.op<float>("normal_f32", n, [&](float* o) { reference::generate_normal(s, first, o, n); },
              [&](float* o, execution e) { generate_normal(s, first, o, n, e); },
              emu<float>([&](const cuda::thread_index& ti, float* o) { cuda::normal_float_body(ti, s, first, o, n); }, n));
  a.op<double>("normal_f64", n, [&](double* o) { reference::generate_normal(s, first, o, n); },
               [&](double* o, execution e) { generate_normal(s, first, o, n, e); },
               emu<double>([&](const cuda::thread_index& ti, double* o) { cuda::normal_double_body(ti, s, first, o, n); }, n));
  const std::uint64_t thr = core::bernoulli_threshold(0.9);
  a.op<std::uint8_t>("bernoulli_0.9", n, [&](std::uint8_t* o) { reference::generate_bernoulli(s, first, o, n, 0.9); },
                     [&](std::uint8_t* o, execution e) { generate_bernoulli(s, first, o, n, 0.9, e); },
                     emu<std::uint8_t>([&](const cuda::thread_index& ti, std::uint8_t* o) { cuda::bernoulli_body(ti, s, first, o, n, thr); }, n));
  a.op<std::uint32_t>("uniform_int_1e9+7", n, [&](std::uint32_t* o) { reference::generate_uniform_int(s, first, o, n, 1000000007u); },
                      [&](std::uint32_t* o, execution e) { generate_uniform_int(s, first, o, n, 1000000007u, e); },
                      emu<std::uint32_t>([&](const cuda::thread_index& ti, std::uint32_t* o) { cuda::uniform_int32_body(ti, s, first, o, n, 1000000007u); }, n));
  const auto p = permutation::for_epoch(n, 20261121, 1);
  a.op<std::uint64_t>("permutation", n, [&](std::uint64_t* o) { reference::generate_permutation(p.core(), 0, o, n); },
                      [&](std::uint64_t* o, execution e) { p.fill(0, o, n, e); },
                      emu<std::uint64_t>([&](const cuda::thread_index& ti, std::uint64_t* o) { cuda::permutation_body(ti, p.core(), 0, o, n); }, n));

  std::printf("\nrandom: %d configurations, %d disagree with the reference: %s\n\n", a.configs, a.mismatches,
              a.mismatches == 0 ? "ALL AGREE" : "FAILED");

  if (timing) {
    const std::size_t m = std::size_t{1} << 24;  // 64 MiB of words
    std::vector<std::uint32_t> w(m);
    std::vector<float> f(m);
    const double t_words = seconds([&] { generate(s, 0, w.data(), m); });
    const double t_unif = seconds([&] { generate_uniform(s, 0, f.data(), m); });
#if defined(BITEXACT_HAVE_RANDOM123)
    const auto k = s.key();
    const double t_r123 = seconds([&] {
      r123::Philox4x32 g;
      r123::Philox4x32::key_type kk = {{k[0], k[1]}};
      for (std::size_t b = 0; b < m / 4; ++b) {
        r123::Philox4x32::ctr_type c = {{static_cast<std::uint32_t>(b), 0, 0, 0}};
        const auto r = g(c, kk);
        std::memcpy(&w[4 * b], r.v, 16);
      }
    });
    timing_row("words (all threads)", m * 4, t_words, "Random123 scalar, 1 thread", t_r123);
#endif
    const double t_mt = seconds([&] {
      std::mt19937 g(1);
      std::uniform_real_distribution<float> d(0.0f, 1.0f);
      for (std::size_t i = 0; i < m; ++i) f[i] = d(g);
    }, 1);
    timing_row("uniform f32", m * 4, t_unif, "mt19937+uniform_real, 1 thr", t_mt);
    const double t_write = seconds([&] { std::fill(f.begin(), f.end(), 1.0f); });
    std::printf("time    streaming write of the same bytes: %.2f GB/s (bitexact words at %.0f%% of it)\n",
                m * 4 / t_write / 1e9, 100.0 * t_write / t_words);
    std::printf("        (random_bench measures each peer properly; this is a quick look)\n");
  }
  std::printf("\n");
  const int reduce_status = run_reduce(n, timing);
  return a.mismatches == 0 && reduce_status == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t n = 1000003;
  bool timing = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--n" && i + 1 < argc) {
      n = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--no-timing") {
      timing = false;
    } else if (a == "--help" || a == "-h") {
      std::printf("usage: bitexact-audit [--n N] [--no-timing]\n");
      return 0;
    } else {
      std::fprintf(stderr, "bitexact-audit: unknown argument '%s' (try --help)\n", argv[i]);
      return 2;
    }
  }
  if (n == 0) {
    std::fprintf(stderr, "bitexact-audit: --n must be >= 1\n");
    return 2;
  }
  try {
    return run(n, timing);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bitexact-audit: %s\n", e.what());
    return 2;
  }
}
