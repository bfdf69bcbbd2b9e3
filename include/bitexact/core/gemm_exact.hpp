// bitexact/core/gemm_exact.hpp - the exact tier of GEMM: portable pieces (DESIGN 7, issue 9).
//
// What the exact tier computes (the contract; cpu/gemm_exact.hpp and the CUDA kernels implement it):
//   S[i][j] = sum_k opA[i][k] * opB[k][j], the exact real value (no rounding anywhere), then
//     alpha == 0:  C = (beta == 0) ? +0 : round(beta * C_old)      (A and B are not read)
//     alpha == 1:  C = round(S + beta * C_old)                     (one rounding; beta == 0: C_old
//                                                                   is not read, C = round(S))
//     otherwise:   C = round(alpha * round(S) + beta * C_old)      (S rounded once to T, then the
//                                                                   exact alpha*S_r + beta*C_old
//                                                                   rounded once)
//   round() is to nearest, ties to even, with subnormals, and follows the exact accumulator's
//   rules (core/exact.hpp) for everything else: any NaN term (or Inf * 0, or +Inf and -Inf
//   together) gives the canonical quiet NaN; an Inf term gives that Inf; an exact sum beyond T's
//   range rounds to +-Inf; an exact zero is -0 only when at least one term was added and every
//   term was a -0 (a product's zero has the xor of its factors' signs; K = 0 adds no term), else
//   +0. Because the value is the exact one, the bits do not depend on the order of k, on how K
//   is split (threads, GPU blocks, ranks), on the ISA or on the blocking.
//
// How it is computed fast (the Ozaki scheme, made exact): every row i of op(A) whose finite
// nonzero entries span w_i bits (from the highest set bit to the lowest, over the row) is a
// vector of integers X[i][k] = a[i][k] / 2^qa_i (qa_i = lowest set bit of the row), and every
// column j of op(B) likewise Y[k][j] = b[k][j] / 2^qb_j. Then S = 2^(qa_i + qb_j) sum_k X Y, an
// integer dot product. X is cut into S_a base-256 digits (offset by 2^(8 S_a - 1) so they are
// unsigned bytes), Y into S_b balanced signed-byte digits, and sum_k X Y becomes S_a * S_b
// int8 x int8 -> int32 matrix products (AMX, AVX-512 VNNI or plain loops: integer sums are exact
// and associative, so every kernel gives the same integers), recombined into a multi-word integer
// and rounded once. Rows or columns that hold NaN/Inf, or whose span needs more digits than
// gemm_exact_max_digits, take the exact accumulator instead (slow, same value).
//
// Faster still for float inputs: the certified double filter below (gemm_exact_filter_*) finds
// the same correctly rounded value for almost every element from a double GEMM and an error
// bound, and leaves the few it cannot certify to the integer path. Double inputs have the split
// filter (gemm_exact_split_*): the same idea with the operands sliced so that most of the sum is
// an exact double GEMM.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

#include "config.hpp"
#include "exact.hpp"
#include "exact_filter.hpp"
#include "gemm_order.hpp"
#include "math.hpp"

