// A process-wide worker pool with a caller-participating parallel_for.
// Why our own pool: kernels run inside libuv worker threads, several jobs may run at once, and the
// size must be settable from JS (`setThreads`). The caller always works too, so nested calls and a
// pool of size 1 cannot deadlock.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace cmo {

class ThreadPool {
 public:
  explicit ThreadPool(unsigned threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Total threads that work on a parallel_for, caller included (>= 1).
  unsigned size() const noexcept { return static_cast<unsigned>(workers_.size()) + 1; }

  // Runs body(i) for i in [0, count), at most `max_threads` at a time (0 = all), in chunks of `grain`.
  // Returns when every index has run. The first exception thrown by a body is rethrown here.
  void parallel_for(size_t count, const std::function<void(size_t)>& body, size_t grain = 1,
                    unsigned max_threads = 0);

  // How long an idle thread (a worker between tasks, a caller waiting for the last chunks) spins
  // before it sleeps: COREML_OPTIMIZE_SPIN_US (default 100 µs; 0 = sleep at once). An executor runs
  // one parallel op after another a few µs apart, and waking a sleeping thread costs 10-100 µs (more
  // on a VM's halted vCPU), as much as a small op's whole work; a short spin keeps the pool awake
  // through a predict and costs at most this long per thread once it ends.
  static unsigned spin_us();

  // The shared pool. resize() replaces it; callers in flight keep the old one alive until done.
  static std::shared_ptr<ThreadPool> global();
  static void resize_global(unsigned threads);
  static unsigned default_threads();

 private:
  void worker_loop();
  void submit(std::function<void()> task);

  std::vector<std::thread> workers_;
  std::deque<std::function<void()>> queue_;
  std::atomic<size_t> queued_{0};  // queue_.size(), read without the lock by spinning threads
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::atomic<bool> stopping_flag_{false};  // stopping_, for spinning workers
};

// The pool a kernel was given, or the global one when it was given none (held alive while in use).
struct PoolOrGlobal {
  std::shared_ptr<ThreadPool> hold;
  ThreadPool* p;
  explicit PoolOrGlobal(ThreadPool* given) : p(given) {
    if (!p) {
      hold = ThreadPool::global();
      p = hold.get();
    }
  }
  void run(size_t count, const std::function<void(size_t)>& body) const { p->parallel_for(count, body, 1); }
};

// Convenience: global()->parallel_for (the shared_ptr keeps the pool alive across a resize), with `threads` (0 = pool size) limiting the fan-out.
inline void parallel_for(size_t count, const std::function<void(size_t)>& body, size_t grain = 1,
                         unsigned threads = 0) {
  ThreadPool::global()->parallel_for(count, body, grain, threads);
}

}  // namespace cmo
