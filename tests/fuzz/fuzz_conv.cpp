// libFuzzer: convolution argument checking and results. Arbitrary small shapes (zero and
// oversize kernels, strides, dilations, paddings, groups, channels, an unknown layout), tier,
// execution (threads, ISA), and every tensor a pointer into ONE buffer (so outputs may overlap
// inputs) filled with arbitrary bytes (NaN, Inf, subnormals). Each call either throws
// std::invalid_argument with the whole buffer untouched, or equals reference/conv.hpp bit for
// bit (fixed_order and exact). Covers forward, backward-data and backward-weight in float,
// double and the bfloat16 variants.
#include <algorithm>
#include <stdexcept>
#include <vector>

#include <bitexact/conv.hpp>
#include <bitexact/reference/conv.hpp>

#include "fuzz_input.hpp"

using namespace bitexact;

namespace {

constexpr std::size_t cap_bytes = 1 << 15;

// A: accumulation type (y, dy, dx, dw, bias); X: x and w (bfloat16 or A).
template <class A, class X>
void run(fuzz::input& in, std::uint8_t mode, std::vector<double>& storage) {
  unsigned char* const base = reinterpret_cast<unsigned char*>(storage.data());
  const std::size_t n_a = cap_bytes / sizeof(A), n_x = cap_bytes / sizeof(X);
  const auto isas = usable_isas();
  const execution ex{1 + in.take<std::uint8_t>() % 4, isas[in.take<std::uint8_t>() % isas.size()]};
  const tier t = (mode & 0x80) ? tier::exact : tier::fixed_order;
  const std::uint8_t op = (mode >> 4) % 3;  // forward, backward-data, backward-weight
  conv2d_shape s;
  const std::uint8_t odd = in.take<std::uint8_t>();  // which fields may be out of their usual range
  auto small = [&](std::size_t lo, std::size_t hi, bool wide) -> std::size_t {
    const std::uint8_t v = in.take<std::uint8_t>();
    return wide ? v % 6 : lo + v % (hi - lo + 1);  // wide: 0 included (must throw for most fields)
  };
  s.batch = in.take<std::uint8_t>() % 3;
  s.groups = small(1, 3, odd & 1);
  s.in_channels = s.groups * small(1, 3, false) + ((odd & 2) ? 1 : 0);
  s.out_channels = s.groups * small(1, 3, false) + ((odd & 4) ? 1 : 0);
  s.in_h = in.take<std::uint8_t>() % 10;
  s.in_w = in.take<std::uint8_t>() % 10;
  s.kernel_h = small(1, 4, odd & 8);
  s.kernel_w = small(1, 4, odd & 8);
  s.stride_h = small(1, 3, odd & 16);
  s.stride_w = small(1, 3, odd & 16);
  s.dilation_h = small(1, 3, odd & 32);
  s.dilation_w = small(1, 3, odd & 32);
  s.pad_h = in.take<std::uint8_t>() % 4;
  s.pad_w = in.take<std::uint8_t>() % 4;
  s.data = static_cast<layout>((odd & 64) ? in.take<std::uint8_t>() % 3 : in.take<std::uint8_t>() % 2);
  // Element counts as the contract defines them (0 where the shape gives no output).
  const std::size_t ic_g = s.groups ? s.in_channels / s.groups : 0;
  const std::size_t nx = s.batch * s.in_channels * s.in_h * s.in_w;
  const std::size_t nw = s.out_channels * ic_g * s.kernel_h * s.kernel_w;
  const std::size_t ny = s.batch * s.out_channels * s.out_h() * s.out_w();
  const std::size_t nb = s.out_channels;
  // Offsets: x and w in X elements, the others in A elements.
  const std::size_t ox = in.take<std::uint16_t>() % n_x, ow = in.take<std::uint16_t>() % n_x;
  const std::size_t oy = in.take<std::uint16_t>() % n_a, ob = in.take<std::uint16_t>() % n_a;
  const std::size_t od = in.take<std::uint16_t>() % n_a;  // dy (backward) / dw (backward-weight)
  const std::uint8_t nulls = in.take<std::uint8_t>();
  // The output at oy: y (forward, ny), dx (backward-data, nx), dw (backward-weight, nw).
  const std::size_t nout = op == 0 ? ny : op == 1 ? nx : nw;
  if (ox + nx > n_x || ow + nw > n_x || oy + nout > n_a || ob + nb > n_a || od + ny > n_a) return;
  std::memset(base, 0, cap_bytes);
  std::memcpy(base, in.p, std::min(in.left(), cap_bytes));
  X* const bx = reinterpret_cast<X*>(base);
  A* const ba = reinterpret_cast<A*>(base);
  const X* x = (nulls & 1) ? nullptr : bx + ox;
  const X* w = (nulls & 2) ? nullptr : bx + ow;
  A* y = (nulls & 4) ? nullptr : ba + oy;    // y (forward), dx (backward-data), dw (backward-weight)
  A* bias = (nulls & 8) ? nullptr : ba + ob;  // bias (forward), dbias (backward-weight)
  const A* dy = (nulls & 16) ? nullptr : ba + od;
  if (std::getenv("FUZZ_VERBOSE"))
    std::fprintf(stderr,
                 "op %d tier %d N %zu C %zu H %zu W %zu OC %zu k %zux%zu s %zux%zu p %zux%zu d %zux%zu g %zu layout %d "
                 "ox %zu ow %zu oy %zu ob %zu od %zu nulls %d threads %d isa %d\n",
                 op, int(t), s.batch, s.in_channels, s.in_h, s.in_w, s.out_channels, s.kernel_h, s.kernel_w, s.stride_h,
                 s.stride_w, s.pad_h, s.pad_w, s.dilation_h, s.dilation_w, s.groups, int(s.data), ox, ow, oy, ob, od,
                 nulls, ex.threads, int(ex.simd));
  const bool exact = t == tier::exact;
  fuzz::expect_untouched_or_reference(
      base, cap_bytes,
      [&] {
        switch (op) {
          case 0: conv2d_forward(s, x, w, bias, y, t, ex); break;
          case 1: conv2d_backward_data(s, dy, w, y, t, ex); break;  // bfloat16: float dy, bfloat16 w
          default: conv2d_backward_weight(s, x, dy, y, bias, t, ex);  // bfloat16: bfloat16 x, float dy
        }
      },
      [&](unsigned char* rbase) {  // valid and not overlapping: the reference at the same offsets
        const X* rx = x ? reinterpret_cast<const X*>(rbase) + ox : nullptr;
        const X* rw = w ? reinterpret_cast<const X*>(rbase) + ow : nullptr;
        A* ry = y ? reinterpret_cast<A*>(rbase) + oy : nullptr;
        A* rbias = bias ? reinterpret_cast<A*>(rbase) + ob : nullptr;
        const A* rdy = dy ? reinterpret_cast<const A*>(rbase) + od : nullptr;
        switch (op) {
          case 0: reference::conv2d_forward<A, X, X>(s, rx, rw, rbias, ry, exact); break;
          case 1: reference::conv2d_backward_data<A, X>(s, rdy, rw, ry, exact); break;
          default: reference::conv2d_backward_weight<A, X>(s, rx, rdy, ry, rbias, exact);
        }
      },
      [&](unsigned char* rbase) {
        if (!std::getenv("FUZZ_VERBOSE")) return;
        for (std::size_t q = 0; q < n_a; ++q)
          if (std::memcmp(ba + q, reinterpret_cast<A*>(rbase) + q, sizeof(A)) != 0)
            std::fprintf(stderr, "  A element %zu (y+%zd): got %a want %a\n", q, std::ptrdiff_t(q) - std::ptrdiff_t(oy),
                         double(ba[q]), double(reinterpret_cast<A*>(rbase)[q]));
      });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  static std::vector<double> storage(cap_bytes / sizeof(double));
  fuzz::input in{data, size};
  cpu::detail::set_min_work_per_thread(16);
  const std::uint8_t mode = in.take<std::uint8_t>();
  switch (mode % 3) {
    case 0: run<float, float>(in, mode, storage); break;
    case 1: run<double, double>(in, mode, storage); break;
    default: run<float, bfloat16>(in, mode, storage);
  }
  return 0;
}
