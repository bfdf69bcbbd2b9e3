// bitexact/reference/scatter.hpp - the executable specification of the scatter family.
//
// One plain loop: the contributions of each target are listed in increasing source position,
// then combined by core::scatter_combiner (chunks of 4096 positions, sequential inside a chunk,
// the aligned pairwise tree over chunks; core/scatter.hpp). Every fast path must equal these.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "../core/bfloat16.hpp"
#include "../core/exact.hpp"
#include "../core/math.hpp"
#include "../core/scatter.hpp"

namespace bitexact {
namespace reference {

/// For each target t < n_out, the source positions i < n with target_of(i) == t, in increasing
/// order. (Range checks are the public API's job.)
template <class TargetOf>
std::vector<std::vector<std::uint64_t>> contributions(std::size_t n_out, std::size_t n, TargetOf target_of) {
  std::vector<std::vector<std::uint64_t>> by(n_out);
  for (std::size_t i = 0; i < n; ++i) by[static_cast<std::size_t>(target_of(i))].push_back(i);
  return by;
}

/// S_t for a list of positions with values value_of(i), combined by `combine`.
template <class A, class Combine, class ValueOf>
A combine_positions(const std::vector<std::uint64_t>& positions, ValueOf value_of, Combine combine) {
  core::scatter_combiner<A, Combine> c(combine);
  for (std::uint64_t i : positions) c.push(i, value_of(i));
  return c.finish();
}

/// The exact sum of a list, plus an optional starting value, correctly rounded.
template <class A, class ValueOf>
A exact_positions(const std::vector<std::uint64_t>& positions, ValueOf value_of, const A* start) {
  core::exact_accumulator<A> acc;
  if (start) acc.add(*start);
  for (std::uint64_t i : positions) acc.add(value_of(i));
  return acc.round();
}

/// index_add, fixed_order: out[t] = out[t] + S_t for every target with a contribution.
template <class T, class A, class I>
void index_add_fixed_order(A* out, std::size_t n_out, const I* idx, const T* src, std::size_t n) {
  const auto by = contributions(n_out, n, [idx](std::size_t i) { return idx[i]; });
  for (std::size_t t = 0; t < n_out; ++t) {
    if (by[t].empty()) continue;
    const A s = combine_positions<A>(by[t], [src](std::uint64_t i) { return A(core::widen(src[i])); }, core::plus{});
    out[t] = out[t] + s;
  }
}

/// index_add, exact: out[t] = round(out[t] + exact sum of its contributions).
template <class T, class A, class I>
void index_add_exact(A* out, std::size_t n_out, const I* idx, const T* src, std::size_t n) {
  const auto by = contributions(n_out, n, [idx](std::size_t i) { return idx[i]; });
  for (std::size_t t = 0; t < n_out; ++t) {
    if (by[t].empty()) continue;
    const A old = out[t];
    out[t] = exact_positions<A>(by[t], [src](std::uint64_t i) { return A(core::widen(src[i])); }, &old);
  }
}

/// Row form: out[idx[i], :] += src[i, :]; each column is combined like the 1-D form.
template <class T, class A, class I>
void index_add_rows(A* out, std::size_t n_out, std::size_t width, const I* idx, const T* src, std::size_t n,
                    bool exact) {
  const auto by = contributions(n_out, n, [idx](std::size_t i) { return idx[i]; });
  for (std::size_t t = 0; t < n_out; ++t) {
    if (by[t].empty()) continue;
    for (std::size_t c = 0; c < width; ++c) {
      auto v = [src, width, c](std::uint64_t i) { return A(core::widen(src[i * width + c])); };
      A& o = out[t * width + c];
      if (exact) {
        const A old = o;
        o = exact_positions<A>(by[t], v, &old);
      } else {
        o = o + combine_positions<A>(by[t], v, core::plus{});
      }
    }
  }
}

}  // namespace reference
}  // namespace bitexact
