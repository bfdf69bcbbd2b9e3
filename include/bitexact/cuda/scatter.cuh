// bitexact/cuda/scatter.cuh - CUDA kernels and host launchers of deterministic index_add
// (1-D and rows), scatter_reduce and segment_reduce.
//
// nvcc only. The kernels are thin: each builds a thread_index and calls a BITEXACT_HD body of
// cuda/scatter_kernels.hpp - the same bodies that tests/cuda_scatter_emulation_test.cpp runs on
// the CPU for many launch shapes against reference/scatter.hpp. The pipeline (see that header):
// validate -> (key, position) pairs -> cub::DeviceRadixSort::SortPairs (stable) -> run flags ->
// cub::DeviceScan::ExclusiveSum -> run starts -> per-run sequential partials -> per-target
// aligned chunk tree (fixed_order), or per-target exact sums (exact; targets with more than
// 4096 contributions merge per-run exact accumulators digit-wise with integer atomics, which
// are order-independent). No float atomics: the
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
// (4 or 8 bytes each) + width accumulation values per source (fixed_order) or about
// 0.05 (float) / 0.27 (double) bytes per source and column of digit slots (exact) + CUB's
// sort space.
//
// Synchronisation and errors. Validation (an index outside [0, n_out)) runs first, on the
// device; the launcher copies its result back and synchronises the stream once, then throws
// bitexact::index_error (lowest bad position, as on the CPU) without launching any kernel that
// writes out. Argument errors throw std::invalid_argument, CUDA errors std::runtime_error. All
// later passes are asynchronous on `st`. n == 0 is a no-op (segment_reduce still writes the
// empty values; the workspace query then returns 1 byte). shape {0, 0} lets the launcher
// choose (4 blocks per SM x 256 threads, fewer when there is less work); any shape gives the
// same bits.
//
// Local memory (ptxas, sm_90, double): the chunk-tree kernel keeps a 648-byte stack frame (the
// sparse tree of core::scatter_combiner), the exact kernels 1.2 KB (per-run accumulator) and
// 3.4 KB (per-target accumulator and its rounding copy). Above CUDA's 1 KB default stack the
// driver raises the per-thread stack limit at launch.
//
// NaN. Every NaN result is the canonical quiet NaN (core::canonicalize in the applies), as on
// the CPU: CUDA's adds return 0x7fffffff where x86 propagates an operand's payload or gives a
// negative NaN for Inf - Inf, and the canonical form hides that.
//
// Naming. CUB brings a global ::cuda namespace (libcu++), so after `using namespace bitexact;`
// write bitexact::cuda:: in full.
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
template <class A, class U, class ValueOf>
__global__ void exact_heavy_runs_kernel(sorted_view<U> s, const U* run_begin, const U* run_count, std::uint64_t width,
                                        ValueOf value, exact_slots<A> slots) {
  exact_heavy_runs_body<A>(scatter_thread(), s, run_begin, run_count, width, value, slots);
}
template <class A, class U, class ValueOf, class Apply>
__global__ void exact_target_kernel(sorted_view<U> s, const U* run_begin, const U* run_count, std::uint64_t width,
                                    ValueOf value, const A* start, exact_slots<A> slots, Apply apply) {
  exact_target_body<A>(scatter_thread(), s, run_begin, run_count, width, value, start, slots, apply);
}

template <class A>
__global__ void fill_kernel(A* out, std::uint64_t n, A v) {
  fill_body(scatter_thread(), out, n, v);
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
static_assert(sizeof(std::size_t) == sizeof(std::uintptr_t), "align_up also rounds addresses");

/// Where each temporary lives in the workspace (offsets from its start, 256-byte aligned).
/// CUB is given the item count as U, so 32-bit layouts use 32-bit offsets.
template <class U, class A>
struct workspace_layout {
  std::size_t first_bad, run_count, key_in, pos_in, key, pos, run_begin, partial, digits, flags, cub, total;
  std::size_t digits_bytes, flags_bytes;
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
    const std::uint64_t slots = t == tier::exact ? exact_slots<A>::count(n, width) : 0;
    digits_bytes = slots * exact_slots<A>::digits_per_slot * sizeof(unsigned long long);
    flags_bytes = slots * sizeof(unsigned int);
    digits = take(digits_bytes);
    flags = take(flags_bytes);
    cub = take(cub_bytes);
    total = o + 256;  // room to align a caller's workspace to 256 bytes
  }
};

