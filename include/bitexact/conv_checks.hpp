// bitexact/conv_checks.hpp - the argument checks of every convolution entry point, CPU and CUDA.
//
// One definition of convolution's "bad input" (conv.hpp): a zero stride, dilation, kernel size
// or group count, channels not divisible by groups, a (dilated) kernel larger than the padded
// input, extents that overflow, a null pointer with a non-zero size, an output overlapping an
// input. Each check throws std::invalid_argument("bitexact::<what>: ...") before anything is
// written. Host code only; no ISA, no CUDA runtime.
#pragma once
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

#include "core/conv.hpp"

namespace bitexact {
namespace detail {

/// T in a non-deduced context (bias and dbias parameters may be nullptr).
template <class T>
struct conv_identity {
  using type = T;
};

inline void conv_check(bool ok, const char* what, const std::string& msg) {
  if (!ok) throw std::invalid_argument(std::string("bitexact::") + what + ": " + msg);
}

inline bool conv_overlap(const void* a, std::size_t abytes, const void* b, std::size_t bbytes) {
  if (abytes == 0 || bbytes == 0 || a == nullptr || b == nullptr) return false;
  const auto pa = reinterpret_cast<std::uintptr_t>(a), pb = reinterpret_cast<std::uintptr_t>(b);
  return pa < pb + bbytes && pb < pa + abytes;
}

/// Sizes (in elements) of x, w, y of a validated shape.
struct conv_sizes {
  std::size_t x, w, y;
};

/// a * b, or std::invalid_argument when the product (as a count of up to 16-byte elements, so byte
/// extents and pointer ranges stay representable too) does not fit in std::size_t.
inline std::size_t conv_checked_mul(std::size_t a, std::size_t b, const char* what) {
  constexpr std::size_t limit = std::numeric_limits<std::size_t>::max() / 16;
  conv_check(a == 0 || b <= limit / a, what, "the sizes overflow");
  return a * b;
}

inline conv_sizes conv_validate(const conv2d_shape& s, const char* what) {
  // Every extent below is computed with checked products first, so no check further down (nor
  // out_h(), nor the overlap tests) can run on a wrapped size.
  for (std::size_t pad : {s.pad_h, s.pad_w}) conv_checked_mul(pad, 2, what);
  conv_checked_mul(s.dilation_h, s.kernel_h, what);
  conv_checked_mul(s.dilation_w, s.kernel_w, what);
  conv_check(s.in_h <= std::numeric_limits<std::size_t>::max() / 16 - 2 * s.pad_h &&
                 s.in_w <= std::numeric_limits<std::size_t>::max() / 16 - 2 * s.pad_w,
             what, "the sizes overflow");
  conv_check(s.stride_h > 0 && s.stride_w > 0, what, "zero stride");
  conv_check(s.dilation_h > 0 && s.dilation_w > 0, what, "zero dilation");
  conv_check(s.kernel_h > 0 && s.kernel_w > 0, what, "zero kernel size");
  conv_check(s.groups > 0, what, "zero groups");
  conv_check(s.in_channels % s.groups == 0 && s.out_channels % s.groups == 0, what,
             "in_channels and out_channels must be divisible by groups");
  conv_check(s.in_channels > 0 && s.out_channels > 0, what, "zero channels");
  conv_check(s.in_h + 2 * s.pad_h >= s.dilation_h * (s.kernel_h - 1) + 1 &&
                 s.in_w + 2 * s.pad_w >= s.dilation_w * (s.kernel_w - 1) + 1,
             what, "the (dilated) kernel is larger than the padded input");
  conv_check(s.data == layout::nchw || s.data == layout::nhwc, what, "unknown layout");
  conv_sizes z;
  const auto mul = [what](std::size_t a, std::size_t b) { return conv_checked_mul(a, b, what); };
  z.x = mul(mul(mul(s.batch, s.in_channels), s.in_h), s.in_w);
  z.w = mul(mul(mul(s.out_channels, s.in_channels / s.groups), s.kernel_h), s.kernel_w);
  z.y = mul(mul(mul(s.batch, s.out_channels), s.out_h()), s.out_w());
  // The im2col-style K' of backward_weight and the GEMM K of forward: products of the same
  // factors, checked once here.
  mul(mul(s.batch, s.out_h()), s.out_w());
  mul(mul(s.in_channels / s.groups, s.kernel_h), s.kernel_w);
  return z;
}

/// The pointer checks of conv2d_forward (null with a non-zero size, y overlapping x, w or bias).
template <class A, class X, class Wt>
void conv_check_forward_io(const conv2d_shape& s, const conv_sizes& z, const X* x, const Wt* w, const A* bias,
                           const A* y, const char* what) {
  conv_check(x != nullptr || z.x == 0, what, "null x with a non-zero size");
  conv_check(w != nullptr, what, "null w");
  conv_check(y != nullptr || z.y == 0, what, "null y with a non-zero size");
  conv_check(!conv_overlap(y, z.y * sizeof(A), x, z.x * sizeof(X)) &&
                 !conv_overlap(y, z.y * sizeof(A), w, z.w * sizeof(Wt)) &&
                 !conv_overlap(y, z.y * sizeof(A), bias, s.out_channels * sizeof(A)),
             what, "y overlaps x, w or bias");
}

/// The pointer checks of conv2d_backward_data.
template <class A, class Wt>
void conv_check_backward_data_io(const conv_sizes& z, const A* dy, const Wt* w, const A* dx, const char* what) {
  conv_check(dy != nullptr || z.y == 0, what, "null dy with a non-zero size");
  conv_check(w != nullptr, what, "null w");
  conv_check(dx != nullptr || z.x == 0, what, "null dx with a non-zero size");
  conv_check(!conv_overlap(dx, z.x * sizeof(A), dy, z.y * sizeof(A)) &&
                 !conv_overlap(dx, z.x * sizeof(A), w, z.w * sizeof(Wt)),
             what, "dx overlaps dy or w");
}

/// The pointer checks of conv2d_backward_weight.
template <class A, class X>
void conv_check_backward_weight_io(const conv2d_shape& s, const conv_sizes& z, const X* x, const A* dy, const A* dw,
                                   const A* dbias, const char* what) {
  conv_check(x != nullptr || z.x == 0, what, "null x with a non-zero size");
  conv_check(dy != nullptr || z.y == 0, what, "null dy with a non-zero size");
  conv_check(dw != nullptr, what, "null dw");
  const std::size_t wb = z.w * sizeof(A), bb = dbias ? s.out_channels * sizeof(A) : 0;
  conv_check(!conv_overlap(dw, wb, x, z.x * sizeof(X)) && !conv_overlap(dw, wb, dy, z.y * sizeof(A)) &&
                 !conv_overlap(dbias, bb, x, z.x * sizeof(X)) && !conv_overlap(dbias, bb, dy, z.y * sizeof(A)) &&
                 !conv_overlap(dbias, bb, dw, wb),
             what, "dw or dbias overlaps x, dy or each other");
}

}  // namespace detail
}  // namespace bitexact
