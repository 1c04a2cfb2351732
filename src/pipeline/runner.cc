// The orchestrator of a run: ties the plan (plan.h), the tasks (task.h), the executor
// (executor.h), the checkpointer (checkpointer.h) and the outputs (outputs.h) together, and
// commits what only the run as a whole knows: the owner, the run report, the end-of-run GC.
#include "pipeline/runner.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "ledger/lease.h"
#include "ledger/ledger.h"
#include "pipeline/check.h"
#include "pipeline/checkpointer.h"
#include "pipeline/executor.h"
#include "pipeline/outputs.h"
#include "pipeline/owner.h"
#include "pipeline/plan.h"
#include "pipeline/restore.h"
#include "pipeline/schema.h"
#include "pipeline/source_reads.h"
#include "pipeline/stage_log.h"
#include "pipeline/task.h"
#include "sql/engine.h"
#include "util/crash_point.h"
#include "util/log.h"

namespace respawn {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// How often running queries are sampled for progress displays (and the interrupt flag, which a
// signal handler can only set, is looked at). Scheduling never waits on it.
constexpr auto kProgressInterval = std::chrono::milliseconds(250);

int WorkerCount(const RunOptions& options) {
  if (options.workers > 0) return options.workers;
  if (options.threads > 0) return options.threads;
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

class Orchestrator {
 public:
  Orchestrator(const PipelineSpec& spec, const RunOptions& options)
      : spec_(spec), options_(options) {}

  Result<RunReport> Run();

 private:
  // Setup.
  Status Prepare();
  void InitReport();
  Status OpenLedger();
  Status CheckSelectionFirst(ledger::Ledger& reader) const;
  Status RecordOwner();
  // Planning.
  Status PlanNodes();
  Status LoadReused(int v);
  void ApplyPlan();
  // Computing.
  Status ComputeNodes();
  void MarkNotRun(const std::vector<int>& nodes);
  void Monitor(Executor& executor);
  Status RunComputeTask(int v, int worker);
  void SubmitCheckpoint(int v, const TaskResult& result, Clock::time_point start);
  std::vector<int> CommitsBefore(int v) const;
  void NodeDone(int v, const Status& status, Clock::time_point start);
  void CheckpointFailed();
  void WriteStageLogs();
  // The end.
  Status WriteOutputs();
  int FirstUnfinished(int v) const;
  void Finish();
  void CommitRunReport();
  void CollectGarbageAfterRun();
  RunReportMeta ReportMeta() const;

  void Emit(RunEvent::Type type, const NodeReport* node, const OutputReport* output = nullptr,
            double percent = -1, uint64_t rows_read = 0);
  bool Partial() const { return options_.selection && !options_.selection->all(); }
  bool Interrupted() const {
    return options_.interrupted != nullptr && options_.interrupted->load();
  }
  OutputEnv Outputs() {
    return {&spec_,        &dag_, ledger_.get(), &reads_, tables_.get(), db_->temp_directory(),
            options_.fresh};
  }

  const PipelineSpec& spec_;
  const RunOptions& options_;
  Clock::time_point start_ = Clock::now();
  std::unique_ptr<Database> db_;
  std::unique_ptr<Connection> setup_;
  Dag dag_;
  std::vector<FingerprintComponents> fps_;
  SourceReads reads_;  // the file listings fps_ describe; reads go through it
  std::unique_ptr<LocalTables> tables_;
  std::shared_ptr<ledger::Ledger> ledger_;
  std::vector<Task> plan_;  // by node
  Status refused_;          // the plan needs an unselected node computed (CheckSelectedPlan)
  RunReport report_;

  // While nodes compute (ComputeNodes).
  std::vector<std::unique_ptr<Connection>> connections_;  // by worker
  Executor* executor_ = nullptr;
  Checkpointer* checkpointer_ = nullptr;
  mutable std::mutex
      mu_;  // guards report_.nodes, the members below and failure_ while nodes compute
  std::vector<int> running_;           // node each worker runs, -1 idle; GUARDED_BY(mu_)
  std::map<int, int> checkpoint_job_;  // node -> checkpointer job; GUARDED_BY(mu_)
  Status failure_;                     // first failure; GUARDED_BY(mu_)
  bool checkpoint_failed_ = false;     // a checkpoint did not upload or commit; GUARDED_BY(mu_)
  std::map<int, std::string> errors_;  // node -> why it failed; GUARDED_BY(mu_)
  std::mutex event_mu_;                // serializes on_event
};

void Orchestrator::Emit(RunEvent::Type type, const NodeReport* node, const OutputReport* output,
                        double percent, uint64_t rows_read) {
  if (!options_.on_event) return;
  std::lock_guard<std::mutex> lock(event_mu_);
  RunEvent event;
  event.type = type;
  event.node = node;
  event.output = output;
  event.percent = percent;
  event.rows_read = rows_read;
  options_.on_event(event);
}

Status Orchestrator::Prepare() {
  DatabaseOptions db_options;
  db_options.threads = options_.threads;
  db_options.memory_limit_bytes = options_.memory_limit_bytes;
  ASSIGN_OR_RETURN(db_, Database::Open(db_options));
  ASSIGN_OR_RETURN(setup_, db_->Connect());
  std::error_code ec;  // without it queries are not profiled; the run goes on
  std::filesystem::create_directories(db_->temp_directory() + "/profiles", ec);
  if (options_.checked_dag != nullptr) {
    dag_ = *options_.checked_dag;
  } else {
    ASSIGN_OR_RETURN(dag_, CheckPipeline(spec_));
  }
  ASSIGN_OR_RETURN(fps_, FingerprintNodes(spec_, dag_, reads_));
  tables_ = std::make_unique<LocalTables>(spec_, dag_, *options_.store, reads_,
                                          db_->temp_directory() + "/import-cache",
                                          db_->temp_directory() + "/sources");
  InitReport();
  return OpenLedger();
}

void Orchestrator::InitReport() {
  report_.store_url = options_.store->Url();
  report_.nodes.resize(dag_.size());
  report_.outputs.resize(spec_.outputs.size());
  for (int v = 0; v < dag_.size(); ++v) {
    const DagNode& node = dag_.node(v);
    NodeReport& r = report_.nodes[v];
    r.name = node.name;
    r.kind = node.kind;
    r.fingerprint = fps_[v].total.Hex();
    if (node.kind == NodeKind::kStage) r.checkpoint = spec_.stages[node.spec_index].checkpoint;
    if (node.kind == NodeKind::kSource &&
        spec_.sources[node.spec_index].kind == SourceKind::kFiles) {
      r.checkpoint = false;
      r.action = NodeAction::kSource;
    }
  }
}

Status Orchestrator::OpenLedger() {
  if (!options_.adopt || Partial()) {
    // Before claiming the ledger: a claim would fence a run of the file that owns it (or any
    // other run, for a selection about to be refused).
    ledger::LedgerOptions read_options;
    read_options.mode = ledger::LedgerMode::kReadOnly;
    read_options.coordinator = options_.commit.coordinator;
    ASSIGN_OR_RETURN(std::unique_ptr<ledger::Ledger> reader,
                     ledger::Ledger::Open(options_.store, PipelineNamespace(spec_), read_options));
    if (!options_.adopt) {
      RETURN_IF_ERROR(CheckPipelineOwner(spec_, reader->state(), options_.store->Url(), "run"));
    }
    RETURN_IF_ERROR(CheckSelectionFirst(*reader));
  }
  ledger::LedgerOptions ledger_options;
  ledger_options.mode = ledger::LedgerMode::kWrite;
  ledger_options.coordinator = options_.commit.coordinator;
  ledger_options.single_writer = options_.commit.single_writer;
  // Checkpoints that finish together are committed together (one record, one publish).
  ledger_options.max_commit_group = 64;
  ASSIGN_OR_RETURN(ledger_,
                   ledger::Ledger::Open(options_.store, PipelineNamespace(spec_), ledger_options));
  report_.run_id = ledger_->run_id();
  return RecordOwner();
}

// A selection that needs an unselected node without a current checkpoint is refused before the
// ledger is claimed, so the refused run changes nothing. (A checkpoint that then fails
// verification is found, and refused, by PlanNodes.)
Status Orchestrator::CheckSelectionFirst(ledger::Ledger& reader) const {
  if (!Partial()) return Status::OK();
  const ledger::LedgerState state = reader.state();
  PlanInput input;
  input.spec = &spec_;
  input.dag = &dag_;
  input.fingerprints = &fps_;
  input.state = &state;
  input.fresh = options_.fresh;
  input.selection = &*options_.selection;
  OutputEnv env{&spec_, &dag_, &reader, nullptr, nullptr, "", options_.fresh};
  for (size_t i = 0; i < spec_.outputs.size(); ++i) {
    OutputReport scratch;
    const NodeReport& node = report_.nodes[dag_.output_nodes()[i]];
    input.output_current.push_back(input.selection->outputs[i] &&
                                   IsOutputCurrent(env, i, node, &scratch));
  }
  return CheckSelectedPlan(input, PlanRun(input));
}

// Records this file as the namespace's owner when none is (or with --adopt); refuses if another
// file became the owner since the check above.
Status Orchestrator::RecordOwner() {
  std::optional<PipelineOwner> owner = FindPipelineOwner(ledger_->state());
  const bool ours = owner && owner->path == PipelineFileIdentity(spec_);
  if (ours) return Status::OK();
  if (owner && !options_.adopt) {
    Status refused = CheckPipelineOwner(spec_, ledger_->state(), options_.store->Url(), "run");
    ledger_->Close().IgnoreError();
    return refused;
  }
  ledger::Changes changes;
  changes.upserts[std::string(kOwnerEntry)] = NewOwnerEntry(spec_);
  return ledger_->Commit(changes).status().WithContext("recording the pipeline file's ownership");
}

// Plans; then downloads and verifies the reused checkpoints something must read, planning again
// without any that fails. A reused checkpoint's object must exist with its size even when
// nothing reads it now (a later run may), else its node is computed.
Status Orchestrator::PlanNodes() {
  const ledger::LedgerState state = ledger_->state();
  PlanInput input;
  input.spec = &spec_;
  input.dag = &dag_;
  input.fingerprints = &fps_;
  input.state = &state;
  input.fresh = options_.fresh;
  if (Partial()) input.selection = &*options_.selection;
  for (size_t i = 0; i < spec_.outputs.size(); ++i) {
    const int v = dag_.output_nodes()[i];
    input.output_current.push_back(
        IsOutputCurrent(Outputs(), i, report_.nodes[v], &report_.outputs[i]));
  }
  const std::vector<Task> first = PlanRun(input);
  refused_ = CheckSelectedPlan(input, first);
  if (!refused_.ok()) return Status::OK();
  for (const Task& t : first) {
    if (t.action != TaskAction::kReuse) continue;
    const ledger::Entry& entry = state.entries.at(StageEntryName(report_.nodes[t.node].name));
    if (Status s = ledger_->VerifyData(entry, /*checksum=*/false); !s.ok()) {
      input.unusable[t.node] = UnusableCheckpointReason(s);
    }
  }
  for (bool changed = true; changed;) {
    changed = false;
    plan_ = PlanRun(input);
    refused_ = CheckSelectedPlan(input, plan_);
    if (!refused_.ok()) return Status::OK();
    for (int v : dag_.TopologicalOrder()) {
      if (!plan_[v].load || tables_->IsDefined(v)) continue;
      if (Interrupted()) return Status::OK();
      Status s = LoadReused(v);
      if (s.ok()) continue;
      if (s.code() != StatusCode::kDataLoss && !s.IsNotFound()) {
        return s.WithContext("reading the checkpoint of " + report_.nodes[v].name);
      }
      // Said once, as the node's reason (the run's "started" line), not also as a warning.
      RESPAWN_LOG(kInfo, "checkpoint of " << report_.nodes[v].name
                                          << " is not usable, recomputing it: " << s.message());
      input.unusable[v] = UnusableCheckpointReason(s);
      changed = true;
      break;
    }
  }
  ApplyPlan();
  return Status::OK();
}

// Downloads, verifies and defines the reused checkpoint of node `v`.
Status Orchestrator::LoadReused(int v) {
  const std::string name = StageEntryName(report_.nodes[v].name);
  const std::optional<ledger::Entry> entry = ledger_->Find(name);
  if (!entry) return NotFound("no checkpoint " + name);
  if (entry->objects.size() != 1) {
    return DataLoss("checkpoint of " + report_.nodes[v].name + " names " +
                    std::to_string(entry->objects.size()) + " objects, expected 1");
  }
  ASSIGN_OR_RETURN(CheckpointMeta meta, DecodeCheckpointMeta(entry->meta, name));
  ExportedObject object;
  object.key = entry->objects[0].key;
  object.size = entry->objects[0].size;
  object.xxh3 = entry->objects[0].xxh3;
  object.rows = meta.rows;
  Clock::time_point t0 = Clock::now();
  tables_->AddCheckpoint(v, object);
  RETURN_IF_ERROR(tables_->Ensure(*setup_, v));
  report_.nodes[v].seconds += SecondsSince(t0);
  return Status::OK();
}

// The plan's decisions into the report, announced node by node.
void Orchestrator::ApplyPlan() {
  for (int v = 0; v < dag_.size(); ++v) {
    NodeReport& r = report_.nodes[v];
    const Task& t = plan_[v];
    if (t.action == TaskAction::kSource) continue;
    r.reason = t.reason;
    if (t.action == TaskAction::kReuse) {
      const std::string name = StageEntryName(r.name);
      CheckpointMeta meta = DecodeCheckpointMeta(ledger_->Find(name)->meta, name).value();
      r.action = NodeAction::kReused;
      r.rows = meta.rows;
      r.bytes = meta.bytes;
      r.saved_seconds = meta.compute_seconds;
      report_.saved_seconds += r.saved_seconds;
    } else if (t.action == TaskAction::kSkip) {
      r.action = NodeAction::kSkipped;
    }
    Emit(RunEvent::Type::kPlanned, &r);
  }
}

// Runs the computed nodes on the executor; their checkpoints upload and commit on the
// checkpointer meanwhile. Returns the first failure (OK when interrupted).
Status Orchestrator::ComputeNodes() {
  std::vector<int> nodes;  // task index -> node, topological
  std::vector<int> task_of(dag_.size(), -1);
  for (int v : dag_.TopologicalOrder()) {
    if (plan_[v].action != TaskAction::kCompute) continue;
    task_of[v] = static_cast<int>(nodes.size());
    nodes.push_back(v);
  }
  TaskGraph graph;
  for (int v : nodes) {
    graph.deps.emplace_back();
    for (const DagEdge& e : dag_.node(v).inputs) {
      if (task_of[e.from] >= 0) graph.deps.back().push_back(task_of[e.from]);
    }
  }
  const int workers = WorkerCount(options_);
  for (int w = 0; w < workers; ++w) {
    ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, db_->Connect());
    connections_.push_back(std::move(conn));
  }
  running_.assign(workers, -1);
  Checkpointer checkpointer(ledger_, workers);
  ExecutorOptions executor_options;
  executor_options.workers = workers;
  executor_options.stop_on_failure = !options_.keep_going;
  executor_options.on_cancel = [this] {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t w = 0; w < running_.size(); ++w) {
      if (running_[w] >= 0) connections_[w]->Interrupt();
    }
  };
  LocalExecutor executor(std::move(executor_options));
  executor_ = &executor;
  checkpointer_ = &checkpointer;
  RETURN_IF_ERROR(executor.Start(std::move(graph), [this, &nodes](int task, int worker) {
    return RunComputeTask(nodes[task], worker);
  }));
  Monitor(executor);
  executor.Wait();
  std::optional<Clock::time_point> deadline;
  if (Interrupted() && options_.drain_timeout.count() > 0) {
    deadline = Clock::now() + options_.drain_timeout;
  }
  checkpointer.Drain(deadline).IgnoreError();  // each job reported its own outcome
  executor_ = nullptr;
  checkpointer_ = nullptr;
  MarkNotRun(nodes);
  std::lock_guard<std::mutex> lock(mu_);
  return failure_;
}

