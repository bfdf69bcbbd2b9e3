// axis_test: every 1-D reduction along rows and columns equals the scalar reference
// (reference/reduce.hpp, reference/minmax.hpp) on that row or column, for any thread count
// (the grain lowered so that threads {1, 2, 3, 4, 7, 8} really split the rows and columns), ISA
// and batch size.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include <bitexact/axis.hpp>
#include <bitexact/reference/minmax.hpp>
#include <bitexact/reference/reduce.hpp>

#include "split_probe.hpp"

namespace {

using namespace bitexact;

template <class T>
std::uint64_t bits(T x) {
  std::uint64_t u = 0;
  std::memcpy(&u, &x, sizeof x);
  return u;
}

template <class T>
std::vector<T> matrix(std::size_t rows, std::size_t ld, std::mt19937_64& g) {
  std::vector<T> m(rows * ld + 1);
  std::normal_distribution<double> d(0.0, 1.0);
  for (auto& v : m) v = static_cast<T>(std::ldexp(d(g), static_cast<int>(g() % 20) - 10));
  return m;
}

std::vector<execution> configs() {
  std::vector<execution> v;
  for (isa i : usable_isas())
    for (int t : {1, 2, 3, 4, 7, 8}) v.push_back(execution{t, i});
  return v;
}

template <class T>
void check_all(std::size_t rows, std::size_t cols, std::size_t ld, std::mt19937_64& g) {
  using A = core::accumulation_t<T>;
  const auto m = matrix<T>(rows, ld, g), m2 = matrix<T>(rows, ld, g);
  const T* x = m.data() + 1;  // unaligned
  const T* y = m2.data() + 1;
  // expectations from the scalar reference
  std::vector<A> rsq(rows), rnorm(rows), rvar(rows), rdot(rows), csq(cols), cvar(cols), cdot(cols);
  std::vector<T> rmin(rows), cmax(cols);
  std::vector<std::size_t> rarg(rows), carg(cols);
  std::vector<T> col(rows), col2(rows);
  for (std::size_t r = 0; r < rows; ++r) {
    rsq[r] = reference::squared_norm_exact(x + r * ld, cols);
    rnorm[r] = std::sqrt(reference::squared_norm_fixed_order(x + r * ld, cols));
    rvar[r] = reference::variance_fixed_order(x + r * ld, cols, 1);
    rdot[r] = reference::dot_fixed_order(x + r * ld, y + r * ld, cols);
    if (cols) {
      rmin[r] = reference::min(x + r * ld, cols);
      rarg[r] = reference::argmax(x + r * ld, cols);
    }
  }
  for (std::size_t c = 0; c < cols; ++c) {
    for (std::size_t r = 0; r < rows; ++r) {
      col[r] = x[r * ld + c];
      col2[r] = y[r * ld + c];
    }
    csq[c] = reference::squared_norm_fixed_order(col.data(), rows);
    cvar[c] = reference::variance_exact(col.data(), rows, 0);
    cdot[c] = reference::dot_exact(col.data(), col2.data(), rows);
    if (rows) {
      cmax[c] = reference::max(col.data(), rows);
      carg[c] = reference::argmin(col.data(), rows);
    }
  }
  auto same = [](const auto& a, const auto& b) {
    for (std::size_t i = 0; i < a.size(); ++i)
      if (bits(a[i]) != bits(b[i])) return false;
    return true;
  };
  for (const execution& e : configs()) {
    std::vector<A> o(rows), oc(cols);
    std::vector<T> t(rows), tc(cols);
    std::vector<std::size_t> s(rows), sc(cols);
    row_squared_norm(x, rows, cols, ld, o.data(), tier::exact, e);
    EXPECT_TRUE(same(o, rsq)) << rows << "x" << cols << " threads " << e.threads;
    row_norm(x, rows, cols, ld, o.data(), tier::fixed_order, e);
    EXPECT_TRUE(same(o, rnorm));
    row_variance(x, rows, cols, ld, o.data(), 1, tier::fixed_order, e);
    EXPECT_TRUE(same(o, rvar));
    row_dot(x, ld, y, ld, rows, cols, o.data(), tier::fixed_order, e);
    EXPECT_TRUE(same(o, rdot));
    col_squared_norm(x, rows, cols, ld, oc.data(), tier::fixed_order, e);
    EXPECT_TRUE(same(oc, csq));
    col_variance(x, rows, cols, ld, oc.data(), 0, tier::exact, e);
    EXPECT_TRUE(same(oc, cvar));
    col_dot(x, ld, y, ld, rows, cols, oc.data(), tier::exact, e);
    EXPECT_TRUE(same(oc, cdot));
    if (cols && rows) {
      row_min(x, rows, cols, ld, t.data(), e);
      EXPECT_TRUE(same(t, rmin));
      row_argmax(x, rows, cols, ld, s.data(), e);
      EXPECT_EQ(s, rarg);
      col_max(x, rows, cols, ld, tc.data(), e);
      EXPECT_TRUE(same(tc, cmax));
      col_argmin(x, rows, cols, ld, sc.data(), e);
      EXPECT_EQ(sc, carg);
    }
  }
}

TEST(Axis, EveryOpEqualsTheReference) {
  bitexact_test::split_check split("axis ops");
  std::mt19937_64 g(5);
  for (auto [rows, cols, ld] : {std::tuple<std::size_t, std::size_t, std::size_t>{1, 1, 1}, {3, 7, 9}, {37, 100, 101},
                                 {5, 4097, 4100}, {4099, 3, 3}, {0, 5, 5}, {5, 0, 0}}) {
    check_all<float>(rows, cols, ld, g);
    check_all<double>(rows, cols, ld, g);
  }
}

TEST(Axis, RowsDoNotDependOnTheBatch) {
  std::mt19937_64 g(6);
  const std::size_t cols = 777, ld = 780;
  const auto m = matrix<float>(37, ld, g);
  std::vector<float> batch(37), alone(1);
  row_variance(m.data(), 37, cols, ld, batch.data(), 0, tier::fixed_order, execution{3});
  for (std::size_t r = 0; r < 37; ++r) {
    row_variance(m.data() + r * ld, 1, cols, ld, alone.data());
    EXPECT_EQ(bits(alone[0]), bits(batch[r])) << r;
  }
}

TEST(Axis, Bfloat16AndBadInput) {
  std::vector<bfloat16> b(12);
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = bfloat16::from_float(static_cast<float>(i) - 5.5f);
  std::vector<float> out(3);
  row_squared_norm(b.data(), 3, 4, 4, out.data());
  for (std::size_t r = 0; r < 3; ++r) EXPECT_EQ(bits(out[r]), bits(squared_norm(b.data() + 4 * r, 4)));
  std::vector<bfloat16> mn(4);
  col_min(b.data(), 3, 4, 4, mn.data());
  EXPECT_EQ(mn[0].to_float(), -5.5f);
  std::vector<float> x(12, 1.0f), o(12, 9.0f);
  EXPECT_THROW(row_norm(x.data(), 3, 4, 3, o.data()), std::invalid_argument);  // ld < cols
  EXPECT_THROW(row_norm(static_cast<const float*>(nullptr), 3, 4, 4, o.data()), std::invalid_argument);
  EXPECT_THROW(col_norm(x.data(), 3, 4, 4, static_cast<float*>(nullptr)), std::invalid_argument);
  std::vector<std::size_t> idx(3, 99);
  EXPECT_THROW(row_argmin(x.data(), 3, 0, 0, idx.data()), std::invalid_argument);  // empty rows
  EXPECT_EQ(idx, std::vector<std::size_t>(3, 99));
  std::vector<float> v(3);
  row_variance(x.data(), 3, 1, 4, v.data(), 1);  // n <= ddof: NaN, as in 1-D
  EXPECT_TRUE(std::isnan(v[0]));
}

}  // namespace
