// A run's outputs: files (or store objects) written outside the ledger once the nodes they read
// are committed, each recorded by a commit of "output/<name>" (schema.h) so that a later run
// knows whether the file there is still the one it wrote.
//
// A local output is written to a temporary file beside it (".<name>.respawn-tmp-<pid>-<rnd>",
// removed by the next run once its pid is gone), fsynced and renamed over the old one. A
// partitioned output (a folder in hive layout) is written to a temporary folder beside it,
// fsynced file by file and swapped with the old folder by one renameat2(RENAME_EXCHANGE); the
// old one is then removed. A URL output is one put of the finished file. Right before either, the
// run checks that it still holds the ledger's epoch, so a zombie does not overwrite what the run
// that replaced it wrote.
//
// Crash points: runner:before-output, runner:after-output (written, not yet committed).
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "ledger/ledger.h"
#include "pipeline/dag.h"
#include "pipeline/runner.h"
#include "pipeline/source_reads.h"
#include "pipeline/spec.h"
#include "pipeline/task.h"
#include "sql/engine.h"
#include "util/hash.h"
#include "util/status.h"

namespace respawn {

/// What writing outputs needs. All pointers outlive the calls.
struct OutputEnv {
  const PipelineSpec* spec = nullptr;
  const Dag* dag = nullptr;
  ledger::Ledger* ledger = nullptr;
  SourceReads* reads = nullptr;
  LocalTables* tables = nullptr;
  std::string temp_dir;  // for URL outputs: the file is written here, then put
  bool fresh = false;    // never current: always rewritten
};

/// Where an output file goes: the output's own location, or another (`respawn restore --to`).
struct OutputTarget {
  std::string path;  // absolute local path, or URL
  bool is_url = false;
  std::string temp_dir;  // URL targets: the file is written here, then put
};

struct WrittenOutputFile {
  FileDigest digest;  // of the file written
  std::string etag;   // URL targets: the version written ("" if unknown)
};

/// Writes the table or view `table` on `conn` as the output `out` of `spec` (its format and COPY
/// options; Parquet columns as sql/parquet_types.h writes outputs) to `target`: a local file
/// through a temporary file beside it (see the top), fsynced and renamed over the old one; a URL
/// with one put. `before_publish` (may be empty) runs once the file is complete, right before it
/// replaces anything; its error removes the temporary file and is returned. Writes nothing to
/// the ledger. Errors name the output and its line.
Result<WrittenOutputFile> WriteOutputFile(const PipelineSpec& spec, const OutputSpec& out,
                                          std::string_view table, Connection& conn,
                                          const OutputTarget& target,
                                          const std::function<Status()>& before_publish);

/// Whether output `index` is current: committed for `node` (the node it reads, with its
/// fingerprint) in the same format and path, and the file (or object) there still has the size
/// and checksum (or, for a URL, ETag) recorded. Fills out->name, path and, when current, bytes.
bool IsOutputCurrent(const OutputEnv& env, size_t index, const NodeReport& node, OutputReport* out);

/// Writes output `index` from `node`'s table on `conn` and commits it, unless it is current and
/// `node` was not computed in this run. Fills `out`. Errors name the output and its line.
Status WriteOutput(const OutputEnv& env, size_t index, const NodeReport& node, Connection& conn,
                   OutputReport* out);

}  // namespace respawn
