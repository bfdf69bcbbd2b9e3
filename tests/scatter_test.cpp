// scatter_test: the scatter family against its reference (reference/scatter.hpp), bit for bit,
// over thread counts, ISAs, index distributions and sizes; bad input; golden hashes.
//
// Every result compares bits, so -0.0 and +0.0 differ and a NaN must be the canonical quiet
// NaN (the family canonicalizes NaN results: payloads differ between x86 and GPUs).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <bitexact/reference/scatter.hpp>
#include <bitexact/scatter.hpp>

#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

#include "golden_file.hpp"
#include "split_probe.hpp"

namespace {

using bitexact::bag_mode;
using bitexact::execution;
using bitexact::scatter_op;
using bitexact::tier;

template <class T>
std::uint64_t bits(T x) {
  std::uint64_t u = 0;
  std::memcpy(&u, &x, sizeof x);
  return u;
}

inline std::string hex(std::uint64_t v) {
  char b[32];
  std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}

template <class T>
::testing::AssertionResult same(const std::vector<T>& want, const std::vector<T>& got) {
  if (want.size() != got.size()) return ::testing::AssertionFailure() << "size " << want.size() << " vs " << got.size();
  const T canonical_nan = std::numeric_limits<T>::quiet_NaN();
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (std::isnan(got[i]) && bits(got[i]) != bits(canonical_nan))
      return ::testing::AssertionFailure() << "element " << i << " is a NaN but not the canonical one: " << hex(bits(got[i]));
    if (bits(want[i]) != bits(got[i]))
      return ::testing::AssertionFailure() << "element " << i << ": want " << want[i] << " (" << hex(bits(want[i]))
                                           << ") got " << got[i] << " (" << hex(bits(got[i])) << ")";
  }
  return ::testing::AssertionSuccess();
}

std::vector<execution> configs() {
  std::vector<execution> v;
  for (bitexact::isa i : bitexact::usable_isas())
    for (int t : {1, 2, 3, 4, 7, 8}) v.push_back(execution{t, i});
  return v;
}

enum class dist { all_to_one, uniform, zipf, sorted, reverse_sorted, sparse };
const dist kDists[] = {dist::all_to_one, dist::uniform, dist::zipf, dist::sorted, dist::reverse_sorted, dist::sparse};
const char* dist_name(dist d) {
  switch (d) {
    case dist::all_to_one: return "all_to_one";
    case dist::uniform: return "uniform";
    case dist::zipf: return "zipf";
    case dist::sorted: return "sorted";
    case dist::reverse_sorted: return "reverse_sorted";
    default: return "sparse";
  }
}

std::vector<std::int64_t> make_indices(dist d, std::size_t n, std::size_t n_out, std::mt19937_64& g) {
  std::vector<std::int64_t> idx(n);
  if (n_out == 0) return idx;
  for (std::size_t i = 0; i < n; ++i) {
    switch (d) {
      case dist::all_to_one: idx[i] = static_cast<std::int64_t>(n_out / 2); break;
      case dist::zipf: {  // P(k) ~ 1/k roughly: k = floor(n_out^u) - 1
        const double u = std::uniform_real_distribution<double>(0, 1)(g);
        idx[i] = std::min<std::int64_t>(static_cast<std::int64_t>(n_out) - 1,
                                        static_cast<std::int64_t>(std::pow(double(n_out), u)) - 1);
        break;
      }
      case dist::sparse: idx[i] = static_cast<std::int64_t>((g() % 3) * (n_out / 3)); break;  // most targets empty
      default: idx[i] = static_cast<std::int64_t>(g() % n_out);
    }
  }
  if (d == dist::sorted) std::sort(idx.begin(), idx.end());
  if (d == dist::reverse_sorted) std::sort(idx.rbegin(), idx.rend());
  return idx;
}

template <class T>
std::vector<T> make_values(std::size_t n, std::mt19937_64& g, bool specials) {
  std::vector<T> v(n);
  for (auto& x : v) {
    const int e = static_cast<int>(g() % 40) - 20;
    x = std::ldexp(static_cast<T>(static_cast<double>(g() % 2000001) - 1000000.0) / T(1000000), e);
  }
  if (specials && n > 10) {
    v[g() % n] = std::numeric_limits<T>::infinity();
    v[g() % n] = -std::numeric_limits<T>::infinity();  // Inf - Inf: x86 makes a negative NaN
    v[g() % n] = -std::numeric_limits<T>::infinity();
    v[g() % n] = -T(0);
    v[g() % n] = std::numeric_limits<T>::quiet_NaN();
    v[g() % n] = std::numeric_limits<T>::max();
    v[g() % n] = std::numeric_limits<T>::denorm_min();
  }
  return v;
}

const std::size_t kSizes[] = {0, 1, 2, 7, 4095, 4096, 4097, 8191, 12289, 65537};

// ---------------------------------------------------------------- index_add, 1-D
template <class T>
void index_add_matrix(tier t) {
  bitexact_test::split_check split_("index_add_matrix");
  std::mt19937_64 g(2026);
  int cases = 0;
  for (std::size_t n : kSizes)
    for (std::size_t n_out : {std::size_t(1), std::size_t(13), std::size_t(1000), std::size_t(70001)})
      for (dist d : kDists) {
        const auto idx = make_indices(d, n, n_out, g);
        const auto src = make_values<T>(n, g, (cases % 5) == 0);
        std::vector<T> init = make_values<T>(n_out, g, false);
        std::vector<T> want = init;
        if (t == tier::exact)
          bitexact::reference::index_add_exact<T, T>(want.data(), n_out, idx.data(), src.data(), n);
        else
          bitexact::reference::index_add_fixed_order<T, T>(want.data(), n_out, idx.data(), src.data(), n);
        for (const execution& e : configs()) {
          if (n > 5000 && e.threads != 1 && e.threads != 2 && e.threads != 7) continue;
          std::vector<T> got = init;
          bitexact::index_add(got.data(), n_out, idx.data(), src.data(), n, t, e);
          ASSERT_TRUE(same(want, got)) << "n=" << n << " n_out=" << n_out << " " << dist_name(d) << " threads=" << e.threads
                                       << " isa=" << bitexact::isa_name(e.simd);
        }
        ++cases;
      }
  EXPECT_EQ(cases, 240);  // 10 sizes x 4 target counts x 6 index distributions
}

TEST(IndexAdd, FixedOrderFloatEqualsReference) { index_add_matrix<float>(tier::fixed_order); }
TEST(IndexAdd, FixedOrderDoubleEqualsReference) { index_add_matrix<double>(tier::fixed_order); }
TEST(IndexAdd, ExactFloatEqualsReference) { index_add_matrix<float>(tier::exact); }
TEST(IndexAdd, ExactDoubleEqualsReference) { index_add_matrix<double>(tier::exact); }

TEST(IndexAdd, LargeCaseAcrossStrategies) {
  // 4 Mi sources: the dense strategy (1 Ki targets) and the sorted one (1 Mi targets).
  std::mt19937_64 g(5);
  const std::size_t n = std::size_t(1) << 22;
  const auto src = make_values<float>(n, g, false);
  for (std::size_t n_out : {std::size_t(1024), std::size_t(1) << 20}) {
    const auto idx = make_indices(dist::zipf, n, n_out, g);
    for (tier t : {tier::fixed_order, tier::exact}) {
      std::vector<float> want(n_out, 1.0f);
      if (t == tier::exact)
        bitexact::reference::index_add_exact<float, float>(want.data(), n_out, idx.data(), src.data(), n);
      else
        bitexact::reference::index_add_fixed_order<float, float>(want.data(), n_out, idx.data(), src.data(), n);
      for (int threads : {1, 2, 3}) {
        std::vector<float> got(n_out, 1.0f);
        bitexact::index_add(got.data(), n_out, idx.data(), src.data(), n, t, execution{threads});
        ASSERT_TRUE(same(want, got)) << n_out << " threads " << threads;
      }
    }
  }
}

// As many sources as targets, uniform: about 37% of the targets get exactly one contribution
// (the shortcut out + v of both tiers), the others several, spread over many chunks. Special
// values sit on both sides of single contributions: -0 + -0, +0 + -0, overflow, Inf - Inf, NaN,
// a tiny term that vanishes, denormals.
template <class T>
void few_collisions_case(tier t) {
  std::mt19937_64 g(31);
  const std::size_t n = 300007, n_out = 300007;
  const auto idx = make_indices(dist::uniform, n, n_out, g);
  auto src = make_values<T>(n, g, true);
  auto init = make_values<T>(n_out, g, true);
  std::vector<std::uint32_t> count(n_out, 0);
  for (auto k : idx) ++count[static_cast<std::size_t>(k)];
  const T inf = std::numeric_limits<T>::infinity(), big = std::numeric_limits<T>::max();
  const T pairs[][2] = {{-T(0), -T(0)}, {T(0), -T(0)}, {-T(0), T(0)}, {big, big},  {-big, -big},
                        {inf, -inf},     {-inf, T(1)}, {std::numeric_limits<T>::quiet_NaN(), T(1)},
                        {T(1), std::numeric_limits<T>::quiet_NaN()}, {T(1e30), T(1e-30)},
                        {std::numeric_limits<T>::denorm_min(), -std::numeric_limits<T>::denorm_min()},
                        {T(3), -T(3)}};
  std::size_t p = 0, singles = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t k = static_cast<std::size_t>(idx[i]);
    if (count[k] != 1) continue;
    ++singles;
    if (i % 7 == 0) {
      init[k] = pairs[p % (sizeof pairs / sizeof pairs[0])][0];
      src[i] = pairs[p % (sizeof pairs / sizeof pairs[0])][1];
      ++p;
    }
  }
  ASSERT_GT(singles, n / 4);
  std::vector<T> want = init;
  if (t == tier::exact)
    bitexact::reference::index_add_exact<T, T>(want.data(), n_out, idx.data(), src.data(), n);
  else
    bitexact::reference::index_add_fixed_order<T, T>(want.data(), n_out, idx.data(), src.data(), n);
  for (int threads : {1, 2, 3, 7}) {
    std::vector<T> got = init;
    bitexact::index_add(got.data(), n_out, idx.data(), src.data(), n, t, execution{threads});
    ASSERT_TRUE(same(want, got)) << "threads " << threads;
  }
}

