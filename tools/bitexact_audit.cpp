// bitexact-audit: the command a new user runs first.
//
// Families: random (generators and distributions), reduce (sum/dot, fixed_order and exact) and
// scatter (index_add 1-D and rows, segment max; both tiers; the CUDA scatter pipeline through
// its CPU emulation), gemm (fixed_order sgemm/dgemm/bf16 and a split-K decode shape; timed
// against OpenBLAS when linked) and conv (conv2d forward both tiers, backward-data,
// backward-weight, max and avg pooling forward and backward, both layouts; CPU only).
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
#include <bitexact/cuda/reduce_emulation.hpp>
#include <bitexact/cuda/random_kernels.hpp>
#include <bitexact/reference/random.hpp>
#include <bitexact/reference/reduce.hpp>
#include <bitexact/reference/scatter.hpp>
#include <bitexact/reference/conv.hpp>  // conv family
#include <bitexact/cuda/conv_emulation.hpp>  // conv family, CUDA kernels emulated (cudaconv)
#include <bitexact/reference/pool.hpp>
#include <bitexact/cuda/scatter_kernels.hpp>

#if defined(BITEXACT_HAVE_RANDOM123)
#include <Random123/philox.h>
#endif
// gemm family (gemm-cpu branch)
#include <bitexact/reference/gemm.hpp>
#if defined(BITEXACT_HAVE_OPENBLAS)
#include <cblas.h>
extern "C" void openblas_set_num_threads(int);
extern "C" char* openblas_get_corename(void);
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
  /// The CUDA kernels run through the CPU emulation for a launch shape (cuda/reduce_emulation.hpp).
  std::function<void(void*, cuda::launch_shape)> cuda_emulated;
};

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
      if (o.cuda_emulated) {
        o.cuda_emulated(got, s);
        report("cuda-emu " + std::to_string(s.grid) + "x" + std::to_string(s.block));
      }
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
       [&](void* o, execution e) { put_result(o, sum(x, n, tier::fixed_order, e)); },
       [&](void* o, cuda::launch_shape sh) { put_result(o, cuda::emulated_sum(x, n, tier::fixed_order, sh)); }},
      {"sum_f32/exact", 4, [&](void* o) { put_result(o, reference::sum_exact(x, n)); },
       [&](void* o, execution e) { put_result(o, sum(x, n, tier::exact, e)); },
       [&](void* o, cuda::launch_shape sh) { put_result(o, cuda::emulated_sum(x, n, tier::exact, sh)); }},
      {"dot_f32/fixed", 4, [&](void* o) { put_result(o, reference::dot_fixed_order(x, y, n)); },
       [&](void* o, execution e) { put_result(o, dot(x, y, n, tier::fixed_order, e)); },
       [&](void* o, cuda::launch_shape sh) { put_result(o, cuda::emulated_dot(x, y, n, tier::fixed_order, sh)); }},
      {"dot_f32/exact", 4, [&](void* o) { put_result(o, reference::dot_exact(x, y, n)); },
       [&](void* o, execution e) { put_result(o, dot(x, y, n, tier::exact, e)); },
       [&](void* o, cuda::launch_shape sh) { put_result(o, cuda::emulated_dot(x, y, n, tier::exact, sh)); }},
      {"sum_f64/fixed", 8, [&](void* o) { put_result(o, reference::sum_fixed_order(u, n)); },
       [&](void* o, execution e) { put_result(o, sum(u, n, tier::fixed_order, e)); },
       [&](void* o, cuda::launch_shape sh) { put_result(o, cuda::emulated_sum(u, n, tier::fixed_order, sh)); }},
      {"sum_f64/exact", 8, [&](void* o) { put_result(o, reference::sum_exact(u, n)); },
       [&](void* o, execution e) { put_result(o, sum(u, n, tier::exact, e)); },
       [&](void* o, cuda::launch_shape sh) { put_result(o, cuda::emulated_sum(u, n, tier::exact, sh)); }},
      {"dot_f64/fixed", 8, [&](void* o) { put_result(o, reference::dot_fixed_order(u, v, n)); },
       [&](void* o, execution e) { put_result(o, dot(u, v, n, tier::fixed_order, e)); },
       [&](void* o, cuda::launch_shape sh) { put_result(o, cuda::emulated_dot(u, v, n, tier::fixed_order, sh)); }},
      {"dot_f64/exact", 8, [&](void* o) { put_result(o, reference::dot_exact(u, v, n)); },
       [&](void* o, execution e) { put_result(o, dot(u, v, n, tier::exact, e)); },
       [&](void* o, cuda::launch_shape sh) { put_result(o, cuda::emulated_dot(u, v, n, tier::exact, sh)); }},
  };
  for (const auto& o : ops) a.run(o);
  std::printf("\nreduce: %d configurations, %d disagree with the reference: %s\n", a.configs, a.mismatches,
              a.mismatches == 0 ? "ALL AGREE" : "FAILED");
  std::printf("\n");

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

