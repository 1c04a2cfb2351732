#include "pipeline/runner.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "ledger/ledger.h"
#include "pipeline/fingerprint.h"
#include "pipeline/owner.h"
#include "pipeline/source_reads.h"
#include "pipeline/sql_error.h"
#include "sql/engine.h"
#include "sql/parquet_transfer.h"
#include "sql/table_refs.h"
#include "storage/store_url.h"
#include "util/crash_point.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/pause_point.h"

namespace respawn {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string StageEntryName(std::string_view node) { return "stage/" + std::string(node); }
std::string OutputEntryName(std::string_view output) { return "output/" + std::string(output); }
std::string RunEntryName(std::string_view run) { return "run/" + std::string(run); }

// The DAG of `spec`, with the tables each stage reads and the files it reads by name found by
// DuckDB's parser on `conn`.
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

// Fingerprints every node; the listings the fingerprints describe stay in `reads`.
Result<std::vector<FingerprintComponents>> FingerprintNodes(const PipelineSpec& spec,
                                                            const Dag& dag, SourceReads& reads) {
  return FingerprintPipeline(
      spec, dag, EngineVersion(),
      [&reads](const SourceSpec& source) { return reads.FingerprintSource(source); },
      [&reads](const DagFileRead& file) { return reads.FingerprintFileRead(file); });
}

// A DuckDB error in a node's SQL as "<file>:<line>: stage "x": <message>", the line being the
// one DuckDB points at (sql_error.h), else the line the SQL starts on.
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

// Binds every node's SQL against the column types of its inputs before anything runs: a mistake
// only DuckDB's binder finds (an unknown column or function, a type mismatch) is reported at
// once, as a configuration error, instead of after the upstream stages have run. Each node
// becomes a view in a scratch database, in topological order; binding a view reads no data
// (a file source's reader samples its first file for the schema). Sources behind a URL are not
// fetched for this, so the stages that read them are checked when they run.
Status CheckPipelineSql(const PipelineSpec& spec, const Dag& dag) {
  ASSIGN_OR_RETURN(std::unique_ptr<Database> db, Database::Open());
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, db->Connect());
  std::vector<bool> bound(dag.size(), false);
  for (int v : dag.TopologicalOrder()) {
    const DagNode& node = dag.node(v);
    bool inputs_bound = true;
    for (const DagEdge& e : node.inputs) inputs_bound = inputs_bound && bound[e.from];
    if (!inputs_bound) continue;
    std::string select;
    if (node.kind == NodeKind::kStage) {
      select = RunnableSql(spec, dag, v);
    } else {
      const SourceSpec& source = spec.sources[node.spec_index];
      if (source.kind != SourceKind::kFiles) {
        select = RunnableSql(spec, dag, v);
      } else if (!source.location.is_url) {
        select = SourceSelectSql(source, {source.location.resolved});
      } else {
        continue;
      }
    }
    // The node's SQL on a line of its own, so DuckDB's excerpt shows only the user's text.
    Status s = conn->Execute("CREATE VIEW " + QuoteIdentifier(node.name) + " AS\n" + select);
    if (!s.ok()) {
      if (s.code() != StatusCode::kInvalidArgument) continue;  // not the SQL's fault: at run time
      return NodeSqlError(spec, dag, v, s, /*lines_before=*/1);
    }
    bound[v] = true;
  }
  return Status::OK();
}

Status FsyncPath(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) return FailedPrecondition("cannot open " + path + " to sync it");
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return FailedPrecondition("fsync of " + path + " failed");
  return Status::OK();
}

class Runner {
 public:
  Runner(const PipelineSpec& spec, const RunOptions& options) : spec_(spec), options_(options) {}

  Result<RunReport> Run();

 private:
  struct NodeState {
    bool compute = false;
    bool materialized = false;  // a view/table of this name exists in the database
    bool reuse_candidate = false;
    bool done = false;
    bool started = false;
    std::optional<ledger::Entry> entry;  // committed entry with the current fingerprint
  };

  Status Prepare();
  Status RecordOwner();
  Status Plan();
  Status MaterializeSource(Connection& conn, int v);
  Status ImportCheckpoint(Connection& conn, int v);
  void Execute();
  Status ComputeNode(Connection& conn, int v);
  /// OK when the files node `v` read (its file-source inputs, the files its SQL names) are the
  /// ones fingerprinted; FailedPrecondition naming the file otherwise. REQUIRES: `v` ran.
  Status VerifyFilesRead(int v);
  bool OutputIsCurrent(size_t index);
  Status WriteOutputs(Connection& conn);
  Status WriteOutput(Connection& conn, size_t index);
  void CommitRunReport();
  void Emit(RunEvent::Type type, const NodeReport* node, const OutputReport* output = nullptr,
            double percent = -1);
  bool Interrupted() const {
    return options_.interrupted != nullptr && options_.interrupted->load();
  }
  std::string StageWhere(int v) const;
  Status SqlError(int v, const Status& error, int lines_before) const;

  const PipelineSpec& spec_;
  const RunOptions& options_;
  Clock::time_point start_ = Clock::now();
  std::unique_ptr<Database> db_;
  std::unique_ptr<Connection> setup_;
  Dag dag_;
  std::vector<FingerprintComponents> fps_;
  SourceReads reads_;  // the file listings fps_ describe; reads go through it
  std::unique_ptr<ledger::Ledger> ledger_;
  std::vector<NodeState> state_;
  RunReport report_;
  std::string cache_dir_;
  std::string source_cache_dir_;

  std::mutex mu_;  // guards state_ and report_ during Execute
  std::condition_variable cv_;
  std::mutex event_mu_;
  std::mutex source_mu_;  // serializes creating source views
  Status failure_;        // first failure; GUARDED_BY(mu_)
};

Status Runner::SqlError(int v, const Status& error, int lines_before) const {
  return NodeSqlError(spec_, dag_, v, error, lines_before);
}

std::string Runner::StageWhere(int v) const {
  const DagNode& node = dag_.node(v);
  if (node.kind == NodeKind::kStage) {
    const StageSpec& stage = spec_.stages[node.spec_index];
    return spec_.Where(stage.sql_line ? stage.sql_line : stage.line) + ": stage \"" + stage.name +
           "\"";
  }
  const SourceSpec& source = spec_.sources[node.spec_index];
  return spec_.Where(source.line) + ": source \"" + source.name + "\"";
}

