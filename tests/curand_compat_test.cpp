// tests/curand_compat_test.cpp - bitexact::curand_compat against libcurand (CUDA 13).
//
// Oracles:
//  * the host generator: curandCreateGeneratorHost(CURAND_RNG_PSEUDO_PHILOX4_32_10) runs on the
//    CPU, so the reference bulk functions are compared with it bit for bit;
//  * cuRAND's device functions: curand_kernel.h marks them QUALIFIERS = static __forceinline__
//    __device__, but QUALIFIERS is only defined when not already defined, and the Philox code
//    has a host branch for its only intrinsic (mulhilo32 via NV_IF_ELSE_TARGET). Defining
//    QUALIFIERS as `static inline` before the include lets g++ compile NVIDIA's own
//    curand_init / curand / curand4 / curand_uniform{,4,_double,2_double} / skipahead as host
//    code, which we then run here. On a GPU the same source differs only in __umulhi (same
//    value) and in FMA contraction of the float/double conversions, which cannot change the
//    result (the products are exact: see the header and the FmaInvariance test).
// Build (by hand for now):
//   g++ -std=c++17 -O2 -ffp-contract=off -Iinclude -I/usr/local/cuda/include
//       tests/curand_compat_test.cpp -L/usr/local/cuda/lib64 -lcurand -lgtest -lgtest_main
//       -pthread -Wl,-rpath,/usr/local/cuda/lib64
#define QUALIFIERS static inline
#include <curand.h>
#include <curand_kernel.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bitexact/core/curand_philox.hpp"
#include "bitexact/curand_compat.hpp"

namespace cc = bitexact::curand_compat;

namespace {

constexpr std::uint64_t kR = cc::host_round;  // 262144

// Element 0 of a fresh host generator with seed 0, offset 0 (observed from libcurand); the
// whole derivation is constexpr.
static_assert(cc::detail::host_word(cc::detail::host_key(0), 0, 0) == 0x6627e8d5u, "");
static_assert(cc::detail::host_word(cc::detail::host_key(0), 0, 4) == 0x844515e1u, "");

#define CURAND_CHECK(x) ASSERT_EQ((x), CURAND_STATUS_SUCCESS) << #x

std::vector<std::uint64_t> test_seeds() {
  std::vector<std::uint64_t> s = {0,
                                  1,
                                  2,
                                  42,
                                  1234,
                                  0xFFFFFFFFull,
                                  0x100000000ull,
                                  0x123456789ull,
                                  0xDEADBEEFCAFEull,
                                  (1ull << 40) + 3,
                                  0x8000000000000000ull,
                                  ~0ull};
  std::mt19937_64 rng(20240601);
  while (s.size() < 52) s.push_back(s.size() % 2 ? rng() : (rng() & 0xFFFFFFFFull));
  return s;
}

const std::vector<std::size_t> kLengths = {1, 2, 3, 4, 5, 7, 8, 63, 64, 65, 1000, 4097};

struct HostGen {
  curandGenerator_t g{};
  HostGen() {
    if (curandCreateGeneratorHost(&g, CURAND_RNG_PSEUDO_PHILOX4_32_10) != CURAND_STATUS_SUCCESS)
      throw std::runtime_error("curandCreateGeneratorHost failed");
  }
  ~HostGen() { curandDestroyGenerator(g); }
  // Seed and offset are set before every call, so each call sees a freshly seeded generator.
  void reset(std::uint64_t seed, std::uint64_t offset) {
    if (curandSetPseudoRandomGeneratorSeed(g, seed) != CURAND_STATUS_SUCCESS ||
        curandSetGeneratorOffset(g, offset) != CURAND_STATUS_SUCCESS)
      throw std::runtime_error("curand seed/offset failed");
  }
};

template <class T>
std::size_t first_mismatch(const std::vector<T>& a, const std::vector<T>& b) {
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(T)) != 0) return i;
  return a.size();
}

