// bitexact/core/lane_generator.hpp - every generator applied to counter lanes.
//
// lane_generator<Gen>::apply(x, key) runs Gen on x[0..ctr_words) where each x[i] is a lane
// type V (one scalar word, or a SIMD batch holding that word of several counters). The scalar
// generators in philox.hpp / threefry.hpp call the same round templates, so a SIMD kernel built
// on this produces the scalar generator's bits by construction.
#pragma once
#include "philox.hpp"
#include "threefry.hpp"

namespace bitexact {
namespace core {

template <class Gen>
struct lane_generator;

template <>
struct lane_generator<philox4x32_10> {
  template <class V>
  BITEXACT_HD static constexpr void apply(V (&x)[4], const philox4x32_10::key_type& k) {
    philox4_rounds<std::uint32_t, 10>(x[0], x[1], x[2], x[3], k[0], k[1]);
  }
};
template <>
struct lane_generator<philox4x64_10> {
  template <class V>
  BITEXACT_HD static constexpr void apply(V (&x)[4], const philox4x64_10::key_type& k) {
    philox4_rounds<std::uint64_t, 10>(x[0], x[1], x[2], x[3], k[0], k[1]);
  }
};
template <>
struct lane_generator<threefry2x32_20> {
  template <class V>
  BITEXACT_HD static constexpr void apply(V (&x)[2], const threefry2x32_20::key_type& k) {
    threefry2_rounds<std::uint32_t, 20>(x[0], x[1], k[0], k[1]);
  }
};
template <>
struct lane_generator<threefry4x32_20> {
  template <class V>
  BITEXACT_HD static constexpr void apply(V (&x)[4], const threefry4x32_20::key_type& k) {
    const std::uint32_t kk[4] = {k[0], k[1], k[2], k[3]};
    threefry4_rounds<std::uint32_t, 20, detail::threefry4x32_rot>(x[0], x[1], x[2], x[3], kk);
  }
};
template <>
struct lane_generator<threefry4x64_20> {
  template <class V>
  BITEXACT_HD static constexpr void apply(V (&x)[4], const threefry4x64_20::key_type& k) {
    const std::uint64_t kk[4] = {k[0], k[1], k[2], k[3]};
    threefry4_rounds<std::uint64_t, 20, detail::threefry4x64_rot>(x[0], x[1], x[2], x[3], kk);
  }
};

}  // namespace core
}  // namespace bitexact
