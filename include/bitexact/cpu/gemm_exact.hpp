// bitexact/cpu/gemm_exact.hpp - the exact tier of GEMM on the CPU (issue 9, DESIGN 7).
//
// The value computed, and its rules for alpha, beta, NaN, Inf and -0, are stated in
// core/gemm_exact.hpp: each C[i][j] is the correctly rounded exact dot product (alpha = 1,
// beta = 0), so the bits are independent of threads, ISA, blocking and the order of k.
//
// How: rows of op(A) and columns of op(B) become integers under a shared exponent (one per row,
// one per column), cut into byte digits (core/gemm_exact.hpp); the digit matrices are multiplied
// as int8 GEMMs with int32 sums, per 32 x 32 block of C and per K block of 4096, by one of three
// kernels - AMX-INT8 tiles, AVX-512 VNNI (vpdpbusd), or plain loops - whose integer results are
// identical; the digit products of equal weight are summed in int32, folded into 32-bit words
// per element, and rounded once. Rows and columns with NaN/Inf, or whose span of exponents needs
// more than gemm_exact_max_digits digits, go through core::exact_accumulator element by element.
// Threads take contiguous runs of 32 x 32 blocks of C; a block's result never depends on who
// computes it.
//
// Float and bfloat16 inputs first go through the certified double filter (gemm_exact_filtered;
// the bound is in core/gemm_exact.hpp): the fixed-order dgemm of the widened inputs, each
// element kept where its error interval rounds to one float; only the others reach the integer
// path above (or Dot2 and the exact accumulator, one by one, when they are scattered). Double
// inputs go through the split filter (gemm_exact_split_run, bound in core/gemm_exact.hpp): three
// fixed-order double GEMMs of sliced operands, two of them exact, certified the same way.
//
// ISA mapping: isa::avx512 uses AMX-INT8 when the CPU and OS allow it, else AVX-512 VNNI when the
// CPU has it, else the loops; every other ISA uses the loops (compiled for that build).
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "../core/bfloat16.hpp"
#include "../core/fixed_order.hpp"  // combine_lanes
#include "../core/gemm_exact.hpp"
#include "../core/gemm_order.hpp"
#include "dispatch.hpp"
#include "gemm_kernels.hpp"
#include "isa.hpp"
#include "reduce_kernels.hpp"  // load_f32_as_f64, unroll
#include "threads.hpp"

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(__CUDA_ARCH__) && ((defined(__clang__) && __clang_major__ >= 12) || (!defined(__clang__) && __GNUC__ >= 11))
#define BITEXACT_GEMM_EXACT_X86 1
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#else
#define BITEXACT_GEMM_EXACT_X86 0
#endif

namespace bitexact {
namespace cpu {
namespace detail {

/// The integer kernels of the exact tier (all give the same integers).
enum class gemm_exact_kernel { loops, avx512_vnni, amx };

inline const char* gemm_exact_kernel_name(gemm_exact_kernel k) {
  switch (k) {
    case gemm_exact_kernel::loops: return "loops";
    case gemm_exact_kernel::avx512_vnni: return "avx512_vnni";
    case gemm_exact_kernel::amx: return "amx";
  }
  return "?";
}

#if BITEXACT_GEMM_EXACT_X86
inline bool gemm_exact_cpuid7(unsigned& ebx, unsigned& ecx, unsigned& edx) {
  unsigned eax = 0;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
  return true;
}
#endif

inline bool gemm_exact_kernel_available(gemm_exact_kernel k) {
  switch (k) {
    case gemm_exact_kernel::loops: return true;
#if BITEXACT_GEMM_EXACT_X86
    case gemm_exact_kernel::avx512_vnni: {
      static const bool v = [] {
        unsigned b = 0, c = 0, d = 0;
        return cpu_has_isa(isa::avx512) && gemm_exact_cpuid7(b, c, d) && ((c >> 11) & 1);
      }();
      return v;
    }
    case gemm_exact_kernel::amx: {
      static const bool v = [] {
        unsigned b = 0, c = 0, d = 0;
        if (!gemm_exact_cpuid7(b, c, d) || !((d >> 24) & 1) || !((d >> 25) & 1)) return false;
        // Linux hands out the AMX tile state only on request (arch_prctl ARCH_REQ_XCOMP_PERM,
        // XFEATURE_XTILEDATA); it is process-wide.
        return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
      }();
      return v;
    }
#else
    default: return false;
#endif
  }
  return false;
}

/// Every kernel usable here (for tests and benchmarks).
inline std::vector<gemm_exact_kernel> gemm_exact_kernels() {
  std::vector<gemm_exact_kernel> v;
  for (auto k : {gemm_exact_kernel::loops, gemm_exact_kernel::avx512_vnni, gemm_exact_kernel::amx})
    if (gemm_exact_kernel_available(k)) v.push_back(k);
  return v;
}

inline gemm_exact_kernel gemm_exact_kernel_for(isa i) {
  if (i == isa::avx512) {
    if (gemm_exact_kernel_available(gemm_exact_kernel::amx)) return gemm_exact_kernel::amx;
    if (gemm_exact_kernel_available(gemm_exact_kernel::avx512_vnni)) return gemm_exact_kernel::avx512_vnni;
  }
  return gemm_exact_kernel::loops;
}

/// C block of the integer kernels.
inline constexpr std::size_t gemm_exact_mb = 32, gemm_exact_nb = 32;

/// The packed digits, laid out so that every AMX tile (16 rows x 64 bytes) is 1 KiB of
/// contiguous memory: A digit s of row i at k is ad[s * a_stride + a_at(i, k)] (unsigned bytes,
/// tiles of 16 rows x 64 k); B digit t of column j at k is bd[t * b_stride + b_at(k, j)] (signed
/// bytes, tiles of 16 (k / 4) rows x 16 columns x 4 k).
struct gemm_exact_packed {
  const std::uint8_t* ad;
  const std::int8_t* bd;
  std::size_t a_stride, b_stride, kp, np;
  int sa, sb;
  static std::size_t a_at(std::size_t i, std::size_t k, std::size_t kp) {
    return ((i / 16) * (kp / 64) + k / 64) * 1024 + (i % 16) * 64 + k % 64;
  }
  static std::size_t b_at(std::size_t k, std::size_t j, std::size_t kp) {
    return ((j / 16) * (kp / 4) + k / 4) * 64 + (j % 16) * 4 + k % 4;
  }
};

/// G[g][32][32] (g = 0 .. sa + sb - 2) = sum over digit pairs s + t = g and k in [k0, k1) of
/// A digit s times B digit t, for the block at (i0, j0).
inline void gemm_exact_block_loops(const gemm_exact_packed& p, std::size_t i0, std::size_t j0, std::size_t k0,
                                   std::size_t k1, std::int32_t* G) {
  const int groups = p.sa + p.sb - 1;
  for (int g = 0; g < groups; ++g) {
    std::int32_t* gg = G + static_cast<std::size_t>(g) * 1024;
    for (int e = 0; e < 1024; ++e) gg[e] = 0;
    for (int s = std::max(0, g - p.sb + 1); s <= std::min(p.sa - 1, g); ++s) {
      const int t = g - s;
      const std::uint8_t* A = p.ad + static_cast<std::size_t>(s) * p.a_stride;
      const std::int8_t* B = p.bd + static_cast<std::size_t>(t) * p.b_stride;
      for (std::size_t i = 0; i < 32; ++i) {
        std::int32_t acc[32];
        for (int j = 0; j < 32; ++j) acc[j] = gg[i * 32 + j];
        for (std::size_t k = k0; k < k1; k += 4) {
          const std::uint8_t* ar = A + gemm_exact_packed::a_at(i0 + i, k, p.kp);
          const std::int32_t a0 = ar[0], a1 = ar[1], a2 = ar[2], a3 = ar[3];
          for (int h = 0; h < 2; ++h) {
            const std::int8_t* br = B + gemm_exact_packed::b_at(k, j0 + 16 * h, p.kp);
            for (int j = 0; j < 16; ++j)
              acc[16 * h + j] += a0 * br[4 * j] + a1 * br[4 * j + 1] + a2 * br[4 * j + 2] + a3 * br[4 * j + 3];
          }
        }
        for (int j = 0; j < 32; ++j) gg[i * 32 + j] = acc[j];
      }
    }
  }
}

#if BITEXACT_GEMM_EXACT_X86
__attribute__((target("avx512f,avx512bw,avx512vnni"))) inline void gemm_exact_block_vnni(
    const gemm_exact_packed& p, std::size_t i0, std::size_t j0, std::size_t k0, std::size_t k1, std::int32_t* G) {
  const int groups = p.sa + p.sb - 1;
  for (int g = 0; g < groups; ++g) {
    std::int32_t* gg = G + static_cast<std::size_t>(g) * 1024;
    for (std::size_t ib = 0; ib < 32; ib += 8) {
      __m512i acc[8][2];
      for (int r = 0; r < 8; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_si512();
      for (int s = std::max(0, g - p.sb + 1); s <= std::min(p.sa - 1, g); ++s) {
        const int t = g - s;
        const std::uint8_t* A = p.ad + static_cast<std::size_t>(s) * p.a_stride;
        const std::int8_t* B = p.bd + static_cast<std::size_t>(t) * p.b_stride;
        for (std::size_t k = k0; k < k1; k += 4) {
          const __m512i b0 = _mm512_loadu_si512(B + gemm_exact_packed::b_at(k, j0, p.kp));
          const __m512i b1 = _mm512_loadu_si512(B + gemm_exact_packed::b_at(k, j0 + 16, p.kp));
          const std::uint8_t* ar = A + gemm_exact_packed::a_at(i0 + ib, k, p.kp);  // 8 rows, stride 64
          for (int r = 0; r < 8; ++r) {
            std::int32_t av;
            std::memcpy(&av, ar + r * 64, 4);
            const __m512i a = _mm512_set1_epi32(av);
            acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], a, b0);
            acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], a, b1);
          }
        }
      }
      for (int r = 0; r < 8; ++r) {
        _mm512_storeu_si512(gg + (ib + r) * 32, acc[r][0]);
        _mm512_storeu_si512(gg + (ib + r) * 32 + 16, acc[r][1]);
      }
    }
  }
}

struct gemm_exact_tile_config {
  std::uint8_t palette = 1, start_row = 0;
  std::uint8_t reserved[14] = {};
  std::uint16_t colsb[16] = {};
  std::uint8_t rows[16] = {};
};

__attribute__((target("amx-tile,amx-int8"))) inline void gemm_exact_block_amx(const gemm_exact_packed& p,
                                                                             std::size_t i0, std::size_t j0,
                                                                             std::size_t k0, std::size_t k1,
                                                                             std::int32_t* G) {
  // tmm0..3: C tiles (16 x 16 int32) of the 32 x 32 block; tmm4, 5: A (16 rows x 64 k);
  // tmm6, 7: B (16 k/4 rows x 16 columns x 4 k).
  alignas(64) gemm_exact_tile_config cfg;
  for (int t = 0; t < 8; ++t) {
    cfg.rows[t] = 16;
    cfg.colsb[t] = 64;
  }
  _tile_loadconfig(&cfg);
  const int groups = p.sa + p.sb - 1;
  for (int g = 0; g < groups; ++g) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (int s = std::max(0, g - p.sb + 1); s <= std::min(p.sa - 1, g); ++s) {
      const int t = g - s;
      const std::uint8_t* A = p.ad + static_cast<std::size_t>(s) * p.a_stride;
      const std::int8_t* B = p.bd + static_cast<std::size_t>(t) * p.b_stride;
      const std::uint8_t* a0 = A + gemm_exact_packed::a_at(i0, k0, p.kp);
      const std::uint8_t* a1 = A + gemm_exact_packed::a_at(i0 + 16, k0, p.kp);
      const std::int8_t* b0 = B + gemm_exact_packed::b_at(k0, j0, p.kp);
      const std::int8_t* b1 = B + gemm_exact_packed::b_at(k0, j0 + 16, p.kp);
      for (std::size_t k = k0; k < k1; k += 64) {  // each tile: 1 KiB, contiguous
        _tile_loadd(4, a0, 64);
        _tile_loadd(5, a1, 64);
        _tile_loadd(6, b0, 64);
        _tile_loadd(7, b1, 64);
        _tile_dpbusd(0, 4, 6);
        _tile_dpbusd(1, 4, 7);
        _tile_dpbusd(2, 5, 6);
        _tile_dpbusd(3, 5, 7);
        a0 += 1024;
        a1 += 1024;
        b0 += 1024;
        b1 += 1024;
      }
    }
    std::int32_t* gg = G + static_cast<std::size_t>(g) * 1024;
    _tile_stored(0, gg, 128);
    _tile_stored(1, gg + 16, 128);
    _tile_stored(2, gg + 16 * 32, 128);
    _tile_stored(3, gg + 16 * 32 + 16, 128);
  }
  _tile_release();
}

