// portable_ops_test - the portable build (cmake/bitexactPortable.cmake): libbitexact_ops is
// compiled without -march, yet runs every ISA this CPU has (one kernel module per ISA, chosen
// at run time), says which one runs, and every ISA gives the reference's bits.
// This test is compiled without -march too (it links only the front library and the scalar
// reference), as a distribution's program would be.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include <bitexact/cpu/isa.hpp>
#include <bitexact/reference/reduce.hpp>

#include "bitexact_ops.h"

namespace {

std::vector<std::string> split(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> v;
  for (std::string w; in >> w;) v.push_back(w);
  return v;
}

template <class T>
std::uint64_t bits(T v) {
  std::uint64_t b = 0;
  std::memcpy(&b, &v, sizeof v);
  return b;
}

// Every op of the library on odd sizes and several thread counts, as one vector of bit patterns.
std::vector<std::uint64_t> run_all() {
  std::vector<std::uint64_t> out;
  std::vector<float> x(300007), y(300007);
  EXPECT_EQ(bitexact_ops_uniform_f32(11, 0, x.data(), x.size(), 3), 0) << bitexact_ops_last_error();
  EXPECT_EQ(bitexact_ops_uniform_f32(12, 5, y.data(), y.size(), 2), 0) << bitexact_ops_last_error();
  for (auto& v : x) v = v * 2.0f - 1.0f;
  for (float v : x) out.push_back(bits(v));
  std::vector<double> xd(x.begin(), x.end());
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{4097}, x.size() - 1})
    for (int threads : {1, 2, 3, 7})
      for (int exact : {0, 1}) {
        float s = 0, d = 0;
        double sd = 0;
        EXPECT_EQ(bitexact_ops_sum_f32(x.data() + 1, n, exact, threads, &s), 0) << bitexact_ops_last_error();
        EXPECT_EQ(bitexact_ops_dot_f32(x.data(), y.data() + 1, n, exact, threads, &d), 0) << bitexact_ops_last_error();
        EXPECT_EQ(bitexact_ops_sum_f64(xd.data(), n, exact, threads, &sd), 0) << bitexact_ops_last_error();
        out.push_back(bits(s));
        out.push_back(bits(d));
        out.push_back(bits(sd));
      }
  std::vector<float> sm(37 * 1001);
  EXPECT_EQ(bitexact_ops_softmax_f32(x.data(), 37, 1001, sm.data(), 3), 0) << bitexact_ops_last_error();
  for (float v : sm) out.push_back(bits(v));
  std::vector<std::int64_t> idx(200003);
  for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<std::int64_t>((i * 2654435761u) % 1021);
  for (int exact : {0, 1}) {
    std::vector<float> acc(1021, 0.5f);
    EXPECT_EQ(bitexact_ops_index_add_f32(acc.data(), acc.size(), idx.data(), x.data(), idx.size(), exact, 2), 0)
        << bitexact_ops_last_error();
    for (float v : acc) out.push_back(bits(v));
  }
  return out;
}

TEST(PortableOps, RunsEveryIsaOfThisCpu) {
  const std::vector<std::string> avail = split(bitexact_ops_available_isas());
  for (bitexact::isa i : {bitexact::isa::scalar, bitexact::isa::sse2, bitexact::isa::avx2, bitexact::isa::avx512,
                          bitexact::isa::neon}) {
    const bool listed = std::find(avail.begin(), avail.end(), bitexact::isa_name(i)) != avail.end();
    EXPECT_EQ(listed, bitexact::cpu_has_isa(i)) << bitexact::isa_name(i) << " (available: " << bitexact_ops_available_isas() << ")";
  }
  // This test itself is a baseline build: the header-only path would run sse2 at best here.
  EXPECT_FALSE(bitexact::build_has_isa(bitexact::isa::avx2));
}

