// bitexact/core/scatter.hpp - the canonical order of every fixed_order scatter-style op.
//
// A scatter combines, for each target t, the contributions c(i) of the source positions i
// that map to t (index_add: idx[i] == t; segment ops: segment_ids[i] == t; embedding bags:
// the positions j of bag t). Their canonical combination S_t is defined by source position:
//
//   1. Chunks. Source positions are cut into chunks of scatter_chunk = 4096 consecutive
//      positions: position i is in chunk i / 4096.
//   2. Inside a chunk, the contributions to t combine sequentially in increasing position:
//      p = c(i1); p = p (+) c(i2); ...   (i1 < i2 < ... all in the chunk, all mapping to t)
//   3. The chunk partials of t combine by the aligned pairwise tree over chunk numbers
//      (core/fixed_order.hpp, sparse_tree_stack): chunks without a contribution to t are
//      absent, which is exact because they would be the identity of (+).
//   4. The op then applies S_t once, e.g. index_add: out[t] = out[t] + S_t; a target with no
//      contribution is left untouched.
//
// (+) is + for sums, * for products, and the max/min of the op for max/min. Threads and CUDA
// blocks take aligned groups of chunks (subtrees), so any partition computes the same
// operations. The chunk size is a constant of the order (scatter_order_version).
#pragma once
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "config.hpp"
#include "exact.hpp"
#include "fixed_order.hpp"
#include "math.hpp"

