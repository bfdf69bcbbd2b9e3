// bitexact/cpu/conv_kernels.hpp - convolution on the CPU as lowered GEMMs in the canonical K
// order (core/gemm_order.hpp over the K indices of core/conv.hpp).
//
// Each op is C[i][j] = sum_r A[i][r] * B[r][j]: forward (i = out-channel in the group, j = output
// position, r = the forward K index), backward-data (i = in-channel in the group, j = input
// position, r = the backward-data K index), backward-weight (computed as C^T: i = the forward K
// index, j = out-channel in the group, r = (n, oh, ow)). B (and, for backward-weight, A) is packed one canonical
// chunk of 256 r at a time (im2col of that chunk, padding taps and missing output positions
// written as +0), so the register-blocked kernel runs exactly the canonical chain: per chunk,
// fused FMAs from +0 in increasing r for each (i, j), then total = total + partial. Vectors run
// across j, never across r, so every ISA, tile size and thread split gives the same bits.
//
// Threads take whole output tiles (image, group, row block, column tile) - never a piece of r -
// so no partial ever crosses threads; the one exception, depthwise backward-weight, gives
// threads whole canonical chunks of r and folds their partials in chunk order afterwards. The register kernel is the GEMM family's
// (gemm_micro<Arch, T>::tile of cpu/gemm_kernels.hpp: AVX-512, AVX2+FMA3 and NEON fused FMAs,
// core::fused_fma on SSE2 and scalar), fed MR-interleaved A panels and NR-wide B panels.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "../core/bfloat16.hpp"
#include "../core/conv.hpp"
#include "../core/gemm_order.hpp"
#include "../core/scatter.hpp"
#include "dispatch.hpp"
#include "gemm_exact.hpp"
#include "gemm_kernels.hpp"
#include "reduce_kernels.hpp"
#include "threads.hpp"

namespace bitexact {
namespace cpu {
namespace detail {

// ------------------------------------------------------------------ the tile engine

inline constexpr std::size_t conv_chunk = core::gemm_k_chunk;

template <class T>
struct conv_scratch {
  std::vector<T> b, a, apad, total;
  std::vector<T> dy_nhwc, x_nhwc;  // the calling thread's layout copies (backward-weight)
  std::vector<T> apack;            // the calling thread's A panels, packed once per call
  std::vector<T> x_pad, dy_pad;    // depthwise backward-weight: padded NHWC copies (dy_pad: also dbias staging)
  std::vector<T> dy_phase;         // strided backward-data: the calling thread's padded dy planes
  std::vector<T> x_rows;           // forward on padded rows: the calling thread's padded x planes
  std::vector<std::ptrdiff_t> b_off;  // a by_offsets prepare(): B row r of the chunk at + b_off[r]
  std::vector<const T*> b_panel;      // ... and column panel jj / NT at b_panel[jj / NT]
};
/// v with at least n elements (never shrinks, never re-zeroes: its pages stay mapped between calls).
template <class T>
T* conv_reserve(std::vector<T>& v, std::size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}
template <class T>
conv_scratch<T>& conv_thread_scratch() {
  static thread_local conv_scratch<T> s;
  return s;
}

template <class Arch, class T>
struct conv_engine {
  using M = gemm_micro<Arch, T>;  // the GEMM family's register kernel (cpu/gemm_kernels.hpp)
  // The column tile: 256 (float) or 128 (double) positions, rounded down to whole micro-panels
  // (NEON's float panel is 12 wide). A tiling choice only: each element's chain is the same.
  static constexpr std::size_t MR = M::MR, NT = M::NR, JT = (sizeof(T) == 4 ? 256 : 128) / NT * NT;
  static_assert(JT % NT == 0, "conv_engine: the column tile must hold whole micro-panels");

  /// total[i][0..NT) (+)= one canonical chunk's chain over klen r of a[r][i] * b[r][0..NT),
  /// i < mr, b's rows b_ks apart: gemm_micro::tile with S = first ? p : S + p and no epilogue.
  static void micro(int mr, const T* a, const T* b, std::size_t klen, T* total, std::size_t ldt, bool first,
                    std::size_t a_ks = MR, std::size_t b_ks = NT, const std::ptrdiff_t* b_off = nullptr) {
    gemm_merge<T> g{total, ldt, first, false, nullptr, 0, T(1), T(0)};
    if (b_off) M::tile_offsets(mr, klen, a, a_ks, b, b_off, NT, g);
    else M::tile(mr, klen, a, a_ks, b, b_ks, NT, g);
  }

  /// One output tile: rows x nt (nt <= JT) over R reduction indices in canonical chunks.
  /// prepare(r0, r1, b, ldb) packs B[r - r0][0..ldb) into b (zeros beyond nt) and whatever A
  /// needs, and returns b, or points at B in place (setting ldb; NT-blocks up to nt must exist);
  /// a_row(i, r0, lda) points at A[i][r0..] (valid rows only); store(i, total_row) finishes row i.
  /// B is copied into NT-wide panels and A into MR-interleaved panels (the micro kernel then
  /// streams contiguous memory); copies never change a value.
  template <class Prepare, class ARow, class Store>
  static void run(std::size_t rows, std::size_t R, std::size_t nt, Prepare prepare, ARow a_row, Store store) {
    auto a_panel = [&](std::size_t i, std::size_t r0, std::size_t klen) -> const T* {
      conv_scratch<T>& sc = conv_thread_scratch<T>();
      if (sc.apad.size() < MR * conv_chunk) sc.apad.resize(MR * conv_chunk);
      T* ap = sc.apad.data();
      const std::size_t mr = std::min(MR, rows - i);
      const T* src[MR];
      for (std::size_t q = 0; q < mr; ++q) {
        std::size_t lda;
        src[q] = a_row(i + q, r0, lda);
      }
      pack_panel(src, mr, klen, ap);
      return ap;
    };
    run_panels(rows, R, nt, prepare, a_panel, store);
  }

  /// ap[r * MR + q] = src[q][r] for q < mr, r < klen: A rows into an MR-interleaved panel (rows
  /// past mr are not written: the micro kernel does not read them). AVX-512 float: 16 r at a
  /// time as a 16 x 16 register transpose (rows past mr as zeros), each r's MR lanes one masked
  /// store; the rest element by element. A copy: any method gives the same values.
  static void pack_panel(const T* const* src, std::size_t mr, std::size_t klen, T* ap) {
    std::size_t r = 0;
#if defined(__AVX512F__) && XSIMD_WITH_AVX512BW
    if constexpr (std::is_same<Arch, xsimd::avx512bw>::value && std::is_same<T, float>::value && MR <= 16) {
      const __mmask16 lanes = static_cast<__mmask16>((1u << MR) - 1u);
      for (; r + 16 <= klen; r += 16) {
        __m512 v[16];
        for (std::size_t q = 0; q < 16; ++q) v[q] = q < mr ? _mm512_loadu_ps(src[q] + r) : _mm512_setzero_ps();
        gemm_transpose16_ps(v);
        for (std::size_t u = 0; u < 16; ++u) _mm512_mask_storeu_ps(ap + (r + u) * MR, lanes, v[u]);
      }
    }
#endif
    for (std::size_t q = 0; q < mr; ++q)
      for (std::size_t u = r; u < klen; ++u) ap[u * MR + q] = src[q][u];
  }

  /// Copies src[0, len) to the columns [j, j + len) of row rr of a chunk's B panels (klen rows,
  /// [jj / NT][r][NT] at bp): whole panel rows as fixed-size copies, the ends piece by piece.
  static void row_to_panels(T* bp, std::size_t klen, std::size_t rr, std::size_t j, const T* src, std::size_t len) {
    while (len) {
      const std::size_t o = j % NT, l = std::min(len, NT - o);
      T* d = bp + (j - o) * klen + rr * NT + o;
      if (l == NT) std::memcpy(d, src, NT * sizeof(T));
      else std::memcpy(d, src, l * sizeof(T));
      j += l;
      src += l;
      len -= l;
    }
  }

  /// A prepare() that sets ldb = in_panels has written B straight into the micro kernel's
  /// layout, NT-wide panels [jj / NT][r][NT] at b (columns nt .. ntv zero), so run_panels copies
  /// nothing.
  static constexpr std::size_t in_panels = 0;
  /// A prepare() that sets ldb = by_offsets reads B where it lies: it has written the chunk's
  /// row offsets (klen + 8 entries, the last 8 prefetch targets only) to scratch b_off and each
  /// column panel's base to scratch b_panel; B(r, jj + c) = b_panel[jj / NT][b_off[r] + c] for
  /// every c < NT (columns past nt are read, computed and dropped: they must be readable).
  static constexpr std::size_t by_offsets = ~std::size_t(0);
  /// The by_offsets tables for klen rows and nt columns, sized (the caller fills them).
  static void offset_tables(std::size_t klen, std::size_t nt, std::ptrdiff_t*& off, const T**& panel) {
    conv_scratch<T>& sc = conv_thread_scratch<T>();
    off = conv_reserve(sc.b_off, klen + 8);
    panel = conv_reserve(sc.b_panel, (nt + NT - 1) / NT);
  }

  /// run() with A already in panels: a_panel(i, r0, klen) points at the [klen][MR] panel of rows
  /// [i, i + MR) for the chunk starting at r0 (i a multiple of MR; see packed_a).
  /// Panels of `step` rows (<= MR; the last may be shorter), the rows of a panel a_ks apart
  /// (MR: packed; more: A read in place, a row's MR values contiguous).
  /// With `out` set (and R > 0), the last chunk's micro calls apply the epilogue themselves,
  /// writing row i's nt results to out + i * ldo (row i of out_bias, when set, added as a bias:
  /// gemm_epilogue(1, S, 1, out_bias[i]), else conv_finish(S)) and store() is not called: the
  /// same operations as the store through conv_finish_run, without the trip through the totals.
  template <class Prepare, class APanel, class Store>
  static void run_panels(std::size_t rows, std::size_t R, std::size_t nt, Prepare prepare, APanel a_panel,
                         Store store, std::size_t step = MR, std::size_t a_ks = MR, T* out = nullptr,
                         std::size_t ldo = 0, const T* out_bias = nullptr) {
    conv_scratch<T>& sc = conv_thread_scratch<T>();
    const std::size_t rows_pad = (rows + step - 1) / step * step;
    const std::size_t ntv = (nt + NT - 1) / NT * NT;
    // Running totals, rows ntv apart; the first chunk writes every one of them (S = p). With no
    // chunk at all (R == 0: backward-weight of an empty batch) every total is the empty sum +0.
    if (sc.total.size() < rows_pad * ntv) sc.total.resize(rows_pad * ntv);
    if (R == 0) std::fill(sc.total.begin(), sc.total.begin() + static_cast<std::ptrdiff_t>(rows_pad * ntv), T(0));
    if (sc.b.size() < 2 * conv_chunk * JT) sc.b.resize(2 * conv_chunk * JT);
    T* const bpanel = sc.b.data() + conv_chunk * JT;
    bool first = true;
    for (std::size_t r0 = 0; r0 < R; r0 += conv_chunk) {
      const std::size_t klen = std::min(conv_chunk, R - r0);
      std::size_t ldb = ntv;
      const T* bp = prepare(r0, r0 + klen, sc.b.data(), ldb);
      // B as the micro kernel reads it: the panels prepare() wrote (rows NT apart), the
      // scratch rows prepare() gathered read in place (rows ntv apart: B's rows of a panel then
      // lie ntv * sizeof(T) bytes apart, which the prefetchers follow, and the chunk is
      // written once instead of gathered and copied), or, for B elsewhere (x itself, rows ldb
      // apart: a stride the prefetchers lose), copied into panels [jj / NT][r][NT].
      const T* bbase = bp;
      std::size_t bks = NT, bstep = klen;  // panel jj at bbase + jj * bstep, rows bks apart
      const bool offsets = ldb == by_offsets;  // panel jj at b_panel[jj / NT], rows at b_off
      const std::ptrdiff_t* const boff = offsets ? sc.b_off.data() : nullptr;
      if (!offsets && ldb != in_panels && !(ldb == NT && ntv == NT)) {
        if (bp == sc.b.data() && ldb == ntv) {
          bks = ldb;
          bstep = 1;
        } else {
          for (std::size_t r = 0; r < klen; ++r)
            for (std::size_t jj = 0; jj < ntv; jj += NT)
              std::memcpy(bpanel + jj * klen + r * NT, bp + r * ldb + jj, NT * sizeof(T));
          bbase = bpanel;
        }
      }
      auto bcol = [&](std::size_t jj) { return offsets ? sc.b_panel[jj / NT] : bbase + jj * bstep; };
      const bool last = out && r0 + klen >= R;
      for (std::size_t i = 0; i < rows; i += step) {
        const std::size_t mr = std::min(step, rows - i);
        const T* ap = a_panel(i, r0, klen);
        for (std::size_t jj = 0; jj < ntv; jj += NT) {
          T* tot = sc.total.data() + i * ntv + jj;
          if (!last) {
            micro(static_cast<int>(mr), ap, bcol(jj), klen, tot, ntv, first, a_ks, bks, boff);
            continue;
          }
          T* o = out + i * ldo + jj;
          // S = p (one chunk: S is the output row itself, prefetched for writing) or S + p.
          gemm_merge<T> g{first ? o : tot, first ? ldo : ntv, first, true, o, ldo,
                          T(1), out_bias ? T(1) : T(0), out_bias ? out_bias + i : nullptr};
          if (offsets) M::tile_offsets(static_cast<int>(mr), klen, ap, a_ks, bcol(jj), boff, std::min(NT, nt - jj), g);
          else M::tile(static_cast<int>(mr), klen, ap, a_ks, bcol(jj), bks, std::min(NT, nt - jj), g);
        }
      }
      first = false;
    }
    if (!out || R == 0)
      for (std::size_t i = 0; i < rows; ++i) store(i, sc.total.data() + i * ntv);
  }

