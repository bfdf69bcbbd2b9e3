// tests/cuda_scatter_emulation_test.cpp - the CUDA scatter pipeline (cuda/scatter_kernels.hpp),
// run by the CPU emulation of a launch, must equal the scalar reference (reference/scatter.hpp)
// bit for bit: index_add 1-D and rows, both tiers, float/double/bfloat16 sources, int32 and
// int64 indices, for grids of 1/3/7/64 blocks x 32/128/256 threads in shuffled, forward and
// reverse block order, and index distributions that stress the runs and the chunk tree.
//
// This proves the algorithm of the kernels (which item computes what, how runs and chunks are
// cut, how the tree is formed) for many launch shapes; the sort and the scan are done by the
// host here (the device uses CUB, whose sort is stable by contract). The device compilation is
// proven by tests/cuda_compile_check.cu. Nothing here runs on a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "bitexact/core/bfloat16.hpp"
#include "bitexact/cuda/launch.hpp"
#include "bitexact/cuda/scatter_kernels.hpp"
#include "bitexact/reference/scatter.hpp"
#include "bitexact/scatter.hpp"
#include "scatter_test_data.hpp"

namespace {

using namespace bitexact;
using cuda::block_order;
using cuda::launch_shape;
using namespace bitexact::scatter_test_data;

std::vector<launch_shape> all_shapes() {
  std::vector<launch_shape> v;
  for (unsigned g : {1u, 3u, 7u, 64u})
    for (unsigned b : {32u, 128u, 256u}) v.push_back({g, b});
  return v;
}

std::string where(dist d, std::size_t n, std::size_t width, const launch_shape& s, block_order o) {
  return std::string(name(d)) + " n=" + std::to_string(n) + " width=" + std::to_string(width) + " shape " +
         std::to_string(s.grid) + "x" + std::to_string(s.block) + " order " + std::to_string(static_cast<int>(o));
}

// One problem: the reference once, then the emulated pipeline for every shape (and, for the
// first shape, every block order).
template <class T, class I>
void check(dist d, std::size_t n, std::size_t n_out, std::size_t width, tier t, const std::vector<launch_shape>& shapes) {
  using A = core::accumulation_t<T>;
  const std::uint64_t seed = n * 1000003 + n_out * 31 + width * 7 + static_cast<std::uint64_t>(d);
  const std::vector<I> idx = make_indices<I>(d, n, n_out, seed);
  const std::vector<T> src = make_values<T>(n * width, seed + 1, t == tier::exact);
  const std::vector<A> out0 = make_out<A>(n_out * width, seed + 2);
  std::vector<A> want = out0;
  if (width == 1 && t == tier::exact)
    reference::index_add_exact<T, A, I>(want.data(), n_out, idx.data(), src.data(), n);
  else if (width == 1)
    reference::index_add_fixed_order<T, A, I>(want.data(), n_out, idx.data(), src.data(), n);
  else
    reference::index_add_rows<T, A, I>(want.data(), n_out, width, idx.data(), src.data(), n, t == tier::exact);
  bool first = true;
  for (const launch_shape& s : shapes) {
    for (block_order o : {block_order::shuffled, block_order::forward, block_order::reverse}) {
      if (!first && o != block_order::shuffled) continue;
      std::vector<A> got = out0;
      if (width == 1)
        cuda::emulate::index_add(got.data(), n_out, idx.data(), src.data(), n, t, s, o);
      else
        cuda::emulate::index_add_rows(got.data(), n_out, width, idx.data(), src.data(), n, t, s, o);
      ASSERT_TRUE(same_bits(want, got)) << where(d, n, width, s, o);
    }
    first = false;
  }
}

const std::size_t kSizes[] = {0, 1, 4095, 4097, 3 * 4096 + 5, 100003};

template <class T, class I>
void check_1d(tier t) {
  const auto shapes = all_shapes();
  const std::vector<launch_shape> few = {{1, 32}, {7, 128}, {64, 256}};
  for (dist d : kDists)
    for (std::size_t n : kSizes)
      for (std::size_t n_out : {std::size_t(1), std::size_t(7), std::size_t(1000), std::size_t(70001)}) {
        if (n_out > 1000 && n < 4000) continue;
        check<T, I>(d, n, n_out, 1, t, n >= 100000 ? few : shapes);
      }
}

TEST(CudaScatterEmulation, IndexAddFixedOrderFloatInt64) { check_1d<float, std::int64_t>(tier::fixed_order); }
TEST(CudaScatterEmulation, IndexAddFixedOrderDoubleInt32) { check_1d<double, std::int32_t>(tier::fixed_order); }
TEST(CudaScatterEmulation, IndexAddFixedOrderBf16Int64) { check_1d<bfloat16, std::int64_t>(tier::fixed_order); }
TEST(CudaScatterEmulation, IndexAddExactFloatInt32) { check_1d<float, std::int32_t>(tier::exact); }
TEST(CudaScatterEmulation, IndexAddExactDoubleInt64) { check_1d<double, std::int64_t>(tier::exact); }

// The 64-bit layout (keys and positions as uint64, used on the device when n >= 2^32 or
// n_out > 2^32) and unsigned indices give the same bits.
TEST(CudaScatterEmulation, WideLayoutAndUnsignedIndices) {
  for (dist d : kDists)
    for (std::size_t n : {std::size_t(1), std::size_t(4097), std::size_t(3 * 4096 + 5), std::size_t(40009)})
      for (tier t : {tier::fixed_order, tier::exact})
        for (std::size_t width : {std::size_t(1), std::size_t(3)}) {
          const std::size_t n_out = 300;
          const std::vector<std::uint32_t> idx = make_indices<std::uint32_t>(d, n, n_out, n + width);
          const std::vector<double> src = make_values<double>(n * width, n + 1, t == tier::exact);
          const std::vector<double> out0 = make_out<double>(n_out * width, n + 2);
          std::vector<double> want = out0;
          reference::index_add_rows<double, double, std::uint32_t>(want.data(), n_out, width, idx.data(), src.data(), n,
                                                                   t == tier::exact);
          for (const launch_shape& s : {launch_shape{1, 32}, launch_shape{7, 128}, launch_shape{64, 256}}) {
            std::vector<double> got = out0;
            cuda::emulate::index_add_rows(got.data(), n_out, width, idx.data(), src.data(), n, t, s,
                                          block_order::shuffled, /*wide_layout=*/true);
            ASSERT_TRUE(same_bits(want, got)) << where(d, n, width, s, block_order::shuffled);
          }
        }
}

TEST(CudaScatterEmulation, IndexAddRows) {
  const std::vector<launch_shape> shapes = {{1, 32}, {3, 128}, {7, 256}, {64, 32}};
  for (dist d : kDists)
    for (std::size_t n : {std::size_t(1), std::size_t(4097), std::size_t(3 * 4096 + 5)})
      for (std::size_t width : {std::size_t(2), std::size_t(17)}) {
        check<float, std::int64_t>(d, n, 50, width, tier::fixed_order, shapes);
        check<double, std::int32_t>(d, n, 50, width, tier::fixed_order, shapes);
        check<bfloat16, std::int32_t>(d, n, 50, width, tier::fixed_order, shapes);
        check<float, std::int32_t>(d, n, 50, width, tier::exact, shapes);
        check<double, std::int64_t>(d, n, 50, width, tier::exact, shapes);
      }
}

// scatter_reduce and segment_reduce: every op, include_self both ways, both tiers (prod exact
// is refused), against reference::scatter_reduce / segment_reduce.
const scatter_op kOps[] = {scatter_op::sum, scatter_op::prod, scatter_op::mean, scatter_op::max, scatter_op::min};

template <class A, class I>
void check_scatter_reduce(dist d, std::size_t n, std::size_t n_out, scatter_op op, bool include_self, tier t,
                          const std::vector<launch_shape>& shapes) {
  const std::uint64_t seed = n * 131 + n_out * 7 + static_cast<std::uint64_t>(d) * 3 + static_cast<std::uint64_t>(op);
  const std::vector<I> idx = make_indices<I>(d, n, n_out, seed);
  std::vector<A> src = make_values<A>(n, seed + 1, t == tier::exact);
  if (op == scatter_op::prod)  // products of values near 1 stay finite and still round
    for (auto& x : src) x = A(1) + x / A(1 << 21);
  const std::vector<A> out0 = make_out<A>(n_out, seed + 2);
  std::vector<A> want = out0;
  reference::scatter_reduce<A, I>(want.data(), n_out, idx.data(), src.data(), n, op, include_self, t == tier::exact);
  for (const launch_shape& s : shapes) {
    std::vector<A> got = out0;
    cuda::emulate::scatter_reduce(got.data(), n_out, idx.data(), src.data(), n, op, include_self, t, s);
    ASSERT_TRUE(same_bits(want, got)) << where(d, n, 1, s, block_order::shuffled) << " op " << static_cast<int>(op)
                                      << " self " << include_self << " exact " << (t == tier::exact);
  }
}

TEST(CudaScatterEmulation, ScatterReduce) {
  const std::vector<launch_shape> shapes = {{1, 32}, {3, 128}, {64, 256}};
  for (dist d : kDists)
    for (std::size_t n : {std::size_t(1), std::size_t(4097), std::size_t(3 * 4096 + 5), std::size_t(40009)})
      for (scatter_op op : kOps)
        for (bool self : {false, true})
          for (tier t : {tier::fixed_order, tier::exact}) {
            if (t == tier::exact && op == scatter_op::prod) continue;
            check_scatter_reduce<float, std::int64_t>(d, n, 300, op, self, t, shapes);
            check_scatter_reduce<double, std::int32_t>(d, n, 300, op, self, t, shapes);
          }
  std::vector<float> out(4), src(4, 1.0f);
  std::vector<std::int32_t> idx = {0, 1, 2, 3};
  EXPECT_THROW(cuda::emulate::scatter_reduce(out.data(), 4, idx.data(), src.data(), 4, scatter_op::prod, true,
                                             tier::exact, {1, 32}),
               std::invalid_argument);
}

template <class D, class I>
void check_segment_reduce(dist d, std::size_t n, std::size_t segs, scatter_op op, tier t,
                          const std::vector<launch_shape>& shapes) {
  using A = core::accumulation_t<D>;
  const std::uint64_t seed = n * 977 + segs * 5 + static_cast<std::uint64_t>(d) * 11 + static_cast<std::uint64_t>(op);
  const std::vector<I> ids = make_indices<I>(d, n, segs, seed);
  std::vector<D> data = make_values<D>(n, seed + 1, t == tier::exact);
  if constexpr (!std::is_same<D, bfloat16>::value)
    if (op == scatter_op::prod)
      for (auto& x : data) x = D(1) + x / D(1 << 21);
  std::vector<A> want(segs, A(7)), got;
  reference::segment_reduce<A, I, D>(want.data(), segs, ids.data(), data.data(), n, op, t == tier::exact);
  for (const launch_shape& s : shapes) {
    got.assign(segs, A(7));
    cuda::emulate::segment_reduce(got.data(), segs, ids.data(), data.data(), n, op, t, s);
    ASSERT_TRUE(same_bits(want, got)) << where(d, n, 1, s, block_order::shuffled) << " op " << static_cast<int>(op)
                                      << " exact " << (t == tier::exact);
  }
}

TEST(CudaScatterEmulation, SegmentReduce) {
  const std::vector<launch_shape> shapes = {{1, 32}, {7, 128}, {64, 256}};
  for (dist d : kDists)
    for (std::size_t n : {std::size_t(0), std::size_t(1), std::size_t(4097), std::size_t(3 * 4096 + 5)})
      for (scatter_op op : kOps)
        for (tier t : {tier::fixed_order, tier::exact}) {
          if (t == tier::exact && op == scatter_op::prod) continue;
          check_segment_reduce<float, std::int32_t>(d, n, 200, op, t, shapes);
          check_segment_reduce<double, std::int64_t>(d, n, 200, op, t, shapes);
          if (op != scatter_op::prod) check_segment_reduce<bfloat16, std::int64_t>(d, n, 200, op, t, shapes);
        }
}

// fixed_order with Inf - Inf (x86 gives a negative NaN) and NaN inputs with odd payloads: every
// NaN result is the canonical quiet NaN, as in the reference (core::canonicalize).
template <class A>
A odd_nan() {
  using B = typename std::conditional<sizeof(A) == 4, std::uint32_t, std::uint64_t>::type;
  const B b = sizeof(A) == 4 ? B(0xffc00123u) : B(0xfff8000000000123ull);
  A x;
  std::memcpy(&x, &b, sizeof x);
  return x;
}
template <class A>
void check_fixed_order_nans() {
  const A inf = std::numeric_limits<A>::infinity();
  const std::size_t n = 3 * 4096 + 5, n_out = 40;
  const std::vector<std::int64_t> idx = make_indices<std::int64_t>(dist::uniform, n, n_out, 77);
  std::vector<A> src = make_values<A>(n, 78, false);
  for (std::size_t i = 0; i < n; i += 301) src[i] = inf;
  for (std::size_t i = 150; i < n; i += 401) src[i] = -inf;
  for (std::size_t i = 7; i < n; i += 2003) src[i] = odd_nan<A>();
  const std::vector<A> out0 = make_out<A>(n_out, 79);
  auto all_nans_canonical = [](const std::vector<A>& v) {
    std::size_t nans = 0;
    for (const A& x : v)
      if (x != x) {
        ++nans;
        const A c = std::numeric_limits<A>::quiet_NaN();
        if (std::memcmp(&x, &c, sizeof(A)) != 0) return std::size_t(0);
      }
    return nans;
  };
  std::vector<A> want = out0;
  reference::index_add_fixed_order<A, A, std::int64_t>(want.data(), n_out, idx.data(), src.data(), n);
  EXPECT_GT(all_nans_canonical(want), 5u);
  for (const launch_shape& sh : all_shapes()) {
    std::vector<A> got = out0;
    cuda::emulate::index_add(got.data(), n_out, idx.data(), src.data(), n, tier::fixed_order, sh);
    ASSERT_TRUE(same_bits(want, got)) << "index_add " << sh.grid << "x" << sh.block;
  }
  for (scatter_op op : {scatter_op::sum, scatter_op::mean, scatter_op::prod}) {
    std::vector<A> w = out0, g = out0;
    reference::scatter_reduce<A, std::int64_t>(w.data(), n_out, idx.data(), src.data(), n, op, true, false);
    cuda::emulate::scatter_reduce(g.data(), n_out, idx.data(), src.data(), n, op, true, tier::fixed_order, {7, 128});
    ASSERT_TRUE(same_bits(w, g)) << "scatter_reduce op " << static_cast<int>(op);
    std::vector<A> ws(n_out), gs(n_out);
    reference::segment_reduce<A, std::int64_t, A>(ws.data(), n_out, idx.data(), src.data(), n, op, false);
    cuda::emulate::segment_reduce(gs.data(), n_out, idx.data(), src.data(), n, op, tier::fixed_order, {3, 32});
    ASSERT_TRUE(same_bits(ws, gs)) << "segment_reduce op " << static_cast<int>(op);
  }
  std::vector<A> wr = out0, gr = out0;  // rows: width 2 over n / 2 rows
  std::vector<std::int64_t> idx2(idx.begin(), idx.begin() + n / 2);
  for (auto& t : idx2) t %= static_cast<std::int64_t>(n_out / 2);
  reference::index_add_rows<A, A, std::int64_t>(wr.data(), n_out / 2, 2, idx2.data(), src.data(), n / 2, false);
  cuda::emulate::index_add_rows(gr.data(), n_out / 2, 2, idx2.data(), src.data(), n / 2, tier::fixed_order, {64, 256});
  ASSERT_TRUE(same_bits(wr, gr)) << "index_add_rows";
}
TEST(CudaScatterEmulation, FixedOrderNaNsAreCanonicalFloat) { check_fixed_order_nans<float>(); }
TEST(CudaScatterEmulation, FixedOrderNaNsAreCanonicalDouble) { check_fixed_order_nans<double>(); }

// Targets made only of special values: every combination of Inf/-Inf/NaN/signed zeros/
// denormals/cancellation with the old value, against the exact reference.
template <class A>
void check_specials() {
  const A inf = std::numeric_limits<A>::infinity(), nan = std::numeric_limits<A>::quiet_NaN();
  const A den = std::numeric_limits<A>::denorm_min(), big = std::numeric_limits<A>::max();
  const std::vector<std::vector<A>> groups = {
      {-A(0), -A(0)}, {-A(0), A(0)}, {A(0)}, {inf, -inf}, {inf, A(1)}, {-inf, -inf}, {nan, A(1)}, {den, -den},
      {den, den, den}, {big, big, -big}, {big, big}, {-big, -big}, {A(1), A(1e-30), A(-1)}, {A(1), -A(1)},
      {A(0.1), A(0.2), A(0.3), -A(0.6)}};
  const std::vector<A> olds = {-A(0), A(0), A(1), -inf, nan, den};
  std::vector<std::int64_t> idx;
  std::vector<A> src;
  // Spread each group's values over different chunks (positions far apart) and interleave.
  const std::size_t n_out = groups.size() * olds.size();
  for (std::size_t k = 0; k < 4; ++k)
    for (std::size_t t = 0; t < n_out; ++t) {
      const auto& g = groups[t % groups.size()];
      for (std::size_t j = k; j < g.size(); j += 4) {
        idx.push_back(static_cast<std::int64_t>(t));
        src.push_back(g[j]);
      }
      for (int pad = 0; pad < 40; ++pad) {  // filler on a target that is not checked specially
        idx.push_back(static_cast<std::int64_t>(n_out));
        src.push_back(A(1));
      }
    }
  std::vector<A> out0(n_out + 1);
  for (std::size_t t = 0; t < n_out; ++t) out0[t] = olds[t / groups.size()];
  std::vector<A> want = out0;
  reference::index_add_exact<A, A, std::int64_t>(want.data(), n_out + 1, idx.data(), src.data(), idx.size());
  for (const launch_shape& s : all_shapes()) {
    std::vector<A> got = out0;
    cuda::emulate::index_add(got.data(), n_out + 1, idx.data(), src.data(), idx.size(), tier::exact, s);
    ASSERT_TRUE(same_bits(want, got)) << s.grid << "x" << s.block;
  }
}
// Heavy targets (more than 4096 contributions: per-run exact sums merged digit-wise with
// atomics): finite specials, all -0, one +Inf among finite values, +Inf and -Inf, exact
// cancellation to zero, denormals only, huge values near overflow; interleaved with each other
// and with light targets, in the 1-D and the row form.
template <class A>
void check_heavy(std::size_t width) {
  const A inf = std::numeric_limits<A>::infinity(), den = std::numeric_limits<A>::denorm_min();
  const A big = std::numeric_limits<A>::max();
  constexpr std::size_t kHeavy = 8, n_out = kHeavy + 5;
  const std::size_t per = 3 * 4096 + 7;
  rng r{99 + width};
  std::vector<std::int32_t> idx;
  std::vector<A> src;
  std::vector<A> prev(kHeavy, A(1));
  for (std::size_t i = 0; i < per; ++i)
    for (std::size_t t = 0; t < n_out; ++t) {
      if (t >= kHeavy && (r.next() % 8) != 0) continue;  // light targets: few values
      idx.push_back(static_cast<std::int32_t>(t));
      for (std::size_t c = 0; c < width; ++c) {
        A v;
        switch (t) {
          case 0: do v = special_value<A>(r, prev[0]); while (v != v || v - v != A(0)); prev[0] = v; break;
          case 1: v = -A(0); break;
          case 2: v = i == per / 2 ? inf : spread_value<A>(r); break;
          case 3: v = i == 5 ? inf : (i == per - 3 ? -inf : spread_value<A>(r)); break;
          case 4: v = i + 1 == per ? -A(0) : (i % 2 ? A(-1) : A(1)) * std::ldexp(A(1) + A(i / 2 % 7), static_cast<int>(i / 2 % 40) - 20); break;
          case 5: v = den * A(1 + r.next() % 5) * ((r.next() & 1) ? A(1) : A(-1)); break;
          case 6: v = big * A(0.5) * ((i % 3 == 0) ? A(-1) : A(1)); break;  // partial sums far above max
          default: v = spread_value<A>(r); break;
        }
        src.push_back(v);
      }
    }
  std::vector<A> out0(n_out * width);
  for (std::size_t k = 0; k < out0.size(); ++k) out0[k] = (k / width == 1) ? -A(0) : (k / width == 4 ? A(0) : A(0.25));
  std::vector<A> want = out0;
  const std::size_t n = idx.size();
  if (width == 1)
    reference::index_add_exact<A, A, std::int32_t>(want.data(), n_out, idx.data(), src.data(), n);
  else
    reference::index_add_rows<A, A, std::int32_t>(want.data(), n_out, width, idx.data(), src.data(), n, true);
  // The cases are what they claim: -0, +Inf, NaN, +0.
  EXPECT_TRUE(want[1 * width] == A(0) && std::signbit(want[1 * width]));
  EXPECT_EQ(want[2 * width], inf);
  EXPECT_TRUE(want[3 * width] != want[3 * width]);
  EXPECT_TRUE(want[4 * width] == A(0) && !std::signbit(want[4 * width]));
  for (const launch_shape& sh : all_shapes()) {
    std::vector<A> got = out0;
    if (width == 1)
      cuda::emulate::index_add(got.data(), n_out, idx.data(), src.data(), n, tier::exact, sh);
    else
      cuda::emulate::index_add_rows(got.data(), n_out, width, idx.data(), src.data(), n, tier::exact, sh);
    ASSERT_TRUE(same_bits(want, got)) << "width " << width << " shape " << sh.grid << "x" << sh.block;
  }
}
TEST(CudaScatterEmulation, ExactHeavyTargetsFloat) {
  check_heavy<float>(1);
  check_heavy<float>(3);
}
TEST(CudaScatterEmulation, ExactHeavyTargetsDouble) {
  check_heavy<double>(1);
  check_heavy<double>(2);
}
TEST(CudaScatterEmulation, ExactSpecialValuesFloat) { check_specials<float>(); }
TEST(CudaScatterEmulation, ExactSpecialValuesDouble) { check_specials<double>(); }

// A bad index throws index_error naming the lowest bad position, for every shape, and nothing
// is written.
template <class I>
void check_bad_index(I bad_value) {
  const std::size_t n = 3 * 4096 + 5, n_out = 10;
  std::vector<I> idx = make_indices<I>(dist::uniform, n, n_out, 5);
  idx[9000] = bad_value;
  idx[4100] = bad_value;
  idx[12000] = static_cast<I>(n_out);
  const std::vector<float> src = make_values<float>(n, 6, false);
  const std::vector<float> out0 = make_out<float>(n_out, 7);
  for (const launch_shape& s : all_shapes())
    for (tier t : {tier::fixed_order, tier::exact}) {
      std::vector<float> out = out0;
      try {
        cuda::emulate::index_add(out.data(), n_out, idx.data(), src.data(), n, t, s);
        FAIL() << "no index_error";
      } catch (const index_error& e) {
        EXPECT_EQ(e.position(), 4100u);
        EXPECT_EQ(e.index(), static_cast<std::int64_t>(bad_value));
        EXPECT_EQ(e.bound(), n_out);
        EXPECT_NE(std::string(e.what()).find("at position 4100"), std::string::npos) << e.what();
      }
      ASSERT_TRUE(same_bits(out0, out));
    }
}
TEST(CudaScatterEmulation, BadIndexInt32Negative) { check_bad_index<std::int32_t>(-1); }
TEST(CudaScatterEmulation, BadIndexInt64TooLarge) { check_bad_index<std::int64_t>(std::int64_t(1) << 40); }

// The index type switch: 32-bit keys and positions vs 64-bit ones give the same layout.
TEST(CudaScatterEmulation, RunsLayoutSameForBothIndexTypes) {
  const std::size_t n = 3 * 4096 + 5;
  const auto idx = make_indices<std::int64_t>(dist::zipf, n, 300, 11);
  const auto a = cuda::emulate::build_runs<std::uint32_t>({7, 128}, block_order::shuffled, idx.data(), n);
  const auto b = cuda::emulate::build_runs<std::uint64_t>({3, 32}, block_order::reverse, idx.data(), n);
  ASSERT_EQ(a.run_count, b.run_count);
  for (std::size_t q = 0; q < n; ++q) {
    ASSERT_EQ(a.key[q], b.key[q]);
    ASSERT_EQ(a.pos[q], b.pos[q]);
  }
  for (std::size_t r = 0; r <= a.run_count; ++r) ASSERT_EQ(a.run_begin[r], b.run_begin[r]);
  // Runs never cross a target or a chunk and cover [0, n).
  for (std::size_t r = 0; r < a.run_count; ++r) {
    const auto s = a.run_begin[r], e = a.run_begin[r + 1];
    ASSERT_LT(s, e);
    ASSERT_EQ(a.key[s], a.key[e - 1]);
    ASSERT_EQ(a.pos[s] / 4096, a.pos[e - 1] / 4096);
  }
  ASSERT_EQ(a.run_begin[a.run_count], n);
}

}  // namespace

