// bitexact/cpu/scatter_kernels.hpp - threaded scatter without float atomics.
//
// Two strategies compute the canonical order of core/scatter.hpp:
//   dense  (few targets): every chunk of 4096 sources adds its contributions sequentially into
//          its own row of per-target partials (a 2-D scratch of chunks x targets), then the rows
//          combine by the aligned pairwise tree over chunks, element-wise. Rows without a
//          contribution hold -0.0, the identity, so the dense tree equals the sparse one.
//   sorted (many targets): a stable counting sort groups source positions by target (above
//          2^16 targets a radix grouping that streams: buckets of consecutive targets, then a
//          counting sort inside each bucket while it is in cache); each target then combines
//          its group (combine_group: core::scatter_combiner), targets in parallel. The 1-D
//          index_add updates out inside each bucket (radix_for_each_bucket), so out streams too.
//   run    (1-D index_add, non-decreasing indices, told by the index check at no extra pass):
//          every target's contributions are one run of positions, so no grouping at all
//          (cpu/scatter_rows.hpp sorted_index_add).
// Which one runs depends on the problem size only; both give the same bits, and the thread
// count only changes who computes a chunk or a target.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "../core/bfloat16.hpp"
#include "../core/exact.hpp"
#include "../core/scatter.hpp"
#include "../scatter_error.hpp"
#include "threads.hpp"

