// bitexact/cuda/conv_emulation.hpp - the CUDA convolution and pooling run on the CPU for a
// launch shape.
//
// Host only. Runs exactly the passes cuda/conv.cuh launches, with the same bodies from
// cuda/conv_kernels.hpp, through emulate_launch (the bodies have no barriers or shared memory:
// one thread after another, blocks in the given order, is a faithful emulation). Workspaces
// start as 0xFF garbage, as device memory would. Arguments are validated like the launchers
// (std::invalid_argument, outputs untouched).
//
//   emulated_conv2d_forward(s, x, w, bias, y, tier, conv_launch, order, sm_count)
//   emulated_conv2d_backward_data(s, dy, w, dx, ...)
//   emulated_conv2d_backward_weight(s, x, dy, dw, dbias, ...)
//   emulated_max_pool2d_forward / _backward, emulated_avg_pool2d_forward / _backward,
//   emulated_adaptive_avg_pool2d_forward / _backward (pool_launch, order)
//
// conv_launch {grid, splits, block}: 0 = the launcher's choice for a device with sm_count SMs.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "../tier.hpp"
#include "conv_kernels.hpp"
#include "launch.hpp"

namespace bitexact {
namespace cuda {
namespace conv_detail {

/// The passes of one op: the main body, then (S > 1) the fold or merge, as the launcher runs them.
template <class A, class Op>
void emulate_op(const Op& op, tier t, conv_launch opt, block_order order, unsigned sm_count) {
  const gemm_plan p = make_plan<A>(op.elements(), op.k(), t, opt.splits, sm_count);
  const unsigned block = opt.block ? opt.block : default_conv_block;
  const auto shape = [&](std::uint64_t items) {
    return launch_shape{opt.grid ? opt.grid : static_cast<unsigned>((items + block - 1) / block), block};
  };
  if (t == tier::fixed_order) {
    std::vector<A> partials = emulated_device_memory<A>(workspace_bytes<A>(p, t) / sizeof(A));
    emulate_launch(shape(p.units()),
                   [&](const thread_index& ti) { conv_fixed_order_body<A>(ti, op, p, partials.data(), false); }, order);
    if (p.splits > 1)
      emulate_launch(shape(p.m), [&](const thread_index& ti) { conv_fixed_order_body<A>(ti, op, p, partials.data(), true); },
                     order);
    return;
  }
  std::vector<std::int64_t> ws = emulated_device_memory<std::int64_t>(workspace_bytes<A>(p, t) / sizeof(std::int64_t));
  emulate_launch(shape(p.units()), [&](const thread_index& ti) { conv_exact_body<A>(ti, op, p, ws.data(), false); }, order);
  if (p.splits > 1)
    emulate_launch(shape(p.m), [&](const thread_index& ti) { conv_exact_body<A>(ti, op, p, ws.data(), true); }, order);
}

inline launch_shape pool_shape(pool_launch opt, std::uint64_t items) {
  const unsigned block = opt.block ? opt.block : default_block_threads;
  return launch_shape{opt.grid ? opt.grid : static_cast<unsigned>((items + block - 1) / block), block};
}

}  // namespace conv_detail

template <class A, class X, class Wt>
void emulated_conv2d_forward(const conv2d_shape& s, const X* x, const Wt* w, const A* bias, A* y, tier t,
                             conv_launch opt = {}, block_order order = block_order::shuffled, unsigned sm_count = 8) {
  const bitexact::detail::conv_sizes z = conv_detail::validate_forward<A, X, Wt>(s, x, w, bias, y, t, opt.block);
  if (z.y == 0) return;
  conv_detail::emulate_op<A>(conv_forward_op<A>(s, x, w, bias, y), t, opt, order, sm_count);
}

template <class A, class Wt>
void emulated_conv2d_backward_data(const conv2d_shape& s, const A* dy, const Wt* w, A* dx, tier t, conv_launch opt = {},
                                   block_order order = block_order::shuffled, unsigned sm_count = 8) {
  const bitexact::detail::conv_sizes z = conv_detail::validate_backward_data<A, Wt>(s, dy, w, dx, t, opt.block);
  if (z.x == 0) return;
  conv_detail::emulate_op<A>(conv_backward_data_op<A>(s, dy, w, dx), t, opt, order, sm_count);
}

template <class A, class X>
void emulated_conv2d_backward_weight(const conv2d_shape& s, const X* x, const A* dy, A* dw, A* dbias, tier t,
                                     conv_launch opt = {}, block_order order = block_order::shuffled,
                                     unsigned sm_count = 8) {
  conv_detail::validate_backward_weight<A, X>(s, x, dy, dw, dbias, t, opt.block);
  conv_detail::emulate_op<A>(conv_backward_weight_op<A>(s, x, dy, dw, dbias), t, opt, order, sm_count);
}

template <class T>
void emulated_max_pool2d_forward(const pool2d_shape& s, const T* x, T* y, std::int64_t* indices, pool_launch opt = {},
                                 block_order order = block_order::shuffled) {
  const char* what = "cuda::max_pool2d_forward";
  const core::pool_geometry g = bitexact::detail::pool_validate(s, what);
  bitexact::detail::pool_check_max_forward_io(g, x, y, indices, what);
  conv_detail::check_launch(opt.block, what);
  emulate_launch(conv_detail::pool_shape(opt, std::uint64_t(g.N) * g.C * g.OH * g.OW),
                 [&](const thread_index& ti) { max_pool_forward_body<T>(ti, g, x, y, indices); }, order);
}

template <class T>
void emulated_max_pool2d_backward(const pool2d_shape& s, const T* dy, const std::int64_t* indices, T* dx,
                                  pool_launch opt = {}, block_order order = block_order::shuffled) {
  const char* what = "cuda::max_pool2d_backward";
  const core::pool_geometry g = bitexact::detail::pool_validate(s, what);
  bitexact::detail::pool_check_max_backward_io(g, dy, indices, dx, what);
  conv_detail::check_launch(opt.block, what);
  const unsigned owners = opt.owners ? opt.owners : default_pool_owners;
  const std::uint64_t ny = std::uint64_t(g.N) * g.C * g.OH * g.OW;
  unsigned long long bad = pool_no_bad_index;
  emulate_launch(conv_detail::pool_shape(opt, ny),
                 [&](const thread_index& ti) { max_pool_index_check_body(ti, ny, indices, std::uint64_t(g.H) * g.W, &bad); },
                 order);
  if (bad != pool_no_bad_index) conv_detail::throw_bad_pool_index(what, bad);
  emulate_launch(conv_detail::pool_shape(opt, std::uint64_t(g.N) * g.C * owners),
                 [&](const thread_index& ti) { max_pool_backward_body<T>(ti, g, dy, indices, dx, owners); }, order);
}

namespace conv_detail {
/// avg (or adaptive avg) pooling, forward (in = x, out = y) or backward (in = dy, out = dx):
/// the checks, then one thread per output element.
template <class T, class Shape>
void emulated_avg(const Shape& s, const T* in, T* out, bool backward, pool_launch opt, block_order order,
                  const char* what) {
  std::size_t n_out;
  const core::pool_geometry g = validate_avg_pool(s, in, out, backward, opt.block, what, n_out);
  emulate_launch(pool_shape(opt, n_out),
                 [&](const thread_index& ti) {
                   if (backward)
                     avg_pool_backward_body<T>(ti, g, in, out);
                   else
                     avg_pool_forward_body<T>(ti, g, in, out);
                 },
                 order);
}
}  // namespace conv_detail

template <class T>
void emulated_avg_pool2d_forward(const pool2d_shape& s, const T* x, T* y, pool_launch opt = {},
                                 block_order order = block_order::shuffled) {
  conv_detail::emulated_avg(s, x, y, false, opt, order, "cuda::avg_pool2d_forward");
}
template <class T>
void emulated_avg_pool2d_backward(const pool2d_shape& s, const T* dy, T* dx, pool_launch opt = {},
                                  block_order order = block_order::shuffled) {
  conv_detail::emulated_avg(s, dy, dx, true, opt, order, "cuda::avg_pool2d_backward");
}
template <class T>
void emulated_adaptive_avg_pool2d_forward(const adaptive_pool2d_shape& s, const T* x, T* y, pool_launch opt = {},
                                          block_order order = block_order::shuffled) {
  conv_detail::emulated_avg(s, x, y, false, opt, order, "cuda::adaptive_avg_pool2d_forward");
}
template <class T>
void emulated_adaptive_avg_pool2d_backward(const adaptive_pool2d_shape& s, const T* dy, T* dx, pool_launch opt = {},
                                           block_order order = block_order::shuffled) {
  conv_detail::emulated_avg(s, dy, dx, true, opt, order, "cuda::adaptive_avg_pool2d_backward");
}

}  // namespace cuda
}  // namespace bitexact
