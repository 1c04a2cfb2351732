// What a pipeline's store holds (`respawn status`, `respawn ls`): each node's checkpoint compared
// with the pipeline file as it is now, the runs recorded, and the store's usage by stage and by
// run. Read-only: never fences a running run.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ledger/coordinator.h"
#include "ledger/record.h"
#include "pipeline/dag.h"
#include "pipeline/spec.h"
#include "storage/store.h"
#include "util/status.h"

namespace respawn {

/// What the store holds for each node, compared with the pipeline file as it is now.
struct NodeStatus {
  std::string name;
  NodeKind kind = NodeKind::kStage;
  bool checkpoint = true;
  /// "committed" (fingerprint matches: a run reuses it), "stale" (committed for another
  /// fingerprint: `reason` says what changed), "missing" (never committed), "source", "not
  /// checkpointed", "dropped" (a work-table GC dropped after a run: `reason` names the run).
  std::string state;
  std::string reason;
  /// What a run would do with it now (plan.h, with every output taken as stale and no
  /// checkpoint verified): "compute", "reuse", "skip" or "source", and why (a computed node's
  /// reason, e.g. "dropped by GC after run 1a2b3c4d (needed by c)"; empty for reuse, source).
  std::string next_action;
  std::string next_reason;
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

/// Runs and checkpoints recorded under the namespace `ns` of `store` (for `respawn ls`).
Result<PipelineStatus> ReadPipelineLedger(
    std::shared_ptr<Store> store, const std::string& ns,
    std::shared_ptr<ledger::CommitCoordinator> coordinator = nullptr);

}  // namespace respawn
