// bitexact/core/exact.hpp - the exact accumulator: an order-independent long fixed-point sum.
//
// exact_accumulator<T> (T = float or double) holds the exact sum of every value and every
// product of two T values added to it, as a two's-complement fixed-point number of 32-bit
// digits, plus flags for NaN, +Inf, -Inf and signed zeros. Adding is integer addition, so the
// state after any set of adds and merges depends only on the multiset of values added: any
// order, any partition (threads, CUDA blocks, MPI ranks) gives the same bits.
//
// round() returns the correctly rounded (to nearest, ties to even) value of the exact sum in T,
// with these rules for the special cases:
//   - any NaN added, or both +Inf and -Inf: the canonical quiet NaN;
//   - otherwise any +Inf (-Inf): +Inf (-Inf);
//   - an exact sum that overflows T rounds to +-Inf as IEEE rounding says;
//   - an exact sum of zero: -0.0 if at least one value was added and every value was -0.0
//     (a product's zero sign is the xor of the factors' signs), else +0.0.
//
// Range: digits cover every bit of a product of two finite T values (down to 2^-298 for float,
// 2^-2148 for double) up to 2^64 times the largest such product, so nothing is ever lost.
// Size: 21 digits (float), 135 digits (double). Usable in host, SIMD and CUDA device code.
// Serialized form (to_bytes/from_bytes): 16-byte header "BXA1", type size, version, flags,
// then the normalized digits as little-endian int64; identical on every platform.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "config.hpp"

namespace bitexact {
namespace core {
namespace detail {

/// 64x64 -> 128-bit unsigned product.
BITEXACT_HD inline void mul_64x64(std::uint64_t a, std::uint64_t b, std::uint64_t& hi, std::uint64_t& lo) {
#if defined(__CUDA_ARCH__)
  lo = a * b;
  hi = __umul64hi(a, b);
#elif defined(__SIZEOF_INT128__)
  const unsigned __int128 p = static_cast<unsigned __int128>(a) * b;
  lo = static_cast<std::uint64_t>(p);
  hi = static_cast<std::uint64_t>(p >> 64);
#else
  const std::uint64_t a0 = a & 0xffffffffu, a1 = a >> 32, b0 = b & 0xffffffffu, b1 = b >> 32;
  const std::uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
  const std::uint64_t mid = (p00 >> 32) + (p01 & 0xffffffffu) + (p10 & 0xffffffffu);
  lo = (mid << 32) | (p00 & 0xffffffffu);
  hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
#endif
}

BITEXACT_HD inline int clz64(std::uint64_t x) {
#if defined(__CUDA_ARCH__)
  return __clzll(static_cast<long long>(x));
#elif defined(__GNUC__) || defined(__clang__)
  return __builtin_clzll(x);
#else
  int n = 0;
  while (!(x & (std::uint64_t(1) << 63))) { x <<= 1; ++n; }
  return n;
#endif
}

/// Decomposition of a finite T: |x| = mant * 2^exp, mant an integer below 2^digits.
template <class T>
struct ieee;
template <>
struct ieee<float> {
  using bits_type = std::uint32_t;
  static constexpr int precision = 24, emin = -126, emax = 127, bias = 127;
  static constexpr int lowest_product_exp = -298;  // (2^-149)^2
  static constexpr int digits = 21;                // (2^64 * 2^256 .. 2^-298) / 32, rounded up
};
template <>
struct ieee<double> {
  using bits_type = std::uint64_t;
  static constexpr int precision = 53, emin = -1022, emax = 1023, bias = 1023;
  static constexpr int lowest_product_exp = -2148;  // (2^-1074)^2
  static constexpr int digits = 135;                // (2^64 * 2^2048 .. 2^-2148) / 32, rounded up
};

template <class T>
struct decomposed {
  std::uint64_t mant;  // 0 for zeros
  int exp;
  bool negative;
  bool finite;
  bool nan;
};
template <class T>
BITEXACT_HD inline decomposed<T> decompose(T x) {
  using I = ieee<T>;
  typename I::bits_type b;
  std::memcpy(&b, &x, sizeof b);
  constexpr int frac_bits = I::precision - 1;
  constexpr int total = static_cast<int>(sizeof(T) * 8);
  const std::uint64_t bits = b;
  const int e = static_cast<int>((bits >> frac_bits) & ((std::uint64_t(1) << (total - 1 - frac_bits)) - 1));
  const std::uint64_t frac = bits & ((std::uint64_t(1) << frac_bits) - 1);
  decomposed<T> d{};
  d.negative = (bits >> (total - 1)) != 0;
  const int emask = (1 << (total - 1 - frac_bits)) - 1;
  if (e == emask) {
    d.finite = false;
    d.nan = frac != 0;
    return d;
  }
  d.finite = true;
  d.mant = e ? (frac | (std::uint64_t(1) << frac_bits)) : frac;
  d.exp = (e ? e : 1) - I::bias - frac_bits;
  return d;
}

}  // namespace detail

template <class T>
class exact_accumulator {
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value,
                "exact_accumulator<T>: T must be float or double");
  using I = detail::ieee<T>;

