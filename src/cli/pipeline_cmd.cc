// `respawn run`, `respawn status` and `respawn ls` (with --runs): pipelines from the command line.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "cli/common.h"
#include "ledger/coordinator.h"
#include "ledger/ledger.h"
#include "pipeline/check.h"
#include "pipeline/fingerprint.h"
#include "pipeline/owner.h"
#include "pipeline/pipeline_gc.h"
#include "pipeline/plan.h"
#include "pipeline/preflight.h"
#include "pipeline/restore.h"
#include "pipeline/runner.h"
#include "pipeline/schema.h"
#include "pipeline/selection.h"
#include "pipeline/spec.h"
#include "pipeline/status.h"
#include "pipeline/verify.h"
#include "storage/memory_store.h"
#include "storage/s3_store.h"
#include "storage/s3_xml.h"
#include "storage/store_url.h"

namespace respawn::cli {
namespace {

constexpr int kDefaultLifecycleDays = 7;

struct PipelineOptions {
  std::string file;
  std::string profile;              // --profile NAME
  std::vector<std::string> params;  // --param name=value
  std::string store;
  bool fresh = false;
  bool keep_going = false;
  std::vector<std::string> select;   // --select SEL[,SEL...] (repeatable)
  std::vector<std::string> exclude;  // --exclude SEL[,SEL...] (repeatable)
  bool adopt = false;
  int threads = 0;
  bool no_gc = false;
  bool single_writer = false;
  bool dry_run = false;
  bool lifecycle = false;
  bool lifecycle_apply = false;
  int lifecycle_days = kDefaultLifecycleDays;
  // Prices for cost estimates; defaults are AWS S3 Standard (us-east-1).
  double price_gb_month = 0.023;
  double price_put_1k = 0.005;
  double price_get_1k = 0.0004;
};

std::string Dollars(double d) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), d >= 1 ? "$%.2f" : d >= 0.01 ? "$%.4f" : "$%.6f", d);
  return buf;
}

// "1 row", "2 rows", "1,000 rows".
std::string Plural(uint64_t n, const std::string& one, const std::string& many) {
  return Thousands(n) + " " + (n == 1 ? one : many);
}

std::string Seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), s < 10 ? "%.2f s" : "%.1f s", s);
  return buf;
}

// A recompute reason in short, for lines after the first that gave it in full: "checkpoint
// corrupt: object ... does not verify: ..." -> "checkpoint corrupt".
std::string ShortReason(const std::string& reason) {
  if (reason == kNoCheckpointReason) return "first computation";
  for (std::string_view head : {"checkpoint corrupt", "checkpoint missing"}) {
    if (reason.rfind(std::string(head) + ":", 0) == 0) return std::string(head);
  }
  return reason;
}

// "42 s", "3 min 20 s", "1 h 05 min": elapsed time on a progress line.
std::string Elapsed(double s) {
  const auto t = static_cast<uint64_t>(s);
  char buf[40];
  if (t < 60) {
    std::snprintf(buf, sizeof(buf), "%llu s", static_cast<unsigned long long>(t));
  } else if (t < 3600) {
    std::snprintf(buf, sizeof(buf), "%llu min %02llu s", static_cast<unsigned long long>(t / 60),
                  static_cast<unsigned long long>(t % 60));
  } else {
    std::snprintf(buf, sizeof(buf), "%llu h %02llu min", static_cast<unsigned long long>(t / 3600),
                  static_cast<unsigned long long>(t / 60 % 60));
  }
  return buf;
}

// What a running stage has done: "42%" when DuckDB can tell, else the rows read so far.
std::string ProgressNote(double percent, uint64_t rows_read) {
  char buf[32];
  if (percent > 0) {
    std::snprintf(buf, sizeof(buf), "%.0f%%", percent);
    return buf;
  }
  return rows_read > 0 ? Plural(rows_read, "row", "rows") + " read" : "";
}

std::string GcLine(const GcReport& gc) {
  std::string line =
      "deleted " + Thousands(gc.deleted_objects) + " objects (" + FormatBytes(gc.deleted_bytes) +
      "): " + Thousands(gc.replaced) + " replaced or work-tables, " + Thousands(gc.orphans) +
      " orphans, " + Thousands(gc.ledger_objects) + " ledger" +
      (gc.abandoned_writes > 0
           ? ", " + Thousands(gc.abandoned_writes) + " abandoned temporary files"
           : "") +
      "; kept " + Thousands(gc.live_objects) + " live (" + FormatBytes(gc.live_bytes) + ")";
  if (gc.young_orphans_kept > 0) {
    line += ", " + Thousands(gc.young_orphans_kept) + " uncommitted younger than the grace period";
  }
  if (gc.in_flight_kept > 0) {
    line += ", " + Thousands(gc.in_flight_kept) + " of a run in progress";
  }
  line += "; requests: " + Thousands(gc.list_requests) + " LIST, " + Thousands(gc.delete_requests) +
          " delete";
  return line;
}

nlohmann::json GcJson(const GcReport& gc) {
  return {{"deleted_objects", gc.deleted_objects},
          {"deleted_bytes", gc.deleted_bytes},
          {"replaced", gc.replaced},
          {"orphans", gc.orphans},
          {"ledger_objects", gc.ledger_objects},
          {"abandoned_writes", gc.abandoned_writes},
          {"live_objects", gc.live_objects},
          {"live_bytes", gc.live_bytes},
          {"young_orphans_kept", gc.young_orphans_kept},
          {"in_flight_kept", gc.in_flight_kept},
          {"list_requests", gc.list_requests},
          {"delete_requests", gc.delete_requests},
          {"failed", gc.failed}};
}

// A local file source that names no file is the pipeline file's mistake: reported (exit 2)
// before the store is opened, which for a local store would create it.
Status CheckLocalSourcesExist(const PipelineSpec& spec) {
  for (const SourceSpec& source : spec.sources) {
    if (source.kind != SourceKind::kFiles || source.location.is_url) continue;
    Result<std::vector<SourceFile>> files =
        ListLocalSourceFiles(source.location.resolved, /*content_hash_limit=*/0);
    if (files.status().IsNotFound() || files.status().code() == StatusCode::kInvalidArgument) {
      return InvalidArgument(spec.Where(source.location.line ? source.location.line : source.line) +
                             ": source \"" + source.name + "\": " + files.status().message());
    }
  }
  return Status::OK();
}

// Fail(), pointing at verify/repair when a ledger object is damaged or missing.
int FailPipeline(const Status& status, Phase phase, const std::string& file) {
  if (status.detail() != StatusDetail::kLedgerDamaged) return Fail(status, phase);
  return Fail(Status(status.code(),
                     status.message() + "; `respawn verify " + file +
                         "` shows what is damaged, `respawn repair " + file +
                         "` replaces it so that runs can go on",
                     status.detail()),
              phase);
}

// Loads the pipeline file and opens its store: configuration errors exit 2.
struct Loaded {
  PipelineSpec spec;
  OpenedStore store;
  std::string store_url;
  bool store_missing = false;  // read-only commands: the local store does not exist (yet)
};

// `open_store` false: only the spec and the store URL (for commands that print without asking
// the store anything, so they need no credentials). `read_only`: the command writes nothing, so
// a local store that does not exist is not created (Loaded::store_missing says so instead).
Result<Loaded> Load(const PipelineOptions& o, const GlobalOptions& globals, bool open_store = true,
                    bool read_only = false) {
  Loaded loaded;
  SpecOverrides overrides;
  overrides.profile = o.profile;
  overrides.params = o.params;
  Result<PipelineSpec> spec = ParsePipelineFile(o.file, overrides);
  if (!spec.ok()) {
    if (spec.status().IsNotFound()) {
      return InvalidArgument("cannot read pipeline file " + o.file + ": " +
                             spec.status().message());
    }
    return spec.status();
  }
  loaded.spec = std::move(*spec);
  loaded.store_url = EffectiveStoreUrl(loaded.spec, o.store);
  if (!open_store) return loaded;
  Result<OpenedStore> opened = OpenStoreForCli(loaded.store_url, globals, read_only);
  if (read_only && opened.status().IsNotFound()) {
    // Nothing has run against it yet: read it as the empty store it would be.
    loaded.store_missing = true;
    loaded.store.store = std::make_shared<MemoryStore>();
    return loaded;
  }
  if (!opened.ok()) return opened.status();
  loaded.store = std::move(*opened);
  return loaded;
}

