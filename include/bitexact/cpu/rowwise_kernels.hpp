// bitexact/cpu/rowwise_kernels.hpp - CPU kernels of the row-wise family, one functor per Arch.
//
// Every kernel computes exactly the operations of reference/rowwise.hpp:
//   - fixed_order_reduce_simd holds the W virtual lanes of core/fixed_order.hpp in W/B batches
//     of B lanes: lane l of a leaf still adds the values l, l + W, l + 2W, ... in index order,
//     the partial last block of a leaf goes to the same lanes one value at a time, and the lane
//     tree (core::combine_lanes) and the leaf tree (core::tree_stack) are core's own. So it
//     returns reference::fixed_order_reduce's bits for any B.
//   - column sums hold the W lanes of a block of columns in a buffer (lane-major), add row r
//     into lane (r - leaf start) mod W of every column of the block with SIMD across columns,
//     combine the lanes with the same halving tree and push each column's leaf value into that
//     column's core::tree_stack: again exactly the 1-D reduction of each strided column.
//   - exp runs core::exp lane by lane (cpu/simd_math.hpp); multiplies feeding an add are
//     mul_rn, never fused.
// Elementwise passes without a multiply-add (subtract, divide, multiply chains) are plain loops
// that the compiler vectorizes: each element is one IEEE operation on any ISA.
// The scalar_arch path runs the reference itself.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "../core/bfloat16.hpp"
#include "../core/exact.hpp"
#include "../core/fixed_order.hpp"
#include "../core/math.hpp"
#include "../reference/rowwise.hpp"
#include "minmax_kernels.hpp"
#include "dispatch.hpp"  // with_arch, scalar_arch
#include "simd_math.hpp"

