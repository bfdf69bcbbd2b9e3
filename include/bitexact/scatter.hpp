// bitexact/scatter.hpp - deterministic scatter: index_add, scatter_reduce, segment reductions,
// bincount/histogram and embedding bags, without float atomics.
//
// Canonical order (fixed_order tier, core/scatter.hpp, scatter_order_version): the
// contributions to one target combine by source position: sources are cut into chunks of 4096
// positions; inside a chunk a target's contributions combine sequentially in increasing
// position; the chunk partials combine by the aligned pairwise tree over chunk numbers; then
// the op applies the result once (index_add: out[t] = out[t] + S_t). Row forms combine every
// column the same way. The result never depends on threads, ISA or (for the CUDA kernels) the
// launch shape.
//
// execution{threads, simd}: every op checks the ISA first (one this build or CPU lacks is
// std::invalid_argument, nothing written); the row forms (index_add_rows, embedding bags and
// their backward) run their column loops with it, and so does 1-D index_add on sorted indices
// (AVX-512: a vector of positions at a time, the same adds); the other 1-D ops, the groupings
// and the exact tier are scalar code whatever the ISA.
//
// exact tier: sums are the correctly rounded value of (old value +) the exact sum of the
// contributions (core/exact.hpp: NaN, Inf and signed-zero rules), in any order; mean divides
// that rounded sum by the count. max/min are order-independent in both tiers; prod exists in
// fixed_order only (the exact tier throws std::invalid_argument).
//
// Special values: every NaN result is the canonical quiet NaN (the payload of x + NaN differs
// between x86 and GPUs); max/min order -0.0 below +0.0. A target with no contribution is left untouched by index_add and
// scatter_reduce; segment reductions write the empty value (sum/mean: +0.0, prod: 1, max: -Inf,
// min: +Inf).
//
// Bad input, nothing lost: an index that is negative or not below its bound throws
// bitexact::index_error (derived from std::out_of_range, with the lowest offending position)
// before anything is written; a null pointer with a non-zero count, a zero width with rows,
// overlapping output and input arrays, unsorted ids given to sorted_segment_reduce, or bad
// offsets throw std::invalid_argument, also before anything is written. n == 0 is a no-op.
//
// Memory: large scatters keep their temporaries (12 to 40 bytes per source) in a scratch
// arena of the calling thread, reused by the next call; release_scratch_memory() frees it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "core/bfloat16.hpp"
#include "core/exact.hpp"
#include "core/math.hpp"
#include "core/scatter.hpp"
#include "cpu/dispatch.hpp"
#include "cpu/scatter_kernels.hpp"
#include "cpu/scatter_rows.hpp"
#include "execution.hpp"
#include "fp_environment.hpp"
#include "tier.hpp"

