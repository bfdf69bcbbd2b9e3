// gemm_exact_test: the exact tier of GEMM against an independent oracle.
//
// The oracle below shares no code with the library: it splits each factor with frexp/ldexp,
// multiplies the integer mantissas in unsigned __int128, adds each product into one of two big
// unsigned fixed-point magnitudes (positive and negative terms), subtracts them, and rounds to
// nearest even by comparing the discarded bits with one half; NaN, Inf and -0 follow the rules
// stated in core/gemm_exact.hpp, written out again here.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <vector>

#include <bitexact/cpu/gemm_exact.hpp>

namespace {

using bitexact::transpose;
using bitexact::cpu::detail::gemm_exact_kernel;

// ---------------------------------------------------------------- the oracle
constexpr int kOffset = 2400;  // bit 0 of the magnitudes has weight 2^-2400
constexpr int kWords = 150;    // up to 2^2400

struct Big {
  std::vector<std::uint32_t> w = std::vector<std::uint32_t>(kWords, 0);
  void add(unsigned __int128 m, int bit) {  // += m * 2^bit (bit is an index)
    int word = bit / 32, sh = bit % 32;
    // m < 2^106, shifted by < 32: split into 32-bit pieces with carry.
    unsigned __int128 lo = m << sh;  // the low 128 bits; `extra` holds what is shifted out
    std::uint64_t extra = sh ? static_cast<std::uint64_t>(m >> (128 - sh)) : 0;
    std::uint64_t carry = 0;
    for (int i = 0; i < 5; ++i) {
      std::uint64_t piece = i < 4 ? static_cast<std::uint32_t>(lo >> (32 * i)) : extra;
      std::uint64_t v = std::uint64_t(w[word + i]) + piece + carry;
      w[word + i] = static_cast<std::uint32_t>(v);
      carry = v >> 32;
    }
    for (int i = word + 5; carry && i < kWords; ++i) {
      std::uint64_t v = std::uint64_t(w[i]) + carry;
      w[i] = static_cast<std::uint32_t>(v);
      carry = v >> 32;
    }
  }
  int cmp(const Big& o) const {
    for (int i = kWords - 1; i >= 0; --i)
      if (w[i] != o.w[i]) return w[i] < o.w[i] ? -1 : 1;
    return 0;
  }
  void sub(const Big& o) {  // *this -= o, *this >= o
    std::int64_t borrow = 0;
    for (int i = 0; i < kWords; ++i) {
      std::int64_t v = std::int64_t(w[i]) - o.w[i] - borrow;
      borrow = v < 0;
      w[i] = static_cast<std::uint32_t>(v + (borrow << 32));
    }
  }
  bool bit(int i) const { return i >= 0 && ((w[i / 32] >> (i % 32)) & 1); }
  int msb() const {
    for (int i = kWords - 1; i >= 0; --i)
      if (w[i]) return 32 * i + 31 - __builtin_clz(w[i]);
    return -1;
  }
  bool any_below(int i) const {
    for (int b = 0; b < i; ++b)
      if (bit(b)) return true;
    return false;
  }
};

template <class T>
struct Oracle {
  Big pos, neg;
  bool nan = false, pinf = false, ninf = false, any = false, all_negzero = true;
  void add_product(T x, T y) {
    any = true;
    const bool sx = std::signbit(x), sy = std::signbit(y), s = sx != sy;
    if (std::isnan(x) || std::isnan(y)) { nan = true; all_negzero = false; return; }
    if (std::isinf(x) || std::isinf(y)) {
      all_negzero = false;
      if (x == 0 || y == 0) nan = true;
      else (s ? ninf : pinf) = true;
      return;
    }
    if (x == 0 || y == 0) {
      if (!s) all_negzero = false;
      return;
    }
    all_negzero = false;
    int ex, ey;
    const double fx = std::frexp(static_cast<double>(std::fabs(x)), &ex);
    const double fy = std::frexp(static_cast<double>(std::fabs(y)), &ey);
    const std::uint64_t mx = static_cast<std::uint64_t>(std::ldexp(fx, 53));
    const std::uint64_t my = static_cast<std::uint64_t>(std::ldexp(fy, 53));
    const unsigned __int128 p = static_cast<unsigned __int128>(mx) * my;
    (s ? neg : pos).add(p, ex + ey - 106 + kOffset);
  }
  T round() const {
    if (nan || (pinf && ninf)) return std::numeric_limits<T>::quiet_NaN();
    if (pinf) return std::numeric_limits<T>::infinity();
    if (ninf) return -std::numeric_limits<T>::infinity();
    Big mag;
    bool negative = false;
    const int c = pos.cmp(neg);
    if (c == 0) return (any && all_negzero) ? -T(0) : T(0);
    if (c > 0) { mag = pos; mag.sub(neg); } else { mag = neg; mag.sub(pos); negative = true; }
    const int p = std::numeric_limits<T>::digits;
    const int emin = std::numeric_limits<T>::min_exponent - 1;  // exponent of the smallest normal
    const int emax = std::numeric_limits<T>::max_exponent - 1;
    const int b = mag.msb();
    const int E = b - kOffset;
    T r;
    if (E > emax) {
      r = std::numeric_limits<T>::infinity();
    } else {
      const int qexp = std::max(E - (p - 1), emin - (p - 1));
      const int s = qexp + kOffset;
      std::uint64_t mant = 0;
      for (int i = b; i >= s; --i) mant = (mant << 1) | (mag.bit(i) ? 1 : 0);
      const bool half = mag.bit(s - 1), rest = mag.any_below(s - 1);
      if (half && (rest || (mant & 1))) ++mant;
      r = static_cast<T>(std::ldexp(static_cast<long double>(mant), qexp));
    }
    return negative ? -r : r;
  }
};

template <class T>
T oracle_gemm_element(const std::vector<T>& arow, const std::vector<T>& bcol, T alpha, T beta, T cold) {
  if (alpha == 0) {
    if (beta == 0) return T(0);
    Oracle<T> o;
    o.add_product(beta, cold);
    return o.round();
  }
  Oracle<T> o;
  for (std::size_t k = 0; k < arow.size(); ++k) o.add_product(arow[k], bcol[k]);
  if (alpha == 1) {
    if (beta != 0) o.add_product(beta, cold);
    return o.round();
  }
  const T s = o.round();
  Oracle<T> o2;
  o2.add_product(alpha, s);
  if (beta != 0) o2.add_product(beta, cold);
  return o2.round();
}

// ---------------------------------------------------------------- helpers
template <class T>
auto bits_of(T x) {
  typename std::conditional<sizeof(T) == 4, std::uint32_t, std::uint64_t>::type u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}
template <class T>
bool same(T x, T y) {
  return bits_of(x) == bits_of(y);
}

struct Rng {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1p-53; }
  // Irwin-Hall(4), scaled to unit variance: a normal-like value from IEEE operations only.
  double normal() { return (uniform() + uniform() + uniform() + uniform() - 2.0) * 1.7320508075688772; }
  // A value with a random sign, a random mantissa and an exponent in [lo, hi].
  template <class T>
  T spread(int lo, int hi) {
    const int e = lo + static_cast<int>(next() % static_cast<std::uint64_t>(hi - lo + 1));
    const double m = 1.0 + uniform();
    T v = static_cast<T>(std::ldexp(m, e));
    return (next() & 1) ? -v : v;
  }
};

