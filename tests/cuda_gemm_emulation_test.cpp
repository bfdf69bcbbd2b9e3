// tests/cuda_gemm_emulation_test.cpp - the CUDA GEMM kernels (cuda/gemm_kernels.hpp), run by the
// CPU emulation of blocks, barriers and shared memory (cuda/gemm_emulation.hpp), must give:
//   fixed_order  the canonical K order of core/gemm_order.hpp bit for bit (the oracle is
//                reference::gemm_fixed_order, three loops over the core order), for
//                several tiles, split-K counts, grids and block orders, sizes 0, 1, primes,
//                K = 255/256/257/513, every transpose and padded leading dimensions;
//   exact        the rule of core/gemm_exact.hpp (alpha == 1: round(S + beta C_old), else
//                round(alpha round(S) + beta C_old)) against an independent oracle: data of the
//                form integer * 2^e, summed exactly in __int128 and rounded by hand here; and
//                bit for bit the CPU exact tier (cpu/gemm_exact.hpp: integer slices, another
//                decomposition) on data with wide exponent ranges and special values.
// Nothing here runs on a GPU; device compilation is tests/cuda_gemm_launcher_test.cu.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "bitexact/cpu/gemm_exact.hpp"
#include "bitexact/cuda/gemm_emulation.hpp"
#include "bitexact/reference/gemm.hpp"

