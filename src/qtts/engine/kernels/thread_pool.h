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
// Semantics follow at::parallel_for: [begin, end) is cut into contiguous parts of at least
// `grain` items, and the call returns when all parts are done.  Every item is computed by
// exactly one part, and callers make items independent (a row's bits never depend on its
// neighbours), so results do not depend on the number of threads or on who ran a part.  One
// loop runs on the pool at a time: a loop started while it is busy (another Python thread,
// or a nested loop) runs in its caller's thread.
//
// The caller and the workers claim parts from a counter (up to kPartsPerThread per thread),
// and the caller waits only for parts being run, not for every worker to check in: on a
// server, a decoding thread and the generation loop share two cores, and a worker the
// kernel has not scheduled yet used to hold up every loop (measured with eight 0.6B streams
// on the 2-core Xeon: 16% of the process's samples were the caller spinning in wait).  A
// worker that wakes late finds its loop's parts all claimed; each loop's fields live in
// their own object, kept alive by whoever still reads them.  Idle workers spin for a few
// microseconds, then sleep until the next loop.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
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
  static constexpr int kPartsPerThread = 4;  // parts a loop is cut into, per thread (at most)

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
    const int parts = static_cast<int>(std::min<int64_t>(threads_ * kPartsPerThread, (items + step - 1) / step));
    if (threads_ <= 1 || parts <= 1 || !run_.try_lock()) {
      body(begin, end);
      return;
    }
    std::lock_guard<std::mutex> held(run_, std::adopt_lock);
    auto loop = std::make_shared<Loop>();
    loop->body = &body;
    loop->begin = begin;
    loop->end = end;
    loop->chunk = (items + parts - 1) / parts;
    loop->parts = static_cast<int>((items + loop->chunk - 1) / loop->chunk);
    {
      std::lock_guard<std::mutex> lock(loop_lock_);
      current_ = loop;
    }
    epoch_.fetch_add(1, std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) > 0) {
      std::lock_guard<std::mutex> lock(wake_);
      wake_cv_.notify_all();
    }
    work(*loop);
    // Only parts someone is running are waited for; a descheduled worker's part is run here.
    for (int i = 0; loop->done.load(std::memory_order_acquire) != loop->parts; ++i) {
      if (i < kSpinBeforeYield) QTTS_CPU_RELAX();
      else std::this_thread::yield();
    }
    {
      std::lock_guard<std::mutex> lock(loop_lock_);
      current_.reset();
    }
    if (loop->error) std::rethrow_exception(loop->error);
  }

  ~ThreadPool() { stop_workers(); }

 private:
  struct Loop {
    const Body* body = nullptr;
    int64_t begin = 0, end = 0, chunk = 1;
    int parts = 0;
    std::atomic<int> next{0}, done{0};
    std::mutex error_lock;
    std::exception_ptr error;
  };

  ThreadPool() {
    const unsigned cores = std::thread::hardware_concurrency();
    threads_ = static_cast<int>(cores ? cores : 1);
    start_workers();
  }

  // Claim and run parts until none is left.  The body is only called for a claimed part, and
  // the caller returns only after every part is done: no one calls it after that.
  static void work(Loop& loop) {
    for (;;) {
      const int part = loop.next.fetch_add(1, std::memory_order_relaxed);
      if (part >= loop.parts) return;
      const int64_t first = loop.begin + part * loop.chunk;
      const int64_t last = std::min(loop.end, first + loop.chunk);
      try {
        (*loop.body)(first, last);
      } catch (...) {
        std::lock_guard<std::mutex> lock(loop.error_lock);
        if (!loop.error) loop.error = std::current_exception();
      }
      loop.done.fetch_add(1, std::memory_order_release);
    }
  }

  // `seen`: the epoch when the worker was made (no loop runs then), so that a loop published
  // before the thread got going is still seen as new.
  void worker(uint64_t seen) {
    for (;;) {
      if (!wait_for_loop(seen)) return;
      seen = epoch_.load(std::memory_order_acquire);
      std::shared_ptr<Loop> loop;
      {
        std::lock_guard<std::mutex> lock(loop_lock_);
        loop = current_;
      }
      if (loop) work(*loop);
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
    for (int i = 1; i < threads_; ++i) workers_.emplace_back([this, now] { worker(now); });
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
  static constexpr int kSpinBeforeYield = 4096;
  int threads_ = 1;
  std::vector<std::thread> workers_;
  std::mutex run_, wake_, loop_lock_;
  std::condition_variable wake_cv_;
  std::atomic<uint64_t> epoch_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
  std::shared_ptr<Loop> current_;
};

template <class F>
inline void parallel_for(int64_t begin, int64_t end, int64_t grain, const F& f) {
  ThreadPool::instance().parallel_for(begin, end, grain, ThreadPool::Body(f));
}

}  // namespace qtts