TEST(IndexAdd, FewCollisionsFixedOrderFloat) { few_collisions_case<float>(tier::fixed_order); }
TEST(IndexAdd, FewCollisionsFixedOrderDouble) { few_collisions_case<double>(tier::fixed_order); }
TEST(IndexAdd, FewCollisionsExactFloat) { few_collisions_case<float>(tier::exact); }
TEST(IndexAdd, FewCollisionsExactDouble) { few_collisions_case<double>(tier::exact); }

// Many targets (the 1-D paths past the dense strategies: more than 2^22 chunk x target
// partials in fixed_order, more than 2^16 targets in the exact tier): every index distribution
// the fast paths tell apart - sorted ones (all to one target; runs of one or two; runs
// longer than a chunk, so a target spans several chunks and the tree over chunks decides;
// a run ending exactly on a chunk boundary) and unsorted ones (uniform, zipf, reverse sorted,
// sorted but for one descent at a chunk boundary or at the last position) - with special
// values, at threads {1, 2, 3, 4, 7, 8} that really split the work and on every ISA.
// short_runs: runs of 1 to 40 positions (the AVX-512 sorted path folds a vector's runs in
// rounds, one per position of its longest run piece, and carries a run into the next vector).
// zipf and all_to_one also make hot buckets of the radix grouping (taken whole, as dense rows
// per chunk); hot_patches makes hot buckets fed by a few scattered chunks only (chunks 1, 2, 5,
// 11, 12 and the last send every position to targets 1000..1299, the rest is uniform over targets
// from 2048), so the chunk tree of those rows has absent chunks.
enum class many_dist { all_to_one, sorted, long_runs, boundary_runs, short_runs, uniform, zipf, reverse_sorted, descent_at_boundary, hot_patches, descent_at_end };
const char* many_dist_name(many_dist d) {
  const char* names[] = {"all_to_one", "sorted", "long_runs", "boundary_runs", "short_runs", "uniform", "zipf", "reverse_sorted", "descent_at_boundary", "hot_patches", "descent_at_end"};
  return names[static_cast<int>(d)];
}
std::vector<std::int64_t> many_target_indices(many_dist d, std::size_t n, std::size_t n_out, std::mt19937_64& g) {
  std::vector<std::int64_t> idx;
  switch (d) {
    case many_dist::all_to_one: return std::vector<std::int64_t>(n, static_cast<std::int64_t>(n_out - 3));
    case many_dist::sorted: return make_indices(dist::sorted, n, n_out, g);
    case many_dist::uniform: return make_indices(dist::uniform, n, n_out, g);
    case many_dist::zipf: return make_indices(dist::zipf, n, n_out, g);
    case many_dist::reverse_sorted: return make_indices(dist::reverse_sorted, n, n_out, g);
    case many_dist::long_runs:
    case many_dist::short_runs:
    case many_dist::boundary_runs: {
      // Runs of 1 to 9000 (long_runs), 1 to 40 (short_runs) or of exactly 4096 and 2048
      // (boundary_runs) positions, increasing targets with gaps.
      std::int64_t t = 5;
      while (idx.size() < n) {
        const std::size_t len = d == many_dist::long_runs    ? 1 + g() % 9000
                                : d == many_dist::short_runs ? 1 + g() % 40
                                                             : (idx.size() % 3 == 0 ? 4096 : 2048);
        for (std::size_t k = 0; k < len && idx.size() < n; ++k) idx.push_back(t);
        t += 1 + static_cast<std::int64_t>(g() % 3);
      }
      return idx;
    }
    case many_dist::descent_at_boundary:
      idx = make_indices(dist::sorted, n, n_out, g);
      idx[4096] = 0;  // idx[4095] > 0: the only descent, between two chunks
      return idx;
    case many_dist::hot_patches: {
      idx = make_indices(dist::uniform, n, n_out - 2048, g);  // targets 2048.. outside the patches
      for (auto& i : idx) i += 2048;
      const std::size_t last = (n - 1) / 4096;
      for (std::size_t c : {std::size_t(1), std::size_t(2), std::size_t(5), std::size_t(11), std::size_t(12), last})
        for (std::size_t i = c * 4096; i < std::min(n, (c + 1) * 4096); ++i) idx[i] = 1000 + static_cast<std::int64_t>(g() % 300);
      return idx;
    }
    default:
      idx = make_indices(dist::sorted, n, n_out, g);
      idx[n - 1] = 1;
      return idx;
  }
}

template <class T>
void many_targets_case(tier t) {
  bitexact_test::split_check split_("many_targets_case");
  std::mt19937_64 g(4242);
  const std::size_t n_out = 300007;
  for (std::size_t n : {std::size_t(4096) * 19 + 7, std::size_t(4096) * 20})
    for (int di = 0; di <= static_cast<int>(many_dist::descent_at_end); ++di) {
      const many_dist d = static_cast<many_dist>(di);
      const auto idx = many_target_indices(d, n, n_out, g);
      const auto src = make_values<T>(n, g, d != many_dist::all_to_one);  // all to one: one NaN would hide the rest
      const std::vector<T> init = make_values<T>(n_out, g, di % 3 == 0);
      std::vector<T> want = init;
      if (t == tier::exact)
        bitexact::reference::index_add_exact<T, T>(want.data(), n_out, idx.data(), src.data(), n);
      else
        bitexact::reference::index_add_fixed_order<T, T>(want.data(), n_out, idx.data(), src.data(), n);
      for (const execution& e : configs()) {
        std::vector<T> got = init;
        bitexact::index_add(got.data(), n_out, idx.data(), src.data(), n, t, e);
        ASSERT_TRUE(same(want, got)) << "n=" << n << " " << many_dist_name(d) << " threads=" << e.threads
                                     << " isa=" << bitexact::isa_name(e.simd);
      }
    }
}

// 32-bit indices (signed and unsigned) on the sorted distributions, both tiers: the AVX-512
// sorted paths widen them to 64-bit lanes.
template <class T, class I>
void many_targets_sorted_narrow_indices() {
  bitexact_test::split_check split_("many_targets_sorted_narrow_indices");
  std::mt19937_64 g(4343);
  const std::size_t n_out = 300007, n = std::size_t(4096) * 19 + 13;
  for (tier t : {tier::fixed_order, tier::exact})
    for (many_dist d : {many_dist::sorted, many_dist::short_runs, many_dist::long_runs, many_dist::boundary_runs}) {
      const auto wide = many_target_indices(d, n, n_out, g);
      const std::vector<I> idx(wide.begin(), wide.end());
      const auto src = make_values<T>(n, g, true);
      const std::vector<T> init = make_values<T>(n_out, g, true);
      std::vector<T> want = init;
      if (t == tier::exact)
        bitexact::reference::index_add_exact<T, T>(want.data(), n_out, wide.data(), src.data(), n);
      else
        bitexact::reference::index_add_fixed_order<T, T>(want.data(), n_out, wide.data(), src.data(), n);
      for (const execution& e : configs()) {
        std::vector<T> got = init;
        bitexact::index_add(got.data(), n_out, idx.data(), src.data(), n, t, e);
        ASSERT_TRUE(same(want, got)) << many_dist_name(d) << " tier=" << int(t) << " threads=" << e.threads
                                     << " isa=" << bitexact::isa_name(e.simd);
      }
    }
}
TEST(IndexAdd, ManyTargetsSortedInt32Indices) {
  many_targets_sorted_narrow_indices<float, std::int32_t>();
  many_targets_sorted_narrow_indices<double, std::uint32_t>();
}

TEST(IndexAdd, ManyTargetsFixedOrderFloat) { many_targets_case<float>(tier::fixed_order); }
TEST(IndexAdd, ManyTargetsFixedOrderDouble) { many_targets_case<double>(tier::fixed_order); }
TEST(IndexAdd, ManyTargetsExactFloat) { many_targets_case<float>(tier::exact); }
TEST(IndexAdd, ManyTargetsExactDouble) { many_targets_case<double>(tier::exact); }

