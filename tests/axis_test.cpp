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

#include "golden_file.hpp"
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

// ---------------------------------------------------------------- golden values (order version 1)
// Every axis op, rows and columns, both tiers, float and double: the hash of the reference's
// result on each row (column), pinned in tests/data/axis_golden_v1.txt; every fast path must match.
template <class T>
void axis_golden_rows(bitexact_test::golden_table& table, const char* tname, std::uint32_t tag) {
  using A = core::accumulation_t<T>;
  const std::size_t rows = 19, cols = 1500, ld = 1503;
  const auto xv = bitexact_test::golden_data<T>(rows * ld, tag, 3.0, 0.5), yv = bitexact_test::golden_data<T>(rows * ld, tag + 1);
  const T* x = xv.data();
  const T* y = yv.data();
  // Row r is x[r*ld ..), column c the strided x[c], x[ld + c], ...: gathered for the reference.
  auto line = [&](const T* m, bool by_row, std::size_t i) {
    std::vector<T> v(by_row ? cols : rows);
    for (std::size_t j = 0; j < v.size(); ++j) v[j] = by_row ? m[i * ld + j] : m[j * ld + i];
    return v;
  };
  auto pin = [&](const std::string& name, const auto& want, auto&& run) {
    using R = typename std::decay_t<decltype(want)>::value_type;
    table.add(name + "." + tname, want);
    bitexact_test::for_each_fast_path([&](const execution& e, const std::string& label) {
      std::vector<R> got(want.size(), R(7));
      run(e, got.data());
      EXPECT_TRUE(bitexact_test::same_bits(want, got.data(), got.size())) << name << "." << tname << " " << label;
    });
  };
  for (bool by_row : {true, false}) {
    const std::size_t count = by_row ? rows : cols;
    const std::string d = by_row ? "row_" : "col_";
    for (tier t : {tier::fixed_order, tier::exact}) {
      const bool ex = t == tier::exact;
      const std::string tn = ex ? ".exact" : ".fixed_order";
      std::vector<A> sq(count), nr(count), var(count), dt(count);
      for (std::size_t i = 0; i < count; ++i) {
        const auto v = line(x, by_row, i), w = line(y, by_row, i);
        sq[i] = ex ? reference::squared_norm_exact(v.data(), v.size()) : reference::squared_norm_fixed_order(v.data(), v.size());
        nr[i] = std::sqrt(sq[i]);
        var[i] = ex ? reference::variance_exact(v.data(), v.size(), 1) : reference::variance_fixed_order(v.data(), v.size(), 1);
        dt[i] = ex ? reference::dot_exact(v.data(), w.data(), v.size()) : reference::dot_fixed_order(v.data(), w.data(), v.size());
      }
      pin(d + "squared_norm" + tn, sq, [&](const execution& e, A* o) {
        by_row ? row_squared_norm(x, rows, cols, ld, o, t, e) : col_squared_norm(x, rows, cols, ld, o, t, e);
      });
      pin(d + "norm" + tn, nr, [&](const execution& e, A* o) {
        by_row ? row_norm(x, rows, cols, ld, o, t, e) : col_norm(x, rows, cols, ld, o, t, e);
      });
      pin(d + "variance1" + tn, var, [&](const execution& e, A* o) {
        by_row ? row_variance(x, rows, cols, ld, o, 1, t, e) : col_variance(x, rows, cols, ld, o, 1, t, e);
      });
      pin(d + "dot" + tn, dt, [&](const execution& e, A* o) {
        by_row ? row_dot(x, ld, y, ld, rows, cols, o, t, e) : col_dot(x, ld, y, ld, rows, cols, o, t, e);
      });
    }
    std::vector<T> mn(count), mx(count);
    std::vector<std::size_t> amn(count), amx(count);
    for (std::size_t i = 0; i < count; ++i) {
      const auto v = line(x, by_row, i);
      mn[i] = reference::min(v.data(), v.size());
      mx[i] = reference::max(v.data(), v.size());
      amn[i] = reference::argmin(v.data(), v.size());
      amx[i] = reference::argmax(v.data(), v.size());
    }
    pin(d + "min", mn, [&](const execution& e, T* o) { by_row ? row_min(x, rows, cols, ld, o, e) : col_min(x, rows, cols, ld, o, e); });
    pin(d + "max", mx, [&](const execution& e, T* o) { by_row ? row_max(x, rows, cols, ld, o, e) : col_max(x, rows, cols, ld, o, e); });
    // Indices hashed as 64-bit integers, whatever size_t is.
    auto as_u64 = [](const std::vector<std::size_t>& v) { return std::vector<std::uint64_t>(v.begin(), v.end()); };
    table.add(d + "argmin." + tname, as_u64(amn));
    table.add(d + "argmax." + tname, as_u64(amx));
    bitexact_test::for_each_fast_path([&](const execution& e, const std::string& label) {
      std::vector<std::size_t> o(count, 7);
      by_row ? row_argmin(x, rows, cols, ld, o.data(), e) : col_argmin(x, rows, cols, ld, o.data(), e);
      EXPECT_EQ(o, amn) << d << "argmin." << tname << " " << label;
      by_row ? row_argmax(x, rows, cols, ld, o.data(), e) : col_argmax(x, rows, cols, ld, o.data(), e);
      EXPECT_EQ(o, amx) << d << "argmax." << tname << " " << label;
    });
  }
}

TEST(AxisGolden, EveryOpKnownAnswerFile) {
  static_assert(reduce_order_version == 1, "order version changed: write axis_golden_v2.txt and update CHANGELOG");
  bitexact_test::golden_table table;
  axis_golden_rows<float>(table, "f32", 400);
  axis_golden_rows<double>(table, "f64", 500);
  table.check("axis_golden_v1.txt");
}

}  // namespace