namespace bitexact {

namespace detail {

inline void scatter_check(bool ok, const char* what, const char* msg) {
  if (!ok) throw std::invalid_argument(std::string("bitexact::") + what + ": " + msg);
}
/// The thread count of a call, after checking its ISA: an ISA this build or CPU lacks throws
/// std::invalid_argument before anything is written, as in every family. (The 1-D kernels,
/// the groupings and the exact tier are scalar code; the row forms use the resolved ISA.)
inline int scatter_threads(const execution& e) {
  (void)resolved_isa(e);
  return resolved_threads(e);
}

inline bool ranges_overlap(const void* a, std::size_t abytes, const void* b, std::size_t bbytes) {
  if (abytes == 0 || bbytes == 0 || a == nullptr || b == nullptr) return false;
  const auto pa = reinterpret_cast<std::uintptr_t>(a), pb = reinterpret_cast<std::uintptr_t>(b);
  return pa < pb + bbytes && pb < pa + abytes;
}

/// index_add's checks of pointers, overlap and the thread's FP mode (1-D forms).
template <class O, class I, class S>
void index_add_checks(const O* out, std::size_t n_out, const I* idx, const S* src, std::size_t n) {
  scatter_check(out != nullptr || n_out == 0, "index_add", "null out with n_out > 0");
  scatter_check(idx != nullptr && src != nullptr, "index_add", "null idx or src with n > 0");
  scatter_check(!ranges_overlap(out, n_out * sizeof(O), src, n * sizeof(S)) &&
                    !ranges_overlap(out, n_out * sizeof(O), idx, n * sizeof(I)),
                "index_add", "out overlaps src or idx");
  require_ieee_environment("index_add");
}


/// The core of scatter_reduce / segment_reduce: S_t for every target with contributions,
/// handed to apply(t, S_t, count). `start(t)` is the old value when include_self.
template <class A, class Groups, class ValueAt, class Apply>
void reduce_groups(const Groups& g, std::size_t n_out, scatter_op op, tier t, int threads, ValueAt value_at,
                   bool include_self, const A* self, Apply apply, const char* what) {
  if (t == tier::exact && op == scatter_op::prod)
    throw std::invalid_argument(std::string("bitexact::") + what + ": prod has no exact tier (use tier::fixed_order)");
  const bool exact_sum = t == tier::exact && (op == scatter_op::sum || op == scatter_op::mean);
  if (exact_sum) {
    cpu::detail::for_each_target(n_out, threads, [&](std::size_t k) {
      const std::uint64_t b = g.start[k], e = g.start[k + 1];
      if (b == e) return;
      const bool with_self = include_self && self;
      const A s = cpu::detail::exact_sum_with_start<A>(with_self ? self[k] : A(0), with_self,
                                                       static_cast<std::size_t>(e - b),
                                                       [&](std::size_t j) { return value_at(g.position_at(b + j)); });
      apply(k, s, static_cast<std::size_t>(e - b));
    });
    return;
  }
  auto run = [&](auto combine) {
    using C = decltype(combine);
    cpu::detail::grouped_combine<A, Groups, C>(
        g, n_out, threads, combine, [&](std::uint64_t q) { return value_at(g.position_at(q)); },
        [&](std::size_t k, A s, std::size_t count) { apply(k, include_self && self ? combine(self[k], s) : s, count); });
  };
  switch (op) {
    case scatter_op::prod: run(core::multiplies{}); break;
    case scatter_op::max: run(core::maximum{}); break;
    case scatter_op::min: run(core::minimum{}); break;
    default: run(core::plus{}); break;
  }
}

using cpu::detail::contiguous_groups;

template <class T>
using acc_t = core::accumulation_t<T>;

}  // namespace detail

/// Frees the calling thread's scatter scratch memory (kept between calls for speed).
inline void release_scratch_memory() { cpu::detail::release_scratch(); }

// ------------------------------------------------------------------------------------------
// index_add / scatter_add
// ------------------------------------------------------------------------------------------

/// out[idx[i]] += src[i] for i < n, in the canonical order (fixed_order) or exactly (exact).
/// T is float, double or bfloat16 (bf16 sources accumulate into a float out: see the overload).
template <class T, class I>
void index_add(T* out, std::size_t n_out, const I* idx, const T* src, std::size_t n,
               tier t = tier::fixed_order, const execution& e = {}) {
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value,
                "index_add: T must be float or double (bfloat16 sources go into a float out)");
  static_assert(std::is_integral<I>::value, "index_add: indices must be integers");
  if (n == 0) return;
  detail::index_add_checks(out, n_out, idx, src, n);
  const int threads = detail::scatter_threads(e);
  auto value = [src](std::uint64_t i) { return src[i]; };
  cpu::detail::index_add_1d<T>(out, n_out, idx, n, value, t, threads, "index_add", resolved_isa(e), src);  // validates idx
}