namespace {

using namespace bitexact;
using cuda::block_order;
using cuda::gemm_launch;

template <class T>
std::uint64_t bits_of(T a) {
  std::uint64_t b = 0;
  std::memcpy(&b, &a, sizeof a);
  return b;
}

template <class In>
In make(double d) {
  if constexpr (std::is_same<In, bfloat16>::value)
    return bfloat16::from_float(static_cast<float>(d));
  else
    return static_cast<In>(d);
}

template <class In>
double as_double(In x) {
  return static_cast<double>(core::widen(x));
}

/// A row-major stored matrix of rows x cols with row stride ld >= cols (padding holds NaN
/// garbage, which a kernel must never read).
template <class In>
struct stored {
  std::size_t rows, cols, ld;
  std::vector<In> v;
};

template <class In>
stored<In> random_matrix(std::size_t rows, std::size_t cols, std::size_t pad, std::uint64_t seed, int emax = 10) {
  stored<In> s{rows, cols, cols + pad, {}};
  s.v.assign(rows == 0 ? 1 : rows * s.ld, make<In>(std::numeric_limits<double>::quiet_NaN()));
  std::mt19937_64 g(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::uniform_int_distribution<int> e(-emax, emax);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < cols; ++c) s.v[r * s.ld + c] = make<In>(std::ldexp(u(g), e(g)));
  return s;
}

/// The specification: reference/gemm.hpp (three loops over the core order).
template <class T, class In>
void oracle_fixed(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const In* a,
                  std::size_t lda, const In* b, std::size_t ldb, T beta, T* c, std::size_t ldc) {
  reference::gemm_fixed_order<T, In>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

struct shape3 {
  std::size_t m, n, k;
};

std::string describe(const shape3& s, transpose ta, transpose tb, const gemm_launch& l, block_order o,
                     const char* tile) {
  return std::string(tile) + " m=" + std::to_string(s.m) + " n=" + std::to_string(s.n) + " k=" + std::to_string(s.k) +
         " ta=" + std::to_string(int(ta)) + " tb=" + std::to_string(int(tb)) + " grid=" + std::to_string(l.grid) +
         " splits=" + std::to_string(l.splits) + " block=" + std::to_string(l.block) +
         " order=" + std::to_string(int(o));
}

/// One case: emulated kernels vs the oracle (fixed_order) for the given tile and launches.
template <class Tile, class T, class In>
void check_fixed(const shape3& s, transpose ta, transpose tb, T alpha, T beta, std::uint64_t seed, const char* tile,
                 const std::vector<gemm_launch>& launches) {
  const bool tA = ta == transpose::yes, tB = tb == transpose::yes;
  const stored<In> a = random_matrix<In>(tA ? s.k : s.m, tA ? s.m : s.k, 3, seed);
  const stored<In> b = random_matrix<In>(tB ? s.n : s.k, tB ? s.k : s.n, 1, seed + 1);
  const stored<T> c0 = random_matrix<T>(s.m, s.n, 2, seed + 2);
  std::vector<T> want = c0.v;
  oracle_fixed<T, In>(ta, tb, s.m, s.n, s.k, alpha, a.v.data(), a.ld, b.v.data(), b.ld, beta, want.data(), c0.ld);
  int run = 0;
  for (const gemm_launch& l : launches) {
    const block_order o = static_cast<block_order>(run++ % 3);
    std::vector<T> got = c0.v;
    cuda::emulated_gemm<Tile>(ta, tb, s.m, s.n, s.k, alpha, a.v.data(), a.ld, b.v.data(), b.ld, beta, got.data(), c0.ld,
                              tier::fixed_order, l, o);
    for (std::size_t i = 0; i < got.size(); ++i)
      if (bits_of(got[i]) != bits_of(want[i])) {
        ADD_FAILURE() << describe(s, ta, tb, l, o, tile) << ": element " << i << std::hexfloat << " want " << want[i]
                      << " got " << got[i];
        return;
      }
  }
}

const std::vector<shape3>& fixed_shapes() {
  static const std::vector<shape3> s = {{0, 5, 7},  {5, 0, 7},   {3, 4, 0},    {1, 1, 1},    {1, 1, 255},
                                        {2, 3, 256}, {7, 13, 257}, {17, 5, 513}, {66, 31, 300}, {3, 70, 600}};
  return s;
}

std::vector<gemm_launch> fixed_launches() {
  // auto (8 SMs), no split, 2 and 3 splits (clamped to the chunk count), a single block, 3 blocks
  return {{0, 0, 0}, {0, 1, 0}, {0, 2, 64}, {0, 3, 32}, {1, 0, 0}, {3, 2, 96}, {2, 5, 0}};
}

template <class Tile, class T, class In>
void fixed_sweep(const char* tile, std::uint64_t seed) {
  for (const shape3& s : fixed_shapes())
    for (transpose ta : {transpose::no, transpose::yes})
      for (transpose tb : {transpose::no, transpose::yes})
        check_fixed<Tile, T, In>(s, ta, tb, T(1), T(0), seed++, tile, fixed_launches());
}

using tile_small = cuda::gemm_tile<16, 32, 32, 2, 4>;   // 64 threads
using tile_thin = cuda::gemm_tile<32, 16, 4, 4, 1>;     // 32 threads, K tiles of 4
using tile_chunk = cuda::gemm_tile<8, 8, 256, 1, 1>;    // 64 threads, one K tile per chunk
using tile_square = cuda::gemm_tile<32, 32, 8, 2, 2>;   // 256 threads

TEST(CudaGemmEmulation, FixedOrderFloatTiles) {
  fixed_sweep<cuda::default_gemm_tile_for<float>::type, float, float>("128x128x8/8x8", 90);
  fixed_sweep<cuda::default_gemm_tile, float, float>("64x64x16/4x4", 100);
  fixed_sweep<tile_small, float, float>("16x32x32/2x4", 200);
  fixed_sweep<tile_thin, float, float>("32x16x4/4x1", 300);
  fixed_sweep<tile_chunk, float, float>("8x8x256/1x1", 400);
  fixed_sweep<tile_square, float, float>("32x32x8/2x2", 500);
}

TEST(CudaGemmEmulation, FixedOrderDouble) {
  fixed_sweep<cuda::default_gemm_tile, double, double>("default", 600);
  fixed_sweep<tile_thin, double, double>("32x16x4/4x1", 700);
}

TEST(CudaGemmEmulation, FixedOrderBfloat16) {
  fixed_sweep<cuda::default_gemm_tile_for<float>::type, float, bfloat16>("128x128x8/8x8", 800);
  fixed_sweep<tile_small, float, bfloat16>("16x32x32/2x4", 900);
}

// alpha and beta: rounded multiply, fused beta * C_old; alpha == 0 and beta == 0 read nothing
// (NaN in A/B resp. C must not show).
TEST(CudaGemmEmulation, FixedOrderAlphaBeta) {
  const shape3 s{19, 23, 700};
  for (double al : {1.0, -0.75, 3.0}) {
    for (double be : {0.0, 1.0, -2.5}) {
      check_fixed<cuda::default_gemm_tile, float, float>(s, transpose::no, transpose::yes, float(al), float(be), 42, "default",
                                                         fixed_launches());
      check_fixed<tile_thin, double, double>(s, transpose::yes, transpose::no, al, be, 43, "thin", fixed_launches());
    }
  }
  // alpha == 0: A and B are NaN garbage and not read; C = fma(beta, C_old, +0).
  std::vector<float> a(40, std::numeric_limits<float>::quiet_NaN()), c(12, 1.5f), want(12, 1.5f);
  for (float& w : want) w = core::gemm_epilogue(0.0f, 0.0f, 2.0f, w);
  cuda::emulated_gemm(transpose::no, transpose::no, 3, 4, 10, 0.0f, a.data(), 10, a.data(), 4, 2.0f, c.data(), 4,
                      tier::fixed_order);
  for (std::size_t i = 0; i < c.size(); ++i) EXPECT_EQ(bits_of(c[i]), bits_of(want[i])) << i;
  // beta == 0: C's NaN garbage is overwritten.
  std::vector<float> ones(300, 1.0f), c2(4, std::numeric_limits<float>::quiet_NaN());
  cuda::emulated_gemm(transpose::no, transpose::no, 2, 2, 150, 1.0f, ones.data(), 150, ones.data(), 2, 0.0f, c2.data(),
                      2, tier::exact, gemm_launch{0, 2, 0});
  for (float v : c2) EXPECT_EQ(v, 150.0f);
}

// Special values: Inf * 0, Inf - Inf and NaN inputs give the canonical NaN; -0 products sum to +0.
TEST(CudaGemmEmulation, FixedOrderSpecialValues) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  // Row i of A times column j of B (k = 300, two chunks).
  const std::size_t k = 300;
  std::vector<float> a(4 * k, 1.0f), b(k * 4, 0.5f);
  a[0 * k + 5] = inf;                      // row 0: Inf * 0.5 ...
  a[1 * k + 260] = inf;                    // row 1: Inf in chunk 1 ...
  b[260 * 4 + 1] = 0.0f;                   //   ... times 0 in column 1: NaN
  for (std::size_t kk = 0; kk < 5; ++kk) {
    a[2 * k + 7 + kk] = -std::ldexp(1.0f, 127);   // row 2: -Inf by overflow in chunk 0
    a[2 * k + 270 + kk] = std::ldexp(1.0f, 127);  //   and +Inf in chunk 1: Inf - Inf
  }
  for (std::size_t kk = 0; kk < k; ++kk) a[3 * k + kk] = -0.0f;  // row 3: -0 products
  b[3 * 4 + 2] = nan;                                             // column 2: NaN (payload irrelevant)
  for (int mode = 0; mode < 2; ++mode) {
    std::vector<float> want(16, 7.0f), got(16, 7.0f);
    oracle_fixed<float, float>(transpose::no, transpose::no, 4, 4, k, 1.0f, a.data(), k, b.data(), 4, 0.0f, want.data(), 4);
    cuda::emulated_gemm<tile_thin>(transpose::no, transpose::no, 4, 4, k, 1.0f, a.data(), k, b.data(), 4, 0.0f,
                                   got.data(), 4, tier::fixed_order, gemm_launch{0, mode == 0 ? 1u : 2u, 0});
    for (int i = 0; i < 16; ++i) EXPECT_EQ(bits_of(got[i]), bits_of(want[i])) << "mode " << mode << " element " << i;
    EXPECT_EQ(bits_of(got[0 * 4 + 0]), 0x7f800000u);  // +Inf
    EXPECT_EQ(bits_of(got[1 * 4 + 1]), 0x7fc00000u);  // Inf * 0: canonical NaN
    EXPECT_EQ(bits_of(got[2 * 4 + 0]), 0x7fc00000u);  // -Inf + Inf
    EXPECT_EQ(bits_of(got[0 * 4 + 2]), 0x7fc00000u);  // NaN input
    EXPECT_EQ(bits_of(got[3 * 4 + 3]), 0u);           // -0 products: +0
  }
}

// The data must be able to tell orders apart: a plain single chain over all of K (no chunks)
// differs from the canonical order somewhere, so the bit-for-bit checks above have teeth.
TEST(CudaGemmEmulation, DataIsOrderSensitive) {
  const std::size_t m = 16, n = 16, k = 700;
  const stored<float> a = random_matrix<float>(m, k, 0, 5), b = random_matrix<float>(k, n, 0, 6);
  std::vector<float> want(m * n);
  oracle_fixed<float, float>(transpose::no, transpose::no, m, n, k, 1.0f, a.v.data(), k, b.v.data(), n, 0.0f, want.data(), n);
  int differ = 0;
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      float p = 0.0f;
      for (std::size_t kk = 0; kk < k; ++kk) p = std::fmaf(a.v[i * k + kk], b.v[kk * n + j], p);
      differ += bits_of(p) != bits_of(want[i * n + j]);
    }
  EXPECT_GT(differ, 0);
}

