// The pipeline runner: runs a PipelineSpec on embedded DuckDB, checkpointing every stage output
// as Parquet through the ledger, and resumes from what was committed.
//
// A run:
//   1. builds the DAG (tables each stage reads, found by DuckDB's parser) and fingerprints every
//      node (spec errors and SQL syntax errors: InvalidArgument `file:line: ...`);
//   2. checks that this pipeline file owns the namespace "pipelines/<name>" (owner.h; another
//      file under the same name is refused, InvalidArgument, unless RunOptions::adopt), then
//      opens the ledger there in write mode, which fences any earlier run of the same pipeline
//      still going (a zombie driver), and records the owner if none is;
//   3. plans: a checkpointed node whose committed fingerprint matches is reused, anything else is
//      computed; a reused checkpoint that a computed node or an output must read is downloaded
//      and verified (size, XXH3, Parquet footer, row count) first, and a missing or corrupt one
//      turns its node into a computed one (with the reason) instead of being used;
//   4. computes the rest in dependency order, independent nodes in parallel: each result is
//      written as an immutable Parquet object under a fresh attempt prefix, then committed by one
//      ledger record (entry "stage/<name>"), then read by its consumers from the local copy;
//   5. writes each output atomically (local: temporary file in the same directory, fsync,
//      rename; store URL: one put), unless the same content is already there, and commits
//      "output/<name>";
//   6. commits the run report "run/<run id>" (what was reused or computed, and why).
// A kill at any moment leaves the ledger at a committed state; re-running resumes from it.
//
// Crash points (util/crash_point.h): runner:before-stage, runner:after-export (data uploaded, not
// committed), runner:after-commit, runner:before-output, runner:after-output, plus the ledger's.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ledger/record.h"
#include "ledger/coordinator.h"
#include "pipeline/dag.h"
#include "pipeline/gc.h"
#include "pipeline/spec.h"
#include "storage/metrics_store.h"
#include "storage/store.h"
#include "util/status.h"

