// bitexact/cuda/nccl.cuh - exact sums across GPUs with NCCL: the same bits for any number of GPUs
// and any split of the data.
//
// nvcc only; needs nccl.h and libnccl (link -lnccl). Not included by any other header.
//
//   bitexact::cuda::nccl_allreduce_sum(d_x, n_local, d_out, comm, st [, shape, d_workspace])
//   bitexact::cuda::nccl_allreduce_dot(d_x, d_y, n_local, d_out, comm, st [, shape, d_workspace])
//   bitexact::cuda::nccl_allreduce_exact_state<A>(d_state, comm, st [, d_workspace])
//
// Collective over `comm` (every rank calls it with the same T; n_local may differ or be 0).
// Each device builds its exact state (cuda/reduce.cuh exact_accumulate: per-thread
// core::exact_accumulator, digit-wise integer atomics, normalized), packs it (normalized 32-bit
// digits as int64, plus one 0/1 int64 per flag bit; cuda/reduce_kernels.hpp pack_exact_state),
// and ONE ncclAllReduce(ncclInt64, ncclSum) adds the packed states. Integer addition is exact
// and order-free, so the sum is the same whatever ring/tree NCCL uses; digit sums of normalized
// digits from fewer than 2^31 ranks cannot overflow int64, and a non-zero flag count is the OR
// of the flags. Each device then unpacks and rounds once: *d_out on every rank is the correctly
// rounded exact sum of all ranks' data, equal to reference::sum_exact / dot_exact on the
// concatenated data, bit for bit.
//
// Only the exact tier exists here: a fixed_order sum across GPUs would depend on the split.
//
// What is proven without a GPU: the pack / sum / unpack arithmetic, by
// tests/cuda_reduce_emulation_test.cpp (several simulated ranks, element-wise int64 sums as
// NCCL would do, against the reference on the concatenated data), the per-device exact state by
// the kernel emulation, and that this file compiles for sm_80 and sm_90
// (tests/cuda_nccl_compile_check.cu, built when nccl.h is found). NCCL itself is not run.
//
// d_workspace: nullptr lets the call take reduce_workspace_bytes with cudaMallocAsync on `st`;
// or pass that many bytes of device memory. Errors throw std::runtime_error.
#pragma once
#if !defined(__CUDACC__)
#error "bitexact/cuda/nccl.cuh must be compiled by nvcc"
#endif

#include <cuda_runtime.h>
#include <nccl.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "reduce.cuh"
#include "reduce_kernels.hpp"

