// bitexact/cuda/reduce_kernels.hpp - kernel logic of sum and dot, for CUDA and for emulation.
//
// Plain C++17 (compiles with g++ and nvcc). Every body is a BITEXACT_HD template over a block
// context (cuda/block_context.hpp): cuda/reduce.cuh instantiates it with the CUDA intrinsics,
// cuda/block_emulation.hpp runs the same text on the CPU with emulated barriers and shuffles.
//
// fixed_order tier: the canonical order of core/fixed_order.hpp, layered like CUB.
//   thread  A thread owns lanes t and t+32 (float: W = 64 lanes) or lane t (double: W = 32) of
//           a leaf and adds that lane's values in increasing index (stride W), starting at -0.0;
//           a float thread then adds lane t+32 into lane t (halving step W/2 = 32).
//   warp    One warp computes one leaf: the halving steps 16, 8, 4, 2, 1 of the lane tree are
//           exactly shfl_down 16, 8, 4, 2, 1. Lane 0 holds the leaf value.
//   block   A block takes aligned groups of 2^p leaves (grid-stride over groups, so any grid
//           size works). Inside a group, warp w of the first R = 2^floor(log2(warps)) warps
//           takes the aligned run of 2^p / R leaves (one leaf when 2^p < R) and combines its
//           leaf values with core::tree_stack; warp 0 then combines the warp values in shared
//           memory with the aligned pairwise tree (warp_aligned_tree). Group value -> global.
//   device  A second launch, one warp: lane l combines an aligned run of group values with
//           tree_stack, and warp_aligned_tree combines the lanes. The root is the result.
//   Every partial is the value of an aligned subtree of the canonical leaf tree (the last one
//   possibly incomplete, which the tree defines as "left alone"), so the result equals
//   reference::sum_fixed_order / dot_fixed_order bit for bit for any grid, any block
//   of at least 32 threads, and any group level p. The group level is chosen by the launcher
//   (fixed_order_grouping) and is not part of the order.
//
// exact tier: each thread adds its grid-stride elements into a core::exact_accumulator (order
//   free), normalizes it, and adds its 32-bit digits into the block's shared int64 digits with
//   atomicAdd (flags with atomicOr); thread 0 normalizes the block's digits, and the block adds
//   them into the global state (int64 digits + one flag word) with atomicAdd/atomicOr. Integer
//   addition commutes, so the state does not depend on which thread or block came first.
//   A one-thread launch rounds the state (exact_accumulator::from_digits(...).round()).
//   Overflow: a block adds normalized digits (< 2^32) from at most 1024 threads (< 2^42), and
//   the grid adds normalized block digits from fewer than 2^31 blocks, so no int64 overflows.
//
// Launch requirements (checked by validate_reduce_shape): block in [32, 1024] threads (any
// count: a trailing partial warp only meets the barriers), grid in [1, 2^31). The top body runs
// with one block of 32 threads, the finish bodies with one thread.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "../core/bfloat16.hpp"
#include "../core/config.hpp"
#include "../core/exact.hpp"
#include "../core/fixed_order.hpp"
#include "../core/math.hpp"
#include "../core/scatter.hpp"  // core::canonicalize
#include "block_context.hpp"
#include "launch.hpp"

