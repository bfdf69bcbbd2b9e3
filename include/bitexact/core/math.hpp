// bitexact/core/math.hpp - portable transcendental functions for the deterministic paths.
//
// libm and CUDA's intrinsics differ between versions, CPUs and GPUs, so the library never
// calls them. These functions use only IEEE-754 binary64 add, subtract, multiply, divide and
// bit manipulation, in a fixed order, with every multiply kept apart from the following add
// (mul_rn), so no compiler can contract them into FMAs. Their results are therefore the same
// bits on every conforming platform. Accuracy: a few ulp (tests/random_test.cpp bounds it);
// what matters here is that the bits never move.
#pragma once
#include <cstdint>
#include <cstring>

#include "config.hpp"

namespace bitexact {
namespace core {

namespace detail {
#if defined(__CUDA_ARCH__)
__device__ inline double device_mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ inline float device_mul_rn(float a, float b) { return __fmul_rn(a, b); }
#endif
/// a*b rounded once in T, never fused with a neighbouring add: the asm barrier makes the
/// product a value the compiler must materialize before any add can use it.
template <class T>
BITEXACT_HD inline T mul_rn(T a, T b) {
#if defined(__CUDA_ARCH__)
  return device_mul_rn(a, b);
#elif (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__)) && \
    defined(__SSE2__)
  T p = a * b;
  __asm__("" : "+x"(p));
  return p;
#elif (defined(__GNUC__) || defined(__clang__)) && defined(__aarch64__)
  T p = a * b;
  __asm__("" : "+w"(p));
  return p;
#else
  volatile T p = a * b;
  return p;
#endif
}
}  // namespace detail

/// a*b rounded once, never fused with a neighbouring add (binary64 and binary32).
BITEXACT_HD inline double mul_rn(double a, double b) { return detail::mul_rn(a, b); }
BITEXACT_HD inline float mul_rn(float a, float b) { return detail::mul_rn(a, b); }

BITEXACT_HD inline std::uint64_t bits_of(double x) {
  std::uint64_t u = 0;
  std::memcpy(&u, &x, sizeof u);
  return u;
}
BITEXACT_HD inline double double_of(std::uint64_t u) {
  double x = 0;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

/// Natural logarithm for x > 0 (x = 0 gives -inf, x < 0 or NaN gives NaN, +inf gives +inf).
/// x = 2^e * m with m in [sqrt(1/2), sqrt(2)); log m = 2 atanh(s), s = (m-1)/(m+1), summed
/// as an odd series in s to degree 23 (|s| <= 0.1716, truncation < 2^-60 relative).
BITEXACT_HD inline double log(double x) {
  if (!(x > 0.0)) {
    if (x == 0.0) return double_of(0xfff0000000000000ull);  // -inf
    return double_of(0x7ff8000000000000ull);               // canonical quiet NaN
  }
  std::uint64_t u = bits_of(x);
  int e = 0;
  if ((u >> 52) == 0) {  // subnormal: scale into the normal range
    x = mul_rn(x, 0x1p54);
    u = bits_of(x);
    e = -54;
  }
  const int be = static_cast<int>((u >> 52) & 0x7ff);
  if (be == 0x7ff) return x;  // +inf
  e += be - 1023;
  double m = double_of((u & 0x000fffffffffffffull) | 0x3ff0000000000000ull);  // [1, 2)
  if (m > 1.4142135623730951) {
    m = mul_rn(m, 0.5);
    e += 1;
  }
  const double f = m - 1.0;  // exact (Sterbenz)
  const double s = f / (m + 1.0);
  const double z = mul_rn(s, s);
  double p = 1.0 / 23.0;
  p = mul_rn(p, z) + 1.0 / 21.0;
  p = mul_rn(p, z) + 1.0 / 19.0;
  p = mul_rn(p, z) + 1.0 / 17.0;
  p = mul_rn(p, z) + 1.0 / 15.0;
  p = mul_rn(p, z) + 1.0 / 13.0;
  p = mul_rn(p, z) + 1.0 / 11.0;
  p = mul_rn(p, z) + 1.0 / 9.0;
  p = mul_rn(p, z) + 1.0 / 7.0;
  p = mul_rn(p, z) + 1.0 / 5.0;
  p = mul_rn(p, z) + 1.0 / 3.0;
  const double r = mul_rn(mul_rn(s, z), p);  // s^3 (1/3 + ...)
  const double log_m = 2.0 * (s + r);  // 2 atanh(s); doubling is exact
  const double ln2_hi = 0x1.62e42fefa3800p-1, ln2_lo = 0x1.ef35793c76730p-45;
  const double de = static_cast<double>(e);
  return mul_rn(de, ln2_hi) + (mul_rn(de, ln2_lo) + log_m);
}

/// sin(2 pi t) and cos(2 pi t) for t in [0, 1) (any finite t works but loses accuracy when
/// 4t is not exact). 4t = k + r with integer k and r in [-1/2, 1/2] (exact), a = r pi/2, then
/// Taylor polynomials of degree 17 (sin) and 18 (cos) on |a| <= pi/4, rotated by quadrant k.
BITEXACT_HD inline void sincos_2pi(double t, double& s_out, double& c_out) {
  const double y = mul_rn(t, 4.0);
  const double kf = static_cast<double>(static_cast<std::int64_t>(y + 0.5) -
                                        (y + 0.5 < 0.0 ? 1 : 0));  // floor(y + 1/2)
  const double r = y - kf;                                          // exact
  const double a = mul_rn(r, 1.5707963267948966);
  const double z = mul_rn(a, a);
  double ps = -1.0 / 355687428096000.0;  // -1/17!
  ps = mul_rn(ps, z) + 1.0 / 1307674368000.0;
  ps = mul_rn(ps, z) - 1.0 / 6227020800.0;
  ps = mul_rn(ps, z) + 1.0 / 39916800.0;
  ps = mul_rn(ps, z) - 1.0 / 362880.0;
  ps = mul_rn(ps, z) + 1.0 / 5040.0;
  ps = mul_rn(ps, z) - 1.0 / 120.0;
  ps = mul_rn(ps, z) + 1.0 / 6.0;
  const double s = a - mul_rn(mul_rn(a, z), ps);
  double pc = 1.0 / 6402373705728000.0;  // 1/18!
  pc = mul_rn(pc, z) - 1.0 / 20922789888000.0;
  pc = mul_rn(pc, z) + 1.0 / 87178291200.0;
  pc = mul_rn(pc, z) - 1.0 / 479001600.0;
  pc = mul_rn(pc, z) + 1.0 / 3628800.0;
  pc = mul_rn(pc, z) - 1.0 / 40320.0;
  pc = mul_rn(pc, z) + 1.0 / 720.0;
  pc = mul_rn(pc, z) - 1.0 / 24.0;
  pc = mul_rn(pc, z) + 1.0 / 2.0;
  const double c = 1.0 - mul_rn(z, pc);
  switch (static_cast<std::int64_t>(kf) & 3) {
    case 0: s_out = s; c_out = c; break;
    case 1: s_out = c; c_out = -s; break;
    case 2: s_out = -s; c_out = -c; break;
    default: s_out = -c; c_out = s; break;
  }
}

}  // namespace core
}  // namespace bitexact