/// A matrix stored with its leading dimension, as op() sees it.
template <class T>
struct Mat {
  std::size_t rows, cols, ld;  // logical op(X) is rows x cols
  transpose tr;
  std::vector<T> data;  // stored (tr == no: rows x ld; yes: cols x ld)
  Mat(std::size_t r, std::size_t c, transpose t, std::size_t pad) : rows(r), cols(c), tr(t) {
    ld = (t == transpose::no ? c : r) + pad;
    data.assign((t == transpose::no ? r : c) * ld + 1, T(-777));  // padding must never be read
  }
  T& at(std::size_t i, std::size_t k) { return tr == transpose::no ? data[i * ld + k] : data[k * ld + i]; }
  T at(std::size_t i, std::size_t k) const { return tr == transpose::no ? data[i * ld + k] : data[k * ld + i]; }
};

template <class T>
std::vector<T> run_exact(const Mat<T>& A, const Mat<T>& B, T alpha, T beta, const std::vector<T>& c0, int threads,
                         gemm_exact_kernel kern) {
  const std::size_t m = A.rows, k = A.cols, n = B.cols;
  std::vector<T> c = c0;
  bitexact::cpu::detail::gemm_exact_with_kernel<T>(A.tr, B.tr, m, n, k, alpha, A.data.data(), A.ld, B.data.data(),
                                                   B.ld, beta, c.data(), n, threads, kern);
  return c;
}

template <class T>
void expect_oracle(const Mat<T>& A, const Mat<T>& B, T alpha, T beta, const std::vector<T>& c0,
                   const std::vector<T>& got, const char* what) {
  const std::size_t m = A.rows, k = A.cols, n = B.cols;
  int bad = 0;
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      std::vector<T> ar(k), bc(k);
      for (std::size_t q = 0; q < k; ++q) {
        ar[q] = A.at(i, q);
        bc[q] = B.at(q, j);
      }
      const T want = oracle_gemm_element<T>(ar, bc, alpha, beta, c0[i * n + j]);
      const T g = got[i * n + j];
      const bool ok = std::isnan(want) ? (bits_of(g) == bits_of(std::numeric_limits<T>::quiet_NaN())) : same(g, want);
      if (!ok && bad++ < 5)
        ADD_FAILURE() << what << ": C[" << i << "][" << j << "] = " << g << " (bits " << std::hex << bits_of(g)
                      << "), oracle " << want << " (bits " << bits_of(want) << std::dec << "), m=" << m
                      << " n=" << n << " k=" << k;
    }
  EXPECT_EQ(bad, 0) << what;
}

template <class T, class Gen>
void fill(Mat<T>& X, Gen gen) {
  for (std::size_t i = 0; i < X.rows; ++i)
    for (std::size_t k = 0; k < X.cols; ++k) X.at(i, k) = gen(i, k);
}

std::vector<gemm_exact_kernel> kernels() { return bitexact::cpu::detail::gemm_exact_kernels(); }

template <class T>
std::uint64_t hash(const std::vector<T>& v) {
  std::uint64_t h = 1469598103934665603ull;
  for (T x : v) {
    auto u = bits_of(x);
    for (std::size_t b = 0; b < sizeof u; ++b) {
      h ^= (u >> (8 * b)) & 0xff;
      h *= 1099511628211ull;
    }
  }
  return h;
}

// ---------------------------------------------------------------- tests
template <class T>
class GemmExact : public ::testing::Test {};
using Types = ::testing::Types<float, double>;
TYPED_TEST_SUITE(GemmExact, Types);

TYPED_TEST(GemmExact, KernelsAreAvailable) {
  std::string names;
  for (auto k : kernels()) names += std::string(bitexact::cpu::detail::gemm_exact_kernel_name(k)) + " ";
  std::printf("exact GEMM kernels here: %s\n", names.c_str());
  EXPECT_GE(kernels().size(), 1u);
}

// Random data of many exponent spreads, shapes, transposes and paddings, every kernel, against
// the oracle.
TYPED_TEST(GemmExact, MatchesOracleOnSpreadsShapesTransposes) {
  using T = TypeParam;
  Rng r{42};
  const int maxe = std::is_same<T, float>::value ? 60 : 500;
  const int spreads[] = {0, 5, 12, 30, 50, 70, 100, 2 * maxe};
  const std::size_t shapes[][3] = {{1, 1, 1}, {3, 5, 7}, {33, 17, 65}, {40, 33, 130}, {1, 37, 200}, {35, 1, 64}};
  for (int sp : spreads)
    for (auto& sh : shapes)
      for (transpose ta : {transpose::no, transpose::yes})
        for (transpose tb : {transpose::no, transpose::yes}) {
          const std::size_t m = sh[0], n = sh[1], k = sh[2];
          Mat<T> A(m, k, ta, (m + k) % 3), B(k, n, tb, 2);
          const int lo = -sp / 2 - 10, hi = lo + sp;
          fill(A, [&](std::size_t, std::size_t) { return r.spread<T>(lo, std::min(hi, maxe)); });
          fill(B, [&](std::size_t, std::size_t) { return r.spread<T>(lo, std::min(hi, maxe)); });
          std::vector<T> c0(m * n, T(0));
          for (auto kern : kernels()) {
            auto got = run_exact<T>(A, B, T(1), T(0), c0, 3, kern);
            expect_oracle<T>(A, B, T(1), T(0), c0, got, bitexact::cpu::detail::gemm_exact_kernel_name(kern));
          }
        }
}

