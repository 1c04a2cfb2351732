// Graph selection for `respawn run --select/--exclude` (dbt's graph operators): which nodes a
// run may compute and which outputs it may write. Pure functions of the spec and its DAG.
//
// A selector is `name` (that node), `name+` (it and everything downstream), `+name` (it and
// everything upstream) or `+name+` (both); `name` is a source, stage or output, ignoring case.
// Several selectors go comma-separated in one argument or in repeated arguments. The selection
// is the union of the --select selectors (everything when there are none) minus the union of
// the --exclude ones. An output is selected with its node, or by its own name (`+out`: the
// output, the node it reads and that node's ancestors; `out+` adds nothing downstream).
//
// plan.h applies a selection: only selected nodes may be computed, unselected ones are reused
// from their checkpoints, and a selected node that needs an unselected one without a usable
// checkpoint refuses the run (CheckSelectedPlan).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "pipeline/dag.h"
#include "pipeline/spec.h"
#include "util/status.h"

namespace respawn {

/// One parsed selector.
struct Selector {
  std::string text;          // the selector as written, trimmed ("+top_users")
  std::string name;          // the name in it ("top_users")
  bool ancestors = false;    // "+name"
  bool descendants = false;  // "name+"
  friend bool operator==(const Selector&, const Selector&) = default;
};

/// The selectors in one --select/--exclude argument ("a+, +b"). `option` ("--select") names the
/// argument in errors. InvalidArgument for an empty selector or one of another form.
Result<std::vector<Selector>> ParseSelectors(std::string_view arg, std::string_view option);

struct Selection {
  std::vector<bool> nodes;    // by DAG node
  std::vector<bool> outputs;  // by spec.outputs index
  /// Every node and every output is selected: the run is a whole one.
  bool all() const;
  friend bool operator==(const Selection&, const Selection&) = default;
};

/// The selection `select` and `exclude` (the arguments as given) make. InvalidArgument for a
/// malformed selector or a name no source, stage or output has (with a did-you-mean).
Result<Selection> ResolveSelection(const PipelineSpec& spec, const Dag& dag,
                                   const std::vector<std::string>& select,
                                   const std::vector<std::string>& exclude);

}  // namespace respawn
