// bitexact/cuda/conv.cuh - deterministic 2-D convolution and pooling on CUDA devices.
//
// nvcc only. The CPU API's shapes, argument order and bits (bitexact/conv.hpp, bitexact/pool.hpp):
//
//   conv2d_forward(d_temp, temp_bytes, s, x, w, bias, y, tier = fixed_order, stream = 0, launch = {})
//   conv2d_backward_data(d_temp, temp_bytes, s, dy, w, dx, ...)
//   conv2d_backward_weight(d_temp, temp_bytes, s, x, dy, dw, dbias, ...)
//     T = float or double; or bfloat16 x / w (widened exactly) with float bias, y, dy, dx, dw,
//     dbias, as on the CPU. The same without (d_temp, temp_bytes): the workspace, if any, comes
//     from cudaMallocAsync / cudaFreeAsync on the stream.
//   max_pool2d_forward(s, x, y, indices, stream = 0, launch = {})   (indices nullable)
//   max_pool2d_backward(s, dy, indices, dx, ...)
//   avg_pool2d_forward / avg_pool2d_backward (pool2d_shape),
//   adaptive_avg_pool2d_forward / adaptive_avg_pool2d_backward (adaptive_pool2d_shape);
//     T = float or double. No workspace.
//
// launch (conv_launch {grid, splits, block}, pool_launch {grid, block, owners}; 0 = the
// launcher's choice): never changes a bit. Convolution splits K only when the op has fewer
// elements than 2 x SMs x 128 threads (backward-weight's long K' = batch x out_h x out_w).
//
// Workspace (CUB's two-phase style): d_temp == nullptr only sets temp_bytes (>= 1; nothing is
// launched). Only split-K needs one: fixed_order chunks x elements values, exact splits x
// elements accumulators (176 bytes float, 1088 bytes double); backward-weight's elements are dw's
// and (when dbias is not null) dbias's. The size depends on the shape, the tier, launch.splits and
// (when it is 0) the current device's SM count: query with the same arguments on the same device.
//
// Guarantees (cuda/conv_kernels.hpp has the kernels): the bits of bitexact::conv2d_* and
// reference/conv.hpp in both tiers - fixed_order: each element the canonical K order of
// core/gemm_order.hpp over the K index of core/conv.hpp, the same epilogue; split-K writes
// per-chunk partials and a second kernel folds them left to right; exact: per-element exact
// accumulators, split-K merged by integer addition, one rounding - and the bits of the pooling
// ops and reference/pool.hpp; for any grid, block, split count, SM count or GPU model. No float
// atomics, no tensor-core MMA. NaN out is the canonical quiet NaN.
// Errors: arguments the CPU API refuses (conv_checks.hpp, pool_checks.hpp: shapes, null
// pointers with non-zero sizes, outputs overlapping inputs), an unknown tier, launch.block over
// 1024, a workspace too small or overlapping an output throw std::invalid_argument before
// anything is launched; CUDA errors throw std::runtime_error (cuda/runtime.cuh).
// max_pool2d_backward checks its indices on the device first (an index outside its plane:
// std::invalid_argument naming the lowest such output, dx untouched), which synchronizes the
// stream once.
//
// What is proven without a GPU (see README): the kernel bodies' bits, by CPU emulation over
// several grids, blocks, split counts and block orders (tests/cuda_conv_emulation_test.cpp), and
// that this header compiles for sm_80 and sm_90 (tests/cuda_gemm_launcher_test.cu, which also
// runs the host side: workspace sizes and argument checks). It has not run on a GPU, and its
// speed is unmeasured (the kernels are direct, one thread per element and split; no
// shared-memory tiling yet).
#pragma once
#if !defined(__CUDACC__)
#error "bitexact/cuda/conv.cuh must be compiled by nvcc; use bitexact/cuda/conv_kernels.hpp for host code"
#endif

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "../conv_checks.hpp"
#include "../core/bfloat16.hpp"
#include "../core/conv.hpp"
#include "../core/pool.hpp"
#include "../pool_checks.hpp"
#include "../tier.hpp"
#include "block_context.hpp"
#include "conv_kernels.hpp"
#include "launch.hpp"
#include "runtime.cuh"