// The exact tier's sorted path sums a run in double while that is exact: 1 + 2^-24 + 2^-80
// is not (the double sum rounds to the float tie 1 + 2^-24, which rounds to 1), and the
// correctly rounded float is 1 + 2^-23. Runs of two, three and one, then one run longer than
// a chunk (the eight-sum loop).
TEST(IndexAdd, ExactSortedRunsThatDoubleCannotHold) {
  bitexact_test::split_probe probe;
  const std::size_t n = 3 * 4096 + 5, n_out = 70001, long_from = n - 5000;
  std::vector<std::int64_t> idx(n);
  std::vector<float> src(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t seg = i / 600, len = i >= long_from ? n : 1 + seg % 3, k = i >= long_from ? i - long_from : i - seg * 600;
    idx[i] = i >= long_from ? 60000 : static_cast<std::int64_t>(seg * 1000 + k / len);  // runs of len in segments of 600
    src[i] = (k % len == 0) ? std::ldexp(1.0f, -24) : std::ldexp(1.0f, -80);
    if (i >= long_from && k > 0) src[i] = k == 8 ? std::ldexp(1.0f, -80) : 0.0f;  // both in one of the eight sums
  }
  ASSERT_EQ(idx[long_from - 1] < 60000, true);
  ASSERT_TRUE(std::is_sorted(idx.begin(), idx.end()));
  std::vector<float> want(n_out, 1.0f);
  bitexact::reference::index_add_exact<float, float>(want.data(), n_out, idx.data(), src.data(), n);
  ASSERT_EQ(want[static_cast<std::size_t>(idx[600])], 1.0f + std::ldexp(1.0f, -23));
  ASSERT_EQ(want[60000], 1.0f + std::ldexp(1.0f, -23));
  for (const execution& e : configs()) {
    std::vector<float> got(n_out, 1.0f);
    bitexact::index_add(got.data(), n_out, idx.data(), src.data(), n, tier::exact, e);
    ASSERT_TRUE(same(want, got)) << "threads=" << e.threads << " isa=" << bitexact::isa_name(e.simd);
  }
}

// A run's double sum stops being exact at its second position (1 + 2^-24 + 2^-80) and every
// later term is +0, whose adds are exact: the run must still be redone, so the "not exact" mark
// has to travel from that position to the run's end, across the AVX-512 path's vectors (runs
// of 2 to 20 positions, so the mark crosses every lane boundary). The correctly rounded float
// is 1 + 2^-23; the double sum rounded alone gives the tie 1 + 2^-24, which rounds to 1.
TEST(IndexAdd, ExactSortedMarkTravelsToTheRunEnd) {
  bitexact_test::split_probe probe;
  const std::size_t n = 5 * 4096 + 3, n_out = 70001;
  std::vector<std::int64_t> idx(n);
  std::vector<float> src(n);
  std::size_t i = 0;
  for (std::int64_t t = 0; i < n; ++t) {
    const std::size_t len = 2 + static_cast<std::size_t>(t) % 19;
    for (std::size_t k = 0; k < len && i < n; ++k, ++i) {
      idx[i] = t;
      src[i] = k == 0 ? std::ldexp(1.0f, -24) : k == 1 ? std::ldexp(1.0f, -80) : 0.0f;
    }
  }
  ASSERT_LT(static_cast<std::size_t>(idx[n - 1]), n_out);
  std::vector<float> want(n_out, 1.0f);
  bitexact::reference::index_add_exact<float, float>(want.data(), n_out, idx.data(), src.data(), n);
  ASSERT_EQ(want[7], 1.0f + std::ldexp(1.0f, -23));
  for (const execution& e : configs()) {
    std::vector<float> got(n_out, 1.0f);
    bitexact::index_add(got.data(), n_out, idx.data(), src.data(), n, tier::exact, e);
    ASSERT_TRUE(same(want, got)) << "threads=" << e.threads << " isa=" << bitexact::isa_name(e.simd);
  }
}

TEST(IndexAdd, ScratchCanBeReleasedBetweenCalls) {
  std::vector<std::int64_t> idx(300000);
  for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<std::int64_t>((i * 7919) % 200000);
  std::vector<float> src(idx.size(), 0.5f), a(200000, 1.0f), b(200000, 1.0f);
  bitexact::index_add(a.data(), a.size(), idx.data(), src.data(), src.size());
  bitexact::release_scratch_memory();
  bitexact::index_add(b.data(), b.size(), idx.data(), src.data(), src.size());
  EXPECT_TRUE(same(a, b));
}

TEST(IndexAdd, Bfloat16SourcesAccumulateInFloat) {
  std::mt19937_64 g(9);
  for (std::size_t n : {std::size_t(3), std::size_t(9001)}) {
    const auto idx = make_indices(dist::uniform, n, 17, g);
    const auto f = make_values<float>(n, g, false);
    std::vector<bitexact::bfloat16> src(n);
    std::vector<float> widened(n);
    for (std::size_t i = 0; i < n; ++i) {
      src[i] = bitexact::bfloat16::from_float(f[i]);
      widened[i] = src[i].to_float();
    }
    for (tier t : {tier::fixed_order, tier::exact}) {
      std::vector<float> want(17, 0.25f), got(17, 0.25f);
      bitexact::index_add(want.data(), 17, idx.data(), widened.data(), n, t);
      bitexact::index_add(got.data(), 17, idx.data(), src.data(), n, t, execution{3});
      EXPECT_TRUE(same(want, got));
    }
  }
}

TEST(IndexAdd, ExactIsOrderIndependent) {
  // Permuting the sources (with their indices) does not change the exact tier's bits.
  std::mt19937_64 g(77);
  const std::size_t n = 20000, n_out = 50;
  auto idx = make_indices(dist::zipf, n, n_out, g);
  auto src = make_values<double>(n, g, true);
  std::vector<double> a(n_out, -0.0), b(n_out, -0.0);
  bitexact::index_add(a.data(), n_out, idx.data(), src.data(), n, tier::exact);
  std::vector<std::size_t> perm(n);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), g);
  std::vector<std::int64_t> idx2(n);
  std::vector<double> src2(n);
  for (std::size_t i = 0; i < n; ++i) {
    idx2[i] = idx[perm[i]];
    src2[i] = src[perm[i]];
  }
  bitexact::index_add(b.data(), n_out, idx2.data(), src2.data(), n, tier::exact, execution{3});
  EXPECT_TRUE(same(a, b));
}

TEST(IndexAdd, Int32IndicesWork) {
  std::vector<std::int32_t> idx = {2, 0, 2, 1};
  std::vector<float> src = {1, 2, 3, 4}, out = {10, 20, 30};
  bitexact::index_add(out.data(), 3, idx.data(), src.data(), 4);
  EXPECT_EQ(out, (std::vector<float>{12, 24, 34}));
}

// ---------------------------------------------------------------- bad input
TEST(ScatterBadInput, OutOfRangeIndexThrowsBeforeWriting) {
  std::vector<float> src(10000, 1.0f), out(100, 3.0f);
  std::vector<std::int64_t> idx(10000, 5);
  idx[7777] = 100;  // == bound
  idx[9000] = -1;
  for (int threads : {1, 2, 7})
    for (tier t : {tier::fixed_order, tier::exact}) {
      try {
        bitexact::index_add(out.data(), 100, idx.data(), src.data(), src.size(), t, execution{threads});
        ADD_FAILURE() << "no throw";
      } catch (const bitexact::index_error& e) {
        EXPECT_EQ(e.position(), 7777u);  // the lowest bad position, whatever the threads
        EXPECT_EQ(e.index(), 100);
        EXPECT_EQ(e.bound(), 100u);
        EXPECT_NE(std::string(e.what()).find("7777"), std::string::npos);
      }
      for (float v : out) ASSERT_EQ(v, 3.0f);
    }
  idx[7777] = 5;
  EXPECT_THROW(bitexact::index_add(out.data(), 100, idx.data(), src.data(), src.size()), std::out_of_range);  // -1
  std::vector<float> rows(100 * 4, 3.0f), srows(10000 * 4, 1.0f);
  EXPECT_THROW(bitexact::index_add_rows(rows.data(), 100, 4, idx.data(), srows.data(), 10000), bitexact::index_error);
  for (float v : rows) ASSERT_EQ(v, 3.0f);
  std::vector<float> seg(100, 3.0f);
  EXPECT_THROW(bitexact::segment_reduce(seg.data(), 100, idx.data(), src.data(), src.size(), scatter_op::sum),
               bitexact::index_error);
  for (float v : seg) ASSERT_EQ(v, 3.0f);
  // n_out == 0 with sources: every index is out of range
  EXPECT_THROW(bitexact::index_add(out.data(), 0, idx.data(), src.data(), 3), bitexact::index_error);
}

