// Garbage collection of a pipeline's store: work-tables nothing retained needs, checkpoints that
// were replaced, objects of attempts that never committed, and ledger records below the floor.
//
// What is live is decided from the ledger, never from names or listings:
//   - every data object named by the current ledger state (stage checkpoints, outputs);
//   - the result objects (checkpoints of output and `keep` stages) named by the run reports of
//     the last `keep_runs` finished runs.
// A LIST of "<ns>/data/" only finds candidates. A candidate that a retained commit record names
// but the current state no longer does (a replaced or trimmed checkpoint) is deleted at once: no
// one can commit an existing object again (attempt names are unique). Any other object was never
// committed: it is deleted only once older than `orphan_grace`, and never while the run that
// wrote it (its id is in the object name) still holds the ledger's epoch without a run report,
// i.e. may still be about to commit it.
//
// Trimming (removing intermediate checkpoints from the ledger once a run finished) is a commit,
// done by the run itself at its end (it holds the epoch), or by `respawn gc` joining the epoch
// of a finished run; GC never claims an epoch, so it never fences a running pipeline. The
// latest run's own work-tables (listed in its report) are trimmed only once [gc]
// work_tables_ttl has passed since it (TrimWorkTables), so that editing a stage reuses them.
//
// Leftovers of writes a killed process never finished (POSIX temporary files, which listings
// never show) are swept by Store::SweepAbandonedWrites once older than `orphan_grace`.
//
// Crash points: gc:after-list, gc:before-delete, gc:after-delete (here), runner:before-gc
// (orchestrator.cc) and gc:after-trim (pipeline_gc.cc). A crash at any of them leaves garbage for
// the next GC, never a live object missing.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "ledger/ledger.h"
#include "pipeline/dag.h"
#include "pipeline/spec.h"
#include "storage/store.h"

namespace respawn {

/// The entries a finished run no longer needs (GC drops them, after work_tables_ttl for the
/// latest run's: TrimWorkTables): checkpoints of stages that other stages read but
/// that feed no output and are not `keep = true` (work-tables), and entries of stages and
/// outputs that are no longer in the pipeline. Names as in the ledger ("stage/x", "output/y").
std::vector<std::string> WorkTableEntries(const PipelineSpec& spec, const Dag& dag,
                                          const ledger::LedgerState& state);

/// The work-table entries of `state` that belong to a node of `dag`: what a run ending in `state`
/// records in its report (RunReportMeta::work_tables), sorted.
std::vector<std::string> RunWorkTables(const PipelineSpec& spec, const Dag& dag,
                                       const ledger::LedgerState& state);

/// What GC drops of the work-tables of `state` (WorkTableEntries) and what it keeps for
/// [gc] work_tables_ttl: those the latest run report lists (RunReportMeta::work_tables) stay
/// until that run is work_tables_ttl old; the rest (stages since removed, work-tables of older
/// runs that the latest did not have) go at once.
struct WorkTableTrim {
  std::vector<std::string> drop;  // sorted
  std::vector<std::string> kept;  // sorted; kept for the TTL
  std::string run_id;             // the latest run, when `kept` is not empty
  int64_t kept_until_ms = 0;      // when `kept` may go (Unix epoch milliseconds)
};

/// The trim GC makes of `state` at `now_ms` (wall time; tests pass a ManualClock's). Errors: a
/// run report that does not decode (nothing is dropped on a guess).
Result<WorkTableTrim> TrimWorkTables(const PipelineSpec& spec, const Dag& dag,
                                     const ledger::LedgerState& state, int64_t now_ms);

/// The trim at the end of a run that has not committed its report yet: `run_tables` are its
/// work-tables (RunWorkTables), kept unless work_tables_ttl is 0.
std::vector<std::string> TrimAtRunEnd(const PipelineSpec& spec, const Dag& dag,
                                      const ledger::LedgerState& state,
                                      const std::vector<std::string>& run_tables);

/// The data keys a run report should retain: objects of the result entries (everything in the
/// state that WorkTableEntries does not return), sorted.
std::vector<std::string> ResultKeys(const PipelineSpec& spec, const Dag& dag,
                                    const ledger::LedgerState& state);

/// The data keys GC keeps: those named by the current state, and the results of the last
/// `keep_runs` finished runs (their run reports). Errors: a run report that does not decode
/// (schema.h): nothing may be deleted on a guess.
Result<std::set<std::string>> RetainedKeys(const ledger::LedgerState& state, int keep_runs);

/// The run reports ("run/<id>") to drop in the commit that adds a new one, so that the ledger
/// keeps at most `keep_reports` of them (its state, and each snapshot, stop growing with
/// history). The newest `keep_runs` finished runs' reports always stay: they retain results, and
/// so does a report that does not decode.
std::vector<std::string> ExpiredRunReports(const ledger::LedgerState& state, int keep_reports,
                                           int keep_runs);

struct GcOptions {
  bool dry_run = false;
  int64_t now_ms = 0;  // 0: the current time
  int keep_runs = 1;
  int64_t orphan_grace_ms = 3'600'000;
  /// Ledger keys below the GC floor (from Ledger::CollectObsolete) to delete as well.
  std::vector<std::string> ledger_garbage;
};

struct GcReport {
  uint64_t live_objects = 0;
  uint64_t live_bytes = 0;
  uint64_t deleted_objects = 0;  // with dry_run: would delete
  uint64_t deleted_bytes = 0;
  uint64_t replaced = 0;  // of which: committed once, no longer named
  uint64_t orphans = 0;   // of which: never committed, older than the grace period
  uint64_t young_orphans_kept = 0;
  uint64_t in_flight_kept = 0;    // objects of a run that may still commit them
  uint64_t ledger_objects = 0;    // ledger records and snapshots below the floor
  uint64_t abandoned_writes = 0;  // temporary files of killed writers, older than the grace
  uint64_t list_requests = 0;
  uint64_t delete_requests = 0;           // DeleteObjects requests (S3) or unlinks (POSIX)
  std::vector<std::string> deleted_keys;  // sorted
  std::vector<std::string> failed;        // "key: error"
};

/// Deletes what no retained commit needs under the ledger's namespace. `ledger` may be read-only.
Result<GcReport> CollectGarbage(ledger::Ledger& ledger, const GcOptions& options);

}  // namespace respawn
