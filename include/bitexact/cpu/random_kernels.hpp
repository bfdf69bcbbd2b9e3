// bitexact/cpu/random_kernels.hpp - CPU kernels of the random family, one functor per Arch.
//
// Each kernel fills a slice of a stream (core/stream.hpp) or of a distribution
// (core/distributions.hpp). Whole counter blocks are computed SIMD-wide by running the core
// round function on xsimd batches (core/lane_generator.hpp + cpu/simd_lanes.hpp); partial
// blocks at the slice edges use the scalar core function. The conversions are the core scalar
// functions. Either way the bits are the reference's.
#pragma once
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "../core/distributions.hpp"
#include "../core/lane_generator.hpp"
#include "../core/stream.hpp"
#include "dispatch.hpp"
#include "isa.hpp"
#include "simd_lanes.hpp"

namespace bitexact {
namespace cpu {
namespace detail {

/// Whether Gen has a SIMD lane kernel on Arch (Philox4x64 needs a 64x64->128 multiply that no
/// target ISA has, so it runs the scalar path everywhere).
template <class Gen, class Arch>
struct has_simd_blocks
    : std::integral_constant<bool, !std::is_same<Arch, scalar_arch>::value &&
                                       !std::is_same<Gen, philox4x64_10>::value> {};

/// Writes the words of blocks [b0, b0 + nb) (nb * W words) to out.
template <class Gen, class Arch, bool Simd = has_simd_blocks<Gen, Arch>::value>
struct block_kernel {
  static void run(const stream<Gen>& s, std::uint64_t b0, std::uint64_t nb, std::uint32_t* out) {
    constexpr unsigned W = stream<Gen>::words_per_block;
    for (std::uint64_t b = 0; b < nb; ++b) {
      const auto w = s.block(b0 + b);
      for (unsigned j = 0; j < W; ++j) out[b * W + j] = w[j];
    }
  }
};

template <class Gen, class Arch>
struct block_kernel<Gen, Arch, true> {
  using word = typename Gen::word_type;
  using V = xsimd::batch<word, Arch>;
  static constexpr unsigned L = static_cast<unsigned>(V::size);
  static constexpr unsigned C = stream_traits<Gen>::ctr_words;
  static constexpr unsigned W = stream<Gen>::words_per_block;

  /// Counter lanes for blocks b .. b + L - 1.
  static void counters(std::uint64_t b, const V& iota, V (&x)[C]) {
    if constexpr (sizeof(word) == 4) {
      const V base(static_cast<word>(b));
      x[0] = base + iota;
      // Carry into the high counter word where lo32(b) + j wrapped.
      const V carry = xsimd::select(x[0] < base, V(1u), V(0u));
      x[1] = V(static_cast<word>(b >> 32)) + carry;
      for (unsigned c = 2; c < C; ++c) x[c] = V(0u);
    } else {
      x[0] = V(static_cast<word>(b)) + iota;
      for (unsigned c = 1; c < C; ++c) x[c] = V(static_cast<word>(0));
    }
  }

  /// Stores L blocks held in x (lane j = block j) to out.
  static void store(const V (&x)[C], std::uint32_t* o) {
    if constexpr (sizeof(word) == 4 && C == 4) {
      store_blocks4(x, o);
    } else {
      alignas(64) word tmp[C][L];
      for (unsigned c = 0; c < C; ++c) x[c].store_aligned(tmp[c]);
      for (unsigned j = 0; j < L; ++j) {
        for (unsigned c = 0; c < C; ++c) {
          if constexpr (sizeof(word) == 4) {
            o[j * W + c] = tmp[c][j];
          } else {
            o[j * W + 2 * c] = static_cast<std::uint32_t>(tmp[c][j]);
            o[j * W + 2 * c + 1] = static_cast<std::uint32_t>(tmp[c][j] >> 32);
          }
        }
      }
    }
  }