TEST(ScatterBadInput, NullsOverlapAndParameters) {
  std::vector<float> buf(100, 1.0f);
  std::vector<std::int64_t> idx(10, 0);
  EXPECT_NO_THROW(bitexact::index_add<float>(nullptr, 0, static_cast<const std::int64_t*>(nullptr), nullptr, 0));
  EXPECT_THROW(bitexact::index_add(buf.data(), 10, static_cast<const std::int64_t*>(nullptr), buf.data() + 50, 10),
               std::invalid_argument);
  EXPECT_THROW(bitexact::index_add(static_cast<float*>(nullptr), 10, idx.data(), buf.data(), 10), std::invalid_argument);
  // out overlaps src
  EXPECT_THROW(bitexact::index_add(buf.data(), 20, idx.data(), buf.data() + 10, 10), std::invalid_argument);
  EXPECT_NO_THROW(bitexact::index_add(buf.data(), 20, idx.data(), buf.data() + 20, 10));  // adjacent is fine
  EXPECT_THROW(bitexact::index_add_rows(buf.data(), 5, 0, idx.data(), buf.data() + 50, 1), std::invalid_argument);
  EXPECT_THROW(bitexact::scatter_reduce(buf.data(), 10, idx.data(), buf.data() + 50, 10, scatter_op::prod, true, tier::exact),
               std::invalid_argument);
  std::vector<std::int64_t> unsorted = {0, 2, 1};
  std::vector<float> data = {1, 2, 3}, out(3, 9.0f);
  EXPECT_THROW(bitexact::sorted_segment_reduce(out.data(), 3, unsorted.data(), data.data(), 3, scatter_op::sum),
               std::invalid_argument);
  EXPECT_EQ(out, (std::vector<float>{9, 9, 9}));
  std::vector<float> table(4 * 2, 1.0f), bags(2 * 2, 7.0f);
  std::vector<std::int64_t> ind = {0, 1, 2}, bad_offsets = {1, 2};
  EXPECT_THROW(bitexact::embedding_bag(bags.data(), table.data(), 4, 2, ind.data(), 3, bad_offsets.data(), 2, bag_mode::sum),
               std::invalid_argument);
  std::vector<std::int64_t> offsets = {0, 2};
  std::vector<float> w = {1, 2, 3};
  EXPECT_THROW(bitexact::embedding_bag(bags.data(), table.data(), 4, 2, ind.data(), 3, offsets.data(), 2, bag_mode::max,
                                       w.data()),
               std::invalid_argument);
  EXPECT_EQ(bags, std::vector<float>(4, 7.0f));
  // indices but no bag: every index must fall into a bag (offsets[0] == 0)
  EXPECT_THROW(bitexact::embedding_bag(bags.data(), table.data(), 4, 2, ind.data(), 3, offsets.data(), 0, bag_mode::sum),
               std::invalid_argument);
  std::vector<float> grad_table(4 * 2, 5.0f);
  EXPECT_THROW(bitexact::embedding_bag_backward(grad_table.data(), 4, 2, static_cast<const float*>(nullptr), ind.data(),
                                                3, offsets.data(), 0, bag_mode::sum),
               std::invalid_argument);
  EXPECT_EQ(grad_table, std::vector<float>(8, 5.0f));
  std::vector<float> hist(4);
  EXPECT_THROW(bitexact::histogram(hist.data(), 4, 1.0f, 1.0f, data.data(), static_cast<const float*>(nullptr), 3),
               std::invalid_argument);
  EXPECT_THROW(bitexact::histogram(hist.data(), 0, 0.0f, 1.0f, data.data(), static_cast<const float*>(nullptr), 3),
               std::invalid_argument);
}

// ---------------------------------------------------------------- rows
template <class T>
void rows_matrix(tier t) {
  bitexact_test::split_check split_("rows_matrix");
  std::mt19937_64 g(31);
  for (std::size_t n : {std::size_t(0), std::size_t(1), std::size_t(4097), std::size_t(9000)})
    for (std::size_t width : {std::size_t(1), std::size_t(3), std::size_t(16), std::size_t(37), std::size_t(128)})
      for (dist d : {dist::uniform, dist::all_to_one, dist::zipf, dist::sparse}) {
        const std::size_t n_out = 61;
        const auto idx = make_indices(d, n, n_out, g);
        const auto src = make_values<T>(n * width, g, width == 37);
        const auto init = make_values<T>(n_out * width, g, false);
        std::vector<T> want = init;
        bitexact::reference::index_add_rows<T, T>(want.data(), n_out, width, idx.data(), src.data(), n, t == tier::exact);
        for (const execution& e : configs()) {
          if ((e.threads == 4 || e.threads == 8) && width == 128) continue;  // runtime
          std::vector<T> got = init;
          bitexact::index_add_rows(got.data(), n_out, width, idx.data(), src.data(), n, t, e);
          ASSERT_TRUE(same(want, got)) << "n=" << n << " width=" << width << " " << dist_name(d) << " threads=" << e.threads
                                       << " isa=" << bitexact::isa_name(e.simd);
        }
      }
}

TEST(IndexAddRows, FixedOrderFloat) { rows_matrix<float>(tier::fixed_order); }
TEST(IndexAddRows, FixedOrderDouble) { rows_matrix<double>(tier::fixed_order); }
TEST(IndexAddRows, ExactFloat) { rows_matrix<float>(tier::exact); }

// ---------------------------------------------------------------- scatter_reduce, segments
TEST(ScatterReduce, EveryOpEqualsReference) {
  bitexact_test::split_check split_("EveryOpEqualsReference");
  std::mt19937_64 g(41);
  for (std::size_t n : {std::size_t(1), std::size_t(100), std::size_t(9001)})
    for (dist d : kDists)
      for (scatter_op op : {scatter_op::sum, scatter_op::prod, scatter_op::mean, scatter_op::max, scatter_op::min})
        for (bool include_self : {true, false})
          for (tier t : {tier::fixed_order, tier::exact}) {
            if (t == tier::exact && op == scatter_op::prod) continue;
            const std::size_t n_out = 97;
            const auto idx = make_indices(d, n, n_out, g);
            auto src = make_values<double>(n, g, n == 9001);
            if (op == scatter_op::prod)
              for (auto& x : src) x = 1.0 + x / 64;  // keep products finite
            const auto init = make_values<double>(n_out, g, false);
            std::vector<double> want = init;
            bitexact::reference::scatter_reduce(want.data(), n_out, idx.data(), src.data(), n, op, include_self,
                                                t == tier::exact);
            for (int threads : {1, 2, 3, 4, 7, 8}) {
              std::vector<double> got = init;
              bitexact::scatter_reduce(got.data(), n_out, idx.data(), src.data(), n, op, include_self, t, execution{threads});
              ASSERT_TRUE(same(want, got)) << "n=" << n << " " << dist_name(d) << " op=" << int(op)
                                           << " self=" << include_self << " threads=" << threads;
            }
          }
}

// More than 2^16 targets: the radix grouping written out as target_groups (scatter_reduce,
// segment_reduce, index_add_rows, bincount), with uniform and skewed indices.
TEST(ScatterReduce, ManyTargetsUseTheRadixGrouping) {
  std::mt19937_64 g(53);
  const std::size_t n = 150001, n_out = 100003, width = 3;
  for (dist d : {dist::uniform, dist::zipf, dist::all_to_one}) {
    const auto idx = make_indices(d, n, n_out, g);
    const auto src = make_values<double>(n, g, true);
    const auto init = make_values<double>(n_out, g, false);
    for (tier t : {tier::fixed_order, tier::exact})
      for (scatter_op op : {scatter_op::sum, scatter_op::mean, scatter_op::max}) {
        std::vector<double> want = init, seg_want(n_out);
        bitexact::reference::scatter_reduce(want.data(), n_out, idx.data(), src.data(), n, op, true, t == tier::exact);
        bitexact::reference::segment_reduce(seg_want.data(), n_out, idx.data(), src.data(), n, op, t == tier::exact);
        for (int threads : {1, 2, 3}) {
          std::vector<double> got = init, seg_got(n_out);
          bitexact::scatter_reduce(got.data(), n_out, idx.data(), src.data(), n, op, true, t, execution{threads});
          ASSERT_TRUE(same(want, got)) << dist_name(d) << " op=" << int(op) << " threads=" << threads;
          bitexact::segment_reduce(seg_got.data(), n_out, idx.data(), src.data(), n, op, t, execution{threads});
          ASSERT_TRUE(same(seg_want, seg_got)) << dist_name(d) << " op=" << int(op) << " threads=" << threads;
        }
      }
    const auto rsrc = make_values<float>(n * width, g, false);
    const auto rinit = make_values<float>(n_out * width, g, false);
    for (tier t : {tier::fixed_order, tier::exact}) {
      std::vector<float> want = rinit;
      bitexact::reference::index_add_rows<float, float>(want.data(), n_out, width, idx.data(), rsrc.data(), n,
                                                        t == tier::exact);
      std::vector<float> got = rinit;
      bitexact::index_add_rows(got.data(), n_out, width, idx.data(), rsrc.data(), n, t, execution{2});
      ASSERT_TRUE(same(want, got)) << dist_name(d);
    }
    std::vector<std::int64_t> counts(n_out), expect(n_out);
    bitexact::bincount(counts.data(), n_out, idx.data(), n, execution{3});
    for (auto k : idx) ++expect[static_cast<std::size_t>(k)];
    EXPECT_EQ(counts, expect);
  }
}

TEST(ScatterReduce, MaxMinSpecialValues) {
  std::vector<std::int64_t> idx = {0, 0, 1, 1, 2, 2};
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> src = {-0.0f, 0.0f, 1.0f, nan, -0.0f, -0.0f};
  std::vector<float> mx = {-5, -5, -5}, mn = {5, 5, 5};
  bitexact::scatter_reduce(mx.data(), 3, idx.data(), src.data(), 6, scatter_op::max, false);
  bitexact::scatter_reduce(mn.data(), 3, idx.data(), src.data(), 6, scatter_op::min, false);
  EXPECT_EQ(bits(mx[0]), bits(0.0f));   // +0 above -0
  EXPECT_EQ(bits(mn[0]), bits(-0.0f));  // -0 below +0
  EXPECT_EQ(bits(mx[1]), 0x7fc00000u);  // canonical quiet NaN
  EXPECT_EQ(bits(mn[1]), 0x7fc00000u);
  EXPECT_EQ(bits(mx[2]), bits(-0.0f));
}

