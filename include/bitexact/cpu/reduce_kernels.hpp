// bitexact/cpu/reduce_kernels.hpp - CPU kernels of the reduction family (sum, dot, and the ops
// built on them), one instantiation per xsimd Arch (or scalar_arch).
//
// fixed_order: a leaf (core/fixed_order.hpp) is reduced with its W virtual lanes held in
// W / batch_size xsimd batches (AVX-512 float: 4 zmm, AVX2: 8 ymm, SSE2: 16 xmm; scalar_arch: a
// plain array). Lane l lives in batch l / N, element l % N, so `acc[k] += load(i + k N)` is
// exactly "lane (i - leaf start) mod W adds the next value". A leaf's tail (fewer than W values
// left) is copied into a buffer padded with -0.0 (x + -0.0 == x for every x, including -0.0 and
// NaN), so it is one more full step. The lane tree halves across batches (acc[k] += acc[k + w/N])
// and finishes inside batch 0 in scalar code: the documented order. Products for dot are
// computed by the batch multiply and pinned in a register (no_contract) before the add, so no
// compiler can fuse them. The threaded driver takes whole aligned leaf groups
// (core::group_leaves) per thread, reduces each group with a tree_stack and pushes the group
// values at level group_level into the top tree_stack in group order.
//
// exact sum and dot: first the certified filter (core/exact_filter.hpp, filter_reduce below):
// blocks of 4096 terms are summed in double lanes in one pass with a rigorous bound. Float values
// and float products are exact in double: |block sum - exact| <= gamma_h * m * M, M from the
// block's largest factor magnitudes found in the same pass (filter_float_terms). Double terms are
// cut at a grid set by the block's magnitudes into a part that sums exactly and a rest summed with
// the same kind of bound, products split by TwoProduct first (filter_double_terms). Block sums go
// into a double-double. When every real within the summed bounds rounds to one result, that is
// the answer (on normal data the slack is about 2^-28 relative: a sum that close to a rounding
// boundary, zero, NaN or Inf is not certified). Otherwise the exact accumulator below runs.
//
// exact: every thread accumulates into its own core::exact_accumulator; the accumulators merge.
// To be fast the terms (values or exact products, as doubles) are pre-accumulated exactly in
// double SIMD registers over "periods" of blocks (exact_engine below):
//   - per block, a first pass finds the largest magnitude (|t| < 2^E) and a lower bound on the
//     quantum of every non-zero term (every t is a multiple of 2^Q); blocks holding Inf/NaN or
//     only zeros go to the scalar exact accumulator (which tracks NaN/Inf/-0.0 exactly);
//   - single level (float sum: 24-bit terms): every lane's partial sum is a multiple of 2^q with
//     magnitude <= cnt * 2^E <= 2^(q+53), hence exact in a double; the engine admits a block
//     only while that holds for the whole period (q = min Q, E = max E, cnt = terms per lane);
//   - two levels (double sum, float dot, float variance: 48/53-bit terms): each term is split
//     t = hi + lo with hi = (t + C) - C, C = 1.5 * 2^(s+52) (exact for |t| <= 2^(s+51)) and
//     lo = t - hi (exact, |lo| <= 2^(s-1)); hi sums live on the grid 2^s, lo sums on 2^q, both
//     below 2^53 grid units under the same counting argument;
//   - when a block does not fit, the period is flushed: each lane is an integer number of grid
//     units (<= 2^53), the lanes are summed as int64 and added with add_scaled_integer; a block
//     that does not fit even a fresh period sends its tiny terms (those whose quantum is below
//     what the window can hold) one by one to the scalar accumulator and the rest to registers;
//   - float products are exact in double; their block bounds come from the factors' bits
//     (|ab| < 2^(Ea+Eb), quantum >= 2^(Qa+Qb)) and they are computed on the fly;
//   - double products: with a fused FMA, TwoProduct p = x*y, e = fma(x, y, -p) splits each
//     product exactly (bounds checked per block: no underflow of e, no overflow), p and e each
//     in a two-level engine; without FMA (SSE2, scalar) the accumulator's 106-bit product path.
// Everything the engine adds is exact, so the accumulator's value is the exact sum and the
// result equals reference::sum_exact / dot_exact bit for bit.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "../core/bfloat16.hpp"
#include "../core/exact.hpp"
#include "../core/exact_filter.hpp"
#include "../core/fixed_order.hpp"
#include "../core/math.hpp"
#include "isa.hpp"
#include "dispatch.hpp"  // scalar_arch, with_arch
#include "threads.hpp"

namespace bitexact {
namespace cpu {
namespace detail {

// ------------------------------------------------------------------ per-Arch loads

/// Whether the xsimd architecture Arch is Base or extends it (avx512bw is an avx512f, avx2 an
/// avx, ...), and Base is compiled in (xsimd declares every architecture; Base::supported() is
/// its XSIMD_WITH_* switch).
template <class Arch, class Base>
constexpr bool arch_extends() {
  return Base::supported() && std::is_base_of<Base, Arch>::value;
}
template <class Arch>
constexpr bool is_avx512() {
  return arch_extends<Arch, xsimd::avx512f>();
}
template <class Arch>
constexpr bool is_avx() {
  return arch_extends<Arch, xsimd::avx>();
}
template <class Arch>
constexpr bool is_sse2() {
  return arch_extends<Arch, xsimd::sse2>();
}
template <class Arch>
constexpr bool is_neon64() {
  return arch_extends<Arch, xsimd::neon64>();
}

/// Pins a computed batch in a register so that it is rounded on its own (a product is never
/// fused with the add that consumes it, whatever the compiler's contraction setting).
template <class B>
inline B no_contract(B v) {
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
  auto r = static_cast<typename B::register_type>(v);
  __asm__("" : "+v"(r));
  return B(r);
#elif (defined(__GNUC__) || defined(__clang__)) && defined(__aarch64__)
  auto r = static_cast<typename B::register_type>(v);
  __asm__("" : "+w"(r));
  return B(r);
#else
  alignas(64) typename B::value_type t[B::size];
  v.store_aligned(t);
  volatile typename B::value_type* vt = t;
  (void)vt[0];
  return B::load_aligned(t);
#endif
}

/// max(m, |x|) lane by lane, for a non-negative m: one vrangeps/vrangepd (max of magnitudes,
/// sign cleared) on AVX-512 DQ, where the and and the max would take two operations of the
/// filters' busiest ports. A NaN x may or may not stay in the result: callers find NaN and Inf
/// through their sums.
template <class Arch, class B>
inline B max_magnitude(const B& m, const B& x) {
#if XSIMD_WITH_AVX512DQ
  if constexpr (arch_extends<Arch, xsimd::avx512dq>()) {
    if constexpr (std::is_same<typename B::value_type, float>::value)
      return B(_mm512_range_ps(m, x, 0x0B));
    else
      return B(_mm512_range_pd(m, x, 0x0B));
  } else
#endif
  {
    return xsimd::max(m, xsimd::abs(x));
  }
}

/// N = batch<float, Arch>::size bfloat16 values widened exactly (bits << 16).
template <class Arch>
inline xsimd::batch<float, Arch> load_bf16(const bfloat16* p) {
  using B = xsimd::batch<float, Arch>;
#if XSIMD_WITH_AVX512F
  if constexpr (is_avx512<Arch>()) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    return B(_mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)));
  } else
#endif
#if XSIMD_WITH_AVX2
  if constexpr (is_avx<Arch>()) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return B(_mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)));
  } else
#endif
#if XSIMD_WITH_SSE2
  if constexpr (is_sse2<Arch>()) {
    const __m128i h = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
    return B(_mm_castsi128_ps(_mm_unpacklo_epi16(_mm_setzero_si128(), h)));
  } else
#endif
#if XSIMD_WITH_NEON64
  if constexpr (is_neon64<Arch>()) {
    return B(vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(reinterpret_cast<const std::uint16_t*>(p)), 16)));
  } else
#endif
  {
    alignas(64) float t[B::size];
    for (std::size_t j = 0; j < B::size; ++j) t[j] = p[j].to_float();
    return B::load_aligned(t);
  }
}

