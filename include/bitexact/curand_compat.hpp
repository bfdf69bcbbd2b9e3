// bitexact/curand_compat.hpp - cuRAND's Philox4_32_10, bit for bit, on the CPU.
//
// generate / generate_uniform / generate_uniform_double(seed, offset, out, n) write what a
// freshly created cuRAND host generator (CURAND_RNG_PSEUDO_PHILOX4_32_10, default ordering)
// with that seed and offset writes for curandGenerate / curandGenerateUniform /
// curandGenerateUniformDouble. The device-side state mirroring curand_init(seed, subsequence,
// offset), curand, curand_uniform and curand_uniform4 is curand_compat::philox4_32_10_state
// with init/next/uniform/uniform4 in core/curand_philox.hpp (the mapping is documented there).
// The bulk calls are threaded over canonical chunks like the rest of the library; each element's
// value depends on (seed, offset, index) alone. n == 0 does nothing; a null out with n > 0
// throws std::invalid_argument.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/curand_philox.hpp"
#include "random.hpp"

namespace bitexact {
namespace curand_compat {
namespace detail_bulk {

template <class T, class Convert>
void words_bulk(std::uint64_t seed, std::uint64_t offset, T* out, std::size_t n, const execution& e,
                Convert conv, const char* what) {
  bitexact::detail::check_out(out, n, what);
  const auto key = detail::host_key(seed);
  bitexact::detail::run_random(n, e, [&](auto, std::uint64_t b, std::uint64_t end) {
    std::uint64_t k = b;
    while (k < end) {
      const detail::word_address a = detail::host_u32_address(offset, k);
      const auto w = detail::philox_block(key, a.block, a.subsequence);
      // Consecutive elements use consecutive lanes of the same block.
      for (unsigned lane = a.lane; lane < 4 && k < end; ++lane, ++k) out[k] = conv(w[lane]);
    }
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
  bitexact::detail::run_random(n, e, [&](auto, std::uint64_t b, std::uint64_t end) {
    for (std::uint64_t k = b; k < end; ++k) out[k] = detail::host_uniform_double(key, offset, k);
  });
}

}  // namespace curand_compat
}  // namespace bitexact