// Adversarial rows and columns: cancellation, ties, subnormal results, overflow, NaN/Inf, -0.
TYPED_TEST(GemmExact, Adversarial) {
  using T = TypeParam;
  const int p = std::numeric_limits<T>::digits;
  const T big = std::numeric_limits<T>::max(), tiny = std::numeric_limits<T>::denorm_min();
  const T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
  const T h = std::ldexp(T(1), -p);  // half an ulp of 1
  // Each case: a row of A and a column of B (k = 4), one output.
  std::vector<std::vector<T>> rows = {
      {T(1), h, T(0), T(0)},                       // 1 + half ulp: tie, stays 1 (even)
      {T(1), 2 * h, h, T(0)},                      // 1 + ulp + half ulp: tie, up to 1 + 2 ulp
      {T(1), h, h * h * h, T(0)},                  // just above the tie: up
      {T(1), -h, -h * h * h, T(0)},                // just below 1 - half ulp
      {std::ldexp(T(1), 100), T(1), -std::ldexp(T(1), 100), h},  // cancellation, small rest
      {big, big, T(0), T(0)},                      // overflow to +Inf
      {-big, -big, big, T(0)},                     // -Inf after exact cancellation? no: -big*2+big = -big
      {tiny, tiny, T(0), T(0)},                    // subnormal result (with B = 1)
      {std::numeric_limits<T>::min(), -tiny, T(0), T(0)},  // normal minus subnormal
      {-T(0), T(0), -T(0), -T(0)},                 // -0 products with B = +0 ... see column
      {inf, T(1), T(0), T(0)},                     // Inf
      {inf, -inf, T(0), T(0)},                     // Inf - Inf: NaN
      {inf, T(0), T(0), T(0)},                     // Inf * 0 in the column below
      {nan, T(1), T(1), T(1)},                     // NaN
      {T(3), std::ldexp(T(1), -200 * (p / 24)), -T(3), T(0)},  // spread beyond one digit set
      {T(1), T(-1), T(1), T(-1)},                  // exact zero: +0
  };
  std::vector<std::vector<T>> cols = {
      {T(1), T(1), T(1), T(1)}, {T(1), T(1), T(-1), T(0)}, {-T(0), -T(0), -T(0), -T(0)}, {T(0.5), T(3), T(0.25), T(7)},
      {tiny, big, T(1), std::ldexp(T(1), -p)}, {T(1), T(0), T(0), T(0)},
  };
  const std::size_t m = rows.size(), n = cols.size(), k = 4;
  for (transpose ta : {transpose::no, transpose::yes})
    for (transpose tb : {transpose::no, transpose::yes}) {
      Mat<T> A(m, k, ta, 1), B(k, n, tb, 3);
      fill(A, [&](std::size_t i, std::size_t q) { return rows[i][q]; });
      fill(B, [&](std::size_t q, std::size_t j) { return cols[j][q]; });
      const T betas[] = {T(0), T(1), T(-0.5)};
      const T alphas[] = {T(1), T(0.75), T(0), T(-3)};
      std::vector<T> c0(m * n);
      Rng r{7};
      for (auto& x : c0) x = static_cast<T>(r.normal());
      c0[3] = -T(0);
      c0[5] = inf;
      for (T alpha : alphas)
        for (T beta : betas)
          for (auto kern : kernels()) {
            auto got = run_exact<T>(A, B, alpha, beta, c0, 2, kern);
            expect_oracle<T>(A, B, alpha, beta, c0, got, bitexact::cpu::detail::gemm_exact_kernel_name(kern));
          }
    }
}

// All -0 products give -0; one +0 product gives +0; K = 0 gives +0; alpha = 0 reads neither A nor B.
TYPED_TEST(GemmExact, SignedZerosAndEmptyK) {
  using T = TypeParam;
  const T a[3] = {-T(0), T(0), -T(0)}, b[3] = {T(0), -T(0), T(0)};
  T c = T(5);
  bitexact::cpu::detail::gemm_exact<T>(transpose::no, transpose::no, 1, 1, 3, T(1), a, 3, b, 1, T(0), &c, 1, 1,
                                       bitexact::isa::automatic);
  EXPECT_TRUE(c == 0 && std::signbit(c));
  const T b2[3] = {T(0), -T(0), -T(0)};
  bitexact::cpu::detail::gemm_exact<T>(transpose::no, transpose::no, 1, 1, 3, T(1), a, 3, b2, 1, T(0), &c, 1, 1,
                                       bitexact::isa::automatic);
  EXPECT_TRUE(c == 0 && !std::signbit(c));
  c = T(5);
  bitexact::cpu::detail::gemm_exact<T>(transpose::no, transpose::no, 1, 1, 0, T(1), a, 1, b, 1, T(0), &c, 1, 1,
                                       bitexact::isa::automatic);
  EXPECT_TRUE(c == 0 && !std::signbit(c));
  const T nanv = std::numeric_limits<T>::quiet_NaN();
  const T an[2] = {nanv, nanv};
  c = T(2);
  bitexact::cpu::detail::gemm_exact<T>(transpose::no, transpose::no, 1, 1, 2, T(0), an, 2, an, 1, T(3), &c, 1, 1,
                                       bitexact::isa::automatic);
  EXPECT_EQ(c, T(6));
}

