// bitexact/core/curand_philox.hpp - bit-exact reproduction of cuRAND's Philox4_32_10.
//
// Header-only, no CUDA runtime dependency; every function is BITEXACT_HD and usable from plain
// host C++, SIMD kernels and CUDA device code. Verified against libcurand (CUDA 13.0, cuRAND
// 10.4.0) in tests/curand_compat_test.cpp.
//
// ============================================================================================
// The mapping (found empirically against curandCreateGeneratorHost + read from curand_kernel.h)
// ============================================================================================
//
// Notation: B(k, t) = philox4x32_10(ctr = {lo32(k), hi32(k), lo32(t), hi32(t)},
//                                   key = {lo32(seed), hi32(seed)})
// i.e. the low 64 counter bits are the block index k inside a subsequence and the high 64 bits
// are the subsequence t. The key is the 64-bit seed split into two words, nothing else (no
// hashing, unlike cuRAND's XORWOW). Lanes of a block are x, y, z, w = 0, 1, 2, 3.
//
// Device API (curand_kernel.h, all of it mirrored below by philox4_32_10_state):
//   curand_init(seed, subsequence, offset): ctr = {0, 0, lo32(sub), hi32(sub)}, then
//   skipahead(offset): lane position = offset % 4, ctr.xy += offset / 4, output = B(ctr).
//   So the stream of subsequence t is B(0,t).x, .y, .z, .w, B(1,t).x, ... and offset is a
//   position in 32-bit words. curand() returns output[lane] and, after lane 3, increments the
//   counter and regenerates the block (the block is computed eagerly, one ahead).
//   curand4() returns the next four words of the stream *from the current lane*, spanning two
//   blocks when the lane is not 0 (an odd number of curand() calls before curand4 shifts it),
//   and leaves the lane unchanged. curand_uniform4 = curand4 + the float conversion.
//   curand_uniform2_double = curand4 then hq(x, y), hq(z, w). curand_uniform_double uses ONE word.
//   Philox_State_Incr(n) has a carry quirk which we reproduce: the carry from ctr.x into ctr.y
//   is computed with 32-bit nhi, so it is lost when hi32(n) == 0xFFFFFFFF, and the carry into
//   ctr.z is taken only if the new ctr.y < nhi.
//
// Host generator (curandCreateGeneratorHost(CURAND_RNG_PSEUDO_PHILOX4_32_10), default
// ordering, curandSetPseudoRandomGeneratorSeed(seed), curandSetGeneratorOffset(o)). It behaves
// like a GPU launch of T = 65536 threads; thread t owns subsequence t. Let R = 4*T = 262144,
// o_r = o / R, r0 = o % R, t0 = r0 / 4, and for output element i: m = r0 + i,
// q = m / R (round), rem = m % R, t = rem / 4, s = rem % 4.
//   curandGenerate (uint32), curandGenerateUniform (float): out[i] = B(o_r + q, t)[s]
//     (equivalently: global index e = o + i, evaluated without 64-bit wrap-around;
//      block = e / R, subsequence = (e % R) / 4, lane = e % 4). Each counter block gives four
//     consecutive outputs; the offset is a plain shift of this stream.
//   curandGenerateUniformDouble: each thread makes 4 doubles per round from two consecutive
//     blocks of its subsequence, using words (x,y), (z,w), (x,y), (z,w). Word position inside
//     subsequence t: P = 4*o_r + 8*q + 2*s - (t < t0 ? 4 : 0), out[i] = hq(B(P/4, t)[P%4],
//     B(P/4, t)[P%4 + 1]). With o == 0 this is block 2q + s/2. NOTE: the offset is NOT a shift
//     of the double stream: a whole round of offset (R doubles) advances every thread by one
//     block (4 words) but a round of output consumes two blocks, and threads before t0 are
//     skipped by 4 words (not 8). This is what cuRAND does (verified for offsets up to
//     2^64-1). Consequently a generator continued after a double call that crosses a round
//     (observed: o = 7, n = 262147) differs from a fresh one at offset o + n (for n = 1, 3, 5
//     they agree). Our stateless functions reproduce the fresh-generator output.
//   Any n is accepted (odd n, n not a multiple of 4): the output is a prefix, nothing is padded;
//   A uint32 call advances the generator's offset by exactly n (checked for n = 1, 3, 5, 262147).
//   The index arithmetic is done without wrap-around (o + i may exceed 2^64: cuRAND then keeps
//   counting blocks, it does not wrap to offset 0).
//
// Conversions (CURAND_2POW32_INV etc. are exact powers of two):
//   float  uniform(x)     = float(x) * 2^-32f + 2^-33f        in (0, 1]  (1.0f for x >= 2^32-128)
//       float(x) rounds to nearest even (24 bits), the product by 2^-32 is exact (no underflow),
//       so a fused multiply-add computes the same exact value and rounds it once: FMA
//       contraction (nvcc default --fmad=true) cannot change the result.
//   double uniform_double(x) = double(x) * 2^-32 + 2^-32 = (x + 1) / 2^32, exact (33 bits).
//   double hq(x, y)      = double(z) * 2^-53 + 2^-54,  z = x ^ (uint64(y) << 21)  (z < 2^53,
//       exact in double). z*2^-53 is exact, the sum (2z+1)*2^-54 needs 54 bits when z >= 2^52 and
//       is rounded once (ties to even); FMA rounds the same exact value once: same bits.
//       Result in (0, 1]. Used by curandGenerateUniformDouble and curand_uniform2_double.
// ============================================================================================
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <stdexcept>

