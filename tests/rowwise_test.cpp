// rowwise_test: the library's exp (accuracy, specials, SIMD = scalar), row/column sums and
// means (both tiers), softmax, log_softmax, RMSNorm and LayerNorm: equal to the reference bit
// for bit over threads x ISAs x shapes x alignment, batch invariance, special values, bad input
// and golden hashes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include <bitexact/core/fixed_order.hpp>
#include <bitexact/core/math.hpp>
#include <bitexact/cpu/simd_math.hpp>
#include <bitexact/reference/reduce.hpp>
#include <bitexact/reference/rowwise.hpp>
#include <bitexact/reduce.hpp>
#include <bitexact/rowwise.hpp>

#include "random_test_util.hpp"

#include <cfenv>
#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

using namespace bitexact;
using bitexact_test::splitmix;

#include "split_probe.hpp"

namespace {

const auto& kThreads = bitexact_test::matrix_threads;  // {1, 2, 3, 4, 7, 8}; {1, 3, 8} under the sanitizers

template <class T>
std::uint64_t bits_of(T x) {
  std::uint64_t u = 0;
  std::memcpy(&u, &x, sizeof x);
  return u;
}
double double_of_bits(std::uint64_t u) {
  double d;
  std::memcpy(&d, &u, sizeof d);
  return d;
}

/// Distance in units in the last place between two finite doubles of the same sign (or zeros).
double ulp_distance(double a, double b) {
  std::int64_t ia, ib;
  std::memcpy(&ia, &a, 8);
  std::memcpy(&ib, &b, 8);
  if (ia < 0) ia = std::numeric_limits<std::int64_t>::min() - ia;
  if (ib < 0) ib = std::numeric_limits<std::int64_t>::min() - ib;
  return std::fabs(static_cast<double>(ia - ib));
}

template <class A>
bool same(const std::vector<A>& a, const std::vector<A>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(A)) == 0);
}

template <class T>
T make(double v) {
  if constexpr (std::is_same<T, bfloat16>::value) return bfloat16::from_float(static_cast<float>(v));
  else return static_cast<T>(v);
}

/// rows x ld values (the padding holds garbage that must never be read into a result).
template <class T>
std::vector<T> matrix(std::size_t rows, std::size_t ld, std::uint64_t seed, double scale = 8.0) {
  splitmix g{seed};
  std::vector<T> v(rows * ld + 4);
  for (auto& x : v) x = make<T>((g.uniform() - 0.5) * scale);
  return v;
}

// ---------------------------------------------------------------- exp

TEST(RowwiseExp, AccuracyAgainstLibm) {
  splitmix g{42};
  double worst = 0;
  for (int k = 0; k < 3000000; ++k) {
    double x;
    if (k % 3 == 0) x = -745.2 + g.uniform() * (709.79 + 745.2);
    else if (k % 3 == 1) x = (g.uniform() - 0.5) * 2.0;
    else x = (g.uniform() - 0.5) * 1e-6;
    const double a = core::exp(x), b = std::exp(x);
    if (b == 0 || std::isinf(b)) {
      // Only right at the thresholds may one side round to 0 / overflow and the other not.
      ASSERT_TRUE((a == 0 || a == std::numeric_limits<double>::denorm_min() || std::isinf(a) ||
                   a > 1.79e308))
          << x;
      continue;
    }
    const double d = ulp_distance(a, b);
    if (d > worst) worst = d;
    ASSERT_LE(d, 1.0) << "x = " << x;
  }
  // Denormal results round once (compared with libm, which is correctly rounded there).
  for (double x = -745.13; x < -708.0; x += 0.37) ASSERT_LE(ulp_distance(core::exp(x), std::exp(x)), 1.0) << x;
  RecordProperty("worst_ulp_vs_libm", std::to_string(worst));
  // Float: compare with libm's binary64 exp rounded to float (a near-perfect reference):
  // never more than 1 ulp apart, and equal except in rare near-tie cases.
  long off_by_one = 0, total = 0;
  for (std::uint32_t u = 0; u < 0xffffffffu - 4093; u += 4093) {  // every 4093rd float
    float x;
    std::memcpy(&x, &u, 4);
    if (!(x >= -104.0f && x <= 89.0f)) continue;
    const float a = core::exp(x), b = static_cast<float>(std::exp(static_cast<double>(x)));
    std::int32_t ia, ib;
    std::memcpy(&ia, &a, 4);
    std::memcpy(&ib, &b, 4);
    ASSERT_LE(std::abs(ia - ib), 1) << x;
    off_by_one += ia != ib;
    ++total;
  }
  EXPECT_GT(total, 500000);
  EXPECT_LT(off_by_one, total / 1000) << off_by_one << " of " << total;
  RecordProperty("float_exp_off_by_one", std::to_string(off_by_one) + "/" + std::to_string(total));
}

