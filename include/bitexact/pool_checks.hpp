// bitexact/pool_checks.hpp - the argument checks of every pooling entry point, CPU and CUDA.
//
// One definition of pooling's "bad input" (pool.hpp): zero kernel or stride, padding above half
// the kernel, a kernel larger than the padded input, adaptive output sizes of 0 (or a non-empty
// output of an empty input), null pointers with non-zero sizes, outputs overlapping inputs.
// Each throws std::invalid_argument("bitexact::<what>: ...") before anything is written. Host
// code only. (max_pool2d_backward's index range is checked where the indices are readable.)
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "core/conv.hpp"
#include "core/pool.hpp"

namespace bitexact {
namespace detail {

inline void pool_check(bool ok, const char* what, const char* msg) {
  if (!ok) throw std::invalid_argument(std::string("bitexact::") + what + ": " + msg);
}
inline bool pool_overlap(const void* a, std::size_t ab, const void* b, std::size_t bb) {
  if (!a || !b || !ab || !bb) return false;
  const auto pa = reinterpret_cast<std::uintptr_t>(a), pb = reinterpret_cast<std::uintptr_t>(b);
  return pa < pb + bb && pb < pa + ab;
}

inline core::pool_geometry pool_validate(const pool2d_shape& s, const char* what) {
  pool_check(s.kernel_h > 0 && s.kernel_w > 0, what, "zero kernel size");
  pool_check(s.stride_h > 0 && s.stride_w > 0, what, "zero stride");
  pool_check(2 * s.pad_h <= s.kernel_h && 2 * s.pad_w <= s.kernel_w, what, "padding above half the kernel");
  pool_check(s.in_h + 2 * s.pad_h >= s.kernel_h && s.in_w + 2 * s.pad_w >= s.kernel_w, what,
             "the kernel is larger than the padded input");
  pool_check(s.data == layout::nchw || s.data == layout::nhwc, what, "unknown layout");
  return {s.batch, s.channels, s.in_h, s.in_w, s.out_h(), s.out_w(), s.kernel_h, s.kernel_w, s.stride_h,
          s.stride_w, s.pad_h, s.pad_w, s.count_include_pad, false, s.data};
}

inline core::pool_geometry pool_validate(const adaptive_pool2d_shape& s, const char* what) {
  pool_check(s.out_h > 0 && s.out_w > 0, what, "zero output size");
  pool_check(s.in_h > 0 && s.in_w > 0, what, "empty input plane");
  pool_check(s.data == layout::nchw || s.data == layout::nhwc, what, "unknown layout");
  return {s.batch, s.channels, s.in_h, s.in_w, s.out_h, s.out_w, 0, 0, 0, 0, 0, 0, false, true, s.data};
}

template <class T>
void pool_check_io(const core::pool_geometry& g, const T* in, std::size_t in_n, const void* out,
                   std::size_t out_bytes, const char* what) {
  pool_check(in != nullptr || in_n == 0, what, "null input with a non-zero size");
  pool_check(out != nullptr || out_bytes == 0, what, "null output with a non-zero size");
  pool_check(!pool_overlap(in, in_n * sizeof(T), out, out_bytes), what, "an output overlaps an input");
  (void)g;
}


/// max_pool2d_forward's pointer checks (x, y, and the nullable indices).
template <class T>
void pool_check_max_forward_io(const core::pool_geometry& g, const T* x, const T* y, const std::int64_t* indices,
                               const char* what) {
  const std::size_t nx = g.N * g.C * g.H * g.W, ny = g.N * g.C * g.OH * g.OW;
  pool_check_io(g, x, nx, y, ny * sizeof(T), what);
  pool_check(!pool_overlap(x, nx * sizeof(T), indices, ny * 8) && !pool_overlap(y, ny * sizeof(T), indices, ny * 8),
             what, "indices overlap x or y");
}

/// max_pool2d_backward's pointer checks (dy, indices, dx).
template <class T>
void pool_check_max_backward_io(const core::pool_geometry& g, const T* dy, const std::int64_t* indices, const T* dx,
                                const char* what) {
  const std::size_t nx = g.N * g.C * g.H * g.W, ny = g.N * g.C * g.OH * g.OW;
  pool_check_io(g, dy, ny, dx, nx * sizeof(T), what);
  pool_check(indices != nullptr || ny == 0, what, "null indices with a non-zero size");
  pool_check(!pool_overlap(dx, nx * sizeof(T), indices, ny * 8), what, "dx overlaps indices");
}

}  // namespace detail
}  // namespace bitexact
