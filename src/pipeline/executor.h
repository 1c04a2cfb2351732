// Runs a graph of tasks: each task starts once every task it depends on succeeded. An executor
// only runs tasks and reports how each ended; what a task does (compute a stage, export it) and
// what happens to its result (checkpointing, commits) belong to its caller.
//
// LocalExecutor runs them on threads of this process: a ready queue fed by in-degrees (a task
// enters it when its last dependency succeeds) and one condition variable; workers sleep until a
// task is ready, the graph is finished or the run is cancelled, never on a timer. A cluster
// executor (Slurm job arrays) implements the same interface with tasks that run elsewhere and
// join the run's ledger epoch.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "util/status.h"

namespace respawn {

/// Tasks 0..size()-1 and what each waits for. REQUIRES: acyclic; dependencies in range.
struct TaskGraph {
  std::vector<std::vector<int>> deps;
  int size() const { return static_cast<int>(deps.size()); }
};

enum class TaskOutcome {
  kNotRun,  // never started: a dependency failed, or the run stopped or was cancelled first
  kSucceeded,
  kFailed,  // returned an error (which may be Cancelled when it was asked to stop)
};

struct ExecutionReport {
  std::vector<TaskOutcome> outcomes;  // by task
  std::vector<Status> statuses;       // by task: what each returned (OK for kNotRun)
  Status first_failure;               // of the task that failed first; OK if none did
  bool cancelled = false;
};

struct ExecutorOptions {
  /// Tasks run at once. REQUIRES: >= 1.
  int workers = 1;
  /// After a failure start nothing more (true: the run stops), or keep running the tasks that do
  /// not depend on the failed one (false). Dependents of a failed task never run.
  bool stop_on_failure = true;
  /// Called once by Cancel() (on the cancelling thread): ask the running tasks to stop.
  std::function<void()> on_cancel;
};

/// Runs one task: `task` is its index, `worker` in [0, workers) which worker runs it (one task at
/// a time per worker: per-worker resources such as a database connection can be indexed by it).
using TaskFn = std::function<Status(int task, int worker)>;

class Executor {
 public:
  virtual ~Executor() = default;
  /// Starts running `graph`'s tasks with `run` (called from the executor's threads) and returns
  /// at once. Call once per executor.
  virtual Status Start(TaskGraph graph, TaskFn run) = 0;
  /// Blocks until no task is running and none will start; then reports every task.
  virtual ExecutionReport Wait() = 0;
  /// Blocks until Wait() would not block or `timeout` passed; true when finished. For callers
  /// that sample progress while tasks run (it decides nothing).
  virtual bool WaitFor(std::chrono::milliseconds timeout) = 0;
  /// No task starts after this; running ones are asked to stop (ExecutorOptions::on_cancel).
  /// Thread-safe; idempotent.
  virtual void Cancel() = 0;
  /// No task starts after this; running ones finish. For a failure outside the tasks (a
  /// checkpoint that did not commit). Thread-safe; idempotent.
  virtual void Stop() = 0;
};

/// Runs tasks on `options.workers` threads of this process.
class LocalExecutor : public Executor {
 public:
  explicit LocalExecutor(ExecutorOptions options);
  /// Starts nothing more and joins the workers (running tasks finish first).
  ~LocalExecutor() override;

  Status Start(TaskGraph graph, TaskFn run) override;
  ExecutionReport Wait() override;
  bool WaitFor(std::chrono::milliseconds timeout) override;
  void Cancel() override;
  void Stop() override;

 private:
  void Work(int worker);
  // The next ready task, or -1 when the worker should exit. REQUIRES: mu_ held by `lock`.
  int Next(std::unique_lock<std::mutex>& lock);
  void Finish(int task, Status status);  // REQUIRES: mu_ held
  bool Finished() const;                 // REQUIRES: mu_ held

  const ExecutorOptions options_;
  TaskGraph graph_;
  TaskFn run_;
  std::vector<std::vector<int>> dependents_;
  std::vector<std::thread> threads_;

  mutable std::mutex mu_;
  std::condition_variable cv_;   // a task became ready, finished, or the run stopped
  std::vector<int> waiting_on_;  // unfinished dependencies per task; GUARDED_BY(mu_)
  std::set<int> ready_;          // lowest index first; GUARDED_BY(mu_)
  int running_ = 0;              // GUARDED_BY(mu_)
  bool stopping_ = false;        // no task starts any more; GUARDED_BY(mu_)
  ExecutionReport report_;       // GUARDED_BY(mu_)
};

}  // namespace respawn
