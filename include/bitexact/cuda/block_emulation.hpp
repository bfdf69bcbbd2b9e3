// bitexact/cuda/block_emulation.hpp - CPU emulation of CUDA blocks with barriers, warp shuffles,
// shared memory and atomics (DESIGN.md 5(b)). Host only (POSIX); for tests and tools.
//
// emulate_block_launch(shape, body) runs body(ctx, thread_index, shared) for every thread of
// every block of `shape`, where ctx is an emulated_block_context (cuda/block_context.hpp has
// the interface) and `shared` is the block's Shared object (CUDA __shared__ memory). It runs
// the same body template the __global__ kernels run, not a re-implementation:
//
//   - Each CUDA thread of a block is a cooperative fiber with its own stack, so locals live
//     across barriers exactly as on a GPU.
//   - ctx.sync() suspends the fiber until every thread of the block has reached a barrier.
//     A barrier that some threads of the block never reach (they returned, or wait at a warp
//     shuffle) is reported as std::logic_error("barrier divergence"), not silently passed.
//   - ctx.shfl_down(v, d) publishes v in the warp's exchange slots, suspends until all 32 lanes
//     have published, reads lane + d (own value when lane + d >= 32), then waits again until
//     every lane has read. A shuffle in a warp with fewer than 32 live lanes is a logic_error
//     (undefined behaviour with a full mask on a GPU).
//   - Atomics are plain read-modify-writes: fibers never run at the same time.
//   - Shared memory is filled with 0xFF bytes (a NaN pattern) before every block, so a body
//     that reads shared memory it did not write in this block gets garbage, as on a GPU.
//   - Blocks run in the block_order of cuda/launch.hpp (shuffled by default); runnable
//     threads of a block are resumed last to first, so code that silently depends on
//     thread scheduling order is exercised in an order a GPU would not use.
// An exception thrown by a body ends the emulated launch and is rethrown to the caller of
// emulate_block_launch. Bodies must fit their stack (256 KiB per thread, 64 KiB under ASan).
// Fibers switch with a few lines of assembly on x86-64 (callee-saved registers, MXCSR and the
// x87 control word; no system call), and with POSIX ucontext elsewhere or when
// BITEXACT_EMU_UCONTEXT is defined. Under AddressSanitizer the switches are announced with its
// fiber annotations and reused stacks are unpoisoned.
#pragma once
#if defined(__CUDA_ARCH__)
#error "bitexact/cuda/block_emulation.hpp is host-only"
#endif
#include <ucontext.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "block_context.hpp"
#include "launch.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define BITEXACT_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BITEXACT_EMU_ASAN 1
#endif
#endif
#if defined(BITEXACT_EMU_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

// Fast fiber switch on x86-64 (define BITEXACT_EMU_UCONTEXT to use ucontext): swapcontext saves and restores the signal mask
// with a system call on every switch, which made the emulation of shuffle-heavy kernels spend
// most of its time in the kernel. This switch saves the callee-saved registers, MXCSR and the
// x87 control word on the old stack and loads them from the new one, nothing else.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(BITEXACT_EMU_UCONTEXT)
#define BITEXACT_EMU_FAST_SWITCH 1
#endif

namespace bitexact {
namespace cuda {
namespace detail {
#if defined(BITEXACT_EMU_FAST_SWITCH)
/// Saves the current context on the stack, stores the stack pointer to *from_sp, and resumes
/// the context saved at to_sp.
__attribute__((naked, noinline)) inline void emu_switch(void** /*from_sp*/, void* /*to_sp*/) {
  __asm__ volatile(
      "pushq %rbp\n\t"
      "pushq %rbx\n\t"
      "pushq %r12\n\t"
      "pushq %r13\n\t"
      "pushq %r14\n\t"
      "pushq %r15\n\t"
      "subq $16, %rsp\n\t"
      "stmxcsr 8(%rsp)\n\t"
      "fnstcw (%rsp)\n\t"
      "movq %rsp, (%rdi)\n\t"
      "movq %rsi, %rsp\n\t"
      "ldmxcsr 8(%rsp)\n\t"
      "fldcw (%rsp)\n\t"
      "addq $16, %rsp\n\t"
      "popq %r15\n\t"
      "popq %r14\n\t"
      "popq %r13\n\t"
      "popq %r12\n\t"
      "popq %rbx\n\t"
      "popq %rbp\n\t"
      "ret\n\t");
}
#endif
}  // namespace detail

class block_emulator;

/// The context a body sees under emulation (interface: cuda/block_context.hpp).
class emulated_block_context {
 public:
  emulated_block_context(block_emulator* e, unsigned tid) : emu_(e), tid_(tid) {}
  void sync() const;
  template <class V>
  V shfl_down(V v, unsigned delta) const;
  void atomic_add(std::int64_t* p, std::int64_t v) const {
    *p = static_cast<std::int64_t>(static_cast<std::uint64_t>(*p) + static_cast<std::uint64_t>(v));
  }
  void atomic_or(std::uint32_t* p, std::uint32_t v) const { *p |= v; }
  void atomic_or(std::uint64_t* p, std::uint64_t v) const { *p |= v; }

