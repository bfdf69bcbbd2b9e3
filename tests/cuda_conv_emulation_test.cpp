// tests/cuda_conv_emulation_test.cpp - the CUDA convolution and pooling kernels
// (cuda/conv_kernels.hpp), run by the CPU emulation of launches (cuda/conv_emulation.hpp), must
// equal the reference (reference/conv.hpp, reference/pool.hpp) bit for bit:
//   convolution  forward (with and without bias), backward-data, backward-weight (with dbias);
//                float, double, bfloat16 x/w; both layouts; stride, padding, dilation, groups,
//                depthwise, 1x1, 1-D, K and K' across the 256-wide canonical chunk; for several
//                grids, blocks, K-split counts (1, 2, 3, 5, auto) and block orders; both tiers
//                (exact against reference's exact accumulator chains); special values (NaN and
//                Inf weights, padding taps, -0 sums);
//   pooling      max (ties, NaN, indices; backward from the forward's indices and from arbitrary
//                in-plane ones, for several owners per plane), avg (count_include_pad both ways,
//                ceil_mode), adaptive avg, forward and backward, both layouts, several launches;
//   bad input    std::invalid_argument with every output untouched.
// Nothing here runs on a GPU; device compilation is tests/cuda_gemm_launcher_test.cu.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "bitexact/cuda/conv_emulation.hpp"
#include "bitexact/reference/conv.hpp"
#include "bitexact/reference/pool.hpp"

