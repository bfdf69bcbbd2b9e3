// bitexact/cuda/conv_kernels.hpp - kernel logic of the CUDA convolution and pooling, for CUDA
// and for emulation.
//
// Plain C++17 (compiles with g++ and nvcc). Every body is a BITEXACT_HD function of a
// thread_index; cuda/conv.cuh wraps them in __global__ kernels, cuda/conv_emulation.hpp runs the
// same text on the CPU, and tests/cuda_conv_emulation_test.cpp checks the bits against
// reference/conv.hpp and reference/pool.hpp for many grids, blocks, K splits and block orders.
//
// Convolution, both tiers. Each of the three ops is a set of E independent output elements, each
// a chain over its documented K index (core/conv.hpp: the terms are core::conv_*_term, the same
// functions the reference calls):
//   forward          E = y's elements (memory order), K = in/groups x kh x kw, + bias[oc]
//   backward-data    E = dx's elements (memory order), K = out/groups x kh x kw
//   backward-weight  E = dw's elements [oc][icg][r][c], K' = batch x out_h x out_w;
//                    + dbias: out_channels more elements, the same K' of dy * 1
// fixed_order: the work unit is (element, split); split s owns the whole canonical chunks
//   [chunks * s / S, chunks * (s + 1) / S) (gemm_plan's rule). With S == 1 a thread computes
//   core::gemm_fixed_order_sum (256-wide chunks of fused FMAs from +0, partials folded left to
//   right) and the epilogue; with S > 1 it writes core::gemm_chunk_partial of each chunk it owns
//   to the workspace (partials[chunk][e]) and the fold pass folds them left to right with
//   core::gemm_combine and applies the epilogue - the same operations in the same order. No
//   atomics. Epilogue: forward with bias core::gemm_epilogue(1, S, 1, bias[oc]) (one rounded
//   add), else gemm_epilogue(1, S, 0, 0) (S, NaN made canonical): the reference's.
// exact: per (element, split) a core::exact_accumulator of the exact products of k in
//   [K * s / S, K * (s + 1) / S); S > 1 stores normalized digits and flags (gemm_exact_words)
//   and the merge pass merges them (integer addition: any split, same state), adds the
//   bias exactly and rounds once (core::exact_accumulator::round: canonical NaN).
// Backward-weight's large K' is what split-K is for: blocks split it without atomics.
//
// Pooling (core/pool.hpp's windows and orders, conv_order_version), one thread per element:
//   max forward   per output: the window's first NaN in window order, else its first maximum
//                 (core::pool_window_max, shared with the reference); index ih * in_w + iw
//   avg forward   per output: core::pool_window_sum / divisor (adaptive: its window)
//   avg backward  a gather per dx element: +0, then dy[o] / divisor(o) of every window o that
//                 covers it, in increasing output index (oh, then ow) - core::pool_covering gives
//                 the candidate outputs, the window itself decides
//   max backward  a gather too, for any indices: unit (plane, owner t) of `owners` per plane;
//                 owner t zeroes the dx elements i of its plane with i % owners == t, then walks
//                 the plane's outputs in increasing index adding dy[o] where indices[o] == i is
//                 one of its own. Each element has one owner and sees its contributions in
//                 increasing output index (the reference's order) whatever `owners` is. Indices
//                 outside the plane match no element; the launchers refuse them first
//                 (max_pool_index_check_body), as the CPU API does.
//   NaN results are canonical. No float atomics (the index check's integer minimum is the only
//   atomic).
//
// Launch requirements: none; every body grid-strides over its work units (any grid, any block).
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "../conv_checks.hpp"
#include "../core/bfloat16.hpp"
#include "../core/config.hpp"
#include "../core/conv.hpp"
#include "../core/exact.hpp"
#include "../core/gemm_order.hpp"
#include "../core/pool.hpp"
#include "../pool_checks.hpp"
#include "../tier.hpp"
#include "gemm_kernels.hpp"
#include "launch.hpp"
#include "split_plan.hpp"