// --- exact tier ------------------------------------------------------------------------------

/// value * 2^24 is an integer for the exact-test data (|e| <= 12, 12-bit integers).
std::int64_t scaled24(double v) { return static_cast<std::int64_t>(std::ldexp(v, 24)); }

/// Correct rounding (nearest even) of v * 2^-scale to T, written independently of core/exact.hpp.
template <class T>
T round_scaled(__int128 v, int scale) {
  if (v == 0) return T(0);
  const bool neg = v < 0;
  unsigned __int128 u = neg ? static_cast<unsigned __int128>(-v) : static_cast<unsigned __int128>(v);
  int msb = 127;
  while (!((u >> msb) & 1)) --msb;
  constexpr int P = std::numeric_limits<T>::digits;
  T r;
  if (msb < P) {
    r = std::ldexp(static_cast<T>(static_cast<std::uint64_t>(u)), -scale);
  } else {
    const int shift = msb - P + 1;
    std::uint64_t mant = static_cast<std::uint64_t>(u >> shift);
    const unsigned __int128 rem = u & ((static_cast<unsigned __int128>(1) << shift) - 1);
    const unsigned __int128 half = static_cast<unsigned __int128>(1) << (shift - 1);
    if (rem > half || (rem == half && (mant & 1))) ++mant;
    r = std::ldexp(static_cast<T>(mant), shift - scale);
  }
  return neg ? -r : r;
}

