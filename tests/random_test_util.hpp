// Shared helpers of the random-family tests.
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

template <class T>
bool same_bits(const std::vector<T>& a, const T* b, std::size_t n) {
  return a.size() == n && (n == 0 || std::memcmp(a.data(), b, n * sizeof(T)) == 0);
}

}  // namespace bitexact_test
