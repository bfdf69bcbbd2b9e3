// torch_kernels.cpp - libbitexact_torch's kernels: every bitexact call of the PyTorch op
// library, on raw pointers, compiled once per ISA variant (with that variant's -m flags, no
// torch) into its own module libbitexact_torch_<variant>.so, which exports only
// bitexact_torch_kernels_v1 (cmake/bitexactPortable.cmake). The front library
// (bitexact_torch.cpp) chose the ISA and passes it with the thread count in each call.
#include <algorithm>
#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include <bitexact/bitexact.hpp>
#include <bitexact/pool.hpp>
#include <bitexact/reference/conv.hpp>
#include <bitexact/reference/gemm.hpp>
#include <bitexact/reference/reduce.hpp>
#include <bitexact/reference/rowwise.hpp>
#include <bitexact/reference/scatter.hpp>

#include "torch_table.hpp"

namespace {

using bitexact_torch::i64;
using bitexact_torch::conv_shape;
using bitexact_torch::pool_shape;
using bitexact_torch::adaptive_shape;

thread_local int g_kind = bitexact_torch::no_error;
thread_local std::string g_message;

int error_kind() { return g_kind; }

template <class F>
const char* guarded(F&& f) {
  g_kind = bitexact_torch::no_error;
  try {
    f();
    return nullptr;
  } catch (const std::invalid_argument& e) {
    g_kind = bitexact_torch::invalid_argument;
    g_message = e.what();
  } catch (const std::out_of_range& e) {
    g_kind = bitexact_torch::out_of_range;
    g_message = e.what();
  } catch (const std::exception& e) {
    g_kind = bitexact_torch::runtime_error;
    g_message = e.what();
  }
  return g_message.c_str();
}

bitexact::execution ex(int isa, int threads) { return bitexact::execution{threads, static_cast<bitexact::isa>(isa)}; }
bitexact::tier tier_of(int exact) { return exact ? bitexact::tier::exact : bitexact::tier::fixed_order; }
bitexact::bag_mode bag_of(int m) {
  return m == 0 ? bitexact::bag_mode::sum : m == 1 ? bitexact::bag_mode::mean : bitexact::bag_mode::max;
}
bitexact::transpose tr_of(int t) { return t ? bitexact::transpose::yes : bitexact::transpose::no; }

using gen = bitexact::philox4x32_10;
bitexact::stream<gen> keyed(i64 seed, i64 step, i64 tag) {
  return bitexact::stream<gen>::from_seed(static_cast<std::uint64_t>(seed), static_cast<std::uint64_t>(step), 0,
                                          static_cast<std::uint32_t>(tag));
}

// float: bitexact::dropout itself (its mask is generate_bernoulli's); double: the same rule.
void apply_dropout(const bitexact::stream<gen>& s, std::uint64_t first, const float* x, float* y, const std::uint8_t*,
                   i64 n, double keep, bitexact::execution e) {
  bitexact::dropout(s, first, x, y, n, keep, e);
}
void apply_dropout(const bitexact::stream<gen>&, std::uint64_t, const double* x, double* y, const std::uint8_t* m,
                   i64 n, double keep, bitexact::execution) {
  const double scale = 1.0 / keep;
  for (i64 i = 0; i < n; ++i) y[i] = m[i] ? x[i] * scale : 0.0;
}

template <class T>
struct k {
  static const char* sum(int isa, int th, const T* x, i64 rows, i64 cols, int columns, int mean, int exact, T* o) {
    return guarded([&] {
      if (columns) {
        if (mean) bitexact::col_mean(x, rows, cols, cols, o, tier_of(exact), ex(isa, th));
        else bitexact::col_sum(x, rows, cols, cols, o, tier_of(exact), ex(isa, th));
      } else {
        if (mean) bitexact::row_mean(x, rows, cols, cols, o, tier_of(exact), ex(isa, th));
        else bitexact::row_sum(x, rows, cols, cols, o, tier_of(exact), ex(isa, th));
      }
    });
  }
  static const char* softmax(int isa, int th, const T* x, i64 rows, i64 cols, int log, T* y) {
    return guarded([&] {
      if (log) bitexact::log_softmax(x, rows, cols, cols, y, cols, ex(isa, th));
      else bitexact::softmax(x, rows, cols, cols, y, cols, ex(isa, th));
    });
  }
  // The arithmetic of bitexact.torch's composed cross_entropy (functional.py: log_softmax over
  // dim 1, then nll_loss), in the same operations and order, so the same bits:
  //   logp = log_softmax(x); w_i = valid_i * weight[safe_i] (or valid_i); loss_i = -(logp[i, safe_i] * w_i);
  //   sum: row_sum of the losses; mean: that / row_sum of the w_i (each a 1-row bitexact sum).
  static const char* cross_entropy(int isa, int th, const T* x, i64 rows, i64 cols, const i64* safe,
                                   const std::uint8_t* valid, const T* weight, int reduction, int exact, T* w, T* out) {
    return guarded([&] {
      std::vector<T> logp(static_cast<std::size_t>(rows * cols));
      bitexact::log_softmax(x, rows, cols, cols, logp.data(), cols, ex(isa, th));
      std::vector<T> losses(reduction == 0 ? 0 : static_cast<std::size_t>(rows));
      T* loss = reduction == 0 ? out : losses.data();
      for (i64 i = 0; i < rows; ++i) {
        T wi = valid[i] ? T(1) : T(0);
        if (weight != nullptr) wi = wi * weight[safe[i]];
        w[i] = wi;
        loss[i] = -(logp[static_cast<std::size_t>(i * cols + safe[i])] * wi);
      }
      if (reduction == 0) return;
      // An empty batch sums to +0, as bitexact's row sum of no columns does.
      out[0] = out[1] = T(0);
      if (rows > 0) bitexact::row_sum(loss, 1, rows, rows, out, tier_of(exact), ex(isa, th));
      if (reduction == 2) {
        if (rows > 0) bitexact::row_sum(w, 1, rows, rows, out + 1, tier_of(exact), ex(isa, th));
        out[0] = out[0] / out[1];
      }
    });
  }
  // The composed backward, same operations: g_i (mean: g / denom); gl = zeros with
  // +0 + (-g_i) * w_i at [i, safe_i] (scatter_add); then log_softmax's backward
  // gl - softmax(x) * row_sum(gl) (fixed_order, as _Softmax.backward sums).
  static const char* cross_entropy_backward(int isa, int th, const T* x, i64 rows, i64 cols, const i64* safe,
                                            const T* w, const T* g, int reduction, const T* denom, T* dx) {
    return guarded([&] {
      const std::size_t n = static_cast<std::size_t>(rows * cols);
      std::vector<T> gl(n, T(0)), s(static_cast<std::size_t>(rows));
      const T g_all = reduction == 2 ? g[0] / denom[0] : g[0];
      for (i64 i = 0; i < rows; ++i) {
        const T gi = reduction == 0 ? g[i] : g_all;
        T& d = gl[static_cast<std::size_t>(i * cols + safe[i])];
        d = d + (-gi) * w[i];
      }
      bitexact::row_sum(gl.data(), rows, cols, cols, s.data(), bitexact::tier::fixed_order, ex(isa, th));
      bitexact::softmax(x, rows, cols, cols, dx, cols, ex(isa, th));
      // torch's sub computes a + (-1) * b fused, which keeps b's NaN when both are NaN (x86 keeps
      // the first NaN operand of a subtraction): pick it the same way.
      for (i64 i = 0; i < rows; ++i)
        for (i64 j = 0; j < cols; ++j) {
          const std::size_t q = static_cast<std::size_t>(i * cols + j);
          const T ps = dx[q] * s[static_cast<std::size_t>(i)];
          dx[q] = ps != ps ? ps : gl[q] - ps;
        }
    });
  }
  static const char* norm(int isa, int th, const T* x, i64 rows, i64 cols, const T* w, const T* b, double eps,
                          int layer, T* y) {
    return guarded([&] {
      if (layer) bitexact::layer_norm(x, rows, cols, cols, w, b, eps, y, cols, ex(isa, th));
      else bitexact::rms_norm(x, rows, cols, cols, w, eps, y, cols, ex(isa, th));
    });
  }
  static const char* index_add_rows(int isa, int th, T* out, i64 n_out, i64 width, const i64* idx, const T* src, i64 n,
                                    int exact) {
    return guarded([&] { bitexact::index_add_rows(out, n_out, width, idx, src, n, tier_of(exact), ex(isa, th)); });
  }
  static const char* scatter_reduce(int isa, int th, T* out, i64 n_out, const i64* target, const T* vals, i64 n, int op,
                                    int include_self, int exact) {
    return guarded([&] {
      bitexact::scatter_reduce(out, n_out, target, vals, n, static_cast<bitexact::scatter_op>(op), include_self != 0,
                               tier_of(exact), ex(isa, th));
    });
  }
  static const char* embedding_bag(int isa, int th, T* out, i64* pos, const T* tab, i64 n_rows, i64 width,
                                   const i64* idx, i64 n_idx, const i64* off, i64 n_bags, int mode, const T* w,
                                   int exact) {
    return guarded([&] {
      if (mode == 2)
        bitexact::embedding_bag_max(out, pos, tab, n_rows, width, idx, n_idx, off, n_bags, ex(isa, th));
      else
        bitexact::embedding_bag(out, tab, n_rows, width, idx, n_idx, off, n_bags, bag_of(mode), w, tier_of(exact),
                                ex(isa, th));
    });
  }
  static const char* embedding_bag_backward(int isa, int th, T* out, i64 n_rows, i64 width, const T* g, const i64* idx,
                                            i64 n_idx, const i64* off, const i64* mp, i64 n_bags, int mode, const T* w,
                                            int exact) {
    return guarded([&] {
      if (mode == 2)
        bitexact::embedding_bag_max_backward(out, n_rows, width, g, idx, n_idx, mp, n_bags, tier_of(exact), ex(isa, th));
      else
        bitexact::embedding_bag_backward(out, n_rows, width, g, idx, n_idx, off, n_bags, bag_of(mode), w,
                                         tier_of(exact), ex(isa, th));
    });
  }
  static const char* gemm_batched(int isa, int th, int ta, int tb, i64 m, i64 n, i64 kk, const T* a, i64 lda, i64 sa,
                                  const T* b, i64 ldb, i64 sb, T* c, i64 ldc, i64 sc, i64 batch, int exact) {
    return guarded([&] {
      bitexact::gemm_batched<T>(tr_of(ta), tr_of(tb), m, n, kk, T(1), a, lda, sa, b, ldb, sb, T(0), c, ldc, sc, batch,
                                tier_of(exact), ex(isa, th));
    });
  }
  static const char* linear_forward(int isa, int th, i64 batch, i64 in, i64 out, const T* x, const T* w, const T* b,
                                    T* y, int exact) {
    return guarded([&] { bitexact::linear_forward<T>(batch, in, out, x, w, b, y, tier_of(exact), ex(isa, th)); });
  }
  static const char* linear_backward(int isa, int th, i64 batch, i64 in, i64 out, const T* dy, const T* x, const T* w,
                                     T* dx, T* dw, T* db, int exact) {
    return guarded([&] {
      if (batch > 0 && in > 0) {
        bitexact::linear_backward_data<T>(batch, in, out, dy, w, dx, tier_of(exact), ex(isa, th));
        bitexact::linear_backward_weight<T>(batch, in, out, dy, x, dw, tier_of(exact), ex(isa, th));
      }
      if (db != nullptr && out > 0) bitexact::linear_backward_bias<T>(batch, out, dy, db, tier_of(exact), ex(isa, th));
    });
  }
  static const char* conv2d_forward(int isa, int th, const conv_shape* s, const T* x, const T* w, const T* b, T* y,
                                    int exact) {
    return guarded([&] { bitexact::conv2d_forward<T>(*s, x, w, b, y, tier_of(exact), ex(isa, th)); });
  }
  static const char* conv2d_backward(int isa, int th, const conv_shape* s, const T* dy, const T* x, const T* w, T* dx,
                                     T* dw, T* db, int exact) {
    return guarded([&] {
      if (dx != nullptr) bitexact::conv2d_backward_data<T>(*s, dy, w, dx, tier_of(exact), ex(isa, th));  // null: not needed
      bitexact::conv2d_backward_weight<T>(*s, x, dy, dw, db, tier_of(exact), ex(isa, th));
    });
  }
  static const char* max_pool2d_forward(int isa, int th, const pool_shape* s, const T* x, T* y, i64* idx) {
    return guarded([&] { bitexact::max_pool2d_forward<T>(*s, x, y, idx, ex(isa, th)); });
  }
  static const char* max_pool2d_backward(int isa, int th, const pool_shape* s, const T* g, const i64* idx, T* dx) {
    return guarded([&] { bitexact::max_pool2d_backward<T>(*s, g, idx, dx, ex(isa, th)); });
  }
  static const char* avg_pool2d_forward(int isa, int th, const pool_shape* s, const T* x, T* y) {
    return guarded([&] { bitexact::avg_pool2d_forward<T>(*s, x, y, ex(isa, th)); });
  }
  static const char* avg_pool2d_backward(int isa, int th, const pool_shape* s, const T* g, T* dx) {
    return guarded([&] { bitexact::avg_pool2d_backward<T>(*s, g, dx, ex(isa, th)); });
  }
  static const char* adaptive_avg_pool2d_forward(int isa, int th, const adaptive_shape* s, const T* x, T* y) {
    return guarded([&] { bitexact::adaptive_avg_pool2d_forward<T>(*s, x, y, ex(isa, th)); });
  }
  static const char* adaptive_avg_pool2d_backward(int isa, int th, const adaptive_shape* s, const T* g, T* dx) {
    return guarded([&] { bitexact::adaptive_avg_pool2d_backward<T>(*s, g, dx, ex(isa, th)); });
  }
  static const char* dropout(int isa, int th, i64 seed, i64 step, i64 tag, const i64* id, i64 batch, i64 n, const T* x,
                             T* y, std::uint8_t* mask, double keep) {
    return guarded([&] {
      const auto s = keyed(seed, step, tag);
      for (i64 b = 0; b < batch; ++b) {
        const std::uint64_t first = static_cast<std::uint64_t>(id[b]) * static_cast<std::uint64_t>(n);
        std::uint8_t* m = mask + b * n;
        bitexact::generate_bernoulli(s, first, m, n, keep, ex(isa, th));
        apply_dropout(s, first, x + b * n, y + b * n, m, n, keep, ex(isa, th));
      }
    });
  }
  static const char* random(int isa, int th, i64 seed, i64 step, i64 tag, i64 first, int normal, T* out, i64 n) {
    return guarded([&] {
      const auto s = keyed(seed, step, tag);
      if (normal) bitexact::generate_normal(s, static_cast<std::uint64_t>(first), out, n, ex(isa, th));
      else bitexact::generate_uniform(s, static_cast<std::uint64_t>(first), out, n, ex(isa, th));
    });
  }
  // Standard normal values truncated to [a, b] by rejection: element i draws value
  // round * n + i of the stream in round 0, 1, ... until it lands in [a, b] (after 64 rounds
  // the last draw is clamped). Depends on (seed, step, tag, i) only.
  static const char* trunc_normal(int isa, int th, i64 seed, i64 step, i64 tag, double a, double b, T* o, i64 n) {
    return guarded([&] {
      const auto s = keyed(seed, step, tag);
      std::vector<T> draw(n);
      std::vector<bool> done(n, false);
      i64 left = n;
      for (i64 round = 0; round < 64 && left > 0; ++round) {
        bitexact::generate_normal(s, static_cast<std::uint64_t>(round * n), draw.data(), n, ex(isa, th));
        for (i64 i = 0; i < n; ++i)
          if (!done[i] && draw[i] >= a && draw[i] <= b) {
            o[i] = draw[i];
            done[i] = true;
            --left;
          }
      }
      for (i64 i = 0; i < n; ++i)
        if (!done[i]) o[i] = static_cast<T>(std::min(std::max(static_cast<double>(draw[i]), a), b));
    });
  }
  static const char* ref_sum_rows(int, int, const T* x, i64 rows, i64 cols, int exact, T* out) {
    return guarded([&] {
      for (i64 r = 0; r < rows; ++r)
        out[r] = exact ? bitexact::reference::sum_exact(x + r * cols, cols)
                       : bitexact::reference::sum_fixed_order(x + r * cols, cols);
    });
  }
  static const char* ref_rowwise(int, int, const T* x, i64 rows, i64 cols, int what, const T* w, const T* b, double eps,
                                 T* y) {
    return guarded([&] {
      if (what == 0) bitexact::reference::softmax(x, rows, cols, cols, y, cols);
      if (what == 1) bitexact::reference::log_softmax(x, rows, cols, cols, y, cols);
      if (what == 2) bitexact::reference::rms_norm(x, rows, cols, cols, w, static_cast<T>(eps), y, cols);
      if (what == 3) bitexact::reference::layer_norm(x, rows, cols, cols, w, b, static_cast<T>(eps), y, cols);
    });
  }
  static const char* ref_index_add_rows(int, int, T* out, i64 n_out, i64 width, const i64* idx, const T* src, i64 n) {
    return guarded([&] { bitexact::reference::index_add_rows(out, n_out, width, idx, src, n, false); });
  }
  static const char* ref_scatter_reduce_1d(int, int, T* out, i64 n_out, const i64* idx, const T* src, i64 n, int op,
                                           int include_self) {
    return guarded([&] {
      bitexact::reference::scatter_reduce(out, n_out, idx, src, n, static_cast<bitexact::scatter_op>(op),
                                          include_self != 0, false);
    });
  }
  static const char* ref_embedding_bag(int, int, T* out, const T* tab, i64 width, const i64* idx, i64 n_idx,
                                       const i64* off, i64 n_bags, int mode, const T* w) {
    return guarded(
        [&] { bitexact::reference::embedding_bag(out, tab, width, idx, n_idx, off, n_bags, bag_of(mode), w, false); });
  }
  static const char* ref_mm(int, int, const T* a, const T* b, T* c, i64 m, i64 n, i64 kk) {
    return guarded([&] {
      bitexact::reference::gemm_fixed_order<T, T>(bitexact::transpose::no, bitexact::transpose::no, m, n, kk, T(1), a,
                                                  kk, b, n, T(0), c, n);
    });
  }
  static const char* ref_conv2d(int, int, const conv_shape* s, const T* x, const T* w, const T* b, const T* dy, T* y,
                                T* dx, T* dw, T* db) {
    return guarded([&] {
      bitexact::reference::conv2d_forward<T, T, T>(*s, x, w, b, y, false);
      bitexact::reference::conv2d_backward_data<T, T>(*s, dy, w, dx, false);
      bitexact::reference::conv2d_backward_weight<T, T>(*s, x, dy, dw, db, false);
    });
  }

