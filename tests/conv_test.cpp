// conv_test: 2-D convolution (forward, backward-data, backward-weight; float, double, bfloat16)
// equal to the reference bit for bit over ISAs x threads x layouts x stride/pad/dilation/groups x
// odd sizes; batch invariance; the exact tier against an independent integer oracle and the
// reference; order independence of the exact backward-weight; special values; golden hashes
// under conv_order_version; every bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include <bitexact/conv.hpp>
#include <bitexact/pool.hpp>
#include <bitexact/reference/conv.hpp>
#include <bitexact/reference/pool.hpp>

#include "random_test_util.hpp"
#include "split_probe.hpp"

#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

using namespace bitexact;
using bitexact_test::splitmix;

namespace {

const auto& kThreads = bitexact_test::matrix_threads;  // {1, 2, 3, 4, 7, 8}; {1, 3, 8} under the sanitizers

template <class T>
T make(double v) {
  if constexpr (std::is_same<T, bfloat16>::value) return bfloat16::from_float(static_cast<float>(v));
  else return static_cast<T>(v);
}

template <class T>
std::vector<T> data(std::size_t n, std::uint64_t seed) {
  splitmix g{seed};
  std::vector<T> v(n);
  for (auto& x : v) x = make<T>((g.uniform() - 0.5) * 4.0);
  return v;
}

template <class T>
bool same(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

std::uint64_t fnv(const void* p, std::size_t bytes, std::uint64_t h = 1469598103934665603ull) {
  const unsigned char* c = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < bytes; ++i) h = (h ^ c[i]) * 1099511628211ull;
  return h;
}

conv2d_shape shape(std::size_t n, std::size_t c, std::size_t h, std::size_t w, std::size_t oc, std::size_t kh,
                   std::size_t kw, std::size_t stride, std::size_t pad, std::size_t dil, std::size_t groups,
                   layout l = layout::nchw) {
  conv2d_shape s;
  s.batch = n;
  s.in_channels = c;
  s.in_h = h;
  s.in_w = w;
  s.out_channels = oc;
  s.kernel_h = kh;
  s.kernel_w = kw;
  s.stride_h = stride;
  s.stride_w = stride == 2 ? 1 : stride;  // some shapes with unequal strides
  s.pad_h = pad;
  s.pad_w = pad == 0 ? 0 : pad - (pad > 1);
  s.dilation_h = dil;
  s.dilation_w = 1;
  s.groups = groups;
  s.data = l;
  return s;
}

std::size_t xsize(const conv2d_shape& s) { return s.batch * s.in_channels * s.in_h * s.in_w; }
std::size_t wsize(const conv2d_shape& s) {
  return s.out_channels * (s.in_channels / s.groups) * s.kernel_h * s.kernel_w;
}
std::size_t ysize(const conv2d_shape& s) { return s.batch * s.out_channels * s.out_h() * s.out_w(); }

// Shapes: odd sizes, stride/pad/dilation/groups, 1x1, depthwise, K across chunk boundaries
// (K = 300 > 256 and K' = N * OH * OW over several chunks), more positions than a column tile.
std::vector<conv2d_shape> shapes() {
  return {
      shape(2, 3, 7, 9, 5, 3, 3, 1, 1, 1, 1),     // small, padded
      shape(3, 4, 11, 6, 6, 3, 2, 2, 1, 1, 2),    // stride 2 x 1, groups 2, unequal kernel
      shape(1, 6, 9, 10, 9, 2, 3, 3, 2, 2, 3),    // stride 3, pad 2/1, dilation 2, groups 3
      shape(2, 12, 5, 5, 12, 3, 3, 1, 1, 1, 12),  // depthwise
      shape(3, 33, 6, 5, 7, 3, 3, 1, 1, 1, 1),    // K = 297: two chunks
      shape(2, 8, 21, 19, 13, 1, 1, 1, 0, 1, 1),  // 1x1, 399 positions: two column tiles
      shape(1, 5, 23, 17, 19, 5, 4, 1, 3, 1, 1),  // large pad, 19 out-channels (row tail)
      shape(2, 2, 4, 4, 3, 5, 5, 1, 2, 1, 1),     // kernel = padded input
      shape(2, 20, 18, 35, 20, 3, 3, 1, 1, 1, 20),  // depthwise fast path: vectors and tails
      shape(1, 17, 21, 40, 17, 5, 5, 2, 2, 2, 17),  // depthwise 5x5, stride 2 x 1, dilation 2
      // The depthwise planes' compile-time kernels (3x3, 5x5, 1 x 3 at dilation 1; forward and the
      // flipped backward-data), 4-row blocks and row tails, rows narrower than a vector whose
      // stores spill into the next rows, and stride 2 x 1.
      shape(2, 7, 11, 19, 7, 5, 5, 1, 2, 1, 7),
      shape(2, 9, 3, 37, 9, 1, 3, 1, 1, 1, 9),
      shape(3, 5, 6, 3, 5, 3, 3, 1, 1, 1, 5),
      shape(2, 6, 13, 21, 6, 3, 3, 2, 1, 1, 6),
  };
}

struct conv_case {
  conv2d_shape s;
  std::uint64_t seed;
};

template <class X, class A>
void check_all_paths(const conv2d_shape& s, std::uint64_t seed, tier t) {
  const bool exact = t == tier::exact;
  const auto x = data<X>(xsize(s), seed);
  const auto w = data<X>(wsize(s), seed + 1);
  const auto bias = data<A>(s.out_channels, seed + 2);
  const auto dy = data<A>(ysize(s), seed + 3);
  std::vector<A> y_ref(ysize(s)), dx_ref(xsize(s)), dw_ref(wsize(s)), db_ref(s.out_channels);
  reference::conv2d_forward<A>(s, x.data(), w.data(), bias.data(), y_ref.data(), exact);
  reference::conv2d_backward_data<A>(s, dy.data(), w.data(), dx_ref.data(), exact);
  reference::conv2d_backward_weight<A>(s, x.data(), dy.data(), dw_ref.data(), db_ref.data(), exact);
  for (isa i : usable_isas()) {
    for (int th : kThreads) {
      if (exact && th != 1 && th != 3 && th != 8) continue;
      const execution ex{th, i};
      SCOPED_TRACE(std::string("isa ") + isa_name(i) + " threads " + std::to_string(th));
      std::vector<A> y(ysize(s)), dx(xsize(s)), dw(wsize(s)), db(s.out_channels);
      conv2d_forward(s, x.data(), w.data(), bias.data(), y.data(), t, ex);
      EXPECT_TRUE(same(y, y_ref)) << "forward";
      conv2d_backward_data(s, dy.data(), w.data(), dx.data(), t, ex);
      EXPECT_TRUE(same(dx, dx_ref)) << "backward-data";
      conv2d_backward_weight(s, x.data(), dy.data(), dw.data(), db.data(), t, ex);
      EXPECT_TRUE(same(dw, dw_ref)) << "backward-weight";
      EXPECT_TRUE(same(db, db_ref)) << "dbias";
    }
  }
}

TEST(ConvMatrix, FloatEqualsReference) {
  std::uint64_t seed = 100;
  for (layout l : {layout::nchw, layout::nhwc})
    for (conv2d_shape s : shapes()) {
      s.data = l;
      SCOPED_TRACE("shape " + std::to_string(seed));
      check_all_paths<float, float>(s, seed += 10, tier::fixed_order);
    }
}

TEST(ConvMatrix, DoubleEqualsReference) {
  std::uint64_t seed = 200;
  for (layout l : {layout::nchw, layout::nhwc})
    for (conv2d_shape s : shapes()) {
      s.data = l;
      SCOPED_TRACE("shape " + std::to_string(seed));
      check_all_paths<double, double>(s, seed += 10, tier::fixed_order);
    }
}

TEST(ConvMatrix, Bfloat16EqualsReference) {
  std::uint64_t seed = 300;
  for (layout l : {layout::nchw, layout::nhwc})
    for (conv2d_shape s : shapes()) {
      s.data = l;
      check_all_paths<bfloat16, float>(s, seed += 10, tier::fixed_order);
    }
}

TEST(ConvMatrix, ExactEqualsReference) {
  std::uint64_t seed = 400;
  for (layout l : {layout::nchw, layout::nhwc})
    for (conv2d_shape s : shapes()) {
      s.data = l;
      check_all_paths<float, float>(s, seed += 10, tier::exact);
      check_all_paths<double, double>(s, seed += 10, tier::exact);
    }
}

// A chunk boundary inside K' that cuts an image, a tall K (two K chunks) and many tiles: the
// work really splits over 8 threads (forward: 3 images x 2 column tiles x row blocks).
// Tiny planes (at most 16 positions, sources inside 16 elements): the AVX-512 float im2col
// rows come from one permute per image (cpu/conv_kernels.hpp conv_gather_mapped); with padding
// 0, 1, 2 (taps outside the plane), odd batch and channel counts, every ISA and thread count.
TEST(ConvMatrix, TinyPlanesPermutePath) {
  std::uint64_t seed = 1300;
  for (std::size_t hw : {2, 3, 4})
    for (std::size_t pad : {0, 1, 2}) {
      if (hw + 2 * pad < 3) continue;
      check_all_paths<float, float>(shape(21, 5, hw, hw, 7, 3, 3, 1, pad, 1, 1), seed++, tier::fixed_order);
    }
  check_all_paths<float, float>(shape(32, 16, 4, 4, 32, 3, 3, 1, 1, 1, 1), seed++, tier::fixed_order);  // digits CNN
}

/// Forward and backward-data with unit strides, NCHW and few padded columns run on padded rows
/// (cpu/conv_kernels.hpp conv_padded_rows): B rows read in place (or copied, where a micro-panel
/// would span two images) from zero-padded planes on the padded row pitch, the columns past OW
/// computed and dropped. Shapes: rows wider than a panel, two K chunks, groups with dilation,
/// several small images packed in one tile (copied; and in place where an image's positions are
/// whole panels), double, bfloat16 widened into the planes, the 1x1 unpadded case that
/// backward-data reads from dy itself (forward, from x), rows longer than a tile, and 1-D.
TEST(ConvMatrix, PaddedRowsPath) {
  std::uint64_t seed = 1600;
  check_all_paths<float, float>(shape(3, 40, 17, 16, 30, 3, 3, 1, 1, 1, 1), seed++, tier::fixed_order);
  check_all_paths<float, float>(shape(2, 4, 12, 37, 6, 3, 3, 1, 1, 2, 2), seed++, tier::fixed_order);
  check_all_paths<float, float>(shape(5, 6, 3, 16, 7, 3, 3, 1, 1, 1, 1), seed++, tier::fixed_order);  // 4 images a tile
  check_all_paths<float, float>(shape(3, 3, 9, 40, 5, 5, 5, 1, 2, 1, 1), seed++, tier::fixed_order);  // pad 2 / 1
  check_all_paths<double, double>(shape(2, 5, 9, 30, 6, 3, 3, 1, 1, 1, 1), seed++, tier::fixed_order);
  check_all_paths<bfloat16, float>(shape(3, 40, 17, 16, 30, 3, 3, 1, 1, 1, 1), seed++, tier::fixed_order);
  check_all_paths<float, float>(shape(2, 20, 9, 40, 300, 1, 1, 1, 0, 1, 1), seed++, tier::fixed_order);  // 1x1
  // B read on the planes in place across images: 4 x 16 padded positions a image, a multiple of
  // the micro-panel (float: 4 images a tile; double: 2).
  check_all_paths<float, float>(shape(5, 6, 4, 14, 7, 3, 3, 1, 1, 1, 1), seed++, tier::fixed_order);
  check_all_paths<double, double>(shape(5, 6, 4, 14, 7, 3, 3, 1, 1, 1, 1), seed++, tier::fixed_order);
  // Rows longer than a column tile (2 x 302 padded positions: tiles of 256, 256, 92 columns).
  check_all_paths<float, float>(shape(2, 5, 2, 300, 6, 3, 3, 1, 1, 1, 1), seed++, tier::fixed_order);
  // 1-D (one output row): the last chunk's micro calls write y's kept columns themselves.
  conv2d_shape one_d = shape(3, 7, 1, 600, 5, 1, 3, 1, 0, 1, 1);
  one_d.pad_w = 1;
  check_all_paths<float, float>(one_d, seed++, tier::fixed_order);
  one_d.in_channels = 200, one_d.out_channels = 2 * 9, one_d.groups = 2;  // two K chunks a group
  check_all_paths<float, float>(one_d, seed++, tier::fixed_order);
  // Forward strides on stride-phase planes: a 7x7/2 stem (K = 3 * 49; odd input), 3x3 with
  // stride 3 x 2, dilation 2 and groups (two K chunks a group), a 3x3/2 whose odd padded width
  // leaves the last phase a column short, double; 1x1/2 stays off the path (one phase of four).
  for (int v = 0; v < 4; ++v) {
    conv2d_shape st = v == 0   ? shape(2, 3, 31, 29, 10, 7, 7, 1, 3, 1, 1)
                      : v == 1 ? shape(2, 60, 17, 23, 8, 3, 3, 1, 2, 2, 2)
                               : shape(3, 5, 13, 15, 6, 3, 3, 1, 1, 1, 1);
    st.stride_h = v == 1 ? 3 : 2, st.stride_w = 2, st.pad_w = st.pad_h;
    if (v == 3) check_all_paths<double, double>(st, seed++, tier::fixed_order);
    else check_all_paths<float, float>(st, seed++, tier::fixed_order);
  }
}

/// 1x1, unit-stride, unpadded NCHW backward-weight (cpu/conv_kernels.hpp
/// conv_backward_weight_1x1): one product per group with A's rows read in place - dy's when a
/// group has more out- than in-channels, x's otherwise - and the chunks of k' that cross an
/// image boundary staged; dbias from dy's NCHW rows 16 channels at a time. Shapes: both
/// orientations, column tiles of part of a panel and of whole panels (B read in place), groups
/// with a dilation (which a 1x1 kernel ignores), out-channels that end in a partial block of 16,
/// double.
TEST(ConvMatrix, BackwardWeight1x1) {
  std::uint64_t seed = 1800;
  check_all_paths<float, float>(shape(3, 8, 11, 11, 40, 1, 1, 1, 0, 1, 1), seed++, tier::fixed_order);    // rows: out, P = 121
  check_all_paths<float, float>(shape(2, 48, 9, 30, 16, 1, 1, 1, 0, 1, 2), seed++, tier::fixed_order);    // rows: in, groups
  check_all_paths<float, float>(shape(2, 64, 20, 20, 96, 1, 1, 1, 0, 1, 1), seed++, tier::fixed_order);   // B in place
  check_all_paths<float, float>(shape(2, 36, 7, 9, 300, 1, 1, 1, 0, 2, 3), seed++, tier::fixed_order);    // groups, dilation
  check_all_paths<double, double>(shape(3, 8, 11, 11, 40, 1, 1, 1, 0, 1, 1), seed++, tier::fixed_order);
}

/// The padded planes are built a pass of at most about 4 Mi elements at a time: images of more
/// than 2 Mi padded elements take one pass each (three passes here), with the reference's bits.
TEST(ConvMatrix, PaddedRowsPasses) {
  const conv2d_shape s = shape(3, 1, 8400, 250, 2, 3, 3, 1, 1, 1, 1);  // 8402 x 252 padded planes
  const auto x = data<float>(xsize(s), 1700), w = data<float>(wsize(s), 1701), bias = data<float>(2, 1702);
  const auto dy = data<float>(ysize(s), 1703);
  std::vector<float> y_ref(ysize(s)), dx_ref(xsize(s));
  reference::conv2d_forward<float>(s, x.data(), w.data(), bias.data(), y_ref.data(), false);
  reference::conv2d_backward_data<float>(s, dy.data(), w.data(), dx_ref.data(), false);
  for (int th : {1, 3}) {
    std::vector<float> y(ysize(s)), dx(xsize(s));
    conv2d_forward(s, x.data(), w.data(), bias.data(), y.data(), tier::fixed_order, execution{th});
    EXPECT_TRUE(same(y, y_ref)) << "forward, threads " << th;
    conv2d_backward_data(s, dy.data(), w.data(), dx.data(), tier::fixed_order, execution{th});
    EXPECT_TRUE(same(dx, dx_ref)) << "backward-data, threads " << th;
  }
}

TEST(ConvMatrix, LargerShapesSplitAcrossThreads) {
  check_all_paths<float, float>(shape(3, 40, 17, 16, 30, 3, 3, 1, 1, 1, 1), 7, tier::fixed_order);
  check_all_paths<float, float>(shape(2, 64, 12, 12, 64, 3, 3, 1, 1, 1, 1, layout::nhwc), 8, tier::fixed_order);
  // Depthwise with 100 channels: backward-weight's channel blocks (2 vectors each) split over threads.
  check_all_paths<float, float>(shape(2, 100, 9, 11, 100, 3, 3, 1, 1, 1, 100), 9, tier::fixed_order);
  check_all_paths<float, float>(shape(2, 100, 9, 11, 100, 3, 3, 1, 1, 1, 100, layout::nhwc), 10, tier::fixed_order);
  // Backward-weight's tap-major form (short output rows) with K = 1080 rows: a task holds more
  // than the 512 rows of one patch at 1 thread, so its rows run in two sub-blocks.
  check_all_paths<float, float>(shape(2, 120, 5, 5, 20, 3, 3, 1, 1, 1, 1), 13, tier::fixed_order);
}

/// Backward-data with a stride and at most 4 input channels per group runs by stride phases
/// (conv_backward_data_phases): a 7x7/2 stem-like shape whose K = 40 * 49 crosses seven chunk
/// boundaries, both layouts; stride 3 x 2 with dilation and groups; a 1x1 stride-2 kernel (phases
/// with no tap at all: +0); a depthwise 5x5 with stride 2 x 2.
TEST(ConvMatrix, StridedBackwardDataPhases) {
  auto strided = [](std::size_t n, std::size_t c, std::size_t h, std::size_t w, std::size_t oc, std::size_t k,
                    std::size_t sh, std::size_t sw, std::size_t pad, std::size_t dil, std::size_t groups, layout l) {
    conv2d_shape s = shape(n, c, h, w, oc, k, k, 1, pad, dil, groups, l);
    s.stride_h = sh, s.stride_w = sw, s.pad_w = pad, s.dilation_w = dil;
    return s;
  };
  std::uint64_t seed = 1400;
  for (layout l : {layout::nchw, layout::nhwc})
    check_all_paths<float, float>(strided(2, 3, 23, 26, 40, 7, 2, 2, 3, 1, 1, l), seed++, tier::fixed_order);
  check_all_paths<float, float>(strided(2, 4, 17, 40, 6, 3, 3, 2, 2, 2, 2, layout::nhwc), seed++, tier::fixed_order);
  check_all_paths<float, float>(strided(3, 4, 9, 11, 6, 1, 2, 2, 0, 1, 1, layout::nchw), seed++, tier::fixed_order);
  check_all_paths<float, float>(strided(2, 9, 19, 21, 9, 5, 2, 2, 2, 1, 9, layout::nchw), seed++, tier::fixed_order);
  check_all_paths<double, double>(strided(2, 3, 15, 14, 24, 7, 2, 2, 3, 1, 1, layout::nchw), seed++,
                                  tier::fixed_order);
}

/// Backward-weight with at most 4 input channels per group and output rows of 16 or more (NCHW)
/// takes the forward K index as columns (conv_backward_weight_taps_as_columns): a stem-like 7x7/2
/// (K = 147: panels of 32 taps, the last partial; runs cut by panel edges; 4 chunks of k'),
/// groups with dilation, and double.
TEST(ConvMatrix, SmallChannelBackwardWeightTapsAsColumns) {
  std::uint64_t seed = 1500;
  conv2d_shape stem = shape(2, 3, 40, 45, 40, 7, 7, 1, 3, 1, 1);
  stem.stride_h = stem.stride_w = 2, stem.pad_w = 3;  // out 20 x 23
  check_all_paths<float, float>(stem, seed++, tier::fixed_order);
  check_all_paths<float, float>(shape(2, 4, 12, 37, 6, 3, 3, 1, 1, 2, 2), seed++, tier::fixed_order);
  check_all_paths<double, double>(shape(1, 2, 9, 33, 5, 5, 3, 1, 2, 1, 1), seed++, tier::fixed_order);
  // A 1-D kernel of 40 taps: a run fills a whole 32-tap panel (its lane mask has all 32 bits).
  check_all_paths<float, float>(shape(2, 2, 1, 70, 5, 1, 40, 1, 0, 1, 1), seed++, tier::fixed_order);
}

/// Backward-weight with at least 8 input channels per group (cpu/conv_kernels.hpp
/// conv_backward_weight_padded_nhwc): the micro kernel reads A - one tap's run of channels at
/// each k' - in place on a zero-padded NHWC copy of x through a table of position offsets per
/// chunk, and the totals go to dw in its own order. Shapes, both layouts: panels of 14, 14 and
/// 12 channels of 9 taps (27 row panels: 8 threads get work) with 70 out-channels (B copied,
/// not whole panels) over 4 chunks of k' that cut images; stride 2 x 1, pad 2 / 1, dilation
/// 2 x 2 and groups; 300 out-channels (two column tiles) at Cg = 8; output rows of 5 (where
/// fewer channels would take the tap map); strides 3 x 2 with a 5x3 kernel; double; bfloat16
/// widened into the copy.
TEST(ConvMatrix, BackwardWeightPaddedNhwc) {
  std::uint64_t seed = 1900;
  conv2d_shape dil = shape(2, 24, 15, 19, 16, 3, 3, 2, 2, 2, 2);
  dil.dilation_w = 2;
  conv2d_shape strided = shape(2, 9, 17, 14, 11, 5, 3, 1, 2, 1, 1);
  strided.stride_h = 3, strided.stride_w = 2;
  for (layout l : {layout::nchw, layout::nhwc}) {
    for (conv2d_shape s : {shape(3, 40, 17, 16, 70, 3, 3, 1, 1, 1, 1), dil, shape(2, 8, 6, 7, 300, 3, 2, 1, 1, 1, 1),
                           shape(4, 16, 5, 5, 24, 3, 3, 1, 1, 1, 1), strided}) {
      s.data = l;
      check_all_paths<float, float>(s, seed++, tier::fixed_order);
    }
    conv2d_shape d = shape(2, 20, 9, 13, 33, 3, 3, 1, 1, 1, 1, l);
    check_all_paths<double, double>(d, seed++, tier::fixed_order);
    check_all_paths<bfloat16, float>(shape(3, 40, 17, 16, 70, 3, 3, 1, 1, 1, 1, l), seed++, tier::fixed_order);
  }
}

/// The depthwise backward-weight of the shape above really runs its channel blocks on several
/// threads (the only parallel region of that call), with the reference's bits.
TEST(ConvMatrix, DepthwiseBackwardWeightSplitsChannelBlocks) {
  const conv2d_shape s = shape(2, 100, 9, 11, 100, 3, 3, 1, 1, 1, 100);
  const auto x = data<float>(xsize(s), 11), dy = data<float>(ysize(s), 12);
  std::vector<float> dw_ref(wsize(s)), db_ref(s.out_channels);
  reference::conv2d_backward_weight<float>(s, x.data(), dy.data(), dw_ref.data(), db_ref.data(), false);
  for (isa i : usable_isas())
    for (int t : {2, 3, 4}) {
      std::vector<float> dw(wsize(s)), db(s.out_channels);
      bitexact_test::split_probe probe;
      conv2d_backward_weight(s, x.data(), dy.data(), dw.data(), db.data(), tier::fixed_order, {t, i});
      EXPECT_GE(probe.widest(), 2) << isa_name(i) << " threads " << t;
      EXPECT_TRUE(same(dw, dw_ref) && same(db, db_ref)) << isa_name(i) << " threads " << t;
    }
}

/// The depthwise backward-weight splits k' too: one channel block (32 channels, 2 AVX-512
/// vectors) over many canonical chunks runs as pieces of chunks on several threads, each
/// chunk's partials folded in chunk order afterwards. Shapes: 3 x 3 (the register kernel, with
/// and without dbias), rows of at least 32 (gathered per row, 37: a masked tail) and shorter
/// (staged per image), channel tails (20, 8), stride 2, NHWC, and 5 x 5 (the tap groups).
TEST(ConvMatrix, DepthwiseBackwardWeightSplitsChunks) {
  std::uint64_t seed = 1700;
  for (const conv2d_shape& s :
       {shape(2, 32, 20, 20, 32, 3, 3, 1, 1, 1, 32), shape(3, 32, 11, 37, 32, 3, 3, 1, 1, 1, 32),
        shape(4, 20, 31, 23, 20, 3, 3, 2, 1, 1, 20), shape(2, 8, 30, 13, 8, 3, 3, 1, 1, 1, 8),
        shape(2, 32, 20, 20, 32, 3, 3, 1, 1, 1, 32, layout::nhwc), shape(3, 24, 17, 18, 24, 5, 5, 1, 2, 1, 24)}) {
    const auto x = data<float>(xsize(s), seed++), dy = data<float>(ysize(s), seed++);
    ASSERT_GE(s.batch * s.out_h() * s.out_w(), 3 * 256u);  // at least 3 chunks of k'
    std::vector<float> dw_ref(wsize(s)), db_ref(s.out_channels);
    reference::conv2d_backward_weight<float>(s, x.data(), dy.data(), dw_ref.data(), db_ref.data(), false);
    for (isa i : usable_isas())
      for (int t : {1, 2, 3, 4, 7, 8})
        for (bool with_bias : {true, false}) {
          std::vector<float> dw(wsize(s)), db(s.out_channels);
          bitexact_test::split_probe probe;
          conv2d_backward_weight(s, x.data(), dy.data(), dw.data(), with_bias ? db.data() : nullptr, tier::fixed_order,
                                 {t, i});
          if (t > 1) {
            EXPECT_GE(probe.widest(), 2) << isa_name(i) << " threads " << t;
          }
          EXPECT_TRUE(same(dw, dw_ref)) << isa_name(i) << " threads " << t << " C " << s.in_channels;
          if (with_bias) {
            EXPECT_TRUE(same(db, db_ref)) << isa_name(i) << " threads " << t << " C " << s.in_channels;
          }
        }
  }
}

// Each image of a batch equals that image alone (forward and backward-data).
TEST(ConvBatch, ImageAloneEqualsImageInBatch) {
  for (layout l : {layout::nchw, layout::nhwc}) {
    conv2d_shape s = shape(5, 6, 13, 11, 10, 3, 3, 2, 1, 1, 2, l);
    const auto x = data<float>(xsize(s), 1), w = data<float>(wsize(s), 2), dy = data<float>(ysize(s), 3);
    std::vector<float> y(ysize(s)), dx(xsize(s));
    conv2d_forward(s, x.data(), w.data(), nullptr, y.data());
    conv2d_backward_data(s, dy.data(), w.data(), dx.data());
    conv2d_shape one = s;
    one.batch = 1;
    for (std::size_t n = 0; n < s.batch; ++n) {
      std::vector<float> y1(ysize(one)), dx1(xsize(one));
      conv2d_forward(one, x.data() + n * xsize(one), w.data(), nullptr, y1.data(), tier::fixed_order, {1, isa::scalar});
      conv2d_backward_data(one, dy.data() + n * ysize(one), w.data(), dx1.data(), tier::fixed_order, {1, isa::scalar});
      EXPECT_EQ(0, std::memcmp(y1.data(), y.data() + n * ysize(one), ysize(one) * sizeof(float))) << n;
      EXPECT_EQ(0, std::memcmp(dx1.data(), dx.data() + n * xsize(one), xsize(one) * sizeof(float))) << n;
    }
  }
}

// Unaligned pointers (one float past an allocation's start) give the same bits.
TEST(ConvMatrix, UnalignedPointers) {
  conv2d_shape s = shape(2, 5, 12, 13, 7, 3, 3, 1, 1, 1, 1);
  auto x = data<float>(xsize(s) + 1, 5), w = data<float>(wsize(s) + 1, 6);
  std::vector<float> y0(ysize(s)), y1(ysize(s) + 1);
  conv2d_forward(s, x.data() + 1, w.data() + 1, nullptr, y0.data());
  for (isa i : usable_isas()) {
    conv2d_forward(s, x.data() + 1, w.data() + 1, nullptr, y1.data() + 1, tier::fixed_order, {3, i});
    EXPECT_EQ(0, std::memcmp(y0.data(), y1.data() + 1, ysize(s) * sizeof(float))) << isa_name(i);
  }
}

// ---------------------------------------------------------------- exact tier

// Independent oracle: inputs are multiples of 2^-6 with magnitudes up to 2^24 (cancellation:
// products from 2^-12 to 2^48), so every exact sum is an integer multiple of 2^-12 below 2^63;
// converting that integer to long double (64-bit significand, exact) and then to float rounds
// once, correctly.
TEST(ConvExact, IndependentIntegerOracle) {
#if defined(__x86_64__)
  splitmix g{77};
  auto val = [&]() {
    const int e = static_cast<int>(g() % 30);  // 2^-6 .. 2^23 scale
    const double m = static_cast<double>(static_cast<std::int64_t>(g() % 255) - 127);
    return static_cast<float>(std::ldexp(m, e - 12) );
  };
  for (layout l : {layout::nchw, layout::nhwc}) {
    conv2d_shape s = shape(2, 4, 6, 7, 3, 3, 3, 1, 1, 1, 1, l);
    std::vector<float> x(xsize(s)), w(wsize(s)), bias(3), y(ysize(s));
    for (auto& v : x) v = val();
    for (auto& v : w) v = val();
    for (auto& v : bias) v = val();
    conv2d_forward(s, x.data(), w.data(), bias.data(), y.data(), tier::exact, {2, isa::automatic});
    const std::size_t OH = s.out_h(), OW = s.out_w(), K = 4 * 9;
    std::size_t inexact = 0;
    for (std::size_t n = 0; n < 2; ++n)
      for (std::size_t oc = 0; oc < 3; ++oc)
        for (std::size_t oh = 0; oh < OH; ++oh)
          for (std::size_t ow = 0; ow < OW; ++ow) {
            // exact integer sum in units of 2^-36 (every product of two multiples of 2^-18)
            __int128 sum = static_cast<__int128>(std::ldexp(static_cast<double>(bias[oc]), 36));
            float fo = 0;  // plain float sum, to show the data really cancels
            for (std::size_t k = 0; k < K; ++k) {
              const std::size_t ic = k / 9, r = (k / 3) % 3, c = k % 3;
              const long ih = static_cast<long>(oh) - 1 + static_cast<long>(r);
              const long iw = static_cast<long>(ow) - 1 + static_cast<long>(c);
              if (ih < 0 || iw < 0 || ih >= 6 || iw >= 7) continue;
              const float xv = x[core::conv_offset(l, 4, 6, 7, n, ic, ih, iw)];
              const float wv = w[oc * K + k];
              sum += static_cast<__int128>(std::ldexp(static_cast<double>(xv), 18)) *
                     static_cast<__int128>(std::ldexp(static_cast<double>(wv), 18));
              fo += xv * wv;
            }
            // |sum| < 2^63 * 2^... : round the 128-bit integer to float: via long double when it fits
            const bool neg = sum < 0;
            unsigned __int128 m = neg ? -static_cast<unsigned __int128>(sum) : static_cast<unsigned __int128>(sum);
            int shift = 0;
            bool sticky = false;
            while (m >> 64) { sticky |= (m & 1) != 0; m >>= 1; ++shift; }
            long double ld = static_cast<long double>(static_cast<std::uint64_t>(m));
            if (sticky) ld = std::nextafter(ld, std::numeric_limits<long double>::infinity());  // never a tie
            const float expect = static_cast<float>((neg ? -1 : 1) * std::ldexp(ld, shift - 36));
            const float got = y[core::conv_offset(l, 3, OH, OW, n, oc, oh, ow)];
            EXPECT_EQ(expect, got) << n << " " << oc << " " << oh << " " << ow;
            if (fo + bias[oc] != expect) ++inexact;
          }
    EXPECT_GT(inexact, 0u) << "the data should make a plain float sum differ from the exact one";
  }
#else
  GTEST_SKIP() << "needs __int128 and x87 long double";
#endif
}

// The exact backward-weight does not depend on the order of the images.
TEST(ConvExact, BackwardWeightIndependentOfImageOrder) {
  conv2d_shape s = shape(4, 3, 9, 8, 5, 3, 3, 1, 1, 1, 1);
  const auto x = data<float>(xsize(s), 11), dy = data<float>(ysize(s), 12);
  std::vector<float> xr(x.size()), dyr(dy.size());
  const std::size_t xi = xsize(s) / 4, yi = ysize(s) / 4;
  for (std::size_t n = 0; n < 4; ++n) {  // images in order 3 2 1 0
    std::copy(x.begin() + n * xi, x.begin() + (n + 1) * xi, xr.begin() + (3 - n) * xi);
    std::copy(dy.begin() + n * yi, dy.begin() + (n + 1) * yi, dyr.begin() + (3 - n) * yi);
  }
  std::vector<float> dw(wsize(s)), dwr(wsize(s)), db(5), dbr(5);
  conv2d_backward_weight(s, x.data(), dy.data(), dw.data(), db.data(), tier::exact);
  conv2d_backward_weight(s, xr.data(), dyr.data(), dwr.data(), dbr.data(), tier::exact);
  EXPECT_TRUE(same(dw, dwr));
  EXPECT_TRUE(same(db, dbr));
  // fixed_order sums in K' order: reordering the batch is allowed to change bits (and does here).
  conv2d_backward_weight(s, x.data(), dy.data(), dw.data(), db.data());
  conv2d_backward_weight(s, xr.data(), dyr.data(), dwr.data(), dbr.data());
  EXPECT_FALSE(same(dw, dwr));
}

// ---------------------------------------------------------------- exact tier fast paths
//
// The exact tier's fast paths (the GEMM exact lowering on AMX/VNNI, the depthwise double-register
// planes, the depthwise backward-weight on the reduction engines) and their fallbacks, against
// the reference's exact tier, on every ISA and thread count {1, 2, 3, 4, 7, 8}, with data that
// drives each fallback: NaN, +-Inf, -0, all -0 products, magnitudes spread beyond the planes'
// bound and the GEMM digits' span, subnormals.

enum class exact_data { plain, specials, wide, medium, negative_zeros };

std::vector<float> exact_test_data(std::size_t n, std::uint64_t seed, exact_data kind) {
  splitmix g{seed};
  std::vector<float> v(n);
  for (auto& x : v) {
    const double u = g.uniform() - 0.5;
    switch (kind) {
      case exact_data::plain: x = static_cast<float>(u * 4.0); break;
      case exact_data::wide: {  // 2^-149 .. 2^100 (subnormals included)
        const int e = static_cast<int>(g() % 250) - 149;
        x = static_cast<float>(std::ldexp(u, e));
        break;
      }
      case exact_data::medium: {  // 2^-12 .. 2^12: inside the depthwise planes' bound, yet sums far wider than 53 bits
        const int e = static_cast<int>(g() % 25) - 12;
        x = static_cast<float>(std::ldexp(u, e));
        break;
      }
      case exact_data::negative_zeros: x = (g() % 4 == 0) ? static_cast<float>(u) : -0.0f; break;
      case exact_data::specials: {
        const std::uint64_t r = g() % 64;
        const float inf = std::numeric_limits<float>::infinity();
        x = r == 0 ? std::numeric_limits<float>::quiet_NaN() : r == 1 ? inf : r == 2 ? -inf : r < 8 ? -0.0f
                                                                                           : static_cast<float>(u);
        break;
      }
    }
  }
  return v;
}

// Plain data runs every thread count; the special data sets {1, 3, 8} (the sanitizer builds run
// these tests too).
void check_exact_fast_paths(const conv2d_shape& s, std::uint64_t seed, exact_data xk, exact_data wk, bool with_bias) {
  const auto x = exact_test_data(xsize(s), seed, xk), w = exact_test_data(wsize(s), seed + 1, wk);
  const auto bias = exact_test_data(s.out_channels, seed + 2, wk), dy = exact_test_data(ysize(s), seed + 3, xk);
  const float* b = with_bias ? bias.data() : nullptr;
  std::vector<float> y_ref(ysize(s)), dx_ref(xsize(s)), dw_ref(wsize(s)), db_ref(s.out_channels);
  reference::conv2d_forward<float>(s, x.data(), w.data(), b, y_ref.data(), true);
  reference::conv2d_backward_data<float>(s, dy.data(), w.data(), dx_ref.data(), true);
  reference::conv2d_backward_weight<float>(s, x.data(), dy.data(), dw_ref.data(), with_bias ? db_ref.data() : nullptr,
                                           true);
  for (isa i : usable_isas())
    for (int th : kThreads) {
      if (xk != exact_data::plain && th != 1 && th != 3 && th != 8) continue;
      SCOPED_TRACE(std::string("isa ") + isa_name(i) + " threads " + std::to_string(th));
      std::vector<float> y(ysize(s), 7.0f), dx(xsize(s), 7.0f), dw(wsize(s), 7.0f), db(s.out_channels, 7.0f);
      conv2d_forward(s, x.data(), w.data(), b, y.data(), tier::exact, {th, i});
      EXPECT_TRUE(same(y, y_ref)) << "forward";
      conv2d_backward_data(s, dy.data(), w.data(), dx.data(), tier::exact, {th, i});
      EXPECT_TRUE(same(dx, dx_ref)) << "backward-data";
      conv2d_backward_weight(s, x.data(), dy.data(), dw.data(), with_bias ? db.data() : nullptr, tier::exact, {th, i});
      EXPECT_TRUE(same(dw, dw_ref)) << "backward-weight";
      if (with_bias) {
        EXPECT_TRUE(same(db, db_ref)) << "dbias";
      }
    }
}

std::vector<conv2d_shape> exact_fast_shapes() {
  return {
      shape(2, 16, 9, 13, 16, 3, 3, 1, 1, 1, 16),                 // depthwise, unit strides: every dw path
      shape(2, 10, 11, 9, 10, 3, 3, 2, 1, 1, 10),                 // depthwise, stride_h 2 (fwd plane; bwd-data elements)
      shape(2, 9, 8, 7, 9, 3, 3, 1, 1, 1, 9, layout::nhwc),       // depthwise NHWC: element paths, dw bwd-weight
      shape(2, 6, 7, 9, 10, 3, 3, 1, 1, 1, 1),                    // dense: the GEMM lowering (m >= 4)
      shape(3, 8, 6, 7, 12, 3, 2, 2, 1, 1, 2, layout::nhwc),      // groups 2, stride 2 x 1, NHWC
      shape(1, 5, 23, 17, 6, 5, 4, 1, 3, 1, 1),                   // large pad
      shape(1, 3, 64, 64, 8, 3, 3, 2, 1, 1, 1),                   // 3 in-channels, 4096 positions: bwd-data GEMM with m = 3
  };
}

TEST(ConvExact, FastPathsEqualReferencePlainData) {
  std::uint64_t seed = 900;
  for (const conv2d_shape& s : exact_fast_shapes()) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    check_exact_fast_paths(s, seed += 10, exact_data::plain, exact_data::plain, true);
    check_exact_fast_paths(s, seed += 10, exact_data::plain, exact_data::plain, false);
  }
}

