// What a pipeline keeps in its ledger: the names of its entries and the metadata of each kind,
// each with one encoder and one non-throwing, versioned decoder (LevelDB's VersionEdit is the
// model). Nothing else in src/pipeline/ formats an entry name or reads an entry's JSON by hand.
//
// Entries of the namespace "pipelines/<name>" (PipelineNamespace):
//   stage/<node>              a node's checkpoint: one data object; fingerprint = the node's;
//                             metadata CheckpointMeta
//   stage/<node>/p<NNNN>      one partition of a node's checkpoint (same metadata); the
//                             partition is a result or a work-table with its node
//   output/<output>           an output written outside the store; fingerprint =
//                             "<node fingerprint>/<format>"; metadata OutputMeta
//   run/<run id>              a run report; fingerprint "run"; metadata RunReportMeta
//   owner                     the pipeline file that owns the namespace (owner.h); OwnerMeta
//
// Metadata is a JSON object. Its version is the field "v" (absent in what respawn wrote before
// it was versioned: version 1). A decoder accepts versions up to kMetaVersion and refuses a
// newer one (FailedPrecondition: upgrade respawn); a field of the wrong type is DataLoss naming
// the entry and the field; a missing field takes its default. Field names never change
// meaning: stores written by earlier versions stay readable.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ledger/record.h"
#include "pipeline/spec.h"
#include "util/status.h"

namespace respawn {

/// The ledger namespace of a pipeline in its store: "pipelines/<name>".
std::string PipelineNamespace(const PipelineSpec& spec);

/// The version of the metadata this code writes, and the newest it reads.
inline constexpr int kMetaVersion = 1;

enum class EntryKind { kStage, kOutput, kRun, kOwner };

/// A parsed entry name.
struct EntryName {
  EntryKind kind = EntryKind::kStage;
  /// The node (kStage), output (kOutput) or run id (kRun); empty for kOwner.
  std::string name;
  /// kStage only: the partition, when the entry holds one partition of the node.
  std::optional<uint32_t> partition;

  /// "stage/x", "stage/x/p0007", "output/y", "run/<id>", "owner".
  std::string Format() const;
  /// nullopt for a name that is none of the above (never written by a pipeline).
  static std::optional<EntryName> Parse(std::string_view entry);
  friend bool operator==(const EntryName&, const EntryName&) = default;
};

std::string StageEntryName(std::string_view node);
std::string PartitionEntryName(std::string_view node, uint32_t partition);
std::string OutputEntryName(std::string_view output);
std::string RunEntryName(std::string_view run_id);
inline constexpr std::string_view kOwnerEntry = "owner";

/// stage/<node>[/p<NNNN>]: what a checkpoint holds.
struct CheckpointMeta {
  uint64_t rows = 0;
  uint64_t bytes = 0;          // Parquet bytes
  double compute_seconds = 0;  // what computing it took
  std::string components;      // FingerprintComponents::Serialize(): explains a change
  /// ExpectationsId (expect.h) of the expectations it passed; "" when the stage had none. A
  /// stage whose expectations changed since is computed again (and checked), not reused.
  std::string expectations;
  friend bool operator==(const CheckpointMeta&, const CheckpointMeta&) = default;
};

/// output/<output>: the file written, to tell whether it is still current.
struct OutputMeta {
  std::string path;  // as resolved (absolute path or URL)
  uint64_t size = 0;
  uint64_t xxh3 = 0;
  std::string etag;  // URL outputs: the version written ("" if unknown)
  friend bool operator==(const OutputMeta&, const OutputMeta&) = default;
};

/// One node in a run report.
struct RunNodeMeta {
  std::string name;
  std::string action;  // NodeActionName
  std::string reason;
  double seconds = 0;
  /// Expectations of severity "warn" it violated (ExpectationViolation::message each).
  std::vector<std::string> warnings;
  friend bool operator==(const RunNodeMeta&, const RunNodeMeta&) = default;
};

/// Requests a run made to its store.
struct RequestCounts {
  uint64_t puts = 0, gets = 0, stats = 0, lists = 0, deletes = 0;
  uint64_t bytes_written = 0, bytes_read = 0;
  friend bool operator==(const RequestCounts&, const RequestCounts&) = default;
};

/// One output of a finished run: the checkpoint it was written from, which `respawn restore`
/// writes again as long as GC retains its objects.
struct RunOutputMeta {
  std::string output;
  std::string stage;  // the node the output reads
  uint64_t rows = 0;
  uint64_t bytes = 0;                       // Parquet bytes of the checkpoint
  std::vector<ledger::DataObject> objects;  // the checkpoint's data objects
  friend bool operator==(const RunOutputMeta&, const RunOutputMeta&) = default;
};

/// run/<run id>: what a run did.
struct RunReportMeta {
  std::string result;  // "done", "partial" (done, with --select), "failed", "interrupted"
  double seconds = 0;
  double saved_seconds = 0;
  int computed = 0;
  int reused = 0;
  std::string error;
  std::vector<RunNodeMeta> nodes;
  std::optional<RequestCounts> requests;  // when recorded
  /// Finished runs with GC: the data keys of their results, which GC retains for the last
  /// keep_runs finished runs.
  std::optional<std::vector<std::string>> results;
  /// Finished runs: each output read from a checkpoint, with that checkpoint (absent in reports
  /// written before restore existed).
  std::vector<RunOutputMeta> outputs;
  /// The work-table entries (checkpoints that only other stages read) in the ledger when the
  /// run ended; GC drops them then or once [gc] work_tables_ttl has passed (gc.h). A plan that
  /// finds one of them gone says GC dropped it after this run (DroppedWorkTables).
  std::optional<std::vector<std::string>> work_tables;
  bool finished() const { return result == "done"; }
  friend bool operator==(const RunReportMeta&, const RunReportMeta&) = default;
};

/// owner: the pipeline file that owns the namespace.
struct OwnerMeta {
  std::string path;
  std::string id;
  friend bool operator==(const OwnerMeta&, const OwnerMeta&) = default;
};

nlohmann::json EncodeCheckpointMeta(const CheckpointMeta& meta);
nlohmann::json EncodeOutputMeta(const OutputMeta& meta);
nlohmann::json EncodeRunReportMeta(const RunReportMeta& meta);
nlohmann::json EncodeOwnerMeta(const OwnerMeta& meta);

// Decoders: `entry` names the entry in messages. Errors as described at the top.
Result<CheckpointMeta> DecodeCheckpointMeta(const nlohmann::json& meta, std::string_view entry);
Result<OutputMeta> DecodeOutputMeta(const nlohmann::json& meta, std::string_view entry);
Result<RunReportMeta> DecodeRunReportMeta(const nlohmann::json& meta, std::string_view entry);
Result<OwnerMeta> DecodeOwnerMeta(const nlohmann::json& meta, std::string_view entry);

/// A run report entry of a ledger state, decoded.
struct RunReportEntry {
  std::string run_id;
  const ledger::Entry* entry = nullptr;  // into the state it was read from
  RunReportMeta meta;
};

/// Every run report of `state`, oldest first (by the sequence that committed it). Errors: the
/// first report that does not decode.
Result<std::vector<RunReportEntry>> ReadRunReports(const ledger::LedgerState& state);

/// The checkpoints GC dropped from `state`: each entry that a run report lists among its
/// work_tables and `state` no longer holds, with the id of the newest run that lists it (GC
/// dropped it after that run). Reports that do not decode are passed over: this only explains.
std::map<std::string, std::string> DroppedWorkTables(const ledger::LedgerState& state);

}  // namespace respawn
