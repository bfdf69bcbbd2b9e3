// bitexact/core/philox.hpp - Philox4x32-10 and Philox4x64-10 (Salmon et al., SC'11).
//
// Stateless bijections ctr -> output for a fixed key, bit-identical to Random123's philox4x32
// and philox4x64 with 10 rounds (checked against its known-answer vectors and the library).
// The round function is written once over a lane type (core/lanes.hpp) and is shared by the
// reference, the SIMD kernels and the CUDA kernels.
#pragma once
#include <array>
#include <cstdint>

#include "config.hpp"
#include "lanes.hpp"

namespace bitexact {
namespace core {
namespace detail {

template <class W>
struct philox_constants;
template <>
struct philox_constants<std::uint32_t> {
  static constexpr std::uint32_t m0 = 0xD2511F53u, m1 = 0xCD9E8D57u;
  static constexpr std::uint32_t w0 = 0x9E3779B9u, w1 = 0xBB67AE85u;
};
template <>
struct philox_constants<std::uint64_t> {
  static constexpr std::uint64_t m0 = 0xD2E7470EE14C6C93ull, m1 = 0xCA5A826395121157ull;
  static constexpr std::uint64_t w0 = 0x9E3779B97F4A7C15ull, w1 = 0xBB67AE8584CAA73Bull;
};

}  // namespace detail

/// Philox4xW with R rounds on four lanes of type V (words of type W), key (k0, k1).
template <class W, int R, class V>
BITEXACT_HD constexpr void philox4_rounds(V& c0, V& c1, V& c2, V& c3, W k0, W k1) {
  using C = detail::philox_constants<W>;
  for (int r = 0; r < R; ++r) {
    if (r != 0) {
      k0 = static_cast<W>(k0 + C::w0);
      k1 = static_cast<W>(k1 + C::w1);
    }
    V hi0{}, hi1{};
    const V lo0 = lane_ops<V>::mulhilo(C::m0, c0, hi0);
    const V lo1 = lane_ops<V>::mulhilo(C::m1, c2, hi1);
    const V n0 = hi1 ^ c1 ^ V(k0);
    const V n2 = hi0 ^ c3 ^ V(k1);
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
  }
}

}  // namespace core

/// Philox4x32-10: 4 x 32-bit counter, 2 x 32-bit key, 10 rounds.
struct philox4x32_10 {
  using word_type = std::uint32_t;
  using ctr_type = std::array<std::uint32_t, 4>;
  using key_type = std::array<std::uint32_t, 2>;
  static constexpr int rounds = 10;
  BITEXACT_HD constexpr ctr_type operator()(ctr_type c, key_type k) const {
    std::uint32_t c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3];
    core::philox4_rounds<std::uint32_t, rounds>(c0, c1, c2, c3, k[0], k[1]);
    return ctr_type{c0, c1, c2, c3};
  }
};

/// Philox4x64-10: 4 x 64-bit counter, 2 x 64-bit key, 10 rounds.
struct philox4x64_10 {
  using word_type = std::uint64_t;
  using ctr_type = std::array<std::uint64_t, 4>;
  using key_type = std::array<std::uint64_t, 2>;
  static constexpr int rounds = 10;
  BITEXACT_HD constexpr ctr_type operator()(ctr_type c, key_type k) const {
    std::uint64_t c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3];
    core::philox4_rounds<std::uint64_t, rounds>(c0, c1, c2, c3, k[0], k[1]);
    return ctr_type{c0, c1, c2, c3};
  }
};

}  // namespace bitexact
