// reduce_test: sum, dot, squared_norm, norm, mean and variance against the scalar reference,
// bit for bit, over the invariance matrix (threads x ISAs x sizes x alignment), the exact tier
// on adversarial data, golden hashes pinned to reduce_order_version, and bad input.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <bitexact/bitexact.hpp>
#include <bitexact/reference/reduce.hpp>

#include "random_test_util.hpp"

using namespace bitexact;
using bitexact_test::fnv1a64;

#include "split_probe.hpp"

namespace {

// ---------------------------------------------------------------- helpers

template <class A>
std::uint64_t bits(A v) {
  if (v != v) v = std::numeric_limits<A>::quiet_NaN();  // the API's canonical NaN
  if constexpr (sizeof(A) == 4) {
    std::uint32_t u;
    std::memcpy(&u, &v, 4);
    return u;
  } else {
    std::uint64_t u;
    std::memcpy(&u, &v, 8);
    return u;
  }
}

/// The API promises the canonical NaN exactly (not any NaN): raw bits of the result.
template <class A>
std::uint64_t raw_bits(A v) {
  std::uint64_t u = 0;
  std::memcpy(&u, &v, sizeof v);
  return u;
}

#define EXPECT_SAME_BITS(ref, got, what)                                                          \
  EXPECT_EQ(bits(ref), raw_bits(got)) << what << ": reference " << (ref) << " got " << (got)

/// Lowers the values-per-thread grain for a test so that small inputs run on many threads
/// (it decides who computes which canonical group, never what is computed).
struct small_grain {
  std::size_t old;
  explicit small_grain(std::size_t g) : old(cpu::detail::reduce_values_per_thread().exchange(g)) {}
  ~small_grain() { cpu::detail::reduce_values_per_thread().store(old); }
};

/// Turns the exact float filter on or off for a scope: off, the exact accumulator's register
/// paths run on data the filter would certify (the bits are the same either way).
struct exact_filter_setting {
  bool old;
  explicit exact_filter_setting(bool on) : old(cpu::detail::exact_filter_enabled().exchange(on)) {}
  ~exact_filter_setting() { cpu::detail::exact_filter_enabled().store(old); }
};

std::vector<execution> all_configs() {
  std::vector<execution> v;
  for (isa i : usable_isas())
    for (int t : bitexact_test::matrix_threads) v.push_back(execution{t, i});
  return v;
}
std::string cfg_name(const execution& e) {
  return std::string(isa_name(e.simd)) + " t=" + std::to_string(e.threads);
}

/// Inputs from the library's own generator (their bits are part of its contract).
template <class T>
std::vector<T> normal_data(std::size_t n, std::uint64_t seed, double scale = 1.0, double shift = 0.0) {
  const auto s = stream<philox4x32_10>::from_seed(seed, 0, 0, tag_of("reduce_test"));
  std::vector<double> d(n);
  generate_normal(s, 0, d.data(), n);
  std::vector<T> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double x = d[i] * scale + shift;
    if constexpr (std::is_same<T, bfloat16>::value)
      v[i] = bfloat16::from_float(static_cast<float>(x));
    else
      v[i] = static_cast<T>(x);
  }
  return v;
}

const std::size_t kSizes[] = {0,    1,    2,    3,    5,     7,     13,    31,    32,    33,    63,
                              64,   65,   127,  128,  129,   1000,  2047,  2048,  2049,  4095,  4096,
                              4097, 8191, 8193, 12301, 65535, 65537, 131071, 131073, 262147, (1u << 20) + 3};

// ---------------------------------------------------------------- invariance matrix

template <class T>
void matrix_sum_dot() {
  bitexact_test::split_check split_("matrix_sum_dot");
  using A = core::accumulation_t<T>;
  small_grain grain(1000);
  const auto cfgs = all_configs();
  for (std::size_t n : kSizes) {
    // One extra element so that x + 1 is an unaligned view of n values.
    const auto xs = normal_data<T>(n + 1, 1000 + n, 1.0, 0.25);
    const auto ys = normal_data<T>(n + 1, 2000 + n);
    for (int off : {0, 1}) {
      const T* x = xs.data() + off;
      const T* y = ys.data() + off;
      const A rs = reference::sum_fixed_order(x, n), rse = reference::sum_exact(x, n);
      const A rd = reference::dot_fixed_order(x, y, n), rde = reference::dot_exact(x, y, n);
      for (const execution& e : cfgs) {
        const std::string w = "n=" + std::to_string(n) + " off=" + std::to_string(off) + " " + cfg_name(e);
        EXPECT_SAME_BITS(rs, sum(x, n, tier::fixed_order, e), "sum fixed " + w);
        EXPECT_SAME_BITS(rd, dot(x, y, n, tier::fixed_order, e), "dot fixed " + w);
        for (bool filter : {true, false}) {  // the filter, and the accumulator it skips
          exact_filter_setting f(filter);
          EXPECT_SAME_BITS(rse, sum(x, n, tier::exact, e), "sum exact " + w + (filter ? "" : " filter off"));
          EXPECT_SAME_BITS(rde, dot(x, y, n, tier::exact, e), "dot exact " + w + (filter ? "" : " filter off"));
        }
      }
    }
  }
}

TEST(ReduceMatrix, SumDotFloat) { matrix_sum_dot<float>(); }
TEST(ReduceMatrix, SumDotDouble) { matrix_sum_dot<double>(); }
TEST(ReduceMatrix, SumDotBfloat16) { matrix_sum_dot<bfloat16>(); }

