// tests/cuda_emulation_test.cpp - the CUDA random kernels, run by the CPU emulation of a launch
// (cuda/launch.hpp), must equal the scalar reference (reference/random.hpp) bit for bit for
// every generator, distribution, launch shape, size and starting index.
//
// This proves the *algorithm* of the kernels (which thread computes which block, how a
// non-aligned first and a tail are handled) for many grid shapes; the device compilation is
// proven by tests/cuda_compile_check.cu. Nothing here runs on a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "bitexact/cuda/launch.hpp"
#include "bitexact/cuda/random_kernels.hpp"
#include "bitexact/reference/random.hpp"

namespace {

using namespace bitexact;
using bitexact::cuda::launch_shape;
using bitexact::cuda::thread_index;

const launch_shape kShapes[] = {{1, 1}, {1, 32}, {3, 7}, {13, 64}, {80, 256}, {1000, 1}};
const std::size_t kSizes[] = {0, 1, 2, 3, 5, 31, 32, 33, 1023, 4097};
const std::uint64_t kFirsts[] = {0, 1, 3, 5, (1ull << 32) - 1, (1ull << 40) + 3};

// Sentinel-filled outputs: the emulated kernel must write every element and nothing else.
template <class T>
std::vector<T> sentinel(std::size_t n) {
  std::vector<T> v(n + 2);
  std::memset(v.data(), 0xA5, v.size() * sizeof(T));
  return v;
}

template <class T>
::testing::AssertionResult same_bits(const std::vector<T>& want, const std::vector<T>& got,
                                     std::size_t n) {
  // `got` has one guard element on each side (it is written from got.data() + 1).
  std::vector<T> guard = sentinel<T>(0);
  if (std::memcmp(&got[0], &guard[0], sizeof(T)) != 0 ||
      std::memcmp(&got[n + 1], &guard[1], sizeof(T)) != 0)
    return ::testing::AssertionFailure() << "wrote outside [0, n)";
  for (std::size_t i = 0; i < n; ++i) {
    if (std::memcmp(&want[i], &got[i + 1], sizeof(T)) != 0)
      return ::testing::AssertionFailure() << "first mismatch at index " << i << " of " << n;
  }
  return ::testing::AssertionSuccess();
}

std::string where(const launch_shape& sh, std::size_t n, std::uint64_t first) {
  return "shape " + std::to_string(sh.grid) + "x" + std::to_string(sh.block) + ", n " +
         std::to_string(n) + ", first " + std::to_string(first);
}

// For every size and first: compute the reference once, then the emulated kernel for every
// launch shape, and compare bits. `ref(first, out, n)` and `body(ti, first, out, n)`.
template <class T, class Ref, class Body>
void check_matrix(Ref ref, Body body) {
  for (const std::size_t n : kSizes) {
    for (const std::uint64_t first : kFirsts) {
      std::vector<T> want(n + 1);
      ref(first, want.data(), n);
      for (const launch_shape& sh : kShapes) {
        std::vector<T> got = sentinel<T>(n);
        T* out = got.data() + 1;
        cuda::emulate_launch(sh, [&](const thread_index& ti) { body(ti, first, out, n); });
        ASSERT_TRUE(same_bits(want, got, n)) << where(sh, n, first);
      }
    }
  }
}

template <class Gen>
class CudaEmulation : public ::testing::Test {
 protected:
  stream<Gen> s = stream<Gen>::from_seed(0x0123456789ABCDEFull, 7, 3, tag_of("cuda.emulation"));
};

using Generators = ::testing::Types<philox4x32_10, philox4x64_10, threefry2x32_20, threefry4x32_20,
                                    threefry4x64_20>;
TYPED_TEST_SUITE(CudaEmulation, Generators);

TYPED_TEST(CudaEmulation, Words) {
  const auto s = this->s;
  check_matrix<std::uint32_t>(
      [&](std::uint64_t f, std::uint32_t* o, std::size_t n) { reference::generate_words(s, f, o, n); },
      [&](const thread_index& ti, std::uint64_t f, std::uint32_t* o, std::size_t n) {
        cuda::words_body(ti, s, f, o, n);
      });
}

TYPED_TEST(CudaEmulation, UniformFloat) {
  const auto s = this->s;
  check_matrix<float>(
      [&](std::uint64_t f, float* o, std::size_t n) { reference::generate_uniform(s, f, o, n); },
      [&](const thread_index& ti, std::uint64_t f, float* o, std::size_t n) {
        cuda::uniform_float_body(ti, s, f, o, n);
      });
}

TYPED_TEST(CudaEmulation, UniformDouble) {
  const auto s = this->s;
  check_matrix<double>(
      [&](std::uint64_t f, double* o, std::size_t n) { reference::generate_uniform(s, f, o, n); },
      [&](const thread_index& ti, std::uint64_t f, double* o, std::size_t n) {
        cuda::uniform_double_body(ti, s, f, o, n);
      });
}

TYPED_TEST(CudaEmulation, NormalFloat) {
  const auto s = this->s;
  check_matrix<float>(
      [&](std::uint64_t f, float* o, std::size_t n) { reference::generate_normal(s, f, o, n); },
      [&](const thread_index& ti, std::uint64_t f, float* o, std::size_t n) {
        cuda::normal_float_body(ti, s, f, o, n);
      });
}

TYPED_TEST(CudaEmulation, NormalDouble) {
  const auto s = this->s;
  check_matrix<double>(
      [&](std::uint64_t f, double* o, std::size_t n) { reference::generate_normal(s, f, o, n); },
      [&](const thread_index& ti, std::uint64_t f, double* o, std::size_t n) {
        cuda::normal_double_body(ti, s, f, o, n);
      });
}

TYPED_TEST(CudaEmulation, Bernoulli) {
  const auto s = this->s;
  for (const double p : {0.0, 1e-10, 0.3, 0.5, 1.0 - 1e-12, 1.0}) {
    SCOPED_TRACE("p = " + std::to_string(p));
    const std::uint64_t t = core::bernoulli_threshold(p);
    check_matrix<std::uint8_t>(
        [&](std::uint64_t f, std::uint8_t* o, std::size_t n) {
          reference::generate_bernoulli(s, f, o, n, p);
        },
        [&](const thread_index& ti, std::uint64_t f, std::uint8_t* o, std::size_t n) {
          cuda::bernoulli_body(ti, s, f, o, n, t);
        });
  }
}

TYPED_TEST(CudaEmulation, UniformInt32) {
  const auto s = this->s;
  // 2^31 + 1 rejects about half of the attempts, so the retry path runs a lot.
  for (const std::uint32_t bound : {1u, 10u, 1000003u, 0x80000001u, 0xFFFFFFFFu}) {
    SCOPED_TRACE("bound = " + std::to_string(bound));
    check_matrix<std::uint32_t>(
        [&](std::uint64_t f, std::uint32_t* o, std::size_t n) {
          reference::generate_uniform_int(s, f, o, n, bound);
        },
        [&](const thread_index& ti, std::uint64_t f, std::uint32_t* o, std::size_t n) {
          cuda::uniform_int32_body(ti, s, f, o, n, bound);
        });
  }
}

TYPED_TEST(CudaEmulation, UniformInt64) {
  const auto s = this->s;
  const std::uint64_t bounds[] = {1, 1000, (1ull << 32) + 1, (1ull << 63) + 1, ~0ull};
  for (const std::uint64_t bound : bounds) {
    SCOPED_TRACE("bound = " + std::to_string(bound));
    check_matrix<std::uint64_t>(
        [&](std::uint64_t f, std::uint64_t* o, std::size_t n) {
          reference::generate_uniform_int(s, f, o, n, bound);
        },
        [&](const thread_index& ti, std::uint64_t f, std::uint64_t* o, std::size_t n) {
          cuda::uniform_int64_body(ti, s, f, o, n, bound);
        });
  }
}

// The last values of the counter space (the launchers' range check allows exactly these).
TYPED_TEST(CudaEmulation, EndOfCounterSpace) {
  const auto s = this->s;
  const std::uint64_t top = ~0ull;
  for (const launch_shape& sh : kShapes) {
    SCOPED_TRACE(where(sh, 0, 0));
    {
      const std::size_t n = 11;
      const std::uint64_t first = top - (n - 1);
      std::vector<std::uint32_t> want(n + 1), got = sentinel<std::uint32_t>(n);
      reference::generate_words(s, first, want.data(), n);
      cuda::emulate_launch(sh, [&](const thread_index& ti) { cuda::words_body(ti, s, first, got.data() + 1, n); });
      EXPECT_TRUE(same_bits(want, got, n));
      std::vector<float> wantf(n + 1), gotf = sentinel<float>(n);
      reference::generate_normal(s, first, wantf.data(), n);
      cuda::emulate_launch(sh, [&](const thread_index& ti) { cuda::normal_float_body(ti, s, first, gotf.data() + 1, n); });
      EXPECT_TRUE(same_bits(wantf, gotf, n));
    }
    {
      const std::size_t n = 9;
      const std::uint64_t first = (top >> 1) - (n - 1);
      std::vector<double> want(n + 1), got = sentinel<double>(n);
      reference::generate_uniform(s, first, want.data(), n);
      cuda::emulate_launch(sh, [&](const thread_index& ti) { cuda::uniform_double_body(ti, s, first, got.data() + 1, n); });
      EXPECT_TRUE(same_bits(want, got, n));
      reference::generate_normal(s, first, want.data(), n);
      got = sentinel<double>(n);
      cuda::emulate_launch(sh, [&](const thread_index& ti) { cuda::normal_double_body(ti, s, first, got.data() + 1, n); });
      EXPECT_TRUE(same_bits(want, got, n));
    }
  }
}

// Block order must not matter: forward, reverse and shuffled give the same bits.
TYPED_TEST(CudaEmulation, BlockOrderIndependence) {
  const auto s = this->s;
  const std::size_t n = 1000;
  const std::uint64_t first = 3;
  std::vector<double> want(n + 1);
  reference::generate_normal(s, first, want.data(), n);
  for (const auto order : {cuda::block_order::forward, cuda::block_order::reverse,
                           cuda::block_order::shuffled}) {
    std::vector<double> got = sentinel<double>(n);
    cuda::emulate_launch(
        launch_shape{7, 5},
        [&](const thread_index& ti) { cuda::normal_double_body(ti, s, first, got.data() + 1, n); }, order);
    EXPECT_TRUE(same_bits(want, got, n));
  }
}

TEST(CudaEmulationPermutation, MatchesReference) {
  const philox4x32_10::key_type key = derive_key<philox4x32_10>(42, 0, 0, tag_of("shuffle"));
  for (const std::uint64_t size : {1ull, 2ull, 3ull, 10ull, 1000ull, 65537ull}) {
    const core::feistel_permutation p(size, key);
    // The whole permutation, and a slice that starts off zero and ends before the size.
    const std::uint64_t firsts[] = {0, size / 3};
    for (const std::uint64_t first : firsts) {
      const std::size_t n = static_cast<std::size_t>(first == 0 ? size : size - first - size / 5);
      std::vector<std::uint64_t> want(n + 1);
      reference::generate_permutation(p, first, want.data(), n);
      for (const launch_shape& sh : kShapes) {
        std::vector<std::uint64_t> got = sentinel<std::uint64_t>(n);
        cuda::emulate_launch(sh, [&](const thread_index& ti) {
          cuda::permutation_body(ti, p, first, got.data() + 1, n);
        });
        ASSERT_TRUE(same_bits(want, got, n)) << "size " << size << ", " << where(sh, n, first);
      }
      if (first == 0) {  // and it is a permutation
        std::vector<char> seen(n, 0);
        for (std::size_t i = 0; i < n; ++i) {
          ASSERT_LT(want[i], size);
          ASSERT_FALSE(seen[want[i]]);
          seen[want[i]] = 1;
        }
      }
    }
  }
}

TEST(CudaEmulationLaunch, VisitsEveryThreadOnce) {
  for (const launch_shape& sh : kShapes) {
    std::vector<int> hits(static_cast<std::size_t>(sh.grid) * sh.block, 0);
    cuda::emulate_launch(sh, [&](const thread_index& ti) {
      EXPECT_EQ(ti.grid_dim, sh.grid);
      EXPECT_EQ(ti.block_dim, sh.block);
      ++hits[ti.global()];
    });
    for (int h : hits) EXPECT_EQ(h, 1);
  }
}

TEST(CudaEmulationLaunch, ResolveShape) {
  using cuda::resolve_shape;
  const launch_shape a = resolve_shape({}, 108, 1ull << 40);
  EXPECT_EQ(a.grid, 432u);
  EXPECT_EQ(a.block, 256u);
  const launch_shape b = resolve_shape({}, 108, 1000);  // clamped to the blocks with work
  EXPECT_EQ(b.grid, 4u);
  EXPECT_EQ(b.block, 256u);
  const launch_shape c = resolve_shape({3, 7}, 108, 1ull << 40);
  EXPECT_EQ(c.grid, 3u);
  EXPECT_EQ(c.block, 7u);
  EXPECT_THROW(resolve_shape({1, 1025}, 108, 10), std::invalid_argument);
}

TEST(CudaEmulationValidation, Arguments) {
  float dummy = 0;
  EXPECT_FALSE(cuda::validate_range("x", nullptr, 0, 0, 0));  // n == 0: no-op, even with null
  EXPECT_THROW(cuda::validate_range("x", nullptr, 0, 1, 0), std::invalid_argument);
  EXPECT_TRUE(cuda::validate_range("x", &dummy, 0, 1, 0));
  // 1 word per value: the last value is 2^64 - 1.
  EXPECT_TRUE(cuda::validate_range("x", &dummy, ~0ull, 1, 0));
  EXPECT_TRUE(cuda::validate_range("x", &dummy, ~0ull - 9, 10, 0));
  EXPECT_THROW(cuda::validate_range("x", &dummy, ~0ull - 8, 10, 0), std::out_of_range);
  EXPECT_THROW(cuda::validate_range("x", &dummy, ~0ull, 2, 0), std::out_of_range);
  // 2 words per value: the last value is 2^63 - 1.
  EXPECT_TRUE(cuda::validate_range("x", &dummy, (~0ull >> 1) - 9, 10, 1));
  EXPECT_THROW(cuda::validate_range("x", &dummy, (~0ull >> 1) - 8, 10, 1), std::out_of_range);
  EXPECT_THROW(cuda::validate_range("x", &dummy, 1ull << 63, 1, 1), std::out_of_range);

  EXPECT_NO_THROW(cuda::validate_probability("x", 0.0));
  EXPECT_NO_THROW(cuda::validate_probability("x", 1.0));
  EXPECT_THROW(cuda::validate_probability("x", -1e-300), std::invalid_argument);
  EXPECT_THROW(cuda::validate_probability("x", 1.0000000000000002), std::invalid_argument);
  EXPECT_THROW(cuda::validate_probability("x", std::nan("")), std::invalid_argument);
  EXPECT_THROW(cuda::validate_bound("x", 0u), std::invalid_argument);
  EXPECT_THROW(cuda::validate_bound("x", std::uint64_t{0}), std::invalid_argument);
  EXPECT_NO_THROW(cuda::validate_bound("x", 1u));

  const core::feistel_permutation p(10, {1, 2});
  std::uint64_t o = 0;
  EXPECT_FALSE(cuda::validate_permutation("x", p, 0, nullptr, 0));
  EXPECT_THROW(cuda::validate_permutation("x", p, 0, nullptr, 1), std::invalid_argument);
  EXPECT_TRUE(cuda::validate_permutation("x", p, 4, &o, 6));
  EXPECT_THROW(cuda::validate_permutation("x", p, 4, &o, 7), std::out_of_range);
  EXPECT_THROW(cuda::validate_permutation("x", p, 11, &o, 1), std::out_of_range);
}

}  // namespace
