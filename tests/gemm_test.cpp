// gemm_test: gemm's fixed_order tier against reference/gemm.hpp, bit for bit, over the
// invariance matrix (ISAs x threads that really split x transposes x shapes around the K chunk x
// unaligned pointers x padded strides), sub-matrix (batch) invariance, the alpha/beta and
// special-value rules, batched/gemv/linear helpers against their documented gemm equivalents,
// every bad input (C untouched), FTZ/DAZ, and golden hashes pinned to gemm_order_version.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <bitexact/bitexact.hpp>
#include <bitexact/reference/gemm.hpp>

#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

#include "random_test_util.hpp"

using namespace bitexact;
using bitexact_test::fnv1a64;

namespace {

// ---------------------------------------------------------------- helpers

/// Test data from the library's own generator (Philox normal), scaled; the same on every platform.
template <class T>
std::vector<T> data(std::size_t n, std::uint64_t seed) {
  std::vector<double> d(n);
  const auto s = stream<philox4x32_10>::from_seed(seed, 0, 0, tag_of("gemm_test"));
  if (n > 0) generate_normal(s, 0, d.data(), n);
  std::vector<T> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    if constexpr (std::is_same<T, bfloat16>::value)
      v[i] = bfloat16::from_float(static_cast<float>(d[i]));
    else
      v[i] = static_cast<T>(d[i]);
  }
  return v;
}

template <class T>
using out_t = typename std::conditional<std::is_same<T, bfloat16>::value, float, T>::type;

template <class T>
void call_gemm(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, out_t<T> alpha, const T* a,
               std::size_t lda, const T* b, std::size_t ldb, out_t<T> beta, out_t<T>* c, std::size_t ldc,
               execution ex) {
  if constexpr (std::is_same<T, bfloat16>::value)
    gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, tier::fixed_order, ex);
  else
    gemm<T>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, tier::fixed_order, ex);
}

struct shape {
  std::size_t m, n, k;
};

/// One configuration: reference vs the fast path, unaligned (offset one element) with padded
/// strides; C's padding must stay untouched.
template <class T>
void check_one(const shape& s, transpose ta, transpose tb, out_t<T> alpha, out_t<T> beta, execution ex,
               std::uint64_t seed, std::size_t pad = 3, std::size_t off = 1) {
  using C = out_t<T>;
  const bool an = ta == transpose::no, bn = tb == transpose::no;
  const std::size_t ar = an ? s.m : s.k, ac = an ? s.k : s.m, br = bn ? s.k : s.n, bc = bn ? s.n : s.k;
  const std::size_t lda = ac + pad, ldb = bc + pad + 1, ldc = s.n + pad;
  const std::vector<T> a = data<T>(ar * lda + off, seed), b = data<T>(br * ldb + off, seed + 1);
  const std::vector<C> c0 = data<C>(s.m * ldc + off + pad, seed + 2);
  std::vector<C> want = c0, got = c0;
  reference::gemm_fixed_order<C, T>(ta, tb, s.m, s.n, s.k, alpha, a.data() + off, lda, b.data() + off, ldb, beta,
                                    want.data() + off, ldc);
  call_gemm<T>(ta, tb, s.m, s.n, s.k, alpha, a.data() + off, lda, b.data() + off, ldb, beta, got.data() + off, ldc, ex);
  ASSERT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(C)))
      << "m=" << s.m << " n=" << s.n << " k=" << s.k << " ta=" << int(ta) << " tb=" << int(tb) << " alpha=" << alpha
      << " beta=" << beta << " isa=" << isa_name(ex.simd) << " threads=" << ex.threads;
}

const std::vector<shape>& matrix_shapes() {
  static const std::vector<shape> v = {
      {0, 5, 7},     {5, 0, 7},     {5, 7, 0},    {1, 1, 1},     {1, 37, 255},  {13, 1, 256}, {17, 33, 257},
      {3, 70, 513},  {31, 29, 512}, {40, 67, 1},  {2, 3, 1100},  {150, 5, 97},  {5, 150, 97}, {71, 131, 300},
      {1, 300, 600}, {16, 41, 260}, {29, 2, 1030}};
  return v;
}

template <class T>
void invariance_matrix() {
  std::uint64_t seed = 100;
  for (isa i : usable_isas())
    for (int threads : {1, 2, 3, 4, 7, 8})
      for (int t = 0; t < 4; ++t)
        for (const shape& s : matrix_shapes()) {
          const transpose ta = (t & 1) ? transpose::yes : transpose::no, tb = (t & 2) ? transpose::yes : transpose::no;
          const out_t<T> beta = (seed % 3 == 0) ? out_t<T>(0) : out_t<T>(0.75);
          check_one<T>(s, ta, tb, out_t<T>(1.25), beta, execution{threads, i}, ++seed);
        }
}

TEST(GemmMatrix, Float) { invariance_matrix<float>(); }
TEST(GemmMatrix, Double) { invariance_matrix<double>(); }
TEST(GemmMatrix, Bfloat16) { invariance_matrix<bfloat16>(); }

/// Larger products: several cache blocks (MC, NC) and chunks, on the widest ISA and scalar.
TEST(GemmMatrix, CacheBlocks) {
  for (isa i : {isa::scalar, best_isa()})
    for (int threads : {1, 3, 8}) {
      // m above the AVX-512 MC (560 float, 280 double rows), n above NC, k over several chunks
      check_one<float>({570, 2100, 600}, transpose::no, transpose::no, 1.0f, 0.0f, {threads, i}, 7);
      check_one<double>({290, 1100, 520}, transpose::yes, transpose::yes, -2.0, 0.5, {threads, i}, 8);
      check_one<bfloat16>({190, 700, 300}, transpose::no, transpose::yes, 1.0f, 1.0f, {threads, i}, 9);
    }
}