TEST(RowwiseExp, SpecialValues) {
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(bits_of(core::exp(std::nan(""))), 0x7ff8000000000000ull);
  EXPECT_EQ(bits_of(core::exp(double_of_bits(0xfff8000000000123ull))), 0x7ff8000000000000ull);
  EXPECT_EQ(core::exp(inf), inf);
  EXPECT_EQ(bits_of(core::exp(-inf)), 0u);
  EXPECT_EQ(core::exp(0.0), 1.0);
  EXPECT_EQ(core::exp(-0.0), 1.0);
  EXPECT_EQ(core::exp(709.78), std::exp(709.78));  // the largest finite results
  EXPECT_EQ(core::exp(709.79), inf);
  EXPECT_EQ(core::exp(1000.0), inf);
  EXPECT_EQ(bits_of(core::exp(-745.2)), 0u);
  EXPECT_EQ(core::exp(-745.13), std::numeric_limits<double>::denorm_min());
  EXPECT_EQ(core::exp(std::numeric_limits<double>::denorm_min()), 1.0);
  EXPECT_EQ(core::exp(1.0), 0x1.5bf0a8b14576ap+1);  // e, pinned (1 ulp above libm's)
  EXPECT_EQ(bits_of(core::exp(std::nanf(""))), 0x7fc00000u);
  EXPECT_EQ(core::exp(100.0f), std::numeric_limits<float>::infinity());
  EXPECT_EQ(core::exp(88.72f), static_cast<float>(std::exp(double(88.72f))));  // near FLT_MAX
  EXPECT_EQ(core::exp(88.73f), std::numeric_limits<float>::infinity());
  EXPECT_EQ(core::exp(-100.0f), static_cast<float>(std::exp(double(-100.0f))));  // float denormal
  EXPECT_EQ(core::exp(-103.99f), 0.0f);  // below half the least denormal (2^-150)
  EXPECT_EQ(core::exp(-103.2f), std::numeric_limits<float>::denorm_min());
  EXPECT_EQ(bits_of(core::exp(-std::numeric_limits<float>::infinity())), 0u);
  EXPECT_EQ(core::exp(std::numeric_limits<float>::infinity()), std::numeric_limits<float>::infinity());
}

/// The SIMD exp equals the scalar one lane by lane on every ISA.
TEST(RowwiseExp, SimdEqualsScalarOnEveryIsa) {
  std::vector<double> xs;
  splitmix g{7};
  for (int k = 0; k < 200000; ++k) xs.push_back(-760.0 + g.uniform() * 1480.0);
  for (int k = 0; k < 100000; ++k) xs.push_back((g.uniform() - 0.5) * 4.0);
  for (double s : {0.0, -0.0, 709.78, 709.79, 709.8, -745.13, -745.2, -745.3, 1e-310, -1e-310,
                   std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
                   std::nan(""), double_of_bits(0xfff0000000000001ull), 0.34657359027997264, -0.34657359027997264,
                   623.0, -728.0, 621.06, -727.0})
    xs.push_back(s);
  while (xs.size() % 8) xs.push_back(0.5);
  int checked = 0;
  for (isa i : usable_isas()) {
    cpu::detail::with_arch(i, [&](auto arch) {
      using Arch = decltype(arch);
      if constexpr (!std::is_same<Arch, cpu::detail::scalar_arch>::value) {
        using V = xsimd::batch<double, Arch>;
        alignas(64) double out[V::size];
        for (std::size_t k = 0; k + V::size <= xs.size(); k += V::size) {
          cpu::detail::exp_batch(V::load_unaligned(xs.data() + k)).store_aligned(out);
          for (std::size_t j = 0; j < V::size; ++j)
            ASSERT_EQ(bits_of(out[j]), bits_of(core::exp(xs[k + j]))) << isa_name(i) << " x=" << xs[k + j];
        }
        // The float exp on binary32 values held in binary64 lanes, narrowed by the caller.
        for (std::size_t k = 0; k + V::size <= xs.size(); k += V::size) {
          alignas(64) double in[V::size];
          for (std::size_t j = 0; j < V::size; ++j) {
            // Through a named float: g++ 12 at -O3 dropped the double -> float -> double round
            // trip of `in[j] = static_cast<float>(xs[k + j] / 7.0)` in this loop (seen with
            // -march=native, AVX2/AVX-512 instantiations); the assert below would catch it.
            const float f = static_cast<float>(xs[k + j] / 7.0);
            in[j] = f;
            ASSERT_EQ(bits_of(static_cast<double>(static_cast<float>(in[j]))), bits_of(in[j])) << xs[k + j];
          }
          cpu::detail::exp_float_batch(V::load_aligned(in)).store_aligned(out);
          for (std::size_t j = 0; j < V::size; ++j)
            ASSERT_EQ(bits_of(static_cast<float>(out[j])), bits_of(core::exp(static_cast<float>(in[j]))))
                << isa_name(i) << " x=" << std::hexfloat << in[j] << " out=" << out[j] << std::defaultfloat;
        }
        ++checked;
      }
    });
  }
  EXPECT_GE(checked, 1);
}

// ---------------------------------------------------------------- sums

struct shape {
  std::size_t rows, cols, pad;
};
std::string name(const shape& s, std::size_t off) {
  return std::to_string(s.rows) + "x" + std::to_string(s.cols) + "+" + std::to_string(s.pad) + " off " +
         std::to_string(off);
}

const shape kShapes[] = {{0, 5, 0},   {3, 0, 2},    {1, 1, 0},    {2, 3, 1},    {5, 7, 0},   {3, 17, 3},
                         {7, 31, 0},  {4, 33, 5},   {2, 63, 1},   {3, 64, 0},   {9, 65, 0},  {1, 127, 0},
                         {2, 129, 7}, {37, 97, 3},  {13, 255, 0}, {3, 257, 1},  {2, 4095, 0}, {2, 4097, 3},
                         {1, 8193, 0}, {4099, 3, 0}, {8191, 5, 2}, {4097, 70, 1}, {130, 130, 0}, {4500, 300, 1}};

