// bitexact/cpu/gemm_kernels.hpp - CPU kernels of gemm's fixed_order tier, BLIS style.
//
// Computes exactly the canonical K order of core/gemm_order.hpp (= reference/gemm.hpp):
// every C element is one chain of fused FMAs from +0 over each 256-wide canonical K chunk, the
// chunk partials folded left to right, one epilogue. Vectorised across i and j only, never
// across k, so the blocking below changes who computes what and when, never a bit.
//
// Layers (the conv family reuses the first three):
//   1. gemm_vec<Arch, T>: the ISA's registers - load/store, broadcast, a real fused FMA
//      (_mm512_fmadd_*, _mm256_fmadd_* of FMA3, vfmaq_* on NEON; core::fused_fma on SSE2 and
//      scalar, which have no fused FMA: glibc's correctly rounded software FMA, same bits).
//   2. gemm_micro<Arch, T>: the register-blocked microkernel. gemm_micro::tile() computes an
//      mr x NR block (mr <= MR) of ONE canonical chunk's partials, from +0, for k = 0..kc-1:
//        p[i][j] = fma(a[k * a_ks + i], b[k * b_ks + j], p[i][j])
//      `a` is A packed k-major (a[k * a_ks + i] = opA[row0 + i][k0 + k]; pack_a writes a_ks = MR),
//      `b` is NR contiguous values per k (packed: b_ks = NR; or B itself when its rows are
//      contiguous: b_ks = ldb). It then merges the partial into the running total:
//        S = first ? p : S + p          (the canonical left fold, step 3)
//        last: C = epilogue(alpha, S, beta, C_old) (step 4, canonical NaN)  else: store S
//      S lives in `s` (row stride lds). With beta == 0 S may live in C itself (s == c).
//   3. pack_a / pack_b: copy (and widen bfloat16) a block of op(A) / op(B) into those layouts.
//   4. gemm_fixed_order_run: cache blocking per ISA (gemm_micro::MC/NC; KC is the canonical
//      chunk, 256) and threads: each thread owns a block of C (columns first, then rows, in
//      whole micro-panels) and runs every K chunk of it in order; when C has too few panels to
//      keep the threads busy, threads split K by whole chunks, each chunk's partials go to their
//      own buffer, and the buffers fold in chunk order (step 3), then the epilogue.
//   5. Streams for few rows of C (gemv, decode), where B is read once and memory bound:
//      gemm_rowstream (op(B) = B, m <= 16: B row by row, 8 rows per pass, into rows of
//      partials in L1 or L2) and
//      gemm_ntstream / gemm_ntstream_ymm (op(B) = B^T, m <= 16, AVX-512 and AVX2+FMA: blocks of
//      B rows transposed in registers so that each vector lane carries one output's chain).
//      Same per-element order; threads still split C's columns only.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <type_traits>
#include <vector>

#include <xsimd/xsimd.hpp>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif
#if defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#endif

#include "../core/bfloat16.hpp"
#include "../core/gemm_order.hpp"
#include "../core/math.hpp"
#include "dispatch.hpp"
#include "threads.hpp"

namespace bitexact {
namespace cpu {
namespace detail {

// ------------------------------------------------------------------ 1. registers per ISA

/// Scalar "vector" (SSE2 and scalar_arch): one value, core::fused_fma.
template <class T>
struct gemm_vec_scalar {
  using reg = T;
  static constexpr int W = 1;
  static reg load(const T* p) { return *p; }
  static void store(T* p, reg v) { *p = v; }
  static reg bcast(const T* p) { return *p; }
  static reg set1(T x) { return x; }
  static reg zero() { return T(0); }
  static reg fma(reg a, reg b, reg c) { return core::fused_fma(a, b, c); }
  static reg add(reg a, reg b) { return a + b; }
  static reg mul(reg a, reg b) { return core::mul_rn(a, b); }
  static reg canon(reg v) { return v != v ? core::detail::gemm_canonical_nan(T(0)) : v; }
};

#if defined(__AVX512F__)
struct gemm_vec_avx512_f32 {
  using reg = __m512;
  static constexpr int W = 16;
  static reg load(const float* p) { return _mm512_loadu_ps(p); }
  static reg load(const bfloat16* p) {  // exact widening: bits << 16
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16));
  }
  static void store(float* p, reg v) { _mm512_storeu_ps(p, v); }
  static reg bcast(const float* p) { return _mm512_set1_ps(*p); }
  static reg set1(float x) { return _mm512_set1_ps(x); }
  static reg zero() { return _mm512_setzero_ps(); }
  static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  static reg mul(reg a, reg b) { return _mm512_mul_ps(a, b); }
  static reg canon(reg v) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), v,
                                _mm512_set1_ps(core::detail::gemm_canonical_nan(0.0f)));
  }
};
struct gemm_vec_avx512_f64 {
  using reg = __m512d;
  static constexpr int W = 8;
  static reg load(const double* p) { return _mm512_loadu_pd(p); }
  static void store(double* p, reg v) { _mm512_storeu_pd(p, v); }
  static reg bcast(const double* p) { return _mm512_set1_pd(*p); }
  static reg set1(double x) { return _mm512_set1_pd(x); }
  static reg zero() { return _mm512_setzero_pd(); }
  static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_pd(a, b, c); }
  static reg add(reg a, reg b) { return _mm512_add_pd(a, b); }
  static reg mul(reg a, reg b) { return _mm512_mul_pd(a, b); }
  static reg canon(reg v) {
    return _mm512_mask_blend_pd(_mm512_cmp_pd_mask(v, v, _CMP_UNORD_Q), v,
                                _mm512_set1_pd(core::detail::gemm_canonical_nan(0.0)));
  }
};
#endif

#if defined(__AVX2__) && defined(__FMA__)
struct gemm_vec_avx2_f32 {
  using reg = __m256;
  static constexpr int W = 8;
  static reg load(const float* p) { return _mm256_loadu_ps(p); }
  static reg load(const bfloat16* p) {  // exact widening: bits << 16
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
  }
  static void store(float* p, reg v) { _mm256_storeu_ps(p, v); }
  static reg bcast(const float* p) { return _mm256_broadcast_ss(p); }
  static reg set1(float x) { return _mm256_set1_ps(x); }
  static reg zero() { return _mm256_setzero_ps(); }
  static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  static reg mul(reg a, reg b) { return _mm256_mul_ps(a, b); }
  static reg canon(reg v) {
    return _mm256_blendv_ps(v, _mm256_set1_ps(core::detail::gemm_canonical_nan(0.0f)),
                            _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  }
};
struct gemm_vec_avx2_f64 {
  using reg = __m256d;
  static constexpr int W = 4;
  static reg load(const double* p) { return _mm256_loadu_pd(p); }
  static void store(double* p, reg v) { _mm256_storeu_pd(p, v); }
  static reg bcast(const double* p) { return _mm256_broadcast_sd(p); }
  static reg set1(double x) { return _mm256_set1_pd(x); }
  static reg zero() { return _mm256_setzero_pd(); }
  static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_pd(a, b, c); }
  static reg add(reg a, reg b) { return _mm256_add_pd(a, b); }
  static reg mul(reg a, reg b) { return _mm256_mul_pd(a, b); }
  static reg canon(reg v) {
    return _mm256_blendv_pd(v, _mm256_set1_pd(core::detail::gemm_canonical_nan(0.0)),
                            _mm256_cmp_pd(v, v, _CMP_UNORD_Q));
  }
};
#endif

#if defined(__aarch64__) && defined(__ARM_NEON)
struct gemm_vec_neon_f32 {
  using reg = float32x4_t;
  static constexpr int W = 4;
  static reg load(const float* p) { return vld1q_f32(p); }
  static void store(float* p, reg v) { vst1q_f32(p, v); }
  static reg bcast(const float* p) { return vld1q_dup_f32(p); }
  static reg set1(float x) { return vdupq_n_f32(x); }
  static reg zero() { return vdupq_n_f32(0.0f); }
  static reg fma(reg a, reg b, reg c) { return vfmaq_f32(c, a, b); }  // c + a*b, fused
  static reg add(reg a, reg b) { return vaddq_f32(a, b); }
  static reg mul(reg a, reg b) { return vmulq_f32(a, b); }
  static reg canon(reg v) {
    return vbslq_f32(vceqq_f32(v, v), v, vdupq_n_f32(core::detail::gemm_canonical_nan(0.0f)));
  }
};
struct gemm_vec_neon_f64 {
  using reg = float64x2_t;
  static constexpr int W = 2;
  static reg load(const double* p) { return vld1q_f64(p); }
  static void store(double* p, reg v) { vst1q_f64(p, v); }
  static reg bcast(const double* p) { return vld1q_dup_f64(p); }
  static reg set1(double x) { return vdupq_n_f64(x); }
  static reg zero() { return vdupq_n_f64(0.0); }
  static reg fma(reg a, reg b, reg c) { return vfmaq_f64(c, a, b); }
  static reg add(reg a, reg b) { return vaddq_f64(a, b); }
  static reg mul(reg a, reg b) { return vmulq_f64(a, b); }
  static reg canon(reg v) {
    return vbslq_f64(vceqq_f64(v, v), v, vdupq_n_f64(core::detail::gemm_canonical_nan(0.0)));
  }
};
#endif

