// bitexact/cpu/threads.hpp - a persistent worker pool and canonical chunking.
//
// Work is cut into canonical chunks whose boundaries depend on the problem size alone
// (canonical_chunks). Threads take contiguous runs of chunks; the thread count changes who
// computes a chunk, never what a chunk computes.
#pragma once
#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

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

namespace detail {

class thread_pool {
 public:
  static thread_pool& instance() {
    static thread_pool p;
    return p;
  }

  /// Runs job(t) for t in [0, nthreads) concurrently; t = 0 on the calling thread. Rethrows
  /// the first exception a job threw. Calls from inside a job run serially (no nesting).
  void run(int nthreads, const std::function<void(int)>& job) {
    if (nthreads <= 1 || in_job()) {
      for (int t = 0; t < std::max(nthreads, 1); ++t) job(t);
      return;
    }
    std::unique_lock<std::mutex> call_lock(call_mutex_);  // one parallel region at a time
    {
      std::unique_lock<std::mutex> lk(m_);
      while (static_cast<int>(workers_.size()) < nthreads - 1) {
        const int id = static_cast<int>(workers_.size()) + 1;
        workers_.emplace_back([this, id] { worker(id); });
      }
      job_ = &job;
      active_ = nthreads;
      pending_ = nthreads - 1;
      error_ = nullptr;
      ++generation_;
    }
    cv_.notify_all();
    run_one(job, 0);
    std::unique_lock<std::mutex> lk(m_);
    done_cv_.wait(lk, [this] { return pending_ == 0; });
    job_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

  ~thread_pool() {
    {
      std::lock_guard<std::mutex> lk(m_);
      stop_ = true;
      ++generation_;
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
  }

 private:
  static bool& in_job() {
    static thread_local bool v = false;
    return v;
  }
  void run_one(const std::function<void(int)>& job, int id) {
    in_job() = true;
    try {
      job(id);
    } catch (...) {
      std::lock_guard<std::mutex> lk(m_);
      if (!error_) error_ = std::current_exception();
    }
    in_job() = false;
  }
  void worker(int id) {
    std::uint64_t seen = 0;
    for (;;) {
      const std::function<void(int)>* job = nullptr;
      {
        std::unique_lock<std::mutex> lk(m_);
        cv_.wait(lk, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        if (id >= active_) continue;
        job = job_;
      }
      run_one(*job, id);
      std::lock_guard<std::mutex> lk(m_);
      if (--pending_ == 0) done_cv_.notify_one();
    }
  }

  std::mutex call_mutex_, m_;
  std::condition_variable cv_, done_cv_;
  std::vector<std::thread> workers_;
  const std::function<void(int)>* job_ = nullptr;
  std::uint64_t generation_ = 0;
  int active_ = 0, pending_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
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