// ---------------------------------------------------------------- scatter family

struct scatter_audit {
  int configs = 0, mismatches = 0;
  /// ref(out) and cpu(out, exec) each fill `bytes` bytes, starting from the same initial bytes.
  /// cuda_emulated (optional) runs the CUDA kernels through the CPU emulation for a launch shape.
  void run(const std::string& name, const std::vector<unsigned char>& init, const std::function<void(void*)>& ref,
           const std::function<void(void*, execution)>& cpu,
           const std::function<void(void*, cuda::launch_shape)>& cuda_emulated = nullptr) {
    std::vector<unsigned char> want = init, got(init.size());
    ref(want.data());
    const std::uint64_t h_want = fnv1a64(want.data(), want.size());
    std::printf("scatter %-20s reference           %016llx\n", name.c_str(), static_cast<unsigned long long>(h_want));
    auto report = [&](const std::string& cfg) {
      const std::uint64_t h = fnv1a64(got.data(), got.size());
      ++configs;
      const bool ok = h == h_want;
      if (!ok) ++mismatches;
      std::printf("scatter %-20s %-19s %016llx %s\n", name.c_str(), cfg.c_str(), static_cast<unsigned long long>(h),
                  ok ? "ok" : "MISMATCH");
    };
    for (isa i : usable_isas())
      for (int t : {1, 2, 3, 4, 7, 8}) {
        got = init;
        cpu(got.data(), execution{t, i});
        report(std::string("cpu ") + isa_name(i) + " t=" + std::to_string(t));
      }
    for (cuda::launch_shape s : {cuda::launch_shape{1, 32}, cuda::launch_shape{7, 96}, cuda::launch_shape{80, 256}}) {
      if (!cuda_emulated) break;
      got = init;
      cuda_emulated(got.data(), s);
      report("cuda-emu " + std::to_string(s.grid) + "x" + std::to_string(s.block));
    }
  }
};

template <class T>
std::vector<unsigned char> bytes_of(const std::vector<T>& v) {
  std::vector<unsigned char> b(v.size() * sizeof(T));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

/// Inputs shared by the scatter ops and their CUDA hooks.
struct scatter_inputs {
  std::size_t n = 0, n_out = 0, width = 33, rows = 0;
  std::vector<std::int64_t> idx, row_idx;
  std::vector<float> src, init, row_src, row_init;
  std::vector<double> srcd, initd;
};
scatter_inputs& scatter_data() {
  static scatter_inputs d;
  return d;
}

/// A non-deterministic peer: float atomics (compare-and-swap) from 2 threads.
void atomic_scatter(float* out, const std::int64_t* idx, const float* src, std::size_t n) {
  auto work = [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i) {
      float* o = out + idx[i];
      const std::uint32_t start = __atomic_load_n(reinterpret_cast<std::uint32_t*>(o), __ATOMIC_RELAXED);
      float cur;
      std::memcpy(&cur, &start, 4);
      for (;;) {
        const float next = cur + src[i];
        std::uint32_t expected, desired;
        std::memcpy(&expected, &cur, 4);
        std::memcpy(&desired, &next, 4);
        if (__atomic_compare_exchange_n(reinterpret_cast<std::uint32_t*>(o), &expected, desired, false, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED))
          break;
        std::memcpy(&cur, &expected, 4);
      }
    }
  };
  std::thread other(work, n / 2, n);
  work(0, n / 2);
  other.join();
}

/// The deterministic peer a CPU user compares with first: the plain loop on one thread
/// (PyTorch's CPU index_add_ is essentially this loop).
__attribute__((noinline)) void serial_scatter(float* out, const std::int64_t* idx, const float* src, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out[idx[i]] += src[i];
}

