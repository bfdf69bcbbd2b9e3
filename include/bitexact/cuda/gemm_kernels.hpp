// bitexact/cuda/gemm_kernels.hpp - kernel logic of the CUDA GEMM, for CUDA and for emulation.
//
// Plain C++17 (compiles with g++ and nvcc). Every body is a BITEXACT_HD function; the tiled
// body is a template over a block context (cuda/block_context.hpp). cuda/gemm.cuh wraps them in
// __global__ kernels; cuda/gemm_emulation.hpp runs the same text on the CPU (fibers for the
// tiled body's barriers and shared memory), and tests/cuda_gemm_emulation_test.cpp checks the
// bits against the canonical order for many tiles, split counts, grids and block orders.
//
// fixed_order (core/gemm_order.hpp, the canonical K order, bit for bit):
//   Tiled SIMT. A block computes a BM x BN tile of C; each of its (BM/TM)(BN/TN) threads owns a
//   TM x TN register tile (rows ty + r * BM/TM, columns tx + q * BN/TN). K advances in BK-wide
//   shared-memory tiles of op(A) and op(B); BK divides the 256-wide canonical chunk, so a K tile
//   never straddles two chunks, and the last tile of a chunk stops at K (no padded products:
//   fma(0, 0, -0) would turn -0 into +0). Per element and chunk: one core::fused_fma chain from
//   +0 in increasing k; partials fold left to right with core::gemm_combine; core::gemm_epilogue
//   once. Float tensor-core MMA is never used (not IEEE).
//   Split-K (small m x n): the work unit is (tile, split); split s owns the whole chunks
//   [chunks * s / S, chunks * (s + 1) / S). With S > 1 a block writes each chunk's partial to the
//   workspace (partials[chunk][i][j]) and gemm_fold_body folds them left to right and applies the
//   epilogue: the same operations in the same order as S == 1, where the block folds in
//   registers. No atomics at all.
//   alpha == 0 or k == 0: only gemm_fold_body runs, over zero chunks (S = +0; A and B unread).
//
// exact: the value and its rules are core/gemm_exact.hpp's (shared with the CPU exact tier):
//   the exact sum S of the products, then alpha == 1: round(S + beta * C_old); alpha == 0:
//   round(beta * C_old) (A and B unread); otherwise round(alpha * round(S) + beta * C_old); one
//   rounding each, canonical NaN, -0 only when every term is -0. Here: per element, a
//   core::exact_accumulator<T> receives every exact product op(A)[i][k] * op(B)[k][j] (bf16
//   widened exactly to float). With S > 1 splits, split s adds the products of k in
//   [k * s / S, k * (s + 1) / S) and stores its normalized digits and flags in the workspace;
//   gemm_exact_merge_body merges the S accumulators (integer addition: any split gives the same
//   state) and applies core::gemm_exact_epilogue. alpha == 0 runs gemm_exact_alpha_zero_body
//   alone. (The CPU's integer-slice fast path is not used here: same value, other speed.)
//
// Launch requirements: the tiled body runs with Tile::threads threads per block; the others with
// any block size; every body grid-strides over its work units, so any grid >= 1 works.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "../core/bfloat16.hpp"
#include "../core/config.hpp"
#include "../core/exact.hpp"
#include "../core/gemm_exact.hpp"
#include "../core/gemm_order.hpp"
#include "../gemm_checks.hpp"
#include "../tier.hpp"
#include "block_context.hpp"
#include "launch.hpp"
#include "split_plan.hpp"

// Register-tile loops are unrolled in device code, so the per-thread arrays stay in registers.
#if defined(__CUDA_ARCH__)
#define BITEXACT_GEMM_UNROLL _Pragma("unroll")
#else
#define BITEXACT_GEMM_UNROLL
#endif