// Normal(0,1)-like data; every thread count and kernel; permuting k changes no bit; golden hash.
TYPED_TEST(GemmExact, NormalDataThreadsKernelsOrderAndGolden) {
  using T = TypeParam;
  const std::size_t m = 97, n = 70, k = 300;
  Rng r{2024};
  Mat<T> A(m, k, transpose::no, 0), B(k, n, transpose::no, 0);
  fill(A, [&](std::size_t, std::size_t) { return static_cast<T>(r.normal()); });
  fill(B, [&](std::size_t, std::size_t) { return static_cast<T>(r.normal()); });
  std::vector<T> c0(m * n, T(0));
  const auto ref = run_exact<T>(A, B, T(1), T(0), c0, 1, gemm_exact_kernel::loops);
  expect_oracle<T>(A, B, T(1), T(0), c0, ref, "normal");
  for (int th : {1, 2, 3, 4, 7, 8})
    for (auto kern : kernels()) {
      const auto got = run_exact<T>(A, B, T(1), T(0), c0, th, kern);
      EXPECT_EQ(hash(got), hash(ref)) << "threads " << th << " kernel " << gemm_exact_kernel_name(kern);
    }
  // Permute k (the same permutation of A's columns and B's rows).
  std::vector<std::size_t> perm(k);
  std::iota(perm.begin(), perm.end(), 0);
  Rng pr{5};
  for (std::size_t q = k - 1; q > 0; --q) std::swap(perm[q], perm[pr.next() % (q + 1)]);
  Mat<T> Ap = A, Bp = B;
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t q = 0; q < k; ++q) Ap.at(i, q) = A.at(i, perm[q]);
  for (std::size_t q = 0; q < k; ++q)
    for (std::size_t j = 0; j < n; ++j) Bp.at(q, j) = B.at(perm[q], j);
  for (auto kern : kernels()) EXPECT_EQ(hash(run_exact<T>(Ap, Bp, T(1), T(0), c0, 3, kern)), hash(ref));
  // Golden hash of this product under the exact tier (the value is mathematically defined, so it
  // never changes between versions).
  const std::uint64_t golden = std::is_same<T, float>::value ? 0xb0574ab5dc70f3b9ull : 0x865066e47fec6b1dull;
  std::printf("golden %s: 0x%016llxull\n", std::is_same<T, float>::value ? "float" : "double",
              static_cast<unsigned long long>(hash(ref)));
  EXPECT_EQ(hash(ref), golden);
}

// K beyond one K block (4096) and beyond 64-multiples; the int32 sums must not overflow.
TYPED_TEST(GemmExact, LongK) {
  using T = TypeParam;
  const std::size_t m = 3, n = 5, k = 4096 * 2 + 37;
  Rng r{11};
  Mat<T> A(m, k, transpose::no, 0), B(k, n, transpose::yes, 1);
  // Worst digits: large-magnitude values at the top of the span, the row span at the maximum.
  const int w = 8 * bitexact::core::gemm_exact_max_digits<T>::value - 3;
  fill(A, [&](std::size_t, std::size_t q) { return q % 2 ? r.spread<T>(0, 0) : r.spread<T>(-w + 24, -w + 30); });
  fill(B, [&](std::size_t, std::size_t) { return r.spread<T>(-10, 0); });
  std::vector<T> c0(m * n, T(0));
  for (auto kern : kernels()) {
    auto got = run_exact<T>(A, B, T(1), T(0), c0, 2, kern);
    expect_oracle<T>(A, B, T(1), T(0), c0, got, gemm_exact_kernel_name(kern));
  }
}

// Values near the top of T's range, with a wide row elsewhere so the output integers carry
// many words, and alpha != 1 (the path that hands the words to the exact accumulator): the
// sign-extension words of a negative sum lie above the accumulator's range although the sum
// itself is inside it (found by fuzz_gemm: an out-of-bounds digit write).
TYPED_TEST(GemmExact, NegativeSumsNearTheTopOfTheRange) {
  using T = TypeParam;
  const int emax = std::numeric_limits<T>::max_exponent;  // 128 (float), 1024 (double)
  const std::size_t m = 4, n = 3, k = 5;
  // Row 3 of A and column 2 of B span 91 bits (2^40 .. 2^-50): 12 digits each, the most the
  // fast path takes, so every output integer gets the most words (the top one at weight
  // 2^(q_a + q_b + 256)).
  const T wide[2] = {std::ldexp(T(1), 40), std::ldexp(T(-1), -50)};
  Mat<T> A(m, k, transpose::no, 0), B(k, n, transpose::no, 0);
  fill(A, [&](std::size_t i, std::size_t q) {
    return i == 3 ? wide[q % 2] : -std::ldexp(T(1) + T(q) / 8, emax - 6);  // near the top, negative
  });
  fill(B, [&](std::size_t q, std::size_t j) {
    if (j == 2) return wide[q % 2];
    // column 0: products near 2^(2 emax) (the sums overflow T); column 1: finite sums
    return j == 0 ? std::ldexp(T(1.25), emax - 6 - static_cast<int>(q)) : std::ldexp(T(1), 8 - static_cast<int>(q));
  });
  std::vector<T> c0(m * n, T(3));
  for (T alpha : {T(0.5), T(-0.25), T(1)})
    for (T beta : {T(0), T(1)})
      for (auto kern : kernels()) {
        auto got = run_exact<T>(A, B, alpha, beta, c0, 1, kern);
        expect_oracle<T>(A, B, alpha, beta, c0, got, gemm_exact_kernel_name(kern));
      }
}

// Double sums that need three 64-bit limbs (A's row spans 63 bits: 8 digits; B's columns up to
// 76 bits: 10 digits), built so that the AVX-512 three-limb epilogue meets its rare carries: a
// borrow that crosses a whole limb while subtracting the offset (column 0: N = -2^62), the +1
// of a negation carried past a zero low limb (column 1: N = -2^65), and a halfway case whose
// sticky bit lies in the lowest limb only (columns 2, 3: N = +-(2^128 + 2^75 + 1)).
TEST(GemmExactDouble, ThreeLimbCarriesAndSticky) {
  const std::size_t m = 2, n = 4, k = 3;
  Mat<double> A(m, k, transpose::no, 0), B(k, n, transpose::no, 0);
  fill(A, [&](std::size_t i, std::size_t q) { return q < 2 ? 1.0 : (i ? -0x1p62 : 0x1p62); });
  const double cols[4][3] = {{0x1p70, -0x1p70, -1.0}, {1.0, -1.0, -8.0}, {1.0, 0x1p75, 0x1p66},
                             {-1.0, -0x1p75, -0x1p66}};
  fill(B, [&](std::size_t q, std::size_t j) { return cols[j][q]; });
  std::vector<double> c0(m * n, 0.0);
  for (auto kern : kernels()) {
    auto got = run_exact<double>(A, B, 1.0, 0.0, c0, 1, kern);
    expect_oracle<double>(A, B, 1.0, 0.0, c0, got, gemm_exact_kernel_name(kern));
  }
}