int run_scatter(std::size_t n, bool timing) {
  scatter_audit a;
  scatter_inputs& d = scatter_data();
  d.n = n;
  d.n_out = std::max<std::size_t>(1, n / 64);
  d.rows = std::max<std::size_t>(1, n / 32);
  const auto s = stream<philox4x32_10>::from_seed(20261121, 3, 0, tag_of("audit-scatter"));
  // Skewed targets from integer arithmetic only (the same data on every CPU family, so the
  // cross-architecture test can compare hashes): a random word shifted right by a random
  // amount favours small targets, like a Zipf law.
  std::vector<std::uint32_t> w(n + d.rows);
  generate(s, 0, w.data(), w.size());
  d.idx.resize(n);
  for (std::size_t i = 0; i < n; ++i) d.idx[i] = static_cast<std::int64_t>((w[i] >> (w[i] % 24)) % d.n_out);
  d.row_idx.resize(d.rows);
  for (std::size_t i = 0; i < d.rows; ++i) d.row_idx[i] = static_cast<std::int64_t>(w[n + i] % std::max<std::size_t>(1, d.n_out / 4));
  d.src.resize(n);
  generate_normal(s, 0, d.src.data(), n);
  d.srcd.resize(n);
  generate_normal(s, n, d.srcd.data(), n);
  d.init.assign(d.n_out, 0.5f);
  d.initd.assign(d.n_out, -0.25);
  d.row_src.resize(d.rows * d.width);
  generate_normal(s, 3 * n, d.row_src.data(), d.row_src.size());
  d.row_init.assign(std::max<std::size_t>(1, d.n_out / 4) * d.width, 1.0f);
  const std::size_t row_targets = std::max<std::size_t>(1, d.n_out / 4);
  std::printf("scatter_order_version=%d  n=%zu sources into %zu targets (Zipf-like), rows: %zu x %zu into %zu\n",
              scatter_order_version, n, d.n_out, d.rows, d.width, row_targets);

  a.run("index_add_f32/fixed", bytes_of(d.init),
        [&](void* o) { reference::index_add_fixed_order<float, float>(static_cast<float*>(o), d.n_out, d.idx.data(), d.src.data(), n); },
        [&](void* o, execution e) { index_add(static_cast<float*>(o), d.n_out, d.idx.data(), d.src.data(), n, tier::fixed_order, e); },
        [&](void* o, cuda::launch_shape sh) { cuda::emulate::index_add(static_cast<float*>(o), d.n_out, d.idx.data(), d.src.data(), n, tier::fixed_order, sh); });
  a.run("index_add_f32/exact", bytes_of(d.init),
        [&](void* o) { reference::index_add_exact<float, float>(static_cast<float*>(o), d.n_out, d.idx.data(), d.src.data(), n); },
        [&](void* o, execution e) { index_add(static_cast<float*>(o), d.n_out, d.idx.data(), d.src.data(), n, tier::exact, e); },
        [&](void* o, cuda::launch_shape sh) { cuda::emulate::index_add(static_cast<float*>(o), d.n_out, d.idx.data(), d.src.data(), n, tier::exact, sh); });
  // Few collisions: n sources into n targets (uniform), the many-target strategy of the CPU
  // (bucketed grouping, short groups applied directly) at the default size.
  {
    std::vector<std::int64_t> sparse(n);
    for (std::size_t i = 0; i < n; ++i) sparse[i] = static_cast<std::int64_t>(w[i] % n);
    const std::vector<float> sparse_init(n, 0.75f);
    for (tier t : {tier::fixed_order, tier::exact})
      a.run(std::string("index_add_n->n/") + (t == tier::exact ? "exact" : "fixed"), bytes_of(sparse_init),
            [&](void* o) {
              if (t == tier::exact) reference::index_add_exact<float, float>(static_cast<float*>(o), n, sparse.data(), d.src.data(), n);
              else reference::index_add_fixed_order<float, float>(static_cast<float*>(o), n, sparse.data(), d.src.data(), n);
            },
            [&](void* o, execution e) { index_add(static_cast<float*>(o), n, sparse.data(), d.src.data(), n, t, e); },
            [&](void* o, cuda::launch_shape sh) { cuda::emulate::index_add(static_cast<float*>(o), n, sparse.data(), d.src.data(), n, t, sh); });
  }
  a.run("index_add_f64/fixed", bytes_of(d.initd),
        [&](void* o) { reference::index_add_fixed_order<double, double>(static_cast<double*>(o), d.n_out, d.idx.data(), d.srcd.data(), n); },
        [&](void* o, execution e) { index_add(static_cast<double*>(o), d.n_out, d.idx.data(), d.srcd.data(), n, tier::fixed_order, e); },
        [&](void* o, cuda::launch_shape sh) { cuda::emulate::index_add(static_cast<double*>(o), d.n_out, d.idx.data(), d.srcd.data(), n, tier::fixed_order, sh); });
  a.run("index_add_rows/fixed", bytes_of(d.row_init),
        [&](void* o) { reference::index_add_rows<float, float>(static_cast<float*>(o), row_targets, d.width, d.row_idx.data(), d.row_src.data(), d.rows, false); },
        [&](void* o, execution e) { index_add_rows(static_cast<float*>(o), row_targets, d.width, d.row_idx.data(), d.row_src.data(), d.rows, tier::fixed_order, e); },
        [&](void* o, cuda::launch_shape sh) { cuda::emulate::index_add_rows(static_cast<float*>(o), row_targets, d.width, d.row_idx.data(), d.row_src.data(), d.rows, tier::fixed_order, sh); });
  a.run("segment_max_f32", bytes_of(d.init),
        [&](void* o) { reference::segment_reduce(static_cast<float*>(o), d.n_out, d.idx.data(), d.src.data(), n, scatter_op::max, false); },
        [&](void* o, execution e) { segment_reduce(static_cast<float*>(o), d.n_out, d.idx.data(), d.src.data(), n, scatter_op::max, tier::fixed_order, e); },
        [&](void* o, cuda::launch_shape sh) { cuda::emulate::segment_reduce(static_cast<float*>(o), d.n_out, d.idx.data(), d.src.data(), n, scatter_op::max, tier::fixed_order, sh); });
  // Embedding bags over the rows' table: n / 4 lookups in bags of about 16 (every 7th bag
  // empty), weighted by the normal sources; the backward of mean mode; a weighted histogram;
  // unweighted bincount.
  {
    const std::size_t n_ind = std::max<std::size_t>(1, n / 4), n_bags = std::max<std::size_t>(1, n_ind / 16);
    const std::size_t table_rows = row_targets, W = d.width;
    std::vector<std::int64_t> ind(n_ind), off(n_bags);
    for (std::size_t j = 0; j < n_ind; ++j) ind[j] = d.idx[j] % static_cast<std::int64_t>(table_rows);
    for (std::size_t b = 0; b < n_bags; ++b)
      off[b] = (b % 7 == 3) ? off[b - 1] : static_cast<std::int64_t>(b * n_ind / n_bags);
    const float* table = d.row_src.data();
    const float* wts = d.src.data();
    const std::vector<float> bag_init(n_bags * W, 3.0f);
    for (tier t : {tier::fixed_order, tier::exact}) {
      a.run(std::string("embedding_bag_w/") + (t == tier::exact ? "exact" : "fixed"), bytes_of(bag_init),
            [&](void* o) { reference::embedding_bag(static_cast<float*>(o), table, W, ind.data(), n_ind, off.data(), n_bags, bag_mode::sum, wts, t == tier::exact); },
            [&](void* o, execution e) { embedding_bag(static_cast<float*>(o), table, table_rows, W, ind.data(), n_ind, off.data(), n_bags, bag_mode::sum, wts, t, e); },
            [&](void* o, cuda::launch_shape sh) { cuda::emulate::embedding_bag(static_cast<float*>(o), table, table_rows, W, ind.data(), n_ind, off.data(), n_bags, bag_mode::sum, wts, t, sh); });
    }
    a.run("embedding_bag_mean", bytes_of(bag_init),
          [&](void* o) { reference::embedding_bag(static_cast<float*>(o), table, W, ind.data(), n_ind, off.data(), n_bags, bag_mode::mean, static_cast<const float*>(nullptr), false); },
          [&](void* o, execution e) { embedding_bag(static_cast<float*>(o), table, table_rows, W, ind.data(), n_ind, off.data(), n_bags, bag_mode::mean, static_cast<const float*>(nullptr), tier::fixed_order, e); },
          [&](void* o, cuda::launch_shape sh) { cuda::emulate::embedding_bag(static_cast<float*>(o), table, table_rows, W, ind.data(), n_ind, off.data(), n_bags, bag_mode::mean, static_cast<const float*>(nullptr), tier::fixed_order, sh); });
    const float* grad_out = d.row_src.data() + (d.row_src.size() - n_bags * W);
    const std::vector<float> grad_init(table_rows * W, 0.125f);
    a.run("embedding_bag_bwd/ex", bytes_of(grad_init),
          [&](void* o) { reference::embedding_bag_backward(static_cast<float*>(o), table_rows, W, grad_out, ind.data(), n_ind, off.data(), n_bags, bag_mode::mean, static_cast<const float*>(nullptr), true); },
          [&](void* o, execution e) { embedding_bag_backward(static_cast<float*>(o), table_rows, W, grad_out, ind.data(), n_ind, off.data(), n_bags, bag_mode::mean, static_cast<const float*>(nullptr), tier::exact, e); },
          [&](void* o, cuda::launch_shape sh) { cuda::emulate::embedding_bag_backward(static_cast<float*>(o), table_rows, W, grad_out, ind.data(), n_ind, off.data(), n_bags, bag_mode::mean, static_cast<const float*>(nullptr), tier::exact, sh); });
    const float* hw = d.row_src.data();
    const std::vector<float> hist_init(100, 0.0f);
    a.run("histogram_w/fixed", bytes_of(hist_init),
          [&](void* o) { reference::histogram(static_cast<float*>(o), 100, -2.0f, 2.0f, d.src.data(), hw, n, false); },
          [&](void* o, execution e) { histogram(static_cast<float*>(o), 100, -2.0f, 2.0f, d.src.data(), hw, n, tier::fixed_order, e); },
          [&](void* o, cuda::launch_shape sh) { cuda::emulate::histogram(static_cast<float*>(o), 100, -2.0f, 2.0f, d.src.data(), hw, n, tier::fixed_order, sh); });
    const std::vector<std::int64_t> count_init(d.n_out, -1);
    a.run("bincount", bytes_of(count_init),
          [&](void* o) {
            auto* c = static_cast<std::int64_t*>(o);
            std::fill(c, c + d.n_out, 0);
            for (std::size_t i = 0; i < n; ++i) ++c[d.idx[i]];
          },
          [&](void* o, execution e) { bincount(static_cast<std::int64_t*>(o), d.n_out, d.idx.data(), n, e); },
          [&](void* o, cuda::launch_shape sh) { cuda::emulate::bincount(static_cast<std::int64_t*>(o), d.n_out, d.idx.data(), n, sh); });
  }
  std::printf("\nscatter: %d configurations, %d disagree with the reference: %s\n\n", a.configs, a.mismatches,
              a.mismatches == 0 ? "ALL AGREE" : "FAILED");

  if (timing) {
    const std::size_t m = std::size_t{1} << 22;
    std::vector<std::int64_t> ti(m);
    std::vector<std::uint32_t> tw(m);
    generate(s, 1u << 30, tw.data(), m);
    std::vector<float> tsrc(m, 0.25f);
    for (std::size_t out_n : {std::size_t{1024}, m}) {
      for (std::size_t i = 0; i < m; ++i) ti[i] = static_cast<std::int64_t>(tw[i] % out_n);
      std::vector<float> out(out_n);
      const double t_fo = seconds([&] { index_add(out.data(), out_n, ti.data(), tsrc.data(), m); });
      const double t_ex = seconds([&] { index_add(out.data(), out_n, ti.data(), tsrc.data(), m, tier::exact); });
      const double t_at = seconds([&] { atomic_scatter(out.data(), ti.data(), tsrc.data(), m); });
      const double t_se = seconds([&] { serial_scatter(out.data(), ti.data(), tsrc.data(), m); });
      const double t_peer = std::min(t_at, t_se);
      const std::string what = "index_add 4Mi->" + std::string(out_n == 1024 ? "1Ki" : "4Mi");
      std::printf("time    %-22s fixed_order %7.2f ms  exact %7.2f ms  serial loop %7.2f ms  float-atomic CAS, 2 thr %7.2f ms\n"
                  "        ratios to the faster peer (%s): fixed_order %.2fx, exact %.2fx\n",
                  what.c_str(), t_fo * 1e3, t_ex * 1e3, t_se * 1e3, t_at * 1e3, t_se <= t_at ? "serial loop" : "atomics",
                  t_fo / t_peer, t_ex / t_peer);
    }
    std::printf("        (scatter_bench measures every peer and index distribution properly; this is a quick look)\n");
  }
  return a.mismatches == 0 ? 0 : 1;
}

