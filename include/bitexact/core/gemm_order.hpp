// bitexact/core/gemm_order.hpp - the canonical K order of GEMM and convolution (DESIGN 7).
//
// Every output element of a matrix product (and of a convolution, which is a GEMM over a
// documented K index) is an independent chain over k = 0 .. K-1 of the products
// opA[i][k] * opB[k][j], in this order (version gemm_order_version):
//
//   1. K chunks. k is cut into chunks of gemm_k_chunk = 256 consecutive indices: chunk c covers
//      [c * 256, min((c + 1) * 256, K)). The chunk size is a constant of the order, never of the
//      ISA, the cache blocking, the thread count or the GPU: a kernel that likes a larger cache
//      block runs several canonical chunks per block.
//   2. Inside a chunk, one chain of fused multiply-adds in increasing k, starting from +0.0:
//        p = +0;  for k in chunk: p = fma(opA[i][k], opB[k][j], p)   (one rounding per step)
//      fma is a real fused multiply-add (core::fused_fma): hardware FMA where the ISA has one,
//      a correctly rounded software FMA elsewhere. Never a multiply followed by an add.
//   3. The chunk partials combine left to right: S = p_0; S = S + p_1; S = S + p_2; ...
//      (K = 0: S = +0.) A GPU or a CPU thread that splits K keeps whole chunks and combines
//      their partials in this order, so split-K never changes a bit.
//   4. Epilogue, applied once per element by gemm_epilogue():
//        t = (alpha == 0) ? +0 : alpha * S            (a rounded multiply; exact when alpha == 1;
//                                                      alpha == 0 reads neither A nor B)
//        C = (beta == 0)  ? t  : fma(beta, C_old, t)   (beta == 0: C_old is not read, BLAS rule)
//      A NaN result is stored as the canonical quiet NaN (0x7fc00000 / 0x7ff8000000000000):
//      NaN payloads differ between x86, ARM and GPUs.
//
// Special values follow from IEEE arithmetic in this order: Inf * 0 gives NaN, Inf - Inf gives
// NaN, a sum of products that are all -0 gives +0 (the chain starts from +0, as in BLAS), and a
// chunk whose products overflow gives +-Inf. bfloat16 inputs are widened exactly to float and
// then follow the float order.
//
// What this buys: C[i][j] depends on row i of op(A), column j of op(B), K, alpha, beta and
// C_old[i][j] only - never on m or n (batch invariance), threads, ISA, blocking, alignment,
// device or launch shape. Vectorisation runs across i and j (outer-product microkernels), never
// across k, so fast kernels compute exactly this.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "config.hpp"
#include "math.hpp"

namespace bitexact {

/// Version of the canonical order of GEMM and convolution. Bumped, and called out in
/// CHANGELOG.md, whenever any result bit changes; golden hashes in the tests pin it.
inline constexpr int gemm_order_version = 1;

/// op(X) = X or X^T (BLAS's trans argument), for row-major storage.
enum class transpose { no, yes };

namespace core {

/// Step 1: the canonical K chunk (a constant of gemm_order_version).
inline constexpr std::size_t gemm_k_chunk = 256;

/// A fused multiply-add a*b + c with a single rounding, bit-identical everywhere: CUDA's fmaf /
/// fma on the device; std::fma / std::fmaf on the host, which is IEEE's correctly rounded fused
/// operation (an FMA instruction when the build has one, glibc's exact software FMA otherwise).
BITEXACT_HD inline float fused_fma(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return __fmaf_rn(a, b, c);
#else
  return std::fmaf(a, b, c);
#endif
}
BITEXACT_HD inline double fused_fma(double a, double b, double c) {
#if defined(__CUDA_ARCH__)
  return __fma_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}

namespace detail {
BITEXACT_HD inline float gemm_canonical_nan(float) {
  const std::uint32_t u = 0x7fc00000u;
  float f = 0;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
BITEXACT_HD inline double gemm_canonical_nan(double) {
  const std::uint64_t u = 0x7ff8000000000000ull;
  double d = 0;
  std::memcpy(&d, &u, sizeof d);
  return d;
}
}  // namespace detail

/// Step 2: the partial of one chunk, k in [k0, k1). `a(k)` and `b(k)` return opA[i][k] and
/// opB[k][j] in T (bfloat16 callers widen first).
template <class T, class GetA, class GetB>
BITEXACT_HD inline T gemm_chunk_partial(std::size_t k0, std::size_t k1, GetA a, GetB b) {
  T p = T(0);
  for (std::size_t k = k0; k < k1; ++k) p = fused_fma(static_cast<T>(a(k)), static_cast<T>(b(k)), p);
  return p;
}

/// Step 3: one combine of the left-to-right fold of chunk partials.
template <class T>
BITEXACT_HD inline T gemm_combine(T total, T partial) {
  return total + partial;
}

/// Steps 1-3: S for one output element.
template <class T, class GetA, class GetB>
BITEXACT_HD inline T gemm_fixed_order_sum(std::size_t K, GetA a, GetB b) {
  if (K == 0) return T(0);
  T s = gemm_chunk_partial<T>(0, K < gemm_k_chunk ? K : gemm_k_chunk, a, b);
  for (std::size_t k0 = gemm_k_chunk; k0 < K; k0 += gemm_k_chunk) {
    const std::size_t k1 = (K - k0 < gemm_k_chunk) ? K : k0 + gemm_k_chunk;
    s = gemm_combine(s, gemm_chunk_partial<T>(k0, k1, a, b));
  }
  return s;
}

/// Step 4: the epilogue. `c_old` is read only when beta != 0. alpha == 0 callers pass any S
/// (it is not used), and must not have read A or B to compute it.
template <class T>
BITEXACT_HD inline T gemm_epilogue(T alpha, T s, T beta, T c_old) {
  T t = T(0);
  if (alpha != T(0)) {
    t = mul_rn(alpha, s);  // rounded once, never fused with what follows
  }
  T c = (beta == T(0)) ? t : fused_fma(beta, c_old, t);
  return c != c ? detail::gemm_canonical_nan(c) : c;
}

}  // namespace core
}  // namespace bitexact