TEST(GemmExactBf16, EqualsFloatOnWidenedInputs) {
  const std::size_t m = 20, n = 35, k = 77;
  Rng r{3};
  std::vector<bitexact::bfloat16> a(m * k), b(k * n);
  std::vector<float> af(m * k), bf(k * n);
  for (std::size_t q = 0; q < a.size(); ++q) {
    a[q] = bitexact::bfloat16::from_float(static_cast<float>(r.normal()));
    af[q] = a[q].to_float();
  }
  for (std::size_t q = 0; q < b.size(); ++q) {
    b[q] = bitexact::bfloat16::from_float(static_cast<float>(r.normal()));
    bf[q] = b[q].to_float();
  }
  for (auto kern : kernels()) {
    std::vector<float> c1(m * n, 1.f), c2(m * n, 1.f);
    bitexact::cpu::detail::gemm_exact_bf16_with_kernel(transpose::no, transpose::yes, m, n, k, 1.f, a.data(), k,
                                                       b.data(), k, 0.5f, c1.data(), n, 3, kern);
    bitexact::cpu::detail::gemm_exact_with_kernel<float>(transpose::no, transpose::yes, m, n, k, 1.f, af.data(), k,
                                                         bf.data(), k, 0.5f, c2.data(), n, 3, kern);
    EXPECT_EQ(hash(c1), hash(c2));
  }
}


// ---------------------------------------------------------------- the certified double filter
// The public float (and bfloat16) exact tier runs gemm_exact_filtered: a double GEMM whose
// elements are kept where their error interval rounds to one float, the rest by Dot2, the exact
// accumulator, or the integer path on the sub-problem of their rows and columns.

/// Runs gemm_exact_filtered; `left` gets the number of elements the filter did not certify.
std::vector<float> run_filtered(const Mat<float>& A, const Mat<float>& B, float alpha, float beta,
                                const std::vector<float>& c0, int threads, bitexact::isa simd, std::size_t& left) {
  const std::size_t m = A.rows, k = A.cols, n = B.cols;
  std::vector<float> c = c0;
  left = bitexact::cpu::detail::gemm_exact_filtered<float>(
      A.tr, B.tr, m, n, k, alpha, A.data.data(), A.ld, B.data.data(), B.ld, beta, c.data(), n, threads, simd,
      bitexact::cpu::detail::gemm_exact_kernel_for(simd));
  return c;
}

std::vector<bitexact::isa> filter_isas() {
  std::vector<bitexact::isa> v{bitexact::isa::scalar};
  if (bitexact::best_isa() != bitexact::isa::scalar) v.push_back(bitexact::best_isa());
  return v;
}

// Normal data over two K chunks (expect_normal_data).
/// Normal data in every layout, alpha in {1, 0.5, -3}, beta in {0, 1, -0.75} (C_old with a NaN and
/// an Inf, which a filter must leave to the exact path when beta reads them), the scalar and best
/// ISA, 1 and 3 threads: run(A, B, alpha, beta, c0, threads, simd, left) must give the oracle's
/// bits and leave fewer than m n / max_left_div elements (the path under test is the filter's).
template <class T, class Run>
void expect_normal_data(std::size_t m, std::size_t n, std::size_t k, std::uint64_t seed, std::size_t max_left_div,
                        Run run) {
  Rng r{seed};
  for (transpose ta : {transpose::no, transpose::yes})
    for (transpose tb : {transpose::no, transpose::yes}) {
      Mat<T> A(m, k, ta, 3), B(k, n, tb, 2);
      fill(A, [&](std::size_t, std::size_t) { return static_cast<T>(r.normal()); });
      fill(B, [&](std::size_t, std::size_t) { return static_cast<T>(r.normal()); });
      std::vector<T> c0(m * n);
      for (auto& x : c0) x = static_cast<T>(r.normal());
      c0[5] = std::numeric_limits<T>::quiet_NaN();
      c0[9] = -std::numeric_limits<T>::infinity();
      for (T alpha : {T(1), T(0.5), T(-3)})
        for (T beta : {T(0), T(1), T(-0.75)})
          for (bitexact::isa simd : filter_isas())
            for (int threads : {1, 3}) {
              std::size_t left = 0;
              auto got = run(A, B, alpha, beta, c0, threads, simd, left);
              expect_oracle<T>(A, B, alpha, beta, c0, got, "normal data");
              EXPECT_LT(left, m * n / max_left_div) << "alpha " << alpha << " beta " << beta;
              if (beta != T(0)) EXPECT_GE(left, 2u);  // C_old NaN and Inf
            }
    }
}

TEST(GemmExactFilter, NormalDataEqualsOracle) {
  expect_normal_data<float>(37, 45, 300, 11, 20, [](auto&&... x) { return run_filtered(x...); });
}

/// The diagonal ties problem shared by the float filter and the double split filter tests:
/// row t and column t (t < 48) meet in the five terms row[t % 4] (the first four at k = 4t ..
/// 4t + 3, the fifth at k = 256 + t, each times 1); every other element of the 64 x 64 product
/// is one product of normal values at k = 192 + j (times `scale` in rows t % 4 == 3, so their
/// bounds stay narrow). run(A, B, c0, threads, simd, left) returns C; checked against the oracle,
/// the element path (few left, scattered) and the diagonal: 1 + ulp for t % 4 in {1, 3}, else 1.
template <class T, class Run>
void expect_scattered_ties(const T (&row)[4][5], T scale, Run run) {
  const std::size_t m = 64, n = 64, k = 320, ties = 48;
  Rng r{5};
  Mat<T> A(m, k, transpose::no, 0), B(k, n, transpose::yes, 1);
  fill(A, [](std::size_t, std::size_t) { return T(0); });
  fill(B, [](std::size_t, std::size_t) { return T(0); });
  for (std::size_t q = 0; q < 64; ++q) {
    for (std::size_t i = 0; i < m; ++i)
      if (!(i == q && q < ties))
        A.at(i, 192 + q) = static_cast<T>(r.normal()) * (i < ties && i % 4 == 3 ? scale : T(1));
    B.at(192 + q, q) = static_cast<T>(r.normal());
  }
  for (std::size_t t = 0; t < ties; ++t) {
    for (std::size_t q = 0; q < 4; ++q) {
      A.at(t, 4 * t + q) = row[t % 4][q];
      B.at(4 * t + q, t) = T(1);
    }
    A.at(t, 256 + t) = row[t % 4][4];
    B.at(256 + t, t) = T(1);
  }
  const T up = T(1) + 2 * row[0][1];
  std::vector<T> c0(m * n, T(0));
  for (bitexact::isa simd : filter_isas())
    for (int threads : {1, 2}) {
      std::size_t left = 0;
      auto got = run(A, B, c0, threads, simd, left);
      expect_oracle<T>(A, B, T(1), T(0), c0, got, "scattered ties");
      EXPECT_GE(left, ties);
      EXPECT_LT(left * bitexact::cpu::detail::gemm_exact_filter_scatter_ratio, ties * ties);  // the element path
      for (std::size_t t = 0; t < ties; ++t) EXPECT_EQ(got[t * n + t], t % 4 == 1 || t % 4 == 3 ? up : T(1)) << t;
    }
}