/// batch<double, Arch>::size floats widened exactly to double.
template <class Arch>
inline xsimd::batch<double, Arch> load_f32_as_f64(const float* p) {
  using D = xsimd::batch<double, Arch>;
#if XSIMD_WITH_AVX512F
  if constexpr (is_avx512<Arch>()) {
    return D(_mm512_cvtps_pd(_mm256_loadu_ps(p)));
  } else
#endif
#if XSIMD_WITH_AVX
  if constexpr (is_avx<Arch>()) {
    return D(_mm256_cvtps_pd(_mm_loadu_ps(p)));
  } else
#endif
#if XSIMD_WITH_SSE2
  if constexpr (is_sse2<Arch>()) {
    return D(_mm_cvtps_pd(_mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)))));
  } else
#endif
#if XSIMD_WITH_NEON64
  if constexpr (is_neon64<Arch>()) {
    return D(vcvt_f64_f32(vld1_f32(p)));
  } else
#endif
  {
    alignas(64) double t[D::size];
    for (std::size_t j = 0; j < D::size; ++j) t[j] = p[j];
    return D::load_aligned(t);
  }
}

// ------------------------------------------------------------------ fixed_order leaves

/// f(std::integral_constant<std::size_t, k>{}) for k = 0 .. K-1, fully unrolled, so that arrays
/// of batch accumulators indexed by k live in registers.
template <std::size_t... k, class F>
inline void unroll_impl(std::index_sequence<k...>, F&& f) {
  (f(std::integral_constant<std::size_t, k>{}), ...);
}
template <std::size_t K, class F>
inline void unroll(F&& f) {
  unroll_impl(std::make_index_sequence<K>{}, f);
}

/// Value sources: load(i) gives the batch of values i .. i+N-1, value(i) one value.
template <class A, class T>
struct sum_source {
  const T* x;
  template <class Arch>
  xsimd::batch<A, Arch> load(std::size_t i) const {
    if constexpr (std::is_same<T, bfloat16>::value)
      return load_bf16<Arch>(x + i);
    else
      return xsimd::batch<A, Arch>::load_unaligned(x + i);
  }
  A value(std::size_t i) const { return A(core::widen(x[i])); }
};

template <class A, class T>
struct dot_source {
  const T* x;
  const T* y;
  template <class Arch>
  xsimd::batch<A, Arch> load(std::size_t i) const {
    return no_contract(sum_source<A, T>{x}.template load<Arch>(i) * sum_source<A, T>{y}.template load<Arch>(i));
  }
  A value(std::size_t i) const { return core::mul_rn(A(core::widen(x[i])), A(core::widen(y[i]))); }
};

/// Values (x[i] - mean)^2 of the variance: the difference rounded, then squared (rounded).
template <class A, class T>
struct centered_square_source {
  const T* x;
  A mean;
  template <class Arch>
  xsimd::batch<A, Arch> load(std::size_t i) const {
    const auto d = no_contract(sum_source<A, T>{x}.template load<Arch>(i) - xsimd::batch<A, Arch>(mean));
    return no_contract(d * d);
  }
  A value(std::size_t i) const {
    const A d = A(core::widen(x[i])) - mean;
    return core::mul_rn(d, d);
  }
};

/// The value of the leaf [b, e) (e - b <= leaf size) in the canonical lane order.
template <class Arch, class A, class Src>
A fixed_order_leaf(const Src& src, std::size_t b, std::size_t e) {
  constexpr std::size_t W = core::fixed_order_shape<A>::lanes;
  if constexpr (std::is_same<Arch, scalar_arch>::value) {
    A lane[W];
    for (auto& l : lane) l = core::negative_zero<A>();
    std::size_t i = b;
    for (; i + W <= e; i += W)
      for (std::size_t j = 0; j < W; ++j) lane[j] = lane[j] + src.value(i + j);
    for (std::size_t j = 0; i + j < e; ++j) lane[j] = lane[j] + src.value(i + j);
    return core::combine_lanes(lane);
  } else {
    using B = xsimd::batch<A, Arch>;
    constexpr std::size_t N = B::size;
    constexpr std::size_t K = W / N;
    static_assert(K * N == W, "batch size must divide the lane count");
    B acc[K];
    for (auto& a : acc) a = B(core::negative_zero<A>());
    std::size_t i = b;
    for (; i + W <= e; i += W)
      unroll<K>([&](auto k) { acc[k] = acc[k] + src.template load<Arch>(i + k * N); });
    if (i < e) {
      alignas(64) A tail[W];
      for (std::size_t j = 0; j < W; ++j) tail[j] = i + j < e ? src.value(i + j) : core::negative_zero<A>();
      unroll<K>([&](auto k) { acc[k] = acc[k] + B::load_aligned(tail + k * N); });
    }
    // Lane tree across the batches: lane l += lane l + w for w = W/2 .. N is acc[k] += acc[k + w/N].
    unroll<K / 2>([&](auto k) { acc[k] = acc[k] + acc[k + K / 2]; });
    if constexpr (K >= 4) unroll<K / 4>([&](auto k) { acc[k] = acc[k] + acc[k + K / 4]; });
    if constexpr (K >= 8) unroll<K / 8>([&](auto k) { acc[k] = acc[k] + acc[k + K / 8]; });
    if constexpr (K >= 16) unroll<K / 16>([&](auto k) { acc[k] = acc[k] + acc[k + K / 16]; });
    static_assert(K <= 16, "lane tree written out for up to 16 batches");
    alignas(64) A lane[N];
    acc[0].store_aligned(lane);
    return core::combine_lanes(lane);
  }
}

/// Least values per thread before another thread is woken: a pool wake-up costs several us,
/// about what one thread needs for 2^18 floats from L2. It only changes who computes which
/// canonical group, never a result bit (tests lower it to run many threads on small inputs).
inline std::atomic<std::size_t>& reduce_values_per_thread() {
  static std::atomic<std::size_t> v{std::size_t{1} << 18};
  return v;
}
inline std::uint64_t reduce_threads_for(std::size_t n, int threads) {
  return static_cast<std::uint64_t>(
      threads_for_work(threads, n, std::max<std::size_t>(reduce_values_per_thread().load(std::memory_order_relaxed), 1)));
}

/// The fixed_order reduction of n values of `src` on up to `threads` threads (n > 0).
template <class Arch, class A, class Src>
A fixed_order_reduce(const Src& src, std::size_t n, int threads) {
  using shape = core::fixed_order_shape<A>;
  const core::leaf_grouping g = core::group_leaves(n, shape::leaf);
  const std::uint64_t groups = g.groups();
  auto group_value = [&](std::uint64_t gi) {
    core::tree_stack<A> ts;
    const std::uint64_t l0 = gi << g.group_level;
    const std::uint64_t l1 = std::min<std::uint64_t>(l0 + g.group_leaves(), g.leaves);
    for (std::uint64_t l = l0; l < l1; ++l) {
      const std::size_t b = static_cast<std::size_t>(l * shape::leaf);
      const std::size_t e = std::min(n, b + shape::leaf);
      ts.push(fixed_order_leaf<Arch, A>(src, b, e));
    }
    return ts.finish();
  };
  const std::uint64_t t = std::min<std::uint64_t>(reduce_threads_for(n, threads), groups);
  core::tree_stack<A> top;
  if (t <= 1) {
    for (std::uint64_t gi = 0; gi < groups; ++gi) top.push(group_value(gi), g.group_level);
    return top.finish();
  }
  A value[256];  // group_leaves() makes at most 256 groups
  thread_pool::instance().run(static_cast<int>(t), [&](int id) {
    const std::uint64_t g0 = groups * static_cast<std::uint64_t>(id) / t;
    const std::uint64_t g1 = groups * static_cast<std::uint64_t>(id + 1) / t;
    for (std::uint64_t gi = g0; gi < g1; ++gi) value[gi] = group_value(gi);
  });
  for (std::uint64_t gi = 0; gi < groups; ++gi) top.push(value[gi], g.group_level);
  return top.finish();
}

// ------------------------------------------------------------------ exact tier

