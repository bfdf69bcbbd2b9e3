// minmax_test: min/max/argmin/argmax against the reference, bit for bit, over the invariance
// matrix (threads x ISAs x sizes x alignment), the NaN / signed-zero / tie rules, bad input and
// golden hashes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include <bitexact/core/fixed_order.hpp>
#include <bitexact/minmax.hpp>
#include <bitexact/reference/minmax.hpp>

#include "random_test_util.hpp"

#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

using namespace bitexact;

#include "split_probe.hpp"

namespace {

template <class T>
std::uint64_t bits_of(T x) {
  std::uint64_t u = 0;
  std::memcpy(&u, &x, sizeof x);
  return u;
}

using bitexact_test::splitmix;

template <class T>
T make(double v) {
  if constexpr (std::is_same<T, bfloat16>::value) return bfloat16::from_float(static_cast<float>(v));
  else return static_cast<T>(v);
}
template <class T>
T from_bits_u64(std::uint64_t u) {
  T x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}
template <class T>
T quiet_nan_neg() {  // a NaN with the sign bit and a payload: not the canonical NaN
  if constexpr (std::is_same<T, float>::value) return from_bits_u64<float>(0xffc01234u);
  else if constexpr (std::is_same<T, double>::value) return from_bits_u64<double>(0xfff8000000001234ull);
  else return bfloat16::from_bits(0xffc3u);
}
template <class T>
std::uint64_t canonical_nan_bits() {
  if constexpr (std::is_same<T, float>::value) return 0x7fc00000u;
  else if constexpr (std::is_same<T, double>::value) return 0x7ff8000000000000ull;
  else return 0x7fc0u;
}

/// Values in a small range so ties are common; `flavor` adds zeros of both signs, infinities
/// or a NaN at a chosen place.
template <class T>
std::vector<T> data(std::size_t n, std::uint64_t seed, int flavor) {
  splitmix g{seed};
  std::vector<T> v(n);
  for (auto& x : v) x = make<T>(std::floor(g.uniform() * 64.0) - 32.0);
  if (n == 0) return v;
  if (flavor == 1) {
    for (std::size_t k = 0; k < 5; ++k) v[g() % n] = make<T>(-0.0);
    for (std::size_t k = 0; k < 5; ++k) v[g() % n] = make<T>(0.0);
  } else if (flavor == 2) {
    v[g() % n] = make<T>(std::numeric_limits<double>::infinity());
    v[g() % n] = make<T>(-std::numeric_limits<double>::infinity());
  } else if (flavor == 3) {
    const std::size_t at = g() % n;
    v[at] = quiet_nan_neg<T>();
    if (at + 1 < n) v[at + 1 + g() % (n - at - 1 ? n - at - 1 : 1)] = make<T>(std::nan(""));
  } else if (flavor == 4) {  // all zeros of mixed sign
    for (auto& x : v) x = make<T>(g() & 1 ? -0.0 : 0.0);
  }
  return v;
}

template <class T>
void check_all_configs(const T* x, std::size_t n, const std::string& what) {
  const std::size_t rmin = reference::argmin(x, n), rmax = reference::argmax(x, n);
  const std::uint64_t vmin = bits_of(reference::min(x, n)), vmax = bits_of(reference::max(x, n));
  for (isa i : usable_isas())
    for (int t : bitexact_test::matrix_threads) {
      const execution e{t, i};
      SCOPED_TRACE(what + " isa=" + isa_name(i) + " threads=" + std::to_string(t));
      ASSERT_EQ(argmin(x, n, e), rmin);
      ASSERT_EQ(argmax(x, n, e), rmax);
      ASSERT_EQ(bits_of(bitexact::min(x, n, e)), vmin);
      ASSERT_EQ(bits_of(bitexact::max(x, n, e)), vmax);
    }
}

template <class T>
void invariance_matrix() {
  bitexact_test::split_check split_("invariance_matrix");
  const std::size_t sizes[] = {1, 2, 3, 5, 7, 15, 16, 17, 31, 33, 63, 64, 65, 127, 129, 251, 257,
                               1021, 1025, 4097, 65535, 65536, 65537, 131071, 200003};
  for (std::size_t n : sizes)
    for (int flavor = 0; flavor < 5; ++flavor)
      for (std::size_t off : {0, 1, 3}) {
        const auto v = data<T>(n + off, 1000 * n + flavor, flavor);
        check_all_configs(v.data() + off, n, "n=" + std::to_string(n) + " flavor=" +
                                                  std::to_string(flavor) + " off=" + std::to_string(off));
      }
  // One case above 10^6 values, with the extremes placed in the last chunk and a tie in the first.
  const std::size_t n = 1000003;
  auto v = data<T>(n + 1, 77, 0);
  v[5] = make<T>(-100.0);
  v[n - 3] = make<T>(-100.0);
  v[n - 2] = make<T>(200.0);
  check_all_configs(v.data() + 1, n, "n=1000003");
  EXPECT_EQ(argmin(v.data() + 1, n), 4u);
  EXPECT_EQ(argmax(v.data() + 1, n), n - 3);
}

TEST(MinMax, InvarianceMatrixFloat) { invariance_matrix<float>(); }
TEST(MinMax, InvarianceMatrixDouble) { invariance_matrix<double>(); }
TEST(MinMax, InvarianceMatrixBfloat16) { invariance_matrix<bfloat16>(); }

template <class T>
void special_rules() {
  const T nz = make<T>(-0.0), pz = make<T>(0.0);
  for (isa i : usable_isas())
    for (int t : {1, 3}) {
      const execution e{t, i};
      SCOPED_TRACE(std::string(isa_name(i)) + " threads=" + std::to_string(t));
      // Signed zeros: -0 < +0, whatever the position, whatever the vector lane.
      std::vector<T> z(100, pz);
      z[70] = nz;
      z[90] = nz;
      EXPECT_EQ(bits_of(bitexact::min(z.data(), z.size(), e)), bits_of(nz));
      EXPECT_EQ(bits_of(bitexact::max(z.data(), z.size(), e)), bits_of(pz));
      EXPECT_EQ(argmin(z.data(), z.size(), e), 70u);
      EXPECT_EQ(argmax(z.data(), z.size(), e), 0u);
      // Ties: the lowest index wins, also across chunks and lanes.
      std::vector<T> tie(70000, make<T>(1.0));
      tie[66000] = make<T>(-3.0);
      tie[69999] = make<T>(-3.0);
      tie[65537] = make<T>(5.0);
      tie[12] = make<T>(5.0);
      EXPECT_EQ(argmin(tie.data(), tie.size(), e), 66000u);
      EXPECT_EQ(argmax(tie.data(), tie.size(), e), 12u);
      // NaN: canonical NaN out; argmin/argmax name the first NaN even if a -inf/+inf comes first.
      std::vector<T> v(1000, make<T>(2.0));
      v[3] = make<T>(-std::numeric_limits<double>::infinity());
      v[4] = make<T>(std::numeric_limits<double>::infinity());
      v[500] = quiet_nan_neg<T>();
      v[600] = make<T>(std::nan(""));
      EXPECT_EQ(bits_of(bitexact::min(v.data(), v.size(), e)), canonical_nan_bits<T>());
      EXPECT_EQ(bits_of(bitexact::max(v.data(), v.size(), e)), canonical_nan_bits<T>());
      EXPECT_EQ(argmin(v.data(), v.size(), e), 500u);
      EXPECT_EQ(argmax(v.data(), v.size(), e), 500u);
      v[500] = make<T>(2.0);
      v[600] = make<T>(2.0);
      EXPECT_EQ(argmin(v.data(), v.size(), e), 3u);
      EXPECT_EQ(argmax(v.data(), v.size(), e), 4u);
      // Single element, and all NaN.
      EXPECT_EQ(bits_of(bitexact::min(&nz, 1, e)), bits_of(nz));
      std::vector<T> allnan(37, quiet_nan_neg<T>());
      EXPECT_EQ(argmax(allnan.data(), allnan.size(), e), 0u);
      EXPECT_EQ(bits_of(bitexact::max(allnan.data(), allnan.size(), e)), canonical_nan_bits<T>());
    }
  // The reference states the same rules.
  const T pair[2] = {pz, nz};
  EXPECT_EQ(bits_of(reference::min(pair, 2)), bits_of(nz));
  EXPECT_EQ(bits_of(reference::max(pair, 2)), bits_of(pz));
}

TEST(MinMax, SpecialValuesFloat) { special_rules<float>(); }
TEST(MinMax, SpecialValuesDouble) { special_rules<double>(); }
TEST(MinMax, SpecialValuesBfloat16) { special_rules<bfloat16>(); }

TEST(MinMax, DenormalsAndExtremes) {
  const float d = std::numeric_limits<float>::denorm_min();
  std::vector<float> v = {1.0f, d, -d, std::numeric_limits<float>::max(), -std::numeric_limits<float>::max(),
                          -0.0f, 0.0f, std::numeric_limits<float>::lowest()};
  for (int rep = 0; rep < 5; ++rep) v.insert(v.end(), v.begin(), v.begin() + 8);
  for (isa i : usable_isas()) {
    const execution e{2, i};
    EXPECT_EQ(argmin(v.data(), v.size(), e), reference::argmin(v.data(), v.size()));
    EXPECT_EQ(argmax(v.data(), v.size(), e), reference::argmax(v.data(), v.size()));
    // Between the denormals, -0.0 and +0.0 the order is -d < -0 < +0 < d.
    const float small[4] = {d, 0.0f, -0.0f, -d};
    EXPECT_EQ(argmin(small, 4, e), 3u);
    EXPECT_EQ(argmax(small, 4, e), 0u);
    const float zeros_and_d[3] = {d, 0.0f, -0.0f};
    EXPECT_EQ(argmin(zeros_and_d, 3, e), 2u);
  }
}

#if defined(__SSE2__)
/// The kernels compare bits, so DAZ (denormal inputs read as zero by float compares) cannot
/// change a result: a denormal stays above +0 and below the next denormal.
TEST(MinMax, UnaffectedByDenormalsAreZero) {
  const float d = std::numeric_limits<float>::denorm_min();
  std::vector<float> v(1000, 1.0f);
  v[10] = 2 * d;
  v[500] = d;
  v[700] = 0.0f;
  const unsigned csr = _mm_getcsr();
  _mm_setcsr(csr | 0x8040u);  // FTZ + DAZ
  std::vector<std::size_t> got;
  std::vector<std::uint64_t> vals;
  for (isa i : usable_isas())
    for (int t : {1, 3}) {
      const execution e{t, i};
      got.push_back(argmin(v.data(), v.size(), e));
      vals.push_back(bits_of(bitexact::min(v.data() + 1, 600, e)));
    }
  _mm_setcsr(csr);
  for (std::size_t k = 0; k < got.size(); ++k) {
    EXPECT_EQ(got[k], 700u);
    EXPECT_EQ(vals[k], bits_of(d));
  }
}
#endif

TEST(MinMax, BadInput) {
  const float x[1] = {1.0f};
  EXPECT_THROW(bitexact::min(x, 0), std::invalid_argument);
  EXPECT_THROW(bitexact::max(x, 0), std::invalid_argument);
  EXPECT_THROW(argmin(x, 0), std::invalid_argument);
  EXPECT_THROW(argmax(x, 0), std::invalid_argument);
  EXPECT_THROW(bitexact::min(static_cast<const double*>(nullptr), 3), std::invalid_argument);
  EXPECT_THROW(argmax(static_cast<const bfloat16*>(nullptr), 1), std::invalid_argument);
  EXPECT_THROW(argmax(x, 1, execution{-1, isa::automatic}), std::invalid_argument);
}

/// Golden hashes: the results over fixed inputs. Pinned to reduce_order_version.
TEST(MinMax, GoldenHashes) {
  static_assert(reduce_order_version == 1, "order version changed: update the golden hashes");
  std::vector<std::uint64_t> out;
  for (std::size_t n : {1u, 17u, 1000u, 70001u})
    for (int flavor = 0; flavor < 5; ++flavor) {
      const auto f = data<float>(n, n + 7 * flavor, flavor);
      const auto d = data<double>(n, n + 7 * flavor, flavor);
      const auto b = data<bfloat16>(n, n + 7 * flavor, flavor);
      out.push_back(argmin(f.data(), n));
      out.push_back(argmax(d.data(), n));
      out.push_back(argmin(b.data(), n));
      out.push_back(bits_of(bitexact::min(f.data(), n)));
      out.push_back(bits_of(bitexact::max(d.data(), n)));
      out.push_back(bits_of(bitexact::max(b.data(), n)));
    }
  const std::uint64_t h = bitexact_test::fnv1a64(out.data(), out.size() * sizeof out[0]);
  EXPECT_EQ(h, 0x1210503649f2eb9eull) << std::hex << "hash 0x" << h;
}

}  // namespace

