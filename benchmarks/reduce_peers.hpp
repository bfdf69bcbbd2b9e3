// benchmarks/reduce_peers.hpp - the reduction peers a user would pick instead of bitexact, compiled
// in their own translation unit as their users compile them (-O3 -march=native, the compiler's
// default FP contraction, so a dot's multiply and add may fuse; never bitexact's
// -ffp-contract=off). Each returns its reduction in T, widened to double (exact for float).
#pragma once
#include <cstddef>

namespace reduce_peers {

/// The unordered SIMD reduction: `#pragma omp simd reduction(+:s)` on one thread, or
/// `#pragma omp parallel for simd reduction(+:s) num_threads(threads)` (not deterministic:
/// the compiler's lane count and OpenMP's split decide the order).
double omp_simd_sum(const float* x, std::size_t n, int threads);
double omp_simd_sum(const double* x, std::size_t n, int threads);
double omp_simd_dot(const float* x, const float* y, std::size_t n, int threads);
double omp_simd_dot(const double* x, const double* y, std::size_t n, int threads);

/// std::accumulate / std::inner_product: the naive serial loop (deterministic, one thread).
double accumulate_sum(const float* x, std::size_t n);
double accumulate_sum(const double* x, std::size_t n);
double accumulate_dot(const float* x, const float* y, std::size_t n);
double accumulate_dot(const double* x, const double* y, std::size_t n);

}  // namespace reduce_peers
