// bitexact/core/conv.hpp - the geometry and the K index of 2-D convolution (DESIGN 7).
//
// A convolution is a GEMM over a documented K index, reduced in the canonical K order of
// core/gemm_order.hpp (256-wide chunks of fused FMAs from +0, chunk partials folded left to
// right). This header defines the shape, the element addressing of both layouts, where a
// kernel tap lands, and the three K indices (version conv_order_version):
//
//   forward        y[n][oc][oh][ow]:  K = (ic within the group, kernel row, kernel column),
//                  k = (icg * kernel_h + r) * kernel_w + c, K = in_channels/groups * kh * kw;
//                  term k = x[n][g * Cg + icg][oh*sh - ph + r*dh][ow*sw - pw + c*dw] * w[oc][k]
//                  (w is stored [out][in/groups][kh][kw], so w[oc][k] is w + oc * K + k).
//   backward-data  dx[n][ic][ih][iw]: K = (oc within the group, kernel row, kernel column),
//                  k = (ocg * kernel_h + r) * kernel_w + c, K = out_channels/groups * kh * kw;
//                  term k = dy[n][g * OCg + ocg][oh][ow] * w[g * OCg + ocg][icg][r][c] where
//                  oh * sh = ih + ph - r * dh and ow * sw = iw + pw - c * dw.
//   backward-weight dw[oc][icg][r][c]: K' = (image, output row, output column),
//                  k' = (n * out_h + oh) * out_w + ow, K' = batch * out_h * out_w;
//                  term k' = dy[n][oc][oh][ow] * x[n][g * Cg + icg][oh*sh - ph + r*dh][...].
//                  dbias[oc]: the same K' with the factor 1 (dy * 1 is exact, so each step is
//                  the rounded add p + dy).
//
// Taps outside the input (padding) and, for backward-data, output positions that do not exist
// (out of range, or not on the stride grid) are zero products, never skipped: the term is
// fma(+0, w, p) - exactly what a kernel that multiplies a zero-padded (and, for backward-data,
// zero-upsampled) tensor computes, so im2col, implicit GEMM and direct kernels agree. Every
// element's chain therefore has exactly K terms. Consequences: a NaN weight makes every output
// of its out-channel NaN (backward-data: every dx of its group), and an Inf weight gives NaN
// where it meets a padding tap (Inf * 0), as on a zero-padded input. A sum whose terms are all
// -0 and +0 follows IEEE addition from p = +0 (so it is +0). A kernel may leave zero terms out
// only where that provably gives these bits: the CPU's strided backward-data does, with finite
// weights, recomputing any -0 result term by term (cpu/conv_kernels.hpp, conv_backward_data_phases).
//
// 1-D convolution is the 2-D one with in_h = kernel_h = 1 (same bits, same kernels); 3-D
// convolution is not provided.
#pragma once
#include <cstddef>

#include "bfloat16.hpp"
#include "config.hpp"

namespace bitexact {

/// Version of the convolution and pooling orders (the K indices above, the pooling orders of
/// pool.hpp). Bumped, and called out in CHANGELOG.md, whenever any result bit changes; golden
/// hashes in tests/conv_test.cpp pin it. The K reduction itself is gemm_order_version's.
inline constexpr int conv_order_version = 1;

/// Memory layout of the activations (x, y, dx, dy). Weights are always [out][in/groups][kh][kw].
enum class layout { nchw, nhwc };

/// A 2-D convolution. out = (in + 2 * pad - dilation * (kernel - 1) - 1) / stride + 1.
struct conv2d_shape {
  std::size_t batch = 0, in_channels = 0, in_h = 0, in_w = 0;
  std::size_t out_channels = 0, kernel_h = 0, kernel_w = 0;
  std::size_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
  std::size_t dilation_h = 1, dilation_w = 1, groups = 1;
  layout data = layout::nchw;  ///< x, y, dx, dy; weights are always [out][in/groups][kh][kw]
  /// Output height; 0 when the (dilated) kernel does not fit the padded input (or a stride or
  /// dilation is 0: the ops reject such shapes).
  BITEXACT_HD std::size_t out_h() const { return out_extent(in_h, kernel_h, stride_h, pad_h, dilation_h); }
  BITEXACT_HD std::size_t out_w() const { return out_extent(in_w, kernel_w, stride_w, pad_w, dilation_w); }

