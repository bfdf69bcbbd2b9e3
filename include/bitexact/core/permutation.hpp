// bitexact/core/permutation.hpp - a random-access pseudorandom permutation of [0, n).
//
// Canonical definition (random_order_version 1): let b = number of bits of n - 1 and
// h = ceil(b / 2) (h = 0 for n = 1). On the domain [0, 4^h) a balanced Feistel network with
// 6 rounds maps x = (L << h) | R to (R << h) | (L ^ F_r(R)) in round r = 0..5, with
//   F_r(R) = philox4x32_10({lo32(R), hi32(R), r, 0x7065726D}, key)[0] & (2^h - 1).
// The permutation applies the network repeatedly to i until the result is < n (cycle
// walking), which makes it a bijection of [0, n) for any n (expected <= 4 applications).
// O(1) memory; perm(i) and inverse(j) each cost a few Philox calls.
#pragma once
#include <cstdint>

#include "config.hpp"
#include "philox.hpp"

namespace bitexact {
namespace core {

class feistel_permutation {
 public:
  using key_type = philox4x32_10::key_type;

  BITEXACT_HD constexpr feistel_permutation(std::uint64_t n, key_type key) : n_(n), key_(key) {
    int b = 0;
    for (std::uint64_t m = n > 0 ? n - 1 : 0; m != 0; m >>= 1) ++b;
    half_bits_ = (b + 1) / 2;
    mask_ = half_bits_ == 0 ? 0 : (half_bits_ >= 32 ? 0xffffffffull : ((1ull << half_bits_) - 1));
  }

  BITEXACT_HD constexpr std::uint64_t size() const { return n_; }

  /// perm(i) for i < n.
  BITEXACT_HD constexpr std::uint64_t operator()(std::uint64_t i) const {
    if (half_bits_ == 0) return i;
    std::uint64_t x = i;
    do {
      x = forward(x);
    } while (x >= n_);
    return x;
  }

  /// The j with perm(j) == y, for y < n.
  BITEXACT_HD constexpr std::uint64_t inverse(std::uint64_t y) const {
    if (half_bits_ == 0) return y;
    std::uint64_t x = y;
    do {
      x = backward(x);
    } while (x >= n_);
    return x;
  }

  static constexpr int rounds = 6;

 private:
  BITEXACT_HD constexpr std::uint64_t f(int r, std::uint64_t v) const {
    const auto o = philox4x32_10{}({static_cast<std::uint32_t>(v), static_cast<std::uint32_t>(v >> 32),
                                    static_cast<std::uint32_t>(r), 0x7065726Du},
                                   key_);
    return o[0] & mask_;
  }
  BITEXACT_HD constexpr std::uint64_t forward(std::uint64_t x) const {
    std::uint64_t l = x >> half_bits_, r = x & mask_;
    for (int k = 0; k < rounds; ++k) {
      const std::uint64_t nl = r;
      r = l ^ f(k, r);
      l = nl;
    }
    return (l << half_bits_) | r;
  }
  BITEXACT_HD constexpr std::uint64_t backward(std::uint64_t x) const {
    std::uint64_t l = x >> half_bits_, r = x & mask_;
    for (int k = rounds - 1; k >= 0; --k) {
      const std::uint64_t nr = l;
      l = r ^ f(k, l);
      r = nr;
    }
    return (l << half_bits_) | r;
  }

  std::uint64_t n_;
  key_type key_;
  int half_bits_ = 0;
  std::uint64_t mask_ = 0;
};

}  // namespace core
}  // namespace bitexact
