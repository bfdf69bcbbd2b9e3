// bitexact/gemm.hpp - matrix products whose bits never depend on how they run.
//
// Row-major. op(A) is m x k, op(B) is k x n, C is m x n; lda/ldb/ldc are row strides.
// ta == transpose::no: A is stored m x k (lda >= k); yes: A is stored k x m (lda >= m); the same
// for B (k x n, ldb >= n; or n x k, ldb >= k). C = alpha * op(A) op(B) + beta * C.
//
// Tiers (tier.hpp):
//   tier::fixed_order (default): the canonical K order of core/gemm_order.hpp, version
//     gemm_order_version: per element, K in chunks of 256; inside a chunk one chain of fused
//     FMAs from +0 in increasing k; the chunk partials folded left to right (S = p0 + p1 + ...);
//     then once t = alpha * S (alpha == 0: +0, and A and B are not read), C = beta == 0 ? t :
//     fma(beta, C_old, t) (beta == 0: C_old is not read, so NaN in C is overwritten). C[i][j]
//     is a function of row i of op(A), column j of op(B), k, alpha, beta and C_old[i][j] only:
//     never of m or n (any row or column block equals the full product's block), the thread
//     count, the ISA, the cache blocking, alignment or lda/ldb/ldc. It is what
//     reference::gemm_fixed_order computes.
//   tier::exact: each element correctly rounded from the exact value (the exact tier's own
//     header states its single-rounding rule for alpha and beta).
//
// Special values follow IEEE arithmetic in that order: Inf * 0 and Inf - Inf give NaN, a chunk
// whose products overflow gives +-Inf, a sum of -0 products is +0 (chains start from +0), and
// K == 0 gives S = +0. Any NaN stored is the canonical quiet NaN (0x7fc00000 /
// 0x7ff8000000000000). bfloat16 inputs are widened exactly to float and follow the float order.
//
// Errors (std::invalid_argument, C untouched): lda/ldb/ldc smaller than the stored row length of
// a non-empty matrix, a null pointer for a matrix with elements, the memory spanned by C
// overlapping the memory spanned by A or B (batched: also the C matrices of two batch entries
// overlapping). A calling thread with FTZ/DAZ or a directed rounding mode: fp_environment_error.
#pragma once
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "core/bfloat16.hpp"
#include "core/gemm_order.hpp"
#include "cpu/gemm_exact.hpp"
#include "cpu/gemm_kernels.hpp"
#include "execution.hpp"
#include "fp_environment.hpp"
#include "gemm_checks.hpp"
#include "tier.hpp"

namespace bitexact {
namespace detail {

/// Every check of the contract's "bad input" list (gemm_checks.hpp) and the calling thread's FP
/// mode; C is untouched when it throws.
template <class In, class T>
gemm_spans gemm_validate(const char* what, transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k,
                         const In* a, std::size_t lda, std::size_t stride_a, const In* b, std::size_t ldb,
                         std::size_t stride_b, const T* c, std::size_t ldc, std::size_t stride_c, std::size_t batch) {
  const gemm_spans s =
      gemm_check_operands(what, ta, tb, m, n, k, a, lda, stride_a, b, ldb, stride_b, c, ldc, stride_c, batch);
  require_ieee_environment(what);
  return s;
}

/// tier::exact: THE place where the exact tier is wired in (bitexact::cpu::detail::gemm_exact,
/// include/bitexact/cpu/gemm_exact.hpp, from the gemm-exact branch). Arguments are validated.
template <class T, class In>
void gemm_exact_tier(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const In* a,
                     std::size_t lda, const In* b, std::size_t ldb, T beta, T* c, std::size_t ldc,
                     const execution& ex) {
  cpu::detail::gemm_exact(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, ex.threads, ex.simd);
}

/// One validated product on the CPU.
template <class T, class In>
void gemm_run(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const In* a,
              std::size_t lda, const In* b, std::size_t ldb, T beta, T* c, std::size_t ldc, tier t,
              const execution& ex, int threads, isa simd) {
  if (m == 0 || n == 0) return;
  if (t == tier::exact) return gemm_exact_tier<T, In>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, ex);
  if (k == 0 || alpha == T(0)) {  // S = +0 or unused; A and B are not read
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < n; ++j) {
        T& cij = c[i * ldc + j];
        cij = core::gemm_epilogue(alpha, T(0), beta, beta == T(0) ? T(0) : cij);
      }
    return;
  }
  cpu::detail::gemm_problem<T, In> pr{m,
                                      n,
                                      k,
                                      alpha,
                                      beta,
                                      a,
                                      ta == transpose::no ? lda : 1,
                                      ta == transpose::no ? 1 : lda,
                                      b,
                                      tb == transpose::no ? ldb : 1,
                                      tb == transpose::no ? 1 : ldb,
                                      c,
                                      ldc};
  cpu::detail::with_arch(simd, [&](auto arch) {
    cpu::detail::gemm_fixed_order_run<decltype(arch), T, In>(pr, threads);
  });
}