// Ties and near ties scattered over the diagonal: row t and column t (t < 48) meet in
// S = 1 + 2^-24 + delta_t exactly, which the double GEMM rounds to the tie itself:
//   t % 4 == 0: delta = 0, a tie (to even: 1); 1: +2^-70 (1 + 2^-23); 2: -2^-70 (1);
//   t % 4 == 3: S = 2^40 + 1 + 2^-24 - 2^40 + 2^-40 (1 + 2^-23), whose cancellation makes the
//     GEMM's error bound far too wide, but which Dot2 (its TwoSum errors carry 2^-24) certifies.
// Every other element is one product of normal values (times 2^50 in rows t % 4 == 3).
// 48 elements in 48 rows and columns: taken one by one. Without the interval check the near ties
// above would round to 1; without Dot2's error sum the t % 4 == 3 ones would too.
TEST(GemmExactFilter, ScatteredTiesTakeTheElementPath) {
  const float row[4][5] = {{1.0f, 0x1p-24f, 0, 0, 0},
                           {1.0f, 0x1p-24f, 0, 0, 0x1p-70f},
                           {1.0f, 0x1p-24f, 0, 0, -0x1p-70f},
                           {0x1p40f, 1.0f, 0x1p-24f, -0x1p40f, 0x1p-40f}};
  expect_scattered_ties<float>(row, 0x1p50f, [](const Mat<float>& A, const Mat<float>& B, const std::vector<float>& c0,
                                                int threads, bitexact::isa simd, std::size_t& left) {
    return run_filtered(A, B, 1.0f, 0.0f, c0, threads, simd, left);
  });
}

// A block where every element is a tie or a near tie: the integer path runs on the sub-problem
// of those rows and columns and only those elements are written back (beta reads C_old there).
TEST(GemmExactFilter, BlockOfTiesTakesTheSubProblem) {
  const std::size_t m = 9, n = 7, k = 4;
  Mat<float> A(m, k, transpose::yes, 2), B(k, n, transpose::no, 0);
  fill(A, [](std::size_t i, std::size_t q) {
    return q == 0 ? 1.0f : q == 1 ? 0x1p-24f : q == 2 ? (i % 2 ? 0x1p-80f : -0x1p-80f) : 0.0f;
  });
  fill(B, [](std::size_t q, std::size_t j) { return q < 2 ? 1.0f : q == 2 ? static_cast<float>(j % 3) : 5.0f; });
  std::vector<float> c0(m * n, 0.0f);
  for (std::size_t e = 0; e < c0.size(); e += 5) c0[e] = 0x1p-90f;
  for (float alpha : {1.0f, 2.0f})
    for (float beta : {0.0f, 1.0f})
      for (bitexact::isa simd : filter_isas()) {
        std::size_t left = 0;
        auto got = run_filtered(A, B, alpha, beta, c0, 2, simd, left);
        expect_oracle<float>(A, B, alpha, beta, c0, got, "block of ties");
        EXPECT_EQ(left, m * n);
      }
}

// Exact zeros (+0 from cancelling terms, -0 from -0 products), a sum beyond float's range (+Inf
// certified), subnormal results, NaN and Inf inputs, and rows or columns of zeros.
TEST(GemmExactFilter, ZerosOverflowSubnormalsAndSpecials) {
  const std::size_t k = 3;
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<std::vector<float>> rows = {{1.0f, -1.0f, 0.0f},       {-0.0f, -0.0f, -0.0f},
                                                {0x1.8p127f, 0x1.8p127f, 0}, {0x1p-100f, 0x1p-120f, 0},
                                                {inf, 1.0f, 0.0f},         {nan, 1.0f, 2.0f},
                                                {0.0f, 0.0f, 0.0f},        {1.5f, 2.5f, -0x1p-149f}};
  const std::vector<std::vector<float>> cols = {{1.0f, 1.0f, 1.0f},  {1.0f, 1.0f, 0.0f}, {0x1p-40f, 0x1p-29f, 3.0f},
                                                {-1.0f, 0.0f, 1.0f}, {0.0f, 0.0f, 0.0f}, {0x1.8p1f, -7.0f, 0x1p-3f}};
  const std::size_t m = rows.size(), n = cols.size();
  Mat<float> A(m, k, transpose::no, 0), B(k, n, transpose::no, 0);
  fill(A, [&](std::size_t i, std::size_t q) { return rows[i][q]; });
  fill(B, [&](std::size_t q, std::size_t j) { return cols[j][q]; });
  std::vector<float> c0(m * n, -0.0f);
  for (float beta : {0.0f, 1.0f})
    for (bitexact::isa simd : filter_isas()) {
      std::size_t left = 0;
      auto got = run_filtered(A, B, 1.0f, beta, c0, 1, simd, left);
      expect_oracle<float>(A, B, 1.0f, beta, c0, got, "specials");
    }
}