  /// A packed once per call (the weights of forward and backward-data, the same for every
  /// column tile): for each of `groups` groups of `rows` rows, MR-row panels per canonical chunk
  /// of R, [group][panel][chunk][r][MR]. a_row(g, i, r0, klen, dst) writes A[g][i][r0 + r] to
  /// dst[r * MR] for r < klen. Rows past the group's end are left unwritten: the micro kernel
  /// reads only the mr rows of a short panel.
  struct packed_a {
    std::size_t panels, chunks, h;  // h: rows per panel (panel_height)
    const T* data;
    /// The panel of rows [i, i + h) of group g (i a multiple of h) for the chunk at r0.
    const T* panel(std::size_t g, std::size_t i, std::size_t r0) const {
      return data + ((g * panels + i / h) * chunks + r0 / conv_chunk) * conv_chunk * MR;
    }
  };
  /// Rows per A panel for a group of `rows` rows: as many panels as MR-row panels would need, of
  /// balanced heights (16 rows: 8 + 8 instead of 14 + 2, whose 2-row tile waits on FMA latency).
  static std::size_t panel_height(std::size_t rows) {
    const std::size_t n = (rows + MR - 1) / MR;
    return n ? (rows + n - 1) / n : MR;
  }
  template <class ARow>
  static packed_a pack_a(std::size_t groups, std::size_t rows, std::size_t R, ARow a_row, int threads) {
    return pack_a_panels(groups, rows, R, threads,
                         [&](std::size_t g, std::size_t i0, std::size_t mr, std::size_t r0, std::size_t klen, T* dst) {
                           for (std::size_t u = 0; u < mr; ++u) a_row(g, i0 + u, r0, klen, dst + u);
                         });
  }
  /// pack_a() of rows held contiguously in r: row_ptr(g, i) points at A[g][i][0]; a panel's
  /// rows go in by pack_panel's register transposes.
  template <class RowPtr>
  static packed_a pack_a_rows(std::size_t groups, std::size_t rows, std::size_t R, RowPtr row_ptr, int threads) {
    return pack_a_panels(groups, rows, R, threads,
                         [&](std::size_t g, std::size_t i0, std::size_t mr, std::size_t r0, std::size_t klen, T* dst) {
                           const T* src[MR];
                           for (std::size_t u = 0; u < mr; ++u) src[u] = row_ptr(g, i0 + u) + r0;
                           pack_panel(src, mr, klen, dst);
                         });
  }
  /// The panels' loop: panel(g, i0, mr, r0, klen, dst) writes rows [i0, i0 + mr) of group g,
  /// chunk [r0, r0 + klen), into dst ([r][MR]).
  template <class Panel>
  static packed_a pack_a_panels(std::size_t groups, std::size_t rows, std::size_t R, int threads, Panel panel) {
    const std::size_t h = panel_height(rows), panels = (rows + h - 1) / h, chunks = (R + conv_chunk - 1) / conv_chunk;
    T* out = conv_reserve(conv_thread_scratch<T>().apack, groups * panels * chunks * conv_chunk * MR);
    parallel_chunks(threads, canonical_chunks{groups * panels, 1}, [&](std::uint64_t q0, std::uint64_t q1) {
      for (std::size_t q = q0; q < q1; ++q) {
        const std::size_t g = q / panels, i0 = (q % panels) * h, mr = std::min(h, rows - i0);
        for (std::size_t c = 0; c < chunks; ++c) {
          const std::size_t r0 = c * conv_chunk, klen = std::min(conv_chunk, R - r0);
          panel(g, i0, mr, r0, klen, out + (q * chunks + c) * conv_chunk * MR);
        }
      }
    });
    return packed_a{panels, chunks, h, out};
  }
};

template <class T>
inline T conv_finish(T s) {
  return core::gemm_epilogue(T(1), s, T(0), T(0));
}

/// dst[u] = conv_finish(tot[u]), or with a bias gemm_epilogue(1, tot[u], 1, *bias), for u < len
/// (contiguous dst): whole vectors, then the rest element by element - the same operations
/// (1 * S is S; fma(1, bias, S) is the rounded sum; NaN becomes the canonical NaN).
template <class Arch, class A>
void conv_finish_run(const A* tot, A* dst, std::size_t len, const A* bias) {
  using V = typename gemm_arch<Arch, A>::V;
  constexpr std::size_t W = static_cast<std::size_t>(V::W);
  // Whole vectors counted up front, then the rest (a `u + W <= len` loop drew a false
  // -Waggressive-loop-optimizations warning from GCC 12 at -O1).
  const std::size_t nv = len / W, rest = len % W;
  A* const dt = dst + nv * W;
  const A* const tt = tot + nv * W;
  if (bias) {
    const auto one = V::set1(A(1)), vb = V::set1(*bias);
    for (std::size_t v = 0; v < nv; ++v) V::store(dst + v * W, V::canon(V::fma(one, vb, V::load(tot + v * W))));
    for (std::size_t u = 0; u < rest; ++u) dt[u] = core::gemm_epilogue(A(1), tt[u], A(1), *bias);
  } else {
    for (std::size_t v = 0; v < nv; ++v) V::store(dst + v * W, V::canon(V::load(tot + v * W)));
    for (std::size_t u = 0; u < rest; ++u) dt[u] = conv_finish(tt[u]);
  }
}

/// Row blocks per (image, group, column tile) so that small problems still feed every thread.
inline std::size_t conv_row_blocks(std::size_t tasks, std::size_t rows, std::size_t mr, int threads) {
  std::size_t mb = 1;
  while (tasks * mb < 2 * static_cast<std::size_t>(threads) && (rows + 2 * mb - 1) / (2 * mb) >= 2 * mr) mb *= 2;
  return mb;
}

/// Splits [0, rows) into mb blocks whose sizes are multiples of mr (the last takes the rest).
inline void conv_row_block(std::size_t rows, std::size_t mb, std::size_t mr, std::size_t b, std::size_t& i0,
                           std::size_t& i1) {
  const std::size_t per = ((rows + mb - 1) / mb + mr - 1) / mr * mr;
  i0 = std::min(rows, b * per);
  i1 = (b + 1 == mb) ? rows : std::min(rows, (b + 1) * per);
}

/// The tiled conv ops' task space: (group, column tile, row block), the row block fastest. Row
/// blocks (multiples of mr) exist only to feed every thread on small problems; `operator()`
/// decodes one task index into its group, column tile and row range [i0, i1) (empty: skip).
struct conv_tile_tasks {
  struct task {
    std::size_t g, tile, i0, i1;
  };
  std::size_t tiles, rows, mr, mb, count;
  conv_tile_tasks(std::size_t groups, std::size_t tiles_, std::size_t rows_, std::size_t mr_, int threads)
      : tiles(tiles_), rows(rows_), mr(mr_), mb(conv_row_blocks(groups * tiles_, rows_, mr_, threads)),
        count(groups * tiles_ * mb) {}
  task operator()(std::uint64_t t0) const {
    std::size_t t = static_cast<std::size_t>(t0);
    task k;
    const std::size_t b = t % mb;
    t /= mb;
    k.tile = t % tiles;
    k.g = t / tiles;
    conv_row_block(rows, mb, mr, b, k.i0, k.i1);
    return k;
  }
};

/// Whether the depthwise fast path applies: groups == in == out channels and a kernel of at
/// most 256 taps (one canonical chunk: the chain is fma over (kernel row, column) from +0).
inline bool conv_is_depthwise(const conv2d_shape& s) {
  return s.groups == s.in_channels && s.groups == s.out_channels && s.kernel_h * s.kernel_w <= core::gemm_k_chunk;
}

/// The column tiles of forward and backward-data: columns are (image, position) pairs, q = n * P
/// + p. Images of at least JT positions are cut into tiles of JT positions (a tile never crosses
/// an image); smaller ones are packed JT / P whole images to a tile, so that small images (late
/// CNN layers, small inputs) still fill the micro kernel's columns. A tiling choice only: every
/// column's chain is the same.
struct conv_column_tiles {
  std::size_t N, P, JT, per_image, images_per_tile, count;
  conv_column_tiles(std::size_t n, std::size_t p, std::size_t jt) : N(n), P(p), JT(jt) {
    if (P >= JT) {
      per_image = (P + JT - 1) / JT;
      images_per_tile = 1;
      count = N * per_image;
    } else {
      per_image = 1;
      images_per_tile = JT / P;
      count = (N + images_per_tile - 1) / images_per_tile;
    }
  }
  bool packed() const { return images_per_tile > 1; }
  /// Tile t: the columns [q0, q0 + nt).
  void tile(std::size_t t, std::size_t& q0, std::size_t& nt) const {
    if (!packed()) {
      const std::size_t n = t / per_image, p0 = (t % per_image) * JT;
      q0 = n * P + p0;
      nt = std::min(JT, P - p0);
    } else {
      const std::size_t n0 = t * images_per_tile;
      q0 = n0 * P;
      nt = (std::min(N, n0 + images_per_tile) - n0) * P;
    }
  }
};

/// One task of the column-tiled ops (forward, backward-data, padded rows): its group, rows
/// [i0, i1) (empty: nothing to do) and columns [q0, q0 + nt) of `tiles`.
struct conv_column_task {
  std::size_t g, i0, i1, q0, nt;
};
inline conv_column_task conv_column_task_of(const conv_tile_tasks& tasks, const conv_column_tiles& tiles,
                                            std::uint64_t t0) {
  const conv_tile_tasks::task k = tasks(t0);
  conv_column_task c{k.g, k.i0, k.i1, 0, 0};
  if (k.i0 < k.i1) tiles.tile(k.tile, c.q0, c.nt);
  return c;
}

/// For packed tiles: where each kernel tap reads for each position of an image, as an offset
/// into the image's channel 0 (channel c adds c * channel_stride), or -1 for a zero (padding, or
/// for backward-data a position off the stride grid). map[kk * P + p], kk = kernel row * KW +
/// kernel column; from core::conv_tap_in (forward: x at output position p) or core::conv_tap_out
/// (backward-data: dy at input position p).
inline void conv_tap_map(const conv2d_shape& s, bool backward_data, std::vector<std::ptrdiff_t>& map) {
  const std::size_t KH = s.kernel_h, KW = s.kernel_w;
  const bool nchw = s.data == layout::nchw;
  // forward: positions are (oh, ow) of y, sources (ih, iw) of x; backward-data the reverse.
  const std::size_t PH = backward_data ? s.in_h : s.out_h(), PW = backward_data ? s.in_w : s.out_w();
  const std::size_t SH = backward_data ? s.out_h() : s.in_h, SW = backward_data ? s.out_w() : s.in_w;
  const std::size_t SC = backward_data ? s.out_channels : s.in_channels;
  const std::size_t P = PH * PW;
  map.resize(KH * KW * P);
  for (std::size_t kr = 0; kr < KH; ++kr)
    for (std::size_t kc = 0; kc < KW; ++kc)
      for (std::size_t ph = 0; ph < PH; ++ph)
        for (std::size_t pw = 0; pw < PW; ++pw) {
          std::size_t sh, sw;
          const bool in = backward_data
                              ? core::conv_tap_out(ph, kr, s.stride_h, s.pad_h, s.dilation_h, SH, sh) &&
                                    core::conv_tap_out(pw, kc, s.stride_w, s.pad_w, s.dilation_w, SW, sw)
                              : core::conv_tap_in(ph, kr, s.stride_h, s.pad_h, s.dilation_h, SH, sh) &&
                                    core::conv_tap_in(pw, kc, s.stride_w, s.pad_w, s.dilation_w, SW, sw);
          const std::size_t spos = sh * SW + sw;
          map[(kr * KW + kc) * P + ph * PW + pw] = in ? static_cast<std::ptrdiff_t>(nchw ? spos : spos * SC) : -1;
        }
}

/// The AVX-512 tiny-image permute of one tap (see conv_gather_mapped), from the tap's map row:
/// lane p of an image takes source element ix[p] where bit p of `valid` is set (+0 elsewhere);
/// `load` masks the source elements read. `ok`: whole images of at most 16 positions whose
/// sources lie within the first 16 elements (NCHW planes of up to 4x4). Built once per call.
struct conv_tap_perm {
  alignas(64) std::int32_t ix[16] = {};
  std::uint32_t valid = 0, load = 0;
  bool ok = false;
};
inline void conv_tap_perms(const std::vector<std::ptrdiff_t>& map, std::size_t P, std::vector<conv_tap_perm>& perms) {
  const std::size_t taps = P ? map.size() / P : 0;
  perms.assign(taps, conv_tap_perm{});
  if (P > 16) return;
  for (std::size_t t = 0; t < taps; ++t) {
    conv_tap_perm& q = perms[t];
    const std::ptrdiff_t* m = map.data() + t * P;
    std::ptrdiff_t top = -1;
    for (std::size_t p = 0; p < P; ++p) {
      if (m[p] >= 0) {
        q.ix[p] = static_cast<std::int32_t>(m[p] < 16 ? m[p] : 0);
        q.valid |= 1u << p;
      }
      top = std::max(top, m[p]);
    }
    q.ok = top < 16;
    // The sources read: elements [0, top]; only for a usable plan (top may reach far past 31).
    q.load = q.ok ? (1u << static_cast<unsigned>(top + 1)) - 1u : 0u;
  }
}

/// One tap's im2col row over the columns [q0, q0 + nt) (q = image * P + position): column j =
/// the source of image (q0 + j) / P at channel offset `base` and the tap's map entry of position
/// (q0 + j) % P, widened to A; 0 where the map says -1. Column j is stored at
/// d[(j / seg) * seg_stride + j % seg] (seg >= nt, seg_stride 0: a plain row; seg = NT,
/// seg_stride = klen * NT: straight into the micro kernel's B panels). On AVX-512 float with
/// the tap's permute plan `perm` (nullable) whole tiny images take one masked load, one permute
/// and one masked store; otherwise (float or double, no widening) eight entries at a time with
/// masked gathers (a -1 entry is masked off: never read, left +0). The same copies, so the same
/// bits. No division per image: the image and position advance with the columns.
template <class Arch, class A, class X>
inline void conv_gather_mapped(const X* src, std::size_t image_stride, std::size_t base, const std::ptrdiff_t* m,
                               const conv_tap_perm* perm, std::size_t P, std::size_t q0, std::size_t nt, A* d,
                               std::size_t seg, std::size_t seg_stride) {
  std::size_t n = q0 / P, p = q0 % P, sj = 0;  // image, position, column within the segment
  A* dseg = d;
  if (image_stride == 0) {  // an empty input (all taps in the padding): nothing to read
    for (std::size_t j = 0; j < nt;) {
      const std::size_t len = std::min(nt - j, seg - sj);
      std::fill(dseg + sj, dseg + sj + len, A(0));
      j += len;
      sj += len;
      if (sj == seg) { sj = 0; dseg += seg_stride; }
    }
    return;
  }
  (void)perm;
  for (std::size_t j = 0; j < nt;) {  // runs inside one image and one segment
    const std::size_t len = std::min(std::min(nt - j, P - p), seg - sj);
    const X* img = src + n * image_stride + base;
    const std::ptrdiff_t* mp = m + p;
    A* dd = dseg + sj;
    std::size_t u = 0;
#if XSIMD_WITH_AVX512BW
    if constexpr (std::is_same<Arch, xsimd::avx512bw>::value && std::is_same<A, X>::value &&
                  std::is_same<A, float>::value) {
      if (perm && perm->ok && p == 0 && len == P) {
        const __m512 v = _mm512_maskz_loadu_ps(static_cast<__mmask16>(perm->load), img);
        const __m512i ix = _mm512_load_si512(static_cast<const void*>(perm->ix));
        _mm512_mask_storeu_ps(dd, static_cast<__mmask16>((1u << P) - 1u),
                              _mm512_maskz_permutexvar_ps(static_cast<__mmask16>(perm->valid), ix, v));
        u = len;
      }
    }
    if constexpr (std::is_same<Arch, xsimd::avx512bw>::value && std::is_same<A, X>::value &&
                  (std::is_same<A, float>::value || std::is_same<A, double>::value) &&
                  sizeof(std::ptrdiff_t) == 8) {
      const __m512i zero = _mm512_setzero_si512();
      for (; u + 8 <= len; u += 8) {
        const __m512i o = _mm512_loadu_si512(static_cast<const void*>(mp + u));
        const __mmask8 k = _mm512_cmpge_epi64_mask(o, zero);
        if constexpr (std::is_same<A, float>::value)
          _mm256_storeu_ps(dd + u, _mm512_mask_i64gather_ps(_mm256_setzero_ps(), k, o, img, 4));
        else
          _mm512_storeu_pd(dd + u, _mm512_mask_i64gather_pd(_mm512_setzero_pd(), k, o, img, 8));
      }
    }
#endif
    for (; u < len; ++u) {  // branch-free: a padding tap reads img[0], then drops it
      const std::ptrdiff_t o = mp[u];
      const A v = static_cast<A>(core::widen(img[o < 0 ? 0 : o]));
      dd[u] = o < 0 ? A(0) : v;
    }
    j += len;
    p += len;
    if (p == P) { p = 0; ++n; }
    sj += len;
    if (sj == seg) { sj = 0; dseg += seg_stride; }
  }
}

/// The rows [r0, r1) of a packed tile's B, r = (channel - c0) * KK + tap, straight into the micro
/// kernel's NT-wide panels ([jj / NT][r - r0][NT]), when every image is tiny enough for the
/// AVX-512 permute (each tap's plan ok, P divides NT, the tile starts at image n0 and holds
/// `images` whole images): per channel and image, one masked load of the source plane serves all
/// of that channel's taps in the chunk, each one permute and one masked store. The same copies
/// as conv_gather_mapped, so the same bits. Returns false (nothing written) when it does not apply.
template <class Arch, class E, class A, class X>
inline bool conv_tiny_panels(const X* src, std::size_t image_stride, std::size_t chan_stride, std::size_t c0,
                             std::size_t KK, const std::vector<conv_tap_perm>& perms, std::size_t P, std::size_t n0,
                             std::size_t images, std::size_t r0, std::size_t r1, A* bp) {
#if XSIMD_WITH_AVX512BW
  if constexpr (std::is_same<Arch, xsimd::avx512bw>::value && std::is_same<A, X>::value &&
                std::is_same<A, float>::value) {
    if (image_stride == 0 || P == 0 || E::NT % P != 0 || perms.size() != KK) return false;
    std::uint32_t load = 0;
    for (const conv_tap_perm& q : perms) {
      if (!q.ok) return false;
      load |= q.load;
    }
    const std::size_t klen = r1 - r0, NT = E::NT;
    const __mmask16 lm = static_cast<__mmask16>(load), sm = static_cast<__mmask16>((1u << P) - 1u);
    for (std::size_t r = r0; r < r1;) {
      const std::size_t ch = c0 + r / KK, t0 = r % KK, t1 = std::min(KK, t0 + (r1 - r));
      const X* plane = src + n0 * image_stride + ch * chan_stride;
      A* row = bp + (r - r0) * NT;
      for (std::size_t i = 0; i < images; ++i) {
        const std::size_t col = i * P;
        A* d = row + (col / NT) * klen * NT + col % NT;
        const __m512 v = _mm512_maskz_loadu_ps(lm, plane + i * image_stride);
        for (std::size_t t = t0; t < t1; ++t) {
          const conv_tap_perm& q = perms[t];
          const __m512i ix = _mm512_load_si512(static_cast<const void*>(q.ix));
          _mm512_mask_storeu_ps(d + (t - t0) * NT, sm,
                                _mm512_maskz_permutexvar_ps(static_cast<__mmask16>(q.valid), ix, v));
        }
      }
      r += t1 - t0;
    }
    return true;
  }
#endif
  (void)src, (void)image_stride, (void)chan_stride, (void)c0, (void)KK, (void)perms, (void)P, (void)n0;
  (void)images, (void)r0, (void)r1, (void)bp;
  return false;
}

/// Zeros the columns nt .. ntv of B panels written in place ([jj / NT][r][NT], klen rows): the
/// last panel's columns past nt, which the micro kernel multiplies but no store reads.
template <class E, class T>
inline void conv_zero_panel_tail(T* b, std::size_t klen, std::size_t nt) {
  const std::size_t full = nt / E::NT, used = nt % E::NT;
  if (used == 0) return;
  T* pan = b + full * klen * E::NT;
  for (std::size_t r = 0; r < klen; ++r) std::fill(pan + r * E::NT + used, pan + (r + 1) * E::NT, T(0));
}

// ------------------------------------------------------------------ forward

/// The output columns [lo, hi) whose tap at column offset `off` (= kc * dilation_w) lands inside
/// the input row (the others read padding).
struct conv_tap_columns {
  std::size_t off, lo, hi;
  conv_tap_columns(const conv2d_shape& s, std::size_t kc) : off(kc * s.dilation_w) {
    const std::size_t OW = s.out_w(), Wd = s.in_w;
    lo = off >= s.pad_w ? 0 : (s.pad_w - off + s.stride_w - 1) / s.stride_w;
    hi = Wd + s.pad_w > off ? std::min(OW, (Wd + s.pad_w - off - 1) / s.stride_w + 1) : 0;
  }
};

/// One im2col run: d[q] = x[n][c] at tap (kr, cols.off) for output row oh, columns ow0 + q,
/// q < len (one output row), widened to A; 0 where the tap reads padding.
template <class A, class X>
inline void conv_gather_tap_run(const conv2d_shape& s, const X* x, std::size_t n, std::size_t c, std::size_t kr,
                                const conv_tap_columns& cols, std::size_t oh, std::size_t ow0, std::size_t len, A* d) {
  const std::size_t C = s.in_channels, H = s.in_h, Wd = s.in_w;
  const std::size_t xs = s.data == layout::nchw ? 1 : C;  // element stride along w
  std::size_t ih;
  if (!core::conv_tap_in(oh, kr, s.stride_h, s.pad_h, s.dilation_h, H, ih) || cols.lo >= cols.hi) {
    std::fill(d, d + len, A(0));
    return;
  }
  const std::size_t a0 = std::min(std::max(cols.lo, ow0), ow0 + len), a1 = std::max(std::min(cols.hi, ow0 + len), a0);
  if (a0 == a1) {  // no column of this run reads the row (and a0 may lie left of the row's start)
    std::fill(d, d + len, A(0));
    return;
  }
  std::fill(d, d + (a0 - ow0), A(0));
  const X* src = x + core::conv_offset(s.data, C, H, Wd, n, c, ih, 0) + (a0 * s.stride_w + cols.off - s.pad_w) * xs;
  const std::size_t step = s.stride_w * xs;
  A* dd = d + (a0 - ow0);
  if (step == 1)
    for (std::size_t q = 0; q < a1 - a0; ++q) dd[q] = static_cast<A>(core::widen(src[q]));
  else
    for (std::size_t q = 0; q < a1 - a0; ++q) dd[q] = static_cast<A>(core::widen(src[q * step]));
  std::fill(d + (a1 - ow0), d + len, A(0));
}


/// Forward (any strides) and backward-data (unit strides), NCHW, on padded rows. The source
/// (forward: x; backward-data: dy), zero-padded to Hp x Wp, is copied (widened) into stride-phase
/// planes: element (hp, wp) of channel c goes to phase (hp % sh, wp % sw) at row hp / sh, column
/// wp / sw of a Hq x Wq plane (Hq = ceil(Hp / sh), Wq = ceil(Wp / sw); unit strides: one plane,
/// the padded source itself), a pass of at most about 4 Mi elements of images at a time. The
/// output positions are taken on the plane pitch, p' = oh * Wq + ow for ow < Wq: the Wq - OW
/// columns past the OW kept ones are computed and dropped. Tap (kr, kc) of source channel c, at
/// offsets (u, v) = (kr' * dilation_h, kc' * dilation_w) in the window (forward: kr' = kr,
/// kc' = kc; backward-data: kr' = KH - 1 - kr, kc' = KW - 1 - kc), then reads phase
/// (u % sh, v % sw) of channel c at (u / sh) * Wq + v / sw + p' for every p', so B's rows are
/// read on the planes in place (the micro kernel's tile_offsets) or copied as contiguous runs.
/// Taps outside the source read the planes' zeros (+0, as the gathered im2col writes), so every
/// kept column's chain - and its bits - is the gathered tiles'.
struct conv_rows_geometry {
  std::size_t N, G;
  std::size_t SC, SH, SW;    // the source: channels, rows, columns
  std::size_t top, left;     // zeros above and left of the source when padded
  std::size_t Hp, Wp;        // the padded source (Hp >= top + SH, Wp >= left + SW)
  std::size_t OC, OH, OW;    // the output: channels, rows, kept columns
  std::size_t KH, KW, dh, dw;
  std::size_t sh, sw;        // strides (backward-data: 1)
  bool flip;                 // backward-data: taps read from the far end of the window
  std::size_t Hq() const { return (Hp + sh - 1) / sh; }
  std::size_t Wq() const { return (Wp + sw - 1) / sw; }

