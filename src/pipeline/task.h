// Running one task of a run: computing one node on one DuckDB connection.
//
// A task is self-contained: it makes its inputs readable in the run's database (a file source
// as a view over exactly the files fingerprinted; a checkpoint from the local cache or, if not
// there, downloaded from the store and verified; nothing for inputs already defined), runs the
// node's SQL, checks that the files it read are the ones fingerprinted, and, for a checkpointed
// node, exports the result to a local Parquet file that becomes the node's view, so its
// consumers can read it at once. Then it checks the stage's expectations (expect.h) against
// that result: a violation of severity "error" fails the task, so the file is never handed to
// the checkpointer and nothing reads it. Uploading and committing that file is the checkpointer's
// job (checkpointer.h); a task writes nothing to the store.
//
// Crash point: runner:before-stage (a task starts). Pause point: runner:before-read.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "pipeline/dag.h"
#include "pipeline/expect.h"
#include "pipeline/source_reads.h"
#include "pipeline/spec.h"
#include "sql/engine.h"
#include "sql/parquet_transfer.h"
#include "storage/store.h"
#include "util/status.h"

namespace respawn {

/// The tables of one run's database: which nodes are defined (as views or tables), and how to
/// define the others when a task reads them. Thread-safe; one per database.
class LocalTables {
 public:
  /// `cache_dir`: downloaded and exported checkpoints; `source_dir`: downloaded source objects.
  LocalTables(const PipelineSpec& spec, const Dag& dag, Store& store, SourceReads& reads,
              std::string cache_dir, std::string source_dir);

  /// Where exported checkpoints go (the import cache: a later import is a cache hit).
  const std::string& cache_dir() const { return cache_dir_; }

  /// Records the committed checkpoint of `node`, read when a task first needs it.
  void AddCheckpoint(int node, ExportedObject object);
  /// Records that `node` is defined in the database.
  void MarkDefined(int node);
  bool IsDefined(int node) const;

  /// Makes node `node` readable on `conn` if it is not yet: a file source as a view over the
  /// files fingerprinted; a checkpoint (AddCheckpoint) from its local copy or downloaded and
  /// verified (DataLoss, NotFound). Internal for a node nothing can define.
  Status Ensure(Connection& conn, int node);

 private:
  Status DefineSource(Connection& conn, int node);
  Status LoadCheckpoint(Connection& conn, int node, const ExportedObject& object);

  const PipelineSpec& spec_;
  const Dag& dag_;
  Store& store_;
  SourceReads& reads_;
  const std::string cache_dir_;
  const std::string source_dir_;
  mutable std::mutex mu_;  // held while a node is defined: one definition per node
  std::set<int> defined_;  // GUARDED_BY(mu_)
  std::map<int, ExportedObject> checkpoints_;  // GUARDED_BY(mu_)
};

/// What a task needs besides its connection. All pointers outlive the task.
struct TaskEnv {
  const PipelineSpec* spec = nullptr;
  const Dag* dag = nullptr;
  SourceReads* reads = nullptr;  // the listings the fingerprints describe
  LocalTables* tables = nullptr;
  /// Non-empty: a checkpointed node's query is profiled into "<profile_dir>/<node>.json"
  /// (ExportOptions::profile_path).
  std::string profile_dir;
};

/// Where RunTask writes node `node`'s query profile (when env.profile_dir is set).
std::string TaskProfilePath(const TaskEnv& env, int node);

struct TaskResult {
  uint64_t rows = 0;
  double seconds = 0;  // computing (and exporting) it
  /// Checkpointed nodes: the local Parquet file holding the result (the node's view reads it).
  std::optional<ExportedFile> file;
  /// Expectations of severity "warn" the result violates.
  std::vector<ExpectationViolation> warnings;
};

/// Computes node `node` (a stage or a generated source) on `conn`, as described at the top.
/// Errors: the SQL's, as NodeSqlError places them ("<file>:<line>: stage "x": ..."); a file read
/// that changed since it was fingerprinted (FailedPrecondition naming it); an input that could
/// not be read; Aborted/Cancelled when the query was interrupted; FailedPrecondition listing the
/// violated expectations of a stage of severity "error" (ExpectationViolation::message each).
Result<TaskResult> RunTask(const TaskEnv& env, int node, Connection& conn);

/// "<file>:<line>: stage "x"" (or source): names node `node` in messages.
std::string NodeWhere(const PipelineSpec& spec, const Dag& dag, int node);

}  // namespace respawn