/// Non-zero integers of `bits` bits times 2^e, |e| <= 12: exact sums fit __int128 at scale 2^-48.
template <class In>
stored<In> integer_matrix(std::size_t rows, std::size_t cols, std::size_t pad, std::uint64_t seed, int bits) {
  stored<In> s{rows, cols, cols + pad, {}};
  s.v.assign(rows == 0 ? 1 : rows * s.ld, make<In>(std::numeric_limits<double>::quiet_NaN()));
  std::mt19937_64 g(seed);
  std::uniform_int_distribution<std::int64_t> mag(1, (std::int64_t(1) << bits) - 1);
  std::uniform_int_distribution<int> e(-12, 12), sign(0, 1);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < cols; ++c)
      s.v[r * s.ld + c] = make<In>(std::ldexp(static_cast<double>(sign(g) ? -mag(g) : mag(g)), e(g)));
  return s;
}

/// x * 2^scale as an exact integer (x must be a multiple of 2^-scale).
__int128 to_scaled(double x, int scale) {
  if (x == 0) return 0;
  int e = 0;
  const double f = std::frexp(x, &e);                     // x = f * 2^e, |f| in [0.5, 1)
  const auto mant = static_cast<std::int64_t>(std::ldexp(f, 53));  // x = mant * 2^(e - 53)
  const int shift = e - 53 + scale;
  if (shift >= 0) return static_cast<__int128>(mant) * (static_cast<__int128>(1) << shift);
  const std::int64_t q = mant / (std::int64_t(1) << -shift);
  EXPECT_EQ(static_cast<__int128>(q) * (std::int64_t(1) << -shift), static_cast<__int128>(mant)) << "not on the grid";
  return q;
}

