// bitexact/cuda/reduce_emulation.hpp - the CUDA sum/dot kernels run on the CPU for a launch shape.
//
// Host only (uses cuda/block_emulation.hpp). Runs exactly the passes cuda/reduce.cuh launches
// (first pass over the grid, then the one-warp top pass or the one-thread finish), with the
// same bodies from cuda/reduce_kernels.hpp, through the fiber emulation of blocks, warps and
// shared memory. Used by tests/cuda_reduce_emulation_test.cpp and by tools (bitexact-audit):
//
//   bitexact::cuda::emulated_sum(x, n, tier, shape [, order])
//   bitexact::cuda::emulated_dot(x, y, n, tier, shape [, order])
//
// return what bitexact::cuda::sum / dot would write to *d_out for that launch shape. The
// shape is used as given (no clamping of the grid to the work), so blocks without work are
// exercised too; it must satisfy validate_reduce_shape (std::invalid_argument otherwise).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "../tier.hpp"
#include "block_emulation.hpp"
#include "reduce_kernels.hpp"

namespace bitexact {
namespace cuda {

/// The exact state (exact_state<A>::words int64s) the exact first pass leaves for values
/// v(0) .. v(n-1), then normalized like exact_accumulate does (cuda/reduce.cuh).
template <class A, class Values>
std::vector<std::int64_t> emulated_exact_state(const Values& v, std::uint64_t n, launch_shape shape,
                                               block_order order = block_order::shuffled) {
  validate_reduce_shape(shape, "emulated_exact_state");
  std::vector<std::int64_t> state(exact_state<A>::words, 0);
  struct none {};
  if (n > 0) {
    emulate_block_launch<exact_shared<A>>(
        shape,
        [&](const emulated_block_context& ctx, const thread_index& ti, exact_shared<A>& sh) {
          exact_accumulate_body<A>(ctx, ti, sh, v, n, state.data());
        },
        order);
  }
  emulate_block_launch<none>(launch_shape{1, 1}, [&](const emulated_block_context& ctx, const thread_index& ti, none&) {
    exact_normalize_body<A>(ctx, ti, state.data());
  });
  return state;
}

/// The reduction of values v(0) .. v(n-1) by the emulated kernels. group_level < 0 uses the
/// launchers' grouping (fixed_order_grouping); a value >= 0 forces groups of 2^group_level
/// leaves (any grouping gives the same bits; the tests prove it).
template <class A, class Values>
A emulated_reduce(const Values& v, std::uint64_t n, tier t, launch_shape shape,
                  block_order order = block_order::shuffled, int group_level = -1) {
  validate_reduce_shape(shape, "emulated_reduce");
  A out;
  std::memset(&out, 0xFF, sizeof out);
  if (t == tier::fixed_order) {
    core::leaf_grouping g = fixed_order_grouping<A>(n, shape.block);
    if (group_level >= 0) g.group_level = group_level;
    std::vector<A> partials = emulated_device_memory<A>(g.groups() + 1);
    if (n > 0) {
      emulate_block_launch<fixed_order_shared<A>>(
          shape,
          [&](const emulated_block_context& ctx, const thread_index& ti, fixed_order_shared<A>& sh) {
            fixed_order_groups_body<A>(ctx, ti, sh, v, n, g, partials.data());
          },
          order);
    }
    struct none {};
    emulate_block_launch<none>(launch_shape{1, warp_size},
                               [&](const emulated_block_context& ctx, const thread_index& ti, none&) {
                                 fixed_order_top_body<A>(ctx, ti, partials.data(), g.groups(), &out);
                               });
    return out;
  }
  std::vector<std::int64_t> state(exact_state<A>::words, 0);  // the launcher's cudaMemsetAsync
  if (n > 0) {
    emulate_block_launch<exact_shared<A>>(
        shape,
        [&](const emulated_block_context& ctx, const thread_index& ti, exact_shared<A>& sh) {
          exact_accumulate_body<A>(ctx, ti, sh, v, n, state.data());
        },
        order);
  }
  struct none {};
  emulate_block_launch<none>(launch_shape{1, 1}, [&](const emulated_block_context& ctx, const thread_index& ti, none&) {
    exact_finish_body<A>(ctx, ti, state.data(), &out);
  });
  return out;
}

/// What bitexact::cuda::sum(d_x, n, d_out, stream, t, shape) writes, computed on the CPU.
template <class T>
core::accumulation_t<T> emulated_sum(const T* x, std::size_t n, tier t, launch_shape shape,
                                     block_order order = block_order::shuffled) {
  return emulated_reduce<core::accumulation_t<T>>(sum_values<T>{x}, n, t, shape, order);
}

/// What bitexact::cuda::dot(d_x, d_y, n, d_out, stream, t, shape) writes, computed on the CPU.
template <class T>
core::accumulation_t<T> emulated_dot(const T* x, const T* y, std::size_t n, tier t, launch_shape shape,
                                     block_order order = block_order::shuffled) {
  return emulated_reduce<core::accumulation_t<T>>(dot_values<T>{x, y}, n, t, shape, order);
}

}  // namespace cuda
}  // namespace bitexact
