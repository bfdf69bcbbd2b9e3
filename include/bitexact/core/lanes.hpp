// bitexact/core/lanes.hpp - the lane abstraction the generators are written against.
//
// Every generator round in core/ is a template over a "lane" type V: a plain std::uint32_t or
// std::uint64_t for scalar, reference and CUDA code, or a SIMD batch for the CPU kernels. The
// only operations a lane needs beyond + ^ << >> | are listed in lane_ops<V>; cpu/ specialises
// it for xsimd batches. So the reference, the SIMD kernels and the CUDA kernels execute the
// very same round function.
#pragma once
#include <cstdint>

#include "config.hpp"

namespace bitexact {
namespace core {

template <class V, class Enable = void>
struct lane_ops;  // customisation point: see the scalar specialisations below

/// Scalar 32-bit lanes.
template <>
struct lane_ops<std::uint32_t> {
  using word_type = std::uint32_t;
  /// Full 32x32 -> 64 product of a constant and x: returns the low word, writes the high word.
  BITEXACT_HD static constexpr std::uint32_t mulhilo(std::uint32_t m, std::uint32_t x,
                                                     std::uint32_t& hi) {
    const std::uint64_t p = static_cast<std::uint64_t>(m) * x;
    hi = static_cast<std::uint32_t>(p >> 32);
    return static_cast<std::uint32_t>(p);
  }
};

/// Scalar 64-bit lanes.
template <>
struct lane_ops<std::uint64_t> {
  using word_type = std::uint64_t;
  BITEXACT_HD static constexpr std::uint64_t mulhilo(std::uint64_t m, std::uint64_t x,
                                                     std::uint64_t& hi) {
#if defined(__SIZEOF_INT128__) && !defined(__CUDA_ARCH__)
    const unsigned __int128 p = static_cast<unsigned __int128>(m) * x;
    hi = static_cast<std::uint64_t>(p >> 64);
    return static_cast<std::uint64_t>(p);
#else
    // Schoolbook product from four 32x32 -> 64 partial products.
    const std::uint64_t ml = m & 0xffffffffu, mh = m >> 32;
    const std::uint64_t xl = x & 0xffffffffu, xh = x >> 32;
    const std::uint64_t ll = ml * xl, lh = ml * xh, hl = mh * xl, hh = mh * xh;
    const std::uint64_t mid = (ll >> 32) + (lh & 0xffffffffu) + (hl & 0xffffffffu);
    hi = hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
    return (mid << 32) | (ll & 0xffffffffu);
#endif
  }
};

/// Rotate left by a compile-time amount, for W-bit words held in lane type V.
template <class W, int R, class V>
BITEXACT_HD constexpr V rotl(V x) {
  static_assert(R > 0 && R < static_cast<int>(8 * sizeof(W)), "rotation out of range");
  return (x << R) | (x >> (static_cast<int>(8 * sizeof(W)) - R));
}

}  // namespace core
}  // namespace bitexact