TEST(PortableOps, DefaultIsTheBestIsaOfThisCpu) {
  if (std::getenv("BITEXACT_ISA") != nullptr) GTEST_SKIP() << "BITEXACT_ISA is set";
  ASSERT_EQ(bitexact_ops_select_isa("auto"), 0) << bitexact_ops_last_error();
  const std::vector<std::string> avail = split(bitexact_ops_available_isas());
  ASSERT_FALSE(avail.empty());
  EXPECT_EQ(std::string(bitexact_ops_isa()), avail.back());
  EXPECT_EQ(std::string(bitexact_ops_variant()), avail.back() == "scalar" ? "sse2" : avail.back());
  std::printf("portable_ops: default ISA %s (module %s); available: %s\n", bitexact_ops_isa(), bitexact_ops_variant(),
              bitexact_ops_available_isas());
}

TEST(PortableOps, EveryIsaGivesTheSameBits) {
  const std::vector<std::string> avail = split(bitexact_ops_available_isas());
  ASSERT_EQ(bitexact_ops_select_isa("scalar"), 0) << bitexact_ops_last_error();
  const std::vector<std::uint64_t> want = run_all();
  for (const std::string& isa : avail) {
    ASSERT_EQ(bitexact_ops_select_isa(isa.c_str()), 0) << bitexact_ops_last_error();
    EXPECT_EQ(std::string(bitexact_ops_isa()), isa);
    std::printf("portable_ops: ISA %-7s runs in module %s\n", bitexact_ops_isa(), bitexact_ops_variant());
    EXPECT_TRUE(run_all() == want) << "ISA " << isa << " gives other bits than scalar";
  }
}

TEST(PortableOps, EqualsTheReference) {
  ASSERT_EQ(bitexact_ops_select_isa("auto"), 0) << bitexact_ops_last_error();
  std::vector<float> x(100003), y(100003);
  ASSERT_EQ(bitexact_ops_uniform_f32(3, 0, x.data(), x.size(), 2), 0);
  ASSERT_EQ(bitexact_ops_uniform_f32(4, 0, y.data(), y.size(), 2), 0);
  float s = 0, d = 0;
  ASSERT_EQ(bitexact_ops_sum_f32(x.data(), x.size(), 0, 2, &s), 0);
  ASSERT_EQ(bitexact_ops_dot_f32(x.data(), y.data(), x.size(), 1, 2, &d), 0);
  EXPECT_EQ(bits(s), bits(bitexact::reference::sum_fixed_order(x.data(), x.size())));
  EXPECT_EQ(bits(d), bits(bitexact::reference::dot_exact(x.data(), y.data(), x.size())));
}

TEST(PortableOps, BadRequestsAreErrors) {
  EXPECT_EQ(bitexact_ops_select_isa("avx1024"), -1);
  EXPECT_NE(std::string(bitexact_ops_last_error()).find("unknown ISA"), std::string::npos);
  ASSERT_EQ(bitexact_ops_select_isa("auto"), 0);
  float r = 0;
  EXPECT_EQ(bitexact_ops_sum_f32(nullptr, 5, 0, 1, &r), -1);  // the op's std::invalid_argument, as a code
  EXPECT_FALSE(std::string(bitexact_ops_last_error()).empty());
}

// Run by CTest with BITEXACT_ISA set: the environment picks the module.
TEST(PortableOps, EnvironmentSelects) {
  const char* want = std::getenv("BITEXACT_EXPECT_VARIANT");
  if (want == nullptr) GTEST_SKIP() << "BITEXACT_EXPECT_VARIANT not set";
  ASSERT_EQ(bitexact_ops_select_isa("auto"), 0) << bitexact_ops_last_error();
  EXPECT_EQ(std::string(bitexact_ops_variant()), want);
  EXPECT_EQ(std::string(bitexact_ops_isa()), std::getenv("BITEXACT_ISA"));
  std::printf("portable_ops: BITEXACT_ISA=%s runs module %s\n", bitexact_ops_isa(), bitexact_ops_variant());
}

}  // namespace
