// fp_environment_test: the self-check of the calling thread's floating-point mode (DESIGN 3).
// An op run with FTZ, DAZ or a directed rounding mode throws instead of computing different bits.
#include <gtest/gtest.h>

#include <cfenv>
#include <cstdint>
#include <vector>

#include <bitexact/bitexact.hpp>

#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

namespace {

// Restores the mode whatever the test does.
struct mode_guard {
  std::fenv_t env{};
#if defined(__SSE2__)
  unsigned csr = _mm_getcsr();
#endif
  mode_guard() { std::fegetenv(&env); }
  ~mode_guard() {
    std::fesetenv(&env);
#if defined(__SSE2__)
    _mm_setcsr(csr);
#endif
  }
};

const bitexact::stream<bitexact::philox4x32_10> kStream(bitexact::philox4x32_10::key_type{1, 2});

TEST(FpEnvironment, DefaultModeIsOk) {
  const auto s = bitexact::fp_environment();
  EXPECT_TRUE(s.ok()) << s.describe();
  std::vector<float> out(1000);
  EXPECT_NO_THROW(bitexact::generate_normal(kStream, 0, out.data(), out.size()));
}

#if defined(__SSE2__)
TEST(FpEnvironment, FlushToZeroIsRefused) {
  std::vector<float> out(1000, 7.0f);
  {
    mode_guard g;
    _mm_setcsr(_mm_getcsr() | 0x8000u);
    EXPECT_TRUE(bitexact::fp_environment().flush_to_zero);
    EXPECT_THROW(bitexact::generate_normal(kStream, 0, out.data(), out.size()), bitexact::fp_environment_error);
  }
  for (float v : out) ASSERT_EQ(v, 7.0f);  // nothing written
  EXPECT_TRUE(bitexact::fp_environment().ok());
}

TEST(FpEnvironment, DenormalsAreZeroIsRefused) {
  mode_guard g;
  _mm_setcsr(_mm_getcsr() | 0x0040u);
  EXPECT_TRUE(bitexact::fp_environment().denormals_are_zero);
  std::vector<float> x(100, 1.0f), y(100);
  try {
    bitexact::dropout(kStream, 0, x.data(), y.data(), x.size(), 0.5);
    ADD_FAILURE() << "dropout ran with DAZ set";
  } catch (const bitexact::fp_environment_error& e) {
    EXPECT_NE(std::string(e.what()).find("denormals-are-zero"), std::string::npos) << e.what();
  }
}
#endif

TEST(FpEnvironment, ReductionsRefuseToo) {
  std::vector<float> x(1000, 0.5f);
  mode_guard g;
  ASSERT_EQ(std::fesetround(FE_TOWARDZERO), 0);
  EXPECT_THROW(bitexact::sum(x.data(), x.size()), bitexact::fp_environment_error);
  EXPECT_THROW(bitexact::dot(x.data(), x.data(), x.size(), bitexact::tier::exact), bitexact::fp_environment_error);
}

TEST(FpEnvironment, DirectedRoundingIsRefused) {
  mode_guard g;
  ASSERT_EQ(std::fesetround(FE_UPWARD), 0);
  EXPECT_FALSE(bitexact::fp_environment().round_to_nearest);
  std::vector<double> out(10);
  EXPECT_THROW(bitexact::generate_normal(kStream, 0, out.data(), out.size()), bitexact::fp_environment_error);
}

}  // namespace