namespace {
// The launcher's sort covers exactly the key bits a valid index can have, and picks 32-bit
// keys/positions only when both fit.
TEST(CudaScatterEmulation, KeyBitsAndIndexType) {
  using bitexact::cuda::scatter_detail::key_bits;
  using bitexact::cuda::scatter_detail::with_index_type;
  EXPECT_EQ(key_bits(0), 1);
  EXPECT_EQ(key_bits(1), 1);
  EXPECT_EQ(key_bits(2), 1);
  EXPECT_EQ(key_bits(3), 2);
  EXPECT_EQ(key_bits(4), 2);
  EXPECT_EQ(key_bits(5), 3);
  EXPECT_EQ(key_bits(std::uint64_t(1) << 32), 32);
  EXPECT_EQ(key_bits((std::uint64_t(1) << 32) + 1), 33);
  EXPECT_EQ(key_bits(~std::uint64_t(0)), 64);
  auto size_of = [](std::uint64_t n, std::uint64_t n_out) {
    return with_index_type(n, n_out, [](auto u) { return sizeof(u); });
  };
  EXPECT_EQ(size_of(100, 100), 4u);
  EXPECT_EQ(size_of((std::uint64_t(1) << 32) - 1, std::uint64_t(1) << 32), 4u);
  EXPECT_EQ(size_of(std::uint64_t(1) << 32, 10), 8u);
  EXPECT_EQ(size_of(10, (std::uint64_t(1) << 32) + 1), 8u);
}
}  // namespace

