// `respawn gc` for a pipeline: drops the work-tables of its last finished run from the ledger
// (joining that run's epoch, never fencing a running pipeline) and deletes what no retained
// commit needs (gc.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "pipeline/commit_setup.h"
#include "pipeline/gc.h"
#include "pipeline/spec.h"
#include "storage/store.h"
#include "util/status.h"

namespace respawn {

struct PipelineGcOptions {
  bool dry_run = false;
  CommitSetup commit;
  int64_t now_ms = 0;  // 0: the current time (the work-tables' TTL, the orphans' grace)
};

struct PipelineGcReport {
  GcReport gc;
  std::vector<std::string> trimmed;  // work-table entries dropped from the ledger
  /// Work-tables of the latest run that [gc] work_tables_ttl keeps (not dropped), that run, and
  /// when they may go (Unix epoch milliseconds).
  std::vector<std::string> kept_by_ttl;
  std::string kept_for_run;
  int64_t kept_until_ms = 0;
  /// Why trimming was skipped, if it was ("a run is in progress", "single-writer mode");
  /// empty when it ran.
  std::string trim_skipped;
};

/// `respawn gc`: drops work-tables of the last finished run from the ledger (joining its epoch,
/// never fencing a running pipeline; the latest run's only once [gc] work_tables_ttl passed) and
/// deletes what no retained commit needs. Refused (InvalidArgument, nothing deleted) when another
/// pipeline file owns the namespace. Crash point: gc:after-trim (the trim committed, nothing
/// deleted yet), then gc.h's.
Result<PipelineGcReport> CollectPipelineGarbage(const PipelineSpec& spec,
                                                std::shared_ptr<Store> store,
                                                const PipelineGcOptions& options);

}  // namespace respawn
