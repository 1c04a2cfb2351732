#include "pipeline/dag.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <queue>
#include <set>

#include "pipeline/fingerprint.h"
#include "pipeline/sql_error.h"
#include "util/strings.h"

namespace respawn {
namespace {

// The identifier a token names, quotes removed ("" unescaped); empty for other tokens.
std::string IdentifierOf(const SqlToken& token) {
  if (token.kind == SqlTokenKind::kWord) return std::string(token.text);
  if (token.kind != SqlTokenKind::kQuotedIdentifier || token.text.size() < 2) return "";
  std::string out;
  std::string_view inner = token.text.substr(1, token.text.size() - 2);
  for (size_t i = 0; i < inner.size(); ++i) {
    out += inner[i];
    if (inner[i] == '"' && i + 1 < inner.size() && inner[i + 1] == '"') ++i;
  }
  return out;
}

// Byte offset in `sql` where `table` is read: preferably right after FROM, JOIN or a comma,
// else its first mention. npos when it is not found (e.g. a resolver that qualifies names).
size_t FindTableReference(std::string_view sql, std::string_view table) {
  const std::vector<SqlToken> tokens = TokenizeSql(sql);
  const std::string want = Lower(table);
  size_t first = std::string_view::npos;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (Lower(IdentifierOf(tokens[i])) != want) continue;
    if (i > 0) {
      const SqlToken& prev = tokens[i - 1];
      std::string p = Lower(prev.text);
      if ((prev.kind == SqlTokenKind::kWord && (p == "from" || p == "join")) ||
          (prev.kind == SqlTokenKind::kPunctuation && p == ",")) {
        return tokens[i].offset;
      }
    }
    if (first == std::string_view::npos) first = tokens[i].offset;
  }
  return first;
}

struct Problem {
  int line;
  std::string message;
};

// The text of a string literal or quoted identifier token, unquoted; nullopt for other tokens
// (E'...' and other prefixed strings included: their escapes are not undone here).
std::optional<std::string> Unquoted(const SqlToken& token) {
  if (token.kind != SqlTokenKind::kString && token.kind != SqlTokenKind::kQuotedIdentifier) {
    return std::nullopt;
  }
  std::string_view t = token.text;
  if (t.size() < 2 || (t.front() != '\'' && t.front() != '"') || t.back() != t.front()) {
    return std::nullopt;
  }
  const char q = t.front();
  std::string out;
  for (size_t i = 1; i + 1 < t.size(); ++i) {
    out += t[i];
    if (t[i] == q && i + 2 < t.size() && t[i + 1] == q) ++i;
  }
  return out;
}

std::string SqlStringLiteral(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    out += c;
    if (c == '\'') out += '\'';
  }
  return out + "'";
}

// Adds `ref` to `files` (merging a path named again); `problem` says why it cannot be read.
void AddFileRead(const PipelineSpec& spec, std::string_view sql, int sql_line,
                 const std::vector<SqlToken>& tokens, const SqlFileRef& ref,
                 std::vector<DagFileRead>* files, std::string* problem) {
  if (ref.path.empty() || ref.path.find("://") != std::string::npos) return;
  if (ref.path.find_first_of("\r\n") != std::string::npos) {
    *problem = "reads a file whose name has a line break in it; rename the file";
    return;
  }
  namespace fs = std::filesystem;
  std::string resolved;
  bool relative = false;
  if (ref.path.front() == '/') {
    resolved = fs::path(ref.path).lexically_normal().string();
  } else if (ref.path == "~" || ref.path.starts_with("~/")) {
    const char* home = std::getenv("HOME");
    resolved = (fs::path(home == nullptr ? "" : home) /
                ref.path.substr(std::min<size_t>(2, ref.path.size())))
                   .lexically_normal()
                   .string();
  } else {
    relative = true;
    resolved = (fs::path(spec.base_dir) / ref.path).lexically_normal().string();
  }
  std::optional<std::pair<size_t, size_t>> span;
  for (const SqlToken& t : tokens) {
    if (t.offset != ref.offset) continue;
    if (Unquoted(t) == ref.path) span.emplace(t.offset, t.offset + t.text.size());
    break;
  }
  if (relative && !span) {
    *problem = "reads file \"" + ref.path +
               "\" by a relative path written in a way respawn cannot resolve against the "
               "pipeline file's folder; write it as a plain '...' string, or as an absolute path";
    return;
  }
  const bool listing_only = ref.function == "glob";
  for (DagFileRead& f : *files) {
    if (f.written != ref.path) continue;
    f.may_be_empty = f.may_be_empty && listing_only;
    if (relative) f.literals.push_back(*span);
    return;
  }
  DagFileRead f;
  f.written = ref.path;
  f.resolved = std::move(resolved);
  f.may_be_empty = listing_only;
  f.line = ref.offset == SIZE_MAX ? sql_line : LineInSql(sql, sql_line, ref.offset);
  if (relative) f.literals.push_back(*span);
  files->push_back(std::move(f));
}

