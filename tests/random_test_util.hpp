// Shared helpers of the tests (golden hashes, bit comparison, test data).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace bitexact_test {

/// 64-bit FNV-1a over the bytes of a buffer: the golden-hash function of the tests.
inline std::uint64_t fnv1a64(const void* p, std::size_t bytes) {
  const unsigned char* b = static_cast<const unsigned char*>(p);
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (std::size_t i = 0; i < bytes; ++i) {
    h ^= b[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

/// A deterministic generator for test data (splitmix64): the same values on every platform.
struct splitmix {
  std::uint64_t s;
  std::uint64_t operator()() {
    std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  /// Uniform on [0, 1) with 53 bits.
  double uniform() { return static_cast<double>((*this)() >> 11) * 0x1p-53; }
};

/// The thread counts of the large invariance matrices: 1, 2, 3, 4, 7 and 8 (serial, even and odd
/// splits with remainders, more threads than this machine's cores). The sanitizer build of .ci/run
/// defines BITEXACT_TEST_SANITIZER_SIZES and runs 1, 3 and 8 only: the same three kinds of split
/// (serial, uneven, over-subscribed) at half the cost. The Release run has them all.
#ifdef BITEXACT_TEST_SANITIZER_SIZES
inline constexpr int matrix_threads[] = {1, 3, 8};
#else
inline constexpr int matrix_threads[] = {1, 2, 3, 4, 7, 8};
#endif

template <class T>
bool same_bits(const std::vector<T>& a, const T* b, std::size_t n) {
  return a.size() == n && (n == 0 || std::memcmp(a.data(), b, n * sizeof(T)) == 0);
}

}  // namespace bitexact_test
