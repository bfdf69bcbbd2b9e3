// A reader of fuzzer bytes: takes integers and floats from the front, zeros once exhausted.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <cstdio>

namespace fuzz {

struct input {
  const unsigned char* p;
  std::size_t n;
  template <class T>
  T take() {
    T v{};
    const std::size_t k = n < sizeof(T) ? n : sizeof(T);
    if (k) std::memcpy(&v, p, k);
    p += k;
    n -= k;
    return v;
  }
  std::size_t left() const { return n; }
};

/// A failed property: print and abort, so libFuzzer saves the input as a crash.
[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "fuzz property failed: %s\n", what);
  std::abort();
}
#define FUZZ_CHECK(c) \
  do {                \
    if (!(c)) ::fuzz::fail(#c); \
  } while (0)

}  // namespace fuzz