/// The thread counts of the matrix really cut the work: blocks of C, or whole K chunks.
TEST(GemmMatrix, ThreadsReallySplit) {
  cpu::detail::with_arch(best_isa(), [](auto arch) {
    using A = decltype(arch);
    for (int t : {2, 3, 4, 7, 8}) {
      const auto p = cpu::detail::gemm_plan_for<A, float>(71, 131, 300, t);  // in the matrix
      EXPECT_FALSE(p.split_k);
      EXPECT_GE(p.parts, 2u) << t;
      const auto q = cpu::detail::gemm_plan_for<A, float>(2, 3, 1100, t);  // small C, long K
      EXPECT_TRUE(q.split_k);
      EXPECT_EQ(q.parts, std::min<std::size_t>(t, 5)) << t;
      const auto r = cpu::detail::gemm_plan_for<A, float>(570, 2100, 600, t);  // CacheBlocks
      EXPECT_EQ(r.parts, static_cast<std::size_t>(t));
    }
  });
}

// ---------------------------------------------------------------- batch invariance

template <class T>
void sub_matrix_invariance() {
  const std::size_t m = 37, n = 45, k = 700;
  const std::vector<T> a = data<T>(m * k, 1), b = data<T>(k * n, 2);
  std::vector<T> full(m * n);
  gemm<T>(transpose::no, transpose::no, m, n, k, T(1), a.data(), k, b.data(), n, T(0), full.data(), n,
          tier::fixed_order, {8});
  for (isa i : usable_isas()) {
    for (std::size_t r : {std::size_t(0), std::size_t(19), m - 1}) {  // a row alone
      std::vector<T> row(n);
      gemm<T>(transpose::no, transpose::no, 1, n, k, T(1), a.data() + r * k, k, b.data(), n, T(0), row.data(), n,
              tier::fixed_order, {1, i});
      EXPECT_EQ(0, std::memcmp(row.data(), full.data() + r * n, n * sizeof(T))) << "row " << r;
    }
    for (std::size_t col : {std::size_t(0), std::size_t(33), n - 1}) {  // a column alone
      std::vector<T> cc(m);
      gemm<T>(transpose::no, transpose::no, m, 1, k, T(1), a.data(), k, b.data() + col, n, T(0), cc.data(), 1,
              tier::fixed_order, {3, i});
      for (std::size_t r = 0; r < m; ++r) EXPECT_EQ(0, std::memcmp(&cc[r], &full[r * n + col], sizeof(T)));
    }
    // A block alone: rows [5, 22), columns [7, 40), written into the middle of a larger C.
    std::vector<T> blk(17 * 33);
    gemm<T>(transpose::no, transpose::no, 17, 33, k, T(1), a.data() + 5 * k, k, b.data() + 7, n, T(0), blk.data(),
            33, tier::fixed_order, {2, i});
    for (std::size_t r = 0; r < 17; ++r)
      EXPECT_EQ(0, std::memcmp(&blk[r * 33], &full[(r + 5) * n + 7], 33 * sizeof(T))) << r;
  }
}
TEST(GemmInvariance, SubMatrixFloat) { sub_matrix_invariance<float>(); }
TEST(GemmInvariance, SubMatrixDouble) { sub_matrix_invariance<double>(); }

/// bfloat16 inputs equal the float path on the widened values.
TEST(GemmInvariance, Bfloat16IsWidenedFloat) {
  const std::size_t m = 23, n = 50, k = 300;
  const std::vector<bfloat16> a = data<bfloat16>(m * k, 3), b = data<bfloat16>(k * n, 4);
  std::vector<float> af(a.size()), bf(b.size()), c1(m * n), c2(m * n);
  for (std::size_t i = 0; i < a.size(); ++i) af[i] = a[i].to_float();
  for (std::size_t i = 0; i < b.size(); ++i) bf[i] = b[i].to_float();
  gemm(transpose::no, transpose::yes, m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f, c1.data(), n);
  gemm<float>(transpose::no, transpose::yes, m, n, k, 1.0f, af.data(), k, bf.data(), k, 0.0f, c2.data(), n);
  EXPECT_EQ(c1, c2);
}

// ---------------------------------------------------------------- alpha, beta, special values

template <class T>
std::uint64_t bits_of(T v) {
  if constexpr (sizeof(T) == 4) {
    std::uint32_t u;
    std::memcpy(&u, &v, 4);
    return u;
  } else {
    std::uint64_t u;
    std::memcpy(&u, &v, 8);
    return u;
  }
}