/// Double-vector operations of Arch (scalar_arch: one plain double).
template <class Arch, bool = std::is_same<Arch, scalar_arch>::value>
struct dvec {
  using D = xsimd::batch<double, Arch>;
  static constexpr std::size_t N = D::size;
  static D load(const double* p) { return D::load_unaligned(p); }
  static D load(const float* p) { return load_f32_as_f64<Arch>(p); }
  static D splat(double v) { return D(v); }
  static void store(double* p, const D& v) { v.store_unaligned(p); }
  /// The sum of the lanes of v[0 .. K), each an integer of magnitude <= 2^53 (the total must
  /// fit an int64): exact conversions (AVX-512DQ and NEON64 in registers, elsewhere per lane).
  template <std::size_t K>
  static std::int64_t sum_integers(const D (&v)[K]) {
    using L = xsimd::batch<std::int64_t, Arch>;
    L t(std::int64_t(0));
    for (std::size_t k = 0; k < K; ++k) t += xsimd::to_int(v[k]);
    alignas(64) std::int64_t lanes[N];
    t.store_aligned(lanes);
    std::int64_t total = 0;
    for (std::size_t j = 0; j < N; ++j) total += lanes[j];
    return total;
  }
};
template <class Arch>
struct dvec<Arch, true> {
  using D = double;
  static constexpr std::size_t N = 1;
  static D load(const double* p) { return *p; }
  static D load(const float* p) { return *p; }
  static D splat(double v) { return v; }
  static void store(double* p, const D& v) { *p = v; }
  template <std::size_t K>
  static std::int64_t sum_integers(const D (&v)[K]) {
    std::int64_t total = 0;
    for (std::size_t k = 0; k < K; ++k) total += static_cast<std::int64_t>(v[k]);
    return total;
  }
};

/// Magnitude summary of a block: the largest |t| bits and the smallest non-zero |t| bits.
struct magnitude_range {
  std::uint64_t max_abs = 0;
  std::uint64_t min_nonzero_abs = ~std::uint64_t(0);
};

/// Over float (I = int32) or double (I = int64) bit patterns. Non-zero minimum without a
/// branch: ((abs - 1) & max_positive) maps 0 to the largest positive value.
/// WithMin = false: only max_abs is computed (min_nonzero_abs is then meaningless).
template <class Arch, class T, bool WithMin = true>
magnitude_range block_magnitudes(const T* x, std::size_t n) {
  using I = std::conditional_t<sizeof(T) == 4, std::int32_t, std::int64_t>;
  constexpr I absmask = std::numeric_limits<I>::max();
  magnitude_range r;
  std::size_t i = 0;
  I mx = 0, mn = absmask;
  if constexpr (!std::is_same<Arch, scalar_arch>::value) {
    using V = xsimd::batch<I, Arch>;
    constexpr std::size_t N = V::size;
    if (n >= N) {
      const V am(absmask), one(I(1));
      // Four independent min/max chains: one chain is latency-bound.
      V vmx[4] = {V(I(0)), V(I(0)), V(I(0)), V(I(0))}, vmn[4] = {V(absmask), V(absmask), V(absmask), V(absmask)};
      for (; i + 4 * N <= n; i += 4 * N)
        unroll<4>([&](auto k) {
          const V a = V::load_unaligned(reinterpret_cast<const I*>(x + i + k * N)) & am;
          vmx[k] = xsimd::max(vmx[k], a);
          if constexpr (WithMin) vmn[k] = xsimd::min(vmn[k], (a - one) & am);
        });
      for (; i + N <= n; i += N) {
        const V a = V::load_unaligned(reinterpret_cast<const I*>(x + i)) & am;
        vmx[0] = xsimd::max(vmx[0], a);
        if constexpr (WithMin) vmn[0] = xsimd::min(vmn[0], (a - one) & am);
      }
      const V vmx_all = xsimd::max(xsimd::max(vmx[0], vmx[1]), xsimd::max(vmx[2], vmx[3]));
      const V vmn_all = xsimd::min(xsimd::min(vmn[0], vmn[1]), xsimd::min(vmn[2], vmn[3]));
      alignas(64) I t1[N], t2[N];
      vmx_all.store_aligned(t1);
      vmn_all.store_aligned(t2);
      for (std::size_t j = 0; j < N; ++j) {
        mx = std::max(mx, t1[j]);
        mn = std::min(mn, t2[j]);
      }
    }
  }
  for (; i < n; ++i) {
    I b;
    std::memcpy(&b, x + i, sizeof b);
    const I a = b & absmask;
    mx = std::max(mx, a);
    mn = std::min(mn, static_cast<I>((a - 1) & absmask));
  }
  r.max_abs = static_cast<std::uint64_t>(mx);
  if (mn != absmask) r.min_nonzero_abs = static_cast<std::uint64_t>(mn) + 1;
  return r;
}

/// Debug counters (flushes, scalar blocks) when BITEXACT_REDUCE_STATS is defined.
#ifdef BITEXACT_REDUCE_STATS
inline std::uint64_t* stats() { static std::uint64_t s[4] = {0, 0, 0, 0}; return s; }
#define BITEXACT_STAT(k) (++::bitexact::cpu::detail::stats()[k])
#else
#define BITEXACT_STAT(k) ((void)0)
#endif

/// Exact pre-accumulation in double registers (see the header comment). AccT is the exact
/// accumulator's type; TwoLevel splits every term into hi + lo.
template <class Arch, class AccT, bool TwoLevel>
class exact_engine {
  using ops = dvec<Arch>;
  using D = typename ops::D;
  static constexpr std::size_t N = ops::N;
  static constexpr std::size_t K = TwoLevel ? 4 : 8;

 public:
  explicit exact_engine(core::exact_accumulator<AccT>& acc) : acc_(acc) { reset(); }

  /// Terms per lane that a block of n terms may add (an upper bound).
  static std::uint64_t per_lane(std::size_t n) { return n / (K * N) + 1; }

  /// Whether a block of terms with |t| < 2^E, every t a multiple of 2^Q, and `cnt` terms per
  /// lane can be added exactly (flushing the current period if needed). false: add it elsewhere.
  bool admit(int E, int Q, std::uint64_t cnt) {
    if (active_) {
      const int e2 = std::max(e_, E), q2 = std::min(q_, TwoLevel ? std::min(Q, s_) : Q);
      if (fits(q2, s_, e2, cnt_ + cnt)) {
        e_ = e2;
        q_ = q2;
        cnt_ += cnt;
        return true;
      }
      flush();
    }
    const int s = TwoLevel ? fresh_split(E) : 0;
    const int q = TwoLevel ? std::min(Q, s) : Q;
    if (!fits(q, s, E, cnt)) return false;
    active_ = true;
    e_ = E;
    q_ = q;
    s_ = s;
    cnt_ = cnt;
    if (TwoLevel) c_ = ops::splat(pow2(s + 52) * 1.5);
    return true;
  }

  /// The least quantum exponent a fresh period takes for a block (E, cnt), leaving 2^8 of
  /// headroom in the count for the blocks that follow.
  int rescue_quantum(int E, std::uint64_t cnt) const {
    int lc = 8;
    while (lc < 64 && (std::uint64_t(1) << (lc - 8)) < cnt) ++lc;
    if (!TwoLevel) return E + lc - 53;
    return fresh_split(E) - 54 + lc;
  }

  /// Adds n terms src(i) (an admitted block). Src: load(i) -> D for terms i .. i+N-1.
  template <class P>
  void add(const P* t, std::size_t n) {
    // Work on local copies: the input pointer could alias the members as far as the compiler
    // knows, which would pin the accumulators in memory.
    D h[K], l[K];
    for (std::size_t k = 0; k < K; ++k) {
      h[k] = hi_[k];
      l[k] = lo_[k];
    }
    const D c = c_;
    std::size_t i = 0;
    for (; i + K * N <= n; i += K * N) unroll<K>([&](auto k) { put(h[k], l[k], c, ops::load(t + i + k * N)); });
    if (i < n) {  // the last < K*N terms, zero padded: one more full step (zeros add nothing)
      alignas(64) double tail[K * N];
      for (std::size_t j = 0; j < K * N; ++j) tail[j] = i + j < n ? double(t[i + j]) : 0.0;
      unroll<K>([&](auto k) { put(h[k], l[k], c, ops::load(tail + k * N)); });
    }
    for (std::size_t k2 = 0; k2 < K; ++k2) {
      hi_[k2] = h[k2];
      lo_[k2] = l[k2];
    }
  }

