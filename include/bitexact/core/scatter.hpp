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

#include "config.hpp"
#include "fixed_order.hpp"

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
