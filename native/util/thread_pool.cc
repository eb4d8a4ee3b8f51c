#include "thread_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <memory>
#include <thread>

namespace cmo {

namespace {

struct ForState {
  size_t count = 0;
  size_t grain = 1;
  const std::function<void(size_t)>* body = nullptr;
  std::atomic<size_t> next{0};
  std::atomic<size_t> done{0};
  std::mutex mutex;
  std::condition_variable finished;
  std::exception_ptr error;
  std::atomic<bool> failed{false};

  // Claims chunks until none are left. Safe to call after the caller returned: the body pointer
  // is only touched while a chunk was claimed, and claims stop once next >= count.
  void run() {
    for (;;) {
      size_t begin = next.fetch_add(grain);
      if (begin >= count) return;
      size_t end = std::min(count, begin + grain);
      if (!failed.load(std::memory_order_relaxed)) {
        try {
          for (size_t i = begin; i < end; ++i) (*body)(i);
        } catch (...) {
          std::lock_guard<std::mutex> lock(mutex);
          if (!error) error = std::current_exception();
          failed = true;
        }
      }
      if (done.fetch_add(end - begin) + (end - begin) == count) {
        std::lock_guard<std::mutex> lock(mutex);
        finished.notify_all();
      }
    }
  }
};

// Busy-waits until done() or `us` microseconds passed; true when done() held. The pause hint keeps
// a spinning core from starving its SMT sibling; every 64 polls (~1-2 µs) the clock is read and the
// CPU offered to any other runnable thread (sched_yield): on a loaded machine the spinner may share a
// core with the very thread it waits for, which would otherwise lose up to the whole spin to it.
template <class Done>
bool spin_until(Done&& done, unsigned us) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(us);
  for (unsigned i = 1;; ++i) {
    if (done()) return true;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
    if (i % 64 == 0) {
      if (std::chrono::steady_clock::now() >= until) return done();
      std::this_thread::yield();
    }
  }
}

std::mutex g_pool_mutex;
std::shared_ptr<ThreadPool> g_pool;

}  // namespace

ThreadPool::ThreadPool(unsigned threads) {
  unsigned extra = threads > 1 ? threads - 1 : 0;
  workers_.reserve(extra);
  for (unsigned i = 0; i < extra; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    stopping_flag_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::worker_loop() {
  const unsigned spin = spin_us();
  for (;;) {
    std::function<void()> task;
    // Spin a while for the next task before sleeping (see spin_us).
    if (spin > 0) spin_until([&] { return queued_.load(std::memory_order_acquire) > 0 || stopping_flag_.load(std::memory_order_relaxed); }, spin);
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      task = std::move(queue_.front());
      queue_.pop_front();
      queued_.fetch_sub(1, std::memory_order_relaxed);
    }
    task();
  }
}

void ThreadPool::submit(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(task));
    queued_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_one();
}

void ThreadPool::parallel_for(size_t count, const std::function<void(size_t)>& body, size_t grain,
                              unsigned max_threads) {
  if (count == 0) return;
  if (grain == 0) grain = 1;
  unsigned fan = size();
  if (max_threads != 0) fan = std::min(fan, max_threads);
  size_t chunks = (count + grain - 1) / grain;
  if (fan <= 1 || chunks <= 1) {
    for (size_t i = 0; i < count; ++i) body(i);
    return;
  }
  auto state = std::make_shared<ForState>();
  state->count = count;
  state->grain = grain;
  state->body = &body;
  size_t helpers = std::min<size_t>(fan - 1, chunks - 1);
  for (size_t i = 0; i < helpers; ++i) submit([state] { state->run(); });
  state->run();
  // While other threads finish their chunks, run queued tasks (helpers of nested loops, e.g. a big
  // tensor's groups while its neighbours are done) instead of sleeping: otherwise the caller idles
  // at the end of every window. Chunks never wait on an outer loop, so helping cannot deadlock.
  // First spin (the last chunks usually end within µs), then sleep in 200 µs steps.
  const unsigned spin = spin_us();
  auto spin_left = spin;
  while (state->done.load() < state->count) {
    std::function<void()> task;
    if (queued_.load(std::memory_order_acquire) > 0) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!queue_.empty()) {
        task = std::move(queue_.front());
        queue_.pop_front();
        queued_.fetch_sub(1, std::memory_order_relaxed);
      }
    }
    if (task) {
      task();
      continue;
    }
    if (spin_left > 0) {
      spin_until([&] { return state->done.load(std::memory_order_acquire) >= state->count || queued_.load(std::memory_order_acquire) > 0; },
                 spin_left);
      spin_left = 0;
      continue;
    }
    std::unique_lock<std::mutex> lock(state->mutex);
    state->finished.wait_for(lock, std::chrono::microseconds(200),
                             [&] { return state->done.load() >= state->count; });
  }
  if (state->error) std::rethrow_exception(state->error);
}

unsigned ThreadPool::spin_us() {
  static const unsigned us = [] {
    const char* env = std::getenv("COREML_OPTIMIZE_SPIN_US");
    if (!env || !*env) return 100u;
    return static_cast<unsigned>(std::min<unsigned long>(std::strtoul(env, nullptr, 10), 100000));
  }();
  return us;
}

unsigned ThreadPool::default_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}

std::shared_ptr<ThreadPool> ThreadPool::global() {
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  if (!g_pool) g_pool = std::make_shared<ThreadPool>(default_threads());
  return g_pool;
}

void ThreadPool::resize_global(unsigned threads) {
  if (threads == 0) threads = default_threads();
  std::shared_ptr<ThreadPool> old;
  {
    std::lock_guard<std::mutex> lock(g_pool_mutex);
    if (g_pool && g_pool->size() == threads) return;
    old = std::move(g_pool);
    g_pool = std::make_shared<ThreadPool>(threads);
  }
  // `old` is destroyed (workers joined) when the last job still using it lets go of it.
}

}  // namespace cmo