TEST(ConvExact, FastPathsEqualReferenceSpecialValues) {
  std::uint64_t seed = 1900;
  for (const conv2d_shape& s : exact_fast_shapes()) {
    if (xsize(s) > 10000) continue;  // the large shape runs plain data only (test time)
    SCOPED_TRACE("seed " + std::to_string(seed));
    check_exact_fast_paths(s, seed += 10, exact_data::specials, exact_data::plain, true);
    check_exact_fast_paths(s, seed += 10, exact_data::plain, exact_data::specials, true);
    check_exact_fast_paths(s, seed += 10, exact_data::wide, exact_data::plain, true);
    check_exact_fast_paths(s, seed += 10, exact_data::wide, exact_data::wide, false);
    check_exact_fast_paths(s, seed += 10, exact_data::medium, exact_data::medium, true);
    check_exact_fast_paths(s, seed += 10, exact_data::negative_zeros, exact_data::plain, true);
  }
}

// Exact sums that land just beside a float midpoint (1 + 2^-24 + 2^-55, 1 + 2^-24 - 2^-55 and
// the tie 1 + 2^-24 itself): one rounding must see the tiny term (rounding to double first
// would turn the first two into ties). A depthwise 1 x 3 filter on rows (1, 2^-24, +-2^-55):
// inside the depthwise planes' bound (a spread of 55 bits), so the double-register path runs.
TEST(ConvExact, DepthwiseNearMidpointsRoundOnce) {
  conv2d_shape s = shape(1, 3, 1, 3, 3, 1, 3, 1, 0, 1, 3);
  const float t = std::ldexp(1.0f, -55);
  const std::vector<float> x = {1.0f, std::ldexp(1.0f, -24), t, 1.0f, std::ldexp(1.0f, -24), -t,
                                1.0f, std::ldexp(1.0f, -24), 0.0f};
  const std::vector<float> w(9, 1.0f), dy = {1.0f, 1.0f, 1.0f};
  std::vector<float> y_ref(3), y(3);
  reference::conv2d_forward<float>(s, x.data(), w.data(), nullptr, y_ref.data(), true);
  EXPECT_EQ(y_ref[0], 1.0f + std::ldexp(1.0f, -23));
  EXPECT_EQ(y_ref[1], 1.0f);
  EXPECT_EQ(y_ref[2], 1.0f);
  for (isa i : usable_isas()) {
    conv2d_forward(s, x.data(), w.data(), nullptr, y.data(), tier::exact, {1, i});
    EXPECT_TRUE(same(y, y_ref)) << isa_name(i);
  }
}

