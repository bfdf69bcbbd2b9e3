// bitexact/cpu/simd_math.hpp - never-fused multiply and the library's exp on xsimd batches.
//
// exp_batch and exp_float_batch run exactly the operations of core::exp(double) and
// core::exp(float) (core/math.hpp; the polynomial code is shared), lane by lane, so every lane
// equals the scalar function bit for bit on every ISA.
// tests/rowwise_test.cpp checks this on every ISA usable here.
#pragma once
#include <cstdint>

#include <xsimd/xsimd.hpp>

#include "../core/math.hpp"

// g++ 12 reports the "undefined" operand inside _mm512_slli_epi64 as used uninitialized once
// it is inlined here (a false positive in the intrinsic header); silence it for this header.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace bitexact {
namespace cpu {
namespace detail {

/// Keeps a vector value in a register as-is, so the compiler cannot fuse the multiply that
/// produced it with a following add (the contract never relies on -ffp-contract=off alone).
template <class T, class A>
inline xsimd::batch<T, A> opaque(xsimd::batch<T, A> v) {
  auto r = static_cast<typename xsimd::batch<T, A>::register_type>(v);
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
  __asm__("" : "+v"(r));
#elif (defined(__GNUC__) || defined(__clang__)) && defined(__aarch64__)
  __asm__("" : "+w"(r));
#endif
  return xsimd::batch<T, A>(r);
}

/// a*b rounded once, lane by lane, never fused with a neighbouring add.
template <class T, class A>
inline xsimd::batch<T, A> mul_rn(const xsimd::batch<T, A>& a, const xsimd::batch<T, A>& b) {
  return opaque(a * b);
}

struct batch_mul {
  template <class V>
  V operator()(const V& a, const V& b) const {
    return mul_rn(a, b);
  }
};

/// core::exp lane by lane.
template <class A>
inline xsimd::batch<double, A> exp_batch(const xsimd::batch<double, A>& x) {
  using V = xsimd::batch<double, A>;
  using U = xsimd::batch<std::uint64_t, A>;
  namespace d = core::exp_detail;
  // x == x is false exactly for NaN (xsimd 8.1's != is an ordered compare on AVX-512, so it
  // cannot detect NaN); > and < are false for NaN.
  const auto ordered = x == x;
  const auto over = x > V(d::overflow_above);
  const auto under = x < V(d::underflow_below);
  // Out-of-range and NaN lanes compute on a harmless value and are replaced at the end.
  const V xc = xsimd::select(over || under, V(0.0), xsimd::select(ordered, x, V(0.0)));
  V t;
  const V p = d::reduced_exp(xc, t, batch_mul{});
  const U k = xsimd::bitwise_cast<U>(t) - U(core::bits_of(d::shifter));  // k mod 2^64
  const U h = ((k + U(2048)) >> 1) - U(1024);
  const V s1 = xsimd::bitwise_cast<V>((k - h + U(1023)) << 52);
  const V s2 = xsimd::bitwise_cast<V>((h + U(1023)) << 52);
  V y = mul_rn(mul_rn(p, s1), s2);
  y = xsimd::select(over, V(core::double_of(0x7ff0000000000000ull)), y);
  y = xsimd::select(under, V(0.0), y);
  return xsimd::select(ordered, y, V(core::canonical_nan()));
}

/// core::exp(float) lane by lane, on binary32 values held exactly in binary64 lanes; returns
/// the binary64 value whose rounding to binary32 is the result (the caller narrows).
template <class A>
inline xsimd::batch<double, A> exp_float_batch(const xsimd::batch<double, A>& x) {
  using V = xsimd::batch<double, A>;
  using U = xsimd::batch<std::uint64_t, A>;
  namespace d = core::exp_detail;
  const auto ordered = x == x;
  const auto over = x > V(d::overflow_above_f);
  const auto under = x < V(d::underflow_below_f);
  const V xc = xsimd::select(over || under, V(0.0), xsimd::select(ordered, x, V(0.0)));
  V t;
  const V p = d::reduced_exp_f(xc, t, batch_mul{});
  const U k = xsimd::bitwise_cast<U>(t) - U(core::bits_of(d::shifter));
  V y = mul_rn(p, xsimd::bitwise_cast<V>((k + U(1023)) << 52));
  y = xsimd::select(over, V(core::double_of(0x7ff0000000000000ull)), y);
  y = xsimd::select(under, V(0.0), y);
  return xsimd::select(ordered, y, V(core::canonical_nan()));
}

}  // namespace detail
}  // namespace cpu
}  // namespace bitexact

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