template <class T>
void matrix_derived() {
  bitexact_test::split_check split_("matrix_derived");
  using A = core::accumulation_t<T>;
  small_grain grain(1000);
  const auto cfgs = all_configs();
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{2}, std::size_t{65}, std::size_t{4097},
                        std::size_t{131073}, std::size_t{300007}}) {
    const auto xs = normal_data<T>(n + 1, 3000 + n, 3.0, 10.0);
    const T* x = xs.data() + 1;
    for (tier t : {tier::fixed_order, tier::exact}) {
      const bool ex = t == tier::exact;
      const A rq = ex ? reference::squared_norm_exact(x, n) : reference::squared_norm_fixed_order(x, n);
      const A rn = std::sqrt(rq);
      const A rm = ex ? reference::mean_exact(x, n) : reference::mean_fixed_order(x, n);
      const A rv0 = ex ? reference::variance_exact(x, n) : reference::variance_fixed_order(x, n);
      const A rv1 = ex ? reference::variance_exact(x, n, 1) : reference::variance_fixed_order(x, n, 1);
      for (const execution& e : cfgs) {
        const std::string w = std::string(ex ? "exact" : "fixed") + " n=" + std::to_string(n) + " " + cfg_name(e);
        EXPECT_SAME_BITS(rq, squared_norm(x, n, t, e), "squared_norm " + w);
        EXPECT_SAME_BITS(rn, norm(x, n, t, e), "norm " + w);
        EXPECT_SAME_BITS(rm, mean(x, n, t, e), "mean " + w);
        EXPECT_SAME_BITS(rv0, variance(x, n, 0, t, e), "variance ddof=0 " + w);
        EXPECT_SAME_BITS(rv1, variance(x, n, 1, t, e), "variance ddof=1 " + w);
      }
    }
  }
}

TEST(ReduceMatrix, DerivedFloat) { matrix_derived<float>(); }
TEST(ReduceMatrix, DerivedDouble) { matrix_derived<double>(); }
TEST(ReduceMatrix, DerivedBfloat16) { matrix_derived<bfloat16>(); }

// 10^7 values (default thread grain): the default ISA with 1 and 8 threads, the narrowest SIMD
// ISA with 3.
TEST(ReduceMatrix, TenMillionFloats) {
  const std::size_t n = 10000000;
  const auto x = normal_data<float>(n, 77);
  const auto y = normal_data<float>(n, 78);
  const float rs = reference::sum_fixed_order(x.data(), n), rd = reference::dot_fixed_order(x.data(), y.data(), n);
  const float rse = reference::sum_exact(x.data(), n), rde = reference::dot_exact(x.data(), y.data(), n);
  const auto isas = usable_isas();
  for (execution e : {execution{1, best_isa()}, execution{8, best_isa()}, execution{3, isas[isas.size() > 1 ? 1 : 0]}}) {
    EXPECT_SAME_BITS(rs, sum(x.data(), n, tier::fixed_order, e), "sum fixed " + cfg_name(e));
    EXPECT_SAME_BITS(rd, dot(x.data(), y.data(), n, tier::fixed_order, e), "dot fixed " + cfg_name(e));
    EXPECT_SAME_BITS(rse, sum(x.data(), n, tier::exact, e), "sum exact " + cfg_name(e));
    EXPECT_SAME_BITS(rde, dot(x.data(), y.data(), n, tier::exact, e), "dot exact " + cfg_name(e));
  }
}

// ---------------------------------------------------------------- adversarial data

template <class T>
T from_bits_of(std::uint64_t b) {
  T v;
  if constexpr (sizeof(T) == 4) {
    const std::uint32_t u = static_cast<std::uint32_t>(b);
    std::memcpy(&v, &u, 4);
  } else if constexpr (sizeof(T) == 8) {
    std::memcpy(&v, &b, 8);
  } else {
    v = bfloat16::from_bits(static_cast<std::uint16_t>(b));
  }
  return v;
}

template <class T>
constexpr int exp_bits() {
  return sizeof(T) == 8 ? 11 : 8;
}
template <class T>
constexpr int frac_bits() {
  return sizeof(T) == 8 ? 52 : sizeof(T) == 4 ? 23 : 7;
}

/// A finite value with the given biased exponent (0: subnormal/zero), random fraction and sign.
template <class T>
T make(std::mt19937_64& g, int biased_exp, bool negative) {
  const std::uint64_t frac = g() & ((std::uint64_t(1) << frac_bits<T>()) - 1);
  const std::uint64_t b = (std::uint64_t(negative) << (exp_bits<T>() + frac_bits<T>())) |
                          (std::uint64_t(biased_exp) << frac_bits<T>()) | frac;
  return from_bits_of<T>(b);
}

template <class T>
T neg(T v) {
  if constexpr (std::is_same<T, bfloat16>::value)
    return bfloat16::from_bits(static_cast<std::uint16_t>(v.bits ^ 0x8000u));
  else
    return -v;
}