namespace bitexact {

/// Version of the canonical order of the scatter family. Bumped, and called out in
/// CHANGELOG.md, whenever any result bit changes.
inline constexpr int scatter_order_version = 1;

/// The reduction of scatter_reduce and segment_reduce.
enum class scatter_op { sum, prod, mean, max, min };

/// How embedding_bag combines the rows of a bag.
enum class bag_mode { sum, mean, max };

namespace core {

inline constexpr std::uint64_t scatter_chunk = 4096;

/// (+) of products.
struct multiplies {
  template <class A>
  BITEXACT_HD A operator()(const A& a, const A& b) const {
    return a * b;
  }
};

namespace detail {
template <class A>
BITEXACT_HD bool negative_bits(A x) {
  unsigned char b[sizeof(A)];
  std::memcpy(b, &x, sizeof(A));
  return (b[sizeof(A) - 1] & 0x80) != 0;  // little-endian hosts and devices
}
/// Whether a and b have the same bits (memcpy, not memcmp: device code has no memcmp).
template <class A>
BITEXACT_HD bool same_bits(A a, A b) {
  using B = typename std::conditional<sizeof(A) == 4, std::uint32_t, std::uint64_t>::type;
  static_assert(sizeof(A) == sizeof(B), "float or double");
  B x, y;
  std::memcpy(&x, &a, sizeof(A));
  std::memcpy(&y, &b, sizeof(A));
  return x == y;
}
BITEXACT_HD inline float canonical_nan_of(float) {
  const std::uint32_t u = 0x7fc00000u;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
BITEXACT_HD inline double canonical_nan_of(double) {
  const std::uint64_t u = 0x7ff8000000000000ull;
  double f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
}  // namespace detail

/// NaN results of the scatter family are the canonical quiet NaN: IEEE leaves the payload
/// of x + NaN (and the sign of Inf - Inf) to the hardware, and x86 and GPUs differ.
template <class A>
BITEXACT_HD A canonicalize(A x) {
  return x != x ? detail::canonical_nan_of(x) : x;
}

/// max with defined special cases: any NaN gives the canonical quiet NaN; +0 is above -0.
/// Commutative and associative, so its result never depends on the order.
struct maximum {
  template <class A>
  BITEXACT_HD A operator()(const A& a, const A& b) const {
    if (a != a || b != b) return detail::canonical_nan_of(a);
    if (a == b) return detail::negative_bits(a) ? b : a;
    return a > b ? a : b;
  }
};
/// min with defined special cases: any NaN gives the canonical quiet NaN; -0 is below +0.
struct minimum {
  template <class A>
  BITEXACT_HD A operator()(const A& a, const A& b) const {
    if (a != a || b != b) return detail::canonical_nan_of(a);
    if (a == b) return detail::negative_bits(a) ? a : b;
    return a < b ? a : b;
  }
};

/// The value of an empty segment of segment_reduce (the identity of its op): sum/mean +0,
/// prod 1, max -Inf, min +Inf.
template <class A>
BITEXACT_HD A empty_segment_value(scatter_op op) {
  switch (op) {
    case scatter_op::prod: return A(1);
    case scatter_op::max: return -std::numeric_limits<A>::infinity();
    case scatter_op::min: return std::numeric_limits<A>::infinity();
    default: return A(0);
  }
}

/// A contribution that is the product a * b of two values: the exact tier adds the exact
/// product (exact_accumulator::add_product), fixed_order the rounded product mul_rn(a, b)
/// (term_value). Used by weighted embedding bags.
template <class A>
struct product_term {
  A a, b;
};

/// The value fixed_order combines for a contribution: the value itself, or the rounded
/// (never fused) product.
template <class A>
BITEXACT_HD A term_value(A x) {
  return x;
}
template <class A>
BITEXACT_HD A term_value(product_term<A> x) {
  return mul_rn(x.a, x.b);
}

/// Adds a contribution exactly.
template <class A>
BITEXACT_HD void add_term(exact_accumulator<A>& acc, A x) {
  acc.add(x);
}
template <class A>
BITEXACT_HD void add_term(exact_accumulator<A>& acc, product_term<A> x) {
  acc.add_product(x.a, x.b);
}

namespace detail {
/// A contribution as one double that holds it exactly, if there is one: every float and
/// double, and a product of two floats (48 significand bits, exponents within double's
/// range). A product of doubles has none (ok = false).
struct exact_double {
  double v;
  bool ok;
};
BITEXACT_HD inline exact_double as_exact_double(float x) { return {double(x), true}; }
BITEXACT_HD inline exact_double as_exact_double(double x) { return {x, true}; }
BITEXACT_HD inline exact_double as_exact_double(product_term<float> x) { return {double(x.a) * double(x.b), true}; }
BITEXACT_HD inline exact_double as_exact_double(product_term<double>) { return {0.0, false}; }
}  // namespace detail

/// The exact tier's value of one target: the correctly rounded value in A of (start +) the
/// exact sum of term(0) .. term(count - 1), each an A or a product_term<A> - the same bits as
/// an exact_accumulator fed with them and rounded, signed zeros, Inf and NaN included. The
/// common case needs no accumulator: when every term is a finite double and the running sum
/// in double never rounds (every TwoSum error is zero) and stays finite, that sum is the exact
/// sum, rounded once to A. Otherwise the accumulator decides.
template <class A, class Terms>
BITEXACT_HD A exact_sum_with_start(A start, bool has_start, std::uint64_t count, Terms term) {
  double s = has_start ? double(start) : 0.0;
  bool fast = !has_start || (start - start == A(0));
  bool any_non_negzero = has_start && !(start == A(0) && detail::negative_bits(start));
  for (std::uint64_t k = 0; k < count && fast; ++k) {
    const detail::exact_double x = detail::as_exact_double(term(k));
    if (!x.ok || !(x.v - x.v == 0.0)) {
      fast = false;
      break;
    }
    const double t = s + x.v;
    const double bp = t - s;
    const double err = (s - (t - bp)) + (x.v - bp);
    if (err != 0.0 || !(t - t == 0.0)) fast = false;
    if (!(x.v == 0.0 && detail::negative_bits(x.v))) any_non_negzero = true;
    s = t;
  }
  if (fast) {
    if (s == 0.0) {  // the signed-zero rule of the exact accumulator
      const bool any = has_start || count > 0;
      return (any && !any_non_negzero) ? -A(0) : A(0);
    }
    return A(s);
  }
  exact_accumulator<A> acc;
  if (has_start) acc.add(start);
  for (std::uint64_t k = 0; k < count; ++k) add_term(acc, term(k));
  return acc.round();
}

/// The bin of value v in a histogram of n_bins equal bins over [lo, hi]:
/// floor((v - lo) / (hi - lo) * n_bins), computed in A with IEEE operations in that order (the
/// product rounded, never fused), v == hi in the last bin; n_bins (the ignored "bin") for NaN
/// and values outside [lo, hi].
template <class A>
BITEXACT_HD std::uint64_t histogram_bin(A v, A lo, A hi, std::uint64_t n_bins) {
  if (!(v >= lo && v <= hi)) return n_bins;
  const A f = mul_rn(static_cast<A>((v - lo) / (hi - lo)), static_cast<A>(n_bins));
  const std::uint64_t k = static_cast<std::uint64_t>(f);
  return k >= n_bins ? n_bins - 1 : k;
}

/// embedding_bag_max's recorded position for a result r: the lowest j in [begin, end) whose
/// value value_at(j) has r's bits (for a NaN r, the lowest j holding a NaN); -1 if there is
/// none (an empty bag).
template <class A, class ValueAt>
BITEXACT_HD std::int64_t max_position(A r, std::uint64_t begin, std::uint64_t end, ValueAt value_at) {
  for (std::uint64_t j = begin; j < end; ++j) {
    const A v = value_at(j);
    if ((r != r) ? (v != v) : detail::same_bits(v, r)) return static_cast<std::int64_t>(j);
  }
  return -1;
}

/// embedding_bag_max_backward's target for gradient element s = b * width + c: the table cell
/// indices[p] * width + c of its recorded position p = max_positions[s], or `cells`
/// (n_rows * width: a sentinel whose contributions are dropped) for an empty bag (p == -1).
/// status is ok, or why s is invalid.
enum class max_target_status { ok, bad_position, bad_index };
struct max_target {
  std::uint64_t cell;
  max_target_status status;
};
template <class I>
BITEXACT_HD max_target max_backward_target(std::int64_t p, std::uint64_t s, const I* indices, std::uint64_t n_indices,
                                           std::uint64_t n_rows, std::uint64_t width) {
  const std::uint64_t cells = n_rows * width;
  if (p < -1 || (p >= 0 && static_cast<std::uint64_t>(p) >= n_indices)) return {cells, max_target_status::bad_position};
  if (p == -1) return {cells, max_target_status::ok};
  const I row = indices[p];
  if constexpr (std::is_signed<I>::value) {
    if (row < I(0)) return {cells, max_target_status::bad_index};
  }
  if (static_cast<std::uint64_t>(row) >= n_rows) return {cells, max_target_status::bad_index};
  return {static_cast<std::uint64_t>(row) * width + s % width, max_target_status::ok};
}

/// Steps 2 and 3 for one target: push its contributions in increasing source position.
template <class A, class Combine = plus>
class scatter_combiner {
 public:
  BITEXACT_HD scatter_combiner() {}
  BITEXACT_HD explicit scatter_combiner(Combine c) : combine_(c), tree_(c) {}

  /// Whether positions first and last (first <= last) lie in one chunk: then S_t is the plain
  /// sequential combination, and callers may skip the combiner.
  BITEXACT_HD static bool same_chunk(std::uint64_t first, std::uint64_t last) {
    return first / scatter_chunk == last / scatter_chunk;
  }

  BITEXACT_HD void push(std::uint64_t position, A v) {
    const std::uint64_t chunk = position / scatter_chunk;
    if (has_ && chunk == chunk_) {
      partial_ = combine_(partial_, v);
      return;
    }
    if (has_) tree_.push(chunk_, partial_);
    partial_ = v;
    chunk_ = chunk;
    has_ = true;
  }
  /// Push a partial that already combines a whole chunk's contributions (step 2 done elsewhere).
  BITEXACT_HD void push_chunk_partial(std::uint64_t chunk, A partial) {
    if (has_) tree_.push(chunk_, partial_);
    partial_ = partial;
    chunk_ = chunk;
    has_ = true;
  }
  BITEXACT_HD bool empty() const { return !has_; }
  /// S_t (requires at least one push).
  BITEXACT_HD A finish() {
    tree_.push(chunk_, partial_);
    has_ = false;
    return tree_.finish();
  }

 private:
  // No initializers on the tree and the partial: a combiner per target must cost nothing
  // until it is used (has_ guards partial_, the tree's size_ guards its arrays).
  Combine combine_{};
  sparse_tree_stack<A, Combine> tree_;
  A partial_;
  std::uint64_t chunk_ = 0;
  bool has_ = false;
};

}  // namespace core
}  // namespace bitexact