  static conv_rows_geometry forward(const conv2d_shape& s) {
    return {s.batch, s.groups, s.in_channels, s.in_h, s.in_w, s.pad_h, s.pad_w,
            s.in_h + 2 * s.pad_h, s.in_w + 2 * s.pad_w, s.out_channels, s.out_h(), s.out_w(),
            s.kernel_h, s.kernel_w, s.dilation_h, s.dilation_w, s.stride_h, s.stride_w, false};
  }
  /// Backward-data: dy padded by (K - 1) * dilation - pad on each side (pad <= (K - 1) * dilation).
  static conv_rows_geometry backward_data(const conv2d_shape& s) {
    const std::size_t eh = (s.kernel_h - 1) * s.dilation_h, ew = (s.kernel_w - 1) * s.dilation_w;
    return {s.batch, s.groups, s.out_channels, s.out_h(), s.out_w(), eh - s.pad_h, ew - s.pad_w,
            s.in_h + eh, s.in_w + ew, s.in_channels, s.in_h, s.in_w,
            s.kernel_h, s.kernel_w, s.dilation_h, s.dilation_w, 1, 1, true};
  }
};

/// Whether an op takes conv_padded_rows: NCHW, at most one plane column in eight dropped
/// (Wq - OW <= Wq / 8); backward-data with unit strides and pads of at most (K - 1) * dilation;
/// forward strides only where every phase holds taps ((K - 1) * dilation + 1 >= stride: a 1x1
/// stride-2 kernel would copy four phases to read one). Rows of any length: with B read on the
/// planes in place, the pass over the source costs about what the gathered tiles' copies did
/// (conv_bench conv1d L16000, both ops: the same time either way, within the run-to-run noise).
template <class E>
inline bool conv_rows_apply(const conv2d_shape& s, bool backward_data) {
  if (s.data != layout::nchw || s.out_h() == 0 || s.out_w() == 0) return false;
  if (backward_data && (s.stride_h != 1 || s.stride_w != 1 || s.pad_h > (s.kernel_h - 1) * s.dilation_h ||
                        s.pad_w > (s.kernel_w - 1) * s.dilation_w))
    return false;
  if ((s.kernel_h - 1) * s.dilation_h + 1 < s.stride_h || (s.kernel_w - 1) * s.dilation_w + 1 < s.stride_w) return false;
  const conv_rows_geometry g = backward_data ? conv_rows_geometry::backward_data(s) : conv_rows_geometry::forward(s);
  return (g.Wq() - g.OW) * 8 <= g.Wq();
}

/// out = the lowered GEMM of the packed A panels `ap` (rows: out channels of a group; K index
/// (source channel in the group, kr, kc)) with the padded-rows B, finished with bias (nullable).
template <class Arch, class A, class X, class PackedA>
void conv_padded_rows(const conv_rows_geometry& q, const X* src, const PackedA& ap, const A* bias, A* out,
                      int threads) {
  using E = conv_engine<Arch, A>;
  const std::size_t N = q.N, SC = q.SC, KH = q.KH, KW = q.KW, OW = q.OW, OC = q.OC, sh = q.sh, sw = q.sw;
  const std::size_t SCg = SC / q.G, OCg = OC / q.G, K = SCg * KH * KW, P = q.OH * OW;
  const std::size_t Hq = q.Hq(), Wq = q.Wq(), plane = Hq * Wq, cplane = sh * sw * plane, Pp = q.OH * Wq;
  // A dropped column of the last rows reads up to (KW - 1) * dw / sw elements past the last
  // plane, and B read in place (below) up to NT - 1 more: zeros, never past the copy.
  const std::size_t istride = SC * cplane + (KW - 1) * q.dw + E::NT;
  const std::size_t per_pass = std::max<std::size_t>(1, (std::size_t(1) << 22) / istride);
  A* const sp = conv_reserve(conv_thread_scratch<A>().x_rows, std::min(N, per_pass) * istride);
  for (std::size_t n0 = 0; n0 < N; n0 += per_pass) {
    const std::size_t nb = std::min(per_pass, N - n0);
    parallel_chunks(threads, canonical_chunks{nb * SC, 1}, [&](std::uint64_t c0, std::uint64_t c1) {
      for (std::size_t u = c0; u < c1; ++u) {
        const std::size_t n = u / SC, c = u % SC;
        const X* sc = src + ((n0 + n) * SC + c) * q.SH * q.SW;
        for (std::size_t a = 0; a < sh; ++a)
          for (std::size_t b = 0; b < sw; ++b) {
            A* d = sp + n * istride + c * cplane + (a * sw + b) * plane;
            // The plane's columns wq whose padded column wq * sw + b lies in [left, left + SW).
            const std::size_t w0 = std::min(Wq, q.left > b ? (q.left - b + sw - 1) / sw : 0);
            const std::size_t w1 = q.left + q.SW > b ? std::max(w0, std::min(Wq, (q.left + q.SW - b + sw - 1) / sw)) : w0;
            for (std::size_t hq = 0; hq < Hq; ++hq) {
              A* row = d + hq * Wq;
              const std::size_t hp = hq * sh + a;
              if (hp < q.top || hp >= q.top + q.SH || w0 == w1) {
                std::fill(row, row + Wq, A(0));
                continue;
              }
              const X* sr = sc + (hp - q.top) * q.SW + (w0 * sw + b - q.left);
              std::fill(row, row + w0, A(0));
              if (sw == 1)
                for (std::size_t w = w0; w < w1; ++w) row[w] = static_cast<A>(core::widen(sr[w - w0]));
              else
                for (std::size_t w = w0; w < w1; ++w) row[w] = static_cast<A>(core::widen(sr[(w - w0) * sw]));
              std::fill(row + w1, row + Wq, A(0));
            }
          }
        if (c + 1 == SC) std::fill(sp + n * istride + SC * cplane, sp + (n + 1) * istride, A(0));
      }
    });
    const conv_column_tiles tiles(nb, Pp, E::JT);
    const conv_tile_tasks tasks(q.G, tiles.count, OCg, ap.h, threads);
    // Every micro-panel of NT columns within one image (tiles of one image, or of several whose
    // Pp is a multiple of NT): the micro kernel reads B's rows on the planes where they lie, by
    // a table of the taps' offsets; else the rows are copied into panels, one copy per image.
    const bool in_place = !tiles.packed() || Pp % E::NT == 0;
    // One output row (1-D), or no column dropped: a tile of one image holds out's columns
    // [p0, p0 + nt) in order, so the last chunk's micro calls write them (run_panels' out).
    const bool direct_out = !tiles.packed() && (q.OH == 1 || Wq == OW);
    parallel_chunks(threads, canonical_chunks{tasks.count, 1}, [&](std::uint64_t t0, std::uint64_t) {
      const conv_column_task k = conv_column_task_of(tasks, tiles, t0);
      const std::size_t g = k.g, i0 = k.i0, i1 = k.i1, j0 = k.q0, nt = k.nt;
      if (i0 >= i1) return;
      auto prepare = [&](std::size_t r0, std::size_t r1, A* bp, std::size_t& ldb) -> const A* {
        std::size_t c = r0 / (KH * KW), kr = (r0 / KW) % KH, kc = r0 % KW;
        std::ptrdiff_t* off = nullptr;
        const A** panel = nullptr;
        if (in_place) {
          E::offset_tables(r1 - r0, nt, off, panel);
          for (std::size_t jj = 0; jj < nt; jj += E::NT) {
            const std::size_t col = j0 + jj;
            panel[jj / E::NT] = sp + col / Pp * istride + col % Pp;
          }
        }
        for (std::size_t r = r0; r < r1; ++r) {
          const std::size_t u = (q.flip ? KH - 1 - kr : kr) * q.dh, v = (q.flip ? KW - 1 - kc : kc) * q.dw;
          const std::size_t tap_off = (g * SCg + c) * cplane + ((u % sh) * sw + v % sw) * plane + u / sh * Wq + v / sw;
          if (++kc == KW) { kc = 0; if (++kr == KH) { kr = 0; ++c; } }
          if (in_place) {
            off[r - r0] = static_cast<std::ptrdiff_t>(tap_off);
            continue;
          }
          const A* tap = sp + tap_off;
          for (std::size_t j = 0; j < nt;) {  // one copy per image of the tile
            const std::size_t col = j0 + j, nn = col / Pp, pp = col % Pp, len = std::min(nt - j, Pp - pp);
            E::row_to_panels(bp, r1 - r0, r - r0, j, tap + nn * istride + pp, len);
            j += len;
          }
        }
        if (in_place) {
          std::fill(off + (r1 - r0), off + (r1 - r0) + 8, off[r1 - r0 - 1]);
          ldb = E::by_offsets;
          return bp;
        }
        conv_zero_panel_tail<E>(bp, r1 - r0, nt);
        ldb = E::in_panels;
        return bp;
      };
      auto a_panel = [&](std::size_t i, std::size_t r0, std::size_t) { return ap.panel(g, i0 + i, r0); };
      auto store = [&](std::size_t i, const A* tot) {
        const std::size_t oc = g * OCg + i0 + i;
        for (std::size_t j = 0; j < nt;) {  // per padded output row of the tile: its OW kept columns
          const std::size_t col = j0 + j, nn = n0 + col / Pp, pp = col % Pp, oh = pp / Wq, ow = pp % Wq;
          const std::size_t len = std::min(nt - j, Wq - ow);
          if (ow < OW)
            conv_finish_run<Arch>(tot + j, out + (nn * OC + oc) * P + oh * OW + ow, std::min(len, OW - ow),
                                  bias ? bias + oc : nullptr);
          j += len;
        }
      };
      if (direct_out) {  // the tile's kept columns are one run of out: the micro calls finish them
        const std::size_t nn = n0 + j0 / Pp, p0 = j0 % Pp, oc0 = g * OCg + i0;
        if (p0 >= P) return;  // only dropped columns (1-D: a last tile past OW)
        E::run_panels(i1 - i0, K, std::min(nt, P - p0), prepare, a_panel, store, ap.h, E::MR,
                      out + (nn * OC + oc0) * P + p0, P, bias ? bias + oc0 : nullptr);
        return;
      }
      E::run_panels(i1 - i0, K, nt, prepare, a_panel, store, ap.h);
    });
  }
}

/// y = conv(x, w) + bias; w already widened to A ([OC][K]).
template <class Arch, class A, class X>
void conv_forward_kernel(const conv2d_shape& s, const X* x, const A* w, const A* bias, A* y, int threads) {
  using E = conv_engine<Arch, A>;
  const std::size_t N = s.batch, C = s.in_channels, OC = s.out_channels;
  const std::size_t KH = s.kernel_h, KW = s.kernel_w, OH = s.out_h(), OW = s.out_w(), G = s.groups;
  const std::size_t Cg = C / G, OCg = OC / G, K = Cg * KH * KW, P = OH * OW;
  const bool nchw = s.data == layout::nchw;
  // The weights as A panels, once (every column tile reads the same ones).
  const auto ap = E::pack_a_rows(G, OCg, K, [&](std::size_t g, std::size_t i) { return w + (g * OCg + i) * K; }, threads);
  // 1x1 unpadded: B is x itself (below); else unit strides take the padded rows.
  const bool b_is_x = std::is_same<X, A>::value && KH == 1 && KW == 1 && s.pad_h == 0 && s.pad_w == 0;
  if (!b_is_x && conv_rows_apply<E>(s, false)) {
    conv_padded_rows<Arch>(conv_rows_geometry::forward(s), x, ap, bias, y, threads);
    return;
  }
  const conv_column_tiles tiles(N, P, E::JT);
  std::vector<std::ptrdiff_t> map;  // packed tiles: the taps' source offsets
  if (tiles.packed()) conv_tap_map(s, false, map);
  const std::size_t image = C * s.in_h * s.in_w, cstride = nchw ? s.in_h * s.in_w : 1;
  std::vector<conv_tap_perm> perms;
  if (tiles.packed()) conv_tap_perms(map, P, perms);
  const conv_tile_tasks tasks(G, tiles.count, OCg, ap.h, threads);
  parallel_chunks(threads, canonical_chunks{tasks.count, 1}, [&](std::uint64_t t0, std::uint64_t) {
    const conv_column_task k = conv_column_task_of(tasks, tiles, t0);
    const std::size_t g = k.g, i0 = k.i0, i1 = k.i1, q0 = k.q0, nt = k.nt;
    if (i0 >= i1) return;
    const std::size_t n = q0 / P, p0 = q0 % P;  // the first column's image and position
    // 1x1, stride 1, no padding, NCHW, full tile of one image: B is x itself.
    const bool direct = std::is_same<X, A>::value && nchw && KH == 1 && KW == 1 && s.stride_h == 1 &&
                        s.stride_w == 1 && s.pad_h == 0 && s.pad_w == 0 && nt == E::JT && !tiles.packed();
    auto prepare = [&](std::size_t r0, std::size_t r1, A* bp, std::size_t& ldb) -> const A* {
      if (direct) {
        ldb = P;
        return reinterpret_cast<const A*>(x) + (n * C + g * Cg + r0) * P + p0;
      }
      std::size_t icg = r0 / (KH * KW), kr = (r0 / KW) % KH, kc = r0 % KW;
      if (tiles.packed()) {  // straight into the micro kernel's B panels
        if (!conv_tiny_panels<Arch, E>(x, image, cstride, g * Cg, KH * KW, perms, P, n, nt / P, r0, r1, bp))
        for (std::size_t r = r0; r < r1; ++r) {
          const std::size_t kk = kr * KW + kc;
          conv_gather_mapped<Arch>(x, image, (g * Cg + icg) * cstride, map.data() + kk * P, perms.data() + kk, P, q0,
                                   nt, bp + (r - r0) * E::NT, E::NT, (r1 - r0) * E::NT);
          if (++kc == KW) { kc = 0; if (++kr == KH) { kr = 0; ++icg; } }
        }
        conv_zero_panel_tail<E>(bp, r1 - r0, nt);
        ldb = E::in_panels;
        return bp;
      }
      for (std::size_t r = r0; r < r1; ++r) {
        A* dst = bp + (r - r0) * ldb;
        const std::size_t c = g * Cg + icg;
        const conv_tap_columns cols(s, kc);
        std::size_t j = 0;
        while (j < nt) {  // one run of positions in the same output row
          const std::size_t p = p0 + j, oh = p / OW, ow0 = p % OW;
          const std::size_t len = std::min(nt - j, OW - ow0);
          conv_gather_tap_run(s, x, n, c, kr, cols, oh, ow0, len, dst + j);
          j += len;
        }
        std::fill(dst + nt, dst + ldb, A(0));
        if (++kc == KW) { kc = 0; if (++kr == KH) { kr = 0; ++icg; } }
      }
      return bp;
    };
    auto a_panel = [&](std::size_t i, std::size_t r0, std::size_t) { return ap.panel(g, i0 + i, r0); };
    auto store = [&](std::size_t i, const A* tot) {
      const std::size_t oc = g * OCg + i0 + i;
      for (std::size_t j = 0; j < nt;) {  // per image of the tile
        const std::size_t q = q0 + j, nn = q / P, p = q % P, len = std::min(nt - j, P - p);
        const A* tj = tot + j;
        if (nchw) {
          conv_finish_run<Arch>(tj, y + (nn * OC + oc) * P + p, len, bias ? bias + oc : nullptr);
        } else {
          A* dst = y + (nn * P + p) * OC + oc;
          if (bias) for (std::size_t u = 0; u < len; ++u) dst[u * OC] = core::gemm_epilogue(A(1), tj[u], A(1), bias[oc]);
          else for (std::size_t u = 0; u < len; ++u) dst[u * OC] = conv_finish(tj[u]);
        }
        j += len;
      }
    };
    if (nchw && !tiles.packed())  // rows of one image: the micro kernel writes y itself
      E::run_panels(i1 - i0, K, nt, prepare, a_panel, store, ap.h, E::MR, y + (n * OC + g * OCg + i0) * P + p0, P,
                    bias ? bias + g * OCg + i0 : nullptr);
    else
      E::run_panels(i1 - i0, K, nt, prepare, a_panel, store, ap.h);
  });
}

// ------------------------------------------------------------------ backward-data

/// dx = conv_transpose(dy, w); w already widened to A ([OC][Cg][KH][KW]).
template <class Arch, class A>
void conv_backward_data_kernel(const conv2d_shape& s, const A* dy, const A* w, A* dx, int threads) {
  using E = conv_engine<Arch, A>;
  const std::size_t N = s.batch, C = s.in_channels, H = s.in_h, Wd = s.in_w, OC = s.out_channels;
  const std::size_t KH = s.kernel_h, KW = s.kernel_w, OH = s.out_h(), OW = s.out_w(), G = s.groups;
  const std::size_t Cg = C / G, OCg = OC / G, KK = KH * KW, R = OCg * KK, P = H * Wd;
  const bool nchw = s.data == layout::nchw;
  const std::size_t ys = nchw ? 1 : OC;
  // The backward-data A matrix, A[g][icg][(ocg, r, c)] = w[g * OCg + ocg][icg][r][c], as MR-row
  // panels, once (every column tile reads the same ones). A panel's rows, for one (ocg, r, c),
  // are mr weights KK apart: a panel walks w[ocg][icg0 .. icg0 + mr) block by block (in cache),
  // not row by row across all of w.
  const auto ap = E::pack_a_panels(
      G, Cg, R, threads, [&](std::size_t g, std::size_t i0, std::size_t mr, std::size_t r0, std::size_t klen, A* d) {
        std::size_t ocg = r0 / KK, t = r0 % KK;
        for (std::size_t r = 0; r < klen; ++r) {
          const A* src = w + ((g * OCg + ocg) * Cg + i0) * KK + t;
          for (std::size_t u = 0; u < mr; ++u) d[r * E::MR + u] = src[u * KK];
          if (++t == KK) { t = 0; ++ocg; }
        }
      });
  // 1x1 unpadded: B is dy itself (below); else unit strides take the padded rows.
  const bool unit_1x1 = KH == 1 && KW == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_h == 0 && s.pad_w == 0;
  if (!unit_1x1 && conv_rows_apply<E>(s, true)) {
    conv_padded_rows<Arch>(conv_rows_geometry::backward_data(s), dy, ap, static_cast<const A*>(nullptr), dx, threads);
    return;
  }
  const conv_column_tiles tiles(N, P, E::JT);
  std::vector<std::ptrdiff_t> map;  // packed tiles: the taps' source offsets in dy
  std::vector<conv_tap_perm> perms;
  if (tiles.packed()) {
    conv_tap_map(s, true, map);
    conv_tap_perms(map, P, perms);
  }
  const std::size_t image = OC * OH * OW, cstride = nchw ? OH * OW : 1;
  const conv_tile_tasks tasks(G, tiles.count, Cg, ap.h, threads);
  parallel_chunks(threads, canonical_chunks{tasks.count, 1}, [&](std::uint64_t t0, std::uint64_t) {
    const conv_column_task k = conv_column_task_of(tasks, tiles, t0);
    const std::size_t g = k.g, i0 = k.i0, i1 = k.i1, q0 = k.q0, nt = k.nt;
    if (i0 >= i1) return;
    const std::size_t n = q0 / P, p0 = q0 % P;  // the first column's image and position
    // 1x1, stride 1, no padding, NCHW, full tile of one image: B is dy itself (r = ocg).
    const bool direct = unit_1x1 && nchw && nt == E::JT && !tiles.packed();
    auto prepare = [&](std::size_t r0, std::size_t r1, A* bp, std::size_t& ldb) -> const A* {
      if (direct) {
        ldb = P;
        return dy + (n * OC + g * OCg + r0) * P + p0;
      }
      std::size_t ocg = r0 / KK, kr = (r0 / KW) % KH, kc = r0 % KW;
      if (tiles.packed()) {  // straight into the micro kernel's B panels
        if (!conv_tiny_panels<Arch, E>(dy, image, cstride, g * OCg, KK, perms, P, n, nt / P, r0, r1, bp))
        for (std::size_t r = r0; r < r1; ++r) {
          const std::size_t kk = kr * KW + kc;
          conv_gather_mapped<Arch>(dy, image, (g * OCg + ocg) * cstride, map.data() + kk * P, perms.data() + kk, P, q0,
                                   nt, bp + (r - r0) * E::NT, E::NT, (r1 - r0) * E::NT);
          if (++kc == KW) { kc = 0; if (++kr == KH) { kr = 0; ++ocg; } }
        }
        conv_zero_panel_tail<E>(bp, r1 - r0, nt);
        ldb = E::in_panels;
        return bp;
      }
      for (std::size_t r = r0; r < r1; ++r) {
        A* dst = bp + (r - r0) * ldb;
        const std::size_t oc = g * OCg + ocg;
        const std::size_t off = kc * s.dilation_w;
        std::size_t j = 0;
        while (j < nt) {
          const std::size_t p = p0 + j, ih = p / Wd, iw0 = p % Wd;
          const std::size_t len = std::min(nt - j, Wd - iw0);
          std::size_t oh;
          A* d = dst + j;
          if (!core::conv_tap_out(ih, kr, s.stride_h, s.pad_h, s.dilation_h, OH, oh)) {
            std::fill(d, d + len, A(0));
          } else {
            const A* row = dy + core::conv_offset(s.data, OC, OH, OW, n, oc, oh, 0);
            if (s.stride_w == 1) {  // ow = iw + pw - off for iw in [lo, hi)
              const std::size_t lo = off >= s.pad_w ? off - s.pad_w : 0;
              const std::size_t hi = std::min(Wd, OW + off >= s.pad_w ? OW + off - s.pad_w : 0);
              const std::size_t a0 = std::min(std::max(lo, iw0), iw0 + len), a1 = std::max(std::min(hi, iw0 + len), a0);
              std::fill(d, d + (a0 - iw0), A(0));
              if (a1 > a0) {  // only a non-empty range has a source column (a0 + pw >= off)
                const A* src = row + (a0 + s.pad_w - off) * ys;
                A* dd = d + (a0 - iw0);
                if (ys == 1) for (std::size_t q = 0; q < a1 - a0; ++q) dd[q] = src[q];
                else for (std::size_t q = 0; q < a1 - a0; ++q) dd[q] = src[q * ys];
              }
              std::fill(d + (a1 - iw0), d + len, A(0));
            } else {  // only every stride_w-th column has a source: iw + pw - off = ow * sw
              std::fill(d, d + len, A(0));
              const std::size_t sw = s.stride_w;
              std::size_t iw = iw0;
              if (iw + s.pad_w < off) iw = off - s.pad_w;
              const std::size_t rem = (iw + s.pad_w - off) % sw;
              if (rem) iw += sw - rem;
              for (; iw < iw0 + len; iw += sw) {
                const std::size_t ow = (iw + s.pad_w - off) / sw;
                if (ow >= OW) break;
                d[iw - iw0] = row[ow * ys];
              }
            }
          }
          j += len;
        }
        std::fill(dst + nt, dst + ldb, A(0));
        if (++kc == KW) { kc = 0; if (++kr == KH) { kr = 0; ++ocg; } }
      }
      return bp;
    };
    auto a_panel = [&](std::size_t i, std::size_t r0, std::size_t) { return ap.panel(g, i0 + i, r0); };
    auto store = [&](std::size_t i, const A* tot) {
      const std::size_t ic = g * Cg + i0 + i;
      for (std::size_t j = 0; j < nt;) {  // per image of the tile
        const std::size_t q = q0 + j, nn = q / P, p = q % P, len = std::min(nt - j, P - p);
        if (nchw) {
          conv_finish_run<Arch>(tot + j, dx + (nn * C + ic) * P + p, len, static_cast<const A*>(nullptr));
        } else {
          A* dst = dx + (nn * P + p) * C + ic;
          for (std::size_t u = 0; u < len; ++u) dst[u * C] = conv_finish(tot[j + u]);
        }
        j += len;
      }
    };
    if (nchw && !tiles.packed())  // rows of one image: the micro kernel writes dx itself
      E::run_panels(i1 - i0, R, nt, prepare, a_panel, store, ap.h, E::MR, dx + (n * C + g * Cg + i0) * P + p0, P);
    else
      E::run_panels(i1 - i0, R, nt, prepare, a_panel, store, ap.h);
  });
}


// ------------------------------------------------------------------ backward-data, strided

/// Backward-data with a stride leaves (stride_h * stride_w - 1) of every (stride_h * stride_w)
/// terms of an input position's chain zero by construction: the dy position is off the stride
/// grid. The lowered GEMM multiplies them all; with few input channels per group (the 7x7/2
/// stem's 3) its rows are also too few to fill the micro kernel. This path splits the input
/// positions by their phase (ih mod stride_h, iw mod stride_w): within a phase every position
/// has the same taps on the grid, and it runs only those, over zero-padded dy planes, in the
/// canonical order (increasing K index, the 256-wide chunk partials from +0 folded left to
/// right; a chunk without a grid tap is left out).
///
/// Why the bits are the reference's. A left-out term is fma(w, +0, p): with w finite its product
/// is a zero, and adding a zero to p changes nothing unless p is itself a zero, where only the
/// zero's sign can change (-0 + +0 = +0); an empty chunk's partial is +0, likewise. So the two
/// chains hold the same values step by step, except that where both hold a zero, the reference's
/// zero is -0 only if this chain's is -0 too (a left-out term can only turn -0 into +0; a term
/// both run treats both zeros alike; a non-zero term makes them equal again). Hence a result
/// other than -0 is the reference's result, and a -0 result (only reachable through a product
/// or sum that underflows to -0) is recomputed term by term with core::gemm_fixed_order_sum.
/// A non-finite weight (Inf * 0 is NaN) makes the caller take the lowered GEMM instead.
struct conv_phase_tap {
  std::size_t tap;       // the kernel row (or column)
  std::ptrdiff_t base;   // dy coordinate = position's index within its phase + base
};
/// For one axis (input extent `in`, stride st, pad p, dilation d, kernel k): per phase a in
/// [0, st), the taps r with (a + p - r * d) divisible by st, in increasing r, and base = (a + p -
/// r * d) / st; `lo` = how far below 0 any base reaches (the zero rows or columns to add in front).
struct conv_phase_axis {
  std::vector<std::vector<conv_phase_tap>> taps;
  std::size_t lo = 0, hi = 0;  // padded extent needed: [-lo, hi) in dy coordinates
  conv_phase_axis(std::size_t in, std::size_t out, std::size_t st, std::size_t p, std::size_t d, std::size_t k,
                  std::size_t slack) {
    taps.resize(st);
    hi = out;
    const auto sst = static_cast<std::ptrdiff_t>(st);
    for (std::size_t a = 0; a < st; ++a) {
      const std::size_t count = in > a ? (in - a + st - 1) / st : 0;  // positions of the phase
      for (std::size_t r = 0; r < k; ++r) {
        const std::ptrdiff_t v = static_cast<std::ptrdiff_t>(a + p) - static_cast<std::ptrdiff_t>(r * d);
        if (((v % sst) + sst) % sst != 0) continue;
        const std::ptrdiff_t base = v / sst;  // exact
        taps[a].push_back({r, base});
        if (base < 0) lo = std::max(lo, static_cast<std::size_t>(-base));
        if (count) hi = std::max<std::size_t>(hi, static_cast<std::size_t>(std::max<std::ptrdiff_t>(
                                                      0, base + static_cast<std::ptrdiff_t>(count + slack))));
      }
    }
  }
};

/// out[c][j] (+ the phase's lanes) for CB input channels and NJ vectors of positions j0 + ...:
/// per term, NJ dy vectors at p + terms[t].off and CB broadcast weights wts[t * CB + c]; a chunk
/// change folds the partials into the totals (total = partial for the first).
template <class V, int CB, int NJ, class A>
inline void conv_phase_vectors(const A* p, const std::size_t* off, const std::uint32_t* chunk, const A* wts,
                               std::size_t nterms, A* out, std::size_t ldo) {
  using reg = typename V::reg;
  constexpr int W = V::W;
  reg acc[CB][NJ];
  for (int c = 0; c < CB; ++c)
    for (int j = 0; j < NJ; ++j) acc[c][j] = V::zero();
  // The totals stay in memory (out): a fold comes once per 256-wide chunk.
  bool first = true;
  std::uint32_t cur = nterms ? chunk[0] : 0;
  auto fold = [&] {
    for (int c = 0; c < CB; ++c)
      for (int j = 0; j < NJ; ++j) {
        A* o = out + c * ldo + j * W;
        V::store(o, first ? acc[c][j] : V::add(V::load(o), acc[c][j]));
        acc[c][j] = V::zero();
      }
    first = false;
  };
  for (std::size_t t = 0; t < nterms; ++t) {
    if (chunk[t] != cur) { fold(); cur = chunk[t]; }
    const A* q = p + off[t];
    reg d[NJ];
#pragma GCC unroll 8
    for (int j = 0; j < NJ; ++j) d[j] = V::load(q + j * W);
#pragma GCC unroll 8
    for (int c = 0; c < CB; ++c) {
      const reg wv = V::bcast(wts + t * CB + c);
#pragma GCC unroll 8
      for (int j = 0; j < NJ; ++j) acc[c][j] = V::fma(d[j], wv, acc[c][j]);
    }
  }
  fold();  // with no term at all: the empty sum, +0
}

template <class V, int CB, int NJ, class A>
inline void conv_phase_vectors_n(int nj, const A* p, const std::size_t* off, const std::uint32_t* chunk, const A* wts,
                                 std::size_t nterms, A* out, std::size_t ldo) {
  if constexpr (NJ > 1) {
    if (nj < NJ) return conv_phase_vectors_n<V, CB, NJ - 1>(nj, p, off, chunk, wts, nterms, out, ldo);
  }
  conv_phase_vectors<V, CB, NJ>(p, off, chunk, wts, nterms, out, ldo);
}

/// Whether conv_backward_data_phases applies: a stride above 1, at most 4 input channels per
/// group, and finite weights (w already widened).
template <class A>
bool conv_backward_data_phases_apply(const conv2d_shape& s, const A* w) {
  if (s.stride_h == 1 && s.stride_w == 1) return false;
  if (s.in_channels / s.groups > 4) return false;
  const std::size_t n = s.out_channels * (s.in_channels / s.groups) * s.kernel_h * s.kernel_w;
  for (std::size_t i = 0; i < n; ++i)
    if (!(w[i] - w[i] == A(0))) return false;  // Inf or NaN
  return true;
}

/// dx = conv_transpose(dy, w) by phases (see above); w already widened to A ([OC][Cg][KH][KW]).
template <class Arch, class A>
void conv_backward_data_phases(const conv2d_shape& s, const A* dy, const A* w, A* dx, int threads) {
  using V = typename gemm_arch<Arch, A>::V;
  constexpr std::size_t VW = static_cast<std::size_t>(V::W), NJmax = VW >= 16 ? 4 : 2;
  const core::conv_dims d(s);
  const std::size_t N = d.N, C = d.C, H = d.H, Wd = d.W, OC = d.OC, OH = d.OH, OW = d.OW, G = d.G, Cg = d.Cg,
                    OCg = d.OCg, KH = d.KH, KW = d.KW, KK = KH * KW, K = OCg * KK;
  const std::size_t sh = s.stride_h, sw = s.stride_w;
  const conv_phase_axis ah(H, OH, sh, s.pad_h, s.dilation_h, KH, 0);
  const conv_phase_axis aw(Wd, OW, sw, s.pad_w, s.dilation_w, KW, NJmax * VW);
  // dy as zero-padded planes [n][oc][lo + oh][lo + ow]: every grid tap of every phase position
  // (and a vector's lanes past the phase's end) reads inside.
  const std::size_t Hq = ah.lo + ah.hi, Wq = aw.lo + aw.hi, plane = Hq * Wq;
  A* dyq = conv_reserve(conv_thread_scratch<A>().dy_phase, N * OC * plane);
  const bool nchw = s.data == layout::nchw;
  parallel_chunks(threads, canonical_chunks{N * OC, 1}, [&](std::uint64_t q0, std::uint64_t q1) {
    for (std::size_t q = q0; q < q1; ++q) {
      const std::size_t n = q / OC, oc = q % OC;
      A* dst = dyq + q * plane;
      std::fill(dst, dst + ah.lo * Wq, A(0));
      for (std::size_t oh = 0; oh < OH; ++oh) {
        A* row = dst + (ah.lo + oh) * Wq;
        std::fill(row, row + aw.lo, A(0));
        if (nchw) {
          std::copy(dy + ((n * OC + oc) * OH + oh) * OW, dy + ((n * OC + oc) * OH + oh + 1) * OW, row + aw.lo);
        } else {
          const A* src = dy + (n * OH + oh) * OW * OC + oc;
          for (std::size_t ow = 0; ow < OW; ++ow) row[aw.lo + ow] = src[ow * OC];
        }
        std::fill(row + aw.lo + OW, row + Wq, A(0));
      }
      std::fill(dst + (ah.lo + OH) * Wq, dst + plane, A(0));
    }
  });
  // The terms of each (group, phase), in increasing K index k = (ocg * KH + r) * KW + c: the dy
  // offset from the phase's (row 0, column 0) in image n's planes, the chunk, the Cg weights.
  struct terms {
    std::vector<std::size_t> off;
    std::vector<std::uint32_t> chunk;
    std::vector<A> wts;
  };
  std::vector<terms> ph(G * sh * sw);
  for (std::size_t g = 0; g < G; ++g)
    for (std::size_t a = 0; a < sh; ++a)
      for (std::size_t b = 0; b < sw; ++b) {
        terms& t = ph[(g * sh + a) * sw + b];
        for (std::size_t ocg = 0; ocg < OCg; ++ocg)
          for (const conv_phase_tap& r : ah.taps[a])
            for (const conv_phase_tap& c : aw.taps[b]) {
              const std::size_t oc = g * OCg + ocg, k = (ocg * KH + r.tap) * KW + c.tap;
              t.off.push_back(oc * plane + static_cast<std::size_t>(r.base + static_cast<std::ptrdiff_t>(ah.lo)) * Wq +
                              static_cast<std::size_t>(c.base + static_cast<std::ptrdiff_t>(aw.lo)));
              t.chunk.push_back(static_cast<std::uint32_t>(k / conv_chunk));
              for (std::size_t icg = 0; icg < Cg; ++icg) t.wts.push_back(w[(oc * Cg + icg) * KK + r.tap * KW + c.tap]);
            }
      }
  // Tasks: (image, group, block of input rows). Each input row runs its sw column phases into
  // rowbuf[icg][iw], then finishes and stores it.
  const std::size_t RB = 4, blocks = (H + RB - 1) / RB;
  parallel_chunks(threads, canonical_chunks{N * G * blocks, 1}, [&](std::uint64_t t0, std::uint64_t) {
    const std::size_t blk = static_cast<std::size_t>(t0) % blocks, ng = static_cast<std::size_t>(t0) / blocks;
    const std::size_t n = ng / G, g = ng % G;
    const std::size_t WaMax = (Wd + sw - 1) / sw, ldo = (WaMax + NJmax * VW) / VW * VW;
    conv_scratch<A>& sc = conv_thread_scratch<A>();
    A* phase_out = conv_reserve(sc.total, Cg * ldo);  // [icg][j] of one phase
    A* rowbuf = conv_reserve(sc.a, Cg * Wd);          // [icg][iw]
    for (std::size_t ih = blk * RB; ih < std::min(H, (blk + 1) * RB); ++ih) {
      const std::size_t a = ih % sh, i = ih / sh;
      for (std::size_t b = 0; b < sw && b < Wd; ++b) {
        const terms& t = ph[(g * sh + a) * sw + b];
        const std::size_t Wa = (Wd - b + sw - 1) / sw;
        const A* base = dyq + n * OC * plane + i * Wq;
        for (std::size_t j0 = 0; j0 < Wa; j0 += NJmax * VW) {
          const int nj = static_cast<int>(std::min(NJmax, (Wa - j0 + VW - 1) / VW));
          const std::size_t nt = t.off.size();
          A* o = phase_out + j0;
          switch (Cg) {
            case 1: conv_phase_vectors_n<V, 1, NJmax>(nj, base + j0, t.off.data(), t.chunk.data(), t.wts.data(), nt, o, ldo); break;
            case 2: conv_phase_vectors_n<V, 2, NJmax>(nj, base + j0, t.off.data(), t.chunk.data(), t.wts.data(), nt, o, ldo); break;
            case 3: conv_phase_vectors_n<V, 3, NJmax>(nj, base + j0, t.off.data(), t.chunk.data(), t.wts.data(), nt, o, ldo); break;
            default: conv_phase_vectors_n<V, 4, NJmax>(nj, base + j0, t.off.data(), t.chunk.data(), t.wts.data(), nt, o, ldo); break;
          }
        }
        for (std::size_t icg = 0; icg < Cg; ++icg)
          for (std::size_t j = 0; j < Wa; ++j) rowbuf[icg * Wd + b + j * sw] = phase_out[icg * ldo + j];
      }
      for (std::size_t icg = 0; icg < Cg; ++icg) {
        const std::size_t ic = g * Cg + icg;
        A* r = rowbuf + icg * Wd;
        for (std::size_t iw = 0; iw < Wd; ++iw) {
          if (r[iw] == A(0) && std::signbit(r[iw])) {  // -0: the reference's sign of zero, term by term
            r[iw] = core::gemm_fixed_order_sum<A>(
                K, [&](std::size_t k) { return core::conv_backward_data_dy_term<A>(s, d, dy, n, ic, ih, iw, k); },
                [&](std::size_t k) { return core::conv_backward_data_w_term<A>(d, w, ic, k); });
          }
        }
        if (nchw) {
          conv_finish_run<Arch>(r, dx + ((n * C + ic) * H + ih) * Wd, Wd, static_cast<const A*>(nullptr));
        } else {
          A* dst = dx + (n * H + ih) * Wd * C + ic;
          for (std::size_t iw = 0; iw < Wd; ++iw) dst[iw * C] = conv_finish(r[iw]);
        }
      }
    }
  });
}
// ------------------------------------------------------------------ backward-weight

#if defined(__AVX512F__)
/// rows[p][c] = src[c][p] for a 16 x 16 float block (src rows lds apart; rows: the 16 output
/// rows), in registers, with its first stage done by the loads: each register gathers four
/// 128-bit pieces (rows i, i + 4, i + 8, i + 12 of a column group) with inserts from memory,
/// which issue on the load ports and port 0 as well as 5, so only the two in-lane unpack stages
/// (32 shuffles instead of 64) need the shuffle port.
inline void conv_transpose16_avx512_ins(const float* src, std::size_t lds, float* const* rows) {
  constexpr __mmask16 all = 0xFFFF;
  for (int j = 0; j < 4; ++j) {  // column group 4j .. 4j + 3
    __m512 a[4];
    for (int i = 0; i < 4; ++i) {  // lane L: row 4L + i, columns 4j .. 4j + 3
      const float* p = src + static_cast<std::size_t>(i) * lds + 4 * j;
      __m512 v = _mm512_castps128_ps512(_mm_loadu_ps(p));
      v = _mm512_insertf32x4(v, _mm_loadu_ps(p + 4 * lds), 1);
      v = _mm512_insertf32x4(v, _mm_loadu_ps(p + 8 * lds), 2);
      a[i] = _mm512_insertf32x4(v, _mm_loadu_ps(p + 12 * lds), 3);
    }
    const __m512 t0 = _mm512_mask_unpacklo_ps(a[0], all, a[0], a[1]), t1 = _mm512_mask_unpackhi_ps(a[0], all, a[0], a[1]);
    const __m512 t2 = _mm512_mask_unpacklo_ps(a[2], all, a[2], a[3]), t3 = _mm512_mask_unpackhi_ps(a[2], all, a[2], a[3]);
    auto lo = [](__m512 x, __m512 y) {
      return _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(x), _mm512_castps_pd(y)));
    };
    auto hi = [](__m512 x, __m512 y) {
      return _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(x), _mm512_castps_pd(y)));
    };
    _mm512_storeu_ps(rows[4 * j + 0], lo(t0, t2));
    _mm512_storeu_ps(rows[4 * j + 1], hi(t0, t2));
    _mm512_storeu_ps(rows[4 * j + 2], lo(t1, t3));
    _mm512_storeu_ps(rows[4 * j + 3], hi(t1, t3));
  }
}