namespace bitexact {
namespace cuda {
namespace conv_kernels {

template <class A, class Op>
__global__ void fixed_order_kernel(Op op, gemm_plan p, A* partials, bool fold) {
  conv_fixed_order_body<A>(current_thread_index(), op, p, partials, fold);
}
template <class A, class Op>
__global__ void exact_kernel(Op op, gemm_plan p, std::int64_t* ws, bool merge) {
  conv_exact_body<A>(current_thread_index(), op, p, ws, merge);
}
template <class T>
__global__ void max_pool_forward_kernel(core::pool_geometry g, const T* x, T* y, std::int64_t* idx) {
  max_pool_forward_body<T>(current_thread_index(), g, x, y, idx);
}
template <class T>
__global__ void max_pool_backward_kernel(core::pool_geometry g, const T* dy, const std::int64_t* idx, T* dx,
                                         unsigned owners) {
  max_pool_backward_body<T>(current_thread_index(), g, dy, idx, dx, owners);
}
template <class Unused = void>
__global__ void max_pool_index_check_kernel(std::uint64_t n, const std::int64_t* idx, std::uint64_t plane,
                                            unsigned long long* first_bad) {
  max_pool_index_check_body(current_thread_index(), n, idx, plane, first_bad);
}
template <class T>
__global__ void avg_pool_forward_kernel(core::pool_geometry g, const T* x, T* y) {
  avg_pool_forward_body<T>(current_thread_index(), g, x, y);
}
template <class T>
__global__ void avg_pool_backward_kernel(core::pool_geometry g, const T* dy, T* dx) {
  avg_pool_backward_body<T>(current_thread_index(), g, dy, dx);
}

}  // namespace conv_kernels

namespace conv_detail {

using detail::throw_on_error;

inline unsigned grid_for(conv_launch opt, std::uint64_t items) {
  if (opt.grid) return opt.grid;
  const unsigned block = opt.block ? opt.block : default_conv_block;
  const std::uint64_t blocks = (items + block - 1) / block;
  if (blocks == 0) return 1;
  return blocks > max_grid_blocks ? max_grid_blocks : static_cast<unsigned>(blocks);
}

/// The plan of one op of a call (an empty op: nothing to launch).
template <class A, class Op>
gemm_plan plan_of(const Op& op, tier t, conv_launch opt, const char* name) {
  const unsigned sms = opt.splits == 0 ? detail::sm_count(name) : 1u;
  return make_plan<A>(op.elements(), op.k(), t, opt.splits, sms);
}

/// Launches the passes of one validated op; ws holds workspace_bytes<A>(p, t) bytes.
template <class A, class Op>
void execute(const Op& op, const gemm_plan& p, tier t, void* ws, cudaStream_t st, conv_launch opt, const char* name) {
  if (p.m == 0) return;
  const unsigned block = opt.block ? opt.block : default_conv_block;
  if (t == tier::fixed_order) {
    A* partials = static_cast<A*>(ws);
    conv_kernels::fixed_order_kernel<A, Op><<<grid_for(opt, p.units()), block, 0, st>>>(op, p, partials, false);
    throw_on_error(cudaGetLastError(), name, "fixed_order kernel launch");
    if (p.splits > 1) {
      conv_kernels::fixed_order_kernel<A, Op><<<grid_for(opt, p.m), block, 0, st>>>(op, p, partials, true);
      throw_on_error(cudaGetLastError(), name, "fold launch");
    }
    return;
  }
  std::int64_t* digits = static_cast<std::int64_t*>(ws);
  conv_kernels::exact_kernel<A, Op><<<grid_for(opt, p.units()), block, 0, st>>>(op, p, digits, false);
  throw_on_error(cudaGetLastError(), name, "exact kernel launch");
  if (p.splits > 1) {
    conv_kernels::exact_kernel<A, Op><<<grid_for(opt, p.m), block, 0, st>>>(op, p, digits, true);
    throw_on_error(cudaGetLastError(), name, "exact merge launch");
  }
}

/// One validated call: its plan and workspace, the outputs the workspace must not overlap.
template <class A, class Op>
struct call {
  const char* name;
  tier t;
  conv_launch opt;
  Op op;
  gemm_plan p{};
  std::size_t workspace = 0;
  const void* out1 = nullptr;
  std::size_t out1_bytes = 0;
  const void* out2 = nullptr;
  std::size_t out2_bytes = 0;

