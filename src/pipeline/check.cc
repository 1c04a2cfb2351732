#include "pipeline/check.h"

#include <cctype>
#include <cstdlib>

#include "pipeline/expect.h"
#include "pipeline/sql_error.h"
#include "sql/table_refs.h"

namespace respawn {
namespace {

// The SELECT that defines node `v` in the check, or "" when it cannot be checked before the
// run (a file source behind a URL).
std::string CheckedSelect(const PipelineSpec& spec, const Dag& dag, int v) {
  const DagNode& node = dag.node(v);
  if (node.kind == NodeKind::kStage) return RunnableSql(spec, dag, v);
  const SourceSpec& source = spec.sources[node.spec_index];
  if (source.kind != SourceKind::kFiles) return RunnableSql(spec, dag, v);
  if (!source.location.is_url) return SourceSelectSql(source, {source.location.resolved});
  return std::string();
}

// A partitioned output's partition_by names columns of the table it writes (when that table
// could be bound before the run).
Status CheckPartitionColumns(const PipelineSpec& spec, const Dag& dag, Connection& conn,
                             const std::vector<bool>& bound) {
  for (size_t i = 0; i < spec.outputs.size(); ++i) {
    const OutputSpec& out = spec.outputs[i];
    const int v = dag.output_nodes()[i];
    if (out.partition_by.empty() || !bound[v]) continue;
    for (const std::string& column : out.partition_by) {
      Status s = conn.Execute("SELECT " + QuoteIdentifier(column) + " FROM " +
                              QuoteIdentifier(dag.node(v).name) + " LIMIT 0");
      if (s.ok() || s.code() != StatusCode::kInvalidArgument) continue;
      // DuckDB's first line, and its suggestion if it has one (the rest quotes our probe).
      const std::string& message = s.message();
      std::string detail = message.substr(0, message.find('\n'));
      if (size_t c = message.find("Candidate bindings:"); c != std::string::npos) {
        detail += "; " + message.substr(c, message.find('\n', c) - c);
      }
      return InvalidArgument(spec.Where(out.partition_line) + ": output \"" + out.name +
                             "\": partition_by names " + QuoteIdentifier(column) +
                             ", which is not a column of \"" + dag.node(v).name + "\" (" + detail +
                             ")");
    }
  }
  return Status::OK();
}

}  // namespace

Result<Dag> BuildPipelineDag(const PipelineSpec& spec, Connection& conn) {
  return BuildDag(
      spec, [&conn](std::string_view sql) { return FindTableNamesRead(conn, sql); },
      [&conn](std::string_view sql) -> Result<std::vector<SqlFileRef>> {
        ASSIGN_OR_RETURN(std::vector<FileReference> refs, FindFilesRead(conn, sql));
        std::vector<SqlFileRef> out;
        for (const FileReference& r : refs) out.push_back({r.function, r.path, r.offset});
        return out;
      });
}

Result<std::vector<FingerprintComponents>> FingerprintNodes(const PipelineSpec& spec,
                                                            const Dag& dag, SourceReads& reads) {
  return FingerprintPipeline(
      spec, dag, EngineVersion(),
      [&reads](const SourceSpec& source) { return reads.FingerprintSource(source); },
      [&reads](const DagFileRead& file) { return reads.FingerprintFileRead(file); });
}

Status NodeSqlError(const PipelineSpec& spec, const Dag& dag, int v, const Status& error,
                    int lines_before) {
  std::string message = error.message();
  // Drop the export's own context ("export to <key>: "): the stage is named instead.
  if (message.rfind("export to ", 0) == 0) {
    size_t colon = message.find(": ");
    if (colon != std::string::npos) message = message.substr(colon + 2);
  }
  const DagNode& node = dag.node(v);
  SqlPlacement where{.lines_before = lines_before};
  if (node.kind == NodeKind::kStage) {
    where.line = spec.stages[node.spec_index].sql_line;
    where.column = spec.stages[node.spec_index].sql_column;
  } else {
    where.line = spec.sources[node.spec_index].sql_line;
    where.column = spec.sources[node.spec_index].sql_column;
  }
  PlacedSqlError placed = PlaceSqlError(message, where);
  int line = placed.line;
  if (line == 0 && node.kind == NodeKind::kSource) line = spec.sources[node.spec_index].line;
  std::string what = node.kind == NodeKind::kStage ? "stage" : "source";
  return Status(error.code(),
                spec.Where(line) + ": " + what + " \"" + node.name + "\": " + placed.message);
}

Status CheckPipelineSql(const PipelineSpec& spec, const Dag& dag, Connection& conn) {
  std::vector<bool> bound(dag.size(), false);
  for (int v : dag.TopologicalOrder()) {
    bool inputs_bound = true;
    for (const DagEdge& e : dag.node(v).inputs) inputs_bound = inputs_bound && bound[e.from];
    if (!inputs_bound) continue;
    std::string select = CheckedSelect(spec, dag, v);
    if (select.empty()) continue;
    // The node's SQL on a line of its own, so DuckDB's excerpt shows only the user's text.
    Status s = conn.Execute("CREATE VIEW " + QuoteIdentifier(dag.node(v).name) + " AS\n" + select);
    if (!s.ok()) {
      if (s.code() != StatusCode::kInvalidArgument) continue;  // not the SQL's fault: at run time
      return NodeSqlError(spec, dag, v, s, /*lines_before=*/1);
    }
    bound[v] = true;
    // Its expectations bound against it: a misspelt column is found before anything runs.
    RETURN_IF_ERROR(CheckExpectationSql(spec, dag, v, conn));
  }
  return CheckPartitionColumns(spec, dag, conn, bound);
}

Result<Dag> CheckPipeline(const PipelineSpec& spec) {
  ASSIGN_OR_RETURN(std::unique_ptr<Database> db, Database::Open());
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, db->Connect());
  ASSIGN_OR_RETURN(Dag dag, BuildPipelineDag(spec, *conn));
  RETURN_IF_ERROR(CheckPipelineSql(spec, dag, *conn));
  return dag;
}

}  // namespace respawn
