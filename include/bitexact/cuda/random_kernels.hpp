// bitexact/cuda/random_kernels.hpp - kernel bodies of the random family, for CUDA and emulation.
//
// Plain C++17 (compiles with g++ and nvcc). Each body is a BITEXACT_HD function of a
// thread_index (cuda/launch.hpp): cuda/random.cuh calls it from a __global__ kernel, and
// emulate_launch() calls it on the CPU for the tests.
//
// Work decomposition. A distribution reads K consecutive stream words per "unit" (K = 1 for
// words, uniform f32, bernoulli and 32-bit uniform_int; K = 2 for uniform f64 and 64-bit
// uniform_int, and for a normal f32 pair; K = 4 for a normal f64 pair). A unit yields one value,
// or two for the normal pairs. Words are grouped into aligned groups of G = max(W, K) words,
// where W = stream<Gen>::words_per_block (2, 4 or 8): a group is G / W whole generator blocks
// and holds G / K whole units. Threads grid-stride over the groups that overlap the requested
// values [first, first + n): thread t takes groups t, t + T, t + 2T, ... (T = threads in the
// grid), computes their generator blocks with stream<Gen>::block(b) and writes every value of
// the group that lies inside [first, first + n) - so a `first` that is not block aligned and a
// partial tail are just groups whose outer units are skipped.
//
// Which words a value reads, and how they become a value, is core's business
// (core/stream.hpp, core/distributions.hpp); a body only decides which thread computes which
// block. Each output element is written by exactly one thread, once, so the result does not
// depend on the launch shape or the order in which blocks run.
//
// The bodies assume validated arguments (cuda/random.cuh's launchers call the validate_*
// helpers at the bottom of this file): n > 0 or a no-op, out non-null, and the requested
// values inside the 2^64-word counter space.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "../core/config.hpp"
#include "../core/distributions.hpp"
#include "../core/permutation.hpp"
#include "../core/stream.hpp"
#include "launch.hpp"