template <class T, class In>
void gemm_batched_impl(const char* what, transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k,
                       T alpha, const In* a, std::size_t lda, std::size_t stride_a, const In* b, std::size_t ldb,
                       std::size_t stride_b, T beta, T* c, std::size_t ldc, std::size_t stride_c, std::size_t batch,
                       tier t, const execution& ex) {
  gemm_validate(what, ta, tb, m, n, k, a, lda, stride_a, b, ldb, stride_b, c, ldc, stride_c, batch);
  const int threads = cpu::detail::resolve_threads(ex.threads);
  const isa simd = cpu::detail::resolve_isa(ex.simd);
  if (batch == 0 || m == 0 || n == 0) return;
  // A and B may be null when k == 0 (nothing is read): no offset is applied to a null pointer.
  auto at = [](auto* p, std::size_t off) { return p ? p + off : p; };
  // Many small products: one per thread at a time; otherwise each product uses every thread.
  // Either way each product is computed in full by the same kernels: the same bits.
  const bool per_thread = batch >= static_cast<std::size_t>(threads) && threads > 1 &&
                          m * n * std::max<std::size_t>(k, 1) <= (std::size_t(1) << 21);
  if (per_thread) {
    const std::size_t tt = static_cast<std::size_t>(threads);
    cpu::detail::thread_pool::instance().run(threads, [&](int id) {
      for (std::size_t q = batch * id / tt; q < batch * (id + 1) / tt; ++q)
        gemm_run<T, In>(ta, tb, m, n, k, alpha, at(a, q * stride_a), lda, at(b, q * stride_b), ldb, beta,
                        c + q * stride_c, ldc, t, ex, 1, simd);
    });
  } else {
    for (std::size_t q = 0; q < batch; ++q)
      gemm_run<T, In>(ta, tb, m, n, k, alpha, at(a, q * stride_a), lda, at(b, q * stride_b), ldb, beta,
                      c + q * stride_c, ldc, t, ex, threads, simd);
  }
}

template <class T>
constexpr bool is_gemm_type = std::is_same<T, float>::value || std::is_same<T, double>::value;

}  // namespace detail

/// C = alpha * op(A) op(B) + beta * C (see the top of this header for the order and the rules).
template <class T>
void gemm(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
          std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc, tier t = tier::fixed_order,
          execution ex = {}) {
  static_assert(detail::is_gemm_type<T>, "bitexact::gemm: T must be float or double");
  detail::gemm_batched_impl<T, T>("gemm", ta, tb, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1, t, ex);
}

/// bfloat16 inputs (widened exactly), float C: the float order on the widened values.
inline void gemm(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, float alpha,
                 const bfloat16* a, std::size_t lda, const bfloat16* b, std::size_t ldb, float beta, float* c,
                 std::size_t ldc, tier t = tier::fixed_order, execution ex = {}) {
  detail::gemm_batched_impl<float, bfloat16>("gemm", ta, tb, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0,
                                             1, t, ex);
}

/// Strided batched product (attention's bmm): for q in [0, batch),
///   C + q*stride_c = alpha * op(A + q*stride_a) op(B + q*stride_b) + beta * (C + q*stride_c),
/// each exactly gemm() of that entry (strides in elements; A and B strides may be 0).
template <class T>
void gemm_batched(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
                  std::size_t lda, std::size_t stride_a, const T* b, std::size_t ldb, std::size_t stride_b, T beta,
                  T* c, std::size_t ldc, std::size_t stride_c, std::size_t batch, tier t = tier::fixed_order,
                  execution ex = {}) {
  static_assert(detail::is_gemm_type<T>, "bitexact::gemm_batched: T must be float or double");
  detail::gemm_batched_impl<T, T>("gemm_batched", ta, tb, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b, beta,
                                  c, ldc, stride_c, batch, t, ex);
}

/// bfloat16 inputs, float C.
inline void gemm_batched(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, float alpha,
                         const bfloat16* a, std::size_t lda, std::size_t stride_a, const bfloat16* b, std::size_t ldb,
                         std::size_t stride_b, float beta, float* c, std::size_t ldc, std::size_t stride_c,
                         std::size_t batch, tier t = tier::fixed_order, execution ex = {}) {
  detail::gemm_batched_impl<float, bfloat16>("gemm_batched", ta, tb, m, n, k, alpha, a, lda, stride_a, b, ldb,
                                             stride_b, beta, c, ldc, stride_c, batch, t, ex);
}

