// bitexact/cpu/scatter_rows.hpp - the 1-D index_add driver and the row forms (index_add_rows,
// embedding bags), vectorized across the columns of a row: a core::scatter_combiner whose
// values are xsimd batches combines every column in the canonical order at once (lane-wise
// IEEE adds are the scalar adds), so the bits equal the reference's column-by-column loop.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <xsimd/xsimd.hpp>

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

/// For every target k with contributions: row = the canonical combination of the rows
/// value(j, c) (a pointer to columns c.. of contribution j, type A or bfloat16) over its
/// positions; then out_row(k)[c] = out + row (accumulate) or = row. Exact tier: the correctly
/// rounded (old +) exact sum per column.
template <class A, class Groups, class RowPtr, class OutRow>
void rows_combine(const Groups& g, std::size_t n_out, std::size_t width, int threads, isa simd, tier t,
                  RowPtr value, OutRow out_row, bool accumulate) {
  if (t == tier::exact) {
    for_each_target(n_out, threads, [&](std::size_t k) {
      const std::uint64_t b = g.start[k], e = g.start[k + 1];
      if (b == e) return;
      A* o = out_row(k);
      for (std::size_t c = 0; c < width; ++c)
        o[c] = exact_sum_with_start<A>(o[c], accumulate, static_cast<std::size_t>(e - b), [&](std::size_t q) {
          return A(core::widen(*value(g.position_at(b + q), c)));
        });
    });
    return;
  }
  with_arch(simd, [&](auto arch) {
    using V = column_vec<A, decltype(arch)>;
    using S = column_vec<A, scalar_arch>;
    for_each_target(n_out, threads, [&](std::size_t k) {
      const std::uint64_t b = g.start[k], e = g.start[k + 1];
      if (b == e) return;
      A* o = out_row(k);
      std::size_t c = 0;
      for (; c + V::size <= width; c += V::size) {
        core::scatter_combiner<typename V::type> comb;
        for (std::uint64_t q = b; q < e; ++q) {
          const std::uint64_t j = g.position_at(q);
          comb.push(j, V::load(value(j, c)));
        }
        const typename V::type r = comb.finish();
        V::store(o + c, accumulate ? V::load(o + c) + r : r);
      }
      for (; c < width; ++c) {
        core::scatter_combiner<A> comb;
        for (std::uint64_t q = b; q < e; ++q) {
          const std::uint64_t j = g.position_at(q);
          comb.push(j, S::load(value(j, c)));
        }
        const A r = comb.finish();
        o[c] = accumulate ? o[c] + r : r;
      }
      for (std::size_t q = 0; q < width; ++q) o[q] = core::canonicalize(o[q]);
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
        o[c] = comb.finish();
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

/// 1-D index_add: the dense strategies for few targets. Otherwise each target with
/// contributions gets its new value from its group: out[t] + S_t (fixed_order) or the rounded
/// out[t] + exact sum (exact). For many targets the groups come bucket by bucket while they are
/// in cache (radix_for_each_bucket), so out is read and written in order, not at random.
template <class A, class I, class ValueAt>
void index_add_1d(A* out, std::size_t n_out, const I* idx, std::size_t n, ValueAt value, tier t, int threads) {
  const std::uint64_t chunks = (static_cast<std::uint64_t>(n) + core::scatter_chunk - 1) / core::scatter_chunk;
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
        });
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
