// random_test: generators, keys, distributions, the invariance matrix and bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <Random123/philox.h>
#include <Random123/threefry.h>

#include <bitexact/bitexact.hpp>
#include <bitexact/reference/random.hpp>

#include "random_test_util.hpp"
#include "test_data.hpp"

using namespace bitexact;
using bitexact_test::fnv1a64;

#include "split_probe.hpp"

namespace {

// ---------------------------------------------------------------- known answers (one file)

template <class Gen>
void check_kat_line(std::istringstream& in) {
  typename Gen::ctr_type c{}, expect{};
  typename Gen::key_type k{};
  auto rd = [&](auto& x) {
    std::string h;
    in >> h;
    x = static_cast<std::remove_reference_t<decltype(x)>>(std::stoull(h, nullptr, 16));
  };
  for (auto& x : c) rd(x);
  for (auto& x : k) rd(x);
  for (auto& x : expect) rd(x);
  EXPECT_EQ(Gen{}(c, k), expect);
}

TEST(RandomKat, AllGeneratorsMatchKnownAnswerFile) {
  const std::string path = bitexact_test::data_path("kat_vectors.txt");
  std::ifstream f(path);
  ASSERT_TRUE(f.good()) << "missing " << path << " (set BITEXACT_TEST_DATA_DIR to the tests/data folder)";
  std::string line;
  int n = 0;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream in(line);
    std::string name;
    in >> name;
    if (name == "philox4x32_10") check_kat_line<philox4x32_10>(in);
    else if (name == "philox4x64_10") check_kat_line<philox4x64_10>(in);
    else if (name == "threefry2x32_20") check_kat_line<threefry2x32_20>(in);
    else if (name == "threefry4x32_20") check_kat_line<threefry4x32_20>(in);
    else if (name == "threefry4x64_20") check_kat_line<threefry4x64_20>(in);
    else ADD_FAILURE() << "unknown generator " << name;
    ++n;
  }
  EXPECT_EQ(n, 15);
}

// The generators are constexpr.
static_assert(philox4x32_10{}({0, 0, 0, 0}, {0, 0})[0] == 0x6627e8d5u, "constexpr Philox");
static_assert(threefry2x32_20{}({0, 0}, {0, 0})[1] == 0x99ba4efeu, "constexpr Threefry");

// ---------------------------------------------------------------- Random123 as the oracle

template <class Mine, class Theirs>
void million_against_random123() {
  std::mt19937_64 rng(12345);
  long bad = 0;
  for (int t = 0; t < 1000000; ++t) {
    typename Theirs::ctr_type c;
    typename Theirs::key_type k;
    typename Mine::ctr_type mc{};
    typename Mine::key_type mk{};
    for (std::size_t i = 0; i < mc.size(); ++i) mc[i] = c[i] = static_cast<typename Mine::word_type>(rng());
    for (std::size_t i = 0; i < mk.size(); ++i) mk[i] = k[i] = static_cast<typename Mine::word_type>(rng());
    const auto r = Theirs{}(c, k);
    const auto m = Mine{}(mc, mk);
    for (std::size_t i = 0; i < m.size(); ++i) bad += (r[i] != m[i]);
  }
  EXPECT_EQ(bad, 0);
}

TEST(RandomOracle, Philox4x32MillionCounters) { million_against_random123<philox4x32_10, r123::Philox4x32_R<10>>(); }
TEST(RandomOracle, Philox4x64MillionCounters) { million_against_random123<philox4x64_10, r123::Philox4x64_R<10>>(); }
TEST(RandomOracle, Threefry2x32MillionCounters) { million_against_random123<threefry2x32_20, r123::Threefry2x32_R<20>>(); }
TEST(RandomOracle, Threefry4x32MillionCounters) { million_against_random123<threefry4x32_20, r123::Threefry4x32_R<20>>(); }
TEST(RandomOracle, Threefry4x64MillionCounters) { million_against_random123<threefry4x64_20, r123::Threefry4x64_R<20>>(); }

// ---------------------------------------------------------------- golden values (order version 1)

TEST(RandomGolden, KeyDerivation) {
  static_assert(random_order_version == 1, "order version changed: update the golden values and CHANGELOG");
  const auto k = derive_key<philox4x32_10>(42, 7, 1, 3);
  EXPECT_EQ(k[0], 0x6ba6ca4bu);
  EXPECT_EQ(k[1], 0x27d1276eu);
  const auto k2 = derive_key<threefry4x64_20>(42, 7, 1, 3);
  EXPECT_EQ(k2[0], 0x27d1276e6ba6ca4bull);
  EXPECT_EQ(k2[1], 0xd662f8e3f162a5e3ull);
  EXPECT_EQ(k2[2], 0x7ca424136cb19a56ull);
  EXPECT_EQ(k2[3], 0xfd626c6dad9470deull);
  EXPECT_EQ(tag_of("dropout"), 0x2738a690u);
  // Distinct (step, rank, tag) give distinct keys; the same inputs give the same key.
  EXPECT_NE(derive_key<philox4x32_10>(42, 7, 1, 3), derive_key<philox4x32_10>(42, 8, 1, 3));
  EXPECT_NE(derive_key<philox4x32_10>(42, 7, 1, 3), derive_key<philox4x32_10>(42, 7, 2, 3));
  EXPECT_NE(derive_key<philox4x32_10>(42, 7, 1, 3), derive_key<philox4x32_10>(42, 7, 1, 4));
  EXPECT_NE(derive_key<philox4x32_10>(42, 7, 1, 3), derive_key<philox4x32_10>(43, 7, 1, 3));
}