template <class T>
void special_values() {
  const T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
  const std::uint64_t cnan = sizeof(T) == 4 ? 0x7fc00000u : 0x7ff8000000000000ull;
  for (isa i : usable_isas()) {
    const execution ex{2, i};
    // Row 0 of A holds NaN/Inf; B holds a -NaN payload and a 0 for Inf * 0.
    const std::size_t m = 4, n = 34, k = 300;
    std::vector<T> a(m * k, T(1)), b(k * n, T(0.5));
    a[0] = inf;                          // row 0: Inf * 0.5 = Inf ... and Inf * 0 below
    b[0 * n + 1] = T(0);                 // column 1: Inf * 0 = NaN in row 0
    a[1 * k + 7] = -nan;                 // row 1: NaN with a sign (payload must not leak)
    for (std::size_t kk = 0; kk < k; ++kk) a[2 * k + kk] = -T(0);  // row 2: all products -0
    std::vector<T> c(m * n, T(3)), want = c;
    reference::gemm_fixed_order<T, T>(transpose::no, transpose::no, m, n, k, T(1), a.data(), k, b.data(), n, T(0),
                                      want.data(), n);
    gemm<T>(transpose::no, transpose::no, m, n, k, T(1), a.data(), k, b.data(), n, T(0), c.data(), n,
            tier::fixed_order, ex);
    EXPECT_EQ(0, std::memcmp(c.data(), want.data(), c.size() * sizeof(T)));
    EXPECT_EQ(bits_of(c[0]), bits_of(inf));
    EXPECT_EQ(bits_of(c[1]), cnan);           // Inf * 0
    EXPECT_EQ(bits_of(c[1 * n + 5]), cnan);   // -NaN in: canonical NaN out
    EXPECT_EQ(bits_of(c[2 * n + 3]), 0u);     // sum of -0 products is +0
    // beta == 0: C_old (NaN) is not read; alpha == 0: A and B (NaN) are not read.
    std::vector<T> cn(m * n, nan);
    gemm<T>(transpose::no, transpose::no, 1, n, k, T(1), a.data() + 3 * k, k, b.data(), n, T(0), cn.data(), n,
            tier::fixed_order, ex);  // row 3 of A only: finite
    for (std::size_t j = 0; j < n; ++j) EXPECT_EQ(cn[j], cn[j]);
    std::vector<T> an(m * k, nan), cz(m * n, T(2));
    gemm<T>(transpose::no, transpose::no, m, n, k, T(0), an.data(), k, b.data(), n, T(-0.5), cz.data(), n,
            tier::fixed_order, ex);
    for (T v : cz) EXPECT_EQ(v, T(-1));
    // alpha == 0 and beta == 0: +0 everywhere, also over NaN.
    gemm<T>(transpose::no, transpose::no, m, n, k, T(0), an.data(), k, b.data(), n, T(0), cn.data(), n,
            tier::fixed_order, ex);
    for (T v : cn) EXPECT_EQ(bits_of(v), 0u);
    // k == 0: S = +0; alpha = -1 makes t = -0; beta == 0: C = -0.
    std::vector<T> ck(m * n, T(5));
    gemm<T>(transpose::no, transpose::no, m, n, 0, T(-1), a.data(), k, b.data(), n, T(0), ck.data(), n,
            tier::fixed_order, ex);
    for (T v : ck) EXPECT_EQ(bits_of(v), bits_of(-T(0)));
  }
  // alpha, beta: the epilogue formula, over several values, on every ISA.
  for (isa i : usable_isas())
    for (T alpha : {T(1), T(-1.5), T(3)})
      for (T beta : {T(0), T(1), T(-0.25)})
        check_one<T>({9, 70, 600}, transpose::no, transpose::no, alpha, beta, {2, i}, 77);
}
TEST(GemmSpecial, Float) { special_values<float>(); }
TEST(GemmSpecial, Double) { special_values<double>(); }

// ---------------------------------------------------------------- batched, gemv, linear

TEST(GemmHelpers, BatchedEqualsEachGemm) {
  const std::size_t m = 19, n = 40, k = 270, batch = 5, sa = m * k + 3, sb = k * n + 1, sc = m * n + 2;
  const std::vector<float> a = data<float>(sa * batch, 11), b = data<float>(sb * batch, 12);
  std::vector<float> c = data<float>(sc * batch, 13), want = c;
  for (std::size_t q = 0; q < batch; ++q)
    reference::gemm_fixed_order<float, float>(transpose::no, transpose::yes, m, n, k, 1.0f, a.data() + q * sa, k,
                                              b.data() + q * sb, k, 0.5f, want.data() + q * sc, n);
  for (int threads : {1, 2, 7}) {
    std::vector<float> got = c;
    gemm_batched<float>(transpose::no, transpose::yes, m, n, k, 1.0f, a.data(), k, sa, b.data(), k, sb, 0.5f,
                        got.data(), n, sc, batch, tier::fixed_order, {threads});
    EXPECT_EQ(got, want) << threads;
  }
  // bf16 batched with a broadcast B (stride 0).
  const std::vector<bfloat16> ah = data<bfloat16>(sa * batch, 14), bh = data<bfloat16>(sb, 15);
  std::vector<float> ch(sc * batch, 0.0f), wh = ch;
  for (std::size_t q = 0; q < batch; ++q)
    reference::gemm_fixed_order<float, bfloat16>(transpose::no, transpose::no, m, n, k, 1.0f, ah.data() + q * sa, k,
                                                 bh.data(), n, 0.0f, wh.data() + q * sc, n);
  gemm_batched(transpose::no, transpose::no, m, n, k, 1.0f, ah.data(), k, sa, bh.data(), n, 0, 0.0f, ch.data(), n,
               sc, batch, tier::fixed_order, {3});
  EXPECT_EQ(ch, wh);
}

