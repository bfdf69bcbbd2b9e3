// bitexact/core/threefry.hpp - Threefry2x32-20, Threefry4x32-20 and Threefry4x64-20.
//
// Bit-identical to Random123's threefry2x32, threefry4x32 and threefry4x64 with 20 rounds
// (key injection every 4 rounds, Skein rotation constants and key-schedule parity). The
// rounds are written once over a lane type (core/lanes.hpp) for scalar, SIMD and CUDA code.
#pragma once
#include <array>
#include <cstdint>

#include "config.hpp"
#include "lanes.hpp"

namespace bitexact {
namespace core {
namespace detail {

template <class W>
struct threefry_parity;
template <>
struct threefry_parity<std::uint32_t> {
  static constexpr std::uint32_t value = 0x1BD11BDAu;
};
template <>
struct threefry_parity<std::uint64_t> {
  static constexpr std::uint64_t value = 0x1BD11BDAA9FC1A22ull;
};

// Rotation constants, indexed by round % 8. Functions rather than static constexpr member
// arrays: a member array indexed at run time is a host variable that CUDA device code cannot
// read, while a local constexpr array inside a BITEXACT_HD function works on both sides.
struct threefry2x32_rot {
  BITEXACT_HD static constexpr int r(int i) {
    constexpr int t[8] = {13, 15, 26, 6, 17, 29, 16, 24};
    return t[i & 7];
  }
};
struct threefry4x32_rot {
  BITEXACT_HD static constexpr int r0(int i) {
    constexpr int t[8] = {10, 11, 13, 23, 6, 17, 25, 18};
    return t[i & 7];
  }
  BITEXACT_HD static constexpr int r1(int i) {
    constexpr int t[8] = {26, 21, 27, 5, 20, 11, 10, 20};
    return t[i & 7];
  }
};
struct threefry4x64_rot {
  BITEXACT_HD static constexpr int r0(int i) {
    constexpr int t[8] = {14, 52, 23, 5, 25, 46, 58, 32};
    return t[i & 7];
  }
  BITEXACT_HD static constexpr int r1(int i) {
    constexpr int t[8] = {16, 57, 40, 37, 33, 12, 22, 32};
    return t[i & 7];
  }
};

template <class W, class V>
BITEXACT_HD constexpr V rotl_var(V x, int r) {
  return (x << r) | (x >> (static_cast<int>(8 * sizeof(W)) - r));
}

}  // namespace detail

/// Threefry2xW, R rounds, on two lanes of type V with key (k0, k1).
template <class W, int R, class V>
BITEXACT_HD constexpr void threefry2_rounds(V& x0, V& x1, W k0, W k1) {
  const W ks[3] = {k0, k1, static_cast<W>(detail::threefry_parity<W>::value ^ k0 ^ k1)};
  x0 = x0 + V(ks[0]);
  x1 = x1 + V(ks[1]);
  for (int r = 0; r < R; ++r) {
    x0 = x0 + x1;
    x1 = detail::rotl_var<W>(x1, detail::threefry2x32_rot::r(r % 8));
    x1 = x1 ^ x0;
    if ((r & 3) == 3) {
      const int i = (r + 1) / 4;
      x0 = x0 + V(ks[i % 3]);
      x1 = x1 + V(static_cast<W>(ks[(i + 1) % 3] + static_cast<W>(i)));
    }
  }
}

/// Threefry4xW, R rounds, on four lanes of type V with key k[4].
template <class W, int R, class Rot, class V>
BITEXACT_HD constexpr void threefry4_rounds(V& x0, V& x1, V& x2, V& x3, const W (&k)[4]) {
  const W ks[5] = {k[0], k[1], k[2], k[3],
                   static_cast<W>(detail::threefry_parity<W>::value ^ k[0] ^ k[1] ^ k[2] ^ k[3])};
  x0 = x0 + V(ks[0]);
  x1 = x1 + V(ks[1]);
  x2 = x2 + V(ks[2]);
  x3 = x3 + V(ks[3]);
  for (int r = 0; r < R; ++r) {
    const int a = Rot::r0(r % 8), b = Rot::r1(r % 8);
    if ((r & 1) == 0) {
      x0 = x0 + x1;
      x1 = detail::rotl_var<W>(x1, a) ^ x0;
      x2 = x2 + x3;
      x3 = detail::rotl_var<W>(x3, b) ^ x2;
    } else {
      x0 = x0 + x3;
      x3 = detail::rotl_var<W>(x3, a) ^ x0;
      x2 = x2 + x1;
      x1 = detail::rotl_var<W>(x1, b) ^ x2;
    }
    if ((r & 3) == 3) {
      const int i = (r + 1) / 4;
      x0 = x0 + V(ks[i % 5]);
      x1 = x1 + V(ks[(i + 1) % 5]);
      x2 = x2 + V(ks[(i + 2) % 5]);
      x3 = x3 + V(static_cast<W>(ks[(i + 3) % 5] + static_cast<W>(i)));
    }
  }
}

}  // namespace core

/// Threefry2x32-20: 2 x 32-bit counter, 2 x 32-bit key.
struct threefry2x32_20 {
  using word_type = std::uint32_t;
  using ctr_type = std::array<std::uint32_t, 2>;
  using key_type = std::array<std::uint32_t, 2>;
  static constexpr int rounds = 20;
  BITEXACT_HD constexpr ctr_type operator()(ctr_type c, key_type k) const {
    std::uint32_t x0 = c[0], x1 = c[1];
    core::threefry2_rounds<std::uint32_t, rounds>(x0, x1, k[0], k[1]);
    return ctr_type{x0, x1};
  }
};

/// Threefry4x32-20: 4 x 32-bit counter, 4 x 32-bit key.
struct threefry4x32_20 {
  using word_type = std::uint32_t;
  using ctr_type = std::array<std::uint32_t, 4>;
  using key_type = std::array<std::uint32_t, 4>;
  static constexpr int rounds = 20;
  BITEXACT_HD constexpr ctr_type operator()(ctr_type c, key_type k) const {
    std::uint32_t x0 = c[0], x1 = c[1], x2 = c[2], x3 = c[3];
    const std::uint32_t kk[4] = {k[0], k[1], k[2], k[3]};
    core::threefry4_rounds<std::uint32_t, rounds, core::detail::threefry4x32_rot>(x0, x1, x2, x3,
                                                                                   kk);
    return ctr_type{x0, x1, x2, x3};
  }
};

/// Threefry4x64-20: 4 x 64-bit counter, 4 x 64-bit key.
struct threefry4x64_20 {
  using word_type = std::uint64_t;
  using ctr_type = std::array<std::uint64_t, 4>;
  using key_type = std::array<std::uint64_t, 4>;
  static constexpr int rounds = 20;
  BITEXACT_HD constexpr ctr_type operator()(ctr_type c, key_type k) const {
    std::uint64_t x0 = c[0], x1 = c[1], x2 = c[2], x3 = c[3];
    const std::uint64_t kk[4] = {k[0], k[1], k[2], k[3]};
    core::threefry4_rounds<std::uint64_t, rounds, core::detail::threefry4x64_rot>(x0, x1, x2, x3,
                                                                                   kk);
    return ctr_type{x0, x1, x2, x3};
  }
};

}  // namespace bitexact