struct golden_row {
  const char* gen;
  std::uint64_t words, uf, ud, nf, nd, bern, i32, i64;
};
// fnv1a64 of 4099 values starting at value 5 of stream::from_seed(20261121, 3, 1, tag_of("golden")).
const golden_row golden[] = {
  {"philox4x32_10", 0xe9568a1635f43c57ull, 0xc038661105cf83fbull, 0xc2c1997fd41e582dull, 0x3aedf17d5cdca925ull, 0x01e42893be55f8f7ull, 0x020d41fc265886adull, 0x05c9c04318b1a2a2ull, 0x46522d7366bd72caull},
  {"philox4x64_10", 0xd84983f764800a8bull, 0x1efddeac706e8a0aull, 0xb12a473de524483aull, 0x6e489d2aa32515ceull, 0x7375c8159b8281c6ull, 0x5a0bb385f3f58823ull, 0xc32992a9b23d6a01ull, 0x4a3920d64b166e77ull},
  {"threefry2x32_20", 0x7f363e89d9c67a61ull, 0xdbb878e2a27b6445ull, 0xddbcd89ee5dd3077ull, 0x83f0ab3d18f162b0ull, 0x46a5348d208ea16bull, 0xd02986e1adf284a4ull, 0xc4ca4c726dda44adull, 0x2687698c54043535ull},
  {"threefry4x32_20", 0x4a35345d9dcb5e2bull, 0x93764af72d57e9abull, 0x4ff8ae1235ac28baull, 0xafc9441c616d80e6ull, 0xcd90f7a17431e440ull, 0x17428d2aef99be72ull, 0xf6186b47b02b4ca1ull, 0x717246aa6be55593ull},
  {"threefry4x64_20", 0x6b911ddd4256ff85ull, 0x4b70e44c2705f7f3ull, 0x8a8346e8f2ee14ceull, 0x5802dd0e6412e7a2ull, 0x20b3c80290a59febull, 0x7dc907afae1c4694ull, 0x2c846ad26e4351abull, 0x3371327cc86b817aull},
};

template <class Gen>
void check_golden(const golden_row& g) {
  SCOPED_TRACE(g.gen);
  const auto s = stream<Gen>::from_seed(20261121, 3, 1, tag_of("golden"));
  const std::size_t n = 4099;
  // The fast path (default execution) must reproduce the golden hashes too.
  std::vector<std::uint32_t> w(n);
  generate(s, 5, w.data(), n);
  EXPECT_EQ(fnv1a64(w.data(), n * 4), g.words);
  std::vector<float> f(n);
  generate_uniform(s, 5, f.data(), n);
  EXPECT_EQ(fnv1a64(f.data(), n * 4), g.uf);
  std::vector<double> d(n);
  generate_uniform(s, 5, d.data(), n);
  EXPECT_EQ(fnv1a64(d.data(), n * 8), g.ud);
  generate_normal(s, 5, f.data(), n);
  EXPECT_EQ(fnv1a64(f.data(), n * 4), g.nf);
  generate_normal(s, 5, d.data(), n);
  EXPECT_EQ(fnv1a64(d.data(), n * 8), g.nd);
  std::vector<std::uint8_t> b(n);
  generate_bernoulli(s, 5, b.data(), n, 0.3);
  EXPECT_EQ(fnv1a64(b.data(), n), g.bern);
  generate_uniform_int(s, 5, w.data(), n, 3000000019u);
  EXPECT_EQ(fnv1a64(w.data(), n * 4), g.i32);
  std::vector<std::uint64_t> q(n);
  generate_uniform_int(s, 5, q.data(), n, 0x9000000000000001ull);
  EXPECT_EQ(fnv1a64(q.data(), n * 8), g.i64);
}

TEST(RandomGolden, DistributionHashes) {
  check_golden<philox4x32_10>(golden[0]);
  check_golden<philox4x64_10>(golden[1]);
  check_golden<threefry2x32_20>(golden[2]);
  check_golden<threefry4x32_20>(golden[3]);
  check_golden<threefry4x64_20>(golden[4]);
}

TEST(RandomGolden, Permutation) {
  const auto p = permutation::for_epoch(1000003, 9, 2);
  std::vector<std::uint64_t> v(1000);
  p.fill(0, v.data(), v.size());
  EXPECT_EQ(fnv1a64(v.data(), 8000), 0x7f5d79bb706c17feull);
}

