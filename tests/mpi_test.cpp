// tests/mpi_test.cpp - bitexact::mpi (include/bitexact/mpi.hpp) under mpirun -np 1, 2, 3, 4.
//
// Every rank generates the same global data, takes its share under several splits (even,
// uneven, some ranks empty, everything on one rank, round-robin), calls the collective, and
// compares the result bits with the single-process reference (reference::sum_exact /
// dot_exact) on the full data. Equal to the reference on every rank for every split and rank
// count means: identical on every rank and independent of the partition. Adversarial data
// (Inf, NaN, -0.0, denormals, cancellation, overflow) included. The exact tier returns the
// canonical quiet NaN, so NaN results are compared bit for bit too.
//
// Only non-fatal EXPECTs around collectives, so that a failing rank still takes part in every
// later collective; main() fails on every rank if any rank saw a failure.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "bitexact/mpi.hpp"
#include "bitexact/reference/reduce.hpp"

namespace {

using namespace bitexact;

int rank_of(MPI_Comm c = MPI_COMM_WORLD) {
  int r = 0;
  MPI_Comm_rank(c, &r);
  return r;
}
int size_of(MPI_Comm c = MPI_COMM_WORLD) {
  int s = 0;
  MPI_Comm_size(c, &s);
  return s;
}

template <class A>
std::uint64_t bits_of(A a) {
  std::uint64_t b = 0;
  std::memcpy(&b, &a, sizeof a);
  return b;
}

template <class T>
T make(double d) {
  if constexpr (std::is_same<T, bfloat16>::value)
    return bfloat16::from_float(static_cast<float>(d));
  else
    return static_cast<T>(d);
}

// kind 0: varied magnitudes; 1: all -0.0; 2: denormals; 3: cancellation of huge values;
// 4: +Inf; 5: +Inf and -Inf; 6: NaN; 7: exact sum overflows.
template <class T>
std::vector<T> data(std::size_t n, std::uint64_t seed, int kind) {
  using A = core::accumulation_t<T>;
  std::mt19937_64 g(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::uniform_int_distribution<int> e(-30, 30);
  std::vector<T> v(n);
  for (auto& x : v) x = make<T>(std::ldexp(u(g), e(g)));
  if (n == 0) return v;
  auto at = [&]() -> T& { return v[g() % n]; };
  const double big = static_cast<double>(std::numeric_limits<A>::max()) / 4;
  const double den = static_cast<double>(std::numeric_limits<A>::denorm_min());
  switch (kind) {
    case 1:
      for (auto& x : v) x = make<T>(-0.0);
      break;
    case 2:
      for (auto& x : v) x = make<T>(den * static_cast<double>(1 + g() % 1000) * ((g() & 1) ? 1 : -1));
      break;
    case 3:
      for (std::size_t k = 0; k < 1 + n / 16; ++k) {
        at() = make<T>(big);
        at() = make<T>(-big);
      }
      break;
    case 4:
      at() = make<T>(std::numeric_limits<double>::infinity());
      break;
    case 5:
      at() = make<T>(std::numeric_limits<double>::infinity());
      at() = make<T>(-std::numeric_limits<double>::infinity());
      break;
    case 6:
      at() = make<T>(std::numeric_limits<double>::quiet_NaN());
      break;
    case 7:
      for (std::size_t k = 0; k < 1 + n / 4; ++k) at() = make<T>(big);
      break;
    default:
      break;
  }
  return v;
}

// The indices of the global data this rank holds under split `s`.
std::vector<std::size_t> my_indices(std::size_t n, int split, int rank, int ranks) {
  std::vector<std::size_t> idx;
  const std::size_t P = static_cast<std::size_t>(ranks), r = static_cast<std::size_t>(rank);
  switch (split) {
    case 0:  // even contiguous blocks
      for (std::size_t i = r * n / P; i < (r + 1) * n / P; ++i) idx.push_back(i);
      break;
    case 1: {  // uneven contiguous blocks: rank r gets weight (r + 1)^2, rank 1 gets nothing
      std::vector<std::size_t> w(P), cut(P + 1, 0);
      std::size_t total = 0;
      for (std::size_t k = 0; k < P; ++k) total += w[k] = (k == 1 ? 0 : (k + 1) * (k + 1));
      for (std::size_t k = 0; k < P; ++k) cut[k + 1] = cut[k] + (k + 1 == P ? n - cut[k] : n * w[k] / total);
      for (std::size_t i = cut[r]; i < cut[r + 1]; ++i) idx.push_back(i);
      break;
    }
    case 2:  // everything on the last rank
      if (r + 1 == P)
        for (std::size_t i = 0; i < n; ++i) idx.push_back(i);
      break;
    case 3:  // round robin, reversed order inside the rank
      for (std::size_t i = n; i-- > 0;)
        if (i % P == r) idx.push_back(i);
      break;
    case 4: {  // random owner per element
      std::mt19937_64 g(12345 + n);
      for (std::size_t i = 0; i < n; ++i)
        if (g() % P == r) idx.push_back(i);
      break;
    }
  }
  return idx;
}

const std::size_t kSizes[] = {0, 1, 2, 5, 4097, 100003};

template <class T>
class MpiAllreduce : public ::testing::Test {};
using Types = ::testing::Types<float, double, bfloat16>;
TYPED_TEST_SUITE(MpiAllreduce, Types);

TYPED_TEST(MpiAllreduce, SumAndDotEqualReferenceForEverySplit) {
  using T = TypeParam;
  const int rank = rank_of(), ranks = size_of();
  for (int kind = 0; kind < 8; ++kind) {
    for (const std::size_t n : kSizes) {
      const auto x = data<T>(n, 100 * n + kind, kind), y = data<T>(n, 7 * n + kind + 1, (kind + 2) % 8);
      const auto want_sum = reference::sum_exact(x.data(), n);
      const auto want_dot = reference::dot_exact(x.data(), y.data(), n);
      for (int split = 0; split < 5; ++split) {
        std::vector<T> lx, ly;
        for (std::size_t i : my_indices(n, split, rank, ranks)) {
          lx.push_back(x[i]);
          ly.push_back(y[i]);
        }
        const auto got_sum = mpi::allreduce_sum(lx.data(), lx.size(), MPI_COMM_WORLD);
        const auto got_dot = mpi::allreduce_dot(lx.data(), ly.data(), lx.size(), MPI_COMM_WORLD, tier::exact);
        EXPECT_EQ(bits_of(want_sum), bits_of(got_sum))
            << "sum, kind " << kind << ", n " << n << ", split " << split << ", rank " << rank << "/" << ranks;
        EXPECT_EQ(bits_of(want_dot), bits_of(got_dot))
            << "dot, kind " << kind << ", n " << n << ", split " << split << ", rank " << rank << "/" << ranks;
      }
    }
  }
}

// Users' own accumulators: the merged state (serialized bytes) is the same on every rank and
// equals one accumulator fed with everything; several accumulators reduce element-wise.
TEST(MpiAllreduce, UserAccumulators) {
  const int rank = rank_of(), ranks = size_of();
  const std::size_t n = 30011;
  const auto x = data<double>(n, 5, 3);
  const auto xf = data<float>(n, 6, 0);
  core::exact_accumulator<double> all, mine;
  core::exact_accumulator<float> two[2], two_all[2];
  for (std::size_t i = 0; i < n; ++i) {
    all.add(x[i]);
    two_all[0].add(xf[i]);
    two_all[1].add_product(xf[i], 3.0f);
    if (i % static_cast<std::size_t>(ranks) == static_cast<std::size_t>(rank)) {
      mine.add(x[i]);
      two[0].add(xf[i]);
      two[1].add_product(xf[i], 3.0f);
    }
  }
  mpi::allreduce_accumulator(mine, MPI_COMM_WORLD);
  EXPECT_TRUE(mine.same_value(all));
  std::vector<unsigned char> a(core::exact_accumulator<double>::serialized_size), b(a.size());
  mine.to_bytes(a.data());
  all.to_bytes(b.data());
  EXPECT_EQ(a, b);
  // Every rank holds the same bytes: compare with rank 0's.
  std::vector<unsigned char> root = a;
  MPI_Bcast(root.data(), static_cast<int>(root.size()), MPI_BYTE, 0, MPI_COMM_WORLD);
  EXPECT_EQ(root, a);
  mpi::allreduce_accumulators(two, 2, MPI_COMM_WORLD);
  EXPECT_TRUE(two[0].same_value(two_all[0]));
  EXPECT_TRUE(two[1].same_value(two_all[1]));
  EXPECT_TRUE(std::isfinite(two[0].round()));
  EXPECT_NE(bits_of(two[0].round()), bits_of(two[1].round()));
}

TEST(MpiAllreduce, FixedOrderIsRejected) {
  const float x[3] = {1, 2, 3};
  EXPECT_THROW(mpi::allreduce_sum(x, 3, MPI_COMM_WORLD, tier::fixed_order), std::invalid_argument);
  EXPECT_THROW(mpi::allreduce_dot(x, x, 3, MPI_COMM_WORLD, tier::fixed_order), std::invalid_argument);
}

// A sub-communicator (even ranks, odd ranks) reduces only its own members' data.
TEST(MpiAllreduce, SubCommunicator) {
  const int rank = rank_of(), ranks = size_of();
  MPI_Comm half;
  MPI_Comm_split(MPI_COMM_WORLD, rank % 2, rank, &half);
  const std::size_t n = 4099;
  const auto x = data<float>(n, 99, 0);
  std::vector<float> members;  // the elements owned by ranks of my color (round robin over world)
  std::vector<float> mine;
  for (std::size_t i = 0; i < n; ++i) {
    const int owner = static_cast<int>(i % static_cast<std::size_t>(ranks));
    if (owner % 2 == rank % 2) members.push_back(x[i]);
    if (owner == rank) mine.push_back(x[i]);
  }
  const float got = mpi::allreduce_sum(mine.data(), mine.size(), half);
  EXPECT_EQ(bits_of(reference::sum_exact(members.data(), members.size())), bits_of(got));
  MPI_Comm_free(&half);
}

// The data is not trivially split-proof: a plain per-rank float sum combined across ranks
// gives different bits for different splits (so the tests above can fail).
TEST(MpiAllreduceSanity, NaiveSumDependsOnSplit) {
  const std::size_t n = 100003;
  const auto x = data<float>(n, 100 * n, 0);
  auto naive = [&](std::size_t parts) {
    float total = 0;
    for (std::size_t p = 0; p < parts; ++p) {
      float s = 0;
      for (std::size_t i = p * n / parts; i < (p + 1) * n / parts; ++i) s += x[i];
      total += s;
    }
    return total;
  };
  EXPECT_NE(bits_of(naive(1)), bits_of(naive(3)));
}

// Prints the failures of a rank whose default printer was removed.
class failure_printer : public ::testing::EmptyTestEventListener {
 public:
  explicit failure_printer(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (r.failed())
      std::fprintf(stderr, "[rank %d] %s:%d: failure\n%s\n", rank_, r.file_name() ? r.file_name() : "?",
                   r.line_number(), r.summary());
  }

 private:
  int rank_;
};

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  const int rank = rank_of();
  if (rank != 0) {  // one rank prints the progress; every rank prints its failures
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new failure_printer(rank));
  }
  int failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
  if (::testing::UnitTest::GetInstance()->failed_test_count() > 0) failed = 1;
  int any = 0;
  MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (rank == 0) std::printf("mpi_test: %d ranks, %s\n", size_of(), any ? "FAILED on some rank" : "all ranks passed");
  MPI_Finalize();
  return any;
}
