// bitexact/reference/scatter.hpp - the executable specification of the scatter family.
//
// One plain loop: the contributions of each target are listed in increasing source position,
// then combined by core::scatter_combiner (chunks of 4096 positions, sequential inside a chunk,
// the aligned pairwise tree over chunks; core/scatter.hpp). Every fast path must equal these.
#pragma once
#include <cstddef>
#include <cstdint>
#include <limits>
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
    out[t] = core::canonicalize(out[t] + s);
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
        o = core::canonicalize(o + combine_positions<A>(by[t], v, core::plus{}));
      }
    }
  }
}

/// op over a list (fixed_order: the canonical combination; exact: sum/mean only).
template <class A, class ValueOf>
A reduce_positions(const std::vector<std::uint64_t>& pos, ValueOf v, scatter_op op, bool exact, const A* start) {
  if (exact && (op == scatter_op::sum || op == scatter_op::mean)) return exact_positions<A>(pos, v, start);
  auto with = [&](auto combine) {
    A s = combine_positions<A>(pos, v, combine);
    return start ? combine(*start, s) : s;
  };
  switch (op) {
    case scatter_op::prod: return with(core::multiplies{});
    case scatter_op::max: return with(core::maximum{});
    case scatter_op::min: return with(core::minimum{});
    default: return with(core::plus{});
  }
}

/// scatter_reduce (PyTorch semantics, see scatter.hpp).
template <class A, class I>
void scatter_reduce(A* out, std::size_t n_out, const I* idx, const A* src, std::size_t n, scatter_op op,
                    bool include_self, bool exact) {
  const auto by = contributions(n_out, n, [idx](std::size_t i) { return idx[i]; });
  for (std::size_t t = 0; t < n_out; ++t) {
    if (by[t].empty()) continue;
    const A old = out[t];
    A s = reduce_positions<A>(by[t], [src](std::uint64_t i) { return src[i]; }, op, exact, include_self ? &old : nullptr);
    if (op == scatter_op::mean) s = s / static_cast<A>(by[t].size() + (include_self ? 1 : 0));
    out[t] = core::canonicalize(s);
  }
}

/// segment_reduce (unsorted or sorted ids: same result).
template <class A, class I, class D>
void segment_reduce(A* out, std::size_t num_segments, const I* ids, const D* data, std::size_t n, scatter_op op,
                    bool exact) {
  const auto by = contributions(num_segments, n, [ids](std::size_t i) { return ids[i]; });
  for (std::size_t t = 0; t < num_segments; ++t) {
    if (by[t].empty()) {
      out[t] = core::empty_segment_value<A>(op);
      continue;
    }
    A s = reduce_positions<A>(by[t], [data](std::uint64_t i) { return A(core::widen(data[i])); }, op, exact, nullptr);
    if (op == scatter_op::mean) s = s / static_cast<A>(by[t].size());
    out[t] = core::canonicalize(s);
  }
}

/// embedding_bag forward (see scatter.hpp). Tab is A, or bfloat16 (widened exactly to float).
template <class A, class I, class Tab = A>
void embedding_bag(A* out, const Tab* table, std::size_t width, const I* indices, std::size_t n_indices, const I* offsets,
                   std::size_t n_bags, bag_mode mode, const A* weights, bool exact) {
  for (std::size_t b = 0; b < n_bags; ++b) {
    const std::uint64_t s = static_cast<std::uint64_t>(offsets[b]);
    const std::uint64_t e = b + 1 < n_bags ? static_cast<std::uint64_t>(offsets[b + 1]) : n_indices;
    std::vector<std::uint64_t> pos;
    for (std::uint64_t j = s; j < e; ++j) pos.push_back(j);
    for (std::size_t c = 0; c < width; ++c) {
      A& o = out[b * width + c];
      if (pos.empty()) {
        o = A(0);
        continue;
      }
      auto v = [&](std::uint64_t j) {
        const A x = core::widen(table[static_cast<std::size_t>(indices[j]) * width + c]);
        return weights ? core::mul_rn(x, weights[j]) : x;
      };
      if (mode == bag_mode::max) {
        o = combine_positions<A>(pos, v, core::maximum{});
      } else if (exact) {
        core::exact_accumulator<A> acc;
        for (std::uint64_t j : pos) {
          const A x = core::widen(table[static_cast<std::size_t>(indices[j]) * width + c]);
          if (weights) acc.add_product(x, weights[j]); else acc.add(x);
        }
        o = acc.round();
      } else {
        o = combine_positions<A>(pos, v, core::plus{});
      }
      if (mode == bag_mode::mean) o = o / static_cast<A>(pos.size());
      o = core::canonicalize(o);
    }
  }
}

/// embedding_bag backward for sum and mean (see scatter.hpp).
template <class A, class I>
void embedding_bag_backward(A* grad_table, std::size_t n_rows, std::size_t width, const A* grad_out, const I* indices,
                            std::size_t n_indices, const I* offsets, std::size_t n_bags, bag_mode mode,
                            const A* weights, bool exact) {
  std::vector<A> contrib(n_indices * width);
  for (std::size_t b = 0; b < n_bags; ++b) {
    const std::uint64_t s = static_cast<std::uint64_t>(offsets[b]);
    const std::uint64_t e = b + 1 < n_bags ? static_cast<std::uint64_t>(offsets[b + 1]) : n_indices;
    for (std::uint64_t j = s; j < e; ++j)
      for (std::size_t c = 0; c < width; ++c) {
        const A go = grad_out[b * width + c];
        A& x = contrib[j * width + c];
        if (weights) x = core::mul_rn(go, weights[j]);
        else if (mode == bag_mode::mean) x = go / static_cast<A>(e - s);
        else x = go;
      }
  }
  index_add_rows<A, A>(grad_table, n_rows, width, indices, contrib.data(), n_indices, exact);
}

/// histogram (see scatter.hpp): the bin of each value, then per-bin sums.
template <class A>
void histogram(A* out, std::size_t n_bins, A lo, A hi, const A* x, const A* weights, std::size_t n, bool exact) {
  std::vector<std::uint64_t> bin(n);
  for (std::size_t i = 0; i < n; ++i) bin[i] = core::histogram_bin(x[i], lo, hi, n_bins);
  std::vector<A> w(n, A(1));
  if (weights) w.assign(weights, weights + n);
  std::vector<A> tmp(n_bins + 1);
  segment_reduce(tmp.data(), n_bins + 1, bin.data(), w.data(), n, scatter_op::sum, exact);
  for (std::size_t k = 0; k < n_bins; ++k) out[k] = tmp[k];
}

}  // namespace reference
}  // namespace bitexact
