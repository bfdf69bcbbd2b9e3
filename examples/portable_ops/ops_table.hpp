// ops_table.hpp - the function table a kernel module of libbitexact_ops exports (its one
// symbol, bitexact_ops_kernels_v1), shared by the modules and the front library. Every
// function takes the ISA explicitly: the module runs what the front library chose.
#pragma once
#include <cstddef>
#include <cstdint>

namespace bitexact_ops {
struct kernels_v1 {
  const char* variant;  // the module's variant, e.g. "avx512"
  // Each returns nullptr on success or the message of the exception the op threw.
  const char* (*sum_f32)(int isa, int threads, const float* x, std::size_t n, int exact, float* r);
  const char* (*sum_f64)(int isa, int threads, const double* x, std::size_t n, int exact, double* r);
  const char* (*dot_f32)(int isa, int threads, const float* x, const float* y, std::size_t n, int exact, float* r);
  const char* (*softmax_f32)(int isa, int threads, const float* x, std::size_t rows, std::size_t cols, float* y);
  const char* (*uniform_f32)(int isa, int threads, std::uint64_t seed, std::uint64_t first, float* out, std::size_t n);
  const char* (*index_add_f32)(int isa, int threads, float* out, std::size_t n_out, const std::int64_t* idx,
                               const float* src, std::size_t n, int exact);
};
}  // namespace bitexact_ops

extern "C" const bitexact_ops::kernels_v1* bitexact_ops_kernels_v1();
