// tests/cuda_gemm_launcher_test.cu - the host side of bitexact/cuda/gemm.cuh without a GPU.
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
