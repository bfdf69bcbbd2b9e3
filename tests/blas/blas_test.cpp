// blas_test - libbitexact_blas.so (blas/) against bitexact's ops, bit for bit:
//   * BlasC.GemmEqualsBitexact: runs the C program blas_c_test (cblas_?gemm row- and
//     column-major, ?gemm_, every transpose, alpha/beta, padded leading dimensions) and compares
//     the hash of each C with bitexact::gemm on contiguous row-major copies of the logical
//     operands (CTest runs it at BITEXACT_NUM_THREADS=1 and 2 and under each BITEXACT_ISA);
//   * every level-1 routine (CBLAS and Fortran) against its bitexact op, strides +-1, +-2, -3, 0;
//   * ?gemv both layouts and transposes with strided x and y against bitexact::gemv;
//   * every ISA the CPU has (bitexact_blas_select_isa) and threads 1, 2, 3 give the same bits;
//   * bad arguments: reference BLAS's parameter numbers and messages, outputs untouched.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>
#include <xmmintrin.h>

#include <bitexact/gemm.hpp>
#include <bitexact/reduce.hpp>

#include "bitexact_blas.h"
#include "blas_cases.h"
#include "../test_data.hpp"

namespace {

const bitexact::execution ref_exec{1, bitexact::isa::scalar};

template <class T>
uint64_t expected_gemm_hash(int i) {
  const blas_case c = blas_case_at(i);
  int oa, lda, ob, ldb, oc, ldc;
  blas_dims(&c, &oa, &lda, &ob, &ldb, &oc, &ldc);
  std::vector<T> a(std::size_t(oa) * lda), b(std::size_t(ob) * ldb), cc(std::size_t(oc) * ldc);
  for (std::size_t j = 0; j < a.size(); ++j) a[j] = T(BLAS_VALUE(T, 3 * i + 1, j));
  for (std::size_t j = 0; j < b.size(); ++j) b[j] = T(BLAS_VALUE(T, 3 * i + 2, j));
  for (std::size_t j = 0; j < cc.size(); ++j) cc[j] = T(BLAS_VALUE(T, 3 * i + 3, j));
  const bool row = c.api == 'R';
  // Element (r, col) of a stored matrix.
  auto at = [&](std::size_t r, std::size_t col, std::size_t ld) { return row ? r * ld + col : r + col * ld; };
  const std::size_t m = c.m, n = c.n, k = c.k;
  std::vector<T> A(m * k), B(k * n), C(m * n);
  for (std::size_t r = 0; r < m; ++r)
    for (std::size_t p = 0; p < k; ++p) A[r * k + p] = c.ta == 'N' ? a[at(r, p, lda)] : a[at(p, r, lda)];
  for (std::size_t p = 0; p < k; ++p)
    for (std::size_t j = 0; j < n; ++j) B[p * n + j] = c.tb == 'N' ? b[at(p, j, ldb)] : b[at(j, p, ldb)];
  for (std::size_t r = 0; r < m; ++r)
    for (std::size_t j = 0; j < n; ++j) C[r * n + j] = cc[at(r, j, ldc)];
  const T alpha = T(c.alpha), beta = T(c.beta);
  if (!((alpha == T(0) || k == 0) && beta == T(1)))  // reference BLAS's quick return
    bitexact::gemm<T>(bitexact::transpose::no, bitexact::transpose::no, m, n, k, alpha, A.data(), k, B.data(), n, beta,
                      C.data(), n, bitexact::tier::fixed_order, ref_exec);
  for (std::size_t r = 0; r < m; ++r)
    for (std::size_t j = 0; j < n; ++j) cc[at(r, j, ldc)] = C[r * n + j];
  return blas_fnv(cc.data(), cc.size() * sizeof(T));
}

TEST(BlasC, GemmEqualsBitexact) {
  // blas_c_test is built next to this binary (a name, not an absolute path: see test_data.hpp).
  const std::string prog = bitexact_test::executable_dir() + "/" + BLAS_C_TEST_NAME;
  FILE* p = popen(prog.c_str(), "r");
  ASSERT_NE(p, nullptr) << prog;
  std::map<std::string, std::string> got;
  char line[256];
  std::string tail;
  while (std::fgets(line, sizeof line, p)) {
    int i;
    char t[4], h[32];
    if (std::sscanf(line, "%d %3s %31s", &i, t, h) == 3) got[std::to_string(i) + t] = h;
    else tail = line;
  }
  EXPECT_EQ(pclose(p), 0) << "the C program reported a library error";
  std::printf("C program: %s", tail.c_str());
  ASSERT_EQ(got.size(), std::size_t(2 * blas_case_count()));
  for (int i = 0; i < blas_case_count(); ++i) {
    const blas_case c = blas_case_at(i);
    char hs[32], hd[32];
    std::snprintf(hs, sizeof hs, "%016llx", (unsigned long long)expected_gemm_hash<float>(i));
    std::snprintf(hd, sizeof hd, "%016llx", (unsigned long long)expected_gemm_hash<double>(i));
    const std::string what = std::string("case ") + std::to_string(i) + " api " + c.api + " " + c.ta + c.tb +
                             " m,n,k " + std::to_string(c.m) + "," + std::to_string(c.n) + "," + std::to_string(c.k);
    EXPECT_EQ(got[std::to_string(i) + "s"], hs) << "sgemm " << what;
    EXPECT_EQ(got[std::to_string(i) + "d"], hd) << "dgemm " << what;
  }
}

// ------------------------------------------------------------------ level 1 and gemv
template <class T>
std::vector<T> values(std::size_t n, uint64_t seed) {
  std::vector<T> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = T(BLAS_VALUE(T, seed, i) * 3.0);
  return v;
}
std::size_t span(std::size_t n, int inc) { return n == 0 ? 1 : 1 + (n - 1) * std::size_t(inc < 0 ? -inc : inc); }
std::size_t at(std::size_t i, std::size_t n, int inc) { return inc >= 0 ? i * inc : (n - 1 - i) * std::size_t(-inc); }
template <class T>
std::vector<T> logical(const std::vector<T>& x, std::size_t n, int inc) {
  std::vector<T> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = x[at(i, n, inc)];
  return out;
}
template <class T>
bool same_bits(T a, T b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

struct api1 {
  float (*sdot)(int, const float*, int, const float*, int);
  double (*ddot)(int, const double*, int, const double*, int);
  void (*saxpy)(int, float, const float*, int, float*, int);
  void (*daxpy)(int, double, const double*, int, double*, int);
  float (*snrm2)(int, const float*, int);
  double (*dnrm2)(int, const double*, int);
  float (*sasum)(int, const float*, int);
  double (*dasum)(int, const double*, int);
};
// The Fortran entries behind the CBLAS signature.
float f_sdot(int n, const float* x, int ix, const float* y, int iy) { return sdot_(&n, x, &ix, y, &iy); }
double f_ddot(int n, const double* x, int ix, const double* y, int iy) { return ddot_(&n, x, &ix, y, &iy); }
void f_saxpy(int n, float a, const float* x, int ix, float* y, int iy) { saxpy_(&n, &a, x, &ix, y, &iy); }
void f_daxpy(int n, double a, const double* x, int ix, double* y, int iy) { daxpy_(&n, &a, x, &ix, y, &iy); }
float f_snrm2(int n, const float* x, int ix) { return snrm2_(&n, x, &ix); }
double f_dnrm2(int n, const double* x, int ix) { return dnrm2_(&n, x, &ix); }
float f_sasum(int n, const float* x, int ix) { return sasum_(&n, x, &ix); }
double f_dasum(int n, const double* x, int ix) { return dasum_(&n, x, &ix); }
const api1 cblas_api{cblas_sdot, cblas_ddot, cblas_saxpy, cblas_daxpy, cblas_snrm2, cblas_dnrm2, cblas_sasum, cblas_dasum};
const api1 fortran_api{f_sdot, f_ddot, f_saxpy, f_daxpy, f_snrm2, f_dnrm2, f_sasum, f_dasum};

template <class T>
struct pick;
template <>
struct pick<float> {
  static auto dot(const api1& a) { return a.sdot; }
  static auto axpy(const api1& a) { return a.saxpy; }
  static auto nrm2(const api1& a) { return a.snrm2; }
  static auto asum(const api1& a) { return a.sasum; }
};
template <>
struct pick<double> {
  static auto dot(const api1& a) { return a.ddot; }
  static auto axpy(const api1& a) { return a.daxpy; }
  static auto nrm2(const api1& a) { return a.dnrm2; }
  static auto asum(const api1& a) { return a.dasum; }
};

template <class T>
void check_level1(const api1& api, const char* name) {
  for (std::size_t n : {std::size_t(0), std::size_t(1), std::size_t(7), std::size_t(4097), std::size_t(20011)})
    for (int incx : {1, 2, -1, -3, 0})
      for (int incy : {1, -2, 0}) {
        SCOPED_TRACE(std::string(name) + " n=" + std::to_string(n) + " incx=" + std::to_string(incx) +
                     " incy=" + std::to_string(incy));
        const std::vector<T> x = values<T>(span(n, incx), n + 11), y0 = values<T>(span(n, incy), n + 12);
        const std::vector<T> lx = logical(x, n, incx), ly = logical(y0, n, incy);
        const int ni = int(n);
        // dot = bitexact::dot of the logical vectors
        const T d = pick<T>::dot(api)(ni, x.data(), incx, y0.data(), incy);
        EXPECT_TRUE(same_bits(d, bitexact::dot(lx.data(), ly.data(), n, bitexact::tier::fixed_order, ref_exec)));
        // axpy = fma(alpha, x, y), one rounding, in increasing logical index
        std::vector<T> y = y0, ye = y0;
        const T alpha = T(-0.7109375);
        pick<T>::axpy(api)(ni, alpha, x.data(), incx, y.data(), incy);
        for (std::size_t i = 0; i < n; ++i) ye[at(i, n, incy)] = std::fma(alpha, lx[i], ye[at(i, n, incy)]);
        EXPECT_EQ(0, std::memcmp(y.data(), ye.data(), y.size() * sizeof(T)));
        if (incy != 1) continue;
        // nrm2 = bitexact::norm, asum = bitexact::sum of |x|; incx <= 0 gives 0
        std::vector<T> ax(lx);
        for (T& v : ax) v = std::fabs(v);
        const T nr = pick<T>::nrm2(api)(ni, x.data(), incx), as = pick<T>::asum(api)(ni, x.data(), incx);
        EXPECT_TRUE(same_bits(nr, incx <= 0 ? T(0) : bitexact::norm(lx.data(), n, bitexact::tier::fixed_order, ref_exec)));
        EXPECT_TRUE(same_bits(as, incx <= 0 ? T(0) : bitexact::sum(ax.data(), n, bitexact::tier::fixed_order, ref_exec)));
      }
}

template <class T>
void call_gemv(char api, char ta, int m, int n, T alpha, const T* a, int lda, const T* x, int incx, T beta, T* y,
               int incy) {
  if (api == 'F') {
    if constexpr (std::is_same_v<T, float>) sgemv_(&ta, &m, &n, &alpha, a, &lda, x, &incx, &beta, y, &incy);
    else dgemv_(&ta, &m, &n, &alpha, a, &lda, x, &incx, &beta, y, &incy);
    return;
  }
  const auto o = api == 'R' ? CblasRowMajor : CblasColMajor;
  const auto t = ta == 'N' ? CblasNoTrans : CblasTrans;
  if constexpr (std::is_same_v<T, float>) cblas_sgemv(o, t, m, n, alpha, a, lda, x, incx, beta, y, incy);
  else cblas_dgemv(o, t, m, n, alpha, a, lda, x, incx, beta, y, incy);
}

template <class T>
void check_gemv() {
  for (char api : {'R', 'C', 'F'})
    for (char ta : {'N', 'T'})
      for (auto mn : {std::pair<int, int>{300, 700}, {1, 1000}, {513, 3}})
        for (int inc : {1, -2, 3})
          for (double b : {0.0, 0.75}) {
            const int m = mn.first, n = mn.second, lda = (api == 'R' ? n : m) + 3;
            SCOPED_TRACE(std::string("gemv api ") + api + " " + ta + " m,n " + std::to_string(m) + "," +
                         std::to_string(n) + " inc " + std::to_string(inc) + " beta " + std::to_string(b));
            const std::size_t nx = ta == 'N' ? n : m, ny = ta == 'N' ? m : n;
            const std::vector<T> a = values<T>(std::size_t(lda) * (api == 'R' ? m : n), 5 + m);
            const std::vector<T> x = values<T>(span(nx, inc), 6), y0 = values<T>(span(ny, -inc), 7);
            const T alpha = T(1.25), beta = T(b);
            std::vector<T> y = y0;
            call_gemv<T>(api, ta, m, n, alpha, a.data(), lda, x.data(), inc, beta, y.data(), -inc);
            EXPECT_STREQ(bitexact_blas_last_error(), "");
            // Expected: the logical op(A) (ny x nx) contiguous, bitexact::gemv(no, ...).
            std::vector<T> L(ny * nx);
            for (std::size_t i = 0; i < ny; ++i)
              for (std::size_t j = 0; j < nx; ++j) {
                const std::size_t r = ta == 'N' ? i : j, col = ta == 'N' ? j : i;  // element (r, col) of A
                L[i * nx + j] = api == 'R' ? a[r * lda + col] : a[r + col * lda];
              }
            const std::vector<T> lx = logical(x, nx, inc);
            std::vector<T> ly = logical(y0, ny, -inc);
            bitexact::gemv<T>(bitexact::transpose::no, ny, nx, alpha, L.data(), nx, lx.data(), beta, ly.data(),
                              bitexact::tier::fixed_order, ref_exec);
            std::vector<T> ye = y0;
            for (std::size_t i = 0; i < ny; ++i) ye[at(i, ny, -inc)] = ly[i];
            EXPECT_EQ(0, std::memcmp(y.data(), ye.data(), y.size() * sizeof(T)));
          }
}

// Every ISA this CPU has (via the library's own choice) and threads 1, 2, 3.
template <class F>
void for_each_isa_and_threads(F&& f) {
  int ran = 0;
  for (const char* isa : {"scalar", "sse2", "avx2", "avx512", "neon"}) {
    if (bitexact_blas_select_isa(isa) != 0) {
      std::printf("  %s: skipped (%s)\n", isa, bitexact_blas_last_error());
      continue;
    }
    ++ran;
    for (int t : {1, 2, 3}) {
      bitexact_blas_set_num_threads(t);
      SCOPED_TRACE(std::string("isa ") + isa + " (variant " + bitexact_blas_variant() + ") threads " + std::to_string(t));
      f();
    }
  }
  bitexact_blas_set_num_threads(0);
  ASSERT_EQ(bitexact_blas_select_isa("auto"), 0);
  EXPECT_GE(ran, 2);
}

TEST(BlasLevel1, EqualsBitexactOps) {
  for_each_isa_and_threads([] {
    check_level1<float>(cblas_api, "cblas");
    check_level1<double>(cblas_api, "cblas");
    check_level1<float>(fortran_api, "fortran");
    check_level1<double>(fortran_api, "fortran");
  });
}

TEST(BlasLevel2, GemvEqualsBitexactGemv) {
  for_each_isa_and_threads([] {
    check_gemv<float>();
    check_gemv<double>();
  });
}

TEST(BlasLevel3, EveryIsaGivesBitexactGemm) {
  // A few cases of the C program's table, called from here under each ISA and thread count.
  for_each_isa_and_threads([] {
    for (int i : {0, 8, 23, 47, 53}) {
      const blas_case c = blas_case_at(i);
      int oa, lda, ob, ldb, oc, ldc;
      blas_dims(&c, &oa, &lda, &ob, &ldb, &oc, &ldc);
      std::vector<float> a(std::size_t(oa) * lda), b(std::size_t(ob) * ldb), cc(std::size_t(oc) * ldc);
      for (std::size_t j = 0; j < a.size(); ++j) a[j] = float(blas_value(3 * i + 1, j));
      for (std::size_t j = 0; j < b.size(); ++j) b[j] = float(blas_value(3 * i + 2, j));
      for (std::size_t j = 0; j < cc.size(); ++j) cc[j] = float(blas_value(3 * i + 3, j));
      const float alpha = float(c.alpha), beta = float(c.beta);
      if (c.api == 'F') sgemm_(&c.ta, &c.tb, &c.m, &c.n, &c.k, &alpha, a.data(), &lda, b.data(), &ldb, &beta, cc.data(), &ldc);
      else
        cblas_sgemm(c.api == 'R' ? CblasRowMajor : CblasColMajor, c.ta == 'N' ? CblasNoTrans : CblasTrans,
                    c.tb == 'N' ? CblasNoTrans : CblasTrans, c.m, c.n, c.k, alpha, a.data(), lda, b.data(), ldb, beta,
                    cc.data(), ldc);
      EXPECT_EQ(blas_fnv(cc.data(), cc.size() * 4), expected_gemm_hash<float>(i)) << "case " << i;
    }
  });
}

// ------------------------------------------------------------------ bad arguments
TEST(BlasErrors, ReferenceParameterNumbersAndOutputsUntouched) {
  std::vector<float> a(64, 1.0f), b(64, 2.0f), c(64, 3.0f), x(8, 1.0f), y(8, 5.0f);
  const std::vector<float> c0 = c, y0 = y;
  auto expect = [&](const char* msg) {
    EXPECT_STREQ(bitexact_blas_last_error(), msg);
    EXPECT_EQ(c, c0);
    EXPECT_EQ(y, y0);
  };
  const unsigned long long calls0 = bitexact_blas_calls("sgemm");
  // CBLAS (parameter positions of the cblas_ call, Order = 1)
  cblas_sgemm(CBLAS_ORDER(7), CblasNoTrans, CblasNoTrans, 4, 4, 4, 1, a.data(), 4, b.data(), 4, 0, c.data(), 4);
  expect("Parameter 1 to routine cblas_sgemm was incorrect");
  cblas_sgemm(CblasRowMajor, CBLAS_TRANSPOSE(0), CblasNoTrans, 4, 4, 4, 1, a.data(), 4, b.data(), 4, 0, c.data(), 4);
  expect("Parameter 2 to routine cblas_sgemm was incorrect");
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, -1, 4, 4, 1, a.data(), 4, b.data(), 4, 0, c.data(), 4);
  expect("Parameter 4 to routine cblas_sgemm was incorrect");
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 4, 4, 5, 1, a.data(), 4, b.data(), 4, 0, c.data(), 4);
  expect("Parameter 9 to routine cblas_sgemm was incorrect");  // row-major A is 4 x 5: lda >= 5
  cblas_sgemm(CblasColMajor, CblasNoTrans, CblasTrans, 4, 5, 4, 1, a.data(), 4, b.data(), 4, 0, c.data(), 4);
  expect("Parameter 11 to routine cblas_sgemm was incorrect");  // column-major B^T stored 5 x 4: ldb >= 5
  cblas_sgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, 5, 4, 4, 1, a.data(), 5, b.data(), 4, 0, c.data(), 4);
  expect("Parameter 14 to routine cblas_sgemm was incorrect");
  cblas_sgemv(CblasRowMajor, CblasNoTrans, 4, 4, 1, a.data(), 4, x.data(), 0, 0, y.data(), 1);
  expect("Parameter 9 to routine cblas_sgemv was incorrect");
  cblas_sgemv(CblasColMajor, CblasTrans, 4, 4, 1, a.data(), 3, x.data(), 1, 0, y.data(), 1);
  expect("Parameter 7 to routine cblas_sgemv was incorrect");
  // Fortran (reference BLAS's INFO and XERBLA message)
  const int four = 4, three = 3, minus = -1, zero = 0;
  const float one = 1, nul = 0;
  sgemm_("X", "N", &four, &four, &four, &one, a.data(), &four, b.data(), &four, &nul, c.data(), &four);
  expect(" ** On entry to SGEMM  parameter number  1 had an illegal value");
  sgemm_("N", "N", &four, &minus, &four, &one, a.data(), &four, b.data(), &four, &nul, c.data(), &four);
  expect(" ** On entry to SGEMM  parameter number  4 had an illegal value");
  sgemm_("T", "N", &four, &four, &four, &one, a.data(), &three, b.data(), &four, &nul, c.data(), &four);
  expect(" ** On entry to SGEMM  parameter number  8 had an illegal value");
  sgemm_("N", "t", &four, &four, &four, &one, a.data(), &four, b.data(), &three, &nul, c.data(), &four);
  expect(" ** On entry to SGEMM  parameter number 10 had an illegal value");
  sgemm_("N", "N", &four, &four, &four, &one, a.data(), &four, b.data(), &four, &nul, c.data(), &three);
  expect(" ** On entry to SGEMM  parameter number 13 had an illegal value");
  sgemv_("N", &four, &four, &one, a.data(), &four, x.data(), &four, &nul, y.data(), &zero);
  expect(" ** On entry to SGEMV  parameter number 11 had an illegal value");
  EXPECT_EQ(bitexact_blas_calls("sgemm"), calls0 + 11);
  // Errors bitexact reports: C overlapping A; FTZ on the calling thread.
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 4, 4, 4, 1, c.data(), 4, b.data(), 4, 0, c.data() + 8, 4);
  EXPECT_NE(std::string(bitexact_blas_last_error()).find("bitexact_blas: sgemm: "), std::string::npos);
  EXPECT_NE(std::string(bitexact_blas_last_error()).find("overlaps"), std::string::npos);
  EXPECT_EQ(c, c0);
  const unsigned mxcsr = _mm_getcsr();
  _mm_setcsr(mxcsr | 0x8040);  // FTZ | DAZ
  cblas_saxpy(8, 2.0f, x.data(), 1, y.data(), 1);
  const float d = cblas_sdot(8, x.data(), 1, y.data(), 1);
  _mm_setcsr(mxcsr);
  EXPECT_NE(std::string(bitexact_blas_last_error()).find("bitexact_blas: sdot: "), std::string::npos);
  EXPECT_EQ(d, 0.0f);
  EXPECT_EQ(y, y0);  // axpy refused too
  // A good call clears the message.
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 4, 4, 4, 1, a.data(), 4, b.data(), 4, 0, c.data(), 4);
  EXPECT_STREQ(bitexact_blas_last_error(), "");
  EXPECT_EQ(c[0], 8.0f);
}

}  // namespace