namespace bitexact {
namespace cuda {

/// A tile shape of the fixed_order kernel: BM x BN of C per block, BK-deep K tiles, TM x TN
/// elements per thread. Never changes a bit, only speed.
template <unsigned BM, unsigned BN, unsigned BK, unsigned TM, unsigned TN>
struct gemm_tile {
  static constexpr unsigned bm = BM, bn = BN, bk = BK, tm = TM, tn = TN;
  static constexpr unsigned threads_m = BM / TM, threads_n = BN / TN;
  static constexpr unsigned threads = threads_m * threads_n;
  static_assert(BM % TM == 0 && BN % TN == 0, "gemm_tile: TM must divide BM and TN divide BN");
  static_assert(core::gemm_k_chunk % BK == 0, "gemm_tile: BK must divide the canonical K chunk");
  static_assert(threads >= 1 && threads <= 1024, "gemm_tile: 1 to 1024 threads per block");
};
/// 64 x 64 per block, 16-deep K tiles, 4 x 4 per thread, 256 threads: the launchers' tile for double.
using default_gemm_tile = gemm_tile<64, 64, 16, 4, 4>;
/// The tile the launchers use for T: float (and bf16 inputs) 128 x 128 per block, 8-deep K tiles,
/// 8 x 8 per thread (16 shared loads per 64 FMAs), 256 threads; double default_gemm_tile (twice
/// the registers per value). Tiles never change a bit.
template <class T>
struct default_gemm_tile_for {
  using type = default_gemm_tile;
};
template <>
struct default_gemm_tile_for<float> {
  using type = gemm_tile<128, 128, 8, 8, 8>;
};

/// Threads per block of the exact and fold kernels when gemm_launch::block is 0.
inline constexpr unsigned default_gemm_block = 128;

/// Launch options. 0 = let the launcher choose. None of them changes a result bit.
struct gemm_launch {
  unsigned grid = 0;    ///< blocks of the main pass (each grid-strides over its work units)
  unsigned splits = 0;  ///< K splits (fixed_order: whole 256-wide chunks; clamped to the chunk count)
  unsigned block = 0;   ///< threads per block of the exact and fold kernels (fixed_order: Tile::threads)
};

/// op(X)[r][c] of a row-major matrix stored as X (no) or X^T (yes), ld = row stride of storage.
template <class In>
struct gemm_operand {
  const In* p;
  std::size_t ld;
  bool trans;
  BITEXACT_HD In at(std::size_t r, std::size_t c) const { return trans ? p[c * ld + r] : p[r * ld + c]; }
};

namespace gemm_detail {
using split_detail::ceil_div;
using split_detail::workspace_bytes;

/// Throws std::invalid_argument("bitexact::cuda::gemm: ...") for exactly the operands the CPU API
/// refuses (the one definition in bitexact/gemm_checks.hpp) and for an unknown tier. Nothing is
/// launched or written before. (The host's FTZ/DAZ state does not matter to the device, so it is
/// not checked here.)
template <class T, class In>
void validate(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, const In* a, std::size_t lda,
              const In* b, std::size_t ldb, const T* c, std::size_t ldc, tier t) {
  if (t != tier::fixed_order && t != tier::exact) throw std::invalid_argument("bitexact::cuda::gemm: unknown tier");
  bitexact::detail::gemm_check_operands("cuda::gemm", ta, tb, m, n, k, a, lda, 0, b, ldb, 0, c, ldc, 0, 1);
}

/// Whether the call only needs the epilogue: alpha == 0 reads neither A nor B (both tiers);
/// fixed_order k == 0 has S = +0. (exact k == 0 runs the exact body over no products, which
/// applies the exact tier's rule to the empty sum.)
template <class T>
inline bool epilogue_only(std::size_t k, T alpha, tier t) {
  return alpha == T(0) || (k == 0 && t == tier::fixed_order);
}

/// The plan of a call: tiles, chunks and the K split. `splits` 0 picks one from the SM count
/// (split_detail::choose_splits): split K only when m x n has fewer tiles (fixed_order) or
/// elements per 128 threads (exact) than 2 x sm_count and the workspace stays under
/// gemm_auto_split_max_bytes.
template <class T, class Tile>
inline gemm_plan make_plan(std::size_t m, std::size_t n, std::size_t k, tier t, unsigned splits, unsigned sm_count) {
  gemm_plan p{};
  p.m = m;
  p.n = n;
  p.k = k;
  p.chunks = ceil_div(k, core::gemm_k_chunk);
  const bool exact = t == tier::exact;
  p.tiles_m = exact ? m : ceil_div(m, Tile::bm);
  p.tiles_n = exact ? n : ceil_div(n, Tile::bn);
  // exact: one thread per element, so 2 x sm_count blocks of default_gemm_block elements;
  // fixed_order: a unit is a tile (a block), so 2 x sm_count tiles.
  p.splits = split_detail::choose_splits<T>(splits, p.tiles_m * p.tiles_n, m * n, p.chunks, t, sm_count,
                                            exact ? default_gemm_block : 1);
  return p;
}
}  // namespace gemm_detail

// ---------------------------------------------------------------------------------------------
// fixed_order

/// Shared memory of the tiled body: the current K tile of op(A) (k-major) and op(B). Rows are
/// padded by one element so that the k-fastest stores of a row-major A (or a transposed B) hit
/// distinct banks; the padding is never read.
template <class T, class Tile>
struct gemm_tile_shared {
  T a[Tile::bk][Tile::bm + 1];
  T b[Tile::bk][Tile::bn + 1];
};

/// The tiled fixed_order body (see the top of this file). `partials` is used when p.splits > 1
/// (chunks x m x n values), else the block applies the epilogue to C itself.
template <class T, class Tile, class In, class Ctx>
BITEXACT_HD void gemm_fixed_order_body(const Ctx& ctx, const thread_index& ti, gemm_tile_shared<T, Tile>& sh,
                                       const gemm_plan& p, gemm_operand<In> a, gemm_operand<In> b, T alpha, T beta,
                                       T* c, std::size_t ldc, T* partials) {
  constexpr unsigned BM = Tile::bm, BN = Tile::bn, BK = Tile::bk, TM = Tile::tm, TN = Tile::tn;
  const unsigned tid = ti.thread_idx;
  const unsigned tx = tid % Tile::threads_n, ty = tid / Tile::threads_n;
  const bool split = p.splits > 1;
  const std::uint64_t units = p.units();
  const std::size_t mn = p.m * p.n;
  for (std::uint64_t u = ti.block_idx; u < units; u += ti.grid_dim) {  // block-uniform loop
    const unsigned s = static_cast<unsigned>(u % p.splits);
    const std::uint64_t tile = u / p.splits;
    const std::size_t i0 = static_cast<std::size_t>(tile / p.tiles_n) * BM;
    const std::size_t j0 = static_cast<std::size_t>(tile % p.tiles_n) * BN;
    const std::size_t c_first = p.chunk_begin(s), c_last = p.chunk_begin(s + 1);
    T sum[TM][TN];
    T acc[TM][TN];
    BITEXACT_GEMM_UNROLL
    for (unsigned r = 0; r < TM; ++r)
      BITEXACT_GEMM_UNROLL
      for (unsigned q = 0; q < TN; ++q) sum[r][q] = T(0);  // K == 0: S = +0
    for (std::size_t ch = c_first; ch < c_last; ++ch) {
      BITEXACT_GEMM_UNROLL
      for (unsigned r = 0; r < TM; ++r)
        BITEXACT_GEMM_UNROLL
        for (unsigned q = 0; q < TN; ++q) acc[r][q] = T(0);  // each chunk's chain starts from +0
      const std::size_t k_lo = ch * core::gemm_k_chunk;
      const std::size_t k_hi = (p.k - k_lo < core::gemm_k_chunk) ? p.k : k_lo + core::gemm_k_chunk;
      for (std::size_t kt = k_lo; kt < k_hi; kt += BK) {
        const unsigned kn = static_cast<unsigned>((k_hi - kt < BK) ? k_hi - kt : BK);
        ctx.sync();  // every thread has finished reading the previous tile
        for (unsigned idx = tid; idx < BK * BM; idx += Tile::threads) {
          // Consecutive threads read consecutive addresses of the stored matrix.
          const unsigned kk = a.trans ? idx / BM : idx % BK;
          const unsigned row = a.trans ? idx % BM : idx / BK;
          const std::size_t i = i0 + row;
          sh.a[kk][row] = (i < p.m && kk < kn) ? T(core::widen(a.at(i, kt + kk))) : T(0);
        }
        for (unsigned idx = tid; idx < BK * BN; idx += Tile::threads) {
          const unsigned kk = b.trans ? idx % BK : idx / BN;
          const unsigned col = b.trans ? idx / BK : idx % BN;
          const std::size_t j = j0 + col;
          sh.b[kk][col] = (j < p.n && kk < kn) ? T(core::widen(b.at(kt + kk, j))) : T(0);
        }
        ctx.sync();
        for (unsigned kk = 0; kk < kn; ++kk) {  // increasing k, stops at K
          T av[TM], bv[TN];
          BITEXACT_GEMM_UNROLL
          for (unsigned r = 0; r < TM; ++r) av[r] = sh.a[kk][ty + r * Tile::threads_m];
          BITEXACT_GEMM_UNROLL
          for (unsigned q = 0; q < TN; ++q) bv[q] = sh.b[kk][tx + q * Tile::threads_n];
          BITEXACT_GEMM_UNROLL
          for (unsigned r = 0; r < TM; ++r)
            BITEXACT_GEMM_UNROLL
            for (unsigned q = 0; q < TN; ++q) acc[r][q] = core::fused_fma(av[r], bv[q], acc[r][q]);
        }
      }
      BITEXACT_GEMM_UNROLL
      for (unsigned r = 0; r < TM; ++r)
        BITEXACT_GEMM_UNROLL
        for (unsigned q = 0; q < TN; ++q) {
          if (split) {
            const std::size_t i = i0 + ty + r * Tile::threads_m, j = j0 + tx + q * Tile::threads_n;
            if (i < p.m && j < p.n) partials[ch * mn + i * p.n + j] = acc[r][q];
          } else {
            sum[r][q] = (ch == 0) ? acc[r][q] : core::gemm_combine(sum[r][q], acc[r][q]);  // left fold
          }
        }
    }
    if (!split) {
      BITEXACT_GEMM_UNROLL
      for (unsigned r = 0; r < TM; ++r)
        BITEXACT_GEMM_UNROLL
        for (unsigned q = 0; q < TN; ++q) {
          const std::size_t i = i0 + ty + r * Tile::threads_m, j = j0 + tx + q * Tile::threads_n;
          if (i < p.m && j < p.n) {
            T* out = c + i * ldc + j;
            *out = core::gemm_epilogue(alpha, sum[r][q], beta, beta == T(0) ? T(0) : *out);
          }
        }
    }
  }
}

/// Folds `chunks` per-chunk partials (chunk-major, m x n each) left to right and applies the
/// epilogue; chunks == 0 is the epilogue alone with S = +0 (alpha == 0 or k == 0).
template <class T>
BITEXACT_HD void gemm_fold_body(const thread_index& ti, std::size_t m, std::size_t n, std::size_t chunks,
                                const T* partials, T alpha, T beta, T* c, std::size_t ldc) {
  const std::uint64_t total = static_cast<std::uint64_t>(m) * n;
  for (std::uint64_t e = ti.global(); e < total; e += ti.threads()) {
    T s = T(0);
    for (std::size_t ch = 0; ch < chunks; ++ch) {
      const T part = partials[ch * total + e];
      s = ch == 0 ? part : core::gemm_combine(s, part);
    }
    T* out = c + static_cast<std::size_t>(e / n) * ldc + static_cast<std::size_t>(e % n);
    *out = core::gemm_epilogue(alpha, s, beta, beta == T(0) ? T(0) : *out);
  }
}

// ---------------------------------------------------------------------------------------------
// exact

/// exact, alpha == 0: C = core::gemm_exact_alpha_zero(beta, C_old) (A and B are not read).
template <class T>
BITEXACT_HD void gemm_exact_alpha_zero_body(const thread_index& ti, std::size_t m, std::size_t n, T beta, T* c,
                                            std::size_t ldc) {
  const std::uint64_t total = static_cast<std::uint64_t>(m) * n;
  for (std::uint64_t e = ti.global(); e < total; e += ti.threads()) {
    T* out = c + static_cast<std::size_t>(e / n) * ldc + static_cast<std::size_t>(e % n);
    *out = core::gemm_exact_alpha_zero(beta, beta == T(0) ? T(0) : *out);
  }
}

/// One thread per (element, split): the exact products of the split's K range. With one split
/// the thread rounds into C; else it stores the normalized digits and flags in `ws`
/// (gemm_exact_words<T> int64 per (split, element), split-major).
template <class T, class In>
BITEXACT_HD void gemm_exact_body(const thread_index& ti, const gemm_plan& p, gemm_operand<In> a, gemm_operand<In> b,
                                 T alpha, T beta, T* c, std::size_t ldc, std::int64_t* ws) {
  const std::uint64_t mn = static_cast<std::uint64_t>(p.m) * p.n;
  const std::uint64_t units = mn * p.splits;
  for (std::uint64_t u = ti.global(); u < units; u += ti.threads()) {
    const unsigned s = static_cast<unsigned>(u / mn);
    const std::uint64_t e = u % mn;
    const std::size_t i = static_cast<std::size_t>(e / p.n), j = static_cast<std::size_t>(e % p.n);
    core::exact_accumulator<T> acc;
    const std::size_t k1 = p.k_begin(s + 1);
    for (std::size_t k = p.k_begin(s); k < k1; ++k)
      acc.add_product(T(core::widen(a.at(i, k))), T(core::widen(b.at(k, j))));
    if (p.splits == 1) {
      T* out = c + i * ldc + j;
      *out = core::gemm_exact_epilogue(acc, alpha, beta, beta == T(0) ? T(0) : *out);
    } else {
      acc.normalize();
      std::int64_t* w = ws + u * gemm_exact_words<T>;
      for (int d = 0; d < core::exact_accumulator<T>::digit_count; ++d) w[d] = acc.digit(d);
      w[core::exact_accumulator<T>::digit_count] = static_cast<std::int64_t>(acc.flags());
    }
  }
}

/// Merges the `splits` stored accumulators of each element (integer addition, any order) and
/// applies the exact epilogue into C.
template <class T>
BITEXACT_HD void gemm_exact_merge_body(const thread_index& ti, std::size_t m, std::size_t n, unsigned splits,
                                       const std::int64_t* ws, T alpha, T beta, T* c, std::size_t ldc) {
  using acc_t = core::exact_accumulator<T>;
  const std::uint64_t mn = static_cast<std::uint64_t>(m) * n;
  for (std::uint64_t e = ti.global(); e < mn; e += ti.threads()) {
    acc_t acc;
    for (unsigned s = 0; s < splits; ++s) {
      const std::int64_t* w = ws + (s * mn + e) * gemm_exact_words<T>;
      acc.merge(acc_t::from_digits(w, static_cast<std::uint32_t>(w[acc_t::digit_count])));
    }
    T* out = c + static_cast<std::size_t>(e / n) * ldc + static_cast<std::size_t>(e % n);
    *out = core::gemm_exact_epilogue(acc, alpha, beta, beta == T(0) ? T(0) : *out);
  }
}

}  // namespace cuda
}  // namespace bitexact
