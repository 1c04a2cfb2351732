// `respawn show`: the rows of a committed checkpoint, or of a query over it (like `dbt show`),
// read back from the store and verified as every checkpoint read is.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "ledger/coordinator.h"
#include "pipeline/spec.h"
#include "sql/query_result.h"
#include "storage/store.h"

namespace respawn {

struct ShowOptions {
  std::string stage;    // a stage or generated source with a committed checkpoint
  std::string sql;      // "" = SELECT * FROM <stage>; else a query that may read <stage>
  uint64_t limit = 20;  // rows at most (0 = all)
  std::shared_ptr<ledger::CommitCoordinator> coordinator;  // read the ledger through it
};

struct ShowResult {
  QueryResult rows;
  uint64_t checkpoint_rows = 0;  // rows in the checkpoint
  std::string run_id;            // the run that committed it
  int64_t committed_at_ms = 0;
  /// "committed" when a run would reuse it; "stale" when the stage changed since (then `reason`
  /// says how: the rows shown are the older version's).
  std::string state;
  std::string reason;
};

/// InvalidArgument for a name the pipeline does not define (with a did-you-mean) and for SQL
/// errors; NotFound when the stage has no committed checkpoint (never run, or a work-table GC
/// dropped); DataLoss when the checkpoint does not verify. Writes nothing to the store.
Result<ShowResult> ShowCheckpoint(const PipelineSpec& spec, std::shared_ptr<Store> store,
                                  const ShowOptions& options);

}  // namespace respawn
