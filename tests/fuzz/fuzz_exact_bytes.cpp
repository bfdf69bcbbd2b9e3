// libFuzzer: exact_accumulator::from_bytes on arbitrary bytes. It accepts exactly what to_bytes
// can write (then to_bytes gives the same bytes back and round() does not crash or trip the
// sanitizers), and refuses anything else leaving the accumulator unchanged.
#include <vector>

#include <bitexact/core/exact.hpp>

#include "fuzz_input.hpp"

template <class T>
void run(const unsigned char* data, std::size_t size) {
  using acc_t = bitexact::core::exact_accumulator<T>;
  acc_t a;
  a.add(T(1.5));
  std::vector<unsigned char> before(acc_t::serialized_size), after(acc_t::serialized_size);
  a.to_bytes(before.data());
  if (!a.from_bytes(data, size)) {
    a.to_bytes(after.data());
    FUZZ_CHECK(before == after);  // refused: unchanged
    return;
  }
  a.to_bytes(after.data());
  FUZZ_CHECK(size == acc_t::serialized_size);
  FUZZ_CHECK(std::memcmp(after.data(), data, size) == 0);  // accepted: normalized bytes round-trip
  const T r = a.round();
  (void)r;
  acc_t b;
  b.merge(a);
  b.merge(a);  // twice the value: may overflow to Inf, never UB
  (void)b.round();
}

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  if (size == 0) return 0;
  // The first byte picks the type; the rest is the candidate serialization, with the header
  // forced valid half of the time so the fuzzer reaches the digits.
  std::vector<unsigned char> b(data + 1, data + size);
  const bool fix_header = data[0] & 2;
  if (data[0] & 1) {
    if (fix_header && b.size() >= 8) {
      const unsigned char h[8] = {'B', 'X', 'A', '1', 8, 1, 0, 0};
      std::memcpy(b.data(), h, 8);
    }
    run<double>(b.data(), b.size());
  } else {
    if (fix_header && b.size() >= 8) {
      const unsigned char h[8] = {'B', 'X', 'A', '1', 4, 1, 0, 0};
      std::memcpy(b.data(), h, 8);
    }
    run<float>(b.data(), b.size());
  }
  return 0;
}
