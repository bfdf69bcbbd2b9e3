// bitexact/cuda/random.cuh - CUDA kernels and host launchers of the random family.
//
// nvcc only. The kernels are thin: each builds a thread_index from blockIdx/threadIdx/gridDim/
// blockDim and calls the BITEXACT_HD body in cuda/random_kernels.hpp, the same body the CPU
// emulation (cuda/launch.hpp) runs in tests/cuda_emulation_test.cpp against the reference.
// Values are addressed by (stream, element index) only, so any launch shape, any GPU and any
// SM count give the same bits as reference/random.hpp.
//
// What is proven without a GPU (see README): the bodies' bits, by CPU emulation over many
// launch shapes; that these kernels compile for sm_80 and sm_90 (tests/cuda_compile_check.cu).
// Device floating point relies on core/math.hpp (__dmul_rn under __CUDA_ARCH__) and on
// --fmad=false, which the CMake target adds for CUDA users.
//
// Launchers are asynchronous on `st` (default stream 0). Output pointers are device (or
// managed) memory. A launch error is thrown as std::runtime_error carrying
// cudaGetErrorString; errors that happen while the kernel runs surface at the caller's next
// synchronisation, as usual in CUDA. shape {0, 0} lets the launcher choose (4 blocks per SM x
// 256 threads, fewer blocks when there is less work); any shape gives the same bits.
#pragma once
#if !defined(__CUDACC__)
#error "bitexact/cuda/random.cuh must be compiled by nvcc; use bitexact/cuda/random_kernels.hpp for host code"
#endif

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "../core/distributions.hpp"
#include "../core/permutation.hpp"
#include "../core/stream.hpp"
#include "launch.hpp"
#include "random_kernels.hpp"
#include "runtime.cuh"