TEST(SegmentReduce, UnsortedAndSortedEqualReference) {
  bitexact_test::split_check split_("UnsortedAndSortedEqualReference");
  std::mt19937_64 g(43);
  for (std::size_t n : {std::size_t(0), std::size_t(5), std::size_t(5000), std::size_t(20011)})
    for (scatter_op op : {scatter_op::sum, scatter_op::prod, scatter_op::mean, scatter_op::max, scatter_op::min})
      for (tier t : {tier::fixed_order, tier::exact}) {
        if (t == tier::exact && op == scatter_op::prod) continue;
        const std::size_t segs = 300;  // many empty segments when n is small
        auto ids = make_indices(dist::zipf, n, segs, g);
        auto data = make_values<float>(n, g, false);
        if (op == scatter_op::prod)
          for (auto& x : data) x = 1.0f + x / 64;
        std::vector<float> want(segs);
        bitexact::reference::segment_reduce(want.data(), segs, ids.data(), data.data(), n, op, t == tier::exact);
        for (int threads : {1, 2, 3, 4, 7, 8}) {
          std::vector<float> got(segs, 42.0f);
          bitexact::segment_reduce(got.data(), segs, ids.data(), data.data(), n, op, t, execution{threads});
          ASSERT_TRUE(same(want, got)) << "unsorted n=" << n << " op=" << int(op);
        }
        std::vector<std::size_t> perm(n);
        std::iota(perm.begin(), perm.end(), 0);
        std::stable_sort(perm.begin(), perm.end(), [&](std::size_t a, std::size_t b) { return ids[a] < ids[b]; });
        std::vector<std::int64_t> sids(n);
        std::vector<float> sdata(n);
        for (std::size_t i = 0; i < n; ++i) {
          sids[i] = ids[perm[i]];
          sdata[i] = data[perm[i]];
        }
        std::vector<float> swant(segs);
        bitexact::reference::segment_reduce(swant.data(), segs, sids.data(), sdata.data(), n, op, t == tier::exact);
        std::vector<float> sgot(segs);
        bitexact::sorted_segment_reduce(sgot.data(), segs, sids.data(), sdata.data(), n, op, t, execution{2});
        ASSERT_TRUE(same(swant, sgot)) << "sorted n=" << n << " op=" << int(op);
      }
  // empty segments: the documented empty values
  std::vector<float> out(4);
  std::vector<std::int64_t> none;
  bitexact::segment_reduce(out.data(), 4, none.data(), static_cast<const float*>(nullptr), 0, scatter_op::max);
  EXPECT_EQ(out[0], -std::numeric_limits<float>::infinity());
  bitexact::segment_reduce(out.data(), 4, none.data(), static_cast<const float*>(nullptr), 0, scatter_op::prod);
  EXPECT_EQ(out[3], 1.0f);
}

TEST(SegmentReduce, NamedFormsAndBf16) {
  // Each named form against the reference (not against the op it forwards to).
  std::mt19937_64 g(45);
  const std::size_t n = 7001, segs = 40;
  auto ids = make_indices(dist::uniform, n, segs, g);
  const auto f = make_values<float>(n, g, false);
  std::vector<bitexact::bfloat16> bf(n);
  for (std::size_t i = 0; i < n; ++i) bf[i] = bitexact::bfloat16::from_float(f[i]);
  std::vector<float> a(segs), want(segs);
  bitexact::segment_sum(a.data(), segs, ids.data(), bf.data(), n);
  bitexact::reference::segment_reduce(want.data(), segs, ids.data(), bf.data(), n, scatter_op::sum, false);
  EXPECT_TRUE(same(want, a));
  bitexact::segment_mean(a.data(), segs, ids.data(), f.data(), n, tier::exact);
  bitexact::reference::segment_reduce(want.data(), segs, ids.data(), f.data(), n, scatter_op::mean, true);
  EXPECT_TRUE(same(want, a));
  bitexact::segment_max(a.data(), segs, ids.data(), f.data(), n);
  bitexact::reference::segment_reduce(want.data(), segs, ids.data(), f.data(), n, scatter_op::max, false);
  EXPECT_TRUE(same(want, a));
  bitexact::segment_min(a.data(), segs, ids.data(), f.data(), n);
  bitexact::reference::segment_reduce(want.data(), segs, ids.data(), f.data(), n, scatter_op::min, false);
  EXPECT_TRUE(same(want, a));
  std::sort(ids.begin(), ids.end());
  bitexact::sorted_segment_sum(a.data(), segs, ids.data(), f.data(), n);
  bitexact::reference::segment_reduce(want.data(), segs, ids.data(), f.data(), n, scatter_op::sum, false);
  EXPECT_TRUE(same(want, a));
}

TEST(Bincount, WeightedAndCounts) {
  bitexact_test::split_check split_("WeightedAndCounts");
  std::mt19937_64 g(47);
  const std::size_t n = 30000, bins = 257;
  const auto idx = make_indices(dist::zipf, n, bins, g);
  const auto w = make_values<double>(n, g, false);
  for (tier t : {tier::fixed_order, tier::exact}) {
    std::vector<double> want(bins), got(bins);
    bitexact::reference::segment_reduce(want.data(), bins, idx.data(), w.data(), n, scatter_op::sum, t == tier::exact);
    for (int threads : {1, 2, 3, 4, 7, 8}) {
      bitexact::bincount(got.data(), bins, idx.data(), w.data(), n, t, execution{threads});
      EXPECT_TRUE(same(want, got)) << "threads " << threads;
    }
  }
  std::vector<std::int64_t> counts(bins);
  bitexact::bincount(counts.data(), bins, idx.data(), n);
  std::vector<std::int64_t> expect(bins);
  for (auto k : idx) ++expect[static_cast<std::size_t>(k)];
  EXPECT_EQ(counts, expect);
}

TEST(Histogram, EqualsReferenceAndIgnoresOutliers) {
  bitexact_test::split_check split_("EqualsReferenceAndIgnoresOutliers");
  std::mt19937_64 g(53);
  const std::size_t n = 50000;
  auto x = make_values<float>(n, g, true);
  const auto w = make_values<float>(n, g, false);
  for (tier t : {tier::fixed_order, tier::exact})
    for (const float* weights : {static_cast<const float*>(nullptr), w.data()}) {
      std::vector<float> want(33), got(33);
      bitexact::reference::histogram(want.data(), 33, -0.5f, 0.75f, x.data(), weights, n, t == tier::exact);
      for (int threads : {1, 2, 3, 4, 7, 8}) {
        bitexact::histogram(got.data(), 33, -0.5f, 0.75f, x.data(), weights, n, t, execution{threads});
        EXPECT_TRUE(same(want, got)) << "threads " << threads;
      }
    }
  std::vector<float> v = {0.0f, 1.0f, 0.5f, 2.0f, std::numeric_limits<float>::quiet_NaN(), -1.0f}, h(2);
  bitexact::histogram(h.data(), 2, 0.0f, 1.0f, v.data(), static_cast<const float*>(nullptr), v.size());
  EXPECT_EQ(h, (std::vector<float>{1.0f, 2.0f}));  // 1.0 is in the last bin; 2, NaN, -1 ignored
}

// ---------------------------------------------------------------- embedding bags
/// Sorted random offsets of n_bags bags over n_indices positions, the first 0; bag `empty`
/// (if > 0) empty.
std::vector<std::int64_t> random_offsets(std::size_t n_indices, std::size_t n_bags, std::mt19937_64& g,
                                         std::size_t empty = 0) {
  std::vector<std::int64_t> offsets(n_bags);
  for (auto& o : offsets) o = static_cast<std::int64_t>(g() % n_indices);
  std::sort(offsets.begin(), offsets.end());
  offsets[0] = 0;
  if (empty > 0) offsets[empty + 1] = offsets[empty];
  return offsets;
}

TEST(EmbeddingBag, ForwardEqualsReference) {
  bitexact_test::split_check split_("ForwardEqualsReference");
  std::mt19937_64 g(59);
  const std::size_t n_rows = 500;
  for (std::size_t width : {std::size_t(1), std::size_t(7), std::size_t(64)})
    for (bag_mode mode : {bag_mode::sum, bag_mode::mean, bag_mode::max})
      for (bool weighted : {false, true})
        for (tier t : {tier::fixed_order, tier::exact}) {
          if (weighted && mode != bag_mode::sum) continue;
          const std::size_t n_indices = 9000, n_bags = 300;
          const auto indices = make_indices(dist::zipf, n_indices, n_rows, g);
          const auto offsets = random_offsets(n_indices, n_bags, g, 4);  // an empty bag
          const auto table = make_values<float>(n_rows * width, g, false);
          const auto w = make_values<float>(n_indices, g, false);
          std::vector<float> want(n_bags * width);
          bitexact::reference::embedding_bag(want.data(), table.data(), width, indices.data(), n_indices, offsets.data(),
                                             n_bags, mode, weighted ? w.data() : nullptr, t == tier::exact);
          for (const execution& e : configs()) {
            // every thread count on the widest ISA, threads 1 and 3 on the others (runtime)
            if (e.simd != bitexact::usable_isas().back() && e.threads != 1 && e.threads != 3) continue;
            std::vector<float> got(n_bags * width, 5.0f);
            bitexact::embedding_bag(got.data(), table.data(), n_rows, width, indices.data(), n_indices, offsets.data(), n_bags,
                                    mode, weighted ? w.data() : nullptr, t, e);
            ASSERT_TRUE(same(want, got)) << "width=" << width << " mode=" << int(mode) << " weighted=" << weighted
                                         << " isa=" << bitexact::isa_name(e.simd) << " threads=" << e.threads;
          }
        }
}