namespace bitexact {
namespace cpu {
namespace detail {

template <class A>
inline A canonical_nan_of() {
  return static_cast<A>(core::canonical_nan());
}

/// B consecutive inputs widened to A (exact).
template <class A, class Arch, class T>
inline xsimd::batch<A, Arch> load_widened(const T* p) {
  using V = xsimd::batch<A, Arch>;
  if constexpr (std::is_same<T, A>::value) {
    return V::load_unaligned(p);
  } else {
    alignas(64) A tmp[V::size];
    for (std::size_t j = 0; j < V::size; ++j) tmp[j] = A(core::widen(p[j]));
    return V::load_aligned(tmp);
  }
}

/// reference::fixed_order_reduce<A>(n, value_at) with the lanes in batches. batch_at(i) must
/// return the batch of value_at(i), ..., value_at(i + B - 1).
template <class A, class Arch, class BatchAt, class ValueAt>
A fixed_order_reduce_simd(std::size_t n, BatchAt batch_at, ValueAt value_at) {
  using shape = core::fixed_order_shape<A>;
  using V = xsimd::batch<A, Arch>;
  constexpr std::size_t W = shape::lanes, L = shape::leaf, B = V::size, Q = W / B;
  static_assert(W % B == 0, "lane count must be a multiple of the batch size");
  if (n == 0) return A(0);
  core::tree_stack<A> tree;
  for (std::size_t leaf = 0; leaf < n; leaf += L) {
    const std::size_t end = leaf + L < n ? leaf + L : n;
    V acc[Q];
    for (auto& a : acc) a = V(core::negative_zero<A>());
    std::size_t i = leaf;
    for (; i + W <= end; i += W)
      for (std::size_t q = 0; q < Q; ++q) acc[q] = acc[q] + batch_at(i + q * B);
    alignas(64) A lane[W];
    for (std::size_t q = 0; q < Q; ++q) acc[q].store_aligned(lane + q * B);
    for (; i < end; ++i) lane[(i - leaf) % W] += value_at(i);
    tree.push(core::combine_lanes(lane));
  }
  return tree.finish();
}

template <class A, class Arch, class T>
A sum_simd(const T* x, std::size_t n) {
  return fixed_order_reduce_simd<A, Arch>(
      n, [x](std::size_t i) { return load_widened<A, Arch>(x + i); },
      [x](std::size_t i) { return A(core::widen(x[i])); });
}

/// y[i] = core::exp(y[i]) for i < n (the float overload for float).
template <class A, class Arch>
void exp_inplace(A* y, std::size_t n) {
  using VD = xsimd::batch<double, Arch>;
  constexpr std::size_t B = VD::size;
  std::size_t i = 0;
  if constexpr (std::is_same<A, double>::value) {
    // Four independent batches per step: the Horner chain is latency-bound.
    for (; i + 4 * B <= n; i += 4 * B) {
      const VD e0 = exp_batch(VD::load_unaligned(y + i)), e1 = exp_batch(VD::load_unaligned(y + i + B));
      const VD e2 = exp_batch(VD::load_unaligned(y + i + 2 * B)), e3 = exp_batch(VD::load_unaligned(y + i + 3 * B));
      e0.store_unaligned(y + i);
      e1.store_unaligned(y + i + B);
      e2.store_unaligned(y + i + 2 * B);
      e3.store_unaligned(y + i + 3 * B);
    }
    for (; i + B <= n; i += B) exp_batch(VD::load_unaligned(y + i)).store_unaligned(y + i);
  } else {
    alignas(64) double t[4 * B];
    for (; i + 4 * B <= n; i += 4 * B) {
      for (std::size_t j = 0; j < 4 * B; ++j) t[j] = static_cast<double>(y[i + j]);
      const VD e0 = exp_float_batch(VD::load_aligned(t)), e1 = exp_float_batch(VD::load_aligned(t + B));
      const VD e2 = exp_float_batch(VD::load_aligned(t + 2 * B)), e3 = exp_float_batch(VD::load_aligned(t + 3 * B));
      e0.store_aligned(t);
      e1.store_aligned(t + B);
      e2.store_aligned(t + 2 * B);
      e3.store_aligned(t + 3 * B);
      for (std::size_t j = 0; j < 4 * B; ++j) y[i + j] = static_cast<A>(t[j]);
    }
  }
  for (; i < n; ++i) y[i] = core::exp(y[i]);
}

/// The maximum of v[0, n) in the order of reference/minmax.hpp; NaN if any is NaN.
template <class A, class Arch>
A row_max(const A* v, std::size_t n) {
  using kernel = minmax_kernel<A, Arch, true>;
  const auto k = kernel::best_key(v, n);
  if (k == nan_key<key_t<A>, true>()) return canonical_nan_of<A>();
  return value_of_key<A>(k);
}

template <class A>
inline void canonicalize(A* y, std::size_t n) {
  const A nan = canonical_nan_of<A>();
  for (std::size_t i = 0; i < n; ++i) y[i] = y[i] != y[i] ? nan : y[i];
}

/// Row kernels on rows [r0, r1). Arch = scalar_arch runs the reference.
template <class T, class Arch, bool Simd = !std::is_same<Arch, scalar_arch>::value>
struct rowwise_kernel {
  using A = core::accumulation_t<T>;
  static void row_sum(const T* x, std::size_t r0, std::size_t r1, std::size_t cols, std::size_t ld, A* out) {
    reference::row_sum_fixed_order(x + r0 * ld, r1 - r0, cols, ld, out + r0);
  }
  static void col_sum(const T* x, std::size_t rows, std::size_t c0, std::size_t c1, std::size_t ld, A* out) {
    reference::col_sum_fixed_order(x + c0, rows, c1 - c0, ld, out + c0);
  }
  static void softmax(const T* x, std::size_t r0, std::size_t r1, std::size_t cols, std::size_t ld, A* y,
                      std::size_t ldy) {
    reference::softmax(x + r0 * ld, r1 - r0, cols, ld, y + r0 * ldy, ldy);
  }
  static void log_softmax(const T* x, std::size_t r0, std::size_t r1, std::size_t cols, std::size_t ld, A* y,
                          std::size_t ldy) {
    reference::log_softmax(x + r0 * ld, r1 - r0, cols, ld, y + r0 * ldy, ldy);
  }
  static void rms_norm(const T* x, std::size_t r0, std::size_t r1, std::size_t cols, std::size_t ld, const T* w,
                       A eps, A* y, std::size_t ldy) {
    reference::rms_norm(x + r0 * ld, r1 - r0, cols, ld, w, eps, y + r0 * ldy, ldy);
  }
  static void layer_norm(const T* x, std::size_t r0, std::size_t r1, std::size_t cols, std::size_t ld, const T* w,
                         const T* b, A eps, A* y, std::size_t ldy) {
    reference::layer_norm(x + r0 * ld, r1 - r0, cols, ld, w, b, eps, y + r0 * ldy, ldy);
  }
};

template <class T, class Arch>
struct rowwise_kernel<T, Arch, true> {
  using A = core::accumulation_t<T>;
  using V = xsimd::batch<A, Arch>;
  static constexpr std::size_t B = V::size;

  static void row_sum(const T* x, std::size_t r0, std::size_t r1, std::size_t cols, std::size_t ld, A* out) {
    for (std::size_t r = r0; r < r1; ++r) out[r] = sum_simd<A, Arch>(x + r * ld, cols);
  }

