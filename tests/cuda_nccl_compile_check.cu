// tests/cuda_nccl_compile_check.cu - proves that bitexact/cuda/nccl.cuh compiles for the device.
//
// Built as an object (nothing is linked or run) for the configured architectures (sm_80 and
// sm_90) when nccl.h is found. The function below is never called.
#include <cstddef>
#include <cstdint>

#include "bitexact/cuda/nccl.cuh"

namespace {

template <class T>
void instantiate(ncclComm_t comm, cudaStream_t st) {
  using namespace bitexact;
  using A = core::accumulation_t<T>;
  cuda::nccl_allreduce_sum(static_cast<const T*>(nullptr), 0, static_cast<A*>(nullptr), comm, st);
  cuda::nccl_allreduce_dot(static_cast<const T*>(nullptr), static_cast<const T*>(nullptr), 0, static_cast<A*>(nullptr),
                           comm, st, cuda::launch_shape{5, 128});
  cuda::nccl_allreduce_exact_state<A>(static_cast<std::int64_t*>(nullptr), comm, st);
}

}  // namespace

void bitexact_cuda_nccl_compile_check(ncclComm_t comm, cudaStream_t st) {
  instantiate<float>(comm, st);
  instantiate<double>(comm, st);
  instantiate<bitexact::bfloat16>(comm, st);
}
