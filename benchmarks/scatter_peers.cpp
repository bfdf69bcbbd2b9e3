// benchmarks/scatter_peers.cpp - the hand-written peers of scatter_bench (see scatter_peers.hpp).
#include "scatter_peers.hpp"

#include <algorithm>
#include <vector>

#include <omp.h>

namespace scatter_peers {

void serial(float* out, const std::int64_t* idx, const float* src, std::size_t n, std::size_t w) {
  if (w == 1) {
    for (std::size_t k = 0; k < n; ++k) out[idx[k]] += src[k];
    return;
  }
  for (std::size_t k = 0; k < n; ++k) {
    float* o = out + static_cast<std::size_t>(idx[k]) * w;
    const float* s = src + k * w;
    for (std::size_t c = 0; c < w; ++c) o[c] += s[c];
  }
}

void omp_atomic(float* out, const std::int64_t* idx, const float* src, std::size_t n, std::size_t w, int threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
  for (std::size_t k = 0; k < n; ++k) {
    float* o = out + static_cast<std::size_t>(idx[k]) * w;
    const float* s = src + k * w;
    for (std::size_t c = 0; c < w; ++c) {
#pragma omp atomic
      o[c] += s[c];
    }
  }
}

void private_buffers(float* out, std::size_t n_out, const std::int64_t* idx, const float* src, std::size_t n,
                     std::size_t w, int threads) {
  static std::vector<std::vector<float>> buf;
  if (buf.size() < static_cast<std::size_t>(threads)) buf.resize(static_cast<std::size_t>(threads));
  const std::size_t m = n_out * w;
#pragma omp parallel num_threads(threads)
  {
    const int id = omp_get_thread_num(), t = omp_get_num_threads();
    std::vector<float>& b = buf[static_cast<std::size_t>(id)];
    b.assign(m, 0.0f);
    const std::size_t lo = n * static_cast<std::size_t>(id) / static_cast<std::size_t>(t);
    const std::size_t hi = n * static_cast<std::size_t>(id + 1) / static_cast<std::size_t>(t);
    serial(b.data(), idx + lo, src + lo * w, hi - lo, w);
#pragma omp barrier
#pragma omp for schedule(static)
    for (std::size_t k = 0; k < m; ++k) {
      float s = out[k];
      for (int j = 0; j < t; ++j) s += buf[static_cast<std::size_t>(j)][k];
      out[k] = s;
    }
  }
}

#ifndef BITEXACT_HAVE_TORCH
bool torch_available() { return false; }
void torch_index_add(float*, std::size_t, const std::int64_t*, const float*, std::size_t, std::size_t, int) {}
void torch_scatter_add(float*, std::size_t, const std::int64_t*, const float*, std::size_t, int) {}
#endif

}  // namespace scatter_peers
