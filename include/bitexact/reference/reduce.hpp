// bitexact/reference/reduce.hpp - the executable specification of sum and dot.
//
// Plain scalar loops over core/fixed_order.hpp (virtual lanes, leaves, aligned leaf tree) and
// core/exact.hpp (the exact accumulator). Every fast path must equal these bit for bit.
#pragma once
#include <cstddef>

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

}  // namespace reference
}  // namespace bitexact
