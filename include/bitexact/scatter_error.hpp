// bitexact/scatter_error.hpp - the error of a scatter whose index is out of range.
//
// Shared by the CPU backend (cpu/scatter_kernels.hpp) and the CUDA launchers (cuda/scatter.cuh),
// which never include each other (DESIGN 5: backends only meet in core and in the public API).
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

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
}  // namespace detail

}  // namespace bitexact
