// bitexact/axis.hpp - every 1-D reduction along an axis of a row-major 2-D array.
//
// Element (r, c) of x is x[r * ld + c], ld >= cols. For an op `f` of reduce.hpp or minmax.hpp:
//   row_f(x, rows, cols, ld, out[rows], ...)   out[r] = f(row r), the cols values x[r, 0..cols)
//   col_f(x, rows, cols, ld, out[cols], ...)   out[c] = f(column c), the strided vector
//                                              x[0, c], x[1, c], ..., x[rows - 1, c]
// with exactly the bits of the 1-D call on that row or column (its canonical order, tier, NaN
// and signed-zero rules, errors), so a row's result depends on that row alone: never on how
// many rows are in the batch, the thread count or the ISA. row_dot/col_dot pair row r (column
// c) of x with the same row (column) of y (leading dimension ldy).
//
// Ops: squared_norm, norm, dot, variance (ddof), min, max, argmin, argmax (row_sum, col_sum,
// row_mean and col_mean are in rowwise.hpp, with faster dedicated kernels). min/max/argmin/
// argmax of an empty row or column throw std::invalid_argument before anything is written,
// like their 1-D forms.
//
// Work: rows (columns) are distributed over the threads; each is reduced by the 1-D op on one
// thread with the call's ISA. Columns are first gathered into a contiguous buffer of the
// worker, so the column forms cost a strided copy more than the row forms.
//
// Errors: ld < cols, null pointers with work to do, a null output: std::invalid_argument;
// non-IEEE thread modes: fp_environment_error (fp_environment.hpp).
#pragma once
#include <cstddef>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/bfloat16.hpp"
#include "cpu/threads.hpp"
#include "execution.hpp"
#include "fp_environment.hpp"
#include "minmax.hpp"
#include "reduce.hpp"
#include "tier.hpp"