// ------------------------------------------------------------------------------------------
// bincount, histogram and embedding bags: the emulated pipeline against the reference (or,
// where the reference has no such op - max positions, max backward, counts - against the CPU
// op, which scatter_test checks against the reference).
// ------------------------------------------------------------------------------------------

const std::vector<launch_shape> kFewShapes = {{1, 32}, {3, 128}, {7, 256}, {64, 256}};

TEST(CudaScatterEmulation, Bincount) {
  for (dist d : kDists)
    for (std::size_t n : {std::size_t(0), std::size_t(1), std::size_t(4097), std::size_t(3 * 4096 + 5)})
      for (tier t : {tier::fixed_order, tier::exact}) {
        const std::size_t n_bins = 300;
        const auto idx = make_indices<std::int64_t>(d, n, n_bins, n + 3);
        const auto w = make_values<float>(n, n + 4, t == tier::exact);
        std::vector<float> want(n_bins);
        reference::segment_reduce(want.data(), n_bins, idx.data(), w.data(), n, scatter_op::sum, t == tier::exact);
        std::vector<std::int64_t> want_counts(n_bins, 0);
        for (std::size_t i = 0; i < n; ++i) ++want_counts[static_cast<std::size_t>(idx[i])];
        for (const launch_shape& s : kFewShapes) {
          std::vector<float> got(n_bins, 42.0f);
          cuda::emulate::bincount(got.data(), n_bins, idx.data(), w.data(), n, t, s);
          ASSERT_TRUE(same_bits(want, got)) << where(d, n, 1, s, block_order::shuffled);
          std::vector<std::int64_t> counts(n_bins, -1);
          cuda::emulate::bincount(counts.data(), n_bins, idx.data(), n, s);
          ASSERT_EQ(want_counts, counts) << where(d, n, 1, s, block_order::shuffled);
        }
      }
  std::vector<std::int64_t> idx = {0, 3, 2}, counts(3);
  EXPECT_THROW(cuda::emulate::bincount(counts.data(), 3, idx.data(), 3, {1, 32}), index_error);
  std::vector<float> out(3);
  EXPECT_THROW(cuda::emulate::bincount(out.data(), 4, idx.data(), static_cast<const float*>(nullptr), 3, tier::exact,
                                       {1, 32}),
               std::invalid_argument);
}

