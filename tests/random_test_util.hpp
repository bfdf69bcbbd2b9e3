// Shared helpers of the tests (golden hashes, bit comparison, test data).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <bitexact/cpu/threads.hpp>

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

template <class T>
bool same_bits(const std::vector<T>& a, const T* b, std::size_t n) {
  return a.size() == n && (n == 0 || std::memcmp(a.data(), b, n * sizeof(T)) == 0);
}

/// Lowers every family's per-thread grain to one value (the documented test hook) while it
/// lives, and records which thread splits the parallel regions ran since it was made: a matrix
/// over threads {2, 3, 4, 7, 8} proves with it that the work was really split.
struct split_probe {
  explicit split_probe(bool lower_grain = true) {
    if (lower_grain) ::bitexact::cpu::detail::set_min_work_per_thread(1);
    ::bitexact::cpu::detail::split_seen().store(0);
  }
  ~split_probe() { ::bitexact::cpu::detail::set_min_work_per_thread(0); }
  split_probe(const split_probe&) = delete;
  split_probe& operator=(const split_probe&) = delete;
  /// Whether some parallel region ran on exactly t threads.
  bool saw(int t) const { return t <= 1 || ((::bitexact::cpu::detail::split_seen().load() >> t) & 1u) != 0; }
  /// The widest region since the probe was made (1: none ran in parallel).
  int widest() const {
    const std::uint64_t m = ::bitexact::cpu::detail::split_seen().load();
    int w = 1;
    for (int k = 2; k < 64; ++k)
      if ((m >> k) & 1u) w = k;
    return w;
  }
};

}  // namespace bitexact_test