  /// Adds the n exact products a[i] * b[i] of floats (48 bits: exact in double), computed on
  /// the fly (an admitted block).
  void add_products(const float* a, const float* b, std::size_t n) {
    D h[K], l[K];
    for (std::size_t k = 0; k < K; ++k) {
      h[k] = hi_[k];
      l[k] = lo_[k];
    }
    const D c = c_;
    std::size_t i = 0;
    for (; i + K * N <= n; i += K * N)
      unroll<K>([&](auto k) { put(h[k], l[k], c, ops::load(a + i + k * N) * ops::load(b + i + k * N)); });
    if (i < n) {
      alignas(64) double tail[K * N];
      for (std::size_t j = 0; j < K * N; ++j) tail[j] = i + j < n ? double(a[i + j]) * double(b[i + j]) : 0.0;
      unroll<K>([&](auto k) { put(h[k], l[k], c, ops::load(tail + k * N)); });
    }
    for (std::size_t k = 0; k < K; ++k) {
      hi_[k] = h[k];
      lo_[k] = l[k];
    }
  }

  /// Adds the n terms g(x batch, y batch) computed from doubles x[i], y[i] (an admitted block);
  /// g(0, 0) must be 0 (the tail is zero padded).
  template <class G>
  void add_generated(const double* x, const double* y, std::size_t n, G g) {
    D h[K], l[K];
    for (std::size_t k = 0; k < K; ++k) {
      h[k] = hi_[k];
      l[k] = lo_[k];
    }
    const D c = c_;
    std::size_t i = 0;
    for (; i + K * N <= n; i += K * N)
      unroll<K>([&](auto k) { put(h[k], l[k], c, g(ops::load(x + i + k * N), ops::load(y + i + k * N))); });
    if (i < n) {
      alignas(64) double tx[K * N], ty[K * N];
      for (std::size_t j = 0; j < K * N; ++j) {
        tx[j] = i + j < n ? x[i + j] : 0.0;
        ty[j] = i + j < n ? y[i + j] : 0.0;
      }
      unroll<K>([&](auto k) { put(h[k], l[k], c, g(ops::load(tx + k * N), ops::load(ty + k * N))); });
    }
    for (std::size_t k = 0; k < K; ++k) {
      hi_[k] = h[k];
      lo_[k] = l[k];
    }
  }

  /// Moves the registers into the accumulator.
  void flush() {
    if (!active_) return;
    BITEXACT_STAT(0);
    if (TwoLevel) drain(hi_, s_);
    drain(lo_, q_);
    active_ = false;
  }

 private:
  /// The split exponent of a period that starts with a block below 2^E: hi sums then have
  /// 2^13 of headroom in the count.
  static int fresh_split(int E) { return std::min(std::max(E - 40, s_floor), 970); }

  static constexpr int s_floor = core::exact_accumulator<AccT>::base_exp > -1074 ? core::exact_accumulator<AccT>::base_exp : -1074;

  static double pow2(int e) { return core::double_of(static_cast<std::uint64_t>(e + 1023) << 52); }

  /// cnt * 2^E <= 2^limit, without overflow.
  static bool count_fits(std::uint64_t cnt, int E, int limit) {
    const int k = limit - E;
    if (k >= 63) return true;
    if (k < 0) return false;
    return cnt <= (std::uint64_t(1) << k);
  }
  static bool fits(int q, int s, int E, std::uint64_t cnt) {
    if (!TwoLevel) return q + 53 <= 1023 && count_fits(cnt, E, q + 53);
    return E <= s + 51 && s + 53 <= 1023 && s + 52 >= -1022 && count_fits(cnt, E, s + 53) &&
           count_fits(cnt, std::min(s - 1, E), q + 53);
  }

  static void put(D& hi, D& lo, const D& c, const D& t) {
    if constexpr (TwoLevel) {
      const D h = (t + c) - c;
      hi = hi + h;
      lo = lo + (t - h);
    } else {
      (void)hi;
      (void)c;
      lo = lo + t;
    }
  }

  /// Each lane is an integer multiple of 2^g of magnitude <= 2^(g+53): scaled by 2^-g (two exact
  /// power-of-two steps, as 2^-g may exceed the double range) it is an integer, summed as int64
  /// (K*N lanes of <= 2^53 cannot overflow) and added once.
  void drain(D (&r)[K], int g) {
    const int a = -g > 1000 ? 1000 : -g;
    const D s1 = ops::splat(pow2(a)), s2 = ops::splat(pow2(-g - a));
    D scaled[K];
    for (std::size_t k = 0; k < K; ++k) {
      scaled[k] = (r[k] * s1) * s2;
      r[k] = ops::splat(0.0);
    }
    acc_.add_scaled_integer(ops::sum_integers(scaled), g);
  }
  void reset() {
    for (std::size_t k = 0; k < K; ++k) hi_[k] = lo_[k] = ops::splat(0.0);
    active_ = false;
  }

  core::exact_accumulator<AccT>& acc_;
  D hi_[K], lo_[K], c_{};
  bool active_ = false;
  int e_ = 0, q_ = 0, s_ = 0;
  std::uint64_t cnt_ = 0;
};

/// Terms per block of the exact kernels (a block and its double terms stay in L1).
constexpr std::size_t exact_block = 1024;

/// Bits of |t| for the power of two 2^e in T (0 below T's range, +Inf bits above).
template <class T>
inline std::uint64_t pow2_abs_bits(int e) {
  constexpr int frac = sizeof(T) == 4 ? 23 : 52, bias = sizeof(T) == 4 ? 127 : 1023;
  constexpr std::uint64_t inf = std::uint64_t(2 * bias + 1) << frac;
  if (e > bias) return inf;
  if (e >= 1 - bias) return std::uint64_t(e + bias) << frac;
  if (e >= 1 - bias - frac) return std::uint64_t(1) << (e - (1 - bias - frac));
  return 0;
}

/// The exact sum of n terms (values, or exact products) into acc, block by block.
///   Term: float or double, the type the terms are held in; Precision: their significant bits
///   (24 float values, 48 float products, 53 double values); QMin: the least quantum exponent.
///   terms(i, m, buf): pointer to the m terms of block [i, i + m) (into the input, or buf filled).
///   scalar(i + j): adds term i + j to acc exactly from the original inputs (NaN, Inf, zeros).
/// A block holding Inf/NaN or only zeros goes to scalar(). Otherwise the engine takes it; when it
/// does not fit even a fresh period, its tiny terms (the ones whose quantum is too fine) go to
/// scalar() one by one and the rest to the engine.
template <class Arch, class AccT, bool TwoLevel, class Term, int Precision, int QMin, class Terms, class Scalar>
void exact_blocks(std::size_t n, core::exact_accumulator<AccT>& acc, Terms terms, Scalar scalar) {
  constexpr int frac = sizeof(Term) == 4 ? 23 : 52, bias = sizeof(Term) == 4 ? 127 : 1023;
  constexpr std::uint64_t inf_bits = std::uint64_t(2 * bias + 1) << frac;
  using Bits = std::conditional_t<sizeof(Term) == 4, std::uint32_t, std::uint64_t>;
  exact_engine<Arch, AccT, TwoLevel> en(acc);
  alignas(64) Term buf[exact_block];
  bool simd_values = false;
  for (std::size_t i = 0; i < n; i += exact_block) {
    const std::size_t m = std::min(exact_block, n - i);
    const Term* t = terms(i, m, buf);
    const magnitude_range r = block_magnitudes<Arch>(t, m);
    if (r.max_abs == 0 || r.max_abs >= inf_bits) {
      BITEXACT_STAT(1);
      for (std::size_t j = 0; j < m; ++j) scalar(i + j);
      continue;
    }
    // |t| < 2^E; every non-zero t is a multiple of 2^Q.
    const int emax = static_cast<int>(r.max_abs >> frac), emin = static_cast<int>(r.min_nonzero_abs >> frac);
    const int E = std::max(emax, 1) - bias + 1;
    const int Q = std::max(std::max(emin, 1) - bias - (Precision - 1), QMin);
    const std::uint64_t cnt = en.per_lane(m);
    simd_values = true;
    if (en.admit(E, Q, cnt)) {
      en.add(t, m);
      continue;
    }
    const int qc = std::max(en.rescue_quantum(E, cnt), QMin);
    if (!en.admit(E, qc, cnt)) {  // out of the engine's range (huge doubles)
      BITEXACT_STAT(1);
      for (std::size_t j = 0; j < m; ++j) scalar(i + j);
      continue;
    }
    BITEXACT_STAT(2);
    // Terms below 2^(qc + Precision - 1) may have a quantum finer than 2^qc: scalar path.
    const std::uint64_t tiny = pow2_abs_bits<Term>(qc + Precision - 1);
    if (t != buf) std::memcpy(buf, t, m * sizeof(Term));
    for (std::size_t j = 0; j < m; ++j) {
      Bits u;
      std::memcpy(&u, buf + j, sizeof u);
      const std::uint64_t a = u & (inf_bits | ((std::uint64_t(1) << frac) - 1));
      if (a != 0 && a < tiny) {
        scalar(i + j);
        buf[j] = Term(0);
      }
    }
    en.add(buf, m);
  }
  en.flush();
  acc.note_inputs(simd_values, false, false, false, false);
}

