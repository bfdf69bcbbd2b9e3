// Test helpers for the pool's grain hook and split probe (cpu/threads.hpp): lower every
// family's per-thread grain to one value, and prove that a matrix over threads {2, 3, 4, 7, 8}
// really split its work over that many threads.
#pragma once
#include <gtest/gtest.h>

#include <string>

#include <bitexact/cpu/threads.hpp>

#include "random_test_util.hpp"  // matrix_threads

namespace bitexact_test {

/// Lowers every family's per-thread grain to one value (the documented test hook) while it
/// lives, and records which thread splits the parallel regions ran since it was made: a matrix
/// over threads {2, 3, 4, 7, 8} proves with it that the work was really split.
struct split_probe {
  explicit split_probe(bool lower_grain = true) {
    if (lower_grain) ::bitexact::cpu::detail::set_min_work_per_thread(1);
    ::bitexact::cpu::detail::split_seen().store(0);
  }
  ~split_probe() { ::bitexact::cpu::detail::set_min_work_per_thread(0); }
  split_probe(const split_probe&) = delete;
  split_probe& operator=(const split_probe&) = delete;
  /// Whether some parallel region ran on exactly t threads.
  bool saw(int t) const { return t <= 1 || ((::bitexact::cpu::detail::split_seen().load() >> t) & 1u) != 0; }
  /// The widest region since the probe was made (1: none ran in parallel).
  int widest() const {
    const std::uint64_t m = ::bitexact::cpu::detail::split_seen().load();
    int w = 1;
    for (int k = 2; k < 64; ++k)
      if ((m >> k) & 1u) w = k;
    return w;
  }
};

/// A split_probe that, when the test ends without a fatal failure, expects that parallel
/// regions of every thread count above 1 of matrix_threads ran (2, 3, 4, 7 and 8; 3 and 8 in
/// the sanitizer build): the matrix really split its work.
struct split_check : split_probe {
  explicit split_check(std::string what) : what_(std::move(what)) {}
  ~split_check() {
    if (::testing::Test::HasFatalFailure()) return;
    for (int t : matrix_threads) {
      if (t > 1) {
        EXPECT_TRUE(saw(t)) << what_ << ": no parallel region ran on " << t << " threads";
      }
    }
  }
  std::string what_;
};

}  // namespace bitexact_test