namespace respawn {

/// The ledger namespace of a pipeline in its store: "pipelines/<name>".
std::string PipelineNamespace(const PipelineSpec& spec);

enum class NodeAction {
  kPending,      // not decided yet / not reached
  kReused,       // committed checkpoint with the same fingerprint
  kComputed,     // ran this time (and committed, if checkpointed)
  kSource,       // a file source: read in place
  kSkipped,      // not checkpointed, and nothing in this run reads it
  kFailed,       // its SQL failed
  kInterrupted,  // stopped by a signal or because the run stopped
};
std::string_view NodeActionName(NodeAction action);

struct NodeReport {
  std::string name;
  NodeKind kind = NodeKind::kStage;
  bool checkpoint = true;
  NodeAction action = NodeAction::kPending;
  std::string reason;  // why computed ("no checkpoint", "changed SQL", "--fresh", ...)
  std::string fingerprint;  // 16 hex digits
  uint64_t rows = 0;
  uint64_t bytes = 0;           // Parquet bytes of the checkpoint
  double seconds = 0;           // compute (or download) time in this run
  double saved_seconds = 0;     // reused: what computing it took when it was committed
};

struct OutputReport {
  std::string name;
  std::string path;         // as resolved (absolute path or URL)
  bool written = false;     // false: the same content was already there
  uint64_t bytes = 0;
  double seconds = 0;
};

/// Live progress for displays.
struct RunEvent {
  enum class Type { kPlanned, kStarted, kProgress, kFinished, kOutput };
  Type type = Type::kPlanned;
  const NodeReport* node = nullptr;      // kPlanned, kStarted, kProgress, kFinished
  const OutputReport* output = nullptr;  // kOutput
  double percent = -1;                   // kProgress: 0..100, -1 unknown
};

/// How the pipeline's ledger commits where the store cannot put-if-absent (ledger/ledger.h,
/// "Commit modes"); passed to every ledger a command opens. On a store with put-if-absent
/// neither is used.
struct CommitSetup {
  /// The commit coordinator (`coordinator = ...` / RESPAWN_COORDINATOR, opened by the caller);
  /// null: none. Read-only commands given one read the records from it.
  std::shared_ptr<ledger::CommitCoordinator> coordinator;
  /// `--single-writer`: without put-if-absent and without a coordinator, commit under the
  /// best-effort writer lease (not safe against a paused process). Without it, such a store
  /// is refused (FailedPrecondition).
  bool single_writer = false;
};

struct RunOptions {
  std::shared_ptr<Store> store;  // where checkpoints and the ledger live (required)
  CommitSetup commit;
  bool fresh = false;            // recompute every stage, ignoring checkpoints
  int threads = 0;               // DuckDB threads; 0: one per core
  uint64_t memory_limit_bytes = 0;  // 0: DuckDB layer default
  /// Set by a signal handler: running queries are interrupted, nothing new starts; what was
  /// committed stays. May be null.
  const std::atomic<bool>* interrupted = nullptr;
  /// Called from runner threads (serialized by the runner). May be empty.
  std::function<void(const RunEvent&)> on_event;
  /// After a run that finished: drop work-tables from the ledger and delete what nothing
  /// retained needs (gc.h), with the pipeline's [gc] policy.
  bool gc = true;
  /// If set (the wrapper around `store`), the run report records the requests this run made.
  std::shared_ptr<MetricsStore> metrics;
  /// Make this pipeline file the owner of its namespace even if another file owns it (the same
  /// pipeline, moved or copied; owner.h). Without it such a run is refused (InvalidArgument).
  bool adopt = false;
};

struct RunReport {
  std::string run_id;
  std::string store_url;
  std::vector<NodeReport> nodes;  // DAG order (declaration)
  std::vector<OutputReport> outputs;
  double seconds = 0;
  double saved_seconds = 0;  // sum over reused nodes
  bool interrupted = false;
  /// OK, or why the run stopped (SQL error naming file, line and stage; fenced; store errors).
  Status status;
  bool gc_ran = false;
  GcReport gc;
  Status gc_status;  // a failed GC does not fail the run
};

/// Runs `spec`. Returns an error only when the run could not start (InvalidArgument for the
/// pipeline file or its SQL, store errors opening the ledger); failures after that are in
/// RunReport::status, with everything committed before them kept.
Result<RunReport> RunPipeline(const PipelineSpec& spec, const RunOptions& options);

/// What the store holds for each node, compared with the pipeline file as it is now.
struct NodeStatus {
  std::string name;
  NodeKind kind = NodeKind::kStage;
  bool checkpoint = true;
  /// "committed" (fingerprint matches: a run reuses it), "stale" (committed for another
  /// fingerprint: `reason` says what changed), "missing" (never committed), "source", "not
  /// checkpointed", "dropped" (a work-table GC deleted after a finished run).
  std::string state;
  std::string reason;
  std::string fingerprint;            // current, 16 hex digits
  std::string committed_fingerprint;  // "" when missing
  uint64_t rows = 0;
  uint64_t bytes = 0;
  uint64_t objects = 0;
  int64_t committed_at_ms = 0;
  std::string committed_by_run;
  // From the latest run report: what that run did with this node and why.
  std::string last_action;
  std::string last_reason;
};

struct RunSummary {
  std::string run_id;
  int64_t finished_at_ms = 0;
  std::string result;  // "done", "failed", "interrupted"
  double seconds = 0;
  double saved_seconds = 0;
  int computed = 0;
  int reused = 0;
  std::string error;
  // Requests the run made (0 when not recorded).
  uint64_t puts = 0, gets = 0, lists = 0, stats = 0, deletes = 0;
  uint64_t bytes_written = 0, bytes_read = 0;
};

/// Objects and bytes, and how many of them GC keeps.
struct UsageCount {
  uint64_t objects = 0;
  uint64_t bytes = 0;
  uint64_t retained_objects = 0;
  uint64_t retained_bytes = 0;
};

/// What a namespace holds in the store, from a LIST (usage and cost, not liveness decisions).
struct StoreUsage {
  uint64_t objects = 0;
  uint64_t bytes = 0;
  uint64_t live_objects = 0;  // data objects GC keeps (RetainedKeys: state and kept runs)
  uint64_t live_bytes = 0;
  uint64_t ledger_objects = 0;  // commit records, snapshots, hints
  uint64_t ledger_bytes = 0;
  /// Data objects by the stage (or output) directory they are under, and by the run that wrote
  /// them (the run id in their name).
  std::map<std::string, UsageCount> by_stage;
  std::map<std::string, UsageCount> by_run;
};

struct PipelineStatus {
  std::string store_url;
  std::string ns;
  uint64_t sequence = 0;  // ledger records so far
  /// The pipeline file that owns the namespace (owner.h); empty when none is recorded.
  std::string owner_path;
  std::string owner_id;
  int64_t owner_since_ms = 0;
  std::vector<NodeStatus> nodes;
  std::vector<RunSummary> runs;  // oldest first
  StoreUsage usage;
};

/// Reads the ledger (read-only; never fences a running run) and compares it with `spec`.
/// `coordinator` (may be null): read the records from it (coordinator mode).
Result<PipelineStatus> GetPipelineStatus(
    const PipelineSpec& spec, std::shared_ptr<Store> store,
    std::shared_ptr<ledger::CommitCoordinator> coordinator = nullptr);

/// Each node of `spec` compared with a given ledger state (e.g. the state a repair leaves).
Result<std::vector<NodeStatus>> PipelineStatusForState(const PipelineSpec& spec,
                                                       const ledger::LedgerState& state);

/// The checks RunPipeline makes before it touches the store: the DAG (unknown tables, cycles)
/// and every stage's SQL bound against its inputs' schemas (unknown columns or functions).
/// InvalidArgument naming file, line and stage. Touches no store.
Status CheckPipeline(const PipelineSpec& spec);

struct PipelineGcOptions {
  bool dry_run = false;
  CommitSetup commit;
  int64_t now_ms = 0;  // 0: the current time
};

struct PipelineGcReport {
  GcReport gc;
  std::vector<std::string> trimmed;  // work-table entries dropped from the ledger
  /// Why trimming was skipped, if it was ("a run is in progress", "single-writer mode");
  /// empty when it ran.
  std::string trim_skipped;
};

/// `respawn gc`: drops work-tables of the last finished run from the ledger (joining its epoch,
/// never fencing a running pipeline) and deletes what no retained commit needs. Refused
/// (InvalidArgument, nothing deleted) when another pipeline file owns the namespace.
Result<PipelineGcReport> CollectPipelineGarbage(const PipelineSpec& spec,
                                                std::shared_ptr<Store> store,
                                                const PipelineGcOptions& options);

/// Runs and checkpoints recorded under the namespace `ns` of `store` (for `respawn ls`).
Result<PipelineStatus> ReadPipelineLedger(
    std::shared_ptr<Store> store, const std::string& ns,
    std::shared_ptr<ledger::CommitCoordinator> coordinator = nullptr);

}  // namespace respawn
