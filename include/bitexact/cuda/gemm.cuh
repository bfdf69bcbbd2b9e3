// bitexact/cuda/gemm.cuh - deterministic matrix product on CUDA devices, both tiers.
//
// nvcc only. Row-major, the CPU API's argument order (bitexact/gemm.hpp):
//   C = alpha * op(A) op(B) + beta * C; op(A) is m x k, op(B) is k x n, C is m x n;
//   ta == transpose::no: A stored m x k (lda >= k), yes: stored k x m (lda >= m); likewise B.
//   beta == 0: C is not read (BLAS rule). alpha == 0: A and B are not read.
//
//   gemm(d_temp, temp_bytes, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
//        tier = fixed_order, stream = 0, launch = {})     // T = float or double
//   gemm(d_temp, temp_bytes, ..., float alpha, const bfloat16* a, ..., const bfloat16* b, ...,
//        float beta, float* c, ...)                        // bf16 inputs widened exactly, float C
//   and the same without (d_temp, temp_bytes): the workspace, if any, comes from
//   cudaMallocAsync / cudaFreeAsync on the stream.
//
// launch (gemm_launch, cuda/gemm_kernels.hpp): {grid, splits, block}, 0 = the launcher's choice
// (one block per tile and split; K split only when m x n leaves SMs idle). Never changes a bit.
//
// Workspace (CUB's two-phase style): d_temp == nullptr only sets temp_bytes (>= 1; nothing is
// launched). Only split-K needs one: fixed_order chunks x m x n values, exact splits x m x n
// accumulators (176 bytes float, 1088 bytes double). The size depends on the shape, the tier,
// launch.splits and (when it is 0) the current device's SM count: query with the same
// arguments on the same device.
//
// Guarantees (cuda/gemm_kernels.hpp has the kernels):
//   fixed_order  the canonical K order of core/gemm_order.hpp, bit for bit the CPU's
//                bitexact::gemm and reference::gemm, for any tile, grid, split-K count, SM count
//                or GPU model: explicit fmaf/fma chains per 256-wide K chunk, chunk partials
//                folded left to right (split-K writes per-chunk partials and a second kernel
//                folds them: no float atomics), one epilogue. Never tensor-core float MMA.
//   exact        the rule of core/gemm_exact.hpp, as on the CPU: with S the exact sum of the
//                products, alpha == 1: C = round(S + beta * C_old) (beta == 0: the correctly
//                rounded dot product); alpha == 0: round(beta * C_old); otherwise
//                round(alpha * round(S) + beta * C_old). Per-element exact accumulators; split-K
//                merges them by integer addition, so any split gives the same bits.
//   NaN out is the canonical quiet NaN in both tiers.
// Errors: arguments the CPU refuses (ld too small, null pointer with a non-zero count, C
// overlapping A or B, a workspace too small or overlapping C) throw std::invalid_argument before
// anything is launched; CUDA errors throw std::runtime_error (cuda/runtime.cuh).
//
// What is proven without a GPU (see README): the kernel bodies' bits, by CPU emulation over
// several tiles, split counts, grids and block orders (tests/cuda_gemm_emulation_test.cpp), and
// that this header compiles for sm_80 and sm_90 (tests/cuda_gemm_compile_check.cu); the host
// side (workspace sizes, argument errors) runs without a GPU in tests/cuda_gemm_launcher_test.cu.
// It has not run on a GPU, and its speed is unmeasured.
#pragma once
#if !defined(__CUDACC__)
#error "bitexact/cuda/gemm.cuh must be compiled by nvcc; use bitexact/cuda/gemm_kernels.hpp for host code"
#endif

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "../core/bfloat16.hpp"
#include "../tier.hpp"
#include "block_context.hpp"
#include "gemm_kernels.hpp"
#include "launch.hpp"
#include "runtime.cuh"

