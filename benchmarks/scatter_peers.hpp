// benchmarks/scatter_peers.hpp - the scatter peers a user would pick instead of bitexact, compiled
// in their own translation units as their users compile them (-O3 -march=native, the compiler's
// default FP contraction; never bitexact's -ffp-contract=off). out[idx[i] * w + c] += src[i * w + c].
#pragma once
#include <cstddef>
#include <cstdint>

namespace scatter_peers {

/// The plain loop on one thread (deterministic: the floor of the work).
void serial(float* out, const std::int64_t* idx, const float* src, std::size_t n, std::size_t w);
/// `#pragma omp parallel for` with `#pragma omp atomic` adds (not deterministic).
void omp_atomic(float* out, const std::int64_t* idx, const float* src, std::size_t n, std::size_t w, int threads);
/// Each thread scatters a contiguous source range into its own zeroed copy of out, then the
/// copies are added into out, targets split over threads (deterministic for a fixed thread
/// count only). The buffers are kept between calls (zeroing them is part of each call).
void private_buffers(float* out, std::size_t n_out, const std::int64_t* idx, const float* src, std::size_t n,
                     std::size_t w, int threads);

/// PyTorch's CPU ops on the same memory (at::from_blob), at::set_num_threads(threads):
/// out.index_add_(0, idx, src) (1-D and rows) and out.scatter_add_(0, idx, src) (1-D).
/// torch_available() is false when the benchmark was built without libtorch.
bool torch_available();
void torch_index_add(float* out, std::size_t n_out, const std::int64_t* idx, const float* src, std::size_t n,
                     std::size_t w, int threads);
void torch_scatter_add(float* out, std::size_t n_out, const std::int64_t* idx, const float* src, std::size_t n,
                       int threads);

}  // namespace scatter_peers