/// Registers, register block (MR rows x NV vectors) and cache blocks (MC rows of packed A,
/// NC columns of packed B) of an ISA. KC is always the canonical chunk (256).
template <class Arch, class T>
struct gemm_arch {
  using V = gemm_vec_scalar<T>;
  static constexpr int MR = 4, NV = 4;
  static constexpr std::size_t MC = 64, NC = 256;
};
#if defined(__AVX512F__) && XSIMD_WITH_AVX512BW
template <>
struct gemm_arch<xsimd::avx512bw, float> {
  using V = gemm_vec_avx512_f32;
  static constexpr int MR = 14, NV = 2;  // 28 accumulators, 2 B vectors, 1 broadcast
  static constexpr std::size_t MC = 560, NC = 2048;
};
template <>
struct gemm_arch<xsimd::avx512bw, double> {
  using V = gemm_vec_avx512_f64;
  static constexpr int MR = 14, NV = 2;
  static constexpr std::size_t MC = 280, NC = 512;  // A micro-panel in L1, packed B (1 MiB) in L2
};
#endif
#if defined(__AVX2__) && defined(__FMA__) && XSIMD_WITH_FMA3_AVX2
template <>
struct gemm_arch<xsimd::fma3<xsimd::avx2>, float> {
  using V = gemm_vec_avx2_f32;
  static constexpr int MR = 6, NV = 2;  // 12 accumulators of 16 ymm
  static constexpr std::size_t MC = 120, NC = 1024;
};
template <>
struct gemm_arch<xsimd::fma3<xsimd::avx2>, double> {
  using V = gemm_vec_avx2_f64;
  static constexpr int MR = 6, NV = 2;
  static constexpr std::size_t MC = 96, NC = 512;
};
#endif
#if defined(__aarch64__) && defined(__ARM_NEON) && XSIMD_WITH_NEON64
template <>
struct gemm_arch<xsimd::neon64, float> {
  using V = gemm_vec_neon_f32;
  static constexpr int MR = 8, NV = 3;  // 24 accumulators of 32 q registers
  static constexpr std::size_t MC = 128, NC = 768;
};
template <>
struct gemm_arch<xsimd::neon64, double> {
  using V = gemm_vec_neon_f64;
  static constexpr int MR = 8, NV = 3;
  static constexpr std::size_t MC = 96, NC = 384;
};
#endif

// ------------------------------------------------------------------ 2. the microkernel

inline void gemm_prefetch(const void* p) {  // for reading
#if defined(__GNUC__) || defined(__clang__)
  __builtin_prefetch(p, 0, 3);
#else
  (void)p;
#endif
}
inline void gemm_prefetch_w(const void* p) {  // for writing
#if defined(__GNUC__) || defined(__clang__)
  __builtin_prefetch(p, 1, 3);
#else
  (void)p;
#endif
}

/// What to do with a chunk's partials (see the header comment).
template <class T>
struct gemm_merge {
  T* s;             ///< running total S (row stride lds)
  std::size_t lds;
  bool first;       ///< S = p (first chunk) instead of S + p
  bool last;        ///< apply the epilogue into c instead of storing S
  T* c;             ///< C (row stride ldc); read only when last && beta != 0
  std::size_t ldc;
  T alpha, beta;    ///< alpha != 0 (alpha == 0 never reaches a kernel)
  /// When set (tile() only), C_old of row i is the scalar c_row[i] in every column instead of
  /// C's element: a broadcast C such as a bias, which the epilogue's fma(beta, C_old, t) adds.
  const T* c_row = nullptr;
};

/// Which operand of the microkernel an offset table addresses (see gemm_micro::tile_rows).
enum class gemm_offsets { none, b, a };

template <class Arch, class T>
struct gemm_micro {
  using A = gemm_arch<Arch, T>;
  using V = typename A::V;
  using reg = typename V::reg;
  static constexpr int MR = A::MR, NV = A::NV, W = V::W, NR = NV * W;

  /// The microkernel for exactly R rows (R <= MR), then the merge; nr <= NR columns are kept.
  /// A's R values of step k are at a + k * a_ks (+ 0 .. R - 1), B's row k at b + k * b_ks; an
  /// offset table `off` (kc + 8 entries: the last 8 only steer prefetches) instead places B's row
  /// k at b + off[k] (O == b) or A's values of step k at a + off[k] (O == a). Only the addresses
  /// differ: the chains are the same.
  template <int R, gemm_offsets O = gemm_offsets::none>
  static void tile_rows(std::size_t kc, const T* a, std::size_t a_ks, const T* b, std::size_t b_ks,
                        std::size_t nr, const gemm_merge<T>& g, const std::ptrdiff_t* off = nullptr) {
    reg acc[R][NV];
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i)
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) acc[i][j] = V::zero();
    const bool strided = b_ks != static_cast<std::size_t>(NR);
    // Always inlined: left out of line (GCC 12 does so for R = 12, 13 in a small program), the
    // accumulators live in memory and every FMA becomes a load, an FMA and a store.
#if defined(__GNUC__)
    auto step = [&]() __attribute__((always_inline)) {
#else
    auto step = [&] {
#endif
      const T* bk = b;
      const T* ak = a;
      if constexpr (O == gemm_offsets::b) {  // B rows scattered in place: fetch the row 8 steps ahead
        bk = b + off[0];
        const T* pb = b + off[8];
        for (int j = 0; j < NR; j += 64 / static_cast<int>(sizeof(T))) gemm_prefetch(pb + j);
        gemm_prefetch(pb + NR - 1);
        ++off;
      } else if (strided) {  // B read in place: rows ldb apart, which the hardware prefetcher misses
        const T* pb = b + 8 * b_ks;
        for (int j = 0; j < NR; j += 64 / static_cast<int>(sizeof(T))) gemm_prefetch(pb + j);
      }
      if constexpr (O == gemm_offsets::a) {  // A's steps scattered in place: 8 steps ahead
        ak = a + off[0];
        gemm_prefetch(a + off[8]);
        gemm_prefetch(a + off[8] + (R - 1));
        ++off;
      } else {
        gemm_prefetch(a + 16 * a_ks);  // the A micro-panel streams from L2
      }
      reg bv[NV];
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) bv[j] = V::load(bk + j * W);
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i) {
        const reg av = V::bcast(ak + i);
#pragma GCC unroll 8
        for (int j = 0; j < NV; ++j) acc[i][j] = V::fma(av, bv[j], acc[i][j]);
      }
      if constexpr (O != gemm_offsets::a) a += a_ks;
      if constexpr (O != gemm_offsets::b) b += b_ks;
    };
    // The tile of S (and C) is read or written once the chain ends: fetch it meanwhile, one row
    // per k step (a burst of 3 R prefetches at the start filled the line-fill buffers and stalled).
    std::size_t k = 0;
    for (const std::size_t kp = std::min<std::size_t>(kc, R); k < kp; ++k) {
      const char* ps = reinterpret_cast<const char*>(g.s + k * g.lds);
      gemm_prefetch_w(ps);
      gemm_prefetch_w(ps + 64);
      gemm_prefetch_w(ps + nr * sizeof(T) - 1);
      step();
    }
    for (; k < kc; ++k) step();
    if (nr == static_cast<std::size_t>(NR)) {
      const reg va = V::set1(g.alpha), vb = V::set1(g.beta);
      for (int i = 0; i < R; ++i) {
        T* srow = g.s + static_cast<std::size_t>(i) * g.lds;
        T* crow = g.c + static_cast<std::size_t>(i) * g.ldc;
#pragma GCC unroll 8
        for (int j = 0; j < NV; ++j) {
          reg s = g.first ? acc[i][j] : V::add(V::load(srow + j * W), acc[i][j]);
          if (!g.last) {
            V::store(srow + j * W, s);
          } else {
            reg t = V::mul(va, s);
            if (g.beta != T(0)) t = V::fma(vb, g.c_row ? V::set1(g.c_row[i]) : V::load(crow + j * W), t);
            V::store(crow + j * W, V::canon(t));
          }
        }
      }
    } else {
      alignas(64) T buf[NR];
      for (int i = 0; i < R; ++i) {
#pragma GCC unroll 8
        for (int j = 0; j < NV; ++j) V::store(buf + j * W, acc[i][j]);
        T* srow = g.s + static_cast<std::size_t>(i) * g.lds;
        T* crow = g.c + static_cast<std::size_t>(i) * g.ldc;
        for (std::size_t j = 0; j < nr; ++j) {
          const T s = g.first ? buf[j] : core::gemm_combine(srow[j], buf[j]);
          if (!g.last)
            srow[j] = s;
          else
            crow[j] = core::gemm_epilogue(g.alpha, s, g.beta,
                                          g.beta == T(0) ? T(0) : (g.c_row ? g.c_row[i] : crow[j]));
        }
      }
    }
  }

  /// The merge of one row of nr partials held in memory (p[0..nr)), as tile() does for registers.
  static void merge_row(const T* p, std::size_t nr, const gemm_merge<T>& g) {
    const reg va = V::set1(g.alpha), vb = V::set1(g.beta);
    std::size_t j = 0;
    for (; j + W <= nr; j += W) {
      const reg pv = V::load(p + j);
      const reg sv = g.first ? pv : V::add(V::load(g.s + j), pv);
      if (!g.last) {
        V::store(g.s + j, sv);
      } else {
        reg t = V::mul(va, sv);
        if (g.beta != T(0)) t = V::fma(vb, V::load(g.c + j), t);
        V::store(g.c + j, V::canon(t));
      }
    }
    for (; j < nr; ++j) {
      const T sv = g.first ? p[j] : core::gemm_combine(g.s[j], p[j]);
      if (!g.last)
        g.s[j] = sv;
      else
        g.c[j] = core::gemm_epilogue(g.alpha, sv, g.beta, g.beta == T(0) ? T(0) : g.c[j]);
    }
  }

  template <int R, gemm_offsets O = gemm_offsets::none>
  static void tile_dispatch(int mr, std::size_t kc, const T* a, std::size_t a_ks, const T* b, std::size_t b_ks,
                            std::size_t nr, const gemm_merge<T>& g, const std::ptrdiff_t* off = nullptr) {
    if constexpr (R > 1) {
      if (mr < R) return tile_dispatch<R - 1, O>(mr, kc, a, a_ks, b, b_ks, nr, g, off);
    }
    tile_rows<R, O>(kc, a, a_ks, b, b_ks, nr, g, off);
  }

  /// One mr x nr tile (1 <= mr <= MR, 1 <= nr <= NR) of one canonical chunk (kc <= 256),
  /// merged into S / C as `g` says. The interface conv builds on.
  static void tile(int mr, std::size_t kc, const T* a, std::size_t a_ks, const T* b, std::size_t b_ks,
                   std::size_t nr, const gemm_merge<T>& g) {
    tile_dispatch<MR>(mr, kc, a, a_ks, b, b_ks, nr, g);
  }
  /// tile() with B's row k at b + b_off[k] (kc + 8 entries; see tile_rows): an implicit-GEMM B
  /// read where it lies (convolution taps on padded planes) instead of copied into panels.
  static void tile_offsets(int mr, std::size_t kc, const T* a, std::size_t a_ks, const T* b,
                           const std::ptrdiff_t* b_off, std::size_t nr, const gemm_merge<T>& g) {
    tile_dispatch<MR, gemm_offsets::b>(mr, kc, a, a_ks, b, 0, nr, g, b_off);
  }
  /// tile() with A's mr values of step k at a + a_off[k] (kc + 8 entries) and B's rows b_ks
  /// apart: an implicit-GEMM A read where it lies (backward-weight's im2col^T: a run of channels
  /// of one tap, on a padded NHWC copy of x) instead of gathered into panels.
  static void tile_a_offsets(int mr, std::size_t kc, const T* a, const std::ptrdiff_t* a_off, const T* b,
                             std::size_t b_ks, std::size_t nr, const gemm_merge<T>& g) {
    tile_dispatch<MR, gemm_offsets::a>(mr, kc, a, 0, b, b_ks, nr, g, a_off);
  }
};