TEST(GemmHelpers, GemvEqualsGemm) {
  const std::size_t m = 300, n = 517, lda = 520;
  const std::vector<double> a = data<double>(m * lda, 21), x = data<double>(std::max(m, n), 22);
  for (int threads : {1, 3}) {
    std::vector<double> y(m, 1.0), want(m, 1.0);
    gemv<double>(transpose::no, m, n, 2.0, a.data(), lda, x.data(), 0.5, y.data(), tier::fixed_order, {threads});
    reference::gemm_fixed_order<double, double>(transpose::no, transpose::no, m, 1, n, 2.0, a.data(), lda, x.data(),
                                                1, 0.5, want.data(), 1);  // x as a column
    EXPECT_EQ(y, want);
    std::vector<double> yt(n, 1.0), wt(n, 1.0);
    gemv<double>(transpose::yes, m, n, 2.0, a.data(), lda, x.data(), 0.5, yt.data(), tier::fixed_order, {threads});
    reference::gemm_fixed_order<double, double>(transpose::no, transpose::no, 1, n, m, 2.0, x.data(), m, a.data(),
                                                lda, 0.5, wt.data(), n);
    EXPECT_EQ(yt, wt);
  }
}

TEST(GemmHelpers, LinearLayer) {
  const std::size_t batch = 37, in = 300, out = 45;
  const std::vector<float> x = data<float>(batch * in, 31), w = data<float>(out * in, 32), bias = data<float>(out, 33),
                           dy = data<float>(batch * out, 34);
  // forward: y = x W^T + b, = gemm(no, yes, ..., beta = 1) over y preset to b
  std::vector<float> y(batch * out), want(batch * out);
  for (std::size_t i = 0; i < batch; ++i)
    for (std::size_t j = 0; j < out; ++j) want[i * out + j] = bias[j];
  reference::gemm_fixed_order<float, float>(transpose::no, transpose::yes, batch, out, in, 1.0f, x.data(), in,
                                            w.data(), in, 1.0f, want.data(), out);
  linear_forward<float>(batch, in, out, x.data(), w.data(), bias.data(), y.data(), tier::fixed_order, {2});
  EXPECT_EQ(y, want);
  // and it is S + b[j] rounded once
  std::vector<float> s(batch * out);
  linear_forward<float>(batch, in, out, x.data(), w.data(), nullptr, s.data());
  for (std::size_t i = 0; i < batch * out; ++i) EXPECT_EQ(y[i], s[i] + bias[i % out]);
  // backward data: dX = dY W
  std::vector<float> dx(batch * in), wdx(batch * in);
  reference::gemm_fixed_order<float, float>(transpose::no, transpose::no, batch, in, out, 1.0f, dy.data(), out,
                                            w.data(), in, 0.0f, wdx.data(), in);
  linear_backward_data<float>(batch, in, out, dy.data(), w.data(), dx.data(), tier::fixed_order, {3});
  EXPECT_EQ(dx, wdx);
  // backward weight: dW = dY^T X
  std::vector<float> dw(out * in), wdw(out * in);
  reference::gemm_fixed_order<float, float>(transpose::yes, transpose::no, out, in, batch, 1.0f, dy.data(), out,
                                            x.data(), in, 0.0f, wdw.data(), in);
  linear_backward_weight<float>(batch, in, out, dy.data(), x.data(), dw.data(), tier::fixed_order, {4});
  EXPECT_EQ(dw, wdw);
  // backward bias: column sums of dY in 256-row chunks (each a chain from +0), folded in order
  const std::size_t big = 600;
  const std::vector<float> dyb = data<float>(big * out, 35);
  std::vector<float> db(out), wdb(out);
  for (std::size_t j = 0; j < out; ++j) {
    float total = 0.0f;
    for (std::size_t c0 = 0; c0 < big; c0 += 256) {
      float p = 0.0f;
      for (std::size_t r = c0; r < std::min(big, c0 + 256); ++r) p = p + dyb[r * out + j];
      total = c0 == 0 ? p : total + p;
    }
    wdb[j] = total;
  }
  linear_backward_bias<float>(big, out, dyb.data(), db.data(), tier::fixed_order, {2});
  EXPECT_EQ(db, wdb);
}

// ---------------------------------------------------------------- bad input