 public:
  using value_type = T;
  static constexpr int digit_count = I::digits;
  static constexpr int base_exp = I::lowest_product_exp;  // weight of bit 0 of digit 0
  static constexpr std::size_t serialized_size = 16 + 8 * static_cast<std::size_t>(I::digits);

  BITEXACT_HD exact_accumulator() {
    for (int k = 0; k < digit_count; ++k) d_[k] = 0;
  }

  /// Adds x exactly.
  BITEXACT_HD void add(T x) {
    const detail::decomposed<T> d = detail::decompose(x);
    flags_ |= any_input;
    if (!d.finite) return add_special(d.nan, d.negative);
    if (d.mant == 0) {
      if (!d.negative) flags_ |= saw_non_negative_zero;
      return;
    }
    flags_ |= saw_non_negative_zero;
    add_magnitude(0, d.mant, d.exp, d.negative);
  }

  /// Adds the exact product a*b (never rounded).
  BITEXACT_HD void add_product(T a, T b) {
    const detail::decomposed<T> da = detail::decompose(a), db = detail::decompose(b);
    flags_ |= any_input;
    const bool neg = da.negative != db.negative;
    if (!da.finite || !db.finite) {
      if (da.nan || db.nan) return add_special(true, neg);
      const bool zero = (da.finite && da.mant == 0) || (db.finite && db.mant == 0);
      return add_special(zero, neg);  // Inf * 0 is NaN, else +-Inf
    }
    if (da.mant == 0 || db.mant == 0) {
      if (!neg) flags_ |= saw_non_negative_zero;
      return;
    }
    flags_ |= saw_non_negative_zero;
    std::uint64_t hi, lo;
    detail::mul_64x64(da.mant, db.mant, hi, lo);
    add_magnitude(hi, lo, da.exp + db.exp, neg);
  }

  /// Adds the signed integer m * 2^e exactly. Requires e >= base_exp and |m| * 2^e within the
  /// accumulator's range (used by kernels that pre-accumulate exactly in wider registers).
  BITEXACT_HD void add_scaled_integer(std::int64_t m, int e) {
    if (m == 0) return;
    flags_ |= any_input | saw_non_negative_zero;
    const bool neg = m < 0;
    const std::uint64_t mag = neg ? (~static_cast<std::uint64_t>(m) + 1) : static_cast<std::uint64_t>(m);
    add_magnitude(0, mag, e, neg);
  }

  /// Marks that values were added whose contribution was accumulated elsewhere; `all_negative_zero`
  /// says whether every one of them was -0.0 (see round()). Used with add_scaled_integer.
  BITEXACT_HD void note_inputs(bool any, bool all_negative_zero, bool nan, bool pos_inf, bool neg_inf) {
    if (any) flags_ |= any_input;
    if (any && !all_negative_zero) flags_ |= saw_non_negative_zero;
    if (nan) flags_ |= saw_nan;
    if (pos_inf) flags_ |= saw_pos_inf;
    if (neg_inf) flags_ |= saw_neg_inf;
  }

  /// Adds another accumulator's exact sum (and its flags).
  BITEXACT_HD void merge(const exact_accumulator& o) {
    exact_accumulator t = o;
    t.normalize();
    normalize();
    // Normalized digits below the top are in [0, 2^32): their sums cannot overflow. The top
    // digit carries the sign; an accumulator within its documented range has |top| < 2^31
    // (from_bytes refuses others), and wrapping addition keeps even an out-of-range merge defined.
    for (int k = 0; k < digit_count - 1; ++k) d_[k] += t.d_[k];
    d_[digit_count - 1] = static_cast<std::int64_t>(static_cast<std::uint64_t>(d_[digit_count - 1]) +
                                                    static_cast<std::uint64_t>(t.d_[digit_count - 1]));
    pending_ = 2;
    flags_ |= t.flags_;
  }

