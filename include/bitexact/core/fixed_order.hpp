// bitexact/core/fixed_order.hpp - the canonical order of every fixed_order reduction.
//
// A reduction of n values v[0..n) (v[i] = x[i] for sum, x[i]*y[i] rounded for dot, ...) in the
// accumulation type A (float or double) is defined as:
//
//   1. Leaves. v is cut into leaves of L = fixed_order_shape<A>::leaf values: leaf j covers
//      [j*L, min((j+1)*L, n)).
//   2. Virtual lanes. Inside a leaf, value i goes to lane (i - leaf start) mod W, with
//      W = fixed_order_shape<A>::lanes. Each lane starts at -0.0 (the additive identity, so a
//      sum of -0.0 stays -0.0) and adds its values in increasing index: lane = lane + v.
//   3. Lane tree. The W lanes combine by halving: for w = W/2, W/4, ..., 1:
//      lane[l] = lane[l] + lane[l + w] for l < w. lane[0] is the leaf's value.
//   4. Leaf tree. Leaf values combine in the aligned pairwise tree: node (level k, index i)
//      covers leaves [i*2^k, (i+1)*2^k); its value is left + right, or left alone when the
//      right child holds no leaf. The root is the result. (tree_stack computes it in one pass.)
//
// W and L are constants of the order (version reduce_order_version), never of the ISA, thread
// count or GPU: W is 256 bytes of lanes (16 AVX-512 float lanes x 4 accumulators, 8 AVX2 x 8,
// one warp x 2), L = 64 W. Threads and CUDA blocks take aligned groups of 2^p leaves, which are
// subtrees of the leaf tree, so any partition computes the same operations.
#pragma once
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "config.hpp"

namespace bitexact {

/// Version of the canonical order of the reduction family (sum, dot, norms, row-wise ops).
/// Bumped, and called out in CHANGELOG.md, whenever any result bit changes.
inline constexpr int reduce_order_version = 1;

namespace core {

template <class A>
struct fixed_order_shape;
template <>
struct fixed_order_shape<float> {
  static constexpr std::size_t lanes = 64;
  static constexpr std::size_t leaf = 4096;
};
template <>
struct fixed_order_shape<double> {
  static constexpr std::size_t lanes = 32;
  static constexpr std::size_t leaf = 2048;
};

/// The additive identity that keeps -0.0 + -0.0 = -0.0.
template <class A>
BITEXACT_HD constexpr A negative_zero() {
  return -A(0);
}

/// Step 3: halving tree over W lanes held in an array (W a power of two). Destroys `lane`.
template <class A, std::size_t W>
BITEXACT_HD A combine_lanes(A (&lane)[W]) {
  static_assert(W != 0 && (W & (W - 1)) == 0, "lane count must be a power of two");
  for (std::size_t w = W / 2; w >= 1; w /= 2)
    for (std::size_t l = 0; l < w; ++l) lane[l] = lane[l] + lane[l + w];
  return lane[0];
}

/// Step 4 in one pass: push leaf values in order, then finish(). Equivalent to the aligned
/// pairwise tree (a binary counter: two nodes of equal level merge as soon as both exist).
/// `Combine` is the node operation, for sums `a + b`. Holds up to 2^64 leaves.
/// The node operation of sums.
struct plus {
  template <class A>
  BITEXACT_HD A operator()(const A& a, const A& b) const {
    return a + b;
  }
};

template <class A, class Combine = plus>
class tree_stack {
 public:
  BITEXACT_HD tree_stack() {}
  BITEXACT_HD explicit tree_stack(Combine c) : combine_(c) {}

  /// Push the value of a subtree of 2^level leaves. Pushes must arrive in leaf order and each
  /// must be aligned (a level-k push starts at a multiple of 2^k leaves): leaves are level 0;
  /// a thread that reduced an aligned group of 2^p leaves pushes it at level p.
  BITEXACT_HD void push(A v, int level = 0) {
    while (size_ > 0 && level_[size_ - 1] == level) {
      v = op(value_[size_ - 1], v);
      --size_;
      ++level;
    }
    value_[size_] = v;
    level_[size_] = static_cast<unsigned char>(level);
    ++size_;
  }
  BITEXACT_HD bool empty() const { return size_ == 0; }
  /// The root. An incomplete tree's right spine combines right to left (left + right).
  BITEXACT_HD A finish() const {
    A v = value_[size_ - 1];
    for (int i = size_ - 2; i >= 0; --i) v = op(value_[i], v);
    return v;
  }

 private:
  BITEXACT_HD A op(const A& a, const A& b) const { return combine_(a, b); }

  Combine combine_{};
  A value_[65];
  unsigned char level_[65];
  int size_ = 0;
};

/// The aligned pairwise tree over a sparse set of leaves: push (position, value) in increasing
/// position; absent leaves count as the identity (-0.0 for sums, which x + -0.0 = x makes
/// exact to skip). Equal to tree_stack with the absent leaves pushed as the identity: two
/// neighbouring values combine at the level of their lowest common aligned node,
/// bit_length(p ^ q), deepest first.
template <class A, class Combine = plus>
class sparse_tree_stack {
 public:
  BITEXACT_HD sparse_tree_stack() {}
  BITEXACT_HD explicit sparse_tree_stack(Combine c) : combine_(c) {}

  BITEXACT_HD void push(std::uint64_t position, A v) {
    if (size_ > 0) {
      const int lca = bit_length(last_ ^ position);
      while (size_ >= 2 && gap_[size_ - 2] < lca) {
        value_[size_ - 2] = combine_(value_[size_ - 2], value_[size_ - 1]);
        --size_;
      }
      gap_[size_ - 1] = static_cast<unsigned char>(lca);
    }
    value_[size_++] = v;
    last_ = position;
  }
  BITEXACT_HD bool empty() const { return size_ == 0; }
  /// The root (requires at least one push).
  BITEXACT_HD A finish() const {
    A v = value_[size_ - 1];
    for (int i = size_ - 2; i >= 0; --i) v = combine_(value_[i], v);
    return v;
  }

 private:
  BITEXACT_HD static int bit_length(std::uint64_t x) {
    if (x == 0) return 0;
#if defined(__CUDA_ARCH__)
    return 64 - __clzll(static_cast<long long>(x));
#elif defined(__GNUC__) || defined(__clang__)
    return 64 - __builtin_clzll(x);
#else
    int n = 0;
    while (x) {
      ++n;
      x >>= 1;
    }
    return n;
#endif
  }
  Combine combine_{};
  A value_[66];
  unsigned char gap_[66];
  int size_ = 0;
  std::uint64_t last_ = 0;
};

/// Number of leaves and the thread/block grouping: groups of 2^group_level leaves, chosen from
/// the leaf count alone so that there are at most max_groups groups.
struct leaf_grouping {
  std::uint64_t leaves;
  int group_level;
  BITEXACT_HD std::uint64_t group_leaves() const { return std::uint64_t(1) << group_level; }
  BITEXACT_HD std::uint64_t groups() const {
    return leaves == 0 ? 0 : ((leaves - 1) >> group_level) + 1;
  }
};
BITEXACT_HD inline leaf_grouping group_leaves(std::uint64_t n, std::uint64_t leaf,
                                              std::uint64_t max_groups = 256) {
  leaf_grouping g{n == 0 ? 0 : (n - 1) / leaf + 1, 0};
  while (g.groups() > max_groups) ++g.group_level;
  return g;
}

}  // namespace core
}  // namespace bitexact
