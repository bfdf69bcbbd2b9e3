// bitexact/core/distributions.hpp - from stream words to values, identically everywhere.
//
// Canonical conversions (random_order_version 1). Value j of a distribution reads a fixed set
// of words of the stream (core/stream.hpp), so any slice [a, b) can be generated alone:
//
//   u32          value j = word j.
//   uniform f32  value j = (word j >> 8) * 2^-24                      in [0, 1 - 2^-24], exact.
//   uniform f64  value j = (u >> 11) * 2^-53, u = word 2j | word 2j+1 << 32, in [0, 1), exact.
//   normal f32   pair m = (values 2m, 2m+1) from words 2m (radius) and 2m+1 (angle):
//                u1 = ((w >> 8) + 1) * 2^-24 in (0, 1], t = (w' >> 8) * 2^-24 in [0, 1),
//                rho = sqrt(-2 log u1), value 2m = float(rho cos 2 pi t), 2m+1 = float(rho sin 2 pi t),
//                computed in binary64 with core/math.hpp (never libm), rounded once to float.
//   normal f64   pair m from words 4m..4m+3: u1 = ((u >> 11) + 1) * 2^-53 from words (4m, 4m+1),
//                t = (u' >> 11) * 2^-53 from words (4m+2, 4m+3), same formula in binary64.
//   bernoulli(p) value j = 1 if word j < ceil(p * 2^32) else 0 (p in [0, 1]; P(1) = ceil(p 2^32)/2^32,
//                so p = 0 never keeps and p = 1 always keeps).
//   uniform_int  value j in [0, n), unbiased (Lemire's multiply-shift with rejection):
//                attempt 0 uses word j (32-bit n) or words 2j, 2j+1 (64-bit n) of the stream;
//                attempt a >= 1 uses slot s = 64 j + a - 1 (mod 2^64) of the retry stream, which is
//                the same generator keyed by retry_key(key) (last key word XOR 0x9E3779B9 or
//                0x9E3779B97F4A7C15); 32-bit: word s, 64-bit: words 2s, 2s+1 (mod 2^64).
#pragma once
#include <cmath>
#include <cstdint>

#include "config.hpp"
#include "lanes.hpp"
#include "math.hpp"
#include "stream.hpp"