template <class T>
void sums_matrix() {
  bitexact_test::split_check split_("sums_matrix");
  using A = core::accumulation_t<T>;
  for (const shape& s : kShapes)
    for (std::size_t off : {0, 1}) {
      const std::size_t ld = s.cols + s.pad;
      const auto buf = matrix<T>(s.rows, ld, s.rows * 131 + s.cols + off, 1e3);
      const T* x = buf.data() + off;
      std::vector<A> rref(s.rows), cref(s.cols), rex(s.rows), cex(s.cols);
      reference::row_sum_fixed_order(x, s.rows, s.cols, ld, rref.data());
      reference::col_sum_fixed_order(x, s.rows, s.cols, ld, cref.data());
      reference::row_sum_exact(x, s.rows, s.cols, ld, rex.data());
      reference::col_sum_exact(x, s.rows, s.cols, ld, cex.data());
      // The spec statements: a row's sum is the 1-D sum of the row, a column's the 1-D sum of
      // the strided column.
      for (std::size_t r = 0; r < s.rows; ++r) {
        ASSERT_EQ(bits_of(rref[r]), bits_of(reference::sum_fixed_order(x + r * ld, s.cols)));
        ASSERT_EQ(bits_of(rex[r]), bits_of(reference::sum_exact(x + r * ld, s.cols)));
      }
      for (std::size_t c = 0; c < s.cols; c += 7) {
        std::vector<T> col(s.rows);
        for (std::size_t r = 0; r < s.rows; ++r) col[r] = x[r * ld + c];
        ASSERT_EQ(bits_of(cref[c]), bits_of(reference::sum_fixed_order(col.data(), s.rows)));
      }
      std::vector<A> rmean(rref), cmean(cref);
      for (auto& v : rmean) v = reference::mean_of(v, s.cols);
      for (auto& v : cmean) v = reference::mean_of(v, s.rows);
      for (isa i : usable_isas())
        for (int t : kThreads) {
          SCOPED_TRACE(name(s, off) + " " + isa_name(i) + " threads " + std::to_string(t));
          const execution e{t, i};
          std::vector<A> r(s.rows, A(7)), c(s.cols, A(7));
          row_sum(x, s.rows, s.cols, ld, r.data(), tier::fixed_order, e);
          ASSERT_TRUE(same(r, rref));
          col_sum(x, s.rows, s.cols, ld, c.data(), tier::fixed_order, e);
          ASSERT_TRUE(same(c, cref));
          row_mean(x, s.rows, s.cols, ld, r.data(), tier::fixed_order, e);
          ASSERT_TRUE(same(r, rmean));
          col_mean(x, s.rows, s.cols, ld, c.data(), tier::fixed_order, e);
          ASSERT_TRUE(same(c, cmean));
          if (t == 1 || t == 3) {
            row_sum(x, s.rows, s.cols, ld, r.data(), tier::exact, e);
            ASSERT_TRUE(same(r, rex));
            col_sum(x, s.rows, s.cols, ld, c.data(), tier::exact, e);
            ASSERT_TRUE(same(c, cex));
          }
        }
    }
}

TEST(RowwiseSums, InvarianceMatrixFloat) { sums_matrix<float>(); }
TEST(RowwiseSums, InvarianceMatrixDouble) { sums_matrix<double>(); }
TEST(RowwiseSums, InvarianceMatrixBfloat16) { sums_matrix<bfloat16>(); }

/// Above 10^6 values: one long row, and columns of 2^20 + 1 rows (257 leaves, a ragged tree).
TEST(RowwiseSums, LargeCases) {
  const std::size_t n = 1000003;
  const auto row = matrix<float>(1, n, 99, 1e4);
  const float expect = reference::sum_fixed_order(row.data() + 1, n);
  const std::size_t rows = (std::size_t(1) << 20) + 1, cols = 3;
  const auto m = matrix<float>(rows, cols, 5);
  std::vector<float> cref(cols);
  reference::col_sum_fixed_order(m.data(), rows, cols, cols, cref.data());
  for (isa i : usable_isas())
    for (int t : {1, 2, 7}) {
      const execution e{t, i};
      float got = 0;
      row_sum(row.data() + 1, 1, n, n, &got, tier::fixed_order, e);
      EXPECT_EQ(bits_of(got), bits_of(expect)) << isa_name(i) << " " << t;
      std::vector<float> c(cols);
      col_sum(m.data(), rows, cols, cols, c.data(), tier::fixed_order, e);
      EXPECT_TRUE(same(c, cref)) << isa_name(i) << " " << t;
    }
}

TEST(RowwiseSums, SignedZerosNaNInf) {
  const float nz = -0.0f, inf = std::numeric_limits<float>::infinity();
  // A row (and a column) of -0.0 sums to -0.0; one +0.0 makes it +0.0.
  std::vector<float> z(6 * 5, nz);
  z[2 * 5 + 4] = 0.0f;  // row 2, column 4
  std::vector<float> r(6), c(5);
  for (tier t : {tier::fixed_order, tier::exact})
    for (isa i : usable_isas()) {
      const execution e{2, i};
      row_sum(z.data(), 6, 5, 5, r.data(), t, e);
      col_sum(z.data(), 6, 5, 5, c.data(), t, e);
      for (std::size_t k = 0; k < 6; ++k) EXPECT_EQ(bits_of(r[k]), bits_of(k == 2 ? 0.0f : nz)) << k;
      for (std::size_t k = 0; k < 5; ++k) EXPECT_EQ(bits_of(c[k]), bits_of(k == 4 ? 0.0f : nz)) << k;
    }
  // Inf and NaN propagate as IEEE says in fixed_order, as core/exact.hpp says in exact.
  const float m[6] = {1.0f, inf, 2.0f, -inf, std::nanf(""), 3.0f};  // 3 x 2
  float rs[3], cs[2];
  row_sum(m, 3, 2, 2, rs, tier::exact);
  EXPECT_EQ(rs[0], inf);
  EXPECT_TRUE(std::isnan(rs[2]));
  col_sum(m, 3, 2, 2, cs, tier::exact);
  EXPECT_EQ(bits_of(cs[0]), 0x7fc00000u);  // NaN
  EXPECT_EQ(bits_of(cs[1]), 0x7fc00000u);  // +inf and -inf
  // Means of nothing are the canonical NaN; sums of nothing are +0.
  float out[3] = {1, 1, 1};
  row_mean(static_cast<const float*>(nullptr), 3, 0, 0, out);
  for (float v : out) EXPECT_EQ(bits_of(v), 0x7fc00000u);
  row_sum(static_cast<const float*>(nullptr), 3, 0, 0, out);
  for (float v : out) EXPECT_EQ(bits_of(v), 0u);
  col_sum(static_cast<const float*>(nullptr), 0, 3, 3, out);
  for (float v : out) EXPECT_EQ(bits_of(v), 0u);
}

