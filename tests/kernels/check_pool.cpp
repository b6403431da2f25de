// Standalone check of qtts's thread pool (src/qtts/engine/kernels/thread_pool.h), no torch:
// every item of a loop runs exactly once whatever the range, grain and thread count; loops
// started while the pool is busy (nested, or from other threads) run in their caller; an
// exception in a part reaches the caller; the pool can be resized.  Prints "ok pool".
#include <atomic>
#include <cstdio>
#include <stdexcept>
#include <thread>
#include <vector>

#include "thread_pool.h"

static int failures = 0;
#define CHECK(cond, ...)                   \
  do {                                     \
    if (!(cond)) {                         \
      std::printf("FAIL: " __VA_ARGS__);   \
      std::printf("\n");                   \
      ++failures;                          \
    }                                      \
  } while (0)

static void each_item_once(int threads) {
  auto& pool = qtts::ThreadPool::instance();
  pool.set_threads(threads);
  CHECK(pool.threads() == threads, "threads %d", threads);
  for (int64_t begin : {0, 7}) {
    for (int64_t n : {0, 1, 2, 3, 5, 64, 1000, 4099}) {
      for (int64_t grain : {1, 8, 256}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        for (auto& h : hits) h.store(0);
        std::atomic<int> calls{0};
        qtts::parallel_for(begin, begin + n, grain, [&](int64_t first, int64_t last) {
          calls.fetch_add(1);
          for (int64_t i = first; i < last; ++i) hits[static_cast<size_t>(i - begin)].fetch_add(1);
        });
        for (int64_t i = 0; i < n; ++i)
          CHECK(hits[static_cast<size_t>(i)].load() == 1, "threads %d n %lld grain %lld item %lld ran %d times",
                threads, (long long)n, (long long)grain, (long long)i, hits[static_cast<size_t>(i)].load());
        const int64_t parts = threads == 1 ? 1 : threads * qtts::ThreadPool::kPartsPerThread;
        const int64_t most = n == 0 ? 0 : std::min<int64_t>(parts, (n + grain - 1) / grain);
        CHECK(calls.load() <= most, "threads %d n %lld grain %lld: %d parts, at most %lld", threads, (long long)n,
              (long long)grain, calls.load(), (long long)most);
      }
    }
  }
}

int main() {
  for (int threads : {1, 2, 3, 4}) each_item_once(threads);

  auto& pool = qtts::ThreadPool::instance();
  pool.set_threads(3);
  // Nested: the inner loop runs in its caller, every item still once.
  std::atomic<int> inner{0};
  qtts::parallel_for(0, 6, 1, [&](int64_t first, int64_t last) {
    for (int64_t i = first; i < last; ++i)
      qtts::parallel_for(0, 10, 1, [&](int64_t a, int64_t b) { inner.fetch_add(static_cast<int>(b - a)); });
  });
  CHECK(inner.load() == 60, "nested loops ran %d of 60 items", inner.load());

  // Several threads calling at once (as the GIL-free native calls of a server do).
  std::atomic<long long> total{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t)
    callers.emplace_back([&] {
      for (int round = 0; round < 300; ++round)
        qtts::parallel_for(0, 100, 1, [&](int64_t a, int64_t b) { total.fetch_add(b - a); });
    });
  for (auto& c : callers) c.join();
  CHECK(total.load() == 4LL * 300 * 100, "concurrent callers ran %lld of %lld items", total.load(), 4LL * 300 * 100);

  // An exception in any part reaches the caller, and the pool goes on working.
  bool thrown = false;
  try {
    qtts::parallel_for(0, 90, 1, [&](int64_t first, int64_t) {
      if (first > 0) throw std::runtime_error("part");
    });
  } catch (const std::runtime_error&) {
    thrown = true;
  }
  CHECK(thrown, "an exception in a worker's part was lost");
  std::atomic<int> after{0};
  qtts::parallel_for(0, 90, 1, [&](int64_t a, int64_t b) { after.fetch_add(static_cast<int>(b - a)); });
  CHECK(after.load() == 90, "after an exception: %d of 90 items", after.load());

  // Idle long enough for the workers to sleep, then wake them.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::atomic<int> woken{0};
  qtts::parallel_for(0, 3, 1, [&](int64_t a, int64_t b) { woken.fetch_add(static_cast<int>(b - a)); });
  CHECK(woken.load() == 3, "after sleeping: %d of 3 items", woken.load());

  if (failures) return 1;
  std::printf("ok pool\n");
  return 0;
}