// How a command that commits (run, gc) commits: the coordinator when the store needs one
// (opened and checked now), or --single-writer. Refuses, as a configuration error (exit 2),
// when the store can neither put-if-absent nor has a coordinator or --single-writer; a store
// that cannot tell whether it can put-if-absent is an operation error (exit 1: retry).
Result<CommitSetup> CommitSetupForWriting(const Loaded& loaded, bool single_writer,
                                          ledger::CommitMode* mode) {
  CommitSetup setup;
  setup.single_writer = single_writer;
  const std::string url = EffectiveCoordinatorUrl(loaded.spec);
  if (!url.empty()) {
    RegisterCoordinatorSecrets(url);
    RETURN_IF_ERROR(ledger::ValidateCoordinatorUrl(url));
  }
  const Capabilities caps = loaded.store.store->capabilities();
  const std::string where = "the store " + Redact(loaded.store.store->Url());
  ledger::LedgerOptions options;
  options.single_writer = single_writer;
  if (!url.empty() && caps.put_if_absent_error.ok() && !caps.put_if_absent) {
    ASSIGN_OR_RETURN(setup.coordinator, ledger::OpenCoordinator(url));
    options.coordinator = setup.coordinator;
  }
  ASSIGN_OR_RETURN(*mode, ledger::ChooseCommitMode(caps, options, where));
  return setup;
}

// The coordinator for a command that only reads: when one is configured, the records are read
// from it (the store's copies may lag by the last commit); when it cannot be used, the store's
// copies are read, with a warning.
std::shared_ptr<ledger::CommitCoordinator> CoordinatorForReading(const std::string& url,
                                                                 const GlobalOptions& globals) {
  if (url.empty()) return nullptr;
  RegisterCoordinatorSecrets(url);
  Result<std::shared_ptr<ledger::CommitCoordinator>> opened = ledger::OpenCoordinator(url);
  if (opened.ok()) return *opened;
  if (!globals.quiet) {
    PrintError("warning: " + opened.status().message() +
               "; reading the store's copies of the ledger records instead");
  }
  return nullptr;
}

// Prints run events: plain lines (and a live progress line on a terminal), or JSON lines.
class RunPrinter {
 public:
  RunPrinter(const GlobalOptions& globals)
      : json_(globals.json), quiet_(globals.quiet), tty_(IsTerminal(2) && !globals.json) {
    // Without a terminal (a log file, a batch job) a long stage prints a line this often.
    if (const char* every = std::getenv("RESPAWN_PROGRESS_SECONDS")) {
      char* end = nullptr;
      const double s = std::strtod(every, &end);
      if (end != every && *end == '\0' && s > 0) log_every_s_ = s;
    }
  }

  void OnEvent(const RunEvent& e) {
    if (json_) {
      PrintJson(e);
      return;
    }
    if (e.type == RunEvent::Type::kStarted) {
      progress_[e.node->name] = Running{Clock::now(), Clock::now(), -1, 0};
    }
    if (e.type == RunEvent::Type::kProgress) {
      OnProgress(e);
      return;
    }
    std::string line;
    if (e.type == RunEvent::Type::kPlanned && e.node->action == NodeAction::kReused) {
      line = "stage " + e.node->name + ": reused (" + Plural(e.node->rows, "row", "rows") + ", " +
             FormatBytes(e.node->bytes) + ", saved " + Seconds(e.node->saved_seconds) + ")";
    } else if (e.type == RunEvent::Type::kPlanned && e.node->action == NodeAction::kSkipped) {
      line = "stage " + e.node->name + ": skipped (" + e.node->reason + ")";
    } else if (e.type == RunEvent::Type::kStarted) {
      // In full (a corrupt checkpoint's names the object), except a first computation's.
      const std::string& why = e.node->reason;
      line = "stage " + e.node->name + ": started (" +
             (why == kNoCheckpointReason ? ShortReason(why) : why) + ")";
    } else if (e.type == RunEvent::Type::kFinished) {
      progress_.erase(e.node->name);
      const NodeReport& n = *e.node;
      if (n.action == NodeAction::kComputed) {
        // ("no checkpoint" would read oddly beside "checkpointed": "first computation".)
        const std::string why = ShortReason(n.reason);
        line = "stage " + n.name + ": computed in " + Seconds(n.seconds) + ", " +
               Plural(n.rows, "row", "rows") +
               (n.checkpoint ? ", " + FormatBytes(n.bytes) + " checkpointed" : "") + " (" + why +
               ")";
      } else if (n.action == NodeAction::kBlocked || n.action == NodeAction::kInterrupted) {
        line = "stage " + n.name + ": " + n.reason;
        if (n.reason.rfind("not run", 0) != 0) line = "stage " + n.name + ": not run";
      } else {
        line = "stage " + n.name + ": " + std::string(NodeActionName(n.action));
      }
    } else if (e.type == RunEvent::Type::kOutput) {
      const OutputReport& o = *e.output;
      line = !o.selected ? "output " + o.name + ": not selected, left as it is (" + o.path + ")"
             : !o.not_written.empty()
                 ? "output " + o.name + ": not written (" + o.not_written + ")"
                 : "output " + o.name + ": " + (o.written ? "written to " : "unchanged, ") +
                       o.path + " (" + FormatBytes(o.bytes) + ")";
    }
    if (line.empty() || quiet_) return;
    ClearProgress();
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
    if (e.type == RunEvent::Type::kFinished) {
      // Violated expectations of severity "warn": on stderr, as warnings are.
      for (const ExpectationViolation& w : e.node->warnings) PrintError("warning: " + w.message);
    }
    DrawProgress();
  }

  void Finish() { ClearProgress(); }

 private:
  void PrintJson(const RunEvent& e) {
    if (e.type == RunEvent::Type::kProgress) return;
    nlohmann::json j;
    if (e.type == RunEvent::Type::kOutput) {
      j = {{"event", "output"},
           {"name", e.output->name},
           {"path", e.output->path},
           {"written", e.output->written},
           {"not_written", e.output->not_written},
           {"selected", e.output->selected},
           {"bytes", e.output->bytes}};
    } else {
      if (e.type == RunEvent::Type::kPlanned && e.node->action != NodeAction::kReused &&
          e.node->action != NodeAction::kSkipped) {
        return;
      }
      const NodeReport& n = *e.node;
      j = {{"event", e.type == RunEvent::Type::kStarted ? "started" : "stage"},
           {"name", n.name},
           {"action", e.type == RunEvent::Type::kStarted ? "computing"
                                                         : std::string(NodeActionName(n.action))},
           {"reason", n.reason},
           {"rows", n.rows},
           {"bytes", n.bytes},
           {"seconds", n.seconds},
           {"saved_seconds", n.saved_seconds},
           {"fingerprint", n.fingerprint}};
      if (!n.warnings.empty()) {
        nlohmann::json warnings = nlohmann::json::array();
        for (const ExpectationViolation& w : n.warnings) {
          warnings.push_back(
              {{"expectation", w.expectation}, {"rows", w.rows}, {"message", w.message}});
        }
        j["warnings"] = std::move(warnings);
      }
    }
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    std::fflush(stdout);
  }

  using Clock = std::chrono::steady_clock;
  struct Running {
    Clock::time_point started;
    Clock::time_point logged;  // last progress line without a terminal
    double percent = -1;
    uint64_t rows_read = 0;
  };

  // A sample of a running stage: redraws the live line on a terminal; elsewhere, prints a line
  // for a stage that has run for another log_every_s_ seconds.
  void OnProgress(const RunEvent& e) {
    auto it = progress_.find(e.node->name);
    if (quiet_ || it == progress_.end()) return;
    Running& r = it->second;
    r.percent = e.percent;
    r.rows_read = e.rows_read;
    if (tty_) {
      DrawProgress();
      return;
    }
    const Clock::time_point now = Clock::now();
    if (std::chrono::duration<double>(now - r.logged).count() < log_every_s_) return;
    r.logged = now;
    const std::string note = ProgressNote(r.percent, r.rows_read);
    std::printf("stage %s: running for %s%s\n", e.node->name.c_str(),
                Elapsed(std::chrono::duration<double>(now - r.started).count()).c_str(),
                note.empty() ? "" : (", " + note).c_str());
    std::fflush(stdout);
  }