// After the executor: a node that never ran is blocked when a stage it reads (directly or not)
// failed, else interrupted (a signal, or the run stopped at another stage's failure).
void Orchestrator::MarkNotRun(const std::vector<int>& nodes) {
  std::vector<const NodeReport*> marked;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> failed_input(dag_.size());  // by node: a failed node it reads
    for (int v : nodes) {                                // topological
      NodeReport& r = report_.nodes[v];
      for (const DagEdge& e : dag_.node(v).inputs) {
        const NodeReport& in = report_.nodes[e.from];
        if (in.action == NodeAction::kFailed) failed_input[v] = in.name;
        if (failed_input[v].empty()) failed_input[v] = failed_input[e.from];
      }
      if (r.action != NodeAction::kPending) continue;
      if (!failed_input[v].empty() && !Interrupted()) {
        r.action = NodeAction::kBlocked;
        r.reason = "not run: upstream \"" + failed_input[v] + "\" failed";
      } else {
        r.action = NodeAction::kInterrupted;
        if (!Interrupted()) {
          r.reason =
              "not run: the run stopped at the first failure (--keep-going runs what "
              "does not depend on it)";
        }
      }
      marked.push_back(&r);
    }
  }
  for (const NodeReport* r : marked) Emit(RunEvent::Type::kFinished, r);
}

