#include "pipeline/show.h"

#include "ledger/ledger.h"
#include "pipeline/schema.h"
#include "pipeline/status.h"
#include "sql/engine.h"
#include "sql/parquet_transfer.h"

namespace respawn {
namespace {

uint64_t MetaU64(const nlohmann::json& meta, const char* key) {
  auto it = meta.find(key);
  return it != meta.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}

}  // namespace

Result<ShowResult> ShowCheckpoint(const PipelineSpec& spec, std::shared_ptr<Store> store,
                                  const ShowOptions& options) {
  std::vector<std::string> names;
  for (const StageSpec& s : spec.stages) names.push_back(s.name);
  for (const SourceSpec& s : spec.sources) {
    if (s.kind == SourceKind::kSql) names.push_back(s.name);
  }
  if (std::find(names.begin(), names.end(), options.stage) == names.end()) {
    const bool file_source = spec.FindSource(options.stage) != nullptr;
    return InvalidArgument(spec.display_name + ": " +
                           (file_source
                                ? "\"" + options.stage +
                                      "\" is a file source: it has no checkpoint (read "
                                      "its files directly)"
                                : "no stage or generated source is named \"" + options.stage +
                                      "\"" + DidYouMeanSuffix(options.stage, names)));
  }
  ledger::LedgerOptions read;
  read.mode = ledger::LedgerMode::kReadOnly;
  read.coordinator = options.coordinator;
  ASSIGN_OR_RETURN(std::unique_ptr<ledger::Ledger> ledger,
                   ledger::Ledger::Open(store, PipelineNamespace(spec), read));
  const ledger::LedgerState state = ledger->state();
  auto entry = state.entries.find("stage/" + options.stage);
  if (entry == state.entries.end() || entry->second.objects.size() != 1) {
    return NotFound("stage \"" + options.stage + "\" has no committed checkpoint in " +
                    store->Url() +
                    " (not run yet, not checkpointed, or a work-table GC dropped after the run: "
                    "`respawn status` says which)");
  }
  ShowResult out;
  const ledger::Entry& e = entry->second;
  out.checkpoint_rows = MetaU64(e.meta, "rows");
  out.run_id = e.run_id;
  out.committed_at_ms = e.committed_at_ms;
  ASSIGN_OR_RETURN(std::vector<NodeStatus> nodes, PipelineStatusForState(spec, state));
  for (const NodeStatus& n : nodes) {
    if (n.name == options.stage) {
      out.state = n.state;
      out.reason = n.reason;
    }
  }

  ASSIGN_OR_RETURN(std::unique_ptr<Database> db, Database::Open());
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, db->Connect());
  ExportedObject expected;
  expected.key = e.objects[0].key;
  expected.size = e.objects[0].size;
  expected.xxh3 = e.objects[0].xxh3;
  expected.rows = out.checkpoint_rows;
  RETURN_IF_ERROR(ImportFromStore(*conn, *store, expected, options.stage).status());
  std::string query = options.sql.empty() ? "SELECT * FROM " + QuoteIdentifier(options.stage)
                                          : "SELECT * FROM (" + options.sql + "\n) AS respawn_show";
  if (options.limit > 0) query += " LIMIT " + std::to_string(options.limit);
  Result<QueryResult> rows = conn->Query(query);
  if (!rows.ok()) return rows.status().WithContext("--sql");
  out.rows = std::move(rows).value();
  return out;
}

}  // namespace respawn
