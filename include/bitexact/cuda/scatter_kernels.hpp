// bitexact/cuda/scatter_kernels.hpp - kernel bodies of the scatter family, for CUDA, Thrust and
// the CPU emulation.
//
// Plain C++17 (compiles with g++ and nvcc). Each pass is a BITEXACT_HD body of a thread_index
// (cuda/launch.hpp) that grid-strides over its items and writes each output element from
// exactly one item, with no barriers, no shared memory and no float atomics. cuda/scatter.cuh
// calls the bodies from __global__ kernels, cuda/scatter_thrust.hpp from thrust::for_each, and
// emulate:: below from emulate_launch(), so all three run the same code.
//
// The pipeline (index_add 1-D is the row form with width 1):
//   1. validate       lowest position with an index outside [0, bound) (atomicMin on a GPU);
//                     the launcher throws index_error before any later pass runs.
//   2. make_pairs     key[i] = idx[i], pos[i] = i.
//   3. (sort)         stable sort of (key, pos) by key: CUB DeviceRadixSort::SortPairs, Thrust
//                     stable_sort_by_key, or std::stable_sort in the emulation. Stability puts
//                     the positions of each target in increasing order, so the sorted layout
//                     is unique: whatever sorts it, the later passes see the same arrays.
//   4. run_flags      flag[q] = 1 where a run starts: a run is a maximal stretch of the sorted
//                     layout with one target and one source chunk (position / 4096).
//   5. (scan)         run_id = exclusive prefix sum of flag (CUB / Thrust / std).
//   6. run_begin      run_begin[run_id[q]] = q at run starts, run_begin[R] = n, run_count = R.
//   7. run_partials   fixed_order: for every (run, column), the sequential combination of the
//                     run's values in increasing position: step 2 of core/scatter.hpp.
//   8. target_combine fixed_order: for every (target, column), the run partials of the target
//                     pushed in chunk order into core::scatter_combiner (push_chunk_partial):
//                     the aligned tree over chunks, step 3. Then apply(t, c, S_t, count).
//   7'. exact_heavy_runs  exact tier, targets with more than 4096 contributions ("heavy"):
//                     every (run, column) sums its values in an exact accumulator and adds its
//                     digits into the target's slot with integer atomics (order-independent).
//   8'. exact_target  exact tier: for every (target, column), the correctly rounded value of
//                     (start +) the exact sum of the target's values: one thread walks a light
//                     target's values, a heavy target rounds its merged digits.
// Options (pipeline_options): presorted keys skip step 3 (embedding bags: the bag ids of the
// positions never decrease), and targets at or above `kept` are combined but never applied
// (sentinel targets). bincount, histogram and the embedding-bag ops add small passes that
// build the keys (bins, bag ids, recorded cells) and the values (table rows, per-position
// gradients, products with per-sample weights: core::product_term).
// Which thread computes an item, and in which order items run, is the only thing the launch
// shape changes; every item computes a fixed function of the sorted layout, so the bits are
// the reference's (reference/scatter.hpp) for any grid, block and block order.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/bfloat16.hpp"
#include "../core/config.hpp"
#include "../core/exact.hpp"
#include "../core/scatter.hpp"
#include "../scatter_error.hpp"
#include "../tier.hpp"
#include "launch.hpp"

