// bitexact/execution.hpp - how an op runs (threads, SIMD instruction set), never what it computes.
//
// Results never depend on these settings; they only choose who computes which canonical chunk
// and with which vector width. Precedence: the per-call `execution` argument, then the global
// setting (set_num_threads / set_isa), then the environment variables BITEXACT_NUM_THREADS and
// BITEXACT_ISA (scalar, sse2, avx2, avx512, neon; read once), then the defaults: all hardware
// threads and the best ISA that both this build and this CPU support.
#pragma once
#include <string>

#include "cpu/isa.hpp"

namespace bitexact {

struct execution {
  int threads = 0;           ///< 0: use the global/env/default thread count
  isa simd = isa::automatic; ///< automatic: use the global/env/default ISA
};

/// Set the global thread count (0 restores the default). Throws std::invalid_argument if < 0.
inline void set_num_threads(int n) { cpu::detail::set_global_threads(n); }
/// Set the global ISA (isa::automatic restores the default). Throws std::invalid_argument if
/// this build or this CPU lacks it.
inline void set_isa(isa i) { cpu::detail::set_global_isa(i); }

/// The thread count and ISA a call with `e` will use.
inline int resolved_threads(const execution& e = {}) { return cpu::detail::resolve_threads(e.threads); }
inline isa resolved_isa(const execution& e = {}) { return cpu::detail::resolve_isa(e.simd); }

}  // namespace bitexact
