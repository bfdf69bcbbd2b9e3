// ops_dispatch.cpp - libbitexact_ops.so, the front library: compiled for the baseline ISA, it
// picks the kernel module (bitexact::portable::dispatcher) and forwards each call with the ISA.
#include <atomic>
#include <exception>
#include <string>

#include <bitexact/portable/dispatch.hpp>

#include "bitexact_ops.h"
#include "ops_table.hpp"

namespace {

thread_local std::string g_error;

struct state {
  bitexact::portable::dispatcher d{BITEXACT_PORTABLE_MODULE_PREFIX, BITEXACT_PORTABLE_VARIANTS,
                                   BITEXACT_PORTABLE_ENTRY, reinterpret_cast<const void*>(&bitexact_ops_isa)};
  std::atomic<int> isa{0};
  std::atomic<const bitexact_ops::kernels_v1*> k{nullptr};
  std::string available;
};

state& st() {
  static state s;
  return s;
}

int fail(const std::string& m) {
  g_error = m;
  return -1;
}

// Chooses (isa, module); called by select and lazily by the first op.
int choose(bitexact::isa requested) {
  try {
    state& s = st();
    const bitexact::isa i = s.d.resolve(requested);
    using entry_fn = const bitexact_ops::kernels_v1* (*)();
    const auto* k = reinterpret_cast<entry_fn>(s.d.entry_for(i))();
    s.k.store(k);
    s.isa.store(static_cast<int>(i));
    return 0;
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

const bitexact_ops::kernels_v1* kernels() {
  if (st().k.load() == nullptr && choose(bitexact::isa::automatic) != 0) return nullptr;
  return st().k.load();
}

int done(const char* err) { return err == nullptr ? 0 : fail(err); }

}  // namespace

extern "C" {

__attribute__((visibility("default"))) int bitexact_ops_select_isa(const char* isa) {
  try {
    return choose(bitexact::parse_isa(isa == nullptr ? "" : isa));
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}
__attribute__((visibility("default"))) const char* bitexact_ops_isa(void) {
  return kernels() ? bitexact::isa_name(static_cast<bitexact::isa>(st().isa.load())) : "none";
}
__attribute__((visibility("default"))) const char* bitexact_ops_variant(void) {
  const auto* k = kernels();
  return k ? k->variant : "none";
}
__attribute__((visibility("default"))) const char* bitexact_ops_available_isas(void) {
  static const std::string s = [] {
    std::string out;
    for (bitexact::isa i : st().d.available()) out += std::string(out.empty() ? "" : " ") + bitexact::isa_name(i);
    return out;
  }();
  return s.c_str();
}
__attribute__((visibility("default"))) const char* bitexact_ops_last_error(void) { return g_error.c_str(); }

#define BITEXACT_OPS_CALL(fn, ...)                   \
  const auto* k = kernels();                         \
  if (k == nullptr) return -1;                       \
  return done(k->fn(st().isa.load(), threads, __VA_ARGS__))

__attribute__((visibility("default"))) int bitexact_ops_sum_f32(const float* x, size_t n, int exact, int threads, float* r) {
  BITEXACT_OPS_CALL(sum_f32, x, n, exact, r);
}
__attribute__((visibility("default"))) int bitexact_ops_sum_f64(const double* x, size_t n, int exact, int threads, double* r) {
  BITEXACT_OPS_CALL(sum_f64, x, n, exact, r);
}
__attribute__((visibility("default"))) int bitexact_ops_dot_f32(const float* x, const float* y, size_t n, int exact, int threads,
                                                                float* r) {
  BITEXACT_OPS_CALL(dot_f32, x, y, n, exact, r);
}
__attribute__((visibility("default"))) int bitexact_ops_softmax_f32(const float* x, size_t rows, size_t cols, float* y,
                                                                    int threads) {
  BITEXACT_OPS_CALL(softmax_f32, x, rows, cols, y);
}
__attribute__((visibility("default"))) int bitexact_ops_uniform_f32(uint64_t seed, uint64_t first, float* out, size_t n,
                                                                    int threads) {
  BITEXACT_OPS_CALL(uniform_f32, seed, first, out, n);
}
__attribute__((visibility("default"))) int bitexact_ops_index_add_f32(float* out, size_t n_out, const int64_t* idx,
                                                                      const float* src, size_t n, int exact, int threads) {
  BITEXACT_OPS_CALL(index_add_f32, out, n_out, idx, src, n, exact);
}

}  // extern "C"
