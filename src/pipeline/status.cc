#include "pipeline/status.h"

#include <set>

#include "ledger/ledger.h"
#include "pipeline/check.h"
#include "pipeline/expect.h"
#include "pipeline/gc.h"
#include "pipeline/owner.h"
#include "pipeline/plan.h"
#include "pipeline/schema.h"

namespace respawn {
namespace {

RunSummary SummarizeRun(const RunReportEntry& run) {
  RunSummary out;
  out.run_id = run.run_id;
  out.finished_at_ms = run.entry->committed_at_ms;
  out.result = run.meta.result;
  out.seconds = run.meta.seconds;
  out.saved_seconds = run.meta.saved_seconds;
  out.computed = run.meta.computed;
  out.reused = run.meta.reused;
  out.error = run.meta.error;
  if (run.meta.requests) {
    const RequestCounts& q = *run.meta.requests;
    out.puts = q.puts;
    out.gets = q.gets;
    out.stats = q.stats;
    out.lists = q.lists;
    out.deletes = q.deletes;
    out.bytes_written = q.bytes_written;
    out.bytes_read = q.bytes_read;
  }
  return out;
}

void Count(UsageCount& c, uint64_t size, bool retained) {
  ++c.objects;
  c.bytes += size;
  if (retained) {
    ++c.retained_objects;
    c.retained_bytes += size;
  }
}

// Adds one listed object to `usage`: data objects by stage and by the run that wrote them.
void CountObject(const ledger::Ledger& ledger, const std::set<std::string>& live,
                 const ObjectInfo& o, StoreUsage& u) {
  ++u.objects;
  u.bytes += o.size;
  const bool retained = live.count(o.key) > 0;
  if (retained) {
    ++u.live_objects;
    u.live_bytes += o.size;
  } else if (o.key.rfind(ledger.keys().LedgerPrefix(), 0) == 0) {
    ++u.ledger_objects;
    u.ledger_bytes += o.size;
  }
  std::optional<ledger::DataKeyParts> parts = ledger.keys().ParseDataKey(o.key);
  if (!parts) return;
  // The stage's directory (a partition counts with its stage).
  std::string stage = parts->stage.substr(0, parts->stage.find('/'));
  Count(u.by_stage[stage], o.size, retained);
  Count(u.by_run[parts->run_id], o.size, retained);
}

Status CountUsage(Store& store, const ledger::Ledger& ledger, int keep_runs, StoreUsage& usage) {
  ASSIGN_OR_RETURN(const std::set<std::string> live, RetainedKeys(ledger.state(), keep_runs));
  ListOptions list;
  list.prefix = ledger.ns() + "/";
  std::string token;
  do {
    list.continuation_token = token;
    ASSIGN_OR_RETURN(ListPage page, store.List(list));
    for (const ObjectInfo& o : page.objects) CountObject(ledger, live, o, usage);
    token = page.next_token;
  } while (!token.empty());
  return Status::OK();
}

// The owner, the runs and the usage of the namespace `ns`; the ledger read stays in `*out`.
Result<PipelineStatus> ReadLedgerState(std::shared_ptr<Store> store, const std::string& ns,
                                       int keep_runs, std::unique_ptr<ledger::Ledger>* out,
                                       std::shared_ptr<ledger::CommitCoordinator> coordinator) {
  ledger::LedgerOptions options;
  options.mode = ledger::LedgerMode::kReadOnly;
  options.coordinator = std::move(coordinator);
  ASSIGN_OR_RETURN(std::unique_ptr<ledger::Ledger> ledger,
                   ledger::Ledger::Open(store, ns, options));
  PipelineStatus status;
  status.store_url = store->Url();
  status.ns = ns;
  status.sequence = ledger->sequence();
  if (std::optional<PipelineOwner> owner = FindPipelineOwner(ledger->state())) {
    status.owner_path = owner->path;
    status.owner_id = owner->id;
    status.owner_since_ms = owner->since_ms;
  }
  ASSIGN_OR_RETURN(std::vector<RunReportEntry> runs, ReadRunReports(ledger->state()));
  for (const RunReportEntry& run : runs) status.runs.push_back(SummarizeRun(run));
  RETURN_IF_ERROR(CountUsage(*store, *ledger, keep_runs, status.usage));
  *out = std::move(ledger);
  return status;
}

// Fills what `entry` (the checkpoint of `n`) says into `n`; returns its metadata.
Result<CheckpointMeta> FillCommitted(const ledger::Entry& entry, std::string_view name,
                                     NodeStatus& n) {
  ASSIGN_OR_RETURN(CheckpointMeta meta, DecodeCheckpointMeta(entry.meta, name));
  n.committed_fingerprint = entry.fingerprint;
  n.rows = meta.rows;
  n.bytes = meta.bytes;
  n.objects = entry.objects.size();
  n.committed_at_ms = entry.committed_at_ms;
  n.committed_by_run = entry.run_id;
  return meta;
}

// The state of checkpointed node `v` (`n`) in `state`. `dropped`: DroppedWorkTables(state).
Status FillCheckpointState(const PipelineSpec& spec, const Dag& dag, int v,
                           const FingerprintComponents& fp, const ledger::LedgerState& state,
                           const std::map<std::string, std::string>& dropped, NodeStatus& n) {
  const std::string entry_name = StageEntryName(n.name);
  auto it = state.entries.find(entry_name);
  if (it == state.entries.end()) {
    n.state = "missing";
    n.reason = kNoCheckpointReason;
    if (auto gone = dropped.find(entry_name); gone != dropped.end()) {
      n.state = "dropped";
      n.reason = "dropped by GC after run " + gone->second.substr(0, 8) +
                 "; recomputed only if something needs it";
    }
    return Status::OK();
  }
  ASSIGN_OR_RETURN(CheckpointMeta meta, FillCommitted(it->second, entry_name, n));
  const DagNode& node = dag.node(v);
  if (n.committed_fingerprint == n.fingerprint && node.kind == NodeKind::kStage &&
      meta.expectations != ExpectationsId(spec.stages[node.spec_index])) {
    n.state = "stale";  // as the plan decides: computed again to be checked (expect.h)
    n.reason = std::string(kChangedExpectationsReason);
    return Status::OK();
  }
  if (n.committed_fingerprint == n.fingerprint) {
    n.state = "committed";
    return Status::OK();
  }
  n.state = "stale";
  Result<FingerprintComponents> before = FingerprintComponents::Parse(meta.components);
  n.reason = before.ok() ? ExplainChangeText(*before, fp) : "changed fingerprint";
  return Status::OK();
}

// What a run would do with each node now: the run's own plan, with no checkpoint verified and
// every output taken as stale (that decides which reused checkpoints are downloaded; what is
// computed differs only for a stage with checkpoint = false whose output file is current).
void FillNextRun(const PipelineSpec& spec, const Dag& dag,
                 const std::vector<FingerprintComponents>& fps, const ledger::LedgerState& state,
                 std::vector<NodeStatus>& nodes) {
  PlanInput input;
  input.spec = &spec;
  input.dag = &dag;
  input.fingerprints = &fps;
  input.state = &state;
  for (const Task& t : PlanRun(input)) {
    NodeStatus& n = nodes[t.node];
    n.next_reason = t.reason;
    switch (t.action) {
      case TaskAction::kCompute:
        n.next_action = "compute";
        break;
      case TaskAction::kReuse:
        n.next_action = "reuse";
        break;
      case TaskAction::kSkip:
        n.next_action = "skip";
        break;
      case TaskAction::kSource:
        n.next_action = "source";
        break;
    }
  }
}

// Each node of `spec` compared with what `state` holds.
Result<std::vector<NodeStatus>> NodeStatuses(const PipelineSpec& spec, const Dag& dag,
                                             const std::vector<FingerprintComponents>& fps,
                                             const ledger::LedgerState& state) {
  ASSIGN_OR_RETURN(std::vector<RunReportEntry> runs, ReadRunReports(state));
  const RunReportEntry* last_run = runs.empty() ? nullptr : &runs.back();
  const std::map<std::string, std::string> dropped = DroppedWorkTables(state);
  std::vector<NodeStatus> out;
  for (int v = 0; v < dag.size(); ++v) {
    const DagNode& node = dag.node(v);
    NodeStatus n;
    n.name = node.name;
    n.kind = node.kind;
    n.fingerprint = fps[v].total.Hex();
    if (node.kind == NodeKind::kStage) n.checkpoint = spec.stages[node.spec_index].checkpoint;
    if (node.kind == NodeKind::kSource &&
        spec.sources[node.spec_index].kind == SourceKind::kFiles) {
      n.checkpoint = false;
      n.state = "source";
    } else if (!n.checkpoint) {
      n.state = "not checkpointed";
    } else {
      RETURN_IF_ERROR(FillCheckpointState(spec, dag, v, fps[v], state, dropped, n));
    }
    for (const RunNodeMeta& j : last_run ? last_run->meta.nodes : std::vector<RunNodeMeta>()) {
      if (j.name != node.name) continue;
      n.last_action = j.action;
      n.last_reason = j.reason;
    }
    out.push_back(std::move(n));
  }
  FillNextRun(spec, dag, fps, state, out);
  return out;
}

// The DAG and fingerprints of `spec`, found in one scratch database.
Status ReadPipeline(const PipelineSpec& spec, Dag* dag, std::vector<FingerprintComponents>* fps) {
  ASSIGN_OR_RETURN(std::unique_ptr<Database> db, Database::Open());
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, db->Connect());
  ASSIGN_OR_RETURN(*dag, BuildPipelineDag(spec, *conn));
  SourceReads reads;
  ASSIGN_OR_RETURN(*fps, FingerprintNodes(spec, *dag, reads));
  return Status::OK();
}

}  // namespace

