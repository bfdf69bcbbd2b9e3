// bitexact/cpu/threads.hpp - a persistent worker pool and canonical chunking.
//
// Work is cut into canonical chunks whose boundaries depend on the problem size alone
// (canonical_chunks). Threads take contiguous runs of chunks; the thread count changes who
// computes a chunk, never what a chunk computes.
#pragma once
#include <algorithm>
#include <atomic>
#include <cfenv>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include <pthread.h>

#include "../fp_environment.hpp"

namespace bitexact {
namespace cpu {

/// Chunk c covers [c * chunk, min((c + 1) * chunk, n)).
struct canonical_chunks {
  std::uint64_t n;
  std::uint64_t chunk;
  std::uint64_t count() const { return chunk == 0 ? 0 : (n + chunk - 1) / chunk; }
  std::uint64_t begin(std::uint64_t c) const { return c * chunk; }
  std::uint64_t end(std::uint64_t c) const { return std::min(n, (c + 1) * chunk); }
};

/// A parallel-region runner for threads the library does not own (a framework's pool, so that
/// its threads and ours do not fight over the cores). runner(context, n, job) must call job(t)
/// exactly once for every t in [0, n) - on any threads, in any order, concurrently or one after
/// another - and return when all calls have returned. The library wraps each job: it runs in the
/// IEEE default FP mode (the thread's own mode is restored after), a job's exception is caught
/// and rethrown to the op's caller, and a region started from inside a job runs serially. Job t
/// always computes the same canonical chunks, so the runner changes no result bit.
using region_runner = void (*)(void* context, int n, const std::function<void(int)>& job);

namespace detail {
struct runner_slot {
  std::atomic<region_runner> fn{nullptr};
  std::atomic<void*> context{nullptr};
};
inline runner_slot& runner() {
  static runner_slot r;
  return r;
}
}  // namespace detail

/// Installs `fn` (with `context`) for every later parallel region of this process; nullptr
/// restores the library's own worker pool. Call it while no op is running.
inline void set_region_runner(region_runner fn, void* context = nullptr) {
  detail::runner().context.store(context, std::memory_order_relaxed);
  detail::runner().fn.store(fn, std::memory_order_release);
}
/// The runner installed by set_region_runner (nullptr: the library's own pool).
inline region_runner current_region_runner() { return detail::runner().fn.load(std::memory_order_acquire); }

namespace detail {

/// Test hook: the least work (values, sources, rows x cols...) a family gives one thread before
/// it wakes another. 0 (the default) keeps each family's own grain; a positive value replaces
/// every family's, so tests split small inputs over {2, 3, 4, 7, 8} threads (also under qemu).
/// Set from the environment variable BITEXACT_MIN_WORK_PER_THREAD (read once) or by
/// set_min_work_per_thread(). Like the thread count, it changes who computes which canonical
/// chunk, never a result bit.
inline std::atomic<std::uint64_t>& min_work_override() {
  static std::atomic<std::uint64_t> v{[] {
    const char* s = std::getenv("BITEXACT_MIN_WORK_PER_THREAD");
    return s == nullptr ? std::uint64_t{0} : std::strtoull(s, nullptr, 10);
  }()};
  return v;
}
inline void set_min_work_per_thread(std::uint64_t n) { min_work_override().store(n); }
/// The grain a family uses: its own default unless the hook overrides it.
inline std::uint64_t min_work_per_thread(std::uint64_t family_default) {
  const std::uint64_t o = min_work_override().load(std::memory_order_relaxed);
  return o != 0 ? o : family_default;
}
/// The thread count for `work` units at that grain, at least 1 and at most `threads`.
inline int threads_for_work(int threads, std::uint64_t work, std::uint64_t family_default) {
  const std::uint64_t g = min_work_per_thread(family_default);
  const std::uint64_t useful = (work + g - 1) / g;
  return static_cast<int>(std::max<std::uint64_t>(1, std::min<std::uint64_t>(static_cast<std::uint64_t>(std::max(threads, 1)), useful)));
}

/// How long (microseconds) an idle worker, and a caller waiting for its workers, spins before it
/// blocks: BITEXACT_POOL_SPIN_US (read once; 0 blocks at once), default 50. Longer keeps the
/// workers hot across the gaps between a framework's ops; shorter gives the cores back sooner.
inline std::uint64_t pool_spin_microseconds() {
  static const std::uint64_t v = [] {
    const char* s = std::getenv("BITEXACT_POOL_SPIN_US");
    return s == nullptr ? std::uint64_t{50} : std::strtoull(s, nullptr, 10);
  }();
  return v;
}

/// Test probe: bit k (k < 63; 63 for more) is set once a parallel region has run k jobs on k
/// distinct threads (the caller and k - 1 workers). Tests reset it and read which splits ran.
inline std::atomic<std::uint64_t>& split_seen() {
  static std::atomic<std::uint64_t> v{0};
  return v;
}

/// Counts fork()s of this process (a pthread_atfork child handler): a forked child has only
/// the thread that called fork(), so the pool it inherited has no workers and its locks may be
/// held by threads that do not exist there. The pool sees the count change and starts afresh.
inline std::atomic<std::uint64_t>& fork_generation() {
  static std::atomic<std::uint64_t> v{0};
  return v;
}

class thread_pool {
 public:
  static thread_pool& instance() {
    static thread_pool p;
    return p;
  }