/// bfloat16 sources, accumulated in float.
template <class I>
void index_add(float* out, std::size_t n_out, const I* idx, const bfloat16* src, std::size_t n,
               tier t = tier::fixed_order, const execution& e = {}) {
  if (n == 0) return;
  detail::index_add_checks(out, n_out, idx, src, n);
  const int threads = detail::scatter_threads(e);
  auto value = [src](std::uint64_t i) { return src[i].to_float(); };
  cpu::detail::index_add_1d<float>(out, n_out, idx, n, value, t, threads, "index_add");  // validates idx
}

/// Row form: out[idx[i], :] += src[i, :] (row-major, `width` values per row, out has n_out rows).
/// Every column combines in the canonical order of the 1-D form. S is T or bfloat16 (then T is
/// float).
template <class T, class I, class S>
void index_add_rows(T* out, std::size_t n_out, std::size_t width, const I* idx, const S* src, std::size_t n,
                    tier t = tier::fixed_order, const execution& e = {}) {
  static_assert(std::is_same<T, detail::acc_t<S>>::value, "index_add_rows: out must be float (float/bf16 src) or double");
  if (n == 0) return;
  detail::scatter_check(width > 0, "index_add_rows", "width must be > 0");
  detail::scatter_check(out != nullptr || n_out == 0, "index_add_rows", "null out with n_out > 0");
  detail::scatter_check(idx != nullptr && src != nullptr, "index_add_rows", "null idx or src with n > 0");
  detail::scatter_check(!detail::ranges_overlap(out, n_out * width * sizeof(T), src, n * width * sizeof(S)) &&
                            !detail::ranges_overlap(out, n_out * width * sizeof(T), idx, n * sizeof(I)),
                        "index_add_rows", "out overlaps src or idx");
  detail::require_ieee_environment("index_add_rows");
  const int threads = detail::scatter_threads(e);
  cpu::detail::validate_indices(idx, n, n_out, threads, "index_add_rows");
  const auto g = cpu::detail::group_by_target(n_out, n, [idx](std::size_t i) { return idx[i]; }, threads);
  cpu::detail::rows_combine<T>(
      g, n_out, width, threads, resolved_isa(e), t,
      [src, width](std::uint64_t i, std::size_t c) { return src + i * width + c; },
      [out, width](std::size_t k) { return out + k * width; }, /*accumulate=*/true);
}

// ------------------------------------------------------------------------------------------
// scatter_reduce, segment reductions, bincount, histogram
// ------------------------------------------------------------------------------------------

/// PyTorch's scatter_reduce: for every target t with contributions,
/// out[t] = op(out[t] if include_self, contributions...) with the canonical order of the
/// contributions; mean divides by the count (+1 with include_self). Targets without
/// contributions keep their value.
template <class T, class I>
void scatter_reduce(T* out, std::size_t n_out, const I* idx, const T* src, std::size_t n, scatter_op op,
                    bool include_self = true, tier t = tier::fixed_order, const execution& e = {}) {
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value, "scatter_reduce: float or double");
  if (n == 0) return;
  detail::scatter_check(out != nullptr || n_out == 0, "scatter_reduce", "null out with n_out > 0");
  detail::scatter_check(idx != nullptr && src != nullptr, "scatter_reduce", "null idx or src with n > 0");
  detail::scatter_check(!detail::ranges_overlap(out, n_out * sizeof(T), src, n * sizeof(T)) &&
                            !detail::ranges_overlap(out, n_out * sizeof(T), idx, n * sizeof(I)),
                        "scatter_reduce", "out overlaps src or idx");
  if (t == tier::exact && op == scatter_op::prod)
    throw std::invalid_argument("bitexact::scatter_reduce: prod has no exact tier (use tier::fixed_order)");
  detail::require_ieee_environment("scatter_reduce");
  const int threads = detail::scatter_threads(e);
  cpu::detail::validate_indices(idx, n, n_out, threads, "scatter_reduce");
  const auto g = cpu::detail::group_by_target(n_out, n, [idx](std::size_t i) { return idx[i]; }, threads);
  // The results go to a scratch first: out is both input (include_self) and output.
  std::vector<T> result(n_out);
  std::vector<unsigned char> hit(n_out);
  detail::reduce_groups<T>(
      g, n_out, op, t, threads, [src](std::uint64_t i) { return src[i]; }, include_self, out,
      [&](std::size_t k, T s, std::size_t count) {
        if (op == scatter_op::mean) s = s / static_cast<T>(count + (include_self ? 1 : 0));
        result[k] = core::canonicalize(s);
        hit[k] = 1;
      },
      "scatter_reduce");
  for (std::size_t k = 0; k < n_out; ++k)
    if (hit[k]) out[k] = result[k];
}

