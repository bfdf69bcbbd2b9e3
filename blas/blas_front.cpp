// blas_front.cpp - libbitexact_blas.so, the front library: compiled for the baseline ISA, no
// arithmetic. It checks the BLAS arguments (reference BLAS's rules and parameter numbers), maps
// column-major calls to row-major ones, picks the kernel module (bitexact::portable::dispatcher)
// and forwards each call with the ISA and thread count. Orders and rules: bitexact_blas.h.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include <bitexact/portable/dispatch.hpp>

#include "bitexact_blas.h"
#include "blas_table.hpp"

namespace {

enum routine { sgemm, dgemm, sgemv, dgemv, sdot, ddot, saxpy, daxpy, snrm2, dnrm2, sasum, dasum, n_routines };
const char* const routine_names[n_routines] = {"sgemm", "dgemm", "sgemv", "dgemv", "sdot",  "ddot",
                                               "saxpy", "daxpy", "snrm2", "dnrm2", "sasum", "dasum"};

thread_local std::string g_error;

struct state {
  bitexact::portable::dispatcher d{BITEXACT_PORTABLE_MODULE_PREFIX, BITEXACT_PORTABLE_VARIANTS,
                                   BITEXACT_PORTABLE_ENTRY, reinterpret_cast<const void*>(&bitexact_blas_isa)};
  std::atomic<int> isa{0};
  std::atomic<const bitexact_blas::kernels_v1*> k{nullptr};
  std::atomic<int> threads{0};
  std::atomic<unsigned long long> calls[n_routines] = {};
};

state& st() {
  static state s;
  return s;
}

void report(const std::string& m) {
  g_error = m;
  std::fprintf(stderr, "%s\n", m.c_str());
}

int choose(bitexact::isa requested) {
  try {
    state& s = st();
    const bitexact::isa i = s.d.resolve(requested);
    using entry_fn = const bitexact_blas::kernels_v1* (*)();
    const auto* k = reinterpret_cast<entry_fn>(s.d.entry_for(i))();
    s.isa.store(static_cast<int>(i));
    s.k.store(k);
    return 0;
  } catch (const std::exception& e) {
    report(std::string("bitexact_blas: ") + e.what());
    return -1;
  }
}

const bitexact_blas::kernels_v1* kernels() {
  if (st().k.load() == nullptr && choose(bitexact::isa::automatic) != 0) return nullptr;
  return st().k.load();
}

// The kernels of T, counting the call; nullptr (after a message) when no module loads.
template <class T>
const bitexact_blas::typed_v1<T>* typed(routine r) {
  st().calls[r].fetch_add(1, std::memory_order_relaxed);
  g_error.clear();
  const auto* k = kernels();
  if (k == nullptr) return nullptr;
  if constexpr (std::is_same_v<T, float>) return &k->s;
  else return &k->d;
}
int isa_arg() { return st().isa.load(); }
int threads_arg() { return st().threads.load(); }

void done(routine r, const char* err) {
  if (err != nullptr) report(std::string("bitexact_blas: ") + routine_names[r] + ": " + err);
}

// Reference XERBLA's message (Fortran entries) and cblas_xerbla's (CBLAS entries).
void xerbla(routine r, int info) {
  char name[8];
  std::snprintf(name, sizeof name, "%s", routine_names[r]);
  for (char* p = name; *p; ++p) *p = static_cast<char>(*p - ('a' <= *p && *p <= 'z' ? 'a' - 'A' : 0));
  char buf[128];
  std::snprintf(buf, sizeof buf, " ** On entry to %-6s parameter number %2d had an illegal value", name, info);
  report(buf);
}
void cblas_xerbla(routine r, int param) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "Parameter %d to routine cblas_%s was incorrect", param, routine_names[r]);
  report(buf);
}

bool lsame(const char* c, char upper) { return c != nullptr && (*c == upper || *c == upper - 'A' + 'a'); }
// Fortran TRANS: 0 no, 1 yes, -1 invalid.
int fortran_trans(const char* c) {
  if (lsame(c, 'N')) return 0;
  if (lsame(c, 'T') || lsame(c, 'C')) return 1;
  return -1;
}
int cblas_trans(int t) { return t == CblasNoTrans ? 0 : (t == CblasTrans || t == CblasConjTrans) ? 1 : -1; }