// Decode shapes (m <= 4) take the filter in vector lanes (the columns in lanes, the canonical
// chunks' sums folded): normal data in every layout over several 64-column blocks (the last one
// partial) and K chunks (the last one partial), alpha and beta, plus a near tie
// S = 1 + 2^-24 + 2^-70 at (1, 7), which neither the lanes nor Dot2 can certify (the exact
// accumulator rounds it up to 1 + 2^-23; with no radius it would be 1).
TEST(GemmExactFilter, SmallMTakesFilterLanes) {
  const std::size_t n = 151, k = 600;  // 151: the last 64-column block is odd (a pass of one column)
  Rng r{21};
  for (std::size_t m : {1u, 2u, 3u, 4u})
    for (transpose ta : {transpose::no, transpose::yes})
      for (transpose tb : {transpose::no, transpose::yes}) {
        Mat<float> A(m, k, ta, 1), B(k, n, tb, 3);
        fill(A, [&](std::size_t, std::size_t) { return static_cast<float>(r.normal()); });
        fill(B, [&](std::size_t, std::size_t) { return static_cast<float>(r.normal()); });
        if (m > 1) {
          for (std::size_t q = 0; q < k; ++q) {
            A.at(1, q) = q == 0 ? 1.0f : q == 1 ? 0x1p-24f : q == 2 ? 0x1p-70f : A.at(1, q) * 0x1p-60f;
            B.at(q, 7) = q < 3 ? 1.0f : 0.0f;
          }
        }
        std::vector<float> c0(m * n);
        for (auto& x : c0) x = static_cast<float>(r.normal());
        for (float alpha : {1.0f, -0.5f})
          for (float beta : {0.0f, 2.0f})
            for (int threads : {1, 3})
              for (bitexact::isa simd : filter_isas()) {
                std::vector<float> c = c0;
                const std::size_t left = bitexact::cpu::detail::gemm_exact_small_m<float>(
                    ta, tb, m, n, k, alpha, A.data.data(), A.ld, B.data.data(), B.ld, beta, c.data(), n, threads,
                    simd);
                expect_oracle<float>(A, B, alpha, beta, c0, c, "small m");
                if (m > 1 && beta == 0.0f) {  // (beta C_old moves the sum off the tie)
                  EXPECT_GE(left, 1u);
                  if (alpha == 1.0f) EXPECT_EQ(c[n + 7], 1.0f + 0x1p-23f);
                }
                EXPECT_LE(left, m * n / 20);
                // The public entry takes this path for these shapes: the same bits.
                std::vector<float> c2 = c0;
                bitexact::cpu::detail::gemm_exact(ta, tb, m, n, k, alpha, A.data.data(), A.ld, B.data.data(), B.ld,
                                                  beta, c2.data(), n, threads, bitexact::isa::automatic);
                EXPECT_EQ(hash(c), hash(c2));
              }
      }
}

// bfloat16 inputs through the public entry (the filter widens them exactly): the float bits.
TEST(GemmExactFilter, Bf16EqualsFloat) {
  const std::size_t n = 140, k = 270;
  for (std::size_t m : {33u, 3u})  // the GEMM filter and the small-m lanes
    for (transpose tb : {transpose::no, transpose::yes}) {
      Rng r{8};
      std::vector<bitexact::bfloat16> a(m * k), b(k * n);
      std::vector<float> af(m * k), bf(k * n);
      for (std::size_t q = 0; q < a.size(); ++q)
        af[q] = (a[q] = bitexact::bfloat16::from_float(static_cast<float>(r.normal()))).to_float();
      for (std::size_t q = 0; q < b.size(); ++q)
        bf[q] = (b[q] = bitexact::bfloat16::from_float(static_cast<float>(r.normal()))).to_float();
      const std::size_t ldb = tb == transpose::no ? n : k;
      std::vector<float> c1(m * n, 1.f), c2(m * n, 1.f);
      bitexact::cpu::detail::gemm_exact(transpose::yes, tb, m, n, k, 1.f, a.data(), m, b.data(), ldb, 0.5f, c1.data(),
                                        n, 2, bitexact::isa::automatic);
      bitexact::cpu::detail::gemm_exact_with_kernel<float>(transpose::yes, tb, m, n, k, 1.f, af.data(), m, bf.data(),
                                                           ldb, 0.5f, c2.data(), n, 2, gemm_exact_kernel::loops);
      EXPECT_EQ(hash(c1), hash(c2)) << m;
    }
}
}  // namespace