/// Exact sum of floats / bfloat16 (widened through an L1 buffer) / doubles into acc.
template <class Arch>
void exact_sum_range(const float* x, std::size_t n, core::exact_accumulator<float>& acc) {
  exact_blocks<Arch, float, false, float, 24, -149>(
      n, acc, [x](std::size_t i, std::size_t, float*) { return x + i; }, [&](std::size_t j) { acc.add(x[j]); });
}
template <class Arch>
void exact_sum_range(const bfloat16* x, std::size_t n, core::exact_accumulator<float>& acc) {
  exact_blocks<Arch, float, false, float, 24, -149>(
      n, acc,
      [x](std::size_t i, std::size_t m, float* buf) {
        for (std::size_t j = 0; j < m; ++j) buf[j] = x[i + j].to_float();
        return static_cast<const float*>(buf);
      },
      [&](std::size_t j) { acc.add(x[j].to_float()); });
}
template <class Arch>
void exact_sum_range(const double* x, std::size_t n, core::exact_accumulator<double>& acc) {
  exact_blocks<Arch, double, true, double, 53, -1074>(
      n, acc, [x](std::size_t i, std::size_t, double*) { return x + i; }, [&](std::size_t j) { acc.add(x[j]); });
}

/// Whether some product a[j] * b[j] (j < n) is not -0.0: a non-zero factor pair, or a zero product
/// with equal factor signs. Register-path blocks cannot tell their zero products' signs apart, so
/// kernels scan for this once at the end (stopping at the first hit, normally j = 0).
template <class T>
bool some_product_not_negative_zero(const T* a, const T* b, std::size_t n) {
  using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  constexpr Bits sign = Bits(1) << (8 * sizeof(T) - 1);
  for (std::size_t j = 0; j < n; ++j) {
    Bits u, v;
    std::memcpy(&u, a + j, sizeof u);
    std::memcpy(&v, b + j, sizeof v);
    if (((u & ~sign) != 0 && (v & ~sign) != 0) || ((u ^ v) & sign) == 0) return true;
  }
  return false;
}

/// The pair of float blocks for a sum or a dot of float or bfloat16 values (bfloat16 widened into
/// the block buffers): pair(i, m, ba, bb, a, b) points a (and b, or nullptr for a sum) at the m
/// values of block [i, i + m). Used by the exact accumulator's products and by the filter.
template <class T>
auto filter_values(const T* x) {
  return [x](std::size_t i, std::size_t m, float* ba, float*, const float*& a, const float*& b) {
    if constexpr (std::is_same<T, float>::value) {
      (void)ba;
      (void)m;
      a = x + i;
    } else {
      for (std::size_t j = 0; j < m; ++j) ba[j] = x[i + j].to_float();
      a = ba;
    }
    b = nullptr;
  };
}
template <class T>
auto filter_products(const T* x, const T* y) {
  return [x, y](std::size_t i, std::size_t m, float* ba, float* bb, const float*& a, const float*& b) {
    if constexpr (std::is_same<T, float>::value) {
      (void)ba;
      (void)bb;
      (void)m;
      a = x + i;
      b = y + i;
    } else {
      for (std::size_t j = 0; j < m; ++j) {
        ba[j] = x[i + j].to_float();
        bb[j] = y[i + j].to_float();
      }
      a = ba;
      b = bb;
    }
  };
}

/// Exact sum of the products a(j) * b(j) of floats (exact in double: 48 bits), where
/// pair(i, m, ba, bb, a, b) points a and b at the m floats of block [i, i + m) (the input, or
/// ba/bb filled). The block bounds come from the factors' float bits (cheap, 16 lanes):
/// |a b| < 2^(Ea + Eb) and every non-zero product is a multiple of 2^(Qa + Qb). A block with a
/// non-finite or an all-zero factor goes to add_product; one that does not fit has its products
/// computed into a buffer and its tiny ones moved to add_product (see exact_blocks).
template <class Arch, class Pair>
void exact_products_range(std::size_t n, core::exact_accumulator<float>& acc, Pair pair) {
  using ops = dvec<Arch>;
  constexpr std::size_t N = ops::N;
  alignas(64) float xa[exact_block], xb[exact_block];
  alignas(64) double buf[exact_block];
  exact_engine<Arch, float, true> en(acc);
  bool simd_values = false, simd_any = false;
  for (std::size_t i = 0; i < n; i += exact_block) {
    const std::size_t m = std::min(exact_block, n - i);
    const float *a = nullptr, *b = nullptr;
    pair(i, m, xa, xb, a, b);
    const magnitude_range ra = block_magnitudes<Arch>(a, m), rb = block_magnitudes<Arch>(b, m);
    if (ra.max_abs == 0 || rb.max_abs == 0 || ra.max_abs >= 0x7f800000u || rb.max_abs >= 0x7f800000u) {
      BITEXACT_STAT(1);
      for (std::size_t j = 0; j < m; ++j) acc.add_product(a[j], b[j]);
      continue;
    }
    auto E_of = [](const magnitude_range& r) { return std::max(static_cast<int>(r.max_abs >> 23), 1) - 127 + 1; };
    auto Q_of = [](const magnitude_range& r) { return std::max(static_cast<int>(r.min_nonzero_abs >> 23), 1) - 150; };
    const int E = E_of(ra) + E_of(rb), Q = Q_of(ra) + Q_of(rb);
    const std::uint64_t cnt = en.per_lane(m);
    // Both factors have a non-zero somewhere, yet every product may still be -0.0.
    simd_any = true;
    if (!simd_values) simd_values = some_product_not_negative_zero(a, b, m);
    if (en.admit(E, Q, cnt)) {
      en.add_products(a, b, m);
      continue;
    }
    const int qc = std::max(en.rescue_quantum(E, cnt), -298);
    if (!en.admit(E, qc, cnt)) {  // cannot happen for float products; kept for safety
      BITEXACT_STAT(1);
      for (std::size_t j = 0; j < m; ++j) acc.add_product(a[j], b[j]);
      continue;
    }
    BITEXACT_STAT(2);
    // A product below 2^(qc + 47) may have a quantum finer than 2^qc: add it exactly apart.
    const double tiny = core::double_of(static_cast<std::uint64_t>(qc + 47 + 1023) << 52);
    std::size_t j = 0;
    for (; j + N <= m; j += N) ops::store(buf + j, ops::load(a + j) * ops::load(b + j));
    for (; j < m; ++j) buf[j] = double(a[j]) * double(b[j]);
    for (j = 0; j < m; ++j) {
      if (buf[j] != 0.0 && (buf[j] < tiny && -buf[j] < tiny)) {
        acc.add_product(a[j], b[j]);
        buf[j] = 0.0;
      }
    }
    en.add(buf, m);
  }
  en.flush();
  acc.note_inputs(simd_any, !simd_values, false, false, false);
}

/// Exact dot of float or bfloat16 vectors.
template <class Arch, class T>
void exact_dot_range(const T* x, const T* y, std::size_t n, core::exact_accumulator<float>& acc) {
  exact_products_range<Arch>(n, acc, filter_products(x, y));
}

/// Whether Arch has a truly fused multiply-add for doubles (xsimd 8.1's fma on plain avx2 or
/// avx512 archs is not fused, so the intrinsics are called directly).
template <class Arch>
constexpr bool has_fused_fma() {
#if XSIMD_WITH_FMA3_AVX2
  if constexpr (std::is_base_of<xsimd::fma3<xsimd::avx2>, Arch>::value) return true;
#endif
  return is_avx512<Arch>() || is_neon64<Arch>();
}