// ---------------------------------------------------------------- special values

TEST(ConvSpecial, NanWeightAndInfMeetingPadding) {
  conv2d_shape s = shape(1, 1, 4, 4, 2, 3, 3, 1, 1, 1, 1);
  std::vector<float> x(16, 1.0f), w(18, 0.5f), y(2 * 16);
  w[4] = std::numeric_limits<float>::quiet_NaN();  // out-channel 0, centre tap
  w[9] = std::numeric_limits<float>::infinity();   // out-channel 1, top-left tap
  for (tier t : {tier::fixed_order, tier::exact}) {
    conv2d_forward(s, x.data(), w.data(), nullptr, y.data(), t);
    const std::uint32_t canon = 0x7fc00000u;
    for (int p = 0; p < 16; ++p) {
      std::uint32_t u;
      std::memcpy(&u, &y[p], 4);
      EXPECT_EQ(u, canon) << p;
    }
    // out-channel 1: the Inf tap meets padding in row 0 and column 0 (Inf * 0 = NaN), else Inf.
    for (int oh = 0; oh < 4; ++oh)
      for (int ow = 0; ow < 4; ++ow) {
        const float v = y[16 + oh * 4 + ow];
        if (oh == 0 || ow == 0) EXPECT_TRUE(std::isnan(v)) << oh << ow;
        else EXPECT_EQ(v, std::numeric_limits<float>::infinity()) << oh << ow;
      }
  }
}

