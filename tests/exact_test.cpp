// exact_test: the exact accumulator (core/exact.hpp) against an independent big-integer oracle,
// and the canonical tree of core/fixed_order.hpp against its definition.
//
// The oracle shares no code with the library: it decomposes values with std::frexp, sums
// magnitudes in a plain vector of 32-bit limbs, and checks the rounded result by comparing the
// exact sum with the result and both of its neighbours (std::nextafter), ties to even.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <bitexact/core/exact.hpp>
#include <bitexact/core/fixed_order.hpp>
#include <bitexact/core/scatter.hpp>
#include <bitexact/reference/reduce.hpp>

namespace {

using bitexact::core::exact_accumulator;

// ---------------------------------------------------------------- big-integer oracle
// Non-negative big integers in base 2^32; values are scaled by 2^kShift.
constexpr int kShift = 2300;

struct big {
  std::vector<std::uint32_t> limb;  // little-endian
  void trim() {
    while (!limb.empty() && limb.back() == 0) limb.pop_back();
  }
  bool zero() const { return limb.empty(); }
};

int cmp(const big& a, const big& b) {
  if (a.limb.size() != b.limb.size()) return a.limb.size() < b.limb.size() ? -1 : 1;
  for (std::size_t i = a.limb.size(); i-- > 0;)
    if (a.limb[i] != b.limb[i]) return a.limb[i] < b.limb[i] ? -1 : 1;
  return 0;
}
big add(const big& a, const big& b) {
  big r;
  std::uint64_t c = 0;
  for (std::size_t i = 0; i < std::max(a.limb.size(), b.limb.size()) || c; ++i) {
    const std::uint64_t s = c + (i < a.limb.size() ? a.limb[i] : 0) + (i < b.limb.size() ? b.limb[i] : 0);
    r.limb.push_back(static_cast<std::uint32_t>(s));
    c = s >> 32;
  }
  r.trim();
  return r;
}
big sub(const big& a, const big& b) {  // a >= b
  big r;
  std::int64_t br = 0;
  for (std::size_t i = 0; i < a.limb.size(); ++i) {
    std::int64_t s = static_cast<std::int64_t>(a.limb[i]) - (i < b.limb.size() ? b.limb[i] : 0) - br;
    br = s < 0;
    if (s < 0) s += std::int64_t(1) << 32;
    r.limb.push_back(static_cast<std::uint32_t>(s));
  }
  r.trim();
  return r;
}
/// m * 2^(e + kShift) for an integer m < 2^64.
big shifted(std::uint64_t m, int e) {
  big r;
  const int sh = e + kShift;
  EXPECT_GE(sh, 0);
  r.limb.assign(static_cast<std::size_t>(sh / 32) + 4, 0);
  const int w = sh / 32, b = sh % 32;
  const unsigned __int128 v = static_cast<unsigned __int128>(m) << b;
  for (int i = 0; i < 4; ++i) r.limb[w + i] = static_cast<std::uint32_t>(v >> (32 * i));
  r.trim();
  return r;
}
big times(const big& a, std::uint64_t m) {  // a * m, m < 2^32 twice
  big r;
  const std::uint64_t lo = m & 0xffffffffu, hi = m >> 32;
  for (std::uint64_t part : {lo, hi}) {
    big t;
    std::uint64_t c = 0;
    for (std::uint32_t l : a.limb) {
      const std::uint64_t p = static_cast<std::uint64_t>(l) * part + c;
      t.limb.push_back(static_cast<std::uint32_t>(p));
      c = p >> 32;
    }
    if (c) t.limb.push_back(static_cast<std::uint32_t>(c));
    t.trim();
    if (part == hi && !t.zero()) t.limb.insert(t.limb.begin(), 0u);
    r = add(r, t);
  }
  return r;
}

/// A signed big number: positive and negative parts kept apart.
struct signed_big {
  big pos, neg;
  void add_value(bool negative, const big& v) { (negative ? neg : pos) = add(negative ? neg : pos, v); }
  // sign and magnitude of pos - neg
  bool negative() const { return cmp(pos, neg) < 0; }
  big magnitude() const { return negative() ? sub(neg, pos) : sub(pos, neg); }
};

/// |x| = m * 2^e with integer m (std::frexp, independent of the library).
template <class T>
void split(T x, std::uint64_t& m, int& e) {
  int ex = 0;
  const T f = std::frexp(std::fabs(x), &ex);  // |x| = f * 2^ex, f in [0.5, 1)
  constexpr int p = std::numeric_limits<T>::digits;
  m = static_cast<std::uint64_t>(std::ldexp(f, p));
  e = ex - p;
}

template <class T>
big magnitude_of(T x) {
  if (x == 0) return big{};
  std::uint64_t m;
  int e;
  split(x, m, e);
  return shifted(m, e);
}

template <class T>
std::uint64_t bits_of(T x) {
  std::uint64_t u = 0;
  std::memcpy(&u, &x, sizeof x);
  return u;
}

/// Exact sum (and the special-value summary) of values or products.
template <class T>
struct oracle {
  signed_big s;
  bool nan = false, pinf = false, ninf = false, any = false, all_neg_zero = true;

