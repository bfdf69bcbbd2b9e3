// bitexact/cpu/minmax_kernels.hpp - CPU kernels of min/max/argmin/argmax, one functor per Arch.
//
// Each value maps to an integer key whose signed order is the order of reference/minmax.hpp:
// for a non-NaN value with bits i (as a signed integer of the value's width),
//   key = i >= 0 ? i : i ^ 0x7f..f
// orders -inf < ... < -0.0 < +0.0 < ... < +inf (a totalOrder on non-NaN values), and a NaN
// gets the key that wins: the lowest key for min/argmin, the highest for max/argmax (no
// non-NaN value has either). The reduction is then a min (or max) of integer keys, which does
// not depend on the order of evaluation, and argmin/argmax is the first index holding the
// winning key. So SIMD lanes, chunk boundaries and thread counts cannot change a result.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "../core/bfloat16.hpp"
#include "dispatch.hpp"  // with_arch, scalar_arch

namespace bitexact {
namespace cpu {
namespace detail {

template <class T>
struct minmax_key;
template <>
struct minmax_key<float> {
  using type = std::int32_t;
  using bits = std::uint32_t;
};
template <>
struct minmax_key<bfloat16> {
  using type = std::int32_t;  // the key of the exactly widened float
  using bits = std::uint32_t;
};
template <>
struct minmax_key<double> {
  using type = std::int64_t;
  using bits = std::uint64_t;
};
template <class T>
using key_t = typename minmax_key<T>::type;

/// The key a NaN gets: wins the min (IsMax = false) or the max.
template <class K, bool IsMax>
constexpr K nan_key() {
  return IsMax ? std::numeric_limits<K>::max() : std::numeric_limits<K>::min();
}

template <class K, class F>
inline K key_of_float(F x) {
  using U = std::make_unsigned_t<K>;
  U u;
  std::memcpy(&u, &x, sizeof u);
  const U flip = (u >> (sizeof(U) * 8 - 1)) ? (std::numeric_limits<U>::max() >> 1) : U(0);
  return static_cast<K>(u ^ flip);
}

template <class T, bool IsMax>
inline key_t<T> key_of(T x) {
  using K = key_t<T>;
  if constexpr (std::is_same<T, bfloat16>::value) {
    const float f = x.to_float();
    return f != f ? nan_key<K, IsMax>() : key_of_float<K>(f);
  } else {
    return x != x ? nan_key<K, IsMax>() : key_of_float<K>(x);
  }
}

/// The value with key k (k not a NaN key). The key map is an involution on the bits.
template <class T>
inline T value_of_key(key_t<T> k) {
  using K = key_t<T>;
  using U = std::make_unsigned_t<K>;
  const U u = static_cast<U>(k) ^ (k < 0 ? (std::numeric_limits<U>::max() >> 1) : U(0));
  if constexpr (std::is_same<T, bfloat16>::value) {
    return bfloat16::from_bits(static_cast<std::uint16_t>(u >> 16));
  } else {
    T x;
    std::memcpy(&x, &u, sizeof x);
    return x;
  }
}

template <bool IsMax, class K>
inline K better(K a, K b) {
  return IsMax ? (b > a ? b : a) : (b < a ? b : a);
}

/// Scalar: the winning key of x[0, n), n >= 1.
template <class T, bool IsMax>
inline key_t<T> best_key_scalar(const T* x, std::size_t n) {
  key_t<T> k = key_of<T, IsMax>(x[0]);
  for (std::size_t i = 1; i < n; ++i) k = better<IsMax>(k, key_of<T, IsMax>(x[i]));
  return k;
}

/// Scalar: the first index in [0, n) whose key is k, or n.
template <class T, bool IsMax>
inline std::size_t find_key_scalar(const T* x, std::size_t n, key_t<T> k) {
  for (std::size_t i = 0; i < n; ++i)
    if (key_of<T, IsMax>(x[i]) == k) return i;
  return n;
}

template <class T, class Arch, bool IsMax, bool Simd = !std::is_same<Arch, scalar_arch>::value>
struct minmax_kernel {
  static key_t<T> best_key(const T* x, std::size_t n) { return best_key_scalar<T, IsMax>(x, n); }
  static std::size_t find(const T* x, std::size_t n, key_t<T> k) {
    return find_key_scalar<T, IsMax>(x, n, k);
  }
};

template <class T, class Arch, bool IsMax>
struct minmax_kernel<T, Arch, IsMax, true> {
  using K = key_t<T>;
  using U = std::make_unsigned_t<K>;
  using F = std::conditional_t<std::is_same<T, bfloat16>::value, float, T>;  // bf16: widened
  using VF = xsimd::batch<F, Arch>;
  using VK = xsimd::batch<K, Arch>;
  using VU = xsimd::batch<U, Arch>;
  static constexpr std::size_t B = VF::size;

