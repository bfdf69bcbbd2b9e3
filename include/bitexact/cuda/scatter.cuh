// bitexact/cuda/scatter.cuh - CUDA kernels and host launchers of deterministic index_add.
//
// nvcc only. The kernels are thin: each builds a thread_index and calls a BITEXACT_HD body of
// cuda/scatter_kernels.hpp - the same bodies that tests/cuda_scatter_emulation_test.cpp runs on
// the CPU for many launch shapes against reference/scatter.hpp. The pipeline (see that header):
// validate -> (key, position) pairs -> cub::DeviceRadixSort::SortPairs (stable) -> run flags ->
// cub::DeviceScan::ExclusiveSum -> run starts -> per-run sequential partials -> per-target
// aligned chunk tree (fixed_order), or per-target exact sums (exact). No float atomics: the
// bits are those of bitexact::index_add on the CPU and of the reference, for any launch shape,
// GPU model or SM count.
//
// What is proven without a GPU (see README): the bodies' bits, by CPU emulation over many
// launch shapes and block orders; that this header and its launchers compile for sm_80 and
// sm_90 (tests/cuda_compile_check.cu); and the Thrust formulation of the same pipeline
// (cuda/scatter_thrust.hpp) under Thrust's CPP and OpenMP systems. Nothing here has run on a GPU.
//
// Memory. Device pointers (or managed memory). Temporaries come from a workspace in CUB's
// two-phase style: call with d_temp == nullptr to get temp_bytes (nothing else happens), then
// again with a buffer of at least that size. The overloads without a workspace allocate it with
// cudaMallocAsync / cudaFreeAsync on the stream. Workspace: about 5 index words per source
// (4 or 8 bytes each) + width accumulation values per source (fixed_order) + CUB's sort space.
//
// Synchronisation and errors. Validation (an index outside [0, n_out)) runs first, on the
// device; the launcher copies its result back and synchronises the stream once, then throws
// bitexact::index_error (lowest bad position, as on the CPU) without launching any kernel that
// writes out. Argument errors throw std::invalid_argument, CUDA errors std::runtime_error. All
// later passes are asynchronous on `st`. n == 0 is a no-op. shape {0, 0} lets the launcher
// choose (4 blocks per SM x 256 threads, fewer when there is less work); any shape gives the
// same bits.
#pragma once
#if !defined(__CUDACC__)
#error "bitexact/cuda/scatter.cuh must be compiled by nvcc; use bitexact/cuda/scatter_kernels.hpp for host code"
#endif

#include <cuda_runtime.h>

#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_scan.cuh>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "../core/bfloat16.hpp"
#include "../core/scatter.hpp"
#include "../scatter_error.hpp"
#include "../tier.hpp"
#include "launch.hpp"
#include "scatter_kernels.hpp"