void Runner::Emit(RunEvent::Type type, const NodeReport* node, const OutputReport* output,
                  double percent) {
  if (!options_.on_event) return;
  std::lock_guard<std::mutex> lock(event_mu_);
  RunEvent event;
  event.type = type;
  event.node = node;
  event.output = output;
  event.percent = percent;
  options_.on_event(event);
}

Status Runner::Prepare() {
  DatabaseOptions db_options;
  db_options.threads = options_.threads;
  db_options.memory_limit_bytes = options_.memory_limit_bytes;
  ASSIGN_OR_RETURN(db_, Database::Open(db_options));
  ASSIGN_OR_RETURN(setup_, db_->Connect());
  cache_dir_ = db_->temp_directory() + "/import-cache";
  source_cache_dir_ = db_->temp_directory() + "/sources";

  ASSIGN_OR_RETURN(dag_, BuildPipelineDag(spec_, *setup_));

  ASSIGN_OR_RETURN(fps_, FingerprintNodes(spec_, dag_, reads_));
  RETURN_IF_ERROR(CheckPipelineSql(spec_, dag_));

  report_.store_url = options_.store->Url();
  report_.nodes.resize(dag_.size());
  state_.resize(dag_.size());
  for (int v = 0; v < dag_.size(); ++v) {
    const DagNode& node = dag_.node(v);
    NodeReport& r = report_.nodes[v];
    r.name = node.name;
    r.kind = node.kind;
    r.fingerprint = fps_[v].total.Hex();
    if (node.kind == NodeKind::kStage) r.checkpoint = spec_.stages[node.spec_index].checkpoint;
    if (node.kind == NodeKind::kSource &&
        spec_.sources[node.spec_index].kind == SourceKind::kFiles) {
      r.checkpoint = false;
      r.action = NodeAction::kSource;
    }
  }

  if (!options_.adopt) {
    // Before claiming the ledger: a claim would fence a run of the file that owns it.
    ledger::LedgerOptions read_options;
    read_options.mode = ledger::LedgerMode::kReadOnly;
    read_options.coordinator = options_.commit.coordinator;
    ASSIGN_OR_RETURN(std::unique_ptr<ledger::Ledger> reader,
                     ledger::Ledger::Open(options_.store, PipelineNamespace(spec_), read_options));
    RETURN_IF_ERROR(CheckPipelineOwner(spec_, reader->state(), options_.store->Url(), "run"));
  }
  ledger::LedgerOptions ledger_options;
  ledger_options.mode = ledger::LedgerMode::kWrite;
  ledger_options.coordinator = options_.commit.coordinator;
  ledger_options.single_writer = options_.commit.single_writer;
  ASSIGN_OR_RETURN(ledger_,
                   ledger::Ledger::Open(options_.store, PipelineNamespace(spec_), ledger_options));
  report_.run_id = ledger_->run_id();
  return RecordOwner();
}

// Records this file as the namespace's owner when none is (or with --adopt); refuses if another
// file became the owner since the check above.
Status Runner::RecordOwner() {
  std::optional<PipelineOwner> owner = FindPipelineOwner(ledger_->state());
  const bool ours = owner && owner->path == PipelineFileIdentity(spec_);
  if (ours) return Status::OK();
  if (owner && !options_.adopt) {
    Status refused = CheckPipelineOwner(spec_, ledger_->state(), options_.store->Url(), "run");
    ledger_->Close().IgnoreError();
    return refused;
  }
  ledger::Changes changes;
  changes.upserts[std::string(kOwnerEntry)] = NewOwnerEntry(spec_);
  return ledger_->Commit(changes).status().WithContext("recording the pipeline file's ownership");
}

// Decides what to reuse and what to compute. Reused checkpoints that something in this run must
// read are downloaded and verified now; one that fails turns its node into a computed one.
Status Runner::Plan() {
  for (int v = 0; v < dag_.size(); ++v) {
    NodeReport& r = report_.nodes[v];
    if (r.action == NodeAction::kSource) continue;
    if (!r.checkpoint) {
      r.reason = "not checkpointed";
      continue;
    }
    std::optional<ledger::Entry> entry = ledger_->Find(StageEntryName(r.name));
    if (options_.fresh) {
      r.reason = "--fresh";
    } else if (!entry) {
      r.reason = "no checkpoint";
    } else if (entry->fingerprint != r.fingerprint) {
      Result<FingerprintComponents> before =
          FingerprintComponents::Parse(entry->meta.value("components", std::string()));
      r.reason = before.ok() ? ExplainChangeText(*before, fps_[v]) : "changed fingerprint";
    } else if (Status s = ledger_->VerifyData(*entry, /*checksum=*/false); !s.ok()) {
      r.reason = std::string(s.IsNotFound() ? "checkpoint missing: " : "checkpoint corrupt: ") +
                 s.message();
    } else {
      state_[v].reuse_candidate = true;
      state_[v].entry = entry;
    }
  }

  // Demand-driven, like make: the targets are the outputs not already current and the stages
  // nothing else reads; a target with a usable checkpoint is reused, any other is computed and
  // demands its inputs in turn. A checkpoint that must be read (by a computed node or an
  // output) is downloaded and verified here; if that fails, the node is computed instead and the
  // plan is made again.
  std::vector<bool> output_current(spec_.outputs.size());
  for (size_t i = 0; i < spec_.outputs.size(); ++i) output_current[i] = OutputIsCurrent(i);
  for (;;) {
    std::vector<bool> demanded(dag_.size(), false);
    std::vector<bool> needed(dag_.size(), false);  // must be readable in the database
    for (size_t i = 0; i < spec_.outputs.size(); ++i) {
      if (output_current[i]) continue;
      int o = dag_.output_nodes()[i];
      demanded[o] = needed[o] = true;
    }
    for (int v = 0; v < dag_.size(); ++v) {
      if (dag_.node(v).consumers.empty()) demanded[v] = true;
    }
    const std::vector<int>& topo = dag_.TopologicalOrder();
    for (auto it = topo.rbegin(); it != topo.rend(); ++it) {
      int v = *it;
      state_[v].compute = false;
      if (!demanded[v] || report_.nodes[v].action == NodeAction::kSource) continue;
      if (state_[v].reuse_candidate) continue;
      state_[v].compute = true;
      for (const DagEdge& e : dag_.node(v).inputs) demanded[e.from] = needed[e.from] = true;
    }
    bool changed = false;
    for (int v : topo) {
      if (!needed[v] || state_[v].compute || !state_[v].reuse_candidate || state_[v].materialized) {
        continue;
      }
      if (Interrupted()) return Status::OK();
      Status s = ImportCheckpoint(*setup_, v);
      if (!s.ok()) {
        if (s.code() != StatusCode::kDataLoss && !s.IsNotFound()) {
          return s.WithContext("reading the checkpoint of " + report_.nodes[v].name);
        }
        RESPAWN_LOG(kWarn, "checkpoint of " << report_.nodes[v].name
                                            << " is not usable, recomputing it: " << s.message());
        state_[v].reuse_candidate = false;
        report_.nodes[v].reason =
            std::string(s.IsNotFound() ? "checkpoint missing: " : "checkpoint corrupt: ") +
            s.message();
        changed = true;
        break;
      }
    }
    if (!changed) break;
  }

  for (int v = 0; v < dag_.size(); ++v) {
    NodeReport& r = report_.nodes[v];
    if (r.action == NodeAction::kSource) continue;
    if (!state_[v].compute && state_[v].reuse_candidate) {
      const ledger::Entry& e = *state_[v].entry;
      r.action = NodeAction::kReused;
      r.reason.clear();
      r.rows = e.meta.value("rows", uint64_t{0});
      r.bytes = e.meta.value("bytes", uint64_t{0});
      r.saved_seconds = e.meta.value("compute_seconds", 0.0);
      report_.saved_seconds += r.saved_seconds;
      state_[v].done = true;
    } else if (!state_[v].compute) {
      state_[v].done = true;  // nothing in this run reads it
      r.action = NodeAction::kSkipped;
      r.reason = "not needed: everything downstream is reused or current";
    }
    if (r.action == NodeAction::kSource) state_[v].done = true;
    Emit(RunEvent::Type::kPlanned, &r);
  }
  for (int v = 0; v < dag_.size(); ++v) {
    if (report_.nodes[v].action == NodeAction::kSource) state_[v].done = true;
  }
  return Status::OK();
}