/// x*y - p with a single rounding (p = x*y rounded: the exact error of the product).
template <class Arch>
inline xsimd::batch<double, Arch> product_error(const xsimd::batch<double, Arch>& x, const xsimd::batch<double, Arch>& y,
                                                const xsimd::batch<double, Arch>& p) {
  using D = xsimd::batch<double, Arch>;
#if XSIMD_WITH_AVX512F
  if constexpr (is_avx512<Arch>()) {
    return D(_mm512_fmsub_pd(x, y, p));
  } else
#endif
#if XSIMD_WITH_FMA3_AVX2
  if constexpr (std::is_base_of<xsimd::fma3<xsimd::avx2>, Arch>::value) {
    return D(_mm256_fmsub_pd(x, y, p));
  } else
#endif
#if XSIMD_WITH_NEON64
  if constexpr (is_neon64<Arch>()) {
    return D(vfmaq_f64(vnegq_f64(p), x, y));
  } else
#endif
  {
    static_assert(sizeof(Arch) == 0, "bitexact: no fused multiply-add on this architecture");
    return p;
  }
}

/// a * b + c for double batches whose product a * b is exact (float values times 1, products
/// of two floats): fused where Arch has a fused FMA, which runs on the multiply ports and leaves
/// the add ports to the float-to-double conversions; else multiply, then add. One rounding
/// either way, so the same value.
template <class Arch>
inline typename dvec<Arch>::D exact_product_add(const typename dvec<Arch>::D& a, const typename dvec<Arch>::D& b,
                                                const typename dvec<Arch>::D& c) {
  using D = typename dvec<Arch>::D;
#if XSIMD_WITH_AVX512F
  if constexpr (is_avx512<Arch>()) {
    return D(_mm512_fmadd_pd(a, b, c));
  } else
#endif
#if XSIMD_WITH_FMA3_AVX2
  if constexpr (std::is_base_of<xsimd::fma3<xsimd::avx2>, Arch>::value) {
    return D(_mm256_fmadd_pd(a, b, c));
  } else
#endif
#if XSIMD_WITH_NEON64
  if constexpr (is_neon64<Arch>()) {
    return D(vfmaq_f64(c, a, b));
  } else
#endif
  {
    return a * b + c;
  }
}

/// a + b for double batches, issued as fma(a, 1, b) where Arch has a fused FMA (a * 1 is exact,
/// so the same value), which runs on the multiply ports: the filters' loops are bound by the add
/// ports otherwise.
template <class Arch>
inline typename dvec<Arch>::D add_on_fma_ports(const typename dvec<Arch>::D& a, const typename dvec<Arch>::D& b) {
  if constexpr (has_fused_fma<Arch>())
    return exact_product_add<Arch>(a, dvec<Arch>::splat(1.0), b);
  else
    return a + b;
}

// ------------------------------------------------------------------ exact tier: the float filter

/// The double sum of the m float values a[j] (b == nullptr) or exact float products a[j] b[j],
/// held in K = 8 batches of N lanes: term j goes to lane j mod (K N), each lane adds its terms in
/// order from +0, then the batches and the lanes are added. Any term takes at most
/// ceil(m / (K N)) + log2(K) + N roundings (filter_lane_depth). In the same pass: the largest
/// |a[j]| and |b[j]| as float bits, so the block is read once. Those are exact when every factor
/// is finite; a NaN or Inf factor makes a term, and so the sum, NaN or Inf (no sum of finite
/// terms overflows: 4096 products of floats stay below 2^268), which is what callers check.
constexpr std::size_t filter_batches = 8;
template <class Arch>
std::size_t filter_lane_depth(std::size_t m) {
  constexpr std::size_t W = filter_batches * dvec<Arch>::N;
  return (m + W - 1) / W + 3 + dvec<Arch>::N;
}
struct filter_block_sum {
  double sum;
  std::uint32_t max_a, max_b;
};
template <class Arch, bool Products>
filter_block_sum filter_lane_sum(const float* a, const float* b, std::size_t m) {
  using ops = dvec<Arch>;
  using D = typename ops::D;
  constexpr std::size_t N = ops::N, K = filter_batches;
  constexpr std::uint32_t absmask = 0x7fffffffu;
  auto term = [&](std::size_t j) { return Products ? double(a[j]) * double(b[j]) : double(a[j]); };
  auto bits = [](const float* p) {
    std::uint32_t u;
    std::memcpy(&u, p, sizeof u);
    return u & absmask;
  };
  D acc[K];
  for (auto& x : acc) x = ops::splat(0.0);
  std::uint32_t ma = 0, mb = 0;
  std::size_t i = 0;
  if constexpr (!std::is_same<Arch, scalar_arch>::value) {
    using F = xsimd::batch<float, Arch>;
    constexpr std::size_t NI = F::size, KI = K * N / NI;
    static_assert(KI * NI == K * N, "float lanes must tile the double steps");
    // One running maximum per float batch of a step: a chain through one register would wait on
    // the max's latency every batch.
    F va[KI], vb[KI];
    for (std::size_t k = 0; k < KI; ++k) va[k] = vb[k] = F(0.0f);
    for (; i + K * N <= m; i += K * N) {
      unroll<KI>([&](auto k) { va[k] = max_magnitude<Arch>(va[k], F::load_unaligned(a + i + k * NI)); });
      if constexpr (Products) {
        unroll<KI>([&](auto k) { vb[k] = max_magnitude<Arch>(vb[k], F::load_unaligned(b + i + k * NI)); });
        unroll<K>([&](auto k) { acc[k] = exact_product_add<Arch>(ops::load(a + i + k * N), ops::load(b + i + k * N), acc[k]); });
      } else {
        // Half the batches add through the multiply ports.
        unroll<K>([&](auto k) {
          if constexpr (k % 2 == 0)
            acc[k] = acc[k] + ops::load(a + i + k * N);
          else
            acc[k] = add_on_fma_ports<Arch>(ops::load(a + i + k * N), acc[k]);
        });
      }
    }
    alignas(64) float la[NI], lb[NI];
    for (std::size_t k = 0; k < KI; ++k) {
      va[k].store_aligned(la);
      vb[k].store_aligned(lb);
      for (std::size_t j = 0; j < NI; ++j) {
        ma = std::max(ma, bits(la + j));
        mb = std::max(mb, bits(lb + j));
      }
    }
  } else {
    for (; i + K <= m; i += K)
      unroll<K>([&](auto k) {
        acc[k] = acc[k] + term(i + k);
        ma = std::max(ma, bits(a + i + k));
        if constexpr (Products) mb = std::max(mb, bits(b + i + k));
      });
  }
  if (i < m) {  // the last < K N terms, zero padded: one more step
    alignas(64) double tail[K * N];
    for (std::size_t j = 0; j < K * N; ++j) tail[j] = i + j < m ? term(i + j) : 0.0;
    for (std::size_t j = i; j < m; ++j) {
      ma = std::max(ma, bits(a + j));
      if constexpr (Products) mb = std::max(mb, bits(b + j));
    }
    unroll<K>([&](auto k) { acc[k] = acc[k] + ops::load(tail + k * N); });
  }
  unroll<4>([&](auto k) { acc[k] = acc[k] + acc[k + 4]; });
  unroll<2>([&](auto k) { acc[k] = acc[k] + acc[k + 2]; });
  acc[0] = acc[0] + acc[1];
  alignas(64) double lane[N];
  ops::store(lane, acc[0]);
  double s = 0.0;
  for (std::size_t j = 0; j < N; ++j) s += lane[j];
  return {s, ma, Products ? mb : 0x3f800000u};  // a sum's "b" is 1.0f
}

/// Adds the blocks of the float terms [0, n) to the filter f; false at a NaN or Inf factor (the
/// caller then takes the exact path). pair(i, m, ba, bb, a, b) points a at the m values of block
/// [i, i + m) (b too, for products; b = nullptr for a sum). Each block's double sum (float values
/// and float products are exact in double) is within gamma_h * m * M of its exact sum, M >= the
/// largest |term| (the largest factor magnitudes multiplied: exact in double).
/// Terms per block of the filter: large enough that the per-block bookkeeping (a dependent
/// chain of scalar operations) stays small next to the block's sum, small enough that a block
/// of bfloat16 values widened into two float buffers stays in L1.
constexpr std::size_t filter_block = 4096;

