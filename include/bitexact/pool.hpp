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
#include "cpu/pool_kernels.hpp"
#include "execution.hpp"
#include "fp_environment.hpp"

namespace bitexact {

struct pool2d_shape {
  std::size_t batch = 0, channels = 0, in_h = 0, in_w = 0;
  std::size_t kernel_h = 0, kernel_w = 0, stride_h = 0, stride_w = 0, pad_h = 0, pad_w = 0;
  bool ceil_mode = false;
  bool count_include_pad = true;  ///< avg_pool2d only
  layout data = layout::nchw;
  std::size_t out_h() const { return core::pool_out_extent(in_h, kernel_h, stride_h, pad_h, ceil_mode); }
  std::size_t out_w() const { return core::pool_out_extent(in_w, kernel_w, stride_w, pad_w, ceil_mode); }
};

struct adaptive_pool2d_shape {
  std::size_t batch = 0, channels = 0, in_h = 0, in_w = 0, out_h = 0, out_w = 0;
  layout data = layout::nchw;
};

namespace detail {

inline void pool_check(bool ok, const char* what, const char* msg) {
  if (!ok) throw std::invalid_argument(std::string("bitexact::") + what + ": " + msg);
}
inline bool pool_overlap(const void* a, std::size_t ab, const void* b, std::size_t bb) {
  if (!a || !b || !ab || !bb) return false;
  const auto pa = reinterpret_cast<std::uintptr_t>(a), pb = reinterpret_cast<std::uintptr_t>(b);
  return pa < pb + bb && pb < pa + ab;
}

inline cpu::detail::pool_geometry pool_validate(const pool2d_shape& s, const char* what) {
  pool_check(s.kernel_h > 0 && s.kernel_w > 0, what, "zero kernel size");
  pool_check(s.stride_h > 0 && s.stride_w > 0, what, "zero stride");
  pool_check(2 * s.pad_h <= s.kernel_h && 2 * s.pad_w <= s.kernel_w, what, "padding above half the kernel");
  pool_check(s.in_h + 2 * s.pad_h >= s.kernel_h && s.in_w + 2 * s.pad_w >= s.kernel_w, what,
             "the kernel is larger than the padded input");
  pool_check(s.data == layout::nchw || s.data == layout::nhwc, what, "unknown layout");
  return {s.batch, s.channels, s.in_h, s.in_w, s.out_h(), s.out_w(), s.kernel_h, s.kernel_w, s.stride_h,
          s.stride_w, s.pad_h, s.pad_w, s.count_include_pad, false, s.data};
}

inline cpu::detail::pool_geometry pool_validate(const adaptive_pool2d_shape& s, const char* what) {
  pool_check(s.out_h > 0 && s.out_w > 0, what, "zero output size");
  pool_check(s.in_h > 0 && s.in_w > 0, what, "empty input plane");
  pool_check(s.data == layout::nchw || s.data == layout::nhwc, what, "unknown layout");
  return {s.batch, s.channels, s.in_h, s.in_w, s.out_h, s.out_w, 0, 0, 0, 0, 0, 0, false, true, s.data};
}

template <class T>
void pool_check_io(const cpu::detail::pool_geometry& g, const T* in, std::size_t in_n, const void* out,
                   std::size_t out_bytes, const char* what) {
  pool_check(in != nullptr || in_n == 0, what, "null input with a non-zero size");
  pool_check(out != nullptr || out_bytes == 0, what, "null output with a non-zero size");
  pool_check(!pool_overlap(in, in_n * sizeof(T), out, out_bytes), what, "an output overlaps an input");
  (void)g;
}

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
  const std::size_t nx = g.N * g.C * g.H * g.W, ny = g.N * g.C * g.OH * g.OW;
  detail::pool_check_io(g, x, nx, y, ny * sizeof(T), what);
  detail::pool_check(!detail::pool_overlap(x, nx * sizeof(T), indices, ny * 8) &&
                         !detail::pool_overlap(y, ny * sizeof(T), indices, ny * 8),
                     what, "indices overlap x or y");
  detail::require_ieee_environment(what);
  cpu::detail::max_pool_forward_kernel(g, x, y, indices, resolved_threads(ex));
}

/// max_pool2d backward from the forward's indices.
template <class T>
void max_pool2d_backward(const pool2d_shape& s, const T* dy, const std::int64_t* indices, T* dx, execution ex = {}) {
  const char* what = "max_pool2d_backward";
  detail::pool_type_check<T>();
  const auto g = detail::pool_validate(s, what);
  const std::size_t nx = g.N * g.C * g.H * g.W, ny = g.N * g.C * g.OH * g.OW;
  detail::pool_check_io(g, dy, ny, dx, nx * sizeof(T), what);
  detail::pool_check(indices != nullptr || ny == 0, what, "null indices with a non-zero size");
  detail::pool_check(!detail::pool_overlap(dx, nx * sizeof(T), indices, ny * 8), what, "dx overlaps indices");
  for (std::size_t o = 0; o < ny; ++o)
    detail::pool_check(indices[o] >= 0 && static_cast<std::uint64_t>(indices[o]) < g.H * g.W, what,
                       "an index is outside the input plane");
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