/// Named adversarial data sets of n values.
template <class T>
std::vector<std::pair<std::string, std::vector<T>>> adversarial(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 g(seed);
  const int emax = (1 << exp_bits<T>()) - 2;  // largest finite biased exponent
  std::vector<std::pair<std::string, std::vector<T>>> sets;
  auto add = [&](const std::string& name, auto f) {
    std::vector<T> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = f(i);
    sets.emplace_back(name, std::move(v));
  };
  add("full_range", [&](std::size_t) { return make<T>(g, static_cast<int>(g() % (emax + 1)), g() & 1); });
  add("denormals", [&](std::size_t) { return make<T>(g, 0, g() & 1); });
  add("denormals_and_min_normals", [&](std::size_t) { return make<T>(g, static_cast<int>(g() % 3), g() & 1); });
  add("huge", [&](std::size_t) { return make<T>(g, emax - static_cast<int>(g() % 3), false); });  // overflows
  add("huge_mixed_sign", [&](std::size_t) { return make<T>(g, emax - static_cast<int>(g() % 2), g() & 1); });
  {  // huge cancellation: pairs +-v shuffled, plus one tiny value
    std::vector<T> v(n);
    for (std::size_t i = 0; i + 1 < n; i += 2) {
      v[i] = make<T>(g, static_cast<int>(g() % (emax + 1)), g() & 1);
      v[i + 1] = neg(v[i]);
    }
    if (n % 2) v[n - 1] = make<T>(g, 0, true);
    std::shuffle(v.begin(), v.end(), g);
    sets.emplace_back("cancellation", std::move(v));
  }
  {  // 1 + many small values that each round away in a naive sum, then -1
    std::vector<T> v(n, make<T>(g, 1, false));
    if (n > 0) v[0] = from_bits_of<T>(std::uint64_t((1 << (exp_bits<T>() - 1)) - 1) << frac_bits<T>());
    if (n > 1) v[n - 1] = neg(v[0]);
    sets.emplace_back("one_plus_tiny_minus_one", std::move(v));
  }
  add("drifting_exponent", [&](std::size_t i) {
    return make<T>(g, static_cast<int>((i / 97) % static_cast<std::size_t>(emax + 1)), (i / 13) & 1);
  });
  add("block_windows", [&](std::size_t i) {  // each 1024-block spans its own random window
    std::mt19937_64 gb(seed * 31 + i / 1024);
    const int lo = static_cast<int>(gb() % static_cast<std::uint64_t>(emax + 1));
    const int span = 1 + static_cast<int>(gb() % 60);
    return make<T>(g, std::min(emax, lo + static_cast<int>(g() % static_cast<std::uint64_t>(span))), g() & 1);
  });
  add("all_negative_zero", [&](std::size_t) { return neg(from_bits_of<T>(0)); });
  add("signed_zeros", [&](std::size_t) { return g() & 1 ? neg(from_bits_of<T>(0)) : from_bits_of<T>(0); });
  const T inf = from_bits_of<T>(std::uint64_t((1 << exp_bits<T>()) - 1) << frac_bits<T>());
  const T nan = from_bits_of<T>((std::uint64_t((1 << exp_bits<T>()) - 1) << frac_bits<T>()) | 1);
  add("one_inf", [&](std::size_t i) { return i == n / 2 ? inf : make<T>(g, emax / 2, g() & 1); });
  add("both_infs", [&](std::size_t i) { return i == n / 3 ? inf : i == n / 2 ? neg(inf) : make<T>(g, emax / 2, g() & 1); });
  add("nan_payload", [&](std::size_t i) { return i == n - 1 ? neg(nan) : make<T>(g, emax / 2, g() & 1); });
  return sets;
}

template <class T>
void adversarial_sum_dot() {
  using A = core::accumulation_t<T>;
  small_grain grain(1000);
  const auto cfgs = all_configs();
  for (std::size_t n : {std::size_t{1}, std::size_t{7}, std::size_t{1025}, std::size_t{9000}, std::size_t{140001}}) {
    const auto xs = adversarial<T>(n, 42 + n);
    const auto ys = adversarial<T>(n, 4242 + n);
    for (std::size_t k = 0; k < xs.size(); ++k) {
      const T* x = xs[k].second.data();
      // y: the same kind of data, and all ones (so dot's exact products equal the sum's values).
      const T* y = ys[k].second.data();
      const A rse = reference::sum_exact(x, n), rs = reference::sum_fixed_order(x, n);
      const A rde = reference::dot_exact(x, y, n), rd = reference::dot_fixed_order(x, y, n);
      const A rv = reference::variance_exact(x, n), rvf = reference::variance_fixed_order(x, n);
      for (const execution& e : cfgs) {
        if (n > 10000 && e.threads != 1 && e.threads != 7) continue;  // runtime
        const std::string w = xs[k].first + " n=" + std::to_string(n) + " " + cfg_name(e);
        EXPECT_SAME_BITS(rse, sum(x, n, tier::exact, e), "sum exact " + w);
        EXPECT_SAME_BITS(rs, sum(x, n, tier::fixed_order, e), "sum fixed " + w);
        EXPECT_SAME_BITS(rde, dot(x, y, n, tier::exact, e), "dot exact " + w);
        EXPECT_SAME_BITS(rd, dot(x, y, n, tier::fixed_order, e), "dot fixed " + w);
        EXPECT_SAME_BITS(rv, variance(x, n, 0, tier::exact, e), "variance exact " + w);
        EXPECT_SAME_BITS(rvf, variance(x, n, 0, tier::fixed_order, e), "variance fixed " + w);
      }
    }
  }
}

TEST(ReduceExact, AdversarialFloat) { adversarial_sum_dot<float>(); }
TEST(ReduceExact, AdversarialDouble) { adversarial_sum_dot<double>(); }
TEST(ReduceExact, AdversarialBfloat16) { adversarial_sum_dot<bfloat16>(); }

// Data that keeps the exact kernels' register windows at their limits: many values just below a
// power of two (their lanes' sums grow as fast as they can) mixed with values whose last bit is
// far below (the sums need every bit of the window). A window admitted a little too wide, or a
// lost tiny term, changes the result.
template <class T>
std::vector<T> tight_window_data(std::size_t n, int tiny_every, double big, double tiny, bool same_sign = false) {
  std::vector<T> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    double x = big;
    if (i % static_cast<std::size_t>(tiny_every) == 3 % static_cast<std::size_t>(tiny_every))
      x = tiny * ((i / tiny_every) % 2 && !same_sign ? -1 : 1);
    if constexpr (std::is_same<T, bfloat16>::value)
      v[i] = bfloat16::from_float(static_cast<float>(x));
    else
      v[i] = static_cast<T>(x);
  }
  return v;
}

