// bitexact/cpu/scatter_kernels.hpp - threaded scatter without float atomics.
//
// Two strategies compute the canonical order of core/scatter.hpp:
//   dense  (few targets): every chunk of 4096 sources adds its contributions sequentially into
//          its own row of per-target partials (a 2-D scratch of chunks x targets), then the rows
//          combine by the aligned pairwise tree over chunks, element-wise. Rows without a
//          contribution hold -0.0, the identity, so the dense tree equals the sparse one.
//   sorted (many targets): a stable counting sort groups source positions by target; each
//          target then runs core::scatter_combiner over its positions, targets in parallel.
// Which one runs depends on the problem size only; both give the same bits, and the thread
// count only changes who computes a chunk or a target.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "../core/bfloat16.hpp"
#include "../core/exact.hpp"
#include "../core/scatter.hpp"
#include "threads.hpp"

namespace bitexact {

/// Thrown (before anything is written) when an index is negative or not below the bound.
/// position is the lowest offending source position, index its value.
class index_error : public std::out_of_range {
 public:
  index_error(const std::string& what, std::size_t position, std::int64_t index, std::size_t bound)
      : std::out_of_range(what), position_(position), index_(index), bound_(bound) {}
  std::size_t position() const noexcept { return position_; }
  std::int64_t index() const noexcept { return index_; }
  std::size_t bound() const noexcept { return bound_; }