  /// Columns [c0, c1) over all rows; c1 - c0 <= col_block.
  static constexpr std::size_t col_block = 1024 / sizeof(A);  // 1 KiB of each row per pass
  static void col_sum(const T* x, std::size_t rows, std::size_t c0, std::size_t c1, std::size_t ld, A* out) {
    using shape = core::fixed_order_shape<A>;
    constexpr std::size_t W = shape::lanes, L = shape::leaf, CB = col_block;
    const std::size_t nc = c1 - c0;
    if (rows == 0) {
      for (std::size_t c = c0; c < c1; ++c) out[c] = A(0);
      return;
    }
    std::vector<A> lanes_buf(W * CB);
    A* lanes = lanes_buf.data();  // lanes[l * CB + c]
    std::vector<core::tree_stack<A>> tree(nc);
    const std::size_t vec_end = nc - nc % B;
    for (std::size_t leaf = 0; leaf < rows; leaf += L) {
      const std::size_t end = leaf + L < rows ? leaf + L : rows;
      for (std::size_t k = 0; k < W * CB; ++k) lanes[k] = core::negative_zero<A>();
      for (std::size_t r = leaf; r < end; ++r) {
        A* lane = lanes + ((r - leaf) % W) * CB;
        const T* row = x + r * ld + c0;
#if defined(__GNUC__) || defined(__clang__)
        // Rows are ld apart: prefetch this block's piece of the row 8 ahead (no effect on bits).
        if (r + 8 < end)
          for (std::size_t k = 0; k < nc * sizeof(T); k += 64)
            __builtin_prefetch(reinterpret_cast<const char*>(row + 8 * ld) + k);
#endif
        std::size_t c = 0;
        for (; c < vec_end; c += B)
          (V::load_unaligned(lane + c) + load_widened<A, Arch>(row + c)).store_unaligned(lane + c);
        for (; c < nc; ++c) lane[c] += A(core::widen(row[c]));
      }
      // The lane tree of every column at once: lane[l] += lane[l + w] for w = W/2, ..., 1.
      for (std::size_t w = W / 2; w >= 1; w /= 2)
        for (std::size_t l = 0; l < w; ++l) {
          A* dst = lanes + l * CB;
          const A* src = lanes + (l + w) * CB;
          std::size_t c = 0;
          for (; c < vec_end; c += B)
            (V::load_unaligned(dst + c) + V::load_unaligned(src + c)).store_unaligned(dst + c);
          for (; c < nc; ++c) dst[c] = dst[c] + src[c];
        }
      for (std::size_t c = 0; c < nc; ++c) tree[c].push(lanes[c]);
    }
    for (std::size_t c = 0; c < nc; ++c) out[c0 + c] = tree[c].finish();
  }

  /// Widens row r into o (or leaves it when x and o are the same row of A values).
  static void widen_row(const T* row, std::size_t cols, A* o) {
    if constexpr (std::is_same<T, A>::value) {
      if (static_cast<const void*>(row) == static_cast<const void*>(o)) return;
    }
    for (std::size_t i = 0; i < cols; ++i) o[i] = A(core::widen(row[i]));
  }

  static void softmax(const T* x, std::size_t r0, std::size_t r1, std::size_t cols, std::size_t ld, A* y,
                      std::size_t ldy) {
    if (cols == 0) return;
    for (std::size_t r = r0; r < r1; ++r) {
      A* o = y + r * ldy;
      widen_row(x + r * ld, cols, o);
      const A m = row_max<A, Arch>(o, cols);
      for (std::size_t i = 0; i < cols; ++i) o[i] = o[i] - m;
      exp_inplace<A, Arch>(o, cols);
      const A s = fixed_order_reduce_simd<A, Arch>(
          cols, [o](std::size_t i) { return V::load_unaligned(o + i); }, [o](std::size_t i) { return o[i]; });
      const A nan = canonical_nan_of<A>();
      for (std::size_t i = 0; i < cols; ++i) {
        const A v = o[i] / s;
        o[i] = v != v ? nan : v;
      }
    }
  }

