// bitexact/reference/conv.hpp - the executable specification of 2-D convolution.
//
// Plain loops over the K indices of core/conv.hpp, reduced by core::gemm_fixed_order_sum (the
// canonical K order of core/gemm_order.hpp) or, for the exact tier, by core::exact_accumulator.
// No checks: the public API (conv.hpp) validates. X is the storage type of x (float, double or
// bfloat16), Wt the weights' (likewise), A the accumulation and output type (float for float
// and bfloat16, double for double); dy, dx, dw, bias and dbias are A.
#pragma once
#include <cstddef>

#include "../core/bfloat16.hpp"
#include "../core/conv.hpp"
#include "../core/exact.hpp"
#include "../core/gemm_order.hpp"

namespace bitexact {
namespace reference {
namespace conv_detail {

using dims = core::conv_dims;

template <class A>
A finish(A s) {
  return core::gemm_epilogue(A(1), s, A(0), A(0));  // S itself, a NaN made canonical
}

}  // namespace conv_detail

/// Forward. fixed_order: y = S + bias[oc] (one rounded add, computed as the GEMM epilogue with
/// alpha = 1, beta = 1, C_old = bias[oc]; without bias, y = S). exact: y = the correctly
/// rounded value of bias[oc] + the exact sum of the K products.
template <class A, class X, class Wt>
void conv2d_forward(const conv2d_shape& s, const X* x, const Wt* w, const A* bias, A* y, bool exact) {
  const conv_detail::dims d(s);
  const std::size_t K = d.Cg * d.KH * d.KW;
  for (std::size_t n = 0; n < d.N; ++n)
    for (std::size_t oc = 0; oc < d.OC; ++oc)
      for (std::size_t oh = 0; oh < d.OH; ++oh)
        for (std::size_t ow = 0; ow < d.OW; ++ow) {
          auto xk = [&](std::size_t k) -> A { return core::conv_forward_x_term<A>(s, d, x, n, oc, oh, ow, k); };
          auto wk = [&](std::size_t k) -> A { return core::widen(w[oc * K + k]); };
          A out;
          if (exact) {
            core::exact_accumulator<A> acc;
            for (std::size_t k = 0; k < K; ++k) acc.add_product(xk(k), wk(k));
            if (bias) acc.add(bias[oc]);
            out = acc.round();
          } else {
            const A sum = core::gemm_fixed_order_sum<A>(K, xk, wk);
            out = bias ? core::gemm_epilogue(A(1), sum, A(1), bias[oc]) : conv_detail::finish(sum);
          }
          y[core::conv_offset(s.data, d.OC, d.OH, d.OW, n, oc, oh, ow)] = out;
        }
}

/// Backward-data: dx = the K order over (ocg, r, c) of dy * w (exact: correctly rounded).
template <class A, class Wt>
void conv2d_backward_data(const conv2d_shape& s, const A* dy, const Wt* w, A* dx, bool exact) {
  const conv_detail::dims d(s);
  const std::size_t K = d.OCg * d.KH * d.KW;
  for (std::size_t n = 0; n < d.N; ++n)
    for (std::size_t ic = 0; ic < d.C; ++ic)
      for (std::size_t ih = 0; ih < d.H; ++ih)
        for (std::size_t iw = 0; iw < d.W; ++iw) {
          auto dyk = [&](std::size_t k) -> A { return core::conv_backward_data_dy_term<A>(s, d, dy, n, ic, ih, iw, k); };
          auto wk = [&](std::size_t k) -> A { return core::conv_backward_data_w_term<A>(d, w, ic, k); };
          A out;
          if (exact) {
            core::exact_accumulator<A> acc;
            for (std::size_t k = 0; k < K; ++k) acc.add_product(dyk(k), wk(k));
            out = acc.round();
          } else {
            out = conv_detail::finish(core::gemm_fixed_order_sum<A>(K, dyk, wk));
          }
          dx[core::conv_offset(s.data, d.C, d.H, d.W, n, ic, ih, iw)] = out;
        }
}

/// Backward-weight: dw = the K order over K' = (n, oh, ow) of dy * x (padding taps are zero
/// products); dbias (nullable) = the same order over dy * 1. exact: correctly rounded.
template <class A, class X>
void conv2d_backward_weight(const conv2d_shape& s, const X* x, const A* dy, A* dw, A* dbias, bool exact) {
  const conv_detail::dims d(s);
  const std::size_t Kp = d.N * d.OH * d.OW;
  auto dy_at = [&](std::size_t oc, std::size_t k) -> A { return core::conv_backward_weight_dy_term<A>(s, d, dy, oc, k); };
  for (std::size_t oc = 0; oc < d.OC; ++oc) {
    for (std::size_t icg = 0; icg < d.Cg; ++icg)
      for (std::size_t r = 0; r < d.KH; ++r)
        for (std::size_t c = 0; c < d.KW; ++c) {
          auto dyk = [&](std::size_t k) -> A { return dy_at(oc, k); };
          auto xk = [&](std::size_t k) -> A {
            return core::conv_backward_weight_x_term<A>(s, d, x, oc, icg, r, c, k);
          };
          A out;
          if (exact) {
            core::exact_accumulator<A> acc;
            for (std::size_t k = 0; k < Kp; ++k) acc.add_product(dyk(k), xk(k));
            out = acc.round();
          } else {
            out = conv_detail::finish(core::gemm_fixed_order_sum<A>(Kp, dyk, xk));
          }
          dw[((oc * d.Cg + icg) * d.KH + r) * d.KW + c] = out;
        }
    if (dbias) {
      auto dyk = [&](std::size_t k) -> A { return dy_at(oc, k); };
      auto one = [](std::size_t) -> A { return A(1); };
      if (exact) {
        core::exact_accumulator<A> acc;
        for (std::size_t k = 0; k < Kp; ++k) acc.add(dyk(k));
        dbias[oc] = acc.round();
      } else {
        dbias[oc] = conv_detail::finish(core::gemm_fixed_order_sum<A>(Kp, dyk, one));
      }
    }
  }
}

}  // namespace reference
}  // namespace bitexact
