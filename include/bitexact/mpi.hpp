// bitexact/mpi.hpp - cross-rank sums whose bits do not depend on the number of ranks or the split.
//
// Needs MPI (include <mpi.h> is done here; link MPI::MPI_CXX or MPI::MPI_C). Not included by
// bitexact.hpp.
//
//   bitexact::mpi::allreduce_sum(x, n_local, comm)          -> accumulation_t<T>
//   bitexact::mpi::allreduce_dot(x, y, n_local, comm)       -> accumulation_t<T>
//   bitexact::mpi::allreduce_accumulator(acc, comm)         (acc becomes the global exact sum)
//   bitexact::mpi::allreduce_accumulators(accs, count, comm)
//
// Collective: every rank of `comm` must call with the same T (n_local may differ, and may be 0).
// Every rank returns the correctly rounded value of the exact sum of all ranks' values (the
// same as reference::sum_exact / dot_exact on the concatenated data, whatever the order of the
// concatenation), identical bits on every rank, for any number of ranks and any split of the
// data. How: each rank adds its values into a core::exact_accumulator (an integer fixed-point
// number plus NaN/Inf/zero-sign flags; core/exact.hpp), the accumulators travel in their
// canonical serialized form (to_bytes), and a commutative user-defined MPI_Op merges them by
// integer addition, which is associative and commutative exactly, so any reduction tree the
// MPI library picks yields the same accumulator, and rounding happens once at the end.
//
// Tier: only tier::exact is partition-independent. A fixed_order sum across ranks would be a
// different floating-point expression for every split of the data (leaves and tree nodes would
// straddle ranks differently), so allreduce_sum/allreduce_dot reject tier::fixed_order with
// std::invalid_argument instead of returning split-dependent bits. (A fixed_order result that
// is independent of the rank count is possible only if the split follows the canonical leaf
// tree, which this API does not assume.)
//
// Cost: one MPI_Allreduce of serialized_size bytes (184 for float, 1096 for double) per call,
// plus an O(n_local) exact accumulation. Errors from MPI throw std::runtime_error.
#pragma once
#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/bfloat16.hpp"
#include "core/exact.hpp"
#include "tier.hpp"

namespace bitexact {
namespace mpi {
namespace detail {

inline void check(int rc, const char* what) {
  if (rc != MPI_SUCCESS) {
    char msg[MPI_MAX_ERROR_STRING] = {};
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    throw std::runtime_error(std::string("bitexact::mpi: ") + what + " failed: " + msg);
  }
}

/// MPI_User_function: inout[i] = merge(in[i], inout[i]) for `*len` serialized accumulators.
template <class A>
void merge_serialized(void* in, void* inout, int* len, MPI_Datatype*) {
  using acc = core::exact_accumulator<A>;
  constexpr std::size_t S = acc::serialized_size;
  const unsigned char* a = static_cast<const unsigned char*>(in);
  unsigned char* b = static_cast<unsigned char*>(inout);
  for (int i = 0; i < *len; ++i) {
    acc x, y;
    if (!x.from_bytes(a + S * static_cast<std::size_t>(i), S) || !y.from_bytes(b + S * static_cast<std::size_t>(i), S)) {
      // Cannot throw through the MPI library; the bytes were written by to_bytes on another
      // rank, so this means a rank used a different T or a different library version.
      std::fprintf(stderr, "bitexact::mpi: received bytes that are not an exact_accumulator of this type/version\n");
      MPI_Abort(MPI_COMM_WORLD, 70);
      return;
    }
    y.merge(x);
    y.to_bytes(b + S * static_cast<std::size_t>(i));
  }
}

/// A committed contiguous byte type of one serialized accumulator and the merge op; freed on
/// destruction.
template <class A>
class merge_handles {
 public:
  merge_handles() {
    check(MPI_Type_contiguous(static_cast<int>(core::exact_accumulator<A>::serialized_size), MPI_BYTE, &type_),
          "MPI_Type_contiguous");
    check(MPI_Type_commit(&type_), "MPI_Type_commit");
    check(MPI_Op_create(&merge_serialized<A>, /*commute=*/1, &op_), "MPI_Op_create");
  }
  ~merge_handles() {
    MPI_Op_free(&op_);
    MPI_Type_free(&type_);
  }
  merge_handles(const merge_handles&) = delete;
  merge_handles& operator=(const merge_handles&) = delete;
  MPI_Datatype type() const { return type_; }
  MPI_Op op() const { return op_; }