/// Unsorted segment reduction: out[s] = op over data[i] with segment_ids[i] == s, for every
/// s < num_segments (empty segments get the empty value: sum/mean +0, prod 1, max -Inf,
/// min +Inf). T is float, double, or bfloat16 data into a float out.
template <class T, class I, class D>
void segment_reduce(T* out, std::size_t num_segments, const I* segment_ids, const D* data, std::size_t n,
                    scatter_op op, tier t = tier::fixed_order, const execution& e = {}) {
  static_assert(std::is_same<T, detail::acc_t<D>>::value, "segment_reduce: out must be float (float/bf16 data) or double");
  detail::scatter_check(out != nullptr || num_segments == 0, "segment_reduce", "null out with segments");
  detail::scatter_check(n == 0 || (segment_ids != nullptr && data != nullptr), "segment_reduce",
                        "null ids or data with n > 0");
  detail::scatter_check(!detail::ranges_overlap(out, num_segments * sizeof(T), data, n * sizeof(D)), "segment_reduce",
                        "out overlaps data");
  if (t == tier::exact && op == scatter_op::prod)
    throw std::invalid_argument("bitexact::segment_reduce: prod has no exact tier (use tier::fixed_order)");
  detail::require_ieee_environment("segment_reduce");
  const int threads = detail::scatter_threads(e);
  cpu::detail::validate_indices(segment_ids, n, num_segments, threads, "segment_reduce");
  const auto g = cpu::detail::group_by_target(num_segments, n, [segment_ids](std::size_t i) { return segment_ids[i]; },
                                              threads);
  for (std::size_t k = 0; k < num_segments; ++k) out[k] = core::empty_segment_value<T>(op);
  detail::reduce_groups<T>(
      g, num_segments, op, t, threads, [data](std::uint64_t i) { return T(core::widen(data[i])); }, false, nullptr,
      [&](std::size_t k, T s, std::size_t count) {
        out[k] = core::canonicalize(op == scatter_op::mean ? s / static_cast<T>(count) : s);
      },
      "segment_reduce");
}

