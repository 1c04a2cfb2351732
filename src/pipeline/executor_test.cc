#include "pipeline/executor.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>

namespace respawn {
namespace {

// Waits for a condition set by other threads. The timeout only turns a hang (the behaviour under
// test is broken) into a failure; no test depends on how fast anything is.
constexpr auto kHang = std::chrono::seconds(60);

ExecutorOptions Workers(int workers, bool stop_on_failure = true) {
  ExecutorOptions options;
  options.workers = workers;
  options.stop_on_failure = stop_on_failure;
  return options;
}

TEST(LocalExecutorTest, OneWorkerRunsReadyTasksLowestIndexFirst) {
  // 0 -> 2, 1 -> 3, 2 -> 3, 4 alone: with one worker the order is fixed.
  TaskGraph graph{{{}, {}, {0}, {1, 2}, {}}};
  std::mutex mu;
  std::vector<int> order;
  LocalExecutor executor(Workers(1));
  ASSERT_TRUE(executor
                  .Start(graph,
                         [&](int task, int worker) {
                           EXPECT_EQ(worker, 0);
                           std::lock_guard<std::mutex> lock(mu);
                           order.push_back(task);
                           return Status::OK();
                         })
                  .ok());
  ExecutionReport report = executor.Wait();
  // 0 and 1 and 4 are ready at the start; 2 becomes ready after 0 and goes before 4.
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_TRUE(report.first_failure.ok());
  for (TaskOutcome o : report.outcomes) EXPECT_EQ(o, TaskOutcome::kSucceeded);
}

TEST(LocalExecutorTest, EveryTaskRunsAfterItsDependencies) {
  // A wide graph: task t depends on t+1 and t+3 (against the lowest-index-first order, so a
  // task started before its dependencies is seen whatever the timing). Each runs once.
  TaskGraph graph;
  for (int t = 0; t < 40; ++t) {
    graph.deps.push_back({});
    if (t + 1 < 40) graph.deps[t].push_back(t + 1);
    if (t + 3 < 40) graph.deps[t].push_back(t + 3);
  }
  std::vector<std::atomic<int>> runs(40);
  LocalExecutor executor(Workers(4));
  ASSERT_TRUE(executor
                  .Start(graph,
                         [&](int task, int) {
                           for (int d : graph.deps[task]) EXPECT_EQ(runs[d].load(), 1) << task;
                           ++runs[task];
                           return Status::OK();
                         })
                  .ok());
  ExecutionReport report = executor.Wait();
  for (int t = 0; t < 40; ++t) {
    EXPECT_EQ(report.outcomes[t], TaskOutcome::kSucceeded) << t;
    EXPECT_EQ(runs[t].load(), 1) << t;
  }
}

TEST(LocalExecutorTest, AFailureStopsItsDependentsAndByDefaultTheRun) {
  // 0 fails; 1 depends on it; 2 is independent and starts only after 0 (one worker).
  TaskGraph graph{{{}, {0}, {}}};
  for (bool stop : {true, false}) {
    SCOPED_TRACE(stop ? "stop_on_failure" : "keep going");
    std::atomic<int> ran_independent{0};
    LocalExecutor executor(Workers(1, stop));
    ASSERT_TRUE(executor
                    .Start(graph,
                           [&](int task, int) {
                             if (task == 0) return Internal("task 0 broke");
                             if (task == 1) ADD_FAILURE() << "a dependent of a failed task ran";
                             ++ran_independent;
                             return Status::OK();
                           })
                    .ok());
    ExecutionReport report = executor.Wait();
    EXPECT_EQ(report.first_failure.message(), "task 0 broke");
    EXPECT_EQ(report.outcomes[0], TaskOutcome::kFailed);
    EXPECT_EQ(report.outcomes[1], TaskOutcome::kNotRun);
    EXPECT_EQ(report.outcomes[2], stop ? TaskOutcome::kNotRun : TaskOutcome::kSucceeded);
    EXPECT_EQ(ran_independent.load(), stop ? 0 : 1);
    EXPECT_FALSE(report.cancelled);
  }
}

TEST(LocalExecutorTest, CancelStopsRunningTasksAndStartsNoMore) {
  // Two tasks block until cancelled; the third waits for them and must never run.
  TaskGraph graph{{{}, {}, {0, 1}}};
  std::mutex mu;
  std::condition_variable cv;
  bool cancelled = false;
  int started = 0;
  ExecutorOptions options = Workers(2);
  options.on_cancel = [&] {
    std::lock_guard<std::mutex> lock(mu);
    cancelled = true;
    cv.notify_all();
  };
  LocalExecutor executor(options);
  ASSERT_TRUE(executor
                  .Start(graph,
                         [&](int task, int) {
                           if (task == 2) ADD_FAILURE() << "started after Cancel";
                           std::unique_lock<std::mutex> lock(mu);
                           ++started;
                           cv.notify_all();
                           EXPECT_TRUE(cv.wait_for(lock, kHang, [&] { return cancelled; }));
                           return Cancelled("stopped");
                         })
                  .ok());
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, kHang, [&] { return started == 2; }));
  }
  EXPECT_FALSE(executor.WaitFor(std::chrono::milliseconds(1)));
  executor.Cancel();
  ExecutionReport report = executor.Wait();
  EXPECT_TRUE(report.cancelled);
  EXPECT_EQ(report.outcomes[0], TaskOutcome::kFailed);
  EXPECT_TRUE(report.statuses[0].IsCancelled());
  EXPECT_EQ(report.outcomes[2], TaskOutcome::kNotRun);
  EXPECT_TRUE(executor.WaitFor(std::chrono::milliseconds(1)));
}

