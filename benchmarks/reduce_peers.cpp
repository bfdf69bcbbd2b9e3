// benchmarks/reduce_peers.cpp - the hand-written peers of reduce_bench (see reduce_peers.hpp).
#include "reduce_peers.hpp"

#include <numeric>

namespace reduce_peers {
namespace {

template <class T>
double simd_sum(const T* x, std::size_t n, int threads) {
  T s = T(0);
  const long long m = static_cast<long long>(n);
  if (threads <= 1) {
#pragma omp simd reduction(+ : s)
    for (long long i = 0; i < m; ++i) s += x[i];
  } else {
#pragma omp parallel for simd reduction(+ : s) num_threads(threads) schedule(static)
    for (long long i = 0; i < m; ++i) s += x[i];
  }
  return static_cast<double>(s);
}

template <class T>
double simd_dot(const T* x, const T* y, std::size_t n, int threads) {
  T s = T(0);
  const long long m = static_cast<long long>(n);
  if (threads <= 1) {
#pragma omp simd reduction(+ : s)
    for (long long i = 0; i < m; ++i) s += x[i] * y[i];
  } else {
#pragma omp parallel for simd reduction(+ : s) num_threads(threads) schedule(static)
    for (long long i = 0; i < m; ++i) s += x[i] * y[i];
  }
  return static_cast<double>(s);
}

}  // namespace

double omp_simd_sum(const float* x, std::size_t n, int threads) { return simd_sum(x, n, threads); }
double omp_simd_sum(const double* x, std::size_t n, int threads) { return simd_sum(x, n, threads); }
double omp_simd_dot(const float* x, const float* y, std::size_t n, int threads) { return simd_dot(x, y, n, threads); }
double omp_simd_dot(const double* x, const double* y, std::size_t n, int threads) { return simd_dot(x, y, n, threads); }

double accumulate_sum(const float* x, std::size_t n) { return std::accumulate(x, x + n, 0.0f); }
double accumulate_sum(const double* x, std::size_t n) { return std::accumulate(x, x + n, 0.0); }
double accumulate_dot(const float* x, const float* y, std::size_t n) { return std::inner_product(x, x + n, y, 0.0f); }
double accumulate_dot(const double* x, const double* y, std::size_t n) { return std::inner_product(x, x + n, y, 0.0); }

}  // namespace reduce_peers