// ---------------------------------------------------------------- row-wise ops

enum class op { softmax, log_softmax, rms_norm, layer_norm };
const char* op_name(op o) {
  switch (o) {
    case op::softmax: return "softmax";
    case op::log_softmax: return "log_softmax";
    case op::rms_norm: return "rms_norm";
    default: return "layer_norm";
  }
}

template <class T>
struct params {
  const T* w = nullptr;
  const T* b = nullptr;
  double eps = 1e-5;
};

template <class T>
void run_ref(op o, const T* x, std::size_t rows, std::size_t cols, std::size_t ld, const params<T>& p,
             core::accumulation_t<T>* y, std::size_t ldy) {
  using A = core::accumulation_t<T>;
  switch (o) {
    case op::softmax: reference::softmax(x, rows, cols, ld, y, ldy); break;
    case op::log_softmax: reference::log_softmax(x, rows, cols, ld, y, ldy); break;
    case op::rms_norm: reference::rms_norm(x, rows, cols, ld, p.w, A(p.eps), y, ldy); break;
    case op::layer_norm: reference::layer_norm(x, rows, cols, ld, p.w, p.b, A(p.eps), y, ldy); break;
  }
}
template <class T>
void run_fast(op o, const T* x, std::size_t rows, std::size_t cols, std::size_t ld, const params<T>& p,
              core::accumulation_t<T>* y, std::size_t ldy, const execution& e) {
  switch (o) {
    case op::softmax: softmax(x, rows, cols, ld, y, ldy, e); break;
    case op::log_softmax: log_softmax(x, rows, cols, ld, y, ldy, e); break;
    case op::rms_norm: rms_norm(x, rows, cols, ld, p.w, p.eps, y, ldy, e); break;
    case op::layer_norm: layer_norm(x, rows, cols, ld, p.w, p.b, p.eps, y, ldy, e); break;
  }
}

const shape kOpShapes[] = {{0, 9, 0},   {4, 0, 0},   {1, 1, 0},   {3, 2, 1},   {2, 7, 0},    {5, 17, 3},
                           {3, 31, 0},  {2, 33, 1},  {4, 63, 0},  {3, 64, 2},  {2, 65, 0},   {37, 97, 5},
                           {2, 257, 0}, {3, 1023, 1}, {2, 4096, 0}, {2, 4097, 3}, {1, 12289, 0}, {300, 40, 0}};

template <class T>
void ops_matrix() {
  bitexact_test::split_check split_("ops_matrix");
  using A = core::accumulation_t<T>;
  for (op o : {op::softmax, op::log_softmax, op::rms_norm, op::layer_norm})
    for (const shape& s : kOpShapes)
      for (std::size_t off : {0, 1}) {
        const std::size_t ld = s.cols + s.pad, ldy = s.cols + (s.pad ? 2 : 0);
        const auto buf = matrix<T>(s.rows, ld, s.rows * 7 + s.cols * 3 + off, o == op::softmax ? 30.0 : 8.0);
        const auto wb = matrix<T>(2, s.cols + 1, s.cols + 1234, 4.0);
        const T* x = buf.data() + off;
        // Weights and bias: none, then both (unaligned).
        for (int with_wb = 0; with_wb < (o >= op::rms_norm ? 2 : 1); ++with_wb) {
          params<T> p;
          if (with_wb) {
            p.w = wb.data() + 1;
            p.b = wb.data() + s.cols + 2;
            p.eps = 0.25;
          }
          const A sentinel = A(-12345);
          std::vector<A> ref(s.rows * ldy + 1, sentinel);
          run_ref(o, x, s.rows, s.cols, ld, p, ref.data(), ldy);
          for (isa i : usable_isas())
            for (int t : kThreads) {
              SCOPED_TRACE(std::string(op_name(o)) + " " + name(s, off) + " wb " + std::to_string(with_wb) + " " +
                           isa_name(i) + " threads " + std::to_string(t));
              std::vector<A> y(s.rows * ldy + 1, sentinel);
              run_fast(o, x, s.rows, s.cols, ld, p, y.data(), ldy, execution{t, i});
              ASSERT_TRUE(same(y, ref));  // includes the untouched padding
            }
        }
      }
}

TEST(RowwiseSums, NaNResultsAreCanonicalLikeThe1DSum) {
  // Inf + -Inf makes a NaN whose sign differs between x86 and ARM/GPUs; every sum returns the
  // canonical quiet NaN, and a row's sum equals the 1-D sum of that row.
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> x = {1.0f, inf, -inf, 2.0f,   // row 0: Inf - Inf
                          inf, 0.0f, -inf, 5.0f};  // row 1 (columns 0 and 2 give Inf, -Inf)
  for (tier t : {tier::fixed_order, tier::exact}) {
    float rs[2], cs[4];
    row_sum(x.data(), 2, 4, 4, rs, t);
    col_sum(x.data(), 2, 4, 4, cs, t);
    for (int r = 0; r < 2; ++r) {
      const float one_d = sum(x.data() + 4 * r, 4, t);
      std::uint32_t a, b;
      std::memcpy(&a, &rs[r], 4);
      std::memcpy(&b, &one_d, 4);
      EXPECT_EQ(a, 0x7fc00000u);
      EXPECT_EQ(a, b);
    }
    std::uint32_t c0;
    std::memcpy(&c0, &cs[0], 4);
    EXPECT_EQ(c0, 0x7f800000u);  // inf + inf
  }
}