// ------------------------------------------------------------------ 3. packing

#if defined(__AVX512F__) && XSIMD_WITH_AVX512BW
/// In-register transposes for packing (pure data movement: no arithmetic, no bits change).
inline void gemm_transpose16_ps(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  for (int x = 0; x < 4; ++x) {  // r[4g + x], 128-bit lane L: column 4L + x of rows 4g..4g+3
    const __m512 u0 = _mm512_shuffle_f32x4(r[x], r[4 + x], 0x88), u1 = _mm512_shuffle_f32x4(r[x], r[4 + x], 0xDD);
    const __m512 u2 = _mm512_shuffle_f32x4(r[8 + x], r[12 + x], 0x88),
                 u3 = _mm512_shuffle_f32x4(r[8 + x], r[12 + x], 0xDD);
    t[x] = _mm512_shuffle_f32x4(u0, u2, 0x88);
    t[8 + x] = _mm512_shuffle_f32x4(u0, u2, 0xDD);
    t[4 + x] = _mm512_shuffle_f32x4(u1, u3, 0x88);
    t[12 + x] = _mm512_shuffle_f32x4(u1, u3, 0xDD);
  }
  for (int i = 0; i < 16; ++i) r[i] = t[i];
}
inline void gemm_transpose8_pd(__m512d r[8]) {
  __m512d t[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm512_unpacklo_pd(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_pd(r[2 * i], r[2 * i + 1]);
  }
  for (int x = 0; x < 2; ++x) {  // t[2g + x], lane L: column 2L + x of rows 2g, 2g+1
    const __m512d u0 = _mm512_shuffle_f64x2(t[x], t[2 + x], 0x88), u1 = _mm512_shuffle_f64x2(t[x], t[2 + x], 0xDD);
    const __m512d u2 = _mm512_shuffle_f64x2(t[4 + x], t[6 + x], 0x88),
                  u3 = _mm512_shuffle_f64x2(t[4 + x], t[6 + x], 0xDD);
    r[x] = _mm512_shuffle_f64x2(u0, u2, 0x88);
    r[4 + x] = _mm512_shuffle_f64x2(u0, u2, 0xDD);
    r[2 + x] = _mm512_shuffle_f64x2(u1, u3, 0x88);
    r[6 + x] = _mm512_shuffle_f64x2(u1, u3, 0xDD);
  }
}
inline __m512 gemm_load16(const float* p) { return _mm512_loadu_ps(p); }
inline __m512 gemm_load16(const bfloat16* p) { return gemm_vec_avx512_f32::load(p); }

/// op(B) stored transposed (columns contiguous in k): full NR-wide panels by 16 x 16 (float,
/// bfloat16) or 8 x 8 (double) register transposes; returns the k handled (a multiple of the tile).
template <int NR, class T, class In>
std::size_t gemm_pack_bt_avx512(std::size_t kc, const In* b, std::size_t cs, T* d) {
  if constexpr (std::is_same<T, float>::value && NR % 16 == 0) {
    const std::size_t kv = kc / 16 * 16;
    for (std::size_t k0 = 0; k0 < kv; k0 += 16)
      for (int c0 = 0; c0 < NR; c0 += 16) {
        __m512 r[16];
        for (int i = 0; i < 16; ++i) r[i] = gemm_load16(b + (c0 + i) * cs + k0);
        gemm_transpose16_ps(r);
        for (int i = 0; i < 16; ++i) _mm512_storeu_ps(d + (k0 + i) * NR + c0, r[i]);
      }
    return kv;
  } else if constexpr (std::is_same<T, double>::value && std::is_same<In, double>::value && NR % 8 == 0) {
    const std::size_t kv = kc / 8 * 8;
    for (std::size_t k0 = 0; k0 < kv; k0 += 8)
      for (int c0 = 0; c0 < NR; c0 += 8) {
        __m512d r[8];
        for (int i = 0; i < 8; ++i) r[i] = _mm512_loadu_pd(b + (c0 + i) * cs + k0);
        gemm_transpose8_pd(r);
        for (int i = 0; i < 8; ++i) _mm512_storeu_pd(d + (k0 + i) * NR + c0, r[i]);
      }
    return kv;
  } else {
    (void)kc, (void)b, (void)cs, (void)d;
    return 0;
  }
}
/// op(A) rows contiguous in k: an MR-row micro-panel (mr <= MR rows valid) by 16 x 16 (float,
/// bfloat16) or 8 x 8 (double) register transposes, rows in groups of the vector width (rows past
/// mr read as zeros and are not stored); returns the k handled (a multiple of the tile).
template <int MR, class T, class In>
std::size_t gemm_pack_at_avx512(std::size_t mr, std::size_t kc, const In* a, std::size_t rs, T* d) {
  if constexpr (std::is_same<T, float>::value) {
    const std::size_t kv = kc / 16 * 16;
    for (std::size_t k0 = 0; k0 < kv; k0 += 16)
      for (std::size_t g0 = 0; g0 < mr; g0 += 16) {
        const std::size_t cnt = std::min<std::size_t>(16, mr - g0);
        __m512 r[16];
        for (std::size_t i = 0; i < 16; ++i) r[i] = i < cnt ? gemm_load16(a + (g0 + i) * rs + k0) : _mm512_setzero_ps();
        gemm_transpose16_ps(r);
        const __mmask16 mk = static_cast<__mmask16>((1u << cnt) - 1u);
        for (int i = 0; i < 16; ++i) _mm512_mask_storeu_ps(d + (k0 + i) * MR + g0, mk, r[i]);
      }
    return kv;
  } else if constexpr (std::is_same<T, double>::value && std::is_same<In, double>::value) {
    const std::size_t kv = kc / 8 * 8;
    for (std::size_t k0 = 0; k0 < kv; k0 += 8)
      for (std::size_t g0 = 0; g0 < mr; g0 += 8) {
        const std::size_t cnt = std::min<std::size_t>(8, mr - g0);
        __m512d r[8];
        for (std::size_t i = 0; i < 8; ++i) r[i] = i < cnt ? _mm512_loadu_pd(a + (g0 + i) * rs + k0) : _mm512_setzero_pd();
        gemm_transpose8_pd(r);
        const __mmask8 mk = static_cast<__mmask8>((1u << cnt) - 1u);
        for (int i = 0; i < 8; ++i) _mm512_mask_storeu_pd(d + (k0 + i) * MR + g0, mk, r[i]);
      }
    return kv;
  } else {
    (void)mr, (void)kc, (void)a, (void)rs, (void)d;
    return 0;
  }
}
#endif

/// Packs rows [0, mc) x k [0, kc) of op(A), whose element (i, k) is at a[i * rs + k * ks], into
/// micro-panels of MR rows: panel q at dst + q * kc * MR, element (q*MR + r, k) at [k * MR + r].
/// Rows mr..MR-1 of a last partial panel are left unwritten (the microkernel never reads them).
template <class Arch, int MR, class T, class In>
void gemm_pack_a(std::size_t mc, std::size_t kc, const In* a, std::size_t rs, std::size_t ks, T* dst) {
  for (std::size_t q0 = 0; q0 < mc; q0 += MR) {
    const std::size_t mr = std::min<std::size_t>(MR, mc - q0);
    T* d = dst + (q0 / MR) * kc * MR;
    if (ks == 1) {  // op(A) rows contiguous in k: transpose into the panel
      std::size_t kdone = 0;
#if defined(__AVX512F__) && XSIMD_WITH_AVX512BW
      if constexpr (std::is_same<Arch, xsimd::avx512bw>::value)
        kdone = gemm_pack_at_avx512<MR>(mr, kc, a + q0 * rs, rs, d);
#endif
      for (std::size_t r = 0; r < mr; ++r) {
        const In* src = a + (q0 + r) * rs;
        for (std::size_t k = kdone; k < kc; ++k) d[k * MR + r] = static_cast<T>(core::widen(src[k]));
      }
    } else {
      for (std::size_t k = 0; k < kc; ++k) {
        const In* src = a + k * ks + q0 * rs;
        for (std::size_t r = 0; r < mr; ++r) d[k * MR + r] = static_cast<T>(core::widen(src[r * rs]));
      }
    }
  }
}

/// Packs k [0, kc) x columns [0, nc) of op(B), element (k, j) at b[k * ks + j * cs], into
/// micro-panels of NR columns (panel p at dst + p * kc * NR, (k, p*NR + c) at [k * NR + c]);
/// the last panel is padded with zeros (those columns are computed and never stored).
template <class Arch, int NR, class T, class In>
void gemm_pack_b(std::size_t kc, std::size_t nc, const In* b, std::size_t ks, std::size_t cs, T* dst) {
  for (std::size_t p0 = 0; p0 < nc; p0 += NR) {
    const std::size_t nr = std::min<std::size_t>(NR, nc - p0);
    T* d = dst + (p0 / NR) * kc * NR;
    if (cs == 1) {
      if (std::is_same<T, In>::value && nr == static_cast<std::size_t>(NR)) {  // a fixed-size copy per k
        for (std::size_t k = 0; k < kc; ++k) std::memcpy(d + k * NR, b + k * ks + p0, NR * sizeof(T));
      } else {
        for (std::size_t k = 0; k < kc; ++k) {
          const In* src = b + k * ks + p0;
          for (std::size_t c = 0; c < nr; ++c) d[k * NR + c] = static_cast<T>(core::widen(src[c]));
          for (std::size_t c = nr; c < static_cast<std::size_t>(NR); ++c) d[k * NR + c] = T(0);
        }
      }
    } else {  // op(B) columns contiguous in k (B transposed): transpose into the panel
      std::size_t kdone = 0;
#if defined(__AVX512F__) && XSIMD_WITH_AVX512BW
      if constexpr (std::is_same<Arch, xsimd::avx512bw>::value)
        if (nr == static_cast<std::size_t>(NR)) kdone = gemm_pack_bt_avx512<NR>(kc, b + p0 * cs, cs, d);
#endif
      if (nr < static_cast<std::size_t>(NR))
        for (std::size_t k = 0; k < kc; ++k)
          for (std::size_t c = nr; c < static_cast<std::size_t>(NR); ++c) d[k * NR + c] = T(0);
      for (std::size_t c = 0; c < nr; ++c) {
        const In* src = b + (p0 + c) * cs;
        for (std::size_t k = kdone; k < kc; ++k) d[k * NR + c] = static_cast<T>(core::widen(src[k]));
      }
    }
  }
}

/// A per-thread, 64-byte aligned scratch buffer that only grows.
template <class T, int Slot>
T* gemm_scratch(std::size_t count) {
  struct holder {
    T* p = nullptr;
    std::size_t n = 0;
    ~holder() { ::operator delete(p, std::align_val_t(64)); }
  };
  thread_local holder h;
  if (h.n < count) {
    ::operator delete(h.p, std::align_val_t(64));
    h.p = nullptr;
    h.n = 0;
    h.p = static_cast<T*>(::operator new(count * sizeof(T), std::align_val_t(64)));
    h.n = count;
  }
  return h.p;
}

// ------------------------------------------------------------------ 4. loops and threads

#ifndef BITEXACT_GEMM_DIRECT_B
#define BITEXACT_GEMM_DIRECT_B 0
#endif

/// One gemm problem, row-major; op(A)(i, k) = a[i * a_rs + k * a_ks], op(B)(k, j) = b[k * b_ks + j * b_cs].
/// InA: the type of A (the stream kernels read bfloat16 B with A already widened to float).
template <class T, class In, class InA = In>
struct gemm_problem {
  std::size_t m, n, k;
  T alpha, beta;
  const InA* a;
  std::size_t a_rs, a_ks;
  const In* b;
  std::size_t b_ks, b_cs;
  T* c;
  std::size_t ldc;
};

/// Rows [i0, i1) x columns [j0, j1) of C over canonical chunks [cb, ce). `s`/`lds`: where the
/// running total lives. split: every chunk is stored alone (first = true, last = false) into
/// s + chunk * split_stride (the split-K path).
template <class Arch, class T, class In>
void gemm_block(const gemm_problem<T, In>& pr, std::size_t i0, std::size_t i1, std::size_t j0, std::size_t j1,
                std::size_t cb, std::size_t ce, T* s, std::size_t lds, bool split, std::size_t split_stride) {
  using MK = gemm_micro<Arch, T>;
  using AR = gemm_arch<Arch, T>;
  constexpr std::size_t MR = MK::MR, NR = MK::NR, KC = core::gemm_k_chunk;
  const std::size_t nchunks = (pr.k + KC - 1) / KC;
  const std::size_t mb = std::min<std::size_t>(AR::MC, i1 - i0);
  T* ap = gemm_scratch<T, 0>(((mb + MR - 1) / MR) * MR * KC);
  const std::size_t ncmax = std::min<std::size_t>(AR::NC, j1 - j0);
  T* bp = gemm_scratch<T, 1>(((ncmax + NR - 1) / NR) * NR * KC);
  // B read in place (rows ldb apart) instead of packed: measured slower than packing at every
  // shape tried (decode m = 16: 19 vs 37 GFLOP/s, the bf16 path that packs being the faster), so
  // off; few-row products take gemm_rowstream instead. Kept switchable for other CPUs.
  // Which micro-panel stays in L1 (see the macro-kernel): B when both fit a 48 KiB L1.
  constexpr bool b_in_l1 = KC * (MR + NR) * sizeof(T) <= 48 * 1024;
  const bool direct_b = BITEXACT_GEMM_DIRECT_B && std::is_same<T, In>::value && pr.b_cs == 1 && (i1 - i0) <= 4 * MR;

  for (std::size_t jc = j0; jc < j1; jc += AR::NC) {
    const std::size_t nc = std::min<std::size_t>(AR::NC, j1 - jc);
    for (std::size_t ch = cb; ch < ce; ++ch) {
      const std::size_t pc = ch * KC, kc = std::min(KC, pr.k - pc);
      const bool first = split || ch == 0, last = !split && ch + 1 == nchunks;
      T* sch = split ? s + ch * split_stride : s;
      const std::size_t nfull = direct_b ? (nc / NR) * NR : 0;
      if (nc > nfull)  // pack what is not read in place (all of it, or the last partial panel)
        gemm_pack_b<Arch, static_cast<int>(NR)>(kc, nc - nfull, pr.b + pc * pr.b_ks + (jc + nfull) * pr.b_cs, pr.b_ks,
                                          pr.b_cs, bp);
      for (std::size_t ic = i0; ic < i1; ic += AR::MC) {
        const std::size_t mc = std::min<std::size_t>(AR::MC, i1 - ic);
        gemm_pack_a<Arch, static_cast<int>(MR)>(mc, kc, pr.a + ic * pr.a_rs + pc * pr.a_ks, pr.a_rs, pr.a_ks, ap);
        // Macro-kernel. b_in_l1: a B micro-panel (256 x NR) stays in L1 while the A micro-panels
        // of the packed A block (MC x 256, in L2) stream past it. Otherwise (the two panels
        // together overflow L1: AVX-512 double, 28 + 32 KiB) an A micro-panel stays in L1 and
        // the B micro-panels stream from packed B, which NC keeps within L2.
        auto one = [&](std::size_t ir, std::size_t jr) {
          const int mr = static_cast<int>(std::min(MR, mc - ir));
          const std::size_t nr = std::min(NR, nc - jr);
          const bool inplace = jr < nfull;
          const T* bpanel = inplace ? reinterpret_cast<const T*>(pr.b) + pc * pr.b_ks + jc + jr
                                    : bp + ((jr - nfull) / NR) * kc * NR;
          const std::size_t row = ic + ir, col = jc + jr;
          gemm_merge<T> g{sch + row * lds + col, lds, first, last, pr.c + row * pr.ldc + col, pr.ldc, pr.alpha,
                          pr.beta};
          MK::tile(mr, kc, ap + (ir / MR) * kc * MR, MR, bpanel, inplace ? pr.b_ks : NR, nr, g);
        };
        if (b_in_l1 || direct_b) {
          for (std::size_t jr = 0; jr < nc; jr += NR)
            for (std::size_t ir = 0; ir < mc; ir += MR) one(ir, jr);
        } else {
          for (std::size_t ir = 0; ir < mc; ir += MR)
            for (std::size_t jr = 0; jr < nc; jr += NR) one(ir, jr);
        }
      }
    }
  }
}

/// Few rows of C (decode shapes, m <= 16: M = 1..8 or 16 rows per call) and B rows
/// contiguous: B streams row by row (the order the hardware prefetcher follows), 8 rows per
/// pass, into M rows of chunk partials, over column blocks of NB; each element's chain is still
/// fma over k in order from +0 per chunk. B is read once per call, never packed.
template <class Arch, class T, int M, class In, class InA>
void gemm_rowstream(const gemm_problem<T, In, InA>& pr, std::size_t i0, std::size_t j0, std::size_t j1, T* s,
                    std::size_t lds) {
  using MK = gemm_micro<Arch, T>;
  using V = typename MK::V;
  using reg = typename V::reg;
  // KB = 8 rows of B per pass over a block of NB columns: the partials of a vector of columns
  // stay in registers across them (one load and one store per 8 fmas), each still in k order.
  // One row of A: its 8 broadcasts stay in registers, the partials fill 32 KiB of L1. More
  // rows (wide): A's values are read inside the loop (an 8-byte broadcast operand of each fma)
  // and the partials (256 KiB) live in L2. B rows are read in long runs either way.
  constexpr bool wide = M > 1;
  constexpr std::size_t W = V::W, KC = core::gemm_k_chunk, NB = (wide ? 262144 : 32768) / (M * sizeof(T)) / 16 * 16;
  constexpr int KB = 8;
  const std::size_t nchunks = (pr.k + KC - 1) / KC;
  // Place the partials 2 KiB away from B's rows modulo 4 KiB: a load from B whose address
  // matches a pending store to p in bits 0-11 waits for it (4K aliasing), which halved the speed.
  T* p0 = gemm_scratch<T, 2>(M * NB + 4096 / sizeof(T) + KB * M);
  // The wide form's A values live next to the partials: the compiler cannot tell them apart
  // from the partials' stores, so it reads them inside the loop (GCC 12 at -O3: an 8-byte
  // broadcast operand of each fma, seen in the object code) instead of holding KB x M broadcast
  // vectors on the stack (64 bytes each), which measured slower (gemm_bench decode16, double).
  T* const ak_mem = p0 + M * NB + 4096 / sizeof(T);
  const std::uintptr_t shift =
      ((reinterpret_cast<std::uintptr_t>(pr.b + j0) + 2048 - reinterpret_cast<std::uintptr_t>(p0)) & 4095u) & ~std::uintptr_t(63);
  T* p = p0 + shift / sizeof(T);
  for (std::size_t jb = j0; jb < j1; jb += NB) {
    const std::size_t nb = std::min(NB, j1 - jb), nv = nb / W * W;
    for (std::size_t ch = 0; ch < nchunks; ++ch) {
      const std::size_t k0 = ch * KC, k1 = std::min(pr.k, k0 + KC);
      std::fill(p, p + M * NB, T(0));
      std::size_t k = k0;
      for (; k + KB <= k1; k += KB) {
        const In* brow[KB];
        T* const ak = ak_mem;  // ak[r * M + i]: A(i0 + i, k + r)
        reg va[wide ? 1 : KB][M];
        for (int r = 0; r < KB; ++r) {
          brow[r] = pr.b + (k + static_cast<std::size_t>(r)) * pr.b_ks + jb;
          for (int i = 0; i < M; ++i) {
            ak[r * M + i] = static_cast<T>(core::widen(pr.a[(i0 + i) * pr.a_rs + (k + static_cast<std::size_t>(r)) * pr.a_ks]));
            if constexpr (!wide) va[r][i] = V::set1(ak[r * M + i]);
          }
        }
        for (std::size_t j = 0; j < nv; j += W) {
          // The same columns KB rows down: what the next pass reads.
          if (j % (64 / sizeof(In)) == 0)
            for (int r = 0; r < KB; ++r)  // an address only (past B's end on the last pass): no pointer arithmetic
              gemm_prefetch(reinterpret_cast<const void*>(reinterpret_cast<std::uintptr_t>(brow[r] + j) + KB * pr.b_ks * sizeof(In)));
          reg acc[M];
          for (int i = 0; i < M; ++i) acc[i] = V::load(p + i * NB + j);
#pragma GCC unroll 16
          for (int r = 0; r < KB; ++r) {
            const reg bv = V::load(brow[r] + j);
#pragma GCC unroll 16
            for (int i = 0; i < M; ++i) {
              if constexpr (wide)
                acc[i] = V::fma(V::set1(ak[r * M + i]), bv, acc[i]);
              else
                acc[i] = V::fma(va[r][i], bv, acc[i]);
            }
          }
          for (int i = 0; i < M; ++i) V::store(p + i * NB + j, acc[i]);
        }
        for (std::size_t j = nv; j < nb; ++j)
          for (int r = 0; r < KB; ++r)
            for (int i = 0; i < M; ++i) p[i * NB + j] = core::fused_fma(ak[r * M + i], static_cast<T>(core::widen(brow[r][j])), p[i * NB + j]);
      }
      for (; k < k1; ++k) {
        const In* brow = pr.b + k * pr.b_ks + jb;
        T av[M];
        reg va[M];
        for (int i = 0; i < M; ++i) {
          av[i] = static_cast<T>(core::widen(pr.a[(i0 + i) * pr.a_rs + k * pr.a_ks]));
          va[i] = V::set1(av[i]);
        }
        for (std::size_t j = 0; j < nv; j += W) {
          if (j % (64 / sizeof(In)) == 0) gemm_prefetch(brow + j + 2048 / sizeof(In) * 2);
          const reg bv = V::load(brow + j);
#pragma GCC unroll 8
          for (int i = 0; i < M; ++i) V::store(p + i * NB + j, V::fma(va[i], bv, V::load(p + i * NB + j)));
        }
        for (std::size_t j = nv; j < nb; ++j)
          for (int i = 0; i < M; ++i)
            p[i * NB + j] = core::fused_fma(av[i], static_cast<T>(core::widen(brow[j])), p[i * NB + j]);
      }
      for (int i = 0; i < M; ++i) {
        const std::size_t row = i0 + static_cast<std::size_t>(i);
        gemm_merge<T> g{s + row * lds + jb, lds, ch == 0, ch + 1 == nchunks, pr.c + row * pr.ldc + jb, pr.ldc,
                        pr.alpha, pr.beta};
        MK::merge_row(p + i * NB, nb, g);
      }
    }
  }
}

#ifndef BITEXACT_GEMM_NTSTREAM_MAX
#define BITEXACT_GEMM_NTSTREAM_MAX 16
#endif
#ifndef BITEXACT_GEMM_NT_PANEL
#define BITEXACT_GEMM_NT_PANEL 1
#endif
#if defined(__AVX512F__) && XSIMD_WITH_AVX512BW
/// Registers of gemm_ntstream: W outputs per vector, one W x W block of B (W rows, W
/// consecutive k) transposed in registers (pure data movement, no arithmetic).
template <class T>
struct gemm_nt_avx512;
template <>
struct gemm_nt_avx512<float> {
  using V = gemm_vec_avx512_f32;
  using reg = __m512;
  using mask = __mmask16;
  static constexpr int W = 16;
  static mask mask_of(std::size_t cnt) { return cnt >= 16 ? mask(0xFFFF) : static_cast<mask>((1u << cnt) - 1u); }
  static reg loadz(mask mk, const float* p) { return _mm512_maskz_loadu_ps(mk, p); }
  static reg loadz(mask mk, const bfloat16* p) {  // exact widening: bits << 16
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mk, p)), 16));
  }
  static void store(float* p, mask mk, reg v) { _mm512_mask_storeu_ps(p, mk, v); }
  static void transpose(reg r[16]) { gemm_transpose16_ps(r); }
};
template <>
struct gemm_nt_avx512<double> {
  using V = gemm_vec_avx512_f64;
  using reg = __m512d;
  using mask = __mmask8;
  static constexpr int W = 8;
  static mask mask_of(std::size_t cnt) { return cnt >= 8 ? mask(0xFF) : static_cast<mask>((1u << cnt) - 1u); }
  static reg loadz(mask mk, const double* p) { return _mm512_maskz_loadu_pd(mk, p); }
  static void store(double* p, mask mk, reg v) { _mm512_mask_storeu_pd(p, mk, v); }
  static void transpose(reg r[8]) { gemm_transpose8_pd(r); }
};