// Until the executor is done: passes an interrupt on to it and samples the running queries'
// progress for displays.
void Orchestrator::Monitor(Executor& executor) {
  while (!executor.WaitFor(kProgressInterval)) {
    if (Interrupted()) executor.Cancel();
    std::vector<std::pair<int, QueryProgress>> progress;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t w = 0; w < running_.size(); ++w) {
        if (running_[w] >= 0) progress.emplace_back(running_[w], connections_[w]->Progress());
      }
    }
    for (const auto& [v, p] : progress) {
      Emit(RunEvent::Type::kProgress, &report_.nodes[v], nullptr, p.percentage, p.rows_processed);
    }
  }
}

Status Orchestrator::RunComputeTask(int v, int worker) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    running_[worker] = v;
  }
  Emit(RunEvent::Type::kStarted, &report_.nodes[v]);
  const Clock::time_point start = Clock::now();
  TaskEnv env{&spec_, &dag_, &reads_, tables_.get(), db_->temp_directory() + "/profiles"};
  Result<TaskResult> result = RunTask(env, v, *connections_[worker]);
  {
    std::lock_guard<std::mutex> lock(mu_);
    running_[worker] = -1;
    if (result.ok()) {
      report_.nodes[v].rows = result->rows;
      report_.nodes[v].warnings = std::move(result->warnings);
    }
  }
  if (!result.ok()) {
    NodeDone(v, result.status(), start);
    return result.status();
  }
  if (!result->file) {
    NodeDone(v, Status::OK(), start);
  } else {
    SubmitCheckpoint(v, *result, start);
  }
  return Status::OK();
}

