/* blas_cases.h - the GEMM cases shared by blas_c_test.c (which calls libbitexact_blas through
 * cblas_?gemm and ?gemm_ and prints a hash of each C) and blas_test.cpp (which computes the same
 * cases with bitexact::gemm on contiguous row-major copies of the logical operands). C and C++. */
#ifndef BITEXACT_TESTS_BLAS_CASES_H
#define BITEXACT_TESTS_BLAS_CASES_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* api: 'R' cblas row-major, 'C' cblas column-major, 'F' Fortran (column-major). */
typedef struct {
  char api, ta, tb; /* ta, tb: 'N' or 'T' */
  int m, n, k;
  double alpha, beta;
  int pad; /* added to every leading dimension */
} blas_case;

static const int blas_shapes[][3] = {{67, 300, 600}, {1, 513, 257}, {130, 1, 1000}, {257, 129, 300}, {5, 7, 3}};
static const double blas_scalars[][2] = {{1.0, 0.0}, {0.5, -1.25}, {-2.0, 1.0}, {0.0, 0.5}, {1.5, 1.0}};

/* Case i of blas_case_count(): every api x ta x tb x shape, scalars and padding cycling. */
static inline int blas_case_count(void) { return 3 * 2 * 2 * 5; }
static inline blas_case blas_case_at(int i) {
  blas_case c;
  const int s = i % 5, t = (i / 5) % 4, a = i / 20;
  c.api = "RCF"[a];
  c.ta = (t & 1) ? 'T' : 'N';
  c.tb = (t & 2) ? 'T' : 'N';
  c.m = blas_shapes[s][0];
  c.n = blas_shapes[s][1];
  c.k = blas_shapes[s][2];
  c.alpha = blas_scalars[(i + i / 5) % 5][0];
  c.beta = blas_scalars[(i + i / 5) % 5][1];
  c.pad = i % 3;
  return c;
}

/* Storage of one operand: `outer` lines of `inner` elements, leading dimension inner + pad.
 * Row-major stores rows; column-major stores columns. rows x cols is the stored matrix. */
static inline void blas_storage(const blas_case* c, int rows, int cols, int* outer, int* ld) {
  const int row_major = c->api == 'R';
  *outer = row_major ? rows : cols;
  *ld = (row_major ? cols : rows) + c->pad;
  if (*ld < 1) *ld = 1;
}
/* Stored shapes: A is m x k (ta 'N') or k x m; B is k x n or n x k; C is m x n. */
static inline void blas_dims(const blas_case* c, int* oa, int* lda, int* ob, int* ldb, int* oc, int* ldc) {
  blas_storage(c, c->ta == 'N' ? c->m : c->k, c->ta == 'N' ? c->k : c->m, oa, lda);
  blas_storage(c, c->tb == 'N' ? c->k : c->n, c->tb == 'N' ? c->n : c->k, ob, ldb);
  blas_storage(c, c->m, c->n, oc, ldc);
}

/* Values in [-1, 1) with 20 significant bits (exact in float): a 64-bit LCG keyed by seed. */
static inline double blas_value(uint64_t seed, size_t i) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + (uint64_t)i * 0xD1B54A32D192ED03ull + 1;
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 29;
  return (double)(int64_t)((x >> 44) & 0xFFFFF) / 524288.0 - 1.0;
}
/* Doubles with about 42 significant bits, so products and sums round (20-bit values would make
 * every dgemm here exact, and any order would give the same bits). */
static inline double blas_value_d(uint64_t seed, size_t i) {
  return blas_value(seed, i) + blas_value(seed ^ 0x5555u, i) / 4194304.0;
}
#define BLAS_VALUE(T, seed, i) (sizeof(T) == 8 ? blas_value_d(seed, i) : blas_value(seed, i))
static inline uint64_t blas_fnv(const void* p, size_t bytes) {
  const unsigned char* b = (const unsigned char*)p;
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < bytes; ++i) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}
#endif