Status Runner::ImportCheckpoint(Connection& conn, int v) {
  const ledger::Entry& entry = *state_[v].entry;
  if (entry.objects.size() != 1) {
    return DataLoss("checkpoint of " + report_.nodes[v].name + " names " +
                    std::to_string(entry.objects.size()) + " objects, expected 1");
  }
  ExportedObject expected;
  expected.key = entry.objects[0].key;
  expected.size = entry.objects[0].size;
  expected.xxh3 = entry.objects[0].xxh3;
  expected.rows = entry.meta.value("rows", uint64_t{0});
  Clock::time_point t0 = Clock::now();
  ImportOptions import;
  import.cache_dir = cache_dir_;
  RETURN_IF_ERROR(
      ImportFromStore(conn, *options_.store, expected, report_.nodes[v].name, import).status());
  report_.nodes[v].seconds += SecondsSince(t0);
  state_[v].materialized = true;
  return Status::OK();
}

Status Runner::MaterializeSource(Connection& conn, int v) {
  const SourceSpec& source = spec_.sources[dag_.node(v).spec_index];
  // Exactly the files fingerprinted: no second listing, store objects pinned by ETag.
  ASSIGN_OR_RETURN(std::string select,
                   reads_.SourceSelect(source, source_cache_dir_ + "/" + source.name));
  Status s =
      conn.Execute("CREATE OR REPLACE VIEW " + QuoteIdentifier(source.name) + " AS " + select);
  if (!s.ok()) return s.WithContext(StageWhere(v));
  state_[v].materialized = true;
  return Status::OK();
}

Status Runner::VerifyFilesRead(int v) {
  const DagNode& node = dag_.node(v);
  const std::string reader = StageWhere(v);
  for (const DagEdge& e : node.inputs) {
    const DagNode& input = dag_.node(e.from);
    if (report_.nodes[e.from].action != NodeAction::kSource) continue;
    RETURN_IF_ERROR(reads_.VerifySource(spec_.sources[input.spec_index], reader));
  }
  for (const DagFileRead& f : node.files) RETURN_IF_ERROR(reads_.VerifyFileRead(f, reader));
  return Status::OK();
}

Status Runner::ComputeNode(Connection& conn, int v) {
  NodeReport& r = report_.nodes[v];
  const std::string sql = RunnableSql(spec_, dag_, v);
  CrashPoint<"runner:before-stage">();
  Clock::time_point t0 = Clock::now();
  if (!r.checkpoint) {
    Status s = conn.Execute("CREATE OR REPLACE TABLE " + QuoteIdentifier(r.name) + " AS " + sql);
    if (!s.ok()) return SqlError(v, s, /*lines_before=*/0);
    RETURN_IF_ERROR(VerifyFilesRead(v));
    ASSIGN_OR_RETURN(Value count,
                     conn.QueryScalar("SELECT count(*) FROM " + QuoteIdentifier(r.name)));
    r.rows = count.AsUInt64().ValueOr(0);
    r.seconds = SecondsSince(t0);
    return Status::OK();
  }
  ASSIGN_OR_RETURN(std::string key,
                   ledger_->DataKey(r.name, r.fingerprint, report_.run_id + ".parquet"));
  ExportOptions export_options;
  export_options.keep_in_cache_dir = cache_dir_;
  // The data object goes up before the commit that names it (ledger invariant 1); the ledger's
  // data crash points bracket it here as they do in Ledger::PutData.
  CrashPoint<"ledger:before-data">();
  Result<ExportedObject> exported =
      ExportQueryToStore(conn, sql, *options_.store, key, export_options);
  if (exported.ok()) CrashPoint<"ledger:after-data">();
  if (!exported.ok()) {
    const Status& e = exported.status();
    if (e.code() == StatusCode::kInvalidArgument || e.code() == StatusCode::kInternal ||
        e.code() == StatusCode::kFailedPrecondition) {
      // The export wraps the query in "COPY (\n...": one line before the stage's SQL.
      return SqlError(v, e, /*lines_before=*/1);
    }
    return e.WithContext("stage \"" + r.name + "\"");
  }
  CrashPoint<"runner:after-export">();
  // What was exported must be what the fingerprint describes before a commit names it.
  RETURN_IF_ERROR(VerifyFilesRead(v));
  double seconds = SecondsSince(t0);

  ledger::Changes changes;
  ledger::Entry entry;
  entry.fingerprint = r.fingerprint;
  entry.objects.push_back({exported->key, exported->size, exported->xxh3});
  entry.meta = {{"rows", exported->rows},
                {"bytes", exported->size},
                {"compute_seconds", seconds},
                {"components", fps_[v].Serialize()}};
  changes.upserts[StageEntryName(r.name)] = entry;
  Result<uint64_t> committed = ledger_->Commit(changes);
  if (!committed.ok()) {
    return committed.status().WithContext("committing stage \"" + r.name + "\"");
  }
  CrashPoint<"runner:after-commit">();

  if (!exported->local_path.empty()) {
    RETURN_IF_ERROR(CreateCheckpointView(conn, r.name, exported->local_path)
                        .WithContext("stage \"" + r.name + "\""));
  } else {
    ImportOptions import;
    import.cache_dir = cache_dir_;
    RETURN_IF_ERROR(ImportFromStore(conn, *options_.store, *exported, r.name, import).status());
  }
  r.rows = exported->rows;
  r.bytes = exported->size;
  r.seconds = SecondsSince(t0);
  return Status::OK();
}