// Hands node `v`'s exported file to the checkpointer: uploaded, then committed once the
// checkpoints it read committed.
void Orchestrator::SubmitCheckpoint(int v, const TaskResult& result, Clock::time_point start) {
  const NodeReport& r = report_.nodes[v];
  Result<std::string> key = ledger_->RunDataKey(r.name, r.fingerprint, ".parquet");
  if (!key.ok()) {
    NodeDone(v, key.status().WithContext("stage \"" + r.name + "\""), start);
    CheckpointFailed();
    return;
  }
  CheckpointJob job;
  job.entry = StageEntryName(r.name);
  job.what = "stage \"" + r.name + "\"";
  job.value.fingerprint = r.fingerprint;
  const DagNode& node = dag_.node(v);
  job.value.meta = EncodeCheckpointMeta(
      {result.rows, result.file->size, result.seconds, fps_[v].Serialize(),
       node.kind == NodeKind::kStage ? ExpectationsId(spec_.stages[node.spec_index]) : ""});
  job.object = {*key, result.file->size, result.file->xxh3};
  job.path = result.file->path;
  job.after = CommitsBefore(v);
  job.done = [this, v, start, bytes = result.file->size](const Status& status, uint64_t) {
    if (status.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      report_.nodes[v].bytes = bytes;
    }
    NodeDone(v, status, start);
    if (!status.ok()) CheckpointFailed();
  };
  const int id = checkpointer_->Submit(std::move(job));
  std::lock_guard<std::mutex> lock(mu_);
  checkpoint_job_[v] = id;
}

