// bitexact/core/bfloat16.hpp - a storage-only bfloat16 (the top 16 bits of a binary32).
//
// Reductions read bf16 inputs by widening them exactly to float (bits << 16) and accumulate in
// float. Conversion from float rounds to nearest even (NaN stays a quiet NaN).
#pragma once
#include <cstdint>
#include <cstring>

#include "config.hpp"

namespace bitexact {

struct bfloat16 {
  std::uint16_t bits = 0;

  BITEXACT_HD static bfloat16 from_bits(std::uint16_t b) {
    bfloat16 r;
    r.bits = b;
    return r;
  }
  /// Round to nearest even; NaN becomes a quiet NaN with the same sign.
  BITEXACT_HD static bfloat16 from_float(float f) {
    std::uint32_t u = 0;
    std::memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return from_bits(static_cast<std::uint16_t>((u >> 16) | 0x0040u));
    const std::uint32_t r = u + 0x7fffu + ((u >> 16) & 1u);
    return from_bits(static_cast<std::uint16_t>(r >> 16));
  }
  /// Exact widening.
  BITEXACT_HD float to_float() const {
    const std::uint32_t u = static_cast<std::uint32_t>(bits) << 16;
    float f = 0;
    std::memcpy(&f, &u, sizeof f);
    return f;
  }
};
static_assert(sizeof(bfloat16) == 2, "bfloat16 must be 2 bytes");

namespace core {
/// The accumulation type of an input type: float for float and bfloat16, double for double.
template <class T>
struct accumulation_type {
  using type = T;
};
template <>
struct accumulation_type<bfloat16> {
  using type = float;
};
template <class T>
using accumulation_t = typename accumulation_type<T>::type;

BITEXACT_HD inline float widen(bfloat16 x) { return x.to_float(); }
BITEXACT_HD inline float widen(float x) { return x; }
BITEXACT_HD inline double widen(double x) { return x; }
}  // namespace core
}  // namespace bitexact