namespace bitexact {
namespace cuda {

/// Threads per block of the convolution kernels when conv_launch::block is 0.
inline constexpr unsigned default_conv_block = 128;
/// Owners per (image, channel) plane of max_pool2d_backward when pool_launch::owners is 0.
inline constexpr unsigned default_pool_owners = 32;

/// Launch options of the convolution kernels. 0 = the launcher's choice. None changes a bit.
struct conv_launch {
  unsigned grid = 0;    ///< blocks of each pass (they grid-stride)
  unsigned splits = 0;  ///< K splits (fixed_order: whole 256-wide chunks; clamped to the chunk count)
  unsigned block = 0;   ///< threads per block
};

/// Launch options of the pooling kernels. 0 = the launcher's choice. None changes a bit.
struct pool_launch {
  unsigned grid = 0;
  unsigned block = 0;
  unsigned owners = 0;  ///< max_pool2d_backward: threads per plane (each owns a residue class)
};

// ---------------------------------------------------------------------------------------------
// The three convolution ops as sets of chains. Each op: elements(), k(), at(e) -> element,
// a(el, k) and b(el, k) (the factors of term k), has_start() / start(el) (bias), store(el, v).
// They are templates over the accumulation type only: x and w are conv_operand<A>, so one
// kernel serves float and bfloat16 storage (nvcc compiles each exact-tier kernel once per A).

/// A read-only input of the kernels: float kernels read float or bfloat16 storage (chosen at
/// run time, the same for every thread of a launch; bfloat16 widened exactly), double kernels
/// double.
template <class A>
struct conv_operand;
template <>
struct conv_operand<float> {
  const void* p;
  bool bf16;
  conv_operand(const float* q) : p(q), bf16(false) {}
  conv_operand(const bfloat16* q) : p(q), bf16(true) {}
  BITEXACT_HD float operator[](std::size_t i) const {
    return bf16 ? static_cast<const bfloat16*>(p)[i].to_float() : static_cast<const float*>(p)[i];
  }
};
template <>
struct conv_operand<double> {
  const double* p;
  conv_operand(const double* q) : p(q) {}
  BITEXACT_HD double operator[](std::size_t i) const { return p[i]; }
};

/// An element of an N x C x H x W tensor in the call's layout, found by its memory-order
/// offset: forward's y element (c = oc, h = oh, w = ow) and backward-data's dx element (c = ic,
/// h = ih, w = iw) are both this.
struct conv_tensor_element {
  std::size_t n, c, h, w, off;
};
BITEXACT_HD inline conv_tensor_element conv_tensor_element_at(layout l, std::size_t C, std::size_t H,
                                                            std::size_t W, std::size_t e) {
  conv_tensor_element el;
  el.off = e;
  core::conv_coords(l, C, H, W, e, el.n, el.c, el.h, el.w);
  return el;
}

template <class A>
struct conv_forward_op {
  using element = conv_tensor_element;  ///< of y: c = oc, h = oh, w = ow
  conv2d_shape s;
  core::conv_dims d;
  conv_operand<A> x, w;
  const A* bias;
  A* y;
  conv_forward_op(const conv2d_shape& s_, conv_operand<A> x_, conv_operand<A> w_, const A* bias_, A* y_)
      : s(s_), d(s_), x(x_), w(w_), bias(bias_), y(y_) {}
  BITEXACT_HD std::size_t elements() const { return d.N * d.OC * d.OH * d.OW; }
  BITEXACT_HD std::size_t k() const { return d.k_forward(); }
  BITEXACT_HD element at(std::size_t e) const { return conv_tensor_element_at(s.data, d.OC, d.OH, d.OW, e); }
  BITEXACT_HD A a(const element& el, std::size_t k) const {
    return core::conv_forward_x_term<A>(s, d, x, el.n, el.c, el.h, el.w, k);
  }
  BITEXACT_HD A b(const element& el, std::size_t k) const { return w[el.c * d.k_forward() + k]; }
  BITEXACT_HD bool has_start() const { return bias != nullptr; }
  BITEXACT_HD A start(const element& el) const { return bias[el.c]; }
  BITEXACT_HD void store(const element& el, A v) const { y[el.off] = v; }
};

template <class A>
struct conv_backward_data_op {
  using element = conv_tensor_element;  ///< of dx: c = ic, h = ih, w = iw
  conv2d_shape s;
  core::conv_dims d;
  const A* dy;
  conv_operand<A> w;
  A* dx;
  conv_backward_data_op(const conv2d_shape& s_, const A* dy_, conv_operand<A> w_, A* dx_)
      : s(s_), d(s_), dy(dy_), w(w_), dx(dx_) {}
  BITEXACT_HD std::size_t elements() const { return d.N * d.C * d.H * d.W; }
  BITEXACT_HD std::size_t k() const { return d.k_backward_data(); }
  BITEXACT_HD element at(std::size_t e) const { return conv_tensor_element_at(s.data, d.C, d.H, d.W, e); }
  BITEXACT_HD A a(const element& el, std::size_t k) const {
    return core::conv_backward_data_dy_term<A>(s, d, dy, el.n, el.c, el.h, el.w, k);
  }
  BITEXACT_HD A b(const element& el, std::size_t k) const { return core::conv_backward_data_w_term<A>(d, w, el.c, k); }
  BITEXACT_HD bool has_start() const { return false; }
  BITEXACT_HD A start(const element&) const { return A(0); }
  BITEXACT_HD void store(const element& el, A v) const { dx[el.off] = v; }
};

/// dw[oc][icg][r][c] (elements [0, OC * Cg * kh * kw), dw's order) and, when dbias is not null,
/// dbias[oc] (the OC elements after them: the same K' of dy * 1, each step a rounded add; exact:
/// the exact sum).
template <class A>
struct conv_backward_weight_op {
  struct element {
    std::size_t oc, icg, r, c, off;
    bool bias;
  };
  conv2d_shape s;
  core::conv_dims d;
  conv_operand<A> x;
  const A* dy;
  A* dw;
  A* dbias;
  conv_backward_weight_op(const conv2d_shape& s_, conv_operand<A> x_, const A* dy_, A* dw_, A* dbias_)
      : s(s_), d(s_), x(x_), dy(dy_), dw(dw_), dbias(dbias_) {}
  BITEXACT_HD std::size_t weights() const { return d.OC * d.k_forward(); }
  BITEXACT_HD std::size_t elements() const { return weights() + (dbias ? d.OC : 0); }
  BITEXACT_HD std::size_t k() const { return d.k_backward_weight(); }
  BITEXACT_HD element at(std::size_t e) const {
    element el;
    el.off = e;
    el.bias = e >= weights();
    if (el.bias) {
      el.oc = e - weights();
      el.icg = el.r = el.c = 0;
      return el;
    }
    el.c = e % d.KW;
    el.r = (e / d.KW) % d.KH;
    el.icg = (e / (d.KW * d.KH)) % d.Cg;
    el.oc = e / (d.KW * d.KH * d.Cg);
    return el;
  }
  BITEXACT_HD A a(const element& el, std::size_t k) const {
    return core::conv_backward_weight_dy_term<A>(s, d, dy, el.oc, k);
  }
  BITEXACT_HD A b(const element& el, std::size_t k) const {
    return el.bias ? A(1) : core::conv_backward_weight_x_term<A>(s, d, x, el.oc, el.icg, el.r, el.c, k);
  }
  BITEXACT_HD bool has_start() const { return false; }
  BITEXACT_HD A start(const element&) const { return A(0); }
  BITEXACT_HD void store(const element& el, A v) const {
    if (el.bias)
      dbias[el.oc] = v;
    else
      dw[el.off] = v;
  }
};

namespace conv_detail {

using split_detail::ceil_div;
using split_detail::workspace_bytes;  // n == 1: E elements

/// The K split of one op: gemm_plan with m = E elements, n = 1 (its chunk_begin / k_begin are
/// the split rules). `splits` 0 picks one from the SM count: split K only when E leaves fewer
/// than 2 x sm_count x default_conv_block threads busy and the workspace stays under
/// gemm_auto_split_max_bytes; always whole chunks, at most 64 exact splits.
template <class A>
inline gemm_plan make_plan(std::size_t E, std::size_t K, tier t, unsigned splits, unsigned sm_count) {
  gemm_plan p{};
  p.m = E;
  p.n = 1;
  p.k = K;
  p.tiles_m = E;
  p.tiles_n = 1;
  p.chunks = ceil_div(K, core::gemm_k_chunk);
  // one thread per element: 2 x sm_count blocks of default_conv_block elements keep the device busy
  p.splits = split_detail::choose_splits<A>(splits, E, E, p.chunks, t, sm_count, default_conv_block);
  return p;
}

inline void check_tier(tier t, const char* what) {
  if (t != tier::fixed_order && t != tier::exact)
    throw std::invalid_argument(std::string("bitexact::") + what + ": unknown tier");
}

inline void check_launch(unsigned block, const char* what) {
  if (block > max_block_threads)
    throw std::invalid_argument(std::string("bitexact::") + what + ": launch.block must be <= 1024");
}

/// The CPU API's checks (conv_checks.hpp), for the launchers and the emulation alike.
template <class A, class X, class Wt>
bitexact::detail::conv_sizes validate_forward(const conv2d_shape& s, const X* x, const Wt* w, const A* bias, const A* y, tier t,
                                    unsigned block) {
  const char* what = "cuda::conv2d_forward";
  const bitexact::detail::conv_sizes z = bitexact::detail::conv_validate(s, what);
  bitexact::detail::conv_check_forward_io<A, X, Wt>(s, z, x, w, bias, y, what);
  check_tier(t, what);
  check_launch(block, what);
  return z;
}
template <class A, class Wt>
bitexact::detail::conv_sizes validate_backward_data(const conv2d_shape& s, const A* dy, const Wt* w, const A* dx, tier t,
                                          unsigned block) {
  const char* what = "cuda::conv2d_backward_data";
  const bitexact::detail::conv_sizes z = bitexact::detail::conv_validate(s, what);
  bitexact::detail::conv_check_backward_data_io<A, Wt>(z, dy, w, dx, what);
  check_tier(t, what);
  check_launch(block, what);
  return z;
}
template <class A, class X>
bitexact::detail::conv_sizes validate_backward_weight(const conv2d_shape& s, const X* x, const A* dy, const A* dw, const A* dbias,
                                            tier t, unsigned block) {
  const char* what = "cuda::conv2d_backward_weight";
  const bitexact::detail::conv_sizes z = bitexact::detail::conv_validate(s, what);
  bitexact::detail::conv_check_backward_weight_io<A, X>(s, z, x, dy, dw, dbias, what);
  check_tier(t, what);
  check_launch(block, what);
  return z;
}

/// The checks of an avg (or adaptive avg) pooling call, forward (in = x, out = y) or backward
/// (in = dy, out = dx), for the launchers and the emulation alike: returns the geometry and sets
/// n_out to the output's element count.
template <class T, class Shape>
core::pool_geometry validate_avg_pool(const Shape& s, const T* in, const T* out, bool backward, unsigned block,
                                      const char* what, std::size_t& n_out) {
  const core::pool_geometry g = bitexact::detail::pool_validate(s, what);
  const std::size_t nx = g.N * g.C * g.H * g.W, ny = g.N * g.C * g.OH * g.OW;
  n_out = backward ? nx : ny;
  bitexact::detail::pool_check_io(g, in, backward ? ny : nx, out, n_out * sizeof(T), what);
  check_launch(block, what);
  return g;
}

[[noreturn]] inline void throw_bad_pool_index(const char* what, unsigned long long position) {
  throw std::invalid_argument(std::string("bitexact::") + what + ": an index is outside the input plane (output " +
                              std::to_string(position) + ")");
}

/// The fixed_order epilogue of an element (the reference's).
template <class A, class Op>
BITEXACT_HD A finish_fixed(const Op& op, const typename Op::element& el, A s) {
  return op.has_start() ? core::gemm_epilogue(A(1), s, A(1), op.start(el)) : core::gemm_epilogue(A(1), s, A(0), A(0));
}

// The exact accumulator's operations, out of line in device code: compiled once per type and
// architecture and shared by every op's kernel (inlined into each, they were most of nvcc's
// time on this header). Host code (the emulation) inlines as usual.
#if defined(__CUDACC__)
#define BITEXACT_CONV_NOINLINE __noinline__
#else
#define BITEXACT_CONV_NOINLINE
#endif
template <class A>
BITEXACT_HD BITEXACT_CONV_NOINLINE void exact_add_product(core::exact_accumulator<A>& acc, A a, A b) {
  acc.add_product(a, b);
}
template <class A>
BITEXACT_HD BITEXACT_CONV_NOINLINE void exact_merge_stored(core::exact_accumulator<A>& acc, const std::int64_t* w) {
  using acc_t = core::exact_accumulator<A>;
  acc.merge(acc_t::from_digits(w, static_cast<std::uint32_t>(w[acc_t::digit_count])));
}
template <class A>
BITEXACT_HD BITEXACT_CONV_NOINLINE void exact_store(core::exact_accumulator<A>& acc, std::int64_t* w) {
  using acc_t = core::exact_accumulator<A>;
  acc.normalize();
  for (int dg = 0; dg < acc_t::digit_count; ++dg) w[dg] = acc.digit(dg);
  w[acc_t::digit_count] = static_cast<std::int64_t>(acc.flags());
}
/// + start (when has_start) exactly, then one rounding.
template <class A>
BITEXACT_HD BITEXACT_CONV_NOINLINE A exact_round(core::exact_accumulator<A>& acc, bool has_start, A start) {
  if (has_start) acc.add(start);
  return acc.round();
}

/// The exact epilogue: + start exactly, one rounding.
template <class A, class Op>
BITEXACT_HD A finish_exact(const Op& op, const typename Op::element& el, core::exact_accumulator<A>& acc) {
  return exact_round<A>(acc, op.has_start(), op.has_start() ? op.start(el) : A(0));
}

}  // namespace conv_detail

// ---------------------------------------------------------------------------------------------
// Convolution bodies

/// fixed_order, two passes of one body (one kernel). fold == false: one thread per (element,
/// split), split-major; S == 1: the whole chain and the epilogue; S > 1: the partials of the
/// split's chunks into partials[chunk * E + e]. fold == true (S > 1 only): one thread per
/// element folds its chunk partials left to right, then the epilogue.
template <class A, class Op>
BITEXACT_HD void conv_fixed_order_body(const thread_index& ti, const Op& op, const gemm_plan& p, A* partials,
                                       bool fold) {
  const std::uint64_t E = p.m;
  const std::uint64_t units = fold ? E : E * p.splits;
  for (std::uint64_t u = ti.global(); u < units; u += ti.threads()) {
    const unsigned s = fold ? 0u : static_cast<unsigned>(u / E);
    const std::size_t e = static_cast<std::size_t>(fold ? u : u % E);
    const typename Op::element el = op.at(e);
    auto av = [&](std::size_t k) { return op.a(el, k); };
    auto bv = [&](std::size_t k) { return op.b(el, k); };
    if (!fold && p.splits > 1) {
      const std::size_t c1 = p.chunk_begin(s + 1);
      for (std::size_t ch = p.chunk_begin(s); ch < c1; ++ch) {
        const std::size_t k0 = ch * core::gemm_k_chunk;
        const std::size_t k1 = (p.k - k0 < core::gemm_k_chunk) ? p.k : k0 + core::gemm_k_chunk;
        partials[ch * E + e] = core::gemm_chunk_partial<A>(k0, k1, av, bv);
      }
      continue;
    }
    A sum = A(0);
    if (fold) {
      for (std::size_t ch = 0; ch < p.chunks; ++ch) {
        const A part = partials[ch * E + e];
        sum = ch == 0 ? part : core::gemm_combine(sum, part);
      }
    } else {
      sum = core::gemm_fixed_order_sum<A>(p.k, av, bv);
    }
    op.store(el, conv_detail::finish_fixed<A>(op, el, sum));
  }
}

/// exact, two passes of one body (one kernel). merge == false: one thread per (element, split);
/// the exact products of k in [K * s / S, K * (s + 1) / S); S == 1 rounds into the output, S > 1
/// stores the normalized accumulator (gemm_exact_words<A> int64 per (split, element),
/// split-major). merge == true (S > 1 only): one thread per element merges its splits'
/// accumulators (integer addition) and rounds once.
template <class A, class Op>
BITEXACT_HD void conv_exact_body(const thread_index& ti, const Op& op, const gemm_plan& p, std::int64_t* ws,
                                 bool merge) {
  using acc_t = core::exact_accumulator<A>;
  const std::uint64_t E = p.m;
  const std::uint64_t units = merge ? E : E * p.splits;
  for (std::uint64_t u = ti.global(); u < units; u += ti.threads()) {
    const unsigned s = merge ? 0u : static_cast<unsigned>(u / E);
    const std::size_t e = static_cast<std::size_t>(merge ? u : u % E);
    const typename Op::element el = op.at(e);
    acc_t acc;
    if (merge) {
      for (unsigned q = 0; q < p.splits; ++q) conv_detail::exact_merge_stored<A>(acc, ws + (q * E + e) * gemm_exact_words<A>);
    } else {
      const std::size_t k1 = p.k_begin(s + 1);
      for (std::size_t k = p.k_begin(s); k < k1; ++k) conv_detail::exact_add_product<A>(acc, op.a(el, k), op.b(el, k));
    }
    if (merge || p.splits == 1)
      op.store(el, conv_detail::finish_exact<A>(op, el, acc));
    else
      conv_detail::exact_store<A>(acc, ws + u * gemm_exact_words<A>);
  }
}

// ---------------------------------------------------------------------------------------------
// Pooling bodies

template <class T>
BITEXACT_HD T pool_canon(T v) {
  return v != v ? core::detail::gemm_canonical_nan(v) : v;
}

/// max_pool2d forward, one thread per output element (memory order); idx may be null.
template <class T>
BITEXACT_HD void max_pool_forward_body(const thread_index& ti, const core::pool_geometry g, const T* x, T* y,
                                       std::int64_t* idx) {
  const std::uint64_t total = static_cast<std::uint64_t>(g.N) * g.C * g.OH * g.OW;
  for (std::uint64_t o = ti.global(); o < total; o += ti.threads()) {
    std::size_t n, c, oh, ow;
    core::conv_coords(g.l, g.C, g.OH, g.OW, static_cast<std::size_t>(o), n, c, oh, ow);
    const T* xp = x + core::conv_offset(g.l, g.C, g.H, g.W, n, c, 0, 0);
    const std::size_t xs = g.xs();
    T best;
    std::size_t bi;
    core::pool_window_max<T>(g.wh(oh), g.ww(ow), g.W, [&](std::size_t i) { return xp[i * xs]; }, best, bi);
    y[o] = pool_canon(best);
    if (idx) idx[o] = static_cast<std::int64_t>(bi);
  }
}

/// avg_pool2d / adaptive_avg_pool2d forward, one thread per output element.
template <class T>
BITEXACT_HD void avg_pool_forward_body(const thread_index& ti, const core::pool_geometry g, const T* x, T* y) {
  const std::uint64_t total = static_cast<std::uint64_t>(g.N) * g.C * g.OH * g.OW;
  for (std::uint64_t o = ti.global(); o < total; o += ti.threads()) {
    std::size_t n, c, oh, ow;
    core::conv_coords(g.l, g.C, g.OH, g.OW, static_cast<std::size_t>(o), n, c, oh, ow);
    const T* xp = x + core::conv_offset(g.l, g.C, g.H, g.W, n, c, 0, 0);
    const std::size_t xs = g.xs();
    const core::pool_window wh = g.wh(oh), ww = g.ww(ow);
    const T s = core::pool_window_sum<T>(wh, ww, g.W, [&](std::size_t i) { return xp[i * xs]; });
    y[o] = pool_canon(s / static_cast<T>(g.divisor(wh, ww)));
  }
}

/// avg_pool2d / adaptive_avg_pool2d backward: a gather per dx element (memory order).
template <class T>
BITEXACT_HD void avg_pool_backward_body(const thread_index& ti, const core::pool_geometry g, const T* dy, T* dx) {
  const std::uint64_t total = static_cast<std::uint64_t>(g.N) * g.C * g.H * g.W;
  for (std::uint64_t i = ti.global(); i < total; i += ti.threads()) {
    std::size_t n, c, ih, iw;
    core::conv_coords(g.l, g.C, g.H, g.W, static_cast<std::size_t>(i), n, c, ih, iw);
    std::size_t h0, h1, w0, w1;
    g.covering_h(ih, h0, h1);
    g.covering_w(iw, w0, w1);
    T s = T(0);
    for (std::size_t oh = h0; oh < h1; ++oh) {
      const core::pool_window wh = g.wh(oh);
      if (ih < wh.begin || ih >= wh.end) continue;
      for (std::size_t ow = w0; ow < w1; ++ow) {
        const core::pool_window ww = g.ww(ow);
        if (iw < ww.begin || iw >= ww.end) continue;
        s = s + dy[core::conv_offset(g.l, g.C, g.OH, g.OW, n, c, oh, ow)] / static_cast<T>(g.divisor(wh, ww));
      }
    }
    dx[i] = pool_canon(s);
  }
}

/// No bad index found (the start value of max_pool_index_check_body's word).
inline constexpr unsigned long long pool_no_bad_index = ~0ull;

/// max_pool2d backward's index check: the lowest output position o (of n) whose index is
/// outside its plane ([0, plane)) goes to *first_bad by an atomic minimum (an integer: the result
/// does not depend on the order; nothing else is written).
BITEXACT_HD inline void max_pool_index_check_body(const thread_index& ti, std::uint64_t n, const std::int64_t* idx,
                                                  std::uint64_t plane, unsigned long long* first_bad) {
  for (std::uint64_t o = ti.global(); o < n; o += ti.threads())
    if (idx[o] < 0 || static_cast<std::uint64_t>(idx[o]) >= plane) {
#if defined(__CUDA_ARCH__)
      atomicMin(first_bad, static_cast<unsigned long long>(o));
#else
      if (o < *first_bad) *first_bad = o;
#endif
    }
}

/// max_pool2d backward: unit (plane, owner) with `owners` owners per plane (see the top).
template <class T>
BITEXACT_HD void max_pool_backward_body(const thread_index& ti, const core::pool_geometry g, const T* dy,
                                        const std::int64_t* idx, T* dx, unsigned owners) {
  const std::uint64_t planes = static_cast<std::uint64_t>(g.N) * g.C;
  const std::uint64_t units = planes * owners;
  const std::size_t plane = g.H * g.W, xs = g.xs();
  for (std::uint64_t u = ti.global(); u < units; u += ti.threads()) {
    const std::uint64_t q = u / owners;
    const std::size_t t = static_cast<std::size_t>(u % owners);
    const std::size_t n = static_cast<std::size_t>(q / g.C), c = static_cast<std::size_t>(q % g.C);
    T* dp = dx + core::conv_offset(g.l, g.C, g.H, g.W, n, c, 0, 0);
    for (std::size_t i = t; i < plane; i += owners) dp[i * xs] = T(0);
    for (std::size_t oh = 0; oh < g.OH; ++oh)
      for (std::size_t ow = 0; ow < g.OW; ++ow) {
        const std::size_t o = core::conv_offset(g.l, g.C, g.OH, g.OW, n, c, oh, ow);
        const std::int64_t i = idx[o];
        if (i < 0 || static_cast<std::uint64_t>(i) >= plane || static_cast<std::size_t>(i) % owners != t) continue;
        T& d = dp[static_cast<std::size_t>(i) * xs];
        d = d + dy[o];
      }
    for (std::size_t i = t; i < plane; i += owners) dp[i * xs] = pool_canon(dp[i * xs]);
  }
}

}  // namespace cuda
}  // namespace bitexact