  /// Runs job(t) for t in [0, nthreads) concurrently; t = 0 on the calling thread. Rethrows
  /// the first exception a job threw. Calls from inside a job run serially (no nesting); calls
  /// from several user threads take turns (one parallel region at a time). Workers run in the
  /// IEEE default FP mode whatever the mode of the thread that started them.
  void run(int nthreads, const std::function<void(int)>& job) {
    if (nthreads <= 1 || in_job()) {
      for (int t = 0; t < std::max(nthreads, 1); ++t) job(t);
      return;
    }
    if (const region_runner fn = runner().fn.load(std::memory_order_acquire)) {
      run_foreign(fn, runner().context.load(std::memory_order_relaxed), nthreads, job);
      return;
    }
    state& st = current();
    std::unique_lock<std::mutex> call_lock(st.call_mutex);  // one parallel region at a time
    {
      std::unique_lock<std::mutex> lk(st.m);
      while (static_cast<int>(st.workers.size()) < nthreads - 1) {
        const int id = static_cast<int>(st.workers.size()) + 1;
        st.workers.emplace_back([&st, id] { worker(st, id); });
      }
      st.job = &job;
      st.active = nthreads;
      st.pending = nthreads - 1;
      st.unfinished.store(st.pending, std::memory_order_relaxed);
      st.error = nullptr;
      ++st.generation;
      st.published.store(st.generation, std::memory_order_release);
    }
    st.cv.notify_all();
    split_seen().fetch_or(std::uint64_t{1} << std::min(nthreads, 63), std::memory_order_relaxed);
    run_one(st, job, 0);
    spin_briefly([&st] { return st.unfinished.load(std::memory_order_acquire) == 0; });
    std::unique_lock<std::mutex> lk(st.m);
    st.done_cv.wait(lk, [&st] { return st.pending == 0; });
    st.job = nullptr;
    if (st.error) std::rethrow_exception(st.error);
  }

  ~thread_pool() {
    state* st = state_.load();
    // A forked child that exits without having called an op still holds its parent's state:
    // those workers do not exist here, so there is nothing to stop or join (and it leaks).
    if (st->forks != fork_generation().load()) return;
    {
      std::lock_guard<std::mutex> lk(st->m);
      st->stop = true;
      ++st->generation;
      st->published.store(st->generation, std::memory_order_release);
    }
    st->cv.notify_all();
    for (auto& w : st->workers) w.join();
    delete st;
  }

 private:
  /// Everything a process's pool holds; a forked child leaks its parent's copy (its threads do
  /// not exist in the child, its mutexes may be locked) and makes a new one.
  struct state {
    std::uint64_t forks = 0;  // fork_generation() when made
    std::mutex call_mutex, m;
    std::condition_variable cv, done_cv;
    std::vector<std::thread> workers;
    const std::function<void(int)>* job = nullptr;
    std::uint64_t generation = 0;
    int active = 0, pending = 0;
    // Copies of generation and pending (written under m) that waiters spin on before they block.
    std::atomic<std::uint64_t> published{0};
    std::atomic<int> unfinished{0};
    bool stop = false;
    std::exception_ptr error;
  };

  thread_pool() {
    static const int registered = pthread_atfork(nullptr, nullptr, [] { fork_generation().fetch_add(1); });
    (void)registered;
    state_.store(new state);
  }