/// The shared first steps of the AVX-512 epilogues for the 8 columns at jb (len = 8 or fewer at
/// the row's end): the lanes whose columns are on the integer path (fast_b), and the digit-group
/// sums G_g folded into NW words of weight 2^(32 q) (W[g / 4] += G_g 2^(8 (g mod 4)), exact).
template <int NW>
__attribute__((target("avx512f,avx512dq,avx512cd,avx512vl,avx512bw"))) inline __mmask8 gemm_exact_fold_words(
    const std::int32_t* G, int groups, std::size_t jb, std::size_t len, const unsigned char* fast_b, __m512i* W) {
  __mmask8 lane = static_cast<__mmask8>((1u << len) - 1);
  const __m128i fb = _mm_maskz_loadu_epi8(lane, fast_b + jb);
  lane &= _mm_test_epi8_mask(fb, fb);
  if (!lane) return lane;
  for (int q = 0; q < NW; ++q) W[q] = _mm512_setzero_si512();
  for (int g = 0; g < groups; ++g) {
    const __m512i v = _mm512_cvtepi32_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(G + g * 1024 + jb)));
    W[g >> 2] = _mm512_add_epi64(W[g >> 2], _mm512_slli_epi64(v, static_cast<unsigned>(8 * (g & 3))));
  }
  return lane;
}

/// The common epilogue (alpha = 1, beta = 0, one K block, |N| < 2^127) for one row of a block,
/// 8 columns per step in int64 lanes: the same steps as core::gemm_exact_round_normal128 after
/// the scalar Horner fold (N = sum_g G_g 2^(8 g) - offset_j, exact in 128-bit two's complement,
/// its top 64 bits with a sticky bit, one integer-to-float conversion in the current rounding mode,
/// two exact power-of-two products). Lanes it cannot finish (N == 0, a result that is subnormal or
/// may round to Inf, columns that are not on the integer path) are left for the caller's general
/// loop and not marked in `done`.
template <class T>
__attribute__((target("avx512f,avx512dq,avx512cd,avx512vl,avx512bw"))) inline void gemm_exact_epilogue_row_avx512(
    const std::int32_t* G, int groups, std::size_t cols, const unsigned char* fast_b, int qa, const int* qb,
    const std::uint64_t* off_lo, const std::uint64_t* off_hi, T* c, unsigned char* done) {
  using O = core::detail::ieee<T>;
  constexpr int frac_bits = O::precision - 1;
  const __m512i low32 = _mm512_set1_epi64(0xffffffff);
  const __m512i zero = _mm512_setzero_si512();
  for (std::size_t jb = 0; jb < cols; jb += 8) {
    const std::size_t len = std::min<std::size_t>(8, cols - jb);
    __m512i W[4];  // words of weight 2^(32 q), |W_q| < 2^57
    __mmask8 lane = gemm_exact_fold_words<4>(G, groups, jb, len, fast_b, W);
    if (!lane) continue;
    // Carries: words 0..2 into [0, 2^32), word 3 signed; then N mod 2^128 as lo + hi 2^64.
    const __m512i w0 = _mm512_and_si512(W[0], low32);
    const __m512i t1 = _mm512_add_epi64(W[1], _mm512_srai_epi64(W[0], 32));
    const __m512i w1 = _mm512_and_si512(t1, low32);
    const __m512i t2 = _mm512_add_epi64(W[2], _mm512_srai_epi64(t1, 32));
    const __m512i w2 = _mm512_and_si512(t2, low32);
    const __m512i t3 = _mm512_add_epi64(W[3], _mm512_srai_epi64(t2, 32));
    __m512i lo = _mm512_or_si512(w0, _mm512_slli_epi64(w1, 32));
    __m512i hi = _mm512_or_si512(w2, _mm512_slli_epi64(t3, 32));
    const __m512i olo = _mm512_maskz_loadu_epi64(lane, off_lo + jb);
    const __m512i ohi = _mm512_maskz_loadu_epi64(lane, off_hi + jb);
    const __mmask8 borrow = _mm512_cmplt_epu64_mask(lo, olo);
    lo = _mm512_sub_epi64(lo, olo);
    hi = _mm512_mask_sub_epi64(_mm512_sub_epi64(hi, ohi), borrow, _mm512_sub_epi64(hi, ohi), _mm512_set1_epi64(1));
    // Sign and magnitude.
    const __mmask8 neg = _mm512_cmplt_epi64_mask(hi, zero);
    const __mmask8 lo_nz = _mm512_test_epi64_mask(lo, lo);
    const __m512i nhi = _mm512_mask_sub_epi64(_mm512_sub_epi64(zero, hi), lo_nz, _mm512_sub_epi64(zero, hi),
                                              _mm512_set1_epi64(1));
    lo = _mm512_mask_sub_epi64(lo, neg, zero, lo);
    hi = _mm512_mask_mov_epi64(hi, neg, nhi);
    const __mmask8 nonzero = lo_nz | _mm512_test_epi64_mask(hi, hi);
    // Top 64 bits, sticky bit for the rest.
    const __mmask8 hi_nz = _mm512_test_epi64_mask(hi, hi);
    const __m512i c64 = _mm512_set1_epi64(64);
    const __m512i cl = _mm512_mask_mov_epi64(_mm512_add_epi64(c64, _mm512_lzcnt_epi64(lo)), hi_nz,
                                             _mm512_lzcnt_epi64(hi));
    const __m512i top_hi = _mm512_or_si512(_mm512_sllv_epi64(hi, cl), _mm512_srlv_epi64(lo, _mm512_sub_epi64(c64, cl)));
    const __m512i top_lo = _mm512_sllv_epi64(lo, _mm512_sub_epi64(cl, c64));  // cl >= 64: lo moves up
    const __m512i top = _mm512_mask_mov_epi64(top_lo, hi_nz, top_hi);
    const __m512i rest = _mm512_maskz_sllv_epi64(hi_nz, lo, cl);  // bits below top (cl >= 64: none)
    const __m512i topx = _mm512_mask_or_epi64(top, _mm512_test_epi64_mask(rest, rest), top, _mm512_set1_epi64(1));
    const __m512i qbv = _mm512_cvtepi32_epi64(_mm256_maskz_loadu_epi32(lane, qb + jb));
    const __m512i e_msb = _mm512_sub_epi64(_mm512_add_epi64(qbv, _mm512_set1_epi64(qa + 127)), cl);
    const __mmask8 ok = lane & nonzero & _mm512_cmpge_epi64_mask(e_msb, _mm512_set1_epi64(O::emin)) &
                        _mm512_cmple_epi64_mask(e_msb, _mm512_set1_epi64(O::emax - 1));
    if (!ok) continue;
    const __m512i e_ok = _mm512_maskz_mov_epi64(ok, e_msb);  // other lanes: scale 1, no exception
    if constexpr (sizeof(T) == 4) {
      const __m256 f = _mm512_cvtepu64_ps(topx);  // current rounding mode, as static_cast
      const __m256 two_m63 = _mm256_set1_ps(0x1p-63f);
      const __m256i eb = _mm256_slli_epi32(_mm256_add_epi32(_mm512_cvtepi64_epi32(e_ok), _mm256_set1_epi32(O::bias)),
                                           frac_bits);
      __m256 v = _mm256_mul_ps(_mm256_mul_ps(f, two_m63), _mm256_castsi256_ps(eb));
      v = _mm256_castsi256_ps(_mm256_mask_xor_epi32(_mm256_castps_si256(v), neg, _mm256_castps_si256(v),
                                                    _mm256_set1_epi32(static_cast<int>(0x80000000u))));
      _mm256_mask_storeu_ps(reinterpret_cast<float*>(c) + jb, ok, v);
    } else {
      const __m512d f = _mm512_cvtepu64_pd(topx);
      const __m512d two_m63 = _mm512_set1_pd(0x1p-63);
      const __m512i eb = _mm512_slli_epi64(_mm512_add_epi64(e_ok, _mm512_set1_epi64(O::bias)), frac_bits);
      __m512d v = _mm512_mul_pd(_mm512_mul_pd(f, two_m63), _mm512_castsi512_pd(eb));
      v = _mm512_castsi512_pd(_mm512_mask_xor_epi64(_mm512_castpd_si512(v), neg, _mm512_castpd_si512(v),
                                                    _mm512_set1_epi64(static_cast<long long>(0x8000000000000000ull))));
      _mm512_mask_storeu_pd(reinterpret_cast<double*>(c) + jb, ok, v);
    }
    _mm_mask_storeu_epi8(done + jb, ok, _mm_set1_epi8(1));
  }
}

