// tests/scatter_test_data.hpp - inputs shared by the CUDA scatter tests (emulation, Thrust):
// index distributions, values whose sums depend on the order, exact-tier values with special
// cases, and a bitwise comparison.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "bitexact/core/bfloat16.hpp"

namespace bitexact {
namespace scatter_test_data {

struct rng {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double unit() { return double(next() >> 11) * 0x1.0p-53; }
};

enum class dist { one_target, uniform, zipf, sorted, reverse_sorted, empty_targets };
const dist kDists[] = {dist::one_target, dist::uniform, dist::zipf, dist::sorted, dist::reverse_sorted,
                       dist::empty_targets};
inline const char* name(dist d) {
  switch (d) {
    case dist::one_target: return "one_target";
    case dist::uniform: return "uniform";
    case dist::zipf: return "zipf";
    case dist::sorted: return "sorted";
    case dist::reverse_sorted: return "reverse_sorted";
    default: return "empty_targets";
  }
}

template <class I>
std::vector<I> make_indices(dist d, std::size_t n, std::size_t n_out, std::uint64_t seed) {
  rng r{seed};
  std::vector<I> idx(n);
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t t = 0;
    switch (d) {
      case dist::one_target: t = n_out / 2; break;
      case dist::uniform: t = r.next() % n_out; break;
      case dist::zipf: {  // log-uniform range, then uniform inside: P(t) falls like 1/(t+1)
        int bits = 0;
        while ((n_out >> bits) > 1) ++bits;
        const std::size_t range = n_out >> (r.next() % static_cast<std::uint64_t>(bits + 1));
        t = static_cast<std::size_t>(r.next() % (range ? range : 1));
        break;
      }
      case dist::sorted: t = static_cast<std::size_t>((static_cast<unsigned __int128>(i) * n_out) / (n ? n : 1)); break;
      case dist::reverse_sorted: t = n_out - 1 - static_cast<std::size_t>((static_cast<unsigned __int128>(i) * n_out) / (n ? n : 1)); break;
      case dist::empty_targets: t = 3 * (r.next() % ((n_out + 2) / 3)); break;  // only multiples of 3
    }
    idx[i] = static_cast<I>(t);
  }
  return idx;
}

// Values whose sums round differently in different orders (wide exponent range, both signs).
template <class T>
T spread_value(rng& r) {
  const double m = 1.0 + r.unit();
  const int e = static_cast<int>(r.next() % 41) - 20;
  const double v = std::ldexp(m, e) * ((r.next() & 1) ? -1.0 : 1.0);
  return static_cast<T>(v);
}
template <>
inline bfloat16 spread_value<bfloat16>(rng& r) {
  return bfloat16::from_float(spread_value<float>(r));
}

// Exact-tier values: mostly spread values, with denormals, signed zeros, cancelling pairs,
// huge values and (rarely) Inf/NaN.
template <class A>
A special_value(rng& r, A prev) {
  const std::uint64_t k = r.next() % 1000;
  if (k < 20) return std::numeric_limits<A>::denorm_min() * A(1 + r.next() % 7);
  if (k < 40) return -A(0);
  if (k < 50) return A(0);
  if (k < 150) return -prev;  // cancellation
  if (k < 170) return std::numeric_limits<A>::max() * A(0.75) * ((r.next() & 1) ? A(1) : A(-1));
  if (k < 172) return std::numeric_limits<A>::infinity();
  if (k < 174) return -std::numeric_limits<A>::infinity();
  if (k < 175) return std::numeric_limits<A>::quiet_NaN();
  return spread_value<A>(r);
}

template <class T>
std::vector<T> make_values(std::size_t n, std::uint64_t seed, bool special) {
  rng r{seed};
  std::vector<T> v(n);
  if constexpr (std::is_same<T, bfloat16>::value) {
    for (std::size_t i = 0; i < n; ++i) v[i] = spread_value<T>(r);
  } else {
    T prev = T(1);
    for (std::size_t i = 0; i < n; ++i) {
      v[i] = special ? special_value<T>(r, prev) : spread_value<T>(r);
      prev = v[i];
    }
  }
  return v;
}

template <class A>
std::vector<A> make_out(std::size_t n, std::uint64_t seed) {
  rng r{seed};
  std::vector<A> o(n);
  for (auto& x : o) x = spread_value<A>(r);
  return o;
}

/// Offsets of n_bags bags over n_indices positions (n_bags > 0): offsets[0] == 0, sorted, with
/// empty bags (bag 0 and, with 6 or more bags, bag 4) and, for n_indices > 12000, one bag of more
/// than two chunks (bags 2 .. 3 cover most positions), so that the chunk tree runs.
template <class I>
std::vector<I> make_offsets(std::size_t n_indices, std::size_t n_bags, std::uint64_t seed) {
  rng r{seed};
  std::vector<I> o(n_bags);
  for (auto& x : o) x = static_cast<I>(n_indices == 0 ? 0 : r.next() % (n_indices + 1));
  std::sort(o.begin(), o.end());
  o[0] = 0;
  if (n_bags > 2) o[1] = o[0];                               // bag 0 empty
  if (n_bags > 4 && n_indices > 12000) {                     // bag 2 large
    o[2] = static_cast<I>(n_indices / 10);
    for (std::size_t b = 3; b < n_bags; ++b)
      if (o[b] < static_cast<I>(n_indices / 10 + 9000)) o[b] = static_cast<I>(n_indices / 10 + 9000);
  }
  if (n_bags > 5) o[5] = o[4];                               // bag 4 empty
  return o;
}

template <class A>
::testing::AssertionResult same_bits(const std::vector<A>& want, const std::vector<A>& got) {
  if (want.size() != got.size()) return ::testing::AssertionFailure() << "size";
  for (std::size_t i = 0; i < want.size(); ++i)
    if (std::memcmp(&want[i], &got[i], sizeof(A)) != 0)
      return ::testing::AssertionFailure() << "first mismatch at " << i << ": want " << want[i] << " got " << got[i];
  return ::testing::AssertionSuccess();
}

}  // namespace scatter_test_data
}  // namespace bitexact
