// bitexact/cuda/scatter_thrust.hpp - the scatter pipeline of cuda/scatter.cuh (index_add, rows,
// scatter_reduce, segment_reduce) written once in
// Thrust, for any Thrust device system: CUDA under nvcc, and the CPP (sequential) and OMP
// (OpenMP threads) systems under a plain C++ compiler (THRUST_DEVICE_SYSTEM, DESIGN 5c).
//
// The passes are the BITEXACT_HD bodies of cuda/scatter_kernels.hpp, each run by
// thrust::for_each over its items (one item per call: item_thread() gives the body a grid in
// which item i is the only item of its thread). The sort is thrust::stable_sort_by_key and the
// scan thrust::exclusive_scan; validation is thrust::find_if (the lowest bad position).
// Pointers are memory of the device system (device memory for CUDA, host memory for CPP/OMP);
// temporaries are thrust::device_vector. Synchronous: the functions return when the result is
// written. The bits equal reference::index_add_fixed_order / index_add_exact (and the rows
// forms) whatever the system and its thread count.
#pragma once
#include <thrust/device_ptr.h>
#include <thrust/device_vector.h>
#include <thrust/execution_policy.h>
#include <thrust/find.h>
#include <thrust/for_each.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/scan.h>
#include <thrust/sort.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "../core/bfloat16.hpp"
#include "../core/scatter.hpp"
#include "../scatter_error.hpp"
#include "../tier.hpp"
#include "launch.hpp"
#include "scatter_kernels.hpp"