  // "running: daily 12 s 42%, cohorts 3 min 05 s 1,200,000 rows read".
  void DrawProgress() {
    if (!tty_ || quiet_ || progress_.empty()) return;
    std::string line = "running:";
    const Clock::time_point now = Clock::now();
    for (const auto& [name, r] : progress_) {
      const std::string note = ProgressNote(r.percent, r.rows_read);
      line += (line.size() > 8 ? ", " : " ") + name + " " +
              Elapsed(std::chrono::duration<double>(now - r.started).count()) +
              (note.empty() ? "" : " " + note);
    }
    if (line.size() > 120) line = line.substr(0, 117) + "...";
    std::fprintf(stderr, "\r\033[K%s", line.c_str());
    drawn_ = true;
  }
  void ClearProgress() {
    if (!drawn_) return;
    std::fprintf(stderr, "\r\033[K");
    drawn_ = false;
  }

  bool json_;
  bool quiet_;
  bool tty_;
  bool drawn_ = false;
  std::map<std::string, Running> progress_;  // running stages
  double log_every_s_ = 60;
};

int RunCommand(const PipelineOptions& o, const GlobalOptions& globals) {
  // From the start: a SIGTERM while the pipeline is checked still ends in exit 75.
  InterruptScope interrupt_scope(
      "starting no more stages, interrupting running queries, keeping what is committed");
  Result<Loaded> loaded = Load(o, globals, /*open_store=*/false);
  if (!loaded.ok()) return Fail(loaded.status(), Phase::kConfig);
  // A mistake in the pipeline is reported before the store is opened (a local one is created).
  Result<Dag> checked = CheckPipeline(loaded->spec);
  if (!checked.ok()) {
    return Fail(checked.status(), checked.status().code() == StatusCode::kInvalidArgument
                                      ? Phase::kConfig
                                      : Phase::kOperation);
  }
  Result<Selection> selection = ResolveSelection(loaded->spec, *checked, o.select, o.exclude);
  if (!selection.ok()) return Fail(selection.status(), Phase::kConfig);
  if (Status sources = CheckLocalSourcesExist(loaded->spec); !sources.ok()) {
    return Fail(sources, Phase::kConfig);
  }
  if (Status outputs = CheckLocalOutputsWritable(loaded->spec); !outputs.ok()) {
    return Fail(outputs, Phase::kConfig);
  }
  if (InterruptScope::interrupted()) {
    PrintError("interrupted before the run started; nothing was changed");
    return kExitInterrupted;
  }
  Result<OpenedStore> opened = OpenStoreForCli(loaded->store_url, globals);
  if (!opened.ok()) return Fail(opened.status(), Phase::kConfig);
  loaded->store = std::move(*opened);
  ledger::CommitMode mode = ledger::CommitMode::kPutIfAbsent;
  Result<CommitSetup> commit = CommitSetupForWriting(*loaded, o.single_writer, &mode);
  if (!commit.ok()) return Fail(commit.status(), Phase::kConfig);

  RunPrinter printer(globals);
  RunOptions options;
  options.store = loaded->store.store;
  options.commit = *commit;
  options.fresh = o.fresh;
  options.keep_going = o.keep_going;
  options.adopt = o.adopt;
  options.threads = o.threads;
  options.checked_dag = &*checked;
  options.gc = !o.no_gc;
  options.metrics = loaded->store.metrics;
  if (!selection->all()) options.selection = std::move(*selection);
  options.interrupted = InterruptScope::flag();
  options.on_event = [&printer](const RunEvent& e) { printer.OnEvent(e); };
  if (!globals.quiet && !globals.json) {
    std::printf("pipeline %s: store %s\n", loaded->spec.name.c_str(),
                Redact(loaded->store.store->Url()).c_str());
    if (mode == ledger::CommitMode::kCoordinator) {
      std::printf("commits through the coordinator %s\n",
                  Redact(commit->coordinator->Url()).c_str());
    } else if (mode == ledger::CommitMode::kSingleWriter) {
      std::printf(
          "commits in single-writer mode (--single-writer: a lease, not safe against a "
          "paused process)\n");
    }
    std::fflush(stdout);
  }
  Result<RunReport> report = RunPipeline(loaded->spec, options);
  printer.Finish();
  if (!report.ok()) {
    Phase phase =
        report.status().code() == StatusCode::kInvalidArgument ? Phase::kConfig : Phase::kOperation;
    return FailPipeline(report.status(), phase, o.file);
  }
  int computed = 0, reused = 0, failed = 0, blocked = 0;
  for (const NodeReport& n : report->nodes) {
    computed += n.action == NodeAction::kComputed;
    reused += n.action == NodeAction::kReused;
    failed += n.action == NodeAction::kFailed;
    blocked += n.action == NodeAction::kBlocked;
  }
  std::string result = !report->status.ok() ? (report->interrupted ? "interrupted" : "failed")
                       : report->partial    ? "done (partial: --select, no gc)"
                                            : "done";
  if (globals.json) {
    nlohmann::json j = {{"event", "run"},
                        {"run_id", report->run_id},
                        {"result", report->status.ok() && report->partial ? "partial" : result},
                        {"seconds", report->seconds},
                        {"computed", computed},
                        {"reused", reused},
                        {"failed", failed},
                        {"blocked", blocked},
                        {"saved_seconds", report->saved_seconds},
                        {"error", report->status.ok() ? "" : Redact(report->status.message())}};
    if (report->gc_ran) j["gc"] = GcJson(report->gc);
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else if (!globals.quiet) {
    // saved_seconds adds up the reused stages' compute times; stages that ran side by side
    // overlap, so it is stage work not redone, not wall time.
    std::printf(
        "run %s %s in %s: %d computed, %d reused%s%s\n", report->run_id.substr(0, 8).c_str(),
        result.c_str(), Seconds(report->seconds).c_str(), computed, reused,
        failed + blocked == 0 ? ""
                              : (", " + std::to_string(failed) + " failed, " +
                                 std::to_string(blocked) + " not run because of it")
                                    .c_str(),
        reused == 0
            ? ""
            : (" (~" + Seconds(report->saved_seconds) + " of stage work not redone)").c_str());
    if (report->gc_ran && report->gc_status.ok()) {
      std::printf("gc: %s\n", GcLine(report->gc).c_str());
    }
  }
  if (report->gc_ran && !report->gc_status.ok()) {
    PrintError(
        "garbage collection after the run failed (the run itself is committed; run "
        "`respawn gc` later): " +
        report->gc_status.message());
  }
  std::fflush(stdout);
  if (report->interrupted) {
    PrintError("interrupted: what finished is committed; run the same command again to resume");
    return kExitInterrupted;
  }
  if (!report->status.ok()) {
    PrintError(report->status.message());
    return kExitFailed;
  }
  return kExitOk;
}

// Data objects by run (the run that wrote them) and by stage: what GC keeps and what it frees.
void PrintUsageBreakdown(const PipelineStatus& status) {
  const StoreUsage& u = status.usage;
  if (u.by_run.empty()) return;
  std::map<std::string, const RunSummary*> runs;
  for (const RunSummary& r : status.runs) runs[r.run_id] = &r;
  auto row = [](const std::string& name, const std::string& what, const UsageCount& c) {
    std::printf("  %-18s %-28s %8s %10s %8s %10s\n", name.c_str(), what.c_str(),
                Thousands(c.objects).c_str(), FormatBytes(c.bytes).c_str(),
                Thousands(c.retained_objects).c_str(), FormatBytes(c.retained_bytes).c_str());
  };
  std::printf("data by run:\n  %-18s %-28s %8s %10s %8s %10s\n", "RUN", "RESULT", "OBJECTS",
              "BYTES", "KEPT", "KEPT BYTES");
  for (const auto& [run_id, c] : u.by_run) {
    auto it = runs.find(run_id);
    std::string what = it == runs.end()
                           ? "no report (killed or running)"
                           : it->second->result + " " + FormatLocalTime(it->second->finished_at_ms);
    row(run_id.substr(0, 18), what, c);
  }
  std::printf("data by stage:\n  %-18s %-28s %8s %10s %8s %10s\n", "STAGE", "", "OBJECTS", "BYTES",
              "KEPT", "KEPT BYTES");
  for (const auto& [stage, c] : u.by_stage) row(stage, "", c);
}

// What `respawn run` would compute now, and why (the run's own plan, status.h).
void PrintNextRun(const PipelineStatus& status) {
  std::vector<const NodeStatus*> compute;
  for (const NodeStatus& n : status.nodes) {
    if (n.next_action == "compute") compute.push_back(&n);
  }
  if (compute.empty()) {
    std::printf("a run now computes nothing: every stage's checkpoint is reused\n");
    return;
  }
  std::printf("a run now computes %s:\n", Plural(compute.size(), "stage", "stages").c_str());
  for (const NodeStatus* n : compute) {
    std::printf("  %s: %s\n", n->name.c_str(), n->next_reason.c_str());
  }
}

int StatusCommand(const PipelineOptions& o, const GlobalOptions& globals) {
  Result<Loaded> loaded = Load(o, globals, /*open_store=*/true, /*read_only=*/true);
  if (!loaded.ok()) return Fail(loaded.status(), Phase::kConfig);
  Result<PipelineStatus> status =
      GetPipelineStatus(loaded->spec, loaded->store.store,
                        CoordinatorForReading(EffectiveCoordinatorUrl(loaded->spec), globals));
  if (!status.ok()) {
    Phase phase =
        status.status().code() == StatusCode::kInvalidArgument ? Phase::kConfig : Phase::kOperation;
    return FailPipeline(status.status(), phase, o.file);
  }
  if (globals.json) {
    nlohmann::json nodes = nlohmann::json::array();
    for (const NodeStatus& n : status->nodes) {
      nodes.push_back({{"name", n.name},
                       {"kind", n.kind == NodeKind::kSource ? "source" : "stage"},
                       {"state", n.state},
                       {"reason", n.reason},
                       {"rows", n.rows},
                       {"bytes", n.bytes},
                       {"fingerprint", n.fingerprint},
                       {"committed_fingerprint", n.committed_fingerprint},
                       {"committed_at", FormatIsoTime(n.committed_at_ms)},
                       {"committed_by_run", n.committed_by_run},
                       {"last_action", n.last_action},
                       {"last_reason", n.last_reason},
                       {"next_action", n.next_action},
                       {"next_reason", n.next_reason}});
    }
    nlohmann::json j = {
        {"pipeline", loaded->spec.name},
        {"store", Redact(loaded->store_missing ? loaded->store_url : status->store_url)},
        {"store_exists", !loaded->store_missing},
        {"records", status->sequence},
        {"runs", status->runs.size()},
        {"nodes", nodes}};
    if (!status->owner_path.empty()) {
      j["owner"] = {{"path", status->owner_path},
                    {"id", status->owner_id},
                    {"since", FormatIsoTime(status->owner_since_ms)},
                    {"this_file", status->owner_path == PipelineFileIdentity(loaded->spec)}};
    } else {
      j["owner"] = nullptr;
    }
    const StoreUsage& u = status->usage;
    j["usage"] = {
        {"objects", u.objects},
        {"bytes", u.bytes},
        {"live_objects", u.live_objects},
        {"live_bytes", u.live_bytes},
        {"ledger_objects", u.ledger_objects},
        {"ledger_bytes", u.ledger_bytes},
        {"storage_cost_per_month", u.bytes / (1024.0 * 1024.0 * 1024.0) * o.price_gb_month}};
    auto counts = [](const std::map<std::string, UsageCount>& m) {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& [name, c] : m) {
        out[name] = {{"objects", c.objects},
                     {"bytes", c.bytes},
                     {"retained_objects", c.retained_objects},
                     {"retained_bytes", c.retained_bytes}};
      }
      return out;
    };
    j["usage"]["by_stage"] = counts(u.by_stage);
    j["usage"]["by_run"] = counts(u.by_run);
    if (!status->runs.empty()) {
      const RunSummary& r = status->runs.back();
      j["last_run"] = {{"run_id", r.run_id},
                       {"result", r.result},
                       {"puts", r.puts},
                       {"gets", r.gets},
                       {"lists", r.lists},
                       {"stats", r.stats},
                       {"deletes", r.deletes},
                       {"request_cost", (r.puts + r.lists) / 1000.0 * o.price_put_1k +
                                            (r.gets + r.stats) / 1000.0 * o.price_get_1k}};
    }
    std::printf("%s\n", j.dump(2).c_str());
    return kExitOk;
  }
  if (loaded->store_missing) {
    std::printf(
        "pipeline %s: store %s does not exist yet (no run has used it); a run computes "
        "every stage\n",
        loaded->spec.name.c_str(), Redact(loaded->store_url).c_str());
  } else {
    std::printf("pipeline %s: store %s, %s recorded\n", loaded->spec.name.c_str(),
                Redact(status->store_url).c_str(),
                Plural(status->runs.size(), "run", "runs").c_str());
  }
  if (status->owner_path.empty()) {
    std::printf("owner: none recorded (the next run records this file)\n");
  } else {
    const bool this_file = status->owner_path == PipelineFileIdentity(loaded->spec);
    std::printf("owner: %s (id %s, since %s)%s\n", status->owner_path.c_str(),
                status->owner_id.substr(0, 8).c_str(),
                FormatLocalTime(status->owner_since_ms).c_str(),
                this_file ? ", this file"
                          : ", NOT this file: run and gc from this file are refused (run it once "
                            "with --adopt if it is the same pipeline moved here)");
  }
  if (!status->runs.empty()) {
    const RunSummary& r = status->runs.back();
    std::printf("last run %s: %s at %s, %s, %d computed, %d reused%s\n",
                r.run_id.substr(0, 8).c_str(), r.result.c_str(),
                FormatLocalTime(r.finished_at_ms).c_str(), Seconds(r.seconds).c_str(), r.computed,
                r.reused, r.error.empty() ? "" : (" (" + Redact(r.error) + ")").c_str());
  }
  const StoreUsage& u = status->usage;
  const double gib = 1024.0 * 1024.0 * 1024.0;
  std::printf(
      "store usage: %s, %s: %s (%s), %s ledger (%s), %s other "
      "(%s: replaced, work-tables or orphans; `respawn gc` reclaims them) ~ %s/month\n",
      Plural(u.objects, "object", "objects").c_str(), FormatBytes(u.bytes).c_str(),
      Plural(u.live_objects, "retained checkpoint", "retained checkpoints").c_str(),
      FormatBytes(u.live_bytes).c_str(), Thousands(u.ledger_objects).c_str(),
      FormatBytes(u.ledger_bytes).c_str(),
      Thousands(u.objects - u.live_objects - u.ledger_objects).c_str(),
      FormatBytes(u.bytes - u.live_bytes - u.ledger_bytes).c_str(),
      Dollars(u.bytes / gib * o.price_gb_month).c_str());
  if (!status->runs.empty()) {
    const RunSummary& r = status->runs.back();
    double cost =
        (r.puts + r.lists) / 1000.0 * o.price_put_1k + (r.gets + r.stats) / 1000.0 * o.price_get_1k;
    std::printf(
        "last run requests: %s PUT, %s LIST, %s GET, %s HEAD, %s DELETE; %s written, %s "
        "read ~ %s (prices: %s/GB-month, %s per 1,000 PUT/LIST, %s per 1,000 GET/HEAD)\n",
        Thousands(r.puts).c_str(), Thousands(r.lists).c_str(), Thousands(r.gets).c_str(),
        Thousands(r.stats).c_str(), Thousands(r.deletes).c_str(),
        FormatBytes(r.bytes_written).c_str(), FormatBytes(r.bytes_read).c_str(),
        Dollars(cost).c_str(), Dollars(o.price_gb_month).c_str(), Dollars(o.price_put_1k).c_str(),
        Dollars(o.price_get_1k).c_str());
  }
  PrintUsageBreakdown(*status);
  std::vector<std::string> states;
  size_t name_width = 4, state_width = 5;
  for (const NodeStatus& n : status->nodes) {
    std::string state = n.state;
    if (!n.reason.empty() && n.state == "stale") state += " (" + n.reason + ")";
    states.push_back(state);
    name_width = std::max(name_width, n.name.size());
    state_width = std::max(state_width, state.size());
  }
  int nw = static_cast<int>(name_width), sw = static_cast<int>(state_width);
  std::printf("%-*s  %-*s %12s %10s  %-8s  %s\n", nw, "NODE", sw, "STATE", "ROWS", "BYTES", "FP",
              "LAST RUN");
  for (size_t i = 0; i < status->nodes.size(); ++i) {
    const NodeStatus& n = status->nodes[i];
    std::string last = n.last_action;
    if (!n.last_reason.empty() && n.last_action != "reused") {
      last += " (" + ShortReason(n.last_reason) + ")";
    }
    bool has_data = n.state == "committed" || n.state == "stale";
    std::printf("%-*s  %-*s %12s %10s  %-8s  %s\n", nw, n.name.c_str(), sw, states[i].c_str(),
                has_data ? Thousands(n.rows).c_str() : "-",
                has_data ? FormatBytes(n.bytes).c_str() : "-", n.fingerprint.substr(0, 8).c_str(),
                last.empty() ? "-" : last.c_str());
  }
  PrintNextRun(*status);
  return kExitOk;
}