/// Few rows of C with op(B) = B^T stored n x k (each output a dot of a row of op(A) with a row
/// of B: gemv, decode with nn.Linear weights). Vector lane l holds output column jg + l: a block
/// of W rows of B x W consecutive k is loaded (one cache line per row), transposed in registers,
/// and lane l's chain takes fma(opA[i][k], B[jg + l][k], p) for k in increasing order, from +0
/// at each canonical chunk; the chunk partials fold left to right in registers (S = S + p), then
/// the epilogue. Exactly core/gemm_order.hpp per element: the lane a column lands in and the
/// group it shares a vector with change nothing. B streams once, W rows at a time (R rows of A
/// reuse each transposed block); a chunk's last k < W steps use masked loads and only the
/// valid FMAs (padding never enters a chain).
template <class T, int R, class In, class InA>
void gemm_ntstream_rows(const gemm_problem<T, In, InA>& pr, std::size_t i0, std::size_t jg, std::size_t cnt) {
  using N = gemm_nt_avx512<T>;
  using V = typename N::V;
  using reg = typename N::reg;
  constexpr int W = N::W;
  constexpr std::size_t KC = core::gemm_k_chunk;
  const std::size_t K = pr.k;
  const In* row[W];
  for (int l = 0; l < W; ++l)  // lanes past the last column re-read a valid row (never stored)
    row[l] = pr.b + (jg + std::min<std::size_t>(static_cast<std::size_t>(l), cnt - 1)) * pr.b_cs;
  const InA* arow[R];
  for (int q = 0; q < R; ++q) arow[q] = pr.a + (i0 + static_cast<std::size_t>(q)) * pr.a_rs;
  const std::size_t aks = pr.a_ks;
  reg s[R];
  for (std::size_t k0 = 0; k0 < K; k0 += KC) {
    const std::size_t k1 = std::min(K, k0 + KC);
    reg p[R];
    for (int q = 0; q < R; ++q) p[q] = V::zero();
    std::size_t k = k0;
    for (; k + W <= k1; k += W) {
      reg r[W];
#pragma GCC unroll 16
      for (int l = 0; l < W; ++l) r[l] = V::load(row[l] + k);
      N::transpose(r);
#pragma GCC unroll 16
      for (int t = 0; t < W; ++t)
#pragma GCC unroll 8
        for (int q = 0; q < R; ++q) p[q] = V::fma(V::set1(core::widen(arow[q][(k + t) * aks])), r[t], p[q]);
    }
    if (k < k1) {  // the chunk's last k1 - k < W steps
      const std::size_t rem = k1 - k;
      const typename N::mask mk = N::mask_of(rem);
      reg r[W];
      for (int l = 0; l < W; ++l) r[l] = N::loadz(mk, row[l] + k);
      N::transpose(r);
      for (std::size_t t = 0; t < rem; ++t)
        for (int q = 0; q < R; ++q) p[q] = V::fma(V::set1(core::widen(arow[q][(k + t) * aks])), r[t], p[q]);
    }
    for (int q = 0; q < R; ++q) s[q] = k0 == 0 ? p[q] : V::add(s[q], p[q]);
  }
  const typename N::mask mk = N::mask_of(cnt);
  const reg va = V::set1(pr.alpha), vb = V::set1(pr.beta);
  for (int q = 0; q < R; ++q) {
    T* crow = pr.c + (i0 + static_cast<std::size_t>(q)) * pr.ldc + jg;
    reg t = V::mul(va, s[q]);
    if (pr.beta != T(0)) t = V::fma(vb, N::loadz(mk, crow), t);
    N::store(crow, mk, V::canon(t));
  }
}