/// The exact tier's value by the rule of core/gemm_exact.hpp, from the exact sum S = s48 * 2^-48
/// (alpha = ma * 2^ea with ea >= -8; beta * C_old exact in double for the test data).
template <class T>
T exact_rule(__int128 s48, T alpha, T beta, T c_old) {
  constexpr int scale = 56;
  const __int128 bc = beta == T(0) ? 0 : to_scaled(static_cast<double>(beta) * static_cast<double>(c_old), scale);
  if (alpha == T(1)) return round_scaled<T>(s48 * 256 + bc, scale);
  const T sr = round_scaled<T>(s48, 48);
  int ea = 0;
  const double fa = std::frexp(static_cast<double>(alpha), &ea);
  const auto ma = static_cast<std::int64_t>(std::ldexp(fa, 8));  // alpha = ma * 2^(ea - 8), exactly for the test's alphas
  EXPECT_EQ(std::ldexp(static_cast<double>(ma), ea - 8), static_cast<double>(alpha));
  return round_scaled<T>(to_scaled(static_cast<double>(sr), scale + ea - 8) * ma + bc, scale);
}

template <class T, class In>
void check_exact(const shape3& s, transpose ta, transpose tb, T alpha, T beta, std::uint64_t seed, int bits) {
  const bool tA = ta == transpose::yes, tB = tb == transpose::yes;
  const stored<In> a = integer_matrix<In>(tA ? s.k : s.m, tA ? s.m : s.k, 2, seed, bits);
  const stored<In> b = integer_matrix<In>(tB ? s.n : s.k, tB ? s.k : s.n, 5, seed + 1, bits);
  const stored<T> c0 = integer_matrix<T>(s.m, s.n, 1, seed + 2, 12);
  const cuda::gemm_operand<In> A{a.v.data(), a.ld, tA}, B{b.v.data(), b.ld, tB};
  std::vector<T> want = c0.v;
  for (std::size_t i = 0; i < s.m; ++i)
    for (std::size_t j = 0; j < s.n; ++j) {
      __int128 sum = 0;
      for (std::size_t kk = 0; kk < s.k; ++kk)
        sum += static_cast<__int128>(scaled24(as_double(A.at(i, kk)))) * scaled24(as_double(B.at(kk, j)));
      T& w = want[i * c0.ld + j];
      w = exact_rule<T>(sum, alpha, beta, w);
    }
  for (const gemm_launch& l : {gemm_launch{0, 0, 0}, gemm_launch{0, 1, 32}, gemm_launch{3, 2, 64}, gemm_launch{1, 3, 0},
                               gemm_launch{0, 7, 96}}) {
    std::vector<T> got = c0.v;
    cuda::emulated_gemm(ta, tb, s.m, s.n, s.k, alpha, a.v.data(), a.ld, b.v.data(), b.ld, beta, got.data(), c0.ld,
                        tier::exact, l, block_order::shuffled, 2);
    for (std::size_t i = 0; i < got.size(); ++i)
      if (bits_of(got[i]) != bits_of(want[i])) {
        ADD_FAILURE() << describe(s, ta, tb, l, block_order::shuffled, "exact") << ": element " << i << std::hexfloat
                      << " want " << want[i] << " got " << got[i];
        return;
      }
  }
}

TEST(CudaGemmEmulation, ExactAgainstIntegerOracle) {
  std::uint64_t seed = 1000;
  for (const shape3& s : {shape3{0, 3, 4}, shape3{1, 1, 1}, shape3{3, 5, 255}, shape3{5, 3, 257}, shape3{4, 4, 513},
                          shape3{9, 2, 1000}})
    for (transpose ta : {transpose::no, transpose::yes})
      for (transpose tb : {transpose::no, transpose::yes}) {
        check_exact<float, float>(s, ta, tb, 1.0f, 0.0f, seed++, 12);
        check_exact<double, double>(s, ta, tb, 1.0, 0.0, seed++, 12);
        check_exact<float, bfloat16>(s, ta, tb, 1.0f, 0.0f, seed++, 8);
      }
  // The rule for other alpha/beta (core/gemm_exact.hpp): one rounding of S + beta C_old when
  // alpha == 1, else of alpha round(S) + beta C_old; k == 0 is the empty sum.
  check_exact<float, float>({7, 6, 600}, transpose::no, transpose::yes, 1.0f, 0.5f, 76, 12);
  check_exact<float, float>({7, 6, 600}, transpose::no, transpose::yes, -1.25f, 0.5f, 77, 12);
  check_exact<double, double>({6, 7, 600}, transpose::yes, transpose::no, 3.0, -2.0, 78, 12);
  check_exact<double, double>({6, 7, 300}, transpose::no, transpose::no, 1.0, -2.0, 79, 12);
  check_exact<float, bfloat16>({5, 9, 0}, transpose::no, transpose::no, 1.0f, 0.5f, 80, 8);
  check_exact<double, double>({5, 9, 0}, transpose::no, transpose::yes, 0.75, 3.0, 81, 12);
}