  state& current() {
    state* st = state_.load(std::memory_order_acquire);
    const std::uint64_t forks = fork_generation().load(std::memory_order_acquire);
    if (st->forks == forks) return *st;
    // In a forked child: the old state is abandoned (never touched again, never freed).
    state* fresh = new state;
    fresh->forks = forks;
    if (state_.compare_exchange_strong(st, fresh, std::memory_order_acq_rel)) return *fresh;
    delete fresh;  // another thread of the child replaced it first
    return *st;
  }

  static bool& in_job() {
    static thread_local bool v = false;
    return v;
  }
  /// One region on an installed runner: each job in the IEEE mode with the thread's own mode
  /// restored after, exceptions collected and the first rethrown here.
  static void run_foreign(region_runner fn, void* context, int nthreads, const std::function<void(int)>& job) {
    std::mutex error_mutex;
    std::exception_ptr error;
    const std::function<void(int)> wrapped = [&](int id) {
      const bool outer = in_job();
      in_job() = true;
      std::fenv_t saved;
      std::fegetenv(&saved);
      ::bitexact::detail::set_ieee_environment();
      try {
        job(id);
      } catch (...) {
        std::lock_guard<std::mutex> lk(error_mutex);
        if (!error) error = std::current_exception();
      }
      std::fesetenv(&saved);
      in_job() = outer;
    };
    fn(context, nthreads, wrapped);
    if (error) std::rethrow_exception(error);
  }
  static void run_one(state& st, const std::function<void(int)>& job, int id) {
    in_job() = true;
    try {
      job(id);
    } catch (...) {
      std::lock_guard<std::mutex> lk(st.m);
      if (!st.error) st.error = std::current_exception();
    }
    in_job() = false;
  }
  static void worker(state& st, int id) {
    // A new thread inherits its creator's MXCSR / FPCR and rounding mode; workers must not.
    ::bitexact::detail::set_ieee_environment();
    std::uint64_t seen = 0;
    for (;;) {
      const std::function<void(int)>* job = nullptr;
      spin_briefly([&] { return st.published.load(std::memory_order_acquire) != seen; });
      {
        std::unique_lock<std::mutex> lk(st.m);
        st.cv.wait(lk, [&] { return st.stop || st.generation != seen; });
        if (st.stop) return;
        seen = st.generation;
        if (id >= st.active) continue;
        job = st.job;
      }
      run_one(st, *job, id);
      std::lock_guard<std::mutex> lk(st.m);
      st.unfinished.store(--st.pending, std::memory_order_release);
      if (st.pending == 0) st.done_cv.notify_one();
    }
  }

  /// Waits up to pool_spin_microseconds() for done() before the caller blocks on a condition
  /// variable: waking a blocked thread goes through the kernel (and, in a VM, through the
  /// hypervisor), which can cost more than a small op, and a framework runs its ops back to back
  /// with a little interpreter time between them. Spinning only changes when a thread notices its
  /// work, never which work it does.
  template <class Done>
  static void spin_briefly(Done done) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(pool_spin_microseconds());
    for (unsigned i = 1; !done(); ++i) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#elif defined(__aarch64__)
      __asm__ __volatile__("yield");
#endif
      if (i % 64 == 0 && std::chrono::steady_clock::now() >= until) return;
    }
  }

  std::atomic<state*> state_{nullptr};
};

}  // namespace detail

/// Runs body(chunk_begin, chunk_end) over the canonical chunks of `chunks` on up to `threads`
/// threads. Each thread gets a contiguous run of whole chunks.
template <class Body>
void parallel_chunks(int threads, const canonical_chunks& chunks, Body&& body) {
  const std::uint64_t nc = chunks.count();
  if (nc == 0) return;
  const int t = static_cast<int>(std::min<std::uint64_t>(static_cast<std::uint64_t>(std::max(threads, 1)), nc));
  auto job = [&](int id) {
    const std::uint64_t c0 = nc * static_cast<std::uint64_t>(id) / static_cast<std::uint64_t>(t);
    const std::uint64_t c1 = nc * static_cast<std::uint64_t>(id + 1) / static_cast<std::uint64_t>(t);
    for (std::uint64_t c = c0; c < c1; ++c) body(chunks.begin(c), chunks.end(c));
  };
  detail::thread_pool::instance().run(t, job);
}

}  // namespace cpu
}  // namespace bitexact
