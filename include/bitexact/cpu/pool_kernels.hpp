// bitexact/cpu/pool_kernels.hpp - 2-D pooling on the CPU: threads over (image, channel) planes.
//
// Each plane is computed by one thread, so the order inside it is the documented one whatever
// the thread count: forward windows in window order; backward as a scatter over the outputs in
// increasing output index into a +0-initialised dx plane, which gives every dx element its
// contributions in increasing output index - the reference's gather order. Never atomics.
#pragma once
#include <cstddef>
#include <cstdint>

#include "../core/conv.hpp"
#include "../core/gemm_order.hpp"
#include "../core/pool.hpp"
#include "threads.hpp"

namespace bitexact {
namespace cpu {
namespace detail {

using pool_geometry = core::pool_geometry;

template <class T>
inline T pool_canon(T v) {
  return v != v ? core::detail::gemm_canonical_nan(v) : v;
}

template <class Body>
void for_each_plane(const pool_geometry& g, int threads, Body body) {
  parallel_chunks(threads, canonical_chunks{g.N * g.C, 1}, [&](std::uint64_t q, std::uint64_t) {
    body(static_cast<std::size_t>(q) / g.C, static_cast<std::size_t>(q) % g.C);
  });
}

template <class T>
void max_pool_forward_kernel(const pool_geometry& g, const T* x, T* y, std::int64_t* idx, int threads) {
  for_each_plane(g, threads, [&](std::size_t n, std::size_t c) {
    const T* xp = x + core::conv_offset(g.l, g.C, g.H, g.W, n, c, 0, 0);
    const std::size_t s = g.xs();
    for (std::size_t oh = 0; oh < g.OH; ++oh) {
      const core::pool_window wh = g.wh(oh);
      for (std::size_t ow = 0; ow < g.OW; ++ow) {
        const core::pool_window ww = g.ww(ow);
        T best = xp[(wh.begin * g.W + ww.begin) * s];
        std::size_t bi = wh.begin * g.W + ww.begin;
        for (std::size_t ih = wh.begin; ih < wh.end && best == best; ++ih)
          for (std::size_t iw = ww.begin; iw < ww.end; ++iw) {
            const T v = xp[(ih * g.W + iw) * s];
            if (v != v || v > best) {
              best = v;
              bi = ih * g.W + iw;
              if (v != v) break;
            }
          }
        const std::size_t o = core::conv_offset(g.l, g.C, g.OH, g.OW, n, c, oh, ow);
        y[o] = pool_canon(best);
        if (idx) idx[o] = static_cast<std::int64_t>(bi);
      }
    }
  });
}

template <class T>
void max_pool_backward_kernel(const pool_geometry& g, const T* dy, const std::int64_t* idx, T* dx, int threads) {
  for_each_plane(g, threads, [&](std::size_t n, std::size_t c) {
    T* dp = dx + core::conv_offset(g.l, g.C, g.H, g.W, n, c, 0, 0);
    const std::size_t s = g.xs();
    for (std::size_t i = 0; i < g.H * g.W; ++i) dp[i * s] = T(0);
    for (std::size_t oh = 0; oh < g.OH; ++oh)
      for (std::size_t ow = 0; ow < g.OW; ++ow) {
        const std::size_t o = core::conv_offset(g.l, g.C, g.OH, g.OW, n, c, oh, ow);
        T& d = dp[static_cast<std::size_t>(idx[o]) * s];
        d = d + dy[o];
      }
    for (std::size_t i = 0; i < g.H * g.W; ++i) dp[i * s] = pool_canon(dp[i * s]);
  });
}

template <class T>
void avg_pool_forward_kernel(const pool_geometry& g, const T* x, T* y, int threads) {
  for_each_plane(g, threads, [&](std::size_t n, std::size_t c) {
    const T* xp = x + core::conv_offset(g.l, g.C, g.H, g.W, n, c, 0, 0);
    const std::size_t s = g.xs();
    for (std::size_t oh = 0; oh < g.OH; ++oh) {
      const core::pool_window wh = g.wh(oh);
      for (std::size_t ow = 0; ow < g.OW; ++ow) {
        const core::pool_window ww = g.ww(ow);
        T sum = T(0);
        for (std::size_t ih = wh.begin; ih < wh.end; ++ih)
          for (std::size_t iw = ww.begin; iw < ww.end; ++iw) sum = sum + xp[(ih * g.W + iw) * s];
        y[core::conv_offset(g.l, g.C, g.OH, g.OW, n, c, oh, ow)] = pool_canon(sum / static_cast<T>(g.divisor(wh, ww)));
      }
    }
  });
}

template <class T>
void avg_pool_backward_kernel(const pool_geometry& g, const T* dy, T* dx, int threads) {
  for_each_plane(g, threads, [&](std::size_t n, std::size_t c) {
    T* dp = dx + core::conv_offset(g.l, g.C, g.H, g.W, n, c, 0, 0);
    const std::size_t s = g.xs();
    for (std::size_t i = 0; i < g.H * g.W; ++i) dp[i * s] = T(0);
    for (std::size_t oh = 0; oh < g.OH; ++oh) {
      const core::pool_window wh = g.wh(oh);
      for (std::size_t ow = 0; ow < g.OW; ++ow) {
        const core::pool_window ww = g.ww(ow);
        const T q = dy[core::conv_offset(g.l, g.C, g.OH, g.OW, n, c, oh, ow)] / static_cast<T>(g.divisor(wh, ww));
        for (std::size_t ih = wh.begin; ih < wh.end; ++ih)
          for (std::size_t iw = ww.begin; iw < ww.end; ++iw) {
            T& d = dp[(ih * g.W + iw) * s];
            d = d + q;
          }
      }
    }
    for (std::size_t i = 0; i < g.H * g.W; ++i) dp[i * s] = pool_canon(dp[i * s]);
  });
}

}  // namespace detail
}  // namespace cpu
}  // namespace bitexact
