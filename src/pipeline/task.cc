#include "pipeline/task.h"

#include <chrono>

#include "pipeline/check.h"
#include "util/crash_point.h"
#include "util/pause_point.h"

namespace respawn {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

bool IsFileSource(const PipelineSpec& spec, const DagNode& node) {
  return node.kind == NodeKind::kSource && spec.sources[node.spec_index].kind == SourceKind::kFiles;
}

// OK when the files node `v` read (its file-source inputs, the files its SQL names) are the
// ones fingerprinted; FailedPrecondition naming the file otherwise. REQUIRES: `v` ran.
Status VerifyFilesRead(const TaskEnv& env, int v) {
  const DagNode& node = env.dag->node(v);
  const std::string reader = NodeWhere(*env.spec, *env.dag, v);
  for (const DagEdge& e : node.inputs) {
    const DagNode& input = env.dag->node(e.from);
    if (!IsFileSource(*env.spec, input)) continue;
    RETURN_IF_ERROR(env.reads->VerifySource(env.spec->sources[input.spec_index], reader));
  }
  for (const DagFileRead& f : node.files) RETURN_IF_ERROR(env.reads->VerifyFileRead(f, reader));
  return Status::OK();
}

// A node without a checkpoint: a table in the database.
Result<TaskResult> ComputeTable(const TaskEnv& env, int v, Connection& conn,
                                const std::string& sql) {
  const std::string name = env.dag->node(v).name;
  Status s = conn.Execute("CREATE OR REPLACE TABLE " + QuoteIdentifier(name) + " AS " + sql);
  if (!s.ok()) return NodeSqlError(*env.spec, *env.dag, v, s, /*lines_before=*/0);
  RETURN_IF_ERROR(VerifyFilesRead(env, v));
  ASSIGN_OR_RETURN(Value count, conn.QueryScalar("SELECT count(*) FROM " + QuoteIdentifier(name)));
  TaskResult out;
  out.rows = count.AsUInt64().ValueOr(0);
  return out;
}

// A checkpointed node: exported to a local Parquet file that becomes its view.
Result<TaskResult> ComputeCheckpoint(const TaskEnv& env, int v, Connection& conn,
                                     const std::string& sql) {
  const std::string name = env.dag->node(v).name;
  ExportOptions export_options;
  if (!env.profile_dir.empty()) export_options.profile_path = TaskProfilePath(env, v);
  Result<ExportedFile> file = ExportQueryToFile(conn, sql, env.tables->cache_dir(), export_options);
  if (!file.ok()) {
    const Status& e = file.status();
    if (e.code() == StatusCode::kInvalidArgument || e.code() == StatusCode::kInternal ||
        e.code() == StatusCode::kFailedPrecondition) {
      // The export wraps the query in "COPY (\n...": one line before the stage's SQL.
      return NodeSqlError(*env.spec, *env.dag, v, e, /*lines_before=*/1);
    }
    return e.WithContext("stage \"" + name + "\"");
  }
  // What was exported must be what the fingerprint describes before a commit names it.
  RETURN_IF_ERROR(VerifyFilesRead(env, v));
  RETURN_IF_ERROR(
      CreateCheckpointView(conn, name, file->path).WithContext("stage \"" + name + "\""));
  TaskResult out;
  out.rows = file->rows;
  out.file = std::move(*file);
  return out;
}

// Node `v`'s expectations against its result, before anything commits it: violations of
// severity "error" fail the task; "warn" ones go into `out`.
Status CheckResult(const TaskEnv& env, int v, Connection& conn, TaskResult* out) {
  ASSIGN_OR_RETURN(std::vector<ExpectationViolation> violations,
                   CheckExpectations(*env.spec, *env.dag, v, conn));
  if (violations.empty()) return Status::OK();
  const StageSpec& stage = env.spec->stages[env.dag->node(v).spec_index];
  if (stage.severity == Severity::kWarn) {
    out->warnings = std::move(violations);
    return Status::OK();
  }
  std::string message;
  for (const ExpectationViolation& violation : violations) {
    if (!message.empty()) message += "\n";
    message += violation.message;
  }
  return FailedPrecondition(std::move(message));
}

}  // namespace