 private:
  block_emulator* emu_;
  unsigned tid_;
};

/// Runs the threads of one block at a time as fibers. Reused across blocks of a launch.
class block_emulator {
 public:
#if defined(BITEXACT_EMU_ASAN)
  static constexpr std::size_t default_stack_bytes = 64 * 1024;  // unpoisoned on every block
#else
  static constexpr std::size_t default_stack_bytes = 256 * 1024;  // untouched pages cost nothing
#endif
  explicit block_emulator(unsigned block_dim, std::size_t stack_bytes = default_stack_bytes)
      : block_dim_(block_dim), stack_bytes_(stack_bytes), fibers_(block_dim),
        stacks_(new unsigned char[static_cast<std::size_t>(block_dim) * stack_bytes]),  // untouched pages stay unmapped
        slots_((block_dim + warp_size - 1) / warp_size * warp_size) {}

  /// Runs run(tid) for tid in [0, block_dim) as fibers until all have returned.
  template <class Run>
  void run_block(Run& run) {
    run_ = &run;
    invoke_ = [](void* r, unsigned tid) { (*static_cast<Run*>(r))(tid); };
#if defined(BITEXACT_EMU_FAST_SWITCH)
    active() = this;
#endif
    for (unsigned t = 0; t < block_dim_; ++t) init_fiber(t);
    unsigned live = block_dim_;
    while (live > 0) {
      bool ran = false;
      for (unsigned t = block_dim_; t-- > 0;) {
        if (fibers_[t].st != state::ready) continue;
        ran = true;
        fibers_[t].st = state::running;
        switch_to(t);
        if (error_) {  // a body threw: abandon the block (its other fibers are reset by the next run)
          std::exception_ptr e = error_;
          error_ = nullptr;
          std::rethrow_exception(e);
        }
        if (fibers_[t].st == state::done) --live;
      }
      if (live == 0) break;
      const bool released = release();
      if (!ran && !released) throw std::logic_error("bitexact::cuda emulation: deadlock (no thread can proceed)");
    }
  }

  unsigned block_dim() const { return block_dim_; }

  // Called from fibers (through emulated_block_context).
  void barrier(unsigned tid) { wait(tid, state::at_barrier); }
  template <class V>
  V shfl_down(unsigned tid, V v, unsigned delta) {
    static_assert(sizeof(V) <= sizeof(std::uint64_t) && std::is_trivially_copyable<V>::value,
                  "shfl_down: value must be a trivially copyable type of at most 8 bytes");
    const unsigned lane = tid % warp_size;
    std::uint64_t raw = 0;
    std::memcpy(&raw, &v, sizeof v);
    slots_[tid] = raw;
    wait(tid, state::at_warp_sync);
    V r = v;
    if (lane + delta < warp_size) std::memcpy(&r, &slots_[tid + delta], sizeof r);
    wait(tid, state::at_warp_sync);  // nobody overwrites a slot before every lane has read
    return r;
  }

