// bitexact/fp_environment.hpp - the self-check of the calling thread's floating-point mode.
//
// The contract assumes IEEE-754 defaults: round to nearest even, subnormals neither flushed
// to zero on output (FTZ) nor treated as zero on input (DAZ). Another library (or
// code built with relaxed floating-point flags) may have changed the calling thread's mode; the
// results would then silently differ. Every op whose arithmetic could see it calls
// require_ieee_environment() first and throws fp_environment_error instead of computing.
// Worker threads of the library's pool always run in the default mode: each sets it when it
// starts (detail::set_ieee_environment), whatever mode the thread that started the pool had.
#pragma once
#include <cfenv>
#include <stdexcept>
#include <string>

#if defined(__SSE2__) || defined(_M_X64)
#include <xmmintrin.h>
#endif

namespace bitexact {

/// What the calling thread's floating-point mode looks like.
struct fp_environment_state {
  bool flush_to_zero = false;     ///< FTZ (x86 MXCSR bit 15, aarch64 FPCR.FZ)
  bool denormals_are_zero = false;///< DAZ (x86 MXCSR bit 6)
  bool round_to_nearest = true;   ///< fegetround() == FE_TONEAREST
  bool ok() const { return !flush_to_zero && !denormals_are_zero && round_to_nearest; }
  std::string describe() const {
    std::string s;
    if (flush_to_zero) s += " flush-to-zero (FTZ) is set;";
    if (denormals_are_zero) s += " denormals-are-zero (DAZ) is set;";
    if (!round_to_nearest) s += " the rounding mode is not round-to-nearest;";
    return s.empty() ? "IEEE default mode" : s.substr(1);
  }
};

/// Thrown by ops when the calling thread does not run in the IEEE default mode.
class fp_environment_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline fp_environment_state fp_environment() {
  fp_environment_state s;
#if defined(__SSE2__) || defined(_M_X64)
  const unsigned csr = _mm_getcsr();
  s.flush_to_zero = (csr & 0x8000u) != 0;
  s.denormals_are_zero = (csr & 0x0040u) != 0;
#elif defined(__aarch64__)
  unsigned long fpcr = 0;
  __asm__ __volatile__("mrs %0, fpcr" : "=r"(fpcr));
  s.flush_to_zero = (fpcr & (1ul << 24)) != 0;
#endif
  s.round_to_nearest = std::fegetround() == FE_TONEAREST;
  return s;
}

namespace detail {
/// Puts the calling thread in the IEEE default mode: round to nearest even, no FTZ, no DAZ
/// (x86: MXCSR = 0x1f80, every exception masked; aarch64: FPCR.FZ, FZ16 and RMode cleared).
/// The pool's workers call it when they start, whatever mode the thread that started them had.
inline void set_ieee_environment() {
  std::fesetround(FE_TONEAREST);
#if defined(__SSE2__) || defined(_M_X64)
  _mm_setcsr(0x1f80u);
#elif defined(__aarch64__)
  unsigned long fpcr = 0;
  __asm__ __volatile__("mrs %0, fpcr" : "=r"(fpcr));
  fpcr &= ~((1ul << 24) | (1ul << 19) | (3ul << 22));  // FZ, FZ16, RMode = round to nearest
  __asm__ __volatile__("msr fpcr, %0" : : "r"(fpcr));
#endif
}

/// Throws fp_environment_error naming the op when the calling thread's mode is not IEEE.
inline void require_ieee_environment(const char* what) {
  const fp_environment_state s = fp_environment();
  if (!s.ok())
    throw fp_environment_error(std::string("bitexact::") + what +
                               ": the calling thread's floating-point mode would change the result: " +
                               s.describe() + " (restore the default, e.g. _mm_setcsr(0x1f80) and fesetround(FE_TONEAREST))");
}
}  // namespace detail

}  // namespace bitexact