TEST(ReduceExact, TightWindows) {
  small_grain grain(3000);
  const auto cfgs = all_configs();
  for (std::size_t n : {std::size_t{5000}, std::size_t{70000}, std::size_t{300001}}) {
    for (int every : {1000, 97, 5}) {
      std::vector<std::vector<float>> fs = {
          tight_window_data<float>(n, every, 2.0 - 0x1p-23, 0x1p-22 + 0x1p-45),
          tight_window_data<float>(n, every, 2.0 - 0x1p-23, 0x1p-30 + 0x1p-53),
          tight_window_data<float>(n, every, 0x1p100 * (2.0 - 0x1p-23), 0x1p-149 * 3),
          tight_window_data<float>(n, every, 0x1p-100 * (2.0 - 0x1p-23), 0x1p-149 * 5)};
      std::vector<std::vector<double>> ds = {
          tight_window_data<double>(n, every, 2.0 - 0x1p-52, 0x1p-48 + 0x1p-100),
          tight_window_data<double>(n, every, 2.0 - 0x1p-52, 0x1p-20 + 0x1p-72),
          tight_window_data<double>(n, every, 0x1p900 * (2.0 - 0x1p-52), 0x1p800 + 0x1p748),
          tight_window_data<double>(n, every, 0x1p-1000 * (2.0 - 0x1p-52), 0x1p-1074 * 7),
          // lo parts of ~2^(s-1) with the finest quantum the lo window admits
          tight_window_data<double>(n, 2, 2.0 - 0x1p-52, 0x1p-35 + 0x1p-40 - 0x1p-87, true),
          tight_window_data<double>(n, 3, 2.0 - 0x1p-52, 0x1p-33 + 0x1p-40 - 0x1p-85, true)};
      for (const execution& e : cfgs) {
        if (e.threads != 1 && e.threads != 3) continue;  // runtime; threads are covered elsewhere
        for (std::size_t k = 0; k < fs.size(); ++k)
          for (bool filter : {true, false}) {
            exact_filter_setting f(filter);
            const std::string w = "float set " + std::to_string(k) + " n=" + std::to_string(n) + " every=" +
                                  std::to_string(every) + " " + cfg_name(e) + (filter ? "" : " filter off");
            EXPECT_SAME_BITS(reference::sum_exact(fs[k].data(), n), sum(fs[k].data(), n, tier::exact, e), "sum " + w);
            EXPECT_SAME_BITS(reference::dot_exact(fs[k].data(), fs[(k + 1) % fs.size()].data(), n),
                             dot(fs[k].data(), fs[(k + 1) % fs.size()].data(), n, tier::exact, e), "dot " + w);
          }
        for (std::size_t k = 0; k < ds.size(); ++k)
          for (bool filter : {true, false}) {
            exact_filter_setting f(filter);
            const std::string w = "double set " + std::to_string(k) + " n=" + std::to_string(n) + " every=" +
                                  std::to_string(every) + " " + cfg_name(e) + (filter ? "" : " filter off");
            EXPECT_SAME_BITS(reference::sum_exact(ds[k].data(), n), sum(ds[k].data(), n, tier::exact, e), "sum " + w);
          }
      }
    }
  }
}

// The double kernel's lo window at its limit: positions 4k+1 carry t1 and 4k+3 carry -t2, whose
// lo parts are ~ +-2^(s-1) with the finest quantum the window admits, so every lane's lo sum
// needs all 53 bits; the big values (+-big at 4k, 4k+2) cancel, and the exact sum is
// (number of pairs) * 2^-87, where any lost bit shows.
TEST(ReduceExact, DoubleLoWindow) {
  for (std::size_t n : {std::size_t{4096}, std::size_t{40000}, std::size_t{200000}}) {
    std::vector<double> v(n);
    const double big = 2.0 - 0x1p-52, t1 = 0x1p-35 + 0x1p-40 - 0x1p-87, t2 = 0x1p-35 + 0x1p-40 - 0x1p-86;
    for (std::size_t i = 0; i < n; ++i) v[i] = i % 4 == 0 ? big : i % 4 == 1 ? t1 : i % 4 == 2 ? -big : -t2;
    const double want = static_cast<double>(n / 4) * 0x1p-87;
    EXPECT_EQ(reference::sum_exact(v.data(), n), want);
    for (isa i : usable_isas())
      EXPECT_EQ(sum(v.data(), n, tier::exact, execution{1, i}), want) << "n=" << n << " " << isa_name(i);
  }
}

// The float dot kernel's lo window at its limit: products ~ +-4 at 4k and 4k+2 cancel; the
// products at 4k+1 and 4k+3 have lo parts ~ -2^(s-1) with quantum 2^-80, the finest the block's
// factor bounds (Qa + Qb) allow, so lane sums need every bit of the window for ~2^12 terms per
// lane; their sum is exactly (n/4) * a1 * 2^-23, a float, where any lost bit shows.
TEST(ReduceExact, FloatDotLoWindow) {
  const float big = 2.0f - 0x1p-23f, a1 = 0x1p-34f * (1.0f + 0x1p-5f - 0x1p-23f);
  for (std::size_t n : {std::size_t{4096}, std::size_t{200000}, std::size_t{600000}}) {
    std::vector<float> a(n), b(n);
    for (std::size_t i = 0; i < n; ++i) {
      switch (i % 4) {
        case 0: a[i] = big; b[i] = big; break;
        case 1: a[i] = a1; b[i] = 1.0f + 0x1p-23f; break;
        case 2: a[i] = -big; b[i] = big; break;
        default: a[i] = -a1; b[i] = 1.0f; break;
      }
    }
    const float want = static_cast<float>(n / 4) * a1 * 0x1p-23f;
    EXPECT_EQ(reference::dot_exact(a.data(), b.data(), n), want);
    for (isa i : usable_isas())
      EXPECT_EQ(dot(a.data(), b.data(), n, tier::exact, execution{1, i}), want) << "n=" << n << " " << isa_name(i);
  }
}