  static constexpr bitexact_torch::typed_v1<T> table() {
    return {sum, softmax, cross_entropy, cross_entropy_backward, norm, index_add_rows, scatter_reduce, embedding_bag, embedding_bag_backward, gemm_batched,
            linear_forward, linear_backward, conv2d_forward, conv2d_backward, max_pool2d_forward, max_pool2d_backward,
            avg_pool2d_forward, avg_pool2d_backward, adaptive_avg_pool2d_forward, adaptive_avg_pool2d_backward, dropout,
            random, trunc_normal, ref_sum_rows, ref_rowwise, ref_index_add_rows, ref_scatter_reduce_1d,
            ref_embedding_bag, ref_mm, ref_conv2d};
  }
};

const char* permutation(int isa, int th, i64 n, i64 seed, i64 epoch, i64 first, i64* out, i64 count) {
  return guarded([&] {
    const auto p =
        bitexact::permutation::for_epoch(n, static_cast<std::uint64_t>(seed), static_cast<std::uint64_t>(epoch));
    p.fill(first, reinterpret_cast<std::uint64_t*>(out), count, ex(isa, th));
  });
}

void set_region_runner(bitexact::cpu::region_runner fn, void* context) { bitexact::cpu::set_region_runner(fn, context); }
bitexact::cpu::region_runner region_runner_now() { return bitexact::cpu::current_region_runner(); }

const bitexact_torch::kernels_v1 table = {BITEXACT_PORTABLE_VARIANT, error_kind,        k<float>::table(),
                                          k<double>::table(),        permutation,       set_region_runner,
                                          region_runner_now};

}  // namespace

extern "C" __attribute__((visibility("default"))) const bitexact_torch::kernels_v1* bitexact_torch_kernels_v1() {
  return &table;
}