  /// Writes nb blocks: block i has the counter lanes set_counters(i, iota, x) fills for
  /// blocks i .. i + L - 1, or scalar_block(i) (its words) for the tail.
  template <class SetCounters, class ScalarBlock>
  static void run_lanes(const typename Gen::key_type& key, std::uint64_t nb, std::uint32_t* out,
                        SetCounters set_counters, ScalarBlock scalar_block) {
    alignas(64) word iota_arr[L];
    for (unsigned j = 0; j < L; ++j) iota_arr[j] = static_cast<word>(j);
    const V iota = V::load_aligned(iota_arr);
    std::uint64_t i = 0;
    // Two independent groups of L blocks per step (lane_x2), then one group, then scalar.
    for (; i + 2 * L <= nb; i += 2 * L) {
      V x[C], y[C];
      set_counters(i, iota, x);
      set_counters(i + L, iota, y);
      lane_x2<V> xy[C];
      for (unsigned c = 0; c < C; ++c) xy[c] = lane_x2<V>(x[c], y[c]);
      core::lane_generator<Gen>::apply(xy, key);
      for (unsigned c = 0; c < C; ++c) {
        x[c] = xy[c].a;
        y[c] = xy[c].b;
      }
      store(x, out + i * W);
      store(y, out + (i + L) * W);
    }
    for (; i + L <= nb; i += L) {
      V x[C];
      set_counters(i, iota, x);
      core::lane_generator<Gen>::apply(x, key);
      store(x, out + i * W);
    }
    for (; i < nb; ++i) {
      const auto w = scalar_block(i);
      for (unsigned j = 0; j < W; ++j) out[i * W + j] = w[j];
    }
  }