// "a CREATE statement" when `sql` starts with the keyword of a statement that is not a query
// (DuckDB refuses to analyze those with a message about JSON serialization); "" otherwise, a
// misspelled keyword included (its parser error says more).
std::string StatementKindIfNotAQuery(std::string_view sql) {
  for (const SqlToken& t : TokenizeSql(sql)) {
    if (t.kind == SqlTokenKind::kPunctuation && t.text == "(") continue;
    if (t.kind != SqlTokenKind::kWord) return "";
    std::string word(t.text);
    for (char& c : word) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    for (std::string_view s :
         {"ALTER",  "ANALYZE",  "ATTACH", "BEGIN",  "CALL",   "CHECKPOINT", "COMMENT", "COMMIT",
          "COPY",   "CREATE",   "DELETE", "DETACH", "DROP",   "EXECUTE",    "EXPORT",  "IMPORT",
          "INSERT", "INSTALL",  "LOAD",   "MERGE",  "PRAGMA", "PREPARE",    "RESET",   "ROLLBACK",
          "SET",    "TRUNCATE", "UPDATE", "USE",    "VACUUM"}) {
      if (word == s) return (word.find_first_of("AEIOU") == 0 ? "an " : "a ") + word + " statement";
    }
    return "";
  }
  return "";
}

}  // namespace

std::optional<int> Dag::Find(std::string_view name) const {
  const std::string want = Lower(name);
  for (int i = 0; i < size(); ++i) {
    if (Lower(nodes_[i].name) == want) return i;
  }
  return std::nullopt;
}

std::vector<std::vector<int>> Dag::Levels() const {
  std::vector<std::vector<int>> levels;
  for (int i = 0; i < size(); ++i) {
    size_t level = static_cast<size_t>(nodes_[i].level);
    if (levels.size() <= level) levels.resize(level + 1);
    levels[level].push_back(i);
  }
  return levels;
}

std::vector<std::string> Dag::InputNames(int index) const {
  std::vector<std::string> names;
  for (const DagEdge& e : nodes_[index].inputs) names.push_back(nodes_[e.from].name);
  return names;
}

std::vector<int> Dag::Descendants(int index) const {
  std::vector<bool> mark(nodes_.size(), false);
  std::vector<int> stack = {index};
  while (!stack.empty()) {
    int v = stack.back();
    stack.pop_back();
    for (int c : nodes_[v].consumers) {
      if (!mark[c]) {
        mark[c] = true;
        stack.push_back(c);
      }
    }
  }
  std::vector<int> out;
  for (int v : topological_order_) {
    if (mark[v] && v != index) out.push_back(v);
  }
  return out;
}

std::vector<int> Dag::Ancestors(int index) const {
  std::vector<bool> mark(nodes_.size(), false);
  std::vector<int> stack = {index};
  while (!stack.empty()) {
    int v = stack.back();
    stack.pop_back();
    for (const DagEdge& e : nodes_[v].inputs) {
      if (!mark[e.from]) {
        mark[e.from] = true;
        stack.push_back(e.from);
      }
    }
  }
  std::vector<int> out;
  for (int v : topological_order_) {
    if (mark[v] && v != index) out.push_back(v);
  }
  return out;
}