namespace bitexact {

namespace cpu {
namespace detail {

/// Chunks of sources per canonical work unit of the threaded passes.
constexpr std::uint64_t scatter_work_chunk = core::scatter_chunk;
/// The dense strategy runs when chunks x targets stays below this many partials.
constexpr std::uint64_t dense_partials_limit = std::uint64_t(1) << 22;

template <class I>
bool index_in_range(I v, std::size_t bound) {
  if constexpr (std::is_signed<I>::value)
    if (v < 0) return false;
  return static_cast<std::uint64_t>(v) < static_cast<std::uint64_t>(bound);
}

/// Throws index_error naming the lowest bad position, whatever the thread count.
template <class I>
void validate_indices(const I* idx, std::size_t n, std::size_t bound, int threads, const char* what) {
  const canonical_chunks chunks{n, scatter_work_chunk};
  std::vector<std::uint64_t> first_bad(static_cast<std::size_t>(chunks.count()), std::numeric_limits<std::uint64_t>::max());
  parallel_chunks(threads, chunks, [&](std::uint64_t b, std::uint64_t e) {
    for (std::uint64_t i = b; i < e; ++i)
      if (!index_in_range(idx[i], bound)) {
        first_bad[static_cast<std::size_t>(b / scatter_work_chunk)] = i;
        return;
      }
  });
  for (std::uint64_t p : first_bad)
    if (p != std::numeric_limits<std::uint64_t>::max())
      throw index_error(std::string("bitexact::") + what + ": index " + std::to_string(static_cast<long long>(idx[p])) +
                            " at position " + std::to_string(p) + " is outside [0, " + std::to_string(bound) + ")",
                        static_cast<std::size_t>(p), static_cast<std::int64_t>(idx[p]), bound);
}

/// validate_indices that also tells whether idx is non-decreasing (sorted), in the same pass:
/// a branch-free loop per chunk (it vectorizes), then the lowest bad position if any.
template <class I>
bool validate_indices_sorted(const I* idx, std::size_t n, std::size_t bound, int threads, const char* what) {
  const canonical_chunks chunks{n, scatter_work_chunk};
  const std::size_t nc = static_cast<std::size_t>(chunks.count());
  std::vector<unsigned char> bad(nc, 0), descends(nc, 0);
  parallel_chunks(threads, chunks, [&](std::uint64_t b, std::uint64_t e) {
    const std::size_t c = static_cast<std::size_t>(b / scatter_work_chunk);
    // As unsigned, a negative index is above any bound. A max and a count: loops that vectorize.
    std::uint64_t hi = static_cast<std::uint64_t>(idx[b]), drops = b > 0 && idx[b - 1] > idx[b];
    for (std::uint64_t i = b + 1; i < e; ++i) {
      hi = std::max(hi, static_cast<std::uint64_t>(idx[i]));
      drops += idx[i - 1] > idx[i] ? 1u : 0u;
    }
    bad[c] = hi >= static_cast<std::uint64_t>(bound);
    descends[c] = drops != 0;
  });
  bool sorted = true;
  for (std::size_t c = 0; c < nc; ++c) {
    if (bad[c]) {
      validate_indices(idx, n, bound, threads, what);  // throws, naming the lowest bad position
    }
    sorted = sorted && !descends[c];
  }
  return sorted;
}

/// Scratch memory of the calling thread, kept between calls: a scatter over millions of
/// sources needs tens of MB of temporaries, and fresh pages cost more than the scatter itself.
/// Slot k holds one buffer; its contents are garbage on entry. Workers of the pool never call
/// this, so the buffers belong to the thread that called the op.
inline void* scratch(unsigned slot, std::size_t bytes) {
  struct arena {
    std::unique_ptr<unsigned char[]> p[8];
    std::size_t cap[8] = {};
  };
  static thread_local arena a;
  if (bytes == 0) {  // release
    a.p[slot].reset();
    a.cap[slot] = 0;
    return nullptr;
  }
  if (a.cap[slot] < bytes) {
    a.p[slot].reset();
    a.p[slot].reset(new unsigned char[bytes]);
    a.cap[slot] = bytes;
  }
  return a.p[slot].get();
}
/// Frees the calling thread's scratch buffers.
inline void release_scratch() {
  for (unsigned k = 0; k < 8; ++k) scratch(k, 0);
}
template <class T>
T* scratch_array(unsigned slot, std::size_t n) {
  return static_cast<T*>(scratch(slot, (n == 0 ? 1 : n) * sizeof(T)));
}
/// Scratch slots: 0-1 and 5 the grouping result, 2 the radix grouping's partition (or the
/// counting sort's cursors), 3-4 the radix grouping's per-bucket sort, 5-6 the dense strategy.
enum : unsigned {
  slot_start = 0,
  slot_position = 1,
  slot_key = 2,
  slot_run_position = 3,
  slot_run_value = 4,
  slot_partial = 5,
  slot_touched = 6,
  slot_value = 5
};

/// Source positions grouped by target, stable: positions of target t are
/// position[start[t] .. start[t+1]) in increasing order. Points into the calling thread's
/// scratch: valid until the next grouping on this thread.
struct target_groups {
  std::uint64_t* start = nullptr;
  std::uint64_t* position = nullptr;
  std::size_t count(std::size_t t) const { return static_cast<std::size_t>(start[t + 1] - start[t]); }
  std::uint64_t position_at(std::uint64_t q) const { return position[static_cast<std::size_t>(q)]; }
  /// With group_by_target<V>: the value of each position, in the same (sorted) order.
  void* value = nullptr;
};

/// One source in the bucketed partition of the radix grouping: its position, its target and,
/// when the caller carries values, its value. 32-bit positions when n fits.
template <class P, class V>
struct bucket_entry {
  P pos;
  std::uint32_t key;
  V val;
};
template <class P>
struct bucket_entry<P, void> {
  P pos;
  std::uint32_t key;
};

/// The groups of one bucket of the radix grouping, while they are in cache: target lo_t + k
/// owns position[start[k] .. start[k+1]) (and the same range of value), in increasing order.
/// value[start[n_t]] and value[start[n_t] + 1] are readable (zeros), so a reader may load the
/// first two values of any group without looking at its size.
template <class P, class V>
struct bucket_groups {
  const P* start = nullptr;
  const P* position = nullptr;
  const V* value = nullptr;
  std::uint64_t position_at(std::uint64_t q) const { return position[static_cast<std::size_t>(q)]; }
};

/// Stable grouping for many targets (n_out <= 2^32), in passes that stream through memory
/// instead of hitting a table as large as the targets at random: (1) count the sources of each
/// bucket of 2^shift consecutive targets (at most 1024 buckets: pass 2 writes one stream per
/// bucket, and 2048 streams ran 1.3x slower than 1024 or 512 at 4 Mi targets); (2) partition
/// the sources into the buckets, stable, as (position, target[, value]) entries; (3) inside
/// each bucket (a few thousand entries, in cache) a counting sort by the target's low bits, after which
/// body(lo_t, n_t, bucket_groups) sees the groups of targets lo_t .. lo_t + n_t - 1. Passes 1-2
/// run on contiguous source ranges, pass 3 on canonical runs of buckets; bodies of different
/// buckets run concurrently and own disjoint target ranges. The groups are unique, so nothing
/// depends on the threads. Before the sort, whole(lo_t, n_t, entries, m) may take a bucket as it
/// is - its m entries {pos, key[, val]} in increasing position - and return true: then the
/// bucket is not sorted and body is not called for it (hot buckets, see index_add_1d).
template <class V, class TargetOf, class ValueOf, class Body, class Whole>
void radix_for_each_bucket(std::size_t n_out, std::size_t n, TargetOf target_of, ValueOf value_of, int threads,
                           Body body, Whole whole) {
  auto run = [&](auto pos_type) {
    using P = decltype(pos_type);
    using E = bucket_entry<P, V>;
    constexpr bool carry = !std::is_void<V>::value;
    using VV = typename std::conditional<carry, V, char>::type;
    int key_bits = 0;
    while (key_bits < 63 && (std::uint64_t(n_out - 1) >> key_bits) != 0) ++key_bits;
    const int shift = key_bits > 10 ? key_bits - 10 : 0;
    const std::size_t buckets = ((n_out - 1) >> shift) + 1;
    E* const entry = scratch_array<E>(slot_key, n);
    const int parts = threads_for_work(threads, n, std::uint64_t(1) << 18);
    std::vector<std::vector<std::uint64_t>> next(static_cast<std::size_t>(parts), std::vector<std::uint64_t>(buckets, 0));
    auto range = [&](int id, std::size_t& b, std::size_t& e) {
      b = n * static_cast<std::size_t>(id) / static_cast<std::size_t>(parts);
      e = n * static_cast<std::size_t>(id + 1) / static_cast<std::size_t>(parts);
    };
    // Pass 1: per-range bucket counts; each range then writes its part of every bucket after
    // the parts of the ranges before it (stable).
    thread_pool::instance().run(parts, [&](int id) {
      std::size_t b, e;
      range(id, b, e);
      std::uint64_t* c = next[static_cast<std::size_t>(id)].data();
      for (std::size_t i = b; i < e; ++i) ++c[static_cast<std::size_t>(target_of(i)) >> shift];
    });
    std::vector<std::uint64_t> bstart(buckets + 1, 0);
    std::uint64_t run_total = 0;
    for (std::size_t k = 0; k < buckets; ++k) {
      bstart[k] = run_total;
      for (int id = 0; id < parts; ++id) {
        const std::uint64_t c = next[static_cast<std::size_t>(id)][k];
        next[static_cast<std::size_t>(id)][k] = run_total;
        run_total += c;
      }
    }
    bstart[buckets] = run_total;
    // Pass 2: the partition.
    thread_pool::instance().run(parts, [&](int id) {
      std::size_t b, e;
      range(id, b, e);
      std::uint64_t* nx = next[static_cast<std::size_t>(id)].data();
      for (std::size_t i = b; i < e; ++i) {
        const std::uint32_t t = static_cast<std::uint32_t>(target_of(i));
        E& x = entry[static_cast<std::size_t>(nx[t >> shift]++)];
        x.pos = static_cast<P>(i);
        x.key = t;
        if constexpr (carry) x.val = value_of(i);
      }
    });
    // Pass 3: per bucket, a counting sort by the low bits into buffers of this run of buckets.
    // cnt[k + 2] counts target k; after the prefix sum cnt[k + 1] is its start, and placing
    // with cnt[k + 1]++ leaves cnt[k] = the start of target k for every k <= n_t.
    // The buffers of a run of buckets come from the calling thread's scratch, one pair per run:
    // a hot target makes one bucket hold most sources, and fresh pages for it on every call
    // cost more than its sort.
    const std::size_t local = std::size_t(1) << shift;
    const canonical_chunks runs{buckets, 16};
    const std::size_t n_runs = static_cast<std::size_t>(runs.count());
    std::vector<std::size_t> offset(n_runs + 1, 0);
    for (std::size_t r = 0; r < n_runs; ++r) {
      std::uint64_t largest = 0;
      for (std::uint64_t bk = runs.begin(r); bk < runs.end(r); ++bk) largest = std::max(largest, bstart[bk + 1] - bstart[bk]);
      offset[r + 1] = offset[r] + static_cast<std::size_t>(largest) + 2;
    }
    P* const pos_all = scratch_array<P>(slot_run_position, offset[n_runs]);
    VV* const val_all = scratch_array<VV>(slot_run_value, carry ? offset[n_runs] : 1);
    parallel_chunks(threads, runs, [&](std::uint64_t b0, std::uint64_t b1) {
      const std::size_t r = static_cast<std::size_t>(b0 / 16);
      std::vector<P> cnt(local + 2);
      P* const pos = pos_all + offset[r];
      VV* const val = carry ? val_all + offset[r] : val_all;
      for (std::uint64_t bk = b0; bk < b1; ++bk) {
        const std::size_t lo_t = static_cast<std::size_t>(bk) << shift;
        const std::size_t n_t = std::min(local, n_out - lo_t);
        const E* x = entry + bstart[bk];
        const std::size_t m = static_cast<std::size_t>(bstart[bk + 1] - bstart[bk]);
        if (whole(lo_t, n_t, x, m)) continue;
        std::fill(cnt.begin(), cnt.begin() + static_cast<std::ptrdiff_t>(n_t + 2), P(0));
        for (std::size_t q = 0; q < m; ++q) ++cnt[x[q].key - lo_t + 2];
        for (std::size_t k = 1; k <= n_t; ++k) cnt[k + 1] += cnt[k];
        for (std::size_t q = 0; q < m; ++q) {
          const std::size_t o = static_cast<std::size_t>(cnt[x[q].key - lo_t + 1]++);
          pos[o] = x[q].pos;
          if constexpr (carry) val[o] = x[q].val;
        }
        if constexpr (carry) val[m] = val[m + 1] = VV(0);
        bucket_groups<P, VV> g;
        g.start = cnt.data();
        g.position = pos;
        g.value = carry ? val : nullptr;
        body(lo_t, n_t, static_cast<std::uint64_t>(bstart[bk]), g);
      }
    });
  };
  if (n < (std::uint64_t(1) << 32))
    run(std::uint32_t{});
  else
    run(std::uint64_t{});
}

template <class V, class TargetOf, class ValueOf, class Body>
void radix_for_each_bucket(std::size_t n_out, std::size_t n, TargetOf target_of, ValueOf value_of, int threads,
                           Body body) {
  radix_for_each_bucket<V>(n_out, n, target_of, value_of, threads, body,
                           [](std::size_t, std::size_t, const auto*, std::size_t) { return false; });
}

/// The radix grouping written out as target_groups (for consumers that need all groups at once).
template <class V = void, class TargetOf, class ValueOf = int>
target_groups radix_group_by_target(std::size_t n_out, std::size_t n, TargetOf target_of, ValueOf value_of,
                                    int threads) {
  constexpr bool carry = !std::is_void<V>::value;
  using VV = typename std::conditional<carry, V, char>::type;
  target_groups g;
  g.start = scratch_array<std::uint64_t>(slot_start, n_out + 1);
  g.position = scratch_array<std::uint64_t>(slot_position, n);
  VV* out_val = carry ? scratch_array<VV>(slot_value, n) : nullptr;
  radix_for_each_bucket<V>(n_out, n, target_of, value_of, threads,
                           [&](std::size_t lo_t, std::size_t n_t, std::uint64_t s, const auto& b) {
                             for (std::size_t k = 0; k < n_t; ++k) g.start[lo_t + k] = s + b.start[k];
                             for (std::uint64_t q = 0; q < b.start[n_t]; ++q) {
                               g.position[s + q] = b.position[q];
                               if constexpr (carry) out_val[s + q] = b.value[q];
                             }
                           });
  g.start[n_out] = n;
  g.value = out_val;
  return g;
}

/// Whether the grouping of n sources into n_out targets takes the radix passes.
inline bool radix_grouping(std::size_t n_out, std::size_t n) {
  return n_out > (std::size_t(1) << 16) && static_cast<std::uint64_t>(n_out) <= (std::uint64_t(1) << 32) && n > 0;
}

/// Stable grouping of [0, n) by target_of(i) (already validated to be < n_out): a counting
/// sort for up to 2^16 targets (its table stays in cache; threads count and place disjoint
/// source ranges), the radix sort above for more. The result is unique, so it depends on
/// neither the method nor the threads.
template <class V = void, class TargetOf, class ValueOf = int>
target_groups group_by_target(std::size_t n_out, std::size_t n, TargetOf target_of, int threads, ValueOf value_of = 0) {
  constexpr bool carry = !std::is_void<V>::value;
  using VV = typename std::conditional<carry, V, char>::type;
  if (radix_grouping(n_out, n))
    return radix_group_by_target<V>(n_out, n, target_of, value_of, threads);
  target_groups g;
  g.start = scratch_array<std::uint64_t>(slot_start, n_out + 1);
  std::fill(g.start, g.start + n_out + 1, 0);
  g.position = scratch_array<std::uint64_t>(slot_position, n);
  const int t = threads_for_work(threads, n, std::uint64_t(1) << 20);  // test hook: cpu/threads.hpp
  if (t == 1) {
    for (std::size_t i = 0; i < n; ++i) ++g.start[static_cast<std::size_t>(target_of(i)) + 1];
    for (std::size_t k = 0; k < n_out; ++k) g.start[k + 1] += g.start[k];
    std::uint64_t* next = scratch_array<std::uint64_t>(slot_key, n_out);  // 8 bytes per target
    std::copy(g.start, g.start + n_out, next);
    VV* val = carry ? scratch_array<VV>(slot_value, n) : nullptr;
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t o = static_cast<std::size_t>(next[static_cast<std::size_t>(target_of(i))]++);
      g.position[o] = i;
      if constexpr (carry) val[o] = value_of(i);
    }
    g.value = val;
    return g;
  }
  // Per-thread histograms over contiguous source ranges, then per-(target, thread) offsets.
  std::vector<std::vector<std::uint32_t>> hist(static_cast<std::size_t>(t));
  VV* val = carry ? scratch_array<VV>(slot_value, n) : nullptr;
  auto range = [&](int id, std::size_t& b, std::size_t& e) {
    b = n * static_cast<std::size_t>(id) / static_cast<std::size_t>(t);
    e = n * static_cast<std::size_t>(id + 1) / static_cast<std::size_t>(t);
  };
  ::bitexact::cpu::detail::thread_pool::instance().run(t, [&](int id) {
    std::size_t b, e;
    range(id, b, e);
    std::vector<std::uint32_t>& h = hist[static_cast<std::size_t>(id)];
    h.assign(n_out, 0);
    for (std::size_t i = b; i < e; ++i) ++h[static_cast<std::size_t>(target_of(i))];
  });
  std::uint64_t run = 0;
  for (std::size_t k = 0; k < n_out; ++k) {
    g.start[k] = run;
    for (int id = 0; id < t; ++id) {
      const std::uint32_t c = hist[static_cast<std::size_t>(id)][k];
      hist[static_cast<std::size_t>(id)][k] = static_cast<std::uint32_t>(run - g.start[k]);  // offset within target
      run += c;
    }
  }
  g.start[n_out] = run;
  ::bitexact::cpu::detail::thread_pool::instance().run(t, [&](int id) {
    std::size_t b, e;
    range(id, b, e);
    std::vector<std::uint32_t>& h = hist[static_cast<std::size_t>(id)];
    for (std::size_t i = b; i < e; ++i) {
      const std::size_t k = static_cast<std::size_t>(target_of(i));
      const std::size_t o = static_cast<std::size_t>(g.start[k] + h[k]++);
      g.position[o] = i;
      if constexpr (carry) val[o] = value_of(i);
    }
  });
  g.value = val;
  return g;
}

/// Runs body(t) for every target, targets split over threads in ranges (of 2048 targets; the
/// grain hook of threads.hpp shrinks them: targets are independent).
template <class Body>
void for_each_target(std::size_t n_out, int threads, Body body) {
  parallel_chunks(threads, canonical_chunks{n_out, min_work_per_thread(2048)}, [&](std::uint64_t b, std::uint64_t e) {
    for (std::uint64_t t = b; t < e; ++t) body(static_cast<std::size_t>(t));
  });
}

#if defined(__GNUC__) || defined(__clang__)
#define BITEXACT_SCATTER_NOINLINE __attribute__((noinline))
#elif defined(_MSC_VER)
#define BITEXACT_SCATTER_NOINLINE __declspec(noinline)
#else
#define BITEXACT_SCATTER_NOINLINE
#endif

/// combine_group's tree case, out of line so the per-target loops that call combine_group keep
/// their registers for the common short groups.
template <class A, class Combine, class PositionAt, class ValueAt>
BITEXACT_SCATTER_NOINLINE A combine_group_tree(std::uint64_t b, std::uint64_t e, Combine combine,
                                               PositionAt position_at, ValueAt value_at) {
  core::scatter_combiner<A, Combine> c(combine);
  for (std::uint64_t k = b; k < e; ++k) c.push(position_at(k), value_at(k));
  return c.finish();
}

/// S_t of one group (fixed_order): the values value_at(b .. e-1) at increasing positions
/// position_at(q), combined in the canonical order.
template <class A, class Combine, class PositionAt, class ValueAt>
A combine_group(std::uint64_t b, std::uint64_t e, Combine combine, PositionAt position_at, ValueAt value_at) {
  // One chunk: sequential. Two values: v0 (+) v1 whichever the chunks (a two-leaf tree).
  if (e - b <= 2 || core::scatter_combiner<A, Combine>::same_chunk(position_at(b), position_at(e - 1))) {
    A s = value_at(b);
    for (std::uint64_t k = b + 1; k < e; ++k) s = combine(s, value_at(k));
    return s;
  }
  return combine_group_tree<A>(b, e, combine, position_at, value_at);
}

/// Sorted strategy, fixed_order: apply(t, S_t, count) for every target with contributions.
/// value_at(q) is the value of the q-th grouped position (a carried value, or a gather through
/// g.position_at(q)); Groups is target_groups or contiguous_groups.
template <class A, class Groups, class Combine, class ValueAt, class Apply>
void grouped_combine(const Groups& g, std::size_t n_out, int threads, Combine combine, ValueAt value_at, Apply apply) {
  for_each_target(n_out, threads, [&](std::size_t t) {
    const std::uint64_t b = g.start[t], e = g.start[t + 1];
    if (b == e) return;
    apply(t, combine_group<A>(b, e, combine, [&g](std::uint64_t q) { return g.position_at(q); }, value_at),
          static_cast<std::size_t>(e - b));
  });
}

/// The exact tier's value of one target (core/scatter.hpp).
using core::exact_sum_with_start;

/// Dense strategy for 1-D sums into few targets: out[t] = out[t] + S_t (fixed_order).
template <class A, class I, class ValueAt>
void dense_index_add(A* out, std::size_t n_out, const I* idx, std::size_t n, ValueAt value_at, int threads) {
  const canonical_chunks chunks{n, core::scatter_chunk};
  const std::size_t rows = static_cast<std::size_t>(chunks.count());
  A* const partial = scratch_array<A>(slot_partial, rows * n_out);
  unsigned char* const touched = scratch_array<unsigned char>(slot_touched, rows * n_out);
  parallel_chunks(threads, chunks, [&](std::uint64_t b, std::uint64_t e) {
    const std::size_t r = static_cast<std::size_t>(b / core::scatter_chunk);
    A* p = partial + r * n_out;
    unsigned char* h = touched + r * n_out;
    std::fill(p, p + n_out, core::negative_zero<A>());
    std::fill(h, h + n_out, static_cast<unsigned char>(0));
    for (std::uint64_t i = b; i < e; ++i) {
      const std::size_t t = static_cast<std::size_t>(idx[i]);
      p[t] = p[t] + value_at(i);
      h[t] = 1;
    }
  });
  // Aligned pairwise tree over chunk rows: at step s, row c (c a multiple of 2s) takes
  // row c + s when it exists (left + right); a missing right child passes the left through.
  for (std::size_t s = 1; s < rows; s *= 2) {
    const std::size_t pairs = (rows - s + 2 * s - 1) / (2 * s);  // c = 0, 2s, ... with c + s < rows
    parallel_chunks(threads, canonical_chunks{pairs * n_out, 4096}, [&](std::uint64_t b, std::uint64_t e) {
      for (std::uint64_t k = b; k < e; ++k) {
        const std::size_t pair = static_cast<std::size_t>(k / n_out), t = static_cast<std::size_t>(k % n_out);
        const std::size_t c = pair * 2 * s;
        A* left = partial + c * n_out;
        const A* right = partial + (c + s) * n_out;
        left[t] = left[t] + right[t];
        touched[c * n_out + t] |= touched[(c + s) * n_out + t];
      }
    });
  }
  for (std::size_t t = 0; t < n_out; ++t)
    if (touched[t]) out[t] = core::canonicalize(out[t] + partial[t]);
}

/// Dense strategy, exact tier: per-thread exact accumulators for each target, merged, rounded
/// with the old value.
template <class A, class I, class ValueAt>
void dense_index_add_exact(A* out, std::size_t n_out, const I* idx, std::size_t n, ValueAt value_at, int threads) {
  const int t = threads_for_work(threads, n, std::uint64_t(1) << 16);
  std::vector<std::vector<core::exact_accumulator<A>>> acc(static_cast<std::size_t>(t));
  std::vector<std::vector<unsigned char>> hit(static_cast<std::size_t>(t));
  thread_pool::instance().run(t, [&](int id) {
    const std::size_t b = n * static_cast<std::size_t>(id) / static_cast<std::size_t>(t);
    const std::size_t e = n * static_cast<std::size_t>(id + 1) / static_cast<std::size_t>(t);
    auto& a = acc[static_cast<std::size_t>(id)];
    auto& h = hit[static_cast<std::size_t>(id)];
    a.resize(n_out);
    h.assign(n_out, 0);
    for (std::size_t i = b; i < e; ++i) {
      const std::size_t k = static_cast<std::size_t>(idx[i]);
      a[k].add(value_at(i));
      h[k] = 1;
    }
  });
  for_each_target(n_out, threads, [&](std::size_t k) {
    bool any = false;
    for (int id = 0; id < t; ++id) any = any || hit[static_cast<std::size_t>(id)][k];
    if (!any) return;
    core::exact_accumulator<A> total;
    total.add(out[k]);
    for (int id = 0; id < t; ++id) total.merge(acc[static_cast<std::size_t>(id)][k]);
    out[k] = total.round();
  });
}

}  // namespace detail
}  // namespace cpu
}  // namespace bitexact
