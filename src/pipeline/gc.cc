#include "pipeline/gc.h"

#include <algorithm>
#include <chrono>
#include <set>
#include <tuple>

#include "pipeline/schema.h"
#include "util/crash_point.h"

namespace respawn {
namespace {

// Entry names of what a finished run keeps: outputs, the stages they read, `keep` stages and
// stages nothing reads (unpartitioned names: a partition is a result with its stage).
std::set<std::string> ResultEntries(const PipelineSpec& spec, const Dag& dag) {
  std::set<std::string> results;
  for (size_t i = 0; i < spec.outputs.size(); ++i) {
    results.insert(OutputEntryName(spec.outputs[i].name));
    results.insert(StageEntryName(dag.node(dag.output_nodes()[i]).name));
  }
  for (const StageSpec& stage : spec.stages) {
    if (stage.keep) results.insert(StageEntryName(stage.name));
  }
  for (const DagNode& node : dag.nodes()) {
    if (node.consumers.empty()) results.insert(StageEntryName(node.name));
  }
  return results;
}

// Whether `name` is a checkpoint or output entry, and if so whether it is among `results`.
enum class EntryRole { kOther, kResult, kWorkTable };
EntryRole RoleOf(const std::string& name, const std::set<std::string>& results) {
  std::optional<EntryName> parsed = EntryName::Parse(name);
  if (!parsed || (parsed->kind != EntryKind::kStage && parsed->kind != EntryKind::kOutput)) {
    return EntryRole::kOther;
  }
  parsed->partition.reset();
  return results.count(parsed->Format()) ? EntryRole::kResult : EntryRole::kWorkTable;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Ledger garbage in the order it must be deleted: snapshots below the floor first, then records,
// each in ascending sequence. A GC that stops part-way then leaves a state recovery can still
// read: any snapshot left below the floor still has every record after it, and the records left
// are a gap-free run ending at the newest one (never a stray old record 1 above a hole).
std::vector<std::string> LedgerDeletionOrder(const ledger::Ledger& ledger,
                                             const GcOptions& options) {
  std::vector<std::pair<uint64_t, std::string>> snapshots, records;
  for (const std::string& key : options.ledger_garbage) {
    if (uint64_t s = ledger.keys().SequenceOfSnapshot(key); s > 0) {
      snapshots.emplace_back(s, key);
    } else {
      records.emplace_back(ledger.keys().SequenceOfRecord(key), key);
    }
  }
  std::sort(snapshots.begin(), snapshots.end());
  std::sort(records.begin(), records.end());
  std::vector<std::string> out;
  for (auto* group : {&snapshots, &records}) {
    for (auto& [seq, key] : *group) out.push_back(std::move(key));
  }
  return out;
}

// Temporary files younger than this stay whatever orphan_grace says: a live writer locks its
// file right after creating it, and this covers the moment in between.
constexpr int64_t kMinAbandonedWriteAgeMs = 60'000;

Status SweepAbandonedWrites(ledger::Ledger& ledger, const GcOptions& options, int64_t now,
                            GcReport* report) {
  const std::string prefix = ledger.ns().empty() ? "" : ledger.ns() + "/";
  const int64_t grace = std::max(options.orphan_grace_ms, kMinAbandonedWriteAgeMs);
  ASSIGN_OR_RETURN(std::vector<ObjectInfo> swept,
                   ledger.store().SweepAbandonedWrites(prefix, now - grace, options.dry_run));
  for (const ObjectInfo& o : swept) {
    ++report->abandoned_writes;
    ++report->deleted_objects;
    report->deleted_bytes += o.size;
    report->deleted_keys.push_back(o.key);
  }
  std::sort(report->deleted_keys.begin(), report->deleted_keys.end());
  return Status::OK();
}

Result<std::vector<ObjectInfo>> ListDataObjects(ledger::Ledger& ledger, GcReport* report) {
  std::vector<ObjectInfo> candidates;
  ListOptions list;
  list.prefix = ledger.keys().DataPrefix();
  std::string token;
  do {
    list.continuation_token = token;
    ASSIGN_OR_RETURN(ListPage page, ledger.store().List(list));
    ++report->list_requests;
    for (ObjectInfo& o : page.objects) candidates.push_back(std::move(o));
    token = page.next_token;
  } while (!token.empty());
  return candidates;
}

// Data objects to delete, with their sizes.
struct Doomed {
  std::vector<std::string> keys;
  std::vector<uint64_t> sizes;
};

// Sorts the listed `candidates` into live, kept (young or in-flight orphans) and doomed ones,
// counting each in `report`.
Result<Doomed> FindDoomed(ledger::Ledger& ledger, const GcOptions& options, int64_t now,
                          const std::vector<ObjectInfo>& candidates, GcReport* report) {
  const ledger::LedgerState state = ledger.state();
  ASSIGN_OR_RETURN(const std::set<std::string> live, RetainedKeys(state, options.keep_runs));
  ASSIGN_OR_RETURN(std::vector<std::string> history, ledger.ReferencedKeys(true));
  std::set<std::string> named_before(history.begin(), history.end());

  // The run holding the epoch may still commit what it wrote, unless it reported its end.
  std::string in_flight = state.epoch_run_id;
  if (!in_flight.empty() && state.entries.count(RunEntryName(in_flight))) in_flight.clear();

  Doomed doomed;
  for (const ObjectInfo& o : candidates) {
    if (live.count(o.key)) {
      ++report->live_objects;
      report->live_bytes += o.size;
      continue;
    }
    std::optional<ledger::DataKeyParts> parts = ledger.keys().ParseDataKey(o.key);
    if (named_before.count(o.key)) {
      ++report->replaced;
    } else if (!in_flight.empty() && parts && parts->run_id == in_flight) {
      ++report->in_flight_kept;
      continue;
    } else if (o.mtime_ms != 0 && now - o.mtime_ms < options.orphan_grace_ms) {
      ++report->young_orphans_kept;
      continue;
    } else {
      ++report->orphans;
    }
    doomed.keys.push_back(o.key);
    doomed.sizes.push_back(o.size);
  }
  return doomed;
}

// Takes what `deleted` failed to delete back out of `report`'s counts.
void CountFailures(const DeleteResult& deleted, const Doomed& doomed,
                   const std::vector<std::string>& ledger_doomed, GcReport* report) {
  for (const auto& [key, status] : deleted.failed) {
    report->failed.push_back(key + ": " + status.message());
  }
  if (deleted.failed.empty()) return;
  report->deleted_objects -= deleted.failed.size();
  std::set<std::string> failed_keys;
  for (const auto& [key, status] : deleted.failed) failed_keys.insert(key);
  for (size_t i = 0; i < doomed.keys.size(); ++i) {
    if (failed_keys.count(doomed.keys[i])) report->deleted_bytes -= doomed.sizes[i];
  }
  // Ledger objects after a failed one were not attempted.
  for (size_t i = 0; i < ledger_doomed.size(); ++i) {
    if (failed_keys.count(ledger_doomed[i])) {
      report->deleted_objects -= ledger_doomed.size() - i - 1;
      break;
    }
  }
}

}  // namespace

std::vector<std::string> WorkTableEntries(const PipelineSpec& spec, const Dag& dag,
                                          const ledger::LedgerState& state) {
  std::set<std::string> results = ResultEntries(spec, dag);
  std::vector<std::string> out;
  for (const auto& [name, entry] : state.entries) {
    if (RoleOf(name, results) == EntryRole::kWorkTable) out.push_back(name);
  }
  return out;
}

std::vector<std::string> RunWorkTables(const PipelineSpec& spec, const Dag& dag,
                                       const ledger::LedgerState& state) {
  std::vector<std::string> out;
  for (const std::string& name : WorkTableEntries(spec, dag, state)) {
    std::optional<EntryName> parsed = EntryName::Parse(name);
    if (parsed->kind == EntryKind::kStage && dag.Find(parsed->name)) out.push_back(name);
  }
  return out;
}

Result<WorkTableTrim> TrimWorkTables(const PipelineSpec& spec, const Dag& dag,
                                     const ledger::LedgerState& state, int64_t now_ms) {
  ASSIGN_OR_RETURN(std::vector<RunReportEntry> runs, ReadRunReports(state));
  std::set<std::string> young;
  WorkTableTrim trim;
  const int64_t ttl = spec.gc.work_tables_ttl_ms;
  if (!runs.empty() && runs.back().meta.work_tables && ttl > 0 &&
      now_ms - runs.back().entry->committed_at_ms < ttl) {
    young.insert(runs.back().meta.work_tables->begin(), runs.back().meta.work_tables->end());
    trim.run_id = runs.back().run_id;
    trim.kept_until_ms = runs.back().entry->committed_at_ms + ttl;
  }
  for (std::string& name : WorkTableEntries(spec, dag, state)) {
    (young.count(name) ? trim.kept : trim.drop).push_back(std::move(name));
  }
  if (trim.kept.empty()) {
    trim.run_id.clear();
    trim.kept_until_ms = 0;
  }
  return trim;
}

std::vector<std::string> TrimAtRunEnd(const PipelineSpec& spec, const Dag& dag,
                                      const ledger::LedgerState& state,
                                      const std::vector<std::string>& run_tables) {
  const std::set<std::string> keep(run_tables.begin(), run_tables.end());
  std::vector<std::string> drop;
  for (std::string& name : WorkTableEntries(spec, dag, state)) {
    if (spec.gc.work_tables_ttl_ms == 0 || !keep.count(name)) drop.push_back(std::move(name));
  }
  return drop;
}

std::vector<std::string> ResultKeys(const PipelineSpec& spec, const Dag& dag,
                                    const ledger::LedgerState& state) {
  std::set<std::string> results = ResultEntries(spec, dag);
  std::set<std::string> keys;
  for (const auto& [name, entry] : state.entries) {
    if (RoleOf(name, results) != EntryRole::kResult) continue;
    for (const ledger::DataObject& o : entry.objects) keys.insert(o.key);
  }
  return {keys.begin(), keys.end()};
}

Result<std::set<std::string>> RetainedKeys(const ledger::LedgerState& state, int keep_runs) {
  std::set<std::string> live;
  for (const auto& [name, entry] : state.entries) {
    for (const ledger::DataObject& o : entry.objects) live.insert(o.key);
  }
  ASSIGN_OR_RETURN(std::vector<RunReportEntry> runs, ReadRunReports(state));
  int kept = 0;
  for (auto it = runs.rbegin(); it != runs.rend() && kept < keep_runs; ++it) {
    if (!it->meta.finished()) continue;
    ++kept;
    if (it->meta.results) live.insert(it->meta.results->begin(), it->meta.results->end());
  }
  return live;
}

std::vector<std::string> ExpiredRunReports(const ledger::LedgerState& state, int keep_reports,
                                           int keep_runs) {
  // Newest first; a report that does not decode counts as a finished run's (it stays).
  std::vector<std::tuple<uint64_t, const std::string*, bool>> reports;
  for (const auto& [name, entry] : state.entries) {
    std::optional<EntryName> parsed = EntryName::Parse(name);
    if (!parsed || parsed->kind != EntryKind::kRun) continue;
    Result<RunReportMeta> meta = DecodeRunReportMeta(entry.meta, name);
    reports.emplace_back(entry.sequence, &name, !meta.ok() || meta->finished());
  }
  std::sort(reports.begin(), reports.end(), std::greater<>());
  std::vector<std::string> out;
  int kept = 1;  // the report about to be committed
  int done = 0;
  for (const auto& [sequence, name, was_done] : reports) {
    const bool finished = was_done && done < keep_runs;
    done += finished ? 1 : 0;
    if (kept < keep_reports || finished) {
      ++kept;
      continue;
    }
    out.push_back(*name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<GcReport> CollectGarbage(ledger::Ledger& ledger, const GcOptions& options) {
  GcReport report;
  const int64_t now = options.now_ms != 0 ? options.now_ms : NowMs();
  // List first, then read the ledger: every object in the listing was written before the
  // refresh, so a run that wrote it had claimed its epoch (or committed it) by then.
  ASSIGN_OR_RETURN(std::vector<ObjectInfo> candidates, ListDataObjects(ledger, &report));
  CrashPoint<"gc:after-list">();
  RETURN_IF_ERROR(ledger.Refresh());
  ASSIGN_OR_RETURN(Doomed doomed, FindDoomed(ledger, options, now, candidates, &report));

  const std::vector<std::string> ledger_doomed = LedgerDeletionOrder(ledger, options);
  report.ledger_objects = ledger_doomed.size();
  for (uint64_t size : doomed.sizes) report.deleted_bytes += size;
  report.deleted_objects = doomed.keys.size() + ledger_doomed.size();
  report.deleted_keys = doomed.keys;
  report.deleted_keys.insert(report.deleted_keys.end(), ledger_doomed.begin(), ledger_doomed.end());
  std::sort(report.deleted_keys.begin(), report.deleted_keys.end());
  if (options.dry_run || report.deleted_objects == 0) {
    RETURN_IF_ERROR(SweepAbandonedWrites(ledger, options, now, &report));
    return report;
  }

  CrashPoint<"gc:before-delete">();
  DeleteResult deleted;
  if (!doomed.keys.empty()) {
    ASSIGN_OR_RETURN(deleted, ledger.store().DeleteMany(doomed.keys));
  }
  // Ledger objects go one at a time, in order (see LedgerDeletionOrder), after the data.
  for (const std::string& key : ledger_doomed) {
    ++deleted.requests;
    if (Status st = ledger.store().Delete(key); !st.ok()) {
      deleted.failed.emplace_back(key, st);
      break;  // keep the order: the rest waits for the next GC
    }
  }
  CrashPoint<"gc:after-delete">();
  report.delete_requests = deleted.requests;
  RETURN_IF_ERROR(SweepAbandonedWrites(ledger, options, now, &report));
  CountFailures(deleted, doomed, ledger_doomed, &report);
  return report;
}

}  // namespace respawn