// The S3 lifecycle rules that back GC up, for when respawn never runs on this store again:
//   - multipart uploads of checkpoints that a killed process left incomplete are invisible to
//     LIST (so to GC) but billed; S3 aborts them after N days;
//   - the put-if-absent probe objects (S3Store writes one per process and deletes it at once;
//     a kill in between leaves it) expire after N days.
// No expiry rule for attempt objects: commits are rename-free, so a failed attempt's object sits
// under the same prefix as committed checkpoints and only the ledger tells them apart; GC
// deletes those after orphan_grace.
std::vector<LifecycleRule> LifecycleRules(const ParsedStoreUrl& url, const PipelineSpec& spec,
                                          int days) {
  const std::string root = url.prefix.empty() ? "" : url.prefix + "/";
  LifecycleRule uploads;
  uploads.prefix = root + PipelineNamespace(spec) + "/";
  uploads.id = "respawn-abort-uploads:" + uploads.prefix;
  uploads.abort_incomplete_upload_days = days;
  LifecycleRule probes;
  probes.prefix = root + ".respawn-probe-";
  probes.id = "respawn-expire-probes:" + probes.prefix;
  probes.expiration_days = days;
  return {uploads, probes};
}

int LifecycleCommand(const PipelineOptions& o, const Loaded& loaded, const GlobalOptions& globals) {
  Result<ParsedStoreUrl> url = ParseStoreUrl(loaded.store_url);
  if (!url.ok()) return Fail(url.status(), Phase::kConfig);
  if (url->scheme != StoreScheme::kS3) {
    PrintError("--lifecycle is for S3 stores; " + loaded.store_url +
               " is not one (local stores have no incomplete uploads: GC covers them)");
    return kExitUsage;
  }
  const std::vector<LifecycleRule> rules = LifecycleRules(*url, loaded.spec, o.lifecycle_days);
  const std::string ours = BuildLifecycleConfiguration(rules);
  if (!o.lifecycle_apply) {
    if (globals.json) {
      nlohmann::json j = {{"bucket", url->bucket}, {"applied", false}, {"xml", ours}};
      std::printf("%s\n", j.dump(2).c_str());
      return kExitOk;
    }
    std::printf("%s", ours.c_str());
    std::string apply = "respawn gc " + o.file + " --lifecycle --apply";
    if (!o.store.empty()) apply += " --store " + o.store;
    if (o.lifecycle_days != kDefaultLifecycleDays) {
      apply += " --lifecycle-days " + std::to_string(o.lifecycle_days);
    }
    std::printf(
        "\n# Bucket s3://%s. Aborts multipart uploads under %s left incomplete\n"
        "# for %d days (a process killed mid-upload leaves them; LIST does not show them, so GC\n"
        "# cannot, but S3 bills them), and expires put-if-absent probe objects %s* after %d days.\n"
        "# Objects of failed attempts are deleted by `respawn gc` after orphan_grace: an expiry\n"
        "# rule by prefix cannot tell them from committed checkpoints, which share the prefix\n"
        "# (commits are rename-free), so respawn does not propose one.\n"
        "# Set the rules, keeping the bucket's other rules:\n#   %s\n",
        url->bucket.c_str(), rules[0].prefix.c_str(), o.lifecycle_days, rules[1].prefix.c_str(),
        o.lifecycle_days, apply.c_str());
    return kExitOk;
  }

  auto* s3 = dynamic_cast<S3Store*>(loaded.store.backend.get());
  if (s3 == nullptr) {
    return Fail(Internal("the store " + loaded.store_url + " did not open as S3"), Phase::kConfig);
  }
  const std::string where = "s3://" + url->bucket;
  // Context first, then the server's answer, then what to do.
  auto fail = [&](const Status& st, const std::string& doing, const std::string& fix) {
    return Fail(Status(st.code(), doing + " " + where + ": " + st.message() + fix),
                Phase::kOperation);
  };
  Result<std::string> existing = s3->GetBucketLifecycle();
  if (!existing.ok()) {
    return fail(existing.status(), "reading the lifecycle configuration of",
                existing.status().code() == StatusCode::kUnimplemented
                    ? "; nothing was changed: run `respawn gc` regularly instead, or set up "
                      "the cleanup on the server"
                    : "");
  }
  Result<LifecycleMerge> merged = MergeLifecycleRules(*existing, rules);
  if (!merged.ok()) {
    return fail(merged.status(), "merging into the lifecycle configuration of",
                "; nothing was changed");
  }
  if (Status put = s3->PutBucketLifecycle(merged->xml); !put.ok()) {
    return fail(put, "setting the lifecycle configuration of",
                put.code() == StatusCode::kPermissionDenied
                    ? " (the credentials need s3:PutLifecycleConfiguration)"
                    : "");
  }
  // Read it back: a server may accept a document and keep less of it.
  Result<std::string> now = s3->GetBucketLifecycle();
  Result<std::vector<std::string>> ids =
      now.ok() ? LifecycleRuleIds(*now) : Result<std::vector<std::string>>(now.status());
  if (!ids.ok()) return fail(ids.status(), "reading back the lifecycle configuration of", "");
  for (const LifecycleRule& rule : rules) {
    if (std::find(ids->begin(), ids->end(), rule.id) == ids->end()) {
      return Fail(DataLoss("the server accepted the lifecycle configuration of " + where +
                           " but does not return rule " + rule.id + "; it may not support it"),
                  Phase::kOperation);
    }
  }
  if (globals.json) {
    nlohmann::json j = {{"bucket", url->bucket},
                        {"applied", true},
                        {"kept_rules", merged->kept},
                        {"replaced_rules", merged->replaced},
                        {"xml", merged->xml}};
    std::printf("%s\n", j.dump(2).c_str());
    return kExitOk;
  }
  std::printf(
      "lifecycle: %s rules on %s (%d days): abort incomplete uploads under %s, expire "
      "%s*; %d other rule%s kept\n",
      merged->replaced > 0 ? "updated" : "added", where.c_str(), o.lifecycle_days,
      rules[0].prefix.c_str(), rules[1].prefix.c_str(), merged->kept, merged->kept == 1 ? "" : "s");
  return kExitOk;
}