  /// The correctly rounded value of the exact sum in R (default T; R = float on a double
  /// accumulator rounds once, directly from the exact value).
  template <class R = T>
  BITEXACT_HD R round() const {
    using O = detail::ieee<R>;
    using B = typename O::bits_type;
    constexpr int total = static_cast<int>(sizeof(R) * 8);
    constexpr int frac_bits = O::precision - 1;
    const B sign_bit = B(1) << (total - 1);
    const B inf_bits = B(((B(1) << (total - 1 - frac_bits)) - 1)) << frac_bits;
    if ((flags_ & saw_nan) || ((flags_ & saw_pos_inf) && (flags_ & saw_neg_inf)))
      return from_bits<R>(inf_bits | (B(1) << (frac_bits - 1)));
    if (flags_ & saw_pos_inf) return from_bits<R>(inf_bits);
    if (flags_ & saw_neg_inf) return from_bits<R>(inf_bits | sign_bit);

    exact_accumulator t = *this;
    t.normalize();
    const bool negative = t.d_[digit_count - 1] < 0;
    if (negative) {
      for (int k = 0; k < digit_count; ++k) t.d_[k] = -t.d_[k];
      t.normalize();
    }
    int h = digit_count - 1;
    while (h >= 0 && t.d_[h] == 0) --h;
    if (h < 0) {
      const bool neg_zero = (flags_ & any_input) && !(flags_ & saw_non_negative_zero);
      return from_bits<R>(neg_zero ? sign_bit : B(0));
    }
    const B sign = negative ? sign_bit : B(0);
    const int msb = 32 * h + 63 - detail::clz64(static_cast<std::uint64_t>(t.d_[h]));
    const int e_msb = msb + base_exp;
    if (e_msb > O::emax) return from_bits<R>(inf_bits | sign);
    int q = e_msb - (O::precision - 1);
    if (q < O::emin - (O::precision - 1)) q = O::emin - (O::precision - 1);
    const int bq = q - base_exp;  // bit index of the result's last place; >= 1 by the range
    std::uint64_t mant = t.bits(bq, msb - bq + 1);
    const bool round_bit = t.bits(bq - 1, 1) != 0;
    const bool sticky = t.any_below(bq - 1);
    if (round_bit && (sticky || (mant & 1))) ++mant;
    if (mant >> O::precision) {  // carried into a new binade
      mant >>= 1;
      ++q;
    }
    if (mant >> frac_bits) {  // normal
      const int biased = q + frac_bits + O::bias;
      if (biased >= (1 << (total - 1 - frac_bits)) - 1) return from_bits<R>(inf_bits | sign);
      return from_bits<R>(sign | (B(biased) << frac_bits) | (B(mant) & ((B(1) << frac_bits) - 1)));
    }
    return from_bits<R>(sign | B(mant));  // subnormal
  }

  /// True when the two accumulators hold the same exact value and the same flags.
  BITEXACT_HD bool same_value(const exact_accumulator& o) const {
    exact_accumulator a = *this, b = o;
    a.normalize();
    b.normalize();
    if (a.flags_ != b.flags_) return false;
    for (int k = 0; k < digit_count; ++k)
      if (a.d_[k] != b.d_[k]) return false;
    return true;
  }

  /// Writes serialized_size bytes (normalized, so equal values give equal bytes).
  BITEXACT_HD void to_bytes(unsigned char* out) const {
    exact_accumulator t = *this;
    t.normalize();
    const unsigned char head[8] = {'B', 'X', 'A', '1', static_cast<unsigned char>(sizeof(T)), 1, 0, 0};
    for (int i = 0; i < 8; ++i) out[i] = head[i];
    put_le(out + 8, flags_);
    for (int k = 0; k < digit_count; ++k) put_le(out + 16 + 8 * k, static_cast<std::uint64_t>(t.d_[k]));
  }

  /// Reads what to_bytes wrote. Returns false (and leaves *this unchanged) when the bytes are
  /// not a serialized exact_accumulator<T> of this version.
  BITEXACT_HD bool from_bytes(const unsigned char* in, std::size_t size) {
    if (size != serialized_size || in[0] != 'B' || in[1] != 'X' || in[2] != 'A' || in[3] != '1' ||
        in[4] != sizeof(T) || in[5] != 1 || in[6] != 0 || in[7] != 0)
      return false;
    const std::uint64_t f = get_le(in + 8);
    if (f & ~std::uint64_t(all_flags)) return false;
    exact_accumulator t;
    for (int k = 0; k < digit_count; ++k) {
      const std::uint64_t v = get_le(in + 16 + 8 * k);
      if (k + 1 < digit_count && (v >> 32)) return false;  // not normalized
      // The top digit is a sign extension within the documented range: a signed 32-bit value.
      if (k + 1 == digit_count && (v + (std::uint64_t(1) << 31)) >> 32) return false;
      t.d_[k] = static_cast<std::int64_t>(v);
    }
    t.flags_ = static_cast<std::uint32_t>(f);
    *this = t;
    return true;
  }