template <class A>
void check_histogram() {
  for (std::size_t n : {std::size_t(0), std::size_t(1), std::size_t(4097), std::size_t(3 * 4096 + 5)})
    for (tier t : {tier::fixed_order, tier::exact})
      for (bool weighted : {false, true}) {
        rng r{n * 7 + 1};
        std::vector<A> x(n);
        for (auto& v : x) {
          const std::uint64_t k = r.next() % 100;
          v = k == 0 ? std::numeric_limits<A>::quiet_NaN() : k == 1 ? A(0.75) : k == 2 ? A(-0.5) : A(r.unit() * 1.5 - 0.6);
        }
        const auto w = make_values<A>(n, n + 9, t == tier::exact);
        const A* wp = weighted ? w.data() : nullptr;
        std::vector<A> want(33);
        reference::histogram(want.data(), 33, A(-0.5), A(0.75), x.data(), wp, n, t == tier::exact);
        for (const launch_shape& s : kFewShapes) {
          std::vector<A> got(33, A(7));
          cuda::emulate::histogram(got.data(), 33, A(-0.5), A(0.75), x.data(), wp, n, t, s);
          ASSERT_TRUE(same_bits(want, got)) << "n=" << n << " weighted " << weighted << " shape " << s.grid << "x" << s.block;
        }
      }
  std::vector<A> out(4), x = {A(1)};
  EXPECT_THROW(cuda::emulate::histogram(out.data(), 4, A(1), A(1), x.data(), static_cast<const A*>(nullptr), 1,
                                        tier::fixed_order, {1, 32}),
               std::invalid_argument);
  EXPECT_THROW(cuda::emulate::histogram(out.data(), 0, A(0), A(1), x.data(), static_cast<const A*>(nullptr), 1,
                                        tier::fixed_order, {1, 32}),
               std::invalid_argument);
}
TEST(CudaScatterEmulation, HistogramFloat) { check_histogram<float>(); }
TEST(CudaScatterEmulation, HistogramDouble) { check_histogram<double>(); }