  static VK keys(const VF& v) {
    const VU u = xsimd::bitwise_cast<VU>(v);
    const VU sign = u >> (sizeof(U) * 8 - 1);                      // 0 or 1
    const VU flip = (VU(U(0)) - sign) & VU(std::numeric_limits<U>::max() >> 1);
    const VK k = xsimd::bitwise_cast<VK>(u ^ flip);
    // NaN: magnitude bits above those of infinity (a signed compare of non-negative keys).
    const VK mag = xsimd::bitwise_cast<VK>(u & VU(std::numeric_limits<U>::max() >> 1));
    return xsimd::select(mag > VK(inf_bits()), VK(nan_key<K, IsMax>()), k);
  }
  /// B values from p (bf16 widened exactly to float: its key order is the same).
  static VF load(const T* p) {
    if constexpr (std::is_same<T, bfloat16>::value) {
      alignas(64) std::uint32_t w[B];
      for (std::size_t j = 0; j < B; ++j) w[j] = static_cast<std::uint32_t>(p[j].bits) << 16;
      return xsimd::bitwise_cast<VF>(VU::load_aligned(w));
    } else {
      return VF::load_unaligned(p);
    }
  }
  static K inf_bits() {
    const F inf = std::numeric_limits<F>::infinity();
    K b;
    std::memcpy(&b, &inf, sizeof b);
    return b;
  }
  static VK pick(const VK& a, const VK& b) {
    if constexpr (IsMax) return xsimd::select(b > a, b, a);
    else return xsimd::select(b < a, b, a);
  }

  static K best_key(const T* x, std::size_t n) {
    std::size_t i = 0;
    K k = key_of<T, IsMax>(x[0]);
    if (n >= 4 * B) {
      VK a0 = keys(load(x)), a1 = keys(load(x + B));
      VK a2 = keys(load(x + 2 * B)), a3 = keys(load(x + 3 * B));
      for (i = 4 * B; i + 4 * B <= n; i += 4 * B) {
        a0 = pick(a0, keys(load(x + i)));
        a1 = pick(a1, keys(load(x + i + B)));
        a2 = pick(a2, keys(load(x + i + 2 * B)));
        a3 = pick(a3, keys(load(x + i + 3 * B)));
      }
      const VK a = pick(pick(a0, a1), pick(a2, a3));
      alignas(64) K lanes[B];
      a.store_aligned(lanes);
      for (std::size_t l = 0; l < B; ++l) k = better<IsMax>(k, lanes[l]);
    }
    for (; i < n; ++i) k = better<IsMax>(k, key_of<T, IsMax>(x[i]));
    return k;
  }

  static std::size_t find(const T* x, std::size_t n, K k) {
    std::size_t i = 0;
    const VK target(k);
    for (; i + B <= n; i += B)
      if (xsimd::any(keys(load(x + i)) == target)) break;
    return i + find_key_scalar<T, IsMax>(x + i, n - i, k);
  }
};

}  // namespace detail
}  // namespace cpu
}  // namespace bitexact
