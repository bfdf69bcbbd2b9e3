// benchmarks/conv_torch_peer.hpp - PyTorch's CPU conv2d (Debian's libtorch) as a conv_bench peer:
// what a torch user gets from F.conv2d and its autograd backward (at::convolution_backward),
// whichever backend torch picks for the shape (oneDNN or its own kernels). Compiled in its own
// translation unit, only when libtorch is found.
#pragma once
#include <functional>

#include <bitexact/conv.hpp>

namespace conv_peers {

/// One iteration of torch's op on fp32 NCHW tensors of shape s, with `threads` intra-op threads:
/// op 0 forward (with bias), 1 backward-data (grad_input), 2 backward-weight (grad_weight and
/// grad_bias). The tensors are allocated and filled once, outside the returned callable.
std::function<void()> torch_conv2d(const bitexact::conv2d_shape& s, int op, int threads);

}  // namespace conv_peers
