// tests/thrust_scatter_test.cpp - the Thrust formulation of the CUDA index_add pipeline
// (cuda/scatter_thrust.hpp), built by a plain C++ compiler for Thrust's CPP system (sequential)
// and OMP system (OpenMP threads; THRUST_DEVICE_SYSTEM is set by CMake), must equal the scalar
// reference bit for bit: index_add 1-D and rows, both tiers, float/double/bfloat16 sources,
// int32/int64 indices, the index distributions of the emulation test; a bad index throws
// index_error with the lowest bad position before anything is written.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <thrust/version.h>
#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_OMP
#include <omp.h>
#endif

#include "bitexact/core/bfloat16.hpp"
#include "bitexact/cuda/scatter_thrust.hpp"
#include "bitexact/reference/scatter.hpp"
#include "scatter_test_data.hpp"

// One suite name per device system, so that CTest sees distinct tests for the two binaries.
#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_OMP
#define THRUST_SCATTER_SUITE ThrustScatterOmp
#else
#define THRUST_SCATTER_SUITE ThrustScatterCpp
#endif

namespace {

using namespace bitexact;
using namespace bitexact::scatter_test_data;
// (Names under bitexact::cuda are qualified: CCCL brings a global ::cuda namespace.)

#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_OMP
// Several OpenMP threads even on a small machine, so that the passes really run in parallel.
const int kOmpThreads = [] {
  omp_set_num_threads(4);
  return 4;
}();
#endif

template <class T, class I>
void check(dist d, std::size_t n, std::size_t n_out, std::size_t width, tier t) {
  using A = core::accumulation_t<T>;
  const std::uint64_t seed = n * 7919 + n_out * 17 + width * 3 + static_cast<std::uint64_t>(d);
  const std::vector<I> idx = make_indices<I>(d, n, n_out, seed);
  const std::vector<T> src = make_values<T>(n * width, seed + 1, t == tier::exact);
  const std::vector<A> out0 = make_out<A>(n_out * width, seed + 2);
  std::vector<A> want = out0, got = out0;
  if (width == 1 && t == tier::exact)
    reference::index_add_exact<T, A, I>(want.data(), n_out, idx.data(), src.data(), n);
  else if (width == 1)
    reference::index_add_fixed_order<T, A, I>(want.data(), n_out, idx.data(), src.data(), n);
  else
    reference::index_add_rows<T, A, I>(want.data(), n_out, width, idx.data(), src.data(), n, t == tier::exact);
  if (width == 1)
    bitexact::cuda::thrust_path::index_add(got.data(), n_out, idx.data(), src.data(), n, t);
  else
    bitexact::cuda::thrust_path::index_add_rows(got.data(), n_out, width, idx.data(), src.data(), n, t);
  ASSERT_TRUE(same_bits(want, got)) << name(d) << " n=" << n << " n_out=" << n_out << " width=" << width
                                    << " exact=" << (t == tier::exact);
}

const std::size_t kSizes[] = {0, 1, 4095, 4097, 3 * 4096 + 5, 100003};

template <class T, class I>
void check_1d(tier t) {
  for (dist d : kDists)
    for (std::size_t n : kSizes)
      for (std::size_t n_out : {std::size_t(1), std::size_t(7), std::size_t(1000), std::size_t(70001)}) {
        if (n_out > 1000 && n < 4000) continue;
        check<T, I>(d, n, n_out, 1, t);
      }
}

TEST(THRUST_SCATTER_SUITE, System) {
  // Says which system this binary exercises (the CMake target sets it).
#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_OMP
  std::printf("Thrust %d.%d.%d, device system OMP, %d threads\n", THRUST_MAJOR_VERSION, THRUST_MINOR_VERSION,
              THRUST_SUBMINOR_VERSION, omp_get_max_threads());
  EXPECT_EQ(omp_get_max_threads(), kOmpThreads);
#elif THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CPP
  std::printf("Thrust %d.%d.%d, device system CPP\n", THRUST_MAJOR_VERSION, THRUST_MINOR_VERSION, THRUST_SUBMINOR_VERSION);
#else
  GTEST_FAIL() << "expected the CPP or OMP device system";
#endif
}

TEST(THRUST_SCATTER_SUITE, IndexAddFixedOrderFloatInt64) { check_1d<float, std::int64_t>(tier::fixed_order); }
TEST(THRUST_SCATTER_SUITE, IndexAddFixedOrderDoubleInt32) { check_1d<double, std::int32_t>(tier::fixed_order); }
TEST(THRUST_SCATTER_SUITE, IndexAddFixedOrderBf16Int32) { check_1d<bfloat16, std::int32_t>(tier::fixed_order); }
TEST(THRUST_SCATTER_SUITE, IndexAddExactFloatInt64) { check_1d<float, std::int64_t>(tier::exact); }
TEST(THRUST_SCATTER_SUITE, IndexAddExactDoubleInt32) { check_1d<double, std::int32_t>(tier::exact); }

TEST(THRUST_SCATTER_SUITE, IndexAddRows) {
  for (dist d : kDists)
    for (std::size_t n : {std::size_t(1), std::size_t(4097), std::size_t(3 * 4096 + 5)})
      for (std::size_t width : {std::size_t(3), std::size_t(16)}) {
        check<float, std::int64_t>(d, n, 50, width, tier::fixed_order);
        check<double, std::int32_t>(d, n, 50, width, tier::fixed_order);
        check<bfloat16, std::int64_t>(d, n, 50, width, tier::fixed_order);
        check<float, std::int32_t>(d, n, 50, width, tier::exact);
        check<double, std::int64_t>(d, n, 50, width, tier::exact);
      }
}

const scatter_op kOps[] = {scatter_op::sum, scatter_op::prod, scatter_op::mean, scatter_op::max, scatter_op::min};

template <class A, class I>
void check_scatter_reduce(dist d, std::size_t n, std::size_t n_out, scatter_op op, bool include_self, tier t) {
  const std::uint64_t seed = n * 313 + n_out * 7 + static_cast<std::uint64_t>(d) * 3 + static_cast<std::uint64_t>(op);
  const std::vector<I> idx = make_indices<I>(d, n, n_out, seed);
  std::vector<A> src = make_values<A>(n, seed + 1, t == tier::exact);
  if (op == scatter_op::prod)
    for (auto& x : src) x = A(1) + x / A(1 << 21);
  const std::vector<A> out0 = make_out<A>(n_out, seed + 2);
  std::vector<A> want = out0, got = out0;
  reference::scatter_reduce<A, I>(want.data(), n_out, idx.data(), src.data(), n, op, include_self, t == tier::exact);
  bitexact::cuda::thrust_path::scatter_reduce(got.data(), n_out, idx.data(), src.data(), n, op, include_self, t);
  ASSERT_TRUE(same_bits(want, got)) << name(d) << " n=" << n << " op " << static_cast<int>(op) << " self "
                                    << include_self << " exact " << (t == tier::exact);
}

TEST(THRUST_SCATTER_SUITE, ScatterReduce) {
  for (dist d : kDists)
    for (std::size_t n : {std::size_t(1), std::size_t(4097), std::size_t(40009)})
      for (scatter_op op : kOps)
        for (bool self : {false, true})
          for (tier t : {tier::fixed_order, tier::exact}) {
            if (t == tier::exact && op == scatter_op::prod) continue;
            check_scatter_reduce<float, std::int32_t>(d, n, 300, op, self, t);
            check_scatter_reduce<double, std::int64_t>(d, n, 300, op, self, t);
          }
  std::vector<double> out(2, 1.0), src(2, 1.0);
  std::vector<std::int64_t> idx = {0, 1};
  EXPECT_THROW(bitexact::cuda::thrust_path::scatter_reduce(out.data(), 2, idx.data(), src.data(), 2, scatter_op::prod,
                                                           true, tier::exact),
               std::invalid_argument);
}

template <class D, class I>
void check_segment_reduce(dist d, std::size_t n, std::size_t segs, scatter_op op, tier t) {
  using A = core::accumulation_t<D>;
  const std::uint64_t seed = n * 733 + segs * 5 + static_cast<std::uint64_t>(d) * 11 + static_cast<std::uint64_t>(op);
  const std::vector<I> ids = make_indices<I>(d, n, segs, seed);
  std::vector<D> data = make_values<D>(n, seed + 1, t == tier::exact);
  if constexpr (!std::is_same<D, bfloat16>::value)
    if (op == scatter_op::prod)
      for (auto& x : data) x = D(1) + x / D(1 << 21);
  std::vector<A> want(segs, A(7)), got(segs, A(7));
  reference::segment_reduce<A, I, D>(want.data(), segs, ids.data(), data.data(), n, op, t == tier::exact);
  bitexact::cuda::thrust_path::segment_reduce(got.data(), segs, ids.data(), data.data(), n, op, t);
  ASSERT_TRUE(same_bits(want, got)) << name(d) << " n=" << n << " op " << static_cast<int>(op) << " exact "
                                    << (t == tier::exact);
}

TEST(THRUST_SCATTER_SUITE, SegmentReduce) {
  for (dist d : kDists)
    for (std::size_t n : {std::size_t(0), std::size_t(1), std::size_t(4097), std::size_t(3 * 4096 + 5)})
      for (scatter_op op : kOps)
        for (tier t : {tier::fixed_order, tier::exact}) {
          if (t == tier::exact && op == scatter_op::prod) continue;
          check_segment_reduce<float, std::int64_t>(d, n, 200, op, t);
          check_segment_reduce<double, std::int32_t>(d, n, 200, op, t);
          if (op != scatter_op::prod) check_segment_reduce<bfloat16, std::int32_t>(d, n, 200, op, t);
        }
}

// Heavy targets (more than 4096 contributions) with finite data, so the merged digits decide
// every bit (no NaN/Inf short cut); under OMP the digit atomics run concurrently.
template <class A>
void check_heavy_finite(std::size_t width) {
  const std::size_t n = 100003, n_out = 5;
  const std::vector<std::int64_t> idx = make_indices<std::int64_t>(dist::zipf, n, n_out, 3 + width);
  std::vector<A> src = make_values<A>(n * width, 4 + width, false);
  for (std::size_t i = 0; i < src.size(); i += 97) src[i] = std::numeric_limits<A>::denorm_min();
  for (std::size_t i = 1; i < src.size(); i += 89) src[i] = -src[i - 1];
  const std::vector<A> out0 = make_out<A>(n_out * width, 5);
  std::vector<A> want = out0, got = out0;
  reference::index_add_rows<A, A, std::int64_t>(want.data(), n_out, width, idx.data(), src.data(), n, true);
  bitexact::cuda::thrust_path::index_add_rows(got.data(), n_out, width, idx.data(), src.data(), n, tier::exact);
  ASSERT_TRUE(same_bits(want, got)) << "width " << width;
}
TEST(THRUST_SCATTER_SUITE, ExactHeavyTargetsFinite) {
  check_heavy_finite<float>(1);
  check_heavy_finite<float>(4);
  check_heavy_finite<double>(1);
  check_heavy_finite<double>(3);
}

TEST(THRUST_SCATTER_SUITE, BadIndexThrowsBeforeWriting) {
  const std::size_t n = 3 * 4096 + 5, n_out = 10;
  std::vector<std::int32_t> idx = make_indices<std::int32_t>(dist::uniform, n, n_out, 5);
  idx[9000] = -3;
  idx[4100] = 10;
  const std::vector<float> src = make_values<float>(n, 6, false);
  const std::vector<float> out0 = make_out<float>(n_out, 7);
  for (tier t : {tier::fixed_order, tier::exact}) {
    std::vector<float> out = out0;
    try {
      bitexact::cuda::thrust_path::index_add(out.data(), n_out, idx.data(), src.data(), n, t);
      FAIL() << "no index_error";
    } catch (const index_error& e) {
      EXPECT_EQ(e.position(), 4100u);
      EXPECT_EQ(e.index(), 10);
      EXPECT_EQ(e.bound(), n_out);
    }
    ASSERT_TRUE(same_bits(out0, out));
  }
}

}  // namespace
