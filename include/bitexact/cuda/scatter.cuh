// bitexact/cuda/scatter.cuh - CUDA kernels and host launchers of deterministic index_add
// (1-D and rows), scatter_reduce, segment_reduce, bincount, histogram and the embedding-bag
// ops (forward in sum/mean/max mode, max with positions, backward, max backward).
//
// Every op has the semantics and the bits of its CPU namesake in bitexact/scatter.hpp. The
// ops after segment_reduce feed the same pipeline: bincount is a segment sum (the unweighted
// count uses integer atomics, exact in any order); histogram bins every value
// (core::histogram_bin) and sums per bin over one extra, dropped bin for ignored values;
// embedding_bag uses the bag of each position as its key - bag ids are already sorted, so the
// sort is skipped - and the position as its source position; the backward is the row form of
// index_add with each position's gradient computed on the fly from grad_out; the max backward
// is the 1-D index_add into the recorded cells, empty bags into a dropped sentinel cell.
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
#include "runtime.cuh"
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
template <class I>
__global__ void count_kernel(const I* idx, std::uint64_t n, unsigned long long* counts) {
  count_body(scatter_thread(), idx, n, counts);
}
template <class A>
__global__ void histogram_bins_kernel(const A* x, std::uint64_t n, A lo, A hi, std::uint64_t n_bins, std::uint64_t* bin) {
  histogram_bins_body(scatter_thread(), x, n, lo, hi, n_bins, bin);
}
template <class I>
__global__ void bag_offsets_check_kernel(const I* offsets, std::uint64_t n_bags, std::uint64_t n_indices,
                                         unsigned long long* first_bad) {
  bag_offsets_check_body(scatter_thread(), offsets, n_bags, n_indices, first_bad);
}
template <class I>
__global__ void bag_of_kernel(const I* offsets, std::uint64_t n_bags, std::uint64_t n_indices, std::uint64_t* bag_of) {
  bag_of_body(scatter_thread(), offsets, n_bags, n_indices, bag_of);
}
template <class A, class I, class Tab>
__global__ void bag_max_positions_kernel(const A* out, bag_rows<A, I, Tab> rows, const I* offsets, std::uint64_t n_bags,
                                         std::uint64_t n_indices, std::int64_t* max_positions) {
  bag_max_positions_body(scatter_thread(), out, rows, offsets, n_bags, n_indices, max_positions);
}
template <class I>
__global__ void max_backward_targets_kernel(const std::int64_t* max_positions, std::uint64_t m, const I* indices,
                                            std::uint64_t n_indices, std::uint64_t n_rows, std::uint64_t width,
                                            std::uint64_t* target, unsigned long long* first_bad) {
  max_backward_targets_body(scatter_thread(), max_positions, m, indices, n_indices, n_rows, width, target, first_bad);
}

using detail::check_launch;
using detail::launch;
using detail::pick_shape;
using detail::throw_on_error;

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

/// Validation and the one synchronisation before anything is written: sets words[0 .. count)
/// to no_bad_position, runs launch() (kernels that atomicMin lowest bad positions into them),
/// copies them to host and waits.
template <class Launch>
void first_bad_positions(unsigned long long* d_words, unsigned long long* h_words, int count, cudaStream_t st,
                         const char* op, Launch launch) {
  throw_on_error(cudaMemsetAsync(d_words, 0xff, count * sizeof(unsigned long long), st), op, "cudaMemsetAsync");
  launch();
  throw_on_error(cudaMemcpyAsync(h_words, d_words, count * sizeof(unsigned long long), cudaMemcpyDeviceToHost, st), op,
                 "cudaMemcpyAsync");
  throw_on_error(cudaStreamSynchronize(st), op, "cudaStreamSynchronize");
}

/// One value of a device array, copied to the host (to name it in an error).
template <class V>
V device_value(const V* d, std::uint64_t at, const char* op) {
  V v{};
  throw_on_error(cudaMemcpy(&v, d + at, sizeof(V), cudaMemcpyDeviceToHost), op, "cudaMemcpy");
  return v;
}

/// Launches validate_kernel over idx (if n > 0) writing into *first_bad.
template <class I>
void launch_validate(const I* d_idx, std::uint64_t n, std::uint64_t bound, unsigned long long* first_bad,
                     cudaStream_t st, launch_shape shape, const char* op) {
  if (n == 0) return;
  launch(op, validate_kernel<I>, shape, n, st, d_idx, n, bound, first_bad);
}

