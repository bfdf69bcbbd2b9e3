// blas_kernels.cpp - libbitexact_blas' kernels: compiled once per ISA variant (with that
// variant's -m flags) into its own module; exports only bitexact_blas_kernels_v1. Row-major
// calls into bitexact's public ops (the orders are stated in bitexact_blas.h).
#include <cmath>
#include <exception>
#include <string>
#include <vector>

#include <bitexact/core/gemm_order.hpp>
#include <bitexact/fp_environment.hpp>
#include <bitexact/gemm.hpp>
#include <bitexact/reduce.hpp>

#include "blas_table.hpp"

namespace {

bitexact::execution exec(int isa, int threads) { return bitexact::execution{threads, static_cast<bitexact::isa>(isa)}; }
bitexact::transpose tr(int t) { return t ? bitexact::transpose::yes : bitexact::transpose::no; }

template <class F>
const char* guarded(F&& f) {
  static thread_local std::string message;
  try {
    f();
    return nullptr;
  } catch (const std::exception& e) {
    message = e.what();
    return message.c_str();
  }
}

/// The BLAS rule for a strided vector of n elements: element i is at x[i * inc] for inc >= 0,
/// at x[(n - 1 - i) * -inc] for inc < 0 (the vector starts at the far end).
inline std::size_t at(std::size_t i, std::size_t n, long inc) {
  return inc >= 0 ? i * static_cast<std::size_t>(inc) : (n - 1 - i) * static_cast<std::size_t>(-inc);
}

/// x as a contiguous vector (the pointer itself when inc == 1; else a copy, which is exact).
template <class T, class Op>
const T* gathered(const T* x, std::size_t n, long inc, std::vector<T>& buf, Op op) {
  buf.resize(n);
  for (std::size_t i = 0; i < n; ++i) buf[i] = op(x[at(i, n, inc)]);
  return buf.data();
}
template <class T>
const T* contiguous(const T* x, std::size_t n, long inc, std::vector<T>& buf) {
  if (inc == 1) return x;
  return gathered(x, n, inc, buf, [](T v) { return v; });
}

template <class T>
const char* gemm(int isa, int threads, int ta, int tb, std::size_t m, std::size_t n, std::size_t k, T alpha,
                 const T* a, std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc) {
  return guarded([&] {
    bitexact::gemm<T>(tr(ta), tr(tb), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bitexact::tier::fixed_order,
                      exec(isa, threads));
  });
}

template <class T>
const char* gemv(int isa, int threads, int ta, std::size_t m, std::size_t n, T alpha, const T* a, std::size_t lda,
                 const T* x, long incx, T beta, T* y, long incy) {
  return guarded([&] {
    const std::size_t nx = ta ? m : n, ny = ta ? n : m;
    std::vector<T> xb, yb;
    const T* xc = contiguous(x, nx, incx, xb);
    if (incy == 1) {
      bitexact::gemv<T>(tr(ta), m, n, alpha, a, lda, xc, beta, y, bitexact::tier::fixed_order, exec(isa, threads));
      return;
    }
    yb.assign(ny, T(0));
    if (beta != T(0))  // beta == 0: y is not read (BLAS)
      for (std::size_t i = 0; i < ny; ++i) yb[i] = y[at(i, ny, incy)];
    bitexact::gemv<T>(tr(ta), m, n, alpha, a, lda, xc, beta, yb.data(), bitexact::tier::fixed_order,
                      exec(isa, threads));
    for (std::size_t i = 0; i < ny; ++i) y[at(i, ny, incy)] = yb[i];
  });
}

template <class T>
const char* dot(int isa, int threads, std::size_t n, const T* x, long incx, const T* y, long incy, T* r) {
  return guarded([&] {
    std::vector<T> xb, yb;
    const T* xc = contiguous(x, n, incx, xb);
    const T* yc = contiguous(y, n, incy, yb);
    *r = bitexact::dot(xc, yc, n, bitexact::tier::fixed_order, exec(isa, threads));
  });
}

template <class T>
const char* axpy(int, int, std::size_t n, T alpha, const T* x, long incx, T* y, long incy) {
  return guarded([&] {
    bitexact::detail::require_ieee_environment("axpy");
    // One fused multiply-add per element, in increasing logical index (which matters only
    // when incy == 0 and every update goes to one element).
    if (incx == 1 && incy == 1) {
      for (std::size_t i = 0; i < n; ++i) y[i] = bitexact::core::fused_fma(alpha, x[i], y[i]);
      return;
    }
    for (std::size_t i = 0; i < n; ++i) {
      T& yi = y[at(i, n, incy)];
      yi = bitexact::core::fused_fma(alpha, x[at(i, n, incx)], yi);
    }
  });
}

template <class T>
const char* nrm2(int isa, int threads, std::size_t n, const T* x, long incx, T* r) {
  return guarded([&] {
    std::vector<T> xb;
    *r = bitexact::norm(contiguous(x, n, incx, xb), n, bitexact::tier::fixed_order, exec(isa, threads));
  });
}

template <class T>
const char* asum(int isa, int threads, std::size_t n, const T* x, long incx, T* r) {
  return guarded([&] {
    std::vector<T> xb;
    const T* xa = gathered(x, n, incx, xb, [](T v) { return std::fabs(v); });  // |x| is exact
    *r = bitexact::sum(xa, n, bitexact::tier::fixed_order, exec(isa, threads));
  });
}

template <class T>
constexpr bitexact_blas::typed_v1<T> typed() {
  return {gemm<T>, gemv<T>, dot<T>, axpy<T>, nrm2<T>, asum<T>};
}

const bitexact_blas::kernels_v1 table = {BITEXACT_PORTABLE_VARIANT, typed<float>(), typed<double>()};

}  // namespace

extern "C" __attribute__((visibility("default"))) const bitexact_blas::kernels_v1* bitexact_blas_kernels_v1() {
  return &table;
}
