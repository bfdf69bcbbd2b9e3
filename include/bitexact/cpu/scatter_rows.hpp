// bitexact/cpu/scatter_rows.hpp - the 1-D index_add driver and the row forms (index_add_rows,
// embedding bags), vectorized across the columns of a row: a core::scatter_combiner whose
// values are xsimd batches combines every column in the canonical order at once (lane-wise
// IEEE adds are the scalar adds), so the bits equal the reference's column-by-column loop.
#pragma once
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <xsimd/xsimd.hpp>
#if defined(__SSE2__) && (defined(__x86_64__) || defined(_M_X64))
#include <emmintrin.h>
#endif
#if defined(__AVX512F__) && defined(__AVX512DQ__)
#include <immintrin.h>
#endif

#include "../core/bfloat16.hpp"
#include "../core/math.hpp"
#include "../core/scatter.hpp"
#include "../tier.hpp"
#include "dispatch.hpp"
#include "scatter_kernels.hpp"

namespace bitexact {
namespace cpu {
namespace detail {

/// Groups whose positions are contiguous: target k owns positions [start[k], start[k+1]).
struct contiguous_groups {
  std::vector<std::uint64_t> start;
  std::uint64_t position_at(std::uint64_t q) const { return q; }
};

/// Bags of PyTorch's embedding_bag (include_last_offset = false), validated.
template <class I>
contiguous_groups bag_groups(const I* offsets, std::size_t n_bags, std::size_t n_indices, const char* what) {
  ::bitexact::detail::check_bags_cover_indices(what, n_bags, n_indices);
  contiguous_groups g;
  g.start.resize(n_bags + 1);
  for (std::size_t b = 0; b < n_bags; ++b) {
    const I o = offsets[b];
    if (o < 0 || static_cast<std::uint64_t>(o) > n_indices || (b == 0 && o != 0) ||
        (b > 0 && static_cast<std::uint64_t>(o) < g.start[b - 1]))
      throw ::bitexact::detail::bad_offsets_error(what, b);
    g.start[b] = static_cast<std::uint64_t>(o);
  }
  g.start[n_bags] = n_indices;
  return g;
}

/// A vector of columns for Arch: an xsimd batch, or one value on scalar_arch.
template <class A, class Arch, bool Simd = !std::is_same<Arch, scalar_arch>::value>
struct column_vec {
  using type = A;
  static constexpr std::size_t size = 1;
  static type load(const A* p) { return *p; }
  static type load(const bfloat16* p) { return p->to_float(); }
  static type broadcast(A v) { return v; }
  static void store(A* p, type v) { *p = v; }
  static type mul_rn(type a, type b) { return core::mul_rn(a, b); }
};
template <class A, class Arch>
struct column_vec<A, Arch, true> {
  using type = xsimd::batch<A, Arch>;
  static constexpr std::size_t size = type::size;
  static type load(const A* p) { return type::load_unaligned(p); }
  static type load(const bfloat16* p) {
    alignas(64) A tmp[size];
    for (std::size_t k = 0; k < size; ++k) tmp[k] = p[k].to_float();
    return type::load_aligned(tmp);
  }
  static type broadcast(A v) { return type(v); }
  static void store(A* p, type v) { v.store_unaligned(p); }
  /// Lane-wise product, kept out of reach of FMA contraction with the following add.
  static type mul_rn(type a, type b) {
    type p = a * b;
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
    __asm__("" : "+v"(p.data));
#elif (defined(__GNUC__) || defined(__clang__)) && defined(__aarch64__)
    __asm__("" : "+w"(p.data));
#endif
    return p;
  }
};

/// The aligned pairwise tree over chunk numbers (core::sparse_tree_stack) for whole rows of
/// `width` values at once: push(chunk) takes the chunk partial written to slot(); combining is
/// element-wise +, so every column gets exactly sparse_tree_stack's operations. Slots are
/// swapped by pointer, never copied; the buffers are kept for the next target.
template <class A>
class row_tree_stack {
 public:
  explicit row_tree_stack(std::size_t width) : width_(width) {}
  void reset() { size_ = 0; }
  /// Where the next chunk partial goes.
  A* slot() {
    while (ptr_.size() <= static_cast<std::size_t>(size_)) {
      store_.emplace_back(new A[width_]);
      ptr_.push_back(store_.back().get());
    }
    return ptr_[static_cast<std::size_t>(size_)];
  }
  /// A spare buffer of width values owned by the stack (for push_buffer).
  A* buffer() {
    store_.emplace_back(new A[width_]);
    return store_.back().get();
  }
  /// Pushes buf (from buffer() or an earlier push_buffer) as the partial of `chunk`; returns a
  /// free buffer in exchange.
  A* push_buffer(std::uint64_t chunk, A* buf) {
    A* spare = slot();
    ptr_[static_cast<std::size_t>(size_)] = buf;
    push(chunk);
    return spare;
  }
  /// Pushes the partial in slot() as the partial of `chunk` (increasing chunks).
  void push(std::uint64_t chunk) {
    if (size_ > 0) {
      const int lca = bit_length(last_ ^ chunk);
      while (size_ >= 2 && gap_[size_ - 2] < lca) {
        add_into(ptr_[static_cast<std::size_t>(size_ - 2)], ptr_[static_cast<std::size_t>(size_ - 1)]);
        std::swap(ptr_[static_cast<std::size_t>(size_ - 1)], ptr_[static_cast<std::size_t>(size_)]);
        --size_;
      }
      gap_[size_ - 1] = static_cast<unsigned char>(lca);
    }
    ++size_;
    last_ = chunk;
  }
  /// The root (requires at least one push): a pointer to width values, valid until the next push.
  const A* finish() {
    A* v = ptr_[static_cast<std::size_t>(size_ - 1)];
    for (int i = size_ - 2; i >= 0; --i) add_right(ptr_[static_cast<std::size_t>(i)], v);  // v = value_i + v
    return v;
  }