/// An op's own arrays cut off the front of a caller's workspace (256-aligned pieces); the rest
/// goes to the pipeline. A workspace for pieces of `head` bytes (a sum of piece_bytes) and a
/// pipeline of pipeline_bytes needs cut_total(head, pipeline_bytes).
inline std::size_t piece_bytes(std::size_t bytes) { return align_up(bytes == 0 ? 1 : bytes); }
inline std::size_t cut_total(std::size_t head, std::size_t pipeline_bytes) { return 256 + head + pipeline_bytes; }
struct workspace_cutter {
  unsigned char* at;
  unsigned char* end;
  workspace_cutter(void* d_temp, std::size_t bytes)
      : at(reinterpret_cast<unsigned char*>(align_up(reinterpret_cast<std::uintptr_t>(d_temp)))),
        end(static_cast<unsigned char*>(d_temp) + bytes) {}
  template <class V>
  V* take(std::uint64_t count) {
    V* p = reinterpret_cast<V*>(at);
    at += piece_bytes(count * sizeof(V));
    return p;
  }
  void* rest() const { return at; }
  std::size_t rest_bytes() const { return static_cast<std::size_t>(end - at); }
};

/// Throws if a caller's workspace is smaller than needed.
inline void check_workspace(std::size_t have, std::size_t need, const char* op) {
  if (have < need)
    throw std::invalid_argument(std::string("bitexact::cuda::") + op + ": workspace of " + std::to_string(have) +
                                " bytes, needs " + std::to_string(need));
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
    launch(op, fill_kernel<A>, shape, count, st, out, count, value);
  }
};