inline bool ranges_overlap(const void* a, std::size_t abytes, const void* b, std::size_t bbytes) {
  if (abytes == 0 || bbytes == 0 || a == nullptr || b == nullptr) return false;
  const auto pa = reinterpret_cast<std::uintptr_t>(a), pb = reinterpret_cast<std::uintptr_t>(b);
  return pa < pb + bbytes && pb < pa + abytes;
}

/// What a pipeline call needs besides the index array: how to read values, the (+) and the
/// two applies, the exact tier's start values (nullable), a pass that writes before the
/// combine (segment reductions fill their empty value; runs after validation, also for n == 0),
/// and the output range (must not overlap the workspace).
struct no_pre_write {
  void operator()(cudaStream_t, launch_shape, const char*) const {}
};
template <class A>
struct fill_pre_write {
  A* out;
  std::uint64_t count;
  A value;
  void operator()(cudaStream_t st, launch_shape shape, const char* op) const {
    if (count == 0) return;
    const launch_shape sh = pick_shape(shape, count, op);
    fill_kernel<A><<<sh.grid, sh.block, 0, st>>>(out, count, value);
    check_launch(op);
  }
};

/// The whole pipeline: validation, then pre_write, then passes 2-8 (or 8'). CUB's two-phase
/// convention: d_temp == nullptr only sets temp_bytes (always >= 1 byte).
template <class A, class I, class ValueOf, class Combine, class FixedApply, class ExactApply, class PreWrite>
void run_pipeline(const char* op, void* d_temp, std::size_t& temp_bytes, std::size_t n_out, std::size_t width,
                  const I* d_idx, std::size_t n, bool exact, ValueOf value, Combine combine, FixedApply fixed_apply,
                  const A* start, ExactApply exact_apply, PreWrite pre_write, const void* d_out, std::size_t out_bytes,
                  cudaStream_t st, launch_shape shape) {
  static_assert(std::is_integral<I>::value, "scatter: indices must be integers");
  if (n == 0) {
    if (d_temp == nullptr) {
      temp_bytes = 1;
      return;
    }
    pre_write(st, shape, op);
    return;
  }
  if (width == 0) throw std::invalid_argument(std::string("bitexact::cuda::") + op + ": width must be > 0");
  with_index_type(n, n_out, [&](auto u) {
    using U = decltype(u);
    const workspace_layout<U, A> L(n, n_out, width, exact ? tier::exact : tier::fixed_order, st, op);
    if (d_temp == nullptr) {
      temp_bytes = L.total;
      return 0;
    }
    if (temp_bytes < L.total)
      throw std::invalid_argument(std::string("bitexact::cuda::") + op + ": workspace of " + std::to_string(temp_bytes) +
                                  " bytes, needs " + std::to_string(L.total));
    if (d_idx == nullptr) throw std::invalid_argument(std::string("bitexact::cuda::") + op + ": null indices with n > 0");
    if (ranges_overlap(d_out, out_bytes, d_temp, temp_bytes))
      throw std::invalid_argument(std::string("bitexact::cuda::") + op + ": the output overlaps the workspace");
    unsigned char* base = reinterpret_cast<unsigned char*>(
        align_up(reinterpret_cast<std::uintptr_t>(d_temp)));  // the layout's offsets are 256-aligned
    auto* first_bad = reinterpret_cast<unsigned long long*>(base + L.first_bad);
    U* run_count = reinterpret_cast<U*>(base + L.run_count);
    U* key_in = reinterpret_cast<U*>(base + L.key_in);
    U* pos_in = reinterpret_cast<U*>(base + L.pos_in);
    U* key = reinterpret_cast<U*>(base + L.key);
    U* pos = reinterpret_cast<U*>(base + L.pos);
    U* run_begin = reinterpret_cast<U*>(base + L.run_begin);
    A* partial = reinterpret_cast<A*>(base + L.partial);
    const exact_slots<A> slots{reinterpret_cast<unsigned long long*>(base + L.digits),
                               reinterpret_cast<unsigned int*>(base + L.flags)};
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
    pre_write(st, shape, op);

    // 2-6. The sorted layout and its runs.
    make_pairs_kernel<I, U><<<sh.grid, sh.block, 0, st>>>(d_idx, n, key_in, pos_in);
    check_launch(op);
    std::size_t cub_bytes = L.cub_bytes;
    throw_on_error(cub::DeviceRadixSort::SortPairs(cub_temp, cub_bytes, key_in, key, pos_in, pos, static_cast<U>(n), 0,
                                                   key_bits(n_out), st),
                   op, "cub::DeviceRadixSort::SortPairs");
    const sorted_view<U> s{key, pos, n};
    U* flag = key_in;  // free after the sort
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
    if (exact) {
      throw_on_error(cudaMemsetAsync(slots.digits, 0, L.digits_bytes, st), op, "cudaMemsetAsync");
      throw_on_error(cudaMemsetAsync(slots.flags, 0, L.flags_bytes, st), op, "cudaMemsetAsync");
      exact_heavy_runs_kernel<A, U><<<sw.grid, sw.block, 0, st>>>(s, run_begin, run_count, width, value, slots);
      check_launch(op);
      exact_target_kernel<A, U><<<sw.grid, sw.block, 0, st>>>(s, run_begin, run_count, width, value, start, slots,
                                                              exact_apply);
      check_launch(op);
    } else {
      run_partials_kernel<A, U><<<sw.grid, sw.block, 0, st>>>(s, run_begin, run_count, width, value, combine, partial);
      check_launch(op);
      target_combine_kernel<A, U><<<sw.grid, sw.block, 0, st>>>(s, run_begin, run_count, width, partial, combine,
                                                                fixed_apply);
      check_launch(op);
    }
    return 0;
  });
}