// The exact tier is not the fixed order on this data (so the oracle comparison has teeth), and
// cancellation that the fixed order loses is recovered.
TEST(CudaGemmEmulation, ExactDiffersFromFixedOrderAndCancels) {
  const std::size_t k = 600;
  std::vector<float> a(k), b(k, 1.0f);
  for (std::size_t i = 0; i < k; ++i) a[i] = (i % 3 == 0) ? 1e8f : (i % 3 == 1 ? 1.0f : -1e8f);
  float fixed = 0, exact = 0;
  cuda::emulated_gemm(transpose::no, transpose::no, 1, 1, k, 1.0f, a.data(), k, b.data(), 1, 0.0f, &fixed, 1,
                      tier::fixed_order);
  cuda::emulated_gemm(transpose::no, transpose::no, 1, 1, k, 1.0f, a.data(), k, b.data(), 1, 0.0f, &exact, 1,
                      tier::exact, gemm_launch{0, 3, 0});
  EXPECT_EQ(exact, 200.0f);
  EXPECT_NE(fixed, exact);
}

TEST(CudaGemmEmulation, ExactSpecialValues) {
  const float inf = std::numeric_limits<float>::infinity(), big = std::ldexp(1.0f, 127);
  const std::size_t k = 3;
  // rows: Inf*0 -> NaN; Inf + -Inf -> NaN; -0 products only -> -0; big*big - big*big -> 0 exactly
  std::vector<float> a = {inf, 1, 1, inf, -inf, 1, -0.0f, -0.0f, 0.0f, big, big, 1};
  std::vector<float> b = {0, 1, 1};  // column: k x 1
  std::vector<float> b2 = {1, 1, 0};
  std::vector<float> c(4, 9.0f);
  cuda::emulated_gemm(transpose::no, transpose::no, 1, 1, k, 1.0f, a.data(), k, b.data(), 1, 0.0f, &c[0], 1, tier::exact);
  cuda::emulated_gemm(transpose::no, transpose::no, 1, 1, k, 1.0f, a.data() + 3, k, b2.data(), 1, 0.0f, &c[1], 1,
                      tier::exact);
  const std::vector<float> bpos = {1, 1, 1};
  cuda::emulated_gemm(transpose::no, transpose::no, 1, 1, k, 1.0f, a.data() + 6, k, bpos.data(), 1, 0.0f, &c[2], 1,
                      tier::exact);
  const std::vector<float> bbig = {big, -big, 0.25f};
  cuda::emulated_gemm(transpose::no, transpose::no, 1, 1, k, 1.0f, a.data() + 9, k, bbig.data(), 1, 0.0f, &c[3], 1,
                      tier::exact, gemm_launch{0, 1, 0});
  EXPECT_EQ(bits_of(c[0]), 0x7fc00000u);
  EXPECT_EQ(bits_of(c[1]), 0x7fc00000u);
  // -0 * 1, -0 * 1, +0 * 1: not all -0 -> +0
  EXPECT_EQ(bits_of(c[2]), 0u);
  EXPECT_EQ(c[3], 0.25f);  // 2^254 - 2^254 + 0.25: exact despite products far beyond FLT_MAX
  const std::vector<float> negz = {-0.0f, -0.0f};
  const std::vector<float> posv = {1, 2};
  float z = 5;
  cuda::emulated_gemm(transpose::no, transpose::no, 1, 1, 2, 1.0f, negz.data(), 2, posv.data(), 1, 0.0f, &z, 1, tier::exact);
  EXPECT_EQ(bits_of(z), 0x80000000u);  // only -0 products: -0 (the exact accumulator's rule)
}