namespace bitexact {
namespace cuda {
namespace scatter_detail {

__device__ inline thread_index scatter_thread() { return thread_index{blockIdx.x, threadIdx.x, gridDim.x, blockDim.x}; }

template <class I>
__global__ void validate_kernel(const I* idx, std::uint64_t n, std::uint64_t bound, unsigned long long* first_bad) {
  validate_body(scatter_thread(), idx, n, bound, first_bad);
}
template <class I, class U>
__global__ void make_pairs_kernel(const I* idx, std::uint64_t n, U* key, U* pos) {
  make_pairs_body(scatter_thread(), idx, n, key, pos);
}
template <class U>
__global__ void run_flags_kernel(sorted_view<U> s, U* flag) {
  run_flags_body(scatter_thread(), s, flag);
}
template <class U>
__global__ void run_begin_kernel(sorted_view<U> s, const U* run_id, U* run_begin, U* run_count) {
  run_begin_body(scatter_thread(), s, run_id, run_begin, run_count);
}
template <class A, class U, class Combine, class ValueOf>
__global__ void run_partials_kernel(sorted_view<U> s, const U* run_begin, const U* run_count, std::uint64_t width,
                                    ValueOf value, Combine combine, A* partial) {
  run_partials_body<A>(scatter_thread(), s, run_begin, run_count, width, value, combine, partial);
}
template <class A, class U, class Combine, class Apply>
__global__ void target_combine_kernel(sorted_view<U> s, const U* run_begin, const U* run_count, std::uint64_t width,
                                      const A* partial, Combine combine, Apply apply) {
  target_combine_body<A>(scatter_thread(), s, run_begin, run_count, width, partial, combine, apply);
}
template <class A, class U, class ValueOf, class Apply>
__global__ void exact_target_kernel(sorted_view<U> s, const U* run_begin, const U* run_count, std::uint64_t width,
                                    ValueOf value, const A* start, Apply apply) {
  exact_target_body<A>(scatter_thread(), s, run_begin, run_count, width, value, start, apply);
}

inline void throw_on_error(cudaError_t e, const char* op, const char* what) {
  if (e != cudaSuccess)
    throw std::runtime_error(std::string("bitexact::cuda::") + op + ": " + what + " failed: " + cudaGetErrorName(e) +
                             ": " + cudaGetErrorString(e));
}
inline void check_launch(const char* op) { throw_on_error(cudaGetLastError(), op, "kernel launch"); }

/// Fills in a {0, 0} shape from the current device (4 x SM count blocks of 256 threads).
inline launch_shape pick_shape(launch_shape shape, std::uint64_t work_items, const char* op) {
  unsigned sms = 0;
  if (shape.grid == 0) {
    int dev = 0, count = 0;
    throw_on_error(cudaGetDevice(&dev), op, "cudaGetDevice");
    throw_on_error(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, dev), op,
                   "cudaDeviceGetAttribute(MultiProcessorCount)");
    sms = static_cast<unsigned>(count);
  }
  return resolve_shape(shape, sms, work_items);
}

inline std::size_t align_up(std::size_t x) { return (x + 255) & ~std::size_t(255); }

/// Where each temporary lives in the workspace (offsets from its start, 256-byte aligned).
/// CUB is given the item count as U, so 32-bit layouts use 32-bit offsets.
template <class U, class A>
struct workspace_layout {
  std::size_t first_bad, run_count, key_in, pos_in, key, pos, run_begin, partial, cub, total;
  std::size_t cub_bytes;