namespace bitexact {
namespace cuda {
namespace scatter_detail {

/// Whether index v lies in [0, bound).
template <class I>
BITEXACT_HD bool index_ok(I v, std::uint64_t bound) {
  if constexpr (std::is_signed<I>::value) {
    if (v < I(0)) return false;
  }
  return static_cast<std::uint64_t>(v) < bound;
}

/// *p = min(*p, v). On the device an atomicMin; the CPU emulation runs one thread at a time.
BITEXACT_HD inline void atomic_min_position(unsigned long long* p, unsigned long long v) {
#if defined(__CUDA_ARCH__)
  atomicMin(p, v);
#else
  if (v < *p) *p = v;
#endif
}

/// "No bad position": the initial value of validate's result.
inline constexpr unsigned long long no_bad_position = ~0ull;

/// Pass 1: *first_bad = min(*first_bad, lowest i < n with idx[i] outside [0, bound)).
/// *first_bad starts at no_bad_position.
template <class I>
BITEXACT_HD void validate_body(const thread_index& ti, const I* idx, std::uint64_t n, std::uint64_t bound,
                               unsigned long long* first_bad) {
  for (std::uint64_t i = ti.global(); i < n; i += ti.threads())
    if (!index_ok(idx[i], bound)) {
      atomic_min_position(first_bad, i);  // this thread's later positions are larger
      return;
    }
}

/// Pass 2: key[i] = idx[i] (validated), pos[i] = i.
template <class I, class U>
BITEXACT_HD void make_pairs_body(const thread_index& ti, const I* idx, std::uint64_t n, U* key, U* pos) {
  for (std::uint64_t i = ti.global(); i < n; i += ti.threads()) {
    key[i] = static_cast<U>(idx[i]);
    pos[i] = static_cast<U>(i);
  }
}

/// The sorted layout: (key[q], pos[q]) for q < n, ordered by key, then by position.
/// Targets at or above `kept` are dropped: their contributions are combined like any other
/// (they occupy their source positions) but never applied (sentinel targets of histogram and
/// embedding_bag_max_backward).
template <class U>
struct sorted_view {
  const U* key;
  const U* pos;
  std::uint64_t n;
  std::uint64_t kept = ~std::uint64_t(0);
  BITEXACT_HD bool dropped(std::uint64_t t) const { return t >= kept; }
  BITEXACT_HD bool target_start(std::uint64_t q) const { return q == 0 || key[q] != key[q - 1]; }
  BITEXACT_HD bool run_start(std::uint64_t q) const {
    return target_start(q) || std::uint64_t(pos[q]) / core::scatter_chunk != std::uint64_t(pos[q - 1]) / core::scatter_chunk;
  }
};

/// Pass 4: flag[q] = 1 where a run starts, else 0.
template <class U>
BITEXACT_HD void run_flags_body(const thread_index& ti, sorted_view<U> s, U* flag) {
  for (std::uint64_t q = ti.global(); q < s.n; q += ti.threads()) flag[q] = s.run_start(q) ? U(1) : U(0);
}

/// Pass 6: from run_id (exclusive prefix sum of the flags): run_begin[r] for r < R,
/// run_begin[R] = n, *run_count = R. Requires n > 0.
template <class U>
BITEXACT_HD void run_begin_body(const thread_index& ti, sorted_view<U> s, const U* run_id, U* run_begin, U* run_count) {
  for (std::uint64_t q = ti.global(); q < s.n; q += ti.threads()) {
    const bool start = s.run_start(q);
    if (start) run_begin[run_id[q]] = static_cast<U>(q);
    if (q + 1 == s.n) {
      const U r = static_cast<U>(run_id[q] + (start ? 1 : 0));
      run_begin[r] = static_cast<U>(s.n);
      *run_count = r;
    }
  }
}

/// The value of column c of source position p: src[p * width + c], widened to the
/// accumulation type (bfloat16 -> float exactly).
template <class T>
struct row_values {
  const T* src;
  std::uint64_t width;
  BITEXACT_HD core::accumulation_t<T> operator()(std::uint64_t p, std::uint64_t c) const {
    return core::widen(src[p * width + c]);
  }
};

/// Pass 7 (fixed_order): partial[r * width + c] = the sequential combination of the values of
/// run r in column c, in increasing position (step 2 of the canonical order).
template <class A, class U, class Combine, class ValueOf>
BITEXACT_HD void run_partials_body(const thread_index& ti, sorted_view<U> s, const U* run_begin, const U* run_count,
                                   std::uint64_t width, ValueOf value, Combine combine, A* partial) {
  const std::uint64_t items = static_cast<std::uint64_t>(*run_count) * width;
  for (std::uint64_t item = ti.global(); item < items; item += ti.threads()) {
    const std::uint64_t r = item / width, c = item % width;
    const std::uint64_t b = run_begin[r], e = run_begin[r + 1];
    A p = core::term_value(value(s.pos[b], c));
    for (std::uint64_t q = b + 1; q < e; ++q) p = combine(p, core::term_value(value(s.pos[q], c)));
    partial[item] = p;
  }
}

/// One past the last run of the target whose first run is r (runs of a target are adjacent).
template <class U>
BITEXACT_HD std::uint64_t target_runs_end(sorted_view<U> s, const U* run_begin, std::uint64_t runs, std::uint64_t r) {
  const U t = s.key[run_begin[r]];
  std::uint64_t r2 = r + 1;
  while (r2 < runs && s.key[run_begin[r2]] == t) ++r2;
  return r2;
}

/// Pass 8 (fixed_order): for every target t with contributions and every column c, S_t = the
/// aligned tree over chunks of the target's run partials (step 3); then apply(t, c, S_t, count)
/// with count the number of contributions. One item per (run, column); only items whose run
/// starts a target do work.
template <class A, class U, class Combine, class Apply>
BITEXACT_HD void target_combine_body(const thread_index& ti, sorted_view<U> s, const U* run_begin, const U* run_count,
                                     std::uint64_t width, const A* partial, Combine combine, Apply apply) {
  const std::uint64_t runs = *run_count;
  const std::uint64_t items = runs * width;
  for (std::uint64_t item = ti.global(); item < items; item += ti.threads()) {
    const std::uint64_t r = item / width, c = item % width;
    const std::uint64_t b = run_begin[r];
    if (!s.target_start(b) || s.dropped(s.key[b])) continue;
    const U t = s.key[b];
    const std::uint64_t r2 = target_runs_end(s, run_begin, runs, r);
    A sum;
    if (r2 == r + 1) {
      sum = partial[item];  // one chunk: the run partial is S_t
    } else {
      core::scatter_combiner<A, Combine> comb(combine);
      for (std::uint64_t k = r; k < r2; ++k)
        comb.push_chunk_partial(std::uint64_t(s.pos[run_begin[k]]) / core::scatter_chunk, partial[k * width + c]);
      sum = comb.finish();
    }
    apply(static_cast<std::uint64_t>(t), c, sum, std::uint64_t(run_begin[r2]) - b);
  }
}

/// Targets with more contributions than this are "heavy": their exact sums are computed run
/// by run in parallel and merged digit-wise with integer atomics (pass 7'), instead of by one
/// thread walking all of them. Either way the result is the exact sum, so the threshold only
/// moves work, never bits.
inline constexpr std::uint64_t heavy_target = core::scatter_chunk;

/// Integer atomics for the digit-wise merge. Integer addition and OR are associative and
/// commutative, so the merged state does not depend on the order of the updates. On the host
/// (emulation, Thrust's OMP system) the GCC/Clang builtins keep concurrent updates correct.
BITEXACT_HD inline void atomic_add_digit(unsigned long long* p, unsigned long long v) {
#if defined(__CUDA_ARCH__)
  atomicAdd(p, v);
#elif defined(__GNUC__) || defined(__clang__)
  __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
#else
  *p += v;
#endif
}
BITEXACT_HD inline void atomic_or_flags(unsigned int* p, unsigned int v) {
#if defined(__CUDA_ARCH__)
  atomicOr(p, v);
#elif defined(__GNUC__) || defined(__clang__)
  __atomic_fetch_or(p, v, __ATOMIC_RELAXED);
#else
  *p |= v;
#endif
}

/// Digit slots of the heavy targets' exact sums: slot (b / heavy_target) * width + c holds
/// column c of the heavy target whose contributions start at sorted index b (distinct heavy
/// targets start more than heavy_target apart, so their slots differ). digits holds
/// digit_count two's-complement 64-bit digits per slot, zeroed before pass 7'; flags one word
/// per slot, zeroed too.
template <class A>
struct exact_slots {
  static constexpr int digits_per_slot = core::exact_accumulator<A>::digit_count;
  unsigned long long* digits;
  unsigned int* flags;
  /// Number of slots for n sources of `width` columns.
  BITEXACT_HD static std::uint64_t count(std::uint64_t n, std::uint64_t width) { return (n / heavy_target + 1) * width; }
};

/// The first sorted index of the target of sorted index q, and one past its last.
template <class U>
BITEXACT_HD std::uint64_t target_first(sorted_view<U> s, std::uint64_t q) {
  const U t = s.key[q];
  std::uint64_t lo = 0, hi = q;
  while (lo < hi) {
    const std::uint64_t mid = lo + (hi - lo) / 2;
    if (s.key[mid] < t) lo = mid + 1; else hi = mid;
  }
  return lo;
}
template <class U>
BITEXACT_HD std::uint64_t target_last(sorted_view<U> s, std::uint64_t q) {
  const U t = s.key[q];
  std::uint64_t lo = q + 1, hi = s.n;
  while (lo < hi) {
    const std::uint64_t mid = lo + (hi - lo) / 2;
    if (s.key[mid] <= t) lo = mid + 1; else hi = mid;
  }
  return lo;
}

/// Pass 7' (exact): for every (run, column) of a heavy target, the exact sum of the run's values
/// in an exact_accumulator, added digit-wise (normalized digits, atomics) into the target's
/// slot, flags OR-ed. Runs of light targets do nothing here.
template <class A, class U, class ValueOf>
BITEXACT_HD void exact_heavy_runs_body(const thread_index& ti, sorted_view<U> s, const U* run_begin, const U* run_count,
                                       std::uint64_t width, ValueOf value, exact_slots<A> slots) {
  const std::uint64_t items = static_cast<std::uint64_t>(*run_count) * width;
  for (std::uint64_t item = ti.global(); item < items; item += ti.threads()) {
    const std::uint64_t r = item / width, c = item % width;
    const std::uint64_t q0 = run_begin[r], q1 = run_begin[r + 1];
    if (s.dropped(s.key[q0])) continue;
    const std::uint64_t b = target_first(s, q0);
    if (target_last(s, q0) - b <= heavy_target) continue;
    core::exact_accumulator<A> acc;
    for (std::uint64_t q = q0; q < q1; ++q) core::add_term(acc, value(s.pos[q], c));
    acc.normalize();
    const std::uint64_t slot = (b / heavy_target) * width + c;
    unsigned long long* d = slots.digits + slot * exact_slots<A>::digits_per_slot;
    for (int k = 0; k < exact_slots<A>::digits_per_slot; ++k) {
      const std::int64_t v = acc.digit(k);
      if (v != 0) atomic_add_digit(d + k, static_cast<unsigned long long>(v));
    }
    atomic_or_flags(slots.flags + slot, acc.flags());
  }
}

/// Pass 8' (exact): for every target t and column c, apply(t, c, R, count) with R the correctly
/// rounded value of (start[t * width + c] +) the exact sum of the target's values; start may
/// be null (no start value). Light targets are summed here by one thread; heavy ones read the
/// digits that pass 7' merged.
template <class A, class U, class ValueOf, class Apply>
BITEXACT_HD void exact_target_body(const thread_index& ti, sorted_view<U> s, const U* run_begin, const U* run_count,
                                   std::uint64_t width, ValueOf value, const A* start, exact_slots<A> slots,
                                   Apply apply) {
  const std::uint64_t runs = *run_count;
  const std::uint64_t items = runs * width;
  for (std::uint64_t item = ti.global(); item < items; item += ti.threads()) {
    const std::uint64_t r = item / width, c = item % width;
    const std::uint64_t b = run_begin[r];
    if (!s.target_start(b) || s.dropped(s.key[b])) continue;
    const U t = s.key[b];
    const std::uint64_t r2 = target_runs_end(s, run_begin, runs, r);
    const std::uint64_t count = std::uint64_t(run_begin[r2]) - b;
    const std::uint64_t tt = static_cast<std::uint64_t>(t);
    A sum;
    if (count > heavy_target) {
      const std::uint64_t slot = (b / heavy_target) * width + c;
      core::exact_accumulator<A> acc = core::exact_accumulator<A>::from_digits(
          reinterpret_cast<const std::int64_t*>(slots.digits + slot * exact_slots<A>::digits_per_slot), slots.flags[slot]);
      if (start) acc.add(start[tt * width + c]);
      sum = acc.round();
    } else {
      const U* pos = s.pos + b;
      sum = core::exact_sum_with_start<A>(start ? start[tt * width + c] : A(0), start != nullptr, count,
                         [&](std::uint64_t k) { return value(pos[k], c); });
    }
    apply(tt, c, sum, count);
  }
}

/// NaN results of every apply are the canonical quiet NaN (core::canonicalize): x86 and GPUs
/// give different payloads (and signs) for x + NaN and Inf - Inf.
/// apply of index_add, fixed_order: out[t, c] = out[t, c] + S_t.
template <class A>
struct add_into {
  A* out;
  std::uint64_t width;
  BITEXACT_HD void operator()(std::uint64_t t, std::uint64_t c, A s, std::uint64_t) const {
    A& o = out[t * width + c];
    o = core::canonicalize(o + s);
  }
};
/// apply of index_add, exact: out[t, c] = round(out[t, c] + exact sum) (the start is out).
template <class A>
struct store_into {
  A* out;
  std::uint64_t width;
  BITEXACT_HD void operator()(std::uint64_t t, std::uint64_t c, A s, std::uint64_t) const {
    out[t * width + c] = core::canonicalize(s);
  }
};

/// apply of scatter_reduce and segment_reduce: r = S_t, or combine(out[t, c], S_t) when
/// combine_self (fixed_order with include_self; the exact tier puts the old value into the
/// exact sum instead); mean divides r by count + extra_count; then out[t, c] = r.
template <class A, class Combine>
struct reduce_into {
  A* out;
  std::uint64_t width;
  Combine combine;
  bool combine_self;
  bool mean;
  std::uint64_t extra_count;
  BITEXACT_HD void operator()(std::uint64_t t, std::uint64_t c, A s, std::uint64_t count) const {
    A& o = out[t * width + c];
    A r = combine_self ? combine(o, s) : s;
    if (mean) r = r / static_cast<A>(count + extra_count);
    o = core::canonicalize(r);
  }
};

/// out[i] = v for i < n (the empty value of segment reductions).
template <class A>
BITEXACT_HD void fill_body(const thread_index& ti, A* out, std::uint64_t n, A v) {
  for (std::uint64_t i = ti.global(); i < n; i += ti.threads()) out[i] = v;
}

// ------------------------------------------------------------------------------------------
// bincount, histogram and embedding bags: bodies that prepare the pipeline's inputs.
// ------------------------------------------------------------------------------------------

/// Unweighted bincount: counts[idx[i]] += 1 for i < n (validated), with integer atomics, which
/// are exact and order-independent.
template <class I>
BITEXACT_HD void count_body(const thread_index& ti, const I* idx, std::uint64_t n, unsigned long long* counts) {
  for (std::uint64_t i = ti.global(); i < n; i += ti.threads())
    atomic_add_digit(counts + static_cast<std::uint64_t>(idx[i]), 1ull);
}

/// histogram: bin[i] = core::histogram_bin(x[i], lo, hi, n_bins) (n_bins: ignored value).
template <class A>
BITEXACT_HD void histogram_bins_body(const thread_index& ti, const A* x, std::uint64_t n, A lo, A hi,
                                     std::uint64_t n_bins, std::uint64_t* bin) {
  for (std::uint64_t i = ti.global(); i < n; i += ti.threads()) bin[i] = core::histogram_bin(x[i], lo, hi, n_bins);
}

/// The value 1 at every position (histogram without weights).
template <class A>
struct unit_values {
  BITEXACT_HD A operator()(std::uint64_t, std::uint64_t) const { return A(1); }
};

/// Embedding bags: *first_bad = min(*first_bad, lowest bag b whose offset breaks the rule:
/// offsets[0] == 0, never decreasing, every offset <= n_indices).
template <class I>
BITEXACT_HD void bag_offsets_check_body(const thread_index& ti, const I* offsets, std::uint64_t n_bags,
                                        std::uint64_t n_indices, unsigned long long* first_bad) {
  for (std::uint64_t b = ti.global(); b < n_bags; b += ti.threads()) {
    const I o = offsets[b];
    const bool bad = !index_ok(o, n_indices + 1) || (b == 0 && o != I(0)) || (b > 0 && o < offsets[b - 1]);
    if (bad) {
      atomic_min_position(first_bad, b);
      return;
    }
  }
}

/// bag_of[j] = the bag of position j < n_indices: the last b with offsets[b] <= j (offsets
/// validated, n_bags > 0).
template <class I>
BITEXACT_HD void bag_of_body(const thread_index& ti, const I* offsets, std::uint64_t n_bags, std::uint64_t n_indices,
                             std::uint64_t* bag_of) {
  for (std::uint64_t j = ti.global(); j < n_indices; j += ti.threads()) {
    std::uint64_t lo = 0, hi = n_bags;  // first b with offsets[b] > j
    while (lo < hi) {
      const std::uint64_t mid = lo + (hi - lo) / 2;
      if (static_cast<std::uint64_t>(offsets[mid]) <= j) lo = mid + 1; else hi = mid;
    }
    bag_of[j] = lo - 1;
  }
}

/// The end of bag b (offsets validated): offsets[b + 1], or n_indices for the last bag.
template <class I>
BITEXACT_HD std::uint64_t bag_end(const I* offsets, std::uint64_t b, std::uint64_t n_bags, std::uint64_t n_indices) {
  return b + 1 < n_bags ? static_cast<std::uint64_t>(offsets[b + 1]) : n_indices;
}

/// embedding_bag's contribution of position j to column c: table[indices[j], c], widened to A
/// (a bfloat16 table to float, exactly).
template <class A, class I, class Tab = A>
struct bag_rows {
  const Tab* table;
  const I* indices;
  std::uint64_t width;
  BITEXACT_HD A operator()(std::uint64_t j, std::uint64_t c) const {
    return A(core::widen(table[static_cast<std::uint64_t>(indices[j]) * width + c]));
  }
};
/// ... times per_sample_weights[j]: a product term, rounded by fixed_order (never fused) and
/// exact in the exact tier.
template <class A, class I, class Tab = A>
struct weighted_bag_rows {
  const Tab* table;
  const I* indices;
  std::uint64_t width;
  const A* weights;
  BITEXACT_HD core::product_term<A> operator()(std::uint64_t j, std::uint64_t c) const {
    return {A(core::widen(table[static_cast<std::uint64_t>(indices[j]) * width + c])), weights[j]};
  }
};

/// embedding_bag_backward's contribution of position j to its table row, column c:
/// grad_out[bag, c] of its bag, times weights[j] (rounded product) or divided by the bag's
/// size (mean; rounded quotient).
template <class A, class I>
struct bag_gradients {
  const A* grad_out;
  const std::uint64_t* bag_of;
  const I* offsets;
  std::uint64_t n_bags, n_indices, width;
  const A* weights;
  bool mean;
  BITEXACT_HD A operator()(std::uint64_t j, std::uint64_t c) const {
    const std::uint64_t b = bag_of[j];
    const A g = grad_out[b * width + c];
    if (weights) return core::mul_rn(g, weights[j]);
    if (mean) return g / static_cast<A>(bag_end(offsets, b, n_bags, n_indices) - static_cast<std::uint64_t>(offsets[b]));
    return g;
  }
};

/// embedding_bag_max's positions: for every (bag, column) item, core::max_position of the
/// result out[item] over the bag's positions.
template <class A, class I, class Tab>
BITEXACT_HD void bag_max_positions_body(const thread_index& ti, const A* out, bag_rows<A, I, Tab> rows, const I* offsets,
                                        std::uint64_t n_bags, std::uint64_t n_indices, std::int64_t* max_positions) {
  const std::uint64_t width = rows.width;
  for (std::uint64_t item = ti.global(); item < n_bags * width; item += ti.threads()) {
    const std::uint64_t b = item / width, c = item % width;
    max_positions[item] = core::max_position(out[item], static_cast<std::uint64_t>(offsets[b]),
                                             bag_end(offsets, b, n_bags, n_indices),
                                             [&](std::uint64_t j) { return rows(j, c); });
  }
}

/// embedding_bag_max_backward: target[s] = core::max_backward_target(...).cell for s < m;
/// *first_bad = min(*first_bad, lowest s whose status is not ok).
template <class I>
BITEXACT_HD void max_backward_targets_body(const thread_index& ti, const std::int64_t* max_positions, std::uint64_t m,
                                           const I* indices, std::uint64_t n_indices, std::uint64_t n_rows,
                                           std::uint64_t width, std::uint64_t* target, unsigned long long* first_bad) {
  for (std::uint64_t s = ti.global(); s < m; s += ti.threads()) {
    const core::max_target k = core::max_backward_target(max_positions[s], s, indices, n_indices, n_rows, width);
    if (k.status != core::max_target_status::ok) {
      atomic_min_position(first_bad, s);
      return;
    }
    target[s] = k.cell;
  }
}

using ::bitexact::detail::check_bag_arguments;
using ::bitexact::detail::check_histogram_arguments;

/// Calls fn(combine) with the (+) of op: plus (sum, mean), multiplies, maximum, minimum.
template <class Fn>
void with_combine(scatter_op op, Fn fn) {
  switch (op) {
    case scatter_op::prod: fn(core::multiplies{}); break;
    case scatter_op::max: fn(core::maximum{}); break;
    case scatter_op::min: fn(core::minimum{}); break;
    default: fn(core::plus{}); break;
  }
}

/// Whether op runs as an exact sum under tier t (sum and mean; max/min are order-independent
/// and run the same in both tiers; prod has no exact tier and is refused by the callers).
inline bool exact_sum_op(scatter_op op, tier t) {
  return t == tier::exact && (op == scatter_op::sum || op == scatter_op::mean);
}

using core::empty_segment_value;


/// How a pipeline call differs from index_add's: `presorted` - the keys are already
/// non-decreasing (bag ids of embedding bags), so the stable sort is the identity and is
/// skipped; `kept` - targets at or above it are dropped (sorted_view::dropped).
struct pipeline_options {
  bool presorted = false;
  std::uint64_t kept = ~std::uint64_t(0);
};

/// Sort key and position type: 32-bit when both the positions and the targets fit.
template <class Fn>
auto with_index_type(std::uint64_t n, std::uint64_t n_out, Fn fn) {
  if (n < (std::uint64_t(1) << 32) && n_out <= (std::uint64_t(1) << 32)) return fn(std::uint32_t{});
  return fn(std::uint64_t{});
}

/// Bits of the sort key: enough for n_out - 1 (at least 1; with n_out == 0 every index is
/// invalid and nothing is sorted).
inline int key_bits(std::uint64_t n_out) {
  int b = 1;
  while (n_out > 1 && b < 64 && ((n_out - 1) >> b) != 0) ++b;
  return b;
}

/// The index_error of position p (value v) of an op with bound `bound`.
template <class I>
index_error make_index_error(const char* what, std::uint64_t p, I v, std::uint64_t bound) {
  return index_error(::bitexact::detail::index_error_message(what, static_cast<long long>(v), p, bound),
                     static_cast<std::size_t>(p), static_cast<std::int64_t>(v), static_cast<std::size_t>(bound));
}

}  // namespace scatter_detail

// ------------------------------------------------------------------------------------------
// CPU emulation of the CUDA pipeline (tests, bitexact-audit): the same bodies under
// emulate_launch, with the sort and the scan done by the host's std::stable_sort and a
// sequential prefix sum.
// ------------------------------------------------------------------------------------------
namespace emulate {

/// The sorted layout and its runs, as the device passes 2-6 leave them.
template <class U>
struct runs_layout {
  std::vector<U> key, pos, run_begin;
  U run_count = 0;
  std::uint64_t kept = ~std::uint64_t(0);
  scatter_detail::sorted_view<U> view() const { return {key.data(), pos.data(), key.size(), kept}; }
};

/// Passes 1: the lowest bad position, or no_bad_position.
template <class I>
unsigned long long first_bad_position(launch_shape shape, block_order order, const I* idx, std::uint64_t n,
                                      std::uint64_t bound) {
  unsigned long long bad = scatter_detail::no_bad_position;
  emulate_launch(shape, [&](const thread_index& ti) { scatter_detail::validate_body(ti, idx, n, bound, &bad); }, order);
  return bad;
}

/// Passes 2-6 (n > 0, indices validated).
template <class U, class I>
runs_layout<U> build_runs(launch_shape shape, block_order order, const I* idx, std::uint64_t n,
                          scatter_detail::pipeline_options opt = {}) {
  runs_layout<U> L;
  L.kept = opt.kept;
  std::vector<U> key(n), pos(n);
  emulate_launch(shape, [&](const thread_index& ti) { scatter_detail::make_pairs_body(ti, idx, n, key.data(), pos.data()); },
                 order);
  if (opt.presorted) {  // the device skips the sort too
    L.key = std::move(key);
    L.pos = std::move(pos);
  } else {
    std::vector<std::size_t> perm(n);
    std::iota(perm.begin(), perm.end(), std::size_t(0));
    std::stable_sort(perm.begin(), perm.end(), [&](std::size_t a, std::size_t b) { return key[a] < key[b]; });
    L.key.resize(n);
    L.pos.resize(n);
    for (std::size_t q = 0; q < n; ++q) {
      L.key[q] = key[perm[q]];
      L.pos[q] = pos[perm[q]];
    }
  }
  std::vector<U> flag(n), run_id(n);
  emulate_launch(shape, [&](const thread_index& ti) { scatter_detail::run_flags_body(ti, L.view(), flag.data()); }, order);
  U acc = 0;
  for (std::size_t q = 0; q < n; ++q) {
    run_id[q] = acc;
    acc = static_cast<U>(acc + flag[q]);
  }
  L.run_begin.assign(n + 1, U(0));
  emulate_launch(
      shape,
      [&](const thread_index& ti) {
        scatter_detail::run_begin_body(ti, L.view(), run_id.data(), L.run_begin.data(), &L.run_count);
      },
      order);
  return L;
}

/// Passes 7-8 (or 8') for n > 0 after validation: fixed_order runs the run partials and the
/// chunk tree with `combine` and calls fixed_apply; exact runs the exact sums with `start`
/// (nullable) and calls exact_apply.
template <class A, class I, class ValueOf, class Combine, class FixedApply, class ExactApply>
void combine_pipeline(launch_shape shape, block_order order, std::size_t n_out, std::size_t width, const I* idx,
                      std::size_t n, bool exact, ValueOf value, Combine combine, FixedApply fixed_apply,
                      const A* start, ExactApply exact_apply, scatter_detail::pipeline_options opt = {},
                      bool wide_layout = false) {
  // wide_layout forces the 64-bit keys and positions the device uses for n >= 2^32 or
  // n_out > 2^32, so that tests run that layout on small problems.
  auto with_layout = [&](auto body) {
    if (wide_layout) return body(std::uint64_t{});
    return scatter_detail::with_index_type(n, n_out, body);
  };
  with_layout([&](auto u) {
    using U = decltype(u);
    const runs_layout<U> L = build_runs<U>(shape, order, idx, n, opt);
    if (exact) {
      using slots_t = scatter_detail::exact_slots<A>;
      const std::uint64_t n_slots = slots_t::count(n, width);
      std::vector<unsigned long long> digits(static_cast<std::size_t>(n_slots * slots_t::digits_per_slot), 0);
      std::vector<unsigned int> flags(static_cast<std::size_t>(n_slots), 0);
      const slots_t slots{digits.data(), flags.data()};
      emulate_launch(
          shape,
          [&](const thread_index& ti) {
            scatter_detail::exact_heavy_runs_body<A>(ti, L.view(), L.run_begin.data(), &L.run_count, width, value, slots);
          },
          order);
      emulate_launch(
          shape,
          [&](const thread_index& ti) {
            scatter_detail::exact_target_body<A>(ti, L.view(), L.run_begin.data(), &L.run_count, width, value, start,
                                                 slots, exact_apply);
          },
          order);
      return 0;
    }
    std::vector<A> partial(static_cast<std::size_t>(L.run_count) * width);
    emulate_launch(
        shape,
        [&](const thread_index& ti) {
          scatter_detail::run_partials_body<A>(ti, L.view(), L.run_begin.data(), &L.run_count, width, value, combine,
                                               partial.data());
        },
        order);
    emulate_launch(
        shape,
        [&](const thread_index& ti) {
          scatter_detail::target_combine_body<A>(ti, L.view(), L.run_begin.data(), &L.run_count, width, partial.data(),
                                                 combine, fixed_apply);
        },
        order);
    return 0;
  });
}

/// Pass 1 on the emulation: throws index_error for the lowest bad position.
template <class I>
void validate(launch_shape shape, block_order order, const char* what, const I* idx, std::size_t n,
              std::size_t bound) {
  const unsigned long long bad = first_bad_position(shape, order, idx, n, bound);
  if (bad != scatter_detail::no_bad_position) throw scatter_detail::make_index_error(what, bad, idx[bad], bound);
}

/// index_add_rows through the emulated pipeline: out[idx[i], :] += src[i, :] in the tier's
/// semantics (reference::index_add_rows). Throws index_error (nothing written) for a bad index.
template <class T, class I>
void index_add_rows(core::accumulation_t<T>* out, std::size_t n_out, std::size_t width, const I* idx, const T* src,
                    std::size_t n, tier t, launch_shape shape, block_order order = block_order::shuffled,
                    bool wide_layout = false) {
  using A = core::accumulation_t<T>;
  if (n == 0) return;
  validate(shape, order, width == 1 ? "index_add" : "index_add_rows", idx, n, n_out);
  combine_pipeline<A>(shape, order, n_out, width, idx, n, t == tier::exact, scatter_detail::row_values<T>{src, width},
                      core::plus{}, scatter_detail::add_into<A>{out, width}, out,
                      scatter_detail::store_into<A>{out, width}, {}, wide_layout);
}

/// index_add (1-D) through the emulated pipeline (reference::index_add_fixed_order / _exact).
template <class T, class I>
void index_add(core::accumulation_t<T>* out, std::size_t n_out, const I* idx, const T* src, std::size_t n, tier t,
               launch_shape shape, block_order order = block_order::shuffled) {
  index_add_rows(out, n_out, 1, idx, src, n, t, shape, order);
}

/// scatter_reduce through the emulated pipeline (reference::scatter_reduce).
template <class A, class I>
void scatter_reduce(A* out, std::size_t n_out, const I* idx, const A* src, std::size_t n, scatter_op op,
                    bool include_self, tier t, launch_shape shape, block_order order = block_order::shuffled) {
  if (n == 0) return;
  if (t == tier::exact && op == scatter_op::prod)
    throw std::invalid_argument("bitexact::scatter_reduce: prod has no exact tier (use tier::fixed_order)");
  validate(shape, order, "scatter_reduce", idx, n, n_out);
  const bool mean = op == scatter_op::mean;
  const std::uint64_t extra = include_self ? 1 : 0;
  scatter_detail::with_combine(op, [&](auto combine) {
    using C = decltype(combine);
    combine_pipeline<A>(shape, order, n_out, 1, idx, n, scatter_detail::exact_sum_op(op, t),
                        scatter_detail::row_values<A>{src, 1}, combine,
                        scatter_detail::reduce_into<A, C>{out, 1, combine, include_self, mean, extra},
                        include_self ? out : nullptr, scatter_detail::reduce_into<A, C>{out, 1, combine, false, mean, extra});
  });
}

/// segment_reduce through the emulated pipeline (reference::segment_reduce): every segment is
/// written, empty ones with the empty value.
template <class D, class I>
void segment_reduce(core::accumulation_t<D>* out, std::size_t num_segments, const I* ids, const D* data, std::size_t n,
                    scatter_op op, tier t, launch_shape shape, block_order order = block_order::shuffled,
                    const char* what = "segment_reduce") {
  using A = core::accumulation_t<D>;
  if (t == tier::exact && op == scatter_op::prod)
    throw std::invalid_argument(std::string("bitexact::") + what + ": prod has no exact tier (use tier::fixed_order)");
  validate(shape, order, what, ids, n, num_segments);
  const A empty = scatter_detail::empty_segment_value<A>(op);
  emulate_launch(shape, [&](const thread_index& ti) { scatter_detail::fill_body(ti, out, num_segments, empty); }, order);
  if (n == 0) return;
  const bool mean = op == scatter_op::mean;
  scatter_detail::with_combine(op, [&](auto combine) {
    using C = decltype(combine);
    const scatter_detail::reduce_into<A, C> apply{out, 1, combine, false, mean, 0};
    combine_pipeline<A>(shape, order, num_segments, 1, ids, n, scatter_detail::exact_sum_op(op, t),
                        scatter_detail::row_values<D>{data, 1}, combine, apply, static_cast<const A*>(nullptr), apply);
  });
}

/// Weighted bincount through the emulated pipeline: segment_reduce with scatter_op::sum.
template <class A, class I>
void bincount(A* out, std::size_t n_bins, const I* idx, const A* weights, std::size_t n, tier t, launch_shape shape,
              block_order order = block_order::shuffled) {
  if (n > 0 && weights == nullptr)
    throw std::invalid_argument("bitexact::bincount: null weights with n > 0 (use the count overload)");
  segment_reduce(out, n_bins, idx, weights, n, scatter_op::sum, t, shape, order, "bincount");
}

/// Unweighted bincount: out[b] = number of i with idx[i] == b (integer atomics).
template <class I>
void bincount(std::int64_t* out, std::size_t n_bins, const I* idx, std::size_t n, launch_shape shape,
              block_order order = block_order::shuffled) {
  validate(shape, order, "bincount", idx, n, n_bins);
  std::vector<unsigned long long> counts(n_bins, 0);
  emulate_launch(shape, [&](const thread_index& ti) { scatter_detail::count_body(ti, idx, n, counts.data()); }, order);
  for (std::size_t b = 0; b < n_bins; ++b) out[b] = static_cast<std::int64_t>(counts[b]);
}

/// histogram through the emulated pipeline (reference::histogram): the bins, then a sum per
/// bin over n_bins + 1 targets whose last (the ignored values) is dropped.
template <class A>
void histogram(A* out, std::size_t n_bins, A lo, A hi, const A* x, const A* weights, std::size_t n, tier t,
               launch_shape shape, block_order order = block_order::shuffled) {
  scatter_detail::check_histogram_arguments("histogram", n_bins, lo, hi, out, x, n);
  emulate_launch(shape, [&](const thread_index& ti) { scatter_detail::fill_body(ti, out, n_bins, A(0)); }, order);
  if (n == 0) return;
  std::vector<std::uint64_t> bin(n);
  emulate_launch(
      shape, [&](const thread_index& ti) { scatter_detail::histogram_bins_body(ti, x, n, lo, hi, n_bins, bin.data()); },
      order);
  const scatter_detail::reduce_into<A, core::plus> apply{out, 1, core::plus{}, false, false, 0};
  scatter_detail::pipeline_options opt;
  opt.kept = n_bins;
  auto run = [&](auto values) {
    combine_pipeline<A>(shape, order, n_bins + 1, 1, bin.data(), n, t == tier::exact, values, core::plus{}, apply,
                        static_cast<const A*>(nullptr), apply, opt);
  };
  if (weights) run(scatter_detail::row_values<A>{weights, 1});
  else run(scatter_detail::unit_values<A>{});
}

/// Indices against n_rows (index_error) and offsets (std::invalid_argument), in that order,
/// like the CPU; returns bag_of for n_indices > 0.
template <class I>
std::vector<std::uint64_t> validate_bags(launch_shape shape, block_order order, const char* what, const I* indices,
                                         std::size_t n_indices, std::size_t n_rows, const I* offsets,
                                         std::size_t n_bags) {
  validate(shape, order, what, indices, n_indices, n_rows);
  unsigned long long bad = scatter_detail::no_bad_position;
  emulate_launch(
      shape, [&](const thread_index& ti) { scatter_detail::bag_offsets_check_body(ti, offsets, n_bags, n_indices, &bad); },
      order);
  if (bad != scatter_detail::no_bad_position) throw ::bitexact::detail::bad_offsets_error(what, bad);
  std::vector<std::uint64_t> bag_of(n_indices);
  emulate_launch(
      shape, [&](const thread_index& ti) { scatter_detail::bag_of_body(ti, offsets, n_bags, n_indices, bag_of.data()); },
      order);
  return bag_of;
}

/// embedding_bag forward through the emulated pipeline (reference::embedding_bag): the bag
/// ids are the keys, already sorted.
template <class A, class I, class Tab>
void embedding_bag(A* out, const Tab* table, std::size_t n_rows, std::size_t width, const I* indices,
                   std::size_t n_indices, const I* offsets, std::size_t n_bags, bag_mode mode, const A* weights, tier t,
                   launch_shape shape, block_order order = block_order::shuffled) {
  static_assert(std::is_same<A, core::accumulation_t<Tab>>::value, "embedding_bag: out is the table's accumulation type");
  scatter_detail::check_bag_arguments("embedding_bag", width, n_bags, n_indices, out, offsets, indices, table,
                                      weights != nullptr, mode);
  const std::vector<std::uint64_t> bag_of =
      validate_bags(shape, order, "embedding_bag", indices, n_indices, n_rows, offsets, n_bags);
  emulate_launch(shape, [&](const thread_index& ti) { scatter_detail::fill_body(ti, out, n_bags * width, A(0)); }, order);
  if (n_indices == 0) return;
  scatter_detail::pipeline_options opt;
  opt.presorted = true;
  const bool max = mode == bag_mode::max, mean = mode == bag_mode::mean;
  auto run = [&](auto combine, auto values) {
    using C = decltype(combine);
    const scatter_detail::reduce_into<A, C> apply{out, width, combine, false, mean, 0};
    combine_pipeline<A>(shape, order, n_bags, width, bag_of.data(), n_indices, t == tier::exact && !max, values,
                        combine, apply, static_cast<const A*>(nullptr), apply, opt);
  };
  if (max) run(core::maximum{}, scatter_detail::bag_rows<A, I, Tab>{table, indices, width});
  else if (weights) run(core::plus{}, scatter_detail::weighted_bag_rows<A, I, Tab>{table, indices, width, weights});
  else run(core::plus{}, scatter_detail::bag_rows<A, I, Tab>{table, indices, width});
}

/// embedding_bag_max with the selected positions (bitexact::embedding_bag_max).
template <class A, class I, class Tab>
void embedding_bag_max(A* out, std::int64_t* max_positions, const Tab* table, std::size_t n_rows, std::size_t width,
                       const I* indices, std::size_t n_indices, const I* offsets, std::size_t n_bags,
                       launch_shape shape, block_order order = block_order::shuffled) {
  if (n_bags > 0 && max_positions == nullptr)
    throw std::invalid_argument("bitexact::embedding_bag_max: null max_positions with bags");
  embedding_bag(out, table, n_rows, width, indices, n_indices, offsets, n_bags, bag_mode::max,
                static_cast<const A*>(nullptr), tier::fixed_order, shape, order);
  emulate_launch(
      shape,
      [&](const thread_index& ti) {
        scatter_detail::bag_max_positions_body(ti, out, scatter_detail::bag_rows<A, I, Tab>{table, indices, width}, offsets,
                                               n_bags, n_indices, max_positions);
      },
      order);
}

/// embedding_bag_backward (sum, mean) through the emulated pipeline
/// (reference::embedding_bag_backward): the row form of index_add with contributions computed
/// from grad_out on the fly.
template <class A, class I>
void embedding_bag_backward(A* grad_table, std::size_t n_rows, std::size_t width, const A* grad_out, const I* indices,
                            std::size_t n_indices, const I* offsets, std::size_t n_bags, bag_mode mode,
                            const A* weights, tier t, launch_shape shape, block_order order = block_order::shuffled) {
  const char* what = "embedding_bag_backward";
  if (mode == bag_mode::max)
    throw std::invalid_argument("bitexact::embedding_bag_backward: max mode: use embedding_bag_max and embedding_bag_max_backward");
  scatter_detail::check_bag_arguments(what, width, n_bags, n_indices, grad_out, offsets, indices, grad_table,
                                      weights != nullptr, mode);
  const std::vector<std::uint64_t> bag_of = validate_bags(shape, order, what, indices, n_indices, n_rows, offsets, n_bags);
  if (n_indices == 0) return;
  const scatter_detail::bag_gradients<A, I> values{grad_out, bag_of.data(), offsets, n_bags, n_indices,
                                                   width,    weights,       mode == bag_mode::mean};
  combine_pipeline<A>(shape, order, n_rows, width, indices, n_indices, t == tier::exact, values, core::plus{},
                      scatter_detail::add_into<A>{grad_table, width}, grad_table,
                      scatter_detail::store_into<A>{grad_table, width});
}

/// embedding_bag_max_backward through the emulated pipeline (bitexact::embedding_bag_max_backward):
/// the 1-D index_add of grad_out into the recorded cells, empty bags into a dropped sentinel.
template <class A, class I>
void embedding_bag_max_backward(A* grad_table, std::size_t n_rows, std::size_t width, const A* grad_out,
                                const I* indices, std::size_t n_indices, const std::int64_t* max_positions,
                                std::size_t n_bags, tier t, launch_shape shape, block_order order = block_order::shuffled) {
  const char* what = "embedding_bag_max_backward";
  if (width == 0) throw std::invalid_argument("bitexact::embedding_bag_max_backward: width must be > 0");
  const std::size_t m = n_bags * width, cells = n_rows * width;
  if (m == 0) return;
  std::vector<std::uint64_t> target(m);
  unsigned long long bad = scatter_detail::no_bad_position;
  emulate_launch(
      shape,
      [&](const thread_index& ti) {
        scatter_detail::max_backward_targets_body(ti, max_positions, m, indices, n_indices, n_rows, width, target.data(),
                                                  &bad);
      },
      order);
  if (bad != scatter_detail::no_bad_position) {
    const core::max_target k = core::max_backward_target(max_positions[bad], bad, indices, n_indices, n_rows, width);
    ::bitexact::detail::throw_max_target_error(
        what, k.status, bad, max_positions[bad],
        k.status == core::max_target_status::bad_index ? static_cast<long long>(indices[max_positions[bad]]) : 0, n_rows);
  }
  scatter_detail::pipeline_options opt;
  opt.kept = cells;
  combine_pipeline<A>(shape, order, cells + 1, 1, target.data(), m, t == tier::exact,
                      scatter_detail::row_values<A>{grad_out, 1}, core::plus{}, scatter_detail::add_into<A>{grad_table, 1},
                      grad_table, scatter_detail::store_into<A>{grad_table, 1}, opt);
}

}  // namespace emulate
}  // namespace cuda
}  // namespace bitexact
