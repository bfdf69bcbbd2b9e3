// threads_test: the worker pool under the callers a library meets in frameworks (issue 14).
//  - workers run in the IEEE default mode whatever mode the thread that started them had;
//  - a fork()ed child (PyTorch's DataLoader) can call multi-threaded ops;
//  - many user threads calling ops at once get the bits they get alone, without deadlock,
//    and the scratch memory of threads that ended is freed;
//  - ops called from inside an OpenMP parallel region;
//  - the test hook that lowers the per-thread grain really splits the work.
// CTest runs every TEST in its own process (gtest_discover_tests), so each starts a fresh pool.
// A hang fails: the work runs under a watchdog that ends the process.
#include <gtest/gtest.h>

#include <atomic>
#include <cfenv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <future>
#include <thread>
#include <vector>

#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(_OPENMP)
#include <omp.h>
#endif
#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

#include <bitexact/bitexact.hpp>

#include "random_test_util.hpp"
#include "split_probe.hpp"

namespace {

using namespace bitexact;

std::uint32_t bits_of(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

/// Runs f under a watchdog: if it has not returned after `seconds`, the test fails and the
/// process ends (a deadlock must fail CI, not block it).
template <class F>
void with_watchdog(int seconds, const char* what, F&& f) {
  std::packaged_task<void()> task(std::forward<F>(f));
  auto done = task.get_future();
  std::thread runner(std::move(task));
  if (done.wait_for(std::chrono::seconds(seconds)) != std::future_status::ready) {
    std::fprintf(stderr, "FAILED: %s did not finish within %d s (deadlock?)\n", what, seconds);
    std::fflush(stderr);
    std::_Exit(1);
  }
  runner.join();
  done.get();  // rethrows
}

const stream<philox4x32_10> kStream(philox4x32_10::key_type{3, 4});

/// 2^20 float subnormals: DAZ reads them as zero, FTZ flushes their partial sums.
std::vector<float> subnormals() {
  std::vector<float> x(std::size_t(1) << 20);
  bitexact_test::splitmix r{11};
  for (auto& v : x) {
    const std::uint32_t u = static_cast<std::uint32_t>(r() & 0x007fffffu) | 1u;  // exponent 0
    std::memcpy(&v, &u, 4);
  }
  return x;
}

/// Starts the pool (8 threads) from a new thread whose FP mode `set_mode` changed, with an op
/// that does not check the mode (generate of words).
template <class SetMode>
void start_pool_from_a_thread_with(SetMode set_mode) {
  std::thread starter([&] {
    set_mode();
    std::vector<std::uint32_t> w(std::size_t(1) << 20);
    generate(kStream, 0, w.data(), w.size(), execution{8, isa::automatic});
  });
  starter.join();
}

#if defined(__SSE2__)
TEST(PoolFpEnvironment, WorkersIgnoreTheStartersFtzDaz) {
  start_pool_from_a_thread_with([] { _mm_setcsr(_mm_getcsr() | 0x8040u); });
  ASSERT_TRUE(fp_environment().ok());
  const auto x = subnormals();
  const float one = sum(x.data(), x.size(), tier::fixed_order, execution{1, isa::automatic});
  ASSERT_NE(one, 0.0f);
  for (int t : {2, 3, 4, 7, 8}) {
    bitexact_test::split_probe probe;
    const float many = sum(x.data(), x.size(), tier::fixed_order, execution{t, isa::automatic});
    EXPECT_EQ(bits_of(many), bits_of(one)) << "threads " << t;
    EXPECT_EQ(probe.widest(), t) << "the sum did not split over " << t << " threads";
  }
}
#endif

TEST(PoolFpEnvironment, WorkersIgnoreTheStartersRoundingMode) {
  start_pool_from_a_thread_with([] { std::fesetround(FE_UPWARD); });
  ASSERT_TRUE(fp_environment().ok());
  std::vector<float> x(std::size_t(1) << 20);
  generate_uniform(kStream, 0, x.data(), x.size());
  const float one = sum(x.data(), x.size(), tier::fixed_order, execution{1, isa::automatic});
  for (int t : {2, 3, 4, 7, 8}) {
    bitexact_test::split_probe probe;
    const float many = sum(x.data(), x.size(), tier::fixed_order, execution{t, isa::automatic});
    EXPECT_EQ(bits_of(many), bits_of(one)) << "threads " << t;
    EXPECT_EQ(probe.widest(), t);
  }
}

// ------------------------------------------------------------------------------- fork

/// What a child computes: a 4-thread sum and 4-thread words, compared with the parent's.
int child_checks(std::uint32_t want_sum, std::uint64_t want_words) {
  std::vector<float> x(std::size_t(1) << 20);
  generate_uniform(kStream, 0, x.data(), x.size(), execution{4, isa::automatic});
  const float s = sum(x.data(), x.size(), tier::fixed_order, execution{4, isa::automatic});
  std::vector<std::uint32_t> w(std::size_t(1) << 20);
  generate(kStream, 5, w.data(), w.size(), execution{4, isa::automatic});
  const std::uint64_t h = bitexact_test::fnv1a64(w.data(), w.size() * 4);
  return bits_of(s) == want_sum && h == want_words ? 0 : 2;
}

/// Waits for the child up to `seconds`; kills it on timeout. Returns its exit status or -1.
int wait_child(pid_t pid, int seconds) {
  for (int k = 0; k < seconds * 100; ++k) {
    int st = 0;
    const pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  return -1;
}

TEST(PoolFork, ChildCallsMultiThreadedOps) {
  std::vector<float> x(std::size_t(1) << 20);
  generate_uniform(kStream, 0, x.data(), x.size(), execution{4, isa::automatic});
  const std::uint32_t want = bits_of(sum(x.data(), x.size(), tier::fixed_order, execution{4, isa::automatic}));
  std::vector<std::uint32_t> w(std::size_t(1) << 20);
  generate(kStream, 5, w.data(), w.size(), execution{1, isa::automatic});
  const std::uint64_t want_words = bitexact_test::fnv1a64(w.data(), w.size() * 4);
  for (int round = 0; round < 2; ++round) {  // a child of a child too
    std::fflush(nullptr);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int rc = child_checks(want, want_words);
      if (rc == 0 && round == 1) {  // the grandchild
        const pid_t g = fork();
        if (g == 0) _exit(child_checks(want, want_words));
        rc = wait_child(g, 60);
      }
      _exit(rc);
    }
    const int rc = wait_child(pid, 90);
    EXPECT_NE(rc, -1) << "the forked child hung in a multi-threaded op";
    EXPECT_EQ(rc, 0) << "the forked child computed other bits (or crashed)";
  }
  // The parent's pool still works.
  EXPECT_EQ(bits_of(sum(x.data(), x.size(), tier::fixed_order, execution{8, isa::automatic})), want);
}

/// A child that never calls an op and exits normally (static destructors run): it must not
/// wait for its parent's workers, which do not exist in it.
TEST(PoolFork, ChildExitsWithoutCallingOps) {
  std::vector<float> x(std::size_t(1) << 20, 1.0f);
  (void)sum(x.data(), x.size(), tier::fixed_order, execution{4, isa::automatic});  // start the pool
  std::fflush(nullptr);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) std::exit(0);  // runs the pool's destructor
  const int rc = wait_child(pid, 60);
  EXPECT_EQ(rc, 0) << (rc == -1 ? "the child hung in exit()" : "the child crashed in exit()");
}

/// fork() while other threads of the parent are inside multi-threaded ops.
TEST(PoolFork, ForkWhileOtherThreadsRunOps) {
  std::vector<float> x(std::size_t(1) << 20);
  generate_uniform(kStream, 0, x.data(), x.size(), execution{1, isa::automatic});
  const std::uint32_t want = bits_of(sum(x.data(), x.size(), tier::fixed_order, execution{1, isa::automatic}));
  std::vector<std::uint32_t> w(std::size_t(1) << 20);
  generate(kStream, 5, w.data(), w.size(), execution{1, isa::automatic});
  const std::uint64_t want_words = bitexact_test::fnv1a64(w.data(), w.size() * 4);
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> busy;
  for (int k = 0; k < 3; ++k)
    busy.emplace_back([&] {
      while (!stop.load())
        if (bits_of(sum(x.data(), x.size(), tier::fixed_order, execution{3, isa::automatic})) != want) ++bad;
    });
  with_watchdog(240, "fork while busy", [&] {
    for (int round = 0; round < 5; ++round) {
      std::fflush(nullptr);
      const pid_t pid = fork();
      if (pid == 0) _exit(child_checks(want, want_words));
      const int rc = wait_child(pid, 60);
      EXPECT_EQ(rc, 0) << "round " << round << (rc == -1 ? ": the child hung" : "");
    }
  });
  stop = true;
  for (auto& b : busy) b.join();
  EXPECT_EQ(bad.load(), 0);
}

// ------------------------------------------------------------------ concurrent callers

TEST(PoolConcurrency, ManyUserThreadsGetTheirBitsAlone) {
  bitexact_test::split_probe probe;  // 2^18 values split over up to 8 threads
  std::vector<float> x(std::size_t(1) << 18);
  generate_uniform(kStream, 0, x.data(), x.size(), execution{1, isa::automatic});
  std::vector<std::int32_t> idx(x.size());
  for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<std::int32_t>((i * 2654435761u) % 1000);
  const std::uint32_t want_sum = bits_of(sum(x.data(), x.size(), tier::fixed_order, execution{1, isa::automatic}));
  std::vector<float> want_add(1000, 0.0f);
  index_add(want_add.data(), want_add.size(), idx.data(), x.data(), x.size(), tier::fixed_order, execution{1, isa::automatic});
  std::atomic<int> bad{0};
  with_watchdog(300, "16 concurrent callers", [&] {
    std::vector<std::thread> callers;
    for (int c = 0; c < 16; ++c)
      callers.emplace_back([&, c] {
        for (int it = 0; it < 4; ++it) {
          const int t = 1 + (c + it) % 8;
          if (bits_of(sum(x.data(), x.size(), tier::fixed_order, execution{t, isa::automatic})) != want_sum) ++bad;
          std::vector<float> out(1000, 0.0f);
          index_add(out.data(), out.size(), idx.data(), x.data(), x.size(), tier::fixed_order, execution{t, isa::automatic});
          if (std::memcmp(out.data(), want_add.data(), out.size() * 4) != 0) ++bad;
        }
      });
    for (auto& th : callers) th.join();
  });
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(probe.widest(), 8);
}

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
/// Scatter scratch is per calling thread: it must go when the thread ends, so a framework that
/// calls from many short-lived threads does not grow without bound.
TEST(PoolConcurrency, ScratchOfEndedThreadsIsFreed) {
  const std::size_t n = std::size_t(1) << 19;  // radix path: > 2^16 targets, ~10 MB of scratch
  std::vector<float> src(n, 1.0f);
  std::vector<std::int64_t> idx(n);
  for (std::size_t i = 0; i < n; ++i) idx[i] = static_cast<std::int64_t>((i * 2654435761u) % n);
  auto one_call = [&] {
    std::vector<float> out(n, 0.0f);
    index_add_rows(out.data(), n, 1, idx.data(), src.data(), n, tier::fixed_order, execution{2, isa::automatic});
  };
  std::thread(one_call).join();  // warm up allocator and pool
  auto in_use = [] { const auto m = mallinfo2(); return m.uordblks + m.hblkhd; };  // heap + mmap'd blocks
  const std::size_t base = in_use();
  for (int k = 0; k < 12; ++k) std::thread(one_call).join();
  const std::size_t after = in_use();
  EXPECT_LT(after, base + (std::size_t(4) << 20)) << "scratch of ended threads kept: " << (after - base) << " bytes";
}
#endif

#if defined(_OPENMP)
TEST(PoolOpenMP, OpsInsideAParallelRegion) {
  std::vector<float> x(std::size_t(1) << 20);
  generate_uniform(kStream, 0, x.data(), x.size(), execution{1, isa::automatic});
  const std::uint32_t want = bits_of(sum(x.data(), x.size(), tier::fixed_order, execution{1, isa::automatic}));
  std::atomic<int> bad{0}, ran{0};
  with_watchdog(300, "ops in an OpenMP region", [&] {
#pragma omp parallel num_threads(6)
    {
      for (int it = 0; it < 4; ++it) {
        const int t = 1 + (omp_get_thread_num() + it) % 8;
        if (bits_of(sum(x.data(), x.size(), tier::fixed_order, execution{t, isa::automatic})) != want) ++bad;
        std::vector<float> u(100003);
        generate_uniform(kStream, 0, u.data(), u.size(), execution{t, isa::automatic});
        if (std::memcmp(u.data(), x.data(), u.size() * 4) != 0) ++bad;
        ++ran;
      }
    }
  });
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(ran.load(), 24);
}
#endif

// ----------------------------------------------------------- the grain hook and the probe

TEST(PoolGrainHook, LowerGrainSplitsSmallInputs) {
  std::vector<float> x(4096 * 9 + 5);
  generate_uniform(kStream, 0, x.data(), x.size(), execution{1, isa::automatic});
  {
    bitexact_test::split_probe probe(/*lower_grain=*/false);
    (void)sum(x.data(), x.size(), tier::fixed_order, execution{8, isa::automatic});
    EXPECT_EQ(probe.widest(), 1) << "with the default grain a 37 K sum runs on one thread";
  }
  bitexact_test::split_probe probe;
  const float one = sum(x.data(), x.size(), tier::fixed_order, execution{1, isa::automatic});
  const float many = sum(x.data(), x.size(), tier::fixed_order, execution{8, isa::automatic});
  EXPECT_EQ(bits_of(one), bits_of(many));
  EXPECT_EQ(probe.widest(), 8);
}

TEST(PoolSpin, ReadsTheEnvironmentOnce) {
  const char* e = std::getenv("BITEXACT_POOL_SPIN_US");
  EXPECT_EQ(cpu::detail::pool_spin_microseconds(), e == nullptr ? 50u : std::strtoull(e, nullptr, 10));
  // Regions back to back and after a pause longer than any spin: the same bits either way.
  std::vector<float> x(std::size_t(1) << 20);
  generate_uniform(kStream, 0, x.data(), x.size(), execution{1, isa::automatic});
  const float one = sum(x.data(), x.size(), tier::fixed_order, execution{1, isa::automatic});
  for (int k = 0; k < 20; ++k) {
    if (k % 5 == 4) std::this_thread::sleep_for(std::chrono::milliseconds(3));
    EXPECT_EQ(bits_of(sum(x.data(), x.size(), tier::fixed_order, execution{2 + k % 3, isa::automatic})), bits_of(one));
  }
}

// ------------------------------------------------------------- foreign region runners

/// Installs a runner for its lifetime and counts the regions and jobs it ran.
struct runner_guard {
  explicit runner_guard(cpu::region_runner fn) { cpu::set_region_runner(fn, this); }
  ~runner_guard() { cpu::set_region_runner(nullptr); }
  std::atomic<int> regions{0}, jobs{0}, asked{0};  // regions run, jobs run, jobs the regions asked for
  static runner_guard& of(void* c) { return *static_cast<runner_guard*>(c); }
};

void reverse_serial_runner(void* c, int n, const std::function<void(int)>& job) {
  ++runner_guard::of(c).regions, runner_guard::of(c).asked += n;
  for (int t = n - 1; t >= 0; --t) job(t), ++runner_guard::of(c).jobs;
}
void thread_per_job_runner(void* c, int n, const std::function<void(int)>& job) {
  ++runner_guard::of(c).regions, runner_guard::of(c).asked += n;
  std::vector<std::thread> ts;
  for (int t = 0; t < n; ++t) ts.emplace_back([&, t] { job(t); ++runner_guard::of(c).jobs; });
  for (auto& th : ts) th.join();
}
#if defined(_OPENMP)
void openmp_runner(void* c, int n, const std::function<void(int)>& job) {
  ++runner_guard::of(c).regions, runner_guard::of(c).asked += n;
#pragma omp parallel for num_threads(n) schedule(static, 1)
  for (int t = 0; t < n; ++t) job(t), ++runner_guard::of(c).jobs;
}
#endif

/// Results of a few op families at 8 threads (with the grain lowered so that all of them split).
std::vector<std::uint32_t> ops_at_8_threads() {
  bitexact_test::split_probe probe;
  const execution ex{8, isa::automatic};
  std::vector<float> x(std::size_t(1) << 18);
  generate_normal(kStream, 0, x.data(), x.size(), ex);
  std::vector<std::uint32_t> out;
  auto keep = [&](const float* p, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) out.push_back(bits_of(p[i]));
  };
  const float s = sum(x.data(), x.size(), tier::fixed_order, ex);
  const float e = sum(x.data(), x.size(), tier::exact, ex);
  keep(&s, 1), keep(&e, 1), keep(x.data(), 64);
  const std::size_t m = 37, n = 129, k = 700;  // several K chunks
  std::vector<float> c(m * n);
  gemm<float>(transpose::no, transpose::no, m, n, k, 1.0f, x.data(), k, x.data() + m * k, n, 0.0f, c.data(), n,
              tier::fixed_order, ex);
  keep(c.data(), c.size());
  conv2d_shape cs;
  cs.batch = 3, cs.in_channels = 5, cs.in_h = 13, cs.in_w = 11, cs.out_channels = 7, cs.kernel_h = 3, cs.kernel_w = 3;
  cs.pad_h = cs.pad_w = 1;
  std::vector<float> y(cs.batch * cs.out_channels * cs.out_h() * cs.out_w()), dw(7 * 5 * 9);
  conv2d_forward<float>(cs, x.data(), x.data() + 4096, nullptr, y.data(), tier::fixed_order, ex);
  conv2d_backward_weight<float>(cs, x.data(), y.data(), dw.data(), nullptr, tier::fixed_order, ex);
  keep(y.data(), y.size()), keep(dw.data(), dw.size());
  std::vector<std::int64_t> idx(x.size());
  for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<std::int64_t>((i * 2654435761u) % 1000);
  std::vector<float> acc(1000, 0.5f);
  index_add(acc.data(), acc.size(), idx.data(), x.data(), x.size(), tier::fixed_order, ex);
  keep(acc.data(), acc.size());
  EXPECT_TRUE(probe.widest() == 8 || cpu::current_region_runner() != nullptr);
  return out;
}

