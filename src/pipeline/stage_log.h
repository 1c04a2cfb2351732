// A stage's last computation, for `respawn log`: the SQL as it ran, when, how long, the rows and
// bytes, why it was computed, its error if it failed, and DuckDB's profile of the query (the
// operator tree with each operator's time and rows, what EXPLAIN ANALYZE prints).
//
// One JSON object per node at "<namespace>/logs/<node>.json" in the pipeline's store, replaced
// by each computation. It is a diagnostic, outside the ledger: written after the node's commit
// (or its failure) by a plain put, never read by a run, and losing it loses nothing else. GC
// does not list logs/ (it lists data/), so a node's log lives as long as the node is in the file.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "pipeline/spec.h"
#include "storage/store.h"
#include "util/status.h"

namespace respawn {

struct StageLog {
  std::string node;
  std::string run_id;
  std::string result;  // "computed" or "failed"
  std::string reason;  // why it was computed ("changed SQL", ...)
  std::string error;   // result "failed": the message
  std::string fingerprint;
  std::string sql;  // as run: params substituted, inputs as their names
  int64_t finished_at_ms = 0;
  double seconds = 0;
  uint64_t rows = 0;
  uint64_t bytes = 0;  // of the checkpoint, when it has one
  /// DuckDB's JSON profile of the query; null when none was taken (a failure, a stage without a
  /// checkpoint).
  nlohmann::json profile;
};

/// "<ns>/logs/<node>.json".
std::string StageLogKey(const std::string& ns, const std::string& node);

/// Writes `log` (a plain put: the object is replaced).
Status WriteStageLog(Store& store, const std::string& ns, const StageLog& log);

/// NotFound when no computation of `node` was logged; DataLoss when the object is not a log.
Result<StageLog> ReadStageLog(Store& store, const std::string& ns, const std::string& node);

/// The log of `node` of `spec` in `store`, for `respawn log`: InvalidArgument when the pipeline
/// has no such stage or generated source (with a did-you-mean); NotFound, saying how to get one,
/// when none was written.
Result<StageLog> FindStageLog(const PipelineSpec& spec, Store& store, const std::string& node);

nlohmann::json EncodeStageLog(const StageLog& log);
Result<StageLog> DecodeStageLog(const nlohmann::json& j, std::string_view what);

/// DuckDB's JSON profile as an indented operator tree, one operator per line:
/// "HASH_GROUP_BY  0.012 s  5 rows  (Groups: #0)". Empty for a null profile.
std::string FormatProfile(const nlohmann::json& profile);

}  // namespace respawn