void Runner::Execute() {
  int workers = options_.threads > 0 ? options_.threads
                                     : static_cast<int>(std::thread::hardware_concurrency());
  workers = std::clamp(workers, 1, 4);
  std::vector<Connection*> running(dag_.size(), nullptr);
  auto ready = [&](int v) {
    if (state_[v].done || state_[v].started || !state_[v].compute) return false;
    for (const DagEdge& e : dag_.node(v).inputs) {
      if (!state_[e.from].done) return false;
    }
    return true;
  };

  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      (void)w;
      Result<std::unique_ptr<Connection>> conn = db_->Connect();
      std::unique_lock<std::mutex> lock(mu_);
      if (!conn.ok()) {
        if (failure_.ok()) failure_ = conn.status();
        cv_.notify_all();
        return;
      }
      for (;;) {
        int pick = -1;
        bool pending = false;
        for (int v : dag_.TopologicalOrder()) {
          if (state_[v].compute && !state_[v].done) pending = true;
          if (pick < 0 && ready(v)) pick = v;
        }
        bool stop = !failure_.ok() || Interrupted();
        if (stop || !pending) break;
        if (pick < 0) {
          cv_.wait_for(lock, std::chrono::milliseconds(200));
          continue;
        }
        state_[pick].started = true;
        running[pick] = conn->get();
        NodeReport& r = report_.nodes[pick];
        lock.unlock();
        Emit(RunEvent::Type::kStarted, &r);
        // Tests stop here to change a file between the fingerprint and the read.
        PausePoint("runner:before-read");
        Status s;
        // Inputs that are file sources become views on first use.
        for (const DagEdge& e : dag_.node(pick).inputs) {
          std::lock_guard<std::mutex> source_lock(source_mu_);
          if (s.ok() && report_.nodes[e.from].action == NodeAction::kSource &&
              !state_[e.from].materialized) {
            s = MaterializeSource(**conn, e.from);
          }
        }
        if (s.ok()) s = ComputeNode(**conn, pick);
        lock.lock();
        running[pick] = nullptr;
        if (s.ok()) {
          r.action = NodeAction::kComputed;
          state_[pick].done = true;
          state_[pick].materialized = true;
        } else if (Interrupted() || s.code() == StatusCode::kAborted) {
          r.action = NodeAction::kInterrupted;
          if (!Interrupted() && failure_.ok()) failure_ = s;
        } else {
          r.action = NodeAction::kFailed;
          if (failure_.ok()) failure_ = s;
        }
        lock.unlock();
        Emit(RunEvent::Type::kFinished, &r);
        lock.lock();
        cv_.notify_all();
      }
      cv_.notify_all();
    });
  }

  // Progress and interruption: poll the running connections.
  {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      bool pending = false;
      for (int v = 0; v < dag_.size(); ++v) {
        if (state_[v].compute && !state_[v].done && (state_[v].started || failure_.ok())) {
          if (running[v] != nullptr || !state_[v].started) pending = true;
        }
      }
      bool stop = !failure_.ok() || Interrupted();
      bool any_running = false;
      for (Connection* c : running) any_running = any_running || c != nullptr;
      if (!any_running && (stop || !pending)) break;
      if (Interrupted()) {
        for (Connection* c : running) {
          if (c != nullptr) c->Interrupt();
        }
      }
      std::vector<std::pair<int, double>> progress;
      for (int v = 0; v < dag_.size(); ++v) {
        if (running[v] != nullptr) progress.emplace_back(v, running[v]->Progress().percentage);
      }
      lock.unlock();
      for (auto [v, pct] : progress)
        Emit(RunEvent::Type::kProgress, &report_.nodes[v], nullptr, pct);
      lock.lock();
      cv_.wait_for(lock, std::chrono::milliseconds(250));
    }
  }
  for (std::thread& t : threads) t.join();
  for (int v = 0; v < dag_.size(); ++v) {
    if (state_[v].compute && !state_[v].done && report_.nodes[v].action == NodeAction::kPending) {
      report_.nodes[v].action = NodeAction::kInterrupted;
    }
  }
}

// Unchanged: same node fingerprint and format, and the file there is the one we wrote.
bool Runner::OutputIsCurrent(size_t index) {
  const OutputSpec& out = spec_.outputs[index];
  int v = dag_.output_nodes()[index];
  OutputReport& r = report_.outputs[index];
  r.name = out.name;
  r.path = out.location.resolved;
  std::string content_id = out.ContentId(report_.nodes[v].fingerprint);
  std::optional<ledger::Entry> previous = ledger_->Find(OutputEntryName(out.name));
  if (options_.fresh || !previous || previous->fingerprint != content_id ||
      previous->meta.value("path", std::string()) != r.path) {
    return false;
  }
  if (out.location.is_url) {
    auto [url, key] = SplitUrlPattern(r.path);
    Result<OpenedStore> opened = OpenStore(url);
    if (!opened.ok()) return false;
    const uint64_t size = previous->meta.value("size", uint64_t{0});
    Result<ObjectInfo> info = opened->store->Stat(key);
    if (!info.ok() || info->size != size) return false;
    // The same version as written (S3 gives every overwrite a new ETag unless the bytes are the
    // same), else the content itself must match: a rewrite of equal size is not current.
    const std::string etag = previous->meta.value("etag", std::string());
    if (etag.empty() || info->etag != etag) {
      Result<uint64_t> xxh3 = ParseHexU64(previous->meta.value("xxh3", std::string()));
      if (!xxh3.ok()) return false;
      ledger::DataObject object{key, size, *xxh3};
      if (!ledger::VerifyData(*opened->store, object, /*checksum=*/true).ok()) return false;
    }
    r.bytes = info->size;
    return true;
  }
  Result<FileDigest> digest = DigestFile(r.path);
  if (!digest.ok() || digest->size != previous->meta.value("size", uint64_t{0}) ||
      HexU64(digest->xxh3) != previous->meta.value("xxh3", std::string())) {
    return false;
  }
  r.bytes = digest->size;
  return true;
}

