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
  std::sort(finished.begin(), finished.end(),
            [](const ledger::Entry* a, const ledger::Entry* b) { return a->sequence > b->sequence; });
  for (size_t i = 0; i < finished.size() && i < static_cast<size_t>(keep_runs); ++i) {
    if (!finished[i]->meta.contains("results")) continue;
    for (const auto& key : finished[i]->meta["results"]) {
      if (key.is_string()) live.insert(key.get<std::string>());
    }
  }
  return live;
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

  for (const std::string& key : options.ledger_garbage) {
    doomed.push_back(key);
    doomed_sizes.push_back(0);
    ++report.ledger_objects;
  }
  for (uint64_t size : doomed_sizes) report.deleted_bytes += size;
  report.deleted_objects = doomed.size();
  report.deleted_keys = doomed;
  std::sort(report.deleted_keys.begin(), report.deleted_keys.end());
  if (options.dry_run || doomed.empty()) return report;

  CrashPoint<"gc:before-delete">();
  ASSIGN_OR_RETURN(DeleteResult deleted, store.DeleteMany(doomed));
  CrashPoint<"gc:after-delete">();
  report.delete_requests = deleted.requests;
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
  }
  return report;
}

}  // namespace respawn