/// Sorted segment reduction: segment_ids must be non-decreasing (checked: std::invalid_argument
/// otherwise). Same results as segment_reduce, without the grouping pass.
template <class T, class I, class D>
void sorted_segment_reduce(T* out, std::size_t num_segments, const I* segment_ids, const D* data, std::size_t n,
                           scatter_op op, tier t = tier::fixed_order, const execution& e = {}) {
  static_assert(std::is_same<T, detail::acc_t<D>>::value, "sorted_segment_reduce: out must be float or double");
  detail::scatter_check(out != nullptr || num_segments == 0, "sorted_segment_reduce", "null out with segments");
  detail::scatter_check(n == 0 || (segment_ids != nullptr && data != nullptr), "sorted_segment_reduce",
                        "null ids or data with n > 0");
  detail::scatter_check(!detail::ranges_overlap(out, num_segments * sizeof(T), data, n * sizeof(D)),
                        "sorted_segment_reduce", "out overlaps data");
  if (t == tier::exact && op == scatter_op::prod)
    throw std::invalid_argument("bitexact::sorted_segment_reduce: prod has no exact tier (use tier::fixed_order)");
  detail::require_ieee_environment("sorted_segment_reduce");
  const int threads = detail::scatter_threads(e);
  cpu::detail::validate_indices(segment_ids, n, num_segments, threads, "sorted_segment_reduce");
  detail::contiguous_groups g;
  g.start.assign(num_segments + 1, 0);
  for (std::size_t i = 0; i < n; ++i) {
    if (i > 0 && segment_ids[i] < segment_ids[i - 1])
      throw std::invalid_argument("bitexact::sorted_segment_reduce: segment ids decrease at position " +
                                  std::to_string(i));
    ++g.start[static_cast<std::size_t>(segment_ids[i]) + 1];
  }
  for (std::size_t k = 0; k < num_segments; ++k) g.start[k + 1] += g.start[k];
  for (std::size_t k = 0; k < num_segments; ++k) out[k] = core::empty_segment_value<T>(op);
  detail::reduce_groups<T>(
      g, num_segments, op, t, threads, [data](std::uint64_t i) { return T(core::widen(data[i])); }, false, nullptr,
      [&](std::size_t k, T s, std::size_t count) {
        out[k] = core::canonicalize(op == scatter_op::mean ? s / static_cast<T>(count) : s);
      },
      "sorted_segment_reduce");
}

/// Named forms (TensorFlow's unsorted_segment_* and segment_*): segment_reduce with that op.
template <class T, class I, class D>
void segment_sum(T* out, std::size_t num_segments, const I* segment_ids, const D* data, std::size_t n,
                 tier t = tier::fixed_order, const execution& e = {}) {
  segment_reduce(out, num_segments, segment_ids, data, n, scatter_op::sum, t, e);
}
template <class T, class I, class D>
void segment_mean(T* out, std::size_t num_segments, const I* segment_ids, const D* data, std::size_t n,
                  tier t = tier::fixed_order, const execution& e = {}) {
  segment_reduce(out, num_segments, segment_ids, data, n, scatter_op::mean, t, e);
}
template <class T, class I, class D>
void segment_max(T* out, std::size_t num_segments, const I* segment_ids, const D* data, std::size_t n,
                 const execution& e = {}) {
  segment_reduce(out, num_segments, segment_ids, data, n, scatter_op::max, tier::fixed_order, e);
}
template <class T, class I, class D>
void segment_min(T* out, std::size_t num_segments, const I* segment_ids, const D* data, std::size_t n,
                 const execution& e = {}) {
  segment_reduce(out, num_segments, segment_ids, data, n, scatter_op::min, tier::fixed_order, e);
}
/// segment_sum for non-decreasing ids (checked).
template <class T, class I, class D>
void sorted_segment_sum(T* out, std::size_t num_segments, const I* segment_ids, const D* data, std::size_t n,
                        tier t = tier::fixed_order, const execution& e = {}) {
  sorted_segment_reduce(out, num_segments, segment_ids, data, n, scatter_op::sum, t, e);
}

/// Weighted bincount: out[b] = sum of weights[i] with idx[i] == b (+0.0 for empty bins), for
/// every b < n_bins. Equal to segment_reduce(..., scatter_op::sum).
template <class T, class I>
void bincount(T* out, std::size_t n_bins, const I* idx, const T* weights, std::size_t n,
              tier t = tier::fixed_order, const execution& e = {}) {
  detail::scatter_check(n == 0 || weights != nullptr, "bincount", "null weights with n > 0 (use the count overload)");
  segment_reduce(out, n_bins, idx, weights, n, scatter_op::sum, t, e);
}