/// conv_transpose16_avx512_ins for a partial block: source rows i < nrows (the rest read as +0),
/// the positions of pmask (the rest +0); rows[p] must be writable for all 16 p.
inline void conv_transpose16_avx512_part(const float* src, std::size_t lds, std::size_t nrows, __mmask16 pmask,
                                         float* const* rows) {
  alignas(64) float tmp[16 * 16];
  for (std::size_t i = 0; i < 16; ++i)
    _mm512_store_ps(tmp + i * 16, i < nrows ? _mm512_maskz_loadu_ps(pmask, src + i * lds) : _mm512_setzero_ps());
  conv_transpose16_avx512_ins(tmp, 16, rows);
}
#endif

/// *dst_of(n, p, c) = widen(src[n][c][p]) (NCHW -> an NHWC form, P = H * W; dst_of(n, p, c)
/// points at channel c of position p, and channels c .. c + 15 from a c that is a multiple of 16
/// must be contiguous: rows may be padded, placed in a padded plane, or blocked by channel): 32 x
/// 32 tiles, threads over (image, tile of channels). A copy, so any method gives the same values
/// (AVX-512 float: whole 16 x 16 blocks in registers).
template <class Arch, class A, class X, class DstOf>
void conv_nchw_to_nhwc(const X* src, std::size_t N, std::size_t C, std::size_t P, DstOf dst_of, int threads,
                       std::size_t cbegin = 0, std::size_t cend = ~std::size_t(0)) {
  constexpr std::size_t T = 32;
  cend = std::min(cend, C);
  const std::size_t ct = (cend - cbegin + T - 1) / T;
  parallel_chunks(threads, canonical_chunks{N * ct, 1}, [&](std::uint64_t q0, std::uint64_t q1) {
    for (std::size_t q = q0; q < q1; ++q) {
      const std::size_t n = q / ct, c0 = cbegin + (q % ct) * T, c1 = std::min(cend, c0 + T);
      for (std::size_t p0 = 0; p0 < P; p0 += T) {
        const std::size_t p1 = std::min(P, p0 + T);
        std::size_t cdone = c0, pdone = p0;  // [c0, cdone) x [p0, pdone) done in 16 x 16 blocks
#if defined(__AVX512F__) && XSIMD_WITH_AVX512BW
        if constexpr (std::is_same<Arch, xsimd::avx512bw>::value && std::is_same<A, float>::value &&
                      std::is_same<X, float>::value) {
          cdone = c0 + (c1 - c0) / 16 * 16;
          pdone = p0 + (p1 - p0) / 16 * 16;
          float* rows[16];
          for (std::size_t p = p0; p < pdone; p += 16)
            for (std::size_t c = c0; c < cdone; c += 16) {
              for (std::size_t i = 0; i < 16; ++i) rows[i] = dst_of(n, p + i, c);
              conv_transpose16_avx512_ins(src + (n * C + c) * P + p, P, rows);
            }
        }
#endif
        for (std::size_t p = p0; p < p1; ++p)
          for (std::size_t c = (p < pdone ? cdone : c0); c < c1; ++c)
            *dst_of(n, p, c) = static_cast<A>(core::widen(src[(n * C + c) * P + p]));
      }
    }
  });
}

/// The dbias chains of one vector of out-channels: for each 256-wide chunk of k', p = p + dy from
/// +0 (= fma(dy, 1, p)) over rows ld apart, chunks combined in order into total[0 .. W).
template <class V, class A>
void conv_dbias_vector(const A* src, std::size_t ld, std::size_t R, A* total) {
  for (std::size_t r0 = 0; r0 < R; r0 += conv_chunk) {
    const std::size_t r1 = std::min(R, r0 + conv_chunk);
    typename V::reg p = V::zero();
    for (std::size_t r = r0; r < r1; ++r) p = V::add(p, V::load(src + r * ld));
    V::store(total, r0 == 0 ? p : V::add(V::load(total), p));
  }
}

/// The k' walk of the depthwise backward-weight kernels: step(d, xb) for k' = r0 .. r1 - 1 in
/// order, d = dyp + (k' - r0) * BW (dy of k'), xb = the x copy at k''s window corner
/// (xrow(n, oh * stride_h) + ow * stride_w * BW). Runs go along one output row, so (n, oh, ow)
/// are stepped, never divided per k'.
template <class A, class XRow, class Step>
inline void conv_depthwise_walk(const conv2d_shape& s, const A* dyp, XRow xrow, std::size_t BW, std::size_t r0,
                                std::size_t r1, Step&& step) {
  const std::size_t OH = s.out_h(), OW = s.out_w(), P = OH * OW, xs = s.stride_w * BW;
  const A* d = dyp;
  std::size_t n = r0 / P, oh = (r0 % P) / OW, ow = r0 % OW;
  for (std::size_t r = r0; r < r1;) {
    const std::size_t len = std::min(r1 - r, OW - ow);
    const A* xb = xrow(n, oh * s.stride_h) + ow * xs;
    for (std::size_t u = 0; u < len; ++u, d += BW, xb += xs) step(d, xb);
    r += len;
    ow = 0;
    if (++oh == OH) oh = 0, ++n;
  }
}

/// Up to 12 taps' chains at once for NV channel vectors over the k' of [r0, r1), one canonical
/// chunk: per k', one dy load serves every tap of the group (TG x NV independent chains held in
/// registers), each chain from +0, stored into part[t][NV vectors] (the chunk's partials). dyp
/// points at k' = r0 (rows BW apart); xrow(n, h) at padded row h of image n of the x copy.
/// Runs go along one output row, so the loop steps pointers and never divides.
template <class V, std::size_t NV, std::size_t TG, class A, class XRow>
void conv_depthwise_weight_group(const conv2d_shape& s, const A* dyp, XRow xrow, std::size_t BW,
                                 const std::size_t* tapoff, std::size_t r0, std::size_t r1, A* part) {
  constexpr std::size_t VW = static_cast<std::size_t>(V::W);
  typename V::reg acc[TG][NV];
  for (std::size_t t = 0; t < TG; ++t)
    for (std::size_t j = 0; j < NV; ++j) acc[t][j] = V::zero();
  conv_depthwise_walk(s, dyp, xrow, BW, r0, r1, [&](const A* d, const A* xb) {
    typename V::reg dv[NV];
    for (std::size_t j = 0; j < NV; ++j) dv[j] = V::load(d + j * VW);
    for (std::size_t t = 0; t < TG; ++t)
      for (std::size_t j = 0; j < NV; ++j) acc[t][j] = V::fma(dv[j], V::load(xb + tapoff[t] + j * VW), acc[t][j]);
  });
  for (std::size_t t = 0; t < TG; ++t)
    for (std::size_t j = 0; j < NV; ++j) V::store(part + t * NV * VW + j * VW, acc[t][j]);
}

/// conv_depthwise_weight_group for a whole KHc x KWc kernel at dilation_w 1 (3 x 3: the
/// MobileNet case): the taps' addresses are one pointer per kernel row (rs elements apart) plus
/// compile-time column offsets, so no tap offset occupies a register. The same chains. DB: the
/// chunk's dbias chains too (p = p + dy, conv_dbias_vector's), stored at part + KHc * KWc * BW.
template <class V, std::size_t BW, std::size_t NV, std::size_t KHc, std::size_t KWc, bool DB, class A, class XRow>
void conv_depthwise_weight_kernel(const conv2d_shape& s, const A* dyp, XRow xrow, const std::size_t rs,
                                  std::size_t r0, std::size_t r1, A* part) {
  constexpr std::size_t VW = static_cast<std::size_t>(V::W);
  typename V::reg acc[KHc][KWc][NV], db[NV];
  for (std::size_t j = 0; j < NV; ++j) db[j] = V::zero();
  for (std::size_t i = 0; i < KHc; ++i)
    for (std::size_t c = 0; c < KWc; ++c)
      for (std::size_t j = 0; j < NV; ++j) acc[i][c][j] = V::zero();
  conv_depthwise_walk(s, dyp, xrow, BW, r0, r1, [&](const A* d, const A* xb) {
    typename V::reg dv[NV];
    for (std::size_t j = 0; j < NV; ++j) dv[j] = V::load(d + j * VW);
    if (DB)
      for (std::size_t j = 0; j < NV; ++j) db[j] = V::add(db[j], dv[j]);
    for (std::size_t i = 0; i < KHc; ++i) {
      const A* xr = xb + i * rs;
      for (std::size_t c = 0; c < KWc; ++c)
        for (std::size_t j = 0; j < NV; ++j) acc[i][c][j] = V::fma(dv[j], V::load(xr + c * BW + j * VW), acc[i][c][j]);
    }
  });
  for (std::size_t i = 0; i < KHc; ++i)
    for (std::size_t c = 0; c < KWc; ++c)
      for (std::size_t j = 0; j < NV; ++j) V::store(part + ((i * KWc + c) * NV + j) * VW, acc[i][c][j]);
  if (DB)
    for (std::size_t j = 0; j < NV; ++j) V::store(part + KHc * KWc * BW + j * VW, db[j]);
}

/// conv_depthwise_weight_group with TG chosen at run time (1 .. 12).
template <class V, std::size_t NV, std::size_t TG = 12, class A, class XRow>
void conv_depthwise_weight_groups(std::size_t tg, const conv2d_shape& s, const A* dyp, XRow xrow, std::size_t BW,
                                  const std::size_t* tapoff, std::size_t r0, std::size_t r1, A* part) {
  if constexpr (TG > 1)
    if (tg < TG) return conv_depthwise_weight_groups<V, NV, TG - 1>(tg, s, dyp, xrow, BW, tapoff, r0, r1, part);
  conv_depthwise_weight_group<V, NV, TG>(s, dyp, xrow, BW, tapoff, r0, r1, part);
}

/// dst[i * BW + l] = widen(src[l * lds + i]) for i < len, l < lanes (a channel block of NCHW
/// planes lds apart into [position][BW] rows), lanes lanes .. BW zero. A copy: any method gives
/// the same values (AVX-512 float: 16 x 16 blocks in registers).
template <class Arch, class A, class X>
void conv_dw_gather_nchw(const X* src, std::size_t lds, std::size_t len, std::size_t lanes, A* dst, std::size_t BW,
                         std::size_t Lr = 0, std::size_t rstride = 0) {
  if (Lr == 0) Lr = len;  // position i lands at dst + (i / Lr) * rstride + (i % Lr) * BW
  A* drow = dst;          // the destination of position i0 (i0 = rc * Lr + cc), stepped
  std::size_t cc = 0;
#if defined(__AVX512F__) && XSIMD_WITH_AVX512BW
  if constexpr (std::is_same<Arch, xsimd::avx512bw>::value && std::is_same<A, float>::value &&
                std::is_same<X, float>::value) {
    if (BW % 16 == 0) {
      alignas(64) float spill[16];  // the stores of positions past len
      float* rows[16];
      float* base[16];
      for (std::size_t i = 0; i < len; i += 16) {
        const std::size_t rem = std::min<std::size_t>(16, len - i);
        for (std::size_t q = 0; q < rem; ++q) {
          base[q] = drow + cc * BW;
          if (++cc == Lr) cc = 0, drow += rstride;
        }
        for (std::size_t l = 0; l < BW; l += 16) {
          for (std::size_t q = 0; q < 16; ++q) rows[q] = q < rem ? base[q] + l : spill;
          const std::size_t nr = lanes > l ? std::min<std::size_t>(16, lanes - l) : 0;
          if (rem == 16 && nr == 16) {
            for (std::size_t q = 0; q < 16; ++q)
              _mm_prefetch(reinterpret_cast<const char*>(src + (l + q) * lds + i + 64), _MM_HINT_T0);
            conv_transpose16_avx512_ins(src + l * lds + i, lds, rows);
          } else {
            conv_transpose16_avx512_part(src + l * lds + i, lds, nr, static_cast<__mmask16>((1u << rem) - 1), rows);
          }
        }
      }
      return;
    }
  }
#endif
  for (std::size_t i = 0; i < len; ++i) {
    A* row = drow + cc * BW;
    if (++cc == Lr) cc = 0, drow += rstride;
    for (std::size_t l = 0; l < lanes; ++l) row[l] = static_cast<A>(core::widen(src[l * lds + i]));
    for (std::size_t l = lanes; l < BW; ++l) row[l] = A(0);
  }
}