struct bag_problem {
  std::size_t n_rows, width, n_indices, n_bags;
};
const bag_problem kBagProblems[] = {{7, 3, 0, 4},       {7, 3, 1, 1},        {50, 1, 4097, 9},
                                    {300, 5, 3 * 4096 + 5, 40}, {20, 64, 13000, 8}, {5000, 2, 20000, 700}};

template <class A, class I, class Tab = A>
void check_embedding_bag(bag_mode mode, bool weighted, tier t) {
  for (const bag_problem& p : kBagProblems) {
    const std::uint64_t seed = p.n_indices * 13 + p.width + static_cast<std::uint64_t>(mode) * 5 + (weighted ? 1 : 0);
    const auto indices = make_indices<I>(dist::zipf, p.n_indices, p.n_rows, seed);
    const auto offsets = make_offsets<I>(p.n_indices, p.n_bags, seed + 1);
    const auto table = make_values<Tab>(p.n_rows * p.width, seed + 2, t == tier::exact || mode == bag_mode::max);
    const auto w = make_values<A>(p.n_indices, seed + 3, false);
    const A* wp = weighted ? w.data() : nullptr;
    std::vector<A> want(p.n_bags * p.width);
    reference::embedding_bag(want.data(), table.data(), p.width, indices.data(), p.n_indices, offsets.data(), p.n_bags,
                             mode, wp, t == tier::exact);
    for (const launch_shape& s : kFewShapes) {
      std::vector<A> got(want.size(), A(5));
      cuda::emulate::embedding_bag(got.data(), table.data(), p.n_rows, p.width, indices.data(), p.n_indices,
                                   offsets.data(), p.n_bags, mode, wp, t, s);
      ASSERT_TRUE(same_bits(want, got)) << "n_indices " << p.n_indices << " width " << p.width << " mode "
                                        << static_cast<int>(mode) << " weighted " << weighted << " shape " << s.grid
                                        << "x" << s.block;
    }
  }
}
TEST(CudaScatterEmulation, EmbeddingBagForward) {
  for (tier t : {tier::fixed_order, tier::exact}) {
    check_embedding_bag<float, std::int64_t>(bag_mode::sum, false, t);
    check_embedding_bag<float, std::int64_t>(bag_mode::sum, true, t);
    check_embedding_bag<double, std::int32_t>(bag_mode::sum, true, t);
    check_embedding_bag<float, std::int32_t>(bag_mode::mean, false, t);
    check_embedding_bag<double, std::int64_t>(bag_mode::mean, false, t);
  }
  check_embedding_bag<float, std::int64_t>(bag_mode::max, false, tier::fixed_order);
  check_embedding_bag<double, std::int32_t>(bag_mode::max, false, tier::fixed_order);
}
TEST(CudaScatterEmulation, EmbeddingBagForwardBf16Table) {
  for (tier t : {tier::fixed_order, tier::exact}) {
    check_embedding_bag<float, std::int64_t, bfloat16>(bag_mode::sum, false, t);
    check_embedding_bag<float, std::int32_t, bfloat16>(bag_mode::sum, true, t);
    check_embedding_bag<float, std::int64_t, bfloat16>(bag_mode::mean, false, t);
  }
  check_embedding_bag<float, std::int64_t, bfloat16>(bag_mode::max, false, tier::fixed_order);
  // max positions on a bfloat16 table: those of the CPU op
  const bag_problem p = kBagProblems[3];
  const auto indices = make_indices<std::int64_t>(dist::zipf, p.n_indices, p.n_rows, 5);
  const auto offsets = make_offsets<std::int64_t>(p.n_indices, p.n_bags, 6);
  const auto table = make_values<bfloat16>(p.n_rows * p.width, 7, false);
  std::vector<float> want(p.n_bags * p.width), got(want.size());
  std::vector<std::int64_t> want_pos(want.size()), got_pos(want.size());
  bitexact::embedding_bag_max(want.data(), want_pos.data(), table.data(), p.n_rows, p.width, indices.data(), p.n_indices,
                              offsets.data(), p.n_bags);
  for (const launch_shape& s : kFewShapes) {
    cuda::emulate::embedding_bag_max(got.data(), got_pos.data(), table.data(), p.n_rows, p.width, indices.data(),
                                     p.n_indices, offsets.data(), p.n_bags, s);
    ASSERT_TRUE(same_bits(want, got));
    ASSERT_EQ(want_pos, got_pos);
  }
}