/// index_add (width 1) and index_add_rows.
template <class T, class I>
void index_add_impl(const char* op, void* d_temp, std::size_t& temp_bytes, core::accumulation_t<T>* d_out,
                    std::size_t n_out, std::size_t width, const I* d_idx, const T* d_src, std::size_t n, tier t,
                    cudaStream_t st, launch_shape shape) {
  using A = core::accumulation_t<T>;
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value || std::is_same<T, bfloat16>::value,
                "index_add: sources are float, double or bfloat16");
  if (n > 0 && d_temp != nullptr) {
    if (d_out == nullptr && n_out > 0)
      throw std::invalid_argument(std::string("bitexact::cuda::") + op + ": null out with n_out > 0");
    if (d_src == nullptr) throw std::invalid_argument(std::string("bitexact::cuda::") + op + ": null src with n > 0");
    if (ranges_overlap(d_out, n_out * width * sizeof(A), d_src, n * width * sizeof(T)) ||
        ranges_overlap(d_out, n_out * width * sizeof(A), d_idx, n * sizeof(I)))
      throw std::invalid_argument(std::string("bitexact::cuda::") + op + ": out overlaps src or idx");
  }
  run_pipeline<A>(op, d_temp, temp_bytes, n_out, width, d_idx, n, t == tier::exact, row_values<T>{d_src, width},
                  core::plus{}, add_into<A>{d_out, width}, d_out, store_into<A>{d_out, width}, no_pre_write{}, d_out,
                  n_out * width * sizeof(A), st, shape);
}