// Compares the three reference functions with libcurand for one (seed, offset, n).
void check_host(HostGen& hg, std::uint64_t seed, std::uint64_t offset, std::size_t n) {
  const std::string where = "seed=" + std::to_string(seed) + " offset=" + std::to_string(offset) +
                            " n=" + std::to_string(n);
  {
    std::vector<std::uint32_t> want(n), got(n);
    hg.reset(seed, offset);
    ASSERT_EQ(curandGenerate(hg.g, want.data(), n), CURAND_STATUS_SUCCESS) << where;
    cc::reference::generate(seed, offset, got.data(), n);
    ASSERT_EQ(first_mismatch(want, got), n) << "uint32 " << where;
  }
  {
    std::vector<float> want(n), got(n);
    hg.reset(seed, offset);
    ASSERT_EQ(curandGenerateUniform(hg.g, want.data(), n), CURAND_STATUS_SUCCESS) << where;
    cc::reference::generate_uniform(seed, offset, got.data(), n);
    ASSERT_EQ(first_mismatch(want, got), n) << "float " << where;
  }
  {
    std::vector<double> want(n), got(n);
    hg.reset(seed, offset);
    ASSERT_EQ(curandGenerateUniformDouble(hg.g, want.data(), n), CURAND_STATUS_SUCCESS) << where;
    cc::reference::generate_uniform_double(seed, offset, got.data(), n);
    ASSERT_EQ(first_mismatch(want, got), n) << "double " << where;
  }
}

// ---------------------------------------------------------------------------------------------
// Host generator API
// ---------------------------------------------------------------------------------------------

// Each libcurand host call costs ~5 ms whatever n is (it computes whole rounds), so the seeds
// are spread over threads, one generator each.
TEST(CurandHost, ManySeedsOffsetsLengths) {
  const std::vector<std::uint64_t> seeds = test_seeds();
  const std::uint64_t offsets[] = {0, 1, 3, 5, (1ull << 40) + 7};
  const unsigned nthreads = std::max(1u, std::min(8u, std::thread::hardware_concurrency()));
  std::atomic<std::size_t> next_seed{0};
  std::vector<std::thread> pool;
  for (unsigned w = 0; w < nthreads; ++w)
    pool.emplace_back([&] {
      HostGen hg;
      for (std::size_t k; (k = next_seed++) < seeds.size();)
        for (std::uint64_t off : offsets)
          for (std::size_t n : kLengths) {
            check_host(hg, seeds[k], off, n);
            if (HasFatalFailure()) return;
          }
    });
  for (auto& t : pool) t.join();
}

// Offsets around the round size (where the double layout's offset rule shows), near 2^64 (no
// wrap-around) and lengths that cross rounds.
TEST(CurandHost, RoundBoundariesAndExtremeOffsets) {
  HostGen hg;
  const std::uint64_t seeds[] = {0, 7, 0xDEADBEEFCAFEull, ~0ull};
  const std::uint64_t offsets[] = {2,       kR - 1,           kR,          kR + 1,
                                   kR + 5,  3 * kR + 4 * 1234 + 3, (1ull << 50) + 12345,
                                   ~0ull - 2, ~0ull - 2 * kR,    ~0ull};
  for (std::uint64_t seed : seeds)
    for (std::uint64_t off : offsets) {
      for (std::size_t n : {std::size_t{1}, std::size_t{5}, std::size_t{4097}}) {
        check_host(hg, seed, off, n);
        if (HasFatalFailure()) return;
      }
      check_host(hg, seed, off, 2 * kR + 12345);
      if (HasFatalFailure()) return;
    }
}

// The double layout: output i of the host generator is the pair of words of subsequence t at
// word position P, which is what curand_init(seed, t, P) + curand_uniform2_double returns.
// Likewise for uint32 (curand_init(seed, t, 4*block + lane) + curand).
TEST(CurandHost, AddressesMatchDeviceState) {
  std::mt19937_64 rng(7);
  for (int rep = 0; rep < 2000; ++rep) {
    const std::uint64_t seed = rng();
    const std::uint64_t off = rep % 3 == 0 ? rng() : rng() % (4 * kR);
    const std::uint64_t i = rng() % (3 * kR);
    const auto key = cc::detail::host_key(seed);
    {
      const auto a = cc::detail::host_u32_address(off, i);
      cc::philox4_32_10_state s{};
      cc::init(seed, a.subsequence, 4 * a.block + a.lane, &s);
      ASSERT_EQ(cc::next(&s), cc::detail::host_word(key, off, i));
    }
    {
      const auto a = cc::detail::host_double_address(off, i);
      ASSERT_TRUE(a.lane == 0 || a.lane == 2);
      cc::philox4_32_10_state s{};
      cc::init(seed, a.subsequence, 4 * a.block + a.lane, &s);
      const double d = cc::uniform2_double(&s)[0];
      const double h = cc::detail::host_uniform_double(key, off, i);
      ASSERT_EQ(std::memcmp(&d, &h, 8), 0);
    }
  }
}

