// bitexact/reduce.hpp - sums, dot products, norms, mean and variance whose bits never depend on
// how they run.
//
// Types: T = float, double or bfloat16. Results are in the accumulation type A: float for float
// and bfloat16 (bf16 inputs are widened exactly, bits << 16), double for double.
//
// Tiers (tier.hpp):
//   tier::fixed_order (default): the canonical order of core/fixed_order.hpp (version
//     reduce_order_version): leaves of 4096 floats / 2048 doubles, 64 / 32 virtual lanes per
//     leaf each adding its values in index order, lanes combined by halving, leaves combined in
//     the aligned pairwise tree. dot's values are x[i]*y[i] rounded to A (a multiply then an
//     add, never fused). The result is the same bits for any thread count, ISA (scalar, SSE2,
//     AVX2, AVX-512, NEON), pointer alignment, and on the CUDA backend; it is what
//     reference::sum_fixed_order / dot_fixed_order compute.
//   tier::exact: the correctly rounded (to nearest even) value of the exact sum of the values
//     (dot: of the exact products). Also independent of the order and partition of the inputs.
//     Equals reference::sum_exact / dot_exact. How (sum and dot): the terms are summed in double
//     blocks with a rigorous error bound (core/exact_filter.hpp; double terms cut at a per-block
//     grid into an exact part and a small rest, double products split by TwoProduct); when every
//     value within the bound rounds to one value of A, that is the answer, else (a sum that close
//     to a rounding boundary, zero, NaN or Inf) the exact accumulator runs.
//
// Special values:
//   - n == 0: sum, dot, squared_norm and norm return +0.0; mean and variance return NaN.
//   - Any NaN result is returned as the canonical quiet NaN (0x7fc00000 / 0x7ff8000000000000):
//     x86 and CUDA propagate different NaN payloads and signs, we don't.
//   - fixed_order follows IEEE arithmetic in the canonical order (Inf - Inf is NaN, an
//     intermediate overflow gives Inf). exact: NaN if any input is NaN or both +Inf and -Inf
//     occur (dot: also Inf * 0), else +-Inf if any occurs, else the exact sum rounded (an
//     overflowing sum rounds to +-Inf).
//   - Signed zeros: fixed_order lanes start at -0.0, so an all -0.0 input sums to -0.0; exact
//     returns -0.0 when every value (product) is -0.0, else +0.0 for an exact zero.
//
// Derived ops (same tier for every reduction inside them):
//   squared_norm(x) = dot(x, x);  norm(x) = sqrt(squared_norm(x)) (IEEE sqrt, correctly rounded)
//   mean(x) = sum(x) / A(n)
//   variance(x, ddof) - two passes: m = mean(x), then the sum of the values (x[i] - m)^2, each
//     difference rounded to A and squared (fixed_order: rounded, summed in the canonical order;
//     exact: the exact sum of the exact squares), divided by A(n - ddof). NaN when n <= ddof.
//
// Errors: a null pointer with n > 0 throws std::invalid_argument; a calling thread running with
// FTZ/DAZ or a directed rounding mode throws fp_environment_error (fp_environment.hpp).
#pragma once
#include <cmath>
#include <cstddef>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "core/bfloat16.hpp"
#include "core/exact.hpp"
#include "core/fixed_order.hpp"
#include "cpu/reduce_kernels.hpp"
#include "execution.hpp"
#include "fp_environment.hpp"
#include "tier.hpp"

