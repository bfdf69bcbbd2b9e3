// bitexact/cpu/pool_kernels.hpp - 2-D pooling on the CPU: threads over (image, channel) planes.
//
// Each plane is computed by one thread, so the order inside it is the documented one whatever
// the thread count: forward windows in window order; backward as a scatter over the outputs in
// increasing output index into a +0-initialised dx plane, which gives every dx element its
// contributions in increasing output index - the reference's gather order. Never atomics.
// Backward canonicalizes each add's result, not dx in a pass afterwards: an element without a
// contribution stays +0 and every NaN sum becomes the canonical NaN either way, so the bits are
// the same with one pass over dx fewer.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "../core/conv.hpp"
#include "../core/gemm_order.hpp"
#include "../core/pool.hpp"
#include "dispatch.hpp"
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
void max_pool_forward_rows(const pool_geometry& g, const T* x, T* y, std::int64_t* idx, int threads) {
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

// max_pool2d forward across output lanes (small planes: the taps' offsets fit one map).
// Outputs q = plane * P + p (p = oh * OW + ow) run L at a time, planes following each other
// in a lane block; per lane the window's taps are visited in window order (tap t = kernel row
// * kw + kernel column) with the documented rule, branch-free:
//   best = -inf, bt = the first in-input tap (the window is never empty); then for each tap t
//   with value v (a tap in the padding reads -inf):
//     take = best is not NaN and !(v <= best)   [v > best, or v NaN]
//     best = take ? v : best, bt = take ? t : bt.
// This is the scalar chain exactly: a first in-input tap equal to -inf keeps best = -inf with
// bt = that tap (the chain's first value); a padding tap (-inf) is never taken (-inf <= any
// non-NaN best; a NaN best takes nothing); ties (-0 vs +0 included) keep the earlier tap; the
// first NaN is taken and then stays. So every ISA and lane count gives the scalar bits.
inline constexpr std::size_t max_pool_lane_map_limit = std::size_t(1) << 16;  // taps x positions

template <class T>
struct max_pool_map {
  std::vector<std::ptrdiff_t> off;  // off[t * P + p]: ih * W + iw of tap t of output p, or -1
  std::vector<T> first;             // first[p]: the first in-input tap of output p (as T)
};

inline bool max_pool_use_lanes(const pool_geometry& g) {
  const std::size_t KK = g.kh * g.kw, P = g.OH * g.OW;
  return !g.adaptive && KK * P <= max_pool_lane_map_limit && KK < (std::size_t(1) << 24);
}

template <class T>
void max_pool_build_map(const pool_geometry& g, max_pool_map<T>& m) {
  const std::size_t KK = g.kh * g.kw, P = g.OH * g.OW;
  m.off.assign(KK * P, -1);
  m.first.assign(P, T(0));
  for (std::size_t oh = 0; oh < g.OH; ++oh) {
    const core::pool_window wh = g.wh(oh);
    for (std::size_t ow = 0; ow < g.OW; ++ow) {
      const core::pool_window ww = g.ww(ow);
      const std::size_t p = oh * g.OW + ow;
      // window start (may be negative): tap (kr, kc) reads (h0 + kr, w0 + kc)
      const long long h0 = static_cast<long long>(oh * g.sh) - static_cast<long long>(g.ph);
      const long long w0 = static_cast<long long>(ow * g.sw) - static_cast<long long>(g.pw);
      bool have = false;
      for (std::size_t kr = 0; kr < g.kh; ++kr)
        for (std::size_t kc = 0; kc < g.kw; ++kc) {
          const long long ih = h0 + static_cast<long long>(kr), iw = w0 + static_cast<long long>(kc);
          if (ih < static_cast<long long>(wh.begin) || ih >= static_cast<long long>(wh.end) ||
              iw < static_cast<long long>(ww.begin) || iw >= static_cast<long long>(ww.end))
            continue;
          const std::size_t t = kr * g.kw + kc;
          m.off[t * P + p] = static_cast<std::ptrdiff_t>(ih * static_cast<long long>(g.W) + iw);
          if (!have) m.first[p] = static_cast<T>(t);
          have = true;
        }
    }
  }
}

template <class Arch, class T>
struct max_pool_batch {  // an xsimd batch per ISA
  using type = xsimd::batch<T, Arch>;
  static constexpr std::size_t lanes = type::size;
};
template <class T>
struct max_pool_batch<scalar_arch, T> {  // isa::scalar: eight lanes in plain code
  using type = T;
  static constexpr std::size_t lanes = 8;
};

template <class Arch, class T>
void max_pool_forward_lanes(const pool_geometry& g, const T* x, T* y, std::int64_t* idx, int threads) {
  constexpr bool simd = !std::is_same<Arch, scalar_arch>::value;
  using B = typename max_pool_batch<Arch, T>::type;
  constexpr std::size_t L = max_pool_batch<Arch, T>::lanes;
  const std::size_t KK = g.kh * g.kw, P = g.OH * g.OW, HW = g.H * g.W, planes = g.N * g.C;
  const bool nchw = g.l == layout::nchw;
  const std::size_t s = g.xs();
  max_pool_map<T> m;
  max_pool_build_map(g, m);
  const std::ptrdiff_t* off = m.off.data();
  const T ninf = -std::numeric_limits<T>::infinity();
  const std::uint64_t total = static_cast<std::uint64_t>(planes) * P;
  const std::uint64_t grain = (min_work_per_thread(4096) + L - 1) / L * L;  // whole lane blocks
  parallel_chunks(threads, canonical_chunks{total, grain}, [&](std::uint64_t q0, std::uint64_t q1) {
    // (n, c, p) of output q, advanced lane by lane (no division per output)
    const std::size_t plane0 = static_cast<std::size_t>(q0 / P);
    std::size_t n = plane0 / g.C, c = plane0 % g.C, p = static_cast<std::size_t>(q0 % P);
    alignas(64) T vals[L], bts[L];
    std::size_t xb[L], yo[L], pp[L];
    for (std::uint64_t qb = q0; qb < q1; qb += L) {
      const std::size_t lanes = static_cast<std::size_t>(std::min<std::uint64_t>(L, q1 - qb));
      for (std::size_t j = 0; j < L; ++j) {
        if (j < lanes) {
          const std::size_t plane = n * g.C + c;
          xb[j] = nchw ? plane * HW : n * HW * g.C + c;
          yo[j] = nchw ? plane * P + p : (n * P + p) * g.C + c;
          pp[j] = p;
          if (++p == P) {
            p = 0;
            if (++c == g.C) { c = 0; ++n; }
          }
        } else {  // a lane past the block's end repeats lane 0 (computed, never stored)
          xb[j] = xb[0];
          yo[j] = yo[0];
          pp[j] = pp[0];
        }
        bts[j] = m.first[pp[j]];
      }
      auto gather = [&](std::size_t t) {
        const std::ptrdiff_t* ot = off + t * P;
        for (std::size_t j = 0; j < L; ++j) {
          const std::ptrdiff_t o = ot[pp[j]];
          const T v = x[xb[j] + static_cast<std::size_t>(o < 0 ? 0 : o) * s];
          vals[j] = o < 0 ? ninf : v;
        }
      };
      if constexpr (simd) {
        B best(ninf), bt = B::load_aligned(bts);
        for (std::size_t t = 0; t < KK; ++t) {
          gather(t);
          const B v = B::load_aligned(vals);
          const auto take = (best == best) & ~(v <= best);
          best = xsimd::select(take, v, best);
          bt = xsimd::select(take, B(static_cast<T>(t)), bt);
        }
        best.store_aligned(vals);
        bt.store_aligned(bts);
      } else {
        T best[L];
        for (std::size_t j = 0; j < L; ++j) best[j] = ninf;
        for (std::size_t t = 0; t < KK; ++t) {
          gather(t);
          for (std::size_t j = 0; j < L; ++j) {
            const bool take = core::pool_max_takes(best[j], vals[j]);
            best[j] = take ? vals[j] : best[j];
            bts[j] = take ? static_cast<T>(t) : bts[j];
          }
        }
        for (std::size_t j = 0; j < L; ++j) vals[j] = best[j];
      }
      for (std::size_t j = 0; j < lanes; ++j) {
        y[yo[j]] = pool_canon(vals[j]);
        if (idx) idx[yo[j]] = static_cast<std::int64_t>(off[static_cast<std::size_t>(bts[j]) * P + pp[j]]);
      }
    }
  });
}

/// The commonest pooling of CNNs: 2 x 2 windows at stride 2 without padding, NCHW, every window
/// inside the input (floor mode, or even sizes). One output = the four taps in window order,
/// (0,0) (0,1) (1,0) (1,1), the first as the start (it is always in the input), each next one
/// through core::pool_max_takes: core::pool_window_max's chain, unrolled.
inline bool max_pool_is_2x2_stride_2(const pool_geometry& g) {
  return !g.adaptive && g.l == layout::nchw && g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 && g.ph == 0 &&
         g.pw == 0 && 2 * g.OH <= g.H && 2 * g.OW <= g.W;
}

template <class T>
void max_pool_forward_2x2(const pool_geometry& g, const T* x, T* y, std::int64_t* idx, int threads) {
  const std::size_t P = g.OH * g.OW, HW = g.H * g.W, W = g.W, OW = g.OW;
  const std::uint64_t per = std::max<std::uint64_t>(1, min_work_per_thread(4096) / (P ? P : 1));  // planes
  parallel_chunks(threads, canonical_chunks{static_cast<std::uint64_t>(g.N) * g.C, per},
                  [&](std::uint64_t q0, std::uint64_t q1) {
    for (std::uint64_t q = q0; q < q1; ++q)
      for (std::size_t oh = 0; oh < g.OH; ++oh) {
        const T* r0 = x + static_cast<std::size_t>(q) * HW + 2 * oh * W;
        const T* r1 = r0 + W;
        T* yo = y + static_cast<std::size_t>(q) * P + oh * OW;
        std::int64_t* io = idx ? idx + static_cast<std::size_t>(q) * P + oh * OW : nullptr;
        const std::int64_t base = static_cast<std::int64_t>(2 * oh * W);
        for (std::size_t ow = 0; ow < OW; ++ow) {
          T best = r0[2 * ow];
          std::int64_t t = 0;
          const T v1 = r0[2 * ow + 1], v2 = r1[2 * ow], v3 = r1[2 * ow + 1];
          bool take = core::pool_max_takes(best, v1);
          best = take ? v1 : best, t = take ? 1 : t;
          take = core::pool_max_takes(best, v2);
          best = take ? v2 : best, t = take ? static_cast<std::int64_t>(W) : t;
          take = core::pool_max_takes(best, v3);
          best = take ? v3 : best, t = take ? static_cast<std::int64_t>(W) + 1 : t;
          yo[ow] = pool_canon(best);
          if (io) io[ow] = base + static_cast<std::int64_t>(2 * ow) + t;
        }
      }
  });
}

/// max_pool2d forward: 2 x 2 windows at stride 2 (max_pool_forward_2x2); across output lanes for
/// other small planes (max_pool_forward_lanes), else window by window along output rows. All
/// give the bits of pool.hpp's order.
template <class T>
void max_pool_forward_kernel(const pool_geometry& g, const T* x, T* y, std::int64_t* idx, int threads, isa simd) {
  if (g.N * g.C * g.OH * g.OW != 0 && max_pool_is_2x2_stride_2(g)) return max_pool_forward_2x2(g, x, y, idx, threads);
  if (!max_pool_use_lanes(g) || g.N * g.C * g.OH * g.OW == 0) return max_pool_forward_rows(g, x, y, idx, threads);
  with_arch(simd, [&](auto arch) { max_pool_forward_lanes<decltype(arch), T>(g, x, y, idx, threads); });
}

template <class T>
void max_pool_backward_kernel(const pool_geometry& g, const T* dy, const std::int64_t* idx, T* dx, int threads) {
  for_each_plane(g, threads, [&](std::size_t n, std::size_t c) {
    T* dp = dx + core::conv_offset(g.l, g.C, g.H, g.W, n, c, 0, 0);
    const std::size_t s = g.xs(), HW = g.H * g.W;
    if (s == 1) {  // NCHW: contiguous plane and outputs (loops the compiler vectorises)
      std::fill(dp, dp + HW, T(0));
      const std::size_t o0 = core::conv_offset(g.l, g.C, g.OH, g.OW, n, c, 0, 0), P = g.OH * g.OW;
      for (std::size_t o = o0; o < o0 + P; ++o) {
        T& d = dp[static_cast<std::size_t>(idx[o])];
        d = pool_canon(d + dy[o]);
      }
      return;
    }
    for (std::size_t i = 0; i < HW; ++i) dp[i * s] = T(0);
    for (std::size_t oh = 0; oh < g.OH; ++oh)
      for (std::size_t ow = 0; ow < g.OW; ++ow) {
        const std::size_t o = core::conv_offset(g.l, g.C, g.OH, g.OW, n, c, oh, ow);
        T& d = dp[static_cast<std::size_t>(idx[o]) * s];
        d = pool_canon(d + dy[o]);
      }
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