TEST(RowwiseOps, InvarianceMatrixFloat) { ops_matrix<float>(); }
TEST(RowwiseOps, InvarianceMatrixDouble) { ops_matrix<double>(); }
TEST(RowwiseOps, InvarianceMatrixBfloat16) { ops_matrix<bfloat16>(); }

/// Above 10^6 values: rows of 400009 (98 float leaves, a ragged leaf tree), every op.
TEST(RowwiseOps, LargeRows) {
  const std::size_t rows = 3, cols = 400009, ld = cols + 1;
  const auto buf = matrix<float>(rows, ld, 4242, 20.0);
  const auto wb = matrix<float>(2, cols, 4343, 2.0);
  params<float> p;
  p.w = wb.data();
  p.b = wb.data() + cols;
  for (op o : {op::softmax, op::log_softmax, op::rms_norm, op::layer_norm}) {
    std::vector<float> ref(rows * cols);
    run_ref(o, buf.data() + 1, rows, cols, ld, p, ref.data(), cols);
    for (isa i : usable_isas())
      for (int t : kThreads) {
        std::vector<float> y(rows * cols);
        run_fast(o, buf.data() + 1, rows, cols, ld, p, y.data(), cols, execution{t, i});
        ASSERT_TRUE(same(y, ref)) << op_name(o) << " " << isa_name(i) << " threads " << t;
      }
  }
}

/// A row's result never depends on the batch: rows computed one at a time, in a batch of 37,
/// and in a batch of 5 taken from the middle, give the same bits.
template <class T>
void batch_invariance() {
  bitexact_test::split_check split_("batch_invariance");
  using A = core::accumulation_t<T>;
  const std::size_t rows = 37, cols = 301, ld = 305;
  const auto buf = matrix<T>(rows, ld, 2024, 12.0);
  const auto wb = matrix<T>(2, cols, 77, 3.0);
  params<T> p;
  p.w = wb.data();
  p.b = wb.data() + cols;
  for (op o : {op::softmax, op::log_softmax, op::rms_norm, op::layer_norm})
    for (isa i : usable_isas())
      for (int t : kThreads) {
        SCOPED_TRACE(std::string(op_name(o)) + " " + isa_name(i) + " threads " + std::to_string(t));
        const execution e{t, i};
        std::vector<A> batch(rows * cols), part(5 * cols), one(cols);
        run_fast(o, buf.data(), rows, cols, ld, p, batch.data(), cols, e);
        run_fast(o, buf.data() + 20 * ld, 5, cols, ld, p, part.data(), cols, e);
        ASSERT_EQ(std::memcmp(part.data(), batch.data() + 20 * cols, part.size() * sizeof(A)), 0);
        for (std::size_t r = 0; r < rows; ++r) {
          run_fast(o, buf.data() + r * ld, 1, cols, ld, p, one.data(), cols, e);
          ASSERT_EQ(std::memcmp(one.data(), batch.data() + r * cols, cols * sizeof(A)), 0) << "row " << r;
        }
      }
  // Sums too.
  std::vector<A> all(rows), one(1);
  row_sum(buf.data(), rows, cols, ld, all.data());
  for (std::size_t r = 0; r < rows; ++r) {
    row_sum(buf.data() + r * ld, 1, cols, ld, one.data());
    ASSERT_EQ(bits_of(one[0]), bits_of(all[r]));
  }
}

TEST(RowwiseOps, BatchInvarianceFloat) { batch_invariance<float>(); }
TEST(RowwiseOps, BatchInvarianceDouble) { batch_invariance<double>(); }
TEST(RowwiseOps, BatchInvarianceBfloat16) { batch_invariance<bfloat16>(); }

/// The ops compute what their names say (checked against a libm double computation).
TEST(RowwiseOps, MatchTheMathematicalDefinitions) {
  const std::size_t rows = 3, cols = 1000;
  const auto x = matrix<float>(rows, cols, 31, 20.0);
  const auto w = matrix<float>(1, cols, 32, 2.0);
  std::vector<float> sm(rows * cols), ls(rows * cols), rn(rows * cols), ln(rows * cols);
  softmax(x.data(), rows, cols, cols, sm.data(), cols);
  log_softmax(x.data(), rows, cols, cols, ls.data(), cols);
  rms_norm(x.data(), rows, cols, cols, w.data(), 1e-6, rn.data(), cols);
  layer_norm(x.data(), rows, cols, cols, w.data(), w.data(), 1e-6, ln.data(), cols);
  for (std::size_t r = 0; r < rows; ++r) {
    const float* xr = x.data() + r * cols;
    double m = -1e300, s = 0, q = 0, mean = 0, var = 0;
    for (std::size_t i = 0; i < cols; ++i) m = std::max(m, double(xr[i]));
    for (std::size_t i = 0; i < cols; ++i) s += std::exp(double(xr[i]) - m);
    for (std::size_t i = 0; i < cols; ++i) q += double(xr[i]) * xr[i], mean += xr[i];
    mean /= cols;
    for (std::size_t i = 0; i < cols; ++i) var += (xr[i] - mean) * (xr[i] - mean);
    var /= cols;
    for (std::size_t i = 0; i < cols; ++i) {
      const double esm = std::exp(double(xr[i]) - m) / s;
      // d_i = x_i - m is rounded to float (|d| < 40: absolute error < 2^-19), hence 1e-5.
      EXPECT_NEAR(sm[r * cols + i], esm, 1e-5 * esm + 1e-30);
      EXPECT_NEAR(ls[r * cols + i], double(xr[i]) - m - std::log(s), 1e-4);
      const double ern = xr[i] / std::sqrt(q / cols + 1e-6) * w[i];
      EXPECT_NEAR(rn[r * cols + i], ern, 1e-5 * (1 + std::fabs(ern)));
      const double eln = (xr[i] - mean) / std::sqrt(var + 1e-6) * w[i] + w[i];
      EXPECT_NEAR(ln[r * cols + i], eln, 1e-5 * (1 + std::fabs(eln)));
    }
  }
}