// A bfloat16 table: rows widened exactly to float and combined in float, in every mode; the
// reference widens the same way, and the result equals the float op on the widened table.
TEST(EmbeddingBag, Bf16TableEqualsReference) {
  bitexact_test::split_check split_("Bf16TableEqualsReference");
  std::mt19937_64 g(60);
  const std::size_t n_rows = 200, n_indices = 9000, n_bags = 150;
  for (std::size_t width : {std::size_t(3), std::size_t(64)})
    for (bag_mode mode : {bag_mode::sum, bag_mode::mean, bag_mode::max})
      for (bool weighted : {false, true})
        for (tier t : {tier::fixed_order, tier::exact}) {
          if (weighted && mode != bag_mode::sum) continue;
          const auto indices = make_indices(dist::zipf, n_indices, n_rows, g);
          const auto offsets = random_offsets(n_indices, n_bags, g, 6);  // an empty bag
          const auto f = make_values<float>(n_rows * width, g, false);
          std::vector<bitexact::bfloat16> table(f.size());
          std::vector<float> widened(f.size());
          for (std::size_t k = 0; k < f.size(); ++k) {
            table[k] = bitexact::bfloat16::from_float(f[k]);
            widened[k] = table[k].to_float();
          }
          const auto w = make_values<float>(n_indices, g, false);
          const float* wp = weighted ? w.data() : nullptr;
          std::vector<float> want(n_bags * width), on_widened(n_bags * width);
          bitexact::reference::embedding_bag(want.data(), table.data(), width, indices.data(), n_indices, offsets.data(),
                                             n_bags, mode, wp, t == tier::exact);
          bitexact::embedding_bag(on_widened.data(), widened.data(), n_rows, width, indices.data(), n_indices,
                                  offsets.data(), n_bags, mode, wp, t);
          ASSERT_TRUE(same(want, on_widened));
          for (int threads : {1, 2, 3, 4, 7, 8}) {
            std::vector<float> got(n_bags * width, 5.0f);
            bitexact::embedding_bag(got.data(), table.data(), n_rows, width, indices.data(), n_indices, offsets.data(),
                                    n_bags, mode, wp, t, execution{threads});
            ASSERT_TRUE(same(want, got)) << "width=" << width << " mode=" << int(mode) << " weighted=" << weighted
                                         << " threads=" << threads;
          }
          if (mode == bag_mode::max) {
            std::vector<float> a(n_bags * width), b(n_bags * width);
            std::vector<std::int64_t> pa(n_bags * width), pb(n_bags * width);
            bitexact::embedding_bag_max(a.data(), pa.data(), table.data(), n_rows, width, indices.data(), n_indices,
                                        offsets.data(), n_bags);
            bitexact::embedding_bag_max(b.data(), pb.data(), widened.data(), n_rows, width, indices.data(), n_indices,
                                        offsets.data(), n_bags);
            ASSERT_TRUE(same(a, b));
            ASSERT_EQ(pa, pb);
          }
        }
}

TEST(EmbeddingBag, BackwardEqualsReference) {
  bitexact_test::split_check split_("BackwardEqualsReference");
  std::mt19937_64 g(61);
  const std::size_t n_rows = 300, width = 24, n_indices = 7000, n_bags = 200;
  for (bag_mode mode : {bag_mode::sum, bag_mode::mean})
    for (bool weighted : {false, true})
      for (tier t : {tier::fixed_order, tier::exact}) {
        if (weighted && mode != bag_mode::sum) continue;
        const auto indices = make_indices(dist::zipf, n_indices, n_rows, g);
        const auto offsets = random_offsets(n_indices, n_bags, g);
        const auto grad_out = make_values<double>(n_bags * width, g, false);
        const auto w = make_values<double>(n_indices, g, false);
        const auto init = make_values<double>(n_rows * width, g, false);
        std::vector<double> want = init;
        bitexact::reference::embedding_bag_backward(want.data(), n_rows, width, grad_out.data(), indices.data(), n_indices,
                                                    offsets.data(), n_bags, mode, weighted ? w.data() : nullptr,
                                                    t == tier::exact);
        for (int threads : {1, 2, 3, 4, 7, 8}) {
          std::vector<double> got = init;
          bitexact::embedding_bag_backward(got.data(), n_rows, width, grad_out.data(), indices.data(), n_indices,
                                           offsets.data(), n_bags, mode, weighted ? w.data() : nullptr, t,
                                           execution{threads});
          ASSERT_TRUE(same(want, got)) << "mode=" << int(mode) << " weighted=" << weighted << " threads=" << threads;
        }
      }
}

TEST(EmbeddingBag, MaxOfOneRowNaNIsCanonical) {
  // A bag of one row passes that row through the max combiner untouched: its NaN, whatever its
  // sign and payload, must still come out as the canonical NaN (found by fuzz_scatter).
  const std::uint32_t payload_nan = 0xffff0000u;  // negative quiet NaN with a payload
  float nan_in;
  std::memcpy(&nan_in, &payload_nan, sizeof nan_in);
  const std::vector<float> table = {nan_in, 2.0f, nan_in};  // 3 rows of width 1
  const std::vector<std::int64_t> indices = {0, 2, 1, 0}, offsets = {0, 1, 2};  // {0}, {2}, {1, 0}
  const float canonical = std::numeric_limits<float>::quiet_NaN();
  for (tier t : {tier::fixed_order, tier::exact})
    for (const execution& e : configs()) {
      std::vector<float> out(3, 9.0f);
      bitexact::embedding_bag(out.data(), table.data(), 3, 1, indices.data(), indices.size(), offsets.data(), 3,
                              bag_mode::max, static_cast<const float*>(nullptr), t, e);
      for (float v : out) EXPECT_EQ(bits(v), bits(canonical)) << "threads " << e.threads;
    }
}

TEST(EmbeddingBag, MaxPositionsAndBackward) {
  // table rows with known maxima: bag 0 = rows {0, 2, 2}, bag 1 empty, bag 2 = rows {1, 0}
  const std::size_t width = 2;
  std::vector<float> table = {1.0f, -0.0f,  // row 0
                              5.0f, 0.0f,   // row 1
                              1.0f, -3.0f};  // row 2
  std::vector<std::int64_t> indices = {0, 2, 2, 1, 0}, offsets = {0, 3, 3};
  std::vector<float> out(3 * width);
  std::vector<std::int64_t> pos(3 * width);
  bitexact::embedding_bag_max(out.data(), pos.data(), table.data(), 3, width, indices.data(), 5, offsets.data(), 3);
  EXPECT_EQ(out, (std::vector<float>{1.0f, -0.0f, 0.0f, 0.0f, 5.0f, 0.0f}));
  EXPECT_EQ(pos, (std::vector<std::int64_t>{0, 0, -1, -1, 3, 3}));  // ties: lowest position; +0 over -0
  std::vector<float> grad_out = {10, 20, 30, 40, 50, 60}, grad_table(6, 0.5f);
  bitexact::embedding_bag_max_backward(grad_table.data(), 3, width, grad_out.data(), indices.data(), 5, pos.data(), 3);
  // (row 0, col 0) += 10 ; (row 0, col 1) += 20 ; (row 1, col 0) += 50 ; (row 1, col 1) += 60
  EXPECT_EQ(grad_table, (std::vector<float>{10.5f, 20.5f, 50.5f, 60.5f, 0.5f, 0.5f}));
  // against a reference built from index_add's reference on the flattened problem
  std::mt19937_64 g(67);
  const std::size_t n_rows = 50, w = 9, n_indices = 5000, n_bags = 700;
  const auto idx = make_indices(dist::zipf, n_indices, n_rows, g);
  std::vector<std::int64_t> offs(n_bags);
  for (auto& o : offs) o = static_cast<std::int64_t>(g() % n_indices);
  std::sort(offs.begin(), offs.end());
  offs[0] = 0;
  const auto tab = make_values<double>(n_rows * w, g, false);
  std::vector<double> o(n_bags * w), go = make_values<double>(n_bags * w, g, false);
  std::vector<std::int64_t> p(n_bags * w);
  bitexact::embedding_bag_max(o.data(), p.data(), tab.data(), n_rows, w, idx.data(), n_indices, offs.data(), n_bags,
                              execution{3});
  std::vector<std::int64_t> flat_idx;
  std::vector<double> want(n_rows * w + 1, 0.0), got(n_rows * w, 0.0);
  for (std::size_t s = 0; s < n_bags * w; ++s)
    flat_idx.push_back(p[s] < 0 ? static_cast<std::int64_t>(n_rows * w)
                                : idx[static_cast<std::size_t>(p[s])] * static_cast<std::int64_t>(w) + static_cast<std::int64_t>(s % w));
  bitexact::reference::index_add_fixed_order<double, double>(want.data(), n_rows * w + 1, flat_idx.data(), go.data(), n_bags * w);
  want.pop_back();
  bitexact::embedding_bag_max_backward(got.data(), n_rows, w, go.data(), idx.data(), n_indices, p.data(), n_bags,
                                       tier::fixed_order, execution{2});
  EXPECT_TRUE(same(want, got));
}

