// A fixed-size thread pool. Used for parallel multipart parts, ranged downloads, batch deletes.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

namespace respawn {

class ThreadPool {
 public:
  explicit ThreadPool(size_t threads);
  /// Waits for queued tasks to finish, then joins the workers.
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  void Submit(std::function<void()> task);

  template <typename F>
  auto Async(F&& f) -> std::future<decltype(f())> {
    using R = decltype(f());
    auto task = std::make_shared<std::packaged_task<R()>>(std::forward<F>(f));
    std::future<R> fut = task->get_future();
    Submit([task] { (*task)(); });
    return fut;
  }

  size_t size() const { return workers_.size(); }

 private:
  void Work();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;  // GUARDED_BY(mu_)
  bool stopping_ = false;                    // GUARDED_BY(mu_)
  std::vector<std::thread> workers_;
};

/// Runs fn(i) for i in [0, n) on up to `parallelism` threads and waits for all of them.
void ParallelFor(size_t n, size_t parallelism, const std::function<void(size_t)>& fn);

}  // namespace respawn
