// The pipeline runner: runs a PipelineSpec on embedded DuckDB, checkpointing every stage output
// as Parquet through the ledger, and resumes from what was committed.
//
// A run (docs/architecture.md draws it):
//   1. builds the DAG (tables each stage reads, found by DuckDB's parser) and fingerprints every
//      node (spec errors and SQL syntax errors: InvalidArgument `file:line: ...`);
//   2. checks that this pipeline file owns the namespace "pipelines/<name>" (owner.h; another
//      file under the same name is refused, InvalidArgument, unless RunOptions::adopt), then
//      opens the ledger there in write mode, which fences any earlier run of the same pipeline
//      still going (a zombie driver), and records the owner if none is;
//   3. plans (plan.h): a checkpointed node whose committed fingerprint matches is reused,
//      anything else is computed; a reused checkpoint that a computed node or an output must
//      read is downloaded and verified (size, XXH3, Parquet footer, row count) first, and a
//      missing or corrupt one turns its node into a computed one (with the reason);
//   4. computes the rest as tasks (task.h) on an executor (executor.h): dependency order,
//      independent nodes in parallel; each result is exported to a local Parquet file and
//      checked against the stage's expectations (expect.h: a violated one of severity "error"
//      fails the stage before anything of it commits); its consumers read the file at once, while
//      the checkpointer (checkpointer.h) uploads it as an immutable object under a fresh attempt
//      prefix and commits it (entry "stage/<name>"), a stage's commit always before its consumers';
//   5. once every checkpoint committed, writes each output atomically (outputs.h) unless the
//      same content is already there, and commits "output/<name>";
//   6. commits the run report "run/<run id>" (what was reused or computed, and why).
// A kill at any moment leaves the ledger at a committed state; re-running resumes from it.
//
// Crash points (util/crash_point.h): runner:before-stage, runner:after-export (data uploaded, not
// committed), runner:after-commit, runner:before-output, runner:after-output, runner:before-gc,
// plus the ledger's.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pipeline/commit_setup.h"
#include "pipeline/dag.h"
#include "pipeline/expect.h"
#include "pipeline/gc.h"
#include "pipeline/selection.h"
#include "pipeline/spec.h"
#include "storage/metrics_store.h"
#include "storage/store.h"
#include "util/status.h"

namespace respawn {

enum class NodeAction {
  kPending,      // not decided yet / not reached
  kReused,       // committed checkpoint with the same fingerprint
  kComputed,     // ran this time (and committed, if checkpointed)
  kSource,       // a file source: read in place
  kSkipped,      // not checkpointed, and nothing in this run reads it
  kFailed,       // its SQL failed
  kInterrupted,  // stopped by a signal or because the run stopped
  kBlocked,      // not run: a stage it reads failed (reason names it)
};
std::string_view NodeActionName(NodeAction action);

struct NodeReport {
  std::string name;
  NodeKind kind = NodeKind::kStage;
  bool checkpoint = true;
  NodeAction action = NodeAction::kPending;
  std::string reason;       // why computed ("no checkpoint", "changed SQL", "--fresh", ...)
  std::string fingerprint;  // 16 hex digits
  uint64_t rows = 0;
  uint64_t bytes = 0;        // Parquet bytes of the checkpoint
  double seconds = 0;        // compute (or download) time in this run
  double saved_seconds = 0;  // reused: what computing it took when it was committed
  /// Computed: the expectations of severity "warn" it violated (expect.h).
  std::vector<ExpectationViolation> warnings;
};

struct OutputReport {
  std::string name;
  std::string path;      // as resolved (absolute path or URL)
  bool written = false;  // false: the same content was already there (or see below)
  /// Non-empty when the output was left as it was because a stage it needs failed
  /// (RunOptions::keep_going): why.
  std::string not_written;
  /// false: --select/--exclude left it out; it was neither checked nor written.
  bool selected = true;
  uint64_t bytes = 0;
  double seconds = 0;
};

/// Live progress for displays.
struct RunEvent {
  enum class Type { kPlanned, kStarted, kProgress, kFinished, kOutput };
  Type type = Type::kPlanned;
  const NodeReport* node = nullptr;      // kPlanned, kStarted, kProgress, kFinished
  const OutputReport* output = nullptr;  // kOutput
  double percent = -1;                   // kProgress: 0..100, -1 unknown (DuckDB may say 0)
  uint64_t rows_read = 0;                // kProgress: rows the query's scans have read so far
};

struct RunOptions {
  std::shared_ptr<Store> store;  // where checkpoints and the ledger live (required)
  CommitSetup commit;
  bool fresh = false;  // recompute every stage, ignoring checkpoints
  int threads = 0;     // DuckDB threads; 0: one per core
  /// Stages computed at once; 0: as many as DuckDB threads (`threads`, else one per core).
  int workers = 0;
  /// The DAG CheckPipeline (check.h) returned for this spec: the run does not check the
  /// pipeline again. Null: the run checks it first, in a scratch database of its own.
  const Dag* checked_dag = nullptr;
  uint64_t memory_limit_bytes = 0;  // 0: DuckDB layer default
  /// Set by a signal handler: running queries are interrupted, nothing new starts; what was
  /// committed stays. May be null.
  const std::atomic<bool>* interrupted = nullptr;
  /// Called from runner threads (serialized by the runner). May be empty. kProgress events are
  /// sampled from the running queries about four times a second.
  std::function<void(const RunEvent&)> on_event;
  /// When a stage fails, keep computing the stages that do not depend on it (and write the
  /// outputs whose stages all succeeded), like make -k; the run still fails. Without it the run
  /// starts nothing more after the first failure.
  bool keep_going = false;
  /// After an interrupt: how long checkpoints still uploading may take before they are
  /// abandoned (what uploaded is committed either way). 0: no limit, every upload finishes.
  std::chrono::milliseconds drain_timeout{0};
  /// After a run that finished: drop work-tables from the ledger and delete what nothing
  /// retained needs (gc.h), with the pipeline's [gc] policy.
  bool gc = true;
  /// If set (the wrapper around `store`), the run report records the requests this run made.
  std::shared_ptr<MetricsStore> metrics;
  /// Make this pipeline file the owner of its namespace even if another file owns it (the same
  /// pipeline, moved or copied; owner.h). Without it such a run is refused (InvalidArgument).
  bool adopt = false;
  /// --select/--exclude (selection.h; ResolveSelection). Empty: the whole pipeline. With a
  /// selection that leaves something out, only selected nodes are computed (--fresh applies to
  /// them alone), unselected ones are reused from their checkpoints, only selected outputs are
  /// written, and the run is partial: its report says "partial", it is not one of the [gc]
  /// keep_runs finished runs, and no GC follows it (`gc` is ignored). A selected node that needs
  /// an unselected one without a current checkpoint refuses the run before anything is computed
  /// (InvalidArgument naming both).
  std::optional<Selection> selection;
};

struct RunReport {
  std::string run_id;
  std::string store_url;
  std::vector<NodeReport> nodes;  // DAG order (declaration)
  std::vector<OutputReport> outputs;
  double seconds = 0;
  double saved_seconds = 0;  // sum over reused nodes
  bool interrupted = false;
  bool partial = false;  // a selection left something out (RunOptions::selection)
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

}  // namespace respawn
