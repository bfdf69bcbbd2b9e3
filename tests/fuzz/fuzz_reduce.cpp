// libFuzzer: reductions on arbitrary bytes read as floats, doubles or bfloat16 (NaN payloads,
// Inf, subnormals, -0.0 all appear): sum, dot, squared_norm, mean in both tiers, min/max and
// argmin/argmax, on a thread count and ISA taken from the input, equal the scalar reference;
// NaN results are the canonical quiet NaN.
#include <cmath>
#include <limits>
#include <vector>

#include <bitexact/minmax.hpp>
#include <bitexact/reduce.hpp>
#include <bitexact/reference/minmax.hpp>
#include <bitexact/reference/reduce.hpp>

#include "fuzz_input.hpp"

using namespace bitexact;

template <class A>
bool same(A want, A got) {
  if (want != want) {
    const A c = std::numeric_limits<A>::quiet_NaN();
    return std::memcmp(&got, &c, sizeof c) == 0;
  }
  return std::memcmp(&want, &got, sizeof want) == 0;
}

template <class T>
void run(fuzz::input& in, int threads, isa i) {
  const std::size_t n = in.left() / (2 * sizeof(T));
  std::vector<T> x(n + 1), y(n + 1);
  std::memcpy(static_cast<void*>(x.data() + 1), in.p, n * sizeof(T));  // +1: unaligned view
  std::memcpy(static_cast<void*>(y.data() + 1), in.p + n * sizeof(T), n * sizeof(T));
  const T* xp = x.data() + 1;
  const T* yp = y.data() + 1;
  const execution e{threads, i};
  FUZZ_CHECK(same(reference::sum_fixed_order(xp, n), sum(xp, n, tier::fixed_order, e)));
  FUZZ_CHECK(same(reference::sum_exact(xp, n), sum(xp, n, tier::exact, e)));
  FUZZ_CHECK(same(reference::dot_fixed_order(xp, yp, n), dot(xp, yp, n, tier::fixed_order, e)));
  FUZZ_CHECK(same(reference::dot_exact(xp, yp, n), dot(xp, yp, n, tier::exact, e)));
  FUZZ_CHECK(same(reference::squared_norm_exact(xp, n), squared_norm(xp, n, tier::exact, e)));
  if (n > 0) {
    FUZZ_CHECK(same(reference::mean_fixed_order(xp, n), mean(xp, n, tier::fixed_order, e)));
    FUZZ_CHECK(reference::argmin(xp, n) == argmin(xp, n, e));
    FUZZ_CHECK(reference::argmax(xp, n) == argmax(xp, n, e));
    const T a = reference::min(xp, n), b = bitexact::min(xp, n, e);
    FUZZ_CHECK(std::memcmp(&a, &b, sizeof a) == 0);
    const T c = reference::max(xp, n), d = bitexact::max(xp, n, e);
    FUZZ_CHECK(std::memcmp(&c, &d, sizeof c) == 0);
  }
}

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  fuzz::input in{data, size};
  cpu::detail::set_min_work_per_thread(1);  // let short inputs run on several threads
  const std::uint8_t mode = in.take<std::uint8_t>();
  const int threads = 1 + (mode >> 2) % 8;
  const auto isas = usable_isas();
  const isa i = isas[in.take<std::uint8_t>() % isas.size()];
  switch (mode & 3) {
    case 0: run<float>(in, threads, i); break;
    case 1: run<double>(in, threads, i); break;
    default: run<bfloat16>(in, threads, i); break;
  }
  return 0;
}