  static void log_softmax(const T* x, std::size_t r0, std::size_t r1, std::size_t cols, std::size_t ld, A* y,
                          std::size_t ldy) {
    if (cols == 0) return;
    std::vector<A> e(cols);
    for (std::size_t r = r0; r < r1; ++r) {
      A* o = y + r * ldy;
      widen_row(x + r * ld, cols, o);
      const A m = row_max<A, Arch>(o, cols);
      for (std::size_t i = 0; i < cols; ++i) o[i] = o[i] - m;
      for (std::size_t i = 0; i < cols; ++i) e[i] = o[i];
      exp_inplace<A, Arch>(e.data(), cols);
      const A* ep = e.data();
      const A s = fixed_order_reduce_simd<A, Arch>(
          cols, [ep](std::size_t i) { return V::load_unaligned(ep + i); }, [ep](std::size_t i) { return ep[i]; });
      const A l = core::log(s);
      const A nan = canonical_nan_of<A>();
      for (std::size_t i = 0; i < cols; ++i) {
        const A v = o[i] - l;
        o[i] = v != v ? nan : v;
      }
    }
  }

  static void rms_norm(const T* x, std::size_t r0, std::size_t r1, std::size_t cols, std::size_t ld, const T* w,
                       A eps, A* y, std::size_t ldy) {
    if (cols == 0) return;
    for (std::size_t r = r0; r < r1; ++r) {
      const T* row = x + r * ld;
      const A q = fixed_order_reduce_simd<A, Arch>(
          cols,
          [row](std::size_t i) {
            const V v = load_widened<A, Arch>(row + i);
            return mul_rn(v, v);
          },
          [row](std::size_t i) {
            const A v = A(core::widen(row[i]));
            return core::mul_rn(v, v);
          });
      const A ms = q / static_cast<A>(cols);
      const A inv = A(1) / std::sqrt(A(ms + eps));
      A* o = y + r * ldy;
      // Multiplies only (no add follows), so a plain loop cannot be contracted.
      if (w)
        for (std::size_t i = 0; i < cols; ++i) o[i] = (A(core::widen(row[i])) * inv) * A(core::widen(w[i]));
      else
        for (std::size_t i = 0; i < cols; ++i) o[i] = A(core::widen(row[i])) * inv;
      canonicalize(o, cols);
    }
  }

  static void layer_norm(const T* x, std::size_t r0, std::size_t r1, std::size_t cols, std::size_t ld, const T* w,
                         const T* b, A eps, A* y, std::size_t ldy) {
    if (cols == 0) return;
    for (std::size_t r = r0; r < r1; ++r) {
      const T* row = x + r * ld;
      const A mean = sum_simd<A, Arch>(row, cols) / static_cast<A>(cols);
      const V vmean(mean);
      const A q = fixed_order_reduce_simd<A, Arch>(
          cols,
          [row, vmean](std::size_t i) {
            const V d = load_widened<A, Arch>(row + i) - vmean;
            return mul_rn(d, d);
          },
          [row, mean](std::size_t i) {
            const A d = A(core::widen(row[i])) - mean;
            return core::mul_rn(d, d);
          });
      const A var = q / static_cast<A>(cols);
      const A inv = A(1) / std::sqrt(A(var + eps));
      const V vinv(inv);
      A* o = y + r * ldy;
      std::size_t i = 0;
      for (; i + B <= cols; i += B) {
        V v = mul_rn(V(load_widened<A, Arch>(row + i) - vmean), vinv);
        if (w) v = mul_rn(v, load_widened<A, Arch>(w + i));
        if (b) v = v + load_widened<A, Arch>(b + i);
        v.store_unaligned(o + i);
      }
      for (; i < cols; ++i) {
        A v = core::mul_rn(A(A(core::widen(row[i])) - mean), inv);
        if (w) v = core::mul_rn(v, A(core::widen(w[i])));
        if (b) v = v + A(core::widen(b[i]));
        o[i] = v;
      }
      canonicalize(o, cols);
    }
  }
};

/// Exact-tier sums (ISA-independent: integer accumulation in core::exact_accumulator).
template <class T>
void row_sum_exact(const T* x, std::size_t r0, std::size_t r1, std::size_t cols, std::size_t ld,
                   core::accumulation_t<T>* out) {
  reference::row_sum_exact(x + r0 * ld, r1 - r0, cols, ld, out + r0);
}
template <class T>
void col_sum_exact(const T* x, std::size_t rows, std::size_t c0, std::size_t c1, std::size_t ld,
                   core::accumulation_t<T>* out) {
  using A = core::accumulation_t<T>;
  const std::size_t nc = c1 - c0;
  std::vector<core::exact_accumulator<A>> acc(nc);
  for (std::size_t r = 0; r < rows; ++r) {
    const T* row = x + r * ld + c0;
    for (std::size_t c = 0; c < nc; ++c) acc[c].add(A(core::widen(row[c])));
  }
  for (std::size_t c = 0; c < nc; ++c) out[c0 + c] = rows == 0 ? A(0) : acc[c].round();
}

}  // namespace detail
}  // namespace cpu
}  // namespace bitexact