TEST(RowwiseOps, SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::uint32_t cnan = 0x7fc00000u;
  for (isa i : usable_isas()) {
    const execution e{2, i};
    // softmax: -inf entries give 0; a NaN or +inf in the row, or an all -inf row, give a NaN row.
    const float x[4 * 3] = {1.0f, -inf, 2.0f,                         // row 0
                            1.0f, std::nanf(""), 2.0f,                // row 1
                            1.0f, inf, 2.0f,                          // row 2
                            -inf, -inf, -inf};                        // row 3
    float y[12], z[12];
    softmax(x, 4, 3, 3, y, 3, e);
    log_softmax(x, 4, 3, 3, z, 3, e);
    EXPECT_EQ(bits_of(y[1]), 0u);
    EXPECT_EQ(bits_of(z[1]), bits_of(-inf));
    EXPECT_GT(y[2], y[0]);
    for (int k = 3; k < 12; ++k) {
      EXPECT_EQ(bits_of(y[k]), cnan) << k;
      EXPECT_EQ(bits_of(z[k]), cnan) << k;
    }
    // Signed zeros: softmax of (-0, +0) is (1/2, 1/2).
    const float zz[2] = {-0.0f, 0.0f};
    softmax(zz, 1, 2, 2, y, 2, e);
    EXPECT_EQ(y[0], 0.5f);
    EXPECT_EQ(y[1], 0.5f);
    // Norms: a zero row with eps = 0 is 0 * inf = NaN (canonical); with eps > 0 it keeps the
    // zeros' signs.
    const float zr[3] = {-0.0f, 0.0f, -0.0f};
    rms_norm(zr, 1, 3, 3, static_cast<const float*>(nullptr), 0.0, y, 3, e);
    for (int k = 0; k < 3; ++k) EXPECT_EQ(bits_of(y[k]), cnan);
    rms_norm(zr, 1, 3, 3, static_cast<const float*>(nullptr), 1e-5, y, 3, e);
    EXPECT_EQ(bits_of(y[0]), bits_of(-0.0f));
    EXPECT_EQ(bits_of(y[1]), 0u);
    // A constant row: LayerNorm gives b (d = 0 exactly).
    const float cr[5] = {3.0f, 3.0f, 3.0f, 3.0f, 3.0f}, wv[5] = {1, 2, 3, 4, 5}, bv[5] = {5, 4, 3, 2, 1};
    layer_norm(cr, 1, 5, 5, wv, bv, 1e-5, y, 5, e);
    for (int k = 0; k < 5; ++k) EXPECT_EQ(y[k], bv[k]);
    // NaN input: canonical NaN out whatever the payload.
    float nr[3] = {1.0f, 2.0f, 3.0f};
    const std::uint32_t neg_nan = 0xffc01234u;
    std::memcpy(&nr[1], &neg_nan, 4);
    layer_norm(nr, 1, 3, 3, static_cast<const float*>(nullptr), static_cast<const float*>(nullptr), 1e-5, y, 3, e);
    for (int k = 0; k < 3; ++k) EXPECT_EQ(bits_of(y[k]), cnan);
    rms_norm(nr, 1, 3, 3, static_cast<const float*>(nullptr), 1e-5, y, 3, e);
    for (int k = 0; k < 3; ++k) EXPECT_EQ(bits_of(y[k]), cnan);
  }
}

TEST(RowwiseOps, InPlace) {
  const std::size_t rows = 9, cols = 203, ld = 210;
  auto x = matrix<float>(rows, ld, 3, 10.0);
  std::vector<float> ref(rows * ld);
  reference::softmax(x.data(), rows, cols, ld, ref.data(), ld);
  softmax(x.data(), rows, cols, ld, x.data(), ld);
  for (std::size_t r = 0; r < rows; ++r)
    EXPECT_EQ(std::memcmp(x.data() + r * ld, ref.data() + r * ld, cols * sizeof(float)), 0);
}