template <class A, class I>
void check_embedding_bag_backward(bag_mode mode, bool weighted, tier t) {
  for (const bag_problem& p : kBagProblems) {
    const std::uint64_t seed = p.n_indices * 17 + p.width + static_cast<std::uint64_t>(mode) * 3 + (weighted ? 1 : 0);
    const auto indices = make_indices<I>(dist::zipf, p.n_indices, p.n_rows, seed);
    const auto offsets = make_offsets<I>(p.n_indices, p.n_bags, seed + 1);
    const auto grad_out = make_values<A>(p.n_bags * p.width, seed + 2, t == tier::exact);
    const auto w = make_values<A>(p.n_indices, seed + 3, false);
    const A* wp = weighted ? w.data() : nullptr;
    const auto table0 = make_out<A>(p.n_rows * p.width, seed + 4);
    std::vector<A> want = table0;
    reference::embedding_bag_backward(want.data(), p.n_rows, p.width, grad_out.data(), indices.data(), p.n_indices,
                                      offsets.data(), p.n_bags, mode, wp, t == tier::exact);
    for (const launch_shape& s : kFewShapes) {
      std::vector<A> got = table0;
      cuda::emulate::embedding_bag_backward(got.data(), p.n_rows, p.width, grad_out.data(), indices.data(), p.n_indices,
                                            offsets.data(), p.n_bags, mode, wp, t, s);
      ASSERT_TRUE(same_bits(want, got)) << "n_indices " << p.n_indices << " width " << p.width << " mode "
                                        << static_cast<int>(mode) << " weighted " << weighted << " shape " << s.grid
                                        << "x" << s.block;
    }
  }
}
TEST(CudaScatterEmulation, EmbeddingBagBackward) {
  for (tier t : {tier::fixed_order, tier::exact}) {
    check_embedding_bag_backward<float, std::int64_t>(bag_mode::sum, false, t);
    check_embedding_bag_backward<float, std::int32_t>(bag_mode::sum, true, t);
    check_embedding_bag_backward<double, std::int64_t>(bag_mode::mean, false, t);
  }
}

