// bitexact/conv.hpp - deterministic 2-D convolution: forward, backward-data, backward-weight.
//
// Canonical order (fixed_order, conv_order_version; details in core/conv.hpp): every output
// element is core::gemm_fixed_order_sum - 256-wide K chunks, each a chain of fused FMAs from
// +0 in increasing k, chunk partials folded left to right (core/gemm_order.hpp) - over a
// documented K index:
//   forward          y[n][oc][oh][ow]   K = (in-channel within the group, kernel row, kernel column);
//                    then y = S + bias[oc], one rounded add (the GEMM epilogue with alpha = 1,
//                    beta = 1, C_old = bias[oc]); without bias y = S;
//   backward-data    dx[n][ic][ih][iw]  K = (out-channel within the group, kernel row, kernel column);
//   backward-weight  dw[oc][icg][r][c]  K' = (image, output row, output column) of dy * x;
//                    dbias[oc]: the same K' order of dy * 1 (each step a rounded add).
// Padding taps (and, for backward-data, output positions off the stride grid or out of range)
// are zero products fma(+0, w, p), never skipped, so a NaN weight poisons its whole output
// channel and an Inf weight meeting a padding tap gives NaN, as on a zero-padded tensor.
// A NaN result is the canonical quiet NaN.
// Guarantees: forward and backward-data elements depend on their input window and the filter
// only - never on the batch size, tiles, threads or ISA. Backward-weight and dbias sum over the
// batch, in the fixed K' order: independent of threads, ISA and tiling (not of the batch).
//
// exact tier: each element is the correctly rounded value (nearest even) of the exact sum of
// its K products (forward: plus bias[oc], rounded once), core/exact.hpp's rules for NaN, Inf
// and signed zeros. It is order-independent: backward-weight's value is that of the whole
// batch's exact sum, whatever order or split computes it (reordering the images changes no bit;
// summing separately rounded micro-batch results is another computation).
//
// Types: float, double; and bfloat16 x and w (widened exactly) with float bias, y, dy, dx, dw.
// 1-D convolution: use in_h = kernel_h = 1 (same order, same kernels). No 3-D convolution.
//
// Bad input (std::invalid_argument, outputs untouched): a zero stride, dilation, kernel size or
// group count, channels not divisible by groups, a (dilated) kernel larger than the padded
// input, a null pointer with a non-zero size, an output overlapping an input.
// FTZ/DAZ or a non-default rounding mode on the calling thread: fp_environment_error.
#pragma once
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "core/bfloat16.hpp"
#include "conv_checks.hpp"
#include "core/conv.hpp"
#include "cpu/conv_kernels.hpp"
#include "cpu/dispatch.hpp"
#include "execution.hpp"
#include "fp_environment.hpp"
#include "tier.hpp"