  static void run(const stream<Gen>& s, std::uint64_t b0, std::uint64_t nb, std::uint32_t* out) {
    run_lanes(
        s.key(), nb, out, [b0](std::uint64_t i, const V& iota, V(&x)[C]) { counters(b0 + i, iota, x); },
        [&s, b0](std::uint64_t i) { return s.block(b0 + i); });
  }
};

/// Philox4x32-10 blocks with counters {lo32(k), hi32(k), t + j, 0} for j in [0, nt): one block
/// index across consecutive subsequences, the layout of cuRAND's host generator
/// (core/curand_philox.hpp). Requires t + nt <= 2^32. Writes 4 * nt words.
template <class Arch>
void philox_subsequence_blocks(const philox4x32_10::key_type& key, std::uint64_t k, std::uint32_t t,
                               std::uint64_t nt, std::uint32_t* out) {
  using ctr = philox4x32_10::ctr_type;
  const auto scalar_block = [&](std::uint64_t i) {
    return philox4x32_10{}(ctr{static_cast<std::uint32_t>(k), static_cast<std::uint32_t>(k >> 32),
                               static_cast<std::uint32_t>(t + i), 0u},
                           key);
  };
  if constexpr (has_simd_blocks<philox4x32_10, Arch>::value) {
    using K = block_kernel<philox4x32_10, Arch>;
    using V = typename K::V;
    K::run_lanes(
        key, nt, out,
        [&](std::uint64_t i, const V& iota, V(&x)[4]) {
          x[0] = V(static_cast<std::uint32_t>(k));
          x[1] = V(static_cast<std::uint32_t>(k >> 32));
          x[2] = V(static_cast<std::uint32_t>(t + i)) + iota;
          x[3] = V(0u);
        },
        scalar_block);
  } else {
    for (std::uint64_t i = 0; i < nt; ++i) {
      const ctr w = scalar_block(i);
      for (unsigned j = 0; j < 4; ++j) out[4 * i + j] = w[j];
    }
  }
}

/// Words [first, first + n) of the stream.
template <class Gen, class Arch>
void fill_words(const stream<Gen>& s, std::uint64_t first, std::uint32_t* out, std::size_t n) {
  constexpr unsigned W = stream<Gen>::words_per_block;
  std::size_t k = 0;
  std::uint64_t b = first / W;
  const unsigned head = static_cast<unsigned>(first % W);
  if (head != 0 && n > 0) {
    const auto w = s.block(b);
    for (unsigned j = head; j < W && k < n; ++j) out[k++] = w[j];
    ++b;
  }
  const std::uint64_t full = (n - k) / W;
  if (full > 0) {
    block_kernel<Gen, Arch>::run(s, b, full, out + k);
    k += static_cast<std::size_t>(full) * W;
    b += full;
  }
  if (k < n) {
    const auto w = s.block(b);
    for (unsigned j = 0; k < n; ++j) out[k++] = w[j];
  }
}

/// Values are produced through an L1-resident buffer of words, then converted by core.
constexpr std::size_t buffer_words = 2048;

template <class Gen, class Arch>
void fill_uniform(const stream<Gen>& s, std::uint64_t first, float* out, std::size_t n) {
  alignas(64) std::uint32_t buf[buffer_words];
  for (std::size_t k = 0; k < n; k += buffer_words) {
    const std::size_t m = n - k < buffer_words ? n - k : buffer_words;
    fill_words<Gen, Arch>(s, first + k, buf, m);
    for (std::size_t i = 0; i < m; ++i) out[k + i] = core::uniform_float(buf[i]);
  }
}

template <class Gen, class Arch>
void fill_uniform(const stream<Gen>& s, std::uint64_t first, double* out, std::size_t n) {
  alignas(64) std::uint32_t buf[buffer_words];
  constexpr std::size_t per = buffer_words / 2;
  for (std::size_t k = 0; k < n; k += per) {
    const std::size_t m = n - k < per ? n - k : per;
    fill_words<Gen, Arch>(s, 2 * (first + k), buf, 2 * m);
    for (std::size_t i = 0; i < m; ++i) out[k + i] = core::uniform_double(buf[2 * i], buf[2 * i + 1]);
  }
}

/// Normal values [first, first + n): pairs m covering them, each from 2 (float) or 4 (double)
/// words, written where they fall inside the slice.
template <class Gen, class Arch, class T>
void fill_normal(const stream<Gen>& s, std::uint64_t first, T* out, std::size_t n) {
  constexpr unsigned wpp = sizeof(T) == 4 ? 2 : 4;  // words per pair
  alignas(64) std::uint32_t buf[buffer_words];
  constexpr std::uint64_t pairs_per_buf = buffer_words / wpp;
  if (n == 0) return;
  const std::uint64_t last = first + n;  // exclusive
  const std::uint64_t m0 = first / 2, m1 = (last - 1) / 2 + 1;
  for (std::uint64_t m = m0; m < m1; m += pairs_per_buf) {
    const std::uint64_t np = m1 - m < pairs_per_buf ? m1 - m : pairs_per_buf;
    fill_words<Gen, Arch>(s, wpp * m, buf, static_cast<std::size_t>(wpp * np));
    for (std::uint64_t p = 0; p < np; ++p) {
      T z[2];
      if constexpr (sizeof(T) == 4) {
        core::normal_float_pair(buf[2 * p], buf[2 * p + 1], z[0], z[1]);
      } else {
        core::normal_double_pair(buf[4 * p], buf[4 * p + 1], buf[4 * p + 2], buf[4 * p + 3], z[0], z[1]);
      }
      const std::uint64_t j = 2 * (m + p);
      if (j >= first && j < last) out[j - first] = z[0];
      if (j + 1 >= first && j + 1 < last) out[j + 1 - first] = z[1];
    }
  }
}

template <class Gen, class Arch>
void fill_bernoulli(const stream<Gen>& s, std::uint64_t first, std::uint8_t* out, std::size_t n,
                    std::uint64_t threshold) {
  alignas(64) std::uint32_t buf[buffer_words];
  for (std::size_t k = 0; k < n; k += buffer_words) {
    const std::size_t m = n - k < buffer_words ? n - k : buffer_words;
    fill_words<Gen, Arch>(s, first + k, buf, m);
    for (std::size_t i = 0; i < m; ++i) out[k + i] = core::bernoulli(buf[i], threshold);
  }
}

template <class Gen, class Arch>
void fill_uniform_int(const stream<Gen>& s, std::uint64_t first, std::uint32_t* out, std::size_t n,
                      std::uint32_t bound) {
  alignas(64) std::uint32_t buf[buffer_words];
  for (std::size_t k = 0; k < n; k += buffer_words) {
    const std::size_t m = n - k < buffer_words ? n - k : buffer_words;
    fill_words<Gen, Arch>(s, first + k, buf, m);
    for (std::size_t i = 0; i < m; ++i) {
      std::uint32_t v = 0;
      out[k + i] = core::lemire32(buf[i], bound, v) ? v : core::uniform_int32_retry(s, first + k + i, bound);
    }
  }
}

template <class Gen, class Arch>
void fill_uniform_int(const stream<Gen>& s, std::uint64_t first, std::uint64_t* out, std::size_t n,
                      std::uint64_t bound) {
  alignas(64) std::uint32_t buf[buffer_words];
  constexpr std::size_t per = buffer_words / 2;
  for (std::size_t k = 0; k < n; k += per) {
    const std::size_t m = n - k < per ? n - k : per;
    fill_words<Gen, Arch>(s, 2 * (first + k), buf, 2 * m);
    for (std::size_t i = 0; i < m; ++i) {
      const std::uint64_t w = static_cast<std::uint64_t>(buf[2 * i]) | (static_cast<std::uint64_t>(buf[2 * i + 1]) << 32);
      std::uint64_t v = 0;
      out[k + i] = core::lemire64(w, bound, v) ? v : core::uniform_int64_retry(s, first + k + i, bound);
    }
  }
}

}  // namespace detail
}  // namespace cpu
}  // namespace bitexact