  call(const char* n, tier tt, conv_launch o, const Op& a) : name(n), t(tt), opt(o), op(a) {
    p = plan_of<A>(op, t, opt, name);
    workspace = workspace_bytes<A>(p, t);
  }

  /// CUB's two-phase protocol: d_temp == nullptr sets temp_bytes (>= 1) and launches nothing.
  void run(void* d_temp, std::size_t& temp_bytes, cudaStream_t st) const {
    if (d_temp == nullptr) {
      temp_bytes = workspace == 0 ? 1 : workspace;
      return;
    }
    if (temp_bytes < workspace)
      throw std::invalid_argument(std::string("bitexact::") + name + ": workspace of " + std::to_string(temp_bytes) +
                                  " bytes, needs " + std::to_string(workspace));
    if (workspace > 0 && (bitexact::detail::conv_overlap(d_temp, workspace, out1, out1_bytes) ||
                          bitexact::detail::conv_overlap(d_temp, workspace, out2, out2_bytes)))
      throw std::invalid_argument(std::string("bitexact::") + name + ": the workspace overlaps an output");
    execute<A>(op, p, t, d_temp, st, opt, name);
  }

  /// With a workspace of its own (cudaMallocAsync / cudaFreeAsync on st, also on throw).
  void run_owned(cudaStream_t st) const {
    if (workspace == 0) return execute<A>(op, p, t, nullptr, st, opt, name);
    void* w = nullptr;
    throw_on_error(cudaMallocAsync(&w, workspace, st), name, "cudaMallocAsync(workspace)");
    try {
      execute<A>(op, p, t, w, st, opt, name);
    } catch (...) {
      cudaFreeAsync(w, st);
      throw;
    }
    throw_on_error(cudaFreeAsync(w, st), name, "cudaFreeAsync(workspace)");
  }
};

template <class A, class X, class Wt>
void forward(void* d_temp, std::size_t* temp_bytes, const conv2d_shape& s, const X* x, const Wt* w, const A* bias, A* y,
             tier t, cudaStream_t st, conv_launch opt) {
  const bitexact::detail::conv_sizes z = validate_forward<A, X, Wt>(s, x, w, bias, y, t, opt.block);
  if (z.y == 0) {
    if (temp_bytes && !d_temp) *temp_bytes = 1;
    return;
  }
  call<A, conv_forward_op<A>> c("cuda::conv2d_forward", t, opt, conv_forward_op<A>(s, x, w, bias, y));
  c.out1 = y;
  c.out1_bytes = z.y * sizeof(A);
  temp_bytes ? c.run(d_temp, *temp_bytes, st) : c.run_owned(st);
}

template <class A, class Wt>
void backward_data(void* d_temp, std::size_t* temp_bytes, const conv2d_shape& s, const A* dy, const Wt* w, A* dx, tier t,
                   cudaStream_t st, conv_launch opt) {
  const bitexact::detail::conv_sizes z = validate_backward_data<A, Wt>(s, dy, w, dx, t, opt.block);
  if (z.x == 0) {
    if (temp_bytes && !d_temp) *temp_bytes = 1;
    return;
  }
  call<A, conv_backward_data_op<A>> c("cuda::conv2d_backward_data", t, opt, conv_backward_data_op<A>(s, dy, w, dx));
  c.out1 = dx;
  c.out1_bytes = z.x * sizeof(A);
  temp_bytes ? c.run(d_temp, *temp_bytes, st) : c.run_owned(st);
}

template <class A, class X>
void backward_weight(void* d_temp, std::size_t* temp_bytes, const conv2d_shape& s, const X* x, const A* dy, A* dw,
                     A* dbias, tier t, cudaStream_t st, conv_launch opt) {
  const bitexact::detail::conv_sizes z = validate_backward_weight<A, X>(s, x, dy, dw, dbias, t, opt.block);
  call<A, conv_backward_weight_op<A>> c("cuda::conv2d_backward_weight", t, opt,
                                       conv_backward_weight_op<A>(s, x, dy, dw, dbias));
  c.out1 = dw;
  c.out1_bytes = z.w * sizeof(A);
  c.out2 = dbias;
  c.out2_bytes = dbias ? s.out_channels * sizeof(A) : 0;
  temp_bytes ? c.run(d_temp, *temp_bytes, st) : c.run_owned(st);
}

/// Refuses indices outside their plane before anything is written: a check kernel, then one
/// synchronization of the stream to read its answer (as the scatter family's index checks).
inline void check_pool_indices(const core::pool_geometry& g, const std::int64_t* indices, cudaStream_t st,
                               pool_launch opt, const char* what) {
  const std::uint64_t ny = static_cast<std::uint64_t>(g.N) * g.C * g.OH * g.OW;
  if (ny == 0) return;
  unsigned long long* d_bad = nullptr;
  unsigned long long bad = pool_no_bad_index;
  const launch_shape sh = detail::pick_shape(launch_shape{opt.grid, opt.block}, ny, what);
  throw_on_error(cudaMallocAsync(reinterpret_cast<void**>(&d_bad), sizeof bad, st), what, "cudaMallocAsync");
  cudaError_t e = cudaMemsetAsync(d_bad, 0xFF, sizeof bad, st);  // pool_no_bad_index
  if (e == cudaSuccess) {
    conv_kernels::max_pool_index_check_kernel<<<sh.grid, sh.block, 0, st>>>(ny, indices,
                                                                           static_cast<std::uint64_t>(g.H) * g.W, d_bad);
    e = cudaGetLastError();
  }
  if (e == cudaSuccess) e = cudaMemcpyAsync(&bad, d_bad, sizeof bad, cudaMemcpyDeviceToHost, st);
  cudaFreeAsync(d_bad, st);
  if (e == cudaSuccess) e = cudaStreamSynchronize(st);
  throw_on_error(e, what, "index check");
  if (bad != pool_no_bad_index) throw_bad_pool_index(what, bad);
}

template <class T>
void pool_type_check() {
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value, "bitexact::cuda pooling: float or double");
}

inline launch_shape pool_shape(pool_launch opt) { return launch_shape{opt.grid, opt.block}; }

/// avg (or adaptive avg) pooling, forward (in = x, out = y) or backward (in = dy, out = dx):
/// the checks, then one thread per output element.
template <class T, class Shape>
void avg_pool(const Shape& s, const T* in, T* out, bool backward, cudaStream_t st, pool_launch opt, const char* what) {
  pool_type_check<T>();
  std::size_t n_out;
  const core::pool_geometry g = validate_avg_pool(s, in, out, backward, opt.block, what, n_out);
  if (n_out == 0) return;
  void (*kernel)(core::pool_geometry, const T*, T*) =
      backward ? &conv_kernels::avg_pool_backward_kernel<T> : &conv_kernels::avg_pool_forward_kernel<T>;
  detail::launch(what, kernel, pool_shape(opt), n_out, st, g, in, out);
}

}  // namespace conv_detail

// --- convolution -----------------------------------------------------------------------------

/// Forward, T = float or double, with a caller's workspace. bias may be null.
template <class T>
void conv2d_forward(void* d_temp, std::size_t& temp_bytes, const conv2d_shape& s, const T* x, const T* w,
                    const typename bitexact::detail::conv_identity<T>::type* bias, T* y, tier t = tier::fixed_order,
                    cudaStream_t st = nullptr, conv_launch launch = {}) {
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value, "bitexact::cuda::conv2d_forward: float or double");
  conv_detail::forward<T, T, T>(d_temp, &temp_bytes, s, x, w, bias, y, t, st, launch);
}
/// Forward with bfloat16 x and w, float bias and y, with a caller's workspace.
inline void conv2d_forward(void* d_temp, std::size_t& temp_bytes, const conv2d_shape& s, const bfloat16* x,
                           const bfloat16* w, const float* bias, float* y, tier t = tier::fixed_order,
                           cudaStream_t st = nullptr, conv_launch launch = {}) {
  conv_detail::forward<float, bfloat16, bfloat16>(d_temp, &temp_bytes, s, x, w, bias, y, t, st, launch);
}
/// Forward; allocates its workspace (if any) on the stream.
template <class T>
void conv2d_forward(const conv2d_shape& s, const T* x, const T* w,
                    const typename bitexact::detail::conv_identity<T>::type* bias, T* y, tier t = tier::fixed_order,
                    cudaStream_t st = nullptr, conv_launch launch = {}) {
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value, "bitexact::cuda::conv2d_forward: float or double");
  conv_detail::forward<T, T, T>(nullptr, nullptr, s, x, w, bias, y, t, st, launch);
}
inline void conv2d_forward(const conv2d_shape& s, const bfloat16* x, const bfloat16* w, const float* bias, float* y,
                           tier t = tier::fixed_order, cudaStream_t st = nullptr, conv_launch launch = {}) {
  conv_detail::forward<float, bfloat16, bfloat16>(nullptr, nullptr, s, x, w, bias, y, t, st, launch);
}

