// Planning a run: which nodes to reuse, compute or skip, and why. A pure function of the
// pipeline, its DAG and fingerprints, the ledger state and what the caller found out by I/O
// (outputs still current, checkpoints that failed verification); it reads and writes nothing.
//
// Demand-driven, like make: the targets are the outputs not already current, the nodes
// nothing else reads and the stages whose expectations changed. A target with a usable checkpoint
// (committed with the current fingerprint, not refused by verification, not --fresh) is reused; any
// other is computed and demands its inputs in turn. A reused checkpoint that a computed node or an
// output must read is marked `load`: the caller downloads and verifies it before running anything,
// and when that fails records the node in PlanInput::unusable and plans again (the node is then
// computed).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ledger/record.h"
#include "pipeline/dag.h"
#include "pipeline/fingerprint.h"
#include "pipeline/selection.h"
#include "pipeline/spec.h"
#include "util/status.h"

namespace respawn {

enum class TaskAction {
  kCompute,  // run its SQL (and checkpoint it, if checkpointed)
  kReuse,    // its committed checkpoint stands
  kSkip,     // nothing in this run needs it
  kSource,   // a file source: read in place by the tasks that read it
};

/// One unit of work of a run: a node (later: one partition of it) and what to do with it.
struct Task {
  int node = 0;
  std::optional<uint32_t> partition;  // always empty until stages are partitioned
  TaskAction action = TaskAction::kCompute;
  /// kCompute: why ("no checkpoint", "dropped by GC after run 1a2b3c4d (needed by c)",
  /// "changed SQL", "changed input b", "--fresh", "checkpoint corrupt: ...",
  /// "changed expectations");
  /// kSkip: why nothing needs it. Empty otherwise.
  std::string reason;
  /// kReuse: a computed node or an output reads it, so it must be downloaded and verified.
  bool load = false;
  friend bool operator==(const Task&, const Task&) = default;
};

struct PlanInput {
  const PipelineSpec* spec = nullptr;
  const Dag* dag = nullptr;
  const std::vector<FingerprintComponents>* fingerprints = nullptr;  // by node
  const ledger::LedgerState* state = nullptr;
  bool fresh = false;  // reuse nothing
  /// By spec.outputs index: the file there is the one a run wrote for the current fingerprint.
  /// Missing entries count as not current.
  std::vector<bool> output_current;
  /// Checkpoints that verification refused, by node, with the reason to give
  /// (UnusableCheckpointReason).
  std::map<int, std::string> unusable;
  /// --select/--exclude (selection.h); null: everything. The targets are the selected outputs
  /// and the selected nodes nothing reads; --fresh applies to selected nodes alone; an
  /// unselected node nothing needs is skipped as not selected. An unselected node that a
  /// computed one needs and that cannot be reused is still planned as computed: the caller
  /// refuses such a plan with CheckSelectedPlan.
  const Selection* selection = nullptr;
};

/// One task per node, in node order. REQUIRES: spec, dag, fingerprints and state set.
std::vector<Task> PlanRun(const PlanInput& input);

/// For a plan made with a selection: OK, or InvalidArgument naming the first selected node (or
/// output) that needs an unselected checkpointed node the plan computes (no usable checkpoint),
/// and the fix. Unselected nodes without checkpoints (checkpoint = false) are computed when a
/// selected node needs them; nothing else unselected is. OK without a selection.
Status CheckSelectedPlan(const PlanInput& input, const std::vector<Task>& tasks);

/// "checkpoint missing: ..." (NotFound) or "checkpoint corrupt: ..." (anything else): the reason
/// a node whose checkpoint failed verification with `error` is computed.
std::string UnusableCheckpointReason(const Status& error);

/// The reason a stage whose expectations changed since its checkpoint was committed is computed
/// again (expect.h). Such a stage is a target even when everything reading it is reused.
inline constexpr std::string_view kChangedExpectationsReason = "changed expectations";
/// The reason a checkpointed node is computed when nothing was ever committed for it. A node
/// whose checkpoint GC dropped says instead "dropped by GC after run <id> (needed by <nodes>)"
/// (the run whose report lists it among its work-tables; schema.h DroppedWorkTables).
inline constexpr std::string_view kNoCheckpointReason = "no checkpoint";

/// The reason given when a checkpoint that nothing reads is skipped.
inline constexpr std::string_view kNotNeededReason =
    "not needed: everything downstream is reused or current";

/// The reason given when an unselected node is skipped (--select/--exclude).
inline constexpr std::string_view kNotSelectedReason = "not selected";

}  // namespace respawn
