// bitexact/cuda/block_context.hpp - what a kernel body with barriers, shuffles and atomics sees.
//
// Plain C++17 (compiles with g++ and nvcc). Kernel bodies that cooperate inside a block
// (cuda/reduce_kernels.hpp) are templates over a context `Ctx` with four operations:
//
//   ctx.sync()                 __syncthreads(): every thread of the block reaches it
//   ctx.shfl_down(v, delta)    __shfl_down_sync(full mask, v, delta): all 32 lanes of the warp
//                              take part; lane l gets lane l + delta's value, or its own when
//                              l + delta >= 32
//   ctx.atomic_add(p, v)       atomicAdd on a 64-bit two's complement integer (global or shared)
//   ctx.atomic_or(p, v)        atomicOr on a 32-bit or 64-bit word
//
// device_block_context (here) maps them to the CUDA intrinsics inside __CUDA_ARCH__; a body
// instantiated with it is what the __global__ kernels in cuda/*.cuh run.
// cuda/block_emulation.hpp provides emulated_block_context, which runs the very same body text
// on the CPU, one cooperative fiber per CUDA thread, with real barrier and shuffle semantics.
#pragma once
#include <cstdint>

#include "../core/config.hpp"
#include "launch.hpp"

namespace bitexact {
namespace cuda {

/// Threads per warp; the reduction bodies are written for it.
inline constexpr unsigned warp_size = 32;

/// The context of a body running on a GPU. Every member is BITEXACT_HD so that a body template
/// can be instantiated in both compilation passes; the intrinsics exist only in the device pass.
struct device_block_context {
  BITEXACT_HD void sync() const {
#if defined(__CUDA_ARCH__)
    __syncthreads();
#endif
  }
  template <class V>
  BITEXACT_HD V shfl_down(V v, unsigned delta) const {
#if defined(__CUDA_ARCH__)
    return __shfl_down_sync(0xffffffffu, v, delta);
#else
    (void)delta;
    return v;
#endif
  }
  BITEXACT_HD void atomic_add(std::int64_t* p, std::int64_t v) const {
#if defined(__CUDA_ARCH__)
    atomicAdd(reinterpret_cast<unsigned long long*>(p), static_cast<unsigned long long>(v));
#else
    *p = static_cast<std::int64_t>(static_cast<std::uint64_t>(*p) + static_cast<std::uint64_t>(v));
#endif
  }
  BITEXACT_HD void atomic_or(std::uint32_t* p, std::uint32_t v) const {
#if defined(__CUDA_ARCH__)
    atomicOr(reinterpret_cast<unsigned int*>(p), static_cast<unsigned int>(v));
#else
    *p |= v;
#endif
  }
  BITEXACT_HD void atomic_or(std::uint64_t* p, std::uint64_t v) const {
#if defined(__CUDA_ARCH__)
    atomicOr(reinterpret_cast<unsigned long long*>(p), static_cast<unsigned long long>(v));
#else
    *p |= v;
#endif
  }
};

#if defined(__CUDACC__)
/// The thread_index of the calling CUDA thread (x dimension).
__device__ inline thread_index current_thread_index() {
  return thread_index{blockIdx.x, threadIdx.x, gridDim.x, blockDim.x};
}
#endif

}  // namespace cuda
}  // namespace bitexact
