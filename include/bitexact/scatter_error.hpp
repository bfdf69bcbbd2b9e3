// bitexact/scatter_error.hpp - the error of a scatter whose index is out of range.
//
// Shared by the CPU backend (cpu/scatter_kernels.hpp) and the CUDA launchers (cuda/scatter.cuh),
// which never include each other (DESIGN 5: backends only meet in core and in the public API).
#pragma once
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

#include "core/scatter.hpp"

namespace bitexact {

/// Thrown (before anything is written) when an index is negative or not below the bound.
/// position is the lowest offending source position, index its value.
class index_error : public std::out_of_range {
 public:
  index_error(const std::string& what, std::size_t position, std::int64_t index, std::size_t bound)
      : std::out_of_range(what), position_(position), index_(index), bound_(bound) {}
  std::size_t position() const noexcept { return position_; }
  std::int64_t index() const noexcept { return index_; }
  std::size_t bound() const noexcept { return bound_; }

 private:
  std::size_t position_;
  std::int64_t index_;
  std::size_t bound_;
};

namespace detail {
/// The message of an index_error, the same for every backend.
inline std::string index_error_message(const char* what, long long index, std::uint64_t position,
                                       std::size_t bound) {
  return std::string("bitexact::") + what + ": index " + std::to_string(index) + " at position " +
         std::to_string(position) + " is outside [0, " + std::to_string(bound) + ")";
}

/// Embedding bags: offsets[bag] breaks the rule (offsets start at 0, never decrease and stay
/// <= n_indices).
inline std::invalid_argument bad_offsets_error(const char* what, std::uint64_t bag) {
  return std::invalid_argument(std::string("bitexact::") + what +
                               ": offsets must start at 0, not decrease and stay <= n_indices (bad offset at bag " +
                               std::to_string(bag) + ")");
}

/// Embedding bags: indices without any bag (offsets[0] == 0 puts every index into a bag, so
/// n_indices > 0 needs n_bags > 0).
inline void check_bags_cover_indices(const char* what, std::uint64_t n_bags, std::uint64_t n_indices) {
  if (n_bags == 0 && n_indices > 0)
    throw std::invalid_argument(std::string("bitexact::") + what + ": " + std::to_string(n_indices) +
                                " indices but no bag (offsets[0] == 0 starts the first bag at index 0)");
}

/// Argument checks of histogram and the embedding-bag ops, shared by every backend (the CPU
/// ops, the CUDA launchers and their emulation): std::invalid_argument with the op's name.
/// (Embedding bags: `rows` is the table, or grad_table for the backward; `out` is out, or
/// grad_out.)
template <class A>
void check_histogram_arguments(const char* what, std::size_t n_bins, A lo, A hi, const void* out, const void* x,
                               std::size_t n) {
  if (n_bins == 0 || out == nullptr)
    throw std::invalid_argument(std::string("bitexact::") + what + ": need n_bins > 0 and an out array");
  if (!(lo < hi && hi - lo < std::numeric_limits<A>::infinity()))
    throw std::invalid_argument(std::string("bitexact::") + what + ": need finite lo < hi");
  if (n > 0 && x == nullptr) throw std::invalid_argument(std::string("bitexact::") + what + ": null x with n > 0");
}
inline void check_bag_arguments(const char* what, std::size_t width, std::size_t n_bags, std::size_t n_indices,
                                const void* out, const void* offsets, const void* indices, const void* rows,
                                bool weights, bag_mode mode) {
  if (width == 0) throw std::invalid_argument(std::string("bitexact::") + what + ": width must be > 0");
  if (n_bags > 0 && (out == nullptr || offsets == nullptr))
    throw std::invalid_argument(std::string("bitexact::") + what + ": null out or offsets with bags");
  if (n_indices > 0 && (indices == nullptr || rows == nullptr))
    throw std::invalid_argument(std::string("bitexact::") + what + ": null indices or table");
  if (weights && mode != bag_mode::sum)
    throw std::invalid_argument(std::string("bitexact::") + what + ": per_sample_weights are only defined for bag_mode::sum");
  check_bags_cover_indices(what, n_bags, n_indices);
}

/// embedding_bag_max_backward: max_positions[s] is neither -1 nor a position below n_indices.
inline std::invalid_argument bad_max_position_error(const char* what, std::uint64_t s) {
  return std::invalid_argument(std::string("bitexact::") + what + ": max position out of range at " + std::to_string(s));
}

/// Throws the error of embedding_bag_max_backward's gradient element s, whose recorded
/// position p failed core::max_backward_target with `status`; row is indices[p] when the
/// status is bad_index.
[[noreturn]] inline void throw_max_target_error(const char* what, core::max_target_status status, std::uint64_t s,
                                                std::int64_t p, long long row, std::size_t n_rows) {
  if (status == core::max_target_status::bad_position) throw bad_max_position_error(what, s);
  throw index_error(index_error_message(what, row, static_cast<std::uint64_t>(p), n_rows), static_cast<std::size_t>(p),
                    static_cast<std::int64_t>(row), n_rows);
}
}  // namespace detail

}  // namespace bitexact
