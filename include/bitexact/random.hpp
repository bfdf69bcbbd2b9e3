// bitexact/random.hpp - counter-based random numbers whose bits never depend on how they run.
//
// Generators (core/philox.hpp, core/threefry.hpp): philox4x32_10, philox4x64_10,
// threefry2x32_20, threefry4x32_20, threefry4x64_20, called as gen(ctr, key), equal to
// Random123. Keys are derived, never stored: derive_key<Gen>(seed, step, rank, tag)
// (core/keys.hpp). A stream<Gen> is (generator, key): 2^64 addressable 32-bit words
// (core/stream.hpp). Each distribution value reads a fixed set of words (core/distributions.hpp),
// so every bulk call below is addressed by (stream, first value index, count): generating
// [a, b) then [b, c) equals generating [a, c), and the result does not depend on the thread
// count, the ISA (execution.hpp) or, for the CUDA kernels, on the launch shape.
//
// Keying: key by the global sample index (first = sample * values_per_sample, same key on every
// rank) to get the same values on 1 or 8 ranks; or derive the key with rank = this rank for
// independent per-rank streams.
//
// Errors: n == 0 does nothing (out may be null); a null out with n > 0 throws
// std::invalid_argument; a slice that runs past the 2^64-word counter space throws
// std::out_of_range; bad distribution parameters throw std::invalid_argument; the ops that do
// floating-point arithmetic (generate_normal, dropout) throw fp_environment_error when the
// calling thread runs with FTZ/DAZ or a non-nearest rounding mode (fp_environment.hpp).
// Nothing is written when a call throws.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

#include "core/distributions.hpp"
#include "core/keys.hpp"
#include "core/permutation.hpp"
#include "core/stream.hpp"
#include "cpu/random_kernels.hpp"
#include "cpu/threads.hpp"
#include "execution.hpp"
#include "fp_environment.hpp"