namespace bitexact {

/// The exact accumulator (core/exact.hpp): add values or exact products, merge with another,
/// round() correctly, to_bytes/from_bytes; usable in host, SIMD and CUDA device code. Its state
/// depends only on the multiset of values added, so any order or partition gives the same bits.
template <class T>
using exact_accumulator = core::exact_accumulator<T>;
namespace detail {

template <class T>
constexpr bool is_reduce_type =
    std::is_same<T, float>::value || std::is_same<T, double>::value || std::is_same<T, bfloat16>::value;

/// Null input with n > 0 is an error; so is a calling thread in a non-IEEE mode (FTZ, DAZ,
/// directed rounding: fp_environment.hpp), which would change the bits.
inline void check_in(const void* p, std::size_t n, const char* what) {
  if (n > 0 && p == nullptr)
    throw std::invalid_argument(std::string("bitexact::") + what + ": null input pointer with n > 0");
  require_ieee_environment(what);
}

/// NaN results leave as the canonical quiet NaN.
template <class A>
A canonical_result(A r) {
  return r != r ? std::numeric_limits<A>::quiet_NaN() : r;
}

template <class A, class Src>
A run_fixed_order(const Src& src, std::size_t n, const execution& e) {
  if (n == 0) return A(0);
  const int threads = cpu::detail::resolve_threads(e.threads);
  A r = A(0);
  cpu::detail::with_arch(cpu::detail::resolve_isa(e.simd), [&](auto arch) {
    r = cpu::detail::fixed_order_reduce<decltype(arch), A>(src, n, threads);
  });
  return canonical_result(r);
}

/// An exact sum or dot through the certified filter (cpu::detail::filter_reduce): true and
/// `out` when certified, false when the caller must take the exact accumulator.
/// terms(arch, begin, end, filter): cpu::detail::filter_sum_terms / filter_dot_terms.
template <class A, class Terms>
bool run_exact_filter(std::size_t n, const execution& e, Terms terms, A& out) {
  if (n == 0 || !cpu::detail::exact_filter_enabled().load(std::memory_order_relaxed)) return false;
  const int threads = cpu::detail::resolve_threads(e.threads);
  bool ok = false;
  cpu::detail::with_arch(cpu::detail::resolve_isa(e.simd), [&](auto arch) {
    ok = cpu::detail::filter_reduce(
        n, threads, [&](std::size_t b, std::size_t end, core::sum_filter& f) { return terms(arch, b, end, f); }, out);
  });
  return ok;
}

/// range(arch, begin, end, accumulator) adds the values [begin, end).
template <class A, class Range>
A run_exact(std::size_t n, const execution& e, Range range) {
  if (n == 0) return A(0);
  const int threads = cpu::detail::resolve_threads(e.threads);
  A r = A(0);
  cpu::detail::with_arch(cpu::detail::resolve_isa(e.simd), [&](auto arch) {
    r = cpu::detail::exact_reduce<A>(n, threads, [&](std::size_t b, std::size_t end, core::exact_accumulator<A>& acc) {
          range(arch, b, end, acc);
        }).round();
  });
  return canonical_result(r);
}

}  // namespace detail

/// Sum of x[0..n).
template <class T>
core::accumulation_t<T> sum(const T* x, std::size_t n, tier t = tier::fixed_order, const execution& e = {}) {
  static_assert(detail::is_reduce_type<T>, "bitexact::sum: T must be float, double or bfloat16");
  using A = core::accumulation_t<T>;
  detail::check_in(x, n, "sum");
  if (t == tier::exact) {
    A r;
    if (detail::run_exact_filter(n, e, cpu::detail::filter_sum_terms(x), r)) return r;
    return detail::run_exact<A>(n, e, [x](auto arch, std::size_t b, std::size_t end, core::exact_accumulator<A>& acc) {
      cpu::detail::exact_sum_range<decltype(arch)>(x + b, end - b, acc);
    });
  }
  return detail::run_fixed_order<A>(cpu::detail::sum_source<A, T>{x}, n, e);
}

/// Dot product of x[0..n) and y[0..n).
template <class T>
core::accumulation_t<T> dot(const T* x, const T* y, std::size_t n, tier t = tier::fixed_order, const execution& e = {}) {
  static_assert(detail::is_reduce_type<T>, "bitexact::dot: T must be float, double or bfloat16");
  using A = core::accumulation_t<T>;
  detail::check_in(x, n, "dot");
  detail::check_in(y, n, "dot");
  if (t == tier::exact) {
    A r;
    if (detail::run_exact_filter(n, e, cpu::detail::filter_dot_terms(x, y), r)) return r;
    return detail::run_exact<A>(n, e, [x, y](auto arch, std::size_t b, std::size_t end, core::exact_accumulator<A>& acc) {
      cpu::detail::exact_dot_range<decltype(arch)>(x + b, y + b, end - b, acc);
    });
  }
  return detail::run_fixed_order<A>(cpu::detail::dot_source<A, T>{x, y}, n, e);
}

/// dot(x, x).
template <class T>
core::accumulation_t<T> squared_norm(const T* x, std::size_t n, tier t = tier::fixed_order, const execution& e = {}) {
  return dot(x, x, n, t, e);
}

/// sqrt(squared_norm(x)).
template <class T>
core::accumulation_t<T> norm(const T* x, std::size_t n, tier t = tier::fixed_order, const execution& e = {}) {
  return std::sqrt(squared_norm(x, n, t, e));
}

/// sum(x) / A(n); NaN for n == 0.
template <class T>
core::accumulation_t<T> mean(const T* x, std::size_t n, tier t = tier::fixed_order, const execution& e = {}) {
  using A = core::accumulation_t<T>;
  detail::check_in(x, n, "mean");
  if (n == 0) return std::numeric_limits<A>::quiet_NaN();
  return detail::canonical_result(sum(x, n, t, e) / static_cast<A>(n));
}

/// Two-pass variance: sum of (x[i] - mean)^2 over A(n - ddof); NaN when n <= ddof.
template <class T>
core::accumulation_t<T> variance(const T* x, std::size_t n, std::size_t ddof = 0, tier t = tier::fixed_order,
                                 const execution& e = {}) {
  static_assert(detail::is_reduce_type<T>, "bitexact::variance: T must be float, double or bfloat16");
  using A = core::accumulation_t<T>;
  detail::check_in(x, n, "variance");
  if (n <= ddof) return std::numeric_limits<A>::quiet_NaN();
  const A m = mean(x, n, t, e);
  A ss;
  if (t == tier::exact)
    ss = detail::run_exact<A>(n, e, [x, m](auto arch, std::size_t b, std::size_t end, core::exact_accumulator<A>& acc) {
      cpu::detail::exact_centered_squares_range<decltype(arch)>(x + b, end - b, m, acc);
    });
  else
    ss = detail::run_fixed_order<A>(cpu::detail::centered_square_source<A, T>{x, m}, n, e);
  return detail::canonical_result(ss / static_cast<A>(n - ddof));
}

}  // namespace bitexact