 private:
  enum class state { ready, running, at_barrier, at_warp_sync, done };
  struct fiber {
#if defined(BITEXACT_EMU_FAST_SWITCH)
    void* sp = nullptr;
#else
    ucontext_t ctx;
#endif
    state st = state::done;
  };
#if defined(BITEXACT_EMU_FAST_SWITCH)
  static block_emulator*& active() {
    static thread_local block_emulator* a = nullptr;
    return a;
  }
  [[noreturn]] static void fast_entry() {
    block_emulator* self = active();
    const unsigned tid = self->current_;
#if defined(BITEXACT_EMU_ASAN)
    __sanitizer_finish_switch_fiber(nullptr, &self->from_bottom_, &self->from_size_);
#endif
    self->invoke_guarded(tid);
    self->fibers_[tid].st = state::done;
#if defined(BITEXACT_EMU_ASAN)
    __sanitizer_start_switch_fiber(nullptr, self->from_bottom_, self->from_size_);  // this fiber ends
#endif
    detail::emu_switch(&self->fibers_[tid].sp, self->sched_sp_);
    __builtin_unreachable();
  }
#endif

#if defined(BITEXACT_EMU_FAST_SWITCH)
  void init_fiber(unsigned t) {
#if defined(BITEXACT_EMU_ASAN)
    // A finished or abandoned fiber never returned from its first frame, so ASan's redzones of
    // those frames are still poisoned; the stack is reused from scratch.
    __asan_unpoison_memory_region(stacks_.get() + static_cast<std::size_t>(t) * stack_bytes_, stack_bytes_);
#endif
    // A new fiber's stack looks like emu_switch saved it just before returning into fast_entry.
    unsigned char* top = stacks_.get() + static_cast<std::size_t>(t + 1) * stack_bytes_;
    auto* sp = reinterpret_cast<std::uint64_t*>(reinterpret_cast<std::uintptr_t>(top) & ~std::uintptr_t(15));
    *--sp = 0;  // fake return address of fast_entry: rsp = 8 mod 16 at its first instruction
    *--sp = reinterpret_cast<std::uint64_t>(&block_emulator::fast_entry);
    for (int r = 0; r < 6; ++r) *--sp = 0;  // rbp rbx r12 r13 r14 r15
    sp -= 2;
    const std::uint32_t mxcsr = __builtin_ia32_stmxcsr();
    std::uint16_t fpcw = 0;
    __asm__ volatile("fnstcw %0" : "=m"(fpcw));
    std::memcpy(reinterpret_cast<unsigned char*>(sp) + 8, &mxcsr, sizeof mxcsr);
    std::memcpy(sp, &fpcw, sizeof fpcw);
    fibers_[t].sp = sp;
    fibers_[t].st = state::ready;
  }
#else
  // getcontext returns twice like setjmp; keeping it in its own frame keeps the caller's locals
  // out of its reach (that return is never taken: the context is re-targeted by makecontext).
#if defined(__GNUC__)
  __attribute__((noinline))
#endif
  void init_fiber(unsigned t) {
#if defined(BITEXACT_EMU_ASAN)
    __asan_unpoison_memory_region(stacks_.get() + static_cast<std::size_t>(t) * stack_bytes_, stack_bytes_);
#endif
    fiber& f = fibers_[t];
    f.st = state::ready;
    if (getcontext(&f.ctx) != 0) throw std::runtime_error("block_emulator: getcontext failed");
    f.ctx.uc_stack.ss_sp = stacks_.get() + static_cast<std::size_t>(t) * stack_bytes_;
    f.ctx.uc_stack.ss_size = stack_bytes_;
    f.ctx.uc_link = &sched_;
    const std::uintptr_t self = reinterpret_cast<std::uintptr_t>(this);
    makecontext(&f.ctx, reinterpret_cast<void (*)()>(&block_emulator::entry), 3,
                static_cast<unsigned>(self & 0xffffffffu), static_cast<unsigned>(self >> 32), t);
  }
#endif

  static void entry(unsigned lo, unsigned hi, unsigned tid) {
    block_emulator* self =
        reinterpret_cast<block_emulator*>(static_cast<std::uintptr_t>(lo) | (static_cast<std::uintptr_t>(hi) << 32));
#if defined(BITEXACT_EMU_ASAN)
    __sanitizer_finish_switch_fiber(nullptr, &self->from_bottom_, &self->from_size_);
#endif
    self->invoke_guarded(tid);
    self->fibers_[tid].st = state::done;
#if defined(BITEXACT_EMU_ASAN)
    __sanitizer_start_switch_fiber(nullptr, self->from_bottom_, self->from_size_);
#endif
    // returning resumes uc_link (the scheduler)
  }

  /// Runs the body of thread tid; an exception cannot unwind past the fiber's first frame, so
  /// it is kept and rethrown by run_block on the scheduler's stack.
  void invoke_guarded(unsigned tid) {
    try {
      invoke_(run_, tid);
    } catch (...) {
      if (!error_) error_ = std::current_exception();
    }
  }

  void switch_to(unsigned t) {
#if defined(BITEXACT_EMU_ASAN)
    void* fake = nullptr;
    __sanitizer_start_switch_fiber(&fake, stacks_.get() + static_cast<std::size_t>(t) * stack_bytes_, stack_bytes_);
#endif
#if defined(BITEXACT_EMU_FAST_SWITCH)
    current_ = t;
    detail::emu_switch(&sched_sp_, fibers_[t].sp);
#else
    swapcontext(&sched_, &fibers_[t].ctx);
#endif
#if defined(BITEXACT_EMU_ASAN)
    __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
  }