// ---------------------------------------------------------------- conv family (conv branch)

/// conv2d forward (both tiers), backward-data, backward-weight and max/avg pooling, NCHW and
/// NHWC, every ISA x threads {1,2,3,4,7,8}, against the reference. Speed: conv_bench.
int run_conv() {
  int configs = 0, mismatches = 0;
  auto fill = [](std::vector<float>& v, std::uint32_t seed) {
    std::uint32_t z = seed;
    for (auto& x : v) {
      z = z * 1664525u + 1013904223u;
      x = static_cast<float>(static_cast<int>(z >> 9) - (1 << 22)) * 0x1p-21f;
    }
  };
  for (layout l : {layout::nchw, layout::nhwc}) {
    conv2d_shape s;
    s.batch = 3, s.in_channels = 12, s.in_h = 19, s.in_w = 17, s.out_channels = 10, s.kernel_h = 3, s.kernel_w = 3;
    s.stride_h = 2, s.pad_h = 1, s.pad_w = 1, s.dilation_w = 2, s.groups = 2, s.data = l;
    const std::size_t nx = 3 * 12 * 19 * 17, nw = 10 * 6 * 9, ny = 3 * 10 * s.out_h() * s.out_w();
    std::vector<float> x(nx), w(nw), b(10), dy(ny);
    fill(x, 1), fill(w, 2), fill(b, 3), fill(dy, 4);
    pool2d_shape ps;
    ps.batch = 3, ps.channels = 12, ps.in_h = 19, ps.in_w = 17, ps.kernel_h = ps.kernel_w = 3;
    ps.stride_h = ps.stride_w = 2, ps.pad_h = ps.pad_w = 1, ps.ceil_mode = true, ps.data = l;
    const std::size_t OH = ps.out_h(), OW = ps.out_w(), npy = 3 * 12 * OH * OW;
    std::vector<float> pdy(npy), py(npy);
    std::vector<std::int64_t> pidx(npy);
    fill(pdy, 5);
    reference::max_pool2d_forward(3, 12, 19, 17, OH, OW, 3, 3, 2, 2, 1, 1, l, x.data(), py.data(), pidx.data());
    struct conv_op {
      const char* name;
      std::size_t n;
      std::function<void(float*)> ref;
      std::function<void(float*, execution)> cpu;
    };
    const std::vector<conv_op> ops = {
        {"conv2d_fwd", ny, [&](float* o) { reference::conv2d_forward<float>(s, x.data(), w.data(), b.data(), o, false); },
         [&](float* o, execution e) { conv2d_forward(s, x.data(), w.data(), b.data(), o, tier::fixed_order, e); }},
        {"conv2d_fwd_exact", ny, [&](float* o) { reference::conv2d_forward<float>(s, x.data(), w.data(), b.data(), o, true); },
         [&](float* o, execution e) { conv2d_forward(s, x.data(), w.data(), b.data(), o, tier::exact, e); }},
        {"conv2d_bwd_data", nx, [&](float* o) { reference::conv2d_backward_data<float>(s, dy.data(), w.data(), o, false); },
         [&](float* o, execution e) { conv2d_backward_data(s, dy.data(), w.data(), o, tier::fixed_order, e); }},
        {"conv2d_bwd_weight", nw,
         [&](float* o) { reference::conv2d_backward_weight<float>(s, x.data(), dy.data(), o, nullptr, false); },
         [&](float* o, execution e) { conv2d_backward_weight(s, x.data(), dy.data(), o, nullptr, tier::fixed_order, e); }},
        {"max_pool2d_fwd", npy, [&](float* o) { std::copy(py.begin(), py.end(), o); },
         [&](float* o, execution e) { max_pool2d_forward(ps, x.data(), o, nullptr, e); }},
        {"max_pool2d_bwd", nx,
         [&](float* o) { reference::max_pool2d_backward(3, 12, 19, 17, OH, OW, l, pdy.data(), pidx.data(), o); },
         [&](float* o, execution e) { max_pool2d_backward(ps, pdy.data(), pidx.data(), o, e); }},
        {"avg_pool2d_fwd", npy,
         [&](float* o) { reference::avg_pool2d_forward(3, 12, 19, 17, OH, OW, 3, 3, 2, 2, 1, 1, true, false, l, x.data(), o); },
         [&](float* o, execution e) { avg_pool2d_forward(ps, x.data(), o, e); }},
        {"avg_pool2d_bwd", nx,
         [&](float* o) { reference::avg_pool2d_backward(3, 12, 19, 17, OH, OW, 3, 3, 2, 2, 1, 1, true, false, l, pdy.data(), o); },
         [&](float* o, execution e) { avg_pool2d_backward(ps, pdy.data(), o, e); }},
    };
    for (const conv_op& op : ops) {
      std::vector<float> buf(op.n);
      op.ref(buf.data());
      const std::uint64_t want = fnv1a64(buf.data(), op.n * 4);
      int bad = 0, n = 0;
      for (isa i : usable_isas())
        for (int t : {1, 2, 3, 4, 7, 8}) {
          std::fill(buf.begin(), buf.end(), 0.0f);
          op.cpu(buf.data(), execution{t, i});
          ++n;
          if (fnv1a64(buf.data(), op.n * 4) != want) ++bad;
        }
      configs += n;
      mismatches += bad;
      // The reference line alone (the aarch64 cross check compares these lines across CPUs, whose
      // ISA counts differ), then what this CPU's configurations gave.
      const char* lay = l == layout::nchw ? "nchw" : "nhwc";
      std::printf("conv    %-18s %-5s reference %016llx\n", op.name, lay, static_cast<unsigned long long>(want));
      std::printf("conv    %-18s %-5s %2d configurations (ISAs x threads) %s\n", op.name, lay, n,
                  bad ? "MISMATCH" : "all agree");
    }
    // --- the CUDA kernels (cuda/conv_kernels.hpp) under the CPU emulation (cudaconv branch):
    // three launch shapes {grid, K splits, block} per op; pooling {grid, block, owners}.
    const cuda::conv_launch claunch[] = {{1, 1, 32}, {7, 3, 96}, {0, 0, 256}};
    const cuda::pool_launch plaunch[] = {{1, 32, 1}, {7, 96, 5}, {0, 256, 0}};
    struct emu_op {
      const char* name;
      std::size_t n;
      std::function<void(float*)> ref;
      std::function<void(float*, int)> run;  // the launch shape's index
    };
    const std::vector<emu_op> emu_ops = {
        {"conv2d_fwd", ny, ops[0].ref, [&](float* o, int e) {
           cuda::emulated_conv2d_forward<float>(s, x.data(), w.data(), b.data(), o, tier::fixed_order, claunch[e]); }},
        {"conv2d_fwd_exact", ny, ops[1].ref, [&](float* o, int e) {
           cuda::emulated_conv2d_forward<float>(s, x.data(), w.data(), b.data(), o, tier::exact, claunch[e]); }},
        {"conv2d_bwd_data", nx, ops[2].ref, [&](float* o, int e) {
           cuda::emulated_conv2d_backward_data<float>(s, dy.data(), w.data(), o, tier::fixed_order, claunch[e]); }},
        {"conv2d_bwd_weight", nw, ops[3].ref, [&](float* o, int e) {
           cuda::emulated_conv2d_backward_weight<float>(s, x.data(), dy.data(), o, nullptr, tier::fixed_order, claunch[e]); }},
        {"max_pool2d_fwd", npy, ops[4].ref, [&](float* o, int e) {
           cuda::emulated_max_pool2d_forward(ps, x.data(), o, static_cast<std::int64_t*>(nullptr), plaunch[e]); }},
        {"max_pool2d_bwd", nx, ops[5].ref, [&](float* o, int e) {
           cuda::emulated_max_pool2d_backward(ps, pdy.data(), pidx.data(), o, plaunch[e]); }},
        {"avg_pool2d_fwd", npy, ops[6].ref, [&](float* o, int e) {
           cuda::emulated_avg_pool2d_forward(ps, x.data(), o, plaunch[e]); }},
        {"avg_pool2d_bwd", nx, ops[7].ref, [&](float* o, int e) {
           cuda::emulated_avg_pool2d_backward(ps, pdy.data(), o, plaunch[e]); }},
    };
    for (const emu_op& op : emu_ops) {
      std::vector<float> buf(op.n);
      op.ref(buf.data());
      const std::uint64_t want = fnv1a64(buf.data(), op.n * 4);
      int bad = 0;
      for (int shape = 0; shape < 3; ++shape) {
        std::fill(buf.begin(), buf.end(), 0.0f);
        op.run(buf.data(), shape);
        if (fnv1a64(buf.data(), op.n * 4) != want) ++bad;
      }
      configs += 3;
      mismatches += bad;
      std::printf("conv    %-18s %-5s  3 cuda-emu launches (grid x splits x block) %s\n", op.name,
                  l == layout::nchw ? "nchw" : "nhwc", bad ? "MISMATCH" : "all agree");
    }
  }
  std::printf("\nconv: %d configurations, %d disagree with the reference: %s\n\n",
              configs, mismatches, mismatches == 0 ? "ALL AGREE" : "FAILED");
  return mismatches == 0 ? 0 : 1;
}

