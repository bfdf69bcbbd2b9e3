// bitexact/pool.hpp - deterministic 2-D pooling, forward and backward, NCHW and NHWC.
//
// Windows (core/pool.hpp): output o reads input taps [o * s - p, o * s - p + k) clipped to the
// input; ceil_mode rounds the output extent up (a last window that would start in the right
// padding is dropped). Orders (conv_order_version):
//   max_pool2d: the window's first NaN in window order (kernel row, then column), else its first
//     maximum (-0 and +0 tie: the first wins); indices[o] = ih * in_w + iw within the plane
//     (PyTorch's convention, both layouts). NaN propagates and is stored canonical.
//   avg_pool2d: s = +0, then s = s + x over the input taps in window order; y = s / divisor, one
//     rounded division; divisor = the window clipped to the padded input (count_include_pad, the
//     default) or the number of input taps.
//   adaptive_avg_pool2d: window [floor(o * in / out), ceil((o + 1) * in / out)), same sum and a
//     division by its size.
//   backward: each dx element is +0 plus its contributions (max: dy[o] of every output whose
//     index is this element; avg: the rounded quotient dy[o] / divisor(o) of every window that
//     covers it) added one by one in increasing output index (oh, then ow). Threads own whole
//     (image, channel) planes; no atomics; the result never depends on threads or ISA.
//
// Bad input (std::invalid_argument, outputs untouched): zero kernel or stride, padding above
// half the kernel, a kernel larger than the padded input, adaptive output sizes of 0 (or a
// non-empty output of an empty input), null pointers with non-zero sizes, outputs overlapping
// inputs, max_pool2d_backward indices outside the plane. FTZ/DAZ: fp_environment_error.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "core/conv.hpp"
#include "core/pool.hpp"
#include "pool_checks.hpp"
#include "cpu/pool_kernels.hpp"
#include "execution.hpp"
#include "fp_environment.hpp"

namespace bitexact {

namespace detail {

template <class T>
void pool_type_check() {
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value, "pooling: float or double");
}

template <class T, class Shape>
void avg_forward(const Shape& s, const T* x, T* y, execution ex, const char* what) {
  pool_type_check<T>();
  const auto g = pool_validate(s, what);
  const std::size_t nx = g.N * g.C * g.H * g.W, ny = g.N * g.C * g.OH * g.OW;
  pool_check_io(g, x, nx, y, ny * sizeof(T), what);
  require_ieee_environment(what);
  cpu::detail::avg_pool_forward_kernel(g, x, y, resolved_threads(ex));
}
template <class T, class Shape>
void avg_backward(const Shape& s, const T* dy, T* dx, execution ex, const char* what) {
  pool_type_check<T>();
  const auto g = pool_validate(s, what);
  const std::size_t nx = g.N * g.C * g.H * g.W, ny = g.N * g.C * g.OH * g.OW;
  pool_check_io(g, dy, ny, dx, nx * sizeof(T), what);
  require_ieee_environment(what);
  cpu::detail::avg_pool_backward_kernel(g, dy, dx, resolved_threads(ex));
}

}  // namespace detail

/// max_pool2d forward; indices (nullable) get ih * in_w + iw of each output's maximum.
template <class T>
void max_pool2d_forward(const pool2d_shape& s, const T* x, T* y, std::int64_t* indices, execution ex = {}) {
  const char* what = "max_pool2d_forward";
  detail::pool_type_check<T>();
  const auto g = detail::pool_validate(s, what);
  detail::pool_check_max_forward_io(g, x, y, indices, what);
  detail::require_ieee_environment(what);
  cpu::detail::max_pool_forward_kernel(g, x, y, indices, resolved_threads(ex), resolved_isa(ex));
}

/// max_pool2d backward from the forward's indices.
template <class T>
void max_pool2d_backward(const pool2d_shape& s, const T* dy, const std::int64_t* indices, T* dx, execution ex = {}) {
  const char* what = "max_pool2d_backward";
  detail::pool_type_check<T>();
  const auto g = detail::pool_validate(s, what);
  detail::pool_check_max_backward_io(g, dy, indices, dx, what);
  const std::size_t ny = g.N * g.C * g.OH * g.OW;
  // One branch-free sweep (it vectorizes); a negative index is above the plane as unsigned.
  const std::uint64_t plane = g.H * g.W;
  std::uint64_t outside = 0;
  for (std::size_t o = 0; o < ny; ++o) outside += static_cast<std::uint64_t>(indices[o]) >= plane ? 1u : 0u;
  detail::pool_check(outside == 0, what, "an index is outside the input plane");
  detail::require_ieee_environment(what);
  cpu::detail::max_pool_backward_kernel(g, dy, indices, dx, resolved_threads(ex));
}

template <class T>
void avg_pool2d_forward(const pool2d_shape& s, const T* x, T* y, execution ex = {}) {
  detail::avg_forward(s, x, y, ex, "avg_pool2d_forward");
}
template <class T>
void avg_pool2d_backward(const pool2d_shape& s, const T* dy, T* dx, execution ex = {}) {
  detail::avg_backward(s, dy, dx, ex, "avg_pool2d_backward");
}
template <class T>
void adaptive_avg_pool2d_forward(const adaptive_pool2d_shape& s, const T* x, T* y, execution ex = {}) {
  detail::avg_forward(s, x, y, ex, "adaptive_avg_pool2d_forward");
}
template <class T>
void adaptive_avg_pool2d_backward(const adaptive_pool2d_shape& s, const T* dy, T* dx, execution ex = {}) {
  detail::avg_backward(s, dy, dx, ex, "adaptive_avg_pool2d_backward");
}

}  // namespace bitexact