template <class Arch, class Pair>
bool filter_float_terms(std::size_t n, core::sum_filter& f, Pair pair) {
  alignas(64) float xa[filter_block], xb[filter_block];
  for (std::size_t i = 0; i < n; i += filter_block) {
    const std::size_t m = std::min(filter_block, n - i);
    const float *a = nullptr, *b = nullptr;
    pair(i, m, xa, xb, a, b);
    const filter_block_sum r = b ? filter_lane_sum<Arch, true>(a, b, m) : filter_lane_sum<Arch, false>(a, b, m);
    // A NaN or Inf factor: the sum is not finite (the maxima may or may not show it).
    if (!(std::abs(r.sum) <= std::numeric_limits<double>::max()) || r.max_a >= 0x7f800000u || r.max_b >= 0x7f800000u)
      return false;
    float fa, fb;
    std::memcpy(&fa, &r.max_a, sizeof fa);
    std::memcpy(&fb, &r.max_b, sizeof fb);
    const double M = double(fa) * double(fb);
    // gamma_h * m * M, its two roundings covered by 2^-50.
    f.add(r.sum, core::summation_gamma(filter_lane_depth<Arch>(m)) * (double(m) * M) * (1.0 + 0x1p-50));
  }
  return true;
}

/// The filter of an exact sum of doubles, or of exact double products x[j] y[j] (Products; Arch
/// with a fused FMA), block by block. A block's terms are cut at a grid 2^g: h = (t + C) - C,
/// C = 1.5 * 2^(g+52), exact for |t| <= 2^(g+51), and l = t - h (exact, |l| <= 2^(g-1)). When
/// every |t| < 2^(g+40), the h sum up exactly in any order (multiples of 2^g below
/// 4096 * 2^(g+40) = 2^(g+52)); the l are summed in double lanes, within gamma_h * m * 2^(g-1) of
/// their exact sum. A product t = x y is p + e by TwoProduct (p rounded, e = fma(x, y, -p)); p is
/// cut as above, e (|e| <= 2^-53 |p|) is summed with the l, and e's own error where a product
/// underflows (at most 2^-1075 each) is covered by m 2^-1074. One pass per block: g comes from the
/// previous block's largest |t| (the first block: from its first 64 terms), with headroom, and the
/// block's own largest |t| is found on the way; a block that outgrew its grid is redone with g
/// from a scan of its magnitudes. A grid coarser than needed only widens the bound. Inf or NaN
/// terms make the sums non-finite: not certified.
/// Batches per step of the double filter: three accumulators each (h, l, largest |t|) fit 16
/// vector registers (8 measured no faster on AVX-512).
constexpr std::size_t filter_double_batches = 4;
template <class Arch, bool Products>
bool filter_double_terms(const double* x, const double* y, std::size_t n, core::sum_filter& f) {
  using ops = dvec<Arch>;
  using D = typename ops::D;
  constexpr std::size_t N = ops::N, K = filter_double_batches, log2K = 2;
  constexpr std::uint64_t inf_bits = 0x7ff0000000000000ull;
  if constexpr (Products && !has_fused_fma<Arch>()) {
    (void)x, (void)y, (void)n, (void)f;
    return false;  // no exact product split: the accumulator's product path
  } else {
    auto E_of = [](std::uint64_t bits) { return std::max(static_cast<int>(bits >> 52), 1) - 1022; };  // |t| < 2^E
    auto grid = [](int E) { return std::max(E - 40, -1074); };
    // One block at grid g: H (exact), L, and the largest |term| seen.
    auto block = [&](const double* a, const double* b, std::size_t m, int g, double& H, double& L, double& tmax) {
      const D c = ops::splat(core::double_of(static_cast<std::uint64_t>(g + 52 + 1023) << 52) * 1.5);
      D hi[K], lo[K], mx[K];
      for (std::size_t k = 0; k < K; ++k) hi[k] = lo[k] = mx[k] = ops::splat(0.0);
      auto put = [&](D& h_acc, D& l_acc, D& m_acc, const D& t) {
        const D h = add_on_fma_ports<Arch>(t, c) - c;  // (t + C) - C
        h_acc = add_on_fma_ports<Arch>(h, h_acc);
        l_acc = l_acc + (t - h);
        m_acc = max_magnitude<Arch>(m_acc, t);
      };
      auto step = [&](const double* pa, const double* pb) {
        unroll<K>([&](auto k) {
          if constexpr (Products) {
            const D va = ops::load(pa + k * N), vb = ops::load(pb + k * N);
            const D p = no_contract(va * vb);
            put(hi[k], lo[k], mx[k], p);
            lo[k] = lo[k] + product_error<Arch>(va, vb, p);
          } else if constexpr (std::is_same<Arch, scalar_arch>::value) {
            put(hi[k], lo[k], mx[k], ops::load(pa + k * N));
          } else {
            // In a register: GCC would otherwise fold the load into each of its three uses,
            // and wide loads are what this loop runs out of first (Zen 4).
            put(hi[k], lo[k], mx[k], no_contract(ops::load(pa + k * N)));
          }
        });
      };
      std::size_t j = 0;
      for (; j + K * N <= m; j += K * N) step(a + j, Products ? b + j : nullptr);
      if (j < m) {  // the last < K N terms, zero padded: one more step
        alignas(64) double ta[K * N], tb[K * N];
        for (std::size_t q = 0; q < K * N; ++q) {
          ta[q] = j + q < m ? a[j + q] : 0.0;
          tb[q] = Products && j + q < m ? b[j + q] : 0.0;
        }
        step(ta, tb);
      }
      for (std::size_t w = K / 2; w > 0; w /= 2)
        for (std::size_t k = 0; k < w; ++k) {
          hi[k] = hi[k] + hi[k + w];
          lo[k] = lo[k] + lo[k + w];
          mx[k] = xsimd::max(mx[k], mx[k + w]);
        }
      alignas(64) double lh[N], ll[N], lm[N];
      ops::store(lh, hi[0]);
      ops::store(ll, lo[0]);
      ops::store(lm, mx[0]);
      H = L = tmax = 0.0;
      for (std::size_t q = 0; q < N; ++q) {
        H += lh[q];  // exact when every |t| < 2^(g+40): multiples of 2^g below 2^(g+52)
        L += ll[q];
        tmax = std::max(tmax, lm[q]);
      }
    };
    // The grid of the next block: from the largest magnitude of a sample of its first terms
    // (4 bits of headroom; the first block), of a scan of all of them (a block redone), or of the
    // previous block's largest |t| (2 bits of headroom).
    enum class grid_from { sample, scan, previous } from = grid_from::sample;
    int g = 0;
    for (std::size_t i = 0; i < n;) {
      const std::size_t m = std::min(filter_block, n - i);
      const double* a = x + i;
      const double* b = Products ? y + i : nullptr;
      if (from != grid_from::previous) {
        const std::size_t ms = from == grid_from::sample ? std::min<std::size_t>(m, 64) : m;
        const std::uint64_t mx = block_magnitudes<Arch, double, false>(a, ms).max_abs;
        const std::uint64_t my = Products ? block_magnitudes<Arch, double, false>(b, ms).max_abs : 0;
        if (mx >= inf_bits || my >= inf_bits) return false;
        g = grid((Products ? E_of(mx) + E_of(my) : E_of(mx)) + (from == grid_from::sample ? 4 : 0));
      }
      if (g + 52 > 1023) return false;  // C would overflow: huge terms take the accumulator
      double H, L, tmax;
      block(a, b, m, g, H, L, tmax);
      const std::uint64_t tbits = core::bits_of(tmax);
      if (tbits >= inf_bits || H != H || L != L) return false;  // Inf or NaN terms
      const int E = E_of(tbits);
      if (E > g + 40) {  // the block outgrew its grid: redo it from a scan
        if (from == grid_from::scan) return false;  // cannot happen: the scan bounds every |t|
        from = grid_from::scan;
        continue;
      }
      // Each l (and e) term takes at most ceil(m / (K N)) + log2(K) + N roundings.
      const std::size_t depth = (m + K * N - 1) / (K * N) + log2K + N;
      const double l_bound = double(m) * core::double_of(static_cast<std::uint64_t>(std::max(g - 1, -1022) + 1023) << 52);
      f.add(H, 0.0);
      f.add(L, core::summation_gamma(depth) * l_bound * (1.0 + 0x1p-50) + (Products ? double(m) * 0x1p-1074 : 0.0));
      g = grid(E + 2);
      from = grid_from::previous;
      i += m;
    }
    return true;
  }
}

