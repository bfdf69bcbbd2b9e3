// tests/cuda_reduce_emulation_test.cpp - the CUDA sum/dot kernels (cuda/reduce_kernels.hpp), run
// by the CPU emulation of blocks, warps, shuffles, barriers and shared memory
// (cuda/block_emulation.hpp), must equal the scalar reference (reference/reduce.hpp) bit for
// bit, for both tiers, float/double/bfloat16, many launch shapes and block orders, and sizes
// across leaf boundaries. Nothing here runs on a GPU; device compilation is proven by
// tests/cuda_compile_check.cu.
//
// NaN: both tiers return the canonical quiet NaN (0x7fc00000 / 0x7ff8000000000000), compared
// bit for bit: a NaN with another payload or sign (x86 gives -NaN for Inf - Inf) fails.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "bitexact/cuda/reduce_emulation.hpp"
#include "bitexact/reference/reduce.hpp"

namespace {

using namespace bitexact;
using cuda::block_order;
using cuda::launch_shape;

template <class A>
std::uint64_t bits_of(A a) {
  std::uint64_t b = 0;
  std::memcpy(&b, &a, sizeof a);
  return b;
}

template <class A>
::testing::AssertionResult same(A want, A got, tier t) {
  (void)t;
  if (std::isnan(want) || std::isnan(got)) {  // NaN out is the canonical quiet NaN, bit for bit
    const A canonical = std::numeric_limits<A>::quiet_NaN();
    if (std::isnan(want) && bits_of(got) == bits_of(canonical)) return ::testing::AssertionSuccess();
    char msg[160];
    std::snprintf(msg, sizeof msg, "want the canonical NaN 0x%llx, got 0x%llx (reference 0x%llx)",
                  static_cast<unsigned long long>(bits_of(canonical)), static_cast<unsigned long long>(bits_of(got)),
                  static_cast<unsigned long long>(bits_of(want)));
    return ::testing::AssertionFailure() << msg;
  }
  if (bits_of(want) == bits_of(got)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << std::hexfloat << "want " << want << " (0x" << std::hex << bits_of(want)
                                       << "), got " << got << " (0x" << bits_of(got) << ")";
}

std::string where(const launch_shape& s, std::size_t n, tier t, block_order o) {
  return "shape " + std::to_string(s.grid) + "x" + std::to_string(s.block) + ", n " + std::to_string(n) +
         (t == tier::exact ? ", exact" : ", fixed_order") + ", order " + std::to_string(static_cast<int>(o));
}

// Values with widely varying magnitudes and signs, so that any change in the order of additions
// changes the rounded result (checked by DataIsOrderSensitive).
template <class T>
std::vector<T> random_data(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 g(seed);
  std::vector<T> v(n);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::uniform_int_distribution<int> e(-20, 20);
  for (auto& x : v) {
    const double d = std::ldexp(u(g), e(g));
    if constexpr (std::is_same<T, bfloat16>::value)
      x = bfloat16::from_float(static_cast<float>(d));
    else
      x = static_cast<T>(d);
  }
  return v;
}

template <class T>
T make(double d) {
  if constexpr (std::is_same<T, bfloat16>::value)
    return bfloat16::from_float(static_cast<float>(d));
  else
    return static_cast<T>(d);
}

// Inf, NaN, -0.0, denormals, huge values that cancel, in random positions.
template <class T>
std::vector<T> adversarial(std::size_t n, std::uint64_t seed, int kind) {
  using A = core::accumulation_t<T>;
  std::vector<T> v = random_data<T>(n, seed);
  if (n == 0) return v;
  std::mt19937_64 g(seed * 7 + 1);
  auto at = [&]() -> T& { return v[g() % n]; };
  const A big = std::numeric_limits<A>::max() / A(4);
  const A den = std::numeric_limits<A>::denorm_min();
  switch (kind) {
    case 0:  // all -0.0: sum must be -0.0
      for (auto& x : v) x = make<T>(-0.0);
      break;
    case 1:  // denormals only (bf16 has float's denormals)
      for (auto& x : v) x = make<T>(static_cast<double>(den) * static_cast<double>(1 + g() % 1000) * ((g() & 1) ? 1 : -1));
      break;
    case 2:  // catastrophic cancellation: +big ... -big with small values between
      for (std::size_t k = 0; k < 1 + n / 64; ++k) {
        at() = make<T>(static_cast<double>(big));
        at() = make<T>(-static_cast<double>(big));
      }
      break;
    case 3:  // +Inf
      at() = make<T>(std::numeric_limits<double>::infinity());
      break;
    case 4:  // +Inf and -Inf: NaN
      at() = make<T>(std::numeric_limits<double>::infinity());
      at() = make<T>(-std::numeric_limits<double>::infinity());
      break;
    case 5:  // NaN
      at() = make<T>(std::numeric_limits<double>::quiet_NaN());
      break;
    case 6:  // overflow of the exact sum: many values near the maximum
      for (std::size_t k = 0; k < 1 + n / 8; ++k) at() = make<T>(static_cast<double>(big));
      break;
  }
  return v;
}

const launch_shape kShapes[] = {{1, 32},  {1, 64},  {1, 256},  {1, 1024}, {3, 32},  {3, 64},
                                {3, 256}, {3, 1024}, {7, 32},  {7, 64},   {7, 256}, {7, 1024},
                                {64, 32}, {64, 64}, {64, 256}, {64, 1024}, {5, 96}, {2, 160},
                                // not multiples of 32: the trailing partial warp only meets barriers
                                {3, 33}, {2, 100}, {5, 1000}};
// 0, 1, primes, 2^k +- 1 around the float (4096) and double (2048) leaves and group sizes.
const std::size_t kSizes[] = {0,    1,    2,    3,    31,   33,   63,    64,    65,     2047,  2048,
                              2049, 4095, 4096, 4097, 7919, 8191, 8193,  65537, 131071, 131073, 262147};

template <class T>
void check_sum_dot(const std::vector<T>& x, const std::vector<T>& y, std::size_t n, const launch_shape& s,
                   block_order o) {
  for (tier t : {tier::fixed_order, tier::exact}) {
    const auto want_sum = t == tier::exact ? reference::sum_exact(x.data(), n) : reference::sum_fixed_order(x.data(), n);
    ASSERT_TRUE(same(want_sum, cuda::emulated_sum(x.data(), n, t, s, o), t)) << "sum, " << where(s, n, t, o);
    const auto want_dot = t == tier::exact ? reference::dot_exact(x.data(), y.data(), n)
                                           : reference::dot_fixed_order(x.data(), y.data(), n);
    ASSERT_TRUE(same(want_dot, cuda::emulated_dot(x.data(), y.data(), n, t, s, o), t)) << "dot, " << where(s, n, t, o);
  }
}

template <class T>
class CudaReduceEmulation : public ::testing::Test {};
using Types = ::testing::Types<float, double, bfloat16>;
TYPED_TEST_SUITE(CudaReduceEmulation, Types);

TYPED_TEST(CudaReduceEmulation, EqualsReferenceForShapesAndSizes) {
  using T = TypeParam;
  for (const std::size_t n : kSizes) {
    const auto x = random_data<T>(n, 1000 + n), y = random_data<T>(n, 2000 + n);
    for (const launch_shape& s : kShapes) check_sum_dot(x, y, n, s, block_order::shuffled);
  }
}

TYPED_TEST(CudaReduceEmulation, BlockOrderDoesNotMatter) {
  using T = TypeParam;
  const std::size_t n = 40009;
  const auto x = random_data<T>(n, 5), y = random_data<T>(n, 6);
  for (const launch_shape& s : {launch_shape{7, 64}, launch_shape{3, 256}})
    for (block_order o : {block_order::forward, block_order::reverse, block_order::shuffled}) check_sum_dot(x, y, n, s, o);
}

TYPED_TEST(CudaReduceEmulation, AboutAMillion) {
  using T = TypeParam;
  const std::size_t n = 1000003;
  const auto x = random_data<T>(n, 77), y = random_data<T>(n, 78);
  for (const launch_shape& s : {launch_shape{1, 32}, launch_shape{7, 256}, launch_shape{64, 1024}, launch_shape{3, 96}})
    check_sum_dot(x, y, n, s, block_order::shuffled);
}

TYPED_TEST(CudaReduceEmulation, AdversarialData) {
  using T = TypeParam;
  for (int kind = 0; kind < 7; ++kind) {
    for (const std::size_t n : {std::size_t{1}, std::size_t{65}, std::size_t{4097}, std::size_t{20011}}) {
      const auto x = adversarial<T>(n, 31 * n + kind, kind);
      const auto y = adversarial<T>(n, 17 * n + kind, (kind + 3) % 7);
      for (const launch_shape& s : {launch_shape{1, 32}, launch_shape{3, 64}, launch_shape{64, 256}})
        check_sum_dot(x, y, n, s, block_order::shuffled);
    }
  }
}

// Any aligned grouping of leaves gives the same bits: force group levels 0 .. 6, with blocks
// whose warp count exceeds the group size (idle warps) and is not a power of two.
TYPED_TEST(CudaReduceEmulation, GroupLevelDoesNotMatter) {
  using T = TypeParam;
  using A = core::accumulation_t<T>;
  const std::size_t n = 150001;
  const auto x = random_data<T>(n, 9);
  const A want = reference::sum_fixed_order(x.data(), n);
  for (int level = 0; level <= 6; ++level)
    for (const launch_shape& s : {launch_shape{3, 32}, launch_shape{5, 96}, launch_shape{2, 1024}, launch_shape{4, 130}})
      ASSERT_TRUE(same(want, cuda::emulated_reduce<A>(cuda::sum_values<T>{x.data()}, n, tier::fixed_order, s,
                                                      block_order::shuffled, level),
                       tier::fixed_order))
          << "level " << level << ", " << where(s, n, tier::fixed_order, block_order::shuffled);
}

// Pointers that are not aligned to the element size's multiples of 16 bytes (x + 1, x + 3).
TYPED_TEST(CudaReduceEmulation, UnalignedPointers) {
  using T = TypeParam;
  const std::size_t n = 20011;
  const auto x = random_data<T>(n + 3, 21), y = random_data<T>(n + 3, 22);
  for (std::size_t off : {std::size_t{1}, std::size_t{3}}) {
    const std::vector<T> xs(x.begin() + off, x.begin() + off + n), ys(y.begin() + off, y.begin() + off + n);
    for (tier t : {tier::fixed_order, tier::exact}) {
      const launch_shape s{7, 64};
      const auto want_sum = t == tier::exact ? reference::sum_exact(xs.data(), n) : reference::sum_fixed_order(xs.data(), n);
      ASSERT_TRUE(same(want_sum, cuda::emulated_sum(x.data() + off, n, t, s), t)) << "offset " << off;
      const auto want_dot = t == tier::exact ? reference::dot_exact(xs.data(), ys.data(), n)
                                             : reference::dot_fixed_order(xs.data(), ys.data(), n);
      ASSERT_TRUE(same(want_dot, cuda::emulated_dot(x.data() + off, y.data() + off, n, t, s), t)) << "offset " << off;
    }
  }
}

// The exact tier does not depend on the order of the inputs either.
TYPED_TEST(CudaReduceEmulation, ExactIgnoresInputOrder) {
  using T = TypeParam;
  const std::size_t n = 30011;
  auto x = adversarial<T>(n, 3, 2);
  const auto want = reference::sum_exact(x.data(), n);
  std::mt19937_64 g(4);
  std::shuffle(x.begin(), x.end(), g);
  ASSERT_TRUE(same(want, cuda::emulated_sum(x.data(), n, tier::exact, launch_shape{7, 64}), tier::exact));
}

// The NCCL algorithm (cuda/nccl.cuh): every simulated rank builds its exact state with the
// emulated kernels (its own launch shape), packs it; the packed states are added element-wise as
// int64 (what ncclAllReduce(ncclInt64, ncclSum) computes, in any order); unpacking and rounding
// gives the reference on the concatenated data, for 1 .. 5 ranks and uneven splits.
TYPED_TEST(CudaReduceEmulation, NcclPackedSumEqualsReference) {
  using T = TypeParam;
  using A = core::accumulation_t<T>;
  const launch_shape shapes[] = {{3, 64}, {1, 32}, {7, 256}, {2, 96}, {64, 32}};
  for (int kind = 0; kind < 7; ++kind) {
    const std::size_t n = 9001;
    const auto x = adversarial<T>(n, 11 + kind, kind), y = adversarial<T>(n, 13 + kind, (kind + 1) % 7);
    for (int dot = 0; dot < 2; ++dot) {
      const A want = dot ? reference::dot_exact(x.data(), y.data(), n) : reference::sum_exact(x.data(), n);
      for (std::size_t ranks = 1; ranks <= 5; ++ranks) {
        std::vector<std::int64_t> total(cuda::exact_packed<A>::words, 0);
        std::size_t begin = 0;
        for (std::size_t r = 0; r < ranks; ++r) {
          // uneven split: rank r gets (r * r) parts; rank 0 gets nothing when ranks > 1
          std::size_t weight_sum = 0;
          for (std::size_t k = 0; k < ranks; ++k) weight_sum += k * k + (ranks == 1);
          const std::size_t end = r + 1 == ranks ? n : begin + n * (r * r + (ranks == 1)) / weight_sum;
          const std::size_t m = end - begin;
          const auto state = dot ? cuda::emulated_exact_state<A>(cuda::dot_values<T>{x.data() + begin, y.data() + begin},
                                                                 m, shapes[r])
                                 : cuda::emulated_exact_state<A>(cuda::sum_values<T>{x.data() + begin}, m, shapes[r]);
          std::vector<std::int64_t> packed(cuda::exact_packed<A>::words);
          cuda::pack_exact_state<A>(state.data(), packed.data());
          for (std::size_t k = 0; k < packed.size(); ++k) total[k] += packed[k];
          begin = end;
        }
        std::vector<std::int64_t> state(cuda::exact_state<A>::words);
        cuda::unpack_exact_state<A>(total.data(), state.data());
        ASSERT_TRUE(same(want, cuda::exact_from_state<A>(state.data()).round(), tier::exact))
            << "kind " << kind << ", dot " << dot << ", ranks " << ranks;
      }
    }
  }
}

// The tests above could fail: the data makes the fixed order observable (a plain left-to-right
// loop, and the fixed order over the reversed data, round differently), and the exact tier
// differs from the fixed order.
TEST(CudaReduceEmulationSanity, DataIsOrderSensitive) {
  const std::size_t n = 131073;
  const auto x = random_data<float>(n, 1000 + n);
  float naive = 0;
  for (float v : x) naive += v;
  const float fixed = reference::sum_fixed_order(x.data(), n);
  std::vector<float> rev(x.rbegin(), x.rend());
  EXPECT_NE(bits_of(naive), bits_of(fixed));
  EXPECT_NE(bits_of(reference::sum_fixed_order(rev.data(), n)), bits_of(fixed));
  const auto c = adversarial<float>(n, 3, 2);  // cancellation: the fixed order loses digits
  EXPECT_NE(bits_of(reference::sum_exact(c.data(), n)), bits_of(reference::sum_fixed_order(c.data(), n)));
}

TEST(CudaReduceEmulationSanity, RejectsBadShapes) {
  const float x[4] = {1, 2, 3, 4};
  for (const launch_shape& s : {launch_shape{1, 0}, launch_shape{1, 16}, launch_shape{1, 31}, launch_shape{1, 1025},
                                launch_shape{0, 32}})
    EXPECT_THROW(cuda::emulated_sum(x, 4, tier::fixed_order, s), std::invalid_argument);
}

// The emulator itself reports what a GPU would turn into a hang or undefined behaviour.
TEST(BlockEmulation, DetectsBarrierDivergence) {
  struct none {};
  EXPECT_THROW(cuda::emulate_block_launch<none>(launch_shape{1, 64},
                                                [](const cuda::emulated_block_context& ctx,
                                                   const cuda::thread_index& ti, none&) {
                                                  if (ti.thread_idx < 32) ctx.sync();
                                                }),
               std::logic_error);
}

TEST(BlockEmulation, DetectsShuffleDivergence) {
  struct none {};
  EXPECT_THROW(cuda::emulate_block_launch<none>(launch_shape{1, 32},
                                                [](const cuda::emulated_block_context& ctx,
                                                   const cuda::thread_index& ti, none&) {
                                                  if (ti.thread_idx < 16) (void)ctx.shfl_down(1.0f, 1);
                                                }),
               std::logic_error);
}

// An exception in a body reaches the caller (after other threads already waited at a barrier).
TEST(BlockEmulation, BodyExceptionReachesCaller) {
  struct none {};
  EXPECT_THROW(cuda::emulate_block_launch<none>(launch_shape{2, 64},
                                                [](const cuda::emulated_block_context& ctx,
                                                   const cuda::thread_index& ti, none&) {
                                                  if (ti.thread_idx == 5) throw std::runtime_error("boom");
                                                  ctx.sync();
                                                }),
               std::runtime_error);
  // The cached emulator still works afterwards.
  std::vector<int> seen(64, 0);
  cuda::emulate_block_launch<none>(launch_shape{1, 64},
                                   [&](const cuda::emulated_block_context& ctx, const cuda::thread_index& ti, none&) {
                                     ctx.sync();
                                     seen[ti.thread_idx] = 1;
                                   });
  EXPECT_EQ(std::vector<int>(64, 1), seen);
}

// Barriers and shuffles have CUDA semantics: values written before a barrier are visible after
// it, and shfl_down reads lane + delta (own value past the end).
TEST(BlockEmulation, BarrierAndShuffleSemantics) {
  struct sh {
    int v[128];
  };
  std::vector<int> got(128 * 2, -1);
  cuda::emulate_block_launch<sh>(launch_shape{2, 128},
                                 [&](const cuda::emulated_block_context& ctx, const cuda::thread_index& ti, sh& s) {
                                   s.v[ti.thread_idx] = static_cast<int>(ti.thread_idx);
                                   ctx.sync();
                                   const int mirrored = s.v[127 - ti.thread_idx];
                                   const int down = ctx.shfl_down(mirrored, 3);
                                   got[ti.global()] = down;
                                 });
  for (unsigned b = 0; b < 2; ++b)
    for (unsigned t = 0; t < 128; ++t) {
      const unsigned lane = t % 32;
      const unsigned src = lane + 3 < 32 ? t + 3 : t;
      EXPECT_EQ(got[b * 128 + t], static_cast<int>(127 - src)) << "block " << b << " thread " << t;
    }
}

}  // namespace