/// Depthwise backward-weight (fixed_order): dw[c][k] = the chain over k' = (n, oh, ow) of
/// fma(dy[k'][c], x at tap k, p) in 256-wide chunks folded left to right, as every conv; dbias
/// as conv_dbias_vector. Channels run in blocks of BW = NF vectors; k' in pieces of whole
/// canonical chunks. A task is one (channel block, piece): it copies the piece's dy and the x
/// rows its windows read into channel-blocked forms, [k'][BW] and [padded row][Wp][BW] (small
/// enough to stay in L2; extra lanes past C zero, never stored; padding +0: the reference's
/// zero product, so no tap needs a bounds test), and runs each chunk in groups of up to 12
/// (AVX-512) or 6 taps, one dy load serving every tap of the group, writing the chunk's partials
/// (each from +0) to its own slot. After all tasks, one pass per block folds the partials left
/// to right in chunk order (S = p_0; S = S + p_1; ...). Vectors run across channels: each lane
/// is one dw element's own chain, so threads, pieces and ISAs never change a bit.
template <class Arch, class A, class X>
void conv_depthwise_backward_weight(const conv2d_shape& s, const X* x, const A* dy, A* dw, A* dbias, int threads) {
  using V = typename gemm_arch<Arch, A>::V;
  constexpr std::size_t VW = static_cast<std::size_t>(V::W), NF = VW >= 16 ? 1 : 2, BW = NF * VW, TGmax = VW >= 16 ? 12 : 6;
  const std::size_t N = s.batch, C = s.in_channels, H = s.in_h, Wd = s.in_w, KH = s.kernel_h, KW = s.kernel_w;
  const std::size_t OH = s.out_h(), OW = s.out_w(), KK = KH * KW, P = OH * OW, R = N * P;
  const bool nchw = s.data == layout::nchw;
  if (R == 0) {  // the empty sums
    for (std::size_t i = 0; i < C * KK; ++i) dw[i] = conv_finish(A(0));
    if (dbias)
      for (std::size_t c = 0; c < C; ++c) dbias[c] = conv_finish(A(0));
    return;
  }
  const std::size_t Hp = std::max(H + s.pad_h, (OH - 1) * s.stride_h + (KH - 1) * s.dilation_h + 1);
  const std::size_t Wp = std::max(Wd + s.pad_w, (OW - 1) * s.stride_w + (KW - 1) * s.dilation_w + 1);
  std::vector<std::size_t> tapoff(KK);  // tap k's offset from its window's corner in the x copy
  for (std::size_t k = 0; k < KK; ++k) tapoff[k] = ((k / KW) * s.dilation_h * Wp + (k % KW) * s.dilation_w) * BW;
  // Pieces: about 2048 k' (8 chunks), fewer chunks when that leaves too few tasks for the threads.
  const std::size_t nb = (C + BW - 1) / BW, nck = (R + conv_chunk - 1) / conv_chunk;
  std::size_t pc = 8;
  while (pc > 1 && nb * ((nck + pc - 1) / pc) < 4 * static_cast<std::size_t>(std::max(threads, 1))) pc /= 2;
  const std::size_t np = (nck + pc - 1) / pc;
  const std::size_t slot = (KK + 1) * BW;  // one chunk's partials: [tap][BW], then dbias's [BW]
  std::vector<A>& part_buf = conv_thread_scratch<A>().a;
  A* part = conv_reserve(part_buf, nb * nck * slot);  // [block][chunk][slot]
  parallel_chunks(threads, canonical_chunks{nb * np, 1}, [&](std::uint64_t q0, std::uint64_t) {
    const std::size_t b = static_cast<std::size_t>(q0) / np, pi = static_cast<std::size_t>(q0) % np;
    const std::size_t cb = b * BW, lanes = std::min(BW, C - cb), nv = (lanes + VW - 1) / VW;
    const std::size_t c0 = pi * pc, c1 = std::min(nck, c0 + pc), R0 = c0 * conv_chunk, R1 = std::min(R, c1 * conv_chunk);
    // The padded x rows (image n, row h) the piece's windows read: flat rows n * Hp + h in
    // [f0, f1), every row of the images in between.
    const std::size_t nA = R0 / P, hA = ((R0 % P) / OW) * s.stride_h;
    const std::size_t nB = (R1 - 1) / P, hB = (((R1 - 1) % P) / OW) * s.stride_h + (KH - 1) * s.dilation_h;
    const std::size_t f0 = nA * Hp + hA, f1 = nB * Hp + hB + 1;
    conv_scratch<A>& sc = conv_thread_scratch<A>();
    A* xq = conv_reserve(sc.x_pad, (f1 - f0) * Wp * BW);
    A* dq = conv_reserve(sc.dy_pad, (R1 - R0) * BW);
    // NCHW: each image's span of input rows is contiguous per channel, so it is gathered in one
    // pass (16 x 16 blocks across row ends) straight into the padded rows.
    std::size_t sn = ~std::size_t(0);  // the image whose rows are gathered
    for (std::size_t f = f0; f < f1; ++f) {
      A* row = xq + (f - f0) * Wp * BW;
      const std::size_t n = f / Hp, h = f % Hp;
      if (h < s.pad_h || h >= s.pad_h + H) {
        std::fill(row, row + Wp * BW, A(0));
        continue;
      }
      std::fill(row, row + s.pad_w * BW, A(0));
      std::fill(row + (s.pad_w + Wd) * BW, row + Wp * BW, A(0));
      A* dst = row + s.pad_w * BW;
      const std::size_t ih = h - s.pad_h;
      if (nchw) {
        if (n != sn) {  // this image's input rows [ih, last] of the piece, straight into their rows
          const std::size_t hend = (f1 - 1) / Hp == n ? (f1 - 1) % Hp + 1 : Hp;
          const std::size_t rows = std::min(H + s.pad_h, hend) - h;
          conv_dw_gather_nchw<Arch>(x + ((n * C + cb) * H + ih) * Wd, H * Wd, rows * Wd, lanes, dst, BW, Wd, Wp * BW);
          sn = n;
        }
      } else {
        for (std::size_t w = 0; w < Wd; ++w) {
          const X* src = x + ((n * H + ih) * Wd + w) * C + cb;
          for (std::size_t l = 0; l < lanes; ++l) dst[w * BW + l] = static_cast<A>(core::widen(src[l]));
          for (std::size_t l = lanes; l < BW; ++l) dst[w * BW + l] = A(0);
        }
      }
    }
    for (std::size_t r = R0; r < R1;) {  // dy, per image
      const std::size_t n = r / P, p = r % P, len = std::min(R1 - r, P - p);
      A* dst = dq + (r - R0) * BW;
      if (nchw) {
        conv_dw_gather_nchw<Arch>(dy + (n * C + cb) * P + p, P, len, lanes, dst, BW);
      } else {
        for (std::size_t u = 0; u < len; ++u) {
          std::copy(dy + (r + u) * C + cb, dy + (r + u) * C + cb + lanes, dst + u * BW);
          std::fill(dst + u * BW + lanes, dst + (u + 1) * BW, A(0));
        }
      }
      r += len;
    }
    auto xrow = [&](std::size_t n, std::size_t h) { return xq + (n * Hp + h - f0) * Wp * BW; };
    for (std::size_t ck = c0; ck < c1; ++ck) {
      const std::size_t r0 = ck * conv_chunk, r1 = std::min(R, r0 + conv_chunk);
      A* pt = part + (b * nck + ck) * slot;
      const A* d0 = dq + (r0 - R0) * BW;
      const bool k3x3 = VW >= 16 && KH == 3 && KW == 3 && s.dilation_w == 1;
      const std::size_t rs = s.dilation_h * Wp * BW;
      if (k3x3 && nv == 2 && dbias)
        conv_depthwise_weight_kernel<V, BW, (NF > 1 ? 2 : 1), 3, 3, true>(s, d0, xrow, rs, r0, r1, pt);
      else if (k3x3 && nv == 2)
        conv_depthwise_weight_kernel<V, BW, (NF > 1 ? 2 : 1), 3, 3, false>(s, d0, xrow, rs, r0, r1, pt);
      else if (k3x3 && dbias)
        conv_depthwise_weight_kernel<V, BW, 1, 3, 3, true>(s, d0, xrow, rs, r0, r1, pt);
      else if (k3x3)
        conv_depthwise_weight_kernel<V, BW, 1, 3, 3, false>(s, d0, xrow, rs, r0, r1, pt);
      for (std::size_t k0 = 0; k0 < (k3x3 ? 0 : KK); k0 += TGmax) {
        const std::size_t tg = std::min(TGmax, KK - k0);
        A* t = pt + k0 * nv * VW;
        if (nv == 2)
          conv_depthwise_weight_groups<V, 2, TGmax>(tg, s, d0, xrow, BW, tapoff.data() + k0, r0, r1, t);
        else
          conv_depthwise_weight_groups<V, 1, TGmax>(tg, s, d0, xrow, BW, tapoff.data() + k0, r0, r1, t);
      }
      if (dbias && !k3x3)
        for (std::size_t j = 0; j < nv; ++j) conv_dbias_vector<V>(d0 + j * VW, BW, r1 - r0, pt + KK * BW + j * VW);
    }
  });
  // The left-to-right fold of each element's chunk partials, and the finish.
  parallel_chunks(threads, canonical_chunks{nb, 1}, [&](std::uint64_t b0, std::uint64_t) {
    const std::size_t b = static_cast<std::size_t>(b0), cb = b * BW, lanes = std::min(BW, C - cb);
    const std::size_t nv = (lanes + VW - 1) / VW, used = KK * nv * VW;
    A* tot = part + b * nck * slot;  // chunk 0's slot holds the running totals
    for (std::size_t ck = 1; ck < nck; ++ck) {
      const A* pt = tot + ck * slot;
      for (std::size_t i = 0; i < used; i += VW) V::store(tot + i, V::add(V::load(tot + i), V::load(pt + i)));
      if (dbias)
        for (std::size_t i = 0; i < nv * VW; i += VW)
          V::store(tot + KK * BW + i, V::add(V::load(tot + KK * BW + i), V::load(pt + KK * BW + i)));
    }
    for (std::size_t k = 0; k < KK; ++k)
      for (std::size_t l = 0; l < lanes; ++l) dw[(cb + l) * KK + k] = conv_finish(tot[k * nv * VW + l]);
    if (dbias)
      for (std::size_t l = 0; l < lanes; ++l) dbias[cb + l] = conv_finish(tot[KK * BW + l]);
  });
}

/// len contiguous elements from src to dst (whole vectors, then the rest; no library call for
/// the short runs of small channel counts).
template <class Arch, class A>
inline void conv_copy_run(const A* src, std::size_t len, A* dst) {
  using V = typename gemm_arch<Arch, A>::V;
  constexpr std::size_t W = static_cast<std::size_t>(V::W);
  const std::size_t nv = len / W;
  for (std::size_t v = 0; v < nv; ++v) V::store(dst + v * W, V::load(src + v * W));
  for (std::size_t u = nv * W; u < len; ++u) dst[u] = src[u];
}
/// B rows padded to whole panels: dst[r][0 .. len) = src[r][0 .. len) for r < rows (rows lds and
/// ld apart); the columns len .. ld are zeroed only when `pad` (once per task: nothing else
/// writes them, and a memset call per row cost more than the copy).
template <class Arch, class A>
inline void conv_copy_rows_padded(const A* src, std::size_t lds, std::size_t len, A* dst, std::size_t ld,
                                  std::size_t rows, bool pad) {
  for (std::size_t r = 0; r < rows; ++r) {
    conv_copy_run<Arch>(src + r * lds, len, dst + r * ld);
    if (pad) std::fill(dst + r * ld + len, dst + (r + 1) * ld, A(0));
  }
}
/// A chunk's B of backward-weight from an NHWC-form tensor: rows src[r * lds + 0 .. nt) for
/// r < klen, read in place (ldb = lds) when nt is whole panels, else copied into bp with zero
/// columns up to whole panels (ldb = panels' width; first: the chunk at r0 == 0, the longest,
/// zeroes them once per task).
template <class Arch, class A, class E>
inline const A* conv_nhwc_b_chunk(const A* src, std::size_t lds, std::size_t nt, std::size_t klen, bool first, A* bp,
                                  std::size_t& ldb) {
  if (nt % E::NT == 0) {
    ldb = lds;
    return src;
  }
  ldb = (nt + E::NT - 1) / E::NT * E::NT;
  conv_copy_rows_padded<Arch>(src, lds, nt, bp, ldb, klen, first);
  return bp;
}
struct conv_channel_run {
  std::size_t tap, c, len, off;  // channels [c, c + len) of tap `tap`, at patch column off
};

/// Backward-weight for short output rows (small images, late CNN layers), dbias apart:
/// C[k~][oc] over the reduction k' = (n, oh, ow), where the rows k~ = tap * Cg + icg take the
/// forward K index k = icg * KK + tap in tap-major order. Only the order in which the dw elements
/// are computed changes: each element's chain over k' (its products, 256-wide chunks, the fold)
/// is the canonical one, so the bits are the reference's. x is copied once into an NHWC form with
/// one extra all-zero position per image (the source of every padding tap); the im2col^T of a
/// chunk, patch[k' - r0][k~ - i0], is then built from whole runs of channels (one run per tap and
/// k') and read in place by the micro kernel as its A (rows k~, stride ld), and the NHWC-form dy
/// (dyh, [k'][OC]) is its B in place. map[tap * P + p]: the input position of the tap at output
/// position p, or -1.
template <class Arch, class A, class X>
void conv_backward_weight_tapmajor(const conv2d_shape& s, const X* x, const A* dyh, A* dw, int threads) {
  using E = conv_engine<Arch, A>;
  using M = typename E::M;
  const std::size_t N = s.batch, C = s.in_channels, H = s.in_h, Wd = s.in_w, OC = s.out_channels, G = s.groups;
  const std::size_t Cg = C / G, OCg = OC / G, KK = s.kernel_h * s.kernel_w, K = Cg * KK;
  const std::size_t P = s.out_h() * s.out_w(), R = N * P, Pin = H * Wd, Pz = Pin + 1;
  conv2d_shape sp = s;
  sp.data = layout::nchw;  // the map as input positions (NCHW offsets within a channel plane)
  std::vector<std::ptrdiff_t> map;
  conv_tap_map(sp, false, map);
  // x as [n][Pin + 1][C], position Pin all zeros.
  A* xt = conv_reserve(conv_thread_scratch<A>().x_nhwc, N * Pz * C);
  for (std::size_t n = 0; n < N; ++n) std::fill(xt + (n * Pz + Pin) * C, xt + (n * Pz + Pz) * C, A(0));
  if (s.data == layout::nchw) {
    conv_nchw_to_nhwc<Arch, A>(x, N, C, Pin, [&](std::size_t n, std::size_t p, std::size_t c) { return xt + (n * Pz + p) * C + c; },
                               threads);
  } else {
    for (std::size_t n = 0; n < N; ++n)
      for (std::size_t q = 0; q < Pin * C; ++q) xt[n * Pz * C + q] = static_cast<A>(core::widen(x[n * Pin * C + q]));
  }
  const std::size_t jt = (OCg + E::JT - 1) / E::JT;
  const conv_tile_tasks tasks(G, jt, K, E::MR, threads);
  constexpr std::size_t SB = 512;  // rows of one patch (at most 512 x 256 elements)
  parallel_chunks(threads, canonical_chunks{tasks.count, 1}, [&](std::uint64_t t0, std::uint64_t) {
    const conv_tile_tasks::task k = tasks(t0);
    const std::size_t g = k.g, tj = k.tile, i0 = k.i0, i1 = k.i1;
    if (i0 >= i1) return;
    const std::size_t j0 = tj * E::JT, nt = std::min(E::JT, OCg - j0), ntv = (nt + E::NT - 1) / E::NT * E::NT;
    conv_scratch<A>& sc = conv_thread_scratch<A>();
    std::vector<conv_channel_run> runs;
    for (std::size_t s0 = i0; s0 < i1; s0 += SB) {
      const std::size_t s1 = std::min(i1, s0 + SB), rows = s1 - s0, ld = rows;
      A* patch = conv_reserve(sc.a, conv_chunk * ld);
      A* total = conv_reserve(sc.total, rows * ntv);
      if (R == 0) std::fill(total, total + rows * ntv, A(0));  // the empty sums
      runs.clear();  // the rows [s0, s1) as runs of channels of one tap
      for (std::size_t k = s0; k < s1;) {
        const std::size_t tap = k / Cg, c = k % Cg, len = std::min(Cg - c, s1 - k);
        runs.push_back(conv_channel_run{tap, c, len, k - s0});
        k += len;
      }
      A* bbuf = conv_reserve(sc.b, nt % E::NT ? conv_chunk * ntv : 0);
      for (std::size_t r0 = 0; r0 < R; r0 += conv_chunk) {
        const std::size_t r1 = std::min(R, r0 + conv_chunk), klen = r1 - r0;
        std::size_t n = r0 / P, p = r0 % P;
        for (std::size_t r = r0; r < r1; ++r) {  // patch row k': one channel run per tap
          A* dst = patch + (r - r0) * ld;
          const A* img = xt + n * Pz * C + g * Cg;
          for (const conv_channel_run& u : runs) {
            const std::ptrdiff_t m = map[u.tap * P + p];
            conv_copy_run<Arch>(img + (m < 0 ? Pin : static_cast<std::size_t>(m)) * C + u.c, u.len, dst + u.off);
          }
          if (++p == P) { p = 0; ++n; }
        }
        // B[k' - r0][j] = dy of out-channel g * OCg + j0 + j: rows of the NHWC-form dy, in place
        // when whole panels; otherwise copied with zero columns up to ntv.
        std::size_t ldb;
        const A* bsrc = conv_nhwc_b_chunk<Arch, A, E>(dyh + r0 * OC + g * OCg + j0, OC, nt, klen, r0 == 0, bbuf, ldb);
        for (std::size_t i = 0; i < rows; i += E::MR) {
          const int mr = static_cast<int>(std::min(E::MR, rows - i));
          for (std::size_t jj = 0; jj < ntv; jj += E::NT) {
            gemm_merge<A> m{total + i * ntv + jj, ntv, r0 == 0, false, nullptr, 0, A(1), A(0)};
            M::tile(mr, klen, patch + i, ld, bsrc + jj, ldb, E::NT, m);
          }
        }
      }
      for (std::size_t i = 0; i < rows; ++i) {  // row k~ = tap * Cg + icg -> dw[oc][icg * KK + tap]
        const std::size_t k = s0 + i, kf = (k % Cg) * KK + k / Cg;
        A* dst = dw + (g * OCg + j0) * K + kf;
        const A* tot = total + i * ntv;
        for (std::size_t j = 0; j < nt; ++j) dst[j * K] = conv_finish(tot[j]);
      }
    }
  });
}

/// Backward-weight with A read in place, dbias apart: C[k~][oc] over the reduction k' = (n, oh,
/// ow), rows k~ = tap * Cg + icg in tap-major order (as conv_backward_weight_tapmajor: only the
/// order in which the dw elements are computed changes; each element's chain over k', its
/// 256-wide chunks and their fold are the canonical ones, so the bits are the reference's). x
/// is copied once (widened) into a zero-padded NHWC form xp[n][Hp][Wp][C]; then the im2col^T
/// values of one tap for channels c .. c + h at k' are contiguous, xp + pos(k') * C + tapoff + c,
/// and the micro kernel reads them where they lie through one table of pos(k') * C per chunk
/// (gemm_micro::tile_a_offsets): nothing is gathered or packed. Row panels stay inside one tap
/// (balanced heights, at most MR); the NHWC-form dy (dyh, [k'][OC]) is B in place. Any stride,
/// dilation and padding.
template <class Arch, class A, class X>
void conv_backward_weight_padded_nhwc(const conv2d_shape& s, const X* x, const A* dyh, A* dw, int threads) {
  using E = conv_engine<Arch, A>;
  using M = typename E::M;
  const std::size_t N = s.batch, C = s.in_channels, H = s.in_h, Wd = s.in_w, OC = s.out_channels, G = s.groups;
  const std::size_t Cg = C / G, OCg = OC / G, KH = s.kernel_h, KW = s.kernel_w, KK = KH * KW, K = Cg * KK;
  const std::size_t OH = s.out_h(), OW = s.out_w(), P = OH * OW, R = N * P;
  const std::size_t ph = s.pad_h, pw = s.pad_w, Hp = H + 2 * ph, Wp = Wd + 2 * pw;
  A* xp = conv_reserve(conv_thread_scratch<A>().x_nhwc, N * Hp * Wp * C);
  for (std::size_t n = 0; n < N; ++n) {  // the zero border (the scratch keeps old values)
    A* img = xp + n * Hp * Wp * C;
    std::fill(img, img + ph * Wp * C, A(0));
    std::fill(img + (ph + H) * Wp * C, img + Hp * Wp * C, A(0));
    for (std::size_t h = ph; h < ph + H; ++h) {
      std::fill(img + h * Wp * C, img + (h * Wp + pw) * C, A(0));
      std::fill(img + (h * Wp + pw + Wd) * C, img + (h + 1) * Wp * C, A(0));
    }
  }
  auto at = [&](std::size_t n, std::size_t p) { return xp + ((n * Hp + p / Wd + ph) * Wp + p % Wd + pw) * C; };
  if (s.data == layout::nchw) {
    conv_nchw_to_nhwc<Arch, A>(x, N, C, H * Wd, [&](std::size_t n, std::size_t p, std::size_t c) { return at(n, p) + c; },
                               threads);
  } else {
    for (std::size_t n = 0; n < N; ++n)
      for (std::size_t p = 0; p < H * Wd; ++p) {
        const X* src = x + (n * H * Wd + p) * C;
        A* dst = at(n, p);
        for (std::size_t c = 0; c < C; ++c) dst[c] = static_cast<A>(core::widen(src[c]));
      }
  }
  const std::size_t h = E::panel_height(Cg), per_tap = (Cg + h - 1) / h, panels = KK * per_tap;
  const std::size_t jt = (OCg + E::JT - 1) / E::JT;
  const conv_tile_tasks tasks(G, jt, panels, 1, threads);
  parallel_chunks(threads, canonical_chunks{tasks.count, 1}, [&](std::uint64_t t0, std::uint64_t) {
    const conv_tile_tasks::task k = tasks(t0);
    const std::size_t g = k.g, tj = k.tile, i0 = k.i0, i1 = k.i1;
    if (i0 >= i1) return;
    const std::size_t j0 = tj * E::JT, nt = std::min(E::JT, OCg - j0), ntv = (nt + E::NT - 1) / E::NT * E::NT;
    conv_scratch<A>& sc = conv_thread_scratch<A>();
    A* total = conv_reserve(sc.total, (i1 - i0) * h * ntv);  // panel i's rows at (i - i0) * h
    if (R == 0) std::fill(total, total + (i1 - i0) * h * ntv, A(0));  // the empty sums
    A* bbuf = conv_reserve(sc.b, nt % E::NT ? conv_chunk * ntv : 0);
    std::ptrdiff_t* off = conv_reserve(sc.b_off, conv_chunk + 8);
    for (std::size_t r0 = 0; r0 < R; r0 += conv_chunk) {
      const std::size_t klen = std::min(R - r0, conv_chunk);
      std::size_t n = r0 / P, oh = (r0 % P) / OW, ow = r0 % OW;
      for (std::size_t r = 0; r < klen; ++r) {  // pos(k') * C of the chunk's k'
        off[r] = static_cast<std::ptrdiff_t>(((n * Hp + oh * s.stride_h) * Wp + ow * s.stride_w) * C);
        if (++ow == OW) {
          ow = 0;
          if (++oh == OH) { oh = 0; ++n; }
        }
      }
      for (std::size_t r = klen; r < klen + 8; ++r) off[r] = off[klen - 1];  // prefetch targets only
      // B: the chunk's rows of the NHWC-form dy, in place when whole panels, else copied with
      // zero columns up to ntv. (Copying them into sequential NT-wide panels, and spacing x's
      // positions a cache line apart against L1 set conflicts, measured no faster.)
      std::size_t ldb;
      const A* bsrc = conv_nhwc_b_chunk<Arch, A, E>(dyh + r0 * OC + g * OCg + j0, OC, nt, klen, r0 == 0, bbuf, ldb);
      for (std::size_t i = i0; i < i1; ++i) {
        const std::size_t tap = i / per_tap, c0 = (i % per_tap) * h, mr = std::min(h, Cg - c0);
        const A* a = xp + ((tap / KW) * s.dilation_h * Wp + (tap % KW) * s.dilation_w) * C + g * Cg + c0;
        for (std::size_t jj = 0; jj < ntv; jj += E::NT) {
          gemm_merge<A> m{total + (i - i0) * h * ntv + jj, ntv, r0 == 0, false, nullptr, 0, A(1), A(0)};
          M::tile_a_offsets(static_cast<int>(mr), klen, a, off, bsrc + jj, ldb, E::NT, m);
        }
      }
    }
    // Row (tap, icg) -> dw[oc][icg * KK + tap], in dw's order (16 out-channels at a time, each
    // written along its row) rather than the totals' (every store K elements from the last).
    const std::size_t tap0 = i0 / per_tap, tap1 = (i1 - 1) / per_tap + 1;
    for (std::size_t jb = 0; jb < nt; jb += 16) {
      const std::size_t je = std::min(nt, jb + 16);
      for (std::size_t c = 0; c < Cg; ++c)
        for (std::size_t tap = tap0; tap < tap1; ++tap) {
          const std::size_t i = tap * per_tap + c / h;
          if (i < i0 || i >= i1) continue;
          const A* tot = total + ((i - i0) * h + c % h) * ntv;
          A* dst = dw + (g * OCg + j0) * K + c * KK + tap;
          for (std::size_t j = jb; j < je; ++j) dst[j * K] = conv_finish(tot[j]);
        }
    }
  });
}

