// bitexact/cpu/simd_lanes.hpp - core::lane_ops for xsimd batches.
//
// The generators in core/ are templates over a lane type; this header lets a lane be an
// xsimd::batch, one functor per architecture (the only ISA-specific piece is Philox's
// 32x32 -> 64-bit multiply). Everything else (add, xor, shifts) is xsimd's portable operators.
#pragma once
#include <cstdint>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "../core/lanes.hpp"

namespace bitexact {
namespace cpu {
namespace detail {
template <class V>
struct lane_x2;
}  // namespace detail
}  // namespace cpu
namespace core {

template <class A>
struct lane_ops<xsimd::batch<std::uint32_t, A>> {
  using V = xsimd::batch<std::uint32_t, A>;
  using word_type = std::uint32_t;

  /// Per lane: returns lo32(m * x) and writes hi32(m * x).
  static inline V mulhilo(std::uint32_t m, const V& x, V& hi) {
#if XSIMD_WITH_AVX512F
    if constexpr (std::is_base_of<xsimd::avx512f, A>::value) {
      const __m512i mv = _mm512_set1_epi32(static_cast<int>(m));
      const __m512i xv = x;
      const __m512i pe = _mm512_mul_epu32(xv, mv);                         // even lanes
      const __m512i po = _mm512_mul_epu32(_mm512_srli_epi64(xv, 32), mv);  // odd lanes
      hi = V(_mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(pe, 32), po));
      return V(_mm512_mullo_epi32(xv, mv));
    } else
#endif
#if XSIMD_WITH_AVX2
    if constexpr (std::is_base_of<xsimd::avx2, A>::value) {
      const __m256i mv = _mm256_set1_epi32(static_cast<int>(m));
      const __m256i xv = x;
      const __m256i pe = _mm256_mul_epu32(xv, mv);
      const __m256i po = _mm256_mul_epu32(_mm256_srli_epi64(xv, 32), mv);
      hi = V(_mm256_blend_epi32(_mm256_srli_epi64(pe, 32), po, 0xAA));
      return V(_mm256_blend_epi32(pe, _mm256_slli_epi64(po, 32), 0xAA));
    } else
#endif
#if XSIMD_WITH_SSE2
    if constexpr (std::is_base_of<xsimd::sse2, A>::value) {
      const __m128i mv = _mm_set1_epi32(static_cast<int>(m));
      const __m128i xv = x;
      const __m128i pe = _mm_mul_epu32(xv, mv);
      const __m128i po = _mm_mul_epu32(_mm_srli_epi64(xv, 32), mv);
      const __m128i lo_mask = _mm_set_epi32(0, -1, 0, -1);
      hi = V(_mm_or_si128(_mm_and_si128(_mm_srli_epi64(pe, 32), lo_mask),
                          _mm_andnot_si128(lo_mask, po)));
      return V(_mm_or_si128(_mm_and_si128(pe, lo_mask), _mm_slli_epi64(po, 32)));
    } else
#endif
#if XSIMD_WITH_NEON64
    if constexpr (std::is_base_of<xsimd::neon64, A>::value) {
      const uint32x4_t xv = x;
      const uint32x2_t mv = vdup_n_u32(m);
      const uint64x2_t p01 = vmull_u32(vget_low_u32(xv), mv);
      const uint64x2_t p23 = vmull_u32(vget_high_u32(xv), mv);
      const uint32x4_t a = vreinterpretq_u32_u64(p01), b = vreinterpretq_u32_u64(p23);
      hi = V(vuzp2q_u32(a, b));
      return V(vuzp1q_u32(a, b));
    } else
#endif
    {
      static_assert(sizeof(A) == 0, "bitexact: no mulhilo for this architecture");
      return x;
    }
  }
};

template <class V>
struct lane_ops<cpu::detail::lane_x2<V>> {
  using L = cpu::detail::lane_x2<V>;
  template <class W>
  static inline L mulhilo(W m, const L& x, L& hi) {
    L lo;
    lo.a = lane_ops<V>::mulhilo(m, x.a, hi.a);
    lo.b = lane_ops<V>::mulhilo(m, x.b, hi.b);
    return lo;
  }
};

}  // namespace core