// ---------------------------------------------------------------- the invariance matrix

const int thread_counts[] = {1, 2, 3, 4, 7, 8};
const std::size_t sizes[] = {0, 1, 2, 3, 5, 7, 31, 63, 64, 65, 127, 1021, 1024, 1025, 8191, 65537, 100003};
const std::uint64_t firsts[] = {0, 1, 3, 17, (1ull << 32) - 5, (1ull << 40) + 3};

/// Runs fast(out, n, exec) for every ISA x thread count, into an output that starts one
/// element past an aligned address (unaligned), and compares with ref(out, n).
template <class T, class Fast, class Ref>
void matrix(Fast&& fast, Ref&& ref, const char* what) {
  bitexact_test::split_check split_(what);
  for (std::uint64_t first : firsts) {
    for (std::size_t n : sizes) {
      std::vector<T> expect(n);
      ref(first, expect.data(), n);
      std::vector<T> buf(n + 2);
      for (isa i : usable_isas()) {
        for (int t : thread_counts) {
          std::fill(buf.begin(), buf.end(), T(0x5A));
          fast(first, buf.data() + 1, n, execution{t, i});
          ASSERT_TRUE(bitexact_test::same_bits(expect, buf.data() + 1, n))
              << what << " first=" << first << " n=" << n << " isa=" << isa_name(i) << " threads=" << t;
          ASSERT_EQ(std::memcmp(&buf[0], &buf[n + 1], sizeof(T)), 0) << "guard overwritten";
          T guard = T(0x5A);
          ASSERT_EQ(std::memcmp(&buf[0], &guard, sizeof(T)), 0) << "guard before the output overwritten";
        }
      }
    }
  }
}

template <class Gen>
void matrix_all_distributions() {
  const auto s = stream<Gen>::from_seed(77, 5, 2, tag_of("matrix"));
  matrix<std::uint32_t>([&](auto f, auto* o, auto n, auto e) { generate(s, f, o, n, e); },
                        [&](auto f, auto* o, auto n) { reference::generate_words(s, f, o, n); }, "words");
  matrix<float>([&](auto f, auto* o, auto n, auto e) { generate_uniform(s, f, o, n, e); },
                [&](auto f, auto* o, auto n) { reference::generate_uniform(s, f, o, n); }, "uniform f32");
  matrix<double>([&](auto f, auto* o, auto n, auto e) { generate_uniform(s, f, o, n, e); },
                 [&](auto f, auto* o, auto n) { reference::generate_uniform(s, f, o, n); }, "uniform f64");
  matrix<float>([&](auto f, auto* o, auto n, auto e) { generate_normal(s, f, o, n, e); },
                [&](auto f, auto* o, auto n) { reference::generate_normal(s, f, o, n); }, "normal f32");
  matrix<double>([&](auto f, auto* o, auto n, auto e) { generate_normal(s, f, o, n, e); },
                 [&](auto f, auto* o, auto n) { reference::generate_normal(s, f, o, n); }, "normal f64");
  matrix<std::uint8_t>([&](auto f, auto* o, auto n, auto e) { generate_bernoulli(s, f, o, n, 0.61, e); },
                       [&](auto f, auto* o, auto n) { reference::generate_bernoulli(s, f, o, n, 0.61); }, "bernoulli");
  // A bound just above 2^31 rejects almost half the attempts: exercises the retry path.
  matrix<std::uint32_t>([&](auto f, auto* o, auto n, auto e) { generate_uniform_int(s, f, o, n, 2147483649u, e); },
                        [&](auto f, auto* o, auto n) { reference::generate_uniform_int(s, f, o, n, 2147483649u); }, "int32");
  matrix<std::uint64_t>([&](auto f, auto* o, auto n, auto e) { generate_uniform_int(s, f, o, n, (1ull << 63) + 1, e); },
                        [&](auto f, auto* o, auto n) { reference::generate_uniform_int(s, f, o, n, (1ull << 63) + 1); }, "int64");
}

TEST(RandomInvariance, Philox4x32AllIsasThreadsSizes) { matrix_all_distributions<philox4x32_10>(); }
TEST(RandomInvariance, Philox4x64AllIsasThreadsSizes) { matrix_all_distributions<philox4x64_10>(); }
TEST(RandomInvariance, Threefry2x32AllIsasThreadsSizes) { matrix_all_distributions<threefry2x32_20>(); }
TEST(RandomInvariance, Threefry4x32AllIsasThreadsSizes) { matrix_all_distributions<threefry4x32_20>(); }
TEST(RandomInvariance, Threefry4x64AllIsasThreadsSizes) { matrix_all_distributions<threefry4x64_20>(); }

