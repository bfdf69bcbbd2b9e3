// bitexact/rowwise.hpp - row/column reductions and row-wise normalisations of a 2-D array.
//
// The matrix is row-major: element (r, c) of x is x[r * ld + c], ld >= cols (the leading
// dimension); outputs y use their own ldy >= cols. T is float, double or bfloat16; with
// A = core::accumulation_t<T> (float for float and bfloat16, double for double), every result is
// of type A: a bf16 input gives float outputs, widened exactly before any arithmetic.
//
// Sums (tier::fixed_order by default, or tier::exact):
//   row_sum(x, rows, cols, ld, out[rows], tier, e)   out[r] = the 1-D sum of row r: the same bits
//       as the fixed_order (or exact) sum of the cols values x[r, 0..cols) in a 1-D call, i.e.
//       reference::fixed_order_reduce<A>(cols, x[r, i]) (core/fixed_order.hpp). cols == 0: +0.0.
//   col_sum(x, rows, cols, ld, out[cols], tier, e)   out[c] = the 1-D sum of the strided column
//       vector x[0, c], x[1, c], ..., x[rows-1, c] in the same canonical order (leaves and lanes
//       counted along the rows). rows == 0: +0.0.
//   row_mean / col_mean: the sum divided by the count (one rounded division); a count of zero
//       gives the canonical quiet NaN.
// Row-wise ops along each row (formulas and the exact sequence of rounded operations; "sum"
// is fixed_order_reduce<A>, a product that is summed or added is rounded before the add):
//   softmax:     v_i = widen(x_i); m = max_i v_i; d_i = v_i - m; e_i = core::exp(d_i);
//                s = sum_i e_i; y_i = e_i / s
//   log_softmax: m, d_i, e_i, s as in softmax; l = core::log(s); y_i = d_i - l
//   rms_norm:    q = sum_i (v_i * v_i); ms = q / cols; inv = 1 / sqrt(ms + eps);
//                y_i = (v_i * inv) * w_i        (w == nullptr: y_i = v_i * inv)
//   layer_norm:  mean = (sum_i v_i) / cols; d_i = v_i - mean; var = (sum_i d_i * d_i) / cols;
//                inv = 1 / sqrt(var + eps); y_i = ((d_i * inv) * w_i) + b_i
//                (w == nullptr skips the multiply, b == nullptr skips the add)
// max uses the order of minmax.hpp (-0 < +0; a NaN makes it NaN). core::exp/core::log are the
// library's own (core/math.hpp): on floats, exp is evaluated in binary64 and rounded once to
// float (near correctly rounded), log is the binary64 log rounded once; sqrt is IEEE's
// correctly rounded square root; eps is rounded to A once. Consequences, by the formulas: a row
// holding a NaN or +inf gives a softmax/log_softmax row of NaN, and so does a row of only -inf.
// Every NaN the row-wise ops and the means output is the canonical quiet NaN (0x7fc00000 /
// 0x7ff8000000000000); row_sum/col_sum return exactly the bits of the public 1-D sum
// (reduce.hpp), which canonicalizes NaN results too.
//
// Invariance: a row's result is a function of that row alone (and w, b, eps): never of the
// number of rows in the batch, of the thread count (threads take whole rows; for col_sum whole
// column blocks, and on tall matrices aligned groups of leaves of the rows), of the ISA
// (execution.hpp) or of the alignment. Equal to reference/rowwise.hpp bit for bit
// (tests/rowwise_test.cpp).
//
// Errors: fp_environment_error (fp_environment.hpp) when the calling thread runs with FTZ, DAZ
// or a directed rounding mode (the results would change). std::invalid_argument: ld < cols,
// ldy < cols, a null x with rows > 0 and cols > 0, a null output with outputs to write,
// eps < 0 or NaN, or a shape whose last element's index overflows std::size_t. rows == 0 or cols == 0 is valid: sums write their +0.0 (means their
// NaN) to every output that exists, the row-wise ops write nothing. In-place use (y == x,
// ldy == ld, T == A) is allowed for the row-wise ops; other overlaps are not.
//
// For the audit tool: reference/rowwise.hpp holds the reference of each op, and
// cpu::detail::rowwise_kernel<T, Arch> the fast kernels (Arch from cpu::detail::with_arch).
#pragma once
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/bfloat16.hpp"
#include "core/fixed_order.hpp"
#include "cpu/rowwise_kernels.hpp"
#include "cpu/threads.hpp"
#include "execution.hpp"
#include "fp_environment.hpp"
#include "tier.hpp"

