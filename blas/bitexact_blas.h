/* bitexact_blas.h - libbitexact_blas.so: the CBLAS and Fortran BLAS symbols of a few routines
 * with bitexact's fixed_order bits, for programs you cannot change (LD_PRELOAD or Debian's
 * update-alternatives for libblas.so.3; README, "Deterministic BLAS for programs you cannot
 * change"). The standard routines are declared by your cblas.h; this header declares the
 * library's own extras (and the CBLAS prototypes, for C programs without a cblas.h).
 *
 * The order of each routine (the bits are those of the named bitexact op, tier::fixed_order;
 * any thread count, ISA, alignment or stride gives the same bits):
 *   ?gemm  bitexact::gemm. Row-major calls map directly; column-major ones through the
 *          transpose identity C^T = op(B)^T op(A)^T: gemm(tb, ta, n, m, k, alpha, B, ldb, A, lda,
 *          beta, C, ldc) on the row-major view, whose element order is the same (a fused FMA's
 *          product is symmetric). Each C[i][j]: K in chunks of 256, a chain of fused FMAs from +0
 *          per chunk, chunks folded left to right, then alpha * S, then fma(beta, C, t) (beta == 0:
 *          C is not read). Kept from reference BLAS: the quick return (C untouched) when m == 0,
 *          n == 0, or (alpha == 0 or k == 0) and beta == 1. Trans and ConjTrans are the same.
 *   ?gemv  bitexact::gemv (the gemm order with x as a one-row matrix); strided x and y are
 *          gathered (exact copies) first. Quick return as reference BLAS (m or n == 0, or
 *          alpha == 0 and beta == 1); beta == 0: y is not read.
 *   ?dot   bitexact::dot: products rounded, then summed in the canonical reduction tree (a
 *          multiply then an add, never fused); n <= 0: 0.
 *   ?axpy  elementwise y[i] = fma(alpha, x[i], y[i]): ONE rounding (a fused multiply-add), in
 *          increasing logical index. n <= 0 or alpha == 0: y untouched (reference BLAS).
 *   ?nrm2  bitexact::norm = sqrt(bitexact::dot(x, x)) (IEEE sqrt). No scaling: a sum of squares
 *          beyond the type's range gives Inf, as bitexact::norm does. n <= 0 or incx <= 0: 0.
 *   ?asum  bitexact::sum of |x[i]|. n <= 0 or incx <= 0: 0.
 * Strides: incx/incy < 0 walk the vector from its far end (element i at x[(n-1-i)*|inc|]), as
 * BLAS defines; inc == 0 repeats one element (gemv: an error, as in reference BLAS).
 *
 * Bad arguments: reference BLAS's checks and parameter numbers; the library prints the message
 * of reference XERBLA (Fortran: " ** On entry to SGEMM  parameter number  8 had an illegal
 * value") or of cblas_xerbla (CBLAS: "Parameter 9 to routine cblas_sgemm was incorrect", CBLAS
 * argument positions, Order = 1) to stderr and returns with the outputs untouched (OpenBLAS
 * behaviour; reference XERBLA would stop the program). An error that bitexact itself reports
 * (C overlapping A or B; the calling thread in FTZ/DAZ or a directed rounding mode) is printed
 * as "bitexact_blas: <routine>: <message>", outputs untouched. bitexact_blas_last_error() gives
 * the calling thread's last message.
 *
 * Threads: BITEXACT_NUM_THREADS (read once), else bitexact_blas_set_num_threads(), else every
 * core; OPENBLAS_NUM_THREADS / OMP_NUM_THREADS are NOT read (the thread count never changes a
 * bit, so only the speed is at stake). ISA: BITEXACT_ISA, else the best this CPU has among the
 * kernel modules built (sse2, avx2, avx512 on x86-64; neon on aarch64), chosen at load time.
 */
