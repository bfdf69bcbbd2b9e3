// bitexact/reference/pool.hpp - the executable specification of 2-D pooling (pool.hpp).
//
// Plain loops over core/pool.hpp's windows. Backward passes are written as gathers: each input
// element adds, from +0, the contributions of the windows that cover it in increasing output
// index ((oh, ow) row-major) - the order the CPU kernels' scatters reproduce.
#pragma once
#include <cstddef>
#include <cstdint>

#include "../core/conv.hpp"
#include "../core/gemm_order.hpp"
#include "../core/pool.hpp"

namespace bitexact {
namespace reference {

/// max_pool2d forward: the first NaN of the window in window order (kernel row, then column),
/// else its first maximum; index = ih * in_w + iw in the plane. NaN out is canonical.
template <class T>
void max_pool2d_forward(std::size_t N, std::size_t C, std::size_t H, std::size_t W, std::size_t OH, std::size_t OW,
                        std::size_t kh, std::size_t kw, std::size_t sh, std::size_t sw, std::size_t ph, std::size_t pw,
                        layout l, const T* x, T* y, std::int64_t* idx) {
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t c = 0; c < C; ++c)
      for (std::size_t oh = 0; oh < OH; ++oh)
        for (std::size_t ow = 0; ow < OW; ++ow) {
          const core::pool_window wh = core::pool_window_of(oh, kh, sh, ph, H), ww = core::pool_window_of(ow, kw, sw, pw, W);
          T best;
          std::size_t bi;
          core::pool_window_max<T>(wh, ww, W, [&](std::size_t i) { return x[core::conv_offset(l, C, H, W, n, c, i / W, i % W)]; },
                                   best, bi);
          const std::size_t o = core::conv_offset(l, C, OH, OW, n, c, oh, ow);
          y[o] = best != best ? core::detail::gemm_canonical_nan(best) : best;
          if (idx) idx[o] = static_cast<std::int64_t>(bi);
        }
}

/// max_pool2d backward: dx[i] = +0 + the dy of every output whose index is i, in increasing
/// output index.
template <class T>
void max_pool2d_backward(std::size_t N, std::size_t C, std::size_t H, std::size_t W, std::size_t OH, std::size_t OW,
                         layout l, const T* dy, const std::int64_t* idx, T* dx) {
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t c = 0; c < C; ++c)
      for (std::size_t ih = 0; ih < H; ++ih)
        for (std::size_t iw = 0; iw < W; ++iw) {
          T s = T(0);
          for (std::size_t oh = 0; oh < OH; ++oh)
            for (std::size_t ow = 0; ow < OW; ++ow) {
              const std::size_t o = core::conv_offset(l, C, OH, OW, n, c, oh, ow);
              if (idx[o] == static_cast<std::int64_t>(ih * W + iw)) s = s + dy[o];
            }
          dx[core::conv_offset(l, C, H, W, n, c, ih, iw)] = s != s ? core::detail::gemm_canonical_nan(s) : s;
        }
}

/// Average pooling window sum and divisor: s = +0 + x over the window's input taps in window
/// order; divisor = the count_include_pad extent or the number of input taps (the windows and
/// divisors are core::pool_geometry's).
template <class T>
void avg_pool2d_forward(std::size_t N, std::size_t C, std::size_t H, std::size_t W, std::size_t OH, std::size_t OW,
                        std::size_t kh, std::size_t kw, std::size_t sh, std::size_t sw, std::size_t ph, std::size_t pw,
                        bool include_pad, bool adaptive, layout l, const T* x, T* y) {
  const core::pool_geometry g{N, C, H, W, OH, OW, kh, kw, sh, sw, ph, pw, include_pad, adaptive, l};
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t c = 0; c < C; ++c)
      for (std::size_t oh = 0; oh < OH; ++oh)
        for (std::size_t ow = 0; ow < OW; ++ow) {
          const core::pool_window wh = g.wh(oh), ww = g.ww(ow);
          const T s = core::pool_window_sum<T>(
              wh, ww, W, [&](std::size_t i) { return x[core::conv_offset(l, C, H, W, n, c, i / W, i % W)]; });
          const T v = s / static_cast<T>(g.divisor(wh, ww));
          y[core::conv_offset(l, C, OH, OW, n, c, oh, ow)] = v != v ? core::detail::gemm_canonical_nan(v) : v;
        }
}

/// Average pooling backward: dx[i] = +0 + (dy[o] / divisor(o)) over the windows o covering i,
/// in increasing output index.
template <class T>
void avg_pool2d_backward(std::size_t N, std::size_t C, std::size_t H, std::size_t W, std::size_t OH, std::size_t OW,
                         std::size_t kh, std::size_t kw, std::size_t sh, std::size_t sw, std::size_t ph, std::size_t pw,
                         bool include_pad, bool adaptive, layout l, const T* dy, T* dx) {
  const core::pool_geometry g{N, C, H, W, OH, OW, kh, kw, sh, sw, ph, pw, include_pad, adaptive, l};
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t c = 0; c < C; ++c)
      for (std::size_t ih = 0; ih < H; ++ih)
        for (std::size_t iw = 0; iw < W; ++iw) {
          T s = T(0);
          for (std::size_t oh = 0; oh < OH; ++oh)
            for (std::size_t ow = 0; ow < OW; ++ow) {
              const core::pool_window wh = g.wh(oh), ww = g.ww(ow);
              if (ih < wh.begin || ih >= wh.end || iw < ww.begin || iw >= ww.end) continue;
              s = s + dy[core::conv_offset(l, C, OH, OW, n, c, oh, ow)] / static_cast<T>(g.divisor(wh, ww));
            }
          dx[core::conv_offset(l, C, H, W, n, c, ih, iw)] = s != s ? core::detail::gemm_canonical_nan(s) : s;
        }
}

}  // namespace reference
}  // namespace bitexact
