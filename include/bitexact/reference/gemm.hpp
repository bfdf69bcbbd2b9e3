// bitexact/reference/gemm.hpp - the executable specification of gemm's two tiers.
//
// Three loops calling the canonical K order of core/gemm_order.hpp (chunks of 256 fused FMAs
// from +0, left fold of the chunk partials, one epilogue). Every fast path (each ISA, thread
// count, blocking, the CUDA kernels) must equal this bit for bit. The exact tier's specification
// is gemm_exact: each element from the exact accumulator, one product at a time
// (core::gemm_exact_element_slow, with its documented alpha/beta rounding rule). No validation
// here: callers (the tests) pass valid arguments.
#pragma once
#include <cstddef>

#include "../core/bfloat16.hpp"
#include "../core/gemm_exact.hpp"
#include "../core/gemm_order.hpp"

namespace bitexact {
namespace reference {

/// C = alpha * op(A) op(B) + beta * C, row-major, in the canonical order. T = float or double
/// with In = T, or T = float with In = bfloat16 (widened exactly).
template <class T, class In>
void gemm_fixed_order(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, T alpha,
                      const In* a, std::size_t lda, const In* b, std::size_t ldb, T beta, T* c, std::size_t ldc) {
  for (std::size_t i = 0; i < m; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      T s = T(0);
      if (alpha != T(0)) {  // alpha == 0 reads neither A nor B
        auto ga = [&](std::size_t kk) -> T {
          return static_cast<T>(core::widen(ta == transpose::no ? a[i * lda + kk] : a[kk * lda + i]));
        };
        auto gb = [&](std::size_t kk) -> T {
          return static_cast<T>(core::widen(tb == transpose::no ? b[kk * ldb + j] : b[j * ldb + kk]));
        };
        s = core::gemm_fixed_order_sum<T>(k, ga, gb);
      }
      T& cij = c[i * ldc + j];
      cij = core::gemm_epilogue(alpha, s, beta, beta == T(0) ? T(0) : cij);
    }
  }
}

/// The exact tier: with alpha = 1 and beta = 0 each C[i][j] is the correctly rounded exact dot
/// product; other alpha/beta follow core/gemm_exact.hpp's single-rounding rule (alpha == 0:
/// core::gemm_exact_alpha_zero, which reads neither A nor B).
template <class T, class In>
void gemm_exact(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const In* a,
                std::size_t lda, const In* b, std::size_t ldb, T beta, T* c, std::size_t ldc) {
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      T& cij = c[i * ldc + j];
      const T old = beta == T(0) ? T(0) : cij;
      if (alpha == T(0)) {
        cij = core::gemm_exact_alpha_zero(beta, old);
        continue;
      }
      auto ga = [&](std::size_t q) { return static_cast<T>(core::widen(ta == transpose::no ? a[i * lda + q] : a[q * lda + i])); };
      auto gb = [&](std::size_t q) { return static_cast<T>(core::widen(tb == transpose::no ? b[q * ldb + j] : b[j * ldb + q])); };
      cij = core::gemm_exact_element_slow<T>(k, ga, gb, alpha, beta, old);
    }
}

}  // namespace reference
}  // namespace bitexact
