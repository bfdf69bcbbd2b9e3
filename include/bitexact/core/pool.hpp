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

}  // namespace core
}  // namespace bitexact