int GcCommand(const PipelineOptions& o, const GlobalOptions& globals) {
  Result<Loaded> loaded = Load(o, globals, /*open_store=*/!o.lifecycle || o.lifecycle_apply,
                               /*read_only=*/o.dry_run && !o.lifecycle);
  if (!loaded.ok()) return Fail(loaded.status(), Phase::kConfig);
  if (o.lifecycle) return LifecycleCommand(o, *loaded, globals);
  if (loaded->store_missing) {
    std::printf("store %s does not exist yet: nothing to collect\n",
                Redact(loaded->store_url).c_str());
    return kExitOk;
  }
  PipelineGcOptions options;
  options.dry_run = o.dry_run;
  if (o.dry_run) {
    options.commit.coordinator =
        CoordinatorForReading(EffectiveCoordinatorUrl(loaded->spec), globals);
  } else {
    ledger::CommitMode mode;
    Result<CommitSetup> commit = CommitSetupForWriting(*loaded, o.single_writer, &mode);
    if (!commit.ok()) return Fail(commit.status(), Phase::kConfig);
    options.commit = *commit;
  }
  Result<PipelineGcReport> report =
      CollectPipelineGarbage(loaded->spec, loaded->store.store, options);
  if (!report.ok()) {
    Phase phase =
        report.status().code() == StatusCode::kInvalidArgument ? Phase::kConfig : Phase::kOperation;
    return FailPipeline(report.status(), phase, o.file);
  }
  if (globals.json) {
    nlohmann::json j = GcJson(report->gc);
    j["dry_run"] = o.dry_run;
    j["trimmed"] = report->trimmed;
    j["trim_skipped"] = report->trim_skipped;
    j["kept_by_ttl"] = report->kept_by_ttl;
    if (!report->kept_by_ttl.empty()) {
      j["kept_for_run"] = report->kept_for_run;
      j["kept_until"] = FormatIsoTime(report->kept_until_ms);
    }
    j["deleted_keys"] = report->gc.deleted_keys;
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    if (!report->trimmed.empty()) {
      std::printf("%s %zu work-tables from the ledger:", o.dry_run ? "would drop" : "dropped",
                  report->trimmed.size());
      for (const std::string& t : report->trimmed) std::printf(" %s", t.c_str());
      std::printf("\n");
    }
    if (!report->trim_skipped.empty()) {
      std::printf("work-tables kept: %s\n", report->trim_skipped.c_str());
    }
    if (!report->kept_by_ttl.empty()) {
      std::printf("kept %zu work-tables of run %s until %s ([gc] work_tables_ttl):",
                  report->kept_by_ttl.size(), report->kept_for_run.substr(0, 8).c_str(),
                  FormatLocalTime(report->kept_until_ms).c_str());
      for (const std::string& t : report->kept_by_ttl) std::printf(" %s", t.c_str());
      std::printf("\n");
    }
    if (o.dry_run) {
      for (const std::string& key : report->gc.deleted_keys) {
        std::printf("would delete %s\n", key.c_str());
      }
      std::printf("dry run: would have ");
    }
    std::printf("%s\n", GcLine(report->gc).c_str());
  }
  if (!report->gc.failed.empty()) {
    PrintError(std::to_string(report->gc.failed.size()) + " deletes failed, e.g. " +
               report->gc.failed.front() + "; run respawn gc again");
    return kExitFailed;
  }
  return kExitOk;
}

