#include "pipeline/pipeline_gc.h"

#include <algorithm>

#include "ledger/ledger.h"
#include "pipeline/check.h"
#include "pipeline/owner.h"
#include "pipeline/schema.h"
#include "util/clock.h"
#include "util/crash_point.h"

namespace respawn {
namespace {

// Why the work-tables `trim` of `state` cannot be dropped now ("" when they can). `join` is how
// GC would join the last run's epoch.
Result<std::string> WhyNotTrim(const std::vector<std::string>& trim, const ledger::Ledger& reader,
                               const ledger::LedgerState& state, const ledger::LedgerOptions& join,
                               bool dry_run) {
  const std::string& epoch_run = state.epoch_run_id;
  if (trim.empty()) return std::string();
  if (epoch_run.empty()) return std::string("no run has finished yet");
  if (!state.entries.count(RunEntryName(epoch_run))) {
    return "run " + epoch_run.substr(0, 8) +
           " is in progress or was killed; its work-tables stay until a run finishes";
  }
  // (A dry run does not ask the store for put-if-absent: that would write a probe object.)
  if (dry_run) return std::string();
  Store& store = reader.store();
  const std::string where = "the store " + store.Url();
  ASSIGN_OR_RETURN(ledger::CommitMode mode,
                   ledger::ChooseCommitMode(store.capabilities(), join, where));
  RETURN_IF_ERROR(ledger::CheckRecordedCommitMode(state, mode, join, reader.Where()));
  if (mode == ledger::CommitMode::kSingleWriter) {
    return std::string(
        "single-writer mode (the store has no put-if-absent and no coordinator is configured), "
        "so GC cannot join the last run's epoch; work-tables are dropped at the end of the next "
        "run");
  }
  return std::string();
}

// Joins the last run's epoch and drops `trim`; `*ledger` becomes the joined writer. Fills
// out->trimmed, or out->trim_skipped when a run started meanwhile; `*ledger_garbage` gets the
// ledger keys below the new floor.
Status Trim(std::shared_ptr<Store> store, const PipelineSpec& spec,
            const ledger::LedgerOptions& join, const std::vector<std::string>& trim,
            std::unique_ptr<ledger::Ledger>* ledger, PipelineGcReport* out,
            std::vector<std::string>* ledger_garbage) {
  Result<std::unique_ptr<ledger::Ledger>> writer =
      ledger::Ledger::Open(store, PipelineNamespace(spec), join);
  if (!writer.ok() && writer.status().code() == StatusCode::kFailedPrecondition) {
    out->trim_skipped = "a run started meanwhile; its end drops the work-tables";
    return Status::OK();
  }
  if (!writer.ok()) return writer.status().WithContext("joining the ledger to drop work-tables");
  ledger::Changes changes;
  for (const std::string& name : trim) changes.removals.insert(name);
  Result<uint64_t> committed = (*writer)->Commit(changes);
  if (!committed.ok() && committed.status().code() == StatusCode::kFailedPrecondition) {
    out->trim_skipped = "a run started meanwhile (" + committed.status().message() + ")";
  } else if (!committed.ok()) {
    return committed.status().WithContext("dropping work-tables from the ledger");
  } else {
    out->trimmed = trim;
    CrashPoint<"gc:after-trim">();
    Result<ledger::LedgerGarbage> obsolete = (*writer)->CollectObsolete(2);
    if (obsolete.ok()) *ledger_garbage = obsolete->keys;
  }
  *ledger = std::move(*writer);
  return Status::OK();
}

// A dry run that would trim: the objects of the work-tables it would drop count as deleted.
void CountDryRunTrim(const ledger::LedgerState& state, PipelineGcReport* out) {
  for (const std::string& name : out->trimmed) {
    auto it = state.entries.find(name);
    if (it == state.entries.end()) continue;
    for (const ledger::DataObject& o : it->second.objects) {
      out->gc.deleted_keys.push_back(o.key);
      ++out->gc.deleted_objects;
      ++out->gc.replaced;  // as GC counts them once the trim committed
      out->gc.deleted_bytes += o.size;
      if (out->gc.live_objects > 0) --out->gc.live_objects;
      out->gc.live_bytes -= std::min(out->gc.live_bytes, o.size);
    }
  }
  std::sort(out->gc.deleted_keys.begin(), out->gc.deleted_keys.end());
}

}  // namespace

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
  const int64_t now = options.now_ms != 0 ? options.now_ms : Clock::System()->WallNowMs();
  ASSIGN_OR_RETURN(WorkTableTrim ttl, TrimWorkTables(spec, dag, state, now));
  std::vector<std::string> trim = std::move(ttl.drop);
  out.kept_by_ttl = std::move(ttl.kept);
  out.kept_for_run = std::move(ttl.run_id);
  out.kept_until_ms = ttl.kept_until_ms;
  ledger::LedgerOptions join;
  join.mode = ledger::LedgerMode::kJoin;
  join.run_id = state.epoch_run_id;
  join.coordinator = options.commit.coordinator;
  join.single_writer = options.commit.single_writer;
  ASSIGN_OR_RETURN(out.trim_skipped, WhyNotTrim(trim, *ledger, state, join, options.dry_run));
  std::vector<std::string> ledger_garbage;
  if (!trim.empty() && out.trim_skipped.empty()) {
    if (options.dry_run) {
      out.trimmed = trim;
    } else {
      RETURN_IF_ERROR(Trim(store, spec, join, trim, &ledger, &out, &ledger_garbage));
    }
  }
  GcOptions gc;
  gc.dry_run = options.dry_run;
  gc.now_ms = now;
  gc.keep_runs = spec.gc.keep_runs;
  gc.orphan_grace_ms = spec.gc.orphan_grace_ms;
  gc.ledger_garbage = std::move(ledger_garbage);
  ASSIGN_OR_RETURN(out.gc, CollectGarbage(*ledger, gc));
  if (options.dry_run) CountDryRunTrim(state, &out);
  ledger->Close().IgnoreError();
  return out;
}

}  // namespace respawn
