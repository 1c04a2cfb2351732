#include "pipeline/executor.h"

namespace respawn {

LocalExecutor::LocalExecutor(ExecutorOptions options) : options_(std::move(options)) {}

LocalExecutor::~LocalExecutor() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
}

Status LocalExecutor::Start(TaskGraph graph, TaskFn run) {
  if (options_.workers < 1) return InvalidArgument("an executor needs at least one worker");
  if (!threads_.empty()) return FailedPrecondition("this executor was started already");
  const int n = graph.size();
  std::lock_guard<std::mutex> lock(mu_);
  graph_ = std::move(graph);
  run_ = std::move(run);
  dependents_.assign(n, {});
  waiting_on_.assign(n, 0);
  report_.outcomes.assign(n, TaskOutcome::kNotRun);
  report_.statuses.assign(n, Status::OK());
  for (int t = 0; t < n; ++t) {
    for (int d : graph_.deps[t]) {
      if (d < 0 || d >= n || d == t) return InvalidArgument("task dependency out of range");
      dependents_[d].push_back(t);
      ++waiting_on_[t];
    }
    if (waiting_on_[t] == 0) ready_.insert(t);
  }
  for (int w = 0; w < options_.workers; ++w) threads_.emplace_back([this, w] { Work(w); });
  return Status::OK();
}

bool LocalExecutor::Finished() const { return running_ == 0 && (ready_.empty() || stopping_); }

int LocalExecutor::Next(std::unique_lock<std::mutex>& lock) {
  cv_.wait(lock, [this] { return Finished() || (!stopping_ && !ready_.empty()); });
  if (stopping_ || ready_.empty()) return -1;
  int task = *ready_.begin();
  ready_.erase(ready_.begin());
  ++running_;
  return task;
}

void LocalExecutor::Finish(int task, Status status) {
  --running_;
  if (status.ok()) {
    report_.outcomes[task] = TaskOutcome::kSucceeded;
    for (int d : dependents_[task]) {
      if (--waiting_on_[d] == 0) ready_.insert(d);
    }
  } else {
    report_.outcomes[task] = TaskOutcome::kFailed;
    if (report_.first_failure.ok()) report_.first_failure = status;
    if (options_.stop_on_failure) stopping_ = true;
  }
  report_.statuses[task] = std::move(status);
  cv_.notify_all();
}

void LocalExecutor::Work(int worker) {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    int task = Next(lock);
    if (task < 0) break;
    lock.unlock();
    Status status = run_(task, worker);
    lock.lock();
    Finish(task, std::move(status));
  }
  cv_.notify_all();  // the others may be waiting for the last running task
}

ExecutionReport LocalExecutor::Wait() {
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return Finished(); });
  }
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  std::lock_guard<std::mutex> lock(mu_);
  return report_;
}

bool LocalExecutor::WaitFor(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [this] { return Finished(); });
}

void LocalExecutor::Cancel() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (report_.cancelled) return;
    report_.cancelled = true;
    stopping_ = true;
    cv_.notify_all();
  }
  if (options_.on_cancel) options_.on_cancel();
}

void LocalExecutor::Stop() {
  std::lock_guard<std::mutex> lock(mu_);
  stopping_ = true;
  cv_.notify_all();
}

}  // namespace respawn