Status Runner::WriteOutputs(Connection& conn) {
  for (size_t i = 0; i < spec_.outputs.size(); ++i) {
    if (Interrupted()) return Status::OK();
    RETURN_IF_ERROR(WriteOutput(conn, i));
  }
  return Status::OK();
}

Status Runner::WriteOutput(Connection& conn, size_t index) {
  const OutputSpec& out = spec_.outputs[index];
  int v = dag_.output_nodes()[index];
  OutputReport& r = report_.outputs[index];
  r.name = out.name;
  r.path = out.location.resolved;
  const std::string& fingerprint = report_.nodes[v].fingerprint;
  std::string format = std::string(DataFormatName(out.format));
  std::string content_id = out.ContentId(fingerprint);

  if (OutputIsCurrent(index) && report_.nodes[v].action != NodeAction::kComputed) {
    Emit(RunEvent::Type::kOutput, nullptr, &r);
    return Status::OK();
  }

  if (!state_[v].materialized) {
    if (report_.nodes[v].action == NodeAction::kSource) {
      RETURN_IF_ERROR(MaterializeSource(conn, v));
    } else {
      return Internal("output " + out.name + ": " + report_.nodes[v].name + " was not loaded");
    }
  }

  CrashPoint<"runner:before-output">();
  Clock::time_point t0 = Clock::now();
  const std::string& options = out.copy_options;  // from the pipeline file (spec.h)
  std::string tmp;
  std::string final_path;
  if (out.location.is_url) {
    tmp = db_->temp_directory() + "/output-" + out.name + "." + format;
  } else {
    std::filesystem::path p(r.path);
    std::error_code ec;
    std::filesystem::create_directories(p.parent_path(), ec);
    if (ec) {
      return FailedPrecondition(spec_.Where(out.location.line) + ": output \"" + out.name +
                                "\": cannot create directory " + p.parent_path().string() + ": " +
                                ec.message());
    }
    // ".<name>.respawn-tmp-<pid>-<random>": a killed run's leftover is removed by the next
    // run that writes this output, once its pid is gone.
    std::string tmp_prefix = "." + p.filename().string() + ".respawn-tmp-";
    for (const auto& entry : std::filesystem::directory_iterator(p.parent_path(), ec)) {
      std::string name = entry.path().filename().string();
      if (name.rfind(tmp_prefix, 0) != 0) continue;
      pid_t owner = static_cast<pid_t>(std::atol(name.c_str() + tmp_prefix.size()));
      if (owner > 0 && owner != ::getpid() && ::kill(owner, 0) != 0 && errno == ESRCH) {
        std::filesystem::remove(entry.path(), ec);
      }
    }
    tmp = p.parent_path().string() + "/" + tmp_prefix + std::to_string(::getpid()) + "-" +
          ledger::NewRandomId().substr(0, 8);
  }
  // A Parquet output keeps the stage's types where Parquet has them (sql/parquet_types.h).
  Result<std::string> select = "SELECT * FROM " + QuoteIdentifier(report_.nodes[v].name);
  if (out.format == DataFormat::kParquet) select = ParquetOutputQuery(conn, *select);
  Status copied =
      select.ok()
          ? conn.Execute("COPY (" + *select + ") TO " + QuoteLiteral(tmp) + " (" + options + ")")
          : select.status();
  if (copied.ok() && report_.nodes[v].action == NodeAction::kSource) {
    copied = reads_.VerifySource(spec_.sources[dag_.node(v).spec_index],
                                 spec_.Where(out.line) + ": output \"" + out.name + "\"");
  }
  if (!copied.ok()) {
    std::filesystem::remove(tmp);
    return copied.WithContext(spec_.Where(out.line) + ": output \"" + out.name + "\"");
  }
  ASSIGN_OR_RETURN(FileDigest digest, DigestFile(tmp));
  // Outputs are outside the ledger: check this run still holds its epoch right before one is
  // published, so a zombie does not overwrite the output of the run that took over.
  if (Status owner = ledger_->CheckNotFenced(); !owner.ok()) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    return owner.WithContext("output \"" + out.name + "\" not written");
  }
  std::string etag;
  if (out.location.is_url) {
    auto [url, key] = SplitUrlPattern(r.path);
    Result<OpenedStore> opened = OpenStore(url);
    Status put = opened.ok() ? opened->store->PutFile(key, tmp) : opened.status();
    std::filesystem::remove(tmp);
    if (!put.ok()) return put.WithContext("output \"" + out.name + "\" to " + r.path);
    // The version written: while the object keeps it, its content is ours (OutputIsCurrent).
    Result<ObjectInfo> info = opened->store->Stat(key);
    if (info.ok() && info->size == digest.size) etag = info->etag;
  } else {
    RETURN_IF_ERROR(FsyncPath(tmp, false));
    std::error_code ec;
    std::filesystem::rename(tmp, r.path, ec);
    if (ec) {
      std::filesystem::remove(tmp);
      return FailedPrecondition("output \"" + out.name + "\": cannot move the new file to " +
                                r.path + ": " + ec.message());
    }
    FsyncPath(std::filesystem::path(r.path).parent_path().string(), true).IgnoreError();
  }
  r.written = true;
  r.bytes = digest.size;
  r.seconds = SecondsSince(t0);
  CrashPoint<"runner:after-output">();

  ledger::Changes changes;
  ledger::Entry entry;
  entry.fingerprint = content_id;
  entry.meta = {{"path", r.path}, {"size", digest.size}, {"xxh3", HexU64(digest.xxh3)}};
  if (!etag.empty()) entry.meta["etag"] = etag;
  changes.upserts[OutputEntryName(out.name)] = entry;
  RETURN_IF_ERROR(ledger_->Commit(changes).status().WithContext("committing output " + out.name));
  Emit(RunEvent::Type::kOutput, nullptr, &r);
  return Status::OK();
}