TEST(CurandHost, NullPointer) {
  EXPECT_THROW(cc::reference::generate(1, 0, nullptr, 1), std::invalid_argument);
  EXPECT_THROW(cc::reference::generate_uniform(1, 0, nullptr, 3), std::invalid_argument);
  EXPECT_THROW(cc::reference::generate_uniform_double(1, 0, nullptr, 2), std::invalid_argument);
  EXPECT_NO_THROW(cc::reference::generate(1, 0, nullptr, 0));
  EXPECT_NO_THROW(cc::reference::generate_uniform(1, 0, nullptr, 0));
  EXPECT_NO_THROW(cc::reference::generate_uniform_double(1, 0, nullptr, 0));
  std::uint32_t x = 0xABCDu;
  cc::reference::generate(1, 0, &x, 0);  // n == 0 writes nothing
  EXPECT_EQ(x, 0xABCDu);
}

// ---------------------------------------------------------------------------------------------
// Device-side state vs cuRAND's device functions (compiled for the host, see top)
// ---------------------------------------------------------------------------------------------

void expect_same_state(const curandStatePhilox4_32_10_t& c, const cc::philox4_32_10_state& b) {
  EXPECT_EQ(c.ctr.x, b.ctr[0]);
  EXPECT_EQ(c.ctr.y, b.ctr[1]);
  EXPECT_EQ(c.ctr.z, b.ctr[2]);
  EXPECT_EQ(c.ctr.w, b.ctr[3]);
  EXPECT_EQ(c.output.x, b.output[0]);
  EXPECT_EQ(c.output.y, b.output[1]);
  EXPECT_EQ(c.output.z, b.output[2]);
  EXPECT_EQ(c.output.w, b.output[3]);
  EXPECT_EQ(c.key.x, b.key[0]);
  EXPECT_EQ(c.key.y, b.key[1]);
  EXPECT_EQ(c.STATE, b.lane);
}

