#include "pipeline/selection.h"

#include <algorithm>
#include <optional>

#include "util/strings.h"

namespace respawn {
namespace {

constexpr std::string_view kForms = "the forms are name, name+, +name and +name+";

// What one selector names: a DAG node, or an output (by spec.outputs index).
struct Named {
  std::optional<int> node;
  std::optional<size_t> output;
};

Result<Named> Lookup(const PipelineSpec& spec, const Dag& dag, const Selector& s,
                     std::string_view option) {
  if (std::optional<int> v = dag.Find(s.name)) return Named{v, std::nullopt};
  const std::string lower = Lower(s.name);
  for (size_t i = 0; i < spec.outputs.size(); ++i) {
    if (Lower(spec.outputs[i].name) == lower) return Named{std::nullopt, i};
  }
  std::vector<std::string> names;
  for (const DagNode& n : dag.nodes()) names.push_back(n.name);
  for (const OutputSpec& o : spec.outputs) names.push_back(o.name);
  return InvalidArgument(std::string(option) + " " + s.text +
                         ": no source, stage or output is named " + Quoted(s.name) +
                         DidYouMeanSuffix(s.name, names));
}

// Adds what `s` selects to `out`.
void Expand(const Dag& dag, const Named& named, const Selector& s, Selection* out) {
  if (named.output) out->outputs[*named.output] = true;
  const int v = named.node ? *named.node : dag.output_nodes()[*named.output];
  if (named.node) out->nodes[v] = true;
  if (s.ancestors) {
    out->nodes[v] = true;
    for (int u : dag.Ancestors(v)) out->nodes[u] = true;
  }
  if (s.descendants && named.node) {
    for (int u : dag.Descendants(v)) out->nodes[u] = true;
  }
}

// The union of what the selectors in `args` select, outputs of selected nodes included.
Result<Selection> Union(const PipelineSpec& spec, const Dag& dag,
                        const std::vector<std::string>& args, std::string_view option) {
  Selection out;
  out.nodes.assign(dag.size(), false);
  out.outputs.assign(spec.outputs.size(), false);
  for (const std::string& arg : args) {
    ASSIGN_OR_RETURN(std::vector<Selector> selectors, ParseSelectors(arg, option));
    for (const Selector& s : selectors) {
      ASSIGN_OR_RETURN(Named named, Lookup(spec, dag, s, option));
      Expand(dag, named, s, &out);
    }
  }
  for (size_t i = 0; i < spec.outputs.size(); ++i) {
    if (out.nodes[dag.output_nodes()[i]]) out.outputs[i] = true;
  }
  return out;
}

}  // namespace

Result<std::vector<Selector>> ParseSelectors(std::string_view arg, std::string_view option) {
  std::vector<Selector> out;
  size_t start = 0;
  while (start <= arg.size()) {
    const size_t comma = std::min(arg.find(',', start), arg.size());
    std::string_view text = Trim(arg.substr(start, comma - start));
    start = comma + 1;
    Selector s;
    s.text = std::string(text);
    s.ancestors = !text.empty() && text.front() == '+';
    if (s.ancestors) text.remove_prefix(1);
    s.descendants = !text.empty() && text.back() == '+';
    if (s.descendants) text.remove_suffix(1);
    if (text.empty()) {
      return InvalidArgument(std::string(option) + " " + Quoted(arg) + ": an empty selector; " +
                             std::string(kForms) + ", several separated by commas");
    }
    if (!IsSqlIdentifier(text)) {
      return InvalidArgument(std::string(option) + " " + Quoted(arg) + ": " + Quoted(text) +
                             " is not a selector; " + std::string(kForms) +
                             " (name: a source, stage or output)");
    }
    s.name = std::string(text);
    out.push_back(std::move(s));
  }
  return out;
}

bool Selection::all() const {
  return std::all_of(nodes.begin(), nodes.end(), [](bool b) { return b; }) &&
         std::all_of(outputs.begin(), outputs.end(), [](bool b) { return b; });
}

Result<Selection> ResolveSelection(const PipelineSpec& spec, const Dag& dag,
                                   const std::vector<std::string>& select,
                                   const std::vector<std::string>& exclude) {
  Selection out;
  if (select.empty()) {
    out.nodes.assign(dag.size(), true);
    out.outputs.assign(spec.outputs.size(), true);
  } else {
    ASSIGN_OR_RETURN(out, Union(spec, dag, select, "--select"));
  }
  ASSIGN_OR_RETURN(Selection excluded, Union(spec, dag, exclude, "--exclude"));
  for (int v = 0; v < dag.size(); ++v) out.nodes[v] = out.nodes[v] && !excluded.nodes[v];
  for (size_t i = 0; i < spec.outputs.size(); ++i) {
    out.outputs[i] = out.outputs[i] && !excluded.outputs[i];
  }
  return out;
}

}  // namespace respawn