  /// Raw access for kernels that merge digit-wise (e.g. integer atomics on a GPU): the value
  /// is sum_k digit(k) * 2^(32k + base_exp). Digits are signed and may exceed 32 bits until
  /// normalized; flags() are OR-merged.
  BITEXACT_HD std::int64_t digit(int k) const { return d_[k]; }
  BITEXACT_HD std::uint32_t flags() const { return flags_; }
  BITEXACT_HD void normalize() {
    std::int64_t carry = 0;
    for (int k = 0; k < digit_count - 1; ++k) {
      const std::int64_t v = d_[k] + carry;
      d_[k] = v & 0xffffffff;
      carry = v >> 32;  // arithmetic shift: floor division by 2^32
    }
    d_[digit_count - 1] += carry;
    pending_ = 0;
  }
  /// Builds an accumulator from raw digits (any values whose carries fit) and flags.
  BITEXACT_HD static exact_accumulator from_digits(const std::int64_t* digits, std::uint32_t flags) {
    exact_accumulator a;
    for (int k = 0; k < digit_count; ++k) a.d_[k] = digits[k];
    a.flags_ = flags & all_flags;
    a.pending_ = 2;
    a.normalize();
    return a;
  }

  enum : std::uint32_t {
    saw_nan = 1,
    saw_pos_inf = 2,
    saw_neg_inf = 4,
    saw_non_negative_zero = 8,  // some input was not -0.0
    any_input = 16,
    all_flags = 31
  };

 private:
  BITEXACT_HD void add_special(bool nan, bool negative) {
    flags_ |= saw_non_negative_zero;
    if (nan)
      flags_ |= saw_nan;
    else
      flags_ |= negative ? saw_neg_inf : saw_pos_inf;
  }

  /// Adds +-(hi:lo) * 2^e; (hi:lo) < 2^106, e >= base_exp.
  BITEXACT_HD void add_magnitude(std::uint64_t hi, std::uint64_t lo, int e, bool negative) {
    const int p = e - base_exp;
    const int k = p >> 5, s = p & 31;
    const std::uint64_t w0 = lo << s;
    const std::uint64_t w1 = s ? ((hi << s) | (lo >> (64 - s))) : hi;
    const std::uint64_t w2 = s ? (hi >> (64 - s)) : 0;
    const std::uint64_t piece[5] = {w0 & 0xffffffffu, w0 >> 32, w1 & 0xffffffffu, w1 >> 32, w2};
    for (int j = 0; j < 5; ++j) {
      if (!piece[j]) continue;
      const std::int64_t v = static_cast<std::int64_t>(piece[j]);
      d_[k + j] += negative ? -v : v;
    }
    if (++pending_ >= (1u << 30)) normalize();
  }

  /// `count` (<= 64) bits starting at bit index `from` of the normalized non-negative value
  /// (bits below index 0 are dropped: the result then holds bits 0 .. from + count - 1). Reads
  /// the (at most three) 32-bit digits that hold them, not bit by bit.
  BITEXACT_HD std::uint64_t bits(int from, int count) const {
    if (from < 0) {
      count += from;
      from = 0;
    }
    if (count <= 0) return 0;
    const int k = from >> 5, s = from & 31;
    const std::uint64_t lo = digit32(k) | (digit32(k + 1) << 32);
    const std::uint64_t v = s ? (lo >> s) | (digit32(k + 2) << (64 - s)) : lo;
    return count >= 64 ? v : v & ((std::uint64_t(1) << count) - 1);
  }
  /// Digit j's 32 bits (0 above the top digit).
  BITEXACT_HD std::uint64_t digit32(int j) const {
    return j < digit_count ? static_cast<std::uint64_t>(d_[j]) & 0xffffffffu : 0;
  }
  /// Whether any bit below index `to` is set.
  BITEXACT_HD bool any_below(int to) const {
    if (to <= 0) return false;
    const int k = to >> 5;
    for (int j = 0; j < k; ++j)
      if (d_[j]) return true;
    const std::uint64_t mask = (std::uint64_t(1) << (to & 31)) - 1;
    return (static_cast<std::uint64_t>(d_[k]) & mask) != 0;
  }
  template <class R, class B>
  BITEXACT_HD static R from_bits(B b) {
    R r;
    std::memcpy(&r, &b, sizeof r);
    return r;
  }
  BITEXACT_HD static void put_le(unsigned char* p, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
  }
  BITEXACT_HD static std::uint64_t get_le(const unsigned char* p) {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
    return v;
  }

  std::int64_t d_[I::digits];
  std::uint32_t pending_ = 0;
  std::uint32_t flags_ = 0;
};

}  // namespace core
}  // namespace bitexact