TEST(GemmErrors, BadInputLeavesCUntouched) {
  const std::size_t m = 8, n = 9, k = 10;
  std::vector<float> a(m * k, 1.0f), b(k * n, 1.0f), c(m * n, 7.0f);
  const std::vector<float> c0 = c;
  auto bad = [&](auto&& f) {
    EXPECT_THROW(f(), std::invalid_argument);
    EXPECT_EQ(c, c0);
  };
  const auto N = transpose::no, Y = transpose::yes;
  bad([&] { gemm<float>(N, N, m, n, k, 1.f, a.data(), k - 1, b.data(), n, 0.f, c.data(), n); });     // lda < k
  bad([&] { gemm<float>(Y, N, m, n, k, 1.f, a.data(), m - 1, b.data(), n, 0.f, c.data(), n); });     // lda < m
  bad([&] { gemm<float>(N, N, m, n, k, 1.f, a.data(), k, b.data(), n - 1, 0.f, c.data(), n); });     // ldb < n
  bad([&] { gemm<float>(N, Y, m, n, k, 1.f, a.data(), k, b.data(), k - 1, 0.f, c.data(), n); });     // ldb < k
  bad([&] { gemm<float>(N, N, m, n, k, 1.f, a.data(), k, b.data(), n, 0.f, c.data(), n - 1); });     // ldc < n
  bad([&] { gemm<float>(N, N, m, n, k, 1.f, nullptr, k, b.data(), n, 0.f, c.data(), n); });          // null A
  bad([&] { gemm<float>(N, N, m, n, k, 1.f, a.data(), k, nullptr, n, 0.f, c.data(), n); });          // null B
  bad([&] { gemm<float>(N, N, m, n, k, 0.f, nullptr, k, b.data(), n, 0.f, c.data(), n); });          // even alpha 0
  bad([&] { gemm<float>(N, N, m, n, k, 1.f, c.data() + 3, k, b.data(), n, 0.f, c.data(), n); });     // C overlaps A
  bad([&] { gemm<float>(N, N, m, n, k, 1.f, a.data(), k, c.data() + 70, n, 0.f, c.data(), n); });    // C overlaps B
  bad([&] { gemm<float>(N, N, m, n, k, 1.f, a.data(), k, b.data(), n, 0.f, nullptr, n); });          // null C
  bad([&] {  // two batch entries writing the same C
    gemm_batched<float>(N, N, 2, 2, 2, 1.f, a.data(), 2, 4, b.data(), 2, 4, 0.f, c.data(), 2, 3, 2);
  });
  bad([&] { gemv<float>(N, m, n, 1.f, a.data(), n - 1, b.data(), 0.f, c.data()); });  // lda < n
  bad([&] {  // linear: bias overlapping y
    linear_forward<float>(2, 3, 4, a.data(), b.data(), c.data() + 1, c.data());
  });
  std::vector<bfloat16> ah(m * k), bh(k * n);
  bad([&] { gemm(N, N, m, n, k, 1.f, ah.data(), k, bh.data(), n - 2, 0.f, c.data(), n); });
  // Empty products accept null pointers and touch nothing.
  EXPECT_NO_THROW(gemm<float>(N, N, 0, 0, 0, 1.f, nullptr, 0, nullptr, 0, 0.f, nullptr, 0));
  EXPECT_NO_THROW(gemm<float>(N, N, m, n, 0, 1.f, nullptr, 0, nullptr, n, 1.f, c.data(), n));
  EXPECT_EQ(c, c0);  // k == 0, beta == 1: C = fma(1, C, 0) = C
  // Batched with k == 0: null A and B with nonzero strides are never offset (fuzz_gemm found
  // the null-pointer arithmetic under UBSan); each C is only scaled by beta.
  for (int threads : {1, 2}) {
    std::vector<float> cb = {1.f, 2.f, 3.f, 4.f, 5.f, 6.f};
    EXPECT_NO_THROW(gemm_batched<float>(N, N, 1, 2, 0, 1.f, nullptr, 1, 7, nullptr, 2, 9, 0.5f, cb.data(), 2, 2, 3,
                                        tier::fixed_order, execution{threads}));
    EXPECT_EQ(cb, (std::vector<float>{0.5f, 1.f, 1.5f, 2.f, 2.5f, 3.f}));
  }
}

#if defined(__SSE2__)
TEST(GemmErrors, FlushToZeroIsRefused) {
  std::vector<float> a(4, 1.0f), b(4, 1.0f), c(4, 7.0f);
  const unsigned old = _mm_getcsr();
  for (unsigned bit : {0x8000u, 0x0040u}) {
    _mm_setcsr(old | bit);
    bool threw = false;
    try {
      gemm<float>(transpose::no, transpose::no, 2, 2, 2, 1.f, a.data(), 2, b.data(), 2, 0.f, c.data(), 2);
    } catch (const fp_environment_error&) {
      threw = true;
    }
    _mm_setcsr(old);
    EXPECT_TRUE(threw) << std::hex << bit;
    EXPECT_EQ(c, std::vector<float>(4, 7.0f));
  }
}
#endif

// ---------------------------------------------------------------- few rows, streamed B (gemv branch)
// gemv and decode shapes stream B once: m <= 16 with op(B) = B^T takes cpu::detail::gemm_ntstream
// on AVX-512 (W outputs per vector, B blocks transposed in registers), op(B) = B takes
// gemm_rowstream. Both against the reference bit for bit: every ISA (the others keep the blocked
// path), threads that really split the outputs (n above the split-K threshold: asserted), n and
// k off the vector width and the chunk, unaligned pointers, padded strides, alpha/beta variants,
// and special values inside the chains.