using idx = std::size_t;

// ------------------------------------------------------------------ gemm
// Row-major: C (m x n) = alpha op(A) op(B) + beta C.
template <class T>
void gemm_rm(routine r, int ta, int tb, int m, int n, int k, T alpha, const T* a, int lda, const T* b, int ldb,
             T beta, T* c, int ldc) {
  const auto* f = typed<T>(r);
  if (f == nullptr) return;
  if (m == 0 || n == 0 || ((alpha == T(0) || k == 0) && beta == T(1))) return;  // reference BLAS quick return
  done(r, f->gemm(isa_arg(), threads_arg(), ta, tb, idx(m), idx(n), idx(k), alpha, a, idx(lda), b, idx(ldb), beta, c,
                  idx(ldc)));
}

template <class T>
void cblas_gemm(routine r, int order, int tra, int trb, int m, int n, int k, T alpha, const T* a, int lda, const T* b,
                int ldb, T beta, T* c, int ldc) {
  const int ta = cblas_trans(tra), tb = cblas_trans(trb);
  const bool row = order == CblasRowMajor;
  int bad = 0;
  if (order != CblasRowMajor && order != CblasColMajor) bad = 1;
  else if (ta < 0) bad = 2;
  else if (tb < 0) bad = 3;
  else if (m < 0) bad = 4;
  else if (n < 0) bad = 5;
  else if (k < 0) bad = 6;
  else if (lda < std::max(1, row ? (ta ? m : k) : (ta ? k : m))) bad = 9;
  else if (ldb < std::max(1, row ? (tb ? k : n) : (tb ? n : k))) bad = 11;
  else if (ldc < std::max(1, row ? n : m)) bad = 14;
  if (bad) {
    st().calls[r].fetch_add(1, std::memory_order_relaxed);
    return cblas_xerbla(r, bad);
  }
  if (row) gemm_rm(r, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  else gemm_rm(r, tb, ta, n, m, k, alpha, b, ldb, a, lda, beta, c, ldc);  // C^T = op(B)^T op(A)^T
}

template <class T>
void fortran_gemm(routine r, const char* tra, const char* trb, const int* m, const int* n, const int* k,
                  const T* alpha, const T* a, const int* lda, const T* b, const int* ldb, const T* beta, T* c,
                  const int* ldc) {
  const int ta = fortran_trans(tra), tb = fortran_trans(trb);
  int bad = 0;
  if (ta < 0) bad = 1;
  else if (tb < 0) bad = 2;
  else if (*m < 0) bad = 3;
  else if (*n < 0) bad = 4;
  else if (*k < 0) bad = 5;
  else if (*lda < std::max(1, ta ? *k : *m)) bad = 8;
  else if (*ldb < std::max(1, tb ? *n : *k)) bad = 10;
  else if (*ldc < std::max(1, *m)) bad = 13;
  if (bad) {
    st().calls[r].fetch_add(1, std::memory_order_relaxed);
    return xerbla(r, bad);
  }
  gemm_rm(r, tb, ta, *n, *m, *k, *alpha, b, *ldb, a, *lda, *beta, c, *ldc);  // column-major
}

// ------------------------------------------------------------------ gemv
// Row-major A (m x n).
template <class T>
void gemv_rm(routine r, int ta, int m, int n, T alpha, const T* a, int lda, const T* x, int incx, T beta, T* y,
             int incy) {
  const auto* f = typed<T>(r);
  if (f == nullptr) return;
  if (m == 0 || n == 0 || (alpha == T(0) && beta == T(1))) return;
  done(r, f->gemv(isa_arg(), threads_arg(), ta, idx(m), idx(n), alpha, a, idx(lda), x, incx, beta, y, incy));
}

template <class T>
void cblas_gemv(routine r, int order, int tra, int m, int n, T alpha, const T* a, int lda, const T* x, int incx,
                T beta, T* y, int incy) {
  const int ta = cblas_trans(tra);
  const bool row = order == CblasRowMajor;
  int bad = 0;
  if (order != CblasRowMajor && order != CblasColMajor) bad = 1;
  else if (ta < 0) bad = 2;
  else if (m < 0) bad = 3;
  else if (n < 0) bad = 4;
  else if (lda < std::max(1, row ? n : m)) bad = 7;
  else if (incx == 0) bad = 9;
  else if (incy == 0) bad = 12;
  if (bad) {
    st().calls[r].fetch_add(1, std::memory_order_relaxed);
    return cblas_xerbla(r, bad);
  }
  if (row) gemv_rm(r, ta, m, n, alpha, a, lda, x, incx, beta, y, incy);
  else gemv_rm(r, 1 - ta, n, m, alpha, a, lda, x, incx, beta, y, incy);  // column-major A = row-major A^T
}

template <class T>
void fortran_gemv(routine r, const char* tra, const int* m, const int* n, const T* alpha, const T* a, const int* lda,
                  const T* x, const int* incx, const T* beta, T* y, const int* incy) {
  const int ta = fortran_trans(tra);
  int bad = 0;
  if (ta < 0) bad = 1;
  else if (*m < 0) bad = 2;
  else if (*n < 0) bad = 3;
  else if (*lda < std::max(1, *m)) bad = 6;
  else if (*incx == 0) bad = 8;
  else if (*incy == 0) bad = 11;
  if (bad) {
    st().calls[r].fetch_add(1, std::memory_order_relaxed);
    return xerbla(r, bad);
  }
  gemv_rm(r, 1 - ta, *n, *m, *alpha, a, *lda, x, *incx, *beta, y, *incy);
}

// ------------------------------------------------------------------ level 1
template <class T>
T dot(routine r, int n, const T* x, int incx, const T* y, int incy) {
  const auto* f = typed<T>(r);
  T res = T(0);
  if (f == nullptr || n <= 0) return res;
  done(r, f->dot(isa_arg(), threads_arg(), idx(n), x, incx, y, incy, &res));
  return res;
}
template <class T>
void axpy(routine r, int n, T alpha, const T* x, int incx, T* y, int incy) {
  const auto* f = typed<T>(r);
  if (f == nullptr || n <= 0 || alpha == T(0)) return;
  done(r, f->axpy(isa_arg(), threads_arg(), idx(n), alpha, x, incx, y, incy));
}
template <class T>
T nrm2(routine r, int n, const T* x, int incx) {
  const auto* f = typed<T>(r);
  T res = T(0);
  if (f == nullptr || n <= 0 || incx <= 0) return res;
  done(r, f->nrm2(isa_arg(), threads_arg(), idx(n), x, incx, &res));
  return res;
}
template <class T>
T asum(routine r, int n, const T* x, int incx) {
  const auto* f = typed<T>(r);
  T res = T(0);
  if (f == nullptr || n <= 0 || incx <= 0) return res;
  done(r, f->asum(isa_arg(), threads_arg(), idx(n), x, incx, &res));
  return res;
}

}  // namespace

