// benchmarks/scatter_torch_peer.cpp - PyTorch's CPU index_add_ / scatter_add_ as scatter_bench
// peers (built only when libtorch is found; see scatter_peers.hpp).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "scatter_peers.hpp"

namespace scatter_peers {

bool torch_available() { return true; }

void torch_index_add(float* out, std::size_t n_out, const std::int64_t* idx, const float* src, std::size_t n,
                     std::size_t w, int threads) {
  at::set_num_threads(threads);
  const auto f = at::TensorOptions().dtype(at::kFloat);
  const auto l = at::TensorOptions().dtype(at::kLong);
  at::Tensor i = at::from_blob(const_cast<std::int64_t*>(idx), {static_cast<std::int64_t>(n)}, l);
  if (w == 1) {
    at::Tensor o = at::from_blob(out, {static_cast<std::int64_t>(n_out)}, f);
    o.index_add_(0, i, at::from_blob(const_cast<float*>(src), {static_cast<std::int64_t>(n)}, f));
  } else {
    const auto W = static_cast<std::int64_t>(w);
    at::Tensor o = at::from_blob(out, {static_cast<std::int64_t>(n_out), W}, f);
    o.index_add_(0, i, at::from_blob(const_cast<float*>(src), {static_cast<std::int64_t>(n), W}, f));
  }
}

void torch_scatter_add(float* out, std::size_t n_out, const std::int64_t* idx, const float* src, std::size_t n,
                       int threads) {
  at::set_num_threads(threads);
  const auto f = at::TensorOptions().dtype(at::kFloat);
  at::Tensor o = at::from_blob(out, {static_cast<std::int64_t>(n_out)}, f);
  o.scatter_add_(0, at::from_blob(const_cast<std::int64_t*>(idx), {static_cast<std::int64_t>(n)}, at::TensorOptions().dtype(at::kLong)),
                 at::from_blob(const_cast<float*>(src), {static_cast<std::int64_t>(n)}, f));
}

}  // namespace scatter_peers