/// Backward-data, T = float or double (or float dy/dx with bfloat16 w), with a caller's workspace.
template <class T>
void conv2d_backward_data(void* d_temp, std::size_t& temp_bytes, const conv2d_shape& s, const T* dy, const T* w, T* dx,
                          tier t = tier::fixed_order, cudaStream_t st = nullptr, conv_launch launch = {}) {
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value, "bitexact::cuda::conv2d_backward_data: float or double");
  conv_detail::backward_data<T, T>(d_temp, &temp_bytes, s, dy, w, dx, t, st, launch);
}
inline void conv2d_backward_data(void* d_temp, std::size_t& temp_bytes, const conv2d_shape& s, const float* dy,
                                 const bfloat16* w, float* dx, tier t = tier::fixed_order, cudaStream_t st = nullptr,
                                 conv_launch launch = {}) {
  conv_detail::backward_data<float, bfloat16>(d_temp, &temp_bytes, s, dy, w, dx, t, st, launch);
}
template <class T>
void conv2d_backward_data(const conv2d_shape& s, const T* dy, const T* w, T* dx, tier t = tier::fixed_order,
                          cudaStream_t st = nullptr, conv_launch launch = {}) {
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value, "bitexact::cuda::conv2d_backward_data: float or double");
  conv_detail::backward_data<T, T>(nullptr, nullptr, s, dy, w, dx, t, st, launch);
}
inline void conv2d_backward_data(const conv2d_shape& s, const float* dy, const bfloat16* w, float* dx,
                                 tier t = tier::fixed_order, cudaStream_t st = nullptr, conv_launch launch = {}) {
  conv_detail::backward_data<float, bfloat16>(nullptr, nullptr, s, dy, w, dx, t, st, launch);
}