/// The whole pipeline: validation, then pre_write, then passes 2-8 (or 8'). CUB's two-phase
/// convention: d_temp == nullptr only sets temp_bytes (always >= 1 byte).
template <class A, class I, class ValueOf, class Combine, class FixedApply, class ExactApply, class PreWrite>
void run_pipeline(const char* op, void* d_temp, std::size_t& temp_bytes, std::size_t n_out, std::size_t width,
                  const I* d_idx, std::size_t n, bool exact, ValueOf value, Combine combine, FixedApply fixed_apply,
                  const A* start, ExactApply exact_apply, PreWrite pre_write, const void* d_out, std::size_t out_bytes,
                  cudaStream_t st, launch_shape shape, pipeline_options opt = {}, bool validated = false) {
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
    check_workspace(temp_bytes, L.total, op);
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

    // 1. Validation, then one synchronisation: nothing is written before it passes (callers
    // that validated their own inputs, with the same guarantee, skip it).
    const launch_shape sh = pick_shape(shape, n, op);
    if (!validated) {
      unsigned long long bad = no_bad_position;
      first_bad_positions(first_bad, &bad, 1, st, op, [&] { launch_validate(d_idx, n, n_out, first_bad, st, shape, op); });
      if (bad != no_bad_position) throw make_index_error(op, bad, device_value(d_idx, bad, op), n_out);
    }
    pre_write(st, shape, op);

    // 2-6. The sorted layout and its runs (keys that are already sorted skip the sort).
    std::size_t cub_bytes = L.cub_bytes;
    if (opt.presorted) {
      make_pairs_kernel<I, U><<<sh.grid, sh.block, 0, st>>>(d_idx, n, key, pos);
      check_launch(op);
    } else {
      make_pairs_kernel<I, U><<<sh.grid, sh.block, 0, st>>>(d_idx, n, key_in, pos_in);
      check_launch(op);
      throw_on_error(cub::DeviceRadixSort::SortPairs(cub_temp, cub_bytes, key_in, key, pos_in, pos, static_cast<U>(n),
                                                     0, key_bits(n_out), st),
                     op, "cub::DeviceRadixSort::SortPairs");
    }
    const sorted_view<U> s{key, pos, n, opt.kept};
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
                         cudaStream_t st, launch_shape shape, const char* what = "segment_reduce") {
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
    run_pipeline<A>(what, d_temp, temp_bytes, num_segments, 1, d_ids, n, exact_sum_op(op, t),
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

/// CUB's two-phase convention for an op whose own pieces (`head` bytes) precede a pipeline
/// (pipeline(d_temp, bytes, input) with d_temp == nullptr sets its size): for a size query sets
/// temp_bytes and returns false; otherwise checks the caller's workspace and returns true.
template <class Pipeline>
bool sized_workspace(void* d_temp, std::size_t& temp_bytes, std::size_t head, Pipeline& pipeline, const char* op) {
  std::size_t pipeline_bytes = 0;
  pipeline(nullptr, pipeline_bytes, nullptr);
  const std::size_t total = cut_total(head, pipeline_bytes);
  if (d_temp == nullptr) {
    temp_bytes = total;
    return false;
  }
  check_workspace(temp_bytes, total, op);
  return true;
}

/// Unweighted bincount: validation, then zeroed counts and integer atomics.
template <class I>
void bincount_counts_impl(void* d_temp, std::size_t& temp_bytes, std::int64_t* d_out, std::size_t n_bins,
                          const I* d_idx, std::size_t n, cudaStream_t st, launch_shape shape) {
  const char* op = "bincount";
  const std::size_t total = cut_total(piece_bytes(sizeof(unsigned long long)), 0);
  if (d_temp == nullptr) {
    temp_bytes = total;
    return;
  }
  check_workspace(temp_bytes, total, op);
  if (d_out == nullptr && n_bins > 0) throw std::invalid_argument("bitexact::cuda::bincount: null out with bins");
  if (d_idx == nullptr && n > 0) throw std::invalid_argument("bitexact::cuda::bincount: null idx with n > 0");
  workspace_cutter w(d_temp, temp_bytes);
  auto* first_bad = w.take<unsigned long long>(1);
  unsigned long long bad = no_bad_position;
  first_bad_positions(first_bad, &bad, 1, st, op, [&] { launch_validate(d_idx, n, n_bins, first_bad, st, shape, op); });
  if (bad != no_bad_position) throw make_index_error(op, bad, device_value(d_idx, bad, op), n_bins);
  if (n_bins == 0) return;
  throw_on_error(cudaMemsetAsync(d_out, 0, n_bins * sizeof(std::int64_t), st), op, "cudaMemsetAsync");
  if (n == 0) return;
  const launch_shape sh = pick_shape(shape, n, op);
  static_assert(sizeof(std::int64_t) == sizeof(unsigned long long), "64-bit counters");
  count_kernel<I><<<sh.grid, sh.block, 0, st>>>(d_idx, n, reinterpret_cast<unsigned long long*>(d_out));
  check_launch(op);
}

/// histogram: the bin of every value, then a segment sum over n_bins + 1 targets whose last
/// (the ignored values) is dropped. No validation, no synchronisation.
template <class A>
void histogram_impl(void* d_temp, std::size_t& temp_bytes, A* d_out, std::size_t n_bins, A lo, A hi, const A* d_x,
                    const A* d_weights, std::size_t n, tier t, cudaStream_t st, launch_shape shape) {
  static_assert(std::is_same<A, float>::value || std::is_same<A, double>::value, "histogram: float or double");
  const char* op = "histogram";
  check_histogram_arguments(op, n_bins, lo, hi, d_out, d_x, n);
  const std::size_t head = piece_bytes(n * sizeof(std::uint64_t));
  const reduce_into<A, core::plus> apply{d_out, 1, core::plus{}, false, false, 0};
  pipeline_options opt;
  opt.kept = n_bins;
  auto pipeline = [&](void* p, std::size_t& b, const std::uint64_t* bins) {
    auto run = [&](auto values) {
      run_pipeline<A>(op, p, b, n_bins + 1, 1, bins, n, t == tier::exact, values, core::plus{}, apply,
                      static_cast<const A*>(nullptr), apply, fill_pre_write<A>{d_out, n_bins, A(0)}, d_out,
                      n_bins * sizeof(A), st, shape, opt, /*validated=*/true);
    };
    if (d_weights) run(row_values<A>{d_weights, 1});
    else run(unit_values<A>{});
  };
  if (!sized_workspace(d_temp, temp_bytes, head, pipeline, op)) return;
  if (ranges_overlap(d_out, n_bins * sizeof(A), d_x, n * sizeof(A)) ||
      (d_weights && ranges_overlap(d_out, n_bins * sizeof(A), d_weights, n * sizeof(A))))
    throw std::invalid_argument("bitexact::cuda::histogram: out overlaps x or weights");
  workspace_cutter w(d_temp, temp_bytes);
  std::uint64_t* bins = w.take<std::uint64_t>(n);
  if (n > 0) {
    launch(op, histogram_bins_kernel<A>, shape, n, st, d_x, n, lo, hi, n_bins, bins);
  }
  std::size_t rest = w.rest_bytes();
  pipeline(w.rest(), rest, bins);
}

/// Workspace bytes of the embedding-bag ops' own pieces: two validation words and bag_of.
inline std::size_t bag_pieces_bytes(std::size_t n_indices) {
  return piece_bytes(2 * sizeof(unsigned long long)) + piece_bytes(n_indices * sizeof(std::uint64_t));
}

/// The embedding-bag ops' run on a caller's workspace: validation (indices against n_rows:
/// index_error; then offsets: std::invalid_argument, as on the CPU), one synchronisation, then
/// bag_of (n_indices > 0), then pipeline(rest of the workspace, its bytes, bag_of).
template <class I, class Pipeline>
void run_on_bags(const char* op, void* d_temp, std::size_t temp_bytes, const I* d_indices, std::size_t n_indices,
                 std::size_t n_rows, const I* d_offsets, std::size_t n_bags, cudaStream_t st, launch_shape shape,
                 Pipeline& pipeline) {
  workspace_cutter w(d_temp, temp_bytes);
  auto* words = w.take<unsigned long long>(2);
  std::uint64_t* bag_of = w.take<std::uint64_t>(n_indices);
  unsigned long long bad[2] = {no_bad_position, no_bad_position};
  first_bad_positions(words, bad, 2, st, op, [&] {
    launch_validate(d_indices, n_indices, n_rows, words, st, shape, op);
    if (n_bags > 0) {
      launch(op, bag_offsets_check_kernel<I>, shape, n_bags, st, d_offsets, n_bags, n_indices, words + 1);
    }
  });
  if (bad[0] != no_bad_position) throw make_index_error(op, bad[0], device_value(d_indices, bad[0], op), n_rows);
  if (bad[1] != no_bad_position) throw ::bitexact::detail::bad_offsets_error(op, bad[1]);
  if (n_indices > 0) {
    launch(op, bag_of_kernel<I>, shape, n_indices, st, d_offsets, n_bags, n_indices, bag_of);
  }
  std::size_t rest = w.rest_bytes();
  pipeline(w.rest(), rest, bag_of);
}

/// embedding_bag forward: validation, bag_of, then the pipeline with the bag ids as (already
/// sorted) keys; with max_positions, the max positions too.
template <class A, class I, class Tab>
void embedding_bag_impl(const char* op, void* d_temp, std::size_t& temp_bytes, A* d_out, std::int64_t* d_max_positions,
                        const Tab* d_table, std::size_t n_rows, std::size_t width, const I* d_indices,
                        std::size_t n_indices, const I* d_offsets, std::size_t n_bags, bag_mode mode,
                        const A* d_weights, tier t, cudaStream_t st, launch_shape shape) {
  static_assert(std::is_same<A, float>::value || std::is_same<A, double>::value,
                "embedding_bag: float, double or bfloat16 tables");
  static_assert(std::is_same<A, core::accumulation_t<Tab>>::value, "embedding_bag: out is the table's accumulation type");
  check_bag_arguments(op, width, n_bags, n_indices, d_out, d_offsets, d_indices, d_table, d_weights != nullptr, mode);
  const std::size_t head = bag_pieces_bytes(n_indices);
  const bool max = mode == bag_mode::max, mean = mode == bag_mode::mean;
  pipeline_options opt;
  opt.presorted = true;
  auto pipeline = [&](void* p, std::size_t& b, const std::uint64_t* bag_of) {
    auto run = [&](auto combine, auto values) {
      using C = decltype(combine);
      const reduce_into<A, C> apply{d_out, width, combine, false, mean, 0};
      run_pipeline<A>(op, p, b, n_bags, width, bag_of, n_indices, t == tier::exact && !max, values, combine, apply,
                      static_cast<const A*>(nullptr), apply, fill_pre_write<A>{d_out, n_bags * width, A(0)}, d_out,
                      n_bags * width * sizeof(A), st, shape, opt, /*validated=*/true);
    };
    if (max) run(core::maximum{}, bag_rows<A, I, Tab>{d_table, d_indices, width});
    else if (d_weights) run(core::plus{}, weighted_bag_rows<A, I, Tab>{d_table, d_indices, width, d_weights});
    else run(core::plus{}, bag_rows<A, I, Tab>{d_table, d_indices, width});
  };
  if (!sized_workspace(d_temp, temp_bytes, head, pipeline, op)) return;
  if (ranges_overlap(d_out, n_bags * width * sizeof(A), d_table, n_rows * width * sizeof(Tab)))
    throw std::invalid_argument(std::string("bitexact::cuda::") + op + ": out overlaps table");
  run_on_bags(op, d_temp, temp_bytes, d_indices, n_indices, n_rows, d_offsets, n_bags, st, shape, pipeline);
  if (d_max_positions != nullptr && n_bags > 0) {
    launch(op, bag_max_positions_kernel<A, I, Tab>, shape, n_bags * width,
           st, d_out, bag_rows<A, I, Tab>{d_table, d_indices, width}, d_offsets, n_bags, n_indices, d_max_positions);
  }
}

/// embedding_bag_backward (sum, mean): validation, bag_of, then the row form of index_add with
/// contributions computed from grad_out on the fly.
template <class A, class I>
void embedding_bag_backward_impl(void* d_temp, std::size_t& temp_bytes, A* d_grad_table, std::size_t n_rows,
                                 std::size_t width, const A* d_grad_out, const I* d_indices, std::size_t n_indices,
                                 const I* d_offsets, std::size_t n_bags, bag_mode mode, const A* d_weights, tier t,
                                 cudaStream_t st, launch_shape shape) {
  static_assert(std::is_same<A, float>::value || std::is_same<A, double>::value,
                "embedding_bag_backward: float or double");
  const char* op = "embedding_bag_backward";
  if (mode == bag_mode::max)
    throw std::invalid_argument(
        "bitexact::cuda::embedding_bag_backward: max mode: use embedding_bag_max and embedding_bag_max_backward");
  check_bag_arguments(op, width, n_bags, n_indices, d_grad_out, d_offsets, d_indices, d_grad_table,
                      d_weights != nullptr, mode);
  const std::size_t head = bag_pieces_bytes(n_indices);
  auto pipeline = [&](void* p, std::size_t& b, const std::uint64_t* bag_of) {
    const bag_gradients<A, I> values{d_grad_out, bag_of, d_offsets, n_bags, n_indices, width, d_weights,
                                     mode == bag_mode::mean};
    run_pipeline<A>(op, p, b, n_rows, width, d_indices, n_indices, t == tier::exact, values, core::plus{},
                    add_into<A>{d_grad_table, width}, static_cast<const A*>(d_grad_table),
                    store_into<A>{d_grad_table, width}, no_pre_write{}, d_grad_table, n_rows * width * sizeof(A), st,
                    shape, pipeline_options{}, /*validated=*/true);
  };
  if (!sized_workspace(d_temp, temp_bytes, head, pipeline, op)) return;
  if (ranges_overlap(d_grad_table, n_rows * width * sizeof(A), d_grad_out, n_bags * width * sizeof(A)))
    throw std::invalid_argument("bitexact::cuda::embedding_bag_backward: grad_table overlaps grad_out");
  run_on_bags(op, d_temp, temp_bytes, d_indices, n_indices, n_rows, d_offsets, n_bags, st, shape, pipeline);
}

/// embedding_bag_max_backward: the recorded cells (validated, one synchronisation), then the
/// 1-D index_add of grad_out into them; empty bags go to a dropped sentinel cell.
template <class A, class I>
void embedding_bag_max_backward_impl(void* d_temp, std::size_t& temp_bytes, A* d_grad_table, std::size_t n_rows,
                                     std::size_t width, const A* d_grad_out, const I* d_indices, std::size_t n_indices,
                                     const std::int64_t* d_max_positions, std::size_t n_bags, tier t, cudaStream_t st,
                                     launch_shape shape) {
  static_assert(std::is_same<A, float>::value || std::is_same<A, double>::value,
                "embedding_bag_max_backward: float or double");
  const char* op = "embedding_bag_max_backward";
  if (width == 0) throw std::invalid_argument("bitexact::cuda::embedding_bag_max_backward: width must be > 0");
  const std::size_t m = n_bags * width, cells = n_rows * width;
  const std::size_t head = piece_bytes(sizeof(unsigned long long)) + piece_bytes(m * sizeof(std::uint64_t));
  pipeline_options opt;
  opt.kept = cells;
  auto pipeline = [&](void* p, std::size_t& b, const std::uint64_t* target) {
    run_pipeline<A>(op, p, b, cells + 1, 1, target, m, t == tier::exact, row_values<A>{d_grad_out, 1}, core::plus{},
                    add_into<A>{d_grad_table, 1}, static_cast<const A*>(d_grad_table), store_into<A>{d_grad_table, 1},
                    no_pre_write{}, d_grad_table, cells * sizeof(A), st, shape, opt, /*validated=*/true);
  };
  if (!sized_workspace(d_temp, temp_bytes, head, pipeline, op)) return;
  if (m == 0) return;
  if (d_grad_out == nullptr || d_max_positions == nullptr)
    throw std::invalid_argument("bitexact::cuda::embedding_bag_max_backward: null grad_out or max_positions");
  if (n_indices > 0 && d_indices == nullptr)
    throw std::invalid_argument("bitexact::cuda::embedding_bag_max_backward: null indices");
  if (d_grad_table == nullptr && cells > 0)
    throw std::invalid_argument("bitexact::cuda::embedding_bag_max_backward: null grad_table");
  if (ranges_overlap(d_grad_table, cells * sizeof(A), d_grad_out, m * sizeof(A)))
    throw std::invalid_argument("bitexact::cuda::embedding_bag_max_backward: grad_table overlaps grad_out");
  workspace_cutter w(d_temp, temp_bytes);
  auto* first_bad = w.take<unsigned long long>(1);
  std::uint64_t* target = w.take<std::uint64_t>(m);
  unsigned long long bad = no_bad_position;
  first_bad_positions(first_bad, &bad, 1, st, op, [&] {
    launch(op, max_backward_targets_kernel<I>, shape, m,
           st, d_max_positions, m, d_indices, n_indices, n_rows, width, target, first_bad);
  });
  if (bad != no_bad_position) {
    const std::int64_t p = device_value(d_max_positions, bad, op);
    const bool bad_position = p < -1 || (p >= 0 && static_cast<std::uint64_t>(p) >= n_indices);
    ::bitexact::detail::throw_max_target_error(
        op, bad_position ? core::max_target_status::bad_position : core::max_target_status::bad_index, bad, p,
        bad_position ? 0 : static_cast<long long>(device_value(d_indices, static_cast<std::uint64_t>(p), op)), n_rows);
  }
  std::size_t rest = w.rest_bytes();
  pipeline(w.rest(), rest, target);
}

/// Calls impl(d_temp, bytes) twice in CUB's two-phase style, with a workspace allocated (and
/// freed) on the stream: the overloads without a workspace.
template <class Impl>
void with_own_workspace(const char* op, cudaStream_t st, Impl impl) {
  std::size_t bytes = 0;
  impl(nullptr, bytes);
  with_workspace(bytes, st, op, [&](void* p, std::size_t b) { impl(p, b); });
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
  scatter_detail::with_own_workspace("index_add", st, [&](void* p, std::size_t& b) {
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
  scatter_detail::with_own_workspace("index_add_rows", st, [&](void* p, std::size_t& b) {
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
  scatter_detail::with_own_workspace("scatter_reduce", st, [&](void* p, std::size_t& b) {
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
  scatter_detail::with_own_workspace("segment_reduce", st, [&](void* p, std::size_t& b) {
    scatter_detail::segment_reduce_impl(p, b, d_out, num_segments, d_ids, d_data, n, op, t, st, shape);
  });
}

/// Weighted bincount with a caller's workspace: d_out[b] = sum of d_weights[i] with
/// d_idx[i] == b (+0 for empty bins), for every b < n_bins; segment_reduce with
/// scatter_op::sum (bitexact::bincount).
template <class T, class I>
void bincount(void* d_temp, std::size_t& temp_bytes, T* d_out, std::size_t n_bins, const I* d_idx, const T* d_weights,
              std::size_t n, tier t = tier::fixed_order, cudaStream_t st = nullptr, launch_shape shape = {}) {
  if (d_temp != nullptr && n > 0 && d_weights == nullptr)
    throw std::invalid_argument("bitexact::cuda::bincount: null weights with n > 0 (use the count overload)");
  scatter_detail::segment_reduce_impl(d_temp, temp_bytes, d_out, n_bins, d_idx, d_weights, n, scatter_op::sum, t, st,
                                      shape, "bincount");
}
/// Weighted bincount with a workspace allocated (and freed) on the stream.
template <class T, class I>
void bincount(T* d_out, std::size_t n_bins, const I* d_idx, const T* d_weights, std::size_t n,
              tier t = tier::fixed_order, cudaStream_t st = nullptr, launch_shape shape = {}) {
  scatter_detail::with_own_workspace("bincount", st, [&](void* p, std::size_t& b) {
    bincount(p, b, d_out, n_bins, d_idx, d_weights, n, t, st, shape);
  });
}

/// Unweighted bincount with a caller's workspace: d_out[b] = number of i with d_idx[i] == b
/// (integer atomics: exact, any order).
template <class I>
void bincount(void* d_temp, std::size_t& temp_bytes, std::int64_t* d_out, std::size_t n_bins, const I* d_idx,
              std::size_t n, cudaStream_t st = nullptr, launch_shape shape = {}) {
  scatter_detail::bincount_counts_impl(d_temp, temp_bytes, d_out, n_bins, d_idx, n, st, shape);
}
/// Unweighted bincount with a workspace allocated (and freed) on the stream.
template <class I>
void bincount(std::int64_t* d_out, std::size_t n_bins, const I* d_idx, std::size_t n, cudaStream_t st = nullptr,
              launch_shape shape = {}) {
  scatter_detail::with_own_workspace("bincount", st, [&](void* p, std::size_t& b) {
    scatter_detail::bincount_counts_impl(p, b, d_out, n_bins, d_idx, n, st, shape);
  });
}

/// Weighted histogram with a caller's workspace (semantics of bitexact::histogram: bins by
/// core::histogram_bin, NaN and values outside [lo, hi] ignored, d_weights may be null).
template <class T>
void histogram(void* d_temp, std::size_t& temp_bytes, T* d_out, std::size_t n_bins, T lo, T hi, const T* d_x,
               const T* d_weights, std::size_t n, tier t = tier::fixed_order, cudaStream_t st = nullptr,
               launch_shape shape = {}) {
  scatter_detail::histogram_impl(d_temp, temp_bytes, d_out, n_bins, lo, hi, d_x, d_weights, n, t, st, shape);
}
/// histogram with a workspace allocated (and freed) on the stream.
template <class T>
void histogram(T* d_out, std::size_t n_bins, T lo, T hi, const T* d_x, const T* d_weights, std::size_t n,
               tier t = tier::fixed_order, cudaStream_t st = nullptr, launch_shape shape = {}) {
  scatter_detail::with_own_workspace("histogram", st, [&](void* p, std::size_t& b) {
    scatter_detail::histogram_impl(p, b, d_out, n_bins, lo, hi, d_x, d_weights, n, t, st, shape);
  });
}

/// embedding_bag forward with a caller's workspace (semantics of bitexact::embedding_bag:
/// bag b is positions [d_offsets[b], d_offsets[b + 1]), rows combined in the canonical order
/// of the positions; weights (sum mode) multiply rounded in fixed_order, exactly in exact;
/// empty bags give zeros). Bad indices throw index_error, bad offsets std::invalid_argument,
/// before anything is written. The table S is float, double, or bfloat16 with a float out and
/// float weights.
template <class S, class I>
void embedding_bag(void* d_temp, std::size_t& temp_bytes, core::accumulation_t<S>* d_out, const S* d_table,
                   std::size_t n_rows, std::size_t width, const I* d_indices, std::size_t n_indices,
                   const I* d_offsets, std::size_t n_bags, bag_mode mode,
                   const core::accumulation_t<S>* d_per_sample_weights = nullptr, tier t = tier::fixed_order,
                   cudaStream_t st = nullptr, launch_shape shape = {}) {
  using A = core::accumulation_t<S>;
  scatter_detail::embedding_bag_impl<A, I, S>("embedding_bag", d_temp, temp_bytes, d_out, nullptr, d_table, n_rows, width,
                                              d_indices, n_indices, d_offsets, n_bags, mode, d_per_sample_weights, t, st,
                                              shape);
}
/// embedding_bag with a workspace allocated (and freed) on the stream.
template <class S, class I>
void embedding_bag(core::accumulation_t<S>* d_out, const S* d_table, std::size_t n_rows, std::size_t width,
                   const I* d_indices, std::size_t n_indices, const I* d_offsets, std::size_t n_bags, bag_mode mode,
                   const core::accumulation_t<S>* d_per_sample_weights = nullptr, tier t = tier::fixed_order,
                   cudaStream_t st = nullptr, launch_shape shape = {}) {
  scatter_detail::with_own_workspace("embedding_bag", st, [&](void* p, std::size_t& b) {
    embedding_bag(p, b, d_out, d_table, n_rows, width, d_indices, n_indices, d_offsets, n_bags, mode,
                  d_per_sample_weights, t, st, shape);
  });
}

/// embedding_bag in max mode that also records the selected positions (semantics of
/// bitexact::embedding_bag_max), with a caller's workspace.
template <class S, class I>
void embedding_bag_max(void* d_temp, std::size_t& temp_bytes, core::accumulation_t<S>* d_out,
                       std::int64_t* d_max_positions, const S* d_table, std::size_t n_rows, std::size_t width,
                       const I* d_indices, std::size_t n_indices, const I* d_offsets, std::size_t n_bags,
                       cudaStream_t st = nullptr, launch_shape shape = {}) {
  if (d_temp != nullptr && n_bags > 0 && d_max_positions == nullptr)
    throw std::invalid_argument("bitexact::cuda::embedding_bag_max: null max_positions with bags");
  using A = core::accumulation_t<S>;
  scatter_detail::embedding_bag_impl<A, I, S>("embedding_bag_max", d_temp, temp_bytes, d_out, d_max_positions, d_table,
                                              n_rows, width, d_indices, n_indices, d_offsets, n_bags, bag_mode::max,
                                              nullptr, tier::fixed_order, st, shape);
}
/// embedding_bag_max with a workspace allocated (and freed) on the stream.
template <class S, class I>
void embedding_bag_max(core::accumulation_t<S>* d_out, std::int64_t* d_max_positions, const S* d_table,
                       std::size_t n_rows, std::size_t width, const I* d_indices, std::size_t n_indices, const I* d_offsets,
                       std::size_t n_bags, cudaStream_t st = nullptr, launch_shape shape = {}) {
  scatter_detail::with_own_workspace("embedding_bag_max", st, [&](void* p, std::size_t& b) {
    embedding_bag_max(p, b, d_out, d_max_positions, d_table, n_rows, width, d_indices, n_indices, d_offsets, n_bags, st,
                      shape);
  });
}

/// embedding_bag backward for sum and mean with a caller's workspace (semantics of
/// bitexact::embedding_bag_backward: the row form of index_add of the rounded per-position
/// gradients, canonical order of the positions).
template <class T, class I>
void embedding_bag_backward(void* d_temp, std::size_t& temp_bytes, T* d_grad_table, std::size_t n_rows,
                            std::size_t width, const T* d_grad_out, const I* d_indices, std::size_t n_indices,
                            const I* d_offsets, std::size_t n_bags, bag_mode mode,
                            const T* d_per_sample_weights = nullptr, tier t = tier::fixed_order,
                            cudaStream_t st = nullptr, launch_shape shape = {}) {
  scatter_detail::embedding_bag_backward_impl(d_temp, temp_bytes, d_grad_table, n_rows, width, d_grad_out, d_indices,
                                              n_indices, d_offsets, n_bags, mode, d_per_sample_weights, t, st, shape);
}
/// embedding_bag_backward with a workspace allocated (and freed) on the stream.
template <class T, class I>
void embedding_bag_backward(T* d_grad_table, std::size_t n_rows, std::size_t width, const T* d_grad_out,
                            const I* d_indices, std::size_t n_indices, const I* d_offsets, std::size_t n_bags,
                            bag_mode mode, const T* d_per_sample_weights = nullptr, tier t = tier::fixed_order,
                            cudaStream_t st = nullptr, launch_shape shape = {}) {
  scatter_detail::with_own_workspace("embedding_bag_backward", st, [&](void* p, std::size_t& b) {
    scatter_detail::embedding_bag_backward_impl(p, b, d_grad_table, n_rows, width, d_grad_out, d_indices, n_indices,
                                                d_offsets, n_bags, mode, d_per_sample_weights, t, st, shape);
  });
}

/// Backward of embedding_bag_max with a caller's workspace (semantics of
/// bitexact::embedding_bag_max_backward: the 1-D index_add of grad_out into the recorded cells,
/// canonical order of the flattened grad_out positions).
template <class T, class I>
void embedding_bag_max_backward(void* d_temp, std::size_t& temp_bytes, T* d_grad_table, std::size_t n_rows,
                                std::size_t width, const T* d_grad_out, const I* d_indices, std::size_t n_indices,
                                const std::int64_t* d_max_positions, std::size_t n_bags, tier t = tier::fixed_order,
                                cudaStream_t st = nullptr, launch_shape shape = {}) {
  scatter_detail::embedding_bag_max_backward_impl(d_temp, temp_bytes, d_grad_table, n_rows, width, d_grad_out,
                                                  d_indices, n_indices, d_max_positions, n_bags, t, st, shape);
}
/// embedding_bag_max_backward with a workspace allocated (and freed) on the stream.
template <class T, class I>
void embedding_bag_max_backward(T* d_grad_table, std::size_t n_rows, std::size_t width, const T* d_grad_out,
                                const I* d_indices, std::size_t n_indices, const std::int64_t* d_max_positions,
                                std::size_t n_bags, tier t = tier::fixed_order, cudaStream_t st = nullptr,
                                launch_shape shape = {}) {
  scatter_detail::with_own_workspace("embedding_bag_max_backward", st, [&](void* p, std::size_t& b) {
    scatter_detail::embedding_bag_max_backward_impl(p, b, d_grad_table, n_rows, width, d_grad_out, d_indices, n_indices,
                                                    d_max_positions, n_bags, t, st, shape);
  });
}

}  // namespace cuda
}  // namespace bitexact