/// gemm_exact_epilogue_row_avx512 for |N| < 2^191 (three 64-bit limbs; double's usual case):
/// the same steps as core::gemm_exact_round_normal<T, 3> on the folded words.
template <class T>
__attribute__((target("avx512f,avx512dq,avx512cd,avx512vl,avx512bw"))) inline void gemm_exact_epilogue_row3_avx512(
    const std::int32_t* G, int groups, std::size_t cols, const unsigned char* fast_b, int qa, const int* qb,
    const std::uint64_t* off0, const std::uint64_t* off1, const std::uint64_t* off2, T* c, unsigned char* done) {
  using O = core::detail::ieee<T>;
  constexpr int frac_bits = O::precision - 1;
  const __m512i low32 = _mm512_set1_epi64(0xffffffff);
  const __m512i zero = _mm512_setzero_si512();
  const __m512i one = _mm512_set1_epi64(1);
  for (std::size_t jb = 0; jb < cols; jb += 8) {
    const std::size_t len = std::min<std::size_t>(8, cols - jb);
    __m512i W[6];  // words of weight 2^(32 q), |W_q| < 2^57
    __mmask8 lane = gemm_exact_fold_words<6>(G, groups, jb, len, fast_b, W);
    if (!lane) continue;
    __m512i w[6];  // words 0..4 into [0, 2^32), word 5 signed
    __m512i carry = zero;
    for (int q = 0; q < 5; ++q) {
      const __m512i t = _mm512_add_epi64(W[q], carry);
      w[q] = _mm512_and_si512(t, low32);
      carry = _mm512_srai_epi64(t, 32);
    }
    w[5] = _mm512_add_epi64(W[5], carry);
    __m512i l0 = _mm512_or_si512(w[0], _mm512_slli_epi64(w[1], 32));  // N mod 2^192 in three limbs
    __m512i l1 = _mm512_or_si512(w[2], _mm512_slli_epi64(w[3], 32));
    __m512i l2 = _mm512_or_si512(w[4], _mm512_slli_epi64(w[5], 32));
    const __m512i o0 = _mm512_maskz_loadu_epi64(lane, off0 + jb);
    const __m512i o1 = _mm512_maskz_loadu_epi64(lane, off1 + jb);
    const __m512i o2 = _mm512_maskz_loadu_epi64(lane, off2 + jb);
    const __mmask8 b0 = _mm512_cmplt_epu64_mask(l0, o0);
    const __mmask8 b1 = _mm512_cmplt_epu64_mask(l1, o1) | (_mm512_cmpeq_epi64_mask(l1, o1) & b0);
    l0 = _mm512_sub_epi64(l0, o0);
    l1 = _mm512_sub_epi64(l1, o1);
    l1 = _mm512_mask_sub_epi64(l1, b0, l1, one);
    l2 = _mm512_sub_epi64(l2, o2);
    l2 = _mm512_mask_sub_epi64(l2, b1, l2, one);
    // Sign and magnitude: |N| = ~N + 1.
    const __mmask8 neg = _mm512_cmplt_epi64_mask(l2, zero);
    const __mmask8 z0 = _mm512_cmpeq_epi64_mask(l0, zero), z1 = _mm512_cmpeq_epi64_mask(l1, zero);
    const __m512i ones = _mm512_set1_epi64(-1);
    const __m512i n0 = _mm512_sub_epi64(zero, l0);
    const __m512i n1 = _mm512_mask_add_epi64(_mm512_xor_si512(l1, ones), z0, _mm512_xor_si512(l1, ones), one);
    const __m512i n2 = _mm512_mask_add_epi64(_mm512_xor_si512(l2, ones), z0 & z1, _mm512_xor_si512(l2, ones), one);
    l0 = _mm512_mask_mov_epi64(l0, neg, n0);
    l1 = _mm512_mask_mov_epi64(l1, neg, n1);
    l2 = _mm512_mask_mov_epi64(l2, neg, n2);
    const __mmask8 nz0 = _mm512_test_epi64_mask(l0, l0), nz1 = _mm512_test_epi64_mask(l1, l1),
                   nz2 = _mm512_test_epi64_mask(l2, l2);
    // The top nonzero limb H (index h), the next one M, and whether anything lies below M.
    const __m512i H = _mm512_mask_mov_epi64(_mm512_mask_mov_epi64(l0, nz1, l1), nz2, l2);
    const __m512i M = _mm512_mask_mov_epi64(_mm512_maskz_mov_epi64(nz1, l0), nz2, l1);
    const __mmask8 below = nz2 & nz0;
    const __m512i h64 = _mm512_mask_mov_epi64(_mm512_maskz_mov_epi64(nz1, _mm512_set1_epi64(64)), nz2,
                                              _mm512_set1_epi64(128));
    const __m512i cl = _mm512_lzcnt_epi64(H);
    const __m512i top = _mm512_or_si512(_mm512_sllv_epi64(H, cl),
                                        _mm512_srlv_epi64(M, _mm512_sub_epi64(_mm512_set1_epi64(64), cl)));
    const __m512i rest = _mm512_sllv_epi64(M, cl);
    const __mmask8 sticky = _mm512_test_epi64_mask(rest, rest) | below;
    const __m512i topx = _mm512_mask_or_epi64(top, sticky, top, one);
    const __m512i qbv = _mm512_cvtepi32_epi64(_mm256_maskz_loadu_epi32(lane, qb + jb));
    const __m512i e_msb = _mm512_sub_epi64(_mm512_add_epi64(_mm512_add_epi64(qbv, h64), _mm512_set1_epi64(qa + 63)), cl);
    const __mmask8 ok = lane & (nz0 | nz1 | nz2) & _mm512_cmpge_epi64_mask(e_msb, _mm512_set1_epi64(O::emin)) &
                        _mm512_cmple_epi64_mask(e_msb, _mm512_set1_epi64(O::emax - 1));
    if (!ok) continue;
    const __m512i e_ok = _mm512_maskz_mov_epi64(ok, e_msb);
    if constexpr (sizeof(T) == 4) {
      const __m256 f = _mm512_cvtepu64_ps(topx);
      const __m256i eb = _mm256_slli_epi32(_mm256_add_epi32(_mm512_cvtepi64_epi32(e_ok), _mm256_set1_epi32(O::bias)),
                                           frac_bits);
      __m256 v = _mm256_mul_ps(_mm256_mul_ps(f, _mm256_set1_ps(0x1p-63f)), _mm256_castsi256_ps(eb));
      v = _mm256_castsi256_ps(_mm256_mask_xor_epi32(_mm256_castps_si256(v), neg, _mm256_castps_si256(v),
                                                    _mm256_set1_epi32(static_cast<int>(0x80000000u))));
      _mm256_mask_storeu_ps(reinterpret_cast<float*>(c) + jb, ok, v);
    } else {
      const __m512d f = _mm512_cvtepu64_pd(topx);
      const __m512i eb = _mm512_slli_epi64(_mm512_add_epi64(e_ok, _mm512_set1_epi64(O::bias)), frac_bits);
      __m512d v = _mm512_mul_pd(_mm512_mul_pd(f, _mm512_set1_pd(0x1p-63)), _mm512_castsi512_pd(eb));
      v = _mm512_castsi512_pd(_mm512_mask_xor_epi64(_mm512_castpd_si512(v), neg, _mm512_castpd_si512(v),
                                                    _mm512_set1_epi64(static_cast<long long>(0x8000000000000000ull))));
      _mm512_mask_storeu_pd(reinterpret_cast<double*>(c) + jb, ok, v);
    }
    _mm_mask_storeu_epi8(done + jb, ok, _mm_set1_epi8(1));
  }
}

/// B's digits for one group of 16 columns [j0, j0 + 16) (j0 a multiple of 16; columns from j1
/// on, and those not on the integer path, get zero digits and add nothing), sb <= 8: the same
/// integers as the scalar loop (Y = b / 2^qb exactly, gemm_exact_fixed64; digit t is byte t of
/// Y + 0x8080.. xor 0x80), 4 k x 16 columns per step, each digit plane written as one 64-byte
/// piece of its tile. sums[c] gets the exact sum of column j0 + c's Y.
template <class T, class GetB>
__attribute__((target("avx512f,avx512dq,avx512cd,avx512vl,avx512bw"))) inline void gemm_exact_b_digits_avx512(
    GetB getb, std::size_t K, std::size_t j0, std::size_t j1, const unsigned char* fast_b, const int* qb, int sb,
    std::int8_t* bd, std::size_t plane, std::size_t kp, core::gemm_exact_sum* sums) {
  using I = core::detail::ieee<T>;
  using Bits = typename I::bits_type;
  constexpr int frac_bits = I::precision - 1;
  constexpr int total = static_cast<int>(sizeof(T) * 8);
  const __m512i emask = _mm512_set1_epi64((std::int64_t(1) << (total - 1 - frac_bits)) - 1);
  const __m512i fmask = _mm512_set1_epi64((std::int64_t(1) << frac_bits) - 1);
  const __m512i implicit = _mm512_set1_epi64(std::int64_t(1) << frac_bits);
  const __m512i zero = _mm512_setzero_si512();
  std::uint64_t biasv = 0;
  for (int t = 0; t < sb; ++t) biasv = (biasv << 8) | 0x80;
  const __m512i bias = _mm512_set1_epi64(static_cast<std::int64_t>(biasv));
  __mmask8 live[2] = {0, 0};
  __m512i qv[2];
  for (int h = 0; h < 2; ++h) {
    for (int l = 0; l < 8; ++l) {
      const std::size_t j = j0 + 8 * h + l;
      if (j < j1 && fast_b[j]) live[h] |= static_cast<__mmask8>(1u << l);
    }
    qv[h] = _mm512_cvtepi32_epi64(_mm256_maskz_loadu_epi32(live[h], qb + j0 + 8 * h));
  }
  __m512i lo[2] = {zero, zero}, hi[2] = {zero, zero};  // sum = lo + hi 2^64 (lo unsigned)
  const std::size_t jn = std::min<std::size_t>(16, j1 - j0);
  for (std::size_t k0 = 0; k0 < K; k0 += 4) {
    __m128i bytes[8][4];  // [digit][k - k0]: 16 columns' bytes
    for (int kk = 0; kk < 4; ++kk) {
      const std::size_t k = k0 + kk;
      alignas(64) Bits raw[16] = {};
      if (k < K)
        for (std::size_t c = 0; c < jn; ++c) {
          const T x = getb(k, j0 + c);
          std::memcpy(&raw[c], &x, sizeof x);
        }
      __m512i v[2];
      for (int h = 0; h < 2; ++h) {
        __m512i bits;
        if constexpr (sizeof(T) == 4)
          bits = _mm512_cvtepu32_epi64(_mm256_load_si256(reinterpret_cast<const __m256i*>(raw + 8 * h)));
        else
          bits = _mm512_load_si512(raw + 8 * h);
        const __m512i e = _mm512_and_si512(_mm512_srli_epi64(bits, frac_bits), emask);
        const __mmask8 normal = _mm512_test_epi64_mask(e, e);
        const __m512i mant = _mm512_mask_or_epi64(_mm512_and_si512(bits, fmask), normal,
                                                  _mm512_and_si512(bits, fmask), implicit);
        const __m512i eff = _mm512_mask_mov_epi64(_mm512_set1_epi64(1), normal, e);
        const __m512i sh = _mm512_sub_epi64(_mm512_sub_epi64(eff, _mm512_set1_epi64(I::bias + frac_bits)), qv[h]);
        const __mmask8 left = _mm512_cmpge_epi64_mask(sh, zero);
        // Counts of 64 and more give 0 (vpsllvq / vpsrlvq), as gemm_exact_fixed64 requires.
        const __m512i mag = _mm512_mask_mov_epi64(_mm512_srlv_epi64(mant, _mm512_sub_epi64(zero, sh)), left,
                                                  _mm512_sllv_epi64(mant, sh));
        const __mmask8 neg = _mm512_test_epi64_mask(bits, _mm512_set1_epi64(static_cast<std::int64_t>(std::uint64_t(1) << (total - 1))));
        __m512i y = _mm512_mask_sub_epi64(mag, neg, zero, mag);
        y = _mm512_maskz_mov_epi64(live[h], y);
        const __m512i nl = _mm512_add_epi64(lo[h], y);
        hi[h] = _mm512_mask_add_epi64(hi[h], _mm512_cmplt_epu64_mask(nl, lo[h]), hi[h], _mm512_set1_epi64(1));
        hi[h] = _mm512_mask_sub_epi64(hi[h], _mm512_cmplt_epi64_mask(y, zero), hi[h], _mm512_set1_epi64(1));
        lo[h] = nl;
        v[h] = _mm512_add_epi64(y, bias);
      }
      const __m128i flip = _mm_set1_epi8(static_cast<char>(0x80));
      for (int t = 0; t < sb; ++t) {
        const __m128i b0 = _mm512_cvtepi64_epi8(_mm512_srli_epi64(v[0], static_cast<unsigned>(8 * t)));
        const __m128i b1 = _mm512_cvtepi64_epi8(_mm512_srli_epi64(v[1], static_cast<unsigned>(8 * t)));
        bytes[t][kk] = _mm_xor_si128(_mm_unpacklo_epi64(b0, b1), flip);
      }
    }
    std::int8_t* dst = bd + gemm_exact_packed::b_at(k0, j0, kp);
    for (int t = 0; t < sb; ++t) {
      const __m128i p01l = _mm_unpacklo_epi8(bytes[t][0], bytes[t][1]), p01h = _mm_unpackhi_epi8(bytes[t][0], bytes[t][1]);
      const __m128i p23l = _mm_unpacklo_epi8(bytes[t][2], bytes[t][3]), p23h = _mm_unpackhi_epi8(bytes[t][2], bytes[t][3]);
      std::int8_t* d = dst + static_cast<std::size_t>(t) * plane;
      _mm_storeu_si128(reinterpret_cast<__m128i*>(d), _mm_unpacklo_epi16(p01l, p23l));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(d + 16), _mm_unpackhi_epi16(p01l, p23l));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(d + 32), _mm_unpacklo_epi16(p01h, p23h));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(d + 48), _mm_unpackhi_epi16(p01h, p23h));
    }
  }
  alignas(64) std::uint64_t l[16];
  alignas(64) std::int64_t hh[16];
  _mm512_store_si512(l, lo[0]);
  _mm512_store_si512(l + 8, lo[1]);
  _mm512_store_si512(hh, hi[0]);
  _mm512_store_si512(hh + 8, hi[1]);
  for (std::size_t c = 0; c < jn; ++c) {
    sums[c].lo = l[c];
    sums[c].hi = hh[c];
  }
}
#endif