std::vector<int> Dag::CriticalPath(const std::function<double(int)>& cost) const {
  if (nodes_.empty()) return {};
  std::vector<double> best(nodes_.size(), 0);
  std::vector<int> prev(nodes_.size(), -1);
  for (int v : topological_order_) {
    double upstream = 0;
    for (const DagEdge& e : nodes_[v].inputs) {
      if (prev[v] == -1 || best[e.from] > upstream) {
        upstream = best[e.from];
        prev[v] = e.from;
      }
    }
    best[v] = upstream + cost(v);
  }
  int end = 0;
  for (int v = 1; v < size(); ++v) {
    if (best[v] > best[end]) end = v;
  }
  std::vector<int> path;
  for (int v = end; v != -1; v = prev[v]) path.push_back(v);
  std::reverse(path.begin(), path.end());
  return path;
}

namespace {

// Sources and stages as nodes, in declaration order.
std::vector<DagNode> MakeNodes(const PipelineSpec& spec) {
  std::vector<DagNode> nodes;
  for (size_t i = 0; i < spec.sources.size(); ++i) {
    DagNode n;
    n.kind = NodeKind::kSource;
    n.name = spec.sources[i].name;
    n.line = spec.sources[i].line;
    n.spec_index = static_cast<int>(i);
    nodes.push_back(std::move(n));
  }
  for (size_t i = 0; i < spec.stages.size(); ++i) {
    DagNode n;
    n.kind = NodeKind::kStage;
    n.name = spec.stages[i].name;
    n.line = spec.stages[i].line;
    n.spec_index = static_cast<int>(i);
    nodes.push_back(std::move(n));
  }
  std::stable_sort(nodes.begin(), nodes.end(),
                   [](const DagNode& a, const DagNode& b) { return a.line < b.line; });
  return nodes;
}

// Node names, for lookups (case-insensitive) and suggestions.
struct NodeNames {
  std::map<std::string, int> by_name;  // lowercase -> node
  std::vector<std::string> names;
  explicit NodeNames(const std::vector<DagNode>& nodes) {
    for (int i = 0; i < static_cast<int>(nodes.size()); ++i) {
      by_name.emplace(Lower(nodes[i].name), i);
      names.push_back(nodes[i].name);
    }
  }
  int Find(const std::string& name) const {
    auto it = by_name.find(Lower(name));
    return it == by_name.end() ? -1 : it->second;
  }
};

// The SQL a node runs, what names it in messages and where it starts.
struct NodeSql {
  const std::string* sql = nullptr;  // null: a file source
  int line = 0;
  int column = 1;
  std::string owner;
};

NodeSql SqlOf(const PipelineSpec& spec, const DagNode& node) {
  if (node.kind == NodeKind::kSource) {
    const SourceSpec& s = spec.sources[node.spec_index];
    if (s.kind != SourceKind::kSql) return {};
    return {&s.sql, s.sql_line, s.sql_column, "source " + Quoted(s.name)};
  }
  const StageSpec& s = spec.stages[node.spec_index];
  return {&s.sql, s.sql_line, s.sql_column, "stage " + Quoted(s.name)};
}

// The files `node`'s SQL reads by name, found by `resolve_files`.
void AddFileReads(const PipelineSpec& spec, const FileResolver& resolve_files, const NodeSql& at,
                  DagNode& node, std::vector<Problem>* problems) {
  Result<std::vector<SqlFileRef>> files = resolve_files(*at.sql);
  if (!files.ok()) {
    problems->push_back({at.line, at.owner + ": " + files.status().message()});
    return;
  }
  const std::vector<SqlToken> tokens = TokenizeSql(*at.sql);
  for (const SqlFileRef& ref : *files) {
    std::string problem;
    AddFileRead(spec, *at.sql, at.line, tokens, ref, &node.files, &problem);
    if (!problem.empty()) {
      int line = ref.offset == SIZE_MAX ? at.line : LineInSql(*at.sql, at.line, ref.offset);
      problems->push_back({line, at.owner + " " + problem});
    }
  }
}

// The inputs `node`'s SQL reads (`tables`, as the resolver found them).
void AddTableInputs(const std::vector<std::string>& tables, const NodeSql& at,
                    const NodeNames& names, const std::vector<DagNode>& nodes, DagNode& node,
                    std::vector<Problem>* problems) {
  std::set<std::string> seen;
  for (const std::string& table : tables) {
    if (!seen.insert(Lower(table)).second) continue;
    size_t offset = FindTableReference(*at.sql, table);
    int line = offset == std::string_view::npos ? at.line : LineInSql(*at.sql, at.line, offset);
    const int from = names.Find(table);
    if (from < 0) {
      problems->push_back({line, at.owner + " reads table " + Quoted(table) +
                                     ", which no source or stage defines" +
                                     DidYouMeanSuffix(table, names.names)});
    } else if (node.kind == NodeKind::kSource) {
      problems->push_back({line, at.owner + " is generated by sql and cannot read table " +
                                     Quoted(nodes[from].name) +
                                     "; declare it as a stage ([stages." + node.name +
                                     "]) instead"});
    } else {
      node.inputs.push_back({from, line, false});
    }
  }
}

// The inputs a stage declares with depends_on (those its SQL does not read already).
void AddDeclaredInputs(const PipelineSpec& spec, const NodeSql& at, const NodeNames& names,
                       DagNode& node, std::vector<Problem>* problems) {
  if (node.kind != NodeKind::kStage) return;
  for (const NameRef& dep : spec.stages[node.spec_index].depends_on) {
    const int from = names.Find(dep.name);
    if (from < 0) {
      // ParsePipeline* rejects these; a hand-built spec may still have one.
      problems->push_back({dep.line, at.owner + " depends_on " + Quoted(dep.name) +
                                         ", which no source or stage defines" +
                                         DidYouMeanSuffix(dep.name, names.names)});
      continue;
    }
    bool present = std::any_of(node.inputs.begin(), node.inputs.end(),
                               [&](const DagEdge& e) { return e.from == from; });
    if (!present) node.inputs.push_back({from, dep.line, true});
  }
}

// The node each output reads (-1 for an unknown one, with a problem).
std::vector<int> ResolveOutputs(const PipelineSpec& spec, const NodeNames& names,
                                std::vector<Problem>* problems) {
  std::vector<int> out;
  for (const OutputSpec& output : spec.outputs) {
    const int from = names.Find(output.from.name);
    if (from < 0) {
      problems->push_back({output.from.line, "output " + Quoted(output.name) + " reads from " +
                                                 Quoted(output.from.name) +
                                                 ", which no stage or source defines" +
                                                 DidYouMeanSuffix(output.from.name, names.names)});
    }
    out.push_back(from);
  }
  return out;
}

Status ProblemsError(const PipelineSpec& spec, std::vector<Problem> problems) {
  std::stable_sort(problems.begin(), problems.end(),
                   [](const Problem& a, const Problem& b) { return a.line < b.line; });
  std::string message;
  for (const Problem& p : problems) {
    if (!message.empty()) message += "\n";
    message += spec.Where(p.line) + ": " + p.message;
  }
  return InvalidArgument(std::move(message));
}

// Kahn's algorithm; the ready node declared first goes first. Fills consumers; `pending` keeps
// the inputs not ordered (non-zero only for nodes on or behind a cycle).
std::vector<int> SortTopologically(std::vector<DagNode>& nodes, std::vector<int>* pending) {
  const int n = static_cast<int>(nodes.size());
  pending->assign(n, 0);
  for (int i = 0; i < n; ++i) {
    (*pending)[i] = static_cast<int>(nodes[i].inputs.size());
    for (const DagEdge& e : nodes[i].inputs) nodes[e.from].consumers.push_back(i);
  }
  std::priority_queue<int, std::vector<int>, std::greater<int>> ready;
  for (int i = 0; i < n; ++i) {
    if ((*pending)[i] == 0) ready.push(i);
  }
  std::vector<int> order;
  while (!ready.empty()) {
    int v = ready.top();
    ready.pop();
    order.push_back(v);
    for (int c : nodes[v].consumers) {
      if (--(*pending)[c] == 0) ready.push(c);
    }
  }
  return order;
}

// InvalidArgument naming a cycle among the nodes `pending` left unordered.
Status CycleError(const PipelineSpec& spec, const std::vector<DagNode>& nodes,
                  const std::vector<int>& pending) {
  // Every node left has an input that is also left: walk inputs until one repeats.
  int start = 0;
  while (pending[start] == 0) ++start;
  std::vector<int> path;
  std::map<int, size_t> position;
  int v = start;
  while (!position.count(v)) {
    position[v] = path.size();
    path.push_back(v);
    for (const DagEdge& e : nodes[v].inputs) {
      if (pending[e.from] > 0) {
        v = e.from;
        break;
      }
    }
  }
  // path[position[v]..] walks against the data flow; reverse it and start at the node
  // declared first.
  std::vector<int> cycle(path.begin() + static_cast<std::ptrdiff_t>(position[v]), path.end());
  std::reverse(cycle.begin(), cycle.end());
  std::rotate(cycle.begin(), std::min_element(cycle.begin(), cycle.end()), cycle.end());
  const DagNode& head = nodes[cycle.front()];
  int line = head.line;
  for (const DagEdge& e : head.inputs) {
    if (e.from == cycle.back()) line = e.line;
  }
  std::string text;
  for (int n : cycle) text += nodes[n].name + " -> ";
  text += head.name;
  return InvalidArgument(spec.Where(line) + ": stages form a cycle: " + text +
                         " (each reads the one before it); remove one of these reads or "
                         "depends_on entries");
}

// The problem a resolver's error is: a statement that is not a query says so; a parser
// error's "(line l, column c)", which is the SQL's, becomes the file's (sql_error.h).
Problem ResolveProblem(const Status& error, const NodeSql& at, const DagNode& node) {
  if (std::string kind = StatementKindIfNotAQuery(*at.sql); !kind.empty()) {
    return {at.line, at.owner + ": this SQL is " + kind + ", not a query; a " +
                         (node.kind == NodeKind::kStage ? "stage" : "source") +
                         " is one SELECT (or WITH ... SELECT), and respawn makes its result the "
                         "table " +
                         Quoted(node.name)};
  }
  PlacedSqlError placed = PlaceSqlError(error.message(), {.line = at.line, .column = at.column});
  return {placed.line, at.owner + ": " + placed.message};
}

}  // namespace