  void add(T x) {
    any = true;
    if (std::isnan(x)) { nan = true; all_neg_zero = false; return; }
    if (std::isinf(x)) { (x > 0 ? pinf : ninf) = true; all_neg_zero = false; return; }
    if (!(x == 0 && std::signbit(x))) all_neg_zero = false;
    if (x != 0) s.add_value(std::signbit(x), magnitude_of(x));
  }
  void add_product(T a, T b) {
    any = true;
    const bool neg = std::signbit(a) != std::signbit(b);
    if (std::isnan(a) || std::isnan(b)) { nan = true; all_neg_zero = false; return; }
    if (std::isinf(a) || std::isinf(b)) {
      all_neg_zero = false;
      if (a == 0 || b == 0) nan = true; else (neg ? ninf : pinf) = true;
      return;
    }
    if (a == 0 || b == 0) { if (!neg) all_neg_zero = false; return; }
    all_neg_zero = false;
    std::uint64_t ma, mb;
    int ea, eb;
    split(a, ma, ea);
    split(b, mb, eb);
    s.add_value(neg, times(shifted(ma, ea + eb), mb));
  }

  /// Checks that r is the correctly rounded value (ties to even) with the special rules.
  template <class R>
  ::testing::AssertionResult check(R r) const {
    if (nan || (pinf && ninf)) {
      if (std::isnan(r)) return ::testing::AssertionSuccess();
      return ::testing::AssertionFailure() << "want NaN, got " << r;
    }
    if (pinf || ninf) {
      if (std::isinf(r) && (r < 0) == ninf) return ::testing::AssertionSuccess();
      return ::testing::AssertionFailure() << "want " << (ninf ? "-" : "+") << "inf, got " << r;
    }
    const big mag = s.magnitude();
    if (mag.zero()) {
      const bool want_neg = any && all_neg_zero;
      if (r == 0 && std::signbit(r) == want_neg) return ::testing::AssertionSuccess();
      return ::testing::AssertionFailure() << "want " << (want_neg ? "-0" : "+0") << ", got " << r;
    }
    const bool neg = s.negative();
    if (r != 0 && std::signbit(r) != neg) return ::testing::AssertionFailure() << "wrong sign: " << r;
    const R a = std::fabs(r);
    const R maxv = std::numeric_limits<R>::max();
    // the rounding threshold to infinity: max + half an ulp of max
    const big max_b = magnitude_of(maxv);
    const big half_ulp = magnitude_of(static_cast<R>((maxv - std::nextafter(maxv, R(0))) / 2));
    const big inf_threshold = ::add(max_b, half_ulp);
    if (std::isinf(a)) {
      if (cmp(mag, inf_threshold) >= 0) return ::testing::AssertionSuccess();
      return ::testing::AssertionFailure() << "overflowed to inf but the exact sum is below the threshold";
    }
    if (cmp(mag, inf_threshold) >= 0) return ::testing::AssertionFailure() << "should have overflowed, got " << r;
    const big ra = magnitude_of(a);
    // distances to a and to its neighbours
    auto dist = [&](const big& v) { return cmp(mag, v) >= 0 ? sub(mag, v) : sub(v, mag); };
    const big d0 = dist(ra);
    for (R nb : {std::nextafter(a, R(0)), std::nextafter(a, std::numeric_limits<R>::infinity())}) {
      if (std::isinf(nb)) continue;
      if (a == 0 && nb == 0) continue;
      const int c = cmp(d0, dist(magnitude_of(nb)));
      if (c > 0) return ::testing::AssertionFailure() << r << " is not the nearest (neighbour " << nb << ")";
      if (c == 0) {  // tie: the even one (last bit of the encoding is the last mantissa bit)
        const bool a_even = (bits_of(a) & 1) == 0;
        if (!a_even) return ::testing::AssertionFailure() << "tie not broken to even: " << r << " vs " << nb;
      }
    }
    return ::testing::AssertionSuccess();
  }
};


// ---------------------------------------------------------------- data sets
template <class T>
T random_finite(std::mt19937_64& g, int emin, int emax) {
  std::uniform_int_distribution<int> e(emin, emax);
  std::uniform_real_distribution<T> f(T(1), T(2));
  T v = std::ldexp(f(g), e(g));
  return (g() & 1) ? -v : v;
}

template <class T>
std::vector<std::vector<T>> adversarial_sets(std::uint64_t seed) {
  using L = std::numeric_limits<T>;
  std::mt19937_64 g(seed);
  std::vector<std::vector<T>> sets;
  const int emin = L::min_exponent - L::digits;  // smallest subnormal exponent
  const int emax = L::max_exponent - 1;
  // mixed magnitudes over the whole range
  for (int r = 0; r < 8; ++r) {
    std::vector<T> v(1 + g() % 3000);
    for (auto& x : v) x = random_finite<T>(g, emin, emax - 2);
    sets.push_back(v);
  }
  // denormals only
  {
    std::vector<T> v(2000);
    for (auto& x : v) x = (g() & 1 ? -1 : 1) * L::denorm_min() * static_cast<T>(g() % 100000);
    sets.push_back(v);
  }
  // huge cancellation: pairs x, -x shuffled with a few tiny values
  for (int r = 0; r < 4; ++r) {
    std::vector<T> v;
    for (int i = 0; i < 1000; ++i) {
      const T x = random_finite<T>(g, -20, emax - 2);
      v.push_back(x);
      v.push_back(-x);
    }
    for (int i = 0; i < 3; ++i) v.push_back(random_finite<T>(g, emin, emin + 40));
    std::shuffle(v.begin(), v.end(), g);
    sets.push_back(v);
  }
  // ties: 1 + half an ulp (even -> 1), 1 + ulp + half ulp (-> 1 + 2 ulp), and just above a tie
  const T ulp = std::numeric_limits<T>::epsilon();
  sets.push_back({T(1), ulp / 2});
  sets.push_back({T(1), ulp, ulp / 2});
  sets.push_back({T(1), ulp / 2, L::denorm_min()});
  sets.push_back({T(1), ulp / 2, -L::denorm_min()});
  sets.push_back({L::max(), L::max(), -L::max()});              // overflow in the middle only
  sets.push_back({L::max(), L::max()});                          // rounded result overflows
  sets.push_back({-L::max(), -L::max() / 2});                    // negative overflow
  sets.push_back({L::max(), std::nextafter(L::max(), T(0)) - L::max() + L::max() / 2 / L::max()});
  // exactly at the overflow threshold (max + half ulp of max) rounds to inf
  sets.push_back({L::max(), (L::max() - std::nextafter(L::max(), T(0))) / 2});
  sets.push_back({L::max(), (L::max() - std::nextafter(L::max(), T(0))) / 2, -L::denorm_min()});
  // specials and zeros
  const T inf = L::infinity(), nan = L::quiet_NaN();
  sets.push_back({T(1), inf});
  sets.push_back({-inf, T(1)});
  sets.push_back({inf, -inf});
  sets.push_back({nan, T(1)});
  sets.push_back({-nan, inf});
  sets.push_back({T(-0.0), T(-0.0)});
  sets.push_back({T(-0.0), T(0.0)});
  sets.push_back({T(-0.0)});
  sets.push_back({T(1), T(-1)});
  sets.push_back({L::denorm_min(), -L::denorm_min(), T(-0.0)});
  return sets;
}

template <class T>
void check_sets() {
  int checked = 0;
  for (const auto& v : adversarial_sets<T>(42)) {
    exact_accumulator<T> acc;
    oracle<T> o;
    for (T x : v) {
      acc.add(x);
      o.add(x);
    }
    EXPECT_TRUE(o.check(acc.round())) << "set " << checked << " of size " << v.size();
    ++checked;
  }
  EXPECT_GT(checked, 30);
}

TEST(ExactAccumulator, SumsAreCorrectlyRoundedFloat) { check_sets<float>(); }
TEST(ExactAccumulator, SumsAreCorrectlyRoundedDouble) { check_sets<double>(); }

TEST(ExactAccumulator, KnownValues) {
  {
    exact_accumulator<float> a;
    a.add(1e30f);
    a.add(1.0f);
    a.add(-1e30f);
    EXPECT_EQ(a.round(), 1.0f);
  }
  {
    exact_accumulator<float> a;
    a.add(1.0f);
    a.add(0x1p-24f);  // exactly half an ulp: ties to even
    EXPECT_EQ(a.round(), 1.0f);
    a.add(0x1p-149f);  // now just above the tie
    EXPECT_EQ(a.round(), 0x1.000002p0f);
  }
  {
    exact_accumulator<float> a;
    a.add(std::numeric_limits<float>::max());
    a.add(std::numeric_limits<float>::max());
    EXPECT_EQ(a.round(), std::numeric_limits<float>::infinity());
  }
  {
    exact_accumulator<double> a;
    a.add(-0.0);
    EXPECT_TRUE(std::signbit(a.round()) && a.round() == 0);
    a.add(0.0);
    EXPECT_FALSE(std::signbit(a.round()));
  }
  EXPECT_FALSE(std::signbit(exact_accumulator<float>().round()));  // nothing added: +0
}

template <class T>
void check_products() {
  using L = std::numeric_limits<T>;
  std::mt19937_64 g(7);
  const int emin = L::min_exponent - L::digits, emax = L::max_exponent - 1;
  for (int r = 0; r < 40; ++r) {
    exact_accumulator<T> acc;
    oracle<T> o;
    const int n = 1 + static_cast<int>(g() % 700);
    const bool narrow = r % 2 == 0;
    for (int i = 0; i < n; ++i) {
      const T a = narrow ? random_finite<T>(g, -30, 30) : random_finite<T>(g, emin, emax);
      const T b = narrow ? random_finite<T>(g, -30, 30) : random_finite<T>(g, emin, emax);
      acc.add_product(a, b);
      o.add_product(a, b);
      if (r % 5 == 0) {  // exact cancellation of the product
        acc.add_product(-a, b);
        o.add_product(-a, b);
      }
    }
    EXPECT_TRUE(o.check(acc.round())) << "round " << r;
  }
  // tiny products whose bits lie far below the smallest subnormal must still count
  exact_accumulator<T> acc;
  oracle<T> o;
  for (int i = 0; i < 3; ++i) {
    acc.add_product(L::denorm_min(), T(0.75));
    o.add_product(L::denorm_min(), T(0.75));
  }
  EXPECT_TRUE(o.check(acc.round()));
  EXPECT_EQ(acc.round(), 2 * L::denorm_min());  // 2.25 denorm_min rounds to 2
  // specials: Inf*0 is NaN, Inf*-1 is -Inf, signed zero products
  exact_accumulator<T> s;
  s.add_product(L::infinity(), T(0));
  EXPECT_TRUE(std::isnan(s.round()));
  exact_accumulator<T> ni;
  ni.add_product(L::infinity(), T(-1));
  EXPECT_EQ(ni.round(), -L::infinity());
  exact_accumulator<T> z;
  z.add_product(T(-0.0), T(2));
  z.add_product(T(3), T(-0.0));
  EXPECT_TRUE(std::signbit(z.round()));
  z.add_product(T(-0.0), T(-2));
  EXPECT_FALSE(std::signbit(z.round()));
}

TEST(ExactAccumulator, ProductsAreExactFloat) { check_products<float>(); }
TEST(ExactAccumulator, ProductsAreExactDouble) { check_products<double>(); }

// core::exact_sum_with_start (the scatter family's exact tier) must give the accumulator's
// bits on every set: its double fast path may only skip the accumulator when the double sum
// is exact. Plain terms, product terms (weighted bags: float products are exact in double,
// double products always take the accumulator), with and without a start value.
template <class T>
void check_exact_sum_with_start() {
  using bitexact::core::exact_sum_with_start;
  using bitexact::core::product_term;
  std::mt19937_64 g(11);
  int fast_eligible = 0, checked = 0;
  const auto sets = adversarial_sets<T>(5);
  for (std::size_t k = 0; k < sets.size(); ++k) {
    const auto& v = sets[k];
    const T start = sets[(k * 7 + 3) % sets.size()][0];
    for (int with_start = 0; with_start < 2; ++with_start) {
      exact_accumulator<T> acc;
      if (with_start) acc.add(start);
      for (T x : v) acc.add(x);
      const T got = exact_sum_with_start<T>(start, with_start != 0, v.size(), [&](std::uint64_t i) { return v[i]; });
      EXPECT_EQ(bits_of(got), bits_of(acc.round())) << "plain set " << k << " start " << with_start;
      // products: pair each value with a factor from the next set (small integers too, so
      // that many float products stay exactly summable in double)
      std::vector<T> w(v.size());
      for (auto& x : w) x = (g() % 3 == 0) ? static_cast<T>(static_cast<int>(g() % 9) - 4) : sets[g() % sets.size()][0];
      exact_accumulator<T> pacc;
      if (with_start) pacc.add(start);
      for (std::size_t i = 0; i < v.size(); ++i) pacc.add_product(v[i], w[i]);
      const T pgot = exact_sum_with_start<T>(start, with_start != 0, v.size(),
                                             [&](std::uint64_t i) { return product_term<T>{v[i], w[i]}; });
      EXPECT_EQ(bits_of(pgot), bits_of(pacc.round())) << "product set " << k << " start " << with_start;
      ++checked;
      if (v.size() <= 3) ++fast_eligible;
    }
  }
  // small exactly summable sets (the fast path) and integers
  for (int r = 0; r < 200; ++r) {
    std::vector<T> v(1 + g() % 20), w(v.size());
    for (auto& x : v) x = static_cast<T>(static_cast<int>(g() % 2001) - 1000) / T(8);
    for (auto& x : w) x = static_cast<T>(static_cast<int>(g() % 17) - 8);
    exact_accumulator<T> acc, pacc;
    for (std::size_t i = 0; i < v.size(); ++i) {
      acc.add(v[i]);
      pacc.add_product(v[i], w[i]);
    }
    EXPECT_EQ(bits_of(exact_sum_with_start<T>(T(0), false, v.size(), [&](std::uint64_t i) { return v[i]; })),
              bits_of(acc.round()));
    EXPECT_EQ(bits_of(exact_sum_with_start<T>(T(0), false, v.size(),
                                              [&](std::uint64_t i) { return product_term<T>{v[i], w[i]}; })),
              bits_of(pacc.round()));
  }
  // full-significand factors of similar size: products need 2x the significand bits, so a
  // rounded product would show
  std::uniform_real_distribution<T> unit(T(1), T(2));
  for (int r = 0; r < 200; ++r) {
    std::vector<T> v(1 + g() % 4), w(v.size());
    for (auto& x : v) x = unit(g);
    for (auto& x : w) x = (g() & 1) ? unit(g) : -unit(g);
    exact_accumulator<T> pacc;
    for (std::size_t i = 0; i < v.size(); ++i) pacc.add_product(v[i], w[i]);
    EXPECT_EQ(bits_of(exact_sum_with_start<T>(T(0), false, v.size(),
                                              [&](std::uint64_t i) { return product_term<T>{v[i], w[i]}; })),
              bits_of(pacc.round()));
  }
  EXPECT_GT(checked, 60);
  EXPECT_GT(fast_eligible, 10);
}

TEST(ExactSumWithStart, EqualsTheAccumulatorFloat) { check_exact_sum_with_start<float>(); }
TEST(ExactSumWithStart, EqualsTheAccumulatorDouble) { check_exact_sum_with_start<double>(); }

TEST(ExactAccumulator, FloatOfDoubleAccumulatorRoundsOnce) {
  // 1 + 2^-24 + 2^-60: rounding to double first would give 1 + 2^-24 (a float tie, -> 1);
  // rounding the exact value directly to float gives the next float up.
  exact_accumulator<double> a;
  a.add(1.0);
  a.add(0x1p-24);
  a.add(0x1p-60);
  EXPECT_EQ(a.round<float>(), 0x1.000002p0f);
  EXPECT_EQ(a.round(), 1.0 + 0x1p-24);
}

template <class T>
void check_partition_invariance() {
  std::mt19937_64 g(99);
  for (const auto& v0 : adversarial_sets<T>(5)) {
    exact_accumulator<T> whole;
    for (T x : v0) whole.add(x);
    std::vector<unsigned char> want(exact_accumulator<T>::serialized_size);
    whole.to_bytes(want.data());
    for (int trial = 0; trial < 4; ++trial) {
      std::vector<T> v = v0;
      std::shuffle(v.begin(), v.end(), g);
      const int parts = 1 + static_cast<int>(g() % 7);
      std::vector<exact_accumulator<T>> acc(static_cast<std::size_t>(parts));
      for (T x : v) acc[g() % acc.size()].add(x);
      std::shuffle(acc.begin(), acc.end(), g);
      exact_accumulator<T> total;
      for (const auto& a : acc) total.merge(a);
      EXPECT_TRUE(total.same_value(whole));
      EXPECT_EQ(bits_of(total.round()), bits_of(whole.round()));
      std::vector<unsigned char> got(exact_accumulator<T>::serialized_size);
      total.to_bytes(got.data());
      EXPECT_EQ(got, want);
    }
  }
}

TEST(ExactAccumulator, OrderAndPartitionDoNotMatterFloat) { check_partition_invariance<float>(); }
TEST(ExactAccumulator, OrderAndPartitionDoNotMatterDouble) { check_partition_invariance<double>(); }

TEST(ExactAccumulator, ManyAddsCarryCorrectly) {
  // 3 * 2^30 + 5 adds of the largest float force several normalizations; the exact value is
  // known in closed form.
  exact_accumulator<float> a;
  const std::uint64_t n = (std::uint64_t(3) << 30) + 5;
  const float big = 0x1.fffffep127f;
  // add in bulk through merges of a doubled accumulator (fast) and check against n * big
  exact_accumulator<float> unit;
  unit.add(big);
  std::uint64_t m = n;
  exact_accumulator<float> power = unit;
  while (m) {
    if (m & 1) a.merge(power);
    exact_accumulator<float> twice = power;
    twice.merge(power);
    power = twice;
    m >>= 1;
  }
  exact_accumulator<float> b;
  b.add_scaled_integer(static_cast<std::int64_t>(n) * 0xffffff, 104);  // n * (2^24-1) * 2^104
  EXPECT_TRUE(a.same_value(b));
  // and the long way: 2^30 + 3 single adds with mixed signs
  exact_accumulator<double> c;
  for (std::uint64_t i = 0; i < (std::uint64_t(1) << 30) / 64 + 3; ++i) c.add(i % 3 == 0 ? -1.5 : 2.25);
  const std::uint64_t cnt = (std::uint64_t(1) << 30) / 64 + 3;
  const std::uint64_t neg = (cnt + 2) / 3;
  EXPECT_EQ(c.round(), 2.25 * static_cast<double>(cnt - neg) - 1.5 * static_cast<double>(neg));
}

TEST(ExactAccumulator, SerializationRoundTripsAndRejectsGarbage) {
  exact_accumulator<double> a;
  a.add(-3.25);
  a.add(1e300);
  a.add(-1e-300);
  a.add(std::numeric_limits<double>::infinity());
  std::vector<unsigned char> bytes(exact_accumulator<double>::serialized_size);
  a.to_bytes(bytes.data());
  exact_accumulator<double> b;
  ASSERT_TRUE(b.from_bytes(bytes.data(), bytes.size()));
  EXPECT_TRUE(b.same_value(a));
  EXPECT_EQ(bits_of(b.round()), bits_of(a.round()));

  exact_accumulator<double> untouched;
  untouched.add(7.0);
  auto bad = bytes;
  bad[0] = 'Z';
  EXPECT_FALSE(untouched.from_bytes(bad.data(), bad.size()));
  EXPECT_FALSE(untouched.from_bytes(bytes.data(), bytes.size() - 1));
  bad = bytes;
  bad[4] = 4;  // a float accumulator's header
  EXPECT_FALSE(untouched.from_bytes(bad.data(), bad.size()));
  bad = bytes;
  bad[16 + 4] = 1;  // digit 0 above 32 bits: not normalized
  EXPECT_FALSE(untouched.from_bytes(bad.data(), bad.size()));
  bad = bytes;
  bad[8] = 0xff;  // unknown flags
  EXPECT_FALSE(untouched.from_bytes(bad.data(), bad.size()));
  // The top digit is the sign extension of a value within the documented range: a signed 32-bit
  // number. One beyond it (found by fuzz_exact_bytes: merging two such overflowed int64) is refused.
  const std::size_t top = 16 + 8 * (exact_accumulator<double>::digit_count - 1);
  bad = bytes;
  bad[top + 4] = 1;  // top digit 2^32
  EXPECT_FALSE(untouched.from_bytes(bad.data(), bad.size()));
  bad = bytes;
  for (int i = 0; i < 8; ++i) bad[top + i] = i < 4 ? 0x00 : 0xff;  // top digit -2^32
  EXPECT_FALSE(untouched.from_bytes(bad.data(), bad.size()));
  bad = bytes;
  for (int i = 0; i < 8; ++i) bad[top + i] = 0xff;  // top digit -1: a valid negative value
  EXPECT_TRUE(exact_accumulator<double>().from_bytes(bad.data(), bad.size()));
  EXPECT_EQ(untouched.round(), 7.0);

  // A float accumulator's bytes are a fixed, platform-independent layout: pin one.
  exact_accumulator<float> f;
  f.add(1.0f);
  std::vector<unsigned char> fb(exact_accumulator<float>::serialized_size);
  f.to_bytes(fb.data());
  EXPECT_EQ(fb.size(), 16u + 8u * 21u);
  EXPECT_EQ(std::string(fb.begin(), fb.begin() + 4), "BXA1");
  EXPECT_EQ(fb[4], 4);
  EXPECT_EQ(fb[8], 8 | 16);  // saw a non-(-0) value, any input
  // 1.0 = 2^0 = bit 298 above the base: digit 9, bit 10
  for (int k = 0; k < 21; ++k) {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | fb[16 + 8 * k + i];
    EXPECT_EQ(v, k == 9 ? (std::uint64_t(1) << 10) : 0u) << "digit " << k;
  }
}

// ---------------------------------------------------------------- the canonical tree
// A non-commutative, non-associative combine exposes the tree's exact shape.
struct shape_string {
  std::string s;
};
struct paren {
  shape_string operator()(const shape_string& a, const shape_string& b) const { return {"(" + a.s + " " + b.s + ")"}; }
};

shape_string aligned_tree(std::uint64_t lo, std::uint64_t hi, std::uint64_t m) {
  // node [lo, hi) of a perfect tree; leaves >= m are absent
  if (hi - lo == 1) return {std::to_string(lo)};
  const std::uint64_t mid = lo + (hi - lo) / 2;
  if (mid >= m) return aligned_tree(lo, mid, m);
  return paren{}(aligned_tree(lo, mid, m), aligned_tree(mid, hi, m));
}

TEST(FixedOrderTree, StackEqualsTheAlignedPairwiseTree) {
  for (std::uint64_t m = 1; m <= 300; ++m) {
    bitexact::core::tree_stack<shape_string, paren> t;
    for (std::uint64_t i = 0; i < m; ++i) t.push({std::to_string(i)});
    std::uint64_t p2 = 1;
    while (p2 < m) p2 *= 2;
    EXPECT_EQ(t.finish().s, aligned_tree(0, p2, m).s) << "m = " << m;
  }
}

TEST(FixedOrderTree, GroupsPushedAtTheirLevelGiveTheSameTree) {
  for (std::uint64_t m = 1; m <= 200; m += 3) {
    for (int level = 0; level <= 4; ++level) {
      const std::uint64_t g = std::uint64_t(1) << level;
      bitexact::core::tree_stack<shape_string, paren> top;
      for (std::uint64_t c = 0; c * g < m; ++c) {
        bitexact::core::tree_stack<shape_string, paren> inner;
        for (std::uint64_t i = c * g; i < std::min(m, (c + 1) * g); ++i) inner.push({std::to_string(i)});
        top.push(inner.finish(), level);
      }
      bitexact::core::tree_stack<shape_string, paren> flat;
      for (std::uint64_t i = 0; i < m; ++i) flat.push({std::to_string(i)});
      EXPECT_EQ(top.finish().s, flat.finish().s) << "m = " << m << " level " << level;
    }
  }
}

TEST(FixedOrderTree, SparseStackEqualsTheTreeWithIdentityLeaves) {
  // absent leaves are the identity: the recursive tree simply skips empty subtrees
  std::mt19937_64 g(11);
  for (int trial = 0; trial < 400; ++trial) {
    const std::uint64_t m = 1 + g() % 300;
    std::vector<bool> present(m);
    for (std::uint64_t i = 0; i < m; ++i) present[i] = (g() % 4) == 0 || trial % 7 == 0;
    std::function<std::string(std::uint64_t, std::uint64_t)> rec = [&](std::uint64_t lo, std::uint64_t hi) -> std::string {
      if (lo >= m) return "";
      if (hi - lo == 1) return present[lo] ? std::to_string(lo) : "";
      const std::uint64_t mid = lo + (hi - lo) / 2;
      const std::string a = rec(lo, mid), b = rec(mid, hi);
      if (a.empty()) return b;
      if (b.empty()) return a;
      return "(" + a + " " + b + ")";
    };
    std::uint64_t p2 = 1;
    while (p2 < m) p2 *= 2;
    bitexact::core::sparse_tree_stack<shape_string, paren> t;
    for (std::uint64_t i = 0; i < m; ++i)
      if (present[i]) t.push(i, {std::to_string(i)});
    if (t.empty()) continue;
    EXPECT_EQ(t.finish().s, rec(0, p2)) << "trial " << trial;
  }
  // far-apart positions (up to 2^63) work too
  bitexact::core::sparse_tree_stack<shape_string, paren> t;
  for (std::uint64_t p : {std::uint64_t(0), std::uint64_t(5), std::uint64_t(1) << 40, (std::uint64_t(1) << 63) + 1})
    t.push(p, {std::to_string(p)});
  EXPECT_EQ(t.finish().s, "(((0 5) 1099511627776) 9223372036854775809)");
}

TEST(FixedOrderTree, LaneTreeHalves) {
  std::string lane[8];
  for (int i = 0; i < 8; ++i) lane[i] = std::to_string(i);
  // combine_lanes needs +; strings concatenate, which records the order
  for (std::size_t w = 4; w >= 1; w /= 2)
    for (std::size_t l = 0; l < w; ++l) lane[l] = "(" + lane[l] + "+" + lane[l + w] + ")";
  EXPECT_EQ(lane[0], "(((0+4)+(2+6))+((1+5)+(3+7)))");
  // and the library's version, on doubles whose sums record positions in distinct bits
  double v[8];
  for (int i = 0; i < 8; ++i) v[i] = std::ldexp(1.0, 10 * i);
  EXPECT_EQ(bitexact::core::combine_lanes(v), 1.0 + 0x1p10 + 0x1p20 + 0x1p30 + 0x1p40 + 0x1p50 + 0x1p60 + 0x1p70);
}

TEST(FixedOrderTree, ReferenceSumFollowsTheDocumentedOrder) {
  // Recompute the documented order independently: lanes of W, leaves of L, aligned tree.
  std::mt19937_64 g(3);
  for (std::size_t n : {std::size_t(1), std::size_t(63), std::size_t(64), std::size_t(65), std::size_t(4095),
                        std::size_t(4097), std::size_t(3 * 4096 + 17), std::size_t(9 * 4096)}) {
    std::vector<float> x(n);
    for (auto& v : x) v = random_finite<float>(g, -30, 30);
    const std::size_t W = 64, L = 4096;
    std::vector<float> leaves;
    for (std::size_t a = 0; a < n; a += L) {
      std::vector<float> lane(W, -0.0f);
      for (std::size_t i = a; i < std::min(n, a + L); ++i) lane[(i - a) % W] = lane[(i - a) % W] + x[i];
      for (std::size_t w = W / 2; w >= 1; w /= 2)
        for (std::size_t l = 0; l < w; ++l) lane[l] = lane[l] + lane[l + w];
      leaves.push_back(lane[0]);
    }
    // recursive aligned tree over leaves
    std::function<float(std::size_t, std::size_t)> tree = [&](std::size_t lo, std::size_t hi) -> float {
      if (hi - lo == 1) return leaves[lo];
      const std::size_t mid = lo + (hi - lo) / 2;
      if (mid >= leaves.size()) return tree(lo, mid);
      return tree(lo, mid) + tree(mid, hi);
    };
    std::size_t p2 = 1;
    while (p2 < leaves.size()) p2 *= 2;
    EXPECT_EQ(bits_of(bitexact::reference::sum_fixed_order(x.data(), n)), bits_of(tree(0, p2))) << n;
  }
  EXPECT_EQ(bits_of(bitexact::reference::sum_fixed_order<float>(nullptr, 0)), 0u);  // empty: +0
  const float z[3] = {-0.0f, -0.0f, -0.0f};
  EXPECT_TRUE(std::signbit(bitexact::reference::sum_fixed_order(z, 3)));
}

}  // namespace