namespace bitexact {
namespace cuda {
namespace scatter_detail {

/// The thread_index under which a grid-stride body over `items` items handles item i, and
/// only it: a grid of 2^16-thread blocks with more threads than items.
BITEXACT_HD inline thread_index item_thread(std::uint64_t i, std::uint64_t items) {
  return thread_index{static_cast<unsigned>(i >> 16), static_cast<unsigned>(i & 0xffffu),
                      static_cast<unsigned>((items >> 16) + 1), 1u << 16};
}

template <class I>
struct bad_index_fn {
  const I* idx;
  std::uint64_t bound;
  BITEXACT_HD bool operator()(std::uint64_t i) const { return !index_ok(idx[i], bound); }
};
template <class I, class U>
struct make_pairs_fn {
  const I* idx;
  std::uint64_t n;
  U* key;
  U* pos;
  BITEXACT_HD void operator()(std::uint64_t i) const { make_pairs_body(item_thread(i, n), idx, n, key, pos); }
};
template <class U>
struct run_flags_fn {
  sorted_view<U> s;
  U* flag;
  BITEXACT_HD void operator()(std::uint64_t q) const { run_flags_body(item_thread(q, s.n), s, flag); }
};
template <class U>
struct run_begin_fn {
  sorted_view<U> s;
  const U* run_id;
  U* run_begin;
  U* run_count;
  BITEXACT_HD void operator()(std::uint64_t q) const {
    run_begin_body(item_thread(q, s.n), s, run_id, run_begin, run_count);
  }
};
template <class A, class U, class ValueOf, class Combine>
struct run_partials_fn {
  sorted_view<U> s;
  const U* run_begin;
  const U* run_count;
  std::uint64_t width, items;
  ValueOf value;
  Combine combine;
  A* partial;
  BITEXACT_HD void operator()(std::uint64_t i) const {
    run_partials_body<A>(item_thread(i, items), s, run_begin, run_count, width, value, combine, partial);
  }
};
template <class A, class U, class Combine, class Apply>
struct target_combine_fn {
  sorted_view<U> s;
  const U* run_begin;
  const U* run_count;
  std::uint64_t width, items;
  const A* partial;
  Combine combine;
  Apply apply;
  BITEXACT_HD void operator()(std::uint64_t i) const {
    target_combine_body<A>(item_thread(i, items), s, run_begin, run_count, width, partial, combine, apply);
  }
};
template <class A, class U, class ValueOf>
struct exact_heavy_runs_fn {
  sorted_view<U> s;
  const U* run_begin;
  const U* run_count;
  std::uint64_t width, items;
  ValueOf value;
  exact_slots<A> slots;
  BITEXACT_HD void operator()(std::uint64_t i) const {
    exact_heavy_runs_body<A>(item_thread(i, items), s, run_begin, run_count, width, value, slots);
  }
};
template <class A, class U, class ValueOf, class Apply>
struct exact_target_fn {
  sorted_view<U> s;
  const U* run_begin;
  const U* run_count;
  std::uint64_t width, items;
  ValueOf value;
  const A* start;
  exact_slots<A> slots;
  Apply apply;
  BITEXACT_HD void operator()(std::uint64_t i) const {
    exact_target_body<A>(item_thread(i, items), s, run_begin, run_count, width, value, start, slots, apply);
  }
};

template <class U>
U* raw(thrust::device_vector<U>& v) {
  return thrust::raw_pointer_cast(v.data());
}

template <class A>
struct fill_fn {
  A* out;
  std::uint64_t n;
  A value;
  BITEXACT_HD void operator()(std::uint64_t i) const { fill_body(item_thread(i, n), out, n, value); }
};

/// Validation (throws index_error, lowest bad position), then pre_write(), then the pipeline.
template <class A, class I, class ValueOf, class Combine, class FixedApply, class ExactApply, class PreWrite>
void thrust_pipeline(const char* op, std::size_t n_out, std::size_t width, const I* idx, std::size_t n, bool exact,
                     ValueOf value, Combine combine, FixedApply fixed_apply, const A* start, ExactApply exact_apply,
                     PreWrite pre_write) {
  using count_it = thrust::counting_iterator<std::uint64_t>;
  static_assert(std::is_integral<I>::value, "scatter: indices must be integers");
  const count_it first(0);
  if (n > 0) {
    if (width == 0) throw std::invalid_argument(std::string("bitexact::cuda::thrust_path::") + op + ": width must be > 0");
    if (idx == nullptr) throw std::invalid_argument(std::string("bitexact::cuda::thrust_path::") + op + ": null indices");
    const count_it bad = thrust::find_if(thrust::device, first, first + n, bad_index_fn<I>{idx, n_out});
    if (bad != first + n) {
      const std::uint64_t p = *bad;
      const I v = thrust::device_pointer_cast(idx)[p];
      throw make_index_error(op, p, v, n_out);
    }
  }
  pre_write();
  if (n == 0) return;
  with_index_type(n, n_out, [&](auto u) {
    using U = decltype(u);
    thrust::device_vector<U> key(n), pos(n), flag(n), run_id(n), run_begin(n + 1), run_count(1);
    thrust::for_each(thrust::device, first, first + n, make_pairs_fn<I, U>{idx, n, raw(key), raw(pos)});
    thrust::stable_sort_by_key(thrust::device, key.begin(), key.end(), pos.begin());
    const sorted_view<U> s{raw(key), raw(pos), n};
    thrust::for_each(thrust::device, first, first + n, run_flags_fn<U>{s, raw(flag)});
    thrust::exclusive_scan(thrust::device, flag.begin(), flag.end(), run_id.begin(), U(0));
    thrust::for_each(thrust::device, first, first + n, run_begin_fn<U>{s, raw(run_id), raw(run_begin), raw(run_count)});
    const std::uint64_t items = static_cast<std::uint64_t>(static_cast<U>(run_count[0])) * width;
    if (exact) {
      const std::uint64_t n_slots = exact_slots<A>::count(n, width);
      thrust::device_vector<unsigned long long> digits(n_slots * exact_slots<A>::digits_per_slot, 0ull);
      thrust::device_vector<unsigned int> flags(n_slots, 0u);
      const exact_slots<A> slots{raw(digits), raw(flags)};
      thrust::for_each(thrust::device, first, first + items,
                       exact_heavy_runs_fn<A, U, ValueOf>{s, raw(run_begin), raw(run_count), width, items, value, slots});
      thrust::for_each(thrust::device, first, first + items,
                       exact_target_fn<A, U, ValueOf, ExactApply>{s, raw(run_begin), raw(run_count), width, items, value,
                                                                  start, slots, exact_apply});
      return 0;
    }
    thrust::device_vector<A> partial(items);
    thrust::for_each(thrust::device, first, first + items,
                     run_partials_fn<A, U, ValueOf, Combine>{s, raw(run_begin), raw(run_count), width, items, value,
                                                             combine, raw(partial)});
    thrust::for_each(thrust::device, first, first + items,
                     target_combine_fn<A, U, Combine, FixedApply>{s, raw(run_begin), raw(run_count), width, items,
                                                                  raw(partial), combine, fixed_apply});
    return 0;
  });
}

struct no_pre_write_host {
  void operator()() const {}
};

template <class T, class I>
void thrust_index_add_impl(const char* op, core::accumulation_t<T>* out, std::size_t n_out, std::size_t width,
                           const I* idx, const T* src, std::size_t n, tier t) {
  using A = core::accumulation_t<T>;
  if (n == 0) return;
  if ((out == nullptr && n_out > 0) || src == nullptr)
    throw std::invalid_argument(std::string("bitexact::cuda::thrust_path::") + op + ": null out or src with n > 0");
  thrust_pipeline<A>(op, n_out, width, idx, n, t == tier::exact, row_values<T>{src, width}, core::plus{},
                     add_into<A>{out, width}, out, store_into<A>{out, width}, no_pre_write_host{});
}

}  // namespace scatter_detail

namespace thrust_path {

/// index_add on the Thrust device system: out[idx[i]] += src[i] (fixed_order or exact).
/// T is float, double, or bfloat16 into a float out. Throws index_error before writing.
template <class T, class I>
void index_add(core::accumulation_t<T>* out, std::size_t n_out, const I* idx, const T* src, std::size_t n,
               tier t = tier::fixed_order) {
  scatter_detail::thrust_index_add_impl("index_add", out, n_out, 1, idx, src, n, t);
}

/// Row form: out[idx[i], :] += src[i, :] (row-major, `width` values per row).
template <class T, class I>
void index_add_rows(core::accumulation_t<T>* out, std::size_t n_out, std::size_t width, const I* idx, const T* src,
                    std::size_t n, tier t = tier::fixed_order) {
  scatter_detail::thrust_index_add_impl("index_add_rows", out, n_out, width, idx, src, n, t);
}

/// scatter_reduce on the Thrust device system (semantics of bitexact::scatter_reduce).
template <class T, class I>
void scatter_reduce(T* out, std::size_t n_out, const I* idx, const T* src, std::size_t n, scatter_op op,
                    bool include_self = true, tier t = tier::fixed_order) {
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value, "scatter_reduce: float or double");
  if (t == tier::exact && op == scatter_op::prod)
    throw std::invalid_argument("bitexact::cuda::thrust_path::scatter_reduce: prod has no exact tier (use tier::fixed_order)");
  if (n == 0) return;
  if ((out == nullptr && n_out > 0) || src == nullptr)
    throw std::invalid_argument("bitexact::cuda::thrust_path::scatter_reduce: null out or src with n > 0");
  const bool mean = op == scatter_op::mean;
  const std::uint64_t extra = include_self ? 1 : 0;
  scatter_detail::with_combine(op, [&](auto combine) {
    using C = decltype(combine);
    scatter_detail::thrust_pipeline<T>(
        "scatter_reduce", n_out, 1, idx, n, scatter_detail::exact_sum_op(op, t), scatter_detail::row_values<T>{src, 1},
        combine, scatter_detail::reduce_into<T, C>{out, 1, combine, include_self, mean, extra},
        include_self ? static_cast<const T*>(out) : nullptr,
        scatter_detail::reduce_into<T, C>{out, 1, combine, false, mean, extra}, scatter_detail::no_pre_write_host{});
  });
}

/// segment_reduce on the Thrust device system (semantics of bitexact::segment_reduce; every
/// segment is written, empty ones with the empty value).
template <class D, class I>
void segment_reduce(core::accumulation_t<D>* out, std::size_t num_segments, const I* ids, const D* data, std::size_t n,
                    scatter_op op, tier t = tier::fixed_order) {
  using A = core::accumulation_t<D>;
  if (t == tier::exact && op == scatter_op::prod)
    throw std::invalid_argument("bitexact::cuda::thrust_path::segment_reduce: prod has no exact tier (use tier::fixed_order)");
  if ((out == nullptr && num_segments > 0) || (n > 0 && data == nullptr))
    throw std::invalid_argument("bitexact::cuda::thrust_path::segment_reduce: null out or data");
  const bool mean = op == scatter_op::mean;
  const A empty = scatter_detail::empty_segment_value<A>(op);
  auto fill = [&] {
    const thrust::counting_iterator<std::uint64_t> first(0);
    thrust::for_each(thrust::device, first, first + num_segments, scatter_detail::fill_fn<A>{out, num_segments, empty});
  };
  scatter_detail::with_combine(op, [&](auto combine) {
    using C = decltype(combine);
    const scatter_detail::reduce_into<A, C> apply{out, 1, combine, false, mean, 0};
    scatter_detail::thrust_pipeline<A>("segment_reduce", num_segments, 1, ids, n, scatter_detail::exact_sum_op(op, t),
                                       scatter_detail::row_values<D>{data, 1}, combine, apply,
                                       static_cast<const A*>(nullptr), apply, fill);
  });
}

}  // namespace thrust_path
}  // namespace cuda
}  // namespace bitexact
