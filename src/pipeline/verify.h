// `respawn verify` and `respawn repair` for a pipeline: the ledger's own inspection and repair
// (ledger/repair.h) plus the data objects the ledger names and what a run would recompute.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "ledger/repair.h"
#include "pipeline/commit_setup.h"
#include "pipeline/spec.h"
#include "pipeline/status.h"
#include "storage/store.h"

namespace respawn {

struct DataDamage {
  std::string entry;  // "stage/x", "output/y", or "run/<id> (results)"
  std::string key;
  Status status;  // NotFound or DataLoss, naming expected and actual size and checksum
};

struct PipelineVerifyReport {
  ledger::LedgerInspection ledger;
  uint64_t data_objects = 0;  // checked
  uint64_t data_bytes = 0;
  std::vector<DataDamage> data;
  bool ok() const { return ledger.ok() && data.empty(); }
};

/// Checks every ledger object of the pipeline's namespace and every data object its state names
/// (checkpoints, outputs, the results run reports retain): existence, size and, with
/// `checksums`, XXH3 of the whole object. Writes nothing.
Result<PipelineVerifyReport> VerifyPipeline(const PipelineSpec& spec, std::shared_ptr<Store> store,
                                            bool checksums);

struct PipelineRepair {
  ledger::LedgerInspection ledger;  // the damage and what is done about it
  /// Each node as a run would find it once the ledger is repaired (state "committed" is reused;
  /// anything else is computed when needed).
  std::vector<NodeStatus> nodes;
  bool applied = false;
};

/// Without `apply`: what repair would do, and what the next run would then recompute. With it:
/// writes the fixes, then opens the ledger in write mode, which proves recovery works and claims
/// a new epoch (fencing any writer still running on the damaged chain).
/// `commit` is how the write-mode open commits (as for a run). Ledgers committed through a
/// coordinator are not repaired yet (Unimplemented): their records live in the coordinator.
Result<PipelineRepair> RepairPipeline(const PipelineSpec& spec, std::shared_ptr<Store> store,
                                      bool apply, const CommitSetup& commit);

}  // namespace respawn