// The checkpointer jobs of the checkpoints node `v` read that this run computed (through nodes
// without a checkpoint): they commit before `v`'s.
std::vector<int> Orchestrator::CommitsBefore(int v) const {
  std::vector<int> out;
  std::vector<int> stack = {v};
  std::vector<bool> seen(dag_.size(), false);
  while (!stack.empty()) {
    const int u = stack.back();
    stack.pop_back();
    for (const DagEdge& e : dag_.node(u).inputs) {
      if (seen[e.from] || plan_[e.from].action != TaskAction::kCompute) continue;
      seen[e.from] = true;
      if (!report_.nodes[e.from].checkpoint) {
        stack.push_back(e.from);
        continue;
      }
      std::lock_guard<std::mutex> lock(mu_);
      if (auto it = checkpoint_job_.find(e.from); it != checkpoint_job_.end() && it->second >= 0) {
        out.push_back(it->second);
      }
    }
  }
  return out;
}

// A checkpoint did not upload or commit: the store or the ledger is in trouble, so nothing more
// starts (even with --keep-going) and no output is written.
void Orchestrator::CheckpointFailed() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    checkpoint_failed_ = true;
  }
  executor_->Stop();
}

// Node `v` is done (computed and, if checkpointed, committed) or failed with `status`.
void Orchestrator::NodeDone(int v, const Status& status, Clock::time_point start) {
  NodeReport& r = report_.nodes[v];
  {
    std::lock_guard<std::mutex> lock(mu_);
    r.seconds = SecondsSince(start);
    const bool stopped = status.code() == StatusCode::kAborted || status.IsCancelled();
    if (status.ok()) {
      r.action = NodeAction::kComputed;
    } else if (Interrupted() || stopped) {
      r.action = NodeAction::kInterrupted;
      if (!Interrupted() && failure_.ok()) failure_ = status;
    } else {
      r.action = NodeAction::kFailed;
      errors_[v] = status.message();
      if (failure_.ok()) failure_ = status;
    }
  }
  Emit(RunEvent::Type::kFinished, &r);
}