namespace cpu {
namespace detail {

/// Two independent batches processed as one lane: the round function's dependency chain is
/// long (multiply -> blend -> xor per round), so interleaving two chains fills the pipeline.
template <class V>
struct lane_x2 {
  V a, b;
  lane_x2() = default;
  lane_x2(V x, V y) : a(x), b(y) {}
  explicit lane_x2(typename V::value_type s) : a(s), b(s) {}
  friend lane_x2 operator+(const lane_x2& x, const lane_x2& y) { return {x.a + y.a, x.b + y.b}; }
  friend lane_x2 operator^(const lane_x2& x, const lane_x2& y) { return {x.a ^ y.a, x.b ^ y.b}; }
  friend lane_x2 operator|(const lane_x2& x, const lane_x2& y) { return {x.a | y.a, x.b | y.b}; }
  friend lane_x2 operator<<(const lane_x2& x, int r) { return {x.a << r, x.b << r}; }
  friend lane_x2 operator>>(const lane_x2& x, int r) { return {x.a >> r, x.b >> r}; }
};

/// Stores four batches x[c] (lane j = word c of counter block j) as consecutive 4-word blocks:
/// out[4 j + c] = x[c][j]. One functor per Arch; the generic one goes through memory.
template <class A>
inline void store_blocks4(const xsimd::batch<std::uint32_t, A> (&x)[4], std::uint32_t* out) {
  using V = xsimd::batch<std::uint32_t, A>;
#if XSIMD_WITH_SSE2
  if constexpr (std::is_base_of<xsimd::sse2, A>::value || std::is_base_of<xsimd::avx2, A>::value ||
                std::is_base_of<xsimd::avx512f, A>::value) {
    // In every 128-bit lane k: u_m = block 4k+m (for 128-bit registers k = 0 only).
    auto lo32 = [](auto a, auto b) {
      if constexpr (sizeof(a) == 64) return _mm512_unpacklo_epi32(a, b);
      else if constexpr (sizeof(a) == 32) return _mm256_unpacklo_epi32(a, b);
      else return _mm_unpacklo_epi32(a, b);
    };
    auto hi32 = [](auto a, auto b) {
      if constexpr (sizeof(a) == 64) return _mm512_unpackhi_epi32(a, b);
      else if constexpr (sizeof(a) == 32) return _mm256_unpackhi_epi32(a, b);
      else return _mm_unpackhi_epi32(a, b);
    };
    auto lo64 = [](auto a, auto b) {
      if constexpr (sizeof(a) == 64) return _mm512_unpacklo_epi64(a, b);
      else if constexpr (sizeof(a) == 32) return _mm256_unpacklo_epi64(a, b);
      else return _mm_unpacklo_epi64(a, b);
    };
    auto hi64 = [](auto a, auto b) {
      if constexpr (sizeof(a) == 64) return _mm512_unpackhi_epi64(a, b);
      else if constexpr (sizeof(a) == 32) return _mm256_unpackhi_epi64(a, b);
      else return _mm_unpackhi_epi64(a, b);
    };
    const auto r0 = static_cast<typename V::register_type>(x[0]);
    const auto r1 = static_cast<typename V::register_type>(x[1]);
    const auto r2 = static_cast<typename V::register_type>(x[2]);
    const auto r3 = static_cast<typename V::register_type>(x[3]);
    const auto t0 = lo32(r0, r1), t1 = hi32(r0, r1), t2 = lo32(r2, r3), t3 = hi32(r2, r3);
    const auto u0 = lo64(t0, t2), u1 = hi64(t0, t2), u2 = lo64(t1, t3), u3 = hi64(t1, t3);
    if constexpr (sizeof(r0) == 64) {
#if XSIMD_WITH_AVX512F
      const __m512i v0 = _mm512_shuffle_i32x4(u0, u1, 0x44), v1 = _mm512_shuffle_i32x4(u2, u3, 0x44);
      const __m512i v2 = _mm512_shuffle_i32x4(u0, u1, 0xEE), v3 = _mm512_shuffle_i32x4(u2, u3, 0xEE);
      _mm512_storeu_si512(out + 0, _mm512_shuffle_i32x4(v0, v1, 0x88));
      _mm512_storeu_si512(out + 16, _mm512_shuffle_i32x4(v0, v1, 0xDD));
      _mm512_storeu_si512(out + 32, _mm512_shuffle_i32x4(v2, v3, 0x88));
      _mm512_storeu_si512(out + 48, _mm512_shuffle_i32x4(v2, v3, 0xDD));
#endif
    } else if constexpr (sizeof(r0) == 32) {
#if XSIMD_WITH_AVX2
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 0), _mm256_permute2x128_si256(u0, u1, 0x20));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 8), _mm256_permute2x128_si256(u2, u3, 0x20));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 16), _mm256_permute2x128_si256(u0, u1, 0x31));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 24), _mm256_permute2x128_si256(u2, u3, 0x31));
#endif
    } else {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 0), u0);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 4), u1);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 8), u2);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 12), u3);
    }
    return;
  }
#endif
  constexpr std::size_t L = V::size;
  alignas(64) std::uint32_t tmp[4][L];
  for (unsigned c = 0; c < 4; ++c) x[c].store_aligned(tmp[c]);
  for (std::size_t j = 0; j < L; ++j)
    for (unsigned c = 0; c < 4; ++c) out[4 * j + c] = tmp[c][j];
}

}  // namespace detail
}  // namespace cpu
}  // namespace bitexact