// The CPU exact tier (cpu/gemm_exact.hpp: rows and columns as integer slices under a shared
// exponent, int8 digit products) computes the same value by another decomposition: the
// emulated CUDA exact tier must equal it bit for bit, on wide exponent ranges, with every rule
// of alpha and beta (0, 1, other), k = 0, and rows with NaN, Inf and -0 (the CPU's fallback).
template <class T, class In>
void check_against_cpu_exact(const shape3& s, transpose ta, transpose tb, T alpha, T beta, std::uint64_t seed, int emax,
                             bool specials) {
  const bool tA = ta == transpose::yes, tB = tb == transpose::yes;
  stored<In> a = random_matrix<In>(tA ? s.k : s.m, tA ? s.m : s.k, 1, seed, emax);
  const stored<In> b = random_matrix<In>(tB ? s.n : s.k, tB ? s.k : s.n, 2, seed + 1, emax);
  const stored<T> c0 = random_matrix<T>(s.m, s.n, 3, seed + 2);
  if (specials && s.m >= 3 && s.k >= 2) {  // row 0: an Inf; row 1: a NaN; row 2: all -0
    const cuda::gemm_operand<In> A{a.v.data(), a.ld, tA};
    auto at = [&](std::size_t i, std::size_t kk) -> In& { return a.v[tA ? kk * a.ld + i : i * a.ld + kk]; };
    (void)A;
    at(0, 1) = make<In>(std::numeric_limits<double>::infinity());
    at(1, 0) = make<In>(std::numeric_limits<double>::quiet_NaN());
    for (std::size_t kk = 0; kk < s.k; ++kk) at(2, kk) = make<In>(-0.0);
  }
  std::vector<T> want = c0.v;
  cpu::detail::gemm_exact(ta, tb, s.m, s.n, s.k, alpha, a.v.data(), a.ld, b.v.data(), b.ld, beta, want.data(), c0.ld, 1,
                          isa::automatic);
  for (const gemm_launch& l : {gemm_launch{0, 1, 0}, gemm_launch{0, 3, 64}}) {
    std::vector<T> got = c0.v;
    cuda::emulated_gemm(ta, tb, s.m, s.n, s.k, alpha, a.v.data(), a.ld, b.v.data(), b.ld, beta, got.data(), c0.ld,
                        tier::exact, l);
    for (std::size_t i = 0; i < got.size(); ++i)
      if (bits_of(got[i]) != bits_of(want[i])) {
        ADD_FAILURE() << describe(s, ta, tb, l, block_order::shuffled, "exact vs CPU") << " alpha " << alpha << " beta "
                      << beta << ": element " << i << std::hexfloat << " CPU " << want[i] << " CUDA-emu " << got[i];
        return;
      }
  }
}

TEST(CudaGemmEmulation, ExactEqualsCpuExactTier) {
  std::uint64_t seed = 5000;
  for (const shape3& s : {shape3{3, 4, 0}, shape3{4, 3, 1}, shape3{5, 7, 257}, shape3{6, 5, 600}})
    for (double al : {1.0, 0.0, -1.5})
      for (double be : {0.0, 1.0, 0.3}) {
        check_against_cpu_exact<float, float>(s, transpose::no, transpose::yes, float(al), float(be), seed++, 30, true);
        check_against_cpu_exact<double, double>(s, transpose::yes, transpose::no, al, be, seed++, 200, true);
        check_against_cpu_exact<float, bfloat16>(s, transpose::yes, transpose::yes, float(al), float(be), seed++, 20, false);
      }
}

// --- argument checks ------------------------------------------------------------------------