TEST(RandomInvariance, DropoutMatchesMaskAcrossIsasAndThreads) {
  const auto s = stream<>::from_seed(3);
  const std::size_t n = 50001;
  std::vector<float> x(n), y(n), y0(n);
  std::vector<std::uint8_t> m(n);
  for (std::size_t i = 0; i < n; ++i) x[i] = static_cast<float>(i % 97) - 48.5f;
  reference::generate_bernoulli(s, 11, m.data(), n, 0.8);
  const float scale = static_cast<float>(1.0 / 0.8);
  for (std::size_t i = 0; i < n; ++i) y0[i] = m[i] ? x[i] * scale : 0.0f;
  for (isa i : usable_isas())
    for (int t : thread_counts) {
      dropout(s, 11, x.data(), y.data(), n, 0.8, execution{t, i});
      ASSERT_TRUE(bitexact_test::same_bits(y0, y.data(), n)) << isa_name(i) << " " << t;
    }
}

TEST(RandomInvariance, SlicesConcatenate) {
  // [a, b) then [b, c) equals [a, c), for every distribution that reads words in pairs too.
  const auto s = stream<threefry4x32_20>::from_seed(8);
  for (std::uint64_t a : {0ull, 1ull, 6ull}) {
    for (std::size_t len1 : {1u, 3u, 1000u}) {
      const std::size_t len2 = 2001;
      std::vector<float> whole(len1 + len2), parts(len1 + len2);
      generate_normal(s, a, whole.data(), whole.size());
      generate_normal(s, a, parts.data(), len1);
      generate_normal(s, a + len1, parts.data() + len1, len2);
      EXPECT_TRUE(bitexact_test::same_bits(whole, parts.data(), parts.size()));
      std::vector<double> wd(len1 + len2), pd(len1 + len2);
      generate_uniform(s, a, wd.data(), wd.size());
      generate_uniform(s, a, pd.data(), len1);
      generate_uniform(s, a + len1, pd.data() + len1, len2);
      EXPECT_TRUE(bitexact_test::same_bits(wd, pd.data(), pd.size()));
    }
  }
}

TEST(RandomInvariance, GlobalAndPerCallSettingsAgree) {
  const auto s = stream<>::from_seed(99);
  std::vector<float> a(300001), b(300001);
  generate_uniform(s, 0, a.data(), a.size(), execution{1, isa::scalar});
  set_num_threads(3);
  set_isa(best_isa());
  EXPECT_EQ(resolved_threads(), 3);
  EXPECT_EQ(resolved_isa(), best_isa());
  generate_uniform(s, 0, b.data(), b.size());
  set_num_threads(0);
  set_isa(isa::automatic);
  EXPECT_TRUE(bitexact_test::same_bits(a, b.data(), b.size()));
}

TEST(RandomInvariance, LargeSliceTwoThreadsEqualsScalar) {
  // 2^24 + 3 values: many canonical chunks, a partial last chunk.
  const auto s = stream<>::from_seed(2024, 1);
  const std::size_t n = (1u << 24) + 3;
  std::vector<std::uint32_t> a(n), b(n);
  generate(s, 123, a.data(), n, execution{1, isa::scalar});
  generate(s, 123, b.data(), n, execution{2, best_isa()});
  EXPECT_TRUE(bitexact_test::same_bits(a, b.data(), n));
}

// ---------------------------------------------------------------- statistics (fixed seeds)

double ks_statistic(std::vector<double> v, double (*cdf)(double)) {
  std::sort(v.begin(), v.end());
  double d = 0;
  const double n = static_cast<double>(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    const double c = cdf(v[i]);
    d = std::max(d, std::max(c - i / n, (i + 1) / n - c));
  }
  return d;
}
double uniform_cdf(double x) { return std::min(1.0, std::max(0.0, x)); }
double normal_cdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

TEST(RandomStatistics, UniformFloatAndDouble) {
  const std::size_t n = 1000000;
  const auto s = stream<>::from_seed(1);
  std::vector<float> f(n);
  generate_uniform(s, 0, f.data(), n);
  std::vector<double> v(f.begin(), f.end());
  double mean = 0, var = 0;
  for (double x : v) mean += x;
  mean /= n;
  for (double x : v) var += (x - mean) * (x - mean);
  var /= n;
  EXPECT_NEAR(mean, 0.5, 5 * std::sqrt(1.0 / 12 / n));
  EXPECT_NEAR(var, 1.0 / 12, 0.001);
  EXPECT_LT(ks_statistic(v, uniform_cdf), 1.63 / std::sqrt(double(n)));  // 1% level
  EXPECT_GE(*std::min_element(f.begin(), f.end()), 0.0f);
  EXPECT_LT(*std::max_element(f.begin(), f.end()), 1.0f);
  std::vector<double> d(n);
  generate_uniform(stream<threefry4x64_20>::from_seed(2), 0, d.data(), n);
  EXPECT_LT(ks_statistic(d, uniform_cdf), 1.63 / std::sqrt(double(n)));
  EXPECT_LT(*std::max_element(d.begin(), d.end()), 1.0);
}

