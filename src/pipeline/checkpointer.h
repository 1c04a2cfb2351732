// The checkpointer: takes a checkpoint a task exported to a local file, uploads it as a data
// object through the ledger's data API (a plain put of a fresh attempt key; crash points
// ledger:before-data / ledger:after-data), then commits the entry that names it, as separate
// steps on one long-lived pool of threads. The computing side never waits for either: the next
// tasks run while checkpoints upload (asynchronous checkpoints), and commits that arrive
// together are published in one record by the ledger's group commit.
//
// Order: a job commits only after every job it names in `after` committed (a stage's checkpoint
// before its consumers'); if one of them failed, the job is not committed either. Each job's
// `done` callback is called exactly once, from a pool thread or from Drain.
//
// Drain(deadline) (SIGTERM, the end of a run): takes no new jobs, waits for the jobs in flight
// until the deadline, commits what uploaded, and abandons uploads still running then (their
// objects stay orphans for GC: nothing names them). Commits already in flight always finish.
//
// Crash points: runner:after-export (uploaded, not committed), runner:after-commit.
// Thread-safety: Submit and Drain may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ledger/ledger.h"
#include "util/status.h"

namespace respawn {

struct CheckpointJob {
  std::string entry;          // the ledger entry to commit ("stage/x")
  std::string what;           // names it in messages ("stage \"x\"")
  ledger::Entry value;        // its fingerprint and meta; `objects` is filled with `object`
  ledger::DataObject object;  // the data object to write: its fresh key, size and XXH3
  std::string path;           // the local file holding its bytes; must stay until `done`
  std::vector<int> after;     // jobs (Submit's ids) whose commits come first
  /// Called once with the outcome: OK and the record's sequence, or the error of the upload or
  /// commit (context: the entry), or Cancelled when Drain abandoned it or an `after` job failed.
  std::function<void(const Status&, uint64_t sequence)> done;
};

class Checkpointer {
 public:
  /// `threads` >= 1 upload and commit at once. `ledger` is shared with the pool's threads,
  /// which may outlive the Checkpointer when Drain abandoned an upload.
  Checkpointer(std::shared_ptr<ledger::Ledger> ledger, int threads);
  /// Drain() without a deadline if it was not called; then stops the threads (threads still
  /// uploading an abandoned job are left to finish on their own).
  ~Checkpointer();
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  /// Queues `job`; returns its id. After Drain the job is refused: `done` is called at once
  /// (Cancelled) and -1 returned.
  int Submit(CheckpointJob job);

  /// Takes no new jobs; returns once every job is done, or at `deadline` after abandoning the
  /// uploads still running (their `done` gets Cancelled). OK, or Cancelled when something was
  /// abandoned. No deadline: waits for everything.
  Status Drain(std::optional<std::chrono::steady_clock::time_point> deadline = std::nullopt);

  /// Jobs committed so far.
  uint64_t committed() const;

 private:
  struct Shared;
  std::shared_ptr<Shared> shared_;
  std::vector<std::thread> threads_;
};

}  // namespace respawn