/// gemm_ntstream for more than 8 rows of op(A): each canonical chunk of a W-column group is
/// transposed once into an L1 panel (kc x W), then every row pass of up to 8 rows reads it; the
/// running totals S of all rows live in a small buffer. The same chains as gemm_ntstream_rows.
template <class T, int R, class InA>
void gemm_ntstream_panel_rows(const T* panel, std::size_t kc, const InA* const* arow, std::size_t aks, std::size_t k0,
                              T* srows, bool first) {
  using N = gemm_nt_avx512<T>;
  using V = typename N::V;
  using reg = typename N::reg;
  constexpr int W = N::W;
  reg p[R];
  for (int q = 0; q < R; ++q) p[q] = V::zero();
  for (std::size_t t = 0; t < kc; ++t) {
    const reg v = V::load(panel + t * W);
#pragma GCC unroll 8
    for (int q = 0; q < R; ++q) p[q] = V::fma(V::set1(core::widen(arow[q][(k0 + t) * aks])), v, p[q]);
  }
  for (int q = 0; q < R; ++q) V::store(srows + q * W, first ? p[q] : V::add(V::load(srows + q * W), p[q]));
}

template <class T, class In, class InA>
void gemm_ntstream_panel(const gemm_problem<T, In, InA>& pr, std::size_t i0, std::size_t i1, std::size_t jg,
                         std::size_t cnt) {
  using N = gemm_nt_avx512<T>;
  using V = typename N::V;
  using reg = typename N::reg;
  constexpr int W = N::W;
  constexpr std::size_t KC = core::gemm_k_chunk, MAXR = BITEXACT_GEMM_NTSTREAM_MAX;
  alignas(64) T panel[KC * W];
  alignas(64) T srow[MAXR * W];
  const std::size_t K = pr.k, m = i1 - i0;
  const In* row[W];
  for (int l = 0; l < W; ++l)
    row[l] = pr.b + (jg + std::min<std::size_t>(static_cast<std::size_t>(l), cnt - 1)) * pr.b_cs;
  const InA* arow[MAXR];
  for (std::size_t q = 0; q < m; ++q) arow[q] = pr.a + (i0 + q) * pr.a_rs;
  for (std::size_t k0 = 0; k0 < K; k0 += KC) {
    const std::size_t k1 = std::min(K, k0 + KC), kc = k1 - k0;
    for (std::size_t k = k0; k < k1; k += W) {  // the panel: W x W blocks, the last one masked
      const typename N::mask mk = N::mask_of(k1 - k);
      reg r[W];
#pragma GCC unroll 16
      for (int l = 0; l < W; ++l) r[l] = N::loadz(mk, row[l] + k);
      N::transpose(r);
#pragma GCC unroll 16
      for (int t = 0; t < W; ++t) V::store(panel + (k - k0 + static_cast<std::size_t>(t)) * W, r[t]);
    }
    for (std::size_t q = 0; q < m;) {  // rows past kc in the panel are never read
      const std::size_t r = std::min<std::size_t>(m - q, 8);
      T* sr = srow + q * W;
      switch (r) {
        case 1: gemm_ntstream_panel_rows<T, 1, InA>(panel, kc, arow + q, pr.a_ks, k0, sr, k0 == 0); break;
        case 2: gemm_ntstream_panel_rows<T, 2, InA>(panel, kc, arow + q, pr.a_ks, k0, sr, k0 == 0); break;
        case 3: gemm_ntstream_panel_rows<T, 3, InA>(panel, kc, arow + q, pr.a_ks, k0, sr, k0 == 0); break;
        case 4: gemm_ntstream_panel_rows<T, 4, InA>(panel, kc, arow + q, pr.a_ks, k0, sr, k0 == 0); break;
        case 5: gemm_ntstream_panel_rows<T, 5, InA>(panel, kc, arow + q, pr.a_ks, k0, sr, k0 == 0); break;
        case 6: gemm_ntstream_panel_rows<T, 6, InA>(panel, kc, arow + q, pr.a_ks, k0, sr, k0 == 0); break;
        case 7: gemm_ntstream_panel_rows<T, 7, InA>(panel, kc, arow + q, pr.a_ks, k0, sr, k0 == 0); break;
        default: gemm_ntstream_panel_rows<T, 8, InA>(panel, kc, arow + q, pr.a_ks, k0, sr, k0 == 0); break;
      }
      q += r;
    }
  }
  const typename N::mask mk = N::mask_of(cnt);
  const reg va = V::set1(pr.alpha), vb = V::set1(pr.beta);
  for (std::size_t q = 0; q < m; ++q) {
    T* crow = pr.c + (i0 + q) * pr.ldc + jg;
    reg t = V::mul(va, V::load(srow + q * W));
    if (pr.beta != T(0)) t = V::fma(vb, N::loadz(mk, crow), t);
    N::store(crow, mk, V::canon(t));
  }
}