namespace bitexact {
namespace core {

/// Most base-256 digits a row of op(A) (or a column of op(B)) may use before its outputs fall back
/// to the exact accumulator: 12 (a span of 95 bits) for float and double.
template <class T>
struct gemm_exact_max_digits;
template <>
struct gemm_exact_max_digits<float> {
  static constexpr int value = 12;
};
template <>
struct gemm_exact_max_digits<double> {
  static constexpr int value = 12;
};

/// K is cut into blocks of this many indices (a multiple of 64) so no int32 digit sum can
/// overflow: 12 digit pairs * 4096 * 255 * 128 < 2^31.
inline constexpr std::size_t gemm_exact_k_block = 4096;

/// The most 32-bit words a combined output integer needs (S_a + S_b <= 24 digits, K < 2^40).
inline constexpr int gemm_exact_max_words = 10;

/// Span statistics of one row of op(A) or one column of op(B).
struct gemm_exact_span {
  int lsb = 2147483647;    ///< lowest set bit (exponent) over the finite nonzero entries
  int top = -2147483647;   ///< every finite entry is below 2^top in magnitude
  bool special = false;    ///< holds a NaN or an Inf
  BITEXACT_HD bool zero() const { return top < lsb; }
  BITEXACT_HD int width() const { return zero() ? 0 : top - lsb; }
};

namespace detail {
template <class R, class B>
BITEXACT_HD inline R gemm_exact_from_bits(B b) {
  R r;
  std::memcpy(&r, &b, sizeof r);
  return r;
}
BITEXACT_HD inline int ctz64(std::uint64_t x) {
#if defined(__CUDA_ARCH__)
  return __ffsll(static_cast<long long>(x)) - 1;
#elif defined(__GNUC__) || defined(__clang__)
  return __builtin_ctzll(x);
#else
  int n = 0;
  while (!(x & 1)) { x >>= 1; ++n; }
  return n;
#endif
}
}  // namespace detail

/// Adds x to a span.
template <class T>
BITEXACT_HD inline void gemm_exact_note(gemm_exact_span& s, T x) {
  const detail::decomposed<T> d = detail::decompose(x);
  if (!d.finite) {
    s.special = true;
    return;
  }
  if (d.mant == 0) return;
  const int lo = d.exp + detail::ctz64(d.mant);
  const int hi = d.exp + 64 - detail::clz64(d.mant);
  if (lo < s.lsb) s.lsb = lo;
  if (hi > s.top) s.top = hi;
}

/// Digits needed by a span: A (offset unsigned digits) needs width + 1 bits, B (balanced signed
/// digits) width + 2.
BITEXACT_HD inline int gemm_exact_digits_a(const gemm_exact_span& s) { return (s.width() + 1 + 7) / 8; }
BITEXACT_HD inline int gemm_exact_digits_b(const gemm_exact_span& s) { return (s.width() + 2 + 7) / 8; }

/// x / 2^q as a signed integer; x finite, its lowest set bit >= q and x / 2^q below 2^126.
template <class T>
BITEXACT_HD inline __int128 gemm_exact_fixed(T x, int q) {
  const detail::decomposed<T> d = detail::decompose(x);
  if (d.mant == 0) return 0;
  const int sh = d.exp - q;
  const unsigned __int128 m = sh >= 0 ? (static_cast<unsigned __int128>(d.mant) << sh) : (d.mant >> (-sh));
  const __int128 v = static_cast<__int128>(m);
  return d.negative ? -v : v;
}

/// gemm_exact_fixed when the result is known to be below 2^63 in magnitude (spans of at most 63
/// bits), branch-light.
template <class T>
BITEXACT_HD inline std::int64_t gemm_exact_fixed64(T x, int q) {
  using I = detail::ieee<T>;
  typename I::bits_type b;
  std::memcpy(&b, &x, sizeof b);
  constexpr int frac_bits = I::precision - 1;
  constexpr int total = static_cast<int>(sizeof(T) * 8);
  const std::uint64_t bits = b;
  const int e = static_cast<int>((bits >> frac_bits) & ((std::uint64_t(1) << (total - 1 - frac_bits)) - 1));
  const std::uint64_t frac = bits & ((std::uint64_t(1) << frac_bits) - 1);
  const std::uint64_t mant = e ? (frac | (std::uint64_t(1) << frac_bits)) : frac;
  const int sh = (e ? e : 1) - I::bias - frac_bits - q;
  // A zero element's shift can reach 64 and beyond (an undefined shift, found by UBSan); only
  // mant == 0 gets there, whose value is 0 either way.
  const std::uint64_t mag = sh >= 64 || sh <= -64 ? 0 : sh >= 0 ? (mant << sh) : (mant >> (-sh));
  const std::uint64_t neg = (bits >> (total - 1)) ? ~std::uint64_t(0) : 0;
  return static_cast<std::int64_t>((mag ^ neg) - neg);
}

/// The S unsigned digits (least significant first) of X + 2^(8S - 1), |X| < 2^(8S - 1), S <= 16.
BITEXACT_HD inline void gemm_exact_digits_unsigned(__int128 x, int S, std::uint8_t* out, std::size_t stride) {
  const unsigned __int128 u = static_cast<unsigned __int128>(x) + (static_cast<unsigned __int128>(1) << (8 * S - 1));
  const std::uint64_t lo = static_cast<std::uint64_t>(u), hi = static_cast<std::uint64_t>(u >> 64);
  for (int s = 0; s < S; ++s) out[s * stride] = static_cast<std::uint8_t>(s < 8 ? lo >> (8 * s) : hi >> (8 * s - 64));
}

/// The T balanced digits d_t in [-128, 127] (least significant first, Y = sum_t d_t 256^t) of Y,
/// |Y| < 2^(8T - 2), T <= 16: d_t + 128 is byte t of Y + 128 (256^T - 1) / 255.
BITEXACT_HD inline void gemm_exact_digits_signed(__int128 y, int T, std::int8_t* out, std::size_t stride) {
  unsigned __int128 bias = 0;
  for (int t = 0; t < T; ++t) bias = (bias << 8) | 0x80;
  const unsigned __int128 v = static_cast<unsigned __int128>(y) + bias;
  const std::uint64_t lo = static_cast<std::uint64_t>(v), hi = static_cast<std::uint64_t>(v >> 64);
  for (int t = 0; t < T; ++t)
    out[t * stride] = static_cast<std::int8_t>(static_cast<std::uint8_t>(t < 8 ? lo >> (8 * t) : hi >> (8 * t - 64)) ^ 0x80u);
}

/// An exact sum of up to 2^64 values Y (|Y| < 2^127): sum = lo + hi * 2^64.
struct gemm_exact_sum {
  unsigned __int128 lo = 0;
  std::int64_t hi = 0;
  BITEXACT_HD void add(__int128 y) {
    lo += static_cast<std::uint64_t>(static_cast<unsigned __int128>(y));
    hi += static_cast<std::int64_t>(y >> 64);
  }
};

/// Multi-word integers as int64 words of weight 2^(32 q) (signed, not yet normalized).
/// Adds v * 2^bit as three pieces below 2^32 in magnitude (words q, q + 1, q + 2 must exist).
BITEXACT_HD inline void gemm_exact_add_shifted(std::int64_t* w, std::int64_t v, int bit) {
  const int q = bit >> 5, r = bit & 31;
  const __int128 x = static_cast<__int128>(v) * (static_cast<__int128>(1) << r);
  w[q] += static_cast<std::int64_t>(x & 0xffffffff);
  w[q + 1] += static_cast<std::int64_t>((x >> 32) & 0xffffffff);
  w[q + 2] += static_cast<std::int64_t>(x >> 64);
}
/// Words 0 .. n-2 into [0, 2^32), the top word keeps the sign.
BITEXACT_HD inline void gemm_exact_normalize(std::int64_t* w, int n) {
  std::int64_t carry = 0;
  for (int q = 0; q < n - 1; ++q) {
    const std::int64_t v = w[q] + carry;
    w[q] = v & 0xffffffff;
    carry = v >> 32;
  }
  w[n - 1] += carry;
}

/// The words (n of them, normalized) of the correction 2^(8 S_a - 1) * sum_k Y[k][j].
/// The value must fit in n words (it does for the callers' sizes).
BITEXACT_HD inline void gemm_exact_offset_words(const gemm_exact_sum& sum, int S_a, std::int64_t* w, int n) {
  constexpr int big = 16;  // room for every piece: base + 160 bits < 32 * 16
  std::int64_t t[big];
  for (int q = 0; q < big; ++q) t[q] = 0;
  const int base = 8 * S_a - 1;
  for (int p = 0; p < 4; ++p)  // each add moves a word by less than 2^32
    gemm_exact_add_shifted(t, static_cast<std::int64_t>(static_cast<std::uint32_t>(sum.lo >> (32 * p))), base + 32 * p);
  gemm_exact_add_shifted(t, sum.hi, base + 64);
  gemm_exact_normalize(t, big);
  for (int q = 0; q < n - 1; ++q) w[q] = t[q];
  std::int64_t top = t[big - 1];  // the words from n - 1 up, as one signed word
  for (int q = big - 2; q >= n - 1; --q) top = static_cast<std::int64_t>(static_cast<std::uint64_t>(top) << 32) + t[q];
  w[n - 1] = top;
}

/// Sign and magnitude of N (n normalized words, gemm_exact_normalize): |N| into `mag` as n
/// words in [0, 2^32); returns whether N < 0. (A negative N's top words are sign extension,
/// -1s far above its magnitude: consumers must see |N|, whose top nonzero word is its size.)
BITEXACT_HD inline bool gemm_exact_magnitude(const std::int64_t* words, int n, std::int64_t* mag) {
  for (int q = 0; q < n; ++q) mag[q] = words[q];
  const bool negative = mag[n - 1] < 0;
  if (negative) {
    for (int q = 0; q < n; ++q) mag[q] = -mag[q];
    gemm_exact_normalize(mag, n);
  }
  return negative;
}

/// Result of rounding an integer times a power of two.
template <class T>
struct gemm_exact_rounded {
  T value;
  bool zero;  ///< the integer was zero (value is +0; the caller decides the sign)
};

/// The correctly rounded (nearest even) value in R of N * 2^e, N given by n normalized words
/// (gemm_exact_normalize). Overflow gives +-Inf.
template <class R>
BITEXACT_HD inline gemm_exact_rounded<R> gemm_exact_round(const std::int64_t* words, int n, int e) {
  using O = detail::ieee<R>;
  using B = typename O::bits_type;
  constexpr int total = static_cast<int>(sizeof(R) * 8);
  constexpr int frac_bits = O::precision - 1;
  std::int64_t w[gemm_exact_max_words + 1];
  const bool negative = gemm_exact_magnitude(words, n, w);
  int h = n - 1;
  while (h >= 0 && w[h] == 0) --h;
  gemm_exact_rounded<R> r;
  r.zero = h < 0;
  if (h < 0) {
    r.value = R(0);
    return r;
  }
  const B sign = negative ? (B(1) << (total - 1)) : B(0);
  const B inf_bits = B(((B(1) << (total - 1 - frac_bits)) - 1)) << frac_bits;
  // A window of the top three words: bits [32 (h - 2), 32 (h + 1)).
  const int base = 32 * (h - 2);
  unsigned __int128 win = static_cast<unsigned __int128>(static_cast<std::uint64_t>(w[h])) << 64;
  if (h >= 1) win |= static_cast<unsigned __int128>(static_cast<std::uint64_t>(w[h - 1])) << 32;
  if (h >= 2) win |= static_cast<std::uint64_t>(w[h - 2]);
  bool low_sticky = false;
  for (int q = 0; q < h - 2; ++q) low_sticky |= w[q] != 0;
  const int msb = 32 * h + 63 - detail::clz64(static_cast<std::uint64_t>(w[h]));
  const int e_msb = msb + e;
  if (e_msb > O::emax) {
    r.value = detail::gemm_exact_from_bits<R>(inf_bits | sign);
    return r;
  }
  int q = e_msb - (O::precision - 1);
  if (q < O::emin - (O::precision - 1)) q = O::emin - (O::precision - 1);
  const int bq = q - e;  // bit index of the result's last place
  std::uint64_t mant;
  if (bq <= 0) {  // exact: the integer has at most `precision` bits and fits below
    mant = static_cast<std::uint64_t>(w[0]) | (h >= 1 ? static_cast<std::uint64_t>(w[1]) << 32 : 0);
    mant <<= -bq;
  } else {
    const int sh = bq - base;  // >= 1: the window holds >= 64 bits below msb
    if (sh >= 128) {
      mant = 0;
    } else {
      mant = static_cast<std::uint64_t>(win >> sh);
    }
    const bool round_bit = (sh - 1 < 128) && ((win >> (sh - 1)) & 1) != 0;
    const unsigned __int128 below = (sh - 1 >= 128) ? win : (win & ((static_cast<unsigned __int128>(1) << (sh - 1)) - 1));
    const bool sticky = low_sticky || below != 0;
    if (round_bit && (sticky || (mant & 1))) ++mant;
    if (mant >> O::precision) {
      mant >>= 1;
      ++q;
    }
  }
  if (mant >> frac_bits) {
    const int biased = q + frac_bits + O::bias;
    if (biased >= (1 << (total - 1 - frac_bits)) - 1) {
      r.value = detail::gemm_exact_from_bits<R>(inf_bits | sign);
      return r;
    }
    r.value = detail::gemm_exact_from_bits<R>(sign | (B(biased) << frac_bits) | (B(mant) & ((B(1) << frac_bits) - 1)));
    return r;
  }
  r.value = detail::gemm_exact_from_bits<R>(sign | B(mant));
  return r;
}

/// The common case of gemm_exact_round, branch-light: N * 2^e, N given by n words of weight
/// 2^(32 q) that need not be normalized (any int64 values), when |N| < 2^(64 NL - 1) (the caller
/// guarantees it; N is computed modulo 2^(64 NL), so words of weight >= 2^(64 NL) drop out), N != 0
/// and the result is a normal number that cannot round to Inf. Returns false otherwise (the caller
/// then normalizes and uses gemm_exact_round). The top 64 bits of |N|, with every lower bit ORed
/// into the last one (at least 10 bits below the rounding position, so nearest-even is
/// unaffected), go through one correctly rounded integer-to-float conversion, then two exact
/// power-of-two products.
template <class R, int NL>
BITEXACT_HD inline bool gemm_exact_round_normal(const std::int64_t* w, int n, int e, R& out) {
  using O = detail::ieee<R>;
  using B = typename O::bits_type;
  constexpr int frac_bits = O::precision - 1;
  std::uint64_t limb[NL];
  __int128 acc = 0;  // exact carry propagation into 64-bit limbs, modulo 2^(64 NL)
  for (int r = 0; r < NL; ++r) {
    if (2 * r < n) acc += static_cast<__int128>(w[2 * r]);
    if (2 * r + 1 < n) acc += static_cast<__int128>(w[2 * r + 1]) * (static_cast<__int128>(1) << 32);
    limb[r] = static_cast<std::uint64_t>(acc);
    acc >>= 64;  // arithmetic: floor
  }
  const std::uint64_t m = (limb[NL - 1] >> 63) ? ~std::uint64_t(0) : 0;  // negative: |N| = ~limbs + 1
  std::uint64_t carry = m & 1;
  for (int r = 0; r < NL; ++r) {
    const std::uint64_t v = (limb[r] ^ m) + carry;
    carry = (carry & (v == 0 ? 1u : 0u));
    limb[r] = v;
  }
  int h = NL - 1;
  while (h >= 0 && limb[h] == 0) --h;
  if (h < 0) return false;
  const int c = detail::clz64(limb[h]);
  std::uint64_t top = limb[h] << c;
  bool sticky = false;
  if (h >= 1) {
    if (c) top |= limb[h - 1] >> (64 - c);
    sticky = (c ? (limb[h - 1] << c) : limb[h - 1]) != 0;
    for (int r = 0; r < h - 1; ++r) sticky |= limb[r] != 0;
  }
  top |= sticky ? 1u : 0u;
  const int e_msb = e + 64 * h + 63 - c;
  if (e_msb < O::emin || e_msb > O::emax - 1) return false;
  const R f = static_cast<R>(top);  // correctly rounded (round to nearest even)
  const R two_m63 = detail::gemm_exact_from_bits<R>(B(O::bias - 63) << frac_bits);
  const R scale = detail::gemm_exact_from_bits<R>(B(e_msb + O::bias) << frac_bits);
  const R v = (f * two_m63) * scale;  // both exact: f * 2^-63 is in [1, 2], the result is normal
  out = m ? -v : v;
  return true;
}

/// gemm_exact_round_normal for N given as one signed 128-bit integer z (two limbs).
template <class R>
BITEXACT_HD inline bool gemm_exact_round_normal128(__int128 z, int e, R& out) {
  using O = detail::ieee<R>;
  using B = typename O::bits_type;
  constexpr int frac_bits = O::precision - 1;
  const bool neg = z < 0;
  const unsigned __int128 mag = neg ? -static_cast<unsigned __int128>(z) : static_cast<unsigned __int128>(z);
  const std::uint64_t hi = static_cast<std::uint64_t>(mag >> 64), lo = static_cast<std::uint64_t>(mag);
  if ((hi | lo) == 0) return false;
  const int c = hi ? detail::clz64(hi) : 64 + detail::clz64(lo);
  const unsigned __int128 sh = mag << c;
  const std::uint64_t top = static_cast<std::uint64_t>(sh >> 64) | (static_cast<std::uint64_t>(sh) != 0 ? 1u : 0u);
  const int e_msb = e + 127 - c;
  if (e_msb < O::emin || e_msb > O::emax - 1) return false;
  const R f = static_cast<R>(top);  // correctly rounded (round to nearest even)
  const R two_m63 = detail::gemm_exact_from_bits<R>(B(O::bias - 63) << frac_bits);
  const R scale = detail::gemm_exact_from_bits<R>(B(e_msb + O::bias) << frac_bits);
  const R v = (f * two_m63) * scale;
  out = neg ? -v : v;
  return true;
}

/// Limbs of 64 bits that hold, with a sign bit, every integer of the exact tier's digit sums:
/// |N| < K 2^(8 (S_a + S_b) - 3).
BITEXACT_HD inline int gemm_exact_limbs(int S_a, int S_b, std::size_t K) {
  int lk = 0;
  while (lk < 64 && (std::uint64_t(1) << lk) <= K) ++lk;
  return (8 * (S_a + S_b) - 3 + lk + 1 + 63) / 64;
}

/// gemm_exact_round_normal with the limb count chosen at run time (2 .. 4).
template <class R>
BITEXACT_HD inline bool gemm_exact_round_normal_any(const std::int64_t* w, int n, int e, int limbs, R& out) {
  if (limbs <= 2) return gemm_exact_round_normal<R, 2>(w, n, e, out);
  if (limbs == 3) return gemm_exact_round_normal<R, 3>(w, n, e, out);
  if (limbs == 4) return gemm_exact_round_normal<R, 4>(w, n, e, out);
  return false;
}

namespace detail {
template <class T>
BITEXACT_HD inline bool gemm_exact_negative_zero_product(T a, T b) {
  const decomposed<T> da = decompose(a), db = decompose(b);
  if (!da.finite || !db.finite) return false;
  if (da.mant != 0 && db.mant != 0) return false;
  return da.negative != db.negative;
}
}  // namespace detail

/// Whether every product opA[i][k] * opB[k][j], k < K, is a -0 (K >= 1): the sign of an exact
/// zero sum under the accumulator's rule. Stops at the first product that is not.
template <class T, class GetA, class GetB>
BITEXACT_HD inline bool gemm_exact_all_negative_zero(std::size_t K, GetA a, GetB b) {
  if (K == 0) return false;
  for (std::size_t k = 0; k < K; ++k)
    if (!detail::gemm_exact_negative_zero_product<T>(a(k), b(k))) return false;
  return true;
}

/// The epilogue rule (see the top of this file) given the exact sum in `acc` (which holds every
/// product of the dot, or its integer value plus note_inputs()).
template <class T>
BITEXACT_HD inline T gemm_exact_epilogue(exact_accumulator<T>& acc, T alpha, T beta, T c_old) {
  if (alpha == T(1)) {
    if (beta != T(0)) acc.add_product(beta, c_old);
    return acc.round();
  }
  const T s = acc.round();
  exact_accumulator<T> out;
  out.add_product(alpha, s);
  if (beta != T(0)) out.add_product(beta, c_old);
  return out.round();
}

/// C for alpha == 0 (A and B are not read).
template <class T>
BITEXACT_HD inline T gemm_exact_alpha_zero(T beta, T c_old) {
  if (beta == T(0)) return T(0);
  exact_accumulator<T> out;
  out.add_product(beta, c_old);
  return out.round();
}

// ---- The certified double filter (float and bfloat16 inputs; cpu/gemm_exact.hpp) ----
// Every product of two floats is exact in double (48-bit significands, exponents from -298 to
// 256), so the fixed-order double GEMM of the widened inputs (core/gemm_order.hpp: per chunk of
// L <= gemm_k_chunk indices one FMA chain from +0, whose first step is exact, then the c chunk
// partials folded left to right) rounds each term's running sum at most h = (L - 1) + (c - 1)
// times, so (the standard bound for a summation tree of depth h) |P - S| <= gamma_h *
// sum_k |a_k b_k| <= gamma_h * ||a||_2 * ||b||_2 = E (gamma_h = h u / (1 - h u), u = 2^-53; the
// second step is Cauchy-Schwarz). Where every real in [P - E, P + E] rounds to the same float,
// that float is round(S) - the exact tier's value - with no integer GEMM. An interval that holds
// a rounding boundary or zero (an exact zero's sign needs the terms) is not certified: that
// element goes to the integer path. On normal(0,1) data about one element in 10^4 does.

/// gamma_h rounded up for the fixed-order sum of K >= 1 products, h = min(K, gemm_k_chunk) +
/// ceil(K / gemm_k_chunk) (one more than the depth), for K <= 2^32 (h u <= 2^-21, so
/// 1 / (1 - h u) < 1 + 2^-20).
inline double gemm_exact_filter_gamma(std::size_t K) {
  return summation_gamma(std::min(K, gemm_k_chunk) + (K + gemm_k_chunk - 1) / gemm_k_chunk);
}

/// An upper bound on ||x||_2 from `sumsq`, a double sum (any order) of K exact squares x_k^2:
/// the sum is within gamma_K of the true one, and the three roundings here are covered by 2^-50.
inline double gemm_exact_filter_norm(double sumsq, std::size_t K) {
  return std::sqrt(sumsq * (1.0 + static_cast<double>(K) * 0x1p-51)) * (1.0 + 0x1p-50);
}

/// The exact tier's float epilogue (the rules at the top of this file) from the filter's P and
/// E: true and `out` when certified, false when the element needs the integer path.
///   alpha == 1: round(S + beta C_old): beta C_old is exact in double; P + beta C_old is rounded
///     once more (error <= 2^-52 |q|), so the interval grows by that.
///   otherwise:  round(alpha round(S) + beta C_old): round(S) certified as above, then alpha r and
///     beta C_old are exact doubles whose sum is taken only when it is exact (TwoSum error 0) and
///     nonzero, and then rounded once to float.
inline bool gemm_exact_filter_element(double p, double e, float alpha, float beta, float c_old, float& out) {
  // A NaN or Inf C_old (beta != 0) makes q, or s and its TwoSum error, NaN or Inf: not certified.
  const double y = beta == 0.0f ? 0.0 : static_cast<double>(beta) * static_cast<double>(c_old);
  if (alpha == 1.0f) {
    if (beta == 0.0f) return certified_float(p, e, out);
    const double q = p + y;
    return certified_float(q, e + std::fabs(q) * 0x1p-52, out);
  }
  float r;
  if (!certified_float(p, e, r) || !(std::fabs(r) <= std::numeric_limits<float>::max())) return false;
  const double x = static_cast<double>(alpha) * static_cast<double>(r);
  double err;
  const double s = two_sum(x, y, err);
  if (s == 0.0 || err != 0.0) return false;
  out = static_cast<float>(s);
  return true;
}

/// One step of the compensated dot product (Dot2 of Ogita, Rump and Oishi, with the product p
/// exact in double): the running sum by TwoSum, its error added to comp, |p| to abs_sum. No
/// branches: a row of lanes vectorizes.
inline void gemm_exact_dot2_add(double& sum, double& comp, double& abs_sum, double p) {
  double err;
  sum = two_sum(sum, p, err);
  comp += err;
  abs_sum += std::fabs(p);
}

/// The end of a Dot2 of K products: q = sum + comp, with |q - S| <= u |q| (1 + u) +
/// gamma_{K-1}^2 sum_k |p_k| (their Sum2 bound), which the radius below exceeds with margin, so
/// only a value within about 2^-51 of a rounding boundary (or zero) is not certified.
inline bool gemm_exact_dot2_finish(double sum, double comp, double abs_sum, std::size_t K, float alpha, float beta,
                                   float c_old, float& out) {
  if (K == 0 || K > (std::size_t(1) << 32) || !(abs_sum < 1e300)) return false;  // NaN or Inf inputs
  const double q = sum + comp;
  const double g = static_cast<double>(K) * 0x1p-52;
  return gemm_exact_filter_element(q, std::fabs(q) * 0x1p-51 + 2.0 * g * g * abs_sum, alpha, beta, c_old, out);
}

/// One element by Dot2: for the few elements the GEMM filter leaves, 20 times the exact
/// accumulator's speed.
template <class GetA, class GetB>
inline bool gemm_exact_filter_dot2(std::size_t K, GetA a, GetB b, float alpha, float beta, float c_old, float& out) {
  double sum = 0.0, comp = 0.0, abs_sum = 0.0;
  for (std::size_t k = 0; k < K; ++k)
    gemm_exact_dot2_add(sum, comp, abs_sum, static_cast<double>(a(k)) * static_cast<double>(b(k)));
  return gemm_exact_dot2_finish(sum, comp, abs_sum, K, alpha, beta, c_old, out);
}

// ---- The split filter (double inputs; cpu/gemm_exact.hpp) ----
// Double products are not exact in double, so the float filter's one GEMM cannot certify a
// double result: its error bound is always wider than half an ulp. The split filter cuts each
// row i of op(A) at its exponent ea_i (max_k |a_ik| < 2^ea_i) into A = A1 + A2 + A3, A1 on the
// grid 2^(ea_i - sa) (|A1| <= 2^ea_i), A2 on 2^(ea_i - 2 sa), A3 the rest, and each column j of
// op(B) at eb_j into B = B1 + B2, B1 on the grid 2^(eb_j - sb). With sa + sb = 53 -
// ceil(log2 K), A1 B1 and A2 B1 are sums of K integers (times a power of two) below 2^53: exact in
// double in any order. So S = A1 B1 + A2 B1 + (A B2 + A3 B1), and only the last term, of relative
// size 2^-min(sb, 2 sa) (about 2^-28 at K = 1024), is rounded: its fixed-order GEMM (depth 2K)
// is within gamma_h (||a|| ||b2|| + ||a3|| ||b1||) of the true value, plus (2K + 2h) 2^-1074 for
// products and sums that underflow. Where every real within that radius of the double-double
// sum of the three rounds to one double, that double is round(S). Three GEMMs of depth K, K and
// 2K: the exact tier's dgemm at 4.7x fixed_order, where the integer path took 13.5x
// (gemm_exact_bench, 1024^3, AMD EPYC).
// Rows or columns with a zero, non-finite or out-of-range maximum are left to the integer path.

/// Slice widths of the split filter for depth K (1 <= K <= gemm_exact_split_max_k).
struct gemm_exact_split_bits {
  int sa, sb;
};
inline constexpr std::size_t gemm_exact_split_max_k = std::size_t(1) << 20;
inline gemm_exact_split_bits gemm_exact_split_bits_for(std::size_t K) {
  int lk = 0;
  while ((std::size_t(1) << lk) < K) ++lk;
  const int t = 53 - lk;
  return {t / 3, t - t / 3};
}

/// The exponents a row's (column's) largest magnitude may have for the split filter: every
/// scaling, grid and bound below then stays normal and finite.
inline constexpr int gemm_exact_split_min_exp = -400, gemm_exact_split_max_exp = 400;

/// e with max_abs < 2^e <= 2 max_abs, or gemm_exact_split_unfit when max_abs is zero, not finite
/// or outside the range above.
inline constexpr int gemm_exact_split_unfit = -100000;
inline int gemm_exact_split_exponent(double max_abs) {
  if (!(max_abs > 0.0) || !(max_abs <= std::numeric_limits<double>::max())) return gemm_exact_split_unfit;
  const int e = std::ilogb(max_abs) + 1;
  return e < gemm_exact_split_min_exp || e > gemm_exact_split_max_exp ? gemm_exact_split_unfit : e;
}

/// x rounded to the grid 2^g, given sigma = 1.5 * 2^(g + 52) and |x| <= 2^(g + 51): x + sigma
/// stays in sigma's binade, whose spacing is 2^g. Exact, and x minus it is exact too.
inline double gemm_exact_split_grid(double x, double sigma) { return (x + sigma) - sigma; }

/// A short double-double sum of exact terms: s + comp is their sum but for comp's own roundings,
/// which radius() bounds (at most 6 terms). When comp took no rounding and no product underflowed,
/// s + comp is the exact sum and its one rounding (ties to even included) is the answer.
struct gemm_exact_dd_sum {
  double s = 0.0, comp = 0.0, abs_err = 0.0, underflow = 0.0;
  bool comp_inexact = false;
  void add(double t) {
    double err, comp_err;
    s = two_sum(s, t, err);
    comp = two_sum(comp, err, comp_err);
    comp_inexact |= comp_err != 0.0;
    abs_err += std::fabs(err);
  }
  /// x * y as two exact terms (TwoProduct; exact unless |x y| < 2^-969, where the error term
  /// may lose up to 2^-1074, which radius() then covers).
  void add_product(double x, double y) {
    const double p = x * y;
    add(p);
    add(std::fma(x, y, -p));
    underflow += std::fabs(p) < 0x1p-960 ? 0x1p-1073 : 0.0;
  }
  double radius(double e) const { return e + (comp_inexact ? abs_err * 0x1p-49 : 0.0) + underflow; }
  bool certify(double e, double& out) const {
    const double r = radius(e);
    if (r == 0.0) {  // s + comp is exact: its rounding is the answer (not zero, whose sign needs the terms)
      out = s + comp;
      const double a = std::fabs(out);
      return (a > 0.0) & (a <= std::numeric_limits<double>::max());
    }
    return certified_double(s, comp, r, out);
  }
};

/// The exact tier's double epilogue (the rules at the top of this file) from exact terms t1, t2
/// and a term r within e of the rest of S: true and `out` when certified, false when the element
/// needs the integer path or the exact accumulator.
///   alpha == 1: round(S + beta C_old), beta C_old as two exact terms (TwoProduct).
///   otherwise:  round(S) certified first, then alpha round(S) + beta C_old as four exact terms.
inline bool gemm_exact_split_element(double t1, double t2, double r, double e, double alpha, double beta,
                                     double c_old, double& out) {
  gemm_exact_dd_sum sum;
  sum.add(t1);
  sum.add(t2);
  sum.add(r);
  if (alpha == 1.0) {
    if (beta != 0.0) sum.add_product(beta, c_old);
    return sum.certify(e, out);
  }
  double rs;
  if (!sum.certify(e, rs)) return false;
  gemm_exact_dd_sum outer;
  outer.add_product(alpha, rs);
  if (beta != 0.0) outer.add_product(beta, c_old);
  return outer.certify(0.0, out);
}

/// One step of Dot2 for double factors: the product split by TwoProduct, both parts' rounding
/// errors into comp (Ogita, Rump and Oishi's Dot2).
inline void gemm_exact_dot2_add_product(double& sum, double& comp, double& abs_sum, double a, double b) {
  const double p = a * b;
  const double ep = std::fma(a, b, -p);
  double err;
  sum = two_sum(sum, p, err);
  comp += err + ep;
  abs_sum += std::fabs(p);
}

/// One double element by Dot2: |sum + comp - S| <= gamma_K^2 sum_k |p_k| (their bound, taken
/// as 2 (K 2^-52)^2), plus 2^-1073 per product for TwoProduct under underflow. For the few
/// elements the split filter leaves; false sends the element to the exact accumulator.
template <class GetA, class GetB>
inline bool gemm_exact_split_dot2(std::size_t K, GetA a, GetB b, double alpha, double beta, double c_old,
                                  double& out) {
  if (K == 0 || K > (std::size_t(1) << 32)) return false;
  double sum = 0.0, comp = 0.0, abs_sum = 0.0;
  for (std::size_t k = 0; k < K; ++k) gemm_exact_dot2_add_product(sum, comp, abs_sum, a(k), b(k));
  if (!(abs_sum < 1e300)) return false;  // NaN, Inf or near overflow
  const double g = static_cast<double>(K) * 0x1p-52;
  const double e = 2.0 * g * g * abs_sum + static_cast<double>(K) * 0x1p-1072;
  return gemm_exact_split_element(sum, comp, 0.0, e, alpha, beta, c_old, out);
}

/// The exact accumulator path for one element: every product added one by one.
template <class T, class GetA, class GetB>
BITEXACT_HD inline T gemm_exact_element_slow(std::size_t K, GetA a, GetB b, T alpha, T beta, T c_old) {
  exact_accumulator<T> acc;
  for (std::size_t k = 0; k < K; ++k) acc.add_product(static_cast<T>(a(k)), static_cast<T>(b(k)));
  return gemm_exact_epilogue(acc, alpha, beta, c_old);
}

/// The integer path's epilogue for one element: N * 2^e is the exact sum (N in n words of
/// weight 2^(32 q), any int64 values whose carries fit in n words); `all_neg_zero` is
/// gemm_exact_all_negative_zero (only consulted when N == 0); limbs is gemm_exact_limbs().
template <class T, class AllNegZero>
BITEXACT_HD inline T gemm_exact_element_from_words(const std::int64_t* words_in, int n, int e, int limbs,
                                                   std::size_t K, T alpha, T beta, T c_old,
                                                   AllNegZero all_neg_zero) {
  if (alpha == T(1) && beta == T(0)) {
    T fast;
    if (gemm_exact_round_normal_any<T>(words_in, n, e, limbs, fast)) return fast;
  }
  std::int64_t words[gemm_exact_max_words + 1];
  for (int q = 0; q < n; ++q) words[q] = words_in[q];
  gemm_exact_normalize(words, n);
  if (alpha == T(1) && beta == T(0)) {
    const gemm_exact_rounded<T> r = gemm_exact_round<T>(words, n, e);
    if (!r.zero) return r.value;
    return all_neg_zero() ? -T(0) : T(0);
  }
  exact_accumulator<T> acc;
  // Added as sign and magnitude: a negative N's sign-extension words may lie above the
  // accumulator's range although N itself is inside it.
  std::int64_t mag[gemm_exact_max_words + 1];
  const bool negative = gemm_exact_magnitude(words, n, mag);
  bool nonzero = false;
  for (int q = 0; q < n; ++q) nonzero |= mag[q] != 0;
  for (int q = 0; q < n; ++q)
    if (mag[q] != 0) acc.add_scaled_integer(negative ? -mag[q] : mag[q], e + 32 * q);
  acc.note_inputs(K > 0, K > 0 && !nonzero && all_neg_zero(), false, false, false);
  return gemm_exact_epilogue(acc, alpha, beta, c_old);
}

}  // namespace core
}  // namespace bitexact