template <class A, class I>
void scatter_reduce_impl(void* d_temp, std::size_t& temp_bytes, A* d_out, std::size_t n_out, const I* d_idx,
                         const A* d_src, std::size_t n, scatter_op op, bool include_self, tier t, cudaStream_t st,
                         launch_shape shape) {
  static_assert(std::is_same<A, float>::value || std::is_same<A, double>::value, "scatter_reduce: float or double");
  if (t == tier::exact && op == scatter_op::prod)
    throw std::invalid_argument("bitexact::cuda::scatter_reduce: prod has no exact tier (use tier::fixed_order)");
  if (n > 0 && d_temp != nullptr) {
    if (d_out == nullptr && n_out > 0)
      throw std::invalid_argument("bitexact::cuda::scatter_reduce: null out with n_out > 0");
    if (d_src == nullptr) throw std::invalid_argument("bitexact::cuda::scatter_reduce: null src with n > 0");
    if (ranges_overlap(d_out, n_out * sizeof(A), d_src, n * sizeof(A)) ||
        ranges_overlap(d_out, n_out * sizeof(A), d_idx, n * sizeof(I)))
      throw std::invalid_argument("bitexact::cuda::scatter_reduce: out overlaps src or idx");
  }
  const bool mean = op == scatter_op::mean;
  const std::uint64_t extra = include_self ? 1 : 0;
  with_combine(op, [&](auto combine) {
    using C = decltype(combine);
    run_pipeline<A>("scatter_reduce", d_temp, temp_bytes, n_out, 1, d_idx, n, exact_sum_op(op, t),
                    row_values<A>{d_src, 1}, combine, reduce_into<A, C>{d_out, 1, combine, include_self, mean, extra},
                    include_self ? static_cast<const A*>(d_out) : nullptr,
                    reduce_into<A, C>{d_out, 1, combine, false, mean, extra}, no_pre_write{}, d_out, n_out * sizeof(A),
                    st, shape);
  });
}

template <class D, class I>
void segment_reduce_impl(void* d_temp, std::size_t& temp_bytes, core::accumulation_t<D>* d_out,
                         std::size_t num_segments, const I* d_ids, const D* d_data, std::size_t n, scatter_op op, tier t,
                         cudaStream_t st, launch_shape shape) {
  using A = core::accumulation_t<D>;
  static_assert(std::is_same<D, float>::value || std::is_same<D, double>::value || std::is_same<D, bfloat16>::value,
                "segment_reduce: data is float, double or bfloat16");
  if (t == tier::exact && op == scatter_op::prod)
    throw std::invalid_argument("bitexact::cuda::segment_reduce: prod has no exact tier (use tier::fixed_order)");
  if (d_temp != nullptr) {
    if (d_out == nullptr && num_segments > 0)
      throw std::invalid_argument("bitexact::cuda::segment_reduce: null out with segments");
    if (n > 0 && d_data == nullptr) throw std::invalid_argument("bitexact::cuda::segment_reduce: null data with n > 0");
    if (ranges_overlap(d_out, num_segments * sizeof(A), d_data, n * sizeof(D)) ||
        ranges_overlap(d_out, num_segments * sizeof(A), d_ids, n * sizeof(I)))
      throw std::invalid_argument("bitexact::cuda::segment_reduce: out overlaps data or ids");
  }
  const bool mean = op == scatter_op::mean;
  with_combine(op, [&](auto combine) {
    using C = decltype(combine);
    const reduce_into<A, C> apply{d_out, 1, combine, false, mean, 0};
    run_pipeline<A>("segment_reduce", d_temp, temp_bytes, num_segments, 1, d_ids, n, exact_sum_op(op, t),
                    row_values<D>{d_data, 1}, combine, apply, static_cast<const A*>(nullptr), apply,
                    fill_pre_write<A>{d_out, num_segments, empty_segment_value<A>(op)}, d_out, num_segments * sizeof(A),
                    st, shape);
  });
}

/// Runs fn(d_temp, bytes) with a workspace from cudaMallocAsync on st, freed (asynchronously,
/// stream-ordered) afterwards, also when fn throws.
template <class Fn>
void with_workspace(std::size_t bytes, cudaStream_t st, const char* op, Fn fn) {
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
  if (n == 0) return;
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
  if (n == 0) return;
  std::size_t bytes = 0;
  scatter_detail::index_add_impl("index_add_rows", nullptr, bytes, d_out, n_out, width, d_idx, d_src, n, t, st, shape);
  scatter_detail::with_workspace(bytes, st, "index_add_rows", [&](void* p, std::size_t b) {
    scatter_detail::index_add_impl("index_add_rows", p, b, d_out, n_out, width, d_idx, d_src, n, t, st, shape);
  });
}

