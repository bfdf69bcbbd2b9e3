// bitexact/curand_compat.hpp - cuRAND's Philox4_32_10, bit for bit, on the CPU.
//
// generate / generate_uniform / generate_uniform_double(seed, offset, out, n) write what a
// freshly created cuRAND host generator (CURAND_RNG_PSEUDO_PHILOX4_32_10, default ordering)
// with that seed and offset writes for curandGenerate / curandGenerateUniform /
// curandGenerateUniformDouble. The device-side state mirroring curand_init(seed, subsequence,
// offset), curand, curand_uniform and curand_uniform4 is curand_compat::philox4_32_10_state
// with init/next/uniform/uniform4 in core/curand_philox.hpp (the mapping is documented there).
// The bulk calls are SIMD (runs of whole blocks: one block index across consecutive
// subsequences, cpu::detail::philox_subsequence_blocks) and threaded over canonical chunks like
// the rest of the library; each element's value depends on (seed, offset, index) alone. n == 0 does nothing; a null out with n > 0
// throws std::invalid_argument.
#pragma once
#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "core/curand_philox.hpp"
#include "random.hpp"

namespace bitexact {
namespace curand_compat {
namespace detail_bulk {

constexpr std::uint64_t buffer_blocks = 512;

/// Elements [b, end) of curandGenerate, converted by conv. Runs of whole blocks go through the
/// SIMD kernel (consecutive subsequences at one block index); the at most three elements
/// before and after a run are computed one at a time.
template <class Arch, class T, class Convert>
void words_range(Arch, const detail::key_type& key, std::uint64_t offset, T* out, std::uint64_t b,
                 std::uint64_t end, Convert conv) {
  alignas(64) std::uint32_t buf[4 * buffer_blocks];
  std::uint64_t i = b;
  while (i < end) {
    const detail::word_address a = detail::host_u32_address(offset, i);
    if (a.lane != 0 || end - i < 4) {
      out[i] = conv(detail::philox_block(key, a.block, a.subsequence)[a.lane]);
      ++i;
      continue;
    }
    std::uint64_t nb = std::min((end - i) / 4, host_threads - a.subsequence);
    const auto t = static_cast<std::uint32_t>(a.subsequence);
    if constexpr (std::is_same<T, std::uint32_t>::value) {
      cpu::detail::philox_subsequence_blocks<Arch>(key, a.block, t, nb, out + i);
    } else {
      nb = std::min(nb, buffer_blocks);
      cpu::detail::philox_subsequence_blocks<Arch>(key, a.block, t, nb, buf);
      for (std::uint64_t j = 0; j < 4 * nb; ++j) out[i + j] = conv(buf[j]);
    }
    i += 4 * nb;
  }
}

/// Elements [b, end) of curandGenerateUniformDouble. A group of four elements (s = 0..3) of
/// subsequence t reads blocks P and P + 1 of t (core/curand_philox.hpp); runs of groups with
/// the same P over consecutive t go through the SIMD kernel.
template <class Arch>
void doubles_range(Arch, const detail::key_type& key, std::uint64_t offset, double* out, std::uint64_t b,
                   std::uint64_t end) {
  alignas(64) std::uint32_t b0[4 * buffer_blocks], b1[4 * buffer_blocks];
  const std::uint64_t t0 = (offset % host_round) / 4;
  std::uint64_t i = b;
  while (i < end) {
    const detail::word_address a = detail::host_double_address(offset, i);
    if ((offset % host_round + i) % 4 != 0 || end - i < 4) {
      const auto w = detail::philox_block(key, a.block, a.subsequence);
      out[i] = detail::to_uniform_double(w[a.lane], w[a.lane + 1]);
      ++i;
      continue;
    }
    std::uint64_t ng = std::min((end - i) / 4, host_threads - a.subsequence);
    if (a.subsequence < t0) ng = std::min(ng, t0 - a.subsequence);  // P steps up at t0
    ng = std::min(ng, buffer_blocks);
    const auto t = static_cast<std::uint32_t>(a.subsequence);
    cpu::detail::philox_subsequence_blocks<Arch>(key, a.block, t, ng, b0);
    cpu::detail::philox_subsequence_blocks<Arch>(key, a.block + 1, t, ng, b1);
    for (std::uint64_t g = 0; g < ng; ++g) {
      out[i + 4 * g + 0] = detail::to_uniform_double(b0[4 * g + 0], b0[4 * g + 1]);
      out[i + 4 * g + 1] = detail::to_uniform_double(b0[4 * g + 2], b0[4 * g + 3]);
      out[i + 4 * g + 2] = detail::to_uniform_double(b1[4 * g + 0], b1[4 * g + 1]);
      out[i + 4 * g + 3] = detail::to_uniform_double(b1[4 * g + 2], b1[4 * g + 3]);
    }
    i += 4 * ng;
  }
}

template <class T, class Convert>
void words_bulk(std::uint64_t seed, std::uint64_t offset, T* out, std::size_t n, const execution& e,
                Convert conv, const char* what) {
  bitexact::detail::check_out(out, n, what);
  const auto key = detail::host_key(seed);
  bitexact::detail::run_random(n, e, [&](auto arch, std::uint64_t b, std::uint64_t end) {
    words_range(arch, key, offset, out, b, end, conv);
  });
}

}  // namespace detail_bulk

/// curandGenerate.
inline void generate(std::uint64_t seed, std::uint64_t offset, std::uint32_t* out, std::size_t n,
                     const execution& e = {}) {
  detail_bulk::words_bulk(seed, offset, out, n, e, [](std::uint32_t w) { return w; },
                          "curand_compat::generate");
}

/// curandGenerateUniform: float(x) * 2^-32 + 2^-33, in (0, 1].
inline void generate_uniform(std::uint64_t seed, std::uint64_t offset, float* out, std::size_t n,
                             const execution& e = {}) {
  detail_bulk::words_bulk(seed, offset, out, n, e, [](std::uint32_t w) { return detail::to_uniform_float(w); },
                          "curand_compat::generate_uniform");
}

/// curandGenerateUniformDouble.
inline void generate_uniform_double(std::uint64_t seed, std::uint64_t offset, double* out, std::size_t n,
                                    const execution& e = {}) {
  bitexact::detail::check_out(out, n, "curand_compat::generate_uniform_double");
  const auto key = detail::host_key(seed);
  bitexact::detail::run_random(n, e, [&](auto arch, std::uint64_t b, std::uint64_t end) {
    detail_bulk::doubles_range(arch, key, offset, out, b, end);
  });
}

}  // namespace curand_compat
}  // namespace bitexact