#ifndef BITEXACT_BLAS_H
#define BITEXACT_BLAS_H
#ifdef __cplusplus
extern "C" {
#endif

/* Calls counted since the library was loaded: routine names without prefix or suffix ("sgemm",
 * "ddot", ...; CBLAS and Fortran entries together) or NULL for all. Lets a test prove that a
 * program really reached this library. */
unsigned long long bitexact_blas_calls(const char* routine);
/* The ISA (e.g. "avx512") and kernel module variant running, or "none". */
const char* bitexact_blas_isa(void);
const char* bitexact_blas_variant(void);
/* Choose an ISA ("scalar", "sse2", "avx2", "avx512", "neon", "auto"); 0 on success, else -1. */
int bitexact_blas_select_isa(const char* isa);
/* Threads for later calls (0: BITEXACT_NUM_THREADS, else every core). */
void bitexact_blas_set_num_threads(int threads);
int bitexact_blas_get_num_threads(void);
/* The calling thread's last error message, or "" if none. */
const char* bitexact_blas_last_error(void);

#ifndef BITEXACT_BLAS_NO_CBLAS_DECLS
#if !defined(CBLAS_H) && !defined(CBLAS_ENUM_DEFINED_H)
enum CBLAS_ORDER { CblasRowMajor = 101, CblasColMajor = 102 };
enum CBLAS_TRANSPOSE { CblasNoTrans = 111, CblasTrans = 112, CblasConjTrans = 113 };
void cblas_sgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int m, int n, int k,
                 float alpha, const float* a, int lda, const float* b, int ldb, float beta, float* c, int ldc);
void cblas_dgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int m, int n, int k,
                 double alpha, const double* a, int lda, const double* b, int ldb, double beta, double* c, int ldc);
void cblas_sgemv(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, int m, int n, float alpha, const float* a, int lda,
                 const float* x, int incx, float beta, float* y, int incy);
void cblas_dgemv(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, int m, int n, double alpha, const double* a,
                 int lda, const double* x, int incx, double beta, double* y, int incy);
float cblas_sdot(int n, const float* x, int incx, const float* y, int incy);
double cblas_ddot(int n, const double* x, int incx, const double* y, int incy);
void cblas_saxpy(int n, float alpha, const float* x, int incx, float* y, int incy);
void cblas_daxpy(int n, double alpha, const double* x, int incx, double* y, int incy);
float cblas_snrm2(int n, const float* x, int incx);
double cblas_dnrm2(int n, const double* x, int incx);
float cblas_sasum(int n, const float* x, int incx);
double cblas_dasum(int n, const double* x, int incx);
#endif
/* Fortran (gfortran ABI: by reference, 32-bit INTEGER; hidden character lengths ignored). */
void sgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k, const float* alpha,
            const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c,
            const int* ldc);
void dgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k, const double* alpha,
            const double* a, const int* lda, const double* b, const int* ldb, const double* beta, double* c,
            const int* ldc);
void sgemv_(const char* ta, const int* m, const int* n, const float* alpha, const float* a, const int* lda,
            const float* x, const int* incx, const float* beta, float* y, const int* incy);
void dgemv_(const char* ta, const int* m, const int* n, const double* alpha, const double* a, const int* lda,
            const double* x, const int* incx, const double* beta, double* y, const int* incy);
float sdot_(const int* n, const float* x, const int* incx, const float* y, const int* incy);
double ddot_(const int* n, const double* x, const int* incx, const double* y, const int* incy);
void saxpy_(const int* n, const float* alpha, const float* x, const int* incx, float* y, const int* incy);
void daxpy_(const int* n, const double* alpha, const double* x, const int* incx, double* y, const int* incy);
float snrm2_(const int* n, const float* x, const int* incx);
double dnrm2_(const int* n, const double* x, const int* incx);
float sasum_(const int* n, const float* x, const int* incx);
double dasum_(const int* n, const double* x, const int* incx);
#endif

#ifdef __cplusplus
}
#endif
#endif