std::string TaskProfilePath(const TaskEnv& env, int node) {
  return env.profile_dir + "/" + env.dag->node(node).name + ".json";
}

LocalTables::LocalTables(const PipelineSpec& spec, const Dag& dag, Store& store, SourceReads& reads,
                         std::string cache_dir, std::string source_dir)
    : spec_(spec),
      dag_(dag),
      store_(store),
      reads_(reads),
      cache_dir_(std::move(cache_dir)),
      source_dir_(std::move(source_dir)) {}

void LocalTables::AddCheckpoint(int node, ExportedObject object) {
  std::lock_guard<std::mutex> lock(mu_);
  checkpoints_[node] = std::move(object);
}

void LocalTables::MarkDefined(int node) {
  std::lock_guard<std::mutex> lock(mu_);
  defined_.insert(node);
}

bool LocalTables::IsDefined(int node) const {
  std::lock_guard<std::mutex> lock(mu_);
  return defined_.count(node) > 0;
}

Status LocalTables::Ensure(Connection& conn, int node) {
  std::lock_guard<std::mutex> lock(mu_);
  if (defined_.count(node)) return Status::OK();
  if (IsFileSource(spec_, dag_.node(node))) {
    RETURN_IF_ERROR(DefineSource(conn, node));
  } else if (auto it = checkpoints_.find(node); it != checkpoints_.end()) {
    RETURN_IF_ERROR(LoadCheckpoint(conn, node, it->second));
  } else {
    return Internal(NodeWhere(spec_, dag_, node) + " is read but was neither computed nor loaded");
  }
  defined_.insert(node);
  return Status::OK();
}

Status LocalTables::DefineSource(Connection& conn, int node) {
  const SourceSpec& source = spec_.sources[dag_.node(node).spec_index];
  // Exactly the files fingerprinted: no second listing, store objects pinned by ETag.
  ASSIGN_OR_RETURN(std::string select,
                   reads_.SourceSelect(source, source_dir_ + "/" + source.name));
  Status s =
      conn.Execute("CREATE OR REPLACE VIEW " + QuoteIdentifier(source.name) + " AS " + select);
  return s.ok() ? s : s.WithContext(NodeWhere(spec_, dag_, node));
}

Status LocalTables::LoadCheckpoint(Connection& conn, int node, const ExportedObject& object) {
  const std::string& name = dag_.node(node).name;
  if (!object.local_path.empty()) return CreateCheckpointView(conn, name, object.local_path);
  ImportOptions import;
  import.cache_dir = cache_dir_;
  return ImportFromStore(conn, store_, object, name, import).status();
}

std::string NodeWhere(const PipelineSpec& spec, const Dag& dag, int node) {
  const DagNode& n = dag.node(node);
  if (n.kind == NodeKind::kStage) {
    const StageSpec& stage = spec.stages[n.spec_index];
    return spec.Where(stage.sql_line ? stage.sql_line : stage.line) + ": stage \"" + stage.name +
           "\"";
  }
  const SourceSpec& source = spec.sources[n.spec_index];
  return spec.Where(source.line) + ": source \"" + source.name + "\"";
}

Result<TaskResult> RunTask(const TaskEnv& env, int node, Connection& conn) {
  // Tests stop here to change a file between the fingerprint and the read.
  PausePoint("runner:before-read");
  for (const DagEdge& e : env.dag->node(node).inputs) {
    RETURN_IF_ERROR(env.tables->Ensure(conn, e.from));
  }
  CrashPoint<"runner:before-stage">();
  Clock::time_point start = Clock::now();
  const std::string sql = RunnableSql(*env.spec, *env.dag, node);
  const bool checkpoint = env.dag->node(node).kind != NodeKind::kStage ||
                          env.spec->stages[env.dag->node(node).spec_index].checkpoint;
  Result<TaskResult> out =
      checkpoint ? ComputeCheckpoint(env, node, conn, sql) : ComputeTable(env, node, conn, sql);
  if (!out.ok()) return out;
  RETURN_IF_ERROR(CheckResult(env, node, conn, &*out));
  env.tables->MarkDefined(node);
  out->seconds = SecondsSince(start);
  return out;
}

}  // namespace respawn