/// Taps j .. j + len of a panel of im2col^T (a row per k', a lane per forward K index) that
/// share (channel within the group c, kernel row kr) and take kernel columns kc0, kc0 + 1, ...
struct conv_tap_run {
  std::size_t j, len, c, kr, kc0;
};
/// The runs of each panel of `width` consecutive K indices (forward K = Cg * KH * KW).
inline std::vector<std::vector<conv_tap_run>> conv_tap_runs(std::size_t K, std::size_t KH, std::size_t KW,
                                                            std::size_t width) {
  const std::size_t KK = KH * KW, panels = (K + width - 1) / width;
  std::vector<std::vector<conv_tap_run>> runs(panels);
  for (std::size_t p = 0; p < panels; ++p)
    for (std::size_t k = p * width; k < std::min(K, (p + 1) * width);) {
      const std::size_t kc = k % KW, len = std::min(KW - kc, std::min(K, (p + 1) * width) - k);
      runs[p].push_back({k - p * width, len, k / KK, (k / KW) % KH, kc});
      k += len;
    }
  return runs;
}

/// One k' row of a panel of im2col^T, NCHW: dst[u.j + q] = x[c0 + u.c][oh * sh - ph + u.kr * dh]
/// [ow * sw - pw + (u.kc0 + q) * dw] (+0 for padding) for every run u; lanes [0, width) without a
/// run are +0. xc = x of image n at channel c0. width <= 32; with AVX-512 float the row is built
/// in registers (each run one or two merge-masked loads into its lanes) and stored as whole
/// 16-lane vectors, so dst must have room for width rounded up to 16 (lanes past width are
/// zeros). A copy, so the same values either way.
template <class Arch, class A, class X>
inline void conv_tap_row(const conv2d_shape& s, const X* xc, const std::vector<conv_tap_run>& runs, std::size_t oh,
                         std::size_t ow, std::size_t width, A* dst) {
  const std::size_t H = s.in_h, Wd = s.in_w;
  const std::ptrdiff_t iw0 = static_cast<std::ptrdiff_t>(ow * s.stride_w) - static_cast<std::ptrdiff_t>(s.pad_w);
#if XSIMD_WITH_AVX512BW
  if constexpr (std::is_same<Arch, xsimd::avx512bw>::value && std::is_same<A, float>::value &&
                std::is_same<X, float>::value) {
    if (s.dilation_w == 1 && iw0 >= 0 && iw0 + static_cast<std::ptrdiff_t>(s.kernel_w) <= static_cast<std::ptrdiff_t>(Wd)) {
      __m512 lo = _mm512_setzero_ps(), hi = _mm512_setzero_ps();
      for (const conv_tap_run& u : runs) {
        const std::size_t ihp = oh * s.stride_h + u.kr * s.dilation_h;  // ih + pad_h
        if (ihp < s.pad_h || ihp - s.pad_h >= H) continue;                // a padding row: zeros
        const float* lane0 = xc + (u.c * H + (ihp - s.pad_h)) * Wd + iw0 + static_cast<std::ptrdiff_t>(u.kc0) -
                             static_cast<std::ptrdiff_t>(u.j);
        // lanes j .. j + len (len <= 32 - j; a whole 32-lane run must not shift by 32)
        const std::uint32_t m = (u.len >= 32 ? ~std::uint32_t(0) : (std::uint32_t(1) << u.len) - 1u) << u.j;
        if (m & 0xffffu) lo = _mm512_mask_loadu_ps(lo, static_cast<__mmask16>(m), lane0);
        if (m >> 16) hi = _mm512_mask_loadu_ps(hi, static_cast<__mmask16>(m >> 16), lane0 + 16);
      }
      _mm512_storeu_ps(dst, lo);
      if (width > 16) _mm512_storeu_ps(dst + 16, hi);
      return;
    }
  }
#endif
  std::fill(dst, dst + width, A(0));
  for (const conv_tap_run& u : runs) {
    const std::size_t ihp = oh * s.stride_h + u.kr * s.dilation_h;
    if (ihp < s.pad_h || ihp - s.pad_h >= H) continue;
    const X* src = xc + (u.c * H + (ihp - s.pad_h)) * Wd;
    for (std::size_t q = 0; q < u.len; ++q) {
      const std::ptrdiff_t iw = iw0 + static_cast<std::ptrdiff_t>((u.kc0 + q) * s.dilation_w);
      if (iw >= 0 && iw < static_cast<std::ptrdiff_t>(Wd)) dst[u.j + q] = static_cast<A>(core::widen(src[iw]));
    }
  }
}

/// Backward-weight with few input channels per group (the 7x7/2 stem's 3: K = 147 forward taps)
/// and output rows of at least 16, NCHW: C[oc][k] = dw[oc][k] directly. Rows are the
/// out-channels (A: the NHWC-form dy read in place, a k' row OC apart), columns the forward K
/// index (B: per k', conv_tap_row straight into the micro kernel's panel). The other form
/// gathers im2col rows and then transposes them into A panels, which cost more than the micro
/// kernel for this shape. Same products, same chain per dw element (256-wide chunks of k' from
/// +0, folded left to right), so the same bits. Tasks: (group, one panel of taps, block of
/// out-channels).
template <class Arch, class A, class X>
void conv_backward_weight_taps_as_columns(const conv2d_shape& s, const X* x, const A* dyh, A* dw, int threads) {
  using E = conv_engine<Arch, A>;
  const core::conv_dims d(s);
  const std::size_t H = d.H, Wd = d.W, OC = d.OC, OH = d.OH, OW = d.OW, Cg = d.Cg, OCg = d.OCg, KH = d.KH,
                    KW = d.KW, K = Cg * KH * KW, P = OH * OW, R = d.N * P, NT = E::NT;
  const auto runs = conv_tap_runs(K, KH, KW, NT);
  const std::size_t panels = runs.size();
  const std::size_t h = E::panel_height(OCg), hpanels = (OCg + h - 1) / h;
  const std::size_t rb = std::min(hpanels, d.G * panels >= 2 * static_cast<std::size_t>(threads) ? std::size_t(1) : 2);
  parallel_chunks(threads, canonical_chunks{d.G * panels * rb, 1}, [&](std::uint64_t t0, std::uint64_t) {
    const std::size_t t = static_cast<std::size_t>(t0), b = t % rb, p = (t / rb) % panels, g = t / (rb * panels);
    const std::size_t hp0 = b * hpanels / rb, hp1 = (b + 1) * hpanels / rb;
    const std::size_t i0 = hp0 * h, i1 = std::min(OCg, hp1 * h);
    if (i0 >= i1) return;
    const std::size_t k0 = p * NT, nt = std::min(NT, K - k0);
    auto prepare = [&](std::size_t r0, std::size_t r1, A* bp, std::size_t& ldb) -> const A* {
      std::size_t n = r0 / P, oh = (r0 % P) / OW, ow = r0 % OW;
      for (std::size_t r = r0; r < r1; ++r) {
        conv_tap_row<Arch, A>(s, x + (n * d.C + g * Cg) * H * Wd, runs[p], oh, ow, NT, bp + (r - r0) * NT);
        if (++ow == OW) { ow = 0; if (++oh == OH) { oh = 0; ++n; } }
      }
      ldb = E::in_panels;
      return bp;
    };
    auto a_panel = [&](std::size_t i, std::size_t r0, std::size_t) { return dyh + r0 * OC + g * OCg + i0 + i; };
    auto store = [&](std::size_t i, const A* tot) {
      conv_finish_run<Arch>(tot, dw + (g * OCg + i0 + i) * K + k0, nt, static_cast<const A*>(nullptr));
    };
    E::run_panels(i1 - i0, R, nt, prepare, a_panel, store, h, OC);
  });
}

/// dw = sum over (n, oh, ow) of dy * x-patch; dbias (nullable) = sum of dy (same order).
/// dbias[oc] from dy in NHWC form (rows [k'][OC], R of them): per chunk of k' the chain
/// p = p + dy[k'][oc] (= fma(dy, 1, p)) from +0, chunks combined in order.
template <class Arch, class A>
void conv_dbias_nhwc(const A* dyh, std::size_t OC, std::size_t R, A* dbias, int threads) {
  using V = typename gemm_arch<Arch, A>::V;
  constexpr std::size_t VW = static_cast<std::size_t>(V::W);
  // dbias[oc]: per chunk of k' the chain p = p + dy[k'][oc] (= fma(dy, 1, p)), chunks combined
  // in order. Vectors across out-channels (rows of the NHWC-form dy are contiguous), whole
  // vectors first, the last oc's lane by lane: the same adds per element.
  const std::size_t nvec = OC / VW;
  parallel_chunks(threads, canonical_chunks{nvec + 1, 1}, [&](std::uint64_t v0, std::uint64_t v1) {
    for (std::size_t v = v0; v < v1; ++v) {
      const std::size_t oc0 = v * VW, lanes = v < nvec ? VW : OC - oc0;
      if (lanes == 0) continue;
      alignas(64) A total[VW] = {};
      if (lanes == VW) {
        if (R) conv_dbias_vector<V>(dyh + oc0, OC, R, total);  // R == 0: dy may be null; the empty sum
      } else {
        for (std::size_t r0 = 0; r0 < R; r0 += conv_chunk) {
          const std::size_t r1 = std::min(R, r0 + conv_chunk);
          const A* src = dyh + r0 * OC + oc0;
          for (std::size_t q = 0; q < lanes; ++q) {
            A p = A(0);
            for (std::size_t r = 0; r < r1 - r0; ++r) p = p + src[r * OC + q];
            total[q] = r0 == 0 ? p : core::gemm_combine(total[q], p);
          }
        }
      }
      for (std::size_t q = 0; q < lanes; ++q) dbias[oc0 + q] = conv_finish(total[q]);
    }
  });
}

/// dbias[oc] from dy in NCHW form: the chains of conv_dbias_nhwc, 16 out-channels at a time
/// through a staged NHWC copy of just those channels ([k'][16]: cache-sized, never all of dy).
template <class Arch, class A>
void conv_dbias_nchw(const A* dy, std::size_t N, std::size_t OC, std::size_t P, A* dbias, int threads) {
  using V = typename gemm_arch<Arch, A>::V;
  constexpr std::size_t VW = static_cast<std::size_t>(V::W), SW = 16;  // conv_nchw_to_nhwc's blocks
  static_assert(SW % VW == 0, "whole vectors per staged row");
  const std::size_t R = N * P, blocks = (OC + SW - 1) / SW;
  parallel_chunks(threads, canonical_chunks{blocks, 1}, [&](std::uint64_t b0, std::uint64_t) {
    const std::size_t oc0 = static_cast<std::size_t>(b0) * SW, lanes = std::min(SW, OC - oc0);
    // The thread's scratch (never re-zeroed: every lane below `lanes` is written; the lanes of
    // a partial last block are zeroed, their sums dropped).
    A* const stage = conv_reserve(conv_thread_scratch<A>().dy_pad, R * SW);
    if (lanes < SW) std::fill(stage, stage + R * SW, A(0));
    conv_nchw_to_nhwc<Arch, A>(dy, N, OC, P, [&](std::size_t n, std::size_t p, std::size_t c) {
      return stage + (n * P + p) * SW + (c - oc0); }, 1, oc0, oc0 + lanes);
    alignas(64) A total[SW] = {};
    for (std::size_t v = 0; v < SW; v += VW)
      if (R) conv_dbias_vector<V>(stage + v, SW, R, total + v);
    for (std::size_t q = 0; q < lanes; ++q) dbias[oc0 + q] = conv_finish(total[q]);
  });
}

/// Backward-weight of a 1x1, unit-stride, unpadded NCHW convolution (float or double x): per
/// group one product over k' = (n, p), C = A B, A's rows read in place from one tensor
/// ([channel][p] inside an image; a chunk of k' across an image boundary is copied) and B the
/// other tensor in NHWC form (a transposed copy): rows = out-channels (A = dy, B = x, C = dw)
/// when the group has more out- than in-channels, else rows = in-channels (A = x, B = dy,
/// C = dw transposed). Either way each dw element is the chain of conv_backward_weight_kernel
/// over the same chunks of k' (fma is symmetric in its factors): the same bits, with only the
/// smaller tensor transposed.
template <class Arch, class A>
void conv_backward_weight_1x1(const conv2d_shape& s, const A* x, const A* dy, A* dw, A* dbias, int threads) {
  using E = conv_engine<Arch, A>;
  const std::size_t N = s.batch, C = s.in_channels, OC = s.out_channels, G = s.groups;
  const std::size_t Cg = C / G, OCg = OC / G, P = s.in_h * s.in_w, R = N * P;
  const bool rows_oc = OCg > Cg;
  const A* const rsrc = rows_oc ? dy : x;              // A: [n][RC][P]
  const std::size_t RC = rows_oc ? OC : C, RCg = rows_oc ? OCg : Cg;
  const std::size_t CC = rows_oc ? C : OC, CCg = rows_oc ? Cg : OCg;
  conv_scratch<A>& top = conv_thread_scratch<A>();
  A* const bt = conv_reserve(rows_oc ? top.x_nhwc : top.dy_nhwc, R * CC);  // B: [k'][CC]
  conv_nchw_to_nhwc<Arch, A>(rows_oc ? x : dy, N, CC, P,
                             [&](std::size_t n, std::size_t p, std::size_t c) { return bt + (n * P + p) * CC + c; }, threads);
  const std::size_t jt = (CCg + E::JT - 1) / E::JT;
  const conv_tile_tasks tasks(G, jt, RCg, E::MR, threads);
  parallel_chunks(threads, canonical_chunks{tasks.count, 1}, [&](std::uint64_t t0, std::uint64_t) {
    const conv_tile_tasks::task k = tasks(t0);
    const std::size_t g = k.g, tj = k.tile, i0 = k.i0, i1 = k.i1;
    if (i0 >= i1) return;
    const std::size_t rows = i1 - i0, j0 = tj * E::JT, nt = std::min(E::JT, CCg - j0);
    conv_scratch<A>& sc = conv_thread_scratch<A>();
    A* const staged = conv_reserve(sc.a, rows * conv_chunk);
    bool split = false;  // this chunk of k' crosses an image boundary: A rows staged
    auto prepare = [&](std::size_t r0, std::size_t r1, A* bp, std::size_t& ldb) -> const A* {
      split = r0 / P != (r1 - 1) / P;
      if (split)
        for (std::size_t i = 0; i < rows; ++i)
          for (std::size_t r = r0; r < r1;) {  // one image's run at a time
            const std::size_t n = r / P, p = r % P, len = std::min(r1 - r, P - p);
            std::memcpy(staged + i * conv_chunk + (r - r0), rsrc + (n * RC + g * RCg + i0 + i) * P + p, len * sizeof(A));
            r += len;
          }
      return conv_nhwc_b_chunk<Arch, A, E>(bt + r0 * CC + g * CCg + j0, CC, nt, r1 - r0, r0 == 0, bp, ldb);
    };
    auto a_row = [&](std::size_t i, std::size_t r0, std::size_t& lda) -> const A* {
      lda = conv_chunk;
      if (split) return staged + i * conv_chunk;
      const std::size_t n = r0 / P;
      return rsrc + (n * RC + g * RCg + i0 + i) * P + (r0 - n * P);
    };
    auto store = [&](std::size_t i, const A* tot) {
      if (rows_oc) {
        A* dst = dw + (g * OCg + i0 + i) * Cg + j0;
        for (std::size_t j = 0; j < nt; ++j) dst[j] = conv_finish(tot[j]);
      } else {
        A* dst = dw + (g * OCg + j0) * Cg + i0 + i;
        for (std::size_t j = 0; j < nt; ++j) dst[j * Cg] = conv_finish(tot[j]);
      }
    };
    E::run(rows, R, nt, prepare, a_row, store);
  });
  if (!dbias) return;
  if (rows_oc) conv_dbias_nchw<Arch, A>(dy, N, OC, P, dbias, threads);
  else conv_dbias_nhwc<Arch, A>(bt, OC, R, dbias, threads);
}

template <class Arch, class A, class X>
void conv_backward_weight_kernel(const conv2d_shape& s, const X* x, const A* dy, A* dw, A* dbias, int threads) {
  if (conv_is_depthwise(s)) return conv_depthwise_backward_weight<Arch>(s, x, dy, dw, dbias, threads);
  if constexpr (std::is_same<X, A>::value)
    if (s.data == layout::nchw && s.kernel_h == 1 && s.kernel_w == 1 && s.stride_h == 1 && s.stride_w == 1 &&
        s.pad_h == 0 && s.pad_w == 0)
      return conv_backward_weight_1x1<Arch, A>(s, x, dy, dw, dbias, threads);
  using E = conv_engine<Arch, A>;
  const std::size_t N = s.batch, C = s.in_channels, H = s.in_h, Wd = s.in_w, OC = s.out_channels;
  const std::size_t KH = s.kernel_h, KW = s.kernel_w, OH = s.out_h(), OW = s.out_w(), G = s.groups;
  const std::size_t Cg = C / G, OCg = OC / G, KK = KH * KW, K = Cg * KK, P = OH * OW, R = N * P;
  const bool nchw = s.data == layout::nchw;
  // At least 8 channels per group: A read in place on a padded NHWC copy of x (row panels of
  // one tap's channels). Fewer, with short output rows: the im2col rows come from one tap map
  // (as forward's packed tiles) instead of runs of a few columns each.
  const bool in_place = Cg >= 8;
  const bool mapped = !in_place && OW < 16 && KK * P <= (std::size_t(1) << 16);
  std::vector<std::ptrdiff_t> map;
  std::vector<conv_tap_perm> perms;
  if (mapped) {
    conv_tap_map(s, false, map);
    conv_tap_perms(map, P, perms);
  }
  const std::size_t image = C * H * Wd, cstride = nchw ? H * Wd : 1;
  // C^T: rows are the forward K index k (im2col rows), columns the out-channels of the group,
  // reduction over k' = (n, oh, ow); dw[oc][k] = C^T[k][oc]. Same products, same chain per dw
  // element, so the same bits as the reference's dw[oc][k] loop.
  const std::size_t jt = (OCg + E::JT - 1) / E::JT;
  const conv_tile_tasks tasks(G, jt, K, E::MR, threads);
  // dy in NHWC form ([k'][OC]), so that B rows are contiguous (a transposed copy for NCHW).
  using V = typename gemm_arch<Arch, A>::V;
  constexpr std::size_t VW = static_cast<std::size_t>(V::W);
  const A* dyh = dy;
  if (nchw) {
    A* dyt = conv_reserve(conv_thread_scratch<A>().dy_nhwc, R * OC);
    conv_nchw_to_nhwc<Arch, A>(dy, N, OC, P, [&](std::size_t n, std::size_t p, std::size_t c) { return dyt + (n * P + p) * OC + c; },
                               threads);
    dyh = dyt;
  }
  // Short output rows and 4 to 7 channels per group: the tap-major form (whole channel runs;
  // with fewer channels per run the mapped gathers below cost less).
  if (in_place) conv_backward_weight_padded_nhwc<Arch, A>(s, x, dyh, dw, threads);
  else if (mapped && Cg >= 4) conv_backward_weight_tapmajor<Arch, A>(s, x, dyh, dw, threads);
  else if (!mapped && nchw && Cg <= 4 && K <= 4 * conv_chunk) conv_backward_weight_taps_as_columns<Arch, A>(s, x, dyh, dw, threads);
  else parallel_chunks(threads, canonical_chunks{tasks.count, 1}, [&](std::uint64_t t0, std::uint64_t) {
    const conv_tile_tasks::task k = tasks(t0);
    const std::size_t g = k.g, tj = k.tile, i0 = k.i0, i1 = k.i1;
    if (i0 >= i1) return;
    const std::size_t rows = i1 - i0;
    const std::size_t j0 = tj * E::JT, nt = std::min(E::JT, OCg - j0);
    conv_scratch<A>& sc = conv_thread_scratch<A>();
    if (sc.a.size() < rows * conv_chunk) sc.a.resize(rows * conv_chunk);
    auto prepare = [&](std::size_t r0, std::size_t r1, A* bp, std::size_t& ldb) -> const A* {
      // A: im2col rows k in [i0, i1) over k' in [r0, r1)
      for (std::size_t i = 0; i < rows; ++i) {
        const std::size_t k = i0 + i, c = g * Cg + k / KK, kr = (k / KW) % KH, kc = k % KW;
        A* dst = sc.a.data() + i * conv_chunk;
        if (mapped) {  // small output images: one tap map instead of runs of a few columns
          conv_gather_mapped<Arch>(x, image, c * cstride, map.data() + (kr * KW + kc) * P, perms.data() + kr * KW + kc,
                                   P, r0, r1 - r0, dst, conv_chunk, 0);
          continue;
        }
        const conv_tap_columns cols(s, kc);
        std::size_t r = r0;
        while (r < r1) {  // runs inside one output row of one image
          const std::size_t n = r / P, oh = (r % P) / OW, ow0 = r % OW;
          const std::size_t len = std::min(r1 - r, OW - ow0);
          conv_gather_tap_run(s, x, n, c, kr, cols, oh, ow0, len, dst + (r - r0));
          r += len;
        }
      }
      // B[k' - r0][j] = dy of out-channel g * OCg + j0 + j at k': rows of the NHWC-form dy.
      return conv_nhwc_b_chunk<Arch, A, E>(dyh + r0 * OC + g * OCg + j0, OC, nt, r1 - r0, r0 == 0, bp, ldb);
    };
    auto a_row = [&](std::size_t i, std::size_t, std::size_t& lda) {
      lda = conv_chunk;
      return static_cast<const A*>(sc.a.data() + i * conv_chunk);
    };
    auto store = [&](std::size_t i, const A* tot) {
      A* dst = dw + (g * OCg + j0) * K + i0 + i;
      for (std::size_t j = 0; j < nt; ++j) dst[j * K] = conv_finish(tot[j]);
    };
    E::run(rows, R, nt, prepare, a_row, store);
  });
  if (dbias) conv_dbias_nhwc<Arch, A>(dyh, OC, R, dbias, threads);
}

// ------------------------------------------------------------------ depthwise