namespace bitexact {
namespace cuda {
namespace detail {

/// Grid-stride loop over the word groups covering units [u_first, u_last] (inclusive, so that
/// u_last may be the very last unit of the counter space). Calls op(unit, words) for each
/// covered unit, words pointing at the unit's K consecutive stream words.
template <unsigned K, class Gen, class Op>
BITEXACT_HD void for_each_unit(const thread_index& ti, const stream<Gen>& s, std::uint64_t u_first,
                               std::uint64_t u_last, const Op& op) {
  constexpr unsigned W = stream<Gen>::words_per_block;
  constexpr unsigned G = W > K ? W : K;  // words per group; W and K are powers of two
  constexpr unsigned units_per_group = G / K;
  constexpr unsigned blocks_per_group = G / W;
  static_assert(G % W == 0 && G % K == 0, "words per block and per unit must be powers of two");

  const std::uint64_t g_first = u_first / units_per_group;
  const std::uint64_t g_last = u_last / units_per_group;
  const std::uint64_t groups = g_last - g_first + 1;
  const std::uint64_t step = ti.threads();
  for (std::uint64_t i = ti.global(); i < groups; i += step) {
    const std::uint64_t g = g_first + i;
    std::uint32_t words[G];
    for (unsigned b = 0; b < blocks_per_group; ++b) {
      const auto blk = s.block(g * blocks_per_group + b);
      for (unsigned j = 0; j < W; ++j) words[b * W + j] = blk[j];
    }
    const std::uint64_t u0 = g * units_per_group;
    for (unsigned u = 0; u < units_per_group; ++u) {
      const std::uint64_t unit = u0 + u;
      if (unit < u_first || unit > u_last) continue;
      op(unit, words + u * K);
    }
  }
}

/// One value per unit: values [first, first + n) are units [first, first + n - 1].
template <unsigned K, class Gen, class Op>
BITEXACT_HD void for_each_value(const thread_index& ti, const stream<Gen>& s, std::uint64_t first,
                                std::size_t n, const Op& op) {
  if (n == 0) return;
  for_each_unit<K>(ti, s, first, first + (n - 1), op);
}

/// Two values per unit (normal pairs): value j belongs to unit j / 2.
template <unsigned K, class Gen, class Op>
BITEXACT_HD void for_each_pair(const thread_index& ti, const stream<Gen>& s, std::uint64_t first,
                               std::size_t n, const Op& op) {
  if (n == 0) return;
  for_each_unit<K>(ti, s, first / 2, (first + (n - 1)) / 2, op);
}

struct words_op {
  std::uint32_t* out;
  std::uint64_t first;
  BITEXACT_HD void operator()(std::uint64_t j, const std::uint32_t* w) const {
    out[j - first] = w[0];
  }
};

struct uniform_float_op {
  float* out;
  std::uint64_t first;
  BITEXACT_HD void operator()(std::uint64_t j, const std::uint32_t* w) const {
    out[j - first] = core::uniform_float(w[0]);
  }
};

struct uniform_double_op {
  double* out;
  std::uint64_t first;
  BITEXACT_HD void operator()(std::uint64_t j, const std::uint32_t* w) const {
    out[j - first] = core::uniform_double(w[0], w[1]);
  }
};

template <class T>
struct pair_writer {
  T* out;
  std::uint64_t first;
  std::uint64_t last;  // inclusive
  BITEXACT_HD void operator()(std::uint64_t m, T z0, T z1) const {
    const std::uint64_t j0 = 2 * m, j1 = 2 * m + 1;
    if (j0 >= first && j0 <= last) out[j0 - first] = z0;
    if (j1 >= first && j1 <= last) out[j1 - first] = z1;
  }
};

struct normal_float_op {
  pair_writer<float> wr;
  BITEXACT_HD void operator()(std::uint64_t m, const std::uint32_t* w) const {
    float z0 = 0, z1 = 0;
    core::normal_float_pair(w[0], w[1], z0, z1);
    wr(m, z0, z1);
  }
};

struct normal_double_op {
  pair_writer<double> wr;
  BITEXACT_HD void operator()(std::uint64_t m, const std::uint32_t* w) const {
    double z0 = 0, z1 = 0;
    core::normal_double_pair(w[0], w[1], w[2], w[3], z0, z1);
    wr(m, z0, z1);
  }
};

struct bernoulli_op {
  std::uint8_t* out;
  std::uint64_t first;
  std::uint64_t threshold;
  BITEXACT_HD void operator()(std::uint64_t j, const std::uint32_t* w) const {
    out[j - first] = core::bernoulli(w[0], threshold);
  }
};

template <class Gen>
struct uniform_int32_op {
  stream<Gen> s;
  std::uint32_t* out;
  std::uint64_t first;
  std::uint32_t bound;
  BITEXACT_HD void operator()(std::uint64_t j, const std::uint32_t* w) const {
    std::uint32_t v = 0;
    // Attempt 0 from the main stream's word j (already computed); else core's retry path.
    if (!core::lemire32(w[0], bound, v)) v = core::uniform_int32_retry(s, j, bound);
    out[j - first] = v;
  }
};

template <class Gen>
struct uniform_int64_op {
  stream<Gen> s;
  std::uint64_t* out;
  std::uint64_t first;
  std::uint64_t bound;
  BITEXACT_HD void operator()(std::uint64_t j, const std::uint32_t* w) const {
    const std::uint64_t u = static_cast<std::uint64_t>(w[0]) | (static_cast<std::uint64_t>(w[1]) << 32);
    std::uint64_t v = 0;
    if (!core::lemire64(u, bound, v)) v = core::uniform_int64_retry(s, j, bound);
    out[j - first] = v;
  }
};

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Kernel bodies. `first` and `n` count values (not words); out[i] receives value first + i.
// ---------------------------------------------------------------------------------------------

/// Raw 32-bit words first .. first + n - 1 of the stream.
template <class Gen>
BITEXACT_HD void words_body(const thread_index& ti, stream<Gen> s, std::uint64_t first,
                            std::uint32_t* out, std::size_t n) {
  detail::for_each_value<1>(ti, s, first, n, detail::words_op{out, first});
}

/// Uniform floats on [0, 1) (core::uniform_float of word j).
template <class Gen>
BITEXACT_HD void uniform_float_body(const thread_index& ti, stream<Gen> s, std::uint64_t first,
                                    float* out, std::size_t n) {
  detail::for_each_value<1>(ti, s, first, n, detail::uniform_float_op{out, first});
}

/// Uniform doubles on [0, 1) (core::uniform_double of words 2j, 2j+1).
template <class Gen>
BITEXACT_HD void uniform_double_body(const thread_index& ti, stream<Gen> s, std::uint64_t first,
                                     double* out, std::size_t n) {
  detail::for_each_value<2>(ti, s, first, n, detail::uniform_double_op{out, first});
}

/// Standard normal floats (core::normal_float_pair on words 2m, 2m+1 for values 2m, 2m+1).
template <class Gen>
BITEXACT_HD void normal_float_body(const thread_index& ti, stream<Gen> s, std::uint64_t first,
                                   float* out, std::size_t n) {
  if (n == 0) return;
  detail::for_each_pair<2>(ti, s, first, n,
                           detail::normal_float_op{{out, first, first + (n - 1)}});
}

/// Standard normal doubles (core::normal_double_pair on words 4m..4m+3 for values 2m, 2m+1).
template <class Gen>
BITEXACT_HD void normal_double_body(const thread_index& ti, stream<Gen> s, std::uint64_t first,
                                    double* out, std::size_t n) {
  if (n == 0) return;
  detail::for_each_pair<4>(ti, s, first, n,
                           detail::normal_double_op{{out, first, first + (n - 1)}});
}

/// Bernoulli mask: out[i] = 1 if word first + i < threshold, where threshold =
/// core::bernoulli_threshold(p) is computed once by the launcher.
template <class Gen>
BITEXACT_HD void bernoulli_body(const thread_index& ti, stream<Gen> s, std::uint64_t first,
                                std::uint8_t* out, std::size_t n, std::uint64_t threshold) {
  detail::for_each_value<1>(ti, s, first, n, detail::bernoulli_op{out, first, threshold});
}

/// Unbiased integers in [0, bound), bound > 0 (core::uniform_int32 semantics).
template <class Gen>
BITEXACT_HD void uniform_int32_body(const thread_index& ti, stream<Gen> s, std::uint64_t first,
                                    std::uint32_t* out, std::size_t n, std::uint32_t bound) {
  detail::for_each_value<1>(ti, s, first, n, detail::uniform_int32_op<Gen>{s, out, first, bound});
}

/// Unbiased integers in [0, bound), bound > 0 (core::uniform_int64 semantics).
template <class Gen>
BITEXACT_HD void uniform_int64_body(const thread_index& ti, stream<Gen> s, std::uint64_t first,
                                    std::uint64_t* out, std::size_t n, std::uint64_t bound) {
  detail::for_each_value<2>(ti, s, first, n, detail::uniform_int64_op<Gen>{s, out, first, bound});
}

/// out[i] = p(first + i): elements first .. first + n - 1 of a random-access permutation,
/// one element per thread iteration (grid-stride over i).
BITEXACT_HD inline void permutation_body(const thread_index& ti, const core::feistel_permutation& p,
                                         std::uint64_t first, std::uint64_t* out, std::size_t n) {
  const std::uint64_t step = ti.threads();
  for (std::uint64_t i = ti.global(); i < n; i += step) out[i] = p(first + i);
}

// ---------------------------------------------------------------------------------------------
// Host-side argument checks shared by the CUDA launchers (and tested under plain g++).
// Parameter errors (p, bound) are reported even when n == 0; then n == 0 is a no-op; then a
// null output with n > 0 and a range past the counter space are errors.
// ---------------------------------------------------------------------------------------------

/// Returns false when there is nothing to do (n == 0). `words_per_value_log2` is 0 for words,
/// uniform f32, bernoulli, 32-bit uniform_int and normal f32 (2 words per pair), and 1 for
/// uniform f64, 64-bit uniform_int and normal f64 (4 words per pair). Throws
/// std::invalid_argument for a null `out` with n > 0 and std::out_of_range when value
/// first + n - 1 would read a word past 2^64 - 1.
inline bool validate_range(const char* op, const void* out, std::uint64_t first, std::size_t n,
                           unsigned words_per_value_log2) {
  if (n == 0) return false;
  if (out == nullptr)
    throw std::invalid_argument(std::string("bitexact::cuda::") + op + ": null output pointer with n > 0");
  const std::uint64_t max_value = ~0ull >> words_per_value_log2;  // last addressable value index
  if (first > max_value || static_cast<std::uint64_t>(n - 1) > max_value - first)
    throw std::out_of_range(std::string("bitexact::cuda::") + op +
                            ": first + n runs past the 2^64-word counter space");
  return true;
}

/// Throws std::invalid_argument unless 0 <= p <= 1 (NaN included).
inline void validate_probability(const char* op, double p) {
  if (!(p >= 0.0 && p <= 1.0))
    throw std::invalid_argument(std::string("bitexact::cuda::") + op + ": p must be in [0, 1]");
}

/// Throws std::invalid_argument for bound == 0.
template <class U>
inline void validate_bound(const char* op, U bound) {
  if (bound == 0)
    throw std::invalid_argument(std::string("bitexact::cuda::") + op + ": bound must be > 0");
}

/// For permutations: throws std::invalid_argument for a null `out` with n > 0 and
/// std::out_of_range unless first + n <= p.size(). Returns false when n == 0.
inline bool validate_permutation(const char* op, const core::feistel_permutation& p,
                                 std::uint64_t first, const void* out, std::size_t n) {
  if (n == 0) return false;
  if (out == nullptr)
    throw std::invalid_argument(std::string("bitexact::cuda::") + op + ": null output pointer with n > 0");
  if (first > p.size() || static_cast<std::uint64_t>(n) > p.size() - first)
    throw std::out_of_range(std::string("bitexact::cuda::") + op + ": first + n exceeds the permutation size");
  return true;
}

/// Grid-stride work items of each body, for sizing the grid (resolve_shape): the number of
/// word groups a body will visit. Only used to avoid launching idle blocks.
template <class Gen>
inline std::uint64_t work_groups(std::uint64_t first_unit, std::uint64_t last_unit, unsigned words_per_unit) {
  constexpr unsigned W = stream<Gen>::words_per_block;
  const unsigned G = W > words_per_unit ? W : words_per_unit;
  const unsigned upg = G / words_per_unit;
  return last_unit / upg - first_unit / upg + 1;
}

}  // namespace cuda
}  // namespace bitexact