TEST(RandomStatistics, NormalFloatAndDouble) {
  const std::size_t n = 1000000;
  std::vector<float> f(n);
  generate_normal(stream<>::from_seed(5), 0, f.data(), n);
  std::vector<double> v(f.begin(), f.end());
  std::vector<double> d(n);
  generate_normal(stream<philox4x64_10>::from_seed(6), 0, d.data(), n);
  for (const auto* x : {&v, &d}) {
    double m1 = 0, m2 = 0, m3 = 0, m4 = 0;
    for (double z : *x) {
      m1 += z;
      m2 += z * z;
      m3 += z * z * z;
      m4 += z * z * z * z;
    }
    m1 /= n, m2 /= n, m3 /= n, m4 /= n;
    EXPECT_NEAR(m1, 0.0, 0.005);
    EXPECT_NEAR(m2, 1.0, 0.01);
    EXPECT_NEAR(m3, 0.0, 0.02);
    EXPECT_NEAR(m4, 3.0, 0.05);
    EXPECT_LT(ks_statistic(*x, normal_cdf), 1.63 / std::sqrt(double(n)));
  }
}

TEST(RandomStatistics, BernoulliFrequency) {
  const std::size_t n = 1000000;
  std::vector<std::uint8_t> m(n);
  for (double p : {0.1, 0.5, 0.9}) {
    generate_bernoulli(stream<>::from_seed(7), 0, m.data(), n, p);
    double k = 0;
    for (auto b : m) k += b;
    EXPECT_NEAR(k / n, p, 5 * std::sqrt(p * (1 - p) / n)) << p;
  }
  generate_bernoulli(stream<>::from_seed(7), 0, m.data(), n, 0.0);
  EXPECT_EQ(std::count(m.begin(), m.end(), 1), 0);
  generate_bernoulli(stream<>::from_seed(7), 0, m.data(), n, 1.0);
  EXPECT_EQ(std::count(m.begin(), m.end(), 1), static_cast<long>(n));
}

TEST(RandomStatistics, UniformIntChiSquare) {
  const std::size_t n = 1000000;
  for (std::uint32_t bound : {1u, 2u, 7u, 100u, 3000000019u}) {
    std::vector<std::uint32_t> v(n);
    generate_uniform_int(stream<>::from_seed(8), 0, v.data(), n, bound);
    EXPECT_LT(*std::max_element(v.begin(), v.end()), bound);
    if (bound < 2 || bound > 1000) continue;
    std::vector<double> cnt(bound, 0);
    for (auto x : v) cnt[x] += 1;
    double chi = 0;
    const double e = double(n) / bound;
    for (double c : cnt) chi += (c - e) * (c - e) / e;
    const double dof = bound - 1;
    EXPECT_LT(chi, dof + 5 * std::sqrt(2 * dof) + 10) << bound;
  }
  // Bound 2^31 + 1: the top half of [0, bound) must be hit as often as the bottom (no bias).
  std::vector<std::uint32_t> v(n);
  generate_uniform_int(stream<>::from_seed(9), 0, v.data(), n, 2147483649u);
  const double low = static_cast<double>(std::count_if(v.begin(), v.end(), [](std::uint32_t x) { return x < 1073741824u; }));
  EXPECT_NEAR(low / n, 0.5, 0.003);
}

TEST(RandomStatistics, PermutationIsBijectionAndUnbiased) {
  for (std::uint64_t n : {1ull, 2ull, 3ull, 10ull, 1000ull, 65537ull, 1000003ull}) {
    const auto p = permutation::for_epoch(n, 5, 1);
    std::vector<std::uint64_t> v(n);
    p.fill(0, v.data(), n);
    std::vector<char> seen(n, 0);
    for (std::uint64_t i = 0; i < n; ++i) {
      ASSERT_LT(v[i], n);
      ASSERT_FALSE(seen[v[i]]) << "n=" << n;
      seen[v[i]] = 1;
      ASSERT_EQ(p.inverse(v[i]), i);
    }
  }
  // Position of element 0 over many epochs is uniform on [0, 10).
  std::vector<double> cnt(10, 0);
  for (std::uint64_t e = 0; e < 20000; ++e) cnt[permutation::for_epoch(10, 1, e)(0)] += 1;
  double chi = 0;
  for (double c : cnt) chi += (c - 2000) * (c - 2000) / 2000;
  EXPECT_LT(chi, 27.9);  // 0.1% level, 9 dof
  // Different epochs give different orders.
  EXPECT_NE(permutation::for_epoch(1000, 1, 1)(0) * 1000 + permutation::for_epoch(1000, 1, 1)(1),
            permutation::for_epoch(1000, 1, 2)(0) * 1000 + permutation::for_epoch(1000, 1, 2)(1));
}