namespace bitexact {
namespace core {

BITEXACT_HD constexpr float uniform_float(std::uint32_t w) {
  return static_cast<float>(w >> 8) * 0x1p-24f;
}

BITEXACT_HD constexpr double uniform_double(std::uint32_t lo, std::uint32_t hi) {
  const std::uint64_t u = static_cast<std::uint64_t>(lo) | (static_cast<std::uint64_t>(hi) << 32);
  return static_cast<double>(u >> 11) * 0x1p-53;
}

/// Box-Muller on (u1 in (0,1], t in [0,1)): z0 = rho cos 2 pi t, z1 = rho sin 2 pi t.
BITEXACT_HD inline void box_muller(double u1, double t, double& z0, double& z1) {
  const double rho = std::sqrt(-2.0 * core::log(u1));  // sqrt is correctly rounded (IEEE 754)
  double s = 0, c = 0;
  sincos_2pi(t, s, c);
  z0 = mul_rn(rho, c);
  z1 = mul_rn(rho, s);
}

BITEXACT_HD inline void normal_float_pair(std::uint32_t w_radius, std::uint32_t w_angle, float& z0,
                                          float& z1) {
  const double u1 = static_cast<double>((w_radius >> 8) + 1u) * 0x1p-24;
  const double t = static_cast<double>(w_angle >> 8) * 0x1p-24;
  double a = 0, b = 0;
  box_muller(u1, t, a, b);
  z0 = static_cast<float>(a);
  z1 = static_cast<float>(b);
}

BITEXACT_HD inline void normal_double_pair(std::uint32_t w0, std::uint32_t w1, std::uint32_t w2,
                                           std::uint32_t w3, double& z0, double& z1) {
  const std::uint64_t ur = static_cast<std::uint64_t>(w0) | (static_cast<std::uint64_t>(w1) << 32);
  const std::uint64_t ua = static_cast<std::uint64_t>(w2) | (static_cast<std::uint64_t>(w3) << 32);
  const double u1 = static_cast<double>((ur >> 11) + 1u) * 0x1p-53;
  const double t = static_cast<double>(ua >> 11) * 0x1p-53;
  box_muller(u1, t, z0, z1);
}

/// The threshold of bernoulli(p): ceil(p * 2^32), for p in [0, 1] (checked by the callers).
BITEXACT_HD inline std::uint64_t bernoulli_threshold(double p) {
  return static_cast<std::uint64_t>(std::ceil(p * 4294967296.0));  // scaling by 2^32 is exact
}
BITEXACT_HD constexpr std::uint8_t bernoulli(std::uint32_t w, std::uint64_t threshold) {
  return static_cast<std::uint8_t>(static_cast<std::uint64_t>(w) < threshold ? 1 : 0);
}

/// The retry stream's key for uniform_int.
template <class K>
BITEXACT_HD constexpr K retry_key(K k) {
  using W = typename K::value_type;
  k[k.size() - 1] ^= static_cast<W>(sizeof(W) == 4 ? 0x9E3779B9ull : 0x9E3779B97F4A7C15ull);
  return k;
}

/// Lemire's test on one 32-bit word: returns true and the value if accepted.
BITEXACT_HD constexpr bool lemire32(std::uint32_t w, std::uint32_t n, std::uint32_t& v) {
  const std::uint64_t m = static_cast<std::uint64_t>(w) * n;
  const std::uint32_t l = static_cast<std::uint32_t>(m);
  if (l < n) {
    const std::uint32_t t = static_cast<std::uint32_t>(0u - n) % n;  // 2^32 mod n
    if (l < t) return false;
  }
  v = static_cast<std::uint32_t>(m >> 32);
  return true;
}

BITEXACT_HD constexpr bool lemire64(std::uint64_t w, std::uint64_t n, std::uint64_t& v) {
  std::uint64_t hi = 0;
  const std::uint64_t l = lane_ops<std::uint64_t>::mulhilo(n, w, hi);
  if (l < n) {
    const std::uint64_t t = (0ull - n) % n;  // 2^64 mod n
    if (l < t) return false;
  }
  v = hi;
  return true;
}

/// Retry path of uniform_int (32-bit bound), after attempt 0 of value j was rejected.
template <class Gen>
BITEXACT_HD constexpr std::uint32_t uniform_int32_retry(const stream<Gen>& s, std::uint64_t j,
                                                        std::uint32_t n) {
  const stream<Gen> r(retry_key(s.key()));
  std::uint32_t v = 0;
  for (std::uint64_t a = 0;; ++a) {
    if (lemire32(r.word(j * 64 + a), n, v)) return v;
  }
}

template <class Gen>
BITEXACT_HD constexpr std::uint32_t uniform_int32(const stream<Gen>& s, std::uint64_t j,
                                                  std::uint32_t n) {
  std::uint32_t v = 0;
  if (lemire32(s.word(j), n, v)) return v;
  return uniform_int32_retry(s, j, n);
}

template <class Gen>
BITEXACT_HD constexpr std::uint64_t uniform_int64_retry(const stream<Gen>& s, std::uint64_t j,
                                                        std::uint64_t n) {
  const stream<Gen> r(retry_key(s.key()));
  std::uint64_t v = 0;
  for (std::uint64_t a = 0;; ++a) {
    const std::uint64_t slot = j * 64 + a;
    const std::uint64_t w = static_cast<std::uint64_t>(r.word(2 * slot)) |
                            (static_cast<std::uint64_t>(r.word(2 * slot + 1)) << 32);
    if (lemire64(w, n, v)) return v;
  }
}

template <class Gen>
BITEXACT_HD constexpr std::uint64_t uniform_int64(const stream<Gen>& s, std::uint64_t j,
                                                  std::uint64_t n) {
  const std::uint64_t w = static_cast<std::uint64_t>(s.word(2 * j)) |
                          (static_cast<std::uint64_t>(s.word(2 * j + 1)) << 32);
  std::uint64_t v = 0;
  if (lemire64(w, n, v)) return v;
  return uniform_int64_retry(s, j, n);
}

}  // namespace core
}  // namespace bitexact