#define BX_API extern "C" __attribute__((visibility("default")))

// ------------------------------------------------------------------ the library's own C ABI
BX_API unsigned long long bitexact_blas_calls(const char* name) {
  unsigned long long total = 0;
  for (int i = 0; i < n_routines; ++i)
    if (name == nullptr || std::strcmp(name, routine_names[i]) == 0) total += st().calls[i].load();
  return total;
}
BX_API const char* bitexact_blas_isa(void) {
  return kernels() ? bitexact::isa_name(static_cast<bitexact::isa>(st().isa.load())) : "none";
}
BX_API const char* bitexact_blas_variant(void) {
  const auto* k = kernels();
  return k ? k->variant : "none";
}
BX_API int bitexact_blas_select_isa(const char* isa) {
  try {
    return choose(bitexact::parse_isa(isa == nullptr ? "" : isa));
  } catch (const std::exception& e) {
    report(std::string("bitexact_blas: ") + e.what());
    return -1;
  }
}
BX_API void bitexact_blas_set_num_threads(int threads) { st().threads.store(threads < 0 ? 0 : threads); }
BX_API int bitexact_blas_get_num_threads(void) { return st().threads.load(); }
BX_API const char* bitexact_blas_last_error(void) { return g_error.c_str(); }

// ------------------------------------------------------------------ CBLAS
BX_API void cblas_sgemm(CBLAS_ORDER o, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, float alpha,
                        const float* a, int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  cblas_gemm<float>(sgemm, o, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
BX_API void cblas_dgemm(CBLAS_ORDER o, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, double alpha,
                        const double* a, int lda, const double* b, int ldb, double beta, double* c, int ldc) {
  cblas_gemm<double>(dgemm, o, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
BX_API void cblas_sgemv(CBLAS_ORDER o, CBLAS_TRANSPOSE ta, int m, int n, float alpha, const float* a, int lda,
                        const float* x, int incx, float beta, float* y, int incy) {
  cblas_gemv<float>(sgemv, o, ta, m, n, alpha, a, lda, x, incx, beta, y, incy);
}
BX_API void cblas_dgemv(CBLAS_ORDER o, CBLAS_TRANSPOSE ta, int m, int n, double alpha, const double* a, int lda,
                        const double* x, int incx, double beta, double* y, int incy) {
  cblas_gemv<double>(dgemv, o, ta, m, n, alpha, a, lda, x, incx, beta, y, incy);
}
BX_API float cblas_sdot(int n, const float* x, int incx, const float* y, int incy) { return dot(sdot, n, x, incx, y, incy); }
BX_API double cblas_ddot(int n, const double* x, int incx, const double* y, int incy) {
  return dot(ddot, n, x, incx, y, incy);
}
BX_API void cblas_saxpy(int n, float alpha, const float* x, int incx, float* y, int incy) {
  axpy(saxpy, n, alpha, x, incx, y, incy);
}
BX_API void cblas_daxpy(int n, double alpha, const double* x, int incx, double* y, int incy) {
  axpy(daxpy, n, alpha, x, incx, y, incy);
}
BX_API float cblas_snrm2(int n, const float* x, int incx) { return nrm2(snrm2, n, x, incx); }
BX_API double cblas_dnrm2(int n, const double* x, int incx) { return nrm2(dnrm2, n, x, incx); }
BX_API float cblas_sasum(int n, const float* x, int incx) { return asum(sasum, n, x, incx); }
BX_API double cblas_dasum(int n, const double* x, int incx) { return asum(dasum, n, x, incx); }

// ------------------------------------------------------------------ Fortran (column-major)
BX_API void sgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k, const float* alpha,
                   const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c,
                   const int* ldc) {
  fortran_gemm<float>(sgemm, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
BX_API void dgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k, const double* alpha,
                   const double* a, const int* lda, const double* b, const int* ldb, const double* beta, double* c,
                   const int* ldc) {
  fortran_gemm<double>(dgemm, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
BX_API void sgemv_(const char* ta, const int* m, const int* n, const float* alpha, const float* a, const int* lda,
                   const float* x, const int* incx, const float* beta, float* y, const int* incy) {
  fortran_gemv<float>(sgemv, ta, m, n, alpha, a, lda, x, incx, beta, y, incy);
}
BX_API void dgemv_(const char* ta, const int* m, const int* n, const double* alpha, const double* a, const int* lda,
                   const double* x, const int* incx, const double* beta, double* y, const int* incy) {
  fortran_gemv<double>(dgemv, ta, m, n, alpha, a, lda, x, incx, beta, y, incy);
}
BX_API float sdot_(const int* n, const float* x, const int* incx, const float* y, const int* incy) {
  return dot(sdot, *n, x, *incx, y, *incy);
}
BX_API double ddot_(const int* n, const double* x, const int* incx, const double* y, const int* incy) {
  return dot(ddot, *n, x, *incx, y, *incy);
}
BX_API void saxpy_(const int* n, const float* alpha, const float* x, const int* incx, float* y, const int* incy) {
  axpy(saxpy, *n, *alpha, x, *incx, y, *incy);
}
BX_API void daxpy_(const int* n, const double* alpha, const double* x, const int* incx, double* y, const int* incy) {
  axpy(daxpy, *n, *alpha, x, *incx, y, *incy);
}
BX_API float snrm2_(const int* n, const float* x, const int* incx) { return nrm2(snrm2, *n, x, *incx); }
BX_API double dnrm2_(const int* n, const double* x, const int* incx) { return nrm2(dnrm2, *n, x, *incx); }
BX_API float sasum_(const int* n, const float* x, const int* incx) { return asum(sasum, *n, x, *incx); }
BX_API double dasum_(const int* n, const double* x, const int* incx) { return asum(dasum, *n, x, *incx); }
