// bitexact/reference/rowwise.hpp - the executable specification of the row-wise family.
//
// Plain scalar loops over core/ pieces: reference::fixed_order_reduce (the canonical order of
// core/fixed_order.hpp), core::exact_accumulator, core::exp/log (core/math.hpp) and IEEE sqrt.
// The matrix is row-major: element (r, c) is x[r * ld + c], ld >= cols. T is float, double or
// bfloat16; A = core::accumulation_t<T> (float for float and bfloat16, double for double) is
// both the accumulation and the output type. bf16 inputs are widened exactly to float first.
// The public API (rowwise.hpp) documents the formulas; each function here is that formula.
// Every NaN the row-wise ops and the means output is the canonical quiet NaN
// (core::canonical_nan); the sums are the 1-D sums of reference/reduce.hpp, NaN bits included.
#pragma once
#include <cmath>
#include <cstddef>

#include "../core/bfloat16.hpp"
#include "../core/exact.hpp"
#include "../core/math.hpp"
#include "reduce.hpp"

namespace bitexact {
namespace reference {
namespace rowwise_detail {

template <class A>
inline A canonical(A v) {
  return v != v ? static_cast<A>(core::canonical_nan()) : v;
}

/// The row maximum in the order of reference/minmax.hpp (-0 < +0; any NaN gives NaN).
template <class A>
A row_max(const A* v, std::size_t n) {
  A m = v[0];
  for (std::size_t i = 0; i < n; ++i) {
    if (v[i] != v[i]) return static_cast<A>(core::canonical_nan());
    if (v[i] > m || (v[i] == m && m == A(0) && std::signbit(m) && !std::signbit(v[i]))) m = v[i];
  }
  return m;
}

}  // namespace rowwise_detail

/// Row sums. fixed_order: out[r] = fixed_order_reduce<A>(cols, x[r, .]), the same bits as the
/// 1-D fixed_order sum of that row. cols == 0 gives +0.0.
template <class T>
void row_sum_fixed_order(const T* x, std::size_t rows, std::size_t cols, std::size_t ld,
                         core::accumulation_t<T>* out) {
  for (std::size_t r = 0; r < rows; ++r) out[r] = sum_fixed_order(x + r * ld, cols);
}
/// Row sums, exact tier: the correctly rounded exact sum of the row (core/exact.hpp).
template <class T>
void row_sum_exact(const T* x, std::size_t rows, std::size_t cols, std::size_t ld,
                   core::accumulation_t<T>* out) {
  for (std::size_t r = 0; r < rows; ++r) out[r] = sum_exact(x + r * ld, cols);
}

/// Column sums. Column c's result is the 1-D reduction (fixed_order: fixed_order_reduce, exact:
/// the exact accumulator) of the strided vector x[0, c], x[1, c], ..., x[rows - 1, c].
/// rows == 0 gives +0.0.
template <class T>
void col_sum_fixed_order(const T* x, std::size_t rows, std::size_t cols, std::size_t ld,
                         core::accumulation_t<T>* out) {
  using A = core::accumulation_t<T>;
  for (std::size_t c = 0; c < cols; ++c)
    out[c] = fixed_order_reduce<A>(rows, [&](std::size_t r) { return A(core::widen(x[r * ld + c])); });
}
template <class T>
void col_sum_exact(const T* x, std::size_t rows, std::size_t cols, std::size_t ld,
                   core::accumulation_t<T>* out) {
  using A = core::accumulation_t<T>;
  for (std::size_t c = 0; c < cols; ++c) {
    core::exact_accumulator<A> acc;
    for (std::size_t r = 0; r < rows; ++r) acc.add(A(core::widen(x[r * ld + c])));
    out[c] = rows == 0 ? A(0) : acc.round();
  }
}

/// Mean of a sum over `count` values: sum / count, one rounded division; count == 0 gives the
/// canonical NaN.
template <class A>
A mean_of(A sum, std::size_t count) {
  return count == 0 ? static_cast<A>(core::canonical_nan()) : rowwise_detail::canonical(sum / static_cast<A>(count));
}

/// softmax along each row (cols >= 1):
///   v_i = widen(x_i); m = max_i v_i; d_i = v_i - m; e_i = core::exp(d_i);
///   s = fixed_order_reduce<A>(cols, e_i); y_i = e_i / s.
/// (For A = float, core::exp(float): evaluated in binary64, rounded once to float.)
template <class T>
void softmax(const T* x, std::size_t rows, std::size_t cols, std::size_t ld,
             core::accumulation_t<T>* y, std::size_t ldy) {
  using A = core::accumulation_t<T>;
  if (cols == 0) return;
  for (std::size_t r = 0; r < rows; ++r) {
    A* o = y + r * ldy;
    for (std::size_t i = 0; i < cols; ++i) o[i] = A(core::widen(x[r * ld + i]));
    const A m = rowwise_detail::row_max(o, cols);
    for (std::size_t i = 0; i < cols; ++i) o[i] = core::exp(A(o[i] - m));
    const A s = fixed_order_reduce<A>(cols, [o](std::size_t i) { return o[i]; });
    for (std::size_t i = 0; i < cols; ++i) o[i] = rowwise_detail::canonical(A(o[i] / s));
  }
}

/// log_softmax along each row (cols >= 1):
///   v_i = widen(x_i); m = max_i v_i; d_i = v_i - m; e_i = core::exp(d_i);
///   s = fixed_order_reduce<A>(cols, e_i); l = core::log(s); y_i = d_i - l.
template <class T>
void log_softmax(const T* x, std::size_t rows, std::size_t cols, std::size_t ld,
                 core::accumulation_t<T>* y, std::size_t ldy) {
  using A = core::accumulation_t<T>;
  if (cols == 0) return;
  for (std::size_t r = 0; r < rows; ++r) {
    A* o = y + r * ldy;
    for (std::size_t i = 0; i < cols; ++i) o[i] = A(core::widen(x[r * ld + i]));
    const A m = rowwise_detail::row_max(o, cols);
    for (std::size_t i = 0; i < cols; ++i) o[i] = A(o[i] - m);
    const A s = fixed_order_reduce<A>(cols, [o](std::size_t i) { return core::exp(o[i]); });
    const A l = core::log(s);
    for (std::size_t i = 0; i < cols; ++i) o[i] = rowwise_detail::canonical(A(o[i] - l));
  }
}

/// RMSNorm along each row (cols >= 1), w of length cols or null (no scale):
///   v_i = widen(x_i); q = fixed_order_reduce<A>(cols, v_i * v_i)  (each product rounded);
///   ms = q / cols; inv = 1 / sqrt(ms + eps); y_i = (v_i * inv) * w_i   (y_i = v_i * inv if no w).
template <class T>
void rms_norm(const T* x, std::size_t rows, std::size_t cols, std::size_t ld, const T* w,
              core::accumulation_t<T> eps, core::accumulation_t<T>* y, std::size_t ldy) {
  using A = core::accumulation_t<T>;
  if (cols == 0) return;
  for (std::size_t r = 0; r < rows; ++r) {
    const T* row = x + r * ld;
    const A q = fixed_order_reduce<A>(cols, [row](std::size_t i) {
      const A v = A(core::widen(row[i]));
      return core::mul_rn(v, v);
    });
    const A ms = q / static_cast<A>(cols);
    const A inv = A(1) / std::sqrt(A(ms + eps));
    for (std::size_t i = 0; i < cols; ++i) {
      A v = core::mul_rn(A(core::widen(row[i])), inv);
      if (w) v = core::mul_rn(v, A(core::widen(w[i])));
      y[r * ldy + i] = rowwise_detail::canonical(v);
    }
  }
}

/// LayerNorm along each row (cols >= 1), two-pass; w and b of length cols or null:
///   v_i = widen(x_i); mean = fixed_order_reduce<A>(cols, v_i) / cols; d_i = v_i - mean;
///   var = fixed_order_reduce<A>(cols, d_i * d_i) / cols  (each product rounded);
///   inv = 1 / sqrt(var + eps); y_i = ((d_i * inv) * w_i) + b_i   (multiply, then add: never
///   fused; a null w skips the multiply, a null b skips the add).
template <class T>
void layer_norm(const T* x, std::size_t rows, std::size_t cols, std::size_t ld, const T* w, const T* b,
                core::accumulation_t<T> eps, core::accumulation_t<T>* y, std::size_t ldy) {
  using A = core::accumulation_t<T>;
  if (cols == 0) return;
  for (std::size_t r = 0; r < rows; ++r) {
    const T* row = x + r * ld;
    const A mean = sum_fixed_order(row, cols) / static_cast<A>(cols);
    const A q = fixed_order_reduce<A>(cols, [row, mean](std::size_t i) {
      const A d = A(core::widen(row[i])) - mean;
      return core::mul_rn(d, d);
    });
    const A var = q / static_cast<A>(cols);
    const A inv = A(1) / std::sqrt(A(var + eps));
    for (std::size_t i = 0; i < cols; ++i) {
      A v = core::mul_rn(A(A(core::widen(row[i])) - mean), inv);
      if (w) v = core::mul_rn(v, A(core::widen(w[i])));
      if (b) v = v + A(core::widen(b[i]));
      y[r * ldy + i] = rowwise_detail::canonical(v);
    }
  }
}

}  // namespace reference
}  // namespace bitexact
