// bitexact/reference/random.hpp - the executable specification of the random family.
//
// Plain single-threaded loops over core/ scalar functions, one value at a time, addressed by
// (stream, first, count). Every fast path (each ISA, each thread count, the CUDA kernels) must
// equal these bit for bit; the tests prove it.
#pragma once
#include <cstddef>
#include <cstdint>

#include "../core/distributions.hpp"
#include "../core/permutation.hpp"
#include "../core/stream.hpp"

namespace bitexact {
namespace reference {

template <class Gen>
void generate_words(const stream<Gen>& s, std::uint64_t first, std::uint32_t* out, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out[i] = s.word(first + i);
}

template <class Gen>
void generate_uniform(const stream<Gen>& s, std::uint64_t first, float* out, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out[i] = core::uniform_float(s.word(first + i));
}

template <class Gen>
void generate_uniform(const stream<Gen>& s, std::uint64_t first, double* out, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t j = first + i;
    out[i] = core::uniform_double(s.word(2 * j), s.word(2 * j + 1));
  }
}

template <class Gen>
void generate_normal(const stream<Gen>& s, std::uint64_t first, float* out, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t j = first + i, m = j / 2;
    float z0 = 0, z1 = 0;
    core::normal_float_pair(s.word(2 * m), s.word(2 * m + 1), z0, z1);
    out[i] = (j % 2 == 0) ? z0 : z1;
  }
}

template <class Gen>
void generate_normal(const stream<Gen>& s, std::uint64_t first, double* out, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t j = first + i, m = j / 2;
    double z0 = 0, z1 = 0;
    core::normal_double_pair(s.word(4 * m), s.word(4 * m + 1), s.word(4 * m + 2),
                             s.word(4 * m + 3), z0, z1);
    out[i] = (j % 2 == 0) ? z0 : z1;
  }
}

template <class Gen>
void generate_bernoulli(const stream<Gen>& s, std::uint64_t first, std::uint8_t* out,
                        std::size_t n, double p) {
  const std::uint64_t t = core::bernoulli_threshold(p);
  for (std::size_t i = 0; i < n; ++i) out[i] = core::bernoulli(s.word(first + i), t);
}

template <class Gen>
void generate_uniform_int(const stream<Gen>& s, std::uint64_t first, std::uint32_t* out,
                          std::size_t n, std::uint32_t bound) {
  for (std::size_t i = 0; i < n; ++i) out[i] = core::uniform_int32(s, first + i, bound);
}

template <class Gen>
void generate_uniform_int(const stream<Gen>& s, std::uint64_t first, std::uint64_t* out,
                          std::size_t n, std::uint64_t bound) {
  for (std::size_t i = 0; i < n; ++i) out[i] = core::uniform_int64(s, first + i, bound);
}

inline void generate_permutation(const core::feistel_permutation& p, std::uint64_t first,
                                 std::uint64_t* out, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out[i] = p(first + i);
}

}  // namespace reference
}  // namespace bitexact
