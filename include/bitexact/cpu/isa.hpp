// bitexact/cpu/isa.hpp - SIMD instruction sets: names, what the build has, what the CPU has.
//
// A build "has" an ISA when its kernels were compiled into this translation unit, i.e. the
// compiler flags enable it (for example -march=native, or -mavx2 -mfma): scalar always; sse2
// on x86-64; avx2 with AVX2+FMA; avx512 with AVX-512 F/CD/DQ/BW; neon on aarch64. At run time
// the best ISA that both the build and the CPU have is chosen, unless one is requested.
#pragma once
#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "../core/config.hpp"

namespace bitexact {

enum class isa { automatic = 0, scalar, sse2, avx2, avx512, neon };

inline const char* isa_name(isa i) {
  switch (i) {
    case isa::automatic: return "automatic";
    case isa::scalar: return "scalar";
    case isa::sse2: return "sse2";
    case isa::avx2: return "avx2";
    case isa::avx512: return "avx512";
    case isa::neon: return "neon";
  }
  return "unknown";
}

/// Parse "scalar", "sse2", "avx2", "avx512", "neon" (or "auto"); throws std::invalid_argument.
inline isa parse_isa(const std::string& s) {
  for (isa i : {isa::scalar, isa::sse2, isa::avx2, isa::avx512, isa::neon})
    if (s == isa_name(i)) return i;
  if (s == "auto" || s == "automatic" || s.empty()) return isa::automatic;
  throw std::invalid_argument("bitexact: unknown ISA '" + s +
                              "' (expected scalar, sse2, avx2, avx512 or neon)");
}

/// Whether this translation unit was compiled with kernels for `i`.
constexpr bool build_has_isa(isa i) {
  switch (i) {
    case isa::scalar: return true;
    case isa::sse2: return XSIMD_WITH_SSE2 != 0;
    case isa::avx2: return XSIMD_WITH_AVX2 != 0 && XSIMD_WITH_FMA3_AVX2 != 0;
    case isa::avx512: return XSIMD_WITH_AVX512BW != 0;
    case isa::neon: return XSIMD_WITH_NEON64 != 0;
    default: return false;
  }
}

/// Whether the CPU running this process supports `i`.
inline bool cpu_has_isa(isa i) {
  const auto a = xsimd::available_architectures();
  switch (i) {
    case isa::scalar: return true;
    case isa::sse2: return a.sse2 != 0;
    case isa::avx2: return a.avx2 != 0 && a.fma3_avx2 != 0;
    case isa::avx512: return a.avx512f && a.avx512cd && a.avx512dq && a.avx512bw;
    case isa::neon: return a.neon64 != 0;
    default: return false;
  }
}

inline bool isa_usable(isa i) { return i != isa::automatic && build_has_isa(i) && cpu_has_isa(i); }

/// Every ISA usable here, from narrowest to widest.
inline std::vector<isa> usable_isas() {
  std::vector<isa> v;
  for (isa i : {isa::scalar, isa::sse2, isa::avx2, isa::avx512, isa::neon})
    if (isa_usable(i)) v.push_back(i);
  return v;
}

/// Computed once: neither the build nor the CPU changes while the process runs (and resolving
/// the ISA is on the path of every call, where a vector allocation per call showed up).
inline isa best_isa() {
  static const isa b = usable_isas().back();
  return b;
}

namespace cpu {
namespace detail {

inline void check_isa(isa i) {
  if (i == isa::automatic) return;
  if (!build_has_isa(i))
    throw std::invalid_argument(std::string("bitexact: ISA '") + isa_name(i) +
                                "' is not compiled into this build (enable it with compiler flags, "
                                "e.g. -march=native)");
  if (!cpu_has_isa(i))
    throw std::invalid_argument(std::string("bitexact: this CPU does not support ISA '") +
                                isa_name(i) + "'");
}

inline std::atomic<int>& global_threads() {
  static std::atomic<int> v{0};
  return v;
}
inline std::atomic<int>& global_isa() {
  static std::atomic<int> v{0};
  return v;
}

inline int env_threads() {
  static const int v = [] {
    const char* s = std::getenv("BITEXACT_NUM_THREADS");
    if (s == nullptr || *s == '\0') return 0;
    char* end = nullptr;
    const long n = std::strtol(s, &end, 10);
    if (*end != '\0' || n < 1 || n > 4096)
      throw std::invalid_argument(std::string("bitexact: BITEXACT_NUM_THREADS='") + s +
                                  "' is not a thread count in [1, 4096]");
    return static_cast<int>(n);
  }();
  return v;
}

inline isa env_isa() {
  static const isa v = [] {
    const char* s = std::getenv("BITEXACT_ISA");
    if (s == nullptr) return isa::automatic;
    const isa i = parse_isa(s);
    check_isa(i);
    return i;
  }();
  return v;
}

inline void set_global_threads(int n) {
  if (n < 0) throw std::invalid_argument("bitexact: thread count must be >= 0");
  global_threads().store(n);
}
inline void set_global_isa(isa i) {
  check_isa(i);
  global_isa().store(static_cast<int>(i));
}

inline int resolve_threads(int requested) {
  if (requested < 0) throw std::invalid_argument("bitexact: thread count must be >= 0");
  if (requested > 0) return requested;
  if (const int g = global_threads().load()) return g;
  if (const int e = env_threads()) return e;
  // Read once: hardware_concurrency() parses /sys on glibc (about 8 us, on every call that
  // uses the default thread count).
  static const int hw = [] {
    const unsigned h = std::thread::hardware_concurrency();
    return h == 0 ? 1 : static_cast<int>(h);
  }();
  return hw;
}

inline isa resolve_isa(isa requested) {
  if (requested != isa::automatic) {
    check_isa(requested);
    return requested;
  }
  if (const int g = global_isa().load()) return static_cast<isa>(g);
  if (const isa e = env_isa(); e != isa::automatic) return e;
  return best_isa();
}

}  // namespace detail
}  // namespace cpu
}  // namespace bitexact