TEST(CudaGemmEmulation, BadArgumentsLeaveCUntouched) {
  std::vector<float> a(64, 1.0f), b(64, 1.0f), c(64, 3.0f);
  const auto untouched = [&] {
    for (float v : c) ASSERT_EQ(v, 3.0f);
  };
  for (tier t : {tier::fixed_order, tier::exact}) {
    // lda < k (no transpose) and lda < m (transpose)
    EXPECT_THROW(cuda::emulated_gemm(transpose::no, transpose::no, 4, 4, 4, 1.0f, a.data(), 3, b.data(), 4, 0.0f, c.data(), 4, t),
                 std::invalid_argument);
    EXPECT_THROW(cuda::emulated_gemm(transpose::yes, transpose::no, 5, 4, 4, 1.0f, a.data(), 4, b.data(), 4, 0.0f, c.data(), 5, t),
                 std::invalid_argument);
    EXPECT_THROW(cuda::emulated_gemm(transpose::no, transpose::yes, 4, 4, 5, 1.0f, a.data(), 5, b.data(), 4, 0.0f, c.data(), 4, t),
                 std::invalid_argument);
    EXPECT_THROW(cuda::emulated_gemm(transpose::no, transpose::no, 4, 5, 4, 1.0f, a.data(), 4, b.data(), 5, 0.0f, c.data(), 4, t),
                 std::invalid_argument);
    // null pointers with a non-zero count
    EXPECT_THROW(cuda::emulated_gemm(transpose::no, transpose::no, 4, 4, 4, 1.0f, static_cast<const float*>(nullptr), 4, b.data(), 4,
                                     0.0f, c.data(), 4, t),
                 std::invalid_argument);
    EXPECT_THROW(cuda::emulated_gemm(transpose::no, transpose::no, 4, 4, 4, 1.0f, a.data(), 4, b.data(), 4, 0.0f,
                                     static_cast<float*>(nullptr), 4, t),
                 std::invalid_argument);
    // C overlapping A or B
    EXPECT_THROW(cuda::emulated_gemm(transpose::no, transpose::no, 4, 4, 4, 1.0f, c.data() + 8, 4, b.data(), 4, 0.0f, c.data(), 4, t),
                 std::invalid_argument);
    EXPECT_THROW(cuda::emulated_gemm(transpose::no, transpose::no, 4, 4, 4, 1.0f, a.data(), 4, c.data() + 15, 4, 0.0f, c.data(), 4, t),
                 std::invalid_argument);
    untouched();
    // empty shapes accept null pointers and write nothing
    EXPECT_NO_THROW(cuda::emulated_gemm(transpose::no, transpose::no, 0, 4, 4, 1.0f, static_cast<const float*>(nullptr), 4,
                                        b.data(), 4, 0.0f, static_cast<float*>(nullptr), 4, t));
    // ld below the row length of an empty matrix is accepted, as on the CPU (m = 0: A and C empty)
    EXPECT_NO_THROW(cuda::emulated_gemm(transpose::no, transpose::no, 0, 4, 4, 1.0f, a.data(), 0, b.data(), 4, 0.0f,
                                        c.data(), 0, t));
    // an unknown tier
    EXPECT_THROW(cuda::emulated_gemm(transpose::no, transpose::no, 4, 4, 4, 1.0f, a.data(), 4, b.data(), 4, 0.0f, c.data(), 4,
                                     static_cast<tier>(7)),
                 std::invalid_argument);
    untouched();
  }
}

// The automatic split-K plan splits small m x n over whole chunks, and not large ones.
TEST(CudaGemmEmulation, PlanSplitsSmallProblems) {
  using cuda::default_gemm_tile;
  const auto small = cuda::gemm_detail::make_plan<float, default_gemm_tile>(1, 64, 4096, tier::fixed_order, 0, 132);
  EXPECT_EQ(small.chunks, 16u);
  EXPECT_EQ(small.splits, 16u);
  const auto large = cuda::gemm_detail::make_plan<float, default_gemm_tile>(4096, 4096, 4096, tier::fixed_order, 0, 132);
  EXPECT_EQ(large.splits, 1u);
  const auto clamp = cuda::gemm_detail::make_plan<double, default_gemm_tile>(8, 8, 300, tier::fixed_order, 9, 132);
  EXPECT_EQ(clamp.splits, 2u);
  EXPECT_EQ(cuda::gemm_detail::workspace_bytes<double>(clamp, tier::fixed_order), 2u * 8 * 8 * sizeof(double));
}

}  // namespace
