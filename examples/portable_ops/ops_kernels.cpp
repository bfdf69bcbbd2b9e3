// ops_kernels.cpp - libbitexact_ops' kernels: compiled once per ISA variant (with that
// variant's -m flags) into its own module; exports only bitexact_ops_kernels_v1.
#include <exception>
#include <string>

#include <bitexact/random.hpp>
#include <bitexact/reduce.hpp>
#include <bitexact/rowwise.hpp>
#include <bitexact/scatter.hpp>

#include "ops_table.hpp"

namespace {

bitexact::execution exec(int isa, int threads) { return bitexact::execution{threads, static_cast<bitexact::isa>(isa)}; }
bitexact::tier tier_of(int exact) { return exact ? bitexact::tier::exact : bitexact::tier::fixed_order; }

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

const char* sum_f32(int isa, int threads, const float* x, std::size_t n, int exact, float* r) {
  return guarded([&] { *r = bitexact::sum(x, n, tier_of(exact), exec(isa, threads)); });
}
const char* sum_f64(int isa, int threads, const double* x, std::size_t n, int exact, double* r) {
  return guarded([&] { *r = bitexact::sum(x, n, tier_of(exact), exec(isa, threads)); });
}
const char* dot_f32(int isa, int threads, const float* x, const float* y, std::size_t n, int exact, float* r) {
  return guarded([&] { *r = bitexact::dot(x, y, n, tier_of(exact), exec(isa, threads)); });
}
const char* softmax_f32(int isa, int threads, const float* x, std::size_t rows, std::size_t cols, float* y) {
  return guarded([&] { bitexact::softmax(x, rows, cols, cols, y, cols, exec(isa, threads)); });
}
const char* uniform_f32(int isa, int threads, std::uint64_t seed, std::uint64_t first, float* out, std::size_t n) {
  return guarded([&] {
    const auto s = bitexact::stream<bitexact::philox4x32_10>::from_seed(seed);
    bitexact::generate_uniform(s, first, out, n, exec(isa, threads));
  });
}
const char* index_add_f32(int isa, int threads, float* out, std::size_t n_out, const std::int64_t* idx,
                          const float* src, std::size_t n, int exact) {
  return guarded([&] { bitexact::index_add(out, n_out, idx, src, n, tier_of(exact), exec(isa, threads)); });
}

const bitexact_ops::kernels_v1 table = {BITEXACT_PORTABLE_VARIANT, sum_f32, sum_f64, dot_f32,
                                        softmax_f32, uniform_f32, index_add_f32};

}  // namespace

extern "C" __attribute__((visibility("default"))) const bitexact_ops::kernels_v1* bitexact_ops_kernels_v1() {
  return &table;
}