/// Unweighted bincount: out[b] = number of i with idx[i] == b.
template <class I>
void bincount(std::int64_t* out, std::size_t n_bins, const I* idx, std::size_t n, const execution& e = {}) {
  detail::scatter_check(out != nullptr || n_bins == 0, "bincount", "null out with bins");
  detail::scatter_check(n == 0 || idx != nullptr, "bincount", "null idx with n > 0");
  const int threads = detail::scatter_threads(e);
  cpu::detail::validate_indices(idx, n, n_bins, threads, "bincount");
  const auto g = cpu::detail::group_by_target(n_bins, n, [idx](std::size_t i) { return idx[i]; }, threads);
  for (std::size_t b = 0; b < n_bins; ++b) out[b] = static_cast<std::int64_t>(g.count(b));
}

/// Weighted histogram of x over [lo, hi] with n_bins equal bins (weights may be null: each
/// value counts 1). Value x goes to bin floor((x - lo) / (hi - lo) * n_bins), computed in T
/// with IEEE operations in that order, x == hi to the last bin; NaN and values outside
/// [lo, hi] are ignored. Bin sums combine in the canonical order (or exactly).
template <class T>
void histogram(T* out, std::size_t n_bins, T lo, T hi, const T* x, const T* weights, std::size_t n,
               tier t = tier::fixed_order, const execution& e = {}) {
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value, "histogram: float or double");
  detail::check_histogram_arguments("histogram", n_bins, lo, hi, out, x, n);
  detail::require_ieee_environment("histogram");
  const int threads = detail::scatter_threads(e);
  // Bin n_bins collects the ignored values and is dropped.
  std::vector<std::uint64_t> bin(n);
  cpu::parallel_chunks(threads, cpu::canonical_chunks{n, 65536}, [&](std::uint64_t b, std::uint64_t end) {
    for (std::uint64_t i = b; i < end; ++i) bin[i] = core::histogram_bin(x[i], lo, hi, n_bins);
  });
  std::vector<T> ones;
  const T* w = weights;
  if (!w) {
    ones.assign(n, T(1));
    w = ones.data();
  }
  std::vector<T> tmp(n_bins + 1);
  segment_reduce(tmp.data(), n_bins + 1, bin.data(), w, n, scatter_op::sum, t, e);
  for (std::size_t k = 0; k < n_bins; ++k) out[k] = tmp[k];
}

// ------------------------------------------------------------------------------------------
// embedding bags
// ------------------------------------------------------------------------------------------

/// PyTorch's embedding_bag forward (include_last_offset = false): bag b is the positions
/// j in [offsets[b], offsets[b+1]) (the last bag ends at n_indices); out[b, :] combines the
/// rows table[indices[j], :], each multiplied by per_sample_weights[j] when given (sum mode
/// only; the product is rounded, never fused), in the canonical order of the positions j;
/// mean divides by the bag size; max takes the element-wise maximum. Empty bags give zeros.
/// The table S is float or double (out and weights of the same type), or bfloat16 with a float
/// out and float weights (rows widened exactly, combined in float).
template <class S, class I, class T = core::accumulation_t<S>>
void embedding_bag(T* out, const S* table, std::size_t n_rows, std::size_t width, const I* indices,
                   std::size_t n_indices, const I* offsets, std::size_t n_bags, bag_mode mode,
                   const core::accumulation_t<S>* per_sample_weights = nullptr, tier t = tier::fixed_order,
                   const execution& e = {}) {
  static_assert(std::is_same<T, core::accumulation_t<S>>::value,
                "embedding_bag: out is the table's type (float for a bfloat16 table)");
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value,
                "embedding_bag: float, double or bfloat16 tables");
  const char* what = "embedding_bag";
  detail::check_bag_arguments(what, width, n_bags, n_indices, out, offsets, indices, table, per_sample_weights != nullptr,
                              mode);
  detail::scatter_check(!detail::ranges_overlap(out, n_bags * width * sizeof(T), table, n_rows * width * sizeof(S)),
                        what, "out overlaps table");
  const int threads = detail::scatter_threads(e);
  cpu::detail::validate_indices(indices, n_indices, n_rows, threads, what);
  detail::contiguous_groups g = cpu::detail::bag_groups(offsets, n_bags, n_indices, what);
  detail::require_ieee_environment(what);
  for (std::size_t k = 0; k < n_bags * width; ++k) out[k] = T(0);
  const tier tt = mode == bag_mode::max ? tier::fixed_order : t;
  cpu::detail::bag_rows_combine<T>(g, n_bags, width, threads, resolved_isa(e), tt, mode == bag_mode::max, table, indices,
                                   per_sample_weights, [out, width](std::size_t b) { return out + b * width; });
  if (mode == bag_mode::mean)
    for (std::size_t b = 0; b < n_bags; ++b) {
      const std::size_t c = static_cast<std::size_t>(g.start[b + 1] - g.start[b]);
      if (c > 0)
        for (std::size_t k = 0; k < width; ++k) out[b * width + k] = core::canonicalize(out[b * width + k] / static_cast<T>(c));
    }
}

