// tests/cuda_compile_check.cu - proves that the random and reduce kernels compile for the device.
//
// Instantiates every launcher of bitexact/cuda/random.cuh for every generator and of
// bitexact/cuda/reduce.cuh for float, double and bfloat16. Compiling this
// file for -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 is the
// check (no GPU is needed, nothing is run). The function below is never called.
#include <cstddef>
#include <cstdint>

#include "bitexact/cuda/random.cuh"
#include "bitexact/cuda/reduce.cuh"

namespace {

template <class Gen>
void instantiate_all(cudaStream_t st) {
  using namespace bitexact;
  const auto s = stream<Gen>::from_seed(1, 2, 3, tag_of("compile-check"));
  const cuda::launch_shape shape{13, 64};
  cuda::generate_words(s, 0, static_cast<std::uint32_t*>(nullptr), 0, st, shape);
  cuda::generate_uniform(s, 0, static_cast<float*>(nullptr), 0, st, shape);
  cuda::generate_uniform(s, 0, static_cast<double*>(nullptr), 0, st);
  cuda::generate_normal(s, 0, static_cast<float*>(nullptr), 0, st);
  cuda::generate_normal(s, 0, static_cast<double*>(nullptr), 0);
  cuda::generate_bernoulli(s, 0, static_cast<std::uint8_t*>(nullptr), 0, 0.5, st);
  cuda::generate_uniform_int(s, 0, static_cast<std::uint32_t*>(nullptr), 0, std::uint32_t{10}, st);
  cuda::generate_uniform_int(s, 0, static_cast<std::uint64_t*>(nullptr), 0, std::uint64_t{10}, st);
}

// Sum and dot, both tiers, every input type; the exact-state entry points used by NCCL.
template <class T>
void instantiate_reduce(cudaStream_t st) {
  using namespace bitexact;
  using A = core::accumulation_t<T>;
  for (tier t : {tier::fixed_order, tier::exact}) {
    cuda::sum(static_cast<const T*>(nullptr), 0, static_cast<A*>(nullptr), st, t, cuda::launch_shape{7, 96});
    cuda::dot(static_cast<const T*>(nullptr), static_cast<const T*>(nullptr), 0, static_cast<A*>(nullptr), st, t);
  }
  cuda::exact_accumulate(static_cast<const T*>(nullptr), static_cast<const T*>(nullptr), 0,
                         static_cast<std::int64_t*>(nullptr), st);
  cuda::exact_round(static_cast<const std::int64_t*>(nullptr), static_cast<A*>(nullptr), st);
}

}  // namespace

void bitexact_cuda_compile_check(cudaStream_t st) {
  instantiate_all<bitexact::philox4x32_10>(st);
  instantiate_all<bitexact::philox4x64_10>(st);
  instantiate_all<bitexact::threefry2x32_20>(st);
  instantiate_all<bitexact::threefry4x32_20>(st);
  instantiate_all<bitexact::threefry4x64_20>(st);
  const bitexact::core::feistel_permutation p(1000, bitexact::derive_key<bitexact::philox4x32_10>(7));
  bitexact::cuda::generate_permutation(p, 0, nullptr, 0, st);
  instantiate_reduce<float>(st);
  instantiate_reduce<double>(st);
  instantiate_reduce<bitexact::bfloat16>(st);
}

// --- the scatter family: bitexact/cuda/scatter.cuh -----------------------------------------
// Every launcher for every source type, both index types and both tiers, with and without a
// caller's workspace, so that every kernel template (both 32- and 64-bit layouts) is compiled
// for the device. Qualified names: CUB brings a global ::cuda namespace.
#include <type_traits>

#include "bitexact/cuda/scatter.cuh"