/// Rows [i0, i1) x columns [j0, j1) of C by gemm_ntstream_rows: column groups of W, rows of A in
/// groups of up to 8 per pass over B's group (K > 0, alpha != 0, b_ks == 1).
template <class T, class In, class InA>
void gemm_ntstream(const gemm_problem<T, In, InA>& pr, std::size_t i0, std::size_t i1, std::size_t j0, std::size_t j1) {
  constexpr std::size_t W = gemm_nt_avx512<T>::W;
  for (std::size_t jg = j0; jg < j1; jg += W) {
    const std::size_t cnt = std::min(W, j1 - jg);
    if (BITEXACT_GEMM_NT_PANEL && i1 - i0 > 8) {
      gemm_ntstream_panel<T, In, InA>(pr, i0, i1, jg, cnt);
      continue;
    }
    for (std::size_t i = i0; i < i1;) {
      switch (std::min<std::size_t>(i1 - i, 8)) {
        case 1: gemm_ntstream_rows<T, 1, In, InA>(pr, i, jg, cnt); i += 1; break;
        case 2: gemm_ntstream_rows<T, 2, In, InA>(pr, i, jg, cnt); i += 2; break;
        case 3: gemm_ntstream_rows<T, 3, In, InA>(pr, i, jg, cnt); i += 3; break;
        case 4: gemm_ntstream_rows<T, 4, In, InA>(pr, i, jg, cnt); i += 4; break;
        case 5: gemm_ntstream_rows<T, 5, In, InA>(pr, i, jg, cnt); i += 5; break;
        case 6: gemm_ntstream_rows<T, 6, In, InA>(pr, i, jg, cnt); i += 6; break;
        case 7: gemm_ntstream_rows<T, 7, In, InA>(pr, i, jg, cnt); i += 7; break;
        default: gemm_ntstream_rows<T, 8, In, InA>(pr, i, jg, cnt); i += 8; break;
      }
    }
  }
}
#endif

