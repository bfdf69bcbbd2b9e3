// bitexact/core/pool.hpp - the windows and orders of 2-D pooling (conv_order_version).
//
// Window of output coordinate o (kernel k, stride s, padding p, input extent n):
//   start = o * s - p, end = start + k; the taps that read the input are [max(start, 0),
//   min(end, n)); avg_pool2d's count_include_pad divisor uses [start, min(end, n + p)) (PyTorch's
//   rule: padding counts, the part of a ceil_mode window past the right padding does not).
// Output extent: floor((n + 2p - k) / s) + 1, or with ceil_mode the ceiling, minus one when
// that last window would start at or past n + p.
// Adaptive window of output o of `out` over `in`: [floor(o * in / out), ceil((o + 1) * in / out)).
#pragma once
#include <cstddef>

#include "config.hpp"
#include "conv.hpp"

namespace bitexact {
namespace core {

BITEXACT_HD inline std::size_t pool_out_extent(std::size_t n, std::size_t k, std::size_t s, std::size_t p, bool ceil_mode) {
  if (s == 0 || k == 0 || n + 2 * p < k) return 0;
  const std::size_t span = n + 2 * p - k;
  std::size_t out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
  if (ceil_mode && (out - 1) * s >= n + p) --out;
  return out;
}

struct pool_window {
  std::size_t begin, end;  ///< input taps [begin, end) (inside the input)
  std::size_t padded;      ///< count_include_pad extent of the window
};

BITEXACT_HD inline pool_window pool_window_of(std::size_t o, std::size_t k, std::size_t s, std::size_t p, std::size_t n) {
  const long long start = static_cast<long long>(o * s) - static_cast<long long>(p);
  const long long end = start + static_cast<long long>(k);
  const long long pend = end < static_cast<long long>(n + p) ? end : static_cast<long long>(n + p);
  pool_window w;
  w.begin = start < 0 ? 0 : static_cast<std::size_t>(start);
  w.end = end < static_cast<long long>(n) ? static_cast<std::size_t>(end) : n;
  if (w.end < w.begin) w.end = w.begin;
  w.padded = static_cast<std::size_t>(pend - start);
  return w;
}

BITEXACT_HD inline pool_window adaptive_window_of(std::size_t o, std::size_t out, std::size_t in) {
  pool_window w;
  w.begin = o * in / out;
  w.end = ((o + 1) * in + out - 1) / out;
  w.padded = w.end - w.begin;
  return w;
}

/// max_pool2d's step: whether tap value v replaces the running best - v is greater, or v is the
/// first NaN (a NaN best takes nothing after it); ties (-0 and +0 included) keep the earlier tap.
template <class T>
BITEXACT_HD inline bool pool_max_takes(T best, T v) {
  return best == best && !(v <= best);
}

/// max_pool2d's order over a window (taps wh x ww of a plane W wide, at(ih * W + iw) reads
/// one): the first NaN in window order (kernel row, then column), else the first maximum (-0
/// and +0 tie: the first wins). best = that value (not yet made canonical), index = its
/// ih * W + iw. The window is not empty (validated shapes).
template <class T, class At>
BITEXACT_HD void pool_window_max(const pool_window& wh, const pool_window& ww, std::size_t W, At at, T& best,
                                 std::size_t& index) {
  bool have = false;
  best = T(0);
  index = 0;
  for (std::size_t ih = wh.begin; ih < wh.end; ++ih)
    for (std::size_t iw = ww.begin; iw < ww.end; ++iw) {
      const T v = at(ih * W + iw);
      if (!have || pool_max_takes(best, v)) {
        best = v;
        index = ih * W + iw;
        have = true;
      }
    }
}

/// avg_pool2d's window sum: +0, then + x over the input taps in window order (rounded adds).
template <class T, class At>
BITEXACT_HD T pool_window_sum(const pool_window& wh, const pool_window& ww, std::size_t W, At at) {
  T s = T(0);
  for (std::size_t ih = wh.begin; ih < wh.end; ++ih)
    for (std::size_t iw = ww.begin; iw < ww.end; ++iw) s = s + at(ih * W + iw);
  return s;
}

/// Outputs [lo, hi) whose windows may cover input coordinate i: a superset of those that do
/// (callers test membership with the window itself), in increasing order. Used by gathers
/// (each dx element visits the windows that cover it in increasing output index).
BITEXACT_HD inline void pool_covering(std::size_t i, std::size_t k, std::size_t s, std::size_t p, std::size_t out,
                                      std::size_t& lo, std::size_t& hi) {
  // window o covers i only if o * s - p <= i < o * s - p + k: o in [(i + p - k + 1) / s, (i + p) / s]
  lo = (i + p + 1 > k) ? (i + p + 1 - k) / s : 0;
  hi = (i + p) / s + 1;
  if (hi > out) hi = out;
  if (lo > hi) lo = hi;
}
BITEXACT_HD inline void adaptive_covering(std::size_t i, std::size_t out, std::size_t in, std::size_t& lo,
                                          std::size_t& hi) {
  // end(o) > i from o = floor(i * out / in) on; begin(o) <= i up to o < ceil((i + 1) * out / in)
  lo = i * out / in;
  hi = ((i + 1) * out + in - 1) / in;
  if (hi > out) hi = out;
  if (lo > hi) lo = hi;
}

/// The geometry of one pooling call (pool2d_shape or adaptive_pool2d_shape, validated).
struct pool_geometry {
  std::size_t N, C, H, W, OH, OW, kh, kw, sh, sw, ph, pw;
  bool include_pad, adaptive;
  layout l;
  BITEXACT_HD pool_window wh(std::size_t oh) const {
    return adaptive ? adaptive_window_of(oh, OH, H) : pool_window_of(oh, kh, sh, ph, H);
  }
  BITEXACT_HD pool_window ww(std::size_t ow) const {
    return adaptive ? adaptive_window_of(ow, OW, W) : pool_window_of(ow, kw, sw, pw, W);
  }
  BITEXACT_HD std::size_t divisor(const pool_window& a, const pool_window& b) const {
    return include_pad ? a.padded * b.padded : (a.end - a.begin) * (b.end - b.begin);
  }
  /// Outputs [lo, hi) along h (resp. w) whose windows may cover input row ih (column iw).
  BITEXACT_HD void covering_h(std::size_t ih, std::size_t& lo, std::size_t& hi) const {
    if (adaptive) adaptive_covering(ih, OH, H, lo, hi);
    else pool_covering(ih, kh, sh, ph, OH, lo, hi);
  }
  BITEXACT_HD void covering_w(std::size_t iw, std::size_t& lo, std::size_t& hi) const {
    if (adaptive) adaptive_covering(iw, OW, W, lo, hi);
    else pool_covering(iw, kw, sw, pw, OW, lo, hi);
  }
  // element strides of a plane: along w, along h (input and output)
  BITEXACT_HD std::size_t xs() const { return l == layout::nchw ? 1 : C; }
};

}  // namespace core

/// A 2-D pooling window shape (max_pool2d, avg_pool2d; pool.hpp).
struct pool2d_shape {
  std::size_t batch = 0, channels = 0, in_h = 0, in_w = 0;
  std::size_t kernel_h = 0, kernel_w = 0, stride_h = 0, stride_w = 0, pad_h = 0, pad_w = 0;
  bool ceil_mode = false;
  bool count_include_pad = true;  ///< avg_pool2d only
  layout data = layout::nchw;
  BITEXACT_HD std::size_t out_h() const { return core::pool_out_extent(in_h, kernel_h, stride_h, pad_h, ceil_mode); }
  BITEXACT_HD std::size_t out_w() const { return core::pool_out_extent(in_w, kernel_w, stride_w, pad_w, ceil_mode); }
};

/// adaptive_avg_pool2d: the output size is given.
struct adaptive_pool2d_shape {
  std::size_t batch = 0, channels = 0, in_h = 0, in_w = 0, out_h = 0, out_w = 0;
  layout data = layout::nchw;
};

}  // namespace bitexact