/// The filter's terms for sum(x) and dot(x, y), for each element type: terms(arch, b, e, f) adds
/// the terms [b, e) to f; false when a block cannot be certified.
template <class T>
auto filter_sum_terms(const T* x) {
  return [x](auto arch, std::size_t b, std::size_t e, core::sum_filter& f) {
    using Arch = decltype(arch);
    if constexpr (std::is_same<T, double>::value)
      return filter_double_terms<Arch, false>(x + b, nullptr, e - b, f);
    else
      return filter_float_terms<Arch>(e - b, f, [&](std::size_t i, std::size_t m, float* ba, float* bb, const float*& pa, const float*& pb) {
        filter_values(x)(b + i, m, ba, bb, pa, pb);
      });
  };
}
template <class T>
auto filter_dot_terms(const T* x, const T* y) {
  return [x, y](auto arch, std::size_t b, std::size_t e, core::sum_filter& f) {
    using Arch = decltype(arch);
    if constexpr (std::is_same<T, double>::value)
      return filter_double_terms<Arch, true>(x + b, y + b, e - b, f);
    else
      return filter_float_terms<Arch>(e - b, f, [&](std::size_t i, std::size_t m, float* ba, float* bb, const float*& pa, const float*& pb) {
        filter_products(x, y)(b + i, m, ba, bb, pa, pb);
      });
  };
}

/// Whether the exact sum and dot try the filter first. Tests turn it off to reach the exact
/// accumulator's paths with data the filter would certify; the bits are the same.
inline std::atomic<bool>& exact_filter_enabled() {
  static std::atomic<bool> v{true};
  return v;
}

/// An exact sum or dot through the filter on up to `threads` threads (the split only changes
/// which partial filters merge, never the certified value): true and `out` = the exact tier's
/// value when certified; false sends the caller to the exact accumulator. terms(b, e, f) adds
/// the terms [b, e) to f, false when they cannot be certified.
template <class Out, class Terms>
bool filter_reduce(std::size_t n, int threads, Terms terms, Out& out) {
  const std::size_t t = static_cast<std::size_t>(reduce_threads_for(n, threads));
  core::sum_filter total;
  if (t <= 1) return terms(std::size_t{0}, n, total) && total.round(out);
  std::vector<core::sum_filter> part(t);
  std::vector<unsigned char> ok(t, 0);
  thread_pool::instance().run(static_cast<int>(t), [&](int id) {
    const std::size_t b = n * static_cast<std::size_t>(id) / t, e = n * static_cast<std::size_t>(id + 1) / t;
    ok[static_cast<std::size_t>(id)] = terms(b, e, part[static_cast<std::size_t>(id)]);
  });
  for (std::size_t k = 0; k < t; ++k) {
    if (!ok[k]) return false;
    total.merge(part[k]);
  }
  return total.round(out);
}

/// Exact dot of doubles. With a fused multiply-add, each product is split exactly into
/// p = x*y rounded and e = x*y - p (TwoProduct; exact when no product underflows or overflows,
/// which the block bounds check) and p and e go to two register engines. Blocks whose bounds do
/// not allow it, and ISAs without a fused FMA, use the accumulator's exact product path.
///   |x| < 2^Ex, every non-zero |x| >= 2^mx, every x a multiple of 2^Qx (same for y):
///   |p| <= 2^(Ex+Ey), ulp(p) >= 2^(mx+my-52); |e| <= ulp(p)/2 <= 2^(Ex+Ey-53), and e is a
///   multiple of 2^(Qx+Qy) (or 0); TwoProduct is exact when mx + my >= -969 (no product bit
///   below 2^-1074) and Ex + Ey <= 1023 (no overflow).
template <class Arch>
void exact_dot_range(const double* x, const double* y, std::size_t n, core::exact_accumulator<double>& acc) {
  if constexpr (!has_fused_fma<Arch>()) {
    for (std::size_t i = 0; i < n; ++i) acc.add_product(x[i], y[i]);
  } else {
    using D = xsimd::batch<double, Arch>;
    exact_engine<Arch, double, true> ep(acc), ee(acc);
    bool simd_values = false, simd_any = false;
    for (std::size_t i = 0; i < n; i += exact_block) {
      const std::size_t m = std::min(exact_block, n - i);
      const magnitude_range rx = block_magnitudes<Arch>(x + i, m), ry = block_magnitudes<Arch>(y + i, m);
      constexpr std::uint64_t inf = 0x7ff0000000000000ull;
      bool ok = rx.max_abs != 0 && ry.max_abs != 0 && rx.max_abs < inf && ry.max_abs < inf;
      if (ok) {
        auto E_of = [](const magnitude_range& r) { return std::max(static_cast<int>(r.max_abs >> 52), 1) - 1023 + 1; };
        auto m_of = [](const magnitude_range& r) {
          const int b = static_cast<int>(r.min_nonzero_abs >> 52);
          return b == 0 ? -1074 : b - 1023;
        };
        auto Q_of = [](const magnitude_range& r) { return std::max(static_cast<int>(r.min_nonzero_abs >> 52), 1) - 1075; };
        const int Ex = E_of(rx), Ey = E_of(ry), mxy = m_of(rx) + m_of(ry);
        ok = mxy >= -969 && Ex + Ey <= 1023;
        if (ok) {
          const std::uint64_t cnt = ep.per_lane(m);
          const int Ep = Ex + Ey + 1, Qp = std::max(mxy - 52, -1074);
          const int Ee = Ex + Ey - 52, Qe = std::max(Q_of(rx) + Q_of(ry), -1074);
          ok = ep.admit(Ep, Qp, cnt) && ee.admit(Ee, Qe, cnt);
        }
      }
      if (!ok) {
        BITEXACT_STAT(1);
        for (std::size_t j = 0; j < m; ++j) acc.add_product(x[i + j], y[i + j]);
        continue;
      }
      simd_any = true;
      if (!simd_values) simd_values = some_product_not_negative_zero(x + i, y + i, m);
      ep.add_generated(x + i, y + i, m, [](const D& a, const D& b) { return no_contract(a * b); });
      ee.add_generated(x + i, y + i, m, [](const D& a, const D& b) { return product_error<Arch>(a, b, no_contract(a * b)); });
    }
    ep.flush();
    ee.flush();
    acc.note_inputs(simd_any, !simd_values, false, false, false);
  }
}

/// Exact sum of (x[i] - mean)^2, the difference rounded to A and squared exactly.
template <class Arch, class T>
void exact_centered_squares_range(const T* x, std::size_t n, core::accumulation_t<T> mean,
                                  core::exact_accumulator<core::accumulation_t<T>>& acc) {
  if constexpr (std::is_same<T, double>::value) {
    // The differences of a block, then their exact dot with themselves (TwoProduct path).
    alignas(64) double d[exact_block];
    for (std::size_t i = 0; i < n; i += exact_block) {
      const std::size_t m = std::min(exact_block, n - i);
      for (std::size_t j = 0; j < m; ++j) d[j] = x[i + j] - mean;
      exact_dot_range<Arch>(d, d, m, acc);
    }
  } else {
    exact_products_range<Arch>(n, acc, [&](std::size_t i, std::size_t m, float* ba, float*, const float*& a, const float*& b) {
      for (std::size_t j = 0; j < m; ++j) ba[j] = core::widen(x[i + j]) - mean;
      a = ba;
      b = ba;
    });
  }
}

/// Runs range(b, e, acc) over [0, n) split among threads, each with its own accumulator, and
/// returns the merged accumulator (the split changes nothing: the sum is exact).
template <class AccT, class Range>
core::exact_accumulator<AccT> exact_reduce(std::size_t n, int threads, Range range) {
  core::exact_accumulator<AccT> acc;
  const std::size_t t = static_cast<std::size_t>(reduce_threads_for(n, threads));
  if (t <= 1) {
    range(std::size_t{0}, n, acc);
    return acc;
  }
  std::vector<core::exact_accumulator<AccT>> part(t);
  thread_pool::instance().run(static_cast<int>(t), [&](int id) {
    const std::size_t b = n * static_cast<std::size_t>(id) / t, e = n * static_cast<std::size_t>(id + 1) / t;
    range(b, e, part[static_cast<std::size_t>(id)]);
  });
  for (const auto& p : part) acc.merge(p);
  return acc;
}

}  // namespace detail
}  // namespace cpu
}  // namespace bitexact