#if defined(__AVX2__) && defined(__FMA__)
/// 256-bit registers of gemm_ntstream_ymm: W outputs per vector, one block of W rows of B x KB
/// consecutive k turned into KB vectors (lane l of vector t = B[row l][k + t]). The cross-lane
/// step is done by the loads (two 128-bit halves from two rows), the rest by in-lane shuffles,
/// which this ISA (and AVX-512 CPUs running 256-bit code) issues on two ports, not one.
template <class T>
struct gemm_nt_ymm;
template <>
struct gemm_nt_ymm<float> {
  using V = gemm_vec_avx2_f32;
  using reg = __m256;
  static constexpr int W = 8, KB = 8;
  static reg pair(const float* lo, const float* hi) {
    return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(lo)), _mm_loadu_ps(hi), 1);
  }
  static reg pair(const bfloat16* lo, const bfloat16* hi) {  // exact widening: bits << 16
    const __m128i h = _mm_unpacklo_epi64(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(lo)),
                                         _mm_loadl_epi64(reinterpret_cast<const __m128i*>(hi)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  template <class In>
  static void block(const In* const* row, std::size_t k, reg* v) {
    for (int h = 0; h < 2; ++h) {  // k .. k+3, then k+4 .. k+7
      const std::size_t kk = k + 4 * static_cast<std::size_t>(h);
      // z_p, 128-bit lane L: row 4L + p at kk .. kk+3; an in-lane 4 x 4 transpose of z_0..z_3
      const reg z0 = pair(row[0] + kk, row[4] + kk), z1 = pair(row[1] + kk, row[5] + kk);
      const reg z2 = pair(row[2] + kk, row[6] + kk), z3 = pair(row[3] + kk, row[7] + kk);
      const reg t0 = _mm256_unpacklo_ps(z0, z1), t1 = _mm256_unpackhi_ps(z0, z1);
      const reg t2 = _mm256_unpacklo_ps(z2, z3), t3 = _mm256_unpackhi_ps(z2, z3);
      v[4 * h + 0] = _mm256_shuffle_ps(t0, t2, 0x44);
      v[4 * h + 1] = _mm256_shuffle_ps(t0, t2, 0xEE);
      v[4 * h + 2] = _mm256_shuffle_ps(t1, t3, 0x44);
      v[4 * h + 3] = _mm256_shuffle_ps(t1, t3, 0xEE);
    }
  }
};
template <>
struct gemm_nt_ymm<double> {
  using V = gemm_vec_avx2_f64;
  using reg = __m256d;
  static constexpr int W = 4, KB = 4;
  static reg pair(const double* lo, const double* hi) {
    return _mm256_insertf128_pd(_mm256_castpd128_pd256(_mm_loadu_pd(lo)), _mm_loadu_pd(hi), 1);
  }
  template <class In>
  static void block(const In* const* row, std::size_t k, reg* v) {
    for (int h = 0; h < 2; ++h) {  // z0 lanes: rows 0 | 2, z1: rows 1 | 3, at kk, kk+1
      const std::size_t kk = k + 2 * static_cast<std::size_t>(h);
      const reg z0 = pair(row[0] + kk, row[2] + kk), z1 = pair(row[1] + kk, row[3] + kk);
      v[2 * h + 0] = _mm256_unpacklo_pd(z0, z1);
      v[2 * h + 1] = _mm256_unpackhi_pd(z0, z1);
    }
  }
};

/// gemm_ntstream's 256-bit kernel: R rows of op(A) x G groups of W output columns (cnt <= G * W
/// valid), each lane one output's canonical chain as in gemm_ntstream_rows; G independent groups
/// keep G * R chains in flight (one chain alone waits on the FMA latency).
template <class T, int G, int R, class In, class InA>
void gemm_ntstream_ymm_rows(const gemm_problem<T, In, InA>& pr, std::size_t i0, std::size_t jg, std::size_t cnt) {
  using N = gemm_nt_ymm<T>;
  using V = typename N::V;
  using reg = typename N::reg;
  constexpr int W = N::W, KB = N::KB, L = G * W;
  constexpr std::size_t KC = core::gemm_k_chunk;
  const std::size_t K = pr.k;
  const In* row[L];
  for (int l = 0; l < L; ++l)  // lanes past the last column re-read a valid row (never stored)
    row[l] = pr.b + (jg + std::min<std::size_t>(static_cast<std::size_t>(l), cnt - 1)) * pr.b_cs;
  const InA* arow[R];
  for (int q = 0; q < R; ++q) arow[q] = pr.a + (i0 + static_cast<std::size_t>(q)) * pr.a_rs;
  const std::size_t aks = pr.a_ks;
  reg s[G][R];
  for (std::size_t k0 = 0; k0 < K; k0 += KC) {
    const std::size_t k1 = std::min(K, k0 + KC);
    reg p[G][R];
    for (int g = 0; g < G; ++g)
      for (int q = 0; q < R; ++q) p[g][q] = V::zero();
    std::size_t k = k0;
    // A group's W rows advance a whole cache line (LK = 2 KB values) before the next group's:
    // rows ldb apart often share their L1 set (ldb a power of two), so a line left half read
    // while the other groups load theirs would be evicted and fetched again.
    constexpr std::size_t LK = 2 * KB;
    for (; k + LK <= k1; k += LK) {
#pragma GCC unroll 4
      for (int g = 0; g < G; ++g)
#pragma GCC unroll 2
        for (std::size_t h = 0; h < LK; h += KB) {
          reg v[KB];
          N::block(row + g * W, k + h, v);
#pragma GCC unroll 8
          for (int t = 0; t < KB; ++t)
#pragma GCC unroll 4
            for (int q = 0; q < R; ++q) p[g][q] = V::fma(V::set1(core::widen(arow[q][(k + h + t) * aks])), v[t], p[g][q]);
        }
    }
    for (; k + KB <= k1; k += KB)
      for (int g = 0; g < G; ++g) {
        reg v[KB];
        N::block(row + g * W, k, v);
        for (int t = 0; t < KB; ++t)
          for (int q = 0; q < R; ++q) p[g][q] = V::fma(V::set1(core::widen(arow[q][(k + t) * aks])), v[t], p[g][q]);
      }
    if (k < k1) {  // the chunk's last k1 - k < KB steps, from a zero-padded copy (padding unused)
      const std::size_t rem = k1 - k;
      In buf[L][KB] = {};
      const In* brow[L];
      for (int l = 0; l < L; ++l) {
        for (std::size_t t = 0; t < rem; ++t) buf[l][t] = row[l][k + t];
        brow[l] = buf[l];
      }
      for (int g = 0; g < G; ++g) {
        reg v[KB];
        N::block(brow + g * W, 0, v);
        for (std::size_t t = 0; t < rem; ++t)
          for (int q = 0; q < R; ++q) p[g][q] = V::fma(V::set1(core::widen(arow[q][(k + t) * aks])), v[t], p[g][q]);
      }
    }
    for (int g = 0; g < G; ++g)
      for (int q = 0; q < R; ++q) s[g][q] = k0 == 0 ? p[g][q] : V::add(s[g][q], p[g][q]);
  }
  const reg va = V::set1(pr.alpha), vb = V::set1(pr.beta);
  for (int q = 0; q < R; ++q) {
    T* crow = pr.c + (i0 + static_cast<std::size_t>(q)) * pr.ldc + jg;
    for (int g = 0; g < G; ++g) {
      const std::size_t c0 = static_cast<std::size_t>(g) * W;
      if (c0 >= cnt) break;
      if (cnt - c0 >= static_cast<std::size_t>(W)) {
        reg t = V::mul(va, s[g][q]);
        if (pr.beta != T(0)) t = V::fma(vb, V::load(crow + c0), t);
        V::store(crow + c0, V::canon(t));
      } else {  // a partial group: the same epilogue, one element at a time
        alignas(32) T sv[W];
        V::store(sv, s[g][q]);
        for (std::size_t j = 0; c0 + j < cnt; ++j)
          crow[c0 + j] = core::gemm_epilogue(pr.alpha, sv[j], pr.beta, pr.beta == T(0) ? T(0) : crow[c0 + j]);
      }
    }
  }
}

/// Rows [i0, i1) x columns [j0, j1) by the 256-bit kernel: one row of op(A) with 4 column groups,
/// two rows with 2, three or four rows with 1 (at most 4 rows per pass over B).
template <class T, class In, class InA>
void gemm_ntstream_ymm(const gemm_problem<T, In, InA>& pr, std::size_t i0, std::size_t i1, std::size_t j0, std::size_t j1) {
  constexpr std::size_t W = gemm_nt_ymm<T>::W;
  for (std::size_t i = i0; i < i1;) {
    const std::size_t r = std::min<std::size_t>(i1 - i, 4);
    const std::size_t span = (r == 1 ? 4 : r == 2 ? 2 : 1) * W;
    for (std::size_t jg = j0; jg < j1; jg += span) {
      const std::size_t cnt = std::min(span, j1 - jg);
      switch (r) {
        case 1: gemm_ntstream_ymm_rows<T, 4, 1, In, InA>(pr, i, jg, cnt); break;
        case 2: gemm_ntstream_ymm_rows<T, 2, 2, In, InA>(pr, i, jg, cnt); break;
        case 3: gemm_ntstream_ymm_rows<T, 1, 3, In, InA>(pr, i, jg, cnt); break;
        default: gemm_ntstream_ymm_rows<T, 1, 4, In, InA>(pr, i, jg, cnt); break;
      }
    }
    i += r;
  }
}
#endif

#ifndef BITEXACT_GEMM_NT_YMM_MAX
#define BITEXACT_GEMM_NT_YMM_MAX 2
#endif

#ifndef BITEXACT_GEMM_ROWSTREAM_MAX
#define BITEXACT_GEMM_ROWSTREAM_MAX 16
#endif

/// How a product is cut among threads: split_k (threads take whole K chunks, `parts` of them)
/// or a grid of tm x tn blocks of C (whole micro-panels). Exposed so the tests can check that a
/// thread count really splits the work.
struct gemm_plan {
  bool split_k = false;
  std::size_t tn = 1, tm = 1, parts = 1;
};

template <class Arch, class T>
gemm_plan gemm_plan_for(std::size_t m, std::size_t n, std::size_t k, int threads) {
  using MK = gemm_micro<Arch, T>;
  constexpr std::size_t MR = MK::MR, NR = MK::NR, KC = core::gemm_k_chunk;
  const std::size_t nchunks = (k + KC - 1) / KC;
  const std::size_t npan = (n + NR - 1) / NR, mpan = (m + MR - 1) / MR;
  const std::size_t t = static_cast<std::size_t>(std::max(threads, 1));
  gemm_plan p;
  // Split K when C's micro-panels cannot keep the threads busy (and the partial buffers are small).
  if (t > 1 && nchunks > 1 && npan * mpan < 2 * t && m * n * nchunks <= (std::size_t(1) << 24)) {
    p.split_k = true;
    p.parts = std::min(t, nchunks);
    return p;
  }
  // Threads over blocks of C: columns first (each thread packs its own B), then rows.
  p.tn = std::min(t, npan);
  p.tm = std::max<std::size_t>(1, std::min(t / p.tn, mpan));
  p.parts = p.tn * p.tm;
  return p;
}


/// Whether Arch has the op(B) = B^T stream kernels (gemm_ntstream*, which also widen bfloat16).
template <class Arch>
constexpr bool gemm_nt_arch() {
#if defined(__AVX512F__) && XSIMD_WITH_AVX512BW
  if (std::is_same<Arch, xsimd::avx512bw>::value) return true;
#endif
#if defined(__AVX2__) && defined(__FMA__) && XSIMD_WITH_FMA3_AVX2
  if (std::is_same<Arch, xsimd::fma3<xsimd::avx2>>::value) return true;
#endif
  return false;
}

/// The stream paths for the rows [0, r) of w (A already in T): gemm_ntstream* when nt, else
/// gemm_rowstream. s / lds: the running total of those rows (see gemm_rowstream).
template <class Arch, class T, class In>
void gemm_stream(const gemm_problem<T, In, T>& w, std::size_t r, std::size_t j0, std::size_t j1, T* s, std::size_t lds,
                 bool nt) {
  if (nt) {
#if defined(__AVX2__) && defined(__FMA__) && XSIMD_WITH_FMA3_AVX2
    if constexpr (std::is_same<Arch, xsimd::fma3<xsimd::avx2>>::value) return gemm_ntstream_ymm<T, In, T>(w, 0, r, j0, j1);
#endif
#if defined(__AVX512F__) && XSIMD_WITH_AVX512BW
    if constexpr (std::is_same<Arch, xsimd::avx512bw>::value) {
      if (r <= BITEXACT_GEMM_NT_YMM_MAX) return gemm_ntstream_ymm<T, In, T>(w, 0, r, j0, j1);
      return gemm_ntstream<T, In, T>(w, 0, r, j0, j1);
    }
#endif
  }
  std::size_t i = 0;
  for (; r - i >= 16; i += 16) gemm_rowstream<Arch, T, 16>(w, i, j0, j1, s, lds);  // B streams once per 16 rows
  if (r - i > 8) {
    gemm_rowstream<Arch, T, 8>(w, i, j0, j1, s, lds);
    i += 8;
  }
  switch (r - i) {
    case 0: return;
    case 1: return gemm_rowstream<Arch, T, 1>(w, i, j0, j1, s, lds);
    case 2: return gemm_rowstream<Arch, T, 2>(w, i, j0, j1, s, lds);
    case 3: return gemm_rowstream<Arch, T, 3>(w, i, j0, j1, s, lds);
    case 4: return gemm_rowstream<Arch, T, 4>(w, i, j0, j1, s, lds);
    case 5: return gemm_rowstream<Arch, T, 5>(w, i, j0, j1, s, lds);
    case 6: return gemm_rowstream<Arch, T, 6>(w, i, j0, j1, s, lds);
    case 7: return gemm_rowstream<Arch, T, 7>(w, i, j0, j1, s, lds);
    default: return gemm_rowstream<Arch, T, 8>(w, i, j0, j1, s, lds);
  }
}

/// C = alpha op(A) op(B) + beta C for m, n, k > 0 and alpha != 0, on `threads` threads.
template <class Arch, class T, class In>
void gemm_fixed_order_run(const gemm_problem<T, In>& pr, int threads) {
  using MK = gemm_micro<Arch, T>;
  constexpr std::size_t MR = MK::MR, NR = MK::NR, KC = core::gemm_k_chunk;
  const std::size_t m = pr.m, n = pr.n, k = pr.k;
  const std::size_t nchunks = (k + KC - 1) / KC;
  const std::size_t npan = (n + NR - 1) / NR, mpan = (m + MR - 1) / MR;
  const gemm_plan plan = gemm_plan_for<Arch, T>(m, n, k, threads);
  auto& pool = thread_pool::instance();

  if (plan.split_k) {  // each chunk's partials alone, then the left fold in chunk order
    std::vector<T> part(m * n * nchunks);
    const std::size_t tc = plan.parts;
    pool.run(static_cast<int>(tc), [&](int id) {
      const std::size_t c0 = nchunks * id / tc, c1 = nchunks * (id + 1) / tc;
      gemm_block<Arch, T, In>(pr, 0, m, 0, n, c0, c1, part.data(), n, true, m * n);
    });
    const std::size_t tr = std::min(tc, m);
    pool.run(static_cast<int>(tr), [&](int id) {
      for (std::size_t i = m * id / tr; i < m * (id + 1) / tr; ++i)
        for (std::size_t j = 0; j < n; ++j) {
          T sum = part[i * n + j];
          for (std::size_t ch = 1; ch < nchunks; ++ch) sum = core::gemm_combine(sum, part[ch * m * n + i * n + j]);
          T& cij = pr.c[i * pr.ldc + j];
          cij = core::gemm_epilogue(pr.alpha, sum, pr.beta, pr.beta == T(0) ? T(0) : cij);
        }
    });
    return;
  }

  // The running total: C itself when C_old is not needed (beta == 0) or there is one chunk.
  T* s = pr.c;
  std::size_t lds = pr.ldc;
  std::vector<T> sbuf;
  if (pr.beta != T(0) && nchunks > 1) {
    sbuf.resize(m * n);
    s = sbuf.data();
    lds = n;
  }
  const std::size_t tn = plan.tn, tm = plan.tm;
  pool.run(static_cast<int>(tn * tm), [&](int id) {
    const std::size_t jt = static_cast<std::size_t>(id) % tn, it = static_cast<std::size_t>(id) / tn;
    const std::size_t j0 = std::min(n, npan * jt / tn * NR), j1 = std::min(n, npan * (jt + 1) / tn * NR);
    const std::size_t i0 = std::min(m, mpan * it / tm * MR), i1 = std::min(m, mpan * (it + 1) / tm * MR);
    if (i0 >= i1 || j0 >= j1) return;
    // The stream paths: float/double, or bfloat16 B widened in registers with the rows [i0, i1)
    // of op(A) widened once into a float copy (AVX2+FMA3 and AVX-512; other ISAs pack bfloat16
    // through gemm_block). Widening is exact, so the chains are the same.
    constexpr bool same = std::is_same<T, In>::value;
    if constexpr (same || gemm_nt_arch<Arch>()) {
      const bool nt = gemm_nt_arch<Arch>() && pr.b_ks == 1 && pr.b_cs != 1 && i1 - i0 <= BITEXACT_GEMM_NTSTREAM_MAX;
      const bool rows = pr.b_cs == 1 && i1 - i0 <= BITEXACT_GEMM_ROWSTREAM_MAX;
      if (nt || rows) {
        std::vector<T> aw;
        gemm_problem<T, In, T> w{pr.m, pr.n, pr.k, pr.alpha, pr.beta, nullptr, pr.a_rs, pr.a_ks, pr.b, pr.b_ks, pr.b_cs,
                                 pr.c + i0 * pr.ldc, pr.ldc};
        if constexpr (same) {
          w.a = pr.a + i0 * pr.a_rs;
        } else {
          aw.resize((i1 - i0) * k);
          for (std::size_t i = i0; i < i1; ++i)
            for (std::size_t kk = 0; kk < k; ++kk) aw[(i - i0) * k + kk] = core::widen(pr.a[i * pr.a_rs + kk * pr.a_ks]);
          w.a = aw.data();
          w.a_rs = k;
          w.a_ks = 1;
        }
        return gemm_stream<Arch>(w, i1 - i0, j0, j1, s + i0 * lds, lds, nt);
      }
    }
    gemm_block<Arch, T, In>(pr, i0, i1, j0, j1, 0, nchunks, s, lds, false, 0);
  });
}

}  // namespace detail
}  // namespace cpu
}  // namespace bitexact