// Max mode: the positions and the max backward against the CPU ops (bitexact::embedding_bag_max
// and embedding_bag_max_backward), with ties, -0/+0 and NaNs in the table.
template <class A>
void check_embedding_bag_max_round_trip(tier t) {
  for (const bag_problem& p : kBagProblems) {
    const std::uint64_t seed = p.n_indices * 19 + p.width;
    const auto indices = make_indices<std::int64_t>(dist::zipf, p.n_indices, p.n_rows, seed);
    const auto offsets = make_offsets<std::int64_t>(p.n_indices, p.n_bags, seed + 1);
    auto table = make_values<A>(p.n_rows * p.width, seed + 2, true);
    for (std::size_t k = 0; k < table.size(); k += 3) table[k] = A(k % 2 ? 0.5 : -0.0);  // ties
    std::vector<A> want(p.n_bags * p.width), got(want.size());
    std::vector<std::int64_t> want_pos(want.size()), got_pos(want.size(), 99);
    bitexact::embedding_bag_max(want.data(), want_pos.data(), table.data(), p.n_rows, p.width, indices.data(),
                                p.n_indices, offsets.data(), p.n_bags, execution{2});
    const auto grad_out = make_values<A>(want.size(), seed + 3, t == tier::exact);
    const auto table0 = make_out<A>(table.size(), seed + 4);
    std::vector<A> want_grad = table0;
    bitexact::embedding_bag_max_backward(want_grad.data(), p.n_rows, p.width, grad_out.data(), indices.data(),
                                         p.n_indices, want_pos.data(), p.n_bags, t, execution{2});
    for (const launch_shape& s : kFewShapes) {
      cuda::emulate::embedding_bag_max(got.data(), got_pos.data(), table.data(), p.n_rows, p.width, indices.data(),
                                       p.n_indices, offsets.data(), p.n_bags, s);
      ASSERT_TRUE(same_bits(want, got)) << "n_indices " << p.n_indices;
      ASSERT_EQ(want_pos, got_pos) << "n_indices " << p.n_indices;
      std::vector<A> grad = table0;
      cuda::emulate::embedding_bag_max_backward(grad.data(), p.n_rows, p.width, grad_out.data(), indices.data(),
                                                p.n_indices, got_pos.data(), p.n_bags, t, s);
      ASSERT_TRUE(same_bits(want_grad, grad)) << "n_indices " << p.n_indices << " shape " << s.grid << "x" << s.block;
    }
  }
}
TEST(CudaScatterEmulation, EmbeddingBagMaxFloat) {
  check_embedding_bag_max_round_trip<float>(tier::fixed_order);
  check_embedding_bag_max_round_trip<float>(tier::exact);
}
TEST(CudaScatterEmulation, EmbeddingBagMaxDouble) { check_embedding_bag_max_round_trip<double>(tier::exact); }