// ---------------------------------------------------------------- golden values
std::uint64_t fnv(const void* p, std::size_t n) {
  const unsigned char* b = static_cast<const unsigned char*>(p);
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (std::size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}

TEST(ScatterGolden, PinnedToOrderVersion) {
  // Fixed inputs from a documented integer recipe (no library RNG, no libm), hashed outputs.
  // A change of any bit fails here until scatter_order_version is bumped (CHANGELOG.md).
  ASSERT_EQ(bitexact::scatter_order_version, 1);
  const std::size_t n = 3 * 4096 + 123, n_out = 37;
  std::vector<std::int64_t> idx(n);
  std::vector<float> src(n);
  std::uint64_t s = 12345;
  for (std::size_t i = 0; i < n; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    idx[i] = static_cast<std::int64_t>((s >> 33) % n_out);
    src[i] = static_cast<float>(static_cast<std::int32_t>(s >> 40) - (1 << 23)) / 4096.0f + 1.0f / 3.0f;
  }
  std::vector<float> fo(n_out, 0.1f), ex(n_out, 0.1f);
  bitexact::index_add(fo.data(), n_out, idx.data(), src.data(), n, tier::fixed_order);
  bitexact::index_add(ex.data(), n_out, idx.data(), src.data(), n, tier::exact);
  std::vector<float> rows(n_out * 3, 0.0f), rsrc(n * 3);
  for (std::size_t i = 0; i < n * 3; ++i) rsrc[i] = src[i / 3] * static_cast<float>(1 + i % 3);
  bitexact::index_add_rows(rows.data(), n_out, 3, idx.data(), rsrc.data(), n);
  const std::uint64_t h_fo = fnv(fo.data(), fo.size() * 4), h_ex = fnv(ex.data(), ex.size() * 4),
                      h_rows = fnv(rows.data(), rows.size() * 4);
  std::printf("golden: fixed_order %016llx exact %016llx rows %016llx\n", (unsigned long long)h_fo,
              (unsigned long long)h_ex, (unsigned long long)h_rows);
  EXPECT_EQ(h_fo, 0x160cbb962079447full);
  EXPECT_EQ(h_ex, 0x923af942077dd42aull);
  EXPECT_EQ(h_rows, 0xb1043f1c85a43d44ull);
}

// Every scatter op, in every strategy (dense partials, the counting-sort grouping, the radix
// grouping; targets 37, 5003, 70001 and 1100003 make index_add take dense, dense, dense and the
// bucketed path), both tiers where they exist, pinned to scatter_order_version 1. The hashes
// were computed from the code of scatter_order_version 1 (the orders did not change since);
// any change of bits fails here until the version is bumped (CHANGELOG.md).
std::vector<std::pair<std::string, std::uint64_t>> scatter_golden_hashes() {
  std::vector<std::pair<std::string, std::uint64_t>> rows;
  const std::size_t n = 3 * 4096 + 123, width = 3;
  for (std::size_t n_out : {std::size_t(37), std::size_t(5003), std::size_t(70001), std::size_t(1100003)}) {
    std::vector<std::int64_t> idx(n);
    std::vector<float> src(n), rsrc(n * width);
    std::vector<double> dsrc(n);
    std::uint64_t s = 12345 + n_out;
    for (std::size_t i = 0; i < n; ++i) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      idx[i] = static_cast<std::int64_t>((s >> 33) % n_out);
      src[i] = static_cast<float>(static_cast<std::int32_t>(s >> 40) - (1 << 23)) / 4096.0f + 1.0f / 3.0f;
      dsrc[i] = static_cast<double>(src[i]) * (1.0 + 1.0 / 7.0);
    }
    for (std::size_t i = 0; i < n * width; ++i) rsrc[i] = src[i / width] * static_cast<float>(1 + i % width);
    std::vector<std::int64_t> sorted_idx(idx);
    std::sort(sorted_idx.begin(), sorted_idx.end());
    const std::string at = "/" + std::to_string(n_out);
    auto add = [&](const std::string& name, const void* p, std::size_t bytes) { rows.emplace_back(name + at, fnv(p, bytes)); };
    for (tier t : {tier::fixed_order, tier::exact}) {
      const std::string tn = t == tier::exact ? ".exact" : ".fixed_order";
      std::vector<float> f(n_out, 0.1f);
      bitexact::index_add(f.data(), n_out, idx.data(), src.data(), n, t);
      add("index_add.f32" + tn, f.data(), f.size() * 4);
      std::vector<double> d(n_out, 0.1);
      bitexact::index_add(d.data(), n_out, idx.data(), dsrc.data(), n, t);
      add("index_add.f64" + tn, d.data(), d.size() * 8);
      std::vector<float> r(n_out * width, 0.0f);
      bitexact::index_add_rows(r.data(), n_out, width, idx.data(), rsrc.data(), n, t);
      add("index_add_rows" + tn, r.data(), r.size() * 4);
      for (scatter_op op : {scatter_op::sum, scatter_op::prod, scatter_op::mean, scatter_op::max, scatter_op::min}) {
        if (t == tier::exact && op == scatter_op::prod) continue;
        const std::string on = tn + ".op" + std::to_string(static_cast<int>(op));
        for (bool self : {false, true}) {
          std::vector<float> o(n_out, 0.5f);
          bitexact::scatter_reduce(o.data(), n_out, idx.data(), src.data(), n, op, self, t);
          add(std::string("scatter_reduce") + (self ? ".self" : "") + on, o.data(), o.size() * 4);
        }
        std::vector<float> g(n_out), gs(n_out);
        bitexact::segment_reduce(g.data(), n_out, idx.data(), src.data(), n, op, t);
        add("segment_reduce" + on, g.data(), g.size() * 4);
        bitexact::sorted_segment_reduce(gs.data(), n_out, sorted_idx.data(), src.data(), n, op, t);
        add("sorted_segment_reduce" + on, gs.data(), gs.size() * 4);
      }
      std::vector<float> h(64);
      bitexact::histogram(h.data(), h.size(), -300.0f, 300.0f, src.data(), src.data(), n, t);
      add("histogram.weighted" + tn, h.data(), h.size() * 4);
      // Bags: every 97th index starts a bag; rows of a table of n_out x width.
      std::vector<std::int64_t> offsets;
      for (std::size_t i = 0; i < n; i += 97) offsets.push_back(static_cast<std::int64_t>(i));
      std::vector<float> table(n_out * width);
      for (std::size_t k = 0; k < table.size(); ++k) table[k] = src[k % n] * 0.25f;
      for (bag_mode m : {bag_mode::sum, bag_mode::mean, bag_mode::max}) {
        std::vector<float> b(offsets.size() * width);
        bitexact::embedding_bag(b.data(), table.data(), n_out, width, idx.data(), n, offsets.data(), offsets.size(), m,
                                m == bag_mode::sum ? src.data() : nullptr, t);
        add("embedding_bag.mode" + std::to_string(static_cast<int>(m)) + tn, b.data(), b.size() * 4);
        if (m == bag_mode::max) continue;
        std::vector<float> grad(n_out * width, 0.0f);
        bitexact::embedding_bag_backward(grad.data(), n_out, width, b.data(), idx.data(), n, offsets.data(), offsets.size(),
                                         m, m == bag_mode::sum ? src.data() : nullptr, t);
        add("embedding_bag_backward.mode" + std::to_string(static_cast<int>(m)) + tn, grad.data(), grad.size() * 4);
      }
      std::vector<float> bm(offsets.size() * width), gm(n_out * width, 0.0f);
      std::vector<std::int64_t> pos(offsets.size() * width);
      bitexact::embedding_bag_max(bm.data(), pos.data(), table.data(), n_out, width, idx.data(), n, offsets.data(), offsets.size());
      bitexact::embedding_bag_max_backward(gm.data(), n_out, width, bm.data(), idx.data(), n, pos.data(), offsets.size(), t);
      add("embedding_bag_max_backward" + tn, gm.data(), gm.size() * 4);
      if (t == tier::fixed_order) add("embedding_bag_max.positions", pos.data(), pos.size() * 8);
    }
    std::vector<std::int64_t> counts(n_out);
    bitexact::bincount(counts.data(), n_out, idx.data(), n);
    add("bincount.counts", counts.data(), counts.size() * 8);
  }
  return rows;
}

TEST(ScatterGolden, EveryOpEveryStrategy) {
  ASSERT_EQ(bitexact::scatter_order_version, 1);
  // tests/data/scatter_golden_v1.txt: one "name hash" line per output, in the order above
  // (written once by BITEXACT_PRINT_GOLDEN=<file> from the code of order version 1).
  bitexact_test::golden_table table;  // the shared loader (golden_file.hpp)
  table.rows = scatter_golden_hashes();
  table.check("scatter_golden_v1.txt");
  const std::size_t k = table.rows.size();
  EXPECT_EQ(k, 232u);  // 4 target counts x 58 outputs (31 fixed_order, 26 exact, bincount)
}

// The multi-threaded counting sort of the grouping (more than 2^20 sources into at most 2^16
// targets; cpu/scatter_kernels.hpp group_by_target): with the default grain 2^20 + 4099
// sources take 2 parts, with the grain lowered to 2^17 up to 8; every op that groups equals
// the reference.
TEST(ScatterGrouping, MultiThreadedCountingSort) {
  const std::size_t n = (std::size_t(1) << 20) + 4099, n_out = 60000;
  std::mt19937_64 g(99);
  const auto idx = make_indices(dist::zipf, n, n_out, g);
  const auto src = make_values<float>(n, g, true);
  std::vector<float> want_seg(n_out), want_red(n_out, 2.0f);
  bitexact::reference::segment_reduce(want_seg.data(), n_out, idx.data(), src.data(), n, scatter_op::sum, false);
  bitexact::reference::scatter_reduce(want_red.data(), n_out, idx.data(), src.data(), n, scatter_op::mean, true, false);
  for (std::uint64_t grain : {std::uint64_t(0), std::uint64_t(1) << 17}) {
    bitexact_test::split_probe probe(false);
    bitexact::cpu::detail::set_min_work_per_thread(grain);
    for (int t : {2, 3, 8}) {
      std::vector<float> seg(n_out), red(n_out, 2.0f);
      bitexact::segment_reduce(seg.data(), n_out, idx.data(), src.data(), n, scatter_op::sum, tier::fixed_order, execution{t, bitexact::isa::automatic});
      ASSERT_TRUE(same(want_seg, seg)) << "grain " << grain << " threads " << t;
      bitexact::scatter_reduce(red.data(), n_out, idx.data(), src.data(), n, scatter_op::mean, true, tier::fixed_order, execution{t, bitexact::isa::automatic});
      ASSERT_TRUE(same(want_red, red)) << "grain " << grain << " threads " << t;
    }
    EXPECT_TRUE(probe.saw(2));
    if (grain != 0) EXPECT_TRUE(probe.saw(8));
  }
}

