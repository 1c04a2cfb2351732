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
  return Status::OK();
}

Result<Dag> CheckPipeline(const PipelineSpec& spec) {
  ASSIGN_OR_RETURN(std::unique_ptr<Database> db, Database::Open());
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, db->Connect());
  ASSIGN_OR_RETURN(Dag dag, BuildPipelineDag(spec, *conn));
  RETURN_IF_ERROR(CheckPipelineSql(spec, dag, *conn));
  return dag;
}

}  // namespace respawn