// The first node `v` needs (itself, or upstream of it) that did not succeed in this run; -1 if
// none.
int Orchestrator::FirstUnfinished(int v) const {
  std::vector<int> stack = {v};
  std::vector<bool> seen(dag_.size(), false);
  while (!stack.empty()) {
    const int u = stack.back();
    stack.pop_back();
    const NodeAction a = report_.nodes[u].action;
    if (a == NodeAction::kFailed || a == NodeAction::kBlocked || a == NodeAction::kInterrupted ||
        a == NodeAction::kPending) {
      return u;
    }
    for (const DagEdge& e : dag_.node(u).inputs) {
      if (!seen[e.from]) stack.push_back(e.from);
      seen[e.from] = true;
    }
  }
  return -1;
}

// Writes the outputs. After a failure with --keep-going, only those whose stages all succeeded.
Status Orchestrator::WriteOutputs() {
  for (size_t i = 0; i < spec_.outputs.size(); ++i) {
    if (Interrupted()) return Status::OK();
    const NodeReport& node = report_.nodes[dag_.output_nodes()[i]];
    OutputReport& o = report_.outputs[i];
    if (Partial() && !options_.selection->outputs[i]) {
      o.name = spec_.outputs[i].name;
      o.path = spec_.outputs[i].location.resolved;
      o.selected = false;
      o.written = false;
      Emit(RunEvent::Type::kOutput, nullptr, &o);
      continue;
    }
    if (const int missing = FirstUnfinished(dag_.output_nodes()[i]); missing >= 0) {
      o.name = spec_.outputs[i].name;
      o.path = spec_.outputs[i].location.resolved;
      const bool failed = report_.nodes[missing].action == NodeAction::kFailed;
      o.not_written =
          "\"" + report_.nodes[missing].name + "\" " + (failed ? "failed" : "did not run");
      Emit(RunEvent::Type::kOutput, nullptr, &o);
      continue;
    }
    RETURN_IF_ERROR(WriteOutput(Outputs(), i, node, *setup_, &report_.outputs[i]));
    Emit(RunEvent::Type::kOutput, nullptr, &report_.outputs[i]);
  }
  return Status::OK();
}