  BITEXACT_HD static std::size_t out_extent(std::size_t in, std::size_t k, std::size_t s, std::size_t p,
                                            std::size_t d) {
    if (s == 0 || d == 0 || k == 0) return 0;
    const std::size_t span = d * (k - 1) + 1;
    if (in + 2 * p < span) return 0;
    return (in + 2 * p - span) / s + 1;
  }
};

namespace core {

/// Element offset of (n, c, h, w) in a tensor of C channels and H x W positions.
BITEXACT_HD inline std::size_t conv_offset(layout l, std::size_t C, std::size_t H, std::size_t W, std::size_t n,
                                           std::size_t c, std::size_t h, std::size_t w) {
  return l == layout::nchw ? ((n * C + c) * H + h) * W + w : ((n * H + h) * W + w) * C + c;
}

/// Forward tap: the input coordinate o * s - p + r * d of output coordinate o and kernel
/// offset r, in [0, in); false for a padding tap.
BITEXACT_HD inline bool conv_tap_in(std::size_t o, std::size_t r, std::size_t s, std::size_t p, std::size_t d,
                                    std::size_t in, std::size_t& i) {
  const std::size_t t = o * s + r * d;
  if (t < p || t - p >= in) return false;
  i = t - p;
  return true;
}

/// Backward-data tap: the output coordinate o with o * s = i + p - r * d, in [0, out); false
/// when there is none (a zero product).
BITEXACT_HD inline bool conv_tap_out(std::size_t i, std::size_t r, std::size_t s, std::size_t p, std::size_t d,
                                     std::size_t out, std::size_t& o) {
  const std::size_t t = i + p;
  if (t < r * d) return false;
  const std::size_t u = t - r * d;
  if (u % s != 0 || u / s >= out) return false;
  o = u / s;
  return true;
}

/// Inverse of conv_offset: the (n, c, h, w) of element offset e.
BITEXACT_HD inline void conv_coords(layout l, std::size_t C, std::size_t H, std::size_t W, std::size_t e,
                                    std::size_t& n, std::size_t& c, std::size_t& h, std::size_t& w) {
  if (l == layout::nchw) {
    w = e % W;
    h = (e / W) % H;
    c = (e / (W * H)) % C;
    n = e / (W * H * C);
  } else {
    c = e % C;
    w = (e / C) % W;
    h = (e / (C * W)) % H;
    n = e / (C * W * H);
  }
}

/// The extents of a (validated) shape, and the lengths of the three K indices above.
struct conv_dims {
  std::size_t N, C, H, W, OC, KH, KW, OH, OW, G, Cg, OCg;
  BITEXACT_HD explicit conv_dims(const conv2d_shape& s)
      : N(s.batch), C(s.in_channels), H(s.in_h), W(s.in_w), OC(s.out_channels), KH(s.kernel_h),
        KW(s.kernel_w), OH(s.out_h()), OW(s.out_w()), G(s.groups), Cg(s.in_channels / s.groups),
        OCg(s.out_channels / s.groups) {}
  BITEXACT_HD std::size_t k_forward() const { return Cg * KH * KW; }
  BITEXACT_HD std::size_t k_backward_data() const { return OCg * KH * KW; }
  BITEXACT_HD std::size_t k_backward_weight() const { return N * OH * OW; }
};

// The terms of the three K indices (the table at the top), one definition for the reference
// and the CUDA kernels. A is the accumulation type; x and w are pointers (or anything indexable
// whose elements core::widen takes); padding taps and missing output positions are +0 (a zero
// product, never skipped).

/// Forward, y[n][oc][oh][ow]: the x factor of term k (w's is w[oc * K + k]).
template <class A, class XPtr>
BITEXACT_HD A conv_forward_x_term(const conv2d_shape& s, const conv_dims& d, XPtr x, std::size_t n,
                                  std::size_t oc, std::size_t oh, std::size_t ow, std::size_t k) {
  const std::size_t icg = k / (d.KH * d.KW), r = (k / d.KW) % d.KH, c = k % d.KW;
  std::size_t ih, iw;
  if (!conv_tap_in(oh, r, s.stride_h, s.pad_h, s.dilation_h, d.H, ih) ||
      !conv_tap_in(ow, c, s.stride_w, s.pad_w, s.dilation_w, d.W, iw))
    return A(0);
  return static_cast<A>(widen(x[conv_offset(s.data, d.C, d.H, d.W, n, (oc / d.OCg) * d.Cg + icg, ih, iw)]));
}

/// Backward-data, dx[n][ic][ih][iw]: the dy factor of term k.
template <class A>
BITEXACT_HD A conv_backward_data_dy_term(const conv2d_shape& s, const conv_dims& d, const A* dy, std::size_t n,
                                         std::size_t ic, std::size_t ih, std::size_t iw, std::size_t k) {
  const std::size_t ocg = k / (d.KH * d.KW), r = (k / d.KW) % d.KH, c = k % d.KW;
  std::size_t oh, ow;
  if (!conv_tap_out(ih, r, s.stride_h, s.pad_h, s.dilation_h, d.OH, oh) ||
      !conv_tap_out(iw, c, s.stride_w, s.pad_w, s.dilation_w, d.OW, ow))
    return A(0);
  return dy[conv_offset(s.data, d.OC, d.OH, d.OW, n, (ic / d.Cg) * d.OCg + ocg, oh, ow)];
}

/// Backward-data: the w factor of term k of in-channel ic.
template <class A, class WPtr>
BITEXACT_HD A conv_backward_data_w_term(const conv_dims& d, WPtr w, std::size_t ic, std::size_t k) {
  const std::size_t ocg = k / (d.KH * d.KW), rc = k % (d.KH * d.KW);
  return static_cast<A>(widen(w[(((ic / d.Cg) * d.OCg + ocg) * d.Cg + ic % d.Cg) * d.KH * d.KW + rc]));
}

/// Backward-weight, dw[oc][icg][r][c] (and dbias[oc]): the dy factor of term k'.
template <class A>
BITEXACT_HD A conv_backward_weight_dy_term(const conv2d_shape& s, const conv_dims& d, const A* dy, std::size_t oc,
                                           std::size_t k) {
  const std::size_t n = k / (d.OH * d.OW), oh = (k / d.OW) % d.OH, ow = k % d.OW;
  return dy[conv_offset(s.data, d.OC, d.OH, d.OW, n, oc, oh, ow)];
}

/// Backward-weight: the x factor of term k' of dw[oc][icg][r][c].
template <class A, class XPtr>
BITEXACT_HD A conv_backward_weight_x_term(const conv2d_shape& s, const conv_dims& d, XPtr x, std::size_t oc,
                                          std::size_t icg, std::size_t r, std::size_t c, std::size_t k) {
  const std::size_t n = k / (d.OH * d.OW), oh = (k / d.OW) % d.OH, ow = k % d.OW;
  std::size_t ih, iw;
  if (!conv_tap_in(oh, r, s.stride_h, s.pad_h, s.dilation_h, d.H, ih) ||
      !conv_tap_in(ow, c, s.stride_w, s.pad_w, s.dilation_w, d.W, iw))
    return A(0);
  return static_cast<A>(widen(x[conv_offset(s.data, d.C, d.H, d.W, n, (oc / d.OCg) * d.Cg + icg, ih, iw)]));
}

}  // namespace core
}  // namespace bitexact