TEST(ScatterEnvironment, FlushToZeroIsRefused) {
#if defined(__SSE2__)
  const unsigned csr = _mm_getcsr();
  _mm_setcsr(csr | 0x8000u);
  std::vector<float> out(3, 1.0f), src = {1, 2};
  std::vector<std::int64_t> idx = {0, 1};
  EXPECT_THROW(bitexact::index_add(out.data(), 3, idx.data(), src.data(), 2), bitexact::fp_environment_error);
  _mm_setcsr(csr);
  EXPECT_EQ(out, std::vector<float>(3, 1.0f));
#else
  GTEST_SKIP() << "x86 MXCSR only";
#endif
}

// ---------------------------------------------------------------- rows: many chunks per target
// Groups spanning 11 chunks (so the row-wise tree has uneven levels), a column of -0.0 on
// both sides (the exact tier's signed-zero rule), NaN/Inf, threads that split the targets.
TEST(IndexAddRows, ManyChunksAndSignedZeros) {
  std::mt19937_64 g(97);
  const std::size_t n = 11 * 4096 + 123, n_out = 5;
  for (std::size_t width : {std::size_t(1), std::size_t(19), std::size_t(64)})
    for (dist d : {dist::all_to_one, dist::uniform, dist::zipf})
      for (tier t : {tier::fixed_order, tier::exact}) {
        const auto idx = make_indices(d, n, n_out, g);
        auto src = make_values<float>(n * width, g, width == 19);
        auto init = make_values<float>(n_out * width, g, false);
        for (std::size_t i = 0; i < n; ++i) src[i * width] = -0.0f;
        for (std::size_t k = 0; k < n_out; ++k) init[k * width] = -0.0f;
        std::vector<float> want = init;
        bitexact::reference::index_add_rows<float, float>(want.data(), n_out, width, idx.data(), src.data(), n,
                                                          t == tier::exact);
        for (int threads : {1, 2, 3}) {
          std::vector<float> got = init;
          bitexact::index_add_rows(got.data(), n_out, width, idx.data(), src.data(), n, t, execution{threads});
          ASSERT_TRUE(same(want, got)) << "width=" << width << " " << dist_name(d) << " threads=" << threads;
        }
      }
}

// Few targets, many sources (the dense strategies): sums that are exactly zero (all -0.0,
// +0.0 with -0.0, x with -x), an untouched target holding a NaN with a payload, Inf and NaN
// sources, an out-of-range index found on the way.
TEST(IndexAdd, DenseZeroSumsAndSpecials) {
  std::mt19937_64 g(101);
  const std::size_t n = 3 * 4096 + 17, n_out = 8;
  std::vector<std::int64_t> idx(n);
  std::vector<float> src(n);
  for (std::size_t i = 0; i < n; ++i) {
    idx[i] = static_cast<std::int64_t>(i % 6);
    const float x = std::ldexp(float(g() % 1000 + 1), static_cast<int>(g() % 60) - 30);
    switch (i % 6) {
      case 0: src[i] = -0.0f; break;                               // all -0.0
      case 1: src[i] = (i / 6) % 2 ? 0.0f : -0.0f; break;          // +0 and -0
      case 2: src[i] = (i / 6) % 2 ? -src[i - 6] : x; break;       // x, -x
      case 3: src[i] = x; break;
      case 4: src[i] = i == 4 ? std::numeric_limits<float>::infinity() : x; break;
      default: src[i] = i == 5 ? std::numeric_limits<float>::quiet_NaN() : -x; break;
    }
  }
  if (((n - 1) / 6) % 2 == 0) idx[n - 1] = 3;  // keep the x, -x pairs whole
  std::vector<float> init(n_out, -0.0f);
  std::uint32_t payload = 0x7fc12345u;
  std::memcpy(&init[7], &payload, sizeof payload);  // untouched: must keep its bits
  for (tier t : {tier::fixed_order, tier::exact}) {
    std::vector<float> want = init;
    if (t == tier::exact)
      bitexact::reference::index_add_exact<float, float>(want.data(), n_out, idx.data(), src.data(), n);
    else
      bitexact::reference::index_add_fixed_order<float, float>(want.data(), n_out, idx.data(), src.data(), n);
    for (int threads : {1, 2, 3}) {
      std::vector<float> got = init;
      bitexact::index_add(got.data(), n_out, idx.data(), src.data(), n, t, execution{threads});
      ASSERT_EQ(0, std::memcmp(want.data(), got.data(), n_out * sizeof(float))) << "threads=" << threads;  // bits
      std::uint32_t b;
      std::memcpy(&b, &got[7], sizeof b);
      EXPECT_EQ(b, payload);
    }
    auto bad = idx;
    bad[n - 5] = static_cast<std::int64_t>(n_out);
    std::vector<float> got = init;
    EXPECT_THROW(bitexact::index_add(got.data(), n_out, bad.data(), src.data(), n, t, execution{2}), bitexact::index_error);
    EXPECT_EQ(0, std::memcmp(init.data(), got.data(), n_out * sizeof(float)));
  }
}

// An ISA this build or CPU lacks is std::invalid_argument in every scatter op (README:
// Execution), before anything is written, as in the other families.
TEST(ScatterExecution, UnusableIsaThrowsBeforeWriting) {
  std::vector<bitexact::isa> bad;
  for (bitexact::isa i : {bitexact::isa::sse2, bitexact::isa::avx2, bitexact::isa::avx512, bitexact::isa::neon})
    if (!bitexact::isa_usable(i)) bad.push_back(i);
  ASSERT_FALSE(bad.empty()) << "every ISA is usable here: nothing to test";
  const std::size_t n = 9000, n_out = 50, width = 3;
  std::mt19937_64 g(7);
  const auto idx = make_indices(dist::uniform, n, n_out, g);
  const auto src = make_values<float>(n, g, false);
  const auto rsrc = make_values<float>(n * width, g, false);
  std::vector<bitexact::bfloat16> bsrc(n);
  for (std::size_t i = 0; i < n; ++i) bsrc[i] = bitexact::bfloat16::from_float(src[i]);
  std::vector<std::int64_t> offsets = {0, 10, 100, 4000};
  std::vector<float> table = make_values<float>(n_out * width, g, false);
  for (bitexact::isa i : bad) {
    const execution e{2, i};
    SCOPED_TRACE(bitexact::isa_name(i));
    auto expect_untouched = [&](const char* what, auto&& call, std::size_t out_size) {
      std::vector<float> out(out_size, 5.0f);
      EXPECT_THROW(call(out.data()), std::invalid_argument) << what;
      EXPECT_EQ(out, std::vector<float>(out_size, 5.0f)) << what << " wrote before throwing";
    };
    expect_untouched("index_add", [&](float* o) { bitexact::index_add(o, n_out, idx.data(), src.data(), n, tier::fixed_order, e); }, n_out);
    expect_untouched("index_add bf16", [&](float* o) { bitexact::index_add(o, n_out, idx.data(), bsrc.data(), n, tier::exact, e); }, n_out);
    expect_untouched("index_add_rows", [&](float* o) { bitexact::index_add_rows(o, n_out, width, idx.data(), rsrc.data(), n, tier::fixed_order, e); }, n_out * width);
    expect_untouched("scatter_reduce", [&](float* o) { bitexact::scatter_reduce(o, n_out, idx.data(), src.data(), n, scatter_op::max, true, tier::fixed_order, e); }, n_out);
    expect_untouched("segment_reduce", [&](float* o) { bitexact::segment_reduce(o, n_out, idx.data(), src.data(), n, scatter_op::sum, tier::exact, e); }, n_out);
    std::vector<std::int64_t> sorted_idx(idx);
    std::sort(sorted_idx.begin(), sorted_idx.end());
    expect_untouched("sorted_segment_reduce", [&](float* o) { bitexact::sorted_segment_reduce(o, n_out, sorted_idx.data(), src.data(), n, scatter_op::sum, tier::fixed_order, e); }, n_out);
    expect_untouched("bincount weighted", [&](float* o) { bitexact::bincount(o, n_out, idx.data(), src.data(), n, tier::fixed_order, e); }, n_out);
    expect_untouched("histogram", [&](float* o) { bitexact::histogram(o, n_out, -1.0f, 1.0f, src.data(), static_cast<const float*>(nullptr), n, tier::fixed_order, e); }, n_out);
    expect_untouched("embedding_bag", [&](float* o) { bitexact::embedding_bag(o, table.data(), n_out, width, idx.data(), n, offsets.data(), offsets.size(), bag_mode::sum, nullptr, tier::fixed_order, e); }, offsets.size() * width);
    expect_untouched("embedding_bag_backward", [&](float* o) { bitexact::embedding_bag_backward(o, n_out, width, table.data(), idx.data(), n, offsets.data(), std::size_t(4), bag_mode::mean, static_cast<const float*>(nullptr), tier::fixed_order, e); }, n_out * width);
    std::vector<std::int64_t> counts(n_out, 5);
    EXPECT_THROW(bitexact::bincount(counts.data(), n_out, idx.data(), n, e), std::invalid_argument);
    EXPECT_EQ(counts, std::vector<std::int64_t>(n_out, 5));
    std::vector<std::int64_t> pos(offsets.size() * width, 5);
    expect_untouched("embedding_bag_max", [&](float* o) { bitexact::embedding_bag_max(o, pos.data(), table.data(), n_out, width, idx.data(), n, offsets.data(), offsets.size(), e); }, offsets.size() * width);
    EXPECT_EQ(pos, std::vector<std::int64_t>(offsets.size() * width, 5));
  }
}

}  // namespace
