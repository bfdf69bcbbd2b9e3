// bitexact/reference/minmax.hpp - the executable specification of min, max, argmin, argmax.
//
// Order: the IEEE order of the values, except that -0.0 is less than +0.0 (so min(-0, +0) is
// -0.0 and max is +0.0: a totalOrder on signed zeros). Ties (equal values, hence equal bits)
// go to the lowest index. NaN: min and max return the canonical quiet NaN (0x7fc00000,
// 0x7ff8000000000000, bf16 0x7fc0) when any input is NaN; argmin and argmax return the index
// of the first NaN. n == 0 has no answer (the public API throws; these require n >= 1).
// Plain loops over the values in index order: every fast path must return the same bits.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../core/bfloat16.hpp"

namespace bitexact {
namespace reference {
namespace minmax_detail {

template <class T>
inline bool is_nan(T x) {
  return x != x;
}
inline bool is_nan(bfloat16 x) { return (x.bits & 0x7fffu) > 0x7f80u; }

template <class T>
inline bool sign_bit(T x) {
  return x < T(0) || (x == T(0) && T(1) / x < T(0));
}

inline float as_float(bfloat16 x) { return x.to_float(); }
inline float as_float(float x) { return x; }
inline double as_float(double x) { return x; }

/// a < b in the order above (neither a NaN).
template <class T>
inline bool less(T a, T b) {
  const auto x = as_float(a), y = as_float(b);
  if (x < y) return true;
  return x == y && x == 0 && sign_bit(x) && !sign_bit(y);
}

template <class T>
inline T canonical_nan();
template <>
inline float canonical_nan<float>() {
  const std::uint32_t b = 0x7fc00000u;
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}
template <>
inline double canonical_nan<double>() {
  const std::uint64_t b = 0x7ff8000000000000ull;
  double f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}
template <>
inline bfloat16 canonical_nan<bfloat16>() {
  return bfloat16::from_bits(0x7fc0u);
}

/// Index of the first NaN, else of the first least (IsMax: greatest) value. n >= 1.
template <class T, bool IsMax>
std::size_t arg_best(const T* x, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    if (is_nan(x[i])) return i;
  std::size_t best = 0;
  for (std::size_t i = 1; i < n; ++i)
    if (IsMax ? less(x[best], x[i]) : less(x[i], x[best])) best = i;
  return best;
}

}  // namespace minmax_detail

template <class T>
std::size_t argmin(const T* x, std::size_t n) {
  return minmax_detail::arg_best<T, false>(x, n);
}
template <class T>
std::size_t argmax(const T* x, std::size_t n) {
  return minmax_detail::arg_best<T, true>(x, n);
}
template <class T>
T min(const T* x, std::size_t n) {
  const std::size_t i = reference::argmin(x, n);
  return minmax_detail::is_nan(x[i]) ? minmax_detail::canonical_nan<T>() : x[i];
}
template <class T>
T max(const T* x, std::size_t n) {
  const std::size_t i = reference::argmax(x, n);
  return minmax_detail::is_nan(x[i]) ? minmax_detail::canonical_nan<T>() : x[i];
}

}  // namespace reference
}  // namespace bitexact