TEST(RandomMath, LogAndSincosAccuracy) {
  std::mt19937_64 g(3);
  double worst_log = 0, worst_trig = 0;
  for (int i = 0; i < 200000; ++i) {
    const double x = std::ldexp(static_cast<double>((g() >> 11) + 1), -53 - static_cast<int>(g() % 900));
    const double a = core::log(x), b = std::log(x);
    worst_log = std::max(worst_log, std::fabs(a - b) / std::max(std::fabs(b) * 0x1p-52, 0x1p-1074));
    const double t = std::ldexp(static_cast<double>(g() >> 11), -53);
    double s = 0, c = 0;
    core::sincos_2pi(t, s, c);
    const long double T = 2.0L * 3.14159265358979323846264338327950288L * t;
    worst_trig = std::max({worst_trig, std::fabs(s - static_cast<double>(sinl(T))), std::fabs(c - static_cast<double>(cosl(T)))});
  }
  EXPECT_LE(worst_log, 4.0);
  EXPECT_LE(worst_trig, 4e-16);
  EXPECT_TRUE(std::isinf(core::log(0.0)) && core::log(0.0) < 0);
  EXPECT_TRUE(std::isnan(core::log(-1.0)));
  EXPECT_TRUE(std::isnan(core::log(std::numeric_limits<double>::quiet_NaN())));
  EXPECT_EQ(core::log(1.0), 0.0);
  EXPECT_NEAR(core::log(std::numeric_limits<double>::denorm_min()), -744.4400719213812, 1e-12);
}

// ---------------------------------------------------------------- bad input

TEST(RandomBadInput, ZeroCountIsANoOpEvenWithNull) {
  const auto s = stream<>::from_seed(1);
  EXPECT_NO_THROW(generate(s, 0, static_cast<std::uint32_t*>(nullptr), 0));
  EXPECT_NO_THROW(generate_uniform(s, 0, static_cast<float*>(nullptr), 0));
  EXPECT_NO_THROW(generate_normal(s, 0, static_cast<double*>(nullptr), 0));
  EXPECT_NO_THROW(generate_bernoulli(s, 0, nullptr, 0, 0.5));
  EXPECT_NO_THROW(generate_uniform_int(s, 0, static_cast<std::uint32_t*>(nullptr), 0, 5u));
}

TEST(RandomBadInput, NullPointerWithCountThrows) {
  const auto s = stream<>::from_seed(1);
  EXPECT_THROW(generate(s, 0, static_cast<std::uint32_t*>(nullptr), 1), std::invalid_argument);
  EXPECT_THROW(generate_uniform(s, 0, static_cast<double*>(nullptr), 3), std::invalid_argument);
  EXPECT_THROW(generate_normal(s, 0, static_cast<float*>(nullptr), 3), std::invalid_argument);
  EXPECT_THROW(generate_bernoulli(s, 0, nullptr, 3, 0.5), std::invalid_argument);
  EXPECT_THROW(generate_uniform_int(s, 0, static_cast<std::uint64_t*>(nullptr), 3, std::uint64_t{5}), std::invalid_argument);
  EXPECT_THROW(permutation(5, s.key()).fill(0, nullptr, 2), std::invalid_argument);
}

TEST(RandomBadInput, BadParametersThrowAndWriteNothing) {
  const auto s = stream<>::from_seed(1);
  std::vector<std::uint8_t> m(10, 7);
  for (double p : {-0.1, 1.5, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()})
    EXPECT_THROW(generate_bernoulli(s, 0, m.data(), m.size(), p), std::invalid_argument) << p;
  EXPECT_EQ(std::count(m.begin(), m.end(), 7), 10);
  std::vector<float> x(10, 1.0f), y(10, 2.0f);
  EXPECT_THROW(dropout(s, 0, x.data(), y.data(), 10, 0.0), std::invalid_argument);
  EXPECT_EQ(std::count(y.begin(), y.end(), 2.0f), 10);
  std::vector<std::uint32_t> v(10, 9);
  EXPECT_THROW(generate_uniform_int(s, 0, v.data(), v.size(), 0u), std::invalid_argument);
  EXPECT_EQ(std::count(v.begin(), v.end(), 9u), 10);
  EXPECT_THROW(permutation(0, s.key()), std::invalid_argument);
}

TEST(RandomBadInput, PermutationEdgeSizes) {
  const auto p1 = permutation::for_epoch(1, 3, 4);
  EXPECT_EQ(p1(0), 0u);
  EXPECT_EQ(p1.inverse(0), 0u);
  EXPECT_THROW(p1(1), std::out_of_range);
  const auto p = permutation::for_epoch(10, 3, 4);
  std::uint64_t out[4];
  EXPECT_THROW(p.fill(8, out, 4), std::out_of_range);
  // Huge n works in O(1) memory.
  const auto big = permutation::for_epoch(std::numeric_limits<std::uint64_t>::max(), 1, 1);
  const std::uint64_t y = big(123456789);
  EXPECT_EQ(big.inverse(y), 123456789u);
}