TEST(Rowwise, BadInput) {
  float x[12] = {}, y[12] = {};
  const float* nul = nullptr;
  EXPECT_THROW(row_sum(x, 3, 4, 3, y), std::invalid_argument);  // ld < cols
  EXPECT_THROW(col_sum(x, 3, 4, 3, y), std::invalid_argument);
  EXPECT_THROW(row_sum(nul, 3, 4, 4, y), std::invalid_argument);
  EXPECT_THROW(col_mean(x, 3, 4, 4, static_cast<float*>(nullptr)), std::invalid_argument);
  EXPECT_THROW(softmax(x, 3, 4, 4, y, 3), std::invalid_argument);  // ldy < cols
  EXPECT_THROW(softmax(nul, 3, 4, 4, y, 4), std::invalid_argument);
  EXPECT_THROW(log_softmax(x, 3, 4, 4, static_cast<float*>(nullptr), 4), std::invalid_argument);
  EXPECT_THROW(rms_norm(x, 3, 4, 4, nul, -1.0, y, 4), std::invalid_argument);
  EXPECT_THROW(rms_norm(x, 3, 4, 4, nul, std::nan(""), y, 4), std::invalid_argument);
  EXPECT_THROW(layer_norm(x, 3, 4, 4, nul, nul, -1e-9, y, 4), std::invalid_argument);
  EXPECT_THROW(layer_norm(x, 3, 4, 2, nul, nul, 1e-5, y, 4), std::invalid_argument);
  EXPECT_THROW(row_sum(x, std::numeric_limits<std::size_t>::max() / 2, 4, 4, y), std::invalid_argument);
  EXPECT_THROW(softmax(x, 3, 4, 4, y, 4, execution{-2, isa::automatic}), std::invalid_argument);
  // Empty shapes are valid, with null pointers where nothing is read or written.
  EXPECT_NO_THROW(softmax(nul, 0, 4, 4, static_cast<float*>(nullptr), 4));
  EXPECT_NO_THROW(softmax(nul, 5, 0, 0, static_cast<float*>(nullptr), 0));
  EXPECT_NO_THROW(rms_norm(nul, 0, 0, 0, nul, 0.0, static_cast<float*>(nullptr), 0));
  EXPECT_NO_THROW(row_sum(nul, 0, 7, 7, static_cast<float*>(nullptr)));
  EXPECT_NO_THROW(col_sum(nul, 7, 0, 0, static_cast<float*>(nullptr)));
}

/// FTZ, DAZ or a directed rounding mode on the calling thread would change results: refused.
TEST(Rowwise, RefusesNonIeeeFloatingPointMode) {
  const float x[6] = {1, 2, 3, 4, 5, 6};
  float y[6];
  auto all_throw = [&] {
    EXPECT_THROW(row_sum(x, 2, 3, 3, y), fp_environment_error);
    EXPECT_THROW(col_mean(x, 2, 3, 3, y), fp_environment_error);
    EXPECT_THROW(softmax(x, 2, 3, 3, y, 3), fp_environment_error);
    EXPECT_THROW(log_softmax(x, 2, 3, 3, y, 3), fp_environment_error);
    EXPECT_THROW(rms_norm(x, 2, 3, 3, x, 1e-5, y, 3), fp_environment_error);
    EXPECT_THROW(layer_norm(x, 2, 3, 3, x, x, 1e-5, y, 3), fp_environment_error);
  };
  {
    std::fenv_t env;
    std::fegetenv(&env);
    ASSERT_EQ(std::fesetround(FE_UPWARD), 0);
    all_throw();
    std::fesetenv(&env);
  }
#if defined(__SSE2__)
  const unsigned csr = _mm_getcsr();
  _mm_setcsr(csr | 0x8000u);  // FTZ
  all_throw();
  _mm_setcsr(csr | 0x0040u);  // DAZ
  all_throw();
  _mm_setcsr(csr);
#endif
  EXPECT_NO_THROW(softmax(x, 2, 3, 3, y, 3));
}

/// Golden hashes of every op on fixed inputs, pinned to reduce_order_version: a change of any
/// bit fails here until the order version is bumped and the change is in CHANGELOG.md.
TEST(Rowwise, GoldenHashes) {
  static_assert(reduce_order_version == 1, "order version changed: update the golden hashes");
  std::vector<std::uint64_t> h;
  auto hash = [&](const auto& v) {
    h.push_back(bitexact_test::fnv1a64(v.data(), v.size() * sizeof(v[0])));
  };
  const std::size_t rows = 19, cols = 4500;
  const auto xf = matrix<float>(rows, cols, 1, 16.0);
  const auto xd = matrix<double>(rows, cols, 2, 16.0);
  const auto xb = matrix<bfloat16>(rows, cols, 3, 16.0);
  const auto wf = matrix<float>(2, cols, 4, 2.0);
  const auto wd = matrix<double>(2, cols, 5, 2.0);
  const auto wbf = matrix<bfloat16>(2, cols, 6, 2.0);
  std::vector<float> rf(rows), cf(cols), yf(rows * cols);
  std::vector<double> rd(rows), cd(cols), yd(rows * cols);
  row_sum(xf.data(), rows, cols, cols, rf.data()); hash(rf);
  col_sum(xf.data(), rows, cols, cols, cf.data()); hash(cf);
  row_sum(xd.data(), rows, cols, cols, rd.data(), tier::exact); hash(rd);
  col_mean(xd.data(), rows, cols, cols, cd.data()); hash(cd);
  row_mean(xb.data(), rows, cols, cols, rf.data()); hash(rf);
  softmax(xf.data(), rows, cols, cols, yf.data(), cols); hash(yf);
  softmax(xd.data(), rows, cols, cols, yd.data(), cols); hash(yd);
  softmax(xb.data(), rows, cols, cols, yf.data(), cols); hash(yf);
  log_softmax(xf.data(), rows, cols, cols, yf.data(), cols); hash(yf);
  log_softmax(xd.data(), rows, cols, cols, yd.data(), cols); hash(yd);
  rms_norm(xf.data(), rows, cols, cols, wf.data(), 1e-6, yf.data(), cols); hash(yf);
  rms_norm(xd.data(), rows, cols, cols, wd.data(), 1e-6, yd.data(), cols); hash(yd);
  rms_norm(xb.data(), rows, cols, cols, wbf.data(), 1e-6, yf.data(), cols); hash(yf);
  layer_norm(xf.data(), rows, cols, cols, wf.data(), wf.data() + cols, 1e-5, yf.data(), cols); hash(yf);
  layer_norm(xd.data(), rows, cols, cols, wd.data(), wd.data() + cols, 1e-5, yd.data(), cols); hash(yd);
  layer_norm(xb.data(), rows, cols, cols, wbf.data(), wbf.data() + cols, 1e-5, yf.data(), cols); hash(yf);
  std::vector<double> ex(4096);
  for (std::size_t k = 0; k < ex.size(); ++k) ex[k] = core::exp(-750.0 + 1460.0 * double(k) / 4096.0);
  hash(ex);
  const std::uint64_t all = bitexact_test::fnv1a64(h.data(), h.size() * sizeof h[0]);
  EXPECT_EQ(all, 0x3b7acfb0b5625548ull) << std::hex << "hash 0x" << all;
}

}  // namespace