/// The runner's regions give the pool's bits, all its jobs ran, and the pool itself ran none.
void check_runner(const char* name, cpu::region_runner fn, const std::vector<std::uint32_t>& want) {
  runner_guard g(fn);
  bitexact_test::split_probe probe;
  const auto got = ops_at_8_threads();
  EXPECT_TRUE(got == want) << name;
  EXPECT_GE(g.regions.load(), 6) << name << ": the ops' regions did not go through the runner";
  EXPECT_EQ(g.jobs.load(), g.asked.load()) << name;
  EXPECT_EQ(probe.widest(), 1) << name << ": the library's own pool ran a region";
}

TEST(PoolRegionRunner, ForeignRunnersGiveThePoolsBits) {
  const auto want = ops_at_8_threads();
  check_runner("reverse serial", reverse_serial_runner, want);
  check_runner("a thread per job", thread_per_job_runner, want);
  EXPECT_EQ(cpu::current_region_runner(), nullptr);
  EXPECT_TRUE(ops_at_8_threads() == want) << "the pool again, after the runners";
}

#if defined(_OPENMP)
// (Named PoolOpenMP: the ThreadSanitizer run leaves libgomp's uninstrumented barriers out.)
TEST(PoolOpenMP, RegionRunnerOnOpenMPThreads) { check_runner("OpenMP", openmp_runner, ops_at_8_threads()); }
#endif

