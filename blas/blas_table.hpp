// blas_table.hpp - the function table each kernel module of libbitexact_blas exports (its one
// symbol, bitexact_blas_kernels_v1), shared by the modules and the front library. Everything is
// row-major here: the front library has already checked the BLAS arguments and mapped
// column-major calls to row-major ones (C^T = op(B)^T op(A)^T). Every function takes the ISA
// and the thread count explicitly (0 threads: BITEXACT_NUM_THREADS, else all cores) and returns
// nullptr on success or the message of the exception bitexact threw (outputs untouched).
#pragma once
#include <cstddef>

namespace bitexact_blas {
template <class T>
struct typed_v1 {
  const char* (*gemm)(int isa, int threads, int trans_a, int trans_b, std::size_t m, std::size_t n, std::size_t k,
                      T alpha, const T* a, std::size_t lda, const T* b, std::size_t ldb, T beta, T* c,
                      std::size_t ldc);
  // y = alpha op(A) x + beta y, A row-major m x n; x and y strided by the BLAS rules.
  const char* (*gemv)(int isa, int threads, int trans_a, std::size_t m, std::size_t n, T alpha, const T* a,
                      std::size_t lda, const T* x, long incx, T beta, T* y, long incy);
  const char* (*dot)(int isa, int threads, std::size_t n, const T* x, long incx, const T* y, long incy, T* r);
  const char* (*axpy)(int isa, int threads, std::size_t n, T alpha, const T* x, long incx, T* y, long incy);
  const char* (*nrm2)(int isa, int threads, std::size_t n, const T* x, long incx, T* r);
  const char* (*asum)(int isa, int threads, std::size_t n, const T* x, long incx, T* r);
};
struct kernels_v1 {
  const char* variant;  // the module's variant, e.g. "avx512"
  typed_v1<float> s;
  typed_v1<double> d;
};
}  // namespace bitexact_blas

extern "C" const bitexact_blas::kernels_v1* bitexact_blas_kernels_v1();