/// Backward-weight (dbias nullable), T = float or double (or bfloat16 x with float dy, dw,
/// dbias), with a caller's workspace.
template <class T>
void conv2d_backward_weight(void* d_temp, std::size_t& temp_bytes, const conv2d_shape& s, const T* x, const T* dy, T* dw,
                            typename bitexact::detail::conv_identity<T>::type* dbias, tier t = tier::fixed_order,
                            cudaStream_t st = nullptr, conv_launch launch = {}) {
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value, "bitexact::cuda::conv2d_backward_weight: float or double");
  conv_detail::backward_weight<T, T>(d_temp, &temp_bytes, s, x, dy, dw, dbias, t, st, launch);
}
inline void conv2d_backward_weight(void* d_temp, std::size_t& temp_bytes, const conv2d_shape& s, const bfloat16* x,
                                   const float* dy, float* dw, float* dbias, tier t = tier::fixed_order,
                                   cudaStream_t st = nullptr, conv_launch launch = {}) {
  conv_detail::backward_weight<float, bfloat16>(d_temp, &temp_bytes, s, x, dy, dw, dbias, t, st, launch);
}
template <class T>
void conv2d_backward_weight(const conv2d_shape& s, const T* x, const T* dy, T* dw,
                            typename bitexact::detail::conv_identity<T>::type* dbias, tier t = tier::fixed_order,
                            cudaStream_t st = nullptr, conv_launch launch = {}) {
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value, "bitexact::cuda::conv2d_backward_weight: float or double");
  conv_detail::backward_weight<T, T>(nullptr, nullptr, s, x, dy, dw, dbias, t, st, launch);
}
inline void conv2d_backward_weight(const conv2d_shape& s, const bfloat16* x, const float* dy, float* dw, float* dbias,
                                   tier t = tier::fixed_order, cudaStream_t st = nullptr, conv_launch launch = {}) {
  conv_detail::backward_weight<float, bfloat16>(nullptr, nullptr, s, x, dy, dw, dbias, t, st, launch);
}

