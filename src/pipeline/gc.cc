#include "pipeline/gc.h"

#include <algorithm>
#include <chrono>
#include <set>

#include "util/crash_point.h"

namespace respawn {
namespace {

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// Entry names of what a finished run keeps: outputs, the stages they read, `keep` stages and
// stages nothing reads.
std::set<std::string> ResultEntries(const PipelineSpec& spec, const Dag& dag) {
  std::set<std::string> results;
  for (size_t i = 0; i < spec.outputs.size(); ++i) {
    results.insert("output/" + spec.outputs[i].name);
    results.insert("stage/" + dag.node(dag.output_nodes()[i]).name);
  }
  for (const StageSpec& stage : spec.stages) {
    if (stage.keep) results.insert("stage/" + stage.name);
  }
  for (const DagNode& node : dag.nodes()) {
    if (node.consumers.empty()) results.insert("stage/" + node.name);
  }
  return results;
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

}  // namespace

std::vector<std::string> WorkTableEntries(const PipelineSpec& spec, const Dag& dag,
                                          const ledger::LedgerState& state) {
  std::set<std::string> results = ResultEntries(spec, dag);
  std::vector<std::string> out;
  for (const auto& [name, entry] : state.entries) {
    if (!StartsWith(name, "stage/") && !StartsWith(name, "output/")) continue;
    if (!results.count(name)) out.push_back(name);
  }
  return out;
}

std::vector<std::string> ResultKeys(const PipelineSpec& spec, const Dag& dag,
                                    const ledger::LedgerState& state) {
  std::set<std::string> results = ResultEntries(spec, dag);
  std::set<std::string> keys;
  for (const auto& [name, entry] : state.entries) {
    if (!results.count(name)) continue;
    for (const ledger::DataObject& o : entry.objects) keys.insert(o.key);
  }
  return {keys.begin(), keys.end()};
}

std::set<std::string> RetainedKeys(const ledger::LedgerState& state, int keep_runs) {
  std::set<std::string> live;
  for (const auto& [name, entry] : state.entries) {
    for (const ledger::DataObject& o : entry.objects) live.insert(o.key);
  }
  std::vector<const ledger::Entry*> finished;
  for (const auto& [name, entry] : state.entries) {
    if (StartsWith(name, "run/") && entry.meta.value("result", std::string()) == "done") {
      finished.push_back(&entry);
    }
  }
  std::sort(finished.begin(), finished.end(), [](const ledger::Entry* a, const ledger::Entry* b) {
    return a->sequence > b->sequence;
  });
  for (size_t i = 0; i < finished.size() && i < static_cast<size_t>(keep_runs); ++i) {
    if (!finished[i]->meta.contains("results")) continue;
    for (const auto& key : finished[i]->meta["results"]) {
      if (key.is_string()) live.insert(key.get<std::string>());
    }
  }
  return live;
}

std::vector<std::string> ExpiredRunReports(const ledger::LedgerState& state, int keep_reports,
                                           int keep_runs) {
  std::vector<std::pair<uint64_t, const std::string*>> reports;  // newest first
  for (const auto& [name, entry] : state.entries) {
    if (StartsWith(name, "run/")) reports.emplace_back(entry.sequence, &name);
  }
  std::sort(reports.begin(), reports.end(), std::greater<>());
  std::vector<std::string> out;
  int kept = 1;  // the report about to be committed
  int done = 0;
  for (const auto& [sequence, name] : reports) {
    const bool finished =
        state.entries.at(*name).meta.value("result", std::string()) == "done" && done < keep_runs;
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
  Store& store = ledger.store();
  const int64_t now = options.now_ms != 0 ? options.now_ms : NowMs();
  // List first, then read the ledger: every object in the listing was written before the
  // refresh, so a run that wrote it had claimed its epoch (or committed it) by then.
  std::vector<ObjectInfo> candidates;
  ListOptions list;
  list.prefix = ledger.keys().DataPrefix();
  std::string token;
  do {
    list.continuation_token = token;
    ASSIGN_OR_RETURN(ListPage page, store.List(list));
    ++report.list_requests;
    for (ObjectInfo& o : page.objects) candidates.push_back(std::move(o));
    token = page.next_token;
  } while (!token.empty());
  CrashPoint<"gc:after-list">();
  RETURN_IF_ERROR(ledger.Refresh());

  const ledger::LedgerState state = ledger.state();

  const std::set<std::string> live = RetainedKeys(state, options.keep_runs);
  ASSIGN_OR_RETURN(std::vector<std::string> history, ledger.ReferencedKeys(true));
  std::set<std::string> named_before(history.begin(), history.end());

  // The run holding the epoch may still commit what it wrote, unless it reported its end.
  std::string in_flight = state.epoch_run_id;
  if (!in_flight.empty() && state.entries.count("run/" + in_flight)) in_flight.clear();

  std::vector<std::string> doomed;
  std::vector<uint64_t> doomed_sizes;
  for (const ObjectInfo& o : candidates) {
    if (live.count(o.key)) {
      ++report.live_objects;
      report.live_bytes += o.size;
      continue;
    }
    std::string file = o.key.substr(o.key.rfind('/') + 1);
    if (named_before.count(o.key)) {
      ++report.replaced;
    } else if (!in_flight.empty() && StartsWith(file, in_flight)) {
      ++report.in_flight_kept;
      continue;
    } else if (o.mtime_ms != 0 && now - o.mtime_ms < options.orphan_grace_ms) {
      ++report.young_orphans_kept;
      continue;
    } else {
      ++report.orphans;
    }
    doomed.push_back(o.key);
    doomed_sizes.push_back(o.size);
  }

  const std::vector<std::string> ledger_doomed = LedgerDeletionOrder(ledger, options);
  report.ledger_objects = ledger_doomed.size();
  for (uint64_t size : doomed_sizes) report.deleted_bytes += size;
  report.deleted_objects = doomed.size() + ledger_doomed.size();
  report.deleted_keys = doomed;
  report.deleted_keys.insert(report.deleted_keys.end(), ledger_doomed.begin(), ledger_doomed.end());
  std::sort(report.deleted_keys.begin(), report.deleted_keys.end());
  if (options.dry_run || report.deleted_objects == 0) {
    RETURN_IF_ERROR(SweepAbandonedWrites(ledger, options, now, &report));
    return report;
  }

  CrashPoint<"gc:before-delete">();
  DeleteResult deleted;
  if (!doomed.empty()) {
    ASSIGN_OR_RETURN(deleted, store.DeleteMany(doomed));
  }
  // Ledger objects go one at a time, in order (see LedgerDeletionOrder), after the data.
  for (const std::string& key : ledger_doomed) {
    ++deleted.requests;
    if (Status st = store.Delete(key); !st.ok()) {
      deleted.failed.emplace_back(key, st);
      break;  // keep the order: the rest waits for the next GC
    }
  }
  CrashPoint<"gc:after-delete">();
  report.delete_requests = deleted.requests;
  RETURN_IF_ERROR(SweepAbandonedWrites(ledger, options, now, &report));
  for (const auto& [key, status] : deleted.failed) {
    report.failed.push_back(key + ": " + status.message());
  }
  if (!deleted.failed.empty()) {
    report.deleted_objects -= deleted.failed.size();
    std::set<std::string> failed_keys;
    for (const auto& [key, status] : deleted.failed) failed_keys.insert(key);
    for (size_t i = 0; i < doomed.size(); ++i) {
      if (failed_keys.count(doomed[i])) report.deleted_bytes -= doomed_sizes[i];
    }
    // Ledger objects after a failed one were not attempted.
    for (size_t i = 0; i < ledger_doomed.size(); ++i) {
      if (failed_keys.count(ledger_doomed[i])) {
        report.deleted_objects -= ledger_doomed.size() - i - 1;
        break;
      }
    }
  }
  return report;
}

}  // namespace respawn
