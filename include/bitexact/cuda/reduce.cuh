// bitexact/cuda/reduce.cuh - CUDA kernels and host launchers of sum and dot, both tiers.
//
// nvcc only. The kernels are thin: each calls a BITEXACT_HD body of cuda/reduce_kernels.hpp
// with device_block_context (cuda/block_context.hpp), the same body text that
// cuda/reduce_emulation.hpp runs on the CPU in tests/cuda_reduce_emulation_test.cpp against
// reference/reduce.hpp for many launch shapes.
//
//   fixed_order  reference::sum_fixed_order / dot_fixed_order bit for bit, for any launch shape
//                (warp = one leaf via shfl_down, block = aligned groups of leaves, then a
//                one-warp launch for the top of the tree; see reduce_kernels.hpp).
//   exact        reference::sum_exact / dot_exact bit for bit: per-thread exact accumulators,
//                digit-wise integer atomics, one rounding thread.
//
// NaN: both tiers return the canonical quiet NaN (core::canonicalize), as the CPU ops do.
//
// What is proven without a GPU (see README): the bodies' bits by CPU emulation over many
// launch shapes, and that this file compiles for sm_80 and sm_90 (tests/cuda_compile_check.cu).
// dot multiplies with core::mul_rn (__fmul_rn/__dmul_rn on the device), so no FMA contraction
// can happen even without --fmad=false (which the CMake target adds anyway).
//
// API (all asynchronous on `st`; pointers are device or managed memory; d_out receives one
// accumulation_t<T> value: float for float and bfloat16, double for double):
//
//   sum(d_x, n, d_out, st = 0, tier = fixed_order, shape = {}, d_workspace = nullptr)
//   dot(d_x, d_y, n, d_out, st = 0, tier = fixed_order, shape = {}, d_workspace = nullptr)
//
// d_workspace: nullptr lets the launcher take reduce_workspace_bytes (8 KiB) with
// cudaMallocAsync/cudaFreeAsync on `st`; or pass a device buffer of at least
// reduce_workspace_bytes bytes that nothing else uses until the reduction has run on `st`.
// shape {0, 0}: block 256, grid 4 x SMs clamped to the work. A given block must have
// threads in [32, 1024] (std::invalid_argument otherwise). Any shape gives the same bits.
// Launch errors throw std::runtime_error with cudaGetErrorString.
#pragma once
#if !defined(__CUDACC__)
#error "bitexact/cuda/reduce.cuh must be compiled by nvcc; use bitexact/cuda/reduce_kernels.hpp for host code"
#endif

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "../core/bfloat16.hpp"
#include "../tier.hpp"
#include "block_context.hpp"
#include "launch.hpp"
#include "reduce_kernels.hpp"
#include "runtime.cuh"

namespace bitexact {
namespace cuda {
namespace reduce_kernels {

template <class A, class Values>
__global__ void fixed_order_groups_kernel(Values v, std::uint64_t n, core::leaf_grouping g, A* partials) {
  __shared__ fixed_order_shared<A> sh;
  fixed_order_groups_body<A>(device_block_context{}, current_thread_index(), sh, v, n, g, partials);
}

template <class A>
__global__ void fixed_order_top_kernel(const A* partials, std::uint64_t groups, A* out) {
  fixed_order_top_body<A>(device_block_context{}, current_thread_index(), partials, groups, out);
}

template <class A, class Values>
__global__ void exact_accumulate_kernel(Values v, std::uint64_t n, std::int64_t* state) {
  __shared__ exact_shared<A> sh;
  exact_accumulate_body<A>(device_block_context{}, current_thread_index(), sh, v, n, state);
}

template <class A>
__global__ void exact_finish_kernel(const std::int64_t* state, A* out) {
  exact_finish_body<A>(device_block_context{}, current_thread_index(), state, out);
}

template <class A>
__global__ void exact_normalize_kernel(std::int64_t* state) {
  exact_normalize_body<A>(device_block_context{}, current_thread_index(), state);
}

}  // namespace reduce_kernels

namespace reduce_detail {

using detail::throw_on_error;

/// Fills in the zero fields (block 256, grid 4 x SMs), validates, and clamps the grid to
/// `work_items` (blocks beyond that would idle).
inline launch_shape pick(launch_shape shape, std::uint64_t work_items, const char* op) {
  if (shape.block == 0) shape.block = default_block_threads;
  if (shape.grid == 0) {
    const std::uint64_t g = static_cast<std::uint64_t>(detail::sm_count(op)) * default_blocks_per_sm;
    shape.grid = static_cast<unsigned>(g > max_grid_blocks ? max_grid_blocks : g);
  }
  validate_reduce_shape(shape, op);
  if (work_items == 0) work_items = 1;
  if (work_items < shape.grid) shape.grid = static_cast<unsigned>(work_items);
  return shape;
}

/// Workspace owned for the duration of one call (cudaMallocAsync/cudaFreeAsync on st) or
/// borrowed from the caller.
class workspace {
 public:
  workspace(void* given, cudaStream_t st, const char* op) : st_(st), op_(op) {
    if (given) {
      p_ = given;
    } else {
      throw_on_error(cudaMallocAsync(&p_, reduce_workspace_bytes, st), op, "cudaMallocAsync(workspace)");
      owned_ = true;
    }
  }
  ~workspace() {
    if (owned_) cudaFreeAsync(p_, st_);  // stream-ordered after the kernels
  }
  workspace(const workspace&) = delete;
  workspace& operator=(const workspace&) = delete;
  template <class U>
  U* as() const {
    return static_cast<U*>(p_);
  }