Result<PipelineStatus> GetPipelineStatus(const PipelineSpec& spec, std::shared_ptr<Store> store,
                                         std::shared_ptr<ledger::CommitCoordinator> coordinator) {
  Dag dag;
  std::vector<FingerprintComponents> fps;
  RETURN_IF_ERROR(ReadPipeline(spec, &dag, &fps));
  std::unique_ptr<ledger::Ledger> ledger;
  ASSIGN_OR_RETURN(PipelineStatus status,
                   ReadLedgerState(store, PipelineNamespace(spec), spec.gc.keep_runs, &ledger,
                                   std::move(coordinator)));
  ASSIGN_OR_RETURN(status.nodes, NodeStatuses(spec, dag, fps, ledger->state()));
  return status;
}

Result<std::vector<NodeStatus>> PipelineStatusForState(const PipelineSpec& spec,
                                                       const ledger::LedgerState& state) {
  Dag dag;
  std::vector<FingerprintComponents> fps;
  RETURN_IF_ERROR(ReadPipeline(spec, &dag, &fps));
  return NodeStatuses(spec, dag, fps, state);
}

Result<PipelineStatus> ReadPipelineLedger(std::shared_ptr<Store> store, const std::string& ns,
                                          std::shared_ptr<ledger::CommitCoordinator> coordinator) {
  std::unique_ptr<ledger::Ledger> ledger;
  ASSIGN_OR_RETURN(PipelineStatus status,
                   ReadLedgerState(store, ns, 1, &ledger, std::move(coordinator)));
  for (const auto& [name, entry] : ledger->state().entries) {
    std::optional<EntryName> parsed = EntryName::Parse(name);
    if (!parsed || parsed->kind != EntryKind::kStage) continue;
    NodeStatus n;
    n.name = parsed->Format().substr(StageEntryName("").size());
    n.state = "committed";
    RETURN_IF_ERROR(FillCommitted(entry, name, n).status());
    status.nodes.push_back(std::move(n));
  }
  return status;
}

}  // namespace respawn