  workspace_layout(std::uint64_t n, std::uint64_t n_out, std::uint64_t width, tier t, cudaStream_t st, const char* op) {
    std::size_t sort_bytes = 0, scan_bytes = 0;
    throw_on_error(cub::DeviceRadixSort::SortPairs(nullptr, sort_bytes, static_cast<const U*>(nullptr),
                                                   static_cast<U*>(nullptr), static_cast<const U*>(nullptr),
                                                   static_cast<U*>(nullptr), static_cast<U>(n), 0, key_bits(n_out), st),
                   op, "cub::DeviceRadixSort::SortPairs (size query)");
    throw_on_error(cub::DeviceScan::ExclusiveSum(nullptr, scan_bytes, static_cast<const U*>(nullptr),
                                                 static_cast<U*>(nullptr), static_cast<U>(n), st),
                   op, "cub::DeviceScan::ExclusiveSum (size query)");
    cub_bytes = sort_bytes > scan_bytes ? sort_bytes : scan_bytes;
    std::size_t o = 0;
    auto take = [&o](std::size_t bytes) {
      const std::size_t at = o;
      o += align_up(bytes == 0 ? 1 : bytes);
      return at;
    };
    first_bad = take(sizeof(unsigned long long));
    run_count = take(sizeof(U));
    key_in = take(n * sizeof(U));
    pos_in = take(n * sizeof(U));
    key = take(n * sizeof(U));
    pos = take(n * sizeof(U));
    run_begin = take((n + 1) * sizeof(U));
    partial = take(t == tier::fixed_order ? n * width * sizeof(A) : 0);
    cub = take(cub_bytes);
    total = o;
  }
};

inline bool ranges_overlap(const void* a, std::size_t abytes, const void* b, std::size_t bbytes) {
  if (abytes == 0 || bbytes == 0 || a == nullptr || b == nullptr) return false;
  const auto pa = reinterpret_cast<std::uintptr_t>(a), pb = reinterpret_cast<std::uintptr_t>(b);
  return pa < pb + bbytes && pb < pa + abytes;
}

/// The whole pipeline for index_add (width 1) and index_add_rows.
template <class T, class I>
void index_add_impl(const char* op, void* d_temp, std::size_t& temp_bytes, core::accumulation_t<T>* d_out,
                    std::size_t n_out, std::size_t width, const I* d_idx, const T* d_src, std::size_t n, tier t,
                    cudaStream_t st, launch_shape shape) {
  using A = core::accumulation_t<T>;
  static_assert(std::is_integral<I>::value, "index_add: indices must be integers");
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value || std::is_same<T, bfloat16>::value,
                "index_add: sources are float, double or bfloat16");
  if (n == 0) {
    if (d_temp == nullptr) temp_bytes = 0;
    return;
  }
  if (width == 0) throw std::invalid_argument(std::string("bitexact::cuda::") + op + ": width must be > 0");
  with_index_type(n, n_out, [&](auto u) {
    using U = decltype(u);
    const workspace_layout<U, A> L(n, n_out, width, t, st, op);
    if (d_temp == nullptr) {
      temp_bytes = L.total;
      return 0;
    }
    if (temp_bytes < L.total)
      throw std::invalid_argument(std::string("bitexact::cuda::") + op + ": workspace of " + std::to_string(temp_bytes) +
                                  " bytes, needs " + std::to_string(L.total));
    if (d_out == nullptr && n_out > 0)
      throw std::invalid_argument(std::string("bitexact::cuda::") + op + ": null out with n_out > 0");
    if (d_idx == nullptr || d_src == nullptr)
      throw std::invalid_argument(std::string("bitexact::cuda::") + op + ": null idx or src with n > 0");
    if (ranges_overlap(d_out, n_out * width * sizeof(A), d_src, n * width * sizeof(T)) ||
        ranges_overlap(d_out, n_out * width * sizeof(A), d_idx, n * sizeof(I)) ||
        ranges_overlap(d_out, n_out * width * sizeof(A), d_temp, temp_bytes))
      throw std::invalid_argument(std::string("bitexact::cuda::") + op + ": out overlaps src, idx or the workspace");
    unsigned char* base = static_cast<unsigned char*>(d_temp);
    auto* first_bad = reinterpret_cast<unsigned long long*>(base + L.first_bad);
    U* run_count = reinterpret_cast<U*>(base + L.run_count);
    U* key_in = reinterpret_cast<U*>(base + L.key_in);
    U* pos_in = reinterpret_cast<U*>(base + L.pos_in);
    U* key = reinterpret_cast<U*>(base + L.key);
    U* pos = reinterpret_cast<U*>(base + L.pos);
    U* run_begin = reinterpret_cast<U*>(base + L.run_begin);
    A* partial = reinterpret_cast<A*>(base + L.partial);
    void* cub_temp = base + L.cub;

    // 1. Validation, then one synchronisation: nothing is written before it passes.
    const launch_shape sh = pick_shape(shape, n, op);
    throw_on_error(cudaMemsetAsync(first_bad, 0xff, sizeof(unsigned long long), st), op, "cudaMemsetAsync");
    validate_kernel<I><<<sh.grid, sh.block, 0, st>>>(d_idx, n, n_out, first_bad);
    check_launch(op);
    unsigned long long bad = no_bad_position;
    throw_on_error(cudaMemcpyAsync(&bad, first_bad, sizeof bad, cudaMemcpyDeviceToHost, st), op, "cudaMemcpyAsync");
    throw_on_error(cudaStreamSynchronize(st), op, "cudaStreamSynchronize");
    if (bad != no_bad_position) {
      I v{};
      throw_on_error(cudaMemcpy(&v, d_idx + bad, sizeof(I), cudaMemcpyDeviceToHost), op, "cudaMemcpy");
      throw make_index_error(op, bad, v, n_out);
    }

    // 2-6. The sorted layout and its runs.
    make_pairs_kernel<I, U><<<sh.grid, sh.block, 0, st>>>(d_idx, n, key_in, pos_in);
    check_launch(op);
    std::size_t cub_bytes = L.cub_bytes;
    throw_on_error(cub::DeviceRadixSort::SortPairs(cub_temp, cub_bytes, key_in, key, pos_in, pos, static_cast<U>(n), 0, key_bits(n_out), st),
                   op, "cub::DeviceRadixSort::SortPairs");
    const sorted_view<U> s{key, pos, n};
    U* flag = key_in;   // free after the sort
    U* run_id = pos_in;
    run_flags_kernel<U><<<sh.grid, sh.block, 0, st>>>(s, flag);
    check_launch(op);
    cub_bytes = L.cub_bytes;
    throw_on_error(cub::DeviceScan::ExclusiveSum(cub_temp, cub_bytes, flag, run_id, static_cast<U>(n), st), op,
                   "cub::DeviceScan::ExclusiveSum");
    run_begin_kernel<U><<<sh.grid, sh.block, 0, st>>>(s, run_id, run_begin, run_count);
    check_launch(op);

    // 7-8. Combine and apply. Items are (run, column); at most n * width of them.
    const launch_shape sw = pick_shape(shape, n * width, op);
    const row_values<T> value{d_src, width};
    if (t == tier::exact) {
      exact_target_kernel<A, U><<<sw.grid, sw.block, 0, st>>>(s, run_begin, run_count, width, value, d_out,
                                                              store_into<A>{d_out, width});
      check_launch(op);
    } else {
      run_partials_kernel<A, U><<<sw.grid, sw.block, 0, st>>>(s, run_begin, run_count, width, value, core::plus{},
                                                              partial);
      check_launch(op);
      target_combine_kernel<A, U><<<sw.grid, sw.block, 0, st>>>(s, run_begin, run_count, width, partial, core::plus{},
                                                                add_into<A>{d_out, width});
      check_launch(op);
    }
    return 0;
  });
}

/// Runs fn(d_temp, bytes) with a workspace from cudaMallocAsync on st, freed (asynchronously,
/// stream-ordered) afterwards, also when fn throws.
template <class Fn>
void with_workspace(std::size_t bytes, cudaStream_t st, const char* op, Fn fn) {
  if (bytes == 0) return fn(static_cast<void*>(nullptr), bytes);
  void* p = nullptr;
  throw_on_error(cudaMallocAsync(&p, bytes, st), op, "cudaMallocAsync");
  try {
    fn(p, bytes);
  } catch (...) {
    cudaFreeAsync(p, st);
    throw;
  }
  throw_on_error(cudaFreeAsync(p, st), op, "cudaFreeAsync");
}

}  // namespace scatter_detail

