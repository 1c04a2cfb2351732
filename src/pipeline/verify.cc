#include "pipeline/verify.h"

#include <algorithm>
#include <mutex>
#include <set>

#include "ledger/data.h"
#include "ledger/ledger.h"
#include "pipeline/gc.h"
#include "pipeline/schema.h"
#include "util/thread_pool.h"

namespace respawn {
namespace {

constexpr size_t kVerifyParallelism = 8;

}  // namespace

Result<PipelineVerifyReport> VerifyPipeline(const PipelineSpec& spec, std::shared_ptr<Store> store,
                                            bool checksums) {
  PipelineVerifyReport report;
  ASSIGN_OR_RETURN(report.ledger, ledger::InspectLedger(*store, PipelineNamespace(spec)));

  // Every object the state names, once, with the entry that names it.
  std::vector<std::pair<std::string, ledger::DataObject>> objects;
  std::set<std::string> seen;
  for (const auto& [name, entry] : report.ledger.state.entries) {
    for (const ledger::DataObject& o : entry.objects) {
      if (seen.insert(o.key).second) objects.emplace_back(name, o);
    }
  }
  // Results the last keep_runs finished runs retain but the state no longer names (GC keeps
  // them; older reports' results are gone by design): by key only, so checked for existence.
  std::vector<std::pair<std::string, std::string>> retained;
  ASSIGN_OR_RETURN(const std::set<std::string> retained_keys,
                   RetainedKeys(report.ledger.state, spec.gc.keep_runs));
  for (const std::string& key : retained_keys) {
    if (seen.insert(key).second) retained.emplace_back("a retained run's results", key);
  }
  for (const auto& [entry, key] : retained) {
    Result<ObjectInfo> info = store->Stat(key);
    ++report.data_objects;
    if (info.ok()) {
      report.data_bytes += info->size;
    } else {
      report.data.push_back({entry, key, info.status()});
    }
  }
  std::mutex mu;
  ParallelFor(objects.size(), kVerifyParallelism, [&](size_t i) {
    const auto& [entry, object] = objects[i];
    Status st = ledger::VerifyData(*store, object, checksums);
    std::lock_guard<std::mutex> lock(mu);
    ++report.data_objects;
    report.data_bytes += object.size;
    if (!st.ok()) report.data.push_back({entry, object.key, st});
  });
  std::sort(report.data.begin(), report.data.end(),
            [](const DataDamage& a, const DataDamage& b) { return a.key < b.key; });
  return report;
}

Result<PipelineRepair> RepairPipeline(const PipelineSpec& spec, std::shared_ptr<Store> store,
                                      bool apply, const CommitSetup& commit) {
  PipelineRepair out;
  const std::string ns = PipelineNamespace(spec);
  if (apply && commit.coordinator != nullptr) {
    return Unimplemented(
        "repairing a ledger committed through a commit coordinator is not "
        "supported yet (its records live in the coordinator's database); "
        "`respawn verify` shows what is damaged");
  }
  if (apply) {
    ASSIGN_OR_RETURN(out.ledger,
                     ledger::RepairLedger(*store, ns, "respawn-repair/" + ledger::NewRandomId()));
    // Recovery must work now; a write-mode open claims a new epoch, fencing anyone still
    // committing to the chain as it was.
    ledger::LedgerOptions options;
    options.mode = ledger::LedgerMode::kWrite;
    options.single_writer = commit.single_writer;
    ASSIGN_OR_RETURN(std::unique_ptr<ledger::Ledger> ledger,
                     ledger::Ledger::Open(store, ns, options));
    out.ledger.state = ledger->state();
    RETURN_IF_ERROR(ledger->Close());
    out.applied = true;
  } else {
    ASSIGN_OR_RETURN(out.ledger, ledger::InspectLedger(*store, ns));
  }
  ASSIGN_OR_RETURN(out.nodes, PipelineStatusForState(spec, out.ledger.state));
  return out;
}

}  // namespace respawn