namespace {

template <class T, class I>
void instantiate_scatter(cudaStream_t st) {
  using A = bitexact::core::accumulation_t<T>;
  const bitexact::cuda::launch_shape shape{7, 128};
  std::size_t bytes = 0;
  for (bitexact::tier t : {bitexact::tier::fixed_order, bitexact::tier::exact}) {
    bitexact::cuda::index_add(nullptr, bytes, static_cast<A*>(nullptr), 10, static_cast<const I*>(nullptr),
                    static_cast<const T*>(nullptr), 100, t, st, shape);
    bitexact::cuda::index_add(static_cast<A*>(nullptr), 10, static_cast<const I*>(nullptr), static_cast<const T*>(nullptr), 100, t,
                    st);
    bitexact::cuda::index_add_rows(nullptr, bytes, static_cast<A*>(nullptr), 10, 4, static_cast<const I*>(nullptr),
                         static_cast<const T*>(nullptr), 100, t, st, shape);
    bitexact::cuda::index_add_rows(static_cast<A*>(nullptr), 10, 4, static_cast<const I*>(nullptr), static_cast<const T*>(nullptr),
                         100, t, st);
    // segment_reduce for every op (one pipeline per (+)), scatter_reduce for float/double.
    bitexact::cuda::segment_reduce(nullptr, bytes, static_cast<A*>(nullptr), 10, static_cast<const I*>(nullptr),
                                   static_cast<const T*>(nullptr), 100, bitexact::scatter_op::max, t, st, shape);
    bitexact::cuda::segment_reduce(static_cast<A*>(nullptr), 10, static_cast<const I*>(nullptr),
                                   static_cast<const T*>(nullptr), 100, bitexact::scatter_op::mean, t, st);
    if constexpr (std::is_same<T, A>::value) {
      bitexact::cuda::scatter_reduce(nullptr, bytes, static_cast<A*>(nullptr), 10, static_cast<const I*>(nullptr),
                                     static_cast<const A*>(nullptr), 100, bitexact::scatter_op::min, true, t, st, shape);
      bitexact::cuda::scatter_reduce(static_cast<A*>(nullptr), 10, static_cast<const I*>(nullptr),
                                     static_cast<const A*>(nullptr), 100, bitexact::scatter_op::sum, false, t, st);
    }
  }
}

// bincount, histogram and the embedding-bag ops: (float, int64) and (double, int32) cover
// every value and index type of their own kernels (the pipeline is instantiated above too).
template <class A, class I>
void instantiate_bags(cudaStream_t st) {
  namespace bc = bitexact::cuda;
  const bc::launch_shape shape{7, 128};
  std::size_t bytes = 0;
  const A* cp = nullptr;
  A* p = nullptr;
  const I* ip = nullptr;
  std::int64_t* pos = nullptr;
  bc::bincount(static_cast<std::int64_t*>(nullptr), 10, ip, 100, st);
  bc::bincount(nullptr, bytes, static_cast<std::int64_t*>(nullptr), 10, ip, 100, st, shape);
  for (bitexact::tier t : {bitexact::tier::fixed_order, bitexact::tier::exact}) {
    bc::bincount(p, 10, ip, cp, 100, t, st);
    bc::bincount(nullptr, bytes, p, 10, ip, cp, 100, t, st, shape);
    bc::histogram(p, 10, A(0), A(1), cp, cp, 100, t, st);
    bc::histogram(nullptr, bytes, p, 10, A(0), A(1), cp, static_cast<const A*>(nullptr), 100, t, st, shape);
    for (bitexact::bag_mode m : {bitexact::bag_mode::sum, bitexact::bag_mode::mean, bitexact::bag_mode::max}) {
      bc::embedding_bag(p, cp, 10, 4, ip, 100, ip, 5, m, cp, t, st);
      bc::embedding_bag(nullptr, bytes, p, cp, 10, 4, ip, 100, ip, 5, m, cp, t, st, shape);
    }
    bc::embedding_bag_backward(p, 10, 4, cp, ip, 100, ip, 5, bitexact::bag_mode::mean, cp, t, st);
    bc::embedding_bag_backward(nullptr, bytes, p, 10, 4, cp, ip, 100, ip, 5, bitexact::bag_mode::sum, cp, t, st, shape);
    bc::embedding_bag_max_backward(p, 10, 4, cp, ip, 100, static_cast<const std::int64_t*>(nullptr), 5, t, st);
    bc::embedding_bag_max_backward(nullptr, bytes, p, 10, 4, cp, ip, 100, static_cast<const std::int64_t*>(nullptr), 5,
                                   t, st, shape);
  }
  bc::embedding_bag_max(p, pos, cp, 10, 4, ip, 100, ip, 5, st);
  bc::embedding_bag_max(nullptr, bytes, p, pos, cp, 10, 4, ip, 100, ip, 5, st, shape);
}

}  // namespace

// A bfloat16 table (float out and weights): the forward kernels that read the table.
static void instantiate_bf16_bags(cudaStream_t st) {
  namespace bc = bitexact::cuda;
  std::size_t bytes = 0;
  const bitexact::bfloat16* table = nullptr;
  const std::int64_t* ip = nullptr;
  float* out = nullptr;
  for (bitexact::tier t : {bitexact::tier::fixed_order, bitexact::tier::exact})
    for (bitexact::bag_mode m : {bitexact::bag_mode::sum, bitexact::bag_mode::max}) {
      bc::embedding_bag(out, table, 10, 4, ip, 100, ip, 5, m, static_cast<const float*>(nullptr), t, st);
      bc::embedding_bag(nullptr, bytes, out, table, 10, 4, ip, 100, ip, 5, m, static_cast<const float*>(nullptr), t, st,
                        bc::launch_shape{7, 128});
    }
  bc::embedding_bag_max(out, static_cast<std::int64_t*>(nullptr), table, 10, 4, ip, 100, ip, 5, st);
}

void bitexact_cuda_scatter_compile_check(cudaStream_t st) {
  instantiate_bf16_bags(st);
  instantiate_bags<float, std::int64_t>(st);
  instantiate_bags<double, std::int32_t>(st);
  instantiate_scatter<float, std::int64_t>(st);
  instantiate_scatter<float, std::int32_t>(st);
  instantiate_scatter<double, std::int64_t>(st);
  instantiate_scatter<double, std::int32_t>(st);
  instantiate_scatter<bitexact::bfloat16, std::int64_t>(st);
  instantiate_scatter<bitexact::bfloat16, std::int32_t>(st);
}

// --- the Thrust formulation of the scatter pipeline, for the CUDA device system ------------
// (tests/thrust_scatter_test.cpp runs it under the CPP and OMP systems; here its functors and
// bodies must compile as device code.)
#include "bitexact/cuda/scatter_thrust.hpp"

namespace {

template <class T, class I>
void instantiate_scatter_thrust() {
  using A = bitexact::core::accumulation_t<T>;
  for (bitexact::tier t : {bitexact::tier::fixed_order, bitexact::tier::exact}) {
    bitexact::cuda::thrust_path::index_add(static_cast<A*>(nullptr), 10, static_cast<const I*>(nullptr),
                                           static_cast<const T*>(nullptr), 100, t);
    bitexact::cuda::thrust_path::index_add_rows(static_cast<A*>(nullptr), 10, 4, static_cast<const I*>(nullptr),
                                                static_cast<const T*>(nullptr), 100, t);
  }
}

}  // namespace

void bitexact_cuda_scatter_thrust_compile_check() {
  // One source type: the Thrust-specific code (functors, pipeline) does not depend on it, and
  // every body it calls is compiled for all types and ops through scatter.cuh above. (All ops
  // through Thrust-on-CUDA would add minutes to this check for no new code.)
  instantiate_scatter_thrust<float, std::int64_t>();
}
