// bitexact/cuda/launch.hpp - launch shapes, thread indices and a CPU emulation of a CUDA launch.
//
// Plain C++17: compiles with g++ and with nvcc, needs no CUDA runtime (DESIGN.md 5(b)).
//
// Kernel logic in cuda/ is written as BITEXACT_HD functions that take a thread_index. A real
// __global__ kernel (cuda/*.cuh) builds the thread_index from blockIdx/threadIdx/gridDim/blockDim
// and calls the body; emulate_launch() below calls the same body for every (block, thread) of a
// grid on the CPU. The random-family bodies have no barriers and no shared memory, so running
// the threads one after another is a faithful emulation. The tests run many grid shapes and
// block orders and check every result against the scalar reference, bit for bit: a result that
// depended on the shape, or on which block ran first, would fail them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <stdexcept>
#include <utility>
#include <vector>

#include "../core/config.hpp"

namespace bitexact {
namespace cuda {

/// A one-dimensional launch shape: `grid` blocks of `block` threads. {0, 0} (or a 0 in either
/// field) means "let the launcher choose" (see resolve_shape). Any non-zero shape gives the
/// same output bits.
struct launch_shape {
  unsigned grid = 0;
  unsigned block = 0;
};

/// What a kernel body sees of its position in the grid (the x components of CUDA's
/// blockIdx, threadIdx, gridDim and blockDim).
struct thread_index {
  unsigned block_idx;
  unsigned thread_idx;
  unsigned grid_dim;
  unsigned block_dim;

  /// Global thread number in [0, threads()).
  BITEXACT_HD constexpr std::uint64_t global() const {
    return static_cast<std::uint64_t>(block_idx) * block_dim + thread_idx;
  }
  /// Total number of threads in the grid (the grid-stride step).
  BITEXACT_HD constexpr std::uint64_t threads() const {
    return static_cast<std::uint64_t>(grid_dim) * block_dim;
  }
};

/// Default threads per block when the caller leaves it to the launcher.
inline constexpr unsigned default_block_threads = 256;
/// Default blocks per SM when the caller leaves the grid size to the launcher.
inline constexpr unsigned default_blocks_per_sm = 4;
/// CUDA's limit on threads per block.
inline constexpr unsigned max_block_threads = 1024;
/// CUDA's limit on gridDim.x.
inline constexpr unsigned max_grid_blocks = 0x7fffffffu;

/// Fills in the zero fields of `shape`: block = 256, grid = 4 * sm_count, then clamps the grid
/// to the number of blocks that have any work (`work_items` grid-stride items; an empty block
/// would only idle). Throws std::invalid_argument for a block size over 1024. Only *who* does
/// an item depends on the shape, never *what* is computed, so the result is the same bits.
inline launch_shape resolve_shape(launch_shape shape, unsigned sm_count, std::uint64_t work_items) {
  if (shape.block > max_block_threads)
    throw std::invalid_argument("bitexact::cuda: launch_shape.block must be <= 1024 threads");
  if (shape.grid > max_grid_blocks)
    throw std::invalid_argument("bitexact::cuda: launch_shape.grid must be < 2^31 blocks");
  if (shape.block == 0) shape.block = default_block_threads;
  if (shape.grid == 0) {
    const std::uint64_t g = static_cast<std::uint64_t>(sm_count == 0 ? 1 : sm_count) * default_blocks_per_sm;
    shape.grid = static_cast<unsigned>(g > max_grid_blocks ? max_grid_blocks : g);
  }
  const std::uint64_t needed = work_items == 0 ? 1 : (work_items + shape.block - 1) / shape.block;
  if (needed < shape.grid) shape.grid = static_cast<unsigned>(needed);
  return shape;
}

/// The order in which emulate_launch visits blocks (threads of a block run in reverse order in
/// every mode). The output must not depend on it.
enum class block_order { forward, reverse, shuffled };

/// The order in which emulated launches visit the blocks of `shape`: forward, reverse, or a
/// Fisher-Yates shuffle with a fixed 64-bit LCG (the same "random" order on every platform).
inline std::vector<unsigned> emulated_block_sequence(launch_shape shape, block_order order) {
  std::vector<unsigned> blocks(shape.grid);
  std::iota(blocks.begin(), blocks.end(), 0u);
  if (order == block_order::reverse) {
    for (std::size_t i = 0, j = blocks.size() - 1; i < j; ++i, --j) std::swap(blocks[i], blocks[j]);
  } else if (order == block_order::shuffled) {
    std::uint64_t x = 0x9E3779B97F4A7C15ull ^ (static_cast<std::uint64_t>(shape.grid) << 32 | shape.block);
    for (std::size_t i = blocks.size(); i > 1; --i) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      const std::size_t j = static_cast<std::size_t>((x >> 33) % i);
      std::swap(blocks[i - 1], blocks[j]);
    }
  }
  return blocks;
}

/// Device memory as an emulated launch finds it: `count` values of W with every byte 0xFF (a NaN
/// pattern for floats), so a pass that read a workspace slot before writing it shows in the tests.
template <class W>
std::vector<W> emulated_device_memory(std::size_t count) {
  std::vector<W> v(count);
  if (count != 0) std::memset(static_cast<void*>(v.data()), 0xFF, count * sizeof(W));
  return v;
}

/// Runs body(thread_index) for every block and thread of `shape` on the calling CPU thread,
/// sequentially. By default blocks run in a fixed pseudo-random order and the threads of each
/// block from last to first, so a body that secretly depends on execution order shows up in the
/// tests. Suitable only for bodies without __syncthreads() (all random-family bodies).
/// A zero grid or block means "nothing to run", as a CUDA launch would refuse it; the caller
/// resolves defaults with resolve_shape first.
template <class F>
void emulate_launch(launch_shape shape, F&& body, block_order order = block_order::shuffled) {
  if (shape.grid == 0 || shape.block == 0) return;
  const std::vector<unsigned> blocks = emulated_block_sequence(shape, order);
  for (const unsigned b : blocks) {
    for (unsigned t = shape.block; t-- > 0;) {
      body(thread_index{b, t, shape.grid, shape.block});
    }
  }
}

}  // namespace cuda
}  // namespace bitexact