/// The strided backward-data path leaves out the zero terms off the stride grid. It must still
/// give the reference's sign of zero and its Inf * 0 NaNs: dx[0] of a 1 x 2 kernel at stride 2
/// is fma(dy0, w0, +0) then the off-grid term fma(+0, w1, p). dy0 * w0 underflows to -0; the
/// reference then adds w1's zero product: +0 for w1 > 0, -0 for w1 < 0, NaN for w1 = Inf.
TEST(ConvSpecial, StridedBackwardDataZeroSignAndInf) {
  conv2d_shape s = shape(1, 1, 1, 4, 1, 1, 2, 1, 0, 1, 1);
  s.stride_w = 2;  // out_w = 2
  const std::vector<float> dy = {1e-30f, 0.25f};
  for (float w1 : {0.5f, -0.5f, std::numeric_limits<float>::infinity()}) {
    const std::vector<float> w = {-1e-30f, w1};
    std::vector<float> dx_ref(4);
    reference::conv2d_backward_data<float>(s, dy.data(), w.data(), dx_ref.data(), false);
    if (w1 == 0.5f) {
      ASSERT_FALSE(std::signbit(dx_ref[0]));
    } else if (w1 == -0.5f) {
      ASSERT_TRUE(std::signbit(dx_ref[0]));
    } else {
      ASSERT_TRUE(std::isnan(dx_ref[0]));
    }
    for (isa i : usable_isas()) {
      std::vector<float> dx(4, 7.0f);
      conv2d_backward_data(s, dy.data(), w.data(), dx.data(), tier::fixed_order, {1, i});
      EXPECT_TRUE(same(dx, dx_ref)) << isa_name(i) << " w1 " << w1;
    }
  }
}