/// As check_one, with optional specials sprinkled into A and B (Inf, NaN, -0, huge values that
/// overflow a chunk) and a row of B of zeros against negative A (a chain of -0 products).
/// T is the input type (float, double, or bfloat16 with float C).
template <class T>
void check_stream(const shape& s, transpose ta, transpose tb, out_t<T> alpha, out_t<T> beta, execution ex,
                  std::uint64_t seed, bool specials) {
  using C = out_t<T>;
  auto in = [](C v) {
    if constexpr (std::is_same<T, bfloat16>::value)
      return bfloat16::from_float(v);
    else
      return v;
  };
  const bool an = ta == transpose::no, bn = tb == transpose::no;
  const std::size_t ar = an ? s.m : s.k, ac = an ? s.k : s.m, br = bn ? s.k : s.n, bc = bn ? s.n : s.k;
  const std::size_t pad = 5, off = 1;
  const std::size_t lda = ac + pad, ldb = bc + pad + 2, ldc = s.n + pad;
  std::vector<T> a = data<T>(ar * lda + off, seed), b = data<T>(br * ldb + off, seed + 1);
  if (specials) {
    const T inf = in(std::numeric_limits<C>::infinity()), nan = in(std::numeric_limits<C>::quiet_NaN());
    T biggest;  // the largest finite value of T (bfloat16: 0x7f7f)
    if constexpr (std::is_same<T, bfloat16>::value)
      biggest = bfloat16::from_bits(0x7f7f);
    else
      biggest = std::numeric_limits<T>::max();
    for (std::size_t q = off; q < a.size(); q += 89) a[q] = in(-C(0));
    for (std::size_t q = off + 3; q < b.size(); q += 997) b[q] = inf;
    for (std::size_t q = off + 5; q < b.size(); q += 1733) b[q] = nan;
    for (std::size_t q = off + 7; q < b.size(); q += 1291) b[q] = biggest;
    // output column 2 (when it exists): B's entries 0 and A's entries negative -> -0 products
    if (s.n > 2) {
      for (std::size_t kk = 0; kk < s.k; ++kk) b[off + (bn ? kk * ldb + 2 : 2 * ldb + kk)] = in(C(0));
      for (std::size_t kk = 0; kk < s.k; ++kk) {
        T& v = a[off + (an ? kk : kk * lda)];  // row 0 of op(A)
        v = in(-std::fabs(static_cast<C>(core::widen(v))));
      }
    }
  }
  const std::vector<C> c0 = data<C>(s.m * ldc + off + pad, seed + 2);
  std::vector<C> want = c0, got = c0;
  reference::gemm_fixed_order<C, T>(ta, tb, s.m, s.n, s.k, alpha, a.data() + off, lda, b.data() + off, ldb, beta,
                                    want.data() + off, ldc);
  call_gemm<T>(ta, tb, s.m, s.n, s.k, alpha, a.data() + off, lda, b.data() + off, ldb, beta, got.data() + off, ldc, ex);
  ASSERT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(C)))
      << "m=" << s.m << " n=" << s.n << " k=" << s.k << " ta=" << int(ta) << " tb=" << int(tb) << " alpha=" << alpha
      << " beta=" << beta << " isa=" << isa_name(ex.simd) << " threads=" << ex.threads << " specials=" << specials;
}

template <class T>
void stream_matrix() {
  // n above 2 * 8 micro-panels (no split-K at 8 threads, see the plan check below), odd; k: below
  // the vector width, one chunk plus a tail, several chunks with a tail off the vector width.
  const std::size_t ns[] = {1031, 517};
  const std::size_t ks[] = {13, 263, 555};
  // m: the row-stream kernels of 1 to 8 rows, 16, 16 + 1 (13 = 8 + 5, 9 = 8 + 1), and 17 (packed).
  const std::size_t ms[] = {1, 2, 3, 4, 9, 13, 16, 17};
  std::uint64_t seed = 7000;
  for (isa i : usable_isas())
    for (int threads : bitexact_test::matrix_threads)
      for (std::size_t m : ms)
        for (int t = 0; t < 4; ++t) {
          const transpose ta = (t & 1) ? transpose::yes : transpose::no, tb = (t & 2) ? transpose::no : transpose::yes;
          const std::size_t n = ns[(m + t) % 2], k = ks[(m + t + threads) % 3];
          ++seed;
          using C = out_t<T>;
          const C alpha = (seed % 2) ? C(1) : C(-0.75);
          const C beta = (seed % 3 == 0) ? C(0) : (seed % 3 == 1) ? C(1) : C(0.5);
          check_stream<T>({m, n, k}, ta, tb, alpha, beta, execution{threads, i}, seed, m <= 2 && t < 2);
          if (::testing::Test::HasFatalFailure()) return;
        }
}

TEST(GemmStream, Float) { stream_matrix<float>(); }
TEST(GemmStream, Double) { stream_matrix<double>(); }
/// bfloat16 A and B (float C): the stream kernels widen in registers on AVX2+FMA3 and AVX-512.
TEST(GemmStream, Bfloat16) { stream_matrix<bfloat16>(); }

/// The shapes above really split the outputs among the threads (no split-K, one part per thread).
TEST(GemmStream, ThreadsSplitOutputs) {
  cpu::detail::with_arch(best_isa(), [](auto arch) {
    using A = decltype(arch);
    for (int t : {2, 3, 4, 7, 8})
      for (std::size_t m : {1, 16, 17})
        for (std::size_t k : {13, 263, 555}) {
          const auto p = cpu::detail::gemm_plan_for<A, float>(m, 517, k, t);
          EXPECT_FALSE(p.split_k) << t;
          EXPECT_EQ(p.parts, static_cast<std::size_t>(t)) << t << " m=" << m;
          const auto q = cpu::detail::gemm_plan_for<A, double>(m, 517, k, t);
          EXPECT_FALSE(q.split_k) << t;
          EXPECT_EQ(q.parts, static_cast<std::size_t>(t)) << t << " m=" << m;
        }
  });
}

/// gemv (both transposes, lda > n, unaligned x, y and A) against the reference with x as one row.
template <class T>
void gemv_stream() {
  const std::size_t m = 523, n = 1037, lda = 1043;
  const std::vector<T> a = data<T>(m * lda + 1, 31), x = data<T>(std::max(m, n) + 1, 32);
  const std::vector<T> y0 = data<T>(std::max(m, n) + 1, 33);
  for (isa i : usable_isas())
    for (int threads : bitexact_test::matrix_threads)
      for (T beta : {T(0), T(0.5)}) {
        std::vector<T> y = y0, want = y0;
        gemv<T>(transpose::no, m, n, T(1.5), a.data() + 1, lda, x.data() + 1, beta, y.data() + 1, tier::fixed_order,
                {threads, i});
        reference::gemm_fixed_order<T, T>(transpose::no, transpose::yes, 1, m, n, T(1.5), x.data() + 1, n,
                                          a.data() + 1, lda, beta, want.data() + 1, m);
        ASSERT_EQ(0, std::memcmp(y.data(), want.data(), y.size() * sizeof(T))) << isa_name(i) << " " << threads;
        y = y0;
        want = y0;
        gemv<T>(transpose::yes, m, n, T(1.5), a.data() + 1, lda, x.data() + 1, beta, y.data() + 1, tier::fixed_order,
                {threads, i});
        reference::gemm_fixed_order<T, T>(transpose::no, transpose::no, 1, n, m, T(1.5), x.data() + 1, m,
                                          a.data() + 1, lda, beta, want.data() + 1, n);
        ASSERT_EQ(0, std::memcmp(y.data(), want.data(), y.size() * sizeof(T))) << isa_name(i) << " " << threads;
      }
}

