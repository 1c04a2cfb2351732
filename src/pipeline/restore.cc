#include "pipeline/restore.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include "ledger/ledger.h"
#include "pipeline/gc.h"
#include "pipeline/outputs.h"
#include "sql/engine.h"
#include "sql/parquet_transfer.h"

namespace respawn {
namespace {

// How `ls --runs` prints a run id: enough to be unique in practice, and what restore accepts.
constexpr size_t kShortRunId = 8;

uint64_t MetaU64(const nlohmann::json& meta, const char* key) {
  auto it = meta.find(key);
  return it != meta.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}

// Whether GC retains every object the run's outputs were written from.
bool AllRetained(const std::vector<RunOutputMeta>& outputs, const std::set<std::string>& live) {
  for (const RunOutputMeta& o : outputs) {
    for (const ledger::DataObject& d : o.objects) {
      if (!live.count(d.key)) return false;
    }
  }
  return true;
}

// "restorable runs: 1a2b3c4d (2024-...), ..." or a sentence saying there are none.
std::string RestorableList(const std::vector<RestorableRun>& runs) {
  std::string list;
  for (const RestorableRun& r : runs) {
    if (!r.restorable) continue;
    list += (list.empty() ? "" : ", ") + r.run_id.substr(0, kShortRunId);
  }
  return list.empty() ? "no run is restorable" : "restorable runs, newest first: " + list;
}

// The run's outputs to write: `names` (each defined by the pipeline and recorded by the run), or
// every recorded output the pipeline still defines.
Result<std::vector<const RunOutputMeta*>> SelectOutputs(const PipelineSpec& spec,
                                                        const RestorableRun& run,
                                                        const std::vector<std::string>& names) {
  std::vector<std::string> defined;
  for (const OutputSpec& o : spec.outputs) defined.push_back(o.name);
  std::vector<const RunOutputMeta*> out;
  for (const std::string& name : names) {
    const OutputSpec* o = spec.FindOutput(name);
    if (o == nullptr) {
      return InvalidArgument(spec.display_name + ": no output is named \"" + name + "\"" +
                             DidYouMeanSuffix(name, defined));
    }
    auto recorded = std::find_if(run.outputs.begin(), run.outputs.end(),
                                 [&](const RunOutputMeta& r) { return r.output == o->name; });
    if (recorded == run.outputs.end()) {
      return InvalidArgument("run " + run.run_id.substr(0, kShortRunId) + " wrote no output \"" +
                             o->name + "\" from a checkpoint (it reads source files directly, " +
                             "or the run predates it)");
    }
    out.push_back(&*recorded);
  }
  if (!names.empty()) return out;
  for (const RunOutputMeta& r : run.outputs) {
    if (spec.FindOutput(r.output) != nullptr) out.push_back(&r);
  }
  if (out.empty()) {
    return InvalidArgument("run " + run.run_id.substr(0, kShortRunId) +
                           " wrote none of the outputs " + spec.display_name + " defines now");
  }
  return out;
}

// Says what to do when the checkpoint of `o` cannot be read back.
Status ExplainImportError(const Status& error, const RestorableRun& run, const RunOutputMeta& o,
                          const PipelineSpec& spec) {
  const std::string what = "output \"" + o.output + "\" of run " +
                           run.run_id.substr(0, kShortRunId) + " (checkpoint of stage \"" +
                           o.stage + "\")";
  const std::string fix = "`respawn verify " + spec.display_name +
                          "` lists what is damaged; restore another run (`respawn ls " +
                          spec.display_name + " --runs`) or run the pipeline as it was then";
  if (error.IsNotFound()) {
    return NotFound(what + ": its data object is gone from the store (" + error.message() + "); " +
                    fix);
  }
  if (error.code() == StatusCode::kDataLoss) {
    return DataLoss(what + ": its data object does not verify (" + error.message() + "); " + fix);
  }
  return error.WithContext(what);
}

// Imports the checkpoint of `o` on `conn` and writes it as its output to `target`.
Result<RestoredOutput> RestoreOne(const PipelineSpec& spec, Store& store, Connection& conn,
                                  const RestorableRun& run, const RunOutputMeta& o,
                                  const OutputTarget& target) {
  if (o.objects.size() != 1) {
    return Unimplemented("output \"" + o.output + "\" of run " + run.run_id + " was written from " +
                         std::to_string(o.objects.size()) +
                         " data objects; restore reads checkpoints of one object");
  }
  ExportedObject expected;
  expected.key = o.objects[0].key;
  expected.size = o.objects[0].size;
  expected.xxh3 = o.objects[0].xxh3;
  expected.rows = o.rows;
  Status imported = ImportFromStore(conn, store, expected, o.stage).status();
  if (!imported.ok()) return ExplainImportError(imported, run, o, spec);
  const OutputSpec& out = *spec.FindOutput(o.output);
  ASSIGN_OR_RETURN(WrittenOutputFile written,
                   WriteOutputFile(spec, out, o.stage, conn, target, nullptr));
  return RestoredOutput{out.name, o.stage, target.path, o.rows, written.digest.size};
}

Result<std::vector<RestorableRun>> ReadRuns(const PipelineSpec& spec, std::shared_ptr<Store> store,
                                            const RestoreOptions& options) {
  ledger::LedgerOptions read;
  read.mode = ledger::LedgerMode::kReadOnly;
  read.coordinator = options.coordinator;
  ASSIGN_OR_RETURN(std::unique_ptr<ledger::Ledger> ledger,
                   ledger::Ledger::Open(std::move(store), PipelineNamespace(spec), read));
  return ListRestorableRuns(ledger->state(), spec.gc.keep_runs);
}

}  // namespace

std::vector<RunOutputMeta> RunOutputCheckpoints(const PipelineSpec& spec, const Dag& dag,
                                                const ledger::LedgerState& state) {
  std::vector<RunOutputMeta> out;
  for (size_t i = 0; i < spec.outputs.size(); ++i) {
    const std::string& stage = dag.node(dag.output_nodes()[i]).name;
    auto entry = state.entries.find(StageEntryName(stage));
    if (entry == state.entries.end() || entry->second.objects.empty()) continue;
    out.push_back({spec.outputs[i].name, stage, MetaU64(entry->second.meta, "rows"),
                   MetaU64(entry->second.meta, "bytes"), entry->second.objects});
  }
  return out;
}

Result<std::vector<RestorableRun>> ListRestorableRuns(const ledger::LedgerState& state,
                                                      int keep_runs) {
  ASSIGN_OR_RETURN(const std::set<std::string> live, RetainedKeys(state, keep_runs));
  ASSIGN_OR_RETURN(std::vector<RunReportEntry> reports, ReadRunReports(state));
  std::vector<RestorableRun> runs;
  for (auto it = reports.rbegin(); it != reports.rend(); ++it) {
    if (!it->meta.finished()) continue;
    RestorableRun run{it->run_id,      it->entry->committed_at_ms, it->meta.result, false, "",
                      it->meta.outputs};
    if (run.outputs.empty()) {
      run.why_not = "its report names no outputs written from checkpoints";
    } else if (!AllRetained(run.outputs, live)) {
      run.why_not = "GC dropped its results ([gc] keep_runs = " + std::to_string(keep_runs) +
                    " keeps those of the last " + std::to_string(keep_runs) + " finished runs)";
    } else {
      run.restorable = true;
    }
    runs.push_back(std::move(run));
  }
  return runs;
}

Result<const RestorableRun*> FindRestorableRun(const std::vector<RestorableRun>& runs,
                                               std::string_view id) {
  std::vector<const RestorableRun*> matches;
  for (const RestorableRun& r : runs) {
    if (!id.empty() && r.run_id.starts_with(id)) matches.push_back(&r);
  }
  if (matches.empty()) {
    return InvalidArgument("no finished run has the id \"" + std::string(id) + "\"; " +
                           RestorableList(runs));
  }
  if (matches.size() > 1) {
    std::string ids;
    for (const RestorableRun* r : matches) ids += (ids.empty() ? "" : ", ") + r->run_id;
    return InvalidArgument("run id \"" + std::string(id) + "\" is ambiguous (" + ids +
                           "): give more of it; " + RestorableList(runs));
  }
  if (!matches[0]->restorable) {
    return NotFound("run " + matches[0]->run_id.substr(0, kShortRunId) +
                    " cannot be restored: " + matches[0]->why_not + "; " + RestorableList(runs));
  }
  return matches[0];
}

DataLocation RestoreDestination(std::string_view to) {
  DataLocation loc;
  loc.written = std::string(to);
  std::string path(to);
  if (path.starts_with("file://")) path = path.substr(7);
  if (path.find("://") != std::string::npos) {
    loc.resolved = path;
    loc.is_url = true;
    return loc;
  }
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(path, ec);
  loc.resolved = ec ? path : absolute.lexically_normal().string();
  return loc;
}

Result<RestoreResult> RestoreOutputs(const PipelineSpec& spec, std::shared_ptr<Store> store,
                                     const RestoreOptions& options) {
  ASSIGN_OR_RETURN(std::vector<RestorableRun> runs, ReadRuns(spec, store, options));
  ASSIGN_OR_RETURN(const RestorableRun* run, FindRestorableRun(runs, options.run));
  ASSIGN_OR_RETURN(std::vector<const RunOutputMeta*> selected,
                   SelectOutputs(spec, *run, options.outputs));
  if (!options.to.empty() && selected.size() != 1) {
    return InvalidArgument("--to writes one output; run " + run->run_id.substr(0, kShortRunId) +
                           " has " + std::to_string(selected.size()) +
                           ": choose one with --output NAME");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Database> db, Database::Open());
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, db->Connect());
  RestoreResult result{run->run_id, run->finished_at_ms, {}};
  for (const RunOutputMeta* o : selected) {
    const OutputSpec& out = *spec.FindOutput(o->output);
    DataLocation where = options.to.empty() ? out.location : RestoreDestination(options.to);
    const OutputTarget target{where.resolved, where.is_url, db->temp_directory()};
    ASSIGN_OR_RETURN(RestoredOutput restored, RestoreOne(spec, *store, *conn, *run, *o, target));
    result.outputs.push_back(std::move(restored));
  }
  return result;
}

}  // namespace respawn