inline void gemm_exact_block(gemm_exact_kernel kern, const gemm_exact_packed& p, std::size_t i0, std::size_t j0,
                             std::size_t k0, std::size_t k1, std::int32_t* G) {
#if BITEXACT_GEMM_EXACT_X86
  if (kern == gemm_exact_kernel::amx) return gemm_exact_block_amx(p, i0, j0, k0, k1, G);
  if (kern == gemm_exact_kernel::avx512_vnni) return gemm_exact_block_vnni(p, i0, j0, k0, k1, G);
#endif
  (void)kern;
  gemm_exact_block_loops(p, i0, j0, k0, k1, G);
}

/// The exact tier's large buffers: this thread's, kept between calls (Slot names the buffer)
/// while `count` elements fit in 32 MiB (fresh pages cost a fault each), else `own`, which the
/// caller frees, so no thread keeps more than 32 MiB per buffer. Returned as it was left.
template <class V, int Slot>
std::vector<V>& gemm_exact_buffer(std::size_t count, std::vector<V>& own) {
  constexpr std::size_t keep = std::size_t(32) << 20;
  static thread_local std::vector<V> kept;
  return count * sizeof(V) <= keep ? kept : own;
}

/// The driver: op(A)[i][k] = geta(i, k), op(B)[k][j] = getb(k, j).
template <class T, class GetA, class GetB>
void gemm_exact_run(std::size_t m, std::size_t n, std::size_t K, T alpha, GetA geta, GetB getb, T beta, T* c,
                    std::size_t ldc, int threads, gemm_exact_kernel kern) {
  if (m == 0 || n == 0) return;
  const int nt = std::max(1, threads);
  if (alpha == T(0)) {
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < n; ++j)
        c[i * ldc + j] = core::gemm_exact_alpha_zero(beta, beta == T(0) ? T(0) : c[i * ldc + j]);
    return;
  }
  auto slow = [&](std::size_t i, std::size_t j) {
    const T old = beta == T(0) ? T(0) : c[i * ldc + j];
    c[i * ldc + j] = core::gemm_exact_element_slow<T>(
        K, [&](std::size_t k) { return geta(i, k); }, [&](std::size_t k) { return getb(k, j); }, alpha, beta, old);
  };
  // 1. Spans of the rows of op(A) and the columns of op(B) (threads over rows / column groups).
  std::vector<core::gemm_exact_span> ra(m), cb(n);
  cpu::parallel_chunks(nt, canonical_chunks{m, 16}, [&](std::uint64_t i0, std::uint64_t i1) {
    for (std::size_t i = i0; i < i1; ++i)
      for (std::size_t k = 0; k < K; ++k) core::gemm_exact_note(ra[i], geta(i, k));
  });
  cpu::parallel_chunks(nt, canonical_chunks{n, 16}, [&](std::uint64_t j0, std::uint64_t j1) {
    for (std::size_t k = 0; k < K; ++k)
      for (std::size_t j = j0; j < j1; ++j) core::gemm_exact_note(cb[j], getb(k, j));
  });
  constexpr int maxd = core::gemm_exact_max_digits<T>::value;
  int sa = 0, sb = 0;
  std::vector<unsigned char> fast_a(m), fast_b(n);
  for (std::size_t i = 0; i < m; ++i) {
    const int d = core::gemm_exact_digits_a(ra[i]);
    fast_a[i] = !ra[i].special && d <= maxd;
    if (fast_a[i]) sa = std::max(sa, d);
  }
  for (std::size_t j = 0; j < n; ++j) {
    const int d = core::gemm_exact_digits_b(cb[j]);
    fast_b[j] = !cb[j].special && d <= maxd;
    if (fast_b[j]) sb = std::max(sb, d);
  }
  sa = std::max(sa, 1);
  sb = std::max(sb, 1);
  const std::size_t mb = gemm_exact_mb, nb = gemm_exact_nb;
  const std::size_t kp = (K + 63) / 64 * 64, mp = (m + mb - 1) / mb * mb, np = (n + nb - 1) / nb * nb;
  // 2. Digits (threads over rows of A, column groups of B) and each column's sum of Y.
  std::vector<std::uint8_t> ad_own;
  std::vector<std::int8_t> bd_own;
  const std::size_t ad_size = static_cast<std::size_t>(sa) * mp * kp, bd_size = static_cast<std::size_t>(sb) * kp * np;
  std::vector<std::uint8_t>& ad = gemm_exact_buffer<std::uint8_t, 0>(ad_size, ad_own);
  std::vector<std::int8_t>& bd = gemm_exact_buffer<std::int8_t, 1>(bd_size, bd_own);
  ad.assign(ad_size, 0);
  bd.assign(bd_size, 0);
  std::vector<int> qa(m, 0), qb(n, 0);
  const int nw = (8 * (sa + sb) + 40) / 32 + 2;
  const int limbs = core::gemm_exact_limbs(sa, sb, K);
  std::vector<std::int64_t> off(n * static_cast<std::size_t>(nw), 0);
  cpu::parallel_chunks(nt, canonical_chunks{m, 16}, [&](std::uint64_t i0, std::uint64_t i1) {
    std::vector<std::uint64_t> u(sa <= 8 ? K : 0);
    for (std::size_t i = i0; i < i1; ++i) {
      if (!fast_a[i]) continue;
      qa[i] = ra[i].zero() ? 0 : ra[i].lsb;
      if (sa <= 8) {  // X + 2^(8 sa - 1) in 64 bits: each digit plane written in k order
        const std::uint64_t offset = std::uint64_t(1) << (8 * sa - 1);
        for (std::size_t k = 0; k < K; ++k)
          u[k] = static_cast<std::uint64_t>(core::gemm_exact_fixed64<T>(geta(i, k), qa[i])) + offset;
        for (int s = 0; s < sa; ++s) {
          std::uint8_t* plane = ad.data() + static_cast<std::size_t>(s) * mp * kp;
          for (std::size_t k0 = 0; k0 < K; k0 += 64) {
            std::uint8_t* dst = plane + gemm_exact_packed::a_at(i, k0, kp);
            const std::size_t len = std::min<std::size_t>(64, K - k0);
            for (std::size_t q = 0; q < len; ++q) dst[q] = static_cast<std::uint8_t>(u[k0 + q] >> (8 * s));
          }
        }
        continue;
      }
      for (std::size_t k = 0; k < K; ++k)
        core::gemm_exact_digits_unsigned(core::gemm_exact_fixed<T>(geta(i, k), qa[i]), sa,
                                         &ad[gemm_exact_packed::a_at(i, k, kp)], mp * kp);
    }
  });
  cpu::parallel_chunks(nt, canonical_chunks{n, 16}, [&](std::uint64_t j0, std::uint64_t j1) {
    core::gemm_exact_sum sums[16];
    for (std::size_t j = j0; j < j1; ++j)
      if (fast_b[j]) qb[j] = cb[j].zero() ? 0 : cb[j].lsb;
#if BITEXACT_GEMM_EXACT_X86
    if (sb <= 8 && kern != gemm_exact_kernel::loops && j0 % 16 == 0) {
      gemm_exact_b_digits_avx512<T>(getb, K, j0, j1, fast_b.data(), qb.data(), sb, bd.data(), kp * np, kp, sums);
    } else
#endif
    if (sb <= 8) {  // Y + bias in 64 bits; digits are its bytes xor 0x80
      std::uint64_t bias = 0;
      for (int t = 0; t < sb; ++t) bias = (bias << 8) | 0x80;
      for (std::size_t k = 0; k < K; ++k)
        for (std::size_t j = j0; j < j1; ++j) {
          if (!fast_b[j]) continue;
          const std::int64_t y = core::gemm_exact_fixed64<T>(getb(k, j), qb[j]);
          const std::uint64_t v = static_cast<std::uint64_t>(y) + bias;
          std::int8_t* dst = &bd[gemm_exact_packed::b_at(k, j, kp)];
          for (int t = 0; t < sb; ++t)
            dst[static_cast<std::size_t>(t) * kp * np] = static_cast<std::int8_t>(static_cast<std::uint8_t>(v >> (8 * t)) ^ 0x80u);
          sums[j - j0].add(y);
        }
    } else {
      for (std::size_t k = 0; k < K; ++k)
        for (std::size_t j = j0; j < j1; ++j) {
          if (!fast_b[j]) continue;
          const __int128 y = core::gemm_exact_fixed<T>(getb(k, j), qb[j]);
          core::gemm_exact_digits_signed(y, sb, &bd[gemm_exact_packed::b_at(k, j, kp)], kp * np);
          sums[j - j0].add(y);
        }
    }
    for (std::size_t j = j0; j < j1; ++j)
      if (fast_b[j]) core::gemm_exact_offset_words(sums[j - j0], sa, &off[j * nw], nw);
  });
  const gemm_exact_packed p{ad.data(), bd.data(), mp * kp, kp * np, kp, np, sa, sb};
  // 3. Blocks of C.
  const std::size_t nbm = mp / mb, nbn = np / nb;
  const int groups = sa + sb - 1;
  std::vector<__int128> off128(limbs <= 2 ? n : 0);  // the offset words as one integer (mod 2^128)
  std::vector<std::uint64_t> off_lo(off128.size()), off_hi(off128.size());  // its halves
  std::vector<std::uint64_t> off3(limbs == 3 ? 3 * n : 0);  // limbs == 3: the offset mod 2^192, limb r at r n + j
  for (std::size_t j = 0; j < n && limbs == 3; ++j) {
    unsigned __int128 acc = 0;  // the words are normalized (0 .. 2^32) but the top one, which is signed
    for (int r = 0; r < 3; ++r) {
      for (int h = 0; h < 2; ++h) {
        const int q = 2 * r + h;
        if (q < nw) acc += static_cast<unsigned __int128>(static_cast<__int128>(off[j * nw + q])) << (32 * h);
      }
      off3[static_cast<std::size_t>(r) * n + j] = static_cast<std::uint64_t>(acc);
      acc = static_cast<unsigned __int128>(static_cast<__int128>(acc) >> 64);
    }
  }
  for (std::size_t j = 0; j < off128.size(); ++j) {
    unsigned __int128 v = 0;
    for (int q = 0; q < nw && q < 4; ++q) v += static_cast<unsigned __int128>(off[j * nw + q]) << (32 * q);
    off128[j] = static_cast<__int128>(v);
    off_lo[j] = static_cast<std::uint64_t>(v);
    off_hi[j] = static_cast<std::uint64_t>(v >> 64);
  }
#if BITEXACT_GEMM_EXACT_X86
  // The AVX-512 epilogue goes with the AVX-512 kernels (isa::avx512); the loops keep the scalar one.
  const bool vector_epilogue = kern != gemm_exact_kernel::loops;