// ---------------------------------------------------------------- known-answer file (order version 1)

#include "golden_file.hpp"

namespace {

// argmin, argmax, min and max, float, double and bfloat16, sizes from 1 to several 2^16 chunks,
// plain data, data with ties (rounded), and data with NaNs and signed zeros. The reference's
// results are pinned in tests/data/minmax_golden_v1.txt; every fast path must match.
template <class T>
void minmax_golden_rows(bitexact_test::golden_table& table, const char* tname, std::uint32_t tag) {
  for (std::size_t n : {std::size_t{1}, std::size_t{17}, std::size_t{1000}, std::size_t{70001}, std::size_t{300007}})
    for (int flavor = 0; flavor < 3; ++flavor) {
      auto x = bitexact_test::golden_data<T>(n, tag + static_cast<std::uint32_t>(n + flavor), 100.0);
      auto setv = [&](std::size_t i, double v) {
        if constexpr (std::is_same<T, bfloat16>::value) x[i] = bfloat16::from_float(static_cast<float>(v));
        else x[i] = static_cast<T>(v);
      };
      if (flavor == 1)  // ties
        for (std::size_t i = 0; i < n; ++i) setv(i, std::floor(static_cast<double>(core::widen(x[i])) / 64.0));
      if (flavor == 2)  // NaNs (two payloads) and signed zeros
        for (std::size_t i = n / 3; i < n; i += 977) {
          setv(i, (i / 977) % 3 == 0 ? -0.0 : (i / 977) % 3 == 1 ? 0.0 : std::numeric_limits<double>::quiet_NaN());
          if ((i / 977) % 5 == 4) std::memset(&x[i], 0xff, sizeof(T));  // a negative NaN with a payload
        }
      const std::string at = std::string(".") + tname + "/" + std::to_string(n) + ".flavor" + std::to_string(flavor);
      const std::uint64_t want[4] = {reference::argmin(x.data(), n), reference::argmax(x.data(), n),
                                     bits_of(reference::min(x.data(), n)), bits_of(reference::max(x.data(), n))};
      const char* names[4] = {"argmin", "argmax", "min", "max"};
      for (int k = 0; k < 4; ++k) table.add(names[k] + at, bitexact_test::fnv1a64(&want[k], 8));
      bitexact_test::for_each_fast_path([&](const execution& e, const std::string& label) {
        const std::uint64_t got[4] = {argmin(x.data(), n, e), argmax(x.data(), n, e), bits_of(bitexact::min(x.data(), n, e)),
                                      bits_of(bitexact::max(x.data(), n, e))};
        for (int k = 0; k < 4; ++k) EXPECT_EQ(got[k], want[k]) << names[k] << at << " " << label;
      });
    }
}

TEST(MinMaxGolden, EveryOpKnownAnswerFile) {
  static_assert(reduce_order_version == 1, "order version changed: write minmax_golden_v2.txt and update CHANGELOG");
  bitexact_test::golden_table table;
  minmax_golden_rows<float>(table, "f32", 100);
  minmax_golden_rows<double>(table, "f64", 200);
  minmax_golden_rows<bfloat16>(table, "bf16", 300);
  table.check("minmax_golden_v1.txt");
}

}  // namespace
