// Known-answer files (tests/data/<family>_golden_v<order version>.txt), Random123 style: one
// "name hash" line per output, the hash being fnv1a64 of the output's bytes as computed by the
// REFERENCE implementation; the fast paths (default execution, every ISA the CPU has, threads
// {1, 2, 3} with the per-thread grain lowered so that they really split) must give the same
// bytes. The values in the files are written literally (made once with BITEXACT_PRINT_GOLDEN=<file>
// from the code of the order version named in the file name), so changing one value, or a
// kernel's bits, fails the test until the order version is bumped (CHANGELOG.md).
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <bitexact/cpu/isa.hpp>
#include <bitexact/cpu/threads.hpp>
#include <bitexact/core/bfloat16.hpp>
#include <bitexact/execution.hpp>
#include <bitexact/reference/random.hpp>

#include "random_test_util.hpp"
#include "test_data.hpp"

namespace bitexact_test {

/// "name hash" rows, read from or compared with a file under tests/data.
struct golden_table {
  std::vector<std::pair<std::string, std::uint64_t>> rows;

  void add(const std::string& name, std::uint64_t h) { rows.emplace_back(name, h); }
  template <class T>
  void add(const std::string& name, const std::vector<T>& v) { add(name, fnv1a64(v.data(), v.size() * sizeof(T))); }

  /// Compares the rows with the file (same names, same order, same hashes). With the
  /// environment variable BITEXACT_PRINT_GOLDEN=<path> set, writes the rows there first.
  void check(const std::string& file) const {
    if (const char* out = std::getenv("BITEXACT_PRINT_GOLDEN")) {
      FILE* f = std::fopen(out, "w");
      ASSERT_NE(f, nullptr) << out;
      for (const auto& r : rows) std::fprintf(f, "%s %016llx\n", r.first.c_str(), static_cast<unsigned long long>(r.second));
      std::fclose(f);
    }
    const std::string path = data_path(file);
    FILE* f = std::fopen(path.c_str(), "r");
    ASSERT_NE(f, nullptr) << "missing " << path << " (set BITEXACT_TEST_DATA_DIR to the tests/data folder)";
    char name[256];
    unsigned long long h = 0;
    std::size_t k = 0;
    while (std::fscanf(f, "%255s %llx", name, &h) == 2) {
      if (k >= rows.size()) {
        ADD_FAILURE() << path << " has more rows than the test computes";
        break;
      }
      EXPECT_EQ(rows[k].first, name) << path << " row " << k + 1;
      EXPECT_EQ(rows[k].second, static_cast<std::uint64_t>(h))
          << rows[k].first << ": computed " << std::hex << rows[k].second << ", pinned " << h;
      ++k;
    }
    std::fclose(f);
    EXPECT_EQ(k, rows.size()) << path << ": outputs without a pinned hash";
  }
};

/// Golden inputs from bitexact's own counter-based generator (the reference loops, so they do
/// not depend on the code under test's fast paths): value i is scale * N(0,1) + shift from
/// stream<philox4x32_10>::from_seed(20261130, 0, 0, tag), rounded to T.
template <class T>
std::vector<T> golden_data(std::size_t n, std::uint32_t tag, double scale = 1.0, double shift = 0.0) {
  std::vector<double> z(n);
  const auto s = ::bitexact::stream<::bitexact::philox4x32_10>::from_seed(20261130, 0, 0, tag);
  ::bitexact::reference::generate_normal(s, 0, z.data(), n);
  std::vector<T> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double x = z[i] * scale + shift;
    if constexpr (std::is_same<T, ::bitexact::bfloat16>::value)
      v[i] = ::bitexact::bfloat16::from_float(static_cast<float>(x));
    else
      v[i] = static_cast<T>(x);
  }
  return v;
}

/// The fast paths a golden test runs: the default execution, then every ISA this CPU has with
/// 1, 2 and 3 threads. `body(execution, label)` runs under a lowered per-thread grain (the
/// documented test hook of cpu/threads.hpp), so the 2- and 3-thread runs really split.
template <class Body>
void for_each_fast_path(Body&& body) {
  body(::bitexact::execution{}, std::string("default"));
  ::bitexact::cpu::detail::set_min_work_per_thread(1);
  struct restore {
    ~restore() { ::bitexact::cpu::detail::set_min_work_per_thread(0); }
  } r;
  for (::bitexact::isa i : ::bitexact::usable_isas())
    for (int t : {1, 2, 3}) body(::bitexact::execution{t, i}, "isa" + std::to_string(static_cast<int>(i)) + "/t" + std::to_string(t));
}

}  // namespace bitexact_test