namespace bitexact {
namespace detail {

/// The least work (values) worth another thread.
constexpr std::uint64_t rowwise_min_values_per_thread = 32768;

inline void rowwise_fail(const char* what, const char* why) {
  throw std::invalid_argument(std::string("bitexact::") + what + ": " + why);
}

inline void check_matrix(const void* x, std::size_t rows, std::size_t cols, std::size_t ld, const char* what,
                         bool output = false) {
  require_ieee_environment(what);
  if (ld < cols) rowwise_fail(what, output ? "leading dimension ldy < cols" : "leading dimension ld < cols");
  if (rows > 0 && cols > 0) {
    if (x == nullptr) rowwise_fail(what, output ? "null output with rows > 0 and cols > 0" : "null input with rows > 0 and cols > 0");
    if ((rows - 1) > (std::numeric_limits<std::size_t>::max() - cols) / (ld == 0 ? 1 : ld))
      rowwise_fail(what, "rows * ld overflows std::size_t");
  }
}

template <class A>
A checked_eps(double eps, const char* what) {
  if (!(eps >= 0.0)) rowwise_fail(what, "eps must be >= 0 (and not NaN)");
  return static_cast<A>(eps);
}

/// Runs body(Arch, begin, end) over [0, count) units of `unit_values` values each, split in
/// canonical chunks among the resolved threads (units are independent: rows or column blocks).
template <class Body>
void run_units(std::size_t count, std::uint64_t unit_values, const execution& e, Body&& body) {
  const isa i = cpu::detail::resolve_isa(e.simd);
  const int threads = cpu::detail::resolve_threads(e.threads);
  if (count == 0) return;
  const std::uint64_t total = static_cast<std::uint64_t>(count) * (unit_values ? unit_values : 1);
  const int t = cpu::detail::threads_for_work(threads, total, rowwise_min_values_per_thread);
  // Chunks of units so that each holds about 16K values (the chunking never changes results;
  // the test hook of cpu/threads.hpp shrinks them with the grain).
  std::uint64_t per = cpu::detail::min_work_per_thread(std::uint64_t(1) << 14) / (unit_values ? unit_values : 1);
  if (per == 0) per = 1;
  cpu::detail::with_arch(i, [&](auto arch) {
    cpu::parallel_chunks(t, cpu::canonical_chunks{count, per},
                         [&](std::uint64_t b, std::uint64_t end) { body(arch, std::size_t(b), std::size_t(end)); });
  });
}

template <class T>
void row_sum_impl(const T* x, std::size_t rows, std::size_t cols, std::size_t ld, core::accumulation_t<T>* out,
                  tier t, const execution& e, const char* what) {
  check_matrix(x, rows, cols, ld, what);
  if (rows > 0 && out == nullptr) rowwise_fail(what, "null output with rows > 0");
  if (cols == 0) {
    cpu::detail::resolve_isa(e.simd);
    cpu::detail::resolve_threads(e.threads);
    for (std::size_t r = 0; r < rows; ++r) out[r] = 0;
    return;
  }
  run_units(rows, cols, e, [&](auto arch, std::size_t r0, std::size_t r1) {
    if (t == tier::exact)
      cpu::detail::row_sum_exact(x, r0, r1, cols, ld, out);
    else
      cpu::detail::rowwise_kernel<T, decltype(arch)>::row_sum(x, r0, r1, cols, ld, out);
    for (std::size_t r = r0; r < r1; ++r)  // NaN results canonical, like the 1-D sum's
      if (out[r] != out[r]) out[r] = static_cast<core::accumulation_t<T>>(core::canonical_nan());
  });
}

template <class T>
void col_sum_impl(const T* x, std::size_t rows, std::size_t cols, std::size_t ld, core::accumulation_t<T>* out,
                  tier t, const execution& e, const char* what) {
  check_matrix(x, rows, cols, ld, what);
  if (cols > 0 && out == nullptr) rowwise_fail(what, "null output with cols > 0");
  if (rows == 0) {
    cpu::detail::resolve_isa(e.simd);
    cpu::detail::resolve_threads(e.threads);
    for (std::size_t c = 0; c < cols; ++c) out[c] = 0;
    return;
  }
  using A = core::accumulation_t<T>;
  // Column blocks of 256 columns are the units (any block size gives the same bits).
  constexpr std::size_t block = 256;
  const std::size_t blocks = (cols + block - 1) / block;
  // Columns [c0, c1) over rows [r0, r1), r0 a multiple of the leaf size: each column's value
  // of that aligned group of leaves (the whole column when [r0, r1) = [0, rows)).
  auto columns = [&](auto arch, std::size_t r0, std::size_t r1, std::size_t c0, std::size_t c1, A* dst) {
    using K = cpu::detail::rowwise_kernel<T, decltype(arch)>;
    for (std::size_t c = c0; c < c1;) {
      std::size_t step = block;
      if constexpr (!std::is_same<decltype(arch), cpu::detail::scalar_arch>::value)
        step = K::col_block < block ? K::col_block : block;
      const std::size_t ce = c + step < c1 ? c + step : c1;
      if (t == tier::exact)
        cpu::detail::col_sum_exact(x + r0 * ld, r1 - r0, c, ce, ld, dst);
      else
        K::col_sum(x + r0 * ld, r1 - r0, c, ce, ld, dst);
      c = ce;
    }
  };
  // Tall matrices with fewer column blocks than threads: also split the rows, in aligned groups
  // of 2^p leaves (core::group_leaves), i.e. subtrees of every column's leaf tree; each group's
  // subtree values are then pushed at level p into the column's core::tree_stack. Same
  // operations as the one-pass path, so the same bits (the tests run both).
  const std::size_t leaf = core::fixed_order_shape<A>::leaf;
  const int threads = cpu::detail::resolve_threads(e.threads);
  if (t == tier::fixed_order && blocks < static_cast<std::size_t>(threads) && rows > leaf) {
    const core::leaf_grouping g = core::group_leaves(rows, leaf, 64);
    const std::size_t groups = static_cast<std::size_t>(g.groups());
    const std::size_t group_rows = static_cast<std::size_t>(g.group_leaves()) * leaf;
    std::vector<A> part(groups * cols);
    run_units(blocks * groups, static_cast<std::uint64_t>(group_rows) * block, e,
              [&](auto arch, std::size_t u0, std::size_t u1) {
                for (std::size_t u = u0; u < u1; ++u) {
                  const std::size_t b = u / groups, q = u % groups;
                  const std::size_t r0 = q * group_rows, r1 = r0 + group_rows < rows ? r0 + group_rows : rows;
                  const std::size_t c1 = (b + 1) * block < cols ? (b + 1) * block : cols;
                  columns(arch, r0, r1, b * block, c1, part.data() + q * cols);
                }
              });
    for (std::size_t c = 0; c < cols; ++c) {
      core::tree_stack<A> tree;
      for (std::size_t q = 0; q < groups; ++q) tree.push(part[q * cols + c], g.group_level);
      out[c] = tree.finish();
    }
    return;
  }
  run_units(blocks, static_cast<std::uint64_t>(rows) * block, e, [&](auto arch, std::size_t b0, std::size_t b1) {
    columns(arch, 0, rows, b0 * block, b1 * block < cols ? b1 * block : cols, out);
  });
}

template <class A>
void divide_means(A* out, std::size_t n, std::size_t count) {
  for (std::size_t i = 0; i < n; ++i) out[i] = reference::mean_of(out[i], count);
}

/// NaN results leave as the canonical quiet NaN, like the 1-D sum's (reduce.hpp).
template <class A>
void canonicalize_nans(A* out, std::size_t count) {
  if (out == nullptr) return;  // nothing was written (empty shape)
  for (std::size_t k = 0; k < count; ++k)
    if (out[k] != out[k]) out[k] = static_cast<A>(core::canonical_nan());
}

}  // namespace detail

/// Per-row sums (see the header comment). out has rows values.
template <class T>
void row_sum(const T* x, std::size_t rows, std::size_t cols, std::size_t ld, core::accumulation_t<T>* out,
             tier t = tier::fixed_order, const execution& e = {}) {
  detail::row_sum_impl(x, rows, cols, ld, out, t, e, "row_sum");
}
/// Per-row means: row_sum / cols (cols == 0: canonical NaN).
template <class T>
void row_mean(const T* x, std::size_t rows, std::size_t cols, std::size_t ld, core::accumulation_t<T>* out,
              tier t = tier::fixed_order, const execution& e = {}) {
  detail::row_sum_impl(x, rows, cols, ld, out, t, e, "row_mean");
  detail::divide_means(out, rows, cols);
}
/// Per-column sums (see the header comment). out has cols values.
template <class T>
void col_sum(const T* x, std::size_t rows, std::size_t cols, std::size_t ld, core::accumulation_t<T>* out,
             tier t = tier::fixed_order, const execution& e = {}) {
  detail::col_sum_impl(x, rows, cols, ld, out, t, e, "col_sum");
  detail::canonicalize_nans(out, cols);
}
/// Per-column means: col_sum / rows (rows == 0: canonical NaN).
template <class T>
void col_mean(const T* x, std::size_t rows, std::size_t cols, std::size_t ld, core::accumulation_t<T>* out,
              tier t = tier::fixed_order, const execution& e = {}) {
  detail::col_sum_impl(x, rows, cols, ld, out, t, e, "col_mean");
  detail::divide_means(out, cols, rows);
}

/// softmax along rows: y (rows x cols, leading dimension ldy) from x.
template <class T>
void softmax(const T* x, std::size_t rows, std::size_t cols, std::size_t ld, core::accumulation_t<T>* y,
             std::size_t ldy, const execution& e = {}) {
  detail::check_matrix(x, rows, cols, ld, "softmax");
  detail::check_matrix(y, rows, cols, ldy, "softmax", true);
  if (cols == 0) return;
  detail::run_units(rows, cols, e, [&](auto arch, std::size_t r0, std::size_t r1) {
    cpu::detail::rowwise_kernel<T, decltype(arch)>::softmax(x, r0, r1, cols, ld, y, ldy);
  });
}

/// log_softmax along rows.
template <class T>
void log_softmax(const T* x, std::size_t rows, std::size_t cols, std::size_t ld, core::accumulation_t<T>* y,
                 std::size_t ldy, const execution& e = {}) {
  detail::check_matrix(x, rows, cols, ld, "log_softmax");
  detail::check_matrix(y, rows, cols, ldy, "log_softmax", true);
  if (cols == 0) return;
  detail::run_units(rows, cols, e, [&](auto arch, std::size_t r0, std::size_t r1) {
    cpu::detail::rowwise_kernel<T, decltype(arch)>::log_softmax(x, r0, r1, cols, ld, y, ldy);
  });
}

/// RMSNorm forward along rows; w (cols values) may be null.
template <class T>
void rms_norm(const T* x, std::size_t rows, std::size_t cols, std::size_t ld, const T* w, double eps,
              core::accumulation_t<T>* y, std::size_t ldy, const execution& e = {}) {
  using A = core::accumulation_t<T>;
  const A ea = detail::checked_eps<A>(eps, "rms_norm");
  detail::check_matrix(x, rows, cols, ld, "rms_norm");
  detail::check_matrix(y, rows, cols, ldy, "rms_norm", true);
  if (cols == 0) return;
  detail::run_units(rows, cols, e, [&](auto arch, std::size_t r0, std::size_t r1) {
    cpu::detail::rowwise_kernel<T, decltype(arch)>::rms_norm(x, r0, r1, cols, ld, w, ea, y, ldy);
  });
}

/// LayerNorm forward along rows (two-pass mean and variance); w and b (cols values) may be null.
template <class T>
void layer_norm(const T* x, std::size_t rows, std::size_t cols, std::size_t ld, const T* w, const T* b,
                double eps, core::accumulation_t<T>* y, std::size_t ldy, const execution& e = {}) {
  using A = core::accumulation_t<T>;
  const A ea = detail::checked_eps<A>(eps, "layer_norm");
  detail::check_matrix(x, rows, cols, ld, "layer_norm");
  detail::check_matrix(y, rows, cols, ldy, "layer_norm", true);
  if (cols == 0) return;
  detail::run_units(rows, cols, e, [&](auto arch, std::size_t r0, std::size_t r1) {
    cpu::detail::rowwise_kernel<T, decltype(arch)>::layer_norm(x, r0, r1, cols, ld, w, b, ea, y, ldy);
  });
}

}  // namespace bitexact
