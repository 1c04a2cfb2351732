#include "pipeline/plan.h"

#include "pipeline/expect.h"
#include "pipeline/schema.h"
#include "util/strings.h"

namespace respawn {
namespace {

bool IsFileSource(const PipelineSpec& spec, const DagNode& node) {
  return node.kind == NodeKind::kSource && spec.sources[node.spec_index].kind == SourceKind::kFiles;
}

bool IsCheckpointed(const PipelineSpec& spec, const DagNode& node) {
  if (IsFileSource(spec, node)) return false;
  return node.kind != NodeKind::kStage || spec.stages[node.spec_index].checkpoint;
}

bool Selected(const PlanInput& in, int v) {
  return in.selection == nullptr || in.selection->nodes[v];
}

bool OutputSelected(const PlanInput& in, size_t i) {
  return in.selection == nullptr || in.selection->outputs[i];
}

// Whether node `v`'s committed checkpoint can be reused; if not, `*reason` says why it must be
// computed when something needs it.
bool Reusable(const PlanInput& in, int v, std::string* reason) {
  const DagNode& node = in.dag->node(v);
  if (!IsCheckpointed(*in.spec, node)) {
    *reason = "not checkpointed";
    return false;
  }
  const std::string name = StageEntryName(node.name);
  auto it = in.state->entries.find(name);
  const FingerprintComponents& now = (*in.fingerprints)[v];
  if (in.fresh && Selected(in, v)) {
    *reason = "--fresh";
  } else if (it == in.state->entries.end()) {
    *reason = kNoCheckpointReason;
  } else if (Result<CheckpointMeta> meta = DecodeCheckpointMeta(it->second.meta, name);
             it->second.fingerprint != now.total.Hex()) {
    Result<FingerprintComponents> before =
        meta.ok() ? FingerprintComponents::Parse(meta->components) : meta.status();
    *reason = before.ok() ? ExplainChangeText(*before, now) : "changed fingerprint";
  } else if (!meta.ok()) {
    *reason = "checkpoint unreadable: " + meta.status().message();
  } else if (node.kind == NodeKind::kStage &&
             meta->expectations != ExpectationsId(in.spec->stages[node.spec_index])) {
    // Checked against other expectations: computed again to be checked (expect.h).
    *reason = std::string(kChangedExpectationsReason);
  } else if (auto bad = in.unusable.find(v); bad != in.unusable.end()) {
    *reason = bad->second;
  } else {
    return true;
  }
  return false;
}

// Marks what must be computed (`compute`) and what must be readable in the database (`needed`),
// from the targets backwards. `recheck`: nodes whose expectations changed (targets too).
void Demand(const PlanInput& in, const std::vector<bool>& reusable,
            const std::vector<bool>* recheck, std::vector<bool>* compute,
            std::vector<bool>* needed) {
  const Dag& dag = *in.dag;
  std::vector<bool> demanded(dag.size(), false);
  for (size_t i = 0; i < in.spec->outputs.size(); ++i) {
    if (i < in.output_current.size() && in.output_current[i]) continue;
    if (!OutputSelected(in, i)) continue;
    int o = dag.output_nodes()[i];
    demanded[o] = (*needed)[o] = true;
  }
  for (int v = 0; v < dag.size(); ++v) {
    // A stage whose expectations changed is a target too: its consumers stay reused, but the
    // checkpoint they read must pass the new expectations (expect.h), or the run fails.
    // Only what --select selected is a target.
    if ((dag.node(v).consumers.empty() || (*recheck)[v]) && Selected(in, v)) demanded[v] = true;
  }
  const std::vector<int>& topo = dag.TopologicalOrder();
  for (auto it = topo.rbegin(); it != topo.rend(); ++it) {
    int v = *it;
    if (!demanded[v] || IsFileSource(*in.spec, dag.node(v)) || reusable[v]) continue;
    (*compute)[v] = true;
    for (const DagEdge& e : dag.node(v).inputs) demanded[e.from] = (*needed)[e.from] = true;
  }
}

// A node without a checkpoint because GC dropped it says so, and which computed nodes need it:
// "dropped by GC after run 1a2b3c4d (needed by top_users)".
void ExplainDropped(const PlanInput& in, const std::vector<bool>& compute,
                    std::vector<std::string>* reasons) {
  const std::map<std::string, std::string> dropped = DroppedWorkTables(*in.state);
  for (int v = 0; v < in.dag->size(); ++v) {
    if ((*reasons)[v] != kNoCheckpointReason) continue;
    auto it = dropped.find(StageEntryName(in.dag->node(v).name));
    if (it == dropped.end()) continue;
    std::string needed_by;
    for (int c : in.dag->node(v).consumers) {
      if (!compute[c]) continue;
      needed_by += (needed_by.empty() ? " (needed by " : ", ") + in.dag->node(c).name;
    }
    (*reasons)[v] = "dropped by GC after run " + it->second.substr(0, 8) + needed_by +
                    (needed_by.empty() ? "" : ")");
  }
}

}  // namespace

std::vector<Task> PlanRun(const PlanInput& in) {
  const Dag& dag = *in.dag;
  std::vector<std::string> reasons(dag.size());
  std::vector<bool> reusable(dag.size(), false);
  for (int v = 0; v < dag.size(); ++v) {
    if (!IsFileSource(*in.spec, dag.node(v))) reusable[v] = Reusable(in, v, &reasons[v]);
  }
  std::vector<bool> recheck(dag.size(), false);
  for (int v = 0; v < dag.size(); ++v) recheck[v] = reasons[v] == kChangedExpectationsReason;
  std::vector<bool> compute(dag.size(), false), needed(dag.size(), false);
  Demand(in, reusable, &recheck, &compute, &needed);
  ExplainDropped(in, compute, &reasons);

  std::vector<Task> tasks(dag.size());
  for (int v = 0; v < dag.size(); ++v) {
    Task& t = tasks[v];
    t.node = v;
    if (IsFileSource(*in.spec, dag.node(v))) {
      t.action = TaskAction::kSource;
    } else if (compute[v]) {
      t.action = TaskAction::kCompute;
      t.reason = reasons[v];
    } else if (reusable[v]) {
      t.action = TaskAction::kReuse;
      t.load = needed[v];
    } else {
      t.action = TaskAction::kSkip;
      t.reason = std::string(Selected(in, v) ? kNotNeededReason : kNotSelectedReason);
    }
  }
  return tasks;
}

std::string UnusableCheckpointReason(const Status& error) {
  return std::string(error.IsNotFound() ? "checkpoint missing: " : "checkpoint corrupt: ") +
         error.message();
}

// --select: the refusal when a selected node needs an unselected one the plan would compute.
namespace {

std::string KindName(const DagNode& node) {
  return node.kind == NodeKind::kSource ? "source" : "stage";
}

// Who needs an unselected node: a selected computed node or a selected output.
struct Reader {
  std::string kind;  // "stage", "source", "output"; "" when none is found
  std::string name;
  int via = -1;  // the computed node without a checkpoint it reads through, if any
};

// The first selected reader of unselected node `u` that the plan computes or writes: a computed
// node, or an output, reading `u` directly or through computed nodes without checkpoints.
Reader SelectedReader(const PlanInput& in, const std::vector<Task>& tasks, int u) {
  const Dag& dag = *in.dag;
  std::vector<std::pair<int, int>> stack = {{u, -1}};  // node, the first node after `u`
  std::vector<bool> seen(dag.size(), false);
  while (!stack.empty()) {
    auto [w, via] = stack.back();
    stack.pop_back();
    for (size_t i = 0; i < in.spec->outputs.size(); ++i) {
      const bool current = i < in.output_current.size() && in.output_current[i];
      if (dag.output_nodes()[i] != w || current || !OutputSelected(in, i)) continue;
      return {"output", in.spec->outputs[i].name, via};
    }
    for (int c : dag.node(w).consumers) {
      if (seen[c] || tasks[c].action != TaskAction::kCompute) continue;
      seen[c] = true;
      if (Selected(in, c)) return {KindName(dag.node(c)), dag.node(c).name, via};
      if (!IsCheckpointed(*in.spec, dag.node(c))) stack.push_back({c, via < 0 ? c : via});
    }
  }
  return {};
}

}  // namespace

Status CheckSelectedPlan(const PlanInput& in, const std::vector<Task>& tasks) {
  if (in.selection == nullptr) return Status::OK();
  const Dag& dag = *in.dag;
  const std::vector<int>& topo = dag.TopologicalOrder();
  // Downstream first: the node named is the one closest to the selection.
  for (auto it = topo.rbegin(); it != topo.rend(); ++it) {
    const int u = *it;
    const DagNode& node = dag.node(u);
    if (tasks[u].action != TaskAction::kCompute || Selected(in, u) ||
        !IsCheckpointed(*in.spec, node)) {
      continue;
    }
    const Reader r = SelectedReader(in, tasks, u);
    const std::string& why = tasks[u].reason;
    return InvalidArgument(
        (r.kind.empty() ? "the selection" : r.kind + " " + Quoted(r.name)) + " reads " +
        Quoted(node.name) +
        (r.via >= 0 ? " through " + Quoted(dag.node(r.via).name) + " (not checkpointed)" : "") +
        ", which is not selected and has no current checkpoint" +
        (why.empty() || why == "no checkpoint" ? "" : " (" + why + ")") +
        "; select it too (--select +" + (r.kind.empty() ? node.name : r.name) +
        ") or run without --select");
  }
  return Status::OK();
}

}  // namespace respawn
