#include "pipeline/checkpointer.h"

#include <algorithm>

#include "util/crash_point.h"

namespace respawn {
namespace {

enum class JobState { kQueued, kUploading, kUploaded, kCommitting, kCommitted, kFailed };

}  // namespace

struct Checkpointer::Shared {
  struct Job {
    CheckpointJob spec;
    JobState state = JobState::kQueued;
    bool abandoned = false;  // Drain gave up on it: its outcome is reported, nothing more done
    bool reported = false;   // `done` was (or is about to be) called
  };
  using Callbacks = std::vector<std::function<void()>>;

  explicit Shared(std::shared_ptr<ledger::Ledger> l) : ledger(std::move(l)) {}

  void Work();
  // REQUIRES: mu held. Runs one queued step with `lock` released; false when the thread should
  // exit.
  bool Step(std::unique_lock<std::mutex>& lock, Callbacks* callbacks);
  Status Upload(const CheckpointJob& job);
  Result<uint64_t> Commit(const CheckpointJob& job);
  // REQUIRES: mu held. Ends job `id` and queues its callback.
  void Finish(int id, JobState state, const Status& status, uint64_t sequence, Callbacks* out);
  // REQUIRES: mu held. Queues the commits of uploaded jobs whose `after` jobs committed, and
  // fails those with an `after` job that did not.
  void Advance(Callbacks* out);
  bool AllDone() const;  // REQUIRES: mu held

  const std::shared_ptr<ledger::Ledger> ledger;
  std::mutex mu;
  std::condition_variable work_cv;  // a step was queued, or the threads must stop
  std::condition_variable done_cv;  // a job ended
  std::vector<Job> jobs;            // by id; GUARDED_BY(mu)
  std::deque<int> uploads;          // GUARDED_BY(mu)
  std::deque<int> commits;          // GUARDED_BY(mu); taken before uploads
  bool draining = false;            // GUARDED_BY(mu)
  bool stopping = false;            // GUARDED_BY(mu)
  bool abandoned_any = false;       // GUARDED_BY(mu)
  int callbacks_pending = 0;        // queued by Finish, not yet returned; GUARDED_BY(mu)
  uint64_t committed = 0;           // GUARDED_BY(mu)
};

Status Checkpointer::Shared::Upload(const CheckpointJob& job) {
  Result<ledger::DataObject> put = ledger->PutDataFile(job.object, job.path);
  if (!put.ok()) return put.status().WithContext(job.what);
  CrashPoint<"runner:after-export">();
  return Status::OK();
}

Result<uint64_t> Checkpointer::Shared::Commit(const CheckpointJob& job) {
  ledger::Changes changes;
  ledger::Entry entry = job.value;
  entry.objects = {job.object};
  changes.upserts[job.entry] = std::move(entry);
  Result<uint64_t> committed = ledger->Commit(changes);
  if (!committed.ok()) return committed.status().WithContext("committing " + job.what);
  CrashPoint<"runner:after-commit">();
  return committed;
}

void Checkpointer::Shared::Finish(int id, JobState state, const Status& status, uint64_t sequence,
                                  Callbacks* out) {
  Job& job = jobs[id];
  job.state = state;
  if (state == JobState::kCommitted) ++committed;
  if (!job.reported) {
    job.reported = true;
    ++callbacks_pending;
    out->push_back([done = job.spec.done, status, sequence] {
      if (done) done(status, sequence);
    });
  }
  done_cv.notify_all();
}

void Checkpointer::Shared::Advance(Callbacks* out) {
  for (size_t id = 0; id < jobs.size(); ++id) {
    Job& job = jobs[id];
    if (job.state != JobState::kUploaded || job.abandoned) continue;
    bool ready = true;
    const Job* failed = nullptr;
    for (int a : job.spec.after) {
      if (jobs[a].state == JobState::kFailed) failed = &jobs[a];
      ready = ready && jobs[a].state == JobState::kCommitted;
    }
    if (failed != nullptr) {
      Finish(static_cast<int>(id), JobState::kFailed,
             Cancelled(job.spec.what + " not committed: " + failed->spec.what +
                       ", which it read, was not committed"),
             0, out);
    } else if (ready) {
      job.state = JobState::kCommitting;
      commits.push_back(static_cast<int>(id));
      work_cv.notify_one();
    }
  }
}

bool Checkpointer::Shared::Step(std::unique_lock<std::mutex>& lock, Callbacks* callbacks) {
  work_cv.wait(lock, [this] { return stopping || !commits.empty() || !uploads.empty(); });
  const bool commit = !commits.empty();
  if (!commit && uploads.empty()) return false;  // stopping, nothing left
  std::deque<int>& queue = commit ? commits : uploads;
  const int id = queue.front();
  queue.pop_front();
  if (jobs[id].abandoned) return true;
  if (!commit) jobs[id].state = JobState::kUploading;
  const CheckpointJob spec = jobs[id].spec;
  lock.unlock();
  Result<uint64_t> outcome = commit ? Commit(spec) : Result<uint64_t>(0);
  Status uploaded = commit ? Status::OK() : Upload(spec);
  lock.lock();
  if (jobs[id].abandoned) return true;  // Drain reported it already
  if (commit) {
    Finish(id, outcome.ok() ? JobState::kCommitted : JobState::kFailed, outcome.status(),
           outcome.ok() ? *outcome : 0, callbacks);
  } else if (!uploaded.ok()) {
    Finish(id, JobState::kFailed, uploaded, 0, callbacks);
  } else {
    jobs[id].state = JobState::kUploaded;
  }
  Advance(callbacks);
  return true;
}

void Checkpointer::Shared::Work() {
  std::unique_lock<std::mutex> lock(mu);
  for (;;) {
    Callbacks callbacks;
    const bool more = Step(lock, &callbacks);
    if (!callbacks.empty()) {
      lock.unlock();
      for (auto& callback : callbacks) callback();
      lock.lock();
      callbacks_pending -= static_cast<int>(callbacks.size());
      done_cv.notify_all();
    }
    if (!more) return;
  }
}

bool Checkpointer::Shared::AllDone() const {
  if (callbacks_pending > 0) return false;
  for (const Job& job : jobs) {
    if (job.state != JobState::kCommitted && job.state != JobState::kFailed && !job.abandoned) {
      return false;
    }
  }
  return true;
}

Checkpointer::Checkpointer(std::shared_ptr<ledger::Ledger> ledger, int threads)
    : shared_(std::make_shared<Shared>(std::move(ledger))) {
  for (int i = 0; i < std::max(1, threads); ++i) {
    threads_.emplace_back([shared = shared_] { shared->Work(); });
  }
}

Checkpointer::~Checkpointer() {
  Drain().IgnoreError();
  bool detach;
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->stopping = true;
    shared_->work_cv.notify_all();
    detach = shared_->abandoned_any;
  }
  // A thread may still be in an abandoned upload: it ends on its own (it shares `shared_`).
  for (std::thread& t : threads_) detach ? t.detach() : t.join();
}