std::string DamageLine(const ledger::LedgerDamage& d) {
  return std::string(d.kind == ledger::LedgerDamage::Kind::kMissing ? "missing " : "damaged ") +
         d.object + " " + d.key + ": " + d.detail;
}

void PrintDamage(const ledger::LedgerInspection& inspection) {
  for (const ledger::LedgerDamage& d : inspection.damage) {
    std::printf("%s\n", DamageLine(d).c_str());
    for (const std::string& h : d.held) std::printf("  it held: %s\n", h.c_str());
    std::printf("  %s: %s\n", d.needed ? "repair" : "not needed to recover; repair", d.fix.c_str());
  }
}

nlohmann::json DamageJson(const ledger::LedgerInspection& inspection) {
  nlohmann::json out = nlohmann::json::array();
  for (const ledger::LedgerDamage& d : inspection.damage) {
    out.push_back({{"key", d.key},
                   {"object", d.object},
                   {"kind", d.kind == ledger::LedgerDamage::Kind::kMissing ? "missing" : "corrupt"},
                   {"sequence", d.sequence},
                   {"detail", d.detail},
                   {"needed", d.needed},
                   {"held", d.held},
                   {"fix", d.fix}});
  }
  return out;
}

struct VerifyOptions {
  PipelineOptions pipeline;
  bool no_checksums = false;
};

int VerifyCommand(const VerifyOptions& o, const GlobalOptions& globals) {
  Result<Loaded> loaded = Load(o.pipeline, globals, /*open_store=*/true, /*read_only=*/true);
  if (!loaded.ok()) return Fail(loaded.status(), Phase::kConfig);
  if (loaded->store_missing) {
    PrintError("store " + loaded->store_url + " does not exist: nothing to verify");
    return kExitFailed;
  }
  Result<PipelineVerifyReport> report =
      VerifyPipeline(loaded->spec, loaded->store.store, !o.no_checksums);
  if (!report.ok()) return Fail(report.status(), Phase::kOperation);
  const ledger::LedgerInspection& l = report->ledger;
  if (globals.json) {
    nlohmann::json data = nlohmann::json::array();
    for (const DataDamage& d : report->data) {
      data.push_back({{"entry", d.entry}, {"key", d.key}, {"error", d.status.message()}});
    }
    nlohmann::json j = {{"ok", report->ok()},
                        {"records", l.records_read},
                        {"snapshots", l.snapshots_read},
                        {"end", l.end},
                        {"floor", l.floor},
                        {"ledger_damage", DamageJson(l)},
                        {"data_objects", report->data_objects},
                        {"data_bytes", report->data_bytes},
                        {"data_damage", data}};
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("ledger %s: %s records read (floor %s, last %s), %s snapshots\n", l.ns.c_str(),
                Thousands(l.records_read).c_str(), Thousands(l.floor).c_str(),
                Thousands(l.end).c_str(), Thousands(l.snapshots_read).c_str());
    PrintDamage(l);
    std::printf("data: %s objects (%s) checked%s, %zu damaged or missing\n",
                Thousands(report->data_objects).c_str(), FormatBytes(report->data_bytes).c_str(),
                o.no_checksums ? " (sizes only)" : "", report->data.size());
    for (const DataDamage& d : report->data) {
      std::printf("  %s %s: %s\n", d.entry.c_str(), d.key.c_str(), d.status.message().c_str());
    }
    if (report->ok()) {
      std::printf("verify: OK\n");
    } else {
      std::printf("verify: %zu problems.%s%s\n", l.damage.size() + report->data.size(),
                  l.ok() ? ""
                         : (" `respawn repair " + o.pipeline.file +
                            "` replaces the damaged ledger objects.")
                               .c_str(),
                  report->data.empty() ? ""
                                       : " A run recomputes damaged or missing checkpoints "
                                         "(they are verified before use).");
    }
  }
  std::fflush(stdout);
  return report->ok() ? kExitOk : kExitFailed;
}

struct RepairOptions {
  PipelineOptions pipeline;
  bool yes = false;
  bool single_writer = false;
};

int RepairCommand(const RepairOptions& o, const GlobalOptions& globals) {
  Result<Loaded> loaded = Load(o.pipeline, globals, /*open_store=*/true, /*read_only=*/!o.yes);
  if (!loaded.ok()) return Fail(loaded.status(), Phase::kConfig);
  if (loaded->store_missing) {
    PrintError("store " + loaded->store_url + " does not exist: nothing to repair");
    return kExitFailed;
  }
  CommitSetup commit;
  if (o.yes) {
    ledger::CommitMode mode = ledger::CommitMode::kPutIfAbsent;
    Result<CommitSetup> setup = CommitSetupForWriting(*loaded, o.single_writer, &mode);
    if (!setup.ok()) return Fail(setup.status(), Phase::kConfig);
    commit = *setup;
  }
  Result<PipelineRepair> repair = RepairPipeline(loaded->spec, loaded->store.store, o.yes, commit);
  if (!repair.ok()) return Fail(repair.status(), Phase::kOperation);
  std::vector<const NodeStatus*> recompute;
  for (const NodeStatus& n : repair->nodes) {
    if (n.state == "missing" || n.state == "stale" || n.state == "dropped") recompute.push_back(&n);
  }
  if (globals.json) {
    nlohmann::json nodes = nlohmann::json::array();
    for (const NodeStatus* n : recompute) {
      nodes.push_back({{"name", n->name}, {"state", n->state}, {"reason", n->reason}});
    }
    nlohmann::json j = {
        {"applied", repair->applied}, {"damage", DamageJson(repair->ledger)}, {"recompute", nodes}};
    std::printf("%s\n", j.dump(2).c_str());
    return kExitOk;
  }
  if (repair->ledger.ok()) {
    std::printf("ledger %s is intact: nothing to repair\n", repair->ledger.ns.c_str());
    return kExitOk;
  }
  PrintDamage(repair->ledger);
  std::printf("%s, a run computes:", repair->applied ? "repaired; from here" : "after repair");
  if (recompute.empty()) std::printf(" nothing (every stage's checkpoint is still committed)");
  std::printf("\n");
  for (const NodeStatus* n : recompute) {
    std::printf("  %s: %s%s\n", n->name.c_str(), n->state.c_str(),
                n->reason.empty() ? "" : (" (" + n->reason + ")").c_str());
  }
  if (!repair->applied) {
    std::printf("nothing was changed; run `respawn repair %s --yes` to apply\n",
                o.pipeline.file.c_str());
  } else {
    std::printf("next: `respawn run %s`\n", o.pipeline.file.c_str());
  }
  return kExitOk;
}

struct LsOptions {
  std::string target;  // a pipeline file, or a store URL
  std::string store;
  bool runs = false;  // --runs: the finished runs `respawn restore` can bring back
};

nlohmann::json RestorableRunJson(const RestorableRun& r) {
  nlohmann::json outputs = nlohmann::json::array();
  for (const RunOutputMeta& o : r.outputs) {
    nlohmann::json keys = nlohmann::json::array();
    for (const ledger::DataObject& d : o.objects) keys.push_back(d.key);
    outputs.push_back({{"output", o.output},
                       {"stage", o.stage},
                       {"rows", o.rows},
                       {"bytes", o.bytes},
                       {"objects", keys}});
  }
  nlohmann::json j = {{"run_id", r.run_id},
                      {"finished_at", FormatIsoTime(r.finished_at_ms)},
                      {"result", r.result},
                      {"restorable", r.restorable},
                      {"outputs", outputs}};
  if (!r.restorable) j["why_not"] = r.why_not;
  return j;
}