#include "config.hpp"
#include "philox.hpp"

namespace bitexact {
namespace curand_compat {

/// Number of subsequences (emulated GPU threads) the host generator interleaves.
inline constexpr std::uint64_t host_threads = 65536;
/// 32-bit outputs per round of the host generator (one block per thread).
inline constexpr std::uint64_t host_round = 4 * host_threads;

namespace detail {

using ctr_type = philox4x32_10::ctr_type;
using key_type = philox4x32_10::key_type;

/// cuRAND's key: the seed split into low and high words.
BITEXACT_HD constexpr key_type host_key(std::uint64_t seed) {
  return key_type{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)};
}

/// Counter of block `block` of subsequence `subsequence`.
BITEXACT_HD constexpr ctr_type make_counter(std::uint64_t block, std::uint64_t subsequence) {
  return ctr_type{static_cast<std::uint32_t>(block), static_cast<std::uint32_t>(block >> 32),
                  static_cast<std::uint32_t>(subsequence),
                  static_cast<std::uint32_t>(subsequence >> 32)};
}

/// The four words B(block, subsequence).
BITEXACT_HD constexpr ctr_type philox_block(key_type key, std::uint64_t block,
                                            std::uint64_t subsequence) {
  return philox4x32_10{}(make_counter(block, subsequence), key);
}

/// Where one output of the host generator comes from: words lane (and lane+1 for doubles) of
/// block `block` of subsequence `subsequence`.
struct word_address {
  std::uint64_t block;
  std::uint64_t subsequence;
  unsigned lane;
};

/// Element i of curandGenerate / curandGenerateUniform for generator offset `offset`.
/// Elements i with (offset + i) % 4 == 0 start a block; the next three use lanes 1..3.
BITEXACT_HD constexpr word_address host_u32_address(std::uint64_t offset, std::uint64_t i) {
  const std::uint64_t m = offset % host_round + i;  // no overflow for any real n
  const std::uint64_t rem = m % host_round;
  return word_address{offset / host_round + m / host_round, rem / 4,
                      static_cast<unsigned>(rem % 4)};
}

/// Element i of curandGenerateUniformDouble for generator offset `offset`: words lane and
/// lane + 1 (lane is 0 or 2). Elements i with (offset + i) % 4 == 0 start a group of four that
/// uses blocks `block` (lanes 0-1, 2-3) and `block + 1` (lanes 0-1, 2-3) of one subsequence.
BITEXACT_HD constexpr word_address host_double_address(std::uint64_t offset, std::uint64_t i) {
  const std::uint64_t r0 = offset % host_round;
  const std::uint64_t t0 = r0 / 4;
  const std::uint64_t m = r0 + i;
  const std::uint64_t q = m / host_round;
  const std::uint64_t rem = m % host_round;
  const std::uint64_t t = rem / 4;
  const std::uint64_t s = rem % 4;
  // t < t0 implies q >= 1, so this never goes below zero.
  const std::uint64_t p = 4 * (offset / host_round) + 8 * q + 2 * s - (t < t0 ? 4u : 0u);
  return word_address{p / 4, t, static_cast<unsigned>(p % 4)};
}

/// curand_uniform / curandGenerateUniform: float(x) * 2^-32 + 2^-33, in (0, 1].
BITEXACT_HD constexpr float to_uniform_float(std::uint32_t x) {
  return static_cast<float>(x) * 0x1p-32f + 0x1p-33f;
}

/// curand_uniform_double on a Philox state (32 random bits): (x + 1) * 2^-32, exact.
BITEXACT_HD constexpr double to_uniform_double_32(std::uint32_t x) {
  return static_cast<double>(x) * 0x1p-32 + 0x1p-32;
}

/// 53-bit conversion (_curand_uniform_double_hq): curandGenerateUniformDouble and
/// curand_uniform2_double. lo = first word, hi = second word.
BITEXACT_HD constexpr double to_uniform_double(std::uint32_t lo, std::uint32_t hi) {
  const std::uint64_t z = static_cast<std::uint64_t>(lo) ^ (static_cast<std::uint64_t>(hi) << 21);
  return static_cast<double>(z) * 0x1p-53 + 0x1p-54;
}

/// Element i of curandGenerate for (seed key, offset).
BITEXACT_HD constexpr std::uint32_t host_word(key_type key, std::uint64_t offset, std::uint64_t i) {
  const word_address a = host_u32_address(offset, i);
  return philox_block(key, a.block, a.subsequence)[a.lane];
}

/// Element i of curandGenerateUniform.
BITEXACT_HD constexpr float host_uniform_float(key_type key, std::uint64_t offset, std::uint64_t i) {
  return to_uniform_float(host_word(key, offset, i));
}

/// Element i of curandGenerateUniformDouble.
BITEXACT_HD constexpr double host_uniform_double(key_type key, std::uint64_t offset,
                                                 std::uint64_t i) {
  const word_address a = host_double_address(offset, i);
  const ctr_type b = philox_block(key, a.block, a.subsequence);
  return to_uniform_double(b[a.lane], b[a.lane + 1]);
}

}  // namespace detail

// --------------------------------------------------------------------------------------------
// Device-side state: mirrors curandStatePhilox4_32_10 and curand_kernel.h / curand_uniform.h.
// (The Box-Muller caches of cuRAND's struct are omitted: no normal distribution here.)
// --------------------------------------------------------------------------------------------
struct philox4_32_10_state {
  std::array<std::uint32_t, 4> ctr;     ///< counter of the current block
  std::array<std::uint32_t, 4> output;  ///< B(ctr), computed eagerly
  std::array<std::uint32_t, 2> key;     ///< {lo32(seed), hi32(seed)}
  std::uint32_t lane;                   ///< cuRAND's STATE: next word of output to return
};

namespace detail {

BITEXACT_HD constexpr void refresh(philox4_32_10_state* s) {
  s->output = philox4x32_10{}(s->ctr, s->key);
}

/// Philox_State_Incr(s, n), carry quirks included.
BITEXACT_HD constexpr void incr(philox4_32_10_state* s, std::uint64_t n) {
  const std::uint32_t nlo = static_cast<std::uint32_t>(n);
  std::uint32_t nhi = static_cast<std::uint32_t>(n >> 32);
  s->ctr[0] += nlo;
  if (s->ctr[0] < nlo) ++nhi;
  s->ctr[1] += nhi;
  if (nhi <= s->ctr[1]) return;
  if (++s->ctr[2]) return;
  ++s->ctr[3];
}

/// Philox_State_Incr_hi(s, n).
BITEXACT_HD constexpr void incr_hi(philox4_32_10_state* s, std::uint64_t n) {
  const std::uint32_t nlo = static_cast<std::uint32_t>(n);
  std::uint32_t nhi = static_cast<std::uint32_t>(n >> 32);
  s->ctr[2] += nlo;
  if (s->ctr[2] < nlo) ++nhi;
  s->ctr[3] += nhi;
}

/// Philox_State_Incr(s): 128-bit increment by one.
BITEXACT_HD constexpr void incr1(philox4_32_10_state* s) {
  if (++s->ctr[0]) return;
  if (++s->ctr[1]) return;
  if (++s->ctr[2]) return;
  ++s->ctr[3];
}

}  // namespace detail

/// skipahead(n, state): skip n 32-bit words.
BITEXACT_HD constexpr void skipahead(std::uint64_t n, philox4_32_10_state* s) {
  s->lane += static_cast<std::uint32_t>(n & 3);
  n /= 4;
  if (s->lane > 3) {
    n += 1;
    s->lane -= 4;
  }
  detail::incr(s, n);
  detail::refresh(s);
}

/// skipahead_sequence(n, state): skip n subsequences of 2^66 words.
BITEXACT_HD constexpr void skipahead_sequence(std::uint64_t n, philox4_32_10_state* s) {
  detail::incr_hi(s, n);
  detail::refresh(s);
}

/// curand_init(seed, subsequence, offset, state).
BITEXACT_HD constexpr void init(std::uint64_t seed, std::uint64_t subsequence,
                                std::uint64_t offset, philox4_32_10_state* s) {
  s->ctr = {0u, 0u, 0u, 0u};
  s->key = detail::host_key(seed);
  s->lane = 0;
  skipahead_sequence(subsequence, s);
  skipahead(offset, s);
}

/// curand(state).
BITEXACT_HD constexpr std::uint32_t next(philox4_32_10_state* s) {
  const std::uint32_t l = s->lane++;
  const std::uint32_t ret = s->output[l < 4 ? l : 0];  // cuRAND: default case returns .x
  if (s->lane == 4) {
    detail::incr1(s);
    detail::refresh(s);
    s->lane = 0;
  }
  return ret;
}

/// curand4(state): the next four words from the current lane; the lane is unchanged.
BITEXACT_HD constexpr std::array<std::uint32_t, 4> next4(philox4_32_10_state* s) {
  const std::array<std::uint32_t, 4> tmp = s->output;
  detail::incr1(s);
  detail::refresh(s);
  const std::array<std::uint32_t, 4>& o = s->output;
  switch (s->lane) {
    case 1: return {tmp[1], tmp[2], tmp[3], o[0]};
    case 2: return {tmp[2], tmp[3], o[0], o[1]};
    case 3: return {tmp[3], o[0], o[1], o[2]};
    default: return tmp;
  }
}

/// curand_uniform(state).
BITEXACT_HD constexpr float uniform(philox4_32_10_state* s) {
  return detail::to_uniform_float(next(s));
}

/// curand_uniform4(state).
BITEXACT_HD constexpr std::array<float, 4> uniform4(philox4_32_10_state* s) {
  const std::array<std::uint32_t, 4> x = next4(s);
  return {detail::to_uniform_float(x[0]), detail::to_uniform_float(x[1]),
          detail::to_uniform_float(x[2]), detail::to_uniform_float(x[3])};
}

/// curand_uniform_double(state): 32 random bits.
BITEXACT_HD constexpr double uniform_double(philox4_32_10_state* s) {
  return detail::to_uniform_double_32(next(s));
}

/// curand_uniform2_double(state): two 53-bit doubles from curand4.
BITEXACT_HD constexpr std::array<double, 2> uniform2_double(philox4_32_10_state* s) {
  const std::array<std::uint32_t, 4> x = next4(s);
  return {detail::to_uniform_double(x[0], x[1]), detail::to_uniform_double(x[2], x[3])};
}

// --------------------------------------------------------------------------------------------
// Scalar reference of the host generator API (what a freshly created host generator with this
// seed and offset writes for this n). Any n is accepted; n == 0 does nothing.
// Host-only (they throw).
// --------------------------------------------------------------------------------------------
namespace reference {

namespace detail_ref {
inline void check(const void* out, std::size_t n, const char* what) {
  if (out == nullptr && n > 0) throw std::invalid_argument(what);
}
}  // namespace detail_ref

/// curandGenerate.
inline void generate(std::uint64_t seed, std::uint64_t offset, std::uint32_t* out, std::size_t n) {
  detail_ref::check(out, n, "bitexact::curand_compat::reference::generate: out is null and n > 0");
  const auto key = detail::host_key(seed);
  for (std::size_t i = 0; i < n; ++i) out[i] = detail::host_word(key, offset, i);
}

/// curandGenerateUniform.
inline void generate_uniform(std::uint64_t seed, std::uint64_t offset, float* out, std::size_t n) {
  detail_ref::check(out, n,
                    "bitexact::curand_compat::reference::generate_uniform: out is null and n > 0");
  const auto key = detail::host_key(seed);
  for (std::size_t i = 0; i < n; ++i) out[i] = detail::host_uniform_float(key, offset, i);
}

/// curandGenerateUniformDouble.
inline void generate_uniform_double(std::uint64_t seed, std::uint64_t offset, double* out,
                                    std::size_t n) {
  detail_ref::check(
      out, n, "bitexact::curand_compat::reference::generate_uniform_double: out is null and n > 0");
  const auto key = detail::host_key(seed);
  for (std::size_t i = 0; i < n; ++i) out[i] = detail::host_uniform_double(key, offset, i);
}

}  // namespace reference

}  // namespace curand_compat
}  // namespace bitexact
