// benchmarks/conv_torch_peer.cpp - see conv_torch_peer.hpp.
#include "conv_torch_peer.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

namespace conv_peers {

std::function<void()> torch_conv2d(const bitexact::conv2d_shape& s, int op, int threads) {
  at::set_num_threads(threads);
  auto d = [](std::size_t v) { return static_cast<std::int64_t>(v); };
  at::manual_seed(1);
  const at::Tensor x = at::randn({d(s.batch), d(s.in_channels), d(s.in_h), d(s.in_w)});
  const at::Tensor w = at::randn({d(s.out_channels), d(s.in_channels / s.groups), d(s.kernel_h), d(s.kernel_w)});
  const at::Tensor b = at::randn({d(s.out_channels)});
  const std::vector<std::int64_t> stride = {d(s.stride_h), d(s.stride_w)}, pad = {d(s.pad_h), d(s.pad_w)},
                                  dil = {d(s.dilation_h), d(s.dilation_w)};
  const auto groups = d(s.groups);
  const at::Tensor dy = at::randn({d(s.batch), d(s.out_channels), d(s.out_h()), d(s.out_w())});
  if (op == 0)
    return [=] {
      at::set_num_threads(threads);
      const at::Tensor y = at::conv2d(x, w, b, stride, pad, dil, groups);
    };
  const std::array<bool, 3> mask = op == 1 ? std::array<bool, 3>{true, false, false} : std::array<bool, 3>{false, true, true};
  const std::vector<std::int64_t> bias_sizes = {d(s.out_channels)}, out_pad = {0, 0};
  return [=] {
    at::set_num_threads(threads);
    const auto g = at::convolution_backward(dy, x, w, bias_sizes, stride, pad, dil, false, out_pad, groups, mask);
  };
}

}  // namespace conv_peers