// Bad input: the first bad index wins over bad offsets (as on the CPU), nothing is written.
TEST(CudaScatterEmulation, EmbeddingBagBadInput) {
  const std::size_t n_rows = 10, width = 3, n = 9000, n_bags = 5;
  auto indices = make_indices<std::int64_t>(dist::uniform, n, n_rows, 1);
  auto offsets = make_offsets<std::int64_t>(n, n_bags, 2);
  const auto table = make_values<float>(n_rows * width, 3, false);
  const std::vector<float> out0(n_bags * width, 3.0f);
  for (const launch_shape& s : kFewShapes) {
    std::vector<std::int64_t> bad = indices;
    bad[8000] = -2;
    bad[4500] = static_cast<std::int64_t>(n_rows);
    std::vector<std::int64_t> bad_offsets = offsets;
    bad_offsets[3] = bad_offsets[2] - 1;
    std::vector<float> out = out0;
    try {
      cuda::emulate::embedding_bag(out.data(), table.data(), n_rows, width, bad.data(), n, bad_offsets.data(), n_bags,
                                   bag_mode::sum, static_cast<const float*>(nullptr), tier::exact, s);
      FAIL() << "no index_error";
    } catch (const index_error& e) {
      EXPECT_EQ(e.position(), 4500u);
    }
    EXPECT_TRUE(same_bits(out0, out));
    try {
      cuda::emulate::embedding_bag(out.data(), table.data(), n_rows, width, indices.data(), n, bad_offsets.data(), n_bags,
                                   bag_mode::sum, static_cast<const float*>(nullptr), tier::exact, s);
      FAIL() << "no invalid_argument";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("bad offset at bag 3"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(same_bits(out0, out));
    std::vector<float> grad = out0;
    EXPECT_THROW(cuda::emulate::embedding_bag_backward(grad.data(), n_bags, width, table.data(), indices.data(), n,
                                                       offsets.data(), n_bags, bag_mode::sum,
                                                       static_cast<const float*>(nullptr), tier::fixed_order, s),
                 index_error);  // indices < 10 but the "table" has 5 rows here
    EXPECT_TRUE(same_bits(out0, grad));
    EXPECT_THROW(cuda::emulate::embedding_bag(out.data(), table.data(), n_rows, width, indices.data(), n, offsets.data(),
                                              0, bag_mode::sum, static_cast<const float*>(nullptr), tier::exact, s),
                 std::invalid_argument);  // indices without bags
    EXPECT_THROW(cuda::emulate::embedding_bag(out.data(), table.data(), n_rows, width, indices.data(), n, offsets.data(),
                                              n_bags, bag_mode::max, table.data(), tier::fixed_order, s),
                 std::invalid_argument);  // weights with max
    // max backward: a recorded position outside [-1, n) and one whose index is bad
    std::vector<std::int64_t> pos(n_bags * width, -1);
    pos[4] = 17;
    pos[7] = static_cast<std::int64_t>(n);
    std::vector<float> g(n_rows * width, 1.0f), g0 = g;
    const std::vector<float> go(n_bags * width, 2.0f);
    try {
      cuda::emulate::embedding_bag_max_backward(g.data(), n_rows, width, go.data(), indices.data(), n, pos.data(),
                                                n_bags, tier::fixed_order, s);
      FAIL() << "no invalid_argument";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("max position out of range at 7"), std::string::npos) << e.what();
    }
    pos[7] = -1;
    std::vector<std::int64_t> bad_idx = indices;
    bad_idx[17] = 99;
    try {
      cuda::emulate::embedding_bag_max_backward(g.data(), n_rows, width, go.data(), bad_idx.data(), n, pos.data(),
                                                n_bags, tier::exact, s);
      FAIL() << "no index_error";
    } catch (const index_error& e) {
      EXPECT_EQ(e.position(), 17u);
      EXPECT_EQ(e.index(), 99);
    }
    EXPECT_TRUE(same_bits(g0, g));
  }
}