void Runner::CommitRunReport() {
  nlohmann::json nodes = nlohmann::json::array();
  int computed = 0, reused = 0;
  for (const NodeReport& n : report_.nodes) {
    if (n.action == NodeAction::kComputed) ++computed;
    if (n.action == NodeAction::kReused) ++reused;
    nodes.push_back({{"name", n.name},
                     {"action", std::string(NodeActionName(n.action))},
                     {"reason", n.reason},
                     {"seconds", n.seconds}});
  }
  std::string result = report_.status.ok()   ? "done"
                       : report_.interrupted ? "interrupted"
                                             : "failed";
  ledger::Changes changes;
  ledger::Entry entry;
  entry.fingerprint = "run";
  entry.meta = {{"result", result},
                {"seconds", SecondsSince(start_)},
                {"saved_seconds", report_.saved_seconds},
                {"computed", computed},
                {"reused", reused},
                {"error", report_.status.ok() ? "" : report_.status.message()},
                {"nodes", nodes}};
  if (options_.metrics != nullptr) {
    StoreMetrics m = options_.metrics->Snapshot();
    entry.meta["requests"] = {
        {"put", m.of(StoreOp::kPut).calls},
        {"get", m.of(StoreOp::kGet).calls},
        {"stat", m.of(StoreOp::kStat).calls},
        {"list", m.of(StoreOp::kList).calls},
        {"delete", m.of(StoreOp::kDelete).calls + m.of(StoreOp::kDeleteMany).calls},
        {"bytes_written", m.of(StoreOp::kPut).bytes},
        {"bytes_read", m.of(StoreOp::kGet).bytes}};
  }
  const bool trim = options_.gc && result == "done";
  if (trim) {
    // The run is finished: work-tables are no longer needed; the results are retained by this
    // report for [gc] keep_runs runs. One record commits both.
    ledger::LedgerState state = ledger_->state();
    for (const std::string& name : WorkTableEntries(spec_, dag_, state)) {
      changes.removals.insert(name);
    }
    entry.meta["results"] = ResultKeys(spec_, dag_, state);
  }
  // Old run reports go in the same commit: the ledger's state stays bounded.
  for (const std::string& name :
       ExpiredRunReports(ledger_->state(), spec_.gc.keep_run_reports, spec_.gc.keep_runs)) {
    changes.removals.insert(name);
  }
  changes.upserts[RunEntryName(report_.run_id)] = entry;
  Result<uint64_t> committed = ledger_->Commit(changes);
  if (!committed.ok()) {
    RESPAWN_LOG(kWarn, "could not record the run report: " << committed.status().message());
    return;
  }
  if (!trim) return;
  CrashPoint<"runner:before-gc">();
  GcOptions gc;
  gc.keep_runs = spec_.gc.keep_runs;
  gc.orphan_grace_ms = spec_.gc.orphan_grace_ms;
  Result<ledger::LedgerGarbage> obsolete = ledger_->CollectObsolete(2);
  if (obsolete.ok()) gc.ledger_garbage = obsolete->keys;
  Result<GcReport> collected = CollectGarbage(*ledger_, gc);
  report_.gc_ran = true;
  if (collected.ok()) {
    report_.gc = std::move(*collected);
  } else {
    report_.gc_status = collected.status();
  }
}

Result<RunReport> Runner::Run() {
  RETURN_IF_ERROR(Prepare());
  report_.outputs.resize(spec_.outputs.size());
  Status planned = Plan();
  if (!planned.ok()) {
    report_.status = planned;
  } else if (!Interrupted()) {
    Execute();
    std::lock_guard<std::mutex> lock(mu_);
    report_.status = failure_;
  }
  if (report_.status.ok() && !Interrupted()) {
    report_.status = WriteOutputs(*setup_);
  }
  report_.interrupted = Interrupted();
  if (report_.interrupted && report_.status.ok()) {
    report_.status = Aborted("interrupted");
  }
  const bool fenced = report_.status.IsFenced();
  if (fenced) {
    report_.status =
        FailedPrecondition("another run of pipeline \"" + spec_.name + "\" took over the store " +
                           options_.store->Url() +
                           " while this one was running; this run stopped and keeps what it "
                           "committed (" +
                           report_.status.message() + ")");
  } else {
    CommitRunReport();
  }
  ledger_->Close().IgnoreError();
  report_.seconds = SecondsSince(start_);
  return std::move(report_);
}

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
  std::vector<std::pair<uint64_t, RunSummary>> runs;
  for (const auto& [name, entry] : ledger->state().entries) {
    if (name.rfind("run/", 0) != 0) continue;
    RunSummary run;
    run.run_id = name.substr(4);
    run.finished_at_ms = entry.committed_at_ms;
    run.result = entry.meta.value("result", std::string());
    run.seconds = entry.meta.value("seconds", 0.0);
    run.saved_seconds = entry.meta.value("saved_seconds", 0.0);
    run.computed = entry.meta.value("computed", 0);
    run.reused = entry.meta.value("reused", 0);
    run.error = entry.meta.value("error", std::string());
    if (entry.meta.contains("requests")) {
      const nlohmann::json& q = entry.meta["requests"];
      run.puts = q.value("put", uint64_t{0});
      run.gets = q.value("get", uint64_t{0});
      run.stats = q.value("stat", uint64_t{0});
      run.lists = q.value("list", uint64_t{0});
      run.deletes = q.value("delete", uint64_t{0});
      run.bytes_written = q.value("bytes_written", uint64_t{0});
      run.bytes_read = q.value("bytes_read", uint64_t{0});
    }
    runs.emplace_back(entry.sequence, run);
  }
  std::sort(runs.begin(), runs.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [seq, run] : runs) status.runs.push_back(std::move(run));

  const std::set<std::string> live = RetainedKeys(ledger->state(), keep_runs);
  ListOptions list;
  list.prefix = ns + "/";
  std::string token;
  const std::string ledger_prefix = ledger->keys().LedgerPrefix();
  const std::string data_prefix = ledger->keys().DataPrefix();
  do {
    list.continuation_token = token;
    ASSIGN_OR_RETURN(ListPage page, store->List(list));
    for (const ObjectInfo& o : page.objects) {
      StoreUsage& u = status.usage;
      ++u.objects;
      u.bytes += o.size;
      const bool retained = live.count(o.key) > 0;
      if (retained) {
        ++u.live_objects;
        u.live_bytes += o.size;
      } else if (o.key.rfind(ledger_prefix, 0) == 0) {
        ++u.ledger_objects;
        u.ledger_bytes += o.size;
      }
      if (o.key.rfind(data_prefix, 0) != 0) continue;
      // <data>/<stage>/<fingerprint>/<attempt>/<run id>.parquet
      std::string_view rest = std::string_view(o.key).substr(data_prefix.size());
      while (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
      std::string stage(rest.substr(0, rest.find('/')));
      std::string_view file = rest.substr(rest.rfind('/') + 1);
      std::string run(file.substr(0, file.find('.')));
      for (UsageCount* c : {&u.by_stage[stage], &u.by_run[run]}) {
        ++c->objects;
        c->bytes += o.size;
        if (retained) {
          ++c->retained_objects;
          c->retained_bytes += o.size;
        }
      }
    }
    token = page.next_token;
  } while (!token.empty());
  *out = std::move(ledger);
  return status;
}

}  // namespace