RunReportMeta Orchestrator::ReportMeta() const {
  RunReportMeta meta;
  for (const NodeReport& n : report_.nodes) {
    if (n.action == NodeAction::kComputed) ++meta.computed;
    if (n.action == NodeAction::kReused) ++meta.reused;
    std::vector<std::string> warnings;
    for (const ExpectationViolation& w : n.warnings) warnings.push_back(w.message);
    meta.nodes.push_back(
        {n.name, std::string(NodeActionName(n.action)), n.reason, n.seconds, warnings});
  }
  meta.result = !report_.status.ok() ? (report_.interrupted ? "interrupted" : "failed")
                : Partial()          ? "partial"
                                     : "done";
  meta.seconds = SecondsSince(start_);
  meta.saved_seconds = report_.saved_seconds;
  meta.error = report_.status.ok() ? "" : report_.status.message();
  if (options_.metrics != nullptr) {
    StoreMetrics m = options_.metrics->Snapshot();
    meta.requests = RequestCounts{m.of(StoreOp::kPut).calls,
                                  m.of(StoreOp::kGet).calls,
                                  m.of(StoreOp::kStat).calls,
                                  m.of(StoreOp::kList).calls,
                                  m.of(StoreOp::kDelete).calls + m.of(StoreOp::kDeleteMany).calls,
                                  m.of(StoreOp::kPut).bytes,
                                  m.of(StoreOp::kGet).bytes};
  }
  return meta;
}

void Orchestrator::CommitRunReport() {
  RunReportMeta meta = ReportMeta();
  ledger::Changes changes;
  const bool trim = options_.gc && meta.finished();
  const ledger::LedgerState state = ledger_->state();
  // The report names the work-tables this run leaves: GC keeps them for [gc] work_tables_ttl,
  // and a plan that finds one gone says GC dropped it after this run.
  meta.work_tables = RunWorkTables(spec_, dag_, state);
  if (trim) {
    // The run is finished: other work-tables are no longer needed, and its own ones only until
    // work_tables_ttl; the results are retained by this report for [gc] keep_runs runs. One
    // record commits both.
    for (std::string& name : TrimAtRunEnd(spec_, dag_, state, *meta.work_tables)) {
      changes.removals.insert(std::move(name));
    }
    meta.results = ResultKeys(spec_, dag_, state);
  }
  // What `respawn restore` writes again while GC retains it.
  if (meta.finished()) meta.outputs = RunOutputCheckpoints(spec_, dag_, state);
  // Old run reports go in the same commit: the ledger's state stays bounded.
  for (const std::string& name :
       ExpiredRunReports(state, spec_.gc.keep_run_reports, spec_.gc.keep_runs)) {
    changes.removals.insert(name);
  }
  ledger::Entry entry;
  entry.fingerprint = "run";
  entry.meta = EncodeRunReportMeta(meta);
  changes.upserts[RunEntryName(report_.run_id)] = entry;
  Result<uint64_t> committed = ledger_->Commit(changes);
  if (!committed.ok()) {
    RESPAWN_LOG(kWarn, "could not record the run report: " << committed.status().message());
    return;
  }
  if (trim) CollectGarbageAfterRun();
}

void Orchestrator::CollectGarbageAfterRun() {
  CrashPoint<"runner:before-gc">();
  GcOptions gc;
  gc.keep_runs = spec_.gc.keep_runs;
  gc.orphan_grace_ms = spec_.gc.orphan_grace_ms;
  Result<ledger::LedgerGarbage> obsolete = ledger_->CollectObsolete(2);
  if (obsolete.ok()) gc.ledger_garbage = obsolete->keys;
  Result<GcReport> collected = CollectGarbage(*ledger_, gc);
  report_.gc_ran = true;
  if (collected.ok()) {
    report_.gc = std::move(*collected);
  } else {
    report_.gc_status = collected.status();
  }
}