/// Every NaN a convolution writes is the canonical quiet NaN 0x7fc00000, whichever path writes
/// it (the vector stores of whole rows, their scalar tails, packed small images, NHWC): inputs
/// carry NaNs with the sign bit and a payload, which x86 and ARM propagate through fma unless
/// the store canonicalises them.
TEST(ConvSpecial, NanOutputsAreCanonicalOnEveryPath) {
  const std::uint32_t odd_nan_bits = 0xffc01234u;  // negative quiet NaN with a payload
  float odd_nan;
  std::memcpy(&odd_nan, &odd_nan_bits, 4);
  auto all_canonical = [](const std::vector<float>& v) {
    for (float f : v) {
      std::uint32_t u;
      std::memcpy(&u, &f, 4);
      if (f != f && u != 0x7fc00000u) return false;
    }
    return true;
  };
  for (layout l : {layout::nchw, layout::nhwc})
    for (const conv2d_shape& base : {shape(2, 5, 9, 21, 6, 3, 3, 1, 1, 1, 1, l),    // rows of 21: vectors + tails
                                     shape(3, 4, 4, 5, 7, 1, 1, 1, 0, 1, 1, l),     // 1x1, small packed images
                                     shape(2, 6, 7, 37, 6, 3, 3, 1, 1, 1, 6, l)}) {  // depthwise
      conv2d_shape s = base;
      auto x = data<float>(xsize(s), 900), w = data<float>(wsize(s), 901), dy = data<float>(ysize(s), 902);
      const auto bias = data<float>(s.out_channels, 903);
      for (std::size_t q = 3; q < x.size(); q += 29) x[q] = odd_nan;
      for (std::size_t q = 5; q < dy.size(); q += 31) dy[q] = odd_nan;
      std::vector<float> y_ref(ysize(s)), yb_ref(ysize(s)), dx_ref(xsize(s)), dw_ref(wsize(s)), db_ref(s.out_channels);
      reference::conv2d_forward<float>(s, x.data(), w.data(), nullptr, y_ref.data(), false);
      reference::conv2d_forward<float>(s, x.data(), w.data(), bias.data(), yb_ref.data(), false);
      reference::conv2d_backward_data<float>(s, dy.data(), w.data(), dx_ref.data(), false);
      reference::conv2d_backward_weight<float>(s, x.data(), dy.data(), dw_ref.data(), db_ref.data(), false);
      ASSERT_TRUE(all_canonical(y_ref) && all_canonical(yb_ref) && all_canonical(dx_ref) && all_canonical(dw_ref));
      ASSERT_TRUE(std::any_of(y_ref.begin(), y_ref.end(), [](float f) { return f != f; }));
      ASSERT_TRUE(std::any_of(dx_ref.begin(), dx_ref.end(), [](float f) { return f != f; }));
      for (isa i : usable_isas())
        for (int th : {1, 3}) {
          SCOPED_TRACE(std::string("isa ") + isa_name(i) + " threads " + std::to_string(th) +
                       (l == layout::nchw ? " nchw" : " nhwc") + " groups " + std::to_string(s.groups));
          std::vector<float> y(ysize(s)), yb(ysize(s)), dx(xsize(s)), dw(wsize(s)), db(s.out_channels);
          conv2d_forward(s, x.data(), w.data(), nullptr, y.data(), tier::fixed_order, {th, i});
          conv2d_forward(s, x.data(), w.data(), bias.data(), yb.data(), tier::fixed_order, {th, i});
          conv2d_backward_data(s, dy.data(), w.data(), dx.data(), tier::fixed_order, {th, i});
          conv2d_backward_weight(s, x.data(), dy.data(), dw.data(), db.data(), tier::fixed_order, {th, i});
          EXPECT_TRUE(same(y, y_ref)) << "forward";
          EXPECT_TRUE(same(yb, yb_ref)) << "forward with bias";
          EXPECT_TRUE(same(dx, dx_ref)) << "backward-data";
          EXPECT_TRUE(same(dw, dw_ref)) << "backward-weight";
          EXPECT_TRUE(same(db, db_ref)) << "dbias";
        }
    }
}

// ---------------------------------------------------------------- golden hashes

TEST(ConvGolden, HashesUnderOrderVersion) {
  ASSERT_EQ(conv_order_version, 1) << "order version changed: update the golden hashes and CHANGELOG";
  ASSERT_EQ(gemm_order_version, 1);
  std::uint64_t h = 1469598103934665603ull;
  for (layout l : {layout::nchw, layout::nhwc}) {
    conv2d_shape s = shape(2, 36, 9, 8, 6, 3, 3, 2, 1, 2, 2, l);  // K = 162, K' = 40
    const auto x = data<float>(xsize(s), 1), w = data<float>(wsize(s), 2), dy = data<float>(ysize(s), 3);
    const auto b = data<float>(6, 4);
    std::vector<float> y(ysize(s)), dx(xsize(s)), dw(wsize(s)), db(6);
    conv2d_forward(s, x.data(), w.data(), b.data(), y.data());
    conv2d_backward_data(s, dy.data(), w.data(), dx.data());
    conv2d_backward_weight(s, x.data(), dy.data(), dw.data(), db.data());
    h = fnv(y.data(), y.size() * 4, h);
    h = fnv(dx.data(), dx.size() * 4, h);
    h = fnv(dw.data(), dw.size() * 4, h);
    h = fnv(db.data(), db.size() * 4, h);
    conv2d_forward(s, x.data(), w.data(), b.data(), y.data(), tier::exact);
    h = fnv(y.data(), y.size() * 4, h);
  }
  EXPECT_EQ(h, 0x12c45d2d4ff6af7bull) << std::hex << h;
}

// ---------------------------------------------------------------- bad input

TEST(ConvBadInput, RejectedWithOutputsUntouched) {
  const conv2d_shape good = shape(1, 4, 6, 6, 4, 3, 3, 1, 1, 1, 2);
  std::vector<float> x(xsize(good), 1.0f), w(wsize(good), 1.0f), y(ysize(good) + 64, 7.0f);
  std::vector<float> dw(wsize(good) + 8, 7.0f), db(4, 7.0f);
  auto untouched = [&] {
    return std::all_of(y.begin(), y.end(), [](float v) { return v == 7.0f; }) &&
           std::all_of(dw.begin(), dw.end(), [](float v) { return v == 7.0f; }) &&
           std::all_of(db.begin(), db.end(), [](float v) { return v == 7.0f; });
  };
  std::vector<conv2d_shape> bad;
  for (int k = 0; k < 12; ++k) bad.push_back(good);
  bad[0].stride_h = 0;
  bad[1].stride_w = 0;
  bad[2].dilation_h = 0;
  bad[3].dilation_w = 0;
  bad[4].groups = 3;  // 4 channels
  bad[5].kernel_h = 9;  // 6 + 2 < 9
  bad[6].groups = 0;
  bad[7].out_channels = 6, bad[7].groups = 4;
  // Shapes whose extents do not fit in size_t (they wrapped before, found by fuzz_conv's review):
  bad[8].batch = std::size_t(1) << 62;                          // batch * C * H * W
  bad[9].pad_h = std::numeric_limits<std::size_t>::max() / 2;  // in_h + 2 * pad_h
  bad[10].dilation_w = std::numeric_limits<std::size_t>::max() / 2, bad[10].pad_w = 1;  // dilation * (kernel - 1)
  bad[11].out_channels = std::size_t(1) << 40, bad[11].in_channels = std::size_t(1) << 40,
  bad[11].groups = 1;                                            // weights: out * in * kh * kw
  for (const auto& s : bad) {
    for (tier t : {tier::fixed_order, tier::exact}) {
      EXPECT_THROW(conv2d_forward(s, x.data(), w.data(), nullptr, y.data(), t), std::invalid_argument);
      EXPECT_THROW(conv2d_backward_data(s, y.data(), w.data(), x.data(), t), std::invalid_argument);
      EXPECT_THROW(conv2d_backward_weight(s, x.data(), y.data(), dw.data(), db.data(), t), std::invalid_argument);
    }
  }
  EXPECT_TRUE(untouched());
  const conv2d_shape& s = good;
  EXPECT_THROW(conv2d_forward<float>(s, nullptr, w.data(), nullptr, y.data()), std::invalid_argument);
  EXPECT_THROW(conv2d_forward<float>(s, x.data(), nullptr, nullptr, y.data()), std::invalid_argument);
  EXPECT_THROW(conv2d_forward<float>(s, x.data(), w.data(), nullptr, nullptr), std::invalid_argument);
  EXPECT_THROW(conv2d_backward_data<float>(s, nullptr, w.data(), y.data()), std::invalid_argument);
  EXPECT_THROW(conv2d_backward_weight<float>(s, x.data(), nullptr, dw.data(), db.data()), std::invalid_argument);
  EXPECT_THROW(conv2d_backward_weight<float>(s, x.data(), y.data(), nullptr, db.data()), std::invalid_argument);
  EXPECT_TRUE(untouched());
  // overlaps: y over x, y over w, y over bias, dx over dy, dw over dy, dbias over dw
  {
    std::vector<float> buf(xsize(s) + ysize(s), 1.0f);
    const auto before = buf;
    EXPECT_THROW(conv2d_forward(s, buf.data(), w.data(), nullptr, buf.data() + 10), std::invalid_argument);
    EXPECT_THROW(conv2d_forward(s, x.data(), buf.data(), nullptr, buf.data() + 10), std::invalid_argument);
    EXPECT_THROW(conv2d_forward(s, x.data(), w.data(), buf.data() + 3, buf.data()), std::invalid_argument);
    EXPECT_THROW(conv2d_backward_data(s, buf.data(), w.data(), buf.data() + 5), std::invalid_argument);
    EXPECT_THROW(conv2d_backward_weight(s, x.data(), buf.data(), buf.data() + 7, db.data()), std::invalid_argument);
    EXPECT_THROW(conv2d_backward_weight(s, x.data(), y.data(), dw.data(), dw.data() + 2), std::invalid_argument);
    EXPECT_TRUE(same(buf, before));
  }
  EXPECT_TRUE(untouched());
  // a zero-size batch is a no-op, not an error
  conv2d_shape empty = good;
  empty.batch = 0;
  EXPECT_NO_THROW(conv2d_forward<float>(empty, nullptr, w.data(), nullptr, nullptr));
}

TEST(ConvBadInput, FlushToZeroIsAnError) {
#if defined(__SSE2__)
  const conv2d_shape s = shape(1, 2, 4, 4, 2, 3, 3, 1, 1, 1, 1);
  std::vector<float> x(xsize(s), 1.0f), w(wsize(s), 1.0f), y(ysize(s), 7.0f), dw(wsize(s));
  const unsigned csr = _mm_getcsr();
  _mm_setcsr(csr | 0x8040u);
  bool threw_f = false, threw_d = false, threw_w = false;
  try { conv2d_forward(s, x.data(), w.data(), nullptr, y.data()); } catch (const fp_environment_error&) { threw_f = true; }
  try { conv2d_backward_data(s, y.data(), w.data(), x.data()); } catch (const fp_environment_error&) { threw_d = true; }
  try { conv2d_backward_weight(s, x.data(), y.data(), dw.data(), nullptr); } catch (const fp_environment_error&) { threw_w = true; }
  _mm_setcsr(csr);
  EXPECT_TRUE(threw_f && threw_d && threw_w);
  EXPECT_TRUE(std::all_of(y.begin(), y.end(), [](float v) { return v == 7.0f; }));
#else
  GTEST_SKIP();
#endif
}

// ---------------------------------------------------------------- pooling

pool2d_shape pshape(std::size_t n, std::size_t c, std::size_t h, std::size_t w, std::size_t k, std::size_t s,
                    std::size_t p, bool ceil_mode, bool include_pad, layout l) {
  pool2d_shape q;
  q.batch = n, q.channels = c, q.in_h = h, q.in_w = w;
  q.kernel_h = k, q.kernel_w = k == 1 ? 1 : k - 1, q.stride_h = s, q.stride_w = s == 1 ? 2 : s;
  q.pad_h = p, q.pad_w = p > 0 ? p - 1 : 0;
  q.ceil_mode = ceil_mode, q.count_include_pad = include_pad, q.data = l;
  return q;
}