// The certified filter of the exact sum and dot (core/exact_filter.hpp). On normal data it
// certifies, so the filter is the path that runs (double dot: on ISAs with a fused FMA), and its
// value is the reference's. It must not certify where its double block sums are further from the
// exact sum than half a spacing of the result allows (terms absorbed in one lane), at a tie, at
// zero, or with Inf/NaN; the public op then gives the reference's bits through the accumulator.
template <class T>
bool filter_of(const T* x, const T* y, std::size_t n, const execution& e, core::accumulation_t<T>& out) {
  return y ? bitexact::detail::run_exact_filter(n, e, cpu::detail::filter_dot_terms(x, y), out)
           : bitexact::detail::run_exact_filter(n, e, cpu::detail::filter_sum_terms(x), out);
}

template <class T>
void filter_certifies_normal_data() {
  using A = core::accumulation_t<T>;
  small_grain grain(3000);  // 3 threads really split 20000 values
  for (std::size_t n : {std::size_t{1}, std::size_t{100}, std::size_t{4096}, std::size_t{4097}, std::size_t{20000},
                        std::size_t{100003}}) {
    // bfloat16 products have 16 bits, so short sums of them can be exact float ties, which the
    // filter rightly refuses (500 + n, 600 + n makes one at n = 100): other seeds.
    const std::uint64_t seed = std::is_same<T, bfloat16>::value ? 700 : 500;
    const auto x = normal_data<T>(n, seed + n, 1.0, 0.25), y = normal_data<T>(n, seed + 100 + n);
    for (isa i : usable_isas())
      for (int t : {1, 3}) {
        const execution e{t, i};
        const std::string w = "n=" + std::to_string(n) + " " + cfg_name(e);
        A out = 0;
        EXPECT_TRUE(filter_of<T>(x.data(), nullptr, n, e, out)) << "sum " << w;
        EXPECT_SAME_BITS(reference::sum_exact(x.data(), n), out, "filter sum " + w);
        const bool fused = !std::is_same<T, double>::value || i == isa::avx2 || i == isa::avx512 || i == isa::neon;
        EXPECT_EQ(fused, filter_of<T>(x.data(), y.data(), n, e, out)) << "dot " << w;
        if (fused) EXPECT_SAME_BITS(reference::dot_exact(x.data(), y.data(), n), out, "filter dot " + w);
      }
  }
}

/// Sets the filter must refuse. absorbed: terms in lane 0 (positions 64 j: lane 0 for every lane
/// count) that the double lane sum loses, each below half a spacing of the lane's partial, beside
/// 1 + a little less than half a spacing of 1 in T, which the double sum puts just below a tie
/// while the exact sum is well above it. Float: 2^30 - 2^30 in lanes 0 and 1, then 63 terms of
/// 1.5 * 2^-24. Double (whose filter cuts the terms at a grid set by the block's largest value,
/// here 2^21 from 2^60 - 2^60): 2^19, below the grid, is the lane's partial of the rest, then 62
/// terms of 0.375 * 2^-33. tie: 1 + half a spacing of 1.
template <class T>
std::vector<std::pair<std::string, std::vector<T>>> filter_refusals() {
  std::vector<std::pair<std::string, std::vector<T>>> sets;
  std::vector<T> v(4096, T(0));
  if constexpr (std::is_same<T, double>::value) {
    v[0] = 0x1p60;
    v[1] = -0x1p60;
    v[2] = 1.0;
    v[3] = 0x1p-34 - 0x1p-80;
    v[64] = 0x1p19;
    for (std::size_t j = 2; j < 64; ++j) v[64 * j] = 0x1.8p-35;
  } else {
    v[0] = 0x1p30f;
    v[1] = -0x1p30f;
    v[2] = 1.0f;
    v[3] = 0x1p-24f - 0x1p-47f;
    for (std::size_t j = 1; j < 64; ++j) v[64 * j] = 0x1.8p-24f;
  }
  sets.emplace_back("absorbed", v);
  const T half_spacing_of(std::is_same<T, double>::value ? T(0x1p-53) : T(0x1p-24f));
  sets.push_back({"tie", {T(1), half_spacing_of}});
  sets.push_back({"zero", {T(1), T(2.5), T(-1), T(-2.5)}});
  sets.push_back({"inf", {T(1), std::numeric_limits<T>::infinity()}});
  sets.push_back({"nan", {T(1), std::numeric_limits<T>::quiet_NaN()}});
  return sets;
}

template <class T>
void filter_refuses() {
  using A = core::accumulation_t<T>;
  const auto sets = filter_refusals<T>();
  for (const auto& [name, v] : sets) {
    const std::vector<T> ones(v.size(), T(1));
    for (isa i : usable_isas()) {
      const execution e{1, i};
      const std::string w = name + " " + cfg_name(e);
      A out = 0;
      EXPECT_FALSE(filter_of<T>(v.data(), nullptr, v.size(), e, out)) << "sum " << w;
      EXPECT_FALSE(filter_of<T>(v.data(), ones.data(), v.size(), e, out)) << "dot " << w;
      EXPECT_SAME_BITS(reference::sum_exact(v.data(), v.size()), sum(v.data(), v.size(), tier::exact, e), "sum " + w);
      EXPECT_SAME_BITS(reference::dot_exact(v.data(), ones.data(), v.size()), dot(v.data(), ones.data(), v.size(), tier::exact, e),
                       "dot " + w);
    }
  }
  // The sets are what they claim: the lost terms move the exact sum well past the tie.
  if constexpr (std::is_same<T, double>::value)
    EXPECT_EQ(reference::sum_exact(sets[0].second.data(), 4096), 0x1p19 + 1.0 + 24 * 0x1p-33);
  else
    EXPECT_EQ(reference::sum_exact(sets[0].second.data(), 4096), 1.0f + 96 * 0x1p-24f);
  EXPECT_EQ(reference::sum_exact(sets[1].second.data(), 2), T(1));
}

