// reduce_contract_test: this file is compiled with floating-point contraction ENABLED
// (tests/CMakeLists.txt overrides the target's -ffp-contract=off), so the compiler would fuse
// any multiply feeding an add into an FMA. The fixed_order kernels must still compute dot and
// variance as a multiply rounded, then an add: they pin every product in a register.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include <bitexact/reduce.hpp>
#include <bitexact/reference/reduce.hpp>

using namespace bitexact;

namespace {

template <class A>
std::uint64_t bits(A v) {
  std::uint64_t u = 0;
  std::memcpy(&u, &v, sizeof v);
  return u;
}

// Values whose products have low bits that an FMA would keep and a rounded multiply drops.
template <class T>
std::vector<T> data(std::size_t n, std::uint32_t seed) {
  std::vector<T> v(n);
  std::uint32_t s = seed;
  for (std::size_t i = 0; i < n; ++i) {
    s = s * 1664525u + 1013904223u;
    v[i] = static_cast<T>(1.0 + static_cast<double>(s >> 8) * 0x1p-24) * ((s & 1) ? T(1) : T(-1));
  }
  return v;
}

/// x[i] = +-(1 + 2^-p), y[i] = 1 + 2^-p, the sign alternating between the successive values of
/// each virtual lane: the rounded products cancel exactly in each lane, a fused multiply-add
/// keeps -2^-2p per pair.
template <class T>
void cancelling_pairs(std::size_t n, std::vector<T>& x, std::vector<T>& y) {
  constexpr int p = sizeof(T) == 4 ? 12 : 27;
  constexpr std::size_t lanes = core::fixed_order_shape<T>::lanes;
  const T a = T(1) + T(1) / T(std::uint64_t(1) << p);
  x.resize(n);
  y.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    x[i] = (i / lanes) % 2 ? -a : a;
    y[i] = a;
  }
}

template <class T>
void check() {
  for (std::size_t n : {std::size_t{100}, std::size_t{5000}, std::size_t{70001}}) {
    auto x = data<T>(n, 1), y = data<T>(n, 2);
    std::vector<T> cx, cy;
    const std::size_t nc = n / 128 * 128 + 128;  // every lane gets an even count
    cancelling_pairs(nc, cx, cy);
    EXPECT_EQ(bits(reference::dot_fixed_order(cx.data(), cy.data(), nc)), bits(T(0)));
    for (isa i : usable_isas()) {
      EXPECT_EQ(bits(T(0)), bits(dot(cx.data(), cy.data(), nc, tier::fixed_order, execution{1, i})))
          << "cancelling pairs " << isa_name(i) << " n=" << nc;
      const execution e{2, i};
      EXPECT_EQ(bits(reference::dot_fixed_order(x.data(), y.data(), n)), bits(dot(x.data(), y.data(), n, tier::fixed_order, e)))
          << isa_name(i) << " n=" << n;
      EXPECT_EQ(bits(reference::variance_fixed_order(x.data(), n)), bits(variance(x.data(), n, 0, tier::fixed_order, e)))
          << isa_name(i) << " n=" << n;
    }
  }
}

/// The premise of this file: contraction really is on in this unit. a * b + c with an exact
/// product of 1 - 2^-54 rounds to 1 when multiplied alone (then + -1 gives 0) and gives -2^-54
/// when fused. Needs a target with FMA (the build's -march); without one nothing can fuse.
TEST(ReduceContraction, ThisUnitContracts) {
#if defined(__FMA__) || defined(__aarch64__)
  volatile double va = 1.0 + 0x1p-27, vb = 1.0 - 0x1p-27, vc = -1.0;
  const double a = va, b = vb, c = vc;
  const double r = a * b + c;
  EXPECT_EQ(r, -0x1p-54) << "the compiler did not fuse a * b + c: the contraction flag of tests/CMakeLists.txt is not in effect";
#else
  GTEST_SKIP() << "no FMA in this build's target: the compiler cannot contract";
#endif
}

TEST(ReduceContraction, DotAndVarianceNeverFuseFloat) { check<float>(); }
TEST(ReduceContraction, DotAndVarianceNeverFuseDouble) { check<double>(); }

}  // namespace