template <class T>
void check_pool(const pool2d_shape& s, std::uint64_t seed, bool with_ties) {
  const std::size_t nx = s.batch * s.channels * s.in_h * s.in_w, ny = s.batch * s.channels * s.out_h() * s.out_w();
  auto x = data<T>(nx, seed);
  if (with_ties)  // few distinct values: ties in every window
    for (auto& v : x) v = static_cast<T>(std::floor(static_cast<double>(v)));
  const auto dy = data<T>(ny, seed + 1);
  std::vector<T> y_ref(ny), dx_ref(nx), ya_ref(ny), dxa_ref(nx);
  std::vector<std::int64_t> i_ref(ny);
  const std::size_t OH = s.out_h(), OW = s.out_w();
  reference::max_pool2d_forward(s.batch, s.channels, s.in_h, s.in_w, OH, OW, s.kernel_h, s.kernel_w, s.stride_h,
                                s.stride_w, s.pad_h, s.pad_w, s.data, x.data(), y_ref.data(), i_ref.data());
  reference::max_pool2d_backward(s.batch, s.channels, s.in_h, s.in_w, OH, OW, s.data, dy.data(), i_ref.data(),
                                 dx_ref.data());
  reference::avg_pool2d_forward(s.batch, s.channels, s.in_h, s.in_w, OH, OW, s.kernel_h, s.kernel_w, s.stride_h,
                                s.stride_w, s.pad_h, s.pad_w, s.count_include_pad, false, s.data, x.data(), ya_ref.data());
  reference::avg_pool2d_backward(s.batch, s.channels, s.in_h, s.in_w, OH, OW, s.kernel_h, s.kernel_w, s.stride_h,
                                 s.stride_w, s.pad_h, s.pad_w, s.count_include_pad, false, s.data, dy.data(),
                                 dxa_ref.data());
  for (int th : kThreads) {
    SCOPED_TRACE("threads " + std::to_string(th));
    const execution ex{th, isa::automatic};
    std::vector<T> y(ny), dx(nx), ya(ny), dxa(nx);
    std::vector<std::int64_t> idx(ny);
    max_pool2d_forward(s, x.data(), y.data(), idx.data(), ex);
    EXPECT_TRUE(same(y, y_ref));
    EXPECT_TRUE(same(idx, i_ref));
    max_pool2d_backward(s, dy.data(), idx.data(), dx.data(), ex);
    EXPECT_TRUE(same(dx, dx_ref));
    avg_pool2d_forward(s, x.data(), ya.data(), ex);
    EXPECT_TRUE(same(ya, ya_ref));
    avg_pool2d_backward(s, dy.data(), dxa.data(), ex);
    EXPECT_TRUE(same(dxa, dxa_ref));
  }
}

TEST(Pool, MaxAndAvgEqualReference) {
  std::uint64_t seed = 900;
  for (layout l : {layout::nchw, layout::nhwc})
    for (bool ceil_mode : {false, true})
      for (bool include_pad : {false, true}) {
        check_pool<float>(pshape(3, 5, 11, 10, 3, 2, 1, ceil_mode, include_pad, l), seed++, false);
        check_pool<float>(pshape(2, 3, 9, 13, 4, 3, 2, ceil_mode, include_pad, l), seed++, true);
        check_pool<double>(pshape(2, 4, 7, 8, 2, 1, 1, ceil_mode, include_pad, l), seed++, false);
        check_pool<float>(pshape(1, 9, 6, 6, 3, 3, 0, ceil_mode, include_pad, l), seed++, true);
      }
}

TEST(Pool, AdaptiveEqualsReference) {
  std::uint64_t seed = 950;
  for (layout l : {layout::nchw, layout::nhwc})
    for (auto oo : {std::pair<std::size_t, std::size_t>{1, 1}, {3, 4}, {7, 7}, {10, 5}}) {
      adaptive_pool2d_shape s;
      s.batch = 2, s.channels = 5, s.in_h = 10, s.in_w = 13, s.out_h = oo.first, s.out_w = oo.second, s.data = l;
      const std::size_t nx = 2 * 5 * 10 * 13, ny = 2 * 5 * oo.first * oo.second;
      const auto x = data<float>(nx, seed++), dy = data<float>(ny, seed++);
      std::vector<float> y_ref(ny), dx_ref(nx);
      reference::avg_pool2d_forward(2, 5, 10, 13, oo.first, oo.second, 0, 0, 0, 0, 0, 0, false, true, l, x.data(), y_ref.data());
      reference::avg_pool2d_backward(2, 5, 10, 13, oo.first, oo.second, 0, 0, 0, 0, 0, 0, false, true, l, dy.data(), dx_ref.data());
      for (int th : kThreads) {
        std::vector<float> y(ny), dx(nx);
        adaptive_avg_pool2d_forward(s, x.data(), y.data(), {th, isa::automatic});
        adaptive_avg_pool2d_backward(s, dy.data(), dx.data(), {th, isa::automatic});
        EXPECT_TRUE(same(y, y_ref)) << th;
        EXPECT_TRUE(same(dx, dx_ref)) << th;
      }
    }
}

TEST(Pool, TiesNanAndCeilMode) {
  pool2d_shape s = pshape(1, 1, 4, 4, 2, 2, 0, false, true, layout::nchw);
  s.kernel_w = 2, s.stride_w = 2, s.pad_w = 0;
  std::vector<float> x = {1, 1, 0, 0,  //
                          1, 1, 0, -0.0f,  //
                          5, 2, 3, 3,  //
                          std::nanf(""), 5, 3, std::numeric_limits<float>::quiet_NaN()};
  std::vector<float> y(4);
  std::vector<std::int64_t> idx(4);
  max_pool2d_forward(s, x.data(), y.data(), idx.data());
  EXPECT_EQ(idx[0], 0);  // four equal values: the first in window order
  EXPECT_EQ(idx[1], 2);  // +0 and -0 tie: the first
  EXPECT_TRUE(std::isnan(y[2]));
  EXPECT_EQ(idx[2], 12);  // NaN propagates, its index is the NaN's
  EXPECT_EQ(idx[3], 15);  // 3, 3, 3 then NaN at 15: the NaN wins, with its index
  EXPECT_TRUE(std::isnan(y[3]));
  std::uint32_t u;
  std::memcpy(&u, &y[2], 4);
  EXPECT_EQ(u, 0x7fc00000u);
  // ceil_mode: 5 -> windows of 2 stride 2: floor 2, ceil 3 (the last window holds one tap)
  pool2d_shape c = s;
  c.in_h = 5, c.in_w = 5;
  EXPECT_EQ(c.out_h(), 2u);
  c.ceil_mode = true;
  EXPECT_EQ(c.out_h(), 3u);
  c.pad_h = 1, c.in_h = 4;  // (4 + 2 - 2) / 2 = 2, ceil 2 + 1 = 3 -> kept: 2 * 2 = 4 < 4 + 1
  EXPECT_EQ(c.out_h(), 3u);
}

// ---- max_pool2d forward across output lanes (cpu/pool_kernels.hpp max_pool_forward_lanes):
// every ISA of this CPU, threads that really split (grain lowered to one lane block), odd
// sizes, padding, ceil_mode, both layouts, and values full of ties, -0/+0, -inf, +inf and NaNs
// (payloads and signs) at every position of the window; plus a plane too large for the lane map
// (the row path). Equal to reference/pool.hpp, values and indices, bit for bit.
template <class T>
std::vector<T> pool_special_data(std::size_t n, std::uint64_t seed) {
  const T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
  const T menu[] = {T(0), -T(0), T(1), T(-1), T(2), -inf, inf, nan, -nan, T(0.5)};
  std::vector<T> x(n);
  splitmix gen{seed};
  for (auto& v : x) {
    const std::uint64_t r = gen();
    const unsigned k = static_cast<unsigned>(r % 40);
    v = k < 10 ? menu[k] : static_cast<T>(static_cast<double>((r >> 20) % 7) - 3.0);
    if (k == 7 && (r >> 40) % 2) {  // another NaN payload
      typename std::conditional<sizeof(T) == 4, std::uint32_t, std::uint64_t>::type b;
      std::memcpy(&b, &v, sizeof b);
      b |= 5;
      std::memcpy(&v, &b, sizeof b);
    }
  }
  return x;
}

template <class T>
void check_max_pool_lanes(const pool2d_shape& s, std::uint64_t seed) {
  const std::size_t nx = s.batch * s.channels * s.in_h * s.in_w, OH = s.out_h(), OW = s.out_w();
  const std::size_t ny = s.batch * s.channels * OH * OW;
  const auto x = pool_special_data<T>(nx, seed);
  std::vector<T> y_ref(ny);
  std::vector<std::int64_t> i_ref(ny);
  reference::max_pool2d_forward(s.batch, s.channels, s.in_h, s.in_w, OH, OW, s.kernel_h, s.kernel_w, s.stride_h,
                                s.stride_w, s.pad_h, s.pad_w, s.data, x.data(), y_ref.data(), i_ref.data());
  for (isa i : usable_isas())
    for (int th : kThreads) {
      SCOPED_TRACE(std::string("isa ") + isa_name(i) + " threads " + std::to_string(th));
      std::vector<T> y(ny, T(7));
      std::vector<std::int64_t> idx(ny, -5);
      max_pool2d_forward(s, x.data(), y.data(), idx.data(), execution{th, i});
      ASSERT_TRUE(same(y, y_ref));
      ASSERT_TRUE(same(idx, i_ref));
      std::vector<T> y2(ny, T(7));  // without indices
      max_pool2d_forward(s, x.data(), y2.data(), static_cast<std::int64_t*>(nullptr), execution{th, i});
      ASSERT_TRUE(same(y2, y_ref));
    }
}

TEST(Pool, MaxLanesEveryIsaSplitSpecialValues) {
  bitexact_test::split_check probe("max_pool2d lanes");
  std::uint64_t seed = 1200;
  for (layout l : {layout::nchw, layout::nhwc})
    for (bool ceil_mode : {false, true}) {
      check_max_pool_lanes<float>(pshape(3, 5, 11, 10, 3, 2, 1, ceil_mode, true, l), seed++);
      check_max_pool_lanes<float>(pshape(2, 3, 9, 13, 4, 3, 2, ceil_mode, true, l), seed++);
      check_max_pool_lanes<double>(pshape(2, 4, 7, 8, 2, 1, 1, ceil_mode, true, l), seed++);
      check_max_pool_lanes<float>(pshape(32, 16, 8, 8, 2, 2, 0, ceil_mode, true, l), seed++);  // the digits CNN's
      check_max_pool_lanes<double>(pshape(1, 3, 5, 5, 5, 1, 2, ceil_mode, true, l), seed++);  // 5x4 windows, 1 plane row
      check_max_pool_lanes<float>(pshape(1, 1, 1, 3, 1, 1, 0, ceil_mode, true, l), seed++);   // fewer outputs than lanes
    }
  // a plane too large for the lane map: the row path (every ISA gives its bits too)
  check_max_pool_lanes<float>(pshape(1, 2, 300, 301, 3, 2, 1, true, true, layout::nchw), seed++);
}