/// out[i][j] for i < OH, j < OW = chain over k of fma(in[i * sh * ld + off[k] + j], w[k]) from +0
/// on a zero-padded plane `in` (row stride ld, enough slack on the right), then the epilogue
/// (+ bias once, canonical NaN). Vectors run across j. KH, KW > 0: the kernel's size as
/// compile-time constants with dilation 1, so off[k] = off[0] + (k / KW) * ld + k % KW (or minus
/// that for Flip: backward-data) and the taps are immediate offsets, the weights stay broadcast in
/// registers (forward has off[0] = 0); 0: any K and `off`.
/// `in` must hold at least (OH - 1) * sh + max row of off + 1 rows of ld >= OW + max column of
/// off + VW columns (zero slack).
template <class Arch, class A, std::size_t KH, std::size_t KW, bool Flip>
void conv_depthwise_plane_k(const A* in, std::size_t ld, std::size_t sh, const std::size_t* off, const A* w,
                            std::size_t Kr, const A* bias, A* out, std::size_t OH, std::size_t OW) {
  using V = typename gemm_arch<Arch, A>::V;
  constexpr std::size_t VW = static_cast<std::size_t>(V::W);
  constexpr std::size_t KC = KH * KW;
  constexpr std::size_t RB = 4;  // output rows in flight: independent chains hide the FMA latency
  const std::size_t K = KC ? KC : Kr;
  using reg = decltype(V::zero());
  reg wv[KC ? KC : 1];
  if constexpr (KC > 0)
    for (std::size_t k = 0; k < KC; ++k) wv[k] = V::bcast(w + k);
  auto tap = [&](const A* p, std::size_t k) {  // in[p + off[k]]
    if constexpr (KC > 0 && Flip)
      return V::load(p + off[0] - (k / KW) * ld - k % KW);
    else if constexpr (KC > 0)
      return V::load(p + (k / KW) * ld + k % KW);
    else
      return V::load(p + off[k]);
  };
  auto weight = [&](std::size_t k) {
    if constexpr (KC > 0)
      return wv[k];
    else
      return V::bcast(w + k);
  };
  const reg bv = bias ? V::set1(*bias) : V::zero();
  A* const end = out + OH * OW;
  // Stores one finished vector at o + j (canonical NaN). Lanes past OW land on the next rows'
  // first elements, which are stored later: rows go in increasing order, and within a block of
  // RB rows each vector index j runs over the rows before index j - 1, the last (partial) vector
  // first. Only the plane's very end takes the partial copy.
  auto put = [&](A* o, std::size_t j, reg acc) {
    if (bias) acc = V::add(acc, bv);  // = fma(1, bias, S), the GEMM epilogue
    acc = V::canon(acc);
    if (o + j + VW <= end) {
      V::store(o + j, acc);
    } else {
      A tmp[VW];
      V::store(tmp, acc);
      std::copy(tmp, tmp + (OW - j), o + j);
    }
  };
  std::size_t i = 0;
  if constexpr (VW > 1) {
    // Vectors across j (the last one of a row may run past OW into the plane's zero slack: those
    // lanes are computed and dropped, every lane is its own chain), RB rows at a time.
    const std::size_t nv = (OW + VW - 1) / VW;
    for (; i + RB <= OH; i += RB)
      for (std::size_t jv = nv; jv-- > 0;) {  // the row's last vector first: see put
        const std::size_t j = jv * VW;
        reg acc[RB];
        for (std::size_t r = 0; r < RB; ++r) acc[r] = V::zero();
        const A* base = in + i * sh * ld + j;
#pragma GCC unroll 32
        for (std::size_t k = 0; k < K; ++k) {
          const reg wk = weight(k);
          for (std::size_t r = 0; r < RB; ++r) acc[r] = V::fma(tap(base + r * sh * ld, k), wk, acc[r]);
        }
        for (std::size_t r = 0; r < RB; ++r) put(out + (i + r) * OW, j, acc[r]);
      }
    for (; i < OH; ++i)
      for (std::size_t j = 0; j < OW; j += VW) {
        reg acc = V::zero();
        const A* base = in + i * sh * ld + j;
#pragma GCC unroll 32
        for (std::size_t k = 0; k < K; ++k) acc = V::fma(tap(base, k), weight(k), acc);
        put(out + i * OW, j, acc);
      }
    return;
  }
  for (; i < OH; ++i)
    for (std::size_t j = 0; j < OW; ++j) {
      const A* base = in + i * sh * ld + j;
      A acc = A(0);
      for (std::size_t k = 0; k < K; ++k) acc = core::fused_fma(base[off[k]], w[k], acc);
      out[i * OW + j] = bias ? core::gemm_epilogue(A(1), acc, A(1), *bias) : conv_finish(acc);
    }
}

/// conv_depthwise_plane_k with the kernel's size at compile time where it is a common one
/// (3x3, 5x5, 1 x 3; dilation 1), any K otherwise. The chain is the same either way. Flip:
/// backward-data's offsets, off[k] = off[0] - (k / KW) * ld - k % KW.
template <class Arch, class A, bool Flip>
void conv_depthwise_plane(const A* in, std::size_t ld, std::size_t sh, const std::size_t* off, const A* w,
                          const conv2d_shape& s, const A* bias, A* out, std::size_t OH, std::size_t OW) {
  const std::size_t KH = s.kernel_h, KW = s.kernel_w, K = KH * KW;
  if (s.dilation_h == 1 && s.dilation_w == 1) {
    if (KH == 3 && KW == 3) return conv_depthwise_plane_k<Arch, A, 3, 3, Flip>(in, ld, sh, off, w, K, bias, out, OH, OW);
    if (KH == 5 && KW == 5) return conv_depthwise_plane_k<Arch, A, 5, 5, Flip>(in, ld, sh, off, w, K, bias, out, OH, OW);
    if (KH == 1 && KW == 3) return conv_depthwise_plane_k<Arch, A, 1, 3, Flip>(in, ld, sh, off, w, K, bias, out, OH, OW);
  }
  conv_depthwise_plane_k<Arch, A, 0, 0, Flip>(in, ld, sh, off, w, K, bias, out, OH, OW);
}

/// Copies `rows` rows of `cols` elements (row stride cols, widened exactly) from src to dst (row
/// stride ld) and leaves dst[r][cols, cols + VW) zero. With X == A it moves whole vectors (the
/// last may read past a row's end, never past src_end, and write into the zeroed slack, which
/// it then re-zeroes); dst rows need cols + VW elements.
template <class V, class A, class X>
void conv_copy_rows(A* dst, std::size_t ld, const X* src, std::size_t rows, std::size_t cols, const X* src_end) {
  constexpr std::size_t VW = static_cast<std::size_t>(V::W);
  for (std::size_t r = 0; r < rows; ++r) {
    const X* sp = src + r * cols;
    A* dp = dst + r * ld;
    if constexpr (std::is_same<X, A>::value && VW > 1) {
      const std::size_t nv = (cols + VW - 1) / VW;
      if (sp + nv * VW <= src_end) {
        if (nv == 1)  // small planes: GCC turns the loop below into a memmove call, costly per row
          V::store(dp, V::load(sp));
        else
          for (std::size_t v = 0; v < nv; ++v) V::store(dp + v * VW, V::load(sp + v * VW));
        V::store(dp + cols, V::zero());
        continue;
      }
    }
    for (std::size_t c = 0; c < cols; ++c) dp[c] = static_cast<A>(core::widen(sp[c]));
  }
}

/// Runs fill(q, buf) then plane(q, buf) for the (image, channel) planes q in [0, NC) on `threads`
/// threads, with the calling thread's two padded buffers of `size` elements, zeroed once per chunk
/// of planes (fill() writes only the same interior positions, so the padding stays zero). Plane
/// q + 1 is filled before plane q is computed: its stores have left the store buffer by the time
/// the kernel's unaligned loads read them.
template <class A, class Fill, class Plane>
void conv_depthwise_planes(std::size_t NC, std::size_t size, int threads, Fill fill, Plane plane) {
  const std::size_t per = std::max<std::size_t>(1, NC / (4 * static_cast<std::size_t>(std::max(threads, 1))));
  parallel_chunks(threads, canonical_chunks{NC, per}, [&](std::uint64_t q0, std::uint64_t q1) {
    std::vector<A>& buf = conv_thread_scratch<A>().b;
    buf.assign(2 * size, A(0));
    A* const two[2] = {buf.data(), buf.data() + size};
    fill(static_cast<std::size_t>(q0), two[0]);
    for (std::uint64_t q = q0; q < q1; ++q) {
      if (q + 1 < q1) fill(static_cast<std::size_t>(q + 1), two[(q + 1 - q0) & 1]);
      plane(static_cast<std::size_t>(q), two[(q - q0) & 1]);
    }
  });
}

/// Depthwise forward, NCHW with stride_w == 1 (zero-padded planes, vectors across output
/// columns) or NHWC (vectors across channels). Same chain as the reference.
template <class Arch, class A, class X>
void conv_depthwise_forward(const conv2d_shape& s, const X* x, const A* w, const A* bias, A* y, int threads) {
  using V = typename gemm_arch<Arch, A>::V;
  constexpr std::size_t VW = static_cast<std::size_t>(V::W);
  const std::size_t N = s.batch, C = s.in_channels, H = s.in_h, Wd = s.in_w, KH = s.kernel_h, KW = s.kernel_w;
  const std::size_t OH = s.out_h(), OW = s.out_w(), K = KH * KW;
  if (s.data == layout::nchw) {
    const std::size_t Hp = H + 2 * s.pad_h, Wp = Wd + 2 * s.pad_w + VW;
    std::vector<std::size_t> off(K);
    for (std::size_t k = 0; k < K; ++k) off[k] = (k / KW) * s.dilation_h * Wp + (k % KW) * s.dilation_w;
    conv_depthwise_planes<A>(
        N * C, Hp * Wp, threads,
        [&](std::size_t q, A* buf) {
          conv_copy_rows<V>(buf + s.pad_h * Wp + s.pad_w, Wp, x + q * H * Wd, H, Wd, x + N * C * H * Wd);
        },
        [&](std::size_t q, A* buf) {
      conv_depthwise_plane<Arch, A, false>(buf, Wp, s.stride_h, off.data(), w + (q % C) * K, s, bias ? bias + q % C : nullptr,
                                    y + q * OH * OW, OH, OW);
        });
    return;
  }
  std::vector<A> wt(K * C);  // wt[k][c]
  for (std::size_t c = 0; c < C; ++c)
    for (std::size_t k = 0; k < K; ++k) wt[k * C + c] = w[c * K + k];
  parallel_chunks(threads, canonical_chunks{N * OH, 1}, [&](std::uint64_t q0, std::uint64_t) {
    const std::size_t n = static_cast<std::size_t>(q0) / OH, oh = static_cast<std::size_t>(q0) % OH;
    std::vector<A>& xin = conv_thread_scratch<A>().a;
    xin.resize(C);
    for (std::size_t ow = 0; ow < OW; ++ow) {
      A* o = y + ((n * OH + oh) * OW + ow) * C;
      std::size_t c0 = 0;
      auto tap = [&](std::size_t k, std::size_t& ih, std::size_t& iw) {
        return core::conv_tap_in(oh, k / KW, s.stride_h, s.pad_h, s.dilation_h, H, ih) &&
               core::conv_tap_in(ow, k % KW, s.stride_w, s.pad_w, s.dilation_w, Wd, iw);
      };
      if constexpr (std::is_same<X, A>::value) {
        for (; c0 + VW <= C; c0 += VW) {
          auto acc = V::zero();
          for (std::size_t k = 0; k < K; ++k) {
            std::size_t ih, iw;
            const auto xv = tap(k, ih, iw) ? V::load(x + ((n * H + ih) * Wd + iw) * C + c0) : V::zero();
            acc = V::fma(xv, V::load(wt.data() + k * C + c0), acc);
          }
          if (bias) acc = V::add(acc, V::load(bias + c0));
          V::store(o + c0, V::canon(acc));
        }
      }
      for (std::size_t c = c0; c < C; ++c) {
        A acc = A(0);
        for (std::size_t k = 0; k < K; ++k) {
          std::size_t ih, iw;
          const A xv = tap(k, ih, iw) ? static_cast<A>(core::widen(x[((n * H + ih) * Wd + iw) * C + c])) : A(0);
          acc = core::fused_fma(xv, wt[k * C + c], acc);
        }
        o[c] = bias ? core::gemm_epilogue(A(1), acc, A(1), bias[c]) : conv_finish(acc);
      }
    }
  });
}

/// Depthwise backward-data, NCHW, strides 1: dx[ih][iw] = chain over k of
/// fma(dy[ih + ph - kr*dh][iw + pw - kc*dw], w[k]) on a zero-padded dy plane.
template <class Arch, class A>
void conv_depthwise_backward_data(const conv2d_shape& s, const A* dy, const A* w, A* dx, int threads) {
  using V = typename gemm_arch<Arch, A>::V;
  constexpr std::size_t VW = static_cast<std::size_t>(V::W);
  const std::size_t N = s.batch, C = s.in_channels, H = s.in_h, Wd = s.in_w, KH = s.kernel_h, KW = s.kernel_w;
  const std::size_t OH = s.out_h(), OW = s.out_w(), K = KH * KW;
  const std::size_t Th = (KH - 1) * s.dilation_h, Tw = (KW - 1) * s.dilation_w;  // top / left padding
  const std::size_t Hp = std::max(OH, H + s.pad_h) + Th + 1, Wp = std::max(OW, Wd + s.pad_w) + Tw + VW + 1;
  std::vector<std::size_t> off(K);  // (row, column) of the padded plane minus the dx (row, column)
  for (std::size_t k = 0; k < K; ++k)
    off[k] = (s.pad_h + Th - (k / KW) * s.dilation_h) * Wp + (s.pad_w + Tw - (k % KW) * s.dilation_w);
  conv_depthwise_planes<A>(
      N * C, Hp * Wp, threads,
      [&](std::size_t q, A* buf) { conv_copy_rows<V>(buf + Th * Wp + Tw, Wp, dy + q * OH * OW, OH, OW, dy + N * C * OH * OW); },
      [&](std::size_t q, A* buf) {
    conv_depthwise_plane<Arch, A, true>(buf, Wp, 1, off.data(), w + (q % C) * K, s, nullptr, dx + q * H * Wd, H, Wd);
  });
}

// The exact tier element by element (core::exact_sum_with_start per output): the path for small
// problems and for ISAs without an integer matrix engine.

/// The exact tier: out[e] for e in [0, count) = the correctly rounded (start +) exact sum of
/// terms(e, k) for k < K (core::exact_sum_with_start: exact double sums when no rounding
/// happens, the exact accumulator otherwise). Threads take blocks of elements.
template <class A, class Terms, class Start, class Out>
void conv_exact_elements(std::size_t count, std::size_t K, int threads, Terms terms, Start start, Out out) {
  parallel_chunks(threads, canonical_chunks{count, 64}, [&](std::uint64_t e0, std::uint64_t e1) {
    for (std::size_t e = e0; e < e1; ++e) {
      bool has = false;
      const A st = start(e, has);
      out(e, core::exact_sum_with_start<A>(st, has, K, [&](std::uint64_t k) { return terms(e, k); }));
    }
  });
}

template <class A, class X, class Wt>
void conv_forward_exact_elements(const conv2d_shape& s, const X* x, const Wt* w, const A* bias, A* y, int threads) {
  const std::size_t C = s.in_channels, H = s.in_h, Wd = s.in_w, OC = s.out_channels, KH = s.kernel_h,
                    KW = s.kernel_w, OH = s.out_h(), OW = s.out_w(), Cg = C / s.groups, OCg = OC / s.groups,
                    K = Cg * KH * KW;
  // element e = ((n * OC + oc) * OH + oh) * OW + ow
  conv_exact_elements<A>(
      s.batch * OC * OH * OW, K, threads,
      [&](std::size_t e, std::size_t k) {
        const std::size_t ow = e % OW, oh = (e / OW) % OH, oc = (e / (OW * OH)) % OC, n = e / (OW * OH * OC);
        const std::size_t icg = k / (KH * KW), kr = (k / KW) % KH, kc = k % KW;
        std::size_t ih, iw;
        A xv = A(0);
        if (core::conv_tap_in(oh, kr, s.stride_h, s.pad_h, s.dilation_h, H, ih) &&
            core::conv_tap_in(ow, kc, s.stride_w, s.pad_w, s.dilation_w, Wd, iw))
          xv = core::widen(x[core::conv_offset(s.data, C, H, Wd, n, (oc / OCg) * Cg + icg, ih, iw)]);
        return core::product_term<A>{xv, static_cast<A>(core::widen(w[oc * K + k]))};
      },
      [&](std::size_t e, bool& has) {
        has = bias != nullptr;
        return has ? bias[(e / (OW * OH)) % OC] : A(0);
      },
      [&](std::size_t e, A v) {
        const std::size_t ow = e % OW, oh = (e / OW) % OH, oc = (e / (OW * OH)) % OC, n = e / (OW * OH * OC);
        y[core::conv_offset(s.data, OC, OH, OW, n, oc, oh, ow)] = v;
      });
}

template <class A, class Wt>
void conv_backward_data_exact_elements(const conv2d_shape& s, const A* dy, const Wt* w, A* dx, int threads) {
  const std::size_t C = s.in_channels, H = s.in_h, Wd = s.in_w, OC = s.out_channels, KH = s.kernel_h,
                    KW = s.kernel_w, OH = s.out_h(), OW = s.out_w(), Cg = C / s.groups, OCg = OC / s.groups,
                    KK = KH * KW;
  conv_exact_elements<A>(
      s.batch * C * H * Wd, OCg * KK, threads,
      [&](std::size_t e, std::size_t k) {
        const std::size_t iw = e % Wd, ih = (e / Wd) % H, ic = (e / (Wd * H)) % C, n = e / (Wd * H * C);
        const std::size_t g = ic / Cg, ocg = k / KK, kr = (k / KW) % KH, kc = k % KW;
        std::size_t oh, ow;
        A dv = A(0);
        if (core::conv_tap_out(ih, kr, s.stride_h, s.pad_h, s.dilation_h, OH, oh) &&
            core::conv_tap_out(iw, kc, s.stride_w, s.pad_w, s.dilation_w, OW, ow))
          dv = dy[core::conv_offset(s.data, OC, OH, OW, n, g * OCg + ocg, oh, ow)];
        return core::product_term<A>{dv, static_cast<A>(core::widen(w[((g * OCg + ocg) * Cg + ic % Cg) * KK + k % KK]))};
      },
      [](std::size_t, bool& has) {
        has = false;
        return A(0);
      },
      [&](std::size_t e, A v) {
        const std::size_t iw = e % Wd, ih = (e / Wd) % H, ic = (e / (Wd * H)) % C, n = e / (Wd * H * C);
        dx[core::conv_offset(s.data, C, H, Wd, n, ic, ih, iw)] = v;
      });
}

template <class A, class X>
void conv_backward_weight_exact_elements(const conv2d_shape& s, const X* x, const A* dy, A* dw, A* dbias, int threads) {
  const std::size_t C = s.in_channels, H = s.in_h, Wd = s.in_w, OC = s.out_channels, KH = s.kernel_h,
                    KW = s.kernel_w, OH = s.out_h(), OW = s.out_w(), Cg = C / s.groups, OCg = OC / s.groups,
                    K = Cg * KH * KW, P = OH * OW, R = s.batch * P;
  auto dy_at = [&](std::size_t oc, std::size_t k) {
    return dy[core::conv_offset(s.data, OC, OH, OW, k / P, oc, (k % P) / OW, k % OW)];
  };
  auto no_start = [](std::size_t, bool& has) {
    has = false;
    return A(0);
  };
  conv_exact_elements<A>(
      OC * K, R, threads,
      [&](std::size_t e, std::size_t k) {
        const std::size_t oc = e / K, j = e % K, icg = j / (KH * KW), kr = (j / KW) % KH, kc = j % KW;
        const std::size_t n = k / P, oh = (k % P) / OW, ow = k % OW;
        std::size_t ih, iw;
        A xv = A(0);
        if (core::conv_tap_in(oh, kr, s.stride_h, s.pad_h, s.dilation_h, H, ih) &&
            core::conv_tap_in(ow, kc, s.stride_w, s.pad_w, s.dilation_w, Wd, iw))
          xv = core::widen(x[core::conv_offset(s.data, C, H, Wd, n, (oc / OCg) * Cg + icg, ih, iw)]);
        return core::product_term<A>{dy_at(oc, k), xv};
      },
      no_start, [&](std::size_t e, A v) { dw[e] = v; });
  if (dbias)
    conv_exact_elements<A>(
        OC, R, threads, [&](std::size_t oc, std::size_t k) { return dy_at(oc, k); }, no_start,
        [&](std::size_t oc, A v) { dbias[oc] = v; });
}


// ------------------------------------------------------------------ exact tier: depthwise (float)
//
// Depthwise forward and backward-data (NCHW, unit column stride; backward-data unit strides) in
// float: each output is the exact sum of at most 256 products of two floats (48 significant
// bits: exact in double) and the bias. Per plane, from the largest and smallest non-zero
// magnitudes of the plane, the filter and the bias: every term t is below 2^E and a multiple of
// 2^Q. With n terms (2^kb >= n, kb >= 2) and the split s = E + kb - 53, each term is cut into
// h = (t + 1.5 * 2^(s+52)) - 1.5 * 2^(s+52) (a multiple of 2^s, exact: |t| < 2^(s+51)) and
// l = t - h (exact, |l| <= 2^(s-1)). Sums of n h's stay below 2^(s+53) on the grid 2^s, sums of
// n l's below 2^(Q+53) on the grid 2^Q when s <= Q + 54 - kb: both exact in double. The exact
// value hi + lo is then rounded once: TwoSum gives it as t + e, round-to-odd in double (t's last
// bit set toward e when e != 0 and t's last bit is 0) keeps the information, and the conversion
// to float rounds it to nearest even correctly (53 >= 24 + 2 bits). Vectors run across output
// columns (double lanes). Planes outside the bound (a magnitude spread over ~50 bits, NaN/Inf,
// all zeros) and outputs whose exact sum is 0 (their sign needs the terms) take the element path.

/// round(hi + lo) to float for exact doubles hi, lo; false when the sum is 0.
inline bool conv_exact_round_pair(double hi, double lo, float& out) {
  const double t = hi + lo, bp = t - hi, err = (hi - (t - bp)) + (lo - bp);
  if (t == 0.0) return false;  // then err == 0 too
  std::uint64_t u;
  std::memcpy(&u, &t, sizeof u);
  if (err != 0.0 && (u & 1) == 0) {
    if ((err > 0) == (t > 0)) ++u;
    else --u;
  }
  double r;
  std::memcpy(&r, &u, sizeof r);
  out = static_cast<float>(r);
  return true;
}

/// The split exponent s of the block bound above, or false when it does not hold.
inline bool conv_exact_dw_split(const magnitude_range& rx, const magnitude_range& rw, const float* bias,
                                std::size_t K, int& s) {
  constexpr std::uint64_t inf = 0x7f800000u;
  if (rx.max_abs == 0 || rw.max_abs == 0 || rx.max_abs >= inf || rw.max_abs >= inf) return false;
  auto E_of = [](std::uint64_t b) { return std::max(static_cast<int>(b >> 23), 1) - 126; };
  auto Q_of = [](std::uint64_t b) { return std::max(static_cast<int>(b >> 23), 1) - 150; };
  int E = E_of(rx.max_abs) + E_of(rw.max_abs), Q = Q_of(rx.min_nonzero_abs) + Q_of(rw.min_nonzero_abs);
  if (bias) {
    std::uint32_t bb;
    std::memcpy(&bb, bias, sizeof bb);
    bb &= 0x7fffffffu;
    if (bb >= inf) return false;
    if (bb != 0) {
      E = std::max(E, E_of(bb));
      Q = std::min(Q, Q_of(bb));
    }
  }
  const std::size_t n = K + (bias ? 1 : 0);
  int kb = 2;
  while ((std::size_t(1) << kb) < n) ++kb;
  s = E + kb - 53;
  return s <= Q + 54 - kb;
}

