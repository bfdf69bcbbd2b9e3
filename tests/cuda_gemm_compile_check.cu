// tests/cuda_gemm_compile_check.cu - proves that the GEMM kernels compile for the device.
//
// Instantiates every launcher of bitexact/cuda/gemm.cuh (float, double, bfloat16 inputs; both
// tiers; with and without a caller's workspace), which instantiates every kernel template the
// launchers use (the tiled fixed_order kernel, the fold, the exact kernel and its merge).
// Compiling this file for sm_80 and sm_90 is the check (no GPU needed, nothing runs); the
// function below is never called.
#include <cstddef>

#include "bitexact/cuda/gemm.cuh"

namespace {

template <class T, class In>
void instantiate_gemm(cudaStream_t st) {
  namespace bc = bitexact::cuda;
  using bitexact::transpose;
  std::size_t bytes = 0;
  const In* a = nullptr;
  T* c = nullptr;
  for (bitexact::tier t : {bitexact::tier::fixed_order, bitexact::tier::exact}) {
    bc::gemm(nullptr, bytes, transpose::no, transpose::yes, 0, 0, 0, T(1), a, 0, a, 0, T(0), c, 0, t, st,
             bc::gemm_launch{0, 2, 64});
    bc::gemm(transpose::yes, transpose::no, 0, 0, 0, T(1), a, 0, a, 0, T(0), c, 0, t, st);
  }
}

}  // namespace

void bitexact_cuda_gemm_compile_check(cudaStream_t st) {
  instantiate_gemm<float, float>(st);
  instantiate_gemm<double, double>(st);
  instantiate_gemm<float, bitexact::bfloat16>(st);
}