std::string PipelineNamespace(const PipelineSpec& spec) { return "pipelines/" + spec.name; }

std::string_view NodeActionName(NodeAction action) {
  switch (action) {
    case NodeAction::kPending:
      return "pending";
    case NodeAction::kReused:
      return "reused";
    case NodeAction::kComputed:
      return "computed";
    case NodeAction::kSource:
      return "source";
    case NodeAction::kSkipped:
      return "skipped";
    case NodeAction::kFailed:
      return "failed";
    case NodeAction::kInterrupted:
      return "interrupted";
  }
  return "pending";
}

Result<RunReport> RunPipeline(const PipelineSpec& spec, const RunOptions& options) {
  if (options.store == nullptr) return InvalidArgument("RunPipeline: no store given");
  Runner runner(spec, options);
  return runner.Run();
}

Result<PipelineStatus> ReadPipelineLedger(std::shared_ptr<Store> store, const std::string& ns,
                                          std::shared_ptr<ledger::CommitCoordinator> coordinator) {
  std::unique_ptr<ledger::Ledger> ledger;
  ASSIGN_OR_RETURN(PipelineStatus status,
                   ReadLedgerState(store, ns, 1, &ledger, std::move(coordinator)));
  for (const auto& [name, entry] : ledger->state().entries) {
    if (name.rfind("stage/", 0) != 0) continue;
    NodeStatus n;
    n.name = name.substr(6);
    n.state = "committed";
    n.committed_fingerprint = entry.fingerprint;
    n.rows = entry.meta.value("rows", uint64_t{0});
    n.bytes = entry.meta.value("bytes", uint64_t{0});
    n.objects = entry.objects.size();
    n.committed_at_ms = entry.committed_at_ms;
    n.committed_by_run = entry.run_id;
    status.nodes.push_back(std::move(n));
  }
  return status;
}

Result<PipelineGcReport> CollectPipelineGarbage(const PipelineSpec& spec,
                                                std::shared_ptr<Store> store,
                                                const PipelineGcOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<Database> db, Database::Open());
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, db->Connect());
  ASSIGN_OR_RETURN(Dag dag, BuildPipelineDag(spec, *conn));

  PipelineGcReport out;
  ledger::LedgerOptions read_options;
  read_options.mode = ledger::LedgerMode::kReadOnly;
  read_options.coordinator = options.commit.coordinator;
  ASSIGN_OR_RETURN(std::unique_ptr<ledger::Ledger> ledger,
                   ledger::Ledger::Open(store, PipelineNamespace(spec), read_options));
  ledger::LedgerState state = ledger->state();
  RETURN_IF_ERROR(CheckPipelineOwner(spec, state, store->Url(), "gc"));
  std::vector<std::string> trim = WorkTableEntries(spec, dag, state);
  const std::string& epoch_run = state.epoch_run_id;
  auto run_it = state.entries.find(RunEntryName(epoch_run));
  bool finished = !epoch_run.empty() && run_it != state.entries.end();
  std::vector<std::string> ledger_garbage;
  ledger::LedgerOptions join;
  join.mode = ledger::LedgerMode::kJoin;
  join.run_id = epoch_run;
  join.coordinator = options.commit.coordinator;
  join.single_writer = options.commit.single_writer;
  if (trim.empty()) {
    // nothing to drop
  } else if (!finished) {
    out.trim_skipped = epoch_run.empty() ? "no run has finished yet"
                                         : "run " + epoch_run.substr(0, 8) +
                                               " is in progress or was killed; its work-tables "
                                               "stay until a run finishes";
  } else if (options.dry_run) {
    out.trimmed = trim;  // (asking the store for put-if-absent would write a probe object)
  } else {
    const std::string where = "the store " + store->Url();
    ASSIGN_OR_RETURN(ledger::CommitMode mode,
                     ledger::ChooseCommitMode(store->capabilities(), join, where));
    RETURN_IF_ERROR(ledger::CheckRecordedCommitMode(state, mode, join, ledger->Where()));
    if (mode == ledger::CommitMode::kSingleWriter) {
      out.trim_skipped =
          "single-writer mode (the store has no put-if-absent and no coordinator "
          "is configured), so GC cannot join the last run's epoch; work-tables "
          "are dropped at the end of the next run";
    }
  }
  if (!options.dry_run && !trim.empty() && finished && out.trim_skipped.empty()) {
    Result<std::unique_ptr<ledger::Ledger>> writer =
        ledger::Ledger::Open(store, PipelineNamespace(spec), join);
    if (!writer.ok() && writer.status().code() == StatusCode::kFailedPrecondition) {
      out.trim_skipped = "a run started meanwhile; its end drops the work-tables";
    } else if (!writer.ok()) {
      return writer.status().WithContext("joining the ledger to drop work-tables");
    } else {
      ledger::Changes changes;
      for (const std::string& name : trim) changes.removals.insert(name);
      Result<uint64_t> committed = (*writer)->Commit(changes);
      if (!committed.ok() && committed.status().code() == StatusCode::kFailedPrecondition) {
        out.trim_skipped = "a run started meanwhile (" + committed.status().message() + ")";
      } else if (!committed.ok()) {
        return committed.status().WithContext("dropping work-tables from the ledger");
      } else {
        out.trimmed = trim;
        CrashPoint<"gc:after-trim">();
        Result<ledger::LedgerGarbage> obsolete = (*writer)->CollectObsolete(2);
        if (obsolete.ok()) ledger_garbage = obsolete->keys;
      }
      ledger = std::move(*writer);
    }
  }
  GcOptions gc;
  gc.dry_run = options.dry_run;
  gc.now_ms = options.now_ms;
  gc.keep_runs = spec.gc.keep_runs;
  gc.orphan_grace_ms = spec.gc.orphan_grace_ms;
  gc.ledger_garbage = std::move(ledger_garbage);
  ASSIGN_OR_RETURN(out.gc, CollectGarbage(*ledger, gc));
  if (options.dry_run && !out.trimmed.empty()) {
    // Objects of the work-tables that would be dropped are deleted too.
    for (const std::string& name : out.trimmed) {
      auto it = state.entries.find(name);
      if (it == state.entries.end()) continue;
      for (const ledger::DataObject& o : it->second.objects) {
        out.gc.deleted_keys.push_back(o.key);
        ++out.gc.deleted_objects;
        out.gc.deleted_bytes += o.size;
        if (out.gc.live_objects > 0) --out.gc.live_objects;
        out.gc.live_bytes -= std::min(out.gc.live_bytes, o.size);
      }
    }
  }
  ledger->Close().IgnoreError();
  return out;
}