// `ls PIPELINE --runs`: the finished runs, newest first, and what `restore` can write of each.
int LsRunsCommand(const LsOptions& o, const GlobalOptions& globals) {
  PipelineOptions po;
  po.file = o.target;
  po.store = o.store;
  Result<Loaded> loaded = Load(po, globals, /*open_store=*/true, /*read_only=*/true);
  if (!loaded.ok()) return Fail(loaded.status(), Phase::kConfig);
  const PipelineSpec& spec = loaded->spec;
  ledger::LedgerOptions read;
  read.mode = ledger::LedgerMode::kReadOnly;
  read.coordinator = CoordinatorForReading(EffectiveCoordinatorUrl(spec), globals);
  Result<std::unique_ptr<ledger::Ledger>> ledger =
      ledger::Ledger::Open(loaded->store.store, PipelineNamespace(spec), read);
  if (!ledger.ok()) return FailPipeline(ledger.status(), Phase::kOperation, o.target);
  Result<std::vector<RestorableRun>> runs =
      ListRestorableRuns((*ledger)->state(), spec.gc.keep_runs);
  if (!runs.ok()) return FailPipeline(runs.status(), Phase::kOperation, o.target);
  if (globals.json) {
    nlohmann::json list = nlohmann::json::array();
    for (const RestorableRun& r : *runs) list.push_back(RestorableRunJson(r));
    nlohmann::json j = {{"pipeline", spec.name}, {"keep_runs", spec.gc.keep_runs}, {"runs", list}};
    std::printf("%s\n", j.dump(2).c_str());
    return kExitOk;
  }
  std::printf("pipeline %s: finished runs, newest first ([gc] keep_runs = %d)\n", spec.name.c_str(),
              spec.gc.keep_runs);
  if (runs->empty()) std::printf("  (none finished)\n");
  for (const RestorableRun& r : *runs) {
    std::printf("  %s  %s  %s%s\n", r.run_id.substr(0, 8).c_str(),
                FormatLocalTime(r.finished_at_ms).c_str(), r.result.c_str(),
                r.restorable ? "  restorable" : ("  not restorable: " + r.why_not).c_str());
    if (!r.restorable) continue;
    for (const RunOutputMeta& out : r.outputs) {
      std::printf("      %-20s from stage %-20s %12s rows %10s\n", out.output.c_str(),
                  out.stage.c_str(), Thousands(out.rows).c_str(), FormatBytes(out.bytes).c_str());
    }
  }
  std::printf("`respawn restore %s --run ID` writes a restorable run's outputs again\n",
              o.target.c_str());
  return kExitOk;
}

int LsCommand(const LsOptions& o, const GlobalOptions& globals) {
  std::string store_url = o.store;
  if (o.runs) {
    if (o.target.size() > 5 && o.target.substr(o.target.size() - 5) == ".toml") {
      return LsRunsCommand(o, globals);
    }
    return Fail(InvalidArgument("--runs needs the pipeline file (its [gc] keep_runs says which "
                                "runs' results are kept): respawn ls PIPELINE.toml --runs"),
                Phase::kConfig);
  }
  std::vector<std::string> namespaces;
  std::string coordinator_from_file;
  bool is_pipeline_file = o.target.size() > 5 && o.target.substr(o.target.size() - 5) == ".toml";
  if (is_pipeline_file) {
    Result<PipelineSpec> spec = ParsePipelineFile(o.target);
    if (!spec.ok()) return Fail(spec.status(), Phase::kConfig);
    if (store_url.empty()) store_url = EffectiveStoreUrl(*spec, {});
    namespaces.push_back(PipelineNamespace(*spec));
    coordinator_from_file = spec->coordinator;
  } else if (!o.target.empty()) {
    store_url = o.target;
  }
  if (store_url.empty()) {
    const char* env = std::getenv("RESPAWN_STORE");
    store_url = env != nullptr && *env != '\0' ? env : ".respawn";
  }
  Result<OpenedStore> opened = OpenStoreForCli(store_url, globals, /*read_only=*/true);
  if (opened.status().IsNotFound()) {
    if (globals.json) {
      std::printf("[]\n");
    } else {
      std::printf("store %s does not exist yet: no pipelines\n", Redact(store_url).c_str());
    }
    return kExitOk;
  }
  if (!opened.ok()) return Fail(opened.status(), Phase::kConfig);
  std::string coordinator_url = coordinator_from_file;
  if (const char* env = std::getenv("RESPAWN_COORDINATOR"); env != nullptr && *env != '\0') {
    coordinator_url = env;
  }
  std::shared_ptr<ledger::CommitCoordinator> coordinator =
      CoordinatorForReading(coordinator_url, globals);
  if (namespaces.empty()) {
    ListOptions list;
    list.prefix = "pipelines/";
    list.delimiter = "/";
    Result<std::vector<std::string>> prefixes = [&]() -> Result<std::vector<std::string>> {
      std::vector<std::string> out;
      std::string token;
      do {
        list.continuation_token = token;
        ASSIGN_OR_RETURN(ListPage page, opened->store->List(list));
        for (const std::string& p : page.common_prefixes) {
          out.push_back(p.substr(0, p.size() - 1));
        }
        token = page.next_token;
      } while (!token.empty());
      return out;
    }();
    if (!prefixes.ok()) return Fail(prefixes.status(), Phase::kOperation);
    namespaces = *prefixes;
    if (namespaces.empty() && !globals.json) {
      std::printf("no pipelines in %s (`respawn run PIPELINE.toml` makes one)\n",
                  Redact(opened->store->Url()).c_str());
    }
  }
  nlohmann::json all = nlohmann::json::array();
  for (const std::string& ns : namespaces) {
    Result<PipelineStatus> status = ReadPipelineLedger(opened->store, ns, coordinator);
    if (!status.ok()) {
      return FailPipeline(status.status(), Phase::kOperation,
                          is_pipeline_file ? o.target : "PIPELINE.toml");
    }
    std::string name = ns.substr(ns.rfind('/') + 1);
    if (globals.json) {
      nlohmann::json runs = nlohmann::json::array();
      for (const RunSummary& r : status->runs) {
        runs.push_back({{"run_id", r.run_id},
                        {"result", r.result},
                        {"finished_at", FormatIsoTime(r.finished_at_ms)},
                        {"seconds", r.seconds},
                        {"computed", r.computed},
                        {"reused", r.reused}});
      }
      nlohmann::json checkpoints = nlohmann::json::array();
      for (const NodeStatus& n : status->nodes) {
        checkpoints.push_back({{"stage", n.name},
                               {"fingerprint", n.committed_fingerprint},
                               {"rows", n.rows},
                               {"bytes", n.bytes},
                               {"objects", n.objects},
                               {"committed_at", FormatIsoTime(n.committed_at_ms)},
                               {"run_id", n.committed_by_run}});
      }
      all.push_back({{"pipeline", name},
                     {"owner", status->owner_path},
                     {"runs", runs},
                     {"checkpoints", checkpoints}});
      continue;
    }
    std::printf("pipeline %s (%s/%s)\n", name.c_str(), Redact(opened->store->Url()).c_str(),
                ns.c_str());
    if (!status->owner_path.empty()) std::printf("  owner: %s\n", status->owner_path.c_str());
    std::printf("  runs:\n");
    if (status->runs.empty()) std::printf("    (none finished)\n");
    for (const RunSummary& r : status->runs) {
      std::printf("    %s  %-11s %s  %s, %d computed, %d reused\n", r.run_id.substr(0, 8).c_str(),
                  r.result.c_str(), FormatLocalTime(r.finished_at_ms).c_str(),
                  Seconds(r.seconds).c_str(), r.computed, r.reused);
    }
    std::printf("  checkpoints:\n");
    if (status->nodes.empty()) std::printf("    (none)\n");
    for (const NodeStatus& n : status->nodes) {
      std::printf("    %-24s %s  %12s rows %10s  %s  run %s\n", n.name.c_str(),
                  n.committed_fingerprint.substr(0, 8).c_str(), Thousands(n.rows).c_str(),
                  FormatBytes(n.bytes).c_str(), FormatLocalTime(n.committed_at_ms).c_str(),
                  n.committed_by_run.substr(0, 8).c_str());
    }
  }
  if (globals.json) std::printf("%s\n", all.dump(2).c_str());
  return kExitOk;
}

