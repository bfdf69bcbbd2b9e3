// bitexact/gemm_checks.hpp - the operand checks of every GEMM entry point, CPU and CUDA alike.
//
// One definition of GEMM's "bad input" (gemm.hpp): a leading dimension smaller than the stored
// row length of a non-empty matrix, an extent that overflows, a null pointer for a matrix with
// elements, C overlapping A or B (batched: also two C entries overlapping). Each check throws
// std::invalid_argument before anything is written. Host code only; no ISA, no CUDA runtime.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

#include "core/gemm_order.hpp"

namespace bitexact {
namespace detail {

/// Extent of a row-major matrix of `rows` x `cols` with row stride ld, in elements (0 if empty).
/// Throws when ld < cols or the extent overflows.
inline std::size_t gemm_extent(const char* what, const char* name, std::size_t rows, std::size_t cols,
                               std::size_t ld) {
  if (rows == 0 || cols == 0) return 0;
  if (ld < cols)
    throw std::invalid_argument(std::string("bitexact::") + what + ": " + name + " (" + std::to_string(ld) +
                                ") is smaller than the stored row length " + std::to_string(cols));
  if (rows - 1 > (std::numeric_limits<std::size_t>::max() - cols) / ld)
    throw std::invalid_argument(std::string("bitexact::") + what + ": the extent of " + name + " overflows");
  return (rows - 1) * ld + cols;
}

inline bool gemm_spans_overlap(const void* p, std::size_t pbytes, const void* q, std::size_t qbytes) {
  if (pbytes == 0 || qbytes == 0) return false;
  const std::uintptr_t a = reinterpret_cast<std::uintptr_t>(p), b = reinterpret_cast<std::uintptr_t>(q);
  return a < b + qbytes && b < a + pbytes;
}

/// Element counts spanned by the operands of one (or `batch` strided) products.
struct gemm_spans {
  std::size_t a, b, c;  ///< of one product
};

/// Every operand check of the contract's "bad input" list, for one product (batch = 1, strides
/// unused) or `batch` strided ones; throws std::invalid_argument("bitexact::<what>: ...").
template <class In, class T>
gemm_spans gemm_check_operands(const char* what, transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k,
                         const In* a, std::size_t lda, std::size_t stride_a, const In* b, std::size_t ldb,
                         std::size_t stride_b, const T* c, std::size_t ldc, std::size_t stride_c, std::size_t batch) {
  const bool an = ta == transpose::no, bn = tb == transpose::no;
  gemm_spans s;
  s.a = gemm_extent(what, "lda", an ? m : k, an ? k : m, lda);
  s.b = gemm_extent(what, "ldb", bn ? k : n, bn ? n : k, ldb);
  s.c = gemm_extent(what, "ldc", m, n, ldc);
  if (batch == 0) s.a = s.b = s.c = 0;
  if ((s.a > 0 && a == nullptr) || (s.b > 0 && b == nullptr) || (s.c > 0 && c == nullptr))
    throw std::invalid_argument(std::string("bitexact::") + what + ": null matrix pointer with a non-zero size");
  auto total = [&](std::size_t one, std::size_t stride, const char* name) -> std::size_t {
    if (one == 0 || batch <= 1) return one;
    if (batch - 1 > (std::numeric_limits<std::size_t>::max() - one) / std::max<std::size_t>(stride, 1))
      throw std::invalid_argument(std::string("bitexact::") + what + ": the extent of " + name + " overflows");
    return (batch - 1) * stride + one;
  };
  const std::size_t ta_all = total(s.a, stride_a, "A"), tb_all = total(s.b, stride_b, "B"),
                    tc_all = total(s.c, stride_c, "C");
  if (batch > 1 && s.c > 0 && stride_c < s.c)
    throw std::invalid_argument(std::string("bitexact::") + what + ": stride_c is smaller than one C matrix, "
                                "so two batch entries would write the same memory");
  if (gemm_spans_overlap(c, tc_all * sizeof(T), a, ta_all * sizeof(In)) ||
      gemm_spans_overlap(c, tc_all * sizeof(T), b, tb_all * sizeof(In)))
    throw std::invalid_argument(std::string("bitexact::") + what + ": C overlaps A or B");
  return s;
}

}  // namespace detail
}  // namespace bitexact