  void wait(unsigned tid, state s) {
    fibers_[tid].st = s;
#if defined(BITEXACT_EMU_ASAN)
    void* fake = nullptr;
    __sanitizer_start_switch_fiber(&fake, from_bottom_, from_size_);
#endif
#if defined(BITEXACT_EMU_FAST_SWITCH)
    detail::emu_switch(&fibers_[tid].sp, sched_sp_);
#else
    swapcontext(&fibers_[tid].ctx, &sched_);
#endif
#if defined(BITEXACT_EMU_ASAN)
    __sanitizer_finish_switch_fiber(fake, &from_bottom_, &from_size_);
#endif
  }

  /// Releases complete barriers and warp syncs; true when some thread became ready.
  bool release() {
    bool any = false;
    // Warp syncs: all 32 lanes of the warp must be waiting at one.
    for (unsigned w0 = 0; w0 < block_dim_; w0 += warp_size) {
      const unsigned end = w0 + warp_size < block_dim_ ? w0 + warp_size : block_dim_;
      unsigned waiting = 0;
      for (unsigned t = w0; t < end; ++t) waiting += fibers_[t].st == state::at_warp_sync;
      if (waiting == 0) continue;
      if (end - w0 != warp_size)
        throw std::logic_error("bitexact::cuda emulation: warp shuffle in a partial warp (block size not a multiple of 32)");
      if (waiting == warp_size) {
        for (unsigned t = w0; t < end; ++t) fibers_[t].st = state::ready;
        any = true;
      } else {
        for (unsigned t = w0; t < end; ++t)
          if (fibers_[t].st == state::done || fibers_[t].st == state::at_barrier)
            throw std::logic_error("bitexact::cuda emulation: warp shuffle divergence (some lanes of the warp never reach it)");
      }
    }
    if (any) return true;
    // Block barrier: every thread must be waiting at it.
    unsigned at_barrier = 0, done = 0;
    for (unsigned t = 0; t < block_dim_; ++t) {
      at_barrier += fibers_[t].st == state::at_barrier;
      done += fibers_[t].st == state::done;
    }
    if (at_barrier == 0) return false;
    if (at_barrier + done == block_dim_ && done > 0)
      throw std::logic_error("bitexact::cuda emulation: barrier divergence (some threads returned before __syncthreads)");
    if (at_barrier == block_dim_) {
      for (unsigned t = 0; t < block_dim_; ++t) fibers_[t].st = state::ready;
      return true;
    }
    return false;
  }

  unsigned block_dim_;
  std::size_t stack_bytes_;
  std::vector<fiber> fibers_;
  std::unique_ptr<unsigned char[]> stacks_;
  std::vector<std::uint64_t> slots_;
#if defined(BITEXACT_EMU_FAST_SWITCH)
  void* sched_sp_ = nullptr;
  unsigned current_ = 0;
#else
  ucontext_t sched_{};
#endif
  void* run_ = nullptr;
  std::exception_ptr error_;
  void (*invoke_)(void*, unsigned) = nullptr;
#if defined(BITEXACT_EMU_ASAN)
  const void* from_bottom_ = nullptr;
  std::size_t from_size_ = 0;
#endif
};

inline void emulated_block_context::sync() const { emu_->barrier(tid_); }
template <class V>
V emulated_block_context::shfl_down(V v, unsigned delta) const {
  return emu_->shfl_down(tid_, v, delta);
}

/// Runs body(ctx, thread_index, Shared& shared) for every thread of every block of `shape`
/// (see the top of this file). Shared must be trivially copyable (CUDA __shared__ memory has
/// no constructors). A zero grid or block runs nothing.
template <class Shared, class Body>
void emulate_block_launch(launch_shape shape, Body&& body, block_order order = block_order::shuffled) {
  static_assert(std::is_trivially_copyable<Shared>::value, "shared memory type must be trivially copyable");
  if (shape.grid == 0 || shape.block == 0) return;
  if (shape.block > max_block_threads) throw std::invalid_argument("emulate_block_launch: block > 1024 threads");
  // One emulator (fiber stacks) per CPU thread and block size, reused by later launches.
  static thread_local std::map<unsigned, std::unique_ptr<block_emulator>> cache;
  std::unique_ptr<block_emulator>& cached = cache[shape.block];
  if (!cached) cached.reset(new block_emulator(shape.block));
  block_emulator& emu = *cached;
  std::unique_ptr<Shared> shared(new Shared);
  for (const unsigned b : emulated_block_sequence(shape, order)) {
    std::memset(static_cast<void*>(shared.get()), 0xFF, sizeof(Shared));
    auto run = [&](unsigned tid) {
      const emulated_block_context ctx(&emu, tid);
      body(ctx, thread_index{b, tid, shape.grid, shape.block}, *shared);
    };
    emu.run_block(run);
  }
}

}  // namespace cuda
}  // namespace bitexact