#endif
  const bool one_k_block = kp <= core::gemm_exact_k_block;
  const bool plain = alpha == T(1) && beta == T(0);
  auto blocks = [&](auto limbs_c) {
    constexpr int NL = decltype(limbs_c)::value;
    cpu::parallel_chunks(nt, canonical_chunks{nbm * nbn, 1}, [&](std::uint64_t b0, std::uint64_t b1) {
      std::vector<std::int32_t> G(static_cast<std::size_t>(groups) * 1024);
      std::vector<unsigned char> done(1024, 0);
      std::vector<std::int64_t> D(one_k_block ? 0 : static_cast<std::size_t>(nw) * 1024);
      for (std::uint64_t blk = b0; blk < b1; ++blk) {
        // Row-major block order (grouping block rows to share L2 measured slower for dgemm).
        const std::size_t i0 = (blk / nbn) * mb, j0 = (blk % nbn) * nb;
        bool any_fast = false;
        for (std::size_t i = i0; i < std::min(m, i0 + mb) && !any_fast; ++i) any_fast = fast_a[i];
        bool any_fast_b = false;
        for (std::size_t j = j0; j < std::min(n, j0 + nb) && !any_fast_b; ++j) any_fast_b = fast_b[j];
        if (any_fast && any_fast_b) {
          if (one_k_block) {
            gemm_exact_block(kern, p, i0, j0, 0, kp, G.data());
          } else {
            std::fill(D.begin(), D.end(), 0);
            for (std::size_t k0 = 0; k0 < kp; k0 += core::gemm_exact_k_block) {
              const std::size_t k1 = std::min(kp, k0 + core::gemm_exact_k_block);
              gemm_exact_block(kern, p, i0, j0, k0, k1, G.data());
              for (int g = 0; g < groups; ++g) {
                std::int64_t* dq = D.data() + static_cast<std::size_t>((8 * g) >> 5) * 1024;
                const std::int64_t w = std::int64_t(1) << ((8 * g) & 31);
                const std::int32_t* gg = G.data() + static_cast<std::size_t>(g) * 1024;
                for (int e = 0; e < 1024; ++e) dq[e] += static_cast<std::int64_t>(gg[e]) * w;
              }
              for (int e = 0; e < 1024; ++e) {  // keep every word small before the next K block
                std::int64_t carry = 0;
                for (int q = 0; q < nw - 1; ++q) {
                  const std::int64_t v = D[static_cast<std::size_t>(q) * 1024 + e] + carry;
                  D[static_cast<std::size_t>(q) * 1024 + e] = v & 0xffffffff;
                  carry = v >> 32;
                }
                D[static_cast<std::size_t>(nw - 1) * 1024 + e] += carry;
              }
            }
          }
        }
        if constexpr (NL == 2) {
          if (one_k_block && plain) {  // the common case: N in 128 bits, alpha = 1, beta = 0
            for (std::size_t i = i0; i < std::min(m, i0 + mb); ++i) {
              if (!fast_a[i]) continue;
#if BITEXACT_GEMM_EXACT_X86
              if (vector_epilogue) {
                gemm_exact_epilogue_row_avx512<T>(G.data() + (i - i0) * 32, groups, std::min(n, j0 + nb) - j0,
                                                  fast_b.data() + j0, qa[i], qb.data() + j0, off_lo.data() + j0,
                                                  off_hi.data() + j0, c + i * ldc + j0, done.data() + (i - i0) * 32);
                continue;
              }
#endif
              for (std::size_t j = j0; j < std::min(n, j0 + nb); ++j) {
                if (!fast_b[j]) continue;
                const std::size_t e = (i - i0) * 32 + (j - j0);
                unsigned __int128 z = 0;  // Horner in base 256, modulo 2^128: exact, since |N| < 2^127
                for (int g = groups - 1; g >= 0; --g)
                  z = (z << 8) + static_cast<unsigned __int128>(
                                     static_cast<__int128>(G[static_cast<std::size_t>(g) * 1024 + e]));
                z -= static_cast<unsigned __int128>(off128[j]);
                T v;
                if (core::gemm_exact_round_normal128<T>(static_cast<__int128>(z), qa[i] + qb[j], v)) {
                  c[i * ldc + j] = v;
                  done[e] = 1;
                }
              }
            }
          }
        }
#if BITEXACT_GEMM_EXACT_X86
        if constexpr (NL == 3) {
          if (one_k_block && plain && vector_epilogue)
            for (std::size_t i = i0; i < std::min(m, i0 + mb); ++i)
              if (fast_a[i])
                gemm_exact_epilogue_row3_avx512<T>(G.data() + (i - i0) * 32, groups, std::min(n, j0 + nb) - j0,
                                                   fast_b.data() + j0, qa[i], qb.data() + j0, off3.data() + j0,
                                                   off3.data() + n + j0, off3.data() + 2 * n + j0, c + i * ldc + j0,
                                                   done.data() + (i - i0) * 32);
        }
#endif
        for (std::size_t i = i0; i < std::min(m, i0 + mb); ++i)
          for (std::size_t j = j0; j < std::min(n, j0 + nb); ++j) {
            if (done[(i - i0) * 32 + (j - j0)]) {
              done[(i - i0) * 32 + (j - j0)] = 0;
              continue;
            }
            if (!fast_a[i] || !fast_b[j]) {
              slow(i, j);
              continue;
            }
            const std::size_t e = (i - i0) * 32 + (j - j0);
            std::int64_t words[core::gemm_exact_max_words + 1];
            const std::int64_t* oj = &off[j * nw];
            if (one_k_block) {  // the digit-pair sums of weight 2^(8 g), folded into 32-bit words
              for (int q = 0; q < nw; ++q) words[q] = -oj[q];
              for (int g = 0; g < groups; ++g)
                words[(8 * g) >> 5] += static_cast<std::int64_t>(G[static_cast<std::size_t>(g) * 1024 + e])
                                       * (std::int64_t(1) << ((8 * g) & 31));
            } else {
              for (int q = 0; q < nw; ++q) words[q] = D[static_cast<std::size_t>(q) * 1024 + e] - oj[q];
            }
            const int ex = qa[i] + qb[j];
            T v;
            if (plain && core::gemm_exact_round_normal<T, NL>(words, nw, ex, v)) {
              c[i * ldc + j] = v;
              continue;
            }
            const T old = beta == T(0) ? T(0) : c[i * ldc + j];
            c[i * ldc + j] = core::gemm_exact_element_from_words<T>(
                words, nw, ex, limbs, K, alpha, beta, old, [&] {
                  return core::gemm_exact_all_negative_zero<T>(
                      K, [&](std::size_t k) { return geta(i, k); }, [&](std::size_t k) { return getb(k, j); });
                });
          }
      }
    });
  };
  if (limbs <= 2)
    blocks(std::integral_constant<int, 2>{});
  else if (limbs == 3)
    blocks(std::integral_constant<int, 3>{});
  else
    blocks(std::integral_constant<int, 4>{});
}

/// Widens a rows x cols matrix, element (r, q) = get(r, q), into a dense row-major double copy
/// and adds each element's square to sq[row] (by_rows) or sq[col] (otherwise); sq starts at zero.
template <class Get>
void gemm_exact_filter_widen(Get get, std::size_t rows, std::size_t cols, double* out, double* sq, bool by_rows,
                             int threads) {
  if (by_rows) {
    cpu::parallel_chunks(threads, canonical_chunks{rows, 16}, [&](std::uint64_t r0, std::uint64_t r1) {
      for (std::size_t r = r0; r < r1; ++r) {
        double* dst = out + r * cols;
        double s = 0;
        for (std::size_t q = 0; q < cols; ++q) {
          const double v = static_cast<double>(get(r, q));
          dst[q] = v;
          s += v * v;
        }
        sq[r] = s;
      }
    });
    return;
  }
  cpu::parallel_chunks(threads, canonical_chunks{cols, 256}, [&](std::uint64_t c0, std::uint64_t c1) {
    for (std::size_t r = 0; r < rows; ++r) {
      double* dst = out + r * cols;
      for (std::size_t q = c0; q < c1; ++q) {
        const double v = static_cast<double>(get(r, q));
        dst[q] = v;
        sq[q] += v * v;
      }
    }
  });
}

/// Where the filter finds op(A) and op(B) widened: op(A)(i, k) at a[i * a_rs + k * a_ks], op(B)(k, j)
/// at b[k * b_ks + j * b_cs].
struct gemm_exact_widened {
  std::size_t a_rs, a_ks, b_ks, b_cs;
};

/// Whether the certified double filter applies: its error bound needs 1 <= K <= 2^32. It is tried
/// first for every shape: the double GEMM and the widened copies cost about 2.5x the fixed-order
/// float GEMM on square shapes (10-20x on decode shapes, where widening B is the whole cost),
/// against the integer path's S_a x S_b int8 GEMMs (25 to 36 on normal data), which measured
/// slower for every shape tried (m = 2 .. 1024, n and K 256 .. 4096; AMD EPYC, AVX-512 VNNI).
inline bool gemm_exact_filter_applies(std::size_t K) { return K >= 1 && K <= (std::size_t(1) << 32); }

/// The left elements are taken one by one (core::gemm_exact_filter_dot2, then the exact
/// accumulator for what that leaves) when the sub-problem of their rows and columns is more than
/// this many times their number.
inline constexpr std::size_t gemm_exact_filter_scatter_ratio = 40;

/// What a filter leaves: left[i * n + j] marks the elements of C still to compute. They are
/// taken one by one (element(i, j, c_old, v): a certified fast try such as Dot2, true with v;
/// then the exact accumulator) when scattered, else by the integer path (gemm_exact_run) on the
/// sub-problem of the rows and columns that hold them, of which only they are stored. Every way
/// gives the correctly rounded exact value. Returns the number of elements left.
template <class T, class GetA, class GetB, class Element>
std::size_t gemm_exact_filter_left(std::size_t m, std::size_t n, std::size_t K, T alpha, GetA geta, GetB getb, T beta,
                                   T* c, std::size_t ldc, const unsigned char* left, int nt, gemm_exact_kernel kern,
                                   Element element) {
  std::vector<std::size_t> rows, cols;
  std::vector<unsigned char> col_left(n, 0);
  std::size_t count = 0;
  for (std::size_t i = 0; i < m; ++i) {
    bool any = false;
    for (std::size_t j = 0; j < n; ++j)
      if (left[i * n + j]) {
        any = true;
        col_left[j] = 1;
        ++count;
      }
    if (any) rows.push_back(i);
  }
  if (count == 0) return 0;
  for (std::size_t j = 0; j < n; ++j)
    if (col_left[j]) cols.push_back(j);
  const std::size_t mu = rows.size(), nu = cols.size();
  if (count * gemm_exact_filter_scatter_ratio < mu * nu) {  // scattered: element by element
    std::vector<std::size_t> at;
    at.reserve(count);
    for (std::size_t e = 0; e < m * n; ++e)
      if (left[e]) at.push_back(e);
    cpu::parallel_chunks(nt, canonical_chunks{count, 8}, [&](std::uint64_t e0, std::uint64_t e1) {
      for (std::size_t e = e0; e < e1; ++e) {
        const std::size_t i = at[e] / n, j = at[e] % n;
        T& cij = c[i * ldc + j];
        const T old = beta == T(0) ? T(0) : cij;
        T v;
        cij = element(i, j, old, v) ? v
                                    : core::gemm_exact_element_slow<T>(
                                          K, [&](std::size_t kk) { return geta(i, kk); },
                                          [&](std::size_t kk) { return getb(kk, j); }, alpha, beta, old);
      }
    });
    return count;
  }
  std::vector<T> sub(mu * nu, T(0));
  if (beta != T(0))
    for (std::size_t r = 0; r < mu; ++r)
      for (std::size_t q = 0; q < nu; ++q) sub[r * nu + q] = c[rows[r] * ldc + cols[q]];
  gemm_exact_run<T>(
      mu, nu, K, alpha, [&](std::size_t r, std::size_t kk) { return geta(rows[r], kk); },
      [&](std::size_t kk, std::size_t q) { return getb(kk, cols[q]); }, beta, sub.data(), nu, nt, kern);
  for (std::size_t r = 0; r < mu; ++r)
    for (std::size_t q = 0; q < nu; ++q)
      if (left[rows[r] * n + cols[q]]) c[rows[r] * ldc + cols[q]] = sub[r * nu + q];
  return count;
}