namespace {
// ---------------------------------------------------------------- the split filter (double)
std::vector<double> run_split(const Mat<double>& A, const Mat<double>& B, double alpha, double beta,
                              const std::vector<double>& c0, int threads, bitexact::isa simd, std::size_t& left) {
  const std::size_t m = A.rows, k = A.cols, n = B.cols;
  std::vector<double> c = c0;
  left = bitexact::cpu::detail::gemm_exact_split(A.tr, B.tr, m, n, k, alpha, A.data.data(), A.ld, B.data.data(), B.ld,
                                                 beta, c.data(), n, threads, simd,
                                                 bitexact::cpu::detail::gemm_exact_kernel_for(simd));
  return c;
}

// Normal data over several K chunks (depth 2K = 600 for R; expect_normal_data): fewer than 1 in
// 50 elements left.
TEST(GemmExactSplit, NormalDataEqualsOracle) {
  expect_normal_data<double>(29, 41, 300, 31, 50, [](auto&&... x) { return run_split(x...); });
}

// Rows and columns whose entries span 2^-300 .. 2^0 (most of each row lands in A3 and B2),
// normal data scaled to the ends of the filter's exponent range (2^-390, 2^390: certified) and
// beyond (2^450: left to the integer path), and the public entry: the oracle's bits.
TEST(GemmExactSplit, SpreadAndScaledRows) {
  const std::size_t m = 12, n = 10, k = 70;
  Rng r{3};
  const double scale[] = {1.0, 0x1p-390, 0x1p390, 0x1p450, 0x1p-450, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0};
  Mat<double> A(m, k, transpose::no, 0), B(k, n, transpose::yes, 1);
  fill(A, [&](std::size_t i, std::size_t) { return i >= 5 ? r.spread<double>(-300, 0) : r.normal() * scale[i]; });
  fill(B, [&](std::size_t, std::size_t j) { return j % 2 ? r.spread<double>(-300, 0) : r.normal(); });
  std::vector<double> c0(m * n, 0.0);
  for (int threads : {1, 2}) {
    std::size_t left = 0;
    auto got = run_split(A, B, 1.0, 0.0, c0, threads, bitexact::best_isa(), left);
    expect_oracle<double>(A, B, 1.0, 0.0, c0, got, "spread");
    EXPECT_GE(left, 2 * n);       // rows 3 and 4 are outside the range
    EXPECT_LT(left, m * n / 2);  // the rest is certified (spread data too)
    std::vector<double> pub = c0;
    bitexact::cpu::detail::gemm_exact<double>(transpose::no, transpose::yes, m, n, k, 1.0, A.data.data(), A.ld,
                                              B.data.data(), B.ld, 0.0, pub.data(), n, threads,
                                              bitexact::isa::automatic);
    EXPECT_EQ(hash(pub), hash(got));
  }
}

// Ties and near ties on the diagonal (row t, column t < 48): S = 1 + 2^-53 + delta_t exactly
//   t % 4 == 0: delta = 0, a tie (to even: 1); 1: +2^-100 (1 + 2^-52); 2: -2^-100 (1);
//   t % 4 == 3: S = 2^20 + 1 + 2^-53 - 2^20 + 2^-60 (1 + 2^-52).
// Every other element is one product of normal values (times 2^20 in rows t % 4 == 3, so their
// bounds stay narrow). The filter's R rounds every tie above to the tie, so none may be certified
// there; they go one by one (Dot2 certifies the t % 4 == 3 ones, the exact accumulator the
// rest). Without the radius check the near ties would round the wrong way.
TEST(GemmExactSplit, ScatteredTiesTakeTheElementPath) {
  const double row[4][5] = {{1.0, 0x1p-53, 0, 0, 0},
                            {1.0, 0x1p-53, 0, 0, 0x1p-100},
                            {1.0, 0x1p-53, 0, 0, -0x1p-100},
                            {0x1p20, 1.0, 0x1p-53, -0x1p20, 0x1p-60}};
  expect_scattered_ties<double>(row, 0x1p20, [](const Mat<double>& A, const Mat<double>& B,
                                                const std::vector<double>& c0, int threads, bitexact::isa simd,
                                                std::size_t& left) {
    return run_split(A, B, 1.0, 0.0, c0, threads, simd, left);
  });
}

// Dot2 for double factors (TwoProduct): certifies a sum its error terms carry, refuses a tie and
// a near tie it cannot resolve.
TEST(GemmExactSplit, Dot2CertifiesOrRefuses) {
  auto dot2 = [](const std::vector<double>& a, double& out) {
    return bitexact::core::gemm_exact_split_dot2(
        a.size(), [&](std::size_t k) { return a[k]; }, [](std::size_t) { return 1.0; }, 1.0, 0.0, 0.0, out);
  };
  double v = 0.0;
  EXPECT_TRUE(dot2({0x1p20, 1.0, 0x1p-53, -0x1p20, 0x1p-60}, v));
  EXPECT_EQ(v, 1.0 + 0x1p-52);
  EXPECT_FALSE(dot2({1.0, 0x1p-53}, v));             // a tie
  EXPECT_FALSE(dot2({1.0, 0x1p-53, 0x1p-140}, v));   // within the radius of a tie
  EXPECT_FALSE(dot2({1.0, -1.0}, v));                // an exact zero (its sign needs the terms)
  // A product's rounding error decides: (1 + 2^-30)^2 + 2^-53 = 1 + 2^-29 + 2^-53 + 2^-60, just
  // above the tie (1 + 2^-29 + 2^-52); without TwoProduct's error term Dot2 would see the tie.
  const double x = 1.0 + 0x1p-30;
  double w = 0.0;
  EXPECT_TRUE(bitexact::core::gemm_exact_split_dot2(
      2, [&](std::size_t k) { return k == 0 ? x : 0x1p-53; }, [&](std::size_t k) { return k == 0 ? x : 1.0; }, 1.0,
      0.0, 0.0, w));
  EXPECT_EQ(w, 1.0 + 0x1p-29 + 0x1p-52);
  // Cancellation to a value far below the terms: Dot2's radius is relative to them, so it refuses.
  EXPECT_FALSE(bitexact::core::gemm_exact_split_dot2(
      2, [&](std::size_t k) { return k == 0 ? x : -1.0 - 0x1p-29; }, [&](std::size_t k) { return k == 0 ? x : 1.0; },
      1.0, 0.0, 0.0, w));
}

// The Adversarial cases of the integer path (cancellation, ties, overflow, subnormals, NaN/Inf,
// -0) through the split filter, every alpha and beta.
TEST(GemmExactSplit, ZerosOverflowSubnormalsAndSpecials) {
  const double big = std::numeric_limits<double>::max(), tiny = std::numeric_limits<double>::denorm_min();
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  const double h = 0x1p-53;
  const std::vector<std::vector<double>> rows = {
      {1, h, 0, 0},     {1, 2 * h, h, 0}, {1, h, h * h * h, 0}, {1, -h, -h * h * h, 0}, {0x1p100, 1, -0x1p100, h},
      {big, big, 0, 0}, {tiny, tiny, 0, 0}, {0x1p-1022, -tiny, 0, 0}, {-0.0, 0.0, -0.0, -0.0}, {inf, 1, 0, 0},
      {inf, -inf, 0, 0}, {nan, 1, 1, 1}, {3, 0x1p-400, -3, 0}, {1, -1, 1, -1}, {0x1p-380, 0x1p-420, 0, 0x1p-390},
      {0, 0, 0, 0}};
  const std::vector<std::vector<double>> cols = {{1, 1, 1, 1},           {1, 1, -1, 0},
                                                 {-0.0, -0.0, -0.0, -0.0}, {0.5, 3, 0.25, 7},
                                                 {tiny, big, 1, h},      {1, 0, 0, 0},
                                                 {0x1p-390, 0x1p-1000, 0x1p-385, 1}};
  const std::size_t m = rows.size(), n = cols.size(), k = 4;
  Mat<double> A(m, k, transpose::no, 1), B(k, n, transpose::no, 0);
  fill(A, [&](std::size_t i, std::size_t q) { return rows[i][q]; });
  fill(B, [&](std::size_t q, std::size_t j) { return cols[j][q]; });
  std::vector<double> c0(m * n);
  Rng r{4};
  for (auto& x : c0) x = r.normal();
  c0[3] = -0.0;
  c0[5] = inf;
  for (double alpha : {1.0, 0.75, 0.0, -3.0})
    for (double beta : {0.0, 1.0, -0.5}) {
      std::size_t left = 0;
      auto got = run_split(A, B, alpha, beta, c0, 2, bitexact::best_isa(), left);
      expect_oracle<double>(A, B, alpha, beta, c0, got, "split specials");
    }
}
}  // namespace
