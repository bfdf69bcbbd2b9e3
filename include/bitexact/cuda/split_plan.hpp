// bitexact/cuda/split_plan.hpp - the K-split plan of the split-K CUDA launchers (GEMM and
// convolution), for CUDA and for emulation.
//
// Plain C++17 (compiles with g++ and nvcc). A split never changes a bit, only who computes
// what: fixed_order splits own whole 256-wide canonical chunks and their partials are folded
// left to right afterwards; exact splits store exact accumulators that are merged by integer
// addition (cuda/gemm_kernels.hpp and cuda/conv_kernels.hpp have the bodies). This header holds
// the one rule both launchers use to choose the split count and size the workspace.
#pragma once
#include <cstddef>
#include <cstdint>

#include "../core/config.hpp"
#include "../core/exact.hpp"
#include "../tier.hpp"

namespace bitexact {
namespace cuda {

/// Sizes and the K split of one call, shared by the launcher and the emulation.
struct gemm_plan {
  std::size_t m, n, k;
  std::size_t tiles_m, tiles_n;  ///< fixed_order tiles (exact: tiles_m = m, tiles_n = n)
  std::size_t chunks;            ///< canonical K chunks, ceil(k / 256)
  unsigned splits;               ///< >= 1
  BITEXACT_HD std::uint64_t units() const { return static_cast<std::uint64_t>(tiles_m) * tiles_n * splits; }
  /// fixed_order: first chunk of split s (split s owns [chunk_begin(s), chunk_begin(s + 1))).
  BITEXACT_HD std::size_t chunk_begin(unsigned s) const {
    return static_cast<std::size_t>(static_cast<std::uint64_t>(chunks) * s / splits);
  }
  /// exact: first k of split s.
  BITEXACT_HD std::size_t k_begin(unsigned s) const {
    return static_cast<std::size_t>(static_cast<std::uint64_t>(k) * s / splits);
  }
};

/// int64 words per (split, element) of the exact workspace: the digits, then the flags.
template <class T>
inline constexpr std::size_t gemm_exact_words = static_cast<std::size_t>(core::exact_accumulator<T>::digit_count) + 1;

/// Most bytes an automatic split-K may take for its workspace (beyond it the launcher does not split).
inline constexpr std::size_t gemm_auto_split_max_bytes = std::size_t(256) << 20;

namespace split_detail {

inline std::size_t ceil_div(std::size_t a, std::size_t b) { return a / b + (a % b != 0); }

/// The K split count of a call whose m x n output has `elements` values of type T, computed as
/// `units` independent work units over `chunks` canonical K chunks. `requested` != 0 is the
/// caller's count. 0 picks one: split only when the units are fewer than the
/// 2 x sm_count x units_per_sm that keep the device busy (units_per_sm: 1 where a unit is a
/// block, the block size where a unit is a thread), into ceil(wanted / units) splits, at most 64
/// in the exact tier, and only while the workspace stays under gemm_auto_split_max_bytes.
/// Either way at least 1 and at most the chunk count (whole chunks in both tiers).
template <class T>
inline unsigned choose_splits(unsigned requested, std::size_t units, std::size_t elements, std::size_t chunks, tier t,
                              unsigned sm_count, std::size_t units_per_sm) {
  const bool exact = t == tier::exact;
  const std::size_t max_splits = chunks == 0 ? 1 : chunks;
  std::size_t s = requested;
  if (s == 0) {
    const std::size_t want = 2 * static_cast<std::size_t>(sm_count == 0 ? 1 : sm_count) * units_per_sm;
    s = (units == 0 || units >= want) ? 1 : ceil_div(want, units);
    if (s > max_splits) s = max_splits;
    if (exact && s > 64) s = 64;
    const std::size_t per_split = exact ? elements * gemm_exact_words<T> * 8 : elements * sizeof(T);
    const std::size_t slices = exact ? s : chunks;  // exact: one accumulator per split; fixed_order: one partial per chunk
    if (s > 1 && per_split > gemm_auto_split_max_bytes / slices) s = 1;
  }
  if (s > max_splits) s = max_splits;
  if (s == 0) s = 1;
  return static_cast<unsigned>(s);
}

/// Workspace bytes the plan needs (0 without split-K): exact, one accumulator per (split,
/// element); fixed_order, one partial per (chunk, element).
template <class T>
inline std::size_t workspace_bytes(const gemm_plan& p, tier t) {
  if (p.splits <= 1) return 0;
  if (t == tier::exact) return static_cast<std::size_t>(p.splits) * p.m * p.n * gemm_exact_words<T> * 8;
  return p.chunks * p.m * p.n * sizeof(T);
}

}  // namespace split_detail
}  // namespace cuda
}  // namespace bitexact