/// embedding_bag in max mode that also records, for every bag b and column c, the position j
/// (into indices) of the selected value: the lowest j whose value has the result's bits (for a
/// NaN result, the lowest j holding a NaN); -1 for an empty bag. Feed max_positions to
/// embedding_bag_max_backward. Tables as for embedding_bag (bfloat16: values compared widened).
template <class S, class I, class T = core::accumulation_t<S>>
void embedding_bag_max(T* out, std::int64_t* max_positions, const S* table, std::size_t n_rows, std::size_t width,
                       const I* indices, std::size_t n_indices, const I* offsets, std::size_t n_bags,
                       const execution& e = {}) {
  detail::scatter_check(n_bags == 0 || max_positions != nullptr, "embedding_bag_max", "null max_positions with bags");
  embedding_bag(out, table, n_rows, width, indices, n_indices, offsets, n_bags, bag_mode::max,
                static_cast<const T*>(nullptr), tier::fixed_order, e);
  const cpu::detail::contiguous_groups g = cpu::detail::bag_groups(offsets, n_bags, n_indices, "embedding_bag_max");
  cpu::detail::for_each_target(n_bags, detail::scatter_threads(e), [&](std::size_t b) {
    for (std::size_t c = 0; c < width; ++c) {
      max_positions[b * width + c] = core::max_position(out[b * width + c], g.start[b], g.start[b + 1], [&](std::uint64_t j) {
        return T(core::widen(table[static_cast<std::size_t>(indices[j]) * width + c]));
      });
    }
  });
}

/// Backward of embedding_bag_max: grad_table[indices[max_positions[b, c]], c] += grad_out[b, c].
/// The contributions to one table element combine in the canonical order of their source
/// position b * width + c (the flattened grad_out index), like the 1-D index_add.
template <class T, class I>
void embedding_bag_max_backward(T* grad_table, std::size_t n_rows, std::size_t width, const T* grad_out,
                                const I* indices, std::size_t n_indices, const std::int64_t* max_positions,
                                std::size_t n_bags, tier t = tier::fixed_order, const execution& e = {}) {
  const char* what = "embedding_bag_max_backward";
  detail::scatter_check(width > 0, what, "width must be > 0");
  detail::scatter_check(n_bags == 0 || (grad_out != nullptr && max_positions != nullptr), what, "null grad_out or max_positions");
  detail::scatter_check(n_indices == 0 || indices != nullptr, what, "null indices");
  const std::size_t cells = n_rows * width, m = n_bags * width;
  std::vector<std::uint64_t> target(m);
  for (std::size_t s = 0; s < m; ++s) {
    const core::max_target k = core::max_backward_target(max_positions[s], s, indices, n_indices, n_rows, width);
    if (k.status != core::max_target_status::ok)
      detail::throw_max_target_error(what, k.status, s, max_positions[s],
                                     k.status == core::max_target_status::bad_index ? static_cast<long long>(indices[max_positions[s]]) : 0,
                                     n_rows);
    target[s] = k.cell;  // cells: the dropped sentinel cell
  }
  if (m == 0) return;
  detail::scatter_check(grad_table != nullptr, what, "null grad_table");
  std::vector<T> tmp(cells + 1);
  std::copy(grad_table, grad_table + cells, tmp.begin());
  index_add(tmp.data(), cells + 1, target.data(), grad_out, m, t, e);
  std::copy(tmp.begin(), tmp.begin() + static_cast<std::ptrdiff_t>(cells), grad_table);
}