TEST(ReduceExact, FilterFloat) {
  filter_certifies_normal_data<float>();
  filter_certifies_normal_data<bfloat16>();
  filter_refuses<float>();
}
TEST(ReduceExact, FilterDouble) {
  filter_certifies_normal_data<double>();
  filter_refuses<double>();
  // The double filter's grid comes from the first 64 terms (first block) or the previous block:
  // terms that grow past it, inside a block and from one block to the next, make it redo the
  // block from a scan. Values grow by 2^20 at 1000 and by 2^25 again at 9000 (the third block).
  const std::size_t n = 3 * 4096 + 5;
  auto v = normal_data<double>(n, 31);
  const auto y = normal_data<double>(n, 32);
  for (std::size_t i = 1000; i < n; ++i) v[i] *= i < 9000 ? 0x1p20 : 0x1p45;
  for (isa i : usable_isas()) {
    const execution e{1, i};
    double out = 0;
    EXPECT_TRUE(filter_of<double>(v.data(), nullptr, n, e, out)) << cfg_name(e);
    EXPECT_SAME_BITS(reference::sum_exact(v.data(), n), out, "growing sum " + cfg_name(e));
    if (filter_of<double>(v.data(), y.data(), n, e, out))
      EXPECT_SAME_BITS(reference::dot_exact(v.data(), y.data(), n), out, "growing dot " + cfg_name(e));
  }
}

// Signed zeros across the register path, the scalar path and the thread merge: -0.0 blocks
// next to values that cancel exactly give +0.0; -0.0 everywhere gives -0.0.
TEST(ReduceExact, SignedZerosAcrossPathsAndThreads) {
  small_grain grain(1500);
  const std::size_t n = 20000;
  std::vector<float> v(n, -0.0f);
  for (std::size_t i = n / 2; i < n; i += 2) {
    v[i] = 0x1p-3f * static_cast<float>(i % 7 + 1);
    v[i + 1] = -v[i];
  }
  std::vector<float> z(n, -0.0f), ones(n, 1.0f);
  for (const execution& e : all_configs()) {
    EXPECT_EQ(raw_bits(sum(v.data(), n, tier::exact, e)), 0u) << cfg_name(e);
    EXPECT_EQ(raw_bits(sum(z.data(), n, tier::exact, e)), 0x80000000u) << cfg_name(e);
    EXPECT_EQ(raw_bits(dot(z.data(), ones.data(), n, tier::exact, e)), 0x80000000u) << cfg_name(e);
    EXPECT_EQ(raw_bits(dot(v.data(), ones.data(), n, tier::exact, e)), 0u) << cfg_name(e);
  }
}

// Both vectors hold non-zeros, yet every product is -0.0 (one factor is zero, the signs differ):
// the exact dot is -0.0; one +0.0 product anywhere makes it +0.0.
template <class T>
void all_products_negative_zero() {
  small_grain grain(3000);
  const std::size_t n = 20001;
  std::vector<T> x(n), y(n);
  for (std::size_t j = 0; j < n; ++j) {
    x[j] = j % 2 ? T(0) : T(-1.5);
    y[j] = j % 2 ? T(-2) : T(0);
  }
  const std::uint64_t neg0 = sizeof(T) == 4 ? 0x80000000u : 0x8000000000000000ull;
  EXPECT_EQ(raw_bits(reference::dot_exact(x.data(), y.data(), n)), neg0);
  for (const execution& e : all_configs()) {
    EXPECT_EQ(raw_bits(dot(x.data(), y.data(), n, tier::exact, e)), neg0) << cfg_name(e);
    EXPECT_EQ(raw_bits(dot(x.data(), y.data(), n, tier::fixed_order, e)), neg0) << cfg_name(e);
  }
  y[n - 1] = T(-0.0);  // x[n-1] = -1.5: product +0.0
  for (const execution& e : all_configs())
    EXPECT_EQ(raw_bits(dot(x.data(), y.data(), n, tier::exact, e)), 0u) << cfg_name(e);
}
TEST(ReduceExact, AllProductsNegativeZeroFloat) { all_products_negative_zero<float>(); }
TEST(ReduceExact, AllProductsNegativeZeroDouble) { all_products_negative_zero<double>(); }

// Double products whose TwoProduct error would underflow: x*y = p - 2^-1075 exactly, which an
// FMA cannot return (it rounds e to 0). Two of them minus 2p exactly is -2^-1074: the kernel must
// send such blocks to the exact product path.
TEST(ReduceExact, DoubleDotProductErrorUnderflow) {
  const double a = 1.0 + 0x1p-52, b = 1.5 * 0x1p-1022;
  const double p = a * b;  // 1.5 * 2^-1022 + 2^-1073 (the tie 2^-1075 rounded to even)
  ASSERT_EQ(p, 1.5 * 0x1p-1022 + 0x1p-1073);
  for (std::size_t n : {std::size_t{4}, std::size_t{4096}, std::size_t{40000}}) {
    std::vector<double> x(n), y(n);
    for (std::size_t i = 0; i < n; ++i) {
      x[i] = i % 4 < 2 ? a : 1.0;
      y[i] = i % 4 < 2 ? b : -p;
    }
    const double want = -static_cast<double>(n / 4) * 0x1p-1074;
    EXPECT_EQ(reference::dot_exact(x.data(), y.data(), n), want);
    for (isa i : usable_isas())
      EXPECT_EQ(dot(x.data(), y.data(), n, tier::exact, execution{1, i}), want) << "n=" << n << " " << isa_name(i);
  }
}