namespace bitexact {
namespace cuda {

// ---------------------------------------------------------------------------------------------
// Values: what the reduction adds at index i.

/// sum: x[i] widened exactly to the accumulation type.
template <class T>
struct sum_values {
  using acc_type = core::accumulation_t<T>;
  const T* x;
  BITEXACT_HD acc_type operator()(std::uint64_t i) const { return acc_type(core::widen(x[i])); }
  BITEXACT_HD void add_exact(core::exact_accumulator<acc_type>& a, std::uint64_t i) const {
    a.add(acc_type(core::widen(x[i])));
  }
};

/// dot: x[i]*y[i] rounded to the accumulation type (a multiply, then an add; never fused).
/// The exact tier adds the exact product.
template <class T>
struct dot_values {
  using acc_type = core::accumulation_t<T>;
  const T* x;
  const T* y;
  BITEXACT_HD acc_type operator()(std::uint64_t i) const {
    return core::mul_rn(acc_type(core::widen(x[i])), acc_type(core::widen(y[i])));
  }
  BITEXACT_HD void add_exact(core::exact_accumulator<acc_type>& a, std::uint64_t i) const {
    a.add_product(acc_type(core::widen(x[i])), acc_type(core::widen(y[i])));
  }
};

// ---------------------------------------------------------------------------------------------
// Shapes.

BITEXACT_HD inline unsigned pow2_floor(unsigned v) {
  unsigned p = 1;
  while (p <= v / 2) p *= 2;
  return p;
}
BITEXACT_HD inline std::uint64_t pow2_ceil(std::uint64_t v) {
  std::uint64_t p = 1;
  while (p < v) p *= 2;
  return p;
}
BITEXACT_HD inline std::uint64_t min_u64(std::uint64_t a, std::uint64_t b) { return a < b ? a : b; }

/// Most groups a fixed_order first pass produces (the top pass reads them with one warp).
inline constexpr std::uint64_t max_fixed_order_groups = 1024;

/// The leaf grouping the launchers use for n values in accumulation type A and blocks of
/// `block` threads: core::group_leaves with at most 1024 groups, raised so that a group has at
/// least one leaf per participating warp. Any grouping gives the same bits.
template <class A>
inline core::leaf_grouping fixed_order_grouping(std::uint64_t n, unsigned block) {
  core::leaf_grouping g = core::group_leaves(n, core::fixed_order_shape<A>::leaf, max_fixed_order_groups);
  const unsigned r = pow2_floor(block / warp_size == 0 ? 1 : block / warp_size);
  while (g.group_leaves() < r) ++g.group_level;
  return g;
}

/// Bytes of device workspace any sum/dot launch needs (fixed_order group values, or the exact
/// state), whatever n and shape.
inline constexpr std::size_t reduce_workspace_bytes = max_fixed_order_groups * sizeof(double);

/// Throws std::invalid_argument unless block is in [32, 1024] and grid in [1, 2^31). A block
/// that is not a multiple of 32 works: only its full warps take leaves (the threads of the last,
/// partial warp only meet the barriers), so it computes the same bits.
inline void validate_reduce_shape(const launch_shape& s, const char* op) {
  if (s.block < warp_size || s.block > max_block_threads)
    throw std::invalid_argument(std::string("bitexact::cuda::") + op +
                                ": block must have 32 to 1024 threads (a warp computes a leaf), got " +
                                std::to_string(s.block));
  if (s.grid == 0 || s.grid > max_grid_blocks)
    throw std::invalid_argument(std::string("bitexact::cuda::") + op + ": grid must be in [1, 2^31), got " +
                                std::to_string(s.grid));
}

// ---------------------------------------------------------------------------------------------
// Warp-level pieces.

/// The value of one leaf (values start .. start + count - 1, count <= leaf), computed by a
/// whole warp: all 32 lanes call it with the same arguments. Valid in lane 0.
template <class A, class Ctx, class Values>
BITEXACT_HD A warp_leaf_value(const Ctx& ctx, unsigned lane, const Values& v, std::uint64_t start,
                              std::uint64_t count) {
  constexpr unsigned W = static_cast<unsigned>(core::fixed_order_shape<A>::lanes);
  constexpr unsigned per = W / warp_size;  // virtual lanes per thread: lane + 32 j
  static_assert(per >= 1 && W % warp_size == 0 && (per & (per - 1)) == 0, "lanes must be 32 * 2^k");
  A acc[per];
  for (unsigned j = 0; j < per; ++j) acc[j] = core::negative_zero<A>();
  for (std::uint64_t base = 0; base < count; base += W) {
    for (unsigned j = 0; j < per; ++j) {
      const std::uint64_t i = base + lane + warp_size * j;
      if (i < count) acc[j] = acc[j] + v(start + i);
    }
  }
  // Halving steps W/2 .. 32 inside the thread: lane t + 32 j += lane t + 32 (j + w).
  for (unsigned w = per / 2; w >= 1; w /= 2)
    for (unsigned j = 0; j < w; ++j) acc[j] = acc[j] + acc[j + w];
  // Halving steps 16 .. 1 across the warp. Lanes >= w compute values nobody reads.
  A a = acc[0];
  for (unsigned w = warp_size / 2; w >= 1; w /= 2) {
    const A o = ctx.shfl_down(a, w);
    a = a + o;
  }
  return a;
}

/// The aligned pairwise tree over lanes 0 .. count-1 (count in [1, 32]) of a warp: node
/// (level k, lane i) = lane i's level-(k-1) value + lane i + 2^(k-1)'s when that lane is
/// below count, else the left value alone. Called by all 32 lanes; valid in lane 0.
template <class A, class Ctx>
BITEXACT_HD A warp_aligned_tree(const Ctx& ctx, unsigned lane, A v, std::uint64_t count) {
  for (unsigned s = 1; s < warp_size; s *= 2) {
    const A o = ctx.shfl_down(v, s);
    if ((lane & (2 * s - 1)) == 0 && lane + s < count) v = v + o;
  }
  return v;
}

template <class A>
struct fixed_order_shared {
  A warp_value[warp_size];
};

// ---------------------------------------------------------------------------------------------
// fixed_order bodies.

/// First pass: writes the value of every group of `g` to partials[group]. n > 0.
template <class A, class Ctx, class Values>
BITEXACT_HD void fixed_order_groups_body(const Ctx& ctx, const thread_index& ti, fixed_order_shared<A>& sh,
                                         const Values& v, std::uint64_t n, core::leaf_grouping g,
                                         A* partials) {
  constexpr std::uint64_t L = core::fixed_order_shape<A>::leaf;
  const unsigned warp = ti.thread_idx / warp_size, lane = ti.thread_idx % warp_size;
  const unsigned r = pow2_floor(ti.block_dim / warp_size);
  const std::uint64_t group_leaves = g.group_leaves();
  const std::uint64_t chunk = group_leaves > r ? group_leaves / r : 1;  // leaves per warp
  const std::uint64_t groups = g.groups();
  for (std::uint64_t group = ti.block_idx; group < groups; group += ti.grid_dim) {
    const std::uint64_t first = group << g.group_level;
    const std::uint64_t present = min_u64(group_leaves, g.leaves - first);
    const std::uint64_t active = (present + chunk - 1) / chunk;  // warps with a leaf; <= r <= 32
    if (warp < active) {
      core::tree_stack<A> stack;
      const std::uint64_t lo = first + warp * chunk, hi = min_u64(lo + chunk, first + present);
      for (std::uint64_t leaf = lo; leaf < hi; ++leaf) {
        const std::uint64_t start = leaf * L;
        const A lv = warp_leaf_value<A>(ctx, lane, v, start, min_u64(L, n - start));
        if (lane == 0) stack.push(lv);
      }
      if (lane == 0) sh.warp_value[warp] = stack.finish();
    }
    ctx.sync();
    if (warp == 0) {
      const A wv = lane < active ? sh.warp_value[lane] : A(0);
      const A root = warp_aligned_tree(ctx, lane, wv, active);
      if (lane == 0) partials[group] = root;
    }
    ctx.sync();  // warp_value is rewritten by the next group
  }
}

/// Second pass, one block of (at least) 32 threads: the root over `groups` group values.
/// groups == 0 (n == 0) gives +0.0 like the reference.
template <class A, class Ctx>
BITEXACT_HD void fixed_order_top_body(const Ctx& ctx, const thread_index& ti, const A* partials,
                                      std::uint64_t groups, A* out) {
  if (ti.block_idx != 0 || ti.thread_idx >= warp_size) return;
  const unsigned lane = ti.thread_idx;
  if (groups == 0) {
    if (lane == 0) *out = A(0);
    return;
  }
  const std::uint64_t chunk = pow2_ceil((groups + warp_size - 1) / warp_size);
  const std::uint64_t active = (groups + chunk - 1) / chunk;
  A val = A(0);
  if (lane < active) {
    core::tree_stack<A> stack;
    const std::uint64_t lo = lane * chunk, hi = min_u64(lo + chunk, groups);
    for (std::uint64_t k = lo; k < hi; ++k) stack.push(partials[k]);
    val = stack.finish();
  }
  const A root = warp_aligned_tree(ctx, lane, val, active);
  if (lane == 0) *out = core::canonicalize(root);  // NaN out: the canonical quiet NaN, like the CPU
}

// ---------------------------------------------------------------------------------------------
// exact bodies.

/// Global exact state: digit_count int64 digits, then one flag word (as int64 bits).
template <class A>
struct exact_state {
  static constexpr int digits = core::exact_accumulator<A>::digit_count;
  static constexpr int words = digits + 1;
};

template <class A>
struct exact_shared {
  std::int64_t digit[core::exact_accumulator<A>::digit_count];
  std::uint64_t flags;
};

/// Adds values [0, n) into the zero-initialized global `state` (exact_state<A>::words int64s).
template <class A, class Ctx, class Values>
BITEXACT_HD void exact_accumulate_body(const Ctx& ctx, const thread_index& ti, exact_shared<A>& sh,
                                       const Values& v, std::uint64_t n, std::int64_t* state) {
  constexpr int D = core::exact_accumulator<A>::digit_count;
  for (unsigned k = ti.thread_idx; k < static_cast<unsigned>(D); k += ti.block_dim) sh.digit[k] = 0;
  if (ti.thread_idx == 0) sh.flags = 0;
  ctx.sync();
  {
    core::exact_accumulator<A> acc;
    for (std::uint64_t i = ti.global(); i < n; i += ti.threads()) v.add_exact(acc, i);
    if (acc.flags() != 0) {
      acc.normalize();
      for (int k = 0; k < D; ++k)
        if (acc.digit(k) != 0) ctx.atomic_add(&sh.digit[k], acc.digit(k));
      ctx.atomic_or(&sh.flags, static_cast<std::uint64_t>(acc.flags()));
    }
  }
  ctx.sync();
  if (ti.thread_idx == 0) {  // carry-normalize the block's digits: each < 2^32 except the top
    std::int64_t carry = 0;
    for (int k = 0; k < D - 1; ++k) {
      const std::int64_t x = sh.digit[k] + carry;
      sh.digit[k] = x & 0xffffffff;
      carry = x >> 32;
    }
    sh.digit[D - 1] += carry;
  }
  ctx.sync();
  for (unsigned k = ti.thread_idx; k < static_cast<unsigned>(D); k += ti.block_dim)
    if (sh.digit[k] != 0) ctx.atomic_add(&state[k], sh.digit[k]);
  if (ti.thread_idx == 0 && sh.flags != 0)
    ctx.atomic_or(reinterpret_cast<std::uint64_t*>(&state[D]), sh.flags);
}

/// The accumulator a global state holds.
template <class A>
BITEXACT_HD core::exact_accumulator<A> exact_from_state(const std::int64_t* state) {
  constexpr int D = core::exact_accumulator<A>::digit_count;
  return core::exact_accumulator<A>::from_digits(state, static_cast<std::uint32_t>(state[D]));
}

/// One thread: *out = the correctly rounded value of the state (+0.0 for no input).
template <class A, class Ctx>
BITEXACT_HD void exact_finish_body(const Ctx&, const thread_index& ti, const std::int64_t* state, A* out) {
  if (ti.global() != 0) return;
  *out = exact_from_state<A>(state).round();
}

/// One thread: carry-normalizes the state in place (every digit in [0, 2^32) except the signed
/// top one), so that states of several devices can be added digit-wise (NCCL, cuda/nccl.cuh).
template <class A, class Ctx>
BITEXACT_HD void exact_normalize_body(const Ctx&, const thread_index& ti, std::int64_t* state) {
  if (ti.global() != 0) return;
  constexpr int D = core::exact_accumulator<A>::digit_count;
  const core::exact_accumulator<A> a = exact_from_state<A>(state);
  for (int k = 0; k < D; ++k) state[k] = a.digit(k);
}

// ---------------------------------------------------------------------------------------------
// Exact states across devices (cuda/nccl.cuh): a packed form that is combined by plain int64
// element-wise sums (ncclAllReduce(ncclInt64, ncclSum)).
//
// Packed layout: the digit_count normalized digits, then one int64 per flag bit (0 or 1).
// Summing packed states of R devices gives digit sums below R * 2^32 (and a small signed top
// digit), which fit int64 for R < 2^31, and flag counts whose non-zero entries are the OR of
// the flags. unpack turns the sum back into a normalized state: the exact sum over devices.

template <class A>
struct exact_packed {
  static constexpr int digits = core::exact_accumulator<A>::digit_count;
  static constexpr int flag_bits = 5;  // exact_accumulator's all_flags = 31
  static constexpr int words = digits + flag_bits;
};

/// packed[0 .. exact_packed<A>::words) = the packed form of a state (normalized or not).
template <class A>
BITEXACT_HD void pack_exact_state(const std::int64_t* state, std::int64_t* packed) {
  constexpr int D = core::exact_accumulator<A>::digit_count;
  const core::exact_accumulator<A> a = exact_from_state<A>(state);
  for (int k = 0; k < D; ++k) packed[k] = a.digit(k);
  for (int b = 0; b < exact_packed<A>::flag_bits; ++b) packed[D + b] = (a.flags() >> b) & 1u;
}

/// state = the normalized state whose exact value is the packed (possibly summed) digits and
/// whose flags are the OR of the packed flags.
template <class A>
BITEXACT_HD void unpack_exact_state(const std::int64_t* packed, std::int64_t* state) {
  constexpr int D = core::exact_accumulator<A>::digit_count;
  std::uint32_t flags = 0;
  for (int b = 0; b < exact_packed<A>::flag_bits; ++b)
    if (packed[D + b] != 0) flags |= std::uint32_t(1) << b;
  const core::exact_accumulator<A> a = core::exact_accumulator<A>::from_digits(packed, flags);
  for (int k = 0; k < D; ++k) state[k] = a.digit(k);
  state[D] = static_cast<std::int64_t>(a.flags());
}

template <class A, class Ctx>
BITEXACT_HD void pack_exact_body(const Ctx&, const thread_index& ti, const std::int64_t* state, std::int64_t* packed) {
  if (ti.global() == 0) pack_exact_state<A>(state, packed);
}
template <class A, class Ctx>
BITEXACT_HD void unpack_exact_body(const Ctx&, const thread_index& ti, const std::int64_t* packed, std::int64_t* state,
                                   A* out) {
  if (ti.global() != 0) return;
  unpack_exact_state<A>(packed, state);
  if (out) *out = exact_from_state<A>(state).round();
}

}  // namespace cuda
}  // namespace bitexact