/// The exact tier for float C with the certified double filter (core/gemm_exact.hpp) first: a
/// fixed-order double GEMM of the widened operands, each element kept where its error interval
/// rounds to one float; the others are taken one by one (Dot2, then the exact accumulator) when
/// scattered, else by the integer path (gemm_exact_run) on the sub-problem of the rows and
/// columns that hold them, of which only they are stored. Every way gives the correctly rounded
/// exact value, so the bits are the integer path's alone. geta/getb read op(A) and op(B) as
/// floats (for the left elements); widen(ad, bd, sa, sb, threads) writes the widened operands
/// and the sums of squares of op(A)'s rows (sa) and op(B)'s columns (sb), both zeroed, and
/// returns their layout. Returns the number of elements the filter left.
template <class GetA, class GetB, class Widen>
std::size_t gemm_exact_filter_run(std::size_t m, std::size_t n, std::size_t K, float alpha, GetA geta, GetB getb,
                                  float beta, float* c, std::size_t ldc, int threads, isa simd,
                                  gemm_exact_kernel kern, Widen widen) {
  if (!gemm_exact_kernel_available(kern)) kern = gemm_exact_kernel::loops;
  if (m == 0 || n == 0) return 0;
  if (alpha == 0.0f || !gemm_exact_filter_applies(K)) {
    gemm_exact_run<float>(m, n, K, alpha, geta, getb, beta, c, ldc, threads, kern);
    return m * n;
  }
  const int nt = std::max(1, threads);
  // 1. The widened operands and the sums of squares.
  std::vector<double> ad_own, bd_own, p_own, sa(m, 0.0), sb(n, 0.0);
  std::vector<unsigned char> left_own;
  std::vector<double>& ad = gemm_exact_buffer<double, 2>(m * K, ad_own);
  std::vector<double>& bd = gemm_exact_buffer<double, 3>(K * n, bd_own);
  std::vector<double>& p = gemm_exact_buffer<double, 4>(m * n, p_own);
  std::vector<unsigned char>& left = gemm_exact_buffer<unsigned char, 5>(m * n, left_own);
  ad.resize(std::max(ad.size(), m * K));  // every element used is written before it is read
  bd.resize(std::max(bd.size(), K * n));
  p.resize(std::max(p.size(), m * n));
  left.assign(m * n, 0);
  const gemm_exact_widened lay = widen(ad.data(), bd.data(), sa.data(), sb.data(), nt);
  // 2. P = op(A) op(B) in double, fixed order (the bound is the canonical order's).
  const gemm_problem<double, double> pr{m,         n,       K,       1.0,     0.0, ad.data(), lay.a_rs,
                                        lay.a_ks, bd.data(), lay.b_ks, lay.b_cs, p.data(), n};
  with_arch(simd, [&](auto arch) { gemm_fixed_order_run<decltype(arch), double, double>(pr, nt); });
  // 3. Certify each element; mark the rest.
  const double gamma = core::gemm_exact_filter_gamma(K);
  for (std::size_t i = 0; i < m; ++i) sa[i] = gamma * core::gemm_exact_filter_norm(sa[i], K);
  for (std::size_t j = 0; j < n; ++j) sb[j] = core::gemm_exact_filter_norm(sb[j], K);
  const bool plain = alpha == 1.0f && beta == 0.0f;
  cpu::parallel_chunks(nt, canonical_chunks{m, 16}, [&](std::uint64_t i0, std::uint64_t i1) {
    const double* nb = sb.data();
    for (std::size_t i = i0; i < i1; ++i) {
      const double* pi = p.data() + i * n;
      const double ea = sa[i];
      float* ci = c + i * ldc;
      unsigned char* li = left.data() + i * n;
      if (plain) {  // every element written; the left ones are overwritten below (C_old unused)
        for (std::size_t j = 0; j < n; ++j) li[j] = !core::certified_float(pi[j], ea * nb[j], ci[j]);
        continue;
      }
      for (std::size_t j = 0; j < n; ++j) {
        float v;
        if (core::gemm_exact_filter_element(pi[j], ea * nb[j], alpha, beta, beta == 0.0f ? 0.0f : ci[j], v))
          ci[j] = v;
        else
          li[j] = 1;
      }
    }
  });
  // 4. What is left.
  return gemm_exact_filter_left<float>(m, n, K, alpha, geta, getb, beta, c, ldc, left.data(), nt, kern,
                                       [&](std::size_t i, std::size_t j, float old, float& v) {
                                         return core::gemm_exact_filter_dot2(
                                             K, [&](std::size_t kk) { return geta(i, kk); },
                                             [&](std::size_t kk) { return getb(kk, j); }, alpha, beta, old, v);
                                       });
}

/// The exact tier for double with the split filter (core/gemm_exact.hpp) first: op(A) cut into
/// A1 + A2 + A3 by rows and op(B) into B1 + B2 by columns, T = [A1; A2] B1 (exact: integers
/// below 2^53) and R = [A A3] [B2; B1] (depth 2K) as fixed-order double GEMMs, each element kept
/// where the radius of R's error around T1 + T2 + R rounds to one double; what is left goes to
/// gemm_exact_filter_left (Dot2 with TwoProduct, then the exact accumulator; or the integer
/// path). b_by_columns: op(B)'s columns are contiguous (a transposed B), so B is sliced a column
/// at a time. Returns the number of elements left.
template <class GetA, class GetB>
std::size_t gemm_exact_split_run(std::size_t m, std::size_t n, std::size_t K, double alpha, GetA geta, GetB getb,
                                 double beta, double* c, std::size_t ldc, int threads, isa simd,
                                 gemm_exact_kernel kern, bool b_by_columns) {
  if (!gemm_exact_kernel_available(kern)) kern = gemm_exact_kernel::loops;
  if (m == 0 || n == 0) return 0;
  if (alpha == 0.0 || K == 0 || K > core::gemm_exact_split_max_k) {
    gemm_exact_run<double>(m, n, K, alpha, geta, getb, beta, c, ldc, threads, kern);
    return m * n;
  }
  const int nt = std::max(1, threads);
  const core::gemm_exact_split_bits bits = core::gemm_exact_split_bits_for(K);
  const int sa = bits.sa, sb = bits.sb;
  const std::size_t K2 = 2 * K;
  constexpr int unfit = core::gemm_exact_split_unfit;
  constexpr double slack = 0x1p-900;  // per squared element: covers every square lost to underflow
  std::vector<double> x12_own, y1_own, acat_own, bcat_own, t12_own, r_own;
  std::vector<double>& x12 = gemm_exact_buffer<double, 6>(2 * m * K, x12_own);  // [X1; X2], 2m x K
  std::vector<double>& y1 = gemm_exact_buffer<double, 7>(K * n, y1_own);        // Y1, K x n
  std::vector<double>& acat = gemm_exact_buffer<double, 8>(m * K2, acat_own);   // [A A3], m x 2K
  std::vector<double>& bcat = gemm_exact_buffer<double, 9>(K2 * n, bcat_own);   // [B2; B1], 2K x n
  std::vector<double>& t12 = gemm_exact_buffer<double, 10>(2 * m * n, t12_own);
  std::vector<double>& r = gemm_exact_buffer<double, 11>(m * n, r_own);
  x12.resize(std::max(x12.size(), 2 * m * K));  // every element used is written before it is read
  y1.resize(std::max(y1.size(), K * n));
  acat.resize(std::max(acat.size(), m * K2));
  bcat.resize(std::max(bcat.size(), K2 * n));
  t12.resize(std::max(t12.size(), 2 * m * n));
  r.resize(std::max(r.size(), m * n));
  std::vector<int> ea(m), eb(n);
  std::vector<double> na(m), na3(m), nb1(n), nb2(n);  // norms in units of 2^ea_i, 2^eb_j
  auto norm = [&](double sumsq) { return core::gemm_exact_filter_norm(sumsq + slack * static_cast<double>(K), K); };
  // 1. op(A) by rows: exponent, slices, scaled norms. An unfit row is zeros (and all left).
  cpu::parallel_chunks(nt, canonical_chunks{m, 16}, [&](std::uint64_t i0, std::uint64_t i1) {
    for (std::size_t i = i0; i < i1; ++i) {
      double mx = 0.0;
      bool bad = false;
      for (std::size_t k = 0; k < K; ++k) {
        const double v = std::fabs(static_cast<double>(geta(i, k)));
        bad |= !(v <= std::numeric_limits<double>::max());
        mx = v > mx ? v : mx;
      }
      const int e = bad ? unfit : core::gemm_exact_split_exponent(mx);
      ea[i] = e;
      double* x1 = x12.data() + i * K;
      double* x2 = x12.data() + (m + i) * K;
      double* ac = acat.data() + i * K2;
      if (e == unfit) {
        std::fill(x1, x1 + K, 0.0);
        std::fill(x2, x2 + K, 0.0);
        std::fill(ac, ac + K2, 0.0);
        na[i] = na3[i] = 0.0;
        continue;
      }
      const double sig1 = 1.5 * std::ldexp(1.0, e - sa + 52), sig2 = 1.5 * std::ldexp(1.0, e - 2 * sa + 52);
      const double up1 = std::ldexp(1.0, sa - e), up2 = std::ldexp(1.0, 2 * sa - e), down = std::ldexp(1.0, -e);
      double s = 0.0, s3 = 0.0;
      for (std::size_t k = 0; k < K; ++k) {
        const double v = static_cast<double>(geta(i, k));
        const double a1 = core::gemm_exact_split_grid(v, sig1);
        const double r1 = v - a1;
        const double a2 = core::gemm_exact_split_grid(r1, sig2);
        const double a3 = r1 - a2;
        x1[k] = a1 * up1;
        x2[k] = a2 * up2;
        ac[k] = v;
        ac[K + k] = a3;
        const double vs = v * down, a3s = a3 * down;
        s += vs * vs;
        s3 += a3s * a3s;
      }
      na[i] = norm(s);
      na3[i] = norm(s3);
    }
  });
  // 2. op(B) by columns: exponent, then B1 (scaled to integers in Y1, as is in the bottom of
  // [B2; B1]) and B2, and their scaled norms.
  auto column_max = [&](std::size_t j0, std::size_t j1, double* mx, unsigned char* bad) {
    if (b_by_columns) {
      for (std::size_t j = j0; j < j1; ++j)
        for (std::size_t k = 0; k < K; ++k) {
          const double v = std::fabs(static_cast<double>(getb(k, j)));
          bad[j - j0] |= !(v <= std::numeric_limits<double>::max());
          mx[j - j0] = v > mx[j - j0] ? v : mx[j - j0];
        }
      return;
    }
    for (std::size_t k = 0; k < K; ++k)
      for (std::size_t j = j0; j < j1; ++j) {
        const double v = std::fabs(static_cast<double>(getb(k, j)));
        bad[j - j0] |= !(v <= std::numeric_limits<double>::max());
        mx[j - j0] = v > mx[j - j0] ? v : mx[j - j0];
      }
  };
  cpu::parallel_chunks(nt, canonical_chunks{n, 64}, [&](std::uint64_t j0, std::uint64_t j1) {
    const std::size_t w = j1 - j0;
    std::vector<double> mx(w, 0.0), sig(w), up(w), down(w), s1(w, 0.0), s2(w, 0.0);
    std::vector<unsigned char> bad(w, 0);
    column_max(j0, j1, mx.data(), bad.data());
    for (std::size_t q = 0; q < w; ++q) {
      const int e = bad[q] ? unfit : core::gemm_exact_split_exponent(mx[q]);
      eb[j0 + q] = e;
      // An unfit column is sliced as if e were 0 (its values are finite or not; zeros replace them).
      const int eu = e == unfit ? 0 : e;
      sig[q] = 1.5 * std::ldexp(1.0, eu - sb + 52);
      up[q] = e == unfit ? 0.0 : std::ldexp(1.0, sb - eu);
      down[q] = e == unfit ? 0.0 : std::ldexp(1.0, -eu);
    }
    auto one = [&](std::size_t k, std::size_t j) {
      const std::size_t q = j - j0;
      const double v = down[q] == 0.0 ? 0.0 : static_cast<double>(getb(k, j));
      const double b1 = core::gemm_exact_split_grid(v, sig[q]);
      const double b2 = v - b1;
      y1[k * n + j] = b1 * up[q];
      bcat[k * n + j] = b2;
      bcat[(K + k) * n + j] = b1;
      const double b1s = b1 * down[q], b2s = b2 * down[q];
      s1[q] += b1s * b1s;
      s2[q] += b2s * b2s;
    };
    if (b_by_columns) {
      for (std::size_t j = j0; j < j1; ++j)
        for (std::size_t k = 0; k < K; ++k) one(k, j);
    } else {
      for (std::size_t k = 0; k < K; ++k)
        for (std::size_t j = j0; j < j1; ++j) one(k, j);
    }
    for (std::size_t q = 0; q < w; ++q) {
      nb1[j0 + q] = norm(s1[q]);
      nb2[j0 + q] = norm(s2[q]);
    }
  });
  // 3. T = [X1; X2] Y1 (exact) and R = [A A3] [B2; B1], fixed order.
  const gemm_problem<double, double> pt{2 * m, n, K, 1.0, 0.0, x12.data(), K, 1, y1.data(), n, 1, t12.data(), n};
  const gemm_problem<double, double> prr{m, n, K2, 1.0, 0.0, acat.data(), K2, 1, bcat.data(), n, 1, r.data(), n};
  with_arch(simd, [&](auto arch) {
    gemm_fixed_order_run<decltype(arch), double, double>(pt, nt);
    gemm_fixed_order_run<decltype(arch), double, double>(prr, nt);
  });
  // 4. Certify each element; mark the rest. Scales: T1 = T[i][j] 2^(ea + eb - sa - sb), T2 =
  // T[m + i][j] 2^(ea + eb - 2 sa - sb) (exact: integers below 2^53 times at least 2^-850).
  const double gamma = core::gemm_exact_filter_gamma(K2) * (1.0 + 0x1p-48);
  const double abs_err = static_cast<double>(4 * K + 1024) * 0x1p-1074;
  std::vector<unsigned char> left_own;
  std::vector<unsigned char>& left = gemm_exact_buffer<unsigned char, 5>(m * n, left_own);
  left.assign(m * n, 0);
  std::vector<double> pb(n);
  for (std::size_t j = 0; j < n; ++j) pb[j] = eb[j] == unfit ? 0.0 : std::ldexp(1.0, eb[j]);
  const double s1 = std::ldexp(1.0, -(sa + sb)), s2 = std::ldexp(1.0, -(2 * sa + sb));
  const bool plain = alpha == 1.0 && beta == 0.0;
  cpu::parallel_chunks(nt, canonical_chunks{m, 16}, [&](std::uint64_t i0, std::uint64_t i1) {
    for (std::size_t i = i0; i < i1; ++i) {
      unsigned char* li = left.data() + i * n;
      double* ci = c + i * ldc;
      if (ea[i] == unfit) {
        std::fill(li, li + n, 1);
        continue;
      }
      const double pa = std::ldexp(1.0, ea[i]);
      const double* t1 = t12.data() + i * n;
      const double* t2 = t12.data() + (m + i) * n;
      const double* ri = r.data() + i * n;
      const double ga = gamma * na[i], ga3 = gamma * na3[i];
      for (std::size_t j = 0; j < n; ++j) {
        const double p = pa * pb[j];  // 0 for an unfit column: its radius is NaN below
        const double e =
            (ga * nb2[j] + ga3 * nb1[j]) * p + (p == 0.0 ? std::numeric_limits<double>::quiet_NaN() : abs_err);
        double v;
        const double t1s = t1[j] * p * s1, t2s = t2[j] * p * s2;
        const bool ok = plain ? core::gemm_exact_split_element(t1s, t2s, ri[j], e, 1.0, 0.0, 0.0, v)
                              : core::gemm_exact_split_element(t1s, t2s, ri[j], e, alpha, beta,
                                                               beta == 0.0 ? 0.0 : ci[j], v);
        li[j] = !ok;
        if (ok) ci[j] = v;
      }
    }
  });
  // 5. What is left.
  return gemm_exact_filter_left<double>(m, n, K, alpha, geta, getb, beta, c, ldc, left.data(), nt, kern,
                                        [&](std::size_t i, std::size_t j, double old, double& v) {
                                          return core::gemm_exact_split_dot2(
                                              K, [&](std::size_t kk) { return geta(i, kk); },
                                              [&](std::size_t kk) { return getb(kk, j); }, alpha, beta, old, v);
                                        });
}

