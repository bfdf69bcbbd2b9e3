// bitexact/core/math.hpp - portable transcendental functions for the deterministic paths.
//
// libm and CUDA's intrinsics differ between versions, CPUs and GPUs, so the library never
// calls them. These functions use only IEEE-754 binary64 add, subtract, multiply, divide and
// bit manipulation, in a fixed order, with every multiply kept apart from the following add
// (mul_rn), so no compiler can contract them into FMAs. Their results are therefore the same
// bits on every conforming platform. Accuracy: a few ulp (tests/random_test.cpp bounds log and
// sincos, tests/rowwise_test.cpp bounds exp); what matters here is that the bits never move.
#pragma once
#include <cstddef>
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

/// TwoSum (Knuth): returns s = a + b rounded to nearest and sets err so that a + b == s + err
/// exactly (for finite a, b whose sum does not overflow; with gradual underflow as well).
BITEXACT_HD inline double two_sum(double a, double b, double& err) {
  const double s = a + b;
  const double z = s - a;
  err = (a - (s - z)) + (b - z);
  return s;
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

/// The canonical quiet NaN every deterministic path returns for a NaN result.
BITEXACT_HD inline double canonical_nan() { return double_of(0x7ff8000000000000ull); }

namespace exp_detail {
// exp(x) for finite x in [-745.2, 709.79], written once over a number type so the SIMD kernels
// (cpu/simd_math.hpp) run the identical sequence of rounded operations:
//   t  = x * (1/ln2) + 1.5 * 2^52          (the shifter rounds to the nearest integer, ties even)
//   kf = t - 1.5 * 2^52                    (exact: k = nearest integer to x/ln2, |k| <= 1075)
//   r  = (x - kf * ln2_hi) - kf * ln2_lo   (Cody-Waite; kf * ln2_hi and the first subtraction
//                                           are exact, |r| <= 0.3466)
//   q  = Horner(1/13!, ..., 1/3!, 1/2) in r (degree 11, truncation < 2^-57 relative)
//   p  = 1 + (r + (r * r) * q)             (exp(r) in [0.707, 1.415])
//   y  = (p * 2^(k - h)) * 2^h,  h = ((k + 2048) >> 1) - 1024
// The first scaling is exact (a normal result), so y is p * 2^k rounded once: denormal results
// round correctly from p and overflow rounds to +inf as IEEE says.
constexpr double inv_ln2 = 0x1.71547652b82fep0;
constexpr double shifter = 0x1.8p52;
constexpr double ln2_hi = 0x1.62e42fee00000p-1;  // 32 significant bits: kf * ln2_hi is exact
constexpr double ln2_lo = 0x1.a39ef35793c76p-33;
constexpr double overflow_above = 709.79;         // exp(709.79) > DBL_MAX: +inf
constexpr double underflow_below = -745.2;        // exp(-745.2) < 2^-1075: +0
/// The never-fused scalar multiply, as a function object for reduced_exp.
struct scalar_mul {
  BITEXACT_HD double operator()(double a, double b) const { return mul_rn(a, b); }
};

/// The range reduction shared by both precisions: t = x / ln2 + shifter (its low bits hold
/// k = round(x / ln2)), r = x - k ln2 in two parts. V is double or a SIMD batch; Mul is the
/// never-fused multiply of V.
template <class V, class Mul>
BITEXACT_HD inline V reduce_ln2(const V& x, V& t, Mul mul) {
  t = mul(x, V(inv_ln2)) + V(shifter);
  const V kf = t - V(shifter);
  const V hi = x - mul(kf, V(ln2_hi));
  const V lo = mul(kf, V(ln2_lo));
  return hi - lo;
}

/// 1 + (r + (r * r) * q), q the Horner evaluation of the coefficients c (highest degree first).
template <class V, class Mul, std::size_t N>
BITEXACT_HD inline V exp_poly(const V& r, const double (&c)[N], Mul mul) {
  V q = V(c[0]);
  for (std::size_t i = 1; i < N; ++i) q = mul(q, r) + V(c[i]);
  return V(1.0) + (r + mul(mul(r, r), q));
}

/// p = exp(r) and t (whose low bits hold k) for an in-range x (binary64: degree 13).
template <class V, class Mul>
BITEXACT_HD inline V reduced_exp(const V& x, V& t, Mul mul) {
  const V r = reduce_ln2(x, t, mul);
  const double c[] = {1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0,
                      1.0 / 362880.0,     1.0 / 40320.0,     1.0 / 5040.0,     1.0 / 720.0,
                      1.0 / 120.0,        1.0 / 24.0,        1.0 / 6.0,        0.5};
  return exp_poly(r, c, mul);
}
}  // namespace exp_detail

/// e^x in binary64. NaN gives the canonical quiet NaN, +inf gives +inf, -inf gives +0;
/// x > 709.79 overflows to +inf, x < -745.2 gives +0, and results below 2^-1022 are denormals
/// rounded once (never flushed). Accuracy: at most 1 ulp from glibc's exp (itself within about
/// 0.5 ulp of e^x) on millions of points in tests/rowwise_test.cpp, so within 1.5 ulp of e^x.
BITEXACT_HD inline double exp(double x) {
  if (x != x) return canonical_nan();
  if (x > exp_detail::overflow_above) return double_of(0x7ff0000000000000ull);
  if (x < exp_detail::underflow_below) return 0.0;
  double t = 0;
  const double p = exp_detail::reduced_exp(x, t, exp_detail::scalar_mul{});
  const std::int64_t k = static_cast<std::int64_t>(bits_of(t) - bits_of(exp_detail::shifter));
  const std::int64_t h = ((k + 2048) >> 1) - 1024;
  const double s1 = double_of(static_cast<std::uint64_t>(k - h + 1023) << 52);
  const double s2 = double_of(static_cast<std::uint64_t>(h + 1023) << 52);
  return mul_rn(mul_rn(p, s1), s2);
}

namespace exp_detail {
// The binary32 exp: the same reduction in binary64 (|k| <= 150, so 2^k is a normal double and
// one multiply scales exactly), a degree-9 polynomial (truncation < 2^-37 relative), and one
// final rounding to binary32:
//   t, kf, r as above; q = Horner(1/9!, ..., 1/3!, 1/2) in r; p = 1 + (r + (r * r) * q);
//   y = float(p * 2^k)
constexpr double overflow_above_f = 89.0;    // exp(89) > FLT_MAX: +inf
constexpr double underflow_below_f = -104.0;  // exp(-104) < 2^-150: +0

template <class V, class Mul>
BITEXACT_HD inline V reduced_exp_f(const V& x, V& t, Mul mul) {
  const V r = reduce_ln2(x, t, mul);
  const double c[] = {1.0 / 362880.0, 1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 720.0,
                      1.0 / 120.0,    1.0 / 24.0,    1.0 / 6.0,    0.5};
  return exp_poly(r, c, mul);
}
}  // namespace exp_detail

/// e^x in binary32 (evaluated in binary64, rounded once at the end). NaN gives the canonical
/// quiet float NaN, x > 89 gives +inf, x < -104 gives +0; float denormal results are rounded
/// (never flushed). Accuracy: the binary64 value is within 2^-36 relative of e^x, so the result
/// is the correctly rounded float except when e^x lies within that distance of a rounding
/// boundary (then it is off by one ulp); tests/rowwise_test.cpp checks it against libm.
BITEXACT_HD inline float exp(float xf) {
  const double x = static_cast<double>(xf);
  if (x != x) return static_cast<float>(canonical_nan());
  if (x > exp_detail::overflow_above_f) return static_cast<float>(double_of(0x7ff0000000000000ull));
  if (x < exp_detail::underflow_below_f) return 0.0f;
  double t = 0;
  const double p = exp_detail::reduced_exp_f(x, t, exp_detail::scalar_mul{});
  const std::int64_t k = static_cast<std::int64_t>(bits_of(t) - bits_of(exp_detail::shifter));
  return static_cast<float>(mul_rn(p, double_of(static_cast<std::uint64_t>(k + 1023) << 52)));
}

/// log for a binary32 argument: the binary64 log rounded once to binary32.
BITEXACT_HD inline float log(float x) { return static_cast<float>(log(static_cast<double>(x))); }

}  // namespace core
}  // namespace bitexact
