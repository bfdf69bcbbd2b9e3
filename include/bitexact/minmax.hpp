// bitexact/minmax.hpp - min, max, argmin, argmax whose result never depends on how they run.
//
//   T           min(const T* x, std::size_t n, execution e = {})      T = float, double, bfloat16
//   T           max(const T* x, std::size_t n, execution e = {})
//   std::size_t argmin(const T* x, std::size_t n, execution e = {})
//   std::size_t argmax(const T* x, std::size_t n, execution e = {})
//
// Semantics (reference/minmax.hpp is the executable specification):
//   - order: IEEE order, except -0.0 < +0.0 (min(-0, +0) = -0.0, max = +0.0);
//   - ties go to the lowest index (argmin/argmax);
//   - NaN: min/max return the canonical quiet NaN if any input is NaN (whatever its payload or
//     sign); argmin/argmax return the index of the first NaN;
//   - n == 0 throws std::invalid_argument (there is no identity to return), and so does a null
//     x with n > 0.
// No floating-point arithmetic is involved (the kernels compare integer keys of the bits), so
// FTZ/DAZ or the rounding mode of the calling thread cannot change a result: no
// fp_environment check (a denormal stays distinct from zero even under DAZ).
// These results are order-independent by definition, so they equal the reference bit for bit
// for every thread count, ISA and alignment. How: cpu/minmax_kernels.hpp reduces integer keys
// in canonical chunks of 2^16 values; argmin/argmax then search the first chunk that holds the
// winning key.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "cpu/minmax_kernels.hpp"
#include "reference/minmax.hpp"
#include "cpu/threads.hpp"
#include "execution.hpp"

namespace bitexact {
namespace detail {

constexpr std::uint64_t minmax_chunk = std::uint64_t(1) << 16;

template <class T, bool IsMax>
std::size_t minmax_arg(const T* x, std::size_t n, const execution& e, const char* what,
                       cpu::detail::key_t<T>* best_out = nullptr) {
  if (n == 0) throw std::invalid_argument(std::string("bitexact::") + what + ": n == 0 has no result");
  if (x == nullptr) throw std::invalid_argument(std::string("bitexact::") + what + ": null x with n > 0");
  using K = cpu::detail::key_t<T>;
  const isa i = cpu::detail::resolve_isa(e.simd);
  const int threads = cpu::detail::resolve_threads(e.threads);
  const cpu::canonical_chunks chunks{n, minmax_chunk};
  std::vector<K> chunk_best(static_cast<std::size_t>(chunks.count()));
  std::size_t index = 0;
  K best{};
  cpu::detail::with_arch(i, [&](auto arch) {
    using kernel = cpu::detail::minmax_kernel<T, decltype(arch), IsMax>;
    cpu::parallel_chunks(threads, chunks, [&](std::uint64_t b, std::uint64_t end) {
      chunk_best[static_cast<std::size_t>(b / minmax_chunk)] =
          kernel::best_key(x + b, static_cast<std::size_t>(end - b));
    });
    std::size_t c = 0;
    best = chunk_best[0];
    for (std::size_t k = 1; k < chunk_best.size(); ++k)
      if (IsMax ? chunk_best[k] > best : chunk_best[k] < best) {
        best = chunk_best[k];
        c = k;
      }
    const std::uint64_t b = chunks.begin(c), end = chunks.end(c);
    index = static_cast<std::size_t>(b) + kernel::find(x + b, static_cast<std::size_t>(end - b), best);
  });
  if (best_out) *best_out = best;
  return index;
}

template <class T, bool IsMax>
T minmax_value(const T* x, std::size_t n, const execution& e, const char* what) {
  cpu::detail::key_t<T> k{};
  minmax_arg<T, IsMax>(x, n, e, what, &k);
  if (k == cpu::detail::nan_key<cpu::detail::key_t<T>, IsMax>()) return reference::minmax_detail::canonical_nan<T>();
  return cpu::detail::value_of_key<T>(k);
}

}  // namespace detail

template <class T>
std::size_t argmin(const T* x, std::size_t n, const execution& e = {}) {
  return detail::minmax_arg<T, false>(x, n, e, "argmin");
}
template <class T>
std::size_t argmax(const T* x, std::size_t n, const execution& e = {}) {
  return detail::minmax_arg<T, true>(x, n, e, "argmax");
}
template <class T>
T min(const T* x, std::size_t n, const execution& e = {}) {
  return detail::minmax_value<T, false>(x, n, e, "min");
}
template <class T>
T max(const T* x, std::size_t n, const execution& e = {}) {
  return detail::minmax_value<T, true>(x, n, e, "max");
}

}  // namespace bitexact
