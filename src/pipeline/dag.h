// The pipeline's DAG: sources and stages as nodes, "reads" and depends_on as edges.
//
// Nodes are numbered in declaration order (file line), sources and stages interleaved as they
// appear. Every order the Dag hands out is deterministic: ties go to declaration order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pipeline/spec.h"
#include "util/status.h"

namespace respawn {

/// Returns the base tables `sql` reads (CTE names and table functions excluded), as written;
/// an error (e.g. a SQL syntax error) is reported against the stage. The SQL layer provides a
/// DuckDB-based resolver.
using TableResolver = std::function<Result<std::vector<std::string>>(std::string_view sql)>;

/// A file that SQL reads by name, as the SQL layer finds it (sql/table_refs.h FileReference).
struct SqlFileRef {
  std::string function;  // "read_parquet", ...; "" for a file named as a table (FROM 'data.csv')
  std::string path;      // as written; may be a glob
  size_t offset = SIZE_MAX;  // byte offset in the SQL of the literal naming it (its opening quote)
};

/// Returns the files `sql` reads by name; an error (a path that is not a literal) is reported
/// against the stage. The SQL layer provides a DuckDB-based resolver.
using FileResolver = std::function<Result<std::vector<SqlFileRef>>(std::string_view sql)>;

/// A file (or glob) a node's SQL reads by name.
struct DagFileRead {
  std::string written;        // as written in the SQL ("plans.parquet", "in/*.csv")
  std::string resolved;       // absolute: a relative path is joined to the pipeline file's folder
  bool may_be_empty = false;  // only glob() lists it: matching no file is not an error
  int line = 0;               // where it is first named
  /// The [begin, end) byte ranges in the node's SQL of the literals naming a relative path,
  /// which RunnableSql replaces by the resolved one.
  std::vector<std::pair<size_t, size_t>> literals;
};

enum class NodeKind { kSource, kStage };

struct DagEdge {
  int from = 0;           // the node read
  int line = 0;           // where the read (or depends_on entry) is written
  bool declared = false;  // from depends_on only (the SQL does not read it)
};

struct DagNode {
  NodeKind kind = NodeKind::kSource;
  std::string name;
  int line = 0;
  int spec_index = 0;              // into spec.sources or spec.stages, by kind
  std::vector<DagEdge> inputs;     // unique, ascending by node
  std::vector<int> consumers;      // unique, ascending
  std::vector<DagFileRead> files;  // read by name in its SQL; distinct by `written`, text order
  int level = 0;                   // 0 for nodes without inputs, else 1 + max level of inputs
};

class Dag {
 public:
  const std::vector<DagNode>& nodes() const { return nodes_; }
  const DagNode& node(int index) const { return nodes_[index]; }
  int size() const { return static_cast<int>(nodes_.size()); }

  /// Case-insensitive lookup of a source or stage.
  std::optional<int> Find(std::string_view name) const;

  /// Inputs before their consumers; among nodes ready at the same time, declaration order.
  const std::vector<int>& TopologicalOrder() const { return topological_order_; }

  /// Nodes grouped by level: everything in a level can run once the levels before it are done.
  /// Each level ascending.
  std::vector<std::vector<int>> Levels() const;

  /// Names of a node's inputs in node order.
  std::vector<std::string> InputNames(int index) const;

  /// Every node downstream of `index` (not itself), in topological order.
  std::vector<int> Descendants(int index) const;
  /// Every node upstream of `index` (not itself), in topological order.
  std::vector<int> Ancestors(int index) const;

  /// The node each output reads, indexed like spec.outputs.
  const std::vector<int>& output_nodes() const { return output_nodes_; }

  /// The heaviest chain of nodes by `cost` (e.g. expected seconds), source to sink. Ties go to
  /// the earlier node. Empty for an empty DAG.
  std::vector<int> CriticalPath(const std::function<double(int)>& cost) const;

 private:
  friend Result<Dag> BuildDag(const PipelineSpec& spec, const TableResolver& resolve,
                              const FileResolver& resolve_files);

  std::vector<DagNode> nodes_;
  std::vector<int> topological_order_;
  std::vector<int> output_nodes_;
};

/// Builds the DAG of `spec` (which ParsePipeline* validated), finding what each stage reads with
/// `resolve`, and the files each stage or generated source reads by name with `resolve_files`
/// (if given). InvalidArgument with `file:line: ...` for SQL the resolvers reject, tables no
/// source or stage defines (with a did-you-mean), generated sources that read tables, and cycles.
/// Paths starting with a URL scheme (s3://, https://) are left to DuckDB, which cannot read them
/// in this build.
Result<Dag> BuildDag(const PipelineSpec& spec, const TableResolver& resolve,
                     const FileResolver& resolve_files = nullptr);

/// The SQL node `v` runs: its SQL (params substituted) with each relative path it reads by name
/// replaced by the absolute one, so it reads the files next to the pipeline file whatever the
/// current directory. File sources have none ("").
std::string RunnableSql(const PipelineSpec& spec, const Dag& dag, int v);

}  // namespace respawn
