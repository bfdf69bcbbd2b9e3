// bitexact/cuda/runtime.cuh - the CUDA runtime glue every launcher shares: runtime errors as
// exceptions, kernel-launch checks, the device's SM count and the default launch shape.
//
// nvcc only. Errors throw std::runtime_error("bitexact::cuda::<op>: <what> failed: <name>:
// <message>"). A launch_shape field left 0 is filled in from the current device (cuda/launch.hpp
// resolve_shape: 256 threads, 4 blocks per SM); the shape never changes any result bit.
#pragma once
#if !defined(__CUDACC__)
#error "bitexact/cuda/runtime.cuh must be compiled by nvcc"
#endif

#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "launch.hpp"

namespace bitexact {
namespace cuda {
namespace detail {

/// Throws std::runtime_error naming op and what failed, unless e is cudaSuccess.
inline void throw_on_error(cudaError_t e, const char* op, const char* what) {
  if (e != cudaSuccess)
    throw std::runtime_error(std::string("bitexact::cuda::") + op + ": " + what + " failed: " + cudaGetErrorName(e) +
                             ": " + cudaGetErrorString(e));
}

/// Checks the last kernel launch.
inline void check_launch(const char* op, const char* what = "kernel launch") {
  throw_on_error(cudaGetLastError(), op, what);
}

/// Number of SMs of the current device.
inline unsigned sm_count(const char* op) {
  int dev = 0, count = 0;
  throw_on_error(cudaGetDevice(&dev), op, "cudaGetDevice");
  throw_on_error(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, dev), op,
                 "cudaDeviceGetAttribute(MultiProcessorCount)");
  return count > 0 ? static_cast<unsigned>(count) : 1u;
}

/// resolve_shape with the current device's SM count (queried only when shape.grid is 0).
inline launch_shape pick_shape(launch_shape shape, std::uint64_t work_items, const char* op) {
  return resolve_shape(shape, shape.grid == 0 ? sm_count(op) : 0, work_items);
}

/// Launches kernel<<<shape (filled in for work_items), 0 bytes of dynamic shared memory, st>>>
/// (args...) and checks the launch.
template <class... Params, class... Args>
void launch(const char* op, void (*kernel)(Params...), launch_shape shape, std::uint64_t work_items, cudaStream_t st,
            Args... args) {
  shape = pick_shape(shape, work_items, op);
  kernel<<<shape.grid, shape.block, 0, st>>>(args...);
  check_launch(op);
}

}  // namespace detail
}  // namespace cuda
}  // namespace bitexact