/// index_add with a caller's workspace (CUB's two-phase convention): d_out[d_idx[i]] +=
/// d_src[i] for i < n, fixed_order (canonical order of core/scatter.hpp) or exact. With
/// d_temp == nullptr only sets temp_bytes. T is float, double, or bfloat16 into a float out.
template <class T, class I>
void index_add(void* d_temp, std::size_t& temp_bytes, core::accumulation_t<T>* d_out, std::size_t n_out,
               const I* d_idx, const T* d_src, std::size_t n, tier t = tier::fixed_order, cudaStream_t st = nullptr,
               launch_shape shape = {}) {
  scatter_detail::index_add_impl("index_add", d_temp, temp_bytes, d_out, n_out, 1, d_idx, d_src, n, t, st, shape);
}

/// index_add with a workspace allocated (and freed) on the stream.
template <class T, class I>
void index_add(core::accumulation_t<T>* d_out, std::size_t n_out, const I* d_idx, const T* d_src, std::size_t n,
               tier t = tier::fixed_order, cudaStream_t st = nullptr, launch_shape shape = {}) {
  std::size_t bytes = 0;
  scatter_detail::index_add_impl("index_add", nullptr, bytes, d_out, n_out, 1, d_idx, d_src, n, t, st, shape);
  scatter_detail::with_workspace(bytes, st, "index_add", [&](void* p, std::size_t b) {
    scatter_detail::index_add_impl("index_add", p, b, d_out, n_out, 1, d_idx, d_src, n, t, st, shape);
  });
}

/// Row form with a caller's workspace: d_out[d_idx[i], :] += d_src[i, :] (row-major, `width`
/// values per row); every column combines like the 1-D form.
template <class T, class I>
void index_add_rows(void* d_temp, std::size_t& temp_bytes, core::accumulation_t<T>* d_out, std::size_t n_out,
                    std::size_t width, const I* d_idx, const T* d_src, std::size_t n, tier t = tier::fixed_order,
                    cudaStream_t st = nullptr, launch_shape shape = {}) {
  scatter_detail::index_add_impl("index_add_rows", d_temp, temp_bytes, d_out, n_out, width, d_idx, d_src, n, t, st,
                                 shape);
}

/// Row form with a workspace allocated (and freed) on the stream.
template <class T, class I>
void index_add_rows(core::accumulation_t<T>* d_out, std::size_t n_out, std::size_t width, const I* d_idx,
                    const T* d_src, std::size_t n, tier t = tier::fixed_order, cudaStream_t st = nullptr,
                    launch_shape shape = {}) {
  std::size_t bytes = 0;
  scatter_detail::index_add_impl("index_add_rows", nullptr, bytes, d_out, n_out, width, d_idx, d_src, n, t, st, shape);
  scatter_detail::with_workspace(bytes, st, "index_add_rows", [&](void* p, std::size_t b) {
    scatter_detail::index_add_impl("index_add_rows", p, b, d_out, n_out, width, d_idx, d_src, n, t, st, shape);
  });
}

}  // namespace cuda
}  // namespace bitexact