namespace bitexact {
namespace cuda {
namespace reduce_kernels {

template <class A>
__global__ void pack_exact_kernel(const std::int64_t* state, std::int64_t* packed) {
  pack_exact_body<A>(device_block_context{}, current_thread_index(), state, packed);
}
template <class A>
__global__ void unpack_exact_kernel(const std::int64_t* packed, std::int64_t* state, A* out) {
  unpack_exact_body<A>(device_block_context{}, current_thread_index(), packed, state, out);
}

}  // namespace reduce_kernels

namespace nccl_detail {

inline void check(ncclResult_t r, const char* op) {
  if (r != ncclSuccess)
    throw std::runtime_error(std::string("bitexact::cuda::") + op + ": ncclAllReduce failed: " + ncclGetErrorString(r));
}

/// Byte offset of the packed buffer inside the workspace (the state comes first).
inline constexpr std::size_t packed_offset = 2048;
static_assert(exact_state<double>::words * sizeof(std::int64_t) <= packed_offset, "state must fit before packed");
static_assert(packed_offset + exact_packed<double>::words * sizeof(std::int64_t) <= reduce_workspace_bytes,
              "packed must fit the workspace");

/// Packs d_state, sums the packed states of all ranks with one ncclAllReduce, unpacks into
/// d_state (normalized) and, when d_out is not null, writes the rounded value.
template <class A>
void allreduce_state(std::int64_t* d_state, std::int64_t* d_packed, A* d_out, ncclComm_t comm, cudaStream_t st,
                     const char* op) {
  reduce_kernels::pack_exact_kernel<A><<<1, 1, 0, st>>>(d_state, d_packed);
  reduce_detail::throw_on_error(cudaGetLastError(), op, "pack launch");
  check(ncclAllReduce(d_packed, d_packed, static_cast<std::size_t>(exact_packed<A>::words), ncclInt64, ncclSum, comm, st),
        op);
  reduce_kernels::unpack_exact_kernel<A><<<1, 1, 0, st>>>(d_packed, d_state, d_out);
  reduce_detail::throw_on_error(cudaGetLastError(), op, "unpack launch");
}

template <class T>
void allreduce(const T* d_x, const T* d_y, std::size_t n_local, core::accumulation_t<T>* d_out, ncclComm_t comm,
               cudaStream_t st, launch_shape shape, void* d_workspace, const char* op) {
  using A = core::accumulation_t<T>;
  if (d_out == nullptr) throw std::invalid_argument(std::string("bitexact::cuda::") + op + ": d_out is null");
  reduce_detail::workspace ws(d_workspace, st, op);
  std::int64_t* state = ws.as<std::int64_t>();
  std::int64_t* packed = reinterpret_cast<std::int64_t*>(ws.as<unsigned char>() + packed_offset);
  reduce_detail::throw_on_error(cudaMemsetAsync(state, 0, sizeof(std::int64_t) * exact_state<A>::words, st), op,
                       "cudaMemsetAsync(state)");
  exact_accumulate(d_x, d_y, n_local, state, st, shape);
  allreduce_state<A>(state, packed, d_out, comm, st, op);
}

}  // namespace nccl_detail

/// *d_out (on every rank) = the correctly rounded sum of every rank's d_x[0 .. n_local).
template <class T>
void nccl_allreduce_sum(const T* d_x, std::size_t n_local, core::accumulation_t<T>* d_out, ncclComm_t comm,
                        cudaStream_t st, launch_shape shape = {}, void* d_workspace = nullptr) {
  nccl_detail::allreduce<T>(d_x, nullptr, n_local, d_out, comm, st, shape, d_workspace, "nccl_allreduce_sum");
}

/// *d_out (on every rank) = the correctly rounded sum of the exact products of every rank's
/// d_x[i] * d_y[i].
template <class T>
void nccl_allreduce_dot(const T* d_x, const T* d_y, std::size_t n_local, core::accumulation_t<T>* d_out,
                        ncclComm_t comm, cudaStream_t st, launch_shape shape = {}, void* d_workspace = nullptr) {
  if (n_local > 0 && d_y == nullptr) throw std::invalid_argument("bitexact::cuda::nccl_allreduce_dot: d_y is null");
  nccl_detail::allreduce<T>(d_x, d_y, n_local, d_out, comm, st, shape, d_workspace, "nccl_allreduce_dot");
}

/// Replaces a device exact state (exact_state<A>::words int64s, as filled by exact_accumulate)
/// on every rank by the exact sum of all ranks' states, normalized. Round it with exact_round.
template <class A>
void nccl_allreduce_exact_state(std::int64_t* d_state, ncclComm_t comm, cudaStream_t st, void* d_workspace = nullptr) {
  if (d_state == nullptr) throw std::invalid_argument("bitexact::cuda::nccl_allreduce_exact_state: d_state is null");
  reduce_detail::workspace ws(d_workspace, st, "nccl_allreduce_exact_state");
  std::int64_t* packed = reinterpret_cast<std::int64_t*>(ws.as<unsigned char>() + nccl_detail::packed_offset);
  nccl_detail::allreduce_state<A>(d_state, packed, static_cast<A*>(nullptr), comm, st, "nccl_allreduce_exact_state");
}

}  // namespace cuda
}  // namespace bitexact