/// Rows of op(A) the small-m path takes at most (decode shapes).
inline constexpr std::size_t gemm_exact_small_max_m = 4;

/// NC columns of op(B) for the decode lanes with B transposed: bj[c] (K floats, contiguous) against
/// the M rows of op(A) widened in ad (row stride K; each load serves the NC columns). tot[c][i] =
/// sum_k ad[i][k] bj[c][k] (products exact in double) and sq[c] = sum_k bj[c][k]^2, with at most
/// the canonical order's depth: per chunk of gemm_k_chunk k, L lanes along k (U batches of W; at
/// most 256 / L terms each, plus one of the chunk's tail), the halving tree over the lanes
/// (core::combine_lanes), the chunk sums folded in order. A term meets at most
/// min(chunk - 1, 256 / L + 1 + log2 L) + (chunks - 1) <= h roundings (adding a lane with no term
/// is exact), so the filter's bound holds; the lane count may differ per ISA because the
/// certified value does not depend on it. The scalar path runs 16 lanes in arrays.
template <class Arch, std::size_t M, std::size_t NC>
void gemm_exact_small_m_columns(const double* ad, std::size_t K, const float* const* bj, double (*tot)[M],
                                double* sq_out) {
  constexpr std::size_t KB = core::gemm_k_chunk;
  for (std::size_t c = 0; c < NC; ++c) {
    sq_out[c] = 0.0;
    for (std::size_t i = 0; i < M; ++i) tot[c][i] = 0.0;
  }
  if constexpr (std::is_same<Arch, scalar_arch>::value) {
    constexpr std::size_t L = 16;
    for (std::size_t c = 0; c < NC; ++c)
      for (std::size_t k0 = 0; k0 < K; k0 += KB) {
        const std::size_t kc = std::min(KB, K - k0);
        double acc[M][L] = {}, sq[L] = {};
        for (std::size_t kk = 0; kk < kc; ++kk) {
          const double bv = static_cast<double>(bj[c][k0 + kk]);
          sq[kk % L] += bv * bv;
          for (std::size_t i = 0; i < M; ++i) acc[i][kk % L] += ad[i * K + k0 + kk] * bv;
        }
        for (std::size_t i = 0; i < M; ++i) tot[c][i] += core::combine_lanes(acc[i]);
        sq_out[c] += core::combine_lanes(sq);
      }
  } else {
    using D = xsimd::batch<double, Arch>;
    constexpr std::size_t W = D::size, U = M * NC >= 4 ? 2 : 4, L = U * W;
    static_assert((L & (L - 1)) == 0 && L <= KB, "lanes: a power of two within a chunk");
    alignas(64) double lanes[L];
    for (std::size_t k0 = 0; k0 < K; k0 += KB) {
      const std::size_t kc = std::min(KB, K - k0), full = kc / L * L;
      D acc[NC][M][U], sq[NC][U];
      unroll<NC>([&](auto c) {
        unroll<U>([&](auto u) {
          sq[c][u] = D(0.0);
          unroll<M>([&](auto i) { acc[c][i][u] = D(0.0); });
        });
      });
      for (std::size_t kk = 0; kk < full; kk += L)
        unroll<U>([&](auto u) {
          D bv[NC];
          unroll<NC>([&](auto c) {
            bv[c] = load_f32_as_f64<Arch>(bj[c] + k0 + kk + u * W);
            sq[c][u] = sq[c][u] + bv[c] * bv[c];
          });
          unroll<M>([&](auto i) {
            const D av = D::load_unaligned(ad + i * K + k0 + kk + u * W);  // one load for NC columns
            unroll<NC>([&](auto c) { acc[c][i][u] = acc[c][i][u] + av * bv[c]; });
          });
        });
      for (std::size_t c = 0; c < NC; ++c) {
        for (std::size_t i = 0; i < M; ++i) {
          for (std::size_t u = 0; u < U; ++u) acc[c][i][u].store_aligned(lanes + u * W);
          for (std::size_t kk = full; kk < kc; ++kk)
            lanes[kk - full] += ad[i * K + k0 + kk] * static_cast<double>(bj[c][k0 + kk]);
          tot[c][i] += core::combine_lanes(lanes);
        }
        for (std::size_t u = 0; u < U; ++u) sq[c][u].store_aligned(lanes + u * W);
        for (std::size_t kk = full; kk < kc; ++kk)
          lanes[kk - full] += static_cast<double>(bj[c][k0 + kk]) * static_cast<double>(bj[c][k0 + kk]);
        sq_out[c] += core::combine_lanes(lanes);
      }
    }
  }
}