// ---------------------------------------------------------------- known-answer file (order version 1)

#include "golden_file.hpp"

namespace {

// Every public op of rowwise.hpp (row_sum, row_mean, col_sum, col_mean in both tiers; softmax,
// log_softmax, rms_norm, layer_norm), float, double and bfloat16, on a strided 23 x 4500 matrix
// (rows longer than a leaf). The reference's hashes are pinned in tests/data/rowwise_golden_v1.txt
// and every fast path (default, each ISA x threads {1,2,3}, grain lowered) must match.
template <class T>
void rowwise_golden_rows(bitexact_test::golden_table& table, const char* tname, std::uint32_t tag) {
  using A = core::accumulation_t<T>;
  const std::size_t rows = 23, cols = 4500, ld = cols + 5, ldy = cols + 3;
  const auto x = bitexact_test::golden_data<T>(rows * ld, tag, 4.0, 0.25);
  const auto w = bitexact_test::golden_data<T>(cols, tag + 1, 0.5, 1.0), b = bitexact_test::golden_data<T>(cols, tag + 2);
  auto pin = [&](const std::string& name, const std::vector<A>& want, auto&& run) {
    table.add(name + "." + tname, want);
    bitexact_test::for_each_fast_path([&](const execution& e, const std::string& label) {
      std::vector<A> got(want.size(), A(7));
      run(e, got);
      EXPECT_TRUE(bitexact_test::same_bits(want, got.data(), got.size())) << name << "." << tname << " " << label;
    });
  };
  for (tier t : {tier::fixed_order, tier::exact}) {
    const bool ex = t == tier::exact;
    const std::string tn = ex ? ".exact" : ".fixed_order";
    std::vector<A> rs(rows), cs(cols), rm(rows), cm(cols);
    if (ex) {
      reference::row_sum_exact(x.data(), rows, cols, ld, rs.data());
      reference::col_sum_exact(x.data(), rows, cols, ld, cs.data());
    } else {
      reference::row_sum_fixed_order(x.data(), rows, cols, ld, rs.data());
      reference::col_sum_fixed_order(x.data(), rows, cols, ld, cs.data());
    }
    for (std::size_t r = 0; r < rows; ++r) rm[r] = reference::mean_of(rs[r], cols);
    for (std::size_t c = 0; c < cols; ++c) cm[c] = reference::mean_of(cs[c], rows);
    pin("row_sum" + tn, rs, [&](const execution& e, std::vector<A>& o) { row_sum(x.data(), rows, cols, ld, o.data(), t, e); });
    pin("col_sum" + tn, cs, [&](const execution& e, std::vector<A>& o) { col_sum(x.data(), rows, cols, ld, o.data(), t, e); });
    pin("row_mean" + tn, rm, [&](const execution& e, std::vector<A>& o) { row_mean(x.data(), rows, cols, ld, o.data(), t, e); });
    pin("col_mean" + tn, cm, [&](const execution& e, std::vector<A>& o) { col_mean(x.data(), rows, cols, ld, o.data(), t, e); });
  }
  std::vector<A> y(rows * ldy, A(7));
  reference::softmax(x.data(), rows, cols, ld, y.data(), ldy);
  pin("softmax", y, [&](const execution& e, std::vector<A>& o) { softmax(x.data(), rows, cols, ld, o.data(), ldy, e); });
  y.assign(rows * ldy, A(7));
  reference::log_softmax(x.data(), rows, cols, ld, y.data(), ldy);
  pin("log_softmax", y, [&](const execution& e, std::vector<A>& o) { log_softmax(x.data(), rows, cols, ld, o.data(), ldy, e); });
  y.assign(rows * ldy, A(7));
  reference::rms_norm(x.data(), rows, cols, ld, w.data(), A(1e-6), y.data(), ldy);
  pin("rms_norm", y, [&](const execution& e, std::vector<A>& o) { rms_norm(x.data(), rows, cols, ld, w.data(), 1e-6, o.data(), ldy, e); });
  y.assign(rows * ldy, A(7));
  reference::layer_norm(x.data(), rows, cols, ld, w.data(), b.data(), A(1e-5), y.data(), ldy);
  pin("layer_norm", y,
      [&](const execution& e, std::vector<A>& o) { layer_norm(x.data(), rows, cols, ld, w.data(), b.data(), 1e-5, o.data(), ldy, e); });
}

TEST(RowwiseGolden, EveryOpKnownAnswerFile) {
  static_assert(reduce_order_version == 1, "order version changed: write rowwise_golden_v2.txt and update CHANGELOG");
  bitexact_test::golden_table table;
  rowwise_golden_rows<float>(table, "f32", 100);
  rowwise_golden_rows<double>(table, "f64", 200);
  rowwise_golden_rows<bfloat16>(table, "bf16", 300);
  table.check("rowwise_golden_v1.txt");
}

}  // namespace
