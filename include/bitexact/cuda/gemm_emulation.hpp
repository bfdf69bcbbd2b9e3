// bitexact/cuda/gemm_emulation.hpp - the CUDA GEMM run on the CPU for a tile and launch shape.
//
// Host only (uses cuda/block_emulation.hpp). Runs exactly the passes cuda/gemm.cuh launches,
// with the same bodies from cuda/gemm_kernels.hpp: the tiled fixed_order body through the fiber
// emulation of blocks, barriers and shared memory, the per-element bodies through
// emulate_launch. The workspace starts as 0xFF garbage, as device memory would.
//
//   bitexact::cuda::emulated_gemm<Tile>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
//                                       tier, launch, order, sm_count)
//
// writes to c what bitexact::cuda::gemm would, for that tile (default: the launcher's,
// default_gemm_tile_for<T>), launch options (grid, splits,
// block; 0 = the launcher's choice for a device with sm_count SMs) and block order. Arguments
// are validated like the launcher (std::invalid_argument, c untouched).
#pragma once
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "../tier.hpp"
#include "block_emulation.hpp"
#include "gemm_kernels.hpp"

namespace bitexact {
namespace cuda {

template <class TileOrDefault = void, class T, class In>
void emulated_gemm(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const In* a,
                   std::size_t lda, const In* b, std::size_t ldb, T beta, T* c, std::size_t ldc, tier t,
                   gemm_launch opt = {}, block_order order = block_order::shuffled, unsigned sm_count = 8) {
  using Tile = typename std::conditional<std::is_void<TileOrDefault>::value, typename default_gemm_tile_for<T>::type,
                                         TileOrDefault>::type;
  gemm_detail::validate<T, In>(ta, tb, m, n, k, a, lda, b, ldb, c, ldc, t);
  if (m == 0 || n == 0) return;
  const unsigned block = opt.block ? opt.block : default_gemm_block;
  const auto small_grid = [&](std::uint64_t items) {
    return launch_shape{opt.grid ? opt.grid : static_cast<unsigned>((items + block - 1) / block), block};
  };
  const gemm_operand<In> A{a, lda, ta == transpose::yes}, B{b, ldb, tb == transpose::yes};
  if (gemm_detail::epilogue_only(k, alpha, t)) {
    if (t == tier::exact)
      emulate_launch(small_grid(m * n), [&](const thread_index& ti) { gemm_exact_alpha_zero_body<T>(ti, m, n, beta, c, ldc); },
                     order);
    else
      emulate_launch(small_grid(m * n),
                     [&](const thread_index& ti) { gemm_fold_body<T>(ti, m, n, 0, static_cast<const T*>(nullptr), alpha, beta, c, ldc); },
                     order);
    return;
  }
  const gemm_plan p = gemm_detail::make_plan<T, Tile>(m, n, k, t, opt.splits, sm_count);
  if (t == tier::fixed_order) {
    std::vector<T> partials = emulated_device_memory<T>(gemm_detail::workspace_bytes<T>(p, t) / sizeof(T));
    const launch_shape main{opt.grid ? opt.grid : static_cast<unsigned>(p.units()), Tile::threads};
    emulate_block_launch<gemm_tile_shared<T, Tile>>(
        main,
        [&](const emulated_block_context& ctx, const thread_index& ti, gemm_tile_shared<T, Tile>& sh) {
          gemm_fixed_order_body<T, Tile>(ctx, ti, sh, p, A, B, alpha, beta, c, ldc, partials.data());
        },
        order);
    if (p.splits > 1)
      emulate_launch(small_grid(m * n),
                     [&](const thread_index& ti) { gemm_fold_body<T>(ti, m, n, p.chunks, partials.data(), alpha, beta, c, ldc); },
                     order);
    return;
  }
  std::vector<std::int64_t> ws =
      emulated_device_memory<std::int64_t>(gemm_detail::workspace_bytes<T>(p, t) / sizeof(std::int64_t));
  emulate_launch(small_grid(p.units()),
                 [&](const thread_index& ti) { gemm_exact_body<T>(ti, p, A, B, alpha, beta, c, ldc, ws.data()); }, order);
  if (p.splits > 1)
    emulate_launch(small_grid(m * n),
                   [&](const thread_index& ti) { gemm_exact_merge_body<T>(ti, m, n, p.splits, ws.data(), alpha, beta, c, ldc); },
                   order);
}

}  // namespace cuda
}  // namespace bitexact