#if defined(__SSE2__)
void ftz_thread_runner(void* c, int n, const std::function<void(int)>& job) {
  ++runner_guard::of(c).regions, runner_guard::of(c).asked += n;
  std::vector<std::thread> ts;
  for (int t = 0; t < n; ++t)
    ts.emplace_back([&, t] {
      _mm_setcsr(_mm_getcsr() | 0x8040u);  // a framework thread in FTZ/DAZ mode
      job(t);
      if ((_mm_getcsr() & 0x8040u) == 0x8040u) ++runner_guard::of(c).jobs;  // its mode restored
    });
  for (auto& th : ts) th.join();
}

TEST(PoolRegionRunner, JobsRunInIeeeModeAndGiveBackTheThreadsMode) {
  const auto x = subnormals();
  const float one = sum(x.data(), x.size(), tier::fixed_order, execution{1, isa::automatic});
  ASSERT_NE(one, 0.0f);
  runner_guard g(ftz_thread_runner);
  const float many = sum(x.data(), x.size(), tier::fixed_order, execution{4, isa::automatic});
  EXPECT_EQ(bits_of(many), bits_of(one));
  ASSERT_EQ(g.regions.load(), 1);
  EXPECT_EQ(g.jobs.load(), 4) << "a job left its thread in a different FP mode";
}
#endif

TEST(PoolRegionRunner, AJobsExceptionReachesTheCallerAndNestedRegionsRunSerially) {
  runner_guard g(thread_per_job_runner);
  std::atomic<int> inner{0};
  auto& pool = cpu::detail::thread_pool::instance();
  EXPECT_THROW(pool.run(4,
                        [&](int id) {
                          pool.run(3, [&](int) { ++inner; });  // inside a job: serial, not the runner
                          if (id == 2) throw std::runtime_error("job 2");
                        }),
               std::runtime_error);
  EXPECT_EQ(g.regions.load(), 1);
  EXPECT_EQ(inner.load(), 12);
}

}  // namespace
