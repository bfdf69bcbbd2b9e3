// tests/cuda_gemm_launcher_test.cu - the host side of bitexact/cuda/gemm.cuh (and, at the end,
// bitexact/cuda/conv.cuh) without a GPU.
//
// Built by nvcc, run anywhere: every call here either only answers the workspace query or
// throws before touching the device (the SM count is never queried: launch.splits is given),
// so no CUDA device or driver is needed. It checks the CUB-style two-phase sizes, and that bad
// arguments, a short workspace and a workspace overlapping C throw std::invalid_argument.
// Pointers are host addresses: the launcher only compares them.
// It is also the GEMM kernels' compile check: its calls instantiate every launcher (float, double
// and bfloat16 inputs, both tiers, with and without a caller's workspace) and so every kernel,
// which nvcc compiles for the configured architectures (80 and 90) - one CUDA translation unit.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "bitexact/cuda/gemm.cuh"

namespace {

namespace bc = bitexact::cuda;
using bitexact::tier;
using bitexact::transpose;

TEST(CudaGemmLauncher, WorkspaceQuery) {
  std::vector<float> a(64 * 4096), b(4096 * 64), c(64);
  std::size_t bytes = 0;
  // m = 1, n = 64, k = 4096: 16 chunks; 16 splits need 16 per-chunk partials of 1 x 64.
  bc::gemm(nullptr, bytes, transpose::no, transpose::no, 1, 64, 4096, 1.0f, a.data(), 4096, b.data(), 64, 0.0f, c.data(),
           64, tier::fixed_order, nullptr, bc::gemm_launch{0, 16, 0});
  EXPECT_EQ(bytes, 16u * 64 * sizeof(float));
  // Splits are clamped to the chunk count: the same size.
  bc::gemm(nullptr, bytes, transpose::no, transpose::no, 1, 64, 4096, 1.0f, a.data(), 4096, b.data(), 64, 0.0f, c.data(),
           64, tier::fixed_order, nullptr, bc::gemm_launch{0, 100, 0});
  EXPECT_EQ(bytes, 16u * 64 * sizeof(float));
  // No split: no workspace (the query answers 1 byte, as CUB does).
  bc::gemm(nullptr, bytes, transpose::no, transpose::no, 1, 64, 4096, 1.0f, a.data(), 4096, b.data(), 64, 0.0f, c.data(),
           64, tier::fixed_order, nullptr, bc::gemm_launch{0, 1, 0});
  EXPECT_EQ(bytes, 1u);
  // Exact: one accumulator (digits + flags, int64) per split and element.
  bc::gemm(nullptr, bytes, transpose::no, transpose::no, 1, 64, 4096, 1.0f, a.data(), 4096, b.data(), 64, 0.0f, c.data(),
           64, tier::exact, nullptr, bc::gemm_launch{0, 3, 0});
  EXPECT_EQ(bytes, 3u * 64 * bc::gemm_exact_words<float> * 8);
  // alpha == 0 and k == 0 only run the epilogue.
  bc::gemm(nullptr, bytes, transpose::no, transpose::no, 1, 64, 4096, 0.0f, a.data(), 4096, b.data(), 64, 1.0f, c.data(),
           64, tier::fixed_order, nullptr, bc::gemm_launch{0, 16, 0});
  EXPECT_EQ(bytes, 1u);
  // bfloat16 inputs, double: the overloads answer too.
  std::vector<bitexact::bfloat16> ah(64 * 4096), bh(4096 * 64);
  bc::gemm(nullptr, bytes, transpose::yes, transpose::yes, 1, 64, 4096, 1.0f, ah.data(), 1, bh.data(), 4096, 0.0f,
           c.data(), 64, tier::fixed_order, nullptr, bc::gemm_launch{0, 4, 0});
  EXPECT_EQ(bytes, 16u * 64 * sizeof(float));
  std::vector<double> ad(8 * 300), bd(300 * 8), cd(64);
  bc::gemm(nullptr, bytes, transpose::no, transpose::no, 8, 8, 300, 1.0, ad.data(), 300, bd.data(), 8, 0.0, cd.data(), 8,
           tier::exact, nullptr, bc::gemm_launch{0, 2, 0});
  EXPECT_EQ(bytes, 2u * 64 * bc::gemm_exact_words<double> * 8);
}

TEST(CudaGemmLauncher, BadArgumentsThrowBeforeAnyLaunch) {
  std::vector<float> a(4096), b(4096), c(4096), ws(4096);
  std::size_t bytes = 0;
  const bc::gemm_launch split{0, 2, 0};
  for (tier t : {tier::fixed_order, tier::exact}) {
    // ld too small (query and run), null pointers, C overlapping A or B.
    EXPECT_THROW(bc::gemm(nullptr, bytes, transpose::no, transpose::no, 4, 4, 4, 1.0f, a.data(), 3, b.data(), 4, 0.0f,
                          c.data(), 4, t, nullptr, split),
                 std::invalid_argument);
    EXPECT_THROW(bc::gemm(transpose::no, transpose::yes, 4, 4, 4, 1.0f, a.data(), 4, b.data(), 3, 0.0f, c.data(), 4, t,
                          nullptr, split),
                 std::invalid_argument);
    EXPECT_THROW(bc::gemm(transpose::no, transpose::no, 4, 4, 4, 1.0f, static_cast<const float*>(nullptr), 4, b.data(),
                          4, 0.0f, c.data(), 4, t, nullptr, split),
                 std::invalid_argument);
    EXPECT_THROW(bc::gemm(transpose::no, transpose::no, 4, 4, 4, 1.0f, c.data() + 3, 4, b.data(), 4, 0.0f, c.data(), 4,
                          t, nullptr, split),
                 std::invalid_argument);
    EXPECT_THROW(bc::gemm(transpose::no, transpose::no, 4, 4, 4, 1.0f, a.data(), 4, c.data() + 15, 4, 0.0f, c.data(), 4,
                          t, nullptr, split),
                 std::invalid_argument);
    EXPECT_THROW(bc::gemm(transpose::no, transpose::no, 4, 4, 4, 1.0f, a.data(), 4, b.data(), 4, 0.0f, c.data(), 4, t,
                          nullptr, bc::gemm_launch{0, 1, 2048}),
                 std::invalid_argument);
    // A workspace that is too small, or overlaps C (k = 600: 3 chunks, 2 splits).
    bc::gemm(nullptr, bytes, transpose::no, transpose::no, 2, 2, 600, 1.0f, a.data(), 600, b.data(), 2, 0.0f, c.data(),
             2, t, nullptr, split);
    ASSERT_GT(bytes, 1u);
    std::size_t short_bytes = bytes - 1;
    EXPECT_THROW(bc::gemm(ws.data(), short_bytes, transpose::no, transpose::no, 2, 2, 600, 1.0f, a.data(), 600,
                          b.data(), 2, 0.0f, c.data(), 2, t, nullptr, split),
                 std::invalid_argument);
    std::vector<unsigned char> big(bytes + 64);
    float* c_in_ws = reinterpret_cast<float*>(big.data() + 16);
    EXPECT_THROW(bc::gemm(big.data(), bytes, transpose::no, transpose::no, 2, 2, 600, 1.0f, a.data(), 600, b.data(), 2,
                          0.0f, c_in_ws, 2, t, nullptr, split),
                 std::invalid_argument);
    // m == 0: nothing to do, nothing launched.
    EXPECT_NO_THROW(bc::gemm(ws.data(), bytes, transpose::no, transpose::no, 0, 4, 4, 1.0f, a.data(), 4, b.data(), 4,
                             0.0f, c.data(), 4, t, nullptr, split));
  }
}

}  // namespace