/// embedding_bag backward for sum and mean: grad_table[indices[j], :] += g_j, where g_j is
/// grad_out[bag(j), :] times per_sample_weights[j] (sum; rounded product) or divided by the
/// bag size (mean; rounded quotient). Contributions to a table row combine in the canonical
/// order of their positions j (the row form of index_add). For max mode use
/// embedding_bag_max (forward with the selected positions) and embedding_bag_max_backward.
template <class T, class I>
void embedding_bag_backward(T* grad_table, std::size_t n_rows, std::size_t width, const T* grad_out,
                            const I* indices, std::size_t n_indices, const I* offsets, std::size_t n_bags,
                            bag_mode mode, const T* per_sample_weights = nullptr, tier t = tier::fixed_order,
                            const execution& e = {}) {
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value, "embedding_bag_backward: float or double");
  const char* what = "embedding_bag_backward";
  detail::scatter_check(mode != bag_mode::max, what, "max mode: use embedding_bag_max and embedding_bag_max_backward");
  detail::check_bag_arguments(what, width, n_bags, n_indices, grad_out, offsets, indices, grad_table,
                              per_sample_weights != nullptr, mode);
  detail::scatter_check(!detail::ranges_overlap(grad_table, n_rows * width * sizeof(T), grad_out, n_bags * width * sizeof(T)),
                        what, "grad_table overlaps grad_out");
  const int threads = detail::scatter_threads(e);
  cpu::detail::validate_indices(indices, n_indices, n_rows, threads, what);
  const detail::contiguous_groups bags = cpu::detail::bag_groups(offsets, n_bags, n_indices, what);
  detail::require_ieee_environment(what);
  if (n_indices == 0) return;
  // bag of every position, and the contribution row of position j
  std::vector<std::uint32_t> bag_of(n_indices);
  for (std::size_t b = 0; b < n_bags; ++b)
    for (std::uint64_t j = bags.start[b]; j < bags.start[b + 1]; ++j) bag_of[static_cast<std::size_t>(j)] = static_cast<std::uint32_t>(b);
  std::vector<T> contrib(n_indices * width);
  cpu::parallel_chunks(threads, cpu::canonical_chunks{n_indices, 1024}, [&](std::uint64_t b, std::uint64_t end) {
    for (std::uint64_t j = b; j < end; ++j) {
      const std::size_t bag = bag_of[static_cast<std::size_t>(j)];
      const T* go = grad_out + bag * width;
      T* c = contrib.data() + j * width;
      if (per_sample_weights) {
        for (std::size_t k = 0; k < width; ++k) c[k] = core::mul_rn(go[k], per_sample_weights[j]);
      } else if (mode == bag_mode::mean) {
        const T cnt = static_cast<T>(bags.start[bag + 1] - bags.start[bag]);
        for (std::size_t k = 0; k < width; ++k) c[k] = go[k] / cnt;
      } else {
        for (std::size_t k = 0; k < width; ++k) c[k] = go[k];
      }
    }
  });
  const auto g = cpu::detail::group_by_target(n_rows, n_indices, [indices](std::size_t j) { return indices[j]; }, threads);
  cpu::detail::rows_combine<T>(
      g, n_rows, width, threads, resolved_isa(e), t,
      [&contrib, width](std::uint64_t j, std::size_t c) { return contrib.data() + j * width + c; },
      [grad_table, width](std::size_t k) { return grad_table + k * width; }, /*accumulate=*/true);
}

}  // namespace bitexact