TEST(GemmStream, GemvFloat) { gemv_stream<float>(); }
TEST(GemmStream, GemvDouble) { gemv_stream<double>(); }

// ---------------------------------------------------------------- golden hashes

/// Pinned to gemm_order_version: a change of any bit fails here until the version is bumped.
TEST(GemmGolden, Hashes) {
  ASSERT_EQ(gemm_order_version, 1);
  const std::size_t m = 67, n = 45, k = 600;
  auto run = [&](auto tag, std::uint64_t seed, execution ex) {
    using T = decltype(tag);
    using C = out_t<T>;
    const std::vector<T> a = data<T>(m * k, seed), b = data<T>(k * n, seed + 1);
    std::vector<C> c = data<C>(m * n, seed + 2);
    std::vector<C> r = c;
    call_gemm<T>(transpose::no, transpose::yes, m, n, k, C(1.5), a.data(), k, b.data(), k, C(0.5), c.data(), n, ex);
    reference::gemm_fixed_order<C, T>(transpose::no, transpose::yes, m, n, k, C(1.5), a.data(), k, b.data(), k, C(0.5),
                                      r.data(), n);
    EXPECT_EQ(c, r);  // the golden value is the reference's too
    return fnv1a64(c.data(), c.size() * sizeof(C));
  };
  const std::uint64_t want_f = 0x85bed328bf2f070cull, want_d = 0x42ee39fc56c0d634ull, want_h = 0x9a5a90fb8376f876ull;
  for (isa i : usable_isas())
    for (int threads : {1, 3}) {
      EXPECT_EQ(run(float{}, 1000, {threads, i}), want_f) << std::hex << run(float{}, 1000, {threads, i});
      EXPECT_EQ(run(double{}, 2000, {threads, i}), want_d) << std::hex << run(double{}, 2000, {threads, i});
      EXPECT_EQ(run(bfloat16{}, 3000, {threads, i}), want_h) << std::hex << run(bfloat16{}, 3000, {threads, i});
    }
}

}  // namespace

// ---------------------------------------------------------------- known-answer file (order version 1)

#include "golden_file.hpp"