Status CheckPipeline(const PipelineSpec& spec) {
  ASSIGN_OR_RETURN(std::unique_ptr<Database> db, Database::Open());
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, db->Connect());
  ASSIGN_OR_RETURN(Dag dag, BuildPipelineDag(spec, *conn));
  return CheckPipelineSql(spec, dag);
}

namespace {

// Each node of `spec` compared with what `state` holds.
std::vector<NodeStatus> NodeStatuses(const PipelineSpec& spec, const Dag& dag,
                                     const std::vector<FingerprintComponents>& fps,
                                     const ledger::LedgerState& state) {
  std::vector<NodeStatus> out;
  // The latest run report: what it did with each node.
  const ledger::Entry* last_run = nullptr;
  for (const auto& [name, entry] : state.entries) {
    if (name.rfind("run/", 0) == 0 &&
        (last_run == nullptr || entry.sequence > last_run->sequence)) {
      last_run = &entry;
    }
  }
  // A stage that feeds an output or is kept survives GC; other stages read by stages are
  // work-tables.
  auto work_table_kept = [&](int v) {
    for (int o : dag.output_nodes()) {
      if (o == v) return true;
    }
    const DagNode& node = dag.node(v);
    return node.kind == NodeKind::kStage && spec.stages[node.spec_index].keep;
  };
  for (int v = 0; v < dag.size(); ++v) {
    const DagNode& node = dag.node(v);
    NodeStatus n;
    n.name = node.name;
    n.kind = node.kind;
    n.fingerprint = fps[v].total.Hex();
    bool file_source =
        node.kind == NodeKind::kSource && spec.sources[node.spec_index].kind == SourceKind::kFiles;
    if (node.kind == NodeKind::kStage) n.checkpoint = spec.stages[node.spec_index].checkpoint;
    if (file_source) {
      n.checkpoint = false;
      n.state = "source";
    } else if (!n.checkpoint) {
      n.state = "not checkpointed";
    } else {
      auto it = state.entries.find(StageEntryName(node.name));
      if (it == state.entries.end()) {
        n.state = "missing";
        n.reason = "no checkpoint";
        if (last_run != nullptr && last_run->meta.value("result", std::string()) == "done" &&
            dag.node(v).consumers.size() > 0 && !work_table_kept(v)) {
          n.state = "dropped";
          n.reason = "work-table, deleted after the run finished; recomputed only if needed";
        }
      } else {
        const ledger::Entry& e = it->second;
        n.committed_fingerprint = e.fingerprint;
        n.rows = e.meta.value("rows", uint64_t{0});
        n.bytes = e.meta.value("bytes", uint64_t{0});
        n.objects = e.objects.size();
        n.committed_at_ms = e.committed_at_ms;
        n.committed_by_run = e.run_id;
        if (e.fingerprint == n.fingerprint) {
          n.state = "committed";
        } else {
          n.state = "stale";
          Result<FingerprintComponents> before =
              FingerprintComponents::Parse(e.meta.value("components", std::string()));
          n.reason = before.ok() ? ExplainChangeText(*before, fps[v]) : "changed fingerprint";
        }
      }
    }
    if (last_run != nullptr && last_run->meta.contains("nodes")) {
      for (const nlohmann::json& j : last_run->meta["nodes"]) {
        if (j.value("name", std::string()) == node.name) {
          n.last_action = j.value("action", std::string());
          n.last_reason = j.value("reason", std::string());
        }
      }
    }
    out.push_back(std::move(n));
  }
  return out;
}

}  // namespace

Result<PipelineStatus> GetPipelineStatus(const PipelineSpec& spec, std::shared_ptr<Store> store,
                                         std::shared_ptr<ledger::CommitCoordinator> coordinator) {
  ASSIGN_OR_RETURN(std::unique_ptr<Database> db, Database::Open());
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, db->Connect());
  ASSIGN_OR_RETURN(Dag dag, BuildPipelineDag(spec, *conn));
  SourceReads reads;
  ASSIGN_OR_RETURN(std::vector<FingerprintComponents> fps, FingerprintNodes(spec, dag, reads));

  std::unique_ptr<ledger::Ledger> ledger;
  ASSIGN_OR_RETURN(PipelineStatus status,
                   ReadLedgerState(store, PipelineNamespace(spec), spec.gc.keep_runs, &ledger,
                                   std::move(coordinator)));
  status.nodes = NodeStatuses(spec, dag, fps, ledger->state());
  return status;
}

Result<std::vector<NodeStatus>> PipelineStatusForState(const PipelineSpec& spec,
                                                       const ledger::LedgerState& state) {
  ASSIGN_OR_RETURN(std::unique_ptr<Database> db, Database::Open());
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, db->Connect());
  ASSIGN_OR_RETURN(Dag dag, BuildPipelineDag(spec, *conn));
  SourceReads reads;
  ASSIGN_OR_RETURN(std::vector<FingerprintComponents> fps, FingerprintNodes(spec, dag, reads));
  return NodeStatuses(spec, dag, fps, state);
}

}  // namespace respawn
