// bitexact/core/exact_filter.hpp - certified rounding: the exact tier's value from a floating-point
// approximation and a rigorous bound on its error, wherever that bound is tight enough.
//
// The exact tier returns round(S), S the exact sum (or dot product). When a double q with
// |q - S| <= r is known and every real in [q - r, q + r] rounds to one and the same value (not
// zero), that value is round(S): rounding is monotonic, so S, which lies in the interval, rounds
// to it too. No exact accumulator is needed; an interval that holds a rounding boundary (a tie
// among them) or zero (an exact zero's sign needs the terms) is simply not certified, and the
// caller computes that result exactly. The answer is the same bits either way, so callers may
// take any path, on any thread count or ISA.
//
//   certified_float(q, r, out)      a float result from a double q and radius r;
//   certified_double(c, d, e, out)  a double result from a double-double c + d and radius e;
//   summation_gamma(h)              gamma_h = h u / (1 - h u), u = 2^-53, rounded up: a double
//                                   summation tree in which every term takes at most h roundings
//                                   is within gamma_h * sum |t_i| of the exact sum;
//   sum_filter                      double-double accumulation of block sums with their radius
//                                   (the exact sums and dots: cpu/reduce_kernels.hpp).
// Used by the float GEMM filter, the double split filter (core/gemm_exact.hpp) and the exact
// float reductions.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "math.hpp"

namespace bitexact {
namespace core {

/// gamma_h rounded up, for h <= 2^32 (h u <= 2^-21, so 1 / (1 - h u) < 1 + 2^-20).
inline double summation_gamma(std::size_t h) { return static_cast<double>(h) * 0x1p-53 * (1.0 + 0x1p-20); }

/// Whether every real in [q - r, q + r] (q, r doubles, r >= 0) rounds to the same float, none
/// of them zero; `out` is that float (+-Inf where they all overflow), and is written either way.
/// The bounds are widened by more than the roundings of q - r and q + r can lose. Both ends on
/// one side of zero and not NaN, the two floats are the same bits exactly when they compare
/// equal. NaN in q or r gives false (so does r = Inf). No branches, so a row of them vectorizes.
inline bool certified_float(double q, double r, float& out) {
  const double rr = r * (1.0 + 0x1p-49) + std::fabs(q) * 0x1p-51;
  const double lo = q - rr, hi = q + rr;
  const float flo = static_cast<float>(lo), fhi = static_cast<float>(hi);
  out = flo;
  return ((lo > 0.0) | (hi < 0.0)) & (flo == fhi);
}

/// Whether every real within e of c + d (doubles; e >= 0) rounds to one double, not zero: it is
/// `out`. c + d is made h + l by TwoSum (exact); then |l| + e must be below half the spacing
/// from h toward zero (the smaller of its two spacings), strictly, so a tie is never certified.
/// The sum |l| + e is widened by more than its rounding. NaN or Inf anywhere gives false.
inline bool certified_double(double c, double d, double e, double& out) {
  double l;
  const double h = two_sum(c, d, l);
  out = h;
  const double ah = std::fabs(h);
  const bool finite_nonzero = (ah > 0.0) & (ah <= std::numeric_limits<double>::max());
  const double below = double_of(bits_of(ah) - 1);  // the next double toward zero
  const double gap = ah - below;                    // exact (Sterbenz) when finite_nonzero
  return finite_nonzero & (2.0 * ((std::fabs(l) + e) * (1.0 + 0x1p-50)) < gap);
}

/// The filter of an exact sum fed block by block: add(s, e) takes a block's double sum s (or a
/// part of it), known within e of what it stands for. hi + lo holds the sum of the s exactly but
/// for lo's own roundings, which `radius` covers as it goes (|lo| 2^-53 per add); radius also
/// sums the blocks' e. Partial filters of any split of the terms merge in any order. round()
/// certifies the float result (float values and products: cpu/reduce_kernels.hpp) or the double
/// one (double values).
struct sum_filter {
  double hi = 0.0, lo = 0.0, radius = 0.0;
  std::uint64_t adds = 0;  // additions into radius, whose own roundings total_radius() covers

  void add(double s, double e) {
    double err;
    hi = two_sum(hi, s, err);
    lo = lo + err;
    radius = radius + (e + std::fabs(lo) * 0x1p-53);
    adds += 2;
  }
  void merge(const sum_filter& o) {
    add(o.hi, 0.0);
    add(o.lo, o.radius);
    adds += o.adds;
  }
  /// radius, rounded up: a sum of k positive doubles is within gamma_k of its exact value.
  double total_radius() const { return radius * (1.0 + static_cast<double>(adds + 2) * 0x1p-52); }
  /// true and `out` = round(S) when certified. q = hi + lo is within |q| 2^-53 of hi + lo.
  bool round(float& out) const {
    const double q = hi + lo;
    return certified_float(q, total_radius() + std::fabs(q) * 0x1p-52, out);
  }
  bool round(double& out) const { return certified_double(hi, lo, total_radius(), out); }
};

}  // namespace core
}  // namespace bitexact