 private:
  std::size_t position_;
  std::int64_t index_;
  std::size_t bound_;
};

namespace cpu {
namespace detail {

/// Chunks of sources per canonical work unit of the threaded passes.
constexpr std::uint64_t scatter_work_chunk = core::scatter_chunk;
/// The dense strategy runs when chunks x targets stays below this many partials.
constexpr std::uint64_t dense_partials_limit = std::uint64_t(1) << 22;

template <class I>
bool index_in_range(I v, std::size_t bound) {
  if constexpr (std::is_signed<I>::value)
    if (v < 0) return false;
  return static_cast<std::uint64_t>(v) < static_cast<std::uint64_t>(bound);
}

/// Throws index_error naming the lowest bad position, whatever the thread count.
template <class I>
void validate_indices(const I* idx, std::size_t n, std::size_t bound, int threads, const char* what) {
  const canonical_chunks chunks{n, scatter_work_chunk};
  std::vector<std::uint64_t> first_bad(static_cast<std::size_t>(chunks.count()), std::numeric_limits<std::uint64_t>::max());
  parallel_chunks(threads, chunks, [&](std::uint64_t b, std::uint64_t e) {
    for (std::uint64_t i = b; i < e; ++i)
      if (!index_in_range(idx[i], bound)) {
        first_bad[static_cast<std::size_t>(b / scatter_work_chunk)] = i;
        return;
      }
  });
  for (std::uint64_t p : first_bad)
    if (p != std::numeric_limits<std::uint64_t>::max())
      throw index_error(std::string("bitexact::") + what + ": index " + std::to_string(static_cast<long long>(idx[p])) +
                            " at position " + std::to_string(p) + " is outside [0, " + std::to_string(bound) + ")",
                        static_cast<std::size_t>(p), static_cast<std::int64_t>(idx[p]), bound);
}

/// Source positions grouped by target, stable: positions of target t are
/// position[start[t] .. start[t+1]) in increasing order.
struct target_groups {
  std::vector<std::uint64_t> start;
  std::vector<std::uint64_t> position;
  std::size_t count(std::size_t t) const { return static_cast<std::size_t>(start[t + 1] - start[t]); }
  std::uint64_t position_at(std::uint64_t q) const { return position[static_cast<std::size_t>(q)]; }
};

/// Stable counting sort of [0, n) by target_of(i) (already validated to be < n_out). Threads
/// count and place disjoint source ranges; the result is unique, so it does not depend on
/// them.
template <class TargetOf>
target_groups group_by_target(std::size_t n_out, std::size_t n, TargetOf target_of, int threads) {
  target_groups g;
  g.start.assign(n_out + 1, 0);
  g.position.resize(n);
  const int t = static_cast<int>(std::max<std::uint64_t>(1, std::min<std::uint64_t>(static_cast<std::uint64_t>(threads),
                                                                                    (n + (1u << 20) - 1) >> 20)));
  if (t == 1) {
    for (std::size_t i = 0; i < n; ++i) ++g.start[static_cast<std::size_t>(target_of(i)) + 1];
    for (std::size_t k = 0; k < n_out; ++k) g.start[k + 1] += g.start[k];
    std::vector<std::uint64_t> next(g.start.begin(), g.start.end() - 1);
    for (std::size_t i = 0; i < n; ++i) g.position[static_cast<std::size_t>(next[static_cast<std::size_t>(target_of(i))]++)] = i;
    return g;
  }
  // Per-thread histograms over contiguous source ranges, then per-(target, thread) offsets.
  std::vector<std::vector<std::uint32_t>> hist(static_cast<std::size_t>(t));
  auto range = [&](int id, std::size_t& b, std::size_t& e) {
    b = n * static_cast<std::size_t>(id) / static_cast<std::size_t>(t);
    e = n * static_cast<std::size_t>(id + 1) / static_cast<std::size_t>(t);
  };
  ::bitexact::cpu::detail::thread_pool::instance().run(t, [&](int id) {
    std::size_t b, e;
    range(id, b, e);
    std::vector<std::uint32_t>& h = hist[static_cast<std::size_t>(id)];
    h.assign(n_out, 0);
    for (std::size_t i = b; i < e; ++i) ++h[static_cast<std::size_t>(target_of(i))];
  });
  std::uint64_t run = 0;
  for (std::size_t k = 0; k < n_out; ++k) {
    g.start[k] = run;
    for (int id = 0; id < t; ++id) {
      const std::uint32_t c = hist[static_cast<std::size_t>(id)][k];
      hist[static_cast<std::size_t>(id)][k] = static_cast<std::uint32_t>(run - g.start[k]);  // offset within target
      run += c;
    }
  }
  g.start[n_out] = run;
  ::bitexact::cpu::detail::thread_pool::instance().run(t, [&](int id) {
    std::size_t b, e;
    range(id, b, e);
    std::vector<std::uint32_t>& h = hist[static_cast<std::size_t>(id)];
    for (std::size_t i = b; i < e; ++i) {
      const std::size_t k = static_cast<std::size_t>(target_of(i));
      g.position[static_cast<std::size_t>(g.start[k] + h[k]++)] = i;
    }
  });
  return g;
}

/// Runs body(t) for every target, targets split over threads in canonical ranges.
template <class Body>
void for_each_target(std::size_t n_out, int threads, Body body) {
  parallel_chunks(threads, canonical_chunks{n_out, 2048}, [&](std::uint64_t b, std::uint64_t e) {
    for (std::uint64_t t = b; t < e; ++t) body(static_cast<std::size_t>(t));
  });
}

/// Sorted strategy, fixed_order: apply(t, S_t) for every target with contributions.
template <class A, class Combine, class ValueAt, class Apply>
void grouped_combine(const target_groups& g, std::size_t n_out, int threads, Combine combine, ValueAt value_at,
                     Apply apply) {
  for_each_target(n_out, threads, [&](std::size_t t) {
    const std::uint64_t b = g.start[t], e = g.start[t + 1];
    if (b == e) return;
    core::scatter_combiner<A, Combine> c(combine);
    for (std::uint64_t k = b; k < e; ++k) c.push(g.position[k], value_at(g.position[k]));
    apply(t, c.finish(), static_cast<std::size_t>(e - b));
  });
}

/// The correctly rounded value of start + the values, exactly. The common case (the running
/// sum in the wider type never rounds: every TwoSum error is zero) needs no accumulator.
template <class A, class Values>
A exact_sum_with_start(A start, bool has_start, std::size_t count, Values value) {
  using W = double;  // float sums run in double; double sums check their own TwoSum errors
  W s = has_start ? W(start) : W(0);
  bool exact = true;
  bool any_non_negzero = has_start && !(start == A(0) && core::detail::negative_bits(start));
  bool finite = !has_start || (start - start == A(0));
  for (std::size_t k = 0; k < count && exact; ++k) {
    const A v = value(k);
    if (!(v - v == A(0))) {
      finite = false;
      break;
    }
    const W x = W(v);
    const W t = s + x;
    const W bp = t - s;
    const W err = (s - (t - bp)) + (x - bp);
    if (err != W(0) || (t - t != W(0))) exact = false;
    if (!(v == A(0) && core::detail::negative_bits(v))) any_non_negzero = true;
    s = t;
  }
  if (exact && finite) {
    if (s == W(0)) {  // signed-zero rule of the exact accumulator
      const bool any = has_start || count > 0;
      return (any && !any_non_negzero) ? -A(0) : A(0);
    }
    return A(s);  // exact in W, so one rounding to A (or none for double)
  }
  core::exact_accumulator<A> acc;
  if (has_start) acc.add(start);
  for (std::size_t k = 0; k < count; ++k) acc.add(value(k));
  return acc.round();
}

/// Dense strategy for 1-D sums into few targets: out[t] = out[t] + S_t (fixed_order).
template <class A, class I, class ValueAt>
void dense_index_add(A* out, std::size_t n_out, const I* idx, std::size_t n, ValueAt value_at, int threads) {
  const canonical_chunks chunks{n, core::scatter_chunk};
  const std::size_t rows = static_cast<std::size_t>(chunks.count());
  std::vector<A> partial(rows * n_out);
  std::vector<unsigned char> touched(rows * n_out);
  parallel_chunks(threads, chunks, [&](std::uint64_t b, std::uint64_t e) {
    const std::size_t r = static_cast<std::size_t>(b / core::scatter_chunk);
    A* p = partial.data() + r * n_out;
    unsigned char* h = touched.data() + r * n_out;
    std::fill(p, p + n_out, core::negative_zero<A>());
    std::fill(h, h + n_out, static_cast<unsigned char>(0));
    for (std::uint64_t i = b; i < e; ++i) {
      const std::size_t t = static_cast<std::size_t>(idx[i]);
      p[t] = p[t] + value_at(i);
      h[t] = 1;
    }
  });
  // Aligned pairwise tree over chunk rows: at step s, row c (c a multiple of 2s) takes
  // row c + s when it exists (left + right); a missing right child passes the left through.
  for (std::size_t s = 1; s < rows; s *= 2) {
    const std::size_t pairs = (rows - s + 2 * s - 1) / (2 * s);  // c = 0, 2s, ... with c + s < rows
    parallel_chunks(threads, canonical_chunks{pairs * n_out, 4096}, [&](std::uint64_t b, std::uint64_t e) {
      for (std::uint64_t k = b; k < e; ++k) {
        const std::size_t pair = static_cast<std::size_t>(k / n_out), t = static_cast<std::size_t>(k % n_out);
        const std::size_t c = pair * 2 * s;
        A* left = partial.data() + c * n_out;
        const A* right = partial.data() + (c + s) * n_out;
        left[t] = left[t] + right[t];
        touched[c * n_out + t] |= touched[(c + s) * n_out + t];
      }
    });
  }
  for (std::size_t t = 0; t < n_out; ++t)
    if (touched[t]) out[t] = out[t] + partial[t];
}

/// Dense strategy, exact tier: per-thread exact accumulators for each target, merged, rounded
/// with the old value.
template <class A, class I, class ValueAt>
void dense_index_add_exact(A* out, std::size_t n_out, const I* idx, std::size_t n, ValueAt value_at, int threads) {
  const int t = static_cast<int>(std::max<std::uint64_t>(1, std::min<std::uint64_t>(static_cast<std::uint64_t>(threads),
                                                                                    (n + 65535) >> 16)));
  std::vector<std::vector<core::exact_accumulator<A>>> acc(static_cast<std::size_t>(t));
  std::vector<std::vector<unsigned char>> hit(static_cast<std::size_t>(t));
  thread_pool::instance().run(t, [&](int id) {
    const std::size_t b = n * static_cast<std::size_t>(id) / static_cast<std::size_t>(t);
    const std::size_t e = n * static_cast<std::size_t>(id + 1) / static_cast<std::size_t>(t);
    auto& a = acc[static_cast<std::size_t>(id)];
    auto& h = hit[static_cast<std::size_t>(id)];
    a.resize(n_out);
    h.assign(n_out, 0);
    for (std::size_t i = b; i < e; ++i) {
      const std::size_t k = static_cast<std::size_t>(idx[i]);
      a[k].add(value_at(i));
      h[k] = 1;
    }
  });
  for_each_target(n_out, threads, [&](std::size_t k) {
    bool any = false;
    for (int id = 0; id < t; ++id) any = any || hit[static_cast<std::size_t>(id)][k];
    if (!any) return;
    core::exact_accumulator<A> total;
    total.add(out[k]);
    for (int id = 0; id < t; ++id) total.merge(acc[static_cast<std::size_t>(id)][k]);
    out[k] = total.round();
  });
}

}  // namespace detail
}  // namespace cpu
}  // namespace bitexact
