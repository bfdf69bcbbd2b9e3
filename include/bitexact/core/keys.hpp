// bitexact/core/keys.hpp - keys are derived, never stored.
//
// A key is a pure function of (seed, step, rank, tag):
//
//   m = philox4x32_10(ctr = {lo32(step), hi32(step), rank, tag}, key = {lo32(seed), hi32(seed)})
//
// and each generator takes its key words from m (and, for 256-bit keys, from a second block
// m' computed the same way with the seed complemented):
//
//   philox4x32_10, threefry2x32_20 : {m0, m1}
//   threefry4x32_20                : {m0, m1, m2, m3}
//   philox4x64_10                  : {m0 | m1<<32, m2 | m3<<32}
//   threefry4x64_20                : {m0 | m1<<32, m2 | m3<<32, m'0 | m'1<<32, m'2 | m'3<<32}
//
// Philox is a bijection of the counter for a fixed key, so for one seed, distinct
// (step, rank, tag) triples give distinct 128-bit m. Resuming at step N needs no saved state:
// derive the key for step N again. Golden values in tests/random_test.cpp pin this function.
#pragma once
#include <cstdint>

#include "config.hpp"
#include "philox.hpp"
#include "threefry.hpp"

namespace bitexact {

/// 32-bit FNV-1a of a NUL-terminated string, for naming tags ("dropout.layer3").
BITEXACT_HD constexpr std::uint32_t tag_of(const char* s) {
  std::uint32_t h = 0x811C9DC5u;
  for (; *s != '\0'; ++s) {
    h ^= static_cast<std::uint8_t>(*s);
    h *= 0x01000193u;
  }
  return h;
}

namespace core {
namespace detail {

BITEXACT_HD constexpr philox4x32_10::ctr_type key_material(std::uint64_t seed, std::uint64_t step,
                                                           std::uint32_t rank,
                                                           std::uint32_t tag) {
  return philox4x32_10{}(
      {static_cast<std::uint32_t>(step), static_cast<std::uint32_t>(step >> 32), rank, tag},
      {static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)});
}

BITEXACT_HD constexpr std::uint64_t join64(std::uint32_t lo, std::uint32_t hi) {
  return static_cast<std::uint64_t>(lo) | (static_cast<std::uint64_t>(hi) << 32);
}

template <class Gen>
struct key_from_material;

template <>
struct key_from_material<philox4x32_10> {
  BITEXACT_HD static constexpr philox4x32_10::key_type make(std::uint64_t seed, std::uint64_t step,
                                                            std::uint32_t rank, std::uint32_t tag) {
    const auto m = key_material(seed, step, rank, tag);
    return {m[0], m[1]};
  }
};
template <>
struct key_from_material<threefry2x32_20> {
  BITEXACT_HD static constexpr threefry2x32_20::key_type make(std::uint64_t seed,
                                                              std::uint64_t step,
                                                              std::uint32_t rank,
                                                              std::uint32_t tag) {
    const auto m = key_material(seed, step, rank, tag);
    return {m[0], m[1]};
  }
};
template <>
struct key_from_material<threefry4x32_20> {
  BITEXACT_HD static constexpr threefry4x32_20::key_type make(std::uint64_t seed,
                                                              std::uint64_t step,
                                                              std::uint32_t rank,
                                                              std::uint32_t tag) {
    const auto m = key_material(seed, step, rank, tag);
    return {m[0], m[1], m[2], m[3]};
  }
};
template <>
struct key_from_material<philox4x64_10> {
  BITEXACT_HD static constexpr philox4x64_10::key_type make(std::uint64_t seed, std::uint64_t step,
                                                            std::uint32_t rank, std::uint32_t tag) {
    const auto m = key_material(seed, step, rank, tag);
    return {join64(m[0], m[1]), join64(m[2], m[3])};
  }
};
template <>
struct key_from_material<threefry4x64_20> {
  BITEXACT_HD static constexpr threefry4x64_20::key_type make(std::uint64_t seed,
                                                              std::uint64_t step,
                                                              std::uint32_t rank,
                                                              std::uint32_t tag) {
    const auto m = key_material(seed, step, rank, tag);
    const auto n = key_material(~seed, step, rank, tag);
    return {join64(m[0], m[1]), join64(m[2], m[3]), join64(n[0], n[1]), join64(n[2], n[3])};
  }
};

}  // namespace detail
}  // namespace core

/// The key of generator Gen for (seed, step, rank, tag); see the derivation above.
template <class Gen>
BITEXACT_HD constexpr typename Gen::key_type derive_key(std::uint64_t seed, std::uint64_t step = 0,
                                                        std::uint32_t rank = 0,
                                                        std::uint32_t tag = 0) {
  return core::detail::key_from_material<Gen>::make(seed, step, rank, tag);
}

}  // namespace bitexact
