// torch_table.hpp - the function table a kernel module of libbitexact_torch exports (its one
// symbol, bitexact_torch_kernels_v1), shared by the modules (torch_kernels.cpp, compiled once
// per ISA variant, no torch) and the front library (bitexact_torch.cpp, the torch glue,
// baseline flags). Raw pointers and sizes only: every bitexact call, and every arithmetic
// operation on tensor values, happens in a module; the front checks, allocates and reshapes.
//
// Every function takes the ISA and thread count explicitly (bitexact::execution) and returns
// nullptr on success or the message of the exception the op threw; error_kind() then says
// which standard exception it was, so the front rethrows the same type as a direct call.
#pragma once
#include <cstdint>

#include <bitexact/conv.hpp>
#include <bitexact/cpu/threads.hpp>
#include <bitexact/pool.hpp>

namespace bitexact_torch {

using i64 = std::int64_t;
using conv_shape = bitexact::conv2d_shape;
using pool_shape = bitexact::pool2d_shape;
using adaptive_shape = bitexact::adaptive_pool2d_shape;

enum error_kind_v1 : int { no_error = 0, invalid_argument = 1, out_of_range = 2, runtime_error = 3 };

#define BX_K(name, ...) const char* (*name)(int isa, int threads, __VA_ARGS__)
template <class T>
struct typed_v1 {
  // rows x cols row-major; columns: reduce the rows instead (out has cols values).
  BX_K(sum, const T* x, i64 rows, i64 cols, int columns, int mean, int exact, T* out);
  BX_K(softmax, const T* x, i64 rows, i64 cols, int log, T* y);
  // cross_entropy of rows x cols logits and class indices (safe: ignored rows read class 0 with
  // weight 0; w gets each row's weight). reduction 0 none (out: rows losses), 1 sum, 2 mean (out:
  // the loss, then the sum of the weights).
  BX_K(cross_entropy, const T* x, i64 rows, i64 cols, const i64* safe, const std::uint8_t* valid, const T* weight,
       int reduction, int exact, T* w, T* out);
  // its gradient with respect to x, g the loss's gradient (rows values for reduction 0, else 1;
  // denom: the sum of the weights, for reduction 2)
  BX_K(cross_entropy_backward, const T* x, i64 rows, i64 cols, const i64* safe, const T* w, const T* g, int reduction,
       const T* denom, T* dx);
  BX_K(norm, const T* x, i64 rows, i64 cols, const T* w, const T* b, double eps, int layer, T* y);
  BX_K(index_add_rows, T* out, i64 n_out, i64 width, const i64* idx, const T* src, i64 n, int exact);
  BX_K(scatter_reduce, T* out, i64 n_out, const i64* target, const T* vals, i64 n, int op, int include_self, int exact);
  // mode 2 (max) writes pos and ignores w
  BX_K(embedding_bag, T* out, i64* pos, const T* table, i64 n_rows, i64 width, const i64* idx, i64 n_idx,
       const i64* off, i64 n_bags, int mode, const T* w, int exact);
  BX_K(embedding_bag_backward, T* out, i64 n_rows, i64 width, const T* g, const i64* idx, i64 n_idx, const i64* off,
       const i64* max_pos, i64 n_bags, int mode, const T* w, int exact);
  BX_K(gemm_batched, int ta, int tb, i64 m, i64 n, i64 k, const T* a, i64 lda, i64 sa, const T* b, i64 ldb, i64 sb,
       T* c, i64 ldc, i64 sc, i64 batch, int exact);
  BX_K(linear_forward, i64 batch, i64 in, i64 out, const T* x, const T* w, const T* b, T* y, int exact);
  // dx and dw when batch > 0 and in > 0; db (when not null) when out > 0
  BX_K(linear_backward, i64 batch, i64 in, i64 out, const T* dy, const T* x, const T* w, T* dx, T* dw, T* db,
       int exact);
  BX_K(conv2d_forward, const conv_shape* s, const T* x, const T* w, const T* b, T* y, int exact);
  BX_K(conv2d_backward, const conv_shape* s, const T* dy, const T* x, const T* w, T* dx, T* dw, T* db, int exact);
  BX_K(max_pool2d_forward, const pool_shape* s, const T* x, T* y, i64* idx);
  BX_K(max_pool2d_backward, const pool_shape* s, const T* g, const i64* idx, T* dx);
  BX_K(avg_pool2d_forward, const pool_shape* s, const T* x, T* y);
  BX_K(avg_pool2d_backward, const pool_shape* s, const T* g, T* dx);
  BX_K(adaptive_avg_pool2d_forward, const adaptive_shape* s, const T* x, T* y);
  BX_K(adaptive_avg_pool2d_backward, const adaptive_shape* s, const T* g, T* dx);
  // sample b of x uses stream values [ids[b] * n, (ids[b] + 1) * n)
  BX_K(dropout, i64 seed, i64 step, i64 tag, const i64* ids, i64 batch, i64 n, const T* x, T* y, std::uint8_t* mask,
       double keep);
  BX_K(random, i64 seed, i64 step, i64 tag, i64 first, int normal, T* out, i64 n);
  BX_K(trunc_normal, i64 seed, i64 step, i64 tag, double a, double b, T* out, i64 n);
  // the scalar reference (include/bitexact/reference/), for the tests
  BX_K(ref_sum_rows, const T* x, i64 rows, i64 cols, int exact, T* out);
  // what: 0 softmax, 1 log_softmax, 2 rms_norm, 3 layer_norm
  BX_K(ref_rowwise, const T* x, i64 rows, i64 cols, int what, const T* w, const T* b, double eps, T* y);
  BX_K(ref_index_add_rows, T* out, i64 n_out, i64 width, const i64* idx, const T* src, i64 n);
  BX_K(ref_scatter_reduce_1d, T* out, i64 n_out, const i64* idx, const T* src, i64 n, int op, int include_self);
  BX_K(ref_embedding_bag, T* out, const T* table, i64 width, const i64* idx, i64 n_idx, const i64* off, i64 n_bags,
       int mode, const T* w);
  BX_K(ref_mm, const T* a, const T* b, T* c, i64 m, i64 n, i64 k);
  BX_K(ref_conv2d, const conv_shape* s, const T* x, const T* w, const T* b, const T* dy, T* y, T* dx, T* dw, T* db);
};

struct kernels_v1 {
  const char* variant;  // the module's variant, e.g. "avx512"
  int (*error_kind)();  // of the calling thread's last failed call
  typed_v1<float> f;
  typed_v1<double> d;
  BX_K(permutation, i64 n, i64 seed, i64 epoch, i64 first, i64* out, i64 count);
  // The module's parallel regions run on `fn` (bitexact::cpu::set_region_runner): the front
  // hands it torch's intra-op threads. region_runner_now: the one installed (nullptr: the pool).
  void (*set_region_runner)(bitexact::cpu::region_runner fn, void* context);
  bitexact::cpu::region_runner (*region_runner_now)();
};
#undef BX_K

}  // namespace bitexact_torch

extern "C" const bitexact_torch::kernels_v1* bitexact_torch_kernels_v1();
