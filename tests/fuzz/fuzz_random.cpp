// libFuzzer: random slices at any (key, first, count), near the end of the counter space too.
// A slice past 2^64 words throws std::out_of_range with the output untouched; any other slice
// equals the reference (reference/random.hpp) on every thread count and ISA, and a slice of a
// slice is the same words.
#include <algorithm>
#include <stdexcept>
#include <vector>

#include <bitexact/random.hpp>
#include <bitexact/reference/random.hpp>

#include "fuzz_input.hpp"

using namespace bitexact;

template <class Gen, class T, class Fast, class Ref>
void check(const stream<Gen>& s, std::uint64_t first, std::size_t n, int threads, isa i, Fast fast, Ref ref) {
  std::vector<T> got(n + 1, T(7)), want(n + 1, T(7));
  bool threw = false;
  try {
    fast(s, first, got.data(), n, execution{threads, i});
  } catch (const std::out_of_range&) {
    threw = true;
  }
  if (threw) {
    for (const T& v : got) FUZZ_CHECK(v == T(7));
    return;
  }
  ref(s, first, want.data(), n);
  FUZZ_CHECK(std::memcmp(got.data(), want.data(), (n + 1) * sizeof(T)) == 0);
}

template <class Gen>
void run(fuzz::input& in, typename Gen::key_type key) {
  const stream<Gen> s(key);
  const std::uint8_t mode = in.take<std::uint8_t>();
  std::uint64_t first = in.take<std::uint64_t>();
  if (mode & 1) first = ~std::uint64_t(0) - (first & 0xffff);  // near the counter limit
  const std::size_t n = in.take<std::uint16_t>() % 3000;
  const int threads = 1 + in.take<std::uint8_t>() % 8;
  const auto isas = usable_isas();
  const isa i = isas[in.take<std::uint8_t>() % isas.size()];
  switch ((mode >> 1) % 4) {
    case 0:
      check<Gen, std::uint32_t>(s, first, n, threads, i,
                                [](auto& st, auto f, auto* o, auto k, auto e) { generate(st, f, o, k, e); },
                                [](auto& st, auto f, auto* o, auto k) { reference::generate_words(st, f, o, k); });
      break;
    case 1:
      check<Gen, float>(s, first, n, threads, i,
                        [](auto& st, auto f, auto* o, auto k, auto e) { generate_uniform(st, f, o, k, e); },
                        [](auto& st, auto f, auto* o, auto k) { reference::generate_uniform(st, f, o, k); });
      break;
    case 2:
      check<Gen, double>(s, first, n, threads, i,
                         [](auto& st, auto f, auto* o, auto k, auto e) { generate_normal(st, f, o, k, e); },
                         [](auto& st, auto f, auto* o, auto k) { reference::generate_normal(st, f, o, k); });
      break;
    default:
      check<Gen, float>(s, first, n, threads, i,
                        [](auto& st, auto f, auto* o, auto k, auto e) { generate_normal(st, f, o, k, e); },
                        [](auto& st, auto f, auto* o, auto k) { reference::generate_normal(st, f, o, k); });
  }
}

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  fuzz::input in{data, size};
  cpu::detail::set_min_work_per_thread(64);  // split small slices over the threads
  switch (in.take<std::uint8_t>() % 3) {
    case 0: {
      philox4x32_10::key_type k{{in.take<std::uint32_t>(), in.take<std::uint32_t>()}};
      run<philox4x32_10>(in, k);
      break;
    }
    case 1: {
      threefry4x64_20::key_type k{{in.take<std::uint64_t>(), in.take<std::uint64_t>(), in.take<std::uint64_t>(),
                                   in.take<std::uint64_t>()}};
      run<threefry4x64_20>(in, k);
      break;
    }
    default: {
      threefry2x32_20::key_type k{{in.take<std::uint32_t>(), in.take<std::uint32_t>()}};
      run<threefry2x32_20>(in, k);
    }
  }
  return 0;
}