/// y = alpha * op(A) x + beta * y, A stored m x n (row stride lda >= n), x and y contiguous.
/// ta == no: x has n entries, y has m; yes: x has m, y has n. Each y entry is the gemm order
/// over the matching row (column) of A: exactly gemm() with x as a one-row matrix,
///   no:  gemm(no, yes, 1, m, n, alpha, x, n, A, lda, beta, y, m)
///   yes: gemm(no, no,  1, n, m, alpha, x, m, A, lda, beta, y, n)
/// (and the same bits as gemm with x as a one-column matrix: a fused FMA's product is symmetric).
template <class T>
void gemv(transpose ta, std::size_t m, std::size_t n, T alpha, const T* a, std::size_t lda, const T* x, T beta, T* y,
          tier t = tier::fixed_order, execution ex = {}) {
  static_assert(detail::is_gemm_type<T>, "bitexact::gemv: T must be float or double");
  if (ta == transpose::no)
    detail::gemm_batched_impl<T, T>("gemv", transpose::no, transpose::yes, 1, m, n, alpha, x, n, 0, a, lda, 0, beta,
                                    y, m, 0, 1, t, ex);
  else
    detail::gemm_batched_impl<T, T>("gemv", transpose::no, transpose::no, 1, n, m, alpha, x, m, 0, a, lda, 0, beta,
                                    y, n, 0, 1, t, ex);
}

// ------------------------------------------------------------------ the linear layer
// Shapes as nn.Linear: x is batch x in_features, W is out_features x in_features, b has
// out_features entries, y is batch x out_features; everything contiguous, row-major.

/// y = x W^T + b. Each y[i][j] = S + b[j] rounded once, where S is the gemm order of row i of x
/// and row j of W; it equals gemm(no, yes, batch, out, in, 1, x, in, W, in, 1, y, out) with y
/// preset to b in every row (fma(1, b, S) = b + S). b == nullptr: no bias (beta = 0).
template <class T>
void linear_forward(std::size_t batch, std::size_t in_features, std::size_t out_features, const T* x, const T* w,
                    const T* b, T* y, tier t = tier::fixed_order, execution ex = {}) {
  static_assert(detail::is_gemm_type<T>, "bitexact::linear_forward: T must be float or double");
  detail::gemm_validate("linear_forward", transpose::no, transpose::yes, batch, out_features, in_features, x,
                        in_features, 0, w, in_features, 0, y, out_features, 0, 1);
  if (b != nullptr && detail::gemm_spans_overlap(b, out_features * sizeof(T), y, batch * out_features * sizeof(T)))
    throw std::invalid_argument("bitexact::linear_forward: the bias overlaps y");
  if (b != nullptr)
    for (std::size_t i = 0; i < batch; ++i)
      for (std::size_t j = 0; j < out_features; ++j) y[i * out_features + j] = b[j];
  gemm<T>(transpose::no, transpose::yes, batch, out_features, in_features, T(1), x, in_features, w, in_features,
          b != nullptr ? T(1) : T(0), y, out_features, t, ex);
}

/// dX = dY W: gemm(no, no, batch, in, out, 1, dY, out, W, in, 0, dX, in).
template <class T>
void linear_backward_data(std::size_t batch, std::size_t in_features, std::size_t out_features, const T* dy,
                          const T* w, T* dx, tier t = tier::fixed_order, execution ex = {}) {
  static_assert(detail::is_gemm_type<T>, "bitexact::linear_backward_data: T must be float or double");
  gemm<T>(transpose::no, transpose::no, batch, in_features, out_features, T(1), dy, out_features, w, in_features,
          T(0), dx, in_features, t, ex);
}

/// dW = dY^T X: gemm(yes, no, out, in, batch, 1, dY, out, X, in, 0, dW, in) (K = the batch).
template <class T>
void linear_backward_weight(std::size_t batch, std::size_t in_features, std::size_t out_features, const T* dy,
                            const T* x, T* dw, tier t = tier::fixed_order, execution ex = {}) {
  static_assert(detail::is_gemm_type<T>, "bitexact::linear_backward_weight: T must be float or double");
  gemm<T>(transpose::yes, transpose::no, out_features, in_features, batch, T(1), dy, out_features, x, in_features,
          T(0), dw, in_features, t, ex);
}

/// db = the column sums of dY, in the gemm order with a ones vector:
/// gemm(no, no, 1, out, batch, 1, ones, batch, dY, out, 0, db, out). So db[j] adds dY[0..batch)[j]
/// in 256-row chunks (each a chain from +0: fma(1, v, p) = p + v), chunks folded left to right.
template <class T>
void linear_backward_bias(std::size_t batch, std::size_t out_features, const T* dy, T* db,
                          tier t = tier::fixed_order, execution ex = {}) {
  static_assert(detail::is_gemm_type<T>, "bitexact::linear_backward_bias: T must be float or double");
  const std::vector<T> ones(batch, T(1));
  gemm<T>(transpose::no, transpose::no, 1, out_features, batch, T(1), ones.data(), batch, dy, out_features, T(0), db,
          out_features, t, ex);
}

}  // namespace bitexact
