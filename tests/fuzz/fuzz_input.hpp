// A reader of fuzzer bytes: takes integers and floats from the front, zeros once exhausted.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <cstdio>
#include <stdexcept>
#include <vector>

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


/// The property every operation fuzzer checks on one buffer of `bytes` bytes at `base` (the
/// operands live inside it at fuzzer-chosen offsets): `op()` either throws std::invalid_argument
/// and leaves the buffer untouched, or leaves it exactly as `reference(rbase)` leaves a copy of
/// the buffer taken before the call (`rbase`: that copy, 8-byte aligned, operands at the same
/// offsets). `on_mismatch(rbase)` may print details first (it runs only on a mismatch).
template <class Op, class Reference, class OnMismatch>
void expect_untouched_or_reference(unsigned char* base, std::size_t bytes, Op op, Reference reference,
                                   OnMismatch on_mismatch) {
  const std::vector<unsigned char> before(base, base + bytes);
  bool threw = false;
  try {
    op();
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  if (threw) {
    FUZZ_CHECK(std::memcmp(base, before.data(), bytes) == 0);
    return;
  }
  std::vector<double> copy((bytes + sizeof(double) - 1) / sizeof(double));
  unsigned char* const rbase = reinterpret_cast<unsigned char*>(copy.data());
  std::memcpy(rbase, before.data(), bytes);
  reference(rbase);
  if (std::memcmp(base, rbase, bytes) != 0) on_mismatch(rbase);
  FUZZ_CHECK(std::memcmp(base, rbase, bytes) == 0);
}

}  // namespace fuzz
