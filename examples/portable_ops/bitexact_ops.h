/* bitexact_ops.h - a C ABI over a few bitexact ops, built once for every ISA (the portable
 * build demo: cmake/bitexactPortable.cmake). libbitexact_ops.so is compiled without -march;
 * at run time it loads the kernel module of the best ISA of this CPU (or the one selected by
 * BITEXACT_ISA or bitexact_ops_select_isa), and every ISA gives the same bits.
 * Functions return 0 on success, -1 on bad input or an unavailable ISA (see
 * bitexact_ops_last_error()). Thread count 0 = bitexact's default. */
#ifndef BITEXACT_OPS_H
#define BITEXACT_OPS_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

/* "auto" (BITEXACT_ISA, else the best), "scalar", "sse2", "avx2", "avx512", "neon". */
int bitexact_ops_select_isa(const char* isa);
const char* bitexact_ops_isa(void);             /* the ISA the kernels run */
const char* bitexact_ops_variant(void);         /* the module running them, e.g. "avx512" */
const char* bitexact_ops_available_isas(void);  /* e.g. "scalar sse2 avx2 avx512" */
const char* bitexact_ops_last_error(void);

int bitexact_ops_sum_f32(const float* x, size_t n, int exact, int threads, float* result);
int bitexact_ops_sum_f64(const double* x, size_t n, int exact, int threads, double* result);
int bitexact_ops_dot_f32(const float* x, const float* y, size_t n, int exact, int threads, float* result);
int bitexact_ops_softmax_f32(const float* x, size_t rows, size_t cols, float* y, int threads);
int bitexact_ops_uniform_f32(uint64_t seed, uint64_t first, float* out, size_t n, int threads);
int bitexact_ops_index_add_f32(float* out, size_t n_out, const int64_t* idx, const float* src, size_t n,
                               int exact, int threads);

#ifdef __cplusplus
}
#endif
#endif