template <class T>
bool same_bits(T a, T b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

std::uint64_t edgy(std::mt19937_64& rng) {
  // Values that hit the carry paths of Philox_State_Incr / _Incr_hi.
  switch (rng() % 8) {
    case 0: return 0;
    case 1: return ~0ull - (rng() % 8);
    case 2: return 0xFFFFFFFFull - (rng() % 8);
    case 3: return 0xFFFFFFFF00000000ull | (rng() % 16);
    case 4: return rng() % 64;
    case 5: return (rng() | 0xFFFFFFFF00000000ull);
    default: return rng();
  }
}

TEST(CurandDevice, InitMatches) {
  std::mt19937_64 rng(99);
  for (int rep = 0; rep < 20000; ++rep) {
    const std::uint64_t seed = edgy(rng), sub = edgy(rng), off = edgy(rng);
    curandStatePhilox4_32_10_t c;
    curand_init(seed, sub, off, &c);
    cc::philox4_32_10_state b{};
    cc::init(seed, sub, off, &b);
    expect_same_state(c, b);
    if (HasFailure()) {
      ADD_FAILURE() << "seed=" << seed << " sub=" << sub << " off=" << off;
      return;
    }
  }
}

// Random interleavings of every operation, including curand4 / curand_uniform4 after an odd
// number of curand calls (curand4 then returns words from two blocks) and skipaheads with
// carries. Outputs and the full state are compared after every step.
TEST(CurandDevice, RandomOperationSequences) {
  std::mt19937_64 rng(12345);
  for (int rep = 0; rep < 3000; ++rep) {
    const std::uint64_t seed = edgy(rng), sub = edgy(rng), off = edgy(rng);
    curandStatePhilox4_32_10_t c;
    curand_init(seed, sub, off, &c);
    cc::philox4_32_10_state b{};
    cc::init(seed, sub, off, &b);
    for (int step = 0; step < 40; ++step) {
      switch (rng() % 9) {
        case 0: case 1:
          ASSERT_EQ(curand(&c), cc::next(&b));
          break;
        case 2: {
          const uint4 x = curand4(&c);
          const auto y = cc::next4(&b);
          ASSERT_TRUE(x.x == y[0] && x.y == y[1] && x.z == y[2] && x.w == y[3]);
          break;
        }
        case 3:
          ASSERT_TRUE(same_bits(curand_uniform(&c), cc::uniform(&b)));
          break;
        case 4: {
          const float4 x = curand_uniform4(&c);
          const auto y = cc::uniform4(&b);
          ASSERT_TRUE(same_bits(x.x, y[0]) && same_bits(x.y, y[1]) && same_bits(x.z, y[2]) &&
                      same_bits(x.w, y[3]));
          break;
        }
        case 5:
          ASSERT_TRUE(same_bits(curand_uniform_double(&c), cc::uniform_double(&b)));
          break;
        case 6: {
          const double2 x = curand_uniform2_double(&c);
          const auto y = cc::uniform2_double(&b);
          ASSERT_TRUE(same_bits(x.x, y[0]) && same_bits(x.y, y[1]));
          break;
        }
        case 7: {
          const std::uint64_t n = rng() % 4 == 0 ? edgy(rng) : rng() % 11;
          skipahead(n, &c);
          cc::skipahead(n, &b);
          break;
        }
        default: {
          const std::uint64_t n = rng() % 4 == 0 ? edgy(rng) : rng() % 3;
          skipahead_sequence(n, &c);
          cc::skipahead_sequence(n, &b);
          break;
        }
      }
      expect_same_state(c, b);
      if (HasFailure()) return;
    }
  }
}

// Independent re-derivation from the documented algorithm: curand_init(seed, sub, off) then k
// calls of curand() return word (off + k) % 4 of block (off + k) / 4 of subsequence sub (for
// off + k and sub without 64-bit overflow, where Philox_State_Incr's carry quirk cannot show).
TEST(CurandDevice, StreamIsPhiloxBlocks) {
  std::mt19937_64 rng(5);
  for (int rep = 0; rep < 500; ++rep) {
    const std::uint64_t seed = rng(), sub = rng(), off = rng() >> 2;
    cc::philox4_32_10_state s{};
    cc::init(seed, sub, off, &s);
    for (std::uint64_t k = 0; k < 11; ++k) {
      const std::uint64_t p = off + k;
      const auto blk = bitexact::philox4x32_10{}(
          {static_cast<std::uint32_t>(p / 4), static_cast<std::uint32_t>(p / 4 >> 32),
           static_cast<std::uint32_t>(sub), static_cast<std::uint32_t>(sub >> 32)},
          {static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)});
      ASSERT_EQ(cc::next(&s), blk[p % 4]);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Conversions
// ---------------------------------------------------------------------------------------------

TEST(CurandConversions, KnownValues) {
  using cc::detail::to_uniform_double;
  using cc::detail::to_uniform_double_32;
  using cc::detail::to_uniform_float;
  EXPECT_EQ(to_uniform_float(0), 0x1p-33f);
  EXPECT_EQ(to_uniform_float(1), 0x1p-32f + 0x1p-33f);
  EXPECT_EQ(to_uniform_float(0xFFFFFFFFu), 1.0f);
  EXPECT_EQ(to_uniform_float(0xFFFFFFFFu - 127u), 1.0f);  // 2^32-128 ties to 2^32
  EXPECT_EQ(to_uniform_float(0xFFFFFFFFu - 128u), 1.0f - 0x1p-24f);
  EXPECT_EQ(to_uniform_double_32(0), 0x1p-32);
  EXPECT_EQ(to_uniform_double_32(0xFFFFFFFFu), 1.0);
  EXPECT_EQ(to_uniform_double(0, 0), 0x1p-54);
  EXPECT_EQ(to_uniform_double(0x001FFFFFu, 0xFFFFFFFFu), 1.0);  // z = 2^53 - 1 rounds up
  EXPECT_EQ(to_uniform_double(0x001FFFFEu, 0xFFFFFFFFu), 1.0 - 0x1p-52);  // tie to even
  EXPECT_EQ(to_uniform_double(1, 0), 3 * 0x1p-54);
  // cuRAND's own helpers (host-compiled).
  std::mt19937_64 rng(3);
  for (int i = 0; i < 100000; ++i) {
    const auto x = static_cast<std::uint32_t>(rng()), y = static_cast<std::uint32_t>(rng());
    ASSERT_TRUE(same_bits(_curand_uniform(x), to_uniform_float(x)));
    ASSERT_TRUE(same_bits(_curand_uniform_double(x), to_uniform_double_32(x)));
    ASSERT_TRUE(same_bits(_curand_uniform_double_hq(x, y), to_uniform_double(x, y)));
  }
}

// A GPU build contracts a*b+c into an FMA by default; show it cannot change any conversion
// (std::fma is correctly rounded). Exhaustive over the float conversion's distinct inputs
// would be 2^32; sample plus all edge words.
TEST(CurandConversions, FmaInvariance) {
  std::mt19937_64 rng(11);
  auto check = [](std::uint32_t x, std::uint32_t y) {
    const float f = std::fma(static_cast<float>(x), 0x1p-32f, 0x1p-33f);
    const double d32 = std::fma(static_cast<double>(x), 0x1p-32, 0x1p-32);
    const std::uint64_t z = static_cast<std::uint64_t>(x) ^ (static_cast<std::uint64_t>(y) << 21);
    const double dhq = std::fma(static_cast<double>(z), 0x1p-53, 0x1p-54);
    return same_bits(f, cc::detail::to_uniform_float(x)) &&
           same_bits(d32, cc::detail::to_uniform_double_32(x)) &&
           same_bits(dhq, cc::detail::to_uniform_double(x, y));
  };
  for (std::uint32_t e = 0; e < 4096; ++e) {
    ASSERT_TRUE(check(e, e));
    ASSERT_TRUE(check(0xFFFFFFFFu - e, 0xFFFFFFFFu - e));
    ASSERT_TRUE(check(0x80000000u + e - 2048u, 0x7FFFFFFFu + e));
  }
  for (int i = 0; i < 1000000; ++i)
    ASSERT_TRUE(check(static_cast<std::uint32_t>(rng()), static_cast<std::uint32_t>(rng())));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Public threaded bulk API (bitexact/curand_compat.hpp) against libcurand, for thread counts.
// ---------------------------------------------------------------------------------------------

TEST(CurandBulk, SimdThreadedCallsEqualLibcurand) {
  HostGen hg;
  for (std::uint64_t seed : {0ull, 1234ull, 0xDEADBEEFCAFEull}) {
    // offsets: a shift inside a round, a round and a bit, half a round (t0 = 32845 in the middle: the
    // double layout's block index steps there) and one word before a round ends
    for (std::uint64_t offset : {0ull, 3ull, 262147ull, 131383ull, 262143ull}) {
      for (std::size_t n : {0u, 1u, 5u, 70001u, 600011u}) {
        std::vector<std::uint32_t> wu(n), gu(n);
        std::vector<float> wf(n), gf(n);
        std::vector<double> wd(n), gd(n);
        hg.reset(seed, offset);
        if (n) {
          ASSERT_EQ(curandGenerate(hg.g, wu.data(), n), CURAND_STATUS_SUCCESS);
        }
        hg.reset(seed, offset);
        if (n) {
          ASSERT_EQ(curandGenerateUniform(hg.g, wf.data(), n), CURAND_STATUS_SUCCESS);
        }
        hg.reset(seed, offset);
        if (n) {
          ASSERT_EQ(curandGenerateUniformDouble(hg.g, wd.data(), n), CURAND_STATUS_SUCCESS);
        }
        for (int t : {1, 2, 3, 7})
          for (bitexact::isa simd : bitexact::usable_isas()) {
          const bitexact::execution e{t, simd};
          cc::generate(seed, offset, gu.data(), n, e);
          cc::generate_uniform(seed, offset, gf.data(), n, e);
          cc::generate_uniform_double(seed, offset, gd.data(), n, e);
          ASSERT_EQ(first_mismatch(wu, gu), n) << seed << " " << offset << " " << n << " t=" << t;
          ASSERT_EQ(first_mismatch(wf, gf), n) << seed << " " << offset << " " << n << " t=" << t;
          ASSERT_EQ(first_mismatch(wd, gd), n) << seed << " " << offset << " " << n << " t=" << t;
          std::fill(gu.begin(), gu.end(), 0u);
          std::fill(gf.begin(), gf.end(), 0.0f);
          std::fill(gd.begin(), gd.end(), 0.0);
        }
      }
    }
  }
  // The range kernels on one whole range (no chunk boundaries): the double layout's block index
  // steps at t0 inside a SIMD run, which the public calls' 8192-value chunks happen to avoid.
  for (std::uint64_t offset : {131383ull, 131380ull, 5ull}) {
    const std::size_t n = 600011;
    std::vector<double> want(n), got(n);
    std::vector<std::uint32_t> wantu(n), gotu(n);
    cc::reference::generate_uniform_double(99, offset, want.data(), n);
    cc::reference::generate(99, offset, wantu.data(), n);
    for (bitexact::isa simd : bitexact::usable_isas()) {
      bitexact::cpu::detail::with_arch(simd, [&](auto arch) {
        cc::detail_bulk::doubles_range(arch, cc::detail::host_key(99), offset, got.data(), 0, n);
        cc::detail_bulk::words_range(arch, cc::detail::host_key(99), offset, gotu.data(), 0, n,
                                     [](std::uint32_t w) { return w; });
      });
      ASSERT_EQ(first_mismatch(want, got), n) << offset << " " << bitexact::isa_name(simd);
      ASSERT_EQ(first_mismatch(wantu, gotu), n) << offset << " " << bitexact::isa_name(simd);
    }
  }
  EXPECT_THROW(cc::generate(1, 0, nullptr, 3), std::invalid_argument);
  EXPECT_THROW(cc::generate_uniform_double(1, 0, nullptr, 3), std::invalid_argument);
  EXPECT_NO_THROW(cc::generate_uniform(1, 0, nullptr, 0));
}