Result<Dag> BuildDag(const PipelineSpec& spec, const TableResolver& resolve,
                     const FileResolver& resolve_files) {
  Dag dag;
  dag.nodes_ = MakeNodes(spec);
  const NodeNames names(dag.nodes_);
  std::vector<Problem> problems;
  for (DagNode& node : dag.nodes_) {
    const NodeSql at = SqlOf(spec, node);
    if (at.sql == nullptr) continue;
    Result<std::vector<std::string>> tables = resolve(*at.sql);
    if (!tables.ok()) {
      problems.push_back(ResolveProblem(tables.status(), at, node));
      continue;
    }
    if (resolve_files) AddFileReads(spec, resolve_files, at, node, &problems);
    AddTableInputs(*tables, at, names, dag.nodes_, node, &problems);
    AddDeclaredInputs(spec, at, names, node, &problems);
    std::stable_sort(node.inputs.begin(), node.inputs.end(),
                     [](const DagEdge& a, const DagEdge& b) { return a.from < b.from; });
  }
  dag.output_nodes_ = ResolveOutputs(spec, names, &problems);
  if (!problems.empty()) return ProblemsError(spec, std::move(problems));

  std::vector<int> pending;
  dag.topological_order_ = SortTopologically(dag.nodes_, &pending);
  if (dag.topological_order_.size() < dag.nodes_.size()) {
    return CycleError(spec, dag.nodes_, pending);
  }
  for (int v : dag.topological_order_) {
    DagNode& n = dag.nodes_[v];
    for (const DagEdge& e : n.inputs) n.level = std::max(n.level, dag.nodes_[e.from].level + 1);
  }
  return dag;
}

std::string RunnableSql(const PipelineSpec& spec, const Dag& dag, int v) {
  const DagNode& node = dag.node(v);
  std::string sql;
  if (node.kind == NodeKind::kStage) {
    sql = spec.stages[node.spec_index].sql;
  } else if (spec.sources[node.spec_index].kind == SourceKind::kSql) {
    sql = spec.sources[node.spec_index].sql;
  }
  std::vector<std::pair<std::pair<size_t, size_t>, const std::string*>> edits;
  for (const DagFileRead& f : node.files) {
    for (const auto& span : f.literals) edits.push_back({span, &f.resolved});
  }
  // Back to front, so earlier offsets stay valid.
  std::sort(edits.begin(), edits.end(), [](const auto& a, const auto& b) { return a > b; });
  for (const auto& [span, resolved] : edits) {
    sql.replace(span.first, span.second - span.first, SqlStringLiteral(*resolved));
  }
  return sql;
}

}  // namespace respawn