// --- convolution and pooling: bitexact/cuda/conv.cuh (cudaconv branch) ----------------------
// The host side of the conv and pooling launchers without a GPU (every call below either only
// answers the workspace query or throws before launching; launch.splits is given, so the SM
// count is never queried), and their compile check: the calls instantiate every launcher and so
// every kernel (float, double, bfloat16 x/w; both tiers; pooling float and double).
#include "bitexact/cuda/conv.cuh"

namespace {

bitexact::conv2d_shape conv_shape(std::size_t n, std::size_t c, std::size_t hw, std::size_t oc, std::size_t k) {
  bitexact::conv2d_shape s;
  s.batch = n;
  s.in_channels = c;
  s.in_h = s.in_w = hw;
  s.out_channels = oc;
  s.kernel_h = s.kernel_w = k;
  s.pad_h = s.pad_w = k / 2;
  return s;
}

TEST(CudaConvLauncher, WorkspaceQuery) {
  // backward-weight: E = 5 * 3 * 9 = 135 dw elements (+ 5 dbias), K' = 4 * 23 * 23 = 2116 (9 chunks).
  const bitexact::conv2d_shape s = conv_shape(4, 3, 23, 5, 3);
  std::vector<float> x(4 * 3 * 23 * 23), dy(4 * 5 * 23 * 23), dw(135), db(5);
  std::size_t bytes = 0;
  bc::conv2d_backward_weight(nullptr, bytes, s, x.data(), dy.data(), dw.data(), db.data(), tier::fixed_order, nullptr,
                             bc::conv_launch{0, 3, 0});
  EXPECT_EQ(bytes, 9u * 140 * sizeof(float));  // per-chunk partials of dw and dbias
  bc::conv2d_backward_weight(nullptr, bytes, s, x.data(), dy.data(), dw.data(), db.data(), tier::exact, nullptr,
                             bc::conv_launch{0, 3, 0});
  EXPECT_EQ(bytes, 3u * 140 * bc::gemm_exact_words<float> * 8);
  bc::conv2d_backward_weight(nullptr, bytes, s, x.data(), dy.data(), dw.data(), nullptr, tier::fixed_order, nullptr,
                             bc::conv_launch{0, 1, 0});
  EXPECT_EQ(bytes, 1u);  // no split, no workspace
  std::vector<double> xd(x.size()), dyd(dy.size()), dwd(135);
  bc::conv2d_backward_weight(nullptr, bytes, s, xd.data(), dyd.data(), dwd.data(), nullptr, tier::exact, nullptr,
                             bc::conv_launch{0, 100, 0});
  EXPECT_EQ(bytes, 9u * 135 * bc::gemm_exact_words<double> * 8);  // clamped to the chunk count
  std::vector<bitexact::bfloat16> xh(x.size());
  bc::conv2d_backward_weight(nullptr, bytes, s, xh.data(), dy.data(), dw.data(), db.data(), tier::fixed_order, nullptr,
                             bc::conv_launch{0, 2, 0});
  EXPECT_EQ(bytes, 9u * 140 * sizeof(float));
  // forward and backward-data: K = 3 * 9 = 27 (one chunk): never split.
  std::vector<float> w(135), y(dy.size());
  bc::conv2d_forward(nullptr, bytes, s, x.data(), w.data(), nullptr, y.data(), tier::exact, nullptr,
                     bc::conv_launch{0, 4, 0});
  EXPECT_EQ(bytes, 1u);
  bc::conv2d_backward_data(nullptr, bytes, s, dy.data(), w.data(), x.data(), tier::fixed_order, nullptr,
                           bc::conv_launch{0, 4, 0});
  EXPECT_EQ(bytes, 1u);
}

TEST(CudaConvLauncher, BadArgumentsThrowBeforeAnyLaunch) {
  const bitexact::conv2d_shape good = conv_shape(1, 2, 5, 2, 3);
  std::vector<float> x(50, 1.0f), w(36, 1.0f), y(50, 7.0f), dw(36, 7.0f);
  std::vector<bitexact::bfloat16> xh(50), wh(36);
  std::vector<double> xd(50), wd(36), yd(50);
  std::size_t bytes = 0;
  const bc::conv_launch split{0, 2, 0};
  for (tier t : {tier::fixed_order, tier::exact}) {
    bitexact::conv2d_shape s = good;
    s.stride_h = 0;
    EXPECT_THROW(bc::conv2d_forward(nullptr, bytes, s, x.data(), w.data(), nullptr, y.data(), t), std::invalid_argument);
    EXPECT_THROW(bc::conv2d_forward(s, xh.data(), wh.data(), nullptr, y.data(), t, nullptr, split), std::invalid_argument);
    EXPECT_THROW(bc::conv2d_forward(s, xd.data(), wd.data(), nullptr, yd.data(), t, nullptr, split), std::invalid_argument);
    EXPECT_THROW(bc::conv2d_backward_data(s, y.data(), w.data(), x.data(), t, nullptr, split), std::invalid_argument);
    EXPECT_THROW(bc::conv2d_backward_data(s, y.data(), wh.data(), x.data(), t, nullptr, split), std::invalid_argument);
    EXPECT_THROW(bc::conv2d_backward_data(s, yd.data(), wd.data(), xd.data(), t, nullptr, split), std::invalid_argument);
    EXPECT_THROW(bc::conv2d_backward_weight(s, x.data(), y.data(), dw.data(), nullptr, t, nullptr, split),
                 std::invalid_argument);
    EXPECT_THROW(bc::conv2d_backward_weight(s, xh.data(), y.data(), dw.data(), nullptr, t, nullptr, split),
                 std::invalid_argument);
    EXPECT_THROW(bc::conv2d_backward_weight(s, xd.data(), yd.data(), wd.data(), nullptr, t, nullptr, split),
                 std::invalid_argument);
    EXPECT_THROW(bc::conv2d_backward_data(nullptr, bytes, s, yd.data(), wd.data(), xd.data(), t), std::invalid_argument);
    EXPECT_THROW(bc::conv2d_backward_weight(nullptr, bytes, s, xh.data(), y.data(), dw.data(), nullptr, t),
                 std::invalid_argument);
    // groups, null, overlaps, block
    s = good;
    s.groups = 3;
    EXPECT_THROW(bc::conv2d_forward(s, x.data(), w.data(), nullptr, y.data(), t, nullptr, split), std::invalid_argument);
    EXPECT_THROW(bc::conv2d_forward(good, static_cast<const float*>(nullptr), w.data(), nullptr, y.data(), t, nullptr, split),
                 std::invalid_argument);
    EXPECT_THROW(bc::conv2d_forward(good, x.data(), w.data(), nullptr, x.data() + 3, t, nullptr, split),
                 std::invalid_argument);
    EXPECT_THROW(bc::conv2d_backward_weight(good, x.data(), y.data(), dw.data(), dw.data() + 2, t, nullptr, split),
                 std::invalid_argument);
    EXPECT_THROW(bc::conv2d_forward(good, x.data(), w.data(), nullptr, y.data(), t, nullptr, bc::conv_launch{0, 1, 2048}),
                 std::invalid_argument);
  }
  EXPECT_THROW(bc::conv2d_forward(good, x.data(), w.data(), nullptr, y.data(), static_cast<tier>(9), nullptr, split),
               std::invalid_argument);
  // A workspace that is too small, or overlaps dw (K' = 4 * 23 * 23: 9 chunks, 3 splits).
  const bitexact::conv2d_shape s = conv_shape(4, 3, 23, 5, 3);
  std::vector<float> xs(4 * 3 * 23 * 23), dys(4 * 5 * 23 * 23), dws(135);
  bc::conv2d_backward_weight(nullptr, bytes, s, xs.data(), dys.data(), dws.data(), nullptr, tier::fixed_order, nullptr,
                             bc::conv_launch{0, 3, 0});
  std::vector<unsigned char> ws(bytes + 4096);
  std::size_t short_bytes = bytes - 1;
  EXPECT_THROW(bc::conv2d_backward_weight(ws.data(), short_bytes, s, xs.data(), dys.data(), dws.data(), nullptr,
                                          tier::fixed_order, nullptr, bc::conv_launch{0, 3, 0}),
               std::invalid_argument);
  EXPECT_THROW(bc::conv2d_backward_weight(ws.data(), bytes, s, xs.data(), dys.data(),
                                          reinterpret_cast<float*>(ws.data() + 64), nullptr, tier::fixed_order, nullptr,
                                          bc::conv_launch{0, 3, 0}),
               std::invalid_argument);
  for (float v : y) EXPECT_EQ(v, 7.0f);
  for (float v : dw) EXPECT_EQ(v, 7.0f);
}

template <class T>
void pool_bad_arguments() {
  bitexact::pool2d_shape s;
  s.batch = 1;
  s.channels = 2;
  s.in_h = s.in_w = 6;
  s.kernel_h = s.kernel_w = 3;
  s.stride_h = s.stride_w = 0;  // bad
  std::vector<T> x(72, T(1)), y(72, T(7));
  std::vector<std::int64_t> idx(72, 0);
  EXPECT_THROW(bc::max_pool2d_forward(s, x.data(), y.data(), idx.data()), std::invalid_argument);
  EXPECT_THROW(bc::max_pool2d_backward(s, y.data(), idx.data(), x.data()), std::invalid_argument);
  EXPECT_THROW(bc::avg_pool2d_forward(s, x.data(), y.data()), std::invalid_argument);
  EXPECT_THROW(bc::avg_pool2d_backward(s, y.data(), x.data(), nullptr, bc::pool_launch{1, 32, 0}), std::invalid_argument);
  s.stride_h = s.stride_w = 2;
  EXPECT_THROW(bc::max_pool2d_forward(s, x.data(), x.data() + 1, idx.data()), std::invalid_argument);
  EXPECT_THROW(bc::max_pool2d_backward(s, y.data(), static_cast<const std::int64_t*>(nullptr), x.data()),
               std::invalid_argument);
  EXPECT_THROW(bc::avg_pool2d_forward(s, x.data(), y.data(), nullptr, bc::pool_launch{0, 4096, 0}), std::invalid_argument);
  bitexact::adaptive_pool2d_shape a;
  a.batch = 1;
  a.channels = 2;
  a.in_h = a.in_w = 6;
  a.out_h = 0;
  a.out_w = 2;
  EXPECT_THROW(bc::adaptive_avg_pool2d_forward(a, x.data(), y.data()), std::invalid_argument);
  EXPECT_THROW(bc::adaptive_avg_pool2d_backward(a, y.data(), x.data()), std::invalid_argument);
  for (T v : y) EXPECT_EQ(v, T(7));
  for (T v : x) EXPECT_EQ(v, T(1));
}

TEST(CudaPoolLauncher, BadArgumentsThrowBeforeAnyLaunch) {
  pool_bad_arguments<float>();
  pool_bad_arguments<double>();
}

}  // namespace