/// 2 x 2 windows at stride 2, no padding (cpu max_pool_forward_2x2 for NCHW with every window
/// inside): special values (NaN payloads, +-0 ties, +-inf), even and odd sizes (odd: floor mode
/// drops the last row and column; ceil mode clips windows and takes the lane path), planes
/// split among threads, every ISA, against the reference.
TEST(Pool, Max2x2Stride2SpecialValues) {
  bitexact_test::split_check probe("max_pool2d 2x2");
  std::uint64_t seed = 1300;
  for (layout l : {layout::nchw, layout::nhwc})
    for (bool ceil_mode : {false, true})
      for (std::size_t hw : {8, 9, 2, 31}) {
        pool2d_shape s = pshape(33, 16, hw, hw + 1, 2, 2, 0, ceil_mode, true, l);
        s.kernel_w = 2;
        check_max_pool_lanes<float>(s, seed++);
        s.batch = 5;
        check_max_pool_lanes<double>(s, seed++);
      }
}

/// max_pool2d_backward writes every NaN as the canonical quiet NaN, whichever contribution
/// carries it: dy holds NaNs with the sign bit and a payload; 3 x 3 windows at stride 2 give
/// input elements one, two and four contributions (NaN first, last or in between), both layouts,
/// 1 and 3 threads; the result equals the reference bit for bit.
TEST(Pool, MaxBackwardNanIsCanonical) {
  const std::uint32_t odd_nan_bits = 0xffc01234u;  // negative quiet NaN with a payload
  float odd_nan;
  std::memcpy(&odd_nan, &odd_nan_bits, 4);
  for (layout l : {layout::nchw, layout::nhwc}) {
    const pool2d_shape s = pshape(2, 3, 9, 11, 3, 2, 1, false, false, l);
    const std::size_t nx = 2 * 3 * 9 * 11, ny = 2 * 3 * s.out_h() * s.out_w();
    const auto x = data<float>(nx, 17);
    auto dy = data<float>(ny, 18);
    for (std::size_t o = 0; o < ny; o += 7) dy[o] = odd_nan;
    std::vector<float> y(ny), dx_ref(nx);
    std::vector<std::int64_t> idx(ny);
    max_pool2d_forward(s, x.data(), y.data(), idx.data());
    reference::max_pool2d_backward(s.batch, s.channels, s.in_h, s.in_w, s.out_h(), s.out_w(), l, dy.data(), idx.data(),
                                   dx_ref.data());
    std::size_t nans = 0;
    for (float v : dx_ref) nans += v != v;
    EXPECT_GT(nans, 10u);
    for (int th : {1, 3}) {
      std::vector<float> dx(nx, 7.0f);
      max_pool2d_backward(s, dy.data(), idx.data(), dx.data(), execution{th, isa::automatic});
      EXPECT_TRUE(same(dx, dx_ref)) << "threads " << th;
      for (float v : dx) {
        std::uint32_t u;
        std::memcpy(&u, &v, 4);
        EXPECT_TRUE(v == v || u == 0x7fc00000u);
      }
    }
  }
}

TEST(Pool, BadInputRejectedWithOutputsUntouched) {
  const pool2d_shape good = pshape(1, 2, 6, 6, 3, 2, 1, false, true, layout::nchw);
  std::vector<float> x(72, 1.0f), y(200, 7.0f), dx(200, 7.0f);
  std::vector<std::int64_t> idx(200, 0);
  std::vector<pool2d_shape> bad(5, good);
  bad[0].kernel_h = 0;
  bad[1].stride_w = 0;
  bad[2].pad_h = 2;  // > 3 / 2
  bad[3].kernel_w = 9, bad[3].pad_w = 1;  // 6 + 2 < 9
  bad[4].stride_h = 0;
  for (const auto& s : bad) {
    EXPECT_THROW(max_pool2d_forward(s, x.data(), y.data(), idx.data()), std::invalid_argument);
    EXPECT_THROW(avg_pool2d_forward(s, x.data(), y.data()), std::invalid_argument);
    EXPECT_THROW(avg_pool2d_backward(s, x.data(), dx.data()), std::invalid_argument);
    EXPECT_THROW(max_pool2d_backward(s, x.data(), idx.data(), dx.data()), std::invalid_argument);
  }
  EXPECT_THROW(max_pool2d_forward<float>(good, nullptr, y.data(), nullptr), std::invalid_argument);
  EXPECT_THROW(avg_pool2d_forward(good, x.data(), x.data() + 1), std::invalid_argument);
  std::vector<std::int64_t> bad_idx(200, 36);  // one past the 6 x 6 plane
  EXPECT_THROW(max_pool2d_backward(good, x.data(), bad_idx.data(), dx.data()), std::invalid_argument);
  adaptive_pool2d_shape a;
  a.batch = 1, a.channels = 2, a.in_h = 6, a.in_w = 6, a.out_h = 0, a.out_w = 3;
  EXPECT_THROW(adaptive_avg_pool2d_forward(a, x.data(), y.data()), std::invalid_argument);
  EXPECT_TRUE(std::all_of(y.begin(), y.end(), [](float v) { return v == 7.0f; }));
  EXPECT_TRUE(std::all_of(dx.begin(), dx.end(), [](float v) { return v == 7.0f; }));
}

TEST(Pool, GoldenHashes) {
  std::uint64_t h = 1469598103934665603ull;
  for (layout l : {layout::nchw, layout::nhwc}) {
    const pool2d_shape s = pshape(2, 3, 9, 11, 3, 2, 1, true, false, l);
    const std::size_t nx = 2 * 3 * 9 * 11, ny = 2 * 3 * s.out_h() * s.out_w();
    const auto x = data<float>(nx, 5), dy = data<float>(ny, 6);
    std::vector<float> y(ny), dx(nx);
    std::vector<std::int64_t> idx(ny);
    max_pool2d_forward(s, x.data(), y.data(), idx.data());
    max_pool2d_backward(s, dy.data(), idx.data(), dx.data());
    h = fnv(y.data(), ny * 4, h);
    h = fnv(idx.data(), ny * 8, h);
    h = fnv(dx.data(), nx * 4, h);
    avg_pool2d_forward(s, x.data(), y.data());
    avg_pool2d_backward(s, dy.data(), dx.data());
    h = fnv(y.data(), ny * 4, h);
    h = fnv(dx.data(), nx * 4, h);
  }
  EXPECT_EQ(h, 0x8382ee1e20530210ull) << std::hex << h;
}

}  // namespace

// ---------------------------------------------------------------- known-answer file (order version 1)

#include "golden_file.hpp"