namespace bitexact {
namespace detail {

inline void axis_check(const void* x, std::size_t rows, std::size_t cols, std::size_t ld, const void* out,
                       std::size_t n_out, const char* what) {
  require_ieee_environment(what);
  auto fail = [&](const char* m) { throw std::invalid_argument(std::string("bitexact::") + what + ": " + m); };
  if (ld < cols) fail("leading dimension < cols");
  if (rows > 0 && cols > 0 && x == nullptr) fail("null input with rows > 0 and cols > 0");
  if (n_out > 0 && out == nullptr) fail("null output");
  if (rows > 0 && cols > 0 && (rows - 1) > (std::numeric_limits<std::size_t>::max() - cols) / (ld == 0 ? 1 : ld))
    fail("rows * ld overflows std::size_t");
}

/// out[r] = op(row r, cols, execution{1, isa}) for every row, rows over the threads.
template <class R, class Op>
void for_rows(std::size_t rows, std::size_t cols, R* out, const execution& e, Op op) {
  const execution one{1, resolved_isa(e)};
  const std::uint64_t per = cpu::detail::min_work_per_thread(16384) / (cols + 1) + 1;
  cpu::parallel_chunks(resolved_threads(e), cpu::canonical_chunks{rows, per}, [&](std::uint64_t b, std::uint64_t end) {
    for (std::uint64_t r = b; r < end; ++r) out[r] = op(static_cast<std::size_t>(r), one);
  });
}

/// out[c] = op(column c gathered into a contiguous buffer, execution{1, isa}).
template <class R, class T, class Op>
void for_cols(const T* x, std::size_t rows, std::size_t cols, std::size_t ld, R* out, const execution& e, Op op) {
  const execution one{1, resolved_isa(e)};
  const std::uint64_t per = cpu::detail::min_work_per_thread(16384) / (rows + 1) + 1;
  cpu::parallel_chunks(resolved_threads(e), cpu::canonical_chunks{cols, per}, [&](std::uint64_t b, std::uint64_t end) {
    std::vector<T> column(rows);
    for (std::uint64_t c = b; c < end; ++c) {
      for (std::size_t r = 0; r < rows; ++r) column[r] = x[r * ld + c];
      out[c] = op(column.data(), static_cast<std::size_t>(c), one);
    }
  });
}

template <class T>
void nonempty(std::size_t n, const char* what) {
  if (n == 0) throw std::invalid_argument(std::string("bitexact::") + what + ": empty rows or columns have no " + what);
}

}  // namespace detail

#define BITEXACT_AXIS_OP(NAME, RESULT, CALL, EXTRA_PARAMS, NONEMPTY)                                          \
  template <class T>                                                                                            \
  void row_##NAME(const T* x, std::size_t rows, std::size_t cols, std::size_t ld, RESULT* out EXTRA_PARAMS,   \
                  const execution& e = {}) {                                                                  \
    detail::axis_check(x, rows, cols, ld, out, rows, "row_" #NAME);                                             \
    if (NONEMPTY && rows > 0) detail::nonempty<T>(cols, "row_" #NAME);                                         \
    detail::for_rows(rows, cols, out, e, [&](std::size_t r, const execution& one) {                            \
      const T* v = x + r * ld;                                                                                   \
      const std::size_t n = cols;                                                                               \
      return CALL;                                                                                              \
    });                                                                                                         \
  }                                                                                                             \
  template <class T>                                                                                            \
  void col_##NAME(const T* x, std::size_t rows, std::size_t cols, std::size_t ld, RESULT* out EXTRA_PARAMS,   \
                  const execution& e = {}) {                                                                  \
    detail::axis_check(x, rows, cols, ld, out, cols, "col_" #NAME);                                             \
    if (NONEMPTY && cols > 0) detail::nonempty<T>(rows, "col_" #NAME);                                         \
    detail::for_cols(x, rows, cols, ld, out, e, [&](const T* v, std::size_t, const execution& one) {           \
      const std::size_t n = rows;                                                                               \
      return CALL;                                                                                              \
    });                                                                                                         \
  }

#define BITEXACT_AXIS_COMMA ,
BITEXACT_AXIS_OP(squared_norm, core::accumulation_t<T>, squared_norm(v, n, t, one),
                 BITEXACT_AXIS_COMMA tier t = tier::fixed_order, false)
BITEXACT_AXIS_OP(norm, core::accumulation_t<T>, norm(v, n, t, one), BITEXACT_AXIS_COMMA tier t = tier::fixed_order, false)
BITEXACT_AXIS_OP(variance, core::accumulation_t<T>, variance(v, n, ddof, t, one),
                 BITEXACT_AXIS_COMMA std::size_t ddof = 0 BITEXACT_AXIS_COMMA tier t = tier::fixed_order, false)
BITEXACT_AXIS_OP(min, T, ::bitexact::min(v, n, one), , true)
BITEXACT_AXIS_OP(max, T, ::bitexact::max(v, n, one), , true)
BITEXACT_AXIS_OP(argmin, std::size_t, ::bitexact::argmin(v, n, one), , true)
BITEXACT_AXIS_OP(argmax, std::size_t, ::bitexact::argmax(v, n, one), , true)
#undef BITEXACT_AXIS_OP
#undef BITEXACT_AXIS_COMMA

/// out[r] = dot(row r of x, row r of y).
template <class T>
void row_dot(const T* x, std::size_t ldx, const T* y, std::size_t ldy, std::size_t rows, std::size_t cols,
             core::accumulation_t<T>* out, tier t = tier::fixed_order, const execution& e = {}) {
  detail::axis_check(x, rows, cols, ldx, out, rows, "row_dot");
  detail::axis_check(y, rows, cols, ldy, out, rows, "row_dot");
  detail::for_rows(rows, cols, out, e,
                   [&](std::size_t r, const execution& one) { return dot(x + r * ldx, y + r * ldy, cols, t, one); });
}

/// out[c] = dot(column c of x, column c of y).
template <class T>
void col_dot(const T* x, std::size_t ldx, const T* y, std::size_t ldy, std::size_t rows, std::size_t cols,
             core::accumulation_t<T>* out, tier t = tier::fixed_order, const execution& e = {}) {
  detail::axis_check(x, rows, cols, ldx, out, cols, "col_dot");
  detail::axis_check(y, rows, cols, ldy, out, cols, "col_dot");
  const execution one{1, resolved_isa(e)};
  cpu::parallel_chunks(resolved_threads(e), cpu::canonical_chunks{cols, 1}, [&](std::uint64_t b, std::uint64_t end) {
    std::vector<T> cx(rows), cy(rows);
    for (std::uint64_t c = b; c < end; ++c) {
      for (std::size_t r = 0; r < rows; ++r) {
        cx[r] = x[r * ldx + c];
        cy[r] = y[r * ldy + c];
      }
      out[c] = dot(cx.data(), cy.data(), rows, t, one);
    }
  });
}

}  // namespace bitexact