/// PyTorch's scatter_reduce with a caller's workspace (semantics of bitexact::scatter_reduce):
/// for every target t with contributions, d_out[t] = op(d_out[t] if include_self,
/// contributions...) in the canonical order; mean divides by the count (+1 with include_self);
/// exact: sum/mean from the exact sum, max/min as fixed_order, prod refused
/// (std::invalid_argument). Targets without contributions keep their value.
template <class T, class I>
void scatter_reduce(void* d_temp, std::size_t& temp_bytes, T* d_out, std::size_t n_out, const I* d_idx,
                    const T* d_src, std::size_t n, scatter_op op, bool include_self = true, tier t = tier::fixed_order,
                    cudaStream_t st = nullptr, launch_shape shape = {}) {
  scatter_detail::scatter_reduce_impl(d_temp, temp_bytes, d_out, n_out, d_idx, d_src, n, op, include_self, t, st,
                                      shape);
}

/// scatter_reduce with a workspace allocated (and freed) on the stream.
template <class T, class I>
void scatter_reduce(T* d_out, std::size_t n_out, const I* d_idx, const T* d_src, std::size_t n, scatter_op op,
                    bool include_self = true, tier t = tier::fixed_order, cudaStream_t st = nullptr,
                    launch_shape shape = {}) {
  if (t == tier::exact && op == scatter_op::prod)
    throw std::invalid_argument("bitexact::cuda::scatter_reduce: prod has no exact tier (use tier::fixed_order)");
  if (n == 0) return;
  std::size_t bytes = 0;
  scatter_detail::scatter_reduce_impl(nullptr, bytes, d_out, n_out, d_idx, d_src, n, op, include_self, t, st, shape);
  scatter_detail::with_workspace(bytes, st, "scatter_reduce", [&](void* p, std::size_t b) {
    scatter_detail::scatter_reduce_impl(p, b, d_out, n_out, d_idx, d_src, n, op, include_self, t, st, shape);
  });
}

/// Unsorted segment reduction with a caller's workspace (semantics of
/// bitexact::segment_reduce): d_out[s] = op over d_data[i] with d_ids[i] == s, for every
/// s < num_segments; empty segments get the empty value (sum/mean +0, prod 1, max -Inf,
/// min +Inf), also when n == 0. D is float, double, or bfloat16 into a float out.
template <class D, class I>
void segment_reduce(void* d_temp, std::size_t& temp_bytes, core::accumulation_t<D>* d_out, std::size_t num_segments,
                    const I* d_ids, const D* d_data, std::size_t n, scatter_op op, tier t = tier::fixed_order,
                    cudaStream_t st = nullptr, launch_shape shape = {}) {
  scatter_detail::segment_reduce_impl(d_temp, temp_bytes, d_out, num_segments, d_ids, d_data, n, op, t, st, shape);
}

/// segment_reduce with a workspace allocated (and freed) on the stream.
template <class D, class I>
void segment_reduce(core::accumulation_t<D>* d_out, std::size_t num_segments, const I* d_ids, const D* d_data,
                    std::size_t n, scatter_op op, tier t = tier::fixed_order, cudaStream_t st = nullptr,
                    launch_shape shape = {}) {
  std::size_t bytes = 0;
  scatter_detail::segment_reduce_impl(nullptr, bytes, d_out, num_segments, d_ids, d_data, n, op, t, st, shape);
  scatter_detail::with_workspace(bytes, st, "segment_reduce", [&](void* p, std::size_t b) {
    scatter_detail::segment_reduce_impl(p, b, d_out, num_segments, d_ids, d_data, n, op, t, st, shape);
  });
}

}  // namespace cuda
}  // namespace bitexact