namespace {

template <class T, class In>
void reference_gemm_tier(bool exact, transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, T alpha,
                         const In* a, std::size_t lda, const In* b, std::size_t ldb, T beta, T* c, std::size_t ldc) {
  if (exact)
    reference::gemm_exact<T, In>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  else
    reference::gemm_fixed_order<T, In>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// Every public op of gemm.hpp (gemm in the 4 transposes, gemm_batched, gemv both ways, the
// linear layer's forward with and without bias, backward data, weight and bias), both tiers,
// float, double and bfloat16 -> float where the op has it; K = 300 crosses a 256-wide chunk.
// The reference's bits are pinned in tests/data/gemm_golden_v1.txt; every fast path must match.
template <class T, class In>
void gemm_golden_rows(bitexact_test::golden_table& table, const char* tname, std::uint32_t tag) {
  constexpr bool same = std::is_same<T, In>::value;
  for (tier t : {tier::fixed_order, tier::exact}) {
    const bool ex = t == tier::exact;
    const std::string tn = std::string(".") + tname + (ex ? ".exact" : ".fixed_order");
    // One case: the reference fills `want`, `run(e, out)` calls the op on `out` (preset as `init`).
    auto check = [&](const std::string& name, const std::vector<T>& init, auto&& reference_fill, auto&& run) {
      std::vector<T> want = init;
      reference_fill(want);
      table.add(name + tn, want);
      bitexact_test::for_each_fast_path([&](const execution& e, const std::string& label) {
        std::vector<T> got = init;
        run(e, got);
        for (std::size_t q = 0; q < want.size(); ++q)
          if (std::memcmp(&want[q], &got[q], sizeof(T)) != 0) {
            ADD_FAILURE() << name << tn << " " << label << ": element " << q << " is " << std::hexfloat << got[q]
                          << ", the reference " << want[q];
            break;
          }
      });
    };
    const std::size_t m = 37, n = 29, k = 300;
    const auto a = bitexact_test::golden_data<In>((k + 3) * (m + 5), tag + 1);  // also gemv's 41 x 300 (lda 303)
    const auto b = bitexact_test::golden_data<In>((k + 3) * (n + 3), tag + 2);
    const auto c0 = bitexact_test::golden_data<T>(m * (n + 2), tag + 3);
    for (int tr = 0; tr < 4; ++tr) {
      const transpose ta = (tr & 1) ? transpose::yes : transpose::no, tb = (tr & 2) ? transpose::yes : transpose::no;
      const std::size_t lda = (ta == transpose::no ? k : m) + 3, ldb = (tb == transpose::no ? n : k) + 3, ldc = n + 2;
      check("gemm.t" + std::to_string(tr), c0,
            [&](std::vector<T>& c) {
              reference_gemm_tier<T, In>(ex, ta, tb, m, n, k, T(1.5), a.data(), lda, b.data(), ldb, T(-0.5), c.data(), ldc);
            },
            [&](const execution& e, std::vector<T>& c) {
              gemm(ta, tb, m, n, k, T(1.5), a.data(), lda, b.data(), ldb, T(-0.5), c.data(), ldc, t, e);
            });
    }
    // Batched: 3 entries of 9 x 7 x 300, A strided, B shared (stride 0), C strided with a gap.
    const std::size_t bm = 9, bn = 7, sa = bm * k + 5, sc = bm * bn + 4;
    check("gemm_batched", std::vector<T>(c0.begin(), c0.begin() + 3 * sc),
          [&](std::vector<T>& c) {
            for (std::size_t q = 0; q < 3; ++q)
              reference_gemm_tier<T, In>(ex, transpose::no, transpose::yes, bm, bn, k, T(1), a.data() + q * sa, k, b.data(), k,
                                         T(1), c.data() + q * sc, bn);
          },
          [&](const execution& e, std::vector<T>& c) {
            gemm_batched(transpose::no, transpose::yes, bm, bn, k, T(1), a.data(), k, sa, b.data(), k, 0, T(1), c.data(), bn, sc,
                         3, t, e);
          });
    if constexpr (same) {
      // gemv: A stored 41 x 300 (lda 303).
      const std::size_t gm = 41, gn = 300, lda = gn + 3;
      for (transpose ta : {transpose::no, transpose::yes}) {
        const std::size_t ny = ta == transpose::no ? gm : gn;
        check(std::string("gemv.") + (ta == transpose::no ? "n" : "t"), std::vector<T>(c0.begin(), c0.begin() + ny),
              [&](std::vector<T>& y) {
                if (ta == transpose::no)
                  reference_gemm_tier<T, In>(ex, transpose::no, transpose::yes, 1, gm, gn, T(2), b.data(), gn, a.data(), lda,
                                             T(0.25), y.data(), gm);
                else
                  reference_gemm_tier<T, In>(ex, transpose::no, transpose::no, 1, gn, gm, T(2), b.data(), gm, a.data(), lda,
                                             T(0.25), y.data(), gn);
              },
              [&](const execution& e, std::vector<T>& y) { gemv(ta, gm, gn, T(2), a.data(), lda, b.data(), T(0.25), y.data(), t, e); });
      }
      // The linear layer: batch 13, in 300, out 11.
      const std::size_t lb = 13, li = 300, lo = 11;
      const In* x = a.data();
      const In* w = b.data();
      const In* bias = c0.data();
      const In* dy = c0.data() + 20;
      for (bool with_bias : {false, true})
        check(std::string("linear_forward") + (with_bias ? ".bias" : ""), std::vector<T>(lb * lo, T(7)),
              [&](std::vector<T>& y) {
                if (with_bias)
                  for (std::size_t i = 0; i < lb; ++i)
                    for (std::size_t j = 0; j < lo; ++j) y[i * lo + j] = bias[j];
                reference_gemm_tier<T, In>(ex, transpose::no, transpose::yes, lb, lo, li, T(1), x, li, w, li,
                                           with_bias ? T(1) : T(0), y.data(), lo);
              },
              [&](const execution& e, std::vector<T>& y) {
                linear_forward(lb, li, lo, x, w, with_bias ? bias : nullptr, y.data(), t, e);
              });
      check("linear_backward_data", std::vector<T>(lb * li, T(7)),
            [&](std::vector<T>& dx) {
              reference_gemm_tier<T, In>(ex, transpose::no, transpose::no, lb, li, lo, T(1), dy, lo, w, li, T(0), dx.data(), li);
            },
            [&](const execution& e, std::vector<T>& dx) { linear_backward_data(lb, li, lo, dy, w, dx.data(), t, e); });
      check("linear_backward_weight", std::vector<T>(lo * li, T(7)),
            [&](std::vector<T>& dw) {
              reference_gemm_tier<T, In>(ex, transpose::yes, transpose::no, lo, li, lb, T(1), dy, lo, x, li, T(0), dw.data(), li);
            },
            [&](const execution& e, std::vector<T>& dw) { linear_backward_weight(lb, li, lo, dy, x, dw.data(), t, e); });
      // Bias gradient over a batch of 300 (crosses a K chunk): dy is 300 x 11 (from a).
      check("linear_backward_bias", std::vector<T>(lo, T(7)),
            [&](std::vector<T>& db) {
              const std::vector<T> ones(300, T(1));
              reference_gemm_tier<T, In>(ex, transpose::no, transpose::no, 1, lo, 300, T(1), ones.data(), 300, x, lo, T(0),
                                         db.data(), lo);
            },
            [&](const execution& e, std::vector<T>& db) { linear_backward_bias(300, lo, x, db.data(), t, e); });
    }
  }
}

TEST(GemmGolden, EveryOpKnownAnswerFile) {
  static_assert(gemm_order_version == 1, "order version changed: write gemm_golden_v2.txt and update CHANGELOG");
  bitexact_test::golden_table table;
  gemm_golden_rows<float, float>(table, "f32", 1000);
  gemm_golden_rows<double, double>(table, "f64", 2000);
  gemm_golden_rows<float, bfloat16>(table, "bf16", 3000);
  table.check("gemm_golden_v1.txt");
}

}  // namespace