namespace bitexact {
namespace cuda {
namespace gemm_kernels {

template <class T, class Tile, class In>
__global__ void __launch_bounds__(Tile::threads)
    fixed_order_kernel(gemm_plan p, gemm_operand<In> a, gemm_operand<In> b, T alpha, T beta, T* c, std::size_t ldc,
                       T* partials) {
  __shared__ gemm_tile_shared<T, Tile> sh;
  gemm_fixed_order_body<T, Tile>(device_block_context{}, current_thread_index(), sh, p, a, b, alpha, beta, c, ldc,
                                 partials);
}

template <class T>
__global__ void fold_kernel(std::size_t m, std::size_t n, std::size_t chunks, const T* partials, T alpha, T beta, T* c,
                            std::size_t ldc) {
  gemm_fold_body<T>(current_thread_index(), m, n, chunks, partials, alpha, beta, c, ldc);
}

template <class T, class In>
__global__ void exact_kernel(gemm_plan p, gemm_operand<In> a, gemm_operand<In> b, T alpha, T beta, T* c,
                             std::size_t ldc, std::int64_t* ws) {
  gemm_exact_body<T>(current_thread_index(), p, a, b, alpha, beta, c, ldc, ws);
}

template <class T>
__global__ void exact_alpha_zero_kernel(std::size_t m, std::size_t n, T beta, T* c, std::size_t ldc) {
  gemm_exact_alpha_zero_body<T>(current_thread_index(), m, n, beta, c, ldc);
}

template <class T>
__global__ void exact_merge_kernel(std::size_t m, std::size_t n, unsigned splits, const std::int64_t* ws, T alpha,
                                   T beta, T* c, std::size_t ldc) {
  gemm_exact_merge_body<T>(current_thread_index(), m, n, splits, ws, alpha, beta, c, ldc);
}

}  // namespace gemm_kernels

namespace gemm_detail {

using detail::throw_on_error;

inline unsigned clamp_grid(std::uint64_t blocks) {
  if (blocks == 0) return 1;
  return blocks > max_grid_blocks ? max_grid_blocks : static_cast<unsigned>(blocks);
}

/// What a call does: nothing (m or n is 0), the epilogue alone, or the plan's kernels.
struct call_plan {
  bool nothing = false;
  bool only_epilogue = false;
  gemm_plan plan{};
  std::size_t workspace = 0;  ///< bytes of split-K workspace (0: none)
};

template <class T, class In>
call_plan plan_call(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const In* a,
                    std::size_t lda, const In* b, std::size_t ldb, const T* c, std::size_t ldc, tier t,
                    gemm_launch opt) {
  validate<T, In>(ta, tb, m, n, k, a, lda, b, ldb, c, ldc, t);
  if (opt.block > max_block_threads) throw std::invalid_argument("bitexact::cuda::gemm: launch.block must be <= 1024");
  call_plan cp;
  cp.nothing = m == 0 || n == 0;
  cp.only_epilogue = !cp.nothing && epilogue_only(k, alpha, t);
  if (!cp.nothing && !cp.only_epilogue) {
    cp.plan = make_plan<T, typename default_gemm_tile_for<T>::type>(m, n, k, t, opt.splits, opt.splits == 0 ? detail::sm_count("gemm") : 1u);
    cp.workspace = workspace_bytes<T>(cp.plan, t);
  }
  return cp;
}

/// Launches the passes of a validated call; ws holds cp.workspace bytes (nullptr when 0).
template <class T, class In>
void execute(const call_plan& cp, void* ws, transpose ta, transpose tb, std::size_t m, std::size_t n, T alpha,
             const In* a, std::size_t lda, const In* b, std::size_t ldb, T beta, T* c, std::size_t ldc, tier t,
             cudaStream_t st, gemm_launch opt) {
  using Tile = typename default_gemm_tile_for<T>::type;
  constexpr const char* op = "gemm";
  if (cp.nothing) return;
  const unsigned block = opt.block ? opt.block : default_gemm_block;
  const auto small_grid = [&](std::uint64_t items) {
    return opt.grid ? opt.grid : clamp_grid((items + block - 1) / block);
  };
  const std::uint64_t mn = static_cast<std::uint64_t>(m) * n;
  if (cp.only_epilogue) {
    if (t == tier::exact)
      gemm_kernels::exact_alpha_zero_kernel<T><<<small_grid(mn), block, 0, st>>>(m, n, beta, c, ldc);
    else
      gemm_kernels::fold_kernel<T><<<small_grid(mn), block, 0, st>>>(m, n, 0, static_cast<const T*>(nullptr), alpha,
                                                                      beta, c, ldc);
    throw_on_error(cudaGetLastError(), op, "epilogue launch");
    return;
  }
  const gemm_plan& p = cp.plan;
  const gemm_operand<In> A{a, lda, ta == transpose::yes}, B{b, ldb, tb == transpose::yes};
  if (t == tier::fixed_order) {
    T* partials = static_cast<T*>(ws);
    const unsigned grid = opt.grid ? opt.grid : clamp_grid(p.units());
    gemm_kernels::fixed_order_kernel<T, Tile, In><<<grid, Tile::threads, 0, st>>>(p, A, B, alpha, beta, c, ldc, partials);
    throw_on_error(cudaGetLastError(), op, "tile kernel launch");
    if (p.splits > 1) {
      gemm_kernels::fold_kernel<T><<<small_grid(mn), block, 0, st>>>(m, n, p.chunks, partials, alpha, beta, c, ldc);
      throw_on_error(cudaGetLastError(), op, "fold launch");
    }
    return;
  }
  std::int64_t* digits = static_cast<std::int64_t*>(ws);
  gemm_kernels::exact_kernel<T, In><<<small_grid(p.units()), block, 0, st>>>(p, A, B, alpha, beta, c, ldc, digits);
  throw_on_error(cudaGetLastError(), op, "exact kernel launch");
  if (p.splits > 1) {
    gemm_kernels::exact_merge_kernel<T><<<small_grid(mn), block, 0, st>>>(m, n, p.splits, digits, alpha, beta, c, ldc);
    throw_on_error(cudaGetLastError(), op, "exact merge launch");
  }
}

/// CUB's two-phase call: d_temp == nullptr sets temp_bytes (>= 1) and launches nothing.
template <class T, class In>
void run(void* d_temp, std::size_t& temp_bytes, transpose ta, transpose tb, std::size_t m, std::size_t n,
         std::size_t k, T alpha, const In* a, std::size_t lda, const In* b, std::size_t ldb, T beta, T* c,
         std::size_t ldc, tier t, cudaStream_t st, gemm_launch opt) {
  const call_plan cp = plan_call<T, In>(ta, tb, m, n, k, alpha, a, lda, b, ldb, c, ldc, t, opt);
  if (d_temp == nullptr) {
    temp_bytes = cp.workspace == 0 ? 1 : cp.workspace;
    return;
  }
  if (temp_bytes < cp.workspace)
    throw std::invalid_argument("bitexact::cuda::gemm: workspace of " + std::to_string(temp_bytes) + " bytes, needs " +
                                std::to_string(cp.workspace));
  if (cp.workspace > 0) {
    const auto x = reinterpret_cast<std::uintptr_t>(d_temp), y = reinterpret_cast<std::uintptr_t>(c);
    const std::size_t c_bytes = ((m - 1) * ldc + n) * sizeof(T);
    if (x < y + c_bytes && y < x + cp.workspace)
      throw std::invalid_argument("bitexact::cuda::gemm: the workspace overlaps C");
  }
  execute<T, In>(cp, d_temp, ta, tb, m, n, alpha, a, lda, b, ldb, beta, c, ldc, t, st, opt);
}

/// The same with a workspace of its own (cudaMallocAsync / cudaFreeAsync on st, also on throw;
/// none when the call needs none).
template <class T, class In>
void run_owned(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const In* a,
               std::size_t lda, const In* b, std::size_t ldb, T beta, T* c, std::size_t ldc, tier t, cudaStream_t st,
               gemm_launch opt) {
  const call_plan cp = plan_call<T, In>(ta, tb, m, n, k, alpha, a, lda, b, ldb, c, ldc, t, opt);
  if (cp.workspace == 0) {
    execute<T, In>(cp, nullptr, ta, tb, m, n, alpha, a, lda, b, ldb, beta, c, ldc, t, st, opt);
    return;
  }
  void* p = nullptr;
  throw_on_error(cudaMallocAsync(&p, cp.workspace, st), "gemm", "cudaMallocAsync(workspace)");
  try {
    execute<T, In>(cp, p, ta, tb, m, n, alpha, a, lda, b, ldb, beta, c, ldc, t, st, opt);
  } catch (...) {
    cudaFreeAsync(p, st);
    throw;
  }
  throw_on_error(cudaFreeAsync(p, st), "gemm", "cudaFreeAsync(workspace)");
}

}  // namespace gemm_detail

/// C = alpha op(A) op(B) + beta C on `st` (T = float or double), with a caller's workspace.
template <class T>
void gemm(void* d_temp, std::size_t& temp_bytes, transpose ta, transpose tb, std::size_t m, std::size_t n,
          std::size_t k, T alpha, const T* a, std::size_t lda, const T* b, std::size_t ldb, T beta, T* c,
          std::size_t ldc, tier t = tier::fixed_order, cudaStream_t st = nullptr, gemm_launch launch = {}) {
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value, "bitexact::cuda::gemm: float or double");
  gemm_detail::run<T, T>(d_temp, temp_bytes, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, t, st, launch);
}

/// bfloat16 inputs (widened exactly to float), float C, with a caller's workspace.
inline void gemm(void* d_temp, std::size_t& temp_bytes, transpose ta, transpose tb, std::size_t m, std::size_t n,
                 std::size_t k, float alpha, const bfloat16* a, std::size_t lda, const bfloat16* b, std::size_t ldb,
                 float beta, float* c, std::size_t ldc, tier t = tier::fixed_order, cudaStream_t st = nullptr,
                 gemm_launch launch = {}) {
  gemm_detail::run<float, bfloat16>(d_temp, temp_bytes, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, t, st,
                                    launch);
}

/// C = alpha op(A) op(B) + beta C on `st`; allocates its workspace (if any) on the stream.
template <class T>
void gemm(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
          std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc, tier t = tier::fixed_order,
          cudaStream_t st = nullptr, gemm_launch launch = {}) {
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value, "bitexact::cuda::gemm: float or double");
  gemm_detail::run_owned<T, T>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, t, st, launch);
}

/// bfloat16 inputs, float C; allocates its workspace (if any) on the stream.
inline void gemm(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, float alpha,
                 const bfloat16* a, std::size_t lda, const bfloat16* b, std::size_t ldb, float beta, float* c,
                 std::size_t ldc, tier t = tier::fixed_order, cudaStream_t st = nullptr, gemm_launch launch = {}) {
  gemm_detail::run_owned<float, bfloat16>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, t, st, launch);
}

}  // namespace cuda
}  // namespace bitexact