TEST(LocalExecutorTest, RunsAsManyTasksAtOnceAsItHasWorkersAndNoMore) {
  for (int workers : {1, 3, 6}) {
    SCOPED_TRACE(workers);
    // Twice as many independent tasks as workers; each waits until `workers` tasks run at once
    // (proving that many run together), then the next ones may go.
    TaskGraph graph;
    graph.deps.resize(2 * workers);
    std::mutex mu;
    std::condition_variable cv;
    int running = 0, peak = 0, arrived = 0;
    LocalExecutor executor(Workers(workers));
    ASSERT_TRUE(executor
                    .Start(graph,
                           [&](int, int worker) {
                             EXPECT_GE(worker, 0);
                             EXPECT_LT(worker, workers);
                             std::unique_lock<std::mutex> lock(mu);
                             peak = std::max(peak, ++running);
                             const int round = arrived++ / workers;
                             cv.notify_all();
                             EXPECT_TRUE(cv.wait_for(
                                 lock, kHang, [&] { return arrived >= (round + 1) * workers; }))
                                 << "only " << arrived << " tasks ran at once";
                             --running;
                             return Status::OK();
                           })
                    .ok());
    ExecutionReport report = executor.Wait();
    EXPECT_EQ(peak, workers);
    for (TaskOutcome o : report.outcomes) EXPECT_EQ(o, TaskOutcome::kSucceeded);
  }
}

TEST(LocalExecutorTest, AnEmptyGraphFinishesAtOnce) {
  LocalExecutor executor(Workers(2));
  ASSERT_TRUE(executor.Start({}, [](int, int) { return Status::OK(); }).ok());
  EXPECT_TRUE(executor.Wait().outcomes.empty());
}

TEST(LocalExecutorTest, BadGraphsAndOptionsAreRefused) {
  LocalExecutor none(Workers(0));
  EXPECT_EQ(none.Start({{{}}}, [](int, int) { return Status::OK(); }).code(),
            StatusCode::kInvalidArgument);
  LocalExecutor executor(Workers(1));
  EXPECT_EQ(executor.Start({{{5}}}, [](int, int) { return Status::OK(); }).code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace respawn
