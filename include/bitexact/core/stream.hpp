// bitexact/core/stream.hpp - a keyed, random-access stream of 32-bit words.
//
// Canonical order (random_order_version 1). For a generator Gen with key k, word i of the
// stream (i in [0, 2^64)) is:
//
//   block b = i / W, position p = i % W, where W = words_per_block (32-bit words per call);
//   counter(b) = {lo32(b), hi32(b), 0, ...}  for generators with 32-bit counter words,
//                {b, 0, ...}                 for generators with 64-bit counter words;
//   out = Gen{}(counter(b), k);
//   word = out[p]                       (32-bit words), or
//          lo32(out[p/2]) if p even, hi32(out[p/2]) if p odd   (64-bit words).
//
// The counter is a function of the element index alone, never of a thread or block id, so any
// partition of [0, n) among threads, SIMD lanes or CUDA blocks produces the same words.
#pragma once
#include <array>
#include <cstdint>

#include "config.hpp"
#include "keys.hpp"
#include "philox.hpp"
#include "threefry.hpp"

namespace bitexact {

template <class Gen>
struct stream_traits {
  using word_type = typename Gen::word_type;
  static constexpr unsigned ctr_words = static_cast<unsigned>(std::tuple_size<typename Gen::ctr_type>::value);
  /// 32-bit output words produced by one generator call.
  static constexpr unsigned words_per_block = ctr_words * static_cast<unsigned>(sizeof(word_type) / 4);

  BITEXACT_HD static constexpr typename Gen::ctr_type counter(std::uint64_t block) {
    typename Gen::ctr_type c{};
    if constexpr (sizeof(word_type) == 4) {
      c[0] = static_cast<std::uint32_t>(block);
      c[1] = static_cast<std::uint32_t>(block >> 32);
    } else {
      c[0] = block;
    }
    return c;
  }
};

/// A (generator, key) pair: an addressable sequence of 2^64 32-bit words.
template <class Gen = philox4x32_10>
class stream {
 public:
  using generator_type = Gen;
  using key_type = typename Gen::key_type;
  using traits = stream_traits<Gen>;
  static constexpr unsigned words_per_block = traits::words_per_block;
  using block_type = std::array<std::uint32_t, words_per_block>;

  BITEXACT_HD constexpr explicit stream(key_type k) : key_(k) {}

  /// The stream for (seed, step, rank, tag), through derive_key (core/keys.hpp).
  BITEXACT_HD static constexpr stream from_seed(std::uint64_t seed, std::uint64_t step = 0,
                                                std::uint32_t rank = 0, std::uint32_t tag = 0) {
    return stream(derive_key<Gen>(seed, step, rank, tag));
  }

  BITEXACT_HD constexpr key_type key() const { return key_; }

  /// The W words of block b.
  BITEXACT_HD constexpr block_type block(std::uint64_t b) const {
    const auto out = Gen{}(traits::counter(b), key_);
    block_type w{};
    if constexpr (sizeof(typename Gen::word_type) == 4) {
      for (unsigned j = 0; j < words_per_block; ++j) w[j] = out[j];
    } else {
      for (unsigned j = 0; j < traits::ctr_words; ++j) {
        w[2 * j] = static_cast<std::uint32_t>(out[j]);
        w[2 * j + 1] = static_cast<std::uint32_t>(out[j] >> 32);
      }
    }
    return w;
  }

  /// Word i of the stream.
  BITEXACT_HD constexpr std::uint32_t word(std::uint64_t i) const {
    return block(i / words_per_block)[i % words_per_block];
  }

 private:
  key_type key_;
};

}  // namespace bitexact
