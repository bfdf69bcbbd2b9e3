/* blas_c_test.c - a C program (compiled as C) linked against libbitexact_blas.so: for every case
 * of blas_cases.h it calls cblas_sgemm/cblas_dgemm (row- and column-major) or sgemm_/dgemm_
 * (Fortran), and prints "<case> <s|d> <hash of the whole stored C, padding included>".
 * blas_test.cpp runs it (at BITEXACT_NUM_THREADS=1 and 2, every ISA) and compares each hash
 * with bitexact::gemm's. Exit status 1 if the library reports an error. */
#include <stdio.h>
#include <stdlib.h>

#include "bitexact_blas.h"
#include "blas_cases.h"

#define RUN(T, PREFIX, GEMM_F)                                                                          \
  do {                                                                                                \
    T* a = (T*)malloc(sizeof(T) * (size_t)oa * (size_t)lda);                                          \
    T* b = (T*)malloc(sizeof(T) * (size_t)ob * (size_t)ldb);                                          \
    T* cc = (T*)malloc(sizeof(T) * (size_t)oc * (size_t)ldc);                                         \
    for (size_t j = 0; j < (size_t)oa * (size_t)lda; ++j) a[j] = (T)BLAS_VALUE(T, 3 * i + 1, j);         \
    for (size_t j = 0; j < (size_t)ob * (size_t)ldb; ++j) b[j] = (T)BLAS_VALUE(T, 3 * i + 2, j);         \
    for (size_t j = 0; j < (size_t)oc * (size_t)ldc; ++j) cc[j] = (T)BLAS_VALUE(T, 3 * i + 3, j);        \
    T alpha = (T)c.alpha, beta = (T)c.beta;                                                           \
    if (c.api == 'F') {                                                                               \
      GEMM_F(&c.ta, &c.tb, &c.m, &c.n, &c.k, &alpha, a, &lda, b, &ldb, &beta, cc, &ldc);               \
    } else {                                                                                          \
      PREFIX(c.api == 'R' ? CblasRowMajor : CblasColMajor, c.ta == 'N' ? CblasNoTrans : CblasTrans,   \
             c.tb == 'N' ? CblasNoTrans : CblasTrans, c.m, c.n, c.k, alpha, a, lda, b, ldb, beta, cc, \
             ldc);                                                                                    \
    }                                                                                                 \
    if (bitexact_blas_last_error()[0] != '\0') failures++;                                            \
    printf("%d %s %016llx\n", i, sizeof(T) == 4 ? "s" : "d",                                          \
           (unsigned long long)blas_fnv(cc, sizeof(T) * (size_t)oc * (size_t)ldc));                    \
    free(a);                                                                                          \
    free(b);                                                                                          \
    free(cc);                                                                                         \
  } while (0)

int main(void) {
  int failures = 0;
  for (int i = 0; i < blas_case_count(); ++i) {
    blas_case c = blas_case_at(i);
    int oa, lda, ob, ldb, oc, ldc;
    blas_dims(&c, &oa, &lda, &ob, &ldb, &oc, &ldc);
    RUN(float, cblas_sgemm, sgemm_);
    RUN(double, cblas_dgemm, dgemm_);
  }
  printf("isa %s calls %llu\n", bitexact_blas_isa(), bitexact_blas_calls(NULL));
  return failures ? 1 : 0;
}
