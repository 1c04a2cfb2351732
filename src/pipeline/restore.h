// `respawn ls --runs` and `respawn restore`: the outputs of an earlier finished run, written
// again from the checkpoints that run wrote them from, as long as GC retains those ([gc]
// keep_runs keeps the results of the last N finished runs).
//
// Each finished run's report names, per output, the checkpoint it read (schema.h,
// RunOutputMeta). A restore imports that checkpoint (verified: size, xxh3, rows) and writes it
// through the output writer a run uses (outputs.h: the output's format and options, atomic
// replace), to the output's own path or elsewhere. It writes nothing to the ledger: the output
// entry still records the file the last run wrote, so the next run sees a restored file as not
// current and writes it again.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ledger/coordinator.h"
#include "ledger/record.h"
#include "pipeline/dag.h"
#include "pipeline/schema.h"
#include "pipeline/spec.h"
#include "storage/store.h"
#include "util/status.h"

namespace respawn {

/// A run recorded in the ledger, and whether its outputs can be restored.
struct RestorableRun {
  std::string run_id;
  int64_t finished_at_ms = 0;
  std::string result;  // "done", "failed", "interrupted"
  /// Every object of every output's checkpoint is retained by GC (RetainedKeys), and the report
  /// names them. Otherwise `why_not` says why.
  bool restorable = false;
  std::string why_not;
  std::vector<RunOutputMeta> outputs;
};

/// The runs of `state` that finished, newest first, each with its outputs and whether GC
/// retains them under `keep_runs`. Errors: a run report that does not decode (schema.h).
Result<std::vector<RestorableRun>> ListRestorableRuns(const ledger::LedgerState& state,
                                                      int keep_runs);

/// The run whose id is `id` or starts with it, among `runs`. InvalidArgument for an empty,
/// unknown or ambiguous id (listing the restorable runs); NotFound for a run that is not
/// restorable (saying why and which are).
Result<const RestorableRun*> FindRestorableRun(const std::vector<RestorableRun>& runs,
                                               std::string_view id);

/// The outputs a finished run just wrote from checkpoints, as its report records them: each
/// output of `spec` whose node has a single-object checkpoint entry in `state` (outputs that
/// read source files directly have none).
std::vector<RunOutputMeta> RunOutputCheckpoints(const PipelineSpec& spec, const Dag& dag,
                                                const ledger::LedgerState& state);

/// Where `--to` writes: a local path (made absolute against the working directory) or an
/// s3:// / memory:// URL.
DataLocation RestoreDestination(std::string_view to);

struct RestoreOptions {
  std::string run;                   // a run id or a prefix of one
  std::vector<std::string> outputs;  // empty: every output the run recorded
  std::string to;                    // "" = each output's own path; else exactly one output
  std::shared_ptr<ledger::CommitCoordinator> coordinator;  // read the ledger through it
};

struct RestoredOutput {
  std::string output;
  std::string stage;
  std::string path;    // written (absolute path or URL)
  uint64_t rows = 0;   // rows of the checkpoint written
  uint64_t bytes = 0;  // bytes of the file written
};

struct RestoreResult {
  std::string run_id;
  int64_t finished_at_ms = 0;
  std::vector<RestoredOutput> outputs;
};

/// Writes the outputs of run `options.run` as they were after it. InvalidArgument for an unknown
/// or ambiguous run, an output the pipeline or the run does not have (did-you-mean), `--to`
/// with several outputs; NotFound for a run whose results GC dropped, or a data object missing;
/// DataLoss for one that does not verify (both with the fix). Writes nothing to the ledger.
Result<RestoreResult> RestoreOutputs(const PipelineSpec& spec, std::shared_ptr<Store> store,
                                     const RestoreOptions& options);

}  // namespace respawn