namespace bitexact {
namespace detail {

template <class A, class W>
const A* conv_widened(const W* w, std::size_t n, std::vector<A>& buf) {
  if constexpr (std::is_same<A, W>::value) {
    return w;
  } else {
    buf.resize(n);
    for (std::size_t i = 0; i < n; ++i) buf[i] = core::widen(w[i]);
    return buf.data();
  }
}

template <class A, class X>
void conv_forward_impl(const conv2d_shape& s, const X* x, const X* w, const A* bias, A* y, tier t, execution ex) {
  const char* what = "conv2d_forward";
  const conv_sizes z = conv_validate(s, what);
  conv_check_forward_io<A, X, X>(s, z, x, w, bias, y, what);
  require_ieee_environment(what);
  const int threads = resolved_threads(ex);
  const isa simd = resolved_isa(ex);
  if (z.y == 0) return;
  if (t == tier::exact) return cpu::detail::conv_forward_exact<A>(s, x, w, bias, y, threads, simd);
  std::vector<A> wbuf;
  const A* wa = conv_widened<A>(w, z.w, wbuf);
  cpu::detail::with_arch(simd, [&](auto arch) {
    using Arch = decltype(arch);
    if (cpu::detail::conv_is_depthwise(s) && (s.data == layout::nhwc || s.stride_w == 1))
      cpu::detail::conv_depthwise_forward<Arch, A, X>(s, x, wa, bias, y, threads);
    else
      cpu::detail::conv_forward_kernel<Arch, A, X>(s, x, wa, bias, y, threads);
  });
}

template <class A, class W>
void conv_backward_data_impl(const conv2d_shape& s, const A* dy, const W* w, A* dx, tier t, execution ex) {
  const char* what = "conv2d_backward_data";
  const conv_sizes z = conv_validate(s, what);
  conv_check_backward_data_io<A, W>(z, dy, w, dx, what);
  require_ieee_environment(what);
  const int threads = resolved_threads(ex);
  const isa simd = resolved_isa(ex);
  if (z.x == 0) return;
  if (t == tier::exact) return cpu::detail::conv_backward_data_exact<A>(s, dy, w, dx, threads, simd);
  std::vector<A> wbuf;
  const A* wa = conv_widened<A>(w, z.w, wbuf);
  cpu::detail::with_arch(simd, [&](auto arch) {
    using Arch = decltype(arch);
    if (cpu::detail::conv_is_depthwise(s) && s.data == layout::nchw && s.stride_h == 1 && s.stride_w == 1)
      cpu::detail::conv_depthwise_backward_data<Arch, A>(s, dy, wa, dx, threads);
    else if (cpu::detail::conv_backward_data_phases_apply(s, wa))
      cpu::detail::conv_backward_data_phases<Arch, A>(s, dy, wa, dx, threads);
    else
      cpu::detail::conv_backward_data_kernel<Arch, A>(s, dy, wa, dx, threads);
  });
}

template <class A, class X>
void conv_backward_weight_impl(const conv2d_shape& s, const X* x, const A* dy, A* dw, A* dbias, tier t,
                               execution ex) {
  const char* what = "conv2d_backward_weight";
  const conv_sizes z = conv_validate(s, what);
  conv_check_backward_weight_io<A, X>(s, z, x, dy, dw, dbias, what);
  require_ieee_environment(what);
  const int threads = resolved_threads(ex);
  const isa simd = resolved_isa(ex);
  if (t == tier::exact) return cpu::detail::conv_backward_weight_exact<A>(s, x, dy, dw, dbias, threads, simd);
  cpu::detail::with_arch(simd, [&](auto arch) {
    cpu::detail::conv_backward_weight_kernel<decltype(arch), A, X>(s, x, dy, dw, dbias, threads);
  });
}

}  // namespace detail

/// Forward: y = conv(x, w) (+ bias). T: float or double. bias may be null.
template <class T>
void conv2d_forward(const conv2d_shape& s, const T* x, const T* w, const typename detail::conv_identity<T>::type* bias,
                    T* y, tier t = tier::fixed_order, execution ex = {}) {
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value, "conv2d_forward: float or double");
  detail::conv_forward_impl<T, T>(s, x, w, bias, y, t, ex);
}
/// Forward with bfloat16 x and w (widened exactly), float bias and y.
inline void conv2d_forward(const conv2d_shape& s, const bfloat16* x, const bfloat16* w, const float* bias, float* y,
                           tier t = tier::fixed_order, execution ex = {}) {
  detail::conv_forward_impl<float, bfloat16>(s, x, w, bias, y, t, ex);
}

/// Backward-data: dx = the gradient of y with respect to x, given dy. T: float or double.
template <class T>
void conv2d_backward_data(const conv2d_shape& s, const T* dy, const T* w, T* dx, tier t = tier::fixed_order,
                          execution ex = {}) {
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value,
                "conv2d_backward_data: float or double");
  detail::conv_backward_data_impl<T, T>(s, dy, w, dx, t, ex);
}
/// Backward-data with bfloat16 weights, float dy and dx.
inline void conv2d_backward_data(const conv2d_shape& s, const float* dy, const bfloat16* w, float* dx,
                                 tier t = tier::fixed_order, execution ex = {}) {
  detail::conv_backward_data_impl<float, bfloat16>(s, dy, w, dx, t, ex);
}

/// Backward-weight: dw (and dbias, if not null) from x and dy. T: float or double.
template <class T>
void conv2d_backward_weight(const conv2d_shape& s, const T* x, const T* dy, T* dw,
                            typename detail::conv_identity<T>::type* dbias, tier t = tier::fixed_order,
                            execution ex = {}) {
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value,
                "conv2d_backward_weight: float or double");
  detail::conv_backward_weight_impl<T, T>(s, x, dy, dw, dbias, t, ex);
}
/// Backward-weight with bfloat16 x, float dy, dw and dbias.
inline void conv2d_backward_weight(const conv2d_shape& s, const bfloat16* x, const float* dy, float* dw, float* dbias,
                                   tier t = tier::fixed_order, execution ex = {}) {
  detail::conv_backward_weight_impl<float, bfloat16>(s, x, dy, dw, dbias, t, ex);
}

}  // namespace bitexact