TEST(RandomBadInput, CounterSpaceOverflowThrowsAndWritesNothing) {
  const auto s = stream<>::from_seed(1);
  const std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
  std::vector<std::uint32_t> w(4, 5);
  EXPECT_THROW(generate(s, max - 1, w.data(), 4), std::out_of_range);
  EXPECT_EQ(std::count(w.begin(), w.end(), 5u), 4);
  EXPECT_NO_THROW(generate(s, max - 4, w.data(), 4));  // the last values are fine
  EXPECT_EQ(w[3], s.word(max - 1));
  std::vector<double> d(4, 0.5);
  EXPECT_THROW(generate_uniform(s, (1ull << 63) - 2, d.data(), 4), std::out_of_range);  // 2 words per value
  EXPECT_NO_THROW(generate_uniform(s, (1ull << 63) - 4, d.data(), 4));
  EXPECT_THROW(generate_normal(s, (1ull << 63) - 1, d.data(), 2), std::out_of_range);
}

TEST(RandomBadInput, IsaNamesAndUnsupportedIsas) {
  EXPECT_EQ(parse_isa("avx2"), isa::avx2);
  EXPECT_EQ(parse_isa("scalar"), isa::scalar);
  EXPECT_THROW(parse_isa("avx1024"), std::invalid_argument);
  EXPECT_THROW(set_num_threads(-1), std::invalid_argument);
  const auto s = stream<>::from_seed(1);
  std::uint32_t w[4];
  for (isa i : {isa::sse2, isa::avx2, isa::avx512, isa::neon}) {
    if (isa_usable(i)) {
      EXPECT_NO_THROW(generate(s, 0, w, 4, execution{1, i}));
    } else {
      EXPECT_THROW(generate(s, 0, w, 4, execution{1, i}), std::invalid_argument) << isa_name(i);
      std::printf("[ SKIPPED  ] ISA %s: not %s\n", isa_name(i), build_has_isa(i) ? "supported by this CPU" : "compiled into this build");
    }
  }
}

/// Run by CTest with BITEXACT_ISA / BITEXACT_NUM_THREADS set (see tests/CMakeLists.txt).
TEST(RandomEnvironment, VariablesSelectIsaAndThreads) {
  const char* want_isa = std::getenv("BITEXACT_EXPECT_ISA");
  const char* want_threads = std::getenv("BITEXACT_EXPECT_THREADS");
  if (want_isa == nullptr) GTEST_SKIP() << "run through CTest's random_env tests";
  EXPECT_EQ(std::string(isa_name(resolved_isa())), want_isa);
  EXPECT_EQ(resolved_threads(), std::atoi(want_threads));
  const auto s = stream<>::from_seed(4);
  std::vector<float> a(100000), b(100000);
  generate_uniform(s, 0, a.data(), a.size());
  reference::generate_uniform(s, 0, b.data(), b.size());
  EXPECT_TRUE(bitexact_test::same_bits(a, b.data(), b.size()));
}

}  // namespace

// ---------------------------------------------------------------- known-answer file (order version 1)

#include <bitexact/curand_compat.hpp>

#include "golden_file.hpp"