namespace {

using namespace bitexact;
using cuda::block_order;
using cuda::conv_launch;
using cuda::pool_launch;

template <class T>
T make(double v) {
  if constexpr (std::is_same<T, bfloat16>::value)
    return bfloat16::from_float(static_cast<float>(v));
  else
    return static_cast<T>(v);
}

std::uint64_t mix(std::uint64_t& s) {
  std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// Values with wide exponents (so orders differ in their roundings).
template <class T>
std::vector<T> data(std::size_t n, std::uint64_t seed) {
  std::vector<T> v(n);
  for (auto& x : v) {
    const std::uint64_t r = mix(seed);
    const double u = static_cast<double>(r >> 11) * 0x1p-53 - 0.5;
    x = make<T>(std::ldexp(u, static_cast<int>(r % 13) - 6));
  }
  return v;
}

template <class T>
double shown(T v) {
  if constexpr (std::is_integral<T>::value)
    return static_cast<double>(v);
  else
    return static_cast<double>(core::widen(v));
}

template <class T>
::testing::AssertionResult same_bits(const std::vector<T>& want, const std::vector<T>& got, const std::string& what) {
  for (std::size_t i = 0; i < want.size(); ++i)
    if (std::memcmp(&want[i], &got[i], sizeof(T)) != 0)
      return ::testing::AssertionFailure() << what << ": element " << i << " of " << want.size() << std::hexfloat
                                           << " want " << shown(want[i]) << " got " << shown(got[i]);
  return ::testing::AssertionSuccess();
}

conv2d_shape cshape(std::size_t n, std::size_t c, std::size_t h, std::size_t w, std::size_t oc, std::size_t kh,
                    std::size_t kw, std::size_t sh, std::size_t sw, std::size_t ph, std::size_t pw, std::size_t dh,
                    std::size_t dw, std::size_t g) {
  conv2d_shape s;
  s.batch = n;
  s.in_channels = c;
  s.in_h = h;
  s.in_w = w;
  s.out_channels = oc;
  s.kernel_h = kh;
  s.kernel_w = kw;
  s.stride_h = sh;
  s.stride_w = sw;
  s.pad_h = ph;
  s.pad_w = pw;
  s.dilation_h = dh;
  s.dilation_w = dw;
  s.groups = g;
  return s;
}

std::string describe(const conv2d_shape& s, const conv_launch& l, block_order o, bool exact) {
  return "N" + std::to_string(s.batch) + " C" + std::to_string(s.in_channels) + " " + std::to_string(s.in_h) + "x" +
         std::to_string(s.in_w) + " OC" + std::to_string(s.out_channels) + " k" + std::to_string(s.kernel_h) + "x" +
         std::to_string(s.kernel_w) + " s" + std::to_string(s.stride_h) + "," + std::to_string(s.stride_w) + " p" +
         std::to_string(s.pad_h) + "," + std::to_string(s.pad_w) + " d" + std::to_string(s.dilation_h) + "," +
         std::to_string(s.dilation_w) + " g" + std::to_string(s.groups) +
         (s.data == layout::nhwc ? " nhwc" : " nchw") + " grid=" + std::to_string(l.grid) +
         " splits=" + std::to_string(l.splits) + " block=" + std::to_string(l.block) +
         " order=" + std::to_string(int(o)) + (exact ? " exact" : " fixed");
}

std::vector<conv_launch> conv_launches() {
  // auto (8 SMs: K-splits where E is small), no split, 2/3/5 splits (clamped to the chunk
  // count), a single block, odd block sizes, a grid smaller than the work
  return {{0, 0, 0}, {0, 1, 0}, {1, 0, 32}, {3, 2, 64}, {0, 3, 33}, {7, 5, 96}, {2, 1, 1}};  // {grid, splits, block}
}

/// All three ops (forward with bias, forward without, backward-data, backward-weight with dbias)
/// through every launch in both tiers, against the reference.
template <class A, class X>
void check_conv(conv2d_shape s, std::uint64_t seed) {
  for (layout l : {layout::nchw, layout::nhwc}) {
    s.data = l;
    const core::conv_dims d(s);
    const std::size_t nx = d.N * d.C * d.H * d.W, ny = d.N * d.OC * d.OH * d.OW, nw = d.OC * d.k_forward();
    const std::vector<X> x = data<X>(nx, seed), w = data<X>(nw, seed + 1);
    const std::vector<A> bias = data<A>(d.OC, seed + 2), dy = data<A>(ny, seed + 3);
    for (bool exact : {false, true}) {
      const tier t = exact ? tier::exact : tier::fixed_order;
      std::vector<A> y_ref(ny), y0_ref(ny), dx_ref(nx), dw_ref(nw), db_ref(d.OC);
      reference::conv2d_forward<A>(s, x.data(), w.data(), bias.data(), y_ref.data(), exact);
      reference::conv2d_forward<A>(s, x.data(), w.data(), static_cast<const A*>(nullptr), y0_ref.data(), exact);
      reference::conv2d_backward_data<A>(s, dy.data(), w.data(), dx_ref.data(), exact);
      reference::conv2d_backward_weight<A>(s, x.data(), dy.data(), dw_ref.data(), db_ref.data(), exact);
      int run = 0;
      // exact: every third launch (its accumulators are slow to emulate; the split logic is shared)
      const std::vector<conv_launch> all = conv_launches();
      std::vector<conv_launch> launches;
      for (std::size_t i = 0; i < all.size(); ++i)
        if (!exact || i % 3 == 0) launches.push_back(all[i]);
      for (const conv_launch& ln : launches) {
        const block_order o = static_cast<block_order>(run++ % 3);
        const std::string what = describe(s, ln, o, exact);
        const A garbage = make<A>(std::numeric_limits<double>::quiet_NaN());
        std::vector<A> y(ny, garbage), y0(ny, garbage), dx(nx, garbage), dw(nw, garbage), db(d.OC, garbage);
        cuda::emulated_conv2d_forward<A>(s, x.data(), w.data(), bias.data(), y.data(), t, ln, o);
        cuda::emulated_conv2d_forward<A>(s, x.data(), w.data(), static_cast<const A*>(nullptr), y0.data(), t, ln, o);
        cuda::emulated_conv2d_backward_data<A>(s, dy.data(), w.data(), dx.data(), t, ln, o);
        cuda::emulated_conv2d_backward_weight<A>(s, x.data(), dy.data(), dw.data(), db.data(), t, ln, o);
        ASSERT_TRUE(same_bits(y_ref, y, "forward " + what));
        ASSERT_TRUE(same_bits(y0_ref, y0, "forward (no bias) " + what));
        ASSERT_TRUE(same_bits(dx_ref, dx, "backward_data " + what));
        ASSERT_TRUE(same_bits(dw_ref, dw, "backward_weight " + what));
        ASSERT_TRUE(same_bits(db_ref, db, "backward_weight dbias " + what));
      }
    }
  }
}

/// Shapes: plain 3x3, strides/padding/dilation (unequal h and w), groups, depthwise, 1x1, 1-D,
/// K and K' past one canonical chunk, a 1x1 image, batch 1 and odd sizes.
template <class A, class X>
void conv_sweep(std::uint64_t seed) {
  check_conv<A, X>(cshape(2, 3, 7, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1), seed++);
  check_conv<A, X>(cshape(2, 4, 9, 11, 6, 3, 2, 2, 1, 2, 1, 2, 1, 2), seed++);
  check_conv<A, X>(cshape(1, 6, 8, 7, 3, 2, 3, 3, 2, 0, 2, 1, 2, 3), seed++);
  check_conv<A, X>(cshape(2, 5, 6, 5, 5, 3, 3, 1, 2, 1, 1, 1, 1, 5), seed++);   // depthwise
  check_conv<A, X>(cshape(3, 7, 5, 3, 2, 1, 1, 1, 1, 0, 0, 1, 1, 1), seed++);   // 1x1
  check_conv<A, X>(cshape(2, 3, 1, 29, 4, 1, 5, 1, 2, 0, 2, 1, 3, 1), seed++);  // 1-D
  check_conv<A, X>(cshape(1, 1, 1, 1, 3, 1, 1, 1, 1, 0, 0, 1, 1, 1), seed++);   // 1x1 image
  // K = 57 * 9 = 513 (forward and backward-data): three canonical chunks, so the fold order
  // of split partials shows (K' past a chunk: BackwardWeightLongK)
  check_conv<A, X>(cshape(1, 57, 5, 4, 57, 3, 3, 1, 1, 1, 1, 1, 1, 1), seed++);
}

TEST(CudaConvEmulation, Float) { conv_sweep<float, float>(100); }
TEST(CudaConvEmulation, Double) { conv_sweep<double, double>(200); }
TEST(CudaConvEmulation, Bfloat16) { conv_sweep<float, bfloat16>(300); }

// K' = 4 * 23 * 23 = 2116: nine canonical chunks, split 1 ... 9 ways (and auto).
TEST(CudaConvEmulation, BackwardWeightLongK) {
  conv2d_shape s = cshape(4, 3, 23, 23, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1);
  const core::conv_dims d(s);
  const std::vector<float> x = data<float>(d.N * d.C * d.H * d.W, 7), dy = data<float>(d.N * d.OC * d.OH * d.OW, 8);
  for (bool exact : {false, true}) {
    std::vector<float> dw_ref(d.OC * d.k_forward()), db_ref(d.OC);
    reference::conv2d_backward_weight<float>(s, x.data(), dy.data(), dw_ref.data(), db_ref.data(), exact);
    for (unsigned splits : {0u, 1u, 2u, 4u, 9u, 64u}) {
      std::vector<float> dw(dw_ref.size(), -1.0f), db(d.OC, -1.0f);
      const conv_launch ln{splits % 3, splits, 64};
      cuda::emulated_conv2d_backward_weight<float>(s, x.data(), dy.data(), dw.data(), db.data(),
                                                   exact ? tier::exact : tier::fixed_order, ln, block_order::shuffled);
      ASSERT_TRUE(same_bits(dw_ref, dw, describe(s, ln, block_order::shuffled, exact)));
      ASSERT_TRUE(same_bits(db_ref, db, "dbias " + describe(s, ln, block_order::shuffled, exact)));
    }
  }
}

// The data tells orders apart: one chain over all of K' (no 256-wide chunks) differs from the
// canonical order somewhere, so the bit-for-bit checks above have teeth.
TEST(CudaConvEmulation, DataIsOrderSensitive) {
  conv2d_shape s = cshape(4, 3, 23, 23, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1);
  const core::conv_dims d(s);
  const std::vector<float> x = data<float>(d.N * d.C * d.H * d.W, 7), dy = data<float>(d.N * d.OC * d.OH * d.OW, 8);
  std::vector<float> dw(d.OC * d.k_forward()), db(d.OC);
  cuda::emulated_conv2d_backward_weight<float>(s, x.data(), dy.data(), dw.data(), db.data(), tier::fixed_order,
                                               conv_launch{0, 3, 0});
  int differ = 0;
  for (std::size_t oc = 0; oc < d.OC; ++oc) {
    float p = 0.0f;
    for (std::size_t k = 0; k < d.k_backward_weight(); ++k) p = p + core::conv_backward_weight_dy_term<float>(s, d, dy.data(), oc, k);
    differ += std::memcmp(&p, &db[oc], sizeof p) != 0;
  }
  EXPECT_GT(differ, 0);
}

// NaN and Inf weights, Inf meeting a padding tap (Inf * 0 = NaN), -0 products (sum +0), NaN
// inputs: the reference's bits (canonical NaN) in both tiers, with and without K splits.
TEST(CudaConvEmulation, SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  for (layout l : {layout::nchw, layout::nhwc}) {
    conv2d_shape s = cshape(2, 4, 6, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1, 2);
    s.data = l;
    const core::conv_dims d(s);
    std::vector<float> x = data<float>(d.N * d.C * d.H * d.W, 11), w = data<float>(d.OC * d.k_forward(), 12);
    std::vector<float> bias(d.OC, 0.25f), dy = data<float>(d.N * d.OC * d.OH * d.OW, 13);
    w[0] = nan;                   // out-channel 0: NaN everywhere
    w[d.k_forward() + 4] = inf;   // out-channel 1: Inf centre tap
    w[2 * d.k_forward()] = -inf;  // out-channel 2: -Inf corner tap, meets padding
    for (std::size_t k = 0; k < d.k_forward(); ++k) w[3 * d.k_forward() + k] = -0.0f;  // out-channel 3: -0 products
    bias[3] = -0.0f;
    x[7] = inf;
    dy[3] = nan;
    dy[d.OH * d.OW + 1] = -inf;
    for (bool exact : {false, true}) {
      const tier t = exact ? tier::exact : tier::fixed_order;
      std::vector<float> y_ref(d.N * d.OC * d.OH * d.OW), dx_ref(x.size()), dw_ref(w.size()), db_ref(d.OC);
      reference::conv2d_forward<float>(s, x.data(), w.data(), bias.data(), y_ref.data(), exact);
      reference::conv2d_backward_data<float>(s, dy.data(), w.data(), dx_ref.data(), exact);
      reference::conv2d_backward_weight<float>(s, x.data(), dy.data(), dw_ref.data(), db_ref.data(), exact);
      for (unsigned splits : {1u, 2u}) {
        std::vector<float> y(y_ref.size()), dx(dx_ref.size()), dw(dw_ref.size()), db(d.OC);
        const conv_launch ln{0, splits, 32};
        cuda::emulated_conv2d_forward<float>(s, x.data(), w.data(), bias.data(), y.data(), t, ln);
        cuda::emulated_conv2d_backward_data<float>(s, dy.data(), w.data(), dx.data(), t, ln);
        cuda::emulated_conv2d_backward_weight<float>(s, x.data(), dy.data(), dw.data(), db.data(), t, ln);
        const std::string what = describe(s, ln, block_order::shuffled, exact);
        EXPECT_TRUE(same_bits(y_ref, y, "forward " + what));
        EXPECT_TRUE(same_bits(dx_ref, dx, "backward_data " + what));
        EXPECT_TRUE(same_bits(dw_ref, dw, "backward_weight " + what));
        EXPECT_TRUE(same_bits(db_ref, db, "dbias " + what));
        std::uint32_t b;
        std::memcpy(&b, &y[core::conv_offset(l, d.OC, d.OH, d.OW, 0, 0, 2, 2)], 4);
        EXPECT_EQ(b, 0x7fc00000u) << what;  // NaN weight: canonical NaN
      }
    }
  }
}

// Batch 0 (backward-weight sums nothing: +0) and an empty output.
TEST(CudaConvEmulation, EmptyBatch) {
  conv2d_shape s = cshape(0, 2, 5, 5, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1);
  std::vector<float> w(3 * 2 * 9, 1.0f), dw(w.size(), 5.0f), db(3, 5.0f);
  for (bool exact : {false, true}) {
    const tier t = exact ? tier::exact : tier::fixed_order;
    cuda::emulated_conv2d_forward<float>(s, static_cast<const float*>(nullptr), w.data(), static_cast<const float*>(nullptr),
                                         static_cast<float*>(nullptr), t);
    cuda::emulated_conv2d_backward_weight<float>(s, static_cast<const float*>(nullptr), static_cast<const float*>(nullptr),
                                                 dw.data(), db.data(), t, conv_launch{0, 0, 0});
    for (float v : dw) {
      EXPECT_FALSE(std::signbit(v));
      EXPECT_EQ(v, 0.0f);
    }
    for (float v : db) EXPECT_EQ(v, 0.0f);
  }
}

// Bad input: the CPU API's checks, plus an unknown tier and a block over 1024; nothing written.
TEST(CudaConvEmulation, BadInputThrowsOutputsUntouched) {
  const conv2d_shape good = cshape(1, 2, 5, 5, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1);
  std::vector<float> x(50, 1.0f), w(2 * 2 * 9, 1.0f), y(50, 7.0f), dw(w.size(), 7.0f);
  std::vector<conv2d_shape> bad(6, good);
  bad[0].stride_h = 0;
  bad[1].dilation_w = 0;
  bad[2].groups = 3;
  bad[3].kernel_h = 8;
  bad[4].kernel_w = 0;
  bad[5].groups = 0;
  for (const conv2d_shape& s : bad) {
    EXPECT_THROW(cuda::emulated_conv2d_forward<float>(s, x.data(), w.data(), static_cast<const float*>(nullptr), y.data(),
                                                      tier::fixed_order),
                 std::invalid_argument);
    EXPECT_THROW(cuda::emulated_conv2d_backward_data<float>(s, y.data(), w.data(), x.data(), tier::exact),
                 std::invalid_argument);
    EXPECT_THROW(cuda::emulated_conv2d_backward_weight<float>(s, x.data(), y.data(), dw.data(),
                                                              static_cast<float*>(nullptr), tier::fixed_order),
                 std::invalid_argument);
  }
  // null pointers, overlaps, tier, block
  EXPECT_THROW(cuda::emulated_conv2d_forward<float>(good, static_cast<const float*>(nullptr), w.data(),
                                                    static_cast<const float*>(nullptr), y.data(), tier::fixed_order),
               std::invalid_argument);
  EXPECT_THROW(cuda::emulated_conv2d_forward<float>(good, x.data(), w.data(), static_cast<const float*>(nullptr),
                                                    x.data() + 3, tier::fixed_order),
               std::invalid_argument);
  EXPECT_THROW(cuda::emulated_conv2d_backward_data<float>(good, y.data(), w.data(), y.data() + 10, tier::fixed_order),
               std::invalid_argument);
  EXPECT_THROW(cuda::emulated_conv2d_backward_weight<float>(good, x.data(), y.data(), dw.data(), dw.data() + 1,
                                                            tier::exact),
               std::invalid_argument);
  EXPECT_THROW(cuda::emulated_conv2d_forward<float>(good, x.data(), w.data(), static_cast<const float*>(nullptr), y.data(),
                                                    static_cast<tier>(7)),
               std::invalid_argument);
  EXPECT_THROW(cuda::emulated_conv2d_forward<float>(good, x.data(), w.data(), static_cast<const float*>(nullptr), y.data(),
                                                    tier::fixed_order, conv_launch{0, 0, 2048}),
               std::invalid_argument);
  for (float v : y) EXPECT_EQ(v, 7.0f);
  for (float v : dw) EXPECT_EQ(v, 7.0f);
  for (float v : x) EXPECT_EQ(v, 1.0f);
}

// --- pooling ---------------------------------------------------------------------------------

pool2d_shape pshape(std::size_t n, std::size_t c, std::size_t h, std::size_t w, std::size_t kh, std::size_t kw,
                    std::size_t sh, std::size_t sw, std::size_t ph, std::size_t pw, bool ceil_mode, bool include_pad) {
  pool2d_shape s;
  s.batch = n;
  s.channels = c;
  s.in_h = h;
  s.in_w = w;
  s.kernel_h = kh;
  s.kernel_w = kw;
  s.stride_h = sh;
  s.stride_w = sw;
  s.pad_h = ph;
  s.pad_w = pw;
  s.ceil_mode = ceil_mode;
  s.count_include_pad = include_pad;
  return s;
}

std::vector<pool_launch> pool_launches() { return {{0, 0, 0}, {1, 32, 1}, {3, 33, 5}, {0, 64, 7}, {2, 1, 64}}; }

/// Values on a coarse grid (ties in max windows) with a few NaNs and signed zeros.
template <class T>
std::vector<T> pool_data(std::size_t n, std::uint64_t seed, bool specials) {
  std::vector<T> v(n);
  for (auto& x : v) {
    const std::uint64_t r = mix(seed);
    x = static_cast<T>(static_cast<int>(r % 9) - 4) * T(0.375);
    if (specials && r % 97 == 0) x = std::numeric_limits<T>::quiet_NaN();
    if (specials && r % 89 == 1) x = -T(0);
  }
  return v;
}

template <class T>
void check_pool(pool2d_shape s, std::uint64_t seed) {
  for (layout l : {layout::nchw, layout::nhwc}) {
    s.data = l;
    const std::size_t OH = s.out_h(), OW = s.out_w();
    const std::size_t nx = s.batch * s.channels * s.in_h * s.in_w, ny = s.batch * s.channels * OH * OW;
    const std::vector<T> x = pool_data<T>(nx, seed, true), dy = data<T>(ny, seed + 1);
    std::vector<T> y_ref(ny), ya_ref(ny), dx_ref(nx), dxa_ref(nx), dxr_ref(nx);
    std::vector<std::int64_t> i_ref(ny), i_rand(ny);
    reference::max_pool2d_forward(s.batch, s.channels, s.in_h, s.in_w, OH, OW, s.kernel_h, s.kernel_w, s.stride_h,
                                  s.stride_w, s.pad_h, s.pad_w, l, x.data(), y_ref.data(), i_ref.data());
    reference::max_pool2d_backward(s.batch, s.channels, s.in_h, s.in_w, OH, OW, l, dy.data(), i_ref.data(),
                                   dx_ref.data());
    std::uint64_t r = seed;
    for (auto& i : i_rand) i = static_cast<std::int64_t>(mix(r) % (s.in_h * s.in_w));  // any in-plane index
    reference::max_pool2d_backward(s.batch, s.channels, s.in_h, s.in_w, OH, OW, l, dy.data(), i_rand.data(),
                                   dxr_ref.data());
    reference::avg_pool2d_forward(s.batch, s.channels, s.in_h, s.in_w, OH, OW, s.kernel_h, s.kernel_w, s.stride_h,
                                  s.stride_w, s.pad_h, s.pad_w, s.count_include_pad, false, l, x.data(), ya_ref.data());
    reference::avg_pool2d_backward(s.batch, s.channels, s.in_h, s.in_w, OH, OW, s.kernel_h, s.kernel_w, s.stride_h,
                                   s.stride_w, s.pad_h, s.pad_w, s.count_include_pad, false, l, dy.data(),
                                   dxa_ref.data());
    int run = 0;
    for (const pool_launch& ln : pool_launches()) {
      const block_order o = static_cast<block_order>(run++ % 3);
      const std::string what = "pool " + std::to_string(s.in_h) + "x" + std::to_string(s.in_w) + " k" +
                               std::to_string(s.kernel_h) + "x" + std::to_string(s.kernel_w) + " s" +
                               std::to_string(s.stride_h) + " p" + std::to_string(s.pad_h) +
                               (s.ceil_mode ? " ceil" : "") + (s.count_include_pad ? " incl" : "") +
                               (l == layout::nhwc ? " nhwc" : " nchw") + " grid=" + std::to_string(ln.grid) +
                               " block=" + std::to_string(ln.block) + " owners=" + std::to_string(ln.owners);
      std::vector<T> y(ny, T(-9)), ya(ny, T(-9)), dx(nx, T(-9)), dxa(nx, T(-9)), dxr(nx, T(-9));
      std::vector<std::int64_t> idx(ny, -5);
      cuda::emulated_max_pool2d_forward(s, x.data(), y.data(), idx.data(), ln, o);
      cuda::emulated_max_pool2d_backward(s, dy.data(), i_ref.data(), dx.data(), ln, o);
      cuda::emulated_max_pool2d_backward(s, dy.data(), i_rand.data(), dxr.data(), ln, o);
      cuda::emulated_avg_pool2d_forward(s, x.data(), ya.data(), ln, o);
      cuda::emulated_avg_pool2d_backward(s, dy.data(), dxa.data(), ln, o);
      ASSERT_TRUE(same_bits(y_ref, y, "max forward " + what));
      ASSERT_TRUE(same_bits(i_ref, idx, "max indices " + what));
      ASSERT_TRUE(same_bits(dx_ref, dx, "max backward " + what));
      ASSERT_TRUE(same_bits(dxr_ref, dxr, "max backward (any indices) " + what));
      ASSERT_TRUE(same_bits(ya_ref, ya, "avg forward " + what));
      ASSERT_TRUE(same_bits(dxa_ref, dxa, "avg backward " + what));
    }
  }
}

template <class T>
void pool_sweep(std::uint64_t seed) {
  check_pool<T>(pshape(2, 3, 7, 6, 3, 3, 2, 2, 1, 1, false, true), seed++);
  check_pool<T>(pshape(2, 3, 7, 6, 3, 3, 2, 2, 1, 1, false, false), seed++);
  check_pool<T>(pshape(1, 4, 9, 10, 3, 2, 2, 3, 1, 1, true, true), seed++);   // ceil_mode, padding counted
  check_pool<T>(pshape(1, 4, 9, 10, 3, 4, 2, 3, 1, 2, true, false), seed++);  // ceil_mode, padding not counted
  check_pool<T>(pshape(3, 2, 5, 5, 2, 2, 1, 1, 0, 0, false, true), seed++);   // overlapping windows
  check_pool<T>(pshape(1, 5, 11, 3, 5, 1, 1, 1, 2, 0, false, true), seed++);  // stride 1, tall windows
  check_pool<T>(pshape(2, 1, 1, 1, 1, 1, 1, 1, 0, 0, false, true), seed++);   // 1x1
}

TEST(CudaPoolEmulation, Float) { pool_sweep<float>(1000); }
TEST(CudaPoolEmulation, Double) { pool_sweep<double>(2000); }

TEST(CudaPoolEmulation, Adaptive) {
  const std::pair<std::size_t, std::size_t> outs[] = {{1, 1}, {3, 4}, {7, 5}, {10, 13}, {13, 20}};
  for (layout l : {layout::nchw, layout::nhwc})
    for (const auto& oo : outs) {
      adaptive_pool2d_shape s;
      s.batch = 2;
      s.channels = 3;
      s.in_h = 10;
      s.in_w = 13;
      s.out_h = oo.first;
      s.out_w = oo.second;
      s.data = l;
      const std::size_t nx = 2 * 3 * 10 * 13, ny = 2 * 3 * oo.first * oo.second;
      const std::vector<double> x = data<double>(nx, 31), dy = data<double>(ny, 32);
      std::vector<double> y_ref(ny), dx_ref(nx);
      reference::avg_pool2d_forward(2, 3, 10, 13, oo.first, oo.second, 0, 0, 0, 0, 0, 0, false, true, l, x.data(),
                                    y_ref.data());
      reference::avg_pool2d_backward(2, 3, 10, 13, oo.first, oo.second, 0, 0, 0, 0, 0, 0, false, true, l, dy.data(),
                                     dx_ref.data());
      for (const pool_launch& ln : pool_launches()) {
        std::vector<double> y(ny, -9.0), dx(nx, -9.0);
        cuda::emulated_adaptive_avg_pool2d_forward(s, x.data(), y.data(), ln);
        cuda::emulated_adaptive_avg_pool2d_backward(s, dy.data(), dx.data(), ln, block_order::reverse);
        const std::string what = "adaptive " + std::to_string(oo.first) + "x" + std::to_string(oo.second);
        ASSERT_TRUE(same_bits(y_ref, y, what));
        ASSERT_TRUE(same_bits(dx_ref, dx, what));
      }
    }
}

TEST(CudaPoolEmulation, BadInputThrowsOutputsUntouched) {
  const pool2d_shape good = pshape(1, 2, 6, 6, 3, 3, 2, 2, 1, 1, false, true);
  std::vector<float> x(72, 1.0f), y(18, 7.0f), dx(72, 7.0f);
  std::vector<std::int64_t> idx(18, 0);
  std::vector<pool2d_shape> bad(4, good);
  bad[0].kernel_h = 0;
  bad[1].stride_w = 0;
  bad[2].pad_h = 2;  // above half the kernel
  bad[3].kernel_w = 9;
  for (const pool2d_shape& s : bad) {
    EXPECT_THROW(cuda::emulated_max_pool2d_forward(s, x.data(), y.data(), idx.data()), std::invalid_argument);
    EXPECT_THROW(cuda::emulated_avg_pool2d_forward(s, x.data(), y.data()), std::invalid_argument);
    EXPECT_THROW(cuda::emulated_avg_pool2d_backward(s, y.data(), dx.data()), std::invalid_argument);
    EXPECT_THROW(cuda::emulated_max_pool2d_backward(s, y.data(), idx.data(), dx.data()), std::invalid_argument);
  }
  EXPECT_THROW(cuda::emulated_max_pool2d_forward(good, x.data(), x.data() + 4, idx.data()), std::invalid_argument);
  EXPECT_THROW(cuda::emulated_max_pool2d_backward(good, y.data(), static_cast<const std::int64_t*>(nullptr), dx.data()),
               std::invalid_argument);
  // An index outside its plane (the CPU API's check, done on the device): nothing written.
  for (std::int64_t badi : {std::int64_t(-1), std::int64_t(36), std::int64_t(1) << 40}) {
    std::vector<std::int64_t> bi(18, 3);
    bi[11] = badi;
    try {
      cuda::emulated_max_pool2d_backward(good, y.data(), bi.data(), dx.data(), pool_launch{2, 32, 3});
      ADD_FAILURE() << "index " << badi << " accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("output 11"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(cuda::emulated_avg_pool2d_forward(good, x.data(), y.data(), pool_launch{0, 1025, 0}),
               std::invalid_argument);
  adaptive_pool2d_shape a;
  a.batch = 1;
  a.channels = 2;
  a.in_h = 6;
  a.in_w = 6;
  a.out_h = 0;
  a.out_w = 3;
  EXPECT_THROW(cuda::emulated_adaptive_avg_pool2d_forward(a, x.data(), y.data()), std::invalid_argument);
  for (float v : y) EXPECT_EQ(v, 7.0f);
  for (float v : dx) EXPECT_EQ(v, 7.0f);
  for (std::int64_t v : idx) EXPECT_EQ(v, 0);
}

}  // namespace