/// The exact tier for m <= gemm_exact_small_max_m (decode shapes), float C: the certified double
/// filter computed in vector lanes instead of by the double GEMM (which would widen all of B for
/// one row). Each element's products (exact in double) are summed with at most the canonical
/// order's depth (per chunk of gemm_k_chunk k a sum from +0, the chunk sums folded left to right),
/// so the filter's bound gamma_h ||a_i|| ||b_j|| holds; op(B)'s column sums of squares ride along,
/// shared by the m rows. All m rows take one pass over op(B): B streamed row by row with 64
/// columns in lanes, or, transposed, each column (a row of b) read once with lanes along k.
/// What the interval check leaves goes one by one through Dot2, then the exact accumulator.
/// Returns the number left.
template <class In>
std::size_t gemm_exact_small_m(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t K,
                                    float alpha, const In* a, std::size_t lda, const In* b, std::size_t ldb,
                                    float beta, float* c, std::size_t ldc, int threads, isa simd) {
  constexpr std::size_t JB = 64, KB = core::gemm_k_chunk, MM = gemm_exact_small_max_m;
  auto geta = [=](std::size_t i, std::size_t kk) {
    return core::widen(ta == transpose::no ? a[i * lda + kk] : a[kk * lda + i]);
  };
  auto getb = [=](std::size_t kk, std::size_t j) {
    return core::widen(tb == transpose::no ? b[kk * ldb + j] : b[j * ldb + kk]);
  };
  std::vector<unsigned char> left(m * n, 0);
  const double gamma = core::gemm_exact_filter_gamma(K);
  double ea[MM] = {};
  for (std::size_t i = 0; i < m; ++i) {
    double sq = 0.0;
    for (std::size_t kk = 0; kk < K; ++kk) {
      const double v = static_cast<double>(geta(i, kk));
      sq += v * v;
    }
    ea[i] = gamma * core::gemm_exact_filter_norm(sq, K);
  }
  // The end of the columns [j0, j0 + w) of row i from their sums and op(B)'s column squares.
  auto finish = [&](std::size_t i, std::size_t j0, std::size_t w, const double* total, const double* colsq) {
    for (std::size_t jj = 0; jj < w; ++jj) {
      float& cij = c[i * ldc + j0 + jj];
      float v;
      if (core::gemm_exact_filter_element(total[jj], ea[i] * core::gemm_exact_filter_norm(colsq[jj], K), alpha, beta,
                                          beta == 0.0f ? 0.0f : cij, v))
        cij = v;
      else
        left[i * n + j0 + jj] = 1;
    }
  };
  // Lanes += av * br[0 .. JB) (exact products, so the same as an FMA; a fixed count: vectorizes).
  auto lanes = [](double* sum, double av, const float* br) {
    for (std::size_t jj = 0; jj < JB; ++jj) sum[jj] += av * static_cast<double>(br[jj]);
  };
  auto squares = [](double* sq, const float* br) {
    for (std::size_t jj = 0; jj < JB; ++jj) sq[jj] += static_cast<double>(br[jj]) * static_cast<double>(br[jj]);
  };
  auto fold = [](double* total, double* chunk) {  // the chunk's sum into the total; the chunk restarts at +0
    for (std::size_t jj = 0; jj < JB; ++jj) {
      total[jj] += chunk[jj];
      chunk[jj] = 0.0;
    }
  };
  const int nt = std::max(1, threads);
  if (tb == transpose::no) {
    // op(B) rows contiguous: each thread streams its columns of every row once (k outer), with
    // the lanes of all its 64-column blocks kept (L2-sized: (2 m + 1) doubles per column).
    const std::size_t nblk = (n + JB - 1) / JB, nts = static_cast<std::size_t>(nt), per = (nblk + nts - 1) / nts;
    cpu::parallel_chunks(nt, canonical_chunks{n, per * JB}, [&](std::uint64_t j0, std::uint64_t j1) {
      const std::size_t w = j1 - j0, nbl = (w + JB - 1) / JB, stride = (2 * m + 1) * JB;
      std::vector<double> st(nbl * stride, 0.0);  // block: chunk sums (m x JB), totals (m x JB), squares (JB)
      alignas(64) float pad[JB] = {};
      for (std::size_t k = 0; k < K; ++k) {
        const In* brow = b + k * ldb + j0;
        for (std::size_t q = 0; q < nbl; ++q) {
          const std::size_t len = std::min(JB, w - q * JB);
          const float* br;
          if constexpr (std::is_same<In, float>::value) {
            br = brow + q * JB;
            if (len < JB) {
              for (std::size_t jj = 0; jj < len; ++jj) pad[jj] = br[jj];
              br = pad;
            }
          } else {
            for (std::size_t jj = 0; jj < len; ++jj) pad[jj] = core::widen(brow[q * JB + jj]);
            br = pad;
          }
          double* sq = st.data() + q * stride;
          for (std::size_t i = 0; i < m; ++i) lanes(sq + i * JB, static_cast<double>(geta(i, k)), br);
          squares(sq + 2 * m * JB, br);
        }
        if ((k + 1) % KB == 0 || k + 1 == K)
          for (std::size_t q = 0; q < nbl; ++q)
            for (std::size_t i = 0; i < m; ++i)
              fold(st.data() + q * stride + (m + i) * JB, st.data() + q * stride + i * JB);
      }
      for (std::size_t q = 0; q < nbl; ++q)
        for (std::size_t i = 0; i < m; ++i) {
          const double* sq = st.data() + q * stride;
          finish(i, j0 + q * JB, std::min(JB, w - q * JB), sq + (m + i) * JB, sq + 2 * m * JB);
        }
    });
  } else {
    // op(B) = B^T: column j of op(B) is a contiguous row of b, read once for the m rows of op(A)
    // (widened once) with lanes along k (gemm_exact_small_m_columns).
    std::vector<double> ad(m * K);
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t kk = 0; kk < K; ++kk) ad[i * K + kk] = static_cast<double>(geta(i, kk));
    auto columns = [&](auto arch, auto rows) {
      using Arch = decltype(arch);
      constexpr std::size_t M = decltype(rows)::value;
      constexpr std::size_t NC = M >= 2 ? 2 : 1;  // columns per pass: op(A)'s loads shared
      cpu::parallel_chunks(nt, canonical_chunks{n, JB}, [&](std::uint64_t j0, std::uint64_t j1) {
        double total[M][JB], colsq[JB];
        std::vector<float> rows(std::is_same<In, float>::value ? 0 : NC * K);
        auto column = [&](std::size_t j, std::size_t c) -> const float* {
          if constexpr (std::is_same<In, float>::value) {
            (void)c;
            return b + j * ldb;
          } else {
            for (std::size_t kk = 0; kk < K; ++kk) rows[c * K + kk] = core::widen(b[j * ldb + kk]);
            return rows.data() + c * K;
          }
        };
        std::size_t j = j0;
        for (; j + NC <= j1; j += NC) {
          const float* bj[NC];
          for (std::size_t c = 0; c < NC; ++c) bj[c] = column(j + c, c);
          double tot[NC][M], sq[NC];
          gemm_exact_small_m_columns<Arch, M, NC>(ad.data(), K, bj, tot, sq);
          for (std::size_t c = 0; c < NC; ++c) {
            for (std::size_t i = 0; i < M; ++i) total[i][j + c - j0] = tot[c][i];
            colsq[j + c - j0] = sq[c];
          }
        }
        for (; j < j1; ++j) {
          const float* bj[1] = {column(j, 0)};
          double tot[1][M], sq[1];
          gemm_exact_small_m_columns<Arch, M, 1>(ad.data(), K, bj, tot, sq);
          for (std::size_t i = 0; i < M; ++i) total[i][j - j0] = tot[0][i];
          colsq[j - j0] = sq[0];
        }
        for (std::size_t i = 0; i < M; ++i) finish(i, j0, j1 - j0, total[i], colsq);
      });
    };
    with_arch(simd, [&](auto arch) {
      switch (m) {
        case 1: columns(arch, std::integral_constant<std::size_t, 1>{}); break;
        case 2: columns(arch, std::integral_constant<std::size_t, 2>{}); break;
        case 3: columns(arch, std::integral_constant<std::size_t, 3>{}); break;
        default: columns(arch, std::integral_constant<std::size_t, 4>{}); break;
      }
    });
  }
  std::size_t count = 0;
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j)
      if (left[i * n + j]) {
        ++count;
        float& cij = c[i * ldc + j];
        const float old = beta == 0.0f ? 0.0f : cij;
        auto ai = [&](std::size_t kk) { return geta(i, kk); };
        auto bj = [&](std::size_t kk) { return getb(kk, j); };
        float v;
        cij = core::gemm_exact_filter_dot2(K, ai, bj, alpha, beta, old, v)
                  ? v
                  : core::gemm_exact_element_slow<float>(K, ai, bj, alpha, beta, old);
      }
  return count;
}

/// gemm_exact_filter_run on row-major or transposed float or bfloat16 arrays (the public entry).
template <class In>
std::size_t gemm_exact_filtered(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t K, float alpha,
                                const In* a, std::size_t lda, const In* b, std::size_t ldb, float beta, float* c,
                                std::size_t ldc, int threads, isa simd, gemm_exact_kernel kern) {
  auto geta = [=](std::size_t i, std::size_t kk) {
    return core::widen(ta == transpose::no ? a[i * lda + kk] : a[kk * lda + i]);
  };
  auto getb = [=](std::size_t kk, std::size_t j) {
    return core::widen(tb == transpose::no ? b[kk * ldb + j] : b[j * ldb + kk]);
  };
  if (m >= 1 && m <= gemm_exact_small_max_m && n >= 1 && alpha != 0.0f && gemm_exact_filter_applies(K))
    return gemm_exact_small_m<In>(ta, tb, m, n, K, alpha, a, lda, b, ldb, beta, c, ldc, threads, simd);
  return gemm_exact_filter_run(
      m, n, K, alpha, geta, getb, beta, c, ldc, threads, simd, kern,
      [&](double* ad, double* bd, double* sa, double* sb, int nt) {
        const bool a_rows = ta == transpose::no, b_rows = tb == transpose::yes;  // sums along stored rows?
        auto stored = [](const In* x, std::size_t ld) {
          return [=](std::size_t r, std::size_t q) { return core::widen(x[r * ld + q]); };
        };
        gemm_exact_filter_widen(stored(a, lda), a_rows ? m : K, a_rows ? K : m, ad, sa, a_rows, nt);
        gemm_exact_filter_widen(stored(b, ldb), b_rows ? n : K, b_rows ? K : n, bd, sb, b_rows, nt);
        return gemm_exact_widened{a_rows ? K : 1, a_rows ? 1 : m, b_rows ? 1 : n, b_rows ? K : 1};
      });
}

/// gemm_exact_split_run on row-major or transposed double arrays (the public entry for double).
inline std::size_t gemm_exact_split(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t K,
                                    double alpha, const double* a, std::size_t lda, const double* b, std::size_t ldb,
                                    double beta, double* c, std::size_t ldc, int threads, isa simd,
                                    gemm_exact_kernel kern) {
  auto run = [&](auto geta) {
    if (tb == transpose::no)
      return gemm_exact_split_run(m, n, K, alpha, geta, [=](std::size_t kk, std::size_t j) { return b[kk * ldb + j]; },
                                  beta, c, ldc, threads, simd, kern, false);
    return gemm_exact_split_run(m, n, K, alpha, geta, [=](std::size_t kk, std::size_t j) { return b[j * ldb + kk]; },
                                beta, c, ldc, threads, simd, kern, true);
  };
  if (ta == transpose::no) return run([=](std::size_t i, std::size_t kk) { return a[i * lda + kk]; });
  return run([=](std::size_t i, std::size_t kk) { return a[kk * lda + i]; });
}

/// gemm_exact_run with the certified double filter in front for float (the operands read through
/// getters: the convolution lowerings); other types take the integer path directly.
template <class T, class GetA, class GetB>
void gemm_exact_run_filtered(std::size_t m, std::size_t n, std::size_t K, T alpha, GetA geta, GetB getb, T beta, T* c,
                             std::size_t ldc, int threads, isa simd, gemm_exact_kernel kern) {
  if constexpr (std::is_same<T, float>::value) {
    gemm_exact_filter_run(m, n, K, alpha, geta, getb, beta, c, ldc, threads, simd, kern,
                          [&](double* ad, double* bd, double* sa, double* sb, int nt) {
                            gemm_exact_filter_widen(geta, m, K, ad, sa, true, nt);
                            gemm_exact_filter_widen(getb, K, n, bd, sb, false, nt);
                            return gemm_exact_widened{K, 1, n, 1};
                          });
  } else {
    gemm_exact_split_run(m, n, K, alpha, geta, getb, beta, c, ldc, threads, simd, kern, false);
  }
}

/// Runs the exact tier with an explicit integer kernel (tests and benchmarks reach every kernel
/// this way; results never depend on it).
template <class T>
void gemm_exact_with_kernel(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, T alpha,
                            const T* a, std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc,
                            int threads, gemm_exact_kernel kern) {
  if (!gemm_exact_kernel_available(kern)) kern = gemm_exact_kernel::loops;
  auto run_b = [&](auto geta) {
    if (tb == transpose::no)
      gemm_exact_run<T>(m, n, k, alpha, geta, [=](std::size_t kk, std::size_t j) { return b[kk * ldb + j]; }, beta,
                        c, ldc, threads, kern);
    else
      gemm_exact_run<T>(m, n, k, alpha, geta, [=](std::size_t kk, std::size_t j) { return b[j * ldb + kk]; }, beta,
                        c, ldc, threads, kern);
  };
  if (ta == transpose::no)
    run_b([=](std::size_t i, std::size_t kk) { return a[i * lda + kk]; });
  else
    run_b([=](std::size_t i, std::size_t kk) { return a[kk * lda + i]; });
}

/// The exact tier (arguments validated by the caller; row-major; ld = row stride).
template <class T>
void gemm_exact(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
                std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc, int threads, isa simd) {
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value, "gemm_exact: float or double");
  const isa s = resolve_isa(simd);
  if constexpr (std::is_same<T, float>::value)
    gemm_exact_filtered<float>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, resolve_threads(threads), s,
                               gemm_exact_kernel_for(s));
  else
    gemm_exact_split(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, resolve_threads(threads), s,
                     gemm_exact_kernel_for(s));
}

/// bfloat16 inputs, widened exactly to float; float alpha, beta and C.
inline void gemm_exact_bf16_with_kernel(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k,
                                        float alpha, const bfloat16* a, std::size_t lda, const bfloat16* b,
                                        std::size_t ldb, float beta, float* c, std::size_t ldc, int threads,
                                        gemm_exact_kernel kern) {
  if (!gemm_exact_kernel_available(kern)) kern = gemm_exact_kernel::loops;
  auto ga = [=](std::size_t i, std::size_t kk) {
    return (ta == transpose::no ? a[i * lda + kk] : a[kk * lda + i]).to_float();
  };
  auto gb = [=](std::size_t kk, std::size_t j) {
    return (tb == transpose::no ? b[kk * ldb + j] : b[j * ldb + kk]).to_float();
  };
  gemm_exact_run<float>(m, n, k, alpha, ga, gb, beta, c, ldc, threads, kern);
}

inline void gemm_exact(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, float alpha,
                       const bfloat16* a, std::size_t lda, const bfloat16* b, std::size_t ldb, float beta, float* c,
                       std::size_t ldc, int threads, isa simd) {
  const isa s = resolve_isa(simd);
  gemm_exact_filtered<bfloat16>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, resolve_threads(threads), s,
                                gemm_exact_kernel_for(s));
}

}  // namespace detail
}  // namespace cpu
}  // namespace bitexact