int Checkpointer::Submit(CheckpointJob job) {
  std::unique_lock<std::mutex> lock(shared_->mu);
  if (shared_->draining) {
    lock.unlock();
    if (job.done) job.done(Cancelled(job.what + " not checkpointed: the run is stopping"), 0);
    return -1;
  }
  const int id = static_cast<int>(shared_->jobs.size());
  for (int a : job.after) {
    if (a < 0 || a >= id) job.after.clear();  // REQUIRES: earlier jobs; be safe
  }
  shared_->jobs.push_back({std::move(job)});
  shared_->uploads.push_back(id);
  shared_->work_cv.notify_one();
  return id;
}

Status Checkpointer::Drain(std::optional<std::chrono::steady_clock::time_point> deadline) {
  Shared& s = *shared_;
  std::unique_lock<std::mutex> lock(s.mu);
  s.draining = true;
  auto done = [&s] { return s.AllDone(); };
  if (!deadline) {
    s.done_cv.wait(lock, done);
    return Status::OK();
  }
  if (s.done_cv.wait_until(lock, *deadline, done)) return Status::OK();
  // Past the deadline: abandon what has not reached its commit; commits in flight finish.
  Shared::Callbacks callbacks;
  int abandoned = 0;
  for (size_t id = 0; id < s.jobs.size(); ++id) {
    Shared::Job& job = s.jobs[id];
    if (job.state == JobState::kCommitting || job.state == JobState::kCommitted ||
        job.state == JobState::kFailed || job.abandoned) {
      continue;
    }
    job.abandoned = true;
    s.abandoned_any = true;
    ++abandoned;
    s.Finish(static_cast<int>(id), job.state,
             Cancelled(job.spec.what + " not committed: its upload did not finish before the "
                                       "drain deadline"),
             0, &callbacks);
  }
  lock.unlock();
  for (auto& callback : callbacks) callback();
  lock.lock();
  s.callbacks_pending -= static_cast<int>(callbacks.size());
  s.done_cv.wait(lock, done);  // the commits in flight
  return abandoned == 0 ? Status::OK()
                        : Cancelled(std::to_string(abandoned) +
                                    " checkpoint(s) abandoned at the drain deadline");
}

uint64_t Checkpointer::committed() const {
  std::lock_guard<std::mutex> lock(shared_->mu);
  return shared_->committed;
}

}  // namespace respawn