 private:
  MPI_Datatype type_ = MPI_DATATYPE_NULL;
  MPI_Op op_ = MPI_OP_NULL;
};

inline void require_exact(tier t, const char* fn) {
  if (t != tier::exact)
    throw std::invalid_argument(std::string("bitexact::mpi::") + fn +
                                ": only tier::exact is independent of how the data is split across ranks; "
                                "a fixed_order sum across ranks would depend on the split");
}

}  // namespace detail

/// Replaces accs[0 .. count) on every rank of comm by the exact element-wise sums over all
/// ranks (values and flags). Collective; count must be the same on every rank. A is float or
/// double.
template <class A>
void allreduce_accumulators(core::exact_accumulator<A>* accs, std::size_t count, MPI_Comm comm) {
  using acc = core::exact_accumulator<A>;
  constexpr std::size_t S = acc::serialized_size;
  if (count == 0) return;
  if (accs == nullptr) throw std::invalid_argument("bitexact::mpi::allreduce_accumulators: accs is null");
  if (count > static_cast<std::size_t>(0x7fffffff))
    throw std::invalid_argument("bitexact::mpi::allreduce_accumulators: count must fit an int");
  std::vector<unsigned char> buf(S * count);
  for (std::size_t i = 0; i < count; ++i) accs[i].to_bytes(buf.data() + S * i);
  detail::merge_handles<A> h;
  detail::check(MPI_Allreduce(MPI_IN_PLACE, buf.data(), static_cast<int>(count), h.type(), h.op(), comm),
                "MPI_Allreduce");
  for (std::size_t i = 0; i < count; ++i)
    if (!accs[i].from_bytes(buf.data() + S * i, S))
      throw std::runtime_error("bitexact::mpi::allreduce_accumulators: malformed result");
}

/// Replaces `acc` on every rank by the exact sum of every rank's `acc` (values and flags).
template <class A>
void allreduce_accumulator(core::exact_accumulator<A>& acc, MPI_Comm comm) {
  allreduce_accumulators(&acc, 1, comm);
}

/// The correctly rounded sum of x[0 .. n_local) over all ranks of comm (see the top of the
/// file), in accumulation_t<T>: float for float and bfloat16, double for double. Equals
/// reference::sum_exact on the concatenated data; the same bits on every rank for any split.
template <class T>
core::accumulation_t<T> allreduce_sum(const T* x, std::size_t n_local, MPI_Comm comm, tier t = tier::exact) {
  using A = core::accumulation_t<T>;
  detail::require_exact(t, "allreduce_sum");
  if (n_local > 0 && x == nullptr) throw std::invalid_argument("bitexact::mpi::allreduce_sum: x is null");
  core::exact_accumulator<A> acc;
  for (std::size_t i = 0; i < n_local; ++i) acc.add(A(core::widen(x[i])));
  allreduce_accumulator(acc, comm);
  return acc.round();
}

/// The correctly rounded sum of the exact products x[i]*y[i] over all ranks (reference::dot_exact
/// on the concatenated data).
template <class T>
core::accumulation_t<T> allreduce_dot(const T* x, const T* y, std::size_t n_local, MPI_Comm comm,
                                      tier t = tier::exact) {
  using A = core::accumulation_t<T>;
  detail::require_exact(t, "allreduce_dot");
  if (n_local > 0 && (x == nullptr || y == nullptr)) throw std::invalid_argument("bitexact::mpi::allreduce_dot: null input");
  core::exact_accumulator<A> acc;
  for (std::size_t i = 0; i < n_local; ++i) acc.add_product(A(core::widen(x[i])), A(core::widen(y[i])));
  allreduce_accumulator(acc, comm);
  return acc.round();
}

}  // namespace mpi
}  // namespace bitexact