namespace {

// Every public op of conv.hpp and pool.hpp, both tiers (conv), float, double and the bfloat16
// variants, both layouts, three shapes (K = 288 crosses a 256-wide chunk; grouped; depthwise
// with K' = 324), with and without bias / dbias. Pinned from the reference in
// tests/data/conv_golden_v1.txt; every fast path (default, each ISA x threads {1,2,3}, grain
// lowered) must give the same bits.
template <class A, class X>
void conv_golden_rows(bitexact_test::golden_table& table, const char* tname, std::uint32_t tag) {
  auto fast_equal = [&](const std::string& name, const auto& want, auto&& run) {
    const bool exact = name.find(".exact") != std::string::npos;
    bitexact_test::for_each_fast_path([&](const execution& e, const std::string& label) {
      // The exact tier: its thread counts once, not per ISA (each ISA is checked against the
      // reference by ConvExact.FastPaths*; the golden rows keep their layout).
      if (exact && e.simd != isa::automatic && e.simd != usable_isas().front()) return;
      auto got = want;
      std::fill(got.begin(), got.end(), decltype(got[0] + 0)(7));
      run(e, got);
      EXPECT_TRUE(same(got, want)) << name << " " << label;
    });
  };
  int shape_no = 0;
  for (layout l : {layout::nchw, layout::nhwc})
    for (const conv2d_shape& s : {shape(1, 32, 9, 8, 6, 3, 3, 2, 1, 2, 1, l), shape(2, 12, 9, 8, 6, 3, 3, 1, 1, 1, 2, l),
                                  shape(4, 8, 9, 9, 8, 3, 3, 1, 1, 1, 8, l)}) {
      const std::string at = std::string(".") + tname + (l == layout::nchw ? ".nchw" : ".nhwc") + ".s" + std::to_string(shape_no++ % 3);
      const auto x = bitexact_test::golden_data<X>(xsize(s), tag + 1), w = bitexact_test::golden_data<X>(wsize(s), tag + 2);
      const auto dy = bitexact_test::golden_data<A>(ysize(s), tag + 3), bias = bitexact_test::golden_data<A>(s.out_channels, tag + 4);
      for (tier t : {tier::fixed_order, tier::exact}) {
        const bool ex = t == tier::exact;
        const std::string tn = at + (ex ? ".exact" : ".fixed_order");
        for (bool with_bias : {false, true}) {
          std::vector<A> y(ysize(s));
          reference::conv2d_forward<A, X, X>(s, x.data(), w.data(), with_bias ? bias.data() : nullptr, y.data(), ex);
          const std::string name = std::string("forward") + (with_bias ? ".bias" : "") + tn;
          table.add(name, y);
          fast_equal(name, y, [&](const execution& e, std::vector<A>& out) {
            conv2d_forward(s, x.data(), w.data(), with_bias ? bias.data() : nullptr, out.data(), t, e);
          });
        }
        std::vector<A> dx(xsize(s));
        reference::conv2d_backward_data<A, X>(s, dy.data(), w.data(), dx.data(), ex);
        table.add("backward_data" + tn, dx);
        fast_equal("backward_data" + tn, dx,
                   [&](const execution& e, std::vector<A>& out) { conv2d_backward_data(s, dy.data(), w.data(), out.data(), t, e); });
        for (bool with_bias : {false, true}) {
          std::vector<A> dw(wsize(s)), db(s.out_channels);
          reference::conv2d_backward_weight<A, X>(s, x.data(), dy.data(), dw.data(), with_bias ? db.data() : nullptr, ex);
          const std::string name = std::string("backward_weight") + (with_bias ? ".dbias" : "") + tn;
          table.add(name, dw);
          if (with_bias) table.add(name + ".db", db);
          fast_equal(name, dw, [&](const execution& e, std::vector<A>& out) {
            std::vector<A> db2(s.out_channels, A(7));
            conv2d_backward_weight(s, x.data(), dy.data(), out.data(), with_bias ? db2.data() : nullptr, t, e);
            if (with_bias) {
              EXPECT_TRUE(same(db2, db)) << name << " dbias";
            }
          });
        }
      }
    }
}

template <class T>
void pool_golden_rows(bitexact_test::golden_table& table, const char* tname, std::uint32_t tag) {
  for (layout l : {layout::nchw, layout::nhwc})
    for (bool ceil_mode : {false, true})
      for (bool include_pad : {false, true}) {
        const pool2d_shape s = pshape(2, 5, 11, 10, 3, 2, 1, ceil_mode, include_pad, l);
        const std::size_t OH = s.out_h(), OW = s.out_w(), nx = 2 * 5 * 11 * 10, ny = 2 * 5 * OH * OW;
        const std::string at = std::string(".") + tname + (l == layout::nchw ? ".nchw" : ".nhwc") + (ceil_mode ? ".ceil" : "") +
                               (include_pad ? ".include_pad" : "");
        auto x = bitexact_test::golden_data<T>(nx, tag + 1, 2.0);
        for (std::size_t i = 0; i < nx; i += 3) x[i] = static_cast<T>(std::floor(static_cast<double>(x[i])));  // ties
        const auto dy = bitexact_test::golden_data<T>(ny, tag + 2);
        std::vector<T> y(ny), dx(nx), ya(ny), dxa(nx);
        std::vector<std::int64_t> idx(ny);
        reference::max_pool2d_forward(2, 5, 11, 10, OH, OW, s.kernel_h, s.kernel_w, s.stride_h, s.stride_w, s.pad_h, s.pad_w,
                                      l, x.data(), y.data(), idx.data());
        reference::max_pool2d_backward(2, 5, 11, 10, OH, OW, l, dy.data(), idx.data(), dx.data());
        reference::avg_pool2d_forward(2, 5, 11, 10, OH, OW, s.kernel_h, s.kernel_w, s.stride_h, s.stride_w, s.pad_h, s.pad_w,
                                      include_pad, false, l, x.data(), ya.data());
        reference::avg_pool2d_backward(2, 5, 11, 10, OH, OW, s.kernel_h, s.kernel_w, s.stride_h, s.stride_w, s.pad_h, s.pad_w,
                                       include_pad, false, l, dy.data(), dxa.data());
        if (!include_pad) {  // max pooling does not read count_include_pad
          table.add("max_pool2d_forward" + at, y);
          table.add("max_pool2d_forward.indices" + at, idx);
          table.add("max_pool2d_backward" + at, dx);
        }
        table.add("avg_pool2d_forward" + at, ya);
        table.add("avg_pool2d_backward" + at, dxa);
        bitexact_test::for_each_fast_path([&](const execution& e, const std::string& label) {
          std::vector<T> y2(ny, T(7)), dx2(nx, T(7)), ya2(ny, T(7)), dxa2(nx, T(7));
          std::vector<std::int64_t> idx2(ny, -1);
          max_pool2d_forward(s, x.data(), y2.data(), idx2.data(), e);
          max_pool2d_backward(s, dy.data(), idx.data(), dx2.data(), e);
          avg_pool2d_forward(s, x.data(), ya2.data(), e);
          avg_pool2d_backward(s, dy.data(), dxa2.data(), e);
          EXPECT_TRUE(same(y2, y) && same(idx2, idx) && same(dx2, dx) && same(ya2, ya) && same(dxa2, dxa)) << at << " " << label;
        });
      }
  for (layout l : {layout::nchw, layout::nhwc}) {
    adaptive_pool2d_shape s;
    s.batch = 2, s.channels = 5, s.in_h = 10, s.in_w = 13, s.out_h = 3, s.out_w = 4, s.data = l;
    const std::size_t nx = 2 * 5 * 10 * 13, ny = 2 * 5 * 3 * 4;
    const std::string at = std::string(".") + tname + (l == layout::nchw ? ".nchw" : ".nhwc");
    const auto x = bitexact_test::golden_data<T>(nx, tag + 3), dy = bitexact_test::golden_data<T>(ny, tag + 4);
    std::vector<T> y(ny), dx(nx);
    reference::avg_pool2d_forward(2, 5, 10, 13, 3, 4, 0, 0, 0, 0, 0, 0, false, true, l, x.data(), y.data());
    reference::avg_pool2d_backward(2, 5, 10, 13, 3, 4, 0, 0, 0, 0, 0, 0, false, true, l, dy.data(), dx.data());
    table.add("adaptive_avg_pool2d_forward" + at, y);
    table.add("adaptive_avg_pool2d_backward" + at, dx);
    bitexact_test::for_each_fast_path([&](const execution& e, const std::string& label) {
      std::vector<T> y2(ny, T(7)), dx2(nx, T(7));
      adaptive_avg_pool2d_forward(s, x.data(), y2.data(), e);
      adaptive_avg_pool2d_backward(s, dy.data(), dx2.data(), e);
      EXPECT_TRUE(same(y2, y) && same(dx2, dx)) << "adaptive" << at << " " << label;
    });
  }
}

TEST(ConvGolden, EveryOpKnownAnswerFile) {
  static_assert(conv_order_version == 1, "order version changed: write conv_golden_v2.txt and update CHANGELOG");
  static_assert(gemm_order_version == 1, "the conv K reduction is gemm_order_version's");
  bitexact_test::golden_table table;
  conv_golden_rows<float, float>(table, "f32", 100);
  conv_golden_rows<double, double>(table, "f64", 200);
  conv_golden_rows<float, bfloat16>(table, "bf16", 300);
  pool_golden_rows<float>(table, "f32", 400);
  pool_golden_rows<double>(table, "f64", 500);
  table.check("conv_golden_v1.txt");
}

// fuzz_conv found it (UBSan: "applying non-zero offset to null pointer", cpu/conv_kernels.hpp,
// depthwise backward-weight): with in_h == 0 (a valid shape: the padding alone holds the
// kernel, every tap is padding) x may be null, and the kernel formed x + offset for padding
// taps too. Fails under -fsanitize=undefined (the fuzz build; seen with the scalar ISA) before
// the fix; the values are the reference's (zeros) in every build.
// Backward-weight of an empty batch is the empty sum: dw = +0 (and dbias), even right after a
// call that left other values in the thread's scratch buffers (found by fuzz_conv).
TEST(ConvEdges, EmptyBatchBackwardWeightIsZeroAfterOtherCalls) {
  // Grouped; 33 out-channels (whole dbias vectors: with dy null, no offset may be formed - UBSan
  // in CI's sanitizer run, found by fuzz_conv); depthwise.
  for (isa i : usable_isas())
    for (layout l : {layout::nchw, layout::nhwc})
      for (const conv2d_shape& base : {shape(2, 6, 5, 4, 6, 3, 2, 2, 3, 1, 3, l), shape(2, 5, 5, 4, 33, 3, 3, 1, 1, 1, 1, l),
                                       shape(2, 40, 5, 4, 40, 3, 3, 1, 1, 1, 40, l)}) {
      conv2d_shape s = base;
      std::vector<float> x(xsize(s)), dy(ysize(s)), dw(wsize(s)), db(s.out_channels);
      for (std::size_t q = 0; q < x.size(); ++q) x[q] = 1.0f + float(q % 7);
      for (std::size_t q = 0; q < dy.size(); ++q) dy[q] = 2.0f - float(q % 5);
      conv2d_backward_weight(s, x.data(), dy.data(), dw.data(), db.data(), tier::fixed_order, {1, i});
      s.batch = 0;
      std::fill(dw.begin(), dw.end(), 7.0f);
      std::fill(db.begin(), db.end(), 7.0f);
      conv2d_backward_weight<float>(s, nullptr, nullptr, dw.data(), db.data(), tier::fixed_order, {1, i});
      for (float v : dw) ASSERT_TRUE(v == 0.0f && !std::signbit(v)) << isa_name(i) << " " << v;
      for (float v : db) ASSERT_TRUE(v == 0.0f && !std::signbit(v)) << isa_name(i) << " " << v;
    }
}

TEST(ConvEdges, EmptyInputAllPaddingTaps) {
  for (layout l : {layout::nchw, layout::nhwc})
    for (std::size_t groups : {std::size_t(1), std::size_t(4)}) {
      conv2d_shape s = shape(2, 4, 0, 3, 4, 1, 1, 1, 1, 1, groups, l);  // in_h 0, pad_h 1: out_h 3
      ASSERT_GT(s.out_h() * s.out_w(), 0u);
      const auto dy = data<float>(ysize(s), 77);
      std::vector<float> want(wsize(s)), want_db(4);
      reference::conv2d_backward_weight<float, float>(s, nullptr, dy.data(), want.data(), want_db.data(), false);
      for (isa i : usable_isas())  // the scalar ISA (one channel per vector) formed the bad addresses
      for (int th : {1, 2}) {
        std::vector<float> dw(wsize(s), 7.0f), db(4, 7.0f);
        conv2d_backward_weight<float>(s, nullptr, dy.data(), dw.data(), db.data(), tier::fixed_order, {th, i});
        EXPECT_TRUE(same(dw, want) && same(db, want_db)) << "groups " << groups << " threads " << th;
        std::vector<float> y(ysize(s), 7.0f), y_ref(ysize(s));
        const auto w = data<float>(wsize(s), 78);
        conv2d_forward<float>(s, nullptr, w.data(), nullptr, y.data(), tier::fixed_order, {th, i});
        reference::conv2d_forward<float, float, float>(s, nullptr, w.data(), nullptr, y_ref.data(), false);
        EXPECT_TRUE(same(y, y_ref)) << "forward, groups " << groups;
      }
    }
}

TEST(ConvEdges, BackwardDataKernelColumnsPastTheInput) {
  // Found by fuzz_conv under UBSan: with stride_w 1, a kernel column whose taps all fall past
  // the input row left an empty copy range, for which backward_data still formed (and never
  // used) an address before dy. The values were right; the address was undefined. Runs in the
  // sanitizer stage of CI, on every ISA and 1-3 threads, against the reference.
  for (layout l : {layout::nchw, layout::nhwc}) {
    conv2d_shape s = shape(1, 1, 2, 1, 3, 1, 3, 1, 0, 1, 1, l);
    s.stride_h = 2, s.stride_w = 1, s.pad_h = 3, s.pad_w = 2, s.dilation_h = 2, s.dilation_w = 2;
    ASSERT_GT(s.out_h() * s.out_w(), 0u);
    const auto dy = data<float>(ysize(s), 81), w = data<float>(wsize(s), 82);
    std::vector<float> want(xsize(s));
    reference::conv2d_backward_data<float, float>(s, dy.data(), w.data(), want.data(), false);
    for (isa i : usable_isas())
      for (int th : {1, 2, 3}) {
        std::vector<float> dx(xsize(s), 7.0f);
        conv2d_backward_data<float>(s, dy.data(), w.data(), dx.data(), tier::fixed_order, {th, i});
        EXPECT_TRUE(same(dx, want)) << "threads " << th;
      }
  }
}

template <class T>
void check_forward_kernel_columns_left_of_the_run(layout l) {
  conv2d_shape s = shape(1, 2, 8, 9, 3, 3, 2, 1, 0, 1, 1, l);
  s.pad_h = 2, s.pad_w = 3;
  ASSERT_GT(s.out_h() * s.out_w(), 0u);
  const auto x = data<T>(xsize(s), 91), w = data<T>(wsize(s), 92);
  std::vector<T> want(ysize(s));
  reference::conv2d_forward<T, T, T>(s, x.data(), w.data(), nullptr, want.data(), false);
  for (isa i : usable_isas())
    for (int th : {1, 2, 3}) {
      std::vector<T> y(ysize(s), T(7));
      conv2d_forward<T>(s, x.data(), w.data(), nullptr, y.data(), tier::fixed_order, {th, i});
      EXPECT_TRUE(same(y, want)) << isa_name(i) << " threads " << th;
    }
}

TEST(ConvEdges, ForwardKernelColumnsLeftOfTheRun) {
  // Found by fuzz_conv under UBSan (CI of stop 22; double, SSE2, 3 threads): pad_w 3 with a
  // 2-wide kernel leaves, for kernel column 0, output columns 0..2 reading padding; an im2col
  // run that ended before the first column reading the row still formed (and never used) an
  // address left of the row. The values were right; the address was undefined. Every ISA, 1-3
  // threads, both layouts and types (the column tile, hence where a run ends, differs by ISA
  // and type), against the reference. Clang's UBSan flags the old code on this shape (GCC 12's,
  // which CI's sanitizer stage uses, does not); fuzz_conv's corpus holds the input
  // (crash-fwd-run-left-of-row), so the clang fuzzer replays it first thing in every CI run.
  for (layout l : {layout::nchw, layout::nhwc}) {
    check_forward_kernel_columns_left_of_the_run<float>(l);
    check_forward_kernel_columns_left_of_the_run<double>(l);
  }
}

}  // namespace