// For `respawn log`: each node computed or failed in this run, with its query profile when one
// was taken (stage_log.h). Best effort: a log that cannot be written costs only the log.
void Orchestrator::WriteStageLogs() {
  TaskEnv env{&spec_, &dag_, &reads_, tables_.get(), db_->temp_directory() + "/profiles"};
  for (int v = 0; v < dag_.size(); ++v) {
    const NodeReport& r = report_.nodes[v];
    if (r.action != NodeAction::kComputed && r.action != NodeAction::kFailed) continue;
    StageLog log{.node = r.name,
                 .run_id = report_.run_id,
                 .result = r.action == NodeAction::kFailed ? "failed" : "computed",
                 .reason = r.reason,
                 .error = errors_.count(v) != 0 ? errors_.at(v) : "",
                 .fingerprint = r.fingerprint,
                 .sql = RunnableSql(spec_, dag_, v),
                 .finished_at_ms = ledger::WallClockMs(),
                 .seconds = r.seconds,
                 .rows = r.rows,
                 .bytes = r.bytes,
                 .profile = nullptr};
    if (r.action == NodeAction::kComputed) {
      std::ifstream in(TaskProfilePath(env, v));
      if (in) log.profile = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
      if (log.profile.is_discarded()) log.profile = nullptr;
    }
    Status s = WriteStageLog(ledger_->store(), PipelineNamespace(spec_), log);
    if (!s.ok()) RESPAWN_LOG(kInfo, "no log of " << r.name << ": " << s.message());
  }
}

// After the work: the outcome, the run report (unless fenced: the ledger is someone else's).
void Orchestrator::Finish() {
  report_.interrupted = Interrupted();
  if (report_.interrupted && report_.status.ok()) {
    report_.status = Aborted("interrupted");
  }
  if (report_.status.IsFenced()) {
    report_.status =
        FailedPrecondition("another run of pipeline \"" + spec_.name + "\" took over the store " +
                           options_.store->Url() +
                           " while this one was running; this run stopped and keeps what it "
                           "committed (" +
                           report_.status.message() + ")");
  } else {
    CommitRunReport();
    WriteStageLogs();
  }
  ledger_->Close().IgnoreError();
  report_.seconds = SecondsSince(start_);
}

Result<RunReport> Orchestrator::Run() {
  RETURN_IF_ERROR(Prepare());
  report_.partial = Partial();
  report_.status = PlanNodes();
  if (!refused_.ok()) {
    ledger_->Close().IgnoreError();
    return refused_;
  }
  if (report_.status.ok() && !Interrupted()) report_.status = ComputeNodes();
  // With --keep-going the outputs of the stages that succeeded are written after a stage failed
  // (never after a lost store or ledger: fenced, or a checkpoint that did not commit).
  const bool write_anyway = options_.keep_going && !report_.status.IsFenced() &&
                            !report_.status.IsCancelled() && !checkpoint_failed_;
  if ((report_.status.ok() || write_anyway) && !Interrupted()) {
    Status written = WriteOutputs();
    if (report_.status.ok()) report_.status = written;
  }
  Finish();
  return std::move(report_);
}

}  // namespace

std::string_view NodeActionName(NodeAction action) {
  switch (action) {
    case NodeAction::kPending:
      return "pending";
    case NodeAction::kReused:
      return "reused";
    case NodeAction::kComputed:
      return "computed";
    case NodeAction::kSource:
      return "source";
    case NodeAction::kSkipped:
      return "skipped";
    case NodeAction::kFailed:
      return "failed";
    case NodeAction::kInterrupted:
      return "interrupted";
    case NodeAction::kBlocked:
      return "blocked";
  }
  return "pending";
}

Result<RunReport> RunPipeline(const PipelineSpec& spec, const RunOptions& options) {
  if (options.store == nullptr) return InvalidArgument("RunPipeline: no store given");
  Orchestrator orchestrator(spec, options);
  return orchestrator.Run();
}

}  // namespace respawn