// Known exact answers, independent of the reference.
TEST(ReduceExact, KnownAnswers) {
  const float big = 0x1p100f;
  std::vector<float> v = {big, 1.0f, -big, 0x1p-149f, -0x1p-149f, 0x1p-149f};
  EXPECT_EQ(sum(v.data(), v.size(), tier::exact), 1.0f + 0x1p-149f == 1.0f ? 1.0f : 0.0f);
  std::vector<float> w = {1.0f, 0x1p-24f, 0x1p-48f};  // 1 + 2^-24 + 2^-48 rounds up to 1 + 2^-23
  EXPECT_EQ(sum(w.data(), w.size(), tier::exact), 1.0f + 0x1p-23f);
  EXPECT_EQ(sum(w.data(), w.size(), tier::fixed_order), 1.0f);  // the canonical order loses them
  std::vector<float> o(8, std::numeric_limits<float>::max());
  EXPECT_EQ(sum(o.data(), o.size(), tier::exact), std::numeric_limits<float>::infinity());
  std::vector<float> z = {-0.0f, -0.0f};
  EXPECT_EQ(raw_bits(sum(z.data(), z.size(), tier::exact)), 0x80000000u);
  EXPECT_EQ(raw_bits(sum(z.data(), z.size(), tier::fixed_order)), 0x80000000u);
  std::vector<float> in = {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()};
  EXPECT_EQ(raw_bits(sum(in.data(), 2, tier::fixed_order)), 0x7fc00000u);  // canonical, not x86's 0xffc00000
  EXPECT_EQ(raw_bits(sum(in.data(), 2, tier::exact)), 0x7fc00000u);
  std::vector<double> d = {1e308, 1e308, -1e308, 1.0};
  EXPECT_EQ(sum(d.data(), d.size(), tier::exact), 1e308 + 1.0);
  std::vector<float> a = {0x1p-100f, 3.0f}, b = {0x1p-100f, 0x1p-100f};  // 2^-200 + 3 * 2^-100 in float
  EXPECT_EQ(dot(a.data(), b.data(), 2, tier::exact), 3 * 0x1p-100f);
}

// ---------------------------------------------------------------- golden values (order version 1)

TEST(ReduceGolden, Hashes) {
  static_assert(reduce_order_version == 1, "order version changed: update the golden values and CHANGELOG");
  std::vector<unsigned char> out_ref, out_fast;
  auto put = [](std::vector<unsigned char>& o, auto v) {
    const std::uint64_t b = bits(v);
    for (int i = 0; i < 8; ++i) o.push_back(static_cast<unsigned char>(b >> (8 * i)));
  };
  for (std::size_t n : {std::size_t{1}, std::size_t{100}, std::size_t{4097}, std::size_t{70001}, std::size_t{1000003}}) {
    const auto xf = normal_data<float>(n, 9000 + n, 1.0, 0.5), yf = normal_data<float>(n, 9100 + n);
    const auto xd = normal_data<double>(n, 9200 + n, 1.0, 0.5), yd = normal_data<double>(n, 9300 + n);
    const auto xb = normal_data<bfloat16>(n, 9400 + n, 1.0, 0.5), yb = normal_data<bfloat16>(n, 9500 + n);
    put(out_ref, reference::sum_fixed_order(xf.data(), n));
    put(out_ref, reference::dot_fixed_order(xf.data(), yf.data(), n));
    put(out_ref, reference::sum_fixed_order(xd.data(), n));
    put(out_ref, reference::dot_fixed_order(xd.data(), yd.data(), n));
    put(out_ref, reference::sum_fixed_order(xb.data(), n));
    put(out_ref, reference::dot_fixed_order(xb.data(), yb.data(), n));
    put(out_ref, reference::variance_fixed_order(xf.data(), n));
    put(out_ref, reference::sum_exact(xf.data(), n));
    put(out_ref, reference::dot_exact(xd.data(), yd.data(), n));
    put(out_fast, sum(xf.data(), n));
    put(out_fast, dot(xf.data(), yf.data(), n));
    put(out_fast, sum(xd.data(), n));
    put(out_fast, dot(xd.data(), yd.data(), n));
    put(out_fast, sum(xb.data(), n));
    put(out_fast, dot(xb.data(), yb.data(), n));
    put(out_fast, variance(xf.data(), n));
    put(out_fast, sum(xf.data(), n, tier::exact));
    put(out_fast, dot(xd.data(), yd.data(), n, tier::exact));
  }
  const std::uint64_t want = 0xe9e75b322e1765e8ull;  // pinned for reduce_order_version 1
  EXPECT_EQ(fnv1a64(out_ref.data(), out_ref.size()), want) << std::hex << fnv1a64(out_ref.data(), out_ref.size());
  EXPECT_EQ(fnv1a64(out_fast.data(), out_fast.size()), want) << std::hex << fnv1a64(out_fast.data(), out_fast.size());
}

// ---------------------------------------------------------------- edge cases and bad input

TEST(ReduceEdges, EmptyAndNull) {
  const float* nf = nullptr;
  for (tier t : {tier::fixed_order, tier::exact}) {
    EXPECT_EQ(raw_bits(sum(nf, 0, t)), 0u);
    EXPECT_EQ(raw_bits(dot(nf, nf, 0, t)), 0u);
    EXPECT_EQ(raw_bits(norm(nf, 0, t)), 0u);
    EXPECT_EQ(raw_bits(mean(nf, 0, t)), 0x7fc00000u);
    EXPECT_EQ(raw_bits(variance(nf, 0, 0, t)), 0x7fc00000u);
    EXPECT_THROW(sum(nf, 1, t), std::invalid_argument);
    EXPECT_THROW(dot(nf, nf, 3, t), std::invalid_argument);
    EXPECT_THROW(mean(nf, 3, t), std::invalid_argument);
    EXPECT_THROW(variance(nf, 3, 0, t), std::invalid_argument);
  }
  const float one[2] = {1.0f, 2.0f};
  EXPECT_THROW(dot(one, nf, 2), std::invalid_argument);
  EXPECT_EQ(raw_bits(variance(one, 1, 1)), 0x7fc00000u);  // n <= ddof
  EXPECT_EQ(variance(one, 2, 1), 0.5f);
  EXPECT_EQ(mean(one, 2), 1.5f);
  EXPECT_EQ(norm(one, 2), std::sqrt(5.0f));
  EXPECT_THROW(sum(one, 2, tier::fixed_order, execution{-1, isa::automatic}), std::invalid_argument);
}