namespace bitexact {
namespace detail {

/// Values per canonical chunk, and the least work worth waking another thread for.
constexpr std::uint64_t random_chunk_values = 8192;
constexpr std::uint64_t random_min_values_per_thread = 32768;

inline void check_out(const void* out, std::size_t n, const char* what) {
  if (n > 0 && out == nullptr)
    throw std::invalid_argument(std::string("bitexact::") + what + ": null output pointer with n > 0");
}

/// Values [first, first + n), each reading `words_per_value` words (a ratio for pairs), must
/// lie inside the stream's 2^64 words.
inline void check_range(std::uint64_t first, std::size_t n, unsigned words_per_value, const char* what) {
  const std::uint64_t max_values =
      words_per_value == 1 ? std::numeric_limits<std::uint64_t>::max()
                           : (std::uint64_t{1} << 63) / (words_per_value / 2);
  if (static_cast<std::uint64_t>(n) > max_values || first > max_values - n)
    throw std::out_of_range(std::string("bitexact::") + what +
                            ": first + n runs past the 2^64-word counter space of the stream");
}

/// Splits [0, n) into canonical chunks and runs body(Arch, begin, end) on the resolved ISA
/// and threads.
template <class Body>
void run_random(std::size_t n, const execution& e, Body&& body) {
  if (n == 0) return;
  const isa i = cpu::detail::resolve_isa(e.simd);
  const int t = cpu::detail::threads_for_work(cpu::detail::resolve_threads(e.threads), n, random_min_values_per_thread);
  cpu::detail::with_arch(i, [&](auto arch) {
    cpu::parallel_chunks(t, cpu::canonical_chunks{n, random_chunk_values},
                         [&](std::uint64_t b, std::uint64_t end) { body(arch, b, end); });
  });
}

}  // namespace detail

/// Raw 32-bit words [first, first + n) of the stream.
template <class Gen>
void generate(const stream<Gen>& s, std::uint64_t first, std::uint32_t* out, std::size_t n,
              const execution& e = {}) {
  detail::check_out(out, n, "generate");
  detail::check_range(first, n, 1, "generate");
  detail::run_random(n, e, [&](auto arch, std::uint64_t b, std::uint64_t end) {
    cpu::detail::fill_words<Gen, decltype(arch)>(s, first + b, out + b, static_cast<std::size_t>(end - b));
  });
}

/// Uniform floats on [0, 1): value j = (word j >> 8) * 2^-24.
template <class Gen>
void generate_uniform(const stream<Gen>& s, std::uint64_t first, float* out, std::size_t n,
                      const execution& e = {}) {
  detail::check_out(out, n, "generate_uniform");
  detail::check_range(first, n, 1, "generate_uniform");
  detail::run_random(n, e, [&](auto arch, std::uint64_t b, std::uint64_t end) {
    cpu::detail::fill_uniform<Gen, decltype(arch)>(s, first + b, out + b, static_cast<std::size_t>(end - b));
  });
}

/// Uniform doubles on [0, 1): value j = ((word 2j | word 2j+1 << 32) >> 11) * 2^-53.
template <class Gen>
void generate_uniform(const stream<Gen>& s, std::uint64_t first, double* out, std::size_t n,
                      const execution& e = {}) {
  detail::check_out(out, n, "generate_uniform");
  detail::check_range(first, n, 2, "generate_uniform");
  detail::run_random(n, e, [&](auto arch, std::uint64_t b, std::uint64_t end) {
    cpu::detail::fill_uniform<Gen, decltype(arch)>(s, first + b, out + b, static_cast<std::size_t>(end - b));
  });
}

/// Standard normal floats (Box-Muller in binary64 with the library's own log/sincos).
template <class Gen>
void generate_normal(const stream<Gen>& s, std::uint64_t first, float* out, std::size_t n,
                     const execution& e = {}) {
  detail::check_out(out, n, "generate_normal");
  detail::require_ieee_environment("generate_normal");
  detail::check_range(first, n, 1, "generate_normal");
  detail::run_random(n, e, [&](auto arch, std::uint64_t b, std::uint64_t end) {
    cpu::detail::fill_normal<Gen, decltype(arch)>(s, first + b, out + b, static_cast<std::size_t>(end - b));
  });
}

/// Standard normal doubles.
template <class Gen>
void generate_normal(const stream<Gen>& s, std::uint64_t first, double* out, std::size_t n,
                     const execution& e = {}) {
  detail::check_out(out, n, "generate_normal");
  detail::require_ieee_environment("generate_normal");
  detail::check_range(first, n, 2, "generate_normal");
  detail::run_random(n, e, [&](auto arch, std::uint64_t b, std::uint64_t end) {
    cpu::detail::fill_normal<Gen, decltype(arch)>(s, first + b, out + b, static_cast<std::size_t>(end - b));
  });
}

/// Bernoulli(keep_probability) masks: 1 = keep. keep_probability must be in [0, 1].
template <class Gen>
void generate_bernoulli(const stream<Gen>& s, std::uint64_t first, std::uint8_t* out, std::size_t n,
                        double keep_probability, const execution& e = {}) {
  if (!(keep_probability >= 0.0 && keep_probability <= 1.0))
    throw std::invalid_argument("bitexact::generate_bernoulli: keep probability must be in [0, 1]");
  detail::check_out(out, n, "generate_bernoulli");
  detail::check_range(first, n, 1, "generate_bernoulli");
  const std::uint64_t t = core::bernoulli_threshold(keep_probability);
  detail::run_random(n, e, [&](auto arch, std::uint64_t b, std::uint64_t end) {
    cpu::detail::fill_bernoulli<Gen, decltype(arch)>(s, first + b, out + b, static_cast<std::size_t>(end - b), t);
  });
}

/// Inverted dropout: y[i] = x[i] * (1 / keep_probability) where mask i keeps, else 0.
/// The mask is generate_bernoulli's; keep_probability must be in (0, 1].
template <class Gen>
void dropout(const stream<Gen>& s, std::uint64_t first, const float* x, float* y, std::size_t n,
             double keep_probability, const execution& e = {}) {
  if (!(keep_probability > 0.0 && keep_probability <= 1.0))
    throw std::invalid_argument("bitexact::dropout: keep probability must be in (0, 1]");
  detail::check_out(y, n, "dropout");
  detail::check_out(x, n, "dropout");
  detail::check_range(first, n, 1, "dropout");
  detail::require_ieee_environment("dropout");
  const std::uint64_t t = core::bernoulli_threshold(keep_probability);
  const float scale = static_cast<float>(1.0 / keep_probability);
  detail::run_random(n, e, [&](auto arch, std::uint64_t b, std::uint64_t end) {
    alignas(64) std::uint8_t m[cpu::detail::buffer_words];
    for (std::uint64_t k = b; k < end; k += cpu::detail::buffer_words) {
      const std::size_t c = static_cast<std::size_t>(end - k < cpu::detail::buffer_words ? end - k : cpu::detail::buffer_words);
      cpu::detail::fill_bernoulli<Gen, decltype(arch)>(s, first + k, m, c, t);
      for (std::size_t i = 0; i < c; ++i) y[k + i] = m[i] ? x[k + i] * scale : 0.0f;
    }
  });
}

/// Unbiased integers in [0, bound), bound >= 1.
template <class Gen>
void generate_uniform_int(const stream<Gen>& s, std::uint64_t first, std::uint32_t* out, std::size_t n,
                          std::uint32_t bound, const execution& e = {}) {
  if (bound == 0) throw std::invalid_argument("bitexact::generate_uniform_int: bound must be >= 1");
  detail::check_out(out, n, "generate_uniform_int");
  detail::check_range(first, n, 1, "generate_uniform_int");
  detail::run_random(n, e, [&](auto arch, std::uint64_t b, std::uint64_t end) {
    cpu::detail::fill_uniform_int<Gen, decltype(arch)>(s, first + b, out + b, static_cast<std::size_t>(end - b), bound);
  });
}

template <class Gen>
void generate_uniform_int(const stream<Gen>& s, std::uint64_t first, std::uint64_t* out, std::size_t n,
                          std::uint64_t bound, const execution& e = {}) {
  if (bound == 0) throw std::invalid_argument("bitexact::generate_uniform_int: bound must be >= 1");
  detail::check_out(out, n, "generate_uniform_int");
  detail::check_range(first, n, 2, "generate_uniform_int");
  detail::run_random(n, e, [&](auto arch, std::uint64_t b, std::uint64_t end) {
    cpu::detail::fill_uniform_int<Gen, decltype(arch)>(s, first + b, out + b, static_cast<std::size_t>(end - b), bound);
  });
}

/// A random-access pseudorandom permutation of [0, n) (core/permutation.hpp), e.g. to shuffle
/// a data set by (seed, epoch) without materialising it. n >= 1.
class permutation {
 public:
  permutation(std::uint64_t n, philox4x32_10::key_type key) : p_(checked(n), key) {}
  /// The permutation for (seed, epoch): key = derive_key<philox4x32_10>(seed, epoch, 0, tag_of("permutation")).
  static permutation for_epoch(std::uint64_t n, std::uint64_t seed, std::uint64_t epoch) {
    return permutation(n, derive_key<philox4x32_10>(seed, epoch, 0, tag_of("permutation")));
  }
  std::uint64_t size() const { return p_.size(); }
  /// perm(i); throws std::out_of_range if i >= n.
  std::uint64_t operator()(std::uint64_t i) const { return p_(check_index(i)); }
  std::uint64_t inverse(std::uint64_t j) const { return p_.inverse(check_index(j)); }
  /// out[k] = perm(first + k) for k < count.
  void fill(std::uint64_t first, std::uint64_t* out, std::size_t count, const execution& e = {}) const {
    detail::check_out(out, count, "permutation::fill");
    if (count > 0 && (first >= p_.size() || count > p_.size() - first))
      throw std::out_of_range("bitexact::permutation::fill: [first, first + count) exceeds [0, n)");
    detail::run_random(count, e, [&](auto, std::uint64_t b, std::uint64_t end) {
      for (std::uint64_t k = b; k < end; ++k) out[k] = p_(first + k);
    });
  }
  const core::feistel_permutation& core() const { return p_; }

 private:
  static std::uint64_t checked(std::uint64_t n) {
    if (n == 0) throw std::invalid_argument("bitexact::permutation: n must be >= 1");
    return n;
  }
  std::uint64_t check_index(std::uint64_t i) const {
    if (i >= p_.size()) throw std::out_of_range("bitexact::permutation: index out of range");
    return i;
  }
  core::feistel_permutation p_;
};

}  // namespace bitexact
