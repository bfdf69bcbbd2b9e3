// bitexact/cpu/dispatch.hpp - run-time choice of the xsimd architecture for a kernel.
//
// with_arch(isa, f) calls f with the xsimd arch tag of that ISA (or scalar_arch{} for
// isa::scalar and ISAs this build lacks), so a kernel is written once as a template on Arch
// (xsimd's functor-per-Arch style) and instantiated for every ISA compiled in.
#pragma once
#include <xsimd/xsimd.hpp>

#include "isa.hpp"

namespace bitexact {
namespace cpu {
namespace detail {

/// Tag for the non-SIMD path (isa::scalar).
struct scalar_arch {};

template <class F>
void with_arch(isa i, F&& f) {
  switch (i) {
#if XSIMD_WITH_AVX512BW
    case isa::avx512: f(xsimd::avx512bw{}); return;
#endif
#if XSIMD_WITH_AVX2 && XSIMD_WITH_FMA3_AVX2
    case isa::avx2: f(xsimd::fma3<xsimd::avx2>{}); return;
#endif
#if XSIMD_WITH_SSE2
    case isa::sse2: f(xsimd::sse2{}); return;
#endif
#if XSIMD_WITH_NEON64
    case isa::neon: f(xsimd::neon64{}); return;
#endif
    default: f(scalar_arch{}); return;
  }
}

}  // namespace detail
}  // namespace cpu
}  // namespace bitexact