// A call with the default execution must not pay for resolving it: reading the hardware thread
// count from /sys on every call cost ~8 us (60x a 4Ki sum). 10^5 small sums take ~5 ms when
// resolving is cached and ~0.8 s when not; the bound leaves a wide margin for a loaded machine.
TEST(ReduceEdges, DefaultExecutionIsCheap) {
  std::vector<float> x(256, 1.0f);
  float s = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int r = 0; r < 100000; ++r) s += sum(x.data(), x.size());
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(s, 256.0f * 100000);
  EXPECT_LT(sec, 0.3) << "100000 default-execution sums of 256 floats took " << sec << " s";
}

// The fixed_order tier really is the documented order: a case where naive left-to-right
// summation differs (lane 0 gets 2^24 and 1 and 1; lane 1 gets -2^24).
TEST(ReduceEdges, LaneOrderIsObservable) {
  std::vector<float> v(130, 0.0f);
  v[0] = 0x1p24f;
  v[1] = -0x1p24f;
  v[64] = 1.0f;
  v[128] = 1.0f;
  // Lanes: lane0 = 2^24 + 1 + 1 = 2^24 (each +1 rounds away), lane1 = -2^24; total 0.
  EXPECT_EQ(reference::sum_fixed_order(v.data(), v.size()), 0.0f);
  EXPECT_EQ(sum(v.data(), v.size()), 0.0f);
  EXPECT_EQ(sum(v.data(), v.size(), tier::exact), 2.0f);
}

}  // namespace

// ---------------------------------------------------------------- known-answer file (order version 1)

#include "golden_file.hpp"

namespace {

// Every public op of the family (sum, dot, squared_norm, norm, mean, variance with ddof 0 and 1),
// both tiers, float, double and bfloat16, at sizes from one element to several leaves and tree
// levels: the reference's result bits are pinned in tests/data/reduce_golden_v1.txt and every
// fast path (default, each ISA x threads {1,2,3}, grain lowered) must give the same bits.
template <class T>
void reduce_golden_rows(bitexact_test::golden_table& table, const char* tname, std::uint32_t tag) {
  using A = core::accumulation_t<T>;
  for (std::size_t n : {std::size_t{1}, std::size_t{100}, std::size_t{4097}, std::size_t{70001}, std::size_t{300007}}) {
    const auto x = bitexact_test::golden_data<T>(n, tag + static_cast<std::uint32_t>(n), 1.0, 0.5);
    const auto y = bitexact_test::golden_data<T>(n, tag + 1 + static_cast<std::uint32_t>(n));
    for (tier t : {tier::fixed_order, tier::exact}) {
      const bool ex = t == tier::exact;
      const std::string at = std::string(tname) + (ex ? ".exact/" : ".fixed_order/") + std::to_string(n);
      // The reference, one scalar per op.
      std::vector<A> want = {
          ex ? reference::sum_exact(x.data(), n) : reference::sum_fixed_order(x.data(), n),
          ex ? reference::dot_exact(x.data(), y.data(), n) : reference::dot_fixed_order(x.data(), y.data(), n),
          ex ? reference::squared_norm_exact(x.data(), n) : reference::squared_norm_fixed_order(x.data(), n),
          std::sqrt(ex ? reference::squared_norm_exact(x.data(), n) : reference::squared_norm_fixed_order(x.data(), n)),
          ex ? reference::mean_exact(x.data(), n) : reference::mean_fixed_order(x.data(), n),
          ex ? reference::variance_exact(x.data(), n, 0) : reference::variance_fixed_order(x.data(), n, 0),
          ex ? reference::variance_exact(x.data(), n, 1) : reference::variance_fixed_order(x.data(), n, 1),
      };
      const char* names[] = {"sum", "dot", "squared_norm", "norm", "mean", "variance0", "variance1"};
      for (std::size_t k = 0; k < want.size(); ++k) table.add(std::string(names[k]) + "." + at, fnv1a64(&want[k], sizeof(A)));
      bitexact_test::for_each_fast_path([&](const execution& e, const std::string& label) {
        const std::vector<A> got = {sum(x.data(), n, t, e),          dot(x.data(), y.data(), n, t, e),
                                    squared_norm(x.data(), n, t, e), norm(x.data(), n, t, e),
                                    mean(x.data(), n, t, e),         variance(x.data(), n, 0, t, e),
                                    variance(x.data(), n, 1, t, e)};
        for (std::size_t k = 0; k < want.size(); ++k)
          EXPECT_EQ(bits(got[k]), bits(want[k])) << names[k] << "." << at << " " << label;
      });
    }
  }
}

TEST(ReduceGolden, EveryOpKnownAnswerFile) {
  static_assert(reduce_order_version == 1, "order version changed: write reduce_golden_v2.txt and update CHANGELOG");
  bitexact_test::golden_table table;
  reduce_golden_rows<float>(table, "f32", 100);
  reduce_golden_rows<double>(table, "f64", 200);
  reduce_golden_rows<bfloat16>(table, "bf16", 300);
  table.check("reduce_golden_v1.txt");
}

}  // namespace