 private:
  void* p_ = nullptr;
  cudaStream_t st_;
  const char* op_;
  bool owned_ = false;
};

template <class A, class Values>
void reduce(const Values& v, std::size_t n, A* d_out, cudaStream_t st, tier t, launch_shape shape,
            void* d_workspace, const char* op) {
  if (d_out == nullptr) throw std::invalid_argument(std::string("bitexact::cuda::") + op + ": d_out is null");
  const std::uint64_t n64 = n;
  workspace ws(d_workspace, st, op);
  if (t == tier::fixed_order) {
    shape.block = shape.block == 0 ? default_block_threads : shape.block;
    const core::leaf_grouping g = fixed_order_grouping<A>(n64, shape.block);
    shape = pick(shape, g.groups(), op);
    A* partials = ws.as<A>();
    if (n64 > 0) {
      reduce_kernels::fixed_order_groups_kernel<A, Values><<<shape.grid, shape.block, 0, st>>>(v, n64, g, partials);
      throw_on_error(cudaGetLastError(), op, "first pass launch");
    }
    reduce_kernels::fixed_order_top_kernel<A><<<1, warp_size, 0, st>>>(partials, g.groups(), d_out);
    throw_on_error(cudaGetLastError(), op, "top pass launch");
    return;
  }
  shape = pick(shape, n64 == 0 ? 1 : (n64 + (shape.block ? shape.block : default_block_threads) - 1) /
                                         (shape.block ? shape.block : default_block_threads),
               op);
  std::int64_t* state = ws.as<std::int64_t>();
  throw_on_error(cudaMemsetAsync(state, 0, sizeof(std::int64_t) * exact_state<A>::words, st), op, "cudaMemsetAsync(state)");
  if (n64 > 0) {
    reduce_kernels::exact_accumulate_kernel<A, Values><<<shape.grid, shape.block, 0, st>>>(v, n64, state);
    throw_on_error(cudaGetLastError(), op, "accumulate launch");
  }
  reduce_kernels::exact_finish_kernel<A><<<1, 1, 0, st>>>(state, d_out);
  throw_on_error(cudaGetLastError(), op, "finish launch");
}

}  // namespace reduce_detail

/// Sum of d_x[0 .. n) in accumulation_t<T> (float for float/bfloat16, double for double), written
/// to *d_out. Equals reference::sum_fixed_order / sum_exact bit for bit.
template <class T>
void sum(const T* d_x, std::size_t n, core::accumulation_t<T>* d_out, cudaStream_t st = nullptr,
         tier t = tier::fixed_order, launch_shape shape = {}, void* d_workspace = nullptr) {
  if (n > 0 && d_x == nullptr) throw std::invalid_argument("bitexact::cuda::sum: d_x is null");
  reduce_detail::reduce<core::accumulation_t<T>>(sum_values<T>{d_x}, n, d_out, st, t, shape, d_workspace, "sum");
}

/// Dot product of d_x and d_y (products rounded then added in the fixed_order tier; exact
/// products in the exact tier), written to *d_out. Equals reference::dot_fixed_order /
/// dot_exact bit for bit.
template <class T>
void dot(const T* d_x, const T* d_y, std::size_t n, core::accumulation_t<T>* d_out, cudaStream_t st = nullptr,
         tier t = tier::fixed_order, launch_shape shape = {}, void* d_workspace = nullptr) {
  if (n > 0 && (d_x == nullptr || d_y == nullptr)) throw std::invalid_argument("bitexact::cuda::dot: null input");
  reduce_detail::reduce<core::accumulation_t<T>>(dot_values<T>{d_x, d_y}, n, d_out, st, t, shape, d_workspace, "dot");
}

/// Adds d_x[0 .. n) (or the products d_x[i]*d_y[i] when d_y is not null) into the exact state
/// d_state (exact_state<A>::words int64s, zeroed by the caller before the first add) and leaves
/// the state normalized, ready to be combined across devices digit-wise (cuda/nccl.cuh) or
/// rounded with exact_round.
template <class T>
void exact_accumulate(const T* d_x, const T* d_y, std::size_t n, std::int64_t* d_state, cudaStream_t st = nullptr,
                      launch_shape shape = {}) {
  using A = core::accumulation_t<T>;
  constexpr const char* op = "exact_accumulate";
  if (d_state == nullptr || (n > 0 && d_x == nullptr)) throw std::invalid_argument("bitexact::cuda::exact_accumulate: null pointer");
  const unsigned block = shape.block ? shape.block : default_block_threads;
  shape = reduce_detail::pick(shape, n == 0 ? 1 : (static_cast<std::uint64_t>(n) + block - 1) / block, op);
  if (n > 0) {
    if (d_y)
      reduce_kernels::exact_accumulate_kernel<A, dot_values<T>><<<shape.grid, shape.block, 0, st>>>(
          dot_values<T>{d_x, d_y}, n, d_state);
    else
      reduce_kernels::exact_accumulate_kernel<A, sum_values<T>><<<shape.grid, shape.block, 0, st>>>(
          sum_values<T>{d_x}, n, d_state);
    reduce_detail::throw_on_error(cudaGetLastError(), op, "accumulate launch");
  }
  reduce_kernels::exact_normalize_kernel<A><<<1, 1, 0, st>>>(d_state);
  reduce_detail::throw_on_error(cudaGetLastError(), op, "normalize launch");
}

/// *d_out = the correctly rounded value of an exact state.
template <class A>
void exact_round(const std::int64_t* d_state, A* d_out, cudaStream_t st = nullptr) {
  reduce_kernels::exact_finish_kernel<A><<<1, 1, 0, st>>>(d_state, d_out);
  reduce_detail::throw_on_error(cudaGetLastError(), "exact_round", "finish launch");
}

}  // namespace cuda
}  // namespace bitexact