constexpr char kSingleWriterHelp[] =
    "On a store without put-if-absent (Swift) and without a commit coordinator: commit anyway, "
    "under a lease that detects a second writer on a best-effort basis. Only if one process "
    "ever writes: NOT safe against a paused process that wakes up (README, Commit modes)";

void AddPipelineFileOptions(CLI::App* cmd, PipelineOptions* o) {
  cmd->add_option("pipeline", o->file, "The pipeline TOML file")->required();
  cmd->add_option("--profile", o->profile,
                  "Apply [profiles.NAME] of the pipeline file (its store and params), e.g. dev "
                  "or prod");
  cmd->add_option("--param", o->params,
                  "name=value: override the param `name` wherever it is defined (repeatable; "
                  "part of the fingerprint, so a changed value recomputes what uses it)");
  cmd->add_option("--store", o->store,
                  "Store URL for checkpoints (default: $RESPAWN_STORE, else the file's `store`, "
                  "else .respawn/ next to the file)");
}

}  // namespace

void AddPipelineCommands(CLI::App& app, const GlobalOptions& globals, CommandFn* run) {
  auto ro = std::make_shared<PipelineOptions>();
  CLI::App* run_cmd = app.add_subcommand(
      "run", "Run a pipeline, reusing committed checkpoints and computing the rest");
  AddPipelineFileOptions(run_cmd, ro.get());
  run_cmd->add_flag("--fresh", ro->fresh,
                    "Recompute every stage (with --select: every selected one), ignoring "
                    "checkpoints");
  run_cmd->add_flag("-k,--keep-going", ro->keep_going,
                    "When a stage fails, finish the stages that do not depend on it and write "
                    "their outputs (the run still fails, exit 1)");
  run_cmd
      ->add_option("--select", ro->select,
                   "Compute only these nodes: NAME, NAME+ (and what reads it), +NAME (and what it "
                   "reads), +NAME+; sources, stages or outputs, comma-separated or repeated. The "
                   "rest is reused from checkpoints (refused if one is missing or stale); only "
                   "selected outputs are written; a partial run does no GC")
      ->allow_extra_args(false);
  run_cmd
      ->add_option("--exclude", ro->exclude,
                   "Leave these out of the selection (same forms as --select)")
      ->allow_extra_args(false);
  run_cmd->add_flag("--adopt", ro->adopt,
                    "Make this file the owner of the pipeline's name in the store, after moving "
                    "or copying it (a run from another file under the same name is refused)");
  run_cmd->add_flag("--no-gc", ro->no_gc,
                    "Keep work-tables and do not collect garbage after the run");
  run_cmd->add_flag("--single-writer", ro->single_writer, kSingleWriterHelp);
  run_cmd->add_option("--threads", ro->threads, "DuckDB threads (default: one per core)")
      ->check(CLI::Range(1, 1024));
  run_cmd->footer(
      "Commit coordinator (stores without put-if-absent, e.g. Swift): `coordinator = "
      "\"postgresql://user@host/db\"` in the pipeline file, or RESPAWN_COORDINATOR (which wins). "
      "Exit status: 0 done, 1 a stage failed (what finished before stays committed), 2 bad "
      "pipeline file, SQL, store or coordinator configuration, or a --select that needs an "
      "unselected stage without a current checkpoint, 75 interrupted by SIGINT/SIGTERM "
      "(run the same "
      "command again to resume).");
  run_cmd->callback(
      [ro, &globals, run] { *run = [ro, &globals] { return RunCommand(*ro, globals); }; });

  auto so = std::make_shared<PipelineOptions>();
  CLI::App* status_cmd = app.add_subcommand(
      "status", "Show each stage's checkpoint: committed, stale (and why) or missing");
  AddPipelineFileOptions(status_cmd, so.get());
  status_cmd->add_option("--price-gb-month", so->price_gb_month, "Storage price, $ per GB-month")
      ->capture_default_str();
  status_cmd->add_option("--price-put-1k", so->price_put_1k, "$ per 1,000 PUT/LIST requests")
      ->capture_default_str();
  status_cmd->add_option("--price-get-1k", so->price_get_1k, "$ per 1,000 GET/HEAD requests")
      ->capture_default_str();
  status_cmd->footer("Prices default to AWS S3 Standard (us-east-1).");
  status_cmd->callback(
      [so, &globals, run] { *run = [so, &globals] { return StatusCommand(*so, globals); }; });

  auto go = std::make_shared<PipelineOptions>();
  CLI::App* gc_cmd = app.add_subcommand(
      "gc", "Delete work-tables and checkpoints no retained run needs, and old orphans");
  AddPipelineFileOptions(gc_cmd, go.get());
  gc_cmd->add_flag("-n,--dry-run", go->dry_run, "Print what would be deleted; change nothing");
  gc_cmd->add_flag("--single-writer", go->single_writer, kSingleWriterHelp);
  CLI::Option* lifecycle = gc_cmd->add_flag(
      "--lifecycle", go->lifecycle,
      "Print the S3 lifecycle rules that back GC up (abort incomplete multipart uploads under "
      "the pipeline's prefix, expire probe objects); collect nothing");
  gc_cmd
      ->add_flag("--apply", go->lifecycle_apply,
                 "With --lifecycle: set the rules on the bucket, keeping its other rules")
      ->needs(lifecycle);
  gc_cmd->add_option("--lifecycle-days", go->lifecycle_days, "Days for --lifecycle")
      ->capture_default_str()
      ->check(CLI::Range(1, 3650));
  gc_cmd->footer(
      "Policy from the pipeline file: [gc] keep_runs = N (results of the last N finished runs "
      "stay), orphan_grace = \"1h\" (objects never committed stay this long), and keep = true on "
      "a stage. Live objects are decided from the ledger, never from listings; GC never stops a "
      "running pipeline.");
  gc_cmd->callback(
      [go, &globals, run] { *run = [go, &globals] { return GcCommand(*go, globals); }; });

  auto vo = std::make_shared<VerifyOptions>();
  CLI::App* verify_cmd = app.add_subcommand(
      "verify", "Check every ledger object and every data object the ledger names; change nothing");
  AddPipelineFileOptions(verify_cmd, &vo->pipeline);
  verify_cmd->add_flag("--no-checksums", vo->no_checksums,
                       "Check data objects' existence and size only (no full read)");
  verify_cmd->footer(
      "Exit status: 0 everything verified, 1 damage found (listed), 2 bad "
      "configuration.");
  verify_cmd->callback(
      [vo, &globals, run] { *run = [vo, &globals] { return VerifyCommand(*vo, globals); }; });

  auto rpo = std::make_shared<RepairOptions>();
  CLI::App* repair_cmd = app.add_subcommand(
      "repair", "Replace damaged or missing ledger objects so that runs can go on");
  AddPipelineFileOptions(repair_cmd, &rpo->pipeline);
  repair_cmd->add_flag("--single-writer", rpo->single_writer, kSingleWriterHelp);
  repair_cmd->add_flag("--yes", rpo->yes,
                       "Apply the repair (without it: print what it would do and change nothing)");
  repair_cmd->footer(
      "A damaged commit record is replaced by a void record that names what it held: the chain "
      "goes on and the next run recomputes what was lost. Damaged snapshots are rebuilt from the "
      "records where they still exist. Data objects are never changed (runs verify them before "
      "use).");
  repair_cmd->callback(
      [rpo, &globals, run] { *run = [rpo, &globals] { return RepairCommand(*rpo, globals); }; });

  auto lo = std::make_shared<LsOptions>();
  CLI::App* ls_cmd =
      app.add_subcommand("ls", "List committed runs and checkpoints of the pipelines in a store");
  ls_cmd->add_option("target", lo->target,
                     "A pipeline TOML file or a store URL (default: $RESPAWN_STORE or .respawn)");
  ls_cmd->add_option("--store", lo->store, "Store URL (with a pipeline file: overrides its store)");
  ls_cmd->add_flag("--runs", lo->runs,
                   "With a pipeline file: the finished runs and, for those whose results GC "
                   "keeps ([gc] keep_runs), each output's checkpoint (what `respawn restore` "
                   "writes)");
  ls_cmd->callback(
      [lo, &globals, run] { *run = [lo, &globals] { return LsCommand(*lo, globals); }; });
}

}  // namespace respawn::cli
