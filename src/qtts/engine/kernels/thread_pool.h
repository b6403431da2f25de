// qtts's own thread pool: the parallel loops of the native code (int8 GEMV, attention,
// SnakeBeta) run on it instead of OpenMP.
//
// Why not OpenMP (at::parallel_for): Apple's clang has no OpenMP, so on macOS every loop
// ran on one core; and where it has it, libgomp's teams run slower when the calling thread
// is not the process's first thread, which is where a server's or the resident engine's
// generation runs (measured on a 2-core Xeon: a 1.7B int8 frame 150 ms against 104 ms on the
// main thread; one 6144x2048 GEMV 384 us against 277 us).  This pool does not care which
// thread calls it.
//
// Semantics follow at::parallel_for: [begin, end) is cut into at most `threads` contiguous
// parts of at least `grain` items, the caller runs the first part itself, and the call
// returns when all parts are done.  Every item is computed by exactly one part, and callers
// make items independent (a row's bits never depend on its neighbours), so results do not
// depend on the number of threads.  One loop runs on the pool at a time: a loop started
// while it is busy (another Python thread, or a nested loop) runs in its caller's thread.
// Idle workers spin for a few microseconds, then sleep until the next loop; every worker
// checks in for every loop, so none can still be reading a loop's fields when the next one
// is set up.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define QTTS_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define QTTS_CPU_RELAX() __asm__ __volatile__("yield")
#else
#define QTTS_CPU_RELAX() ((void)0)
#endif

namespace qtts {

class ThreadPool {
 public:
  using Body = std::function<void(int64_t, int64_t)>;

  static ThreadPool& instance() {
    static ThreadPool pool;
    return pool;
  }

  // Participants in a loop, the caller included (at least 1).
  void set_threads(int threads) {
    threads = std::max(1, threads);
    std::lock_guard<std::mutex> busy(run_);
    if (threads == threads_) return;
    stop_workers();
    threads_ = threads;
    start_workers();
  }

  int threads() const { return threads_; }

  void parallel_for(int64_t begin, int64_t end, int64_t grain, const Body& body) {
    if (end <= begin) return;
    const int64_t items = end - begin, step = std::max<int64_t>(grain, 1);
    const int parts = static_cast<int>(std::min<int64_t>(threads_, (items + step - 1) / step));
    if (parts <= 1 || !run_.try_lock()) {
      body(begin, end);
      return;
    }
    std::lock_guard<std::mutex> held(run_, std::adopt_lock);
    body_ = &body;
    begin_ = begin;
    end_ = end;
    chunk_ = (items + parts - 1) / parts;
    parts_ = parts;
    error_ = nullptr;
    // Every worker checks in, those without a part too: none may still be reading this
    // loop's fields when the next loop writes them.
    pending_.store(static_cast<int>(workers_.size()), std::memory_order_seq_cst);
    epoch_.fetch_add(1, std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) > 0) {
      std::lock_guard<std::mutex> lock(wake_);
      wake_cv_.notify_all();
    }
    run_part(0);
    while (pending_.load(std::memory_order_acquire) != 0) QTTS_CPU_RELAX();
    body_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

  ~ThreadPool() { stop_workers(); }

 private:
  ThreadPool() {
    const unsigned cores = std::thread::hardware_concurrency();
    threads_ = static_cast<int>(cores ? cores : 1);
    start_workers();
  }

  void run_part(int part) {
    const int64_t first = begin_ + part * chunk_;
    const int64_t last = std::min(end_, first + chunk_);
    if (first >= last) return;
    try {
      (*body_)(first, last);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_lock_);
      if (!error_) error_ = std::current_exception();
    }
  }

  // `seen`: the epoch when the worker was made (no loop runs then), so that a loop published
  // before the thread got going is still seen as new.
  void worker(int index, uint64_t seen) {
    for (;;) {
      if (!wait_for_loop(seen)) return;
      seen = epoch_.load(std::memory_order_acquire);
      if (index < parts_) run_part(index);
      pending_.fetch_sub(1, std::memory_order_release);
    }
  }

  // Spin briefly (the next loop of a generation step usually follows within microseconds),
  // then sleep.  False when the pool is stopping.
  bool wait_for_loop(uint64_t seen) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(kSpinMicros);
    for (int i = 0;; ++i) {
      if (stop_.load(std::memory_order_acquire)) return false;
      if (epoch_.load(std::memory_order_acquire) != seen) return true;
      if ((i & 255) == 255 && std::chrono::steady_clock::now() > until) break;
      QTTS_CPU_RELAX();
    }
    std::unique_lock<std::mutex> lock(wake_);
    sleepers_.fetch_add(1, std::memory_order_seq_cst);
    wake_cv_.wait(lock, [&] {
      return stop_.load(std::memory_order_seq_cst) || epoch_.load(std::memory_order_seq_cst) != seen;
    });
    sleepers_.fetch_sub(1, std::memory_order_seq_cst);
    return !stop_.load(std::memory_order_acquire);
  }

  void start_workers() {
    stop_.store(false);
    const uint64_t now = epoch_.load(std::memory_order_seq_cst);
    for (int i = 1; i < threads_; ++i) workers_.emplace_back([this, i, now] { worker(i, now); });
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lock(wake_);
      stop_.store(true, std::memory_order_seq_cst);
      wake_cv_.notify_all();
    }
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  static constexpr int kSpinMicros = 50;
  int threads_ = 1;
  std::vector<std::thread> workers_;
  std::mutex run_, wake_, error_lock_;
  std::condition_variable wake_cv_;
  std::atomic<uint64_t> epoch_{0};
  std::atomic<int> pending_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
  const Body* body_ = nullptr;
  int64_t begin_ = 0, end_ = 0, chunk_ = 1;
  int parts_ = 0;
  std::exception_ptr error_;
};

template <class F>
inline void parallel_for(int64_t begin, int64_t end, int64_t grain, const F& f) {
  ThreadPool::instance().parallel_for(begin, end, grain, ThreadPool::Body(f));
}

}  // namespace qtts