// ---------------------------------------------------------------- gemm family (gemm-cpu branch)

/// fixed_order GEMM: every ISA x thread count against the reference, by hash of C's bytes.
int run_gemm(bool timing) {
  struct gemm_case {
    const char* name;
    std::size_t m, n, k;
    int type;  // 0 float, 1 double, 2 bfloat16 inputs (float C)
  };
  const gemm_case cases[] = {{"sgemm 67x45x600 nt", 67, 45, 600, 0},
                             {"dgemm 67x45x600 nt", 67, 45, 600, 1},
                             {"bf16 67x45x600 nt", 67, 45, 600, 2},
                             {"sgemm 2x40x2000 nt", 2, 40, 2000, 0}};  // small C: threads split K
  const auto s = stream<philox4x32_10>::from_seed(20261121, 3, 0, tag_of("audit-gemm"));
  int configs = 0, mismatches = 0;
  std::printf("gemm_order_version=%d  (C = 1.5 A B^T + 0.5 C, inputs one element past an aligned address)\n",
              gemm_order_version);
  for (const gemm_case& g : cases) {
    std::vector<double> a(g.m * g.k + 1), b(g.k * g.n + 1), c0(g.m * g.n);
    generate_normal(s, 0, a.data(), a.size());
    generate_normal(s, a.size(), b.data(), b.size());
    generate_normal(s, a.size() + b.size(), c0.data(), c0.size());
    auto hash_of = [&](auto tag, bool ref, execution e) {
      using C = decltype(tag);
      std::vector<C> c(c0.begin(), c0.end());
      const auto N = transpose::no, Y = transpose::yes;
      if (g.type == 2) {
        std::vector<bitexact::bfloat16> ah(a.size()), bh(b.size());
        for (std::size_t i = 0; i < a.size(); ++i) ah[i] = bitexact::bfloat16::from_float(static_cast<float>(a[i]));
        for (std::size_t i = 0; i < b.size(); ++i) bh[i] = bitexact::bfloat16::from_float(static_cast<float>(b[i]));
        if (ref)
          reference::gemm_fixed_order<float, bitexact::bfloat16>(N, Y, g.m, g.n, g.k, 1.5f, ah.data() + 1, g.k, bh.data() + 1,
                                                       g.k, 0.5f, reinterpret_cast<float*>(c.data()), g.n);
        else
          gemm(N, Y, g.m, g.n, g.k, 1.5f, ah.data() + 1, g.k, bh.data() + 1, g.k, 0.5f,
               reinterpret_cast<float*>(c.data()), g.n, tier::fixed_order, e);
      } else {
        std::vector<C> ac(a.begin(), a.end()), bc(b.begin(), b.end());
        if (ref)
          reference::gemm_fixed_order<C, C>(N, Y, g.m, g.n, g.k, C(1.5), ac.data() + 1, g.k, bc.data() + 1, g.k,
                                            C(0.5), c.data(), g.n);
        else
          gemm<C>(N, Y, g.m, g.n, g.k, C(1.5), ac.data() + 1, g.k, bc.data() + 1, g.k, C(0.5), c.data(), g.n,
                  tier::fixed_order, e);
      }
      return fnv1a64(c.data(), c.size() * sizeof(C));
    };
    auto hash = [&](bool ref, execution e) { return g.type == 1 ? hash_of(double{}, ref, e) : hash_of(float{}, ref, e); };
    const std::uint64_t want = hash(true, {});
    std::printf("gemm    %-18s reference           %016llx\n", g.name, static_cast<unsigned long long>(want));
    for (isa i : usable_isas())
      for (int t : {1, 2, 3, 4, 7, 8}) {
        const std::uint64_t h = hash(false, execution{t, i});
        ++configs;
        const bool ok = h == want;
        if (!ok) ++mismatches;
        std::printf("gemm    %-18s %-19s %016llx %s\n", g.name,
                    (std::string("cpu ") + isa_name(i) + " t=" + std::to_string(t)).c_str(),
                    static_cast<unsigned long long>(h), ok ? "ok" : "MISMATCH");
      }
  }
  std::printf("\ngemm: %d configurations, %d disagree with the reference: %s\n", configs, mismatches,
              mismatches == 0 ? "ALL AGREE" : "FAILED");
  if (timing) {
    const std::size_t n = 1024;
    std::vector<float> a(n * n), b(n * n), c(n * n);
    generate_normal(s, 0, a.data(), n * n);
    generate_normal(s, n * n, b.data(), n * n);
    const int t = resolved_threads();
    const double t_ours = seconds([&] {
      gemm<float>(transpose::no, transpose::no, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    });
    const double flops = 2.0 * n * n * n;
#if defined(BITEXACT_HAVE_OPENBLAS)
    openblas_set_num_threads(t);
    const double t_peer = seconds([&] {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    });
    std::printf("time    sgemm 1024^3 (%d thr) bitexact %7.1f GFLOP/s   OpenBLAS (%s) %7.1f GFLOP/s   ratio %.2fx\n", t,
                flops / t_ours * 1e-9, openblas_get_corename(), flops / t_peer * 1e-9, t_peer / t_ours);
    std::printf("        (OpenBLAS picks its kernels from cpuid; set OPENBLAS_CORETYPE if it names an old core)\n");
#else
    std::printf("time    sgemm 1024^3 (%d thr) bitexact %7.1f GFLOP/s   (OpenBLAS not linked: no peer)\n", t,
                flops / t_ours * 1e-9);
#endif
    std::printf("        (gemm_bench measures each peer properly, oneDNN included; this is a quick look)\n");
  }
  std::printf("\n");
  return mismatches == 0 ? 0 : 1;
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
  const int scatter_status = run_scatter(n, timing);
  const int gemm_status = run_gemm(timing);  // gemm family (gemm-cpu branch)
  const int conv_status = run_conv();  // conv family (conv branch)
  {  // hardening (issue 14): which thread splits really ran (BITEXACT_MIN_WORK_PER_THREAD lowers the grain)
    const std::uint64_t seen = cpu::detail::split_seen().load();
    std::printf("parallel regions ran on threads:");
    for (int k = 2; k < 64; ++k)
      if ((seen >> k) & 1u) std::printf(" %d", k);
    std::printf("\n");
  }
  return a.mismatches == 0 && reduce_status == 0 && scatter_status == 0 && gemm_status == 0 &&
                 conv_status == 0
             ? 0
             : 1;
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
