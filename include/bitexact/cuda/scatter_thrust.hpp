// bitexact/cuda/scatter_thrust.hpp - the index_add pipeline of cuda/scatter.cuh written once in
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
template <class A, class U, class ValueOf, class Apply>
struct exact_target_fn {
  sorted_view<U> s;
  const U* run_begin;
  const U* run_count;
  std::uint64_t width, items;
  ValueOf value;
  const A* start;
  Apply apply;
  BITEXACT_HD void operator()(std::uint64_t i) const {
    exact_target_body<A>(item_thread(i, items), s, run_begin, run_count, width, value, start, apply);
  }
};

template <class U>
U* raw(thrust::device_vector<U>& v) {
  return thrust::raw_pointer_cast(v.data());
}

template <class T, class I>
void thrust_index_add_impl(const char* op, core::accumulation_t<T>* out, std::size_t n_out, std::size_t width,
                           const I* idx, const T* src, std::size_t n, tier t) {
  using A = core::accumulation_t<T>;
  using count_it = thrust::counting_iterator<std::uint64_t>;
  static_assert(std::is_integral<I>::value, "index_add: indices must be integers");
  if (n == 0) return;
  if (width == 0) throw std::invalid_argument(std::string("bitexact::cuda::thrust::") + op + ": width must be > 0");
  if ((out == nullptr && n_out > 0) || idx == nullptr || src == nullptr)
    throw std::invalid_argument(std::string("bitexact::cuda::thrust::") + op + ": null pointer with n > 0");
  const count_it first(0);
  const count_it bad = thrust::find_if(thrust::device, first, first + n, bad_index_fn<I>{idx, n_out});
  if (bad != first + n) {
    const std::uint64_t p = *bad;
    const I v = thrust::device_pointer_cast(idx)[p];
    throw make_index_error(op, p, v, n_out);
  }
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
    const row_values<T> value{src, width};
    if (t == tier::exact) {
      thrust::for_each(thrust::device, first, first + items,
                       exact_target_fn<A, U, row_values<T>, store_into<A>>{s, raw(run_begin), raw(run_count), width, items,
                                                                           value, out, store_into<A>{out, width}});
      return 0;
    }
    thrust::device_vector<A> partial(items);
    thrust::for_each(thrust::device, first, first + items,
                     run_partials_fn<A, U, row_values<T>, core::plus>{s, raw(run_begin), raw(run_count), width, items,
                                                                      value, core::plus{}, raw(partial)});
    thrust::for_each(thrust::device, first, first + items,
                     target_combine_fn<A, U, core::plus, add_into<A>>{s, raw(run_begin), raw(run_count), width, items,
                                                                      raw(partial), core::plus{}, add_into<A>{out, width}});
    return 0;
  });
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

}  // namespace thrust_path
}  // namespace cuda
}  // namespace bitexact