// --- pooling ---------------------------------------------------------------------------------

/// max_pool2d forward; indices (nullable) get ih * in_w + iw of each output's maximum.
template <class T>
void max_pool2d_forward(const pool2d_shape& s, const T* x, T* y, std::int64_t* indices, cudaStream_t st = nullptr,
                        pool_launch launch = {}) {
  const char* what = "cuda::max_pool2d_forward";
  conv_detail::pool_type_check<T>();
  const core::pool_geometry g = bitexact::detail::pool_validate(s, what);
  bitexact::detail::pool_check_max_forward_io(g, x, y, indices, what);
  conv_detail::check_launch(launch.block, what);
  const std::size_t ny = g.N * g.C * g.OH * g.OW;
  if (ny == 0) return;
  detail::launch(what, conv_kernels::max_pool_forward_kernel<T>, conv_detail::pool_shape(launch), ny, st, g, x, y,
                 indices);
}

/// max_pool2d backward from the forward's indices (see the top: not range-checked on the device).
template <class T>
void max_pool2d_backward(const pool2d_shape& s, const T* dy, const std::int64_t* indices, T* dx,
                         cudaStream_t st = nullptr, pool_launch launch = {}) {
  const char* what = "cuda::max_pool2d_backward";
  conv_detail::pool_type_check<T>();
  const core::pool_geometry g = bitexact::detail::pool_validate(s, what);
  bitexact::detail::pool_check_max_backward_io(g, dy, indices, dx, what);
  conv_detail::check_launch(launch.block, what);
  const std::size_t planes = g.N * g.C;
  if (planes * g.H * g.W == 0) return;
  const unsigned owners = launch.owners ? launch.owners : default_pool_owners;
  conv_detail::check_pool_indices(g, indices, st, launch, what);
  detail::launch(what, conv_kernels::max_pool_backward_kernel<T>, conv_detail::pool_shape(launch),
                 static_cast<std::uint64_t>(planes) * owners, st, g, dy, indices, dx, owners);
}

template <class T>
void avg_pool2d_forward(const pool2d_shape& s, const T* x, T* y, cudaStream_t st = nullptr, pool_launch launch = {}) {
  conv_detail::avg_pool(s, x, y, false, st, launch, "cuda::avg_pool2d_forward");
}
template <class T>
void avg_pool2d_backward(const pool2d_shape& s, const T* dy, T* dx, cudaStream_t st = nullptr, pool_launch launch = {}) {
  conv_detail::avg_pool(s, dy, dx, true, st, launch, "cuda::avg_pool2d_backward");
}
template <class T>
void adaptive_avg_pool2d_forward(const adaptive_pool2d_shape& s, const T* x, T* y, cudaStream_t st = nullptr,
                                 pool_launch launch = {}) {
  conv_detail::avg_pool(s, x, y, false, st, launch, "cuda::adaptive_avg_pool2d_forward");
}
template <class T>
void adaptive_avg_pool2d_backward(const adaptive_pool2d_shape& s, const T* dy, T* dx, cudaStream_t st = nullptr,
                                  pool_launch launch = {}) {
  conv_detail::avg_pool(s, dy, dx, true, st, launch, "cuda::adaptive_avg_pool2d_backward");
}

}  // namespace cuda
}  // namespace bitexact