namespace bitexact {
namespace cuda {
namespace kernels {

__device__ inline thread_index this_thread() {
  return thread_index{blockIdx.x, threadIdx.x, gridDim.x, blockDim.x};
}

template <class Gen>
__global__ void words_kernel(stream<Gen> s, std::uint64_t first, std::uint32_t* out, std::size_t n) {
  words_body(this_thread(), s, first, out, n);
}
template <class Gen>
__global__ void uniform_float_kernel(stream<Gen> s, std::uint64_t first, float* out, std::size_t n) {
  uniform_float_body(this_thread(), s, first, out, n);
}
template <class Gen>
__global__ void uniform_double_kernel(stream<Gen> s, std::uint64_t first, double* out, std::size_t n) {
  uniform_double_body(this_thread(), s, first, out, n);
}
template <class Gen>
__global__ void normal_float_kernel(stream<Gen> s, std::uint64_t first, float* out, std::size_t n) {
  normal_float_body(this_thread(), s, first, out, n);
}
template <class Gen>
__global__ void normal_double_kernel(stream<Gen> s, std::uint64_t first, double* out, std::size_t n) {
  normal_double_body(this_thread(), s, first, out, n);
}
template <class Gen>
__global__ void bernoulli_kernel(stream<Gen> s, std::uint64_t first, std::uint8_t* out, std::size_t n,
                                 std::uint64_t threshold) {
  bernoulli_body(this_thread(), s, first, out, n, threshold);
}
template <class Gen>
__global__ void uniform_int32_kernel(stream<Gen> s, std::uint64_t first, std::uint32_t* out,
                                     std::size_t n, std::uint32_t bound) {
  uniform_int32_body(this_thread(), s, first, out, n, bound);
}
template <class Gen>
__global__ void uniform_int64_kernel(stream<Gen> s, std::uint64_t first, std::uint64_t* out,
                                     std::size_t n, std::uint64_t bound) {
  uniform_int64_body(this_thread(), s, first, out, n, bound);
}
// A template only so that the header can be included in several translation units.
template <class Perm = core::feistel_permutation>
__global__ void permutation_kernel(Perm p, std::uint64_t first, std::uint64_t* out, std::size_t n) {
  permutation_body(this_thread(), p, first, out, n);
}

}  // namespace kernels

namespace detail {


/// Grid-stride items of a body that reads `words_per_unit` words per unit, for units
/// [u_first, u_last].
template <class Gen>
inline std::uint64_t groups(std::uint64_t u_first, std::uint64_t u_last, unsigned words_per_unit) {
  return work_groups<Gen>(u_first, u_last, words_per_unit);
}

}  // namespace detail

/// Words first .. first + n - 1 of the stream (reference::generate_words).
template <class Gen>
void generate_words(const stream<Gen>& s, std::uint64_t first, std::uint32_t* d_out, std::size_t n,
                    cudaStream_t st = nullptr, launch_shape shape = {}) {
  constexpr const char* op = "generate_words";
  if (!validate_range(op, d_out, first, n, 0)) return;
  detail::launch(op, kernels::words_kernel<Gen>, shape, detail::groups<Gen>(first, first + (n - 1), 1),
                 st, s, first, d_out, n);
}

/// Uniform floats on [0, 1) (reference::generate_uniform, float).
template <class Gen>
void generate_uniform(const stream<Gen>& s, std::uint64_t first, float* d_out, std::size_t n,
                      cudaStream_t st = nullptr, launch_shape shape = {}) {
  constexpr const char* op = "generate_uniform(float)";
  if (!validate_range(op, d_out, first, n, 0)) return;
  detail::launch(op, kernels::uniform_float_kernel<Gen>, shape, detail::groups<Gen>(first, first + (n - 1), 1),
                 st, s, first, d_out, n);
}

/// Uniform doubles on [0, 1) (reference::generate_uniform, double).
template <class Gen>
void generate_uniform(const stream<Gen>& s, std::uint64_t first, double* d_out, std::size_t n,
                      cudaStream_t st = nullptr, launch_shape shape = {}) {
  constexpr const char* op = "generate_uniform(double)";
  if (!validate_range(op, d_out, first, n, 1)) return;
  detail::launch(op, kernels::uniform_double_kernel<Gen>, shape, detail::groups<Gen>(first, first + (n - 1), 2),
                 st, s, first, d_out, n);
}

/// Standard normal floats (reference::generate_normal, float).
template <class Gen>
void generate_normal(const stream<Gen>& s, std::uint64_t first, float* d_out, std::size_t n,
                     cudaStream_t st = nullptr, launch_shape shape = {}) {
  constexpr const char* op = "generate_normal(float)";
  if (!validate_range(op, d_out, first, n, 0)) return;
  detail::launch(op, kernels::normal_float_kernel<Gen>, shape, detail::groups<Gen>(first / 2, (first + (n - 1)) / 2, 2),
                 st, s, first, d_out, n);
}

/// Standard normal doubles (reference::generate_normal, double).
template <class Gen>
void generate_normal(const stream<Gen>& s, std::uint64_t first, double* d_out, std::size_t n,
                     cudaStream_t st = nullptr, launch_shape shape = {}) {
  constexpr const char* op = "generate_normal(double)";
  if (!validate_range(op, d_out, first, n, 1)) return;
  detail::launch(op, kernels::normal_double_kernel<Gen>, shape,
                 detail::groups<Gen>(first / 2, (first + (n - 1)) / 2, 4), st, s, first, d_out, n);
}

/// Bernoulli(p) mask of 0/1 bytes (reference::generate_bernoulli); p in [0, 1].
template <class Gen>
void generate_bernoulli(const stream<Gen>& s, std::uint64_t first, std::uint8_t* d_out,
                        std::size_t n, double p, cudaStream_t st = nullptr,
                        launch_shape shape = {}) {
  constexpr const char* op = "generate_bernoulli";
  validate_probability(op, p);
  if (!validate_range(op, d_out, first, n, 0)) return;
  const std::uint64_t threshold = core::bernoulli_threshold(p);
  detail::launch(op, kernels::bernoulli_kernel<Gen>, shape, detail::groups<Gen>(first, first + (n - 1), 1),
                 st, s, first, d_out, n, threshold);
}

/// Unbiased integers in [0, bound) (reference::generate_uniform_int, 32-bit); bound > 0.
template <class Gen>
void generate_uniform_int(const stream<Gen>& s, std::uint64_t first, std::uint32_t* d_out,
                          std::size_t n, std::uint32_t bound, cudaStream_t st = nullptr,
                          launch_shape shape = {}) {
  constexpr const char* op = "generate_uniform_int(uint32)";
  validate_bound(op, bound);
  if (!validate_range(op, d_out, first, n, 0)) return;
  detail::launch(op, kernels::uniform_int32_kernel<Gen>, shape, detail::groups<Gen>(first, first + (n - 1), 1),
                 st, s, first, d_out, n, bound);
}

/// Unbiased integers in [0, bound) (reference::generate_uniform_int, 64-bit); bound > 0.
template <class Gen>
void generate_uniform_int(const stream<Gen>& s, std::uint64_t first, std::uint64_t* d_out,
                          std::size_t n, std::uint64_t bound, cudaStream_t st = nullptr,
                          launch_shape shape = {}) {
  constexpr const char* op = "generate_uniform_int(uint64)";
  validate_bound(op, bound);
  if (!validate_range(op, d_out, first, n, 1)) return;
  detail::launch(op, kernels::uniform_int64_kernel<Gen>, shape, detail::groups<Gen>(first, first + (n - 1), 2),
                 st, s, first, d_out, n, bound);
}

/// Elements first .. first + n - 1 of a random-access permutation
/// (reference::generate_permutation); first + n <= p.size().
inline void generate_permutation(const core::feistel_permutation& p, std::uint64_t first,
                                 std::uint64_t* d_out, std::size_t n, cudaStream_t st = nullptr,
                                 launch_shape shape = {}) {
  constexpr const char* op = "generate_permutation";
  if (!validate_permutation(op, p, first, d_out, n)) return;
  detail::launch(op, kernels::permutation_kernel<>, shape, n, st, p, first, d_out, n);
}

}  // namespace cuda
}  // namespace bitexact