namespace {

// Every public op of random.hpp for every generator: raw words, uniform float/double, normal
// float/double, bernoulli (three keep probabilities), dropout, uniform_int 32/64 (bounds that
// reject and that do not), and the permutation (fill, and inverse). Slices start at an odd
// counter. The reference's hashes are pinned in tests/data/random_golden_v1.txt and every fast
// path (default, each ISA x threads {1,2,3}, grain lowered) must give the same bytes.
template <class Gen>
void random_golden_rows(bitexact_test::golden_table& table, const char* gname) {
  const auto s = stream<Gen>::from_seed(20261130, 5, 2, tag_of("golden_v1"));
  const std::size_t n = 10007;
  const std::uint64_t first = 13;
  auto pin = [&](const std::string& name, const auto& want, auto&& run) {
    table.add(name + "." + gname, want);
    bitexact_test::for_each_fast_path([&](const execution& e, const std::string& label) {
      auto got = want;
      std::fill(got.begin(), got.end(), decltype(got[0] + 0)(0x5a));
      run(e, got);
      EXPECT_TRUE(bitexact_test::same_bits(want, got.data(), got.size())) << name << "." << gname << " " << label;
    });
  };
  std::vector<std::uint32_t> w(n);
  reference::generate_words(s, first, w.data(), n);
  pin("words", w, [&](const execution& e, std::vector<std::uint32_t>& o) { generate(s, first, o.data(), n, e); });
  std::vector<float> f(n);
  std::vector<double> d(n);
  reference::generate_uniform(s, first, f.data(), n);
  pin("uniform.f32", f, [&](const execution& e, std::vector<float>& o) { generate_uniform(s, first, o.data(), n, e); });
  reference::generate_uniform(s, first, d.data(), n);
  pin("uniform.f64", d, [&](const execution& e, std::vector<double>& o) { generate_uniform(s, first, o.data(), n, e); });
  reference::generate_normal(s, first, f.data(), n);
  pin("normal.f32", f, [&](const execution& e, std::vector<float>& o) { generate_normal(s, first, o.data(), n, e); });
  reference::generate_normal(s, first, d.data(), n);
  pin("normal.f64", d, [&](const execution& e, std::vector<double>& o) { generate_normal(s, first, o.data(), n, e); });
  for (double keep : {0.0, 0.3, 0.9}) {
    std::vector<std::uint8_t> b(n);
    reference::generate_bernoulli(s, first, b.data(), n, keep);
    pin("bernoulli." + std::to_string(keep).substr(0, 3), b,
        [&](const execution& e, std::vector<std::uint8_t>& o) { generate_bernoulli(s, first, o.data(), n, keep, e); });
  }
  {  // dropout = the bernoulli mask times 1 / keep
    const double keep = 0.7;
    const auto x = bitexact_test::golden_data<float>(n, 700);
    std::vector<std::uint8_t> mask(n);
    reference::generate_bernoulli(s, first, mask.data(), n, keep);
    std::vector<float> y(n);
    const float scale = static_cast<float>(1.0 / keep);
    for (std::size_t i = 0; i < n; ++i) y[i] = mask[i] ? x[i] * scale : 0.0f;
    pin("dropout.0.7", y, [&](const execution& e, std::vector<float>& o) { dropout(s, first, x.data(), o.data(), n, keep, e); });
  }
  for (std::uint32_t bound : {1u, 6u, 3000000019u}) {
    std::vector<std::uint32_t> q(n);
    reference::generate_uniform_int(s, first, q.data(), n, bound);
    pin("uniform_int.u32." + std::to_string(bound), q,
        [&](const execution& e, std::vector<std::uint32_t>& o) { generate_uniform_int(s, first, o.data(), n, bound, e); });
  }
  for (std::uint64_t bound : {std::uint64_t(7), std::uint64_t(0x9000000000000001ull)}) {
    std::vector<std::uint64_t> q(n);
    reference::generate_uniform_int(s, first, q.data(), n, bound);
    pin("uniform_int.u64." + std::to_string(bound), q,
        [&](const execution& e, std::vector<std::uint64_t>& o) { generate_uniform_int(s, first, o.data(), n, bound, e); });
  }
}

TEST(RandomGolden, EveryOpKnownAnswerFile) {
  static_assert(random_order_version == 1, "order version changed: write random_golden_v2.txt and update CHANGELOG");
  bitexact_test::golden_table table;
  random_golden_rows<philox4x32_10>(table, "philox4x32_10");
  random_golden_rows<philox4x64_10>(table, "philox4x64_10");
  random_golden_rows<threefry2x32_20>(table, "threefry2x32_20");
  random_golden_rows<threefry4x32_20>(table, "threefry4x32_20");
  random_golden_rows<threefry4x64_20>(table, "threefry4x64_20");
  // The permutation (philox4x32_10 keys): fill of a slice, and the inverse of each value.
  for (std::uint64_t size : {std::uint64_t(1), std::uint64_t(1000003), std::uint64_t(1) << 40}) {
    const auto p = permutation::for_epoch(size, 9, 2);
    const std::size_t count = static_cast<std::size_t>(std::min<std::uint64_t>(size, 5000));
    const std::uint64_t first = size > 5000 ? size - 5000 : 0;
    std::vector<std::uint64_t> want(count);
    reference::generate_permutation(p.core(), first, want.data(), count);
    table.add("permutation.fill/" + std::to_string(size), want);
    for (std::size_t k = 0; k < count; ++k) ASSERT_EQ(p.inverse(want[k]), first + k);
    bitexact_test::for_each_fast_path([&](const execution& e, const std::string& label) {
      std::vector<std::uint64_t> got(count, 0);
      p.fill(first, got.data(), count, e);
      EXPECT_EQ(got, want) << "permutation " << size << " " << label;
    });
  }
  // curand_compat (cuRAND's host Philox4_32_10 API): words, uniform float and double, from an
  // offset inside a round, with its scalar reference (core/curand_philox.hpp).
  {
    const std::uint64_t seed = 1234567, offset = 262141;
    const std::size_t n = 10007;
    std::vector<std::uint32_t> w(n);
    std::vector<float> f(n);
    std::vector<double> d(n);
    curand_compat::reference::generate(seed, offset, w.data(), n);
    curand_compat::reference::generate_uniform(seed, offset, f.data(), n);
    curand_compat::reference::generate_uniform_double(seed, offset, d.data(), n);
    table.add("curand_compat.generate", w);
    table.add("curand_compat.generate_uniform", f);
    table.add("curand_compat.generate_uniform_double", d);
    bitexact_test::for_each_fast_path([&](const execution& e, const std::string& label) {
      std::vector<std::uint32_t> w2(n);
      std::vector<float> f2(n);
      std::vector<double> d2(n);
      curand_compat::generate(seed, offset, w2.data(), n, e);
      curand_compat::generate_uniform(seed, offset, f2.data(), n, e);
      curand_compat::generate_uniform_double(seed, offset, d2.data(), n, e);
      EXPECT_TRUE(bitexact_test::same_bits(w, w2.data(), n) && bitexact_test::same_bits(f, f2.data(), n) &&
                  bitexact_test::same_bits(d, d2.data(), n))
          << "curand_compat " << label;
    });
  }
  table.check("random_golden_v1.txt");
}

}  // namespace