 private:
  void add_into(A* __restrict l, const A* __restrict r) const {
    for (std::size_t c = 0; c < width_; ++c) l[c] = l[c] + r[c];
  }
  void add_right(const A* __restrict l, A* __restrict r) const {
    for (std::size_t c = 0; c < width_; ++c) r[c] = l[c] + r[c];
  }
  static int bit_length(std::uint64_t x) {
    int n = 0;
    while (x) {
      ++n;
      x >>= 1;
    }
    return n;
  }
  std::size_t width_;
  std::vector<std::unique_ptr<A[]>> store_;
  std::vector<A*> ptr_;
  unsigned char gap_[66] = {};
  int size_ = 0;
  std::uint64_t last_ = 0;
};

/// dst[c] = src[c] (widened) and dst[c] = dst[c] + src[c], c < width, for Arch's vectors.
template <class A, class Arch, class S>
inline void row_copy(A* __restrict dst, const S* __restrict src, std::size_t width) {
  using V = column_vec<A, Arch>;
  std::size_t c = 0;
  for (; c + V::size <= width; c += V::size) V::store(dst + c, V::load(src + c));
  for (; c < width; ++c) dst[c] = A(core::widen(src[c]));
}
template <class A, class Arch, class S>
inline void row_add(A* __restrict dst, const S* __restrict src, std::size_t width) {
  using V = column_vec<A, Arch>;
  std::size_t c = 0;
  for (; c + V::size <= width; c += V::size) V::store(dst + c, V::load(dst + c) + V::load(src + c));
  for (; c < width; ++c) dst[c] = dst[c] + A(core::widen(src[c]));
}

inline void prefetch_row(const void* p, std::size_t bytes) {
#if defined(__GNUC__) || defined(__clang__)
  const char* c = static_cast<const char*>(p);
  for (std::size_t k = 0; k < bytes; k += 64) __builtin_prefetch(c + k);
#else
  (void)p;
  (void)bytes;
#endif
}

/// For every target k with contributions: row = the canonical combination of the rows
/// value(j, c) (a pointer to columns c.. of contribution j, type A or bfloat16) over its
/// positions; then out_row(k)[c] = out + row (accumulate) or = row. Exact tier: the correctly
/// rounded (old +) exact sum per column. Rows are read whole, once, in group order: inside a
/// chunk they are added into the chunk's partial row, the chunk partials combine in a
/// row_tree_stack (the same operations per column as core::scatter_combiner).
template <class A, class Groups, class RowPtr, class OutRow>
void rows_combine(const Groups& g, std::size_t n_out, std::size_t width, int threads, isa simd, tier t,
                  RowPtr value, OutRow out_row, bool accumulate) {
  using S = typename std::remove_cv<typename std::remove_pointer<decltype(value(0, 0))>::type>::type;
  if (t == tier::exact) {
    // Fast path per column (core::exact_sum_with_start's): the running double sum of exact
    // terms never rounds (every TwoSum error zero) and stays finite, and is not zero; then
    // it is the exact sum, rounded once. Any other column takes exact_sum_with_start itself.
    parallel_chunks(threads, canonical_chunks{n_out, 2048}, [&](std::uint64_t t0, std::uint64_t t1) {
      std::unique_ptr<double[]> sum(new double[width]);
      std::unique_ptr<unsigned char[]> bad(new unsigned char[width]);
      for (std::uint64_t kk = t0; kk < t1; ++kk) {
        const std::size_t k = static_cast<std::size_t>(kk);
        const std::uint64_t b = g.start[k], e = g.start[k + 1];
        if (b == e) continue;
        A* o = out_row(k);
        double* __restrict s = sum.get();
        unsigned char* __restrict f = bad.get();
        for (std::size_t c = 0; c < width; ++c) {
          const double x = accumulate ? double(o[c]) : 0.0;
          s[c] = x;
          f[c] = !(x - x == 0.0);
        }
        for (std::uint64_t q = b; q < e; ++q) {
          if (q + 2 < e) prefetch_row(value(g.position_at(q + 2), 0), width * sizeof(S));
          const S* __restrict r = value(g.position_at(q), 0);
          for (std::size_t c = 0; c < width; ++c) {
            const double x = double(A(core::widen(r[c])));
            const double tt = s[c] + x;
            const double bp = tt - s[c];
            const double err = (s[c] - (tt - bp)) + (x - bp);
            f[c] |= static_cast<unsigned char>(!(err == 0.0) | !(x - x == 0.0) | !(tt - tt == 0.0));
            s[c] = tt;
          }
        }
        for (std::size_t c = 0; c < width; ++c) {
          if (!f[c] && s[c] != 0.0) {
            o[c] = A(s[c]);
            continue;
          }
          o[c] = exact_sum_with_start<A>(o[c], accumulate, static_cast<std::size_t>(e - b), [&](std::size_t q) {
            return A(core::widen(*value(g.position_at(b + q), c)));
          });
        }
      }
    });
    return;
  }
  with_arch(simd, [&](auto arch) {
    using Arch = decltype(arch);
    parallel_chunks(threads, canonical_chunks{n_out, 2048}, [&](std::uint64_t t0, std::uint64_t t1) {
      row_tree_stack<A> st(width);
      for (std::uint64_t kk = t0; kk < t1; ++kk) {
        const std::size_t k = static_cast<std::size_t>(kk);
        const std::uint64_t b = g.start[k], e = g.start[k + 1];
        if (b == e) continue;
        st.reset();
        std::uint64_t j = g.position_at(b);
        std::uint64_t chunk = j / core::scatter_chunk;
        A* p = st.slot();
        row_copy<A, Arch>(p, value(j, 0), width);
        for (std::uint64_t q = b + 1; q < e; ++q) {
          if (q + 2 < e) prefetch_row(value(g.position_at(q + 2), 0), width * sizeof(S));
          j = g.position_at(q);
          const std::uint64_t ch = j / core::scatter_chunk;
          if (ch != chunk) {
            st.push(chunk);
            chunk = ch;
            p = st.slot();
            row_copy<A, Arch>(p, value(j, 0), width);
          } else {
            row_add<A, Arch>(p, value(j, 0), width);
          }
        }
        st.push(chunk);
        const A* r = st.finish();
        A* o = out_row(k);
        for (std::size_t c = 0; c < width; ++c) o[c] = core::canonicalize(accumulate ? A(o[c] + r[c]) : r[c]);
      }
    });
  });
}

/// embedding_bag's forward combine: bag b's positions j give rows table[indices[j], :]
/// (times weights[j], rounded, when given); sum (fixed_order or exact) or max. Tab is A, or
/// bfloat16 with A float (widened exactly).
template <class A, class I, class Tab, class OutRow>
void bag_rows_combine(const contiguous_groups& g, std::size_t n_bags, std::size_t width, int threads, isa simd,
                      tier t, bool is_max, const Tab* table, const I* indices, const A* weights, OutRow out_row) {
  if (is_max) {
    for_each_target(n_bags, threads, [&](std::size_t b) {
      const std::uint64_t s = g.start[b], e = g.start[b + 1];
      if (s == e) return;
      A* o = out_row(b);
      for (std::size_t c = 0; c < width; ++c) {
        core::scatter_combiner<A, core::maximum> comb;
        for (std::uint64_t j = s; j < e; ++j)
          comb.push(j, A(core::widen(table[static_cast<std::size_t>(indices[j]) * width + c])));
        o[c] = core::canonicalize(comb.finish());  // a one-row bag's NaN passes the combiner as it is
      }
    });
    return;
  }
  if (t == tier::exact) {
    for_each_target(n_bags, threads, [&](std::size_t b) {
      const std::uint64_t s = g.start[b], e = g.start[b + 1];
      if (s == e) return;
      A* o = out_row(b);
      for (std::size_t c = 0; c < width; ++c) {
        core::exact_accumulator<A> acc;
        for (std::uint64_t j = s; j < e; ++j) {
          const A v = core::widen(table[static_cast<std::size_t>(indices[j]) * width + c]);
          if (weights)
            acc.add_product(v, weights[j]);
          else
            acc.add(v);
        }
        o[c] = acc.round();
      }
    });
    return;
  }
  with_arch(simd, [&](auto arch) {
    using V = column_vec<A, decltype(arch)>;
    using S = column_vec<A, scalar_arch>;
    for_each_target(n_bags, threads, [&](std::size_t b) {
      const std::uint64_t s = g.start[b], e = g.start[b + 1];
      if (s == e) return;
      A* o = out_row(b);
      std::size_t c = 0;
      for (; c + V::size <= width; c += V::size) {
        core::scatter_combiner<typename V::type> comb;
        for (std::uint64_t j = s; j < e; ++j) {
          typename V::type v = V::load(table + static_cast<std::size_t>(indices[j]) * width + c);
          if (weights) v = V::mul_rn(v, V::broadcast(weights[j]));
          comb.push(j, v);
        }
        V::store(o + c, comb.finish());
      }
      for (; c < width; ++c) {
        core::scatter_combiner<A> comb;
        for (std::uint64_t j = s; j < e; ++j) {
          A v = core::widen(table[static_cast<std::size_t>(indices[j]) * width + c]);
          if (weights) v = S::mul_rn(v, weights[j]);
          comb.push(j, v);
        }
        o[c] = comb.finish();
      }
      for (std::size_t q = 0; q < width; ++q) o[q] = core::canonicalize(o[q]);
    });
  });
}

/// Dense strategy for 1-D sums into few targets (fixed_order), in cache: aligned groups of
/// 2^k chunks (k from n alone) run on the threads; a group adds K chunks at once, each into its
/// own row of per-target partials started at -0.0 (the identity: K independent dependency
/// chains when many sources hit one target), and pushes the rows into a row_tree_stack; the
/// group roots combine in the same stack at their first chunk numbers, which is the aligned
/// tree over all chunks. out[t] = out[t] + S_t for targets with contributions. A target whose
/// S_t is -0.0 is either untouched or its sum is -0.0 (out + -0.0 = out): only a NaN out[t]
/// tells the two apart (canonicalized when touched), so only then are the indices scanned.
/// The indices are checked on the way (nothing is written to out before the end): returns false,
/// out untouched, when one is outside [0, n_out).
template <class A, class I, class ValueAt>
bool dense_index_add_rows(A* out, std::size_t n_out, const I* idx, std::size_t n, ValueAt value_at, int threads) {
  std::atomic<bool> bad{false};
  constexpr std::uint64_t C = core::scatter_chunk;
  const std::uint64_t chunks = (static_cast<std::uint64_t>(n) + C - 1) / C;
  std::uint64_t group = 1;  // chunks per group: at most 16 groups
  while ((chunks + group - 1) / group > 16) group *= 2;
  const std::uint64_t groups = (chunks + group - 1) / group;
  std::vector<A> root(static_cast<std::size_t>(groups) * n_out);
  auto run_group = [&](auto k_tag, std::uint64_t gi) {
    constexpr std::size_t K = decltype(k_tag)::value;
    row_tree_stack<A> st(n_out);
    A* row[K];
    for (std::size_t j = 0; j < K; ++j) row[j] = st.buffer();
    const std::uint64_t c_end = std::min(chunks, (gi + 1) * group);
    std::uint64_t c = gi * group;
    for (; c + K <= c_end && (c + K) * C <= n; c += K) {
      for (std::size_t j = 0; j < K; ++j) std::fill(row[j], row[j] + n_out, core::negative_zero<A>());
      const std::size_t b = static_cast<std::size_t>(c * C);
      for (std::size_t i = 0; i < C; ++i) {
        for (std::size_t j = 0; j < K; ++j) {
          const std::size_t q = b + j * C + i;
          const std::size_t t = static_cast<std::size_t>(idx[q]);
          if (t >= n_out) {
            bad = true;
            return;
          }
          row[j][t] = row[j][t] + value_at(q);
        }
      }
      for (std::size_t j = 0; j < K; ++j) row[j] = st.push_buffer(c + j, row[j]);
    }
    for (; c < c_end; ++c) {
      std::fill(row[0], row[0] + n_out, core::negative_zero<A>());
      const std::size_t b = static_cast<std::size_t>(c * C), e = static_cast<std::size_t>(std::min<std::uint64_t>(n, (c + 1) * C));
      for (std::size_t q = b; q < e; ++q) {
        const std::size_t t = static_cast<std::size_t>(idx[q]);
        if (t >= n_out) {
          bad = true;
          return;
        }
        row[0][t] = row[0][t] + value_at(q);
      }
      row[0] = st.push_buffer(c, row[0]);
    }
    const A* r = st.finish();
    std::copy(r, r + n_out, root.data() + gi * n_out);
  };
  parallel_chunks(threads, canonical_chunks{groups, 1}, [&](std::uint64_t g0, std::uint64_t g1) {
    for (std::uint64_t gi = g0; gi < g1; ++gi) {
      if (n_out <= 4096)
        run_group(std::integral_constant<std::size_t, 8>{}, gi);
      else
        run_group(std::integral_constant<std::size_t, 4>{}, gi);
    }
  });
  if (bad) return false;
  row_tree_stack<A> st(n_out);
  for (std::uint64_t gi = 0; gi < groups; ++gi) {
    std::copy(root.data() + gi * n_out, root.data() + (gi + 1) * n_out, st.slot());
    st.push(gi * group);
  }
  const A* s = st.finish();
  std::vector<unsigned char> touched;
  for (std::size_t t = 0; t < n_out; ++t) {
    if (core::detail::same_bits(s[t], core::negative_zero<A>()) && out[t] != out[t]) {
      if (touched.empty()) {
        touched.assign(n_out, 0);
        for (std::size_t i = 0; i < n; ++i) touched[static_cast<std::size_t>(idx[i])] = 1;
      }
      if (!touched[t]) continue;
    }
    out[t] = core::canonicalize(out[t] + s[t]);
  }
  return true;
}

/// Dense strategy, exact tier, float values: each thread adds every finite value
/// v = +-m * 2^(E-150) (m the 24-bit significand, E the biased exponent, 1 for subnormals) as
/// the integer +-(m << (E % 16)) into bin E / 16 of its target (16 int64 bins: below 2^39 per
/// value, so 2^24 values per target before a carry could be lost). A block of values is first
/// decoded into (bin slot, integer) pairs without branches (vectorizable), then added; a block
/// with a NaN or Inf is added one by one, those values aside. Every 2^24 sources the bins fold
/// into per-target exact accumulators (add_scaled_integer), which merge across threads with the
/// old value and round once: the exact_accumulator's value, so its bits. Bins are bin-major
/// (bin k of every target together), so the few bins real data hits stay in L1. Whether a
/// target had values at all, and whether they were all -0.0 (the signed-zero rule), matters
/// only when its bins sum to zero: those targets (rare) are found with one more pass. Targets
/// target_at(i) (as unsigned: a negative index is huge) are checked on the way: false (out
/// untouched) when one is outside [0, n_out).
template <class TargetAt, class ValueAt>
bool dense_index_add_exact_binned(float* out, std::size_t n_out, TargetAt target_at, std::size_t n, ValueAt value_at,
                                  int threads) {
  constexpr std::size_t nb = 16, block = 256;
  const int th = static_cast<int>(std::max<std::uint64_t>(1, std::min<std::uint64_t>(static_cast<std::uint64_t>(threads),
                                                                                     (n + 65535) >> 16)));
  std::vector<std::vector<core::exact_accumulator<float>>> acc(static_cast<std::size_t>(th));
  std::atomic<bool> bad{false};
  thread_pool::instance().run(th, [&](int id) {
    const std::size_t b0 = n * static_cast<std::size_t>(id) / static_cast<std::size_t>(th);
    const std::size_t e0 = n * static_cast<std::size_t>(id + 1) / static_cast<std::size_t>(th);
    auto& a = acc[static_cast<std::size_t>(id)];
    a.resize(n_out);
    std::unique_ptr<std::int64_t[]> bins(new std::int64_t[n_out * nb]);
    std::int64_t* __restrict bn = bins.get();
    alignas(64) std::uint32_t slot[block];
    alignas(64) std::int64_t val[block];
    for (std::size_t b = b0; b < e0; b += (std::size_t(1) << 24)) {
      const std::size_t e = std::min(e0, b + (std::size_t(1) << 24));
      std::fill(bn, bn + n_out * nb, std::int64_t(0));
      for (std::size_t i0 = b; i0 < e; i0 += block) {
        const std::size_t m = std::min(block, e - i0);
        std::uint32_t special = 0;
        std::uint64_t out_of_range = 0;
        for (std::size_t j = 0; j < m; ++j) {
          const std::uint64_t t = target_at(i0 + j);
          const float v = value_at(i0 + j);
          std::uint32_t u;
          std::memcpy(&u, &v, sizeof u);
          const std::uint32_t be = (u >> 23) & 255u;
          const std::uint32_t E = be | static_cast<std::uint32_t>(be == 0);
          const std::int64_t mag = static_cast<std::int64_t>((u & 0x7fffffu) | (static_cast<std::uint32_t>(be != 0) << 23))
                                   << (E & 15u);
          const std::int64_t neg = -static_cast<std::int64_t>(u >> 31);  // 0 or -1
          val[j] = (mag ^ neg) - neg;
          slot[j] = (E >> 4) * static_cast<std::uint32_t>(n_out) + static_cast<std::uint32_t>(t);  // bin-major
          special |= static_cast<std::uint32_t>(be == 255u);
          out_of_range |= static_cast<std::uint64_t>(t >= n_out);
        }
        if (out_of_range) {
          bad = true;
          return;
        }
        if (special) {
          for (std::size_t j = 0; j < m; ++j) {
            const float v = value_at(i0 + j);
            if (!(v - v == 0.0f))
              a[static_cast<std::size_t>(target_at(i0 + j))].add(v);
            else
              bn[slot[j]] += val[j];
          }
          continue;
        }
        for (std::size_t j = 0; j < m; ++j) bn[slot[j]] += val[j];
      }
      for (std::size_t k = 0; k < nb; ++k)
        for (std::size_t t = 0; t < n_out; ++t)
          if (bn[k * n_out + t]) a[t].add_scaled_integer(bn[k * n_out + t], 16 * static_cast<int>(k) - 150);
    }
  });
  if (bad) return false;
  // A target whose accumulators saw nothing (no flags: all its bins summed to zero, no NaN or
  // Inf) has no values, or values whose exact sum is zero: one pass over the sources of those
  // targets (rare) tells which, and whether every value was -0.0 (the signed-zero rule).
  std::vector<unsigned char> quiet(n_out, 0);
  bool any_quiet = false;
  for (std::size_t k = 0; k < n_out; ++k) {
    bool flagged = false;
    for (int id = 0; id < th; ++id) flagged = flagged || acc[static_cast<std::size_t>(id)][k].flags() != 0;
    if (!flagged) quiet[k] = 1, any_quiet = true;
  }
  std::vector<unsigned char> hit, non_negzero;
  if (any_quiet) {
    hit.assign(n_out, 0);
    non_negzero.assign(n_out, 0);
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t k = static_cast<std::size_t>(target_at(i));
      if (quiet[k]) {
        const float v = value_at(i);
        hit[k] = 1;
        if (!(v == 0.0f && std::signbit(v))) non_negzero[k] = 1;
      }
    }
  }
  for_each_target(n_out, threads, [&](std::size_t k) {
    if (quiet[k] && !hit[k]) return;  // no values: out[k] untouched
    core::exact_accumulator<float> total;
    total.add(out[k]);
    for (int id = 0; id < th; ++id) total.merge(acc[static_cast<std::size_t>(id)][k]);
    if (quiet[k]) total.note_inputs(true, !non_negzero[k], false, false, false);
    out[k] = total.round();
  });
  return true;
}

/// cond ? a : b by bit masks, for conditions on data where a branch would often miss (the
/// compilers turn the plain ?: on floats into one).
template <class A>
A select_bits(bool cond, A a, A b) {
  using U = typename std::conditional<sizeof(A) == 4, std::uint32_t, std::uint64_t>::type;
  static_assert(sizeof(A) == sizeof(U), "select_bits: float or double");
  U ua, ub;
  std::memcpy(&ua, &a, sizeof a);
  std::memcpy(&ub, &b, sizeof b);
  const U m = U(0) - static_cast<U>(cond);
  const U r = (ua & m) | (ub & ~m);
  A out;
  std::memcpy(&out, &r, sizeof out);
  return out;
}

/// cond ? a : b without a branch, kept in the floating-point registers (select_bits goes
/// through the integer ones, a few cycles more on a chain of dependent adds).
inline float select_fp(bool cond, float a, float b) {
#if defined(__SSE2__) && (defined(__x86_64__) || defined(_M_X64))
  const __m128 m = _mm_castsi128_ps(_mm_cvtsi32_si128(-static_cast<int>(cond)));
  return _mm_cvtss_f32(_mm_or_ps(_mm_and_ps(m, _mm_set_ss(a)), _mm_andnot_ps(m, _mm_set_ss(b))));
#else
  return select_bits(cond, a, b);
#endif
}
inline double select_fp(bool cond, double a, double b) {
#if defined(__SSE2__) && (defined(__x86_64__) || defined(_M_X64))
  const __m128d m = _mm_castsi128_pd(_mm_cvtsi64_si128(-static_cast<long long>(cond)));
  return _mm_cvtsd_f64(_mm_or_pd(_mm_and_pd(m, _mm_set_sd(a)), _mm_andnot_pd(m, _mm_set_sd(b))));
#else
  return select_bits(cond, a, b);
#endif
}

/// exact_sum_with_start(start, true, e - b, values b .. e-1) for a long run, with the same bits,
/// in eight independent double sums (a loop that vectorizes): while every TwoSum error - of
/// each term's add, and of the adds that join the eight sums and the start - is zero,
/// everything was finite and each sum is exact, so their total is the exact sum in whatever
/// order they were added; its rounding is the result, and a zero total takes the exact tier's
/// signed-zero rule (-0 only if the start and every term are -0). Otherwise
/// exact_sum_with_start decides.
/// Cuts [x, y) into four streams of about equal length, each cut moved forward to where the
/// target changes (a run of one target stays in one stream): stream u is [cut[u], cut[u + 1]).
template <class Target>
inline void four_stream_cuts(std::size_t x, std::size_t y, Target target, std::size_t (&cut)[5]) {
  cut[0] = x;
  for (int u = 0; u < 4; ++u) {
    std::size_t to = u == 3 ? y : std::max(cut[u], x + (y - x) * static_cast<std::size_t>(u + 1) / 4);
    while (to < y && to > x && target(to) == target(to - 1)) ++to;
    cut[u + 1] = to;
  }
}

/// Runs step(stream) on four independent streams (each with positions q < end) interleaved while
/// all four have work, then each to its end: the streams' dependency chains overlap, and each
/// stream's own steps keep their order.
template <class Stream, class Step>
inline void run_four_streams(Stream (&st)[4], Step& step) {
  while (st[0].q < st[0].end && st[1].q < st[1].end && st[2].q < st[2].end && st[3].q < st[3].end) {
    step(st[0]);
    step(st[1]);
    step(st[2]);
    step(st[3]);
  }
  for (int u = 0; u < 4; ++u)
    while (st[u].q < st[u].end) step(st[u]);
}

template <class A, class ValueAt>
A exact_long_run(A start, std::size_t b, std::size_t e, ValueAt value) {
  constexpr int L = 8;
  double s[L] = {};
  std::uint64_t broken = 0, non_negzero = 0;
  const std::uint64_t negzero = std::uint64_t(1) << 63;
  std::size_t q = b;
  for (; q + L <= e; q += L)
    for (int j = 0; j < L; ++j) {
      const double x = double(A(value(q + static_cast<std::size_t>(j))));
      const double t = s[j] + x;
      const double bp = t - s[j];
      const double err = (s[j] - (t - bp)) + (x - bp);
      std::uint64_t xb;
      std::memcpy(&xb, &x, sizeof xb);
      broken |= static_cast<std::uint64_t>(err != 0.0);
      non_negzero |= static_cast<std::uint64_t>(xb != negzero);
      s[j] = t;
    }
  for (; q < e; ++q) {  // the tail, into the first sum
    const double x = double(A(value(q)));
    const double t = s[0] + x;
    const double bp = t - s[0];
    const double err = (s[0] - (t - bp)) + (x - bp);
    std::uint64_t xb;
    std::memcpy(&xb, &x, sizeof xb);
    broken |= static_cast<std::uint64_t>(err != 0.0);
    non_negzero |= static_cast<std::uint64_t>(xb != negzero);
    s[0] = t;
  }
  double total = double(start);
  if (!(total - total == 0.0)) broken = 1;
  for (int j = 0; j < L && !broken; ++j) {
    const double t = total + s[j];
    const double bp = t - total;
    const double err = (total - (t - bp)) + (s[j] - bp);
    broken |= static_cast<std::uint64_t>(err != 0.0);
    total = t;
  }
  if (broken)
    return exact_sum_with_start<A>(start, true, e - b, [&](std::uint64_t k) { return A(value(b + static_cast<std::size_t>(k))); });
  if (total == 0.0) {
    const bool start_negzero = start == A(0) && core::detail::negative_bits(start);
    return (start_negzero && !non_negzero) ? -A(0) : A(0);
  }
  return A(total);
}

/// The exact tier's sorted path on a block [x, y) of whole runs (at most a chunk): each run's
/// start out[t] and terms summed in double in four independent streams without branches, the
/// way exact_sum_with_start's fast case does (and so with the same bits): while every TwoSum
/// error is zero and everything is finite, that sum is exact and its rounding is the result.
/// A run that breaks the rule (a flag) is redone by exact_sum_with_start (one term: one IEEE
/// add, the correctly rounded sum). The stores come last, the last one of a run stays.
template <class A, class I, class ValueAt>
void exact_sorted_block(A* out, const I* idx, ValueAt value, std::size_t x, std::size_t y) {
  auto target = [idx](std::size_t i) { return static_cast<std::size_t>(idx[i]); };
  A res[core::scatter_chunk];
  unsigned char bad[core::scatter_chunk];
  struct stream {
    std::size_t q, end, tp;
    double s;
    unsigned flag;
  };
  stream st[4];
  std::size_t cut[5];
  four_stream_cuts(x, y, target, cut);
  for (int u = 0; u < 4; ++u) st[u] = stream{cut[u], cut[u + 1], ~std::size_t(0), 0.0, 0u};
  unsigned any = 0;
  auto step = [&](stream& z) {
    const std::size_t k = target(z.q);
    const double v = double(A(value(z.q)));
    const bool fresh = k != z.tp;
    const double o = double(out[k]);
    const double base = select_fp(fresh, o, z.s);
    const double t = base + v;
    const double bp = t - base;
    const double err = (base - (t - bp)) + (v - bp);
    // Zero error also says that everything was finite: an Inf or NaN in base, v or t makes
    // err a NaN.
    const unsigned broken = static_cast<unsigned>(err != 0.0);
    z.flag = (z.flag & static_cast<unsigned>(!fresh)) | broken;
    any |= broken;
    z.s = t;
    res[z.q - x] = A(t);
    bad[z.q - x] = static_cast<unsigned char>(z.flag);
    z.tp = k;
    ++z.q;
  };
  run_four_streams(st, step);
  for (std::size_t q = x; any && q < y; ++q) {
    if (!bad[q - x] || (q + 1 < y && target(q + 1) == target(q))) continue;
    const std::size_t k = target(q);
    std::size_t b = q;
    while (b > x && target(b - 1) == k) --b;
    if (b == q)
      res[q - x] = core::canonicalize(out[k] + A(value(q)));
    else
      res[q - x] = exact_sum_with_start<A>(out[k], true, q + 1 - b, [&](std::uint64_t j) { return A(value(b + j)); });
  }
  for (std::size_t q = x; q < y; ++q) out[target(q)] = res[q - x];
}

#if defined(__AVX512F__) && defined(__AVX512DQ__) && XSIMD_WITH_AVX512BW
/// AVX-512 lanes of sorted_runs_avx512: 16 floats or 8 doubles, indices as 64-bit lanes.
template <class A>
struct sorted_run_lanes;
template <>
struct sorted_run_lanes<float> {
  static constexpr unsigned width = 16;
  using V = __m512;
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static V splat(float x) { return _mm512_set1_ps(x); }
  /// [c, p0, ..., p14]: each lane gets its left neighbour's value, lane 0 gets c (a splat).
  static V shift_in(V p, V c) {
    return _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(p), _mm512_castps_si512(c), 15));
  }
  static V mask_add(V keep, unsigned k, V a, V b) { return _mm512_mask_add_ps(keep, static_cast<__mmask16>(k), a, b); }
  /// The lanes of k, packed to the front, stored at p (a whole vector is written).
  static void store_compressed(float* p, unsigned k, V v) { _mm512_storeu_ps(p, _mm512_maskz_compress_ps(static_cast<__mmask16>(k), v)); }
  static float last(V p) { return _mm_cvtss_f32(_mm_shuffle_ps(_mm512_extractf32x4_ps(p, 3), _mm512_extractf32x4_ps(p, 3), 0xff)); }
};
template <>
struct sorted_run_lanes<double> {
  static constexpr unsigned width = 8;
  using V = __m512d;
  static V load(const double* p) { return _mm512_loadu_pd(p); }
  static V splat(double x) { return _mm512_set1_pd(x); }
  static V shift_in(V p, V c) {
    return _mm512_castsi512_pd(_mm512_alignr_epi64(_mm512_castpd_si512(p), _mm512_castpd_si512(c), 7));
  }
  static V mask_add(V keep, unsigned k, V a, V b) { return _mm512_mask_add_pd(keep, static_cast<__mmask8>(k), a, b); }
  static void store_compressed(double* p, unsigned k, V v) { _mm512_storeu_pd(p, _mm512_maskz_compress_pd(static_cast<__mmask8>(k), v)); }
  static double last(V p) { return _mm_cvtsd_f64(_mm_unpackhi_pd(_mm512_extractf64x2_pd(p, 3), _mm512_extractf64x2_pd(p, 3))); }
};
/// Eight indices as 64-bit lanes (64-bit indices as they are, 32-bit ones widened).
template <class I>
__m512i sorted_run_indices(const I* p) {
  if constexpr (sizeof(I) == 8) return _mm512_loadu_si512(static_cast<const void*>(p));
  else if constexpr (std::is_signed<I>::value) return _mm512_cvtepi32_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  else return _mm512_cvtepu32_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
/// The whole runs of positions [x, y) (at most a chunk) of a sorted 1-D index_add,
/// fixed_order: each run, a target's whole group inside one chunk, is its left fold
/// p = v_b; p = p + v_(b+1); ...; then out[t] = canonicalize(out[t] + p). A vector of positions
/// at a time: lanes that start a run (their index differs from the one before) take their
/// value; the others take their left neighbour's p + their value, in rounds: a round finishes
/// the lanes whose neighbour is finished, so lane i gets exactly the scalar fold's
/// p_(i-1) + v_i (as many rounds as the longest run piece in the vector). The lanes that end a
/// run are packed (compress) into a list of (target, p); a run that continues into the next
/// vector carries its p. Then one plain loop updates out from the list (targets distinct and
/// increasing). Same operations as the scalar path, so the same bits; y must start a new run
/// (or end the chunk), and every target must be below 2^32.
template <class A, class I>
void sorted_runs_avx512(A* out, const I* idx, const A* src, std::size_t x, std::size_t y) {
  using L = sorted_run_lanes<A>;
  constexpr unsigned W = L::width, H = W / 8;
  constexpr unsigned all = W == 16 ? 0xffffu : 0xffu;
  alignas(64) std::uint32_t tgt[core::scatter_chunk + 16];  // targets below 2^32 (the caller checks)
  alignas(64) A sum[core::scatter_chunk + 16];
  std::size_t m = 0, m0 = 0;  // the list's length, and how much of it has updated out
  std::int64_t carry_t = -1;  // no index is negative (validated)
  A carry_p = A(0);
  std::size_t q = x;
  for (; q + W <= y; q += W) {
    __m512i vi[H];
    for (unsigned h = 0; h < H; ++h) vi[h] = sorted_run_indices(idx + q + 8 * h);
    const std::int64_t next_t = q + W < y ? static_cast<std::int64_t>(idx[q + W]) : -1;
    unsigned start = 0, end = 0;
    __m512i before = _mm512_set1_epi64(carry_t);
    for (unsigned h = 0; h < H; ++h) {
      const __m512i prev = _mm512_alignr_epi64(vi[h], before, 7);
      const __m512i after = h + 1 < H ? vi[h + 1] : _mm512_set1_epi64(next_t);
      const __m512i next = _mm512_alignr_epi64(after, vi[h], 1);
      start |= static_cast<unsigned>(_mm512_cmpneq_epi64_mask(vi[h], prev)) << (8 * h);
      end |= static_cast<unsigned>(_mm512_cmpneq_epi64_mask(vi[h], next)) << (8 * h);
      before = vi[h];
    }
    const typename L::V v = L::load(src + q), c = L::splat(carry_p);
    typename L::V p = v;
    unsigned done = start, pending = ~start & all;
    auto round = [&] {  // finishes the pending lanes whose left neighbour (lane 0: c) is done
      const unsigned ready = pending & ((done << 1) | 1u);
      p = L::mask_add(p, ready, L::shift_in(p, c), v);
      done |= ready;
      pending &= ~ready;
    };
    // Three rounds without a test (short runs: their count would be a branch that misses),
    // then as many as the vector's longest run piece needs.
    round();
    round();
    round();
    while (pending != 0) round();
    L::store_compressed(sum + m, end, p);
    __m512i t32 = _mm512_castsi256_si512(_mm512_cvtepi64_epi32(vi[0]));
    if constexpr (H == 2) t32 = _mm512_inserti64x4(t32, _mm512_cvtepi64_epi32(vi[1]), 1);
    _mm512_storeu_si512(static_cast<void*>(tgt + m), _mm512_maskz_compress_epi32(static_cast<__mmask16>(end), t32));
    m += static_cast<std::size_t>(__builtin_popcount(end));
    carry_t = static_cast<std::int64_t>(idx[q + W - 1]);
    carry_p = L::last(p);
    if (m - m0 >= 128) {  // the updates of the last vectors, while the next ones load
      for (; m0 < m; ++m0) {
        A& o = out[static_cast<std::size_t>(tgt[m0])];
        o = core::canonicalize(o + sum[m0]);
      }
    }
  }
  for (; q < y; ++q) {  // the tail, one position at a time
    const std::int64_t k = static_cast<std::int64_t>(idx[q]);
    carry_p = k == carry_t ? A(carry_p + src[q]) : src[q];
    carry_t = k;
    if (q + 1 == y || static_cast<std::int64_t>(idx[q + 1]) != k) {
      tgt[m] = static_cast<std::uint32_t>(k);
      sum[m++] = carry_p;
    }
  }
  for (; m0 < m; ++m0) {
    A& o = out[static_cast<std::size_t>(tgt[m0])];
    o = core::canonicalize(o + sum[m0]);
  }
}
#endif

/// 1-D index_add when idx is non-decreasing (sorted: segment sums, all to one target): every
/// target's contributions are one run of consecutive positions, so no grouping is needed.
/// fixed_order: each canonical chunk of 4096 positions (threads take chunks) combines its runs
/// sequentially (step 2 of core/scatter.hpp). A run that lies strictly inside a chunk is its
/// target's whole group: out[t] = out[t] + S_t at once, without branches (old and the partial
/// restart with a select where the target changes; the store of the run's last position is
/// the one that stays). The first and the last run of a chunk may continue in the chunks
/// around it: their chunk partials are recorded, and afterwards, in chunk order, the records of
/// one target combine by the tree over chunks (push_chunk_partial), then update out.
/// With simd == isa::avx512 and the values in an array of A (direct), the runs in between go
/// through sorted_runs_avx512 (same operations, same bits).
/// exact: threads take ranges of whole runs (cut where the target changes); each run gives
/// out[t] = the rounded out[t] + exact sum (one contribution: one IEEE add).
template <class A, class I, class ValueAt>
void sorted_index_add(A* out, const I* idx, std::size_t n, ValueAt value, tier t, int threads, isa simd = isa::scalar,
                      const A* direct = nullptr) {
  if (n == 0) return;
  auto target = [idx](std::size_t i) { return static_cast<std::size_t>(idx[i]); };
  if (t == tier::exact) {
    const int parts = threads_for_work(threads, n, std::uint64_t(1) << 16);
    std::vector<std::size_t> cut(static_cast<std::size_t>(parts) + 1, n);
    cut[0] = 0;
    for (int k = 1; k < parts; ++k) {
      std::size_t c = std::max(cut[static_cast<std::size_t>(k - 1)], n * static_cast<std::size_t>(k) / static_cast<std::size_t>(parts));
      if (c > 0 && c < n) c = static_cast<std::size_t>(std::upper_bound(idx + c, idx + n, idx[c - 1]) - idx);
      cut[static_cast<std::size_t>(k)] = c;
    }
    thread_pool::instance().run(parts, [&](int id) {
      const std::size_t end = cut[static_cast<std::size_t>(id) + 1];
      auto run_end = [&](std::size_t i) { return static_cast<std::size_t>(std::upper_bound(idx + i, idx + end, idx[i]) - idx); };
      for (std::size_t x = cut[static_cast<std::size_t>(id)]; x < end;) {
        // A block of whole runs, at most a chunk long; a longer run alone, straight.
        std::size_t y = std::min(end, x + static_cast<std::size_t>(core::scatter_chunk));
        if (y < end && idx[y - 1] == idx[y]) y = static_cast<std::size_t>(std::lower_bound(idx + x, idx + y, idx[y - 1]) - idx);
        if (y == x) {
          y = run_end(x);
          const std::size_t k = target(x);
          out[k] = exact_long_run<A>(out[k], x, y, value);
          x = y;
          continue;
        }
        exact_sorted_block<A>(out, idx, value, x, y);
        x = y;
      }
    });
    return;
  }
  const canonical_chunks chunks{n, core::scatter_chunk};
  const std::size_t nc = static_cast<std::size_t>(chunks.count());
  struct record {
    std::size_t target;
    A partial;
    bool has;
  };
  std::vector<record> rec(2 * nc);
  parallel_chunks(threads, chunks, [&](std::uint64_t cb, std::uint64_t ce) {
    const std::size_t b = static_cast<std::size_t>(cb), e = static_cast<std::size_t>(ce);
    const std::size_t c = b / core::scatter_chunk;
    // The first run.
    const std::size_t t0 = target(b);
    A s = A(value(b));
    std::size_t i = b + 1;
    while (i < e && target(i) == t0) s = s + A(value(i++));
    rec[2 * c] = record{t0, s, true};
    rec[2 * c + 1].has = false;
    if (i == e) return;
    // The last run: [j, e), after the first (its target is larger).
    std::size_t j = e - 1;
    const std::size_t tl = target(j);
    while (target(j - 1) == tl) --j;
    A sl = A(value(j));
    for (std::size_t q = j + 1; q < e; ++q) sl = sl + A(value(q));
    rec[2 * c + 1] = record{tl, sl, true};
    if (i == j) return;
#if defined(__AVX512F__) && defined(__AVX512DQ__) && XSIMD_WITH_AVX512BW
    if constexpr ((std::is_same<A, float>::value || std::is_same<A, double>::value) && (sizeof(I) == 4 || sizeof(I) == 8)) {
      if (simd == isa::avx512 && direct != nullptr) {
        sorted_runs_avx512<A, I>(out, idx, direct, i, j);
        return;
      }
    }
#endif
    (void)simd;
    (void)direct;
    // The runs in between: whole groups. Cut into four streams at run starts, stepped in
    // lockstep (one stream alone is a chain of dependent selects and adds). Each position's
    // running value goes to a buffer - loads of out only: a store to out here would chain each
    // load to the store before it - then the stores; a run's last store is its result.
    A res[core::scatter_chunk];
    struct stream {
      std::size_t q, end, tp;
      A old, p;
    };
    stream st[4];
    std::size_t cut[5];
    four_stream_cuts(i, j, target, cut);
    for (int u = 0; u < 4; ++u) st[u] = stream{cut[u], cut[u + 1], ~std::size_t(0), A(0), A(0)};
    auto step = [&](stream& x) {
      const std::size_t k = target(x.q);
      const A v = A(value(x.q));
      const bool fresh = k != x.tp;
      x.old = select_fp(fresh, out[k], x.old);
      x.p = select_fp(fresh, v, A(x.p + v));
      res[x.q - i] = core::canonicalize(x.old + x.p);
      x.tp = k;
      ++x.q;
    };
    run_four_streams(st, step);
    for (std::size_t q = i; q < j; ++q) out[target(q)] = res[q - i];
  });
  for (std::size_t r = 0; r < 2 * nc;) {
    if (!rec[r].has) {
      ++r;
      continue;
    }
    const std::size_t k = rec[r].target;
    std::size_t q = r + 1;
    while (q < 2 * nc && (!rec[q].has || rec[q].target == k)) ++q;
    while (!rec[q - 1].has) --q;  // q: one past the last record of k
    A s = rec[r].partial;
    if (q - r > 1) {
      core::scatter_combiner<A> comb;
      for (std::size_t m = r; m < q; ++m)
        if (rec[m].has) comb.push_chunk_partial(m / 2, rec[m].partial);
      s = comb.finish();
    }
    out[k] = core::canonicalize(out[k] + s);
    r = q;
  }
}

/// 1-D index_add: the dense strategies for few targets. Otherwise each target with
/// contributions gets its new value from its group: out[t] + S_t (fixed_order) or the rounded
/// out[t] + exact sum (exact). For many targets the groups come bucket by bucket while they are
/// in cache (radix_for_each_bucket), so out is read and written in order, not at random.
template <class A, class I, class ValueAt>
void index_add_1d(A* out, std::size_t n_out, const I* idx, std::size_t n, ValueAt value, tier t, int threads,
                  const char* what, isa simd = isa::scalar, const A* direct = nullptr) {
  const std::uint64_t chunks = (static_cast<std::uint64_t>(n) + core::scatter_chunk - 1) / core::scatter_chunk;
  if (t == tier::exact && static_cast<std::uint64_t>(n_out) <= 65536 && n_out * 8 <= n) {
    if constexpr (std::is_same<A, float>::value) {
      auto target_at = [idx](std::size_t i) { return static_cast<std::uint64_t>(idx[i]); };
      if (!dense_index_add_exact_binned(out, n_out, target_at, n, [&value](std::size_t i) { return float(value(i)); }, threads))
        validate_indices(idx, n, n_out, threads, what);  // throws
      return;
    }
  }
  if (t != tier::exact && n_out <= 16384 && chunks * n_out <= dense_partials_limit) {
    if (!dense_index_add_rows<A>(out, n_out, idx, n, value, threads))
      validate_indices(idx, n, n_out, threads, what);  // throws
    return;
  }
  if (validate_indices_sorted(idx, n, n_out, threads, what)) {
    const bool narrow = static_cast<std::uint64_t>(n_out) <= (std::uint64_t(1) << 32);  // the AVX-512 path's targets
    sorted_index_add<A>(out, idx, n, value, t, threads, simd, narrow ? direct : nullptr);
    return;
  }
  if (t == tier::exact && static_cast<std::uint64_t>(n_out) <= 65536 && n_out * 8 <= n) {
    dense_index_add_exact<A>(out, n_out, idx, n, value, threads);
    return;
  }
  if (t != tier::exact && chunks * n_out <= dense_partials_limit) {
    dense_index_add<A>(out, n_out, idx, n, value, threads);
    return;
  }
  // A short group - up to two contributions in fixed_order, one in the exact tier - with its
  // count c and first values v0, v1 (used only when c says so): one contribution gives old + v0
  // in both tiers (one IEEE add is the correctly rounded exact sum of two terms: signed zeros,
  // overflow and Inf included); two give old + (v0 + v1), combine_group's two-leaf tree;
  // canonicalize gives the NaN rule. No contribution, or a long group, leaves old. Written
  // with selects: where sources and targets are about as many, most groups are short and their
  // count is random, so branches on it would miss.
  const std::uint64_t short_max = t == tier::exact ? 1 : 2;
  auto short_updated = [short_max](A old, std::uint64_t c, A v0, A v1) {
    const A s = select_bits(c == 2, A(v0 + v1), v0);
    return select_bits(c - 1 < short_max, core::canonicalize(old + s), old);
  };
  // The new value of a target from its group [b, e) (not empty) of grouped positions and values.
  auto updated = [&](A old, std::uint64_t b, std::uint64_t e, auto position_at, auto value_at) {
    if (e - b <= short_max) return short_updated(old, e - b, value_at(b), e - b == 2 ? value_at(b + 1) : A(0));
    if (t == tier::exact)
      return exact_sum_with_start<A>(old, true, e - b, [&](std::uint64_t q) { return value_at(b + q); });
    return core::canonicalize(old + combine_group<A>(b, e, core::plus{}, position_at, value_at));
  };
  auto target_of = [idx](std::size_t i) { return idx[i]; };
  auto value_of = [&value](std::size_t i) { return A(value(i)); };
  // A hot bucket (many contributions per target: skewed indices) skips the sort: per chunk a
  // dense row of the bucket's targets from -0 (the identity) adds the chunk's contributions in
  // position order, and the rows combine by the aligned tree over chunks (row_tree_stack), so
  // each target gets S_t with the sparse tree's operations (absent chunks are -0 rows: x + -0
  // is x), as the dense strategy does for few targets. Cost: about 2 n_t row operations per
  // chunk of the bucket instead of sorting m entries and a tree per long group. The exact tier
  // (float) takes a bucket with at least 8 contributions per target whole too, as the dense
  // binned strategy on its entries (one thread: buckets already run in parallel).
  auto hot_bucket = [&](std::size_t lo_t, std::size_t n_t, const auto* x, std::size_t m) {
    if (m == 0) return true;  // no contribution: every target keeps its value
    if (t == tier::exact) {
      if constexpr (std::is_same<A, float>::value) {
        if (m < 8 * n_t) return false;
        dense_index_add_exact_binned(
            out + lo_t, n_t, [x, lo_t](std::size_t i) { return static_cast<std::uint64_t>(x[i].key - lo_t); }, m,
            [x](std::size_t i) { return x[i].val; }, 1);
        return true;
      }
      return false;
    }
    if (static_cast<std::uint64_t>(m) * 32 < std::min<std::uint64_t>(m, chunks) * n_t) return false;
    row_tree_stack<A> st(n_t);
    std::vector<unsigned char> touched(n_t, 0);
    for (std::size_t q = 0; q < m;) {
      const std::uint64_t chunk = static_cast<std::uint64_t>(x[q].pos) / core::scatter_chunk;
      const std::uint64_t end = (chunk + 1) * core::scatter_chunk;
      A* row = st.slot();
      std::fill(row, row + n_t, core::negative_zero<A>());
      for (; q < m && static_cast<std::uint64_t>(x[q].pos) < end; ++q) {
        const std::size_t k = x[q].key - lo_t;
        row[k] = row[k] + x[q].val;
        touched[k] = 1;
      }
      st.push(chunk);
    }
    const A* s = st.finish();
    for (std::size_t k = 0; k < n_t; ++k)
      if (touched[k]) out[lo_t + k] = core::canonicalize(out[lo_t + k] + s[k]);
    return true;
  };
  if (radix_grouping(n_out, n)) {
    radix_for_each_bucket<A>(
        n_out, n, target_of, value_of, threads, [&](std::size_t lo_t, std::size_t n_t, std::uint64_t, const auto& g) {
          // Sweep 1, without branches: short groups, and the list of long ones (the bucket's
          // values are readable two past the end). Sweep 2: the long groups.
          std::unique_ptr<std::uint32_t[]> long_groups(new std::uint32_t[n_t]);
          std::size_t n_long = 0;
          for (std::size_t k = 0; k < n_t; ++k) {
            const std::uint64_t b = g.start[k], c = g.start[k + 1] - b;
            out[lo_t + k] = short_updated(out[lo_t + k], c, g.value[b], g.value[b + 1]);
            long_groups[n_long] = static_cast<std::uint32_t>(k);
            n_long += c > short_max;
          }
          for (std::size_t j = 0; j < n_long; ++j) {
            const std::size_t k = long_groups[j];
            out[lo_t + k] = updated(out[lo_t + k], g.start[k], g.start[k + 1],
                                    [&g](std::uint64_t q) { return g.position_at(q); },
                                    [&g](std::uint64_t q) { return g.value[q]; });
          }
        },
        hot_bucket);
    return;
  }
  const auto g = group_by_target<A>(n_out, n, target_of, threads, value_of);
  const A* v = static_cast<const A*>(g.value);
  for_each_target(n_out, threads, [&](std::size_t k) {
    const std::uint64_t b = g.start[k], e = g.start[k + 1];
    if (b == e) return;
    out[k] = updated(out[k], b, e, [&g](std::uint64_t q) { return g.position_at(q); },
                     [v](std::uint64_t q) { return v[q]; });
  });
}

}  // namespace detail
}  // namespace cpu
}  // namespace bitexact
