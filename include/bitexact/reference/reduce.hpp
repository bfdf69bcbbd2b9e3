// bitexact/reference/reduce.hpp - the executable specification of sum and dot.
//
// Also squared_norm, mean and variance (the public ops of reduce.hpp are defined by these).
// Plain scalar loops over core/fixed_order.hpp (virtual lanes, leaves, aligned leaf tree) and
// core/exact.hpp (the exact accumulator). Every fast path must equal these bit for bit.
#pragma once
#include <cstddef>
#include <limits>

#include "../core/bfloat16.hpp"
#include "../core/exact.hpp"
#include "../core/fixed_order.hpp"
#include "../core/math.hpp"

namespace bitexact {
namespace reference {

/// The fixed_order reduction of v(0) .. v(n-1) in accumulation type A (see core/fixed_order.hpp).
/// n == 0 gives +0.0.
template <class A, class ValueAt>
A fixed_order_reduce(std::size_t n, ValueAt v) {
  using shape = core::fixed_order_shape<A>;
  if (n == 0) return A(0);
  core::tree_stack<A> tree;
  for (std::size_t leaf = 0; leaf < n; leaf += shape::leaf) {
    const std::size_t end = leaf + shape::leaf < n ? leaf + shape::leaf : n;
    A lane[shape::lanes];
    for (auto& l : lane) l = core::negative_zero<A>();
    for (std::size_t i = leaf; i < end; ++i) lane[(i - leaf) % shape::lanes] += v(i);
    tree.push(core::combine_lanes(lane));
  }
  return tree.finish();
}

/// sum, fixed_order tier. bfloat16 inputs are widened exactly and summed in float.
template <class T>
core::accumulation_t<T> sum_fixed_order(const T* x, std::size_t n) {
  using A = core::accumulation_t<T>;
  return fixed_order_reduce<A>(n, [x](std::size_t i) { return A(core::widen(x[i])); });
}

/// dot, fixed_order tier: the values are the products x[i]*y[i], each rounded to A (a multiply
/// then an add, never fused).
template <class T>
core::accumulation_t<T> dot_fixed_order(const T* x, const T* y, std::size_t n) {
  using A = core::accumulation_t<T>;
  return fixed_order_reduce<A>(n, [x, y](std::size_t i) {
    return core::mul_rn(A(core::widen(x[i])), A(core::widen(y[i])));
  });
}

/// sum, exact tier: the correctly rounded exact sum (core/exact.hpp for NaN, Inf, zeros).
template <class T>
core::accumulation_t<T> sum_exact(const T* x, std::size_t n) {
  using A = core::accumulation_t<T>;
  core::exact_accumulator<A> acc;
  for (std::size_t i = 0; i < n; ++i) acc.add(A(core::widen(x[i])));
  return n == 0 ? A(0) : acc.round();
}

/// dot, exact tier: the correctly rounded exact sum of the exact products.
template <class T>
core::accumulation_t<T> dot_exact(const T* x, const T* y, std::size_t n) {
  using A = core::accumulation_t<T>;
  core::exact_accumulator<A> acc;
  for (std::size_t i = 0; i < n; ++i) acc.add_product(A(core::widen(x[i])), A(core::widen(y[i])));
  return n == 0 ? A(0) : acc.round();
}

/// squared_norm = dot(x, x) in either tier.
template <class T>
core::accumulation_t<T> squared_norm_fixed_order(const T* x, std::size_t n) {
  return dot_fixed_order(x, x, n);
}
template <class T>
core::accumulation_t<T> squared_norm_exact(const T* x, std::size_t n) {
  return dot_exact(x, x, n);
}

/// mean = sum / A(n) (A(n) rounded to nearest); NaN for n == 0.
template <class T>
core::accumulation_t<T> mean_fixed_order(const T* x, std::size_t n) {
  using A = core::accumulation_t<T>;
  if (n == 0) return std::numeric_limits<A>::quiet_NaN();
  return sum_fixed_order(x, n) / static_cast<A>(n);
}
template <class T>
core::accumulation_t<T> mean_exact(const T* x, std::size_t n) {
  using A = core::accumulation_t<T>;
  if (n == 0) return std::numeric_limits<A>::quiet_NaN();
  return sum_exact(x, n) / static_cast<A>(n);
}

/// Two-pass variance, fixed_order: m = mean_fixed_order(x); the values d*d rounded with
/// d = A(x[i]) - m rounded, summed in the canonical order; divided by A(n - ddof).
/// NaN when n <= ddof.
template <class T>
core::accumulation_t<T> variance_fixed_order(const T* x, std::size_t n, std::size_t ddof = 0) {
  using A = core::accumulation_t<T>;
  if (n <= ddof) return std::numeric_limits<A>::quiet_NaN();
  const A m = mean_fixed_order(x, n);
  const A ss = fixed_order_reduce<A>(n, [x, m](std::size_t i) {
    const A d = A(core::widen(x[i])) - m;
    return core::mul_rn(d, d);
  });
  return ss / static_cast<A>(n - ddof);
}

/// Two-pass variance, exact: m = mean_exact(x); the correctly rounded exact sum of the exact
/// squares d*d, d = A(x[i]) - m rounded; divided by A(n - ddof). NaN when n <= ddof.
template <class T>
core::accumulation_t<T> variance_exact(const T* x, std::size_t n, std::size_t ddof = 0) {
  using A = core::accumulation_t<T>;
  if (n <= ddof) return std::numeric_limits<A>::quiet_NaN();
  const A m = mean_exact(x, n);
  core::exact_accumulator<A> acc;
  for (std::size_t i = 0; i < n; ++i) {
    const A d = A(core::widen(x[i])) - m;
    acc.add_product(d, d);
  }
  return acc.round() / static_cast<A>(n - ddof);
}

}  // namespace reference
}  // namespace bitexact