/// out[i][j] (i < OH, j < OW) = round(bias + sum_k in[i * sh + offh[k]][j + offw[k]] * w[k]) on a
/// zero-padded double plane (row stride ld, >= N columns of zero slack); element(i, j) computes an
/// output the bound does not cover.
template <class Arch, class Element>
void conv_exact_dw_plane(const double* in, std::size_t ld, std::size_t sh, const std::size_t* offh,
                         const std::size_t* offw, const float* w, std::size_t K, const float* bias, int s,
                         float* out, std::size_t OH, std::size_t OW, Element element) {
  using ops = dvec<Arch>;
  using D = typename ops::D;
  constexpr std::size_t N = ops::N;
  const double c = core::double_of(static_cast<std::uint64_t>(s + 52 + 1023) << 52) * 1.5;
  double hb = 0.0, lb = 0.0;
  if (bias) {
    const double b = *bias;
    hb = (b + c) - c;
    lb = b - hb;
  }
  const D cv = ops::splat(c);
  double wk[256];
  for (std::size_t k = 0; k < K; ++k) wk[k] = w[k];
  for (std::size_t i = 0; i < OH; ++i) {
    const double* base = in + i * sh * ld;
    for (std::size_t j = 0; j < OW; j += N) {
      D hi = ops::splat(hb), lo = ops::splat(lb);
      for (std::size_t k = 0; k < K; ++k) {
        const D p = ops::load(base + offh[k] * ld + offw[k] + j) * ops::splat(wk[k]);
        const D h = (p + cv) - cv;
        hi = hi + h;
        lo = lo + (p - h);
      }
      alignas(64) double th[N], tl[N];
      ops::store(th, hi);
      ops::store(tl, lo);
      const std::size_t lanes = std::min(N, OW - j);
      for (std::size_t l = 0; l < lanes; ++l)
        if (!conv_exact_round_pair(th[l], tl[l], out[i * OW + j + l])) out[i * OW + j + l] = element(i, j + l);
    }
  }
}

/// Where the depthwise exact drivers put a source plane for conv_exact_dw_plane: a zero buffer
/// of hp x wp doubles with the plane at row `top`, column `left`; the kernel reads row
/// i * stride_h + offh[k], column j + offw[k] for tap k of output (i, j).
struct conv_dw_plane_layout {
  std::size_t hp, wp, top, left, stride_h;
  std::vector<std::size_t> offh, offw;
};

/// One (image, channel) plane of a depthwise exact driver: out (oh x ow) from the source plane
/// src (src_h x src_w) and the channel's K weights (+ *bias when not null). When conv_exact_dw_split
/// finds a split, the plane kernel on the zero-padded copy of src (l); otherwise element(i, j)
/// for every output, in memory order.
template <class Arch, class Element>
void conv_exact_dw_plane_of(const conv_dw_plane_layout& l, const float* src, std::size_t src_h, std::size_t src_w,
                            const float* w, std::size_t K, const float* bias, float* out, std::size_t oh,
                            std::size_t ow, const Element& element) {
  int sp;
  if (!conv_exact_dw_split(block_magnitudes<Arch>(src, src_h * src_w), block_magnitudes<Arch>(w, K), bias, K, sp)) {
    for (std::size_t i = 0; i < oh; ++i)
      for (std::size_t j = 0; j < ow; ++j) out[i * ow + j] = element(i, j);
    return;
  }
  std::vector<double>& buf = conv_thread_scratch<double>().b;
  buf.assign(l.hp * l.wp, 0.0);
  for (std::size_t h = 0; h < src_h; ++h)
    for (std::size_t c = 0; c < src_w; ++c) buf[(h + l.top) * l.wp + l.left + c] = src[h * src_w + c];
  conv_exact_dw_plane<Arch>(buf.data(), l.wp, l.stride_h, l.offh.data(), l.offw.data(), w, K, bias, sp, out, oh, ow,
                            element);
}

/// Depthwise forward, float, NCHW, stride_w == 1.
template <class Arch>
void conv_depthwise_forward_exact(const conv2d_shape& s, const float* x, const float* w, const float* bias, float* y,
                                  int threads) {
  constexpr std::size_t N = dvec<Arch>::N;
  const std::size_t B = s.batch, C = s.in_channels, H = s.in_h, Wd = s.in_w, KH = s.kernel_h, KW = s.kernel_w;
  const std::size_t OH = s.out_h(), OW = s.out_w(), K = KH * KW;
  conv_dw_plane_layout l{H + 2 * s.pad_h, Wd + 2 * s.pad_w + N, s.pad_h, s.pad_w, s.stride_h, {}, {}};
  l.offh.resize(K), l.offw.resize(K);
  for (std::size_t k = 0; k < K; ++k) l.offh[k] = (k / KW) * s.dilation_h, l.offw[k] = (k % KW) * s.dilation_w;
  parallel_chunks(threads, canonical_chunks{B * C, 1}, [&](std::uint64_t q0, std::uint64_t) {
    const std::size_t q = static_cast<std::size_t>(q0), c = q % C;
    const float* xp = x + q * H * Wd;
    const float* wc = w + c * K;
    const float* bc = bias ? bias + c : nullptr;
    float* yp = y + q * OH * OW;
    auto element = [&](std::size_t oh, std::size_t ow) {
      return core::exact_sum_with_start<float>(bc ? *bc : 0.0f, bc != nullptr, K, [&](std::uint64_t k) {
        std::size_t ih, iw;
        float xv = 0.0f;
        if (core::conv_tap_in(oh, k / KW, s.stride_h, s.pad_h, s.dilation_h, H, ih) &&
            core::conv_tap_in(ow, k % KW, s.stride_w, s.pad_w, s.dilation_w, Wd, iw))
          xv = xp[ih * Wd + iw];
        return core::product_term<float>{xv, wc[k]};
      });
    };
    conv_exact_dw_plane_of<Arch>(l, xp, H, Wd, wc, K, bc, yp, OH, OW, element);
  });
}

/// Depthwise backward-data, float, NCHW, unit strides: the forward plane kernel on the
/// zero-padded dy plane with the kernel flipped.
template <class Arch>
void conv_depthwise_backward_data_exact(const conv2d_shape& s, const float* dy, const float* w, float* dx,
                                        int threads) {
  constexpr std::size_t N = dvec<Arch>::N;
  const std::size_t B = s.batch, C = s.in_channels, H = s.in_h, Wd = s.in_w, KH = s.kernel_h, KW = s.kernel_w;
  const std::size_t OH = s.out_h(), OW = s.out_w(), K = KH * KW;
  const std::size_t Th = (KH - 1) * s.dilation_h, Tw = (KW - 1) * s.dilation_w;
  conv_dw_plane_layout l{std::max(OH, H + s.pad_h) + Th + 1, std::max(OW, Wd + s.pad_w) + Tw + N + 1, Th, Tw, 1,
                         {}, {}};
  l.offh.resize(K), l.offw.resize(K);
  for (std::size_t k = 0; k < K; ++k) {
    l.offh[k] = s.pad_h + Th - (k / KW) * s.dilation_h;
    l.offw[k] = s.pad_w + Tw - (k % KW) * s.dilation_w;
  }
  parallel_chunks(threads, canonical_chunks{B * C, 1}, [&](std::uint64_t q0, std::uint64_t) {
    const std::size_t q = static_cast<std::size_t>(q0), c = q % C;
    const float* src = dy + q * OH * OW;
    const float* wc = w + c * K;
    float* dxp = dx + q * H * Wd;
    auto element = [&](std::size_t ih, std::size_t iw) {
      return core::exact_sum_with_start<float>(0.0f, false, K, [&](std::uint64_t k) {
        std::size_t oh, ow;
        float dv = 0.0f;
        if (core::conv_tap_out(ih, k / KW, s.stride_h, s.pad_h, s.dilation_h, OH, oh) &&
            core::conv_tap_out(iw, k % KW, s.stride_w, s.pad_w, s.dilation_w, OW, ow))
          dv = src[oh * OW + ow];
        return core::product_term<float>{dv, wc[k]};
      });
    };
    conv_exact_dw_plane_of<Arch>(l, src, OH, OW, wc, K, nullptr, dxp, H, Wd, element);
  });
}

/// Depthwise backward-weight, float, any layout and stride: dw[c][k] is the exact dot of the
/// channel's dy (over n, oh, ow) with the tap-k im2col row of its input, and dbias[c] the exact
/// sum of its dy - the reduction family's exact dot/sum engines (cpu/reduce_kernels.hpp:
/// exact pre-accumulation in double registers), one channel per task.
template <class Arch>
void conv_depthwise_backward_weight_exact(const conv2d_shape& s, const float* x, const float* dy, float* dw,
                                          float* dbias, int threads) {
  const std::size_t B = s.batch, C = s.in_channels, KH = s.kernel_h, KW = s.kernel_w;
  const std::size_t OH = s.out_h(), OW = s.out_w(), K = KH * KW, P = OH * OW, R = B * P;
  parallel_chunks(threads, canonical_chunks{C, 1}, [&](std::uint64_t c0, std::uint64_t) {
    const std::size_t c = static_cast<std::size_t>(c0);
    conv_scratch<float>& sc = conv_thread_scratch<float>();
    float* dyc = conv_reserve(sc.dy_nhwc, R);
    float* xk = conv_reserve(sc.x_nhwc, R);
    for (std::size_t r = 0; r < R; ++r) {
      const std::size_t n = r / P, p = r % P;
      dyc[r] = dy[core::conv_offset(s.data, C, OH, OW, n, c, p / OW, p % OW)];
    }
    for (std::size_t k = 0; k < K; ++k) {
      const conv_tap_columns tc(s, k % KW);
      for (std::size_t r = 0; r < R;) {  // runs inside one output row of one image
        const std::size_t n = r / P, oh = (r % P) / OW, ow0 = r % OW, len = std::min(R - r, OW - ow0);
        conv_gather_tap_run(s, x, n, c, k / KW, tc, oh, ow0, len, xk + r);
        r += len;
      }
      core::exact_accumulator<float> acc;
      exact_products_range<Arch>(R, acc, [&](std::size_t i, std::size_t, float*, float*, const float*& a,
                                             const float*& b) {
        a = dyc + i;
        b = xk + i;
      });
      dw[c * K + k] = acc.round();
    }
    if (dbias) {
      core::exact_accumulator<float> acc;
      exact_sum_range<Arch>(dyc, R, acc);
      dbias[c] = acc.round();
    }
  });
}

// ------------------------------------------------------------------ exact tier
//
// Each element is the correctly rounded exact sum of its K products (forward: and bias[oc]):
// order-independent, so any decomposition gives the same bits. The three ops are lowered onto
// the GEMM exact tier (cpu/gemm_exact.hpp: integer digit GEMMs on AMX / AVX-512 VNNI / loops,
// the exact accumulator for rows or columns with NaN/Inf or too wide a span), whose rule for
// alpha = 1, beta = 0 is exactly this one (round(S), NaN/Inf/-0 by core/exact.hpp):
//   forward          C[ocg][(n, oh, ow)] = sum_k w[oc][k] * im2col[k][(n, oh, ow)], plus one more
//                    term bias[oc] * 1 (the exact sum then holds the bias, rounded once with
//                    the rest: the same value and the same signed-zero rule as a start value);
//   backward-data    C[icg][(n, ih, iw)] = sum_(ocg, r, c) w^T * (zero-upsampled dy);
//   backward-weight  C^T[k][ocg] = sum_(n, oh, ow) im2col[k][.] * dy[oc][.]; dbias is one more
//                    row of ones (dy * 1).
// Padding taps and missing output positions are +0 entries of the packed matrix, as in the
// reference's chain (a term +0 * w, so Inf * padding is NaN). The packed operand is built in
// tiles of at most conv_exact_tile elements, so memory stays bounded on large shapes.

inline constexpr std::size_t conv_exact_tile = std::size_t(1) << 22;

/// The calling thread's packed operands of the exact lowering (kept between calls: their pages
/// stay mapped).
template <class T>
struct conv_exact_buffers {
  std::vector<T> a, b, c;
};
template <class T>
conv_exact_buffers<T>& conv_exact_thread_buffers() {
  static thread_local conv_exact_buffers<T> s;
  return s;
}

/// Whether an m x n (per group) exact product of type A takes the GEMM exact tier: enough rows
/// and columns to fill its blocks, or few rows but many columns (the stem's backward-data: m = 3,
/// 4x faster than elements even with idle block rows); else the element path above (the same
/// bits). Float (the certified double filter) and double (the split filter) need no integer
/// engine: their filters run on the fixed-order double GEMM of every ISA.
template <class A>
bool conv_exact_use_gemm(gemm_exact_kernel kern, std::size_t m, std::size_t n) {
  (void)kern;
  return (m >= 4 && n >= 4) || (m >= 1 && n >= 4096);
}

/// Rows [0, rows) of a packed operand filled by fill_row(r, dst), split over threads.
template <class FillRow>
void conv_exact_fill(std::size_t rows, int threads, FillRow fill_row) {
  parallel_chunks(threads, canonical_chunks{rows, 16}, [&](std::uint64_t r0, std::uint64_t r1) {
    for (std::size_t r = r0; r < r1; ++r) fill_row(r);
  });
}

template <class A, class X, class Wt>
void conv_forward_exact(const conv2d_shape& s, const X* x, const Wt* w, const A* bias, A* y, int threads,
                        isa simd = isa::automatic) {
  if constexpr (std::is_same<A, float>::value && std::is_same<X, float>::value && std::is_same<Wt, float>::value) {
    if (conv_is_depthwise(s) && s.data == layout::nchw && s.stride_w == 1)
      return with_arch(resolve_isa(simd), [&](auto arch) {
        conv_depthwise_forward_exact<decltype(arch)>(s, x, w, bias, y, threads);
      });
  }
  const gemm_exact_kernel kern = gemm_exact_kernel_for(resolve_isa(simd));
  const std::size_t N = s.batch, C = s.in_channels, H = s.in_h, Wd = s.in_w, OC = s.out_channels;
  const std::size_t KH = s.kernel_h, KW = s.kernel_w, OH = s.out_h(), OW = s.out_w(), G = s.groups;
  const std::size_t Cg = C / G, OCg = OC / G, K = Cg * KH * KW, P = OH * OW, cols = N * P;
  const std::size_t R = K + (bias ? 1 : 0);
  if (!conv_exact_use_gemm<A>(kern, OCg, cols)) return conv_forward_exact_elements<A>(s, x, w, bias, y, threads);
  const std::size_t jt = std::max<std::size_t>(32, conv_exact_tile / R / 32 * 32);
  conv_exact_buffers<A>& buf = conv_exact_thread_buffers<A>();
  std::vector<A>&b = buf.b, &c = buf.c;
  for (std::size_t g = 0; g < G; ++g) {
    auto geta = [&](std::size_t i, std::size_t k) -> A {
      return k < K ? static_cast<A>(core::widen(w[(g * OCg + i) * K + k])) : bias[g * OCg + i];
    };
    for (std::size_t j0 = 0; j0 < cols; j0 += jt) {
      const std::size_t nt = std::min(jt, cols - j0);
      b.resize(R * nt);
      c.resize(OCg * nt);
      conv_exact_fill(R, threads, [&](std::size_t k) {
        A* row = b.data() + k * nt;
        if (k == K) return std::fill(row, row + nt, A(1));
        const std::size_t icg = k / (KH * KW), kr = (k / KW) % KH, kc = k % KW;
        const conv_tap_columns tc(s, kc);
        std::size_t j = 0;
        while (j < nt) {  // runs inside one output row of one image
          const std::size_t q = j0 + j, n = q / P, p = q % P, oh = p / OW, ow0 = p % OW;
          const std::size_t len = std::min(nt - j, OW - ow0);
          conv_gather_tap_run(s, x, n, g * Cg + icg, kr, tc, oh, ow0, len, row + j);
          j += len;
        }
      });
      const A* bp = b.data();
      gemm_exact_run_filtered<A>(OCg, nt, R, A(1), geta, [bp, nt](std::size_t k, std::size_t j) { return bp[k * nt + j]; },
                        A(0), c.data(), nt, threads, resolve_isa(simd), kern);
      conv_exact_fill(OCg, threads, [&](std::size_t i) {
        const std::size_t oc = g * OCg + i;
        for (std::size_t jj = 0; jj < nt; ++jj) {
          const std::size_t q = j0 + jj, n = q / P, p = q % P;
          y[core::conv_offset(s.data, OC, OH, OW, n, oc, p / OW, p % OW)] = c[i * nt + jj];
        }
      });
    }
  }
  (void)H;
  (void)Wd;
}

template <class A, class Wt>
void conv_backward_data_exact(const conv2d_shape& s, const A* dy, const Wt* w, A* dx, int threads,
                              isa simd = isa::automatic) {
  if constexpr (std::is_same<A, float>::value && std::is_same<Wt, float>::value) {
    if (conv_is_depthwise(s) && s.data == layout::nchw && s.stride_h == 1 && s.stride_w == 1)
      return with_arch(resolve_isa(simd), [&](auto arch) {
        conv_depthwise_backward_data_exact<decltype(arch)>(s, dy, w, dx, threads);
      });
  }
  const gemm_exact_kernel kern = gemm_exact_kernel_for(resolve_isa(simd));
  const std::size_t N = s.batch, C = s.in_channels, H = s.in_h, Wd = s.in_w, OC = s.out_channels;
  const std::size_t KH = s.kernel_h, KW = s.kernel_w, OH = s.out_h(), OW = s.out_w(), G = s.groups;
  const std::size_t Cg = C / G, OCg = OC / G, KK = KH * KW, R = OCg * KK, P = H * Wd, cols = N * P;
  if (!conv_exact_use_gemm<A>(kern, Cg, cols)) return conv_backward_data_exact_elements<A>(s, dy, w, dx, threads);
  const std::size_t jt = std::max<std::size_t>(32, conv_exact_tile / R / 32 * 32);
  conv_exact_buffers<A>& buf = conv_exact_thread_buffers<A>();
  std::vector<A>&b = buf.b, &c = buf.c;
  for (std::size_t g = 0; g < G; ++g) {
    auto geta = [&](std::size_t i, std::size_t k) -> A {
      return static_cast<A>(core::widen(w[((g * OCg + k / KK) * Cg + i) * KK + k % KK]));
    };
    for (std::size_t j0 = 0; j0 < cols; j0 += jt) {
      const std::size_t nt = std::min(jt, cols - j0);
      b.resize(R * nt);
      c.resize(Cg * nt);
      conv_exact_fill(R, threads, [&](std::size_t k) {
        A* row = b.data() + k * nt;
        const std::size_t oc = g * OCg + k / KK, kr = (k / KW) % KH, kc = k % KW;
        std::size_t j = 0;
        while (j < nt) {  // runs inside one input row of one image
          const std::size_t q = j0 + j, n = q / P, p = q % P, ih = p / Wd, iw0 = p % Wd;
          const std::size_t len = std::min(nt - j, Wd - iw0);
          std::size_t oh, ow;
          if (!core::conv_tap_out(ih, kr, s.stride_h, s.pad_h, s.dilation_h, OH, oh)) {
            std::fill(row + j, row + j + len, A(0));
          } else {
            for (std::size_t t = 0; t < len; ++t)
              row[j + t] = core::conv_tap_out(iw0 + t, kc, s.stride_w, s.pad_w, s.dilation_w, OW, ow)
                               ? dy[core::conv_offset(s.data, OC, OH, OW, n, oc, oh, ow)]
                               : A(0);
          }
          j += len;
        }
      });
      const A* bp = b.data();
      gemm_exact_run_filtered<A>(Cg, nt, R, A(1), geta, [bp, nt](std::size_t k, std::size_t j) { return bp[k * nt + j]; },
                        A(0), c.data(), nt, threads, resolve_isa(simd), kern);
      conv_exact_fill(Cg, threads, [&](std::size_t i) {
        const std::size_t ic = g * Cg + i;
        for (std::size_t jj = 0; jj < nt; ++jj) {
          const std::size_t q = j0 + jj, n = q / P, p = q % P;
          dx[core::conv_offset(s.data, C, H, Wd, n, ic, p / Wd, p % Wd)] = c[i * nt + jj];
        }
      });
    }
  }
}

template <class A, class X>
void conv_backward_weight_exact(const conv2d_shape& s, const X* x, const A* dy, A* dw, A* dbias, int threads,
                                isa simd = isa::automatic) {
  if constexpr (std::is_same<A, float>::value && std::is_same<X, float>::value) {
    if (s.groups == s.in_channels && s.groups == s.out_channels)
      return with_arch(resolve_isa(simd), [&](auto arch) {
        conv_depthwise_backward_weight_exact<decltype(arch)>(s, x, dy, dw, dbias, threads);
      });
  }
  const gemm_exact_kernel kern = gemm_exact_kernel_for(resolve_isa(simd));
  const std::size_t N = s.batch, C = s.in_channels, OC = s.out_channels;
  const std::size_t KH = s.kernel_h, KW = s.kernel_w, OH = s.out_h(), OW = s.out_w(), G = s.groups;
  const std::size_t Cg = C / G, OCg = OC / G, K = Cg * KH * KW, P = OH * OW, R = N * P;
  const std::size_t rows = K + (dbias ? 1 : 0);  // row K: ones (dbias)
  if (!conv_exact_use_gemm<A>(kern, rows, OCg))
    return conv_backward_weight_exact_elements<A>(s, x, dy, dw, dbias, threads);
  if (R == 0) {  // no term: every exact sum is +0
    std::fill(dw, dw + OC * K, A(0));
    if (dbias) std::fill(dbias, dbias + OC, A(0));
    return;
  }
  const std::size_t it = std::max<std::size_t>(32, conv_exact_tile / R / 32 * 32);
  conv_exact_buffers<A>& buf = conv_exact_thread_buffers<A>();
  std::vector<A>&a = buf.a, &bt = buf.b, &c = buf.c;
  for (std::size_t g = 0; g < G; ++g) {
    // B[r][ocg] = dy[n][g * OCg + ocg][oh][ow], r = (n, oh, ow).
    bt.resize(R * OCg);
    conv_exact_fill(R, threads, [&](std::size_t r) {
      const std::size_t n = r / P, p = r % P;
      for (std::size_t i = 0; i < OCg; ++i)
        bt[r * OCg + i] = dy[core::conv_offset(s.data, OC, OH, OW, n, g * OCg + i, p / OW, p % OW)];
    });
    const A* bp = bt.data();
    for (std::size_t i0 = 0; i0 < rows; i0 += it) {
      const std::size_t mt = std::min(it, rows - i0);
      a.resize(mt * R);
      c.resize(mt * OCg);
      conv_exact_fill(mt, threads, [&](std::size_t ii) {
        A* row = a.data() + ii * R;
        const std::size_t k = i0 + ii;
        if (k == K) return std::fill(row, row + R, A(1));
        const std::size_t icg = k / (KH * KW), kr = (k / KW) % KH, kc = k % KW;
        const conv_tap_columns tc(s, kc);
        std::size_t r = 0;
        while (r < R) {  // runs inside one output row of one image
          const std::size_t n = r / P, oh = (r % P) / OW, ow0 = r % OW;
          const std::size_t len = std::min(R - r, OW - ow0);
          conv_gather_tap_run(s, x, n, g * Cg + icg, kr, tc, oh, ow0, len, row + r);
          r += len;
        }
      });
      const A* ap = a.data();
      gemm_exact_run_filtered<A>(mt, OCg, R, A(1), [ap, R](std::size_t i, std::size_t r) { return ap[i * R + r]; },
                        [bp, OCg](std::size_t r, std::size_t j) { return bp[r * OCg + j]; }, A(0), c.data(), OCg,
                        threads, resolve_isa(simd), kern);
      for (std::size_t ii = 0; ii < mt; ++ii) {
        const std::size_t k = i0 + ii;
        for (std::size_t i = 0; i < OCg; ++i) {
          if (k == K)
            dbias[g * OCg + i] = c[ii * OCg + i];
          else
            dw[(g * OCg + i) * K + k] = c[ii * OCg + i];
        }
      }
    }
  }
}

}  // namespace detail
}  // namespace cpu
}  // namespace bitexact
